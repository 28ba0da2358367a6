/*
 * sqldb.h - the one way this library opens a SQLite database.
 *
 * Every database is opened by sqldb_open() with a small set of flags that
 * say what kind of file it is; the pragmas follow from that, not from
 * each caller's taste:
 *
 *   - synchronous=FULL on every file we write: a commit is on disk when
 *     it returns (SQLite's default too, written down so a build with
 *     another default cannot weaken it).
 *   - SQLDB_WAL (the connector's state database): readers (verify, an
 *     operator's sqlite3) never block the connector's writes.
 *   - SQLDB_EXCLUSIVE (migrate's state database): locking_mode=EXCLUSIVE,
 *     journal_mode=DELETE, no busy wait: the whole command holds the
 *     file, a second migrate process is told "in use" at once instead of
 *     interleaving its steps with ours.
 *   - SQLDB_SECURE_DELETE (the token cache): deleted tokens are zeroed
 *     in the file, not just unlinked from the b-tree.
 *   - SQLDB_ONE_THREAD: the connection is used by one thread only, so
 *     SQLite's per-call mutex is skipped (token cache, audit spill).
 *   - otherwise: one busy timeout, SQLDB_BUSY_MS, for every database
 *     another process may hold for a moment (was 10, 15 and 30 s).
 *   - No schema here declares a foreign key, so foreign_keys stays off.
 *
 * sqldb_open_scratch() opens the audit's private temporary database:
 * journal and sync off (it is thrown away on close, a crash loses
 * nothing), temp_store=FILE and a small cache, so a fleet of any size
 * costs disk, not memory.
 *
 * Errors name the file ("cannot open state database 'x.db': ..."); what
 * is the caller's name for the file ("state database", "token cache").
 * A busy or locked database is MS_ERR_BUSY (a scheduler retries), the
 * rest MS_ERR_IO.
 *
 * Ownership: *db belongs to the caller, closed with sqldb_close().
 * Strings are borrowed.
 */
#ifndef MS_SQLDB_H
#define MS_SQLDB_H

#include "base/err.h"

struct sqlite3;

#define SQLDB_BUSY_MS 15000

#define SQLDB_READONLY      0x01  /* an existing file, read only */
#define SQLDB_CREATE        0x02  /* create a missing file, mode 0600
				   * (SQLite would use 0644, and gives its
				   * journal the database's mode) */
#define SQLDB_WAL           0x04
#define SQLDB_EXCLUSIVE     0x08
#define SQLDB_SECURE_DELETE 0x10
#define SQLDB_ONE_THREAD    0x20

/* Opens path.  Returns 0, -1 with err set, or 1 (err untouched, *db
 * NULL) when the file does not exist and SQLDB_CREATE was not given. */
int sqldb_open(struct sqlite3 **db, const char *path, const char *what,
	       unsigned flags, struct ms_err *err);

int sqldb_open_scratch(struct sqlite3 **db, struct ms_err *err);

/* Sets err from the connection's last error: "WHAT 'PATH': DOING: msg"
 * (no "PATH" part when path is NULL).  Always returns -1. */
int sqldb_fail(struct sqlite3 *db, const char *what, const char *path,
	       const char *doing, struct ms_err *err);

/* sqlite3_exec() of sql (one or more statements) with sqldb_fail() on
 * failure. */
int sqldb_exec(struct sqlite3 *db, const char *sql, const char *what,
	       const char *path, struct ms_err *err);

/* NULL is a no-op. */
void sqldb_close(struct sqlite3 *db);

#endif
