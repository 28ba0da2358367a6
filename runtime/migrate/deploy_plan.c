/*
 * deploy_plan.c - mailshift-migrate deploy-plan: an applied run's INI
 * files as per-machine packets, and the schedules that deploy them
 * (deploy.h; formats in docs/fleet.md).
 */
#include "migrate/deploy.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cJSON.h>
#include <openssl/evp.h>

#include "audit/collect.h"
#include "base/digest.h"
#include "base/fleetdir.h"
#include "base/fsutil.h"
#include "base/mem.h"
#include "migrate/migrate_int.h"

#define INI_MAX ((size_t)64 * 1024 * 1024)

struct dmachine {
	char *name;
	cJSON *files;
};

struct dctx {
	const struct deploy_plan_opts *o;
	struct deploy_plan_result *r;
	struct dmachine *m;
	size_t n, alloc, problems_cap;
};

static int problem(struct dctx *c, struct ms_err *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int problem(struct dctx *c, struct ms_err *err, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return err_nomem(err);
	if (MEM_GROW(c->r->problems, c->problems_cap, c->r->n_problems + 1, err)) {
		free(s);
		return -1;
	}
	c->r->problems[c->r->n_problems++] = s;
	return 0;
}

static struct dmachine *machine_get(struct dctx *c, const char *name,
				    struct ms_err *err)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (strcasecmp(c->m[i].name, name) == 0)
			return &c->m[i];
	if (MEM_GROW(c->m, c->alloc, c->n + 1, err))
		return NULL;
	if (!(c->m[c->n].name = strdup(name)) ||
	    !(c->m[c->n].files = cJSON_CreateArray())) {
		free(c->m[c->n].name);
		err_nomem(err);
		return NULL;
	}
	return &c->m[c->n++];
}

/* One applied INI item: its new bytes as they are in the fleet folder
 * (checked against the hash apply recorded), into its machine's packet. */
static int add_item(struct dctx *c, const struct sitem *it, struct ms_err *err)
{
	struct ms_err lerr = MS_ERR_INIT;
	char *file = NULL, *winpath = NULL, *folder = NULL, *data = NULL, *b64 = NULL;
	char hex[65];
	size_t len = 0;
	struct dmachine *m;
	cJSON *e;
	int rc = -1;

	if (!(winpath = fleet_windows_path(it->path, &folder)))
		return problem(c, err, "%s: not a file of a machine's folder", it->path);
	if (!(file = fs_join(c->o->fleet_dir, it->path)))
		goto nomem;
	if (fs_read_file(file, INI_MAX, &data, &len, &lerr) < 0) {
		rc = lerr.code == MS_ERR_NOMEM ? err_nomem(err) :
		     problem(c, err, "%s: left out: %s", it->path, lerr.msg);
		goto done;
	}
	digest_sha256_hex(data, len, hex);
	if (strcmp(hex, it->new_sha) != 0) {
		rc = problem(c, err, "%s: left out: changed in the fleet folder since "
			     "apply (its hash is not the run's new hash)", it->path);
		goto done;
	}
	if (!(b64 = malloc(4 * ((len + 2) / 3) + 1)))
		goto nomem;
	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)data, (int)len);
	if (!(m = machine_get(c, it->machine && *it->machine ? it->machine : folder, err)))
		goto done;
	if (!(e = cJSON_CreateObject()) || !cJSON_AddItemToArray(m->files, e) ||
	    !cJSON_AddStringToObject(e, "path", winpath) ||
	    !cJSON_AddStringToObject(e, "fleet_file", it->path) ||
	    !cJSON_AddStringToObject(e, "collected_sha256", it->orig_sha) ||
	    !cJSON_AddStringToObject(e, "new_sha256", it->new_sha) ||
	    !cJSON_AddNumberToObject(e, "size", (double)len) ||
	    !cJSON_AddStringToObject(e, "jobs", it->jobs ? it->jobs : "") ||
	    !cJSON_AddStringToObject(e, "new_base64", b64))
		goto nomem;
	c->r->files++;
	rc = 0;
	goto done;
nomem:
	rc = err_nomem(err);
done:
	if (data)
		mem_wipe(data, len);
	if (b64)
		mem_wipe(b64, strlen(b64));
	free(data);
	free(b64);
	free(file);
	free(winpath);
	free(folder);
	return rc;
}

static char *agent_command(const struct deploy_plan_opts *o, int run,
			   const char *machine, int rollback)
{
	char rdir[32], *name = NULL, *packet, *cmd = NULL;
	const char *parts[4] = { "deploy", rdir, "packets", NULL };

	snprintf(rdir, sizeof(rdir), "run-%d", run);
	if (asprintf(&name, "%s.json", machine) < 0)
		return NULL;
	parts[3] = name;
	packet = collect_share_path(o->share, parts, 4);
	free(name);
	if (!packet)
		return NULL;
	if (asprintf(&cmd, "\"%s\" deploy --packet \"%s\"%s",
		     o->exe ? o->exe : DEPLOY_DEFAULT_EXE, packet,
		     rollback ? " --rollback" : "") < 0)
		cmd = NULL;
	free(packet);
	return cmd;
}

static char *exe_dir(const char *exe)
{
	const char *s = strrchr(exe, '\\');
	return s ? strndup(exe, (size_t)(s - exe)) : strdup("C:\\");
}

/* The packets and the two schedules. */
static int write_packets(struct dctx *c, int run, struct ms_err *err)
{
	struct import_job *dj = NULL, *rj = NULL;
	char *pdir = NULL, *rdir = NULL, *path = NULL, *text = NULL, *wd = NULL;
	char *fname = NULL;
	size_t i;
	int rc = -1;

	if (!(pdir = fs_join(c->r->dir, "packets")) ||
	    !(rdir = fs_join(c->r->dir, "receipts")) ||
	    !(wd = exe_dir(c->o->exe ? c->o->exe : DEPLOY_DEFAULT_EXE)) ||
	    (c->n && (!(dj = calloc(c->n, sizeof(*dj))) ||
		      !(rj = calloc(c->n, sizeof(*rj))))))
		goto nomem;
	/* receipts/ made here: the agents write there, maybe as users who
	 * may not create folders in the share */
	if (fs_mkdirs(pdir, 0755, err) < 0 || fs_mkdirs(rdir, 0755, err) < 0)
		goto done;
	for (i = 0; i < c->n; i++) {
		cJSON *doc = cJSON_CreateObject();
		int wr;

		if (!doc || !cJSON_AddStringToObject(doc, "mailshift", "deploy-packet") ||
		    !cJSON_AddNumberToObject(doc, "version", 1) ||
		    !cJSON_AddNumberToObject(doc, "run", run) ||
		    !cJSON_AddStringToObject(doc, "machine", c->m[i].name) ||
		    !cJSON_AddItemReferenceToObject(doc, "files", c->m[i].files))
			text = NULL;
		else
			text = cJSON_Print(doc);
		cJSON_Delete(doc);
		if (!text || asprintf(&fname, "%s.json", c->m[i].name) < 0 ||
		    !(path = fs_join(pdir, fname)))
			goto nomem;
		/* new INI bytes (sealed secrets at most): owner only */
		wr = collect_write_json(path, text, 1, err);
		mem_wipe(text, strlen(text));
		free(text);
		free(path);
		free(fname);
		text = path = fname = NULL;
		if (wr < 0)
			goto done;
		dj[i].schedule = DEPLOY_SCHEDULE;
		rj[i].schedule = DEPLOY_ROLLBACK_SCHEDULE;
		dj[i].machine = rj[i].machine = c->m[i].name;
		dj[i].working_dir = rj[i].working_dir = wd;
		if (asprintf((char **)&dj[i].name, "DEPLOY-%s", c->m[i].name) < 0)
			dj[i].name = NULL;
		if (asprintf((char **)&rj[i].name, "DEPLOY-ROLLBACK-%s", c->m[i].name) < 0)
			rj[i].name = NULL;
		dj[i].command_line = agent_command(c->o, run, c->m[i].name, 0);
		rj[i].command_line = agent_command(c->o, run, c->m[i].name, 1);
		if (!dj[i].name || !rj[i].name || !dj[i].command_line || !rj[i].command_line)
			goto nomem;
	}
	if (!(path = fs_join(c->r->dir, DEPLOY_SCHEDULE ".json")))
		goto nomem;
	if (collect_import_write(path, dj, c->n, err) < 0)
		goto done;
	free(path);
	if (!(path = fs_join(c->r->dir, DEPLOY_ROLLBACK_SCHEDULE ".json")))
		goto nomem;
	if (collect_import_write(path, rj, c->n, err) < 0)
		goto done;
	rc = 0;
	goto done;
nomem:
	rc = err_nomem(err);
done:
	for (i = 0; i < c->n; i++) {
		if (dj) {
			free((char *)dj[i].name);
			free((char *)dj[i].command_line);
		}
		if (rj) {
			free((char *)rj[i].name);
			free((char *)rj[i].command_line);
		}
	}
	free(dj);
	free(rj);
	free(pdir);
	free(rdir);
	free(path);
	free(text);
	free(fname);
	free(wd);
	return rc;
}

/* The run's command-line changes (changes.json's "change" rows) as import
 * files: each job with its new command line, in its own schedule, and the
 * same jobs with their old ones for a rollback. */
static int write_job_changes(struct dctx *c, const struct srun *r, struct ms_err *err)
{
	static const char *const files[2] = { DEPLOY_JOBS_FILE, DEPLOY_JOBS_ROLLBACK_FILE };
	struct import_job *ij = NULL;
	char *path = NULL;
	size_t i, n = 0;
	int k, rc = 0;

	if (r->n_jobs && !(ij = calloc(r->n_jobs, sizeof(*ij))))
		return err_nomem(err);
	for (k = 0; k < 2 && rc == 0; k++) {
		for (i = 0, n = 0; i < r->n_jobs; i++) {
			const struct sjob *j = &r->jobs[i];
			const struct sitem *ini = j->ini_item > 0 && (size_t)j->ini_item <= r->n ?
						  &r->items[j->ini_item - 1] : NULL;

			/* as changes.json has them: only with the INI file
			 * applied, and never a manual one (its command line
			 * holds a password) */
			if (!ini || ini->state != MI_APPLIED || j->action != MJ_CHANGE ||
			    !j->new_cmd || !j->old_cmd)
				continue;
			ij[n].schedule = j->schedule;
			ij[n].name = j->job;
			ij[n].machine = j->machine;
			ij[n].command_line = k ? j->old_cmd : j->new_cmd;
			n++;
		}
		if (!(path = fs_join(c->r->dir, files[k])))
			rc = err_nomem(err);
		else
			rc = collect_import_write(path, ij, n, err);
		free(path);
	}
	c->r->jobs = n;
	free(ij);
	return rc;
}

int deploy_plan(const struct deploy_plan_opts *o, struct deploy_plan_result *r,
		struct ms_err *err)
{
	struct migrate_opts mo;
	struct migrate_map *map = NULL;
	struct mdb *d = NULL;
	struct srun sr;
	struct dctx c;
	size_t i;
	int run = 0, f, rc = -1;

	memset(r, 0, sizeof(*r));
	memset(&sr, 0, sizeof(sr));
	memset(&c, 0, sizeof(c));
	memset(&mo, 0, sizeof(mo));
	c.o = o;
	c.r = r;
	if (!o->share || !*o->share)
		return err_set(err, MS_ERR_USAGE, "--share is required");
	mo.fleet_dir = o->fleet_dir;
	mo.state_path = o->state_path;
	mo.run = o->run;
	if ((f = mdb_open_all(&mo, 0, &d, &map, err)) < 0)
		return -1;
	if (f == 1)
		return err_set(err, MS_ERR_USAGE, "no migration yet: run mailshift-migrate "
			       "apply first");
	if ((f = mdb_find_run(d, o->run, 0, &run, err)) < 0)
		goto done;
	if (f == 1) {
		err_set(err, MS_ERR_USAGE, o->run ? "no run %d in '%s'" : "no run%.0d in '%s'",
			o->run, d->path);
		goto done;
	}
	if (mdb_load_run(d, run, &sr, err) < 0)
		goto done;
	r->run = run;
	if (asprintf(&r->dir, "%s/deploy/run-%d", o->out_dir ? o->out_dir : o->fleet_dir,
		     run) < 0) {
		r->dir = NULL;
		err_nomem(err);
		goto done;
	}
	for (i = 0; i < sr.n; i++)
		if (strcmp(sr.items[i].kind, "ini") == 0 && sr.items[i].state == MI_APPLIED &&
		    add_item(&c, &sr.items[i], err) < 0)
			goto done;
	r->machines = c.n;
	if (write_packets(&c, run, err) < 0 || write_job_changes(&c, &sr, err) < 0)
		goto done;
	rc = 0;
done:
	for (i = 0; i < c.n; i++) {
		free(c.m[i].name);
		cJSON_Delete(c.m[i].files);   /* holds base64 of sealed INI bytes */
	}
	free(c.m);
	srun_release(&sr);
	mdb_close(d);
	migrate_map_free(map);
	if (rc < 0)
		deploy_plan_result_release(r);
	return rc;
}

void deploy_plan_result_release(struct deploy_plan_result *r)
{
	size_t i;

	for (i = 0; i < r->n_problems; i++)
		free(r->problems[i]);
	free(r->problems);
	free(r->dir);
	memset(r, 0, sizeof(*r));
}
