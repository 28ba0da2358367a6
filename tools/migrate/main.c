/*
 * mailshift-migrate: plan, apply, status and rollback of a fleet's move to
 * OAuth 2.0 (runtime/migrate.h does the work; docs/migrate.md).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "platform.h"
#include "migrate.h"

static const char usage[] =
	"usage: mailshift-migrate plan|apply|status|rollback --fleet DIR [options]\n"
	"  --map FILE        mapping file (plan, apply)\n"
	"  --state DB        state database (default DIR/" MIGRATE_DEFAULT_DB ")\n"
	"  --only SPEC       machine=M,schedule=S,job=J (apply, status, rollback)\n"
	"  --run N           the run to show or roll back (default: the latest)\n"
	"  --force           rollback: restore files changed after the migration\n"
	"  --out DIR         where apply writes changes.json and changes.csv\n";

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
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

/* Options before and after the command word; returns -1 to go on, else
 * an exit code. */
static int parse_opts(int argc, char **argv, const char *optstring,
		      struct migrate_opts *o)
{
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, optstring, lo, NULL)) != -1) {
		switch (c) {
		case 'f': o->fleet_dir = optarg; break;
		case 'm': o->map_path = optarg; break;
		case 's': o->state_path = optarg; break;
		case 'O': o->out_dir = optarg; break;
		case 'F': o->force = 1; break;
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
		case 'h': fputs(usage, stdout); return 0;
		case 'V': printf("mailshift-migrate %s\n", MS_VERSION); return 0;
		default: fputs(usage, stderr); return EX_USAGE;
		}
	}
	return -1;
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
	if ((rc = parse_opts(argc, argv, "+h", &o)) >= 0)
		return rc;
	if (optind >= argc) {
		fputs(usage, stderr);
		return EX_USAGE;
	}
	cmd = argv[optind++];
	if ((rc = parse_opts(argc, argv, "h", &o)) >= 0)
		return rc;
	if (optind < argc) {
		fprintf(stderr, "mailshift-migrate: unexpected argument '%s'\n", argv[optind]);
		return EX_USAGE;
	}
	if ((env = getenv("MAILSHIFT_MIGRATE_CRASH_AFTER")) && *env)
		hooks.crash_after = strtoul(env, NULL, 10);
	if ((env = getenv("MAILSHIFT_MIGRATE_PAUSE")) && *env)
		hooks.pause = (unsigned)strtoul(env, NULL, 10);
	if (hooks.crash_after || hooks.pause) {
		o.after_write = write_hook;
		o.hook_ctx = &hooks;
	}
	o.out = out;
	o.out_ctx = stdout;
	if (strcmp(cmd, "plan") == 0)
		rc = migrate_plan(&o, &res, &err);
	else if (strcmp(cmd, "apply") == 0)
		rc = migrate_apply(&o, &res, &err);
	else if (strcmp(cmd, "status") == 0)
		rc = migrate_status(&o, &res, &err);
	else if (strcmp(cmd, "rollback") == 0)
		rc = migrate_rollback(&o, &res, &err);
	else {
		fprintf(stderr, "mailshift-migrate: unknown command '%s'\n%s", cmd, usage);
		return EX_USAGE;
	}
	fflush(stdout);
	if (rc < 0) {
		fprintf(stderr, "mailshift-migrate: %s\n", err.msg);
		return err_sysexit(&err);
	}
	return migrate_result_exit(&res);
}
