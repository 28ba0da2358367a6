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
 *   - fleet_to_utf8() gives a NUL-terminated buffer of the length it says.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fleet.h"

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

static int on_job(const struct fleet_job *j, void *ctx, struct ms_err *err)
{
	size_t *n = ctx;

	(void)err;
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
	(*n)++;
	return 0;
}

static void on_problem(const char *file, int line, const char *msg, void *ctx)
{
	(void)ctx;
	if (!file || !msg)
		fail("problem without file or message", msg);
	if (line < 0)
		fail("problem with a negative line", msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ms_err err = MS_ERR_INIT;
	struct fleet_handlers h;
	struct fleet_notify_slot *slots = NULL;
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
	h.job = on_job;
	h.problem = on_problem;
	h.ctx = &njobs;
	err_clear(&err);
	if (which < 2) {
		if (fleet_scan(top, &h, &err) != 0)
			fail("fleet_scan failed", err.msg);
	} else {
		if (fleet_read_notify(top, &h, &slots, &nslots, &err) != 0)
			fail("fleet_read_notify failed", err.msg);
		for (i = 0; i < nslots; i++) {
			if (!slots[i].source || slots[i].slot < 1 ||
			    slots[i].slot > 4)
				fail("odd notify slot", slots[i].source);
		}
		fleet_notify_free(slots, nslots);
	}
	return 0;
}
