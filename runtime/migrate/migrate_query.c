/*
 * migrate_query.c - what other programs read of a migrate state database
 * (migrate.h: migrate_applied_inis).
 */
#include "migrate/migrate_int.h"

#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/mem.h"
#include "base/sqldb.h"

/* The fleet folder of a migrate run: as recorded, or (recorded relative
 * to another working directory) the folder holding the state database. */
static char *fleet_dir_for(const char *recorded, const char *state_db)
{
	char *copy, *dir, *out;

	if (recorded[0] == '/' || access(recorded, R_OK | X_OK) == 0)
		return strdup(recorded);
	if (!(copy = strdup(state_db)))
		return NULL;
	dir = dirname(copy);
	out = strdup(dir);
	free(copy);
	return out;
}

static int not_ours(sqlite3 *db, const char *state_db, struct ms_err *err)
{
	return err_set(err, MS_ERR_DATA, "'%s' is not a mailshift-migrate state "
		       "database: %s", state_db, sqlite3_errmsg(db));
}

/* The run asked for (0: the latest) and its fleet folder. */
static int read_run(sqlite3 *db, const char *state_db, int run,
		    struct migrate_applied *a, struct ms_err *err)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *f;
	int s, rc = -1;

	if (sqlite3_prepare_v2(db, run > 0 ? "SELECT id, fleet FROM runs WHERE id = ?" :
			       "SELECT id, fleet FROM runs ORDER BY id DESC LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		return not_ours(db, state_db, err);
	if (run > 0)
		sqlite3_bind_int(st, 1, run);
	s = sqlite3_step(st);
	if (s == SQLITE_DONE) {
		err_set(err, MS_ERR_USAGE, run > 0 ? "'%s' has no run %d" :
			"'%s' has no migration run%.0d", state_db, run);
	} else if (s != SQLITE_ROW) {
		sqldb_fail(db, "state database", state_db, "cannot read", err);
	} else {
		a->run = sqlite3_column_int(st, 0);
		f = sqlite3_column_text(st, 1);
		if (!(a->fleet_dir = fleet_dir_for(f ? (const char *)f : ".", state_db)))
			err_nomem(err);
		else
			rc = 0;
	}
	sqlite3_finalize(st);
	return rc;
}

int migrate_applied_inis(const char *state_db, int run,
			 struct migrate_applied *a, struct ms_err *err)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	size_t cap = 0, jcap = 0;
	int rc = -1, s;

	memset(a, 0, sizeof(*a));
	if (access(state_db, R_OK) != 0)
		return err_set(err, MS_ERR_IO, "cannot read state database '%s': %s",
			       state_db, strerror(errno));
	if (sqldb_open(&db, state_db, "state database", SQLDB_READONLY, err))
		goto out;
	if (read_run(db, state_db, run, a, err))
		goto out;
	if (sqlite3_prepare_v2(db, "SELECT path, jobs FROM items WHERE run = ? AND "
			       "kind = 'ini' AND state = ? ORDER BY seq",
			       -1, &st, NULL) != SQLITE_OK) {
		not_ours(db, state_db, err);
		goto out;
	}
	sqlite3_bind_int(st, 1, a->run);
	sqlite3_bind_text(st, 2, migrate_item_state_name(MI_APPLIED), -1, SQLITE_STATIC);
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *p = sqlite3_column_text(st, 0);
		const unsigned char *j = sqlite3_column_text(st, 1);

		if (MEM_GROW(a->inis, cap, a->n + 1, err) ||
		    MEM_GROW(a->jobs, jcap, a->n + 1, err))
			goto out;
		a->inis[a->n] = strdup(p ? (const char *)p : "");
		a->jobs[a->n] = strdup(j ? (const char *)j : "");
		if (!a->inis[a->n] || !a->jobs[a->n]) {
			free(a->inis[a->n]);
			free(a->jobs[a->n]);
			err_nomem(err);
			goto out;
		}
		a->n++;
	}
	if (s != SQLITE_DONE) {
		sqldb_fail(db, "state database", state_db, "cannot read", err);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	sqldb_close(db);
	if (rc)
		migrate_applied_release(a);
	return rc;
}

void migrate_applied_release(struct migrate_applied *a)
{
	for (size_t i = 0; i < a->n; i++) {
		free(a->inis[i]);
		free(a->jobs[i]);
	}
	free(a->inis);
	free(a->jobs);
	free(a->fleet_dir);
	memset(a, 0, sizeof(*a));
}
