/*
 * verify.h - mailshift-verify: the live post-migration smoke test.
 *
 * For every mailbox (one connector INI file) six steps, each timed:
 *   config   the INI parses, its OAuth settings are complete, the client
 *            secret resolves, a certificate is readable and not expired
 *   token    a token from the shared cache (oauth.h), refusals explained
 *   login    the mailbox opened read-only over its protocol and listed
 *   send     (--send) a probe with a unique id in its subject, through
 *            SMTP submission (XOAUTH2 or basic) or Graph sendMail
 *   seen     polls read-only until the probe is listed, then runs the
 *            connector itself in dry-run mode (connector.h: no event
 *            written, nothing deleted, no state saved) and records what
 *            it did with the probe: matched (which [ConfigurationN], the
 *            events it would write, redacted) or rejected (why)
 *   cleanup  deletes the probe, found by its message key and checked
 *            again by its id; nothing else is ever deleted
 * A failed step fails the mailbox; the steps after it are skipped (cleanup
 * still runs when a probe was sent).
 *
 * Sessions: the login step's session is kept for the polls, the dry run
 * (handed to the connector) and the cleanup where the protocol allows it:
 * IMAP logs in once per mailbox (the folder is selected again per step),
 * Graph keeps its connection and token; POP3 logs in for the login step
 * and once per poll (a POP3 session never sees mail that arrived after its
 * login), and the poll session that lists the probe serves the dry run and
 * the cleanup (verify.c, "mailbox sessions").
 *
 * Mailboxes run concurrently (--concurrency threads) under per-mailbox
 * limits shared by all threads: at most 3 SMTP connections per sending
 * mailbox, 4 concurrent Graph sessions per mailbox (a session makes one
 * request at a time), 4 IMAP/POP sessions per mailbox and 30 probes per
 * minute per sending mailbox (sliding window).  429 Retry-After is
 * honoured by the transports themselves (mailbox_graph.c, send.c,
 * oauth.c).
 *
 * Results go into a SQLite database (runs, per-mailbox results, one row
 * per step with error code and explanation); verify_history() shows when
 * each mailbox was last proven.  sqlite3, cJSON and libcurl types stay in
 * verify*.c.
 *
 * The engine never prints; progress goes through a callback.  Secrets
 * never reach a result: error messages come from the library (which
 * redacts), event lines come redacted from the connector.
 *
 * Ownership: every string in struct verify_opts and struct verify_target
 * arrays passed in is borrowed.  struct verify_run and everything in it
 * are owned by the run and released with verify_run_release().  Functions
 * returning char ** hand a malloc'd NUL-terminated buffer to the caller.
 */
#ifndef MS_VERIFY_H
#define MS_VERIFY_H

#include <stddef.h>
#include <time.h>

#include "base/err.h"

enum verify_step { VSTEP_CONFIG = 0, VSTEP_TOKEN, VSTEP_LOGIN, VSTEP_SEND,
		   VSTEP_SEEN, VSTEP_CLEANUP, VSTEP_COUNT };
enum verify_status { VST_SKIP = 0, VST_PASS, VST_FAIL };
enum verify_format { VFMT_TEXT = 0, VFMT_JSON, VFMT_JUNIT, VFMT_HTML };

#define VERIFY_SMTP_PER_MAILBOX    3
#define VERIFY_GRAPH_PER_MAILBOX   4
#define VERIFY_SESSIONS_PER_MAILBOX 4
#define VERIFY_SENDS_PER_MINUTE    30
#define VERIFY_RATE_MAX            1000   /* largest sends-per-window limit */
#define VERIFY_MAX_TARGETS         100000
#define VERIFY_DB_NAME             "verify.db"

struct verify_target {
	char *ini;          /* local path of the INI file */
	char *label;        /* how reports name it, e.g. "WINAPP01:C:\x\y.ini" */
	char *jobs;         /* the OpCon jobs that use it ("SCHEDULE/JOB
			     * (MACHINE), ..."), NULL when not known */
};

struct verify_step_result {
	enum verify_status status;
	double seconds;
	enum ms_errcode code;  /* MS_OK unless failed */
	char *message;      /* what happened (failure: the error; pass: details) */
	char *cause;        /* explanation of a failure, NULL when passed */
	char *fix;
	char *topic;        /* catalogue key, e.g. "AADSTS7000215" */
};

struct verify_result {
	char *ini;
	char *label;
	char *jobs;         /* as in struct verify_target */
	char *mailbox;      /* address, NULL when the INI did not load */
	char *protocol;     /* "imap", "pop", "graph" */
	char *probe_id;     /* NULL without --send */
	char *probe_subject;
	char *outcome;      /* "matched", "rejected: <reason>" or NULL */
	char *matched;      /* sections whose events fired, "A, B", or NULL */
	char **events;      /* event lines the connector would write (redacted) */
	size_t n_events;
	double seen_after;  /* seconds from send to seen, -1 when not seen */
	char *warning;      /* e.g. certificate near expiry, NULL if none */
	int passed;
	struct verify_step_result steps[VSTEP_COUNT];
};

struct verify_run {
	long id;            /* run id in the database, 0 when not stored */
	time_t started, finished;
	char *source;       /* "--fleet DIR", "--state DB run N", "--ini" */
	int send;
	struct verify_result *results;   /* in target order */
	size_t n;
	size_t passed, failed;
};

/* Where probes go out from. */
struct verify_sender {
	const char *ini;         /* NULL: each mailbox sends to itself with
				  * its own INI ([Notify], Graph or SMTP) */
	const char *smtp_host;   /* SMTP submission for IMAP/POP mailboxes
				  * without [Notify]; NULL: smtp.office365.com
				  * for Microsoft-hosted, else [Mail] Server */
	int smtp_port;           /* 0: 587 (465 with implicit) */
	int smtp_implicit_tls;
	const char *from;        /* From address override */
};

typedef void (*verify_progress_fn)(void *ctx, size_t done, size_t total,
				   const struct verify_result *r);

struct verify_opts {
	const struct verify_target *targets;
	size_t n_targets;
	const char *source;      /* description stored with the run */
	int send;
	const char *subject;     /* --subject: the probe subject (the id is
				  * appended: "S [MSV-...]"); the probe must
				  * then match a [ConfigurationN] */
	struct verify_sender sender;
	int concurrency;         /* threads, default 4, at most 64 */
	long timeout_s;          /* wait for the probe, default 120 */
	long poll_ms;            /* between polls, default 2000 */
	long op_timeout_s;       /* per network operation, default 60 */
	int cert_min_days;       /* fail when fewer days remain, default 0
				  * (only expired fails); < 30 warns */
	int sends_per_minute;    /* default 30 */
	const char *db_path;     /* NULL: results not stored */
	int verbose;
	verify_progress_fn progress;
	void *progress_ctx;
};

/* Targets.  *t is an array of *n owned entries (verify_targets_free()). */
int verify_targets_add(struct verify_target **t, size_t *n, const char *ini,
		       const char *label, struct ms_err *err);
/* Every *.ini file under FLEET/machines (label "MACHINE:windows path"). */
int verify_targets_from_fleet(const char *fleet, struct verify_target **t,
			      size_t *n, struct ms_err *err);
/* The INI files applied by a mailshift-migrate run (run 0 = the latest):
 * reads the migrate state database read-only. */
int verify_targets_from_state(const char *state_db, int run,
			      struct verify_target **t, size_t *n,
			      int *run_out, struct ms_err *err);
void verify_targets_free(struct verify_target *t, size_t n);

/* Run every target.  Fails only on a usage, database or memory error;
 * failing mailboxes are results, not errors. */
int verify_run(const struct verify_opts *o, struct verify_run *r,
	       struct ms_err *err);
void verify_run_release(struct verify_run *r);
/* 0 when every mailbox passed (and there was at least one), else 1. */
int verify_exit_code(const struct verify_run *r);

/* Reports.  Deterministic for a given run; HTML is self-contained and
 * escapes everything that came from a file or a server. */
int verify_format_parse(const char *s, enum verify_format *f);
int verify_render(const struct verify_run *r, enum verify_format f,
		  char **out, size_t *len, struct ms_err *err);

/* Results database: store a finished run (sets r->id). */
int verify_db_store(const char *db_path, struct verify_run *r,
		    struct ms_err *err);
/* "When was each mailbox last proven": one line per INI file. */
int verify_history(const char *db_path, char **out, struct ms_err *err);

const char *verify_step_name(enum verify_step s);
const char *verify_status_name(enum verify_status s);

/* ---- pure parts -------------------------------------------------------- */

/* Sliding-window rate limit: at most limit events in any window seconds. */
struct verify_rate {
	double t[VERIFY_RATE_MAX];   /* ring of the last `limit` grants */
	size_t n, head;
	int limit;
	double window;
};
void verify_rate_init(struct verify_rate *rl, int limit, double window);
/* Reserve the next slot at or after now; returns the time it is granted
 * (now when free, else when the oldest grant in the window expires). */
double verify_rate_reserve(struct verify_rate *rl, double now);

/* Escaping for the reports (appended, malloc'd result).  XML drops the
 * control characters XML 1.0 forbids; both replace invalid UTF-8. */
char *verify_html_escape(const char *s);
char *verify_xml_escape(const char *s);

/* "MSV-" and 16 random hex digits (out >= 24). */
void verify_probe_id(char *out, size_t outsz);

#endif
