/* tokencache.c: sealed tokens in SQLite, keys, margins, single-flight lock. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/fsutil.h"
#include "auth/tokencache.h"
#include "tap.h"

static int file_contains(const char *path, const char *needle)
{
	struct ms_err err = MS_ERR_INIT;
	char *data;
	size_t len, n = strlen(needle);
	int found = 0;

	if (fs_read_file(path, 64u << 20, &data, &len, &err))
		return 0;
	for (size_t i = 0; i + n <= len && !found; i++)
		found = memcmp(data + i, needle, n) == 0;
	free(data);
	return found;
}

int main(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct tokencache *tc = NULL;
	struct token_entry e;
	char home[64] = "/tmp/test_tokencache.XXXXXX", db[128];
	const char *at1 = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.ACCESS-CANARY-1111.sig";
	const char *at2 = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.ACCESS-CANARY-2222.sig";
	const char *rt1 = "0.AAAA-REFRESH-CANARY-1111";
	const char *rt2 = "0.AAAA-REFRESH-CANARY-2222";
	struct token_key app = { "https://127.0.0.1:1", "tenant-1", "client-1",
				 "https://outlook.office365.com/.default",
				 "client_credentials", "" };
	struct token_key user = { "https://127.0.0.1:1", "tenant-1", "client-1",
				  "https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
				  "device_code", "alice@example.test" };
	struct token_key user2 = user;
	struct stat st;
	time_t now = time(NULL);

	if (!mkdtemp(home))
		return 1;
	setenv("MAILSHIFT_HOME", home, 1);
	unsetenv("MAILSHIFT_KEY_FILE");
	unsetenv("MAILSHIFT_TOKEN_CACHE");
	snprintf(db, sizeof(db), "%s/tokens.db", home);
	user2.user = "bob@example.test";

	ok(tokencache_open(&tc, NULL, &err) == 0, "open the default cache (%s)", err.msg);
	is(tokencache_path(tc), db, "default path under MAILSHIFT_HOME");
	ok(stat(db, &st) == 0 && (st.st_mode & 0777) == 0600, "database file is 0600");
	is_int(tokencache_get(tc, &app, &e, &err), 1, "empty cache: no entry");
	ok(e.access_token == NULL && e.refresh_token == NULL, "entry zeroed");

	ok(tokencache_put(tc, &app, at1, now + 3600, NULL, &err) == 0, "put app token");
	is_int(tokencache_get(tc, &app, &e, &err), 0, "get app token");
	is(e.access_token, at1, "access token round trip");
	ok(e.refresh_token == NULL, "no refresh token for the app flow");
	is_int((long long)e.expires_at, (long long)(now + 3600), "expiry round trip");
	ok(token_entry_fresh(&e, now, 300), "fresh with a 5 min margin");
	ok(!token_entry_fresh(&e, now + 3600 - 300, 300), "not fresh inside the margin");
	ok(token_entry_fresh(&e, now + 3600 - 301, 300), "fresh just outside the margin");
	ok(!token_entry_fresh(&e, now + 4000, 0), "expired");
	token_entry_release(&e);

	/* delegated with refresh rotation */
	ok(tokencache_put(tc, &user, at1, now + 100, rt1, &err) == 0, "put user tokens");
	ok(tokencache_put(tc, &user, at2, now + 3600, rt2, &err) == 0, "rotate");
	is_int(tokencache_get(tc, &user, &e, &err), 0, "get user tokens");
	is(e.access_token, at2, "new access token");
	is(e.refresh_token, rt2, "rotated refresh token stored");
	token_entry_release(&e);
	ok(tokencache_put(tc, &user, at1, now + 50, NULL, &err) == 0,
	   "put without refresh token");
	tokencache_get(tc, &user, &e, &err);
	is(e.refresh_token, rt2, "NULL refresh keeps the stored one");
	is(e.access_token, at1, "access token replaced");
	token_entry_release(&e);
	ok(tokencache_put(tc, &user, NULL, 0, NULL, &err) == 0, "clear the access token");
	tokencache_get(tc, &user, &e, &err);
	ok(e.access_token == NULL && e.refresh_token && !token_entry_fresh(&e, now, 0),
	   "access token cleared, refresh kept");
	token_entry_release(&e);

	/* keys are separate */
	is_int(tokencache_get(tc, &user2, &e, &err), 1, "another user has no entry");
	{
		struct token_key k = app;
		k.scope = "https://graph.microsoft.com/.default";
		is_int(tokencache_get(tc, &k, &e, &err), 1, "another scope has no entry");
		k = app;
		k.tenant = "tenant-2";
		is_int(tokencache_get(tc, &k, &e, &err), 1, "another tenant has no entry");
		k = app;
		k.authority = "https://login.microsoftonline.us";
		is_int(tokencache_get(tc, &k, &e, &err), 1, "another authority has no entry");
	}
	tokencache_close(tc);
	tc = NULL;

	/* nothing in clear on disk */
	ok(!file_contains(db, "ACCESS-CANARY") && !file_contains(db, "REFRESH-CANARY"),
	   "database file holds no token in clear");
	ok(file_contains(db, "mssealed:v1:"), "database holds sealed values");
	ok(file_contains(db, "alice@example.test"), "keys are in clear (sanity of the grep)");

	/* reopen: persisted */
	ok(tokencache_open(&tc, db, &err) == 0, "reopen");
	is_int(tokencache_get(tc, &app, &e, &err), 0, "app token persisted");
	is(e.access_token, at1, "same token after reopen");
	token_entry_release(&e);
	ok(tokencache_delete(tc, &app, &err) == 0 &&
	   tokencache_get(tc, &app, &e, &err) == 1, "delete");
	tokencache_close(tc);
	tc = NULL;

	/* another machine key cannot open the values */
	{
		char kf[128];
		snprintf(kf, sizeof(kf), "%s/other.key", home);
		setenv("MAILSHIFT_KEY_FILE", kf, 1);
		ok(tokencache_open(&tc, db, &err) == 0, "open with another key");
		err_clear(&err);
		ok(tokencache_get(tc, &user, &e, &err) < 0 && err.code == MS_ERR_DATA,
		   "values sealed with another key are refused (%s)", err.msg);
		tokencache_close(tc);
		tc = NULL;
		unsetenv("MAILSHIFT_KEY_FILE");
		err_clear(&err);
	}

	/* an existing world-readable cache is tightened */
	chmod(db, 0644);
	ok(tokencache_open(&tc, db, &err) == 0 && stat(db, &st) == 0 &&
	   (st.st_mode & 0777) == 0600, "0644 cache reset to 0600");

	/* single flight lock */
	{
		struct tokencache_lock *lk = NULL;
		int fds[2];
		char c;
		pid_t pid;
		time_t t0;

		if (pipe(fds) < 0)
			return 1;
		pid = fork();
		if (pid == 0) {
			struct tokencache *c2;
			struct tokencache_lock *l2;
			struct ms_err e2 = MS_ERR_INIT;
			close(fds[0]);
			if (tokencache_open(&c2, db, &e2) || tokencache_lock(c2, &app, 5, &l2, &e2))
				_exit(1);
			if (write(fds[1], "L", 1) != 1)
				_exit(1);
			sleep(2);
			tokencache_unlock(l2);
			tokencache_close(c2);
			_exit(0);
		}
		close(fds[1]);
		if (read(fds[0], &c, 1) != 1)
			return 1;
		err_clear(&err);
		t0 = time(NULL);
		ok(tokencache_lock(tc, &app, 1, &lk, &err) < 0 && err.code == MS_ERR_BUSY,
		   "lock held elsewhere: busy after the timeout (%s)", err.msg);
		ok(time(NULL) - t0 <= 2, "the wait is bounded");
		err_clear(&err);
		ok(tokencache_lock(tc, &user, 1, &lk, &err) == 0, "another key is not blocked");
		tokencache_unlock(lk);
		lk = NULL;
		ok(tokencache_lock(tc, &app, 10, &lk, &err) == 0,
		   "lock acquired once the holder lets go");
		tokencache_unlock(lk);
		waitpid(pid, NULL, 0);
		close(fds[0]);
	}
	tokencache_close(tc);

	{
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", home);
		if (system(cmd) != 0)
			return 1;
	}
	return done_testing();
}
