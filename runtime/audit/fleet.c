/*
 * fleet.c - job exports (JSON through cJSON, XML through libxml2's
 * streaming reader), Windows paths resolved inside the fleet folder,
 * INI inventory and the notification export.
 */
#include "audit/fleet.h"

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
#include <libxml/xmlreader.h>
#include <openssl/crypto.h>

#include "base/buf.h"
#include "base/fsutil.h"
#include "base/utf8.h"

static void problem(const struct fleet_handlers *h, const char *file, int line,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void problem(const struct fleet_handlers *h, const char *file, int line,
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
			return err_set(err, MS_ERR_NOMEM, "out of memory");
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
		return err_set(err, MS_ERR_NOMEM, "out of memory");
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

/* JSON exports. */

static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (cJSON_IsString(v) && v->valuestring)
		return v->valuestring;
	return NULL;
}

/* A field that is a string or an object with one of the given names. */
static const char *jname(const cJSON *o, const char *key, const char *k1,
			 const char *k2)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	const char *s;

	if (cJSON_IsString(v) && v->valuestring)
		return v->valuestring;
	if (cJSON_IsObject(v)) {
		if (k1 && (s = jstr(v, k1)))
			return s;
		if (k2 && (s = jstr(v, k2)))
			return s;
	}
	return NULL;
}

static int line_of(const char *text, size_t off)
{
	size_t i;
	int line = 1;

	for (i = 0; i < off && text[i]; i++)
		if (text[i] == '\n')
			line++;
	return line;
}

/*
 * JSON exports are streamed: a small reader decodes the file (UTF-8, or
 * UTF-16 on the fly) and walks the few levels whose shape it knows (the
 * root, "jobs", "scheduleList", a schedule's "jobList"); each job object
 * is captured on its own (at most JSON_MAX_JOB bytes) and only then parsed
 * with cJSON.  Memory stays flat whatever the size of the export; the
 * parts that are skipped are only checked for balanced brackets and
 * strings.
 */

#define JSON_MAX_JOB FLEET_MAX_JOB
#define JSON_MAX_KEY 256

struct jr {
	FILE *f;
	const struct fleet_handlers *h;
	const char *rel;
	int enc;                   /* 0 UTF-8, 1 UTF-16LE, 2 UTF-16BE */
	unsigned char raw[65536];
	size_t rlen, rpos;
	char pend[4];              /* UTF-8 bytes of a decoded code point */
	int plen, ppos;
	int peek;                  /* -2: nothing peeked */
	int line;
	int failed;                /* a problem was reported: stop */
	int cb_failed;             /* a callback failed: stop, err is set */
	size_t jobs;
	struct ms_err *err;
};

static int jr_raw(struct jr *r)
{
	if (r->rpos == r->rlen) {
		r->rlen = fread(r->raw, 1, sizeof(r->raw), r->f);
		r->rpos = 0;
		if (r->rlen == 0)
			return -1;
	}
	return r->raw[r->rpos++];
}

static void jr_fail(struct jr *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void jr_fail(struct jr *r, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (r->failed || r->cb_failed)
		return;
	r->failed = 1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	problem(r->h, r->rel, r->line, "%s", msg);
}

/* Next byte of UTF-8 text, -1 at the end (or after a failure). */
static int jr_get(struct jr *r)
{
	int c;

	if (r->peek != -2) {
		c = r->peek;
		r->peek = -2;
		return c;
	}
	if (r->failed || r->cb_failed)
		return -1;
	if (r->ppos < r->plen) {
		c = (unsigned char)r->pend[r->ppos++];
	} else if (r->enc == 0) {
		c = jr_raw(r);
	} else {
		int a = jr_raw(r), b;
		unsigned long u, v;

		if (a < 0)
			return -1;
		if ((b = jr_raw(r)) < 0) {
			jr_fail(r, "odd length for UTF-16 text");
			return -1;
		}
		u = r->enc == 1 ? (unsigned long)(a | b << 8) : (unsigned long)(a << 8 | b);
		if (u >= 0xD800 && u <= 0xDBFF) {
			int x = jr_raw(r), y = jr_raw(r);
			if (x < 0 || y < 0) {
				jr_fail(r, "invalid UTF-16: a truncated surrogate pair");
				return -1;
			}
			v = r->enc == 1 ? (unsigned long)(x | y << 8) :
					  (unsigned long)(x << 8 | y);
			if (v < 0xDC00 || v > 0xDFFF) {
				jr_fail(r, "invalid UTF-16: an unpaired surrogate");
				return -1;
			}
			u = 0x10000 + ((u - 0xD800) << 10) + (v - 0xDC00);
		} else if (u >= 0xDC00 && u <= 0xDFFF) {
			jr_fail(r, "invalid UTF-16: an unpaired surrogate");
			return -1;
		}
		r->plen = (int)utf8_encode((uint32_t)u, r->pend);
		r->ppos = 1;
		c = (unsigned char)r->pend[0];
	}
	if (c == '\n')
		r->line++;
	return c;
}

static int jr_ws(struct jr *r)
{
	int c;

	do
		c = jr_get(r);
	while (c == ' ' || c == '\t' || c == '\r' || c == '\n');
	return c;
}

static void jr_eof(struct jr *r)
{
	jr_fail(r, "invalid JSON: unexpected end of file (truncated export?)");
}

/* Copy (when b is not NULL) or skip a string whose opening quote was
 * read. */
static int jr_string(struct jr *r, struct buf *b)
{
	struct ms_err lerr = MS_ERR_INIT;
	int c;

	if (b && buf_append(b, "\"", 1, &lerr) < 0)
		goto toobig;
	for (;;) {
		char ch;

		/* fast path: a run of plain bytes straight from the read buffer
		 * (UTF-8 input, nothing peeked or pending) */
		if (r->enc == 0 && r->peek == -2 && r->ppos >= r->plen &&
		    !r->failed && !r->cb_failed && r->rpos < r->rlen) {
			const unsigned char *s0 = r->raw + r->rpos, *q = s0,
					    *e = r->raw + r->rlen;

			while (q < e && *q >= 0x20 && *q != '"' && *q != '\\')
				q++;
			if (q > s0) {
				if (b && buf_append(b, s0, (size_t)(q - s0), &lerr) < 0)
					goto toobig;
				r->rpos += (size_t)(q - s0);
				continue;
			}
		}
		if ((c = jr_get(r)) < 0) {
			jr_eof(r);
			return -1;
		}
		if (c < 0x20) {
			jr_fail(r, "invalid JSON: a control character in a string");
			return -1;
		}
		ch = (char)c;
		if (b && buf_append(b, &ch, 1, &lerr) < 0)
			goto toobig;
		if (c == '"')
			return 0;
		if (c == '\\') {
			if ((c = jr_get(r)) < 0) {
				jr_eof(r);
				return -1;
			}
			ch = (char)c;
			if (b && buf_append(b, &ch, 1, &lerr) < 0)
				goto toobig;
		}
	}
toobig:
	jr_fail(r, "a job is larger than %zu bytes", JSON_MAX_JOB);
	return -1;
}

/* Inside a value: the run of bytes before the next string or bracket
 * (blanks, ':', ',', numbers, literals) straight from the read buffer,
 * as jr_get() would give them one by one (UTF-8 input, nothing peeked or
 * pending).  A run that would not fit in b is left to the byte-by-byte
 * path, which fails at the same byte and line as ever. */
static void jr_value_run(struct jr *r, struct buf *b)
{
	const unsigned char *s0, *q, *e;
	struct ms_err lerr = MS_ERR_INIT;
	int lines = 0;

	if (r->enc != 0 || r->peek != -2 || r->ppos < r->plen || r->failed ||
	    r->cb_failed || r->rpos >= r->rlen)
		return;
	s0 = q = r->raw + r->rpos;
	e = r->raw + r->rlen;
	for (; q < e; q++) {
		if (*q == '"' || *q == '{' || *q == '[' || *q == '}' || *q == ']')
			break;
		lines += *q == '\n';
	}
	if (q == s0 || (b && (b->len + (size_t)(q - s0) > b->cap ||
			      buf_append(b, s0, (size_t)(q - s0), &lerr) < 0)))
		return;
	r->rpos += (size_t)(q - s0);
	r->line += lines;
}

/* Copy or skip a whole value whose first character c was read.  Nested
 * values are followed with a counter, not recursion. */
static int jr_value(struct jr *r, int c, struct buf *b)
{
	struct ms_err lerr = MS_ERR_INIT;
	char stack[JSON_MAX_KEY];
	int depth = 0;

	for (;;) {
		char ch = (char)c;

		if (c < 0) {
			jr_eof(r);
			return -1;
		}
		if (c == '"') {
			if (jr_string(r, b) < 0)
				return -1;
		} else {
			if (b && buf_append(b, &ch, 1, &lerr) < 0) {
				jr_fail(r, "a job is larger than %zu bytes", JSON_MAX_JOB);
				return -1;
			}
			if (c == '{' || c == '[') {
				if (depth == (int)sizeof(stack)) {
					jr_fail(r, "invalid JSON: nested too deeply");
					return -1;
				}
				stack[depth++] = c == '{' ? '}' : ']';
			} else if (c == '}' || c == ']') {
				if (depth == 0 || stack[depth - 1] != c) {
					jr_fail(r, "invalid JSON: unexpected '%c'", c);
					return -1;
				}
				depth--;
			}
		}
		if (depth == 0) {
			/* a scalar ends before the next delimiter */
			if (c == '"' || c == '}' || c == ']')
				return 0;
			for (;;) {
				int p = jr_get(r);
				if (p < 0 || strchr(",}] \t\r\n", p)) {
					r->peek = p;
					return 0;
				}
				ch = (char)p;
				if (b && buf_append(b, &ch, 1, &lerr) < 0) {
					jr_fail(r, "a job is larger than %zu bytes", JSON_MAX_JOB);
					return -1;
				}
			}
		}
		jr_value_run(r, b);
		c = jr_get(r);
	}
}

/* Read a string token and decode it into out (truncated to outsz). */
static int jr_key(struct jr *r, char *out, size_t outsz)
{
	struct buf b;
	cJSON *s;
	int rc = -1;

	buf_init(&b, JSON_MAX_JOB);
	if (jr_string(r, &b) < 0)
		goto done;
	s = cJSON_ParseWithLength(b.data, b.len);
	if (!cJSON_IsString(s)) {
		cJSON_Delete(s);
		jr_fail(r, "invalid JSON: a bad string");
		goto done;
	}
	snprintf(out, outsz, "%s", s->valuestring);
	cJSON_Delete(s);
	rc = 0;
done:
	buf_release(&b);
	return rc;
}

struct jsched {
	char name[JSON_MAX_KEY];
	int have_name;
	cJSON **pending;       /* jobs seen before the schedule's name */
	int *pending_line;
	size_t npending;
};

static int emit_job(struct jr *r, const cJSON *j, const char *sched, int line)
{
	struct fleet_job fj;
	const cJSON *d;
	const char *s;

	memset(&fj, 0, sizeof(fj));
	fj.source = r->rel;
	fj.line = line;
	fj.name = (s = jstr(j, "name")) ? s : "";
	fj.schedule = (s = jname(j, "schedule", "name", NULL)) ? s :
		      (s = jstr(j, "scheduleName")) ? s : sched ? sched : "";
	fj.machine = (s = jname(j, "primaryMachine", "name", NULL)) ? s :
		     (s = jstr(j, "machine")) ? s : "";
	fj.job_type = (s = jname(j, "jobType", "description", "name")) ? s : "";
	d = cJSON_GetObjectItemCaseSensitive(j, "details");
	if (!cJSON_IsObject(d))
		d = cJSON_GetObjectItemCaseSensitive(j, "windowsDetails");
	if (!cJSON_IsObject(d))
		d = j;
	fj.command_line = jstr(d, "commandLine");
	fj.working_dir = jstr(d, "workingDirectory");
	fj.batch_user = jname(d, "batchUser", "loginName", "name");
	if (r->h->job && r->h->job(&fj, r->h->ctx, r->err) < 0) {
		r->cb_failed = 1;
		return -1;
	}
	return 0;
}

static int flush_pending(struct jr *r, struct jsched *s)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < s->npending; i++) {
		if (rc == 0)
			rc = emit_job(r, s->pending[i], s->name, s->pending_line[i]);
		cJSON_Delete(s->pending[i]);
	}
	free(s->pending);
	free(s->pending_line);
	s->pending = NULL;
	s->pending_line = NULL;
	s->npending = 0;
	return rc;
}

/* An array of jobs whose '[' was read. */
static int jr_jobs(struct jr *r, struct jsched *s)
{
	struct buf b;
	int c, rc = -1;

	buf_init(&b, JSON_MAX_JOB);
	if ((c = jr_ws(r)) == ']') {
		rc = 0;
		goto done;
	}
	for (;;) {
		int line = r->line;
		cJSON *j;

		if (c < 0) {
			jr_eof(r);
			goto done;
		}
		buf_reset(&b);
		if (c != '{') {
			r->jobs++;
			if (jr_value(r, c, NULL) < 0)
				goto done;
			problem(r->h, r->rel, line, "job #%zu is not an object", r->jobs);
		} else {
			if (jr_value(r, c, &b) < 0)
				goto done;
			j = cJSON_ParseWithLength(b.data, b.len);
			if (!j) {
				jr_fail(r, "invalid JSON in job #%zu", r->jobs + 1);
				goto done;
			}
			r->jobs++;
			if (s && !s->have_name) {
				cJSON **np = realloc(s->pending, (s->npending + 1) * sizeof(*np));
				int *nl = np ? realloc(s->pending_line,
						       (s->npending + 1) * sizeof(*nl)) : NULL;
				if (np)
					s->pending = np;
				if (!np || !nl) {
					cJSON_Delete(j);
					err_set(r->err, MS_ERR_NOMEM, "out of memory");
					r->cb_failed = 1;
					goto done;
				}
				s->pending_line = nl;
				s->pending[s->npending] = j;
				s->pending_line[s->npending++] = line;
			} else {
				int e = emit_job(r, j, s ? s->name : NULL, line);
				cJSON_Delete(j);
				if (e < 0)
					goto done;
			}
		}
		c = jr_ws(r);
		if (c == ']')
			break;
		if (c != ',') {
			if (c < 0)
				jr_eof(r);
			else
				jr_fail(r, "invalid JSON: expected ',' or ']' between jobs");
			goto done;
		}
		c = jr_ws(r);
	}
	rc = 0;
done:
	buf_wipe(&b);
	return rc;
}

/* Members of an object whose '{' was read; member() handles each key
 * (the ':' consumed, c the first character of the value). */
typedef int (*member_fn)(struct jr *r, const char *key, int c, void *ctx);

static int jr_object(struct jr *r, member_fn member, void *ctx)
{
	char key[JSON_MAX_KEY];
	int c = jr_ws(r);

	if (c == '}')
		return 0;
	for (;;) {
		if (c != '"') {
			if (c < 0)
				jr_eof(r);
			else
				jr_fail(r, "invalid JSON: expected a member name");
			return -1;
		}
		if (jr_key(r, key, sizeof(key)) < 0)
			return -1;
		if ((c = jr_ws(r)) != ':') {
			if (c < 0)
				jr_eof(r);
			else
				jr_fail(r, "invalid JSON: expected ':' after \"%s\"", key);
			return -1;
		}
		if (member(r, key, jr_ws(r), ctx) < 0)
			return -1;
		c = jr_ws(r);
		if (c == '}')
			return 0;
		if (c != ',') {
			if (c < 0)
				jr_eof(r);
			else
				jr_fail(r, "invalid JSON: expected ',' or '}'");
			return -1;
		}
		c = jr_ws(r);
	}
}

struct schedctx {
	struct jsched s;
	int has_jobs;
};

static int sched_member(struct jr *r, const char *key, int c, void *ctx)
{
	struct schedctx *sc = ctx;

	if (strcmp(key, "name") == 0 && c == '"') {
		if (jr_key(r, sc->s.name, sizeof(sc->s.name)) < 0)
			return -1;
		sc->s.have_name = 1;
		return flush_pending(r, &sc->s);
	}
	if ((strcmp(key, "jobList") == 0 || strcmp(key, "jobs") == 0) && c == '[') {
		sc->has_jobs = 1;
		return jr_jobs(r, &sc->s);
	}
	return jr_value(r, c, NULL);
}

static int jr_schedules(struct jr *r)
{
	int c = jr_ws(r);

	if (c == ']')
		return 0;
	for (;;) {
		if (c == '{') {
			struct schedctx sc;
			int rc, line = r->line;

			memset(&sc, 0, sizeof(sc));
			rc = jr_object(r, sched_member, &sc);
			/* jobs of a schedule without a name still count */
			if (flush_pending(r, &sc.s) < 0 || rc < 0)
				return -1;
			if (!sc.has_jobs)
				problem(r->h, r->rel, line, "schedule without a jobList");
		} else if (c < 0) {
			jr_eof(r);
			return -1;
		} else if (jr_value(r, c, NULL) < 0) {
			return -1;
		}
		c = jr_ws(r);
		if (c == ']')
			return 0;
		if (c != ',') {
			if (c < 0)
				jr_eof(r);
			else
				jr_fail(r, "invalid JSON: expected ',' or ']' between schedules");
			return -1;
		}
		c = jr_ws(r);
	}
}

struct rootctx {
	int shape;
};

static int root_member(struct jr *r, const char *key, int c, void *ctx)
{
	struct rootctx *rc = ctx;

	if (strcmp(key, "jobs") == 0 && c == '[') {
		rc->shape = 1;
		return jr_jobs(r, NULL);
	}
	if (strcmp(key, "scheduleList") == 0 && c == '[') {
		rc->shape = 1;
		return jr_schedules(r);
	}
	return jr_value(r, c, NULL);
}

static int scan_json(const char *path, const char *rel,
		     const struct fleet_handlers *h, struct ms_err *err)
{
	struct jr *r;
	struct rootctx rc = { 0 };
	unsigned char bom[4];
	size_t n;
	int c, ret = 0;

	if (!(r = calloc(1, sizeof(*r))))
		return err_set(err, MS_ERR_NOMEM, "out of memory");
	r->h = h;
	r->rel = rel;
	r->err = err;
	r->line = 1;
	r->peek = -2;
	if (!(r->f = fopen(path, "rb"))) {
		problem(h, rel, 0, "cannot open '%s': %s", path, strerror(errno));
		free(r);
		return 0;
	}
	/* encoding from the first bytes */
	n = fread(r->raw, 1, sizeof(r->raw), r->f);
	r->rlen = n;
	memcpy(bom, r->raw, n < 4 ? n : 4);
	if (n >= 2 && bom[0] == 0xFF && bom[1] == 0xFE) {
		r->enc = 1;
		r->rpos = 2;
	} else if (n >= 2 && bom[0] == 0xFE && bom[1] == 0xFF) {
		r->enc = 2;
		r->rpos = 2;
	} else if (n >= 4 && bom[0] != 0 && bom[1] == 0 && bom[3] == 0) {
		r->enc = 1;
	} else if (n >= 3 && bom[0] == 0xEF && bom[1] == 0xBB && bom[2] == 0xBF) {
		r->rpos = 3;
	}
	c = jr_ws(r);
	if (c < 0 && !r->failed) {
		problem(h, rel, 0, "empty export");
	} else if (c == '[') {
		jr_jobs(r, NULL);
	} else if (c == '{') {
		if (jr_object(r, root_member, &rc) == 0 && !rc.shape)
			problem(h, rel, 1, "not a job export: expected a JSON array of jobs, "
				"{\"jobs\":[...]} or {\"scheduleList\":[...]}");
	} else if (c >= 0) {
		jr_fail(r, "not a job export: expected a JSON array or object");
	}
	if (!r->failed && !r->cb_failed && c >= 0 && (c = jr_ws(r)) >= 0)
		jr_fail(r, "invalid JSON: unexpected data after the end");
	if (ferror(r->f))
		problem(h, rel, 0, "cannot read '%s'", path);
	if (r->cb_failed)
		ret = -1;
	fclose(r->f);
	free(r);
	return ret;
}

/* XML exports (Schedule Extract). */

enum xfield { XF_NONE = -1, XF_SKD, XF_JNAME, XF_PM, XF_TYPE, XF_CMD, XF_WD,
	      XF_WUID, XF_COUNT };
static const char *const xfield_names[XF_COUNT] = {
	"skdname", "jname", "pmname", "jobtype", "cmd_line", "working_dir", "wuid"
};

struct xerr {
	int set;
	int line;
	char msg[512];
};

static void xml_error(void *arg, const xmlError *e)
{
	struct xerr *x = arg;

	if (x->set || !e || e->level < XML_ERR_ERROR)
		return;
	x->set = 1;
	x->line = e->line;
	snprintf(x->msg, sizeof(x->msg), "%s", e->message ? e->message : "XML error");
	/* libxml2 messages end with a newline */
	x->msg[strcspn(x->msg, "\r\n")] = '\0';
}

#define XML_MAX_FIELD (64 * 1024)

/* Pretty-printed exports put line breaks and indentation around values. */
static void trim_buf(struct buf *b)
{
	size_t s = 0;

	while (b->len && isspace((unsigned char)b->data[b->len - 1]))
		b->data[--b->len] = '\0';
	while (s < b->len && isspace((unsigned char)b->data[s]))
		s++;
	if (s) {
		memmove(b->data, b->data + s, b->len - s + 1);
		b->len -= s;
	}
}

static int scan_xml(const char *path, const char *rel,
		    const struct fleet_handlers *h, struct ms_err *err)
{
	struct buf f[XF_COUNT];
	struct xerr xe;
	xmlTextReaderPtr r;
	enum xfield cur = XF_NONE;
	int in_job = 0, job_line = 0, rc = 0, ret, i, saw_root = 0;

	memset(&xe, 0, sizeof(xe));
	for (i = 0; i < XF_COUNT; i++)
		buf_init(&f[i], XML_MAX_FIELD);
	r = xmlReaderForFile(path, NULL, XML_PARSE_NONET | XML_PARSE_NOCDATA);
	if (!r) {
		problem(h, rel, 0, "cannot open XML export");
		return 0;
	}
	xmlTextReaderSetStructuredErrorHandler(r, (xmlStructuredErrorFunc)xml_error, &xe);
	while ((ret = xmlTextReaderRead(r)) == 1) {
		int type = xmlTextReaderNodeType(r);
		const char *name = (const char *)xmlTextReaderConstLocalName(r);

		if (type == XML_READER_TYPE_ELEMENT) {
			if (!saw_root) {
				saw_root = 1;
				if (strcmp(name, "jobs") && strcmp(name, "msg") &&
				    strcmp(name, "job")) {
					problem(h, rel, xmlTextReaderGetParserLineNumber(r),
						"not a Schedule Extract export: root element <%s>",
						name);
					goto out;
				}
			}
			if (strcmp(name, "job") == 0 && !in_job &&
			    !xmlTextReaderIsEmptyElement(r)) {
				in_job = 1;
				job_line = (int)xmlGetLineNo(xmlTextReaderCurrentNode(r));
				if (job_line <= 0)
					job_line = xmlTextReaderGetParserLineNumber(r);
				for (i = 0; i < XF_COUNT; i++)
					buf_reset(&f[i]);
				continue;
			}
			cur = XF_NONE;
			if (in_job)
				for (i = 0; i < XF_COUNT; i++)
					if (strcmp(name, xfield_names[i]) == 0)
						cur = (enum xfield)i;
			if (xmlTextReaderIsEmptyElement(r))
				cur = XF_NONE;
		} else if ((type == XML_READER_TYPE_TEXT ||
			    type == XML_READER_TYPE_CDATA ||
			    type == XML_READER_TYPE_SIGNIFICANT_WHITESPACE) &&
			   in_job && cur != XF_NONE) {
			const char *v = (const char *)xmlTextReaderConstValue(r);
			struct ms_err lerr = MS_ERR_INIT;
			if (v && buf_appends(&f[cur], v, &lerr) < 0) {
				problem(h, rel, xmlTextReaderGetParserLineNumber(r),
					"<%s> is too long", xfield_names[cur]);
				goto out;
			}
		} else if (type == XML_READER_TYPE_END_ELEMENT) {
			if (in_job && strcmp(name, "job") == 0) {
				struct fleet_job fj;
				for (i = 0; i < XF_COUNT; i++)
					trim_buf(&f[i]);
#define FV(x) (f[x].len ? f[x].data : "")
#define FN(x) (f[x].len ? f[x].data : NULL)
				memset(&fj, 0, sizeof(fj));
				fj.source = rel;
				fj.line = job_line;
				fj.schedule = FV(XF_SKD);
				fj.name = FV(XF_JNAME);
				fj.machine = FV(XF_PM);
				fj.job_type = FV(XF_TYPE);
				fj.command_line = FN(XF_CMD);
				fj.working_dir = FN(XF_WD);
				fj.batch_user = FN(XF_WUID);
#undef FV
#undef FN
				in_job = 0;
				if (h->job && (rc = h->job(&fj, h->ctx, err)) < 0)
					goto out;
			}
			cur = XF_NONE;
		}
	}
	if (ret < 0 || xe.set) {
		problem(h, rel, xe.line ? xe.line : xmlTextReaderGetParserLineNumber(r),
			"invalid XML: %s", xe.set ? xe.msg : "parse error");
	} else if (!saw_root) {
		problem(h, rel, 0, "empty XML export");
	}
out:
	xmlFreeTextReader(r);
	for (i = 0; i < XF_COUNT; i++)
		buf_wipe(&f[i]);
	return rc;
}

static int scan_tree(const char *top, const char *path, const char *rel,
		     int depth, const struct fleet_handlers *h, size_t *files,
		     struct ms_err *err)
{
	struct fleet_dirlist d;
	size_t i;
	int rc = 0;

	if (depth > FLEET_MAX_DEPTH) {
		problem(h, rel, 0, "folder nesting deeper than %d levels: skipped",
			FLEET_MAX_DEPTH);
		return 0;
	}
	if (fleet_dirlist_read(path, &d, err) < 0) {
		if (depth == 0)
			return -1;
		problem(h, rel, 0, "%s", err->msg);
		err_clear(err);
		return 0;
	}
	for (i = 0; i < d.n && rc == 0; i++) {
		char *p = fs_join(path, d.names[i]);
		char *r = fs_join(rel, d.names[i]);

		if (!p || !r) {
			free(p);
			free(r);
			rc = err_set(err, MS_ERR_NOMEM, "out of memory");
			break;
		}
		if (fleet_is_dir(p)) {
			/* do not follow symlinked folders (loops) */
			if (!fleet_is_symlink(p))
				rc = scan_tree(top, p, r, depth + 1, h, files, err);
		} else if (fleet_ends_with_ci(d.names[i], ".json") ||
			   fleet_ends_with_ci(d.names[i], ".xml")) {
			rc = fleet_ends_with_ci(d.names[i], ".xml") ? scan_xml(p, r, h, err) :
								scan_json(p, r, h, err);
			++*files;
			if (rc == 0 && h->file_done)
				h->file_done(r, *files, h->ctx);
		}
		free(p);
		free(r);
	}
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

		if (!p || !r) {
			rc = err_set(err, MS_ERR_NOMEM, "out of memory");
		} else if (fleet_is_dir(p)) {
			if (!fleet_is_symlink(p))
				rc = ignored_tree(p, r, depth + 1, out, n, alloc, err);
		} else if (!fleet_ends_with_ci(d.names[i], ".json") &&
			   !fleet_ends_with_ci(d.names[i], ".xml")) {
			if (*n == *alloc) {
				size_t na = *alloc ? *alloc * 2 : 8;
				char **nv = realloc(*out, na * sizeof(*nv));

				if (!nv) {
					rc = err_set(err, MS_ERR_NOMEM, "out of memory");
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
		return err_set(err, MS_ERR_NOMEM, "out of memory");
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
		return err_set(err, MS_ERR_NOMEM, "out of memory");
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

enum { EV_JOB = 1, EV_PROBLEM, EV_FILE_DONE };

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
		return err_set(err, MS_ERR_NOMEM, "out of memory");
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

static void *async_reader(void *arg)
{
	struct ascan *a = arg;
	struct fleet_handlers h = { async_job, async_problem, async_file_done, a,
				   NULL, NULL };
	struct ms_err err = MS_ERR_INIT;
	size_t files = 0;
	int rc;

	rc = scan_tree(a->dir, a->jobs, "jobs", 0, &h, &files, &err);
	if (a->oom && rc == 0)
		rc = err_set(&err, MS_ERR_NOMEM, "out of memory");
	if (a->cur.len)
		(void)ascan_push(a);
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
		for (i = kind == EV_JOB ? 8 : kind == EV_PROBLEM ? 2 : 1; i > 0; i--)
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
		return err_set(err, MS_ERR_NOMEM, "out of memory");
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

/* Paths. */

const char *fleet_where_name(enum fleet_where w)
{
	switch (w) {
	case FLEET_FOUND: return "found";
	case FLEET_NOT_FOUND: return "not-found";
	case FLEET_AMBIGUOUS: return "ambiguous";
	case FLEET_UNRESOLVED: return "unresolved";
	case FLEET_UNSUPPORTED: return "unsupported";
	}
	return "unknown";
}

void fleet_path_release(struct fleet_path *p)
{
	if (!p)
		return;
	free(p->windows_path);
	free(p->file);
	free(p->rel);
	free(p->detail);
	memset(p, 0, sizeof(*p));
}

/* The 8.3 form of a long name's parts: upper case, blanks and extra dots
 * removed, a few characters replaced by '_'. */
static void short_parts(const char *name, char *base, size_t bsz, char *ext,
			size_t esz)
{
	const char *dot = strrchr(name, '.'), *s;
	size_t k = 0;

	if (dot == name)
		dot = NULL;
	for (s = name; *s && s != dot && k + 1 < bsz; s++) {
		if (*s == ' ' || *s == '.')
			continue;
		base[k++] = strchr("+,;=[]", *s) ? '_' : (char)toupper((unsigned char)*s);
	}
	base[k] = '\0';
	k = 0;
	if (dot)
		for (s = dot + 1; *s && k < 3 && k + 1 < esz; s++) {
			if (*s == ' ')
				continue;
			ext[k++] = strchr("+,;=[]", *s) ? '_' : (char)toupper((unsigned char)*s);
		}
	ext[k] = '\0';
}

/* Parse "PROGRA~1.EXT": prefix, number, extension.  0 if not 8.3-ish. */
static int parse_short(const char *s, char *prefix, size_t psz, long *num,
		       char *ext, size_t esz)
{
	const char *t = strchr(s, '~'), *dot, *p;
	size_t n;

	if (!t || t == s || !isdigit((unsigned char)t[1]))
		return 0;
	n = (size_t)(t - s);
	if (n > 6 || n + 1 > psz)
		return 0;
	for (p = s; p < t; p++)
		prefix[p - s] = (char)toupper((unsigned char)*p);
	prefix[n] = '\0';
	*num = strtol(t + 1, (char **)&p, 10);
	dot = p;
	if (*dot == '.') {
		size_t m = strlen(dot + 1);
		if (m > 3 || m + 1 > esz)
			return 0;
		for (n = 0; n < m; n++)
			ext[n] = (char)toupper((unsigned char)dot[1 + n]);
		ext[m] = '\0';
	} else if (*dot == '\0') {
		ext[0] = '\0';
	} else {
		return 0;
	}
	return 1;
}

int fleet_short_name_matches(const char *shortname, const char *longname)
{
	char prefix[8], sext[4], base[256], lext[4];
	long num;

	if (!parse_short(shortname, prefix, sizeof(prefix), &num, sext, sizeof(sext)))
		return 0;
	short_parts(longname, base, sizeof(base), lext, sizeof(lext));
	return strncmp(base, prefix, strlen(prefix)) == 0 && strcmp(sext, lext) == 0;
}

static int set_str(char **dst, const char *src)
{
	free(*dst);
	*dst = src ? strdup(src) : NULL;
	return src && !*dst ? -1 : 0;
}

static int set_detail(struct fleet_path *p, enum fleet_where w, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int set_detail(struct fleet_path *p, enum fleet_where w, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	p->where = w;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	free(p->detail);
	p->detail = s;
	return s ? 0 : -1;
}

/* Expand %PROGRAMDATA% (and friends with fixed values); 0 when an unknown
 * reference remains. */
static char *expand_known(const char *s, int *unknown)
{
	static const struct { const char *name, *value; } vars[] = {
		{ "PROGRAMDATA", "C:\\ProgramData" },
		{ "ALLUSERSPROFILE", "C:\\ProgramData" },
		{ "SYSTEMDRIVE", "C:" },
		{ "PROGRAMFILES", "C:\\Program Files" },
		{ "PROGRAMFILES(X86)", "C:\\Program Files (x86)" },
		{ "WINDIR", "C:\\Windows" },
		{ "SYSTEMROOT", "C:\\Windows" },
	};
	struct ms_err err = MS_ERR_INIT;
	struct buf b;
	const char *p = s;

	*unknown = 0;
	buf_init(&b, 64 * 1024);
	while (*p) {
		const char *a = strchr(p, '%'), *z;
		size_t i;

		if (!a || !(z = strchr(a + 1, '%'))) {
			buf_appends(&b, p, &err);
			break;
		}
		buf_append(&b, p, (size_t)(a - p), &err);
		for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
			if (strlen(vars[i].name) == (size_t)(z - a - 1) &&
			    strncasecmp(a + 1, vars[i].name, (size_t)(z - a - 1)) == 0)
				break;
		if (i < sizeof(vars) / sizeof(vars[0])) {
			buf_appends(&b, vars[i].value, &err);
		} else {
			*unknown = 1;
			buf_append(&b, a, (size_t)(z - a + 1), &err);
		}
		p = z + 1;
	}
	if (err.code != MS_OK) {
		buf_release(&b);
		return NULL;
	}
	if (!b.data)
		return strdup("");
	return buf_detach(&b, NULL);
}

/* Find name in folder dir case-insensitively (or as an 8.3 short name).
 * Returns 1 found (*match malloc'd), 0 not found, 2 ambiguous (*why). */
static int find_entry(const char *dir, const char *name, char **match,
		      char **why, struct ms_err *err)
{
	struct fleet_dirlist d;
	char prefix[8], sext[4];
	long num = 0;
	size_t i, nexact = 0, nshort = 0, first_exact = 0, first_short = 0;
	struct buf cands;
	int r = 0;

	*match = NULL;
	*why = NULL;
	/* an exact match always wins: no need to list the folder */
	if (!strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..")) {
		char *p = fs_join(dir, name);
		struct stat st;
		int found = p && lstat(p, &st) == 0;

		free(p);
		if (found) {
			*match = strdup(name);
			return *match ? 1 : err_set(err, MS_ERR_NOMEM, "out of memory");
		}
	}
	if (fleet_dirlist_read(dir, &d, err) < 0) {
		err_clear(err);
		return 0;
	}
	for (i = 0; i < d.n; i++) {
		if (strcmp(d.names[i], name) == 0) {
			/* an exact match always wins */
			*match = strdup(d.names[i]);
			fleet_dirlist_free(&d);
			return *match ? 1 : err_set(err, MS_ERR_NOMEM, "out of memory");
		}
		if (strcasecmp(d.names[i], name) == 0) {
			if (!nexact++)
				first_exact = i;
		}
	}
	buf_init(&cands, 64 * 1024);
	if (nexact == 1) {
		*match = strdup(d.names[first_exact]);
		r = 1;
	} else if (nexact > 1) {
		for (i = 0; i < d.n; i++)
			if (strcasecmp(d.names[i], name) == 0)
				buf_appendf(&cands, err, "%s'%s'", cands.len ? ", " : "",
					    d.names[i]);
		r = 2;
	} else if (parse_short(name, prefix, sizeof(prefix), &num, sext, sizeof(sext))) {
		for (i = 0; i < d.n; i++) {
			if (!fleet_short_name_matches(name, d.names[i]))
				continue;
			if (!nshort++)
				first_short = i;
			buf_appendf(&cands, err, "%s'%s'", cands.len ? ", " : "",
				    d.names[i]);
		}
		if (nshort == 1 && num == 1) {
			*match = strdup(d.names[first_short]);
			r = 1;
		} else if (nshort > 0) {
			r = 2;
		}
	}
	if (r == 2) {
		if (nshort == 1)
			*why = strdup(cands.data);
		else
			*why = cands.data ? strdup(cands.data) : NULL;
	}
	buf_release(&cands);
	fleet_dirlist_free(&d);
	if ((r == 1 && !*match) || (r == 2 && !*why))
		return err_set(err, MS_ERR_NOMEM, "out of memory");
	return r;
}

/* Split a normalised absolute Windows path "X:\a\b" into components,
 * resolving "." and "..".  Returns the count, -1 when out of memory. */
static int path_components(const char *path, char ***out)
{
	char *copy = strdup(path), *tok, *save = NULL, **v = NULL;
	int n = 0, alloc = 0;

	*out = NULL;
	if (!copy)
		return -1;
	for (tok = strtok_r(copy, "\\", &save); tok; tok = strtok_r(NULL, "\\", &save)) {
		if (strcmp(tok, ".") == 0 || !*tok)
			continue;
		if (strcmp(tok, "..") == 0) {
			if (n > 1)
				free(v[--n]);
			continue;
		}
		if (n == alloc) {
			char **nv;
			alloc = alloc ? alloc * 2 : 16;
			if (!(nv = realloc(v, (size_t)alloc * sizeof(*nv))))
				goto nomem;
			v = nv;
		}
		if (!(v[n] = strdup(tok)))
			goto nomem;
		n++;
	}
	free(copy);
	*out = v;
	return n;
nomem:
	while (n > 0)
		free(v[--n]);
	free(v);
	free(copy);
	return -1;
}

static int is_drive_abs(const char *p)
{
	return isalpha((unsigned char)p[0]) && p[1] == ':' &&
	       (p[2] == '\\' || p[2] == '\0');
}

int fleet_resolve_path(const char *dir, const char *machine,
		       const char *winpath, const char *working_dir,
		       struct fleet_path *p, struct ms_err *err)
{
	char *expanded = NULL, *wd = NULL, *abs = NULL, *cur = NULL, *rel = NULL;
	char **comp = NULL;
	int ncomp = 0, unknown = 0, i, rc = -1;
	char *s;

	memset(p, 0, sizeof(*p));
	if (!winpath)
		winpath = "";
	if (!(expanded = expand_known(winpath, &unknown)))
		goto nomem;
	for (s = expanded; *s; s++)
		if (*s == '/')
			*s = '\\';
	if (strstr(expanded, "[[") || unknown) {
		if (set_str(&p->windows_path, expanded) < 0 ||
		    set_detail(p, FLEET_UNRESOLVED, "path '%s' holds an unexpanded %s",
			       expanded, strstr(expanded, "[[") ?
			       "[[PROPERTY]] reference" : "%VARIABLE% reference") < 0)
			goto nomem;
		rc = 0;
		goto done;
	}
	if (strncmp(expanded, "\\\\", 2) == 0) {
		if (set_str(&p->windows_path, expanded) < 0 ||
		    set_detail(p, FLEET_UNSUPPORTED,
			       "network path '%s' is not collected in the fleet folder",
			       expanded) < 0)
			goto nomem;
		rc = 0;
		goto done;
	}
	if (is_drive_abs(expanded)) {
		abs = strdup(expanded);
	} else if (isalpha((unsigned char)expanded[0]) && expanded[1] == ':') {
		/* "C:x.ini": relative to the drive's current folder; treat
		 * as the drive root */
		if (asprintf(&abs, "%c:\\%s", expanded[0], expanded + 2) < 0)
			abs = NULL;
	} else {
		if (working_dir && *working_dir) {
			int unk2 = 0;
			if (!(wd = expand_known(working_dir, &unk2)))
				goto nomem;
			for (s = wd; *s; s++)
				if (*s == '/')
					*s = '\\';
			if (strstr(wd, "[[") || unk2) {
				if (set_str(&p->windows_path, expanded) < 0 ||
				    set_detail(p, FLEET_UNRESOLVED,
					       "relative path '%s' in working directory '%s', "
					       "which holds an unexpanded reference",
					       expanded, wd) < 0)
					goto nomem;
				rc = 0;
				goto done;
			}
		}
		if (!wd || !is_drive_abs(wd)) {
			if (set_str(&p->windows_path, expanded) < 0 ||
			    set_detail(p, FLEET_UNSUPPORTED,
				       "relative path '%s' and no absolute working directory",
				       expanded) < 0)
				goto nomem;
			rc = 0;
			goto done;
		}
		if (asprintf(&abs, "%s%s%s", wd,
			     wd[strlen(wd) - 1] == '\\' ? "" : "\\",
			     expanded[0] == '\\' ? expanded + 1 : expanded) < 0)
			abs = NULL;
	}
	if (!abs)
		goto nomem;
	if ((ncomp = path_components(abs, &comp)) < 0)
		goto nomem;
	/* canonical Windows form: "X:\a\b" */
	{
		struct buf b;
		buf_init(&b, 64 * 1024);
		for (i = 0; i < ncomp; i++)
			if (buf_appendf(&b, err, "%s%s", i ? "\\" : "",
					i == 0 ? comp[0] : comp[i]) < 0) {
				buf_release(&b);
				goto done;
			}
		if (ncomp == 1 && buf_appends(&b, "\\", err) < 0) {
			buf_release(&b);
			goto done;
		}
		p->windows_path = buf_detach(&b, NULL);
		if (!p->windows_path)
			goto nomem;
		p->windows_path[0] = (char)toupper((unsigned char)p->windows_path[0]);
	}
	/* machine folder, then drive letter, then each component */
	{
		char *machines = fs_join(dir, "machines"), *m = NULL, *why = NULL;
		int f;

		if (!machines)
			goto nomem;
		f = find_entry(machines, machine && *machine ? machine : "?", &m, &why, err);
		if (f < 0) {
			free(machines);
			goto done;
		}
		if (f != 1) {
			free(why);
			free(m);
			if (set_detail(p, FLEET_NOT_FOUND,
				       "machine '%s' is not collected under machines/",
				       machine ? machine : "") < 0) {
				free(machines);
				goto nomem;
			}
			free(machines);
			rc = 0;
			goto done;
		}
		cur = fs_join(machines, m);
		if (asprintf(&rel, "machines/%s", m) < 0)
			rel = NULL;
		free(machines);
		free(m);
		if (!cur || !rel)
			goto nomem;
	}
	for (i = 0; i < ncomp; i++) {
		char *m = NULL, *why = NULL, *next, *nrel;
		char drive[3] = { comp[0][0], '\0', '\0' };
		int f = find_entry(cur, i == 0 ? drive : comp[i], &m, &why, err);

		/* files copied through the admin share land in "C$" */
		if (i == 0 && f == 0) {
			drive[1] = '$';
			f = find_entry(cur, drive, &m, &why, err);
			drive[1] = '\0';
		}

		if (f < 0)
			goto done;
		if (f == 0) {
			if (set_detail(p, FLEET_NOT_FOUND, "'%s' not found in %s/",
				       i == 0 ? drive : comp[i], rel) < 0)
				goto nomem;
			rc = 0;
			goto done;
		}
		if (f == 2) {
			int sr = set_detail(p, FLEET_AMBIGUOUS,
					    "'%s' in %s/ could be any of %s",
					    comp[i], rel, why ? why : "several entries");
			free(why);
			if (sr < 0)
				goto nomem;
			rc = 0;
			goto done;
		}
		next = fs_join(cur, m);
		nrel = fs_join(rel, m);
		free(m);
		free(cur);
		free(rel);
		cur = next;
		rel = nrel;
		if (!cur || !rel)
			goto nomem;
	}
	if (fleet_is_dir(cur)) {
		if (set_detail(p, FLEET_NOT_FOUND, "'%s' is a folder", rel) < 0)
			goto nomem;
		rc = 0;
		goto done;
	}
	p->where = FLEET_FOUND;
	p->file = cur;
	p->rel = rel;
	cur = rel = NULL;
	rc = 0;
	goto done;
nomem:
	rc = err_set(err, MS_ERR_NOMEM, "out of memory");
done:
	for (i = 0; i < ncomp; i++)
		free(comp[i]);
	free(comp);
	free(expanded);
	free(wd);
	free(abs);
	free(cur);
	free(rel);
	if (rc < 0)
		fleet_path_release(p);
	return rc;
}

int fleet_resolve_ini(const char *dir, const char *machine,
		      const char *inifile, const char *working_dir,
		      struct fleet_path *p, struct ms_err *err)
{
	return fleet_resolve_path(dir, machine,
				  inifile && *inifile ? inifile : FLEET_DEFAULT_INI,
				  working_dir, p, err);
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
		problem(h, rel, 0, "%s", lerr.msg);
		goto done;
	}
	root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (!cJSON_IsObject(root)) {
		problem(h, rel, root ? 1 : line_of(text, end ? (size_t)(end - text) : 0),
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
				rc = err_set(err, MS_ERR_NOMEM, "out of memory");
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
			rc = err_set(err, MS_ERR_NOMEM, "out of memory");
			goto done;
		}
	}
done:
	cJSON_Delete(root);
	if (raw) {
		OPENSSL_cleanse(raw, rawlen);
		free(raw);
	}
	if (text) {
		OPENSSL_cleanse(text, len);
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
		return err_set(err, MS_ERR_NOMEM, "out of memory");
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
			rc = err_set(err, MS_ERR_NOMEM, "out of memory");
		else
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
