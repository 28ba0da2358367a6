/*
 * analysis.h - the verdict on one connector job (status and findings),
 * shared by mailshift-audit, -migrate and -verify, and the fleet-wide
 * audit built from it (shared INI files, orphans, notification slots).
 *
 * Statuses (exactly one per job):
 *   needs-migration  a Microsoft-hosted mailbox reached with basic auth
 *   at-risk          the incumbent's delegated MSAL mode
 *   migrated         complete mailshift [OAuth] settings
 *   unaffected       not Microsoft-hosted
 *   broken           cannot run or cannot be evaluated
 *
 * Ownership: struct job_verdict, struct audit and everything in them are
 * owned by the struct and released with job_verdict_release() /
 * audit_release().  Finding codes are static strings; messages are
 * malloc'd and never contain a secret.  Inputs are borrowed.
 */
#ifndef MS_ANALYSIS_H
#define MS_ANALYSIS_H

#include <stddef.h>
#include <time.h>

#include "ini/cmdline.h"
#include "ini/config.h"
#include "base/err.h"
#include "audit/fleet.h"

enum job_status {
	STATUS_NEEDS_MIGRATION = 0,
	STATUS_AT_RISK,
	STATUS_MIGRATED,
	STATUS_UNAFFECTED,
	STATUS_BROKEN,
	STATUS_COUNT
};

enum finding_severity { SEV_ERROR = 0, SEV_WARNING, SEV_INFO };

enum auth_kind { AUTHK_UNKNOWN = 0, AUTHK_BASIC, AUTHK_MSAL_DELEGATED,
		 AUTHK_OAUTH2 };

struct finding {
	const char *code;               /* static, e.g. "basic-auth-microsoft" */
	enum finding_severity severity;
	char *message;                  /* owned */
};

struct job_verdict {
	/* the job */
	char *schedule, *job, *machine;
	char *source;                   /* export file, fleet-relative */
	int source_line;                /* 0 when unknown */
	char *command_line;             /* redacted; NULL when none */
	/* its INI file */
	char *ini;                      /* Windows path, NULL when unknown */
	char *ini_file;                 /* fleet-relative file when found */
	char *ini_local;                /* local path when found */
	/* effective settings after command-line overrides */
	enum mail_protocol protocol;
	char *server;                   /* NULL when unknown */
	int port;                       /* 0 when unknown */
	enum tls_level tls;
	const char *tls_mode;           /* static: what the connector will do,
					 * "implicit", "starttls" or "none"
					 * (mailbox_tls_choose()); NULL for
					 * Graph/MSAL or when unknown */
	int tls_verify;                 /* 1 = certificates are checked */
	enum auth_kind auth;
	int microsoft;                  /* Microsoft-hosted mailbox */
	enum job_status status;
	struct finding *findings;
	size_t n_findings;
};

struct rules_masks;
struct analysis_opts {
	const char *fleet_dir;          /* to resolve files on machines */
	time_t now;                     /* 0 = time(NULL) */
	int cert_warn_days;             /* 0 = 30 */
	/* audit_run(): keep the verdicts in a temporary SQLite database
	 * (a->spill) instead of a->jobs, so memory stays flat however big
	 * the fleet; read them with audit_jobs_each().  The database is a
	 * private file in SQLITE_TMPDIR/TMPDIR (about 1.3 KB a job), deleted
	 * by audit_release(). */
	int spill;
	/* audit_run(): how many INI files' parsed settings are kept at once
	 * for the jobs that use them (the oldest is read again if a later
	 * job uses it); 0 = 1024 */
	size_t ini_loaded_max;
	/* audit_run(): called after each export file (may be NULL) */
	void (*progress)(size_t files, size_t jobs, void *ctx);
	void *progress_ctx;
	/* analysis_job() (no INI cache): the compiled masks the INI files
	 * of its jobs share (rules_masks_new(), the caller's; one thread's
	 * at a time), so that a pattern many files hold is compiled once;
	 * NULL: each file's are compiled.  audit_run() has its cache's. */
	struct rules_masks *masks;
};

/* Evaluate one job of a fleet.  A job that cannot be evaluated is not an
 * error: it gets STATUS_BROKEN and findings.  Fails only when out of
 * memory.  A job that runs no connector gets status broken with a
 * "not-a-connector-job" finding; callers filter with
 * analysis_is_connector_job() first. */
int analysis_job(const struct analysis_opts *o, const struct fleet_job *job,
		 struct job_verdict *v, struct ms_err *err);
int analysis_is_connector_job(const struct fleet_job *job);

/* Evaluate settings already at hand (migrate/verify): cfg may be NULL
 * (INI unavailable: only the command line is judged), opts may be NULL
 * (no command line).  Adds findings and sets the effective settings and
 * the status of v; v's identity fields are left as they are.  machine is
 * used to find a CertificateFile in the fleet (may be NULL). */
int analysis_config(const struct analysis_opts *o, const struct config *cfg,
		    const struct connector_opts *opts, const char *machine,
		    struct job_verdict *v, struct ms_err *err);

/* The rule findings of one INI file ("rule-invalid"), kept with it in the
 * audit's INI cache so that its rules are compiled once, not once per job
 * that uses the file.  Zeroed: nothing kept yet.  Owns its messages.
 * masks (borrowed, may be NULL): the compiled masks the INI files of one
 * audit share (rules_compile_memo()); rules_memo_release() keeps it. */
struct rules_memo {
	int set, broken;
	struct finding *f;
	size_t n;
	struct rules_masks *masks;
};
void rules_memo_release(struct rules_memo *m);
/* analysis_config() with the rule findings taken from memo when it has
 * them, else worked out and kept there (memo may be NULL: not kept).
 * memo belongs to cfg: the same INI file, unchanged. */
int analysis_config_memo(const struct analysis_opts *o, const struct config *cfg,
			 struct rules_memo *memo,
			 const struct connector_opts *opts, const char *machine,
			 struct job_verdict *v, struct ms_err *err);

void job_verdict_release(struct job_verdict *v);

/* Add a finding (message printf-style).  Returns 0 or -1 (out of memory). */
int verdict_add(struct job_verdict *v, const char *code,
		enum finding_severity sev, struct ms_err *err,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Complete mailshift OAuth settings: AuthMethod=OAuth2 (or GRAPH) with a
 * tenant, a client id and a secret reference or a certificate. */
int analysis_oauth_complete(const struct config *cfg);

/* Does the job need someone to act before cutover?  needs-migration,
 * at-risk and broken do; so does a migrated job that still has an error
 * finding (a password in its command line) or a secret mailshift cannot
 * read (legacy-secret): "migrated" never hides an error. */
int analysis_needs_action(const struct job_verdict *v);

const char *analysis_status_name(enum job_status s);
/* Parse a status name; -1 when unknown. */
int analysis_status_parse(const char *s);
const char *analysis_severity_name(enum finding_severity s);
const char *analysis_auth_name(enum auth_kind a);
const char *analysis_tls_name(enum tls_level t);

/* Certificate file check: days until notAfter (negative when expired),
 * and its date as YYYY-MM-DD.  Fails (MS_ERR_DATA/IO) when the file holds
 * no readable certificate. */
int analysis_cert_expiry(const char *path, time_t now, long *days,
			 char *date, size_t datesz, struct ms_err *err);

/* The fleet-wide audit. */

struct audit_ini {
	char *machine;
	char *windows_path;
	char *file;                     /* fleet-relative */
	size_t n_jobs;                  /* connector jobs using it */
	struct finding *findings;       /* orphan-ini */
	size_t n_findings;
};

struct audit_notify {
	char *source;
	int slot;
	char *server;
	int port;
	char *user;
	const char *auth;               /* "basic", "oauth2", "none" */
	int microsoft;
	struct finding *findings;       /* notify-basic-smtp */
	size_t n_findings;
};

struct audit_problem {
	char *file;                     /* fleet-relative */
	int line;
	char *message;
};

struct audit_spill;                     /* opaque: verdicts on disk */

struct audit {
	struct job_verdict *jobs;       /* sorted by machine, schedule, job;
					 * NULL when spill is set */
	struct audit_spill *spill;      /* owned; NULL unless o->spill */
	size_t n_jobs;
	size_t other_jobs;              /* jobs that do not run the connector */
	size_t counts[STATUS_COUNT];
	size_t n_machines;              /* machines with connector jobs */
	struct audit_ini *inis;         /* every INI under machines/ */
	size_t n_inis;
	size_t n_orphans;
	struct audit_notify *notify;
	size_t n_notify;
	size_t n_notify_basic;
	struct audit_problem *problems; /* malformed exports */
	size_t n_problems;
	/* files under jobs/ not read because their names are not those of
	 * exports (*.json, *.xml); line 0, message says why */
	struct audit_problem *ignored;
	size_t n_ignored;
	size_t n_action;                /* jobs analysis_needs_action() */
	size_t migrated_errors;         /* of them: migrated, with an error */
	size_t incomplete_jobs;         /* read from an export that then
					 * failed: kept, marked
					 * export-incomplete */
};

/* Is the audit incomplete (an export could not be read to its end)?
 * Did it read no job at all (no export, or none it recognised)? */
int audit_incomplete(const struct audit *a);
int audit_read_nothing(const struct audit *a);

/* Scan the fleet, evaluate every connector job, then the cross-job
 * findings.  Fails when the fleet cannot be read (MS_ERR_IO) or out of
 * memory; malformed exports land in a->problems. */
int audit_run(const struct analysis_opts *o, struct audit *a,
	      struct ms_err *err);
void audit_release(struct audit *a);

/* Visit the connector jobs of an audit in report order (machine,
 * schedule, job), held in memory or spilled, with their cross-job
 * findings.  Only jobs whose status bit (1u << status) is in mask are
 * visited (AUDIT_ALL for all).  v is valid only during the callback,
 * which returns 0 to go on or -1 (with err filled) to stop.  Returns 0
 * or -1. */
#define AUDIT_ALL 0xffffffffu
int audit_jobs_each(const struct audit *a, unsigned mask,
		    int (*fn)(const struct job_verdict *v, void *ctx,
			      struct ms_err *err),
		    void *ctx, struct ms_err *err);

#endif
