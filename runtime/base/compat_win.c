/*
 * compat_win.c - compat_win.h: C library functions Windows' C runtime lacks.
 * Built only for Windows (mk/windows.mk).
 */
#include "base/compat_win.h"
#include "base/compat.h"

#include <ctype.h>
#include <errno.h>
#include <windows.h>

/* strndup, memmem and strcasestr have one body, base/compat.c's, which
 * the modules call as ms_*; these names serve the code not moved yet. */
char *strndup(const char *s, size_t n)
{
	return ms_strndup(s, n);
}

void *memmem(const void *hay, size_t hlen, const void *needle, size_t nlen)
{
	return ms_memmem(hay, hlen, needle, nlen);
}

char *strcasestr(const char *hay, const char *needle)
{
	return ms_strcasestr(hay, needle);
}

/* qsort_r in glibc's argument order over the C runtime's qsort_s, whose
 * comparison takes the context first. */
struct sort_ctx {
	int (*cmp)(const void *, const void *, void *);
	void *arg;
};

static int sort_trampoline(void *ctx, const void *a, const void *b)
{
	const struct sort_ctx *c = ctx;
	return c->cmp(a, b, c->arg);
}

void qsort_r(void *base, size_t n, size_t size,
	     int (*cmp)(const void *, const void *, void *), void *arg)
{
	struct sort_ctx c = { cmp, arg };

	qsort_s(base, n, size, sort_trampoline, &c);
}

time_t timegm(struct tm *tm)
{
	return (time_t)_mkgmtime64(tm);
}

/* The file's data and metadata reach the disk (fsync's promise). */
int fsync(int fd)
{
	HANDLE h = (HANDLE)_get_osfhandle(fd);

	if (h == INVALID_HANDLE_VALUE) {
		errno = EBADF;
		return -1;
	}
	if (!FlushFileBuffers(h)) {
		/* a handle opened read-only cannot flush: say so, never pretend */
		errno = GetLastError() == ERROR_ACCESS_DENIED ? EBADF : EIO;
		return -1;
	}
	return 0;
}

int fchmod(int fd, mode_t mode)
{
	(void)fd;
	(void)mode;
	return 0;
}

int geteuid(void)
{
	return 0;
}
