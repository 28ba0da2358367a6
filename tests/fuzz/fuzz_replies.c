/*
 * fuzz_replies.c - the parsers of what servers send back: IMAP (FETCH,
 * SEARCH, UIDVALIDITY, EXISTS, CAPABILITY, INTERNALDATE), POP3 (UIDL,
 * LIST), Graph (message pages, error bodies, the synthetic header block),
 * dates, the token endpoint's and Graph's error JSON, SMTP/IMAP/POP reply
 * lines (explain.h), and the redaction of our own protocol lines.
 *
 * Every input goes through every parser (they are cheap).  Properties:
 *   - counts stay within the caps given; owned strings are non-NULL where
 *     the parser promises them; literals are no longer than allowed;
 *   - imap_uid_set() of the SEARCH numbers (sorted, unique) describes
 *     exactly the first k of them and fits the buffer;
 *   - the synthetic header block of every Graph message has only the
 *     header lines it may have (no header or line injected by a subject
 *     or name), CRLF line ends, and ends with an empty line;
 *   - last-line and login-reply texts are NUL-terminated, fit, and hold
 *     no control character;
 *   - explanations always have a cause and a fix; explain_format() and
 *     the explain_ids fields are NUL-terminated;
 *   - mb_redact_line() removes a password (canary) from LOGIN, PASS, AUTH,
 *     AUTHENTICATE and bare SASL lines;
 *   - the SMTP trace of send.c (send_int.h), in a mode chosen by the first
 *     byte: (0) the input as the server's bytes; (1) a session where we
 *     send AUTH, the server answers with fuzzed lines, and we send a
 *     credential (a canary, possibly shaped like a command) after a 334:
 *     the canary, its base64 and the AUTH blob never show in the kept
 *     reply, the kept verb or any log line, the verb stays AUTH and no
 *     QUIT is assumed; (2) the input as the base64 payload of a 334: the
 *     kept reply is "334" or "334 {" and the decoded JSON.  Always: the
 *     kept reply and every log line are NUL-terminated, printable, valid
 *     UTF-8 and shorter than SEND_REPLY_MAX.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "mail/explain.h"
#include "auth/oauth.h"
#include "transport/mailbox/mailbox_int.h"
#include "base/log.h"
#include "transport/send_int.h"

#include <openssl/evp.h>

#define MAX_ITEMS 64
#define MAX_LITERAL 4096

__attribute__((noreturn))
static void fail(const char *what, const char *s)
{
	fprintf(stderr, "%s: [%s]\n", what, s ? s : "(null)");
	abort();
}

static void check_text(const char *what, const char *s, size_t outsz)
{
	size_t n = strnlen(s, outsz);

	if (n >= outsz)
		fail(what, "not NUL-terminated");
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			fail(what, "holds a control character");
}

static void check_explain(const char *what, const struct explain *e,
			  const struct explain_ids *ids)
{
	char out[2048];
	size_t n;

	if (!e->cause || !e->fix || !e->topic)
		fail(what, "explanation without cause, fix or topic");
	n = explain_format(e, ids, out, sizeof(out));
	if (strnlen(out, sizeof(out)) >= sizeof(out))
		fail(what, "explain_format output not terminated");
	if (n < sizeof(out) && strlen(out) != n)
		fail(what, "explain_format length is wrong");
	if (ids) {
		if (strnlen(ids->error, EXPLAIN_ID_MAX) >= EXPLAIN_ID_MAX ||
		    strnlen(ids->trace_id, EXPLAIN_ID_MAX) >= EXPLAIN_ID_MAX ||
		    strnlen(ids->correlation_id, EXPLAIN_ID_MAX) >= EXPLAIN_ID_MAX ||
		    strnlen(ids->request_id, EXPLAIN_ID_MAX) >= EXPLAIN_ID_MAX)
			fail(what, "an id is not NUL-terminated");
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Decode "1:3,7" and compare with want[0..k). */
static void check_uid_set(const char *set, const uint32_t *want, size_t k)
{
	const char *p = set;
	size_t i = 0;

	while (*p) {
		unsigned long a, b;
		char *end;

		a = strtoul(p, &end, 10);
		if (end == p)
			fail("uid set is not numbers", set);
		b = a;
		p = end;
		if (*p == ':') {
			b = strtoul(p + 1, &end, 10);
			if (end == p + 1 || b < a)
				fail("uid set has a bad range", set);
			p = end;
		}
		for (; a <= b; a++) {
			if (i >= k || want[i] != a)
				fail("uid set does not match the uids", set);
			i++;
			if (a == UINT32_MAX)
				break;
		}
		if (*p == ',')
			p++;
		else if (*p)
			fail("uid set has a stray character", set);
	}
	if (i != k)
		fail("uid set covers a different count", set);
}

static void imap(const char *d, size_t len)
{
	struct ms_err err = MS_ERR_INIT;
	struct imap_fetch *f = NULL;
	uint32_t *uids = NULL, u32;
	size_t n = 0, i, k, m;
	time_t t;
	char set[256];

	if (imap_parse_fetch(d, len, &f, &n, MAX_ITEMS, MAX_LITERAL, &err) == 0) {
		if (n > MAX_ITEMS || (n && !f))
			fail("imap_parse_fetch count", "");
		for (i = 0; i < n; i++)
			if (f[i].has_body &&
			    (!f[i].body || f[i].body_len > MAX_LITERAL))
				fail("imap fetch body", "");
		imap_fetch_free(f, n);
	}
	err_clear(&err);
	n = 0;
	if (imap_parse_search(d, len, &uids, &n, MAX_ITEMS, &err) == 0) {
		if (n > MAX_ITEMS || (n && !uids))
			fail("imap_parse_search count", "");
		if (n) {
			qsort(uids, n, sizeof(*uids), cmp_u32);
			for (i = 1, m = 1; i < n; i++)
				if (uids[i] != uids[m - 1])
					uids[m++] = uids[i];
			n = m;
			for (m = 0; m < 3; m++) {
				static const size_t lens[] = { 4, 16, 256 };
				memset(set, 0x55, sizeof(set));
				k = imap_uid_set(uids, n, set, lens[m]);
				if (k > n)
					fail("imap_uid_set covers too many", "");
				if (strnlen(set, lens[m]) >= lens[m])
					fail("imap_uid_set overran maxlen", "");
				check_uid_set(set, uids, k);
			}
		}
		free(uids);
	}
	(void)imap_parse_uidvalidity(d, len, &u32);
	(void)imap_parse_exists(d, len, &u32);
	(void)imap_has_capability(d, len, "UIDPLUS");
	(void)imap_parse_internaldate(d, len, &t);
}

static void pop(const char *d, size_t len)
{
	struct ms_err err = MS_ERR_INIT;
	struct pop_entry *e = NULL;
	size_t n = 0, i;
	int w;

	for (w = 0; w < 2; w++) {
		err_clear(&err);
		e = NULL;
		n = 0;
		if (pop_parse_listing(d, len, w, &e, &n, MAX_ITEMS, &err) != 0)
			continue;
		if (n > MAX_ITEMS || (n && !e))
			fail("pop_parse_listing count", "");
		for (i = 0; i < n; i++)
			if (w && !e[i].uidl)
				fail("UIDL entry without uidl", "");
		pop_entries_free(e, n);
	}
}

static void check_synth(const struct graph_msg *m)
{
	static const char *const names[] = { "Message-ID: ", "Date: ", "From: ",
					      "Subject: ", "MIME-Version: " };
	struct ms_err err = MS_ERR_INIT;
	struct buf b;
	const char *p, *end;
	int seen[5] = { 0 };
	size_t i;

	buf_init(&b, MB_MAX_HEADER);
	if (graph_synth_headers(m, &b, &err) != 0) {
		buf_release(&b);
		return;
	}
	if (!b.data || b.len < 4 || memcmp(b.data + b.len - 4, "\r\n\r\n", 4))
		fail("synthetic headers do not end with an empty line", b.data);
	if (memchr(b.data, '\0', b.len))
		fail("synthetic headers hold a NUL", "");
	p = b.data;
	end = b.data + b.len - 2;      /* the empty line */
	while (p < end) {
		const char *eol = p;

		while (eol < end && *eol != '\r' && *eol != '\n')
			eol++;
		if (eol + 1 >= b.data + b.len || eol[0] != '\r' || eol[1] != '\n')
			fail("synthetic header line without CRLF", b.data);
		if (*p == ' ' || *p == '\t') {
			if (p == b.data)
				fail("synthetic headers start folded", b.data);
		} else {
			for (i = 0; i < 5; i++)
				if (!strncmp(p, names[i], strlen(names[i])))
					break;
			if (i == 5)
				fail("unexpected synthetic header line", b.data);
			if (seen[i]++)
				fail("synthetic header repeated", b.data);
		}
		p = eol + 2;
	}
	buf_release(&b);
}

static void graph(const char *d, size_t len)
{
	struct ms_err err = MS_ERR_INIT;
	struct graph_msg *m = NULL;
	char *next = NULL, out[512];
	size_t n = 0, i;

	if (graph_parse_page(d, len, &m, &n, MAX_ITEMS, &next, &err) == 0) {
		if (n > MAX_ITEMS || (n && !m))
			fail("graph_parse_page count", "");
		for (i = 0; i < n; i++)
			check_synth(&m[i]);
		graph_msgs_free(m, n);
		free(next);
	}
	graph_error_text(d, len, out, sizeof(out));
	if (strnlen(out, sizeof(out)) >= sizeof(out))
		fail("graph_error_text not terminated", "");
}

static void lines(const char *d, size_t len, const char *cstr)
{
	char out[256];
	time_t t;

	mb_last_line(d, len, out, sizeof(out));
	check_text("mb_last_line", out, sizeof(out));
	mb_last_line(d, len, out, 8);
	check_text("mb_last_line small", out, 8);
	mb_login_reply(d, len, out, sizeof(out));
	check_text("mb_login_reply", out, sizeof(out));
	(void)mb_parse_rfc5322_date(cstr, &t);
	(void)mb_parse_iso8601(cstr, &t);
	(void)mb_header_date(d, len, &t);
}

static void explain(const char *d, size_t len, const char *cstr)
{
	struct explain e;
	struct explain_ids ids;
	char out[1024];
	long status;

	memset(&ids, 0, sizeof(ids));
	(void)explain_token_response(d, len, &e, &ids);
	check_explain("explain_token_response", &e, &ids);
	memset(&ids, 0, sizeof(ids));
	status = len ? 400 + (unsigned char)d[0] % 200 : 500;
	(void)explain_graph_response(status, d, len, &e, &ids);
	check_explain("explain_graph_response", &e, &ids);
	(void)explain_smtp_reply(cstr, &e);
	check_explain("explain_smtp_reply", &e, NULL);
	(void)explain_mail_reply(cstr, &e);
	check_explain("explain_mail_reply", &e, NULL);
	(void)explain_text(cstr, &e);
	check_explain("explain_text", &e, NULL);
	memset(&ids, 0, sizeof(ids));
	explain_ids_from_text(cstr, &ids);
	check_explain("explain_ids_from_text", &e, &ids);
	(void)explain_error(cstr, out, sizeof(out));
	if (strnlen(out, sizeof(out)) >= sizeof(out))
		fail("explain_error not terminated", "");
	(void)explain_error(cstr, out, 16);
	if (strnlen(out, 16) >= 16)
		fail("explain_error small not terminated", "");
}

/* Our own protocol lines with a canary password: it must go. */
static void redact(const uint8_t *data, size_t size)
{
	static const char *const forms[] = {
		"A001 LOGIN %s %s", "PASS %s%.0s", "AUTH PLAIN %s%.0s",
		"A001 AUTHENTICATE XOAUTH2 %s%.0s", "%s%.0s", "APOP %s %s",
		"a2 login \"%s\" \"%s\"\r\n",
	};
	char user[24], canary[40], line[160];
	size_t i, nu = 0, nc = 0, f;

	if (size < 1)
		return;
	f = data[0] % (sizeof(forms) / sizeof(forms[0]));
	canary[nc++] = 'K';
	canary[nc++] = 'z';
	canary[nc++] = '9';
	for (i = 1; i < size && nc < 32; i++)
		if (data[i] > 0x20 && data[i] < 0x7f && data[i] != '"')
			canary[nc++] = (char)data[i];
	canary[nc] = '\0';
	for (i = size; i-- > 1 && nu < 16;)
		if (data[i] > 0x20 && data[i] < 0x7f && data[i] != '"')
			user[nu++] = (char)data[i];
	user[nu] = '\0';
	if (!nu)
		strcpy(user, "u");
	if (f == 0 || f == 5 || f == 6)
		snprintf(line, sizeof(line), forms[f], user, canary);
	else
		snprintf(line, sizeof(line), forms[f], canary, user);
	if (strstr(user, canary))
		return;
	mb_redact_line(line, sizeof(line));
	if (strnlen(line, sizeof(line)) >= sizeof(line))
		fail("redacted line not terminated", "");
	if (strstr(line, canary))
		fail("mb_redact_line left the password in", line);
}

/* ---- SMTP trace (send_int.h) ---- */

/* Valid UTF-8, no control character, NUL within max. */
static void check_printable_utf8(const char *what, const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;

	if (strnlen(s, max) >= max)
		fail(what, "not NUL-terminated within its size");
	while (*p) {
		size_t k, i;

		if (*p < 0x20 || *p == 0x7f)
			fail(what, s);
		if (*p < 0x80) {
			p++;
			continue;
		}
		if (*p >= 0xc2 && *p <= 0xdf)
			k = 2;
		else if (*p >= 0xe0 && *p <= 0xef)
			k = 3;
		else if (*p >= 0xf0 && *p <= 0xf4)
			k = 4;
		else
			fail(what, "invalid UTF-8 lead byte");
		for (i = 1; i < k; i++)
			if ((p[i] & 0xc0) != 0x80)
				fail(what, "cut or invalid UTF-8 sequence");
		if ((k == 3 && ((p[0] == 0xe0 && p[1] < 0xa0) ||
				(p[0] == 0xed && p[1] >= 0xa0))) ||
		    (k == 4 && ((p[0] == 0xf0 && p[1] < 0x90) ||
				(p[0] == 0xf4 && p[1] >= 0x90))))
			fail(what, "overlong or surrogate UTF-8");
		p += k;
	}
}

/* Secrets the log sink watches for (NULL: none). */
static const char *watch[2];

static void trace_sink(enum log_level level, const char *msg, void *ctx)
{
	size_t i;

	(void)level;
	(void)ctx;
	if (strncmp(msg, "smtp ", 5) != 0)
		return;
	check_printable_utf8("smtp log line", msg, 2048);
	for (i = 0; i < 2; i++)
		if (watch[i] && strstr(msg, watch[i]))
			fail("a credential shows in an smtp log line", msg);
}

static void check_trace(const struct send_trace *t)
{
	static const char *const verbs[] = { "", "EHLO", "HELO", "STARTTLS",
		"MAIL", "RCPT", "DATA", "RSET", "NOOP", "AUTH", NULL };
	size_t i;

	check_printable_utf8("send_trace reply", t->reply, sizeof(t->reply));
	if (strnlen(t->cmd, sizeof(t->cmd)) >= sizeof(t->cmd))
		fail("send_trace cmd not terminated", "");
	for (i = 0; verbs[i]; i++)
		if (!strcmp(t->cmd, verbs[i]))
			break;
	if (!verbs[i])
		fail("send_trace cmd is not a verb we send", t->cmd);
}

/* s as one line: no NUL, CR or LF. */
static void one_line(char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] == '\0' || s[i] == '\r' || s[i] == '\n')
			s[i] = '.';
	s[n] = '\0';
}

static void trace_session(const uint8_t *data, size_t size)
{
	static const char *const shapes[] = { "", "RSET", "quit", "DATA ",
		"Mail From:<", "AUTH PLAIN ", "ehlo ", "334 ", "NOOP" };
	struct send_trace t;
	char secret[64], blob[128], b64[256], chal[300], line[400];
	const char *srv = (const char *)data + 2, *core;
	size_t nsrv, i, n = 0, q;
	int secret_in_input;

	if (size < 2)
		return;
	/* the credential: a command shape, a marker, printable input bytes */
	n = (size_t)snprintf(secret, sizeof(secret), "%sKz9",
			     shapes[data[1] % (sizeof(shapes) / sizeof(shapes[0]))]);
	for (i = size; i-- > 2 && n < 40;)
		if (data[i] > 0x20 && data[i] < 0x7f)
			secret[n++] = (char)data[i];
	secret[n] = '\0';
	core = strstr(secret, "Kz9");
	/* the PLAIN blob: \0user\0secret */
	memcpy(blob, "\0alice\0", 7);
	memcpy(blob + 7, secret, n);
	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)blob,
			(int)(7 + n));
	nsrv = size - 2;
	q = nsrv / 4;
	/* the server's lines might hold the canary themselves: then the
	 * reply may show it legitimately */
	secret_in_input = memmem(srv, nsrv, core, strlen(core)) != NULL ||
			  memmem(srv, nsrv, b64, strlen(b64)) != NULL;
	if (!secret_in_input) {
		watch[0] = core;
		watch[1] = b64;
	}
	send_trace_init(&t, 1);
	send_trace_chunk(&t, 1, "EHLO client\r\n", 13);
	send_trace_chunk(&t, 0, srv, q);
	check_trace(&t);
	snprintf(line, sizeof(line), "AUTH PLAIN %s\r\n", b64);
	send_trace_chunk(&t, 1, line, strlen(line));
	if (strcmp(t.cmd, "AUTH"))
		fail("AUTH not kept as the verb", t.cmd);
	/* one challenge line from the input, then our credential */
	i = q < 200 ? q : 200;
	memcpy(chal, "334 ", 4);
	memcpy(chal + 4, srv + q, i);
	one_line(chal + 4, i);
	send_trace_line_in(&t, chal);
	check_trace(&t);
	if (strcmp(t.reply, "334") && strncmp(t.reply, "334 {", 5))
		fail("a 334 challenge kept raw", t.reply);
	send_trace_line_out(&t, secret);
	snprintf(line, sizeof(line), "%s\r\n%s\r\n", b64, secret);
	send_trace_chunk(&t, 1, line, strlen(line));
	if (strcmp(t.cmd, "AUTH") || t.quitting)
		fail("a credential was taken for a command", secret);
	send_trace_chunk(&t, 0, srv + 2 * q, q);
	check_trace(&t);
	send_trace_chunk(&t, 1, "QUIT\r\n", 6);
	send_trace_chunk(&t, 0, srv + 3 * q, nsrv - 3 * q);
	check_trace(&t);
	if (!secret_in_input && (strstr(t.reply, core) || strstr(t.reply, b64)))
		fail("a credential shows in the kept reply", t.reply);
	watch[0] = watch[1] = NULL;
}

static void trace_challenge(const uint8_t *data, size_t size)
{
	struct send_trace t;
	char line[2 * 1024];
	unsigned char dec[1024];
	size_t n = size - 1 < 700 ? size - 1 : 700;
	int dl, json;

	memcpy(line, data[0] & 0x10 ? "334-" : "334 ", 4);
	EVP_EncodeBlock((unsigned char *)line + 4, data + 1, (int)n);
	/* what the payload decodes to, as the server meant it */
	dl = EVP_DecodeBlock(dec, (unsigned char *)line + 4,
			     (int)strlen(line + 4));
	while (dl > 0 && dec[dl - 1] == '\0')
		dl--;
	json = dl > 1 && dec[0] == '{';
	send_trace_init(&t, 1);
	send_trace_line_in(&t, line);
	check_trace(&t);
	if (strcmp(t.reply, "334") && strncmp(t.reply, "334 {", 5))
		fail("a 334 challenge kept raw", t.reply);
	if (!json && strcmp(t.reply, "334"))
		fail("a 334 challenge that is not JSON kept", t.reply);
	/* short enough to be kept, and JSON: the reply shows it */
	if (json && strlen(line + 4) < 680 && strncmp(t.reply, "334 {", 5))
		fail("an XOAUTH2 JSON status dropped", t.reply);
}

static void smtp_trace(const uint8_t *data, size_t size)
{
	struct send_trace t;

	if (size < 1)
		return;
	log_set_sink(trace_sink, NULL, LOG_LVL_TRACE);
	switch (data[0] % 3) {
	case 0:
		send_trace_init(&t, data[0] & 0x10);
		send_trace_chunk(&t, 0, (const char *)data + 1, size - 1);
		check_trace(&t);
		send_trace_chunk(&t, 1, (const char *)data + 1, size - 1);
		check_trace(&t);
		break;
	case 1:
		trace_session(data, size);
		break;
	default:
		trace_challenge(data, size);
		break;
	}
	log_set_sink(NULL, NULL, LOG_LVL_WARN);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *d = (const char *)data;
	char *cstr;

	if (size > 256 * 1024)
		return 0;
	if (!(cstr = malloc(size + 1)))
		return 0;
	memcpy(cstr, data, size);
	cstr[size] = '\0';
	imap(d, size);
	pop(d, size);
	graph(d, size);
	lines(d, size, cstr);
	explain(d, size, cstr);
	oauth_parse_replies(d, size);   /* token, error and device-code JSON */
	redact(data, size);
	smtp_trace(data, size);
	free(cstr);
	return 0;
}
