/* test_analysis.c - per-job verdicts (status and findings) and the
 * fleet-wide audit (shared INI, orphans, notify slots, ordering). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "audit/analysis.h"
#include "ini/profile.h"
#include "audit/report.h"
#include "base/fsutil.h"
#include "tap.h"

static char top[256];

static void put(const char *rel, const char *text)
{
	struct ms_err err = MS_ERR_INIT;
	char path[1024], dir[1024], *slash;

	snprintf(path, sizeof(path), "%s/%s", top, rel);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	*slash = '\0';
	if (fs_mkdirs(dir, 0755, &err) < 0 ||
	    fs_write_atomic(path, text, strlen(text), 0644, &err) < 0) {
		fprintf(stderr, "setup: %s\n", err.msg);
		exit(2);
	}
}

/* A self-signed certificate valid from now-1 day to now+days (negative:
 * already expired). */
static void put_cert(const char *rel, long days)
{
	char path[1024];
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", top, rel);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), days < 0 ? (days - 10) * 86400L : -86400L);
	X509_gmtime_adj(X509_getm_notAfter(x), days * 86400L + 3600);
	X509_set_pubkey(x, k);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"t", -1, -1, 0);
	X509_set_issuer_name(x, n);
	X509_sign(x, k, EVP_sha256());
	put(rel, "");
	f = fopen(path, "w");
	PEM_write_X509(f, x);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(k);
}

static const char *GEN =
	"\xEF\xBB\xBF[General]\r\nOpConUser=ops\r\nOpConUserPassword=env:OPCON_PW\r\n";

static struct analysis_opts ao;

static int eval(const char *machine, const char *cmd, const char *wd,
		struct job_verdict *v)
{
	struct ms_err err = MS_ERR_INIT;
	struct fleet_job j = { "jobs/x.json", 0, "SCHED", "JOB", "", "Windows", NULL, NULL, NULL, NULL };

	j.machine = machine;
	j.command_line = cmd;
	j.working_dir = wd;
	if (analysis_job(&ao, &j, v, &err) < 0) {
		printf("# analysis_job: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static const struct finding *find(const struct job_verdict *v, const char *code)
{
	size_t i;

	for (i = 0; i < v->n_findings; i++)
		if (strcmp(v->findings[i].code, code) == 0)
			return &v->findings[i];
	return NULL;
}

static void dump(const struct job_verdict *v)
{
	size_t i;

	printf("#   status %s; %s %s:%d auth %s\n", analysis_status_name(v->status),
	       config_protocol_name(v->protocol), v->server ? v->server : "-", v->port,
	       analysis_auth_name(v->auth));
	for (i = 0; i < v->n_findings; i++)
		printf("#   %s %s: %s\n", analysis_severity_name(v->findings[i].severity),
		       v->findings[i].code, v->findings[i].message);
}

#define CHECK(machine, cmd, wd, want_status, name) do { \
	job_verdict_release(&v); \
	ok(eval(machine, cmd, wd, &v) == 0 && v.status == (want_status), "%s: %s", name, \
	   analysis_status_name(v.status)); \
	dump(&v); \
} while (0)

static void setup(void)
{
	char buf[4096];

#define INI(rel, body) do { snprintf(buf, sizeof(buf), "%s%s", GEN, body); put(rel, buf); } while (0)
	INI("machines/M1/D/o365.ini",
	    "[Mail]\r\nUser=a@contoso.com\r\nPassword=q3J8s0v2V7m9Pq1xZr4tYw8kLd6nBf2HcE5aUj0gWiM=\r\n"
	    "Server=outlook.office365.com\r\nEmailProtocol=IMAP\r\nSecurityProtocol=TLS1_2\r\n"
	    "SelfSignedCertificate=False\r\n");
	INI("machines/M1/D/pop.ini",
	    "[Mail]\r\nUser=a\r\nServer=pop.contoso.local\r\nEmailProtocol=POP\r\nPort=110\r\n"
	    "SecurityProtocol=SSL\r\n");
	INI("machines/M1/D/onprem.ini",
	    "[Mail]\r\nUser=a\r\nServer=mail.contoso.local\r\nEmailProtocol=IMAP\r\n"
	    "SecurityProtocol=TLS1_2\r\nSelfSignedCertificate=True\r\n");
	INI("machines/M1/D/plain.ini",
	    "[Mail]\r\nUser=a\r\nServer=mail.contoso.local\r\nEmailProtocol=IMAP\r\n"
	    "SecurityProtocol=None\r\nPort=143\r\n");
	INI("machines/M1/D/plain143.ini",
	    "[Mail]\r\nUser=a\r\nServer=mail.contoso.local\r\nEmailProtocol=IMAP\r\n"
	    "Port=143\r\n");
	INI("machines/M1/D/typo.ini",
	    "[Mail]\r\nUser=a\r\nServer=mail.contoso.local\r\nEmailProtocol=IMAP\r\n"
	    "SecurityProtocol=TLS1_2\r\nSelfSignedCertificate=False\r\nAuthMethd=OAuth2\r\n"
	    "[Audit]\r\nNotifyOnRejects=True\r\n");
	INI("machines/M1/D/badrule.ini",
	    "[Mail]\r\nUser=a\r\nServer=mail.contoso.local\r\nEmailProtocol=IMAP\r\n"
	    "SecurityProtocol=TLS1_2\r\nSelfSignedCertificate=False\r\n"
	    "[Configuration1]\r\nAllowedTimeFrame=0800-2460\r\nEvent=$CONSOLE:DISPLAY,x\r\n"
	    "[Configuration2]\r\nSubjectLineMask=^x$\r\nEvent=$CONSOLE:DISPLAY,[[1]]\r\n"
	    "[Configuration3]\r\nEvent=$CONSOLE:DISPLAY,ok\r\n");
	INI("machines/M1/D/allbad.ini",
	    "[Mail]\r\nUser=a\r\nServer=mail.contoso.local\r\nEmailProtocol=IMAP\r\n"
	    "SecurityProtocol=TLS1_2\r\nSelfSignedCertificate=False\r\n"
	    "[Configuration1]\r\nEvent=CONSOLE:DISPLAY,x\r\n");
	INI("machines/M1/D/mismatch.ini",
	    "[Mail]\r\nUser=a\r\nServer=imap.example.net\r\nEmailProtocol=IMAP\r\nPort=995\r\n"
	    "SecurityProtocol=TLS1_2\r\nSelfSignedCertificate=no\r\n");
	INI("machines/M1/C/ProgramData/OpConxps/SMArt Email/SMArtEmail.ini",
	    "[Mail]\r\nUser=a@contoso.com\r\nEmailProtocol=MSAL\r\n");
	INI("machines/M1/D/migrated.ini",
	    "[Mail]\r\nUser=a@contoso.com\r\nServer=outlook.office365.com\r\nEmailProtocol=IMAP\r\n"
	    "AuthMethod=OAuth2\r\nSecurityProtocol=TLS1_2\r\nSelfSignedCertificate=False\r\n"
	    "[OAuth]\r\nTenantId=t\r\nClientId=c\r\nClientSecret=env:SECRET\r\n");
	INI("machines/M1/D/graph-cert.ini",
	    "[Mail]\r\nUser=a@contoso.com\r\nEmailProtocol=GRAPH\r\n"
	    "[OAuth]\r\nTenantId=t\r\nClientId=c\r\nCertificateFile=D:\\certs\\soon.pem\r\n");
	INI("machines/M1/D/graph-old.ini",
	    "[Mail]\r\nUser=a@contoso.com\r\nEmailProtocol=GRAPH\r\n"
	    "[OAuth]\r\nTenantId=t\r\nClientId=c\r\nCertificateFile=D:\\certs\\old.pem\r\n");
	INI("machines/M1/D/graph-far.ini",
	    "[Mail]\r\nUser=a@contoso.com\r\nEmailProtocol=GRAPH\r\n"
	    "[OAuth]\r\nTenantId=t\r\nClientId=c\r\nCertificateFile=D:\\certs\\far.pem\r\n");
	INI("machines/M1/D/incomplete.ini",
	    "[Mail]\r\nUser=a@contoso.com\r\nServer=outlook.office365.com\r\nAuthMethod=OAuth2\r\n"
	    "[OAuth]\r\nTenantId=t\r\n");
	INI("machines/M1/D/noserver.ini", "[Mail]\r\nUser=a\r\nEmailProtocol=IMAP\r\n");
	INI("machines/M1/D/bad.ini", "[Mail]\r\nUser=a\r\n[Configuration1\r\nEvent=x\r\n");
	INI("machines/M1/D/orphan.ini", "[Mail]\r\n");
	put_cert("machines/M1/D/certs/soon.pem", 10);
	put_cert("machines/M1/D/certs/old.pem", -5);
	put_cert("machines/M1/D/certs/far.pem", 400);
#undef INI
}

static void test_verdicts(void)
{
	struct job_verdict v;
	const struct finding *f;

	memset(&v, 0, sizeof(v));
	CHECK("M1", "smartemail.exe -inifile:D:\\o365.ini", NULL, STATUS_NEEDS_MIGRATION,
	      "Office 365 IMAP with a password");
	ok(find(&v, "basic-auth-microsoft") && find(&v, "basic-auth-microsoft")->severity == SEV_ERROR,
	   "basic-auth-microsoft is an error");
	ok(find(&v, "legacy-secret"), "incumbent-encrypted password flagged");
	ok(!find(&v, "tls-verification-off"), "SelfSignedCertificate=False: verification on");
	ok(v.port == 993 && v.protocol == PROTO_IMAP && v.auth == AUTHK_BASIC && v.microsoft,
	   "effective IMAP 993 basic");
	is(v.tls_mode, "implicit", "tls: implicit on 993");
	is(v.ini_file, "machines/M1/D/o365.ini", "INI file recorded");

	CHECK("M1", "smartemail.exe -inifile:D:\\pop.ini --pop -server:OUTLOOK.Office365.com. "
	      "-port:995 -password:Hunter2", NULL, STATUS_NEEDS_MIGRATION,
	      "command-line server override makes an on-prem INI Microsoft-hosted");
	ok(find(&v, "command-line-override") && strstr(find(&v, "command-line-override")->message,
							 "-server:"), "command-line-override");
	ok((f = find(&v, "password-in-command-line")) && !strstr(f->message, "Hunter2"),
	   "password-in-command-line, without the password");
	ok(v.command_line && !strstr(v.command_line, "Hunter2") &&
	   strstr(v.command_line, "-password:***"), "command line redacted: %s", v.command_line);
	ok(find(&v, "weak-tls"), "SecurityProtocol=SSL is weak");
	ok((f = find(&v, "tls-verification-off")) && strstr(f->message, "defaults to True"),
	   "SelfSignedCertificate unset: the incumbent's default");
	ok(v.port == 995, "port from the command line");
	ok(!find(&v, "port-protocol-mismatch"), "995 fits POP");

	CHECK("M1", "smartemail.exe -inifile:D:\\o365.ini -password:[[MAIL_PW]]", NULL,
	      STATUS_NEEDS_MIGRATION, "property password");
	ok(!find(&v, "password-in-command-line"), "a [[PROPERTY]] is not a literal password");
	ok(!find(&v, "command-line-override"), "no override flags");

	CHECK("M1", "smartemail.exe -inifile:D:\\o365.ini -server:[[MAILHOST]]", NULL,
	      STATUS_BROKEN, "server from a property: cannot be evaluated");
	ok(find(&v, "unresolved-property") && find(&v, "unresolved-property")->severity == SEV_ERROR,
	   "unresolved-property error for -server:");
	CHECK("M1", "smartemail.exe -inifile:D:\\o365.ini -port:[[MAILPORT]]", NULL,
	      STATUS_NEEDS_MIGRATION, "port from a property: still evaluated");
	ok(find(&v, "unresolved-property") && find(&v, "unresolved-property")->severity == SEV_WARNING,
	   "unresolved-property warning for -port:");
	ok(v.port == 993, "the INI's port is shown");

	CHECK("M1", "\"C:\\Program Files\\OpConxps\\SMArt Email\\SMArtEmail.exe\" --msal", NULL,
	      STATUS_AT_RISK, "MSAL with the default INI");
	ok(find(&v, "msal-delegated"), "msal-delegated");
	ok(v.auth == AUTHK_MSAL_DELEGATED && v.microsoft, "MSAL is Microsoft-hosted");

	CHECK("M1", "SMArtEmail.exe", NULL, STATUS_AT_RISK, "MSAL from the INI only");

	CHECK("M1", "smartemail.exe -inifile:D:\\onprem.ini", NULL, STATUS_UNAFFECTED, "on-prem IMAP");
	ok((f = find(&v, "tls-verification-off")) && strstr(f->message, "SelfSignedCertificate=True"),
	   "explicit SelfSignedCertificate=True");

	CHECK("M1", "smartemail.exe -inifile:D:\\plain.ini", NULL, STATUS_UNAFFECTED, "plaintext IMAP");
	ok(find(&v, "no-tls"), "no-tls");
	ok(!find(&v, "tls-verification-off"), "no TLS, so no verification finding");
	is(v.tls_mode, "none", "tls: none");

	CHECK("M1", "smartemail.exe -inifile:D:\\typo.ini", NULL, STATUS_UNAFFECTED,
	      "typos and notify");
	f = find(&v, "unknown-key");
	ok(f && f->severity == SEV_WARNING &&
	   strstr(f->message, "[Mail] AuthMethd: unknown key, ignored (did you mean AuthMethod?)") &&
	   strstr(f->message, "line "), "unknown-key with the closest known key: %s",
	   f ? f->message : "");
	f = find(&v, "notify-unconfigured");
	ok(f && f->severity == SEV_WARNING &&
	   strstr(f->message, "NotifyOnRejects") && strstr(f->message, "no [Notify] section"),
	   "notify-unconfigured: %s", f ? f->message : "");

	CHECK("M1", "smartemail.exe -inifile:D:\\badrule.ini", NULL, STATUS_UNAFFECTED,
	      "broken rules: the job still runs");
	{
		size_t k, nr = 0;
		for (k = 0; k < v.n_findings; k++)
			if (strcmp(v.findings[k].code, "rule-invalid") == 0) {
				nr++;
				printf("# %s\n", v.findings[k].message);
			}
		is_int(nr, 2, "rule-invalid for each broken configuration");
	}
	f = find(&v, "rule-invalid");
	ok(f && f->severity == SEV_WARNING && strncmp(f->message, "line ", 5) == 0 &&
	   strstr(f->message, "[Configuration1] AllowedTimeFrame: invalid value '0800-2460'") &&
	   strstr(f->message, "([Configuration1] skipped)") && !strstr(f->message, "machines/"),
	   "rule-invalid names the line, not the local path: %s", f ? f->message : "");
	CHECK("M1", "smartemail.exe -inifile:D:\\allbad.ini", NULL, STATUS_BROKEN,
	      "every rule broken: the job is broken");
	f = find(&v, "rule-invalid");
	ok(f && f->severity == SEV_ERROR && strstr(f->message, "every [ConfigurationN] is broken"),
	   "rule-invalid error: %s", f ? f->message : "");

	CHECK("M1", "smartemail.exe -inifile:D:\\plain143.ini", NULL, STATUS_UNAFFECTED,
	      "port 143 without SecurityProtocol");
	is(v.tls_mode, "starttls", "tls: starttls, as the connector will do");
	ok(find(&v, "starttls-required") && !find(&v, "no-tls"),
	   "a plain port without SecurityProtocol is flagged: STARTTLS required");

	CHECK("M1", "smartemail.exe -inifile:D:\\mismatch.ini", NULL, STATUS_UNAFFECTED, "IMAP on 995");
	ok(find(&v, "port-protocol-mismatch"), "port-protocol-mismatch");

	CHECK("M1", "mailshift.exe -inifile:D:\\migrated.ini", NULL, STATUS_MIGRATED, "complete OAuth");
	ok(v.auth == AUTHK_OAUTH2 && v.n_findings == 0, "no findings on a clean migrated job");

	CHECK("M1", "mailshift -inifile:D:\\incomplete.ini", NULL, STATUS_BROKEN, "incomplete OAuth");
	ok(find(&v, "oauth-incomplete"), "oauth-incomplete");

	CHECK("M1", "mailshift -inifile:D:\\graph-cert.ini", NULL, STATUS_MIGRATED, "Graph with a cert");
	ok((f = find(&v, "certificate-expiring")) && f->severity == SEV_WARNING &&
	   strstr(f->message, "in 10 days"), "certificate expiring in 10 days");
	CHECK("M1", "mailshift -inifile:D:\\graph-old.ini", NULL, STATUS_MIGRATED, "expired cert");
	ok((f = find(&v, "certificate-expiring")) && f->severity == SEV_ERROR &&
	   strstr(f->message, "expired on"), "expired certificate is an error");
	CHECK("M1", "mailshift -inifile:D:\\graph-far.ini", NULL, STATUS_MIGRATED, "cert valid for long");
	ok(!find(&v, "certificate-expiring"), "no finding for a certificate valid 400 days");

	CHECK("M1", "smartemail.exe -inifile:D:\\noserver.ini", NULL, STATUS_BROKEN, "no server");
	ok(find(&v, "server-missing"), "server-missing");

	CHECK("M1", "smartemail.exe -inifile:D:\\bad.ini", NULL, STATUS_BROKEN, "malformed INI");
	f = find(&v, "ini-invalid");
	ok(f && strstr(f->message, "machines/M1/D/bad.ini:6:"),
	   "ini-invalid names the fleet file and the line: %s", f ? f->message : "-");

	CHECK("M1", "smartemail.exe -inifile:D:\\none.ini", NULL, STATUS_BROKEN, "missing INI");
	ok(find(&v, "ini-missing"), "ini-missing");
	CHECK("M2", "smartemail.exe", NULL, STATUS_BROKEN, "machine not collected");
	ok(find(&v, "ini-missing"), "ini-missing for an uncollected machine");
	CHECK("M1", "smartemail.exe -inifile:\"[[DIR]]\\a.ini\"", NULL, STATUS_BROKEN, "property path");
	ok(find(&v, "unresolved-property") && find(&v, "unresolved-property")->severity == SEV_ERROR,
	   "unresolved-property error for the INI path");
	CHECK("M1", "smartemail.exe --imap --pop", NULL, STATUS_BROKEN, "refused command line");
	ok(find(&v, "command-line-invalid"), "command-line-invalid");
	CHECK("M1", "cmd /c \"D:\\x\\SMARTE~1.EXE\" -inifile:o365.ini", "D:\\", STATUS_NEEDS_MIGRATION,
	      "cmd /c, 8.3 exe, relative INI");
	job_verdict_release(&v);
}

static void test_hosts(void)
{
	static const char *yes[] = { "outlook.office365.com", "OUTLOOK.OFFICE.COM",
		"smtp.office365.com:587", "imap-mail.outlook.com", "pop-mail.outlook.com",
		"smtp-mail.outlook.com", "contoso-com.mail.protection.outlook.com",
		"outlook.office365.us", "partner.outlook.cn", "outlook.office365.com.", NULL };
	static const char *no[] = { "mail.contoso.com", "outlook.office365.com.evil.net",
		"evil-outlook.com", "imap.gmail.com", "", "office365.com.example", NULL };
	int i;

	for (i = 0; yes[i]; i++)
		ok(profile_is_microsoft_host(yes[i]), "Microsoft: %s", yes[i]);
	for (i = 0; no[i]; i++)
		ok(!profile_is_microsoft_host(no[i]), "not Microsoft: '%s'", no[i]);
	ok(!profile_is_microsoft_host(NULL), "NULL");
}

static void test_audit(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct audit a;
	size_t i;

	put("jobs/b.json",
	    "[{\"name\":\"Z-JOB\",\"schedule\":{\"name\":\"S\"},\"jobType\":{\"description\":\"Windows\"},"
	    "\"primaryMachine\":{\"name\":\"M1\"},\"details\":{\"commandLine\":\"smartemail.exe -inifile:D:\\\\o365.ini\"}},"
	    "{\"name\":\"A-JOB\",\"schedule\":{\"name\":\"S\"},\"jobType\":{\"description\":\"Windows\"},"
	    "\"primaryMachine\":{\"name\":\"M1\"},\"details\":{\"commandLine\":\"smartemail.exe -inifile:d:\\\\O365.INI\"}},"
	    "{\"name\":\"OTHER\",\"jobType\":{\"description\":\"Windows\"},"
	    "\"primaryMachine\":{\"name\":\"M1\"},\"details\":{\"commandLine\":\"robocopy a b\"}}]");
	put("jobs/a.json",
	    "[{\"name\":\"MSAL\",\"schedule\":{\"name\":\"A\"},\"primaryMachine\":{\"name\":\"M1\"},"
	    "\"details\":{\"commandLine\":\"smartemail.exe --msal\"}}]");
	put("jobs/c.xml", "<jobs><job><jname>X</jname>");
	put("notify/n.json",
	    "{\"SMTPSERVER1\":\"smtp.office365.com\",\"SMTPUSER1\":\"u\",\"SMTPPASSWORD1\":\"p\","
	    "\"SMTPSERVER2\":\"relay.local\",\"SMTPUSER2\":\"u\",\"SMTPPASSWORD2\":\"p\"}");
	ao.fleet_dir = top;
	ok(audit_run(&ao, &a, &err) == 0, "audit runs: %s", err.msg);
	is_int(a.n_jobs, 3, "three connector jobs");
	is_int(a.other_jobs, 1, "one other job");
	ok(a.n_jobs == 3 && strcmp(a.jobs[0].job, "MSAL") == 0 && strcmp(a.jobs[1].job, "A-JOB") == 0 &&
	   strcmp(a.jobs[2].job, "Z-JOB") == 0, "sorted by machine, schedule, job");
	is_int(a.counts[STATUS_NEEDS_MIGRATION], 2, "two need migration");
	is_int(a.counts[STATUS_AT_RISK], 1, "one at risk");
	for (i = 1; i < a.n_jobs; i++) {
		const struct finding *f = find(&a.jobs[i], "shared-ini");
		ok(f && f->severity == SEV_WARNING && strstr(f->message, i == 1 ? "S/Z-JOB" : "S/A-JOB"),
		   "shared-ini names the other job: %s", f ? f->message : "-");
	}
	ok(!find(&a.jobs[0], "shared-ini"), "the MSAL job's INI is not shared");
	is_int(a.n_problems, 1, "one malformed export");
	ok(a.n_problems == 1 && strcmp(a.problems[0].file, "jobs/c.xml") == 0, "names the file");
	ok(a.n_orphans > 0, "orphan INI files found (%zu)", a.n_orphans);
	for (i = 0; i < a.n_inis; i++)
		if (strcmp(a.inis[i].file, "machines/M1/D/orphan.ini") == 0)
			break;
	ok(i < a.n_inis && a.inis[i].n_jobs == 0 && a.inis[i].n_findings == 1 &&
	   strcmp(a.inis[i].findings[0].code, "orphan-ini") == 0, "orphan.ini is an orphan");
	for (i = 0; i < a.n_inis; i++)
		if (strcmp(a.inis[i].file, "machines/M1/D/o365.ini") == 0)
			break;
	ok(i < a.n_inis && a.inis[i].n_jobs == 2 && a.inis[i].n_findings == 0, "o365.ini used twice");
	ok(a.n_notify == 2 && a.n_notify_basic == 1 && a.notify[0].n_findings == 1 &&
	   strcmp(a.notify[0].findings[0].code, "notify-basic-smtp") == 0 &&
	   a.notify[1].n_findings == 0, "only the Microsoft slot is notify-basic-smtp");
	audit_release(&a);

	err_clear(&err);
	ao.fleet_dir = "/nonexistent/fleet";
	ok(audit_run(&ao, &a, &err) < 0 && err.code == MS_ERR_IO, "missing fleet: %s", err.msg);
}

/* Collects the verdicts audit_jobs_each() hands out (deep copies). */
struct coll {
	struct job_verdict v[64];
	size_t n;
};

static char *dup0(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int collect(const struct job_verdict *v, void *ctx, struct ms_err *err)
{
	struct coll *c = ctx;
	struct job_verdict *d;
	size_t i;

	if (c->n == 64)
		return err_set(err, MS_ERR_INTERNAL, "too many jobs");
	d = &c->v[c->n++];
	*d = *v;
	d->schedule = dup0(v->schedule);
	d->job = dup0(v->job);
	d->machine = dup0(v->machine);
	d->source = dup0(v->source);
	d->command_line = dup0(v->command_line);
	d->ini = dup0(v->ini);
	d->ini_file = dup0(v->ini_file);
	d->ini_local = dup0(v->ini_local);
	d->server = dup0(v->server);
	d->findings = calloc(v->n_findings + 1, sizeof(*d->findings));
	for (i = 0; d->findings && i < v->n_findings; i++) {
		d->findings[i] = v->findings[i];
		d->findings[i].message = dup0(v->findings[i].message);
	}
	return 0;
}

static int stop_at_two(const struct job_verdict *v, void *ctx, struct ms_err *err)
{
	return ++*(int *)ctx == 2 ? err_set(err, MS_ERR_INTERNAL, "stop") : 0;
}

static int streq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static int same_verdict(const struct job_verdict *a, const struct job_verdict *b)
{
	size_t i;

	if (!streq(a->schedule, b->schedule) || !streq(a->job, b->job) ||
	    !streq(a->machine, b->machine) || !streq(a->source, b->source) ||
	    a->source_line != b->source_line ||
	    !streq(a->command_line, b->command_line) || !streq(a->ini, b->ini) ||
	    !streq(a->ini_file, b->ini_file) || !streq(a->ini_local, b->ini_local) ||
	    a->protocol != b->protocol || !streq(a->server, b->server) ||
	    a->port != b->port || a->tls != b->tls || a->tls_verify != b->tls_verify ||
	    a->auth != b->auth || a->microsoft != b->microsoft ||
	    a->status != b->status || a->n_findings != b->n_findings)
		return 0;
	for (i = 0; i < a->n_findings; i++)
		if (strcmp(a->findings[i].code, b->findings[i].code) ||
		    a->findings[i].severity != b->findings[i].severity ||
		    strcmp(a->findings[i].message, b->findings[i].message))
			return 0;
	return 1;
}

/* The spilled audit (flat memory) gives the same verdicts, order, counts
 * and cross-job findings as the in-memory one. */
static void test_spill(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct audit m, d;
	struct coll *c = calloc(1, sizeof(*c));
	char buf[8192];
	size_t i, k, ok_jobs = 0;
	int n, stop = 0;

	/* 13 jobs share one INI file (more than the 10 a shared-ini finding
	 * lists), two share a broken INI file; names in mixed case */
	n = snprintf(buf, sizeof(buf), "[");
	for (i = 0; i < 13; i++)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n,
			      "%s{\"name\":\"%s%02zu\",\"schedule\":{\"name\":\"%s\"},"
			      "\"primaryMachine\":{\"name\":\"%s\"},\"details\":{\"commandLine\":"
			      "\"smartemail.exe -inifile:D:\\\\pop.ini\"}}", i ? "," : "",
			      i % 2 ? "job" : "JOB", i, i % 3 ? "s" : "S", i % 4 ? "m1" : "M1");
	n += snprintf(buf + n, sizeof(buf) - (size_t)n,
		      ",{\"name\":\"B1\",\"primaryMachine\":{\"name\":\"M1\"},\"details\":"
		      "{\"commandLine\":\"smartemail.exe -inifile:D:\\\\bad.ini\"}},"
		      "{\"name\":\"B2\",\"primaryMachine\":{\"name\":\"M1\"},\"details\":"
		      "{\"commandLine\":\"smartemail.exe -inifile:D:\\\\bad.ini\"}}]");
	put("jobs/d.json", buf);
	ao.fleet_dir = top;
	ao.spill = 0;
	ok(audit_run(&ao, &m, &err) == 0, "in-memory audit: %s", err.msg);
	ao.spill = 1;
	ok(audit_run(&ao, &d, &err) == 0, "spilled audit: %s", err.msg);
	ao.spill = 0;
	ok(d.jobs == NULL && d.spill != NULL, "spilled: no verdicts in memory");
	ok(d.n_jobs == m.n_jobs && d.other_jobs == m.other_jobs &&
	   d.n_machines == m.n_machines && d.n_inis == m.n_inis &&
	   d.n_orphans == m.n_orphans && d.n_notify == m.n_notify &&
	   d.n_problems == m.n_problems &&
	   memcmp(d.counts, m.counts, sizeof(d.counts)) == 0,
	   "same summary (%zu jobs, %zu machines, %zu orphans)", d.n_jobs,
	   d.n_machines, d.n_orphans);
	for (i = 0, k = 0; i < d.n_inis && i < m.n_inis; i++)
		k += d.inis[i].n_jobs == m.inis[i].n_jobs &&
		     d.inis[i].n_findings == m.inis[i].n_findings;
	is_int(k, m.n_inis, "same use count for every INI file");
	n = audit_jobs_each(&d, AUDIT_ALL, collect, c, &err);
	ok(n == 0, "walk: %s", err.msg);
	is_int(c->n, m.n_jobs, "every job visited");
	for (i = 0; i < c->n && i < m.n_jobs; i++)
		ok_jobs += same_verdict(&c->v[i], &m.jobs[i]);
	is_int(ok_jobs, m.n_jobs, "same verdicts, findings and order");
	for (i = 0; i < m.n_jobs; i++) {
		const struct finding *f = find(&m.jobs[i], "shared-ini");
		if (f && strstr(f->message, "12 other jobs")) {
			ok(strstr(f->message, " and 2 more") != NULL,
			   "shared-ini lists 10 and counts the rest: %s", f->message);
			break;
		}
	}
	ok(i < m.n_jobs, "a job shares its INI file with 12 others");
	for (i = 0; i < c->n; i++)
		job_verdict_release(&c->v[i]);
	c->n = 0;
	n = audit_jobs_each(&d, 1u << STATUS_UNAFFECTED, collect, c, &err);
	ok(n == 0 && c->n > 0 && c->n == d.counts[STATUS_UNAFFECTED] && c->n < d.n_jobs,
	   "mask: only unaffected jobs (%zu of %zu)", c->n, d.n_jobs);
	for (i = 0, k = 0; i < c->n; i++)
		k += c->v[i].status == STATUS_UNAFFECTED;
	is_int(k, c->n, "all visited are unaffected");
	for (i = 0; i < c->n; i++)
		job_verdict_release(&c->v[i]);
	err_clear(&err);
	ok(audit_jobs_each(&d, AUDIT_ALL, stop_at_two, &stop, &err) < 0 &&
	   stop == 2 && strcmp(err.msg, "stop") == 0, "a callback stops the walk");
	{
		struct report_opts ro = { REPORT_JSON, "fleet", NULL, 0 };
		char *x = NULL, *y = NULL;
		size_t xl = 0, yl = 0;
		int f, same = 0;

		for (f = REPORT_TEXT; f <= REPORT_CSV; f++) {
			ro.format = (enum report_format)f;
			if (report_render(&m, &ro, &x, &xl, &err) == 0 &&
			    report_render(&d, &ro, &y, &yl, &err) == 0 &&
			    xl == yl && memcmp(x, y, xl) == 0)
				same++;
			free(x);
			free(y);
			x = y = NULL;
		}
		is_int(same, 3, "text, JSON and CSV reports of both audits are identical");
		/* one INI file's settings kept at a time: each is read again
		 * when a later job uses it, with the same report */
		{
			struct audit e;

			ao.ini_loaded_max = 1;
			err_clear(&err);
			ok(audit_run(&ao, &e, &err) == 0, "one INI kept at a time: %s", err.msg);
			ao.ini_loaded_max = 0;
			for (f = REPORT_TEXT, same = 0; f <= REPORT_CSV; f++) {
				ro.format = (enum report_format)f;
				if (report_render(&m, &ro, &x, &xl, &err) == 0 &&
				    report_render(&e, &ro, &y, &yl, &err) == 0 &&
				    xl == yl && memcmp(x, y, xl) == 0)
					same++;
				free(x);
				free(y);
				x = y = NULL;
			}
			is_int(same, 3, "one INI kept at a time: the same reports");
			audit_release(&e);
		}
		ro.format = REPORT_HTML;
		err_clear(&err);
		ok(report_render(&d, &ro, &x, &xl, &err) < 0 && x == NULL,
		   "HTML of a spilled audit is refused: %s", err.msg);
	}
	audit_release(&d);
	audit_release(&m);
	free(c);
}

/* The spilled audit keeps the first jobs of each INI group in report
 * order as they come: jobs arriving in reverse order, names equal but
 * for case, more than the 11 kept, two exports. */
static void test_spill_order(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct audit m, d;
	struct coll *c = calloc(1, sizeof(*c));
	struct report_opts ro = { REPORT_JSON, "fleet", NULL, 0 };
	char buf[16384], *x = NULL, *y = NULL;
	size_t i, xl = 0, yl = 0, same = 0, shared = 0;
	int n, f, k;

	for (f = 0; f < 2; f++) {
		n = snprintf(buf, sizeof(buf), "[");
		for (k = 0; k < 14; k++)
			n += snprintf(buf + n, sizeof(buf) - (size_t)n,
				      "%s\n{\"name\":\"%s%02d\",\"schedule\":{\"name\":\"%s\"},"
				      "\"primaryMachine\":{\"name\":\"%s\"},\"details\":{\"commandLine\":"
				      "\"smartemail.exe -inifile:D:\\\\o365.ini\"}}", k ? "," : "",
				      k % 2 ? "Zed" : "zED", 40 - k / 2 - f, k / 2 % 3 ? "Late" : "LATE",
				      k / 2 % 5 ? "m1" : "M1");
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "]");
		put(f ? "jobs/f-order.json" : "jobs/e-order.json", buf);
	}
	ao.spill = 0;
	ok(audit_run(&ao, &m, &err) == 0, "order: in-memory audit: %s", err.msg);
	ao.spill = 1;
	ok(audit_run(&ao, &d, &err) == 0, "order: spilled audit: %s", err.msg);
	ao.spill = 0;
	ok(audit_jobs_each(&d, AUDIT_ALL, collect, c, &err) == 0 && c->n == m.n_jobs,
	   "order: every job visited (%zu)", m.n_jobs);
	for (i = 0; i < c->n && i < m.n_jobs; i++) {
		const struct finding *fi = find(&m.jobs[i], "shared-ini");

		same += same_verdict(&c->v[i], &m.jobs[i]);
		shared += fi && strstr(fi->message, "LATE/zED") &&
			  strstr(fi->message, "more");
	}
	is_int(same, m.n_jobs, "order: same verdicts and shared-ini lists");
	/* 28 jobs in the two exports, 4 of them the same job in both (same
	 * machine, schedule and job name): 24 jobs, each sharing o365.ini */
	ok(shared >= 24, "order: the lists name the first jobs in report order (%zu)", shared);
	ok(report_render(&m, &ro, &x, &xl, &err) == 0 &&
	   report_render(&d, &ro, &y, &yl, &err) == 0 && xl == yl &&
	   memcmp(x, y, xl) == 0, "order: identical JSON reports");
	free(x);
	free(y);
	for (i = 0; i < c->n; i++)
		job_verdict_release(&c->v[i]);
	audit_release(&d);
	audit_release(&m);
	free(c);
}

/* Jobs sharing an INI file with broken rules: its rules are compiled
 * once (rules_memo) and every job gets the same rule findings and status
 * as the first. */
static void test_rules_memo(void)
{
	static const char *const names[] = { "J1", "J2", "J3", "J4", "J5" };
	struct ms_err err = MS_ERR_INIT;
	struct audit a;
	char dir[512];
	size_t i, k;

	put("memo/machines/M1/D/badrule.ini",
	    "[Mail]\r\nUser=a\r\nServer=mail.contoso.local\r\nEmailProtocol=IMAP\r\n"
	    "SecurityProtocol=TLS1_2\r\nSelfSignedCertificate=False\r\n"
	    "[Configuration1]\r\nAllowedTimeFrame=0800-2460\r\nEvent=$CONSOLE:DISPLAY,x\r\n"
	    "[Configuration2]\r\nSubjectLineMask=^x$\r\nEvent=$CONSOLE:DISPLAY,[[1]]\r\n"
	    "[Configuration3]\r\nEvent=$CONSOLE:DISPLAY,ok\r\n");
	put("memo/machines/M1/D/allbad.ini",
	    "[Mail]\r\nUser=a\r\nServer=mail.contoso.local\r\nEmailProtocol=IMAP\r\n"
	    "SecurityProtocol=TLS1_2\r\nSelfSignedCertificate=False\r\n"
	    "[Configuration1]\r\nEvent=CONSOLE:DISPLAY,x\r\n");
#define MJOB(n, ini) "{\"name\":\"" n "\",\"schedule\":{\"name\":\"S\"},\"primaryMachine\":" \
	"{\"name\":\"M1\"},\"details\":{\"commandLine\":\"smartemail.exe -inifile:D:\\\\" ini "\"}}"
	put("memo/jobs/j.json", "[" MJOB("J1", "badrule.ini") "," MJOB("J2", "badrule.ini") ","
	    MJOB("J3", "badrule.ini") "," MJOB("J4", "allbad.ini") "," MJOB("J5", "allbad.ini") "]");
#undef MJOB
	snprintf(dir, sizeof(dir), "%s/memo", top);
	ao.fleet_dir = dir;
	ok(audit_run(&ao, &a, &err) == 0, "memo: audit runs: %s", err.msg);
	is_int(a.n_jobs, 5, "memo: five jobs");
	for (i = 0; i < a.n_jobs && i < 5; i++) {
		const struct job_verdict *v = &a.jobs[i], *first = &a.jobs[i < 3 ? 0 : 3];
		size_t nr = 0, same = 1, j;

		ok(strcmp(v->job, names[i]) == 0, "memo: job %s in order", names[i]);
		for (k = 0; k < v->n_findings; k++) {
			if (strcmp(v->findings[k].code, "rule-invalid") != 0)
				continue;
			nr++;
			for (j = 0; j < first->n_findings; j++)
				if (strcmp(first->findings[j].code, "rule-invalid") == 0 &&
				    first->findings[j].severity == v->findings[k].severity &&
				    strcmp(first->findings[j].message, v->findings[k].message) == 0)
					break;
			same &= j < first->n_findings;
		}
		if (i < 3)
			ok(nr == 2 && same && v->status == STATUS_UNAFFECTED,
			   "memo: %s has the two rule warnings of badrule.ini, still runs", names[i]);
		else
			ok(nr == 1 && same && v->status == STATUS_BROKEN &&
			   find(v, "rule-invalid")->severity == SEV_ERROR,
			   "memo: %s has allbad.ini's rule error and is broken", names[i]);
	}
	audit_release(&a);
	ao.fleet_dir = top;
}

int main(void)
{
	char cmd[512];

	snprintf(top, sizeof(top), "%s/test_analysis.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(top)) {
		perror("mkdtemp");
		return 2;
	}
	ao.fleet_dir = top;
	setup();
	test_verdicts();
	test_hosts();
	test_audit();
	test_spill();
	test_spill_order();
	test_rules_memo();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", top);
	return done_testing();
}
