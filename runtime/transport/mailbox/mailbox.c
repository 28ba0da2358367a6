/*
 * mailbox.c - the protocol-independent half of the mailbox interface:
 * dispatch to the backends, the item list and small date helpers.  The
 * libcurl session IMAP and POP3 share is in mailbox_session.c.
 */
#include "transport/mailbox/mailbox.h"
#include "transport/mailbox/mailbox_int.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "base/mem.h"

/* ------------------------------------------------------------------ */
/* items */

int mb_grow_point(size_t n)
{
	return n == 0 || (n >= 16 && (n & (n - 1)) == 0);
}

void mb_items_free(struct mailbox_item *items, size_t n)
{
	for (size_t i = 0; items && i < n; i++) {
		free(items[i].key);
		free(items[i].server_id);
		free(items[i].headers);
	}
	free(items);
}

int mb_item_add(struct mailbox *mb, char *key, char *server_id, size_t size,
		time_t received, struct ms_err *err)
{
	struct mailbox_item *it;

	if (!key || !server_id) {
		free(key);
		free(server_id);
		return err_nomem(err);
	}
	if (mb->n_items >= MB_MAX_ITEMS) {
		free(key);
		free(server_id);
		return err_set(err, MS_ERR_TOOBIG, "%s: more than %zu messages listed",
			       mb->label, MB_MAX_ITEMS);
	}
	/* grow by doubling: n_items is bounded above */
	if (mb_grow_point(mb->n_items)) {
		size_t want = mb->n_items ? mb->n_items * 2 : 16;
		it = realloc(mb->items, want * sizeof(*it));
		if (!it) {
			free(key);
			free(server_id);
			return err_nomem(err);
		}
		mb->items = it;
	}
	it = &mb->items[mb->n_items++];
	memset(it, 0, sizeof(*it));
	it->key = key;
	it->server_id = server_id;
	it->size = size;
	it->received = received;
	return 0;
}

/* ------------------------------------------------------------------ */
/* dispatch */

static int default_port(enum mail_protocol proto, enum tls_mode tls)
{
	if (proto == PROTO_IMAP)
		return tls == TLSM_IMPLICIT ? 993 : 143;
	if (proto == PROTO_POP)
		return tls == TLSM_IMPLICIT ? 995 : 110;
	return 0;
}

enum tls_mode mailbox_tls_choose(enum tls_level level, int starttls, int port)
{
	if (level == TLSL_NONE)
		return TLSM_NONE;
	if (starttls >= 0)
		return starttls ? TLSM_STARTTLS : TLSM_IMPLICIT;
	if (port == 0 || port == 993 || port == 995)
		return TLSM_IMPLICIT;
	if (port == 143 || port == 110)
		return TLSM_STARTTLS;
	return level == TLSL_UNSET ? TLSM_STARTTLS : TLSM_IMPLICIT;
}

const char *mailbox_tls_mode_name(enum tls_mode m)
{
	switch (m) {
	case TLSM_IMPLICIT: return "implicit";
	case TLSM_STARTTLS: return "starttls";
	default: return "none";
	}
}

int mailbox_open(struct mailbox **out, const struct mailbox_params *p,
		 struct ms_err *err)
{
	struct mailbox *mb;
	const char *scheme = "";
	char label[512];

	*out = NULL;
	if (!p || !p->user || !*p->user)
		return err_set(err, MS_ERR_CONFIG, "mailbox: no user configured");
	if (p->protocol != PROTO_GRAPH && p->protocol != PROTO_MSAL &&
	    (!p->host || !*p->host))
		return err_set(err, MS_ERR_CONFIG, "mailbox: no server configured");
	if (!p->password && !p->token_fn)
		return err_set(err, MS_ERR_CONFIG,
			       "mailbox: neither a password nor a token source for '%s'",
			       p->user);
	mb = calloc(1, sizeof(*mb));
	if (!mb)
		return err_nomem(err);
	mb->p = *p;
	if (!mb->p.timeout_s)
		mb->p.timeout_s = 60;
	if (!mb->p.folder || !*mb->p.folder)
		mb->p.folder = "INBOX";
	switch (p->protocol) {
	case PROTO_IMAP:
		mb->ops = &mailbox_imap_ops;
		scheme = p->tls == TLSM_IMPLICIT ? "imaps" : "imap";
		break;
	case PROTO_POP:
		mb->ops = &mailbox_pop_ops;
		scheme = p->tls == TLSM_IMPLICIT ? "pop3s" : "pop3";
		break;
	case PROTO_GRAPH:
	case PROTO_MSAL:
		mb->ops = &mailbox_graph_ops;
		if (!mb->p.graph_endpoint || !*mb->p.graph_endpoint)
			mb->p.graph_endpoint = GRAPH_DEFAULT_ENDPOINT;
		break;
	default:
		free(mb);
		return err_set(err, MS_ERR_CONFIG, "mailbox: unknown protocol");
	}
	if (mb->ops != &mailbox_graph_ops) {
		if (!mb->p.port)
			mb->p.port = default_port(p->protocol, p->tls);
		if (mb->p.port <= 0 || mb->p.port > 65535) {
			free(mb);
			return err_set(err, MS_ERR_CONFIG, "mailbox: bad port %d",
				       p->port);
		}
		snprintf(label, sizeof(label), strchr(p->host, ':') ?
			 "%s://[%s]:%d" : "%s://%s:%d", scheme, p->host, mb->p.port);
	} else {
		snprintf(label, sizeof(label), "%s (%s)", mb->p.graph_endpoint,
			 p->user);
	}
	mb->label = strdup(label);
	if (!mb->label) {
		free(mb);
		return err_nomem(err);
	}
	if (mb->ops->open(mb, err)) {
		mb->ops->free(mb);
		mb_session_free(mb->session);
		free(mb->label);
		free(mb);
		return -1;
	}
	*out = mb;
	return 0;
}

int mailbox_list(struct mailbox *mb, struct mailbox_item **items, size_t *n,
		 struct ms_err *err)
{
	mb_items_free(mb->items, mb->n_items);
	mb->items = NULL;
	mb->n_items = 0;
	*items = NULL;
	*n = 0;
	if (mb->ops->list(mb, err))
		return -1;
	*items = mb->items;
	*n = mb->n_items;
	return 0;
}

int mailbox_fetch_headers(struct mailbox *mb, struct ms_err *err)
{
	if (!mb->n_items)
		return 0;
	return mb->ops->fetch_headers(mb, err);
}

int mailbox_fetch_message(struct mailbox *mb, const struct mailbox_item *it,
			  struct buf *out, struct ms_err *err)
{
	if (it->size > MB_MAX_MESSAGE)
		return err_set(err, MS_ERR_TOOBIG,
			       "%s: message %s is %zu bytes, more than the limit of %zu",
			       mb->label, it->server_id, it->size, MB_MAX_MESSAGE);
	return mb->ops->fetch_message(mb, it, out, err);
}

int mailbox_delete(struct mailbox *mb, const struct mailbox_item *it,
		   struct ms_err *err)
{
	if (mb->p.read_only)
		return err_set(err, MS_ERR_USAGE,
			       "%s: mailbox opened read-only, not deleting %s",
			       mb->label, it->server_id);
	return mb->ops->del(mb, it, err);
}

int mailbox_close(struct mailbox *mb, struct ms_err *err)
{
	int rc;

	if (!mb)
		return 0;
	rc = mb->ops->close(mb, err);
	log_debug("%s: %ld connection(s), %ld login(s)", mb->label,
		  mb->connects, mb->logins);
	mb->ops->free(mb);
	mb_session_free(mb->session);
	mb_items_free(mb->items, mb->n_items);
	free(mb->label);
	free(mb);
	return rc;
}

int mailbox_reuse(struct mailbox *mb, time_t since, int read_only,
		  struct ms_err *err)
{
	int was = mb->p.read_only;

	mb->p.since = since;
	mb->p.read_only = read_only;
	if (mb->ops->reuse && mb->ops->reuse(mb, was, err)) {
		mb->p.read_only = was;
		return -1;
	}
	return 0;
}

int mailbox_sees_new_mail(const struct mailbox *mb)
{
	return mb->ops != &mailbox_pop_ops;
}

const struct mailbox_params *mailbox_params_of(const struct mailbox *mb)
{
	return &mb->p;
}

void mailbox_set_deadline(struct mailbox *mb, time_t deadline)
{
	mb->p.deadline = deadline;
}

void mailbox_stats(const struct mailbox *mb, long *connections, long *logins)
{
	if (connections)
		*connections = mb ? mb->connects : 0;
	if (logins)
		*logins = mb ? mb->logins : 0;
}

/* ------------------------------------------------------------------ */
/* dates */

static const char *const months[] = {
	"jan", "feb", "mar", "apr", "may", "jun",
	"jul", "aug", "sep", "oct", "nov", "dec"
};

static int month_index(const char *s)
{
	for (int i = 0; i < 12; i++)
		if (strncasecmp(s, months[i], 3) == 0)
			return i;
	return -1;
}

/* days from civil (Howard Hinnant), independent of the local zone */
static time_t utc_time(int y, int mon, int d, int h, int mi, int sec)
{
	long long yy = y - (mon <= 2);
	long long era = (yy >= 0 ? yy : yy - 399) / 400;
	long long yoe = yy - era * 400;
	long long doy = (153 * (mon + (mon > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	long long days = era * 146097 + doe - 719468;

	return (time_t)(days * 86400 + h * 3600 + mi * 60 + sec);
}

static int valid_tm(int y, int mon, int d, int h, int mi, int s)
{
	return y >= 1900 && y <= 9999 && mon >= 1 && mon <= 12 && d >= 1 &&
	       d <= 31 && h >= 0 && h <= 23 && mi >= 0 && mi <= 59 &&
	       s >= 0 && s <= 60;
}

static const char *skip_cfws(const char *p)
{
	int depth = 0;

	for (int guard = 0; *p && guard < 4096; guard++) {
		if (*p == '(')
			depth++;
		else if (*p == ')' && depth)
			depth--;
		else if (!depth && *p != ' ' && *p != '\t' && *p != '\r' &&
			 *p != '\n' && *p != ',')
			break;
		p++;
	}
	return p;
}

static int read_int(const char **pp, int maxdigits, int *out)
{
	const char *p = *pp;
	int v = 0, n = 0;

	while (n < maxdigits && isdigit((unsigned char)*p)) {
		v = v * 10 + (*p - '0');
		p++;
		n++;
	}
	if (!n)
		return -1;
	*out = v;
	*pp = p;
	return 0;
}

int mb_parse_rfc5322_date(const char *s, time_t *out)
{
	static const struct { const char *name; int off; } zones[] = {
		{ "UT", 0 }, { "UTC", 0 }, { "GMT", 0 }, { "Z", 0 },
		{ "EST", -300 }, { "EDT", -240 }, { "CST", -360 }, { "CDT", -300 },
		{ "MST", -420 }, { "MDT", -360 }, { "PST", -480 }, { "PDT", -420 },
	};
	const char *p;
	int d, mon, y, h, mi, sec = 0, off = 0;

	if (!s)
		return -1;
	p = skip_cfws(s);
	if (isalpha((unsigned char)*p)) {       /* optional day name */
		while (isalpha((unsigned char)*p))
			p++;
		p = skip_cfws(p);
	}
	if (read_int(&p, 2, &d))
		return -1;
	p = skip_cfws(p);
	if (*p == '-')
		p++;
	if ((mon = month_index(p)) < 0)
		return -1;
	while (isalpha((unsigned char)*p))
		p++;
	if (*p == '-')
		p++;
	p = skip_cfws(p);
	if (read_int(&p, 4, &y))
		return -1;
	if (y < 50)
		y += 2000;
	else if (y < 1000)
		y += 1900;
	p = skip_cfws(p);
	if (read_int(&p, 2, &h) || *p++ != ':' || read_int(&p, 2, &mi))
		return -1;
	if (*p == ':') {
		p++;
		if (read_int(&p, 2, &sec))
			return -1;
	}
	p = skip_cfws(p);
	if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, z;
		const char *q = ++p;
		if (read_int(&p, 4, &z) || p - q != 4)
			return -1;
		if (z % 100 > 59 || z / 100 > 23)
			return -1;
		off = sign * ((z / 100) * 60 + z % 100);
	} else if (isalpha((unsigned char)*p)) {
		size_t zl = 0;
		while (isalpha((unsigned char)p[zl]))
			zl++;
		for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++)
			if (strlen(zones[i].name) == zl &&
			    strncasecmp(p, zones[i].name, zl) == 0)
				off = zones[i].off;
		/* other zone names: treated as UTC (RFC 5322 4.3) */
	}
	if (!valid_tm(y, mon + 1, d, h, mi, sec))
		return -1;
	*out = utc_time(y, mon + 1, d, h, mi, sec) - (time_t)off * 60;
	return 0;
}

int mb_parse_iso8601(const char *s, time_t *out)
{
	const char *p = s;
	int y, mon, d, h = 0, mi = 0, sec = 0, off = 0;

	if (!s || read_int(&p, 4, &y) || *p++ != '-' || read_int(&p, 2, &mon) ||
	    *p++ != '-' || read_int(&p, 2, &d))
		return -1;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (read_int(&p, 2, &h) || *p++ != ':' || read_int(&p, 2, &mi))
			return -1;
		if (*p == ':') {
			p++;
			if (read_int(&p, 2, &sec))
				return -1;
		}
		if (*p == '.' || *p == ',') {
			p++;
			for (int i = 0; i < 12 && isdigit((unsigned char)*p); i++)
				p++;
		}
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			int sign = *p == '-' ? -1 : 1, oh, om = 0;
			p++;
			if (read_int(&p, 2, &oh))
				return -1;
			if (*p == ':')
				p++;
			if (isdigit((unsigned char)*p) && read_int(&p, 2, &om))
				return -1;
			off = sign * (oh * 60 + om);
		}
	}
	if (*p != '\0' || !valid_tm(y, mon, d, h, mi, sec))
		return -1;
	*out = utc_time(y, mon, d, h, mi, sec) - (time_t)off * 60;
	return 0;
}

int mb_header_date(const char *hdr, size_t len, time_t *out)
{
	const char *p = hdr, *end = hdr + len;
	char val[512];

	while (p && p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *next = eol ? eol + 1 : end;
		if (end - p >= 5 && strncasecmp(p, "Date:", 5) == 0) {
			/* unfold continuation lines into val */
			size_t n = 0;
			const char *q = p + 5;
			while (q < end && n < sizeof(val) - 1) {
				if (*q == '\n') {
					if (q + 1 < end && (q[1] == ' ' || q[1] == '\t')) {
						q++;
						continue;
					}
					break;
				}
				if (*q != '\r')
					val[n++] = *q;
				q++;
			}
			val[n] = '\0';
			return mb_parse_rfc5322_date(val, out);
		}
		if (eol && (eol == p || (eol == p + 1 && *p == '\r')))
			break;          /* end of the header block */
		p = next;
	}
	return -1;
}
