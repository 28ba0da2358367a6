/*
 * compat.h - C library functions that glibc has and mingw-w64 does not
 * (docs/windows-port.md), written once in portable C so that the library
 * needs no #ifdef for them.  Not an OS seam (that is platform.h): these
 * behave the same everywhere.
 *
 * Ownership: ms_strndup() hands a malloc'd string to the caller; the
 * others return pointers into their arguments.
 */
#ifndef MS_COMPAT_H
#define MS_COMPAT_H

#include <stddef.h>

/* strndup(3): a NUL-terminated copy of at most n bytes of s (fewer when s
 * ends sooner), or NULL when out of memory. */
char *ms_strndup(const char *s, size_t n);

/* memmem(3): the first occurrence of needle in hay, or NULL.  An empty
 * needle is found at hay. */
void *ms_memmem(const void *hay, size_t hlen, const void *needle, size_t nlen);

/* strcasestr(3): the first occurrence of needle in s, ASCII letters
 * compared without case, or NULL. */
char *ms_strcasestr(const char *s, const char *needle);

#endif
