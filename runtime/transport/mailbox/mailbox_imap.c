/*
 * mailbox_imap.c - IMAP over libcurl custom requests.
 *
 * libcurl connects, negotiates TLS (implicit or STARTTLS) and logs in
 * (SASL PLAIN/LOGIN or XOAUTH2) with CURLOPT_CONNECT_ONLY; the commands
 * then go over that connection (mb_conn_*) and a small strict reader
 * takes the answers: one response at a time (its line, at most
 * IMAP_MAX_LINE, and every {n} literal read exactly), at most
 * IMAP_MAX_RESPONSE per response and a per-command total, every read
 * bounded by the timeout.  libcurl itself cannot read the answers: it
 * counts every IMAP response line and literal against its 300 KB limit
 * on "response headers" (Debian's 7.88.1 with the CVE-2023-38039 fix,
 * curl >= 8.3), which any mailbox of a few hundred messages exceeds.
 *
 * The listing and the header fields are one UID FETCH (1:*, or from the
 * first UID a UID SEARCH SINCE finds), each response made an item as it
 * arrives; the answer's total cap is per message (header cap + 1 KB) times
 * the folder's size.  A whole message is one UID FETCH BODY.PEEK[] (never
 * \Seen), at most 64 MB.
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

#define IMAP_SET_MAX       6000            /* characters of one UID set */
#define IMAP_BATCH         500             /* messages per header FETCH */
#define IMAP_HEADER_CAP    (64 * 1024)     /* header fields of one message */
#define IMAP_SEARCH_RANGE  20000           /* message numbers per SEARCH */
#define IMAP_MAX_LINE      ((size_t)1024 * 1024)   /* one response line */
#define IMAP_MAX_LITERALS  64              /* literals in one response */
#define IMAP_KEEP_RESP     (1024 * 1024)   /* response buffer kept between commands */
#define IMAP_MAX_RESPONSE  (MB_MAX_MESSAGE + (size_t)1024 * 1024)
#define IMAP_SMALL_ANSWER  ((size_t)4 * 1024 * 1024)   /* SELECT, STORE ... */

struct imap_state {
	uint32_t uidvalidity;
	uint32_t exists;         /* messages at SELECT time */
	int selected;
	int uidplus;
	int need_expunge;
	int headers_listed;       /* imap_list fetched the header fields */
	uint32_t *uids;          /* uid of items[i] */
	uint32_t *ours;          /* without UIDPLUS: UIDs we flagged \Deleted */
	size_t n_ours, cap_ours;
	unsigned tag;            /* last command tag number */
	struct buf resp;         /* the response being read */
	char select_cmd[600];
};

/* ------------------------------------------------------------------ */
/* the backend: commands over the raw connection */

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

/* Called for every untagged response of a command (the whole response:
 * its line and the literals it announces); resp NULL means "the command
 * is repeated after a reconnection: start over". */
typedef int (*imap_untagged_fn)(struct mailbox *mb, void *ctx, const char *resp,
				size_t len, struct ms_err *err);

/* The literal a response line announces at its end ("{n}", "{n+}",
 * "~{n}" before CRLF); 1 when there is one. */
static int line_literal(const char *line, size_t len, size_t *n)
{
	const char *e = line + len, *q;
	unsigned long long v = 0, mul = 1;

	while (e > line && (e[-1] == '\n' || e[-1] == '\r'))
		e--;
	if (e == line || e[-1] != '}')
		return 0;
	q = e - 1;
	if (q > line && q[-1] == '+')
		q--;
	while (q > line && isdigit((unsigned char)q[-1]) && mul <= 1000000000000ULL) {
		v += (unsigned long long)(q[-1] - '0') * mul;
		mul *= 10;
		q--;
	}
	if (mul == 1 || q == line || q[-1] != '{')
		return 0;
	if (v > (unsigned long long)SIZE_MAX / 2)
		v = SIZE_MAX / 2;
	*n = (size_t)v;
	return 1;
}

/* Read one whole response into out: its line, and for every literal the
 * line announces, the literal's bytes and the line that continues it. */
static int imap_read_response(struct mailbox *mb, struct buf *out,
			      struct ms_err *err)
{
	for (int lits = 0; lits < IMAP_MAX_LITERALS; lits++) {
		size_t start = out->len, n;

		if (mb_conn_read_line(mb, out, IMAP_MAX_LINE, err))
			return -1;
		mb_conn_trace(mb, "<", out->data + start, out->len - start);
		if (!line_literal(out->data + start, out->len - start, &n))
			return 0;
		if (n > out->cap - out->len) {
			mb_conn_abandon(mb);
			return err_set(err, MS_ERR_TOOBIG,
				       "%s: response of more than %zu bytes", mb->label,
				       out->cap);
		}
		if (mb_conn_read_exact(mb, out, n, err))
			return -1;
		if (mb->p.verbose && log_enabled(LOG_LVL_TRACE))
			log_trace("< [%zu bytes]", n);
	}
	mb_conn_abandon(mb);
	return err_set(err, MS_ERR_PROTO, "%s: more than %d literals in one response",
		       mb->label, IMAP_MAX_LITERALS);
}

/* One command: send it, hand every untagged response to fn, check the
 * tagged status.  total caps the bytes of all its responses. */
static int imap_exec_once(struct mailbox *mb, const char *cmd, imap_untagged_fn fn,
			  void *ctx, size_t total, struct ms_err *err)
{
	struct imap_state *st = mb->impl;
	struct buf *r = &st->resp;
	char tag[16], *line;
	size_t tl, got = 0;
	int rc;

	tl = (size_t)snprintf(tag, sizeof(tag), "M%03u", ++st->tag % 100000);
	line = malloc(tl + 1 + strlen(cmd) + 1);
	if (!line)
		return err_nomem(err);
	sprintf(line, "%s %s", tag, cmd);
	rc = mb_conn_send(mb, line, err);
	free(line);
	if (rc)
		return -1;
	for (;;) {
		buf_reset(r);
		if (imap_read_response(mb, r, err))
			return -1;
		got += r->len;
		if (got > total) {
			mb_conn_abandon(mb);
			return err_set(err, MS_ERR_TOOBIG,
				       "%s: answer to '%s' larger than %zu bytes",
				       mb->label, cmd, total);
		}
		if (r->len > tl && strncmp(r->data, tag, tl) == 0 && r->data[tl] == ' ') {
			const char *s = r->data + tl + 1;
			char last[400];
			if (strncasecmp(s, "OK", 2) == 0 && (s[2] == ' ' || s[2] == '\r' ||
							    s[2] == '\n'))
				return 0;
			mb_last_line(r->data, r->len, last, sizeof(last));
			return err_set(err, MS_ERR_PROTO, "%s: '%s' failed: %s", mb->label,
				       cmd, last);
		}
		if (r->len >= 5 && strncasecmp(r->data, "* BYE", 5) == 0 &&
		    strcmp(cmd, "LOGOUT") != 0) {
			char last[400];
			/* the server ends the session (Exchange:
			 * "Session invalidated - AccessTokenExpired") */
			mb_last_line(r->data, r->len, last, sizeof(last));
			mb_conn_abandon(mb);
			return err_set(err, MS_ERR_NET, "%s: session ended by the server: %s",
				       mb->label, last);
		}
		if (r->len >= 2 && r->data[0] == '*' && r->data[1] == ' ') {
			if (fn && fn(mb, ctx, r->data, r->len, err))
				return -1;
			continue;
		}
		{
			char last[400];
			mb_last_line(r->data, r->len, last, sizeof(last));
			mb_conn_abandon(mb);
			return err_set(err, MS_ERR_PROTO, "%s: unexpected answer to '%s': %s",
				       mb->label, cmd, last);
		}
	}
}

static int imap_select(struct mailbox *mb, struct ms_err *err);

/* One command on the selected folder.  When the connection is gone
 * (the server dropped us, a timeout), log in again, select again
 * (refusing a changed UIDVALIDITY), and repeat it once. */
static int imap_run(struct mailbox *mb, const char *cmd, imap_untagged_fn fn,
		    void *ctx, size_t total, struct ms_err *err)
{
	struct imap_state *st = mb->impl;
	struct ms_err first = MS_ERR_INIT;

	if (!mb_conn_lost(mb)) {
		if (imap_exec_once(mb, cmd, fn, ctx, total, &first) == 0)
			return 0;
		if (!mb_conn_lost(mb) || first.code == MS_ERR_TOOBIG)
			return err_set(err, first.code, "%s", first.msg);
		log_debug("%s: session lost (%s); logging in again", mb->label, first.msg);
	}
	if (mb_conn_open(mb, 1, err))
		return -1;
	log_debug("%s: reconnected", mb->label);
	if (st->selected && imap_select(mb, err))
		return -1;
	if (fn && fn(mb, ctx, NULL, 0, err))
		return -1;
	return imap_exec_once(mb, cmd, fn, ctx, total, err);
}

struct select_ctx {
	uint32_t uidvalidity, exists;
	int has_uidvalidity, has_exists, uidplus;
};

static int on_select(struct mailbox *mb, void *vctx, const char *resp, size_t len,
		     struct ms_err *err)
{
	struct select_ctx *c = vctx;
	uint32_t v;

	(void)mb;
	(void)err;
	if (!resp) {
		memset(c, 0, sizeof(*c));
		return 0;
	}
	if (imap_parse_uidvalidity(resp, len, &v) == 0) {
		c->uidvalidity = v;
		c->has_uidvalidity = 1;
	}
	if (imap_parse_exists(resp, len, &v) == 0) {
		c->exists = v;
		c->has_exists = 1;
	}
	if (imap_has_capability(resp, len, "UIDPLUS"))
		c->uidplus = 1;
	return 0;
}

static int imap_select(struct mailbox *mb, struct ms_err *err)
{
	struct imap_state *st = mb->impl;
	struct select_ctx c;

	memset(&c, 0, sizeof(c));
	st->selected = 0;
	/* not imap_run: this is what imap_run repeats after a reconnection */
	if (imap_exec_once(mb, st->select_cmd, on_select, &c, IMAP_SMALL_ANSWER, err))
		return -1;
	if (c.uidplus)
		st->uidplus = 1;
	st->exists = c.has_exists ? c.exists : 0;
	if (!c.has_uidvalidity)
		return err_set(err, MS_ERR_PROTO, "%s: no UIDVALIDITY for folder '%s'",
			       mb->label, mb->p.folder);
	if (st->uidvalidity && c.uidvalidity != st->uidvalidity)
		return err_set(err, MS_ERR_PROTO,
			       "%s: UIDVALIDITY of folder '%s' changed from %u to %u "
			       "during the run", mb->label, mb->p.folder,
			       st->uidvalidity, c.uidvalidity);
	st->uidvalidity = c.uidvalidity;
	st->selected = 1;
	return 0;
}

static int on_capability(struct mailbox *mb, void *vctx, const char *resp,
			 size_t len, struct ms_err *err)
{
	int *uidplus = vctx;

	(void)mb;
	(void)err;
	if (resp && imap_has_capability(resp, len, "UIDPLUS"))
		*uidplus = 1;
	return 0;
}

static int imap_open(struct mailbox *mb, struct ms_err *err)
{
	struct imap_state *st;
	char q[512];

	st = calloc(1, sizeof(*st));
	if (!st)
		return err_nomem(err);
	mb->impl = st;
	buf_init(&st->resp, IMAP_MAX_RESPONSE);
	if (quote_mailbox(mb->p.folder, q, sizeof(q)))
		return err_set(err, MS_ERR_CONFIG, "bad folder name '%s'", mb->p.folder);
	snprintf(st->select_cmd, sizeof(st->select_cmd), "%s %s",
		 mb->p.read_only ? "EXAMINE" : "SELECT", q);
	if (mb_session_new(mb, "imap", err))
		return -1;
	if (mb_conn_open(mb, 0, err))
		return -1;
	if (imap_select(mb, err))
		return -1;
	if (!st->uidplus) {
		int uidplus = 0;
		if (imap_run(mb, "CAPABILITY", on_capability, &uidplus,
			     IMAP_SMALL_ANSWER, err))
			return -1;
		st->uidplus = uidplus;
	}
	log_debug("%s: folder '%s' UIDVALIDITY %u, %u messages%s", mb->label,
		  mb->p.folder, st->uidvalidity, st->exists,
		  st->uidplus ? ", UIDPLUS" : "");
	return 0;
}

static void imap_free(struct mailbox *mb)
{
	struct imap_state *st = mb->impl;

	if (!st)
		return;
	free(st->uids);
	free(st->ours);
	buf_release(&st->resp);
	free(st);
	mb->impl = NULL;
}

struct uid_vec {
	uint32_t *v;
	size_t n, start;        /* start: length before this command */
};

static int on_search(struct mailbox *mb, void *vctx, const char *resp, size_t len,
		     struct ms_err *err)
{
	struct uid_vec *u = vctx;
	uint32_t *part = NULL, *t;
	size_t np = 0;

	if (!resp) {
		u->n = u->start;
		return 0;
	}
	if (imap_parse_search(resp, len, &part, &np, MB_MAX_ITEMS, err))
		return err_prefix(err, "%s", mb->label);
	if (!np) {
		free(part);
		return 0;
	}
	if (u->n + np > MB_MAX_ITEMS) {
		free(part);
		return err_set(err, MS_ERR_TOOBIG, "%s: more than %zu messages in the folder",
			       mb->label, MB_MAX_ITEMS);
	}
	t = realloc(u->v, (u->n + np) * sizeof(*t));
	if (!t) {
		free(part);
		return err_nomem(err);
	}
	memcpy(t + u->n, part, np * sizeof(*part));
	u->v = t;
	u->n += np;
	free(part);
	return 0;
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

/* The listing and the header fields the rules read (the whole header of
 * an Exchange message, Received, DKIM, ARC ..., is often ten times
 * larger), each block cut at IMAP_HEADER_CAP, in one UID FETCH. */
#define IMAP_HEADER_FIELDS \
	"BODY.PEEK[HEADER.FIELDS (DATE FROM SENDER REPLY-TO SUBJECT MESSAGE-ID " \
	"CONTENT-TYPE MIME-VERSION)]"

struct list_ctx {
	int unsorted;           /* a response came out of UID order */
	const uint32_t *deleted;  /* sorted: listed whatever their date */
	size_t n_deleted;
};

/* Each FETCH response becomes an item (with its header block) as it
 * arrives: memory stays one response plus what the items keep. */
static int on_list(struct mailbox *mb, void *vctx, const char *resp, size_t len,
		   struct ms_err *err)
{
	struct imap_state *st = mb->impl;
	struct list_ctx *c = vctx;
	struct imap_fetch *f = NULL;
	size_t nf = 0;
	int ret = 0;

	if (!resp) {
		/* repeated after a reconnection: start over */
		mb_items_free(mb->items, mb->n_items);
		mb->items = NULL;
		mb->n_items = 0;
		c->unsorted = 0;
		return 0;
	}
	if (imap_parse_fetch(resp, len, &f, &nf, 16, IMAP_HEADER_CAP, err))
		return err_prefix(err, "%s", mb->label);
	for (size_t i = 0; i < nf && ret == 0; i++) {
		struct mailbox_item *it;
		char key[64], id[16];

		/* unsolicited FETCH (FLAGS changes) carry no UID or no data */
		if (!f[i].uid || !(f[i].has_size || f[i].has_date || f[i].has_body))
			continue;
		if (mb->p.since && f[i].has_date && f[i].internaldate < mb->p.since &&
		    !(c->n_deleted && bsearch(&f[i].uid, c->deleted, c->n_deleted,
					      sizeof(*c->deleted), imap_cmp_u32)))
			continue;
		if (mb->n_items && st->uids[mb->n_items - 1] == f[i].uid) {
			/* the server split one message's data over two
			 * responses: merge */
			it = &mb->items[mb->n_items - 1];
		} else {
			if (mb->n_items && st->uids[mb->n_items - 1] > f[i].uid)
				c->unsorted = 1;
			if (mb_grow_point(mb->n_items)) {
				size_t want = mb->n_items ? mb->n_items * 2 : 16;
				uint32_t *t = realloc(st->uids, want * sizeof(*t));
				if (!t) {
					ret = err_nomem(err);
					break;
				}
				st->uids = t;
			}
			snprintf(key, sizeof(key), "imap:%u:%u", st->uidvalidity, f[i].uid);
			snprintf(id, sizeof(id), "%u", f[i].uid);
			if (mb_item_add(mb, strdup(key), strdup(id), 0, 0, err)) {
				ret = -1;
				break;
			}
			st->uids[mb->n_items - 1] = f[i].uid;
			it = &mb->items[mb->n_items - 1];
		}
		if (f[i].has_size)
			it->size = f[i].size;
		if (f[i].has_date)
			it->received = f[i].internaldate;
		if (f[i].has_body && !it->headers) {
			it->headers = f[i].body;
			it->headers_len = f[i].body_len;
			f[i].body = NULL;
		}
	}
	imap_fetch_free(f, nf);
	return ret;
}

static int cmp_item_uid(const void *a, const void *b)
{
	const struct mailbox_item *x = a, *y = b;
	unsigned long u = strtoul(x->server_id, NULL, 10);
	unsigned long v = strtoul(y->server_id, NULL, 10);

	return u < v ? -1 : u > v;
}

/* Put the items in UID order (item_index searches st->uids) and drop
 * repeated UIDs; only needed when a server answered out of order. */
static void sort_items(struct mailbox *mb)
{
	struct imap_state *st = mb->impl;
	size_t w = 0;

	qsort(mb->items, mb->n_items, sizeof(*mb->items), cmp_item_uid);
	for (size_t i = 0; i < mb->n_items; i++) {
		uint32_t uid = (uint32_t)strtoul(mb->items[i].server_id, NULL, 10);
		if (w && st->uids[w - 1] == uid) {
			free(mb->items[i].key);
			free(mb->items[i].server_id);
			free(mb->items[i].headers);
			continue;
		}
		mb->items[w] = mb->items[i];
		st->uids[w++] = uid;
	}
	mb->n_items = w;
}

/* One UID FETCH for the listing and the header fields: 1:*, or with
 * params->since from the first UID a UID SEARCH SINCE finds (SINCE has
 * day granularity in the server's zone: ask a day early, then filter on
 * INTERNALDATE as the answer streams in). */
static int imap_list(struct mailbox *mb, struct ms_err *err)
{
	struct imap_state *st = mb->impl;
	struct uid_vec u = { NULL, 0, 0 }, del = { NULL, 0, 0 };
	struct list_ctx lc = { 0 };
	char cmd[512], since[48] = "", range[32] = "1:*";
	size_t per_msg = (size_t)IMAP_HEADER_CAP + 1024, expect;
	size_t cut = 0;
	int ret = -1;

	free(st->uids);
	st->uids = NULL;
	st->headers_listed = 0;
	if (st->exists > 20 * MB_MAX_ITEMS)
		return err_set(err, MS_ERR_TOOBIG, "%s: folder '%s' holds %u messages, "
			       "more than this tool reads", mb->label, mb->p.folder,
			       st->exists);
	if (mb->p.since) {
		time_t day = mb->p.since - 86400;
		struct tm tm;
		gmtime_r(&day, &tm);
		/* without UIDPLUS, mail we flagged \Deleted in an earlier run
		 * and could not expunge yet (imap_expunge_ours) is listed
		 * whatever its date, so that this run deletes it again and
		 * counts it as ours, not as another client's */
		strftime(since, sizeof(since), st->uidplus ? " SINCE %d-%b-%Y" :
			 " OR SINCE %d-%b-%Y DELETED", &tm);
		if (!st->uidplus) {
			if (imap_run(mb, "UID SEARCH DELETED", on_search, &del,
				     IMAP_SMALL_ANSWER * 4, err))
				goto out;
			if (del.n)
				qsort(del.v, del.n, sizeof(*del.v), imap_cmp_u32);
			lc.deleted = del.v;
			lc.n_deleted = del.n;
		}
		/* message-number ranges keep every SEARCH line under
		 * IMAP_MAX_LINE */
		for (uint32_t lo = 1; lo <= st->exists || lo == 1; lo += IMAP_SEARCH_RANGE) {
			uint32_t hi = lo + IMAP_SEARCH_RANGE - 1;
			if (st->exists == 0)
				snprintf(cmd, sizeof(cmd), "UID SEARCH ALL%s", since);
			else if (hi >= st->exists)
				snprintf(cmd, sizeof(cmd), "UID SEARCH %u:*%s", lo, since);
			else
				snprintf(cmd, sizeof(cmd), "UID SEARCH %u:%u%s", lo, hi, since);
			u.start = u.n;
			if (imap_run(mb, cmd, on_search, &u, IMAP_SMALL_ANSWER * 4, err))
				goto out;
			if (hi >= st->exists)
				break;
		}
		if (u.n == 0) {
			st->headers_listed = 1;
			ret = 0;
			goto out;
		}
		qsort(u.v, u.n, sizeof(*u.v), imap_cmp_u32);
		snprintf(range, sizeof(range), "%u:*", u.v[0]);
	}
	/* the answer's cap grows with the folder: every message at most one
	 * capped header block and its attributes, plus room for mail that
	 * arrives meanwhile */
	expect = (st->exists < MB_MAX_ITEMS ? st->exists : MB_MAX_ITEMS) + 1000;
	snprintf(cmd, sizeof(cmd), "UID FETCH %s (UID INTERNALDATE RFC822.SIZE %s<0.%d>)",
		 range, IMAP_HEADER_FIELDS, IMAP_HEADER_CAP);
	if (imap_run(mb, cmd, on_list, &lc, expect * per_msg + IMAP_SMALL_ANSWER, err))
		goto out;
	if (lc.unsorted)
		sort_items(mb);
	for (size_t i = 0; i < mb->n_items; i++) {
		struct mailbox_item *it = &mb->items[i];
		if (!it->headers && !(it->headers = strdup(""))) {
			err_nomem(err);
			goto out;
		}
		if (it->headers_len >= IMAP_HEADER_CAP)
			cut++;
	}
	if (cut)
		log_debug("%s: header fields of %zu message(s) cut at %d bytes", mb->label,
			  cut, IMAP_HEADER_CAP);
	st->headers_listed = 1;
	ret = 0;
out:
	free(u.v);
	free(del.v);
	return ret;
}

/* Each FETCH response goes straight onto its item: memory stays one
 * response plus the header blocks kept. */
static int on_headers(struct mailbox *mb, void *vctx, const char *resp,
		      size_t len, struct ms_err *err)
{
	struct imap_fetch *f = NULL;
	size_t nf = 0;

	(void)vctx;
	if (!resp)
		return 0;       /* filling again is harmless */
	if (imap_parse_fetch(resp, len, &f, &nf, 16, IMAP_HEADER_CAP, err))
		return err_prefix(err, "%s", mb->label);
	for (size_t i = 0; i < nf; i++) {
		size_t ix = item_index(mb, f[i].uid);
		struct mailbox_item *it;
		if (!f[i].uid || ix == (size_t)-1 || !f[i].has_body)
			continue;
		it = &mb->items[ix];
		free(it->headers);
		it->headers = f[i].body;
		it->headers_len = f[i].body_len;
		f[i].body = NULL;
	}
	imap_fetch_free(f, nf);
	return 0;
}

/* IMAP_BATCH messages per UID FETCH: one round trip per batch, each
 * answer at most IMAP_BATCH header blocks. */
static int imap_fetch_headers(struct mailbox *mb, struct ms_err *err)
{
	struct imap_state *st = mb->impl;
	char cmd[IMAP_SET_MAX + 256], set[IMAP_SET_MAX];
	size_t done = 0, cut = 0;

	if (st->headers_listed)
		return 0;       /* imap_list fetched them with the listing */
	while (done < mb->n_items) {
		size_t take = mb->n_items - done < IMAP_BATCH ? mb->n_items - done : IMAP_BATCH;
		size_t k = imap_uid_set(st->uids + done, take, set, sizeof(set));

		if (!k)
			return err_set(err, MS_ERR_INTERNAL, "cannot build a UID set");
		snprintf(cmd, sizeof(cmd), "UID FETCH %s (UID %s<0.%d>)", set,
			 IMAP_HEADER_FIELDS, IMAP_HEADER_CAP);
		if (imap_run(mb, cmd, on_headers, NULL,
			     k * ((size_t)IMAP_HEADER_CAP + 1024) + IMAP_SMALL_ANSWER, err))
			return -1;
		for (size_t i = done; i < done + k; i++) {
			struct mailbox_item *it = &mb->items[i];
			if (!it->headers && !(it->headers = strdup("")))
				return err_nomem(err);
			if (it->headers_len >= IMAP_HEADER_CAP)
				cut++;
		}
		done += k;
	}
	if (cut)
		log_debug("%s: header fields of %zu message(s) cut at %d bytes", mb->label,
			  cut, IMAP_HEADER_CAP);
	return 0;
}

struct message_ctx {
	uint32_t uid;
	struct buf *out;
	size_t start;
	size_t total;   /* RFC822.SIZE, (size_t)-1 unknown */
	int found;
};

static int on_message(struct mailbox *mb, void *vctx, const char *resp, size_t len,
		      struct ms_err *err)
{
	struct message_ctx *c = vctx;
	struct imap_fetch *f = NULL;
	size_t nf = 0;
	int ret = 0;

	if (!resp) {
		c->out->len = c->start;
		if (c->out->data)
			c->out->data[c->start] = '\0';
		c->found = 0;
		c->total = (size_t)-1;
		return 0;
	}
	if (imap_parse_fetch_ex(resp, len, &f, &nf, 16, MB_MAX_MESSAGE, 1, err))
		return err_prefix(err, "%s: message %u", mb->label, c->uid);
	for (size_t i = 0; i < nf; i++) {
		if (f[i].uid != c->uid || !f[i].has_body || c->found)
			continue;
		if (f[i].has_size)
			c->total = f[i].size;
		c->found = 1;
		if (f[i].body_ref) {
			/* a message can be 64 MB: the response buffer itself
			 * becomes the message (the caller's loop reads the
			 * next response into a new one) */
			struct imap_state *st = mb->impl;
			size_t off = (size_t)(f[i].body_ref - resp), rlen = 0;
			char *data = buf_detach(&st->resp, &rlen);

			memmove(data, data + off, f[i].body_len);
			data[f[i].body_len] = '\0';
			ret = buf_adopt(c->out, data, f[i].body_len, err);
		} else {
			ret = buf_adopt(c->out, f[i].body, f[i].body_len, err);
			f[i].body = NULL;
		}
		break;
	}
	imap_fetch_free(f, nf);
	return ret;
}

/* The whole message in one answer with BODY.PEEK[] (never \Seen). */
static int imap_fetch_message(struct mailbox *mb, const struct mailbox_item *it,
			      struct buf *out, struct ms_err *err)
{
	struct imap_state *st = mb->impl;
	struct message_ctx c;
	char cmd[128];

	memset(&c, 0, sizeof(c));
	if (parse_uid(it->server_id, &c.uid))
		return err_set(err, MS_ERR_INTERNAL, "bad UID '%s'", it->server_id);
	c.out = out;
	c.start = out->len;
	c.total = (size_t)-1;
	snprintf(cmd, sizeof(cmd), "UID FETCH %u (UID RFC822.SIZE BODY.PEEK[])", c.uid);
	if (imap_run(mb, cmd, on_message, &c, MB_MAX_MESSAGE + IMAP_SMALL_ANSWER, err))
		return -1;
	if (st->resp.alloc > IMAP_KEEP_RESP) {
		/* the answer held the whole message: give its memory back */
		buf_release(&st->resp);
	}
	if (!c.found)
		return err_set(err, MS_ERR_PROTO, "%s: message %u is gone from the server",
			       mb->label, c.uid);
	if (c.total != (size_t)-1 && out->len - c.start != c.total)
		return err_set(err, MS_ERR_PROTO, "%s: message %u: %zu bytes read, %zu announced",
			       mb->label, c.uid, out->len - c.start, c.total);
	return 0;
}

/* A UID this session flagged \Deleted and means to expunge (no UIDPLUS). */
static int remember_ours(struct imap_state *st, uint32_t uid, struct ms_err *err)
{
	if (st->n_ours >= MB_MAX_ITEMS)
		return err_set(err, MS_ERR_TOOBIG, "more than %zu deletions in one session",
			       MB_MAX_ITEMS);
	if (MEM_GROW(st->ours, st->cap_ours, st->n_ours + 1, err))
		return -1;
	st->ours[st->n_ours++] = uid;
	return 0;
}

/* Without UIDPLUS a message goes only with a plain EXPUNGE, which removes
 * every message flagged \Deleted: also those another client flagged and
 * has not expunged yet (seen on Courier: a message another client had
 * flagged vanished).  So look first, and when a \Deleted message is not
 * one of ours, expunge nothing.  Ours stay flagged, and stay recorded as
 * deleted in the state database (DONE, deleted): a later run that still
 * lists them deletes them again (the path a POP session that died before
 * QUIT takes), and expunges once no other client's \Deleted mail is left.
 * That is the delete pending state; -v says so. */
static int imap_expunge_ours(struct mailbox *mb, struct ms_err *err)
{
	struct imap_state *st = mb->impl;
	struct uid_vec u = { NULL, 0, 0 };
	size_t foreign = 0;

	if (imap_run(mb, "UID SEARCH DELETED", on_search, &u, IMAP_SMALL_ANSWER * 4, err))
		return -1;
	if (st->n_ours)
		qsort(st->ours, st->n_ours, sizeof(*st->ours), imap_cmp_u32);
	for (size_t i = 0; i < u.n; i++)
		if (!st->n_ours ||
		    !bsearch(&u.v[i], st->ours, st->n_ours, sizeof(*st->ours), imap_cmp_u32))
			foreign++;
	free(u.v);
	if (foreign) {
		log_info("%s: folder '%s': %zu message(s) flagged \\Deleted are not ours and the "
			 "server has no UIDPLUS, so no EXPUNGE (it would remove them too); our %zu "
			 "message(s) stay flagged \\Deleted, delete pending until a later run",
			 mb->label, mb->p.folder, foreign, st->n_ours);
		return 0;
	}
	if (imap_run(mb, "EXPUNGE", NULL, NULL, IMAP_SMALL_ANSWER * 16, err))
		return -1;
	st->n_ours = 0;
	st->need_expunge = 0;
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
	if (imap_run(mb, cmd, NULL, NULL, IMAP_SMALL_ANSWER, err))
		return -1;
	if (st->uidplus) {
		/* only this message goes, not others flagged by someone else */
		snprintf(cmd, sizeof(cmd), "UID EXPUNGE %u", uid);
		return imap_run(mb, cmd, NULL, NULL, IMAP_SMALL_ANSWER, err);
	}
	if (remember_ours(st, uid, err))
		return -1;
	st->need_expunge = 1;
	return 0;
}

/* EXPUNGE when needed, then LOGOUT (libcurl closes a CONNECT_ONLY
 * connection without one); a failed LOGOUT loses nothing. */
static int imap_close(struct mailbox *mb, struct ms_err *err)
{
	struct imap_state *st = mb->impl;
	struct ms_err lerr = MS_ERR_INIT;
	int rc = 0;

	if (!st || !mb->session)
		return 0;
	if (st->need_expunge)
		rc = imap_expunge_ours(mb, err);
	if (!mb_conn_lost(mb) &&
	    imap_exec_once(mb, "LOGOUT", NULL, NULL, IMAP_SMALL_ANSWER, &lerr))
		log_debug("%s: %s", mb->label, lerr.msg);
	return rc;
}

/* Select the folder again for the next listing: SELECT/EXAMINE is what
 * makes the server show mail that arrived since (a plain UID FETCH 1:*
 * need not), and it switches between read-only and read-write.  An
 * EXPUNGE still owed by a read-write session is done first: selecting
 * again closes the folder without expunging. */
static int imap_reuse(struct mailbox *mb, int was_read_only, struct ms_err *err)
{
	struct imap_state *st = mb->impl;
	struct ms_err first = MS_ERR_INIT;
	char q[512];

	if (quote_mailbox(mb->p.folder, q, sizeof(q)))
		return err_set(err, MS_ERR_CONFIG, "bad folder name '%s'", mb->p.folder);
	if (st->need_expunge && !was_read_only) {
		if (imap_expunge_ours(mb, err))
			return -1;
	}
	snprintf(st->select_cmd, sizeof(st->select_cmd), "%s %s",
		 mb->p.read_only ? "EXAMINE" : "SELECT", q);
	if (!mb_conn_lost(mb)) {
		if (imap_select(mb, &first) == 0)
			return 0;
		if (!mb_conn_lost(mb))
			return err_set(err, first.code, "%s", first.msg);
		log_debug("%s: session lost (%s); logging in again", mb->label, first.msg);
	}
	if (mb_conn_open(mb, 1, err))
		return -1;
	return imap_select(mb, err);
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
	imap_reuse,
};
