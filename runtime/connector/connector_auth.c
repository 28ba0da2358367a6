/*
 * connector_auth.c - the connector's secrets, tokens and notify mails:
 * the glue between an INI file and secret.h / oauth.h / send.h.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "connector/connector_int.h"
#include "base/log.h"
#include "mail/event.h"
#include "auth/oauth.h"
#include "transport/send.h"
#include "ini/ini.h"
#include "ini/profile.h"
#include "base/mem.h"
#include "auth/seal.h"
#include "auth/secret.h"

struct connector_oauth {
	struct oauth_params p;
};

static int token_cb(void *ctx, int force_refresh, char **token,
		    struct ms_err *err)
{
	struct connector_oauth *o = ctx;
	time_t expires;

	return oauth_get_token(&o->p, force_refresh, token, &expires, err);
}

int connector_oauth_setup(const struct connector_run *r, const struct config *c,
			  struct mailbox_params *p, struct connector_oauth **out,
			  struct ms_err *err)
{
	struct connector_oauth *o;

	*out = NULL;
	if (profile_oauth_check(c, err))
		return -1;
	if (profile_legacy_secret(c, 1))
		return err_set(err, MS_ERR_CONFIG,
			       "%s: [OAuth] ClientSecret is not a value mailshift can "
			       "read: seal it with 'mailshift --credentials'", c->path);
	o = calloc(1, sizeof(*o));
	if (!o)
		return err_nomem(err);
	if (profile_oauth_params(c, c->protocol, &o->p, err)) {
		free(o);
		return err_prefix(err, "%s", c->path);
	}
	o->p.verbose = r->verbose;
	p->token_fn = token_cb;
	p->token_ctx = o;
	*out = o;
	return 0;
}

void connector_oauth_free(struct connector_oauth *o)
{
	if (!o)
		return;
	oauth_params_release(&o->p);
	free(o);
}

/* Load an INI for the OAuth commands: [OAuth] must be complete. */
static int load_oauth(const char *ini_path, struct config *c,
		      struct oauth_params *p, struct ms_err *err)
{
	enum mail_protocol proto;

	if (config_load(c, ini_path, err))
		return -1;
	if (profile_oauth_check(c, err))
		return -1;
	proto = c->protocol == PROTO_IMAP || c->protocol == PROTO_POP ?
		c->protocol : PROTO_GRAPH;
	if (profile_oauth_params(c, proto, p, err))
		return err_prefix(err, "%s", ini_path);
	return 0;
}

int connector_oauth_login(const char *ini_path, connector_prompt_fn prompt,
			  void *ctx, struct ms_err *err)
{
	struct config c = { 0 };
	struct oauth_params p = { 0 };
	int rc = -1;

	if (load_oauth(ini_path, &c, &p, err))
		goto out;
	if (c.oauth_flow != FLOW_DEVICE_CODE) {
		err_set(err, MS_ERR_CONFIG,
			"%s: --oauth-login signs a user in: set [OAuth] Flow=DeviceCode "
			"(client credentials need no sign-in)", ini_path);
		goto out;
	}
	rc = oauth_device_login(&p, prompt, ctx, err);
out:
	oauth_params_release(&p);
	config_release(&c);
	return rc;
}

int connector_oauth_renew(const char *ini_path, struct ms_err *err)
{
	struct config c = { 0 };
	struct oauth_params p = { 0 };
	int rc = -1;

	if (load_oauth(ini_path, &c, &p, err))
		goto out;
	if (c.oauth_flow == FLOW_DEVICE_CODE)
		rc = oauth_renew_silent(&p, err);
	else {
		/* app-only: nothing to keep alive; prove the credential works */
		char *token = NULL;
		time_t exp;
		rc = oauth_get_token(&p, 1, &token, &exp, err);
		oauth_token_free(token);
	}
out:
	oauth_params_release(&p);
	config_release(&c);
	return rc;
}

/* ---- notify mails ([Audit] NotifyOnAccepts / NotifyOnRejects) ---- */

#define NOTIFY_DEFAULT_ACCEPT_SUBJECT "Accepted: [[SUBJECT]]"
#define NOTIFY_DEFAULT_ACCEPT_BODY \
	"Your message \"[[SUBJECT]]\" was accepted.\n"
#define NOTIFY_DEFAULT_REJECT_SUBJECT "Rejected: [[SUBJECT]]"
#define NOTIFY_DEFAULT_REJECT_BODY \
	"Your message \"[[SUBJECT]]\" was rejected: [[REASON]]\n"

static int notify_send(const struct connector_run *r, const struct config *c,
		       const struct event_fields *f, const char *subject_tmpl,
		       const char *body_tmpl, const char *to_tmpl,
		       struct ms_err *err)
{
	struct send_params sp = { 0 };
	struct send_message m = { 0 };
	struct connector_oauth *o = NULL;
	struct mailbox_params mp = { 0 };
	char *subject = NULL, *body = NULL, *to = NULL, *password = NULL;
	int graph = profile_notify_graph(c);
	int rc = -1;

	if (event_substitute(subject_tmpl, f, SUBST_LINE, &subject, err) ||
	    event_substitute(body_tmpl, f, SUBST_TEXT, &body, err) ||
	    event_substitute(to_tmpl, f, SUBST_LINE, &to, err))
		goto out;
	if (!graph && !c->notify_server) {
		err_set(err, MS_ERR_CONFIG, "%s: [Notify] Server is not set", c->path);
		goto out;
	}
	profile_notify_params(c, &sp);
	sp.verbose = r->verbose;
	if (graph || c->notify_auth == AUTH_OAUTH2) {
		struct config copy = *c;
		/* Graph needs a Graph token; SMTP XOAUTH2 an Outlook one */
		copy.protocol = graph ? PROTO_GRAPH : PROTO_IMAP;
		if (connector_oauth_setup(r, &copy, &mp, &o, err))
			goto out;
		sp.auth = SEND_AUTH_XOAUTH2;
		sp.token_fn = mp.token_fn;
		sp.token_ctx = mp.token_ctx;
	} else if (c->notify_password) {
		if (profile_secret_resolve(c->notify_password, "[Notify] Password",
					   c->path, &password, err))
			goto out;
		sp.auth = SEND_AUTH_BASIC;
		sp.password = password;
	}
	m.from = c->notify_from ? c->notify_from : sp.user;
	m.to = to;
	m.subject = subject;
	m.body = body;
	rc = send_mail(&sp, &m, err);
out:
	connector_oauth_free(o);
	secret_free(password);
	free(subject);
	free(body);
	free(to);
	return rc;
}

void connector_notify(const struct connector_run *r, const struct config *c,
		      const struct message *msg, const struct rule_result *res)
{
	struct event_fields f;

	rules_event_fields(msg, res, &f);
	connector_notify_fields(r, c, res->matched, &f);
}

void connector_notify_fields(const struct connector_run *r, const struct config *c,
			     int matched, const struct event_fields *f)
{
	struct ms_err err = MS_ERR_INIT;
	int rc;

	if (matched ? !c->notify_on_accepts : !c->notify_on_rejects)
		return;
	if (matched)
		rc = notify_send(r, c, f,
			c->notify_accept_subject ? c->notify_accept_subject
						 : NOTIFY_DEFAULT_ACCEPT_SUBJECT,
			c->notify_accept_body ? c->notify_accept_body
					      : NOTIFY_DEFAULT_ACCEPT_BODY,
			c->notify_accept_to ? c->notify_accept_to : "[[SENDER]]", &err);
	else
		rc = notify_send(r, c, f,
			c->notify_reject_subject ? c->notify_reject_subject
						 : NOTIFY_DEFAULT_REJECT_SUBJECT,
			c->notify_reject_body ? c->notify_reject_body
					      : NOTIFY_DEFAULT_REJECT_BODY,
			c->notify_reject_to ? c->notify_reject_to : "[[SENDER]]", &err);
	if (rc)
		log_warnx("notify mail not sent: %s", err.msg);
}

int connector_store_credentials(const char *ini_path, const char *user,
				const char *password, const char *opcon_user,
				const char *opcon_password, struct ms_err *err)
{
	struct ini *ini = NULL;
	char *sealed_pw = NULL, *sealed_opcon = NULL;
	int rc = -1;

	if (!user && !password && !opcon_user && !opcon_password)
		return err_set(err, MS_ERR_USAGE,
			       "--credentials needs at least one of -user:, -password:, "
			       "-opconuser:, -opconpassword:, -clientsecret:");
	if (ini_load(&ini, ini_path, err))
		return -1;
	if (password && seal_value(password, &sealed_pw, err))
		goto out;
	if (opcon_password && seal_value(opcon_password, &sealed_opcon, err))
		goto out;
	if ((user && ini_set(ini, "Mail", "User", user, err)) ||
	    (sealed_pw && ini_set(ini, "Mail", "Password", sealed_pw, err)) ||
	    (opcon_user && ini_set(ini, "General", "OpConUser", opcon_user, err)) ||
	    (sealed_opcon &&
	     ini_set(ini, "General", "OpConUserPassword", sealed_opcon, err)) ||
	    ini_save(ini, ini_path, err))
		goto out;
	rc = 0;
out:
	free(sealed_pw);
	free(sealed_opcon);
	ini_free(ini);
	return rc;
}

int connector_store_client_secret(const char *ini_path, const char *secret,
				  struct ms_err *err)
{
	struct ini *ini = NULL;
	char *sealed = NULL;
	int rc = -1;

	if (!secret || !*secret)
		return err_set(err, MS_ERR_USAGE, "-clientsecret: needs a value");
	if (ini_load(&ini, ini_path, err))
		return -1;
	if (seal_value(secret, &sealed, err) ||
	    ini_set(ini, "OAuth", "ClientSecret", sealed, err) ||
	    ini_save(ini, ini_path, err))
		goto out;
	rc = 0;
out:
	free(sealed);
	ini_free(ini);
	return rc;
}
