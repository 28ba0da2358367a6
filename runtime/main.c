/*
 * mailshift - the connector: a drop-in for smartemail.exe.
 * Command line and exit codes are the incumbent's (0 matched, 1 command
 * line error, 2 general error, [General] ExitCodeForNoMatchingEmails).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdline.h"
#include "connector.h"
#include "explain.h"
#include "log.h"

#define DEFAULT_INI "SMArtEmail.ini"

static const char usage[] =
"usage: mailshift [-inifile:PATH] [-server:HOST] [-port:N] [--imap|--pop]\n"
"                 [--ssl|--tls1_1|--tls1_2] [--delete] [--msal] [--dry-run] [-v]\n"
"       mailshift --credentials [-user:U] [-password:P] [-opconuser:U]\n"
"                 [-opconpassword:P] [-inifile:PATH]\n"
"       mailshift --oauth-login [-inifile:PATH]       (device-code sign-in)\n"
"       mailshift --msal --renewMsalToken --renewTokenSilent [-inifile:PATH]\n"
"\n"
"Reads one mailbox, matches each new message against the INI's\n"
"[ConfigurationN] rules and writes OpCon events into MSGINDirectory.\n"
"Without -inifile: $MAILSHIFT_INIFILE, else ./" DEFAULT_INI ".\n"
"Exit: 0 mail matched, 1 command line error, 2 error,\n"
"      [General] ExitCodeForNoMatchingEmails when nothing matched.\n";

/* Print an error and, when the catalogue knows it, its cause and fix. */
static void fail(const struct ms_err *err)
{
	struct explain e;
	struct explain_ids ids = { 0 };
	char text[2048];

	fprintf(stderr, "mailshift: %s\n", err->msg);
	if (explain_text(err->msg, &e) == 0) {
		explain_ids_from_text(err->msg, &ids);
		explain_format(&e, &ids, text, sizeof(text));
		fputs(text, stderr);
	}
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
	default:
		break;
	}
}

int main(int argc, char **argv)
{
	struct connector_opts o;
	struct connector_run r = { 0 };
	struct connector_summary sum;
	struct ms_err err = MS_ERR_INIT;
	const char *ini;
	int rc, dry;

	if (cmdline_parse_connector(argc, argv, &o, &err)) {
		fprintf(stderr, "mailshift: %s\n%s", err.msg, usage);
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
	if (!ini)
		ini = DEFAULT_INI;

	if (o.credentials) {
		rc = connector_store_credentials(ini, o.user, o.password, o.opcon_user,
						 o.opcon_password, &err);
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
	r.report = report;
	r.report_ctx = &dry;
	if (getenv("MAILSHIFT_CRASH_AFTER"))
		r.crash_after = atol(getenv("MAILSHIFT_CRASH_AFTER"));

	rc = connector_run(&r, &sum, &err);
	if (rc)
		fail(&err);
	if (o.verbose || o.dry_run)
		fprintf(stderr, "mailshift: %ld listed, %ld new, %ld matched, %ld rejected, "
			"%ld already done, %ld events%s, %ld deleted, %ld bodies\n",
			sum.listed, sum.considered, sum.matched, sum.rejected,
			sum.skipped, sum.events, o.dry_run ? " (not written)" : "",
			sum.deleted, sum.bodies);
	cmdline_opts_release(&o);
	return connector_exit_code(rc, &sum);
}
