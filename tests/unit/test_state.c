/* test_state.c - the exactly-once record: keys tied to their message by a
 * fingerprint, the Message-ID fallback only for a changed key generation
 * and never for rejected mail, failed/quarantined messages, first-run
 * emptiness, batched commits, and the fallback's query plan. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "connector/state.h"
#include "tap.h"

#define MB "IMAP://h:993/u/INBOX"
#define FP1 "11111111111111111111111111111111"
#define FP2 "22222222222222222222222222222222"

static int count_failed(const struct state_failed_row *r, void *ctx)
{
	int *n = ctx;

	(void)r;
	(*n)++;
	return 0;
}

int main(void)
{
	char dir[] = "/tmp/test_state.XXXXXX", path[1024], plan[2048];
	struct state *st = NULL, *other = NULL;
	struct state_row row;
	struct ms_err err = MS_ERR_INIT;
	enum msg_state s;
	int empty = -1, attempts = 0, nf = 0;
	long n = 0;
	struct state_failure f = { "<m1>", FP1, "Job A", "a@b", "too big", 2 };

	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/s.db", dir);
	ok(state_open(&st, path, &err) == 0, "open %s", err.msg);
	ok(state_open(&other, path, &err) == -1 && err.code == MS_ERR_BUSY,
	   "a second run is refused (busy)");
	err_clear(&err);

	ok(state_mailbox_empty(st, MB, &empty, &err) == 0 && empty == 1, "new: empty");
	ok(state_stage(st, MB, "imap:5:1", "<m1>", FP1, "R1", NULL, 0, 0, &err) == 0,
	   "record a rejected message");
	ok(state_mailbox_empty(st, MB, &empty, &err) == 0 && empty == 0, "no longer empty");

	ok(state_get(st, MB, "imap:5:1", "<m1>", FP1, &row, &err) == 0 &&
	   row.state == MSG_DELIVERED && row.same == 1 && strcmp(row.rules, "R1") == 0,
	   "same key, same fingerprint: the same message");
	ok(state_get(st, MB, "imap:5:1", "<m1>", FP2, &row, &err) == 0 &&
	   row.state == MSG_DELIVERED && row.same == 0,
	   "same key, another fingerprint: another message");
	ok(state_peek(st, MB, "imap:5:1", FP1, &row, &err) == 0 &&
	   row.state == MSG_DELIVERED && row.same == 1 &&
	   state_peek(st, MB, "imap:5:1", FP2, &row, &err) == 0 && row.same == 0 &&
	   state_peek(st, MB, "imap:5:99", FP1, &row, &err) == 0 &&
	   row.state == MSG_UNKNOWN, "a peek (no Message-ID) decides by fingerprint");

	/* the fallback: only matched, delivered rows of an older generation
	 * with the same fingerprint */
	ok(state_find_moved(st, MB, "imap:", "imap:6:", "<m1>", FP1, &s, &err) == 0 &&
	   s == MSG_UNKNOWN, "a rejected row never suppresses another key");
	ok(state_stage(st, MB, "imap:5:2", "<m2>", FP2, "R1", NULL, 0, 1, &err) == 0 &&
	   state_set(st, MB, "imap:5:2", MSG_DONE, 0, &err) == 0, "record a matched one");
	ok(state_find_moved(st, MB, "imap:", "imap:6:", "<m2>", FP2, &s, &err) == 0 &&
	   s == MSG_DONE, "a new UIDVALIDITY finds the matched message");
	ok(state_find_moved(st, MB, "imap:", "imap:5:", "<m2>", FP2, &s, &err) == 0 &&
	   s == MSG_UNKNOWN, "not within the same generation");
	ok(state_find_moved(st, MB, "imap:", "imap:6:", "<m2>", FP1, &s, &err) == 0 &&
	   s == MSG_UNKNOWN, "not with another fingerprint (date, sender, size)");

	{
		int yes = -1;

		ok(state_has_other_generation(st, MB, "imap:", "imap:6:", &yes, &err) == 0 &&
		   yes == 1, "rows of UIDVALIDITY 5 are another generation than 6");
		ok(state_has_other_generation(st, MB, "imap:", "imap:5:", &yes, &err) == 0 &&
		   yes == 0, "and none other than 5 (the fallback lookup is skipped)");
		ok(state_done(st, MB, "imap:5:9", "<m9>", FP2, "R1", 0, 1, &err) == 0 &&
		   state_get(st, MB, "imap:5:9", "<m9>", FP2, &row, &err) == 0 &&
		   row.state == MSG_DONE && row.deleted == 1 && row.same == 1,
		   "a message without events recorded DONE in one step");
	}
	ok(state_explain_moved(st, plan, sizeof(plan), &err) == 0 &&
	   strstr(plan, "messages_mid") && !strstr(plan, "SCAN"),
	   "the fallback is planned on the Message-ID index, no scan");
	printf("# plan: %s", plan);

	/* failures */
	ok(state_fail(st, MB, "imap:5:3", &f, &attempts, &s, &err) == 0 &&
	   attempts == 1 && s == MSG_FAILED, "first failure: FAILED, 1 try");
	ok(state_fail(st, MB, "imap:5:3", &f, &attempts, &s, &err) == 0 &&
	   attempts == 2 && s == MSG_QUARANTINED, "MaxAttempts=2: QUARANTINED");
	ok(state_failed_foreach(st, count_failed, &nf, &err) == 0 && nf == 1,
	   "listed once");
	ok(state_retry_quarantined(st, MB, &n, &err) == 0 && n == 1, "released");
	ok(state_get(st, MB, "imap:5:3", "<m1>", FP1, &row, &err) == 0 &&
	   row.state == MSG_FAILED && row.attempts == 0, "FAILED with no tries");

	/* batches: rows without events wait for the batch; staging commits */
	ok(state_batch_begin(st, &err) == 0, "batch");
	ok(state_prior(st, MB, "imap:5:4", "<m4>", FP1, &err) == 0, "prior row");
	ok(state_stage(st, MB, "imap:5:5", "<m5>", FP1, "R1",
		       (const char *const[]){ "e1.txt" }, 1, 1, &err) == 0,
	   "staging inside a batch");
	ok(state_prior(st, MB, "imap:5:6", "<m6>", FP1, &err) == 0, "another prior row");
	state_close(st);   /* commits the open batch */
	st = NULL;
	ok(state_open(&st, path, &err) == 0, "reopen");
	ok(state_get(st, MB, "imap:5:5", "<m5>", FP1, &row, &err) == 0 &&
	   row.state == MSG_STAGED, "the staged row is there");
	ok(state_get(st, MB, "imap:5:6", "<m6>", FP1, &row, &err) == 0 &&
	   row.state == MSG_PRIOR, "and the batch after it");
	ok(state_get(st, MB, "imap:5:4", "<m4>", FP1, &row, &err) == 0 &&
	   row.state == MSG_PRIOR, "and the prior row before it");

	/* lookups in a batch share one read transaction; a write ends it
	 * first, so what is committed is on disk for another connection */
	ok(state_batch_begin(st, &err) == 0, "a second batch");
	ok(state_get(st, MB, "imap:5:4", "<m4>", FP1, &row, &err) == 0 &&
	   state_get(st, MB, "imap:5:7", "<m7>", FP1, &row, &err) == 0 &&
	   row.state == MSG_UNKNOWN, "lookups in the batch");
	ok(state_done(st, MB, "imap:5:7", "<m7>", FP1, "R1", 1, 0, &err) == 0 &&
	   state_get(st, MB, "imap:5:7", "<m7>", FP1, &row, &err) == 0 &&
	   row.state == MSG_DONE, "a write after them, seen by the next lookup %s", err.msg);
	ok(state_commit(st, &err) == 0, "committed %s", err.msg);
	{
		char cmd[1200], out[64] = "";
		FILE *p;

		snprintf(cmd, sizeof(cmd), "sqlite3 %s \"SELECT state FROM messages"
			 " WHERE key='imap:5:7'\"", path);
		p = popen(cmd, "r");
		ok(p && fgets(out, sizeof(out), p) && atoi(out) == MSG_DONE,
		   "another connection reads the committed row");
		if (p)
			pclose(p);
	}
	ok(state_get(st, MB, "imap:5:7", "<m7>", FP1, &row, &err) == 0 &&
	   state_batch_end(st, &err) == 0, "a lookup after the commit, then the end %s",
	   err.msg);
	state_close(st);

	/* the lock first, then the database (the connector opens it on a
	 * thread while it logs in) */
	snprintf(path, sizeof(path), "%s/p.db", dir);
	ok(state_lock(&st, path, &err) == 0 && state_lock(&other, path, &err) == -1 &&
	   err.code == MS_ERR_BUSY, "the lock alone refuses a second run");
	err_clear(&err);
	ok(state_open_locked(st, &err) == 0, "then the database opens %s", err.msg);

	/* preloaded rows answer peeks as the database does, until written */
	{
		static const char *const keys[] = {
			"imap:7:1", "imap:7:2", "imap:7:3", "imap:7:4", "imap:7:5",
			"imap:7:6", "imap:7:9", "imap:8:1",
		};
		struct state_failure q = { "<q>", FP1, "S", "a@b", "bad", 1 };
		struct state_row want[8][2], got;
		int same_all = 1;
		char cmd[1200];

		ok(state_done(st, MB, "imap:7:1", "<a>", FP1, "R1", 1, 1, &err) == 0 &&
		   state_stage(st, MB, "imap:7:2", "<b>", FP2, "R2", NULL, 0, 0, &err) == 0 &&
		   state_prior(st, MB, "imap:7:3", "<c>", "", &err) == 0 &&
		   state_fail(st, MB, "imap:7:4", &f, &attempts, &s, &err) == 0 &&
		   state_fail(st, MB, "imap:7:5", &q, &attempts, &s, &err) == 0 &&
		   s == MSG_QUARANTINED &&
		   state_done(st, MB, "imap:7:6", "<d>", FP2, "R1", 0, 0, &err) == 0 &&
		   state_done(st, "POP://h:995/u/INBOX", "imap:7:9", "<e>", FP1, "R1",
			      1, 0, &err) == 0, "rows of every kind %s", err.msg);
		for (size_t i = 0; i < 8; i++)
			for (int j = 0; j < 2; j++)
				state_peek(st, MB, keys[i], j ? FP2 : FP1, &want[i][j], &err);
		ok(state_preload(st, MB, 100, &err) == 0, "preload %s", err.msg);
		for (size_t i = 0; i < 8; i++)
			for (int j = 0; j < 2; j++) {
				ok(state_peek(st, MB, keys[i], j ? FP2 : FP1, &got, &err) == 0,
				   "peek %s", keys[i]);
				if (got.state != want[i][j].state ||
				    got.deleted != want[i][j].deleted ||
				    got.matched != want[i][j].matched ||
				    got.same != want[i][j].same ||
				    got.attempts != want[i][j].attempts ||
				    strcmp(got.rules, want[i][j].rules) != 0) {
					same_all = 0;
					printf("# %s fp%d: state %d/%d same %d/%d\n", keys[i], j + 1,
					     got.state, want[i][j].state, got.same,
					     want[i][j].same);
				}
			}
		ok(same_all, "every peek after the preload answers as before it");
		ok(want[2][0].same == -1 && want[0][0].same == 1 && want[0][1].same == 0 &&
		   want[6][0].state == MSG_UNKNOWN && want[4][0].state == MSG_QUARANTINED,
		   "and the cases are the ones meant (no fingerprint, same, other, "
		   "another mailbox's key, quarantined)");

		/* answered from memory: a row changed behind the handle's back
		 * (no run does that: the lock) is not seen ... */
		snprintf(cmd, sizeof(cmd), "sqlite3 %s \"UPDATE messages SET state=1"
			 " WHERE key IN ('imap:7:1','imap:7:6')\"", path);
		ok(system(cmd) == 0 &&
		   state_peek(st, MB, "imap:7:1", FP1, &got, &err) == 0 &&
		   got.state == MSG_DONE, "a preloaded row is answered from memory");
		/* ... but a row written through it is */
		ok(state_set(st, MB, "imap:7:1", MSG_DELIVERED, 0, &err) == 0 &&
		   state_peek(st, MB, "imap:7:1", FP1, &got, &err) == 0 &&
		   got.state == MSG_DELIVERED && got.deleted == 1,
		   "a row written since is read from the database");
		ok(state_done(st, MB, "imap:7:2", "<b>", FP2, "R2", 1, 0, &err) == 0 &&
		   state_peek(st, MB, "imap:7:2", FP2, &got, &err) == 0 &&
		   got.state == MSG_DONE && got.matched == 1, "state_done too");
		ok(state_done(st, MB, "imap:7:8", "<n>", FP1, "R2", 1, 0, &err) == 0 &&
		   state_peek(st, MB, "imap:7:8", FP1, &got, &err) == 0 &&
		   got.state == MSG_DONE && got.same == 1, "and a key not preloaded");
		/* releasing the quarantine changes rows of the whole mailbox */
		ok(state_retry_quarantined(st, MB, &n, &err) == 0 && n == 1 &&
		   state_peek(st, MB, "imap:7:5", FP1, &got, &err) == 0 &&
		   got.state == MSG_FAILED && got.attempts == 0 &&
		   state_peek(st, MB, "imap:7:6", FP2, &got, &err) == 0 &&
		   got.state == MSG_STAGED, "after --retry-failed every row is read again");
		/* a mailbox over the cap is not loaded: lookups see the database */
		snprintf(cmd, sizeof(cmd), "sqlite3 %s \"UPDATE messages SET state=2"
			 " WHERE key='imap:7:6'\"", path);
		ok(state_preload(st, MB, 3, &err) == 0 && system(cmd) == 0 &&
		   state_peek(st, MB, "imap:7:6", FP2, &got, &err) == 0 &&
		   got.state == MSG_DELIVERED, "over the cap nothing is preloaded");
		snprintf(cmd, sizeof(cmd), "sqlite3 %s \"UPDATE messages SET state=3"
			 " WHERE key='imap:7:6'\"", path);
		ok(state_preload(st, MB, 100, &err) == 0 && system(cmd) == 0 &&
		   state_preload(st, "IMAP://none", 100, &err) == 0 &&
		   state_peek(st, MB, "imap:7:6", FP2, &got, &err) == 0 &&
		   got.state == MSG_DONE, "preloading another mailbox forgets the first");
	}
	state_close(st);

	/* a database of the first schema (no fingerprint column) gains the
	 * new columns; its rows compare by Message-ID */
	snprintf(path, sizeof(path), "sqlite3 %s/old.db \"CREATE TABLE messages ("
		 "mailbox TEXT NOT NULL, key TEXT NOT NULL, message_id TEXT,"
		 " state INTEGER NOT NULL, matched INTEGER NOT NULL DEFAULT 0,"
		 " deleted INTEGER NOT NULL DEFAULT 0, first_seen INTEGER NOT NULL,"
		 " updated INTEGER NOT NULL, PRIMARY KEY (mailbox, key));"
		 " INSERT INTO messages VALUES('%s','pop:u1','<old>',3,1,1,1,1);\"",
		 dir, MB);
	if (system(path) == 0) {
		snprintf(path, sizeof(path), "%s/old.db", dir);
		ok(state_open(&st, path, &err) == 0, "an old database opens %s", err.msg);
		ok(state_get(st, MB, "pop:u1", "<old>", FP1, &row, &err) == 0 &&
		   row.state == MSG_DONE && row.same == 1 && row.deleted == 1,
		   "an old row with the same Message-ID is the same message");
		ok(state_get(st, MB, "pop:u1", "<new>", FP1, &row, &err) == 0 &&
		   row.same == 0, "with another Message-ID it is not");
		ok(state_peek(st, MB, "pop:u1", FP1, &row, &err) == 0 &&
		   row.state == MSG_DONE && row.same == -1,
		   "peeked at without a Message-ID, it says: ask with one");
		state_close(st);
	} else {
		ok(0, "sqlite3 command line tool available");
	}
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	if (system(path) != 0)
		return 1;
	return done_testing();
}
