/*
 * fuzz_fleet.c - job exports (JSON and XML) and the notification export.
 *
 * fleet.h reads a fleet folder, so each input is written to a scratch
 * fleet (in /dev/shm when there is one) as jobs/export.json or .xml, or as
 * notify/n.json, chosen by byte 0, and scanned.  Properties:
 *   - the scan never fails for a malformed file (only the problem
 *     callback hears of it), and never crashes or leaks;
 *   - every job has non-NULL schedule, name, machine and job type, names
 *     the export it came from and has a line >= 0;
 *   - fleet_to_utf8() gives a NUL-terminated buffer of the length it says;
 *   - fleet_scan_async() makes the same calls, in the same order, with the
 *     same arguments as fleet_scan(), also when the job handler fails;
 *   - an XML export read by the subset scanner (with libxml2 behind it)
 *     makes the same calls as one read by libxml2 alone, and what the
 *     scanner hands over by itself, before it gives up, is a beginning of
 *     them.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "audit/analysis.h"
#include "audit/fleet.h"
#include "audit/fleet_int.h"

static char top[PATH_MAX];
static const char *files[] = { "jobs/export.json", "jobs/export.xml",
			       "notify/n.json" };

static void fail(const char *what, const char *s)
{
	fprintf(stderr, "%s: [%s]\n", what, s ? s : "(null)");
	abort();
}

static void cleanup(void)
{
	char p[PATH_MAX + 32];
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", top, files[i]);
		unlink(p);
	}
	snprintf(p, sizeof(p), "%s/jobs", top);
	rmdir(p);
	snprintf(p, sizeof(p), "%s/notify", top);
	rmdir(p);
	rmdir(top);
}

static void setup(void)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" :
			   getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char p[PATH_MAX + 32];

	snprintf(top, sizeof(top), "%s/fuzz_fleet.%ld", base, (long)getpid());
	mkdir(top, 0700);
	snprintf(p, sizeof(p), "%s/jobs", top);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/notify", top);
	mkdir(p, 0700);
	atexit(cleanup);
}

/* Every call of a scan, as text, to compare the two scans. */
struct trace {
	char *s;
	size_t len, alloc;
	size_t njobs;
	size_t fail_at;                 /* fail this job (1-based), 0: never */
	size_t prepared, consumed, released;    /* prepare() results */
	int connector_only;             /* trace connector jobs only, count the rest */
	size_t others;
};

static void tr_add(struct trace *t, const char *a, size_t n)
{
	if (t->len + n + 1 > t->alloc) {
		size_t na = (t->len + n + 1) * 2;
		char *ns = realloc(t->s, na);

		if (!ns)
			fail("out of memory", "");
		t->s = ns;
		t->alloc = na;
	}
	memcpy(t->s + t->len, a, n);
	t->len += n;
	t->s[t->len] = '\0';
}

static void tr_str(struct trace *t, const char *s)
{
	if (!s) {
		tr_add(t, "\1", 1);
		return;
	}
	tr_add(t, s, strlen(s));
	tr_add(t, "\0", 1);
}

static void tr_num(struct trace *t, long n)
{
	char b[32];

	snprintf(b, sizeof(b), "%ld", n);
	tr_str(t, b);
}

/* On the reader thread of fleet_scan_async(): the job's name and line. */
static void *on_prepare(const struct fleet_job *j, void *ctx)
{
	struct trace *t = ctx;
	char *p;

	if (asprintf(&p, "%s:%d", j->name ? j->name : "(null)", j->line) < 0)
		return NULL;
	__atomic_add_fetch(&t->prepared, 1, __ATOMIC_SEQ_CST);
	return p;
}

static void on_release(void *p, void *ctx)
{
	struct trace *t = ctx;

	__atomic_add_fetch(&t->released, 1, __ATOMIC_SEQ_CST);
	free(p);
}

static int on_job(const struct fleet_job *j, void *ctx, struct ms_err *err)
{
	struct trace *t = ctx;

	if (j->prepared) {
		char want[64];

		snprintf(want, sizeof(want), "%s:%d", j->name ? j->name : "(null)",
			 j->line);
		if (strncmp(want, j->prepared, strlen(want) < 40 ? strlen(want) : 40))
			fail("a job got another job's prepare() result", j->prepared);
		t->consumed++;
		free(j->prepared);
	}
	if (t->fail_at && t->njobs + 1 == t->fail_at)
		return err_set(err, MS_ERR_NOMEM, "handler failed");
	if (t->connector_only && !analysis_is_connector_job(j)) {
		t->others++;
		return 0;
	}
	tr_str(t, "job");
	tr_str(t, j->source);
	tr_num(t, j->line);
	tr_str(t, j->schedule);
	tr_str(t, j->name);
	tr_str(t, j->machine);
	tr_str(t, j->job_type);
	tr_str(t, j->command_line);
	tr_str(t, j->working_dir);
	tr_str(t, j->batch_user);
	if (!j->source || !j->schedule || !j->name || !j->machine ||
	    !j->job_type)
		fail("job with a NULL field", j->source);
	if (strcmp(j->source, files[0]) && strcmp(j->source, files[1]))
		fail("job names the wrong export", j->source);
	if (j->line < 0)
		fail("job with a negative line", j->name);
	(void)fleet_job_is_windows(j);
	if (j->command_line)
		(void)strlen(j->command_line);
	if (j->working_dir)
		(void)strlen(j->working_dir);
	if (j->batch_user)
		(void)strlen(j->batch_user);
	t->njobs++;
	return 0;
}

static void on_problem(const char *file, int line, const char *msg, void *ctx)
{
	struct trace *t = ctx;

	if (!file || !msg)
		fail("problem without file or message", msg);
	if (line < 0)
		fail("problem with a negative line", msg);
	tr_str(t, "problem");
	tr_str(t, file);
	tr_num(t, line);
	tr_str(t, msg);
}

static void on_file(const char *file, size_t files, void *ctx)
{
	struct trace *t = ctx;

	tr_str(t, "file");
	tr_str(t, file);
	tr_num(t, (long)files);
}

static int on_other(size_t n, void *ctx, struct ms_err *err)
{
	(void)err;
	((struct trace *)ctx)->others += n;
	return 0;
}

/* fleet_handlers.other: the connector jobs and the problems are those
 * of a scan without it, and no job is lost from the count. */
static void scan_other(void)
{
	struct ms_err e1 = MS_ERR_INIT, e2 = MS_ERR_INIT, e3 = MS_ERR_INIT;
	struct fleet_handlers h = { .job = on_job, .problem = on_problem, .file_done = on_file };
	struct trace t[3];
	int r1, r2, r3, i;

	memset(t, 0, sizeof(t));
	for (i = 0; i < 3; i++)
		t[i].connector_only = 1;
	h.ctx = &t[0];
	r1 = fleet_scan(top, &h, &e1);
	h.other = on_other;
	h.ctx = &t[1];
	r2 = fleet_scan(top, &h, &e2);
	h.ctx = &t[2];
	r3 = fleet_scan_async(top, &h, &e3);
	if (r1 != r2 || r1 != r3 || strcmp(e1.msg, e2.msg) || strcmp(e1.msg, e3.msg))
		fail("a scan with other() gives another result", e2.msg);
	for (i = 1; i < 3; i++) {
		if (t[i].len != t[0].len || (t[0].len && memcmp(t[0].s, t[i].s, t[0].len)))
			fail("a scan with other() makes other calls", t[i].s);
		if (t[i].njobs != t[0].njobs || t[i].others != t[0].others)
			fail("a scan with other() counts other jobs", "");
	}
	for (i = 0; i < 3; i++)
		free(t[i].s);
}

/* fleet_scan() then fleet_scan_async(): the same calls and result. */
static void scan_twice(size_t fail_at, size_t *njobs)
{
	struct ms_err e1 = MS_ERR_INIT, e2 = MS_ERR_INIT;
	struct fleet_handlers h = { .job = on_job, .problem = on_problem, .file_done = on_file };
	struct trace t1, t2;
	int r1, r2;

	memset(&t1, 0, sizeof(t1));
	memset(&t2, 0, sizeof(t2));
	t1.fail_at = t2.fail_at = fail_at;
	h.ctx = &t1;
	r1 = fleet_scan(top, &h, &e1);
	h.ctx = &t2;
	h.prepare = on_prepare;
	h.release = on_release;
	r2 = fleet_scan_async(top, &h, &e2);
	if (t2.prepared != t2.consumed + t2.released)
		fail("a prepare() result was neither consumed nor released", "");
	if (r1 != (fail_at ? -1 : 0))
		fail("fleet_scan failed", e1.msg);
	if (r1 != r2 || e1.code != e2.code || strcmp(e1.msg, e2.msg))
		fail("fleet_scan_async gives another result", e2.msg);
	if (t1.len != t2.len || (t1.len && memcmp(t1.s, t2.s, t1.len)))
		fail("fleet_scan_async makes other calls", t2.s);
	if (njobs)
		*njobs = t1.njobs;
	free(t1.s);
	free(t2.s);
}

/* The XML export read three ways (fleet_xml.c): libxml2 alone, the
 * subset scanner with libxml2 behind it, the scanner alone. */
static void scan_xml_ways(void)
{
	struct fleet_handlers h = { .job = on_job, .problem = on_problem };
	char p[PATH_MAX + 32];
	struct trace t[3];
	int r[3], i, other;

	snprintf(p, sizeof(p), "%s/%s", top, files[1]);
	for (other = 0; other <= 1; other++) {
		memset(t, 0, sizeof(t));
		h.other = other ? on_other : NULL;
		for (i = 0; i < 3; i++) {
			struct ms_err e = MS_ERR_INIT;

			h.ctx = &t[i];
			r[i] = fleet_scan_xml_as(p, files[1], &h, i == 0 ? FLEET_XML_LIBXML2 :
						 i == 1 ? FLEET_XML_AUTO : FLEET_XML_SUBSET,
						 NULL, &e);
		}
		if (r[0] != r[1] || t[0].len != t[1].len ||
		    (t[0].len && memcmp(t[0].s, t[1].s, t[0].len)) || t[0].others != t[1].others)
			fail("the subset scanner and libxml2 read an export differently", t[1].s);
		/* the scanner alone: all of it when it read to the end, else
		 * a beginning of it (what it handed over before giving up) */
		if (t[2].len > t[0].len || (t[2].len && memcmp(t[0].s, t[2].s, t[2].len)) ||
		    (r[2] == 0 && (t[2].len != t[0].len || t[2].others != t[0].others)) ||
		    t[2].others > t[0].others)
			fail("the subset scanner hands over what libxml2 does not", t[2].s);
		for (i = 0; i < 3; i++)
			free(t[i].s);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ms_err err = MS_ERR_INIT;
	struct fleet_handlers h;
	struct fleet_notify_slot *slots = NULL;
	struct trace tr;
	char p[PATH_MAX + 32], *u = NULL;
	size_t njobs = 0, nslots = 0, ulen = 0, i;
	unsigned which;
	FILE *fp;

	if (size < 1 || size > 128 * 1024)
		return 0;
	if (!top[0])
		setup();
	which = data[0] % 3;
	data++;
	size--;

	if (fleet_to_utf8((const char *)data, size, &u, &ulen, &err) == 0) {
		if (!u || u[ulen] != '\0')
			fail("fleet_to_utf8 output not terminated", "");
		free(u);
	}

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", top, files[i]);
		unlink(p);
	}
	snprintf(p, sizeof(p), "%s/%s", top, files[which]);
	if (!(fp = fopen(p, "wb")))
		fail("cannot write the scratch export", p);
	if (size && fwrite(data, 1, size, fp) != size)
		fail("cannot write the scratch export", p);
	fclose(fp);

	memset(&h, 0, sizeof(h));
	memset(&tr, 0, sizeof(tr));
	h.job = on_job;
	h.problem = on_problem;
	h.ctx = &tr;
	err_clear(&err);
	if (which < 2) {
		scan_twice(0, &njobs);
		scan_other();
		/* a handler failing at the last job (or the only one) */
		if (njobs)
			scan_twice(njobs, NULL);
		if (which == 1)
			scan_xml_ways();
	} else {
		if (fleet_read_notify(top, &h, &slots, &nslots, &err) != 0)
			fail("fleet_read_notify failed", err.msg);
		for (i = 0; i < nslots; i++) {
			if (!slots[i].source || slots[i].slot < 1 ||
			    slots[i].slot > 4)
				fail("odd notify slot", slots[i].source);
		}
		fleet_notify_free(slots, nslots);
		free(tr.s);
	}
	return 0;
}
