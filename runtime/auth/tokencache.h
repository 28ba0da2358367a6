/*
 * tokencache.h - the machine's shared OAuth token cache.
 *
 * One SQLite database (default paths_token_cache(), mode 0600, rollback
 * journal, busy timeout) shared by every mailshift process of a user.
 * Rows are keyed by (authority, tenant, client id, scope, flow, user);
 * the access and refresh tokens are stored sealed with the machine key
 * (seal.h), never in clear.  A put is one statement, so a rotated refresh
 * token and the access token that came with it are stored atomically.
 *
 * Single flight: tokencache_lock() takes an exclusive flock(2) on a
 * per-key lock file in "<db>.locks/", so when many processes need a new
 * token at once, one fetches it and the others, after re-reading the
 * cache, use it.  The wait is bounded; past it the lock fails with
 * MS_ERR_BUSY.
 *
 * Ownership: struct token_key holds borrowed strings (NULL = "").  A
 * struct token_entry owns its tokens; token_entry_release() cleanses
 * and frees them.  The cache handle holds the machine key in memory until
 * tokencache_close(), which cleanses it.
 */
#ifndef MS_TOKENCACHE_H
#define MS_TOKENCACHE_H

#include <time.h>
#include "base/err.h"

struct tokencache;
struct tokencache_lock;

struct token_key {
	const char *authority;
	const char *tenant;
	const char *client_id;
	const char *scope;
	const char *flow;      /* "client_credentials" | "device_code" */
	const char *user;      /* mailbox UPN for delegated tokens, "" for app */
};

struct token_entry {
	char *access_token;    /* NULL if none stored */
	time_t expires_at;     /* of the access token, 0 if none */
	char *refresh_token;   /* NULL if none stored */
};

#define TOKENCACHE_LOCK_TIMEOUT 60

/* Open (creating the file 0600 and its directory 0700 when missing).
 * path NULL = paths_token_cache(). */
int tokencache_open(struct tokencache **tc, const char *path, struct ms_err *err);
void tokencache_close(struct tokencache *tc);
const char *tokencache_path(const struct tokencache *tc);

/* 0 = found (*e filled), 1 = no entry (*e zeroed), -1 = error. */
int tokencache_get(struct tokencache *tc, const struct token_key *k,
		   struct token_entry *e, struct ms_err *err);
/* Insert or replace.  refresh_token NULL keeps the stored one;
 * access_token NULL clears the stored access token. */
int tokencache_put(struct tokencache *tc, const struct token_key *k,
		   const char *access_token, time_t expires_at,
		   const char *refresh_token, struct ms_err *err);
int tokencache_delete(struct tokencache *tc, const struct token_key *k,
		      struct ms_err *err);

/* True when e holds an access token valid for more than margin_s after now. */
int token_entry_fresh(const struct token_entry *e, time_t now, int margin_s);
void token_entry_release(struct token_entry *e);

/* Take the per-key single-flight lock, waiting at most timeout_s seconds
 * (0 = TOKENCACHE_LOCK_TIMEOUT). */
int tokencache_lock(struct tokencache *tc, const struct token_key *k,
		    int timeout_s, struct tokencache_lock **lk, struct ms_err *err);
void tokencache_unlock(struct tokencache_lock *lk);

#endif
