/*
 * mailbox_imap_parse.c - the IMAP backend's pure parsers (no I/O): the
 * untagged responses it reads (CAPABILITY, UIDVALIDITY, EXISTS, SEARCH,
 * FETCH with its literals and nested lists), INTERNALDATE and UID sets.
 * Declared in mailbox_int.h; fuzzed and unit-tested on their own.
 */
#include "transport/mailbox/mailbox.h"
#include "transport/mailbox/mailbox_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "base/mem.h"

static const char *eol_after(const char *p, const char *end)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	return nl ? nl + 1 : end;
}

/* Skip one response that is not ours: to the end of its line, and past
 * any literal the line announces ("{n}" right before CRLF). */
static const char *skip_response(const char *p, const char *end)
{
	for (int guard = 0; p < end && guard < 100000; guard++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e;
		size_t lit = 0, mul = 1;

		if (!nl)
			return end;
		e = nl;
		if (e > p && e[-1] == '\r')
			e--;
		if (e > p && e[-1] == '}') {
			const char *q = e - 1;
			if (q > p && q[-1] == '+')
				q--;
			while (q > p && isdigit((unsigned char)q[-1]) && mul < 1000000000000ULL) {
				lit += (size_t)(q[-1] - '0') * mul;
				mul *= 10;
				q--;
			}
			if (q > p && q[-1] == '{' && mul > 1) {
				if (lit > (size_t)(end - (nl + 1)))
					return end;
				p = nl + 1 + lit;
				continue;
			}
		}
		return nl + 1;
	}
	return end;
}

int imap_parse_internaldate(const char *s, size_t len, time_t *out)
{
	char tmp[64];

	if (len >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	/* " 7-Jul-1996 02:44:25 -0700" is a Date with '-' separators */
	return mb_parse_rfc5322_date(tmp, out);
}

int imap_parse_uidvalidity(const char *resp, size_t len, uint32_t *out)
{
	const char *p = resp, *end = resp + len;

	while (p && p < end) {
		const char *next = eol_after(p, end);
		if (next - p > 2 && p[0] == '*' && p[1] == ' ') {
			const char *hit = NULL;
			for (const char *q = p; q + 13 < next; q++)
				if (strncasecmp(q, "[UIDVALIDITY ", 13) == 0) {
					hit = q + 13;
					break;
				}
			if (hit) {
				unsigned long v = 0;
				int nd = 0;
				while (hit < next && isdigit((unsigned char)*hit) && nd < 11) {
					v = v * 10 + (unsigned long)(*hit++ - '0');
					nd++;
				}
				if (nd && hit < next && *hit == ']' && v > 0 &&
				    v <= 0xffffffffUL) {
					*out = (uint32_t)v;
					return 0;
				}
			}
		}
		p = skip_response(p, end);
	}
	return -1;
}

int imap_parse_exists(const char *resp, size_t len, uint32_t *out)
{
	const char *p = resp, *end = resp + len;
	int found = -1;

	while (p && p < end) {
		const char *next = eol_after(p, end), *q = p + 2;
		unsigned long v = 0;
		int nd = 0;

		if (next - p > 2 && p[0] == '*' && p[1] == ' ') {
			while (q < next && *q >= '0' && *q <= '9' && nd < 11) {
				v = v * 10 + (unsigned long)(*q++ - '0');
				nd++;
			}
			if (nd && v <= 0xffffffffUL && next - q >= 7 &&
			    strncasecmp(q, " EXISTS", 7) == 0 &&
			    (q + 7 == next || q[7] == '\r' || q[7] == '\n')) {
				*out = (uint32_t)v;    /* the last one counts */
				found = 0;
			}
		}
		p = skip_response(p, end);
	}
	return found;
}

int imap_has_capability(const char *resp, size_t len, const char *cap)
{
	const char *p = resp, *end = resp + len;
	size_t cl = strlen(cap);

	while (p && p < end) {
		const char *next = eol_after(p, end);
		const char *q = NULL;
		for (const char *s = p; s + 10 < next; s++)
			if (strncasecmp(s, "CAPABILITY", 10) == 0) {
				q = s + 10;
				break;
			}
		while (q && q < next) {
			while (q < next && *q == ' ')
				q++;
			const char *w = q;
			while (q < next && *q != ' ' && *q != ']' && *q != '\r' && *q != '\n')
				q++;
			if ((size_t)(q - w) == cl && strncasecmp(w, cap, cl) == 0)
				return 1;
			if (q < next && *q != ' ')
				break;
		}
		p = skip_response(p, end);
	}
	return 0;
}

int imap_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int imap_parse_search(const char *resp, size_t len, uint32_t **uids, size_t *n,
		      size_t max, struct ms_err *err)
{
	const char *p = resp, *end = resp + len;
	uint32_t *v = NULL;
	size_t nv = 0, av = 0;

	*uids = NULL;
	*n = 0;
	while (p && p < end) {
		const char *next = eol_after(p, end);
		if (next - p >= 8 && strncasecmp(p, "* SEARCH", 8) == 0 &&
		    (p + 8 == next || p[8] == ' ' || p[8] == '\r' || p[8] == '\n')) {
			const char *q = p + 8;
			while (q < next) {
				unsigned long x = 0;
				int nd = 0;
				while (q < next && *q == ' ')
					q++;
				if (q < next && *q == '(')   /* (MODSEQ n) */
					break;
				while (q < next && isdigit((unsigned char)*q) && nd < 11) {
					x = x * 10 + (unsigned long)(*q++ - '0');
					nd++;
				}
				if (!nd)
					break;
				if (x == 0 || x > 0xffffffffUL) {
					free(v);
					return err_set(err, MS_ERR_PROTO,
						       "bad UID in SEARCH response");
				}
				if (nv >= max) {
					free(v);
					return err_set(err, MS_ERR_TOOBIG,
						       "more than %zu messages in the folder", max);
				}
				if (MEM_GROW(v, av, nv + 1, err)) {
					free(v);
					return -1;
				}
				v[nv++] = (uint32_t)x;
			}
		}
		p = skip_response(p, end);
	}
	if (nv) {
		size_t w = 1;
		qsort(v, nv, sizeof(*v), imap_cmp_u32);
		for (size_t i = 1; i < nv; i++)
			if (v[i] != v[w - 1])
				v[w++] = v[i];
		nv = w;
	}
	*uids = v;
	*n = nv;
	return 0;
}

void imap_fetch_free(struct imap_fetch *f, size_t n)
{
	for (size_t i = 0; f && i < n; i++)
		free(f[i].body);
	free(f);
}

struct cursor {
	const char *p, *end;
	size_t max_literal;
	struct ms_err *err;
	int borrow;             /* large body literals are referenced, not copied */
};

/* a body literal this large is referenced in the response (borrow mode) */
#define IMAP_BORROW_MIN (64 * 1024)

static int read_number(struct cursor *c, unsigned long long *out)
{
	unsigned long long v = 0;
	int nd = 0;

	while (c->p < c->end && isdigit((unsigned char)*c->p) && nd < 19) {
		v = v * 10 + (unsigned long long)(*c->p++ - '0');
		nd++;
	}
	if (!nd)
		return err_set(c->err, MS_ERR_PROTO, "bad FETCH response: number expected");
	*out = v;
	return 0;
}

/* string = quoted / literal / NIL.  *s (owned) may stay NULL for NIL
 * when want is 0 nothing is copied.  With ref (borrow mode), a literal of
 * IMAP_BORROW_MIN bytes or more is not copied: *ref points at it in the
 * response and *s stays NULL. */
static int read_nstring(struct cursor *c, int want, char **s, size_t *slen,
			const char **ref)
{
	*s = NULL;
	*slen = 0;
	if (ref)
		*ref = NULL;
	if (c->end - c->p >= 3 && strncasecmp(c->p, "NIL", 3) == 0) {
		c->p += 3;
		return 0;
	}
	if (c->p < c->end && *c->p == '"') {
		struct buf b;
		buf_init(&b, c->max_literal);
		c->p++;
		while (c->p < c->end && *c->p != '"') {
			if (*c->p == '\r' || *c->p == '\n') {
				buf_release(&b);
				return err_set(c->err, MS_ERR_PROTO,
					       "bad FETCH response: unterminated string");
			}
			if (*c->p == '\\' && c->p + 1 < c->end)
				c->p++;
			if (want && buf_append(&b, c->p, 1, c->err)) {
				buf_release(&b);
				return -1;
			}
			c->p++;
		}
		if (c->p >= c->end) {
			buf_release(&b);
			return err_set(c->err, MS_ERR_PROTO,
				       "bad FETCH response: unterminated string");
		}
		c->p++;
		if (want) {
			if (!b.data && buf_append(&b, "", 0, c->err))
				return -1;
			*s = buf_detach(&b, slen);
		}
		return 0;
	}
	if (c->p < c->end && *c->p == '~')      /* literal8 */
		c->p++;
	if (c->p < c->end && *c->p == '{') {
		unsigned long long n;
		c->p++;
		if (read_number(c, &n))
			return -1;
		if (c->p < c->end && *c->p == '+')
			c->p++;
		if (c->p >= c->end || *c->p != '}')
			return err_set(c->err, MS_ERR_PROTO, "bad FETCH response: bad literal");
		c->p++;
		if (c->p < c->end && *c->p == '\r')
			c->p++;
		if (c->p >= c->end || *c->p != '\n')
			return err_set(c->err, MS_ERR_PROTO, "bad FETCH response: bad literal");
		c->p++;
		if (n > c->max_literal)
			return err_set(c->err, MS_ERR_TOOBIG,
				       "literal of %llu bytes exceeds the limit of %zu",
				       n, c->max_literal);
		if (n > (unsigned long long)(c->end - c->p))
			return err_set(c->err, MS_ERR_PROTO,
				       "bad FETCH response: literal of %llu bytes truncated", n);
		if (want && ref && n >= IMAP_BORROW_MIN) {
			*ref = c->p;
			*slen = (size_t)n;
		} else if (want) {
			*s = malloc((size_t)n + 1);
			if (!*s)
				return err_nomem(c->err);
			memcpy(*s, c->p, (size_t)n);
			(*s)[n] = '\0';
			*slen = (size_t)n;
		}
		c->p += n;
		return 0;
	}
	return err_set(c->err, MS_ERR_PROTO, "bad FETCH response: string expected");
}

/* Any value: atom, number, string, literal, or parenthesised list. */
static int skip_value(struct cursor *c, int depth)
{
	char *s;
	size_t n;

	if (depth > 32)
		return err_set(c->err, MS_ERR_PROTO, "bad FETCH response: nested too deep");
	if (c->p >= c->end)
		return err_set(c->err, MS_ERR_PROTO, "bad FETCH response: truncated");
	if (*c->p == '(') {
		c->p++;
		for (;;) {
			while (c->p < c->end && *c->p == ' ')
				c->p++;
			if (c->p >= c->end)
				return err_set(c->err, MS_ERR_PROTO,
					       "bad FETCH response: truncated list");
			if (*c->p == ')') {
				c->p++;
				return 0;
			}
			if (skip_value(c, depth + 1))
				return -1;
		}
	}
	if (*c->p == '"' || *c->p == '{' || *c->p == '~')
		return read_nstring(c, 0, &s, &n, NULL);
	{
		const char *start = c->p;
		int br = 0;
		while (c->p < c->end && *c->p != '\r' && *c->p != '\n' &&
		       (br || (*c->p != ' ' && *c->p != ')' && *c->p != '('))) {
			if (*c->p == '[')
				br++;
			else if (*c->p == ']' && br)
				br--;
			c->p++;
		}
		if (c->p == start)
			return err_set(c->err, MS_ERR_PROTO,
				       "bad FETCH response: unexpected '%c'", *c->p);
	}
	return 0;
}

static int parse_att_list(struct cursor *c, struct imap_fetch *f)
{
	for (int guard = 0; guard < 64; guard++) {
		const char *name;
		size_t nl;
		unsigned long long v;

		while (c->p < c->end && *c->p == ' ')
			c->p++;
		if (c->p >= c->end)
			return err_set(c->err, MS_ERR_PROTO, "bad FETCH response: truncated");
		if (*c->p == ')') {
			c->p++;
			return 0;
		}
		name = c->p;
		{
			int br = 0;
			while (c->p < c->end && *c->p != '\r' && *c->p != '\n' &&
			       (br || (*c->p != ' ' && *c->p != '(' && *c->p != ')'))) {
				if (*c->p == '[')
					br++;
				else if (*c->p == ']' && br)
					br--;
				c->p++;
			}
		}
		nl = (size_t)(c->p - name);
		if (!nl || c->p >= c->end || *c->p != ' ')
			return err_set(c->err, MS_ERR_PROTO,
				       "bad FETCH response: attribute expected");
		c->p++;
		if (nl == 3 && strncasecmp(name, "UID", 3) == 0) {
			if (read_number(c, &v))
				return -1;
			if (v == 0 || v > 0xffffffffULL)
				return err_set(c->err, MS_ERR_PROTO, "bad UID in FETCH response");
			f->uid = (uint32_t)v;
		} else if (nl == 11 && strncasecmp(name, "RFC822.SIZE", 11) == 0) {
			if (read_number(c, &v))
				return -1;
			f->size = (size_t)v;
			f->has_size = 1;
		} else if (nl == 12 && strncasecmp(name, "INTERNALDATE", 12) == 0) {
			char *s;
			size_t sl;
			if (read_nstring(c, 1, &s, &sl, NULL))
				return -1;
			if (s && imap_parse_internaldate(s, sl, &f->internaldate) == 0)
				f->has_date = 1;
			free(s);
		} else if ((nl >= 5 && strncasecmp(name, "BODY[", 5) == 0) ||
			   (nl >= 7 && strncasecmp(name, "BINARY[", 7) == 0) ||
			   (nl >= 6 && strncasecmp(name, "RFC822", 6) == 0 &&
			    (nl == 6 || name[6] == '.') &&
			    !(nl == 11 && strncasecmp(name, "RFC822.SIZE", 11) == 0))) {
			free(f->body);
			f->body = NULL;
			if (read_nstring(c, 1, &f->body, &f->body_len,
					 c->borrow ? &f->body_ref : NULL))
				return -1;
			f->has_body = f->body != NULL || f->body_ref != NULL;
		} else if (skip_value(c, 0)) {
			return -1;
		}
	}
	return err_set(c->err, MS_ERR_PROTO, "bad FETCH response: too many attributes");
}

int imap_parse_fetch(const char *resp, size_t len, struct imap_fetch **out,
		     size_t *n, size_t max_items, size_t max_literal,
		     struct ms_err *err)
{
	return imap_parse_fetch_ex(resp, len, out, n, max_items, max_literal, 0, err);
}

int imap_parse_fetch_ex(const char *resp, size_t len, struct imap_fetch **out,
			size_t *n, size_t max_items, size_t max_literal,
			int borrow, struct ms_err *err)
{
	struct cursor c = { resp, resp + len, max_literal, err, borrow };
	struct imap_fetch *v = NULL;
	size_t nv = 0, av = 0;

	*out = NULL;
	*n = 0;
	while (c.p < c.end) {
		const char *q = c.p;
		unsigned long long seq;

		if (c.end - q > 2 && q[0] == '*' && q[1] == ' ' &&
		    isdigit((unsigned char)q[2])) {
			struct cursor t = c;
			t.p = q + 2;
			if (read_number(&t, &seq))
				goto fail;
			if (t.end - t.p >= 8 && strncasecmp(t.p, " FETCH (", 8) == 0) {
				struct imap_fetch f;
				memset(&f, 0, sizeof(f));
				f.seq = (uint32_t)seq;
				t.p += 8;
				if (parse_att_list(&t, &f)) {
					free(f.body);
					goto fail;
				}
				if (nv >= max_items) {
					free(f.body);
					err_set(err, MS_ERR_TOOBIG,
						"more than %zu FETCH responses", max_items);
					goto fail;
				}
				if (MEM_GROW(v, av, nv + 1, err)) {
					free(f.body);
					goto fail;
				}
				v[nv++] = f;
				/* the rest of the line must be empty */
				while (t.p < t.end && *t.p == ' ')
					t.p++;
				if (t.p < t.end && *t.p != '\r' && *t.p != '\n') {
					err_set(err, MS_ERR_PROTO,
						"bad FETCH response: data after the list");
					goto fail;
				}
				c.p = eol_after(t.p, t.end);
				continue;
			}
		}
		c.p = skip_response(c.p, c.end);
	}
	*out = v;
	*n = nv;
	return 0;
fail:
	imap_fetch_free(v, nv);
	return -1;
}

size_t imap_uid_set(const uint32_t *uids, size_t n, char *out, size_t maxlen)
{
	size_t i = 0, len = 0;

	if (maxlen)
		out[0] = '\0';
	while (i < n) {
		size_t j = i;
		char piece[32];
		int pl;

		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		if (j > i)
			pl = snprintf(piece, sizeof(piece), "%s%u:%u", len ? "," : "",
				      uids[i], uids[j]);
		else
			pl = snprintf(piece, sizeof(piece), "%s%u", len ? "," : "", uids[i]);
		if (len + (size_t)pl + 1 > maxlen)
			break;
		memcpy(out + len, piece, (size_t)pl + 1);
		len += (size_t)pl;
		i = j + 1;
	}
	return i;
}
