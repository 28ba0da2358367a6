/*
 * compat.c - compat.h: C library functions Windows' C runtime lacks.
 * Built only for Windows (mk/windows.mk).
 */
#include "base/compat.h"

#include <ctype.h>
#include <errno.h>
#include <windows.h>

char *strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = malloc(len + 1);

	if (!p)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void *memmem(const void *hay, size_t hlen, const void *needle, size_t nlen)
{
	const unsigned char *h = hay, *end;

	if (nlen == 0)
		return (void *)hay;
	if (hlen < nlen)
		return NULL;
	for (end = h + hlen - nlen; h <= end; h++) {
		h = memchr(h, *(const unsigned char *)needle, (size_t)(end - h) + 1);
		if (!h)
			return NULL;
		if (memcmp(h, needle, nlen) == 0)
			return (void *)h;
	}
	return NULL;
}

char *strcasestr(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay; hay++)
		if (_strnicmp(hay, needle, n) == 0)
			return (char *)hay;
	return n ? NULL : (char *)hay;
}

struct sort_ctx {
	int (*cmp)(const void *, const void *, void *);
	void *arg;
};

/* qsort_s hands its context first: put it last, as glibc's qsort_r does */
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
