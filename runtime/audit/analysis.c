/*
 * analysis.c - per-job verdicts and the fleet-wide audit.
 */
#include "audit/analysis.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <sqlite3.h>

#include "base/buf.h"
#include "base/fsutil.h"
#include "base/sqldb.h"
#include "ini/ini.h"
#include "transport/mailbox/mailbox.h"
#include "mail/rules.h"
#include "auth/secret.h"

static int nomem(struct ms_err *err)
{
	return err_set(err, MS_ERR_NOMEM, "out of memory");
}

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

const char *analysis_status_name(enum job_status s)
{
	static const char *const names[STATUS_COUNT] = {
		"needs-migration", "at-risk", "migrated", "unaffected", "broken"
	};
	return (unsigned)s < STATUS_COUNT ? names[s] : "unknown";
}

int analysis_status_parse(const char *s)
{
	int i;

	for (i = 0; i < STATUS_COUNT; i++)
		if (s && strcasecmp(s, analysis_status_name((enum job_status)i)) == 0)
			return i;
	return -1;
}

const char *analysis_severity_name(enum finding_severity s)
{
	return s == SEV_ERROR ? "error" : s == SEV_WARNING ? "warning" : "info";
}

const char *analysis_auth_name(enum auth_kind a)
{
	switch (a) {
	case AUTHK_BASIC: return "basic";
	case AUTHK_MSAL_DELEGATED: return "msal-delegated";
	case AUTHK_OAUTH2: return "oauth2";
	default: return "unknown";
	}
}

const char *analysis_tls_name(enum tls_level t)
{
	switch (t) {
	case TLSL_SSL: return "SSL";
	case TLSL_SSL2: return "SSL2";
	case TLSL_TLS1: return "TLS1";
	case TLSL_TLS1_1: return "TLS1_1";
	case TLSL_TLS1_2: return "TLS1_2";
	case TLSL_TLS1_3: return "TLS1_3";
	case TLSL_NONE: return "none";
	default: return "default";
	}
}

int verdict_add(struct job_verdict *v, const char *code,
		enum finding_severity sev, struct ms_err *err,
		const char *fmt, ...)
{
	struct finding *nf;
	char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (!msg)
		return nomem(err);
	nf = realloc(v->findings, (v->n_findings + 1) * sizeof(*nf));
	if (!nf) {
		free(msg);
		return nomem(err);
	}
	v->findings = nf;
	nf[v->n_findings].code = code;
	nf[v->n_findings].severity = sev;
	nf[v->n_findings].message = msg;
	v->n_findings++;
	return 0;
}

/* Errors first, then warnings, then information; otherwise in the order
 * found (insertion sort: stable, and lists are short). */
static void sort_findings(struct job_verdict *v)
{
	size_t i, j;

	for (i = 1; i < v->n_findings; i++) {
		struct finding f = v->findings[i];
		for (j = i; j > 0 && v->findings[j - 1].severity > f.severity; j--)
			v->findings[j] = v->findings[j - 1];
		v->findings[j] = f;
	}
}

static void findings_free(struct finding *f, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(f[i].message);
	free(f);
}

void job_verdict_release(struct job_verdict *v)
{
	if (!v)
		return;
	free(v->schedule);
	free(v->job);
	free(v->machine);
	free(v->source);
	free(v->command_line);
	free(v->ini);
	free(v->ini_file);
	free(v->ini_local);
	free(v->server);
	findings_free(v->findings, v->n_findings);
	memset(v, 0, sizeof(*v));
}

int analysis_is_microsoft_host(const char *host)
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

int analysis_oauth_complete(const struct config *cfg)
{
	if (!cfg)
		return 0;
	if (cfg->auth != AUTH_OAUTH2 && cfg->protocol != PROTO_GRAPH)
		return 0;
	return cfg->oauth_tenant && cfg->oauth_client_id &&
	       (cfg->oauth_client_secret || cfg->oauth_cert_file);
}

int analysis_is_connector_job(const struct fleet_job *job)
{
	struct ms_err err = MS_ERR_INIT;
	struct cmdline_job cj;
	int r;

	if (!job->command_line || !fleet_job_is_windows(job))
		return 0;
	if (cmdline_job_parse(job->command_line, &cj, &err) < 0) {
		/* too long to split: still a connector job if it names one */
		const char *p = job->command_line;
		return strcasestr(p, "smartemail") != NULL ||
		       strcasestr(p, "mailshift") != NULL;
	}
	r = cj.exe >= 0;
	cmdline_job_release(&cj);
	return r;
}

#define CERT_MAX ((size_t)1024 * 1024)

int analysis_cert_expiry(const char *path, time_t now, long *days,
			 char *date, size_t datesz, struct ms_err *err)
{
	BIO *bio;
	X509 *x = NULL;
	const ASN1_TIME *na;
	ASN1_TIME *nowt = NULL;
	struct tm tm;
	struct stat st;
	int d = 0, s = 0, rc = -1;

	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return err_set(err, MS_ERR_IO, "cannot open certificate '%s'", path);
	if ((size_t)st.st_size > CERT_MAX)
		return err_set(err, MS_ERR_TOOBIG, "certificate file '%s' is larger than "
			       "%zu bytes", path, CERT_MAX);
	if (!(bio = BIO_new_file(path, "rb")))
		return err_set(err, MS_ERR_IO, "cannot open certificate '%s'", path);
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	if (!x) {
		(void)BIO_reset(bio);
		x = d2i_X509_bio(bio, NULL);
	}
	if (!x) {
		err_set(err, MS_ERR_DATA, "no readable certificate in '%s'", path);
		goto done;
	}
	na = X509_get0_notAfter(x);
	if (!na || !(nowt = ASN1_TIME_set(NULL, now)) ||
	    !ASN1_TIME_diff(&d, &s, nowt, na) || !ASN1_TIME_to_tm(na, &tm)) {
		err_set(err, MS_ERR_DATA, "cannot read the expiry date of '%s'", path);
		goto done;
	}
	/* whole days, rounded down: an expiry earlier today is -1 */
	*days = d - (s < 0 ? 1 : 0);
	strftime(date, datesz, "%Y-%m-%d", &tm);
	rc = 0;
done:
	ASN1_TIME_free(nowt);
	X509_free(x);
	BIO_free(bio);
	return rc;
}

/* Literal secrets in a command line: values of -password: and
 * -opconpassword: that are not [[PROPERTY]] references. */
static int check_command_line(struct job_verdict *v,
			      const struct connector_opts *opts,
			      struct ms_err *err)
{
	char over[256] = "";
	int pw = opts->password && !cmdline_is_property(opts->password);
	int opw = opts->opcon_password && !cmdline_is_property(opts->opcon_password);

	if ((pw || opw) &&
	    verdict_add(v, "password-in-command-line", SEV_ERROR, err,
			"the command line holds a literal %s value; anyone who can "
			"read the job sees it (use an encrypted [[PROPERTY]] or the "
			"INI file instead)", pw && opw ? "-password: and -opconpassword:" :
			pw ? "-password:" : "-opconpassword:") < 0)
		return -1;
#define OVER(cond, s) \
	if (cond) { \
		if (over[0]) \
			strncat(over, ", ", sizeof(over) - strlen(over) - 1); \
		strncat(over, s, sizeof(over) - strlen(over) - 1); \
	}
	OVER(opts->server, "-server:");
	OVER(opts->port_text, "-port:");
	OVER(opts->protocol == PROTO_IMAP, "--imap");
	OVER(opts->protocol == PROTO_POP, "--pop");
	OVER(opts->msal, "--msal");
	OVER(opts->tls == TLSL_SSL, "--ssl");
	OVER(opts->tls == TLSL_TLS1_1, "--tls1_1");
	OVER(opts->tls == TLSL_TLS1_2, "--tls1_2");
#undef OVER
	if (over[0] &&
	    verdict_add(v, "command-line-override", SEV_WARNING, err,
			"%s on the command line take%s precedence over the INI file: "
			"migrating must change the job as well as the INI", over,
			strchr(over, ',') ? "" : "s") < 0)
		return -1;
	{
		int srv = opts->server && (cmdline_has_property(opts->server) ||
					   cmdline_has_env_ref(opts->server));
		int port = opts->port_text && (cmdline_has_property(opts->port_text) ||
					       cmdline_has_env_ref(opts->port_text));

		/* an unknown server makes the job impossible to evaluate */
		if ((srv || port) &&
		    verdict_add(v, "unresolved-property", srv ? SEV_ERROR : SEV_WARNING, err,
				"%s hold%s a reference the audit cannot expand: the "
				"effective %s known only at run time",
				srv && port ? "-server: and -port:" : srv ? "-server:" : "-port:",
				srv && port ? "" : "s",
				srv && port ? "server and port are" : srv ? "server is" :
				"port is") < 0)
			return -1;
	}
	return 0;
}

static int port_mismatch(enum mail_protocol p, int port)
{
	static const int smtp[] = { 25, 465, 587, 2525, 0 };
	int i;

	for (i = 0; smtp[i]; i++)
		if (port == smtp[i])
			return 1;
	if (p == PROTO_IMAP)
		return port == 110 || port == 995;
	if (p == PROTO_POP)
		return port == 143 || port == 993;
	return 0;
}

static int check_legacy(struct job_verdict *v, const struct config *cfg,
			struct ms_err *err)
{
	char keys[160] = "";

	if (cfg->password && secret_kind(cfg->password) == SECRET_LEGACY &&
	    cfg->auth != AUTH_OAUTH2 && cfg->protocol != PROTO_GRAPH)
		strcat(keys, "[Mail] Password");
	if (cfg->opcon_password && secret_kind(cfg->opcon_password) == SECRET_LEGACY)
		strcat(strcat(keys, keys[0] ? ", " : ""), "[General] OpConUserPassword");
	if (cfg->oauth_client_secret &&
	    secret_kind(cfg->oauth_client_secret) == SECRET_LEGACY)
		strcat(strcat(keys, keys[0] ? ", " : ""), "[OAuth] ClientSecret");
	if (!keys[0])
		return 0;
	return verdict_add(v, "legacy-secret", SEV_WARNING, err,
			   "%s %s encrypted with the incumbent's proprietary scheme, which "
			   "mailshift cannot read: enter %s again (mailshift --credentials "
			   "or a sealed/env:/file: reference)", keys,
			   strchr(keys, ',') ? "are" : "is",
			   strchr(keys, ',') ? "them" : "it");
}

static int check_certificate(const struct analysis_opts *o,
			     const struct config *cfg, const char *machine,
			     struct job_verdict *v, struct ms_err *err)
{
	struct ms_err lerr = MS_ERR_INIT;
	struct fleet_path fp;
	char date[32] = "";
	long days = 0;
	int warn = o && o->cert_warn_days > 0 ? o->cert_warn_days : 30;
	time_t now = o && o->now ? o->now : time(NULL);
	int rc = 0;

	if (!cfg->oauth_cert_file || !o || !o->fleet_dir)
		return 0;
	if (fleet_resolve_path(o->fleet_dir, machine, cfg->oauth_cert_file, NULL,
			       &fp, err) < 0)
		return -1;
	if (fp.where != FLEET_FOUND) {
		rc = verdict_add(v, "certificate-not-collected", SEV_INFO, err,
				 "[OAuth] CertificateFile '%s' was not collected, so its "
				 "expiry date was not checked", cfg->oauth_cert_file);
	} else if (analysis_cert_expiry(fp.file, now, &days, date, sizeof(date),
					&lerr) < 0) {
		rc = verdict_add(v, "certificate-expiring", SEV_ERROR, err,
				 "[OAuth] CertificateFile '%s' holds no readable certificate",
				 cfg->oauth_cert_file);
	} else if (days < 0) {
		rc = verdict_add(v, "certificate-expiring", SEV_ERROR, err,
				 "certificate '%s' expired on %s: token requests fail until "
				 "a new certificate is uploaded to the app registration",
				 cfg->oauth_cert_file, date);
	} else if (days <= warn) {
		rc = verdict_add(v, "certificate-expiring", SEV_WARNING, err,
				 "certificate '%s' expires on %s (in %ld day%s): renew it and "
				 "upload the new one to the app registration", cfg->oauth_cert_file,
				 date, days, days == 1 ? "" : "s");
	}
	fleet_path_release(&fp);
	return rc;
}

/* What the connector will leave out: every broken [ConfigurationN] (and
 * RejectEvent) as rule-invalid, named by line (the file is the job's INI);
 * every configuration broken makes the job broken. */
static int check_rules(struct job_verdict *v, const struct config *cfg,
		       int *broken, struct ms_err *err)
{
	struct ms_err rerr = MS_ERR_INIT;
	struct rules *rs = NULL;
	size_t i, plen = cfg->path ? strlen(cfg->path) : 0;
	int rc = 0;

	if (!cfg->n_rules)
		return 0;
	if (rules_compile(&rs, cfg, &rerr) < 0) {
		if (rerr.code == MS_ERR_NOMEM)
			return nomem(err);
		const char *at = plen ? strstr(rerr.msg, cfg->path) : NULL;

		*broken = 1;
		if (at && at[plen] == ':')      /* "...: PATH:LINE: what" */
			return verdict_add(v, "rule-invalid", SEV_ERROR, err,
					   "%.*sline %s", (int)(at - rerr.msg),
					   rerr.msg, at + plen + 1) < 0 ? -1 : 0;
		return verdict_add(v, "rule-invalid", SEV_ERROR, err, "%s",
				   rerr.msg) < 0 ? -1 : 0;
	}
	for (i = 0; i < rules_warning_count(rs) && rc == 0; i++) {
		const char *w = rules_warning(rs, i);

		/* "PATH:LINE: what" -> "line LINE: what"; "PATH: what" -> "what" */
		if (plen && strncmp(w, cfg->path, plen) == 0 && w[plen] == ':') {
			w += plen + 1;
			if (*w == ' ')
				rc = verdict_add(v, "rule-invalid", SEV_WARNING, err,
						 "%s", w + 1) < 0 ? -1 : 0;
			else
				rc = verdict_add(v, "rule-invalid", SEV_WARNING, err,
						 "line %s", w) < 0 ? -1 : 0;
		} else {
			rc = verdict_add(v, "rule-invalid", SEV_WARNING, err, "%s",
					 w) < 0 ? -1 : 0;
		}
	}
	rules_free(rs);
	return rc;
}

int analysis_config(const struct analysis_opts *o, const struct config *cfg,
		    const struct connector_opts *opts, const char *machine,
		    struct job_verdict *v, struct ms_err *err)
{
	enum mail_protocol proto = PROTO_UNSET;
	const char *server = NULL;
	int broken = 0;
	size_t i;

	for (i = 0; i < v->n_findings; i++)
		/* an ANSI file is read (converted) and judged: migrate fixes it */
		if (v->findings[i].severity == SEV_ERROR &&
		    strcmp(v->findings[i].code, "ini-encoding") != 0 &&
		    (strncmp(v->findings[i].code, "ini-", 4) == 0 ||
		     strcmp(v->findings[i].code, "command-line-invalid") == 0 ||
		     strcmp(v->findings[i].code, "unresolved-property") == 0))
			broken = 1;

	if (opts && check_command_line(v, opts, err) < 0)
		return -1;
	if (opts && opts->server && (cmdline_has_property(opts->server) ||
				     cmdline_has_env_ref(opts->server)))
		broken = 1;

	if (!cfg) {
		/* only what the command line says */
		v->protocol = opts ? opts->protocol : PROTO_UNSET;
		free(v->server);
		v->server = opts ? xstrdup(opts->server) : NULL;
		if (opts && opts->server && !v->server)
			return nomem(err);
		v->port = opts ? opts->port : 0;
		v->tls = opts ? opts->tls : TLSL_UNSET;
		v->auth = v->protocol == PROTO_MSAL ? AUTHK_MSAL_DELEGATED : AUTHK_UNKNOWN;
		v->microsoft = v->protocol == PROTO_MSAL ||
			       analysis_is_microsoft_host(v->server);
		v->tls_verify = v->protocol == PROTO_MSAL;
		v->status = STATUS_BROKEN;
		return 0;
	}

	/* effective settings */
	if (opts && opts->protocol != PROTO_UNSET)
		proto = opts->protocol;
	else if (cfg)
		proto = cfg->protocol;
	if (proto == PROTO_UNSET)
		proto = PROTO_IMAP;
	v->protocol = proto;
	if (opts && opts->server)
		server = opts->server;
	else if (cfg)
		server = cfg->server;
	if (!server && (proto == PROTO_MSAL))
		server = "outlook.office365.com";
	if (!server && proto == PROTO_GRAPH)
		server = "graph.microsoft.com";
	free(v->server);
	v->server = xstrdup(server);
	if (server && !v->server)
		return nomem(err);
	v->tls = opts && opts->tls != TLSL_UNSET ? opts->tls :
		 cfg ? cfg->tls_min : TLSL_UNSET;
	if (opts && opts->port)
		v->port = opts->port;
	else if (cfg && cfg->port)
		v->port = cfg->port;
	else
		v->port = 0;
	if (proto == PROTO_IMAP || proto == PROTO_POP) {
		enum tls_mode m = mailbox_tls_choose(v->tls, cfg && cfg->starttls_set ?
						     cfg->starttls : -1, v->port);
		v->tls_mode = mailbox_tls_mode_name(m);
		if (!v->port)
			v->port = config_default_port(proto, m == TLSM_IMPLICIT);
	} else if (!v->port) {
		v->port = config_default_port(proto, v->tls != TLSL_NONE);
	}
	v->microsoft = proto == PROTO_MSAL || proto == PROTO_GRAPH ||
		       analysis_is_microsoft_host(server);
	if (proto == PROTO_GRAPH || (cfg && cfg->auth == AUTH_OAUTH2))
		v->auth = AUTHK_OAUTH2;
	else if (proto == PROTO_MSAL)
		v->auth = AUTHK_MSAL_DELEGATED;
	else if (cfg || opts)
		v->auth = AUTHK_BASIC;
	v->tls_verify = proto == PROTO_MSAL || proto == PROTO_GRAPH ? 1 :
			cfg ? !cfg->self_signed : 0;


	/* findings from the settings */
	if (v->auth == AUTHK_OAUTH2 && !analysis_oauth_complete(cfg)) {
		broken = 1;
		if (verdict_add(v, "oauth-incomplete", SEV_ERROR, err,
				"AuthMethod=OAuth2 without a complete [OAuth] section: "
				"missing %s%s%s",
				cfg->oauth_tenant ? "" : "TenantId ",
				cfg->oauth_client_id ? "" : "ClientId ",
				cfg->oauth_client_secret || cfg->oauth_cert_file ? "" :
				"ClientSecret or CertificateFile") < 0)
			return -1;
	}
	if (!server) {
		broken = 1;
		if (verdict_add(v, "server-missing", SEV_ERROR, err,
				"no mail server: [Mail] Server is not set and the command "
				"line has no -server:") < 0)
			return -1;
	}
	if (proto == PROTO_IMAP || proto == PROTO_POP) {
		if (v->tls == TLSL_NONE) {
			if (verdict_add(v, "no-tls", v->microsoft ? SEV_ERROR : SEV_WARNING,
					err, "SecurityProtocol=None: the %s password and all mail "
					"cross the network in clear text (port %d without "
					"STARTTLS)", config_protocol_name(proto), v->port) < 0)
				return -1;
		} else if (v->tls == TLSL_SSL || v->tls == TLSL_SSL2 ||
			   v->tls == TLSL_TLS1 || v->tls == TLSL_TLS1_1) {
			if (verdict_add(v, "weak-tls", SEV_WARNING, err,
					"minimum TLS level %s allows protocol versions with known "
					"weaknesses; require TLS1_2", analysis_tls_name(v->tls)) < 0)
				return -1;
		}
		if (v->tls == TLSL_UNSET && v->tls_mode &&
		    strcmp(v->tls_mode, "starttls") == 0 &&
		    verdict_add(v, "starttls-required", SEV_INFO, err,
				"port %d without SecurityProtocol: mailshift upgrades it "
				"with STARTTLS and refuses a server that does not offer "
				"it (the password is never sent in clear); "
				"SecurityProtocol=NONE is the explicit opt-in to plaintext",
				v->port) < 0)
			return -1;
		if (v->tls != TLSL_NONE && cfg->self_signed &&
		    verdict_add(v, "tls-verification-off", SEV_WARNING, err,
				cfg->self_signed_explicit ?
				"SelfSignedCertificate=True: the server's certificate is not "
				"verified, so anyone on the path can impersonate the mail server" :
				"SelfSignedCertificate is not set and the incumbent defaults to "
				"True: the server's certificate is not verified") < 0)
			return -1;
		if (v->port && port_mismatch(proto, v->port) &&
		    verdict_add(v, "port-protocol-mismatch", SEV_WARNING, err,
				"port %d is not a port for %s", v->port,
				config_protocol_name(proto)) < 0)
			return -1;
	}
	if (check_rules(v, cfg, &broken, err) < 0)
		return -1;
	if (config_notify_problem(cfg) &&
	    verdict_add(v, "notify-unconfigured", SEV_WARNING, err,
			"[Audit] %s is set but %s: the notify mails are lost "
			"(mailshift-migrate adds a [Notify] section when the mapping "
			"has \"notify\")", cfg->notify_on_accepts ?
			(cfg->notify_on_rejects ? "NotifyOnAccepts/NotifyOnRejects" :
			 "NotifyOnAccepts") : "NotifyOnRejects",
			config_notify_problem(cfg)) < 0)
		return -1;
	for (size_t k = 0; k < cfg->n_unknown_keys; k++) {
		char text[512];

		config_unknown_key_text(&cfg->unknown_keys[k], text, sizeof(text));
		if (verdict_add(v, "unknown-key", SEV_WARNING, err, "line %d: %s",
				cfg->unknown_keys[k].line, text) < 0)
			return -1;
	}
	if (check_legacy(v, cfg, err) < 0 ||
	    check_certificate(o, cfg, machine, v, err) < 0)
		return -1;

	if (broken)
		v->status = STATUS_BROKEN;
	else if (analysis_oauth_complete(cfg))
		v->status = STATUS_MIGRATED;
	else if (proto == PROTO_MSAL)
		v->status = STATUS_AT_RISK;
	else if (v->microsoft && v->auth == AUTHK_BASIC)
		v->status = STATUS_NEEDS_MIGRATION;
	else
		v->status = STATUS_UNAFFECTED;

	if (v->status == STATUS_NEEDS_MIGRATION &&
	    verdict_add(v, "basic-auth-microsoft", SEV_ERROR, err,
			"%s to %s with a user name and password: Exchange Online has "
			"turned basic authentication off; move to OAuth 2.0 (mailshift "
			"[OAuth])", config_protocol_name(proto), server) < 0)
		return -1;
	if (v->status == STATUS_AT_RISK &&
	    verdict_add(v, "msal-delegated", SEV_WARNING, err,
			"the incumbent's delegated MSAL mode: a vendor app and a refresh "
			"token tied to one Windows user, lost after about a week unused; "
			"move to an app registration of your own (client credentials)%s",
			opts && opts->renew_msal_token ?
			"; this job only keeps the token alive: retire it once the "
			"mailbox is migrated" : "") < 0)
		return -1;
	sort_findings(v);
	return 0;
}

/* Make "FILE:LINE: msg" name the fleet-relative file. */
static char *relative_message(const char *msg, const char *local,
			      const char *rel)
{
	size_t n = strlen(local);
	char *out = NULL;

	if (rel && strncmp(msg, local, n) == 0) {
		if (asprintf(&out, "%s%s", rel, msg + n) < 0)
			out = NULL;
		return out;
	}
	return strdup(msg);
}

/*
 * The INI cache of one audit run: jobs sharing an INI file are common
 * (shared-ini), so the INI lookup (path resolution on the fleet folder)
 * and its parse are done once per distinct (machine, -inifile:, working
 * directory) and reused.  The fleet is not expected to change during a
 * run.  Open addressing, FNV-1a; entries own everything in them.
 */
struct ini_entry {
	char *key;                      /* machine NUL inifile NUL wd, see ini_key */
	size_t keylen;
	struct fleet_path fp;
	int have_cfg;
	int cp1252;                     /* saved as Windows-1252: read converted */
	struct config cfg;
	char *load_msg;                 /* config_load() failure, fleet-relative */
};

/* An INI file the connector refuses because it is Windows-1252 ("ANSI")
 * is still read, converted, so the audit judges the rest of it too. */
static int load_cp1252(struct ini_entry *e)
{
	struct ms_err lerr = MS_ERR_INIT;
	struct ini *ini = NULL;
	char *data = NULL;
	size_t len = 0;
	int was = 0, rc = -1;

	if (fs_read_file(e->fp.file, INI_MAX_FILE, &data, &len, &lerr) < 0 ||
	    !ini_is_cp1252(data, len) ||
	    ini_parse_any(&ini, e->fp.file, data, len, &was, &lerr) < 0 ||
	    ini_check(ini, &lerr) < 0 ||
	    config_from_ini(&e->cfg, ini, e->fp.file, &lerr) < 0)
		goto out;
	e->cp1252 = 1;
	e->have_cfg = 1;
	rc = 0;
out:
	ini_free(ini);
	free(data);
	return rc;
}

struct ini_cache {
	struct ini_entry **slots;
	size_t n, alloc;
};

static uint64_t fnv1a(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static void ini_entry_free(struct ini_entry *e)
{
	if (!e)
		return;
	free(e->key);
	fleet_path_release(&e->fp);
	if (e->have_cfg)
		config_release(&e->cfg);
	free(e->load_msg);
	free(e);
}

static void ini_cache_free(struct ini_cache *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->alloc; i++)
		ini_entry_free(c->slots[i]);
	free(c->slots);
	memset(c, 0, sizeof(*c));
}

static struct ini_entry **ini_cache_slot(struct ini_cache *c, const char *key,
					 size_t keylen)
{
	size_t i = (size_t)fnv1a(key, keylen) & (c->alloc - 1);

	while (c->slots[i] && (c->slots[i]->keylen != keylen ||
			       memcmp(c->slots[i]->key, key, keylen) != 0))
		i = (i + 1) & (c->alloc - 1);
	return &c->slots[i];
}

static int ini_cache_grow(struct ini_cache *c)
{
	struct ini_cache nc;
	size_t i;

	nc.alloc = c->alloc ? c->alloc * 2 : 1024;
	nc.n = 0;
	if (!(nc.slots = calloc(nc.alloc, sizeof(*nc.slots))))
		return -1;
	for (i = 0; i < c->alloc; i++)
		if (c->slots[i])
			*ini_cache_slot(&nc, c->slots[i]->key, c->slots[i]->keylen) =
			    c->slots[i];
	nc.n = c->n;
	free(c->slots);
	*c = nc;
	return 0;
}

/* Resolve and load the INI file of a job (once per distinct lookup when c
 * is not NULL).  *out is owned by the cache, or by the caller when c is
 * NULL (release with ini_entry_free()). */
static int ini_lookup(struct ini_cache *c, const struct analysis_opts *o,
		      const char *machine, const char *inifile,
		      const char *working_dir, struct ini_entry **out,
		      struct ms_err *err)
{
	struct ms_err lerr = MS_ERR_INIT;
	struct ini_entry *e = NULL, **slot = NULL;
	char *key = NULL;
	size_t lm = strlen(machine ? machine : ""), li = strlen(inifile ? inifile : ""),
	       lw = strlen(working_dir ? working_dir : "");
	size_t keylen = lm + li + lw + 5;

	*out = NULL;
	/* the key tells NULL from "" for inifile and working_dir */
	if (!(key = malloc(keylen)))
		return nomem(err);
	memcpy(key, machine ? machine : "", lm);
	key[lm] = '\0';
	key[lm + 1] = inifile ? '1' : '0';
	memcpy(key + lm + 2, inifile ? inifile : "", li);
	key[lm + 2 + li] = '\0';
	key[lm + 3 + li] = working_dir ? '1' : '0';
	memcpy(key + lm + 4 + li, working_dir ? working_dir : "", lw);
	key[keylen - 1] = '\0';
	if (c) {
		if ((c->n + 1) * 2 > c->alloc && ini_cache_grow(c) < 0) {
			free(key);
			return nomem(err);
		}
		slot = ini_cache_slot(c, key, keylen);
		if (*slot) {
			free(key);
			*out = *slot;
			return 0;
		}
	}
	if (!(e = calloc(1, sizeof(*e)))) {
		free(key);
		return nomem(err);
	}
	e->key = key;
	e->keylen = keylen;
	if (fleet_resolve_ini(o->fleet_dir, machine, inifile, working_dir, &e->fp,
			      err) < 0)
		goto fail;
	if (e->fp.where == FLEET_FOUND) {
		if (config_load(&e->cfg, e->fp.file, &lerr) < 0 && load_cp1252(e) < 0) {
			if (lerr.code == MS_ERR_NOMEM) {
				nomem(err);
				goto fail;
			}
			if (!(e->load_msg = relative_message(lerr.msg, e->fp.file,
							     e->fp.rel))) {
				nomem(err);
				goto fail;
			}
		} else {
			e->have_cfg = 1;
		}
	}
	if (c) {
		*slot = e;
		c->n++;
	}
	*out = e;
	return 0;
fail:
	ini_entry_free(e);
	return -1;
}

/* What the reader thread of an audit works out for a job before handing
 * it over (fleet_handlers.prepare): pure functions of the job only. */
struct job_prep {
	int connector;                  /* analysis_is_connector_job() */
	int redacted_ok;                /* redacted is cmdline_redact()'s result */
	char *redacted;                 /* owned */
};

static int job_eval(const struct analysis_opts *o, struct ini_cache *c,
		    const struct fleet_job *job, struct job_prep *prep,
		    struct job_verdict *v, struct ms_err *err);

int analysis_job(const struct analysis_opts *o, const struct fleet_job *job,
		 struct job_verdict *v, struct ms_err *err)
{
	return job_eval(o, NULL, job, NULL, v, err);
}

static int job_eval(const struct analysis_opts *o, struct ini_cache *c,
		    const struct fleet_job *job, struct job_prep *prep,
		    struct job_verdict *v, struct ms_err *err)
{
	struct ms_err lerr = MS_ERR_INIT;
	struct cmdline_job cj;
	struct connector_opts opts;
	struct ini_entry *ie = NULL;
	const struct fleet_path *fp;
	int have_opts = 0, have_cfg = 0, rc = -1;

	memset(v, 0, sizeof(*v));
	memset(&cj, 0, sizeof(cj));
	memset(&opts, 0, sizeof(opts));
	v->schedule = xstrdup(job->schedule ? job->schedule : "");
	v->job = xstrdup(job->name ? job->name : "");
	v->machine = xstrdup(job->machine ? job->machine : "");
	v->source = xstrdup(job->source ? job->source : "");
	v->source_line = job->line;
	if (prep && prep->redacted_ok) {
		v->command_line = prep->redacted;
		prep->redacted = NULL;
	} else {
		v->command_line = job->command_line ?
				  cmdline_redact(job->command_line) : NULL;
	}
	v->tls_verify = 1;
	if (!v->schedule || !v->job || !v->machine || !v->source ||
	    (job->command_line && !v->command_line))
		goto nomem;

	if (cmdline_job_parse(job->command_line, &cj, &lerr) < 0) {
		if (lerr.code == MS_ERR_NOMEM)
			goto nomem;
		if (verdict_add(v, "command-line-invalid", SEV_ERROR, err, "%s",
				lerr.msg) < 0)
			goto done;
		v->status = STATUS_BROKEN;
		rc = 0;
		goto done;
	}
	if (cj.exe < 0) {
		if (verdict_add(v, "not-a-connector-job", SEV_ERROR, err,
				"the command line does not run the connector") < 0)
			goto done;
		v->status = STATUS_BROKEN;
		rc = 0;
		goto done;
	}
	{
		/* options: argv[exe] plays argv[0] */
		int argc = cj.end - cj.exe;
		if (cmdline_parse_connector_ex(argc, cj.argv + cj.exe,
					       CMDLINE_ALLOW_PROPERTIES, &opts,
					       &lerr) < 0) {
			if (lerr.code == MS_ERR_NOMEM)
				goto nomem;
			if (verdict_add(v, "command-line-invalid", SEV_ERROR, err,
					"the connector would refuse this command line: %s",
					lerr.msg) < 0)
				goto done;
			v->status = STATUS_BROKEN;
			rc = 0;
			goto done;
		}
		have_opts = 1;
	}
	if (ini_lookup(c, o, job->machine, opts.inifile, job->working_dir, &ie,
		       err) < 0)
		goto done;
	fp = &ie->fp;
	v->ini = xstrdup(fp->windows_path);
	if (fp->windows_path && !v->ini)
		goto nomem;
	switch (fp->where) {
	case FLEET_FOUND:
		v->ini_file = xstrdup(fp->rel);
		v->ini_local = xstrdup(fp->file);
		if (!v->ini_file || !v->ini_local)
			goto nomem;
		if (!ie->have_cfg &&
		    verdict_add(v, "ini-invalid", SEV_ERROR, err, "%s",
				ie->load_msg ? ie->load_msg : "") < 0)
			goto done;
		if (ie->cp1252 &&
		    verdict_add(v, "ini-encoding", SEV_ERROR, err,
				"%s is saved as Windows-1252 (ANSI): mailshift reads UTF-8 "
				"and UTF-16 only; mailshift-migrate converts it to UTF-8 "
				"with a byte-order mark", fp->rel) < 0)
			goto done;
		have_cfg = ie->have_cfg;
		break;
	case FLEET_AMBIGUOUS:
		if (verdict_add(v, "ini-path-ambiguous", SEV_ERROR, err,
				"INI path '%s' cannot be resolved unambiguously: %s",
				fp->windows_path, fp->detail ? fp->detail : "") < 0)
			goto done;
		break;
	case FLEET_UNRESOLVED:
		if (verdict_add(v, "unresolved-property", SEV_ERROR, err,
				"%s; the audit cannot tell which INI file the job uses",
				fp->detail ? fp->detail : "unexpanded reference") < 0)
			goto done;
		break;
	case FLEET_NOT_FOUND:
	case FLEET_UNSUPPORTED:
		if (verdict_add(v, "ini-missing", SEV_ERROR, err,
				"INI file '%s' %s: %s", fp->windows_path ? fp->windows_path : "",
				opts.inifile ? "(from -inifile:)" : "(the default)",
				fp->detail ? fp->detail : "not found") < 0)
			goto done;
		break;
	}
	if (analysis_config(o, have_cfg ? &ie->cfg : NULL, have_opts ? &opts : NULL,
			    job->machine, v, err) < 0)
		goto done;
	sort_findings(v);
	if (!have_cfg)
		v->status = STATUS_BROKEN;
	rc = 0;
	goto done;
nomem:
	rc = nomem(err);
done:
	cmdline_opts_release(&opts);
	cmdline_job_release(&cj);
	if (!c)
		ini_entry_free(ie);
	if (rc < 0)
		job_verdict_release(v);
	return rc;
}

/* The fleet-wide audit. */

struct audit_spill;
static int spill_add(struct audit_spill *s, const struct job_verdict *v,
		     struct ms_err *err);

struct run {
	const struct analysis_opts *o;
	struct audit *a;
	struct ini_cache cache;
	size_t alloc_jobs, alloc_problems;
	/* the export being read and the connector jobs read from it so far:
	 * when it fails part way, those are marked export-incomplete */
	char *cur_source;
	size_t cur_jobs;
};

static void prep_free(void *p, void *ctx)
{
	struct job_prep *jp = p;

	(void)ctx;
	if (jp)
		free(jp->redacted);
	free(jp);
}

/* On the reader thread: the parts of a verdict that need no cache. */
static void *on_prepare(const struct fleet_job *job, void *ctx)
{
	struct job_prep *jp;

	(void)ctx;
	if (!(jp = calloc(1, sizeof(*jp))))
		return NULL;
	jp->connector = analysis_is_connector_job(job);
	if (jp->connector) {
		jp->redacted = job->command_line ? cmdline_redact(job->command_line) :
			       NULL;
		jp->redacted_ok = !job->command_line || jp->redacted;
	}
	return jp;
}

static int on_job_eval(struct run *r, const struct fleet_job *job,
		       struct job_prep *prep, struct ms_err *err)
{
	struct audit *a = r->a;

	if (!(prep ? prep->connector : analysis_is_connector_job(job))) {
		a->other_jobs++;
		return 0;
	}
	if (!r->cur_source || strcmp(r->cur_source, job->source) != 0) {
		free(r->cur_source);
		if (!(r->cur_source = strdup(job->source)))
			return nomem(err);
		r->cur_jobs = 0;
	}
	r->cur_jobs++;
	if (a->spill) {
		struct job_verdict v;
		int rc;

		if (job_eval(r->o, &r->cache, job, prep, &v, err) < 0)
			return -1;
		rc = spill_add(a->spill, &v, err);
		if (rc == 0) {
			a->counts[v.status]++;
			a->n_jobs++;
			if (analysis_needs_action(&v)) {
				a->n_action++;
				a->migrated_errors += v.status == STATUS_MIGRATED;
			}
		}
		job_verdict_release(&v);
		return rc;
	}
	if (a->n_jobs == r->alloc_jobs) {
		struct job_verdict *nv;
		r->alloc_jobs = r->alloc_jobs ? r->alloc_jobs * 2 : 32;
		if (!(nv = realloc(a->jobs, r->alloc_jobs * sizeof(*nv))))
			return nomem(err);
		a->jobs = nv;
	}
	if (job_eval(r->o, &r->cache, job, prep, &a->jobs[a->n_jobs], err) < 0)
		return -1;
	a->n_jobs++;
	return 0;
}

static int on_job(const struct fleet_job *job, void *ctx, struct ms_err *err)
{
	int rc = on_job_eval(ctx, job, job->prepared, err);

	prep_free(job->prepared, NULL);
	return rc;
}

static void on_file(const char *file, size_t files, void *ctx)
{
	struct run *r = ctx;

	if (r->o->progress)
		r->o->progress(files, r->a->n_jobs + r->a->other_jobs,
			       r->o->progress_ctx);
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

/* The problem of an export, or NULL. */
static const struct audit_problem *problem_of(const struct audit *a,
					      const char *source)
{
	size_t i;

	for (i = 0; source && i < a->n_problems; i++)
		if (strcmp(a->problems[i].file, source) == 0)
			return &a->problems[i];
	return NULL;
}

/* The export-incomplete finding of a job read from an export that then
 * failed.  Out of memory it is left out (the report's header still says
 * the audit is incomplete). */
static void mark_incomplete(struct job_verdict *v, const struct audit_problem *p,
			    char **owned)
{
	char *msg = fmt("read from %s, which could not be read to its end (%s%.0d%s%s): "
			"the jobs after this one in it are missing from the report",
			p->file, p->line ? "line " : "", p->line, p->line ? ": " : "",
			p->message);
	struct finding *nf;

	if (!msg || !(nf = realloc(v->findings, (v->n_findings + 1) * sizeof(*nf)))) {
		free(msg);
		return;
	}
	v->findings = nf;
	nf[v->n_findings].code = "export-incomplete";
	nf[v->n_findings].severity = SEV_WARNING;
	nf[v->n_findings].message = msg;
	v->n_findings++;
	if (owned)
		*owned = msg;
}

static void on_problem(const char *file, int line, const char *msg, void *ctx)
{
	struct run *r = ctx;
	struct audit *a = r->a;
	struct audit_problem *p;

	if (a->n_problems == r->alloc_problems) {
		struct audit_problem *np;
		size_t na = r->alloc_problems ? r->alloc_problems * 2 : 8;
		if (!(np = realloc(a->problems, na * sizeof(*np))))
			return;
		a->problems = np;
		r->alloc_problems = na;
	}
	p = &a->problems[a->n_problems];
	p->file = strdup(file);
	p->line = line;
	p->message = strdup(msg);
	if (!p->file || !p->message) {
		free(p->file);
		free(p->message);
		return;
	}
	a->n_problems++;
	/* every problem of an export ends its reading: the jobs read from it
	 * so far are kept, and marked (in memory here; spilled ones when
	 * they are read back, spill_each()) */
	if (r->cur_source && strcmp(r->cur_source, file) == 0) {
		size_t i;

		a->incomplete_jobs += r->cur_jobs;
		for (i = 0; !a->spill && i < r->cur_jobs && i < a->n_jobs; i++)
			mark_incomplete(&a->jobs[a->n_jobs - 1 - i], p, NULL);
		r->cur_jobs = 0;
	}
}

static int cmp_verdict(const void *x, const void *y)
{
	const struct job_verdict *a = x, *b = y;
	int c;

	if ((c = strcasecmp(a->machine, b->machine)) ||
	    (c = strcasecmp(a->schedule, b->schedule)) ||
	    (c = strcasecmp(a->job, b->job)) ||
	    (c = strcmp(a->machine, b->machine)) ||
	    (c = strcmp(a->schedule, b->schedule)) ||
	    (c = strcmp(a->job, b->job)) ||
	    (c = strcmp(a->source, b->source)))
		return c;
	return (a->source_line > b->source_line) - (a->source_line < b->source_line);
}

static int cmp_index_by_ini(const void *x, const void *y, void *arg)
{
	const struct job_verdict *jobs = arg;
	const struct job_verdict *a = &jobs[*(const size_t *)x];
	const struct job_verdict *b = &jobs[*(const size_t *)y];
	int c = strcmp(a->ini_file, b->ini_file);

	if (c)
		return c;
	return (*(const size_t *)x > *(const size_t *)y) -
	       (*(const size_t *)x < *(const size_t *)y);
}

#define SHARED_LIST_MAX 10

/* shared-ini: jobs whose INI file is the same collected file. */
static int shared_inis(struct audit *a, struct ms_err *err)
{
	size_t *idx, n = 0, i, j, k;
	int rc = 0;

	if (!(idx = malloc((a->n_jobs + 1) * sizeof(*idx))))
		return nomem(err);
	for (i = 0; i < a->n_jobs; i++)
		if (a->jobs[i].ini_file)
			idx[n++] = i;
	qsort_r(idx, n, sizeof(*idx), cmp_index_by_ini, a->jobs);
	for (i = 0; i < n && rc == 0; i = j) {
		for (j = i + 1; j < n && strcmp(a->jobs[idx[j]].ini_file,
						 a->jobs[idx[i]].ini_file) == 0; j++)
			;
		if (j - i < 2)
			continue;
		for (k = i; k < j && rc == 0; k++) {
			struct job_verdict *v = &a->jobs[idx[k]];
			struct ms_err lerr = MS_ERR_INIT;
			struct buf b;
			size_t m, shown = 0;
			enum finding_severity sev = SEV_INFO;

			buf_init(&b, 64 * 1024);
			for (m = i; m < j; m++) {
				const struct job_verdict *w = &a->jobs[idx[m]];
				if (w->status == STATUS_NEEDS_MIGRATION ||
				    w->status == STATUS_AT_RISK)
					sev = SEV_WARNING;
				if (m == k)
					continue;
				if (shown++ < SHARED_LIST_MAX &&
				    ((shown > 1 && buf_append(&b, ", ", 2, &lerr) < 0) ||
				     buf_appends(&b, w->schedule, &lerr) < 0 ||
				     buf_append(&b, "/", 1, &lerr) < 0 ||
				     buf_appends(&b, w->job, &lerr) < 0 ||
				     buf_append(&b, " (", 2, &lerr) < 0 ||
				     buf_appends(&b, w->machine, &lerr) < 0 ||
				     buf_append(&b, ")", 1, &lerr) < 0))
					break;
			}
			if (shown > SHARED_LIST_MAX)
				buf_appendf(&b, &lerr, " and %zu more", shown - SHARED_LIST_MAX);
			if (lerr.code != MS_OK) {
				buf_release(&b);
				rc = nomem(err);
				break;
			}
			rc = verdict_add(v, "shared-ini", sev, err,
					 "INI file shared with %zu other job%s: %s; changing it "
					 "changes all of them", j - i - 1, j - i - 1 == 1 ? "" : "s",
					 b.data ? b.data : "");
			buf_release(&b);
			sort_findings(v);
		}
	}
	free(idx);
	return rc;
}

static int cmp_strp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* How many entries of the sorted array v equal key. */
static size_t count_sorted(char **v, size_t n, const char *key)
{
	size_t lo = 0, hi = n, first, c = 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(v[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (first = lo; first < n && strcmp(v[first], key) == 0; first++)
		c++;
	return c;
}

static int add_finding(struct finding **f, size_t *n, const char *code,
		       enum finding_severity sev, char *msg, struct ms_err *err)
{
	struct finding *nf;

	if (!msg)
		return nomem(err);
	if (!(nf = realloc(*f, (*n + 1) * sizeof(*nf)))) {
		free(msg);
		return nomem(err);
	}
	*f = nf;
	nf[*n].code = code;
	nf[*n].severity = sev;
	nf[*n].message = msg;
	(*n)++;
	return 0;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, f);
	if (vasprintf(&s, f, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

/*
 * Spilled verdicts (analysis_opts.spill): one row per connector job in a
 * temporary SQLite database (a private file SQLite deletes on close, with
 * a small page cache), read back in report order through an index.  The
 * cross-job shared-ini finding is added while reading, from a summary of
 * each INI file kept in memory while the rows go in (the number of jobs
 * using it, whether one needs migration, its first SHARED_LIST_MAX + 1
 * jobs in report order): bounded by the number of collected INI files,
 * not by the number of jobs.
 */
#define SPILL_CACHE_KB 8192
#define SPILL_ORDER "machine COLLATE NOCASE, schedule COLLATE NOCASE, " \
		    "job COLLATE NOCASE, machine, schedule, job, source, line"
#define SPILL_MAX_CODES 128

/* One of the first jobs of an INI group, with its report-order key:
 * machine, schedule and job in data (schedule at data + so, job at
 * data + jo); source borrowed from audit_spill.sources. */
struct gmember {
	sqlite3_int64 id;               /* rowid in the spill */
	int line;
	unsigned so, jo;
	const char *source;
	char data[];
};

/* The sort key of a job, whether a member or a candidate. */
struct gkey {
	sqlite3_int64 id;
	int line;
	const char *machine, *schedule, *job, *source;
};

static void gkey_of(const struct gmember *m, struct gkey *k)
{
	k->id = m->id;
	k->line = m->line;
	k->machine = m->data;
	k->schedule = m->data + m->so;
	k->job = m->data + m->jo;
	k->source = m->source;
}

struct igroup {
	char *file;                     /* fleet-relative INI file */
	size_t n;                       /* connector jobs using it */
	int warn;                       /* one needs migration or is at risk */
	size_t m;                       /* members below, in report order */
	struct gmember *mem[SHARED_LIST_MAX + 1];
};

struct audit_spill {
	sqlite3 *db;
	sqlite3_stmt *ins;
	const char *codes[SPILL_MAX_CODES];     /* the static finding codes */
	size_t n_codes;
	struct igroup **groups;         /* open addressing on file */
	size_t n_groups, alloc_groups;
	char **sources;                 /* export files named by members */
	size_t n_sources, alloc_sources;
};

/* SQLite's NOCASE: ASCII letters folded, bytes compared unsigned. */
static int nocase_cmp(const char *a, const char *b)
{
	const unsigned char *p = (const unsigned char *)a,
			    *q = (const unsigned char *)b;
	int x, y;

	for (;; p++, q++) {
		x = *p >= 'A' && *p <= 'Z' ? *p + 32 : *p;
		y = *q >= 'A' && *q <= 'Z' ? *q + 32 : *q;
		if (x != y || !x)
			return x - y;
	}
}

/* SPILL_ORDER, then the rowid (an index's last key). */
static int gkey_cmp(const struct gkey *a, const struct gkey *b)
{
	int c;

	if ((c = nocase_cmp(a->machine, b->machine)) ||
	    (c = nocase_cmp(a->schedule, b->schedule)) ||
	    (c = nocase_cmp(a->job, b->job)) ||
	    (c = strcmp(a->machine, b->machine)) ||
	    (c = strcmp(a->schedule, b->schedule)) ||
	    (c = strcmp(a->job, b->job)) ||
	    (c = strcmp(a->source, b->source)))
		return c;
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	return (a->id > b->id) - (a->id < b->id);
}

static void igroup_free(struct igroup *g)
{
	size_t i;

	if (!g)
		return;
	for (i = 0; i < g->m; i++)
		free(g->mem[i]);
	free(g->file);
	free(g);
}

static struct igroup **group_slot(struct igroup **slots, size_t alloc,
				  const char *file)
{
	size_t i = (size_t)fnv1a(file, strlen(file)) & (alloc - 1);

	while (slots[i] && strcmp(slots[i]->file, file) != 0)
		i = (i + 1) & (alloc - 1);
	return &slots[i];
}

static const struct igroup *group_find(const struct audit_spill *s,
				       const char *file)
{
	if (!s->alloc_groups)
		return NULL;
	return *group_slot(s->groups, s->alloc_groups, file);
}

/* The export file of a job, kept once: jobs come file by file. */
static const char *spill_source(struct audit_spill *s, const char *source)
{
	if (s->n_sources && strcmp(s->sources[s->n_sources - 1], source) == 0)
		return s->sources[s->n_sources - 1];
	if (s->n_sources == s->alloc_sources) {
		size_t na = s->alloc_sources ? s->alloc_sources * 2 : 64;
		char **nv = realloc(s->sources, na * sizeof(*nv));

		if (!nv)
			return NULL;
		s->sources = nv;
		s->alloc_sources = na;
	}
	if (!(s->sources[s->n_sources] = strdup(source)))
		return NULL;
	return s->sources[s->n_sources++];
}

static struct gmember *gmember_new(struct audit_spill *s,
				   const struct gkey *k)
{
	size_t lm = strlen(k->machine) + 1, ls = strlen(k->schedule) + 1,
	       lj = strlen(k->job) + 1;
	struct gmember *g;

	if (lm + ls + lj > UINT_MAX || !(g = malloc(sizeof(*g) + lm + ls + lj)))
		return NULL;
	if (!(g->source = spill_source(s, k->source))) {
		free(g);
		return NULL;
	}
	g->id = k->id;
	g->line = k->line;
	g->so = (unsigned)lm;
	g->jo = (unsigned)(lm + ls);
	memcpy(g->data, k->machine, lm);
	memcpy(g->data + lm, k->schedule, ls);
	memcpy(g->data + lm + ls, k->job, lj);
	return g;
}

/* Count a spilled job in its INI group. */
static int group_add(struct audit_spill *s, const struct job_verdict *v,
		     sqlite3_int64 id, struct ms_err *err)
{
	struct igroup **slot, *g;
	struct gmember *nm;
	struct gkey key, mk;
	size_t i;

	if ((s->n_groups + 1) * 2 > s->alloc_groups) {
		size_t na = s->alloc_groups ? s->alloc_groups * 2 : 1024;
		struct igroup **ns = calloc(na, sizeof(*ns));

		if (!ns)
			return nomem(err);
		for (i = 0; i < s->alloc_groups; i++)
			if (s->groups[i])
				*group_slot(ns, na, s->groups[i]->file) = s->groups[i];
		free(s->groups);
		s->groups = ns;
		s->alloc_groups = na;
	}
	slot = group_slot(s->groups, s->alloc_groups, v->ini_file);
	if (!(g = *slot)) {
		if (!(g = calloc(1, sizeof(*g))) || !(g->file = strdup(v->ini_file))) {
			free(g);
			return nomem(err);
		}
		*slot = g;
		s->n_groups++;
	}
	g->n++;
	if (v->status == STATUS_NEEDS_MIGRATION || v->status == STATUS_AT_RISK)
		g->warn = 1;
	/* keep the first SHARED_LIST_MAX + 1 in report order */
	key.id = id;
	key.line = v->source_line;
	key.machine = v->machine;
	key.schedule = v->schedule;
	key.job = v->job;
	key.source = v->source;
	for (i = g->m; i > 0; i--) {
		gkey_of(g->mem[i - 1], &mk);
		if (gkey_cmp(&key, &mk) >= 0)
			break;
	}
	if (i > SHARED_LIST_MAX)
		return 0;
	if (!(nm = gmember_new(s, &key)))
		return nomem(err);
	if (g->m == SHARED_LIST_MAX + 1)
		free(g->mem[--g->m]);
	memmove(&g->mem[i + 1], &g->mem[i], (g->m - i) * sizeof(g->mem[0]));
	g->mem[i] = nm;
	g->m++;
	return 0;
}

static int spill_fail(struct audit_spill *s, struct ms_err *err)
{
	return err_set(err, MS_ERR_IO, "cannot keep the audit in a temporary "
		       "database: %s", s && s->db ? sqlite3_errmsg(s->db) :
		       "out of memory");
}

static void spill_free(struct audit_spill *s)
{
	size_t i;

	if (!s)
		return;
	sqlite3_finalize(s->ins);
	sqlite3_close(s->db);
	for (i = 0; i < s->alloc_groups; i++)
		igroup_free(s->groups[i]);
	free(s->groups);
	for (i = 0; i < s->n_sources; i++)
		free(s->sources[i]);
	free(s->sources);
	free(s);
}

static int spill_open(struct audit_spill **out, struct ms_err *err)
{
	static const char schema[] =
		"CREATE TABLE jobs(machine TEXT, schedule TEXT, job TEXT, "
		"source TEXT, line INT, command_line TEXT, ini TEXT, "
		"ini_file TEXT, ini_local TEXT, protocol INT, server TEXT, "
		"port INT, tls INT, tls_verify INT, auth INT, microsoft INT, "
		"status INT, findings BLOB, tls_mode INT);"
		"BEGIN;";
	struct audit_spill *s;

	*out = NULL;
	if (!(s = calloc(1, sizeof(*s))))
		return nomem(err);
	if (sqldb_open_scratch(&s->db, err)) {
		spill_free(s);
		return -1;
	}
	if (sqlite3_exec(s->db, schema, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "INSERT INTO jobs VALUES(?,?,?,?,?,?,?,?,?,"
			       "?,?,?,?,?,?,?,?,?,?)", -1, &s->ins, NULL) != SQLITE_OK) {
		spill_fail(s, err);
		spill_free(s);
		return -1;
	}
	*out = s;
	return 0;
}

static int spill_code(struct audit_spill *s, const char *code)
{
	size_t i;

	for (i = 0; i < s->n_codes; i++)
		if (s->codes[i] == code || strcmp(s->codes[i], code) == 0)
			return (int)i;
	if (s->n_codes == SPILL_MAX_CODES)
		return -1;
	s->codes[s->n_codes] = code;
	return (int)s->n_codes++;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/* Findings as one blob: code index, severity, message, NUL. */
static int spill_add(struct audit_spill *s, const struct job_verdict *v,
		     struct ms_err *err)
{
	struct ms_err lerr = MS_ERR_INIT;
	sqlite3_stmt *st = s->ins;
	struct buf b;
	size_t i;
	int rc = -1;

	buf_init(&b, BUF_DEFAULT_CAP);
	for (i = 0; i < v->n_findings; i++) {
		int c = spill_code(s, v->findings[i].code);
		unsigned char hdr[2];

		if (c < 0) {
			err_set(err, MS_ERR_INTERNAL, "too many finding codes");
			goto done;
		}
		hdr[0] = (unsigned char)c;
		hdr[1] = (unsigned char)v->findings[i].severity;
		if (buf_append(&b, hdr, 2, &lerr) < 0 ||
		    buf_append(&b, v->findings[i].message,
			       strlen(v->findings[i].message) + 1, &lerr) < 0) {
			err_set(err, lerr.code, "%s", lerr.msg);
			goto done;
		}
	}
	bind_text(st, 1, v->machine);
	bind_text(st, 2, v->schedule);
	bind_text(st, 3, v->job);
	bind_text(st, 4, v->source);
	sqlite3_bind_int(st, 5, v->source_line);
	bind_text(st, 6, v->command_line);
	bind_text(st, 7, v->ini);
	bind_text(st, 8, v->ini_file);
	bind_text(st, 9, v->ini_local);
	sqlite3_bind_int(st, 10, (int)v->protocol);
	bind_text(st, 11, v->server);
	sqlite3_bind_int(st, 12, v->port);
	sqlite3_bind_int(st, 13, (int)v->tls);
	sqlite3_bind_int(st, 14, v->tls_verify);
	sqlite3_bind_int(st, 15, (int)v->auth);
	sqlite3_bind_int(st, 16, v->microsoft);
	sqlite3_bind_int(st, 17, (int)v->status);
	if (b.len > INT_MAX) {
		err_set(err, MS_ERR_TOOBIG, "a job has too many findings");
		goto done;
	}
	sqlite3_bind_blob(st, 18, b.data ? b.data : "", (int)b.len, SQLITE_STATIC);
	sqlite3_bind_int(st, 19, !v->tls_mode ? -1 :
			 strcmp(v->tls_mode, "implicit") == 0 ? TLSM_IMPLICIT :
			 strcmp(v->tls_mode, "starttls") == 0 ? TLSM_STARTTLS : TLSM_NONE);
	if (sqlite3_step(st) != SQLITE_DONE) {
		spill_fail(s, err);
		goto done;
	}
	if (v->ini_file &&
	    group_add(s, v, sqlite3_last_insert_rowid(s->db), err) < 0)
		goto done;
	rc = 0;
done:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	buf_release(&b);
	return rc;
}

/* After the scan: the report order. */
static int spill_finish(struct audit *a, struct ms_err *err)
{
	static const char sql[] =
		"COMMIT;"
		"CREATE INDEX jobs_order ON jobs(" SPILL_ORDER ");";
	struct audit_spill *s = a->spill;
	sqlite3_stmt *st = NULL;

	sqlite3_finalize(s->ins);
	s->ins = NULL;
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "SELECT count(*) FROM (SELECT DISTINCT "
			       "machine COLLATE NOCASE FROM jobs)", -1, &st,
			       NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return spill_fail(s, err);
	}
	a->n_machines = (size_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

/* How many connector jobs use the collected INI file (spilled audit). */
static size_t spill_ini_jobs(const struct audit_spill *s, const char *file)
{
	const struct igroup *g = group_find(s, file);

	return g ? g->n : 0;
}

static char *col_text(sqlite3_stmt *st, int i)
{
	return (char *)(uintptr_t)sqlite3_column_text(st, i);
}

/* The shared-ini finding of a spilled job, as shared_inis() makes it;
 * *owned is its message (the caller frees it), NULL when none. */
static int spill_shared(const struct audit_spill *s, sqlite3_int64 self,
			struct job_verdict *v, char **owned, struct ms_err *err)
{
	struct ms_err lerr = MS_ERR_INIT;
	const struct igroup *g = group_find(s, v->ini_file);
	struct buf b;
	size_t i, shown = 0;
	char *msg;

	*owned = NULL;
	if (!g || g->n < 2)
		return 0;
	/* the message of shared_inis(), written in one buffer */
	buf_init(&b, 64 * 1024);
	buf_appendf(&b, &lerr, "INI file shared with %zu other job%s: ", g->n - 1,
		    g->n - 1 == 1 ? "" : "s");
	for (i = 0; i < g->m; i++) {
		const struct gmember *w = g->mem[i];

		if (w->id == self)
			continue;
		if (shown++ < SHARED_LIST_MAX &&
		    ((shown > 1 && buf_append(&b, ", ", 2, &lerr) < 0) ||
		     buf_appends(&b, w->data + w->so, &lerr) < 0 ||
		     buf_append(&b, "/", 1, &lerr) < 0 ||
		     buf_appends(&b, w->data + w->jo, &lerr) < 0 ||
		     buf_append(&b, " (", 2, &lerr) < 0 ||
		     buf_appends(&b, w->data, &lerr) < 0 ||
		     buf_append(&b, ")", 1, &lerr) < 0))
			break;
	}
	if (g->n - 1 > SHARED_LIST_MAX)
		buf_appendf(&b, &lerr, " and %zu more", g->n - 1 - SHARED_LIST_MAX);
	buf_appends(&b, "; changing it changes all of them", &lerr);
	if (lerr.code != MS_OK) {
		buf_release(&b);
		return nomem(err);
	}
	if (!(msg = buf_detach(&b, NULL)) ||
	    add_finding(&v->findings, &v->n_findings, "shared-ini",
			g->warn ? SEV_WARNING : SEV_INFO, msg, err) < 0)
		return nomem(err);
	*owned = msg;
	sort_findings(v);
	return 0;
}

static int spill_each(const struct audit *a, unsigned mask,
		      int (*fn)(const struct job_verdict *v, void *ctx,
				struct ms_err *err),
		      void *ctx, struct ms_err *err)
{
	struct audit_spill *s = a->spill;
	const struct audit_problem *pr;
	sqlite3_stmt *st = NULL;
	struct job_verdict v;
	char *marked = NULL;
	int r, rc = -1;

	if (sqlite3_prepare_v2(s->db, "SELECT rowid, machine, schedule, job, "
			       "source, line, command_line, ini, ini_file, "
			       "ini_local, protocol, server, port, tls, tls_verify, "
			       "auth, microsoft, status, findings, tls_mode FROM jobs ORDER BY "
			       SPILL_ORDER, -1, &st, NULL) != SQLITE_OK)
		return spill_fail(s, err);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *fb, *p, *end;
		char *owned = NULL;
		size_t i, nf = 0;
		int frc;

		memset(&v, 0, sizeof(v));
		v.status = (enum job_status)sqlite3_column_int(st, 17);
		if ((unsigned)v.status >= STATUS_COUNT ||
		    !(mask & (1u << v.status)))
			continue;
		/* strings are borrowed from the row */
		v.machine = col_text(st, 1);
		v.schedule = col_text(st, 2);
		v.job = col_text(st, 3);
		v.source = col_text(st, 4);
		v.source_line = sqlite3_column_int(st, 5);
		v.command_line = col_text(st, 6);
		v.ini = col_text(st, 7);
		v.ini_file = col_text(st, 8);
		v.ini_local = col_text(st, 9);
		v.protocol = (enum mail_protocol)sqlite3_column_int(st, 10);
		v.server = col_text(st, 11);
		v.port = sqlite3_column_int(st, 12);
		v.tls = (enum tls_level)sqlite3_column_int(st, 13);
		v.tls_verify = sqlite3_column_int(st, 14);
		v.auth = (enum auth_kind)sqlite3_column_int(st, 15);
		v.microsoft = sqlite3_column_int(st, 16);
		if (sqlite3_column_int(st, 19) >= 0)
			v.tls_mode = mailbox_tls_mode_name(
				(enum tls_mode)sqlite3_column_int(st, 19));
		fb = sqlite3_column_blob(st, 18);
		end = fb + sqlite3_column_bytes(st, 18);
		for (p = fb; p && p + 2 < end; p += 2 + strlen((const char *)p + 2) + 1)
			nf++;
		if (nf && !(v.findings = calloc(nf, sizeof(*v.findings)))) {
			nomem(err);
			goto done;
		}
		/* messages borrowed from the row, but the shared-ini one */
		for (p = fb, i = 0; i < nf; i++) {
			v.findings[i].code = p[0] < s->n_codes ? s->codes[p[0]] : "unknown";
			v.findings[i].severity = (enum finding_severity)p[1];
			v.findings[i].message = (char *)(uintptr_t)(p + 2);
			p += 2 + strlen((const char *)p + 2) + 1;
		}
		v.n_findings = nf;
		frc = v.ini_file ? spill_shared(s, sqlite3_column_int64(st, 0), &v,
						&owned, err) : 0;
		if (frc == 0 && (pr = problem_of(a, v.source)))
			mark_incomplete(&v, pr, &marked);
		if (frc == 0)
			frc = fn(&v, ctx, err);
		free(owned);
		owned = NULL;
		free(marked);
		marked = NULL;
		free(v.findings);
		if (frc < 0)
			goto done;
	}
	if (r != SQLITE_DONE) {
		spill_fail(s, err);
		goto done;
	}
	rc = 0;
done:
	sqlite3_finalize(st);
	return rc;
}

int audit_jobs_each(const struct audit *a, unsigned mask,
		    int (*fn)(const struct job_verdict *v, void *ctx,
			      struct ms_err *err),
		    void *ctx, struct ms_err *err)
{
	size_t i;

	if (a->spill)
		return spill_each(a, mask, fn, ctx, err);
	for (i = 0; i < a->n_jobs; i++)
		if ((mask & (1u << a->jobs[i].status)) &&
		    fn(&a->jobs[i], ctx, err) < 0)
			return -1;
	return 0;
}

/* The INI inventory: fi (n entries, from fleet_list_inis()) is taken
 * over. */
static int audit_inis(struct audit *a, struct fleet_ini *fi, size_t n,
		      struct ms_err *err)
{
	char **used = NULL;
	size_t i, nused = 0;
	int rc = 0;

	/* the INI files jobs use, sorted for counting */
	if (!(used = malloc((a->spill ? 0 : a->n_jobs + 1) * sizeof(*used) + 1))) {
		fleet_inis_free(fi, n);
		return nomem(err);
	}
	for (i = 0; !a->spill && i < a->n_jobs; i++)
		if (a->jobs[i].ini_file)
			used[nused++] = a->jobs[i].ini_file;
	if (nused)
		qsort(used, nused, sizeof(*used), cmp_strp);
	if (n && !(a->inis = calloc(n, sizeof(*a->inis)))) {
		free(used);
		fleet_inis_free(fi, n);
		return nomem(err);
	}
	for (i = 0; i < n && rc == 0; i++) {
		struct audit_ini *ai = &a->inis[i];

		ai->machine = fi[i].machine;
		ai->windows_path = fi[i].windows_path;
		ai->file = fi[i].rel;
		fi[i].machine = fi[i].windows_path = fi[i].rel = NULL;
		a->n_inis++;
		if (a->spill)
			ai->n_jobs = spill_ini_jobs(a->spill, ai->file);
		else
			ai->n_jobs = count_sorted(used, nused, ai->file);
		if (ai->n_jobs == 0) {
			a->n_orphans++;
			rc = add_finding(&ai->findings, &ai->n_findings, "orphan-ini",
					 SEV_INFO, fmt("no job in the exports uses %s on %s: "
						       "stale, or its job was not exported",
						       ai->windows_path, ai->machine), err);
		}
	}
	free(used);
	fleet_inis_free(fi, n);
	return rc;
}

static int audit_notify(const struct analysis_opts *o, struct run *r,
			struct ms_err *err)
{
	struct fleet_handlers h = { NULL, on_problem, NULL, r, NULL, NULL };
	struct fleet_notify_slot *s = NULL;
	struct audit *a = r->a;
	size_t n = 0, i;
	int rc = 0;

	if (fleet_read_notify(o->fleet_dir, &h, &s, &n, err) < 0)
		return -1;
	if (n && !(a->notify = calloc(n, sizeof(*a->notify)))) {
		fleet_notify_free(s, n);
		return nomem(err);
	}
	for (i = 0; i < n && rc == 0; i++) {
		struct audit_notify *an = &a->notify[i];
		int oauth = s[i].app_id && s[i].has_secret && s[i].tenant_id;

		an->auth = oauth ? "oauth2" : s[i].user && s[i].has_password ? "basic" :
			   "none";
		an->source = s[i].source;
		an->server = s[i].server;
		an->user = s[i].user;
		s[i].source = s[i].server = s[i].user = NULL;
		an->slot = s[i].slot;
		an->port = s[i].port;
		an->microsoft = analysis_is_microsoft_host(an->server);
		a->n_notify++;
		if (an->microsoft && strcmp(an->auth, "basic") == 0) {
			a->n_notify_basic++;
			rc = add_finding(&an->findings, &an->n_findings, "notify-basic-smtp",
					 SEV_ERROR,
					 fmt("notification slot %d sends through %s with basic SMTP "
					     "AUTH, which Exchange Online turns off by default from "
					     "the end of December 2026: set SMTPAPPID%d, "
					     "SMTPSECRET%d and SMTPTENANTID%d (OpCon 25.1+)",
					     an->slot, an->server, an->slot, an->slot, an->slot),
					 err);
		}
	}
	fleet_notify_free(s, n);
	return rc;
}

/* The work that waits for no verdict, done on a second thread while the
 * spill builds its index: drop the INI cache of the scan and list the
 * INI files of the fleet. */
struct inis_work {
	const char *dir;
	struct ini_cache *cache;
	struct fleet_ini *fi;
	size_t n;
	int rc;
	struct ms_err err;
};

static void *inis_work_run(void *arg)
{
	struct inis_work *w = arg;

	ini_cache_free(w->cache);
	w->rc = fleet_list_inis(w->dir, &w->fi, &w->n, &w->err);
	return NULL;
}

static int spill_finish_inis(const struct analysis_opts *o, struct audit *a,
			     struct ini_cache *cache, struct ms_err *err)
{
	struct inis_work w;
	pthread_t th;
	int threaded, rc;

	memset(&w, 0, sizeof(w));
	w.dir = o->fleet_dir;
	w.cache = cache;
	threaded = pthread_create(&th, NULL, inis_work_run, &w) == 0;
	if (!threaded)
		inis_work_run(&w);
	rc = spill_finish(a, err);
	if (threaded)
		pthread_join(th, NULL);
	if (rc < 0 || (w.rc < 0 && err_set(err, w.err.code, "%s", w.err.msg))) {
		fleet_inis_free(w.fi, w.n);
		return -1;
	}
	return audit_inis(a, w.fi, w.n, err);
}

int analysis_needs_action(const struct job_verdict *v)
{
	size_t i;

	if (v->status == STATUS_NEEDS_MIGRATION || v->status == STATUS_AT_RISK ||
	    v->status == STATUS_BROKEN)
		return 1;
	if (v->status != STATUS_MIGRATED)
		return 0;
	for (i = 0; i < v->n_findings; i++)
		if (v->findings[i].severity == SEV_ERROR ||
		    strcmp(v->findings[i].code, "legacy-secret") == 0)
			return 1;
	return 0;
}

int audit_incomplete(const struct audit *a)
{
	return a->n_problems > 0;
}

int audit_read_nothing(const struct audit *a)
{
	return a->n_jobs == 0 && a->other_jobs == 0;
}

/* The files under jobs/ a scan leaves unread, as a->ignored. */
static int audit_ignored(const struct analysis_opts *o, struct audit *a,
			 struct ms_err *err)
{
	char **files;
	size_t n, i;

	if (fleet_list_ignored(o->fleet_dir, &files, &n, err) < 0)
		return -1;
	if (n && !(a->ignored = calloc(n, sizeof(*a->ignored)))) {
		for (i = 0; i < n; i++)
			free(files[i]);
		free(files);
		return nomem(err);
	}
	for (i = 0; i < n; i++) {
		a->ignored[i].file = files[i];
		a->ignored[i].message = strdup("ignored: not named as a job export "
					       "(only *.json and *.xml files are read)");
		a->n_ignored++;
		if (!a->ignored[i].message) {
			for (i++; i < n; i++)
				free(files[i]);
			free(files);
			return nomem(err);
		}
	}
	free(files);
	return 0;
}

int audit_run(const struct analysis_opts *o, struct audit *a,
	      struct ms_err *err)
{
	struct run r;
	struct fleet_handlers h;
	struct fleet_ini *fi = NULL;
	size_t i, nfi = 0;

	memset(a, 0, sizeof(*a));
	memset(&r, 0, sizeof(r));
	r.o = o;
	r.a = a;
	memset(&h, 0, sizeof(h));
	h.job = on_job;
	h.problem = on_problem;
	h.file_done = on_file;
	h.prepare = on_prepare;
	h.release = prep_free;
	h.ctx = &r;
	if (o->spill && spill_open(&a->spill, err) < 0)
		goto fail;
	if (fleet_scan_async(o->fleet_dir, &h, err) < 0 || audit_ignored(o, a, err) < 0)
		goto fail;
	free(r.cur_source);
	r.cur_source = NULL;
	if (a->spill) {
		if (spill_finish_inis(o, a, &r.cache, err) < 0 ||
		    audit_notify(o, &r, err) < 0)
			goto fail;
		return 0;
	}
	ini_cache_free(&r.cache);
	if (a->n_jobs)
		qsort(a->jobs, a->n_jobs, sizeof(*a->jobs), cmp_verdict);
	if (shared_inis(a, err) < 0 ||
	    fleet_list_inis(o->fleet_dir, &fi, &nfi, err) < 0 ||
	    audit_inis(a, fi, nfi, err) < 0 || audit_notify(o, &r, err) < 0)
		goto fail;
	for (i = 0; i < a->n_jobs; i++) {
		a->counts[a->jobs[i].status]++;
		if (analysis_needs_action(&a->jobs[i])) {
			a->n_action++;
			a->migrated_errors += a->jobs[i].status == STATUS_MIGRATED;
		}
		if (i == 0 || strcasecmp(a->jobs[i].machine, a->jobs[i - 1].machine))
			a->n_machines++;
	}
	return 0;
fail:
	free(r.cur_source);
	ini_cache_free(&r.cache);
	audit_release(a);
	return -1;
}

void audit_release(struct audit *a)
{
	size_t i;

	if (!a)
		return;
	for (i = 0; a->jobs && i < a->n_jobs; i++)
		job_verdict_release(&a->jobs[i]);
	free(a->jobs);
	spill_free(a->spill);
	for (i = 0; i < a->n_inis; i++) {
		free(a->inis[i].machine);
		free(a->inis[i].windows_path);
		free(a->inis[i].file);
		findings_free(a->inis[i].findings, a->inis[i].n_findings);
	}
	free(a->inis);
	for (i = 0; i < a->n_notify; i++) {
		free(a->notify[i].source);
		free(a->notify[i].server);
		free(a->notify[i].user);
		findings_free(a->notify[i].findings, a->notify[i].n_findings);
	}
	free(a->notify);
	for (i = 0; i < a->n_problems; i++) {
		free(a->problems[i].file);
		free(a->problems[i].message);
	}
	free(a->problems);
	for (i = 0; i < a->n_ignored; i++) {
		free(a->ignored[i].file);
		free(a->ignored[i].message);
	}
	free(a->ignored);
	memset(a, 0, sizeof(*a));
}
