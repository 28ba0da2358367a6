/*
 * mask.c - .NET-style regular expressions on PCRE2 (see mask.h).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "mail/mask.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

/* Limits for one match: enough for any sane mask on a 64 KiB line, small
 * enough that catastrophic backtracking stops within a fraction of a
 * second. */
#define MASK_MATCH_LIMIT   2000000
#define MASK_DEPTH_LIMIT   100000
#define MASK_HEAP_LIMIT_KB (32 * 1024)
#define MASK_PATTERN_MAX   (64 * 1024)

struct mask {
	char *pattern;
	pcre2_code *code;
	pcre2_match_context *mctx;
	uint32_t n_pcre;        /* PCRE2 capture count */
	/* .NET group k (1-based) is made of PCRE2 groups slot[k]: one group, or
	 * several for a duplicated name (the first that is set wins). */
	size_t n_slots;
	uint32_t **slot;        /* slot[k] is a 0-terminated list */
};

/* .NET's character class subtraction ([a-z-[aeiou]]) means something else
 * to PCRE2 (a class, then a literal ']'): refuse it instead of silently
 * matching differently.  Returns the offset of the "-[" or -1. */
static long find_class_subtraction(const char *p)
{
	int in_class = 0, class_start = 0;
	size_t i;

	for (i = 0; p[i]; i++) {
		if (p[i] == '\\') {
			if (p[i + 1] == 'Q') {       /* \Q...\E literal run */
				const char *e = strstr(p + i + 2, "\\E");
				if (!e)
					return -1;
				i = (size_t)(e - p) + 1;
				continue;
			}
			if (p[i + 1])
				i++;
			continue;
		}
		if (!in_class) {
			if (p[i] == '[') {
				in_class = 1;
				class_start = 1;
			}
			continue;
		}
		if (class_start) {
			/* "[]" and "[^]" start: ']' right after is literal */
			class_start = 0;
			if (p[i] == '^') {
				class_start = 1;
				continue;
			}
			if (p[i] == ']')
				continue;
		}
		if (p[i] == '[' && p[i + 1] == ':') {   /* [:alpha:] */
			const char *e = strstr(p + i + 2, ":]");
			if (e) {
				i = (size_t)(e - p) + 1;
				continue;
			}
		}
		if (p[i] == '-' && p[i + 1] == '[')
			return (long)i;
		if (p[i] == ']')
			in_class = 0;
	}
	return -1;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

struct name_first {
	const unsigned char *name;
	uint32_t first;
};

static int cmp_first(const void *a, const void *b)
{
	const struct name_first *x = a, *y = b;
	return x->first < y->first ? -1 : x->first > y->first;
}

/* Work out .NET's numbering from PCRE2's name table. */
static int build_slots(struct mask *m, struct ms_err *err)
{
	uint32_t namecount = 0, entrysize = 0, i, j;
	PCRE2_SPTR table = NULL;
	unsigned char *named = NULL;
	struct name_first *names = NULL;
	size_t n_names = 0, k = 0;
	int rc = -1;

	pcre2_pattern_info(m->code, PCRE2_INFO_CAPTURECOUNT, &m->n_pcre);
	pcre2_pattern_info(m->code, PCRE2_INFO_NAMECOUNT, &namecount);
	pcre2_pattern_info(m->code, PCRE2_INFO_NAMEENTRYSIZE, &entrysize);
	pcre2_pattern_info(m->code, PCRE2_INFO_NAMETABLE, &table);

	named = calloc(m->n_pcre + 1, 1);
	names = calloc(namecount + 1, sizeof(*names));
	m->slot = calloc(m->n_pcre + 1, sizeof(*m->slot));
	if (!named || !names || !m->slot)
		goto nomem;

	/* The table is sorted by name: entries with equal names are adjacent. */
	for (i = 0; i < namecount; i++) {
		PCRE2_SPTR e = table + (size_t)i * entrysize;
		uint32_t num = ((uint32_t)e[0] << 8) | e[1];
		if (num <= m->n_pcre)
			named[num] = 1;
		if (n_names && strcmp((const char *)names[n_names - 1].name,
				      (const char *)e + 2) == 0) {
			if (num < names[n_names - 1].first)
				names[n_names - 1].first = num;
			continue;
		}
		names[n_names].name = e + 2;
		names[n_names].first = num;
		n_names++;
	}
	qsort(names, n_names, sizeof(*names), cmp_first);

	/* unnamed groups first */
	for (i = 1; i <= m->n_pcre; i++) {
		if (named[i])
			continue;
		if (!(m->slot[k] = calloc(2, sizeof(uint32_t))))
			goto nomem;
		m->slot[k++][0] = i;
	}
	/* then one slot per distinct name, by first appearance */
	for (j = 0; j < n_names; j++) {
		uint32_t cnt = 0, *list;
		for (i = 0; i < namecount; i++)
			if (strcmp((const char *)table + (size_t)i * entrysize + 2,
				   (const char *)names[j].name) == 0)
				cnt++;
		if (!(list = calloc(cnt + 1, sizeof(uint32_t))))
			goto nomem;
		cnt = 0;
		for (i = 0; i < namecount; i++) {
			PCRE2_SPTR e = table + (size_t)i * entrysize;
			if (strcmp((const char *)e + 2,
				   (const char *)names[j].name) == 0)
				list[cnt++] = ((uint32_t)e[0] << 8) | e[1];
		}
		qsort(list, cnt, sizeof(uint32_t), cmp_u32);
		m->slot[k++] = list;
	}
	m->n_slots = k;
	rc = 0;
	goto done;
nomem:
	err_nomem(err);
done:
	free(named);
	free(names);
	return rc;
}

int mask_compile(struct mask **out, const char *pattern, struct ms_err *err)
{
	struct mask *m = NULL;
	int errcode = 0;
	PCRE2_SIZE erroff = 0;
	long sub;
	uint32_t opts = PCRE2_UTF | PCRE2_UCP | PCRE2_DUPNAMES |
			PCRE2_MATCH_INVALID_UTF;

	*out = NULL;
	if (!pattern)
		pattern = "";
	if (strlen(pattern) > MASK_PATTERN_MAX)
		return err_set(err, MS_ERR_CONFIG,
			       "regular expression longer than %d bytes",
			       MASK_PATTERN_MAX);
	if ((sub = find_class_subtraction(pattern)) >= 0)
		return err_set(err, MS_ERR_CONFIG,
			       "invalid regular expression at offset %ld: "
			       ".NET character class subtraction is not supported",
			       sub);
	if (!(m = calloc(1, sizeof(*m))) || !(m->pattern = strdup(pattern)))
		goto nomem;
	m->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
				opts, &errcode, &erroff, NULL);
	if (!m->code) {
		PCRE2_UCHAR msg[256];
		if (pcre2_get_error_message(errcode, msg, sizeof(msg)) < 0)
			strcpy((char *)msg, "unknown error");
		err_set(err, MS_ERR_CONFIG,
			"invalid regular expression at offset %zu: %s",
			(size_t)erroff, (char *)msg);
		mask_free(m);
		return -1;
	}
	if (!(m->mctx = pcre2_match_context_create(NULL)))
		goto nomem;
	pcre2_set_match_limit(m->mctx, MASK_MATCH_LIMIT);
	pcre2_set_depth_limit(m->mctx, MASK_DEPTH_LIMIT);
	pcre2_set_heap_limit(m->mctx, MASK_HEAP_LIMIT_KB);
	if (build_slots(m, err) < 0) {
		mask_free(m);
		return -1;
	}
	*out = m;
	return 0;
nomem:
	mask_free(m);
	return err_nomem(err);
}

const char *mask_pattern(const struct mask *m)
{
	return m ? m->pattern : NULL;
}

size_t mask_group_count(const struct mask *m)
{
	return m ? m->n_slots : 0;
}

static char *dup_range(const char *s, PCRE2_SIZE a, PCRE2_SIZE b)
{
	char *p;

	if (a == PCRE2_UNSET || b == PCRE2_UNSET || b < a)
		return strdup("");
	if (!(p = malloc(b - a + 1)))
		return NULL;
	memcpy(p, s + a, b - a);
	p[b - a] = '\0';
	return p;
}

int mask_match(const struct mask *m, const char *subject,
	       struct mask_captures *caps)
{
	pcre2_match_data *md = NULL;
	PCRE2_SIZE *ov;
	size_t k;
	int rc, ret = -1;

	if (caps) {
		caps->v = NULL;
		caps->n = 0;
	}
	if (!m)
		return -1;
	if (!subject)
		subject = "";
	if (!(md = pcre2_match_data_create_from_pattern(m->code, NULL)))
		return -1;
	rc = pcre2_match(m->code, (PCRE2_SPTR)subject, strlen(subject), 0, 0,
			 md, m->mctx);
	if (rc == PCRE2_ERROR_NOMATCH) {
		ret = 0;
		goto done;
	}
	if (rc < 0)
		goto done;
	if (!caps) {
		ret = 1;
		goto done;
	}
	ov = pcre2_get_ovector_pointer(md);
	if (!(caps->v = calloc(m->n_slots + 1, sizeof(char *))))
		goto done;
	caps->n = m->n_slots + 1;
	if (!(caps->v[0] = dup_range(subject, ov[0], ov[1])))
		goto fail;
	for (k = 0; k < m->n_slots; k++) {
		const uint32_t *g;
		uint32_t use = 0;
		for (g = m->slot[k]; *g; g++) {
			if ((int)*g < rc && ov[2 * *g] != PCRE2_UNSET) {
				use = *g;
				break;
			}
		}
		caps->v[k + 1] = use ? dup_range(subject, ov[2 * use],
						 ov[2 * use + 1])
				     : strdup("");
		if (!caps->v[k + 1])
			goto fail;
	}
	ret = 1;
	goto done;
fail:
	mask_captures_release(caps);
	ret = -1;
done:
	pcre2_match_data_free(md);
	return ret;
}

void mask_captures_release(struct mask_captures *caps)
{
	size_t i;

	if (!caps)
		return;
	for (i = 0; caps->v && i < caps->n; i++)
		free(caps->v[i]);
	free(caps->v);
	caps->v = NULL;
	caps->n = 0;
}

void mask_free(struct mask *m)
{
	size_t k;

	if (!m)
		return;
	if (m->slot) {
		for (k = 0; k <= m->n_pcre; k++)
			free(m->slot[k]);
		free(m->slot);
	}
	pcre2_match_context_free(m->mctx);
	pcre2_code_free(m->code);
	free(m->pattern);
	free(m);
}
