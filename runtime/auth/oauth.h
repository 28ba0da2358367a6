/*
 * oauth.h - tokens from the Microsoft identity platform (v2.0 endpoints).
 *
 * One entry point, oauth_get_token(), serves the connector, the mailbox
 * backends and the tools: it consults the machine's token cache
 * (tokencache.h), refreshes OAUTH_REFRESH_MARGIN seconds before expiry,
 * and fetches a new token with
 *   - client credentials: a client secret, or a certificate assertion
 *     (jwt.h, PS256 with x5t#S256 or RS256 with x5t);
 *   - delegated (device code): the stored refresh token (refresh_token
 *     grant); the rotated refresh token is stored in the same statement
 *     as the new access token.
 * Concurrent processes needing the same token make one request: the
 * first takes the cache's per-key lock, the others wait and re-read.
 *
 * Token endpoint refusals (HTTP 4xx with Microsoft's JSON error) fail with
 * MS_ERR_AUTH and "token request refused: AADSTS7000215: Invalid client
 * secret provided (trace id ..., correlation id ...)"; the parsed fields
 * are available through the _ex variants.  5xx, 429, unusable replies and
 * transport failures are retried (OAUTH_ATTEMPTS, backoff 1 s, 2 s or
 * Retry-After capped at 30 s), then fail with MS_ERR_NET (or
 * MS_ERR_THROTTLED), which err_is_temporary() reports as temporary.
 * TLS failures are not retried.  A CertificateFile that expires within
 * OAUTH_CERT_WARN_DAYS is reported through log_warnx() on each fetch.
 *
 * Secrets, assertions, access and refresh tokens never enter an error
 * message or a log line.  The library never prints: the device code is
 * shown through the caller's prompt callback.
 *
 * Ownership: struct oauth_params holds borrowed strings, except the
 * owned_* ones (profile_oauth_params() in ini/profile.h fills them: the
 * resolved client secret and the scope), which oauth_params_release()
 * wipes and frees.
 * *access_token is owned by the caller: release it with oauth_token_free().
 */
#ifndef MS_OAUTH_H
#define MS_OAUTH_H

#include <time.h>
#include "base/err.h"
#include "auth/jwt.h"
#include "transport/protocol.h"

#define OAUTH_DEFAULT_AUTHORITY "https://login.microsoftonline.com"
#define OAUTH_REFRESH_MARGIN 300   /* seconds before expiry */
#define OAUTH_ATTEMPTS 3
#define OAUTH_RETRY_CAP 30         /* seconds, cap on Retry-After */
#define OAUTH_CERT_WARN_DAYS 30    /* warn (log_warnx) when CertificateFile expires sooner */

enum oauth_flow { FLOW_UNSET = 0, FLOW_CLIENT_CREDENTIALS, FLOW_DEVICE_CODE };

struct oauth_params {
	const char *authority;      /* NULL = OAUTH_DEFAULT_AUTHORITY */
	const char *tenant;         /* GUID or domain, required */
	const char *client_id;      /* required */
	const char *client_secret;  /* resolved plain secret or NULL */
	const char *cert_file;      /* PEM key + certificate, or NULL */
	enum jwt_alg assertion_alg; /* JWT_PS256 (default) or JWT_RS256 */
	enum oauth_flow flow;       /* FLOW_UNSET = client credentials */
	const char *scope;          /* required (see oauth_scope_default) */
	const char *user;           /* mailbox UPN: part of the delegated cache key */
	const char *ca_file;        /* NULL = system trust store */
	const char *cache_path;     /* NULL = paths_token_cache() */
	int verbose;                /* HTTP trace via log_trace, redacted */

	/* owned by the struct when set (profile_oauth_params()) */
	char *owned_secret;
	char *owned_scope;
};

/* Microsoft's error reply, parsed. Empty strings / 0 when absent. */
struct oauth_error {
	char error[64];             /* e.g. "invalid_client" */
	long codes[8];              /* error_codes, e.g. 7000215 */
	size_t n_codes;
	char description[512];      /* first line of error_description */
	char trace_id[64];
	char correlation_id[64];
	int http_status;
};

/* Device code prompt: show the user code and URL (and/or Microsoft's
 * message).  Return 0 to go on polling, non-zero to abort. */
typedef int (*oauth_prompt_fn)(void *ctx, const char *user_code,
			       const char *verification_uri, const char *message,
			       long expires_in);

/* Default scope for a protocol and flow:
 *   IMAP/POP, client credentials: https://outlook.office365.com/.default
 *   IMAP/POP, device code: https://outlook.office.com/{IMAP|POP}.AccessAsUser.All offline_access
 *   Graph/MSAL, client credentials: https://graph.microsoft.com/.default
 *   Graph/MSAL, device code: .../Mail.ReadWrite .../Mail.Send offline_access */
const char *oauth_scope_default(enum mail_protocol proto, enum oauth_flow flow);
/* SMTP submission (notify mails). */
const char *oauth_scope_smtp(enum oauth_flow flow);
/* Cache key flow name: "client_credentials" or "device_code". */
const char *oauth_flow_name(enum oauth_flow flow);

/* Wipe and free the owned_* strings (set to NULL). */
void oauth_params_release(struct oauth_params *p);

/* Whole days until the certificate in cert_file expires, rounded down
 * (an expiry earlier today is -1), and its expiry time.  Fails when the
 * file holds no readable certificate. */
int oauth_cert_days_left(const char *cert_file, time_t now, long *days,
			 time_t *not_after, struct ms_err *err);

/* "{authority}/{tenant}/oauth2/v2.0/token".  Caller frees. */
int oauth_token_url(const struct oauth_params *p, char **url, struct ms_err *err);

int oauth_get_token(const struct oauth_params *p, int force_refresh,
		    char **access_token, time_t *expires_at, struct ms_err *err);
/* oe (may be NULL) receives Microsoft's parsed error on a refusal. */
int oauth_get_token_ex(const struct oauth_params *p, int force_refresh,
		       char **access_token, time_t *expires_at,
		       struct oauth_error *oe, struct ms_err *err);
void oauth_token_free(char *access_token);

/* Delegated sign-in with the device code flow; stores the access and
 * refresh tokens in the cache under p->user.  When the access token names
 * the signed-in user and it is not p->user, nothing is stored and the
 * sign-in fails with MS_ERR_AUTH. */
int oauth_device_login(const struct oauth_params *p, oauth_prompt_fn prompt,
		       void *ctx, struct ms_err *err);
int oauth_device_login_ex(const struct oauth_params *p, oauth_prompt_fn prompt,
			  void *ctx, struct oauth_error *oe, struct ms_err *err);

/* Use the stored refresh token now and store the rotated one (scheduled
 * keep-alive).  With client credentials: fetch a token if none is fresh. */
int oauth_renew_silent(const struct oauth_params *p, struct ms_err *err);
int oauth_renew_silent_ex(const struct oauth_params *p, struct oauth_error *oe,
			  struct ms_err *err);

/* Remove the cached tokens for p (sign out on this machine). */
int oauth_forget(const struct oauth_params *p, struct ms_err *err);

/* Tests: replace sleep(3) in retries and device code polling. */
/* For the fuzz harness: run the token, error and device-code reply
 * parsers over one response body of len bytes (nothing is kept). */
void oauth_parse_replies(const char *body, size_t len);

void oauth_set_sleep_hook(void (*fn)(unsigned seconds));

#endif
