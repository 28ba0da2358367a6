/*
 * ini_edit.c - edits of a parsed INI and its serialization (see ini.h):
 * an edit changes only the lines it must, and what is serialized is
 * parsed back before it is handed out.
 */
#include "ini/ini_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/fsutil.h"
#include "base/mem.h"

/* The same, by a linear scan: for edits in progress (stale index). */
static long find_key_scan(const struct ini *ini, const char *section,
			  const char *key)
{
	return ini_find_key_scan(ini, ini_find_sect(ini, section), key);
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
		k = ini_utf8_seq((const unsigned char *)s + i, n - i, &cp);
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
	if ((is_key && n == 0) || (n && (ini_is_blank((unsigned char)s[0]) ||
					   ini_is_blank((unsigned char)s[n - 1]))))
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
	enum eol dom = ini_dominant(ini);
	struct iline *l;

	if (MEM_GROW(ini->lines, ini->alloc, ini->n + 1, err) < 0) {
		free(text);
		return -1;
	}
	memmove(&ini->lines[pos + 1], &ini->lines[pos],
		(ini->n - pos) * sizeof(*ini->lines));
	ini->n++;
	l = &ini->lines[pos];
	memset(l, 0, sizeof(*l));
	l->text = text;
	l->own_text = 1;
	l->len = strlen(text);
	l->sect = sect;
	l->eol = dom;
	/* a file without a final newline keeps having none */
	if (pos == ini->n - 1 && pos > 0 && ini->lines[pos - 1].eol == EOL_NONE) {
		ini->lines[pos - 1].eol = dom;
		l->eol = EOL_NONE;
	}
	if (ini_classify(ini, l, 0) < 0)
		return err_nomem(err);
	return 0;
}

static void delete_line(struct ini *ini, size_t pos)
{
	enum eol e = ini->lines[pos].eol;

	ini_line_clear(&ini->lines[pos]);
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
		    ini_is_blank((unsigned char)model->text[model->eq + 1]))
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
			return err_nomem(err);
		if (insert_line(ini, ini->n, t, ini->lines[ini->n - 1].sect, err) < 0)
			return -1;
	}
	n = strlen(section) + 3;
	t = malloc(n);
	if (!t)
		return err_nomem(err);
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

/* End of an edit that added or removed lines: rebuild the index (in a
 * batch, once at its end). */
static int finish(struct ini *ini, int rc, struct ms_err *err)
{
	fix_eols(ini);
	if (ini->batch) {
		ini->stale = 1;
		return rc;
	}
	if (ini_reindex(ini) < 0)
		return err_nomem(err);
	return rc;
}

void ini_edit_begin(struct ini *ini)
{
	ini->batch = 1;
}

int ini_edit_end(struct ini *ini, struct ms_err *err)
{
	ini->batch = 0;
	if (!ini->stale)
		return 0;
	ini->stale = 0;
	if (ini_reindex(ini) < 0)
		return err_nomem(err);
	return 0;
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
	i = ini_find_key(ini, section, key);
	if (i >= 0) {
		struct iline *l = &ini->lines[i];
		size_t vlen = strlen(value);
		size_t n = l->len - l->val_len + vlen;

		t = malloc(n + 1);
		if (!t)
			return err_nomem(err);
		memcpy(t, l->text, l->val_off);
		memcpy(t + l->val_off, value, vlen);
		memcpy(t + l->val_off + vlen, l->text + l->val_off + l->val_len,
		       l->len - l->val_off - l->val_len);
		t[n] = '\0';
		ini_line_set_text(l, t, n);
		if (ini_classify(ini, l, 0) < 0)
			return err_nomem(err);
		return 0;
	}
	s = ini_find_sect(ini, section);
	pos = s >= 0 ? insert_pos(ini, (size_t)s) : -1;
	if (pos < 0) {
		if (append_section(ini, section, &s, err) < 0)
			return finish(ini, -1, err);
		pos = (long)ini->n;
	}
	t = new_key_text(ini, (size_t)s, key, value);
	if (!t)
		return finish(ini, err_nomem(err), err);
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
	s = ini_find_sect(ini, section);
	pos = s >= 0 ? insert_pos(ini, (size_t)s) : -1;
	if (pos < 0)
		return err_set(err, MS_ERR_CONFIG, "%s: no section [%s]", ini->name,
			       section);
	n = strlen(text) + 3;
	t = malloc(n);
	if (!t)
		return err_nomem(err);
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
	return n ? finish(ini, n, NULL) : 0;
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
		ini_line_set_text(l, t, l->len + 2);
		if (ini_classify(ini, l, 0) < 0)
			return finish(ini, -1, NULL);
		n++;
	}
	return finish(ini, n, NULL);
}
/* ---- output ---- */

static void ini_free_wiped(struct ini *ini)
{
	size_t i;

	if (!ini)
		return;
	for (i = 0; i < ini->n; i++) {
		struct iline *l = &ini->lines[i];

		mem_wipe(l->text, l->len);
		if (l->key)
			mem_wipe(l->key, strlen(l->key));
		if (l->value)
			mem_wipe(l->value, strlen(l->value));
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
		const char *e = ini_eol_bytes[l->eol];

		if (ini_put_text(&b, ini, l->text, l->len, err) < 0 ||
		    ini_put_text(&b, ini, e, strlen(e), err) < 0)
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
