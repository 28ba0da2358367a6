/*
 * test_ini.c - the lossless INI parser/editor.  Run from the repository
 * root (files are found under samples/ini and tests/data/ini).
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fsutil.h"
#include "ini/ini.h"
#include "tap.h"

static int read_all(const char *path, char **data, size_t *len)
{
	struct ms_err err = MS_ERR_INIT;

	return fs_read_file(path, INI_MAX_FILE, data, len, &err);
}

static int same_as_file(const struct ini *ini, const char *path)
{
	struct ms_err err = MS_ERR_INIT;
	char *want = NULL, *got = NULL;
	size_t wlen = 0, glen = 0;
	int same;

	if (read_all(path, &want, &wlen) < 0)
		return 0;
	if (ini_serialize(ini, &got, &glen, &err) < 0) {
		free(want);
		return 0;
	}
	same = wlen == glen && memcmp(want, got, wlen) == 0;
	if (!same) {
		size_t i = 0;

		while (i < wlen && i < glen && want[i] == got[i])
			i++;
		printf("# %s: differs at byte %zu (got %zu bytes, want %zu)\n",
		       path, i, glen, wlen);
	}
	free(want);
	free(got);
	return same;
}

static int roundtrip_dir(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		struct ms_err err = MS_ERR_INIT;
		struct ini *ini = NULL;
		char *path;
		size_t l = strlen(de->d_name);

		if (l < 5 || strcmp(de->d_name + l - 4, ".ini") != 0)
			continue;
		path = fs_join(dir, de->d_name);
		if (!ok(ini_load(&ini, path, &err) == 0, "parse %s (%s)", path, err.msg)) {
			free(path);
			continue;
		}
		ok(same_as_file(ini, path), "round trip %s (%s) is byte-identical",
		   path, ini_encoding_name(ini));
		ini_free(ini);
		free(path);
		n++;
	}
	closedir(d);
	return n;
}

static struct ini *load(const char *path)
{
	struct ms_err err = MS_ERR_INIT;
	struct ini *ini = NULL;

	if (ini_load(&ini, path, &err) < 0)
		printf("# %s\n", err.msg);
	return ini;
}

static void test_roundtrip(void)
{
	int n1 = roundtrip_dir("samples/ini");
	int n2 = roundtrip_dir("tests/data/ini");
	int n3 = roundtrip_dir("tests/data/ini/golden");

	ok(n1 >= 6, "round-tripped %d sample files", n1);
	ok(n2 >= 10, "round-tripped %d test data files", n2);
	ok(n3 >= 3, "round-tripped %d golden files", n3);
}

static void test_encodings(void)
{
	static const struct { const char *path, *enc; } cases[] = {
		{ "samples/ini/example1-job-add.ini", "UTF-8" },
		{ "samples/ini/example1-crlf-bom.ini", "UTF-8 with BOM" },
		{ "samples/ini/example3-utf16le-bom-crlf.ini", "UTF-16LE with BOM" },
		{ "tests/data/ini/utf16le-nobom.ini", "UTF-16LE" },
		{ "tests/data/ini/utf16be-bom.ini", "UTF-16BE with BOM" },
	};
	struct ini *ini;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ini = load(cases[i].path);
		is(ini ? ini_encoding_name(ini) : NULL, cases[i].enc,
		   "%s is %s", cases[i].path, cases[i].enc);
		ini_free(ini);
	}
	ini = load("samples/ini/example3-utf16le-bom-crlf.ini");
	is(ini ? ini_get(ini, "Tokens", "SCHEDULE") : NULL, "AP-DAILY",
	   "UTF-16 values come out as UTF-8");
	is(ini ? ini_dominant_eol(ini) : NULL, "\r\n", "UTF-16 file uses CRLF");
	ini_free(ini);
	ini = load("tests/data/ini/utf16be-bom.ini");
	is(ini ? ini_get(ini, "General", "OpConUser") : NULL, "\xc3\xa9mile",
	   "UTF-16BE non-ASCII decoded");
	ini_free(ini);
	ini = load("tests/data/ini/utf16le-bom-astral.ini");
	is(ini ? ini_get(ini, "Tokens", "SMILE") : NULL, "\xf0\x9f\x98\x80 ok",
	   "surrogate pair decoded");
	ini_free(ini);
	ini = load("tests/data/ini/mixed-eol.ini");
	if (ini) {
		is(ini_get(ini, "General", "C"), "3", "lone CR ends a line");
		is(ini_get(ini, "General", "E"), "5", "last line without a newline");
		is_int(ini_get_line(ini, "General", "E"), 10, "line numbers count CR, CRLF, LF");
		is_int(ini_line_count(ini), 10, "ten lines");
	}
	ini_free(ini);
}

static void test_lookups(void)
{
	struct ini *ini = load("samples/ini/variant-odd-spacing.ini");
	const struct ini_problem *p;

	if (!ok(ini != NULL, "variant-odd-spacing parses"))
		return;
	is(ini_get(ini, "general", "MSGINDIRECTORY"), "%PROGRAMDATA%\\OpConxps\\SAM\\MSGIN",
	   "case-insensitive lookup, value trimmed (trailing blanks)");
	is(ini_get(ini, "General", "OpConUser"), "svc_opcon", "tab after = trimmed");
	is(ini_get(ini, "Mail", "Server"), "127.0.0.1", "indented key in [MAIL]");
	is(ini_get(ini, "", "Owner"), "ops team", "key before any section is in \"\"");
	is(ini_get(ini, "Configuration2", "SubjectLineMask"),
	   "^Restart (\\w+) on (\\w+)$ ; not a comment: part of the mask",
	   "no inline comments in values");
	is(ini_get(ini, "General", "LastRunDate"), "12/31/2023 11:59:59 PM",
	   "commented-out key is not a key");
	ok(ini_get(ini, "General", "Nope") == NULL, "absent key is NULL");
	ok(ini_get(ini, "Nope", "Server") == NULL, "absent section is NULL");
	is_int(ini_get_line(ini, "Mail", "Port"), 19, "ini_get_line");
	{
		long g = ini_section_index(ini, "GENERAL"), m = ini_section_index(ini, "mail");

		ok(g >= 0 && m >= 0 && g != m, "section numbers, case ignored");
		is(ini_get_in(ini, g, "opconuser"), "svc_opcon", "ini_get_in, as ini_get");
		is(ini_get_in(ini, m, "Server"), "127.0.0.1", "ini_get_in in another section");
		ok(ini_get_in(ini, g, "Server") == NULL, "a key of another section is not found");
		is_int(ini_section_index(ini, "Nope"), -1, "no such section: -1");
		ok(ini_get_in(ini, -1, "Server") == NULL, "ini_get_in(-1) is NULL");
	}
	is_int(ini_section_count(ini), 6, "sections: \"\", General, MAIL, Audit, Configuration2, Configuration1");
	is(ini_section_name(ini, 0), "", "\"\" listed first when it has keys");
	is(ini_section_name(ini, 1), "General", "header spaces trimmed from name");
	is_int(ini_section_line(ini, 1), 4, "section line");
	is(ini_section_name(ini, 5), "Configuration1", "file order kept");
	ok(ini_has_section(ini, "mail"), "has_section is case-insensitive");
	is_int(ini_problem_count(ini), 0, "no problems");
	ok(ini_check(ini, NULL) == 0, "check passes");
	ini_free(ini);

	ini = load("tests/data/ini/dup-and-global.ini");
	if (!ok(ini != NULL, "dup-and-global parses"))
		return;
	is(ini_get(ini, "MAIL", "server"), "y", "duplicate key: last wins across merged headers");
	is_int(ini_section_count(ini), 2, "[Mail] and [mail] merge");
	is_int(ini_problem_count(ini), 2, "two warnings");
	p = ini_problem(ini, 0);
	ok(p && p->line == 4 && p->severity == INI_WARNING &&
	   strcmp(p->msg, "section [Mail] appears again (first at line 2); its keys merge") == 0,
	   "duplicate section warning: %s", p ? p->msg : "");
	p = ini_problem(ini, 1);
	ok(p && p->line == 6 && p->severity == INI_WARNING &&
	   strcmp(p->msg, "duplicate key 'server' in [Mail] (also at line 3); the last one wins") == 0,
	   "duplicate key warning: %s", p ? p->msg : "");
	ok(ini_check(ini, NULL) == 0, "warnings do not fail the check");
	ini_free(ini);
}

struct collect {
	char buf[512];
};

static int collect_key(const char *key, const char *value, int line, void *ctx)
{
	struct collect *c = ctx;
	size_t n = strlen(c->buf);

	snprintf(c->buf + n, sizeof(c->buf) - n, "%s=%s@%d;", key, value, line);
	return strcmp(key, "stop") == 0 ? 7 : 0;
}

static void test_foreach(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct collect c = { "" };
	struct ini *ini = NULL;
	const char *text = "[Tokens]\nA = 1\nb=two words\nA=3\nstop=x\nnever=y\n";

	ok(ini_parse(&ini, "mem.ini", text, strlen(text), &err) == 0, "parse from memory");
	is_int(ini_foreach_key(ini, "tokens", collect_key, &c), 7,
	       "callback's non-zero return stops and is returned");
	is(c.buf, "A=1@2;b=two words@3;A=3@4;stop=x@5;", "keys in file order with lines");
	ini_free(ini);
}

static void test_malformed(void)
{
	static const struct { const char *file, *msg; int line; } cases[] = {
		{ "bad-unterminated-section.ini",
		  "unterminated section header (missing ']')", 3 },
		{ "bad-garbage-line.ini",
		  "expected 'key = value', a [section], a comment or a blank line", 4 },
		{ "bad-empty-key.ini", "missing key name before '='", 3 },
		{ "bad-text-after-header.ini",
		  "unexpected text after section header '[Mail]'", 1 },
		{ "bad-empty-section.ini", "empty section name '[]'", 2 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ms_err err = MS_ERR_INIT;
		struct ini *ini;
		char path[256], want[512];

		snprintf(path, sizeof(path), "tests/data/ini/%s", cases[i].file);
		snprintf(want, sizeof(want), "%s:%d: %s", path, cases[i].line, cases[i].msg);
		ini = load(path);
		if (!ok(ini != NULL, "%s parses losslessly", path))
			continue;
		ok(ini_check(ini, &err) < 0 && err.code == MS_ERR_CONFIG &&
		   err.line == cases[i].line, "%s: check fails with a line", path);
		is(err.msg, want, "%s: message", path);
		ini_free(ini);
	}
}

static void test_invalid_encoding(void)
{
	static const struct { const char *file, *msg; } cases[] = {
		{ "latin1.ini", "tests/data/ini/invalid/latin1.ini:2: invalid UTF-8 (byte 0xe9 at offset 23); save the file as UTF-8 or UTF-16 (it reads as Windows-1252, ANSI: mailshift-migrate converts it)" },
		{ "overlong.ini", "tests/data/ini/invalid/overlong.ini:2: invalid UTF-8 (byte 0xc0 at offset 12); save the file as UTF-8 or UTF-16 (it reads as Windows-1252, ANSI: mailshift-migrate converts it)" },
		{ "utf16-odd.ini", "tests/data/ini/invalid/utf16-odd.ini:3: UTF-16 file has an odd number of bytes (23)" },
		{ "utf16-lone-surrogate.ini", "tests/data/ini/invalid/utf16-lone-surrogate.ini:2: invalid UTF-16 (unpaired surrogate at offset 18)" },
		{ "nul.ini", "tests/data/ini/invalid/nul.ini:3: NUL byte in the file" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ms_err err = MS_ERR_INIT;
		struct ini *ini = NULL;
		char path[256];

		snprintf(path, sizeof(path), "tests/data/ini/invalid/%s", cases[i].file);
		ok(ini_load(&ini, path, &err) < 0 && ini == NULL &&
		   err.code == MS_ERR_CONFIG, "%s refused", path);
		is(err.msg, cases[i].msg, "%s: message", path);
	}
}

static void test_edits(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct ini *ini;
	char *data = NULL;
	size_t len = 0;

	ini = load("samples/ini/example1-crlf-bom.ini");
	if (ini) {
		ok(ini_set(ini, "mail", "server", "127.0.0.1", &err) == 0, "set existing key");
		ok(same_as_file(ini, "tests/data/ini/golden/example1-crlf-bom.set-server.ini"),
		   "CRLF + BOM: only the value bytes changed");
		is(ini_get(ini, "Mail", "Server"), "127.0.0.1", "lookup sees the new value");
	}
	ini_free(ini);

	ini = load("samples/ini/example3-utf16le-bom-crlf.ini");
	if (ini) {
		ok(ini_set(ini, "Mail", "Port", "1993", &err) == 0, "UTF-16: set Port");
		ok(ini_set(ini, "General", "LastRunDate", "11/28/2026 1:02:03 AM", &err) == 0,
		   "UTF-16: add LastRunDate");
		ok(same_as_file(ini, "tests/data/ini/golden/example3-utf16le.set-port-add-date.ini"),
		   "UTF-16LE + CRLF: matches golden");
	}
	ini_free(ini);

	ini = load("samples/ini/variant-odd-spacing.ini");
	if (ini) {
		ok(ini_set(ini, "General", "LastRunDate", "1/2/2024 3:04:05 AM", &err) == 0,
		   "set with odd spacing");
		ok(ini_set(ini, NULL, "owner", "platform team", &err) == 0, "set in \"\"");
		ok(ini_set(ini, "Mail", "AuthMethod", "OAuth2", &err) == 0, "add key, indented section");
		is_int(ini_remove(ini, "general", "downloadfolder"), 1, "remove a key");
		is_int(ini_remove(ini, "general", "downloadfolder"), 0, "remove again: none");
		is_int(ini_comment_out(ini, "Configuration1", "AllowedSenders"), 1, "comment out");
		ok(ini_get(ini, "Configuration1", "AllowedSenders") == NULL, "commented key gone");
		ok(ini_set(ini, "OAuth", "TenantId", "contoso.onmicrosoft.com", &err) == 0,
		   "add a section");
		ok(same_as_file(ini, "tests/data/ini/golden/variant-odd-spacing.edited.ini"),
		   "no final newline kept; spacing copied; other bytes untouched");
		is_int(ini_get_line(ini, "OAuth", "TenantId"), 40, "new key's line");
	}
	ini_free(ini);

	/* refused edits */
	ini = ini_new("new.ini");
	err_clear(&err);
	ok(ini_set(ini, "Mail", "Server", "a\nb", &err) < 0 && err.code == MS_ERR_CONFIG,
	   "value with a line break refused");
	err_clear(&err);
	ok(ini_set(ini, "Mail", "Ser=ver", "x", &err) < 0, "key with '=' refused");
	err_clear(&err);
	ok(ini_set(ini, "Ma]il", "Server", "x", &err) < 0, "section with ']' refused");
	err_clear(&err);
	ok(ini_set(ini, "Mail", "Server", "\xff", &err) < 0, "invalid UTF-8 refused");
	/* building a file from nothing uses CRLF and ends with a newline */
	err_clear(&err);
	ok(ini_set(ini, "Mail", "Server", "x", &err) == 0 &&
	   ini_set(ini, "Mail", "Port", "993", &err) == 0 &&
	   ini_add_comment(ini, "Mail", "added by a test", &err) == 0 &&
	   ini_set(ini, "General", "A", "1", &err) == 0, "build a new file");
	ok(ini_serialize(ini, &data, &len, &err) == 0, "serialize");
	is(data, "[Mail]\r\nServer=x\r\nPort=993\r\n# added by a test\r\n\r\n[General]\r\nA=1\r\n",
	   "new file content");
	free(data);
	ini_free(ini);

	/* add a key to a section whose last lines are comments */
	{
		const char *text = "[A]\nx = 1\n# about B\n\n[B]\ny=2\n";

		ini = NULL;
		ok(ini_parse(&ini, "m", text, strlen(text), &err) == 0, "parse");
		ok(ini_set(ini, "A", "z", "3", &err) == 0, "add to [A]");
		ok(ini_serialize(ini, &data, &len, &err) == 0, "serialize");
		is(data, "[A]\nx = 1\nz = 3\n# about B\n\n[B]\ny=2\n",
		   "new key goes after the last key, before comments");
		free(data);
		ini_free(ini);
	}
	/* empty value: the new value goes after the blanks */
	{
		const char *text = "[A]\r\nx =  \r\ny=";

		ini = NULL;
		ok(ini_parse(&ini, "m", text, strlen(text), &err) == 0, "parse");
		ok(ini_set(ini, "A", "x", "1", &err) == 0 && ini_set(ini, "A", "y", "2", &err) == 0,
		   "set empty values");
		ok(ini_serialize(ini, &data, &len, &err) == 0, "serialize");
		is(data, "[A]\r\nx =  1\r\ny=2", "values filled in");
		free(data);
		ini_free(ini);
	}
}

static char *edit_text(const char *text, int (*fn)(struct ini *))
{
	struct ms_err err = MS_ERR_INIT;
	struct ini *ini = NULL;
	char *data = NULL;
	size_t len;

	if (ini_parse(&ini, "m", text, strlen(text), &err) < 0)
		return NULL;
	if (fn(ini) < 0 || ini_serialize(ini, &data, &len, &err) < 0)
		data = NULL;
	ini_free(ini);
	return data;
}

static int add_b(struct ini *ini)
{
	return ini_set(ini, "B", "y", "2", NULL);
}

static int remove_y(struct ini *ini)
{
	return ini_remove(ini, "A", "y") == 1 ? 0 : -1;
}

static void test_line_end_corners(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct ini *ini = NULL;
	struct buf b;
	char *s;
	int i;

	s = edit_text("[A]\nx=1\nz=2\r", add_b);
	is(s, "[A]\nx=1\nz=2\r\r[B]\ny=2\n",
	   "blank line after a lone CR gets a CR (CR + LF would read as one CRLF)");
	free(s);
	s = edit_text("[A]\nx=1\n\ny=2", remove_y);
	is(s, "[A]\nx=1\n\n", "removing the unterminated last line keeps the blank line");
	free(s);
	s = edit_text("[A]\nx=1\ny=2", remove_y);
	is(s, "[A]\nx=1", "removing the last line: still no final newline");
	free(s);

	buf_init(&b, 0);
	for (i = 0; i < 1200; i++)
		buf_appends(&b, "garbage\n", NULL);
	ok(ini_parse(&ini, "g.ini", b.data, b.len, &err) == 0, "1200 garbage lines parse");
	is_int(ini ? ini_problem_count(ini) : 0, INI_MAX_PROBLEMS + 1, "problems are capped");
	if (ini && ini_problem_count(ini) == INI_MAX_PROBLEMS + 1)
		is(ini_problem(ini, INI_MAX_PROBLEMS)->msg,
		   "more than 1000 problems; the rest are not listed", "cap note");
	ini_free(ini);
	buf_release(&b);

	/* lookups follow edits (the index is rebuilt) */
	ini = load("samples/ini/example3-attachments.ini");
	if (ini) {
		size_t n = ini_section_count(ini);

		ok(ini_add_section(ini, "State", &err) == 0, "add a section");
		is_int(ini_section_count(ini), n + 1, "section count follows");
		is(ini_section_name(ini, n), "State", "new section listed last");
		is_int(ini_section_line(ini, n), 65, "its header line");
		ok(ini_add_section(ini, "state", &err) == 0 && ini_section_count(ini) == n + 1,
		   "adding an existing section does nothing");
		is_int(ini_remove(ini, "Tokens", "VENDORS"), 1, "remove a token");
		ok(ini_get(ini, "Tokens", "VENDORS") == NULL, "gone from lookups");
		is_int(ini_get_line(ini, "Tokens", "SCHEDULE"), 46, "later lines renumbered");
		ok(ini_set(ini, "State", "StateDatabase", "x.db", &err) == 0 &&
		   ini_get_line(ini, "State", "StateDatabase") == 65, "key in the new section");
	}
	ini_free(ini);
}

static void test_save(void)
{
	struct ms_err err = MS_ERR_INIT;
	char dir[] = "/tmp/test_ini.XXXXXX", *path;
	struct ini *ini = load("samples/ini/example3-utf16le-bom-crlf.ini"), *again = NULL;

	if (!ok(ini && mkdtemp(dir), "temp dir"))
		return;
	path = fs_join(dir, "saved.ini");
	ok(ini_set(ini, "Mail", "Port", "1993", &err) == 0 &&
	   ini_set(ini, "General", "LastRunDate", "11/28/2026 1:02:03 AM", &err) == 0 &&
	   ini_save(ini, path, &err) == 0, "save (%s)", err.msg);
	ok(ini_load(&again, path, &err) == 0, "reload the saved file");
	ok(again && same_as_file(again, "tests/data/ini/golden/example3-utf16le.set-port-add-date.ini"),
	   "saved bytes match golden");
	is(again ? ini_encoding_name(again) : NULL, "UTF-16LE with BOM", "encoding kept");
	ini_free(again);
	ini_free(ini);
	unlink(path);
	rmdir(dir);
	free(path);
}

/* ---- UTF-16 without a BOM: whatever we write must read back ---- */

/* utf8 as UTF-16 (LE or BE) without a BOM; malloc'd, *len bytes. */
static char *to_utf16(const char *utf8, int be, size_t *len)
{
	const unsigned char *p = (const unsigned char *)utf8;
	unsigned char *out = malloc(strlen(utf8) * 4 + 2), *o = out;

	while (out && *p) {
		unsigned long c = *p;
		unsigned u[2];
		int k = 1, n = 1, i;

		if (c >= 0xf0) {
			c = ((c & 7) << 18) | ((p[1] & 0x3fUL) << 12) |
			    ((p[2] & 0x3fUL) << 6) | (p[3] & 0x3fUL);
			n = 4;
		} else if (c >= 0xe0) {
			c = ((c & 15) << 12) | ((p[1] & 0x3fUL) << 6) | (p[2] & 0x3fUL);
			n = 3;
		} else if (c >= 0xc0) {
			c = ((c & 31) << 6) | (p[1] & 0x3fUL);
			n = 2;
		}
		p += n;
		if (c >= 0x10000) {
			u[0] = 0xd800 + (unsigned)((c - 0x10000) >> 10);
			u[1] = 0xdc00 + (unsigned)((c - 0x10000) & 0x3ff);
			k = 2;
		} else {
			u[0] = (unsigned)c;
		}
		for (i = 0; i < k; i++) {
			*o++ = (unsigned char)(be ? u[i] >> 8 : u[i] & 0xff);
			*o++ = (unsigned char)(be ? u[i] & 0xff : u[i] >> 8);
		}
	}
	*len = out ? (size_t)(o - out) : 0;
	return (char *)out;
}

/* Parse bytes, apply the edits, serialize, parse again: the edited keys
 * have their new values, the encoding is the same. */
static int edit_reads_back(const char *what, const char *data, size_t len,
			   enum ini_encoding want_enc, const char *const *edits)
{
	struct ms_err err = MS_ERR_INIT;
	struct ini *a = NULL, *b = NULL;
	char *out = NULL;
	size_t outlen = 0, i;
	int good = 0;

	if (!ok(ini_parse(&a, what, data, len, &err) == 0, "%s: parses (%s)",
		what, err.msg))
		return 0;
	is_int(ini_encoding(a), want_enc, "%s: read as %s", what,
	       ini_encoding_name(a));
	for (i = 0; edits[i]; i += 3)
		if (ini_set(a, edits[i], edits[i + 1], edits[i + 2], &err) < 0)
			break;
	if (!ok(!edits[i], "%s: edits (%s)", what, err.msg))
		goto out;
	if (!ok(ini_serialize(a, &out, &outlen, &err) == 0,
		"%s: edited file serializes (%s)", what, err.msg))
		goto out;
	if (!ok(ini_parse(&b, "again", out, outlen, &err) == 0,
		"%s: edited file parses again (%s)", what, err.msg))
		goto out;
	is_int(ini_encoding(b), want_enc, "%s: still %s", what,
	       ini_encoding_name(b));
	good = 1;
	for (i = 0; edits[i]; i += 3) {
		const char *v = ini_get(b, edits[i], edits[i + 1]);

		if (!v || strcmp(v, edits[i + 2])) {
			good = 0;
			printf("# [%s] %s is %s\n", edits[i], edits[i + 1], v ? v : "NULL");
		}
	}
	ok(good, "%s: edited values read back", what);
out:
	ini_free(a);
	ini_free(b);
	free(out);
	return good;
}

static void test_utf16_nobom(void)
{
	/* Half ASCII: recognised before the edit by the share of zero bytes,
	 * not after it (the old detection turned this into "NUL byte"). */
	static const char half[] = "[邮件设置]\r\n服务器地址=mail.example.com\r\n";
	/* Mostly CJK, comments and all: few zero bytes at all. */
	static const char cjk[] =
		"; 这是一个邮件连接器的配置文件，请勿手工修改\r\n"
		"[邮件设置]\r\n服务器地址=邮件服务器\r\n用户名=帮助台\r\n"
		"[常规]\r\n最后运行=从未\r\n";
	static const char *const set_short[] = { "邮件设置", "服务器地址", "m", NULL };
	static const char *const set_many[] = {
		"邮件设置", "服务器地址", "m",
		"邮件设置", "Port", "993",
		"常规", "最后运行", "",
		"新的", "键", "值",
		"OAuth", "ClientId", "x", NULL };
	static const char *const set_half[] = { "邮件设置", "服务器地址", "m",
						"General", "Date", "1", NULL };
	char *d;
	size_t n;
	int be;

	for (be = 0; be < 2; be++) {
		enum ini_encoding enc = be ? INI_ENC_UTF16BE : INI_ENC_UTF16LE;

		d = to_utf16(half, be, &n);
		edit_reads_back(be ? "half-ascii BE" : "half-ascii LE", d, n,
				enc, set_short);
		edit_reads_back(be ? "half-ascii BE, more" : "half-ascii LE, more",
				d, n, enc, set_half);
		free(d);
		d = to_utf16(cjk, be, &n);
		edit_reads_back(be ? "mostly CJK BE" : "mostly CJK LE", d, n,
				enc, set_many);
		free(d);
	}
	/* astral characters (surrogate pairs) and no final newline */
	d = to_utf16("[😀]\r\n😀😀😀=😀😀😀😀😀😀😀😀😀", 0, &n);
	edit_reads_back("astral LE", d, n, INI_ENC_UTF16LE,
			(const char *const[]){ "😀", "😀😀😀", "1", NULL });
	free(d);
	/* UTF-8 text never has zero bytes: never taken for UTF-16 */
	edit_reads_back("UTF-8 CJK", cjk, strlen(cjk), INI_ENC_UTF8, set_many);
}

/* The fuzzer's reproducer: the edits that used to flip its encoding. */
static void test_utf16_reproducer(void)
{
	static const char path[] =
		"tests/fuzz/corpus/fuzz_ini/regress-utf16-nobom-edit-flips-encoding";
	struct ms_err err = MS_ERR_INIT;
	struct ini *ini = NULL;
	char *data = NULL;
	size_t len = 0;
	const char *value = "[GenerDeSGINDirectory=%PROGRAMDATA%\\OpCon";

	if (!ok(read_all(path, &data, &len) == 0, "read %s", path))
		return;
	if (ok(ini_parse(&ini, "repro", data, len, &err) == 0, "reproducer parses (%s)",
	       err.msg)) {
		/* most of it is UTF-16BE text behind a garbled start; the
		 * zero-byte share took it for UTF-16LE */
		is(ini_encoding_name(ini), "UTF-16BE", "reproducer is UTF-16BE");
		is(ini_get(ini, "Mail", "User"), "helpdesk", "reproducer [Mail] User");
		edit_reads_back("reproducer, shorter value", data, len, INI_ENC_UTF16BE,
				(const char *const[]){ "Mail", "User", "v", NULL });
		edit_reads_back("reproducer, new key", data, len, INI_ENC_UTF16BE,
				(const char *const[]){ "Mail", "FuzzNewKey", value, NULL });
		edit_reads_back("reproducer, new section", data, len, INI_ENC_UTF16BE,
				(const char *const[]){ "FuzzNewSection", "Key", value, NULL });
	}
	ini_free(ini);
	free(data);
}

/* Where the bytes alone cannot carry the model, nothing is written. */
static void test_readback_refused(void)
{
	struct ms_err err = MS_ERR_INIT;
	char dir[] = "/tmp/test_ini.XXXXXX", *path = NULL, *d, *got = NULL, *out;
	struct ini *ini = NULL;
	size_t n, glen = 0, olen;

	/* U+3D00 read in the other byte order is '=': the key holds four of
	 * them, the value four '=' of this order.  Setting the value to "x"
	 * tips the count: the bytes would read as UTF-16BE. */
	d = to_utf16("k\xe3\xb4\x80\xe3\xb4\x80\xe3\xb4\x80\xe3\xb4\x80=====\r\n", 0, &n);
	if (!ok(d && mkdtemp(dir), "temp dir"))
		return;
	path = fs_join(dir, "tipped.ini");
	ok(fs_write_atomic(path, d, n, 0600, &err) == 0, "write %s", path);
	ok(ini_load(&ini, path, &err) == 0 && ini_encoding(ini) == INI_ENC_UTF16LE,
	   "ambiguous file reads as UTF-16LE (%s)", err.msg);
	if (ini) {
		is(ini_get(ini, "", "k\xe3\xb4\x80\xe3\xb4\x80\xe3\xb4\x80\xe3\xb4\x80"),
		   "====", "its value");
		ok(ini_serialize(ini, &out, &olen, &err) == 0 && olen == n &&
		   !memcmp(out, d, n), "unedited, it serializes unchanged");
		free(out);
		ok(ini_set(ini, "", "k\xe3\xb4\x80\xe3\xb4\x80\xe3\xb4\x80\xe3\xb4\x80",
			   "x", &err) == 0, "set the value");
		err = (struct ms_err)MS_ERR_INIT;
		out = (char *)1;
		ok(ini_serialize(ini, &out, &olen, &err) < 0 && out == NULL &&
		   err.code == MS_ERR_CONFIG, "serialize refuses");
		err = (struct ms_err)MS_ERR_INIT;
		ok(ini_save(ini, path, &err) < 0 && err.code == MS_ERR_CONFIG,
		   "save refuses");
		ok(strstr(err.msg, path) && strstr(err.msg, "UTF-16LE") &&
		   strstr(err.msg, "would read as UTF-16BE") &&
		   strstr(err.msg, "nothing was written"),
		   "the error names the file and why: %s", err.msg);
		ok(read_all(path, &got, &glen) == 0 && glen == n &&
		   !memcmp(got, d, n), "the file is untouched");
		free(got);
		ini_free(ini);
		ini = NULL;
	}
	free(d);

	/* Any encoding: a first line that would start with U+FEFF reads
	 * as a byte-order mark. */
	err = (struct ms_err)MS_ERR_INIT;
	if (ok(ini_parse(&ini, "bomkey.ini", "a=1\n\xef\xbb\xbf" "b=2\n", 11,
			 &err) == 0, "U+FEFF key on line 2 parses")) {
		ok(ini_remove(ini, "", "a") == 1, "remove line 1");
		ok(ini_serialize(ini, &out, &olen, &err) < 0 &&
		   strstr(err.msg, "'bomkey.ini'") &&
		   strstr(err.msg, "would read as UTF-8 with BOM"),
		   "a BOM-looking first line is refused: %s", err.msg);
	}
	ini_free(ini);
	unlink(path);
	rmdir(dir);
	free(path);
}

/* Every text of up to 7 bytes of 'k', '=', CR and LF: as many lines as
 * line ends (CRLF one, a lone CR one, LF one, plus an unterminated last
 * line) and the same bytes back (each line's end and text kept). */
static void test_split_exhaustive(void)
{
	static const char alpha[] = { 'k', '=', '\r', '\n' };
	char text[8];
	int len, bad_count = 0, bad_bytes = 0, bad_parse = 0, total = 0;

	for (len = 0; len <= 7; len++) {
		long code, ncodes = 1L << (2 * len);

		for (code = 0; code < ncodes; code++) {
			struct ms_err err = MS_ERR_INIT;
			struct ini *ini = NULL;
			char *out = NULL;
			size_t olen = 0, want = 0;
			int i, start = 0;

			for (i = 0; i < len; i++)
				text[i] = alpha[(code >> (2 * i)) & 3];
			/* the reference: byte by byte */
			for (i = 0; i < len; i++) {
				if (text[i] == '\n' || text[i] == '\r') {
					if (text[i] == '\r' && i + 1 < len && text[i + 1] == '\n')
						i++;
					want++;
					start = i + 1;
				}
			}
			if (start < len)
				want++;
			total++;
			if (ini_parse(&ini, "x.ini", text, (size_t)len, &err) < 0) {
				bad_parse++;
				continue;
			}
			if (ini_line_count(ini) != want)
				bad_count++;
			if (ini_serialize(ini, &out, &olen, &err) < 0 ||
			    olen != (size_t)len || memcmp(out, text, olen) != 0)
				bad_bytes++;
			free(out);
			ini_free(ini);
		}
	}
	is_int(bad_parse, 0, "%d short texts of k, =, CR, LF all parse", total);
	is_int(bad_count, 0, "each has as many lines as line ends");
	is_int(bad_bytes, 0, "each serializes to the same bytes");
}

/* A file of lone-CR line ends (old Mac style, or hostile) with one LF at
 * its very end: every line and its value, parsed in one pass.  When each
 * line looked ahead for the next LF, the 1 MB text below took ~1.6 s
 * (26 s at the 4 MB limit, the connector and the audit hung on it), and
 * minutes under valgrind, where CI runs this test. */
static void test_split_cr_only(void)
{
	const size_t n = (size_t)1 << 20;
	char *text = malloc(n), *out = NULL;
	struct ms_err err = MS_ERR_INIT;
	struct ini *ini = NULL;
	size_t i, olen = 0;

	if (!text) {
		ok(0, "memory for the CR-only text");
		return;
	}
	for (i = 0; i + 4 <= n; i += 4)
		memcpy(text + i, i + 4 == n ? "k=v\n" : "k=v\r", 4);
	ok(ini_parse(&ini, "cr.ini", text, n, &err) == 0, "1 MB of lone-CR line ends parses");
	is_int(ini ? (long)ini_line_count(ini) : -1, (long)(n / 4), "one line per CR (and the last LF)");
	is(ini ? ini_get(ini, "", "k") : NULL, "v", "its keys read");
	ok(ini && ini_serialize(ini, &out, &olen, &err) == 0 && olen == n &&
	   memcmp(out, text, n) == 0, "and it serializes to the same bytes");
	free(out);
	ini_free(ini);
	free(text);
}

/* One edit of the script test_edit_batch() runs; -1 when it failed. */
static int batch_step(struct ini *ini, int k)
{
	struct ms_err err = MS_ERR_INIT;

	switch (k) {
	case 0: return ini_set(ini, "Mail", "Server", "outlook.office365.com", &err);
	case 1: return ini_set(ini, "OAuth", "TenantId", "t-1", &err);
	case 2: return ini_set(ini, "oauth", "ClientId", "c-1", &err);
	case 3: return ini_remove(ini, "Mail", "Password");
	case 4: return ini_set(ini, "Mail", "Password", "", &err);
	case 5: return ini_set(ini, "Notify", "Transport", "Graph", &err);
	case 6: return ini_remove(ini, "OAuth", "ClientId");
	case 7: return ini_set(ini, NULL, "owner", "ops", &err);
	case 8: return ini_comment_out(ini, "General", "DownloadFolder");
	case 9: return ini_add_comment(ini, "OAuth", "migrated", &err);
	case 10: return ini_add_section(ini, "Empty", &err);
	default: return ini_set(ini, "OAuth", "ClientId", "c-2", &err);
	}
}

/* What a reader sees of the sections and keys the script touches. */
static void batch_view(const struct ini *ini, struct buf *b)
{
	static const char *const keys[][2] = {
		{ "Mail", "Server" }, { "MAIL", "password" }, { "OAuth", "TenantId" },
		{ "OAuth", "ClientId" }, { "Notify", "Transport" }, { "", "owner" },
		{ "General", "DownloadFolder" }, { "Empty", "x" }, { "Mail", "User" },
	};
	struct ms_err err = MS_ERR_INIT;
	size_t i;

	b->len = 0;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *v = ini_get(ini, keys[i][0], keys[i][1]);

		buf_appendf(b, &err, "%s/%s=%s@%d;", keys[i][0], keys[i][1], v ? v : "(none)",
			    ini_get_line(ini, keys[i][0], keys[i][1]));
	}
	buf_appendf(b, &err, "has OAuth %d Empty %d Nope %d;", ini_has_section(ini, "oauth"),
		    ini_has_section(ini, "Empty"), ini_has_section(ini, "Nope"));
	for (i = 0; i < ini_section_count(ini); i++)
		buf_appendf(b, &err, "[%s]@%d", ini_section_name(ini, i), ini_section_line(ini, i));
}

/* The same edits one by one and in a batch (ini_edit_begin): the same
 * lookups after every step, the same bytes at the end. */
static void test_edit_batch(void)
{
	static const char *const files[] = {
		"samples/ini/example1-crlf-bom.ini", "samples/ini/example3-utf16le-bom-crlf.ini",
		"samples/ini/variant-odd-spacing.ini", "samples/ini/example2-crlf-no-final-newline.ini",
		/* duplicate keys and sections: the last one is the one read */
		"=[Mail]\nServer=a\nserver=b\n[oauth]\nClientId=x\n[Mail]\nSERVER=c\nPassword=p\n"
		"[OAuth]\nclientid=y\n",
	};
	struct ms_err err = MS_ERR_INIT;
	size_t f;

	for (f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		struct ini *one = NULL, *bat = NULL;
		const char *name = files[f][0] == '=' ? "duplicate keys" : files[f];
		struct buf v1, v2;
		char *d1 = NULL, *d2 = NULL;
		size_t l1 = 0, l2 = 0;
		int k, same = 1;

		buf_init(&v1, BUF_DEFAULT_CAP);
		buf_init(&v2, BUF_DEFAULT_CAP);
		if (files[f][0] != '=') {
			one = load(files[f]);
			bat = load(files[f]);
		} else if (ini_parse(&one, "dup.ini", files[f] + 1, strlen(files[f] + 1), &err) < 0 ||
			   ini_parse(&bat, "dup.ini", files[f] + 1, strlen(files[f] + 1), &err) < 0) {
			printf("# %s\n", err.msg);
		}
		if (!one || !bat) {
			ok(0, "%s loads", name);
			goto next;
		}
		ini_edit_begin(bat);
		for (k = 0; k < 12; k++) {
			int r1 = batch_step(one, k), r2 = batch_step(bat, k);

			batch_view(one, &v1);
			batch_view(bat, &v2);
			if (r1 != r2 || v1.len != v2.len || memcmp(v1.data, v2.data, v1.len)) {
				printf("# step %d: %d %.*s\n#  vs %d %.*s\n", k, r1, (int)v1.len,
				       v1.data, r2, (int)v2.len, v2.data);
				same = 0;
			}
		}
		ok(same, "%s: lookups in a batch are those of single edits", name);
		ok(ini_edit_end(bat, &err) == 0, "%s: the batch ends", name);
		batch_view(one, &v1);
		batch_view(bat, &v2);
		ok(v1.len == v2.len && memcmp(v1.data, v2.data, v1.len) == 0,
		   "%s: and after it", name);
		ok(ini_serialize(one, &d1, &l1, &err) == 0 && ini_serialize(bat, &d2, &l2, &err) == 0 &&
		   l1 == l2 && memcmp(d1, d2, l1) == 0, "%s: the same bytes", name);
		free(d1);
		free(d2);
	next:
		buf_wipe(&v1);
		buf_wipe(&v2);
		ini_free(one);
		ini_free(bat);
	}
}

int main(void)
{
	struct ms_err err = MS_ERR_INIT;
	char *u;

	test_roundtrip();
	test_encodings();
	test_lookups();
	test_foreach();
	test_malformed();
	test_invalid_encoding();
	test_edits();
	test_line_end_corners();
	test_split_exhaustive();
	test_split_cr_only();
	test_edit_batch();
	test_save();
	test_utf16_nobom();
	test_utf16_reproducer();
	test_readback_refused();
	u = ini_unquote("\"C:\\Program Files\\x\"");
	is(u, "C:\\Program Files\\x", "unquote strips one pair");
	free(u);
	u = ini_unquote("\"");
	is(u, "\"", "a lone quote stays");
	free(u);
	ok(ini_load(&(struct ini *){ NULL }, "tests/data/ini/no-such-file.ini", &err) < 0 &&
	   err.code == MS_ERR_IO, "missing file is an I/O error");
	return done_testing();
}
