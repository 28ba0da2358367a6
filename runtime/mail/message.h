/*
 * message.h - one mail message as the rules see it (parsed with GMime in
 * message.c; GMime types never leave that file).
 *
 * All strings are UTF-8 and owned by the struct; message_release() frees
 * them.  A missing subject is "" (never NULL).  Header-only parsing fills
 * subject/from/date/message_id and leaves the body fields empty with
 * has_body = 0.
 */
#ifndef MS_MESSAGE_H
#define MS_MESSAGE_H

#include <stddef.h>
#include <time.h>
#include "base/err.h"

struct message {
	char *subject;          /* decoded (RFC 2047, any charset); "" if none */
	char *from_addr;        /* "user@example.com", lowercased domain; "" if none */
	char *from_name;        /* display name, "" if none */
	char *message_id;       /* without <>; "" if none */
	time_t date;            /* Date: header in UTC seconds; 0 if none/invalid */
	int has_date;
	int date_offset_min;    /* the header's own zone, minutes east of UTC */

	int has_body;           /* body_lines/attachments are filled */
	char **body_lines;      /* text/plain lines and HTML rendered to text
				 * lines, in part order; blank lines dropped;
				 * at most 10,000 (see message.c) */
	size_t n_body_lines;
	struct message_attachment {
		char *name;     /* decoded file name (RFC 2231/2047), "" if none */
		char *content_type;
		int is_inline;
		size_t size;
		unsigned char *data;  /* decoded content; filled only by message_parse
				       * with want_attachment_data */
	} *attachments;
	size_t n_attachments;
	const char *limit;      /* the first parser limit that cut the body or
				 * the attachment list short (static text,
				 * e.g. "more than 1000 attachments"), NULL
				 * when the message was read whole */
};

/* Parse raw RFC 5322 data.  headers_only: stop after the header block
 * (data may hold only headers).  want_attachment_data: keep decoded bytes.
 * Broken MIME never fails the whole message: what can be read is kept. */
int message_parse(struct message *msg, const char *data, size_t len,
		  int headers_only, int want_attachment_data, struct ms_err *err);
void message_release(struct message *msg);

/* The same as message_parse(msg, data, len, 1, 0, err) (headers only),
 * without building a MIME tree: a direct scan of the header block for
 * Subject, From, Sender, Message-ID and Date (message_fast.c).  Fails only
 * on out of memory or more than 64 MB; release with message_release(). */
int message_parse_headers_fast(struct message *msg, const char *data, size_t len,
			       struct ms_err *err);

/* A file name safe to create on Windows or POSIX from an attachment name:
 * '/', '\\', ':', '*', '?', '"', '<', '>', '|' and control characters
 * become '_', leading dots and blanks and trailing dots and blanks go, at
 * most 200 bytes; "attachment" if nothing is left; a Windows device name
 * (CON, NUL, COM1, LPT1 ..., with any extension) gets a leading '_'.
 * Caller frees; NULL only when out of memory. */
char *message_attachment_safe_name(const char *name);

/* Process-wide init/shutdown of the MIME library (idempotent). */
void message_library_init(void);
void message_library_shutdown(void);

#endif
