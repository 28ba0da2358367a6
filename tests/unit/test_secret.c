/* secret.c: resolving secret references; recognising the incumbent's values. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/log.h"
#include "auth/seal.h"
#include "auth/secret.h"
#include "tap.h"

static void write_file(const char *path, const char *data, mode_t mode)
{
	FILE *f = fopen(path, "w");
	fputs(data, f);
	fclose(f);
	chmod(path, mode);
}

static char logged[2048];

static void sink(enum log_level level, const char *msg, void *ctx)
{
	(void)level; (void)ctx;
	strncat(logged, msg, sizeof(logged) - strlen(logged) - 2);
	strcat(logged, "\n");
}

int main(void)
{
	struct ms_err err = MS_ERR_INIT;
	char home[64] = "/tmp/test_secret.XXXXXX", path[128], ref[160], *p = NULL, *sealed;
	const char *canary = "CANARY-9f8e7d6c5b4a";

	if (!mkdtemp(home))
		return 1;
	setenv("MAILSHIFT_HOME", home, 1);
	unsetenv("MAILSHIFT_KEY_FILE");
	log_set_sink(sink, NULL, LOG_LVL_DEBUG);

	/* kinds */
	is_int(secret_kind(NULL), SECRET_EMPTY, "NULL is empty");
	is_int(secret_kind(""), SECRET_EMPTY, "\"\" is empty");
	is_int(secret_kind("env:X"), SECRET_ENV, "env:");
	is_int(secret_kind("file:/x"), SECRET_FILE, "file:");
	is_int(secret_kind("mssealed:v1:abc"), SECRET_SEALED, "sealed");
	is_int(secret_kind("hunter2"), SECRET_LITERAL, "short literal");
	is_int(secret_kind("correct-horse-battery-staple-2024"), SECRET_LITERAL,
	       "passphrase with dashes is literal");
	is_int(secret_kind("abcdefghijklmnopqrstuvwx"), SECRET_LITERAL,
	       "24 base64 chars decoding to 18 bytes is literal");
	is_int(secret_kind("Abc8Q~xyzXYZ0123456789.abcdefghijkLMNOPQ"), SECRET_LITERAL,
	       "Azure-style client secret is literal");
	/* 16 and 32 bytes of ciphertext, base64 with padding */
	is_int(secret_kind("q83vEjRWeJCrze8SNFZ4kA=="), SECRET_LEGACY, "16-byte base64 is legacy");
	is_int(secret_kind("3q2+7wEjRWeJq83vASNFZ4mrze8BI0VniavN7wEjRWc="), SECRET_LEGACY,
	       "33-byte base64 with padding is legacy");
	is_int(secret_kind("3q2+7wEjRWeJq83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4mrze8BI0Vn"),
	       SECRET_LEGACY, "48 bytes unpadded (a multiple of 16) is legacy");
	ok(!secret_is_legacy("q83vEjRWeJCrze8SNFZ4kA="), "bad padding is not legacy");
	is(secret_kind_name(SECRET_LEGACY), "legacy", "kind name");
	is(secret_kind_name(SECRET_SEALED), "sealed", "kind name sealed");

	/* literal */
	ok(secret_resolve("hunter2", &p, &err) == 0 && p && strcmp(p, "hunter2") == 0,
	   "literal resolves to itself");
	secret_free(p);

	/* env */
	setenv("MS_TEST_SECRET", canary, 1);
	ok(secret_resolve("env:MS_TEST_SECRET", &p, &err) == 0 && p && strcmp(p, canary) == 0,
	   "env: resolves");
	secret_free(p);
	unsetenv("MS_TEST_NOPE");
	err_clear(&err);
	ok(secret_resolve("env:MS_TEST_NOPE", &p, &err) < 0 && p == NULL &&
	   err.code == MS_ERR_CONFIG, "missing env variable refused");
	is(err.msg, "environment variable 'MS_TEST_NOPE' is not set", "names the variable");
	err_clear(&err);
	ok(secret_resolve("env:BAD-NAME", &p, &err) < 0, "bad variable name refused");
	setenv("MS_TEST_EMPTY", "", 1);
	err_clear(&err);
	ok(secret_resolve("env:MS_TEST_EMPTY", &p, &err) < 0 && strstr(err.msg, "empty"),
	   "empty env variable refused");

	/* file */
	snprintf(path, sizeof(path), "%s/secret.txt", home);
	write_file(path, "file-secret\r\n\n", 0600);
	snprintf(ref, sizeof(ref), "file:%s", path);
	err_clear(&err);
	ok(secret_resolve(ref, &p, &err) == 0 && p && strcmp(p, "file-secret") == 0,
	   "file: resolves, trailing CR/LF removed (%s)", err.msg);
	secret_free(p);
	ok(logged[0] == '\0', "a 0600 secret file is not warned about");
	write_file(path, "  inner\nline  \n", 0644);
	ok(secret_resolve(ref, &p, &err) == 0 && p && strcmp(p, "  inner\nline  ") == 0,
	   "only trailing newlines are removed (readable file still read)");
	ok(strstr(logged, "is accessible by others (mode 0644); run: chmod 600") &&
	   !strstr(logged, "inner"), "warned about a readable secret file, without its content");
	secret_free(p);
	write_file(path, "\n", 0600);
	err_clear(&err);
	ok(secret_resolve(ref, &p, &err) < 0 && strstr(err.msg, "empty"), "empty file refused");
	snprintf(ref, sizeof(ref), "file:%s/missing", home);
	err_clear(&err);
	ok(secret_resolve(ref, &p, &err) < 0 && strstr(err.msg, "missing"),
	   "missing file refused, names the file (%s)", err.msg);

	/* sealed */
	err_clear(&err);
	ok(seal_value(canary, &sealed, &err) == 0, "seal the canary");
	ok(secret_resolve(sealed, &p, &err) == 0 && p && strcmp(p, canary) == 0,
	   "sealed value resolves");
	secret_free(p);
	sealed[strlen(sealed) - 3] ^= 1;
	err_clear(&err);
	ok(secret_resolve(sealed, &p, &err) < 0 && err.code == MS_ERR_DATA &&
	   !strstr(err.msg, canary), "altered sealed value refused without the secret");
	free(sealed);

	/* legacy and empty */
	err_clear(&err);
	ok(secret_resolve("q83vEjRWeJCrze8SNFZ4kA==", &p, &err) < 0 && p == NULL &&
	   strstr(err.msg, "needs --credentials again"), "legacy value is never resolved");
	ok(strstr(err.msg, "q83v") == NULL, "legacy value not in the message");
	err_clear(&err);
	ok(secret_resolve("", &p, &err) < 0 && err.code == MS_ERR_CONFIG, "empty refused");

	{
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", home);
		if (system(cmd) != 0)
			return 1;
	}
	return done_testing();
}
