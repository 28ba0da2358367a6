/*
 * platform_posix.c - platform.h for Linux (and other POSIX systems where
 * the Linux-only parts compile away).
 */
#include "platform.h"

#include <sys/resource.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

int platform_no_core_dumps(void)
{
	struct rlimit rl = { 0, 0 };
	int rc = 0;

	if (setrlimit(RLIMIT_CORE, &rl) != 0)
		rc = -1;
#ifdef __linux__
	/* also makes /proc/PID/{mem,environ} unreadable to the same user */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		rc = -1;
#endif
	return rc;
}
