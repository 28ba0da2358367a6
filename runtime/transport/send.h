/*
 * send.h - outbound mail: notify mails and verify probes.
 *
 * Two transports behind one call:
 *   - SMTP submission over libcurl: STARTTLS (required, never optional) or
 *     implicit TLS; plaintext only when explicitly allowed and then without
 *     AUTH (credentials never travel before TLS).  Basic (user/password)
 *     or XOAUTH2 (bearer from a token callback, mechanism forced, sent
 *     after the server's 334 as Exchange Online expects).
 *   - Microsoft Graph: POST {graph}/v1.0/users/{mailbox}/sendMail (202),
 *     honouring 429 Retry-After and 5xx with bounded retries.
 *
 * Header injection is impossible by construction: CR, LF and other control
 * characters in the subject, display name and extra header values are
 * folded into one space; addresses containing them (or spaces, <, >, ...)
 * are refused.  libcurl types stay in send.c.
 *
 * Ownership: every string in send_params and send_message is borrowed for
 * the duration of the call.  Functions returning char * or char ** hand
 * ownership to the caller as documented.  Secrets (password, tokens) are
 * never put into an error message or log line; token copies are wiped.
 */
#ifndef MS_SEND_H
#define MS_SEND_H

#include <stddef.h>
#include <time.h>
#include "base/buf.h"
#include "base/err.h"

/* Same shape as mailbox.h's mailbox_token_fn, so one token provider serves
 * both: returns 0 and fills *token (caller wipes and frees) or -1 with err.
 * force_refresh asks for a new token instead of the cached one. */
typedef int (*send_token_fn)(void *ctx, int force_refresh, char **token,
			     struct ms_err *err);

enum send_transport { SEND_SMTP = 0, SEND_GRAPH };
enum send_tls { SEND_TLS_STARTTLS = 0, SEND_TLS_IMPLICIT, SEND_TLS_NONE };
enum send_auth { SEND_AUTH_NONE = 0, SEND_AUTH_BASIC, SEND_AUTH_XOAUTH2 };

struct send_params {
	enum send_transport transport;

	/* SMTP */
	const char *host;
	int port;                  /* 0 = 587 (STARTTLS), 465 (implicit), 25 (none) */
	enum send_tls tls;
	int allow_plaintext;       /* required for SEND_TLS_NONE (and AUTH is refused) */
	enum send_auth auth;
	const char *user;          /* SMTP login (basic, XOAUTH2 user=); Graph: the
				    * mailbox in the URL (default: message from) */
	const char *password;      /* basic only */
	const char *helo_name;     /* EHLO domain; NULL = this host's name */

	/* bearer for XOAUTH2 and Graph */
	send_token_fn token_fn;
	void *token_ctx;

	/* TLS and timing, both transports */
	const char *ca_file;       /* NULL = system trust store */
	int insecure;              /* 1 = do not verify the peer (explicit config only) */
	long timeout_s;            /* whole transaction, default 60 */
	long connect_timeout_s;    /* default 15 */

	/* Graph */
	const char *graph_endpoint;/* default https://graph.microsoft.com */
	int save_to_sent;          /* saveToSentItems, default 0 */
	int max_retries;           /* 429/5xx/network retries, default 4; -1 = none.
				    * A timed-out POST may have been accepted: a
				    * retry can then deliver the mail twice. */
	long max_wait_s;           /* cap on one Retry-After wait, default 60 */

	int verbose;               /* protocol trace via log_trace, credentials redacted */
};

struct send_header {           /* an extra header; name must start with "X-" */
	const char *name;
	const char *value;
};

struct send_message {
	const char *from;          /* address, also the SMTP envelope sender */
	const char *from_name;     /* display name, may be NULL */
	const char *to;            /* one or several, ';' or ',' separated */
	const char *subject;       /* UTF-8, may be NULL (empty subject) */
	const char *body;          /* UTF-8 text, may be NULL */
	const struct send_header *headers; /* e.g. X-Mailshift-Probe */
	size_t n_headers;
	const char *message_id;    /* "<...>"; NULL = generated */
	time_t date;               /* 0 = now */
};

/* Send one message.  On failure err names the server and keeps its reply,
 * e.g. "smtp://127.0.0.1:24125: sender refused: 553 5.7.1 <x@y>: Sender
 * address rejected: not owned by user alice@contoso.test"; temporary
 * failures (4xx, 429, 5xx after the retries, network) carry a temporary
 * code (err_is_temporary()).  With XOAUTH2 (and Graph 401) a refused
 * login is retried once with token_fn(force_refresh = 1).  libcurl keeps
 * its own copies of the password and token while the call runs (not
 * wiped by libcurl); mailshift's copies are wiped.  Thread-safe: no
 * shared state besides libcurl's one-time global init. */
int send_mail(const struct send_params *p, const struct send_message *m,
	      struct ms_err *err);

/* ---- pure parts (no network) ------------------------------------------ */

#define SEND_MAX_RECIPIENTS 100

/* 1 if addr is a plain address we will send to: one '@', non-empty local
 * part (<= 64) and domain, <= 254 bytes, printable ASCII without spaces,
 * < > ( ) [ ] , ; : " \ and no empty domain labels. */
int send_address_valid(const char *addr);

/* Split a ';' or ',' separated list, trimming blanks and skipping empty
 * items.  Every address must be valid; at least one is required.  On
 * success *addrs is a caller-owned array of *n caller-owned strings
 * (send_free_recipients()). */
int send_parse_recipients(const char *list, char ***addrs, size_t *n,
			  struct ms_err *err);
void send_free_recipients(char **addrs, size_t n);

/* "<32 hex>.<time>@<domain of from or 'mailshift'>" into out (>= 96). */
void send_make_message_id(const char *from, char *out, size_t outsz);

/* RFC 5322 date in UTC: "Sat, 28 Nov 2026 01:35:34 +0000" (out >= 40). */
void send_format_date(time_t t, char *out, size_t outsz);

/* Fold CR, LF, TAB and other control characters into single spaces,
 * replace invalid UTF-8 with U+FFFD and trim.  Caller frees.  NULL on
 * out-of-memory. */
char *send_neutralise(const char *s);

/* Encode a header value for a line starting with a header name of
 * name_len bytes: printable ASCII stays as is (folded at spaces); anything
 * else becomes RFC 2047 UTF-8 B encoded words, folded.  The input is
 * neutralised first.  Appends to out. */
int send_encode_header(struct buf *out, size_t name_len, const char *value,
		       struct ms_err *err);

/* Compose the whole RFC 5322 message (headers + text/plain body, CRLF line
 * ends, 7bit or quoted-printable) into out.  Fails on invalid addresses or
 * extra header names. */
int send_compose(const struct send_message *m, struct buf *out,
		 struct ms_err *err);

/* The Graph sendMail request body (JSON).  sender: the mailbox in the URL;
 * a "from" is added when the message's from differs.  Caller frees. */
int send_graph_json(const struct send_message *m, const char *sender,
		    int save_to_sent, char **json, struct ms_err *err);

#endif
