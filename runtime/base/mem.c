/*
 * mem.c - see mem.h.
 */
#include "base/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

void mem_wipe(void *p, size_t n)
{
	/* A volatile pointer to memset: the call cannot be proven dead, so
	 * it is not removed (as explicit_bzero, which mingw lacks). */
	static void *(*const volatile wipe)(void *, int, size_t) = memset;

	if (p && n)
		wipe(p, 0, n);
}

void mem_wipe_free(char *s)
{
	if (!s)
		return;
	mem_wipe(s, strlen(s));
	free(s);
}

int mem_grow(void **ptr, size_t *cap, size_t need, size_t size,
	     struct ms_err *err)
{
	size_t ncap = *cap ? *cap : 16;
	void *p;

	if (need <= *cap)
		return 0;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return err_nomem(err);
		ncap *= 2;
	}
	if (size && ncap > SIZE_MAX / size)
		return err_nomem(err);
	p = realloc(*ptr, ncap * size);
	if (!p)
		return err_nomem(err);
	*ptr = p;
	*cap = ncap;
	return 0;
}

int err_nomem(struct ms_err *err)
{
	if (err)
		err_set(err, MS_ERR_NOMEM, "out of memory");
	return -1;
}
