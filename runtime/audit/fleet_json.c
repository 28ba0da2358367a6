/*
 * fleet_json.c - JSON job exports, streamed: a small reader decodes the
 * file (UTF-8 or UTF-16) and hands each job object to cJSON on its own.
 */
#include "audit/fleet_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cJSON.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "base/buf.h"
#include "base/fsutil.h"
#include "base/mem.h"
#include "base/utf8.h"

/* JSON exports. */

static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (cJSON_IsString(v) && v->valuestring)
		return v->valuestring;
	return NULL;
}

/* A field that is a string or an object with one of the given names. */
const char *fleet_jname(const cJSON *o, const char *key, const char *k1,
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

int fleet_line_of(const char *text, size_t off)
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
	unsigned char raw[65536];  /* the text, always UTF-8 (jr_fill()) */
	size_t rlen, rpos;
	int eof;                   /* the file has nothing more for raw */
	unsigned char h16[65536];  /* UTF-16: the file's bytes not yet in raw */
	size_t hlen, hpos;
	const char *bad16;         /* UTF-16: the fault raw stops before */
	int peek;                  /* -2: nothing peeked */
	int line;
	int failed;                /* a problem was reported: stop */
	int cb_failed;             /* a callback failed: stop, err is set */
	size_t jobs;
	struct ms_err *err;
};

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
	fleet_problem(r->h, r->rel, r->line, "%s", msg);
}

static int jr_byte16(struct jr *r)
{
	if (r->hpos == r->hlen) {
		r->hlen = fread(r->h16, 1, sizeof(r->h16), r->f);
		r->hpos = 0;
		if (r->hlen == 0)
			return -1;
	}
	return r->h16[r->hpos++];
}

/*
 * Up to cap bytes of the file as UTF-8 into dst (UTF-16 decoded here, a
 * buffer at a time, so that every reader below sees UTF-8 and the fast
 * paths serve UTF-16 exports too): the count, 0 at the end.  A UTF-16
 * fault stops the text right before it; the reader reports it when it
 * gets there (jr_raw()), at the line it is on, as when the file was
 * decoded a character at a time.
 */
static size_t jr_fill(struct jr *r, unsigned char *dst, size_t cap)
{
	size_t k = 0;

	if (r->enc == 0) {
		k = fread(dst, 1, cap, r->f);
		r->eof = k < cap;
		return k;
	}
	while (!r->bad16 && k + 4 <= cap) {
		int a, b;
		unsigned long u, v;

#ifdef __SSE2__
		/* eight code units at a time while they are all ASCII (most of
		 * an export): each is its low byte, as utf8_encode() would
		 * write it */
		while (k + 8 <= cap && r->hlen - r->hpos >= 16) {
			__m128i w = _mm_loadu_si128((const __m128i *)(const void *)
						    (r->h16 + r->hpos));

			if (r->enc != 1)        /* big-endian: the low byte second */
				w = _mm_or_si128(_mm_srli_epi16(w, 8), _mm_slli_epi16(w, 8));
			if (_mm_movemask_epi8(_mm_cmpeq_epi8(
				_mm_and_si128(w, _mm_set1_epi16((short)0xFF80)),
				_mm_setzero_si128())) != 0xFFFF)
				break;
			_mm_storel_epi64((__m128i *)(void *)(dst + k),
					 _mm_packus_epi16(w, w));
			k += 8;
			r->hpos += 16;
		}
		if (k + 4 > cap)
			break;
#endif
		a = jr_byte16(r);

		if (a < 0) {
			r->eof = 1;
			break;
		}
		if ((b = jr_byte16(r)) < 0) {
			r->bad16 = "odd length for UTF-16 text";
			break;
		}
		u = r->enc == 1 ? (unsigned long)(a | b << 8) : (unsigned long)(a << 8 | b);
		if (u >= 0xD800 && u <= 0xDBFF) {
			int x = jr_byte16(r), y = jr_byte16(r);
			if (x < 0 || y < 0) {
				r->bad16 = "invalid UTF-16: a truncated surrogate pair";
				break;
			}
			v = r->enc == 1 ? (unsigned long)(x | y << 8) :
					  (unsigned long)(x << 8 | y);
			if (v < 0xDC00 || v > 0xDFFF) {
				r->bad16 = "invalid UTF-16: an unpaired surrogate";
				break;
			}
			u = 0x10000 + ((u - 0xD800) << 10) + (v - 0xDC00);
		} else if (u >= 0xDC00 && u <= 0xDFFF) {
			r->bad16 = "invalid UTF-16: an unpaired surrogate";
			break;
		}
		k += utf8_encode((uint32_t)u, (char *)dst + k);
	}
	if (r->bad16)
		r->eof = 1;
	return k;
}

static int jr_raw(struct jr *r)
{
	if (r->rpos == r->rlen) {
		r->rlen = r->eof ? 0 : jr_fill(r, r->raw, sizeof(r->raw));
		r->rpos = 0;
		if (r->rlen == 0) {
			if (r->bad16)
				jr_fail(r, "%s", r->bad16);
			return -1;
		}
	}
	return r->raw[r->rpos++];
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
	c = jr_raw(r);
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
 * read.  The appends here and in jr_value() pass no error record (a
 * failure is always "too big"): setting up a 1 KB one per call cost more
 * than the append. */
static int jr_string(struct jr *r, struct buf *b)
{
	int c;

	if (b && buf_append(b, "\"", 1, NULL) < 0)
		goto toobig;
	for (;;) {
		char ch;

		/* fast path: a run of plain bytes straight from the read buffer
		 * (UTF-8 input, nothing peeked or pending) */
		if (r->peek == -2 &&
		    !r->failed && !r->cb_failed && r->rpos < r->rlen) {
			const unsigned char *s0 = r->raw + r->rpos, *q = s0,
					    *e = r->raw + r->rlen;

			while (q < e && *q >= 0x20 && *q != '"' && *q != '\\')
				q++;
			if (q > s0) {
				if (b && buf_append(b, s0, (size_t)(q - s0), NULL) < 0)
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
		if (b && buf_append(b, &ch, 1, NULL) < 0)
			goto toobig;
		if (c == '"')
			return 0;
		if (c == '\\') {
			if ((c = jr_get(r)) < 0) {
				jr_eof(r);
				return -1;
			}
			ch = (char)c;
			if (b && buf_append(b, &ch, 1, NULL) < 0)
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
	int lines = 0;

	if (r->peek != -2 || r->failed ||
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
			      buf_append(b, s0, (size_t)(q - s0), NULL) < 0)))
		return;
	r->rpos += (size_t)(q - s0);
	r->line += lines;
}

/* Copy or skip a whole value whose first character c was read.  Nested
 * values are followed with a counter, not recursion. */
static int jr_value(struct jr *r, int c, struct buf *b)
{
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
			if (b && buf_append(b, &ch, 1, NULL) < 0) {
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
				if (b && buf_append(b, &ch, 1, NULL) < 0) {
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

/*
 * A captured job, checked and cut down before cJSON sees it: one pass
 * over the text checks that it is valid JSON (as cJSON_Parse would refuse
 * it otherwise) without building a tree, and copies only the members
 * emit_job() reads into a smaller object.  The rest of a real REST job
 * (frequencies, dependencies, documentation: 3-5 KB) is never allocated
 * node by node.
 */
struct jv_key {
	const char *name;
	unsigned char len;      /* strlen(name) */
	unsigned char want;     /* for jv_wanted() */
};
#define JK(s, w) { s, sizeof(s) - 1, w }
static const struct jv_key job_keys[] = {
	JK("name", 1), JK("schedule", 1), JK("scheduleName", 1), JK("primaryMachine", 1),
	JK("machine", 1), JK("jobType", 1), JK("details", 2), JK("windowsDetails", 2),
	JK("commandLine", 1), JK("workingDirectory", 1), JK("batchUser", 1),
};
/* and of "details" / "windowsDetails" (the first that is an object) */
static const struct jv_key detail_keys[] = {
	JK("commandLine", 1), JK("workingDirectory", 1), JK("batchUser", 1),
};
#undef JK

/* Blanks; *nl counts the line breaks (in a valid job they can only be
 * here: a string holds no control character) */
static const char *jv_ws_run(const char *p, const char *e, size_t *nl)
{
	if (e - p >= 2 && *p == ' ' && (unsigned char)p[1] > ' ')
		return p + 1;   /* the one blank after a ':' */
#ifdef __SSE2__
	/* indentation 16 bytes at a time: the first byte that is not
	 * blank, and the LFs before it */
	while (e - p >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
		__m128i lf = _mm_cmpeq_epi8(v, _mm_set1_epi8('\n'));
		__m128i ws = _mm_or_si128(
			_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')),
				     _mm_cmpeq_epi8(v, _mm_set1_epi8('\t'))),
			_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\r')), lf));
		unsigned m = (unsigned)_mm_movemask_epi8(ws);
		unsigned l = (unsigned)_mm_movemask_epi8(lf);

		if (m != 0xffff) {
			unsigned k = (unsigned)__builtin_ctz(~m);

			for (l &= (1u << k) - 1; l; l &= l - 1)
				++*nl;  /* (no popcnt in the baseline ISA) */
			return p + k;
		}
		for (; l; l &= l - 1)
			++*nl;
		p += 16;
	}
#endif
	while (p < e && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		*nl += *p++ == '\n';
	return p;
}

static inline const char *jv_ws(const char *p, const char *e, size_t *nl)
{
	if (p < e && (unsigned char)*p > ' ')
		return p;       /* no blank: most calls */
	return jv_ws_run(p, e, nl);
}

static int jv_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* p at the opening quote: the byte after the closing one, NULL if bad
 * (a control character, a bad escape, the end) */
static const char *jv_string(const char *p, const char *e)
{
	for (p++; p < e; p++) {
		unsigned char c;

#ifdef __SSE2__
		/* most of a real job is text: skip 16 bytes at a time that
		 * hold no quote, no backslash and no control character */
		while (e - p >= 16) {
			__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
			__m128i ctl = _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x1F)),
						     _mm_set1_epi8(0x1F));
			int m = _mm_movemask_epi8(_mm_or_si128(
				_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
					     _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))), ctl));

			if (m) {
				p += __builtin_ctz((unsigned)m);
				break;
			}
			p += 16;
		}
		if (p >= e)
			break;
#endif
		c = (unsigned char)*p;

		if (c == '"')
			return p + 1;
		if (c < 0x20)
			return NULL;
		if (c != '\\')
			continue;
		if (++p >= e)
			return NULL;
		if (*p == 'u') {
			if (e - p < 5 || !jv_hex(p[1]) || !jv_hex(p[2]) || !jv_hex(p[3]) ||
			    !jv_hex(p[4]))
				return NULL;
			p += 4;
		} else if (!*p || !strchr("\"\\/bfnrt", *p)) {
			return NULL;
		}
	}
	return NULL;
}

/* The bytes cJSON's number reader looks at: - + 0-9 . e E */
static const unsigned char json_numch[256] = {
	['-'] = 1, ['+'] = 1, ['.'] = 1, ['e'] = 1, ['E'] = 1,
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
	['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
};

static const char *jv_value(const char *p, const char *e, size_t *nl, int depth,
			    struct buf *keep, struct ms_err *err);

/* 0: skip the member named k (n bytes), 1: keep it, 2: keep the
 * members of its object that emit_job() reads (level 0: the job, 1: its
 * details). */
static int jv_wanted(const char *k, size_t n, int level)
{
	const struct jv_key *keys = level ? detail_keys : job_keys;
	size_t i, nk = level ? sizeof(detail_keys) / sizeof(detail_keys[0]) :
			       sizeof(job_keys) / sizeof(job_keys[0]);

	for (i = 0; i < nk; i++)
		if (keys[i].len == n && memcmp(keys[i].name, k, n) == 0)
			return keys[i].want;
	return 0;
}

/* A key with escapes, decoded ("na\u006de" is "name" to cJSON too). */
static int jv_wanted_escaped(const char *k, size_t n, int level)
{
	cJSON *s = cJSON_ParseWithLength(k - 1, n + 2);
	int w = cJSON_IsString(s) ?
		jv_wanted(s->valuestring, strlen(s->valuestring), level) : 0;

	cJSON_Delete(s);
	return w;
}

/* An object at p; with keep, the members wanted at this level are
 * appended to keep as an object of their own. */
static const char *jv_object(const char *p, const char *e, size_t *nl, int depth, int level,
			     struct buf *keep, struct ms_err *err)
{
	int first = 1;

	if (keep && buf_append(keep, "{", 1, err) < 0)
		return NULL;
	p = jv_ws(p + 1, e, nl);
	if (p < e && *p == '}')
		return keep && buf_append(keep, "}", 1, err) < 0 ? NULL : p + 1;
	for (;;) {
		const char *k = p, *v;
		int want = 0;

		if (p >= e || *p != '"' || !(p = jv_string(p, e)))
			return NULL;
		if (keep)
			want = memchr(k, '\\', (size_t)(p - k)) ?
			       jv_wanted_escaped(k + 1, (size_t)(p - k - 2), level) :
			       jv_wanted(k + 1, (size_t)(p - k - 2), level);
		p = jv_ws(p, e, nl);
		if (p >= e || *p != ':')
			return NULL;
		v = p = jv_ws(p + 1, e, nl);
		if (want && ((!first && buf_append(keep, ",", 1, err) < 0) ||
			     buf_append(keep, k, (size_t)(v - k), err) < 0))
			return NULL;
		if (want == 2 && p < e && *p == '{') {
			/* a details object: only what emit_job() reads of it */
			if (!(p = jv_object(p, e, nl, depth + 1, 1, keep, err)))
				return NULL;
		} else {
			if (!(p = jv_value(p, e, nl, depth + 1, NULL, err)))
				return NULL;
			if (want && buf_append(keep, v, (size_t)(p - v), err) < 0)
				return NULL;
		}
		first &= !want;
		p = jv_ws(p, e, nl);
		if (p < e && *p == '}')
			return keep && buf_append(keep, "}", 1, err) < 0 ? NULL : p + 1;
		if (p >= e || *p != ',')
			return NULL;
		p = jv_ws(p + 1, e, nl);
	}
}

/* One value at p: the byte after it, NULL if invalid.  With keep (the
 * job object itself), its wanted members are appended to keep. */
static const char *jv_value(const char *p, const char *e, size_t *nl, int depth,
			    struct buf *keep, struct ms_err *err)
{
	if (p >= e || depth > JSON_MAX_KEY)
		return NULL;
	switch (*p) {
	case '{':
		return jv_object(p, e, nl, depth, 0, keep, err);
	case '[':
		p = jv_ws(p + 1, e, nl);
		if (p < e && *p == ']')
			return p + 1;
		for (;;) {
			if (!(p = jv_value(p, e, nl, depth + 1, NULL, err)))
				return NULL;
			p = jv_ws(p, e, nl);
			if (p < e && *p == ']')
				return p + 1;
			if (p >= e || *p != ',')
				return NULL;
			p = jv_ws(p + 1, e, nl);
		}
	case '"':
		return jv_string(p, e);
	case 't':
		return e - p >= 4 && memcmp(p, "true", 4) == 0 ? p + 4 : NULL;
	case 'f':
		return e - p >= 5 && memcmp(p, "false", 5) == 0 ? p + 5 : NULL;
	case 'n':
		return e - p >= 4 && memcmp(p, "null", 4) == 0 ? p + 4 : NULL;
	default: {
		/*
		 * A number, as cJSON reads one: strtod (C locale) over the
		 * run of [-+0-9.eE] (under 64 bytes), spelled out: a sign,
		 * digits with at most one '.' (at least one digit), then an
		 * exponent only when it has digits.  Returns where strtod
		 * stops, without a copy and a call per number.
		 */
		const char *q = p, *m, *x;
		size_t n;

		while (q < e && json_numch[(unsigned char)*q])
			q++;
		n = (size_t)(q - p);
		if (n == 0 || n >= 64)
			return NULL;
		m = p;
		if (*m == '+' || *m == '-')
			m++;
		x = m;
		while (m < q && *m >= '0' && *m <= '9')
			m++;
		n = (size_t)(m - x);
		if (m < q && *m == '.') {
			m++;
			x = m;
			while (m < q && *m >= '0' && *m <= '9')
				m++;
			n += (size_t)(m - x);
		}
		if (n == 0)
			return NULL;
		if (m < q && (*m == 'e' || *m == 'E')) {
			x = m + 1;
			if (x < q && (*x == '+' || *x == '-'))
				x++;
			if (x < q && *x >= '0' && *x <= '9') {
				while (x < q && *x >= '0' && *x <= '9')
					x++;
				m = x;
			}
		}
		return m;
	}
	}
}

/* The job text [p, e) (a captured '{' ... '}') checked and cut down to
 * the members emit_job() reads, in keep: 1, or 0 when the text is not
 * valid JSON (or out of memory: err says so). */
static int job_cut(const char *p, const char *e, struct buf *keep,
		   struct ms_err *err)
{
	size_t lines = 0, *nl = &lines;    /* jr_value() counted them */

	buf_reset(keep);
	p = jv_value(p, e, nl, 0, keep, err);
	return p && jv_ws(p, e, nl) == e;
}

/* The fast path for a job whose '{' was just read: when the whole job is
 * valid JSON inside the read buffer (UTF-8, nothing peeked), check and
 * cut it down into keep right there, without copying it byte by byte,
 * and step over it: 1.  0 when it did not work out (the buffer ends
 * inside the job, the job is not valid JSON, out of memory): nothing was
 * consumed then, and the byte-by-byte path reads the job as ever (with
 * its exact error messages). */
static int jr_job_inplace(struct jr *r, struct buf *keep, struct ms_err *lerr)
{
	const char *start, *e, *p;
	size_t nl;
	int refilled = 0;

	if (r->peek != -2 || r->failed ||
	    r->cb_failed || r->rpos == 0 || r->raw[r->rpos - 1] != '{')
		return 0;
	for (;;) {
		start = (const char *)r->raw + r->rpos - 1;
		e = (const char *)r->raw + r->rlen;
		buf_reset(keep);
		nl = 0;
		if ((p = jv_value(start, e, &nl, 0, keep, lerr)) || refilled || r->rpos == 1 ||
		    r->eof || lerr->code != MS_OK)
			break;
		/* the job may go on past the buffer: move it to the front and
		 * read more, once */
		memmove(r->raw, r->raw + r->rpos - 1, r->rlen - r->rpos + 1);
		r->rlen -= r->rpos - 1;
		r->rpos = 1;
		r->rlen += jr_fill(r, r->raw + r->rlen, sizeof(r->raw) - r->rlen);
		refilled = 1;
	}
	if (!p)
		return 0;
	r->line += (int)nl;
	r->rpos = (size_t)(p - (const char *)r->raw);
	return 1;
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
	fj.schedule = (s = fleet_jname(j, "schedule", "name", NULL)) ? s :
		      (s = jstr(j, "scheduleName")) ? s : sched ? sched : "";
	fj.machine = (s = fleet_jname(j, "primaryMachine", "name", NULL)) ? s :
		     (s = jstr(j, "machine")) ? s : "";
	fj.job_type = (s = fleet_jname(j, "jobType", "description", "name")) ? s : "";
	d = cJSON_GetObjectItemCaseSensitive(j, "details");
	if (!cJSON_IsObject(d))
		d = cJSON_GetObjectItemCaseSensitive(j, "windowsDetails");
	if (!cJSON_IsObject(d))
		d = j;
	fj.command_line = jstr(d, "commandLine");
	fj.working_dir = jstr(d, "workingDirectory");
	fj.batch_user = fleet_jname(d, "batchUser", "loginName", "name");
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
	struct buf b, keep;
	struct ms_err lerr = MS_ERR_INIT;
	int c, rc = -1;

	buf_init(&b, JSON_MAX_JOB);
	buf_init(&keep, JSON_MAX_JOB + 2);
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
			fleet_problem(r->h, r->rel, line, "job #%zu is not an object", r->jobs);
		} else {
			int got;

			err_clear(&lerr);
			got = jr_job_inplace(r, &keep, &lerr);
			if (!got && lerr.code == MS_OK) {
				if (jr_value(r, c, &b) < 0)
					goto done;
				got = job_cut(b.data, b.data + b.len, &keep, &lerr);
			}
			if (got && r->h->other &&
			    !fleet_may_run_connector(keep.data, keep.len)) {
				/* no connector job: counted, never decoded */
				r->jobs++;
				if (r->h->other(1, r->h->ctx, r->err) < 0) {
					r->cb_failed = 1;
					goto done;
				}
				goto next;
			}
			/* cJSON refuses what the check lets through in a \u
			 * escape (a lone surrogate): invalid JSON, as ever */
			j = got ? cJSON_ParseWithLength(keep.data, keep.len) : NULL;
			if (!j && lerr.code == MS_ERR_NOMEM) {
				err_nomem(r->err);
				r->cb_failed = 1;
				goto done;
			}
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
					err_nomem(r->err);
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
next:
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
	buf_wipe(&keep);
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
				fleet_problem(r->h, r->rel, line, "schedule without a jobList");
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

int fleet_scan_json(const char *path, const char *rel,
		     const struct fleet_handlers *h, struct ms_err *err)
{
	struct jr *r;
	struct rootctx rc = { 0 };
	unsigned char bom[4];
	size_t n;
	int c, ret = 0;

	if (!(r = calloc(1, sizeof(*r))))
		return err_nomem(err);
	r->h = h;
	r->rel = rel;
	r->err = err;
	r->line = 1;
	r->peek = -2;
	if (!(r->f = fopen(path, "rb"))) {
		fleet_problem(h, rel, 0, "cannot open '%s': %s", path, strerror(errno));
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
	r->eof = n < sizeof(r->raw);
	if (r->enc) {
		/* what was read is UTF-16: decoded from h16 into raw */
		memcpy(r->h16, r->raw + r->rpos, n - r->rpos);
		r->hlen = n - r->rpos;
		r->rlen = r->rpos = 0;
		r->eof = 0;
	}
	c = jr_ws(r);
	if (c < 0 && !r->failed) {
		fleet_problem(h, rel, 0, "empty export");
	} else if (c == '[') {
		jr_jobs(r, NULL);
	} else if (c == '{') {
		if (jr_object(r, root_member, &rc) == 0 && !rc.shape)
			fleet_problem(h, rel, 1, "not a job export: expected a JSON array of jobs, "
				"{\"jobs\":[...]} or {\"scheduleList\":[...]}");
	} else if (c >= 0) {
		jr_fail(r, "not a job export: expected a JSON array or object");
	}
	if (!r->failed && !r->cb_failed && c >= 0 && (c = jr_ws(r)) >= 0)
		jr_fail(r, "invalid JSON: unexpected data after the end");
	if (ferror(r->f))
		fleet_problem(h, rel, 0, "cannot read '%s'", path);
	if (r->cb_failed)
		ret = -1;
	fclose(r->f);
	free(r);
	return ret;
}
