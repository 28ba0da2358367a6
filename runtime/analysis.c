/*
 * analysis.c - per-job verdicts and the fleet-wide audit.
 */
#include "analysis.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "buf.h"
#include "secret.h"

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

int analysis_config(const struct analysis_opts *o, const struct config *cfg,
		    const struct connector_opts *opts, const char *machine,
		    struct job_verdict *v, struct ms_err *err)
{
	enum mail_protocol proto = PROTO_UNSET;
	const char *server = NULL;
	int broken = 0;
	size_t i;

	for (i = 0; i < v->n_findings; i++)
		if (v->findings[i].severity == SEV_ERROR &&
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
		v->port = config_default_port(proto, v->tls != TLSL_NONE &&
					      !(cfg && cfg->starttls));
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
					"cross the network in clear text",
					config_protocol_name(proto)) < 0)
				return -1;
		} else if (v->tls == TLSL_SSL || v->tls == TLSL_SSL2 ||
			   v->tls == TLSL_TLS1 || v->tls == TLSL_TLS1_1) {
			if (verdict_add(v, "weak-tls", SEV_WARNING, err,
					"minimum TLS level %s allows protocol versions with known "
					"weaknesses; require TLS1_2", analysis_tls_name(v->tls)) < 0)
				return -1;
		}
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

int analysis_job(const struct analysis_opts *o, const struct fleet_job *job,
		 struct job_verdict *v, struct ms_err *err)
{
	struct ms_err lerr = MS_ERR_INIT;
	struct cmdline_job cj;
	struct connector_opts opts;
	struct fleet_path fp;
	struct config cfg;
	int have_opts = 0, have_cfg = 0, rc = -1;

	memset(v, 0, sizeof(*v));
	memset(&cj, 0, sizeof(cj));
	memset(&opts, 0, sizeof(opts));
	memset(&fp, 0, sizeof(fp));
	memset(&cfg, 0, sizeof(cfg));
	v->schedule = xstrdup(job->schedule ? job->schedule : "");
	v->job = xstrdup(job->name ? job->name : "");
	v->machine = xstrdup(job->machine ? job->machine : "");
	v->source = xstrdup(job->source ? job->source : "");
	v->source_line = job->line;
	v->command_line = job->command_line ? cmdline_redact(job->command_line) : NULL;
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
	if (fleet_resolve_ini(o->fleet_dir, job->machine, opts.inifile,
			      job->working_dir, &fp, err) < 0)
		goto done;
	v->ini = xstrdup(fp.windows_path);
	if (fp.windows_path && !v->ini)
		goto nomem;
	switch (fp.where) {
	case FLEET_FOUND:
		v->ini_file = xstrdup(fp.rel);
		v->ini_local = xstrdup(fp.file);
		if (!v->ini_file || !v->ini_local)
			goto nomem;
		err_clear(&lerr);
		if (config_load(&cfg, fp.file, &lerr) < 0) {
			char *m;
			if (lerr.code == MS_ERR_NOMEM)
				goto nomem;
			if (!(m = relative_message(lerr.msg, fp.file, fp.rel)))
				goto nomem;
			rc = verdict_add(v, "ini-invalid", SEV_ERROR, err, "%s", m);
			free(m);
			if (rc < 0)
				goto done;
		} else {
			have_cfg = 1;
		}
		break;
	case FLEET_AMBIGUOUS:
		if (verdict_add(v, "ini-path-ambiguous", SEV_ERROR, err,
				"INI path '%s' cannot be resolved unambiguously: %s",
				fp.windows_path, fp.detail ? fp.detail : "") < 0)
			goto done;
		break;
	case FLEET_UNRESOLVED:
		if (verdict_add(v, "unresolved-property", SEV_ERROR, err,
				"%s; the audit cannot tell which INI file the job uses",
				fp.detail ? fp.detail : "unexpanded reference") < 0)
			goto done;
		break;
	case FLEET_NOT_FOUND:
	case FLEET_UNSUPPORTED:
		if (verdict_add(v, "ini-missing", SEV_ERROR, err,
				"INI file '%s' %s: %s", fp.windows_path ? fp.windows_path : "",
				opts.inifile ? "(from -inifile:)" : "(the default)",
				fp.detail ? fp.detail : "not found") < 0)
			goto done;
		break;
	}
	if (analysis_config(o, have_cfg ? &cfg : NULL, have_opts ? &opts : NULL,
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
	if (have_cfg)
		config_release(&cfg);
	cmdline_opts_release(&opts);
	cmdline_job_release(&cj);
	fleet_path_release(&fp);
	if (rc < 0)
		job_verdict_release(v);
	return rc;
}

/* The fleet-wide audit. */

struct run {
	const struct analysis_opts *o;
	struct audit *a;
	size_t alloc_jobs, alloc_problems;
};

static int on_job(const struct fleet_job *job, void *ctx, struct ms_err *err)
{
	struct run *r = ctx;
	struct audit *a = r->a;

	if (!analysis_is_connector_job(job)) {
		a->other_jobs++;
		return 0;
	}
	if (a->n_jobs == r->alloc_jobs) {
		struct job_verdict *nv;
		r->alloc_jobs = r->alloc_jobs ? r->alloc_jobs * 2 : 32;
		if (!(nv = realloc(a->jobs, r->alloc_jobs * sizeof(*nv))))
			return nomem(err);
		a->jobs = nv;
	}
	if (analysis_job(r->o, job, &a->jobs[a->n_jobs], err) < 0)
		return -1;
	a->n_jobs++;
	return 0;
}

static void on_file(const char *file, size_t files, void *ctx)
{
	struct run *r = ctx;

	if (r->o->progress)
		r->o->progress(files, r->a->n_jobs + r->a->other_jobs,
			       r->o->progress_ctx);
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
				if (shown++ < SHARED_LIST_MAX)
					buf_appendf(&b, &lerr, "%s%s/%s (%s)", shown > 1 ? ", " : "",
						    w->schedule, w->job, w->machine);
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

static int audit_inis(const struct analysis_opts *o, struct audit *a,
		      struct ms_err *err)
{
	struct fleet_ini *fi = NULL;
	char **used = NULL;
	size_t n = 0, i, nused = 0;
	int rc = 0;

	if (fleet_list_inis(o->fleet_dir, &fi, &n, err) < 0)
		return -1;
	/* the INI files jobs use, sorted for counting */
	if (!(used = malloc((a->n_jobs + 1) * sizeof(*used)))) {
		fleet_inis_free(fi, n);
		return nomem(err);
	}
	for (i = 0; i < a->n_jobs; i++)
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
	struct fleet_handlers h = { NULL, on_problem, NULL, r };
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

int audit_run(const struct analysis_opts *o, struct audit *a,
	      struct ms_err *err)
{
	struct run r;
	struct fleet_handlers h;
	size_t i;

	memset(a, 0, sizeof(*a));
	memset(&r, 0, sizeof(r));
	r.o = o;
	r.a = a;
	h.job = on_job;
	h.problem = on_problem;
	h.file_done = on_file;
	h.ctx = &r;
	if (fleet_scan(o->fleet_dir, &h, err) < 0)
		goto fail;
	if (a->n_jobs)
		qsort(a->jobs, a->n_jobs, sizeof(*a->jobs), cmp_verdict);
	if (shared_inis(a, err) < 0 || audit_inis(o, a, err) < 0 ||
	    audit_notify(o, &r, err) < 0)
		goto fail;
	for (i = 0; i < a->n_jobs; i++) {
		a->counts[a->jobs[i].status]++;
		if (i == 0 || strcasecmp(a->jobs[i].machine, a->jobs[i - 1].machine))
			a->n_machines++;
	}
	return 0;
fail:
	audit_release(a);
	return -1;
}

void audit_release(struct audit *a)
{
	size_t i;

	if (!a)
		return;
	for (i = 0; i < a->n_jobs; i++)
		job_verdict_release(&a->jobs[i]);
	free(a->jobs);
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
	memset(a, 0, sizeof(*a));
}
