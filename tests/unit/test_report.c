/* test_report.c - the audit renderings: JSON stays valid whatever the
 * fleet holds, CSV quoting and formula neutralising, HTML escaping. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "audit/report.h"
#include "base/buf.h"
#include "base/escape.h"
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
	struct report_opts o = { f, "fleet \"dir\"", "1.2.3", 0 };
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


/* The JSON writer's fast path for plain ASCII writes exactly what
 * escape_json() does: every byte 1..127, each escaped byte at every
 * position of a 16-byte block, and non-ASCII (left to escape_json()). */
static void test_json_escape_same(void)
{
	static char msgs[3 * 40][48];
	static struct finding many[3 * 40];
	struct job_verdict saved = job;
	char all[128], *s;
	size_t i, k, n = 0, found = 0;
	int c;

	for (c = 1; c < 128; c++)
		all[c - 1] = (char)c;
	all[127] = '\0';
	for (k = 0; k < 40; k++) {
		static const char special[] = "\"\\\x1f";
		for (i = 0; i < 3; i++) {
			memset(msgs[n], 'a', 40);
			msgs[n][40] = '\0';
			msgs[n][k] = special[i];
			many[n].code = "x";
			many[n].severity = SEV_INFO;
			many[n].message = msgs[n];
			n++;
		}
	}
	many[0].message = all;
	many[1].message = "D:\\Jobs\\grp0\\mail0.ini \"quoted\" \xC3\xA9 \xFF end";
	job.findings = many;
	job.n_findings = n;
	job.command_line = all;
	s = render(REPORT_JSON);
	for (i = 0; s && i < n; i++) {
		struct ms_err err = MS_ERR_INIT;
		struct buf b;

		buf_init(&b, BUF_DEFAULT_CAP);
		if (escape_json(&b, many[i].message, 0, &err) == 0 && b.data &&
		    strstr(s, b.data))
			found++;
		buf_release(&b);
	}
	is_int(found, n, "JSON strings written exactly as escape_json() writes them");
	free(s);
	job = saved;
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
	ok(s && strstr(s, "<a href=\"#f-ini-missing\">ini-missing</a>"),
	   "the finding code links to its explanation");
	ok(s && strstr(s, "made <time datetime=\"20"), "the date it was made");
	ok(s && strstr(s, "@media print"), "a print stylesheet");
	free(s);
}

/* The embedded rows: valid JSON (cJSON reads it), no "<" that could end
 * the <script> element, and the groups by INI file in the page's order. */
static cJSON *page_data(const char *html)
{
	const char *tag = "<script type=\"application/json\" id=\"audit-data\">";
	const char *p = html ? strstr(html, tag) : NULL, *e;
	char *json;
	cJSON *j;

	if (!p || !(e = strstr(p += strlen(tag), "</script>")))
		return NULL;
	json = strndup(p, (size_t)(e - p));
	j = memchr(json, '<', strlen(json)) ? NULL : cJSON_Parse(json);
	free(json);
	return j;
}

static const char *data_str(cJSON *d, cJSON *id)
{
	return cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(d, "s"),
						       (int)cJSON_GetNumberValue(id)));
}

static void test_html_groups(void)
{
	static struct job_verdict jobs[3];
	static struct audit_ini inis[2];
	static struct finding orphan = { "orphan-ini", SEV_INFO, "no job uses it" };
	struct ms_err err = MS_ERR_INIT;
	struct report_opts o = { REPORT_HTML, "fleet", NULL, 0 };
	struct audit a;
	char *s = NULL, *one = NULL, *alone, *old;
	size_t len;
	cJSON *d, *g;

	memset(&a, 0, sizeof(a));
	jobs[0] = job;                               /* broken, a.ini */
	jobs[0].ini_file = "machines/M/a.ini";
	jobs[1] = job;
	jobs[1].job = "J2 </script><b>";
	jobs[1].status = STATUS_UNAFFECTED;
	jobs[1].n_findings = 0;
	jobs[1].ini_file = "machines/M/a.ini";
	jobs[2] = jobs[1];                           /* its INI was not found */
	jobs[2].job = "ALONE";
	jobs[2].ini_file = NULL;
	jobs[2].ini = "D:\\missing.ini";
	inis[0] = (struct audit_ini){ "M", "D:\\a.ini", "machines/M/a.ini", 2, NULL, 0 };
	inis[1] = (struct audit_ini){ "M", "D:\\old.ini", "machines/M/old.ini", 0, &orphan, 1 };
	a.jobs = jobs;
	a.n_jobs = 3;
	a.inis = inis;
	a.n_inis = 2;
	a.n_orphans = 1;
	a.counts[STATUS_BROKEN] = 1;
	a.counts[STATUS_UNAFFECTED] = 2;
	if (report_render(&a, &o, &s, &len, &err) < 0)
		printf("# render: %s\n", err.msg);
	ok(s && (one = strstr(s, "<code class=\"gp\">D:\\a.ini</code><span class=\"gn\">2 jobs, "
			      "1 needs action")), "the two jobs of a.ini are one group, its work counted");
	alone = s ? strstr(s, "<code class=\"gp\">D:\\missing.ini</code>") : NULL;
	old = s ? strstr(s, "<code class=\"gp\">D:\\old.ini</code><span class=\"gn\">no job uses it") : NULL;
	ok(one && alone && old && one < alone && alone < old,
	   "groups with work first, then the others, then INI files no job uses");
	ok(s && strstr(s, "J2 &lt;/script&gt;&lt;b&gt;"), "a job name is text in the HTML");
	d = page_data(s);
	ok(d != NULL, "the embedded rows are JSON with no '<' in them");
	g = cJSON_GetObjectItem(d, "g");
	is_int(cJSON_GetArraySize(g), 3, "three groups in the data");
	is(data_str(d, cJSON_GetArrayItem(cJSON_GetArrayItem(g, 0), 1)), "D:\\a.ini",
	   "group: its INI path");
	is_int(cJSON_GetArraySize(cJSON_GetArrayItem(cJSON_GetArrayItem(g, 0), 4)), 2,
	       "group: its two jobs");
	is(data_str(d, cJSON_GetArrayItem(cJSON_GetArrayItem(cJSON_GetArrayItem(
		cJSON_GetArrayItem(g, 0), 4), 1), 1)), "J2 </script><b>",
	   "a job name round-trips through the data");
	is(cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(d, "st"), 4)), "broken",
	   "status names come with the data");
	is_int(cJSON_GetNumberValue(cJSON_GetObjectItem(d, "n0")), 3, "all three groups are also HTML");
	cJSON_Delete(d);
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
	struct report_opts o = { REPORT_JSON, "fleet", NULL, 1764979200 };
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
	test_json_escape_same();
	test_csv();
	test_html();
	test_html_groups();
	test_text();
	test_stream();
	ok(report_format_parse("HTML", &f) == 0 && f == REPORT_HTML, "format names any case");
	ok(report_format_parse("pdf", &f) < 0, "unknown format");
	ok(strstr(report_finding_fix("weak-tls"), "TLS1_2") != NULL, "fix text");
	return done_testing();
}
