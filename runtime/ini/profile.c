/*
 * profile.c - the INI -> connection decisions (see profile.h).
 */
#include "ini/profile.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/secret.h"
#include "base/mem.h"

static int unset(const char *s)
{
	return !s || !*s;
}

static const char *first_set(const char *a, const char *b)
{
	return !unset(a) ? a : !unset(b) ? b : NULL;
}

const char *profile_ca_file(const struct config *c, enum profile_peer peer)
{
	switch (peer) {
	case PROFILE_PEER_MAILBOX:
		if (profile_protocol(c) == PROTO_GRAPH)
			return first_set(c->oauth_ca_file, c->ca_file);
		return first_set(c->ca_file, NULL);
	case PROFILE_PEER_SMTP:
		return first_set(c->ca_file, c->oauth_ca_file);
	case PROFILE_PEER_MICROSOFT:
	default:
		return first_set(c->oauth_ca_file, c->ca_file);
	}
}

enum mail_protocol profile_protocol(const struct config *c)
{
	return c->protocol == PROTO_MSAL ? PROTO_GRAPH : c->protocol;
}

int profile_uses_oauth(const struct config *c)
{
	return c->auth == AUTH_OAUTH2 || profile_protocol(c) == PROTO_GRAPH;
}

const char *profile_mailbox_user(const struct config *c)
{
	return profile_uses_oauth(c) && !unset(c->oauth_mailbox) ? c->oauth_mailbox
								 : c->user;
}

int profile_oauth_complete(const struct config *c)
{
	return profile_oauth_check(c, NULL) == 0;
}

int profile_oauth_check(const struct config *c, struct ms_err *err)
{
	const char *path = c->path ? c->path : "configuration";

	if (!c->has_oauth)
		return err_set(err, MS_ERR_CONFIG,
			       "%s: AuthMethod=OAuth2 needs an [OAuth] section", path);
	if (unset(c->oauth_tenant))
		return err_set(err, MS_ERR_CONFIG, "%s: [OAuth] TenantId is not set",
			       path);
	if (unset(c->oauth_client_id))
		return err_set(err, MS_ERR_CONFIG, "%s: [OAuth] ClientId is not set",
			       path);
	if (c->oauth_flow != FLOW_DEVICE_CODE && unset(c->oauth_client_secret) &&
	    unset(c->oauth_cert_file))
		return err_set(err, MS_ERR_CONFIG,
			       "%s: [OAuth] needs ClientSecret or CertificateFile "
			       "(or Flow=DeviceCode)", path);
	return 0;
}

const char *profile_legacy_secret(const struct config *c, int oauth)
{
	const char *ref = oauth ? c->oauth_client_secret : c->password;

	if (unset(ref) || secret_kind(ref) != SECRET_LEGACY)
		return NULL;
	return oauth ? "[OAuth] ClientSecret" : "[Mail] Password";
}

int profile_secret_resolve(const char *ref, const char *what, const char *path,
			   char **plain, struct ms_err *err)
{
	*plain = NULL;
	if (secret_kind(ref) == SECRET_LEGACY)
		return err_set(err, MS_ERR_CONFIG,
			       "%s: %s holds a value encrypted by smartemail.exe, which "
			       "mailshift cannot read: store it again with "
			       "'mailshift --credentials'", path, what);
	if (secret_resolve(ref, plain, err))
		return err_prefix(err, "%s: %s", path, what);
	return 0;
}

void profile_mailbox_params(const struct config *c, struct mailbox_params *p)
{
	memset(p, 0, sizeof(*p));
	p->protocol = profile_protocol(c);
	p->host = c->server;
	p->tls = mailbox_tls_choose(c->tls_min, c->starttls_set ? c->starttls : -1,
				    c->port);
	p->port = c->port ? c->port :
		config_default_port(p->protocol, p->tls == TLSM_IMPLICIT);
	p->tls_min = c->tls_min;
	p->verify_peer = !c->self_signed;
	p->ca_file = profile_ca_file(c, PROFILE_PEER_MAILBOX);
	p->user = profile_mailbox_user(c);
	p->folder = !unset(c->folder) ? c->folder : "INBOX";
	p->graph_endpoint = !unset(c->graph_endpoint) ? c->graph_endpoint
						       : GRAPH_DEFAULT_ENDPOINT;
}

int profile_oauth_params(const struct config *cfg, enum mail_protocol proto,
			 struct oauth_params *p, struct ms_err *err)
{
	memset(p, 0, sizeof(*p));
	if (!cfg->has_oauth)
		return err_set(err, MS_ERR_CONFIG, "%s: no [OAuth] section",
			       cfg->path ? cfg->path : "configuration");
	if (unset(cfg->oauth_tenant))
		return err_set(err, MS_ERR_CONFIG, "%s: [OAuth] TenantId is missing",
			       cfg->path ? cfg->path : "configuration");
	if (unset(cfg->oauth_client_id))
		return err_set(err, MS_ERR_CONFIG, "%s: [OAuth] ClientId is missing",
			       cfg->path ? cfg->path : "configuration");
	p->authority = unset(cfg->oauth_authority) ? OAUTH_DEFAULT_AUTHORITY
						   : cfg->oauth_authority;
	p->tenant = cfg->oauth_tenant;
	p->client_id = cfg->oauth_client_id;
	p->flow = cfg->oauth_flow == FLOW_DEVICE_CODE ? FLOW_DEVICE_CODE
						      : FLOW_CLIENT_CREDENTIALS;
	p->cert_file = unset(cfg->oauth_cert_file) ? NULL : cfg->oauth_cert_file;
	p->user = unset(cfg->oauth_mailbox) ? cfg->user : cfg->oauth_mailbox;
	p->ca_file = profile_ca_file(cfg, PROFILE_PEER_MICROSOFT);
	if (jwt_alg_parse(cfg->oauth_assertion_alg, &p->assertion_alg, err))
		return err_prefix(err, "%s: [OAuth] AssertionAlgorithm",
				  cfg->path ? cfg->path : "configuration");
	if (!(p->owned_scope = strdup(unset(cfg->oauth_scope)
				      ? oauth_scope_default(proto, p->flow)
				      : cfg->oauth_scope)))
		return err_nomem(err);
	p->scope = p->owned_scope;
	if (!unset(cfg->oauth_client_secret) && !p->cert_file) {
		if (secret_resolve(cfg->oauth_client_secret, &p->owned_secret, err)) {
			oauth_params_release(p);
			return err_prefix(err, "%s: [OAuth] ClientSecret",
					  cfg->path ? cfg->path : "configuration");
		}
		p->client_secret = p->owned_secret;
	}
	if (p->flow == FLOW_CLIENT_CREDENTIALS && !p->client_secret && !p->cert_file) {
		oauth_params_release(p);
		return err_set(err, MS_ERR_CONFIG,
			       "%s: [OAuth] needs ClientSecret or CertificateFile for the "
			       "client credentials flow", cfg->path ? cfg->path : "configuration");
	}
	if (p->flow == FLOW_DEVICE_CODE && unset(p->user)) {
		oauth_params_release(p);
		return err_set(err, MS_ERR_CONFIG,
			       "%s: [OAuth] Mailbox (or [Mail] User) is needed for the "
			       "device code flow", cfg->path ? cfg->path : "configuration");
	}
	return 0;
}


int profile_notify_graph(const struct config *c)
{
	return c->notify_transport && strcasecmp(c->notify_transport, "graph") == 0;
}

void profile_notify_params(const struct config *c, struct send_params *sp)
{
	int graph = profile_notify_graph(c);

	memset(sp, 0, sizeof(*sp));
	sp->transport = graph ? SEND_GRAPH : SEND_SMTP;
	sp->host = c->notify_server;
	sp->port = c->notify_port;
	sp->tls = c->notify_implicit_tls ? SEND_TLS_IMPLICIT : SEND_TLS_STARTTLS;
	sp->user = c->notify_user ? c->notify_user : c->user;
	sp->ca_file = profile_ca_file(c, graph ? PROFILE_PEER_MICROSOFT
					       : PROFILE_PEER_SMTP);
	sp->graph_endpoint = !unset(c->graph_endpoint) ? c->graph_endpoint
							: GRAPH_DEFAULT_ENDPOINT;
}

int profile_is_microsoft_host(const char *host)
{
	static const char *const exact[] = {
		"outlook.office365.com", "outlook.office.com", "smtp.office365.com",
		"imap-mail.outlook.com", "pop-mail.outlook.com",
		"smtp-mail.outlook.com", "outlook.com", "office365.com",
		"outlook.office365.us", "outlook.office.de", "partner.outlook.cn",
		NULL
	};
	static const char *const suffixes[] = {
		".outlook.com", ".office365.com", ".office.com", ".office365.us",
		".outlook.cn", ".partner.outlook.cn", ".outlook.de", NULL
	};
	char h[256];
	size_t n, i;

	if (!host)
		return 0;
	while (*host == ' ' || *host == '\t')
		host++;
	n = strcspn(host, ":/ \t");
	if (n == 0 || n >= sizeof(h))
		return 0;
	for (i = 0; i < n; i++)
		h[i] = (char)tolower((unsigned char)host[i]);
	h[n] = '\0';
	if (n > 1 && h[n - 1] == '.')
		h[--n] = '\0';
	for (i = 0; exact[i]; i++)
		if (strcmp(h, exact[i]) == 0)
			return 1;
	for (i = 0; suffixes[i]; i++) {
		size_t m = strlen(suffixes[i]);
		if (n > m && strcmp(h + n - m, suffixes[i]) == 0)
			return 1;
	}
	return 0;
}
