/*
 * oauth.c against the token service stand-in of the test mail world
 * (tests/peers).  Needs MS_WORLD_DIR pointing at a running world; skips
 * otherwise.  Covers the secret and certificate flows, Microsoft's
 * refusals, retries, device code sign-in, refresh rotation, the
 * 20-process stampede and a canary secret that must never leak.
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fsutil.h"
#include "transport/http.h"
#include "auth/jwt.h"
#include "base/log.h"
#include "auth/oauth.h"
#include "auth/seal.h"
#include "auth/tokencache.h"
#include "tap.h"
#include "world.h"

/* ---- the world's env file ---- */

static const char *W(const char *k)
{
	const char *v = world_get(k);

	if (v)
		return v;
	fprintf(stderr, "test_oauth_live: world env lacks %s\n", k);
	exit(1);
}

/* ---- log capture: everything the library says, at trace level ---- */

static struct buf logbuf;

static void capture(enum log_level level, const char *msg, void *ctx)
{
	(void)level; (void)ctx;
	buf_appendf(&logbuf, NULL, "%s\n", msg);
}

/* every error message we saw, for the canary check */
static struct buf errbuf;

static void note_err(const struct ms_err *err)
{
	buf_appendf(&errbuf, NULL, "%s\n", err->msg);
}

/* ---- the stand-in's control port ---- */

static int ctl(const char *method, const char *path, char **body)
{
	struct ms_err err = MS_ERR_INIT;
	struct http_client *hc;
	struct http_response r;
	struct http_request req = { .method = method };
	char url[512];
	int rc = -1;

	if (body)
		*body = NULL;
	snprintf(url, sizeof(url), "%s%s", W("WORLD_CTL_URL"), path);
	req.url = url;
	if (http_client_new(&hc, NULL, &err))
		return -1;
	if (http_do(hc, &req, &r, &err) == 0) {
		rc = r.status == 200 ? 0 : -1;
		if (body)
			*body = buf_detach(&r.body, NULL);
		http_response_release(&r);
	}
	http_client_free(hc);
	return rc;
}

static long token_requests(void)
{
	char *body;
	cJSON *j;
	long n = -1;

	if (ctl("GET", "/ctl/counters", &body))
		return -1;
	j = cJSON_Parse(body);
	if (j)
		n = (long)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "token_requests"));
	cJSON_Delete(j);
	free(body);
	return n;
}

static void set_mode(const char *mode)
{
	char path[128];
	snprintf(path, sizeof(path), "/ctl/mode?mode=%s", mode);
	ctl("POST", path, NULL);
}

/* ---- sleep hook: records waits, can drive the device approval ---- */

static unsigned waits[64];
static int n_waits;
static int really_sleep = 1;
static int sleep_from;          /* sleep for real from this wait on (1-based) */
static char user_code[64];
static const char *action;      /* "approve", "decline", "expire" */
static int action_at;           /* on this wait (1-based) */
static const char *approve_user;

static void hook(unsigned s)
{
	if (n_waits < 64)
		waits[n_waits] = s;
	n_waits++;
	if (action && n_waits == action_at) {
		char path[256];
		if (strcmp(action, "approve") == 0)
			snprintf(path, sizeof(path), "/ctl/device/approve?user_code=%s&user=%s",
				 user_code, approve_user);
		else
			snprintf(path, sizeof(path), "/ctl/device/%s?user_code=%s", action,
				 user_code);
		ctl("POST", path, NULL);
	}
	if (really_sleep || (sleep_from && n_waits >= sleep_from))
		sleep(s > 1 ? 1 : s);
}

static void reset_hook(int sleep_for_real)
{
	n_waits = 0;
	really_sleep = sleep_for_real;
	action = NULL;
	action_at = 0;
	sleep_from = 0;
	user_code[0] = '\0';
}

static int prompted;
static char prompt_uri[256], prompt_msg[512];

static int prompt(void *ctx, const char *code, const char *uri, const char *msg,
		  long expires_in)
{
	(void)ctx; (void)expires_in;
	prompted++;
	snprintf(user_code, sizeof(user_code), "%s", code);
	snprintf(prompt_uri, sizeof(prompt_uri), "%s", uri);
	snprintf(prompt_msg, sizeof(prompt_msg), "%s", msg ? msg : "");
	return 0;
}

/* ---- helpers ---- */

static char home[64] = "/tmp/test_oauth_live.XXXXXX";

static void fresh_home(const char *name)
{
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/%s", home, name);
	mkdir(dir, 0700);
	setenv("MAILSHIFT_HOME", dir, 1);
}

static int concat(const char *out, const char *a, const char *b)
{
	struct ms_err err = MS_ERR_INIT;
	char *da, *db;
	size_t la, lb;
	FILE *f;

	if (fs_read_file(a, 1 << 20, &da, &la, &err) || fs_read_file(b, 1 << 20, &db, &lb, &err))
		return -1;
	f = fopen(out, "w");
	fwrite(da, 1, la, f);
	fwrite(db, 1, lb, f);
	fclose(f);
	free(da);
	free(db);
	return 0;
}

static int file_has(const char *path, const char *needle)
{
	struct ms_err err = MS_ERR_INIT;
	char *d;
	size_t n, k = strlen(needle);
	int found = 0;

	if (fs_read_file(path, 64u << 20, &d, &n, &err))
		return 0;
	for (size_t i = 0; i + k <= n && !found; i++)
		found = memcmp(d + i, needle, k) == 0;
	free(d);
	return found;
}

/* A token in clear: prefix ("eyJ" for a JWT, "0.A" for a refresh token)
 * followed by at least 16 base64url characters.  The prefix alone turns
 * up by chance in a few kilobytes of ciphertext (about once in 16 MB). */
static int file_has_token(const char *path, const char *prefix)
{
	struct ms_err err = MS_ERR_INIT;
	char *d;
	size_t n, k = strlen(prefix);
	int found = 0;

	if (fs_read_file(path, 64u << 20, &d, &n, &err))
		return 0;
	for (size_t i = 0; i + k + 16 <= n && !found; i++) {
		size_t j = 0;

		if (memcmp(d + i, prefix, k) != 0)
			continue;
		while (i + k + j < n && (isalnum((unsigned char)d[i + k + j]) ||
					 d[i + k + j] == '-' || d[i + k + j] == '_' ||
					 d[i + k + j] == '.'))
			j++;
		found = j >= 16;
	}
	free(d);
	return found;
}

static void app_params(struct oauth_params *p)
{
	memset(p, 0, sizeof(*p));
	p->authority = W("WORLD_TOKEN_URL");
	p->tenant = W("WORLD_TENANT");
	p->client_id = W("WORLD_APP_ID");
	p->client_secret = W("WORLD_APP_SECRET");
	p->scope = oauth_scope_default(PROTO_IMAP, FLOW_CLIENT_CREDENTIALS);
	p->ca_file = W("WORLD_CA_FILE");
	p->verbose = 1;
}

/* A refusal: right code, AADSTS text, ids, no secret. */
static void refused(const struct oauth_params *p, long code, const char *text,
		    const char *what)
{
	struct ms_err err = MS_ERR_INIT;
	struct oauth_error oe;
	char *tok = NULL, want[128];

	ok(oauth_get_token_ex(p, 1, &tok, NULL, &oe, &err) < 0 && tok == NULL,
	   "%s: refused", what);
	note_err(&err);
	is_int(err.code, MS_ERR_AUTH, "%s: MS_ERR_AUTH", what);
	snprintf(want, sizeof(want), "token request refused: AADSTS%ld: %s", code, text);
	ok(strncmp(err.msg, want, strlen(want)) == 0 && strstr(err.msg, " (trace id "),
	   "%s: message '%s'", what, err.msg);
	ok(strstr(err.msg, "correlation id ") != NULL && oe.trace_id[0] &&
	   strstr(err.msg, oe.trace_id) && strstr(err.msg, oe.correlation_id),
	   "%s: trace and correlation ids kept", what);
	ok(oe.n_codes >= 1 && oe.codes[0] == code, "%s: error_codes[0] = %ld", what, code);
	ok(!strstr(err.msg, "Timestamp"), "%s: boilerplate dropped", what);
	oauth_token_free(tok);
}

/* POST a hand-made assertion; returns the first error code or 0. */
static long post_assertion(const char *jwt)
{
	struct ms_err err = MS_ERR_INIT;
	struct http_client *hc;
	struct http_client_params hp = { .ca_file = W("WORLD_CA_FILE") };
	struct http_response r;
	struct buf form;
	char url[512];
	long code = -1;

	snprintf(url, sizeof(url), "%s/%s/oauth2/v2.0/token", W("WORLD_TOKEN_URL"),
		 W("WORLD_TENANT"));
	buf_init(&form, 0);
	http_form_add(&form, "client_id", W("WORLD_CERT_APP_ID"), &err);
	http_form_add(&form, "scope", "https://outlook.office365.com/.default", &err);
	http_form_add(&form, "grant_type", "client_credentials", &err);
	http_form_add(&form, "client_assertion_type",
		      "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", &err);
	http_form_add(&form, "client_assertion", jwt, &err);
	if (http_client_new(&hc, &hp, &err) == 0) {
		struct http_request req = { .method = "POST", .url = url,
			.content_type = "application/x-www-form-urlencoded",
			.body = form.data, .body_len = form.len };
		if (http_do(hc, &req, &r, &err) == 0) {
			cJSON *j = cJSON_Parse(r.body.data ? r.body.data : "");
			cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "error_codes"), 0);
			code = r.status == 200 ? 0 : c ? (long)cJSON_GetNumberValue(c) : -2;
			cJSON_Delete(j);
			http_response_release(&r);
		}
		http_client_free(hc);
	}
	buf_release(&form);
	return code;
}

static void test_secret_flow(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct oauth_params p;
	char *t1 = NULL, *t2 = NULL, *t3 = NULL;
	time_t exp = 0, now = time(NULL);
	long n0;

	fresh_home("secret");
	app_params(&p);
	ctl("POST", "/ctl/reset", NULL);
	n0 = token_requests();
	ok(oauth_get_token(&p, 0, &t1, &exp, &err) == 0 && t1, "secret flow: token (%s)",
	   err.msg);
	note_err(&err);
	ok(t1 && strchr(t1, '.') && strlen(t1) > 100, "secret flow: looks like a JWT");
	ok(exp >= now + 3590 && exp <= now + 3610, "secret flow: expiry from expires_in");
	is_int(token_requests() - n0, 1, "secret flow: one request");
	ok(oauth_get_token(&p, 0, &t2, NULL, &err) == 0 && t2 && strcmp(t1, t2) == 0,
	   "second call served from the cache");
	is_int(token_requests() - n0, 1, "cache hit makes no request");
	ok(oauth_get_token(&p, 1, &t3, NULL, &err) == 0 && t3 && strcmp(t1, t3) != 0,
	   "force_refresh fetches a new token");
	is_int(token_requests() - n0, 2, "force_refresh made one request");
	oauth_token_free(t1);
	oauth_token_free(t2);
	oauth_token_free(t3);
	t1 = NULL;

	/* inside the 5-minute margin: refreshed */
	ctl("POST", "/ctl/token-lifetime?seconds=200", NULL);
	p.scope = "https://graph.microsoft.com/.default";
	ok(oauth_get_token(&p, 0, &t1, &exp, &err) == 0, "graph scope token (short life)");
	oauth_token_free(t1);
	n0 = token_requests();
	ok(oauth_get_token(&p, 0, &t1, NULL, &err) == 0, "token inside the margin");
	is_int(token_requests() - n0, 1, "a token inside the refresh margin is refreshed");
	oauth_token_free(t1);
	ctl("POST", "/ctl/token-lifetime?seconds=3599", NULL);

	/* the tenant's domain works as well as its id */
	p.tenant = W("WORLD_TENANT_DOMAIN");
	ok(oauth_get_token(&p, 1, &t1, NULL, &err) == 0, "tenant by domain name (%s)", err.msg);
	oauth_token_free(t1);
}

static void test_cert_flow(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct oauth_params p;
	char pem[256], rogue[256], *t = NULL, *jwt = NULL;
	long n0;

	fresh_home("cert");
	snprintf(pem, sizeof(pem), "%s/certapp.pem", home);
	snprintf(rogue, sizeof(rogue), "%s/rogue.pem", home);
	if (concat(pem, W("WORLD_CERT_APP_KEY"), W("WORLD_CERT_APP_CERT")) ||
	    concat(rogue, W("WORLD_ROGUE_KEY"), W("WORLD_ROGUE_CERT")))
	{
		ok(0, "cannot build the certificate files");
		return;
	}
	app_params(&p);
	p.client_id = W("WORLD_CERT_APP_ID");
	p.client_secret = NULL;
	p.cert_file = pem;
	p.assertion_alg = JWT_PS256;
	n0 = token_requests();
	ok(oauth_get_token(&p, 0, &t, NULL, &err) == 0 && t, "certificate flow PS256 (%s)",
	   err.msg);
	note_err(&err);
	oauth_token_free(t);
	t = NULL;
	p.assertion_alg = JWT_RS256;
	ok(oauth_get_token(&p, 1, &t, NULL, &err) == 0 && t, "certificate flow RS256 (%s)",
	   err.msg);
	oauth_token_free(t);
	t = NULL;
	is_int(token_requests() - n0, 2, "two certificate requests");
	ok(logbuf.data && strstr(logbuf.data, "certificate '") &&
	   strstr(logbuf.data, "certapp.pem' expires on ") &&
	   strstr(logbuf.data, "upload it to the app registration"),
	   "warns that the certificate expires within 30 days");
	/* several forced refreshes: fresh jti each time */
	for (int i = 0; i < 3; i++) {
		ok(oauth_get_token(&p, 1, &t, NULL, &err) == 0, "repeat assertion %d accepted "
		   "(unique jti)", i);
		oauth_token_free(t);
		t = NULL;
	}

	/* an unregistered certificate */
	p.cert_file = rogue;
	p.assertion_alg = JWT_PS256;
	{
		struct oauth_error oe;
		err_clear(&err);
		ok(oauth_get_token_ex(&p, 1, &t, NULL, &oe, &err) < 0 &&
		   err.code == MS_ERR_AUTH && oe.codes[0] == 700027 &&
		   strstr(err.msg, "AADSTS700027"), "unregistered certificate refused: %s",
		   err.msg);
		note_err(&err);
	}

	/* expired and replayed assertions */
	ok(jwt_client_assertion_at(pem, W("WORLD_CERT_APP_ID"), "", JWT_PS256, 0, 0, &jwt,
				   &err) < 0, "assertion needs a token URL");
	{
		char url[512];
		snprintf(url, sizeof(url), "%s/%s/oauth2/v2.0/token", W("WORLD_TOKEN_URL"),
			 W("WORLD_TENANT"));
		err_clear(&err);
		jwt_client_assertion_at(pem, W("WORLD_CERT_APP_ID"), url, JWT_PS256,
					time(NULL) - 1000, 300, &jwt, &err);
		is_int(post_assertion(jwt), 700024, "expired assertion refused (700024)");
		seal_wipe_free(jwt);
		jwt_client_assertion(pem, W("WORLD_CERT_APP_ID"), url, JWT_PS256, &jwt, &err);
		is_int(post_assertion(jwt), 0, "fresh assertion accepted");
		is_int(post_assertion(jwt), 700025, "replayed assertion refused (700025)");
		seal_wipe_free(jwt);
	}
}

static void test_refusals(void)
{
	struct oauth_params p;

	fresh_home("refusals");
	app_params(&p);
	p.client_secret = "wrong-CANARY-secret-0000";
	refused(&p, 7000215, "Invalid client secret provided", "wrong secret");
	ok(!strstr(errbuf.data ? errbuf.data : "", "wrong-CANARY"),
	   "the wrong secret is not in the message");

	app_params(&p);
	p.tenant = "nonexistent.test";
	refused(&p, 90002, "Tenant 'nonexistent.test' not found", "unknown tenant");

	app_params(&p);
	p.scope = "https://outlook.office365.com/IMAP.AccessAsApp";
	refused(&p, 70011, "The provided request must include a 'scope' input parameter",
		"wrong scope");

	app_params(&p);
	p.client_id = W("WORLD_EXPIRED_APP_ID");
	p.client_secret = W("WORLD_EXPIRED_APP_SECRET");
	refused(&p, 7000222, "The provided client secret keys for app '", "expired secret");

	app_params(&p);
	p.client_id = W("WORLD_DISABLED_APP_ID");
	p.client_secret = W("WORLD_DISABLED_APP_SECRET");
	refused(&p, 7000112, "Application '", "disabled application");

	app_params(&p);
	p.client_id = W("WORLD_NOROLES_APP_ID");
	p.client_secret = W("WORLD_NOROLES_APP_SECRET");
	refused(&p, 65001, "The user or administrator has not consented to use the "
		"application with ID '", "no consent");

	app_params(&p);
	p.client_id = "00000000-0000-0000-0000-000000000000";
	refused(&p, 700016, "Application with identifier '", "unknown application");
}

static void test_retries(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct oauth_params p;
	char *t = NULL;
	long n0;
	static const char *modes[] = { "error5xx", "garbage", "close" };

	fresh_home("retries");
	app_params(&p);
	for (size_t i = 0; i < 3; i++) {
		reset_hook(0);
		set_mode(modes[i]);
		n0 = token_requests();
		err_clear(&err);
		ok(oauth_get_token(&p, 1, &t, NULL, &err) < 0 && err.code == MS_ERR_NET &&
		   err_is_temporary(&err), "%s: temporary failure (%s)", modes[i], err.msg);
		note_err(&err);
		ok(strstr(err.msg, "gave up after 3 attempts") != NULL, "%s: says it retried",
		   modes[i]);
		is_int(token_requests() - n0, 3, "%s: exactly 3 attempts", modes[i]);
		ok(n_waits == 2 && waits[0] == 1 && waits[1] == 2, "%s: backoff 1 s, 2 s",
		   modes[i]);
	}
	set_mode("normal");
	reset_hook(1);
	err_clear(&err);
	ok(oauth_get_token(&p, 0, &t, NULL, &err) == 0, "normal again (%s)", err.msg);
	oauth_token_free(t);
	t = NULL;

	/* a temporary failure inside the margin hands out the still valid token */
	ctl("POST", "/ctl/token-lifetime?seconds=200", NULL);
	err_clear(&err);
	ok(oauth_get_token(&p, 1, &t, NULL, &err) == 0, "short-lived token");
	oauth_token_free(t);
	t = NULL;
	set_mode("error5xx");
	reset_hook(0);
	ok(oauth_get_token(&p, 0, &t, NULL, &err) == 0 && t,
	   "token service down, cached token still valid: used");
	oauth_token_free(t);
	t = NULL;
	set_mode("normal");
	reset_hook(1);
	ctl("POST", "/ctl/token-lifetime?seconds=3599", NULL);
}

static void device_params(struct oauth_params *p)
{
	app_params(p);
	p->client_id = W("WORLD_PUBLIC_APP_ID");
	p->client_secret = NULL;
	p->flow = FLOW_DEVICE_CODE;
	p->user = W("WORLD_USER_ALICE");
	p->scope = oauth_scope_default(PROTO_IMAP, FLOW_DEVICE_CODE);
}

static void test_device_code(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct oauth_params p;
	struct tokencache *tc;
	struct token_entry e1 = { 0 }, e2 = { 0 };
	struct token_key key;
	char *t = NULL, *t2 = NULL;
	long n0;

	fresh_home("device");
	device_params(&p);
	approve_user = W("WORLD_USER_ALICE");

	/* before sign-in: a clear error */
	ok(oauth_get_token(&p, 0, &t, NULL, &err) < 0 && err.code == MS_ERR_AUTH &&
	   strstr(err.msg, "--oauth-login"), "no sign-in yet: %s", err.msg);
	note_err(&err);

	/* approved after two pending polls */
	reset_hook(1);
	action = "approve";
	action_at = 3;
	prompted = 0;
	err_clear(&err);
	ok(oauth_device_login(&p, prompt, NULL, &err) == 0, "device code sign-in (%s)", err.msg);
	note_err(&err);
	ok(prompted == 1 && strlen(user_code) >= 6 && strstr(prompt_uri, "/devicelogin") &&
	   strstr(prompt_msg, user_code), "prompt got code, URL and message");
	is_int(n_waits, 3, "polled until approved (pending, pending, approved)");
	ok(waits[0] == 1, "honours the server's interval");

	/* the token is served from the cache */
	n0 = token_requests();
	err_clear(&err);
	ok(oauth_get_token(&p, 0, &t, NULL, &err) == 0 && t, "delegated token from cache");
	is_int(token_requests() - n0, 0, "no request after sign-in");
	oauth_token_free(t);
	t = NULL;

	/* refresh rotation */
	key = (struct token_key){ p.authority, p.tenant, p.client_id, p.scope,
				  "device_code", p.user };
	ok(tokencache_open(&tc, NULL, &err) == 0 && tokencache_get(tc, &key, &e1, &err) == 0 &&
	   e1.refresh_token, "refresh token stored");
	ok(oauth_renew_silent(&p, &err) == 0, "renew silently (%s)", err.msg);
	note_err(&err);
	ok(tokencache_get(tc, &key, &e2, &err) == 0 && e2.refresh_token &&
	   strcmp(e1.refresh_token, e2.refresh_token) != 0 &&
	   strcmp(e1.access_token, e2.access_token) != 0,
	   "renewal stored a rotated refresh token and a new access token");
	{
		/* the spent refresh token is refused by the service */
		struct oauth_params q = p;
		struct tokencache *tc2;
		struct oauth_error oe;
		char dir[256];
		snprintf(dir, sizeof(dir), "%s/device-old", home);
		mkdir(dir, 0700);
		setenv("MAILSHIFT_HOME", dir, 1);
		tokencache_open(&tc2, NULL, &err);
		tokencache_put(tc2, &key, NULL, 0, e1.refresh_token, &err);
		tokencache_close(tc2);
		err_clear(&err);
		ok(oauth_get_token_ex(&q, 0, &t, NULL, &oe, &err) < 0 &&
		   err.code == MS_ERR_AUTH && oe.codes[0] == 70008,
		   "the old refresh token is refused: %s", err.msg);
		note_err(&err);
		fresh_home("device");
	}
	ok(oauth_renew_silent(&p, &err) == 0, "the rotated one keeps working (%s)", err.msg);
	ok(oauth_get_token(&p, 1, &t2, NULL, &err) == 0 && t2, "forced refresh via refresh token");
	oauth_token_free(t2);
	t2 = NULL;
	token_entry_release(&e1);
	token_entry_release(&e2);
	tokencache_close(tc);

	/* sign out on this machine */
	{
		struct oauth_params q = p;
		char dir[256];
		snprintf(dir, sizeof(dir), "%s/device", home);
		setenv("MAILSHIFT_HOME", dir, 1);
		err_clear(&err);
		ok(oauth_forget(&q, &err) == 0, "forget the sign-in (%s)", err.msg);
		ok(oauth_get_token(&q, 0, &t, NULL, &err) < 0 && err.code == MS_ERR_AUTH &&
		   strstr(err.msg, "no sign-in stored for 'alice@contoso.test'"),
		   "after forgetting: %s", err.msg);
		/* sign in again for the revocation test below */
		reset_hook(1);
		action = "approve";
		action_at = 1;
		err_clear(&err);
		ok(oauth_device_login(&q, prompt, NULL, &err) == 0, "sign in again (%s)", err.msg);
	}

	/* revoked refresh token */
	ctl("POST", "/ctl/refresh/revoke", NULL);
	err_clear(&err);
	ok(oauth_get_token(&p, 1, &t, NULL, &err) < 0 && err.code == MS_ERR_AUTH &&
	   strstr(err.msg, "AADSTS70008") && strstr(err.msg, "alice@contoso.test"),
	   "revoked refresh token: %s", err.msg);
	note_err(&err);

	/* declined */
	reset_hook(1);
	action = "decline";
	action_at = 1;
	err_clear(&err);
	ok(oauth_device_login(&p, prompt, NULL, &err) < 0 && err.code == MS_ERR_AUTH,
	   "declined sign-in fails");
	is(err.msg, "sign-in was declined", "declined message");

	/* expired */
	reset_hook(1);
	action = "expire";
	action_at = 2;
	err_clear(&err);
	ok(oauth_device_login(&p, prompt, NULL, &err) < 0 && err.code == MS_ERR_AUTH,
	   "expired code fails");
	is(err.msg, "the code expired before sign-in", "expired message");

	/* slow_down: polling too fast adds 5 s to the interval */
	reset_hook(0);
	sleep_from = 3;   /* the first two polls come too fast */
	action = "approve";
	action_at = 3;
	err_clear(&err);
	ok(oauth_device_login(&p, prompt, NULL, &err) == 0,
	   "sign-in after slow_down (%s)", err.msg);
	ok(n_waits >= 3 && waits[0] == 1 && waits[1] == 1 && waits[2] == 6,
	   "slow_down raised the interval to 6 s (waits %u %u %u)", waits[0], waits[1],
	   waits[2]);
	reset_hook(1);

	/* the wrong person signs in */
	fresh_home("device-bob");
	reset_hook(1);
	action = "approve";
	action_at = 1;
	approve_user = W("WORLD_USER_BOB");
	err_clear(&err);
	ok(oauth_device_login(&p, prompt, NULL, &err) < 0 && err.code == MS_ERR_AUTH &&
	   strstr(err.msg, "signed in as 'bob@contoso.test', but the mailbox is "
		  "'alice@contoso.test'"), "sign-in by another user refused: %s", err.msg);
	err_clear(&err);
	ok(oauth_get_token(&p, 0, &t, NULL, &err) < 0 && strstr(err.msg, "--oauth-login"),
	   "and nothing was stored");
	approve_user = W("WORLD_USER_ALICE");
	fresh_home("device");

	/* a confidential app cannot use the device flow */
	p.client_id = W("WORLD_APP_ID");
	err_clear(&err);
	ok(oauth_device_login(&p, prompt, NULL, &err) < 0 && err.code == MS_ERR_AUTH &&
	   strstr(err.msg, "device code request refused: AADSTS7000218"),
	   "confidential client refused for device code: %s", err.msg);
}

static void test_stampede(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct oauth_params p;
	int gate[2], out[2], good = 0, same = 1;
	char first[64] = "";
	long n0;

	fresh_home("stampede");
	app_params(&p);
	p.verbose = 0;
	ctl("POST", "/ctl/reset", NULL);
	set_mode("slow:1");
	n0 = token_requests();
	if (pipe(gate) < 0 || pipe(out) < 0)
		return;
	for (int i = 0; i < 20; i++) {
		if (fork() == 0) {
			char c, *t = NULL;
			struct ms_err e = MS_ERR_INIT;
			close(gate[1]);
			close(out[0]);
			if (read(gate[0], &c, 1) != 0)
				_exit(2);
			if (oauth_get_token(&p, 0, &t, NULL, &e))
				_exit(1);
			/* report a digest-ish prefix, not the token */
			dprintf(out[1], "%.32s\n", t + strlen(t) - 32);
			oauth_token_free(t);
			_exit(0);
		}
	}
	close(gate[0]);
	close(out[1]);
	close(gate[1]);   /* all children start now */
	{
		FILE *f = fdopen(out[0], "r");
		char line[64];
		while (fgets(line, sizeof(line), f)) {
			good++;
			if (!first[0])
				snprintf(first, sizeof(first), "%s", line);
			else if (strcmp(first, line) != 0)
				same = 0;
		}
		fclose(f);
	}
	while (wait(NULL) > 0)
		;
	set_mode("normal");
	is_int(good, 20, "20 processes got a token");
	ok(same, "all 20 got the same token");
	is_int(token_requests() - n0, 1, "20 concurrent processes made ONE token request");
	(void)err;
}

static void test_canary(void)
{
	const char *secret = W("WORLD_APP_SECRET");
	char db[256];

	snprintf(db, sizeof(db), "%s/secret/tokens.db", home);
	ok(logbuf.len > 0, "the library logged something at trace level (%zu bytes)",
	   logbuf.len);
	ok(!strstr(logbuf.data ? logbuf.data : "", secret), "canary secret not in any log line");
	ok(!strstr(errbuf.data ? errbuf.data : "", secret),
	   "canary secret not in any error message");
	ok(!strstr(logbuf.data ? logbuf.data : "", "eyJ"), "no JWT (token) in any log line");
	ok(!strstr(errbuf.data ? errbuf.data : "", "eyJ"), "no JWT in any error message");
	ok(fs_exists(db) && !file_has(db, secret) && !file_has_token(db, "eyJ"),
	   "token cache holds neither the secret nor a token in clear");
	snprintf(db, sizeof(db), "%s/device/tokens.db", home);
	ok(fs_exists(db) && !file_has_token(db, "0.A") && !file_has_token(db, "eyJ"),
	   "delegated cache holds no refresh or access token in clear");
}

int main(void)
{
	const char *dir = getenv("MS_WORLD_DIR");

	if (!dir || !*dir) {
		printf("1..0 # SKIP no mail world\n");
		return 0;
	}
	if (world_load(dir)) {
		printf("Bail out! cannot read %s/env\n", dir);
		return 1;
	}
	if (!mkdtemp(home))
		return 1;
	unsetenv("MAILSHIFT_KEY_FILE");
	unsetenv("MAILSHIFT_TOKEN_CACHE");
	buf_init(&logbuf, 0);
	buf_init(&errbuf, 0);
	log_set_sink(capture, NULL, LOG_LVL_TRACE);
	oauth_set_sleep_hook(hook);

	test_secret_flow();
	test_cert_flow();
	test_refusals();
	test_retries();
	test_device_code();
	test_stampede();
	test_canary();

	/* leave the shared world as we found it */
	set_mode("normal");
	ctl("POST", "/ctl/token-lifetime?seconds=3599", NULL);

	{
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", home);
		if (system(cmd) != 0)
			return 1;
	}
	buf_release(&logbuf);
	buf_release(&errbuf);
	world_free();
	return done_testing();
}
