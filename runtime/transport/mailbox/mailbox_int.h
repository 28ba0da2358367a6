/*
 * mailbox_int.h - private parts shared by mailbox.c and the backends
 * (mailbox_imap.c, mailbox_pop.c, mailbox_graph.c) and the pure parsers
 * the unit tests exercise.  Not part of the library's public interface;
 * no third-party type appears here.
 *
 * Ownership: struct mailbox owns its items (and every string in them),
 * its label and its backend state.  Parser outputs are owned by the
 * caller and released with the matching *_free function.
 */
#ifndef MS_MAILBOX_INT_H
#define MS_MAILBOX_INT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "base/buf.h"
#include "base/err.h"
#include "transport/mailbox/mailbox.h"

#define MB_MAX_MESSAGE   ((size_t)64 * 1024 * 1024)  /* one whole message */
#define MB_MAX_ITEMS     ((size_t)1000000)           /* items in one listing */
#define MB_MAX_HEADER    ((size_t)1024 * 1024)       /* one header block */
#define MB_MAX_RESPONSE  ((size_t)128 * 1024 * 1024) /* one protocol response */

struct mailbox;
struct mb_session;

struct mailbox_ops {
	const char *name;
	int (*open)(struct mailbox *, struct ms_err *);
	int (*list)(struct mailbox *, struct ms_err *);
	int (*fetch_headers)(struct mailbox *, struct ms_err *);
	int (*fetch_message)(struct mailbox *, const struct mailbox_item *,
			     struct buf *, struct ms_err *);
	int (*del)(struct mailbox *, const struct mailbox_item *, struct ms_err *);
	int (*close)(struct mailbox *, struct ms_err *);  /* commit; no free */
	void (*free)(struct mailbox *);                    /* backend state */
	/* mailbox_reuse(): mb->p.since/read_only already set; NULL = nothing
	 * to tell the server */
	int (*reuse)(struct mailbox *, int was_read_only, struct ms_err *);
};

struct mailbox {
	const struct mailbox_ops *ops;
	struct mailbox_params p;
	char *label;            /* "imaps://127.0.0.1:993" for messages */
	struct mailbox_item *items;
	size_t n_items;
	long connects;          /* connections made so far */
	long logins;            /* login commands sent so far */
	struct mb_session *session; /* libcurl session (IMAP, POP3), owned */
	void *impl;             /* backend state, owned */
};

extern const struct mailbox_ops mailbox_imap_ops;
extern const struct mailbox_ops mailbox_pop_ops;
extern const struct mailbox_ops mailbox_graph_ops;

/* Items: free the strings of every item and the array. */
void mb_items_free(struct mailbox_item *items, size_t n);
/* 1 when an array of n items (grown 16, 32, 64 ...) is full. */
int mb_grow_point(size_t n);
/* Append one item (takes ownership of key/server_id). */
int mb_item_add(struct mailbox *mb, char *key, char *server_id, size_t size,
		time_t received, struct ms_err *err);

/* ---- libcurl session shared by IMAP and POP3 (mailbox.c) ---- */
struct mb_session;

/* Create the handle with TLS, auth and trace settings for scheme
 * ("imap"/"pop3", made "imaps"/"pop3s" for implicit TLS). */
int mb_session_new(struct mailbox *mb, const char *scheme, struct ms_err *err);
void mb_session_free(struct mb_session *s);
/* The error for a session past mailbox_params.deadline. */
int mb_deadline_error(struct mailbox *mb, struct ms_err *err);
/* Perform one command.  path is the URL path after "/" (may be ""); cmd
 * the custom request (NULL = libcurl's default); nobody for commands
 * without a multi-line answer (POP).  Every response line received goes
 * to mb_session_lines(), the body (POP multi-line data) to
 * mb_session_body().  Authentication failures with a bearer token are
 * retried once with a forced token refresh.  *reconnected is set when
 * libcurl had to open a new connection (after the first one). */
int mb_session_perform(struct mailbox *mb, const char *path, const char *cmd,
		       int nobody, size_t body_cap, int *reconnected,
		       struct ms_err *err);
struct buf *mb_session_lines(struct mailbox *mb);
struct buf *mb_session_body(struct mailbox *mb);
/* 1 when libcurl clipped an over-long response line in the last perform. */
int mb_session_clipped(struct mailbox *mb);

/* ---- the raw connection (IMAP): libcurl connects, negotiates TLS and
 * logs in with CURLOPT_CONNECT_ONLY, then the backend sends its own
 * commands and reads the answers with its own caps, past libcurl's 300 KB
 * limit on response lines.  Every read waits at most p.timeout_s. ---- */

/* Connect and log in (again: fresh is implied after the first).  Counts
 * the connection and the login; a refused bearer token is refreshed once. */
int mb_conn_open(struct mailbox *mb, int fresh, struct ms_err *err);
/* 1 when the connection failed, timed out or was closed; reopen it. */
int mb_conn_lost(struct mailbox *mb);
/* Give the connection up (out of step with the server: a cap was hit in
 * the middle of an answer); the next mb_conn_open makes a new one. */
void mb_conn_abandon(struct mailbox *mb);
/* Send line + CRLF (traced redacted with p.verbose). */
int mb_conn_send(struct mailbox *mb, const char *line, struct ms_err *err);
/* Append one line (CRLF kept) to out; longer than maxlen fails. */
int mb_conn_read_line(struct mailbox *mb, struct buf *out, size_t maxlen,
		      struct ms_err *err);
/* Append exactly n bytes to out (out's cap applies). */
int mb_conn_read_exact(struct mailbox *mb, struct buf *out, size_t n,
		       struct ms_err *err);
/* Trace one protocol line ("<" in, ">" out, redacted) with p.verbose. */
void mb_conn_trace(struct mailbox *mb, const char *dir, const char *data,
		   size_t len);

/* Redact credentials from one outgoing protocol line (in place; size is
 * the size of the buffer holding it). */
void mb_redact_line(char *line, size_t size);

/* ---- pure helpers (unit tested) ---- */

/* Last line of a response buffer (tagged IMAP status, POP -ERR ...),
 * CR/LF stripped, control characters replaced, at most outsz-1 bytes. */
void mb_last_line(const char *resp, size_t len, char *out, size_t outsz);

/* The server's answer to a refused login: the last line, or the decoded
 * JSON of an XOAUTH2 "+ base64" error challenge. */
void mb_login_reply(const char *resp, size_t len, char *out, size_t outsz);

/* Parse an RFC 5322 Date value; 0 on success. */
int mb_parse_rfc5322_date(const char *s, time_t *out);
/* Parse ISO 8601 "2026-11-28T01:35:34Z" (fraction, offset allowed). */
int mb_parse_iso8601(const char *s, time_t *out);
/* Find the Date: header in a header block and parse it; 0 if found. */
int mb_header_date(const char *hdr, size_t len, time_t *out);

/* IMAP */
struct imap_fetch {
	uint32_t uid;           /* 0 if the response had none */
	uint32_t seq;
	size_t size;            /* RFC822.SIZE */
	int has_size;
	time_t internaldate;
	int has_date;
	char *body;             /* BODY[...] literal or quoted value, owned */
	const char *body_ref;   /* instead of body (imap_parse_fetch_ex with
				 * borrow): a large literal, borrowed from the
				 * response that was parsed */
	size_t body_len;
	int has_body;
};
/* "17-Jul-1996 02:44:25 -0700"; 0 on success. */
int imap_parse_internaldate(const char *s, size_t len, time_t *out);
/* Find "[UIDVALIDITY n]" in untagged responses; 0 when found. */
int imap_parse_uidvalidity(const char *resp, size_t len, uint32_t *out);
/* The last "* n EXISTS" in resp; 0 when found. */
int imap_parse_exists(const char *resp, size_t len, uint32_t *out);
/* 1 when a CAPABILITY list in resp names cap (e.g. "UIDPLUS"). */
int imap_has_capability(const char *resp, size_t len, const char *cap);
/* Collect the numbers of every "* SEARCH" line (at most max). */
int imap_parse_search(const char *resp, size_t len, uint32_t **uids, size_t *n,
		      size_t max, struct ms_err *err);
/* Parse every "* n FETCH (...)" in resp; literals are length-checked and
 * capped at max_literal.  Other untagged responses are skipped. */
int imap_parse_fetch(const char *resp, size_t len, struct imap_fetch **out,
		     size_t *n, size_t max_items, size_t max_literal,
		     struct ms_err *err);
/* The same; with borrow, body literals of 64 KB or more are not copied
 * (body_ref points into resp instead of body). */
int imap_parse_fetch_ex(const char *resp, size_t len, struct imap_fetch **out,
			size_t *n, size_t max_items, size_t max_literal,
			int borrow, struct ms_err *err);
void imap_fetch_free(struct imap_fetch *f, size_t n);
/* Write a UID set ("1:3,7") for uids[0..n) (sorted ascending) into out,
 * stopping before maxlen; returns how many uids it covered. */
size_t imap_uid_set(const uint32_t *uids, size_t n, char *out, size_t maxlen);
/* qsort comparison of two uint32_t (UIDs) */
int imap_cmp_u32(const void *a, const void *b);

/* POP3 */
struct pop_entry {
	unsigned long num;
	char *uidl;             /* UIDL answers; NULL for LIST */
	size_t size;            /* LIST answers */
};
/* Parse a UIDL (want_uidl=1) or LIST (0) multi-line answer. */
int pop_parse_listing(const char *body, size_t len, int want_uidl,
		      struct pop_entry **out, size_t *n, size_t max,
		      struct ms_err *err);
void pop_entries_free(struct pop_entry *e, size_t n);

/* Graph */
struct graph_msg {
	char *id;
	char *internet_message_id;
	char *subject;
	char *from_name;
	char *from_addr;
	time_t received;
	time_t sent;
	int has_attachments;
	size_t size;            /* 0 = unknown */
};
/* Parse one messages page; *next_link is set (owned) when more pages. */
int graph_parse_page(const char *json, size_t len, struct graph_msg **msgs,
		     size_t *n, size_t max, char **next_link, struct ms_err *err);
void graph_msgs_free(struct graph_msg *m, size_t n);
/* Graph error body -> "Code: message" (empty when not Graph-shaped). */
void graph_error_text(const char *json, size_t len, char *out, size_t outsz);
/* Synthetic header block so the rules see what IMAP would show. */
int graph_synth_headers(const struct graph_msg *m, struct buf *out,
			struct ms_err *err);

#endif
