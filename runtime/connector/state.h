/*
 * state.h - the connector's exactly-once record (SQLite; sqlite3 types stay
 * in state.c).
 *
 * One database per INI file by default ("<ini>.state.db", or [State]
 * StateDatabase).  Each message seen in a mailbox is a row keyed by
 * (mailbox id, message key) where the key is "imap:<uidvalidity>:<uid>",
 * "pop:<uidl>" or "graph:<immutable id>".  Each row also holds the
 * message's fingerprint (a hash of its size and header block, computed by
 * the connector): a key is only trusted for the message it was recorded
 * for, so a POP3 server that hands an old UIDL to new mail, or an IMAP
 * server reset that keeps UIDVALIDITY, never makes new mail "already done".
 *
 * The life of a message (the order is what makes a crash harmless):
 *   STAGED       its event files are durable in the staging folder and
 *                their names are recorded here;
 *   DELIVERED    every staged file was renamed into MSGIN (rename is
 *                atomic, so a staged file that is gone was delivered);
 *   DONE         any server-side deletion has happened (or none was due).
 *   FAILED       it could not be processed (too big, an event that cannot
 *                be written, a download that failed ...): left on the
 *                server, tried again by later runs;
 *   QUARANTINED  FAILED [State] MaxAttempts times: no longer tried until
 *                `mailshift --retry-failed`;
 *   PRIOR        on the first run for a mailbox, mail received before the
 *                INI's LastRunDate: the incumbent handled it, left alone.
 * A message that matched nothing goes straight to DONE (no events).
 *
 * Commits: in a batch (state_batch_begin()) rows are written into one open
 * transaction, committed every 1000 rows, by state_commit() and at
 * state_batch_end().  Staged event names may wait in it too (the
 * connector delivers messages in groups), so before every commit the
 * pre-commit hook runs: the connector makes the staged files' directory
 * durable there, because a name must never be durable before its file.
 * The lookups of a batch share one read transaction (one snapshot, no
 * lock taken per lookup); it ends before anything is written, and a write
 * begins a transaction of its own as above.
 *
 * Only one connector run may use a database at a time: state_open() takes
 * an exclusive lock and fails with MS_ERR_BUSY if another run holds it.
 */
#ifndef MS_STATE_H
#define MS_STATE_H

#include <stddef.h>
#include <time.h>
#include "base/err.h"

enum msg_state {
	MSG_UNKNOWN = 0, MSG_STAGED = 1, MSG_DELIVERED = 2, MSG_DONE = 3,
	MSG_FAILED = 4, MSG_QUARANTINED = 5, MSG_PRIOR = 6
};

/* hex digits of a fingerprint or rule-set hash */
#define STATE_HASH_LEN 32

struct state;

int state_open(struct state **st, const char *path, struct ms_err *err);
/* state_open() in two steps: the lock (MS_ERR_BUSY as above), then the
 * database, which may be opened on another thread (state_thread_safe()).
 * After a failure of the second, state_close() the handle. */
int state_lock(struct state **st, const char *path, struct ms_err *err);
int state_open_locked(struct state *st, struct ms_err *err);
/* Commits an open batch (errors ignored: nothing in it needs to last). */
void state_close(struct state *st);

/* One recorded message, as far as a run needs it. */
struct state_row {
	enum msg_state state;      /* MSG_UNKNOWN when there is no row */
	int deleted;               /* a deletion was recorded (a POP DELE only
				    * takes effect at QUIT, so a message
				    * recorded as deleted can still be listed) */
	int matched;               /* it matched a rule (a rejected message can
				    * have events too, its RejectEvent) */
	int same;                  /* the row is this message: its fingerprint
				    * equals the one asked with (rows written
				    * before fingerprints: same Message-ID);
				    * -1: such a row, from state_peek() */
	int attempts;              /* failed attempts so far */
	char rules[STATE_HASH_LEN + 1];  /* rule set that judged it, "" */
};

/* The row of (mailbox, key), compared with the listed message's Message-ID
 * and fingerprint. */
int state_get(struct state *st, const char *mailbox, const char *key,
	      const char *message_id, const char *fingerprint,
	      struct state_row *row, struct ms_err *err);
/* The same before the headers are parsed (no Message-ID yet): every field
 * is right, but a row written before fingerprints has `same` -1. */
int state_peek(struct state *st, const char *mailbox, const char *key,
	       const char *fingerprint, struct state_row *row,
	       struct ms_err *err);
/* Read the rows of one mailbox into memory in one pass (a run's first
 * statement for it), so that state_peek() answers from memory: a steady-
 * state poll of 10,000 known messages then costs no SQLite lookup.  A row
 * written since (by this handle: the run holds the database's lock) and a
 * key not loaded are looked up in the database as before.  A mailbox of
 * more than `cap` rows is not loaded.  0 also when nothing was loaded. */
int state_preload(struct state *st, const char *mailbox, size_t cap,
		  struct ms_err *err);
/* The rows state_preload() reads at most: ~100 bytes each in memory. */
#define STATE_PRELOAD_MAX ((size_t)250000)

/* 1 when SQLite was built for threads: a state database may then be
 * opened on one thread and used on another while another thread uses
 * another database. */
int state_thread_safe(void);

/* A message whose key changed for a known reason (a new IMAP UIDVALIDITY,
 * a new Graph id): the state of a row of the same mailbox under an older
 * key of the same family (keys starting with `family`, but not with
 * `current`), with the same Message-ID and fingerprint, that matched a rule
 * and was delivered.  Rejected mail never counts, so no sender can
 * suppress a future event by sending a Message-ID first.  *out is
 * MSG_UNKNOWN when there is none. */
int state_find_moved(struct state *st, const char *mailbox, const char *family,
		     const char *current, const char *message_id,
		     const char *fingerprint, enum msg_state *out,
		     struct ms_err *err);

/* 1 in *empty when the database holds no row for mailbox (a new or an
 * emptied database). */
int state_mailbox_empty(struct state *st, const char *mailbox, int *empty,
			struct ms_err *err);

/* Record a message as STAGED with the staged event file names (DELIVERED
 * at once when n == 0).  Outside a batch it is committed at once; in a
 * batch it waits for the next commit (state_commit()).  rules is the hash
 * of the rule set that judged it. */
int state_stage(struct state *st, const char *mailbox, const char *key,
		const char *message_id, const char *fingerprint,
		const char *rules, const char *const *names, size_t n,
		int matched, struct ms_err *err);
/* Commit what a batch holds (durable on return); 0 when nothing is open. */
int state_commit(struct state *st, struct ms_err *err);
/* Run fn before every commit of this handle; a failure of fn fails the
 * commit (nothing is committed, the batch is rolled back). */
typedef int (*state_precommit_fn)(void *ctx, struct ms_err *err);
void state_set_precommit(struct state *st, state_precommit_fn fn, void *ctx);

/* Record a message that raised no event as DONE in one step (deleted: a
 * deletion was made). */
int state_done(struct state *st, const char *mailbox, const char *key,
	       const char *message_id, const char *fingerprint, const char *rules,
	       int matched, int deleted, struct ms_err *err);

/* 1 in *yes when the mailbox holds rows of the key family other than the
 * current generation (then state_find_moved() can find something). */
int state_has_other_generation(struct state *st, const char *mailbox,
			       const char *family, const char *current, int *yes,
			       struct ms_err *err);

/* Staged event file names of a message, in order; caller frees each and
 * the array. */
int state_staged_names(struct state *st, const char *mailbox, const char *key,
		       char ***names, size_t *n, struct ms_err *err);

int state_set(struct state *st, const char *mailbox, const char *key,
	      enum msg_state s, int deleted, struct ms_err *err);

/* Record mail received before LastRunDate on a first run (MSG_PRIOR). */
int state_prior(struct state *st, const char *mailbox, const char *key,
		const char *message_id, const char *fingerprint,
		struct ms_err *err);

/* Record a failed attempt with its reason: FAILED, or QUARANTINED once
 * attempts reach max_attempts.  *attempts and *out tell which. */
struct state_failure {
	const char *message_id, *fingerprint;
	const char *subject, *sender;   /* for `mailshift --failed` */
	const char *reason;
	int max_attempts;
};
int state_fail(struct state *st, const char *mailbox, const char *key,
	       const struct state_failure *f, int *attempts,
	       enum msg_state *out, struct ms_err *err);

/* Every FAILED and QUARANTINED message of the database, oldest first. */
struct state_failed_row {
	const char *mailbox, *key, *subject, *sender, *reason;
	enum msg_state state;
	int attempts;
	time_t first_seen, updated;
};
typedef int (*state_failed_fn)(const struct state_failed_row *row, void *ctx);
int state_failed_foreach(struct state *st, state_failed_fn fn, void *ctx,
			 struct ms_err *err);
/* Make QUARANTINED messages of mailbox FAILED with no attempts (they are
 * tried again in this run); *n is how many. */
int state_retry_quarantined(struct state *st, const char *mailbox, long *n,
			    struct ms_err *err);

/* Batched commits for the rows of a run (see above); state_batch_end()
 * commits what is open. */
int state_batch_begin(struct state *st, struct ms_err *err);
int state_batch_end(struct state *st, struct ms_err *err);

/* The query plan SQLite chose for the state_find_moved() query, one line
 * per step (for the test that keeps it on the Message-ID index). */
int state_explain_moved(struct state *st, char *out, size_t outsz,
			struct ms_err *err);

#endif
