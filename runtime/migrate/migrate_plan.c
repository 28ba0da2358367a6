/*
 * migrate_plan.c - plan: the fleet scan and the plan (which INI files,
 * exports and job command lines change, and into what); its output is
 * migrate_print.c's.
 */
#include "migrate/migrate_int.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "audit/analysis.h"
#include "audit/fleet.h"
#include "base/digest.h"
#include "base/fsutil.h"
#include "base/mem.h"
#include "base/platform.h"
#include "ini/cmdline.h"
#include "ini/ini.h"
#include "ini/rules.h"

void mig_outf(const struct migrate_opts *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void mig_outf(const struct migrate_opts *o, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	if (!o->out)
		return;
	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n >= 0) {
		o->out(s, (size_t)n, o->out_ctx);
		free(s);
	}
}

/* Called before the file is read: a change after this stat changes the
 * identity, one before it is in what is read. */
char *mig_seen(const char *path, mode_t *mode)
{
	char buf[MIG_SEEN_MAX];
	struct stat st;
	time_t now = time(NULL);

	if (mode)
		*mode = 0;
	if (stat(path, &st) < 0)
		return NULL;
	if (mode)
		*mode = st.st_mode & 07777;
	if (!S_ISREG(st.st_mode) ||
	    st.st_mtime > now - MIG_SEEN_SETTLED || st.st_ctime > now - MIG_SEEN_SETTLED ||
	    platform_file_id(&st, buf, sizeof(buf)) < 0)
		return NULL;
	return strdup(buf);
}

/* The strings of a job copied from the scan (fleet_job's are the
 * scan's until the handler returns). */
static void fjob_release(struct fleet_job *j)
{
	free((char *)j->source);
	free((char *)j->schedule);
	free((char *)j->name);
	free((char *)j->machine);
	free((char *)j->job_type);
	mem_wipe_free((char *)j->command_line);
	free((char *)j->working_dir);
	free((char *)j->batch_user);
	memset(j, 0, sizeof(*j));
}

static char *dup_or_null(const char *s, int *bad)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		*bad = 1;
	return d;
}

static void mjobs_free(struct mjob *j, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		fjob_release(&j[i].job);
		job_verdict_release(&j[i].v);
		mem_wipe_free(j[i].raw_cmd);
		mem_wipe_free(j[i].user_opt);
		mem_wipe_free(j[i].new_cmd);
		free(j[i].note);
	}
	free(j);
}

/* The connector jobs are evaluated (the INI file found, read and judged:
 * on a cold fleet one small random read per INI file, most of the plan's
 * work) while the scan goes on: the scan's reader thread reads the
 * exports, the caller's thread copies each connector job into a block
 * that does not move (on_job), and WORKERS threads evaluate them as
 * they come, so that the reads of the INI files overlap those of the
 * exports instead of following them. */
#define EVAL_BLOCK 1024

struct evalq {
	const struct analysis_opts *ao;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct mjob **blocks;     /* grown by on_job only, under mu */
	size_t n_blocks, alloc_blocks;
	size_t n;                 /* jobs copied (under mu) */
	size_t next;              /* the next one to evaluate (under mu) */
	int closed;               /* no more jobs come (under mu) */
};

static struct mjob *evalq_at(const struct evalq *q, size_t i)
{
	return &q->blocks[i / EVAL_BLOCK][i % EVAL_BLOCK];
}

static int on_job(const struct fleet_job *job, void *ctx, struct ms_err *err)
{
	struct evalq *q = ctx;
	struct mjob *m;
	int bad = 0;

	if (!analysis_is_connector_job(job))
		return 0;
	if (q->n % EVAL_BLOCK == 0) {
		struct mjob *blk = calloc(EVAL_BLOCK, sizeof(*blk));
		int rc = 0;

		if (!blk)
			return err_nomem(err);
		pthread_mutex_lock(&q->mu);
		if (MEM_GROW(q->blocks, q->alloc_blocks, q->n_blocks + 1, err))
			rc = -1;
		else
			q->blocks[q->n_blocks++] = blk;
		pthread_mutex_unlock(&q->mu);
		if (rc < 0) {
			free(blk);
			return -1;
		}
	}
	/* not seen by the workers before q->n counts it */
	m = evalq_at(q, q->n);
	m->job.source = dup_or_null(job->source, &bad);
	m->job.line = job->line;
	m->job.schedule = dup_or_null(job->schedule, &bad);
	m->job.name = dup_or_null(job->name, &bad);
	m->job.machine = dup_or_null(job->machine, &bad);
	m->job.job_type = dup_or_null(job->job_type, &bad);
	m->job.command_line = dup_or_null(job->command_line, &bad);
	m->job.working_dir = dup_or_null(job->working_dir, &bad);
	m->job.batch_user = dup_or_null(job->batch_user, &bad);
	if (bad) {
		/* never handed to a worker: the scan stops */
		fjob_release(&m->job);
		return err_nomem(err);
	}
	pthread_mutex_lock(&q->mu);
	q->n++;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

/* Non-connector jobs are not decoded (fleet_handlers.other). */
static int on_other(size_t n, void *ctx, struct ms_err *err)
{
	(void)n;
	(void)ctx;
	(void)err;
	return 0;
}

/* One job evaluated, on a worker thread: touches only its own mjob. */
static void eval_job(const struct analysis_opts *ao, struct mjob *m)
{
	const struct fleet_job *job = &m->job;
	struct ms_err *err = &m->eval_err;

	m->eval_rc = -1;
	if (analysis_job(ao, job, &m->v, err) < 0)
		return;
	/* exports spell one machine "winapp01" here and "WINAPP01" there:
	 * Windows names are case-insensitive, so one case, everywhere */
	for (char *c = m->v.machine; c && *c; c++)
		*c = (char)toupper((unsigned char)*c);
	if (!(m->raw_cmd = strdup(job->command_line))) {
		err_nomem(err);
		return;
	}
	{
		struct ms_err lerr = MS_ERR_INIT;
		struct cmdline_job cj;
		struct connector_opts co;

		memset(&co, 0, sizeof(co));
		if (cmdline_job_parse(job->command_line, &cj, &lerr) == 0) {
			if (cj.exe >= 0 &&
			    cmdline_parse_connector_ex(cj.end - cj.exe, cj.argv + cj.exe,
						       CMDLINE_ALLOW_PROPERTIES, &co,
						       &lerr) == 0 && co.user &&
			    !(m->user_opt = strdup(co.user))) {
				cmdline_opts_release(&co);
				cmdline_job_release(&cj);
				err_nomem(err);
				return;
			}
			cmdline_opts_release(&co);
			cmdline_job_release(&cj);
		}
	}
	m->eval_rc = 0;
}

/* Each worker compiles the masks its INI files share once (ao.masks,
 * its own: a memo is one thread's). */
static void *eval_main(void *arg)
{
	struct evalq *q = arg;
	struct analysis_opts ao = *q->ao;

	ao.masks = rules_masks_new();
	for (;;) {
		struct mjob *m;

		pthread_mutex_lock(&q->mu);
		while (q->next == q->n && !q->closed)
			pthread_cond_wait(&q->cv, &q->mu);
		if (q->next == q->n) {
			pthread_mutex_unlock(&q->mu);
			break;
		}
		m = evalq_at(q, q->next++);
		pthread_mutex_unlock(&q->mu);
		eval_job(&ao, m);
	}
	rules_masks_free(ao.masks);
	return NULL;
}

/* The jobs no worker took (none could be started), several at once. */
static void eval_left(void *ctx, size_t i)
{
	struct evalq *q = ctx;

	eval_job(q->ao, evalq_at(q, q->next + i));
}

static int cmp_mjob(const void *x, const void *y)
{
	const struct job_verdict *a = &((const struct mjob *)x)->v;
	const struct job_verdict *b = &((const struct mjob *)y)->v;
	int c;

	if ((c = strcasecmp(a->machine, b->machine)) ||
	    (c = strcasecmp(a->schedule, b->schedule)) ||
	    (c = strcasecmp(a->job, b->job)) || (c = strcmp(a->source, b->source)))
		return c;
	return (a->source_line > b->source_line) - (a->source_line < b->source_line);
}

static int scan_fleet(const struct migrate_opts *o, struct scan *s,
		      struct ms_err *err)
{
	struct analysis_opts ao;
	struct fleet_handlers h;
	struct evalq q;
	pthread_t th[WORKERS];
	size_t i, started = 0;
	int rc;

	memset(&ao, 0, sizeof(ao));
	ao.fleet_dir = o->fleet_dir;
	ao.now = o->now;
	memset(s, 0, sizeof(*s));
	memset(&q, 0, sizeof(q));
	q.ao = &ao;
	pthread_mutex_init(&q.mu, NULL);
	pthread_cond_init(&q.cv, NULL);
	memset(&h, 0, sizeof(h));
	h.job = on_job;
	h.other = on_other;
	h.problem = NULL;
	h.ctx = &q;
	for (i = 0; i < WORKERS; i++)
		if (pthread_create(&th[started], NULL, eval_main, &q) == 0)
			started++;
	rc = fleet_scan_async(o->fleet_dir, &h, err);
	pthread_mutex_lock(&q.mu);
	q.closed = 1;
	pthread_cond_broadcast(&q.cv);
	pthread_mutex_unlock(&q.mu);
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (rc == 0 && q.next < q.n)
		mig_pool_run(q.n - q.next, eval_left, &q);
	pthread_cond_destroy(&q.cv);
	pthread_mutex_destroy(&q.mu);
	/* one array, to be sorted */
	if (q.n && !(s->jobs = malloc(q.n * sizeof(*s->jobs))) && rc == 0)
		rc = err_nomem(err);
	for (i = 0; i < q.n_blocks; i++) {
		size_t k = q.n - i * EVAL_BLOCK < EVAL_BLOCK ? q.n - i * EVAL_BLOCK : EVAL_BLOCK;

		if (s->jobs) {
			memcpy(s->jobs + i * EVAL_BLOCK, q.blocks[i], k * sizeof(*s->jobs));
			free(q.blocks[i]);
		} else {
			mjobs_free(q.blocks[i], k);
		}
	}
	free(q.blocks);
	s->n = s->alloc = s->jobs ? q.n : 0;
	for (i = 0; rc == 0 && i < s->n; i++) {
		if (s->jobs[i].eval_rc < 0) {
			*err = s->jobs[i].eval_err;
			rc = -1;
			break;
		}
		fjob_release(&s->jobs[i].job);
	}
	if (rc < 0) {
		mjobs_free(s->jobs, s->n);
		memset(s, 0, sizeof(*s));
		return -1;
	}
	if (s->n)
		qsort(s->jobs, s->n, sizeof(*s->jobs), cmp_mjob);
	return 0;
}

void mig_plan_free(struct plan *p)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		struct pitem *it = &p->items[i];
		free(it->path);
		free(it->machine);
		free(it->jobs);
		free(it->reason);
		mig_wipe_bytes(it->orig, it->orig_len);
		mig_wipe_bytes(it->new, it->new_len);
		free(it->seal);
		free(it->seen);
		mig_wipe_bytes(it->edit, it->edit_len);
	}
	free(p->items);
	mjobs_free(p->s.jobs, p->s.n);
	memset(p, 0, sizeof(*p));
}

static struct pitem *plan_add(struct plan *p, struct ms_err *err)
{
	if (MEM_GROW(p->items, p->alloc, p->n + 1, err))
		return NULL;
	memset(&p->items[p->n], 0, sizeof(p->items[0]));
	return &p->items[p->n++];
}

static int needs_ini_change(const struct mjob *j)
{
	return j->v.ini_file && (j->v.status == STATUS_NEEDS_MIGRATION ||
				 j->v.status == STATUS_AT_RISK);
}

/* Jobs indexed by a key (INI file, export source), then by position: the
 * jobs of one file are one run of the sorted array, in the order of
 * p->s.jobs, so planning never scans every job for every file. */
struct jref {
	const char *key;
	size_t i;
};

static int cmp_jref(const void *x, const void *y)
{
	const struct jref *a = x, *b = y;
	int c = strcmp(a->key, b->key);

	return c ? c : (a->i > b->i) - (a->i < b->i);
}

static int skip(struct pitem *it, struct ms_err *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int skip(struct pitem *it, struct ms_err *err, const char *fmt, ...)
{
	va_list ap;
	int n;

	it->state = MI_SKIPPED;
	free(it->reason);
	va_start(ap, fmt);
	n = vasprintf(&it->reason, fmt, ap);
	va_end(ap);
	if (n < 0) {
		it->reason = NULL;
		return err_nomem(err);
	}
	return 0;
}

static int job_list(struct plan *p, const struct jref *g, size_t ng, int seq,
		    struct pitem *it, struct ms_err *err)
{
	struct buf b;
	size_t i;

	buf_init(&b, BUF_DEFAULT_CAP);
	for (i = 0; i < ng; i++) {
		struct mjob *j = &p->s.jobs[g[i].i];
		j->ini_item = seq;
		if (!it->machine && !(it->machine = strdup(j->v.machine)))
			goto fail;
		if (buf_appendf(&b, err, "%s%s/%s (%s)", b.len ? ", " : "",
				j->v.schedule, j->v.job, j->v.machine) < 0)
			goto fail;
	}
	if (!(it->jobs = buf_detach(&b, NULL)) && !(it->jobs = strdup("")))
		return err_nomem(err);
	return 0;
fail:
	buf_release(&b);
	return err->code ? -1 : err_nomem(err);
}

/* The settings an INI file gets from its tenant (plan_ini, mig_remake). */
static void target_fill(const struct migrate_map *map,
			const struct migrate_tenant_view *tv,
			const char *written_mailbox, struct migrate_target *t)
{
	memset(t, 0, sizeof(*t));
	t->transport = migrate_map_transport(map);
	t->authority = tv->authority;
	t->tenant_id = tv->tenant_id;
	t->client_id = tv->client_id;
	t->client_secret = tv->secret_literal ? MIGRATE_SEALED_PLACEHOLDER :
			   tv->client_secret;
	t->certificate_file = tv->certificate_file;
	t->mailbox = written_mailbox;
	t->graph_endpoint = tv->graph_endpoint;
	t->ca_file = tv->ca_file;
	t->server = tv->server;
	t->port = tv->port;
	t->notify = tv->notify;
}

/* An item's edit: NUL-terminated strings one after the other, the first
 * the kind.  It may hold literal passwords (an export's old command
 * lines): stored sealed, wiped when freed. */
static int edit_add(struct buf *b, const char *str, struct ms_err *err)
{
	return buf_append(b, str, strlen(str) + 1, err);
}

static int edit_strings(struct pitem *it, const char *first, ...)
{
	struct ms_err lerr = MS_ERR_INIT;
	struct buf b;
	const char *str;
	va_list ap;
	int rc = 0;

	buf_init(&b, (size_t)1 << 20);
	va_start(ap, first);
	for (str = first; str && rc == 0; str = va_arg(ap, const char *))
		rc = edit_add(&b, str, &lerr);
	va_end(ap);
	if (rc < 0) {
		mem_wipe(b.data, b.len);
		buf_release(&b);
		return -1;
	}
	it->edit_len = b.len;
	it->edit = buf_detach(&b, NULL);
	return it->edit ? 0 : -1;
}

/* The strings of an edit, in order: NULL after the last. */
static const char *edit_next(const char *edit, size_t len, size_t *pos)
{
	const char *s = edit + *pos, *nul;

	if (*pos >= len || !(nul = memchr(s, '\0', len - *pos)))
		return NULL;
	*pos += (size_t)(nul - s) + 1;
	return s;
}

/* A planned item's hashes, made on the worker thread that made its bytes
 * (mdb_store_plan records them; ~200 MB of SHA-256 for a 10,000-file
 * fleet, no longer one thread's work after the pool).  Then its bytes are
 * let go if the plan keeps no more (p->keep_max): an apply makes them
 * again from the file and the edit when the item's batch comes
 * (item_bytes), so that the bytes held do not grow with the fleet. */
static void item_hashes(struct plan *p, struct pitem *it)
{
	size_t need = it->orig_len + it->new_len;

	digest_sha256_hex(it->orig, it->orig_len, it->orig_sha);
	digest_sha256_hex(it->new, it->new_len, it->new_sha);
	if (__atomic_add_fetch(&p->held, need, __ATOMIC_RELAXED) > p->keep_max) {
		__atomic_sub_fetch(&p->held, need, __ATOMIC_RELAXED);
		mig_wipe_bytes(it->orig, it->orig_len);
		mig_wipe_bytes(it->new, it->new_len);
		it->orig = it->new = NULL;
		it->orig_len = it->new_len = 0;
	}
}

int mig_remake(const struct migrate_map *map, const char *kind, const char *path,
	       const char *orig, size_t orig_len, const char *edit,
	       size_t edit_len, char **out, size_t *outlen, struct ms_err *err)
{
	const char *k, *a, *b;
	size_t pos = 0, n = 0, alloc = 0, replaced = 0;
	const char **olds = NULL, **news = NULL;
	int rc;

	*out = NULL;
	*outlen = 0;
	if (!(k = edit_next(edit, edit_len, &pos)) || strcmp(k, kind) != 0)
		return err_set(err, MS_ERR_DATA, "its edit is not one of a %s file", kind);
	if (strcmp(kind, "ini") == 0) {
		struct migrate_tenant_view tv;
		struct migrate_target t;

		if (!(a = edit_next(edit, edit_len, &pos)) ||
		    !(b = edit_next(edit, edit_len, &pos)))
			return err_set(err, MS_ERR_DATA, "its edit is cut short");
		if (migrate_map_find(map, a, &tv) < 0)
			return err_set(err, MS_ERR_DATA, "no tenant in the mapping file "
				       "for its mailbox any more");
		target_fill(map, &tv, *b ? b : NULL, &t);
		return migrate_rewrite_ini(path, orig, orig_len, &t, out, outlen, err);
	}
	while ((a = edit_next(edit, edit_len, &pos))) {
		if (!(b = edit_next(edit, edit_len, &pos))) {
			rc = err_set(err, MS_ERR_DATA, "its edit is cut short");
			goto done;
		}
		if (n == alloc) {
			const char **no, **nn;
			alloc = alloc ? alloc * 2 : 16;
			no = realloc(olds, alloc * sizeof(*olds));
			if (no)
				olds = no;
			nn = no ? realloc(news, alloc * sizeof(*news)) : NULL;
			if (!nn) {
				rc = err_nomem(err);
				goto done;
			}
			news = nn;
		}
		olds[n] = a;
		news[n++] = b;
	}
	rc = migrate_rewrite_export(path, orig, orig_len, olds, news, n, out, outlen,
				    &replaced, err);
done:
	free(olds);
	free(news);
	return rc;
}

static int plan_ini(const struct migrate_opts *o, const struct migrate_map *map,
		    struct plan *p, struct pitem *it, const char *ini_file, int seq,
		    const struct jref *g, size_t ng, struct ms_err *err)
{
	struct ms_err lerr = MS_ERR_INIT;
	struct migrate_tenant_view tv;
	struct migrate_target t;
	struct ini *ini = NULL;
	const char *local = NULL;
	char *user = NULL, *file = NULL;
	const char *mailbox = NULL, *written_mailbox = NULL;
	size_t i;
	int rc = -1, was_cp1252 = 0;

	it->kind = "ini";
	it->state = MI_PLANNED;
	if (!(it->path = strdup(ini_file)) || job_list(p, g, ng, seq, it, err) < 0)
		return err->code ? -1 : err_nomem(err);
	for (i = 0; i < ng; i++)
		if (p->s.jobs[g[i].i].v.ini_local) {
			local = p->s.jobs[g[i].i].v.ini_local;
			break;
		}
	if (!(file = fs_join(o->fleet_dir, ini_file)))
		return err_nomem(err);
	it->seen = mig_seen(local ? local : file, &it->mode);
	if (fs_read_file(local ? local : file, INI_MAX_FILE, &it->orig, &it->orig_len,
			 &lerr) < 0) {
		rc = skip(it, err, "cannot read: %s", lerr.msg);
		goto done;
	}
	if (ini_parse_any(&ini, ini_file, it->orig, it->orig_len, &was_cp1252,
			  &lerr) < 0 || ini_check(ini, &lerr) < 0) {
		rc = skip(it, err, "%s", lerr.msg);
		goto done;
	}
	user = ini_get(ini, "Mail", "User") ? ini_unquote(ini_get(ini, "Mail", "User")) :
	       NULL;
	if (user && user[0] && !config_is_unset(user)) {
		mailbox = user;
	} else {
		for (i = 0; i < ng; i++) {
			const struct mjob *j = &p->s.jobs[g[i].i];
			if (j->user_opt && strchr(j->user_opt, '@') &&
			    !cmdline_has_property(j->user_opt)) {
				mailbox = written_mailbox = j->user_opt;
				break;
			}
		}
	}
	if (!mailbox || !strchr(mailbox, '@')) {
		rc = skip(it, err, "no mailbox address ([Mail] User or -user:) to match "
			  "a tenant");
		goto done;
	}
	if (migrate_map_find(map, mailbox, &tv) < 0) {
		rc = skip(it, err, "no tenant in the mapping file for domain '%s'",
			  strrchr(mailbox, '@') + 1);
		goto done;
	}
	if (tv.secret_expires) {
		char today[16];
		time_t now = o->now ? o->now : time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(today, sizeof(today), "%Y-%m-%d", &tm);
		if (strcmp(tv.secret_expires, today) < 0) {
			rc = skip(it, err, "the client secret of tenant %s expired on %s",
				  tv.tenant_id, tv.secret_expires);
			goto done;
		}
	}
	target_fill(map, &tv, written_mailbox, &t);
	if (edit_strings(it, "ini", mailbox, written_mailbox ? written_mailbox : "",
			 (const char *)NULL) < 0)
		goto nomem;
	/* parsed once: the file read and checked above is the one edited */
	if (migrate_rewrite_ini_parsed(ini, &t, &it->new, &it->new_len, &lerr) < 0) {
		if (lerr.code == MS_ERR_NOMEM)
			goto nomem;
		rc = skip(it, err, "%s", lerr.msg);
		goto done;
	}
	if (tv.secret_literal &&
	    asprintf(&it->seal, "%s\n%s", tv.tenant_id, tv.client_id) < 0) {
		it->seal = NULL;
		goto nomem;
	}
	if (it->new_len == it->orig_len && memcmp(it->new, it->orig, it->new_len) == 0)
		rc = skip(it, err, "already migrated");
	else {
		item_hashes(p, it);
		rc = 0;
	}
	goto done;
nomem:
	rc = err_nomem(err);
done:
	ini_free(ini);
	free(user);
	free(file);
	return rc;
}

static int plan_jobs(const struct migrate_map *map, struct plan *p,
		     struct ms_err *err)
{
	size_t i;

	for (i = 0; i < p->s.n; i++) {
		struct mjob *j = &p->s.jobs[i];
		struct pitem *it;

		if (!j->ini_item)
			continue;
		it = &p->items[j->ini_item - 1];
		if (it->state != MI_PLANNED) {
			j->action = MJ_SKIPPED;
			if (!(j->note = strdup(it->reason ? it->reason : "")))
				return err_nomem(err);
			continue;
		}
		if (migrate_rewrite_command(j->raw_cmd, migrate_map_connector(map),
					    &j->new_cmd, &j->flags, err) < 0)
			return -1;
		if (j->flags & MIGRATE_CMD_KEEPALIVE) {
			j->action = MJ_MANUAL;
			j->note = strdup("token keep-alive job for the incumbent's MSAL mode: "
					 "disable it after the cutover");
		} else if (j->flags & MIGRATE_CMD_UNLOCATED) {
			j->action = MJ_MANUAL;
			j->note = strdup("the connector could not be located in the command "
					 "line: change it by hand");
		} else if (j->flags & MIGRATE_CMD_PASSWORD) {
			j->action = MJ_MANUAL;
			j->note = strdup(j->flags & MIGRATE_CMD_CHANGED ?
					 "the command line holds a literal password: remove "
					 "the -password: (or -opconpassword:) option from the "
					 "job by hand, then rotate that password; its other "
					 "changes (connector path, options overriding the INI) "
					 "are in the rewritten export" :
					 "the command line holds a literal password: remove "
					 "the -password: (or -opconpassword:) option from the "
					 "job by hand, then rotate that password");
		} else {
			j->action = j->flags & MIGRATE_CMD_CHANGED ? MJ_CHANGE : MJ_NONE;
			continue;
		}
		if (!j->note)
			return err_nomem(err);
	}
	return 0;
}

/* One export item: its file read and its jobs' command lines replaced
 * (on a worker thread: touches only the item, reads its jobs). */
struct egroup {
	size_t lo, hi, item;
	int rc;
	struct ms_err err;
};

struct export_work {
	const struct migrate_opts *o;
	struct plan *p;
	const struct jref *refs;
	struct egroup *groups;
};

static void export_one(void *ctx, size_t k)
{
	struct export_work *w = ctx;
	struct egroup *g = &w->groups[k];
	struct pitem *it = &w->p->items[g->item];
	struct ms_err lerr = MS_ERR_INIT, *err = &g->err;
	const char *source = w->refs[g->lo].key;
	const char **olds = NULL, **news = NULL;
	size_t m = 0, replaced = 0, i;
	char *file = NULL;

	g->rc = -1;
	if (!(olds = calloc(g->hi - g->lo, sizeof(*olds))) ||
	    !(news = calloc(g->hi - g->lo, sizeof(*news)))) {
		err_nomem(err);
		goto done;
	}
	for (i = g->lo; i < g->hi; i++) {
		const struct mjob *j = &w->p->s.jobs[w->refs[i].i];
		olds[m] = j->raw_cmd;
		news[m++] = j->new_cmd;
	}
	if (!(file = fs_join(w->o->fleet_dir, source))) {
		err_nomem(err);
		goto done;
	}
	it->seen = mig_seen(file, &it->mode);
	if (fs_read_file(file, EXPORT_MAX, &it->orig, &it->orig_len, &lerr) < 0)
		g->rc = skip(it, err, "cannot read: %s", lerr.msg);
	else if (migrate_rewrite_export(source, it->orig, it->orig_len, olds, news, m,
					&it->new, &it->new_len, &replaced, &lerr) < 0)
		g->rc = lerr.code == MS_ERR_NOMEM ? err_nomem(err) :
			skip(it, err, "%s", lerr.msg);
	else if (replaced == 0)
		g->rc = skip(it, err, MIG_EXPORT_NOT_FOUND);
	else {
		item_hashes(w->p, it);
		g->rc = 0;
	}
done:
	free(file);
	free(olds);
	free(news);
}

/* One item per export file with a job whose command line changes: the
 * items first, each with its edit (in source order, so seq numbers are as
 * ever), then each read and rewritten by several threads at once -- or,
 * with defer (an apply that plans), left to mig_deferred. */
static int plan_exports(const struct migrate_opts *o, struct plan *p, int defer,
			struct ms_err *err)
{
	struct jref *refs = NULL;
	struct egroup *groups = NULL;
	size_t n = 0, i, lo, hi, ng = 0, ng_alloc = 0;
	int rc = -1;

	if (p->s.n && !(refs = calloc(p->s.n, sizeof(*refs)))) {
		err_nomem(err);
		goto done;
	}
	for (i = 0; i < p->s.n; i++)
		if (p->s.jobs[i].new_cmd && (p->s.jobs[i].flags & MIGRATE_CMD_CHANGED) &&
		    !(p->s.jobs[i].flags & MIGRATE_CMD_KEEPALIVE)) {
			refs[n].key = p->s.jobs[i].v.source;
			refs[n++].i = i;
		}
	if (n)
		qsort(refs, n, sizeof(*refs), cmp_jref);
	for (lo = 0; lo < n; lo = hi) {
		struct ms_err lerr = MS_ERR_INIT;
		const char *source = refs[lo].key;
		struct pitem *it;
		struct buf jl, ed;
		int seq;

		for (hi = lo; hi < n && strcmp(refs[hi].key, source) == 0; hi++)
			;
		if (MEM_GROW(groups, ng_alloc, ng + 1, err) || !(it = plan_add(p, err)))
			goto done;
		seq = (int)p->n;
		memset(&groups[ng], 0, sizeof(groups[ng]));
		groups[ng].lo = lo;
		groups[ng].hi = hi;
		groups[ng++].item = p->n - 1;
		it->kind = "export";
		it->state = MI_PLANNED;
		if (!(it->path = strdup(source)) || !(it->machine = strdup(""))) {
			err_nomem(err);
			goto done;
		}
		buf_init(&jl, BUF_DEFAULT_CAP);
		buf_init(&ed, (size_t)1 << 30);
		edit_add(&ed, "export", &lerr);
		for (i = lo; i < hi; i++) {
			struct mjob *j = &p->s.jobs[refs[i].i];
			j->export_item = seq;
			buf_appendf(&jl, &lerr, "%s%s/%s (%s)", jl.len ? ", " : "",
				    j->v.schedule, j->v.job, j->v.machine);
			edit_add(&ed, j->raw_cmd, &lerr);
			edit_add(&ed, j->new_cmd, &lerr);
		}
		it->jobs = buf_detach(&jl, NULL);
		it->edit_len = ed.len;
		it->edit = buf_detach(&ed, NULL);
		it->deferred = defer;
		if (!it->jobs || !it->edit || lerr.code) {
			err_nomem(err);
			goto done;
		}
	}
	if (!defer) {
		struct export_work ew = { o, p, refs, groups };

		mig_pool_run(ng, export_one, &ew);
		for (i = 0; i < ng; i++)
			if (groups[i].rc < 0) {
				*err = groups[i].err;
				goto done;
			}
	}
	rc = 0;
done:
	free(groups);
	free(refs);
	return rc;
}

/* The INI items of a plan, made on worker threads (ini_one): group k
 * is item k of the plan, its jobs refs[lo..hi). */
struct igroup {
	size_t lo, hi;
	int rc;
	struct ms_err err;
};

struct ini_work {
	const struct migrate_opts *o;
	const struct migrate_map *map;
	struct plan *p;
	const struct jref *refs;
	struct igroup *groups;
};

/* Touches only item k and the jobs of its group. */
static void ini_one(void *ctx, size_t k)
{
	struct ini_work *w = ctx;
	struct igroup *g = &w->groups[k];

	g->rc = plan_ini(w->o, w->map, w->p, &w->p->items[k], w->refs[g->lo].key,
			 (int)k + 1, w->refs + g->lo, g->hi - g->lo, &g->err);
}

/* The export items an apply that plans left to make (pitem.deferred):
 * each file read, its command lines replaced by its edit (mig_remake, as
 * an apply that resumes makes them), both hashed and its identity taken
 * (item_hashes: the bytes kept as far as keep_max allows).  On a thread
 * of its own with the pool, while apply writes the INI files: it touches
 * only the deferred items (and p->held, atomically). */
struct deferred_work {
	const struct migrate_opts *o;
	const struct migrate_map *map;
	struct plan *p;
	size_t *idx;
	struct mig_stage *stage;
};

static void deferred_one(void *ctx, size_t k)
{
	struct deferred_work *w = ctx;
	struct pitem *it = &w->p->items[w->idx[k]];
	struct ms_err lerr = MS_ERR_INIT, err = MS_ERR_INIT;
	char *file = fs_join(w->o->fleet_dir, it->path);

	if (!file) {
		it->make_rc = -1;
		return;
	}
	it->seen = mig_seen(file, &it->mode);
	if (fs_read_file(file, EXPORT_MAX, &it->orig, &it->orig_len, &lerr) < 0)
		it->make_rc = skip(it, &err, "cannot read: %s", lerr.msg);
	else if (mig_remake(w->map, it->kind, it->path, it->orig, it->orig_len,
			    it->edit, it->edit_len, &it->new, &it->new_len, &lerr) < 0)
		it->make_rc = lerr.code == MS_ERR_NOMEM ? -1 :
			      skip(it, &err, "%s", lerr.msg);
	else if (it->new_len == it->orig_len &&
		 memcmp(it->new, it->orig, it->new_len) == 0)
		it->make_rc = skip(it, &err, MIG_EXPORT_NOT_FOUND);
	else
		item_hashes(w->p, it);
	/* written ahead of its batch (unless item_hashes let its bytes go) */
	if (it->state == MI_PLANNED && it->make_rc == 0 && it->stage_ok && it->new)
		it->staged = mig_stage_add(w->stage, w->o->fleet_dir, it->path,
					   it->new, it->new_len, it->mode);
	if (it->state != MI_PLANNED || it->make_rc < 0) {
		mig_wipe_bytes(it->orig, it->orig_len);
		mig_wipe_bytes(it->new, it->new_len);
		it->orig = it->new = NULL;
		it->orig_len = it->new_len = 0;
	}
	free(file);
}

static void *deferred_main(void *arg)
{
	struct mig_deferred *df = arg;
	struct deferred_work w = { df->o, df->map, df->p, df->idx, df->stage };

	mig_pool_run(df->n, deferred_one, &w);
	return NULL;
}

int mig_deferred_init(struct mig_deferred *df, const struct migrate_opts *o,
		      const struct migrate_map *map, struct plan *p,
		      struct ms_err *err)
{
	size_t i;

	memset(df, 0, sizeof(*df));
	df->o = o;
	df->map = map;
	df->p = p;
	for (i = 0; i < p->n; i++)
		if (p->items[i].deferred && p->items[i].state == MI_PLANNED)
			df->n++;
	if (!df->n) {
		df->done = 1;
		return 0;
	}
	if (!(df->idx = calloc(df->n, sizeof(*df->idx)))) {
		df->n = 0;
		df->done = 1;
		return err_nomem(err);
	}
	df->n = 0;
	for (i = 0; i < p->n; i++)
		if (p->items[i].deferred && p->items[i].state == MI_PLANNED)
			df->idx[df->n++] = i;
	return 0;
}

void mig_deferred_start(struct mig_deferred *df)
{
	if (df->done || df->started)
		return;
	if (pthread_create(&df->th, NULL, deferred_main, df) == 0)
		df->started = 1;
}

void mig_deferred_join(struct mig_deferred *df)
{
	if (df->done)
		return;
	if (df->started)
		pthread_join(df->th, NULL);
	else if (df->p)
		deferred_main(df);   /* not started (or no thread): made here */
	df->done = 1;
}

void mig_deferred_release(struct mig_deferred *df)
{
	if (df->started && !df->done)
		pthread_join(df->th, NULL);   /* never made here: nobody waits */
	df->done = 1;
	free(df->idx);
	df->idx = NULL;
	df->n = 0;
}

static int build_plan(const struct migrate_opts *o, const struct migrate_map *map,
		      struct plan *p, size_t keep_max, int defer,
		      struct migrate_result *res, struct ms_err *err)
{
	struct jref *refs = NULL;
	struct igroup *groups = NULL;
	size_t n = 0, i, lo, hi, ng = 0, ng_alloc = 0;
	double t = mig_now();
	int rc = -1;

	memset(p, 0, sizeof(*p));
	p->keep_max = keep_max;
	if (scan_fleet(o, &p->s, err) < 0)
		return -1;
	mig_lap(res, MIGRATE_PH_SCAN, &t);
	if (p->s.n && !(refs = calloc(p->s.n, sizeof(*refs))))
		return err_nomem(err);
	for (i = 0; i < p->s.n; i++)
		if (p->s.jobs[i].v.ini_file) {
			refs[n].key = p->s.jobs[i].v.ini_file;
			refs[n++].i = i;
		}
	if (n)
		qsort(refs, n, sizeof(*refs), cmp_jref);
	/* one item per INI file that one of its jobs needs changed, with all
	 * of that file's jobs: the items first, then each made (read and
	 * rewritten) by several threads at once */
	for (lo = 0; lo < n; lo = hi) {
		int change = 0;

		for (hi = lo; hi < n && strcmp(refs[hi].key, refs[lo].key) == 0; hi++)
			if (needs_ini_change(&p->s.jobs[refs[hi].i]))
				change = 1;
		if (!change)
			continue;
		if (MEM_GROW(groups, ng_alloc, ng + 1, err) || !plan_add(p, err))
			goto done;
		memset(&groups[ng], 0, sizeof(groups[ng]));
		groups[ng].lo = lo;
		groups[ng++].hi = hi;
	}
	{
		struct ini_work iw = { o, map, p, refs, groups };

		mig_pool_run(ng, ini_one, &iw);
		for (i = 0; i < ng; i++)
			if (groups[i].rc < 0) {
				*err = groups[i].err;
				goto done;
			}
	}
	if (plan_jobs(map, p, err) < 0 || plan_exports(o, p, defer, err) < 0)
		goto done;
	rc = 0;
done:
	free(groups);
	free(refs);
	mig_lap(res, MIGRATE_PH_EDIT, &t);
	return rc;
}

/* plan: returns the run id stored through *run. */
int mig_do_plan(const struct migrate_opts *o, struct mdb *d,
		   const struct migrate_map *map, int print, struct plan **keep,
		   struct migrate_result *res, struct ms_err *err)
{
	struct plan p;
	int run = 0, replace = 0, rc = -1;
	size_t i;

	double t = mig_now();

	if (mdb_next_run(d, &run, &replace, err) < 0)
		return -1;
	memset(&p, 0, sizeof(p));
	if (mdb_key(d, 1, err) < 0)
		goto done;
	mig_lap(res, MIGRATE_PH_OPEN, &t);
	/* plan prints every diff and stores every byte: all kept */
	if (build_plan(o, map, &p, !keep ? SIZE_MAX : o->keep_bytes ? o->keep_bytes :
		       MIGRATE_KEEP_DEFAULT, keep != NULL, res, err) < 0)
		goto done;
	t = mig_now();
	if (mdb_store_plan(d, run, replace, o, map, &p, !keep, err) < 0)
		goto done;
	res->commits++;
	mig_lap(res, MIGRATE_PH_STORE, &t);
	res->run = run;
	for (i = 0; i < p.n; i++) {
		res->items++;
		mig_count_state(res, p.items[i].state);
	}
	if (print)
		mig_print_plan(o, run, map, &p, res, err);
	rc = 0;
done:
	if (keep && rc == 0 && (*keep = malloc(sizeof(p)))) {
		**keep = p;
		return 0;
	}
	if (keep && rc == 0)
		rc = err_nomem(err);
	mig_plan_free(&p);
	return rc;
}

int migrate_plan(const struct migrate_opts *o, struct migrate_result *res,
		 struct ms_err *err)
{
	struct migrate_map *map;
	struct mdb *d;
	int rc;

	memset(res, 0, sizeof(*res));
	if (mdb_open_all(o, 1, &d, &map, err) < 0)
		return -1;
	rc = mig_do_plan(o, d, map, 1, NULL, res, err);
	res->manual_expected = 1;   /* a plan that leaves only hand work is complete */
	mdb_close(d);
	migrate_map_free(map);
	return rc;
}
