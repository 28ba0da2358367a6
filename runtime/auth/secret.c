#include "auth/secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/fsutil.h"
#include "base/log.h"
#include "base/mem.h"
#include "auth/seal.h"

void secret_free(char *plain)
{
	mem_wipe_free(plain);
}

static int is_b64_char(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '+' || c == '/';
}

int secret_is_legacy(const char *s)
{
	size_t n, pad = 0, i, decoded;

	if (!s)
		return 0;
	n = strlen(s);
	if (n < 24)
		return 0;
	while (pad < 2 && n > pad && s[n - 1 - pad] == '=')
		pad++;
	for (i = 0; i < n - pad; i++)
		if (!is_b64_char((unsigned char)s[i]))
			return 0;
	if ((n - pad) % 4 == 1)
		return 0;
	if (pad)
		return n % 4 == 0;
	decoded = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
	return decoded % 16 == 0;
}

enum secret_kind secret_kind(const char *s)
{
	if (!s || !*s)
		return SECRET_EMPTY;
	if (seal_is_sealed(s))
		return SECRET_SEALED;
	if (strncmp(s, "env:", 4) == 0)
		return SECRET_ENV;
	if (strncmp(s, "file:", 5) == 0)
		return SECRET_FILE;
	if (secret_is_legacy(s))
		return SECRET_LEGACY;
	return SECRET_LITERAL;
}

const char *secret_kind_name(enum secret_kind k)
{
	switch (k) {
	case SECRET_EMPTY:   return "empty";
	case SECRET_SEALED:  return "sealed";
	case SECRET_ENV:     return "env";
	case SECRET_FILE:    return "file";
	case SECRET_LITERAL: return "literal";
	case SECRET_LEGACY:  return "legacy";
	}
	return "unknown";
}

static int valid_env_name(const char *s)
{
	if (!*s || (*s >= '0' && *s <= '9'))
		return 0;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return 0;
	return 1;
}

static int dup_secret(const char *s, char **plain, struct ms_err *err)
{
	if (!(*plain = strdup(s)))
		return err_nomem(err);
	return 0;
}

static int resolve_file(const char *path, char **plain, struct ms_err *err)
{
	struct stat st;
	char *data = NULL;
	size_t len = 0;

	if (!*path)
		return err_set(err, MS_ERR_CONFIG, "secret reference 'file:' names no file");
	if (stat(path, &st) == 0 && (st.st_mode & 077))
		log_warnx("secret file '%s' is accessible by others (mode 0%o); "
			  "run: chmod 600 %s", path, (unsigned)(st.st_mode & 0777), path);
	if (fs_read_file(path, SECRET_FILE_MAX, &data, &len, err))
		return err_prefix(err, "cannot read secret file");
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		data[--len] = '\0';
	if (len == 0 || strlen(data) != len) {
		mem_wipe(data, len);
		free(data);
		return err_set(err, MS_ERR_CONFIG, "secret file '%s' is empty or holds a NUL byte",
			       path);
	}
	*plain = data;
	return 0;
}

int secret_resolve(const char *ref, char **plain, struct ms_err *err)
{
	const char *v;

	*plain = NULL;
	switch (secret_kind(ref)) {
	case SECRET_EMPTY:
		return err_set(err, MS_ERR_CONFIG, "no secret given");
	case SECRET_SEALED:
		return unseal_value(ref, plain, err);
	case SECRET_ENV:
		if (!valid_env_name(ref + 4))
			return err_set(err, MS_ERR_CONFIG,
				       "secret reference 'env:' needs a variable name "
				       "(letters, digits, underscore)");
		v = getenv(ref + 4);
		if (!v)
			return err_set(err, MS_ERR_CONFIG,
				       "environment variable '%s' is not set", ref + 4);
		if (!*v)
			return err_set(err, MS_ERR_CONFIG,
				       "environment variable '%s' is empty", ref + 4);
		return dup_secret(v, plain, err);
	case SECRET_FILE:
		return resolve_file(ref + 5, plain, err);
	case SECRET_LEGACY:
		return err_set(err, MS_ERR_CONFIG,
			       "value is encrypted with the incumbent's proprietary scheme "
			       "and cannot be read; it needs --credentials again");
	case SECRET_LITERAL:
		return dup_secret(ref, plain, err);
	}
	return err_set(err, MS_ERR_INTERNAL, "unknown secret kind");
}

char *secret_update_hint(const char *ref, const char *ini_path, const char *option)
{
	char *out = NULL;
	int n;

	switch (secret_kind(ref)) {
	case SECRET_ENV:
		n = asprintf(&out, "set the environment variable %s to the new value "
			     "(for the account the connector runs as)", ref + 4);
		break;
	case SECRET_FILE:
		n = asprintf(&out, "write the new value into %s (readable only by the "
			     "account the connector runs as)", ref + 5);
		break;
	default:
		n = asprintf(&out, "seal the new value into the INI with `mailshift "
			     "--credentials %sVALUE -inifile:\"%s\"`", option, ini_path);
		break;
	}
	return n < 0 ? NULL : out;
}
