/*
 * migrate.c - apply, status and rollback of a planned run: the
 * files written (each item committed before and after its write), the
 * change lists for the scheduler (see migrate.h for the guarantees).
 */
#include "migrate/migrate_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "audit/fleet.h"
#include "auth/seal.h"
#include "base/platform.h"
#include "base/digest.h"
#include "base/fsutil.h"
#include "base/escape.h"
#include "base/mem.h"
#include "ini/ini.h"

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
	same = stat(file, &st) == 0 && platform_file_id(&st, now, sizeof(now)) == 0 &&
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

/* One cell of changes.csv / deploy.csv (escape_csv: a cell that would run
 * as a formula in a spreadsheet is defused), then CRLF or a comma. */
static int csv_field(struct buf *b, const char *s, int last, struct ms_err *err)
{
	if (escape_csv(b, s, err) < 0)
		return -1;
	return buf_appends(b, last ? "\r\n" : ",", err);
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
const char *const mig_packet_files[MIG_PACKET_FILES] = {
	"changes.json", "changes.csv", "deploy.json", "deploy.csv"
};

static int write_changes(const struct migrate_opts *o, const struct srun *r,
			 int rollback, size_t *writes, struct ms_err *err)
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
		mig_clean_changelist_dir(dir);
	} else {
		char *base = fs_join(o->fleet_dir, "migrate");
		if (!base)
			goto nomem;
		mig_clean_changelists(base);
		free(base);
	}
	{
		const struct buf *bufs[4] = { &js, &cs, &dj, &dc };
		size_t k;

		for (k = 0; k < 4; k++) {
			free(path);
			if (!(path = fs_join(dir, mig_packet_files[k])))
				goto nomem;
			if (fs_write_atomic(path, bufs[k]->data, bufs[k]->len, 0644, err) < 0)
				goto done;
			/* the test hook counts the packet's files too: a
			 * crash between two of them is one to survive */
			if (o->after_write)
				o->after_write(++*writes, o->hook_ctx);
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
	char sql[128];

	if (!srun_settled(r))
		return 0;
	snprintf(sql, sizeof(sql), "UPDATE runs SET state = 'done' WHERE id = %d;",
		 r->id);
	return mdb_exec(d, sql, err);
}

/* The item of the plan this apply made (kept, may be NULL) that the run's
 * item it is: by its sequence number, checked by its path; NULL when none. */
static struct pitem *kept_item(struct plan *kept, const struct sitem *it)
{
	struct pitem *pi = kept && it->seq >= 1 && (size_t)it->seq <= kept->n ?
			   &kept->items[it->seq - 1] : NULL;

	return pi && strcmp(pi->path, it->path) == 0 ? pi : NULL;
}

/* The bytes apply writes for an item whose new bytes are not stored (and
 * its original, when that is not stored either).  From the plan this
 * apply made (kept: the bytes move from it to the item), or else made
 * again (mig_remake) from the original (stored, or the file, which has
 * its hash) and the item's edit with the mapping file, and checked
 * against the run's new hash.  Returns 0, -1 on error, 1 when they
 * cannot be made (the item's next reason set). */
static int item_bytes(const struct migrate_opts *o, const struct migrate_map *map,
		      struct mdb *d, int run, struct plan *kept, struct sitem *it,
		      size_t *remade, struct ms_err *err)
{
	struct ms_err lerr = MS_ERR_INIT;
	char *edit = NULL, *file = NULL, hex[65];
	size_t edit_len = 0;
	int rc = 1;

	if (kept) {
		struct pitem *pi = kept_item(kept, it);
		if (!pi)
			return mig_set_reason(it, "not in the plan this apply made"), 1;
		if (pi->new && pi->orig) {
			it->new = pi->new;
			it->new_len = pi->new_len;
			pi->new = NULL;
			it->orig = pi->orig;
			it->orig_len = pi->orig_len;
			pi->orig = NULL;
			return 0;
		}
		/* let go to keep memory bounded (mig_do_plan): made again */
	}
	if (!it->have_edit)
		return mig_set_reason(it, "the state database has neither its new bytes "
				      "nor what makes them"), 1;
	if (!it->orig_sha[0] && !it->seen) {
		if (!(file = fs_join(o->fleet_dir, it->path)))
			return err_nomem(err);
		it->seen = mig_seen(file, NULL);
		free(file);
		file = NULL;
	}
	if (it->have_orig) {
		if (mdb_item_bytes(d, run, it, "orig", &it->orig, &it->orig_len, err) < 0)
			return -1;
	} else {
		if (!(file = fs_join(o->fleet_dir, it->path)))
			return err_nomem(err);
		if (fs_read_file(file, strcmp(it->kind, "ini") == 0 ? INI_MAX_FILE :
				 EXPORT_MAX, &it->orig, &it->orig_len, &lerr) < 0) {
			mig_set_reason(it, "%s", lerr.msg);
			goto done;
		}
		digest_sha256_hex(it->orig, it->orig_len, hex);
		if (!it->orig_sha[0]) {
			memcpy(it->orig_sha, hex, sizeof(hex));   /* deferred: made now */
		} else if (strcmp(hex, it->orig_sha) != 0) {
			mig_set_reason(it, "the file changed while it was read");
			goto done;
		}
	}
	if (mdb_item_bytes(d, run, it, "edit", &edit, &edit_len, err) < 0) {
		rc = -1;
		goto done;
	}
	if (mig_remake(map, it->kind, it->path, it->orig, it->orig_len, edit,
		       edit_len, &it->new, &it->new_len, &lerr) < 0) {
		if (lerr.code == MS_ERR_NOMEM) {
			rc = err_nomem(err);
			goto done;
		}
		mig_set_reason(it, "its new bytes cannot be made again: %s", lerr.msg);
		goto done;
	}
	digest_sha256_hex(it->new, it->new_len, hex);
	if (!it->new_sha[0]) {
		/* a deferred export made for the first time (schema 4) */
		if (it->new_len == it->orig_len &&
		    memcmp(it->new, it->orig, it->new_len) == 0) {
			it->next = MI_SKIPPED;
			mig_set_reason(it, "%s", MIG_EXPORT_NOT_FOUND);
			goto done;
		}
		memcpy(it->new_sha, hex, sizeof(hex));
	} else if (strcmp(hex, it->new_sha) != 0) {
		mig_set_reason(it, "its new bytes made again differ from the plan's (the "
			       "mapping file changed since?): roll the run back and plan "
			       "again");
		goto done;
	}
	(*remade)++;
	rc = 0;
done:
	mig_wipe_bytes(edit, edit_len);
	free(file);
	if (rc != 0) {
		mig_wipe_bytes(it->orig, it->orig_len);
		mig_wipe_bytes(it->new, it->new_len);
		it->orig = it->new = NULL;
		it->orig_len = it->new_len = 0;
	}
	return rc;
}

/* A deferred export's hashes and identity from the plan this apply
 * made (mig_deferred, waited for here).  Returns 0, -1 on error, 1 when
 * it was not made (its next state and reason set). */
static int deferred_take(struct plan *kept, struct mig_deferred *df,
			 struct sitem *it, struct ms_err *err)
{
	struct pitem *pi = kept_item(kept, it);

	mig_deferred_join(df);
	if (!pi)
		return mig_set_reason(it, "not in the plan this apply made"), 1;
	if (pi->make_rc < 0)
		return err_nomem(err);
	if (pi->state != MI_PLANNED) {
		it->next = MI_SKIPPED;
		return mig_set_reason(it, "%s", pi->reason ? pi->reason : ""), 1;
	}
	memcpy(it->orig_sha, pi->orig_sha, sizeof(it->orig_sha));
	memcpy(it->new_sha, pi->new_sha, sizeof(it->new_sha));
	if (pi->seen && !it->seen && !(it->seen = strdup(pi->seen)))
		return err_nomem(err);
	return 0;
}

/* One planned item of an apply's own plan written ahead (an export: once
 * mig_deferred makes it). */
static void stage_item(const struct migrate_opts *o, struct mig_stage *s,
		       struct pitem *pi)
{
	if (pi->state != MI_PLANNED)
		return;
	if (pi->deferred)
		pi->stage_ok = 1;
	else if (pi->new && pi->orig && !pi->seal)
		pi->staged = mig_stage_add(s, o->fleet_dir, pi->path, pi->new,
					   pi->new_len, pi->mode);
}

/* An apply that plans has its plan's new bytes at hand as soon as its run
 * is stored: they are written ahead (mig_stage_add), in plan order, while
 * it decides and writes its batches -- every INI file of the run with its
 * bytes kept and no secret still to seal into them (sealing makes other
 * bytes), and each export as mig_deferred makes it.  The batches put them
 * in place (see migrate_int.h).  With --only filters, r (the run loaded,
 * its matches marked) says which items apply; without, every planned item
 * does, and this runs as soon as the run is stored, before it is loaded.
 * Returns the stage, or NULL (nothing written ahead). */
static struct mig_stage *stage_plan(const struct migrate_opts *o,
				    const struct srun *r, struct plan *kept,
				    struct mig_deferred *df)
{
	struct mig_stage *s = mig_stage_start(0);
	size_t i;

	if (!s)
		return NULL;
	df->stage = s;
	if (!r) {
		for (i = 0; i < kept->n; i++)
			stage_item(o, s, &kept->items[i]);
		return s;
	}
	for (i = 0; i < r->n; i++) {
		const struct sitem *it = &r->items[i];
		struct pitem *pi = kept_item(kept, it);

		if (it->match && it->state == MI_PLANNED && pi)
			stage_item(o, s, pi);
	}
	return s;
}

/* Step 1 of an apply batch items[b0..e) (main thread: the connection,
 * in the open transaction): decide each item, store the originals about
 * to be overwritten, record the items to write as applying (it->write).
 * An export stored without its hashes (schema 4: deferred) gets them
 * first, from the plan this apply made or made now from its file and its
 * edit, and they are recorded with its next state. */
static int apply_decide(const struct migrate_opts *o, const struct migrate_map *map,
			struct mdb *d, int run, struct plan *kept,
			struct mig_deferred *df, struct srun *r, size_t b0, size_t e,
			size_t *remade, struct ms_err *err)
{
	size_t i;

	for (i = b0; i < e; i++) {
		struct sitem *it = &r->items[i];
		struct ms_err lerr = MS_ERR_INIT;
		struct pitem *pi;
		char cur[65] = "";
		int h, with_new = 0;

		it->next = MI_NONE;
		it->write = 0;
		if (!it->match || (it->state != MI_PLANNED &&
				   it->state != MI_APPLYING))
			continue;
		if (it->state == MI_PLANNED && !it->orig_sha[0]) {
			h = kept ? deferred_take(kept, df, it, err) :
			    item_bytes(o, map, d, run, NULL, it, remade, err);
			if (h < 0)
				return -1;
			if (h > 0) {
				if (it->next == MI_NONE)
					it->next = MI_FAILED;
				goto record;
			}
			it->set_hashes = 1;
		}
		/* what was written ahead of it, dropped below unless written
		 * (an export's: once its making is joined above) */
		if ((pi = kept_item(kept, it)) && pi->staged) {
			it->staged = pi->staged;
			pi->staged = NULL;
		}
		if (unchanged_since_plan(o->fleet_dir, it, &it->mode)) {
			memcpy(cur, it->orig_sha, sizeof(cur));
			h = 0;
		} else {
			h = mig_hash_file(o->fleet_dir, it->path, it->kind, cur,
				      &it->mode, &lerr);
		}
		if (h != 0) {
			it->next = MI_FAILED;
			mig_set_reason(it, "%s", h > 0 ? "the file no longer exists" :
				   lerr.msg);
		} else if (strcmp(cur, it->new_sha) == 0) {
			it->next = MI_APPLIED;   /* written before a crash */
			it->written = 1;
		} else if (strcmp(cur, it->orig_sha) != 0) {
			it->next = MI_CONFLICT;
			mig_set_reason(it, "the file changed since the plan (its hash matches "
				   "neither the original nor the new version)");
		} else {
			if (it->new && it->orig) {
				/* made above: a deferred export of a resumed apply */
			} else if (it->have_new && it->have_orig) {
				if (mdb_item_bytes(d, run, it, "new", &it->new,
						   &it->new_len, err) < 0)
					return -1;
			} else if ((h = item_bytes(o, map, d, run, kept,
						   it, remade, err)) != 0) {
				if (h < 0)
					return -1;
				if (it->next == MI_NONE)
					it->next = MI_FAILED;
				goto record;
			}
			if (!it->have_orig &&
			    mdb_store_orig(d, run, it, it->orig, it->orig_len, err) < 0)
				return -1;
			mig_wipe_bytes(it->orig, it->orig_len);
			it->orig = NULL;
			it->orig_len = 0;
			if (it->state == MI_PLANNED && it->seal) {
				if (seal_item(map, it, &lerr) < 0) {
					it->next = MI_FAILED;
					mig_set_reason(it, "%s", lerr.msg);
					goto record;
				}
				with_new = 1;
			}
			it->next = MI_APPLYING;
			it->written = 1;
			it->write = 1;
		}
record:
		if (!it->write) {
			mig_stage_drop(it->staged);
			it->staged = NULL;
			mig_wipe_bytes(it->orig, it->orig_len);
			mig_wipe_bytes(it->new, it->new_len);
			it->orig = it->new = NULL;
			it->orig_len = it->new_len = 0;
		}
		if (mdb_set_item(d, run, it, with_new, err) < 0)
			return -1;
	}
	return 0;
}

/* Long (about 190 lines) on purpose: the exactly-once order of apply
 * (commit the original as "applying", write, fsync the folders, commit
 * "applied", batch by batch) is the guarantee of migrate.h and is read
 * and reviewed as one sequence. */
int migrate_apply(const struct migrate_opts *o, struct migrate_result *res,
		  struct ms_err *err)
{
	struct migrate_map *map = NULL;
	struct mdb *d = NULL;
	struct plan *kept = NULL;
	struct mig_deferred df;
	struct mig_stage *stage = NULL;
	struct srun r;
	struct wctx w;
	size_t i, b0, bs = o->batch ? o->batch : BATCH;
	int run = 0, f, rc = -1, own = 0;
	int filtered = o->only_machine || o->only_schedule || o->only_job;
	double t = mig_now();

	memset(res, 0, sizeof(*res));
	memset(&r, 0, sizeof(r));
	memset(&w, 0, sizeof(w));
	memset(&df, 0, sizeof(df));
	if (mdb_open_all(o, 1, &d, &map, err) < 0)
		return -1;
	if ((f = mdb_find_run(d, 0, 1, &run, err)) < 0)
		goto done;
	mig_lap(res, MIGRATE_PH_OPEN, &t);
	if (f == 1) {
		struct migrate_result pr;
		memset(&pr, 0, sizeof(pr));
		/* planned here: stored without its bytes, which stay at hand */
		if (mig_do_plan(o, d, map, 0, &kept, &pr, err) < 0)
			goto done;
		own = 1;
		run = pr.run;
		for (i = 0; i < MIGRATE_PHASES; i++)
			res->phase[i] += pr.phase[i];
		res->commits += pr.commits;
		t = mig_now();
		mig_outf(o, "planned run %d: %zu item%s\n", run, pr.items,
		     pr.items == 1 ? "" : "s");
		/* its exports are made while the INI files are written
		 * (started once the first batch is decided) */
		if (mig_deferred_init(&df, o, map, kept, err) < 0)
			goto done;
		if (!filtered)
			stage = stage_plan(o, NULL, kept, &df);
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
	if (mig_wctx_init(&w, o, &r, err) < 0)
		goto done;
	if (own && filtered)
		stage = stage_plan(o, &r, kept, &df);
	mig_lap(res, MIGRATE_PH_LOAD, &t);
	/* Each batch: record the originals of the files about to be written
	 * (state applying), write every file (tmp, fsync, rename), fsync each
	 * folder once, then record the applied states -- in the transaction
	 * of the next batch's applying states (or the last one): one commit
	 * per batch.  An item is only recorded applied once its bytes and its
	 * folder entry are durable; a crash before that leaves it applying
	 * (its original stored), and the next apply finds the new hash. */
	if (mdb_exec(d, "BEGIN;", err) < 0)
		goto done;
	/* A batch is written (files, then folders) on a thread of its own
	 * while this one decides the next batch and stores its originals,
	 * in the transaction that also records this batch's applied states
	 * once it is joined: the next batch's applying states are committed
	 * before any of its files is written, this batch's applied states
	 * after its files and folders are durable. */
	if (r.n && apply_decide(o, map, d, run, own ? kept : NULL, &df, &r, 0,
				r.n < bs ? r.n : bs, &res->remade, err) < 0)
		goto fail;
	mig_lap(res, MIGRATE_PH_DECIDE, &t);
	mig_deferred_start(&df);
	for (b0 = 0; b0 < r.n; b0 += bs) {
		size_t e = b0 + bs < r.n ? b0 + bs : r.n;
		size_t ne = e + bs < r.n ? e + bs : r.n;
		struct wbatch b;
		int drc = 0;

		if (mig_commit(d, res, &t, err) < 0)
			goto done;
		/* 2: write, several files at once, and 3: fsync their
		 * folders, on the batch's thread */
		w.n_files = 0;
		for (i = b0; i < e; i++)
			if (r.items[i].write &&
			    mig_batch_add(&w, &r.items[i], r.items[i].new, r.items[i].new_len,
				      err) < 0)
				goto done;
		memset(&b, 0, sizeof(b));
		b.w = &w;
		b.r = &r;
		b.f = w.files;
		b.n = w.n_files;
		b.lo = b0;
		b.hi = e;
		b.done = MI_APPLIED;
		mig_batch_start(&b);
		/* 1 of the next batch, meanwhile */
		if (mdb_exec(d, "BEGIN;", err) < 0)
			drc = -1;
		else if (e < r.n)
			drc = apply_decide(o, map, d, run, own ? kept : NULL, &df, &r,
					   e, ne, &res->remade, err);
		mig_lap(res, MIGRATE_PH_DECIDE, &t);
		mig_batch_join(&b);
		for (i = b0; i < e; i++) {
			/* every file written took what was written ahead of
			 * it; none may be left to read the bytes freed here */
			mig_stage_drop(r.items[i].staged);
			r.items[i].staged = NULL;
			mig_wipe_bytes(r.items[i].new, r.items[i].new_len);
			r.items[i].new = NULL;
			r.items[i].new_len = 0;
		}
		mig_lap(res, MIGRATE_PH_WRITE, &t);
		if (b.rc < 0) {
			*err = b.err;
			goto fail;
		}
		if (drc < 0)
			goto fail;
		/* 4: record, committed with the next batch's applying states */
		for (i = b0; i < e; i++)
			if (r.items[i].write && mdb_set_item(d, run, &r.items[i], 0, err) < 0)
				goto fail;
		mig_lap(res, MIGRATE_PH_DECIDE, &t);
	}
	if (mig_commit(d, res, &t, err) < 0)
		goto done;
	mig_deferred_release(&df);
	mig_stage_stop(&stage);
	if (kept) {
		mig_plan_free(kept);
		free(kept);
		kept = NULL;
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
	/* the run's folders listed for stale temporary files (started by
	 * mig_wctx_init, alongside the writes) */
	mig_wctx_wait(&w);
	mig_lap(res, MIGRATE_PH_LOAD, &t);
	/* the packet before the run is marked done: a run killed between
	 * its packet's files stays open, and the next apply resumes it and
	 * writes the packet whole (a new run would have nothing to write and
	 * leave the half packet, and its temporary files, as they are) */
	if ((r.n && write_changes(o, &r, 0, &w.writes, err) < 0) ||
	    run_finished(d, &r, err) < 0)
		goto done;
	mig_lap(res, MIGRATE_PH_PACKET, &t);
	mig_outf(o, "summary: run %d: %zu applied, %zu skipped, %zu conflict, %zu failed, "
	     "%zu still planned; %zu job command line%s to change, %zu for manual "
	     "action\n", run, res->applied, res->skipped, res->conflict, res->failed,
	     res->planned, res->jobs_changed, res->jobs_changed == 1 ? "" : "s",
	     res->manual);
	rc = 0;
	goto done;
fail:
	sqlite3_exec(d->db, "ROLLBACK;", NULL, NULL, NULL);
done:
	mig_deferred_release(&df);
	mig_stage_stop(&stage);   /* before the bytes it borrowed are freed */
	if (kept) {
		mig_plan_free(kept);
		free(kept);
	}
	mig_wctx_release(&w);
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
	if (srun_unclosed(&r))
		mig_outf(o, "note: every file of run %d is settled, but its change and deploy lists "
			 "are not written (an apply stopped while writing them): apply again "
			 "writes them and closes the run\n", run);
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

/* A rollback batch's file, on the pool's threads (mig_write_files_prep):
 * read and hashed, decided, its original unsealed and checked (reads
 * only d->key) -- then written by the same task. */
struct rb_prep {
	const struct mdb *d;
	int run, force;
	const char *fleet;
};

static int rollback_prep(void *ctx, struct wfile *f)
{
	struct rb_prep *u = ctx;
	struct sitem *it = f->it;
	struct ms_err lerr = MS_ERR_INIT;
	char cur[65] = "";
	int h, rc = 1;

	h = mig_hash_file(u->fleet, it->path, it->kind, cur, &it->mode, &lerr);
	if (h < 0) {
		it->next = MI_FAILED;
		mig_set_reason(it, "%s", lerr.msg);
	} else if (h == 0 && strcmp(cur, it->orig_sha) == 0) {
		it->next = MI_ROLLED_BACK;   /* restored before a crash */
	} else if ((h == 0 && strcmp(cur, it->new_sha) == 0) || u->force) {
		if (!it->sealed) {
			/* never: written = 1 comes with the original */
			it->next = MI_FAILED;
			mig_set_reason(it, "no original bytes stored");
		} else if (mdb_unseal(u->d, u->run, it, "orig", it->sealed,
				      it->sealed_len, &it->orig, &it->orig_len,
				      &f->err) < 0) {
			rc = -1;
		} else {
			it->write = 1;
			if (h == 0 && strcmp(cur, it->new_sha) != 0)
				mig_set_reason(it, "forced over a change made after the "
					       "migration");
			f->data = it->orig ? it->orig : "";
			f->len = it->orig_len;
			rc = 0;
		}
	} else {
		it->next = MI_CONFLICT;
		mig_set_reason(it, h > 0 ? "the file no longer exists (use --force to "
			       "restore it)" : "the file changed after the migration "
			       "(use --force to restore the original anyway)");
	}
	free(it->sealed);
	it->sealed = NULL;
	it->sealed_len = 0;
	return rc;
}

/* A rollback batch items[lo..hi) decided as far as the database tells
 * (main thread: the connection): the items to restore put in f (*n),
 * each with its original still sealed; the others' next state set. */
static int rollback_batch_prepare(struct mdb *d, int run, struct srun *r,
				  size_t lo, size_t hi, struct wfile *f, size_t *n,
				  struct ms_err *err)
{
	size_t i;

	*n = 0;
	for (i = hi; i-- > lo;) {
		struct sitem *it = &r->items[i];

		it->next = MI_NONE;
		it->write = 0;
		if (!it->match)
			continue;
		if (it->state == MI_PLANNED && !it->written) {
			it->next = MI_SKIPPED;
			mig_set_reason(it, "not applied before the rollback");
		} else if (it->written && it->state != MI_ROLLED_BACK) {
			/* read even when the file turns out restored already
			 * (a resumed rollback): one ordered pass */
			if (it->have_orig &&
			    mdb_item_sealed(d, run, it, "orig", &it->sealed,
					    &it->sealed_len, err) < 0)
				return -1;
			memset(&f[*n], 0, sizeof(f[*n]));
			f[*n].it = it;
			f[*n].data = "";
			(*n)++;
		}
	}
	return 0;
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
	struct wfile *fb[2] = { NULL, NULL };
	struct rb_prep up;
	size_t i, hi, lo, nlo, nf = 0, nnf, bs = o->batch ? o->batch : BATCH;
	int run = 0, f, rc = -1, cur;
	double t = mig_now();

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
		/* the latest run with a written item not rolled back, or
		 * all rolled back but not marked (killed before its packet
		 * was written whole) */
		if (mdb_prepare(d, &st, "SELECT max(i.run) FROM items i JOIN runs r"
			       " ON r.id = i.run WHERE i.written = 1 AND"
			       " (i.state <> 'rolled-back' OR r.state <> 'rolled-back')",
			       err) < 0)
			goto done;
		if (sqlite3_step(st) == SQLITE_ROW)
			run = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
		if (run == 0) {
			/* a rollback killed while writing its change list may
			 * have left temporary files there */
			char *base = fs_join(o->fleet_dir, "migrate");
			if (base)
				mig_clean_changelists(base);
			free(base);
			mig_outf(o, "nothing to roll back\n");
			rc = 0;
			goto done;
		}
	}
	mig_lap(res, MIGRATE_PH_OPEN, &t);
	mdb_prefetch(d);
	if (mdb_load_run(d, run, &r, err) < 0 || mdb_check_key(d, &r, err) < 0)
		goto done;
	mig_mark_matches(o, &r);
	res->run = run;
	if (mig_wctx_init(&w, o, &r, err) < 0)
		goto done;
	up.d = d;
	up.run = run;
	up.force = o->force;
	up.fleet = o->fleet_dir;
	mig_lap(res, MIGRATE_PH_LOAD, &t);
	if (!(fb[0] = calloc(bs, sizeof(*fb[0]))) ||
	    !(fb[1] = calloc(bs, sizeof(*fb[1])))) {
		err_nomem(err);
		goto done;
	}
	/* newest first: exports, then INI files, in reverse plan order, in
	 * batches: decide each item of the batch, restore its files, fsync
	 * their folders, then commit the batch's states (a file restored
	 * before a crash has its original hash and is recognised next time).
	 * A batch is written (files, then folders) on a thread of its own
	 * while this one reads the next batch's originals from the database;
	 * its states are committed once it is joined, before the next batch
	 * writes anything. */
	hi = r.n;
	lo = hi ? (hi - 1) / bs * bs : 0;
	if (hi && rollback_batch_prepare(d, run, &r, lo, hi, fb[0], &nf, err) < 0)
		goto done;
	mig_lap(res, MIGRATE_PH_DECIDE, &t);
	for (cur = 0; hi > 0; hi = lo, lo = nlo, nf = nnf, cur ^= 1) {
		struct wbatch b;
		int prc = 0;

		nlo = lo ? (lo - 1) / bs * bs : 0;
		nnf = 0;
		memset(&b, 0, sizeof(b));
		b.w = &w;
		b.r = &r;
		b.f = fb[cur];
		b.n = nf;
		b.lo = lo;
		b.hi = hi;
		b.done = MI_ROLLED_BACK;
		b.prep = rollback_prep;
		b.ctx = &up;
		mig_batch_start(&b);
		if (lo > 0)
			prc = rollback_batch_prepare(d, run, &r, nlo, lo, fb[cur ^ 1], &nnf,
						     err);
		mig_lap(res, MIGRATE_PH_DECIDE, &t);
		mig_batch_join(&b);
		for (i = lo; i < hi; i++) {
			mig_wipe_bytes(r.items[i].orig, r.items[i].orig_len);
			r.items[i].orig = NULL;
			r.items[i].orig_len = 0;
		}
		mig_lap(res, MIGRATE_PH_WRITE, &t);
		if (b.rc < 0) {
			*err = b.err;
			goto done;
		}
		if (prc < 0)
			goto done;
		if (mdb_exec(d, "BEGIN;", err) < 0)
			goto done;
		for (i = lo; i < hi; i++)
			if (r.items[i].next != MI_NONE &&
			    mdb_set_item(d, run, &r.items[i], 0, err) < 0) {
				sqlite3_exec(d->db, "ROLLBACK;", NULL, NULL, NULL);
				goto done;
			}
		mig_lap(res, MIGRATE_PH_DECIDE, &t);
		if (mig_commit(d, res, &t, err) < 0)
			goto done;
	}
	mig_wctx_wait(&w);
	mig_lap(res, MIGRATE_PH_LOAD, &t);
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
		int left = 0, any = 0;
		for (i = 0; i < r.n; i++) {
			if (r.items[i].written && r.items[i].state != MI_ROLLED_BACK)
				left = 1;
			if (r.items[i].state == MI_ROLLED_BACK)
				any = 1;
		}
		/* the packet is written whole before the run is marked rolled
		 * back: a rollback killed while writing it is found again by
		 * the next one (the run not marked), which writes it again */
		if (any && write_changes(o, &r, 1, &w.writes, err) < 0)
			goto done;
		if (!left) {
			snprintf(sql, sizeof(sql), "UPDATE runs SET state = 'rolled-back' "
				 "WHERE id = %d;", run);
			if (mdb_exec(d, sql, err) < 0)
				goto done;
		}
	}
	mig_lap(res, MIGRATE_PH_PACKET, &t);
	mig_outf(o, "summary: run %d: %zu rolled back, %zu conflict, %zu failed\n", run,
	     res->rolled_back, res->conflict, res->failed);
	rc = 0;
done:
	free(fb[0]);
	free(fb[1]);
	mig_wctx_release(&w);
	srun_release(&r);
	mdb_close(d);
	return rc;
}
