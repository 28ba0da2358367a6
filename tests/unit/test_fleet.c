/* test_fleet.c - export shapes, encodings, malformed exports, Windows
 * path resolution in a fleet folder (case, 8.3, relative, %VAR%). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/analysis.h"
#include "audit/fleet.h"
#include "base/fsutil.h"
#include "base/platform.h"
#include "tap.h"

static char top[256];

static void put(const char *rel, const void *data, size_t len)
{
	struct ms_err err = MS_ERR_INIT;
	char path[1024], dir[1024], *slash;

	snprintf(path, sizeof(path), "%s/%s", top, rel);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	*slash = '\0';
	if (fs_mkdirs(dir, 0755, &err) < 0 || fs_write_atomic(path, data, len, 0644, &err) < 0) {
		fprintf(stderr, "setup: %s\n", err.msg);
		exit(2);
	}
}

static void puts_(const char *rel, const char *text)
{
	put(rel, text, strlen(text));
}

/* UTF-16LE with BOM from ASCII text. */
static void put_utf16(const char *rel, const char *text)
{
	size_t n = strlen(text), i;
	unsigned char *b = malloc(2 * n + 2);

	b[0] = 0xFF;
	b[1] = 0xFE;
	for (i = 0; i < n; i++) {
		b[2 + 2 * i] = (unsigned char)text[i];
		b[3 + 2 * i] = 0;
	}
	put(rel, b, 2 * n + 2);
	free(b);
}

struct seen {
	char jobs[64][256];
	int n;
	size_t files;
	char problems[16][512];
	int np;
};

static int on_job(const struct fleet_job *j, void *ctx, struct ms_err *err)
{
	struct seen *s = ctx;

	if (s->n < 64)
		snprintf(s->jobs[s->n++], 256, "%s|%s|%s|%s|%s|%s|%s|%d", j->source, j->schedule,
			 j->name, j->machine, j->job_type,
			 j->command_line ? j->command_line : "-",
			 j->working_dir ? j->working_dir : "-", j->line);
	return 0;
}

static void on_file(const char *file, size_t files, void *ctx)
{
	struct seen *s = ctx;

	s->files = files;
}

static void on_problem(const char *file, int line, const char *msg, void *ctx)
{
	struct seen *s = ctx;

	if (s->np < 16)
		snprintf(s->problems[s->np++], 512, "%s:%d: %s", file, line, msg);
}

static int has_job(const struct seen *s, const char *prefix)
{
	int i;

	for (i = 0; i < s->n; i++)
		if (strncmp(s->jobs[i], prefix, strlen(prefix)) == 0)
			return 1;
	return 0;
}

static void test_utf8(void)
{
	struct ms_err err = MS_ERR_INIT;
	char *out;
	size_t len;
	const char le[] = "\xFF\xFE" "a\0\xE9\0=\xD8\x00\xDE";   /* a, e-acute, U+1F600 */
	const char bom8[] = "\xEF\xBB\xBFx";

	ok(fleet_to_utf8(le, sizeof(le) - 1, &out, &len, &err) == 0 &&
	   strcmp(out, "a\xC3\xA9\xF0\x9F\x98\x80") == 0, "UTF-16LE with a surrogate pair");
	free(out);
	ok(fleet_to_utf8(bom8, 4, &out, &len, &err) == 0 && strcmp(out, "x") == 0 && len == 1,
	   "UTF-8 BOM stripped");
	free(out);
	ok(fleet_to_utf8("{\0\"\0a\0\"\0", 8, &out, &len, &err) == 0 && strcmp(out, "{\"a\"") == 0,
	   "UTF-16LE without BOM, evident from zero bytes");
	free(out);
	err_clear(&err);
	ok(fleet_to_utf8("\xFF\xFE" "a\0b", 5, &out, &len, &err) < 0 && err.code == MS_ERR_DATA,
	   "odd-length UTF-16 is refused");
	err_clear(&err);
	ok(fleet_to_utf8("\xFF\xFE\x00\xDC", 4, &out, &len, &err) < 0, "lone low surrogate refused");
}

static void test_scan(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct fleet_handlers h = { .job = on_job, .problem = on_problem, .file_done = on_file };
	struct seen *s = calloc(1, sizeof(*s));
	char *bad;
	int i;

	h.ctx = s;
	puts_("jobs/a-rest.json",
	      "[{\"name\":\"J1\",\"schedule\":{\"name\":\"S1\"},\"jobType\":{\"description\":\"Windows\"},"
	      "\"primaryMachine\":{\"name\":\"M1\"},\"details\":{\"commandLine\":\"smartemail.exe --imap\","
	      "\"workingDirectory\":\"C:\\\\w\",\"batchUser\":{\"loginName\":\"u\"}}}]");
	puts_("jobs/b-wrapped.JSON",
	      "\xEF\xBB\xBF{\"jobs\":[{\"name\":\"J2\",\"schedule\":\"S2\",\"jobType\":\"Windows\","
	      "\"primaryMachine\":\"M2\",\"windowsDetails\":{\"commandLine\":\"x.exe\"}}]}\r\n");
	put_utf16("jobs/deep/er/c-deploy.json",
		  "{\"scheduleList\":[{\"name\":\"S3\",\"jobList\":[{\"name\":\"J3\","
		  "\"jobType\":{\"description\":\"Windows\"},\"primaryMachine\":{\"name\":\"M3\"},"
		  "\"details\":{\"commandLine\":\"smartemail\"}}]}]}");
	puts_("jobs/d-extract.xml",
	      "<?xml version=\"1.0\"?>\r\n<jobs>\r\n  <job>\r\n    <skdname>S4</skdname>"
	      "<jname>J4</jname><pmname>M4</pmname><jobtype>Windows</jobtype>\r\n"
	      "    <jobdata><cmd_line>\r\n      smartemail -inifile:&quot;a b.ini&quot;\r\n    </cmd_line>"
	      "<working_dir>D:\\w</working_dir><wuid>u</wuid></jobdata>\r\n  </job>\r\n"
	      "  <job><skdname>S4</skdname><jname>J5</jname><pmname>M4</pmname>"
	      "<jobtype>UNIX</jobtype><jobdata><cmd_line>/bin/true</cmd_line></jobdata></job>\r\n"
	      "</jobs>\r\n");
	puts_("jobs/e-truncated.json",
	      "[{\"name\":\"J6\",\n\"schedule\":{\"name\":\"S6\"},\n\"details\":{\"commandLine\":\"smart");
	puts_("jobs/f-broken.xml",
	      "<jobs>\n<job><jname>J7</jname>\n<skdname>S7</skdname></jobb>\n</jobs>\n");
	puts_("jobs/g-other.json", "{\"hello\":1}");
	puts_("jobs/notes.txt", "ignored");
	puts_("jobs/.hidden.json", "[{\"name\":\"HIDDEN\"}]");

	ok(fleet_scan(top, &h, &err) == 0, "scan succeeds despite bad files: %s", err.msg);
	ok(has_job(s, "jobs/a-rest.json|S1|J1|M1|Windows|smartemail.exe --imap|C:\\w|1"),
	   "REST array job");
	ok(has_job(s, "jobs/b-wrapped.JSON|S2|J2|M2|Windows|x.exe|-|1"),
	   "{\"jobs\":[...]}, string fields, windowsDetails, BOM, upper-case extension");
	ok(has_job(s, "jobs/deep/er/c-deploy.json|S3|J3|M3|Windows|smartemail|-|1"),
	   "deploy package in UTF-16LE, schedule from the enclosing schedule, any depth");
	ok(has_job(s, "jobs/d-extract.xml|S4|J4|M4|Windows|smartemail -inifile:\"a b.ini\"|D:\\w|3"),
	   "Schedule Extract XML with its line, values trimmed");
	is_int(s->files, 7, "progress: seven export files scanned");
	ok(has_job(s, "jobs/d-extract.xml|S4|J5|M4|UNIX|/bin/true|-|9"), "non-Windows XML job delivered");
	ok(!has_job(s, "jobs/.hidden"), "hidden files skipped");
	is_int(s->n, 5, "five jobs in all");
	for (i = 0; i < s->n; i++)
		printf("# job %s\n", s->jobs[i]);
	is_int(s->np, 3, "three problems");
	for (i = 0; i < s->np; i++)
		printf("# problem %s\n", s->problems[i]);
	ok(s->np >= 1 && strncmp(s->problems[0], "jobs/e-truncated.json:3:", 24) == 0 &&
	   strstr(s->problems[0], "truncated"), "truncated JSON names file and line");
	ok(s->np >= 2 && strncmp(s->problems[1], "jobs/f-broken.xml:3:", 20) == 0 &&
	   strstr(s->problems[1], "invalid XML"), "malformed XML names file and line");
	ok(s->np >= 3 && strncmp(s->problems[2], "jobs/g-other.json:1:", 20) == 0 &&
	   strstr(s->problems[2], "not a job export"), "unknown JSON shape");

	err_clear(&err);
	bad = fs_join(top, "nonexistent");
	ok(fleet_scan(bad, &h, &err) < 0 && err.code == MS_ERR_IO && strstr(err.msg, "nonexistent"),
	   "missing fleet folder: %s", err.msg);
	free(bad);
	free(s);
}

/* The streaming JSON reader: shapes and traps a whole-file parser would
 * not meet. */
static void test_stream(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct fleet_handlers h = { .job = on_job, .problem = on_problem };
	struct seen *s = calloc(1, sizeof(*s));
	char dir[512], *big;
	size_t i, n = 1100 * 1024;
	int k;

	h.ctx = s;
	puts_("s/jobs/a-name-last.json",
	      "{\"scheduleList\":[\n {\"jobList\":[\n  {\"name\":\"EARLY\",\"details\":{\"commandLine\":\"smartemail\"}}],\n"
	      "  \"name\":\"LATE-NAME\"},\n {\"name\":\"S2\",\"extra\":[[[{\"x\":[1,2,{\"y\":\"]}\"}]}]]],\n"
	      "  \"jobList\":[{\"name\":\"J2\",\"details\":{\"commandLine\":\"a \\\"]}\\\" b\"}}, 42,\n"
	      "   {\"name\":\"J3\",\"schedule\":{\"name\":\"OWN\"}}]}]}\n");
	/* UTF-16BE with a BOM */
	{
		const char *t = "[{\"name\":\"BE\",\"details\":{\"commandLine\":\"x\"}}]";
		size_t m = strlen(t), j;
		unsigned char *b = malloc(2 * m + 2);
		b[0] = 0xFE;
		b[1] = 0xFF;
		for (j = 0; j < m; j++) {
			b[2 + 2 * j] = 0;
			b[3 + 2 * j] = (unsigned char)t[j];
		}
		put("s/jobs/b-be.json", b, 2 * m + 2);
		free(b);
	}
	big = malloc(n + 64);
	strcpy(big, "[{\"name\":\"HUGE\",\"x\":\"");
	k = (int)strlen(big);
	for (i = 0; i < n; i++)
		big[k + i] = 'a';
	strcpy(big + k + n, "\"}]");
	put("s/jobs/c-huge.json", big, strlen(big));
	free(big);
	puts_("s/jobs/d-trailing.json", "[{\"name\":\"T\"}] x");
	puts_("s/jobs/e-mismatch.json", "[{\"name\":\"M\",\"a\":[}]");

	snprintf(dir, sizeof(dir), "%s/s", top);
	ok(fleet_scan(dir, &h, &err) == 0, "stream scan: %s", err.msg);
	for (k = 0; k < s->n; k++)
		printf("# job %s\n", s->jobs[k]);
	for (k = 0; k < s->np; k++)
		printf("# problem %s\n", s->problems[k]);
	ok(has_job(s, "jobs/a-name-last.json|LATE-NAME|EARLY|||smartemail|-|3"),
	   "a job before its schedule's name gets the name, and its line");
	ok(has_job(s, "jobs/a-name-last.json|S2|J2|||a \"]}\" b|-|6"),
	   "brackets and escaped quotes inside strings; deep skipped members");
	ok(has_job(s, "jobs/a-name-last.json|OWN|J3|"), "a job's own schedule wins");
	ok(has_job(s, "jobs/b-be.json||BE|||x|-|1"), "UTF-16BE");
	ok(has_job(s, "jobs/d-trailing.json||T|"), "jobs before trailing garbage are kept");
	is_int(s->n, 5, "five jobs");
	ok(s->np == 4 && strstr(s->problems[0], "a-name-last.json:6: job #3 is not an object"),
	   "a non-object job is named with its line");
	ok(s->np == 4 && strstr(s->problems[1], "c-huge.json") && strstr(s->problems[1], "larger than"),
	   "a job over the size cap is refused");
	ok(s->np == 4 && strstr(s->problems[2], "d-trailing.json:1: invalid JSON: unexpected data"),
	   "trailing data");
	ok(s->np == 4 && strstr(s->problems[3], "e-mismatch.json:1: invalid JSON: unexpected '}'"),
	   "mismatched brackets");
	free(s);
}

/* Runs of blanks, numbers and punctuation inside a job are copied in one
 * go: lines still count, and a job over the cap fails at the same byte
 * and line as byte by byte. */
static void test_value_runs(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct fleet_handlers h = { .job = on_job, .problem = on_problem };
	struct seen *s = calloc(1, sizeof(*s));
	const char *head = "[{\"name\":\"W\",\"x\":[";
	size_t cap = FLEET_MAX_JOB, n = 0, i, size = cap + 4096, jstart = 1;
	char *t = malloc(size + 64), dir[512], want[128];
	int line = 1, k;

	h.ctx = s;
	/* one job of 300 lines of numbers, then a job on the next line */
	n = (size_t)sprintf(t, "[{\"name\":\"A\",\"x\":[");
	for (k = 0; k < 300; k++)
		n += (size_t)sprintf(t + n, "\n  %d, -1.5e3 ,true,null,", k);
	n += (size_t)sprintf(t + n, "0]},\n{\"name\":\"B\",\"details\":{\"commandLine\":\"c\"}}]");
	put("r/jobs/a-lines.json", t, n);
	/* a job over the cap made of blank lines and numbers */
	n = (size_t)sprintf(t, "%s", head);
	while (n < size)
		n += (size_t)sprintf(t + n, "\n  12 ,\t");
	n += (size_t)sprintf(t + n, "1]}]");
	put("r/jobs/b-over.json", t, n);
	/* the line of the byte the cap refuses: byte cap of the job's text */
	for (i = 0; i <= jstart + cap && i < n; i++)
		line += t[i] == '\n';
	snprintf(want, sizeof(want), "jobs/b-over.json:%d: a job is larger than", line);
	snprintf(dir, sizeof(dir), "%s/r", top);
	ok(fleet_scan(dir, &h, &err) == 0, "runs: scan: %s", err.msg);
	ok(has_job(s, "jobs/a-lines.json||A|") &&
	   has_job(s, "jobs/a-lines.json||B|||c|-|302"),
	   "runs: the job after 300 lines of numbers starts on line 302");
	ok(s->np == 1 && strncmp(s->problems[0], want, strlen(want)) == 0,
	   "runs: the cap fails at the same line (%s)", s->np ? s->problems[0] : "-");
	free(t);
	free(s);
}

/* fleet_scan_async(): the same calls, in the same order, as fleet_scan(). */
struct rec {
	char *log;
	size_t len, alloc;
	int jobs, fail_at;                /* fail_at: fail the Nth job (0: never) */
	int prepared, consumed, released; /* prepare()d results and their fate */
	int bad_prep;                     /* a job got another job's result */
};

static void rec_add(struct rec *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void rec_add(struct rec *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(r->log ? r->log + r->len : NULL,
			      r->log ? r->alloc - r->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			exit(2);
		if (r->log && r->len + (size_t)n < r->alloc) {
			r->len += (size_t)n;
			return;
		}
		r->alloc = (r->alloc + (size_t)n + 1) * 2;
		if (!(r->log = realloc(r->log, r->alloc)))
			exit(2);
	}
}

#define NN(x) ((x) ? (x) : "(null)")

/* prepare(): on the reader thread, a copy of the job's name and line */
static void *rec_prepare(const struct fleet_job *j, void *ctx)
{
	struct rec *r = ctx;
	char *p;

	if (asprintf(&p, "%s:%d", j->name, j->line) < 0)
		return NULL;
	__atomic_add_fetch(&r->prepared, 1, __ATOMIC_SEQ_CST);
	return p;
}

static void rec_release(void *p, void *ctx)
{
	struct rec *r = ctx;

	r->released++;
	free(p);
}

static int rec_job(const struct fleet_job *j, void *ctx, struct ms_err *err)
{
	struct rec *r = ctx;

	if (j->prepared) {
		char want[512];

		snprintf(want, sizeof(want), "%s:%d", j->name, j->line);
		r->bad_prep += strcmp(want, j->prepared) != 0;
		r->consumed++;
		free(j->prepared);
	}
	if (r->fail_at && ++r->jobs == r->fail_at)
		return err_set(err, MS_ERR_NOMEM, "handler gave up at job %d", r->jobs);
	rec_add(r, "job %s:%d [%s] [%s] [%s] [%s] [%s] [%s] [%s]\n", NN(j->source),
		j->line, NN(j->schedule), NN(j->name), NN(j->machine), NN(j->job_type),
		NN(j->command_line), NN(j->working_dir), NN(j->batch_user));
	return 0;
}

static void rec_problem(const char *file, int line, const char *msg, void *ctx)
{
	rec_add(ctx, "problem %s:%d %s\n", NN(file), line, NN(msg));
}

static void rec_file(const char *file, size_t files, void *ctx)
{
	rec_add(ctx, "file %s %zu\n", NN(file), files);
}

static void scan_both(const char *dir, int fail_at, struct rec *a, struct rec *b,
		      int *rca, int *rcb, struct ms_err *ea, struct ms_err *eb)
{
	struct fleet_handlers h = { .job = rec_job, .problem = rec_problem, .file_done = rec_file };

	memset(a, 0, sizeof(*a));
	memset(b, 0, sizeof(*b));
	a->fail_at = b->fail_at = fail_at;
	rec_add(a, "%s", "");
	rec_add(b, "%s", "");
	h.ctx = a;
	*rca = fleet_scan(dir, &h, ea);
	h.ctx = b;
	h.prepare = rec_prepare;
	h.release = rec_release;
	*rcb = fleet_scan_async(dir, &h, eb);
}

/* Every prepare()d result reached job() or release(), each its own. */
static int prep_ok(const struct rec *b)
{
	return b->prepared > 0 && b->bad_prep == 0 &&
	       b->prepared == b->consumed + b->released;
}

/* The exports of a folder are asked for ahead of the reader, a window
 * at a time (platform_prefetch): more files than the window, every one
 * read once, in order. */
static void test_prefetch(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct fleet_handlers h = { .job = on_job, .problem = on_problem, .file_done = on_file };
	struct seen *s = calloc(1, sizeof(*s));
	char rel[64], text[256], dir[512], path[600];
	int k, in_order = 1;

	h.ctx = s;
	for (k = 0; k < 150; k++) {
		snprintf(rel, sizeof(rel), "p/jobs/e%03d.%s", k, k % 3 ? "json" : "xml");
		if (k % 3)
			snprintf(text, sizeof(text), "[{\"name\":\"P%03d\"}]", k);
		else
			snprintf(text, sizeof(text), "<jobs><job><jname>P%03d</jname></job></jobs>", k);
		puts_(rel, text);
	}
	puts_("p/jobs/notes.txt", "not an export");
	snprintf(dir, sizeof(dir), "%s/p", top);
	ok(fleet_scan(dir, &h, &err) == 0, "prefetch: scan: %s", err.msg);
	is_int(s->files, 150, "150 exports read, past the prefetch window of 64");
	for (k = 0; k < s->n && k < 64; k++) {
		snprintf(text, sizeof(text), "jobs/e%03d.%s||P%03d|", k, k % 3 ? "json" : "xml", k);
		in_order &= strncmp(s->jobs[k], text, strlen(text)) == 0;
	}
	ok(s->n == 64 && in_order, "each once, in order");
	is_int(s->np, 0, "no problem");
	snprintf(path, sizeof(path), "%s/p/jobs/notes.txt", top);
	ok(platform_prefetch(path) == 13, "platform_prefetch: the file's size");
	snprintf(path, sizeof(path), "%s/p/jobs/none.json", top);
	ok(platform_prefetch(path) == -1, "platform_prefetch: -1 for no file");
	snprintf(path, sizeof(path), "%s/p/jobs", top);
	ok(platform_prefetch(path) == -1, "platform_prefetch: -1 for a folder");
	snprintf(path, sizeof(path), "%s/p/fifo.json", top);
	ok(mkfifo(path, 0600) == 0 && platform_prefetch(path) == -1,
	   "platform_prefetch: -1 for a FIFO, at once (no writer to wait for)");
	unlink(path);
	free(s);
}

/* A FIFO named like an export (or a notification export) is reported
 * and not read: opening it would wait for ever for a writer. */
static void test_fifo_exports(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct fleet_handlers h = { .job = on_job, .problem = on_problem, .file_done = on_file };
	struct fleet_notify_slot *ns = NULL;
	struct seen *s = calloc(1, sizeof(*s));
	char dir[512], path[600];
	const char *fifos[] = { "q/jobs/b-pipe.json", "q/jobs/c-pipe.xml", "q/notify/pipe.json" };
	size_t n = 0, k;
	int made = 1, rc;

	h.ctx = s;
	puts_("q/jobs/a.json", "[{\"name\":\"Q1\"}]");
	puts_("q/notify/ok.json", "{\"SMTPSERVER1\":\"relay\"}");
	for (k = 0; k < 3; k++) {
		snprintf(path, sizeof(path), "%s/%s", top, fifos[k]);
		made &= mkfifo(path, 0600) == 0;
	}
	snprintf(dir, sizeof(dir), "%s/q", top);
	alarm(30);      /* a reader waiting on a FIFO fails the test, not hangs it */
	rc = fleet_scan(dir, &h, &err);
	ok(made && rc == 0 && has_job(s, "jobs/a.json||Q1|"), "FIFOs in jobs/: the scan ends, "
	   "the export beside them read");
	ok(s->np == 2 && strstr(s->problems[0], "jobs/b-pipe.json:0: not a regular file") &&
	   strstr(s->problems[1], "jobs/c-pipe.xml:0: not a regular file"),
	   "each FIFO reported, by name");
	s->np = 0;
	rc = fleet_read_notify(dir, &h, &ns, &n, &err);
	alarm(0);
	ok(rc == 0 && n == 1 && s->np == 1 &&
	   strstr(s->problems[0], "notify/pipe.json:0: not a regular file"),
	   "a FIFO in notify/: reported, the other notification export read");
	fleet_notify_free(ns, n);
	free(s);
}

static void test_async(void)
{
	struct ms_err ea = MS_ERR_INIT, eb = MS_ERR_INIT;
	struct rec a, b;
	char dir[512], *big, *bad;
	size_t n = 0, cap = 8 * 1024 * 1024;
	int rca, rcb, i;

	/* the fixtures of test_scan and test_stream: every shape, encoding
	 * and malformed file */
	scan_both(top, 0, &a, &b, &rca, &rcb, &ea, &eb);
	ok(rca == 0 && rcb == 0, "async scan of the fixtures: %s", eb.msg);
	if (getenv("TEST_FLEET_LOG"))
		fputs(b.log, stderr);
	ok(a.len > 0 && a.len == b.len && memcmp(a.log, b.log, a.len) == 0,
	   "async: the same jobs, problems and progress in the same order (%zu bytes)",
	   a.len);
	ok(prep_ok(&b) && b.released == 0, "async: prepare() for each of %d jobs",
	   b.consumed);
	ok(strstr(b.log, "problem jobs/e-truncated.json:3 invalid JSON: unexpected end") &&
	   strstr(b.log, "problem jobs/f-broken.xml:3 invalid XML"),
	   "async: malformed exports named with file and line");
	free(a.log);
	free(b.log);
	snprintf(dir, sizeof(dir), "%s/s", top);
	scan_both(dir, 0, &a, &b, &rca, &rcb, &ea, &eb);
	ok(rca == 0 && rcb == 0 && a.len > 0 && a.len == b.len &&
	   memcmp(a.log, b.log, a.len) == 0 && strstr(b.log, "larger than"),
	   "async: the streaming traps (late schedule name, huge job, trailing data)");
	free(a.log);
	free(b.log);

	/* many jobs: several batches, the queue full, a problem and a UTF-16
	 * file between big ones, escapes and surrogate pairs */
	big = malloc(cap);
	n += (size_t)snprintf(big + n, cap - n, "[");
	for (i = 0; i < 6000; i++)
		n += (size_t)snprintf(big + n, cap - n,
				      "%s{\"name\":\"J%d \\u00e9\\ud83d\\ude00\",\"schedule\":"
				      "{\"name\":\"S%d\"},\"primaryMachine\":{\"name\":\"M%d\"},"
				      "\"jobType\":{\"description\":\"Windows\"},\"details\":"
				      "{\"commandLine\":\"smartemail.exe -inifile:\\\"D:\\\\x%d.ini\\\""
				      " %0*d\"}}\n", i ? "," : "", i, i % 7, i % 13, i, i % 50 + 1, 0);
	n += (size_t)snprintf(big + n, cap - n, "]");
	put("async/jobs/a-many.json", big, n);
	put("async/jobs/b-many.json", big, n);
	puts_("async/jobs/b-x-bad.json", "[{\"name\":\"A\"},{\"name\":\"B\" \"x\":1}]");
	put_utf16("async/jobs/c-utf16.json", "[{\"name\":\"U\",\"details\":{\"commandLine\":\"c\"}}]");
	put("async/jobs/d-many.json", big, n);
	free(big);
	snprintf(dir, sizeof(dir), "%s/async", top);
	err_clear(&ea);
	err_clear(&eb);
	scan_both(dir, 0, &a, &b, &rca, &rcb, &ea, &eb);
	ok(rca == 0 && rcb == 0, "async scan of 18,000 jobs: %s", eb.msg);
	if (getenv("TEST_FLEET_LOG"))
		fputs(b.log, stderr);
	ok(a.len > 2 * 1024 * 1024 && a.len == b.len && memcmp(a.log, b.log, a.len) == 0,
	   "async: the same %zu bytes of calls as the plain scan", a.len);
	ok(prep_ok(&b) && b.consumed == 18002 && b.released == 0,
	   "async: every job got its prepare() result (%d)", b.consumed);
	ok(strstr(b.log, "[J5999 \xC3\xA9\xF0\x9F\x98\x80] [M6]") &&
	   strstr(b.log, "file jobs/b-many.json 2\njob jobs/b-x-bad.json:1 [] [A] ") &&
	   strstr(b.log, "\nproblem jobs/b-x-bad.json:1 invalid JSON in job #2\n"
		  "file jobs/b-x-bad.json 3\njob jobs/c-utf16.json:1 [] [U] "),
	   "async: a problem between two big files keeps its place");
	free(a.log);
	free(b.log);

	/* a handler that fails stops both scans at the same job, with its
	 * own error */
	for (i = 1; i <= 12001; i += 6000) {
		err_clear(&ea);
		err_clear(&eb);
		scan_both(dir, i, &a, &b, &rca, &rcb, &ea, &eb);
		ok(rca < 0 && rcb < 0 && ea.code == MS_ERR_NOMEM && eb.code == MS_ERR_NOMEM &&
		   strcmp(ea.msg, eb.msg) == 0 && strstr(eb.msg, "gave up"),
		   "async: the handler's failure at job %d is the scan's: %s", i, eb.msg);
		ok(a.len == b.len && memcmp(a.log, b.log, a.len) == 0,
		   "async: nothing delivered after the failure (%zu bytes)", b.len);
		ok(prep_ok(&b) && b.consumed == i,
		   "async: results of dropped jobs released (%d prepared, %d to job(), "
		   "%d released)", b.prepared, b.consumed, b.released);
		free(a.log);
		free(b.log);
	}

	/* a fleet folder that cannot be scanned */
	err_clear(&eb);
	bad = fs_join(top, "nonexistent");
	ok(fleet_scan_async(bad, NULL, &eb) < 0 && eb.code == MS_ERR_IO &&
	   strstr(eb.msg, "nonexistent"), "async: missing fleet folder: %s", eb.msg);
	free(bad);
	err_clear(&eb);
	puts_("nojobs/x", "");
	snprintf(dir, sizeof(dir), "%s/nojobs", top);
	ok(fleet_scan_async(dir, NULL, &eb) < 0 && strstr(eb.msg, "no jobs/ folder"),
	   "async: no jobs/ folder: %s", eb.msg);
}

static void resolve(const char *machine, const char *ini, const char *wd,
		    enum fleet_where want, const char *want_rel, const char *name)
{
	struct ms_err err = MS_ERR_INIT;
	struct fleet_path p;

	if (fleet_resolve_ini(top, machine, ini, wd, &p, &err) < 0) {
		ok(0, "%s: %s", name, err.msg);
		return;
	}
	ok(p.where == want && (!want_rel || (p.rel && strcmp(p.rel, want_rel) == 0)),
	   "%s: %s %s (%s)", name, fleet_where_name(p.where), p.rel ? p.rel : "-",
	   p.detail ? p.detail : "");
	fleet_path_release(&p);
}

static void test_resolve(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct fleet_path p;
	int i;

	puts_("machines/WIN1/C/ProgramData/OpConxps/SMArt Email/SMArtEmail.ini", "[Mail]\r\n");
	puts_("machines/WIN1/D/Jobs/finance/recon.ini", "[Mail]\r\n");
	puts_("machines/WIN1/D/Jobs Config/x.ini", "[Mail]\r\n");
	puts_("machines/WIN1/C/Program Files/OpConxps/a.ini", "");
	puts_("machines/WIN1/C/Program Files (x86)/OpConxps/a.ini", "");
	puts_("machines/WIN1/E/Data/solo/b.ini", "");
	puts_("machines/WIN1/E/Data/Clash/c.ini", "");
	puts_("machines/WIN1/E/Data/CLASH/c.ini", "");
	puts_("machines/WIN2/D$/share/s.ini", "");

	resolve("WIN1", NULL, NULL, FLEET_FOUND,
		"machines/WIN1/C/ProgramData/OpConxps/SMArt Email/SMArtEmail.ini", "default INI");
	resolve("win1", "d:\\JOBS\\Finance\\RECON.INI", NULL, FLEET_FOUND,
		"machines/WIN1/D/Jobs/finance/recon.ini", "case-insensitive machine and path");
	resolve("WIN1", "D:/Jobs/finance/recon.ini", NULL, FLEET_FOUND,
		"machines/WIN1/D/Jobs/finance/recon.ini", "forward slashes");
	resolve("WIN1", "recon.ini", "D:\\Jobs\\finance", FLEET_FOUND,
		"machines/WIN1/D/Jobs/finance/recon.ini", "relative to the working directory");
	resolve("WIN1", "..\\finance\\.\\recon.ini", "D:\\Jobs\\other\\", FLEET_FOUND,
		"machines/WIN1/D/Jobs/finance/recon.ini", ".. and . components");
	resolve("WIN1", "%ProgramData%\\OpConxps\\SMArt Email\\SMArtEmail.ini", NULL, FLEET_FOUND,
		"machines/WIN1/C/ProgramData/OpConxps/SMArt Email/SMArtEmail.ini", "%PROGRAMDATA%");
	resolve("WIN1", "D:\\JOBSCO~1\\x.ini", NULL, FLEET_FOUND,
		"machines/WIN1/D/Jobs Config/x.ini", "8.3 name with one candidate and ~1");
	resolve("WIN1", "E:\\Data\\solo\\b.ini", NULL, FLEET_FOUND,
		"machines/WIN1/E/Data/solo/b.ini", "exact name");
	resolve("WIN1", "C:\\PROGRA~1\\OpConxps\\a.ini", NULL, FLEET_AMBIGUOUS, NULL,
		"8.3 name with several candidates");
	resolve("WIN1", "D:\\JOBSCO~2\\x.ini", NULL, FLEET_AMBIGUOUS, NULL,
		"8.3 name ~2 with a single candidate is not guessed");
	resolve("WIN1", "E:\\data\\clash\\c.ini", NULL, FLEET_AMBIGUOUS, NULL,
		"two folders differing only in case");
	resolve("WIN1", "E:\\Data\\Clash\\c.ini", NULL, FLEET_FOUND,
		"machines/WIN1/E/Data/Clash/c.ini", "an exact match wins over a case clash");
	resolve("WIN2", "d:\\Share\\S.INI", NULL, FLEET_FOUND,
		"machines/WIN2/D$/share/s.ini", "drive collected through the admin share (D$)");
	resolve("WIN1", "D:\\Jobs\\finance\\missing.ini", NULL, FLEET_NOT_FOUND, NULL, "missing file");
	resolve("WIN1", "D:\\Jobs\\finance", NULL, FLEET_NOT_FOUND, NULL, "a folder is not an INI");
	resolve("NOPE", NULL, NULL, FLEET_NOT_FOUND, NULL, "machine not collected");
	resolve("WIN1", "[[INI_DIR]]\\x.ini", NULL, FLEET_UNRESOLVED, NULL, "property in the path");
	resolve("WIN1", "%MYDIR%\\x.ini", NULL, FLEET_UNRESOLVED, NULL, "unknown %VAR%");
	resolve("WIN1", "x.ini", "[[WD]]", FLEET_UNRESOLVED, NULL, "property in the working directory");
	resolve("WIN1", "\\\\fs01\\share\\x.ini", NULL, FLEET_UNSUPPORTED, NULL, "UNC path");
	resolve("WIN1", "x.ini", NULL, FLEET_UNSUPPORTED, NULL, "relative without working directory");

	/* the one-stat() path for a name spelled exactly (issue 16) decides
	 * as the walk by components does */
	{
		char lnk[1100];

		snprintf(lnk, sizeof(lnk), "%s/machines/WIN1/F", top);
		ok(symlink("D", lnk) == 0, "a drive folder F linked to D");
		snprintf(lnk, sizeof(lnk), "%s/machines/WIN1/E/Data/solo/gone.ini", top);
		ok(symlink("nowhere.ini", lnk) == 0, "a dangling link gone.ini");
	}
	resolve("WIN1", "F:\\Jobs\\finance\\recon.ini", NULL, FLEET_FOUND,
		"machines/WIN1/F/Jobs/finance/recon.ini", "exact path through a linked folder");
	resolve("WIN1", "E:\\Data\\solo\\gone.ini", NULL, FLEET_FOUND,
		"machines/WIN1/E/Data/solo/gone.ini", "a dangling link is found as the walk finds it");
	puts_("C/ProgramData/OpConxps/SMArt Email/SMArtEmail.ini", "[Mail]\r\n");
	resolve("..", NULL, NULL, FLEET_NOT_FOUND, NULL,
		"machine '..' does not climb out of machines/");
	resolve("WIN1", "D:\\Jobs\\Finance\\recon.ini", NULL, FLEET_FOUND,
		"machines/WIN1/D/Jobs/finance/recon.ini", "one name in another case: the walk");

	memset(&p, 0, sizeof(p));
	i = fleet_resolve_ini(top, "WIN1", "c:\\programdata\\opconxps\\smart email\\smartemail.ini",
			      NULL, &p, &err);
	ok(i == 0 && strcmp(p.windows_path, "C:\\programdata\\opconxps\\smart email\\smartemail.ini") == 0,
	   "windows_path keeps the job's spelling (drive upper-cased): %s", p.windows_path);
	fleet_path_release(&p);

	ok(fleet_short_name_matches("PROGRA~1", "Program Files"), "PROGRA~1 ~ Program Files");
	ok(fleet_short_name_matches("progra~2", "Program Files (x86)"), "case-insensitive");
	ok(fleet_short_name_matches("SMARTE~1.EXE", "SMArtEmail.exe"), "with extension");
	ok(!fleet_short_name_matches("SMARTE~1.INI", "SMArtEmail.exe"), "extension differs");
	ok(!fleet_short_name_matches("PROGRA~1", "Programs.old"), "extension must be empty too");
	ok(!fleet_short_name_matches("Program Files", "Program Files"), "not a short name");
}

static void test_inis_notify(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct fleet_handlers h = { .problem = on_problem };
	struct seen *s = calloc(1, sizeof(*s));
	struct fleet_ini *v;
	struct fleet_notify_slot *ns;
	size_t n, i;

	h.ctx = s;
	i = (size_t)fleet_list_inis(top, &v, &n, &err);
	/* gone.ini (a dangling link) is listed; the linked folder F is not
	 * followed */
	ok(i == 0 && n == 10, "ten INI files listed (%zu)", n);
	for (i = 0; i < n; i++)
		printf("# %s %s %s\n", v[i].machine, v[i].windows_path, v[i].rel);
	ok(n > 0 && strcmp(v[0].windows_path, "C:\\Program Files (x86)\\OpConxps\\a.ini") == 0,
	   "sorted, Windows paths built from folders");
	ok(n == 10 && strcmp(v[9].windows_path, "D:\\share\\s.ini") == 0 &&
	   strcmp(v[9].machine, "WIN2") == 0, "D$ is drive D:");
	fleet_inis_free(v, n);

	puts_("notify/opcon.json",
	      "{\"SMTPSERVER1\":\"smtp.office365.com\",\"SMTPPORT1\":587,\"SMTPUSER1\":\"a@b\","
	      "\"SMTPPASSWORD1\":\"xx\",\"SMTPSSL1\":true,\"SMTPSERVER2\":\"\","
	      "\"SMTPSERVER3\":\"relay\",\"SMTPAPPID3\":\"app\",\"SMTPSECRET3\":\"s\","
	      "\"SMTPTENANTID3\":\"t\"}");
	puts_("notify/bad.json", "{");
	i = (size_t)fleet_read_notify(top, &h, &ns, &n, &err);
	ok(i == 0 && n == 2, "two slots in use");
	ok(n == 2 && ns[0].slot == 1 && ns[0].port == 587 && ns[0].ssl && ns[0].has_password &&
	   strcmp(ns[0].user, "a@b") == 0 && !ns[0].app_id, "slot 1 fields");
	ok(n == 2 && ns[1].slot == 3 && ns[1].has_secret && strcmp(ns[1].app_id, "app") == 0 &&
	   strcmp(ns[1].tenant_id, "t") == 0, "slot 3 fields");
	ok(s->np == 1 && strstr(s->problems[0], "notify/bad.json"), "malformed notify export reported");
	fleet_notify_free(ns, n);
	free(s);
}

/* fleet_handlers.other (issue 16): jobs that cannot run the connector
 * are counted undecoded; every job analysis_is_connector_job() accepts
 * still arrives, and problems are reported as without it. */
struct cseen {
	size_t jobs, connector, other;
	struct seen s;
};

static int c_job(const struct fleet_job *j, void *ctx, struct ms_err *err)
{
	struct cseen *c = ctx;

	c->jobs++;
	c->connector += analysis_is_connector_job(j) != 0;
	return on_job(j, &c->s, err);
}

static void c_problem(const char *file, int line, const char *msg, void *ctx)
{
	on_problem(file, line, msg, &((struct cseen *)ctx)->s);
}

static int c_other(size_t n, void *ctx, struct ms_err *err)
{
	(void)err;
	((struct cseen *)ctx)->other += n;
	return 0;
}

static void test_connector_only(void)
{
	static const struct { const char *text; int want; } t[] = {
		{ "smartemail.exe -inifile:a.ini", 1 },
		{ "C:\\PROGRA~1\\SMARTE~1.EXE", 1 },
		{ "cmd /c \"smart\"\"email.exe\"", 1 },
		{ "\"D:\\x\\SMArtEmail\"", 1 },
		{ "mailshift --imap", 1 },
		{ "MAILSH~2.EXE", 1 },
		{ "sm\\u0061rtemail", 1 },
		{ "smart\\\\email", 1 },
		{ "robocopy.exe C:\\a D:\\b", 0 },
		{ "smart email.exe", 0 },
		{ "smartmail mailsend", 0 },
		{ "", 0 },
	};
	struct ms_err err = MS_ERR_INIT;
	struct fleet_handlers h = { .job = c_job, .problem = c_problem };
	struct cseen *all = calloc(1, sizeof(*all)), *few = calloc(1, sizeof(*few)),
		     *afew = calloc(1, sizeof(*afew));
	char dir[512];
	size_t i;
	int k, same = 1;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		ok(!fleet_may_run_connector(t[i].text, strlen(t[i].text)) == !t[i].want,
		   "may run the connector: %s -> %d", t[i].text, t[i].want);

	puts_("c/jobs/a.json",
	      "[{\"name\":\"A1\",\"details\":{\"commandLine\":\"smartemail.exe\"}},\n"
	      " {\"name\":\"A2\",\"details\":{\"commandLine\":\"robocopy.exe a b\"}},\n"
	      " {\"name\":\"A3\",\"commandLine\":\"cmd /c \\\"smart\\\"\\\"email.exe\\\"\"},\n"
	      " {\"name\":\"A4\",\"commandLine\":\"sm\\u0061rtemail.exe\"},\n"
	      " {\"name\":\"A5\",\"commandLine\":\"C:\\\\PROGRA~1\\\\SMARTE~1.EXE\"},\n"
	      " {\"name\":\"A6\"},\n"
	      " {\"name\":\"A7\",\"jobType\":\"UNIX\",\"commandLine\":\"/bin/true\"},\n"
	      " {\"name\":\"A8\",\"commandLine\":\"x.exe\",\"doc\":tru}]\n");
	puts_("c/jobs/b.xml",
	      "<jobs>\n<job><jname>X1</jname><cmd_line>sm&#97;rtemail.exe</cmd_line></job>\n"
	      "<job><jname>X2</jname><cmd_line>robocopy.exe</cmd_line></job>\n"
	      "<job><jname>X3</jname></job>\n"
	      "<job><jname>X4</jname><cmd_line>mailshift</cmd_line></job>\n"
	      "<job><jname>X5</jname><cmd_line>x</cmd_line></jobb>\n");
	/* a lone surrogate: the check lets it through, cJSON does not */
	puts_("c/jobs/c.json", "[{\"name\":\"S\\ud800\",\"commandLine\":\"x.exe\"}]");
	snprintf(dir, sizeof(dir), "%s/c", top);
	h.ctx = all;
	ok(fleet_scan(dir, &h, &err) == 0, "connector only: plain scan: %s", err.msg);
	h.other = c_other;
	h.ctx = few;
	ok(fleet_scan(dir, &h, &err) == 0, "connector only: scan with other(): %s", err.msg);
	h.ctx = afew;
	ok(fleet_scan_async(dir, &h, &err) == 0, "connector only: async scan: %s", err.msg);
	printf("# all %zu jobs %zu connector; few %zu+%zu other, %zu connector; async %zu+%zu, %zu\n",
	       all->jobs, all->connector, few->jobs, few->other, few->connector,
	       afew->jobs, afew->other, afew->connector);
	ok(all->connector == 6 && all->other == 0, "six connector jobs without other()");
	ok(few->jobs + few->other == all->jobs && few->connector == all->connector &&
	   few->other >= 4, "with other(): the same connector jobs, the rest counted");
	ok(afew->jobs == few->jobs && afew->other == few->other &&
	   afew->connector == few->connector, "async: the same");
	for (k = 0; k < all->s.np; k++)
		same &= k < few->s.np && strcmp(all->s.problems[k], few->s.problems[k]) == 0 &&
			k < afew->s.np && strcmp(all->s.problems[k], afew->s.problems[k]) == 0;
	ok(all->s.np == 3 && few->s.np == 3 && afew->s.np == 3 && same,
	   "the same problems, at the same lines: %s / %s / %s",
	   all->s.np ? all->s.problems[0] : "-", all->s.np > 1 ? all->s.problems[1] : "-",
	   all->s.np > 2 ? all->s.problems[2] : "-");
	free(all);
	free(few);
	free(afew);
}

/* UTF-16 exports are decoded a buffer at a time (issue 16): jobs across
 * the read buffers, and a fault reported at the line the reader is on. */
static void test_utf16_stream(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct fleet_handlers h = { .job = c_job, .problem = c_problem, .other = c_other };
	struct cseen *c = calloc(1, sizeof(*c));
	size_t cap = 200 * 1024, n = 0, k, half = 0;
	char *t = malloc(cap), dir[512];
	unsigned char *u = malloc(2 * cap + 8);

	n += (size_t)snprintf(t + n, cap - n, "[\r\n");
	for (k = 0; k < 300; k++) {
		if (k == 150)
			half = n;
		n += (size_t)snprintf(t + n, cap - n,
				      "%s{\"name\":\"J%zu\",\"doc\":\"%0300d\",\"commandLine\":\"%s\"}\r\n",
				      k ? "," : "", k, 0, k % 10 ? "x.exe" : "smartemail.exe");
	}
	n += (size_t)snprintf(t + n, cap - n, "]\r\n");
	/* the whole file, then a lone low surrogate before job 150's line */
	u[0] = 0xFF;
	u[1] = 0xFE;
	for (k = 0; k < n; k++) {
		u[2 + 2 * k] = (unsigned char)t[k];
		u[3 + 2 * k] = 0;
	}
	put("u/jobs/a-ok.json", u, 2 + 2 * n);
	memmove(u + 2 + 2 * half + 2, u + 2 + 2 * half, 2 * (n - half));
	u[2 + 2 * half] = 0x00;
	u[3 + 2 * half] = 0xDC;
	put("u/jobs/b-lone.json", u, 4 + 2 * n);
	/* an odd byte at the end */
	u[2 + 2 * half] = (unsigned char)t[half];
	memmove(u + 2 + 2 * half, u + 2 + 2 * half + 2, 2 * (n - half));
	u[2 + 2 * n] = ' ';
	put("u/jobs/c-odd.json", u, 3 + 2 * n);
	snprintf(dir, sizeof(dir), "%s/u", top);
	h.ctx = c;
	ok(fleet_scan(dir, &h, &err) == 0, "UTF-16 stream: scan: %s", err.msg);
	printf("# %zu jobs, %zu other, %d problems\n", c->jobs, c->other, c->s.np);
	for (k = 0; k < (size_t)c->s.np; k++)
		printf("# %s\n", c->s.problems[k]);
	ok(c->jobs + c->other == 300 + 150 + 300 && c->connector == 30 + 15 + 30,
	   "every job before a fault read, across the read buffers");
	ok(c->s.np == 2 && strcmp(c->s.problems[0], "jobs/b-lone.json:152: invalid UTF-16: an "
				  "unpaired surrogate") == 0,
	   "a lone surrogate: at its line");
	ok(c->s.np == 2 && strcmp(c->s.problems[1], "jobs/c-odd.json:303: odd length for "
				  "UTF-16 text") == 0,
	   "an odd byte at the end: at the last line");
	free(t);
	free(u);
	free(c);
}

static void cleanup(void)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", top);
}

/* Fleet file -> the path to copy it to on its machine (migrate's
 * deploy list). */
static void test_windows_path(void)
{
	char *m = NULL, *w;

	w = fleet_windows_path("machines/WINAPP01/D/Jobs/a b/x.ini", &m);
	is(w, "D:\\Jobs\\a b\\x.ini", "drive folder D");
	is(m, "WINAPP01", "the machine");
	free(w);
	free(m);
	w = fleet_windows_path("machines/W2/c$/ProgramData/y.ini", NULL);
	is(w, "C:\\ProgramData\\y.ini", "admin share folder c$, drive in capitals");
	free(w);
	ok(fleet_windows_path("machines/W2/Data/y.ini", NULL) == NULL, "not a drive folder: NULL");
	ok(fleet_windows_path("jobs/a.json", NULL) == NULL, "not under machines/: NULL");
}

/* The in-place JSON path and the SAX XML reader (issue 16): what they
 * keep of a job, and that they refuse what cJSON and libxml2 refuse. */
static void test_fast_paths(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct fleet_handlers h = { .job = on_job, .problem = on_problem };
	struct seen *s = calloc(1, sizeof(*s));
	char dir[512], *big;
	size_t n = 0, cap = 300 * 1024;
	int k;

	h.ctx = s;
	/* a REST job with what a real one carries around the fields read; an
	 * escaped key; details that are not an object; a bad literal and a
	 * bad number in members nobody reads */
	puts_("f/jobs/a-rest.json",
	      "[{\"id\":1,\"documentation\":\"x\",\"frequencies\":[{\"name\":\"Daily\",\"n\":-1.5e3}],"
	      "\"na\\u006de\":\"ESC\",\"schedule\":{\"id\":7,\"name\":\"S\"},\"primaryMachine\":"
	      "{\"id\":2,\"name\":\"M\"},\"jobType\":{\"id\":0,\"description\":\"Windows\"},"
	      "\"details\":{\"exitCodes\":[{\"value\":0}],\"commandLine\":\"smartemail.exe\","
	      "\"workingDirectory\":\"D:\\\\w\",\"env\":[]}},\n"
	      " {\"name\":\"STR\",\"details\":\"odd\",\"windowsDetails\":{\"commandLine\":\"w.exe\"}},\n"
	      " {\"name\":\"OK\"},\n"
	      " {\"name\":\"BAD\",\"disabled\":fals}]\n");
	puts_("f/jobs/b-num.json", "[{\"name\":\"N\",\"x\":1.2.3}]");
	/* jobs of 3 KB across the 64 KB read buffer, then one of 100 KB */
	big = malloc(cap);
	n += (size_t)snprintf(big + n, cap - n, "[");
	for (k = 0; k < 40; k++) {
		n += (size_t)snprintf(big + n, cap - n, "%s{\"name\":\"B%d\",\"doc\":\"", k ? ",\n" : "", k);
		memset(big + n, 'd', 3000);
		n += 3000;
		n += (size_t)snprintf(big + n, cap - n, "\",\"details\":{\"commandLine\":\"c%d\"}}", k);
	}
	n += (size_t)snprintf(big + n, cap - n, ",\n{\"name\":\"HUGE\",\"doc\":\"");
	memset(big + n, 'h', 100000);
	n += 100000;
	n += (size_t)snprintf(big + n, cap - n, "\",\"details\":{\"commandLine\":\"h\"}}]");
	put("f/jobs/c-big.json", big, n);
	free(big);
	/* an empty <job/> is no job; a <job> with its fields is */
	puts_("f/jobs/d-extract.xml",
	      "<jobs>\n<job/>\n<job><jname>X1</jname><cmd_line><![CDATA[a \"b\"]]></cmd_line></job>\n"
	      "</jobs>\n");
	snprintf(dir, sizeof(dir), "%s/f", top);
	ok(fleet_scan(dir, &h, &err) == 0, "fast paths: scan: %s", err.msg);
	for (k = 0; k < s->n; k++)
		printf("# job %s\n", s->jobs[k]);
	for (k = 0; k < s->np; k++)
		printf("# problem %s\n", s->problems[k]);
	ok(has_job(s, "jobs/a-rest.json|S|ESC|M|Windows|smartemail.exe|D:\\w|1"),
	   "a full REST job: the fields read, an escaped key decoded");
	ok(has_job(s, "jobs/a-rest.json||STR|||w.exe|-|2"),
	   "details that are not an object: windowsDetails");
	ok(has_job(s, "jobs/a-rest.json||OK|") && !has_job(s, "jobs/a-rest.json||BAD"),
	   "a bad literal in a member nobody reads still makes the job invalid");
	ok(s->np >= 1 && strstr(s->problems[0], "jobs/a-rest.json:4: invalid JSON in job #4"),
	   "... named with its number and line");
	ok(s->np >= 2 && strstr(s->problems[1], "jobs/b-num.json:1: invalid JSON in job #1"),
	   "a bad number too");
	ok(has_job(s, "jobs/c-big.json||B0|||c0|-|1") && has_job(s, "jobs/c-big.json||B39|||c39|-|40") &&
	   has_job(s, "jobs/c-big.json||HUGE|||h|-|41"),
	   "jobs across the read buffer's end and one larger than it, with their lines");
	ok(has_job(s, "jobs/d-extract.xml||X1|||a \"b\"|-|3") && !has_job(s, "jobs/d-extract.xml||||"),
	   "XML: <job/> is no job; CDATA read");
	is_int(s->np, 2, "two problems");
	free(s);
}

/* Numbers as cJSON reads them (strtod over [-+0-9.eE]) and long runs of
 * blanks and line breaks (read 16 bytes at a time): the same jobs, the
 * same errors, at the same lines. */
static void test_numbers_blanks(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct fleet_handlers h = { .job = on_job, .problem = on_problem };
	struct seen *s = calloc(1, sizeof(*s));
	char dir[512];
	int k;

	h.ctx = s;
	puts_("n/jobs/good.json",
	      "[{\"name\":\"G1\",\"a\":[0,-0,1.5,-2.25e10,3E+2,4e-1,.5,+1,7.,-.5e1,1e999]},\n"
	      "                                        \r\n"
	      "\t \r\n\n\n                                  \n"
	      "  {\"name\":\"G2\",   \"b\"  :   12   ,\r\n                     \"c\":  [ 1 ,  2 ]  }  ,"
	      "                                                 \n"
	      "{\"name\":\"G3\"}]\n");
	puts_("n/jobs/e1.json", "[{\"name\":\"E\",\"x\":1e}]");
	puts_("n/jobs/e2.json", "[{\"name\":\"E\",\"x\":-}]");
	puts_("n/jobs/e3.json", "[{\"name\":\"E\",\"x\":e5}]");
	puts_("n/jobs/e4.json", "[{\"name\":\"E\",\"x\":1e+}]");
	puts_("n/jobs/e5.json", "[{\"name\":\"E\",\"x\":.}]");
	puts_("n/jobs/e6.json", "[{\"name\":\"E\",\"x\":1234567890123456789012345678901234567890"
	      "123456789012345678901234}]");
	puts_("n/jobs/e7.json", "[{\"name\":\"OK\"},\n\n                                       \n"
	      "                   \r\n   {\"name\":\"E\",\"x\":--1}]");
	snprintf(dir, sizeof(dir), "%s/n", top);
	ok(fleet_scan(dir, &h, &err) == 0, "numbers: scan: %s", err.msg);
	for (k = 0; k < s->np; k++)
		printf("# problem %s\n", s->problems[k]);
	ok(has_job(s, "jobs/good.json||G1|") && has_job(s, "jobs/good.json||G2|") &&
	   has_job(s, "jobs/good.json||G3|"), "numbers cJSON reads, blanks between tokens");
	ok(has_job(s, "jobs/good.json||G2|||-|-|7") && has_job(s, "jobs/good.json||G3|||-|-|9"),
	   "line numbers after runs of blanks and line breaks");
	for (k = 1; k <= 6; k++) {
		char want[64];
		int i, found = 0;

		snprintf(want, sizeof(want), "jobs/e%d.json:1: invalid JSON in job #1", k);
		for (i = 0; i < s->np; i++)
			found |= strstr(s->problems[i], want) != NULL;
		ok(found, "not a number: %s", want);
	}
	{
		int i, found = 0;

		for (i = 0; i < s->np; i++)
			found |= strstr(s->problems[i], "jobs/e7.json:5: invalid JSON in job #2") != NULL;
		ok(found && has_job(s, "jobs/e7.json||OK|"),
		   "a bad number after blank lines: its line");
	}
	is_int(s->np, 7, "seven problems");
	free(s);
}

int main(void)
{
	snprintf(top, sizeof(top), "%s/test_fleet.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(top)) {
		perror("mkdtemp");
		return 2;
	}
	test_utf8();
	test_scan();
	test_stream();
	test_value_runs();
	test_fast_paths();
	test_numbers_blanks();
	test_async();
	test_prefetch();
	test_fifo_exports();
	test_resolve();
	test_inis_notify();
	test_windows_path();
	test_connector_only();
	test_utf16_stream();
	cleanup();
	return done_testing();
}
