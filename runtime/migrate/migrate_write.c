/*
 * migrate_write.c - reading and writing a run's files for apply and
 * rollback: each file durably (temporary file, fsync, rename), a batch's
 * files and folders several at once, the temporary files a killed run
 * left cleaned up (see migrate.h for the guarantees, migrate.c for the
 * order in which apply and rollback use these).
 */
#include "migrate/migrate_int.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/digest.h"
#include "base/fsutil.h"
#include "base/mem.h"
#include "ini/ini.h"

/* Read a fleet file and hash it; 1 when it does not exist.  *mode is the
 * file's mode (0600 when it does not exist), kept when it is rewritten. */
int mig_hash_file(const char *fleet, const char *rel, const char *kind,
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

int mig_set_reason(struct sitem *it, const char *fmt, ...)
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


static char *rel_dir(const char *path);
static int clean_dir(struct wctx *w, const char *dir, struct ms_err *err);
static void clean_listing(const struct wctx *w, const char *dir);

/* The folders of a run listed on the pool's threads (clean_listing reads
 * only w->o and w->items), the whole on a thread of its own. */
struct wlist {
	const struct wctx *w;
	char **dirs;
	size_t n;
	pthread_t th;
	int started;
};

static void clean_one(void *ctx, size_t i)
{
	struct wlist *c = ctx;

	clean_listing(c->w, c->dirs[i]);
}

static void *list_main(void *arg)
{
	struct wlist *c = arg;

	mig_pool_run(c->n, clean_one, c);
	return NULL;
}

/* Also removes the temporary files a killed run left beside any of the
 * run's files -- in every folder of the run, not only those this command
 * still writes to (a resumed run may have nothing left to write there).
 * The folders are listed on a thread of their own while the caller goes
 * on writing (mig_wctx_wait()): a name removed is that of a dead
 * process's temporary file, never one of ours (our process is alive), so
 * the listing and our writes may meet in a folder in either order. */
int mig_wctx_init(struct wctx *w, const struct migrate_opts *o,
		     const struct srun *r, struct ms_err *err)
{
	struct wlist *c;
	size_t i;

	memset(w, 0, sizeof(*w));
	w->o = o;
	for (i = 0; i < r->n; i++)
		if (strset_add(&w->items, r->items[i].path) < 0)
			return err_nomem(err);
	/* one listing per folder, several at once: on a cold cache each
	 * waits on the disk.  w->cleaned holds every folder of the run from
	 * here on: clean_dir() only reads it while the listing runs. */
	if (!(c = calloc(1, sizeof(*c))) ||
	    (r->n && !(c->dirs = calloc(r->n, sizeof(*c->dirs))))) {
		free(c);
		return err_nomem(err);
	}
	c->w = w;
	w->lister = c;
	for (i = 0; i < r->n; i++) {
		char *dir = rel_dir(r->items[i].path);
		int added = dir ? strset_add(&w->cleaned, dir) : -1;

		if (added < 0) {
			free(dir);
			return err_nomem(err);
		}
		if (added > 0)
			c->dirs[c->n++] = dir;
		else
			free(dir);
	}
	c->started = pthread_create(&c->th, NULL, list_main, c) == 0;
	if (!c->started)
		list_main(c);
	return 0;
}

void mig_wctx_wait(struct wctx *w)
{
	struct wlist *c = w->lister;
	size_t k;

	if (!c)
		return;
	if (c->started)
		pthread_join(c->th, NULL);
	for (k = 0; k < c->n; k++)
		free(c->dirs[k]);
	free(c->dirs);
	free(c);
	w->lister = NULL;
}

void mig_wctx_release(struct wctx *w)
{
	size_t i;

	mig_wctx_wait(w);
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

static int is_packet_file(const char *name, size_t len, void *ctx)
{
	size_t k;

	for (k = 0; k < MIG_PACKET_FILES; k++)
		if (strlen(mig_packet_files[k]) == len &&
		    memcmp(name, mig_packet_files[k], len) == 0)
			return 1;
	return 0;
}

/* A run killed while writing its cutover packet leaves the temporary
 * files of fs_write_atomic() in that run's folder; remove those of dead
 * processes. */
void mig_clean_changelist_dir(const char *dir)
{
	fs_clean_dead_temps(dir, is_packet_file, NULL);
}

/* Every run folder under FLEET/migrate (a bounded listing: one per run). */
void mig_clean_changelists(const char *base)
{
	struct dirent *de;
	DIR *dh = opendir(base);

	if (!dh)
		return;
	while ((de = readdir(dh)) != NULL) {
		char *d;

		if (strncmp(de->d_name, "run-", 4) != 0 || !(d = fs_join(base, de->d_name)))
			continue;
		mig_clean_changelist_dir(d);
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
	int added = strset_add(&w->cleaned, dir);

	if (added < 0)
		return err_nomem(err);
	if (added)
		clean_listing(w, dir);
	return 0;
}

struct listing {
	const struct wctx *w;
	const char *dir;
};

/* Whether NAME, in the folder being listed, is one of the run's files. */
static int is_item(const char *name, size_t len, void *ctx)
{
	const struct listing *l = ctx;
	char *rel = NULL;
	int r;

	if (asprintf(&rel, "%s%s%.*s", l->dir, *l->dir ? "/" : "", (int)len, name) < 0)
		return 0;
	r = strset_has(&l->w->items, rel);
	free(rel);
	return r;
}

/* The listing of one folder (a folder that cannot be listed is left to
 * the write, which reports what is wrong; out of memory skips a name). */
static void clean_listing(const struct wctx *w, const char *dir)
{
	struct listing l = { w, dir };
	char *abs = *dir ? fs_join(w->o->fleet_dir, dir) : strdup(w->o->fleet_dir);

	if (abs)
		fs_clean_dead_temps(abs, is_item, &l);
	free(abs);
}



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
void mig_pool_run(size_t n, void (*fn)(void *ctx, size_t i), void *ctx)
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

/* ---- files written ahead (migrate_int.h) ---- */

enum { STG_QUEUED, STG_BUSY, STG_DONE, STG_FAILED, STG_TAKEN };

struct mig_staged {
	struct mig_stage *s;
	char *file;               /* absolute path */
	const char *data;         /* borrowed */
	size_t len;
	mode_t mode;
	char *tmp;                /* its temporary file, once STG_DONE */
	int state;                /* under s->mu */
	struct mig_staged *next;  /* the queue, in the order added */
	struct mig_staged *all;   /* every entry, for mig_stage_stop() */
};

struct mig_stage {
	pthread_mutex_t mu;
	pthread_cond_t cv;        /* an entry queued, written or taken, or stop */
	struct mig_staged *head, *tail, *all;
	size_t ahead, limit;      /* bytes written ahead and not taken yet
				   * (being written included), and their bound */
	int stop;
	pthread_t th[WORKERS];
	size_t n_th;
};

static void *stage_main(void *arg)
{
	struct mig_stage *s = arg;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		struct ms_err err = MS_ERR_INIT;
		struct mig_staged *e;
		char *tmp;

		/* entries taken first: their batches write them */
		while ((e = s->head) && e->state != STG_QUEUED)
			if (!(s->head = e->next))
				s->tail = NULL;
		if (s->stop)
			break;
		/* at most limit bytes ahead (one entry at least), so that the
		 * disk holds at most that much more than without writing ahead */
		if (!e || (s->ahead && s->ahead + e->len > s->limit)) {
			pthread_cond_wait(&s->cv, &s->mu);
			continue;
		}
		if (!(s->head = e->next))
			s->tail = NULL;
		e->state = STG_BUSY;
		s->ahead += e->len;
		pthread_mutex_unlock(&s->mu);
		/* a failure is the batch's to meet and report */
		tmp = fs_stage_write(e->file, e->data, e->len, e->mode, &err);
		pthread_mutex_lock(&s->mu);
		e->tmp = tmp;
		e->state = tmp ? STG_DONE : STG_FAILED;
		if (!tmp)
			s->ahead -= e->len;
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

struct mig_stage *mig_stage_start(size_t limit)
{
	struct mig_stage *s = calloc(1, sizeof(*s));
	size_t k;

	if (!s)
		return NULL;
	s->limit = limit ? limit : MIG_STAGE_AHEAD;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	for (k = 0; k < WORKERS; k++)
		if (pthread_create(&s->th[s->n_th], NULL, stage_main, s) == 0)
			s->n_th++;
	if (!s->n_th) {
		pthread_cond_destroy(&s->cv);
		pthread_mutex_destroy(&s->mu);
		free(s);
		return NULL;
	}
	return s;
}

struct mig_staged *mig_stage_add(struct mig_stage *s, const char *fleet,
				 const char *rel, const char *data, size_t len,
				 mode_t mode)
{
	struct mig_staged *e;

	if (!s || !(e = calloc(1, sizeof(*e))))
		return NULL;
	if (!(e->file = fs_join(fleet, rel))) {
		free(e);
		return NULL;
	}
	e->s = s;
	e->data = data;
	e->len = len;
	e->mode = mode;
	pthread_mutex_lock(&s->mu);
	e->all = s->all;
	s->all = e;
	if (s->tail)
		s->tail->next = e;
	else
		s->head = e;
	s->tail = e;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return e;
}

char *mig_stage_take(struct mig_staged *e, const char *data, size_t len,
		     mode_t mode)
{
	char *tmp = NULL;

	if (!e)
		return NULL;
	pthread_mutex_lock(&e->s->mu);
	while (e->state == STG_BUSY)
		pthread_cond_wait(&e->s->cv, &e->s->mu);
	if (e->state == STG_DONE) {
		tmp = e->tmp;
		e->tmp = NULL;
		e->s->ahead -= e->len;
	}
	e->state = STG_TAKEN;
	pthread_cond_broadcast(&e->s->cv);
	pthread_mutex_unlock(&e->s->mu);
	if (tmp && (e->data != data || e->len != len || e->mode != mode)) {
		fs_stage_discard(tmp);
		tmp = NULL;
	}
	return tmp;
}

void mig_stage_drop(struct mig_staged *e)
{
	if (e)
		fs_stage_discard(mig_stage_take(e, e->data, e->len, e->mode));
}

void mig_stage_stop(struct mig_stage **sp)
{
	struct mig_stage *s = *sp;
	struct mig_staged *e;
	size_t k;

	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	for (k = 0; k < s->n_th; k++)
		pthread_join(s->th[k], NULL);
	while ((e = s->all)) {
		s->all = e->all;
		fs_stage_discard(e->tmp);
		free(e->file);
		free(e);
	}
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
	*sp = NULL;
}

/* A batch's files on the pool: each one's bytes made (prep, optional)
 * and written by the same task, so that reading one file and writing
 * another wait on the disk together. */
struct wjob {
	struct wfile *f;
	int (*prep)(void *ctx, struct wfile *f);
	void *ctx;
	int stop;                 /* a prep failed: write nothing more */
};

/* One file: made, then written (unless prep left it or another failed). */
static int prep_write(struct wjob *j, struct wfile *f)
{
	int r = j->prep ? j->prep(j->ctx, f) : 0;

	if (r < 0) {
		f->stop = 1;
		__atomic_store_n(&j->stop, 1, __ATOMIC_RELAXED);
		return -1;
	}
	if (r > 0 || __atomic_load_n(&j->stop, __ATOMIC_RELAXED)) {
		f->skip = 1;
		return 1;
	}
	if (f->it->staged) {
		char *tmp = mig_stage_take(f->it->staged, f->data, f->len, f->it->mode);

		f->it->staged = NULL;
		if (tmp) {
			f->rc = fs_stage_commit(tmp, f->file, &f->err);
			return f->rc;
		}
	}
	f->rc = fs_write_atomic_nodirsync(f->file, f->data, f->len, f->it->mode,
					  &f->err);
	return f->rc;
}

static void write_one(void *ctx, size_t i)
{
	struct wjob *j = ctx;

	prep_write(j, j->f + i);
}


static void hash_one(void *ctx, size_t i)
{
	struct hfile *f = (struct hfile *)ctx + i;

	f->h = mig_hash_file(f->fleet, f->it->path, f->it->kind, f->cur, &f->it->mode,
			 &f->err);
}

/* Write the files of a batch durably but for their folders' entries: the
 * caller must mig_sync_dirs() before it records them as done.  Each item's
 * next state becomes done, or MI_FAILED with the reason.  With a test
 * hook (after_write) the files are written one at a time, the hook
 * called after each, so that a crash after the Nth write is exact. */
int mig_write_files(struct wctx *w, struct wfile *f, size_t n,
		       enum migrate_item_state done, struct ms_err *err)
{
	return mig_write_files_prep(w, f, n, done, NULL, NULL, err);
}

int mig_write_files_prep(struct wctx *w, struct wfile *f, size_t n,
			 enum migrate_item_state done,
			 int (*prep)(void *ctx, struct wfile *f), void *ctx,
			 struct ms_err *err)
{
	struct wjob j = { f, prep, ctx, 0 };
	size_t k;
	int rc = -1, added;

	for (k = 0; k < n; k++) {
		f[k].file = NULL;
		f[k].rc = -1;
		f[k].skip = f[k].stop = 0;
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
		for (k = 0; k < n && !j.stop; k++)
			if (prep_write(&j, &f[k]) == 0)
				w->o->after_write(++w->writes, w->o->hook_ctx);
	} else {
		mig_pool_run(n, write_one, &j);
	}
	for (k = 0; k < n; k++)
		if (f[k].stop) {
			*err = f[k].err;
			goto done;
		}
	for (k = 0; k < n; k++) {
		struct sitem *it = f[k].it;

		if (f[k].skip)
			continue;
		if (f[k].rc < 0) {
			it->next = MI_FAILED;
			mig_set_reason(it, "%s", f[k].err.msg);
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
 * mig_write_files()). */
int mig_batch_add(struct wctx *w, struct sitem *it, const char *data,
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
size_t mig_sync_dirs(struct wctx *w, struct srun *r, size_t from, size_t to)
{
	struct dsync *ds = calloc(w->n_dirs ? w->n_dirs : 1, sizeof(*ds));
	size_t i, k, bad = 0;

	for (k = 0; ds && k < w->n_dirs; k++) {
		ds[k].fleet = w->o->fleet_dir;
		ds[k].dir = w->dirs[k];
	}
	/* several at once, as the files were written */
	if (ds)
		mig_pool_run(w->n_dirs, sync_one, ds);
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
				mig_set_reason(it, "%s", lerr.msg);
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

/* Read and hash the files of f (mig_hash_file) several at once. */
void mig_hash_files(struct hfile *f, size_t n)
{
	mig_pool_run(n, hash_one, f);
}

static void *batch_main(void *arg)
{
	struct wbatch *b = arg;

	b->rc = mig_write_files_prep(b->w, b->f, b->n, b->done, b->prep, b->ctx,
				     &b->err);
	if (b->rc == 0)
		mig_sync_dirs(b->w, b->r, b->lo, b->hi);
	return NULL;
}

/* Starts b on a thread of its own (or runs it here when no thread can
 * be made). */
void mig_batch_start(struct wbatch *b)
{
	memset(&b->err, 0, sizeof(b->err));
	b->rc = -1;
	b->started = pthread_create(&b->th, NULL, batch_main, b) == 0;
	if (!b->started)
		batch_main(b);
}

void mig_batch_join(struct wbatch *b)
{
	if (b->started)
		pthread_join(b->th, NULL);
	b->started = 0;
}
