/*
 * test_profile.c - the INI -> connection decisions (ini/profile.h): CA and
 * endpoint precedence, "OAuth complete", the legacy-secret refusal, and
 * that every consumer of one INI (mailbox, token request, notify sender,
 * the notify check of the audit) comes to the same answer.
 */
#include <stdlib.h>
#include <string.h>

#include "ini/config.h"
#include "ini/ini.h"
#include "ini/profile.h"
#include "tap.h"
#include "config_text.h"

#define LEGACY "q83vEjRWeJCrze8SNFZ4kA=="

static int same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Which CA file wins, for each peer, with [Mail] CAFile, [OAuth] CAFile,
 * both or neither; and every struct the profile fills agrees with it. */
static void test_ca_precedence(void)
{
	static const struct {
		const char *mail, *oauth;
		enum mail_protocol proto;
		const char *mailbox, *smtp, *microsoft;
	} t[] = {
		{ NULL, NULL, PROTO_IMAP, NULL, NULL, NULL },
		{ "/m.pem", NULL, PROTO_IMAP, "/m.pem", "/m.pem", "/m.pem" },
		{ NULL, "/o.pem", PROTO_IMAP, NULL, "/o.pem", "/o.pem" },
		{ "/m.pem", "/o.pem", PROTO_IMAP, "/m.pem", "/m.pem", "/o.pem" },
		{ "/m.pem", "/o.pem", PROTO_POP, "/m.pem", "/m.pem", "/o.pem" },
		{ NULL, "/o.pem", PROTO_POP, NULL, "/o.pem", "/o.pem" },
		{ "/m.pem", NULL, PROTO_GRAPH, "/m.pem", "/m.pem", "/m.pem" },
		{ NULL, "/o.pem", PROTO_GRAPH, "/o.pem", "/o.pem", "/o.pem" },
		{ "/m.pem", "/o.pem", PROTO_GRAPH, "/o.pem", "/m.pem", "/o.pem" },
		{ "/m.pem", "/o.pem", PROTO_MSAL, "/o.pem", "/m.pem", "/o.pem" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct config c;
		struct mailbox_params mp;
		struct send_params sp;
		struct oauth_params op;
		struct ms_err err = MS_ERR_INIT;
		const char *name = config_protocol_name(t[i].proto);

		memset(&c, 0, sizeof(c));
		c.path = "job.ini";
		c.protocol = t[i].proto;
		c.auth = AUTH_OAUTH2;
		c.user = "ops@contoso.test";
		c.server = "mail.contoso.test";
		c.ca_file = (char *)t[i].mail;
		c.oauth_ca_file = (char *)t[i].oauth;
		c.has_oauth = 1;
		c.oauth_tenant = "t1";
		c.oauth_client_id = "c1";
		c.oauth_cert_file = "/app.pem";
		ok(same(profile_ca_file(&c, PROFILE_PEER_MAILBOX), t[i].mailbox),
		   "%zu %s: mailbox CA %s", i, name, t[i].mailbox ? t[i].mailbox : "(system)");
		ok(same(profile_ca_file(&c, PROFILE_PEER_SMTP), t[i].smtp),
		   "%zu %s: SMTP CA %s", i, name, t[i].smtp ? t[i].smtp : "(system)");
		ok(same(profile_ca_file(&c, PROFILE_PEER_MICROSOFT), t[i].microsoft),
		   "%zu %s: token service CA %s", i, name,
		   t[i].microsoft ? t[i].microsoft : "(system)");

		/* the structs built from c use the same rule */
		profile_mailbox_params(&c, &mp);
		ok(same(mp.ca_file, t[i].mailbox), "%zu %s: mailbox params agree", i, name);
		ok(profile_oauth_params(&c, c.protocol, &op, &err) == 0 &&
		   same(op.ca_file, t[i].microsoft), "%zu %s: token request agrees (%s)",
		   i, name, err.msg);
		oauth_params_release(&op);
		c.notify_server = "smtp.contoso.test";
		c.notify_transport = "smtp";
		profile_notify_params(&c, &sp);
		ok(sp.transport == SEND_SMTP && same(sp.ca_file, t[i].smtp),
		   "%zu %s: SMTP notify agrees", i, name);
		c.notify_transport = "graph";
		profile_notify_params(&c, &sp);
		ok(sp.transport == SEND_GRAPH && same(sp.ca_file, t[i].microsoft),
		   "%zu %s: Graph notify agrees with the token service", i, name);
		/* a Graph mailbox and its token come from one CA rule */
		if (mp.protocol == PROTO_GRAPH)
			ok(same(mp.ca_file, op.ca_file), "%zu %s: Graph mailbox and token "
			   "service trust the same CA", i, name);
	}
}

/* One INI read the way the connector and mailshift-verify read it: the
 * same mailbox parameters, TLS settings, CA and endpoint, for IMAP, POP
 * and Graph. */
static void test_mailbox_params(void)
{
	static const struct {
		const char *text;
		enum mail_protocol proto;
		const char *host, *user, *ca, *folder, *endpoint;
		int port, verify_peer;
		enum tls_mode tls;
		enum tls_level tls_min;
	} t[] = {
		{ "[Mail]\nUser=a@contoso.test\nServer=imap.contoso.test\n"
		  "EmailProtocol=IMAP\nSecurityProtocol=TLS1_2\nCAFile=/m.pem\n"
		  "SelfSignedCertificate=False\n[OAuth]\nCAFile=/o.pem\n",
		  PROTO_IMAP, "imap.contoso.test", "a@contoso.test", "/m.pem", "INBOX",
		  GRAPH_DEFAULT_ENDPOINT, 993, 1, TLSM_IMPLICIT, TLSL_TLS1_2 },
		{ "[Mail]\nUser=a@contoso.test\nServer=pop.contoso.test\n"
		  "EmailProtocol=POP3\nPort=110\nFolder=Jobs\n",
		  PROTO_POP, "pop.contoso.test", "a@contoso.test", NULL, "Jobs",
		  GRAPH_DEFAULT_ENDPOINT, 110, 0, TLSM_STARTTLS, TLSL_UNSET },
		{ "[Mail]\nUser=a@contoso.test\nServer=imap.contoso.test\n"
		  "EmailProtocol=IMAP\nPort=2143\nStartTLS=False\n"
		  "SelfSignedCertificate=False\n",
		  PROTO_IMAP, "imap.contoso.test", "a@contoso.test", NULL, "INBOX",
		  GRAPH_DEFAULT_ENDPOINT, 2143, 1, TLSM_IMPLICIT, TLSL_UNSET },
		{ "[Mail]\nUser=a@contoso.test\nEmailProtocol=GRAPH\nCAFile=/m.pem\n"
		  "SelfSignedCertificate=False\n[OAuth]\nTenantId=t\nClientId=c\n"
		  "Mailbox=jobs@contoso.test\nCAFile=/o.pem\n"
		  "GraphEndpoint=https://graph.microsoft.us\n",
		  PROTO_GRAPH, NULL, "jobs@contoso.test", "/o.pem", "INBOX",
		  "https://graph.microsoft.us", 443, 1, TLSM_IMPLICIT, TLSL_UNSET },
		{ "[Mail]\nUser=a@contoso.test\nEmailProtocol=MSAL\n"
		  "[OAuth]\nTenantId=t\nClientId=c\nCAFile=/o.pem\n",
		  PROTO_GRAPH, NULL, "a@contoso.test", "/o.pem", "INBOX",
		  GRAPH_DEFAULT_ENDPOINT, 443, 0, TLSM_IMPLICIT, TLSL_UNSET },
		/* [OAuth] alone does not make an IMAP login an OAuth one */
		{ "[Mail]\nUser=a@contoso.test\nServer=imap.contoso.test\n"
		  "EmailProtocol=IMAP\n[OAuth]\nTenantId=t\nClientId=c\n"
		  "Mailbox=other@contoso.test\n",
		  PROTO_IMAP, "imap.contoso.test", "a@contoso.test", NULL, "INBOX",
		  GRAPH_DEFAULT_ENDPOINT, 993, 0, TLSM_IMPLICIT, TLSL_UNSET },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct config c;
		struct mailbox_params p;
		struct ms_err err = MS_ERR_INIT;
		if (!ok(from_text(&c, t[i].text, &err) == 0, "%zu: parses (%s)", i, err.msg))
			continue;
		profile_mailbox_params(&c, &p);
		ok(p.protocol == t[i].proto, "%zu: protocol %s", i,
		   config_protocol_name(t[i].proto));
		ok(same(p.host, t[i].host), "%zu: host", i);
		is(p.user, t[i].user, "%zu: user", i);
		ok(same(p.ca_file, t[i].ca), "%zu: CA %s", i, t[i].ca ? t[i].ca : "(system)");
		is(p.folder, t[i].folder, "%zu: folder", i);
		is(p.graph_endpoint, t[i].endpoint, "%zu: Graph endpoint", i);
		is_int(p.port, t[i].port, "%zu: port", i);
		is_int(p.tls, t[i].tls, "%zu: TLS mode %s", i, mailbox_tls_mode_name(t[i].tls));
		is_int(p.tls_min, t[i].tls_min, "%zu: minimum TLS level", i);
		is_int(p.verify_peer, t[i].verify_peer, "%zu: peer verification", i);
		ok(!p.password && !p.token_fn && !p.since && !p.read_only,
		   "%zu: credentials and run settings left to the caller", i);
		config_release(&c);
	}
}

/* "[OAuth] complete": one answer for the connector (profile_oauth_check),
 * verify and the audit (profile_oauth_complete) and the notify check
 * (config_notify_problem). */
static void test_oauth_complete(void)
{
	static const struct {
		const char *tenant, *client, *secret, *cert;
		enum oauth_flow flow;
		int has, complete;
		const char *missing;
	} t[] = {
		{ NULL, NULL, NULL, NULL, FLOW_UNSET, 0, 0, "needs an [OAuth] section" },
		{ NULL, "c", "s", NULL, FLOW_UNSET, 1, 0, "TenantId" },
		{ "t", NULL, "s", NULL, FLOW_UNSET, 1, 0, "ClientId" },
		{ "t", "c", NULL, NULL, FLOW_UNSET, 1, 0, "ClientSecret or CertificateFile" },
		{ "t", "c", NULL, NULL, FLOW_CLIENT_CREDENTIALS, 1, 0, "ClientSecret" },
		{ "t", "c", "s", NULL, FLOW_UNSET, 1, 1, NULL },
		{ "t", "c", NULL, "/c.pem", FLOW_UNSET, 1, 1, NULL },
		{ "t", "c", NULL, NULL, FLOW_DEVICE_CODE, 1, 1, NULL },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct config c;
		struct ms_err err = MS_ERR_INIT;
		int rc;

		memset(&c, 0, sizeof(c));
		c.path = "job.ini";
		c.has_oauth = t[i].has;
		c.oauth_tenant = (char *)t[i].tenant;
		c.oauth_client_id = (char *)t[i].client;
		c.oauth_client_secret = (char *)t[i].secret;
		c.oauth_cert_file = (char *)t[i].cert;
		c.oauth_flow = t[i].flow;
		rc = profile_oauth_check(&c, &err);
		is_int(profile_oauth_complete(&c), t[i].complete, "%zu: complete", i);
		is_int(rc == 0, t[i].complete, "%zu: the check agrees", i);
		if (t[i].missing)
			ok(strstr(err.msg, "job.ini: ") == err.msg &&
			   strstr(err.msg, t[i].missing), "%zu: names %s: %s", i,
			   t[i].missing, err.msg);
		c.notify_on_accepts = 1;
		c.notify_transport = "graph";
		is_int(config_notify_problem(&c) == NULL, t[i].complete,
		       "%zu: the notify check agrees", i);
	}
}

static void test_uses_oauth(void)
{
	struct config c;

	memset(&c, 0, sizeof(c));
	c.user = "a@contoso.test";
	c.oauth_mailbox = "jobs@contoso.test";
	c.has_oauth = 1;
	c.protocol = PROTO_IMAP;
	ok(!profile_uses_oauth(&c), "IMAP, [OAuth] but no AuthMethod: basic");
	is(profile_mailbox_user(&c), "a@contoso.test", "basic: [Mail] User");
	c.auth = AUTH_OAUTH2;
	ok(profile_uses_oauth(&c), "AuthMethod=OAuth2: OAuth");
	is(profile_mailbox_user(&c), "jobs@contoso.test", "OAuth: [OAuth] Mailbox");
	c.auth = AUTH_UNSET;
	c.protocol = PROTO_MSAL;
	ok(profile_uses_oauth(&c) && profile_protocol(&c) == PROTO_GRAPH,
	   "MSAL: Graph with OAuth");
	c.protocol = PROTO_POP;
	c.auth = AUTH_BASIC;
	ok(!profile_uses_oauth(&c), "POP basic");
}

static void test_legacy(void)
{
	struct config c;
	char *plain = (char *)"untouched";
	struct ms_err err = MS_ERR_INIT;

	memset(&c, 0, sizeof(c));
	c.password = LEGACY;
	c.oauth_client_secret = "env:X";
	is(profile_legacy_secret(&c, 0), "[Mail] Password", "legacy password");
	ok(profile_legacy_secret(&c, 1) == NULL, "readable client secret");
	c.password = "env:X";
	c.oauth_client_secret = LEGACY;
	c.oauth_cert_file = "/c.pem";
	ok(profile_legacy_secret(&c, 0) == NULL, "readable password");
	is(profile_legacy_secret(&c, 1), "[OAuth] ClientSecret",
	   "legacy client secret, even beside a certificate");
	ok(profile_secret_resolve(LEGACY, "[Mail] Password", "job.ini", &plain, &err) < 0 &&
	   err.code == MS_ERR_CONFIG && !plain, "legacy refused");
	ok(strstr(err.msg, "job.ini: [Mail] Password holds a value encrypted by "
		  "smartemail.exe") == err.msg && !strstr(err.msg, "q83v"),
	   "names file and key, not the value: %s", err.msg);
	setenv("MS_TEST_PROFILE_PW", "pw-from-env", 1);
	err_clear(&err);
	ok(profile_secret_resolve("env:MS_TEST_PROFILE_PW", "[Mail] Password", "job.ini",
				  &plain, &err) == 0 && strcmp(plain, "pw-from-env") == 0,
	   "env: resolved");
	free(plain);
}

static void test_defaults(void)
{
	struct config c;
	struct ms_err err = MS_ERR_INIT;

	ok(from_text(&c, "[Mail]\nUser=a\n[OAuth]\nTenantId=t\n", &err) == 0,
	   "parses");
	is(c.graph_endpoint, GRAPH_DEFAULT_ENDPOINT, "[OAuth] GraphEndpoint default");
	is(c.oauth_authority, OAUTH_DEFAULT_AUTHORITY, "[OAuth] Authority default");
	config_release(&c);
	ok(profile_is_microsoft_host("outlook.office365.com") &&
	   profile_is_microsoft_host("OUTLOOK.Office365.com.") &&
	   profile_is_microsoft_host("eur.outlook.com:993") &&
	   !profile_is_microsoft_host("mail.contoso.test") &&
	   !profile_is_microsoft_host(NULL), "Microsoft hosts");
}

/* the token request built from [OAuth] */
static void test_oauth_params(void)
{
	struct config cfg;
	struct oauth_params p;
	struct ms_err err = MS_ERR_INIT;

	memset(&cfg, 0, sizeof(cfg));
	cfg.path = "job.ini";
	ok(profile_oauth_params(&cfg, PROTO_IMAP, &p, &err) < 0 &&
	   strstr(err.msg, "no [OAuth] section"), "no [OAuth] section");
	cfg.has_oauth = 1;
	err_clear(&err);
	ok(profile_oauth_params(&cfg, PROTO_IMAP, &p, &err) < 0, "no tenant");
	is(err.msg, "job.ini: [OAuth] TenantId is missing", "names the key");
	cfg.oauth_tenant = "t1";
	cfg.oauth_client_id = "c1";
	err_clear(&err);
	ok(profile_oauth_params(&cfg, PROTO_IMAP, &p, &err) < 0 &&
	   strstr(err.msg, "ClientSecret or CertificateFile"), "no credential: %s", err.msg);

	setenv("MS_TEST_CS", "CANARY-from-env", 1);
	cfg.oauth_client_secret = "env:MS_TEST_CS";
	cfg.user = "ops@contoso.test";
	cfg.ca_file = "/etc/mail-ca.pem";
	err_clear(&err);
	ok(profile_oauth_params(&cfg, PROTO_IMAP, &p, &err) == 0, "secret from env (%s)",
	   err.msg);
	is(p.client_secret, "CANARY-from-env", "secret resolved");
	is(p.authority, OAUTH_DEFAULT_AUTHORITY, "default authority");
	is(p.scope, "https://outlook.office365.com/.default", "IMAP default scope");
	is(p.ca_file, "/etc/mail-ca.pem", "CA file falls back to [Mail] CAFile");
	is(p.user, "ops@contoso.test", "mailbox defaults to [Mail] User");
	ok(p.flow == FLOW_CLIENT_CREDENTIALS && p.assertion_alg == JWT_PS256, "defaults");
	oauth_params_release(&p);
	ok(p.client_secret == NULL && p.owned_secret == NULL, "release clears the secret");

	cfg.protocol = PROTO_MSAL;
	cfg.oauth_scope = "https://graph.microsoft.com/.default";
	cfg.oauth_mailbox = "alice@contoso.test";
	cfg.oauth_ca_file = "/etc/oauth-ca.pem";
	cfg.oauth_authority = "https://127.0.0.1:1";
	err_clear(&err);
	ok(profile_oauth_params(&cfg, PROTO_MSAL, &p, &err) == 0 &&
	   strcmp(p.scope, "https://graph.microsoft.com/.default") == 0 &&
	   strcmp(p.user, "alice@contoso.test") == 0 &&
	   strcmp(p.ca_file, "/etc/oauth-ca.pem") == 0 &&
	   strcmp(p.authority, "https://127.0.0.1:1") == 0, "explicit [OAuth] keys win");
	oauth_params_release(&p);

	cfg.oauth_client_secret = "q83vEjRWeJCrze8SNFZ4kA==";
	err_clear(&err);
	ok(profile_oauth_params(&cfg, PROTO_IMAP, &p, &err) < 0 &&
	   strstr(err.msg, "job.ini: [OAuth] ClientSecret: ") &&
	   strstr(err.msg, "needs --credentials again"), "legacy secret: %s", err.msg);

	cfg.oauth_client_secret = NULL;
	cfg.oauth_cert_file = "/etc/app.pem";
	cfg.oauth_assertion_alg = "RS256";
	err_clear(&err);
	ok(profile_oauth_params(&cfg, PROTO_POP, &p, &err) == 0 &&
	   p.cert_file && p.assertion_alg == JWT_RS256 && !p.client_secret,
	   "certificate, RS256");
	oauth_params_release(&p);
	cfg.oauth_assertion_alg = "HS256";
	err_clear(&err);
	ok(profile_oauth_params(&cfg, PROTO_POP, &p, &err) < 0 &&
	   strstr(err.msg, "HS256"), "bad algorithm refused");

	cfg.oauth_assertion_alg = NULL;
	cfg.oauth_cert_file = NULL;
	cfg.oauth_flow = FLOW_DEVICE_CODE;
	cfg.oauth_scope = NULL;
	err_clear(&err);
	ok(profile_oauth_params(&cfg, PROTO_POP, &p, &err) == 0 &&
	   strcmp(p.scope, "https://outlook.office.com/POP.AccessAsUser.All offline_access") == 0,
	   "device code without a secret: delegated POP scope");
	oauth_params_release(&p);
	cfg.oauth_mailbox = NULL;
	cfg.user = NULL;
	err_clear(&err);
	ok(profile_oauth_params(&cfg, PROTO_POP, &p, &err) < 0 && strstr(err.msg, "Mailbox"),
	   "device code needs a mailbox");
}

int main(void)
{
	test_ca_precedence();
	test_mailbox_params();
	test_oauth_complete();
	test_uses_oauth();
	test_legacy();
	test_defaults();
	test_oauth_params();
	return done_testing();
}
