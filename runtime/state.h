/*
 * state.h - the connector's exactly-once record (SQLite; sqlite3 types stay
 * in state.c).
 *
 * One database per INI file by default ("<ini>.state.db", or [State]
 * StateDatabase).  Each message seen in a mailbox is a row keyed by
 * (mailbox id, message key) where the key is "imap:<uidvalidity>:<uid>",
 * "pop:<uidl>" or "graph:<immutable id>"; Message-ID is kept as the fallback
 * key for POP and servers that renumber.
 *
 * The life of a message (the order is what makes a crash harmless):
 *   STAGED     its event files are durable in the staging folder and their
 *              names are recorded here;
 *   DELIVERED  every staged file was renamed into MSGIN (rename is atomic,
 *              so a staged file that is gone was delivered);
 *   DONE       any server-side deletion has happened (or none was due).
 * A message that matched nothing goes straight to DONE (no events).
 *
 * Only one connector run may use a database at a time: state_open() takes
 * an exclusive lock and fails with MS_ERR_BUSY if another run holds it.
 */
#ifndef MS_STATE_H
#define MS_STATE_H

#include <stddef.h>
#include "err.h"

enum msg_state { MSG_UNKNOWN = 0, MSG_STAGED = 1, MSG_DELIVERED = 2, MSG_DONE = 3 };

struct state;

int state_open(struct state **st, const char *path, struct ms_err *err);
void state_close(struct state *st);

/* State of a message by key; when the key is unknown and message_id is
 * non-empty, a row of the same mailbox with that Message-ID counts
 * (renumbered servers, POP).  *matched_key receives nothing: callers only
 * need the state. */
int state_lookup(struct state *st, const char *mailbox, const char *key,
		 const char *message_id, enum msg_state *out, struct ms_err *err);

/* Like state_lookup(), also telling whether a deletion was recorded
 * (*deleted: a POP deletion only takes effect at QUIT, so a message
 * recorded as deleted can still be listed after a crash) and whether the
 * message matched a rule (*matched: a rejected message can have events
 * too, its RejectEvent, and must not be deleted as a match). */
int state_lookup_ex(struct state *st, const char *mailbox, const char *key,
		    const char *message_id, enum msg_state *out, int *deleted,
		    int *matched, struct ms_err *err);

/* Record a message as STAGED with the staged event file names (or DONE at
 * once when n == 0 and mark_done is set), in one transaction. */
int state_stage(struct state *st, const char *mailbox, const char *key,
		const char *message_id, const char *const *names, size_t n,
		int matched, struct ms_err *err);

/* Staged event file names of a message, in order; caller frees each and
 * the array. */
int state_staged_names(struct state *st, const char *mailbox, const char *key,
		       char ***names, size_t *n, struct ms_err *err);

int state_set(struct state *st, const char *mailbox, const char *key,
	      enum msg_state s, int deleted, struct ms_err *err);

/* Messages of a mailbox left in STAGED or DELIVERED by an interrupted run:
 * calls fn for each key (bounded by the table size). */
typedef int (*state_key_fn)(const char *key, enum msg_state s, void *ctx);
int state_unfinished(struct state *st, const char *mailbox, state_key_fn fn,
		     void *ctx, struct ms_err *err);

/* Count rows in a state (for tests and reports). */
int state_count(struct state *st, const char *mailbox, enum msg_state s,
		long *n, struct ms_err *err);

#endif
