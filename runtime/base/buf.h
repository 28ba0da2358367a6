/*
 * buf.h - a growable byte buffer with a hard size cap (after curl's dynbuf).
 *
 * Always NUL-terminated after a successful append, so b->data can be used
 * as a C string when the content is text.  Owns its memory; release with
 * buf_release() or, for secrets, buf_wipe().
 */
#ifndef MS_BUF_H
#define MS_BUF_H

#include <stddef.h>
#include "base/err.h"

struct buf {
	char *data;
	size_t len;
	size_t alloc;
	size_t cap;      /* maximum len; appends beyond fail with MS_ERR_TOOBIG */
};

#define BUF_DEFAULT_CAP ((size_t)64 * 1024 * 1024)

void buf_init(struct buf *b, size_t cap);
int buf_append(struct buf *b, const void *data, size_t len, struct ms_err *err);
int buf_appends(struct buf *b, const char *s, struct ms_err *err);
int buf_appendf(struct buf *b, struct ms_err *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void buf_reset(struct buf *b);
/* Hand the data to the caller (NUL-terminated, may be NULL if empty). */
char *buf_detach(struct buf *b, size_t *len);
/* Append data (malloc'd, NUL after len bytes; ownership passes to b) to
 * b without a copy when b is empty: large message bodies move from the
 * protocol's buffer to the caller's instead of being copied. */
int buf_adopt(struct buf *b, char *data, size_t len, struct ms_err *err);
void buf_release(struct buf *b);
/* Cleanse then release: for tokens and secrets. */
void buf_wipe(struct buf *b);

#endif
