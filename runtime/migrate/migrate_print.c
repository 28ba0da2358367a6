/*
 * migrate_print.c - the output of plan (text with diffs, or one JSON
 * document) and the text and JSON helpers the other commands print with.
 */
#include "migrate/migrate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/analysis.h"
#include "base/escape.h"
#include "base/mem.h"
#include "ini/cmdline.h"

#define JOBS_SHOWN 10

/* The job list of an item, cut after JOBS_SHOWN entries for display.
 * Returns a malloc'd string (NULL when out of memory). */
char *mig_jobs_shown(const char *jobs)
{
	const char *p = jobs;
	size_t shown = 0, more = 0;
	char *s = NULL;

	while ((p = strstr(p, "), ")) != NULL) {
		p += 3;
		if (++shown == JOBS_SHOWN) {
			const char *q = p;
			more = 1;
			while ((q = strstr(q, "), ")) != NULL) {
				q += 3;
				more++;
			}
			if (asprintf(&s, "%.*s and %zu more", (int)(p - 2 - jobs), jobs,
				     more) < 0)
				s = NULL;
			return s;
		}
	}
	return strdup(jobs);
}

/* JSON for plan and status --format json: one document, written whole
 * once it is complete.  Strings by the one JSON escaper (escape_json:
 * RFC 8259, invalid UTF-8 as U+FFFD); NULL as "". */
void mig_jstr(struct buf *b, const char *s, struct ms_err *err)
{
	escape_json(b, s ? s : "", 0, err);
}

/* "key": "value" with a leading comma unless first */
void mig_jkv(struct buf *b, int first, const char *key, const char *val,
		struct ms_err *err)
{
	buf_appendf(b, err, "%s\"%s\": ", first ? "" : ", ", key);
	mig_jstr(b, val, err);
}

void mig_jout(const struct migrate_opts *o, struct buf *b, struct ms_err *err)
{
	if (err->code == MS_OK && o->out)
		o->out(b->data, b->len, o->out_ctx);
	buf_release(b);
}

/* The job's first error, or a generic reason. */
static const char *broken_reason(const struct job_verdict *v)
{
	size_t k;

	for (k = 0; k < v->n_findings; k++)
		if (v->findings[k].severity == SEV_ERROR)
			return v->findings[k].message;
	return "cannot be evaluated";
}

static void print_plan_json(const struct migrate_opts *o, int run,
			    const struct migrate_map *map, const struct plan *p,
			    struct migrate_result *res, struct ms_err *err)
{
	struct buf b;
	size_t i, n_ini = 0, n_exp = 0, n_jobs = 0, n_change = 0, n = 0;

	buf_init(&b, (size_t)1 << 30);
	buf_appendf(&b, err, "{\"command\": \"plan\", \"run\": %d, ", run);
	mig_jkv(&b, 1, "transport", migrate_transport_name(migrate_map_transport(map)), err);
	mig_jkv(&b, 0, "connector", migrate_map_connector(map), err);
	buf_appends(&b, ",\n \"items\": [", err);
	for (i = 0; i < p->n; i++) {
		const struct pitem *it = &p->items[i];

		if (it->state == MI_PLANNED) {
			if (strcmp(it->kind, "ini") == 0)
				n_ini++;
			else
				n_exp++;
		}
		buf_appends(&b, i ? ",\n  {" : "\n  {", err);
		mig_jkv(&b, 1, "kind", it->kind, err);
		mig_jkv(&b, 0, "path", it->path, err);
		mig_jkv(&b, 0, "state", migrate_item_state_name(it->state), err);
		mig_jkv(&b, 0, "reason", it->reason, err);
		mig_jkv(&b, 0, "jobs", it->jobs, err);
		buf_appends(&b, "}", err);
	}
	buf_appends(&b, p->n ? "\n ],\n \"jobs\": [" : "],\n \"jobs\": [", err);
	for (i = 0; i < p->s.n; i++) {
		const struct mjob *j = &p->s.jobs[i];
		int manual;
		char *a = NULL, *c = NULL;

		if (!j->ini_item || !j->action || j->action == MJ_SKIPPED)
			continue;
		n_jobs++;     /* migrated with its INI, listed when it needs more */
		if (j->action == MJ_NONE)
			continue;
		manual = j->action == MJ_MANUAL;
		if (manual)
			res->manual++;
		if (j->action == MJ_CHANGE || (j->flags & MIGRATE_CMD_CHANGED))
			n_change++;
		/* a manual job: what to do, no command line to paste */
		if (!manual) {
			a = cmdline_redact(j->raw_cmd);
			c = cmdline_redact(j->new_cmd);
		}
		buf_appends(&b, n++ ? ",\n  {" : "\n  {", err);
		mig_jkv(&b, 1, "schedule", j->v.schedule, err);
		mig_jkv(&b, 0, "job", j->v.job, err);
		mig_jkv(&b, 0, "machine", j->v.machine, err);
		mig_jkv(&b, 0, "action", migrate_job_action_name(j->action), err);
		mig_jkv(&b, 0, "old", a, err);
		mig_jkv(&b, 0, "new", c, err);
		mig_jkv(&b, 0, "note", j->note, err);
		buf_appends(&b, "}", err);
		mem_wipe_free(a);
		mem_wipe_free(c);
	}
	buf_appends(&b, n ? "\n ],\n \"broken\": [" : "],\n \"broken\": [", err);
	for (i = 0; i < p->s.n; i++) {
		const struct job_verdict *v = &p->s.jobs[i].v;

		if (v->status != STATUS_BROKEN)
			continue;
		buf_appends(&b, res->broken++ ? ",\n  {" : "\n  {", err);
		mig_jkv(&b, 1, "schedule", v->schedule, err);
		mig_jkv(&b, 0, "job", v->job, err);
		mig_jkv(&b, 0, "machine", v->machine, err);
		mig_jkv(&b, 0, "reason", broken_reason(v), err);
		buf_appends(&b, "}", err);
	}
	res->jobs_changed = n_change;
	buf_appendf(&b, err, "%s],\n \"summary\": {\"ini_files\": %zu, \"jobs\": %zu, "
		    "\"command_lines\": %zu, \"export_files\": %zu, \"skipped\": %zu, "
		    "\"manual\": %zu, \"broken\": %zu, \"only_manual_open\": %s}}\n",
		    res->broken ? "\n " : "", n_ini, n_jobs, n_change, n_exp, res->skipped,
		    res->manual, res->broken,
		    res->manual && !res->skipped && !res->broken ? "true" : "false");
	mig_jout(o, &b, err);
}

void mig_print_plan(const struct migrate_opts *o, int run,
		       const struct migrate_map *map, const struct plan *p,
		       struct migrate_result *res, struct ms_err *err)
{
	struct buf b;
	size_t i, n_ini = 0, n_exp = 0, n_jobs = 0, n_change = 0;

	if (o->json) {
		print_plan_json(o, run, map, p, res, err);
		return;
	}
	mig_outf(o, "plan: run %d, transport %s%s%s\n", run,
	     migrate_transport_name(migrate_map_transport(map)),
	     migrate_map_connector(map) ? ", connector " : "",
	     migrate_map_connector(map) ? migrate_map_connector(map) : "");
	for (i = 0; i < p->n; i++) {
		const struct pitem *it = &p->items[i];
		if (it->state != MI_PLANNED)
			continue;
		buf_init(&b, BUF_DEFAULT_CAP);
		if (migrate_diff(it->path, it->orig, it->orig_len, it->new, it->new_len,
				 strcmp(it->kind, "ini") == 0 ? MIGRATE_DIFF_INI :
				 MIGRATE_DIFF_EXPORT, &b, err) == 0 && b.data) {
			char *js = mig_jobs_shown(it->jobs);
			mig_outf(o, "\n# %s %s: %s\n", it->kind, it->path, js ? js : "");
			free(js);
			o->out ? o->out(b.data, b.len, o->out_ctx) : (void)0;
		}
		buf_release(&b);
		if (strcmp(it->kind, "ini") == 0)
			n_ini++;
		else
			n_exp++;
	}
	mig_outf(o, "\n");
	for (i = 0; i < p->s.n; i++) {
		const struct mjob *j = &p->s.jobs[i];
		if (!j->ini_item || !j->action || j->action == MJ_SKIPPED)
			continue;
		n_jobs++;
		/* a manual job's command line is not shown rewritten: with its
		 * -password:*** it could be pasted into the job as it is */
		if (j->action != MJ_CHANGE && (j->flags & MIGRATE_CMD_CHANGED))
			n_change++;   /* rewritten in its export, shown as manual */
		if (j->action == MJ_CHANGE) {
			char *a = cmdline_redact(j->raw_cmd), *c = cmdline_redact(j->new_cmd);
			n_change++;
			mig_outf(o, "job %s/%s (%s): command line\n  - %s\n  + %s\n",
			     j->v.schedule, j->v.job, j->v.machine, a ? a : "",
			     c ? c : "");
			mem_wipe_free(a);
			mem_wipe_free(c);
		}
		if (j->action == MJ_MANUAL) {
			res->manual++;
			mig_outf(o, "manual: %s/%s (%s): %s\n", j->v.schedule, j->v.job,
			     j->v.machine, j->note);
		}
	}
	for (i = 0; i < p->n; i++)
		if (p->items[i].state == MI_SKIPPED) {
			char *js = mig_jobs_shown(p->items[i].jobs);
			mig_outf(o, "skipped: %s %s (%s): %s\n", p->items[i].kind,
			     p->items[i].path, js ? js : "", p->items[i].reason);
			free(js);
		}
	/* broken jobs are left alone: say which, and why */
	for (i = 0; i < p->s.n; i++) {
		const struct job_verdict *v = &p->s.jobs[i].v;

		if (v->status != STATUS_BROKEN)
			continue;
		res->broken++;
		mig_outf(o, "broken, not touched: %s/%s (%s): %s\n", v->schedule, v->job,
		     v->machine, broken_reason(v));
	}
	res->jobs_changed = n_change;
	mig_outf(o, "\nsummary: %zu INI file%s to change, %zu job%s migrated "
	     "(%zu command line%s to change, %zu export file%s to rewrite), "
	     "%zu skipped, %zu for manual action, %zu broken job%s not touched\n",
	     n_ini, n_ini == 1 ? "" : "s", n_jobs, n_jobs == 1 ? "" : "s", n_change,
	     n_change == 1 ? "" : "s", n_exp, n_exp == 1 ? "" : "s", res->skipped,
	     res->manual, res->broken, res->broken == 1 ? "" : "s");
	if (res->manual && !res->skipped && !res->broken)
		mig_outf(o, "only manual actions are open: the plan is complete (exit 0); "
		     "do them by hand at cutover (changes.csv lists them)\n");
}
