/*
 * verify_db.c - mailshift-verify's SQLite side: the results database
 * (runs, mailboxes, steps; history) and reading the INI files of a
 * mailshift-migrate run from its state database (read-only).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/buf.h"
#include "base/fleetdir.h"
#include "base/fsutil.h"
#include "base/mem.h"
#include "base/sqldb.h"
#include "migrate/migrate.h"
#include "verify/verify.h"

/* ---- targets ------------------------------------------------------------ */

int verify_targets_add(struct verify_target **t, size_t *n, const char *ini,
		       const char *label, struct ms_err *err)
{
	struct verify_target *nt;

	if (*n >= VERIFY_MAX_TARGETS)
		return err_set(err, MS_ERR_TOOBIG, "more than %d mailboxes",
			       VERIFY_MAX_TARGETS);
	nt = realloc(*t, (*n + 1) * sizeof(**t));
	if (!nt)
		return err_nomem(err);
	*t = nt;
	nt[*n].ini = strdup(ini);
	nt[*n].label = strdup(label ? label : ini);
	nt[*n].jobs = NULL;
	if (!nt[*n].ini || !nt[*n].label) {
		free(nt[*n].ini);
		free(nt[*n].label);
		return err_nomem(err);
	}
	(*n)++;
	return 0;
}

void verify_targets_free(struct verify_target *t, size_t n)
{
	for (size_t i = 0; t && i < n; i++) {
		free(t[i].ini);
		free(t[i].label);
		free(t[i].jobs);
	}
	free(t);
}

int verify_targets_from_fleet(const char *fleet, struct verify_target **t,
			      size_t *n, struct ms_err *err)
{
	struct fleet_ini *v = NULL;
	size_t nv = 0;
	int rc = -1;

	if (fleet_list_inis(fleet, &v, &nv, err))
		return -1;
	for (size_t i = 0; i < nv; i++) {
		char *label = NULL;
		if (asprintf(&label, "%s:%s", v[i].machine, v[i].windows_path) < 0) {
			err_nomem(err);
			goto out;
		}
		if (verify_targets_add(t, n, v[i].file, label, err)) {
			free(label);
			goto out;
		}
		free(label);
	}
	rc = 0;
out:
	fleet_inis_free(v, nv);
	return rc;
}

int verify_targets_from_state(const char *state_db, int run,
			      struct verify_target **t, size_t *n,
			      int *run_out, struct ms_err *err)
{
	struct migrate_applied a;
	int rc = 0;

	if (migrate_applied_inis(state_db, run, &a, err))
		return -1;
	*run_out = a.run;
	for (size_t i = 0; i < a.n && rc == 0; i++) {
		char *file = fs_join(a.fleet_dir, a.inis[i]);

		rc = file ? verify_targets_add(t, n, file, a.inis[i], err) : err_nomem(err);
		free(file);
		if (rc == 0 && a.jobs[i][0] && !((*t)[*n - 1].jobs = strdup(a.jobs[i])))
			rc = err_nomem(err);
	}
	migrate_applied_release(&a);
	return rc;
}

/* ---- results database ----------------------------------------------------- */

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS verify_runs ("
	" id INTEGER PRIMARY KEY, started INTEGER NOT NULL, finished INTEGER NOT NULL,"
	" source TEXT, send INTEGER NOT NULL, mailboxes INTEGER NOT NULL,"
	" passed INTEGER NOT NULL, failed INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS verify_mailboxes ("
	" run INTEGER NOT NULL, seq INTEGER NOT NULL, ini TEXT NOT NULL,"
	" label TEXT, mailbox TEXT, protocol TEXT, passed INTEGER NOT NULL,"
	" probe_id TEXT, seen_after REAL, outcome TEXT, matched TEXT, events TEXT,"
	" warning TEXT, PRIMARY KEY (run, seq));"
	"CREATE TABLE IF NOT EXISTS verify_steps ("
	" run INTEGER NOT NULL, seq INTEGER NOT NULL, step TEXT NOT NULL,"
	" status TEXT NOT NULL, seconds REAL NOT NULL, code TEXT, message TEXT,"
	" cause TEXT, fix TEXT, topic TEXT, PRIMARY KEY (run, seq, step));"
	"CREATE INDEX IF NOT EXISTS verify_mailboxes_ini ON verify_mailboxes (ini);";

static int db_open(const char *path, sqlite3 **db, struct ms_err *err)
{
	if (sqldb_open(db, path, "results database", SQLDB_CREATE, err))
		return -1;
	if (sqlite3_exec(*db, schema, NULL, NULL, NULL) != SQLITE_OK) {
		sqldb_fail(*db, "results database", path, "cannot create tables", err);
		sqldb_close(*db);
		*db = NULL;
		return -1;
	}
	return 0;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

int verify_db_store(const char *db_path, struct verify_run *r,
		    struct ms_err *err)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *run = NULL, *mbx = NULL, *stp = NULL;
	struct buf ev;
	int rc = -1;

	buf_init(&ev, (size_t)16 * 1024 * 1024);
	if (db_open(db_path, &db, err))
		return -1;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO verify_runs (started, finished, source,"
			       " send, mailboxes, passed, failed) VALUES (?,?,?,?,?,?,?)",
			       -1, &run, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO verify_mailboxes VALUES"
			       " (?,?,?,?,?,?,?,?,?,?,?,?,?)", -1, &mbx, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO verify_steps VALUES (?,?,?,?,?,?,?,?,?,?)",
			       -1, &stp, NULL) != SQLITE_OK)
		goto dbfail;
	sqlite3_bind_int64(run, 1, (sqlite3_int64)r->started);
	sqlite3_bind_int64(run, 2, (sqlite3_int64)r->finished);
	bind_text(run, 3, r->source);
	sqlite3_bind_int(run, 4, r->send);
	sqlite3_bind_int64(run, 5, (sqlite3_int64)r->n);
	sqlite3_bind_int64(run, 6, (sqlite3_int64)r->passed);
	sqlite3_bind_int64(run, 7, (sqlite3_int64)r->failed);
	if (sqlite3_step(run) != SQLITE_DONE)
		goto dbfail;
	r->id = (long)sqlite3_last_insert_rowid(db);
	for (size_t i = 0; i < r->n; i++) {
		const struct verify_result *m = &r->results[i];
		buf_reset(&ev);
		if (buf_append(&ev, "", 0, err))
			goto out;
		for (size_t e = 0; e < m->n_events; e++)
			if (buf_appendf(&ev, err, "%s%s", e ? "\n" : "", m->events[e]))
				goto out;
		sqlite3_reset(mbx);
		sqlite3_bind_int64(mbx, 1, r->id);
		sqlite3_bind_int64(mbx, 2, (sqlite3_int64)i + 1);
		bind_text(mbx, 3, m->ini);
		bind_text(mbx, 4, m->label);
		bind_text(mbx, 5, m->mailbox);
		bind_text(mbx, 6, m->protocol);
		sqlite3_bind_int(mbx, 7, m->passed);
		bind_text(mbx, 8, m->probe_id);
		if (m->seen_after >= 0)
			sqlite3_bind_double(mbx, 9, m->seen_after);
		else
			sqlite3_bind_null(mbx, 9);
		bind_text(mbx, 10, m->outcome);
		bind_text(mbx, 11, m->matched);
		bind_text(mbx, 12, m->n_events ? ev.data : NULL);
		bind_text(mbx, 13, m->warning);
		if (sqlite3_step(mbx) != SQLITE_DONE)
			goto dbfail;
		for (int s = 0; s < VSTEP_COUNT; s++) {
			const struct verify_step_result *sr = &m->steps[s];
			sqlite3_reset(stp);
			sqlite3_bind_int64(stp, 1, r->id);
			sqlite3_bind_int64(stp, 2, (sqlite3_int64)i + 1);
			bind_text(stp, 3, verify_step_name(s));
			bind_text(stp, 4, verify_status_name(sr->status));
			sqlite3_bind_double(stp, 5, sr->seconds);
			bind_text(stp, 6, sr->status == VST_FAIL ? err_code_name(sr->code) : NULL);
			bind_text(stp, 7, sr->message);
			bind_text(stp, 8, sr->cause);
			bind_text(stp, 9, sr->fix);
			bind_text(stp, 10, sr->topic);
			if (sqlite3_step(stp) != SQLITE_DONE)
				goto dbfail;
		}
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto dbfail;
	rc = 0;
	goto out;
dbfail:
	err_set(err, MS_ERR_IO, "results database '%s': %s", db_path, sqlite3_errmsg(db));
	r->id = 0;
out:
	if (rc)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_finalize(run);
	sqlite3_finalize(mbx);
	sqlite3_finalize(stp);
	sqldb_close(db);
	buf_release(&ev);
	return rc;
}

static void fmt_time(sqlite3_int64 t, char *out, size_t outsz)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || !gmtime_r(&tt, &tm))
		snprintf(out, outsz, "never");
	else
		strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int verify_history(const char *db_path, char **out, struct ms_err *err)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct buf b;
	int rc = -1, s;
	size_t rows = 0;

	*out = NULL;
	buf_init(&b, (size_t)64 * 1024 * 1024);
	if (access(db_path, R_OK) != 0)
		return err_set(err, MS_ERR_IO, "cannot read results database '%s': %s",
			       db_path, strerror(errno));
	if (db_open(db_path, &db, err))
		return -1;
	/* per INI file: the last run that checked it, its result, and the
	 * last run in which it passed with a probe (proven) or without */
	if (sqlite3_prepare_v2(db,
		"SELECT m.ini, coalesce(m.mailbox, '-'), coalesce(m.protocol, '-'),"
		" max(r.finished),"
		" (SELECT m2.passed FROM verify_mailboxes m2 JOIN verify_runs r2 ON r2.id = m2.run"
		"   WHERE m2.ini = m.ini ORDER BY r2.finished DESC, r2.id DESC LIMIT 1),"
		" (SELECT max(r3.finished) FROM verify_mailboxes m3 JOIN verify_runs r3"
		"   ON r3.id = m3.run WHERE m3.ini = m.ini AND m3.passed AND r3.send),"
		" (SELECT max(r4.finished) FROM verify_mailboxes m4 JOIN verify_runs r4"
		"   ON r4.id = m4.run WHERE m4.ini = m.ini AND m4.passed)"
		" FROM verify_mailboxes m JOIN verify_runs r ON r.id = m.run"
		" GROUP BY m.ini ORDER BY m.ini", -1, &st, NULL) != SQLITE_OK)
		goto dbfail;
	if (buf_appendf(&b, err, "%-6s %-22s %-22s %-22s %-28s %-6s %s\n", "last",
			"last checked", "last proven (probe)", "last passed", "mailbox",
			"proto", "ini"))
		goto out;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		char last[32], proven[32], passed[32];
		fmt_time(sqlite3_column_int64(st, 3), last, sizeof(last));
		fmt_time(sqlite3_column_type(st, 5) == SQLITE_NULL ? 0 :
			 sqlite3_column_int64(st, 5), proven, sizeof(proven));
		fmt_time(sqlite3_column_type(st, 6) == SQLITE_NULL ? 0 :
			 sqlite3_column_int64(st, 6), passed, sizeof(passed));
		if (buf_appendf(&b, err, "%-6s %-22s %-22s %-22s %-28s %-6s %s\n",
				sqlite3_column_int(st, 4) ? "PASS" : "FAIL", last, proven,
				passed, (const char *)sqlite3_column_text(st, 1),
				(const char *)sqlite3_column_text(st, 2),
				(const char *)sqlite3_column_text(st, 0)))
			goto out;
		if (++rows > VERIFY_MAX_TARGETS * 10)
			break;
	}
	if (s != SQLITE_DONE && s != SQLITE_ROW)
		goto dbfail;
	if (buf_append(&b, "", 0, err))
		goto out;
	*out = buf_detach(&b, NULL);
	rc = 0;
	goto out;
dbfail:
	err_set(err, MS_ERR_IO, "results database '%s': %s", db_path, sqlite3_errmsg(db));
out:
	sqlite3_finalize(st);
	sqldb_close(db);
	buf_release(&b);
	return rc;
}
