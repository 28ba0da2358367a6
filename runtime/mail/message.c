/*
 * message.c - RFC 5322/MIME parsing with GMime 3 and HTML-to-text with
 * libxml2's HTML parser (see message.h).  Neither library's types leave
 * this file.
 *
 * Body lines: text/plain parts split on LF (CR and trailing blanks
 * dropped), text/html parts rendered to text (scripts, styles and <head>
 * dropped; <br>, <p>, <div>, <tr>, <li>, headings, tables and other block
 * elements break lines; entities decoded; blanks collapsed).  Lines that
 * are empty after that are not kept: a mask like ".*" would otherwise fire
 * once per blank line.  In a multipart/alternative only the text/plain
 * alternative gives body lines when there is one (the HTML copy of the
 * same text would raise every event twice); its other branches are still
 * searched for attachments.
 *
 * Attachments: every leaf part that is not a body text part: a
 * Content-Disposition "attachment", any part with a file name (disposition
 * filename, RFC 2231 filename*= included, or Content-Type name=; RFC 2047
 * encoded names decoded), including inline images, and text/ parts other
 * than plain/html or non-text parts without a name (name "").  An
 * attached message/rfc822 is one attachment; its insides are not searched.
 *
 * Charsets: a part's declared charset is converted to UTF-8; a missing,
 * unknown or lying charset falls back to UTF-8 if the bytes are valid
 * UTF-8, else windows-1252 (every byte maps to something, so decoding
 * never fails).  Headers use GMime's decoder with the fallback charsets
 * UTF-8, windows-1252, ISO-8859-1.
 */
#include "mail/message.h"
#include "mail/message_int.h"

#include <gmime/gmime.h>
#include <libxml/HTMLparser.h>
#include <libxml/tree.h>
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"

#define MESSAGE_MAX_INPUT      ((size_t)64 * 1024 * 1024)
#define MESSAGE_MAX_LINES      10000
#define MESSAGE_MAX_ATTACH     1000
#define MESSAGE_MAX_LINE_LEN   (64 * 1024)
#define MESSAGE_MAX_DEPTH      32
#define MESSAGE_MAX_PARTS      5000
#define MESSAGE_MAX_HTML_DEPTH 256

static int library_ready;

/* GLib and GMime complain on stderr by default; the library never prints,
 * so their messages go to our log at debug level. */
static void glib_to_log(const gchar *domain, GLogLevelFlags level,
			const gchar *message, gpointer data)
{
	(void)level;
	(void)data;
	log_debug("%s: %s", domain ? domain : "glib", message ? message : "");
}

void message_library_init(void)
{
	static const char *const domains[] = {
		"GLib", "GLib-GObject", "GLib-GIO", "GMime", "gmime", NULL,
	};

	static int handlers_set;
	size_t i;

	if (library_ready)
		return;
	for (i = 0; !handlers_set && domains[i]; i++)
		g_log_set_handler(domains[i], G_LOG_LEVEL_MASK | G_LOG_FLAG_FATAL |
				  G_LOG_FLAG_RECURSION, glib_to_log, NULL);
	handlers_set = 1;
	g_mime_init();
	xmlInitParser();
	library_ready = 1;
}

void message_library_shutdown(void)
{
	if (!library_ready)
		return;
	g_mime_shutdown();
	/* libxml2 stays initialised: other modules may use it */
	library_ready = 0;
}

/* windows-1252 0x80..0x9F (NUL becomes a space); undefined bytes map to their C1 code point */
static const uint16_t cp1252_high[32] = {
	0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
	0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
};

static char *cp1252_to_utf8(const char *s, size_t len)
{
	char *out = malloc(len * 3 + 1), *o = out;
	size_t i;

	if (!out)
		return NULL;
	for (i = 0; i < len; i++) {
		unsigned c = (unsigned char)s[i];
		if (c >= 0x80 && c < 0xA0)
			c = cp1252_high[c - 0x80];
		else if (c == 0)
			c = ' ';
		if (c < 0x80) {
			*o++ = (char)c;
		} else if (c < 0x800) {
			*o++ = (char)(0xC0 | (c >> 6));
			*o++ = (char)(0x80 | (c & 0x3F));
		} else {
			*o++ = (char)(0xE0 | (c >> 12));
			*o++ = (char)(0x80 | ((c >> 6) & 0x3F));
			*o++ = (char)(0x80 | (c & 0x3F));
		}
	}
	*o = '\0';
	return out;
}

char *msg_dup_len(const char *s, size_t len)
{
	char *p = malloc(len + 1);

	if (!p)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* Bytes in charset (may be NULL) to a malloc'd UTF-8 string; NUL bytes
 * become spaces.  Never fails except on out of memory. */
static char *to_utf8(const char *s, size_t len, const char *charset)
{
	char *out = NULL, *p;
	size_t i, n;

	if (!s || len == 0)
		return strdup("");
	if (charset && *charset && g_mime_charset_iconv_name(charset) && g_ascii_strcasecmp(charset, "utf-8") &&
	    g_ascii_strcasecmp(charset, "utf8") &&
	    g_ascii_strcasecmp(charset, "us-ascii")) {
		gsize written = 0;
		GError *gerr = NULL;
		gchar *g = g_convert(s, (gssize)len, "UTF-8",
				     g_mime_charset_iconv_name(charset), NULL,
				     &written, &gerr);
		if (gerr)
			g_error_free(gerr);
		if (g && g_utf8_validate(g, (gssize)written, NULL))
			out = msg_dup_len(g, written);
		g_free(g);
		if (out) {
			n = written;
			goto nul;
		}
	}
	if (g_utf8_validate(s, (gssize)len, NULL)) {
		out = msg_dup_len(s, len);
		n = len;
	} else {
		return cp1252_to_utf8(s, len);
	}
nul:
	if (!out)
		return NULL;
	for (p = out, i = 0; i < n; i++)
		if (!p[i])
			p[i] = ' ';
	return out;
}

/* A header value (already decoded by GMime) as one clean UTF-8 line. */
char *msg_header_text(const char *s)
{
	char *out, *p;

	if (!s)
		return strdup("");
	out = to_utf8(s, strlen(s), NULL);
	if (!out)
		return NULL;
	for (p = out; *p; p++)
		if (*p == '\r' || *p == '\n' || *p == '\t')
			*p = ' ';
	return out;
}

struct walk {
	struct message *msg;
	int want_data;
	size_t parts;
	size_t data_total;
	size_t lines_alloc, attach_alloc;
	struct ms_err *err;
	int failed;             /* out of memory: stop */
};

static void hit_limit(struct walk *w, const char *what)
{
	if (!w->msg->limit)
		w->msg->limit = what;
}

#define STR_(x) #x
#define STR(x) STR_(x)

static void add_line(struct walk *w, const char *s, size_t len)
{
	char *line;

	if (w->failed)
		return;
	if (w->msg->n_body_lines >= MESSAGE_MAX_LINES) {
		hit_limit(w, "more than " STR(MESSAGE_MAX_LINES) " body lines");
		return;
	}
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' ||
		       s[len - 1] == '\r'))
		len--;
	if (len == 0 || strspn(s, " \t\r") >= len)
		return;
	if (len > MESSAGE_MAX_LINE_LEN) {
		len = MESSAGE_MAX_LINE_LEN;
		while (len && ((unsigned char)s[len] & 0xC0) == 0x80)
			len--;
	}
	if (MEM_GROW(w->msg->body_lines, w->lines_alloc,
		     w->msg->n_body_lines + 1, NULL) < 0)
		goto nomem;
	if (!(line = msg_dup_len(s, len)))
		goto nomem;
	w->msg->body_lines[w->msg->n_body_lines++] = line;
	return;
nomem:
	w->failed = 1;
	err_nomem(w->err);
}

static void add_text_lines(struct walk *w, const char *text)
{
	const char *p = text, *nl;

	while (*p && !w->failed && w->msg->n_body_lines < MESSAGE_MAX_LINES) {
		nl = strchr(p, '\n');
		add_line(w, p, nl ? (size_t)(nl - p) : strlen(p));
		if (!nl)
			break;
		p = nl + 1;
	}
}

/* HTML rendering ------------------------------------------------------ */

static int html_is_block(const char *n)
{
	static const char *const blocks[] = {
		"p", "div", "tr", "li", "br", "h1", "h2", "h3", "h4", "h5",
		"h6", "table", "ul", "ol", "dl", "dt", "dd", "blockquote",
		"pre", "hr", "section", "article", "header", "footer", "nav",
		"address", "form", "center", "tbody", "thead", "tfoot",
		"caption", "fieldset", "figure", "main", "aside", "body",
		NULL,
	};
	size_t i;

	for (i = 0; blocks[i]; i++)
		if (strcasecmp(n, blocks[i]) == 0)
			return 1;
	return 0;
}

static void html_render(xmlNode *node, struct buf *out, int depth)
{
	struct ms_err ignore = MS_ERR_INIT;
	xmlNode *c;

	if (depth > MESSAGE_MAX_HTML_DEPTH)
		return;
	for (c = node; c; c = c->next) {
		if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
			if (c->content)
				buf_appends(out, (const char *)c->content, &ignore);
		} else if (c->type == XML_ELEMENT_NODE && c->name) {
			const char *n = (const char *)c->name;
			int block;
			if (!strcasecmp(n, "script") || !strcasecmp(n, "style") ||
			    !strcasecmp(n, "head") || !strcasecmp(n, "title") ||
			    !strcasecmp(n, "noscript") ||
			    !strcasecmp(n, "template"))
				continue;
			block = html_is_block(n);
			if (block)
				buf_append(out, "\n", 1, &ignore);
			html_render(c->children, out, depth + 1);
			if (block)
				buf_append(out, "\n", 1, &ignore);
			else if (!strcasecmp(n, "td") || !strcasecmp(n, "th"))
				buf_append(out, " ", 1, &ignore);
		}
	}
}

/* Collapse blanks (incl. U+00A0) in each line and add the lines. */
static void add_html_lines(struct walk *w, const char *text)
{
	const unsigned char *p = (const unsigned char *)text;
	struct ms_err ignore = MS_ERR_INIT;
	struct buf line;
	int space = 0;

	buf_init(&line, MESSAGE_MAX_LINE_LEN * 2);
	for (;; p++) {
		if (*p == '\n' || *p == '\0') {
			if (line.len)
				add_line(w, line.data, line.len);
			buf_reset(&line);
			space = 0;
			if (!*p || w->failed ||
			    w->msg->n_body_lines >= MESSAGE_MAX_LINES)
				break;
			continue;
		}
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\f' ||
		    *p == '\v' || (p[0] == 0xC2 && p[1] == 0xA0)) {
			if (p[0] == 0xC2)
				p++;
			space = 1;
			continue;
		}
		if (space && line.len)
			buf_append(&line, " ", 1, &ignore);
		space = 0;
		buf_append(&line, p, 1, &ignore);
	}
	buf_release(&line);
}

static void add_html(struct walk *w, const char *html, size_t len)
{
	struct ms_err ignore = MS_ERR_INIT;
	htmlDocPtr doc;
	struct buf text;

	if (len == 0 || len > INT32_MAX)
		return;
	doc = htmlReadMemory(html, (int)len, NULL, "UTF-8",
			     HTML_PARSE_RECOVER | HTML_PARSE_NOERROR |
			     HTML_PARSE_NOWARNING | HTML_PARSE_NONET |
			     HTML_PARSE_IGNORE_ENC);
	if (!doc)
		return;
	buf_init(&text, MESSAGE_MAX_INPUT);
	html_render(xmlDocGetRootElement(doc), &text, 0);
	if (text.len)
		add_html_lines(w, text.data);
	buf_release(&text);
	xmlFreeDoc(doc);
	(void)ignore;
}

/* MIME walk ----------------------------------------------------------- */

/* Decode a part's content (transfer encoding undone).  The stream's
 * array is handed over, not copied: an attachment can be 48 MB. */
static GByteArray *part_bytes(GMimePart *part)
{
	GMimeDataWrapper *content = g_mime_part_get_content(part);
	GMimeStream *mem, *enc;
	GByteArray *arr;
	gint64 elen;

	if (!content)
		return NULL;
	/* sized once from the encoded length: no doubling copies */
	enc = g_mime_data_wrapper_get_stream(content);
	elen = enc ? g_mime_stream_length(enc) : -1;
	if (elen > 0 && elen < (gint64)MESSAGE_MAX_INPUT)
		mem = g_mime_stream_mem_new_with_byte_array(g_byte_array_sized_new(
			(guint)(g_mime_part_get_content_encoding(part) ==
				GMIME_CONTENT_ENCODING_BASE64 ? elen / 4 * 3 + 16 : elen + 16)));
	else
		mem = g_mime_stream_mem_new();
	g_mime_data_wrapper_write_to_stream(content, mem);
	arr = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
	g_object_unref(mem);
	return arr ? arr : g_byte_array_new();
}

/* bytes (may be NULL) is taken over: kept as the attachment's data when
 * wanted, freed otherwise. */
static void add_attachment(struct walk *w, GMimeObject *obj, const char *name,
			   int is_inline, GByteArray *bytes)
{
	size_t size = bytes ? bytes->len : 0;
	struct message_attachment *a;
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	char *type = ct ? g_mime_content_type_get_mime_type(ct) : NULL;

	if (w->failed || w->msg->n_attachments >= MESSAGE_MAX_ATTACH) {
		if (!w->failed)
			hit_limit(w, "more than " STR(MESSAGE_MAX_ATTACH) " attachments");
		g_free(type);
		if (bytes)
			g_byte_array_free(bytes, TRUE);
		return;
	}
	if (MEM_GROW(w->msg->attachments, w->attach_alloc,
		     w->msg->n_attachments + 1, NULL) < 0)
		goto nomem;
	a = &w->msg->attachments[w->msg->n_attachments];
	memset(a, 0, sizeof(*a));
	a->name = msg_header_text(name);
	a->content_type = type ? msg_header_text(type) : strdup("application/octet-stream");
	a->is_inline = is_inline;
	a->size = size;
	if (!a->name || !a->content_type)
		goto nomem_a;
	if (w->want_data && bytes &&
	    size <= MESSAGE_MAX_INPUT - w->data_total) {
		/* g_malloc is malloc (GLib >= 2.46): free() releases it */
		if (size == 0)
			g_byte_array_append(bytes, (const guint8 *)"", 1);
		a->data = g_byte_array_free(bytes, FALSE);
		bytes = NULL;
		w->data_total += size;
	}
	if (bytes)
		g_byte_array_free(bytes, TRUE);
	w->msg->n_attachments++;
	g_free(type);
	return;
nomem_a:
	free(a->name);
	free(a->content_type);
nomem:
	if (bytes)
		g_byte_array_free(bytes, TRUE);
	g_free(type);
	w->failed = 1;
	err_nomem(w->err);
}

static int disposition_is(GMimeObject *obj, const char *what)
{
	GMimeContentDisposition *d = g_mime_object_get_content_disposition(obj);
	const char *s = d ? g_mime_content_disposition_get_disposition(d) : NULL;

	return s && g_ascii_strcasecmp(s, what) == 0;
}

static void walk_part(struct walk *w, GMimePart *part, int want_text)
{
	GMimeObject *obj = GMIME_OBJECT(part);
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	const char *name = g_mime_part_get_filename(part);
	int is_text_plain = ct && g_mime_content_type_is_type(ct, "text", "plain");
	int is_html = ct && g_mime_content_type_is_type(ct, "text", "html");
	int attach = disposition_is(obj, "attachment") ||
		     (name && *name) || !(is_text_plain || is_html);
	GByteArray *bytes;

	if (!attach && !want_text)
		return;
	if (attach) {
		/* the bytes only when they are kept (downloads): the rules
		 * read attachment names */
		add_attachment(w, obj, name, !disposition_is(obj, "attachment"),
			       w->want_data ? part_bytes(part) : NULL);
		return;
	}
	bytes = part_bytes(part);
	if (bytes) {
		const char *cs = g_mime_object_get_content_type_parameter(obj, "charset");
		char *text = to_utf8((const char *)bytes->data, bytes->len, cs);
		if (!text) {
			w->failed = 1;
			err_nomem(w->err);
		} else if (is_html) {
			add_html(w, text, strlen(text));
		} else {
			add_text_lines(w, text);
		}
		free(text);
	}
	if (bytes)
		g_byte_array_free(bytes, TRUE);
}

static void walk(struct walk *w, GMimeObject *obj, int depth, int want_text)
{
	if (!obj || w->failed)
		return;
	if (depth > MESSAGE_MAX_DEPTH) {
		hit_limit(w, "MIME parts nested deeper than " STR(MESSAGE_MAX_DEPTH));
		return;
	}
	if (++w->parts > MESSAGE_MAX_PARTS) {
		hit_limit(w, "more than " STR(MESSAGE_MAX_PARTS) " MIME parts");
		return;
	}
	if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		GMimeContentType *ct = g_mime_object_get_content_type(obj);
		int n = g_mime_multipart_get_count(mp), i, plain = -1;

		if (ct && g_mime_content_type_is_type(ct, "multipart", "alternative")) {
			for (i = 0; i < n; i++) {
				GMimeObject *c = g_mime_multipart_get_part(mp, i);
				GMimeContentType *cct = g_mime_object_get_content_type(c);
				if (GMIME_IS_PART(c) && cct &&
				    g_mime_content_type_is_type(cct, "text", "plain") &&
				    !disposition_is(c, "attachment") &&
				    !g_mime_part_get_filename(GMIME_PART(c))) {
					plain = i;
					break;
				}
			}
		}
		for (i = 0; i < n && !w->failed; i++)
			walk(w, g_mime_multipart_get_part(mp, i), depth + 1,
			     want_text && (plain < 0 || plain == i));
		/* a multipart without a usable boundary: GMime keeps all of
		 * it as the prologue; read it as text rather than lose it */
		if (n == 0 && want_text) {
			const char *pro = g_mime_multipart_get_prologue(mp);
			if (pro) {
				char *t = to_utf8(pro, strlen(pro), NULL);
				if (t)
					add_text_lines(w, t);
				free(t);
			}
		}
	} else if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
		const char *name = g_mime_object_get_content_disposition_parameter(obj, "filename");
		GByteArray *arr = NULL;

		if (!name)
			name = g_mime_object_get_content_type_parameter(obj, "name");
		if (inner && w->want_data) {
			GMimeStream *mem = g_mime_stream_mem_new();

			g_mime_object_write_to_stream(GMIME_OBJECT(inner), NULL, mem);
			arr = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
			g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
			g_object_unref(mem);
		}
		add_attachment(w, obj, name, !disposition_is(obj, "attachment"), arr);
	} else if (GMIME_IS_PART(obj)) {
		walk_part(w, GMIME_PART(obj), want_text);
	}
}

/* Headers ------------------------------------------------------------- */

char *msg_address_lower_domain(const char *addr)
{
	char *s = msg_header_text(addr), *at, *p;

	if (!s)
		return NULL;
	/* trim blanks GMime may leave around a loose address */
	p = s + strspn(s, " ");
	memmove(s, p, strlen(p) + 1);
	for (p = s + strlen(s); p > s && p[-1] == ' '; p--)
		p[-1] = '\0';
	if ((at = strrchr(s, '@')) != NULL)
		for (p = at + 1; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	return s;
}

InternetAddressMailbox *msg_first_mailbox(InternetAddressList *l, int depth)
{
	int i, n;

	if (!l || depth > 4)
		return NULL;
	n = internet_address_list_length(l);
	for (i = 0; i < n; i++) {
		InternetAddress *ia = internet_address_list_get_address(l, i);
		if (INTERNET_ADDRESS_IS_MAILBOX(ia))
			return INTERNET_ADDRESS_MAILBOX(ia);
		if (INTERNET_ADDRESS_IS_GROUP(ia)) {
			InternetAddressMailbox *m = msg_first_mailbox(
				internet_address_group_get_members(
					INTERNET_ADDRESS_GROUP(ia)), depth + 1);
			if (m)
				return m;
		}
	}
	return NULL;
}

static char *message_id_of(GMimeMessage *m)
{
	const char *id = g_mime_message_get_message_id(m);
	const char *raw;
	size_t len;

	if (id && *id)
		return msg_header_text(id);
	raw = g_mime_object_get_header(GMIME_OBJECT(m), "Message-Id");
	if (!raw)
		return strdup("");
	raw += strspn(raw, " \t\r\n<");
	len = strcspn(raw, ">\r\n");
	while (len && (raw[len - 1] == ' ' || raw[len - 1] == '\t'))
		len--;
	{
		char *tmp = msg_dup_len(raw, len), *out;
		if (!tmp)
			return NULL;
		out = msg_header_text(tmp);
		free(tmp);
		return out;
	}
}

size_t msg_header_block_len(const char *data, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i++) {
		if (data[i] != '\n')
			continue;
		if (data[i + 1] == '\n')
			return i + 1;
		if (data[i + 1] == '\r' && i + 2 < len && data[i + 2] == '\n')
			return i + 1;
	}
	return len;
}

int message_parse(struct message *msg, const char *data, size_t len,
		  int headers_only, int want_attachment_data, struct ms_err *err)
{
	static const char *fallback[] = { "UTF-8", "windows-1252",
					  "iso-8859-1", NULL };
	GMimeParserOptions *opts = NULL;
	GMimeStream *stream = NULL;
	GByteArray *whole = NULL;
	GMimeParser *parser = NULL;
	GMimeMessage *m = NULL;
	InternetAddressMailbox *mb;
	GDateTime *dt;
	struct walk w;
	int rc = -1;

	if (headers_only)	/* message_fast.c: no MIME tree for a few fields */
		return message_parse_headers_fast(msg, data, len, err);
	memset(msg, 0, sizeof(*msg));
	if (len > MESSAGE_MAX_INPUT)
		return err_set(err, MS_ERR_TOOBIG,
			       "message of %zu bytes exceeds the limit of %zu",
			       len, MESSAGE_MAX_INPUT);
	if (!data)
		data = "", len = 0;
	message_library_init();
	if (headers_only)
		len = msg_header_block_len(data, len);

	opts = g_mime_parser_options_new();
	g_mime_parser_options_set_address_compliance_mode(opts, GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_parameter_compliance_mode(opts, GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_rfc2047_compliance_mode(opts, GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_fallback_charsets(opts, fallback);
	/* over the caller's bytes, not a copy of them: the stream only reads,
	 * and everything that refers to it is gone before they are */
	whole = g_byte_array_new_take((guint8 *)(uintptr_t)data, len);
	stream = g_mime_stream_mem_new_with_byte_array(whole);
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(stream), FALSE);
	parser = g_mime_parser_new_with_stream(stream);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	m = g_mime_parser_construct_message(parser, opts);

	msg->has_body = !headers_only;
	if (!m) {
		/* nothing GMime could use: an empty message, not a failure */
		if (!(msg->subject = strdup("")) || !(msg->from_addr = strdup("")) ||
		    !(msg->from_name = strdup("")) || !(msg->message_id = strdup("")))
			goto nomem;
		rc = 0;
		goto done;
	}

	if (!(msg->subject = msg_header_text(g_mime_message_get_subject(m))))
		goto nomem;
	mb = msg_first_mailbox(g_mime_message_get_from(m), 0);
	if (!mb)
		mb = msg_first_mailbox(g_mime_message_get_sender(m), 0);
	if (mb) {
		msg->from_addr = msg_address_lower_domain(internet_address_mailbox_get_addr(mb));
		msg->from_name = msg_header_text(internet_address_get_name(INTERNET_ADDRESS(mb)));
	} else {
		msg->from_addr = strdup("");
		msg->from_name = strdup("");
	}
	if (!msg->from_addr || !msg->from_name)
		goto nomem;
	if (!(msg->message_id = message_id_of(m)))
		goto nomem;
	if ((dt = g_mime_message_get_date(m)) != NULL) {
		msg->date = (time_t)g_date_time_to_unix(dt);
		msg->date_offset_min = (int)(g_date_time_get_utc_offset(dt) /
					     G_TIME_SPAN_MINUTE);
		msg->has_date = 1;
	}

	if (!headers_only) {
		memset(&w, 0, sizeof(w));
		w.msg = msg;
		w.want_data = want_attachment_data;
		w.err = err;
		walk(&w, g_mime_message_get_mime_part(m), 0, 1);
		if (w.failed)
			goto fail;
	}
	rc = 0;
	goto done;
nomem:
	err_nomem(err);
fail:
	message_release(msg);
done:
	if (m)
		g_object_unref(m);
	if (parser)
		g_object_unref(parser);
	if (stream)
		g_object_unref(stream);
	if (whole)
		g_byte_array_free(whole, FALSE);   /* the bytes stay the caller's */
	if (opts)
		g_mime_parser_options_free(opts);
	return rc;
}

void message_release(struct message *msg)
{
	size_t i;

	if (!msg)
		return;
	free(msg->subject);
	free(msg->from_addr);
	free(msg->from_name);
	free(msg->message_id);
	for (i = 0; i < msg->n_body_lines; i++)
		free(msg->body_lines[i]);
	free(msg->body_lines);
	for (i = 0; i < msg->n_attachments; i++) {
		free(msg->attachments[i].name);
		free(msg->attachments[i].content_type);
		free(msg->attachments[i].data);
	}
	free(msg->attachments);
	memset(msg, 0, sizeof(*msg));
}

/* "CON", "nul.txt", "COM1.pdf" ... name devices on Windows, whatever the
 * extension: prefix them with '_' so the file is a file there too. */
static char *windows_device_guard(char *s)
{
	static const char *const devices[] = { "CON", "PRN", "AUX", "NUL",
		"COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
		"COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7",
		"LPT8", "LPT9", "CLOCK$" };
	size_t n = strlen(s);

	for (size_t i = 0; i < sizeof(devices) / sizeof(devices[0]); i++) {
		size_t dl = strlen(devices[i]);
		char *t;

		if (g_ascii_strncasecmp(s, devices[i], dl) != 0 ||
		    (s[dl] != '\0' && s[dl] != '.'))
			continue;
		if (!(t = malloc(n + 2))) {
			free(s);
			return NULL;
		}
		t[0] = '_';
		memcpy(t + 1, s, n + 1);
		free(s);
		return t;
	}
	return s;
}

char *message_attachment_safe_name(const char *name)
{
	static const char bad[] = "/\\:*?\"<>|";
	char *s, *p, *start, *end;
	size_t len;

	if (!name)
		name = "";
	if (!(s = strdup(name)))
		return NULL;
	for (p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7F || strchr(bad, *p))
			*p = '_';
	start = s + strspn(s, ". ");
	len = strlen(start);
	/* cut first, then trim: the cut may end on a blank or a dot */
	if (len > 200) {
		len = 200;
		while (len && ((unsigned char)start[len] & 0xC0) == 0x80)
			len--;
	}
	end = start + len;
	while (end > start && (end[-1] == '.' || end[-1] == ' '))
		end--;
	len = (size_t)(end - start);
	if (len == 0) {
		free(s);
		return strdup("attachment");
	}
	memmove(s, start, len);
	s[len] = '\0';
	return windows_device_guard(s);
}
