#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

void buf_init(struct buf *b, size_t cap)
{
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	b->cap = cap ? cap : BUF_DEFAULT_CAP;
}

static int grow(struct buf *b, size_t need, struct ms_err *err)
{
	size_t want;
	char *p;

	if (need > b->cap)
		return err_set(err, MS_ERR_TOOBIG,
			       "data exceeds the limit of %zu bytes", b->cap);
	if (need + 1 <= b->alloc)
		return 0;
	want = b->alloc ? b->alloc : 256;
	while (want < need + 1)
		want *= 2;
	if (want > b->cap + 1)
		want = b->cap + 1;
	p = realloc(b->data, want);
	if (!p)
		return err_nomem(err);
	b->data = p;
	b->alloc = want;
	return 0;
}

int buf_append(struct buf *b, const void *data, size_t len, struct ms_err *err)
{
	if (len > b->cap || b->len > b->cap - len)
		return err_set(err, MS_ERR_TOOBIG,
			       "data exceeds the limit of %zu bytes", b->cap);
	if (grow(b, b->len + len, err))
		return -1;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int buf_appends(struct buf *b, const char *s, struct ms_err *err)
{
	return buf_append(b, s, strlen(s), err);
}

int buf_appendf(struct buf *b, struct ms_err *err, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return err_set(err, MS_ERR_INTERNAL, "bad format");
	if (grow(b, b->len + (size_t)n, err))
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

char *buf_detach(struct buf *b, size_t *len)
{
	char *p = b->data;

	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = b->alloc = 0;
	return p;
}

int buf_adopt(struct buf *b, char *data, size_t len, struct ms_err *err)
{
	int rc = 0;

	if (b->len || (b->cap && len > b->cap)) {
		rc = buf_append(b, data ? data : "", len, err);
		free(data);
		return rc;
	}
	free(b->data);
	b->data = data;
	b->len = len;
	b->alloc = data ? len + 1 : 0;
	return 0;
}

void buf_release(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->alloc = 0;
}

void buf_wipe(struct buf *b)
{
	if (b->data)
		mem_wipe(b->data, b->alloc);
	buf_release(b);
}
