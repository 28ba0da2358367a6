/* test_send_live.c - send_mail() against the mail world (tests/peers/world):
 * Postfix submission over STARTTLS, implicit TLS and XOAUTH2, and the Graph
 * stand-in's sendMail; every mail is read back over IMAP to prove arrival.
 * Needs MS_WORLD_DIR (a running world); skips without it. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mail/explain.h"
#include "transport/http.h"
#include "base/log.h"
#include "transport/send.h"
#include "tap.h"
#include "world.h"

/* ---- tokens from the stand-in (client credentials) ----------------------- */

struct tokctx {
	const char *client_id, *secret, *scope;
	int calls, forced;
	char last[4096];     /* the last token handed out, to prove it is never logged */
};

static int get_token(void *ctx, int force, char **token, struct ms_err *err)
{
	struct tokctx *t = ctx;
	struct http_client_params hp = { 0 };
	struct http_client *hc = NULL;
	struct http_response rs;
	struct buf form;
	char url[512];
	cJSON *root = NULL, *at;
	int ret = -1;

	t->calls++;
	t->forced += force;
	buf_init(&form, 0);
	snprintf(url, sizeof(url), "%s/%s/oauth2/v2.0/token", world_str("WORLD_TOKEN_URL"),
		 world_str("WORLD_TENANT"));
	if (http_form_add(&form, "grant_type", "client_credentials", err) ||
	    http_form_add(&form, "client_id", t->client_id, err) ||
	    http_form_add(&form, "client_secret", t->secret, err) ||
	    http_form_add(&form, "scope", t->scope, err))
		goto out;
	hp.ca_file = world_str("WORLD_CA_FILE");
	if (http_client_new(&hc, &hp, err))
		goto out;
	{
		struct http_request rq = { "POST", url, "application/x-www-form-urlencoded",
					   form.data, form.len, NULL, NULL };
		if (http_do(hc, &rq, &rs, err))
			goto out;
	}
	root = cJSON_ParseWithLength(rs.body.data ? rs.body.data : "", rs.body.len);
	at = cJSON_GetObjectItem(root, "access_token");
	if (rs.status != 200 || !cJSON_IsString(at)) {
		err_set(err, MS_ERR_AUTH, "token request failed: %ld", rs.status);
		http_response_release(&rs);
		goto out;
	}
	*token = strdup(at->valuestring);
	snprintf(t->last, sizeof(t->last), "%s", at->valuestring);
	http_response_release(&rs);
	ret = *token ? 0 : -1;
out:
	cJSON_Delete(root);
	http_client_free(hc);
	buf_wipe(&form);
	return ret;
}

/* The token endpoint's raw answer for t (status returned, body copied). */
static long token_body(struct tokctx *t, char *out, size_t outsz)
{
	struct http_client_params hp = { 0 };
	struct http_client *hc = NULL;
	struct http_response rs;
	struct ms_err err = MS_ERR_INIT;
	struct buf form;
	char url[512];
	long status = -1;

	out[0] = '\0';
	buf_init(&form, 0);
	snprintf(url, sizeof(url), "%s/%s/oauth2/v2.0/token", world_str("WORLD_TOKEN_URL"),
		 world_str("WORLD_TENANT"));
	http_form_add(&form, "grant_type", "client_credentials", &err);
	http_form_add(&form, "client_id", t->client_id, &err);
	http_form_add(&form, "client_secret", t->secret, &err);
	http_form_add(&form, "scope", t->scope, &err);
	hp.ca_file = world_str("WORLD_CA_FILE");
	if (err.code == MS_OK && http_client_new(&hc, &hp, &err) == 0) {
		struct http_request rq = { "POST", url, "application/x-www-form-urlencoded",
					   form.data, form.len, NULL, NULL };
		if (http_do(hc, &rq, &rs, &err) == 0) {
			status = rs.status;
			snprintf(out, outsz, "%.*s", (int)rs.body.len, rs.body.data ? rs.body.data : "");
			http_response_release(&rs);
		}
	}
	http_client_free(hc);
	buf_wipe(&form);
	return status;
}

/* ---- the control port of the stand-ins ----------------------------------- */

static int ctl(const char *path_query)
{
	struct http_client *hc = NULL;
	struct http_response rs;
	struct ms_err err = MS_ERR_INIT;
	char url[512];
	int ret = -1;

	snprintf(url, sizeof(url), "%s%s", world_str("WORLD_CTL_URL"), path_query);
	if (http_client_new(&hc, NULL, &err) == 0) {
		struct http_request rq = { "POST", url, NULL, NULL, 0, NULL, NULL };
		if (http_do(hc, &rq, &rs, &err) == 0) {
			ret = rs.status == 200 ? 0 : -1;
			http_response_release(&rs);
		}
	}
	http_client_free(hc);
	return ret;
}

/* ---- IMAP read-back ------------------------------------------------------ */

struct sink {
	char *data;
	size_t len;
};

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
	struct sink *s = ud;
	size_t add = sz * n;
	char *d = realloc(s->data, s->len + add + 1);

	if (!d)
		return 0;
	memcpy(d + s->len, p, add);
	s->len += add;
	d[s->len] = '\0';
	s->data = d;
	return add;
}

/* One IMAP request on INBOX: a custom command (custom != NULL) or the
 * URL's own action.  Untagged answers / the message land in out. */
static int imap_do(const char *url, const char *custom, struct sink *out)
{
	CURL *h = curl_easy_init();
	CURLcode rc;

	out->data = NULL;
	out->len = 0;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_USERNAME, world_str("WORLD_USER_ALICE"));
	curl_easy_setopt(h, CURLOPT_PASSWORD, world_str("WORLD_PASS_ALICE"));
	curl_easy_setopt(h, CURLOPT_CAINFO, world_str("WORLD_CA_FILE"));
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	if (custom)
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, custom);
	rc = curl_easy_perform(h);
	curl_easy_cleanup(h);
	return rc == CURLE_OK ? 0 : -1;
}

/* Find the message in alice's INBOX whose header `hdr` contains `id`
 * (polls up to ~15 s for delivery), return it raw (caller frees) and
 * delete it again, so the shared world's INBOX is left as it was. */
static char *fetch_and_remove(const char *hdr, const char *id)
{
	char url[256], cmd[256];
	struct sink s;
	char *msg = NULL;
	long uid = 0;

	snprintf(url, sizeof(url), "imaps://127.0.0.1:%d/INBOX", world_port("WORLD_IMAPS_PORT"));
	snprintf(cmd, sizeof(cmd), "UID SEARCH HEADER %s %s", hdr, id);
	for (int i = 0; i < 60 && uid <= 0; i++) {
		char *star;
		if (imap_do(url, cmd, &s) == 0 && s.data && (star = strstr(s.data, "* SEARCH ")))
			uid = strtol(star + 9, NULL, 10);
		free(s.data);
		if (uid <= 0)
			usleep(250 * 1000);
	}
	if (uid <= 0)
		return NULL;
	snprintf(url, sizeof(url), "imaps://127.0.0.1:%d/INBOX/;UID=%ld",
		 world_port("WORLD_IMAPS_PORT"), uid);
	if (imap_do(url, NULL, &s) == 0)
		msg = s.data;
	else
		free(s.data);
	snprintf(url, sizeof(url), "imaps://127.0.0.1:%d/INBOX", world_port("WORLD_IMAPS_PORT"));
	snprintf(cmd, sizeof(cmd), "UID STORE %ld +FLAGS.SILENT (\\Deleted)", uid);
	imap_do(url, cmd, &s);
	free(s.data);
	snprintf(cmd, sizeof(cmd), "UID EXPUNGE %ld", uid);
	imap_do(url, cmd, &s);
	free(s.data);
	/* prove the removal */
	snprintf(cmd, sizeof(cmd), "UID SEARCH HEADER %s %s", hdr, id);
	if (imap_do(url, cmd, &s) == 0 && s.data && strstr(s.data, "* SEARCH ") &&
	    strtol(strstr(s.data, "* SEARCH ") + 9, NULL, 10) > 0) {
		free(msg);
		msg = NULL;   /* still there: fail the arrival check loudly */
		printf("# could not remove UID %ld\n", uid);
	}
	free(s.data);
	return msg;
}

/* ---- log capture (to prove secrets never reach a log line) --------------- */

static char logbuf[1 << 20];
static size_t loglen;

static void capture(enum log_level lvl, const char *msg, void *ctx)
{
	size_t l = strlen(msg);

	(void)lvl; (void)ctx;
	if (loglen + l + 2 < sizeof(logbuf)) {
		memcpy(logbuf + loglen, msg, l);
		logbuf[loglen + l] = '\n';
		loglen += l + 1;
		logbuf[loglen] = '\0';
	}
}

static void new_id(char *out, size_t n)
{
	unsigned char r[8];

	RAND_bytes(r, sizeof(r));
	snprintf(out, n, "probe%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3],
		 r[4], r[5], r[6], r[7]);
}

/* Send one probe from alice to alice and read it back over IMAP. */
static void probe_roundtrip(const char *what, struct send_params *p, const char *hdr)
{
	struct send_header xh[1];
	struct send_message m = { 0 };
	struct ms_err err = MS_ERR_INIT;
	char id[64], subject[160], *got;

	new_id(id, sizeof(id));
	xh[0].name = "X-Mailshift-Probe";
	xh[0].value = id;
	snprintf(subject, sizeof(subject), "St\xc3\xb6rung %s \xe2\x9c\x93", id);
	m.from = world_str("WORLD_USER_ALICE");
	m.from_name = "OpCon Notify";
	m.to = world_str("WORLD_USER_ALICE");
	m.subject = subject;
	m.body = "Job FAILED\n.\n.leading dot\nLast line\n";
	m.headers = xh;
	m.n_headers = 1;
	is_int(send_mail(p, &m, &err), 0, "%s: sent (%s)", what, err.msg);
	got = fetch_and_remove(hdr, id);
	ok(got != NULL, "%s: arrived in alice's INBOX (read back over IMAP, then removed)", what);
	if (got && strcmp(hdr, "X-Mailshift-Probe") == 0) {
		char want[128];
		snprintf(want, sizeof(want), "X-Mailshift-Probe: %s\r\n", id);
		ok(strstr(got, want) != NULL, "%s: probe header intact", what);
		ok(strstr(got, "Subject: =?UTF-8?B?") != NULL, "%s: subject RFC 2047 encoded", what);
		ok(strstr(got, "\r\n\r\nJob FAILED\r\n.\r\n.leading dot\r\nLast line\r\n") != NULL,
		   "%s: body intact, dots survived the transport", what);
	} else if (got) {
		ok(strstr(got, "Job FAILED") != NULL || strstr(got, "Sm9iIEZBSUxFRA") != NULL,
		   "%s: body present", what);
	}
	free(got);
}

int main(void)
{
	const char *dir = getenv("MS_WORLD_DIR");
	struct send_params p;
	struct ms_err err;
	struct tokctx outlook = { 0 }, graph = { 0 }, noroles = { 0 }, wrongaud;
	struct send_message m = { 0 };

	if (!dir || !*dir) {
		printf("1..0 # SKIP no mail world\n");
		return 0;
	}
	if (world_load(dir)) {
		printf("1..0 # SKIP cannot read %s/env\n", dir);
		return 0;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	log_set_sink(capture, NULL, LOG_LVL_TRACE);

	outlook.client_id = world_str("WORLD_APP_ID");
	outlook.secret = world_str("WORLD_APP_SECRET");
	outlook.scope = world_str("WORLD_OUTLOOK_SCOPE");
	graph = outlook;
	graph.scope = world_str("WORLD_GRAPH_SCOPE");
	wrongaud = graph;
	noroles.client_id = world_str("WORLD_NOROLES_APP_ID");
	noroles.secret = world_str("WORLD_NOROLES_APP_SECRET");
	noroles.scope = world_str("WORLD_OUTLOOK_SCOPE");

	/* basic auth over STARTTLS (587-style port) */
	memset(&p, 0, sizeof(p));
	p.host = "127.0.0.1";
	p.port = world_port("WORLD_SUBMISSION_PORT");
	p.tls = SEND_TLS_STARTTLS;
	p.auth = SEND_AUTH_BASIC;
	p.user = world_str("WORLD_USER_ALICE");
	p.password = world_str("WORLD_PASS_ALICE");
	p.ca_file = world_str("WORLD_CA_FILE");
	p.timeout_s = 30;
	p.verbose = 1;
	probe_roundtrip("basic over STARTTLS", &p, "X-Mailshift-Probe");

	/* basic auth over implicit TLS (465-style port) */
	p.port = world_port("WORLD_SUBMISSIONS_PORT");
	p.tls = SEND_TLS_IMPLICIT;
	probe_roundtrip("basic over implicit TLS", &p, "X-Mailshift-Probe");

	/* XOAUTH2 on the XOAUTH2-only port, token from the stand-in */
	p.port = world_port("WORLD_SUBMISSION_XOAUTH2_PORT");
	p.tls = SEND_TLS_STARTTLS;
	p.auth = SEND_AUTH_XOAUTH2;
	p.password = NULL;
	p.token_fn = get_token;
	p.token_ctx = &outlook;
	probe_roundtrip("XOAUTH2 (XOAUTH2-only port)", &p, "X-Mailshift-Probe");
	is_int(outlook.forced, 0, "XOAUTH2: no forced refresh needed");

	/* XOAUTH2 where OAUTHBEARER is offered too: the mechanism stays XOAUTH2 */
	loglen = 0;
	p.port = world_port("WORLD_SUBMISSION_PORT");
	probe_roundtrip("XOAUTH2 (port offering OAUTHBEARER too)", &p, "X-Mailshift-Probe");
	ok(strstr(logbuf, "smtp > AUTH XOAUTH2 [credentials hidden]") != NULL,
	   "XOAUTH2 chosen over OAUTHBEARER");
	ok(!strstr(logbuf, "OAUTHBEARER [") , "OAUTHBEARER never used");

	/* Graph sendMail */
	memset(&p, 0, sizeof(p));
	p.transport = SEND_GRAPH;
	p.graph_endpoint = world_str("WORLD_GRAPH_URL");
	p.ca_file = world_str("WORLD_CA_FILE");
	p.token_fn = get_token;
	p.token_ctx = &graph;
	p.timeout_s = 30;
	p.verbose = 1;
	probe_roundtrip("Graph sendMail", &p, "Subject");

	/* Graph 429 with Retry-After, twice, then accepted */
	if (ctl("/ctl/graph/fail?status=429&count=2&retry_after=1") == 0) {
		time_t t0 = time(NULL);
		probe_roundtrip("Graph after two 429s", &p, "Subject");
		ok(time(NULL) - t0 >= 2, "Retry-After honoured (waited %lds)", (long)(time(NULL) - t0));
	} else {
		ok(0, "ctl graph-fail 429");
	}
	/* 503 once, then accepted */
	if (ctl("/ctl/graph/fail?status=503&count=1&retry_after=1") == 0)
		probe_roundtrip("Graph after a 503", &p, "Subject");
	else
		ok(0, "ctl graph-fail 503");
	/* 429 beyond the retry budget: a temporary, throttled failure */
	p.max_retries = 2;
	m.from = world_str("WORLD_USER_ALICE");
	m.to = world_str("WORLD_USER_ALICE");
	m.subject = "never sent";
	m.body = "x";
	if (ctl("/ctl/graph/fail?status=429&count=3&retry_after=1") == 0) {
		err_clear(&err);
		is_int(send_mail(&p, &m, &err), -1, "Graph: 429 past the retry budget fails");
		is_int(err.code, MS_ERR_THROTTLED, "Graph 429: throttled (%s)", err.msg);
		ok(err_is_temporary(&err), "Graph 429 failure is temporary");
		ok(strstr(err.msg, "graph sendMail as 'alice@contoso.test': 429") != NULL,
		   "Graph 429 message: %s", err.msg);
	} else {
		ok(0, "ctl graph-fail 429 x3");
	}
	p.max_retries = 0;
	/* Graph refuses a mailbox the app may not send as */
	err_clear(&err);
	p.user = world_str("WORLD_USER_BOB");
	m.from = world_str("WORLD_USER_BOB");
	is_int(send_mail(&p, &m, &err), -1, "Graph: mailbox outside the app's grant refused");
	ok(err.code == MS_ERR_AUTH, "Graph refusal is an auth error: %s", err.msg);
	{
		struct explain e;
		int rc = explain_text(err.msg, &e);
		ok(rc == 0, "Graph refusal explained: %s / %s", e.cause, e.fix);
	}
	p.user = NULL;

	/* SMTP refusals keep the server's reply */
	memset(&p, 0, sizeof(p));
	p.host = "127.0.0.1";
	p.port = world_port("WORLD_SUBMISSION_PORT");
	p.tls = SEND_TLS_STARTTLS;
	p.auth = SEND_AUTH_BASIC;
	p.user = world_str("WORLD_USER_ALICE");
	p.password = world_str("WORLD_PASS_ALICE");
	p.ca_file = world_str("WORLD_CA_FILE");
	p.timeout_s = 30;
	p.verbose = 1;
	m.from = world_str("WORLD_USER_BOB");
	m.to = world_str("WORLD_USER_ALICE");
	m.subject = "send as bob";
	err_clear(&err);
	is_int(send_mail(&p, &m, &err), -1, "wrong sender refused");
	{
		char want[256];
		struct explain e;
		snprintf(want, sizeof(want), "smtp://127.0.0.1:%d: sender refused: 553 5.7.1 "
			 "<bob@contoso.test>: Sender address rejected: not owned by user "
			 "alice@contoso.test", world_port("WORLD_SUBMISSION_PORT"));
		is(err.msg, want, "wrong sender: the server's own words");
		explain_text(err.msg, &e);
		is(e.topic, "smtp 5.7.1 sender", "wrong sender explained");
	}

	m.from = world_str("WORLD_USER_ALICE");
	m.to = "nobody@contoso.test";
	err_clear(&err);
	is_int(send_mail(&p, &m, &err), -1, "unknown recipient refused");
	ok(strstr(err.msg, ": recipient refused: 550 5.1.1 <nobody@contoso.test>") != NULL,
	   "unknown recipient message: %s", err.msg);

	m.to = world_str("WORLD_USER_ALICE");
	p.password = "Wrong-password-canary";
	err_clear(&err);
	loglen = 0;
	is_int(send_mail(&p, &m, &err), -1, "wrong password refused");
	is_int(err.code, MS_ERR_AUTH, "wrong password: auth error");
	ok(strstr(err.msg, "authentication failed: 535 5.7.8") != NULL, "wrong password message: %s",
	   err.msg);
	ok(!strstr(err.msg, "canary") && !strstr(logbuf, "canary"),
	   "the password is in neither the error nor the trace");
	ok(!strstr(logbuf, "AGFsaWNl"), "no base64 credential blob in the trace");

	/* XOAUTH2 with a token for the wrong resource (Graph): refused, one
	 * retry with a fresh token */
	p.port = world_port("WORLD_SUBMISSION_XOAUTH2_PORT");
	p.auth = SEND_AUTH_XOAUTH2;
	p.password = NULL;
	p.token_fn = get_token;
	wrongaud.calls = wrongaud.forced = 0;
	p.token_ctx = &wrongaud;
	err_clear(&err);
	loglen = 0;
	is_int(send_mail(&p, &m, &err), -1, "XOAUTH2 token for another resource refused");
	is_int(err.code, MS_ERR_AUTH, "XOAUTH2 refusal: auth error (%s)", err.msg);
	ok(strstr(err.msg, "authentication failed: ") != NULL, "XOAUTH2 refusal message: %s",
	   err.msg);
	is_int(wrongaud.calls, 2, "one retry with a fresh token");
	is_int(wrongaud.forced, 1, "the retry forced a refresh");
	ok(wrongaud.last[0] && !strstr(err.msg, wrongaud.last) && !strstr(logbuf, wrongaud.last),
	   "the token is in neither the error nor the trace");
	{
		struct explain e;
		explain_text(err.msg, &e);
		is(e.topic, "smtp xoauth2 refused", "XOAUTH2 refusal explained: %s", e.cause);
	}

	/* the token service's refusals, explained from what it really sends */
	{
		struct tokctx bad = outlook;
		struct explain e;
		struct explain_ids ids;
		char body[4096];
		bad.secret = "not-the-secret";
		long st = token_body(&bad, body, sizeof(body));
		ok(st == 400 || st == 401, "wrong secret refused (%ld)", st);
		explain_token_response(body, strlen(body), &e, &ids);
		is(e.topic, "AADSTS7000215", "wrong secret explained: %s", e.cause);
		ok(ids.trace_id[0] && strstr(body, ids.trace_id), "trace id kept: %s", ids.trace_id);
		ok(ids.correlation_id[0] && strstr(body, ids.correlation_id),
		   "correlation id kept: %s", ids.correlation_id);
		ok(token_body(&noroles, body, sizeof(body)) == 400, "no consent: 400");
		explain_token_response(body, strlen(body), &e, &ids);
		is(e.topic, "AADSTS65001", "no consent explained: %s", e.cause);
		{
			struct tokctx expired = { world_str("WORLD_EXPIRED_APP_ID"), world_str("WORLD_EXPIRED_APP_SECRET"),
						  world_str("WORLD_OUTLOOK_SCOPE"), 0, 0, "" };
			struct tokctx disabled = { world_str("WORLD_DISABLED_APP_ID"),
						   world_str("WORLD_DISABLED_APP_SECRET"),
						   world_str("WORLD_OUTLOOK_SCOPE"), 0, 0, "" };
			struct tokctx scope = outlook, unknown = outlook;
			scope.scope = "https://outlook.office365.com/IMAP.AccessAsApp";
			unknown.client_id = "00000000-0000-0000-0000-000000000001";
			token_body(&expired, body, sizeof(body));
			explain_token_response(body, strlen(body), &e, &ids);
			is(e.topic, "AADSTS7000222", "expired secret explained");
			token_body(&disabled, body, sizeof(body));
			explain_token_response(body, strlen(body), &e, &ids);
			is(e.topic, "AADSTS7000112", "disabled app explained");
			token_body(&scope, body, sizeof(body));
			explain_token_response(body, strlen(body), &e, &ids);
			is(e.topic, "AADSTS70011", "wrong scope explained");
			token_body(&unknown, body, sizeof(body));
			explain_token_response(body, strlen(body), &e, &ids);
			is(e.topic, "AADSTS700016", "unknown app explained");
		}
	}
	ok(outlook.last[0] && !strstr(logbuf, outlook.last), "no earlier token in the trace");

	/* certificate verification is on by default */
	p.auth = SEND_AUTH_BASIC;
	p.password = world_str("WORLD_PASS_ALICE");
	p.port = world_port("WORLD_SUBMISSIONS_PORT");
	p.tls = SEND_TLS_IMPLICIT;
	p.ca_file = NULL;
	err_clear(&err);
	is_int(send_mail(&p, &m, &err), -1, "unknown CA refused (verification on by default)");
	is_int(err.code, MS_ERR_TLS, "unknown CA: TLS error (%s)", err.msg);
	p.insecure = 1;
	probe_roundtrip("explicitly insecure (verification off)", &p, "X-Mailshift-Probe");

	if (getenv("MS_DUMP_TRACE"))
		fputs(logbuf, stderr);
	log_set_sink(NULL, NULL, LOG_LVL_WARN);
	curl_global_cleanup();
	world_free();
	return done_testing();
}
