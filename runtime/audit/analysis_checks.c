/*
 * analysis_checks.c - the checks of one job's configuration: command
 * line, legacy authentication, TLS, certificates, rules; and the facts
 * they rest on (Microsoft hosts, "OAuth complete", connector jobs).
 */
#include "audit/analysis_int.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "base/buf.h"
#include "base/fsutil.h"
#include "base/mem.h"
#include "ini/ini.h"
#include "ini/profile.h"
#include "transport/mailbox/mailbox.h"
#include "ini/rules.h"
#include "auth/secret.h"

/* Whether [OAuth] is complete is ini/profile's decision; the audit asks
 * it only where the INI's login uses OAuth (AuthMethod=OAuth2 or Graph). */
int analysis_oauth_complete(const struct config *cfg)
{
	return cfg && (cfg->auth == AUTH_OAUTH2 || cfg->protocol == PROTO_GRAPH) &&
	       profile_oauth_complete(cfg);
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
static int check_rules_now(struct job_verdict *v, const struct config *cfg,
			   struct rules_masks *masks, int *broken,
			   struct ms_err *err)
{
	struct ms_err rerr = MS_ERR_INIT;
	struct rules *rs = NULL;
	size_t i, plen = cfg->path ? strlen(cfg->path) : 0;
	int rc = 0;

	if (!cfg->n_rules)
		return 0;
	if (rules_compile_memo(&rs, cfg, masks, &rerr) < 0) {
		if (rerr.code == MS_ERR_NOMEM)
			return err_nomem(err);
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

void rules_memo_release(struct rules_memo *m)
{
	struct rules_masks *masks;
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->n; i++)
		free(m->f[i].message);
	free(m->f);
	masks = m->masks;
	memset(m, 0, sizeof(*m));
	m->masks = masks;
}

/* check_rules_now(), or its findings again from memo (see rules_memo). */
static int check_rules(struct job_verdict *v, const struct config *cfg,
		       int *broken, struct rules_memo *memo, struct ms_err *err)
{
	size_t i, first = v->n_findings;
	int br = 0;

	if (memo && memo->set) {
		for (i = 0; i < memo->n; i++)
			if (verdict_add(v, memo->f[i].code, memo->f[i].severity, err,
					"%s", memo->f[i].message) < 0)
				return -1;
		*broken |= memo->broken;
		return 0;
	}
	if (check_rules_now(v, cfg, memo ? memo->masks : NULL, &br, err) < 0)
		return -1;
	*broken |= br;
	if (memo && v->n_findings > first) {
		memo->f = calloc(v->n_findings - first, sizeof(*memo->f));
		if (!memo->f)
			return err_nomem(err);
		for (i = first; i < v->n_findings; i++) {
			struct finding *f = &memo->f[memo->n];

			f->code = v->findings[i].code;
			f->severity = v->findings[i].severity;
			if (!(f->message = strdup(v->findings[i].message))) {
				rules_memo_release(memo);
				return err_nomem(err);
			}
			memo->n++;
		}
	}
	if (memo) {
		memo->broken = br;
		memo->set = 1;
	}
	return 0;
}

/* Long (about 195 lines): the checks of one job in the order the report
 * explains them, each a few lines on the effective settings that the
 * ones before computed; they read best as one list. */
int analysis_config(const struct analysis_opts *o, const struct config *cfg,
		    const struct connector_opts *opts, const char *machine,
		    struct job_verdict *v, struct ms_err *err)
{
	return analysis_config_memo(o, cfg, NULL, opts, machine, v, err);
}

int analysis_config_memo(const struct analysis_opts *o, const struct config *cfg,
			 struct rules_memo *memo,
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
			return err_nomem(err);
		v->port = opts ? opts->port : 0;
		v->tls = opts ? opts->tls : TLSL_UNSET;
		v->auth = v->protocol == PROTO_MSAL ? AUTHK_MSAL_DELEGATED : AUTHK_UNKNOWN;
		v->microsoft = v->protocol == PROTO_MSAL ||
			       profile_is_microsoft_host(v->server);
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
		return err_nomem(err);
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
		       profile_is_microsoft_host(server);
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
	if (check_rules(v, cfg, &broken, memo, err) < 0)
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
	analysis_sort_findings(v);
	return 0;
}

/* Across jobs (moved here from analysis.c, which keeps under the
 * 1,200 lines t0006 allows). */

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

/* shared-ini: jobs whose INI file is the same collected file. */
int audit_shared_inis(struct audit *a, struct ms_err *err)
{
	size_t *idx, n = 0, i, j, k;
	int rc = 0;

	if (!(idx = malloc((a->n_jobs + 1) * sizeof(*idx))))
		return err_nomem(err);
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
				rc = err_nomem(err);
				break;
			}
			rc = verdict_add(v, "shared-ini", sev, err,
					 "INI file shared with %zu other job%s: %s; changing it "
					 "changes all of them", j - i - 1, j - i - 1 == 1 ? "" : "s",
					 b.data ? b.data : "");
			buf_release(&b);
			analysis_sort_findings(v);
		}
	}
	free(idx);
	return rc;
}
