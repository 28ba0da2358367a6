/*
 * explain.h - the one catalogue that turns what Microsoft (or any mail
 * server) said into one line of cause and one line of fix.
 *
 * Inputs are what went wrong: a token endpoint answer (`error`,
 * `error_codes` AADSTS numbers, description, trace and correlation ids), an
 * SMTP reply, an IMAP/POP reply, a Graph error, or any error message that
 * contains one of those.  Output is a struct explain of static strings:
 * nothing is allocated, nothing is freed, every function is pure and
 * thread-safe.
 *
 * Every lookup function returns 0 when a catalogue entry matched and -1
 * when none did; in both cases *out is filled (with a generic explanation
 * when nothing matched) so a caller can always print it.
 *
 * Ownership: all strings in struct explain are static and borrowed.
 * struct explain_ids is a plain value filled by the parsers below.
 */
#ifndef MS_EXPLAIN_H
#define MS_EXPLAIN_H

#include <stddef.h>

struct explain {
	const char *cause;   /* one line: what is wrong */
	const char *fix;     /* one line: the concrete action that fixes it */
	int temporary;       /* 1 = retry later, 0 = needs a change */
	const char *topic;   /* short key, e.g. "AADSTS7000215", "smtp 5.7.139" */
};

/* Identifiers worth keeping from a failed request (all NUL-terminated,
 * "" when absent). */
#define EXPLAIN_ID_MAX 96
struct explain_ids {
	char error[EXPLAIN_ID_MAX];          /* token `error` or Graph error code */
	long code;                           /* first AADSTS code, 0 if none */
	char trace_id[EXPLAIN_ID_MAX];       /* token service Trace ID */
	char correlation_id[EXPLAIN_ID_MAX]; /* token service Correlation ID */
	char request_id[EXPLAIN_ID_MAX];     /* Graph request-id */
};

/* Token endpoint: decides on the first known AADSTS code in codes[0..n),
 * then on the `error` value (invalid_client, invalid_grant, ...). */
int explain_token_error(const char *error, const long *codes, size_t n,
			struct explain *out);
/* An SMTP reply line, e.g. "535 5.7.139 Authentication unsuccessful ...". */
int explain_smtp_reply(const char *reply, struct explain *out);
/* An IMAP or POP3 reply, e.g. "A1 NO AUTHENTICATE failed.", "-ERR ...". */
int explain_mail_reply(const char *reply, struct explain *out);
/* A Graph error: HTTP status and error.code (code may be NULL). */
int explain_graph_error(long http_status, const char *code, struct explain *out);
/* Any error message: finds a known pattern anywhere in it (AADSTSnnnn, an
 * SMTP enhanced status code, an IMAP/POP phrase, a Graph code, a token
 * `error` value). */
int explain_text(const char *message, struct explain *out);

/* Parse a token endpoint error body (JSON) and explain it.  ids may be
 * NULL.  Trace and correlation ids come from the JSON fields, or from the
 * "Trace ID: ..." lines of error_description when the fields are absent. */
int explain_token_response(const char *json, size_t len, struct explain *out,
			   struct explain_ids *ids);
/* Parse a Graph error body ({"error":{"code":...,"innerError":{...}}}) and
 * explain it together with the HTTP status.  ids may be NULL. */
int explain_graph_response(long http_status, const char *json, size_t len,
			   struct explain *out, struct explain_ids *ids);

/* Pull "Trace ID: x", "Correlation ID: y" and "request id z" (any case,
 * with or without ':') out of a Microsoft error description or one of our
 * error messages into ids (fields already set are kept). */
void explain_ids_from_text(const char *text, struct explain_ids *ids);

/* The one-call form for programs: explain any error message (as
 * explain_text()), keep the ids it carries ("trace id", "correlation id",
 * "request id") and render it with explain_format().  Returns
 * explain_text()'s result; out always holds a rendering. */
int explain_error(const char *message, char *out, size_t outsz);

/* Render an explanation for people:
 *     cause: ...
 *     fix: ...
 *     temporary: retry later            (only when temporary)
 *     trace id: ..., correlation id: ..., request id: ...   (those known)
 * Lines end with '\n'.  ids may be NULL.  Always NUL-terminates; returns
 * the length it needed (like snprintf). */
size_t explain_format(const struct explain *e, const struct explain_ids *ids,
		      char *out, size_t outsz);

/* Walk the catalogue (for tests and documentation).  kind: 't' AADSTS
 * codes, 'e' token `error` values, 's' SMTP, 'm' IMAP/POP, 'g' Graph.
 * Fills *out with entry i and returns its key ("AADSTSnnnn", the error
 * value, the SMTP text or enhanced code, the IMAP/POP phrase, the Graph
 * code or "status"), or returns NULL past the end.  Every entry has a
 * distinct topic. */
const char *explain_catalogue_entry(char kind, size_t i, struct explain *out);

#endif
