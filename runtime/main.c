/*
 * mailshift - the connector: a drop-in for smartemail.exe.
 * Command line and exit codes are the incumbent's (0 matched, 1 command
 * line error, 2 general error, [General] ExitCodeForNoMatchingEmails).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/platform.h"
#include "ini/cmdline.h"
#include "ini/config.h"
#include "connector/connector.h"
#include "mail/explain.h"
#include "base/log.h"

static const char usage[] =
"usage: mailshift [-inifile:PATH] [-server:HOST] [-port:N] [--imap|--pop]\n"
"                 [--ssl|--tls1_1|--tls1_2] [--delete] [--msal] [--dry-run]\n"
"                 [--retry-failed] [-v|-vv]\n"
"       mailshift --failed [-inifile:PATH]        (mail that could not be processed)\n"
"       mailshift --credentials [-user:U] [-password:P] [-opconuser:U]\n"
"                 [-opconpassword:P] [-clientsecret:S] [-inifile:PATH]\n"
"       mailshift --oauth-login [-inifile:PATH]       (device-code sign-in)\n"
"       mailshift --msal --renewMsalToken --renewTokenSilent [-inifile:PATH]\n"
"       mailshift --help | -V | --version\n"
"\n"
"Reads one mailbox, matches each new message against the INI's\n"
"[ConfigurationN] rules and writes OpCon events into MSGINDirectory.\n"
"\n"
"  -inifile:PATH     the INI file (default $MAILSHIFT_INIFILE, else\n"
"                    smartemail.exe's own: on Windows\n"
"                    %PROGRAMDATA%\\OpConxps\\SMArt Email\\SMArtEmail.ini,\n"
"                    elsewhere ./SMArtEmail.ini)\n"
"  -server: -port: --imap --pop --ssl --tls1_1 --tls1_2\n"
"                    override the INI's [Mail] keys\n"
"  --delete          delete matched mail even with DeleteEmails=None\n"
"  --msal            Microsoft 365 through the INI's [OAuth] section\n"
"  --dry-run         match and report; write, delete and save nothing\n"
"  --retry-failed    try quarantined messages again in this run\n"
"  -v                a summary, connection and login counts\n"
"  -vv               also the protocol trace (credentials redacted)\n"
"\n"
"Exit: 0 mail matched, 1 command line error, 2 error (or a message that\n"
"      could not be processed: see --failed),\n"
"      [General] ExitCodeForNoMatchingEmails when nothing matched.\n"
"\n"
"Examples:\n"
"  mailshift -inifile:\"C:\\ProgramData\\OpConxps\\SMArtEmail\\Mail.ini\" --dry-run -v\n"
"  mailshift -inifile:/etc/opcon/Mail.ini --failed\n";

/* Print an error and, when the catalogue knows it, its cause and fix. */
static void fail(const struct ms_err *err)
{
	char text[2048];

	fprintf(stderr, "mailshift: %s\n", err->msg);
	if (explain_error(err->msg, text, sizeof(text)) == 0)
		fputs(text, stderr);
}

static int prompt(void *ctx, const char *user_code, const char *uri,
		  const char *message, long expires_in)
{
	(void)ctx;
	if (message && *message)
		printf("%s\n", message);
	else
		printf("To sign in, open %s and enter the code %s (valid %ld minutes).\n",
		       uri, user_code, expires_in / 60);
	fflush(stdout);
	return 0;
}

static void report(void *ctx, enum connector_note note, const char *key,
		   const char *section, const char *text)
{
	const int *dry = ctx;

	switch (note) {
	case NOTE_EVENT:
		printf("%s%s [%s] %s\n", *dry ? "would write " : "event ", key,
		       section ? section : "", text ? text : "");
		break;
	case NOTE_MATCHED:
		printf("matched %s [%s]: %s\n", key, section ? section : "",
		       text ? text : "");
		break;
	case NOTE_REJECTED:
		printf("rejected %s: %s\n", key, text ? text : "");
		break;
	case NOTE_RECOVERED:
		printf("recovered %s (interrupted run)\n", key);
		break;
	case NOTE_FAILED:
		printf("failed %s: %s (left on the server, tried again next run)\n",
		       key, text ? text : "");
		break;
	case NOTE_QUARANTINED:
		printf("quarantined %s: %s (no more tries: see --failed, "
		       "--retry-failed)\n", key, text ? text : "");
		break;
	default:
		break;
	}
}

static int print_failed(void *ctx, const struct connector_failed *f)
{
	char first[32], last[32];

	(void)ctx;
	strftime(first, sizeof(first), "%Y-%m-%d %H:%M", localtime(&f->first_seen));
	strftime(last, sizeof(last), "%Y-%m-%d %H:%M", localtime(&f->updated));
	printf("%s %s\n  mailbox:  %s\n  from:     %s\n  subject:  %s\n"
	       "  tries:    %d (first %s, last %s)\n  reason:   %s\n",
	       f->quarantined ? "quarantined" : "failed", f->key, f->mailbox,
	       f->sender, f->subject, f->attempts, first, last, f->reason);
	return 0;
}

/* What a successful run did (the summary of a failed run would only be
 * zeros: the error and its fix are what matter then). */
static void print_summary(const struct connector_opts *o,
			  const struct connector_summary *sum)
{
	if (o->verbose || o->dry_run)
		fprintf(stderr, "mailshift: %ld listed, %ld new, %ld matched, %ld rejected, "
			"%ld already done, %ld events%s, %ld deleted, %ld bodies, "
			"%ld failed\n",
			sum->listed, sum->considered, sum->matched, sum->rejected,
			sum->skipped, sum->events, o->dry_run ? " (not written)" : "",
			sum->deleted, sum->bodies, sum->failed);
	if (sum->failed)
		fprintf(stderr, "mailshift: %ld message%s could not be processed and %s "
			"left on the server (exit 2): see mailshift --failed\n",
			sum->failed, sum->failed == 1 ? "" : "s",
			sum->failed == 1 ? "was" : "were");
	if (sum->quarantined_kept)
		fprintf(stderr, "mailshift: %ld quarantined message%s still on the server: "
			"see mailshift --failed\n", sum->quarantined_kept,
			sum->quarantined_kept == 1 ? "" : "s");
	if (sum->prior && (o->verbose || o->dry_run))
		fprintf(stderr, "mailshift: %ld message%s older than LastRunDate left alone "
			"(first run)\n", sum->prior, sum->prior == 1 ? "" : "s");
}

/* the default INI's name, expanded (platform_default_ini) */
static char *default_ini;

static void free_default_ini(void)
{
	free(default_ini);
	default_ini = NULL;
}

int main(int argc, char **argv)
{
	struct connector_opts o;
	struct connector_run r = { 0 };
	struct connector_summary sum;
	struct ms_err err = MS_ERR_INIT;
	const char *ini;
	int rc, dry;

	platform_no_core_dumps();   /* a core would hold secrets in clear */
	if (argc == 2 && strcmp(argv[1], "help") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	if (cmdline_parse_connector(argc, argv, &o, &err)) {
		fprintf(stderr, "mailshift: %s\n%.*s(mailshift --help for every option)\n",
			err.msg, (int)(strstr(usage, "\n\n") - usage + 1), usage);
		cmdline_opts_release(&o);
		return 1;
	}
	if (o.help || o.version) {
		if (o.help)
			fputs(usage, stdout);
		else
			printf("mailshift %s\n", MS_VERSION);
		cmdline_opts_release(&o);
		return 0;
	}
	log_set_sink(log_stderr_sink, "mailshift",
		     o.verbose >= 2 ? LOG_LVL_TRACE : o.verbose ? LOG_LVL_DEBUG
		     : LOG_LVL_WARN);
	ini = o.inifile ? o.inifile : getenv("MAILSHIFT_INIFILE");
	if (!ini) {
		/* lives as long as the process: freed at exit */
		if (!(default_ini = config_expand_env(platform_default_ini()))) {
			fputs("mailshift: out of memory\n", stderr);
			cmdline_opts_release(&o);
			return 2;
		}
		atexit(free_default_ini);
		ini = default_ini;
	}

	if (o.credentials) {
		rc = 0;
		if (!o.client_secret || o.user || o.password || o.opcon_user ||
		    o.opcon_password)
			rc = connector_store_credentials(ini, o.user, o.password,
							 o.opcon_user, o.opcon_password,
							 &err);
		if (!rc && o.client_secret)
			rc = connector_store_client_secret(ini, o.client_secret, &err);
		if (rc)
			fail(&err);
		else
			printf("credentials sealed into '%s'\n", ini);
		cmdline_opts_release(&o);
		return rc ? (err.code == MS_ERR_USAGE ? 1 : 2) : 0;
	}

	if (o.oauth_login || o.renew_msal_token) {
		/* --renewMsalToken without --renewTokenSilent was the incumbent's
		 * browser sign-in: headless here, so it is the device code */
		if (o.oauth_login || !o.renew_silent)
			rc = connector_oauth_login(ini, prompt, NULL, &err);
		else
			rc = connector_oauth_renew(ini, &err);
		if (rc)
			fail(&err);
		else
			printf("token for '%s' %s\n", ini,
			       o.renew_silent ? "renewed" : "stored");
		cmdline_opts_release(&o);
		return rc ? 2 : 0;
	}

	if (o.list_failed) {
		rc = connector_list_failed(ini, o.state_path, print_failed, NULL, &err);
		if (rc)
			fail(&err);
		cmdline_opts_release(&o);
		return rc ? 2 : 0;
	}

	dry = o.dry_run;
	r.ini_path = ini;
	r.server = o.server;
	r.port = o.port;
	r.protocol = o.protocol;
	r.tls = o.tls;
	r.delete_mail = o.delete_mail;
	r.msal = o.msal;
	r.dry_run = o.dry_run;
	r.verbose = o.verbose >= 2;
	r.state_path = o.state_path;
	r.retry_failed = o.retry_failed;
	r.report = report;
	r.report_ctx = &dry;
	if (getenv("MAILSHIFT_CRASH_AFTER"))
		r.crash_after = atol(getenv("MAILSHIFT_CRASH_AFTER"));

	rc = connector_run(&r, &sum, &err);
	if (rc) {
		fail(&err);
		if (!o.inifile && !getenv("MAILSHIFT_INIFILE") &&
		    access(ini, F_OK) != 0)
			fprintf(stderr, "mailshift: no -inifile: given and MAILSHIFT_INIFILE "
				"not set, so the INI is %s\n"
				"fix: give -inifile:PATH or set MAILSHIFT_INIFILE to the INI "
				"file\n", ini);
	}
	if (!rc)
		print_summary(&o, &sum);
	cmdline_opts_release(&o);
	return connector_exit_code(rc, &sum);
}
