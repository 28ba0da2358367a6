/*
 * ini.c - lossless INI parsing and editing (see ini.h).
 *
 * The file becomes an array of lines, each with its UTF-8 text (without
 * the line end), its line end and what the text is.  Serialization joins
 * them back and re-encodes; since UTF-8 <-> UTF-16 conversion of valid text
 * is a bijection, an unedited file comes back byte for byte.
 */
#include "ini/ini.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/fsutil.h"
#include "base/utf8.h"

enum eol { EOL_NONE = 0, EOL_LF, EOL_CRLF, EOL_CR };
enum line_kind { LK_BLANK, LK_COMMENT, LK_SECTION, LK_KEY, LK_OTHER };

struct iline {
	char *text;             /* UTF-8, NUL-terminated, no line end */
	size_t len;
	enum eol eol;
	enum line_kind kind;
	size_t sect;            /* section the line belongs to (header: its own) */
	char *key, *value;      /* LK_KEY: trimmed copies */
	size_t key_start, key_end, eq, val_off, val_len;
};

struct isect {
	char *name;             /* spelling of the first header */
};

struct iproblem {
	struct ini_problem pub;
	char *msg;
};

/*
 * Lookup index, rebuilt after the parse and after every edit, so that
 * lookups stay O(log n) on big files and never allocate.  NULL only when
 * a rebuild ran out of memory: lookups then find nothing.
 */
struct kindex {
	size_t *bykey;          /* key lines sorted by (section, key, line) */
	size_t *bysect;         /* key lines sorted by (section, line) */
	size_t nkeys;
	size_t *first_hdr;      /* per section: 1-based line of its first header */
	unsigned char *has_keys;/* per section */
	size_t *visible;        /* sections ini_section_name() lists */
	size_t n_visible;
};

struct ini {
	char *name;
	enum ini_encoding enc;
	struct iline *lines;
	size_t n, alloc;
	struct isect *sects;    /* sects[0] is always "" */
	size_t n_sects, alloc_sects;
	size_t *shash;          /* open addressing: section index + 1, 0 = free */
	size_t shash_cap;
	struct kindex *index;
	struct iproblem *probs;
	size_t n_probs, alloc_probs;
};

static int reindex(struct ini *ini);
static void index_free(struct kindex *x);

static const char *const eol_bytes[] = { "", "\n", "\r\n", "\r" };

static int is_blank(int c)
{
	return c == ' ' || c == '\t';
}

static int nomem(struct ms_err *err)
{
	return err_set(err, MS_ERR_NOMEM, "out of memory");
}

/* Wipe a buffer that may hold a secret; the compiler may not drop it. */
static void wipe(void *p, size_t n)
{
	volatile unsigned char *v = p;

	while (n--)
		*v++ = 0;
}

static char *xstrndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* ---- sections and problems ---- */

static size_t name_hash(const char *s)
{
	size_t h = 5381;

	for (; *s; s++)
		h = (h * 33) ^ (size_t)tolower((unsigned char)*s);
	return h;
}

static long find_sect(const struct ini *ini, const char *name)
{
	size_t i, mask;

	if (!name)
		name = "";
	if (!ini->shash_cap)
		return -1;
	mask = ini->shash_cap - 1;
	for (i = name_hash(name) & mask; ini->shash[i]; i = (i + 1) & mask)
		if (strcasecmp(ini->sects[ini->shash[i] - 1].name, name) == 0)
			return (long)(ini->shash[i] - 1);
	return -1;
}

static void shash_put(size_t *tab, size_t cap, const char *name, size_t idx)
{
	size_t i, mask = cap - 1;

	for (i = name_hash(name) & mask; tab[i]; i = (i + 1) & mask)
		;
	tab[i] = idx + 1;
}

static long add_sect(struct ini *ini, const char *name, size_t len)
{
	struct isect *s;
	char *copy;
	long found;
	size_t k;

	copy = xstrndup(name, len);
	if (!copy)
		return -1;
	found = find_sect(ini, copy);
	if (found >= 0) {
		free(copy);
		return found;
	}
	if ((ini->n_sects + 1) * 2 > ini->shash_cap) {
		size_t cap = ini->shash_cap ? ini->shash_cap * 2 : 16;
		size_t *tab = calloc(cap, sizeof(*tab));

		if (!tab) {
			free(copy);
			return -1;
		}
		for (k = 0; k < ini->n_sects; k++)
			shash_put(tab, cap, ini->sects[k].name, k);
		free(ini->shash);
		ini->shash = tab;
		ini->shash_cap = cap;
	}
	if (ini->n_sects == ini->alloc_sects) {
		size_t na = ini->alloc_sects ? ini->alloc_sects * 2 : 8;
		s = realloc(ini->sects, na * sizeof(*s));
		if (!s) {
			free(copy);
			return -1;
		}
		ini->sects = s;
		ini->alloc_sects = na;
	}
	ini->sects[ini->n_sects].name = copy;
	shash_put(ini->shash, ini->shash_cap, copy, ini->n_sects);
	return (long)ini->n_sects++;
}

__attribute__((format(printf, 4, 5)))
static int add_problem(struct ini *ini, int line, enum ini_severity sev,
		       const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	struct iproblem *p;

	if (ini->n_probs > INI_MAX_PROBLEMS)
		return 0;
	if (ini->n_probs == INI_MAX_PROBLEMS) {
		line = INT32_MAX;
		sev = INI_WARNING;
		snprintf(msg, sizeof(msg), "more than %d problems; the rest are not listed",
			 INI_MAX_PROBLEMS);
	} else {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
	}
	if (ini->n_probs == ini->alloc_probs) {
		size_t na = ini->alloc_probs ? ini->alloc_probs * 2 : 8;
		p = realloc(ini->probs, na * sizeof(*p));
		if (!p)
			return -1;
		ini->probs = p;
		ini->alloc_probs = na;
	}
	p = &ini->probs[ini->n_probs];
	p->msg = strdup(msg);
	if (!p->msg)
		return -1;
	p->pub.line = line;
	p->pub.severity = sev;
	p->pub.msg = p->msg;
	ini->n_probs++;
	return 0;
}

/* ---- line classification ---- */

static void line_clear(struct iline *l)
{
	free(l->text);
	free(l->key);
	free(l->value);
	memset(l, 0, sizeof(*l));
}

/*
 * Work out what l->text is.  Section headers get their section index in
 * l->sect; other lines keep the l->sect the caller set.  With lineno > 0
 * problems are recorded.  Returns -1 only when out of memory.
 */
static int classify(struct ini *ini, struct iline *l, int lineno)
{
	const char *t = l->text;
	size_t i = 0, j, len = l->len;

	free(l->key);
	free(l->value);
	l->key = l->value = NULL;
	while (i < len && is_blank((unsigned char)t[i]))
		i++;
	if (i == len) {
		l->kind = LK_BLANK;
		return 0;
	}
	if (t[i] == '#' || t[i] == ';') {
		l->kind = LK_COMMENT;
		return 0;
	}
	if (t[i] == '[') {
		const char *close = memchr(t + i, ']', len - i);
		size_t a, b;
		long s;

		if (!close) {
			l->kind = LK_OTHER;
			if (lineno > 0)
				return add_problem(ini, lineno, INI_ERROR,
						   "unterminated section header (missing ']')");
			return 0;
		}
		a = i + 1;
		b = (size_t)(close - t);
		while (a < b && is_blank((unsigned char)t[a]))
			a++;
		while (b > a && is_blank((unsigned char)t[b - 1]))
			b--;
		s = add_sect(ini, t + a, b - a);
		if (s < 0)
			return -1;
		l->kind = LK_SECTION;
		l->sect = (size_t)s;
		if (lineno <= 0)
			return 0;
		if (a == b && add_problem(ini, lineno, INI_ERROR,
					  "empty section name '[]'") < 0)
			return -1;
		j = (size_t)(close - t) + 1;
		while (j < len && is_blank((unsigned char)t[j]))
			j++;
		if (j < len && t[j] != ';' && t[j] != '#')
			return add_problem(ini, lineno, INI_ERROR,
					   "unexpected text after section header '[%.*s]'",
					   (int)(b - a), t + a);
		return 0;
	}
	{
		const char *eq = memchr(t + i, '=', len - i);
		size_t ke, vo, ve;

		if (!eq) {
			l->kind = LK_OTHER;
			if (lineno > 0)
				return add_problem(ini, lineno, INI_ERROR,
						   "expected 'key = value', a [section], a comment or a blank line");
			return 0;
		}
		l->eq = (size_t)(eq - t);
		ke = l->eq;
		while (ke > i && is_blank((unsigned char)t[ke - 1]))
			ke--;
		vo = l->eq + 1;
		while (vo < len && is_blank((unsigned char)t[vo]))
			vo++;
		ve = len;
		while (ve > vo && is_blank((unsigned char)t[ve - 1]))
			ve--;
		l->kind = LK_KEY;
		l->key_start = i;
		l->key_end = ke;
		l->val_off = vo;
		l->val_len = ve - vo;
		l->key = xstrndup(t + i, ke - i);
		l->value = xstrndup(t + vo, ve - vo);
		if (!l->key || !l->value)
			return -1;
		if (ke == i && lineno > 0)
			return add_problem(ini, lineno, INI_ERROR,
					   "missing key name before '='");
		return 0;
	}
}

/* ---- decoding ---- */

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n, uint32_t *cp)
{
	return utf8_decode((const char *)p, n, cp);
}

static int count_line(const char *p, size_t n)
{
	int line = 1;
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == '\n')
			line++;
		else if (p[i] == '\r' && !(i + 1 < n && p[i + 1] == '\n'))
			line++;
	}
	return line;
}

static int check_utf8(const char *name, const char *p, size_t n,
		      struct ms_err *err)
{
	size_t i = 0, k;
	uint32_t cp;

	while (i < n) {
		if (p[i] == '\0')
			return err_set_line(err, MS_ERR_CONFIG, count_line(p, i),
					    "%s:%d: NUL byte in the file", name,
					    count_line(p, i));
		k = utf8_seq((const unsigned char *)p + i, n - i, &cp);
		if (!k)
			return err_set_line(err, MS_ERR_CONFIG, count_line(p, i),
					    "%s:%d: invalid UTF-8 (byte 0x%02x at offset %zu); save the file as UTF-8 or UTF-16",
					    name, count_line(p, i),
					    (unsigned char)p[i], i);
		i += k;
	}
	return 0;
}

static int put_utf8(struct buf *b, uint32_t c, struct ms_err *err)
{
	unsigned char o[4];
	size_t k;

	if (c < 0x80) {
		o[0] = (unsigned char)c;
		k = 1;
	} else if (c < 0x800) {
		o[0] = (unsigned char)(0xc0 | (c >> 6));
		o[1] = (unsigned char)(0x80 | (c & 0x3f));
		k = 2;
	} else if (c < 0x10000) {
		o[0] = (unsigned char)(0xe0 | (c >> 12));
		o[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
		o[2] = (unsigned char)(0x80 | (c & 0x3f));
		k = 3;
	} else {
		o[0] = (unsigned char)(0xf0 | (c >> 18));
		o[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3f));
		o[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
		o[3] = (unsigned char)(0x80 | (c & 0x3f));
		k = 4;
	}
	return buf_append(b, o, k, err);
}

static int decode_utf16(const char *name, const unsigned char *p, size_t n,
			int be, struct buf *out, struct ms_err *err)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2) {
		uint32_t u = be ? (uint32_t)(p[i] << 8 | p[i + 1])
				: (uint32_t)(p[i + 1] << 8 | p[i]);
		if (u == 0) {
			int line = count_line(out->data ? out->data : "", out->len);
			return err_set_line(err, MS_ERR_CONFIG, line,
					    "%s:%d: NUL character in the file", name, line);
		}
		if (u >= 0xd800 && u <= 0xdbff && i + 3 < n) {
			uint32_t v = be ? (uint32_t)(p[i + 2] << 8 | p[i + 3])
					: (uint32_t)(p[i + 3] << 8 | p[i + 2]);
			if (v >= 0xdc00 && v <= 0xdfff) {
				u = 0x10000 + ((u - 0xd800) << 10) + (v - 0xdc00);
				i += 2;
			}
		}
		if (u >= 0xd800 && u <= 0xdfff) {
			int line = count_line(out->data ? out->data : "", out->len);
			return err_set_line(err, MS_ERR_CONFIG, line,
					    "%s:%d: invalid UTF-16 (unpaired surrogate at offset %zu)",
					    name, line, i);
		}
		if (put_utf8(out, u, err) < 0)
			return -1;
	}
	if (n % 2) {
		int line = count_line(out->data ? out->data : "", out->len);
		return err_set_line(err, MS_ERR_CONFIG, line,
				    "%s:%d: UTF-16 file has an odd number of bytes (%zu)",
				    name, line, n);
	}
	return 0;
}

/*
 * Is p[0..n) valid UTF-16 in that byte order (no NUL, every surrogate
 * paired)?  *syntax counts the units that are INI syntax characters:
 * '[', ']', '=', CR and LF.
 */
static int utf16_scan(const unsigned char *p, size_t n, int be, size_t *syntax)
{
	size_t i;

	*syntax = 0;
	if (n % 2)
		return 0;
	for (i = 0; i < n; i += 2) {
		uint32_t u = be ? (uint32_t)(p[i] << 8 | p[i + 1])
				: (uint32_t)(p[i + 1] << 8 | p[i]);

		if (u == 0)
			return 0;
		if (u >= 0xd800 && u <= 0xdbff) {
			uint32_t v;

			if (i + 3 >= n)
				return 0;
			v = be ? (uint32_t)(p[i + 2] << 8 | p[i + 3])
			       : (uint32_t)(p[i + 3] << 8 | p[i + 2]);
			if (v < 0xdc00 || v > 0xdfff)
				return 0;
			i += 2;
			continue;
		}
		if (u >= 0xdc00 && u <= 0xdfff)
			return 0;
		*syntax += u == '[' || u == ']' || u == '=' || u == '\r' ||
			   u == '\n';
	}
	return 1;
}

/*
 * UTF-16 without a BOM.  Recognised first by structure, so that a file
 * whose text is mostly non-ASCII (no share of zero bytes to speak of)
 * is still recognised, before and after an edit: the bytes are valid
 * UTF-16 in one byte order, and the INI syntax characters appear as
 * 16-bit units of that order more often than of the other (in UTF-8
 * they cannot appear at all: each such unit holds a zero byte).  When
 * that does not decide, the old rule: most odd (LE) or even (BE) bytes
 * are zero, which also catches a damaged UTF-16 file, so that the
 * decoder names the damage.  ini_serialize() checks that what it wrote
 * reads back, for the cases neither rule gets right.
 */
static int guess_utf16(const unsigned char *p, size_t n, int *be)
{
	size_t i, z_even = 0, z_odd = 0, half, syn_le, syn_be;
	int ok_le, ok_be;

	if (n < 2)
		return 0;
	ok_le = utf16_scan(p, n, 0, &syn_le);
	ok_be = utf16_scan(p, n, 1, &syn_be);
	if (!ok_le)
		syn_le = 0;
	if (!ok_be)
		syn_be = 0;
	if (syn_le != syn_be) {
		*be = syn_be > syn_le;
		return 1;
	}
	for (i = 0; i + 1 < n; i += 2) {
		z_even += p[i] == 0;
		z_odd += p[i + 1] == 0;
	}
	half = n / 2;
	if (z_odd * 2 >= half && z_even * 8 < z_odd) {
		*be = 0;
		return 1;
	}
	if (z_even * 2 >= half && z_odd * 8 < z_even) {
		*be = 1;
		return 1;
	}
	return 0;
}

/* ---- construction ---- */

struct ini *ini_new(const char *name)
{
	struct ini *ini = calloc(1, sizeof(*ini));

	if (!ini)
		return NULL;
	ini->name = strdup(name ? name : "<memory>");
	if (!ini->name || add_sect(ini, "", 0) != 0 || reindex(ini) < 0) {
		ini_free(ini);
		return NULL;
	}
	return ini;
}

void ini_free(struct ini *ini)
{
	size_t i;

	if (!ini)
		return;
	for (i = 0; i < ini->n; i++)
		line_clear(&ini->lines[i]);
	free(ini->lines);
	for (i = 0; i < ini->n_sects; i++)
		free(ini->sects[i].name);
	free(ini->sects);
	for (i = 0; i < ini->n_probs; i++)
		free(ini->probs[i].msg);
	free(ini->probs);
	free(ini->shash);
	index_free(ini->index);
	free(ini->name);
	free(ini);
}

static int grow_lines(struct ini *ini, size_t need)
{
	struct iline *l;
	size_t na;

	if (need <= ini->alloc)
		return 0;
	na = ini->alloc ? ini->alloc : 32;
	while (na < need)
		na *= 2;
	l = realloc(ini->lines, na * sizeof(*l));
	if (!l)
		return -1;
	ini->lines = l;
	ini->alloc = na;
	return 0;
}

struct keyref {
	size_t sect;
	const char *key;
	size_t idx;
};

static int keyref_cmp(const void *a, const void *b)
{
	const struct keyref *x = a, *y = b;
	int c;

	if (x->sect != y->sect)
		return x->sect < y->sect ? -1 : 1;
	c = strcasecmp(x->key, y->key);
	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int problem_cmp(const void *a, const void *b)
{
	const struct iproblem *x = a, *y = b;

	if (x->pub.line != y->pub.line)
		return x->pub.line < y->pub.line ? -1 : 1;
	return (int)x->pub.severity - (int)y->pub.severity;
}

/* Record duplicate keys and sections as warnings. */
static int find_duplicates(struct ini *ini)
{
	struct keyref *refs;
	size_t i, n = 0, *first_hdr;
	int rc = -1;

	first_hdr = calloc(ini->n_sects, sizeof(*first_hdr));
	refs = malloc((ini->n ? ini->n : 1) * sizeof(*refs));
	if (!first_hdr || !refs)
		goto out;
	for (i = 0; i < ini->n; i++) {
		struct iline *l = &ini->lines[i];

		if (l->kind == LK_SECTION) {
			if (first_hdr[l->sect] && l->sect != 0) {
				if (add_problem(ini, (int)i + 1, INI_WARNING,
						"section [%s] appears again (first at line %zu); its keys merge",
						ini->sects[l->sect].name,
						first_hdr[l->sect]) < 0)
					goto out;
			} else if (!first_hdr[l->sect]) {
				first_hdr[l->sect] = i + 1;
			}
		} else if (l->kind == LK_KEY && l->key[0]) {
			refs[n].sect = l->sect;
			refs[n].key = l->key;
			refs[n].idx = i;
			n++;
		}
	}
	qsort(refs, n, sizeof(*refs), keyref_cmp);
	for (i = 1; i < n; i++) {
		if (refs[i].sect != refs[i - 1].sect ||
		    strcasecmp(refs[i].key, refs[i - 1].key) != 0)
			continue;
		if (add_problem(ini, (int)refs[i].idx + 1, INI_WARNING,
				"duplicate key '%s' in [%s] (also at line %zu); the last one wins",
				ini->lines[refs[i].idx].key,
				ini->sects[refs[i].sect].name, refs[i - 1].idx + 1) < 0)
			goto out;
	}
	rc = 0;
out:
	free(first_hdr);
	free(refs);
	return rc;
}

/* Windows-1252 0x80..0x9F as Unicode (0 = undefined); 0xA0..0xFF are
 * Latin-1, the same code points. */
static const uint16_t cp1252_c1[32] = {
	0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
	0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178
};

int ini_is_cp1252(const char *data, size_t len)
{
	const unsigned char *u = (const unsigned char *)data;
	struct ms_err e = MS_ERR_INIT;
	int high = 0;

	if (len >= 2 && ((u[0] == 0xff && u[1] == 0xfe) || (u[0] == 0xfe && u[1] == 0xff)))
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (u[i] == 0)
			return 0;
		if (u[i] >= 0x80 && u[i] <= 0x9f && !cp1252_c1[u[i] - 0x80])
			return 0;
		high |= u[i] >= 0x80;
	}
	return high && check_utf8("", data, len, &e) < 0;
}

int ini_parse_any(struct ini **out, const char *name, const char *data,
		  size_t len, int *was_cp1252, struct ms_err *err)
{
	struct buf b;
	int rc;

	*was_cp1252 = 0;
	if (!ini_is_cp1252(data, len))
		return ini_parse(out, name, data, len, err);
	buf_init(&b, INI_MAX_FILE * 3 + 3);
	if (buf_append(&b, "\xef\xbb\xbf", 3, err) < 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)data[i];
		uint32_t cp = c < 0x80 ? c : c < 0xa0 ? cp1252_c1[c - 0x80] : c;

		if (put_utf8(&b, cp, err) < 0) {
			buf_release(&b);
			return -1;
		}
	}
	rc = ini_parse(out, name, b.data, b.len, err);
	buf_release(&b);
	if (rc == 0)
		*was_cp1252 = 1;
	return rc;
}

int ini_parse(struct ini **out, const char *name, const char *data,
	      size_t len, struct ms_err *err)
{
	const unsigned char *u = (const unsigned char *)data;
	struct buf text;
	struct ini *ini;
	size_t i, start;
	size_t cur = 0;
	int be = 0, rc = -1;

	*out = NULL;
	buf_init(&text, BUF_DEFAULT_CAP);
	if (!name)
		name = "<memory>";
	ini = ini_new(name);
	if (!ini)
		return nomem(err);

	if (len >= 3 && u[0] == 0xef && u[1] == 0xbb && u[2] == 0xbf) {
		ini->enc = INI_ENC_UTF8_BOM;
		data += 3;
		len -= 3;
	} else if (len >= 2 && u[0] == 0xff && u[1] == 0xfe) {
		ini->enc = INI_ENC_UTF16LE_BOM;
	} else if (len >= 2 && u[0] == 0xfe && u[1] == 0xff) {
		ini->enc = INI_ENC_UTF16BE_BOM;
		be = 1;
	} else if (guess_utf16(u, len, &be)) {
		ini->enc = be ? INI_ENC_UTF16BE : INI_ENC_UTF16LE;
	}
	if (ini->enc == INI_ENC_UTF16LE_BOM || ini->enc == INI_ENC_UTF16BE_BOM) {
		if (decode_utf16(name, u + 2, len - 2, be, &text, err) < 0)
			goto out;
	} else if (ini->enc == INI_ENC_UTF16LE || ini->enc == INI_ENC_UTF16BE) {
		if (decode_utf16(name, u, len, be, &text, err) < 0)
			goto out;
	} else {
		if (check_utf8(name, data, len, err) < 0) {
			if (ini_is_cp1252(data, len) &&
			    strlen(err->msg) + 80 < sizeof(err->msg))
				strcat(err->msg, " (it reads as Windows-1252, ANSI: "
				       "mailshift-migrate converts it)");
			goto out;
		}
		if (buf_append(&text, data, len, err) < 0)
			goto out;
	}

	/* split into lines */
	start = 0;
	for (i = 0; i <= text.len; i++) {
		enum eol e;
		size_t end = i;
		struct iline *l;

		if (i == text.len) {
			if (start == text.len)
				break;
			e = EOL_NONE;
		} else if (text.data[i] == '\n') {
			e = EOL_LF;
		} else if (text.data[i] == '\r') {
			if (i + 1 < text.len && text.data[i + 1] == '\n') {
				e = EOL_CRLF;
				i++;
			} else {
				e = EOL_CR;
			}
		} else {
			continue;
		}
		if (ini->n >= (size_t)INT32_MAX / 2 || grow_lines(ini, ini->n + 1) < 0) {
			nomem(err);
			goto out;
		}
		l = &ini->lines[ini->n];
		memset(l, 0, sizeof(*l));
		ini->n++;
		l->text = xstrndup(text.data + start, end - start);
		if (!l->text) {
			nomem(err);
			goto out;
		}
		l->len = end - start;
		l->eol = e;
		l->sect = cur;
		if (classify(ini, l, (int)ini->n) < 0) {
			nomem(err);
			goto out;
		}
		if (l->kind == LK_SECTION)
			cur = l->sect;
		start = i + 1;
	}
	if (find_duplicates(ini) < 0) {
		nomem(err);
		goto out;
	}
	/* problems in line order; a stable order for equal lines */
	if (ini->n_probs)
		qsort(ini->probs, ini->n_probs, sizeof(*ini->probs), problem_cmp);
	for (i = 0; i < ini->n_probs; i++)
		ini->probs[i].pub.msg = ini->probs[i].msg;
	if (reindex(ini) < 0) {
		nomem(err);
		goto out;
	}
	*out = ini;
	ini = NULL;
	rc = 0;
out:
	buf_wipe(&text);
	ini_free(ini);
	return rc;
}

int ini_load(struct ini **out, const char *path, struct ms_err *err)
{
	char *data = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	if (fs_read_file(path, INI_MAX_FILE, &data, &len, err) < 0)
		return -1;
	rc = ini_parse(out, path, data, len, err);
	free(data);
	return rc;
}

/* ---- queries ---- */

const char *ini_name(const struct ini *ini)
{
	return ini->name;
}

enum ini_encoding ini_encoding(const struct ini *ini)
{
	return ini->enc;
}

const char *ini_encoding_name(const struct ini *ini)
{
	switch (ini->enc) {
	case INI_ENC_UTF8: return "UTF-8";
	case INI_ENC_UTF8_BOM: return "UTF-8 with BOM";
	case INI_ENC_UTF16LE_BOM: return "UTF-16LE with BOM";
	case INI_ENC_UTF16LE: return "UTF-16LE";
	case INI_ENC_UTF16BE_BOM: return "UTF-16BE with BOM";
	case INI_ENC_UTF16BE: return "UTF-16BE";
	}
	return "unknown";
}

static enum eol dominant(const struct ini *ini)
{
	size_t c[4] = { 0, 0, 0, 0 }, i;

	for (i = 0; i < ini->n; i++)
		c[ini->lines[i].eol]++;
	if (c[EOL_CRLF] >= c[EOL_LF] && c[EOL_CRLF] >= c[EOL_CR])
		return EOL_CRLF;
	if (c[EOL_LF] >= c[EOL_CR])
		return EOL_LF;
	return EOL_CR;
}

const char *ini_dominant_eol(const struct ini *ini)
{
	return eol_bytes[dominant(ini)];
}

size_t ini_line_count(const struct ini *ini)
{
	return ini->n;
}

static void index_free(struct kindex *x)
{
	if (!x)
		return;
	free(x->bykey);
	free(x->bysect);
	free(x->first_hdr);
	free(x->has_keys);
	free(x->visible);
	free(x);
}

static int bykey_cmp(const void *a, const void *b, void *arg)
{
	const struct iline *lines = arg;
	const struct iline *x = &lines[*(const size_t *)a];
	const struct iline *y = &lines[*(const size_t *)b];
	int c;

	if (x->sect != y->sect)
		return x->sect < y->sect ? -1 : 1;
	c = strcasecmp(x->key, y->key);
	if (c)
		return c;
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

static int bysect_cmp(const void *a, const void *b, void *arg)
{
	const struct iline *lines = arg;
	const struct iline *x = &lines[*(const size_t *)a];
	const struct iline *y = &lines[*(const size_t *)b];

	if (x->sect != y->sect)
		return x->sect < y->sect ? -1 : 1;
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

static int reindex(struct ini *ini)
{
	struct kindex *x;
	size_t i, ns = ini->n_sects ? ini->n_sects : 1;

	index_free(ini->index);
	ini->index = NULL;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -1;
	x->bykey = malloc((ini->n ? ini->n : 1) * sizeof(size_t));
	x->bysect = malloc((ini->n ? ini->n : 1) * sizeof(size_t));
	x->first_hdr = calloc(ns, sizeof(size_t));
	x->has_keys = calloc(ns, 1);
	x->visible = malloc(ns * sizeof(size_t));
	if (!x->bykey || !x->bysect || !x->first_hdr || !x->has_keys || !x->visible) {
		index_free(x);
		return -1;
	}
	for (i = 0; i < ini->n; i++) {
		const struct iline *l = &ini->lines[i];

		if (l->kind == LK_KEY) {
			x->bykey[x->nkeys] = x->bysect[x->nkeys] = i;
			x->nkeys++;
			x->has_keys[l->sect] = 1;
		} else if (l->kind == LK_SECTION && !x->first_hdr[l->sect]) {
			x->first_hdr[l->sect] = i + 1;
		}
	}
	for (i = 0; i < ini->n_sects; i++)
		if (x->first_hdr[i] || (i == 0 && x->has_keys[0]))
			x->visible[x->n_visible++] = i;
	if (x->nkeys) {
		qsort_r(x->bykey, x->nkeys, sizeof(size_t), bykey_cmp, ini->lines);
		qsort_r(x->bysect, x->nkeys, sizeof(size_t), bysect_cmp, ini->lines);
	}
	ini->index = x;
	return 0;
}

/* Index of the last key line of (s, key), -1 if none. */
static long find_key(const struct ini *ini, const char *section,
		     const char *key)
{
	const struct kindex *x = ini->index;
	long s = find_sect(ini, section);
	size_t lo = 0, hi;

	if (s < 0 || !key || !x)
		return -1;
	hi = x->nkeys;
	/* first element greater than (s, key) */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct iline *l = &ini->lines[x->bykey[mid]];
		int c = l->sect != (size_t)s ? (l->sect < (size_t)s ? -1 : 1)
					     : strcasecmp(l->key, key);

		if (c <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -1;
	{
		const struct iline *l = &ini->lines[x->bykey[lo - 1]];

		if (l->sect != (size_t)s || strcasecmp(l->key, key) != 0)
			return -1;
	}
	return (long)x->bykey[lo - 1];
}

/* The same, by a linear scan: for edits in progress (stale index). */
static long find_key_scan(const struct ini *ini, const char *section,
			  const char *key)
{
	long s = find_sect(ini, section);
	size_t i;

	if (s < 0 || !key)
		return -1;
	for (i = ini->n; i-- > 0;) {
		const struct iline *l = &ini->lines[i];

		if (l->kind == LK_KEY && l->sect == (size_t)s &&
		    strcasecmp(l->key, key) == 0)
			return (long)i;
	}
	return -1;
}

const char *ini_get(const struct ini *ini, const char *section, const char *key)
{
	long i = find_key(ini, section, key);

	return i < 0 ? NULL : ini->lines[i].value;
}

int ini_get_line(const struct ini *ini, const char *section, const char *key)
{
	long i = find_key(ini, section, key);

	return i < 0 ? 0 : (int)i + 1;
}

int ini_has_section(const struct ini *ini, const char *section)
{
	long s = find_sect(ini, section);

	if (s < 0 || !ini->index)
		return 0;
	return ini->index->first_hdr[s] > 0 || ini->index->has_keys[s];
}

size_t ini_section_count(const struct ini *ini)
{
	return ini->index ? ini->index->n_visible : 0;
}

const char *ini_section_name(const struct ini *ini, size_t i)
{
	if (!ini->index || i >= ini->index->n_visible)
		return NULL;
	return ini->sects[ini->index->visible[i]].name;
}

int ini_section_line(const struct ini *ini, size_t i)
{
	if (!ini->index || i >= ini->index->n_visible)
		return 0;
	return (int)ini->index->first_hdr[ini->index->visible[i]];
}

int ini_foreach_key(const struct ini *ini, const char *section,
		    ini_key_fn fn, void *ctx)
{
	const struct kindex *x = ini->index;
	long s = find_sect(ini, section);
	size_t lo = 0, hi, i;
	int rc;

	if (s < 0 || !x)
		return 0;
	hi = x->nkeys;
	while (lo < hi) {       /* first key line of section s */
		size_t mid = lo + (hi - lo) / 2;

		if (ini->lines[x->bysect[mid]].sect < (size_t)s)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = lo; i < x->nkeys; i++) {
		const struct iline *l = &ini->lines[x->bysect[i]];

		if (l->sect != (size_t)s)
			break;
		rc = fn(l->key, l->value, (int)x->bysect[i] + 1, ctx);
		if (rc)
			return rc;
	}
	return 0;
}

size_t ini_problem_count(const struct ini *ini)
{
	return ini->n_probs;
}

const struct ini_problem *ini_problem(const struct ini *ini, size_t i)
{
	return i < ini->n_probs ? &ini->probs[i].pub : NULL;
}

int ini_check(const struct ini *ini, struct ms_err *err)
{
	size_t i;

	for (i = 0; i < ini->n_probs; i++) {
		const struct ini_problem *p = &ini->probs[i].pub;

		if (p->severity == INI_ERROR)
			return err_set_line(err, MS_ERR_CONFIG, p->line,
					    "%s:%d: %s", ini->name, p->line, p->msg);
	}
	return 0;
}

char *ini_unquote(const char *value)
{
	size_t n;

	if (!value)
		return NULL;
	n = strlen(value);
	if (n >= 2 && value[0] == '"' && value[n - 1] == '"')
		return xstrndup(value + 1, n - 2);
	return strdup(value);
}

/* ---- edits ---- */

static int valid_text(const char *s, int what, struct ms_err *err)
{
	size_t n = strlen(s);
	uint32_t cp;
	size_t i, k;

	for (i = 0; i < n; i += k) {
		if (s[i] == '\r' || s[i] == '\n')
			return err_set(err, MS_ERR_CONFIG,
				       "%s contains a line break", what ? "key" : "value");
		k = utf8_seq((const unsigned char *)s + i, n - i, &cp);
		if (!k)
			return err_set(err, MS_ERR_CONFIG, "%s is not valid UTF-8",
				       what ? "key" : "value");
	}
	return 0;
}

static int valid_name(const char *s, int is_key, struct ms_err *err)
{
	size_t n = strlen(s);

	if (valid_text(s, 1, err) < 0)
		return -1;
	if ((is_key && n == 0) || (n && (is_blank((unsigned char)s[0]) ||
					   is_blank((unsigned char)s[n - 1]))))
		return err_set(err, MS_ERR_CONFIG, "invalid %s name '%s'",
			       is_key ? "key" : "section", s);
	if (is_key && (strchr(s, '=') || s[0] == '[' || s[0] == '#' || s[0] == ';'))
		return err_set(err, MS_ERR_CONFIG, "invalid key name '%s'", s);
	if (!is_key && strchr(s, ']'))
		return err_set(err, MS_ERR_CONFIG, "invalid section name '%s'", s);
	return 0;
}

/* Insert a line with text at position pos in section sect. */
static int insert_line(struct ini *ini, size_t pos, char *text, size_t sect,
		       struct ms_err *err)
{
	enum eol dom = dominant(ini);
	struct iline *l;

	if (grow_lines(ini, ini->n + 1) < 0) {
		free(text);
		return nomem(err);
	}
	memmove(&ini->lines[pos + 1], &ini->lines[pos],
		(ini->n - pos) * sizeof(*ini->lines));
	ini->n++;
	l = &ini->lines[pos];
	memset(l, 0, sizeof(*l));
	l->text = text;
	l->len = strlen(text);
	l->sect = sect;
	l->eol = dom;
	/* a file without a final newline keeps having none */
	if (pos == ini->n - 1 && pos > 0 && ini->lines[pos - 1].eol == EOL_NONE) {
		ini->lines[pos - 1].eol = dom;
		l->eol = EOL_NONE;
	}
	if (classify(ini, l, 0) < 0)
		return nomem(err);
	return 0;
}

static void delete_line(struct ini *ini, size_t pos)
{
	enum eol e = ini->lines[pos].eol;

	line_clear(&ini->lines[pos]);
	memmove(&ini->lines[pos], &ini->lines[pos + 1],
		(ini->n - pos - 1) * sizeof(*ini->lines));
	ini->n--;
	/* the file keeps having no final newline, unless that would make an
	 * empty last line vanish */
	if (pos == ini->n && pos > 0 && e == EOL_NONE && ini->lines[pos - 1].len)
		ini->lines[pos - 1].eol = EOL_NONE;
}

/* Where a new line of section s goes: after its last key line, else after
 * its last header, else (for "") at the top; -1 if s has no lines. */
static long insert_pos(const struct ini *ini, size_t s)
{
	long last_key = -1, last_hdr = -1;
	size_t i;

	for (i = 0; i < ini->n; i++) {
		const struct iline *l = &ini->lines[i];

		if (l->kind == LK_KEY && l->sect == s)
			last_key = (long)i;
		else if (l->kind == LK_SECTION && l->sect == s)
			last_hdr = (long)i;
	}
	if (last_key >= 0)
		return last_key + 1;
	if (last_hdr >= 0)
		return last_hdr + 1;
	return s == 0 ? 0 : -1;
}

/* Text of a new key line, spaced like a model key line of the file. */
static char *new_key_text(const struct ini *ini, size_t s, const char *key,
			  const char *value)
{
	const struct iline *model = NULL;
	const char *indent = "", *sep = "=";
	size_t ilen = 0, slen = 1, i, n;
	char *t;

	for (i = 0; i < ini->n; i++) {
		const struct iline *l = &ini->lines[i];

		if (l->kind != LK_KEY || !l->key[0])
			continue;
		if (l->sect == s || !model || model->sect != s)
			model = l;
	}
	if (model) {
		indent = model->text;
		ilen = model->key_start;
		sep = model->text + model->key_end;
		slen = model->eq + 1 - model->key_end;
		if (model->eq + 1 < model->len &&
		    is_blank((unsigned char)model->text[model->eq + 1]))
			slen++;
	}
	n = ilen + strlen(key) + slen + strlen(value);
	t = malloc(n + 1);
	if (!t)
		return NULL;
	snprintf(t, n + 1, "%.*s%s%.*s%s", (int)ilen, indent, key, (int)slen, sep,
		 value);
	return t;
}

static int append_section(struct ini *ini, const char *section, long *sect,
			  struct ms_err *err)
{
	char *t;
	size_t n;

	if (ini->n > 0 && ini->lines[ini->n - 1].kind != LK_BLANK) {
		t = strdup("");
		if (!t)
			return nomem(err);
		if (insert_line(ini, ini->n, t, ini->lines[ini->n - 1].sect, err) < 0)
			return -1;
	}
	n = strlen(section) + 3;
	t = malloc(n);
	if (!t)
		return nomem(err);
	snprintf(t, n, "[%s]", section);
	if (insert_line(ini, ini->n, t, 0, err) < 0)
		return -1;
	*sect = (long)ini->lines[ini->n - 1].sect;
	return 0;
}

/*
 * A line ending in a lone CR followed by an empty line ending in LF or
 * CRLF would read back as one CRLF.  The parser never produces that pair,
 * but an insertion or deletion in a file with mixed line ends can: give
 * the empty line a lone CR too.
 */
static void fix_eols(struct ini *ini)
{
	size_t k;

	for (k = 0; k + 1 < ini->n; k++) {
		struct iline *next = &ini->lines[k + 1];

		if (ini->lines[k].eol == EOL_CR && next->len == 0 &&
		    (next->eol == EOL_LF || next->eol == EOL_CRLF))
			next->eol = EOL_CR;
	}
}

/* End of an edit that added or removed lines: rebuild the index. */
static int finish(struct ini *ini, int rc, struct ms_err *err)
{
	fix_eols(ini);
	if (reindex(ini) < 0)
		return nomem(err);
	return rc;
}

int ini_add_section(struct ini *ini, const char *section, struct ms_err *err)
{
	long s;

	if (valid_name(section, 0, err) < 0)
		return -1;
	if (!section[0] || ini_has_section(ini, section))
		return 0;
	return finish(ini, append_section(ini, section, &s, err), err);
}

int ini_set(struct ini *ini, const char *section, const char *key,
	    const char *value, struct ms_err *err)
{
	long i, s, pos;
	char *t;

	if (!section)
		section = "";
	if (valid_name(section, 0, err) < 0 || valid_name(key, 1, err) < 0 ||
	    valid_text(value, 0, err) < 0)
		return -1;
	i = find_key(ini, section, key);
	if (i >= 0) {
		struct iline *l = &ini->lines[i];
		size_t vlen = strlen(value);
		size_t n = l->len - l->val_len + vlen;

		t = malloc(n + 1);
		if (!t)
			return nomem(err);
		memcpy(t, l->text, l->val_off);
		memcpy(t + l->val_off, value, vlen);
		memcpy(t + l->val_off + vlen, l->text + l->val_off + l->val_len,
		       l->len - l->val_off - l->val_len);
		t[n] = '\0';
		free(l->text);
		l->text = t;
		l->len = n;
		if (classify(ini, l, 0) < 0)
			return nomem(err);
		return 0;
	}
	s = find_sect(ini, section);
	pos = s >= 0 ? insert_pos(ini, (size_t)s) : -1;
	if (pos < 0) {
		if (append_section(ini, section, &s, err) < 0)
			return finish(ini, -1, err);
		pos = (long)ini->n;
	}
	t = new_key_text(ini, (size_t)s, key, value);
	if (!t)
		return finish(ini, nomem(err), err);
	return finish(ini, insert_line(ini, (size_t)pos, t, (size_t)s, err), err);
}

int ini_add_comment(struct ini *ini, const char *section, const char *text,
		    struct ms_err *err)
{
	long s, pos;
	char *t;
	size_t n;

	if (!section)
		section = "";
	if (valid_text(text, 0, err) < 0)
		return -1;
	s = find_sect(ini, section);
	pos = s >= 0 ? insert_pos(ini, (size_t)s) : -1;
	if (pos < 0)
		return err_set(err, MS_ERR_CONFIG, "%s: no section [%s]", ini->name,
			       section);
	n = strlen(text) + 3;
	t = malloc(n);
	if (!t)
		return nomem(err);
	snprintf(t, n, "%s%s", text[0] == '#' || text[0] == ';' ? "" : "# ", text);
	return finish(ini, insert_line(ini, (size_t)pos, t, (size_t)s, err), err);
}

int ini_remove(struct ini *ini, const char *section, const char *key)
{
	int n = 0;
	long i;

	while ((i = find_key_scan(ini, section, key)) >= 0) {
		delete_line(ini, (size_t)i);
		n++;
	}
	return finish(ini, n, NULL);
}

int ini_comment_out(struct ini *ini, const char *section, const char *key)
{
	int n = 0;
	long i;

	while ((i = find_key_scan(ini, section, key)) >= 0) {
		struct iline *l = &ini->lines[i];
		char *t = malloc(l->len + 3);

		if (!t)
			return finish(ini, -1, NULL);
		memcpy(t, "# ", 2);
		memcpy(t + 2, l->text, l->len + 1);
		free(l->text);
		l->text = t;
		l->len += 2;
		if (classify(ini, l, 0) < 0)
			return finish(ini, -1, NULL);
		n++;
	}
	return finish(ini, n, NULL);
}

/* ---- output ---- */

static int put_utf16(struct buf *b, uint32_t c, int be, struct ms_err *err)
{
	unsigned char o[4];
	uint32_t u[2];
	size_t k = 1, i;

	if (c >= 0x10000) {
		c -= 0x10000;
		u[0] = 0xd800 + (c >> 10);
		u[1] = 0xdc00 + (c & 0x3ff);
		k = 2;
	} else {
		u[0] = c;
	}
	for (i = 0; i < k; i++) {
		o[2 * i + (be ? 1 : 0)] = (unsigned char)(u[i] & 0xff);
		o[2 * i + (be ? 0 : 1)] = (unsigned char)(u[i] >> 8);
	}
	return buf_append(b, o, 2 * k, err);
}

static int put_text(struct buf *b, const struct ini *ini, const char *s,
		    size_t n, struct ms_err *err)
{
	int be = ini->enc == INI_ENC_UTF16BE || ini->enc == INI_ENC_UTF16BE_BOM;
	size_t i, k;
	uint32_t cp;

	if (ini->enc == INI_ENC_UTF8 || ini->enc == INI_ENC_UTF8_BOM)
		return buf_append(b, s, n, err);
	for (i = 0; i < n; i += k) {
		k = utf8_seq((const unsigned char *)s + i, n - i, &cp);
		if (!k)
			return err_set(err, MS_ERR_INTERNAL,
				       "%s: invalid UTF-8 in memory", ini->name);
		if (put_utf16(b, cp, be, err) < 0)
			return -1;
	}
	return 0;
}

/* ini_free() for a copy that may hold secrets (passwords, tokens). */
static void ini_free_wiped(struct ini *ini)
{
	size_t i;

	if (!ini)
		return;
	for (i = 0; i < ini->n; i++) {
		struct iline *l = &ini->lines[i];

		wipe(l->text, l->len);
		if (l->key)
			wipe(l->key, strlen(l->key));
		if (l->value)
			wipe(l->value, strlen(l->value));
	}
	ini_free(ini);
}

/*
 * What ini_serialize() is about to hand out must parse back to this very
 * model: same encoding and the same lines (text and line end), hence the
 * same sections, keys and values.  An edit can break that where the bytes
 * alone decide: a BOM-less UTF-16 file whose bytes now look like the other
 * byte order (or like no UTF-16 at all), or a first line that now starts
 * with U+FEFF and would read as a byte-order mark.  Refuse then, naming
 * the file, instead of writing a file that mailshift cannot read back.
 */
static int check_readback(const struct ini *ini, const char *data, size_t len,
			  struct ms_err *err)
{
	struct ms_err perr = MS_ERR_INIT;
	struct ini *back = NULL;
	char why[MS_ERR_MSG_MAX / 2];
	size_t i;
	int rc = -1;

	if (ini_parse(&back, ini->name, data, len, &perr) < 0) {
		if (perr.code != MS_ERR_CONFIG)   /* out of memory, too big */
			return err_set(err, perr.code, "%s", perr.msg);
		snprintf(why, sizeof(why), "%s", perr.msg);
		goto refuse;
	}
	if (back->enc != ini->enc) {
		snprintf(why, sizeof(why), "it would read as %s",
			 ini_encoding_name(back));
		goto refuse;
	}
	for (i = 0; i < ini->n && i < back->n; i++) {
		const struct iline *a = &ini->lines[i], *b = &back->lines[i];

		if (a->len != b->len || a->eol != b->eol ||
		    memcmp(a->text, b->text, a->len) != 0)
			break;
	}
	if (i < ini->n || i < back->n) {
		snprintf(why, sizeof(why), "line %zu would read differently", i + 1);
		goto refuse;
	}
	rc = 0;
	goto out;
refuse:
	err_set(err, MS_ERR_CONFIG, "cannot save '%s' as %s: %s; nothing was written",
		ini->name, ini_encoding_name(ini), why);
out:
	ini_free_wiped(back);
	return rc;
}

int ini_serialize(const struct ini *ini, char **data, size_t *len,
		  struct ms_err *err)
{
	struct buf b;
	size_t i;

	*data = NULL;
	if (len)
		*len = 0;
	buf_init(&b, BUF_DEFAULT_CAP);
	/* an empty buffer still yields a non-NULL, NUL-terminated string */
	if (buf_append(&b, "", 0, err) < 0)
		goto fail;
	switch (ini->enc) {
	case INI_ENC_UTF8_BOM:
		if (buf_append(&b, "\xef\xbb\xbf", 3, err) < 0)
			goto fail;
		break;
	case INI_ENC_UTF16LE_BOM:
		if (buf_append(&b, "\xff\xfe", 2, err) < 0)
			goto fail;
		break;
	case INI_ENC_UTF16BE_BOM:
		if (buf_append(&b, "\xfe\xff", 2, err) < 0)
			goto fail;
		break;
	default:
		break;
	}
	for (i = 0; i < ini->n; i++) {
		const struct iline *l = &ini->lines[i];
		const char *e = eol_bytes[l->eol];

		if (put_text(&b, ini, l->text, l->len, err) < 0 ||
		    put_text(&b, ini, e, strlen(e), err) < 0)
			goto fail;
	}
	if (check_readback(ini, b.data, b.len, err) < 0)
		goto fail;
	*data = buf_detach(&b, len);
	return 0;
fail:
	buf_wipe(&b);
	return -1;
}

int ini_save(const struct ini *ini, const char *path, struct ms_err *err)
{
	char *data;
	size_t len;
	int rc;

	if (ini_serialize(ini, &data, &len, err) < 0)
		return -1;
	rc = fs_write_atomic(path, data, len, 0600, err);
	free(data);
	return rc;
}
