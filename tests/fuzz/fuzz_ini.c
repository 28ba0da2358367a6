/*
 * fuzz_ini.c - the lossless INI parser and editor, and the typed config.
 *
 * Properties checked on every input that ini_parse() accepts:
 *   - ini_serialize() gives back the input byte for byte;
 *   - ini_set() of an existing key, of a new key in an existing section
 *     and of a new section serializes to a file that parses again, where
 *     ini_get() finds the new value and every other key keeps its value;
 *   - config_from_ini() never crashes (its result is free to be an error).
 *   - an edit either serializes to bytes that parse back (same encoding,
 *     same keys and values: the re-parse here does not trust
 *     ini_serialize()'s own check), or ini_serialize() refuses it cleanly
 *     (MS_ERR_CONFIG naming the file, no bytes handed out).  A refusal is
 *     allowed only for a BOM-less UTF-16 file that also holds INI syntax
 *     characters ('[' ']' '=' CR LF) as 16-bit units of the other byte
 *     order: only there can the edit of a value tip the detection.  Any
 *     other BOM-less UTF-16 file (such as one that is mostly CJK text)
 *     must survive every edit.
 *   - an edit script made of the input's own keys (sets, removals,
 *     comments, new keys and sections, other spellings of a section)
 *     gives the same lookups after every step and the same bytes at the
 *     end whether it runs edit by edit or inside ini_edit_begin() /
 *     ini_edit_end() (the batch looks keys up by scanning the lines).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ini/config.h"
#include "base/err.h"
#include "ini/ini.h"

#define MAX_KEYS 64

struct kv {
	char *section;
	char *key;
	char *value;
};

struct snap {
	struct kv v[MAX_KEYS];
	size_t n;
	const char *section;
};

static int snap_key(const char *key, const char *value, int line, void *ctx)
{
	struct snap *s = ctx;

	(void)value;
	(void)line;
	if (s->n == MAX_KEYS)
		return 1;
	s->v[s->n].section = strdup(s->section);
	s->v[s->n].key = strdup(key);
	s->v[s->n].value = NULL;
	if (!s->v[s->n].section || !s->v[s->n].key)
		abort();
	s->n++;
	return 0;
}

/* Every (section, key) pair with the value ini_get() gives for it. */
static void snap_take(const struct ini *ini, struct snap *s)
{
	size_t i;

	s->n = 0;
	for (i = 0; i < ini_section_count(ini) && s->n < MAX_KEYS; i++) {
		s->section = ini_section_name(ini, i);
		ini_foreach_key(ini, s->section, snap_key, s);
	}
	for (i = 0; i < s->n; i++) {
		const char *v = ini_get(ini, s->v[i].section, s->v[i].key);
		if (!v) {
			fprintf(stderr, "ini_get([%s] %s) is NULL for a key "
				"ini_foreach_key() listed\n", s->v[i].section,
				s->v[i].key);
			abort();
		}
		if (!(s->v[i].value = strdup(v)))
			abort();
	}
}

static void snap_free(struct snap *s)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		free(s->v[i].section);
		free(s->v[i].key);
		free(s->v[i].value);
	}
	s->n = 0;
}

static void check_roundtrip(const struct ini *ini, const uint8_t *data,
			    size_t size)
{
	struct ms_err err = {0};
	char *out = NULL;
	size_t outlen = 0;

	if (ini_serialize(ini, &out, &outlen, &err) != 0) {
		fprintf(stderr, "serialize of a parsed file failed: %s\n",
			err.msg);
		abort();
	}
	if (outlen != size || memcmp(out, data, size) != 0) {
		fprintf(stderr, "round trip differs: %zu bytes in, %zu out\n",
			size, outlen);
		abort();
	}
	free(out);
}

/*
 * A BOM-less UTF-16 file with INI syntax characters as 16-bit units of
 * the other byte order too (however it reads as a whole)?
 */
static int ambiguous_utf16(const struct ini *ini, const uint8_t *p, size_t n)
{
	size_t i, other = 0;
	int be;

	if (ini_encoding(ini) != INI_ENC_UTF16LE &&
	    ini_encoding(ini) != INI_ENC_UTF16BE)
		return 0;
	be = ini_encoding(ini) == INI_ENC_UTF16BE;
	for (i = 0; i + 1 < n; i += 2) {
		unsigned u = be ? (unsigned)(p[i + 1] << 8 | p[i])
				: (unsigned)(p[i] << 8 | p[i + 1]);

		other += u == '[' || u == ']' || u == '=' || u == '\r' ||
			 u == '\n';
	}
	return other > 0;
}

/*
 * Set section/key to value, serialize, re-parse and check the result.
 */
static void check_set(const uint8_t *data, size_t size, const char *section,
		      const char *key, const char *value)
{
	struct ms_err err = {0};
	struct ini *a = NULL, *b = NULL;
	struct snap before, after;
	char *out = NULL;
	size_t outlen = 0, i;
	const char *got;

	if (ini_parse(&a, "fuzz", (const char *)data, size, &err) != 0)
		abort();
	snap_take(a, &before);
	if (ini_set(a, section, key, value, &err) != 0) {
		/* The only refusals allowed are resource ones. */
		if (err.code != MS_ERR_NOMEM && err.code != MS_ERR_TOOBIG) {
			fprintf(stderr, "ini_set failed: %s\n", err.msg);
			abort();
		}
		goto done;
	}
	got = ini_get(a, section, key);
	if (!got || strcmp(got, value) != 0) {
		fprintf(stderr, "ini_get after ini_set([%s] %s=%s) gives %s\n",
			section, key, value, got ? got : "NULL");
		abort();
	}
	if (ini_serialize(a, &out, &outlen, &err) != 0) {
		/* A clean refusal: the bytes would not read back the same. */
		if (err.code == MS_ERR_NOMEM || err.code == MS_ERR_TOOBIG)
			goto done;
		if (err.code != MS_ERR_CONFIG || !strstr(err.msg, "'fuzz'") ||
		    out || !ambiguous_utf16(a, data, size)) {
			fprintf(stderr, "serialize after set failed: %s\n",
				err.msg);
			abort();
		}
		goto done;
	}
	if (ini_parse(&b, "fuzz2", out, outlen, &err) != 0) {
		fprintf(stderr, "re-parse after ini_set([%s] %s=%s) failed: %s\n",
			section, key, value, err.msg);
		abort();
	}
	if (ini_encoding(b) != ini_encoding(a)) {
		fprintf(stderr, "ini_set([%s] %s=%s) turned %s into %s\n",
			section, key, value, ini_encoding_name(a),
			ini_encoding_name(b));
		abort();
	}
	got = ini_get(b, section, key);
	if (!got || strcmp(got, value) != 0) {
		fprintf(stderr, "re-parsed [%s] %s is '%s', set to '%s'\n",
			section, key, got ? got : "NULL", value);
		abort();
	}
	/* Every other key keeps its value. */
	snap_take(b, &after);
	for (i = 0; i < before.n; i++) {
		const char *v;

		if (!strcasecmp(before.v[i].section, section) &&
		    !strcasecmp(before.v[i].key, key))
			continue;
		v = ini_get(b, before.v[i].section, before.v[i].key);
		if (!v || strcmp(v, before.v[i].value) != 0) {
			fprintf(stderr, "ini_set([%s] %s) changed [%s] %s from "
				"'%s' to '%s'\n", section, key,
				before.v[i].section, before.v[i].key,
				before.v[i].value, v ? v : "NULL");
			abort();
		}
	}
	snap_free(&after);
done:
	snap_free(&before);
	free(out);
	ini_free(a);
	ini_free(b);
}

/* The edit script of check_batch(): step k on ini, over the keys in s;
 * its result (-1 failed, else the edit's count or 0). */
#define BATCH_KEYS 4

static int batch_step(struct ini *ini, const struct snap *s, size_t k,
		      const char *value, char *upper)
{
	struct ms_err err = {0};
	const struct kv *v = s->n ? &s->v[k / 8 % s->n] : NULL;
	const char *sec = v ? v->section : "";
	const char *key = v && v->key[0] ? v->key : "K";

	switch (k % 8) {
	case 0: return ini_set(ini, sec, key, value, &err);
	case 1: return ini_remove(ini, sec, key);
	case 2: return ini_set(ini, sec, "FuzzNewKey", value, &err);
	case 3: return ini_comment_out(ini, sec, "FuzzNewKey");
	case 4: return ini_add_comment(ini, sec, value, &err);
	case 5: return ini_add_section(ini, "FuzzBatch", &err);
	case 6: return ini_set(ini, "fuzzbatch", key, value, &err);
	default: {
		/* the section under another spelling */
		size_t i;

		for (i = 0; sec[i] && i + 1 < 64; i++)
			upper[i] = (char)(sec[i] >= 'a' && sec[i] <= 'z' ? sec[i] - 32 : sec[i]);
		upper[i] = '\0';
		return ini_set(ini, upper, key, value, &err);
	}
	}
}

/* What a reader sees: every listed key's value and line (of the first
 * BATCH_KEYS of s and the script's own), the sections and their lines. */
static int batch_same(const struct ini *a, const struct ini *b, const struct snap *s)
{
	static const char *const own[][2] = {
		{ "FuzzBatch", "K" }, { "fuzzbatch", "FuzzNewKey" },
	};
	size_t i;

	for (i = 0; i < s->n + 2; i++) {
		const char *sec = i < s->n ? s->v[i].section : own[i - s->n][0];
		const char *key = i < s->n ? s->v[i].key : own[i - s->n][1];
		const char *x = ini_get(a, sec, key), *y = ini_get(b, sec, key);

		if ((!x) != (!y) || (x && strcmp(x, y)) ||
		    ini_get_line(a, sec, key) != ini_get_line(b, sec, key) ||
		    (ini_get(a, sec, "FuzzNewKey") != NULL) != (ini_get(b, sec, "FuzzNewKey") != NULL) ||
		    ini_has_section(a, sec) != ini_has_section(b, sec))
			return 0;
	}
	if (ini_has_section(a, "FUZZBATCH") != ini_has_section(b, "FUZZBATCH") ||
	    ini_section_count(a) != ini_section_count(b))
		return 0;
	for (i = 0; i < ini_section_count(a); i++)
		if (strcmp(ini_section_name(a, i), ini_section_name(b, i)) ||
		    ini_section_line(a, i) != ini_section_line(b, i))
			return 0;
	return 1;
}

/* The same edit script edit by edit and in a batch. */
static void check_batch(const uint8_t *data, size_t size, const char *value)
{
	struct ms_err e1 = {0}, e2 = {0};
	struct ini *one = NULL, *bat = NULL;
	struct snap s;
	char up1[64], up2[64], *d1 = NULL, *d2 = NULL;
	size_t l1 = 0, l2 = 0, k;
	int r1, r2;

	if (ini_parse(&one, "fuzz", (const char *)data, size, &e1) != 0 ||
	    ini_parse(&bat, "fuzz", (const char *)data, size, &e2) != 0)
		abort();
	snap_take(one, &s);
	if (s.n > BATCH_KEYS) {
		for (k = BATCH_KEYS; k < s.n; k++) {
			free(s.v[k].section);
			free(s.v[k].key);
			free(s.v[k].value);
		}
		s.n = BATCH_KEYS;
	}
	ini_edit_begin(bat);
	for (k = 0; k < 8 * (s.n ? s.n : 1); k++) {
		r1 = batch_step(one, &s, k, value, up1);
		r2 = batch_step(bat, &s, k, value, up2);
		if (r1 != r2 || !batch_same(one, bat, &s)) {
			fprintf(stderr, "batch differs at step %zu (%zu %% 8): %d vs %d\n",
				k, k % 8, r1, r2);
			abort();
		}
	}
	if (ini_edit_end(bat, &e2) != 0) {
		if (e2.code != MS_ERR_NOMEM)
			abort();
		goto done;
	}
	if (!batch_same(one, bat, &s)) {
		fprintf(stderr, "batch differs after ini_edit_end()\n");
		abort();
	}
	e1 = (struct ms_err){0};
	e2 = (struct ms_err){0};
	r1 = ini_serialize(one, &d1, &l1, &e1);
	r2 = ini_serialize(bat, &d2, &l2, &e2);
	if (r1 != r2 || e1.code != e2.code ||
	    (r1 == 0 && (l1 != l2 || memcmp(d1, d2, l1) != 0))) {
		fprintf(stderr, "batch serializes differently: %d/%zu vs %d/%zu\n",
			r1, l1, r2, l2);
		abort();
	}
done:
	snap_free(&s);
	free(d1);
	free(d2);
	ini_free(one);
	ini_free(bat);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ms_err err = {0};
	struct ini *ini = NULL;
	struct config cfg;
	char value[24];
	size_t i, n = 0;

	if (size > 64 * 1024)
		return 0;
	if (ini_parse(&ini, "fuzz", (const char *)data, size, &err) != 0)
		return 0;
	check_roundtrip(ini, data, size);
	(void)ini_check(ini, &err);

	memset(&cfg, 0, sizeof(cfg));
	err = (struct ms_err){0};
	(void)config_from_ini(&cfg, ini, "fuzz.ini", &err);
	config_release(&cfg);

	/* A value made of the input's printable bytes, no edge blanks. */
	for (i = 0; i < size && n < sizeof(value) - 1; i++)
		if (data[i] > 0x20 && data[i] < 0x7f)
			value[n++] = (char)data[i];
	if (n == 0)
		value[n++] = 'v';
	value[n] = '\0';

	/* An existing key: the first one listed with a name (a line with
	 * an empty key name is a parse problem that ini_set() refuses). */
	{
		struct snap s;

		snap_take(ini, &s);
		for (i = 0; i < s.n; i++) {
			if (!s.v[i].key[0])
				continue;
			check_set(data, size, s.v[i].section, s.v[i].key, value);
			/* a new key in an existing section */
			check_set(data, size, s.v[i].section, "FuzzNewKey",
				  value);
			break;
		}
		snap_free(&s);
	}
	/* A new section. */
	check_set(data, size, "FuzzNewSection", "Key", value);
	check_batch(data, size, value);

	ini_free(ini);
	return 0;
}
