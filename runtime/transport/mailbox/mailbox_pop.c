/*
 * mailbox_pop.c - POP3 over libcurl custom requests: UIDL for keys, LIST
 * for sizes, TOP n 0 for headers, RETR n, DELE n (committed by QUIT in
 * mailbox_close).  POP3 has no arrival date: an item's received time is
 * its Date header (0 when missing), so with params->since the listing
 * reads the headers first to filter.
 *
 * DELE marks live in the session: when libcurl had to reconnect, the
 * message numbers are mapped again through UIDL and the marks re-sent
 * before the command is repeated.
 */
#include "transport/mailbox/mailbox.h"
#include "transport/mailbox/mailbox_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/compat.h"
#include "base/log.h"
#include "base/mem.h"

/* pop_cmd(): the item's message is no longer on the server */
#define POP_GONE (-2)

struct pop_state {
	unsigned long *nums;     /* message number of items[i] */
	unsigned char *deleted;  /* items[i] marked with DELE */
	size_t n_alloc;
};

/* ------------------------------------------------------------------ */
/* pure parser */

void pop_entries_free(struct pop_entry *e, size_t n)
{
	for (size_t i = 0; e && i < n; i++)
		free(e[i].uidl);
	free(e);
}

int pop_parse_listing(const char *body, size_t len, int want_uidl,
		      struct pop_entry **out, size_t *n, size_t max,
		      struct ms_err *err)
{
	const char *p = body, *end = body + len;
	struct pop_entry *v = NULL;
	size_t nv = 0, av = 0;

	*out = NULL;
	*n = 0;
	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end, *q = p;
		unsigned long num = 0;
		int nd = 0;

		if (e > p && e[-1] == '\r')
			e--;
		if (e == p || (e - p == 1 && *p == '.')) {
			p = nl ? nl + 1 : end;
			continue;
		}
		while (q < e && isdigit((unsigned char)*q) && nd < 10) {
			num = num * 10 + (unsigned long)(*q++ - '0');
			nd++;
		}
		if (!nd || num == 0 || q >= e || *q != ' ')
			goto bad;
		while (q < e && *q == ' ')
			q++;
		if (nv >= max) {
			pop_entries_free(v, nv);
			return err_set(err, MS_ERR_TOOBIG, "more than %zu messages", max);
		}
		if (MEM_GROW(v, av, nv + 1, err) < 0) {
			pop_entries_free(v, nv);
			return -1;
		}
		memset(&v[nv], 0, sizeof(v[nv]));
		v[nv].num = num;
		if (want_uidl) {
			/* unique-id: 1..70 characters 0x21..0x7e (RFC 1939) */
			const char *u = q;
			size_t ul;
			while (q < e && *q != ' ')
				q++;
			ul = (size_t)(q - u);
			if (ul == 0 || ul > 70)
				goto bad;
			for (size_t i = 0; i < ul; i++)
				if ((unsigned char)u[i] < 0x21 || (unsigned char)u[i] > 0x7e)
					goto bad;
			v[nv].uidl = ms_strndup(u, ul);
			if (!v[nv].uidl) {
				pop_entries_free(v, nv);
				return err_nomem(err);
			}
		} else {
			unsigned long long sz = 0;
			int sd = 0;
			while (q < e && isdigit((unsigned char)*q) && sd < 19) {
				sz = sz * 10 + (unsigned long long)(*q++ - '0');
				sd++;
			}
			if (!sd)
				goto bad;
			v[nv].size = (size_t)sz;
		}
		nv++;
		p = nl ? nl + 1 : end;
	}
	*out = v;
	*n = nv;
	return 0;
bad:
	pop_entries_free(v, nv);
	return err_set(err, MS_ERR_PROTO, "bad %s line in the server's answer",
		       want_uidl ? "UIDL" : "LIST");
}

/* ------------------------------------------------------------------ */
/* the backend */

static int pop_remap(struct mailbox *mb, struct ms_err *err);

/* One command; after a reconnect, map the numbers again, re-send DELE
 * marks and repeat.  item: index of the item the command names (its
 * current number is put after verb), or (size_t)-1. */
static int pop_cmd(struct mailbox *mb, const char *verb, size_t item,
		   const char *tail, int nobody, size_t cap, struct ms_err *err)
{
	struct pop_state *st = mb->impl;
	struct ms_err first = MS_ERR_INIT;
	char cmd[160];
	int reconnected = 0, rc;

	if (item != (size_t)-1 && st->nums[item] == 0)
		return POP_GONE;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (item != (size_t)-1)
			snprintf(cmd, sizeof(cmd), "%s %lu%s", verb, st->nums[item],
				 tail ? tail : "");
		else
			snprintf(cmd, sizeof(cmd), "%s", verb);
		err_clear(&first);
		rc = mb_session_perform(mb, "", cmd, nobody, cap, &reconnected, &first);
		if (!reconnected || attempt == 1 || mb->n_items == 0)
			break;
		log_debug("%s: new POP3 session, mapping message numbers again",
			  mb->label);
		if (pop_remap(mb, err))
			return -1;
		if (item != (size_t)-1 && st->nums[item] == 0)
			return POP_GONE;
	}
	if (rc)
		return err_set(err, first.code, "%s", first.msg);
	return 0;
}

static int cmp_num(const void *a, const void *b)
{
	unsigned long x = ((const struct pop_entry *)a)->num;
	unsigned long y = ((const struct pop_entry *)b)->num;

	return x < y ? -1 : x > y;
}

static int cmp_uidl(const void *a, const void *b)
{
	return strcmp(((const struct pop_entry *)a)->uidl,
		      ((const struct pop_entry *)b)->uidl);
}

static int pop_remap(struct mailbox *mb, struct ms_err *err)
{
	struct pop_state *st = mb->impl;
	struct buf *body = mb_session_body(mb);
	struct pop_entry *e = NULL;
	size_t ne = 0;
	int ret = -1;

	if (mb_session_perform(mb, "", "UIDL", 0, 0, NULL, err))
		return -1;
	if (pop_parse_listing(body->data, body->len, 1, &e, &ne, MB_MAX_ITEMS, err))
		return err_prefix(err, "%s", mb->label);
	/* a command libcurl sent into this session on its own may have
	 * used old numbers: drop every mark, then mark again by UIDL */
	if (mb_session_perform(mb, "", "RSET", 1, 0, NULL, err))
		goto out;
	if (ne)
		qsort(e, ne, sizeof(*e), cmp_uidl);
	for (size_t i = 0; i < mb->n_items; i++) {
		struct pop_entry k = { 0, mb->items[i].key + 4, 0 };   /* "pop:" */
		const struct pop_entry *hit = ne ?
			bsearch(&k, e, ne, sizeof(*e), cmp_uidl) : NULL;
		st->nums[i] = hit ? hit->num : 0;
		if (st->deleted[i] && st->nums[i]) {
			char cmd[64];
			snprintf(cmd, sizeof(cmd), "DELE %lu", st->nums[i]);
			if (mb_session_perform(mb, "", cmd, 1, 0, NULL, err))
				goto out;
		}
	}
	ret = 0;
out:
	pop_entries_free(e, ne);
	return ret;
}

static int pop_open(struct mailbox *mb, struct ms_err *err)
{
	mb->impl = calloc(1, sizeof(struct pop_state));
	if (!mb->impl)
		return err_nomem(err);
	if (mb_session_new(mb, "pop3", err))
		return -1;
	/* connect and log in now, so a refusal shows at open */
	return mb_session_perform(mb, "", "NOOP", 1, 0, NULL, err);
}

static void pop_free(struct mailbox *mb)
{
	struct pop_state *st = mb->impl;

	if (!st)
		return;
	free(st->nums);
	free(st->deleted);
	free(st);
	mb->impl = NULL;
}

static int pop_headers_for(struct mailbox *mb, size_t i, struct ms_err *err)
{
	struct buf *body = mb_session_body(mb);
	struct mailbox_item *it = &mb->items[i];
	time_t t;

	struct pop_state *st = mb->impl;
	int rc = st->deleted[i] ? POP_GONE :
		 pop_cmd(mb, "TOP", i, " 0", 0, MB_MAX_MESSAGE, err);

	if (rc == POP_GONE) {
		/* deleted meanwhile (by another client): nothing to read */
		log_debug("%s: message %s is gone", mb->label, it->key);
		buf_reset(body);
	} else if (rc) {
		return -1;
	}
	free(it->headers);
	it->headers = buf_detach(body, &it->headers_len);
	if (!it->headers && !(it->headers = strdup("")))
		return err_nomem(err);
	if (mb_header_date(it->headers, it->headers_len, &t) == 0)
		it->received = t;
	return 0;
}

/* UIDL and LIST of one session: message numbers hold only within a
 * session, so when it is lost during either, both are asked again in
 * the new one (once). */
static int pop_listings(struct mailbox *mb, struct pop_entry **u, size_t *nu,
			struct pop_entry **l, size_t *nl, struct ms_err *err)
{
	struct buf *body = mb_session_body(mb);
	struct ms_err first = MS_ERR_INIT;
	int reconnected = 0;

	for (int attempt = 0; attempt < 2; attempt++) {
		err_clear(&first);
		if (mb_session_perform(mb, "", "UIDL", 0, 0, &reconnected, &first) ||
		    pop_parse_listing(body->data, body->len, 1, u, nu, MB_MAX_ITEMS, &first) ||
		    mb_session_perform(mb, "", "LIST", 0, 0, &reconnected, &first)) {
			pop_entries_free(*u, *nu);
			*u = NULL;
			*nu = 0;
			if (reconnected && attempt == 0) {
				log_debug("%s: new POP3 session, listing again",
					  mb->label);
				continue;
			}
			break;
		}
		if (pop_parse_listing(body->data, body->len, 0, l, nl, MB_MAX_ITEMS, &first)) {
			pop_entries_free(*u, *nu);
			*u = NULL;
			*nu = 0;
			break;
		}
		return 0;
	}
	if (first.code == MS_ERR_PROTO)
		return err_set(err, first.code, "%s: %s", mb->label, first.msg);
	return err_set(err, first.code, "%s", first.msg);
}

static int pop_list(struct mailbox *mb, struct ms_err *err)
{
	struct pop_state *st = mb->impl;
	struct pop_entry *u = NULL, *l = NULL;
	size_t nu = 0, nl = 0;
	int ret = -1;

	free(st->nums);
	free(st->deleted);
	st->nums = NULL;
	st->deleted = NULL;
	if (pop_listings(mb, &u, &nu, &l, &nl, err))
		goto out;
	if (nl)
		qsort(l, nl, sizeof(*l), cmp_num);
	if (nu) {
		st->nums = calloc(nu, sizeof(*st->nums));
		st->deleted = calloc(nu, 1);
		if (!st->nums || !st->deleted) {
			err_nomem(err);
			goto out;
		}
	}
	for (size_t i = 0; i < nu; i++) {
		char key[80], id[24];
		size_t size = 0;

		struct pop_entry want = { u[i].num, NULL, 0 };
		const struct pop_entry *hit = nl ?
			bsearch(&want, l, nl, sizeof(*l), cmp_num) : NULL;

		if (hit)
			size = hit->size;
		snprintf(key, sizeof(key), "pop:%s", u[i].uidl);
		snprintf(id, sizeof(id), "%lu", u[i].num);
		if (mb_item_add(mb, strdup(key), strdup(id), size, 0, err))
			goto out;
		st->nums[mb->n_items - 1] = u[i].num;
	}
	if (mb->p.since) {
		/* no arrival date in POP3: read the Date headers, keep only
		 * mail at or after since (or without a readable date) */
		size_t w = 0;
		for (size_t i = 0; i < mb->n_items; i++) {
			if (pop_headers_for(mb, i, err))
				goto out;
		}
		for (size_t i = 0; i < mb->n_items; i++) {
			struct mailbox_item *it = &mb->items[i];
			if (it->received && it->received < mb->p.since) {
				free(it->key);
				free(it->server_id);
				free(it->headers);
				continue;
			}
			st->nums[w] = st->nums[i];
			mb->items[w++] = *it;
		}
		mb->n_items = w;
	}
	ret = 0;
out:
	pop_entries_free(u, nu);
	pop_entries_free(l, nl);
	return ret;
}

static int pop_fetch_headers(struct mailbox *mb, struct ms_err *err)
{
	for (size_t i = 0; i < mb->n_items; i++) {
		if (mb->items[i].headers)
			continue;
		if (pop_headers_for(mb, i, err))
			return -1;
	}
	return 0;
}

static size_t item_of(struct mailbox *mb, const struct mailbox_item *it)
{
	if (it >= mb->items && it < mb->items + mb->n_items)
		return (size_t)(it - mb->items);
	for (size_t i = 0; i < mb->n_items; i++)
		if (strcmp(mb->items[i].key, it->key) == 0)
			return i;
	return (size_t)-1;
}

static int pop_fetch_message(struct mailbox *mb, const struct mailbox_item *it,
			     struct buf *out, struct ms_err *err)
{
	struct buf *body = mb_session_body(mb);
	size_t i = item_of(mb, it);

	if (i == (size_t)-1)
		return err_set(err, MS_ERR_INTERNAL, "%s: unknown message %s",
			       mb->label, it->key);
	switch (pop_cmd(mb, "RETR", i, NULL, 0, MB_MAX_MESSAGE, err)) {
	case 0:
		break;
	case POP_GONE:
		return err_set(err, MS_ERR_PROTO, "%s: message %s is gone", mb->label,
			       it->key);
	default:
		return -1;
	}
	/* moved, not copied: a message can be 64 MB */
	{
		size_t len = 0;
		char *data = buf_detach(body, &len);

		return buf_adopt(out, data, len, err);
	}
}

static int pop_delete(struct mailbox *mb, const struct mailbox_item *it,
		      struct ms_err *err)
{
	struct pop_state *st = mb->impl;
	size_t i = item_of(mb, it);

	if (i == (size_t)-1)
		return err_set(err, MS_ERR_INTERNAL, "%s: unknown message %s",
			       mb->label, it->key);
	if (st->deleted[i])
		return 0;
	switch (pop_cmd(mb, "DELE", i, NULL, 1, 0, err)) {
	case 0:
		break;
	case POP_GONE:
		log_debug("%s: message %s was already deleted", mb->label, it->key);
		break;
	default:
		return -1;
	}
	st->deleted[i] = 1;
	return 0;
}

static int pop_close(struct mailbox *mb, struct ms_err *err)
{
	if (!mb->session)
		return 0;
	/* QUIT commits the DELE marks: its answer must be +OK */
	if (pop_cmd(mb, "QUIT", (size_t)-1, NULL, 1, 0, err))
		return err_prefix(err, "deletions not committed");
	return 0;
}

const struct mailbox_ops mailbox_pop_ops = {
	"pop3",
	pop_open,
	pop_list,
	pop_fetch_headers,
	pop_fetch_message,
	pop_delete,
	pop_close,
	pop_free,
	NULL,
};
