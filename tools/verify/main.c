/*
 * mailshift-verify: the live post-migration smoke test (see docs/verify.md).
 *
 * Exit: 0 every mailbox passed; 1 some mailbox failed; EX_USAGE (64),
 * EX_NOINPUT (66: no INI, fleet or state database), EX_CANTCREAT (73:
 * --out), EX_IOERR (74: results database), EX_CONFIG (78: --sender-ini).
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/platform.h"
#include "base/fsutil.h"
#include "base/log.h"
#include "base/paths.h"
#include "base/suggest.h"
#include "verify/verify.h"

static const char *prog = "mailshift-verify";

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s (--ini FILE... | --fleet DIR | --state DB [--run N]) [options]\n"
		"       %s history [--db PATH | --state DB | --fleet DIR]\n"
		"       %s help [history] | --help | -V | --version\n"
		"  --send              send a probe and prove the connector sees it\n"
		"  --subject S         probe subject \"S [MSV-id]\"; a rule must match it\n"
		"  --sender-ini FILE   send every probe with this INI's [Notify]/[Mail]\n"
		"  --smtp HOST[:PORT]  SMTP submission for IMAP/POP mailboxes\n"
		"  --smtp-tls T        starttls (default) or implicit\n"
		"  --from ADDR         From address of the probe\n"
		"  --concurrency N     mailboxes at a time (default 4)\n"
		"  --timeout S         wait S seconds for the probe (default 120)\n"
		"  --poll-ms MS        between polls (default 2000)\n"
		"  --cert-min-days N   fail when a certificate expires within N days\n"
		"  --format F          text, json, junit or html (default text)\n"
		"  --out FILE          write the report there (atomically)\n"
		"  --junit FILE        also write JUnit XML there\n"
		"  --db PATH           results database (default verify.db next to the\n"
		"                      state database, in the fleet, or in mailshift's\n"
		"                      state directory)\n"
		"  --no-db             do not record the results\n"
		"  --quiet, --verbose\n"
		"\n"
		"exit: 0 every mailbox passed, 1 some mailbox failed, 64 bad command\n"
		"      line, 66 no INI file, fleet or state database, 73 --out cannot\n"
		"      be written, 74 the results database cannot be written,\n"
		"      78 --sender-ini cannot be used\n"
		"\n"
		"examples:\n"
		"  %s --state /srv/fleet/.mailshift-migrate.db --send --format html --out verify.html\n"
		"  %s --ini /etc/opcon/Mail.ini --send --smtp 127.0.0.1:587\n",
		prog, prog, prog, prog, prog);
}

static void usage_history(FILE *f)
{
	fprintf(f,
		"usage: %s history [--db PATH | --state DB | --fleet DIR]\n"
		"Prints per INI file the last result, when it was last checked, last\n"
		"proven with a probe, and last passed (from the results database).\n"
		"\n"
		"exit: 0 printed, 64 bad command line, 66 no results database\n"
		"\n"
		"examples:\n"
		"  %s history --fleet /srv/fleet\n"
		"  %s history --db /var/lib/mailshift/verify.db\n", prog, prog, prog);
}

static void progress(void *ctx, size_t done, size_t total,
		     const struct verify_result *r)
{
	size_t *failed = ctx;

	*failed += !r->passed;
	fprintf(stderr, "\r\033[K%s: %zu/%zu mailboxes, %zu failed", prog, done, total,
		*failed);
}

static int write_out(const char *path, const struct verify_run *r,
		     enum verify_format f)
{
	struct ms_err err = MS_ERR_INIT;
	char *text = NULL;
	size_t len = 0;
	int rc = 0;

	if (verify_render(r, f, &text, &len, &err)) {
		fprintf(stderr, "%s: %s\n", prog, err.msg);
		return EX_SOFTWARE;
	}
	if (path) {
		if (fs_write_atomic(path, text, len, 0644, &err)) {
			fprintf(stderr, "%s: %s\n", prog, err.msg);
			rc = EX_CANTCREAT;
		}
	} else if (fwrite(text, 1, len, stdout) != len || fflush(stdout)) {
		fprintf(stderr, "%s: cannot write the report: %s\n", prog, strerror(errno));
		rc = EX_IOERR;
	}
	free(text);
	return rc;
}

/* verify.db beside the state database, in the fleet, or (for --ini) in
 * mailshift's state directory: never in whatever folder this runs from. */
static char *default_db(const char *state, const char *fleet)
{
	struct ms_err err = MS_ERR_INIT;
	char *copy, *p;

	if (state) {
		if (!(copy = strdup(state)))
			return NULL;
		p = fs_join(dirname(copy), VERIFY_DB_NAME);
		free(copy);
		return p;
	}
	if (fleet)
		return fs_join(fleet, VERIFY_DB_NAME);
	if (paths_state_dir(&copy, &err) < 0) {
		fprintf(stderr, "%s: %s\n", prog, err.msg);
		return NULL;
	}
	/* the state directory is made on first use, private */
	if (fs_mkdirs(copy, 0700, &err) < 0) {
		fprintf(stderr, "%s: %s\n", prog, err.msg);
		free(copy);
		return NULL;
	}
	p = fs_join(copy, VERIFY_DB_NAME);
	free(copy);
	return p;
}

/* What the command line asked for. */
struct cli {
	struct verify_opts o;
	struct verify_target *t;
	size_t n;
	enum verify_format fmt;
	const char *fleet, *state, *out, *junit, *db;
	int run, run_used, no_db, quiet, history;
};

/* The options into c.  Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, struct cli *c)
{
	static const struct option longopts[] = {
		{ "ini", required_argument, NULL, 'i' },
		{ "fleet", required_argument, NULL, 'f' },
		{ "state", required_argument, NULL, 's' },
		{ "run", required_argument, NULL, 'r' },
		{ "send", no_argument, NULL, 'S' },
		{ "subject", required_argument, NULL, 'j' },
		{ "sender-ini", required_argument, NULL, 'I' },
		{ "smtp", required_argument, NULL, 'm' },
		{ "smtp-tls", required_argument, NULL, 'T' },
		{ "from", required_argument, NULL, 'a' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "poll-ms", required_argument, NULL, 'p' },
		{ "cert-min-days", required_argument, NULL, 'd' },
		{ "format", required_argument, NULL, 'F' },
		{ "out", required_argument, NULL, 'o' },
		{ "junit", required_argument, NULL, 'J' },
		{ "db", required_argument, NULL, 'D' },
		{ "no-db", no_argument, NULL, 'N' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	static const char optstring[] = "i:f:s:r:Sj:I:m:T:a:c:t:p:d:F:o:J:D:NqvhV";
	struct verify_opts *o = &c->o;
	struct ms_err err = MS_ERR_INIT;
	char *colon, *end, msg[256];
	int opt;

	opterr = 0;   /* our own message, with the program's name */
	while ((opt = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
		switch (opt) {
		case 'i':
			if (verify_targets_add(&c->t, &c->n, optarg, NULL, &err)) {
				fprintf(stderr, "%s: %s\n", prog, err.msg);
				return EX_SOFTWARE;
			}
			break;
		case 'f': c->fleet = optarg; break;
		case 's': c->state = optarg; break;
		case 'r': c->run = atoi(optarg); c->run_used = 1; break;
		case 'S': o->send = 1; break;
		case 'j': o->subject = optarg; break;
		case 'I': o->sender.ini = optarg; break;
		case 'm':
			o->sender.smtp_host = optarg;
			if ((colon = strrchr(optarg, ':'))) {
				*colon = 0;
				o->sender.smtp_port = (int)strtol(colon + 1, &end, 10);
				if (*end || o->sender.smtp_port < 1 || o->sender.smtp_port > 65535) {
					fprintf(stderr, "%s: bad port in --smtp\n", prog);
					return EX_USAGE;
				}
			}
			break;
		case 'T':
			if (strcmp(optarg, "implicit") && strcmp(optarg, "starttls")) {
				fprintf(stderr, "%s: --smtp-tls is starttls or implicit\n", prog);
				return EX_USAGE;
			}
			o->sender.smtp_implicit_tls = strcmp(optarg, "implicit") == 0;
			break;
		case 'a': o->sender.from = optarg; break;
		case 'c': o->concurrency = atoi(optarg); break;
		case 't': o->timeout_s = atol(optarg); break;
		case 'p': o->poll_ms = atol(optarg); break;
		case 'd': o->cert_min_days = atoi(optarg); break;
		case 'F':
			if (verify_format_parse(optarg, &c->fmt)) {
				fprintf(stderr, "%s: unknown format '%s'\n", prog, optarg);
				return EX_USAGE;
			}
			break;
		case 'o': c->out = optarg; break;
		case 'J': c->junit = optarg; break;
		case 'D': c->db = optarg; break;
		case 'N': c->no_db = 1; break;
		case 'q': c->quiet = 1; break;
		case 'v': o->verbose = 1; log_set_sink(log_stderr_sink, (void *)prog,
						       LOG_LVL_TRACE); break;
		case 'h':
			if (c->history)
				usage_history(stdout);
			else
				usage(stdout);
			return EX_OK;
		case 'V': printf("%s %s\n", prog, MS_VERSION); return EX_OK;
		default:
			suggest_getopt_error(argv, optstring, longopts, msg, sizeof(msg));
			fprintf(stderr, "%s: %s\n(%s%s --help for every option)\n", prog,
				msg, prog, c->history ? " history" : "");
			return EX_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
		return EX_USAGE;
	}
	return -1;
}

static int history_main(const struct cli *c)
{
	struct ms_err err = MS_ERR_INIT;
	char *text = NULL, *dbp;
	int rc;

	if (!(dbp = c->db ? strdup(c->db) : default_db(c->state, c->fleet)))
		return EX_SOFTWARE;
	rc = verify_history(dbp, &text, &err);
	if (rc)
		fprintf(stderr, "%s: %s\n", prog, err.msg);
	else
		fputs(text, stdout);
	free(text);
	free(dbp);
	return rc ? EX_NOINPUT : EX_OK;
}

/* The options make sense and the mailboxes to verify are known (c->t).
 * Returns -1 to go on, else the exit code. */
static int gather_targets(struct cli *c)
{
	struct ms_err err = MS_ERR_INIT;
	const struct verify_opts *o = &c->o;
	int one = !!c->fleet + !!c->state + !!c->n, rc = 0;
	struct stat st;

	if (one != 1 || (c->run_used && !c->state) || o->concurrency < 1 ||
	    o->timeout_s < 1 || (o->subject && !o->send)) {
		fprintf(stderr, "%s: %s\n", prog, one != 1 ?
			"give exactly one of --ini, --fleet, --state" :
			c->run_used && !c->state ? "--run needs --state" :
			o->subject && !o->send ? "--subject needs --send" :
			"--concurrency and --timeout must be positive");
		fprintf(stderr, "(%s --help for every option)\n", prog);
		return EX_USAGE;
	}
	/* what was named must be there: 66, and says so */
	for (size_t k = 0; k < c->n; k++)
		if (access(c->t[k].ini, F_OK) != 0) {
			fprintf(stderr, "%s: INI file '%s' not found\n", prog, c->t[k].ini);
			return EX_NOINPUT;
		}
	if (c->fleet && (stat(c->fleet, &st) != 0 || !S_ISDIR(st.st_mode))) {
		fprintf(stderr, "%s: fleet folder '%s' not found\n", prog, c->fleet);
		return EX_NOINPUT;
	}
	if (c->fleet)
		rc = verify_targets_from_fleet(c->fleet, &c->t, &c->n, &err);
	else if (c->state)
		rc = verify_targets_from_state(c->state, c->run, &c->t, &c->n, &c->run, &err);
	if (rc || c->n == 0) {
		fprintf(stderr, "%s: %s\n", prog, rc ? err.msg : "no INI files to verify");
		return rc && err.code == MS_ERR_USAGE ? EX_USAGE : EX_NOINPUT;
	}
	return -1;
}

/* Runs the checks and writes the reports; the exit code. */
static int verify_main(struct cli *c)
{
	struct ms_err err = MS_ERR_INIT;
	struct verify_opts *o = &c->o;
	struct verify_run r = { 0 };
	char *dbp = NULL, *src = NULL;
	size_t failed = 0;
	int rc;

	if (c->fleet)
		rc = asprintf(&src, "--fleet %s", c->fleet);
	else if (c->state)
		rc = asprintf(&src, "--state %s --run %d", c->state, c->run);
	else
		rc = asprintf(&src, "--ini (%zu file%s)", c->n, c->n == 1 ? "" : "s");
	if (rc < 0 || (!c->no_db &&
		       !(dbp = c->db ? strdup(c->db) : default_db(c->state, c->fleet)))) {
		free(src);
		return EX_SOFTWARE;
	}
	o->targets = c->t;
	o->n_targets = c->n;
	o->source = src;
	o->db_path = dbp;
	if (isatty(STDERR_FILENO) && !c->quiet) {
		o->progress = progress;
		o->progress_ctx = &failed;
	}
	rc = verify_run(o, &r, &err);
	if (o->progress)
		fprintf(stderr, "\r\033[K");
	if (rc)
		fprintf(stderr, "%s: %s\n", prog, err.msg);
	if (rc && r.finished == 0) {
		rc = err.code == MS_ERR_CONFIG || err.code == MS_ERR_IO ? EX_CONFIG :
			err_sysexit(&err);
	} else {
		int wrc = EX_OK;
		if (rc)
			wrc = EX_IOERR;   /* ran, but the results were not stored */
		/* the report to --out (the text summary still on stdout) or
		 * to stdout */
		if ((c->out || !c->quiet) && (rc = write_out(c->out, &r, c->fmt)))
			wrc = rc;
		if (c->junit && (rc = write_out(c->junit, &r, VFMT_JUNIT)))
			wrc = rc;
		if (c->out && !c->quiet && (rc = write_out(NULL, &r, VFMT_TEXT)))
			wrc = rc;
		rc = wrc ? wrc : verify_exit_code(&r);
	}
	verify_run_release(&r);
	free(dbp);
	free(src);
	return rc;
}

int main(int argc, char **argv)
{
	struct cli c = { .fmt = VFMT_TEXT };
	int rc;

	platform_no_core_dumps();   /* a core would hold secrets in clear */
	log_set_sink(log_stderr_sink, (void *)prog, LOG_LVL_WARN);
	if (argc > 1 && strcmp(argv[1], "help") == 0) {
		if (argc > 2 && strcmp(argv[2], "history") == 0)
			usage_history(stdout);
		else if (argc > 2) {
			fprintf(stderr, "%s: no command '%s' (history)\n", prog, argv[2]);
			return EX_USAGE;
		} else
			usage(stdout);
		return EX_OK;
	}
	if (argc > 1 && strcmp(argv[1], "history") == 0) {
		c.history = 1;
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	c.o.concurrency = 4;
	c.o.timeout_s = 120;
	if ((rc = parse_args(argc, argv, &c)) < 0) {
		if (c.history)
			rc = history_main(&c);
		else if ((rc = gather_targets(&c)) < 0)
			rc = verify_main(&c);
	}
	verify_targets_free(c.t, c.n);
	return rc;
}
