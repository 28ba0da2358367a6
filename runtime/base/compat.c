/*
 * compat.c - see compat.h.
 */
#include "base/compat.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

char *ms_strndup(const char *s, size_t n)
{
	size_t len = 0;
	char *p;

	while (len < n && s[len])
		len++;
	p = malloc(len + 1);
	if (!p)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void *ms_memmem(const void *hay, size_t hlen, const void *needle, size_t nlen)
{
	const unsigned char *h = hay, *end;

	if (nlen == 0)
		return (void *)hay;
	if (nlen > hlen)
		return NULL;
	end = h + (hlen - nlen);
	for (; h <= end; h++) {
		h = memchr(h, *(const unsigned char *)needle, (size_t)(end - h) + 1);
		if (!h)
			return NULL;
		if (memcmp(h, needle, nlen) == 0)
			return (void *)h;
	}
	return NULL;
}

char *ms_strcasestr(const char *s, const char *needle)
{
	size_t n = strlen(needle), i;

	for (; *s; s++) {
		for (i = 0; i < n; i++)
			if (tolower((unsigned char)s[i]) !=
			    tolower((unsigned char)needle[i]))
				break;
		if (i == n)
			return (char *)s;
	}
	return n == 0 ? (char *)s : NULL;
}
