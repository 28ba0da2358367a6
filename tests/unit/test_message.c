/*
 * test_message.c - MIME parsing against the crafted mails in
 * tests/data/mime/ (run from the top of the tree).
 */
#include "mail/message.h"
#include "base/buf.h"
#include "base/fsutil.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

static int load(struct message *m, const char *name, int headers_only)
{
	struct ms_err err = MS_ERR_INIT;
	char path[512], *data = NULL;
	size_t len = 0;
	int rc;

	snprintf(path, sizeof(path), "tests/data/mime/%s", name);
	if (fs_read_file(path, (size_t)64 << 20, &data, &len, &err)) {
		printf("# cannot read %s: %s\n", path, err.msg);
		memset(m, 0, sizeof(*m));
		return -1;
	}
	rc = message_parse(m, data, len, headers_only, 1, &err);
	if (rc)
		printf("# parse %s: %s\n", name, err.msg);
	free(data);
	return rc;
}

static int has_line(const struct message *m, const char *s)
{
	size_t i;

	for (i = 0; i < m->n_body_lines; i++)
		if (strcmp(m->body_lines[i], s) == 0)
			return 1;
	return 0;
}

static const struct message_attachment *att(const struct message *m,
					    const char *name)
{
	size_t i;

	for (i = 0; i < m->n_attachments; i++)
		if (strcmp(m->attachments[i].name, name) == 0)
			return &m->attachments[i];
	return NULL;
}

static void test_plain(void)
{
	struct message m;

	ok(load(&m, "plain.eml", 0) == 0, "plain: parses");
	is(m.subject, "JOB COMPLETE: PAYROLL 42", "plain: subject");
	is(m.from_addr, "Jobs.Bot@example.com", "plain: domain lowercased, local part kept");
	is(m.from_name, "Job Bot", "plain: display name");
	is(m.message_id, "abc.123@example.com", "plain: Message-ID without <>");
	ok(m.has_date, "plain: has date");
	/* Tue, 03 Nov 2026 14:05:09 -0500 = 19:05:09 UTC */
	is_int(m.date, 1793732709, "plain: date in UTC");
	is_int(m.date_offset_min, -300, "plain: zone offset");
	ok(m.has_body, "plain: has_body");
	is_int(m.n_body_lines, 5, "plain: blank lines dropped");
	is(m.body_lines[1], "   Job: PAYROLL status=OK",
	   "plain: leading blanks kept, trailing blanks dropped");
	ok(has_line(&m, "Job: BILLING status=FAILED"), "plain: CRLF stripped");
	is_int(m.n_attachments, 0, "plain: no attachment");
	message_release(&m);

	ok(load(&m, "plain.eml", 1) == 0, "headers only: parses");
	is(m.subject, "JOB COMPLETE: PAYROLL 42", "headers only: subject");
	ok(!m.has_body && m.n_body_lines == 0, "headers only: no body");
	message_release(&m);
}

static void test_charsets(void)
{
	struct message m;

	ok(load(&m, "cp1252-subject.eml", 0) == 0, "cp1252: parses");
	is(m.subject, "Rechnung f\xc3\xbcr M\xc3\xa4rz \xe2\x80\x93 \xe2\x82\xac 100",
	   "cp1252: Q-encoded subject with en dash and euro");
	is(m.from_name, "Ren\xc3\xa9 M\xc3\xbcller", "cp1252: encoded display name");
	is(m.body_lines[0], "Gr\xc3\xbc\xc3\x9f" "e \xe2\x80\x93 Betrag \xe2\x82\xac 100",
	   "cp1252: quoted-printable body converted");
	is_int(m.date_offset_min, 60, "cp1252: +0100");
	message_release(&m);

	ok(load(&m, "utf8-b-subject.eml", 0) == 0, "utf-8 B: parses");
	is(m.subject, "Bericht: Gr\xc3\xb6\xc3\x9f" "e \xe6\x9d\xb1\xe4\xba\xac OK",
	   "utf-8 B: subject");
	message_release(&m);

	ok(load(&m, "raw-8bit-subject.eml", 0) == 0, "raw 8-bit: parses");
	is(m.subject, "Caf\xc3\xa9 \xe2\x82\xac r\xc3\xa9sum\xc3\xa9",
	   "raw 8-bit subject read as windows-1252");
	message_release(&m);

	ok(load(&m, "broken-charset-subject.eml", 0) == 0,
	   "unknown charset and broken encoded word: parses");
	ok(strncmp(m.subject, "Hello W", 7) == 0,
	   "unknown charset: subject still decoded (%s)", m.subject);
	is(m.body_lines[0], "Gr\xc3\xbc\xc3\x9f" "e", "bogus body charset: latin1 fallback");
	message_release(&m);

	ok(load(&m, "no-subject.eml", 0) == 0, "no subject: parses");
	is(m.subject, "", "no subject: empty string");
	is(m.message_id, "nosubj@example.com", "no subject: message id");
	message_release(&m);
}

static void test_html(void)
{
	struct message m;

	ok(load(&m, "html-only.eml", 0) == 0, "html: parses");
	ok(has_line(&m, "Job: ALPHA & co"), "html: <p> line, &amp; decoded");
	ok(has_line(&m, "Job: BETA"), "html: <div> line, &nbsp; as blank");
	ok(has_line(&m, "line one") && has_line(&m, "line two"), "html: <br> breaks");
	ok(has_line(&m, "Job: GAMMA"), "html: table row on one line");
	ok(has_line(&m, "x < y \xc3\xa9"), "html: &lt; and &#233; decoded");
	ok(!has_line(&m, "Title text"), "html: <title> dropped");
	{
		size_t i;
		int leak = 0;
		for (i = 0; i < m.n_body_lines; i++)
			if (strstr(m.body_lines[i], "EVIL") ||
			    strstr(m.body_lines[i], "color"))
				leak = 1;
		ok(!leak, "html: script and style dropped");
	}
	message_release(&m);

	ok(load(&m, "alternative.eml", 0) == 0, "alternative: parses");
	is_int(m.n_body_lines, 1, "alternative: only the text/plain copy gives lines");
	is(m.body_lines[0], "Job: PLAIN1", "alternative: line");
	message_release(&m);
}

static void test_attachments(void)
{
	const struct message_attachment *a;
	struct message m;

	ok(load(&m, "attachments.eml", 0) == 0, "attachments: parses");
	is_int(m.n_attachments, 7, "attachments: all seven found");
	ok(has_line(&m, "See attached"), "attachments: body text from nested alternative");
	is_int(m.n_body_lines, 1, "attachments: attachments are not body text");
	a = att(&m, "logo.png");
	ok(a && a->is_inline, "inline image with a name counts, marked inline");
	ok(a && a->size == 15 && a->data && memcmp(a->data, "\x89PNG", 4) == 0,
	   "inline image decoded from base64");
	a = att(&m, "Rechnung M\xc3\xa4rz 2026.pdf");
	ok(a && !a->is_inline && strcmp(a->content_type, "application/pdf") == 0,
	   "RFC 2231 filename*= decoded");
	ok(a && a->size == 17 && memcmp(a->data, "%PDF", 4) == 0, "pdf data");
	ok(att(&m, "d\xc3\xa9tail.csv") != NULL,
	   "Content-Type name= RFC 2047 encoded, no disposition");
	ok(att(&m, "part one_two.txt") != NULL, "RFC 2231 continuation");
	ok(att(&m, "../../etc/passwd") != NULL, "name with '/' kept as written");
	ok(att(&m, "..\\..\\evil/name.exe") != NULL, "name with '..\\' kept as written");
	a = att(&m, "forwarded.eml");
	ok(a && strcmp(a->content_type, "message/rfc822") == 0 && a->size > 0,
	   "attached message is one attachment");
	ok(!has_line(&m, "Job: INNER"), "attached message body is not our body");
	message_release(&m);

	{
		char *s;
		s = message_attachment_safe_name("../../etc/passwd");
		is(s, "_.._etc_passwd", "safe name: no path");
		free(s);
		s = message_attachment_safe_name("..\\..\\evil/name.exe");
		is(s, "_.._evil_name.exe", "safe name: no backslash path");
		free(s);
		s = message_attachment_safe_name("a\r\nb:c.txt. ");
		is(s, "a__b_c.txt", "safe name: controls, colon, trailing dot");
		free(s);
		s = message_attachment_safe_name("...");
		is(s, "attachment", "safe name: nothing left");
		free(s);
		s = message_attachment_safe_name("nul.txt");
		is(s, "_nul.txt", "safe name: a Windows device name with an extension");
		free(s);
		s = message_attachment_safe_name("COM1");
		is(s, "_COM1", "safe name: a bare Windows device name");
		free(s);
		s = message_attachment_safe_name("console.log");
		is(s, "console.log", "safe name: a name that only starts like a device");
		free(s);
		{
			/* fuzz_message: the 200-byte cut may end on a blank */
			char lng[256];
			memset(lng, 'a', 199);
			strcpy(lng + 199, " tail.csv");
			s = message_attachment_safe_name(lng);
			ok(s && strlen(s) == 199 && s[198] == 'a',
			   "safe name: cut at 200 bytes, then the trailing blank goes");
			free(s);
		}
	}
}

static void test_broken(void)
{
	struct message m;

	ok(load(&m, "broken-mime.eml", 0) == 0, "broken MIME: parses");
	ok(has_line(&m, "Job: STILL_READ"), "broken MIME: first part read");
	ok(has_line(&m, "Job: TAIL_WITHOUT_END"), "broken MIME: part without closing boundary read");
	ok(att(&m, "bad.pdf") != NULL, "broken MIME: bad base64 attachment kept");
	message_release(&m);

	ok(load(&m, "multipart-no-boundary.eml", 0) == 0, "no boundary: parses");
	ok(has_line(&m, "Job: WHATEVER"), "no boundary: text kept");
	message_release(&m);

	ok(load(&m, "many-lines.eml", 0) == 0, "many lines: parses");
	is_int(m.n_body_lines, 10000, "many lines: capped at 10,000");
	message_release(&m);

	{
		struct ms_err err = MS_ERR_INIT;
		ok(message_parse(&m, "", 0, 0, 0, &err) == 0, "empty input parses");
		is(m.subject, "", "empty input: empty subject");
		message_release(&m);
		ok(message_parse(&m, "garbage\x01\xff\n\n\xfe", 12, 0, 0, &err) == 0,
		   "garbage parses");
		message_release(&m);
		ok(message_parse(&m, "x", ((size_t)64 << 20) + 1, 0, 0, &err) == -1 &&
		   err.code == MS_ERR_TOOBIG, "over 64 MB refused before reading");
	}
}

static void test_dates(void)
{
	struct message m;

	ok(load(&m, "date-east.eml", 0) == 0 && m.has_date, "+1400 parses");
	/* 08:00 +1400 on 5 Nov = 18:00 UTC on 4 Nov */
	is_int(m.date, 1793815200, "+1400: UTC");
	is_int(m.date_offset_min, 840, "+1400: offset");
	message_release(&m);
	ok(load(&m, "date-west.eml", 0) == 0 && m.has_date, "-1200 parses");
	is_int(m.date, 1793908800, "-1200: UTC");
	is_int(m.date_offset_min, -720, "-1200: offset");
	message_release(&m);
	ok(load(&m, "date-est.eml", 0) == 0 && m.has_date, "EST parses");
	is_int(m.date, 1793883600, "EST: UTC");
	is_int(m.date_offset_min, -300, "EST: offset");
	message_release(&m);
	ok(load(&m, "date-gmt.eml", 0) == 0 && m.has_date, "GMT without seconds/day parses");
	is_int(m.date, 1793865600, "GMT: UTC");
	message_release(&m);
	ok(load(&m, "date-invalid.eml", 0) == 0, "invalid date: parses");
	ok(!m.has_date && m.date == 0, "invalid date: has_date=0");
	message_release(&m);
	ok(load(&m, "date-missing.eml", 0) == 0, "missing date: parses");
	ok(!m.has_date, "missing date: has_date=0");
	message_release(&m);
}

static int utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (!s)
		return 0;
	while (*p) {
		size_t n, i;
		if (*p < 0x80) { p++; continue; }
		if (*p >= 0xC2 && *p <= 0xDF) n = 2;
		else if (*p >= 0xE0 && *p <= 0xEF) n = 3;
		else if (*p >= 0xF0 && *p <= 0xF4) n = 4;
		else return 0;
		for (i = 1; i < n; i++)
			if ((p[i] & 0xC0) != 0x80)
				return 0;
		p += n;
	}
	return 1;
}

static int message_sane(const struct message *m)
{
	size_t i;

	if (!utf8_ok(m->subject) || !utf8_ok(m->from_addr) ||
	    !utf8_ok(m->from_name) || !utf8_ok(m->message_id))
		return 0;
	if (m->n_body_lines > 10000 || m->n_attachments > 1000)
		return 0;
	for (i = 0; i < m->n_body_lines; i++)
		if (!utf8_ok(m->body_lines[i]) || strchr(m->body_lines[i], '\n'))
			return 0;
	for (i = 0; i < m->n_attachments; i++)
		if (!utf8_ok(m->attachments[i].name) ||
		    !utf8_ok(m->attachments[i].content_type))
			return 0;
	return 1;
}

/* Every crafted mail, damaged in many deterministic ways (bytes flipped,
 * truncated, lines duplicated): parsing never fails and always yields
 * valid UTF-8 within the caps.  Run under ASan this is a small fuzz. */
static void test_mutations(void)
{
	static const char *files[] = {
		"plain.eml", "cp1252-subject.eml", "utf8-b-subject.eml",
		"html-only.eml", "alternative.eml", "attachments.eml",
		"broken-mime.eml", "hostile-subject.eml", "date-east.eml",
	};
	static const char junk[] = "\0\r\n=?\"<>;:,/\\--*'%\x80\xff\xc3&#;";
	unsigned seed = 12345;
	size_t f, bad = 0, runs = 0;
	int mutations = getenv("MS_MUTATIONS") ? atoi(getenv("MS_MUTATIONS")) : 150;

	for (f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		struct ms_err err = MS_ERR_INIT;
		char path[256], *data = NULL, *mut;
		size_t len = 0, k;
		int i;

		snprintf(path, sizeof(path), "tests/data/mime/%s", files[f]);
		if (fs_read_file(path, 1 << 20, &data, &len, &err)) {
			bad++;
			continue;
		}
		mut = malloc(len * 2 + 1);
		for (i = 0; i < mutations; i++) {
			struct message m;
			size_t mlen = len, flips;
			memcpy(mut, data, len);
			seed = seed * 1103515245u + 12345u;
			flips = 1 + (seed >> 16) % 12;
			for (k = 0; k < flips; k++) {
				seed = seed * 1103515245u + 12345u;
				mut[(seed >> 8) % mlen] = junk[(seed >> 20) % (sizeof(junk) - 1)];
			}
			seed = seed * 1103515245u + 12345u;
			if (i % 3 == 1)
				mlen = (seed >> 8) % len;          /* truncated */
			else if (i % 3 == 2) {                     /* a slice doubled */
				size_t a = (seed >> 8) % len, n = len - a;
				memcpy(mut + len, mut + a, n);
				mlen = len + n;
			}
			err_clear(&err);
			runs++;
			if (message_parse(&m, mut, mlen, i % 5 == 0, i & 1, &err) ||
			    !message_sane(&m))
				bad++;
			message_release(&m);
		}
		free(mut);
		free(data);
	}
	is_int(bad, 0, "%zu damaged mails parsed, all sane", runs);
}

/* Generated pathological mails: deep multipart nesting, deep HTML. */
static void test_deep(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct message m;
	struct buf b;
	int i;

	buf_init(&b, 0);
	buf_appends(&b, "From: a@example.com\nSubject: deep\n", &err);
	for (i = 0; i < 200; i++)
		buf_appendf(&b, &err, "Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\n", i, i);
	buf_appends(&b, "Content-Type: text/plain\n\nJob: DEEP\n", &err);
	ok(err.code == MS_OK && message_parse(&m, b.data, b.len, 0, 0, &err) == 0,
	   "200 nested multiparts parse");
	ok(m.n_body_lines == 0, "nesting beyond the depth cap is not read");
	message_release(&m);
	buf_reset(&b);

	buf_appends(&b, "From: a@example.com\nSubject: deep html\n"
		    "Content-Type: text/html\n\n<p>Job: TOP</p>", &err);
	for (i = 0; i < 20000; i++)
		buf_appends(&b, "<div><b>", &err);
	buf_appends(&b, "Job: BOTTOM", &err);
	ok(err.code == MS_OK && message_parse(&m, b.data, b.len, 0, 0, &err) == 0,
	   "20,000 nested HTML elements parse");
	ok(m.n_body_lines >= 1 && strcmp(m.body_lines[0], "Job: TOP") == 0,
	   "deep HTML: the shallow text is read");
	message_release(&m);
	buf_reset(&b);

	buf_appends(&b, "From: a@example.com\nSubject: many parts\n"
		    "Content-Type: multipart/mixed; boundary=\"X\"\n\n", &err);
	for (i = 0; i < 1500; i++)
		buf_appendf(&b, &err, "--X\nContent-Type: application/octet-stream; name=\"f%d.bin\"\n\nx\n", i);
	buf_appends(&b, "--X--\n", &err);
	ok(err.code == MS_OK && message_parse(&m, b.data, b.len, 0, 1, &err) == 0,
	   "1,500 attachments parse");
	is_int(m.n_attachments, 1000, "attachments capped at 1,000");
	is(m.attachments[999].name, "f999.bin", "the first 1,000 kept");
	message_release(&m);
	buf_release(&b);
}

int main(void)
{
	message_library_init();
	message_library_init();    /* idempotent */
	test_plain();
	test_charsets();
	test_html();
	test_attachments();
	test_broken();
	test_dates();
	test_mutations();
	test_deep();
	message_library_shutdown();
	message_library_shutdown();
	return done_testing();
}
