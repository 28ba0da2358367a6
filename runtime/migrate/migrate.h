/*
 * migrate.h - mailshift-migrate: the transactional bulk conversion of a
 * fleet's connector INI files (and job command lines) to OAuth 2.0.
 *
 * A run is planned first: every INI file whose jobs are needs-migration
 * or at-risk (analysis.h) gets an item with its original bytes, the new
 * bytes and both SHA-256 hashes, stored in a SQLite state database before
 * anything on disk changes.  Job exports whose command lines must change
 * become items too.  apply carries the plan out item by item:
 *
 *   planned -> applying (new bytes committed) -> file written -> applied
 *
 * so after a crash or kill -9 at any point, apply again finishes the run
 * and never writes a file twice (a file that already has the new hash is
 * simply marked applied).  "File written" is its rename into place: an
 * apply that plans writes the new bytes ahead as temporary files beside
 * the files (nothing a reader of them sees) and renames each only in its
 * turn; a temporary file not renamed is removed, by this apply or (killed)
 * by the next apply or rollback of the run.  rollback restores the
 * original bytes; a file whose hash matches neither side was changed by
 * someone else: conflict, left alone unless forced.  The state database
 * is held with an exclusive lock for the whole command, so a second
 * migrate process gets "in use" (MS_ERR_BUSY).  plan and apply create the
 * database (0600); status and rollback report "no runs yet" / "nothing to
 * roll back" without one.
 *
 * Literal client secrets from the mapping file are sealed (seal.h) at
 * apply time; plans show "<sealed at apply>".  Secrets never reach plan
 * output, status output or the state database in clear; diffs show
 * "***" for the values of password and secret keys.  The original and
 * new file bytes are stored sealed with the machine key (seal_bytes(),
 * bound to run, item and column), their SHA-256 hashes in clear:
 * apply resuming and rollback need the key the run was sealed with
 * (MS_ERR_CONFIG naming the key file otherwise, before any change);
 * status needs none.
 *
 * Ownership: struct migrate_map is opaque, owned by the caller of
 * migrate_map_load()/migrate_map_parse() and released (secrets wiped) by
 * migrate_map_free().  Every buffer a migrate_* function hands back
 * through char ** is malloc'd and owned by the caller.  Strings in
 * struct migrate_opts and struct migrate_target are borrowed.  The engine
 * never prints: report text goes through the caller's migrate_out_fn.
 */
#ifndef MS_MIGRATE_H
#define MS_MIGRATE_H

#include <stddef.h>
#include <time.h>

#include "base/buf.h"
#include "base/err.h"

#define MIGRATE_DEFAULT_DB ".mailshift-migrate.db"
#define MIGRATE_SEALED_PLACEHOLDER "<sealed at apply>"
#define MIGRATE_MAP_MAX ((size_t)4 * 1024 * 1024)

enum migrate_transport { MT_KEEP = 0, MT_IMAP, MT_POP, MT_GRAPH };
/* The "notify" of the mapping: add a [Notify] section to INI files whose
 * NotifyOnAccepts/NotifyOnRejects have nowhere to send from. */
enum migrate_notify { MN_UNSET = 0, MN_NONE, MN_GRAPH, MN_SMTP };

/* The mapping file (see docs/migrate.md). */
struct migrate_map;

struct migrate_tenant_view {         /* borrowed from the map */
	const char *tenant_id;
	const char *client_id;
	const char *client_secret;   /* reference or literal; NULL with a cert */
	const char *certificate_file;
	const char *authority;       /* NULL = default */
	const char *secret_expires;  /* YYYY-MM-DD or NULL */
	int secret_literal;          /* client_secret must be sealed */
	/* endpoints: the tenant's own, else the map's top level; NULL / 0
	 * = the default (not written) */
	const char *graph_endpoint;  /* [OAuth] GraphEndpoint */
	const char *ca_file;         /* [OAuth] CAFile, [Mail] CAFile */
	const char *server;          /* [Mail] Server (IMAP/POP) */
	int port;                    /* [Mail] Port (IMAP/POP) */
	enum migrate_notify notify;  /* the tenant's, else the top level's */
};

int migrate_map_load(struct migrate_map **m, const char *path,
		     struct ms_err *err);
int migrate_map_parse(struct migrate_map **m, const char *name,
		      const char *json, size_t len, struct ms_err *err);
void migrate_map_free(struct migrate_map *m);
enum migrate_transport migrate_map_transport(const struct migrate_map *m);
const char *migrate_map_connector(const struct migrate_map *m);
/* The tenant serving a mailbox address (by its domain, case-insensitive;
 * a listed "example.com" also matches "sub.example.com"); 0 when found,
 * -1 when no tenant matches. */
int migrate_map_find(const struct migrate_map *m, const char *mailbox,
		     struct migrate_tenant_view *t);
/* The tenant with this tenant id and client id (apply-time sealing). */
int migrate_map_find_id(const struct migrate_map *m, const char *tenant_id,
			const char *client_id, struct migrate_tenant_view *t);
const char *migrate_transport_name(enum migrate_transport t);

/* What one INI file is changed into. */
struct migrate_target {
	enum migrate_transport transport;
	const char *authority;        /* NULL: not written (the default) */
	const char *tenant_id;
	const char *client_id;
	const char *client_secret;    /* written as is; NULL with a certificate */
	const char *certificate_file;
	const char *mailbox;          /* [OAuth] Mailbox, NULL: not written */
	const char *graph_endpoint;   /* [OAuth] GraphEndpoint, NULL: not written */
	const char *ca_file;          /* [OAuth] CAFile and (IMAP/POP) [Mail]
				       * CAFile, NULL: not written */
	const char *server;           /* IMAP/POP host, NULL: Exchange Online */
	int port;                     /* IMAP/POP port, 0: 993 / 995 */
	enum migrate_notify notify;   /* add [Notify] when needed (MN_GRAPH,
				       * MN_SMTP) */
};

/* Rewrite an INI file's bytes (any encoding ini.h reads): [Mail]
 * AuthMethod=OAuth2, EmailProtocol per transport, Server/Port for Exchange
 * Online when needed (or t->server / t->port when given),
 * SecurityProtocol raised to TLS1_2 when weaker, SelfSignedCertificate=
 * False, Password cleared, CAFile when given, and the [OAuth] section;
 * a [Notify] section when t->notify asks and NotifyOn* have none.
 * Every other byte is kept.  *out is malloc'd. */
int migrate_rewrite_ini(const char *name, const char *data, size_t len,
			const struct migrate_target *t, char **out,
			size_t *outlen, struct ms_err *err);

/* The same edit on a file already parsed (ini_parse_any) and checked
 * (ini_check), which it changes; the caller frees it. */
struct ini;
int migrate_rewrite_ini_parsed(struct ini *ini, const struct migrate_target *t,
			       char **out, size_t *outlen, struct ms_err *err);

/* Rewrite a job command line: the connector executable replaced by
 * connector (when non-NULL), -server:, -port:, --imap, --pop and --msal
 * removed; every other byte kept.  *flags gets MIGRATE_CMD_* bits. */
#define MIGRATE_CMD_CHANGED   0x1
#define MIGRATE_CMD_PASSWORD  0x2  /* literal -password:: manual action */
#define MIGRATE_CMD_KEEPALIVE 0x4  /* MSAL token keep-alive job: manual */
#define MIGRATE_CMD_UNLOCATED 0x8  /* connector not found: manual */
int migrate_rewrite_command(const char *cmd, const char *connector,
			    char **out, unsigned *flags, struct ms_err *err);

/* Rewrite a job export (JSON "commandLine" values or XML <cmd_line>
 * texts, UTF-8 with or without BOM): every command line equal to
 * olds[i] becomes news[i], encoded like its neighbours; every other byte
 * is kept.  *replaced counts the strings changed.  UTF-16 exports fail
 * with MS_ERR_DATA. */
int migrate_rewrite_export(const char *name, const char *data, size_t len,
			   const char *const *olds, const char *const *news,
			   size_t n, char **out, size_t *outlen,
			   size_t *replaced, struct ms_err *err);

/* Unified diff of two versions of a file (UTF-16 shown as UTF-8), with
 * secret values masked; appended to out. */
#define MIGRATE_DIFF_INI    0
#define MIGRATE_DIFF_EXPORT 1
int migrate_diff(const char *name, const char *a, size_t alen,
		 const char *b, size_t blen, int kind, struct buf *out,
		 struct ms_err *err);


/* The engine. */

typedef void (*migrate_out_fn)(const char *text, size_t len, void *ctx);

/* The plan bytes an apply keeps by default: a 10,000-file fleet's
 * (~240 MB) fit, a fleet ten times that size is made again batch by
 * batch instead of holding gigabytes. */
#define MIGRATE_KEEP_DEFAULT ((size_t)512 << 20)

struct migrate_opts {
	const char *fleet_dir;
	const char *map_path;         /* plan, apply */
	const char *state_path;       /* NULL: FLEET/.mailshift-migrate.db */
	const char *out_dir;          /* changes.json/.csv; NULL: FLEET/migrate/run-N */
	const char *only_machine;     /* --only filters, NULL: any */
	const char *only_schedule;
	const char *only_job;
	int run;                      /* rollback/status --run, 0 = latest */
	int force;                    /* rollback over conflicts */
	int json;                     /* plan, status: print one JSON document */
	time_t now;                   /* 0 = time(NULL) */
	/* apply that plans: how many bytes of the plan (originals and new
	 * files) it keeps in memory for its writes; an item beyond is made
	 * again from its file when its batch comes.  0: MIGRATE_KEEP_DEFAULT
	 * (1 keeps nothing: every item is bigger). */
	size_t keep_bytes;
	size_t batch;                 /* files per batch of apply/rollback, 0 = 1024 */
	/* Test hook: called after every file written by apply/rollback
	 * (n counts them). */
	void (*after_write)(size_t n, void *ctx);
	void *hook_ctx;
	migrate_out_fn out;
	void *out_ctx;
};

/* The phases of migrate_result.phase, and their names (migrate_phase_name). */
enum migrate_phase {
	MIGRATE_PH_OPEN,              /* state database, mapping file, key */
	MIGRATE_PH_SCAN,              /* plan: the fleet audited; rollback: hashing */
	MIGRATE_PH_EDIT,              /* plan: the files read and rewritten */
	MIGRATE_PH_STORE,             /* plan: run, items, sealed bytes stored */
	MIGRATE_PH_LOAD,              /* the run read back, stale temporaries */
	MIGRATE_PH_DECIDE,            /* per batch: stat/hash, unseal, seal, rows */
	MIGRATE_PH_COMMIT,            /* per batch: the COMMITs */
	MIGRATE_PH_WRITE,             /* per batch: files written and fsynced */
	MIGRATE_PH_DIRSYNC,           /* per batch: folders fsynced */
	MIGRATE_PH_PACKET,            /* the cutover packet, the run's state */
	MIGRATE_PHASES
};
const char *migrate_phase_name(enum migrate_phase p);

struct migrate_result {
	int run;
	size_t items;                 /* items considered */
	size_t planned, applied, skipped, conflict, failed, rolled_back;
	size_t jobs_changed, manual;
	size_t broken;                /* plan: broken jobs left alone */
	int manual_expected;          /* plan: manual actions alone are no failure */
	/* Where the time went (seconds, monotonic clock), per phase of plan,
	 * apply and rollback: mailshift-migrate prints them on stderr with
	 * MAILSHIFT_MIGRATE_TIMES=1 (docs/bench.md, B4). */
	double phase[MIGRATE_PHASES];
	size_t commits;               /* state transactions committed */
	size_t remade;                /* apply: new bytes made again, not kept */
};


/* Exit-worthy summary: 1 when some item was skipped, failed or is in
 * conflict, a job is broken, or a job needs manual action (except after
 * plan, for which only manual actions left is a complete plan), else 0. */
int migrate_result_exit(const struct migrate_result *r);

int migrate_plan(const struct migrate_opts *o, struct migrate_result *r,
		 struct ms_err *err);
int migrate_apply(const struct migrate_opts *o, struct migrate_result *r,
		  struct ms_err *err);
int migrate_status(const struct migrate_opts *o, struct migrate_result *r,
		   struct ms_err *err);
int migrate_rollback(const struct migrate_opts *o, struct migrate_result *r,
		     struct ms_err *err);

/* What another program may read of a state database (mailshift-verify
 * checks the mailboxes a run changed): the only door to migrate's
 * tables, opened read-only, without the exclusive lock of a migrate
 * command (waiting for one that holds it). */
struct migrate_applied {
	int run;                      /* the run read */
	char *fleet_dir;              /* its fleet folder: as recorded, or (a
				       * relative one from another working
				       * directory) the state database's folder */
	char **inis;                  /* fleet-relative paths of its applied
				       * INI files, in plan order */
	char **jobs;                  /* for each: the OpCon jobs that use it,
				       * "SCHEDULE/JOB (MACHINE), ..." */
	size_t n;
};

/* The INI files applied by run (0 = the latest).  MS_ERR_USAGE when the
 * database has no such run, MS_ERR_DATA when it is not a migrate state
 * database.  Release *a with migrate_applied_release(). */
int migrate_applied_inis(const char *state_db, int run,
			 struct migrate_applied *a, struct ms_err *err);
void migrate_applied_release(struct migrate_applied *a);

#endif
