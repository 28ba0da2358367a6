/*
 * sqldb.c - opening a SQLite database with our pragmas (see sqldb.h).
 */
#include "base/sqldb.h"
#include "base/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

int sqldb_fail(sqlite3 *db, const char *what, const char *path,
	       const char *doing, struct ms_err *err)
{
	int code = db ? sqlite3_errcode(db) : SQLITE_NOMEM;
	const char *msg = db ? sqlite3_errmsg(db) : "out of memory";
	enum ms_errcode ec = code == SQLITE_BUSY || code == SQLITE_LOCKED ?
			     MS_ERR_BUSY : code == SQLITE_NOMEM ? MS_ERR_NOMEM : MS_ERR_IO;

	if (path)
		return err_set(err, ec, "%s '%s': %s: %s", what, path, doing, msg);
	return err_set(err, ec, "%s: %s: %s", what, doing, msg);
}

int sqldb_exec(sqlite3 *db, const char *sql, const char *what,
	       const char *path, struct ms_err *err)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return sqldb_fail(db, what, path, "query failed", err);
	return 0;
}

/* Creates the file 0600 before SQLite opens it, and takes away what
 * others could read of an existing one: our databases hold sealed
 * secrets and the names of every mailbox. */
static int create_private(const char *path, const char *what,
			  struct ms_err *err)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0)
		return err_set(err, MS_ERR_IO, "cannot open %s '%s': %s", what, path,
			       strerror(errno));
	(void)fchmod(fd, 0600);
	close(fd);
	return 0;
}

int sqldb_open(sqlite3 **db, const char *path, const char *what,
	       unsigned flags, struct ms_err *err)
{
	int oflags;
	const char *pragmas;

	*db = NULL;
	if (flags & SQLDB_CREATE) {
		if (create_private(path, what, err))
			return -1;
	} else if (access(path, F_OK) != 0 && errno == ENOENT) {
		return 1;
	}
	oflags = flags & SQLDB_READONLY ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
	if (flags & SQLDB_ONE_THREAD)
		oflags |= SQLITE_OPEN_NOMUTEX;
	if (sqlite3_open_v2(path, db, oflags, NULL) != SQLITE_OK) {
		err_set(err, MS_ERR_IO, "cannot open %s '%s': %s", what, path,
			*db ? sqlite3_errmsg(*db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(*db, flags & SQLDB_EXCLUSIVE ? 0 : SQLDB_BUSY_MS);
	if (flags & SQLDB_READONLY)
		return 0;
	if (flags & SQLDB_EXCLUSIVE)
		pragmas = "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=DELETE;";
	else if (flags & SQLDB_WAL)
		pragmas = "PRAGMA journal_mode=WAL;";
	else
		pragmas = "";
	if (sqldb_exec(*db, pragmas, what, path, err) ||
	    sqldb_exec(*db, "PRAGMA synchronous=FULL;", what, path, err) ||
	    ((flags & SQLDB_SECURE_DELETE) &&
	     sqldb_exec(*db, "PRAGMA secure_delete=ON;", what, path, err)))
		goto fail;
	return 0;
fail:
	sqlite3_close(*db);
	*db = NULL;
	return -1;
}

int sqldb_open_scratch(sqlite3 **db, struct ms_err *err)
{
	/* "": a private temporary file, deleted when closed */
	if (sqlite3_open_v2("", db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    sqldb_exec(*db, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
		       "PRAGMA temp_store=FILE; PRAGMA cache_size=-8192;",
		       "temporary database", NULL, err)) {
		if (*db)
			sqldb_fail(*db, "temporary database", NULL, "cannot open", err);
		else
			err_nomem(err);
		sqlite3_close(*db);
		*db = NULL;
		return -1;
	}
	return 0;
}

void sqldb_close(sqlite3 *db)
{
	if (db)
		sqlite3_close(db);
}
