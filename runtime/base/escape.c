/*
 * escape.c - HTML, XML and JSON escaping into a buf (escape.h).
 */
#include "base/escape.h"

#include <stdio.h>
#include <string.h>

#include "base/utf8.h"

static const char REPLACEMENT[] = "\xEF\xBF\xBD";   /* U+FFFD */

/* Length of the valid UTF-8 sequence at s (NUL-terminated), 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s)
{
	return utf8_decode((const char *)s, 4, NULL);
}

/* What replaces the character at p (n bytes, valid), NULL to keep it. */
static const char *markup_rep(const unsigned char *p, size_t n, unsigned flags)
{
	if (n == 3 && p[0] == 0xEF && p[1] == 0xBF && (p[2] == 0xBE || p[2] == 0xBF))
		return REPLACEMENT;             /* U+FFFE, U+FFFF: not characters */
	if (n != 1)
		return NULL;
	switch (*p) {
	case '&': return "&amp;";
	case '<': return "&lt;";
	case '>': return "&gt;";
	case '"': return flags & ESC_KEEP_QUOTE ? NULL : "&quot;";
	case '\'':
		if (flags & ESC_KEEP_QUOTE)
			return NULL;
		return flags & ESC_XML ? "&apos;" : "&#39;";
	case '\t': return flags & ESC_ATTR_WS ? "&#9;" : NULL;
	case '\n': return flags & ESC_ATTR_WS ? "&#10;" : NULL;
	case '\r': return flags & ESC_ATTR_WS ? "&#13;" : NULL;
	default:
		return *p < 0x20 || *p == 0x7F ? REPLACEMENT : NULL;
	}
}

int escape_markup(struct buf *b, const char *s, unsigned flags,
		  struct ms_err *err)
{
	const unsigned char *p = (const unsigned char *)(s ? s : ""), *run = p;

	while (*p) {
		size_t n = utf8_seq_len(p);
		const char *rep = n ? markup_rep(p, n, flags) : REPLACEMENT;

		if (!rep) {
			p += n;
			continue;
		}
		if (buf_append(b, run, (size_t)(p - run), err) < 0 ||
		    buf_appends(b, rep, err) < 0)
			return -1;
		p += n ? n : 1;
		run = p;
	}
	/* also makes an empty buffer a valid empty C string */
	return buf_append(b, run, (size_t)(p - run), err);
}

int escape_html(struct buf *b, const char *s, struct ms_err *err)
{
	return escape_markup(b, s, 0, err);
}

int escape_xml_attr(struct buf *b, const char *s, struct ms_err *err)
{
	return escape_markup(b, s, ESC_XML | ESC_ATTR_WS, err);
}

int escape_json(struct buf *b, const char *s, unsigned flags,
		struct ms_err *err)
{
	const unsigned char *p = (const unsigned char *)s, *run;
	int script = (flags & ESC_JSON_SCRIPT) != 0;

	if (!s)
		return buf_append(b, "null", 4, err);
	if (buf_append(b, "\"", 1, err) < 0)
		return -1;
	for (run = p; *p; ) {
		const char *e = NULL;
		char tmp[8];
		size_t n;

		if (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\' &&
		    !(script && (*p == '<' || *p == '>' || *p == '&'))) {
			p++;
			continue;
		}
		n = utf8_seq_len(p);
		switch (*p) {
		case '"': e = "\\\""; break;
		case '\\': e = "\\\\"; break;
		case '\n': e = "\\n"; break;
		case '\r': e = "\\r"; break;
		case '\t': e = "\\t"; break;
		default:
			if (*p < 0x20 || *p == '<' || *p == '>' || *p == '&') {
				snprintf(tmp, sizeof(tmp), "\\u%04x", *p);
				e = tmp;
			} else if (n == 0) {
				e = REPLACEMENT;
				n = 1;
			}
		}
		if (!e) {       /* valid multi-byte UTF-8: part of the run */
			p += n;
			continue;
		}
		if (buf_append(b, run, (size_t)(p - run), err) < 0 ||
		    buf_appends(b, e, err) < 0)
			return -1;
		p += n ? n : 1;
		run = p;
	}
	if (buf_append(b, run, (size_t)(p - run), err) < 0)
		return -1;
	return buf_append(b, "\"", 1, err);
}

int escape_csv(struct buf *b, const char *s, struct ms_err *err)
{
	const char *p, *q;

	s = s ? s : "";
	if (buf_append(b, "\"", 1, err) < 0 ||
	    (s[0] && strchr("=+-@\t\r", s[0]) && buf_append(b, "'", 1, err) < 0))
		return -1;
	/* a quote is doubled: copy up to and including it, then one more */
	for (p = s; (q = strchr(p, '"')); p = q + 1)
		if (buf_append(b, p, (size_t)(q - p) + 1, err) < 0 ||
		    buf_append(b, "\"", 1, err) < 0)
			return -1;
	if (buf_append(b, p, strlen(p), err) < 0)
		return -1;
	return buf_append(b, "\"", 1, err);
}
