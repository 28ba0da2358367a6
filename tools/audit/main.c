/*
 * mailshift-audit: the pre-cutover report for a fleet of connector jobs.
 *
 * Exit: 0 nothing needs action; 1 some job has a --fail-on status
 * (default needs-migration, broken, and a migrated job with an error
 * finding); EX_USAGE, EX_NOINPUT (no fleet folder, or INI files but no
 * job read), EX_IOERR, EX_CANTCREAT (--out), EX_DATAERR (an export could
 * not be read to its end: the report is still written, its jobs read
 * before the error marked export-incomplete).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/platform.h"
#include "audit/analysis.h"
#include "audit/collect.h"
#include "base/fsutil.h"
#include "base/log.h"
#include "base/mem.h"
#include "audit/report.h"
#include "base/suggest.h"

static const char *prog = "mailshift-audit";

/* A progress line on a terminal for big fleets. */
static void progress(size_t files, size_t jobs, void *ctx)
{
	if (files % 16 == 0)
		fprintf(stderr, "\r%s: scanned %zu export files, %zu jobs", prog, files,
			jobs);
	*(int *)ctx = 1;
}

/* Stream the report into a temporary file next to path, then rename it
 * over path (the old report, if any, stays whole until then; the mode of
 * an existing file is kept).  The temporary files of an audit killed
 * while writing this report are removed first. */
static int write_report_atomic(const struct audit *a,
			       const struct report_opts *ro, const char *path,
			       struct ms_err *err)
{
	struct fs_atomic fa;

	fs_clean_dead_temps_of(path, NULL);
	if (fs_atomic_open(&fa, path, 0644, err) < 0)
		return -1;
	if (report_write(a, ro, fa.fp, err) < 0) {
		fs_atomic_abort(&fa);
		return -1;
	}
	return fs_atomic_commit(&fa, err);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s --fleet DIR [--format text|json|csv|html] [--out FILE]\n"
		"                       [--fail-on STATUS]... [--quiet]\n"
		"       %s collect-plan --fleet DIR --share UNC [--out DIR] [--exe PATH]\n"
		"                       [--notify MACHINE=PATH]\n"
		"       %s collect --manifest FILE --out SHARE [--machine NAME] [--root DIR]\n"
		"       %s help | --help | -V | --version\n"
		"  --fleet DIR      fleet folder: jobs/, machines/, notify/\n"
		"  --format F       report format (default text)\n"
		"  --out FILE       write the report to FILE (atomically) instead of stdout\n"
		"  --fail-on S      exit 1 when a job has status S (repeatable; default\n"
		"                   needs-migration and broken; 'none' never fails)\n"
		"  --quiet          with --out, print nothing on success\n"
		"statuses: needs-migration at-risk migrated unaffected broken\n"
		"\n"
		"exit: 0 nothing needs action, 1 a job has a --fail-on status,\n"
		"      64 bad command line, 65 an export could not be read,\n"
		"      66 no fleet folder, or INI files but no job read,\n"
		"      73 --out cannot be written,\n"
		"      74 the report cannot be written to stdout\n"
		"\n"
		"examples:\n"
		"  %s --fleet /srv/fleet\n"
		"  %s --fleet /srv/fleet --format html --out audit.html --fail-on none\n"
		"(collect-plan --help, collect --help: collecting the fleet through\n"
		"the scheduler, docs/fleet.md)\n",
		prog, prog, prog, prog, prog, prog);
}

/* "mailshift-audit: unknown option '--flet' (did you mean --fleet?)" */
static int usage_error(char **argv, const char *optstring,
		       const struct option *longopts)
{
	char msg[256];

	suggest_getopt_error(argv, optstring, longopts, msg, sizeof(msg));
	fprintf(stderr, "%s: %s\n(%s --help for every option)\n", prog, msg, prog);
	return EX_USAGE;
}

/* The one-line summary after a report written to a file. */
static void print_summary(const struct audit *a, const char *fleet,
			  const char *out)
{
	int s;

	if (audit_read_nothing(a))
		printf("no job was read from %s/jobs: this is not a pass\n", fleet);
	else if (audit_incomplete(a))
		printf("INCOMPLETE: %zu export%s could not be read to the end "
		       "(%zu job%s read before the error, marked)\n",
		       a->n_problems, a->n_problems == 1 ? "" : "s",
		       a->incomplete_jobs, a->incomplete_jobs == 1 ? "" : "s");
	printf("%zu connector jobs:", a->n_jobs);
	for (s = 0; s < STATUS_COUNT; s++)
		printf("%s %zu %s", s ? "," : "", a->counts[s],
		       analysis_status_name((enum job_status)s));
	printf("\nreport written to %s\n", out);
}

/* The exports that could not be read or were skipped, on stderr; the
 * exit code: 1 for a status asked for by --fail-on (by default
 * needs-migration, broken, and a migrated job with an error),
 * EX_DATAERR for a malformed export, EX_NOINPUT when no job was read
 * although INI files are collected. */
static int print_problems_exit(const struct audit *a, const char *fleet,
			       const int *fail_on, int fail_set)
{
	size_t i;
	int s, rc = EX_OK;

	for (i = 0; i < a->n_problems; i++) {
		if (a->problems[i].line)
			fprintf(stderr, "%s: %s/%s:%d: %s\n", prog, fleet, a->problems[i].file,
				a->problems[i].line, a->problems[i].message);
		else
			fprintf(stderr, "%s: %s/%s: %s\n", prog, fleet, a->problems[i].file,
				a->problems[i].message);
	}
	for (i = 0; i < a->n_ignored; i++)
		fprintf(stderr, "%s: %s/%s: %s\n", prog, fleet, a->ignored[i].file,
			a->ignored[i].message);
	for (s = 0; s < STATUS_COUNT; s++)
		if (fail_on[s] && a->counts[s])
			rc = 1;
	/* "migrated" never hides an error: such a job fails the default */
	if (!fail_set && a->migrated_errors)
		rc = 1;
	if (a->n_problems)
		rc = EX_DATAERR;
	if (audit_read_nothing(a) && a->n_inis) {
		fprintf(stderr, "%s: no job was read from %s/jobs although %zu INI file%s "
			"%s collected: export the connector jobs' schedules there (*.json, "
			"*.xml)\n", prog, fleet, a->n_inis, a->n_inis == 1 ? "" : "s",
			a->n_inis == 1 ? "is" : "are");
		if (rc == EX_OK || rc == 1)
			rc = EX_NOINPUT;
	}
	return rc;
}

static const char collect_plan_help[] =
	"usage: mailshift-audit collect-plan --fleet DIR --share UNC [--out DIR]\n"
	"                                    [--exe PATH] [--notify MACHINE=PATH]\n"
	"Reads DIR/jobs and writes OUT/collect/manifests/MACHINE.json (the files each\n"
	"machine's connector jobs need) and OUT/collect/MAILSHIFT_COLLECT.json, an\n"
	"OpCon import file with one job per machine that runs collect.\n"
	"  --share UNC      the share as the agents name it (the jobs' --out)\n"
	"  --out DIR        the same share as this machine sees it (default DIR)\n"
	"  --exe PATH       mailshift-audit.exe on the agents\n"
	"                   (default " COLLECT_DEFAULT_EXE ")\n"
	"  --notify M=PATH  machine M also sends the notification export PATH\n"
	"exit: 0 written, 64 bad command line, 65 an export could not be read or\n"
	"      a job names no usable machine (the plan is written without those\n"
	"      jobs), 66 no fleet folder\n"
	"examples:\n"
	"  mailshift-audit collect-plan --fleet /srv/fleet --share '\\\\files01\\fleet'\n"
	"  mailshift-audit collect-plan --fleet . --share 'F:\\fleet' --out /mnt/fleet\n";

static const char collect_help[] =
	"usage: mailshift-audit collect --manifest FILE --out SHARE [--machine NAME]\n"
	"                               [--root DIR]\n"
	"Runs on the agent: copies the files of its manifest into\n"
	"SHARE/machines/MACHINE/DRIVE/PATH (the machine's folder replaced whole) and\n"
	"writes SHARE/collect/receipts/MACHINE.json (sizes and SHA-256 only).\n"
	"  --machine NAME   the folder name (default %COMPUTERNAME%, else the host name)\n"
	"  --root DIR       the drives as folders DIR/C, DIR/D (tests, disk images)\n"
	"exit: 0 all copied, 1 some file missing, ambiguous, unreadable or\n"
	"      unresolved (see the receipt), 64 bad command line, 65 not a\n"
	"      manifest, 74 the share cannot be written\n"
	"examples:\n"
	"  mailshift-audit collect --manifest \\\\files01\\fleet\\collect\\manifests\\OPS01.json --out \\\\files01\\fleet\n"
	"  mailshift-audit collect --manifest m.json --out /tmp/share --machine OPS01 --root /mnt/ops01\n";

/* mailshift-audit collect-plan: manifests and the MAILSHIFT_COLLECT
 * schedule.  Exit 0, EX_DATAERR when an export could not be read (the
 * plan is still written, without its jobs), or the error's. */
static int cmd_collect_plan(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "fleet", required_argument, NULL, 'f' },
		{ "share", required_argument, NULL, 's' },
		{ "out", required_argument, NULL, 'o' },
		{ "exe", required_argument, NULL, 'e' },
		{ "notify", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct collect_plan_opts o = { 0 };
	struct collect_plan_result r;
	struct ms_err err = MS_ERR_INIT;
	size_t i;
	int c;

	while ((c = getopt_long(argc, argv, "f:s:o:e:n:h", lo, NULL)) != -1) {
		switch (c) {
		case 'f': o.fleet_dir = optarg; break;
		case 's': o.share = optarg; break;
		case 'o': o.out_dir = optarg; break;
		case 'e': o.exe = optarg; break;
		case 'n': o.notify = optarg; break;
		case 'h': fputs(collect_plan_help, stdout); return EX_OK;
		default: return usage_error(argv, "f:s:o:e:n:h", lo);
		}
	}
	if (optind < argc || !o.fleet_dir || !o.share) {
		fprintf(stderr, "%s: collect-plan needs --fleet DIR and --share UNC\n", prog);
		return EX_USAGE;
	}
	if (collect_plan(&o, &r, &err) < 0) {
		fprintf(stderr, "%s: %s\n", prog, err.msg);
		return err.code == MS_ERR_IO ? EX_NOINPUT : err_sysexit(&err);
	}
	for (i = 0; i < r.n_problems; i++)
		fprintf(stderr, "%s: %s/%s\n", prog, o.fleet_dir, r.problems[i]);
	printf("%zu machine%s, %zu file%s to collect (%zu unresolved), from %zu "
	       "connector job%s\nmanifests: %s\nimport file: %s (schedule %s)\n",
	       r.machines, r.machines == 1 ? "" : "s", r.files, r.files == 1 ? "" : "s",
	       r.unresolved, r.jobs, r.jobs == 1 ? "" : "s", r.manifest_dir,
	       r.import_file, COLLECT_SCHEDULE);
	c = r.n_problems ? EX_DATAERR : EX_OK;
	collect_plan_result_release(&r);
	return c;
}

/* mailshift-audit collect, on the agent.  Exit 0 everything copied, 1
 * some file missing, ambiguous, unreadable or unresolved (the receipt
 * says which), else the error's (nothing changed in the share). */
static int cmd_collect(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "manifest", required_argument, NULL, 'm' },
		{ "out", required_argument, NULL, 'o' },
		{ "machine", required_argument, NULL, 'M' },
		{ "root", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct collect_opts o = { 0 };
	struct collect_result r;
	struct ms_err err = MS_ERR_INIT;
	int c, s, rc = EX_OK;

	while ((c = getopt_long(argc, argv, "m:o:M:r:h", lo, NULL)) != -1) {
		switch (c) {
		case 'm': o.manifest = optarg; break;
		case 'o': o.share = optarg; break;
		case 'M': o.machine = optarg; break;
		case 'r': o.root = optarg; break;
		case 'h': fputs(collect_help, stdout); return EX_OK;
		default: return usage_error(argv, "m:o:M:r:h", lo);
		}
	}
	if (optind < argc || !o.manifest || !o.share) {
		fprintf(stderr, "%s: collect needs --manifest FILE and --out SHARE\n", prog);
		return EX_USAGE;
	}
	if (collect_run(&o, &r, &err) < 0) {
		fprintf(stderr, "%s: %s\n", prog, err.msg);
		return err.code == MS_ERR_DATA ? EX_DATAERR :
		       err.code == MS_ERR_IO ? EX_IOERR : err_sysexit(&err);
	}
	printf("%s:", r.machine);
	for (s = 0; s < COLLECT_STATUS_COUNT; s++) {
		printf("%s %zu %s", s ? "," : "", r.counts[s],
		       collect_status_name((enum collect_status)s));
		if (s != COLLECT_COPIED && r.counts[s])
			rc = 1;
	}
	printf("\nreceipt: %s\n", r.receipt);
	if (r.machine_differs)
		fprintf(stderr, "%s: warning: the manifest was made for another machine "
			"than %s\n", prog, r.machine);
	collect_result_release(&r);
	return rc;
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
	struct report_opts ro = { REPORT_TEXT, NULL, MS_VERSION, 0 };
	struct audit a;
	const char *fleet = NULL, *out = NULL;
	int fail_on[STATUS_COUNT] = { 0 }, fail_set = 0, quiet = 0, shown = 0;
	int c, rc, s;
	struct stat st;

	platform_no_core_dumps();   /* a core would hold secrets in clear */
	log_set_sink(log_stderr_sink, (void *)prog, LOG_LVL_WARN);
	if (argc == 2 && strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return EX_OK;
	}
	opterr = 0;   /* our own message, with the program's name */
	if (argc >= 2 && strcmp(argv[1], "collect-plan") == 0)
		return cmd_collect_plan(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "collect") == 0)
		return cmd_collect(argc - 1, argv + 1);
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
		default: return usage_error(argv, "f:F:o:x:qhV", longopts);
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
	/* verdicts on disk, report streamed: flat memory (the HTML report,
	 * with its charts, needs them in memory) */
	ao.spill = ro.format != REPORT_HTML;
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
	if (out) {
		if (write_report_atomic(&a, &ro, out, &err) < 0) {
			fprintf(stderr, "%s: %s\n", prog, err.msg);
			audit_release(&a);
			return err.code == MS_ERR_NOMEM ? err_sysexit(&err) : EX_CANTCREAT;
		}
		if (!quiet)
			print_summary(&a, fleet, out);
	} else if (report_write(&a, &ro, stdout, &err) < 0 || fflush(stdout) != 0) {
		if (err.code != MS_OK)
			fprintf(stderr, "%s: %s\n", prog, err.msg);
		else
			fprintf(stderr, "%s: cannot write the report: %s\n", prog,
				strerror(errno));
		audit_release(&a);
		return err.code == MS_ERR_NOMEM ? err_sysexit(&err) : EX_IOERR;
	}
	rc = print_problems_exit(&a, fleet, fail_on, fail_set);
	audit_release(&a);
	return rc;
}
