/*
 * secret.h - turning a secret reference from an INI file into the secret.
 *
 * A reference is one of
 *   mssealed:v1:...   sealed with the machine key (seal.h)
 *   env:NAME          the environment variable NAME
 *   file:PATH         the content of PATH, trailing CR/LF removed
 *   anything else     the literal value itself
 * and one more kind that is recognised but never resolved: a value that
 * looks like the incumbent's proprietary encryption (a long base64 string
 * without any prefix).  It cannot be decrypted and must be entered again
 * with --credentials.
 *
 * Error messages name variables and files, never values.
 *
 * Ownership: *plain is malloc'd, owned by the caller, and released with
 * secret_free() (cleansed before it is freed).
 */
#ifndef MS_SECRET_H
#define MS_SECRET_H

#include "base/err.h"

enum secret_kind {
	SECRET_EMPTY = 0,   /* NULL, "" */
	SECRET_SEALED,
	SECRET_ENV,
	SECRET_FILE,
	SECRET_LITERAL,
	SECRET_LEGACY       /* the incumbent's encryption: needs --credentials */
};

/* Largest secret file read. */
#define SECRET_FILE_MAX ((size_t)64 * 1024)

enum secret_kind secret_kind(const char *s);
/* "sealed", "env", "file", "literal", "legacy", "empty" */
const char *secret_kind_name(enum secret_kind k);
/* Heuristic: at least 24 characters, only base64 characters, and either
 * '=' padding or a decoded length that is a multiple of 16 (a block
 * cipher's output). */
int secret_is_legacy(const char *s);

/* Resolve ref into *plain.  Empty and legacy references fail with
 * MS_ERR_CONFIG; a sealed value that does not open fails with MS_ERR_DATA
 * or MS_ERR_CONFIG (missing/unsafe key file). */
int secret_resolve(const char *ref, char **plain, struct ms_err *err);
void secret_free(char *plain);

/* How to put a new value where ref takes it from, as one line for a
 * "fix:" (ini_path names the INI, option the connector's sealing option,
 * e.g. "-clientsecret:"):
 *   env:NAME   "set the environment variable NAME to the new value ..."
 *   file:PATH  "write the new value into PATH ..."
 *   otherwise  "seal the new value into the INI with `mailshift
 *               --credentials OPTIONVALUE -inifile:"INI"`" (the command in
 *               backticks, as in the explanation catalogue)
 * malloc'd; NULL when out of memory.  Never contains a secret. */
char *secret_update_hint(const char *ref, const char *ini_path, const char *option);

#endif
