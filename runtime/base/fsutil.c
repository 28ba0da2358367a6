#include "base/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/platform.h"
#include "base/mem.h"

/* Read an open file of path into a NUL-terminated buffer; closes fd. */
static int read_fd(int fd, const char *path, size_t cap, char **data,
		   size_t *len, mode_t *mode, struct ms_err *err)
{
	struct stat st;
	char *p = NULL;
	size_t got = 0;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(err, MS_ERR_IO, "cannot read '%s': not a regular file",
			       path);
	}
	if ((size_t)st.st_size > cap) {
		close(fd);
		return err_set(err, MS_ERR_TOOBIG,
			       "'%s' is larger than the limit of %zu bytes", path, cap);
	}
	p = malloc((size_t)st.st_size + 1);
	if (!p) {
		close(fd);
		return err_nomem(err);
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, p + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(p);
			close(fd);
			return err_set(err, MS_ERR_IO, "cannot read '%s': %s", path,
				       strerror(e));
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	p[got] = '\0';
	*data = p;
	if (len)
		*len = got;
	if (mode)
		*mode = st.st_mode & 07777;
	return 0;
}

int fs_read_file(const char *path, size_t cap, char **data, size_t *len,
		 struct ms_err *err)
{
	int fd;

	*data = NULL;
	if (len)
		*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(err, MS_ERR_IO, "cannot open '%s': %s", path,
			       strerror(errno));
	return read_fd(fd, path, cap, data, len, NULL, err);
}

int fs_read_file_mode(const char *path, size_t cap, char **data, size_t *len,
		      mode_t *mode, struct ms_err *err)
{
	int fd;

	*data = NULL;
	if (len)
		*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && (errno == ENOENT || errno == ENOTDIR))
		return 1;
	if (fd < 0)
		return err_set(err, MS_ERR_IO, "cannot open '%s': %s", path,
			       strerror(errno));
	return read_fd(fd, path, cap, data, len, mode, err);
}

static char *dir_of(const char *path)
{
	char *copy = strdup(path), *d;

	if (!copy)
		return NULL;
	d = strdup(dirname(copy));
	free(copy);
	return d;
}

int fs_fsync_dir(const char *dir, struct ms_err *err)
{
	return platform_fsync_dir(dir, err);
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int fs_temp_name_parse(const char *entry, size_t *name_len, long *pid)
{
	const char *t, *q;
	char *end;

	if (entry[0] != '.')
		return 0;
	for (t = strstr(entry + 1, ".tmp."); t; t = strstr(t + 1, ".tmp.")) {
		long p = strtol(t + 5, &end, 10);

		if (p <= 0 || *end != '.')
			continue;
		for (q = end + 1; *q >= '0' && *q <= '9'; q++)
			;
		if (q == end + 1 || *q || t == entry + 1)
			continue;
		*name_len = (size_t)(t - entry - 1);
		*pid = p;
		return 1;
	}
	return 0;
}

/* Create the temporary sibling of path (".NAME.tmp.PID.N", never an
 * existing file) with mode (the umask applies); its name through *tmp
 * (caller frees).  Returns the open descriptor, or -1. */
static int open_temp(const char *path, mode_t mode, char **tmp, struct ms_err *err)
{
	static _Atomic unsigned counter;   /* migrate writes from several threads */
	char *dir = dir_of(path);
	const char *base = platform_last_sep(path);
	size_t n;
	int fd, tries = 0;

	*tmp = NULL;
	base = base ? base + 1 : path;
	if (!dir)
		return err_nomem(err);
	n = strlen(dir) + strlen(base) + 64;
	if (!(*tmp = malloc(n))) {
		free(dir);
		return err_nomem(err);
	}
	/* a name taken is left alone and the next one tried: a process killed
	 * while writing leaves its temporary file, and a later process given
	 * the same PID (Windows hands PIDs out again soon) would otherwise
	 * fail on it until a cleaner removes it, which it does not while
	 * that PID is alive (it is ours) */
	do {
		snprintf(*tmp, n, "%s/.%s.tmp.%ld.%u", dir, base, (long)getpid(),
			 counter++);
		fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	} while (fd < 0 && errno == EEXIST && ++tries < 1000);
	free(dir);
	if (fd < 0) {
		err_set(err, MS_ERR_IO, "cannot create '%s': %s", *tmp, strerror(errno));
		free(*tmp);
		*tmp = NULL;
	}
	return fd;
}

static char *write_temp_ex(const char *path, const void *data, size_t len,
			   mode_t mode, int exact_mode, int sync, struct ms_err *err)
{
	char *tmp;
	int fd = open_temp(path, mode, &tmp, err), e;

	if (fd < 0)
		return NULL;
	if (write_all(fd, data, len) < 0 ||
	    (exact_mode && fchmod(fd, mode) < 0) || (sync && fsync(fd) < 0)) {
		e = errno;
		close(fd);
		unlink(tmp);
		err_set(err, MS_ERR_IO, "cannot write '%s': %s", path, strerror(e));
		free(tmp);
		return NULL;
	}
	if (close(fd) < 0) {
		e = errno;
		unlink(tmp);
		err_set(err, MS_ERR_IO, "cannot write '%s': %s", path, strerror(e));
		free(tmp);
		return NULL;
	}
	return tmp;
}

static char *write_temp(const char *path, const void *data, size_t len,
			mode_t mode, struct ms_err *err)
{
	return write_temp_ex(path, data, len, mode, 0, 1, err);
}

/* Renames the temporary file tmp (freed here) over path; on failure the
 * temporary file is removed and err names path. */
static int replace_with_temp(char *tmp, const char *path, struct ms_err *err)
{
	int e;

	if (platform_replace(tmp, path) == 0) {
		free(tmp);
		return 0;
	}
	e = errno;
	unlink(tmp);
	free(tmp);
	return err_set(err, MS_ERR_IO, "cannot replace '%s': %s", path, strerror(e));
}

/* fsync of the folder path is in (its new entry made durable). */
static int fsync_dir_of(const char *path, struct ms_err *err)
{
	char *dir = dir_of(path);
	int rc = dir ? fs_fsync_dir(dir, err) : err_nomem(err);

	free(dir);
	return rc;
}

/* A temporary file with exactly mode, fsynced when sync, renamed over path. */
static int write_renamed(const char *path, const void *data, size_t len,
			 mode_t mode, int sync, struct ms_err *err)
{
	char *tmp = write_temp_ex(path, data, len, mode & 07777, 1, sync, err);

	if (!tmp)
		return -1;
	return replace_with_temp(tmp, path, err);
}

char *fs_stage_write(const char *path, const void *data, size_t len, mode_t mode,
		     struct ms_err *err)
{
	return write_temp_ex(path, data, len, mode & 07777, 1, 1, err);
}

int fs_stage_commit(char *tmp, const char *path, struct ms_err *err)
{
	return replace_with_temp(tmp, path, err);
}

void fs_stage_discard(char *tmp)
{
	if (tmp)
		unlink(tmp);
	free(tmp);
}

int fs_write_atomic_nodirsync(const char *path, const void *data, size_t len,
			      mode_t mode, struct ms_err *err)
{
	char *tmp = fs_stage_write(path, data, len, mode, err);

	return tmp ? fs_stage_commit(tmp, path, err) : -1;
}

int fs_write_unsynced(const char *path, const void *data, size_t len,
		      mode_t mode, struct ms_err *err)
{
	return write_renamed(path, data, len, mode, 0, err);
}

int fs_fsync_file(const char *path, struct ms_err *err)
{
	/* Windows flushes only through a handle that may write */
	int fd = open(path, O_WRONLY | O_CLOEXEC), e;

	if (fd < 0 && errno == EACCES)
		fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return err_set(err, MS_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
	if (fsync(fd) < 0) {
		e = errno;
		close(fd);
		return err_set(err, MS_ERR_IO, "cannot write '%s': %s", path, strerror(e));
	}
	close(fd);
	return 0;
}

int fs_write_atomic(const char *path, const void *data, size_t len,
		    mode_t mode, struct ms_err *err)
{
	struct stat st;
	char *tmp;

	if (stat(path, &st) == 0)
		mode = st.st_mode & 07777;
	tmp = write_temp(path, data, len, mode, err);
	if (!tmp)
		return -1;
	/* open(2) applied the umask: restore the mode we meant */
	(void)chmod(tmp, mode);
	if (replace_with_temp(tmp, path, err))
		return -1;
	return fsync_dir_of(path, err);
}

int fs_create_exclusive(const char *path, const void *data, size_t len,
			mode_t mode, struct ms_err *err)
{
	char *tmp;

	tmp = write_temp(path, data, len, mode, err);
	if (!tmp)
		return -1;
	if (platform_move_new(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		free(tmp);
		if (e == EEXIST)
			return 1;
		return err_set(err, MS_ERR_IO, "cannot create '%s': %s", path,
			       strerror(e));
	}
	free(tmp);
	return fsync_dir_of(path, err);
}

int fs_mkdirs(const char *path, mode_t mode, struct ms_err *err)
{
	char *p = strdup(path), *s;
	size_t root = platform_path_root_len(path);

	if (!p)
		return err_nomem(err);
	/* from the first component after the root ("/", "C:\", a share) */
	for (s = p + (root ? root : 1); ; s++) {
		if (platform_is_sep(*s) || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (s > p + root && platform_mkdir(p, mode) < 0 && errno != EEXIST) {
				int e = errno;
				err_set(err, MS_ERR_IO, "cannot create directory '%s': %s",
					p, strerror(e));
				free(p);
				return -1;
			}
			*s = c;
			if (!c)
				break;
		}
	}
	/* EEXIST also comes for a file of that name: say so now, not at
	 * the first file written into it */
	{
		struct stat st;

		if (stat(p, &st) == 0 && !S_ISDIR(st.st_mode)) {
			err_set(err, MS_ERR_IO, "cannot use '%s' as a directory: "
				"it is a file", p);
			free(p);
			return -1;
		}
	}
	free(p);
	return 0;
}

char *fs_join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *p = malloc(a + b + 2);

	if (!p)
		return NULL;
	memcpy(p, dir, a);
	/* keep the folder's own separator: C:\x\y, not C:\x/y */
	if (a && !platform_is_sep(dir[a - 1])) {
		const char *sep = platform_last_sep(dir);
		p[a++] = sep ? *sep : '/';
	}
	memcpy(p + a, name, b + 1);
	return p;
}

int fs_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

int fs_atomic_open(struct fs_atomic *a, const char *path, mode_t mode,
		   struct ms_err *err)
{
	struct stat st;
	int fd;

	memset(a, 0, sizeof(*a));
	if (stat(path, &st) == 0)
		mode = st.st_mode & 07777;
	if (!(a->path = strdup(path)))
		return err_nomem(err);
	if ((fd = open_temp(path, mode, &a->tmp, err)) < 0) {
		free(a->path);
		a->path = NULL;
		return -1;
	}
	/* open(2) applied the umask: the mode we meant */
	(void)fchmod(fd, mode);
	if (!(a->fp = fdopen(fd, "w"))) {
		err_set(err, MS_ERR_IO, "cannot write '%s': %s", a->tmp, strerror(errno));
		close(fd);
		fs_atomic_abort(a);
		return -1;
	}
	return 0;
}

int fs_atomic_commit(struct fs_atomic *a, struct ms_err *err)
{
	FILE *fp = a->fp;
	char *tmp = a->tmp;
	int rc;

	a->fp = NULL;
	if (fflush(fp) != 0 || fsync(fileno(fp)) < 0) {
		err_set(err, MS_ERR_IO, "cannot write '%s': %s", a->path, strerror(errno));
		fclose(fp);
		fs_atomic_abort(a);
		return -1;
	}
	if (fclose(fp) != 0) {
		err_set(err, MS_ERR_IO, "cannot write '%s': %s", a->path, strerror(errno));
		fs_atomic_abort(a);
		return -1;
	}
	a->tmp = NULL;
	rc = replace_with_temp(tmp, a->path, err) < 0 ? -1 : fsync_dir_of(a->path, err);
	free(a->path);
	a->path = NULL;
	return rc;
}

void fs_atomic_abort(struct fs_atomic *a)
{
	if (a->fp)
		fclose(a->fp);
	if (a->tmp)
		unlink(a->tmp);
	free(a->tmp);
	free(a->path);
	memset(a, 0, sizeof(*a));
}

size_t fs_clean_dead_temps(const char *dir,
			   int (*want)(const char *name, size_t len, void *ctx),
			   void *ctx)
{
	struct dirent *de;
	struct stat st;
	size_t removed = 0;
	DIR *dh = opendir(dir);

	if (!dh)
		return 0;
	while ((de = readdir(dh)) != NULL) {
		const char *nm = de->d_name;
		size_t len;
		long pid;
		char *p;

		if (!fs_temp_name_parse(nm, &len, &pid) ||
		    (want && !want(nm + 1, len, ctx)) || !(p = fs_join(dir, nm)))
			continue;
		/* its writer's PID: alive, and started before the file's
		 * last write, it may still be writing it */
		if (stat(p, &st) == 0 && !platform_pid_may_own(pid, st.st_mtime) &&
		    unlink(p) == 0)
			removed++;
		free(p);
	}
	closedir(dh);
	return removed;
}

struct name_or_suffixed {
	const char *base, *suffix;
};

static int is_name_or_suffixed(const char *name, size_t len, void *ctx)
{
	const struct name_or_suffixed *w = ctx;
	size_t bl = strlen(w->base), sl = w->suffix ? strlen(w->suffix) : 0;

	if (len < bl || memcmp(name, w->base, bl) != 0)
		return 0;
	return len == bl || (sl && len == bl + sl && memcmp(name + bl, w->suffix, sl) == 0);
}

size_t fs_clean_dead_temps_of(const char *path, const char *suffix)
{
	const char *sep = platform_last_sep(path);
	struct name_or_suffixed w = { sep ? sep + 1 : path, suffix };
	char *dir = dir_of(path);
	size_t n = dir ? fs_clean_dead_temps(dir, is_name_or_suffixed, &w) : 0;

	free(dir);
	return n;
}
