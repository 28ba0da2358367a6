/*
 * escape.h - the one escaper for markup the reports write: HTML text and
 * attribute values, XML text and attribute values, JSON strings that may
 * sit inside an HTML <script> element, and CSV cells.
 *
 * Everything that came from a fleet or a server is hostile: invalid UTF-8
 * becomes U+FFFD, and so do the control characters XML 1.0 forbids (odd
 * in HTML too), so the output is always well-formed.
 *
 * Ownership: appends to the caller's buffer; the input is borrowed.  A
 * NULL string escapes to nothing (JSON: null).  Each returns 0, or -1
 * with err set when the buffer is full or memory runs out.
 */
#ifndef MS_ESCAPE_H
#define MS_ESCAPE_H

#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"

/* Flags of escape_markup(). */
#define ESC_XML        1u  /* ' as &apos; (XML 1.0) rather than &#39; */
#define ESC_ATTR_WS    2u  /* TAB, LF, CR as character references, so an
			    * XML attribute value keeps them */
#define ESC_KEEP_QUOTE 4u  /* " and ' left as they are (element text whose
			    * file wrote them unescaped: a rewrite keeps its
			    * style) */

/* & < > " ' escaped, per flags. */
int escape_markup(struct buf *b, const char *s, unsigned flags,
		  struct ms_err *err);
/* HTML text or a quoted attribute value. */
int escape_html(struct buf *b, const char *s, struct ms_err *err);
/* An XML attribute value (also fine as element text). */
int escape_xml_attr(struct buf *b, const char *s, struct ms_err *err);

/* A quoted JSON string (RFC 8259).  With ESC_JSON_SCRIPT, < > & are
 * written as \u003c \u003e \u0026 too, so the string can sit inside an
 * HTML <script> element ("</script>" cannot end it). */
#define ESC_JSON_SCRIPT 1u
int escape_json(struct buf *b, const char *s, unsigned flags,
		struct ms_err *err);

/* A quoted CSV cell (RFC 4180: a quote doubled); a cell a spreadsheet
 * would run as a formula (starting with = + - @ TAB or CR) gets a
 * leading apostrophe.  The caller writes the separator or line end. */
int escape_csv(struct buf *b, const char *s, struct ms_err *err);

#endif
