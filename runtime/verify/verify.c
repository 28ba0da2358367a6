/*
 * verify.c - mailshift-verify's engine: the worker threads and the
 * per-mailbox limits they share, the step results, the kept mailbox
 * sessions and the first three steps per mailbox (config, token, login);
 * the probe's steps (send, seen, cleanup) are in verify_probe.c.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "ini/config.h"
#include "ini/profile.h"
#include "connector/connector.h"
#include "mail/explain.h"
#include "transport/http.h"
#include "base/log.h"
#include "base/mem.h"
#include "transport/mailbox/mailbox.h"
#include "mail/message.h"
#include "auth/oauth.h"
#include "auth/secret.h"
#include "transport/send.h"
#include "verify/verify.h"
#include "verify/verify_int.h"

#define VERIFY_MAX_THREADS 64
#define VERIFY_CERT_WARN_DAYS 30
#define VERIFY_PARK_S      5.0   /* give a kept session up before a longer wait */

static const int limit_max[LIM_COUNT] = {
	VERIFY_SMTP_PER_MAILBOX, VERIFY_GRAPH_PER_MAILBOX,
	VERIFY_SESSIONS_PER_MAILBOX, 1,
};

double verify_mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void verify_sleep_s(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

char *verify_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

char *verify_printf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

/* ---- limits --------------------------------------------------------------- */

static struct mbx_limits *limits_for(struct engine *e, const char *mailbox)
{
	struct mbx_limits *l;
	char key[320];
	size_t i;

	for (i = 0; mailbox && mailbox[i] && i < sizeof(key) - 1; i++)
		key[i] = (char)tolower((unsigned char)mailbox[i]);
	key[i] = 0;
	for (l = e->limits; l; l = l->next)
		if (strcmp(l->key, key) == 0)
			return l;
	if (!(l = calloc(1, sizeof(*l))) || !(l->key = strdup(key))) {
		free(l);
		return NULL;
	}
	verify_rate_init(&l->rate, e->o->sends_per_minute > 0 ?
			 e->o->sends_per_minute : VERIFY_SENDS_PER_MINUTE, 60);
	l->next = e->limits;
	e->limits = l;
	return l;
}

/* Take one slot of a kind for a mailbox, waiting while all are in use. */
struct mbx_limits *verify_limit_acquire(struct engine *e, const char *mailbox,
					enum limit_kind k)
{
	struct mbx_limits *l;

	pthread_mutex_lock(&e->mu);
	l = limits_for(e, mailbox);
	while (l && (l->used[k] >= limit_max[k] ||
		     (k != LIM_SMTP && l->used[LIM_POP]) ||
		     (k == LIM_POP && l->readers))) {
		l->waiting += k != LIM_SMTP;
		pthread_cond_wait(&e->cv, &e->mu);
		l->waiting -= k != LIM_SMTP;
	}
	if (l) {
		l->used[k]++;
		l->readers += k == LIM_GRAPH || k == LIM_SESSION;
	}
	pthread_mutex_unlock(&e->mu);
	return l;
}

void verify_limit_release(struct engine *e, struct mbx_limits *l,
			  enum limit_kind k)
{
	if (!l)
		return;
	pthread_mutex_lock(&e->mu);
	l->used[k]--;
	l->readers -= k == LIM_GRAPH || k == LIM_SESSION;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
}

/* 1 when another thread waits for a session slot of this mailbox. */
static int limit_contended(struct engine *e, struct mbx_limits *l)
{
	int w;

	if (!l)
		return 0;
	pthread_mutex_lock(&e->mu);
	w = l->waiting > 0;
	pthread_mutex_unlock(&e->mu);
	return w;
}

/* Reserve the sending mailbox's next send slot (30 per minute); returns
 * how long to wait for it. */
double verify_limit_rate(struct engine *e, const char *mailbox)
{
	struct mbx_limits *l;
	double now = verify_mono_now(), at = now;

	pthread_mutex_lock(&e->mu);
	if ((l = limits_for(e, mailbox)))
		at = verify_rate_reserve(&l->rate, now);
	pthread_mutex_unlock(&e->mu);
	return at - now;
}

/* ---- step results ---------------------------------------------------------- */

void job_step_begin(struct job *j)
{
	j->t_step = verify_mono_now();
}

void job_step_end(struct job *j, enum verify_step s, enum verify_status st)
{
	struct verify_step_result *sr = &j->res->steps[s];

	sr->status = st;
	sr->seconds = st == VST_SKIP ? 0 : verify_mono_now() - j->t_step;
}

void job_step_pass(struct job *j, enum verify_step s, char *message)
{
	job_step_end(j, s, VST_PASS);
	free(j->res->steps[s].message);
	j->res->steps[s].message = message;
}

static void step_skip(struct job *j, enum verify_step s, const char *why)
{
	if (j->res->steps[s].status != VST_SKIP || j->res->steps[s].message)
		return;
	job_step_end(j, s, VST_SKIP);
	j->res->steps[s].message = verify_strdup(why);
}

static void set_explain(struct verify_step_result *sr, const struct explain *x)
{
	sr->cause = verify_strdup(x->cause);
	sr->fix = verify_strdup(x->fix);
	sr->topic = verify_strdup(x->topic);
}

/* A failed step: the error message, and the catalogue's cause and fix
 * (from Microsoft's parsed token error when there is one). */
int job_step_fail(struct job *j, enum verify_step s, const struct ms_err *err,
		  const struct oauth_error *oe)
{
	struct verify_step_result *sr = &j->res->steps[s];
	struct explain x;
	int known;

	job_step_end(j, s, VST_FAIL);
	sr->code = err->code != MS_OK ? err->code : MS_ERR_INTERNAL;
	free(sr->message);
	sr->message = verify_strdup(err->msg[0] ? err->msg : "failed");
	if (oe && (oe->error[0] || oe->n_codes))
		known = explain_token_error(oe->error, oe->codes, oe->n_codes, &x);
	else
		known = explain_text(err->msg, &x);
	set_explain(sr, &x);
	return known;
}

/* A wrong or expired client secret: the fix that fits where this INI's
 * [OAuth] ClientSecret comes from (an env: variable, a file:, or a value
 * sealed with mailshift --credentials -clientsecret:). */
static void secret_fix(struct job *j, struct verify_step_result *sr)
{
	const char *ref = j->cfg_loaded ? j->cfg.oauth_client_secret : NULL;
	char *where;

	if (!ref || !sr->topic || (strcmp(sr->topic, "AADSTS7000215") &&
				   strcmp(sr->topic, "AADSTS7000222") &&
				   strcmp(sr->topic, "invalid_client")))
		return;
	if (!(where = secret_update_hint(ref, j->res->ini, "-clientsecret:")))
		return;
	free(sr->fix);
	sr->fix = verify_printf("create a new client secret in Entra ID > App registrations > "
				"(the app) > Certificates & secrets, then %s%s", where,
				strcmp(sr->topic, "AADSTS7000222") ? "" :
				"; note its new expiry date");
	free(where);
}

/* A failure of our own making, with our own cause and fix. */
void job_step_fail_own(struct job *j, enum verify_step s, enum ms_errcode code,
		       const char *cause, const char *fix, char *message)
{
	struct verify_step_result *sr = &j->res->steps[s];

	job_step_end(j, s, VST_FAIL);
	sr->code = code;
	free(sr->message);
	sr->message = message ? message : verify_strdup(cause);
	sr->cause = verify_strdup(cause);
	sr->fix = verify_strdup(fix);
	sr->topic = verify_strdup("verify");
}

/* ---- tokens ----------------------------------------------------------------- */

int verify_token_cb(void *ctx, int force_refresh, char **token,
		    struct ms_err *err)
{
	const struct oauth_params *p = ctx;
	time_t expires;

	return oauth_get_token(p, force_refresh, token, &expires, err);
}

/* ---- step 1: config -------------------------------------------------------- */

/* Step 1 for a basic login: the password is set and readable, and the
 * mailbox is not one of Exchange Online's (which refuses it). */
static int config_basic(struct job *j)
{
	const struct config *c = &j->cfg;
	struct ms_err err = MS_ERR_INIT;

	if (profile_is_microsoft_host(c->server)) {
		job_step_fail_own(j, VSTEP_CONFIG, MS_ERR_CONFIG,
				  "a Microsoft-hosted mailbox is still set up for basic "
				  "authentication, which Exchange Online refuses",
				  "migrate the INI file to OAuth 2.0 (mailshift-migrate) "
				  "and run mailshift-verify again",
				  verify_printf("%s: %s on %s uses basic authentication",
						j->res->ini, j->address, c->server));
		return -1;
	}
	if (!c->password) {
		job_step_fail_own(j, VSTEP_CONFIG, MS_ERR_CONFIG,
				  "[Mail] Password is not set",
				  "store it with 'mailshift --credentials'", NULL);
		return -1;
	}
	if (profile_legacy_secret(c, 0)) {
		job_step_fail_own(j, VSTEP_CONFIG, MS_ERR_CONFIG,
				  "[Mail] Password is encrypted by smartemail.exe, which "
				  "mailshift cannot read",
				  "store it again with 'mailshift --credentials'", NULL);
		return -1;
	}
	if (secret_resolve(c->password, &j->password, &err)) {
		err_prefix(&err, "%s: [Mail] Password", j->res->ini);
		job_step_fail(j, VSTEP_CONFIG, &err, NULL);
		return -1;
	}
	job_step_pass(j, VSTEP_CONFIG,
		      verify_printf("%s %s on %s, basic authentication (%s password), "
				    "%zu rule%s", j->res->protocol, j->address, c->server,
				    secret_kind_name(secret_kind(c->password)), c->n_rules,
				    c->n_rules == 1 ? "" : "s"));
	return 0;
}

/* Step 1, [OAuth] CertificateFile: readable and valid long enough
 * (--cert-min-days; a warning within VERIFY_CERT_WARN_DAYS).  *what
 * says so for the step's message. */
static int config_certificate(struct job *j, char **what)
{
	const struct verify_opts *o = j->e->o;
	const struct config *c = &j->cfg;
	struct ms_err err = MS_ERR_INIT;
	long days = 0;
	char date[32] = "";
	time_t not_after;
	struct tm tm;

	if (oauth_cert_days_left(c->oauth_cert_file, time(NULL), &days,
				 &not_after, &err)) {
		err_prefix(&err, "%s: [OAuth] CertificateFile", j->res->ini);
		job_step_fail(j, VSTEP_CONFIG, &err, NULL);
		return -1;
	}
	if (gmtime_r(&not_after, &tm))
		strftime(date, sizeof(date), "%Y-%m-%d", &tm);
	if (days < 0 || days < o->cert_min_days) {
		job_step_fail_own(j, VSTEP_CONFIG, MS_ERR_CONFIG,
				  days < 0 ? "the client certificate has expired" :
				  "the client certificate expires too soon",
				  "upload a new certificate to the app registration and "
				  "point [OAuth] CertificateFile at it",
				  verify_printf("%s: certificate '%s' %s %s", j->res->ini,
						c->oauth_cert_file,
						days < 0 ? "expired on" : "expires on", date));
		return -1;
	}
	if (days < VERIFY_CERT_WARN_DAYS)
		j->res->warning = verify_printf("certificate '%s' expires on %s (in %ld "
						"day%s)", c->oauth_cert_file, date, days,
						days == 1 ? "" : "s");
	*what = verify_printf("certificate valid until %s", date);
	return 0;
}

/* Step 1 for an OAuth login: [OAuth] complete and readable, the
 * certificate valid, the client secret resolvable. */
static int config_oauth(struct job *j)
{
	struct engine *e = j->e;
	const struct config *c = &j->cfg;
	struct ms_err err = MS_ERR_INIT;
	char *secret = NULL, *what = NULL, *msg;

	if (!profile_oauth_complete(c)) {
		job_step_fail_own(j, VSTEP_CONFIG, MS_ERR_CONFIG,
				  "the [OAuth] section is incomplete",
				  "set [OAuth] TenantId, ClientId and ClientSecret or "
				  "CertificateFile (mailshift-migrate writes them)",
				  verify_printf("%s: [OAuth] missing %s%s%s", j->res->ini,
						c->oauth_tenant ? "" : "TenantId ",
						c->oauth_client_id ? "" : "ClientId ",
						c->oauth_client_secret || c->oauth_cert_file ? "" :
						"ClientSecret or CertificateFile"));
		return -1;
	}
	if (profile_legacy_secret(c, 1)) {
		job_step_fail_own(j, VSTEP_CONFIG, MS_ERR_CONFIG,
				  "[OAuth] ClientSecret is not a value mailshift can read",
				  "seal it with mailshift --credentials -clientsecret:VALUE, or "
				  "reference it as env:NAME or file:PATH", NULL);
		return -1;
	}
	if (profile_oauth_params(c, j->proto, &j->op, &err)) {
		err_prefix(&err, "%s", j->res->ini);
		job_step_fail(j, VSTEP_CONFIG, &err, NULL);
		return -1;
	}
	j->have_op = 1;
	j->op.verbose = e->o->verbose;
	if (c->oauth_client_secret)
		what = verify_printf("client secret (%s)",
				     secret_kind_name(secret_kind(c->oauth_client_secret)));
	if (c->oauth_cert_file) {
		free(what);
		what = NULL;
		if (config_certificate(j, &what))
			return -1;
	}
	/* prove the secret resolves without keeping a second copy */
	if (c->oauth_client_secret) {
		if (secret_resolve(c->oauth_client_secret, &secret, &err)) {
			char *where = secret_update_hint(c->oauth_client_secret,
							 j->res->ini, "-clientsecret:");
			struct verify_step_result *sr = &j->res->steps[VSTEP_CONFIG];

			err_prefix(&err, "%s: [OAuth] ClientSecret", j->res->ini);
			job_step_fail(j, VSTEP_CONFIG, &err, NULL);
			if (where) {
				free(sr->fix);
				sr->fix = verify_printf("%s%s", where, secret_kind(
							c->oauth_client_secret) == SECRET_SEALED ?
							" (it was sealed with another machine key)" : "");
				free(where);
			}
			free(what);
			return -1;
		}
		secret_free(secret);
	}
	msg = verify_printf("%s %s%s%s, OAuth 2.0 with %s, %zu rule%s", j->res->protocol,
			    j->address, c->server && j->proto != PROTO_GRAPH ? " on " : "",
			    c->server && j->proto != PROTO_GRAPH ? c->server : "",
			    what ? what : "a credential", c->n_rules, c->n_rules == 1 ? "" : "s");
	free(what);
	job_step_pass(j, VSTEP_CONFIG, msg);
	return 0;
}

/* Step 1: the INI file loads and says how to reach the mailbox. */
static int step_config(struct job *j)
{
	struct config *c = &j->cfg;
	struct ms_err err = MS_ERR_INIT;

	job_step_begin(j);
	if (config_load(c, j->res->ini, &err)) {
		job_step_fail(j, VSTEP_CONFIG, &err, NULL);
		return -1;
	}
	j->cfg_loaded = 1;
	j->proto = profile_protocol(c);
	j->oauth = profile_uses_oauth(c);
	j->address = profile_mailbox_user(c);
	j->res->protocol = verify_strdup(j->proto == PROTO_UNSET ? NULL :
					 config_protocol_name(j->proto));
	if (j->res->protocol)
		for (char *p = j->res->protocol; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	j->res->mailbox = verify_strdup(j->address);
	if (j->proto == PROTO_UNSET) {
		job_step_fail_own(j, VSTEP_CONFIG, MS_ERR_CONFIG,
				  "[Mail] EmailProtocol is not set",
				  "set EmailProtocol to IMAP, POP or GRAPH", NULL);
		return -1;
	}
	if (!j->address) {
		job_step_fail_own(j, VSTEP_CONFIG, MS_ERR_CONFIG, "[Mail] User is not set",
				  "set [Mail] User (or [OAuth] Mailbox) to the mailbox address",
				  NULL);
		return -1;
	}
	if (j->proto != PROTO_GRAPH && !c->server) {
		job_step_fail_own(j, VSTEP_CONFIG, MS_ERR_CONFIG, "[Mail] Server is not set",
				  "set [Mail] Server to the mail server's host name", NULL);
		return -1;
	}
	return j->oauth ? config_oauth(j) : config_basic(j);
}

/* ---- step 2: token ---------------------------------------------------------- */

static void credential_key(const struct job *j, unsigned char key[32])
{
	const struct oauth_params *p = &j->op;
	const char *parts[] = { p->authority, p->tenant, p->client_id, p->scope,
				p->client_secret, p->cert_file, p->user,
				oauth_flow_name(p->flow) };
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int len = 32;

	memset(key, 0, 32);
	if (!md)
		return;
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		EVP_DigestUpdate(md, parts[i] ? parts[i] : "", parts[i] ?
				 strlen(parts[i]) + 1 : 1);
	EVP_DigestFinal_ex(md, key, &len);
	EVP_MD_CTX_free(md);
}

/* 1 when this credential has not yet been proven in this run (or its
 * proof failed): ask the token service instead of the cache. */
static int credential_first_use(struct job *j)
{
	struct engine *e = j->e;
	struct proven *p;
	unsigned char key[32];
	int force = 1;

	credential_key(j, key);
	pthread_mutex_lock(&e->mu);
	for (p = e->proven; p; p = p->next)
		if (memcmp(p->key, key, 32) == 0) {
			force = !p->ok;
			break;
		}
	pthread_mutex_unlock(&e->mu);
	return force;
}

static void credential_result(struct job *j, int ok)
{
	struct engine *e = j->e;
	struct proven *p;
	unsigned char key[32];

	credential_key(j, key);
	pthread_mutex_lock(&e->mu);
	for (p = e->proven; p; p = p->next)
		if (memcmp(p->key, key, 32) == 0)
			break;
	if (!p && (p = calloc(1, sizeof(*p)))) {
		memcpy(p->key, key, 32);
		p->next = e->proven;
		e->proven = p;
	}
	if (p)
		p->ok = ok;
	pthread_mutex_unlock(&e->mu);
}

static int step_token(struct job *j)
{
	struct ms_err err = MS_ERR_INIT;
	int force, rc;
	struct oauth_error oe;
	char *token = NULL, when[32];
	time_t expires = 0;
	struct tm tm;

	job_step_begin(j);
	if (!j->oauth) {
		step_skip(j, VSTEP_TOKEN, "basic authentication: no token");
		return 0;
	}
	memset(&oe, 0, sizeof(oe));
	/* A token cached from another credential (the secret before the
	 * migration, a colleague's test) would hide a wrong one: the first
	 * mailbox of each credential asks the token service (and refreshes
	 * the shared cache), the others use the cache. */
	force = credential_first_use(j);
	if (force)
		pthread_mutex_lock(&j->e->proof_mu);
	rc = oauth_get_token_ex(&j->op, force, &token, &expires, &oe, &err);
	if (force) {
		credential_result(j, rc == 0);
		pthread_mutex_unlock(&j->e->proof_mu);
	}
	if (rc) {
		job_step_fail(j, VSTEP_TOKEN, &err, &oe);
		secret_fix(j, &j->res->steps[VSTEP_TOKEN]);
		return -1;
	}
	oauth_token_free(token);
	if (expires && gmtime_r(&expires, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	else
		snprintf(when, sizeof(when), "unknown");
	job_step_pass(j, VSTEP_TOKEN, verify_printf("token for %s valid until %s", j->op.scope,
		      when));
	return 0;
}

/* ---- mailbox sessions --------------------------------------------------------- */

static void mailbox_params_for(struct job *j, struct mailbox_params *p,
			       time_t since, int read_only)
{
	/* the connector's own mapping (profile.h): verify tests the
	 * connection the connector will open */
	profile_mailbox_params(&j->cfg, p);
	p->password = j->oauth ? NULL : j->password;
	if (j->oauth) {
		p->token_fn = verify_token_cb;
		p->token_ctx = &j->op;
	}
	p->since = since;
	p->timeout_s = j->e->o->op_timeout_s > 0 ? j->e->o->op_timeout_s : 60;
	p->verbose = j->e->o->verbose;
	p->read_only = read_only;
}

static enum limit_kind session_kind(const struct job *j)
{
	return j->proto == PROTO_GRAPH ? LIM_GRAPH :
		j->proto == PROTO_POP ? LIM_POP : LIM_SESSION;
}

/*
 * One login per mailbox where the protocol allows it.  The session of the
 * login step is kept for the polls, the connector's dry run (handed over
 * through connector_run.mailbox) and the cleanup:
 *
 *  - IMAP: every later step calls mailbox_reuse(), which selects the
 *    folder again (EXAMINE for the polls and the dry run, SELECT for the
 *    cleanup): selecting again is what shows mail that arrived after the
 *    login.  The slot stays held while the session is open (an idle
 *    connection still counts against the server's per-mailbox limit), so
 *    the session is given up before a wait when another thread waits for
 *    a slot of the mailbox or the next send slot is more than
 *    VERIFY_PARK_S away; the next step opens a new one.
 *  - POP3: a session sees the maildrop as it was at login (RFC 1939), so
 *    the login step's session cannot show the probe, and a poll that does
 *    not list it closes its session (the next poll needs a new one).  The
 *    poll session that lists the probe is kept for the dry run (the probe
 *    is in its snapshot) and the cleanup, whose DELE its QUIT commits.
 *    Its exclusive slot is held from that poll to the end of the cleanup,
 *    with no wait on anything else in between.
 *  - Graph: no session on the server; the mailbox object (connection,
 *    token) is kept and its slot (one request at a time) is taken only
 *    while a step uses it, so a probe sent through Graph from the same
 *    mailbox never waits for a slot its own thread holds.
 *
 * A kept session that cannot be reused (mailbox_reuse() failed) is closed
 * and a new one opened, as every step did before sessions were kept.
 */

int job_session_close(struct job *j, struct ms_err *err)
{
	struct ms_err cerr = MS_ERR_INIT;
	int rc = 0;

	if (j->mb)
		rc = mailbox_close(j->mb, err ? err : &cerr);
	j->mb = NULL;
	if (j->held)
		verify_limit_release(j->e, j->mb_limit, session_kind(j));
	j->held = 0;
	j->mb_limit = NULL;
	return rc;
}

/* Take the mailbox's slot for the kept session (Graph gives it back
 * between steps). */
void job_session_hold(struct job *j)
{
	if (j->held)
		return;
	j->mb_limit = verify_limit_acquire(j->e, j->address, session_kind(j));
	j->held = 1;
}

/* A step is done with the kept session for now. */
void job_session_idle(struct job *j)
{
	if (j->proto == PROTO_GRAPH && j->held) {
		verify_limit_release(j->e, j->mb_limit, session_kind(j));
		j->held = 0;
		j->mb_limit = NULL;
	}
}

/* The session for a listing from since: the kept one, made ready, or a
 * new one.  Its slot is held on return 0. */
int job_session_get(struct job *j, time_t since, int read_only,
		    struct ms_err *err)
{
	struct mailbox_params p;

	if (j->mb) {
		struct ms_err rerr = MS_ERR_INIT;

		job_session_hold(j);
		if (mailbox_reuse(j->mb, since, read_only, &rerr) == 0)
			return 0;
		log_debug("%s: %s; opening a new session", j->address, rerr.msg);
		job_session_close(j, NULL);
	}
	mailbox_params_for(j, &p, since, read_only);
	job_session_hold(j);
	if (mailbox_open(&j->mb, &p, err)) {
		j->mb = NULL;
		job_session_close(j, NULL);
		return -1;
	}
	return 0;
}

/* Before a wait: give the kept session up when another thread waits for
 * a slot of the mailbox or the wait is long. */
void job_session_park(struct job *j, double wait)
{
	if (j->mb && j->held &&
	    (wait > VERIFY_PARK_S || limit_contended(j->e, j->mb_limit)))
		job_session_close(j, NULL);
}

/* ---- step 3: login ---------------------------------------------------------- */

static int step_login(struct job *j)
{
	struct ms_err err = MS_ERR_INIT, cerr = MS_ERR_INIT;
	struct mailbox_item *items = NULL;
	size_t n = 0;
	int rc;

	job_step_begin(j);
	/* POP has no arrival date: a plain UIDL listing is the cheap proof */
	rc = job_session_get(j, j->proto == PROTO_POP ? 0 : time(NULL), 1, &err);
	if (rc == 0)
		rc = mailbox_list(j->mb, &items, &n, &err);
	/* kept for the probe's steps when a later listing on it shows the
	 * probe (not POP: see above) */
	if (rc == 0 && j->e->o->send && mailbox_sees_new_mail(j->mb)) {
		job_session_idle(j);
	} else if (job_session_close(j, &cerr) && rc == 0) {
		err = cerr;
		rc = -1;
	}
	if (rc) {
		struct verify_step_result *sr = &j->res->steps[VSTEP_LOGIN];
		if (job_step_fail(j, VSTEP_LOGIN, &err, NULL) < 0 && j->oauth &&
		    err.code == MS_ERR_AUTH) {
			/* the token service issued a token a moment ago, so a
			 * refused login is the mailbox's permission */
			free(sr->cause); free(sr->fix); free(sr->topic);
			sr->cause = verify_strdup("the token was issued but the mailbox refused "
						  "the login: the app has no access to this "
						  "mailbox");
			sr->fix = verify_strdup(j->proto == PROTO_GRAPH ?
						"grant Mail.ReadWrite (application) with admin consent and "
						"include the mailbox in the app's RBAC for Applications scope" :
						"grant IMAP.AccessAsApp / POP.AccessAsApp with admin consent, "
						"register the app's Exchange service principal "
						"(New-ServicePrincipal) and give it the mailbox: "
						"Add-MailboxPermission -Identity <mailbox> -User <service "
						"principal id> -AccessRights FullAccess");
			sr->topic = verify_strdup("login after token");
		}
		return -1;
	}
	job_step_pass(j, VSTEP_LOGIN, j->proto == PROTO_POP ?
		      verify_printf("%s opened read-only, %zu message%s", j->address, n,
				    n == 1 ? "" : "s") :
		      verify_printf("%s opened read-only", j->address));
	return 0;
}

/* ---- one mailbox ------------------------------------------------------------------ */

static void verify_one(struct engine *e, struct verify_result *res)
{
	struct job j;
	int ok;

	memset(&j, 0, sizeof(j));
	j.e = e;
	j.res = res;
	res->seen_after = -1;
	ok = step_config(&j) == 0 && step_token(&j) == 0 && step_login(&j) == 0;
	if (ok && e->o->send) {
		if (job_step_send(&j) == 0) {
			ok = job_step_seen(&j) == 0;
			job_step_cleanup(&j);
			if (res->steps[VSTEP_CLEANUP].status == VST_FAIL)
				ok = 0;
		} else {
			ok = 0;
		}
	}
	for (int s = 0; s < VSTEP_COUNT; s++)
		step_skip(&j, s, !e->o->send && s >= VSTEP_SEND ?
			  "read-only run (no --send)" : "not run: an earlier step failed");
	res->passed = ok;
	for (int s = 0; s < VSTEP_COUNT; s++)
		if (res->steps[s].status == VST_FAIL)
			res->passed = 0;
	job_session_close(&j, NULL);
	if (j.have_op)
		oauth_params_release(&j.op);
	secret_free(j.password);
	free(j.probe_key);
	if (j.cfg_loaded)
		config_release(&j.cfg);
}

static void *worker(void *arg)
{
	struct engine *e = arg;

	for (;;) {
		size_t i;
		pthread_mutex_lock(&e->mu);
		i = e->next++;
		pthread_mutex_unlock(&e->mu);
		if (i >= e->r->n)
			break;
		verify_one(e, &e->r->results[i]);
		pthread_mutex_lock(&e->mu);
		e->done++;
		if (e->o->progress)
			e->o->progress(e->o->progress_ctx, e->done, e->r->n,
				       &e->r->results[i]);
		pthread_mutex_unlock(&e->mu);
	}
	return NULL;
}

int verify_run(const struct verify_opts *o, struct verify_run *r,
	       struct ms_err *err)
{
	struct engine e;
	pthread_t th[VERIFY_MAX_THREADS];
	struct http_client *hc = NULL;
	struct http_client_params hp = { 0 };
	int nth = o->concurrency > 0 ? o->concurrency : 4, started = 0, rc = -1;

	memset(r, 0, sizeof(*r));
	memset(&e, 0, sizeof(e));
	if (o->n_targets == 0)
		return err_set(err, MS_ERR_USAGE, "no INI files to verify");
	if (nth > VERIFY_MAX_THREADS)
		nth = VERIFY_MAX_THREADS;
	if ((size_t)nth > o->n_targets)
		nth = (int)o->n_targets;
	e.o = o;
	e.r = r;
	r->started = time(NULL);
	r->send = o->send;
	if (!(r->source = verify_strdup(o->source ? o->source : "--ini")) ||
	    !(r->results = calloc(o->n_targets, sizeof(*r->results))))
		return err_nomem(err);
	r->n = o->n_targets;
	for (size_t i = 0; i < r->n; i++) {
		r->results[i].seen_after = -1;
		if (!(r->results[i].ini = verify_strdup(o->targets[i].ini)) ||
		    !(r->results[i].label = verify_strdup(o->targets[i].label ?
							  o->targets[i].label :
							  o->targets[i].ini)) ||
		    (o->targets[i].jobs &&
		     !(r->results[i].jobs = verify_strdup(o->targets[i].jobs))))
			return err_nomem(err);
	}
	if (o->send && o->sender.ini) {
		if (config_load(&e.sender, o->sender.ini, err))
			return err_prefix(err, "sender");
		e.have_sender = 1;
	}
	/* process-wide library set-up before any thread exists: libcurl's
	 * global init (http.c does it lazily) and GMime */
	if (http_client_new(&hc, &hp, err))
		goto out;
	http_client_free(hc);
	message_library_init();
	pthread_mutex_init(&e.mu, NULL);
	pthread_mutex_init(&e.proof_mu, NULL);
	pthread_cond_init(&e.cv, NULL);
	for (started = 0; started < nth; started++)
		if (pthread_create(&th[started], NULL, worker, &e) != 0)
			break;
	if (started == 0)
		worker(&e);   /* no thread could start: do the work here */
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&e.mu);
	pthread_mutex_destroy(&e.proof_mu);
	pthread_cond_destroy(&e.cv);
	r->finished = time(NULL);
	for (size_t i = 0; i < r->n; i++) {
		if (r->results[i].passed)
			r->passed++;
		else
			r->failed++;
	}
	rc = 0;
	if (o->db_path && verify_db_store(o->db_path, r, err))
		rc = -1;
out:
	while (e.proven) {
		struct proven *p = e.proven;
		e.proven = p->next;
		free(p);
	}
	while (e.limits) {
		struct mbx_limits *l = e.limits;
		e.limits = l->next;
		free(l->key);
		free(l);
	}
	if (e.have_sender)
		config_release(&e.sender);
	return rc;
}

void verify_run_release(struct verify_run *r)
{
	for (size_t i = 0; r->results && i < r->n; i++) {
		struct verify_result *m = &r->results[i];
		free(m->ini); free(m->label); free(m->jobs); free(m->mailbox);
		free(m->protocol);
		free(m->probe_id); free(m->probe_subject); free(m->outcome);
		free(m->matched); free(m->warning);
		for (size_t e = 0; e < m->n_events; e++)
			free(m->events[e]);
		free(m->events);
		for (int s = 0; s < VSTEP_COUNT; s++) {
			free(m->steps[s].message);
			free(m->steps[s].cause);
			free(m->steps[s].fix);
			free(m->steps[s].topic);
		}
	}
	free(r->results);
	free(r->source);
	memset(r, 0, sizeof(*r));
}

int verify_exit_code(const struct verify_run *r)
{
	return r->n > 0 && r->failed == 0 ? 0 : 1;
}
