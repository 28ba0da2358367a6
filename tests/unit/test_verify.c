/*
 * test_verify.c - the pure parts of mailshift-verify: report rendering
 * (text, JSON, JUnit XML, HTML) with hostile text, escaping, the send
 * rate window, probe ids, the results database and the migrate state
 * reader.  Golden files: tests/golden/verify/ (UPDATE_GOLDEN=1 rewrites).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <sqlite3.h>

#include "base/html_style.h"
#include "base/fsutil.h"
#include "tap.h"
#include "verify/verify.h"

#define HOSTILE "<script>alert('x')</script> & \"q\" \x01\xff end"

static void set_step(struct verify_step_result *s, enum verify_status st,
		     double secs, const char *msg)
{
	s->status = st;
	s->seconds = secs;
	s->message = msg ? strdup(msg) : NULL;
}

/* A fixed run: one mailbox that passed with a probe, one that failed at
 * token with hostile text everywhere. */
static void fixed_run(struct verify_run *r)
{
	struct verify_result *a, *b;

	memset(r, 0, sizeof(*r));
	r->id = 7;
	r->started = 1795000000;
	r->finished = 1795000012;
	r->source = strdup("--ini (2 files)");
	r->send = 1;
	r->n = 2;
	r->results = calloc(2, sizeof(*r->results));
	a = &r->results[0];
	b = &r->results[1];
	a->ini = strdup("/fleet/a.ini");
	a->label = strdup("WINAPP01:C:\\jobs\\a.ini");
	a->mailbox = strdup("alice@contoso.test");
	a->protocol = strdup("imap");
	a->probe_id = strdup("MSV-0123456789abcdef");
	a->probe_subject = strdup("Job nightly [MSV-0123456789abcdef]");
	a->outcome = strdup("matched");
	a->matched = strdup("Configuration1");
	a->n_events = 1;
	a->events = calloc(1, sizeof(char *));
	a->events[0] = strdup("$JOB:ADD,now,Daily,Job nightly,opcon");
	a->seen_after = 2.5;
	a->passed = 1;
	set_step(&a->steps[VSTEP_CONFIG], VST_PASS, 0.01, "imap alice@contoso.test");
	set_step(&a->steps[VSTEP_TOKEN], VST_PASS, 0.2, "token");
	set_step(&a->steps[VSTEP_LOGIN], VST_PASS, 0.3, "opened");
	set_step(&a->steps[VSTEP_SEND], VST_PASS, 0.4, "sent");
	set_step(&a->steps[VSTEP_SEEN], VST_PASS, 2.5, "seen");
	set_step(&a->steps[VSTEP_CLEANUP], VST_PASS, 0.1, "deleted 1 message");

	b->ini = strdup("/fleet/" HOSTILE ".ini");
	b->label = strdup("M:" HOSTILE);
	b->mailbox = strdup("bob@contoso.test");
	b->protocol = strdup("graph");
	b->seen_after = -1;
	b->warning = strdup("certificate expires\nPASS fake line");
	set_step(&b->steps[VSTEP_CONFIG], VST_PASS, 0.01, "graph");
	set_step(&b->steps[VSTEP_TOKEN], VST_FAIL, 0.5,
		 "token request refused: AADSTS7000215: " HOSTILE "\nPASS injected");
	b->steps[VSTEP_TOKEN].code = MS_ERR_AUTH;
	b->steps[VSTEP_TOKEN].cause = strdup("the client secret is wrong " HOSTILE);
	b->steps[VSTEP_TOKEN].fix = strdup("create a new client secret");
	b->steps[VSTEP_TOKEN].topic = strdup("AADSTS7000215");
	for (int s = VSTEP_LOGIN; s < VSTEP_COUNT; s++)
		set_step(&b->steps[s], VST_SKIP, 0, "not run: an earlier step failed");
	r->passed = 1;
	r->failed = 1;
}

static char *render(const struct verify_run *r, enum verify_format f)
{
	struct ms_err err = MS_ERR_INIT;
	char *out = NULL;
	size_t len = 0;

	if (verify_render(r, f, &out, &len, &err)) {
		printf("# render failed: %s\n", err.msg);
		return NULL;
	}
	if (strlen(out) != len)
		printf("# length mismatch\n");
	return out;
}

static void golden(const char *name, const char *got)
{
	char path[256], *want = NULL;
	size_t len = 0;
	struct ms_err err = MS_ERR_INIT;

	snprintf(path, sizeof(path), "tests/golden/verify/%s", name);
	if (getenv("UPDATE_GOLDEN") && strcmp(getenv("UPDATE_GOLDEN"), "1") == 0) {
		fs_mkdirs("tests/golden/verify", 0755, &err);
		fs_write_atomic(path, got, strlen(got), 0644, &err);
	}
	if (fs_read_file(path, (size_t)1 << 24, &want, &len, &err)) {
		ok(0, "golden %s: %s", name, err.msg);
		return;
	}
	ok(got && strcmp(got, want) == 0, "%s matches %s", name, path);
	free(want);
}

static void test_escape(void)
{
	char *h = verify_html_escape(HOSTILE), *x = verify_xml_escape("a\x01" "b\nc<&>\xc3\xa9\xed\xa0\x80");

	is(h, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot; "
	   "\xef\xbf\xbd\xef\xbf\xbd end", "html escaping, control and invalid bytes replaced");
	is(x, "a\xef\xbf\xbd" "b&#10;c&lt;&amp;&gt;\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd",
	   "xml escaping: control char, newline reference, surrogate refused");
	free(h);
	free(x);
	h = verify_html_escape(NULL);
	is(h, "", "NULL escapes to empty");
	free(h);
}

static void test_rate(void)
{
	struct verify_rate rl;

	verify_rate_init(&rl, 3, 60);
	ok(verify_rate_reserve(&rl, 0) == 0 && verify_rate_reserve(&rl, 1) == 1 &&
	   verify_rate_reserve(&rl, 2) == 2, "first 3 sends go at once");
	ok(verify_rate_reserve(&rl, 10) == 60, "4th waits until the 1st leaves the window");
	ok(verify_rate_reserve(&rl, 10) == 61, "5th after the 2nd");
	ok(verify_rate_reserve(&rl, 10) == 62, "6th after the 3rd");
	ok(verify_rate_reserve(&rl, 10) == 120, "7th after the 4th (60 + 60)");
	ok(verify_rate_reserve(&rl, 500) == 500, "after a quiet spell: at once");

	verify_rate_init(&rl, 30, 60);
	{
		double last = 0;
		int at_once = 0;
		for (int i = 0; i < 45; i++) {
			last = verify_rate_reserve(&rl, 0);
			at_once += last == 0;
		}
		is_int(at_once, 30, "30 per minute: 30 at once");
		ok(last == 60, "the 45th goes one minute later");
	}
	verify_rate_init(&rl, 0, 0);
	ok(rl.limit == 1 && rl.window == 60, "limit and window clamped");
}

static void test_probe_id(void)
{
	char a[32], b[32];

	verify_probe_id(a, sizeof(a));
	verify_probe_id(b, sizeof(b));
	ok(strncmp(a, "MSV-", 4) == 0 && strlen(a) == 20 &&
	   strspn(a + 4, "0123456789abcdef") == 16, "probe id shape (%s)", a);
	ok(strcmp(a, b) != 0, "probe ids differ");
}

static void test_render(void)
{
	struct verify_run r;
	char *text, *json, *junit, *html;
	cJSON *j;
	xmlDocPtr doc;

	fixed_run(&r);
	text = render(&r, VFMT_TEXT);
	json = render(&r, VFMT_JSON);
	junit = render(&r, VFMT_JUNIT);
	html = render(&r, VFMT_HTML);
	ok(text && json && junit && html, "all four formats render");

	ok(text && !strstr(text, "\nPASS fake") && !strstr(text, "\nPASS injected"),
	   "text: newlines in server text cannot forge a result line");
	ok(text && strstr(text, "cause: the client secret is wrong"), "text: cause shown");

	j = json ? cJSON_Parse(json) : NULL;
	ok(j != NULL, "json parses");
	if (j) {
		cJSON *m = cJSON_GetObjectItem(j, "mailboxes");
		cJSON *b = cJSON_GetArrayItem(m, 1);
		cJSON *tok = cJSON_GetArrayItem(cJSON_GetObjectItem(b, "steps"), 1);
		is_int(cJSON_GetArraySize(m), 2, "json: two mailboxes");
		is(cJSON_GetStringValue(cJSON_GetObjectItem(tok, "status")), "fail",
		   "json: token failed");
		is(cJSON_GetStringValue(cJSON_GetObjectItem(tok, "code")), "auth",
		   "json: error code name");
		is(cJSON_GetStringValue(cJSON_GetObjectItem(tok, "topic")), "AADSTS7000215",
		   "json: topic");
		ok(cJSON_IsFalse(cJSON_GetObjectItem(b, "passed")), "json: passed false");
		is(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(
			cJSON_GetArrayItem(m, 0), "probe"), "matched")), "Configuration1",
		   "json: matched section");
		is_int((long)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "run")), 7,
		       "json: run id");
		cJSON_Delete(j);
	}

	doc = junit ? xmlReadMemory(junit, (int)strlen(junit), "junit.xml", NULL,
				    XML_PARSE_NONET | XML_PARSE_NOERROR |
				    XML_PARSE_NOWARNING) : NULL;
	ok(doc != NULL, "junit is well-formed XML despite hostile bytes");
	if (doc) {
		xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
		xmlXPathObjectPtr o = xmlXPathEvalExpression(BAD_CAST "count(//testcase)", ctx);
		is_int((long)o->floatval, 12, "junit: one testcase per mailbox and step");
		xmlXPathFreeObject(o);
		o = xmlXPathEvalExpression(BAD_CAST "count(//testcase/failure)", ctx);
		is_int((long)o->floatval, 1, "junit: one failure");
		xmlXPathFreeObject(o);
		o = xmlXPathEvalExpression(BAD_CAST "count(//testcase/skipped)", ctx);
		is_int((long)o->floatval, 4, "junit: four skipped");
		xmlXPathFreeObject(o);
		o = xmlXPathEvalExpression(BAD_CAST "string(//testcase[failure]/@name)", ctx);
		is((const char *)o->stringval, "token", "junit: the failing step is named");
		xmlXPathFreeObject(o);
		o = xmlXPathEvalExpression(BAD_CAST "string(/testsuites/@failures)", ctx);
		is((const char *)o->stringval, "1", "junit: suite failure count");
		xmlXPathFreeObject(o);
		xmlXPathFreeContext(ctx);
		xmlFreeDoc(doc);
	}

	ok(html && !strstr(html, "<script>alert") && strstr(html, "&lt;script&gt;"),
	   "html: hostile markup escaped");
	ok(html && strstr(html, html_style_css()) && strstr(html, html_style_table_js()),
	   "html: the audit report's stylesheet and table script");
	ok(html && strstr(html, "<table class=\"sortable filtered\"") &&
	   strstr(html, "data-f=\"fail\""), "html: sortable, filtered by the summary cards");
	ok(html && strstr(html, "<td class=\"step failed\" data-k=\"0\"><span class=\"pill "
			  "bg-fail\">fail</span><small>0.50 s</small>"),
	   "html: the failing step is highlighted");
	ok(html && !strstr(html, "As expected"), "html: a matched probe needs no note");
	free(r.results[0].outcome);
	r.results[0].outcome = strdup("rejected: no rule matched");
	free(html);
	html = render(&r, VFMT_HTML);
	ok(html && strstr(html, "<p class=\"note\">As expected: the mailbox received the probe"),
	   "html: a PASS whose probe no rule matched reads as expected");
	free(r.results[0].outcome);
	r.results[0].outcome = strdup("matched");
	free(html);
	html = render(&r, VFMT_HTML);
	ok(html && !strstr(html, "http://") && !strstr(html, "https://") &&
	   !strstr(html, "src="), "html: self-contained (no external references)");

	golden("report.txt", text);
	golden("report.json", json);
	golden("report.xml", junit);
	golden("report.html", html);
	free(text);
	free(json);
	free(junit);
	free(html);
	verify_run_release(&r);
}

static void test_db(void)
{
	struct verify_run r;
	struct ms_err err = MS_ERR_INIT;
	char dir[] = "/tmp/test_verify.XXXXXX", db[128], mdb[128], *hist = NULL;
	struct verify_target *t = NULL;
	size_t n = 0;
	int run = 0;
	sqlite3 *s;

	if (!mkdtemp(dir)) {
		ok(0, "mkdtemp");
		return;
	}
	snprintf(db, sizeof(db), "%s/verify.db", dir);
	fixed_run(&r);
	r.id = 0;
	ok(verify_db_store(db, &r, &err) == 0 && r.id == 1, "run stored as run 1 (%s)", err.msg);
	ok(verify_db_store(db, &r, &err) == 0 && r.id == 2, "second run stored as run 2");
	ok(verify_history(db, &hist, &err) == 0, "history reads");
	ok(hist && strstr(hist, "alice@contoso.test") && strstr(hist, "bob@contoso.test"),
	   "history lists both mailboxes");
	ok(hist && strstr(hist, "PASS") && strstr(hist, "FAIL"), "history shows last results");
	ok(hist && strstr(hist, "never"), "history: bob was never proven");
	free(hist);
	verify_run_release(&r);

	/* a mailshift-migrate state database with one applied INI */
	snprintf(mdb, sizeof(mdb), "%s/.mailshift-migrate.db", dir);
	ok(sqlite3_open(mdb, &s) == SQLITE_OK && sqlite3_exec(s,
		"CREATE TABLE runs (id INTEGER PRIMARY KEY, created INTEGER, fleet TEXT,"
		" transport TEXT, state TEXT);"
		"CREATE TABLE items (run INTEGER, seq INTEGER, kind TEXT, path TEXT,"
		" machine TEXT, jobs TEXT, state TEXT);"
		"INSERT INTO runs VALUES (1, 0, 'relative/fleet', 'imap', 'done');"
		"INSERT INTO items VALUES (1, 1, 'ini', 'machines/A/C/x.ini', 'A', '', 'applied');"
		"INSERT INTO items VALUES (1, 2, 'ini', 'machines/A/C/y.ini', 'A', '', 'conflict');"
		"INSERT INTO items VALUES (1, 3, 'export', 'jobs/j.json', '', '', 'applied');",
		NULL, NULL, NULL) == SQLITE_OK, "fake migrate database");
	sqlite3_close(s);
	ok(verify_targets_from_state(mdb, 0, &t, &n, &run, &err) == 0, "state read (%s)",
	   err.msg);
	is_int(n, 1, "only the applied INI item");
	is_int(run, 1, "latest run");
	if (n == 1) {
		char want[256];
		snprintf(want, sizeof(want), "%s/machines/A/C/x.ini", dir);
		is(t[0].ini, want, "relative fleet resolved beside the state database");
	}
	verify_targets_free(t, n);
	t = NULL;
	n = 0;
	err_clear(&err);
	ok(verify_targets_from_state(mdb, 5, &t, &n, &run, &err) < 0 &&
	   err.code == MS_ERR_USAGE, "unknown run refused: %s", err.msg);
	unlink(mdb);
	unlink(db);
	rmdir(dir);
}

int main(void)
{
	enum verify_format f;

	ok(verify_format_parse("JUnit", &f) == 0 && f == VFMT_JUNIT, "format parse");
	ok(verify_format_parse("pdf", &f) < 0, "unknown format refused");
	is(verify_step_name(VSTEP_SEEN), "seen", "step names");
	test_escape();
	test_rate();
	test_probe_id();
	test_render();
	test_db();
	return done_testing();
}
