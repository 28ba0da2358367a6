/*
 * migrate_int.h - what the files of the migrate engine share among
 * themselves (not for other modules: they use migrate.h).
 */
#ifndef MS_MIGRATE_INT_H
#define MS_MIGRATE_INT_H

#include <pthread.h>
#include <sys/types.h>

#include "audit/analysis.h"
#include "audit/fleet.h"
#include "migrate/migrate.h"

struct sqlite3;
struct sqlite3_stmt;
struct seal_key;

/* An item's state (items.state, stored as its name):
 *   planned -> applying -> applied, or skipped / conflict / failed;
 *   rollback: -> rolled-back. */
enum migrate_item_state {
	MI_NONE = 0,        /* no state yet / no change to make */
	MI_PLANNED,
	MI_APPLYING,
	MI_APPLIED,
	MI_SKIPPED,
	MI_CONFLICT,
	MI_FAILED,
	MI_ROLLED_BACK,
};

/* What a job's command line needs (jobs.action, stored as its name). */
enum migrate_job_action {
	MJ_UNSET = 0,       /* not decided (stored as "none") */
	MJ_NONE,
	MJ_CHANGE,
	MJ_MANUAL,
	MJ_SKIPPED,
};

/* The stored names ("planned", "rolled-back", "manual"); "" for MI_NONE. */
const char *migrate_item_state_name(enum migrate_item_state s);
const char *migrate_job_action_name(enum migrate_job_action a);
/* A stored name back to its value; -1 for a name we never write. */
int migrate_item_state_parse(const char *name, enum migrate_item_state *s);
int migrate_job_action_parse(const char *name, enum migrate_job_action *a);

#define EXPORT_MAX ((size_t)1024 * 1024 * 1024)
/* How many files are read or written at once (the pool, the plan's
 * evaluating threads).  A durable write waits on its fsync, and a
 * journaling file system commits the fsyncs in flight together (ext4's
 * and NTFS's journals group them): measured on the B4 fleet's disk, 4,000
 * INI files copied and fsynced took 2.7-5.8 s one at a time and 0.7 s
 * eight at a time.  Reading files not in the page cache waits on the
 * disk the same way. */
#define WORKERS 8

/* Files per batch of apply and rollback (migrate_opts.batch overrides):
 * one commit and one fsync per folder per batch; each batch is written
 * while the next is prepared, with a pause between the two for the
 * folder fsyncs and the commit.  Measured on the B4 fleet (cold
 * rollback, alternating rounds at load 5-6): 256 -> 1024 took 4.4-8.7 s
 * to 3.5-5.7 s (47 -> 12 commits), for ~65 MB more memory. */
#define BATCH 1024

/* The state database (migrate_store.c).  Held with an exclusive lock
 * from mdb_open_all() to mdb_close(). */

struct mdb {
	struct sqlite3 *db;
	char *path;
	struct seal_key *key;     /* the machine key, loaded when needed */
	struct sqlite3_stmt *blob_get, *blob_put, *item_set;   /* prepared once, lazily */
};

/* The fleet scan. */

struct mjob {
	struct fleet_job job;     /* a copy of the scanned job until evaluated */
	int eval_rc;              /* analysis_job() of a worker thread */
	struct ms_err eval_err;
	struct job_verdict v;
	char *raw_cmd;            /* may hold a literal password: wiped */
	char *user_opt;           /* -user: of the command line */
	int ini_item;             /* seq of its INI item, 0 = none */
	int export_item;
	enum migrate_job_action action;
	char *new_cmd;
	char *note;
	unsigned flags;
};

struct scan {
	struct mjob *jobs;
	size_t n, alloc;
};

/* Planning. */

struct pitem {
	const char *kind;         /* "ini" or "export" */
	char *path;               /* fleet-relative */
	char *machine;
	char *jobs;
	enum migrate_item_state state;   /* MI_PLANNED or MI_SKIPPED */
	char *reason;
	char *orig, *new;
	size_t orig_len, new_len;
	char *seal;               /* "TENANT\nCLIENT" when sealing at apply */
	char *seen;               /* the file as plan read it (see mig_seen) */
	char *edit;               /* what makes new from orig (mig_remake) */
	size_t edit_len;
	char orig_sha[65], new_sha[65];  /* hex SHA-256 of orig and new, made
				   * on the pool with them (planned items) */
	int deferred;             /* an export an apply that plans makes while
				   * it writes the INI files (mig_deferred):
				   * stored with its edit, no hashes */
	int make_rc;              /* mig_deferred's: -1 out of memory */
	mode_t mode;              /* the file's mode when plan read it */
	int stage_ok;             /* apply: its new bytes may be written ahead
				   * (mig_stage_add) once made */
	struct mig_staged *staged;  /* written ahead (NULL: not) */
};

struct plan {
	struct pitem *items;
	size_t n, alloc;
	struct scan s;
	/* an apply that plans keeps at most keep_max bytes of the planned
	 * items (held: those kept, counted by the pool's threads); an item
	 * that does not fit keeps its hashes and edit, not its bytes */
	size_t keep_max, held;
};

/* Runs and items as stored. */

struct sitem {
	int seq;
	char *kind, *path, *machine, *jobs, *reason, *seal;
	char *seen;               /* items.seen, NULL when not recorded */
	enum migrate_item_state state;
	int written;
	int have_orig, have_new, have_edit;  /* the blobs stored (schema 3:
				   * orig may be missing until the item is
				   * applying, new is stored only by plan and
				   * when a secret is sealed into it) */
	char *orig, *new;         /* unsealed when written (mdb_item_bytes) */
	unsigned char *sealed;    /* rollback: the original still sealed */
	size_t sealed_len;
	size_t orig_len, new_len;
	char orig_sha[65], new_sha[65];
	int match;                /* --only */
	int set_hashes;           /* orig_sha, new_sha, seen made by this apply
				   * (a deferred export): mdb_set_item stores them */
	/* apply/rollback work */
	enum migrate_item_state next;   /* new state, MI_NONE: unchanged */
	char *next_reason;
	int write;                /* 1 = write new, 2 = write orig */
	mode_t mode;              /* the file's mode when hashed */
	char *dir;                /* its folder (fleet-relative) once written */
	struct mig_staged *staged;  /* its new bytes written ahead (apply that
				   * plans), from the plan's item */
};

struct sjob {
	char *schedule, *job, *machine, *source, *old_cmd, *new_cmd, *note;
	enum migrate_job_action action;
	int ini_item, export_item;
};

struct srun {
	int id;
	char *state;
	struct sitem *items;
	size_t n;
	struct sjob *jobs;
	size_t n_jobs;
};

/* migrate_store.c */
int mdb_open_all(const struct migrate_opts *o, int need_map, struct mdb **d,
		 struct migrate_map **map, struct ms_err *err);
void mdb_close(struct mdb *d);
int mdb_exec(struct mdb *d, const char *sql, struct ms_err *err);
int mdb_prepare(struct mdb *d, struct sqlite3_stmt **st, const char *sql,
		struct ms_err *err);
/* The machine key, loaded (created when create) on first use. */
int mdb_key(struct mdb *d, int create, struct ms_err *err);
/* blobs: store the sealed originals and new bytes too (plan); without,
 * only the rows (apply: mdb_store_orig() per item before it is written). */
int mdb_store_plan(struct mdb *d, int run, int replace,
		   const struct migrate_opts *o, const struct migrate_map *map,
		   const struct plan *p, int blobs, struct ms_err *err);
/* Stores an item's original bytes, sealed (it->have_orig = 1). */
int mdb_store_orig(struct mdb *d, int run, struct sitem *it, const char *data,
		   size_t len, struct ms_err *err);
int mdb_next_run(struct mdb *d, int *run, int *replace, struct ms_err *err);
int mdb_find_run(struct mdb *d, int id, int open_only, int *out,
		 struct ms_err *err);
/* The run's items and jobs, without the file contents (mdb_item_bytes). */
int mdb_load_run(struct mdb *d, int id, struct srun *r, struct ms_err *err);
/* Column col ("orig" or "new") of an item, unsealed and checked against
 * its hash; *out NULL when the item has none. */
int mdb_item_bytes(struct mdb *d, int run, const struct sitem *it,
		   const char *col, char **out, size_t *len, struct ms_err *err);
/* mdb_item_bytes() in two steps: the sealed bytes copied out of the
 * database (one thread: the connection), then unsealed and checked
 * against their hash (any thread: reads only d->key and d->path). */
int mdb_item_sealed(struct mdb *d, int run, const struct sitem *it,
		    const char *col, unsigned char **sealed, size_t *n,
		    struct ms_err *err);
int mdb_unseal(const struct mdb *d, int run, const struct sitem *it,
	       const char *col, const unsigned char *sealed, size_t n, char **out,
	       size_t *len, struct ms_err *err);
/* Asks the system to read the whole database file in the background
 * (rollback unseals the originals one page after the other: on a cold
 * cache each would be a read waiting on the disk). */
void mdb_prefetch(struct mdb *d);
/* Refuses a missing or wrong machine key before anything changes. */
int mdb_check_key(struct mdb *d, const struct srun *r, struct ms_err *err);
/* Stores it->next (and it->new with its hash it->new_sha when with_new)
 * as the item's state. */
int mdb_set_item(struct mdb *d, int run, struct sitem *it, int with_new,
		 struct ms_err *err);
void srun_release(struct srun *r);
/* No item of the run still to be written (planned or applying). */
int srun_settled(const struct srun *r);
/* Every file written that will be, but the run still open: an apply
 * stopped while writing its change and deploy lists (apply again writes
 * them and closes it). */
int srun_unclosed(const struct srun *r);
void mig_wipe_bytes(char *p, size_t len);
int mig_job_matches(const struct migrate_opts *o, const struct sjob *j);
void mig_mark_matches(const struct migrate_opts *o, struct srun *r);
void mig_count_state(struct migrate_result *res, enum migrate_item_state s);
/* The monotonic clock in seconds; mig_lap() adds the time since *t to
 * res->phase[ph] and sets *t to now. */
double mig_now(void);
void mig_lap(struct migrate_result *res, enum migrate_phase ph, double *t);
/* COMMIT one batch's transaction, counted in res->commits, its time in
 * the commit phase. */
int mig_commit(struct mdb *d, struct migrate_result *res, double *t,
	       struct ms_err *err);

/* migrate_write.c: a run's files read and written for apply and rollback */

/* A set of strings (folder and file paths), open addressing. */
struct strset {
	char **slot;
	size_t cap, n;
};

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
	struct wlist *lister;     /* the run's folders being listed */
};

/* One file of a batch to write: the item, its bytes, what came of it. */
struct wfile {
	struct sitem *it;
	const char *data;
	size_t len;
	char *file;               /* absolute path */
	int rc;
	int skip, stop;           /* mig_write_files_prep(): prep left it, failed */
	struct ms_err err;
};

/* A file of a batch to hash: the result of mig_hash_file(). */
struct hfile {
	const char *fleet;
	struct sitem *it;
	int h;
	char cur[65];
	struct ms_err err;
};

/* Files written ahead.  An apply that plans knows each file's new bytes
 * long before the batch that puts it in place: WORKERS threads write them
 * ahead, in plan order, as temporary files beside the files they replace
 * (fs_stage_write: written, fsynced, nothing a reader of the fleet's files
 * sees), while apply stores its run, decides its batches and puts earlier
 * files in place.  A batch then only renames a file written ahead over
 * its file (fs_stage_commit), after its state applying is committed as
 * ever: the order of migrate.h is unchanged, only when the bytes reach
 * the disk is.  A file not written ahead when its batch comes is written
 * by the batch (the entry taken: never written ahead after), and so is
 * one whose mode changed since.  Every temporary file not put in place is
 * removed (mig_stage_drop, mig_stage_stop); a process killed leaves them
 * to the cleaning of the run's folders by the next apply or rollback of
 * the run, which is stored before the first one is written.
 * mig_stage_add() borrows data until the entry is taken or the stage
 * stopped; it returns NULL (nothing written ahead) when out of memory. */
struct mig_stage;
struct mig_staged;
/* At most limit bytes are written ahead and not taken at once (one file
 * at least; 0: MIG_STAGE_AHEAD), so that a fleet's disk needs at most that
 * much more room than for writing batch by batch.  NULL when no thread can
 * be started (nothing is written ahead then). */
#define MIG_STAGE_AHEAD ((size_t)64 << 20)
struct mig_stage *mig_stage_start(size_t limit);
struct mig_staged *mig_stage_add(struct mig_stage *s, const char *fleet,
				 const char *rel, const char *data, size_t len,
				 mode_t mode);
/* The temporary file holding the entry's bytes, to rename (the caller
 * owns it), or NULL: not written ahead, and never to be after this.  Only
 * when they are the very bytes to write (data, len: the buffer the entry
 * borrowed) with the mode to give them; otherwise the temporary file is
 * removed.  Waits while the entry is being written.  e may be NULL. */
char *mig_stage_take(struct mig_staged *e, const char *data, size_t len,
		     mode_t mode);
/* The entry's temporary file removed, if any (the file not written). */
void mig_stage_drop(struct mig_staged *e);
/* Waits for the writes in progress, removes every temporary file not
 * taken, releases the entries; *s is NULL after (may be already). */
void mig_stage_stop(struct mig_stage **s);

/* Read a fleet file and hash it; 1 when it does not exist.  *mode is the
 * file's mode (0600 when it does not exist), kept when it is rewritten. */
int mig_hash_file(const char *fleet, const char *rel, const char *kind,
		  char *hex, mode_t *mode, struct ms_err *err);
/* fn(ctx, i) for each i < n from several threads at once (WORKERS);
 * fn touches nothing shared but its own i. */
void mig_pool_run(size_t n, void (*fn)(void *ctx, size_t i), void *ctx);
/* Each file of f hashed (h, cur, err as mig_hash_file), several at once. */
void mig_hash_files(struct hfile *f, size_t n);
/* it->next_reason from a format. */
int mig_set_reason(struct sitem *it, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Also removes the temporary files a killed run left beside the run's
 * files, in every folder of the run (on a thread of its own: see
 * mig_wctx_wait()). */
int mig_wctx_init(struct wctx *w, const struct migrate_opts *o,
		  const struct srun *r, struct ms_err *err);
/* Waits for the listing mig_wctx_init() started (mig_wctx_release() too). */
void mig_wctx_wait(struct wctx *w);
void mig_wctx_release(struct wctx *w);
/* Adds an item to w->files (data borrowed until mig_write_files()). */
int mig_batch_add(struct wctx *w, struct sitem *it, const char *data,
		  size_t len, struct ms_err *err);
/* Writes f[0..n) durably but for their folders' entries, several at once
 * (one at a time with a test hook); each item's next state becomes done
 * or MI_FAILED with the reason.  The caller must mig_sync_dirs() before
 * it records them. */
int mig_write_files(struct wctx *w, struct wfile *f, size_t n,
		    enum migrate_item_state done, struct ms_err *err);
/* mig_write_files() with each file's bytes made on the writing thread
 * just before it is written, by the same task (reading a file and
 * writing another wait on the disk together): prep(ctx, f) sets f->data
 * and f->len and returns 0 to write the file, 1 to leave it (it sets
 * f->it->next itself), -1 to fail the batch with f->err (no file is
 * written after; those written before are durable but not recorded).
 * prep runs on several threads at once: it touches only f and f->it. */
int mig_write_files_prep(struct wctx *w, struct wfile *f, size_t n,
			 enum migrate_item_state done,
			 int (*prep)(void *ctx, struct wfile *f), void *ctx,
			 struct ms_err *err);
/* fsyncs every folder the batch renamed a file in, once; an item of
 * items[from..to) whose folder fails is failed (write = -1).  Returns
 * how many were. */
size_t mig_sync_dirs(struct wctx *w, struct srun *r, size_t from, size_t to);
/* A batch written on a thread of its own -- its files
 * (mig_write_files_prep with done, prep and ctx), then the folders of
 * r->items[lo..hi) fsynced (mig_sync_dirs) -- while the caller's thread
 * prepares the next batch (touching neither w nor these items).  After
 * mig_batch_join(): rc, err as mig_write_files_prep's. */
struct wbatch {
	struct wctx *w;
	struct srun *r;
	struct wfile *f;
	size_t n, lo, hi;
	enum migrate_item_state done;
	int (*prep)(void *ctx, struct wfile *f);
	void *ctx;
	int rc;
	struct ms_err err;
	pthread_t th;
	int started;
};
void mig_batch_start(struct wbatch *b);
void mig_batch_join(struct wbatch *b);
/* Removes the change-list temporary files of dead processes in a run's
 * folder, or in every run folder under base. */
void mig_clean_changelist_dir(const char *dir);
void mig_clean_changelists(const char *base);

/* migrate_plan.c: the plan, and output for every command */
/* A file's identity as plan read it, stored in items.seen: device, inode,
 * size, mtime and ctime in nanoseconds.  Recorded only when both times
 * are older than MIG_SEEN_SETTLED seconds at the stat before the read
 * (a change in the same clock tick as the read would leave them as they
 * were), and never on Windows (st_ctime is the creation time there, no
 * inode).  Apply skips reading and hashing a planned file whose identity
 * is unchanged: any write since, or a rename over it, changes ctime.
 * *mode (may be NULL) gets the file's mode from the same stat (0 when it
 * cannot be stat()ed). */
#define MIG_SEEN_MAX 128
#define MIG_SEEN_SETTLED 2
char *mig_seen(const char *path, mode_t *mode);

/* The files of a run's cutover packet (FLEET/migrate/run-N[-rollback]). */
#define MIG_PACKET_FILES 4
extern const char *const mig_packet_files[MIG_PACKET_FILES];

/* Plan and store a run.  With keep, the plan is stored without the
 * sealed bytes (apply stores each original in the transaction that marks
 * its item applying) and handed to the caller in *keep (mig_plan_free()
 * and free() it); without, the originals and the new bytes are stored. */
int mig_do_plan(const struct migrate_opts *o, struct mdb *d,
		const struct migrate_map *map, int print, struct plan **keep,
		struct migrate_result *res, struct ms_err *err);
void mig_plan_free(struct plan *p);
/* Why an export is skipped when its jobs' command lines are not in it. */
#define MIG_EXPORT_NOT_FOUND \
	"the command lines were not found in the export: use the change list"
/* The deferred export items of an apply's plan made on a thread of its
 * own (with the pool) while apply writes the INI files: each one's bytes,
 * hashes and identity, or its state skipped with the reason, or make_rc
 * -1 (out of memory).  init lists them, start starts the thread, join
 * waits for it (or, not started, makes them on the caller's thread);
 * touch those items only after join, and release (which waits for a
 * started thread, makes nothing) before the plan is freed.  A zeroed
 * struct is one with nothing to make. */
struct mig_deferred {
	const struct migrate_opts *o;
	const struct migrate_map *map;
	struct plan *p;
	size_t *idx, n;
	struct mig_stage *stage;  /* each export made is written ahead there
				   * (its stage_ok set), unless NULL */
	pthread_t th;
	int started, done;
};
int mig_deferred_init(struct mig_deferred *df, const struct migrate_opts *o,
		      const struct migrate_map *map, struct plan *p,
		      struct ms_err *err);
void mig_deferred_start(struct mig_deferred *df);
void mig_deferred_join(struct mig_deferred *df);
void mig_deferred_release(struct mig_deferred *df);
/* An item's new bytes made again from its original and its edit (the
 * blob "edit": for an INI file the mailbox that chose the tenant and the
 * one written as [OAuth] Mailbox; for an export the old and new command
 * lines of its jobs), with the mapping file: what plan made, as long as
 * the mapping file still says the same (the caller checks new_sha). */
int mig_remake(const struct migrate_map *map, const char *kind, const char *path,
	       const char *orig, size_t orig_len, const char *edit,
	       size_t edit_len, char **out, size_t *outlen, struct ms_err *err);
void mig_outf(const struct migrate_opts *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
char *mig_jobs_shown(const char *jobs);
void mig_jstr(struct buf *b, const char *s, struct ms_err *err);
void mig_jkv(struct buf *b, int first, const char *key, const char *val,
	     struct ms_err *err);
void mig_jout(const struct migrate_opts *o, struct buf *b, struct ms_err *err);
/* plan's output: every change (text with diffs, or o->json: one JSON
 * document); counts manual actions and broken jobs into res. */
void mig_print_plan(const struct migrate_opts *o, int run,
		    const struct migrate_map *map, const struct plan *p,
		    struct migrate_result *res, struct ms_err *err);

#endif
