/*
 * ini.h - a lossless INI parser and editor.
 *
 * The file is kept as a list of lines: section headers, key = value lines,
 * comments (# or ;), blank lines and lines that are none of those.  Every
 * byte is remembered (encoding and byte-order mark, each line's end: CRLF,
 * LF, a lone CR or none on the last line, spacing, trailing blanks), so
 * ini_serialize() of an unedited file gives back the exact original bytes,
 * and an edit changes only the bytes it has to.
 *
 * Encodings: UTF-8 (with or without BOM), UTF-16LE and UTF-16BE (with BOM,
 * or without one: then recognised by structure, valid UTF-16 whose INI
 * syntax characters '[' ']' '=' CR LF are 16-bit units of that byte order
 * rather than of the other, else by a majority of zero odd (LE) or even
 * (BE) bytes; UTF-8 never has zero bytes).  Text is handled as UTF-8
 * internally; serialization converts back.  Invalid UTF-8, an odd-length
 * or broken UTF-16 file, or a NUL byte fails ini_parse() with MS_ERR_CONFIG
 * "FILE:LINE: ...".  Structural problems (an unterminated section header,
 * a line that is neither key = value, comment, section nor blank, a line
 * with an empty key name) do NOT fail ini_parse(): the line is kept
 * verbatim and recorded as a problem; ini_check() turns the first one into
 * an error.  Duplicate keys and duplicate section headers are warnings.
 *
 * Lookups: section and key names are case-insensitive and trimmed; values
 * are trimmed of surrounding blanks but otherwise raw (quotes kept, no
 * inline comments: a ';' or '#' after '=' is part of the value, because
 * regular expressions use them).  Keys before any section header belong to
 * section "".  A section may appear under several headers: they merge.
 * A key given twice: the last one wins.
 *
 * Line numbers are 1-based positions in the current text, so they shift
 * after an edit inserts or removes lines; problems keep the line numbers
 * of the parse.
 *
 * Ownership: struct ini owns everything it holds; ini_free() releases it.
 * Every const char * returned is borrowed from the struct and stays valid
 * until the next edit of the same line or ini_free().  ini_serialize()
 * hands a malloc'd buffer to the caller.  Lookups never allocate: they use
 * an index rebuilt after the parse and after each edit (an edit that runs
 * out of memory rebuilding it fails, and lookups find nothing until the
 * next successful edit).  A handle is not thread-safe; distinct handles are
 * independent.
 */
#ifndef MS_INI_H
#define MS_INI_H

#include <stddef.h>
#include "base/err.h"

struct ini;

/* Hard cap on the size of an INI file read from disk. */
#define INI_MAX_FILE ((size_t)4 * 1024 * 1024)

enum ini_encoding {
	INI_ENC_UTF8 = 0,
	INI_ENC_UTF8_BOM,
	INI_ENC_UTF16LE_BOM,
	INI_ENC_UTF16LE,        /* no BOM, detected from zero bytes */
	INI_ENC_UTF16BE_BOM,
	INI_ENC_UTF16BE
};

enum ini_severity { INI_ERROR = 0, INI_WARNING };

struct ini_problem {
	int line;                 /* 1-based line of the parse */
	enum ini_severity severity;
	const char *msg;          /* e.g. "unterminated section header '[Mail'" */
};

/* Read path (at most INI_MAX_FILE bytes) and parse it; errors name path. */
int ini_load(struct ini **out, const char *path, struct ms_err *err);
/* Parse len bytes of data (need not be NUL-terminated); name is used in
 * error messages and may be NULL ("<memory>").  data is copied. */
/* 1 when data reads as Windows-1252 ("ANSI") and as nothing ini_parse()
 * accepts: invalid UTF-8, no NUL byte, no UTF-16 BOM, and none of the five
 * bytes that Windows-1252 leaves undefined (0x81 0x8D 0x8F 0x90 0x9D). */
int ini_is_cp1252(const char *data, size_t len);
/* ini_parse(), and for a Windows-1252 file its text converted to UTF-8
 * (lossless: every Windows-1252 character has one); such a file reads as
 * UTF-8 with a BOM, so an edited copy is saved as UTF-8 with a BOM, the
 * encoding the connector reads.  *was_cp1252 says which happened.  The
 * connector itself uses ini_parse()/ini_load() and refuses such files;
 * the fleet tools read them with this (the audit flags them, migrate
 * converts them). */
int ini_parse_any(struct ini **out, const char *name, const char *data,
		  size_t len, int *was_cp1252, struct ms_err *err);
int ini_parse(struct ini **out, const char *name, const char *data,
	      size_t len, struct ms_err *err);
/* An empty INI (UTF-8 without BOM, CRLF line ends once lines are added). */
struct ini *ini_new(const char *name);
void ini_free(struct ini *ini);

const char *ini_name(const struct ini *ini);
enum ini_encoding ini_encoding(const struct ini *ini);
/* "UTF-8", "UTF-8 with BOM", "UTF-16LE with BOM", "UTF-16LE", ... */
const char *ini_encoding_name(const struct ini *ini);
/* Line end used by most lines: "\r\n", "\n" or "\r" (CRLF for no lines). */
const char *ini_dominant_eol(const struct ini *ini);
size_t ini_line_count(const struct ini *ini);

/* Trimmed value of the last key of that name in that section, or NULL. */
const char *ini_get(const struct ini *ini, const char *section, const char *key);
/* 1-based line of the key ini_get() would use, 0 if absent. */
int ini_get_line(const struct ini *ini, const char *section, const char *key);
/* The same lookup in two steps, for a reader that asks for many keys of
 * one section (config.c): the section's number (-1 when the file has no
 * such section), valid until the next edit, then ini_get() within it
 * (NULL for -1). */
long ini_section_index(const struct ini *ini, const char *section);
const char *ini_get_in(const struct ini *ini, long section_index, const char *key);
/* Is there a header (or, for "", a key) for this section? */
int ini_has_section(const struct ini *ini, const char *section);

/* Sections in order of first appearance, merged case-insensitively.  The
 * "" section is listed (first) only when keys come before any header. */
size_t ini_section_count(const struct ini *ini);
const char *ini_section_name(const struct ini *ini, size_t i);
/* 1-based line of the section's first header (0 for ""). */
int ini_section_line(const struct ini *ini, size_t i);

/* Call fn for every key line of section, in file order (duplicates
 * included).  A non-zero return from fn stops and is returned. */
typedef int (*ini_key_fn)(const char *key, const char *value, int line,
			  void *ctx);
int ini_foreach_key(const struct ini *ini, const char *section,
		    ini_key_fn fn, void *ctx);

/* Problems found by the parse, in line order (errors and warnings).  At
 * most INI_MAX_PROBLEMS are kept; then one last warning with line
 * INT32_MAX says that more were left out. */
#define INI_MAX_PROBLEMS 1000
size_t ini_problem_count(const struct ini *ini);
const struct ini_problem *ini_problem(const struct ini *ini, size_t i);
/* Fail with MS_ERR_CONFIG "NAME:LINE: msg" on the first INI_ERROR. */
int ini_check(const struct ini *ini, struct ms_err *err);

/* Strip one pair of surrounding double quotes; returns a malloc'd copy
 * (NULL only when out of memory or value is NULL). */
char *ini_unquote(const char *value);

/*
 * Edits.  value must not contain CR, LF or NUL.
 * ini_set: replace the value bytes of the key ini_get() would use (key
 * spelling, spacing around '=', trailing blanks and line end kept); when
 * the key is absent, add "Key<sep>value" after the last key line of the
 * section (before trailing blank and comment lines), copying the file's
 * spacing around '='; when the section is absent, append a blank line, the
 * header and the key at the end of the file.  New lines use the dominant
 * line end; a file without a final newline keeps having none.
 */
int ini_set(struct ini *ini, const char *section, const char *key,
	    const char *value, struct ms_err *err);
/* Remove every line of that key in that section; returns how many. */
int ini_remove(struct ini *ini, const char *section, const char *key);
/* Turn every line of that key into a comment by prefixing "# "; returns
 * how many lines changed. */
int ini_comment_out(struct ini *ini, const char *section, const char *key);
/* Add a comment line at the end of the section's key block (as ini_set
 * adds keys); text gets a "# " prefix unless it starts with '#' or ';'.
 * The section must exist (or be ""). */
int ini_add_comment(struct ini *ini, const char *section, const char *text,
		    struct ms_err *err);
/* Add an empty section header at the end of the file if it is absent. */
int ini_add_section(struct ini *ini, const char *section, struct ms_err *err);
/* A run of edits: between these two the index is rebuilt once, at
 * ini_edit_end(), instead of after each edit that adds or removes lines;
 * key lookups meanwhile scan the lines (an INI file is small), and what
 * lists sections rebuilds it first.  ini_edit_end() fails only when out of
 * memory rebuilding it (then lookups find nothing, as after such an edit). */
void ini_edit_begin(struct ini *ini);
int ini_edit_end(struct ini *ini, struct ms_err *err);

/* The bytes of the file in its original encoding, BOM and line ends.
 * *data is malloc'd (NUL-terminated for convenience), owned by the caller.
 * Whatever it hands out, ini_parse() reads back to the same encoding and
 * lines (so the same keys and values): it parses its result to make sure.
 * Where the bytes cannot carry an edit (a BOM-less UTF-16 file that would
 * now read in the other byte order or as no UTF-16, a first line that
 * would start with U+FEFF and read as a byte-order mark) it fails with
 * MS_ERR_CONFIG "cannot save 'NAME' as ENCODING: ...; nothing was
 * written" and *data stays NULL. */
int ini_serialize(const struct ini *ini, char **data, size_t *len,
		  struct ms_err *err);
/* Serialize and write atomically (fs_write_atomic, mode 0600 if new); a
 * refusal of ini_serialize() leaves the file untouched. */
int ini_save(const struct ini *ini, const char *path, struct ms_err *err);

#endif
