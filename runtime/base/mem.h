/*
 * mem.h - the small memory helpers every module used to write for itself:
 * wiping a secret, growing an array, and the one "out of memory" error.
 *
 * Ownership: nothing here keeps a pointer.  mem_grow() may move *ptr;
 * on failure *ptr and *cap are left as they were (the caller still owns
 * and frees the old block).
 */
#ifndef MS_MEM_H
#define MS_MEM_H

#include <stddef.h>

struct ms_err;

/* Overwrites n bytes in a way the compiler may not drop (a secret that is
 * about to be freed or go out of scope).  NULL is a no-op. */
void mem_wipe(void *p, size_t n);

/* Wipes a NUL-terminated secret and frees it.  NULL is a no-op. */
void mem_wipe_free(char *s);

/* Makes room for at least `need` elements of `size` bytes in *ptr, whose
 * capacity is *cap: doubles (from 16) until it fits.  Returns 0, or -1 on
 * overflow or out of memory, with err set if err is not NULL. */
int mem_grow(void **ptr, size_t *cap, size_t need, size_t size,
	     struct ms_err *err);

/* The typed form: MEM_GROW(arr, cap, n + 1, err) for `T *arr`. */
#define MEM_GROW(arr, cap, need, err) \
	mem_grow((void **)&(arr), &(cap), (need), sizeof(*(arr)), (err))

/* err_set(err, MS_ERR_NOMEM, "out of memory") and -1, in one place. */
int err_nomem(struct ms_err *err);

#endif
