/*
 * mailbox_graph.c - a Microsoft Graph mailbox behind the mailbox
 * interface, over http.h (one HTTP client per run, so one kept-alive TLS
 * connection).  Requests are sequential: never more than one in flight
 * per mailbox, well under Graph's 4.
 *
 * The listing asks for the fields the rules need and builds a synthetic
 * header block from them (Subject/From/Date/Message-ID), so headers come
 * with the list; the raw MIME is fetched ($value) only on demand.  Keys
 * are immutable ids (Prefer: IdType="ImmutableId").
 */
#include "transport/mailbox/mailbox.h"
#include "transport/mailbox/mailbox_int.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "transport/http.h"
#include "base/log.h"
#include "base/mem.h"

#define GRAPH_PAGE          100
#define GRAPH_MAX_PAGES     (MB_MAX_ITEMS / GRAPH_PAGE + 16)
#define GRAPH_MAX_WAIT_S    120   /* total Retry-After / backoff per request */
#define GRAPH_MAX_ONE_WAIT  30
#define GRAPH_5XX_RETRIES   3

static const char *const graph_headers[] = {
	"Prefer: IdType=\"ImmutableId\"",
	"Accept: application/json",
	NULL
};

struct graph_state {
	struct http_client *http;
	char *token;
	char *base;      /* {endpoint}/v1.0/users/{upn} */
	char *origin;    /* scheme://host[:port]/ of the endpoint */
	long sleep_ms_total;
};

/* ------------------------------------------------------------------ */
/* pure parts */

void graph_msgs_free(struct graph_msg *m, size_t n)
{
	for (size_t i = 0; m && i < n; i++) {
		free(m[i].id);
		free(m[i].internet_message_id);
		free(m[i].subject);
		free(m[i].from_name);
		free(m[i].from_addr);
	}
	free(m);
}

static char *json_str(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	if (!cJSON_IsString(v) || !v->valuestring)
		return NULL;
	return strdup(v->valuestring);
}

int graph_parse_page(const char *json, size_t len, struct graph_msg **msgs,
		     size_t *n, size_t max, char **next_link, struct ms_err *err)
{
	cJSON *root, *value, *el;
	struct graph_msg *v = NULL;
	size_t nv = 0, count;
	int ret = -1;

	*msgs = NULL;
	*n = 0;
	*next_link = NULL;
	root = cJSON_ParseWithLength(json, len);
	if (!root || !cJSON_IsObject(root))
		goto bad;
	value = cJSON_GetObjectItemCaseSensitive(root, "value");
	if (!cJSON_IsArray(value))
		goto bad;
	count = (size_t)cJSON_GetArraySize(value);
	if (count > max) {
		err_set(err, MS_ERR_TOOBIG, "more than %zu messages in one page", max);
		goto out;
	}
	if (count && !(v = calloc(count, sizeof(*v)))) {
		err_nomem(err);
		goto out;
	}
	cJSON_ArrayForEach(el, value) {
		struct graph_msg *m;
		const cJSON *from, *ea, *ha;
		char *t;

		if (nv >= count)
			break;
		if (!cJSON_IsObject(el))
			goto bad;
		m = &v[nv++];   /* counted before the check: freed on error */
		if (!(m->id = json_str(el, "id")) || !*m->id)
			goto bad;
		m->internet_message_id = json_str(el, "internetMessageId");
		m->subject = json_str(el, "subject");
		from = cJSON_GetObjectItemCaseSensitive(el, "from");
		ea = cJSON_IsObject(from) ?
		     cJSON_GetObjectItemCaseSensitive(from, "emailAddress") : NULL;
		if (cJSON_IsObject(ea)) {
			m->from_name = json_str(ea, "name");
			m->from_addr = json_str(ea, "address");
		}
		if ((t = json_str(el, "receivedDateTime"))) {
			if (mb_parse_iso8601(t, &m->received))
				m->received = 0;
			free(t);
		}
		if ((t = json_str(el, "sentDateTime"))) {
			if (mb_parse_iso8601(t, &m->sent))
				m->sent = 0;
			free(t);
		}
		ha = cJSON_GetObjectItemCaseSensitive(el, "hasAttachments");
		m->has_attachments = cJSON_IsTrue(ha);
	}
	*next_link = json_str(root, "@odata.nextLink");
	*msgs = v;
	*n = nv;
	v = NULL;
	nv = 0;
	ret = 0;
	goto out;
bad:
	err_set(err, MS_ERR_PROTO, "malformed Graph messages page");
out:
	graph_msgs_free(v, nv);
	cJSON_Delete(root);
	return ret;
}

void graph_error_text(const char *json, size_t len, char *out, size_t outsz)
{
	cJSON *root;
	const cJSON *e, *code, *msg;

	if (!outsz)
		return;
	out[0] = '\0';
	if (!json || !len)
		return;
	root = cJSON_ParseWithLength(json, len);
	if (!root)
		return;
	e = cJSON_GetObjectItemCaseSensitive(root, "error");
	if (cJSON_IsObject(e)) {
		code = cJSON_GetObjectItemCaseSensitive(e, "code");
		msg = cJSON_GetObjectItemCaseSensitive(e, "message");
		snprintf(out, outsz, "%s%s%s",
			 cJSON_IsString(code) ? code->valuestring : "",
			 cJSON_IsString(code) && cJSON_IsString(msg) ? ": " : "",
			 cJSON_IsString(msg) ? msg->valuestring : "");
		for (char *p = out; *p; p++)
			if ((unsigned char)*p < 0x20)
				*p = ' ';
	}
	cJSON_Delete(root);
}

static int needs_encoding(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p >= 0x80 || *p < 0x20 || (*p == '=' && p[1] == '?'))
			return 1;
	return 0;
}

/* RFC 2047 B-encoded words of at most 75 characters, never splitting a
 * UTF-8 sequence; CR/LF and other controls become spaces first. */
static int append_encoded(struct buf *out, const char *s, struct ms_err *err)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t len = strlen(s), i = 0;
	int first = 1;

	if (!needs_encoding(s))
		return buf_appends(out, s, err);
	while (i < len) {
		unsigned char chunk[48];
		size_t n = 0;

		while (i + n < len && n < 45) {
			size_t cl = 1;
			unsigned char c = (unsigned char)s[i + n];
			if (c >= 0xf0)
				cl = 4;
			else if (c >= 0xe0)
				cl = 3;
			else if (c >= 0xc0)
				cl = 2;
			if (n + cl > 45 && n > 0)
				break;
			for (size_t k = 0; k < cl && i + n < len; k++) {
				unsigned char b = (unsigned char)s[i + n];
				chunk[n++] = b < 0x20 || b == 0x7f ? ' ' : b;
			}
		}
		if (buf_appendf(out, err, "%s=?UTF-8?B?", first ? "" : "\r\n "))
			return -1;
		for (size_t k = 0; k < n; k += 3) {
			unsigned v = (unsigned)chunk[k] << 16;
			char q[4];
			if (k + 1 < n)
				v |= (unsigned)chunk[k + 1] << 8;
			if (k + 2 < n)
				v |= chunk[k + 2];
			q[0] = b64[(v >> 18) & 63];
			q[1] = b64[(v >> 12) & 63];
			q[2] = k + 1 < n ? b64[(v >> 6) & 63] : '=';
			q[3] = k + 2 < n ? b64[v & 63] : '=';
			if (buf_append(out, q, 4, err))
				return -1;
		}
		if (buf_appends(out, "?=", err))
			return -1;
		i += n;
		first = 0;
	}
	return 0;
}

static int safe_addr(const char *a)
{
	if (!a || !*a || strlen(a) > 320)
		return 0;
	for (const unsigned char *p = (const unsigned char *)a; *p; p++)
		if (*p <= 0x20 || *p == '<' || *p == '>' || *p == '"' || *p == 0x7f)
			return 0;
	return strchr(a, '@') != NULL;
}

int graph_synth_headers(const struct graph_msg *m, struct buf *out,
			struct ms_err *err)
{
	static const char *const wd[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const mo[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t t = m->sent ? m->sent : m->received;

	if (m->internet_message_id && *m->internet_message_id &&
	    !needs_encoding(m->internet_message_id) &&
	    !strpbrk(m->internet_message_id, " \t")) {
		if (buf_appendf(out, err, "Message-ID: %s\r\n", m->internet_message_id))
			return -1;
	}
	if (t) {
		struct tm tm;
		gmtime_r(&t, &tm);
		if (buf_appendf(out, err, "Date: %s, %d %s %d %02d:%02d:%02d +0000\r\n",
				wd[tm.tm_wday], tm.tm_mday, mo[tm.tm_mon],
				tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec))
			return -1;
	}
	if (safe_addr(m->from_addr)) {
		if (buf_appends(out, "From: ", err))
			return -1;
		if (m->from_name && *m->from_name) {
			if (needs_encoding(m->from_name) || strpbrk(m->from_name, "\"\\")) {
				if (append_encoded(out, m->from_name, err))
					return -1;
				/* encoded-word cannot sit in a quoted string;
				 * quotes and backslashes force encoding */
			} else if (buf_appendf(out, err, "\"%s\"", m->from_name)) {
				return -1;
			}
			if (buf_appends(out, " ", err))
				return -1;
		}
		if (buf_appendf(out, err, "<%s>\r\n", m->from_addr))
			return -1;
	}
	if (m->subject) {
		if (buf_appends(out, "Subject: ", err) ||
		    append_encoded(out, m->subject, err) ||
		    buf_appends(out, "\r\n", err))
			return -1;
	}
	if (buf_appends(out, "MIME-Version: 1.0\r\n\r\n", err))
		return -1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* requests */

static int get_token(struct mailbox *mb, int force, struct ms_err *err)
{
	struct graph_state *st = mb->impl;
	char *tok = NULL;

	if (mb->p.token_fn(mb->p.token_ctx, force, &tok, err))
		return err_prefix(err, "%s: cannot get a token", mb->label);
	if (!tok || !*tok) {
		free(tok);
		return err_set(err, MS_ERR_AUTH, "%s: empty token", mb->label);
	}
	mem_wipe_free(st->token);
	st->token = tok;
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static int graph_fail(struct mailbox *mb, const char *what,
		      const struct http_response *r, struct ms_err *err)
{
	char text[600];
	enum ms_errcode code = MS_ERR_PROTO;

	graph_error_text(r->body.data, r->body.len, text, sizeof(text));
	if (r->status == 401 || r->status == 403)
		code = MS_ERR_AUTH;
	else if (r->status == 429)
		code = MS_ERR_THROTTLED;
	else if (r->status >= 500)
		code = MS_ERR_NET;
	return err_set(err, code, "%s: %s: HTTP %ld%s%s%s%s%s", mb->label, what,
		       r->status, *text ? " " : "", text,
		       r->request_id ? " (request-id " : "",
		       r->request_id ? r->request_id : "",
		       r->request_id ? ")" : "");
}

/* One request with the rules of the service: 401 -> one fresh token;
 * 429 -> wait Retry-After; 5xx -> bounded backoff.  On return 0 the
 * caller checks resp->status. */
static int graph_do(struct mailbox *mb, const char *method, const char *url,
		    const char *what, struct http_response *resp,
		    struct ms_err *err)
{
	struct graph_state *st = mb->impl;
	int refreshed = 0, retries5 = 0;
	long waited_ms = 0;

	for (int attempt = 0; attempt < 16; attempt++) {
		struct http_request rq;
		long wait_ms;

		memset(&rq, 0, sizeof(rq));
		rq.method = method;
		rq.url = url;
		rq.bearer = st->token;
		rq.headers = graph_headers;
		if (http_do(st->http, &rq, resp, err))
			return err_prefix(err, "%s: %s", mb->label, what);
		if (resp->status == 401 && !refreshed) {
			refreshed = 1;
			log_debug("%s: %s: token refused, getting a fresh one", mb->label, what);
			http_response_release(resp);
			if (get_token(mb, 1, err))
				return -1;
			continue;
		}
		if (resp->status == 429 || (resp->status >= 500 && resp->status <= 599)) {
			if (resp->status >= 500 && ++retries5 > GRAPH_5XX_RETRIES)
				break;
			if (resp->retry_after_s >= 0)
				wait_ms = resp->retry_after_s * 1000;
			else
				wait_ms = 1000L << (retries5 > 0 ? retries5 - 1 : 0);
			if (wait_ms > GRAPH_MAX_ONE_WAIT * 1000L)
				wait_ms = GRAPH_MAX_ONE_WAIT * 1000L;
			if (waited_ms + wait_ms > GRAPH_MAX_WAIT_S * 1000L)
				break;
			log_debug("%s: %s: HTTP %ld, waiting %ld ms", mb->label, what,
				  resp->status, wait_ms);
			http_response_release(resp);
			sleep_ms(wait_ms);
			waited_ms += wait_ms;
			st->sleep_ms_total += wait_ms;
			continue;
		}
		return 0;
	}
	graph_fail(mb, what, resp, err);
	http_response_release(resp);
	return -1;
}

static int graph_open(struct mailbox *mb, struct ms_err *err)
{
	struct graph_state *st;
	struct http_client_params hp;
	struct http_response r;
	const char *ep = mb->p.graph_endpoint, *hs;
	char *upn = NULL, *url = NULL;
	size_t el = strlen(ep), ol;
	int ret = -1;

	if (!mb->p.token_fn)
		return err_set(err, MS_ERR_CONFIG,
			       "%s: Graph needs OAuth 2.0, no token source configured",
			       mb->label);
	st = calloc(1, sizeof(*st));
	if (!st)
		return err_nomem(err);
	mb->impl = st;
	while (el && ep[el - 1] == '/')
		el--;
	hs = strstr(ep, "://");
	if (!hs || (strncmp(ep, "https://", 8) != 0 && strncmp(ep, "http://", 7) != 0))
		return err_set(err, MS_ERR_CONFIG, "bad Graph endpoint '%s'", ep);
	ol = strcspn(hs + 3, "/") + (size_t)(hs + 3 - ep);
	if (ol > el)
		ol = el;
	st->origin = malloc(ol + 2);
	upn = http_escape(mb->p.user);
	if (!st->origin || !upn)
		goto nomem;
	memcpy(st->origin, ep, ol);
	st->origin[ol] = '/';
	st->origin[ol + 1] = '\0';
	if (asprintf(&st->base, "%.*s/v1.0/users/%s", (int)el, ep, upn) < 0) {
		st->base = NULL;
		goto nomem;
	}
	memset(&hp, 0, sizeof(hp));
	hp.ca_file = mb->p.ca_file;
	hp.insecure = !mb->p.verify_peer;
	hp.timeout_s = mb->p.timeout_s;
	hp.deadline = mb->p.deadline;
	hp.max_body = MB_MAX_MESSAGE + 4096;
	hp.verbose = mb->p.verbose;
	if (http_client_new(&st->http, &hp, err))
		goto out;
	if (get_token(mb, 0, err))
		goto out;
	/* one cheap request, so a refused token or mailbox shows at open */
	if (asprintf(&url, "%s/mailFolders/inbox/messages?$select=id&$top=1",
		     st->base) < 0) {
		url = NULL;
		goto nomem;
	}
	if (graph_do(mb, "GET", url, "open inbox", &r, err))
		goto out;
	if (r.status != 200) {
		graph_fail(mb, "open inbox", &r, err);
		http_response_release(&r);
		goto out;
	}
	http_response_release(&r);
	ret = 0;
	goto out;
nomem:
	err_nomem(err);
out:
	free(upn);
	free(url);
	return ret;
}

static void graph_free(struct mailbox *mb)
{
	struct graph_state *st = mb->impl;

	if (!st)
		return;
	http_client_free(st->http);
	mem_wipe_free(st->token);
	free(st->base);
	free(st->origin);
	free(st);
	mb->impl = NULL;
}

static int graph_list(struct mailbox *mb, struct ms_err *err)
{
	struct graph_state *st = mb->impl;
	char *url = NULL, *next = NULL, filter[96] = "";
	struct graph_msg *m = NULL;
	size_t nm = 0;
	int ret = -1;

	if (mb->p.since) {
		struct tm tm;
		gmtime_r(&mb->p.since, &tm);
		strftime(filter, sizeof(filter),
			 "&$filter=receivedDateTime%%20ge%%20%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	if (asprintf(&url, "%s/mailFolders/inbox/messages?$select=id,internetMessageId,"
		     "receivedDateTime,sentDateTime,subject,from,hasAttachments"
		     "&$top=%d%s", st->base, GRAPH_PAGE, filter) < 0) {
		url = NULL;
		return err_nomem(err);
	}
	for (size_t page = 0; url; page++) {
		struct http_response r;

		if (page >= GRAPH_MAX_PAGES) {
			err_set(err, MS_ERR_TOOBIG, "%s: more than %zu pages of messages",
				mb->label, (size_t)GRAPH_MAX_PAGES);
			goto out;
		}
		if (graph_do(mb, "GET", url, "list inbox", &r, err))
			goto out;
		if (r.status != 200) {
			graph_fail(mb, "list inbox", &r, err);
			http_response_release(&r);
			goto out;
		}
		if (graph_parse_page(r.body.data, r.body.len, &m, &nm, 1000, &next, err)) {
			http_response_release(&r);
			err_prefix(err, "%s", mb->label);
			goto out;
		}
		http_response_release(&r);
		for (size_t i = 0; i < nm; i++) {
			struct buf h;
			char *key = NULL;

			if (mb->p.since && m[i].received && m[i].received < mb->p.since)
				continue;
			if (asprintf(&key, "graph:%s", m[i].id) < 0)
				key = NULL;
			if (mb_item_add(mb, key, strdup(m[i].id), m[i].size,
					m[i].received, err))
				goto out;
			buf_init(&h, MB_MAX_HEADER);
			if (graph_synth_headers(&m[i], &h, err)) {
				buf_release(&h);
				goto out;
			}
			mb->items[mb->n_items - 1].headers =
				buf_detach(&h, &mb->items[mb->n_items - 1].headers_len);
		}
		graph_msgs_free(m, nm);
		m = NULL;
		nm = 0;
		free(url);
		url = NULL;
		if (next) {
			/* the token goes to the Graph endpoint only */
			if (strncmp(next, st->origin, strlen(st->origin)) != 0) {
				err_set(err, MS_ERR_PROTO,
					"%s: next page link points outside '%s'",
					mb->label, st->origin);
				goto out;
			}
			url = next;
			next = NULL;
		}
	}
	ret = 0;
out:
	graph_msgs_free(m, nm);
	free(url);
	free(next);
	return ret;
}

static int graph_fetch_headers(struct mailbox *mb, struct ms_err *err)
{
	(void)mb;
	(void)err;
	return 0;       /* built from the listing */
}

static int item_url(struct mailbox *mb, const struct mailbox_item *it,
		    const char *suffix, char **url, struct ms_err *err)
{
	struct graph_state *st = mb->impl;
	char *id = http_escape(it->server_id);

	if (!id || asprintf(url, "%s/messages/%s%s", st->base, id, suffix) < 0) {
		free(id);
		*url = NULL;
		return err_nomem(err);
	}
	free(id);
	return 0;
}

static int graph_fetch_message(struct mailbox *mb, const struct mailbox_item *it,
			       struct buf *out, struct ms_err *err)
{
	struct http_response r;
	char *url;
	int ret = -1;

	if (item_url(mb, it, "/$value", &url, err))
		return -1;
	if (graph_do(mb, "GET", url, "fetch message", &r, err))
		goto out;
	if (r.status != 200) {
		graph_fail(mb, "fetch message", &r, err);
	} else if (r.body.len > MB_MAX_MESSAGE) {
		err_set(err, MS_ERR_TOOBIG, "%s: message larger than %zu bytes",
			mb->label, MB_MAX_MESSAGE);
	} else if (buf_append(out, r.body.data ? r.body.data : "", r.body.len, err) == 0) {
		ret = 0;
	}
	http_response_release(&r);
out:
	free(url);
	return ret;
}

static int graph_delete(struct mailbox *mb, const struct mailbox_item *it,
			struct ms_err *err)
{
	struct http_response r;
	char *url;
	int ret = -1;

	if (item_url(mb, it, "", &url, err))
		return -1;
	if (graph_do(mb, "DELETE", url, "delete message", &r, err))
		goto out;
	if (r.status == 204 || r.status == 200) {
		ret = 0;
	} else if (r.status == 404) {
		/* already gone: a rerun after a crash deletes again */
		log_debug("%s: message %s was already deleted", mb->label, it->key);
		ret = 0;
	} else {
		graph_fail(mb, "delete message", &r, err);
	}
	http_response_release(&r);
out:
	free(url);
	return ret;
}

static int graph_close(struct mailbox *mb, struct ms_err *err)
{
	(void)mb;
	(void)err;
	return 0;
}

const struct mailbox_ops mailbox_graph_ops = {
	"graph",
	graph_open,
	graph_list,
	graph_fetch_headers,
	graph_fetch_message,
	graph_delete,
	graph_close,
	graph_free,
	NULL,
};
