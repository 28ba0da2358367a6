/*
 * compat_win.c - compat_win.h: C library functions Windows' C runtime lacks.
 * Built only for Windows (mk/windows.mk).
 */
#include "base/compat_win.h"
#include "base/compat.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
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

/* UTF-16 units of n bytes of UTF-8 (what Windows' length limits count):
 * one per character, two for one past U+FFFF (a 4-byte sequence). */
static size_t utf16_units(const char *s, size_t n)
{
	size_t i, u = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c & 0xC0) != 0x80)
			u += c >= 0xF0 ? 2 : 1;
	}
	return u;
}

/* RtlAreLongPathsEnabled (Windows 10 1607+): the manifest's longPathAware
 * counts only when the machine allows long paths too. */
static int long_paths_enabled(void)
{
	typedef BOOLEAN(WINAPI * fn_t)(void);
	HMODULE nt = GetModuleHandleW(L"ntdll.dll");
	FARPROC p = nt ? GetProcAddress(nt, "RtlAreLongPathsEnabled") : NULL;
	fn_t fn;

	if (!p)
		return 0;
	memcpy(&fn, &p, sizeof(fn));
	return fn() != 0;
}

int ms_win_path_errno(const char *path, int e)
{
	const char *p, *start;
	char full[MAX_PATH + 1];
	DWORD n;

	if (e != ENOENT || !path)
		return e;
	for (p = start = path;; p++) {
		if (*p == '\\' || *p == '/' || !*p) {
			if (utf16_units(start, (size_t)(p - start)) > 255)
				return ENAMETOOLONG;
			if (!*p)
				break;
			start = p + 1;
		}
	}
	/* the whole name, as Windows resolves it (a relative one too) */
	n = GetFullPathNameA(path, sizeof(full), full, NULL);
	if ((n >= sizeof(full) || utf16_units(path, strlen(path)) >= MAX_PATH) &&
	    !long_paths_enabled())
		return ENAMETOOLONG;
	return e;
}

/* open() and fopen(), through the linker (mk/windows.mk: --wrap): the C
 * runtime's, with ms_win_path_errno's errno on failure, so that every
 * "cannot open '...'" says "File name too long" as on Linux. */
int __real_open(const char *path, int flags, ...);
FILE *__real_fopen(const char *path, const char *mode);

int __wrap_open(const char *path, int flags, ...)
{
	int mode = 0, fd;

	if (flags & O_CREAT) {
		va_list ap;

		va_start(ap, flags);
		mode = va_arg(ap, int);
		va_end(ap);
	}
	fd = __real_open(path, flags, mode);
	if (fd < 0)
		errno = ms_win_path_errno(path, errno);
	return fd;
}

FILE *__wrap_fopen(const char *path, const char *mode)
{
	FILE *f = __real_fopen(path, mode);

	if (!f)
		errno = ms_win_path_errno(path, errno);
	return f;
}
