#include "auth/tokencache.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/fsutil.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/paths.h"
#include "base/platform.h"
#include "base/sqldb.h"
#include "auth/seal.h"

struct tokencache {
	sqlite3 *db;
	char *path;
	struct seal_key *key;
};

struct tokencache_lock {
	int fd;
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS tokens ("
	" authority TEXT NOT NULL, tenant TEXT NOT NULL, client_id TEXT NOT NULL,"
	" scope TEXT NOT NULL, flow TEXT NOT NULL, user TEXT NOT NULL,"
	" access_token TEXT, expires_at INTEGER NOT NULL DEFAULT 0,"
	" refresh_token TEXT, updated_at INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (authority, tenant, client_id, scope, flow, user))";

static const char *nz(const char *s)
{
	return s ? s : "";
}

static int parent_dir(const char *path, struct ms_err *err)
{
	char *dir = strdup(path), *slash;
	int rc = 0;

	if (!dir)
		return err_nomem(err);
	slash = (char *)platform_last_sep(dir);
	if (slash && slash != dir) {
		*slash = '\0';
		rc = fs_mkdirs(dir, 0700, err);
	}
	free(dir);
	return rc;
}

/* Create the database file 0600 ourselves: sqlite would use 0644. */
static int prepare_file(const char *path, struct ms_err *err)
{
	struct stat st;
	int fd;

	if (parent_dir(path, err))
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(err, MS_ERR_IO, "cannot open token cache '%s': %s", path,
			       strerror(errno));
	if (fstat(fd, &st) < 0) {
		close(fd);
		return err_set(err, MS_ERR_IO, "cannot stat token cache '%s': %s", path,
			       strerror(errno));
	}
	if (st.st_uid != geteuid()) {
		close(fd);
		return err_set(err, MS_ERR_CONFIG,
			       "token cache '%s' is owned by uid %ld, not by the current user",
			       path, (long)st.st_uid);
	}
	if (platform_file_mode(&st) & 077) {
		log_warnx("token cache '%s' was accessible by others (mode 0%o); "
			  "setting it to 0600", path, (unsigned)(st.st_mode & 0777));
		(void)fchmod(fd, 0600);
	}
	close(fd);
	return 0;
}

static int db_fail(struct tokencache *tc, const char *what, struct ms_err *err)
{
	int rc = sqlite3_errcode(tc->db);
	return err_set(err, rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? MS_ERR_BUSY : MS_ERR_IO,
		       "token cache '%s': cannot %s: %s", tc->path, what,
		       sqlite3_errmsg(tc->db));
}

int tokencache_open(struct tokencache **out, const char *path, struct ms_err *err)
{
	struct tokencache *tc;

	*out = NULL;
	if (!(tc = calloc(1, sizeof(*tc))))
		return err_nomem(err);
	if (path) {
		if (!(tc->path = strdup(path))) {
			err_nomem(err);
			goto fail;
		}
	} else if (paths_token_cache(&tc->path, err)) {
		goto fail;
	}
	if (seal_key_load(&tc->key, 1, err) || prepare_file(tc->path, err))
		goto fail;
	/* prepare_file() made the file: 1 (gone) is an error too */
	if (sqldb_open(&tc->db, tc->path, "token cache",
		       SQLDB_SECURE_DELETE | SQLDB_ONE_THREAD, err) != 0) {
		err_set(err, MS_ERR_IO, "cannot open token cache '%s'", tc->path);
		goto fail;
	}
	if (sqlite3_exec(tc->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
		db_fail(tc, "create the schema", err);
		goto fail;
	}
	*out = tc;
	return 0;
fail:
	tokencache_close(tc);
	return -1;
}

void tokencache_close(struct tokencache *tc)
{
	if (!tc)
		return;
	if (tc->db)
		sqlite3_close(tc->db);
	seal_key_free(tc->key);
	free(tc->path);
	free(tc);
}

const char *tokencache_path(const struct tokencache *tc)
{
	return tc->path;
}

void token_entry_release(struct token_entry *e)
{
	if (!e)
		return;
	mem_wipe_free(e->access_token);
	mem_wipe_free(e->refresh_token);
	e->access_token = e->refresh_token = NULL;
	e->expires_at = 0;
}

int token_entry_fresh(const struct token_entry *e, time_t now, int margin_s)
{
	return e->access_token && *e->access_token && e->expires_at - margin_s > now;
}

static void bind_key(sqlite3_stmt *st, const struct token_key *k)
{
	sqlite3_bind_text(st, 1, nz(k->authority), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, nz(k->tenant), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, nz(k->client_id), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, nz(k->scope), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, nz(k->flow), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, nz(k->user), -1, SQLITE_STATIC);
}

static int open_col(struct tokencache *tc, sqlite3_stmt *st, int col, char **out,
		    struct ms_err *err)
{
	const char *v = (const char *)sqlite3_column_text(st, col);

	*out = NULL;
	if (!v || !*v)
		return 0;
	if (unseal_value_key(tc->key, v, out, err))
		return err_prefix(err, "token cache '%s'", tc->path);
	return 0;
}

int tokencache_get(struct tokencache *tc, const struct token_key *k,
		   struct token_entry *e, struct ms_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc, ret = -1;

	memset(e, 0, sizeof(*e));
	if (sqlite3_prepare_v2(tc->db,
			       "SELECT access_token, expires_at, refresh_token FROM tokens"
			       " WHERE authority=?1 AND tenant=?2 AND client_id=?3"
			       " AND scope=?4 AND flow=?5 AND user=?6", -1, &st, NULL) != SQLITE_OK)
		return db_fail(tc, "read", err);
	bind_key(st, k);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		ret = 1;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		db_fail(tc, "read", err);
		goto out;
	}
	if (open_col(tc, st, 0, &e->access_token, err) ||
	    open_col(tc, st, 2, &e->refresh_token, err)) {
		token_entry_release(e);
		goto out;
	}
	e->expires_at = (time_t)sqlite3_column_int64(st, 1);
	ret = 0;
out:
	sqlite3_finalize(st);
	return ret;
}

int tokencache_put(struct tokencache *tc, const struct token_key *k,
		   const char *access_token, time_t expires_at,
		   const char *refresh_token, struct ms_err *err)
{
	sqlite3_stmt *st = NULL;
	char *sa = NULL, *sr = NULL;
	int ret = -1;

	if (access_token && seal_value_key(tc->key, access_token, &sa, err))
		return -1;
	if (refresh_token && seal_value_key(tc->key, refresh_token, &sr, err))
		goto out;
	if (sqlite3_prepare_v2(tc->db,
			       "INSERT INTO tokens (authority, tenant, client_id, scope, flow,"
			       " user, access_token, expires_at, refresh_token, updated_at)"
			       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
			       " ON CONFLICT (authority, tenant, client_id, scope, flow, user)"
			       " DO UPDATE SET access_token = excluded.access_token,"
			       " expires_at = excluded.expires_at,"
			       " refresh_token = COALESCE(excluded.refresh_token, tokens.refresh_token),"
			       " updated_at = excluded.updated_at", -1, &st, NULL) != SQLITE_OK) {
		db_fail(tc, "write", err);
		goto out;
	}
	bind_key(st, k);
	if (sa)
		sqlite3_bind_text(st, 7, sa, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 7);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)(sa ? expires_at : 0));
	if (sr)
		sqlite3_bind_text(st, 9, sr, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 9);
	sqlite3_bind_int64(st, 10, (sqlite3_int64)time(NULL));
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_fail(tc, "write", err);
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(st);
	free(sa);
	free(sr);
	return ret;
}

int tokencache_delete(struct tokencache *tc, const struct token_key *k,
		      struct ms_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = -1;

	if (sqlite3_prepare_v2(tc->db,
			       "DELETE FROM tokens WHERE authority=?1 AND tenant=?2"
			       " AND client_id=?3 AND scope=?4 AND flow=?5 AND user=?6",
			       -1, &st, NULL) != SQLITE_OK)
		return db_fail(tc, "delete", err);
	bind_key(st, k);
	if (sqlite3_step(st) != SQLITE_DONE)
		db_fail(tc, "delete", err);
	else
		ret = 0;
	sqlite3_finalize(st);
	return ret;
}

/* The lock file name: a digest of the key, so no key part reaches the
 * file system. */
static char *lock_path(struct tokencache *tc, const struct token_key *k,
		       struct ms_err *err)
{
	const char *parts[6] = { nz(k->authority), nz(k->tenant), nz(k->client_id),
				 nz(k->scope), nz(k->flow), nz(k->user) };
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	char name[64], *dir, *path;
	size_t n;

	if (!ctx) {
		err_nomem(err);
		return NULL;
	}
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (int i = 0; i < 6; i++)
		EVP_DigestUpdate(ctx, parts[i], strlen(parts[i]) + 1);
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	for (int i = 0; i < 16; i++)
		snprintf(name + 2 * i, 3, "%02x", md[i]);
	strcat(name, ".lock");
	n = strlen(tc->path) + 8;
	if (!(dir = malloc(n))) {
		err_nomem(err);
		return NULL;
	}
	snprintf(dir, n, "%s.locks", tc->path);
	if (fs_mkdirs(dir, 0700, err)) {
		free(dir);
		return NULL;
	}
	path = fs_join(dir, name);
	free(dir);
	if (!path)
		err_nomem(err);
	return path;
}

int tokencache_lock(struct tokencache *tc, const struct token_key *k,
		    int timeout_s, struct tokencache_lock **lk, struct ms_err *err)
{
	struct timespec start, now, pause = { 0, 20 * 1000 * 1000 };
	char *path;
	int fd;

	*lk = NULL;
	if (timeout_s <= 0)
		timeout_s = TOKENCACHE_LOCK_TIMEOUT;
	if (!(path = lock_path(tc, k, err)))
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		err_set(err, MS_ERR_IO, "cannot open lock file '%s': %s", path,
			strerror(errno));
		free(path);
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (platform_lock_try(fd) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			err_set(err, MS_ERR_IO, "cannot lock '%s': %s", path, strerror(errno));
			goto fail;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= timeout_s) {
			err_set(err, MS_ERR_BUSY,
				"another process has held the token lock '%s' for %d s; "
				"giving up", path, timeout_s);
			goto fail;
		}
		nanosleep(&pause, NULL);
	}
	free(path);
	if (!(*lk = malloc(sizeof(**lk)))) {
		close(fd);
		return err_nomem(err);
	}
	(*lk)->fd = fd;
	return 0;
fail:
	close(fd);
	free(path);
	return -1;
}

void tokencache_unlock(struct tokencache_lock *lk)
{
	if (!lk)
		return;
	platform_unlock(lk->fd);
	close(lk->fd);
	free(lk);
}
