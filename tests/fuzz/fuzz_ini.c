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

	ini_free(ini);
	return 0;
}
