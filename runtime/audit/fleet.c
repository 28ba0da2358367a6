/*
 * fleet.c - the fleet scan: the walk of FLEET/jobs, the background
 * reader of fleet_scan_async() and the notification export.  JSON
 * exports are fleet_json.c, XML exports fleet_xml.c, Windows paths
 * fleet_paths.c, the machines/ tree base/fleetdir.c.
 */
#include "audit/fleet_int.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <cJSON.h>
#include <libxml/parser.h>

#include "base/buf.h"
#include "base/fsutil.h"
#include "base/mem.h"
#include "base/platform.h"
#include "base/utf8.h"

void fleet_problem(const struct fleet_handlers *h, const char *file, int line,
		    const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!h || !h->problem)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	h->problem(file, line, msg, h->ctx);
}

/* Encodings. */


int fleet_to_utf8(const char *data, size_t len, char **out, size_t *outlen,
		  struct ms_err *err)
{
	const unsigned char *u = (const unsigned char *)data;
	int le = -1;
	size_t i, k = 0, start = 0;
	char *o;

	*out = NULL;
	*outlen = 0;
	if (len >= 2 && u[0] == 0xFF && u[1] == 0xFE) {
		le = 1;
		start = 2;
	} else if (len >= 2 && u[0] == 0xFE && u[1] == 0xFF) {
		le = 0;
		start = 2;
	} else if (len >= 4 && u[0] != 0 && u[1] == 0 && u[3] == 0) {
		le = 1;
	}
	if (le < 0) {
		if (len >= 3 && u[0] == 0xEF && u[1] == 0xBB && u[2] == 0xBF)
			start = 3;
		if (!(o = malloc(len - start + 1)))
			return err_nomem(err);
		memcpy(o, data + start, len - start);
		o[len - start] = '\0';
		*out = o;
		*outlen = len - start;
		return 0;
	}
	if ((len - start) % 2)
		return err_set(err, MS_ERR_DATA, "odd length for UTF-16 text");
	/* at most 3 UTF-8 bytes per UTF-16 unit */
	if (!(o = malloc((len - start) / 2 * 3 + 1)))
		return err_nomem(err);
	for (i = start; i + 1 < len; i += 2) {
		unsigned long c = le ? (unsigned long)(u[i] | (u[i + 1] << 8)) :
				       (unsigned long)((u[i] << 8) | u[i + 1]);
		if (c >= 0xD800 && c <= 0xDBFF) {
			unsigned long d;
			if (i + 3 >= len)
				goto bad;
			d = le ? (unsigned long)(u[i + 2] | (u[i + 3] << 8)) :
				 (unsigned long)((u[i + 2] << 8) | u[i + 3]);
			if (d < 0xDC00 || d > 0xDFFF)
				goto bad;
			c = 0x10000 + ((c - 0xD800) << 10) + (d - 0xDC00);
			i += 2;
		} else if (c >= 0xDC00 && c <= 0xDFFF) {
			goto bad;
		}
		if (c == 0)
			goto bad;
		k += utf8_encode((uint32_t)c, o + k);
	}
	o[k] = '\0';
	*out = o;
	*outlen = k;
	return 0;
bad:
	free(o);
	return err_set(err, MS_ERR_DATA, "invalid UTF-16 at byte %zu", i);
}

/* 1 (and the problem reported) when path is there but no regular file
 * (fleet_not_a_file()). */
static int not_a_file(const char *path, const char *rel,
		      const struct fleet_handlers *h)
{
	if (!fleet_not_a_file(path))
		return 0;
	fleet_problem(h, rel, 0, "%s", FLEET_NOT_A_FILE);
	return 1;
}

static int is_export(const char *name)
{
	return fleet_ends_with_ci(name, ".json") || fleet_ends_with_ci(name, ".xml");
}

/* The exports of a folder asked for ahead of the reader
 * (platform_prefetch): a cold disk then serves several files at once,
 * where the reader alone waited for one after the other (a cold 100k
 * audit: 1.7 s before, 1.35 s after; issue 16).  At most
 * PREFETCH_BYTES asked for and not read yet, at most PREFETCH_FILES
 * entries ahead: what the cache holds for the reader stays bounded
 * whatever the size of the fleet. */
#define PREFETCH_BYTES ((long long)32 << 20)
#define PREFETCH_FILES 64

struct prefetch {
	const char *path;
	const struct fleet_dirlist *d;
	long long *size;        /* per entry: the bytes asked for */
	long long ahead;        /* asked for, not read yet */
	size_t next;            /* the next entry to ask for */
};

/* Before entry cur is read. */
static void prefetch_ahead(struct prefetch *pf, size_t cur)
{
	while (pf->size && pf->next < pf->d->n && pf->ahead < PREFETCH_BYTES &&
	       pf->next < cur + PREFETCH_FILES) {
		size_t k = pf->next++;
		char *p;
		long long n;

		if (!is_export(pf->d->names[k]))
			continue;
		if (!(p = fs_join(pf->path, pf->d->names[k])))
			return;
		if ((n = platform_prefetch(p)) > 0) {
			pf->size[k] = n;
			pf->ahead += n;
		}
		free(p);
	}
}

static int scan_tree(const char *top, const char *path, const char *rel,
		     int depth, const struct fleet_handlers *h, size_t *files,
		     struct ms_err *err)
{
	struct fleet_dirlist d;
	struct prefetch pf;
	size_t i;
	int rc = 0;

	if (depth > FLEET_MAX_DEPTH) {
		fleet_problem(h, rel, 0, "folder nesting deeper than %d levels: skipped",
			FLEET_MAX_DEPTH);
		return 0;
	}
	if (fleet_dirlist_read(path, &d, err) < 0) {
		if (depth == 0)
			return -1;
		fleet_problem(h, rel, 0, "%s", err->msg);
		err_clear(err);
		return 0;
	}
	memset(&pf, 0, sizeof(pf));
	pf.path = path;
	pf.d = &d;
	pf.size = d.n ? calloc(d.n, sizeof(*pf.size)) : NULL;  /* none: no prefetch */
	for (i = 0; i < d.n && rc == 0; i++) {
		char *p = fs_join(path, d.names[i]);
		char *r = fs_join(rel, d.names[i]);
		int kind;

		prefetch_ahead(&pf, i);
		if (pf.size)
			pf.ahead -= pf.size[i];
		if (!p || !r) {
			free(p);
			free(r);
			rc = err_nomem(err);
			break;
		}
		if ((kind = fleet_dirlist_dir(&d, i, p))) {
			/* do not follow symlinked folders (loops) */
			if (kind == 1)
				rc = scan_tree(top, p, r, depth + 1, h, files, err);
		} else if (is_export(d.names[i])) {
			/* the read-ahead found it a regular file already */
			if ((pf.size && pf.size[i] > 0) || !not_a_file(p, r, h))
				rc = fleet_ends_with_ci(d.names[i], ".xml") ?
				     fleet_scan_xml(p, r, h, err) : fleet_scan_json(p, r, h, err);
			++*files;
			if (rc == 0 && h->file_done)
				h->file_done(r, *files, h->ctx);
		}
		free(p);
		free(r);
	}
	free(pf.size);
	fleet_dirlist_free(&d);
	return rc;
}

/* The walk of scan_tree(), keeping what it does not read. */
static int ignored_tree(const char *path, const char *rel, int depth,
			char ***out, size_t *n, size_t *alloc, struct ms_err *err)
{
	struct fleet_dirlist d;
	size_t i;
	int rc = 0;

	if (depth > FLEET_MAX_DEPTH)
		return 0;
	if (fleet_dirlist_read(path, &d, err) < 0) {
		if (depth == 0)
			return -1;
		err_clear(err);    /* scan_tree() reports it */
		return 0;
	}
	for (i = 0; i < d.n && rc == 0; i++) {
		char *p = fs_join(path, d.names[i]);
		char *r = fs_join(rel, d.names[i]);
		int kind;

		if (!p || !r) {
			rc = err_nomem(err);
		} else if ((kind = fleet_dirlist_dir(&d, i, p))) {
			if (kind == 1)
				rc = ignored_tree(p, r, depth + 1, out, n, alloc, err);
		} else if (!fleet_ends_with_ci(d.names[i], ".json") &&
			   !fleet_ends_with_ci(d.names[i], ".xml")) {
			if (*n == *alloc) {
				size_t na = *alloc ? *alloc * 2 : 8;
				char **nv = realloc(*out, na * sizeof(*nv));

				if (!nv) {
					rc = err_nomem(err);
					break;
				}
				*out = nv;
				*alloc = na;
			}
			(*out)[(*n)++] = r;
			r = NULL;
		}
		free(p);
		free(r);
	}
	fleet_dirlist_free(&d);
	return rc;
}

int fleet_list_ignored(const char *dir, char ***out, size_t *n,
		       struct ms_err *err)
{
	size_t alloc = 0, i;
	char *jobs;
	int rc;

	*out = NULL;
	*n = 0;
	if (!(jobs = fs_join(dir, "jobs")))
		return err_nomem(err);
	rc = ignored_tree(jobs, "jobs", 0, out, n, &alloc, err);
	free(jobs);
	if (rc < 0) {
		for (i = 0; i < *n; i++)
			free((*out)[i]);
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

/* The checks before a scan; *jobs is FLEET/jobs, malloc'd. */
static int scan_prepare(const char *dir, char **jobs, struct ms_err *err)
{
	struct stat st;

	*jobs = NULL;
	if (stat(dir, &st) < 0)
		return err_set(err, MS_ERR_IO, "cannot open fleet folder '%s': %s", dir,
			       strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return err_set(err, MS_ERR_IO, "fleet folder '%s' is not a folder", dir);
	if (!(*jobs = fs_join(dir, "jobs")))
		return err_nomem(err);
	if (!fleet_is_dir(*jobs)) {
		free(*jobs);
		*jobs = NULL;
		return err_set(err, MS_ERR_IO, "fleet folder '%s' has no jobs/ folder",
			       dir);
	}
	/* libxml2 initialises itself once, here, on the caller's thread */
	LIBXML_TEST_VERSION
	xmlInitParser();
	return 0;
}

int fleet_scan(const char *dir, const struct fleet_handlers *h,
	       struct ms_err *err)
{
	char *jobs;
	size_t files = 0;
	int rc;

	if (scan_prepare(dir, &jobs, err) < 0)
		return -1;
	rc = scan_tree(dir, jobs, "jobs", 0, h, &files, err);
	free(jobs);
	return rc;
}

/*
 * fleet_scan_async(): a reader thread runs scan_tree() with handlers that
 * serialise each call (job, problem, file done) into batches; the caller's
 * thread replays the batches in order through the caller's handlers.  At
 * most ASYNC_BATCHES batches of about ASYNC_BATCH bytes wait (one job may
 * make a batch larger, up to FLEET_MAX_JOB and a bit).  When a handler
 * fails, the reader is told to stop and what it had read is dropped.
 */
#define ASYNC_BATCH ((size_t)64 * 1024)
#define ASYNC_BATCHES 8

enum { EV_JOB = 1, EV_PROBLEM, EV_FILE_DONE, EV_OTHER };

struct ascan {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct buf q[ASYNC_BATCHES];     /* ring of full batches */
	size_t head, count;
	int stop;                        /* the consumer gave up */
	int done;                        /* the reader finished */
	int rc;                          /* its scan_tree() result */
	struct ms_err rerr;              /* its error */
	struct buf cur;                  /* the batch being filled (reader) */
	size_t other_at;                 /* cur's last event when EV_OTHER, + 1 */
	int oom;                         /* a batch could not grow */
	const char *dir, *jobs;
	const struct fleet_handlers *user;
};

/* Hand the current batch over; -1 when the consumer stopped. */
static int ascan_push(struct ascan *a)
{
	int rc = 0;

	pthread_mutex_lock(&a->mu);
	while (a->count == ASYNC_BATCHES && !a->stop)
		pthread_cond_wait(&a->cv, &a->mu);
	if (a->stop) {
		rc = -1;
	} else {
		a->q[(a->head + a->count) % ASYNC_BATCHES] = a->cur;
		a->count++;
		buf_init(&a->cur, FLEET_MAX_JOB * 4);
		a->other_at = 0;
		pthread_cond_broadcast(&a->cv);
	}
	pthread_mutex_unlock(&a->mu);
	return rc;
}

/* A string, or NULL: a presence byte then the bytes and a NUL. */
static int ev_str(struct buf *b, const char *s, struct ms_err *err)
{
	if (!s)
		return buf_append(b, "", 1, err);
	return buf_append(b, "\1", 1, err) < 0 ? -1 :
	       buf_append(b, s, strlen(s) + 1, err);
}

static int ev_head(struct buf *b, int kind, long num, struct ms_err *err)
{
	unsigned char k = (unsigned char)kind;

	return buf_append(b, &k, 1, err) < 0 ? -1 :
	       buf_append(b, &num, sizeof(num), err);
}

static int ev_ptr(struct buf *b, void *p, struct ms_err *err)
{
	return buf_append(b, &p, sizeof(p), err);
}

/* After an event: hand the batch over once it is big enough.  An event
 * that could not be added (out of memory) is dropped and the scan will
 * fail; -1 when the consumer stopped. */
static int ev_end(struct ascan *a, size_t start, int rc)
{
	a->other_at = 0;
	if (rc < 0) {
		a->cur.len = start;
		a->oom = 1;
		return 0;
	}
	return a->cur.len >= ASYNC_BATCH ? ascan_push(a) : 0;
}

static int async_job(const struct fleet_job *j, void *ctx, struct ms_err *err)
{
	struct ascan *a = ctx;
	const struct fleet_handlers *u = a->user;
	struct ms_err lerr = MS_ERR_INIT;
	size_t start = a->cur.len;
	void *prep = u->prepare ? u->prepare(j, u->ctx) : NULL;
	int rc;

	rc = (ev_head(&a->cur, EV_JOB, j->line, &lerr) < 0 ||
	      ev_ptr(&a->cur, prep, &lerr) < 0 ||
	      ev_str(&a->cur, j->source, &lerr) < 0 ||
	      ev_str(&a->cur, j->schedule, &lerr) < 0 ||
	      ev_str(&a->cur, j->name, &lerr) < 0 ||
	      ev_str(&a->cur, j->machine, &lerr) < 0 ||
	      ev_str(&a->cur, j->job_type, &lerr) < 0 ||
	      ev_str(&a->cur, j->command_line, &lerr) < 0 ||
	      ev_str(&a->cur, j->working_dir, &lerr) < 0 ||
	      ev_str(&a->cur, j->batch_user, &lerr) < 0) ? -1 : 0;
	if (rc < 0 && prep && u->release)
		u->release(prep, u->ctx);
	if (ev_end(a, start, rc) < 0)
		return err_set(err, MS_ERR_INTERNAL, "scan stopped");
	if (a->oom)
		return err_nomem(err);
	return 0;
}

static void async_problem(const char *file, int line, const char *msg, void *ctx)
{
	struct ascan *a = ctx;
	struct ms_err lerr = MS_ERR_INIT;
	size_t start = a->cur.len;
	int rc;

	rc = (ev_head(&a->cur, EV_PROBLEM, line, &lerr) < 0 ||
	      ev_str(&a->cur, file, &lerr) < 0 ||
	      ev_str(&a->cur, msg, &lerr) < 0) ? -1 : 0;
	(void)ev_end(a, start, rc);
}

static void async_file_done(const char *file, size_t files, void *ctx)
{
	struct ascan *a = ctx;
	struct ms_err lerr = MS_ERR_INIT;
	size_t start = a->cur.len;
	int rc;

	rc = (ev_head(&a->cur, EV_FILE_DONE, (long)files, &lerr) < 0 ||
	      ev_str(&a->cur, file, &lerr) < 0) ? -1 : 0;
	(void)ev_end(a, start, rc);
}

/* Jobs that cannot run the connector: one event counts a run of them. */
static int async_other(size_t n, void *ctx, struct ms_err *err)
{
	struct ascan *a = ctx;
	struct ms_err lerr = MS_ERR_INIT;
	size_t start = a->cur.len;
	long num;
	int rc;

	if (a->other_at) {
		memcpy(&num, a->cur.data + a->other_at, sizeof(num));
		num += (long)n;
		memcpy(a->cur.data + a->other_at, &num, sizeof(num));
		return 0;
	}
	rc = ev_head(&a->cur, EV_OTHER, (long)n, &lerr);
	if (ev_end(a, start, rc) < 0)
		return err_set(err, MS_ERR_INTERNAL, "scan stopped");
	if (a->oom)
		return err_nomem(err);
	if (a->cur.len)
		a->other_at = start + 1;
	return 0;
}

static void *async_reader(void *arg)
{
	struct ascan *a = arg;
	struct fleet_handlers h = { .job = async_job, .problem = async_problem,
				   .file_done = async_file_done, .ctx = a,
				   .other = a->user->other ? async_other : NULL };
	struct ms_err err = MS_ERR_INIT;
	size_t files = 0;
	int rc;

	rc = scan_tree(a->dir, a->jobs, "jobs", 0, &h, &files, &err);
	if (a->oom && rc == 0)
		rc = err_nomem(&err);
	if (a->cur.len && ascan_push(a) < 0 && rc == 0)
		rc = err_set(&err, MS_ERR_INTERNAL, "scan stopped");
	pthread_mutex_lock(&a->mu);
	a->done = 1;
	a->rc = rc;
	a->rerr = err;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

static const char *ev_get_str(const char **p, const char *end)
{
	const char *s;

	if (*p >= end || !**p) {
		(*p)++;
		return NULL;
	}
	s = *p + 1;
	*p = s + strlen(s) + 1;
	return s;
}

/* Replay one batch (from offset *pos); -1 when a handler failed (err is
 * set), *pos then after the failed job. */
static int ascan_replay(const struct buf *b, size_t *pos,
			const struct fleet_handlers *h, struct ms_err *err)
{
	const char *p, *end;
	int rc = 0;

	if (!b->data)
		return 0;
	p = b->data + *pos;
	end = b->data + b->len;
	while (p < end) {
		int kind = (unsigned char)*p++;
		long num;

		memcpy(&num, p, sizeof(num));
		p += sizeof(num);
		if (kind == EV_JOB) {
			struct fleet_job j;

			memset(&j, 0, sizeof(j));
			j.line = (int)num;
			memcpy(&j.prepared, p, sizeof(j.prepared));
			p += sizeof(j.prepared);
			j.source = ev_get_str(&p, end);
			j.schedule = ev_get_str(&p, end);
			j.name = ev_get_str(&p, end);
			j.machine = ev_get_str(&p, end);
			j.job_type = ev_get_str(&p, end);
			j.command_line = ev_get_str(&p, end);
			j.working_dir = ev_get_str(&p, end);
			j.batch_user = ev_get_str(&p, end);
			if (!h->job) {
				if (j.prepared && h->release)
					h->release(j.prepared, h->ctx);
			} else if (h->job(&j, h->ctx, err) < 0) {
				rc = -1;
				break;
			}
		} else if (kind == EV_PROBLEM) {
			const char *file = ev_get_str(&p, end);
			const char *msg = ev_get_str(&p, end);

			if (h->problem)
				h->problem(file, (int)num, msg, h->ctx);
		} else if (kind == EV_OTHER) {
			if (h->other && h->other((size_t)num, h->ctx, err) < 0) {
				rc = -1;
				break;
			}
		} else {
			const char *file = ev_get_str(&p, end);

			if (h->file_done)
				h->file_done(file, (size_t)num, h->ctx);
		}
	}
	*pos = (size_t)(p - b->data);
	return rc;
}

/* Free what prepare() made for the jobs of a batch that are dropped. */
static void ascan_drop(const struct buf *b, size_t pos,
		       const struct fleet_handlers *h)
{
	const char *p, *end;
	int i;

	if (!b->data)
		return;
	p = b->data + pos;
	end = b->data + b->len;
	while (p < end) {
		int kind = (unsigned char)*p++;
		void *prep = NULL;

		p += sizeof(long);
		if (kind == EV_JOB) {
			memcpy(&prep, p, sizeof(prep));
			p += sizeof(prep);
			if (prep && h->release)
				h->release(prep, h->ctx);
		}
		for (i = kind == EV_JOB ? 8 : kind == EV_PROBLEM ? 2 :
			 kind == EV_OTHER ? 0 : 1; i > 0; i--)
			(void)ev_get_str(&p, end);
	}
}

int fleet_scan_async(const char *dir, const struct fleet_handlers *h,
		     struct ms_err *err)
{
	struct ascan *a;
	pthread_t th;
	char *jobs;
	size_t i, pos;
	int rc = 0;

	if (scan_prepare(dir, &jobs, err) < 0)
		return -1;
	if (!(a = calloc(1, sizeof(*a)))) {
		free(jobs);
		return err_nomem(err);
	}
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	buf_init(&a->cur, FLEET_MAX_JOB * 4);
	a->dir = dir;
	a->jobs = jobs;
	a->user = h;
	if (pthread_create(&th, NULL, async_reader, a) != 0) {
		size_t files = 0;

		/* no thread: the plain scan */
		rc = scan_tree(dir, jobs, "jobs", 0, h, &files, err);
		goto out;
	}
	for (;;) {
		struct buf b;

		pthread_mutex_lock(&a->mu);
		while (a->count == 0 && !a->done)
			pthread_cond_wait(&a->cv, &a->mu);
		if (a->count == 0) {
			pthread_mutex_unlock(&a->mu);
			break;
		}
		b = a->q[a->head];
		a->head = (a->head + 1) % ASYNC_BATCHES;
		a->count--;
		pthread_cond_broadcast(&a->cv);
		pthread_mutex_unlock(&a->mu);
		pos = 0;
		rc = ascan_replay(&b, &pos, h, err);
		if (rc < 0)
			ascan_drop(&b, pos, h);
		buf_release(&b);
		if (rc < 0) {
			pthread_mutex_lock(&a->mu);
			a->stop = 1;
			pthread_cond_broadcast(&a->cv);
			pthread_mutex_unlock(&a->mu);
			break;
		}
	}
	pthread_join(th, NULL);
	if (rc == 0 && a->rc < 0)
		rc = err_set(err, a->rerr.code, "%s", a->rerr.msg);
	for (i = 0; i < a->count; i++) {
		ascan_drop(&a->q[(a->head + i) % ASYNC_BATCHES], 0, h);
		buf_release(&a->q[(a->head + i) % ASYNC_BATCHES]);
	}
out:
	ascan_drop(&a->cur, 0, h);
	buf_release(&a->cur);
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	free(a);
	free(jobs);
	return rc;
}

int fleet_job_is_windows(const struct fleet_job *job)
{
	const char *t = job->job_type;

	return !t || !*t || strncasecmp(t, "win", 3) == 0 || strcasecmp(t, "w") == 0;
}

/* A needle's letters from s on, quotes and backslashes allowed between
 * them (needle in lower case). */
static int needle_at(const char *s, const char *e, const char *needle)
{
	for (; *needle; needle++, s++) {
		while (s < e && (*s == '"' || *s == '\\'))
			s++;
		/* c | 0x20 is the needle's lower-case letter only for that
		 * letter in either case */
		if (s == e || (*s | 0x20) != *needle)
			return 0;
	}
	return 1;
}

/* Does a needle, or a \u escape, start at s? */
static int may_start_at(const char *s, const char *e)
{
	int c = *s | 0x20;

	return (c == 's' && needle_at(s, e, "smarte")) ||
	       (c == 'm' && needle_at(s, e, "mailsh")) ||
	       (*s == '\\' && s + 1 < e && s[1] == 'u');
}

int fleet_may_run_connector(const char *text, size_t len)
{
	const char *s = text, *e = text + len;

#ifdef __SSE2__
	/* 16 bytes at a time: only an 's', an 'm' (either case) or a
	 * backslash can start a match, and most blocks of a job's text
	 * have few */
	while (e - s >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
		__m128i lc = _mm_or_si128(v, _mm_set1_epi8(0x20));
		unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(
			_mm_or_si128(_mm_cmpeq_epi8(lc, _mm_set1_epi8('s')),
				     _mm_cmpeq_epi8(lc, _mm_set1_epi8('m'))),
			_mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));

		for (; m; m &= m - 1)
			if (may_start_at(s + __builtin_ctz(m), e))
				return 1;
		s += 16;
	}
#endif
	for (; s < e; s++)
		if (may_start_at(s, e))
			return 1;
	return 0;
}

/* Notification export. */

#define NOTIFY_MAX ((size_t)1024 * 1024)

/* A value as a string: strings, numbers and booleans accepted. */
static const char *nval(const cJSON *o, const char *key, char *tmp, size_t tsz)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (cJSON_IsString(v) && v->valuestring && *v->valuestring)
		return v->valuestring;
	if (cJSON_IsNumber(v)) {
		snprintf(tmp, tsz, "%d", v->valueint);
		return tmp;
	}
	if (cJSON_IsBool(v)) {
		snprintf(tmp, tsz, "%s", cJSON_IsTrue(v) ? "true" : "false");
		return tmp;
	}
	return NULL;
}

static int truthy(const char *s)
{
	return s && (strcasecmp(s, "true") == 0 || strcasecmp(s, "yes") == 0 ||
		     strcmp(s, "1") == 0);
}

static int notify_file(const char *path, const char *rel,
		       const struct fleet_handlers *h,
		       struct fleet_notify_slot **v, size_t *n, size_t *alloc,
		       struct ms_err *err)
{
	struct ms_err lerr = MS_ERR_INIT;
	char *raw = NULL, *text = NULL;
	size_t rawlen = 0, len = 0;
	const char *end = NULL;
	cJSON *root = NULL;
	int slot, rc = 0;

	if (fs_read_file(path, NOTIFY_MAX, &raw, &rawlen, &lerr) < 0 ||
	    fleet_to_utf8(raw, rawlen, &text, &len, &lerr) < 0) {
		fleet_problem(h, rel, 0, "%s", lerr.msg);
		goto done;
	}
	root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (!cJSON_IsObject(root)) {
		fleet_problem(h, rel, root ? 1 : fleet_line_of(text, end ? (size_t)(end - text) : 0),
			root ? "not a notification export: expected a JSON object" :
			"invalid JSON");
		goto done;
	}
	for (slot = 1; slot <= 4; slot++) {
		char key[32], t1[32], t2[32];
		const char *server, *s;
		struct fleet_notify_slot *ns;

		snprintf(key, sizeof(key), "SMTPSERVER%d", slot);
		if (!(server = nval(root, key, t1, sizeof(t1))))
			continue;
		if (*n == *alloc) {
			struct fleet_notify_slot *nv;
			*alloc = *alloc ? *alloc * 2 : 8;
			if (!(nv = realloc(*v, *alloc * sizeof(*nv)))) {
				rc = err_nomem(err);
				goto done;
			}
			*v = nv;
		}
		ns = &(*v)[*n];
		memset(ns, 0, sizeof(*ns));
		(*n)++;
		ns->slot = slot;
		ns->source = strdup(rel);
		ns->server = strdup(server);
		snprintf(key, sizeof(key), "SMTPPORT%d", slot);
		if ((s = nval(root, key, t2, sizeof(t2))))
			ns->port = atoi(s);
		snprintf(key, sizeof(key), "SMTPUSER%d", slot);
		if ((s = nval(root, key, t2, sizeof(t2))))
			ns->user = strdup(s);
		snprintf(key, sizeof(key), "SMTPPASSWORD%d", slot);
		ns->has_password = nval(root, key, t2, sizeof(t2)) != NULL;
		snprintf(key, sizeof(key), "SMTPSSL%d", slot);
		ns->ssl = truthy(nval(root, key, t2, sizeof(t2)));
		snprintf(key, sizeof(key), "SMTPAPPID%d", slot);
		if ((s = nval(root, key, t2, sizeof(t2))))
			ns->app_id = strdup(s);
		snprintf(key, sizeof(key), "SMTPSECRET%d", slot);
		ns->has_secret = nval(root, key, t2, sizeof(t2)) != NULL;
		snprintf(key, sizeof(key), "SMTPTENANTID%d", slot);
		if ((s = nval(root, key, t2, sizeof(t2))))
			ns->tenant_id = strdup(s);
		if (!ns->source || !ns->server) {
			rc = err_nomem(err);
			goto done;
		}
	}
done:
	cJSON_Delete(root);
	if (raw) {
		mem_wipe(raw, rawlen);
		free(raw);
	}
	if (text) {
		mem_wipe(text, len);
		free(text);
	}
	return rc;
}

int fleet_read_notify(const char *dir, const struct fleet_handlers *h,
		      struct fleet_notify_slot **out, size_t *n,
		      struct ms_err *err)
{
	struct fleet_dirlist d;
	char *nd;
	size_t i, alloc = 0;
	int rc = 0;

	*out = NULL;
	*n = 0;
	if (!(nd = fs_join(dir, "notify")))
		return err_nomem(err);
	if (!fleet_is_dir(nd)) {
		free(nd);
		return 0;
	}
	if (fleet_dirlist_read(nd, &d, err) < 0) {
		free(nd);
		return -1;
	}
	for (i = 0; i < d.n && rc == 0; i++) {
		char *p, *r;

		if (!fleet_ends_with_ci(d.names[i], ".json"))
			continue;
		p = fs_join(nd, d.names[i]);
		r = fs_join("notify", d.names[i]);
		if (!p || !r)
			rc = err_nomem(err);
		else if (!not_a_file(p, r, h))
			rc = notify_file(p, r, h, out, n, &alloc, err);
		free(p);
		free(r);
	}
	fleet_dirlist_free(&d);
	free(nd);
	if (rc < 0) {
		fleet_notify_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

void fleet_notify_free(struct fleet_notify_slot *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].source);
		free(v[i].server);
		free(v[i].user);
		free(v[i].app_id);
		free(v[i].tenant_id);
	}
	free(v);
}
