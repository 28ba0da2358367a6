/* seal.c: AES-256-GCM sealed values under a 0600 machine key file. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/mem.h"
#include "base/paths.h"
#include "auth/seal.h"
#include "tap.h"

static char home[256], keyfile[300];

static void b64_vectors(void)
{
	static const struct { const char *in, *std, *url; } v[] = {
		{ "", "", "" }, { "f", "Zg==", "Zg" }, { "fo", "Zm8=", "Zm8" },
		{ "foo", "Zm9v", "Zm9v" }, { "foob", "Zm9vYg==", "Zm9vYg" },
		{ "fooba", "Zm9vYmE=", "Zm9vYmE" }, { "foobar", "Zm9vYmFy", "Zm9vYmFy" },
		{ "\xfb\xff", "+/8=", "-_8" },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct ms_err err = MS_ERR_INIT;
		unsigned char *out;
		size_t n;
		char *e = seal_b64_encode(v[i].in, strlen(v[i].in), 0);
		is(e, v[i].std, "base64 of '%s'", v[i].in);
		free(e);
		e = seal_b64_encode(v[i].in, strlen(v[i].in), 1);
		is(e, v[i].url, "base64url of '%s'", v[i].in);
		free(e);
		ok(seal_b64_decode(v[i].std, strlen(v[i].std), 0, &out, &n, &err) == 0 &&
		   n == strlen(v[i].in) && memcmp(out, v[i].in, n) == 0,
		   "decode '%s'", v[i].std);
		free(out);
		ok(seal_b64_decode(v[i].url, strlen(v[i].url), 1, &out, &n, &err) == 0 &&
		   n == strlen(v[i].in) && memcmp(out, v[i].in, n) == 0,
		   "decode url '%s'", v[i].url);
		free(out);
	}
	{
		struct ms_err err = MS_ERR_INIT;
		unsigned char *out;
		size_t n;
		ok(seal_b64_decode("Zm9v!", 5, 0, &out, &n, &err) < 0 &&
		   err.code == MS_ERR_DATA, "decode rejects a stray character");
	}
}

int main(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct stat st;
	char *s1 = NULL, *s2 = NULL, *p = NULL, msg[1024];
	const char *plain = "s3cret-Value with spaces & UTF-8 \xc3\xa9";

	snprintf(home, sizeof(home), "/tmp/test_seal.XXXXXX");
	if (!mkdtemp(home))
		return 1;
	snprintf(keyfile, sizeof(keyfile), "%s/sub/machine.key", home);
	setenv("MAILSHIFT_HOME", home, 1);
	setenv("MAILSHIFT_KEY_FILE", keyfile, 1);
	unsetenv("MAILSHIFT_TOKEN_CACHE");

	b64_vectors();

	/* where the state lives */
	{
		char *kp = NULL, *cp = NULL, *dir = NULL, want[600];
		setenv("MAILSHIFT_HOME", "/srv/ms", 1);
		unsetenv("MAILSHIFT_KEY_FILE");
		unsetenv("MAILSHIFT_TOKEN_CACHE");
		ok(paths_key_file(&kp, &err) == 0 && paths_token_cache(&cp, &err) == 0,
		   "paths resolve");
		is(kp, "/srv/ms/machine.key", "MAILSHIFT_HOME key file");
		is(cp, "/srv/ms/tokens.db", "MAILSHIFT_HOME token cache");
		free(kp);
		free(cp);
		setenv("MAILSHIFT_KEY_FILE", "/k/key", 1);
		setenv("MAILSHIFT_TOKEN_CACHE", "/c/db", 1);
		paths_key_file(&kp, &err);
		paths_token_cache(&cp, &err);
		is(kp, "/k/key", "MAILSHIFT_KEY_FILE wins");
		is(cp, "/c/db", "MAILSHIFT_TOKEN_CACHE wins");
		free(kp);
		free(cp);
		unsetenv("MAILSHIFT_HOME");
		unsetenv("MAILSHIFT_KEY_FILE");
		unsetenv("MAILSHIFT_TOKEN_CACHE");
		setenv("XDG_STATE_HOME", "/xdg", 1);
		paths_state_dir(&dir, &err);
		if (geteuid() == 0)
			snprintf(want, sizeof(want), "/var/lib/mailshift");
		else
			snprintf(want, sizeof(want), "/xdg/mailshift");
		is(dir, want, "default state directory for this user");
		free(dir);
		unsetenv("XDG_STATE_HOME");
		setenv("MAILSHIFT_HOME", home, 1);
		setenv("MAILSHIFT_KEY_FILE", keyfile, 1);
		err_clear(&err);
	}

	/* unsealing before any key exists */
	ok(unseal_value(SEAL_PREFIX "AAAA", &p, &err) < 0 && err.code == MS_ERR_CONFIG &&
	   strstr(err.msg, "does not exist"), "no key file: clear error (%s)", err.msg);
	ok(stat(keyfile, &st) < 0, "unsealing does not create a key");
	err_clear(&err);

	ok(seal_value(plain, &s1, &err) == 0, "seal a value (%s)", err.msg);
	ok(stat(keyfile, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == 32,
	   "key file created 0600 with 32 bytes");
	ok(seal_is_sealed(s1) && strncmp(s1, "mssealed:v1:", 12) == 0, "sealed prefix");
	ok(strstr(s1, "s3cret") == NULL, "sealed value hides the plaintext");
	ok(seal_value(plain, &s2, &err) == 0 && strcmp(s1, s2) != 0,
	   "sealing twice gives different values (fresh nonce)");
	ok(unseal_value(s1, &p, &err) == 0, "unseal (%s)", err.msg);
	is(p, plain, "round trip");
	mem_wipe_free(p);
	p = NULL;
	ok(unseal_value(s2, &p, &err) == 0 && p && strcmp(p, plain) == 0, "second round trip");
	mem_wipe_free(p);
	p = NULL;

	/* tampering: flip one base64 character in the ciphertext */
	{
		char *t = strdup(s1);
		size_t i = strlen(t) / 2;
		t[i] = t[i] == 'A' ? 'B' : 'A';
		err_clear(&err);
		ok(unseal_value(t, &p, &err) < 0 && err.code == MS_ERR_DATA && p == NULL,
		   "tampered value refused");
		is(err.msg, "sealed value was altered or sealed with another machine key",
		   "tamper message");
		/* truncation */
		t[strlen(SEAL_PREFIX) + 8] = '\0';
		err_clear(&err);
		ok(unseal_value(t, &p, &err) < 0 && err.code == MS_ERR_DATA,
		   "truncated value refused (%s)", err.msg);
		free(t);
	}

	/* another machine key */
	{
		struct seal_key *k2;
		unsigned char raw[32];
		memset(raw, 7, sizeof(raw));
		err_clear(&err);
		ok(seal_key_from_bytes(&k2, raw, 32, &err) == 0, "explicit key");
		ok(unseal_value_key(k2, s1, &p, &err) < 0 && err.code == MS_ERR_DATA &&
		   strstr(err.msg, "another machine key"), "another key cannot open it");
		free(s2);
		err_clear(&err);
		ok(seal_value_key(k2, "", &s2, &err) == 0 &&
		   unseal_value_key(k2, s2, &p, &err) == 0 && p && *p == '\0',
		   "empty value round trip");
		mem_wipe_free(p);
		p = NULL;
		seal_key_free(k2);
	}
	ok(!seal_is_sealed("mssealed:v2:abc") && !seal_is_sealed(NULL) &&
	   !seal_is_sealed("plain"), "seal_is_sealed negatives");

	/* unsafe key file modes are refused */
	chmod(keyfile, 0644);
	err_clear(&err);
	free(s2);
	s2 = NULL;
	ok(seal_value("x", &s2, &err) < 0 && s2 == NULL && err.code == MS_ERR_CONFIG,
	   "0644 key file refused");
	snprintf(msg, sizeof(msg),
		 "key file '%s' is readable by others (mode 0644); run: chmod 600 %s",
		 keyfile, keyfile);
	is(err.msg, msg, "0644 message");
	chmod(keyfile, 0620);
	err_clear(&err);
	ok(unseal_value(s1, &p, &err) < 0 && strstr(err.msg, "writable by others (mode 0620)"),
	   "0620 key file refused for unsealing too (%s)", err.msg);
	chmod(keyfile, 0600);
	if (geteuid() == 0) {
		/* root can hand the file to someone else */
		if (chown(keyfile, 65534, 65534) == 0) {
			err_clear(&err);
			ok(unseal_value(s1, &p, &err) < 0 && err.code == MS_ERR_CONFIG &&
			   strstr(err.msg, "owned by uid 65534"),
			   "key file of another user refused (%s)", err.msg);
			if (chown(keyfile, 0, 0) != 0)
				return 1;
		}
	} else {
		ok(1, "# SKIP ownership check needs root");
	}
	err_clear(&err);
	ok(unseal_value(s1, &p, &err) == 0, "0600 accepted again");
	mem_wipe_free(p);
	p = NULL;

	/* a damaged key file */
	{
		char bad[300];
		FILE *f;
		snprintf(bad, sizeof(bad), "%s/short.key", home);
		f = fopen(bad, "w");
		fputs("short", f);
		fclose(f);
		chmod(bad, 0600);
		setenv("MAILSHIFT_KEY_FILE", bad, 1);
		err_clear(&err);
		ok(unseal_value(s1, &p, &err) < 0 && strstr(err.msg, "damaged"),
		   "short key file refused (%s)", err.msg);
	}

	/* concurrent first use: every process ends up with the same key */
	{
		char kf[300];
		int fds[2], n = 8, good = 0;
		snprintf(kf, sizeof(kf), "%s/race/machine.key", home);
		setenv("MAILSHIFT_KEY_FILE", kf, 1);
		if (pipe(fds) < 0)
			return 1;
		for (int i = 0; i < n; i++) {
			if (fork() == 0) {
				struct ms_err e = MS_ERR_INIT;
				char *s;
				close(fds[0]);
				if (seal_value("race", &s, &e))
					_exit(1);
				dprintf(fds[1], "%s\n", s);
				_exit(0);
			}
		}
		close(fds[1]);
		{
			FILE *f = fdopen(fds[0], "r");
			char line[512];
			while (fgets(line, sizeof(line), f)) {
				line[strcspn(line, "\n")] = '\0';
				err_clear(&err);
				if (unseal_value(line, &p, &err) == 0 && strcmp(p, "race") == 0)
					good++;
				mem_wipe_free(p);
				p = NULL;
			}
			fclose(f);
		}
		while (wait(NULL) > 0)
			;
		is_int(good, n, "racing first uses share one key");
	}

	free(s1);
	free(s2);
	{
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", home);
		if (system(cmd) != 0)
			return 1;
	}
	return done_testing();
}
