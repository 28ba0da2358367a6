/*
 * fuzz_message.c - MIME and header handling (message_parse, GMime inside).
 *
 * Every input is parsed headers-only and in full (with attachment data).
 * Properties:
 *   - parsing never fails the whole message (only the size cap may);
 *   - every string is non-NULL, NUL-terminated valid UTF-8;
 *   - headers-only leaves the body empty, and both passes see the same
 *     subject, sender, message id and date (the rules decide on the first
 *     pass whether to fetch the body);
 *   - at most 10,000 body lines, none of them blank;
 *   - message_attachment_safe_name() of every attachment name is a safe,
 *     non-empty file name of at most 200 bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "mail/message.h"

static void fail(const char *what, const char *s)
{
	fprintf(stderr, "%s: [%s]\n", what, s ? s : "(null)");
	abort();
}

static int utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t n, i;
		uint32_t c;

		if (*p < 0x80) {
			p++;
			continue;
		}
		if ((*p & 0xe0) == 0xc0)
			n = 1, c = *p & 0x1f;
		else if ((*p & 0xf0) == 0xe0)
			n = 2, c = *p & 0x0f;
		else if ((*p & 0xf8) == 0xf0)
			n = 3, c = *p & 0x07;
		else
			return 0;
		for (i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			c = (c << 6) | (p[i] & 0x3f);
		}
		if ((n == 1 && c < 0x80) || (n == 2 && c < 0x800) ||
		    (n == 3 && c < 0x10000) || c > 0x10ffff ||
		    (c >= 0xd800 && c <= 0xdfff))
			return 0;
		p += n + 1;
	}
	return 1;
}

static void check_str(const char *what, const char *s)
{
	if (!s)
		fail(what, "is NULL");
	if (!utf8_valid(s))
		fail(what, s);
}

static void check_safe_name(const char *name)
{
	char *s = message_attachment_safe_name(name);
	size_t n;

	if (!s)
		fail("safe name is NULL for", name);
	n = strlen(s);
	if (n == 0 || n > 200)
		fail("safe name has a bad length", s);
	if (strpbrk(s, "/\\:*?\"<>|"))
		fail("safe name keeps a reserved character", s);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			fail("safe name keeps a control character", s);
	if (s[0] == '.' || s[0] == ' ' || s[n - 1] == '.' || s[n - 1] == ' ')
		fail("safe name has a leading or trailing dot or blank", s);
	if (!utf8_valid(s))
		fail("safe name is not UTF-8", s);
	free(s);
}

static void check_msg(const struct message *m)
{
	size_t i;

	check_str("subject", m->subject);
	check_str("from_addr", m->from_addr);
	check_str("from_name", m->from_name);
	check_str("message_id", m->message_id);
	if (m->n_body_lines > 10000)
		fail("too many body lines", "");
	if (m->n_body_lines && !m->body_lines)
		fail("body lines counted but absent", "");
	for (i = 0; i < m->n_body_lines; i++) {
		const char *l = m->body_lines[i];

		check_str("body line", l);
		if (l[strspn(l, " \t\r\n")] == '\0')
			fail("blank body line kept", l);
	}
	if (m->n_attachments && !m->attachments)
		fail("attachments counted but absent", "");
	for (i = 0; i < m->n_attachments; i++) {
		check_str("attachment name", m->attachments[i].name);
		check_str("attachment content type",
			  m->attachments[i].content_type);
		check_safe_name(m->attachments[i].name);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ms_err err = MS_ERR_INIT;
	struct message h, m;

	if (size > 256 * 1024)
		return 0;
	message_library_init();
	if (message_parse(&h, (const char *)data, size, 1, 0, &err) != 0)
		fail("headers-only parse failed", err.msg);
	check_msg(&h);
	if (h.has_body || h.n_body_lines || h.n_attachments)
		fail("headers-only parse filled the body", "");
	err_clear(&err);
	if (message_parse(&m, (const char *)data, size, 0, 1, &err) != 0)
		fail("full parse failed", err.msg);
	check_msg(&m);
	if (!m.has_body)
		fail("full parse has no body flag", "");
	if (strcmp(h.subject, m.subject))
		fail("subject differs between the passes", m.subject);
	if (strcmp(h.from_addr, m.from_addr))
		fail("sender differs between the passes", m.from_addr);
	if (strcmp(h.message_id, m.message_id))
		fail("message id differs between the passes", m.message_id);
	if (h.has_date != m.has_date || (h.has_date && h.date != m.date))
		fail("date differs between the passes", "");
	message_release(&h);
	message_release(&m);
	return 0;
}
