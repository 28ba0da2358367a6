/* test_report.c - the audit renderings: JSON stays valid whatever the
 * fleet holds, CSV quoting and formula neutralising, HTML escaping. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "audit/report.h"
#include "tap.h"

static struct finding fnd[1];
static struct job_verdict job;
static struct audit aud;

static void setup(void)
{
	fnd[0].code = "ini-missing";
	fnd[0].severity = SEV_ERROR;
	fnd[0].message = "quote \" backslash \\ tab\t nl\n ctl\x01 end";
	job.schedule = "S\xC3\xA9";                       /* valid UTF-8 */
	job.job = "bad\xFF\xFEutf8 <script>&'";           /* invalid bytes */
	job.machine = "=cmd|' /C calc'!A0";
	job.source = "jobs/x.json";
	job.source_line = 7;
	job.command_line = "smartemail.exe -password:*** \"-inifile:a,b.ini\"";
	job.ini = NULL;
	job.protocol = PROTO_UNSET;
	job.status = STATUS_BROKEN;
	job.findings = fnd;
	job.n_findings = 1;
	aud.jobs = &job;
	aud.n_jobs = 1;
	aud.counts[STATUS_BROKEN] = 1;
	aud.n_machines = 1;
}

static char *render(enum report_format f)
{
	struct ms_err err = MS_ERR_INIT;
	struct report_opts o = { f, "fleet \"dir\"", "1.2.3" };
	char *out = NULL;
	size_t len;

	if (report_render(&aud, &o, &out, &len, &err) < 0) {
		printf("# render: %s\n", err.msg);
		return NULL;
	}
	ok(strlen(out) == len, "%s: length matches",
	   f == REPORT_JSON ? "json" : f == REPORT_CSV ? "csv" : f == REPORT_HTML ? "html" : "text");
	return out;
}

static void test_json(void)
{
	char *s = render(REPORT_JSON);
	cJSON *root = s ? cJSON_Parse(s) : NULL, *j, *f;

	ok(root != NULL, "JSON parses despite invalid UTF-8 and control characters");
	j = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "jobs"), 0);
	is(cJSON_GetStringValue(cJSON_GetObjectItem(j, "job")),
	   "bad\xEF\xBF\xBD\xEF\xBF\xBDutf8 <script>&'", "invalid bytes become U+FFFD");
	is(cJSON_GetStringValue(cJSON_GetObjectItem(j, "schedule")), "S\xC3\xA9",
	   "valid UTF-8 kept");
	ok(cJSON_IsNull(cJSON_GetObjectItem(j, "ini")) &&
	   cJSON_IsNull(cJSON_GetObjectItem(j, "protocol")) &&
	   cJSON_IsNull(cJSON_GetObjectItem(j, "port")), "unknowns are null");
	is_int(cJSON_GetObjectItem(j, "source_line")->valueint, 7, "source_line");
	f = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "findings"), 0);
	is(cJSON_GetStringValue(cJSON_GetObjectItem(f, "message")), fnd[0].message,
	   "escapes round-trip");
	is(cJSON_GetStringValue(cJSON_GetObjectItem(root, "fleet")), "fleet \"dir\"", "fleet");
	ok(cJSON_GetObjectItem(root, "version") == NULL, "no version (stable golden files)");
	is_int(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "summary"), "broken")->valueint, 1,
	       "summary counts");
	ok(cJSON_GetArraySize(cJSON_GetObjectItem(root, "errors")) == 0, "empty arrays");
	cJSON_Delete(root);
	free(s);
}

static void test_csv(void)
{
	char *s = render(REPORT_CSV), *row;

	row = s ? strchr(s, '\n') + 1 : NULL;
	ok(row && strncmp(row, "\"'=cmd|' /C calc'!A0\",", 22) == 0,
	   "a formula cell gets a leading apostrophe");
	ok(s && strstr(s, "\"smartemail.exe -password:*** \"\"-inifile:a,b.ini\"\"\""),
	   "quotes doubled, commas kept inside the cell");
	ok(s && strstr(s, ",\"ini-missing\","), "finding codes");
	free(s);
}

static void test_html(void)
{
	char *s = render(REPORT_HTML);

	ok(s && strstr(s, "bad\xEF\xBF\xBD\xEF\xBF\xBDutf8 &lt;script&gt;&amp;&#39;"),
	   "job name escaped, invalid UTF-8 replaced");
	ok(s && strstr(s, "S\xC3\xA9"), "valid UTF-8 kept");
	ok(s && !strstr(s, "<script>&"), "no raw markup from the fleet");
	ok(s && strstr(s, "fleet &quot;dir&quot;"), "fleet folder escaped");
	ok(s && strstr(s, "mailshift-audit 1.2.3"), "version shown");
	ok(s && strstr(s, "1 of 1 connector job needs action"), "lead sentence");
	ok(s && strstr(s, "<dt id=\"f-ini-missing\">"), "the finding is explained");
	free(s);
}

static void test_text(void)
{
	char *s = render(REPORT_TEXT);

	ok(s && strstr(s, "Jobs needing action:"), "action section");
	ok(s && strstr(s, "source  jobs/x.json:7"), "source with line");
	ok(s && strstr(s, "error   ini-missing: quote"), "finding line");
	free(s);
}

/* report_write() streams the same bytes report_render() builds, also
 * when the report is larger than one chunk; a failing FILE is an error. */
static void test_stream(void)
{
	static struct job_verdict many[3000];
	struct ms_err err = MS_ERR_INIT;
	struct report_opts o = { REPORT_JSON, "fleet", NULL };
	struct audit big = aud;
	int f, same = 0;
	size_t i;

	for (i = 0; i < 3000; i++)
		many[i] = job;
	big.jobs = many;
	big.n_jobs = 3000;
	big.counts[STATUS_BROKEN] = 3000;
	for (f = REPORT_TEXT; f <= REPORT_HTML; f++) {
		char *mem = NULL, *file = NULL;
		size_t len = 0, flen = 0;
		FILE *fp = open_memstream(&file, &flen);

		o.format = (enum report_format)f;
		err_clear(&err);
		if (fp && report_render(&big, &o, &mem, &len, &err) == 0 &&
		    report_write(&big, &o, fp, &err) == 0 && fclose(fp) == 0 &&
		    len == flen && memcmp(mem, file, len) == 0 && len > 256 * 1024)
			same++;
		else
			printf("# format %d: %s (%zu vs %zu bytes)\n", f, err.msg, len, flen);
		free(mem);
		free(file);
	}
	is_int(same, 4, "streamed reports equal the rendered ones (all formats, > 1 chunk)");
	{
		FILE *ro = fopen("/dev/full", "w");

		err_clear(&err);
		o.format = REPORT_JSON;
		ok(ro && report_write(&big, &o, ro, &err) < 0 && err.code == MS_ERR_IO,
		   "a failing write is an error: %s", err.msg);
		ok(strstr(err.msg, "cannot write the report: ") &&
		   strstr(err.msg, strerror(ENOSPC)),
		   "the writer thread's errno reaches the message");
		if (ro)
			fclose(ro);
	}
}

int main(void)
{
	enum report_format f;

	setup();
	test_json();
	test_csv();
	test_html();
	test_text();
	test_stream();
	ok(report_format_parse("HTML", &f) == 0 && f == REPORT_HTML, "format names any case");
	ok(report_format_parse("pdf", &f) < 0, "unknown format");
	ok(strstr(report_finding_fix("weak-tls"), "TLS1_2") != NULL, "fix text");
	return done_testing();
}
