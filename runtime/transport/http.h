/*
 * http.h - the one HTTPS client of the library (token service, Graph).
 * libcurl types stay in http.c.
 *
 * A struct http_client is reusable across requests so connections are
 * kept alive (one TLS session per host per run).  Not thread-safe: one
 * client per thread.
 *
 * Ownership: request fields are borrowed for the duration of the call;
 * the response owns its body and headers (http_response_release()).
 * Bodies are capped (default 16 MB).  Verification of the peer is always
 * on unless insecure is set explicitly by the caller's configuration.
 */
#ifndef MS_HTTP_H
#define MS_HTTP_H

#include <stddef.h>
#include "base/buf.h"
#include "base/err.h"

struct http_client;

struct http_client_params {
	const char *ca_file;   /* NULL = system trust store */
	int insecure;          /* 1 = skip certificate verification (explicit config only) */
	long timeout_s;        /* whole request; default 60 */
	long connect_timeout_s;/* default 15 */
	long long deadline;    /* wall-clock time (time_t) by which every
				* request must be done, 0 = none: a request
				* past it fails with MS_ERR_NET */
	size_t max_body;       /* response cap; default 16 MB */
	int verbose;           /* trace through log_trace; Authorization redacted */
};

struct http_request {
	const char *method;         /* "GET", "POST", "DELETE", ... */
	const char *url;
	const char *content_type;   /* for a body, e.g. "application/x-www-form-urlencoded" */
	const char *body;
	size_t body_len;
	const char *bearer;         /* adds "Authorization: Bearer ..." (never logged) */
	const char *const *headers; /* extra "Name: value" lines, NULL-terminated, may be NULL */
};

struct http_response {
	long status;                /* HTTP status, 0 if no response */
	struct buf body;
	long retry_after_s;         /* Retry-After in seconds, -1 if absent */
	char *request_id;           /* request-id / x-ms-request-id header, NULL if absent */
	char *content_type;
};

/* The certificate checks of every libcurl handle we make (HTTPS, IMAP,
 * POP3, SMTP), in one place: ca_file replaces the trust store; without it
 * the system's (on Windows its certificate store, which OpenSSL does not
 * read by itself: platform_tls_system_store()); verify = 0 turns peer and
 * host checks off (only when the configuration says so).  curl is a
 * CURL *. */
void http_tls_setup(void *curl, const char *ca_file, int verify);

int http_client_new(struct http_client **c, const struct http_client_params *p,
		    struct ms_err *err);
void http_client_free(struct http_client *c);

/* Perform one request.  Transport failures (connect, TLS, timeout) return
 * -1 with MS_ERR_NET / MS_ERR_TLS; any HTTP status returns 0 and the
 * caller decides. */
int http_do(struct http_client *c, const struct http_request *req,
	    struct http_response *resp, struct ms_err *err);
void http_response_release(struct http_response *resp);

/* application/x-www-form-urlencoded helpers: appends "&name=value" (no '&'
 * for the first pair) with value percent-encoded. */
int http_form_add(struct buf *form, const char *name, const char *value,
		  struct ms_err *err);
/* Percent-encode for a URL path segment or query value. Caller frees. */
char *http_escape(const char *s);

#endif
