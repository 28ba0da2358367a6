/*
 * mailbox_imap.c - IMAP over libcurl custom requests.
 *
 * Every command is a CURLOPT_CUSTOMREQUEST on the one easy handle of the
 * session with a URL that names no mailbox, so libcurl never SELECTs on
 * its own and EXAMINE stays possible.  libcurl hands every response line
 * (literal data included) to the header callback; the parsers below read
 * that stream and check literal lengths, so a line libcurl clipped is
 * detected, never trusted.
 *
 * libcurl refuses more than 300 KB of response lines per command (7.88
 * as Debian ships it, curl >= 8.3), so answers are sized to stay under
 * it: SEARCH over message-number ranges, header fields capped per message
 * (2 KB, then 64 KB for the few that need more) and batched by a byte
 * budget (one round trip for a usual run of up to ~100 messages), whole
 * messages read in 240 KB pieces with BODY.PEEK[]<off.len> (never \Seen).
 */
#include "mailbox.h"
#include "mailbox_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

#define IMAP_SET_MAX    6000     /* characters of one UID set */
#define IMAP_SET_ITEMS  1000     /* messages per UID FETCH round trip */
/* libcurl (7.88 as patched by Debian, and curl >= 8.3) refuses more than
 * 300 KB of answer lines per command; stay well under it */
#define IMAP_ANSWER_BUDGET  (240 * 1024)
#define IMAP_PIECE          (240 * 1000)   /* bytes of a message per answer */
#define IMAP_HEADER_CAP     2048           /* header fields, first pass */
#define IMAP_HEADER_CAP_BIG (64 * 1024)    /* second pass, for those cut */
#define IMAP_SEARCH_RANGE   20000          /* message numbers per SEARCH */

struct imap_state {
	uint32_t uidvalidity;
	uint32_t exists;         /* messages at SELECT time */
	int selected;
	int uidplus;
	int need_expunge;
	uint32_t *uids;          /* uid of items[i] */
	char select_cmd[600];
};

/* ------------------------------------------------------------------ */
/* pure parsers */

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
				if (nd && *hit == ']' && v > 0 && v <= 0xffffffffUL) {
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

static int cmp_u32(const void *a, const void *b)
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
				if (nv == av) {
					size_t na = av ? av * 2 : 64;
					uint32_t *t = realloc(v, na * sizeof(*v));
					if (!t) {
						free(v);
						return err_set(err, MS_ERR_NOMEM, "out of memory");
					}
					v = t;
					av = na;
				}
				v[nv++] = (uint32_t)x;
			}
		}
		p = skip_response(p, end);
	}
	if (nv) {
		size_t w = 1;
		qsort(v, nv, sizeof(*v), cmp_u32);
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
};

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
 * when want is 0 nothing is copied. */
static int read_nstring(struct cursor *c, int want, char **s, size_t *slen)
{
	*s = NULL;
	*slen = 0;
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
		if (want) {
			*s = malloc((size_t)n + 1);
			if (!*s)
				return err_set(c->err, MS_ERR_NOMEM, "out of memory");
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
		return read_nstring(c, 0, &s, &n);
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
			if (read_nstring(c, 1, &s, &sl))
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
			if (read_nstring(c, 1, &f->body, &f->body_len))
				return -1;
			f->has_body = f->body != NULL;
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
	struct cursor c = { resp, resp + len, max_literal, err };
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
				if (nv == av) {
					size_t na = av ? av * 2 : 16;
					struct imap_fetch *tv = realloc(v, na * sizeof(*v));
					if (!tv) {
						free(f.body);
						err_set(err, MS_ERR_NOMEM, "out of memory");
						goto fail;
					}
					v = tv;
					av = na;
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

/* ------------------------------------------------------------------ */
/* the backend */

static int quote_mailbox(const char *name, char *out, size_t outsz)
{
	size_t o = 0;

	if (outsz < 3)
		return -1;
	out[o++] = '"';
	for (const char *p = name; *p; p++) {
		if (*p == '\r' || *p == '\n')
			return -1;
		if (o + 4 >= outsz)
			return -1;
		if (*p == '"' || *p == '\\')
			out[o++] = '\\';
		out[o++] = *p;
	}
	out[o++] = '"';
	out[o] = '\0';
	return 0;
}

static int imap_select(struct mailbox *mb, struct ms_err *err);

/* One command on the selected folder; after a reconnect (the server
 * dropped us) select again, check UIDVALIDITY, and repeat it once. */
static int imap_cmd(struct mailbox *mb, const char *cmd, struct ms_err *err)
{
	struct imap_state *st = mb->impl;
	struct ms_err first = MS_ERR_INIT;
	int reconnected = 0, rc;

	rc = mb_session_perform(mb, "", cmd, 0, 0, &reconnected, &first);
	if (!reconnected || !st->selected) {
		if (rc)
			return err_set(err, first.code, "%s", first.msg);
		return 0;
	}
	if (imap_select(mb, err))
		return -1;
	return mb_session_perform(mb, "", cmd, 0, 0, NULL, err);
}

static int imap_select(struct mailbox *mb, struct ms_err *err)
{
	struct imap_state *st = mb->impl;
	struct buf *lines = mb_session_lines(mb);
	uint32_t v = 0;

	st->selected = 0;
	if (mb_session_perform(mb, "", st->select_cmd, 0, 0, NULL, err))
		return -1;
	if (imap_has_capability(lines->data, lines->len, "UIDPLUS"))
		st->uidplus = 1;
	if (imap_parse_exists(lines->data, lines->len, &st->exists))
		st->exists = 0;
	if (imap_parse_uidvalidity(lines->data, lines->len, &v))
		return err_set(err, MS_ERR_PROTO, "%s: no UIDVALIDITY for folder '%s'",
			       mb->label, mb->p.folder);
	if (st->uidvalidity && v != st->uidvalidity)
		return err_set(err, MS_ERR_PROTO,
			       "%s: UIDVALIDITY of folder '%s' changed from %u to %u "
			       "during the run", mb->label, mb->p.folder,
			       st->uidvalidity, v);
	st->uidvalidity = v;
	st->selected = 1;
	return 0;
}

static int imap_open(struct mailbox *mb, struct ms_err *err)
{
	struct imap_state *st;
	char q[512];

	st = calloc(1, sizeof(*st));
	if (!st)
		return err_set(err, MS_ERR_NOMEM, "out of memory");
	mb->impl = st;
	if (quote_mailbox(mb->p.folder, q, sizeof(q)))
		return err_set(err, MS_ERR_CONFIG, "bad folder name '%s'", mb->p.folder);
	snprintf(st->select_cmd, sizeof(st->select_cmd), "%s %s",
		 mb->p.read_only ? "EXAMINE" : "SELECT", q);
	if (mb_session_new(mb, "imap", err))
		return -1;
	if (imap_select(mb, err))
		return -1;
	if (!st->uidplus) {
		struct buf *lines = mb_session_lines(mb);
		if (imap_cmd(mb, "CAPABILITY", err))
			return -1;
		st->uidplus = imap_has_capability(lines->data, lines->len, "UIDPLUS");
	}
	log_debug("%s: folder '%s' UIDVALIDITY %u%s", mb->label, mb->p.folder,
		  st->uidvalidity, st->uidplus ? ", UIDPLUS" : "");
	return 0;
}

static void imap_free(struct mailbox *mb)
{
	struct imap_state *st = mb->impl;

	if (!st)
		return;
	free(st->uids);
	free(st);
	mb->impl = NULL;
}

static int add_fetched(struct mailbox *mb, struct imap_fetch *f, size_t nf,
		       struct ms_err *err)
{
	struct imap_state *st = mb->impl;

	for (size_t i = 0; i < nf; i++) {
		char key[64], id[16];
		uint32_t *t;

		if (!f[i].uid)
			continue;
		if (mb->p.since && f[i].has_date && f[i].internaldate < mb->p.since)
			continue;
		/* skip duplicates (unsolicited FETCH responses) */
		if (mb->n_items && st->uids[mb->n_items - 1] >= f[i].uid)
			continue;
		snprintf(key, sizeof(key), "imap:%u:%u", st->uidvalidity, f[i].uid);
		snprintf(id, sizeof(id), "%u", f[i].uid);
		if (mb_grow_point(mb->n_items)) {
			size_t want = mb->n_items ? mb->n_items * 2 : 16;
			t = realloc(st->uids, want * sizeof(*t));
			if (!t)
				return err_set(err, MS_ERR_NOMEM, "out of memory");
			st->uids = t;
		}
		if (mb_item_add(mb, strdup(key), strdup(id), f[i].size,
				f[i].has_date ? f[i].internaldate : 0, err))
			return -1;
		st->uids[mb->n_items - 1] = f[i].uid;
	}
	return 0;
}

static int cmp_fetch_uid(const void *a, const void *b)
{
	const struct imap_fetch *x = a, *y = b;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static int append_uids(uint32_t **all, size_t *nall, const uint32_t *u, size_t n,
		       struct ms_err *err)
{
	uint32_t *t;

	if (!n)
		return 0;
	if (*nall + n > MB_MAX_ITEMS)
		return err_set(err, MS_ERR_TOOBIG, "more than %zu messages in the folder",
			       MB_MAX_ITEMS);
	t = realloc(*all, (*nall + n) * sizeof(*t));
	if (!t)
		return err_set(err, MS_ERR_NOMEM, "out of memory");
	memcpy(t + *nall, u, n * sizeof(*u));
	*all = t;
	*nall += n;
	return 0;
}

static int imap_list(struct mailbox *mb, struct ms_err *err)
{
	struct imap_state *st = mb->impl;
	struct buf *lines = mb_session_lines(mb);
	uint32_t *uids = NULL, *part = NULL;
	size_t nuids = 0, npart = 0, done = 0;
	char cmd[IMAP_SET_MAX + 64], since[48] = "";
	struct imap_fetch *f = NULL;
	size_t nf = 0;
	int ret = -1;

	free(st->uids);
	st->uids = NULL;
	if (mb->p.since) {
		/* SEARCH SINCE has day granularity in the server's zone: ask
		 * a day early, then filter on INTERNALDATE */
		time_t day = mb->p.since - 86400;
		struct tm tm;
		gmtime_r(&day, &tm);
		strftime(since, sizeof(since), " SINCE %d-%b-%Y", &tm);
	}
	if (st->exists > 20 * MB_MAX_ITEMS)
		return err_set(err, MS_ERR_TOOBIG, "%s: folder '%s' holds %u messages, "
			       "more than this tool reads", mb->label, mb->p.folder,
			       st->exists);
	/* libcurl takes at most 300 KB of answer lines per command: search
	 * message-number ranges, so no SEARCH line gets longer than that */
	for (uint32_t lo = 1; lo <= st->exists || lo == 1; lo += IMAP_SEARCH_RANGE) {
		uint32_t hi = lo + IMAP_SEARCH_RANGE - 1;
		if (hi >= st->exists)
			snprintf(cmd, sizeof(cmd), "UID SEARCH %u:*%s", lo, since);
		else
			snprintf(cmd, sizeof(cmd), "UID SEARCH %u:%u%s", lo, hi, since);
		if (st->exists == 0)
			snprintf(cmd, sizeof(cmd), "UID SEARCH ALL%s", since);
		if (imap_cmd(mb, cmd, err))
			goto out;
		if (imap_parse_search(lines->data, lines->len, &part, &npart, MB_MAX_ITEMS, err))
			goto proto;
		if (append_uids(&uids, &nuids, part, npart, err))
			goto proto;
		free(part);
		part = NULL;
		if (hi >= st->exists)
			break;
	}
	if (nuids > 1) {
		size_t w = 1;
		qsort(uids, nuids, sizeof(*uids), cmp_u32);
		for (size_t i = 1; i < nuids; i++)
			if (uids[i] != uids[w - 1])
				uids[w++] = uids[i];
		nuids = w;
	}
	while (done < nuids) {
		size_t k, take = nuids - done < IMAP_SET_ITEMS ? nuids - done : IMAP_SET_ITEMS;
		char set[IMAP_SET_MAX];

		k = imap_uid_set(uids + done, take, set, sizeof(set));
		if (!k) {
			err_set(err, MS_ERR_INTERNAL, "cannot build a UID set");
			goto out;
		}
		snprintf(cmd, sizeof(cmd), "UID FETCH %s (UID INTERNALDATE RFC822.SIZE)", set);
		if (imap_cmd(mb, cmd, err))
			goto out;
		if (imap_parse_fetch(lines->data, lines->len, &f, &nf, IMAP_SET_ITEMS * 2,
				     MB_MAX_HEADER, err))
			goto proto;
		qsort(f, nf, sizeof(*f), cmp_fetch_uid);
		if (add_fetched(mb, f, nf, err))
			goto out;
		imap_fetch_free(f, nf);
		f = NULL;
		nf = 0;
		done += k;
	}
	ret = 0;
	goto out;
proto:
	err_prefix(err, "%s", mb->label);
out:
	imap_fetch_free(f, nf);
	free(uids);
	free(part);
	return ret;
}

static size_t item_index(struct mailbox *mb, uint32_t uid)
{
	struct imap_state *st = mb->impl;
	size_t lo = 0, hi = mb->n_items;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (st->uids[mid] == uid)
			return mid;
		if (st->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (size_t)-1;
}

static int parse_uid(const char *s, uint32_t *out)
{
	char *e;
	unsigned long v = strtoul(s, &e, 10);

	if (*e || v == 0 || v > 0xffffffffUL)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* The fields the rules read, each header block cut at IMAP_HEADER_CAP:
 * the whole header of an Exchange message (Received, DKIM, ARC ...) is
 * often larger than the fields together, and libcurl limits the answer
 * of one command to 300 KB. */
#define IMAP_HEADER_FIELDS \
	"BODY.PEEK[HEADER.FIELDS (DATE FROM SENDER REPLY-TO SUBJECT MESSAGE-ID " \
	"CONTENT-TYPE MIME-VERSION)]"

/* One pass over the items idx[0..n) (ascending), each header block cut
 * at cap bytes, as many per command as surely fit in one answer. */
static int fetch_header_pass(struct mailbox *mb, const size_t *idx, size_t n,
			     size_t cap, struct ms_err *err)
{
	struct imap_state *st = mb->impl;
	struct buf *lines = mb_session_lines(mb);
	char cmd[IMAP_SET_MAX + 256], set[IMAP_SET_MAX];
	uint32_t *uids;
	size_t done = 0;
	int ret = -1;

	uids = malloc((n ? n : 1) * sizeof(*uids));
	if (!uids)
		return err_set(err, MS_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		uids[i] = st->uids[idx[i]];
	while (done < n) {
		struct imap_fetch *f = NULL;
		size_t take = 0, budget = 0, k, nf = 0;

		while (done + take < n && take < IMAP_SET_ITEMS) {
			size_t sz = mb->items[idx[done + take]].size;
			size_t cost = (sz && sz < cap ? sz : cap) + 256;
			if (take && budget + cost > IMAP_ANSWER_BUDGET)
				break;
			budget += cost;
			take++;
		}
		k = imap_uid_set(uids + done, take, set, sizeof(set));
		if (!k) {
			err_set(err, MS_ERR_INTERNAL, "cannot build a UID set");
			goto out;
		}
		snprintf(cmd, sizeof(cmd), "UID FETCH %s (UID %s<0.%zu>)", set,
			 IMAP_HEADER_FIELDS, cap);
		if (imap_cmd(mb, cmd, err))
			goto out;
		if (mb_session_clipped(mb)) {
			err_set(err, MS_ERR_PROTO, "%s: header line too long", mb->label);
			goto out;
		}
		if (imap_parse_fetch(lines->data, lines->len, &f, &nf, IMAP_SET_ITEMS * 2,
				     cap, err)) {
			err_prefix(err, "%s", mb->label);
			goto out;
		}
		for (size_t i = 0; i < nf; i++) {
			size_t ix = item_index(mb, f[i].uid);
			struct mailbox_item *it;
			if (ix == (size_t)-1 || !f[i].has_body)
				continue;
			it = &mb->items[ix];
			free(it->headers);
			it->headers = f[i].body;
			it->headers_len = f[i].body_len;
			f[i].body = NULL;
		}
		imap_fetch_free(f, nf);
		for (size_t i = done; i < done + k; i++) {
			struct mailbox_item *it = &mb->items[idx[i]];
			if (!it->headers && !(it->headers = strdup(""))) {
				err_set(err, MS_ERR_NOMEM, "out of memory");
				goto out;
			}
		}
		done += k;
	}
	ret = 0;
out:
	free(uids);
	return ret;
}

/* First every message with a small cap (many per round trip: usually all
 * of a run in one), then again with a large cap only those that filled
 * the small one. */
static int imap_fetch_headers(struct mailbox *mb, struct ms_err *err)
{
	size_t *idx, n = 0;
	int ret = -1;

	idx = malloc(mb->n_items * sizeof(*idx));
	if (!idx)
		return err_set(err, MS_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < mb->n_items; i++)
		idx[i] = i;
	if (fetch_header_pass(mb, idx, mb->n_items, IMAP_HEADER_CAP, err))
		goto out;
	for (size_t i = 0; i < mb->n_items; i++)
		if (mb->items[i].headers_len >= IMAP_HEADER_CAP)
			idx[n++] = i;
	if (n && fetch_header_pass(mb, idx, n, IMAP_HEADER_CAP_BIG, err))
		goto out;
	for (size_t i = 0; i < n; i++)
		if (mb->items[idx[i]].headers_len >= IMAP_HEADER_CAP_BIG)
			log_debug("%s: header fields of %s cut at %d bytes", mb->label,
				  mb->items[idx[i]].key, IMAP_HEADER_CAP_BIG);
	ret = 0;
out:
	free(idx);
	return ret;
}

/* The whole message in pieces of IMAP_PIECE bytes (BODY.PEEK[]<off.len>):
 * each answer stays under libcurl's 300 KB limit and never sets \Seen. */
static int imap_fetch_message(struct mailbox *mb, const struct mailbox_item *it,
			      struct buf *out, struct ms_err *err)
{
	struct buf *lines = mb_session_lines(mb);
	struct imap_fetch *f = NULL;
	size_t nf = 0, off = 0, total = (size_t)-1, i, start = out->len;
	uint32_t uid;
	char cmd[128];

	if (parse_uid(it->server_id, &uid))
		return err_set(err, MS_ERR_INTERNAL, "bad UID '%s'", it->server_id);
	for (size_t piece = 0; piece <= MB_MAX_MESSAGE / IMAP_PIECE + 1; piece++) {
		snprintf(cmd, sizeof(cmd), "UID FETCH %u (UID RFC822.SIZE BODY.PEEK[]<%zu.%zu>)",
			 uid, off, (size_t)IMAP_PIECE);
		if (imap_cmd(mb, cmd, err))
			return -1;
		if (mb_session_clipped(mb))
			return err_set(err, MS_ERR_PROTO, "%s: message %u: line too long",
				       mb->label, uid);
		if (imap_parse_fetch(lines->data, lines->len, &f, &nf, 16, IMAP_PIECE, err))
			return err_prefix(err, "%s: message %u", mb->label, uid);
		for (i = 0; i < nf; i++)
			if (f[i].uid == uid && f[i].has_body)
				break;
		if (i == nf) {
			imap_fetch_free(f, nf);
			return err_set(err, MS_ERR_PROTO, "%s: message %u is gone from the server",
				       mb->label, uid);
		}
		if (f[i].has_size) {
			if (f[i].size > MB_MAX_MESSAGE) {
				size_t sz = f[i].size;
				imap_fetch_free(f, nf);
				return err_set(err, MS_ERR_TOOBIG,
					       "%s: message %u is %zu bytes, more than the limit of %zu",
					       mb->label, uid, sz, MB_MAX_MESSAGE);
			}
			total = f[i].size;
		}
		if (buf_append(out, f[i].body, f[i].body_len, err)) {
			imap_fetch_free(f, nf);
			return -1;
		}
		off += f[i].body_len;
		{
			size_t got = f[i].body_len;
			imap_fetch_free(f, nf);
			f = NULL;
			nf = 0;
			if (got < IMAP_PIECE || (total != (size_t)-1 && off >= total))
				break;
		}
	}
	if (total != (size_t)-1 && out->len - start != total)
		return err_set(err, MS_ERR_PROTO, "%s: message %u: %zu bytes read, %zu announced",
			       mb->label, uid, out->len - start, total);
	return 0;
}

static int imap_delete(struct mailbox *mb, const struct mailbox_item *it,
		       struct ms_err *err)
{
	struct imap_state *st = mb->impl;
	uint32_t uid;
	char cmd[96];

	if (parse_uid(it->server_id, &uid))
		return err_set(err, MS_ERR_INTERNAL, "bad UID '%s'", it->server_id);
	snprintf(cmd, sizeof(cmd), "UID STORE %u +FLAGS.SILENT (\\Deleted)", uid);
	if (imap_cmd(mb, cmd, err))
		return -1;
	if (st->uidplus) {
		/* only this message goes, not others flagged by someone else */
		snprintf(cmd, sizeof(cmd), "UID EXPUNGE %u", uid);
		return imap_cmd(mb, cmd, err);
	}
	st->need_expunge = 1;
	return 0;
}

static int imap_close(struct mailbox *mb, struct ms_err *err)
{
	struct imap_state *st = mb->impl;

	if (st && st->need_expunge && mb->session)
		return imap_cmd(mb, "EXPUNGE", err);
	return 0;
}

const struct mailbox_ops mailbox_imap_ops = {
	"imap",
	imap_open,
	imap_list,
	imap_fetch_headers,
	imap_fetch_message,
	imap_delete,
	imap_close,
	imap_free,
};
