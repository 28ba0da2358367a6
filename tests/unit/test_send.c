/* test_send.c - the pure parts of send.h: addresses, composition, header
 * injection, RFC 2047, quoted-printable, Graph JSON, refusals that happen
 * before any connection. */
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "transport/send.h"
#include "transport/send_int.h"
#include "tap.h"

/* The header block (up to the blank line), unfolded, as separate lines. */
static size_t header_lines(const char *msg, char lines[][2048], size_t max)
{
	const char *end = strstr(msg, "\r\n\r\n");
	size_t n = 0;

	if (!end)
		return 0;
	for (const char *p = msg; p < end + 2;) {
		const char *e = strstr(p, "\r\n");
		size_t l = (size_t)(e - p);
		if (*p == ' ' || *p == '\t') {       /* continuation */
			if (n) {
				size_t cur = strlen(lines[n - 1]);
				if (cur + l < 2048) {
					memcpy(lines[n - 1] + cur, p, l);
					lines[n - 1][cur + l] = '\0';
				}
			}
		} else if (n < max) {
			if (l > 2047)
				l = 2047;
			memcpy(lines[n], p, l);
			lines[n][l] = '\0';
			n++;
		}
		p = e + 2;
	}
	return n;
}

static int count_headers(char lines[][2048], size_t n, const char *name)
{
	size_t nl = strlen(name);
	int c = 0;

	for (size_t i = 0; i < n; i++)
		if (strncasecmp(lines[i], name, nl) == 0 && lines[i][nl] == ':')
			c++;
	return c;
}

static const char *header_get(char lines[][2048], size_t n, const char *name)
{
	size_t nl = strlen(name);

	for (size_t i = 0; i < n; i++)
		if (strncasecmp(lines[i], name, nl) == 0 && lines[i][nl] == ':')
			return lines[i] + nl + 2;
	return NULL;
}

/* Decode "=?UTF-8?B?...?=" words separated by blanks. */
static int decode_words(const char *s, char *out, size_t outsz)
{
	size_t o = 0;

	while (*s) {
		const char *b, *e;
		unsigned char dec[256];
		int dl, pad = 0;
		while (*s == ' ')
			s++;
		if (!*s)
			break;
		if (strncmp(s, "=?UTF-8?B?", 10) != 0)
			return -1;
		b = s + 10;
		if (!(e = strstr(b, "?=")))
			return -1;
		dl = EVP_DecodeBlock(dec, (const unsigned char *)b, (int)(e - b));
		if (dl < 0)
			return -1;
		if (e - b >= 1 && e[-1] == '=')
			pad++;
		if (e - b >= 2 && e[-2] == '=')
			pad++;
		dl -= pad;
		if (o + (size_t)dl >= outsz)
			return -1;
		memcpy(out + o, dec, (size_t)dl);
		o += (size_t)dl;
		s = e + 2;
	}
	out[o] = '\0';
	return 0;
}

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decode a quoted-printable body with CRLF lines into out (LF-free,
 * CRLF kept). */
static int qp_decode(const char *s, char *out, size_t outsz)
{
	size_t o = 0;

	while (*s) {
		if (s[0] == '=' && s[1] == '\r' && s[2] == '\n') {
			s += 3;
			continue;
		}
		if (s[0] == '=') {
			int h = hexval(s[1]), l = hexval(s[2]);
			if (h < 0 || l < 0)
				return -1;
			if (o + 1 >= outsz)
				return -1;
			out[o++] = (char)(h * 16 + l);
			s += 3;
			continue;
		}
		if (o + 1 >= outsz)
			return -1;
		out[o++] = *s++;
	}
	out[o] = '\0';
	return 0;
}

/* Every line ends with CRLF, no bare CR or LF, and no line exceeds max. */
static int lines_ok(const char *msg, size_t max)
{
	size_t col = 0;

	for (const char *p = msg; *p; p++) {
		if (*p == '\r') {
			if (p[1] != '\n')
				return 0;
			p++;
			col = 0;
			continue;
		}
		if (*p == '\n')
			return 0;
		if (++col > max)
			return 0;
	}
	return col == 0;
}

static int compose(const struct send_message *m, struct buf *out, struct ms_err *err)
{
	buf_init(out, 0);
	err_clear(err);
	return send_compose(m, out, err);
}

static void test_addresses(void)
{
	static const char *good[] = { "alice@contoso.test", "a.b+tag@sub.example.com",
		"x@y", "o'brien@example.ie", "user_1-2@xn--bcher-kva.example" };
	static const char *bad[] = { "", "alice", "@contoso.test", "alice@", "a@b@c",
		"alice @contoso.test", "alice@contoso.test\r\nBcc: evil@x", "<alice@contoso.test>",
		"alice@contoso..test", "alice@.contoso.test", "alice@contoso.test.",
		"a,b@x", "a;b@x", "\"quoted\"@x", "a(b)@x", "a@[127.0.0.1]", "al\tice@x",
		"j\xc3\xb6rg@example.de", "a\\b@x", "a:b@x" };
	char longl[80], longa[300];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ok(send_address_valid(good[i]), "valid: %s", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(!send_address_valid(bad[i]), "invalid address %zu refused", i);
	ok(!send_address_valid(NULL), "NULL refused");
	memset(longl, 'a', 65);
	strcpy(longl + 65, "@x.test");
	ok(!send_address_valid(longl), "local part over 64 refused");
	memset(longa, 'b', 250);
	memcpy(longa, "a@", 2);
	strcpy(longa + 250, ".test");
	ok(!send_address_valid(longa), "address over 254 refused");
}

static void test_recipients(void)
{
	struct ms_err err = MS_ERR_INIT;
	char **v;
	size_t n;
	char big[4096];

	is_int(send_parse_recipients(" alice@contoso.test; bob@contoso.test ,carol@x.test;;",
				     &v, &n, &err), 0, "mixed separators parse");
	is_int(n, 3, "three recipients");
	if (n == 3) {
		is(v[0], "alice@contoso.test", "first trimmed");
		is(v[1], "bob@contoso.test", "second trimmed");
		is(v[2], "carol@x.test", "third");
	}
	send_free_recipients(v, n);

	err_clear(&err);
	is_int(send_parse_recipients("alice@contoso.test; evil@x\r\nBcc: z@x", &v, &n, &err), -1,
	       "CRLF in a recipient refused");
	ok(strstr(err.msg, "invalid recipient address 'evil@x??Bcc: z@x'") != NULL,
	   "error names the address with controls made visible: %s", err.msg);
	ok(v == NULL && n == 0, "nothing returned on failure");

	err_clear(&err);
	is_int(send_parse_recipients(" ; , ", &v, &n, &err), -1, "no recipient refused");
	is(err.msg, "no recipient address", "no recipient message");
	err_clear(&err);
	is_int(send_parse_recipients(NULL, &v, &n, &err), -1, "NULL list refused");

	big[0] = '\0';
	for (int i = 0; i < SEND_MAX_RECIPIENTS + 1; i++)
		snprintf(big + strlen(big), sizeof(big) - strlen(big), "u%d@x.test;", i);
	err_clear(&err);
	is_int(send_parse_recipients(big, &v, &n, &err), -1, "too many recipients refused");
	is_int(err.code, MS_ERR_DATA, "too many: data error");
}

static void test_neutralise(void)
{
	char *s;

	s = send_neutralise("x\r\nBcc: evil@x");
	is(s, "x Bcc: evil@x", "CRLF folded into one space");
	free(s);
	s = send_neutralise("\r\n  a\t\tb \n\r c\x01\x7f" "d  \r\n");
	is(s, "a b   c d", "controls folded, ends trimmed");
	free(s);
	s = send_neutralise("bad \xff\xfe utf8 \xc3\x28 \xed\xa0\x80 ok \xc3\xa9");
	is(s, "bad \xef\xbf\xbd\xef\xbf\xbd utf8 \xef\xbf\xbd( \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
	   " ok \xc3\xa9", "invalid UTF-8 replaced, valid kept");
	free(s);
	s = send_neutralise(NULL);
	is(s, "", "NULL -> empty");
	free(s);
}

static void test_date_and_id(void)
{
	char d[48], a[128], b[128];

	send_format_date(1795829734, d, sizeof(d));
	is(d, "Sat, 28 Nov 2026 01:35:34 +0000", "date in RFC 5322 form");
	send_format_date(1709251199, d, sizeof(d));
	is(d, "Thu, 29 Feb 2024 23:59:59 +0000", "leap day");
	send_make_message_id("alice@contoso.test", a, sizeof(a));
	send_make_message_id("alice@contoso.test", b, sizeof(b));
	ok(strcmp(a, b) != 0, "message ids are unique");
	ok(a[0] == '<' && a[strlen(a) - 1] == '>' && strstr(a, "@contoso.test>") &&
	   strlen(a) > 40, "message id shape: %s", a);
	send_make_message_id("not an address\r\n", a, sizeof(a));
	ok(strstr(a, "@mailshift>") != NULL, "bad from -> @mailshift: %s", a);
}

static void test_injection(void)
{
	static const struct send_header xh[] = {
		{ "X-Mailshift-Probe", "probe-123\r\nBcc: evil@x" } };
	struct send_message m = { 0 };
	struct ms_err err;
	struct buf out;
	char lines[64][2048];
	size_t n;

	m.from = "alice@contoso.test";
	m.from_name = "Alice\r\nBcc: evil2@x";
	m.to = "bob@contoso.test";
	m.subject = "x\r\nBcc: evil@x";
	m.body = "hello\r\n";
	m.headers = xh;
	m.n_headers = 1;
	is_int(compose(&m, &out, &err), 0, "compose with hostile subject, name, header value");
	n = header_lines(out.data, lines, 64);
	is_int(count_headers(lines, n, "Subject"), 1, "exactly one Subject header");
	is_int(count_headers(lines, n, "Bcc"), 0, "no Bcc header");
	is(header_get(lines, n, "Subject"), "x Bcc: evil@x", "subject neutralised");
	is(header_get(lines, n, "X-Mailshift-Probe"), "probe-123 Bcc: evil@x",
	   "extra header value neutralised");
	is(header_get(lines, n, "From"), "\"Alice Bcc: evil2@x\" <alice@contoso.test>",
	   "display name neutralised and quoted");
	ok(lines_ok(out.data, 998), "every line CRLF-terminated, <= 998");
	/* the header block ends at the first blank line: the body holds no
	 * header that a hostile value could have smuggled in */
	ok(strstr(out.data, "\r\n\r\nhello\r\n") != NULL, "body after the only blank line");
	buf_release(&out);

	/* hostile addresses are refused, not neutralised */
	m.from_name = NULL;
	m.n_headers = 0;
	m.subject = "s";
	m.from = "alice@contoso.test\r\nBcc: evil@x";
	is_int(compose(&m, &out, &err), -1, "CRLF in From refused");
	ok(strstr(err.msg, "invalid sender address") != NULL, "sender error: %s", err.msg);
	buf_release(&out);
	m.from = "alice@contoso.test";
	m.to = "bob@contoso.test\r\nBcc: evil@x";
	is_int(compose(&m, &out, &err), -1, "CRLF in To refused");
	buf_release(&out);
	m.to = "bob@contoso.test";

	/* extra header names: only X- tokens */
	{
		static const struct send_header h1[] = { { "Bcc", "evil@x" } };
		static const struct send_header h2[] = { { "X-A\r\nBcc", "v" } };
		static const struct send_header h3[] = { { "X-A: b", "v" } };
		const struct send_header *hs[] = { h1, h2, h3 };
		for (int i = 0; i < 3; i++) {
			m.headers = hs[i];
			m.n_headers = 1;
			is_int(compose(&m, &out, &err), -1, "bad extra header name %d refused", i);
			buf_release(&out);
		}
		m.n_headers = 0;
	}
	/* Message-ID supplied by the caller is checked too */
	m.message_id = "<a@b>\r\nBcc: evil@x";
	is_int(compose(&m, &out, &err), -1, "hostile Message-ID refused");
	buf_release(&out);
	m.message_id = "<probe-1@mailshift>";
	is_int(compose(&m, &out, &err), 0, "caller Message-ID accepted");
	n = header_lines(out.data, lines, 64);
	is(header_get(lines, n, "Message-ID"), "<probe-1@mailshift>", "caller Message-ID used");
	buf_release(&out);
}

static void test_headers(void)
{
	struct send_message m = { 0 };
	static const struct send_header xh[] = { { "X-Mailshift-Probe", "c0ffee-42" } };
	struct ms_err err;
	struct buf out;
	char lines[64][2048], dec[2048];
	size_t n;
	const char *subj = "B\xc3\xbcro: St\xc3\xb6rung \xe2\x9c\x93 im Rechenzentrum "
			   "\xe2\x80\x94 Auftrag 4711 l\xc3\xa4uft nicht \xf0\x9f\x98\x80 "
			   "und noch ein langer Teil damit gefaltet wird";
	char longsubj[600];

	m.from = "alice@contoso.test";
	m.from_name = "J\xc3\xb6rg M\xc3\xbcller";
	m.to = "bob@contoso.test; carol@contoso.test";
	m.subject = subj;
	m.body = "Hello\n";
	m.headers = xh;
	m.n_headers = 1;
	m.date = 1795829734;
	is_int(compose(&m, &out, &err), 0, "compose UTF-8 subject");
	ok(lines_ok(out.data, 78), "every line <= 78 with encoded words");
	{
		const char *hdr_end = strstr(out.data, "\r\n\r\n");
		int ascii = 1;
		for (const char *p = out.data; p < hdr_end; p++)
			if ((unsigned char)*p >= 0x80)
				ascii = 0;
		ok(ascii, "header block is pure ASCII");
	}
	n = header_lines(out.data, lines, 64);
	is(header_get(lines, n, "Date"), "Sat, 28 Nov 2026 01:35:34 +0000", "Date header");
	is(header_get(lines, n, "To"), "bob@contoso.test, carol@contoso.test", "To lists both");
	is(header_get(lines, n, "X-Mailshift-Probe"), "c0ffee-42", "probe header");
	is(header_get(lines, n, "MIME-Version"), "1.0", "MIME-Version");
	is(header_get(lines, n, "Content-Type"), "text/plain; charset=utf-8", "Content-Type");
	is(header_get(lines, n, "Content-Transfer-Encoding"), "7bit", "ASCII body is 7bit");
	is(header_get(lines, n, "Auto-Submitted"), "auto-generated", "Auto-Submitted");
	ok(header_get(lines, n, "Message-ID") && header_get(lines, n, "Message-ID")[0] == '<',
	   "Message-ID generated");
	is_int(decode_words(header_get(lines, n, "Subject"), dec, sizeof(dec)), 0,
	       "subject is RFC 2047 words");
	is(dec, subj, "subject decodes back to the original");
	{
		const char *f = header_get(lines, n, "From");
		const char *lt = f ? strstr(f, " <alice@contoso.test>") : NULL;
		char name[256] = "";
		if (lt && (size_t)(lt - f) < sizeof(name)) {
			memcpy(name, f, (size_t)(lt - f));
			name[lt - f] = '\0';
		}
		ok(lt != NULL, "From has the address: %s", f ? f : "(none)");
		is_int(decode_words(name, dec, sizeof(dec)), 0, "display name encoded");
		is(dec, "J\xc3\xb6rg M\xc3\xbcller", "display name decodes back");
	}
	buf_release(&out);

	/* long ASCII subject: folded at spaces, unfolds to the original */
	{
		size_t l = 0;
		for (int i = 0; l < 400; i++)
			l += (size_t)snprintf(longsubj + l, sizeof(longsubj) - l, "word%d ", i);
		longsubj[l - 1] = '\0';
	}
	m.subject = longsubj;
	m.from_name = NULL;
	is_int(compose(&m, &out, &err), 0, "compose long ASCII subject");
	ok(lines_ok(out.data, 78), "long subject folded to <= 78");
	n = header_lines(out.data, lines, 64);
	is(header_get(lines, n, "Subject"), longsubj, "long subject unfolds to the original");
	buf_release(&out);

	/* a subject that looks like an encoded word is encoded itself */
	m.subject = "=?UTF-8?B?ZXZpbA==?= literal";
	is_int(compose(&m, &out, &err), 0, "compose =? subject");
	n = header_lines(out.data, lines, 64);
	is_int(decode_words(header_get(lines, n, "Subject"), dec, sizeof(dec)), 0,
	       "=? subject encoded");
	is(dec, "=?UTF-8?B?ZXZpbA==?= literal", "=? subject round trips");
	buf_release(&out);

	/* one 1200-byte word cannot stay on one line: encoded and folded */
	{
		char word[1201];
		memset(word, 'x', 1200);
		word[1200] = '\0';
		m.subject = word;
		is_int(compose(&m, &out, &err), 0, "compose huge word subject");
		ok(lines_ok(out.data, 998), "huge word: every line <= 998");
		n = header_lines(out.data, lines, 64);
		is_int(decode_words(header_get(lines, n, "Subject"), dec, sizeof(dec)) == 0 &&
		       strlen(dec) == 1200, 1, "huge word round trips");
		buf_release(&out);
	}
	/* empty / NULL subject and body */
	m.subject = NULL;
	m.body = NULL;
	is_int(compose(&m, &out, &err), 0, "NULL subject and body");
	n = header_lines(out.data, lines, 64);
	is_int(count_headers(lines, n, "Subject"), 1, "Subject header still present");
	ok(lines_ok(out.data, 998), "NULL body message well formed");
	buf_release(&out);

	/* many recipients: To folded */
	m.to = "a1@contoso.test;a2@contoso.test;a3@contoso.test;a4@contoso.test;"
	       "a5@contoso.test;a6@contoso.test;a7@contoso.test";
	is_int(compose(&m, &out, &err), 0, "compose seven recipients");
	ok(lines_ok(out.data, 78), "To folded to <= 78");
	n = header_lines(out.data, lines, 64);
	is(header_get(lines, n, "To"), "a1@contoso.test, a2@contoso.test, a3@contoso.test, "
	   "a4@contoso.test, a5@contoso.test, a6@contoso.test, a7@contoso.test",
	   "To unfolds to the list");
	buf_release(&out);
}

static void test_body(void)
{
	struct send_message m = { 0 };
	struct ms_err err;
	struct buf out;
	char lines[64][2048], *dec;
	size_t n;
	const char *body;

	m.from = "alice@contoso.test";
	m.to = "bob@contoso.test";
	m.subject = "s";

	m.body = "line1\nline2\rline3\r\n.dot\n..two\n.\nend";
	is_int(compose(&m, &out, &err), 0, "compose mixed line ends");
	body = strstr(out.data, "\r\n\r\n") + 4;
	is(body, "line1\r\nline2\r\nline3\r\n.dot\r\n..two\r\n.\r\nend\r\n",
	   "CRLF everywhere, dots left to the transport (libcurl dot-stuffs)");
	buf_release(&out);

	m.body = "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln = 100%\n.leading dot\ntrailing space \n"
		 "bad \xff byte\n";
	is_int(compose(&m, &out, &err), 0, "compose UTF-8 body");
	n = header_lines(out.data, lines, 64);
	is(header_get(lines, n, "Content-Transfer-Encoding"), "quoted-printable", "UTF-8 -> QP");
	body = strstr(out.data, "\r\n\r\n") + 4;
	ok(lines_ok(body, 76), "QP lines <= 76");
	ok(strstr(body, "\r\n=2Eleading dot") != NULL, "leading dot encoded");
	ok(strstr(body, "trailing space=20\r\n") != NULL, "trailing space encoded");
	dec = malloc(4096);
	is_int(qp_decode(body, dec, 4096), 0, "QP decodes");
	is(dec, "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln = 100%\r\n.leading dot\r\ntrailing space \r\n"
	   "bad \xef\xbf\xbd byte\r\n", "QP round trip (invalid byte replaced)");
	buf_release(&out);

	{
		char *longb = malloc(3001);
		memset(longb, 'a', 3000);
		longb[1500] = '.';
		longb[3000] = '\0';
		m.body = longb;
		is_int(compose(&m, &out, &err), 0, "compose 3000-byte line");
		n = header_lines(out.data, lines, 64);
		is(header_get(lines, n, "Content-Transfer-Encoding"), "quoted-printable",
		   "long line -> QP");
		body = strstr(out.data, "\r\n\r\n") + 4;
		ok(lines_ok(body, 76), "long line soft-broken to <= 76");
		{
			int dot_start = 0;
			for (const char *p = body; (p = strstr(p, "\r\n.")); p++)
				dot_start = 1;
			ok(!dot_start && body[0] != '.', "no QP line starts with a dot");
		}
		qp_decode(body, dec, 4096);
		ok(strlen(dec) == 3002 && dec[1500] == '.' && !strncmp(dec + 3000, "\r\n", 2),
		   "long line round trips");
		buf_release(&out);
		free(longb);
	}
	free(dec);
}

static void test_graph_json(void)
{
	static const struct send_header xh[] = { { "X-Mailshift-Probe", "p-1\r\nx" } };
	struct send_message m = { 0 };
	struct ms_err err = MS_ERR_INIT;
	char *json = NULL;
	cJSON *root, *msg, *to, *h;

	m.from = "alice@contoso.test";
	m.to = "bob@contoso.test, carol@contoso.test";
	m.subject = "x\r\nBcc: evil@x \xe2\x9c\x93";
	m.body = "line1\nline2 \xc3\xa9";
	m.headers = xh;
	m.n_headers = 1;
	is_int(send_graph_json(&m, "alice@contoso.test", 0, &json, &err), 0, "graph JSON built");
	root = cJSON_Parse(json);
	ok(root != NULL, "graph JSON parses");
	msg = cJSON_GetObjectItem(root, "message");
	is(cJSON_GetStringValue(cJSON_GetObjectItem(msg, "subject")),
	   "x Bcc: evil@x \xe2\x9c\x93", "subject neutralised in JSON");
	is(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(msg, "body"),
						    "contentType")), "Text", "contentType Text");
	is(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(msg, "body"),
						    "content")), "line1\nline2 \xc3\xa9", "content kept");
	to = cJSON_GetObjectItem(msg, "toRecipients");
	is_int(cJSON_GetArraySize(to), 2, "two toRecipients");
	is(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(
		cJSON_GetArrayItem(to, 1), "emailAddress"), "address")), "carol@contoso.test",
	   "second recipient address");
	h = cJSON_GetArrayItem(cJSON_GetObjectItem(msg, "internetMessageHeaders"), 0);
	is(cJSON_GetStringValue(cJSON_GetObjectItem(h, "name")), "X-Mailshift-Probe", "header name");
	is(cJSON_GetStringValue(cJSON_GetObjectItem(h, "value")), "p-1 x", "header value neutralised");
	ok(cJSON_IsFalse(cJSON_GetObjectItem(root, "saveToSentItems")), "saveToSentItems false");
	ok(cJSON_GetObjectItem(msg, "from") == NULL, "no from when sender is the mailbox");
	cJSON_Delete(root);
	free(json);

	is_int(send_graph_json(&m, "svc@contoso.test", 1, &json, &err), 0, "send-as JSON");
	root = cJSON_Parse(json);
	msg = cJSON_GetObjectItem(root, "message");
	is(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(
		msg, "from"), "emailAddress"), "address")), "alice@contoso.test", "from added");
	ok(cJSON_IsTrue(cJSON_GetObjectItem(root, "saveToSentItems")), "saveToSentItems true");
	cJSON_Delete(root);
	free(json);

	m.to = "bob@contoso.test\nBcc: x@y";
	err_clear(&err);
	is_int(send_graph_json(&m, "alice@contoso.test", 0, &json, &err), -1,
	       "bad recipient refused for Graph too");
	ok(json == NULL, "no JSON on failure");
}

static int fake_token(void *ctx, int force, char **token, struct ms_err *err)
{
	(*(int *)ctx)++;
	*token = strdup("t0k3n-canary");
	return 0;
}

static void test_refusals(void)
{
	struct send_message m = { 0 };
	struct send_params p = { 0 };
	struct ms_err err = MS_ERR_INIT;
	int calls = 0;

	m.from = "alice@contoso.test";
	m.to = "bob@contoso.test";
	m.subject = "s";

	p.host = "127.0.0.1";
	p.port = 9;
	p.tls = SEND_TLS_NONE;
	is_int(send_mail(&p, &m, &err), -1, "plaintext without permission refused");
	is_int(err.code, MS_ERR_CONFIG, "plaintext: config error");
	ok(strstr(err.msg, "plaintext SMTP is not allowed") != NULL, "plaintext msg: %s", err.msg);

	err_clear(&err);
	p.allow_plaintext = 1;
	p.auth = SEND_AUTH_BASIC;
	p.user = "alice@contoso.test";
	p.password = "s3cret-canary";
	is_int(send_mail(&p, &m, &err), -1, "AUTH without TLS refused even when plaintext allowed");
	ok(strstr(err.msg, "refusing to log in without TLS") != NULL, "no-TLS login msg: %s",
	   err.msg);
	ok(!strstr(err.msg, "s3cret"), "password not in the message");

	err_clear(&err);
	p.tls = SEND_TLS_STARTTLS;
	p.auth = SEND_AUTH_XOAUTH2;
	is_int(send_mail(&p, &m, &err), -1, "XOAUTH2 without a token source refused");
	is_int(err.code, MS_ERR_CONFIG, "missing token source: config error");

	err_clear(&err);
	p.host = NULL;
	is_int(send_mail(&p, &m, &err), -1, "no host refused");

	err_clear(&err);
	p.transport = SEND_GRAPH;
	p.token_fn = NULL;
	is_int(send_mail(&p, &m, &err), -1, "Graph without a token source refused");

	err_clear(&err);
	p.token_fn = fake_token;
	p.token_ctx = &calls;
	p.user = "not-an-address";
	is_int(send_mail(&p, &m, &err), -1, "Graph with a bad mailbox refused");
	is_int(calls, 0, "no token requested for a bad mailbox");

	/* a port nobody listens on: network error, temporary */
	err_clear(&err);
	memset(&p, 0, sizeof(p));
	p.host = "127.0.0.1";
	p.port = 1;
	p.tls = SEND_TLS_IMPLICIT;
	p.connect_timeout_s = 3;
	is_int(send_mail(&p, &m, &err), -1, "closed port fails");
	ok(err_is_temporary(&err), "closed port is temporary: %s", err.msg);
	ok(strncmp(err.msg, "smtps://127.0.0.1:1: ", 21) == 0, "error names the server: %s",
	   err.msg);
}


/* ---- a scripted SMTP server on 127.0.0.1 (plaintext, no STARTTLS) ---- */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

struct fake {
	int lfd, port;
	const char *mode;        /* "ok", "mailrefuse", "rcptrefuse", "datarefuse", "greet421" */
	char transcript[65536];  /* client lines, CRLF kept */
	size_t tlen;
	char data[65536];        /* DATA payload as received (still dot-stuffed) */
	size_t dlen;
	int saw_auth, saw_starttls;
};

static void fsend(int fd, const char *s)
{
	size_t n = strlen(s);
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* Read one CRLF line into line (NUL-terminated, CRLF stripped); -1 at EOF. */
static int freadline(int fd, char *line, size_t max)
{
	size_t n = 0;
	char c;

	while (read(fd, &c, 1) == 1) {
		if (c == '\n') {
			if (n && line[n - 1] == '\r')
				n--;
			line[n] = '\0';
			return 0;
		}
		if (n + 1 < max)
			line[n++] = c;
	}
	return -1;
}

static void *fake_run(void *arg)
{
	struct fake *f = arg;
	struct timeval tv = { 10, 0 };
	char line[4096];
	int fd = accept(f->lfd, NULL, NULL);

	if (fd < 0)
		return NULL;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (!strcmp(f->mode, "greet421")) {
		fsend(fd, "421 4.3.2 Service shutting down, closing channel\r\n");
		close(fd);
		return NULL;
	}
	fsend(fd, "220 fake ESMTP\r\n");
	while (freadline(fd, line, sizeof(line)) == 0) {
		size_t l = strlen(line);
		if (f->tlen + l + 2 < sizeof(f->transcript)) {
			memcpy(f->transcript + f->tlen, line, l);
			memcpy(f->transcript + f->tlen + l, "\r\n", 2);
			f->tlen += l + 2;
			f->transcript[f->tlen] = '\0';
		}
		if (!strncasecmp(line, "EHLO", 4)) {
			fsend(fd, "250-fake\r\n250-AUTH PLAIN LOGIN XOAUTH2\r\n250-8BITMIME\r\n"
			      "250 ENHANCEDSTATUSCODES\r\n");
		} else if (!strncasecmp(line, "AUTH", 4)) {
			f->saw_auth = 1;
			fsend(fd, "535 5.7.8 Error: authentication failed\r\n");
		} else if (!strncasecmp(line, "STARTTLS", 8)) {
			f->saw_starttls = 1;
			fsend(fd, "454 4.7.0 TLS not available\r\n");
		} else if (!strncasecmp(line, "MAIL", 4)) {
			fsend(fd, !strcmp(f->mode, "mailrefuse") ?
			      "553 5.7.1 <bob@contoso.test>: Sender address rejected: not owned by "
			      "user alice@contoso.test\r\n" : "250 2.1.0 Ok\r\n");
		} else if (!strncasecmp(line, "RCPT", 4)) {
			fsend(fd, !strcmp(f->mode, "rcptrefuse") ?
			      "550 5.1.1 <nobody@contoso.test>: Recipient address rejected: User "
			      "unknown in virtual mailbox table\r\n" : "250 2.1.5 Ok\r\n");
		} else if (!strncasecmp(line, "DATA", 4)) {
			fsend(fd, "354 End data with <CR><LF>.<CR><LF>\r\n");
			while (freadline(fd, line, sizeof(line)) == 0) {
				size_t k = strlen(line);
				if (!strcmp(line, "."))
					break;
				if (f->dlen + k + 2 < sizeof(f->data)) {
					memcpy(f->data + f->dlen, line, k);
					memcpy(f->data + f->dlen + k, "\r\n", 2);
					f->dlen += k + 2;
					f->data[f->dlen] = '\0';
				}
			}
			fsend(fd, !strcmp(f->mode, "datarefuse") ?
			      "554-5.7.1 Message rejected\r\n554 5.7.1 Spam content detected\r\n" :
			      "250 2.0.0 Ok: queued as 1234\r\n");
		} else if (!strncasecmp(line, "QUIT", 4)) {
			fsend(fd, "221 2.0.0 Bye\r\n");
			break;
		} else {
			fsend(fd, "502 5.5.2 Error: command not recognized\r\n");
		}
	}
	close(fd);
	return NULL;
}

static int fake_start(struct fake *f, pthread_t *t, const char *mode)
{
	struct sockaddr_in a = { 0 };
	socklen_t al = sizeof(a);

	memset(f, 0, sizeof(*f));
	f->mode = mode;
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(f->lfd, 1) || getsockname(f->lfd, (struct sockaddr *)&a, &al))
		return -1;
	f->port = ntohs(a.sin_port);
	return pthread_create(t, NULL, fake_run, f);
}

static void fake_stop(struct fake *f, pthread_t t)
{
	pthread_join(t, NULL);
	close(f->lfd);
}

static void test_scripted(void)
{
	static struct fake f;
	struct send_message m = { 0 };
	struct send_params p = { 0 };
	struct ms_err err;
	pthread_t t;

	m.from = "alice@contoso.test";
	m.to = "bob@contoso.test";
	m.subject = "scripted";
	m.body = ".starts with a dot\n.\n..two dots\nend\n";

	/* 1. STARTTLS required, server does not offer it: no AUTH, no MAIL */
	if (fake_start(&f, &t, "ok")) {
		ok(0, "fake server starts");
		return;
	}
	p.host = "127.0.0.1";
	p.port = f.port;
	p.tls = SEND_TLS_STARTTLS;
	p.auth = SEND_AUTH_BASIC;
	p.user = "alice@contoso.test";
	p.password = "Pw-canary-123";
	p.timeout_s = 10;
	err_clear(&err);
	is_int(send_mail(&p, &m, &err), -1, "no STARTTLS offered: refused");
	fake_stop(&f, t);
	is_int(err.code, MS_ERR_TLS, "no STARTTLS: TLS error");
	ok(strstr(err.msg, "does not offer STARTTLS") != NULL, "message says why: %s", err.msg);
	is_int(f.saw_auth, 0, "AUTH never sent before TLS");
	ok(!strstr(f.transcript, "MAIL") && !strstr(f.transcript, "AUTH"),
	   "nothing but EHLO (and QUIT) went out");
	ok(!strstr(f.transcript, "Pw-canary") && !strstr(f.transcript, "UHctY2FuYXJ5"),
	   "the password never went out in any form");

	/* 2. plaintext explicitly allowed, no AUTH: delivered, dots stuffed */
	fake_start(&f, &t, "ok");
	p.port = f.port;
	p.tls = SEND_TLS_NONE;
	p.allow_plaintext = 1;
	p.auth = SEND_AUTH_NONE;
	p.helo_name = "probe.contoso.test";
	err_clear(&err);
	is_int(send_mail(&p, &m, &err), 0, "plaintext send without AUTH: %s", err.msg);
	fake_stop(&f, t);
	ok(strstr(f.transcript, "EHLO probe.contoso.test\r\n") != NULL, "EHLO uses helo_name");
	ok(strstr(f.transcript, "MAIL FROM:<alice@contoso.test>") != NULL, "envelope sender");
	ok(strstr(f.transcript, "RCPT TO:<bob@contoso.test>") != NULL, "envelope recipient");
	ok(strstr(f.data, "\r\n\r\n..starts with a dot\r\n..\r\n...two dots\r\nend\r\n") != NULL,
	   "libcurl dot-stuffs every leading dot (first body line included)");
	is_int(f.saw_starttls, 0, "no STARTTLS attempted when plaintext is chosen");

	/* 3. refusals keep the server's text and name the stage */
	fake_start(&f, &t, "mailrefuse");
	p.port = f.port;
	m.from = "bob@contoso.test";
	err_clear(&err);
	is_int(send_mail(&p, &m, &err), -1, "sender refused");
	fake_stop(&f, t);
	{
		char want[256];
		snprintf(want, sizeof(want), "smtp://127.0.0.1:%d: sender refused: 553 5.7.1 "
			 "<bob@contoso.test>: Sender address rejected: not owned by user "
			 "alice@contoso.test", f.port);
		is(err.msg, want, "sender refusal message");
	}
	is_int(err.code, MS_ERR_AUTH, "5.7.1 sender refusal is a permission error");
	m.from = "alice@contoso.test";

	fake_start(&f, &t, "rcptrefuse");
	p.port = f.port;
	err_clear(&err);
	is_int(send_mail(&p, &m, &err), -1, "recipient refused");
	fake_stop(&f, t);
	ok(strstr(err.msg, ": recipient refused: 550 5.1.1 <nobody@contoso.test>: Recipient "
		  "address rejected: User unknown in virtual mailbox table") != NULL,
	   "recipient refusal message: %s", err.msg);
	is_int(err.code, MS_ERR_PROTO, "unknown recipient is permanent");

	fake_start(&f, &t, "datarefuse");
	p.port = f.port;
	err_clear(&err);
	is_int(send_mail(&p, &m, &err), -1, "message refused");
	fake_stop(&f, t);
	ok(strstr(err.msg, ": message refused: 554 5.7.1 Spam content detected") != NULL,
	   "final line of a multi-line reply kept: %s", err.msg);

	fake_start(&f, &t, "greet421");
	p.port = f.port;
	err_clear(&err);
	is_int(send_mail(&p, &m, &err), -1, "421 greeting");
	fake_stop(&f, t);
	ok(err_is_temporary(&err), "421 at the greeting is temporary: %s", err.msg);
	ok(strstr(err.msg, "421 4.3.2") != NULL, "421 reply kept");
}

/* ---- the SMTP trace: what the libcurl debug callback keeps ---- */

static char trace_log[8192];

static void trace_collect(enum log_level level, const char *msg, void *ctx)
{
	size_t n = strlen(trace_log);

	(void)level;
	(void)ctx;
	snprintf(trace_log + n, sizeof(trace_log) - n, "%s\n", msg);
}

static void in(struct send_trace *t, const char *s)
{
	send_trace_chunk(t, 0, s, strlen(s));
}

static void out(struct send_trace *t, const char *s)
{
	send_trace_chunk(t, 1, s, strlen(s));
}

static void test_trace_replies(void)
{
	struct send_trace t;
	char line[700];

	send_trace_init(&t, 0);
	is(t.reply, "", "no reply yet");
	in(&t, "220 mx.contoso.test ESMTP\r\n");
	is(t.reply, "220 mx.contoso.test ESMTP", "greeting kept without CRLF");
	in(&t, "250-mx.contoso.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n");
	is(t.reply, "250 8BITMIME", "the last line of a chunk wins");
	in(&t, "550 5.1.1 no such user\n45");
	is(t.reply, "550 5.1.1 no such user", "LF ends a line; under 3 bytes is ignored");
	in(&t, "451 4.3.0 try\tlater\x1b[31m\r\n");
	is(t.reply, "451 4.3.0 try?later?[31m", "control characters become '?'");
	send_trace_chunk(&t, 0, "421 4.4.2 gone\0 hidden\r\n", 23);
	is(t.reply, "421 4.4.2 gone", "a NUL ends the line's text");
	in(&t, "554 5.7.1 r\xc3\xa9" "fus\xe9 \xed\xa0\x80 \xf0\x9f\x98\x80\r\n");
	is(t.reply, "554 5.7.1 r\xc3\xa9" "fus? ??? \xf0\x9f\x98\x80",
	   "invalid UTF-8 becomes '?', valid UTF-8 stays");

	/* a long line is cut, never inside a character */
	memset(line, 'a', sizeof(line));
	memcpy(line + 510, "\xc3\xa9\r\n", 5);
	in(&t, line);
	is_int(strlen(t.reply), 510, "a character that does not fit is left out");
	ok(t.reply[509] == 'a', "the cut is before it");
	memcpy(line + 509, "\xc3\xa9" "b\r\n", 6);
	send_trace_line_in(&t, line);
	is_int(strlen(t.reply), 511, "one that fits is kept");
	ok(!memcmp(t.reply + 509, "\xc3\xa9", 2), "whole");
	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	in(&t, line);
	is_int(strlen(t.reply), SEND_REPLY_MAX - 1, "a 699-byte line is cut to %d",
	       SEND_REPLY_MAX - 1);

	/* verbs of our commands */
	out(&t, "MAIL FROM:<a@contoso.test>\r\n");
	is(t.cmd, "MAIL", "MAIL kept");
	out(&t, "rcpt to:<b@contoso.test>\r\n");
	is(t.cmd, "RCPT", "verbs are upper-cased");
	out(&t, "X-UNKNOWN thing\r\n");
	is(t.cmd, "RCPT", "an unknown line changes nothing");
	out(&t, "QUIT\r\n");
	ok(t.quitting, "QUIT seen");
	is(t.cmd, "RCPT", "QUIT is not a stage");
	in(&t, "421 4.4.2 bye\r\n");
	ok(t.reply[0] == 'x' && strlen(t.reply) == SEND_REPLY_MAX - 1,
	   "a reply after QUIT is not kept");
}

/* base64 of s into out */
static void b64(const char *s, size_t n, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
}

static void test_trace_challenges(void)
{
	static const char json[] =
		"{\"status\":\"401\",\"schemes\":\"bearer\",\"scope\":\"https://outlook.office.com/.default\"}";
	struct send_trace t;
	char enc[1200], line[1300], big[900];

	send_trace_init(&t, 0);
	b64(json, strlen(json), enc);
	snprintf(line, sizeof(line), "334 %s\r\n", enc);
	in(&t, line);
	ok(!strncmp(t.reply, "334 {\"status\":\"401\"", 19) &&
	   !strcmp(t.reply + 4, json), "an XOAUTH2 JSON status is decoded: %s", t.reply);
	in(&t, "334 VXNlcm5hbWU6\r\n");
	is(t.reply, "334", "a LOGIN prompt is hidden");
	in(&t, "334 UGFzc3dvcmQ6   \r\n");
	is(t.reply, "334", "with trailing blanks too");
	in(&t, "334\r\n");
	is(t.reply, "334", "an empty challenge");
	in(&t, "334-eyJzdGF0dXMiOiI0MDEifQ==\r\n");
	is(t.reply, "334 {\"status\":\"401\"}", "334- is a challenge too");
	in(&t, "334 not base64 at all!\r\n");
	is(t.reply, "334", "junk is hidden");
	b64("{\"a\":\"\x01\x02\xff\"}", 11, enc);
	snprintf(line, sizeof(line), "334 %s\r\n", enc);
	in(&t, line);
	is(t.reply, "334 {\"a\":\"???\"}", "decoded JSON made printable: %s", t.reply);
	memset(big, 'A', sizeof(big));
	big[0] = '{';
	b64(big, 600, enc);
	snprintf(line, sizeof(line), "334 %s", enc);
	send_trace_line_in(&t, line);
	is(t.reply, "334", "a challenge too long to decode is hidden");
	in(&t, "3345 five digits\r\n");
	is(t.reply, "3345 five digits", "only 334 is a challenge");
}

static void test_trace_credentials(void)
{
	static const char *const shapes[] = { "RSET", "quit", "DATA", "MAIL FROM:<x>",
					      "AUTH PLAIN Zm9v", "cGFzc3dvcmQ=" };
	struct send_trace t;
	char blob[128], line[300];
	size_t i;

	log_set_sink(trace_collect, NULL, LOG_LVL_TRACE);
	for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		trace_log[0] = '\0';
		send_trace_init(&t, 1);
		out(&t, "EHLO client\r\n");
		in(&t, "250 mx\r\n");
		b64("\0alice\0S3cr3t-canary", 20, blob);
		snprintf(line, sizeof(line), "AUTH LOGIN %s\r\n", blob);
		out(&t, line);
		is(t.cmd, "AUTH", "AUTH kept as the stage");
		in(&t, "334 UGFzc3dvcmQ6\r\n");
		/* a credential shaped like a command */
		snprintf(line, sizeof(line), "%s\r\n", shapes[i]);
		out(&t, line);
		ok(!strcmp(t.cmd, "AUTH") && !t.quitting,
		   "a credential '%s' is not taken for a command", shapes[i]);
		in(&t, "535 5.7.8 authentication failed\r\n");
		is(t.reply, "535 5.7.8 authentication failed", "the refusal is kept");
		out(&t, "QUIT\r\n");
		ok(t.quitting, "QUIT after the exchange is one");
		in(&t, "221 2.0.0 bye\r\n");
		is(t.reply, "535 5.7.8 authentication failed", "and its reply is not kept");
		ok(!strstr(trace_log, blob) && !strstr(trace_log, shapes[i]) &&
		   !strstr(trace_log, "UGFzc3dvcmQ6"),
		   "credentials and the challenge stay out of the log");
		ok(strstr(trace_log, "smtp > AUTH LOGIN [credentials hidden]\n") &&
		   strstr(trace_log, "smtp > [credentials hidden]\n") &&
		   strstr(trace_log, "smtp < 334 [challenge hidden]\n") &&
		   strstr(trace_log, "smtp < 535 5.7.8 authentication failed\n") &&
		   strstr(trace_log, "smtp > QUIT\n"),
		   "the log shows the exchange");
	}
	/* SASL-IR answered at once: commands afterwards count again */
	send_trace_init(&t, 1);
	out(&t, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
	in(&t, "235 2.7.0 ok\r\n");
	out(&t, "MAIL FROM:<a@contoso.test>\r\n");
	is(t.cmd, "MAIL", "after 235 the next line is a command");
	log_set_sink(NULL, NULL, LOG_LVL_WARN);
}

int main(void)
{
	test_addresses();
	test_recipients();
	test_neutralise();
	test_date_and_id();
	test_injection();
	test_headers();
	test_body();
	test_graph_json();
	test_refusals();
	test_scripted();
	test_trace_replies();
	test_trace_challenges();
	test_trace_credentials();
	return done_testing();
}
