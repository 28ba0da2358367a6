/*
 * mailshift-audit: the pre-cutover report for a fleet of connector jobs.
 *
 * Exit: 0 nothing needs action; 1 some job has a --fail-on status
 * (default needs-migration, broken); EX_USAGE, EX_NOINPUT (no fleet
 * folder), EX_IOERR, EX_CANTCREAT (--out), EX_DATAERR (an export could not
 * be read: the report is still written, without its jobs).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "analysis.h"
#include "fsutil.h"
#include "log.h"
#include "report.h"

static const char *prog = "mailshift-audit";

/* A progress line on a terminal for big fleets. */
static void progress(size_t files, size_t jobs, void *ctx)
{
	if (files % 16 == 0)
		fprintf(stderr, "\r%s: scanned %zu export files, %zu jobs", prog, files,
			jobs);
	*(int *)ctx = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s --fleet DIR [--format text|json|csv|html] [--out FILE]\n"
		"                       [--fail-on STATUS]... [--quiet]\n"
		"  --fleet DIR      fleet folder: jobs/, machines/, notify/\n"
		"  --format F       report format (default text)\n"
		"  --out FILE       write the report to FILE (atomically) instead of stdout\n"
		"  --fail-on S      exit 1 when a job has status S (repeatable; default\n"
		"                   needs-migration and broken; 'none' never fails)\n"
		"  --quiet          with --out, print nothing on success\n"
		"statuses: needs-migration at-risk migrated unaffected broken\n", prog);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "fleet", required_argument, NULL, 'f' },
		{ "format", required_argument, NULL, 'F' },
		{ "out", required_argument, NULL, 'o' },
		{ "fail-on", required_argument, NULL, 'x' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct ms_err err = MS_ERR_INIT;
	struct analysis_opts ao = { 0 };
	struct report_opts ro = { REPORT_TEXT, NULL, MS_VERSION };
	struct audit a;
	const char *fleet = NULL, *out = NULL;
	int fail_on[STATUS_COUNT] = { 0 }, fail_set = 0, quiet = 0, shown = 0;
	int c, rc, s;
	char *text = NULL;
	size_t len = 0, i;
	struct stat st;

	log_set_sink(log_stderr_sink, (void *)prog, LOG_LVL_WARN);
	while ((c = getopt_long(argc, argv, "f:F:o:x:qhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': fleet = optarg; break;
		case 'F':
			if (report_format_parse(optarg, &ro.format) < 0) {
				fprintf(stderr, "%s: unknown format '%s'\n", prog, optarg);
				return EX_USAGE;
			}
			break;
		case 'o': out = optarg; break;
		case 'x':
			fail_set = 1;
			if (strcmp(optarg, "none") == 0)
				break;
			if ((s = analysis_status_parse(optarg)) < 0) {
				fprintf(stderr, "%s: unknown status '%s'\n", prog, optarg);
				return EX_USAGE;
			}
			fail_on[s] = 1;
			break;
		case 'q': quiet = 1; break;
		case 'h': usage(stdout); return EX_OK;
		case 'V': printf("%s %s\n", prog, MS_VERSION); return EX_OK;
		default: usage(stderr); return EX_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
		return EX_USAGE;
	}
	if (!fleet) {
		fprintf(stderr, "%s: --fleet DIR is required\n", prog);
		usage(stderr);
		return EX_USAGE;
	}
	if (!fail_set)
		fail_on[STATUS_NEEDS_MIGRATION] = fail_on[STATUS_BROKEN] = 1;
	if (stat(fleet, &st) < 0) {
		fprintf(stderr, "%s: cannot open fleet folder '%s': %s\n", prog, fleet,
			strerror(errno));
		return EX_NOINPUT;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "%s: '%s' is not a folder\n", prog, fleet);
		return EX_NOINPUT;
	}
	ao.fleet_dir = fleet;
	ro.fleet_dir = fleet;
	if (isatty(STDERR_FILENO)) {
		ao.progress = progress;
		ao.progress_ctx = &shown;
	}
	rc = audit_run(&ao, &a, &err);
	if (shown)
		fprintf(stderr, "\r\033[K");
	if (rc < 0) {
		fprintf(stderr, "%s: %s\n", prog, err.msg);
		return err.code == MS_ERR_IO ? EX_NOINPUT : err_sysexit(&err);
	}
	if (report_render(&a, &ro, &text, &len, &err) < 0) {
		fprintf(stderr, "%s: %s\n", prog, err.msg);
		audit_release(&a);
		return err_sysexit(&err);
	}
	if (out) {
		if (fs_write_atomic(out, text, len, 0644, &err) < 0) {
			fprintf(stderr, "%s: %s\n", prog, err.msg);
			free(text);
			audit_release(&a);
			return EX_CANTCREAT;
		}
		if (!quiet) {
			printf("%zu connector jobs:", a.n_jobs);
			for (s = 0; s < STATUS_COUNT; s++)
				printf("%s %zu %s", s ? "," : "", a.counts[s],
				       analysis_status_name((enum job_status)s));
			printf("\nreport written to %s\n", out);
		}
	} else if (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0) {
		fprintf(stderr, "%s: cannot write the report: %s\n", prog, strerror(errno));
		free(text);
		audit_release(&a);
		return EX_IOERR;
	}
	for (i = 0; i < a.n_problems; i++) {
		if (a.problems[i].line)
			fprintf(stderr, "%s: %s/%s:%d: %s\n", prog, fleet, a.problems[i].file,
				a.problems[i].line, a.problems[i].message);
		else
			fprintf(stderr, "%s: %s/%s: %s\n", prog, fleet, a.problems[i].file,
				a.problems[i].message);
	}
	rc = EX_OK;
	for (s = 0; s < STATUS_COUNT; s++)
		if (fail_on[s] && a.counts[s])
			rc = 1;
	if (a.n_problems)
		rc = EX_DATAERR;
	free(text);
	audit_release(&a);
	return rc;
}
