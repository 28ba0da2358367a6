/*
 * ini_int.h - the model behind ini.h, shared by its three files:
 *   ini.c           the lines, sections, problems, the parse and lookups
 *   ini_encoding.c  bytes <-> UTF-8 text (UTF-8, UTF-16, Windows-1252)
 *   ini_edit.c      edits and serialization
 * Nothing outside runtime/ini/ini*.c includes it.
 *
 * Ownership: as in ini.h; every pointer below is owned by struct ini.
 */
#ifndef MS_INI_INT_H
#define MS_INI_INT_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "ini/ini.h"

enum eol { EOL_NONE = 0, EOL_LF, EOL_CRLF, EOL_CR };
enum line_kind { LK_BLANK, LK_COMMENT, LK_SECTION, LK_KEY, LK_OTHER };

/*
 * A parsed line's text points into the file's text (ini->store, each line
 * end overwritten by a NUL) and its key and value into one arena
 * (ini->kv): one allocation each per file, not per line.  A line an edit
 * made or changed owns its text (own_text) or key and value (own_kv),
 * malloc'd; ini_line_clear() frees only what a line owns.
 */
struct iline {
	char *text;             /* UTF-8, NUL-terminated, no line end */
	size_t len;
	enum eol eol;
	enum line_kind kind;
	unsigned char own_text, own_kv;
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
	int batch;              /* between ini_edit_begin() and ini_edit_end() */
	int stale;              /* lines added or removed since the index was
				 * built (in a batch): lookups scan the lines */
	struct iproblem *probs;
	size_t n_probs, alloc_probs;
	char *store;            /* the parse's text, lines point into it */
	char *kv;               /* the parse's keys and values */
	size_t kv_used, kv_cap; /* kv_cap 0 once the parse is over */
};

/* Line ends as bytes, by enum eol. */
extern const char *const ini_eol_bytes[];

static inline int ini_is_blank(int c)
{
	return c == ' ' || c == '\t';
}

/* ini.c */
/* Work out what l->text is (see ini.c); -1 only when out of memory. */
int ini_classify(struct ini *ini, struct iline *l, int lineno);
void ini_line_clear(struct iline *l);
/* Give l the malloc'd text t (len bytes), freeing the old one if owned. */
void ini_line_set_text(struct iline *l, char *t, size_t len);
/* Section index of name (case-insensitive), -1 if none. */
long ini_find_sect(const struct ini *ini, const char *name);
/* Index of the last key line of (section, key) by the index, -1 if none. */
long ini_find_key(const struct ini *ini, const char *section, const char *key);
/* The same by a scan of the lines, by section index s (an edit in
 * progress, or an edit batch: the index is stale). */
long ini_find_key_scan(const struct ini *ini, long s, const char *key);
/* Rebuild the lookup index; -1 when out of memory (ini->index NULL). */
int ini_reindex(struct ini *ini);
/* Line end used by most lines (CRLF for no lines). */
enum eol ini_dominant(const struct ini *ini);

/* ini_encoding.c */
/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
size_t ini_utf8_seq(const unsigned char *p, size_t n, uint32_t *cp);
/* MS_ERR_CONFIG "NAME:LINE: ..." on a NUL byte or invalid UTF-8. */
int ini_check_utf8(const char *name, const char *p, size_t n,
		   struct ms_err *err);
/* UTF-16 (no BOM in p) to UTF-8 into out; MS_ERR_CONFIG on a NUL, an
 * unpaired surrogate or an odd length. */
int ini_decode_utf16(const char *name, const unsigned char *p, size_t n,
		     int be, struct buf *out, struct ms_err *err);
/* Does BOM-less p[0..n) read as UTF-16?  *be says which byte order. */
int ini_guess_utf16(const unsigned char *p, size_t n, int *be);
/* Append n bytes of UTF-8 text s to b in ini's encoding (no BOM). */
int ini_put_text(struct buf *b, const struct ini *ini, const char *s,
		 size_t n, struct ms_err *err);

#endif
