/*
 * platform_posix.c - platform.h for Linux (and other POSIX systems where
 * the Linux-only parts compile away).
 */
#include "base/platform.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <stdint.h>
#include <unistd.h>

#include "base/err.h"
#include "base/fsutil.h"
#include "base/mem.h"
#include "base/paths.h"
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
	/* With TZ unset, glibc stats /etc/localtime again on every mktime()
	 * (once per INI file for [General] LastRunDate: 10,000 system calls
	 * in a fleet audit or a migrate plan); the same zone named in TZ is
	 * read once. */
	if (!getenv("TZ"))
		setenv("TZ", ":/etc/localtime", 0);
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

int platform_fsync_dir(const char *dir, struct ms_err *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return err_set(err, MS_ERR_IO, "cannot open directory '%s': %s", dir,
			       strerror(errno));
	if (fsync(fd) < 0 && errno != EINVAL) {
		int e = errno;
		close(fd);
		return err_set(err, MS_ERR_IO, "cannot sync directory '%s': %s", dir,
			       strerror(e));
	}
	close(fd);
	return 0;
}

int platform_replace(const char *from, const char *to)
{
	return rename(from, to);
}

int platform_move_new(const char *from, const char *to)
{
	/* link(2) fails with EEXIST instead of replacing: create-if-absent */
	if (link(from, to) < 0)
		return -1;
	unlink(from);
	return 0;
}

int platform_swap_dir(const char *newdir, const char *dir)
{
	char *side;
	int rc;

#ifdef RENAME_EXCHANGE
	if (renameat2(AT_FDCWD, newdir, AT_FDCWD, dir, RENAME_EXCHANGE) == 0)
		return 0;
	if (errno == ENOENT && access(newdir, F_OK) == 0)
		return rename(newdir, dir);     /* no dir yet */
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
#endif
	if (rename(newdir, dir) == 0)           /* no dir yet, or an empty one */
		return 0;
	if (asprintf(&side, "%s.swap", newdir) < 0)
		return -1;
	rc = rename(dir, side) < 0 || rename(newdir, dir) < 0 ||
	     rename(side, newdir) < 0 ? -1 : 0;
	free(side);
	return rc;
}

int platform_long_path(const char *path, char **out)
{
	(void)path;
	*out = NULL;
	return 1;
}

int platform_host_name(char *buf, size_t size)
{
	char *dot;

	if (gethostname(buf, size) < 0)
		return -1;
	buf[size - 1] = '\0';
	if ((dot = strchr(buf, '.')))
		*dot = '\0';
	return 0;
}

int platform_mkdir(const char *path, mode_t mode)
{
	return mkdir(path, mode);
}

size_t platform_path_root_len(const char *path)
{
	return path[0] == '/';
}

int platform_is_sep(char c)
{
	return c == '/';
}

const char *platform_last_sep(const char *path)
{
	return strrchr(path, '/');
}

int platform_lock_try(int fd)
{
	return flock(fd, LOCK_EX | LOCK_NB);
}

void platform_unlock(int fd)
{
	flock(fd, LOCK_UN);
}

/* When process pid started (seconds since the epoch, to a second or so:
 * the boot time plus its start in clock ticks after boot), or -1 when it
 * cannot be told (no /proc). */
static long long pid_started(long pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ticks = 0;
	long long btime = -1;
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f;
	size_t n;
	int field;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if (hz <= 0 || !(f = fopen(path, "re")))
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* the name in parentheses may hold anything: fields from the last ')';
	 * the state is field 3, the start time field 22 */
	if (!(p = strrchr(buf, ')')))
		return -1;
	for (field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", &ticks) != 1)
		return -1;
	if (!(f = fopen("/proc/stat", "re")))
		return -1;
	while (fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "btime %lld", &btime) == 1)
			break;
	fclose(f);
	return btime < 0 ? -1 : btime + (long long)(ticks / (unsigned long long)hz);
}

int platform_pid_may_own(long pid, time_t mtime)
{
	long long started;

	if (pid <= 0 || (kill((pid_t)pid, 0) < 0 && errno == ESRCH))
		return 0;
	/* two seconds of slack: the start is rounded down to the second and
	 * the boot time may have moved with the clock */
	started = pid_started(pid);
	return started < 0 || started <= (long long)mtime + 2;
}

unsigned platform_file_mode(const struct stat *st)
{
	return (unsigned)(st->st_mode & 0777);
}

int platform_machine_state_dir(char **dir, struct ms_err *err)
{
	*dir = NULL;
	if (geteuid() != 0)
		return 1;
	if (!(*dir = strdup(PATHS_ROOT_DIR)))
		return err_nomem(err);
	return 0;
}

const char *platform_default_ini(void)
{
	return "SMArtEmail.ini";
}

int platform_names_case_sensitive(void)
{
	return 1;
}

int platform_tls_system_store(void)
{
	return 0;
}

int platform_key_store(const char *path, const unsigned char *key, size_t len,
		       struct ms_err *err)
{
	return fs_create_exclusive(path, key, len, 0600, err);
}

int platform_key_read(int fd, const char *path, unsigned char *key, size_t len,
		      struct ms_err *err)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, key + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return err_set(err, MS_ERR_IO, "cannot read key file '%s': %s", path,
				       n < 0 ? strerror(errno) : "short file");
		got += (size_t)n;
	}
	return 0;
}

int platform_key_file_size_ok(long long size, size_t len)
{
	return size == (long long)len;
}

int platform_file_id(const struct stat *st, char *buf, size_t sz)
{
	snprintf(buf, sz, "%ju %ju %jd %jd.%09ld %jd.%09ld", (uintmax_t)st->st_dev,
		 (uintmax_t)st->st_ino, (intmax_t)st->st_size,
		 (intmax_t)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec,
		 (intmax_t)st->st_ctim.tv_sec, (long)st->st_ctim.tv_nsec);
	return 0;
}

enum platform_ent platform_dirent_type(const struct dirent *de)
{
#ifdef _DIRENT_HAVE_D_TYPE
	switch (de->d_type) {
	case DT_DIR:
		return PLATFORM_ENT_DIR;
	case DT_LNK:
		return PLATFORM_ENT_LINK;
	case DT_UNKNOWN:
		return PLATFORM_ENT_UNKNOWN;
	default:
		return PLATFORM_ENT_OTHER;
	}
#else
	(void)de;
	return PLATFORM_ENT_UNKNOWN;
#endif
}

long long platform_prefetch(const char *path)
{
	struct stat st;
	long long size = -1;
	/* O_NONBLOCK: a FIFO named like an export must not hold the scan
	 * here (for a regular file it changes nothing) */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED) == 0)
		size = (long long)st.st_size;
	close(fd);
	return size;
}
