/*
 * migrate_store.c - the state database: schema, opening it, storing a
 * plan, reading runs back, updating items (see migrate.h for the
 * guarantees).
 */
#include "migrate/migrate_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "audit/fleet.h"
#include "auth/seal.h"
#include "base/digest.h"
#include "base/fsutil.h"
#include "base/mem.h"
#include "base/paths.h"
#include "base/sqldb.h"

static const char *const item_state_names[] = {
	[MI_NONE] = "", [MI_PLANNED] = "planned", [MI_APPLYING] = "applying",
	[MI_APPLIED] = "applied", [MI_SKIPPED] = "skipped",
	[MI_CONFLICT] = "conflict", [MI_FAILED] = "failed",
	[MI_ROLLED_BACK] = "rolled-back",
};

static const char *const job_action_names[] = {
	[MJ_UNSET] = "none", [MJ_NONE] = "none", [MJ_CHANGE] = "change",
	[MJ_MANUAL] = "manual", [MJ_SKIPPED] = "skipped",
};

const char *migrate_item_state_name(enum migrate_item_state s)
{
	return item_state_names[s];
}

const char *migrate_job_action_name(enum migrate_job_action a)
{
	return job_action_names[a];
}

int migrate_item_state_parse(const char *name, enum migrate_item_state *s)
{
	for (int i = MI_PLANNED; i <= MI_ROLLED_BACK; i++)
		if (strcmp(name, item_state_names[i]) == 0) {
			*s = (enum migrate_item_state)i;
			return 0;
		}
	return -1;
}

int migrate_job_action_parse(const char *name, enum migrate_job_action *a)
{
	for (int i = MJ_NONE; i <= MJ_SKIPPED; i++)
		if (strcmp(name, job_action_names[i]) == 0) {
			*a = (enum migrate_job_action)i;
			return 0;
		}
	return -1;
}

static const char *const phase_names[MIGRATE_PHASES] = {
	"open", "scan", "edit", "store", "load", "decide", "commit", "write",
	"dirsync", "packet",
};

const char *migrate_phase_name(enum migrate_phase p)
{
	return p < MIGRATE_PHASES ? phase_names[p] : "";
}

double mig_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void mig_lap(struct migrate_result *res, enum migrate_phase ph, double *t)
{
	double now = mig_now();

	res->phase[ph] += now - *t;
	*t = now;
}

int mig_commit(struct mdb *d, struct migrate_result *res, double *t,
	       struct ms_err *err)
{
	if (mdb_exec(d, "COMMIT;", err) < 0)
		return -1;
	res->commits++;
	mig_lap(res, MIGRATE_PH_COMMIT, t);
	return 0;
}

int migrate_result_exit(const struct migrate_result *r)
{
	return r->skipped || r->failed || r->conflict || r->broken ||
	       (r->manual && !r->manual_expected) ? 1 : 0;
}


/* Schema 3 (PRAGMA user_version = 3; the tables of schema 2).  The sealed file contents live in
 * `blobs`, one row per item and column ("orig", "new"), apart from the
 * `items` rows: an item's state changes twice per apply (applying, then
 * applied) and once per rollback, and each change rewrites its row, which
 * with the bytes inside was up to a 60 KB row and its overflow pages,
 * journal first.  Schema 1 (user_version 0, the bytes in items.orig and
 * items.new) is converted on open, in the transaction that opens it. */
/* Schema 3 differs from 2 in what may be missing, not in its tables: an
 * item's sealed bytes may be absent while it is planned.  apply stores an
 * item's original in the transaction that marks it applying (before its
 * file is written: written = 1 never without an original) and its new
 * bytes only when they are not a function of the original and the
 * mapping file (a literal client secret sealed now, with a fresh nonce);
 * it recomputes the others, checked against new_sha.  A schema-2
 * mailshift-migrate would write an empty file for a missing "new": it
 * refuses schema 3.  2 -> 3 changes nothing but the version.
 * Schema 4 (the same tables): an export item an apply plans is stored with
 * its edit and without its hashes (orig_sha, new_sha and seen NULL: it is
 * made while the INI files are written), and gets them in the
 * transaction that marks it applying, before it is written.  A schema-3
 * mailshift-migrate would take the missing hash for a changed file: it
 * refuses schema 4.  3 -> 4 changes nothing but the version. */
#define SCHEMA_VERSION 4

#define ITEMS_COLUMNS \
	" run INTEGER NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL," \
	" path TEXT NOT NULL, machine TEXT NOT NULL, jobs TEXT NOT NULL," \
	" state TEXT NOT NULL, reason TEXT, written INTEGER NOT NULL DEFAULT 0," \
	" orig_sha TEXT, new_sha TEXT, seal TEXT, seen TEXT," \
	" updated INTEGER NOT NULL, PRIMARY KEY (run, seq)"

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);"
	"CREATE TABLE IF NOT EXISTS runs ("
	" id INTEGER PRIMARY KEY, created INTEGER NOT NULL, fleet TEXT NOT NULL,"
	" transport TEXT NOT NULL, state TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS items (" ITEMS_COLUMNS ");"
	"CREATE TABLE IF NOT EXISTS blobs ("
	" run INTEGER NOT NULL, seq INTEGER NOT NULL, col TEXT NOT NULL,"
	" bytes BLOB NOT NULL, PRIMARY KEY (run, seq, col));"
	"CREATE TABLE IF NOT EXISTS jobs ("
	" run INTEGER NOT NULL, seq INTEGER NOT NULL, schedule TEXT NOT NULL,"
	" job TEXT NOT NULL, machine TEXT NOT NULL, source TEXT NOT NULL,"
	" ini_item INTEGER, export_item INTEGER, action TEXT NOT NULL,"
	" old_cmd TEXT, new_cmd TEXT, note TEXT, PRIMARY KEY (run, seq));"
	"INSERT OR REPLACE INTO meta VALUES ('schema', '4');"
	"PRAGMA user_version = 4;";

/* Schema 1 -> 2: the sealed bytes move to blobs as they are (the seal's
 * associated data names run, item and column, not the table), and items
 * is rebuilt without its two blob columns, so that a mailshift-migrate
 * of schema 1 fails on this database ("no such column") instead of
 * reading items without their originals. */
static const char schema_1_to_2[] =
	"CREATE TABLE blobs ("
	" run INTEGER NOT NULL, seq INTEGER NOT NULL, col TEXT NOT NULL,"
	" bytes BLOB NOT NULL, PRIMARY KEY (run, seq, col));"
	"INSERT INTO blobs SELECT run, seq, 'orig', orig FROM items"
	" WHERE orig IS NOT NULL;"
	"INSERT INTO blobs SELECT run, seq, 'new', new FROM items"
	" WHERE new IS NOT NULL;"
	"CREATE TABLE items_2 (" ITEMS_COLUMNS ");"
	"INSERT INTO items_2 (run, seq, kind, path, machine, jobs, state, reason,"
	" written, orig_sha, new_sha, seal, updated)"
	" SELECT run, seq, kind, path, machine, jobs, state, reason, written,"
	" orig_sha, new_sha, seal, updated FROM items;"
	"DROP TABLE items;"
	"ALTER TABLE items_2 RENAME TO items;";

static int db_fail(struct mdb *d, struct ms_err *err, const char *what)
{
	int code = sqlite3_errcode(d->db);

	if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
		return err_set(err, MS_ERR_BUSY, "state database '%s' is in use by "
			       "another mailshift-migrate process", d->path);
	return err_set(err, MS_ERR_IO, "state database '%s': %s: %s", d->path, what,
		       sqlite3_errmsg(d->db));
}

int mdb_exec(struct mdb *d, const char *sql, struct ms_err *err)
{
	if (sqlite3_exec(d->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(d, err, "query failed");
	return 0;
}

void mdb_close(struct mdb *d)
{
	if (!d)
		return;
	sqlite3_finalize(d->blob_get);
	sqlite3_finalize(d->blob_put);
	sqlite3_finalize(d->item_set);
	sqldb_close(d->db);
	seal_key_free(d->key);
	free(d->path);
	free(d);
}

/* File contents (the originals hold passwords) are stored sealed with the
 * machine key; only their SHA-256 hashes are in clear.  plan creates the
 * key when there is none; apply (resuming) and rollback need the key the
 * run was sealed with. */
int mdb_key(struct mdb *d, int create, struct ms_err *err)
{
	char *kf = NULL;
	int rc = 0;

	if (d->key)
		return 0;
	if (!create) {
		if (paths_key_file(&kf, err) < 0)
			return -1;
		if (!fs_exists(kf))
			rc = err_set(err, MS_ERR_CONFIG, "machine key file '%s' does not "
				     "exist: the file contents in state database '%s' are "
				     "sealed with the machine key of the account that planned "
				     "the run (set MAILSHIFT_HOME or MAILSHIFT_KEY_FILE to it)",
				     kf, d->path);
		free(kf);
		if (rc < 0)
			return -1;
	}
	return seal_key_load(&d->key, create, err);
}

static void blob_aad(char *aad, size_t sz, int run, int seq, const char *col)
{
	snprintf(aad, sz, "mailshift-migrate run %d item %d %s", run, seq, col);
}

/* Seal file bytes for an items row; *out is malloc'd. */
static int blob_seal(struct mdb *d, int run, int seq, const char *col,
		     const char *data, size_t len, unsigned char **out,
		     size_t *outlen, struct ms_err *err)
{
	char aad[96];

	blob_aad(aad, sizeof(aad), run, seq, col);
	return seal_bytes(d->key, data, len, aad, strlen(aad), out, outlen, err);
}

void mig_wipe_bytes(char *p, size_t len)
{
	mem_wipe(p, len);
	free(p);
}

/* The first column of the first row of sql as an integer (0 when there is
 * no row). */
static int query_int(struct mdb *d, const char *sql, int *out,
		     struct ms_err *err)
{
	sqlite3_stmt *st = NULL;
	int r;

	*out = 0;
	if (mdb_prepare(d, &st, sql, err) < 0)
		return -1;
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		*out = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		return db_fail(d, err, "query failed");
	return 0;
}

/* Inside the opening transaction: refuse a newer schema, convert an older
 * one (a database of schema 1 has user_version 0 and items.orig), create
 * the tables of a new one. */
static int schema_upgrade(struct mdb *d, struct ms_err *err)
{
	int version, old_items;

	if (query_int(d, "PRAGMA user_version;", &version, err) < 0)
		return -1;
	if (version > SCHEMA_VERSION)
		return err_set(err, MS_ERR_DATA, "state database '%s' has schema %d, "
			       "written by a newer mailshift-migrate (this one knows "
			       "schema %d)", d->path, version, SCHEMA_VERSION);
	if (version == SCHEMA_VERSION)
		return 0;     /* nothing written: a database opened is not changed */
	if (query_int(d, "SELECT count(*) FROM pragma_table_info('items')"
		      " WHERE name = 'orig';", &old_items, err) < 0 ||
	    (old_items && mdb_exec(d, schema_1_to_2, err) < 0))
		return -1;
	return mdb_exec(d, schema, err);
}

/* Returns 0, -1, or 1 when create is 0 and there is no database yet. */
static int db_open(struct mdb **out, const struct migrate_opts *o, int create,
		   struct ms_err *err)
{
	struct mdb *d;
	int rc;

	*out = NULL;
	if (!(d = calloc(1, sizeof(*d))))
		return err_nomem(err);
	if (o->state_path)
		d->path = strdup(o->state_path);
	else
		d->path = fs_join(o->fleet_dir, MIGRATE_DEFAULT_DB);
	if (!d->path) {
		free(d);
		return err_nomem(err);
	}
	/* One exclusive lock held until close (SQLDB_EXCLUSIVE): a second
	 * process gets "in use" at once instead of interleaving with us. */
	rc = sqldb_open(&d->db, d->path, "state database",
			create ? SQLDB_CREATE | SQLDB_EXCLUSIVE : SQLDB_EXCLUSIVE, err);
	if (rc == 1) {
		mdb_close(d);
		return 1;
	}
	if (rc < 0) {
		if (err->code == MS_ERR_BUSY) {
			err_clear(err);
			err_set(err, MS_ERR_BUSY, "state database '%s' is in use by "
				"another mailshift-migrate process", d->path);
		}
		goto fail;
	}
	if (mdb_exec(d, "BEGIN EXCLUSIVE;", err) < 0)
		goto fail;
	if (schema_upgrade(d, err) < 0 || mdb_exec(d, "COMMIT;", err) < 0) {
		sqlite3_exec(d->db, "ROLLBACK;", NULL, NULL, NULL);
		goto fail;
	}
	*out = d;
	return 0;
fail:
	mdb_close(d);
	return -1;
}

int mdb_prepare(struct mdb *d, sqlite3_stmt **st, const char *sql,
		      struct ms_err *err)
{
	if (sqlite3_prepare_v2(d->db, sql, -1, st, NULL) != SQLITE_OK)
		return db_fail(d, err, "prepare");
	return 0;
}

static char *col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return strdup(t ? (const char *)t : "");
}

/* Seal bytes and store them as column col of item seq (replacing what
 * was there), with the prepared INSERT OR REPLACE INTO blobs of ins. */
static int blob_store(struct mdb *d, sqlite3_stmt *ins, int run, int seq,
		      const char *col, const char *data, size_t len,
		      struct ms_err *err)
{
	unsigned char *sealed = NULL;
	size_t sealed_len = 0;
	int r;

	if (blob_seal(d, run, seq, col, data, len, &sealed, &sealed_len, err) < 0)
		return -1;
	sqlite3_reset(ins);
	sqlite3_bind_int(ins, 1, run);
	sqlite3_bind_int(ins, 2, seq);
	sqlite3_bind_text(ins, 3, col, -1, SQLITE_STATIC);
	sqlite3_bind_blob64(ins, 4, sealed, sealed_len, SQLITE_STATIC);
	r = sqlite3_step(ins);
	sqlite3_clear_bindings(ins);
	free(sealed);
	if (r != SQLITE_DONE)
		return db_fail(d, err, "store sealed bytes");
	return 0;
}

#define BLOB_INSERT "INSERT OR REPLACE INTO blobs VALUES (?, ?, ?, ?)"

/* Long (about 130 lines): one transaction storing the run, its items,
 * their sealed bytes and its jobs; the binds follow the schema's columns. */
int mdb_store_plan(struct mdb *d, int run, int replace,
		      const struct migrate_opts *o, const struct migrate_map *map,
		      const struct plan *p, int blobs, struct ms_err *err)
{
	sqlite3_stmt *st = NULL, *bl = NULL;
	time_t now = o->now ? o->now : time(NULL);
	char sql[240];
	size_t i;
	int rc = -1;

	if (mdb_exec(d, "BEGIN;", err) < 0)
		return -1;
	snprintf(sql, sizeof(sql), "DELETE FROM items WHERE run = %d;"
		 "DELETE FROM blobs WHERE run = %d; DELETE FROM jobs WHERE run = %d;"
		 "DELETE FROM runs WHERE id = %d;", run, run, run, run);
	if (replace && mdb_exec(d, sql, err) < 0)
		goto done;
	if (mdb_prepare(d, &st, "INSERT INTO runs VALUES (?, ?, ?, ?, 'open')", err) < 0)
		goto done;
	sqlite3_bind_int(st, 1, run);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
	sqlite3_bind_text(st, 3, o->fleet_dir, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, migrate_transport_name(migrate_map_transport(map)), -1,
			  SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_fail(d, err, "insert run");
		goto done;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (mdb_prepare(d, &st, "INSERT INTO items (run, seq, kind, path, machine, jobs,"
		       " state, reason, orig_sha, new_sha, seal, seen, updated)"
		       " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", err) < 0 ||
	    mdb_prepare(d, &bl, BLOB_INSERT, err) < 0)
		goto done;
	for (i = 0; i < p->n; i++) {
		const struct pitem *it = &p->items[i];
		int r, seq = (int)i + 1;

		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		sqlite3_bind_int(st, 1, run);
		sqlite3_bind_int(st, 2, seq);
		sqlite3_bind_text(st, 3, it->kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, it->path, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, it->machine ? it->machine : "", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, it->jobs ? it->jobs : "", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 7, migrate_item_state_name(it->state), -1,
				  SQLITE_STATIC);
		if (it->reason)
			sqlite3_bind_text(st, 8, it->reason, -1, SQLITE_STATIC);
		/* an apply that plans may have let the bytes go (struct plan),
		 * never a plan, which stores them */
		if (it->state == MI_PLANNED && (it->orig_sha[0] || it->deferred)) {
			/* a deferred item (schema 4) has its edit, no hashes yet */
			int made = it->orig_sha[0] != '\0';
			if (blobs && made && !it->orig) {
				err_set(err, MS_ERR_INTERNAL, "the bytes of '%s' are not at hand",
					it->path);
				goto done;
			}
			if ((blobs && made && blob_store(d, bl, run, seq, "orig", it->orig,
							 it->orig_len, err) < 0) ||
			    (it->edit && blob_store(d, bl, run, seq, "edit", it->edit,
						    it->edit_len, err) < 0))
				goto done;
			if (made) {
				sqlite3_bind_text(st, 9, it->orig_sha, -1, SQLITE_STATIC);
				sqlite3_bind_text(st, 10, it->new_sha, -1, SQLITE_STATIC);
			}
			if (it->seen)
				sqlite3_bind_text(st, 12, it->seen, -1, SQLITE_STATIC);
		}
		if (it->seal)
			sqlite3_bind_text(st, 11, it->seal, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 13, (sqlite3_int64)now);
		r = sqlite3_step(st);
		sqlite3_clear_bindings(st);
		if (r != SQLITE_DONE) {
			db_fail(d, err, "insert item");
			goto done;
		}
	}
	/* the new bytes after all the originals: a rollback reads the
	 * originals alone, from pages next to each other */
	for (i = 0; blobs && i < p->n; i++) {
		const struct pitem *it = &p->items[i];

		if (it->orig && it->state == MI_PLANNED &&
		    blob_store(d, bl, run, (int)i + 1, "new", it->new, it->new_len,
			       err) < 0)
			goto done;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (mdb_prepare(d, &st, "INSERT INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
		       err) < 0)
		goto done;
	for (i = 0; i < p->s.n; i++) {
		const struct mjob *j = &p->s.jobs[i];
		char *oc, *nc;
		int r;

		if (!j->ini_item)
			continue;
		oc = cmdline_redact(j->raw_cmd);
		nc = j->new_cmd ? cmdline_redact(j->new_cmd) : NULL;
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		sqlite3_bind_int(st, 1, run);
		sqlite3_bind_int(st, 2, (int)i + 1);
		sqlite3_bind_text(st, 3, j->v.schedule, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, j->v.job, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, j->v.machine, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, j->v.source, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 7, j->ini_item);
		if (j->export_item)
			sqlite3_bind_int(st, 8, j->export_item);
		sqlite3_bind_text(st, 9, migrate_job_action_name(j->action), -1,
				  SQLITE_STATIC);
		if (oc)
			sqlite3_bind_text(st, 10, oc, -1, SQLITE_STATIC);
		if (nc)
			sqlite3_bind_text(st, 11, nc, -1, SQLITE_STATIC);
		if (j->note)
			sqlite3_bind_text(st, 12, j->note, -1, SQLITE_STATIC);
		r = sqlite3_step(st);
		mem_wipe_free(oc);
		mem_wipe_free(nc);
		if (r != SQLITE_DONE) {
			db_fail(d, err, "insert job");
			goto done;
		}
	}
	rc = mdb_exec(d, "COMMIT;", err);
done:
	sqlite3_finalize(st);
	sqlite3_finalize(bl);
	if (rc < 0)
		sqlite3_exec(d->db, "ROLLBACK;", NULL, NULL, NULL);
	return rc;
}

int mdb_store_orig(struct mdb *d, int run, struct sitem *it, const char *data,
		   size_t len, struct ms_err *err)
{
	if (!d->blob_put && mdb_prepare(d, &d->blob_put, BLOB_INSERT, err) < 0)
		return -1;
	if (mdb_key(d, 0, err) < 0 ||
	    blob_store(d, d->blob_put, run, it->seq, "orig", data, len, err) < 0)
		return -1;
	it->have_orig = 1;
	return 0;
}

/* In chunks: Linux reads ahead at most a few megabytes for one
 * POSIX_FADV_WILLNEED over a whole file (measured: 8 MB of a 119 MB
 * database, the rest read page by page as SQLite asked for it, each
 * waiting behind the writes' fsyncs); 4 MB at a time, it queues all of
 * it (~10 ms to ask). */
#define PREFETCH_CHUNK ((off_t)4 << 20)

void mdb_prefetch(struct mdb *d)
{
#ifdef POSIX_FADV_WILLNEED
	int fd = open(d->path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	off_t off;

	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0)
		for (off = 0; off < st.st_size; off += PREFETCH_CHUNK)
			if (posix_fadvise(fd, off, PREFETCH_CHUNK, POSIX_FADV_WILLNEED) != 0)
				break;
	close(fd);
#else
	(void)d;
#endif
}

int srun_settled(const struct srun *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (r->items[i].state == MI_PLANNED ||
		    r->items[i].state == MI_APPLYING)
			return 0;
	return 1;
}

int srun_unclosed(const struct srun *r)
{
	size_t i;

	if (!r->state || strcmp(r->state, "open") != 0 || !srun_settled(r))
		return 0;
	for (i = 0; i < r->n; i++)
		if (r->items[i].written)
			return 1;
	return 0;
}

void srun_release(struct srun *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		struct sitem *it = &r->items[i];
		free(it->kind); free(it->path); free(it->machine); free(it->jobs);
		free(it->reason); free(it->seal); free(it->seen);
		mig_wipe_bytes(it->orig, it->orig_len); mig_wipe_bytes(it->new, it->new_len);
		free(it->sealed);
		free(it->next_reason);
		free(it->dir);
	}
	free(r->items);
	for (i = 0; i < r->n_jobs; i++) {
		struct sjob *j = &r->jobs[i];
		free(j->schedule); free(j->job); free(j->machine); free(j->source);
		free(j->old_cmd); free(j->new_cmd); free(j->note);
	}
	free(r->jobs);
	free(r->state);
	memset(r, 0, sizeof(*r));
}

/* The sealed bytes of column col ("orig" or "new") of an item, unsealed
 * into *out (malloc'd, NULL when the item has none) and checked against
 * their clear hash sha.  A wrong machine key is a configuration error
 * naming the key file. */
/* The sealed bytes of column col of an item, copied (*sealed NULL when
 * the item has none), with the machine key loaded for mdb_unseal(). */
int mdb_item_sealed(struct mdb *d, int run, const struct sitem *it,
		    const char *col, unsigned char **sealed, size_t *n,
		    struct ms_err *err)
{
	const char *what = strcmp(col, "orig") == 0 ? "original" :
			   strcmp(col, "new") == 0 ? "new" : col;
	const void *b;
	int r, len;

	*sealed = NULL;
	*n = 0;
	if (!d->blob_get && mdb_prepare(d, &d->blob_get, "SELECT bytes FROM blobs"
					" WHERE run = ? AND seq = ? AND col = ?", err) < 0)
		return -1;
	sqlite3_reset(d->blob_get);
	sqlite3_bind_int(d->blob_get, 1, run);
	sqlite3_bind_int(d->blob_get, 2, it->seq);
	sqlite3_bind_text(d->blob_get, 3, col, -1, SQLITE_STATIC);
	r = sqlite3_step(d->blob_get);
	if (r == SQLITE_DONE)
		return 0;
	if (r != SQLITE_ROW)
		return db_fail(d, err, "select sealed bytes");
	b = sqlite3_column_blob(d->blob_get, 0);
	len = sqlite3_column_bytes(d->blob_get, 0);
	if (!b || (size_t)len < SEAL_BYTES_OVERHEAD ||
	    memcmp(b, SEAL_BYTES_MAGIC, strlen(SEAL_BYTES_MAGIC)) != 0) {
		sqlite3_reset(d->blob_get);
		return err_set(err, MS_ERR_DATA, "state database '%s': the %s bytes of "
			       "'%s' are not sealed (written by an older "
			       "mailshift-migrate): roll run %d back with that version",
			       d->path, what, it->path, run);
	}
	if (mdb_key(d, 0, err) < 0 || !(*sealed = malloc((size_t)len))) {
		sqlite3_reset(d->blob_get);
		return err->code ? -1 : err_nomem(err);
	}
	memcpy(*sealed, b, (size_t)len);
	*n = (size_t)len;
	sqlite3_reset(d->blob_get);
	return 0;
}

int mdb_unseal(const struct mdb *d, int run, const struct sitem *it,
	       const char *col, const unsigned char *sealed, size_t n, char **out,
	       size_t *len, struct ms_err *err)
{
	struct ms_err lerr = MS_ERR_INIT;
	const char *sha = strcmp(col, "orig") == 0 ? it->orig_sha :
			  strcmp(col, "new") == 0 ? it->new_sha : NULL;
	const char *what = strcmp(col, "orig") == 0 ? "original" :
			   strcmp(col, "new") == 0 ? "new" : col;
	unsigned char *plain = NULL;
	char aad[96], hex[65], *kf = NULL;
	int r;

	*out = NULL;
	*len = 0;
	blob_aad(aad, sizeof(aad), run, it->seq, col);
	r = unseal_bytes(d->key, sealed, n, aad, strlen(aad), &plain, len, &lerr);
	if (r < 0) {
		if (lerr.code != MS_ERR_DATA)
			return err_set(err, lerr.code, "%s", lerr.msg);
		if (paths_key_file(&kf, err) < 0)
			return -1;
		err_set(err, MS_ERR_CONFIG, "cannot unseal the %s bytes of '%s' in state "
			"database '%s' with machine key file '%s': they were sealed with "
			"another machine key or altered (set MAILSHIFT_HOME or "
			"MAILSHIFT_KEY_FILE to the key of the account that planned run %d)",
			what, it->path, d->path, kf, run);
		free(kf);
		return -1;
	}
	if (sha)
		digest_sha256_hex(plain, *len, hex);
	if (sha && strcmp(hex, sha) != 0) {
		mig_wipe_bytes((char *)plain, *len);
		*len = 0;
		return err_set(err, MS_ERR_DATA, "state database '%s': the %s bytes of "
			       "'%s' do not match their hash", d->path, what, it->path);
	}
	*out = (char *)plain;
	return 0;
}

int mdb_item_bytes(struct mdb *d, int run, const struct sitem *it,
		   const char *col, char **out, size_t *len, struct ms_err *err)
{
	unsigned char *sealed = NULL;
	size_t n = 0;
	int rc;

	*out = NULL;
	*len = 0;
	if (mdb_item_sealed(d, run, it, col, &sealed, &n, err) < 0)
		return -1;
	if (!sealed)
		return 0;
	rc = mdb_unseal(d, run, it, col, sealed, n, out, len, err);
	free(sealed);
	return rc;
}

/* The bytes are read when an item is written, not when the run is
 * loaded; so that a wrong or missing machine key is refused before
 * anything changes, the command unseals one original of the run first. */
int mdb_check_key(struct mdb *d, const struct srun *r, struct ms_err *err)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		char *b = NULL;
		size_t len = 0;

		if (!r->items[i].orig_sha[0])
			continue;
		if (mdb_item_bytes(d, r->id, &r->items[i], "orig", &b, &len, err) < 0)
			return -1;
		mig_wipe_bytes(b, len);
		if (b)
			return 0;
	}
	return 0;
}

/* Find a run: id > 0 that one, else with open_only the open run, else the
 * latest.  Returns 0 found, 1 none, -1 error. */
int mdb_find_run(struct mdb *d, int id, int open_only, int *out,
		    struct ms_err *err)
{
	sqlite3_stmt *st = NULL;
	int r;

	if (mdb_prepare(d, &st, id > 0 ? "SELECT id FROM runs WHERE id = ?" :
		       open_only ? "SELECT id FROM runs WHERE state = 'open' ORDER BY id "
		       "DESC LIMIT 1" : "SELECT id FROM runs ORDER BY id DESC LIMIT 1",
		       err) < 0)
		return -1;
	if (id > 0)
		sqlite3_bind_int(st, 1, id);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		*out = sqlite3_column_int(st, 0);
		r = 0;
	} else if (r == SQLITE_DONE) {
		r = 1;
	} else {
		r = db_fail(d, err, "select run");
	}
	sqlite3_finalize(st);
	return r;
}

int mdb_load_run(struct mdb *d, int id, struct srun *r,
		    struct ms_err *err)
{
	sqlite3_stmt *st = NULL;
	size_t alloc = 0;
	int s;

	memset(r, 0, sizeof(*r));
	r->id = id;
	if (mdb_prepare(d, &st, "SELECT state FROM runs WHERE id = ?", err) < 0)
		return -1;
	sqlite3_bind_int(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		r->state = col_text(st, 0);
	sqlite3_finalize(st);
	if (!r->state)
		return err_nomem(err);
	if (mdb_prepare(d, &st, "SELECT seq, kind, path, machine, jobs, state, reason,"
		       " seal, written, orig_sha, new_sha, seen,"
		       " EXISTS (SELECT 1 FROM blobs b WHERE b.run = items.run AND"
		       " b.seq = items.seq AND b.col = 'orig'),"
		       " EXISTS (SELECT 1 FROM blobs b WHERE b.run = items.run AND"
		       " b.seq = items.seq AND b.col = 'new'),"
		       " EXISTS (SELECT 1 FROM blobs b WHERE b.run = items.run AND"
		       " b.seq = items.seq AND b.col = 'edit')"
		       " FROM items WHERE run = ? ORDER BY seq", err) < 0)
		return -1;
	sqlite3_bind_int(st, 1, id);
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		struct sitem *it;
		const unsigned char *t;
		if (MEM_GROW(r->items, alloc, r->n + 1, err)) {
			sqlite3_finalize(st);
			return -1;
		}
		it = &r->items[r->n++];
		memset(it, 0, sizeof(*it));
		it->seq = sqlite3_column_int(st, 0);
		it->kind = col_text(st, 1);
		it->path = col_text(st, 2);
		it->machine = col_text(st, 3);
		it->jobs = col_text(st, 4);
		t = sqlite3_column_text(st, 5);
		if (migrate_item_state_parse(t ? (const char *)t : "", &it->state)) {
			sqlite3_finalize(st);
			return err_set(err, MS_ERR_DATA, "state database '%s': item %d of "
				       "run %d has an unknown state", d->path, it->seq, id);
		}
		if (sqlite3_column_type(st, 6) != SQLITE_NULL)
			it->reason = col_text(st, 6);
		if (sqlite3_column_type(st, 7) != SQLITE_NULL)
			it->seal = col_text(st, 7);
		it->written = sqlite3_column_int(st, 8);
		if ((t = sqlite3_column_text(st, 9)))
			snprintf(it->orig_sha, sizeof(it->orig_sha), "%s", t);
		if ((t = sqlite3_column_text(st, 10)))
			snprintf(it->new_sha, sizeof(it->new_sha), "%s", t);
		if (sqlite3_column_type(st, 11) != SQLITE_NULL)
			it->seen = col_text(st, 11);
		it->have_orig = sqlite3_column_int(st, 12);
		it->have_new = sqlite3_column_int(st, 13);
		it->have_edit = sqlite3_column_int(st, 14);
		if (!it->kind || !it->path || !it->machine || !it->jobs)
			goto nomem;
	}
	if (s != SQLITE_DONE) {
		sqlite3_finalize(st);
		return db_fail(d, err, "select items");
	}
	sqlite3_finalize(st);
	alloc = 0;
	if (mdb_prepare(d, &st, "SELECT schedule, job, machine, source, action, old_cmd,"
		       " new_cmd, note, ini_item, export_item FROM jobs WHERE run = ?"
		       " ORDER BY seq", err) < 0)
		return -1;
	sqlite3_bind_int(st, 1, id);
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		struct sjob *j;
		const unsigned char *t;
		if (MEM_GROW(r->jobs, alloc, r->n_jobs + 1, err)) {
			sqlite3_finalize(st);
			return -1;
		}
		j = &r->jobs[r->n_jobs++];
		memset(j, 0, sizeof(*j));
		j->schedule = col_text(st, 0);
		j->job = col_text(st, 1);
		j->machine = col_text(st, 2);
		j->source = col_text(st, 3);
		t = sqlite3_column_text(st, 4);
		if (migrate_job_action_parse(t ? (const char *)t : "", &j->action)) {
			sqlite3_finalize(st);
			return err_set(err, MS_ERR_DATA, "state database '%s': job %zu of "
				       "run %d has an unknown action", d->path, r->n_jobs, id);
		}
		j->old_cmd = col_text(st, 5);
		j->new_cmd = col_text(st, 6);
		j->note = col_text(st, 7);
		j->ini_item = sqlite3_column_int(st, 8);
		j->export_item = sqlite3_column_int(st, 9);
		if (!j->schedule || !j->job || !j->machine || !j->source ||
		    !j->old_cmd || !j->new_cmd || !j->note)
			goto nomem;
	}
	sqlite3_finalize(st);
	if (s != SQLITE_DONE)
		return db_fail(d, err, "select jobs");
	return 0;
nomem:
	sqlite3_finalize(st);
	return err_nomem(err);
}

int mig_job_matches(const struct migrate_opts *o, const struct sjob *j)
{
	return (!o->only_machine || strcasecmp(o->only_machine, j->machine) == 0) &&
	       (!o->only_schedule || strcasecmp(o->only_schedule, j->schedule) == 0) &&
	       (!o->only_job || strcasecmp(o->only_job, j->job) == 0);
}

/* An INI item matches --only when one of its jobs does (changing a shared
 * INI changes them all); an export item when every job it changes does. */
void mig_mark_matches(const struct migrate_opts *o, struct srun *r)
{
	size_t i, k;
	int filtered = o->only_machine || o->only_schedule || o->only_job;

	for (i = 0; i < r->n; i++) {
		struct sitem *it = &r->items[i];
		int any = 0, all = 1;
		if (!filtered) {
			it->match = 1;
			continue;
		}
		for (k = 0; k < r->n_jobs; k++) {
			const struct sjob *j = &r->jobs[k];
			if (strcmp(it->kind, "ini") == 0 ? j->ini_item != it->seq :
			    j->export_item != it->seq)
				continue;
			if (mig_job_matches(o, j))
				any = 1;
			else
				all = 0;
		}
		it->match = strcmp(it->kind, "ini") == 0 ? any : any && all;
	}
}

int mdb_set_item(struct mdb *d, int run, struct sitem *it, int with_new,
		    struct ms_err *err)
{
	sqlite3_stmt *st = NULL;
	int r;

	if (with_new) {
		if (mdb_prepare(d, &st, BLOB_INSERT, err) < 0)
			return -1;
		r = blob_store(d, st, run, it->seq, "new", it->new, it->new_len, err);
		sqlite3_finalize(st);
		st = NULL;
		if (r < 0)
			return -1;
		it->have_new = 1;
	}
	if (!d->item_set && mdb_prepare(d, &d->item_set, "UPDATE items SET state = ?,"
					" reason = ?, written = ?, updated = ?,"
					" new_sha = coalesce(?, new_sha),"
					" orig_sha = coalesce(?, orig_sha),"
					" seen = coalesce(?, seen)"
					" WHERE run = ? AND seq = ?", err) < 0)
		return -1;
	st = d->item_set;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	sqlite3_bind_text(st, 1, migrate_item_state_name(it->next), -1, SQLITE_STATIC);
	if (it->next_reason)
		sqlite3_bind_text(st, 2, it->next_reason, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, it->written);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL));
	if (with_new || it->set_hashes)
		sqlite3_bind_text(st, 5, it->new_sha, -1, SQLITE_STATIC);
	if (it->set_hashes) {
		sqlite3_bind_text(st, 6, it->orig_sha, -1, SQLITE_STATIC);
		if (it->seen)
			sqlite3_bind_text(st, 7, it->seen, -1, SQLITE_STATIC);
	}
	sqlite3_bind_int(st, 8, run);
	sqlite3_bind_int(st, 9, it->seq);
	r = sqlite3_step(st);
	sqlite3_reset(st);
	if (r != SQLITE_DONE)
		return db_fail(d, err, "update item");
	it->state = it->next;
	free(it->reason);
	it->reason = it->next_reason;
	it->next_reason = NULL;
	return 0;
}

void mig_count_state(struct migrate_result *res, enum migrate_item_state s)
{
	switch (s) {
	case MI_PLANNED:
	case MI_APPLYING:
		res->planned++;
		break;
	case MI_APPLIED:
		res->applied++;
		break;
	case MI_SKIPPED:
		res->skipped++;
		break;
	case MI_CONFLICT:
		res->conflict++;
		break;
	case MI_FAILED:
		res->failed++;
		break;
	case MI_ROLLED_BACK:
		res->rolled_back++;
		break;
	case MI_NONE:
		break;
	}
}

/* The run a new plan is stored as: the open run when nothing of it has
 * started (*replace = 1), else a new one. */
int mdb_next_run(struct mdb *d, int *run_out, int *replace, struct ms_err *err)
{
	int open_id = 0, run = 0, r;

	r = mdb_find_run(d, 0, 1, &open_id, err);
	if (r < 0)
		return -1;
	if (r == 0) {
		/* an open run may be replanned only when nothing of it started */
		sqlite3_stmt *st = NULL;
		struct srun orun;
		int started = 0, unclosed;
		if (mdb_prepare(d, &st, "SELECT count(*) FROM items WHERE run = ? AND"
			       " (written = 1 OR state NOT IN ('planned', 'skipped'))",
			       err) < 0)
			return -1;
		sqlite3_bind_int(st, 1, open_id);
		if (sqlite3_step(st) == SQLITE_ROW)
			started = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
		if (started) {
			/* refused either way: which words, by srun_unclosed() */
			if (mdb_load_run(d, open_id, &orun, err) < 0) {
				srun_release(&orun);
				return -1;
			}
			unclosed = srun_unclosed(&orun);
			srun_release(&orun);
			if (unclosed)
				return err_set(err, MS_ERR_DATA, "run %d is applied but not "
					       "closed (its change and deploy lists were not "
					       "written): apply again writes them, or rollback "
					       "undoes it", open_id);
		}
		if (started)
			return err_set(err, MS_ERR_DATA, "run %d is partly applied: finish it "
				       "with apply or undo it with rollback", open_id);
		run = open_id;   /* replaced in the transaction storing the new plan */
		*replace = 1;
	} else {
		sqlite3_stmt *st = NULL;
		if (mdb_prepare(d, &st, "SELECT coalesce(max(id), 0) + 1 FROM runs", err) < 0)
			return -1;
		if (sqlite3_step(st) == SQLITE_ROW)
			run = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	*run_out = run;
	return 0;
}

int mdb_open_all(const struct migrate_opts *o, int need_map, struct mdb **d,
		    struct migrate_map **map, struct ms_err *err)
{
	struct stat sb;
	int r;

	*d = NULL;
	*map = NULL;
	if (!o->fleet_dir)
		return err_set(err, MS_ERR_USAGE, "--fleet is required");
	if (stat(o->fleet_dir, &sb) < 0 || !S_ISDIR(sb.st_mode))
		return err_set(err, MS_ERR_IO, "cannot read fleet folder '%s': %s",
			       o->fleet_dir, stat(o->fleet_dir, &sb) < 0 ?
			       strerror(errno) : "not a directory");
	if (need_map) {
		if (!o->map_path)
			return err_set(err, MS_ERR_USAGE, "--map is required");
		if (migrate_map_load(map, o->map_path, err) < 0)
			return -1;
	}
	if ((r = db_open(d, o, need_map, err)) != 0) {
		migrate_map_free(*map);
		*map = NULL;
	}
	return r;
}
