/*
 * test_mailbox_live.c - the mailbox backends against the mail world of
 * tests/peers (Dovecot, the token service and the Graph stand-in).
 *
 *   MS_WORLD_DIR=/tmp/w build/tests/live/test_mailbox_live
 *
 * Messages are delivered over LMTP (synchronous: delivered when the 250
 * comes back); each scenario lists, reads headers, fetches one message,
 * deletes one and checks the others remain, and counts connections and
 * logins (ours and Dovecot's log).  large_test writes 2,000 messages (one
 * of 5 MB) straight into a Maildir and reads them all, IMAP and POP, over
 * one connection and one login.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "transport/http.h"
#include "base/log.h"
#include "transport/mailbox/mailbox.h"
#include "tap.h"
#include "world.h"

/* Empty INBOX through Dovecot itself, so its index stays right. */
static void clear_maildir(const char *upn)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), "doveadm -c '%s/dovecot/dovecot.conf' expunge -u '%s' "
		 "mailbox INBOX all >/dev/null 2>&1", world_get("WORLD_DIR"), upn);
	if (system(cmd) != 0)
		printf("# doveadm expunge failed for %s\n", upn);
}

static int deliver_set(const char *upn, const char *tag, int n)
{
	for (int i = 1; i <= n; i++) {
		char msg[2048];
		snprintf(msg, sizeof(msg),
			 "From: \"Sender\" <sender@example.test>\r\n"
			 "To: %s\r\n"
			 "Subject: mbtest %s #%d\r\n"
			 "Date: Sat, 28 Nov 2026 01:35:%02d +0000\r\n"
			 "Message-ID: <mbtest-%s-%d@example.test>\r\n"
			 "MIME-Version: 1.0\r\n"
			 "Content-Type: text/plain; charset=us-ascii\r\n"
			 "\r\n"
			 "body-%s-%d\r\n"
			 ".a line starting with a dot\r\n",
			 upn, tag, i, i, tag, i, tag, i);
		if (world_lmtp_deliver(upn, msg))
			return -1;
	}
	return 0;
}

/* Dovecot log: "Login: user=<u>, method=M" lines since offset */
static int count_logins(long from, const char *user, const char *method)
{
	FILE *f = fopen(world_get("WORLD_DOVECOT_LOG"), "r");
	char line[4096], needle[300];
	int n = 0;

	if (!f)
		return -1;
	snprintf(needle, sizeof(needle), "Login: user=<%s>", user);
	fseek(f, from, SEEK_SET);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, needle) && (!method || strstr(line, method)))
			n++;
	fclose(f);
	return n;
}

static long log_size(void)
{
	FILE *f = fopen(world_get("WORLD_DOVECOT_LOG"), "r");
	long n;

	if (!f)
		return 0;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fclose(f);
	return n;
}

/* ------------------------------------------------------------------ */
/* tokens from the stand-in */

struct tokctx {
	const char *scope;
	int calls;
	int forced;
	int bogus_first;       /* first answer is a dead token */
};

static int fetch_token(const char *scope, char **out)
{
	struct http_client *c = NULL;
	struct http_client_params hp;
	struct http_request rq;
	struct http_response r;
	struct ms_err err = MS_ERR_INIT;
	struct buf form;
	char url[512];
	cJSON *j = NULL, *t;
	int ret = -1;

	memset(&hp, 0, sizeof(hp));
	hp.ca_file = world_get("WORLD_CA_FILE");
	if (http_client_new(&c, &hp, &err))
		return -1;
	buf_init(&form, 8192);
	http_form_add(&form, "grant_type", "client_credentials", &err);
	http_form_add(&form, "client_id", world_get("WORLD_APP_ID"), &err);
	http_form_add(&form, "client_secret", world_get("WORLD_APP_SECRET"), &err);
	http_form_add(&form, "scope", scope, &err);
	snprintf(url, sizeof(url), "%s/%s/oauth2/v2.0/token", world_get("WORLD_TOKEN_URL"),
		 world_get("WORLD_TENANT"));
	memset(&rq, 0, sizeof(rq));
	rq.method = "POST";
	rq.url = url;
	rq.content_type = "application/x-www-form-urlencoded";
	rq.body = form.data;
	rq.body_len = form.len;
	if (http_do(c, &rq, &r, &err) == 0) {
		if (r.status == 200 && (j = cJSON_ParseWithLength(r.body.data, r.body.len)) &&
		    cJSON_IsString(t = cJSON_GetObjectItem(j, "access_token"))) {
			*out = strdup(t->valuestring);
			ret = 0;
		} else {
			printf("# token: HTTP %ld %.300s\n", r.status, r.body.data ? r.body.data : "");
		}
		http_response_release(&r);
	} else {
		printf("# token: %s\n", err.msg);
	}
	cJSON_Delete(j);
	buf_wipe(&form);
	http_client_free(c);
	return ret;
}

static char *cached_token[2];

static int token_fn(void *vctx, int force, char **token, struct ms_err *err)
{
	struct tokctx *ctx = vctx;
	int graph = strstr(ctx->scope, "graph") != NULL;

	ctx->calls++;
	if (force)
		ctx->forced++;
	if (ctx->bogus_first && ctx->calls == 1) {
		*token = strdup("eyJhbGciOiJub25lIn0.eyJleHAiOjF9.expired");
		return 0;
	}
	if (!cached_token[graph] && fetch_token(ctx->scope, &cached_token[graph]))
		return err_set(err, MS_ERR_AUTH, "no token from the stand-in");
	*token = strdup(cached_token[graph]);
	return 0;
}

/* ------------------------------------------------------------------ */

static void sink(enum log_level lvl, const char *msg, void *ctx)
{
	(void)lvl;
	(void)ctx;
	printf("# log: %s\n", msg);
}

static const char *find_header(const struct mailbox_item *it, const char *needle)
{
	if (!it->headers)
		return NULL;
	return strstr(it->headers, needle);
}

/* The common scenario: three messages; list, headers, fetch, delete one,
 * the other two remain; one connection and one login per run. */
static void scenario(const char *name, struct mailbox_params *p,
		     const char *upn, const char *key_prefix, const char *method)
{
	struct ms_err err = MS_ERR_INIT;
	struct mailbox *mb = NULL;
	struct mailbox_item *items = NULL;
	size_t n = 0;
	long conns = -1, logins = -1, logpos;
	char subj[128];
	size_t del = (size_t)-1;

	clear_maildir(upn);
	if (!ok(deliver_set(upn, name, 3) == 0, "%s: three messages delivered", name))
		return;
	logpos = log_size();
	if (!ok(mailbox_open(&mb, p, &err) == 0, "%s: open", name)) {
		printf("#   %s\n", err.msg);
		return;
	}
	ok(mailbox_list(mb, &items, &n, &err) == 0, "%s: list %s", name, err.msg);
	is_int(n, 3, "%s: three messages listed", name);
	for (size_t i = 0; i < n; i++) {
		ok(strncmp(items[i].key, key_prefix, strlen(key_prefix)) == 0,
		   "%s: key %s", name, items[i].key);
	}
	ok(mailbox_fetch_headers(mb, &err) == 0, "%s: headers %s", name, err.msg);
	{
		int all = n > 0;
		for (size_t i = 0; i < n; i++) {
			snprintf(subj, sizeof(subj), "mbtest %s #", name);
			if (!find_header(&items[i], subj) || !find_header(&items[i], "Message-ID:"))
				all = 0;
			if (find_header(&items[i], "body-"))
				all = 0;
			if (strcmp(key_prefix, "pop:") && items[i].received == 0)
				all = 0;
		}
		ok(all, "%s: every header block has Subject and Message-ID, no body", name);
	}
	snprintf(subj, sizeof(subj), "Subject: mbtest %s #2", name);
	for (size_t i = 0; i < n; i++)
		if (find_header(&items[i], subj) ||
		    (strncmp(key_prefix, "graph:", 6) == 0 && find_header(&items[i], subj + 9)))
			del = i;
	ok(del != (size_t)-1, "%s: message #2 found by its header", name);
	if (del != (size_t)-1) {
		struct buf m;
		char body[64];
		buf_init(&m, 0);
		ok(mailbox_fetch_message(mb, &items[del], &m, &err) == 0, "%s: fetch %s",
		   name, err.msg);
		/* IMAP/POP give CRLF; Graph's $value the stored bytes */
		snprintf(body, sizeof(body), "\nbody-%s-2", name);
		ok(m.data && strstr(m.data, body) && strstr(m.data, subj),
		   "%s: whole message fetched", name);
		ok(m.data && strstr(m.data, "\n.a line starting with a dot") &&
		   !strstr(m.data, "\n..a line"), "%s: dot-stuffing undone", name);
		if (strcmp(key_prefix, "graph:") != 0)
			ok(m.data && strstr(m.data, "\r\n.a line starting with a dot\r\n"),
			   "%s: CRLF line ends", name);
		buf_release(&m);
		ok(mailbox_delete(mb, &items[del], &err) == 0, "%s: delete %s", name, err.msg);
	}
	mailbox_stats(mb, &conns, &logins);
	ok(mailbox_close(mb, &err) == 0, "%s: close %s", name, err.msg);
	if (method) {
		is_int(conns, 1, "%s: one connection for the whole run", name);
		is_int(logins, 1, "%s: one login for the whole run", name);
		is_int(count_logins(logpos, p->user, method), 1,
		       "%s: Dovecot saw one login with %s", name, method);
	}

	/* the other two remain */
	mb = NULL;
	err_clear(&err);
	if (ok(mailbox_open(&mb, p, &err) == 0, "%s: reopen", name)) {
		int gone = 1;
		ok(mailbox_list(mb, &items, &n, &err) == 0, "%s: relist", name);
		ok(mailbox_fetch_headers(mb, &err) == 0, "%s: headers again", name);
		is_int(n, 2, "%s: two messages remain", name);
		for (size_t i = 0; i < n; i++)
			if (find_header(&items[i], "mbtest") && strstr(items[i].headers, "#2"))
				gone = 0;
		ok(gone, "%s: the deleted one is gone", name);
		mailbox_close(mb, &err);
	} else {
		printf("#   %s\n", err.msg);
	}
	clear_maildir(upn);
}

static void base_params(struct mailbox_params *p, enum mail_protocol proto,
			enum tls_mode tls, const char *user)
{
	memset(p, 0, sizeof(*p));
	p->protocol = proto;
	p->host = "127.0.0.1";
	p->tls = tls;
	p->tls_min = TLSL_TLS1_2;
	p->verify_peer = 1;
	p->ca_file = world_get("WORLD_CA_FILE");
	p->user = user;
	p->timeout_s = 20;
	p->verbose = getenv("MS_TRACE") != NULL;
	if (proto == PROTO_IMAP)
		p->port = world_port(tls == TLSM_IMPLICIT ? "WORLD_IMAPS_PORT" : "WORLD_IMAP_PORT");
	else if (proto == PROTO_POP)
		p->port = world_port(tls == TLSM_IMPLICIT ? "WORLD_POP3S_PORT" : "WORLD_POP3_PORT");
}

static void negative_tests(void)
{
	struct mailbox_params p;
	struct ms_err err = MS_ERR_INIT;
	struct mailbox *mb = NULL;
	const char *bob = world_get("WORLD_USER_BOB"), *bobpw = world_get("WORLD_PASS_BOB");
	char label[128];

	/* wrong CA: the system store does not know the world's CA */
	base_params(&p, PROTO_IMAP, TLSM_IMPLICIT, bob);
	p.password = bobpw;
	p.ca_file = "/etc/ssl/certs/ca-certificates.crt";
	snprintf(label, sizeof(label), "imaps://127.0.0.1:%d", p.port);
	ok(mailbox_open(&mb, &p, &err) == -1 && err.code == MS_ERR_TLS,
	   "wrong CA refused (%s)", err.msg);
	ok(strstr(err.msg, label) != NULL, "TLS error names the server");
	err_clear(&err);

	base_params(&p, PROTO_POP, TLSM_STARTTLS, bob);
	p.password = bobpw;
	p.ca_file = "/etc/ssl/certs/ca-certificates.crt";
	ok(mailbox_open(&mb, &p, &err) == -1 && err.code == MS_ERR_TLS,
	   "wrong CA refused with STARTTLS too (%s)", err.msg);
	err_clear(&err);

	/* SelfSignedCertificate=True: no verification */
	base_params(&p, PROTO_IMAP, TLSM_IMPLICIT, bob);
	p.password = bobpw;
	p.ca_file = NULL;
	p.verify_peer = 0;
	ok(mailbox_open(&mb, &p, &err) == 0, "verify_peer=0 accepts the unknown CA %s",
	   err.msg);
	mailbox_close(mb, &err);
	mb = NULL;
	err_clear(&err);

	/* TLS 1.3 minimum negotiates */
	base_params(&p, PROTO_IMAP, TLSM_IMPLICIT, bob);
	p.password = bobpw;
	p.tls_min = TLSL_TLS1_3;
	ok(mailbox_open(&mb, &p, &err) == 0, "TLS 1.3 minimum %s", err.msg);
	mailbox_close(mb, &err);
	mb = NULL;
	err_clear(&err);

	/* wrong password: the server's text, never the password */
	base_params(&p, PROTO_IMAP, TLSM_IMPLICIT, bob);
	p.password = "Wrong-Canary-Pw-8127";
	ok(mailbox_open(&mb, &p, &err) == -1 && err.code == MS_ERR_AUTH,
	   "IMAP wrong password refused");
	ok(strstr(err.msg, "AUTHENTICATIONFAILED") || strstr(err.msg, "Authentication failed"),
	   "IMAP error keeps the server reply: %s", err.msg);
	ok(!strstr(err.msg, "Canary"), "IMAP error has no password");
	err_clear(&err);

	base_params(&p, PROTO_POP, TLSM_IMPLICIT, bob);
	p.password = "Wrong-Canary-Pw-8127";
	ok(mailbox_open(&mb, &p, &err) == -1 && err.code == MS_ERR_AUTH,
	   "POP wrong password refused");
	ok(strstr(err.msg, "-ERR"), "POP error keeps the server reply: %s", err.msg);
	ok(!strstr(err.msg, "Canary"), "POP error has no password");
	err_clear(&err);

	/* a dead token is replaced once with force_refresh */
	{
		struct tokctx tc = { world_get("WORLD_OUTLOOK_SCOPE"), 0, 0, 1 };
		base_params(&p, PROTO_IMAP, TLSM_IMPLICIT, world_get("WORLD_USER_ALICE"));
		p.token_fn = token_fn;
		p.token_ctx = &tc;
		ok(mailbox_open(&mb, &p, &err) == 0, "IMAP: expired token replaced %s", err.msg);
		is_int(tc.forced, 1, "IMAP: one forced refresh");
		mailbox_close(mb, &err);
		mb = NULL;
		err_clear(&err);
	}
	{
		struct tokctx tc = { world_get("WORLD_OUTLOOK_SCOPE"), 0, 0, 1 };
		base_params(&p, PROTO_POP, TLSM_IMPLICIT, world_get("WORLD_USER_ALICE"));
		p.token_fn = token_fn;
		p.token_ctx = &tc;
		ok(mailbox_open(&mb, &p, &err) == 0, "POP: expired token replaced %s", err.msg);
		is_int(tc.forced, 1, "POP: one forced refresh");
		mailbox_close(mb, &err);
		mb = NULL;
		err_clear(&err);
	}
	/* a mailbox the app may not open: refused, the token never shown */
	{
		struct tokctx tc = { world_get("WORLD_OUTLOOK_SCOPE"), 0, 0, 0 };
		base_params(&p, PROTO_IMAP, TLSM_IMPLICIT, bob);
		p.token_fn = token_fn;
		p.token_ctx = &tc;
		ok(mailbox_open(&mb, &p, &err) == -1 && err.code == MS_ERR_AUTH,
		   "IMAP XOAUTH2 for a mailbox not granted refused: %s", err.msg);
		ok(cached_token[0] && !strstr(err.msg, cached_token[0]) &&
		   !strstr(err.msg, "auth=Bearer"), "no token in the error");
		err_clear(&err);
	}
	/* Graph: a mailbox not granted gives Graph's error */
	{
		struct tokctx tc = { world_get("WORLD_GRAPH_SCOPE"), 0, 0, 0 };
		memset(&p, 0, sizeof(p));
		p.protocol = PROTO_GRAPH;
		p.graph_endpoint = world_get("WORLD_GRAPH_URL");
		p.ca_file = world_get("WORLD_CA_FILE");
		p.verify_peer = 1;
		p.user = bob;
		p.token_fn = token_fn;
		p.token_ctx = &tc;
		ok(mailbox_open(&mb, &p, &err) == -1 && err.code == MS_ERR_AUTH &&
		   strstr(err.msg, "ErrorAccessDenied"), "Graph access denied: %s", err.msg);
		err_clear(&err);
	}
}

static int ctl_post(const char *path)
{
	struct http_client *c = NULL;
	struct http_request rq;
	struct http_response r;
	struct ms_err err = MS_ERR_INIT;
	char url[512];
	int ret = -1;

	if (http_client_new(&c, NULL, &err))
		return -1;
	snprintf(url, sizeof(url), "%s%s", world_get("WORLD_CTL_URL"), path);
	memset(&rq, 0, sizeof(rq));
	rq.method = "POST";
	rq.url = url;
	if (http_do(c, &rq, &r, &err) == 0) {
		ret = r.status == 200 ? 0 : -1;
		http_response_release(&r);
	}
	http_client_free(c);
	return ret;
}

static void graph_params(struct mailbox_params *p, struct tokctx *tc, const char *upn)
{
	memset(p, 0, sizeof(*p));
	p->protocol = PROTO_GRAPH;
	p->graph_endpoint = world_get("WORLD_GRAPH_URL");
	p->ca_file = world_get("WORLD_CA_FILE");
	p->verify_peer = 1;
	p->user = upn;
	p->token_fn = token_fn;
	p->token_ctx = tc;
	p->timeout_s = 20;
	p->verbose = getenv("MS_TRACE") != NULL;
}

static void graph_service_test(void)
{
	struct mailbox_params p;
	struct ms_err err = MS_ERR_INIT;
	struct mailbox *mb = NULL;
	struct mailbox_item *items;
	size_t n = 0;
	const char *upn = world_get("WORLD_USER_ALICE");
	struct tokctx tc = { world_get("WORLD_GRAPH_SCOPE"), 0, 0, 1 };
	time_t t0;

	clear_maildir(upn);
	deliver_set(upn, "gsvc", 2);
	graph_params(&p, &tc, upn);
	ok(mailbox_open(&mb, &p, &err) == 0, "graph: a refused token is replaced %s", err.msg);
	is_int(tc.forced, 1, "graph: one forced refresh");
	if (!mb)
		return;
	ok(ctl_post("/ctl/graph/fail?status=429&count=2&retry_after=1") == 0,
	   "graph: two 429 answers armed");
	t0 = time(NULL);
	ok(mailbox_list(mb, &items, &n, &err) == 0 && n == 2,
	   "graph: list succeeds after 429s %s", err.msg);
	ok(time(NULL) - t0 >= 1, "graph: Retry-After was honoured");
	ok(ctl_post("/ctl/graph/fail?status=503&count=2&retry_after=0") == 0,
	   "graph: two 503 answers armed");
	if (n) {
		struct buf m;
		buf_init(&m, 0);
		ok(mailbox_fetch_message(mb, &items[0], &m, &err) == 0 && m.len > 0,
		   "graph: fetch succeeds after 5xx %s", err.msg);
		buf_release(&m);
	}
	ok(ctl_post("/ctl/graph/fail?status=503&count=20&retry_after=1") == 0,
	   "graph: a lasting outage armed");
	err_clear(&err);
	ok(mailbox_list(mb, &items, &n, &err) == -1 && err.code == MS_ERR_NET &&
	   strstr(err.msg, "ServiceNotAvailable"), "graph: bounded retries, then a "
	   "temporary error: %s", err.msg);
	ok(ctl_post("/ctl/graph/fail?status=503&count=0&retry_after=0") == 0,
	   "graph: outage over");
	mailbox_close(mb, &err);
	clear_maildir(upn);
}

/* The server drops the session in the middle of a run (Exchange does
 * after AccessTokenExpired): reconnect, select again, carry on; POP's DELE
 * marks are sent again in the new session. */
static void reconnect_test(enum mail_protocol proto)
{
	struct mailbox_params p;
	struct ms_err err = MS_ERR_INIT;
	struct mailbox *mb = NULL;
	struct mailbox_item *items;
	size_t n = 0;
	const char *upn = world_get("WORLD_USER_DAVE");
	const char *name = proto == PROTO_IMAP ? "imap" : "pop";
	char cmd[1024];
	long conns = 0;

	clear_maildir(upn);
	deliver_set(upn, "kick", 3);

	base_params(&p, proto, TLSM_IMPLICIT, upn);
	p.password = world_get("WORLD_PASS_DAVE");
	if (!ok(mailbox_open(&mb, &p, &err) == 0, "%s kick: open %s", name, err.msg))
		return;
	{
		int lrc = mailbox_list(mb, &items, &n, &err);
		ok(lrc == 0 && n == 3, "%s kick: list (%zu) %s", name, n, err.msg);
		for (size_t i = 0; n != 3 && i < n; i++)
			printf("#   %s %s\n", items[i].key, items[i].server_id);
	}
	if (n == 3 && proto == PROTO_POP)
		ok(mailbox_delete(mb, &items[0], &err) == 0, "%s kick: DELE before the drop",
		   name);
	snprintf(cmd, sizeof(cmd), "doveadm -c '%s/dovecot/dovecot.conf' kick '%s' >/dev/null 2>&1",
		 world_get("WORLD_DIR"), upn);
	ok(system(cmd) == 0, "%s kick: session dropped by the server", name);
	usleep(200000);
	ok(mailbox_fetch_headers(mb, &err) == 0, "%s kick: headers after the drop %s", name,
	   err.msg);
	if (n == 3 && proto == PROTO_IMAP)
		ok(mailbox_delete(mb, &items[0], &err) == 0, "%s kick: delete after the drop %s",
		   name, err.msg);
	mailbox_stats(mb, &conns, NULL);
	is_int(conns, 2, "%s kick: exactly one reconnection", name);
	ok(mailbox_close(mb, &err) == 0, "%s kick: close %s", name, err.msg);
	mb = NULL;
	if (ok(mailbox_open(&mb, &p, &err) == 0, "%s kick: reopen", name)) {
		int lrc = mailbox_list(mb, &items, &n, &err);
		ok(lrc == 0 && n == 2, "%s kick: the deleted one is gone, two remain (%zu)",
		   name, n);
		mailbox_close(mb, &err);
	}
	clear_maildir(upn);
}

static void readonly_test(void)
{
	struct mailbox_params p;
	struct ms_err err = MS_ERR_INIT;
	struct mailbox *mb = NULL;
	struct mailbox_item *items;
	size_t n = 0;
	const char *upn = world_get("WORLD_USER_DAVE");

	clear_maildir(upn);
	deliver_set(upn, "ro", 2);
	base_params(&p, PROTO_IMAP, TLSM_STARTTLS, upn);
	p.password = world_get("WORLD_PASS_DAVE");
	p.read_only = 1;
	if (!ok(mailbox_open(&mb, &p, &err) == 0, "read-only open %s", err.msg))
		return;
	ok(mailbox_list(mb, &items, &n, &err) == 0 && n == 2, "read-only list");
	ok(mailbox_fetch_headers(mb, &err) == 0, "read-only headers");
	if (n) {
		struct buf m;
		buf_init(&m, 0);
		ok(mailbox_fetch_message(mb, &items[0], &m, &err) == 0 && m.len > 0,
		   "read-only fetch");
		buf_release(&m);
		ok(mailbox_delete(mb, &items[0], &err) == -1, "read-only refuses delete");
		err_clear(&err);
	}
	mailbox_close(mb, &err);
	clear_maildir(upn);
}

static void since_test(void)
{
	struct mailbox_params p;
	struct ms_err err = MS_ERR_INIT;
	struct mailbox *mb = NULL;
	struct mailbox_item *items;
	size_t n = 9;
	const char *upn = world_get("WORLD_USER_DAVE");

	clear_maildir(upn);
	deliver_set(upn, "since", 2);
	base_params(&p, PROTO_IMAP, TLSM_IMPLICIT, upn);
	p.password = world_get("WORLD_PASS_DAVE");
	p.since = time(NULL) + 3600;
	if (ok(mailbox_open(&mb, &p, &err) == 0, "since: open")) {
		int lrc = mailbox_list(mb, &items, &n, &err);
		ok(lrc == 0 && n == 0, "IMAP since in the future lists nothing (%zu)", n);
		mailbox_close(mb, &err);
	}
	p.since = time(NULL) - 3600;
	if (ok(mailbox_open(&mb, &p, &err) == 0, "since: open")) {
		int lrc = mailbox_list(mb, &items, &n, &err);
		ok(lrc == 0 && n == 2, "IMAP since an hour ago lists both (%zu)", n);
		mailbox_close(mb, &err);
	}
	clear_maildir(upn);
}

/* POP has no arrival date: since filters on the Date header; Graph
 * filters on the server ($filter) and pages through @odata.nextLink. */
static void since_pop_graph_test(void)
{
	struct mailbox_params p;
	struct ms_err err = MS_ERR_INIT;
	struct mailbox *mb = NULL;
	struct mailbox_item *items;
	size_t n = 0;
	const char *upn = world_get("WORLD_USER_ALICE");
	struct tokctx tc = { world_get("WORLD_GRAPH_SCOPE"), 0, 0, 0 };
	char msg[600];
	int lrc;

	clear_maildir(upn);
	/* 2 messages dated 2001, 1 dated 2026 */
	for (int i = 0; i < 3; i++) {
		snprintf(msg, sizeof(msg), "From: <a@example.test>\r\nSubject: dated %d\r\n"
			 "Date: %s\r\nMessage-ID: <dated-%d@example.test>\r\n\r\nx\r\n", i,
			 i < 2 ? "Mon, 1 Jan 2001 00:00:00 +0000" : "Sat, 28 Nov 2026 00:00:00 +0000",
			 i);
		world_lmtp_deliver(upn, msg);
	}
	base_params(&p, PROTO_POP, TLSM_IMPLICIT, upn);
	p.token_fn = token_fn;
	p.token_ctx = &tc;
	tc.scope = world_get("WORLD_OUTLOOK_SCOPE");
	p.since = 1704067200;   /* 2024-01-01 */
	if (ok(mailbox_open(&mb, &p, &err) == 0, "pop since: open %s", err.msg)) {
		lrc = mailbox_list(mb, &items, &n, &err);
		ok(lrc == 0 && n == 1 && items[0].headers && strstr(items[0].headers, "dated 2"),
		   "POP since keeps mail whose Date is at or after it (%zu)", n);
		ok(n == 1 && items[0].received == 1795824000, "POP received is the Date header");
		mailbox_close(mb, &err);
	}
	clear_maildir(upn);

	/* Graph: 105 messages, pages of 100 */
	for (int i = 0; i < 105; i++) {
		snprintf(msg, sizeof(msg), "From: <a@example.test>\r\nSubject: page %d\r\n"
			 "Message-ID: <page-%d@example.test>\r\n\r\nx\r\n", i, i);
		if (world_lmtp_deliver(upn, msg))
			break;
	}
	graph_params(&p, &tc, upn);
	tc.scope = world_get("WORLD_GRAPH_SCOPE");
	p.since = time(NULL) - 3600;
	if (ok(mailbox_open(&mb, &p, &err) == 0, "graph paging: open %s", err.msg)) {
		int distinct = 1;
		lrc = mailbox_list(mb, &items, &n, &err);
		ok(lrc == 0 && n == 105, "graph: 105 messages over two pages (%zu) %s", n, err.msg);
		for (size_t i = 1; i < n; i++)
			if (strcmp(items[i].key, items[i - 1].key) == 0)
				distinct = 0;
		ok(distinct, "graph: no message listed twice");
		mailbox_close(mb, &err);
	}
	p.since = time(NULL) + 3600;
	if (ok(mailbox_open(&mb, &p, &err) == 0, "graph since: open")) {
		lrc = mailbox_list(mb, &items, &n, &err);
		ok(lrc == 0 && n == 0, "graph since in the future lists nothing (%zu)", n);
		mailbox_close(mb, &err);
	}
	clear_maildir(upn);
}

/* -v: the protocol trace never shows a password, a token or a SASL blob */
static struct buf trace_buf;

static void trace_sink(enum log_level lvl, const char *msg, void *ctx)
{
	struct ms_err e = MS_ERR_INIT;

	(void)lvl;
	(void)ctx;
	buf_appends(&trace_buf, msg, &e);
	buf_appends(&trace_buf, "\n", &e);
}

static void trace_test(void)
{
	struct mailbox_params p;
	struct ms_err err = MS_ERR_INIT;
	struct mailbox *mb = NULL;
	struct mailbox_item *items;
	size_t n;
	struct tokctx out_tc = { world_get("WORLD_OUTLOOK_SCOPE"), 0, 0, 0 };
	struct tokctx graph_tc = { world_get("WORLD_GRAPH_SCOPE"), 0, 0, 0 };
	int opened = 0;

	buf_init(&trace_buf, 8 * 1024 * 1024);
	log_set_sink(trace_sink, NULL, LOG_LVL_TRACE);
	for (int k = 0; k < 5; k++) {
		if (k == 4) {
			graph_params(&p, &graph_tc, world_get("WORLD_USER_ALICE"));
		} else {
			base_params(&p, k & 1 ? PROTO_POP : PROTO_IMAP, TLSM_IMPLICIT,
				    k < 2 ? world_get("WORLD_USER_BOB") : world_get("WORLD_USER_ALICE"));
			if (k < 2) {
				p.password = world_get("WORLD_PASS_BOB");
			} else {
				p.token_fn = token_fn;
				p.token_ctx = &out_tc;
			}
		}
		p.verbose = 1;
		if (mailbox_open(&mb, &p, &err) == 0) {
			opened++;
			mailbox_list(mb, &items, &n, &err);
			mailbox_close(mb, &err);
		}
		err_clear(&err);
	}
	log_set_sink(getenv("MS_TRACE") ? sink : NULL, NULL, LOG_LVL_TRACE);
	is_int(opened, 5, "trace: five verbose sessions");
	ok(trace_buf.data && strstr(trace_buf.data, "AUTHENTICATE XOAUTH2 [redacted]") &&
	   strstr(trace_buf.data, "AUTH XOAUTH2") && strstr(trace_buf.data, "[redacted]"),
	   "trace: the logins are traced, redacted");
	ok(trace_buf.data && !strstr(trace_buf.data, world_get("WORLD_PASS_BOB")),
	   "trace: no password");
	ok(trace_buf.data && cached_token[0] && cached_token[1] &&
	   !strstr(trace_buf.data, cached_token[0]) && !strstr(trace_buf.data, cached_token[1]),
	   "trace: no token");
	/* base64 of "user=" (XOAUTH2), "n,a=" (OAUTHBEARER), "\0bob@contoso" (PLAIN) */
	ok(trace_buf.data && !strstr(trace_buf.data, "dXNlcj") && !strstr(trace_buf.data, "bixh") &&
	   !strstr(trace_buf.data, "AGJvYkBjb250b3Nv"), "trace: no SASL blob");
	buf_release(&trace_buf);
}

/* Header blocks of 12 KB messages and one 5 KB Subject: one round trip,
 * each block whole, only the fields asked for. */
static void many_test(void)
{
	struct mailbox_params p;
	struct ms_err err = MS_ERR_INIT;
	struct mailbox *mb = NULL;
	struct mailbox_item *items;
	size_t n = 0;
	const char *upn = world_get("WORLD_USER_DAVE");
	char *msg = malloc(20000), *filler = malloc(12001);
	int lrc, all = 1;
	long conns = 0;

	clear_maildir(upn);
	memset(filler, 'y', 12000);
	for (int i = 0; i < 12000; i += 100)
		filler[i] = '\n';
	filler[12000] = '\0';
	for (int i = 0; i < 45; i++) {
		snprintf(msg, 20000, "From: <a@example.test>\r\nSubject: many %d\r\n"
			 "X-Filler: %d\r\nMessage-ID: <many-%d@example.test>\r\n\r\n%s\r\n",
			 i, i, i, filler);
		if (world_lmtp_deliver(upn, msg))
			break;
	}
	/* and one whose Subject alone is over 5 KB (folded) */
	{
		size_t o = (size_t)snprintf(msg, 20000, "From: <a@example.test>\r\nSubject: many 45");
		for (int i = 0; i < 100; i++)
			o += (size_t)snprintf(msg + o, 20000 - o, "\r\n word%03d-0123456789-0123456789-0123456789", i);
		snprintf(msg + o, 20000 - o, " END-OF-SUBJECT\r\nMessage-ID: <many-45@example.test>\r\n\r\nx\r\n");
		world_lmtp_deliver(upn, msg);
	}
	free(msg);
	free(filler);
	base_params(&p, PROTO_IMAP, TLSM_IMPLICIT, upn);
	p.password = world_get("WORLD_PASS_DAVE");
	p.verbose = 1;
	buf_init(&trace_buf, 8 * 1024 * 1024);
	log_set_sink(trace_sink, NULL, LOG_LVL_TRACE);
	if (ok(mailbox_open(&mb, &p, &err) == 0, "many: open")) {
		int fetches = 0, commands = 0;
		buf_reset(&trace_buf);
		lrc = mailbox_list(mb, &items, &n, &err);
		ok(lrc == 0 && n == 46, "many: 46 listed (%zu)", n);
		ok(mailbox_fetch_headers(mb, &err) == 0, "many: headers %s", err.msg);
		/* count the commands sent: trace lines "> A005 UID FETCH ..." */
		for (const char *t = trace_buf.data; t && *t;) {
			const char *nl = strchr(t, '\n');
			size_t len = nl ? (size_t)(nl - t) : strlen(t);
			if (len > 2 && t[0] == '>') {
				commands++;
				if (memmem(t, len, "HEADER.FIELDS", 13) &&
				    memmem(t, len, "INTERNALDATE", 12))
					fetches++;
			}
			t = nl ? nl + 1 : NULL;
		}
		is_int(fetches, 1, "many: one UID FETCH lists 46 messages with their header "
		       "fields (one over 5 KB)");
		is_int(commands, 1, "many: no other command for listing and headers");
		ok(n == 46 && items[45].headers && strstr(items[45].headers, "END-OF-SUBJECT"),
		   "many: a 5 KB Subject read whole");
		n = n == 46 ? 45 : n;
		for (size_t i = 0; i < n; i++) {
			char subj[64];
			snprintf(subj, sizeof(subj), "Subject: many %zu\r\n", i);
			if (!items[i].headers || !strstr(items[i].headers, subj) ||
			    strstr(items[i].headers, "X-Filler"))
				all = 0;
		}
		ok(all, "many: every header block, only the fields asked for");
		mailbox_stats(mb, &conns, NULL);
		is_int(conns, 1, "many: one connection");
		mailbox_close(mb, &err);
	}
	log_set_sink(getenv("MS_TRACE") ? sink : NULL, NULL, LOG_LVL_TRACE);
	buf_release(&trace_buf);
	clear_maildir(upn);
}

static void big_line_test(void)
{
	struct mailbox_params p;
	struct ms_err err = MS_ERR_INIT;
	struct mailbox *mb = NULL;
	struct mailbox_item *items;
	size_t n = 0, len = 3 * 1024 * 1024;
	const char *upn = world_get("WORLD_USER_DAVE");
	char *msg = malloc(len + 400);

	clear_maildir(upn);
	n = (size_t)snprintf(msg, 400, "From: <a@example.test>\r\nSubject: big line\r\n"
			     "Message-ID: <big@example.test>\r\n\r\n");
	memset(msg + n, 'x', len);
	strcpy(msg + n + len, "\r\nend-of-big\r\n");
	ok(world_lmtp_deliver(upn, msg) == 0, "big: a message with a 3 MB line delivered");
	free(msg);
	base_params(&p, PROTO_IMAP, TLSM_IMPLICIT, upn);
	p.password = world_get("WORLD_PASS_DAVE");
	if (ok(mailbox_open(&mb, &p, &err) == 0, "big: open")) {
		ok(mailbox_list(mb, &items, &n, &err) == 0 && n == 1, "big: listed");
		if (n == 1) {
			struct buf m;
			buf_init(&m, 0);
			ok(mailbox_fetch_message(mb, &items[0], &m, &err) == 0, "big: fetched %s",
			   err.msg);
			ok(m.len >= len && m.data && strstr(m.data + len, "end-of-big") &&
			   m.len == items[0].size, "big: every byte (%zu of %zu)", m.len,
			   items[0].size);
			buf_release(&m);
		}
		mailbox_close(mb, &err);
	}
	clear_maildir(upn);
}


/* ------------------------------------------------------------------ */
/* a large mailbox: written straight into the Maildir (no ",S=" size in
 * the names, so Dovecot measures them itself), owned by nobody */

#define LARGE_N     2000
#define LARGE_BIG   777                 /* this one is 5 MB */
#define LARGE_BYTES (5 * 1024 * 1024)

static double now_s(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* The big message, CRLF throughout so what IMAP and POP return is
 * byte for byte the file. */
static char *large_big_message(size_t *len)
{
	char *m = malloc(LARGE_BYTES + 1024);
	size_t o;

	if (!m)
		return NULL;
	o = (size_t)snprintf(m, 1024, "From: <big@example.test>\r\nSubject: large #%d\r\n"
			     "Message-ID: <large-%d@example.test>\r\n"
			     "Date: Sat, 28 Nov 2026 01:00:00 +0000\r\n\r\n",
			     LARGE_BIG, LARGE_BIG);
	for (unsigned line = 0; o + 80 < LARGE_BYTES; line++) {
		/* 76 characters, each line different */
		o += (size_t)snprintf(m + o, 80, "%08u", line);
		for (int i = 0; i < 66; i++)
			m[o++] = (char)('A' + (line * 7 + (unsigned)i) % 26);
		memcpy(m + o, "\r\n", 2);
		o += 2;
	}
	o += (size_t)snprintf(m + o, 64, "end-of-large\r\n");
	*len = o;
	return m;
}

static int fill_large(const char *upn, int n)
{
	const char *at = strchr(upn, '@');
	char dir[1024], path[1200], msg[1024];
	size_t biglen = 0;
	char *big = large_big_message(&biglen);
	int ret = -1;

	if (!at || !big)
		goto out;
	snprintf(dir, sizeof(dir), "%s/%s/%.*s/Maildir/new", world_get("WORLD_MAIL_ROOT"),
		 at + 1, (int)(at - upn), upn);
	for (int i = 0; i < n; i++) {
		FILE *f;
		const char *data = msg;
		size_t len;

		snprintf(path, sizeof(path), "%s/1790000000.M%dP%d.large", dir, i,
			 (int)getpid());
		if (i == LARGE_BIG) {
			data = big;
			len = biglen;
		} else {
			len = (size_t)snprintf(msg, sizeof(msg),
					       "From: \"Sender %d\" <s%d@example.test>\r\n"
					       "To: %s\r\nSubject: large #%d\r\n"
					       "Date: Sat, 28 Nov 2026 01:%02d:%02d +0000\r\n"
					       "Message-ID: <large-%d@example.test>\r\n"
					       "X-Other: not asked for\r\n\r\n"
					       "body of %d\r\n", i, i, upn, i, i / 60 % 60,
					       i % 60, i, i);
		}
		if (!(f = fopen(path, "w")))
			goto out;
		if (fwrite(data, 1, len, f) != len) {
			fclose(f);
			goto out;
		}
		if (fclose(f) || chown(path, 65534, 65534))
			goto out;
	}
	ret = 0;
out:
	free(big);
	return ret;
}

/* Every "Subject: large #i" exactly once, never the body; IMAP asks only
 * for the fields the rules read, POP's TOP n 0 has the whole header. */
static int large_subjects_ok(const struct mailbox_item *items, size_t n, int want,
			     int fields_only)
{
	char *seen = calloc((size_t)want, 1);
	int good = seen != NULL && (int)n == want;

	for (size_t i = 0; good && i < n; i++) {
		const char *h = items[i].headers, *s;
		int k;
		if (!h || !(s = strstr(h, "Subject: large #")) ||
		    sscanf(s + 16, "%d", &k) != 1 || k < 0 || k >= want || seen[k] ||
		    (fields_only && strstr(h, "X-Other")) || strstr(h, "body of"))
			good = 0;
		else
			seen[k] = 1;
	}
	free(seen);
	return good;
}

static void large_test(enum mail_protocol proto)
{
	struct mailbox_params p;
	struct ms_err err = MS_ERR_INIT;
	struct mailbox *mb = NULL;
	struct mailbox_item *items;
	size_t n = 0, biglen = 0;
	const char *upn = world_get("WORLD_USER_DAVE");
	const char *name = proto == PROTO_IMAP ? "imap" : "pop";
	char *big = large_big_message(&biglen);
	long conns = 0, logins = 0, logpos;
	double t0, t1;

	clear_maildir(upn);
	if (!ok(fill_large(upn, LARGE_N) == 0, "%s large: %d messages written", name,
		LARGE_N))
		goto out;
	base_params(&p, proto, TLSM_IMPLICIT, upn);
	p.password = world_get("WORLD_PASS_DAVE");
	logpos = log_size();
	t0 = now_s();
	if (!ok(mailbox_open(&mb, &p, &err) == 0, "%s large: open %s", name, err.msg))
		goto out;
	ok(mailbox_list(mb, &items, &n, &err) == 0, "%s large: list %s", name, err.msg);
	is_int(n, LARGE_N, "%s large: all listed", name);
	ok(mailbox_fetch_headers(mb, &err) == 0, "%s large: headers %s", name, err.msg);
	t1 = now_s();
	printf("# %s large: list + headers of %zu messages in %.2f s\n", name, n, t1 - t0);
	ok(large_subjects_ok(items, n, LARGE_N, proto == PROTO_IMAP), "%s large: every header block right, "
	   "every Subject once", name);
	mailbox_stats(mb, &conns, &logins);
	is_int(conns, 1, "%s large: list + headers over one connection", name);
	is_int(logins, 1, "%s large: one login", name);
	{
		size_t bi = (size_t)-1, del = (size_t)-1;
		for (size_t i = 0; i < n; i++) {
			char want[64];
			snprintf(want, sizeof(want), "Subject: large #%d\r\n", LARGE_BIG);
			if (items[i].headers && strstr(items[i].headers, want))
				bi = i;
			else if (del == (size_t)-1 && i > n / 2)
				del = i;
		}
		ok(bi != (size_t)-1 && items[bi].size == biglen,
		   "%s large: the 5 MB message listed with its size (%zu)", name,
		   bi != (size_t)-1 ? items[bi].size : 0);
		if (bi != (size_t)-1 && big) {
			struct buf m;
			buf_init(&m, 0);
			t0 = now_s();
			ok(mailbox_fetch_message(mb, &items[bi], &m, &err) == 0,
			   "%s large: 5 MB fetched %s", name, err.msg);
			printf("# %s large: 5 MB message in %.2f s\n", name, now_s() - t0);
			ok(m.len == biglen && memcmp(m.data, big, biglen) == 0,
			   "%s large: 5 MB message intact (%zu of %zu bytes)", name, m.len, biglen);
			buf_release(&m);
		}
		if (del != (size_t)-1)
			ok(mailbox_delete(mb, &items[del], &err) == 0, "%s large: delete one %s",
			   name, err.msg);
	}
	mailbox_stats(mb, &conns, &logins);
	is_int(conns, 1, "%s large: still one connection", name);
	ok(mailbox_close(mb, &err) == 0, "%s large: close %s", name, err.msg);
	mb = NULL;
	is_int(count_logins(logpos, upn, NULL), 1, "%s large: Dovecot saw one login", name);
	if (ok(mailbox_open(&mb, &p, &err) == 0, "%s large: reopen %s", name, err.msg)) {
		ok(mailbox_list(mb, &items, &n, &err) == 0 && n == LARGE_N - 1,
		   "%s large: %d remain (%zu) %s", name, LARGE_N - 1, n, err.msg);
		mailbox_close(mb, &err);
		mb = NULL;
	}
out:
	if (mb)
		mailbox_close(mb, &err);
	free(big);
	clear_maildir(upn);
}

int main(void)
{
	const char *dir = getenv("MS_WORLD_DIR");
	struct mailbox_params p;
	struct tokctx out_tc, graph_tc;

	if (!dir || !*dir) {
		printf("1..0 # SKIP no mail world\n");
		return 0;
	}
	if (world_load(dir) || !world_get("WORLD_IMAPS_PORT")) {
		printf("Bail out! cannot read %s/env\n", dir);
		return 1;
	}
	if (getenv("MS_TRACE"))
		log_set_sink(sink, NULL, LOG_LVL_TRACE);

	base_params(&p, PROTO_IMAP, TLSM_IMPLICIT, world_get("WORLD_USER_BOB"));
	p.password = world_get("WORLD_PASS_BOB");
	p.verbose = getenv("MS_TRACE") != NULL;
	scenario("imaps-basic", &p, world_get("WORLD_USER_BOB"), "imap:", "method=PLAIN");

	base_params(&p, PROTO_IMAP, TLSM_STARTTLS, world_get("WORLD_USER_BOB"));
	p.password = world_get("WORLD_PASS_BOB");
	scenario("imap-starttls-basic", &p, world_get("WORLD_USER_BOB"), "imap:", "method=PLAIN");

	base_params(&p, PROTO_POP, TLSM_IMPLICIT, world_get("WORLD_USER_BOB"));
	p.password = world_get("WORLD_PASS_BOB");
	scenario("pop3s-basic", &p, world_get("WORLD_USER_BOB"), "pop:", "method=PLAIN");

	base_params(&p, PROTO_POP, TLSM_STARTTLS, world_get("WORLD_USER_BOB"));
	p.password = world_get("WORLD_PASS_BOB");
	scenario("pop3-starttls-basic", &p, world_get("WORLD_USER_BOB"), "pop:", "method=PLAIN");

	memset(&out_tc, 0, sizeof(out_tc));
	out_tc.scope = world_get("WORLD_OUTLOOK_SCOPE");
	base_params(&p, PROTO_IMAP, TLSM_IMPLICIT, world_get("WORLD_USER_ALICE"));
	p.token_fn = token_fn;
	p.token_ctx = &out_tc;
	p.verbose = getenv("MS_TRACE") != NULL;
	scenario("imaps-xoauth2", &p, world_get("WORLD_USER_ALICE"), "imap:", "method=XOAUTH2");

	base_params(&p, PROTO_IMAP, TLSM_STARTTLS, world_get("WORLD_USER_ALICE"));
	p.token_fn = token_fn;
	p.token_ctx = &out_tc;
	scenario("imap-starttls-xoauth2", &p, world_get("WORLD_USER_ALICE"), "imap:",
		 "method=XOAUTH2");

	base_params(&p, PROTO_POP, TLSM_IMPLICIT, world_get("WORLD_USER_ALICE"));
	p.token_fn = token_fn;
	p.token_ctx = &out_tc;
	scenario("pop3s-xoauth2", &p, world_get("WORLD_USER_ALICE"), "pop:", "method=XOAUTH2");

	base_params(&p, PROTO_POP, TLSM_STARTTLS, world_get("WORLD_USER_ALICE"));
	p.token_fn = token_fn;
	p.token_ctx = &out_tc;
	scenario("pop3-starttls-xoauth2", &p, world_get("WORLD_USER_ALICE"), "pop:",
		 "method=XOAUTH2");

	memset(&graph_tc, 0, sizeof(graph_tc));
	graph_tc.scope = world_get("WORLD_GRAPH_SCOPE");
	memset(&p, 0, sizeof(p));
	p.protocol = PROTO_GRAPH;
	p.graph_endpoint = world_get("WORLD_GRAPH_URL");
	p.ca_file = world_get("WORLD_CA_FILE");
	p.verify_peer = 1;
	p.user = world_get("WORLD_USER_ALICE");
	p.token_fn = token_fn;
	p.token_ctx = &graph_tc;
	p.timeout_s = 20;
	scenario("graph", &p, world_get("WORLD_USER_ALICE"), "graph:", NULL);

	negative_tests();
	trace_test();
	graph_service_test();
	reconnect_test(PROTO_IMAP);
	reconnect_test(PROTO_POP);
	readonly_test();
	since_test();
	since_pop_graph_test();
	many_test();
	big_line_test();
	large_test(PROTO_IMAP);
	large_test(PROTO_POP);

	for (int i = 0; i < 2; i++)
		free(cached_token[i]);
	world_free();
	return done_testing();
}
