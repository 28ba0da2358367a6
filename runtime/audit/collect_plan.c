/*
 * collect_plan.c - mailshift-audit collect-plan: per machine a manifest of
 * the files its connector jobs name, and the MAILSHIFT_COLLECT schedule
 * that sends them (collect.h; formats in docs/fleet.md).
 */
#include "audit/collect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cJSON.h>

#include "audit/analysis.h"
#include "audit/fleet.h"
#include "base/fsutil.h"
#include "base/mem.h"
#include "ini/cmdline.h"
#include "ini/config.h"

struct pmachine {
	char *name;
	char *batch_user;         /* the first connector job's, or NULL */
	cJSON *files;             /* array of manifest entries */
};

struct pctx {
	const struct collect_plan_opts *o;
	struct collect_plan_result *r;
	struct pmachine *m;
	size_t n, alloc;
	size_t problems_cap;
	int nomem;
};

static struct pmachine *machine_get(struct pctx *c, const char *name,
				    struct ms_err *err)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (strcasecmp(c->m[i].name, name) == 0)
			return &c->m[i];
	if (MEM_GROW(c->m, c->alloc, c->n + 1, err))
		return NULL;
	memset(&c->m[c->n], 0, sizeof(c->m[c->n]));
	if (!(c->m[c->n].name = strdup(name)) ||
	    !(c->m[c->n].files = cJSON_CreateArray())) {
		free(c->m[c->n].name);
		err_nomem(err);
		return NULL;
	}
	return &c->m[c->n++];
}

/* Add s to the string array arr[key] of o unless it is there already. */
static int add_unique(cJSON *o, const char *key, const char *s)
{
	cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key), *e;

	if (!a && !(a = cJSON_AddArrayToObject(o, key)))
		return -1;
	cJSON_ArrayForEach(e, a)
		if (cJSON_IsString(e) && strcmp(e->valuestring, s) == 0)
			return 0;
	return cJSON_AddItemToArray(a, cJSON_CreateString(s)) ? 0 : -1;
}

/* The entry for path (compared as Windows does, ignoring case), created
 * with kind when new; a later kind "ini" wins over "default-ini". */
static cJSON *entry_get(struct pmachine *m, const char *path, const char *kind)
{
	cJSON *e, *p, *k;

	cJSON_ArrayForEach(e, m->files) {
		p = cJSON_GetObjectItemCaseSensitive(e, "path");
		if (cJSON_IsString(p) && strcasecmp(p->valuestring, path) == 0) {
			k = cJSON_GetObjectItemCaseSensitive(e, "kind");
			if (strcmp(kind, "ini") == 0 && cJSON_IsString(k) &&
			    strcmp(k->valuestring, "default-ini") == 0)
				cJSON_ReplaceItemInObjectCaseSensitive(e, "kind",
								       cJSON_CreateString(kind));
			return e;
		}
	}
	if (!(e = cJSON_CreateObject()) || !cJSON_AddStringToObject(e, "path", path) ||
	    !cJSON_AddStringToObject(e, "kind", kind) ||
	    !cJSON_AddItemToArray(m->files, e)) {
		cJSON_Delete(e);
		return NULL;
	}
	return e;
}

/* An INI file collected before (a second collect-plan over a fleet that
 * has its INI files) may name an [OAuth] CertificateFile: the audit checks
 * its expiry date, so the machine sends it too.  An unreadable INI is the
 * audit's to report, not ours. */
static int add_certificate(struct pctx *c, struct pmachine *m,
			   const struct fleet_job *job, const struct fleet_path *ini,
			   struct ms_err *err)
{
	struct ms_err lerr = MS_ERR_INIT;
	struct config cfg;
	struct fleet_path cp;
	cJSON *e;
	int rc = 0;

	memset(&cp, 0, sizeof(cp));
	if (config_load(&cfg, ini->file, &lerr) < 0) {
		config_release(&cfg);
		return lerr.code == MS_ERR_NOMEM ? err_nomem(err) : 0;
	}
	if (cfg.oauth_cert_file && *cfg.oauth_cert_file) {
		if (fleet_resolve_path(c->o->fleet_dir, job->machine, cfg.oauth_cert_file,
				       NULL, &cp, err) < 0)
			rc = -1;
		else if (!(e = entry_get(m, cp.windows_path ? cp.windows_path : "",
					 "certificate")) ||
			 add_unique(e, "named", cfg.oauth_cert_file) < 0 ||
			 ((cp.where == FLEET_UNRESOLVED || cp.where == FLEET_UNSUPPORTED) &&
			  !cJSON_GetObjectItemCaseSensitive(e, "unresolved") &&
			  !cJSON_AddStringToObject(e, "unresolved",
						   cp.detail ? cp.detail : "")))
			rc = err_nomem(err);
	}
	fleet_path_release(&cp);
	config_release(&cfg);
	return rc;
}

/* One connector job: its INI file (as named, and where the audit's
 * resolution puts it: %PROGRAMDATA%, the working directory, "..") into
 * its machine's manifest. */
static int plan_job(struct pctx *c, const struct fleet_job *job,
		    struct ms_err *err)
{
	struct ms_err lerr = MS_ERR_INIT;
	struct cmdline_job cj;
	struct connector_opts opts;
	struct fleet_path fp;
	struct pmachine *m;
	char *jobname = NULL;
	cJSON *e;
	int have_opts = 0, rc = -1;

	memset(&cj, 0, sizeof(cj));
	memset(&opts, 0, sizeof(opts));
	memset(&fp, 0, sizeof(fp));
	if (cmdline_job_parse(job->command_line, &cj, &lerr) < 0 || cj.exe < 0) {
		/* the audit reports such a job as broken; nothing to fetch */
		rc = lerr.code == MS_ERR_NOMEM ? err_nomem(err) : 0;
		goto done;
	}
	if (cmdline_parse_connector_ex(cj.end - cj.exe, cj.argv + cj.exe,
				       CMDLINE_ALLOW_PROPERTIES, &opts, &lerr) < 0) {
		rc = lerr.code == MS_ERR_NOMEM ? err_nomem(err) : 0;
		have_opts = 1;
		goto done;
	}
	have_opts = 1;
	if (fleet_resolve_ini(c->o->fleet_dir, job->machine, opts.inifile,
			      job->working_dir, &fp, err) < 0)
		goto done;
	if (!(m = machine_get(c, job->machine, err)))
		goto done;
	if (!m->batch_user && job->batch_user && *job->batch_user &&
	    !(m->batch_user = strdup(job->batch_user)))
		goto nomem;
	if (!(e = entry_get(m, fp.windows_path ? fp.windows_path : "", "ini")))
		goto nomem;
	if (asprintf(&jobname, "%s/%s", job->schedule, job->name) < 0) {
		jobname = NULL;
		goto nomem;
	}
	if (add_unique(e, "named", opts.inifile ? opts.inifile :
		       "(default: no -inifile:)") < 0 || add_unique(e, "jobs", jobname) < 0)
		goto nomem;
	/* the working directory matters to a relative -inifile: only */
	if (opts.inifile && !(opts.inifile[0] && opts.inifile[1] == ':') &&
	    opts.inifile[0] != '\\' && opts.inifile[0] != '%' &&
	    job->working_dir && *job->working_dir &&
	    !cJSON_GetObjectItemCaseSensitive(e, "working_dir") &&
	    !cJSON_AddStringToObject(e, "working_dir", job->working_dir))
		goto nomem;
	if ((fp.where == FLEET_UNRESOLVED || fp.where == FLEET_UNSUPPORTED) &&
	    !cJSON_GetObjectItemCaseSensitive(e, "unresolved") &&
	    !cJSON_AddStringToObject(e, "unresolved", fp.detail ? fp.detail : ""))
		goto nomem;
	if (fp.where == FLEET_FOUND && add_certificate(c, m, job, &fp, err) < 0)
		goto done;
	c->r->jobs++;
	rc = 0;
	goto done;
nomem:
	rc = err_nomem(err);
done:
	free(jobname);
	fleet_path_release(&fp);
	if (have_opts)
		cmdline_opts_release(&opts);
	cmdline_job_release(&cj);
	return rc;
}

static void on_problem(const char *file, int line, const char *msg, void *ctx);

static int on_job(const struct fleet_job *job, void *ctx, struct ms_err *err)
{
	struct pctx *c = ctx;
	const char *m = job->machine;
	char msg[512];

	if (!analysis_is_connector_job(job))
		return 0;
	/* the machine names a file and a folder in the share */
	if (!*m || m[0] == '.' || strpbrk(m, "/\\:*?\"<>|") || strlen(m) > 255) {
		snprintf(msg, sizeof(msg), "job %s/%s: machine '%s' cannot name a folder: "
			 "not collected", job->schedule, job->name, m);
		on_problem(job->source, job->line, msg, ctx);
		return c->nomem ? err_nomem(err) : 0;
	}
	return plan_job(c, job, err);
}

static void on_problem(const char *file, int line, const char *msg, void *ctx)
{
	struct pctx *c = ctx;
	struct collect_plan_result *r = c->r;
	char *s;

	if ((line ? asprintf(&s, "%s:%d: %s", file, line, msg) :
	     asprintf(&s, "%s: %s", file, msg)) < 0)
		s = NULL;
	if (!s || MEM_GROW(r->problems, c->problems_cap, r->n_problems + 1, NULL)) {
		free(s);
		c->nomem = 1;
		return;
	}
	r->problems[r->n_problems++] = s;
}

/* The Windows command line of one collect job: every path quoted. */
static char *collect_command(const struct collect_plan_opts *o, const char *machine)
{
	char *manifest, *name = NULL, *cmd = NULL;

	const char *parts[3] = { "collect", "manifests", NULL };

	if (asprintf(&name, "%s.json", machine) < 0)
		return NULL;
	parts[2] = name;
	manifest = collect_share_path(o->share, parts, 3);
	free(name);
	if (!manifest)
		return NULL;
	if (asprintf(&cmd, "\"%s\" collect --manifest \"%s\" --out \"%s\"",
		     o->exe ? o->exe : COLLECT_DEFAULT_EXE, manifest, o->share) < 0)
		cmd = NULL;
	free(manifest);
	return cmd;
}

/* The exe's folder, as the job's working directory. */
static char *exe_dir(const char *exe)
{
	const char *s = strrchr(exe, '\\');
	return s ? strndup(exe, (size_t)(s - exe)) : strdup("C:\\");
}

/* The machine of --notify "M=WINPATH" gets the notification export. */
static int add_notify(struct pctx *c, struct ms_err *err)
{
	const char *eq = strchr(c->o->notify, '=');
	struct pmachine *m;
	char *name;
	cJSON *e;

	if (!eq || eq == c->o->notify || !eq[1])
		return err_set(err, MS_ERR_USAGE, "bad --notify '%s' (want MACHINE=PATH)",
			       c->o->notify);
	if (!(name = strndup(c->o->notify, (size_t)(eq - c->o->notify))))
		return err_nomem(err);
	m = machine_get(c, name, err);
	free(name);
	if (!m)
		return -1;
	if (!(e = entry_get(m, eq + 1, "notify")))
		return err_nomem(err);
	return 0;
}

static int cmp_machine(const void *a, const void *b)
{
	return strcasecmp(((const struct pmachine *)a)->name,
			  ((const struct pmachine *)b)->name);
}

/* The manifests and the import file, once every job is read. */
static int write_outputs(struct pctx *c, const char *out, struct ms_err *err)
{
	struct collect_plan_result *r = c->r;
	struct import_job *ij = NULL;
	char *dir = NULL, *path = NULL, *text = NULL, *wd = NULL, *fname = NULL;
	size_t i, k;
	int rc = -1;

	if (asprintf(&dir, "%s/collect", out) < 0) {
		dir = NULL;
		goto nomem;
	}
	if (!(r->manifest_dir = fs_join(dir, "manifests")) ||
	    !(r->import_file = fs_join(dir, COLLECT_SCHEDULE ".json")) ||
	    !(wd = exe_dir(c->o->exe ? c->o->exe : COLLECT_DEFAULT_EXE)) ||
	    (c->n && !(ij = calloc(c->n, sizeof(*ij)))))
		goto nomem;
	if (fs_mkdirs(r->manifest_dir, 0755, err) < 0)
		goto done;
	if (c->n)
		qsort(c->m, c->n, sizeof(*c->m), cmp_machine);
	for (i = 0; i < c->n; i++) {
		struct pmachine *m = &c->m[i];
		cJSON *doc, *f;
		int wr;

		/* every machine also sends the incumbent's default INI file:
		 * a job without -inifile: may be added after the export */
		if (!entry_get(m, FLEET_DEFAULT_INI, "default-ini"))
			goto nomem;
		cJSON_ArrayForEach(f, m->files) {
			r->files++;
			if (cJSON_GetObjectItemCaseSensitive(f, "unresolved"))
				r->unresolved++;
		}
		if (!(doc = cJSON_CreateObject()))
			goto nomem;
		if (!cJSON_AddStringToObject(doc, "mailshift", "collect-manifest") ||
		    !cJSON_AddNumberToObject(doc, "version", 1) ||
		    !cJSON_AddStringToObject(doc, "machine", m->name) ||
		    !cJSON_AddItemReferenceToObject(doc, "files", m->files))
			text = NULL;
		else
			text = cJSON_Print(doc);
		cJSON_Delete(doc);
		if (!text || asprintf(&fname, "%s.json", m->name) < 0 ||
		    !(path = fs_join(r->manifest_dir, fname)))
			goto nomem;
		wr = collect_write_json(path, text, 0, err);
		free(text);
		free(path);
		free(fname);
		text = path = fname = NULL;
		if (wr < 0)
			goto done;
		ij[i].schedule = COLLECT_SCHEDULE;
		ij[i].machine = m->name;
		ij[i].working_dir = wd;
		ij[i].batch_user = m->batch_user;
		if (asprintf((char **)&ij[i].name, "COLLECT-%s", m->name) < 0) {
			ij[i].name = NULL;
			goto nomem;
		}
		if (!(ij[i].command_line = collect_command(c->o, m->name)))
			goto nomem;
	}
	r->machines = c->n;
	rc = collect_import_write(r->import_file, ij, c->n, err);
	goto done;
nomem:
	rc = err_nomem(err);
done:
	for (k = 0; ij && k < c->n; k++) {
		free((char *)ij[k].name);
		free((char *)ij[k].command_line);
	}
	free(ij);
	free(text);
	free(wd);
	free(path);
	free(fname);
	free(dir);
	return rc;
}

int collect_plan(const struct collect_plan_opts *o, struct collect_plan_result *r,
		 struct ms_err *err)
{
	struct pctx c;
	struct fleet_handlers h;
	size_t i;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	memset(&c, 0, sizeof(c));
	memset(&h, 0, sizeof(h));
	c.o = o;
	c.r = r;
	if (!o->fleet_dir || !o->share || !*o->share)
		return err_set(err, MS_ERR_USAGE, "--fleet and --share are required");
	h.job = on_job;
	h.problem = on_problem;
	h.ctx = &c;
	if (fleet_scan(o->fleet_dir, &h, err) < 0)
		goto done;
	if (c.nomem) {
		err_nomem(err);
		goto done;
	}
	if (o->notify && add_notify(&c, err) < 0)
		goto done;
	rc = write_outputs(&c, o->out_dir ? o->out_dir : o->fleet_dir, err);
done:
	for (i = 0; i < c.n; i++) {
		free(c.m[i].name);
		free(c.m[i].batch_user);
		cJSON_Delete(c.m[i].files);
	}
	free(c.m);
	if (rc < 0)
		collect_plan_result_release(r);
	return rc;
}

void collect_plan_result_release(struct collect_plan_result *r)
{
	size_t i;

	for (i = 0; i < r->n_problems; i++)
		free(r->problems[i]);
	free(r->problems);
	free(r->manifest_dir);
	free(r->import_file);
	memset(r, 0, sizeof(*r));
}
