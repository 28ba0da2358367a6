/*
 * ini.c - lossless INI parsing and lookups (see ini.h; edits and
 * serialization are in ini_edit.c, the bytes of each encoding in
 * ini_encoding.c).
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
#include "base/compat.h"
#include "base/fsutil.h"
#include "base/mem.h"
#include "ini/ini_int.h"

static void index_free(struct kindex *x);

const char *const ini_eol_bytes[] = { "", "\n", "\r\n", "\r" };

/* ---- sections and problems ---- */

static size_t name_hash(const char *s)
{
	size_t h = 5381;

	for (; *s; s++)
		h = (h * 33) ^ (size_t)(*s >= 'A' && *s <= 'Z' ? *s + 32 :
					(unsigned char)*s);
	return h;
}

long ini_find_sect(const struct ini *ini, const char *name)
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
	char *copy;
	long found;
	size_t k;

	copy = ms_strndup(name, len);
	if (!copy)
		return -1;
	found = ini_find_sect(ini, copy);
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
	if (MEM_GROW(ini->sects, ini->alloc_sects, ini->n_sects + 1, NULL) < 0) {
		free(copy);
		return -1;
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
	if (MEM_GROW(ini->probs, ini->alloc_probs, ini->n_probs + 1, NULL) < 0)
		return -1;
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

void ini_line_clear(struct iline *l)
{
	if (l->own_text)
		free(l->text);
	if (l->own_kv) {
		free(l->key);
		free(l->value);
	}
	memset(l, 0, sizeof(*l));
}

void ini_line_set_text(struct iline *l, char *t, size_t len)
{
	if (l->own_text)
		free(l->text);
	l->text = t;
	l->len = len;
	l->own_text = 1;
}

/* n bytes of s, NUL-terminated: in the parse's arena (sized for every
 * key and value of the parse) when own is 0, else malloc'd. */
static char *kv_copy(struct ini *ini, const char *s, size_t n, int own)
{
	char *p;

	if (!own) {
		p = ini->kv + ini->kv_used;
		ini->kv_used += n + 1;
	} else if (!(p = malloc(n + 1))) {
		return NULL;
	}
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/*
 * Work out what l->text is.  Section headers get their section index in
 * l->sect; other lines keep the l->sect the caller set.  With lineno > 0
 * problems are recorded.  Returns -1 only when out of memory.
 */
int ini_classify(struct ini *ini, struct iline *l, int lineno)
{
	const char *t = l->text;
	size_t i = 0, j, len = l->len;

	if (l->own_kv) {
		free(l->key);
		free(l->value);
	}
	l->key = l->value = NULL;
	l->own_kv = 0;
	while (i < len && ini_is_blank((unsigned char)t[i]))
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
		while (a < b && ini_is_blank((unsigned char)t[a]))
			a++;
		while (b > a && ini_is_blank((unsigned char)t[b - 1]))
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
		while (j < len && ini_is_blank((unsigned char)t[j]))
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
		while (ke > i && ini_is_blank((unsigned char)t[ke - 1]))
			ke--;
		vo = l->eq + 1;
		while (vo < len && ini_is_blank((unsigned char)t[vo]))
			vo++;
		ve = len;
		while (ve > vo && ini_is_blank((unsigned char)t[ve - 1]))
			ve--;
		l->kind = LK_KEY;
		l->key_start = i;
		l->key_end = ke;
		l->val_off = vo;
		l->val_len = ve - vo;
		/* both in the arena during the parse, both malloc'd after */
		l->own_kv = ini->kv_cap - ini->kv_used < (ke - i) + (ve - vo) + 2;
		l->key = kv_copy(ini, t + i, ke - i, l->own_kv);
		l->value = kv_copy(ini, t + vo, ve - vo, l->own_kv);
		if (!l->key || !l->value) {
			if (l->own_kv) {
				free(l->key);
				free(l->value);
			}
			l->key = l->value = NULL;
			l->own_kv = 0;
			return -1;
		}
		if (ke == i && lineno > 0)
			return add_problem(ini, lineno, INI_ERROR,
					   "missing key name before '='");
		return 0;
	}
}

/* An empty INI without its index (the parse builds it once at the end). */
static struct ini *ini_alloc(const char *name)
{
	struct ini *ini = calloc(1, sizeof(*ini));

	if (!ini)
		return NULL;
	ini->name = strdup(name ? name : "<memory>");
	if (!ini->name || add_sect(ini, "", 0) != 0) {
		ini_free(ini);
		return NULL;
	}
	return ini;
}

struct ini *ini_new(const char *name)
{
	struct ini *ini = ini_alloc(name);

	if (ini && ini_reindex(ini) < 0) {
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
		ini_line_clear(&ini->lines[i]);
	free(ini->lines);
	for (i = 0; i < ini->n_sects; i++)
		free(ini->sects[i].name);
	free(ini->sects);
	for (i = 0; i < ini->n_probs; i++)
		free(ini->probs[i].msg);
	free(ini->probs);
	free(ini->shash);
	index_free(ini->index);
	free(ini->store);
	free(ini->kv);
	free(ini->name);
	free(ini);
}

static int problem_cmp(const void *a, const void *b)
{
	const struct iproblem *x = a, *y = b;

	if (x->pub.line != y->pub.line)
		return x->pub.line < y->pub.line ? -1 : 1;
	return (int)x->pub.severity - (int)y->pub.severity;
}

/* Record duplicate keys and sections as warnings, from the index: its
 * bykey order (section, key, line) puts a key's lines side by side. */
static int find_duplicates(struct ini *ini)
{
	const struct kindex *x = ini->index;
	size_t i;

	for (i = 0; i < ini->n; i++) {
		const struct iline *l = &ini->lines[i];

		if (l->kind == LK_SECTION && l->sect != 0 &&
		    x->first_hdr[l->sect] != i + 1 &&
		    add_problem(ini, (int)i + 1, INI_WARNING,
				"section [%s] appears again (first at line %zu); its keys merge",
				ini->sects[l->sect].name, x->first_hdr[l->sect]) < 0)
			return -1;
	}
	for (i = 1; i < x->nkeys; i++) {
		const struct iline *a = &ini->lines[x->bykey[i - 1]];
		const struct iline *b = &ini->lines[x->bykey[i]];

		if (!a->key[0] || !b->key[0] || a->sect != b->sect ||
		    strcasecmp(a->key, b->key) != 0)
			continue;
		if (add_problem(ini, (int)x->bykey[i] + 1, INI_WARNING,
				"duplicate key '%s' in [%s] (also at line %zu); the last one wins",
				b->key, ini->sects[b->sect].name, x->bykey[i - 1] + 1) < 0)
			return -1;
	}
	return 0;
}

/* Split text (tlen bytes, writable, text[tlen] readable) into lines that
 * point into it: each line end is overwritten by a NUL. */
static int split_lines(struct ini *ini, char *text, size_t tlen,
		       struct ms_err *err)
{
	size_t i, start = 0, cur = 0, ends = 0;
	const char *lf = NULL;
	int lf_none = 0;

	/* room for every line at once: one per LF and per CR not followed
	 * by an LF, plus one */
	{
		const char *q = text, *e = text + tlen;

		while ((q = memchr(q, '\n', (size_t)(e - q))) != NULL) {
			ends++;
			q++;
		}
		for (q = text; (q = memchr(q, '\r', (size_t)(e - q))) != NULL; q++)
			ends += q + 1 == e || q[1] != '\n';
	}
	if (ends >= (size_t)INT32_MAX / 2 ||
	    MEM_GROW(ini->lines, ini->alloc, ends + 1, NULL) < 0)
		return err_nomem(err);
	/* every key and value fits: a key line of n bytes needs n + 1 */
	if (tlen && !(ini->kv = malloc(tlen + 1)))
		return err_nomem(err);
	ini->kv_cap = tlen ? tlen + 1 : 0;
	/* each line's end found with memchr: the next LF, then a CR before
	 * it (a lone CR ends a line of its own; CRLF is the common end).  The
	 * next LF is looked for again only once it is behind: lines ended by
	 * lone CRs before it must not each scan to it (quadratic on a file
	 * of CR line ends, 26 s for 4 MB) */
	for (i = 0; i <= tlen; i++) {
		enum eol e;
		size_t end;
		struct iline *l;
		const char *cr;

		if (lf != NULL ? lf < text + i : !lf_none) {
			lf = memchr(text + i, '\n', tlen - i);
			lf_none = lf == NULL;
		}
		cr = memchr(text + i, '\r', (size_t)((lf ? lf : text + tlen) - (text + i)));

		if (cr) {
			i = (size_t)(cr - text);
			if (cr + 1 == lf) {
				e = EOL_CRLF;
				end = i++;
			} else {
				e = EOL_CR;
				end = i;
			}
		} else if (lf) {
			e = EOL_LF;
			end = i = (size_t)(lf - text);
		} else {
			if (start == tlen)
				break;
			e = EOL_NONE;
			end = i = tlen;
		}
		l = &ini->lines[ini->n];
		memset(l, 0, sizeof(*l));
		ini->n++;
		text[end] = '\0';
		l->text = text + start;
		l->len = end - start;
		l->eol = e;
		l->sect = cur;
		if (ini_classify(ini, l, (int)ini->n) < 0)
			return err_nomem(err);
		if (l->kind == LK_SECTION)
			cur = l->sect;
		start = i + 1;
	}
	/* later edits malloc their keys and values */
	ini->kv_cap = ini->kv_used;
	return 0;
}

/*
 * The parse.  own, when not NULL, is a malloc'd buffer holding data
 * (NUL after len bytes) that the parse takes over: the lines of a UTF-8
 * file then point into the very bytes that were read.  It is freed on
 * failure.
 */
static int parse(struct ini **out, const char *name, char *own,
		 const char *data, size_t len, struct ms_err *err)
{
	const unsigned char *u = (const unsigned char *)data;
	struct buf text;
	struct ini *ini;
	char *t;
	size_t i, tlen;
	int be = 0, rc = -1;

	*out = NULL;
	buf_init(&text, BUF_DEFAULT_CAP);
	if (!name)
		name = "<memory>";
	ini = ini_alloc(name);
	if (!ini) {
		free(own);
		return err_nomem(err);
	}

	if (len >= 3 && u[0] == 0xef && u[1] == 0xbb && u[2] == 0xbf) {
		ini->enc = INI_ENC_UTF8_BOM;
		data += 3;
		len -= 3;
	} else if (len >= 2 && u[0] == 0xff && u[1] == 0xfe) {
		ini->enc = INI_ENC_UTF16LE_BOM;
	} else if (len >= 2 && u[0] == 0xfe && u[1] == 0xff) {
		ini->enc = INI_ENC_UTF16BE_BOM;
		be = 1;
	} else if (ini_guess_utf16(u, len, &be)) {
		ini->enc = be ? INI_ENC_UTF16BE : INI_ENC_UTF16LE;
	}
	if (ini->enc == INI_ENC_UTF16LE_BOM || ini->enc == INI_ENC_UTF16BE_BOM ||
	    ini->enc == INI_ENC_UTF16LE || ini->enc == INI_ENC_UTF16BE) {
		size_t skip = ini->enc == INI_ENC_UTF16LE_BOM ||
			      ini->enc == INI_ENC_UTF16BE_BOM ? 2 : 0;

		if (ini_decode_utf16(name, u + skip, len - skip, be, &text, err) < 0)
			goto out;
		tlen = text.len;
		ini->store = buf_detach(&text, NULL);
		t = ini->store;
	} else {
		if (ini_check_utf8(name, data, len, err) < 0) {
			if (ini_is_cp1252(data, len) &&
			    strlen(err->msg) + 80 < sizeof(err->msg))
				strcat(err->msg, " (it reads as Windows-1252, ANSI: "
				       "mailshift-migrate converts it)");
			goto out;
		}
		tlen = len;
		if (own) {
			t = own + (data - own);
			ini->store = own;
			own = NULL;
		} else {
			if (!(ini->store = malloc(len + 1))) {
				err_nomem(err);
				goto out;
			}
			memcpy(ini->store, data, len);
			ini->store[len] = '\0';
			t = ini->store;
		}
	}
	if (!ini->store) {
		t = (char *)"";         /* empty: no line, nothing written */
		tlen = 0;
	}
	if (split_lines(ini, t, tlen, err) < 0)
		goto out;
	if (ini_reindex(ini) < 0 || find_duplicates(ini) < 0) {
		err_nomem(err);
		goto out;
	}
	/* problems in line order; a stable order for equal lines */
	if (ini->n_probs)
		qsort(ini->probs, ini->n_probs, sizeof(*ini->probs), problem_cmp);
	for (i = 0; i < ini->n_probs; i++)
		ini->probs[i].pub.msg = ini->probs[i].msg;
	*out = ini;
	ini = NULL;
	rc = 0;
out:
	free(own);
	buf_wipe(&text);
	ini_free(ini);
	return rc;
}

int ini_parse(struct ini **out, const char *name, const char *data,
	      size_t len, struct ms_err *err)
{
	return parse(out, name, NULL, data, len, err);
}

int ini_load(struct ini **out, const char *path, struct ms_err *err)
{
	char *data = NULL;
	size_t len = 0;

	*out = NULL;
	if (fs_read_file(path, INI_MAX_FILE, &data, &len, err) < 0)
		return -1;
	return parse(out, path, data, data, len, err);
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

enum eol ini_dominant(const struct ini *ini)
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
	return ini_eol_bytes[ini_dominant(ini)];
}

size_t ini_line_count(const struct ini *ini)
{
	return ini->n;
}

static void index_free(struct kindex *x)
{
	free(x);        /* one block: the struct and its arrays */
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

int ini_reindex(struct ini *ini)
{
	struct kindex *x;
	size_t i, ns = ini->n_sects ? ini->n_sects : 1, nl = ini->n ? ini->n : 1;
	size_t *start;
	char *p;

	index_free(ini->index);
	ini->index = NULL;
	/* one block: bykey, bysect (nl each), first_hdr, visible, start (ns
	 * each), then has_keys; start is scratch for the sort by section */
	if (nl > (SIZE_MAX - sizeof(*x)) / sizeof(size_t) / 2 - 3 * ns - 1)
		return -1;
	p = malloc(sizeof(*x) + (2 * nl + 3 * ns) * sizeof(size_t) + ns);
	if (!p)
		return -1;
	x = (struct kindex *)(void *)p;
	memset(x, 0, sizeof(*x));
	x->bykey = (size_t *)(void *)(p + sizeof(*x));
	x->bysect = x->bykey + nl;
	x->first_hdr = x->bysect + nl;
	x->visible = x->first_hdr + ns;
	start = x->visible + ns;
	x->has_keys = (unsigned char *)(start + ns);
	memset(x->first_hdr, 0, ns * sizeof(size_t));
	memset(start, 0, ns * sizeof(size_t));
	memset(x->has_keys, 0, ns);
	for (i = 0; i < ini->n; i++) {
		const struct iline *l = &ini->lines[i];

		if (l->kind == LK_KEY) {
			x->bykey[x->nkeys++] = i;
			x->has_keys[l->sect] = 1;
			start[l->sect]++;
		} else if (l->kind == LK_SECTION && !x->first_hdr[l->sect]) {
			x->first_hdr[l->sect] = i + 1;
		}
	}
	for (i = 0; i < ini->n_sects; i++)
		if (x->first_hdr[i] || (i == 0 && x->has_keys[0]))
			x->visible[x->n_visible++] = i;
	/* bysect: key lines by (section, line), a counting sort */
	{
		size_t sum = 0;

		for (i = 0; i < ns; i++) {
			size_t c = start[i];

			start[i] = sum;
			sum += c;
		}
		for (i = 0; i < x->nkeys; i++)
			x->bysect[start[ini->lines[x->bykey[i]].sect]++] = x->bykey[i];
	}
	/* bykey: (section, key, line); from the section order each run of a
	 * section is sorted on its own */
	memcpy(x->bykey, x->bysect, x->nkeys * sizeof(size_t));
	for (i = 0; i < x->nkeys;) {
		size_t j = i + 1, s = ini->lines[x->bykey[i]].sect;

		while (j < x->nkeys && ini->lines[x->bykey[j]].sect == s)
			j++;
		if (j - i > 1)
			qsort_r(x->bykey + i, j - i, sizeof(size_t), bykey_cmp,
				ini->lines);
		i = j;
	}
	ini->index = x;
	return 0;
}

/* The index, rebuilt first when an edit batch left it stale (the
 * handle's own user asks: a handle is not thread-safe); NULL when out of
 * memory. */
static const struct kindex *index_of(const struct ini *ini)
{
	if (ini->stale) {
		struct ini *w = (struct ini *)ini;   /* the index is a cache */

		if (ini_reindex(w) == 0)
			w->stale = 0;
	}
	return ini->index;
}

long ini_find_key_scan(const struct ini *ini, long s, const char *key)
{
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

/* Index of the last key line of (section s, key), -1 if none. */
static long find_key_in(const struct ini *ini, long s, const char *key)
{
	const struct kindex *x = ini->index;
	size_t lo = 0, hi;

	if (ini->stale)
		return ini_find_key_scan(ini, s, key);   /* in an edit batch */
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

/* Index of the last key line of (s, key), -1 if none. */
long ini_find_key(const struct ini *ini, const char *section,
		  const char *key)
{
	return find_key_in(ini, ini_find_sect(ini, section), key);
}

long ini_section_index(const struct ini *ini, const char *section)
{
	return ini_find_sect(ini, section);
}

const char *ini_get_in(const struct ini *ini, long section_index, const char *key)
{
	long i = find_key_in(ini, section_index, key);

	return i < 0 ? NULL : ini->lines[i].value;
}

const char *ini_get(const struct ini *ini, const char *section, const char *key)
{
	long i = ini_find_key(ini, section, key);

	return i < 0 ? NULL : ini->lines[i].value;
}

int ini_get_line(const struct ini *ini, const char *section, const char *key)
{
	long i = ini_find_key(ini, section, key);

	return i < 0 ? 0 : (int)i + 1;
}

int ini_has_section(const struct ini *ini, const char *section)
{
	long s = ini_find_sect(ini, section);
	const struct kindex *x;
	size_t i;

	if (s < 0)
		return 0;
	if (ini->stale) {
		/* in an edit batch: a header or a key line of s */
		for (i = 0; i < ini->n; i++)
			if (ini->lines[i].sect == (size_t)s &&
			    (ini->lines[i].kind == LK_SECTION || ini->lines[i].kind == LK_KEY))
				return 1;
		return 0;
	}
	x = ini->index;
	return x && (x->first_hdr[s] > 0 || x->has_keys[s]);
}

size_t ini_section_count(const struct ini *ini)
{
	const struct kindex *x = index_of(ini);

	return x ? x->n_visible : 0;
}

const char *ini_section_name(const struct ini *ini, size_t i)
{
	const struct kindex *x = index_of(ini);

	if (!x || i >= x->n_visible)
		return NULL;
	return ini->sects[x->visible[i]].name;
}

int ini_section_line(const struct ini *ini, size_t i)
{
	const struct kindex *x = index_of(ini);

	if (!x || i >= x->n_visible)
		return 0;
	return (int)x->first_hdr[x->visible[i]];
}

int ini_foreach_key(const struct ini *ini, const char *section,
		    ini_key_fn fn, void *ctx)
{
	const struct kindex *x = index_of(ini);
	long s = ini_find_sect(ini, section);
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
		return ms_strndup(value + 1, n - 2);
	return strdup(value);
}
