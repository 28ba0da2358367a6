#include "state.h"

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

struct state {
	sqlite3 *db;
	int lock_fd;
	char *path;
};

static const char schema[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=FULL;"
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

static int db_err(struct state *st, struct ms_err *err, const char *what)
{
	return err_set(err, MS_ERR_IO, "state database '%s': %s: %s", st->path, what,
		       sqlite3_errmsg(st->db));
}

int state_open(struct state **out, const char *path, struct ms_err *err)
{
	struct state *st;
	char *lockpath = NULL;
	int fd;

	*out = NULL;
	st = calloc(1, sizeof(*st));
	if (!st || !(st->path = strdup(path))) {
		free(st);
		return err_set(err, MS_ERR_NOMEM, "out of memory");
	}
	st->lock_fd = -1;
	if (asprintf(&lockpath, "%s.lock", path) < 0) {
		lockpath = NULL;
		err_set(err, MS_ERR_NOMEM, "out of memory");
		goto fail;
	}
	st->lock_fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (st->lock_fd < 0) {
		err_set(err, MS_ERR_IO, "cannot open '%s': %s", lockpath, strerror(errno));
		goto fail;
	}
	if (flock(st->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		err_set(err, MS_ERR_BUSY,
			"state database '%s' is in use by another run", path);
		goto fail;
	}
	/* create 0600 before SQLite opens it, so secrets-adjacent metadata is
	 * never world-readable even for a moment */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		err_set(err, MS_ERR_IO, "cannot create '%s': %s", path, strerror(errno));
		goto fail;
	}
	close(fd);
	if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		db_err(st, err, "cannot open");
		goto fail;
	}
	sqlite3_busy_timeout(st->db, 10000);
	if (sqlite3_exec(st->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
		db_err(st, err, "cannot create tables");
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

void state_close(struct state *st)
{
	if (!st)
		return;
	if (st->db)
		sqlite3_close(st->db);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	free(st->path);
	free(st);
}

static int prepare(struct state *st, sqlite3_stmt **s, const char *sql,
		   struct ms_err *err)
{
	if (sqlite3_prepare_v2(st->db, sql, -1, s, NULL) != SQLITE_OK)
		return db_err(st, err, "cannot prepare statement");
	return 0;
}

int state_lookup(struct state *st, const char *mailbox, const char *key,
		 const char *message_id, enum msg_state *out, struct ms_err *err)
{
	int deleted, matched;

	return state_lookup_ex(st, mailbox, key, message_id, out, &deleted,
			       &matched, err);
}

int state_lookup_ex(struct state *st, const char *mailbox, const char *key,
		    const char *message_id, enum msg_state *out, int *deleted,
		    int *matched, struct ms_err *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	*out = MSG_UNKNOWN;
	*deleted = 0;
	*matched = 0;
	if (prepare(st, &s, "SELECT state, deleted, matched FROM messages"
			    " WHERE mailbox=?1 AND key=?2", err))
		return -1;
	sqlite3_bind_text(s, 1, mailbox, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*out = (enum msg_state)sqlite3_column_int(s, 0);
		*deleted = sqlite3_column_int(s, 1);
		*matched = sqlite3_column_int(s, 2);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_err(st, err, "lookup failed");
	if (*out != MSG_UNKNOWN || !message_id || !*message_id)
		return 0;
	/* fallback: the same message under another key (renumbered server) */
	if (prepare(st, &s, "SELECT max(state) FROM messages WHERE mailbox=?1 AND"
			    " message_id=?2 AND state>=2", err))
		return -1;
	sqlite3_bind_text(s, 1, mailbox, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, message_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
		*out = (enum msg_state)sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_err(st, err, "lookup failed");
	return 0;
}

static int exec(struct state *st, const char *sql, struct ms_err *err)
{
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_err(st, err, sql);
	return 0;
}

int state_stage(struct state *st, const char *mailbox, const char *key,
		const char *message_id, const char *const *names, size_t n,
		int matched, struct ms_err *err)
{
	sqlite3_stmt *s = NULL;
	long now = (long)time(NULL);

	if (exec(st, "BEGIN IMMEDIATE", err))
		return -1;
	if (prepare(st, &s, "INSERT OR REPLACE INTO messages(mailbox,key,message_id,"
			    "state,matched,deleted,first_seen,updated)"
			    " VALUES(?1,?2,?3,?4,?5,0,?6,?6)", err))
		goto fail;
	sqlite3_bind_text(s, 1, mailbox, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, message_id ? message_id : "", -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 4, n ? MSG_STAGED : MSG_DELIVERED);
	sqlite3_bind_int(s, 5, matched);
	sqlite3_bind_int64(s, 6, now);
	if (sqlite3_step(s) != SQLITE_DONE) {
		db_err(st, err, "cannot record message");
		goto fail;
	}
	sqlite3_finalize(s);
	s = NULL;
	if (prepare(st, &s, "DELETE FROM events WHERE mailbox=?1 AND key=?2", err))
		goto fail;
	sqlite3_bind_text(s, 1, mailbox, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE) {
		db_err(st, err, "cannot record events");
		goto fail;
	}
	sqlite3_finalize(s);
	s = NULL;
	if (prepare(st, &s, "INSERT INTO events(mailbox,key,seq,name) VALUES(?1,?2,?3,?4)",
		    err))
		goto fail;
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(s);
		sqlite3_bind_text(s, 1, mailbox, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, (sqlite3_int64)i);
		sqlite3_bind_text(s, 4, names[i], -1, SQLITE_STATIC);
		if (sqlite3_step(s) != SQLITE_DONE) {
			db_err(st, err, "cannot record events");
			goto fail;
		}
	}
	sqlite3_finalize(s);
	s = NULL;
	if (exec(st, "COMMIT", err))
		goto fail;
	return 0;
fail:
	sqlite3_finalize(s);
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int state_staged_names(struct state *st, const char *mailbox, const char *key,
		       char ***names, size_t *n, struct ms_err *err)
{
	sqlite3_stmt *s = NULL;
	char **v = NULL;
	size_t cnt = 0;
	int rc;

	*names = NULL;
	*n = 0;
	if (prepare(st, &s, "SELECT name FROM events WHERE mailbox=?1 AND key=?2"
			    " ORDER BY seq", err))
		return -1;
	sqlite3_bind_text(s, 1, mailbox, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
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
	sqlite3_finalize(s);
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
	sqlite3_finalize(s);
	for (size_t i = 0; i < cnt; i++)
		free(v[i]);
	free(v);
	return err_set(err, MS_ERR_NOMEM, "out of memory");
}

int state_set(struct state *st, const char *mailbox, const char *key,
	      enum msg_state state, int deleted, struct ms_err *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (prepare(st, &s, "UPDATE messages SET state=?3, deleted=max(deleted,?4),"
			    " updated=?5 WHERE mailbox=?1 AND key=?2", err))
		return -1;
	sqlite3_bind_text(s, 1, mailbox, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, state);
	sqlite3_bind_int(s, 4, deleted);
	sqlite3_bind_int64(s, 5, (sqlite3_int64)time(NULL));
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return db_err(st, err, "cannot update message");
	return 0;
}

int state_unfinished(struct state *st, const char *mailbox, state_key_fn fn,
		     void *ctx, struct ms_err *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (prepare(st, &s, "SELECT key, state FROM messages WHERE mailbox=?1 AND"
			    " state IN (1,2) ORDER BY first_seen", err))
		return -1;
	sqlite3_bind_text(s, 1, mailbox, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (fn((const char *)sqlite3_column_text(s, 0),
		       (enum msg_state)sqlite3_column_int(s, 1), ctx)) {
			sqlite3_finalize(s);
			return -1;
		}
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return db_err(st, err, "cannot list unfinished messages");
	return 0;
}

int state_count(struct state *st, const char *mailbox, enum msg_state state,
		long *n, struct ms_err *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	*n = 0;
	if (prepare(st, &s, "SELECT count(*) FROM messages WHERE mailbox=?1 AND state=?2",
		    err))
		return -1;
	sqlite3_bind_text(s, 1, mailbox, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, state);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : db_err(st, err, "cannot count");
}
