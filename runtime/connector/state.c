#include "connector/state.h"
#include "base/buf.h"
#include "base/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "base/platform.h"

#include "base/sqldb.h"

/* rows written in one batch before it is committed anyway */
#define BATCH_ROWS 1000

enum stmt_id {
	Q_GET, Q_MOVED, Q_EMPTY, Q_UPSERT_STAGE, Q_DEL_EVENTS, Q_ADD_EVENT,
	Q_NAMES, Q_SET, Q_PRIOR, Q_FAIL, Q_FAIL_GET, Q_DONE, Q_OTHER_GEN,
	Q_MAX
};

static const char *const sql_of[Q_MAX] = {
	[Q_GET] =
	"SELECT state, deleted, matched, attempts, coalesce(rules,''),"
	" CASE WHEN coalesce(fingerprint,'')='' THEN"
	"  CASE WHEN ?3 IS NULL THEN -1 ELSE coalesce(message_id=?3, 0) END"
	" ELSE fingerprint=?4 END"
	" FROM messages WHERE mailbox=?1 AND key=?2",
	/* planned on the Message-ID index: never a scan of the mailbox */
	[Q_MOVED] =
	"SELECT max(state) FROM messages INDEXED BY messages_mid"
	" WHERE mailbox=?1 AND message_id=?2 AND fingerprint=?3 AND matched=1"
	" AND state IN (2,3) AND substr(key,1,length(?4))=?4"
	" AND substr(key,1,length(?5))<>?5",
	[Q_EMPTY] = "SELECT 1 FROM messages WHERE mailbox=?1 LIMIT 1",
	[Q_UPSERT_STAGE] =
	"INSERT INTO messages(mailbox,key,message_id,fingerprint,rules,state,"
	"matched,deleted,first_seen,updated) VALUES(?1,?2,?3,?4,?5,?6,?7,0,?8,?8)"
	" ON CONFLICT(mailbox,key) DO UPDATE SET message_id=?3, fingerprint=?4,"
	" rules=?5, state=?6, matched=?7, deleted=0, reason=NULL, updated=?8",
	[Q_DEL_EVENTS] = "DELETE FROM events WHERE mailbox=?1 AND key=?2",
	[Q_ADD_EVENT] = "INSERT INTO events(mailbox,key,seq,name) VALUES(?1,?2,?3,?4)",
	[Q_NAMES] = "SELECT name FROM events WHERE mailbox=?1 AND key=?2 ORDER BY seq",
	[Q_SET] =
	"UPDATE messages SET state=?3, deleted=max(deleted,?4), updated=?5"
	" WHERE mailbox=?1 AND key=?2",
	[Q_PRIOR] =
	"INSERT INTO messages(mailbox,key,message_id,fingerprint,state,matched,"
	"deleted,first_seen,updated) VALUES(?1,?2,?3,?4,6,0,0,?5,?5)"
	" ON CONFLICT(mailbox,key) DO UPDATE SET message_id=?3, fingerprint=?4,"
	" state=6, updated=?5",
	[Q_FAIL] =
	"INSERT INTO messages(mailbox,key,message_id,fingerprint,state,matched,"
	"deleted,first_seen,updated,attempts,reason,subject,sender)"
	" VALUES(?1,?2,?3,?4,CASE WHEN ?9<=1 THEN 5 ELSE 4 END,0,0,?5,?5,1,?6,?7,?8)"
	" ON CONFLICT(mailbox,key) DO UPDATE SET message_id=?3, fingerprint=?4,"
	" attempts=CASE WHEN state IN (4,5) THEN attempts+1 ELSE 1 END,"
	" state=CASE WHEN (CASE WHEN state IN (4,5) THEN attempts+1 ELSE 1 END)>=?9"
	" THEN 5 ELSE 4 END, matched=0, reason=?6, subject=?7, sender=?8, updated=?5",
	[Q_FAIL_GET] = "SELECT attempts, state FROM messages WHERE mailbox=?1 AND key=?2",
	[Q_DONE] =
	"INSERT INTO messages(mailbox,key,message_id,fingerprint,rules,state,"
	"matched,deleted,first_seen,updated) VALUES(?1,?2,?3,?4,?5,3,?6,?7,?8,?8)"
	" ON CONFLICT(mailbox,key) DO UPDATE SET message_id=?3, fingerprint=?4,"
	" rules=?5, state=3, matched=?6, deleted=max(deleted,?7), reason=NULL,"
	" updated=?8",
	[Q_OTHER_GEN] =
	"SELECT 1 FROM messages WHERE mailbox=?1 AND substr(key,1,length(?2))=?2"
	" AND substr(key,1,length(?3))<>?3 LIMIT 1",
};

struct state {
	sqlite3 *db;
	int lock_fd;
	char *path;
	sqlite3_stmt *q[Q_MAX];
	int batching;          /* state_batch_begin() was called */
	int in_txn;            /* a batch transaction is open */
	int reading;           /* a batch's read transaction is open: the
				* lookups of a listing share one snapshot
				* instead of taking the WAL lock each */
	int batch_rows;
	state_precommit_fn precommit;
	void *precommit_ctx;
	/* state_preload(): one mailbox's rows, sorted by key */
	char *known_mailbox;       /* NULL: nothing preloaded */
	struct known *known;
	size_t n_known;
	char *known_keys;          /* the keys, NUL-separated */
};

/* A preloaded row as state_peek() answers it; stale once written. */
struct known {
	size_t key_off;            /* into known_keys */
	char fp[STATE_HASH_LEN + 1];       /* "": written before fingerprints */
	char rules[STATE_HASH_LEN + 1];
	int state, attempts;
	unsigned char deleted, matched, stale;
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS messages ("
	" mailbox TEXT NOT NULL, key TEXT NOT NULL, message_id TEXT,"
	" state INTEGER NOT NULL, matched INTEGER NOT NULL DEFAULT 0,"
	" deleted INTEGER NOT NULL DEFAULT 0,"
	" first_seen INTEGER NOT NULL, updated INTEGER NOT NULL,"
	" PRIMARY KEY (mailbox, key));"
	"CREATE INDEX IF NOT EXISTS messages_mid ON messages(mailbox, message_id);"
	"CREATE INDEX IF NOT EXISTS messages_state ON messages(mailbox, state);"
	"CREATE TABLE IF NOT EXISTS events ("
	" mailbox TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL,"
	" name TEXT NOT NULL, PRIMARY KEY (mailbox, key, seq));";

/* Columns added since the first schema: a database of an older version
 * gains them on open (existing rows read as "no fingerprint"). */
static const char *const added_columns[][2] = {
	{ "fingerprint", "TEXT" },
	{ "rules", "TEXT" },
	{ "attempts", "INTEGER NOT NULL DEFAULT 0" },
	{ "reason", "TEXT" },
	{ "subject", "TEXT" },
	{ "sender", "TEXT" },
};

static int batch_commit(struct state *st, struct ms_err *err);
static void known_forget(struct state *st, const char *mailbox, const char *key);
static void known_drop(struct state *st);

static int db_err(struct state *st, struct ms_err *err, const char *what)
{
	return err_set(err, MS_ERR_IO, "state database '%s': %s: %s", st->path, what,
		       sqlite3_errmsg(st->db));
}

static int exec(struct state *st, const char *sql, struct ms_err *err)
{
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_err(st, err, sql);
	return 0;
}

static int has_column(struct state *st, const char *name)
{
	sqlite3_stmt *s = NULL;
	int found = 0;

	if (sqlite3_prepare_v2(st->db, "PRAGMA table_info(messages)", -1, &s,
			       NULL) != SQLITE_OK)
		return 0;
	while (sqlite3_step(s) == SQLITE_ROW)
		if (strcmp((const char *)sqlite3_column_text(s, 1), name) == 0)
			found = 1;
	sqlite3_finalize(s);
	return found;
}

static int upgrade_schema(struct state *st, struct ms_err *err)
{
	for (size_t i = 0; i < sizeof(added_columns) / sizeof(added_columns[0]); i++) {
		char sql[160];

		if (has_column(st, added_columns[i][0]))
			continue;
		snprintf(sql, sizeof(sql), "ALTER TABLE messages ADD COLUMN %s %s",
			 added_columns[i][0], added_columns[i][1]);
		if (exec(st, sql, err))
			return -1;
	}
	return 0;
}

int state_lock(struct state **out, const char *path, struct ms_err *err)
{
	struct state *st;
	char *lockpath = NULL;

	*out = NULL;
	st = calloc(1, sizeof(*st));
	if (!st || !(st->path = strdup(path))) {
		free(st);
		return err_nomem(err);
	}
	st->lock_fd = -1;
	if (asprintf(&lockpath, "%s.lock", path) < 0) {
		lockpath = NULL;
		err_nomem(err);
		goto fail;
	}
	st->lock_fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (st->lock_fd < 0) {
		err_set(err, MS_ERR_IO, "cannot open '%s': %s", lockpath, strerror(errno));
		goto fail;
	}
	if (platform_lock_try(st->lock_fd) < 0) {
		err_set(err, MS_ERR_BUSY,
			"state database '%s' is in use by another run", path);
		goto fail;
	}
	free(lockpath);
	*out = st;
	return 0;
fail:
	free(lockpath);
	state_close(st);
	return -1;
}

int state_open_locked(struct state *st, struct ms_err *err)
{
	/* 0600 before SQLite opens it; WAL so readers never block a run */
	if (sqldb_open(&st->db, st->path, "state database",
		       SQLDB_CREATE | SQLDB_WAL, err))
		return -1;
	if (sqlite3_exec(st->db, schema, NULL, NULL, NULL) != SQLITE_OK)
		return db_err(st, err, "cannot create tables");
	if (upgrade_schema(st, err))
		return -1;
	/* a poll looks up every listed message: read the file mapped rather
	 * than through SQLite's 2 MB page cache, which a mailbox of 10,000
	 * messages (4 MB of rows) outgrows and then reads page by page */
	if (exec(st, "PRAGMA mmap_size=1073741824", err))
		return -1;
	for (int i = 0; i < Q_MAX; i++)
		if (sqlite3_prepare_v3(st->db, sql_of[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &st->q[i], NULL) != SQLITE_OK)
			return db_err(st, err, "cannot prepare statement");
	return 0;
}

int state_open(struct state **out, const char *path, struct ms_err *err)
{
	if (state_lock(out, path, err))
		return -1;
	if (state_open_locked(*out, err)) {
		state_close(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

void state_close(struct state *st)
{
	if (!st)
		return;
	if (st->db && (st->in_txn || st->reading)) {
		struct ms_err e = MS_ERR_INIT;

		if (batch_commit(st, &e))
			sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	}
	for (int i = 0; i < Q_MAX; i++)
		sqlite3_finalize(st->q[i]);
	if (st->db)
		sqlite3_close(st->db);
	known_drop(st);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	free(st->path);
	free(st);
}

/* A cached statement, reset and unbound. */
static sqlite3_stmt *q(struct state *st, enum stmt_id id)
{
	sqlite3_reset(st->q[id]);
	sqlite3_clear_bindings(st->q[id]);
	return st->q[id];
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
	sqlite3_bind_text(s, i, v ? v : "", -1, SQLITE_STATIC);
}

/* ---- batches ----------------------------------------------------------- */

int state_batch_begin(struct state *st, struct ms_err *err)
{
	st->batching = 1;
	return 0;
}

void state_set_precommit(struct state *st, state_precommit_fn fn, void *ctx)
{
	st->precommit = fn;
	st->precommit_ctx = ctx;
}

/* The read transaction ends before anything is written: a write never
 * joins it (it is begun on its own, IMMEDIATE, and committed as before). */
static int read_end(struct state *st, struct ms_err *err)
{
	if (!st->reading)
		return 0;
	st->reading = 0;
	return exec(st, "COMMIT", err);
}

static int batch_commit(struct state *st, struct ms_err *err)
{
	if (st->reading)
		return read_end(st, err);
	if (!st->in_txn)
		return 0;
	st->in_txn = 0;
	st->batch_rows = 0;
	if (st->precommit && st->precommit(st->precommit_ctx, err)) {
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		db_err(st, err, "cannot commit");
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

int state_commit(struct state *st, struct ms_err *err)
{
	return batch_commit(st, err);
}

int state_batch_end(struct state *st, struct ms_err *err)
{
	st->batching = 0;
	return batch_commit(st, err);
}

/* Before a write: open the batch's transaction when batching. */
static int write_begin(struct state *st, struct ms_err *err)
{
	if (!st->batching || st->in_txn)
		return 0;
	if (read_end(st, err) || exec(st, "BEGIN IMMEDIATE", err))
		return -1;
	st->in_txn = 1;
	return 0;
}

/* After a write: commit a full batch. */
static int write_end(struct state *st, struct ms_err *err)
{
	if (st->in_txn && ++st->batch_rows >= BATCH_ROWS)
		return batch_commit(st, err);
	return 0;
}

/* ---- reads ----------------------------------------------------------- */

/* Before a lookup in a batch: open its read transaction unless one is
 * open.  Outside a transaction SQLite takes and drops the WAL read lock
 * and checks the files at every statement (2 fcntl and an fstat a
 * message: a third of a steady-state poll's system calls). */
static int read_begin(struct state *st, struct ms_err *err)
{
	if (!st->batching || st->in_txn || st->reading)
		return 0;
	if (exec(st, "BEGIN", err))
		return -1;
	st->reading = 1;
	return 0;
}

/* message_id NULL: not known yet (state_peek()), bound as SQL NULL */
static int get_row(struct state *st, const char *mailbox, const char *key,
		   const char *message_id, const char *fingerprint,
		   struct state_row *row, struct ms_err *err)
{
	sqlite3_stmt *s;
	int rc;

	memset(row, 0, sizeof(*row));
	if (read_begin(st, err))
		return -1;
	s = q(st, Q_GET);
	bind_text(s, 1, mailbox);
	bind_text(s, 2, key);
	if (message_id)
		bind_text(s, 3, message_id);
	else
		sqlite3_bind_null(s, 3);
	bind_text(s, 4, fingerprint);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const char *r = (const char *)sqlite3_column_text(s, 4);

		row->state = (enum msg_state)sqlite3_column_int(s, 0);
		row->deleted = sqlite3_column_int(s, 1);
		row->matched = sqlite3_column_int(s, 2);
		row->attempts = sqlite3_column_int(s, 3);
		snprintf(row->rules, sizeof(row->rules), "%s", r ? r : "");
		row->same = sqlite3_column_int(s, 5);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_err(st, err, "lookup failed");
	return 0;
}

int state_get(struct state *st, const char *mailbox, const char *key,
	      const char *message_id, const char *fingerprint,
	      struct state_row *row, struct ms_err *err)
{
	return get_row(st, mailbox, key, message_id ? message_id : "", fingerprint,
		       row, err);
}

/* ---- the preloaded rows ------------------------------------------------ */

int state_thread_safe(void)
{
	return sqlite3_threadsafe() != 0;
}

static void known_drop(struct state *st)
{
	free(st->known_mailbox);
	free(st->known);
	free(st->known_keys);
	st->known_mailbox = NULL;
	st->known = NULL;
	st->known_keys = NULL;
	st->n_known = 0;
}

static struct known *known_find(struct state *st, const char *mailbox,
				const char *key)
{
	size_t lo = 0, hi = st->n_known;

	if (!st->known_mailbox || strcmp(st->known_mailbox, mailbox) != 0)
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(key, st->known_keys + st->known[mid].key_off);

		if (c == 0)
			return &st->known[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* Every write of a row passes here first: from then on its lookups go to
 * the database, which has the write. */
static void known_forget(struct state *st, const char *mailbox, const char *key)
{
	struct known *k = known_find(st, mailbox, key);

	if (k)
		k->stale = 1;
}

static int copy_hash(char *dst, const unsigned char *src)
{
	size_t n = src ? strlen((const char *)src) : 0;

	if (n > STATE_HASH_LEN)
		return -1;
	memcpy(dst, src ? (const char *)src : "", n);
	dst[n] = '\0';
	return 0;
}

int state_preload(struct state *st, const char *mailbox, size_t cap,
		  struct ms_err *err)
{
	sqlite3_stmt *s = NULL;
	struct buf keys;
	size_t n = 0, alloc = 0;
	int rc;

	known_drop(st);
	buf_init(&keys, BUF_DEFAULT_CAP);
	if (sqlite3_prepare_v2(st->db,
			       "SELECT key, state, deleted, matched, attempts,"
			       " rules, fingerprint FROM messages WHERE mailbox=?1"
			       " ORDER BY key", -1, &s, NULL) != SQLITE_OK)
		return db_err(st, err, "cannot prepare statement");
	bind_text(s, 1, mailbox);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(s, 0);
		struct known *k;

		if (n == cap) {
			/* a mailbox this big is looked up row by row */
			rc = SQLITE_DONE;
			n = 0;
			break;
		}
		if (n == alloc && MEM_GROW(st->known, alloc, n + 1, err))
			goto nomem;
		k = &st->known[n];
		memset(k, 0, sizeof(*k));
		k->key_off = keys.len;
		if (buf_append(&keys, key ? key : "", strlen(key ? key : "") + 1, err))
			goto nomem;
		/* BINARY collation is strcmp's order; a key out of it (or a
		 * hash longer than ours) is left to the database */
		if (n && strcmp(keys.data + st->known[n - 1].key_off,
				keys.data + k->key_off) >= 0) {
			rc = SQLITE_DONE;
			n = 0;
			break;
		}
		k->state = sqlite3_column_int(s, 1);
		k->deleted = (unsigned char)(sqlite3_column_int(s, 2) != 0);
		k->matched = (unsigned char)(sqlite3_column_int(s, 3) != 0);
		k->attempts = sqlite3_column_int(s, 4);
		if (copy_hash(k->rules, sqlite3_column_text(s, 5)) ||
		    copy_hash(k->fp, sqlite3_column_text(s, 6)))
			k->stale = 1;
		n++;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		buf_release(&keys);
		known_drop(st);
		return db_err(st, err, "cannot read the mailbox's rows");
	}
	if (n == 0) {
		buf_release(&keys);
		known_drop(st);
		return 0;
	}
	if (!(st->known_mailbox = strdup(mailbox))) {
		buf_release(&keys);
		known_drop(st);
		return err_nomem(err);
	}
	st->n_known = n;
	st->known_keys = buf_detach(&keys, NULL);
	return 0;
nomem:
	sqlite3_finalize(s);
	buf_release(&keys);
	known_drop(st);
	return -1;
}

int state_peek(struct state *st, const char *mailbox, const char *key,
	       const char *fingerprint, struct state_row *row,
	       struct ms_err *err)
{
	const struct known *k = known_find(st, mailbox, key);

	if (!k || k->stale)
		return get_row(st, mailbox, key, NULL, fingerprint, row, err);
	/* what Q_GET answers with no Message-ID */
	memset(row, 0, sizeof(*row));
	row->state = (enum msg_state)k->state;
	row->deleted = k->deleted;
	row->matched = k->matched;
	row->attempts = k->attempts;
	memcpy(row->rules, k->rules, sizeof(row->rules));
	row->same = !k->fp[0] ? -1 : strcmp(k->fp, fingerprint ? fingerprint : "") == 0;
	return 0;
}

int state_find_moved(struct state *st, const char *mailbox, const char *family,
		     const char *current, const char *message_id,
		     const char *fingerprint, enum msg_state *out,
		     struct ms_err *err)
{
	sqlite3_stmt *s;
	int rc;

	*out = MSG_UNKNOWN;
	if (!message_id || !*message_id || !fingerprint || !*fingerprint)
		return 0;
	s = q(st, Q_MOVED);
	bind_text(s, 1, mailbox);
	bind_text(s, 2, message_id);
	bind_text(s, 3, fingerprint);
	bind_text(s, 4, family);
	bind_text(s, 5, current);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
		*out = (enum msg_state)sqlite3_column_int(s, 0);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_err(st, err, "lookup failed");
	return 0;
}

int state_mailbox_empty(struct state *st, const char *mailbox, int *empty,
			struct ms_err *err)
{
	sqlite3_stmt *s = q(st, Q_EMPTY);
	int rc;

	bind_text(s, 1, mailbox);
	rc = sqlite3_step(s);
	*empty = rc != SQLITE_ROW;
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_err(st, err, "lookup failed");
	return 0;
}

int state_staged_names(struct state *st, const char *mailbox, const char *key,
		       char ***names, size_t *n, struct ms_err *err)
{
	sqlite3_stmt *s = q(st, Q_NAMES);
	char **v = NULL;
	size_t cnt = 0;
	int rc;

	*names = NULL;
	*n = 0;
	bind_text(s, 1, mailbox);
	bind_text(s, 2, key);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		char **nv = realloc(v, (cnt + 1) * sizeof(*v));
		if (!nv)
			goto nomem;
		v = nv;
		v[cnt] = strdup((const char *)sqlite3_column_text(s, 0));
		if (!v[cnt])
			goto nomem;
		cnt++;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		for (size_t i = 0; i < cnt; i++)
			free(v[i]);
		free(v);
		return db_err(st, err, "cannot read events");
	}
	*names = v;
	*n = cnt;
	return 0;
nomem:
	sqlite3_reset(s);
	for (size_t i = 0; i < cnt; i++)
		free(v[i]);
	free(v);
	return err_nomem(err);
}

/* ---- writes ----------------------------------------------------------- */

static int step_done(struct state *st, sqlite3_stmt *s, struct ms_err *err,
		     const char *what)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return db_err(st, err, what);
	return 0;
}

int state_stage(struct state *st, const char *mailbox, const char *key,
		const char *message_id, const char *fingerprint,
		const char *rules, const char *const *names, size_t n,
		int matched, struct ms_err *err)
{
	sqlite3_stmt *s;
	long now = (long)time(NULL);

	/* inside an open batch, or a transaction of its own: committed
	 * below either way, before any of the files is renamed into MSGIN */
	known_forget(st, mailbox, key);
	if (!st->in_txn && (read_end(st, err) || exec(st, "BEGIN IMMEDIATE", err)))
		return -1;
	st->in_txn = 1;
	s = q(st, Q_UPSERT_STAGE);
	bind_text(s, 1, mailbox);
	bind_text(s, 2, key);
	bind_text(s, 3, message_id);
	bind_text(s, 4, fingerprint);
	bind_text(s, 5, rules);
	sqlite3_bind_int(s, 6, n ? MSG_STAGED : MSG_DELIVERED);
	sqlite3_bind_int(s, 7, matched);
	sqlite3_bind_int64(s, 8, now);
	if (step_done(st, s, err, "cannot record message"))
		goto fail;
	s = q(st, Q_DEL_EVENTS);
	bind_text(s, 1, mailbox);
	bind_text(s, 2, key);
	if (step_done(st, s, err, "cannot record events"))
		goto fail;
	for (size_t i = 0; i < n; i++) {
		s = q(st, Q_ADD_EVENT);
		bind_text(s, 1, mailbox);
		bind_text(s, 2, key);
		sqlite3_bind_int64(s, 3, (sqlite3_int64)i);
		bind_text(s, 4, names[i]);
		if (step_done(st, s, err, "cannot record events"))
			goto fail;
	}
	if (st->batching)
		return write_end(st, err);   /* committed with its batch */
	return batch_commit(st, err);
fail:
	st->in_txn = 0;
	st->batch_rows = 0;
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int state_done(struct state *st, const char *mailbox, const char *key,
	       const char *message_id, const char *fingerprint, const char *rules,
	       int matched, int deleted, struct ms_err *err)
{
	sqlite3_stmt *s;

	known_forget(st, mailbox, key);
	if (write_begin(st, err))
		return -1;
	s = q(st, Q_DONE);
	bind_text(s, 1, mailbox);
	bind_text(s, 2, key);
	bind_text(s, 3, message_id);
	bind_text(s, 4, fingerprint);
	bind_text(s, 5, rules);
	sqlite3_bind_int(s, 6, matched);
	sqlite3_bind_int(s, 7, deleted);
	sqlite3_bind_int64(s, 8, (sqlite3_int64)time(NULL));
	if (step_done(st, s, err, "cannot record message"))
		return -1;
	return write_end(st, err);
}

int state_has_other_generation(struct state *st, const char *mailbox,
			       const char *family, const char *current, int *yes,
			       struct ms_err *err)
{
	sqlite3_stmt *s = q(st, Q_OTHER_GEN);
	int rc;

	bind_text(s, 1, mailbox);
	bind_text(s, 2, family);
	bind_text(s, 3, current);
	rc = sqlite3_step(s);
	*yes = rc == SQLITE_ROW;
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_err(st, err, "lookup failed");
	return 0;
}

int state_set(struct state *st, const char *mailbox, const char *key,
	      enum msg_state state, int deleted, struct ms_err *err)
{
	sqlite3_stmt *s;

	known_forget(st, mailbox, key);
	if (write_begin(st, err))
		return -1;
	s = q(st, Q_SET);
	bind_text(s, 1, mailbox);
	bind_text(s, 2, key);
	sqlite3_bind_int(s, 3, state);
	sqlite3_bind_int(s, 4, deleted);
	sqlite3_bind_int64(s, 5, (sqlite3_int64)time(NULL));
	if (step_done(st, s, err, "cannot update message"))
		return -1;
	return write_end(st, err);
}

int state_prior(struct state *st, const char *mailbox, const char *key,
		const char *message_id, const char *fingerprint,
		struct ms_err *err)
{
	sqlite3_stmt *s;

	known_forget(st, mailbox, key);
	if (write_begin(st, err))
		return -1;
	s = q(st, Q_PRIOR);
	bind_text(s, 1, mailbox);
	bind_text(s, 2, key);
	bind_text(s, 3, message_id);
	bind_text(s, 4, fingerprint);
	sqlite3_bind_int64(s, 5, (sqlite3_int64)time(NULL));
	if (step_done(st, s, err, "cannot record message"))
		return -1;
	return write_end(st, err);
}

int state_fail(struct state *st, const char *mailbox, const char *key,
	       const struct state_failure *f, int *attempts,
	       enum msg_state *out, struct ms_err *err)
{
	sqlite3_stmt *s;
	int rc;

	*attempts = 0;
	*out = MSG_FAILED;
	known_forget(st, mailbox, key);
	if (write_begin(st, err))
		return -1;
	s = q(st, Q_FAIL);
	bind_text(s, 1, mailbox);
	bind_text(s, 2, key);
	bind_text(s, 3, f->message_id);
	bind_text(s, 4, f->fingerprint);
	sqlite3_bind_int64(s, 5, (sqlite3_int64)time(NULL));
	bind_text(s, 6, f->reason);
	bind_text(s, 7, f->subject);
	bind_text(s, 8, f->sender);
	sqlite3_bind_int(s, 9, f->max_attempts > 0 ? f->max_attempts : 1);
	if (step_done(st, s, err, "cannot record a failed message"))
		return -1;
	s = q(st, Q_FAIL_GET);
	bind_text(s, 1, mailbox);
	bind_text(s, 2, key);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*attempts = sqlite3_column_int(s, 0);
		*out = (enum msg_state)sqlite3_column_int(s, 1);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW)
		return db_err(st, err, "cannot read a failed message");
	return write_end(st, err);
}

int state_failed_foreach(struct state *st, state_failed_fn fn, void *ctx,
			 struct ms_err *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (sqlite3_prepare_v2(st->db,
			       "SELECT mailbox, key, coalesce(subject,''),"
			       " coalesce(sender,''), coalesce(reason,''), state,"
			       " attempts, first_seen, updated FROM messages"
			       " WHERE state IN (4,5) ORDER BY first_seen, key",
			       -1, &s, NULL) != SQLITE_OK)
		return db_err(st, err, "cannot prepare statement");
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct state_failed_row r;

		r.mailbox = (const char *)sqlite3_column_text(s, 0);
		r.key = (const char *)sqlite3_column_text(s, 1);
		r.subject = (const char *)sqlite3_column_text(s, 2);
		r.sender = (const char *)sqlite3_column_text(s, 3);
		r.reason = (const char *)sqlite3_column_text(s, 4);
		r.state = (enum msg_state)sqlite3_column_int(s, 5);
		r.attempts = sqlite3_column_int(s, 6);
		r.first_seen = (time_t)sqlite3_column_int64(s, 7);
		r.updated = (time_t)sqlite3_column_int64(s, 8);
		if (fn(&r, ctx)) {
			sqlite3_finalize(s);
			return -1;
		}
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return db_err(st, err, "cannot list failed messages");
	return 0;
}

int state_retry_quarantined(struct state *st, const char *mailbox, long *n,
			    struct ms_err *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	*n = 0;
	known_drop(st);       /* rows of the whole mailbox change */
	if (sqlite3_prepare_v2(st->db,
			       "UPDATE messages SET state=4, attempts=0"
			       " WHERE mailbox=?1 AND state=5", -1, &s, NULL) != SQLITE_OK)
		return db_err(st, err, "cannot prepare statement");
	bind_text(s, 1, mailbox);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return db_err(st, err, "cannot release quarantined messages");
	*n = sqlite3_changes(st->db);
	return 0;
}

int state_explain_moved(struct state *st, char *out, size_t outsz,
			struct ms_err *err)
{
	sqlite3_stmt *s = NULL;
	char *sql = NULL;
	size_t used = 0;
	int rc;

	if (outsz)
		out[0] = '\0';
	if (asprintf(&sql, "EXPLAIN QUERY PLAN %s", sql_of[Q_MOVED]) < 0)
		return err_nomem(err);
	rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
	free(sql);
	if (rc != SQLITE_OK)
		return db_err(st, err, "cannot explain");
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *d = (const char *)sqlite3_column_text(s, 3);
		int w = snprintf(out + used, outsz > used ? outsz - used : 0, "%s\n",
				 d ? d : "");
		if (w > 0)
			used += (size_t)w;
	}
	sqlite3_finalize(s);
	return 0;
}
