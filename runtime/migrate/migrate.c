/*
 * migrate.c - apply, status and rollback of a planned run: the
 * files written (each item committed before and after its write), the
 * change lists for the scheduler (see migrate.h for the guarantees).
 */
#include "migrate/migrate_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "audit/fleet.h"
#include "auth/seal.h"
#include "base/digest.h"
#include "base/fsutil.h"
#include "base/mem.h"
#include "base/platform.h"
#include "ini/ini.h"

/* Read a fleet file and hash it; 1 when it does not exist.  *mode is the
 * file's mode (0600 when it does not exist), kept when it is rewritten. */
static int hash_file(const char *fleet, const char *rel, const char *kind,
		     char *hex, mode_t *mode, struct ms_err *err)
{
	char *file = fs_join(fleet, rel), *data = NULL;
	size_t len = 0;
	int rc;

	*mode = 0600;
	if (!file)
		return err_nomem(err);
	rc = fs_read_file_mode(file, strcmp(kind, "ini") == 0 ? INI_MAX_FILE :
			       EXPORT_MAX, &data, &len, mode, err);
	if (rc == 0)
		digest_sha256_hex(data, len, hex);
	mig_wipe_bytes(data, len);
	free(file);
	return rc;
}

static int set_reason(struct sitem *it, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int set_reason(struct sitem *it, const char *fmt, ...)
{
	va_list ap;
	int n;

	free(it->next_reason);
	va_start(ap, fmt);
	n = vasprintf(&it->next_reason, fmt, ap);
	va_end(ap);
	if (n < 0)
		it->next_reason = NULL;
	return 0;
}

/* Whether the file of an item is still the one plan read: its identity
 * (mig_seen) unchanged.  Then its hash is the original's and reading it
 * again is not needed; *mode is its mode. */
static int unchanged_since_plan(const char *fleet, const struct sitem *it,
				mode_t *mode)
{
	char *file, now[MIG_SEEN_MAX];
	struct stat st;
	int same;

	if (!it->seen || it->state != MI_PLANNED || !(file = fs_join(fleet, it->path)))
		return 0;
	same = stat(file, &st) == 0 && mig_file_id(&st, now, sizeof(now)) == 0 &&
	       strcmp(now, it->seen) == 0;
	free(file);
	if (same)
		*mode = st.st_mode & 07777;
	return same;
}

/* Seal the literal client secret into the planned bytes. */
static int seal_item(const struct migrate_map *map, struct sitem *it,
		     struct ms_err *err)
{
	struct migrate_tenant_view tv;
	struct ini *ini = NULL;
	char *nl, *sealed = NULL, *out = NULL;
	size_t outlen = 0;
	int rc = -1;

	if (!(nl = strchr(it->seal, '\n')))
		return err_set(err, MS_ERR_DATA, "bad seal reference");
	*nl = '\0';
	if (!map || migrate_map_find_id(map, it->seal, nl + 1, &tv) < 0 ||
	    !tv.secret_literal) {
		err_set(err, MS_ERR_CONFIG, "the mapping file has no literal client "
			"secret for tenant %s, client %s any more", it->seal, nl + 1);
		*nl = '\n';
		return -1;
	}
	*nl = '\n';
	if (seal_value(tv.client_secret, &sealed, err) < 0 ||
	    ini_parse(&ini, it->path, it->new, it->new_len, err) < 0 ||
	    ini_set(ini, "OAuth", "ClientSecret", sealed, err) < 0 ||
	    ini_serialize(ini, &out, &outlen, err) < 0)
		goto done;
	mig_wipe_bytes(it->new, it->new_len);
	it->new = out;
	it->new_len = outlen;
	out = NULL;
	digest_sha256_hex(it->new, it->new_len, it->new_sha);
	rc = 0;
done:
	free(out);
	free(sealed);
	ini_free(ini);
	return rc;
}

/* A set of strings (folder and file paths), open addressing. */
struct strset {
	char **slot;
	size_t cap, n;
};

static size_t str_hash(const char *p)
{
	size_t h = 2166136261u;

	for (; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h;
}

static void strset_free(struct strset *s)
{
	size_t i;

	for (i = 0; i < s->cap; i++)
		free(s->slot[i]);
	free(s->slot);
	memset(s, 0, sizeof(*s));
}

static int strset_has(const struct strset *s, const char *k)
{
	size_t i;

	if (!s->cap)
		return 0;
	for (i = str_hash(k) & (s->cap - 1); s->slot[i]; i = (i + 1) & (s->cap - 1))
		if (strcmp(s->slot[i], k) == 0)
			return 1;
	return 0;
}

/* Add a copy of k: 1 when added, 0 when already there, -1 out of memory. */
static int strset_add(struct strset *s, const char *k)
{
	size_t i;

	if (strset_has(s, k))
		return 0;
	if ((s->n + 1) * 2 > s->cap) {
		struct strset g = { NULL, s->cap ? s->cap * 2 : 64, 0 };
		if (!(g.slot = calloc(g.cap, sizeof(*g.slot))))
			return -1;
		for (i = 0; i < s->cap; i++) {
			size_t j;
			if (!s->slot[i])
				continue;
			for (j = str_hash(s->slot[i]) & (g.cap - 1); g.slot[j];
			     j = (j + 1) & (g.cap - 1))
				;
			g.slot[j] = s->slot[i];
			g.n++;
		}
		free(s->slot);
		*s = g;
	}
	for (i = str_hash(k) & (s->cap - 1); s->slot[i]; i = (i + 1) & (s->cap - 1))
		;
	if (!(s->slot[i] = strdup(k)))
		return -1;
	s->n++;
	return 1;
}

/* What apply and rollback know while they write a run's files: the
 * run's file paths, the folders already cleaned of stale temporary
 * files, and the folders the current batch renamed files in (each is
 * fsynced once before the batch's states are committed). */
struct wctx {
	const struct migrate_opts *o;
	struct strset items;      /* fleet-relative paths of the run's items */
	struct strset cleaned;    /* folders listed for stale temporary files */
	struct strset batch;      /* folders with a rename not yet fsynced */
	char **dirs;              /* batch's folders, in order */
	size_t n_dirs, alloc_dirs;
	size_t writes;
	struct wfile *files;      /* the batch's files to write */
	size_t n_files, alloc_files;
};

static char *rel_dir(const char *path);
static int clean_dir(struct wctx *w, const char *dir, struct ms_err *err);

/* Also removes the temporary files a killed run left beside any of the
 * run's files -- in every folder of the run, not only those this command
 * still writes to (a resumed run may have nothing left to write there). */
static int wctx_init(struct wctx *w, const struct migrate_opts *o,
		     const struct srun *r, struct ms_err *err)
{
	size_t i;

	memset(w, 0, sizeof(*w));
	w->o = o;
	for (i = 0; i < r->n; i++)
		if (strset_add(&w->items, r->items[i].path) < 0)
			return err_nomem(err);
	for (i = 0; i < r->n; i++) {
		char *dir = rel_dir(r->items[i].path);
		int rc;

		if (!dir)
			return err_nomem(err);
		rc = clean_dir(w, dir, err);
		free(dir);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static void wctx_release(struct wctx *w)
{
	size_t i;

	strset_free(&w->items);
	strset_free(&w->cleaned);
	strset_free(&w->batch);
	for (i = 0; i < w->n_dirs; i++)
		free(w->dirs[i]);
	free(w->dirs);
	free(w->files);
	memset(w, 0, sizeof(*w));
}

/* The fleet-relative folder of a fleet-relative path ("" at the top). */
static char *rel_dir(const char *path)
{
	const char *slash = strrchr(path, '/');

	return strndup(path, slash ? (size_t)(slash - path) : 0);
}

/* A run killed while writing its change list leaves ".changes.json.tmp.
 * PID.N" (or .csv) in that run's folder; remove those of dead processes. */
static void clean_changelist_dir(const char *dir)
{
	struct dirent *de;
	DIR *dh = opendir(dir);

	if (!dh)
		return;
	while ((de = readdir(dh)) != NULL) {
		const char *nm = de->d_name, *t;
		long pid;
		char *p;

		if (strncmp(nm, ".changes.json.tmp.", 18) == 0 ||
		    strncmp(nm, ".deploy.json.tmp.", 17) == 0)
			t = nm + (nm[1] == 'c' ? 18 : 17);
		else if (strncmp(nm, ".changes.csv.tmp.", 17) == 0 ||
			 strncmp(nm, ".deploy.csv.tmp.", 16) == 0)
			t = nm + (nm[1] == 'c' ? 17 : 16);
		else
			continue;
		pid = strtol(t, NULL, 10);
		if (pid <= 0 || platform_pid_alive(pid))
			continue;
		if ((p = fs_join(dir, nm))) {
			unlink(p);
			free(p);
		}
	}
	closedir(dh);
}

/* Every run folder under FLEET/migrate (a bounded listing: one per run). */
static void clean_changelists(const char *base)
{
	struct dirent *de;
	DIR *dh = opendir(base);

	if (!dh)
		return;
	while ((de = readdir(dh)) != NULL) {
		char *d;

		if (strncmp(de->d_name, "run-", 4) != 0 || !(d = fs_join(base, de->d_name)))
			continue;
		clean_changelist_dir(d);
		free(d);
	}
	closedir(dh);
}

/* A process killed inside an atomic write leaves ".NAME.tmp.PID.N" next
 * to the file (the file itself is intact).  Once per folder of the run,
 * remove those of dead processes whose NAME is one of the run's files in
 * that folder: one listing per folder, not per file. */
static int clean_dir(struct wctx *w, const char *dir, struct ms_err *err)
{
	struct dirent *de;
	char *abs;
	DIR *dh;
	int added = strset_add(&w->cleaned, dir);

	if (added < 0)
		return err_nomem(err);
	if (!added)
		return 0;
	if (!(abs = *dir ? fs_join(w->o->fleet_dir, dir) : strdup(w->o->fleet_dir)))
		return err_nomem(err);
	if (!(dh = opendir(abs))) {
		free(abs);
		return 0;         /* the write reports what is wrong */
	}
	while ((de = readdir(dh)) != NULL) {
		const char *nm = de->d_name, *t, *q;
		char *end, *rel = NULL, *p;
		long pid;

		if (nm[0] != '.')
			continue;
		/* ".NAME.tmp.PID.N": NAME may itself contain ".tmp." */
		for (t = strstr(nm + 1, ".tmp."); t; t = strstr(t + 1, ".tmp.")) {
			pid = strtol(t + 5, &end, 10);
			if (pid <= 0 || *end != '.')
				continue;
			for (q = end + 1; *q >= '0' && *q <= '9'; q++)
				;
			if (q == end + 1 || *q)
				continue;
			if (platform_pid_alive(pid))
				continue;
			if (asprintf(&rel, "%s%s%.*s", dir, *dir ? "/" : "",
				     (int)(t - nm - 1), nm + 1) < 0) {
				rel = NULL;
				break;
			}
			if (strset_has(&w->items, rel) && (p = fs_join(abs, nm))) {
				unlink(p);
				free(p);
			}
			free(rel);
			rel = NULL;
			break;
		}
	}
	closedir(dh);
	free(abs);
	return 0;
}

/* One file of a batch to write: the item, its bytes, what came of it. */
struct wfile {
	struct sitem *it;
	const char *data;
	size_t len;
	char *file;               /* absolute path */
	int rc;
	struct ms_err err;
};

/* How many files are read or written at once.  A durable write waits on
 * its fsync, and a journaling file system commits the fsyncs in flight
 * together (ext4's and NTFS's journals group them): measured on the B4
 * fleet's disk, 4,000 INI files copied and fsynced took 2.7-5.8 s one at
 * a time and 0.7 s eight at a time.  Reading files not in the page cache
 * waits on the disk the same way. */
#define WORKERS 8

struct pool {
	size_t n, next;
	void (*fn)(void *ctx, size_t i);
	void *ctx;
	pthread_mutex_t mu;
};

static void *pool_main(void *arg)
{
	struct pool *p = arg;

	for (;;) {
		size_t i;

		pthread_mutex_lock(&p->mu);
		i = p->next < p->n ? p->next++ : p->n;
		pthread_mutex_unlock(&p->mu);
		if (i == p->n)
			return NULL;
		p->fn(p->ctx, i);
	}
}

/* fn(ctx, i) for each i < n, from up to WORKERS threads (the calling one
 * too; a thread that cannot be started leaves its share to the others).
 * fn touches nothing shared but its own i. */
static void pool_run(size_t n, void (*fn)(void *ctx, size_t i), void *ctx)
{
	struct pool p = { n, 0, fn, ctx, PTHREAD_MUTEX_INITIALIZER };
	pthread_t th[WORKERS - 1];
	size_t k, started = 0;

	for (k = 0; k + 1 < WORKERS && k + 1 < n; k++)
		if (pthread_create(&th[started], NULL, pool_main, &p) == 0)
			started++;
	pool_main(&p);
	for (k = 0; k < started; k++)
		pthread_join(th[k], NULL);
	pthread_mutex_destroy(&p.mu);
}

static void write_one(void *ctx, size_t i)
{
	struct wfile *f = (struct wfile *)ctx + i;

	f->rc = fs_write_atomic_nodirsync(f->file, f->data, f->len, f->it->mode,
					  &f->err);
}

/* A file of a batch to hash: the result of hash_file(). */
struct hfile {
	const char *fleet;
	struct sitem *it;
	int h;
	char cur[65];
	struct ms_err err;
};

static void hash_one(void *ctx, size_t i)
{
	struct hfile *f = (struct hfile *)ctx + i;

	f->h = hash_file(f->fleet, f->it->path, f->it->kind, f->cur, &f->it->mode,
			 &f->err);
}

/* Write the files of a batch durably but for their folders' entries: the
 * caller must sync_dirs() before it records them as done.  Each item's
 * next state becomes done, or MI_FAILED with the reason.  With a test
 * hook (after_write) the files are written one at a time, the hook
 * called after each, so that a crash after the Nth write is exact. */
static int write_files(struct wctx *w, struct wfile *f, size_t n,
		       enum migrate_item_state done, struct ms_err *err)
{
	size_t k;
	int rc = -1, added;

	for (k = 0; k < n; k++) {
		f[k].file = NULL;
		f[k].rc = -1;
		memset(&f[k].err, 0, sizeof(f[k].err));
	}
	for (k = 0; k < n; k++) {
		struct sitem *it = f[k].it;

		free(it->dir);
		if (!(it->dir = rel_dir(it->path)) ||
		    !(f[k].file = fs_join(w->o->fleet_dir, it->path))) {
			err_nomem(err);
			goto done;
		}
		if (clean_dir(w, it->dir, err) < 0)
			goto done;
	}
	if (w->o->after_write) {
		for (k = 0; k < n; k++) {
			f[k].rc = fs_write_atomic_nodirsync(f[k].file, f[k].data, f[k].len,
							    f[k].it->mode, &f[k].err);
			if (f[k].rc == 0)
				w->o->after_write(++w->writes, w->o->hook_ctx);
		}
	} else {
		pool_run(n, write_one, f);
	}
	for (k = 0; k < n; k++) {
		struct sitem *it = f[k].it;

		if (f[k].rc < 0) {
			it->next = MI_FAILED;
			set_reason(it, "%s", f[k].err.msg);
			continue;
		}
		it->next = done;
		if ((added = strset_add(&w->batch, it->dir)) < 0) {
			err_nomem(err);
			goto done;
		}
		if (added) {
			if (MEM_GROW(w->dirs, w->alloc_dirs, w->n_dirs + 1, err))
				goto done;
			if (!(w->dirs[w->n_dirs] = strdup(it->dir))) {
				err_nomem(err);
				goto done;
			}
			w->n_dirs++;
		}
	}
	rc = 0;
done:
	for (k = 0; k < n; k++)
		free(f[k].file);
	return rc;
}

/* Add an item to the batch's files to write (data borrowed until
 * write_files()). */
static int batch_add(struct wctx *w, struct sitem *it, const char *data,
		     size_t len, struct ms_err *err)
{
	if (MEM_GROW(w->files, w->alloc_files, w->n_files + 1, err))
		return -1;
	w->files[w->n_files].it = it;
	w->files[w->n_files].data = data ? data : "";
	w->files[w->n_files].len = len;
	w->n_files++;
	return 0;
}

/* A folder of the batch to fsync, and how that went. */
struct dsync {
	const char *fleet, *dir;
	int rc;
	struct ms_err err;
};

static void sync_one(void *ctx, size_t i)
{
	struct dsync *f = (struct dsync *)ctx + i;
	char *abs = *f->dir ? fs_join(f->fleet, f->dir) : strdup(f->fleet);

	f->rc = abs ? fs_fsync_dir(abs, &f->err) : err_nomem(&f->err);
	free(abs);
}

/* fsync every folder the batch renamed a file in, once.  An item whose
 * folder cannot be synced is failed (with the folder's error) and marked
 * with write = -1; returns how many were. */
static size_t sync_dirs(struct wctx *w, struct srun *r, size_t from, size_t to)
{
	struct dsync *ds = calloc(w->n_dirs ? w->n_dirs : 1, sizeof(*ds));
	size_t i, k, bad = 0;

	for (k = 0; ds && k < w->n_dirs; k++) {
		ds[k].fleet = w->o->fleet_dir;
		ds[k].dir = w->dirs[k];
	}
	/* several at once, as the files were written */
	if (ds)
		pool_run(w->n_dirs, sync_one, ds);
	for (k = 0; k < w->n_dirs; k++) {
		struct ms_err lerr = MS_ERR_INIT;

		if (ds && ds[k].rc == 0)
			continue;
		if (ds)
			lerr = ds[k].err;
		else
			err_nomem(&lerr);
		for (i = from; i < to; i++) {
			struct sitem *it = &r->items[i];
			if (it->write > 0 && it->dir && strcmp(it->dir, w->dirs[k]) == 0 &&
			    it->next != MI_NONE && it->next != MI_FAILED) {
				it->next = MI_FAILED;
				set_reason(it, "%s", lerr.msg);
				it->write = -1;
				bad++;
			}
		}
	}
	free(ds);
	for (k = 0; k < w->n_dirs; k++)
		free(w->dirs[k]);
	w->n_dirs = 0;
	strset_free(&w->batch);
	return bad;
}

static int csv_field(struct buf *b, const char *s, int last, struct ms_err *err)
{
	if (buf_appends(b, "\"", err) < 0)
		return -1;
	for (; *s; s++)
		if (buf_append(b, s, 1, err) < 0 ||
		    (*s == '"' && buf_append(b, s, 1, err) < 0))
			return -1;
	return buf_appends(b, last ? "\"\r\n" : "\",", err);
}


/* One JSON object of string fields. */
static int json_row(struct buf *js, size_t n, const char *const *names,
		    const char *const *f, size_t nf, struct ms_err *err)
{
	size_t k;

	if (buf_appends(js, n ? ",\n  {" : "\n  {", err) < 0)
		return -1;
	for (k = 0; k < nf; k++) {
		if (buf_appendf(js, err, "%s\"%s\": ", k ? ", " : "", names[k]) < 0)
			return -1;
		mig_jstr(js, f[k], err);
	}
	return buf_appends(js, "}", err);
}

/* The cutover packet of a run, in --out DIR or FLEET/migrate/run-N
 * (run-N-rollback after a rollback):
 *  - changes.json/.csv: the job command lines for the scheduler (action
 *    change or manual, old and new, note);
 *  - deploy.json/.csv: every INI file to copy back to its machine, with
 *    the machine, its Windows path, the file in the fleet and its SHA-256.
 * After rollback, the reverse of both: the command lines back to the old
 * ones (action revert), and the restored original INI files to copy.
 * Long (about 130 lines): the two files of each pair are built side by
 * side from the same rows, so they cannot disagree. */
static int write_changes(const struct migrate_opts *o, const struct srun *r,
			 int rollback, struct ms_err *err)
{
	static const char *const cnames[7] = { "schedule", "job", "machine", "action",
					       "old", "new", "note" };
	static const char *const dnames[5] = { "machine", "path", "file", "sha256",
					       "jobs" };
	enum migrate_item_state done_state = rollback ? MI_ROLLED_BACK : MI_APPLIED;
	struct buf js, cs, dj, dc;
	char *dir = NULL, *path = NULL;
	size_t i, n = 0, nd = 0;
	int rc = -1;

	buf_init(&js, BUF_DEFAULT_CAP);
	buf_init(&cs, BUF_DEFAULT_CAP);
	buf_init(&dj, BUF_DEFAULT_CAP);
	buf_init(&dc, BUF_DEFAULT_CAP);
	if (buf_appendf(&js, err, "{\"run\": %d, \"rollback\": %s, \"changes\": [", r->id,
			rollback ? "true" : "false") < 0 ||
	    buf_appends(&cs, "schedule,job,machine,action,old_command_line,"
			"new_command_line,note\r\n", err) < 0 ||
	    buf_appendf(&dj, err, "{\"run\": %d, \"rollback\": %s, \"files\": [", r->id,
			rollback ? "true" : "false") < 0 ||
	    buf_appends(&dc, "machine,windows_path,fleet_file,sha256,jobs\r\n", err) < 0)
		goto done;
	for (i = 0; i < r->n_jobs; i++) {
		const struct sjob *j = &r->jobs[i];
		const struct sitem *ini = j->ini_item > 0 && (size_t)j->ini_item <= r->n ?
					  &r->items[j->ini_item - 1] : NULL;
		const char *f[7];
		size_t k;

		if (!ini || ini->state != done_state ||
		    (j->action != MJ_CHANGE && j->action != MJ_MANUAL))
			continue;
		f[0] = j->schedule; f[1] = j->job; f[2] = j->machine;
		f[3] = migrate_job_action_name(j->action);
		f[4] = j->old_cmd; f[5] = j->new_cmd; f[6] = j->note;
		if (rollback) {
			f[4] = j->new_cmd;
			f[5] = j->old_cmd;
			if (j->action == MJ_CHANGE)
				f[3] = "revert";
			else
				f[6] = "if this job was changed by hand at cutover, put its "
				       "old command line back";
		}
		/* a manual row says what to do by hand: no command line that
		 * could be pasted into the job (with -password:*** in it) */
		if (j->action == MJ_MANUAL) {
			f[4] = f[5] = "";
		}
		if (json_row(&js, n++, cnames, f, 7, err) < 0)
			goto done;
		for (k = 0; k < 7; k++)
			if (csv_field(&cs, f[k], k == 6, err) < 0)
				goto done;
	}
	for (i = 0; i < r->n; i++) {
		const struct sitem *it = &r->items[i];
		char *machine = NULL, *wp;
		const char *f[5];
		size_t k;

		if (strcmp(it->kind, "ini") || it->state != done_state)
			continue;
		wp = fleet_windows_path(it->path, &machine);
		f[0] = it->machine ? it->machine : machine ? machine : "";
		f[1] = wp ? wp : "";
		f[2] = it->path;
		f[3] = rollback ? it->orig_sha : it->new_sha;
		f[4] = it->jobs ? it->jobs : "";
		rc = json_row(&dj, nd++, dnames, f, 5, err);
		for (k = 0; rc == 0 && k < 5; k++)
			rc = csv_field(&dc, f[k], k == 4, err);
		free(wp);
		free(machine);
		if (rc < 0)
			goto done;
		rc = -1;
	}
	if (buf_appends(&js, n ? "\n]}\n" : "]}\n", err) < 0 ||
	    buf_appends(&dj, nd ? "\n]}\n" : "]}\n", err) < 0)
		goto done;
	if (o->out_dir) {
		if (!(dir = strdup(o->out_dir)))
			goto nomem;
	} else if (asprintf(&dir, "%s/migrate/run-%d%s", o->fleet_dir, r->id,
			    rollback ? "-rollback" : "") < 0) {
		dir = NULL;
		goto nomem;
	}
	if (fs_mkdirs(dir, 0755, err) < 0)
		goto done;
	if (o->out_dir) {
		clean_changelist_dir(dir);
	} else {
		char *base = fs_join(o->fleet_dir, "migrate");
		if (!base)
			goto nomem;
		clean_changelists(base);
		free(base);
	}
	{
		static const char *const files[4] = { "changes.json", "changes.csv",
						      "deploy.json", "deploy.csv" };
		const struct buf *bufs[4] = { &js, &cs, &dj, &dc };
		size_t k;

		for (k = 0; k < 4; k++) {
			free(path);
			if (!(path = fs_join(dir, files[k])))
				goto nomem;
			if (fs_write_atomic(path, bufs[k]->data, bufs[k]->len, 0644, err) < 0)
				goto done;
		}
	}
	mig_outf(o, "change list: %s/changes.json, %s/changes.csv (%zu job%s)\n", dir, dir,
	     n, n == 1 ? "" : "s");
	mig_outf(o, "deploy list: %s/deploy.json, %s/deploy.csv (%zu INI file%s to copy %s "
	     "the machines)\n", dir, dir, nd, nd == 1 ? "" : "s",
	     rollback ? "back, restored, to" : "to");
	rc = 0;
	goto done;
nomem:
	rc = err_nomem(err);
done:
	free(path);
	free(dir);
	buf_release(&js);
	buf_release(&cs);
	buf_release(&dj);
	buf_release(&dc);
	return rc;
}

static int run_finished(struct mdb *d, struct srun *r, struct ms_err *err)
{
	size_t i;
	char sql[128];

	for (i = 0; i < r->n; i++)
		if (r->items[i].state == MI_PLANNED ||
		    r->items[i].state == MI_APPLYING)
			return 0;
	snprintf(sql, sizeof(sql), "UPDATE runs SET state = 'done' WHERE id = %d;",
		 r->id);
	return mdb_exec(d, sql, err);
}

/* Long (about 160 lines) on purpose: the exactly-once order of apply
 * (commit the new bytes as "applying", write, fsync the folders, commit
 * "applied", batch by batch) is the guarantee of migrate.h and is read
 * and reviewed as one sequence. */
int migrate_apply(const struct migrate_opts *o, struct migrate_result *res,
		  struct ms_err *err)
{
	struct migrate_map *map = NULL;
	struct mdb *d = NULL;
	struct srun r;
	struct wctx w;
	size_t i, b0;
	int run = 0, f, rc = -1;

	memset(res, 0, sizeof(*res));
	memset(&r, 0, sizeof(r));
	memset(&w, 0, sizeof(w));
	if (mdb_open_all(o, 1, &d, &map, err) < 0)
		return -1;
	if ((f = mdb_find_run(d, 0, 1, &run, err)) < 0)
		goto done;
	if (f == 1) {
		struct migrate_result pr;
		memset(&pr, 0, sizeof(pr));
		if (mig_do_plan(o, d, map, 0, &pr, err) < 0)
			goto done;
		run = pr.run;
		mig_outf(o, "planned run %d: %zu item%s\n", run, pr.items,
		     pr.items == 1 ? "" : "s");
	}
	if (mdb_load_run(d, run, &r, err) < 0 || mdb_check_key(d, &r, err) < 0)
		goto done;
	if (f != 1) {
		/* a run planned by plan and not started is applied, not resumed */
		int started = 0;
		for (i = 0; i < r.n; i++)
			started |= r.items[i].state != MI_PLANNED &&
				   r.items[i].state != MI_SKIPPED;
		mig_outf(o, "%s run %d\n", started ? "resuming" : "applying", run);
	}
	mig_mark_matches(o, &r);
	res->run = run;
	if (wctx_init(&w, o, &r, err) < 0)
		goto done;
	/* Each batch: commit the bytes about to be written (state applying),
	 * write every file (tmp, fsync, rename), fsync each folder once, then
	 * commit the applied states.  An item is only recorded applied once
	 * its bytes and its folder entry are durable; a crash before that
	 * leaves it applying, and the next apply finds the new hash. */
	for (b0 = 0; b0 < r.n; b0 += BATCH) {
		size_t e = b0 + BATCH < r.n ? b0 + BATCH : r.n;

		/* 1: decide, and commit the bytes about to be written */
		if (mdb_exec(d, "BEGIN;", err) < 0)
			goto done;
		for (i = b0; i < e; i++) {
			struct sitem *it = &r.items[i];
			struct ms_err lerr = MS_ERR_INIT;
			char cur[65] = "";
			int h, with_new = 0;

			it->next = MI_NONE;
			it->write = 0;
			if (!it->match || (it->state != MI_PLANNED &&
					   it->state != MI_APPLYING))
				continue;
			if (unchanged_since_plan(o->fleet_dir, it, &it->mode)) {
				memcpy(cur, it->orig_sha, sizeof(cur));
				h = 0;
			} else {
				h = hash_file(o->fleet_dir, it->path, it->kind, cur,
					      &it->mode, &lerr);
			}
			if (h != 0) {
				it->next = MI_FAILED;
				set_reason(it, "%s", h > 0 ? "the file no longer exists" :
					   lerr.msg);
			} else if (strcmp(cur, it->new_sha) == 0) {
				it->next = MI_APPLIED;   /* written before a crash */
				it->written = 1;
			} else if (strcmp(cur, it->orig_sha) != 0) {
				it->next = MI_CONFLICT;
				set_reason(it, "the file changed since the plan (its hash matches "
					   "neither the original nor the new version)");
			} else {
				if (mdb_item_bytes(d, run, it, "new", &it->new, &it->new_len,
						   err) < 0) {
					sqlite3_exec(d->db, "ROLLBACK;", NULL, NULL, NULL);
					goto done;
				}
				if (it->state == MI_PLANNED && it->seal) {
					if (seal_item(map, it, &lerr) < 0) {
						it->next = MI_FAILED;
						set_reason(it, "%s", lerr.msg);
						goto record;
					}
					with_new = 1;
				}
				it->next = MI_APPLYING;
				it->written = 1;
				it->write = 1;
			}
record:
			if (mdb_set_item(d, run, it, with_new, err) < 0) {
				sqlite3_exec(d->db, "ROLLBACK;", NULL, NULL, NULL);
				goto done;
			}
		}
		if (mdb_exec(d, "COMMIT;", err) < 0)
			goto done;
		/* 2: write, several files at once */
		w.n_files = 0;
		for (i = b0; i < e; i++)
			if (r.items[i].write &&
			    batch_add(&w, &r.items[i], r.items[i].new, r.items[i].new_len,
				      err) < 0)
				goto done;
		if (write_files(&w, w.files, w.n_files, MI_APPLIED, err) < 0)
			goto done;
		for (i = b0; i < e; i++) {
			mig_wipe_bytes(r.items[i].new, r.items[i].new_len);
			r.items[i].new = NULL;
			r.items[i].new_len = 0;
		}
		/* 3: make the renames durable, one fsync per folder */
		sync_dirs(&w, &r, b0, e);
		/* 4: record */
		if (mdb_exec(d, "BEGIN;", err) < 0)
			goto done;
		for (i = b0; i < e; i++)
			if (r.items[i].write && mdb_set_item(d, run, &r.items[i], 0, err) < 0) {
				sqlite3_exec(d->db, "ROLLBACK;", NULL, NULL, NULL);
				goto done;
			}
		if (mdb_exec(d, "COMMIT;", err) < 0)
			goto done;
	}
	for (i = 0; i < r.n; i++) {
		struct sitem *it = &r.items[i];
		if (!it->match)
			continue;
		res->items++;
		mig_count_state(res, it->state);
		if (it->state != MI_APPLIED && it->state != MI_PLANNED)
			mig_outf(o, "%-11s %s %s%s%s\n", migrate_item_state_name(it->state), it->kind, it->path,
			     it->reason ? ": " : "", it->reason ? it->reason : "");
		else
			mig_outf(o, "%-11s %s %s\n", migrate_item_state_name(it->state), it->kind, it->path);
	}
	for (i = 0; i < r.n_jobs; i++) {
		const struct sjob *j = &r.jobs[i];
		const struct sitem *ini = j->ini_item > 0 && (size_t)j->ini_item <= r.n ?
					  &r.items[j->ini_item - 1] : NULL;
		if (ini && ini->match && ini->state == MI_APPLIED) {
			if (j->action == MJ_MANUAL) {
				res->manual++;
				mig_outf(o, "manual: %s/%s (%s): %s\n", j->schedule, j->job,
				     j->machine, j->note);
			} else if (j->action == MJ_CHANGE) {
				res->jobs_changed++;
			}
		}
	}
	if (run_finished(d, &r, err) < 0 || (r.n && write_changes(o, &r, 0, err) < 0))
		goto done;
	mig_outf(o, "summary: run %d: %zu applied, %zu skipped, %zu conflict, %zu failed, "
	     "%zu still planned; %zu job command line%s to change, %zu for manual "
	     "action\n", run, res->applied, res->skipped, res->conflict, res->failed,
	     res->planned, res->jobs_changed, res->jobs_changed == 1 ? "" : "s",
	     res->manual);
	rc = 0;
done:
	wctx_release(&w);
	srun_release(&r);
	mdb_close(d);
	migrate_map_free(map);
	return rc;
}

static int status_json(const struct migrate_opts *o, const struct srun *r,
		       struct migrate_result *res, struct ms_err *err)
{
	struct buf b;
	size_t i, n = 0;

	buf_init(&b, (size_t)1 << 30);
	buf_appendf(&b, err, "{\"command\": \"status\", \"run\": %d, ", r->id);
	mig_jkv(&b, 1, "state", r->state, err);
	buf_appends(&b, ",\n \"items\": [", err);
	for (i = 0; i < r->n; i++) {
		const struct sitem *it = &r->items[i];

		if (!it->match)
			continue;
		res->items++;
		mig_count_state(res, it->state);
		buf_appends(&b, n++ ? ",\n  {" : "\n  {", err);
		mig_jkv(&b, 1, "kind", it->kind, err);
		mig_jkv(&b, 0, "path", it->path, err);
		mig_jkv(&b, 0, "machine", it->machine, err);
		mig_jkv(&b, 0, "state", migrate_item_state_name(it->state), err);
		mig_jkv(&b, 0, "reason", it->reason, err);
		mig_jkv(&b, 0, "jobs", it->jobs, err);
		buf_appends(&b, "}", err);
	}
	buf_appends(&b, n ? "\n ],\n \"jobs\": [" : "],\n \"jobs\": [", err);
	n = 0;
	for (i = 0; i < r->n_jobs; i++) {
		const struct sjob *j = &r->jobs[i];
		int manual = j->action == MJ_MANUAL;

		if (!mig_job_matches(o, j) || j->action == MJ_NONE ||
		    j->action == MJ_SKIPPED)
			continue;
		res->manual += manual;
		buf_appends(&b, n++ ? ",\n  {" : "\n  {", err);
		mig_jkv(&b, 1, "schedule", j->schedule, err);
		mig_jkv(&b, 0, "job", j->job, err);
		mig_jkv(&b, 0, "machine", j->machine, err);
		mig_jkv(&b, 0, "action", migrate_job_action_name(j->action), err);
		mig_jkv(&b, 0, "old", manual ? "" : j->old_cmd, err);
		mig_jkv(&b, 0, "new", manual ? "" : j->new_cmd, err);
		mig_jkv(&b, 0, "note", j->note, err);
		buf_appends(&b, "}", err);
	}
	buf_appendf(&b, err, "%s],\n \"summary\": {\"planned\": %zu, \"applied\": %zu, "
		    "\"skipped\": %zu, \"conflict\": %zu, \"failed\": %zu, "
		    "\"rolled_back\": %zu, \"manual\": %zu}}\n", n ? "\n " : "",
		    res->planned, res->applied, res->skipped, res->conflict, res->failed,
		    res->rolled_back, res->manual);
	if (err->code != MS_OK) {
		buf_release(&b);
		return -1;
	}
	mig_jout(o, &b, err);
	return 0;
}

int migrate_status(const struct migrate_opts *o, struct migrate_result *res,
		   struct ms_err *err)
{
	struct migrate_map *map = NULL;
	struct mdb *d = NULL;
	struct srun r;
	size_t i;
	int run = 0, f, rc = -1;

	memset(res, 0, sizeof(*res));
	memset(&r, 0, sizeof(r));
	if ((f = mdb_open_all(o, 0, &d, &map, err)) < 0)
		return -1;
	if (f == 1) {
		if (o->run > 0)
			return err_set(err, MS_ERR_USAGE, "no run %d: no state database yet",
				       o->run);
		mig_outf(o, o->json ? "{\"command\": \"status\", \"run\": null}\n" :
		     "no runs yet\n");
		return 0;
	}
	if ((f = mdb_find_run(d, o->run, 0, &run, err)) < 0)
		goto done;
	if (f == 1) {
		if (o->run > 0)
			err_set(err, MS_ERR_USAGE, "no run %d in '%s'", o->run, d->path);
		else {
			mig_outf(o, o->json ? "{\"command\": \"status\", \"run\": null}\n" :
			     "no runs yet\n");
			rc = 0;
		}
		goto done;
	}
	if (mdb_load_run(d, run, &r, err) < 0)
		goto done;
	mig_mark_matches(o, &r);
	res->run = run;
	if (o->json) {
		rc = status_json(o, &r, res, err);
		goto done;
	}
	mig_outf(o, "run %d: %s\n", run, r.state);
	for (i = 0; i < r.n; i++) {
		struct sitem *it = &r.items[i];
		if (!it->match)
			continue;
		res->items++;
		mig_count_state(res, it->state);
		char *js = mig_jobs_shown(it->jobs);
		mig_outf(o, "%-11s %-6s %s [%s]%s%s\n", migrate_item_state_name(it->state), it->kind, it->path,
		     js ? js : "", it->reason ? ": " : "", it->reason ? it->reason : "");
		free(js);
	}
	for (i = 0; i < r.n_jobs; i++) {
		const struct sjob *j = &r.jobs[i];
		if (!mig_job_matches(o, j) || j->action == MJ_NONE ||
		    j->action == MJ_SKIPPED)
			continue;
		if (j->action == MJ_MANUAL)
			res->manual++;
		mig_outf(o, "job %-7s %s/%s (%s)%s%s\n", migrate_job_action_name(j->action),
		     j->schedule, j->job,
		     j->machine, j->note[0] ? ": " : "", j->note);
	}
	mig_outf(o, "summary: %zu planned, %zu applied, %zu skipped, %zu conflict, "
	     "%zu failed, %zu rolled back\n", res->planned, res->applied, res->skipped,
	     res->conflict, res->failed, res->rolled_back);
	rc = 0;
done:
	srun_release(&r);
	mdb_close(d);
	return rc;
}

/* Long (about 150 lines) for the same reason as migrate_apply(): the
 * order of hashing, writing and committing is the guarantee. */
int migrate_rollback(const struct migrate_opts *o, struct migrate_result *res,
		     struct ms_err *err)
{
	struct migrate_map *map = NULL;
	struct mdb *d = NULL;
	struct srun r;
	struct wctx w;
	struct hfile *hf = NULL;
	size_t i, hi, lo;
	int run = 0, f, rc = -1;

	memset(res, 0, sizeof(*res));
	memset(&r, 0, sizeof(r));
	memset(&w, 0, sizeof(w));
	if ((f = mdb_open_all(o, 0, &d, &map, err)) < 0)
		return -1;
	if (f == 1) {
		if (o->run > 0)
			return err_set(err, MS_ERR_USAGE, "no run %d: no state database yet",
				       o->run);
		mig_outf(o, "nothing to roll back\n");
		return 0;
	}
	if (o->run > 0) {
		if ((f = mdb_find_run(d, o->run, 0, &run, err)) < 0)
			goto done;
		if (f == 1) {
			err_set(err, MS_ERR_USAGE, "no run %d in '%s'", o->run, d->path);
			goto done;
		}
	} else {
		sqlite3_stmt *st = NULL;
		if (mdb_prepare(d, &st, "SELECT max(run) FROM items WHERE written = 1 AND"
			       " state <> 'rolled-back'", err) < 0)
			goto done;
		if (sqlite3_step(st) == SQLITE_ROW)
			run = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
		if (run == 0) {
			/* a rollback killed while writing its change list (after
			 * its last commit) left temporary files there */
			char *base = fs_join(o->fleet_dir, "migrate");
			if (base)
				clean_changelists(base);
			free(base);
			mig_outf(o, "nothing to roll back\n");
			rc = 0;
			goto done;
		}
	}
	if (mdb_load_run(d, run, &r, err) < 0 || mdb_check_key(d, &r, err) < 0)
		goto done;
	mig_mark_matches(o, &r);
	res->run = run;
	if (wctx_init(&w, o, &r, err) < 0)
		goto done;
	if (!(hf = calloc(BATCH, sizeof(*hf)))) {
		err_nomem(err);
		goto done;
	}
	/* newest first: exports, then INI files, in reverse plan order, in
	 * batches: decide each item of the batch, restore its files, fsync
	 * their folders, then commit the batch's states (a file restored
	 * before a crash has its original hash and is recognised next time) */
	for (hi = r.n; hi > 0; hi = lo) {
		size_t nh = 0, k = 0;

		lo = (hi - 1) / BATCH * BATCH;
		w.n_files = 0;
		/* the files to look at, read and hashed several at once */
		for (i = hi; i-- > lo;) {
			struct sitem *it = &r.items[i];

			if (it->match && it->written && it->state != MI_ROLLED_BACK) {
				memset(&hf[nh], 0, sizeof(hf[nh]));
				hf[nh].fleet = o->fleet_dir;
				hf[nh++].it = it;
			}
		}
		pool_run(nh, hash_one, hf);
		for (i = hi; i-- > lo;) {
			struct sitem *it = &r.items[i];
			const char *cur;
			int h;

			it->next = MI_NONE;
			it->write = 0;
			if (!it->match)
				continue;
			if (it->state == MI_PLANNED && !it->written) {
				it->next = MI_SKIPPED;
				set_reason(it, "not applied before the rollback");
			} else if (it->written && it->state != MI_ROLLED_BACK) {
				h = hf[k].h;
				cur = hf[k].cur;
				if (h < 0) {
					it->next = MI_FAILED;
					set_reason(it, "%s", hf[k].err.msg);
				} else if (h == 0 && strcmp(cur, it->orig_sha) == 0) {
					it->next = MI_ROLLED_BACK;
				} else if ((h == 0 && strcmp(cur, it->new_sha) == 0) ||
					   o->force) {
					if (mdb_item_bytes(d, run, it, "orig", &it->orig,
							   &it->orig_len, err) < 0 ||
					    batch_add(&w, it, it->orig, it->orig_len, err) < 0)
						goto done;
					it->write = 1;
					if (h == 0 && strcmp(cur, it->new_sha) != 0)
						set_reason(it, "forced over a change made after "
							   "the migration");
				} else {
					it->next = MI_CONFLICT;
					set_reason(it, h > 0 ? "the file no longer exists (use "
						   "--force to restore it)" : "the file changed "
						   "after the migration (use --force to restore "
						   "the original anyway)");
				}
				k++;
			}
		}
		if (write_files(&w, w.files, w.n_files, MI_ROLLED_BACK, err) < 0)
			goto done;
		for (i = lo; i < hi; i++) {
			mig_wipe_bytes(r.items[i].orig, r.items[i].orig_len);
			r.items[i].orig = NULL;
			r.items[i].orig_len = 0;
		}
		/* the batch's renames durable before its states are */
		sync_dirs(&w, &r, lo, hi);
		if (mdb_exec(d, "BEGIN;", err) < 0)
			goto done;
		for (i = lo; i < hi; i++)
			if (r.items[i].next != MI_NONE &&
			    mdb_set_item(d, run, &r.items[i], 0, err) < 0) {
				sqlite3_exec(d->db, "ROLLBACK;", NULL, NULL, NULL);
				goto done;
			}
		if (mdb_exec(d, "COMMIT;", err) < 0)
			goto done;
	}
	for (i = 0; i < r.n; i++) {
		struct sitem *it = &r.items[i];
		if (!it->match || !it->written)
			continue;
		res->items++;
		mig_count_state(res, it->state);
		mig_outf(o, "%-11s %s %s%s%s\n", migrate_item_state_name(it->state), it->kind, it->path,
		     it->reason && it->state != MI_ROLLED_BACK ? ": " : "",
		     it->reason && it->state != MI_ROLLED_BACK ? it->reason : "");
	}
	{
		char sql[128];
		int left = 0;
		for (i = 0; i < r.n; i++)
			if (r.items[i].written && r.items[i].state != MI_ROLLED_BACK)
				left = 1;
		if (!left) {
			snprintf(sql, sizeof(sql), "UPDATE runs SET state = 'rolled-back' "
				 "WHERE id = %d;", run);
			if (mdb_exec(d, sql, err) < 0)
				goto done;
		}
	}
	if (res->rolled_back && write_changes(o, &r, 1, err) < 0)
		goto done;
	mig_outf(o, "summary: run %d: %zu rolled back, %zu conflict, %zu failed\n", run,
	     res->rolled_back, res->conflict, res->failed);
	rc = 0;
done:
	free(hf);
	wctx_release(&w);
	srun_release(&r);
	mdb_close(d);
	return rc;
}
