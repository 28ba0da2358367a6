#include "auth/oauth.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/mem.h"
#include "transport/http.h"
#include "base/log.h"
#include "auth/seal.h"
#include "auth/secret.h"
#include "auth/tokencache.h"

#define TOKEN_REPLY_MAX ((size_t)1024 * 1024)
#define FORM_MAX ((size_t)256 * 1024)
#define DEVICE_MAX_WAIT 3600
#define DEVICE_MAX_POLLS 2000
#define GRANT_DEVICE "urn:ietf:params:oauth:grant-type:device_code"
#define ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

static void default_sleep(unsigned s)
{
	while (s)
		s = sleep(s);
}

static void (*sleep_fn)(unsigned) = default_sleep;

void oauth_set_sleep_hook(void (*fn)(unsigned seconds))
{
	sleep_fn = fn ? fn : default_sleep;
}

void oauth_token_free(char *access_token)
{
	mem_wipe_free(access_token);
}

/* ---- scopes and parameters ---- */

const char *oauth_scope_default(enum mail_protocol proto, enum oauth_flow flow)
{
	int delegated = flow == FLOW_DEVICE_CODE;

	switch (proto) {
	case PROTO_IMAP:
		return delegated ? "https://outlook.office.com/IMAP.AccessAsUser.All offline_access"
				 : "https://outlook.office365.com/.default";
	case PROTO_POP:
		return delegated ? "https://outlook.office.com/POP.AccessAsUser.All offline_access"
				 : "https://outlook.office365.com/.default";
	default:
		return delegated ? "https://graph.microsoft.com/Mail.ReadWrite "
				   "https://graph.microsoft.com/Mail.Send offline_access"
				 : "https://graph.microsoft.com/.default";
	}
}

const char *oauth_scope_smtp(enum oauth_flow flow)
{
	return flow == FLOW_DEVICE_CODE
		? "https://outlook.office.com/SMTP.Send offline_access"
		: "https://outlook.office365.com/.default";
}

const char *oauth_flow_name(enum oauth_flow flow)
{
	return flow == FLOW_DEVICE_CODE ? "device_code" : "client_credentials";
}

static int unset(const char *s)
{
	return !s || !*s;
}

void oauth_params_release(struct oauth_params *p)
{
	if (!p)
		return;
	mem_wipe_free(p->owned_secret);
	free(p->owned_scope);
	p->owned_secret = p->owned_scope = NULL;
	p->client_secret = NULL;
	p->scope = NULL;
}

static int endpoint_url(const struct oauth_params *p, const char *leaf, char **url,
			struct ms_err *err)
{
	const char *auth = unset(p->authority) ? OAUTH_DEFAULT_AUTHORITY : p->authority;
	size_t alen = strlen(auth), n;
	char *tenant;

	*url = NULL;
	if (unset(p->tenant))
		return err_set(err, MS_ERR_CONFIG, "no tenant id given");
	while (alen && auth[alen - 1] == '/')
		alen--;
	if (!(tenant = http_escape(p->tenant)))
		return err_nomem(err);
	n = alen + strlen(tenant) + strlen(leaf) + 32;
	if (!(*url = malloc(n))) {
		free(tenant);
		return err_nomem(err);
	}
	snprintf(*url, n, "%.*s/%s/oauth2/v2.0/%s", (int)alen, auth, tenant, leaf);
	free(tenant);
	return 0;
}

int oauth_token_url(const struct oauth_params *p, char **url, struct ms_err *err)
{
	return endpoint_url(p, "token", url, err);
}

/* ---- replies ---- */

struct token_reply {
	char *access_token;
	char *refresh_token;
	long expires_in;
};

static void token_reply_release(struct token_reply *r)
{
	mem_wipe_free(r->access_token);
	mem_wipe_free(r->refresh_token);
	memset(r, 0, sizeof(*r));
}

/* Copy a server string for display: control characters become spaces,
 * stop at the first line end. */
static void copy_clean(char *dst, size_t dstsz, const char *src)
{
	size_t i = 0;

	for (; src && *src && i + 1 < dstsz; src++) {
		unsigned char c = (unsigned char)*src;
		if (c == '\r' || c == '\n')
			break;
		dst[i++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	dst[i] = '\0';
	while (i && dst[i - 1] == ' ')
		dst[--i] = '\0';
}

static const char *jstr(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A whole number a token service may send (lifetimes, intervals, AADSTS
 * codes): anything outside 0..10^9 is not one, and casting it to long
 * would be undefined behaviour. */
static int sane_number(double d)
{
	return d >= 0 && d <= 1e9;
}

static long jlong(const cJSON *o, const char *name, long dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	if (cJSON_IsNumber(v))
		return sane_number(v->valuedouble) ? (long)v->valuedouble : dflt;
	if (cJSON_IsString(v) && v->valuestring[0]) {
		char *end;
		long n = strtol(v->valuestring, &end, 10);
		if (*end == '\0' && n >= 0 && n <= 1000000000L)
			return n;
	}
	return dflt;
}

/* Parse Microsoft's error JSON; 0 if it is one. */
static int parse_error(const struct http_response *r, struct oauth_error *oe)
{
	cJSON *j = r->body.data ? cJSON_ParseWithLength(r->body.data, r->body.len) : NULL;
	const cJSON *codes, *c;
	const char *e;

	memset(oe, 0, sizeof(*oe));
	oe->http_status = (int)r->status;
	if (!cJSON_IsObject(j) || !(e = jstr(j, "error"))) {
		cJSON_Delete(j);
		return -1;
	}
	copy_clean(oe->error, sizeof(oe->error), e);
	copy_clean(oe->description, sizeof(oe->description), jstr(j, "error_description"));
	copy_clean(oe->trace_id, sizeof(oe->trace_id), jstr(j, "trace_id"));
	copy_clean(oe->correlation_id, sizeof(oe->correlation_id), jstr(j, "correlation_id"));
	codes = cJSON_GetObjectItemCaseSensitive(j, "error_codes");
	cJSON_ArrayForEach(c, codes) {
		if (oe->n_codes >= sizeof(oe->codes) / sizeof(oe->codes[0]))
			break;
		if (cJSON_IsNumber(c) && sane_number(c->valuedouble))
			oe->codes[oe->n_codes++] = (long)c->valuedouble;
	}
	cJSON_Delete(j);
	return 0;
}

/* "AADSTS7000215: Invalid client secret provided (trace id T, correlation id C)" */
static void refusal_message(const struct oauth_error *oe, const char *what,
			    struct ms_err *err)
{
	char desc[320], ids[200] = "";
	char *dot;

	copy_clean(desc, sizeof(desc), oe->description);
	/* Microsoft's first sentence says it; the rest is boilerplate */
	if ((dot = strstr(desc, ". ")) != NULL)
		*dot = '\0';
	if ((dot = strstr(desc, " Trace ID")) != NULL)
		*dot = '\0';
	while (*desc && desc[strlen(desc) - 1] == '.')
		desc[strlen(desc) - 1] = '\0';
	if (oe->trace_id[0] && oe->correlation_id[0])
		snprintf(ids, sizeof(ids), " (trace id %s, correlation id %s)",
			 oe->trace_id, oe->correlation_id);
	else if (oe->trace_id[0])
		snprintf(ids, sizeof(ids), " (trace id %s)", oe->trace_id);
	else if (oe->correlation_id[0])
		snprintf(ids, sizeof(ids), " (correlation id %s)", oe->correlation_id);
	if (strncmp(desc, "AADSTS", 6) == 0)
		err_set(err, MS_ERR_AUTH, "%s refused: %s%s", what, desc, ids);
	else if (oe->n_codes && desc[0])
		err_set(err, MS_ERR_AUTH, "%s refused: AADSTS%ld: %s%s", what,
			oe->codes[0], desc, ids);
	else if (desc[0])
		err_set(err, MS_ERR_AUTH, "%s refused: %s: %s%s", what, oe->error, desc, ids);
	else
		err_set(err, MS_ERR_AUTH, "%s refused: %s%s", what, oe->error, ids);
}

static int parse_token(const struct http_response *r, struct token_reply *tr)
{
	cJSON *j = r->body.data ? cJSON_ParseWithLength(r->body.data, r->body.len) : NULL;
	const char *at, *rt, *tt;
	int ret = -1;

	memset(tr, 0, sizeof(*tr));
	if (!cJSON_IsObject(j) || !(at = jstr(j, "access_token")) || !*at)
		goto out;
	tt = jstr(j, "token_type");
	if (tt && strcasecmp(tt, "Bearer") != 0)
		goto out;
	if (!(tr->access_token = strdup(at)))
		goto out;
	rt = jstr(j, "refresh_token");
	if (rt && *rt && !(tr->refresh_token = strdup(rt)))
		goto out;
	tr->expires_in = jlong(j, "expires_in", 300);
	if (tr->expires_in <= 0 || tr->expires_in > 7 * 24 * 3600)
		tr->expires_in = 300;
	ret = 0;
out:
	if (ret)
		token_reply_release(tr);
	if (j) {
		/* the parse tree holds tokens: wipe them */
		const cJSON *v;
		cJSON_ArrayForEach(v, j)
			if (cJSON_IsString(v))
				mem_wipe(v->valuestring, strlen(v->valuestring));
		cJSON_Delete(j);
	}
	return ret;
}

/*
 * POST a form to an endpoint with bounded retries.  Returns 0 with *r
 * filled for a 2xx reply (the caller parses it), 1 for a refusal (4xx
 * with an OAuth error; *oe filled, err untouched), -1 with err otherwise.
 * kind: 0 = token reply expected, 1 = device code reply expected.
 */
static int post_form(struct http_client *hc, const char *url, const struct buf *form,
		     struct http_response *r, struct oauth_error *oe,
		     struct ms_err *err)
{
	struct http_request req = {
		.method = "POST", .url = url,
		.content_type = "application/x-www-form-urlencoded",
		.body = form->data, .body_len = form->len,
		.headers = (const char *const[]){ "Accept: application/json", NULL },
	};
	char last[256] = "";
	enum ms_errcode last_code = MS_ERR_NET;

	for (int attempt = 1; attempt <= OAUTH_ATTEMPTS; attempt++) {
		struct ms_err e = MS_ERR_INIT;
		long wait = attempt;   /* 1 s, 2 s */
		cJSON *j;

		if (http_do(hc, &req, r, &e) < 0) {
			if (e.code != MS_ERR_NET)
				return err_set(err, e.code, "%s", e.msg);
			snprintf(last, sizeof(last), "%s", e.msg);
			last_code = MS_ERR_NET;
			goto retry;
		}
		if (r->status >= 200 && r->status < 300) {
			j = cJSON_ParseWithLength(r->body.data ? r->body.data : "", r->body.len);
			if (cJSON_IsObject(j)) {
				cJSON_Delete(j);
				return 0;
			}
			cJSON_Delete(j);
			snprintf(last, sizeof(last), "'%s' answered HTTP %ld with a body that "
				 "is not JSON", url, r->status);
			last_code = MS_ERR_NET;
		} else if (r->status == 429 || r->status >= 500) {
			if (r->retry_after_s >= 0)
				wait = r->retry_after_s;
			snprintf(last, sizeof(last), "'%s' answered HTTP %ld", url, r->status);
			last_code = r->status == 429 ? MS_ERR_THROTTLED : MS_ERR_NET;
		} else if (parse_error(r, oe) == 0) {
			if (strcmp(oe->error, "temporarily_unavailable") != 0) {
				http_response_release(r);
				return 1;
			}
			snprintf(last, sizeof(last), "'%s' is temporarily unavailable", url);
			last_code = MS_ERR_NET;
			if (r->retry_after_s >= 0)
				wait = r->retry_after_s;
		} else {
			long st = r->status;
			http_response_release(r);
			return err_set(err, MS_ERR_PROTO,
				       "'%s' answered HTTP %ld without an OAuth error", url, st);
		}
		http_response_release(r);
retry:
		if (attempt == OAUTH_ATTEMPTS)
			break;
		if (wait > OAUTH_RETRY_CAP)
			wait = OAUTH_RETRY_CAP;
		log_info("%s; retrying in %ld s", last, wait);
		if (wait > 0)
			sleep_fn((unsigned)wait);
	}
	return err_set(err, last_code, "%s (gave up after %d attempts)", last,
		       OAUTH_ATTEMPTS);
}

static int new_client(const struct oauth_params *p, struct http_client **hc,
		      struct ms_err *err)
{
	struct http_client_params hp = {
		.ca_file = p->ca_file, .timeout_s = 30, .connect_timeout_s = 10,
		.max_body = TOKEN_REPLY_MAX, .verbose = p->verbose,
	};
	return http_client_new(hc, &hp, err);
}

int oauth_cert_days_left(const char *cert_file, time_t now, long *days,
			 time_t *not_after, struct ms_err *err)
{
	time_t na;

	if (cert_expiry(cert_file, &na, err))
		return -1;
	/* whole days, rounded down: an expiry earlier today is -1 */
	*days = na >= now ? (long)((na - now) / 86400)
			  : -(long)((now - na + 86399) / 86400);
	if (not_after)
		*not_after = na;
	return 0;
}

/* Certificates expire quietly; say so a month ahead. */
static void warn_cert_expiry(const char *cert_file)
{
	struct ms_err e = MS_ERR_INIT;
	time_t na, now = time(NULL);
	char day[32];
	struct tm tm;
	long days;

	if (oauth_cert_days_left(cert_file, now, &days, &na, &e))
		return;
	gmtime_r(&na, &tm);
	strftime(day, sizeof(day), "%Y-%m-%d %H:%M UTC", &tm);
	if (na <= now)
		log_warnx("certificate '%s' expired on %s; create a new one and upload it "
			  "to the app registration", cert_file, day);
	else if (days < OAUTH_CERT_WARN_DAYS)
		log_warnx("certificate '%s' expires on %s (in %ld days); create a new one "
			  "and upload it to the app registration", cert_file, day, days);
}

static int add_client_auth(const struct oauth_params *p, const char *token_url,
			   struct buf *form, struct ms_err *err)
{
	char *jwt = NULL;
	int rc;

	if (p->cert_file) {
		warn_cert_expiry(p->cert_file);
		if (jwt_client_assertion(p->cert_file, p->client_id, token_url,
					 p->assertion_alg, &jwt, err))
			return -1;
		rc = http_form_add(form, "client_assertion_type", ASSERTION_TYPE, err) ||
		     http_form_add(form, "client_assertion", jwt, err);
		mem_wipe_free(jwt);
		return rc ? -1 : 0;
	}
	if (p->client_secret)
		return http_form_add(form, "client_secret", p->client_secret, err);
	return 0;
}

/*
 * One token request: grant is "client_credentials" or "refresh_token".
 * Returns 0 with *tr, 1 on refusal (err set), -1 on other errors.
 */
static int request_token(const struct oauth_params *p, struct http_client *hc,
			 const char *refresh_token, struct token_reply *tr,
			 struct oauth_error *oe, struct ms_err *err)
{
	struct http_response r;
	struct buf form;
	char *url = NULL;
	int rc, ret = -1;

	memset(tr, 0, sizeof(*tr));
	buf_init(&form, FORM_MAX);
	if (oauth_token_url(p, &url, err))
		return -1;
	if (http_form_add(&form, "client_id", p->client_id, err) ||
	    http_form_add(&form, "scope", p->scope, err) ||
	    http_form_add(&form, "grant_type",
			  refresh_token ? "refresh_token" : "client_credentials", err) ||
	    (refresh_token && http_form_add(&form, "refresh_token", refresh_token, err)) ||
	    add_client_auth(p, url, &form, err))
		goto out;
	log_debug("requesting a token from '%s' (%s, client %s)", url,
		  refresh_token ? "refresh token" : p->cert_file ? "certificate"
		  : "client secret", p->client_id);
	rc = post_form(hc, url, &form, &r, oe, err);
	if (rc < 0)
		goto out;
	if (rc == 1) {
		refusal_message(oe, "token request", err);
		ret = 1;
		goto out;
	}
	if (parse_token(&r, tr)) {
		http_response_release(&r);
		err_set(err, MS_ERR_PROTO, "'%s' answered without a usable access token", url);
		goto out;
	}
	http_response_release(&r);
	ret = 0;
out:
	buf_wipe(&form);
	free(url);
	return ret;
}

/* ---- the cache-backed entry point ---- */

/* The cache key names the credential too (a salted, truncated SHA-256 of
 * the secret, or of the certificate file's path), so a token cached for a
 * good secret is never handed to a configuration with a wrong one: that
 * configuration must fail now, not when the cached token expires.
 * flowbuf must hold 96 bytes. */
static void make_key(const struct oauth_params *p, struct token_key *k,
		     char *flowbuf)
{
	int delegated = p->flow == FLOW_DEVICE_CODE;
	const char *cred = !unset(p->client_secret) ? p->client_secret
			 : !unset(p->cert_file) ? p->cert_file : NULL;

	k->authority = unset(p->authority) ? OAUTH_DEFAULT_AUTHORITY : p->authority;
	k->tenant = p->tenant;
	k->client_id = p->client_id;
	k->scope = p->scope;
	k->user = delegated && p->user ? p->user : "";
	if (delegated || !cred) {
		k->flow = oauth_flow_name(p->flow);
		return;
	}
	{
		static const char salt[] = "mailshift token cache credential v1";
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int mdlen = 0;
		EVP_MD_CTX *c = EVP_MD_CTX_new();
		int n;

		if (!c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL) ||
		    !EVP_DigestUpdate(c, salt, sizeof(salt)) ||
		    !EVP_DigestUpdate(c, cred, strlen(cred)) ||
		    !EVP_DigestFinal_ex(c, md, &mdlen) || mdlen < 8) {
			EVP_MD_CTX_free(c);
			k->flow = oauth_flow_name(p->flow);
			return;
		}
		EVP_MD_CTX_free(c);
		n = snprintf(flowbuf, 96, "%s#", oauth_flow_name(p->flow));
		for (int i = 0; i < 8 && n > 0 && n < 90; i++)
			n += snprintf(flowbuf + n, 96 - (size_t)n, "%02x", md[i]);
		mem_wipe(md, sizeof(md));
		k->flow = flowbuf;
	}
}

static int check_params(const struct oauth_params *p, struct ms_err *err)
{
	if (unset(p->tenant))
		return err_set(err, MS_ERR_CONFIG, "no tenant id given");
	if (unset(p->client_id))
		return err_set(err, MS_ERR_CONFIG, "no client id given");
	if (unset(p->scope))
		return err_set(err, MS_ERR_CONFIG, "no scope given");
	if (p->flow != FLOW_DEVICE_CODE && !p->client_secret && !p->cert_file)
		return err_set(err, MS_ERR_CONFIG,
			       "client credentials need a client secret or a certificate");
	if (p->flow == FLOW_DEVICE_CODE && unset(p->user))
		return err_set(err, MS_ERR_CONFIG,
			       "the device code flow needs the mailbox user");
	return 0;
}

static int hand_out(struct token_entry *e, char **access_token, time_t *expires_at,
		    struct ms_err *err)
{
	*access_token = e->access_token;
	e->access_token = NULL;
	if (expires_at)
		*expires_at = e->expires_at;
	return 0;
}

enum get_mode { GET_NORMAL, GET_FORCE, GET_RENEW };

static int get_token(const struct oauth_params *p, enum get_mode mode,
		     char **access_token, time_t *expires_at,
		     struct oauth_error *oe, struct ms_err *err)
{
	struct oauth_error oe_local;
	struct tokencache *tc = NULL;
	struct tokencache_lock *lk = NULL;
	struct http_client *hc = NULL;
	struct token_entry before = { 0 }, cur = { 0 };
	struct token_reply tr = { 0 };
	struct token_key key;
	char keyflow[96];
	struct ms_err e2 = MS_ERR_INIT;
	int delegated = p->flow == FLOW_DEVICE_CODE;
	int rc, ret = -1;
	time_t now;

	*access_token = NULL;
	if (expires_at)
		*expires_at = 0;
	if (!oe)
		oe = &oe_local;
	memset(oe, 0, sizeof(*oe));
	if (check_params(p, err))
		return -1;
	make_key(p, &key, keyflow);

	if (tokencache_open(&tc, p->cache_path, &e2)) {
		if (delegated) {
			err_set(err, e2.code, "%s", e2.msg);
			return -1;
		}
		/* an app can still get a token; it just is not shared */
		log_warnx("%s; fetching a token without the cache", e2.msg);
		tc = NULL;
	}
	if (tc) {
		rc = tokencache_get(tc, &key, &before, &e2);
		if (rc < 0) {
			log_warnx("%s; ignoring the cached entry", e2.msg);
			err_clear(&e2);
		}
		now = time(NULL);
		if (mode == GET_NORMAL && token_entry_fresh(&before, now, OAUTH_REFRESH_MARGIN)) {
			ret = hand_out(&before, access_token, expires_at, err);
			goto out;
		}
		if (tokencache_lock(tc, &key, TOKENCACHE_LOCK_TIMEOUT, &lk, err))
			goto out;
		/* someone may have fetched while we waited */
		rc = tokencache_get(tc, &key, &cur, &e2);
		if (rc < 0) {
			log_warnx("%s; ignoring the cached entry", e2.msg);
			err_clear(&e2);
		}
		now = time(NULL);
		if (mode != GET_RENEW && token_entry_fresh(&cur, now, OAUTH_REFRESH_MARGIN) &&
		    (mode == GET_NORMAL || !before.access_token ||
		     strcmp(before.access_token, cur.access_token) != 0)) {
			ret = hand_out(&cur, access_token, expires_at, err);
			goto out;
		}
	}
	if (delegated && !cur.refresh_token) {
		err_set(err, MS_ERR_AUTH,
			"no sign-in stored for '%s' (client %s); run the device code "
			"sign-in (--oauth-login) first", p->user, p->client_id);
		goto out;
	}
	if (new_client(p, &hc, err))
		goto out;
	err_clear(&e2);
	rc = request_token(p, hc, delegated ? cur.refresh_token : NULL, &tr, oe, &e2);
	if (rc != 0) {
		/* a temporary failure inside the margin: the old token still works */
		now = time(NULL);
		if (rc < 0 && err_is_temporary(&e2) && mode == GET_NORMAL &&
		    token_entry_fresh(&cur, now, 30)) {
			log_warnx("%s; using the cached token until it expires", e2.msg);
			ret = hand_out(&cur, access_token, expires_at, err);
			goto out;
		}
		if (rc == 1 && delegated)
			err_prefix(&e2, "refreshing the sign-in of '%s'", p->user);
		err_set(err, e2.code, "%s", e2.msg);
		goto out;
	}
	now = time(NULL);
	if (tc && tokencache_put(tc, &key, tr.access_token, now + tr.expires_in,
				 tr.refresh_token, &e2)) {
		if (delegated && tr.refresh_token) {
			/* the old refresh token is spent: losing the new one
			 * would sign the user out */
			err_set(err, e2.code, "cannot store the rotated refresh token: %s",
				e2.msg);
			goto out;
		}
		log_warnx("%s; the token is not cached", e2.msg);
	}
	if (delegated && !tr.refresh_token)
		log_debug("the token service returned no new refresh token; keeping the "
			  "stored one");
	*access_token = tr.access_token;
	tr.access_token = NULL;
	if (expires_at)
		*expires_at = now + tr.expires_in;
	ret = 0;
out:
	token_reply_release(&tr);
	token_entry_release(&before);
	token_entry_release(&cur);
	http_client_free(hc);
	tokencache_unlock(lk);
	tokencache_close(tc);
	return ret;
}

int oauth_get_token_ex(const struct oauth_params *p, int force_refresh,
		       char **access_token, time_t *expires_at,
		       struct oauth_error *oe, struct ms_err *err)
{
	return get_token(p, force_refresh ? GET_FORCE : GET_NORMAL, access_token,
			 expires_at, oe, err);
}

int oauth_get_token(const struct oauth_params *p, int force_refresh,
		    char **access_token, time_t *expires_at, struct ms_err *err)
{
	return oauth_get_token_ex(p, force_refresh, access_token, expires_at, NULL, err);
}

int oauth_renew_silent_ex(const struct oauth_params *p, struct oauth_error *oe,
			  struct ms_err *err)
{
	char *tok = NULL;
	int rc;

	rc = get_token(p, p->flow == FLOW_DEVICE_CODE ? GET_RENEW : GET_NORMAL, &tok,
		       NULL, oe, err);
	oauth_token_free(tok);
	return rc;
}

int oauth_renew_silent(const struct oauth_params *p, struct ms_err *err)
{
	return oauth_renew_silent_ex(p, NULL, err);
}

int oauth_forget(const struct oauth_params *p, struct ms_err *err)
{
	struct tokencache *tc;
	struct token_key key;
	char keyflow[96];
	int rc;

	make_key(p, &key, keyflow);
	if (tokencache_open(&tc, p->cache_path, err))
		return -1;
	rc = tokencache_delete(tc, &key, err);
	tokencache_close(tc);
	return rc;
}

/* ---- device code ---- */

struct device_reply {
	char *device_code;
	char *user_code;
	char *verification_uri;
	char *message;
	long expires_in;
	long interval;
};

static void device_reply_release(struct device_reply *d)
{
	mem_wipe_free(d->device_code);
	free(d->user_code);
	free(d->verification_uri);
	free(d->message);
	memset(d, 0, sizeof(*d));
}

static int parse_device(const struct http_response *r, struct device_reply *d)
{
	cJSON *j = r->body.data ? cJSON_ParseWithLength(r->body.data, r->body.len) : NULL;
	const char *dc, *uc, *uri, *msg;
	int ret = -1;

	memset(d, 0, sizeof(*d));
	if (!cJSON_IsObject(j) || !(dc = jstr(j, "device_code")) ||
	    !(uc = jstr(j, "user_code")))
		goto out;
	uri = jstr(j, "verification_uri");
	if (!uri)
		uri = jstr(j, "verification_url");
	msg = jstr(j, "message");
	if (!uri || !(d->device_code = strdup(dc)) || !(d->user_code = strdup(uc)) ||
	    !(d->verification_uri = strdup(uri)) ||
	    (msg && !(d->message = strdup(msg))))
		goto out;
	d->expires_in = jlong(j, "expires_in", 900);
	d->interval = jlong(j, "interval", 5);
	ret = 0;
out:
	if (ret)
		device_reply_release(d);
	cJSON_Delete(j);
	return ret;
}

/*
 * Who signed in?  Microsoft's access tokens are JWTs today but documented
 * as opaque, so this is best effort: 1 with the UPN copied when the token
 * names one, 0 otherwise.  Only the claim is kept; the token is not logged.
 */
static int token_upn(const char *token, char *upn, size_t upnsz)
{
	struct ms_err e = MS_ERR_INIT;
	const char *a = strchr(token, '.'), *b;
	unsigned char *raw = NULL;
	size_t n = 0;
	cJSON *j = NULL;
	const char *v = NULL;
	int ret = 0;

	if (!a || !(b = strchr(a + 1, '.')) || b - a > 64 * 1024)
		return 0;
	if (seal_b64_decode(a + 1, (size_t)(b - a - 1), 1, &raw, &n, &e))
		return 0;
	j = cJSON_ParseWithLength((const char *)raw, n);
	if (cJSON_IsObject(j) && (v = jstr(j, "preferred_username")) == NULL &&
	    (v = jstr(j, "upn")) == NULL)
		v = jstr(j, "email");
	if (v && *v) {
		copy_clean(upn, upnsz, v);
		ret = 1;
	}
	cJSON_Delete(j);
	free(raw);
	return ret;
}

/* Poll the token endpoint with the device code until the user signs in
 * (*tr filled), declines, or the code expires (RFC 8628 3.4-3.5:
 * authorization_pending waits, slow_down adds 5 s to the interval). */
static int poll_device_token(struct http_client *hc, const char *tok_url,
			     const struct buf *form, long interval, time_t deadline,
			     struct oauth_error *oe, struct token_reply *tr,
			     struct ms_err *err)
{
	struct http_response r;
	int rc;

	for (int polls = 0; ; polls++) {
		struct ms_err pe = MS_ERR_INIT;

		if (time(NULL) + interval > deadline || polls >= DEVICE_MAX_POLLS) {
			err_set(err, MS_ERR_AUTH, "the code expired before sign-in");
			return -1;
		}
		sleep_fn((unsigned)interval);
		rc = post_form(hc, tok_url, form, &r, oe, &pe);
		if (rc < 0) {
			if (!err_is_temporary(&pe)) {
				err_set(err, pe.code, "%s", pe.msg);
				return -1;
			}
			log_info("%s; still waiting for sign-in", pe.msg);
			continue;
		}
		if (rc == 0) {
			rc = parse_token(&r, tr);
			http_response_release(&r);
			if (rc) {
				err_set(err, MS_ERR_PROTO,
					"'%s' answered without a usable access token", tok_url);
				return -1;
			}
			return 0;
		}
		if (strcmp(oe->error, "authorization_pending") == 0)
			continue;
		if (strcmp(oe->error, "slow_down") == 0) {
			interval += 5;
			continue;
		}
		if (strcmp(oe->error, "authorization_declined") == 0 ||
		    strcmp(oe->error, "access_denied") == 0) {
			err_set(err, MS_ERR_AUTH, "sign-in was declined");
			return -1;
		}
		if (strcmp(oe->error, "expired_token") == 0) {
			err_set(err, MS_ERR_AUTH, "the code expired before sign-in");
			return -1;
		}
		refusal_message(oe, "sign-in", err);
		return -1;
	}
}

int oauth_device_login_ex(const struct oauth_params *p, oauth_prompt_fn prompt,
			  void *ctx, struct oauth_error *oe, struct ms_err *err)
{
	struct oauth_error oe_local;
	struct http_client *hc = NULL;
	struct tokencache *tc = NULL;
	struct http_response r;
	struct device_reply d = { 0 };
	struct token_reply tr = { 0 };
	struct token_key key;
	char keyflow[96];
	struct buf form;
	char *dc_url = NULL, *tok_url = NULL;
	time_t deadline;
	long interval;
	int rc, ret = -1;

	if (!oe)
		oe = &oe_local;
	memset(oe, 0, sizeof(*oe));
	buf_init(&form, FORM_MAX);
	if (p->flow != FLOW_DEVICE_CODE)
		return err_set(err, MS_ERR_CONFIG,
			       "sign-in needs [OAuth] Flow = DeviceCode");
	if (check_params(p, err))
		return -1;
	make_key(p, &key, keyflow);
	/* open the cache first: no point signing in if we cannot store it */
	if (tokencache_open(&tc, p->cache_path, err) ||
	    endpoint_url(p, "devicecode", &dc_url, err) ||
	    oauth_token_url(p, &tok_url, err) || new_client(p, &hc, err))
		goto out;
	if (http_form_add(&form, "client_id", p->client_id, err) ||
	    http_form_add(&form, "scope", p->scope, err))
		goto out;
	rc = post_form(hc, dc_url, &form, &r, oe, err);
	if (rc < 0)
		goto out;
	if (rc == 1) {
		refusal_message(oe, "device code request", err);
		goto out;
	}
	rc = parse_device(&r, &d);
	http_response_release(&r);
	if (rc) {
		err_set(err, MS_ERR_PROTO, "'%s' answered without a device code", dc_url);
		goto out;
	}
	if (prompt && prompt(ctx, d.user_code, d.verification_uri, d.message,
			     d.expires_in) != 0) {
		err_set(err, MS_ERR_USAGE, "sign-in cancelled");
		goto out;
	}
	interval = d.interval < 1 ? 1 : d.interval > 60 ? 60 : d.interval;
	deadline = time(NULL) + (d.expires_in > 0 && d.expires_in < DEVICE_MAX_WAIT
				 ? d.expires_in : DEVICE_MAX_WAIT);
	buf_reset(&form);
	if (http_form_add(&form, "grant_type", GRANT_DEVICE, err) ||
	    http_form_add(&form, "client_id", p->client_id, err) ||
	    http_form_add(&form, "device_code", d.device_code, err) ||
	    (p->client_secret && http_form_add(&form, "client_secret", p->client_secret, err)))
		goto out;
	if (poll_device_token(hc, tok_url, &form, interval, deadline, oe, &tr, err))
		goto out;
	{
		char upn[256];
		if (token_upn(tr.access_token, upn, sizeof(upn)) &&
		    strcasecmp(upn, p->user) != 0) {
			err_set(err, MS_ERR_AUTH,
				"signed in as '%s', but the mailbox is '%s'; sign in again "
				"as '%s'", upn, p->user, p->user);
			goto out;
		}
	}
	if (!tr.refresh_token)
		log_warnx("the token service returned no refresh token (is offline_access "
			  "in the scope?); the sign-in will not outlive the access token");
	if (tokencache_put(tc, &key, tr.access_token, time(NULL) + tr.expires_in,
			   tr.refresh_token, err))
		goto out;
	memset(oe, 0, sizeof(*oe));
	ret = 0;
out:
	buf_wipe(&form);
	token_reply_release(&tr);
	device_reply_release(&d);
	http_client_free(hc);
	tokencache_close(tc);
	free(dc_url);
	free(tok_url);
	return ret;
}

int oauth_device_login(const struct oauth_params *p, oauth_prompt_fn prompt,
		       void *ctx, struct ms_err *err)
{
	return oauth_device_login_ex(p, prompt, ctx, NULL, err);
}

void oauth_parse_replies(const char *body, size_t len)
{
	struct http_response r;
	struct token_reply tr;
	struct device_reply d;
	struct oauth_error oe;
	struct ms_err err = MS_ERR_INIT;

	memset(&r, 0, sizeof(r));
	buf_init(&r.body, 0);
	r.status = 400;
	r.retry_after_s = -1;
	if (buf_append(&r.body, body, len, &err))
		return;
	if (parse_token(&r, &tr) == 0)
		token_reply_release(&tr);
	(void)parse_error(&r, &oe);
	if (parse_device(&r, &d) == 0)
		device_reply_release(&d);
	buf_wipe(&r.body);
}
