/*
 * mailshift-migrate: plan, apply, status and rollback of a fleet's move to
 * OAuth 2.0 (runtime/migrate/migrate.h does the work; docs/migrate.md).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/platform.h"
#include "migrate/deploy.h"
#include "migrate/migrate.h"
#include "base/suggest.h"

static const char usage[] =
	"usage: mailshift-migrate plan|apply|status|rollback --fleet DIR [options]\n"
	"       mailshift-migrate deploy-plan --fleet DIR --share UNC [options]\n"
	"       mailshift-migrate deploy --packet FILE [--rollback]\n"
	"       mailshift-migrate help [COMMAND] | COMMAND --help | -V | --version\n"
	"  plan       decide every change and print it (writes only the state database)\n"
	"  apply      carry out the open plan (resumes an interrupted apply)\n"
	"  status     every item of a run and its state\n"
	"  rollback   restore the original bytes of every file a run wrote\n"
	"  deploy-plan  per machine a packet of a run's applied INI files, and the\n"
	"             OpCon import files MAILSHIFT_DEPLOY(_ROLLBACK) and job changes\n"
	"  deploy     on the agent: put a packet's files in place (--rollback: back)\n"
	"options:\n"
	"  --fleet DIR       the fleet folder (jobs/, machines/)\n"
	"  --map FILE        mapping file (plan, apply)\n"
	"  --state DB        state database (default DIR/" MIGRATE_DEFAULT_DB ")\n"
	"  --only SPEC       machine=M,schedule=S,job=J (apply, status, rollback)\n"
	"  --run N           the run to show or roll back (default: the latest)\n"
	"  --force           rollback: restore files changed after the migration\n"
	"  --out DIR         where apply writes changes.json and changes.csv\n"
	"  --format F        text (default) or json (plan, status)\n"
	"  --share UNC       deploy-plan: the share as the agents name it; --out DIR\n"
	"                    is where this machine writes it (default: the fleet)\n"
	"  --exe PATH        deploy-plan: mailshift-migrate.exe on the agents\n"
	"  --packet FILE     deploy: the machine's packet\n"
	"  --rollback        deploy: restore the originals (FILE.mailshift-orig)\n"
	"  --receipt FILE    deploy: where the receipt goes (default: beside the\n"
	"                    packets, receipts/MACHINE.json)\n"
	"  --root DIR        deploy: drives as folders DIR/C, DIR/D (tests)\n";

static const char exits[] =
	"\n"
	"exit: 0 everything done, 1 something skipped, failed, in conflict or\n"
	"      needing manual action, 64 bad command line, 65 bad mapping file,\n"
	"      74 fleet or state database unreadable, 75 state database in use\n"
	"      (retry later), 78 machine key missing or not the run's\n";

/* Per command: its synopsis, what it does, two examples. */
static const struct command_help {
	const char *name;
	const char *text;
} command_help[] = {
	{ "plan",
	  "usage: mailshift-migrate plan --fleet DIR --map FILE [--state DB]\n"
	  "                              [--format text|json]\n"
	  "Decides every change and prints it: a diff per INI file and export, each\n"
	  "job's old and new command line, the jobs needing manual action, the files\n"
	  "skipped and why.  Writes nothing but the state database.\n"
	  "examples:\n"
	  "  mailshift-migrate plan --fleet /srv/fleet --map map.json\n"
	  "  mailshift-migrate plan --fleet /srv/fleet --map map.json --format json\n" },
	{ "apply",
	  "usage: mailshift-migrate apply --fleet DIR --map FILE [--state DB] [--only SPEC]\n"
	  "                               [--out DIR]\n"
	  "Carries out the open plan (plans first when there is none); killed, it\n"
	  "resumes where it stopped.  Writes changes.json/.csv for the scheduler into\n"
	  "--out (default DIR/migrate/run-N).\n"
	  "examples:\n"
	  "  mailshift-migrate apply --fleet /srv/fleet --map map.json\n"
	  "  mailshift-migrate apply --fleet /srv/fleet --map map.json --only machine=OPS01\n" },
	{ "status",
	  "usage: mailshift-migrate status --fleet DIR [--state DB] [--run N] [--only SPEC]\n"
	  "                                [--format text|json]\n"
	  "Lists every item of a run (default: the latest) with its state.\n"
	  "examples:\n"
	  "  mailshift-migrate status --fleet /srv/fleet\n"
	  "  mailshift-migrate status --fleet /srv/fleet --run 2 --only schedule=Billing\n" },
	{ "deploy-plan",
	  "usage: mailshift-migrate deploy-plan --fleet DIR --share UNC [--out DIR]\n"
	  "                                     [--state DB] [--run N] [--exe PATH]\n"
	  "Writes OUT/deploy/run-N/: packets/MACHINE.json (each applied INI file's new\n"
	  "bytes, the SHA-256 it had when collected, its Windows path), and the OpCon\n"
	  "import files MAILSHIFT_DEPLOY.json, MAILSHIFT_DEPLOY_ROLLBACK.json (one job\n"
	  "per machine), MAILSHIFT_JOB_CHANGES.json (the new command lines) and\n"
	  "MAILSHIFT_JOB_CHANGES_ROLLBACK.json (the old ones).\n"
	  "examples:\n"
	  "  mailshift-migrate deploy-plan --fleet /srv/fleet --share '\\\\files01\\fleet'\n"
	  "  mailshift-migrate deploy-plan --fleet . --share 'F:\\fleet' --run 2\n" },
	{ "deploy",
	  "usage: mailshift-migrate deploy --packet FILE [--rollback] [--receipt FILE]\n"
	  "Runs on the agent: replaces each file of the packet atomically when it\n"
	  "still has the collected bytes (else conflict: left alone), keeping\n"
	  "FILE.mailshift-orig; --rollback puts the originals back.  Writes a receipt\n"
	  "(hashes and sizes only) beside the packets.  Exit 0 all done, 1 some\n"
	  "file in conflict, missing or failed.\n"
	  "examples:\n"
	  "  mailshift-migrate deploy --packet \\\\files01\\fleet\\deploy\\run-1\\packets\\OPS01.json\n"
	  "  mailshift-migrate deploy --packet P.json --rollback\n" },
	{ "rollback",
	  "usage: mailshift-migrate rollback --fleet DIR [--state DB] [--run N] [--only SPEC]\n"
	  "                                  [--force]\n"
	  "Restores the original bytes of every file a run wrote, newest first; a file\n"
	  "changed since is a conflict and left alone unless --force.\n"
	  "examples:\n"
	  "  mailshift-migrate rollback --fleet /srv/fleet\n"
	  "  mailshift-migrate rollback --fleet /srv/fleet --run 3 --only machine=OPS01\n" },
};

static const struct command_help *find_command(const char *cmd)
{
	size_t i;

	for (i = 0; i < sizeof(command_help) / sizeof(command_help[0]); i++)
		if (strcmp(command_help[i].name, cmd) == 0)
			return &command_help[i];
	return NULL;
}

/* The help of one command, or the whole program's for NULL; -1 when
 * there is no such command. */
static int help(FILE *f, const char *cmd)
{
	const struct command_help *h;

	if (!cmd) {
		fputs(usage, f);
		fputs(exits, f);
		fputs("\nexamples:\n"
		      "  mailshift-migrate plan --fleet /srv/fleet --map map.json\n"
		      "  mailshift-migrate apply --fleet /srv/fleet --map map.json\n", f);
		return 0;
	}
	if (!(h = find_command(cmd)))
		return -1;
	fputs(h->text, f);
	fputs(exits, f);
	return 0;
}

static void out(const char *text, size_t len, void *ctx)
{
	fwrite(text, 1, len, ctx);
}

/* Test hooks: MAILSHIFT_MIGRATE_CRASH_AFTER=N dies like kill -9 after the
 * Nth file written; MAILSHIFT_MIGRATE_PAUSE=S sleeps S seconds after each
 * write (to hold the state database while another process tries it). */
struct hooks {
	size_t crash_after;
	unsigned pause;
};

static void write_hook(size_t n, void *ctx)
{
	const struct hooks *h = ctx;

	if (h->pause)
		sleep(h->pause);
	if (h->crash_after && n >= h->crash_after)
		_exit(99);
}

static int parse_only(struct migrate_opts *o, char *spec)
{
	char *tok, *save = NULL;

	for (tok = strtok_r(spec, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		if (!eq || !eq[1])
			return -1;
		*eq++ = '\0';
		if (strcmp(tok, "machine") == 0)
			o->only_machine = eq;
		else if (strcmp(tok, "schedule") == 0)
			o->only_schedule = eq;
		else if (strcmp(tok, "job") == 0)
			o->only_job = eq;
		else
			return -1;
	}
	return 0;
}

static const struct option lo[] = {
	{ "fleet", required_argument, NULL, 'f' },
	{ "map", required_argument, NULL, 'm' },
	{ "state", required_argument, NULL, 's' },
	{ "only", required_argument, NULL, 'o' },
	{ "run", required_argument, NULL, 'r' },
	{ "force", no_argument, NULL, 'F' },
	{ "out", required_argument, NULL, 'O' },
	{ "format", required_argument, NULL, 'J' },
	{ "share", required_argument, NULL, 'S' },
	{ "exe", required_argument, NULL, 'E' },
	{ "packet", required_argument, NULL, 'P' },
	{ "rollback", no_argument, NULL, 'R' },
	{ "receipt", required_argument, NULL, 'C' },
	{ "root", required_argument, NULL, 'T' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

/* The options of deploy-plan and deploy (struct migrate_opts has the
 * others). */
static struct deploy_plan_opts dpo;
static struct deploy_opts dro;

/* Options before and after the command word (cmd: NULL before it);
 * returns -1 to go on, else an exit code. */
static int parse_opts(int argc, char **argv, const char *optstring,
		      const char *cmd, struct migrate_opts *o)
{
	char msg[256], *end;
	int c;

	opterr = 0;   /* our own message, with the program's name */
	while ((c = getopt_long(argc, argv, optstring, lo, NULL)) != -1) {
		switch (c) {
		case 'f': o->fleet_dir = optarg; break;
		case 'm': o->map_path = optarg; break;
		case 's': o->state_path = optarg; break;
		case 'O': o->out_dir = optarg; break;
		case 'F': o->force = 1; break;
		case 'S': dpo.share = optarg; break;
		case 'E': dpo.exe = optarg; break;
		case 'P': dro.packet = optarg; break;
		case 'R': dro.rollback = 1; break;
		case 'C': dro.receipt = optarg; break;
		case 'T': dro.root = optarg; break;
		case 'J':
			if (strcmp(optarg, "json") && strcmp(optarg, "text")) {
				fprintf(stderr, "mailshift-migrate: unknown format '%s' (text or "
					"json)\n", optarg);
				return EX_USAGE;
			}
			o->json = strcmp(optarg, "json") == 0;
			break;
		case 'o':
			if (parse_only(o, optarg) < 0) {
				fprintf(stderr, "mailshift-migrate: bad --only '%s' (want "
					"machine=M,schedule=S,job=J)\n", optarg);
				return EX_USAGE;
			}
			break;
		case 'r':
			o->run = (int)strtol(optarg, &end, 10);
			if (*end || o->run <= 0) {
				fprintf(stderr, "mailshift-migrate: bad --run '%s'\n", optarg);
				return EX_USAGE;
			}
			break;
		case 'h': help(stdout, cmd); return 0;
		case 'V': printf("mailshift-migrate %s\n", MS_VERSION); return 0;
		default:
			suggest_getopt_error(argv, optstring, lo, msg, sizeof(msg));
			fprintf(stderr, "mailshift-migrate: %s\n(mailshift-migrate %s%s"
				"--help for every option)\n", msg, cmd ? cmd : "",
				cmd ? " " : "");
			return EX_USAGE;
		}
	}
	return -1;
}

/* deploy-plan and deploy: exit 0, 1 when something was left out or is
 * unsettled (conflict, missing, failed), else the error's. */
static int cmd_deploy(const char *cmd, const struct migrate_opts *o)
{
	struct ms_err err = MS_ERR_INIT;
	int s, rc = 0;

	if (strcmp(cmd, "deploy-plan") == 0) {
		struct deploy_plan_result r;
		size_t i;

		dpo.fleet_dir = o->fleet_dir;
		dpo.state_path = o->state_path;
		dpo.out_dir = o->out_dir;
		dpo.run = o->run;
		if (!dpo.fleet_dir || !dpo.share) {
			fprintf(stderr, "mailshift-migrate: deploy-plan needs --fleet DIR and "
				"--share UNC\n");
			return EX_USAGE;
		}
		if (deploy_plan(&dpo, &r, &err) < 0) {
			fprintf(stderr, "mailshift-migrate: %s\n", err.msg);
			return err_sysexit(&err);
		}
		for (i = 0; i < r.n_problems; i++)
			fprintf(stderr, "mailshift-migrate: %s\n", r.problems[i]);
		printf("run %d: %zu INI file%s for %zu machine%s, %zu job command line%s\n"
		       "packets: %s/packets\nimport files: %s/%s.json, %s/%s.json,\n"
		       "  %s/%s, %s/%s\n",
		       r.run, r.files, r.files == 1 ? "" : "s", r.machines,
		       r.machines == 1 ? "" : "s", r.jobs, r.jobs == 1 ? "" : "s", r.dir,
		       r.dir, DEPLOY_SCHEDULE, r.dir, DEPLOY_ROLLBACK_SCHEDULE, r.dir,
		       DEPLOY_JOBS_FILE, r.dir, DEPLOY_JOBS_ROLLBACK_FILE);
		rc = r.n_problems ? 1 : 0;
		deploy_plan_result_release(&r);
		return rc;
	}
	if (!dro.packet) {
		fprintf(stderr, "mailshift-migrate: deploy needs --packet FILE\n");
		return EX_USAGE;
	}
	{
		struct deploy_result r;

		if (deploy_run(&dro, &r, &err) < 0) {
			fprintf(stderr, "mailshift-migrate: %s\n", err.msg);
			return err.code == MS_ERR_DATA ? EX_DATAERR : err_sysexit(&err);
		}
		printf("%s:", r.machine);
		for (s = 0; s < DEPLOY_STATE_COUNT; s++) {
			printf("%s %zu %s", s ? "," : "", r.counts[s],
			       deploy_state_name((enum deploy_state)s));
			if (r.counts[s] && s != DEPLOY_DEPLOYED && s != DEPLOY_ROLLED_BACK)
				rc = 1;
		}
		printf("\nreceipt: %s\n", r.receipt);
		deploy_result_release(&r);
	}
	return rc;
}

/* status: the receipts of the run's deployment, per machine, after the
 * items (nothing when the run was never deploy-planned). */
static int print_deploy_status(const struct migrate_opts *o, int run,
			       struct migrate_result *res, struct ms_err *err)
{
	char *text = NULL;
	size_t unsettled = 0;

	if (deploy_status(o->fleet_dir, o->out_dir, run, &text, &unsettled, err) < 0)
		return -1;
	if (text)
		fputs(text, stdout);
	free(text);
	res->conflict += unsettled;   /* unsettled machines fail status */
	return 0;
}

int main(int argc, char **argv)
{
	struct ms_err err = MS_ERR_INIT;
	struct migrate_result res;
	struct migrate_opts o;
	struct hooks hooks = { 0, 0 };
	const char *cmd, *env;
	int rc;

	platform_no_core_dumps();   /* a core would hold secrets in clear */
	memset(&o, 0, sizeof(o));
	if ((rc = parse_opts(argc, argv, "+hV", NULL, &o)) >= 0)
		return rc;
	if (optind >= argc) {
		fputs(usage, stderr);
		return EX_USAGE;
	}
	cmd = argv[optind++];
	if (strcmp(cmd, "help") == 0) {
		if (help(stdout, optind < argc ? argv[optind] : NULL) < 0) {
			fprintf(stderr, "mailshift-migrate: no command '%s' (plan, apply, "
				"status, rollback)\n", argv[optind]);
			return EX_USAGE;
		}
		return 0;
	}
	if (!find_command(cmd)) {
		fprintf(stderr, "mailshift-migrate: unknown command '%s' (plan, apply, "
			"status, rollback)\n", cmd);
		return EX_USAGE;
	}
	if ((rc = parse_opts(argc, argv, "hV", cmd, &o)) >= 0)
		return rc;
	if (optind < argc) {
		fprintf(stderr, "mailshift-migrate: unexpected argument '%s'\n", argv[optind]);
		return EX_USAGE;
	}
	if ((env = getenv("MAILSHIFT_MIGRATE_CRASH_AFTER")) && *env)
		hooks.crash_after = strtoul(env, NULL, 10);
	if ((env = getenv("MAILSHIFT_MIGRATE_KEEP_MB")) && *env) {
		/* apply: how much of its plan it holds for the writes (README) */
		unsigned long mb = strtoul(env, NULL, 10);
		o.keep_bytes = mb ? (size_t)mb << 20 : 1;
	}
	/* test hook: smaller batches, so that small fleets have several */
	if ((env = getenv("MAILSHIFT_MIGRATE_BATCH")) && *env)
		o.batch = strtoul(env, NULL, 10);
	if ((env = getenv("MAILSHIFT_MIGRATE_PAUSE")) && *env)
		hooks.pause = (unsigned)strtoul(env, NULL, 10);
	if (hooks.crash_after || hooks.pause) {
		o.after_write = write_hook;
		o.hook_ctx = &hooks;
	}
	if (o.json && strcmp(cmd, "plan") && strcmp(cmd, "status")) {
		fprintf(stderr, "mailshift-migrate: --format json is for plan and status\n");
		return EX_USAGE;
	}
	o.out = out;
	o.out_ctx = stdout;
	if (strcmp(cmd, "deploy-plan") == 0 || strcmp(cmd, "deploy") == 0)
		return cmd_deploy(cmd, &o);
	if (strcmp(cmd, "plan") == 0)
		rc = migrate_plan(&o, &res, &err);
	else if (strcmp(cmd, "apply") == 0)
		rc = migrate_apply(&o, &res, &err);
	else if (strcmp(cmd, "status") == 0)
		rc = migrate_status(&o, &res, &err);
	else if (strcmp(cmd, "rollback") == 0)
		rc = migrate_rollback(&o, &res, &err);
	else
		return EX_USAGE;   /* find_command() knows no other */
	if (rc == 0 && strcmp(cmd, "status") == 0 && !o.json && res.run > 0)
		rc = print_deploy_status(&o, res.run, &res, &err);
	fflush(stdout);
	if ((env = getenv("MAILSHIFT_MIGRATE_TIMES")) && *env && strcmp(env, "0")) {
		/* where the time went (docs/bench.md, B4) */
		double total = 0;
		size_t k;

		fprintf(stderr, "mailshift-migrate: %s times:", cmd);
		for (k = 0; k < MIGRATE_PHASES; k++) {
			total += res.phase[k];
			fprintf(stderr, " %s %.3f", migrate_phase_name((enum migrate_phase)k),
				res.phase[k]);
		}
		fprintf(stderr, "; total %.3f s, %zu commits, %zu remade\n", total,
			res.commits, res.remade);
	}
	if (rc < 0) {
		fprintf(stderr, "mailshift-migrate: %s\n", err.msg);
		return err_sysexit(&err);
	}
	return migrate_result_exit(&res);
}
