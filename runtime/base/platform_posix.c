/*
 * platform_posix.c - platform.h for Linux (and other POSIX systems where
 * the Linux-only parts compile away).
 */
#include "base/platform.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/err.h"
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

int platform_sync_fs(const char *dir, struct ms_err *err)
{
#ifdef __linux__
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), e;

	if (fd < 0)
		return err_set(err, MS_ERR_IO, "cannot open '%s': %s", dir, strerror(errno));
	/* since Linux 5.8 syncfs reports writeback errors of the file system */
	if (syncfs(fd) < 0) {
		e = errno;
		close(fd);
		return err_set(err, MS_ERR_IO, "cannot make '%s' durable: %s", dir,
			       strerror(e));
	}
	close(fd);
	return 0;
#else
	(void)dir;
	(void)err;
	return 1;
#endif
}
