/*
 * report.c - text, JSON, CSV and HTML renderings of an audit.
 */
#include "audit/report.h"

#include <errno.h>
#ifdef __linux__
#include <fcntl.h>          /* sync_file_range */
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "audit/report_int.h"
#include "base/buf.h"
#include "base/escape.h"

#define REPORT_MAX ((size_t)1024 * 1024 * 1024)

int report_format_parse(const char *s, enum report_format *f)
{
	static const char *const names[] = { "text", "json", "csv", "html" };
	int i;

	for (i = 0; i < 4; i++)
		if (s && strcasecmp(s, names[i]) == 0) {
			*f = (enum report_format)i;
			return 0;
		}
	return -1;
}

/* The catalogue shown in the HTML report (and usable by other tools). */
const struct report_code report_catalogue[] = {
	{ "basic-auth-microsoft",
	  "The job reads an Exchange Online mailbox with a user name and password; Microsoft has turned Basic authentication off for IMAP and POP.",
	  "Register an application in Entra ID (IMAP.AccessAsApp or Mail.Read), grant it the mailbox, and add an [OAuth] section with mailshift-migrate." },
	{ "msal-delegated",
	  "The incumbent's MSAL mode uses a vendor-owned app and a refresh token cached for one Windows user; it stops working when the token lapses (about a week unused) or that user changes.",
	  "Move to your own app registration with client credentials (mailshift [OAuth] section); drop the --renewMsalToken keep-alive job." },
	{ "ini-missing",
	  "The INI file the job uses was not found among the files collected from its machine.",
	  "Collect the file into machines/MACHINE/DRIVE/... or correct -inifile: on the job." },
	{ "ini-invalid",
	  "The INI file cannot be read as a connector configuration (the line is named).",
	  "Fix the named line; the connector would fail on it too." },
	{ "ini-encoding",
	  "The INI file is saved as Windows-1252 (ANSI); the connector reads UTF-8 and UTF-16 only and refuses it rather than guess.",
	  "Let mailshift-migrate convert it (UTF-8 with a byte-order mark, every character kept), or save it as UTF-8 in an editor." },
	{ "ini-path-ambiguous",
	  "An 8.3 short name (like PROGRA~1) or a case clash in the INI path matches several collected folders; the audit does not guess.",
	  "Write the long path in -inifile: (quoted when it has spaces)." },
	{ "password-in-command-line",
	  "A literal password is written on the job's command line, visible to anyone who can read the job definition or its logs.",
	  "Use an encrypted OpCon global property ([[NAME]]) or keep the secret in the INI file (sealed)." },
	{ "command-line-override",
	  "Server, port, protocol or TLS flags on the command line override the INI file, so changing only the INI does not change what the job does.",
	  "Move these settings into the INI file and remove the flags when the job is migrated." },
	{ "tls-verification-off",
	  "SelfSignedCertificate is True (explicitly or by the incumbent's default), so the mail server's certificate is not verified.",
	  "Set SelfSignedCertificate=False; for a private CA set CAFile=... in [Mail]." },
	{ "weak-tls",
	  "The minimum TLS level allows SSL, TLS 1.0 or TLS 1.1.",
	  "Set SecurityProtocol=TLS1_2 (or remove --ssl / --tls1_1)." },
	{ "no-tls",
	  "Mail and credentials cross the network unencrypted.",
	  "Use the server's TLS port, or StartTLS=True." },
	{ "starttls-required",
	  "A plain port (143, 110) without SecurityProtocol: the incumbent fell back to clear text when the server did not offer STARTTLS; mailshift upgrades with STARTTLS and refuses a server without it, never sending the password in clear.",
	  "Nothing if the server offers STARTTLS; else use its TLS port (993, 995), or SecurityProtocol=NONE to accept plaintext explicitly." },
	{ "rule-invalid",
	  "A [ConfigurationN] (or RejectEvent) cannot work: a bad mask, time frame, sender list, an event without $COMMAND:, or a token with no value there. The connector leaves it out, processes the mail with the other rules and exits 2; with every rule broken it reads no mail.",
	  "Fix the named line of the INI file." },
	{ "unknown-key",
	  "A key (or section) that neither the incumbent nor mailshift reads, usually a typo: its value is silently ignored, so the default applies (AuthMethd=OAuth2 means Basic).",
	  "Correct the name; the message gives the closest known key." },
	{ "notify-unconfigured",
	  "NotifyOnAccepts or NotifyOnRejects is set but no usable [Notify] section says how the mails go out, so every notify mail is lost.",
	  "Add [Notify] (Server, Port, TLS, AuthMethod, or Transport=Graph with [OAuth]); mailshift-migrate adds one when the mapping has \"notify\"." },
	{ "port-protocol-mismatch",
	  "The port belongs to another protocol (for example 995 for IMAP, or an SMTP port).",
	  "Check the Port key and -port:; IMAP is 993 (143 with StartTLS), POP is 995 (110)." },
	{ "shared-ini",
	  "Several jobs use the same INI file: changing it changes all of them at once.",
	  "Migrate these jobs together, or give each its own copy first." },
	{ "legacy-secret",
	  "A value is encrypted with the incumbent's proprietary scheme, which mailshift cannot (and does not try to) decrypt.",
	  "Enter the secret again with mailshift --credentials, or reference it as env:NAME / file:PATH." },
	{ "unresolved-property",
	  "An OpCon [[PROPERTY]] or %VARIABLE% in a path or setting cannot be expanded by the audit.",
	  "Check the property's value in OpCon; write a literal path where the audit must follow it." },
	{ "certificate-expiring",
	  "The certificate used for the app registration has expired or expires soon; token requests then fail.",
	  "Create a new certificate, upload it to the app registration, and update CertificateFile." },
	{ "certificate-not-collected",
	  "The certificate file named in [OAuth] was not collected, so its expiry was not checked.",
	  "Collect the file with the INI files to have it checked." },
	{ "oauth-incomplete",
	  "AuthMethod=OAuth2 is set but the [OAuth] section lacks a tenant, a client id or a credential.",
	  "Complete [OAuth]: TenantId, ClientId and ClientSecret or CertificateFile." },
	{ "server-missing",
	  "Neither the INI file nor the command line names a mail server.",
	  "Set [Mail] Server." },
	{ "command-line-invalid",
	  "The connector would refuse the job's command line.",
	  "Fix the option named in the message." },
	{ "not-a-connector-job",
	  "The command line does not run the connector.",
	  "None." },
	{ "orphan-ini",
	  "No exported job uses this INI file: it is stale, or its job was not exported.",
	  "Export the missing job, or archive the file." },
	{ "export-incomplete",
	  "The job was read from an export that could not be read to its end (truncated, or malformed part way): the jobs after it in that export are missing from this report.",
	  "Export the schedule again (or repair the file named in the message) and run the audit again." },
	{ "notify-basic-smtp",
	  "OpCon's notification service sends through Exchange Online with basic SMTP AUTH, off by default from the end of December 2026.",
	  "On OpCon 25.1 or later set the slot's SMTPAPPID, SMTPSECRET and SMTPTENANTID (an app with SMTP.SendAsApp)." },
};

#define N_CATALOGUE (sizeof(report_catalogue) / sizeof(report_catalogue[0]))
const size_t report_catalogue_n = N_CATALOGUE;

const char *report_finding_fix(const char *code)
{
	size_t i;

	for (i = 0; i < N_CATALOGUE; i++)
		if (strcmp(report_catalogue[i].code, code) == 0)
			return report_catalogue[i].fix;
	return "See the message.";
}

static const char *nz(const char *s)
{
	return s ? s : "";
}

/* buf_append() with the common case inline: the hot path of the JSON and
 * CSV writers is many short appends. */
static inline int put(struct buf *b, const void *s, size_t n, struct ms_err *err)
{
	if (b->data && b->len + n + 1 <= b->alloc && b->len + n <= b->cap) {
		memcpy(b->data + b->len, s, n);
		b->len += n;
		b->data[b->len] = '\0';
		return 0;
	}
	return buf_append(b, s, n, err);
}

static int puts_(struct buf *b, const char *s, struct ms_err *err)
{
	return put(b, s, strlen(s), err);
}

/*
 * Streaming: when fp is not NULL, what is in b goes to the sink once it
 * holds SPILL_AT bytes (and at the end), so the report is never whole in
 * memory.  The sink writes on a thread of its own while the next chunk is
 * rendered (two buffers: the one being filled, the one being written).
 */
#define SPILL_AT ((size_t)256 * 1024)

struct sink {
	FILE *fp;
	int threaded;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct buf w;             /* being written (busy) or spare */
	int busy, quit;
	int werrno;               /* the first failed write, 0 if none */
};

static void *sink_main(void *arg)
{
	struct sink *k = arg;

	pthread_mutex_lock(&k->mu);
	for (;;) {
		while (!k->busy && !k->quit)
			pthread_cond_wait(&k->cv, &k->mu);
		if (!k->busy)
			break;
		pthread_mutex_unlock(&k->mu);
		errno = 0;
		if (!k->werrno && fwrite(k->w.data, 1, k->w.len, k->fp) != k->w.len)
			k->werrno = errno ? errno : EIO;
#ifdef __linux__
		/* the written chunks on their way to the disk now, so that a
		 * caller's fsync (write_report_atomic) waits for the last
		 * ones only; not a regular file (a pipe): nothing done */
		else if (!k->werrno && fflush(k->fp) == 0)
			(void)sync_file_range(fileno(k->fp), 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
		pthread_mutex_lock(&k->mu);
		k->w.len = 0;
		k->busy = 0;
		pthread_cond_broadcast(&k->cv);
	}
	pthread_mutex_unlock(&k->mu);
	return NULL;
}

static void sink_open(struct sink *k, FILE *fp)
{
	memset(k, 0, sizeof(*k));
	k->fp = fp;
	buf_init(&k->w, REPORT_MAX);
	pthread_mutex_init(&k->mu, NULL);
	pthread_cond_init(&k->cv, NULL);
	k->threaded = pthread_create(&k->th, NULL, sink_main, k) == 0;
}

/* Wait for the writer to be idle; returns its errno (0 when fine). */
static int sink_idle(struct sink *k)
{
	int e;

	pthread_mutex_lock(&k->mu);
	while (k->busy)
		pthread_cond_wait(&k->cv, &k->mu);
	e = k->werrno;
	pthread_mutex_unlock(&k->mu);
	return e;
}

static int sink_close(struct sink *k)
{
	int e = 0;

	if (k->threaded) {
		e = sink_idle(k);
		pthread_mutex_lock(&k->mu);
		k->quit = 1;
		pthread_cond_broadcast(&k->cv);
		pthread_mutex_unlock(&k->mu);
		pthread_join(k->th, NULL);
	}
	pthread_cond_destroy(&k->cv);
	pthread_mutex_destroy(&k->mu);
	buf_release(&k->w);
	return e;
}

int report_spill(struct buf *b, struct sink *k, int force, struct ms_err *err)
{
	struct buf t;
	int e;

	if (!k || (!force && b->len < SPILL_AT) || b->len == 0)
		return 0;
	if (!k->threaded) {
		errno = 0;
		if (fwrite(b->data, 1, b->len, k->fp) != b->len)
			return err_set(err, MS_ERR_IO, "cannot write the report: %s",
				       strerror(errno ? errno : EIO));
		buf_reset(b);
		return 0;
	}
	if ((e = sink_idle(k)))
		return err_set(err, MS_ERR_IO, "cannot write the report: %s",
			       strerror(e));
	/* the writer is idle: swap the buffers and wake it */
	pthread_mutex_lock(&k->mu);
	t = k->w;
	k->w = *b;
	*b = t;
	buf_reset(b);
	k->busy = 1;
	pthread_cond_broadcast(&k->cv);
	pthread_mutex_unlock(&k->mu);
	return 0;
}

/* The sentences that must come before any count: a report that read no
 * job, or not every export, is not a pass.  Empty when neither. */
int report_headline(const struct audit *a, struct buf *b, struct ms_err *err)
{
	if (audit_read_nothing(a) &&
	    buf_appendf(b, err, "NO JOB WAS READ: jobs/ holds no job export mailshift "
			"recognises (%zu export%s could not be read, %zu other file%s "
			"ignored); this is not a pass.", a->n_problems,
			a->n_problems == 1 ? "" : "s", a->n_ignored,
			a->n_ignored == 1 ? "" : "s") < 0)
		return -1;
	if (!audit_read_nothing(a) && audit_incomplete(a) &&
	    buf_appendf(b, err, "INCOMPLETE: %zu export%s could not be read to the end, "
			"so the jobs after the error are missing; the %zu job%s read "
			"before it %s marked export-incomplete.", a->n_problems,
			a->n_problems == 1 ? "" : "s", a->incomplete_jobs,
			a->incomplete_jobs == 1 ? "" : "s",
			a->incomplete_jobs == 1 ? "is" : "are") < 0)
		return -1;
	return 0;
}

/* Text. */

static int text_findings(struct buf *b, const struct finding *f, size_t n,
			 const char *indent, struct ms_err *err)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (buf_appendf(b, err, "%s%-7s %s: %s\n", indent,
				analysis_severity_name(f[i].severity), f[i].code,
				f[i].message) < 0)
			return -1;
	return 0;
}

static int text_job(struct buf *b, const struct job_verdict *v,
		    struct ms_err *err)
{
	if (buf_appendf(b, err, "\n  %s  %s / %s  [%s]\n", v->machine, v->schedule,
			v->job, analysis_status_name(v->status)) < 0 ||
	    buf_appendf(b, err, "    source  %s%s", v->source,
			v->source_line ? "" : "\n") < 0 ||
	    (v->source_line && buf_appendf(b, err, ":%d\n", v->source_line) < 0) ||
	    (v->command_line &&
	     buf_appendf(b, err, "    command %s\n", v->command_line) < 0) ||
	    buf_appendf(b, err, "    ini     %s%s%s%s\n", v->ini ? v->ini : "(unknown)",
			v->ini_file ? " (" : "", nz(v->ini_file),
			v->ini_file ? ")" : "") < 0)
		return -1;
	if (v->server &&
	    buf_appendf(b, err, "    mail    %s %s:%d, TLS %s%s%s%s, auth %s\n",
			config_protocol_name(v->protocol), v->server, v->port,
			analysis_tls_name(v->tls),
			v->tls_verify || v->tls == TLSL_NONE ? "" : " (unverified)",
			v->tls_mode ? ", tls: " : "", v->tls_mode ? v->tls_mode : "",
			analysis_auth_name(v->auth)) < 0)
		return -1;
	return text_findings(b, v->findings, v->n_findings, "    ", err);
}

/* State of a walk over the jobs (audit_jobs_each()). */
struct jctx {
	struct buf *b;
	struct sink *fp;
	size_t n;                 /* jobs written so far */
	const char *head;         /* text: printed before the first job */
	int action;               /* text: 1 jobs needing action, 0 the others */
};

static int text_each(const struct job_verdict *v, void *ctx, struct ms_err *err)
{
	struct jctx *c = ctx;

	if (analysis_needs_action(v) != c->action)
		return 0;
	if (!c->n++ && buf_appends(c->b, c->head, err) < 0)
		return -1;
	if (text_job(c->b, v, err) < 0 || report_spill(c->b, c->fp, 0, err) < 0)
		return -1;
	return 0;
}

static int render_text(const struct audit *a, const struct report_opts *o,
		       struct buf *b, struct sink *fp, struct ms_err *err)
{
	size_t i;
	int s;

	if (buf_appendf(b, err, "mailshift audit of fleet '%s'\n", nz(o->fleet_dir)) < 0)
		return -1;
	if (audit_read_nothing(a) || audit_incomplete(a)) {
		if (report_headline(a, b, err) < 0 || puts_(b, "\n", err) < 0)
			return -1;
	}
	if (buf_appendf(b, err, "%zu connector job%s on %zu machine%s, %zu other job%s, "
			"%zu INI file%s\n\n", a->n_jobs, a->n_jobs == 1 ? "" : "s",
			a->n_machines, a->n_machines == 1 ? "" : "s", a->other_jobs,
			a->other_jobs == 1 ? "" : "s", a->n_inis,
			a->n_inis == 1 ? "" : "s") < 0)
		return -1;
	for (s = 0; s < STATUS_COUNT; s++)
		if (buf_appendf(b, err, "  %-16s %zu\n",
				analysis_status_name((enum job_status)s), a->counts[s]) < 0)
			return -1;
	if (buf_appendf(b, err, "  %-16s %zu\n  %-16s %zu\n", "orphan INI files",
			a->n_orphans, "basic SMTP slots", a->n_notify_basic) < 0)
		return -1;
	if (a->migrated_errors &&
	    buf_appendf(b, err, "  (%zu migrated job%s still need%s action: an error "
			"finding)\n", a->migrated_errors, a->migrated_errors == 1 ? "" : "s",
			a->migrated_errors == 1 ? "s" : "") < 0)
		return -1;
	{
		struct jctx c = { b, fp, 0, "\nJobs needing action:\n", 1 };

		if (audit_jobs_each(a, AUDIT_ALL, text_each, &c, err) < 0)
			return -1;
		c.n = 0;
		c.head = "\nOther connector jobs:\n";
		c.action = 0;
		if (audit_jobs_each(a, AUDIT_ALL, text_each, &c, err) < 0)
			return -1;
	}
	if (a->n_orphans && buf_appends(b, "\nINI files no job uses:\n", err) < 0)
		return -1;
	for (i = 0; i < a->n_inis; i++)
		if (a->inis[i].n_jobs == 0 &&
		    buf_appendf(b, err, "  %s  %s (%s)\n", a->inis[i].machine,
				a->inis[i].windows_path, a->inis[i].file) < 0)
			return -1;
	if (a->n_notify && buf_appends(b, "\nNotification SMTP slots:\n", err) < 0)
		return -1;
	for (i = 0; i < a->n_notify; i++) {
		const struct audit_notify *n = &a->notify[i];
		if (buf_appendf(b, err, "  %s slot %d  %s:%d  auth %s\n", n->source,
				n->slot, n->server, n->port, n->auth) < 0 ||
		    text_findings(b, n->findings, n->n_findings, "    ", err) < 0)
			return -1;
	}
	if (a->n_problems && buf_appends(b, "\nExports that could not be read:\n", err) < 0)
		return -1;
	for (i = 0; i < a->n_problems; i++) {
		const struct audit_problem *p = &a->problems[i];
		if (buf_appendf(b, err, "  %s", p->file) < 0 ||
		    (p->line && buf_appendf(b, err, ":%d", p->line) < 0) ||
		    buf_appendf(b, err, ": %s\n", p->message) < 0)
			return -1;
	}
	if (a->n_ignored && buf_appends(b, "\nFiles in jobs/ that were not read:\n", err) < 0)
		return -1;
	for (i = 0; i < a->n_ignored; i++)
		if (buf_appendf(b, err, "  %s: %s\n", a->ignored[i].file,
				a->ignored[i].message) < 0)
			return -1;
	return 0;
}

/* JSON. */

/* JSON, written directly (no tree: a big fleet's report would double in
 * memory).  Strings are escaped per RFC 8259; bytes that are not valid
 * UTF-8 (an export can carry anything) become U+FFFD, so the output is
 * always valid JSON. */

/* Printable ASCII but '"' and '\\': what escape_json() copies unchanged. */
static inline int json_plain_byte(unsigned char c)
{
	return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* The length of the plain run (json_plain_byte()) at the start of s[0..n),
 * 16 bytes at a time where SSE2 is there. */
static size_t json_plain_len(const char *s, size_t n)
{
	size_t i = 0;
#ifdef __SSE2__
	const __m128i sp = _mm_set1_epi8(0x20), q = _mm_set1_epi8('"'),
		      bs = _mm_set1_epi8('\\');

	for (; i + 16 <= n; i += 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
		/* signed: bytes from 0x80 are below 0x20 too */
		int m = _mm_movemask_epi8(_mm_or_si128(_mm_cmplt_epi8(x, sp),
				_mm_or_si128(_mm_cmpeq_epi8(x, q), _mm_cmpeq_epi8(x, bs))));

		if (m)
			return i + (size_t)__builtin_ctz((unsigned)m);
	}
#endif
	while (i < n && json_plain_byte((unsigned char)s[i]))
		i++;
	return i;
}

/* escape_json(b, s, 0, err), faster for ASCII: plain runs copied in one
 * go, the few bytes that need it escaped as escape_json() does (Windows
 * paths and command lines are full of backslashes); a string with any
 * byte from 0x80 goes to escape_json() (UTF-8 checked there). */
static int jw_str(struct buf *b, const char *s, struct ms_err *err)
{
	size_t n, i, k;

	if (!s)
		return put(b, "null", 4, err);
	n = strlen(s);
	k = json_plain_len(s, n);
	for (i = k; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return escape_json(b, s, 0, err);
	if (put(b, "\"", 1, err) < 0)
		return -1;
	for (i = 0; ; i = k + 1, k = i + json_plain_len(s + i, n - i)) {
		unsigned char c;
		char u[8];
		const char *e;

		if (put(b, s + i, k - i, err) < 0)
			return -1;
		if (k == n)
			break;
		c = (unsigned char)s[k];
		if (c == '"')
			e = "\\\"";
		else if (c == '\\')
			e = "\\\\";
		else if (c == '\n')
			e = "\\n";
		else if (c == '\r')
			e = "\\r";
		else if (c == '\t')
			e = "\\t";
		else {
			snprintf(u, sizeof(u), "\\u%04x", c);
			e = u;
		}
		if (puts_(b, e, err) < 0)
			return -1;
	}
	return put(b, "\"", 1, err);
}

/* "key": value pairs; first says whether a comma is needed. */
static int jw_key(struct buf *b, const char *indent, const char *key, int *first,
		  struct ms_err *err)
{
	size_t ni = strlen(indent), nk = strlen(key), n = 0;
	char t[128];

	if (ni + nk + 6 > sizeof(t) || json_plain_len(key, nk) < nk) {
		if ((!*first && put(b, ",", 1, err) < 0) ||
		    put(b, "\n", 1, err) < 0 || puts_(b, indent, err) < 0 ||
		    jw_str(b, key, err) < 0 || put(b, ": ", 2, err) < 0)
			return -1;
		*first = 0;
		return 0;
	}
	/* the common case in one append: [,]\n<indent>"<key>": */
	if (!*first)
		t[n++] = ',';
	t[n++] = '\n';
	memcpy(t + n, indent, ni);
	n += ni;
	t[n++] = '"';
	memcpy(t + n, key, nk);
	n += nk;
	memcpy(t + n, "\": ", 3);
	n += 3;
	*first = 0;
	return put(b, t, n, err);
}

static int jw_kstr(struct buf *b, const char *in, const char *k, const char *v,
		   int *first, struct ms_err *err)
{
	return jw_key(b, in, k, first, err) < 0 ? -1 : jw_str(b, v, err);
}

static int jw_knum(struct buf *b, const char *in, const char *k, long long v,
		   int null_if_zero, int *first, struct ms_err *err)
{
	if (jw_key(b, in, k, first, err) < 0)
		return -1;
	if (null_if_zero && v == 0)
		return puts_(b, "null", err);
	{
		char num[32];
		int n = snprintf(num, sizeof(num), "%lld", v);
		return put(b, num, (size_t)n, err);
	}
}

static int jw_kbool(struct buf *b, const char *in, const char *k, int v,
		    int *first, struct ms_err *err)
{
	return jw_key(b, in, k, first, err) < 0 ? -1 :
	       puts_(b, v ? "true" : "false", err);
}

/* "findings": [ {...}, ... ] at the given indent. */
static int jw_findings(struct buf *b, const char *in, const struct finding *f,
		       size_t n, int *first, struct ms_err *err)
{
	size_t i;

	if (jw_key(b, in, "findings", first, err) < 0 ||
	    puts_(b, n ? "[" : "[]", err) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if ((i && put(b, ",", 1, err) < 0) || put(b, "\n", 1, err) < 0 ||
		    puts_(b, in, err) < 0 || puts_(b, "  {\"code\": ", err) < 0 ||
		    jw_str(b, f[i].code, err) < 0 ||
		    puts_(b, ", \"severity\": ", err) < 0 ||
		    jw_str(b, analysis_severity_name(f[i].severity), err) < 0 ||
		    puts_(b, ", \"message\": ", err) < 0 ||
		    jw_str(b, f[i].message, err) < 0 || puts_(b, "}", err) < 0)
			return -1;
	}
	if (n && (put(b, "\n", 1, err) < 0 || puts_(b, in, err) < 0 ||
		  put(b, "]", 1, err) < 0))
		return -1;
	return 0;
}

static int json_each(const struct job_verdict *v, void *ctx, struct ms_err *err)
{
	struct jctx *c = ctx;
	struct buf *b = c->b;
	const char *I3 = "      ";
	int f3;

	f3 = 1;
	if ((c->n++ && put(b, ",", 1, err) < 0) ||
	    puts_(b, "\n    {", err) < 0 ||
	    jw_kstr(b, I3, "schedule", v->schedule, &f3, err) < 0 ||
	    jw_kstr(b, I3, "job", v->job, &f3, err) < 0 ||
	    jw_kstr(b, I3, "machine", v->machine, &f3, err) < 0 ||
	    jw_kstr(b, I3, "source", v->source, &f3, err) < 0 ||
	    jw_knum(b, I3, "source_line", v->source_line, 1, &f3, err) < 0 ||
	    jw_kstr(b, I3, "command_line", v->command_line, &f3, err) < 0 ||
	    jw_kstr(b, I3, "ini", v->ini, &f3, err) < 0 ||
	    jw_kstr(b, I3, "ini_file", v->ini_file, &f3, err) < 0 ||
	    jw_kstr(b, I3, "protocol", v->protocol == PROTO_UNSET ? NULL :
		    config_protocol_name(v->protocol), &f3, err) < 0 ||
	    jw_kstr(b, I3, "server", v->server, &f3, err) < 0 ||
	    jw_knum(b, I3, "port", v->port, 1, &f3, err) < 0 ||
	    jw_kstr(b, I3, "tls", analysis_tls_name(v->tls), &f3, err) < 0 ||
	    jw_kstr(b, I3, "tls_mode", v->tls_mode, &f3, err) < 0 ||
	    jw_kbool(b, I3, "tls_verify", v->tls_verify, &f3, err) < 0 ||
	    jw_kstr(b, I3, "auth", analysis_auth_name(v->auth), &f3, err) < 0 ||
	    jw_kbool(b, I3, "microsoft", v->microsoft, &f3, err) < 0 ||
	    jw_kstr(b, I3, "status", analysis_status_name(v->status), &f3, err) < 0 ||
	    jw_findings(b, I3, v->findings, v->n_findings, &f3, err) < 0 ||
	    puts_(b, "\n    }", err) < 0 || report_spill(b, c->fp, 0, err) < 0)
		return -1;
	return 0;
}

static int render_json(const struct audit *a, const struct report_opts *o,
		       struct buf *b, struct sink *fp, struct ms_err *err)
{
	const char *I1 = "  ", *I2 = "    ", *I3 = "      ";
	int first = 1, f2, f3, k;
	size_t i;

	if (puts_(b, "{", err) < 0 ||
	    jw_kstr(b, I1, "tool", "mailshift-audit", &first, err) < 0 ||
	    jw_kstr(b, I1, "fleet", nz(o->fleet_dir), &first, err) < 0 ||
	    jw_key(b, I1, "summary", &first, err) < 0 || puts_(b, "{", err) < 0)
		return -1;
	f2 = 1;
	if (jw_knum(b, I2, "jobs", (long long)a->n_jobs, 0, &f2, err) < 0 ||
	    jw_knum(b, I2, "machines", (long long)a->n_machines, 0, &f2, err) < 0 ||
	    jw_knum(b, I2, "other_jobs", (long long)a->other_jobs, 0, &f2, err) < 0)
		return -1;
	for (k = 0; k < STATUS_COUNT; k++)
		if (jw_knum(b, I2, analysis_status_name((enum job_status)k),
			    (long long)a->counts[k], 0, &f2, err) < 0)
			return -1;
	if (jw_knum(b, I2, "inis", (long long)a->n_inis, 0, &f2, err) < 0 ||
	    jw_knum(b, I2, "orphan_inis", (long long)a->n_orphans, 0, &f2, err) < 0 ||
	    jw_knum(b, I2, "notify_basic_smtp", (long long)a->n_notify_basic, 0, &f2, err) < 0 ||
	    jw_knum(b, I2, "export_errors", (long long)a->n_problems, 0, &f2, err) < 0 ||
	    jw_knum(b, I2, "needs_action", (long long)a->n_action, 0, &f2, err) < 0 ||
	    jw_knum(b, I2, "migrated_with_errors", (long long)a->migrated_errors, 0, &f2,
		    err) < 0 ||
	    jw_knum(b, I2, "incomplete_jobs", (long long)a->incomplete_jobs, 0, &f2, err) < 0 ||
	    jw_knum(b, I2, "ignored_files", (long long)a->n_ignored, 0, &f2, err) < 0 ||
	    jw_kbool(b, I2, "complete", !audit_incomplete(a) && !audit_read_nothing(a),
		     &f2, err) < 0 ||
	    buf_appendf(b, err, "\n%s}", I1) < 0)
		return -1;

	if (jw_key(b, I1, "jobs", &first, err) < 0 ||
	    puts_(b, a->n_jobs ? "[" : "[]", err) < 0)
		return -1;
	{
		struct jctx c = { b, fp, 0, NULL, 0 };

		if (audit_jobs_each(a, AUDIT_ALL, json_each, &c, err) < 0)
			return -1;
	}
	if (a->n_jobs && buf_appendf(b, err, "\n%s]", I1) < 0)
		return -1;

	if (jw_key(b, I1, "inis", &first, err) < 0 ||
	    puts_(b, a->n_inis ? "[" : "[]", err) < 0)
		return -1;
	for (i = 0; i < a->n_inis; i++) {
		const struct audit_ini *n = &a->inis[i];

		f3 = 1;
		if (buf_appendf(b, err, "%s\n%s{", i ? "," : "", I2) < 0 ||
		    jw_kstr(b, I3, "machine", n->machine, &f3, err) < 0 ||
		    jw_kstr(b, I3, "path", n->windows_path, &f3, err) < 0 ||
		    jw_kstr(b, I3, "file", n->file, &f3, err) < 0 ||
		    jw_knum(b, I3, "jobs", (long long)n->n_jobs, 0, &f3, err) < 0 ||
		    jw_findings(b, I3, n->findings, n->n_findings, &f3, err) < 0 ||
		    buf_appendf(b, err, "\n%s}", I2) < 0 || report_spill(b, fp, 0, err) < 0)
			return -1;
	}
	if (a->n_inis && buf_appendf(b, err, "\n%s]", I1) < 0)
		return -1;

	if (jw_key(b, I1, "notify", &first, err) < 0 ||
	    puts_(b, a->n_notify ? "[" : "[]", err) < 0)
		return -1;
	for (i = 0; i < a->n_notify; i++) {
		const struct audit_notify *n = &a->notify[i];

		f3 = 1;
		if (buf_appendf(b, err, "%s\n%s{", i ? "," : "", I2) < 0 ||
		    jw_kstr(b, I3, "source", n->source, &f3, err) < 0 ||
		    jw_knum(b, I3, "slot", n->slot, 0, &f3, err) < 0 ||
		    jw_kstr(b, I3, "server", n->server, &f3, err) < 0 ||
		    jw_knum(b, I3, "port", n->port, 1, &f3, err) < 0 ||
		    jw_kstr(b, I3, "user", n->user, &f3, err) < 0 ||
		    jw_kstr(b, I3, "auth", n->auth, &f3, err) < 0 ||
		    jw_kbool(b, I3, "microsoft", n->microsoft, &f3, err) < 0 ||
		    jw_findings(b, I3, n->findings, n->n_findings, &f3, err) < 0 ||
		    buf_appendf(b, err, "\n%s}", I2) < 0)
			return -1;
	}
	if (a->n_notify && buf_appendf(b, err, "\n%s]", I1) < 0)
		return -1;

	if (jw_key(b, I1, "errors", &first, err) < 0 ||
	    puts_(b, a->n_problems ? "[" : "[]", err) < 0)
		return -1;
	for (i = 0; i < a->n_problems; i++) {
		const struct audit_problem *p = &a->problems[i];

		if (buf_appendf(b, err, "%s\n%s{\"file\": ", i ? "," : "", I2) < 0 ||
		    jw_str(b, p->file, err) < 0 ||
		    buf_appendf(b, err, ", \"line\": %d, \"message\": ", p->line) < 0 ||
		    jw_str(b, p->message, err) < 0 || puts_(b, "}", err) < 0)
			return -1;
	}
	if (a->n_problems && buf_appendf(b, err, "\n%s]", I1) < 0)
		return -1;
	if (jw_key(b, I1, "ignored", &first, err) < 0 ||
	    puts_(b, a->n_ignored ? "[" : "[]", err) < 0)
		return -1;
	for (i = 0; i < a->n_ignored; i++)
		if (buf_appendf(b, err, "%s\n%s{\"file\": ", i ? "," : "", I2) < 0 ||
		    jw_str(b, a->ignored[i].file, err) < 0 ||
		    puts_(b, ", \"message\": ", err) < 0 ||
		    jw_str(b, a->ignored[i].message, err) < 0 || puts_(b, "}", err) < 0)
			return -1;
	if (a->n_ignored && buf_appendf(b, err, "\n%s]", I1) < 0)
		return -1;
	return puts_(b, "\n}\n", err);
}

/* CSV: each cell by escape_csv (RFC 4180 quoting; a cell a spreadsheet
 * would run as a formula gets a leading apostrophe). */
static int csv_cell(struct buf *b, const char *s, int last, struct ms_err *err)
{
	if (escape_csv(b, s, err) < 0)
		return -1;
	return puts_(b, last ? "\n" : ",", err);
}

static int csv_each(const struct job_verdict *v, void *ctx, struct ms_err *err)
{
	struct jctx *c = ctx;
	struct buf *b = c->b, codes, msgs, fixes, source;
	size_t k, j;
	char port[16];
	int rc = 0;

	if (v->port)
		snprintf(port, sizeof(port), "%d", v->port);
	else
		port[0] = '\0';
	buf_init(&codes, 64 * 1024);
	buf_init(&msgs, 256 * 1024);
	buf_init(&fixes, 64 * 1024);
	buf_init(&source, 8 * 1024);
	/* "code: message" per finding, "code: fix" per distinct code, joined
	 * by " | " (one line per job: the file stays greppable) */
	for (k = 0; k < v->n_findings && rc == 0; k++) {
		const char *code = v->findings[k].code;

		for (j = 0; j < k && strcmp(v->findings[j].code, code); j++)
			;
		rc = buf_appendf(&codes, err, "%s%s", k ? ";" : "", code) < 0 ||
		     buf_appendf(&msgs, err, "%s%s: %s", k ? " | " : "", code,
				 v->findings[k].message) < 0 ||
		     (j == k && buf_appendf(&fixes, err, "%s%s: %s", fixes.len ? " | " : "",
					    code, report_finding_fix(code)) < 0);
	}
	if (rc == 0)
		rc = buf_appendf(&source, err, v->source_line ? "%s:%d" : "%s", nz(v->source),
				 v->source_line) < 0;
	if (rc) {
		buf_release(&codes);
		buf_release(&msgs);
		buf_release(&fixes);
		buf_release(&source);
		return -1;
	}
	rc = csv_cell(b, v->machine, 0, err) || csv_cell(b, v->schedule, 0, err) ||
	     csv_cell(b, v->job, 0, err) ||
	     csv_cell(b, analysis_status_name(v->status), 0, err) ||
	     csv_cell(b, v->protocol == PROTO_UNSET ? "" :
		      config_protocol_name(v->protocol), 0, err) ||
	     csv_cell(b, v->server, 0, err) || csv_cell(b, port, 0, err) ||
	     csv_cell(b, analysis_tls_name(v->tls), 0, err) ||
	     csv_cell(b, v->tls_mode, 0, err) ||
	     csv_cell(b, v->tls_verify ? "yes" : "no", 0, err) ||
	     csv_cell(b, analysis_auth_name(v->auth), 0, err) ||
	     csv_cell(b, v->ini, 0, err) || csv_cell(b, v->ini_file, 0, err) ||
	     csv_cell(b, source.data, 0, err) || csv_cell(b, codes.data, 0, err) ||
	     csv_cell(b, msgs.data, 0, err) || csv_cell(b, fixes.data, 0, err) ||
	     csv_cell(b, v->command_line, 1, err);
	buf_release(&codes);
	buf_release(&msgs);
	buf_release(&fixes);
	buf_release(&source);
	if (rc || report_spill(b, c->fp, 0, err) < 0)
		return -1;
	return 0;
}

static int render_csv(const struct audit *a, struct buf *b, struct sink *fp,
		      struct ms_err *err)
{
	if (buf_appends(b, "machine,schedule,job,status,protocol,server,port,tls,"
			"tls_mode,tls_verify,auth,ini,ini_file,source,findings,messages,fixes,"
			"command_line\n",
			err) < 0)
		return -1;
	{
		struct jctx c = { b, fp, 0, NULL, 0 };

		if (audit_jobs_each(a, AUDIT_ALL, csv_each, &c, err) < 0)
			return -1;
	}
	return 0;
}

static int render(const struct audit *a, const struct report_opts *o,
		  struct buf *b, struct sink *fp, struct ms_err *err)
{
	switch (o->format) {
	case REPORT_JSON: return render_json(a, o, b, fp, err);
	case REPORT_CSV: return render_csv(a, b, fp, err);
	case REPORT_HTML:
		if (a->spill)
			return err_set(err, MS_ERR_INTERNAL, "the HTML report needs "
				       "the audit in memory (not spilled)");
		return report_render_html(a, o, b, fp, err);
	default: return render_text(a, o, b, fp, err);
	}
}

int report_render(const struct audit *a, const struct report_opts *o,
		  char **out, size_t *len, struct ms_err *err)
{
	struct buf b;

	*out = NULL;
	if (len)
		*len = 0;
	buf_init(&b, REPORT_MAX);
	if (render(a, o, &b, NULL, err) < 0) {
		buf_release(&b);
		return -1;
	}
	if (!b.data && buf_appends(&b, "", err) < 0)
		return -1;
	*out = buf_detach(&b, len);
	return 0;
}

int report_write(const struct audit *a, const struct report_opts *o,
		 FILE *fp, struct ms_err *err)
{
	struct sink k;
	struct buf b;
	int rc, e;

	buf_init(&b, REPORT_MAX);
	sink_open(&k, fp);
	rc = render(a, o, &b, &k, err);
	if (rc == 0)
		rc = report_spill(&b, &k, 1, err);
	if ((e = sink_close(&k)) && rc == 0)
		rc = err_set(err, MS_ERR_IO, "cannot write the report: %s",
			     strerror(e));
	buf_release(&b);
	return rc;
}
