/*
 * analysis.c - per-job verdicts (the checks are analysis_checks.c) and
 * the fleet-wide audit (kept on disk for a big fleet: analysis_spill.c).
 */
#include "audit/analysis_int.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <sqlite3.h>

#include "base/buf.h"
#include "base/fsutil.h"
#include "base/mem.h"
#include "base/sqldb.h"
#include "ini/ini.h"
#include "transport/mailbox/mailbox.h"
#include "ini/rules.h"
#include "auth/secret.h"

const char *analysis_status_name(enum job_status s)
{
	static const char *const names[STATUS_COUNT] = {
		"needs-migration", "at-risk", "migrated", "unaffected", "broken"
	};
	return (unsigned)s < STATUS_COUNT ? names[s] : "unknown";
}

int analysis_status_parse(const char *s)
{
	int i;

	for (i = 0; i < STATUS_COUNT; i++)
		if (s && strcasecmp(s, analysis_status_name((enum job_status)i)) == 0)
			return i;
	return -1;
}

const char *analysis_severity_name(enum finding_severity s)
{
	return s == SEV_ERROR ? "error" : s == SEV_WARNING ? "warning" : "info";
}

const char *analysis_auth_name(enum auth_kind a)
{
	switch (a) {
	case AUTHK_BASIC: return "basic";
	case AUTHK_MSAL_DELEGATED: return "msal-delegated";
	case AUTHK_OAUTH2: return "oauth2";
	default: return "unknown";
	}
}

const char *analysis_tls_name(enum tls_level t)
{
	switch (t) {
	case TLSL_SSL: return "SSL";
	case TLSL_SSL2: return "SSL2";
	case TLSL_TLS1: return "TLS1";
	case TLSL_TLS1_1: return "TLS1_1";
	case TLSL_TLS1_2: return "TLS1_2";
	case TLSL_TLS1_3: return "TLS1_3";
	case TLSL_NONE: return "none";
	default: return "default";
	}
}

int verdict_add(struct job_verdict *v, const char *code,
		enum finding_severity sev, struct ms_err *err,
		const char *fmt, ...)
{
	struct finding *nf;
	char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (!msg)
		return err_nomem(err);
	nf = realloc(v->findings, (v->n_findings + 1) * sizeof(*nf));
	if (!nf) {
		free(msg);
		return err_nomem(err);
	}
	v->findings = nf;
	nf[v->n_findings].code = code;
	nf[v->n_findings].severity = sev;
	nf[v->n_findings].message = msg;
	v->n_findings++;
	return 0;
}

/* Errors first, then warnings, then information; otherwise in the order
 * found (insertion sort: stable, and lists are short). */
void analysis_sort_findings(struct job_verdict *v)
{
	size_t i, j;

	for (i = 1; i < v->n_findings; i++) {
		struct finding f = v->findings[i];
		for (j = i; j > 0 && v->findings[j - 1].severity > f.severity; j--)
			v->findings[j] = v->findings[j - 1];
		v->findings[j] = f;
	}
}

static void findings_free(struct finding *f, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(f[i].message);
	free(f);
}

void job_verdict_release(struct job_verdict *v)
{
	if (!v)
		return;
	free(v->schedule);
	free(v->job);
	free(v->machine);
	free(v->source);
	free(v->command_line);
	free(v->ini);
	free(v->ini_file);
	free(v->ini_local);
	free(v->server);
	findings_free(v->findings, v->n_findings);
	memset(v, 0, sizeof(*v));
}


/* What the reader thread of an audit works out for a job before handing
 * it over (fleet_handlers.prepare): pure functions of the job only. */
struct job_prep {
	int connector;                  /* analysis_is_connector_job() */
	int redacted_ok;                /* redacted is cmdline_redact()'s result */
	char *redacted;                 /* owned */
};

static int job_eval(const struct analysis_opts *o, struct ini_cache *c,
		    const struct fleet_job *job, struct job_prep *prep,
		    struct job_verdict *v, struct ms_err *err);

int analysis_job(const struct analysis_opts *o, const struct fleet_job *job,
		 struct job_verdict *v, struct ms_err *err)
{
	return job_eval(o, NULL, job, NULL, v, err);
}

/* Long (about 130 lines): parse the command line, find and read the INI
 * file (cached), then analysis_config(); every early way out marks the
 * job broken with its finding, in one place. */
static int job_eval(const struct analysis_opts *o, struct ini_cache *c,
		    const struct fleet_job *job, struct job_prep *prep,
		    struct job_verdict *v, struct ms_err *err)
{
	struct ms_err lerr = MS_ERR_INIT;
	struct cmdline_job cj;
	struct connector_opts opts;
	struct ini_entry *ie = NULL;
	const struct fleet_path *fp;
	int have_opts = 0, have_cfg = 0, rc = -1;

	memset(v, 0, sizeof(*v));
	memset(&cj, 0, sizeof(cj));
	memset(&opts, 0, sizeof(opts));
	v->schedule = xstrdup(job->schedule ? job->schedule : "");
	v->job = xstrdup(job->name ? job->name : "");
	v->machine = xstrdup(job->machine ? job->machine : "");
	v->source = xstrdup(job->source ? job->source : "");
	v->source_line = job->line;
	if (prep && prep->redacted_ok) {
		v->command_line = prep->redacted;
		prep->redacted = NULL;
	} else {
		v->command_line = job->command_line ?
				  cmdline_redact(job->command_line) : NULL;
	}
	v->tls_verify = 1;
	if (!v->schedule || !v->job || !v->machine || !v->source ||
	    (job->command_line && !v->command_line))
		goto nomem;

	if (cmdline_job_parse(job->command_line, &cj, &lerr) < 0) {
		if (lerr.code == MS_ERR_NOMEM)
			goto nomem;
		if (verdict_add(v, "command-line-invalid", SEV_ERROR, err, "%s",
				lerr.msg) < 0)
			goto done;
		v->status = STATUS_BROKEN;
		rc = 0;
		goto done;
	}
	if (cj.exe < 0) {
		if (verdict_add(v, "not-a-connector-job", SEV_ERROR, err,
				"the command line does not run the connector") < 0)
			goto done;
		v->status = STATUS_BROKEN;
		rc = 0;
		goto done;
	}
	{
		/* options: argv[exe] plays argv[0] */
		int argc = cj.end - cj.exe;
		if (cmdline_parse_connector_ex(argc, cj.argv + cj.exe,
					       CMDLINE_ALLOW_PROPERTIES, &opts,
					       &lerr) < 0) {
			if (lerr.code == MS_ERR_NOMEM)
				goto nomem;
			if (verdict_add(v, "command-line-invalid", SEV_ERROR, err,
					"the connector would refuse this command line: %s",
					lerr.msg) < 0)
				goto done;
			v->status = STATUS_BROKEN;
			rc = 0;
			goto done;
		}
		have_opts = 1;
	}
	if (audit_ini_lookup(c, o, job->machine, opts.inifile, job->working_dir,
			     &ie, err) < 0)
		goto done;
	fp = &ie->fp;
	v->ini = xstrdup(fp->windows_path);
	if (fp->windows_path && !v->ini)
		goto nomem;
	switch (fp->where) {
	case FLEET_FOUND:
		v->ini_file = xstrdup(fp->rel);
		v->ini_local = xstrdup(fp->file);
		if (!v->ini_file || !v->ini_local)
			goto nomem;
		if (!ie->have_cfg &&
		    verdict_add(v, "ini-invalid", SEV_ERROR, err, "%s",
				ie->load_msg ? ie->load_msg : "") < 0)
			goto done;
		if (ie->cp1252 &&
		    verdict_add(v, "ini-encoding", SEV_ERROR, err,
				"%s is saved as Windows-1252 (ANSI): mailshift reads UTF-8 "
				"and UTF-16 only; mailshift-migrate converts it to UTF-8 "
				"with a byte-order mark", fp->rel) < 0)
			goto done;
		have_cfg = ie->have_cfg;
		break;
	case FLEET_AMBIGUOUS:
		if (verdict_add(v, "ini-path-ambiguous", SEV_ERROR, err,
				"INI path '%s' cannot be resolved unambiguously: %s",
				fp->windows_path, fp->detail ? fp->detail : "") < 0)
			goto done;
		break;
	case FLEET_UNRESOLVED:
		if (verdict_add(v, "unresolved-property", SEV_ERROR, err,
				"%s; the audit cannot tell which INI file the job uses",
				fp->detail ? fp->detail : "unexpanded reference") < 0)
			goto done;
		break;
	case FLEET_NOT_FOUND:
	case FLEET_UNSUPPORTED:
		if (verdict_add(v, "ini-missing", SEV_ERROR, err,
				"INI file '%s' %s: %s", fp->windows_path ? fp->windows_path : "",
				opts.inifile ? "(from -inifile:)" : "(the default)",
				fp->detail ? fp->detail : "not found") < 0)
			goto done;
		break;
	}
	if (analysis_config_memo(o, have_cfg ? &ie->cfg : NULL,
				 have_cfg ? &ie->rules : NULL,
				 have_opts ? &opts : NULL, job->machine, v, err) < 0)
		goto done;
	analysis_sort_findings(v);
	if (!have_cfg)
		v->status = STATUS_BROKEN;
	rc = 0;
	goto done;
nomem:
	rc = err_nomem(err);
done:
	cmdline_opts_release(&opts);
	cmdline_job_release(&cj);
	if (!c)
		audit_ini_entry_free(ie);
	if (rc < 0)
		job_verdict_release(v);
	return rc;
}

/* The fleet-wide audit. */


struct run {
	const struct analysis_opts *o;
	struct audit *a;
	struct ini_cache cache;
	size_t alloc_jobs, alloc_problems;
	/* the export being read and the connector jobs read from it so far:
	 * when it fails part way, those are marked export-incomplete */
	char *cur_source;
	size_t cur_jobs;
	/* the INI inventory, listed on a thread of its own that
	 * inventory_start() starts with the scan (listed after the scan when
	 * no thread could start) */
	int inv_listed, inv_rc;
	int inv_threaded;
	pthread_t inv_th;
	struct fleet_ini *inv;
	size_t n_inv;
	struct ms_err inv_err;
};

static void prep_free(void *p, void *ctx)
{
	struct job_prep *jp = p;

	(void)ctx;
	if (jp)
		free(jp->redacted);
	free(jp);
}

/* On the reader thread: the parts of a verdict that need no cache. */
static void *on_prepare(const struct fleet_job *job, void *ctx)
{
	struct job_prep *jp;

	(void)ctx;
	if (!(jp = calloc(1, sizeof(*jp))))
		return NULL;
	jp->connector = analysis_is_connector_job(job);
	if (jp->connector) {
		jp->redacted = job->command_line ? cmdline_redact(job->command_line) :
			       NULL;
		jp->redacted_ok = !job->command_line || jp->redacted;
	}
	return jp;
}

static int on_job_eval(struct run *r, const struct fleet_job *job,
		       struct job_prep *prep, struct ms_err *err)
{
	struct audit *a = r->a;

	if (!(prep ? prep->connector : analysis_is_connector_job(job))) {
		a->other_jobs++;
		return 0;
	}
	if (!r->cur_source || strcmp(r->cur_source, job->source) != 0) {
		free(r->cur_source);
		if (!(r->cur_source = strdup(job->source)))
			return err_nomem(err);
		r->cur_jobs = 0;
	}
	r->cur_jobs++;
	if (a->spill) {
		struct job_verdict v;
		int rc;

		if (job_eval(r->o, &r->cache, job, prep, &v, err) < 0)
			return -1;
		rc = audit_spill_add(a->spill, &v, err);
		if (rc == 1) {
			rc = 0;         /* one job, read from two exports */
		} else if (rc == 0) {
			a->counts[v.status]++;
			a->n_jobs++;
			if (analysis_needs_action(&v)) {
				a->n_action++;
				a->migrated_errors += v.status == STATUS_MIGRATED;
			}
		}
		job_verdict_release(&v);
		return rc;
	}
	if (MEM_GROW(a->jobs, r->alloc_jobs, a->n_jobs + 1, err))
		return -1;
	if (job_eval(r->o, &r->cache, job, prep, &a->jobs[a->n_jobs], err) < 0)
		return -1;
	a->n_jobs++;
	return 0;
}

static int on_job(const struct fleet_job *job, void *ctx, struct ms_err *err)
{
	int rc = on_job_eval(ctx, job, job->prepared, err);

	prep_free(job->prepared, NULL);
	return rc;
}

/* Jobs the reader could tell are no connector jobs without decoding
 * them (fleet_handlers.other). */
static int on_other(size_t n, void *ctx, struct ms_err *err)
{
	struct run *r = ctx;

	(void)err;
	r->a->other_jobs += n;
	return 0;
}

/* The INI inventory, which needs nothing the scan makes. */
static void *list_inventory(void *ctx)
{
	struct run *r = ctx;

	r->inv_rc = fleet_list_inis(r->o->fleet_dir, &r->inv, &r->n_inv, &r->inv_err);
	r->inv_listed = 1;
	return NULL;
}

/* The inventory on a thread of its own, started with the scan (~70 ms
 * of system calls for 10,000 INI files in 5,000 folders).  Started once
 * the exports were read, it ended ~80 ms after the reader while the
 * evaluating thread, its last jobs done, waited for it with a core idle;
 * from the start it runs in the gaps the two scan threads leave.  No
 * thread: listed when take_inventory() needs it. */
static void inventory_start(struct run *r)
{
	r->inv_threaded = pthread_create(&r->inv_th, NULL, list_inventory, r) == 0;
}

/* Wait for the inventory thread, if any. */
static void inventory_join(struct run *r)
{
	if (r->inv_threaded) {
		pthread_join(r->inv_th, NULL);
		r->inv_threaded = 0;
	}
}

/* The inventory inventory_start() listed (listed now when it did not), taken
 * over: -1 when it could not be listed. */
static int take_inventory(struct run *r, struct fleet_ini **fi, size_t *n,
			  struct ms_err *err)
{
	inventory_join(r);
	if (!r->inv_listed)
		list_inventory(r);
	*fi = r->inv;
	*n = r->n_inv;
	r->inv = NULL;
	r->n_inv = 0;
	if (r->inv_rc < 0)
		return err_set(err, r->inv_err.code, "%s", r->inv_err.msg);
	return 0;
}

static void on_file(const char *file, size_t files, void *ctx)
{
	struct run *r = ctx;

	if (r->o->progress)
		r->o->progress(files, r->a->n_jobs + r->a->other_jobs,
			       r->o->progress_ctx);
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

/* Whether file is one of a job's sources: "F", "F:LINE", or one of the
 * ", "-separated list of a job merged from several exports
 * (add_source(), the spill's merge). */
static int names_source(const char *sources, const char *file)
{
	size_t n = strlen(file);
	const char *p;

	for (p = sources; n && (p = strstr(p, file)); p++) {
		const char *e = p + n;

		if (p != sources && (p - sources < 2 || p[-2] != ',' || p[-1] != ' '))
			continue;
		if (*e == ':' && e[1] >= '0' && e[1] <= '9')
			for (e++; *e >= '0' && *e <= '9'; e++)
				;
		if (!*e || (e[0] == ',' && e[1] == ' '))
			return 1;
	}
	return 0;
}

/* The problem of one of a job's exports (a merged job's too), or NULL:
 * the one rule by which the in-memory and the spilled audit mark a job
 * export-incomplete. */
const struct audit_problem *audit_problem_of(const struct audit *a,
					      const char *source)
{
	size_t i;

	for (i = 0; source && i < a->n_problems; i++)
		if (names_source(source, a->problems[i].file))
			return &a->problems[i];
	return NULL;
}

/* The export-incomplete finding of a job read from an export that then
 * failed.  Out of memory it is left out (the report's header still says
 * the audit is incomplete). */
void audit_mark_incomplete(struct job_verdict *v, const struct audit_problem *p,
			    char **owned)
{
	char *msg = fmt("read from %s, which could not be read to its end (%s%.0d%s%s): "
			"the jobs after this one in it are missing from the report",
			p->file, p->line ? "line " : "", p->line, p->line ? ": " : "",
			p->message);
	struct finding *nf;

	if (!msg || !(nf = realloc(v->findings, (v->n_findings + 1) * sizeof(*nf)))) {
		free(msg);
		return;
	}
	v->findings = nf;
	nf[v->n_findings].code = "export-incomplete";
	nf[v->n_findings].severity = SEV_WARNING;
	nf[v->n_findings].message = msg;
	v->n_findings++;
	if (owned)
		*owned = msg;
}

static void on_problem(const char *file, int line, const char *msg, void *ctx)
{
	struct run *r = ctx;
	struct audit *a = r->a;
	struct audit_problem *p;

	if (MEM_GROW(a->problems, r->alloc_problems, a->n_problems + 1, NULL))
		return;
	p = &a->problems[a->n_problems];
	p->file = strdup(file);
	p->line = line;
	p->message = strdup(msg);
	if (!p->file || !p->message) {
		free(p->file);
		free(p->message);
		return;
	}
	a->n_problems++;
	/* every problem of an export ends its reading: the jobs read from it
	 * so far are kept, counted here, and marked once they are merged
	 * (mark_incomplete(); spilled ones when they are read back,
	 * audit_spill_each()) */
	if (r->cur_source && strcmp(r->cur_source, file) == 0) {
		a->incomplete_jobs += r->cur_jobs;
		r->cur_jobs = 0;
	}
}

/* The in-memory verdicts marked as the spilled ones are when read back:
 * after the merge and the shared-INI findings, each job one of whose
 * exports could not be read to its end (a job read from it and from
 * another is one job, marked). */
static void mark_incomplete(struct audit *a)
{
	const struct audit_problem *p;
	size_t i;

	for (i = 0; a->n_problems && i < a->n_jobs; i++)
		if ((p = audit_problem_of(a, a->jobs[i].source)))
			audit_mark_incomplete(&a->jobs[i], p, NULL);
}

static int cmp_verdict(const void *x, const void *y)
{
	const struct job_verdict *a = x, *b = y;
	int c;

	if ((c = strcasecmp(a->machine, b->machine)) ||
	    (c = strcasecmp(a->schedule, b->schedule)) ||
	    (c = strcasecmp(a->job, b->job)) ||
	    (c = strcmp(a->machine, b->machine)) ||
	    (c = strcmp(a->schedule, b->schedule)) ||
	    (c = strcmp(a->job, b->job)) ||
	    (c = strcmp(a->source, b->source)))
		return c;
	return (a->source_line > b->source_line) - (a->source_line < b->source_line);
}

int audit_job_source(const struct job_verdict *v, char **out,
		     struct ms_err *err)
{
	int n = v->source_line ? asprintf(out, "%s:%d", v->source, v->source_line) :
				 asprintf(out, "%s", v->source);

	if (n < 0) {
		*out = NULL;
		return err_nomem(err);
	}
	return 0;
}

/* Windows machine names ignore case; schedule and job names do not. */
static int same_job(const struct job_verdict *a, const struct job_verdict *b)
{
	return strcasecmp(a->machine, b->machine) == 0 &&
	       strcmp(a->schedule, b->schedule) == 0 && strcmp(a->job, b->job) == 0;
}

static int nocase_triple_eq(const struct job_verdict *a, const struct job_verdict *b)
{
	return strcasecmp(a->machine, b->machine) == 0 &&
	       strcasecmp(a->schedule, b->schedule) == 0 &&
	       strcasecmp(a->job, b->job) == 0;
}

/* keep's sources, then v's: "jobs/a.json:12, jobs/b.xml:40". */
static int add_source(struct job_verdict *keep, const struct job_verdict *v,
		      struct ms_err *err)
{
	char *s1 = NULL, *s2 = NULL, *both = NULL;
	int rc = 0;

	if ((keep->source_line ? audit_job_source(keep, &s1, err) :
	     !(s1 = strdup(keep->source)) ? err_nomem(err) : 0) < 0 ||
	    audit_job_source(v, &s2, err) < 0 ||
	    asprintf(&both, "%s, %s", s1, s2) < 0) {
		both = NULL;
		rc = err->code ? -1 : err_nomem(err);
	} else {
		free(keep->source);
		keep->source = both;
		keep->source_line = 0;
	}
	free(s1);
	free(s2);
	return rc;
}

/* A job that appears in two exports (the same schedule exported twice)
 * is one job: the first in report order is kept, with every source
 * listed.  Jobs are sorted with machine, schedule and job name compared
 * without case first, so the same job sits in one run of such names. */
static int merge_duplicates(struct audit *a, struct ms_err *err)
{
	size_t i, j, k = 0, run = 0;

	for (i = 0; i < a->n_jobs; i++) {
		struct job_verdict *v = &a->jobs[i];

		if (k && !nocase_triple_eq(&a->jobs[k - 1], v))
			run = k;
		for (j = run; j < k && !same_job(&a->jobs[j], v); j++)
			;
		if (j < k) {
			if (add_source(&a->jobs[j], v, err) < 0)
				return -1;
			job_verdict_release(v);
			continue;
		}
		if (k != i)
			a->jobs[k] = *v;
		k++;
	}
	a->n_jobs = k;
	return 0;
}

static int cmp_strp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* How many entries of the sorted array v equal key. */
static size_t count_sorted(char **v, size_t n, const char *key)
{
	size_t lo = 0, hi = n, first, c = 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(v[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (first = lo; first < n && strcmp(v[first], key) == 0; first++)
		c++;
	return c;
}

int audit_add_finding(struct finding **f, size_t *n, const char *code,
		       enum finding_severity sev, char *msg, struct ms_err *err)
{
	struct finding *nf;

	if (!msg)
		return err_nomem(err);
	if (!(nf = realloc(*f, (*n + 1) * sizeof(*nf)))) {
		free(msg);
		return err_nomem(err);
	}
	*f = nf;
	nf[*n].code = code;
	nf[*n].severity = sev;
	nf[*n].message = msg;
	(*n)++;
	return 0;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, f);
	if (vasprintf(&s, f, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

int audit_jobs_each(const struct audit *a, unsigned mask,
		    int (*fn)(const struct job_verdict *v, void *ctx,
			      struct ms_err *err),
		    void *ctx, struct ms_err *err)
{
	size_t i;

	if (a->spill)
		return audit_spill_each(a, mask, fn, ctx, err);
	for (i = 0; i < a->n_jobs; i++)
		if ((mask & (1u << a->jobs[i].status)) &&
		    fn(&a->jobs[i], ctx, err) < 0)
			return -1;
	return 0;
}

/* The INI inventory: fi (n entries, from fleet_list_inis()) is taken
 * over. */
static int audit_inis(struct audit *a, struct fleet_ini *fi, size_t n,
		      struct ms_err *err)
{
	char **used = NULL;
	size_t i, nused = 0;
	int rc = 0;

	/* the INI files jobs use, sorted for counting */
	if (!(used = malloc((a->spill ? 0 : a->n_jobs + 1) * sizeof(*used) + 1))) {
		fleet_inis_free(fi, n);
		return err_nomem(err);
	}
	for (i = 0; !a->spill && i < a->n_jobs; i++)
		if (a->jobs[i].ini_file)
			used[nused++] = a->jobs[i].ini_file;
	if (nused)
		qsort(used, nused, sizeof(*used), cmp_strp);
	if (n && !(a->inis = calloc(n, sizeof(*a->inis)))) {
		free(used);
		fleet_inis_free(fi, n);
		return err_nomem(err);
	}
	for (i = 0; i < n && rc == 0; i++) {
		struct audit_ini *ai = &a->inis[i];

		ai->machine = fi[i].machine;
		ai->windows_path = fi[i].windows_path;
		ai->file = fi[i].rel;
		fi[i].machine = fi[i].windows_path = fi[i].rel = NULL;
		a->n_inis++;
		if (a->spill)
			ai->n_jobs = audit_spill_ini_jobs(a->spill, ai->file);
		else
			ai->n_jobs = count_sorted(used, nused, ai->file);
		if (ai->n_jobs == 0) {
			a->n_orphans++;
			rc = audit_add_finding(&ai->findings, &ai->n_findings, "orphan-ini",
					 SEV_INFO, fmt("no job in the exports uses %s on %s: "
						       "stale, or its job was not exported",
						       ai->windows_path, ai->machine), err);
		}
	}
	free(used);
	fleet_inis_free(fi, n);
	return rc;
}

static int audit_notify(const struct analysis_opts *o, struct run *r,
			struct ms_err *err)
{
	struct fleet_handlers h = { .problem = on_problem, .ctx = r };
	struct fleet_notify_slot *s = NULL;
	struct audit *a = r->a;
	size_t n = 0, i;
	int rc = 0;

	if (fleet_read_notify(o->fleet_dir, &h, &s, &n, err) < 0)
		return -1;
	if (n && !(a->notify = calloc(n, sizeof(*a->notify)))) {
		fleet_notify_free(s, n);
		return err_nomem(err);
	}
	for (i = 0; i < n && rc == 0; i++) {
		struct audit_notify *an = &a->notify[i];
		int oauth = s[i].app_id && s[i].has_secret && s[i].tenant_id;

		an->auth = oauth ? "oauth2" : s[i].user && s[i].has_password ? "basic" :
			   "none";
		an->source = s[i].source;
		an->server = s[i].server;
		an->user = s[i].user;
		s[i].source = s[i].server = s[i].user = NULL;
		an->slot = s[i].slot;
		an->port = s[i].port;
		an->microsoft = profile_is_microsoft_host(an->server);
		a->n_notify++;
		if (an->microsoft && strcmp(an->auth, "basic") == 0) {
			a->n_notify_basic++;
			rc = audit_add_finding(&an->findings, &an->n_findings, "notify-basic-smtp",
					 SEV_ERROR,
					 fmt("notification slot %d sends through %s with basic SMTP "
					     "AUTH, which Exchange Online turns off by default from "
					     "the end of December 2026: set SMTPAPPID%d, "
					     "SMTPSECRET%d and SMTPTENANTID%d (OpCon 25.1+)",
					     an->slot, an->server, an->slot, an->slot, an->slot),
					 err);
		}
	}
	fleet_notify_free(s, n);
	return rc;
}

/* The work that waits for no verdict, done on a second thread while the
 * spill builds its index: drop the INI cache of the scan.  The INI files
 * of the fleet are listed on another (inventory_start()). */
static void *cache_free_run(void *arg)
{
	audit_ini_cache_free(arg);
	return NULL;
}

static int spill_finish_inis(struct run *r, struct ms_err *err)
{
	struct fleet_ini *fi = NULL;
	size_t n = 0;
	pthread_t th;
	int threaded, rc;

	threaded = pthread_create(&th, NULL, cache_free_run, &r->cache) == 0;
	if (!threaded)
		cache_free_run(&r->cache);
	rc = audit_spill_finish(r->a, err);
	if (threaded)
		pthread_join(th, NULL);
	if (rc < 0 || take_inventory(r, &fi, &n, err) < 0) {
		fleet_inis_free(fi, n);
		return -1;
	}
	return audit_inis(r->a, fi, n, err);
}

int analysis_needs_action(const struct job_verdict *v)
{
	size_t i;

	if (v->status == STATUS_NEEDS_MIGRATION || v->status == STATUS_AT_RISK ||
	    v->status == STATUS_BROKEN)
		return 1;
	if (v->status != STATUS_MIGRATED)
		return 0;
	for (i = 0; i < v->n_findings; i++)
		if (v->findings[i].severity == SEV_ERROR ||
		    strcmp(v->findings[i].code, "legacy-secret") == 0)
			return 1;
	return 0;
}

int audit_incomplete(const struct audit *a)
{
	return a->n_problems > 0;
}

int audit_read_nothing(const struct audit *a)
{
	return a->n_jobs == 0 && a->other_jobs == 0;
}

/* The files under jobs/ a scan leaves unread, as a->ignored. */
static int audit_ignored(const struct analysis_opts *o, struct audit *a,
			 struct ms_err *err)
{
	char **files;
	size_t n, i;

	if (fleet_list_ignored(o->fleet_dir, &files, &n, err) < 0)
		return -1;
	if (n && !(a->ignored = calloc(n, sizeof(*a->ignored)))) {
		for (i = 0; i < n; i++)
			free(files[i]);
		free(files);
		return err_nomem(err);
	}
	for (i = 0; i < n; i++) {
		a->ignored[i].file = files[i];
		a->ignored[i].message = strdup("ignored: not named as a job export "
					       "(only *.json and *.xml files are read)");
		a->n_ignored++;
		if (!a->ignored[i].message) {
			for (i++; i < n; i++)
				free(files[i]);
			free(files);
			return err_nomem(err);
		}
	}
	free(files);
	return 0;
}

int audit_run(const struct analysis_opts *o, struct audit *a,
	      struct ms_err *err)
{
	struct run r;
	struct fleet_handlers h;
	struct fleet_ini *fi = NULL;
	size_t i, nfi = 0;

	memset(a, 0, sizeof(*a));
	memset(&r, 0, sizeof(r));
	r.o = o;
	r.a = a;
	memset(&h, 0, sizeof(h));
	h.job = on_job;
	h.problem = on_problem;
	h.file_done = on_file;
	h.prepare = on_prepare;
	h.release = prep_free;
	h.other = on_other;
	h.ctx = &r;
	if (o->spill && audit_spill_open(&a->spill, err) < 0)
		goto fail;
	inventory_start(&r);
	if (fleet_scan_async(o->fleet_dir, &h, err) < 0 || audit_ignored(o, a, err) < 0)
		goto fail;
	free(r.cur_source);
	r.cur_source = NULL;
	if (a->spill) {
		if (spill_finish_inis(&r, err) < 0 ||
		    audit_notify(o, &r, err) < 0)
			goto fail;
		return 0;
	}
	audit_ini_cache_free(&r.cache);
	if (a->n_jobs)
		qsort(a->jobs, a->n_jobs, sizeof(*a->jobs), cmp_verdict);
	if (merge_duplicates(a, err) < 0 || audit_shared_inis(a, err) < 0)
		goto fail;
	mark_incomplete(a);
	if (take_inventory(&r, &fi, &nfi, err) < 0 ||
	    audit_inis(a, fi, nfi, err) < 0 || audit_notify(o, &r, err) < 0)
		goto fail;
	for (i = 0; i < a->n_jobs; i++) {
		a->counts[a->jobs[i].status]++;
		if (analysis_needs_action(&a->jobs[i])) {
			a->n_action++;
			a->migrated_errors += a->jobs[i].status == STATUS_MIGRATED;
		}
		if (i == 0 || strcasecmp(a->jobs[i].machine, a->jobs[i - 1].machine))
			a->n_machines++;
	}
	return 0;
fail:
	inventory_join(&r);
	free(r.cur_source);
	audit_ini_cache_free(&r.cache);
	fleet_inis_free(r.inv, r.n_inv);
	audit_release(a);
	return -1;
}

void audit_release(struct audit *a)
{
	size_t i;

	if (!a)
		return;
	for (i = 0; a->jobs && i < a->n_jobs; i++)
		job_verdict_release(&a->jobs[i]);
	free(a->jobs);
	audit_spill_free(a->spill);
	for (i = 0; i < a->n_inis; i++) {
		free(a->inis[i].machine);
		free(a->inis[i].windows_path);
		free(a->inis[i].file);
		findings_free(a->inis[i].findings, a->inis[i].n_findings);
	}
	free(a->inis);
	for (i = 0; i < a->n_notify; i++) {
		free(a->notify[i].source);
		free(a->notify[i].server);
		free(a->notify[i].user);
		findings_free(a->notify[i].findings, a->notify[i].n_findings);
	}
	free(a->notify);
	for (i = 0; i < a->n_problems; i++) {
		free(a->problems[i].file);
		free(a->problems[i].message);
	}
	free(a->problems);
	for (i = 0; i < a->n_ignored; i++) {
		free(a->ignored[i].file);
		free(a->ignored[i].message);
	}
	free(a->ignored);
	memset(a, 0, sizeof(*a));
}
