/* test_sqldb.c - base/sqldb: one way to open a database, with our pragmas. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "tap.h"
#include "base/err.h"
#include "base/sqldb.h"

static char *pragma(sqlite3 *db, const char *name)
{
	static char out[64];
	char sql[64];
	sqlite3_stmt *st = NULL;

	snprintf(sql, sizeof(sql), "PRAGMA %s", name);
	out[0] = '\0';
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		snprintf(out, sizeof(out), "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return out;
}

int main(void)
{
	struct ms_err err = MS_ERR_INIT;
	char dir[] = "/tmp/test_sqldb.XXXXXX", path[128], other[128];
	sqlite3 *db = NULL, *db2 = NULL;
	struct stat st;

	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/a.db", dir);
	snprintf(other, sizeof(other), "%s/missing.db", dir);

	is_int(sqldb_open(&db, other, "state database", 0, &err), 1,
	       "a missing file without SQLDB_CREATE is 1");
	ok(db == NULL && err.code == MS_OK, "with no handle and no error");
	ok(access(other, F_OK) != 0, "and the file is not created");

	umask(022);
	is_int(sqldb_open(&db, path, "state database", SQLDB_CREATE | SQLDB_WAL, &err), 0,
	       "SQLDB_CREATE opens a new file");
	memset(&st, 0, sizeof(st));
	(void)stat(path, &st);
	ok((st.st_mode & 0777) == 0600, "mode 0600 (0%o)",
	   (unsigned)(st.st_mode & 0777));
	is(pragma(db, "journal_mode"), "wal", "SQLDB_WAL: journal_mode=wal");
	is(pragma(db, "synchronous"), "2", "synchronous=FULL");
	is(pragma(db, "foreign_keys"), "0", "foreign_keys off (no schema uses them)");
	is_int(sqldb_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES(1);",
			  "state database", path, &err), 0, "sqldb_exec runs statements");
	is_int(sqldb_exec(db, "SELECT * FROM nowhere", "state database", path, &err), -1,
	       "a bad statement fails");
	ok(strstr(err.msg, "state database '") && strstr(err.msg, "a.db': query failed: no such table"),
	   "naming the file: %s", err.msg);
	is_int(err.code, MS_ERR_IO, "as MS_ERR_IO");
	sqldb_close(db);
	err_clear(&err);

	chmod(path, 0644);
	is_int(sqldb_open(&db, path, "state database", SQLDB_CREATE | SQLDB_SECURE_DELETE,
			  &err), 0, "an existing file opens with SQLDB_CREATE");
	memset(&st, 0, sizeof(st));
	(void)stat(path, &st);
	ok((st.st_mode & 0777) == 0600,
	   "and others lose access to it (0%o)", (unsigned)(st.st_mode & 0777));
	is(pragma(db, "secure_delete"), "1", "SQLDB_SECURE_DELETE: secure_delete on");
	sqldb_close(db);

	snprintf(path, sizeof(path), "%s/x.db", dir);
	is_int(sqldb_open(&db, path, "state database", SQLDB_CREATE | SQLDB_EXCLUSIVE, &err),
	       0, "SQLDB_EXCLUSIVE opens");
	is(pragma(db, "locking_mode"), "exclusive", "locking_mode=exclusive");
	is(pragma(db, "journal_mode"), "delete", "journal_mode=delete");
	ok(sqldb_exec(db, "BEGIN EXCLUSIVE; CREATE TABLE t(x); COMMIT;", "state database",
		      path, &err) == 0, "and takes the lock");
	is_int(sqldb_open(&db2, path, "state database", SQLDB_EXCLUSIVE, &err), -1,
	       "a second exclusive open fails");
	is_int(err.code, MS_ERR_BUSY, "at once, as MS_ERR_BUSY: %s", err.msg);
	ok(db2 == NULL, "leaving no handle");
	err_clear(&err);
	sqldb_close(db);

	is_int(sqldb_open(&db, path, "state database", SQLDB_READONLY, &err), 0,
	       "SQLDB_READONLY opens an existing file");
	is_int(sqldb_exec(db, "INSERT INTO t VALUES(2)", "state database", path, &err), -1,
	       "and cannot write it");
	sqldb_close(db);
	err_clear(&err);

	snprintf(path, sizeof(path), "%s/nodir/y.db", dir);
	is_int(sqldb_open(&db, path, "results database", SQLDB_CREATE, &err), -1,
	       "a file that cannot be created fails");
	ok(strstr(err.msg, "cannot open results database '") != NULL, "naming it: %s", err.msg);
	err_clear(&err);

	is_int(sqldb_open_scratch(&db, &err), 0, "a scratch database opens");
	is(pragma(db, "journal_mode"), "off", "without a journal");
	is(pragma(db, "synchronous"), "0", "and without syncs");
	ok(sqldb_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES(1);", "temporary database",
		      NULL, &err) == 0, "and holds a table");
	sqldb_close(db);
	sqldb_close(NULL);

	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	if (system(path) != 0)
		return 1;
	return done_testing();
}
