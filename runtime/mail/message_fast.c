/*
 * message_fast.c - header-only parsing without building a GMimeMessage
 * (see message.h, message_parse_headers_fast()).
 *
 * The connector reads the eight header fields of every message in a
 * folder; building and freeing a GMimeMessage for each 300-byte block
 * was most of its CPU.  This scans the header block directly (lines,
 * folding, the fields it needs) and hands only the values to GMime's
 * string helpers, with the parser options message_parse() uses, so the
 * result is what message_parse(..., headers_only = 1, ...) gives:
 *   Subject     the last one, g_mime_utils_header_decode_text()
 *   From/Sender the first mailbox of all From headers, else of all
 *               Sender headers (internet_address_list_parse())
 *   Message-ID  the last one, g_mime_utils_decode_message_id(); when
 *               that finds nothing, the first one's text without <>
 *   Date        the last one, g_mime_utils_header_decode_date()
 * tests/unit/test_message_fast.c compares both on every file of
 * tests/data/mime and on hostile blocks.  GMime types stay here.
 */
#include "mail/message.h"
#include "mail/message_int.h"

#include <gmime/gmime.h>
#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/mem.h"

#define FAST_MAX_INPUT   ((size_t)64 * 1024 * 1024)

/* windows-1252 0x80-0x9F (as message.c) */
/* 1 when the block is one this scanner reads exactly as GMime's parser
 * does: ended by an empty line, every line ended by LF or CRLF, no NUL or
 * lone CR, no folded first line, every field name (up to ':') without
 * blanks, control or 8-bit bytes.  Anything else (mbox "From " lines,
 * junk lines, cut blocks) goes to GMime itself. */
static int clean_block(const char *data, size_t len, size_t block)
{
	const char *p = data, *end = data + block;

	if (block >= len)
		return 0;       /* no empty line after the fields */
	if (block && (*p == ' ' || *p == '\t'))
		return 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *q;
		if (!nl)
			return 0;
		for (q = p; q < nl; q++)
			if (*q == '\0' || (*q == '\r' && q + 1 != nl))
				return 0;
		if (*p != ' ' && *p != '\t') {
			for (q = p; q < nl && *q != ':'; q++)
				if ((unsigned char)*q <= ' ' || (unsigned char)*q >= 0x7f)
					return 0;
			if (q == p || q == nl)
				return 0;
		}
		p = nl + 1;
	}
	return 1;
}

/* What message_parse(..., headers_only = 1, ...) gives, through GMime:
 * the header block parsed as a whole message with no body (headers_only
 * = 0 on the block alone, so a routing of headers-only parsing to this
 * file cannot loop), body fields dropped. */
static int gmime_fallback(struct message *msg, const char *data, size_t block,
			  struct ms_err *err)
{
	if (message_parse(msg, data, block, 0, 0, err))
		return -1;
	for (size_t i = 0; i < msg->n_body_lines; i++)
		free(msg->body_lines[i]);
	free(msg->body_lines);
	msg->body_lines = NULL;
	msg->n_body_lines = 0;
	for (size_t i = 0; i < msg->n_attachments; i++) {
		free(msg->attachments[i].name);
		free(msg->attachments[i].content_type);
		free(msg->attachments[i].data);
	}
	free(msg->attachments);
	msg->attachments = NULL;
	msg->n_attachments = 0;
	msg->has_body = 0;
	return 0;
}

/* The parser options of message_parse(), made once per process (a plain
 * struct GMime never frees; kept for the life of the process). */
static GMimeParserOptions *fast_opts;
static pthread_once_t fast_once = PTHREAD_ONCE_INIT;

static void fast_options_make(void)
{
	static const char *fallback[] = { "UTF-8", "windows-1252", "iso-8859-1", NULL };
	GMimeParserOptions *o = g_mime_parser_options_new();

	g_mime_parser_options_set_address_compliance_mode(o, GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_parameter_compliance_mode(o, GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_rfc2047_compliance_mode(o, GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_fallback_charsets(o, fallback);
	fast_opts = o;
}

static GMimeParserOptions *fast_options(void)
{
	message_library_init();
	pthread_once(&fast_once, fast_options_make);
	return fast_opts;
}

/* One header field: its name and raw value (after the colon, folding
 * kept, final line break dropped). */
struct field {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/* A raw value unfolded as GMime does (g_free). */
static char *unfold(const struct field *f)
{
	char *raw = msg_dup_len(f->value, f->value_len), *u;

	if (!raw)
		return NULL;
	u = g_mime_utils_header_unfold(raw);
	free(raw);
	return u;
}

/* The value GMime's g_mime_header_get_value() gives: unfolded, RFC 2047
 * decoded (g_free). */
static char *decoded(GMimeParserOptions *opts, const struct field *f)
{
	char *u = unfold(f), *d;
	int plain = 1;

	if (!u)
		return NULL;
	/* printable ASCII without an encoded word decodes to itself */
	for (const char *q = u; *q && plain; q++)
		if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e ||
		    (q[0] == '=' && q[1] == '?'))
			plain = 0;
	if (plain)
		return u;
	d = g_mime_utils_header_decode_text(opts, u);
	g_free(u);
	return d;
}

enum { F_SUBJECT, F_FROM, F_SENDER, F_MSGID, F_DATE, F_N };
static const char *const field_names[F_N] = {
	"Subject", "From", "Sender", "Message-Id", "Date",
};

/* Next header field of [p, end); 0 when there is none (end of the block
 * or a line that is not a header field, where GMime's parser ends the
 * header too). */
static int next_field(const char **pp, const char *end, struct field *f)
{
	const char *p = *pp, *q, *nl;

	if (p >= end || *p == '\r' || *p == '\n')
		return 0;
	q = p;
	while (q < end && *q != ':' && (unsigned char)*q > ' ' && (unsigned char)*q < 0x7f)
		q++;
	f->name = p;
	f->name_len = (size_t)(q - p);
	while (q < end && (*q == ' ' || *q == '\t'))
		q++;
	if (q >= end || *q != ':' || f->name_len == 0) {
		/* not a header field: GMime's parser skips the line, but
		 * gives the whole message up when it is the last one and
		 * unterminated */
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			return -1;
		*pp = nl + 1;
		f->name_len = 0;
		return 1;
	}
	q++;
	while (q < end && (*q == ' ' || *q == '\t'))
		q++;
	f->value = q;
	/* the value runs on over folded lines */
	for (;;) {
		nl = memchr(q, '\n', (size_t)(end - q));
		if (!nl) {
			q = end;
			break;
		}
		if (nl + 1 < end && (nl[1] == ' ' || nl[1] == '\t')) {
			q = nl + 1;
			continue;
		}
		q = nl + 1;
		break;
	}
	*pp = q;
	while (q > f->value && (q[-1] == '\n' || q[-1] == '\r'))
		q--;
	f->value_len = (size_t)(q - f->value);
	return 1;
}

static int atom_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '+' || c == '-';
}

/* length of a plain addr-spec at s (dot-separated runs of letters,
 * digits, '_', '+', '-'; one '@'; no IDN "xn--" label); 0 if not one */
static size_t plain_addr(const char *s, size_t n)
{
	size_t i = 0, at = 0;

	for (int part = 0; part < 2; part++) {
		for (;;) {
			size_t st = i;
			while (i < n && atom_char((unsigned char)s[i]))
				i++;
			if (i == st)
				return 0;
			if (part == 1 && i - st >= 4 && strncasecmp(s + st, "xn--", 4) == 0)
				return 0;
			if (i < n && s[i] == '.') {
				i++;
				continue;
			}
			break;
		}
		if (part == 0) {
			if (i >= n || s[i] != '@')
				return 0;
			at = ++i;
		}
	}
	return at ? i : 0;
}

/* The common shapes GMime reads without surprises, read directly:
 * "addr", "<addr>", "Word Word <addr>" (letters and digits, single
 * blanks) and "\"quoted text\" <addr>" (printable ASCII, no quote,
 * backslash or encoded word, single blanks).  1 when it is one; *name
 * NULL when there is none (both malloc'd). */
static int plain_mailbox(const char *v, size_t n, char **name, char **addr)
{
	size_t i = 0, ns = 0, ne = 0, a;
	int quoted = 0;

	*name = *addr = NULL;
	if (n == 0)
		return 0;
	if ((a = plain_addr(v, n)) == n)
		return (*addr = msg_dup_len(v, n)) ? 1 : -1;
	if (n && v[0] == '"') {
		quoted = 1;
		ns = i = 1;
		while (i < n && v[i] != '"') {
			unsigned char c = (unsigned char)v[i];
			if (c < 0x20 || c > 0x7e || c == '\\' || (c == '=' && i + 1 < n && v[i + 1] == '?') ||
			    (c == ' ' && (i == ns || v[i - 1] == ' ')))
				return 0;
			i++;
		}
		if (i >= n || i == ns || v[i - 1] == ' ')
			return 0;
		ne = i++;
		if (i >= n || v[i] != ' ')
			return 0;
		i++;
	} else if (n && v[0] != '<') {
		while (i < n && v[i] != '<') {
			unsigned char c = (unsigned char)v[i];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == ' '))
				return 0;
			if (c == ' ' && (i == 0 || v[i - 1] == ' '))
				return 0;
			i++;
		}
		if (i < 2 || v[i - 1] != ' ')
			return 0;
		ne = i - 1;
	}
	if (i >= n || v[i] != '<')
		return 0;
	i++;
	a = plain_addr(v + i, n - i);
	if (!a || i + a + 1 != n || v[i + a] != '>')
		return 0;
	if (!(*addr = msg_dup_len(v + i, a)))
		return -1;
	if (ne > ns && !(*name = msg_dup_len(v + ns, ne - ns))) {
		free(*addr);
		*addr = NULL;
		return -1;
	}
	(void)quoted;
	return 1;
}

/* Parse one From/Sender value; when it holds a mailbox, fill
 * msg->from_addr/from_name (*found = 1). */
/* From/Sender: the plain shapes ("a@b", "Name <a@b>") are read here; any
 * other address (groups, comments, broken lists) returns 2, and the caller
 * hands the whole block to GMime, which decides such addresses in the
 * context of the whole message -- parsing the value alone can disagree. */
static int try_address(const struct field *f, struct message *msg, int *found)
{
	char *name, *addr;
	int r = plain_mailbox(f->value, f->value_len, &name, &addr);

	if (r < 0)
		return -1;
	if (r == 0)
		return 2;
	msg->from_addr = msg_address_lower_domain(addr);
	msg->from_name = msg_header_text(name);
	free(addr);
	free(name);
	*found = 1;
	return msg->from_addr && msg->from_name ? 0 : -1;
}

static int name_is(const struct field *f, int k)
{
	return f->name_len == strlen(field_names[k]) &&
	       strncasecmp(f->name, field_names[k], f->name_len) == 0;
}

/* The Message-ID from the last such field, or when that does not parse as
 * one, the first field's text between its angle brackets; NULL when out
 * of memory. */
static char *fast_message_id(GMimeParserOptions *opts, const struct field *last,
			     const struct field *first)
{
	char *raw = decoded(opts, last), *id, *out;

	if (!raw)
		return NULL;
	id = g_mime_utils_decode_message_id(raw);
	g_free(raw);
	if (id && *id) {
		out = msg_header_text(id);
	} else {
		char *r0, *dec = decoded(opts, first);
		const char *s;
		size_t l;
		if (!dec) {
			g_free(id);
			return NULL;
		}
		s = dec;
		s += strspn(s, " \t\r\n<");
		l = strcspn(s, ">\r\n");
		while (l && (s[l - 1] == ' ' || s[l - 1] == '\t'))
			l--;
		r0 = msg_dup_len(s, l);
		g_free(dec);
		out = r0 ? msg_header_text(r0) : NULL;
		free(r0);
	}
	g_free(id);
	return out;
}

/* msg's date from the Date field, when it parses; -1 when out of memory. */
static int fast_date(GMimeParserOptions *opts, const struct field *f,
		     struct message *msg)
{
	char *raw = decoded(opts, f);
	GDateTime *dt;

	if (!raw)
		return -1;
	dt = g_mime_utils_header_decode_date(raw);
	g_free(raw);
	if (dt) {
		msg->date = (time_t)g_date_time_to_unix(dt);
		msg->date_offset_min = (int)(g_date_time_get_utc_offset(dt) /
					     G_TIME_SPAN_MINUTE);
		msg->has_date = 1;
		g_date_time_unref(dt);
	}
	return 0;
}

int message_parse_headers_fast(struct message *msg, const char *data, size_t len,
			       struct ms_err *err)
{
	GMimeParserOptions *opts;
	struct field last[F_N], first_msgid = { NULL, 0, NULL, 0 };
	const char *p, *end;
	int have[F_N] = { 0 }, have_first_msgid = 0, rc = -1, mbx = 0;

	memset(msg, 0, sizeof(*msg));
	memset(last, 0, sizeof(last));
	if (len > FAST_MAX_INPUT)
		return err_set(err, MS_ERR_TOOBIG,
			       "message of %zu bytes exceeds the limit of %zu",
			       len, FAST_MAX_INPUT);
	if (!data)
		data = "", len = 0;
	opts = fast_options();
	{
		size_t block = msg_header_block_len(data, len);
		if (!clean_block(data, len, block))
			return gmime_fallback(msg, data, block, err);
		len = block;
	}
	end = data + len;

	/* every field (each turn consumes at least one line) */
	p = data;
	for (size_t i = 0; i <= len; i++) {
		struct field f;
		int r = next_field(&p, end, &f);
		if (r < 0)
			goto empty;
		if (r == 0)
			break;
		if (!f.name_len)
			continue;
		for (int k = 0; k < F_N; k++) {
			if (!name_is(&f, k))
				continue;
			/* the first mailbox of all From headers in order */
			if (k == F_FROM && !mbx &&
			    (r = try_address(&f, msg, &mbx)) != 0) {
				if (r < 0)
					goto nomem;
				goto whole;
			}
			if (k == F_MSGID && !have_first_msgid) {
				first_msgid = f;
				have_first_msgid = 1;
			}
			last[k] = f;
			have[k] = 1;
		}
	}
	/* else the first of all Sender headers */
	p = data;
	for (size_t i = 0; i <= len && !mbx && have[F_SENDER]; i++) {
		struct field f;
		int r = next_field(&p, end, &f);
		if (r <= 0)
			break;
		if (f.name_len && name_is(&f, F_SENDER) &&
		    (r = try_address(&f, msg, &mbx)) != 0) {
			if (r < 0)
				goto nomem;
			goto whole;
		}
	}

	/* Subject */
	if (have[F_SUBJECT]) {
		char *dec = decoded(opts, &last[F_SUBJECT]);
		if (!dec)
			goto nomem;
		msg->subject = msg_header_text(dec);
		g_free(dec);
	} else {
		msg->subject = strdup("");
	}
	if (!msg->subject)
		goto nomem;

	if (!mbx) {
		msg->from_addr = strdup("");
		msg->from_name = strdup("");
	}
	if (!msg->from_addr || !msg->from_name)
		goto nomem;

	/* Message-ID */
	if (have[F_MSGID])
		msg->message_id = fast_message_id(opts, &last[F_MSGID], &first_msgid);
	else
		msg->message_id = strdup("");
	if (!msg->message_id)
		goto nomem;

	/* Date */
	if (have[F_DATE] && fast_date(opts, &last[F_DATE], msg) < 0)
		goto nomem;
	rc = 0;
	goto done;
whole:
	message_release(msg);
	return gmime_fallback(msg, data, len, err);
empty:
	/* what message_parse() gives when GMime makes no message */
	message_release(msg);
	if (!(msg->subject = strdup("")) || !(msg->from_addr = strdup("")) ||
	    !(msg->from_name = strdup("")) || !(msg->message_id = strdup("")))
		goto nomem;
	rc = 0;
	goto done;
nomem:
	err_nomem(err);
	message_release(msg);
done:
	return rc;
}
