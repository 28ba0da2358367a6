/*
 * send_int.h - internals of send.c that send_net.c shares, and the SMTP
 * trace, for the unit tests and the fuzzer.
 *
 * SMTP over libcurl learns what the server said only through libcurl's
 * debug callback, which hands over the server's reply lines (incoming)
 * and our own command lines (outgoing) in chunks of one or more lines.
 * struct send_trace is what send.c keeps of them, with no network and no
 * allocation:
 *   - reply: the last server reply line, for error messages: printable
 *     (control characters become '?'), valid UTF-8 (an invalid byte
 *     becomes '?', a sequence is never cut), at most SEND_REPLY_MAX - 1
 *     bytes.  Replies after our QUIT are not kept: they do not explain
 *     a failure.
 *   - a 334 challenge is never kept raw: when its base64 payload decodes
 *     to an XOAUTH2 JSON status ('{' ...), reply is "334 " and that JSON
 *     (made printable as above); otherwise just "334".
 *   - cmd: the verb of our last command (EHLO, HELO, STARTTLS, MAIL,
 *     RCPT, DATA, RSET, NOOP, AUTH), to name the stage that failed.
 *   - our credentials never go anywhere: after our AUTH and until the
 *     server's next reply that is not a 334, every line we send is a
 *     SASL continuation (a credential), whatever it looks like; it
 *     changes nothing and is logged as "[credentials hidden]", and the
 *     AUTH line itself is logged without its initial response.
 * With verbose set, every line is also passed to log_trace() (incoming
 * 334 payloads and credentials hidden).
 *
 * Ownership: struct send_trace is plain data owned by the caller; the
 * functions borrow their arguments for the call.
 */
#ifndef MS_SEND_INT_H
#define MS_SEND_INT_H

#include <stddef.h>

#define SEND_REPLY_MAX 512
#define SEND_MAX_TEXT (4u * 1024 * 1024)   /* cap on a composed message */

/* A printable (control characters become '?'), length-capped copy of
 * untrusted text for an error message; dst always NUL-terminated. */
void send_safe_copy(char *dst, size_t dstsz, const char *src);

struct send_trace {
	char reply[SEND_REPLY_MAX]; /* last server reply line, "" if none */
	char cmd[16];               /* verb of our last command, "" if none */
	int quitting;               /* QUIT sent */
	int in_auth;                /* AUTH sent, no final reply yet */
	int verbose;                /* log_trace every line */
};

void send_trace_init(struct send_trace *t, int verbose);
/* size bytes as libcurl's debug callback hands them over: lines ending in
 * LF or CRLF (the last one may lack it); only the first SEND_REPLY_MAX + 3
 * bytes of a line are looked at, and a NUL ends a line's text.
 * outgoing: our own command lines (CURLINFO_HEADER_OUT), else the
 * server's (CURLINFO_HEADER_IN). */
void send_trace_chunk(struct send_trace *t, int outgoing, const char *data,
		      size_t size);
/* One line, without its line end. */
void send_trace_line_in(struct send_trace *t, const char *line);
void send_trace_line_out(struct send_trace *t, const char *line);

#endif
