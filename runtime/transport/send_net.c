/*
 * send_net.c - the network half of send.h: SMTP submission over libcurl
 * and Graph sendMail over http.h.  What is sent is composed by send.c;
 * what the SMTP server said is kept by its trace (send_int.h).
 */
#include "transport/send.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/compat.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/explain.h"
#include "transport/http.h"
#include "transport/protocol.h"
#include "transport/send_int.h"

/* ---- SMTP over libcurl ---------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_ok;

static void curl_init_once(void)
{
	curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

struct smtp_ctx {
	const char *data;
	size_t len, pos;
	struct send_trace trace; /* last reply, last verb (send_int.h) */
};

static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
	struct smtp_ctx *c = ud;
	size_t room = size * nitems, n = c->len - c->pos;

	if (n > room)
		n = room;
	memcpy(buf, c->data + c->pos, n);
	c->pos += n;
	return n;
}

static int on_debug(CURL *h, curl_infotype type, char *data, size_t size, void *ud)
{
	struct smtp_ctx *c = ud;
	char line[SEND_REPLY_MAX];

	(void)h;
	if (type == CURLINFO_TEXT) {
		if (c->trace.verbose) {
			size_t n = size < sizeof(line) - 1 ? size : sizeof(line) - 1;
			memcpy(line, data, n);
			while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
				n--;
			line[n] = '\0';
			log_trace("smtp * %s", line);
		}
		return 0;
	}
	if (type == CURLINFO_HEADER_IN || type == CURLINFO_HEADER_OUT)
		send_trace_chunk(&c->trace, type == CURLINFO_HEADER_OUT, data, size);
	return 0;
}

static const char *stage_name(const char *cmd)
{
	if (!strcmp(cmd, "MAIL"))
		return "sender refused";
	if (!strcmp(cmd, "RCPT"))
		return "recipient refused";
	if (!strcmp(cmd, "DATA"))
		return "message refused";
	if (!strcmp(cmd, "AUTH"))
		return "authentication failed";
	if (!strcmp(cmd, "STARTTLS"))
		return "STARTTLS failed";
	if (!strcmp(cmd, "EHLO") || !strcmp(cmd, "HELO"))
		return "greeting refused";
	return "session failed";
}

/* Error code for a refusal, from the server's reply. */
static enum ms_errcode reply_code(const char *reply, const char *cmd)
{
	struct explain e;
	int known = explain_smtp_reply(reply, &e) == 0;

	if (reply[0] == '4' || (known && e.temporary))
		return strncmp(reply, "421", 3) == 0 ? MS_ERR_NET : MS_ERR_BUSY;
	if (!strcmp(cmd, "AUTH") || strstr(reply, " 5.7.") || !strncmp(reply, "5.7.", 4))
		return MS_ERR_AUTH;
	return MS_ERR_PROTO;
}

static void host_display(const struct send_params *p, int port, char *out, size_t outsz)
{
	int v6 = strchr(p->host, ':') && p->host[0] != '[';

	snprintf(out, outsz, "%s://%s%s%s:%d", p->tls == SEND_TLS_IMPLICIT ? "smtps" : "smtp",
		 v6 ? "[" : "", p->host, v6 ? "]" : "", port);
}

static void helo_name(const struct send_params *p, char *out, size_t outsz)
{
	const char *h = p->helo_name;
	char host[256];

	if (!h || !*h) {
		if (gethostname(host, sizeof(host)) != 0)
			host[0] = '\0';
		host[sizeof(host) - 1] = '\0';
		h = host;
	}
	for (const char *q = h; *q; q++)
		if (!isalnum((unsigned char)*q) && *q != '.' && *q != '-') {
			h = "localhost";
			break;
		}
	snprintf(out, outsz, "%s", *h ? h : "localhost");
}

/* Every option of one SMTP submission; a setopt on a valid handle with
 * valid values does not fail. */
static void smtp_configure(CURL *h, const struct send_params *p,
			   struct smtp_ctx *c, const char *url, const char *mailfrom,
			   struct curl_slist *rl, const char *token, char *errbuf)
{
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, p->timeout_s > 0 ? p->timeout_s : 60L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT,
			 p->connect_timeout_s > 0 ? p->connect_timeout_s : 15L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	/* the debug callback is how the server's reply text is kept */
	curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
	curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug);
	curl_easy_setopt(h, CURLOPT_DEBUGDATA, c);
	if (p->tls != SEND_TLS_NONE) {
		curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
		curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	}
	http_tls_setup(h, p->ca_file, !p->insecure);
	if (p->auth != SEND_AUTH_NONE)
		curl_easy_setopt(h, CURLOPT_USERNAME, p->user);
	if (p->auth == SEND_AUTH_BASIC) {
		curl_easy_setopt(h, CURLOPT_PASSWORD, p->password ? p->password : "");
	} else if (p->auth == SEND_AUTH_XOAUTH2) {
		/* Exchange Online offers XOAUTH2 only; libcurl would prefer
		 * OAUTHBEARER where both exist, so pin the mechanism.  SASL-IR
		 * stays off: the blob goes after the 334. */
		curl_easy_setopt(h, CURLOPT_LOGIN_OPTIONS, "AUTH=XOAUTH2");
		curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, token);
	}
	curl_easy_setopt(h, CURLOPT_MAIL_FROM, mailfrom);
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rl);
	curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
	curl_easy_setopt(h, CURLOPT_READDATA, c);
	curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)c->len);
}

/* What one submission's outcome means: 0, or -1 with err naming the stage
 * and the server's reply; *auth_denied when the login was refused. */
static int smtp_result(CURLcode rc, const struct send_trace *t,
		       const char *errbuf, const char *where, size_t nrcpt,
		       int *auth_denied, struct ms_err *err)
{
	switch (rc) {
	case CURLE_OK:
		log_debug("%s: sent to %zu recipient%s: %s", where, nrcpt, nrcpt == 1 ? "" : "s",
			  t->reply);
		break;
	case CURLE_LOGIN_DENIED:
		*auth_denied = 1;
		err_set(err, MS_ERR_AUTH, "%s: authentication failed: %s", where,
			t->reply[0] ? t->reply : "the server refused the login");
		break;
	case CURLE_USE_SSL_FAILED:
		err_set(err, MS_ERR_TLS, "%s: the server does not offer STARTTLS; refusing to "
			"continue without TLS", where);
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ISSUER_ERROR:
		err_set(err, MS_ERR_TLS, "%s: TLS failed: %s", where,
			errbuf[0] ? errbuf : curl_easy_strerror(rc));
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
		err_set(err, MS_ERR_NET, "%s: %s", where,
			errbuf[0] ? errbuf : curl_easy_strerror(rc));
		break;
	case CURLE_OUT_OF_MEMORY:
		err_nomem(err);
		break;
	default:
		if (t->reply[0] == '4' || t->reply[0] == '5') {
			if (!strcmp(t->cmd, "AUTH"))
				*auth_denied = 1;
			/* Postfix (smtpd_delay_reject) and Exchange refuse a
			 * sender at RCPT time; name what was refused */
			const char *stage = stage_name(t->cmd);
			if (!strcmp(t->cmd, "RCPT") && ms_strcasestr(t->reply, "sender"))
				stage = "sender refused";
			err_set(err, reply_code(t->reply, t->cmd), "%s: %s: %s", where,
				stage, t->reply);
		} else {
			err_set(err, rc == CURLE_GOT_NOTHING || rc == CURLE_RECV_ERROR ||
				rc == CURLE_SEND_ERROR ? MS_ERR_NET : MS_ERR_PROTO,
				"%s: %s: %s", where, stage_name(t->cmd),
				errbuf[0] ? errbuf : curl_easy_strerror(rc));
		}
		break;
	}
	return rc == CURLE_OK ? 0 : -1;
}

static int smtp_once(const struct send_params *p, const char *from, char **rcpt,
		     size_t nrcpt, const struct buf *msg, const char *token,
		     const char *where, int *auth_denied, struct ms_err *err)
{
	struct curl_slist *rl = NULL;
	struct smtp_ctx c;
	char url[600], helo[256], mailfrom[300], errbuf[CURL_ERROR_SIZE];
	int port = p->port, ret = -1;
	CURLcode rc;
	CURL *h;

	*auth_denied = 0;
	memset(&c, 0, sizeof(c));
	c.data = msg->data;
	c.len = msg->len;
	send_trace_init(&c.trace, p->verbose);
	if (!port)
		port = p->tls == SEND_TLS_IMPLICIT ? 465 : p->tls == SEND_TLS_NONE ? 25 : 587;
	helo_name(p, helo, sizeof(helo));
	snprintf(url, sizeof(url), "%s/%s", where, helo);
	snprintf(mailfrom, sizeof(mailfrom), "<%s>", from);
	errbuf[0] = '\0';

	if (!(h = curl_easy_init()))
		return err_set(err, MS_ERR_INTERNAL, "cannot create a libcurl handle");
	for (size_t i = 0; i < nrcpt; i++) {
		char r[300];
		struct curl_slist *t;
		snprintf(r, sizeof(r), "<%s>", rcpt[i]);
		if (!(t = curl_slist_append(rl, r))) {
			err_nomem(err);
			goto out;
		}
		rl = t;
	}
	smtp_configure(h, p, &c, url, mailfrom, rl, token, errbuf);

	rc = curl_easy_perform(h);
	ret = smtp_result(rc, &c.trace, errbuf, where, nrcpt, auth_denied, err);
out:
	curl_slist_free_all(rl);
	curl_easy_cleanup(h);
	return ret;
}

static int send_smtp(const struct send_params *p, const struct send_message *m,
		     struct ms_err *err)
{
	struct buf msg;
	char **rcpt = NULL, where[400];
	char *token = NULL;
	size_t nrcpt = 0;
	int port = p->port, ret = -1, denied = 0;

	buf_init(&msg, SEND_MAX_TEXT);
	if (!p->host || !*p->host)
		return err_set(err, MS_ERR_CONFIG, "no SMTP server configured");
	if (!port)
		port = p->tls == SEND_TLS_IMPLICIT ? 465 : p->tls == SEND_TLS_NONE ? 25 : 587;
	host_display(p, port, where, sizeof(where));
	if (p->tls == SEND_TLS_NONE && !p->allow_plaintext)
		return err_set(err, MS_ERR_CONFIG, "%s: plaintext SMTP is not allowed; use "
			       "STARTTLS or implicit TLS", where);
	if (p->tls == SEND_TLS_NONE && p->auth != SEND_AUTH_NONE)
		return err_set(err, MS_ERR_CONFIG, "%s: refusing to log in without TLS", where);
	if (p->auth != SEND_AUTH_NONE && (!p->user || !*p->user))
		return err_set(err, MS_ERR_CONFIG, "%s: no SMTP user configured", where);
	if (p->auth == SEND_AUTH_XOAUTH2 && !p->token_fn)
		return err_set(err, MS_ERR_CONFIG, "%s: XOAUTH2 needs a token source", where);
	if (send_compose(m, &msg, err) ||
	    send_parse_recipients(m->to, &rcpt, &nrcpt, err))
		goto out;
	if (pthread_once(&curl_once, curl_init_once) != 0 || !curl_ok) {
		err_set(err, MS_ERR_INTERNAL, "cannot initialise libcurl");
		goto out;
	}
	if (p->auth == SEND_AUTH_XOAUTH2 && p->token_fn(p->token_ctx, 0, &token, err)) {
		err_prefix(err, "%s", where);
		goto out;
	}
	{
		struct ms_err first = MS_ERR_INIT;
		if (smtp_once(p, m->from, rcpt, nrcpt, &msg, token, where, &denied, &first) == 0) {
			ret = 0;
			goto out;
		}
		/* a cached token may have been revoked: one retry with a new one */
		if (!(denied && p->auth == SEND_AUTH_XOAUTH2)) {
			*err = first;
			goto out;
		}
		mem_wipe_free(token);
		token = NULL;
		if (p->token_fn(p->token_ctx, 1, &token, err)) {
			err_prefix(err, "%s", where);
			goto out;
		}
		log_debug("%s: login refused, retrying once with a fresh token", where);
		ret = smtp_once(p, m->from, rcpt, nrcpt, &msg, token, where, &denied, err);
	}
out:
	mem_wipe_free(token);
	send_free_recipients(rcpt, nrcpt);
	buf_release(&msg);
	return ret;
}

/* ---- Graph sendMail ------------------------------------------------------- */

static void sleep_s(long s)
{
	struct timespec ts = { s, 0 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void graph_fail(const char *who, const struct http_response *r,
		       enum ms_errcode code, struct ms_err *err)
{
	struct explain_ids ids;
	struct explain e;
	char msg[300] = "";
	cJSON *root = r->body.len ? cJSON_ParseWithLength(r->body.data, r->body.len) : NULL;
	const cJSON *eo = root ? cJSON_GetObjectItemCaseSensitive(root, "error") : NULL;
	const cJSON *mo = eo ? cJSON_GetObjectItemCaseSensitive(eo, "message") : NULL;

	if (cJSON_IsString(mo))
		send_safe_copy(msg, sizeof(msg), mo->valuestring);
	explain_graph_response(r->status, r->body.data, r->body.len, &e, &ids);
	if (!ids.request_id[0] && r->request_id)
		send_safe_copy(ids.request_id, sizeof(ids.request_id), r->request_id);
	err_set(err, code, "%s: %ld%s%s%s%s%s%s%s", who, r->status,
		ids.error[0] ? " " : "", ids.error, msg[0] ? ": " : "", msg,
		ids.request_id[0] ? " (request id " : "", ids.request_id,
		ids.request_id[0] ? ")" : "");
	cJSON_Delete(root);
}

static int send_graph(const struct send_params *p, const struct send_message *m,
		      struct ms_err *err)
{
	struct http_client_params hp = { 0 };
	struct http_client *hc = NULL;
	const char *sender = p->user && *p->user ? p->user : m->from;
	const char *ep = p->graph_endpoint && *p->graph_endpoint ? p->graph_endpoint :
			 GRAPH_DEFAULT_ENDPOINT;
	char *json = NULL, *token = NULL, *user = NULL, *url = NULL, who[400];
	int retries = p->max_retries == 0 ? 4 : p->max_retries < 0 ? 0 : p->max_retries;
	long max_wait = p->max_wait_s > 0 ? p->max_wait_s : 60;
	int refreshed = 0, ret = -1;
	size_t eplen = strlen(ep);

	while (eplen && ep[eplen - 1] == '/')
		eplen--;
	if (!p->token_fn)
		return err_set(err, MS_ERR_CONFIG, "graph sendMail needs a token source");
	if (!send_address_valid(sender)) {
		char shown[128];
		send_safe_copy(shown, sizeof(shown), sender ? sender : "");
		return err_set(err, MS_ERR_DATA, "invalid Graph sender mailbox '%s'", shown);
	}
	snprintf(who, sizeof(who), "graph sendMail as '%s'", sender);
	if (send_graph_json(m, sender, p->save_to_sent, &json, err))
		goto out;
	if (!(user = http_escape(sender)) ||
	    !(url = malloc(eplen + strlen(user) + 32))) {
		err_nomem(err);
		goto out;
	}
	sprintf(url, "%.*s/v1.0/users/%s/sendMail", (int)eplen, ep, user);
	hp.ca_file = p->ca_file;
	hp.insecure = p->insecure;
	hp.timeout_s = p->timeout_s;
	hp.connect_timeout_s = p->connect_timeout_s;
	hp.max_body = 1024 * 1024;
	hp.verbose = p->verbose;
	if (http_client_new(&hc, &hp, err))
		goto out;
	if (p->token_fn(p->token_ctx, 0, &token, err)) {
		err_prefix(err, "%s", who);
		goto out;
	}
	for (int attempt = 0;; attempt++) {
		struct http_request rq = { "POST", url, "application/json", json, strlen(json),
					   token, NULL };
		struct http_response rs;
		struct ms_err terr = MS_ERR_INIT;
		long wait;

		if (http_do(hc, &rq, &rs, &terr)) {
			if (err_is_temporary(&terr) && attempt < retries) {
				wait = 1L << (attempt < 5 ? attempt : 5);
				log_debug("%s: %s; retrying in %lds", who, terr.msg, wait);
				sleep_s(wait < max_wait ? wait : max_wait);
				continue;
			}
			*err = terr;
			err_prefix(err, "%s", who);
			goto out;
		}
		if (rs.status >= 200 && rs.status < 300) {
			log_debug("%s: accepted (%ld)", who, rs.status);
			http_response_release(&rs);
			ret = 0;
			goto out;
		}
		if (rs.status == 401 && !refreshed) {
			/* the cached token may be revoked or expired: once */
			http_response_release(&rs);
			refreshed = 1;
			mem_wipe_free(token);
			token = NULL;
			if (p->token_fn(p->token_ctx, 1, &token, err)) {
				err_prefix(err, "%s", who);
				goto out;
			}
			continue;
		}
		if ((rs.status == 429 || rs.status == 500 || rs.status == 502 ||
		     rs.status == 503 || rs.status == 504) && attempt < retries) {
			wait = rs.retry_after_s >= 0 ? rs.retry_after_s :
			       1L << (attempt < 5 ? attempt : 5);
			if (wait > max_wait)
				wait = max_wait;
			log_debug("%s: %ld, retrying in %lds (%d of %d)", who, rs.status, wait,
				  attempt + 1, retries);
			http_response_release(&rs);
			sleep_s(wait);
			continue;
		}
		graph_fail(who, &rs, rs.status == 429 ? MS_ERR_THROTTLED :
			   rs.status >= 500 ? MS_ERR_NET :
			   rs.status == 401 || rs.status == 403 ? MS_ERR_AUTH :
			   rs.status == 400 || rs.status == 413 ? MS_ERR_DATA : MS_ERR_PROTO, err);
		http_response_release(&rs);
		goto out;
	}
out:
	http_client_free(hc);
	mem_wipe_free(token);
	free(json);
	free(user);
	free(url);
	return ret;
}

int send_mail(const struct send_params *p, const struct send_message *m,
	      struct ms_err *err)
{
	if (!p || !m)
		return err_set(err, MS_ERR_INTERNAL, "send_mail: missing parameters");
	if (p->transport == SEND_GRAPH)
		return send_graph(p, m, err);
	return send_smtp(p, m, err);
}
