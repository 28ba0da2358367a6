/*
 * deploy.h - the migrated INI files back to the agents, through the
 * scheduler (docs/fleet.md has the file formats).
 *
 *   deploy_plan()    central, from an applied migrate run (its state
 *                    database): per machine a packet (each file's new
 *                    bytes, the SHA-256 it had when collected, its Windows
 *                    path), the schedules MAILSHIFT_DEPLOY and
 *                    MAILSHIFT_DEPLOY_ROLLBACK (one job per machine) and
 *                    the run's command-line changes (and their reverse),
 *                    each an OpCon import file in the Deploy JSON shape,
 *                    under
 *                    OUT/deploy/run-N/;
 *   deploy_run()     on the agent: each file replaced atomically only when
 *                    its bytes are still the collected ones (else
 *                    "conflict", untouched), the original kept beside it
 *                    as FILE.mailshift-orig; rollback puts it back; a
 *                    receipt (hashes and sizes only) into
 *                    OUT/deploy/run-N/receipts/;
 *   deploy_status()  the receipts, per machine, for mailshift-migrate
 *                    status.
 *
 * A packet holds INI bytes, so possibly sealed secrets: it is written
 * 0600 and never printed.  Receipts and status hold no file content.
 *
 * Ownership: strings in the option structs are borrowed; result structs
 * own theirs (the matching *_release).
 */
#ifndef MS_DEPLOY_H
#define MS_DEPLOY_H

#include <stddef.h>
#include "base/err.h"

#define DEPLOY_SCHEDULE "MAILSHIFT_DEPLOY"
#define DEPLOY_ROLLBACK_SCHEDULE "MAILSHIFT_DEPLOY_ROLLBACK"
#define DEPLOY_JOBS_FILE "MAILSHIFT_JOB_CHANGES.json"
#define DEPLOY_JOBS_ROLLBACK_FILE "MAILSHIFT_JOB_CHANGES_ROLLBACK.json"
#define DEPLOY_DEFAULT_EXE "C:\\Program Files\\mailshift\\mailshift-migrate.exe"
#define DEPLOY_ORIG_SUFFIX ".mailshift-orig"
#define DEPLOY_MAX_PACKET ((size_t)256 * 1024 * 1024)

struct deploy_plan_opts {
	const char *fleet_dir;
	const char *state_path;   /* NULL: FLEET/.mailshift-migrate.db */
	const char *share;        /* the share as the agents name it */
	const char *out_dir;      /* the share as this machine sees it; NULL:
				   * the fleet folder */
	const char *exe;          /* NULL: DEPLOY_DEFAULT_EXE */
	int run;                  /* 0: the latest */
};

struct deploy_plan_result {
	int run;
	size_t machines, files, jobs;
	char *dir;                /* OUT/deploy/run-N */
	char **problems;          /* files left out, and why */
	size_t n_problems;
};

int deploy_plan(const struct deploy_plan_opts *o, struct deploy_plan_result *r,
		struct ms_err *err);
void deploy_plan_result_release(struct deploy_plan_result *r);

enum deploy_state {
	DEPLOY_DEPLOYED = 0,      /* replaced (or already the new bytes) */
	DEPLOY_ROLLED_BACK,       /* the original put back (or already there) */
	DEPLOY_CONFLICT,          /* changed since collected: left alone */
	DEPLOY_MISSING,           /* not on this machine */
	DEPLOY_FAILED,            /* could not be read or written (why says) */
	DEPLOY_STATE_COUNT
};
const char *deploy_state_name(enum deploy_state s);

struct deploy_opts {
	const char *packet;
	const char *receipt;      /* NULL: PACKETS/../receipts/M[.rollback].json */
	const char *root;         /* NULL: this system's drives; else a folder
				   * whose entries are the drives (tests) */
	int rollback;
};

struct deploy_result {
	char *machine;
	char *receipt;
	size_t counts[DEPLOY_STATE_COUNT];
};

/* Fails only when the packet cannot be read or the receipt not written;
 * each file's outcome is in counts and the receipt. */
int deploy_run(const struct deploy_opts *o, struct deploy_result *r,
	       struct ms_err *err);
void deploy_result_release(struct deploy_result *r);

/* "MACHINE: deployed 2, conflict 1, ..." for every packet of run under
 * OUT/deploy/run-N (out_dir NULL: the fleet folder), appended to *text
 * (malloc'd; NULL when the run has no packets).  *unsettled counts the
 * machines with a conflict, a failure, or no receipt yet. */
int deploy_status(const char *fleet_dir, const char *out_dir, int run,
		  char **text, size_t *unsettled, struct ms_err *err);

#endif
