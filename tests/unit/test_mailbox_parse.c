/*
 * test_mailbox_parse.c - the pure parsers of the mailbox backends: IMAP
 * FETCH/SEARCH/UIDVALIDITY, POP3 UIDL/LIST, Graph JSON pages, dates,
 * credential redaction; then two scripted IMAP conversations (a server
 * thread on 127.0.0.1) for what the real Dovecot of the mail world cannot
 * be made to do: no UIDPLUS, a UIDVALIDITY that changes after a dropped
 * session.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/mailbox/mailbox_int.h"
#include "tap.h"

static void test_dates(void)
{
	time_t t = 0;

	ok(mb_parse_rfc5322_date("Sat, 28 Nov 2026 01:35:34 +0000", &t) == 0 &&
	   t == 1795829734, "rfc5322 date in UTC");
	ok(mb_parse_rfc5322_date("Sat, 28 Nov 2026 03:35:34 +0200", &t) == 0 &&
	   t == 1795829734, "rfc5322 date east of UTC");
	ok(mb_parse_rfc5322_date("Fri, 27 Nov 2026 20:35:34 -0500 (EST)", &t) == 0 &&
	   t == 1795829734, "rfc5322 date west of UTC with a comment");
	ok(mb_parse_rfc5322_date("28 Nov 2026 01:35 GMT", &t) == 0 &&
	   t == 1795829700, "no day name, no seconds, GMT");
	ok(mb_parse_rfc5322_date("Sat, 28 Nov 26 01:35:34 +0000", &t) == 0 &&
	   t == 1795829734, "two-digit year");
	ok(mb_parse_rfc5322_date("Fri, 27 Nov 2026 17:35:34 PST", &t) == 0 &&
	   t == 1795829734, "obsolete zone name");
	ok(mb_parse_rfc5322_date("yesterday", &t) != 0, "garbage refused");
	ok(mb_parse_rfc5322_date("Sat, 31 Foo 2026 01:35:34 +0000", &t) != 0,
	   "bad month refused");
	ok(mb_parse_rfc5322_date("Sat, 28 Nov 2026 25:35:34 +0000", &t) != 0,
	   "bad hour refused");
	ok(imap_parse_internaldate("28-Nov-2026 03:35:34 +0200", 26, &t) == 0 &&
	   t == 1795829734, "INTERNALDATE");
	ok(imap_parse_internaldate(" 8-Nov-2026 01:35:34 +0000", 26, &t) == 0 &&
	   t == 1795829734 - 20 * 86400, "INTERNALDATE with a space-padded day");
	ok(mb_parse_iso8601("2026-11-28T01:35:34Z", &t) == 0 && t == 1795829734,
	   "ISO 8601 Z");
	ok(mb_parse_iso8601("2026-11-28T02:35:34.1234567+01:00", &t) == 0 &&
	   t == 1795829734, "ISO 8601 fraction and offset");
	ok(mb_parse_iso8601("2026-11-28T01:35:34Zjunk", &t) != 0,
	   "ISO 8601 trailing junk refused");
	ok(mb_parse_iso8601("1970-01-01T00:00:00Z", &t) == 0 && t == 0, "epoch");

	{
		const char *h = "Subject: x\r\nDate: Sat, 28 Nov 2026\r\n 01:35:34 +0000\r\n"
				"From: a@b\r\n\r\nDate: Mon, 1 Jan 2001 00:00:00 +0000\r\n";
		ok(mb_header_date(h, strlen(h), &t) == 0 && t == 1795829734,
		   "Date header found, folded");
		h = "Subject: x\r\n\r\nDate: Sat, 28 Nov 2026 01:35:34 +0000\r\n";
		ok(mb_header_date(h, strlen(h), &t) != 0,
		   "a Date line in the body is not the header");
	}
}

static void test_uidvalidity_caps(void)
{
	const char *r =
		"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS] Dovecot ready.\r\n"
		"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
		"* 3 EXISTS\r\n"
		"* 0 RECENT\r\n"
		"* OK [UIDVALIDITY 1764293734] UIDs valid\r\n"
		"* OK [UIDNEXT 4] Predicted next UID\r\n"
		"A003 OK [READ-WRITE] Select completed (0.001 + 0.000 secs).\r\n";
	const char *c2 = "A002 OK [CAPABILITY IMAP4rev1 UIDPLUS MOVE] Logged in\r\n";
	uint32_t v = 0;

	ok(imap_parse_uidvalidity(r, strlen(r), &v) == 0 && v == 1764293734u,
	   "UIDVALIDITY found");
	ok(imap_parse_uidvalidity("A1 OK done\r\n", 12, &v) != 0, "no UIDVALIDITY");
	ok(imap_parse_uidvalidity("* OK [UIDVALIDITY 99999999999] x\r\n", 34, &v) != 0,
	   "UIDVALIDITY out of range refused");
	ok(!imap_has_capability(r, strlen(r), "UIDPLUS"), "no UIDPLUS before login");
	ok(imap_has_capability(c2, strlen(c2), "UIDPLUS"), "UIDPLUS in tagged OK");
	ok(!imap_has_capability(c2, strlen(c2), "UID"), "capability match is whole-word");
	/* a literal that looks like a UIDVALIDITY line is not one */
	{
		const char *lit = "* 1 FETCH (BODY[HEADER] {40}\r\n"
				  "* OK [UIDVALIDITY 7] fake\r\nX: 1234567\r\n)\r\n"
				  "* OK [UIDVALIDITY 8] real\r\n";
		(void)lit;
		ok(imap_parse_uidvalidity(lit, strlen(lit), &v) == 0 && v == 8,
		   "literal content is skipped");
	}
}

static void test_search(void)
{
	struct ms_err err = MS_ERR_INIT;
	uint32_t *u = NULL;
	size_t n = 0;
	const char *r = "* SEARCH 5 3 9 3\r\n* SEARCH 12\r\nA004 OK Search completed\r\n";

	ok(imap_parse_search(r, strlen(r), &u, &n, 100, &err) == 0 && n == 4 &&
	   u[0] == 3 && u[1] == 5 && u[2] == 9 && u[3] == 12,
	   "SEARCH numbers sorted, duplicates dropped");
	free(u);
	r = "* SEARCH\r\nA004 OK done\r\n";
	ok(imap_parse_search(r, strlen(r), &u, &n, 100, &err) == 0 && n == 0,
	   "empty SEARCH");
	free(u);
	r = "* SEARCH 1 2 (MODSEQ 917162500)\r\n";
	ok(imap_parse_search(r, strlen(r), &u, &n, 100, &err) == 0 && n == 2,
	   "MODSEQ ignored");
	free(u);
	r = "* SEARCH 1 2 3 4\r\n";
	ok(imap_parse_search(r, strlen(r), &u, &n, 3, &err) == -1 &&
	   err.code == MS_ERR_TOOBIG, "SEARCH capped");
	err_clear(&err);
	r = "* SEARCH 0\r\n";
	ok(imap_parse_search(r, strlen(r), &u, &n, 3, &err) == -1 &&
	   err.code == MS_ERR_PROTO, "UID 0 refused");
	err_clear(&err);
	r = "* SEARCHED 1\r\n";
	ok(imap_parse_search(r, strlen(r), &u, &n, 3, &err) == 0 && n == 0,
	   "other responses ignored");
	free(u);
}

static void test_fetch(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct imap_fetch *f = NULL;
	size_t n = 0;
	const char *h1 = "Subject: one\r\nFrom: a@b.test\r\n\r\n";
	const char *h2 = "Subject: (two) \"x\"\r\n\r\n";
	char r[2048];

	snprintf(r, sizeof(r),
		 "* 1 FETCH (UID 7 RFC822.SIZE 1234 FLAGS (\\Seen) BODY[HEADER] {%zu}\r\n%s)\r\n"
		 "* 5 EXISTS\r\n"
		 "* 2 FETCH (UID 9 INTERNALDATE \"28-Nov-2026 03:35:34 +0200\" "
		 "RFC822.SIZE 88 BODY[HEADER] {%zu}\r\n%s)\r\n"
		 "* 3 FETCH (FLAGS (\\Seen \\Deleted))\r\n"
		 "A005 OK Fetch completed\r\n",
		 strlen(h1), h1, strlen(h2), h2);
	ok(imap_parse_fetch(r, strlen(r), &f, &n, 10, 4096, &err) == 0, "FETCH parsed");
	is_int(n, 3, "three FETCH responses");
	if (n == 3) {
		is_int(f[0].uid, 7, "uid 1");
		is_int(f[0].size, 1234, "size 1");
		ok(f[0].has_body && f[0].body_len == strlen(h1) &&
		   memcmp(f[0].body, h1, strlen(h1)) == 0, "header literal 1 exact");
		ok(!f[0].has_date, "no date 1");
		is_int(f[1].uid, 9, "uid 2");
		ok(f[1].has_date && f[1].internaldate == 1795829734, "INTERNALDATE 2");
		ok(f[1].has_body && f[1].body_len == strlen(h2) &&
		   memcmp(f[1].body, h2, strlen(h2)) == 0, "header literal 2 exact");
		ok(f[2].uid == 0 && !f[2].has_body, "unsolicited FLAGS response has no uid");
	}
	imap_fetch_free(f, n);

	/* a literal whose content looks like protocol */
	{
		const char *h = "* 9 FETCH (UID 1)\r\nA005 OK fake\r\n\r\n";
		snprintf(r, sizeof(r), "* 1 FETCH (UID 3 BODY[] {%zu}\r\n%s UID 3)\r\n",
			 strlen(h), h);
		ok(imap_parse_fetch(r, strlen(r), &f, &n, 10, 4096, &err) == 0 && n == 1 &&
		   f[0].uid == 3 && f[0].body_len == strlen(h),
		   "protocol-looking literal content stays content");
		imap_fetch_free(f, n);
	}
	/* quoted body and NIL */
	{
		const char *q = "* 4 FETCH (BODY[HEADER] \"Subject: \\\"q\\\"\" UID 11)\r\n"
				"* 5 FETCH (UID 12 BODY[HEADER] NIL)\r\n";
		ok(imap_parse_fetch(q, strlen(q), &f, &n, 10, 4096, &err) == 0 && n == 2 &&
		   f[0].uid == 11 && f[0].has_body && strcmp(f[0].body, "Subject: \"q\"") == 0 &&
		   f[1].uid == 12 && !f[1].has_body, "quoted string and NIL");
		imap_fetch_free(f, n);
	}
	/* truncated literal: what a clipped line looks like */
	snprintf(r, sizeof(r), "* 1 FETCH (UID 7 BODY[HEADER] {500}\r\nSubject: x\r\n)\r\n");
	ok(imap_parse_fetch(r, strlen(r), &f, &n, 10, 4096, &err) == -1 &&
	   err.code == MS_ERR_PROTO, "truncated literal refused");
	err_clear(&err);
	/* literal longer than the cap */
	snprintf(r, sizeof(r), "* 1 FETCH (UID 7 BODY[] {5000}\r\n");
	ok(imap_parse_fetch(r, strlen(r), &f, &n, 10, 4096, &err) == -1 &&
	   err.code == MS_ERR_TOOBIG, "literal over the cap refused");
	err_clear(&err);
	/* framing broken after a literal */
	snprintf(r, sizeof(r), "* 1 FETCH (UID 7 BODY[] {3}\r\nabcdef)\r\n");
	ok(imap_parse_fetch(r, strlen(r), &f, &n, 10, 4096, &err) == -1,
	   "data after a literal that is not the list refused");
	err_clear(&err);
	/* item cap */
	snprintf(r, sizeof(r), "* 1 FETCH (UID 1)\r\n* 2 FETCH (UID 2)\r\n* 3 FETCH (UID 3)\r\n");
	ok(imap_parse_fetch(r, strlen(r), &f, &n, 2, 4096, &err) == -1 &&
	   err.code == MS_ERR_TOOBIG, "FETCH responses capped");
	err_clear(&err);
	/* nested lists, BODYSTRUCTURE-like values, section with spaces */
	{
		const char *q = "* 1 FETCH (BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL "
				"\"7bit\" 3 1 NIL NIL NIL NIL)) BODY[HEADER.FIELDS (DATE FROM)] {4}\r\n"
				"ab\r\n UID 44)\r\n";
		ok(imap_parse_fetch(q, strlen(q), &f, &n, 10, 4096, &err) == 0 && n == 1 &&
		   f[0].uid == 44 && f[0].body_len == 4, "nested lists skipped");
		imap_fetch_free(f, n);
	}
	/* garbage never loops or crashes */
	{
		const char *junk[] = { "* 1 FETCH (", "* 1 FETCH (UID", "* 1 FETCH (UID x)\r\n",
				       "* 1 FETCH ((((((((((((((((((((((((((((((((((((((((\r\n",
				       "* 1 FETCH (BODY[] {99999999999999999999}\r\n",
				       "* 1 FETCH (BODY[] \"abc\r\n\")\r\n", "*", "", "\r\n\r\n" };
		int fine = 1;
		for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
			err_clear(&err);
			f = NULL;
			n = 0;
			if (imap_parse_fetch(junk[i], strlen(junk[i]), &f, &n, 10, 4096, &err) == 0 &&
			    n != 0)
				fine = 0;
			imap_fetch_free(f, n);
		}
		ok(fine, "malformed FETCH responses yield nothing");
	}
	err_clear(&err);
}

static void test_uid_set(void)
{
	uint32_t u[] = { 1, 2, 3, 7, 9, 10, 4000000000u };
	char s[64];

	is_int(imap_uid_set(u, 7, s, sizeof(s)), 7, "all uids in the set");
	is(s, "1:3,7,9:10,4000000000", "ranges compressed");
	is_int(imap_uid_set(u, 7, s, 8), 4, "set stops before the length limit");
	is(s, "1:3,7", "partial set");
}

static void test_pop(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct pop_entry *e = NULL;
	size_t n = 0;
	const char *u = "1 000000015f5b7c1d\r\n2 whqtswO00WBw418f9t5JxYwZ\r\n";
	const char *l = "1 1200\r\n2 345\r\n";

	ok(pop_parse_listing(u, strlen(u), 1, &e, &n, 10, &err) == 0 && n == 2 &&
	   e[0].num == 1 && strcmp(e[0].uidl, "000000015f5b7c1d") == 0 &&
	   e[1].num == 2 && strcmp(e[1].uidl, "whqtswO00WBw418f9t5JxYwZ") == 0,
	   "UIDL parsed");
	pop_entries_free(e, n);
	ok(pop_parse_listing(l, strlen(l), 0, &e, &n, 10, &err) == 0 && n == 2 &&
	   e[0].size == 1200 && e[1].size == 345 && e[1].num == 2, "LIST parsed");
	pop_entries_free(e, n);
	ok(pop_parse_listing("", 0, 1, &e, &n, 10, &err) == 0 && n == 0, "empty maildrop");
	free(e);
	ok(pop_parse_listing("1 a\r\n.\r\n", 8, 1, &e, &n, 10, &err) == 0 && n == 1,
	   "terminating dot tolerated");
	pop_entries_free(e, n);
	ok(pop_parse_listing("1 a b\r\n", 7, 1, &e, &n, 10, &err) == 0 && n == 1 &&
	   strcmp(e[0].uidl, "a") == 0, "UIDL ends at a space");
	pop_entries_free(e, n);
	ok(pop_parse_listing("x a\r\n", 5, 1, &e, &n, 10, &err) == -1 &&
	   err.code == MS_ERR_PROTO, "bad number refused");
	err_clear(&err);
	ok(pop_parse_listing("1 \x01\x02\r\n", 6, 1, &e, &n, 10, &err) == -1,
	   "control characters in a UIDL refused");
	err_clear(&err);
	ok(pop_parse_listing("1 1\r\n2 2\r\n3 3\r\n", 15, 0, &e, &n, 2, &err) == -1 &&
	   err.code == MS_ERR_TOOBIG, "LIST capped");
	err_clear(&err);
	{
		char big[100];
		memset(big, 'u', sizeof(big));
		memcpy(big, "1 ", 2);
		memcpy(big + 96, "\r\n", 2);
		ok(pop_parse_listing(big, 98, 1, &e, &n, 10, &err) == -1,
		   "UIDL over 70 characters refused");
		err_clear(&err);
	}
}

static void test_graph(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct graph_msg *m = NULL;
	size_t n = 0;
	char *next = NULL, text[300];
	const char *page =
		"{\"@odata.context\":\"x\",\"value\":["
		"{\"@odata.etag\":\"W/\\\"a\\\"\",\"id\":\"AAkALgAA=\",\"internetMessageId\":\"<m1@x.test>\","
		"\"receivedDateTime\":\"2026-11-28T01:35:34Z\",\"sentDateTime\":\"2026-11-28T01:35:30Z\","
		"\"subject\":\"Caf\\u00e9 r\\u00e9sum\\u00e9 \\r\\nBcc: evil@x\",\"hasAttachments\":true,"
		"\"from\":{\"emailAddress\":{\"name\":\"J\\u00fcrgen\",\"address\":\"j@x.test\"}}},"
		"{\"id\":\"BB\",\"subject\":null,\"from\":null,\"hasAttachments\":false}"
		"],\"@odata.nextLink\":\"https://127.0.0.1:1/v1.0/users/a/messages?$skip=2\"}";
	struct buf h;

	ok(graph_parse_page(page, strlen(page), &m, &n, 100, &next, &err) == 0 && n == 2,
	   "Graph page parsed");
	is(next, "https://127.0.0.1:1/v1.0/users/a/messages?$skip=2", "nextLink");
	if (n == 2) {
		is(m[0].id, "AAkALgAA=", "id");
		is(m[0].internet_message_id, "<m1@x.test>", "internetMessageId");
		ok(m[0].received == 1795829734, "receivedDateTime");
		ok(m[0].sent == 1795829730, "sentDateTime");
		ok(m[0].has_attachments, "hasAttachments");
		is(m[0].from_addr, "j@x.test", "from address");
		ok(m[1].subject == NULL && m[1].from_addr == NULL && !m[1].has_attachments,
		   "null fields");
		buf_init(&h, 4096);
		ok(graph_synth_headers(&m[0], &h, &err) == 0, "synthetic headers");
		ok(strstr(h.data, "Message-ID: <m1@x.test>\r\n") != NULL, "Message-ID header");
		ok(strstr(h.data, "Date: Sat, 28 Nov 2026 01:35:30 +0000\r\n") != NULL,
		   "Date header from sentDateTime");
		ok(strstr(h.data, "From: =?UTF-8?B?SsO8cmdlbg==?= <j@x.test>\r\n") != NULL,
		   "From with encoded name");
		ok(strstr(h.data, "Subject: =?UTF-8?B?") != NULL, "Subject encoded");
		ok(strstr(h.data, "\nBcc:") == NULL, "CR/LF in a subject cannot add a header");
		ok(h.len >= 4 && memcmp(h.data + h.len - 4, "\r\n\r\n", 4) == 0,
		   "header block ends with an empty line");
		buf_release(&h);
		buf_init(&h, 4096);
		ok(graph_synth_headers(&m[1], &h, &err) == 0 &&
		   strstr(h.data, "From:") == NULL && strstr(h.data, "Subject:") == NULL,
		   "missing fields leave headers out");
		buf_release(&h);
	}
	graph_msgs_free(m, n);
	free(next);

	{
		struct graph_msg lm;
		char longsub[400];
		memset(&lm, 0, sizeof(lm));
		for (size_t i = 0; i + 2 < sizeof(longsub); i += 2)
			memcpy(longsub + i, "\xc3\xa9", 2);
		longsub[sizeof(longsub) - 2] = '\0';
		lm.id = "x";
		lm.subject = longsub;
		buf_init(&h, 8192);
		ok(graph_synth_headers(&lm, &h, &err) == 0, "long subject encoded");
		{
			int maxline = 0, cur = 0;
			for (size_t i = 0; i < h.len; i++) {
				if (h.data[i] == '\n') {
					if (cur > maxline)
						maxline = cur;
					cur = 0;
				} else {
					cur++;
				}
			}
			ok(maxline <= 85, "encoded words folded (longest line %d)", maxline);
		}
		buf_release(&h);
	}

	ok(graph_parse_page("{\"value\":{}}", 12, &m, &n, 100, &next, &err) == -1 &&
	   err.code == MS_ERR_PROTO, "value not an array refused");
	err_clear(&err);
	ok(graph_parse_page("not json", 8, &m, &n, 100, &next, &err) == -1,
	   "not JSON refused");
	err_clear(&err);
	ok(graph_parse_page("{\"value\":[{\"subject\":\"x\"}]}", 27, &m, &n, 100, &next,
			    &err) == -1, "message without id refused");
	err_clear(&err);
	ok(graph_parse_page("{\"value\":[{\"id\":\"a\"},{\"id\":\"b\"}]}", 33, &m, &n, 1,
			    &next, &err) == -1 && err.code == MS_ERR_TOOBIG, "page capped");
	err_clear(&err);
	ok(graph_parse_page("{\"value\":[]}", 12, &m, &n, 100, &next, &err) == 0 &&
	   n == 0 && next == NULL, "empty page");

	graph_error_text("{\"error\":{\"code\":\"ErrorAccessDenied\",\"message\":"
			 "\"Access is denied.\"}}", 68, text, sizeof(text));
	is(text, "ErrorAccessDenied: Access is denied.", "Graph error text");
	graph_error_text("<html>", 6, text, sizeof(text));
	is(text, "", "non-JSON error body gives no text");
}

static void test_redact_lastline(void)
{
	char l[200], out[100];

	strcpy(l, "A002 LOGIN alice@x.test Secret-Pw\r\n");
	mb_redact_line(l, sizeof(l));
	ok(strstr(l, "Secret") == NULL && strstr(l, "LOGIN") != NULL, "LOGIN redacted: %s", l);
	strcpy(l, "B003 AUTHENTICATE XOAUTH2 dXNlcj1hbGljZQFhdXRoPUJlYXJlciBleUo=\r\n");
	mb_redact_line(l, sizeof(l));
	ok(strstr(l, "dXNlcj") == NULL && strstr(l, "AUTHENTICATE XOAUTH2") != NULL,
	   "AUTHENTICATE initial response redacted: %s", l);
	strcpy(l, "B003 AUTHENTICATE XOAUTH2\r\n");
	mb_redact_line(l, sizeof(l));
	is(l, "B003 AUTHENTICATE XOAUTH2\r\n", "AUTHENTICATE without response kept");
	strcpy(l, "PASS Secret-Pw\r\n");
	mb_redact_line(l, sizeof(l));
	ok(strstr(l, "Secret") == NULL, "PASS redacted");
	strcpy(l, "AUTH XOAUTH2 dXNlcj1hbGljZQ==\r\n");
	mb_redact_line(l, sizeof(l));
	ok(strstr(l, "dXNl") == NULL && strncmp(l, "AUTH XOAUTH2", 12) == 0,
	   "AUTH initial response redacted");
	strcpy(l, "dXNlcj1hbGljZQFhdXRoPUJlYXJlciBleUo=\r\n");
	mb_redact_line(l, sizeof(l));
	ok(strstr(l, "dXNl") == NULL, "bare SASL response redacted");
	{
		/* a password cut at the end of a small buffer: no overflow */
		char small[16];
		memcpy(small, "A1 LOGIN u pw", 14);
		mb_redact_line(small, 14);
		ok(strcmp(small, "A1 LOGIN [red") == 0,
		   "redaction stays inside the buffer");
	}
	strcpy(l, "QUIT\r\n");
	mb_redact_line(l, sizeof(l));
	is(l, "QUIT\r\n", "QUIT kept");
	strcpy(l, "A004 UID FETCH 1:3 (BODY.PEEK[HEADER])\r\n");
	mb_redact_line(l, sizeof(l));
	is(l, "A004 UID FETCH 1:3 (BODY.PEEK[HEADER])\r\n", "ordinary command kept");

	{
		const char *r = "* OK ready\r\n+ eyJzdGF0dXMiOiI0MDEifQ==\r\n"
				"A001 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n";
		mb_last_line(r, strlen(r), out, sizeof(out));
		is(out, "A001 NO [AUTHENTICATIONFAILED] Authentication failed.", "last line");
		r = "* OK ready\r\nA001 NO [AUTHENTICATIONFAILED] x\r\n+ eyJz\r\n";
		mb_last_line(r, strlen(r), out, sizeof(out));
		is(out, "A001 NO [AUTHENTICATIONFAILED] x", "SASL continuation skipped");
		r = "+OK\r\n-ERR Message is deleted.\r\n+OK Logging out, messages deleted.\r\n";
		mb_last_line(r, strlen(r), out, sizeof(out));
		is(out, "-ERR Message is deleted.", "POP refusal preferred to the QUIT answer");
		r = "* 1 FETCH (UID 1)\r\nA003 NO [CANNOT] nope\r\n* BYE Logging out\r\nA004 OK x\r\n";
		mb_last_line(r, strlen(r), out, sizeof(out));
		is(out, "* BYE Logging out", "BYE preferred");
		r = "+OK\r\n-ERR [AUTH] Authentication failed.\r\n";
		mb_last_line(r, strlen(r), out, 10);
		is(out, "-ERR [AUT", "last line capped");
		mb_last_line(NULL, 0, out, sizeof(out));
		is(out, "", "no response");
		r = "B001 OK caps\r\n+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJtYWlsIn0=\r\n";
		mb_login_reply(r, strlen(r), out, sizeof(out));
		is(out, "SASL error {\"status\":\"401\",\"schemes\":\"bearer\",\"scope\":\"mail\"}",
		   "XOAUTH2 error challenge decoded");
		r = "A001 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n";
		mb_login_reply(r, strlen(r), out, sizeof(out));
		is(out, "A001 NO [AUTHENTICATIONFAILED] Authentication failed.", "plain refusal kept");
		r = "+ AAECAw==\r\n";
		mb_login_reply(r, strlen(r), out, sizeof(out));
		ok(strncmp(out, "SASL", 4) != 0, "binary challenge not shown");
	}
}

/* ------------------------------------------------------------------ */
/* scripted IMAP server on 127.0.0.1 (plain TCP): what Dovecot cannot be
 * made to do in the mail world (no UIDPLUS, a changed UIDVALIDITY) */

struct step {
	const char *expect;     /* substring of the client's command */
	char untagged[1024];    /* sent before the tagged answer */
	const char *status;     /* "OK done", "NO ...", NULL = close at once */
	int used;
	const char *bulk;       /* sent before untagged (large answers) */
};

struct script {
	int lfd;
	int port;
	const char *greeting;
	struct step *steps;
	size_t n;
	int max_conns;
	int conns;
	char log[65536];
	int unexpected;
};

static void *serve(void *arg)
{
	struct script *sc = arg;

	for (sc->conns = 0; sc->conns < sc->max_conns; sc->conns++) {
		struct pollfd pf = { sc->lfd, POLLIN, 0 };
		char line[2048];
		FILE *in;
		int fd;

		if (poll(&pf, 1, 5000) <= 0)
			break;
		if ((fd = accept(sc->lfd, NULL, NULL)) < 0)
			break;
		if (write(fd, sc->greeting, strlen(sc->greeting)) < 0) {
			close(fd);
			continue;
		}
		in = fdopen(dup(fd), "r");
		while (in && fgets(line, sizeof(line), in)) {
			char tag[32] = "", out[2048];
			struct step *st = NULL;
			size_t l = strlen(sc->log);

			snprintf(sc->log + l, sizeof(sc->log) - l, "%s", line);
			sscanf(line, "%31s", tag);
			for (size_t i = 0; i < sc->n; i++)
				if (!sc->steps[i].used && strstr(line, sc->steps[i].expect)) {
					st = &sc->steps[i];
					break;
				}
			if (!st) {
				sc->unexpected++;
				snprintf(out, sizeof(out), "%s BAD unexpected\r\n", tag);
				if (write(fd, out, strlen(out)) < 0)
					break;
				continue;
			}
			st->used = 1;
			for (size_t o = 0, bl = st->bulk ? strlen(st->bulk) : 0; o < bl;) {
				ssize_t w = write(fd, st->bulk + o, bl - o);
				if (w <= 0)
					break;
				o += (size_t)w;
			}
			if (write(fd, st->untagged, strlen(st->untagged)) < 0)
				break;
			if (!st->status)
				break;
			snprintf(out, sizeof(out), "%s %s\r\n", tag, st->status);
			if (write(fd, out, strlen(out)) < 0)
				break;
			if (strstr(line, "LOGOUT"))
				break;
		}
		if (in)
			fclose(in);
		close(fd);
	}
	return NULL;
}

static int script_listen(struct script *sc)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int one = 1;

	sc->lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(sc->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(sc->lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(sc->lfd, 4) ||
	    getsockname(sc->lfd, (struct sockaddr *)&sa, &sl))
		return -1;
	sc->port = ntohs(sa.sin_port);
	return 0;
}

static void script_params(struct mailbox_params *p, int port)
{
	memset(p, 0, sizeof(*p));
	p->protocol = PROTO_IMAP;
	p->host = "127.0.0.1";
	p->port = port;
	p->tls = TLSM_NONE;
	p->user = "u@x.test";
	p->password = "Script-Canary-Pw";
	p->timeout_s = 10;
}

#define GREETING "* OK [CAPABILITY IMAP4rev1] scripted\r\n"
#define CAPS "* CAPABILITY IMAP4rev1\r\n"
#define SELECTED(v) "* 2 EXISTS\r\n* OK [UIDVALIDITY " v "] x\r\n"

/* Without UIDPLUS the EXPUNGE at close comes only after UID SEARCH DELETED
 * found no \Deleted message but ours; with another client's (foreign) one
 * nothing is expunged and the close still succeeds (delete pending). */
static void test_script_no_uidplus(int foreign)
{
	static const char h5[] = "Subject: five\r\n\r\n", h7[] = "Subject: seven\r\n\r\n";
	struct step steps[] = {
		{ "CAPABILITY", CAPS, "OK caps", 0, NULL },
		{ "LOGIN", "", "OK logged in", 0, NULL },
		{ "SELECT \"INBOX\"", SELECTED("42"), "OK [READ-WRITE] selected", 0, NULL },
		{ "CAPABILITY", CAPS, "OK caps", 0, NULL },
		{ "UID FETCH 1:* (UID INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS",
		  "", "OK fetched", 0, NULL },
		{ "UID STORE 5 +FLAGS.SILENT (\\Deleted)", "", "OK stored", 0, NULL },
		{ "UID SEARCH DELETED", "", "OK searched", 0, NULL },
		{ "EXPUNGE", "* 1 EXPUNGE\r\n", "OK expunged", 0, NULL },
		{ "LOGOUT", "* BYE bye\r\n", "OK bye", 0, NULL },
	};
	struct script sc;
	struct mailbox_params p;
	struct mailbox *mb = NULL;
	struct mailbox_item *items = NULL;
	struct ms_err err = MS_ERR_INIT;
	pthread_t th;
	size_t n = 0;

	/* out of UID order, UID 5's data split over two responses, and an
	 * unsolicited FLAGS change: the listing still comes out right */
	snprintf(steps[4].untagged, sizeof(steps[4].untagged),
		 "* 2 FETCH (UID 7 INTERNALDATE \"28-Nov-2026 01:35:35 +0000\" RFC822.SIZE 200 "
		 "BODY[HEADER.FIELDS (DATE FROM)]<0> {%zu}\r\n%s)\r\n"
		 "* 1 FETCH (UID 5 INTERNALDATE \"28-Nov-2026 01:35:34 +0000\" RFC822.SIZE 100)\r\n"
		 "* 1 FETCH (UID 5 BODY[HEADER.FIELDS (DATE FROM)]<0> {%zu}\r\n%s)\r\n"
		 "* 2 FETCH (FLAGS (\\Seen))\r\n",
		 strlen(h7), h7, strlen(h5), h5);
	snprintf(steps[6].untagged, sizeof(steps[6].untagged), "%s",
		 foreign ? "* SEARCH 5 9\r\n" : "* SEARCH 5\r\n");
	memset(&sc, 0, sizeof(sc));
	sc.greeting = GREETING;
	sc.steps = steps;
	sc.n = sizeof(steps) / sizeof(steps[0]);
	sc.max_conns = 1;
	if (!ok(script_listen(&sc) == 0, "scripted server listens"))
		return;
	pthread_create(&th, NULL, serve, &sc);
	script_params(&p, sc.port);
	ok(mailbox_open(&mb, &p, &err) == 0, "script: open %s", err.msg);
	if (mb) {
		ok(mailbox_list(mb, &items, &n, &err) == 0 && n == 2, "script: two listed %s",
		   err.msg);
		if (n == 2) {
			is(items[0].key, "imap:42:5", "script: key of UID 5");
			is(items[1].key, "imap:42:7", "script: key of UID 7");
			ok(items[1].size == 200 && items[1].received == 1795829735 &&
			   items[0].size == 100 && items[0].received == 1795829734,
			   "script: size and INTERNALDATE");
		}
		ok(mailbox_fetch_headers(mb, &err) == 0, "script: headers %s", err.msg);
		if (n == 2) {
			is(items[0].headers, h5, "script: header block of UID 5");
			is(items[1].headers, h7, "script: header block of UID 7");
			ok(mailbox_delete(mb, &items[0], &err) == 0, "script: delete %s", err.msg);
		}
		ok(mailbox_close(mb, &err) == 0, "script: close %s", err.msg);
	}
	pthread_join(th, NULL);
	close(sc.lfd);
	ok(strstr(sc.log, "UID EXPUNGE") == NULL, "script: no UID EXPUNGE without UIDPLUS");
	ok(steps[6].used, "script: UID SEARCH DELETED before any EXPUNGE");
	if (foreign)
		ok(!steps[7].used, "script: another client's \\Deleted message: no EXPUNGE");
	else
		ok(steps[7].used, "script: only ours \\Deleted: EXPUNGE at close");
	is_int(sc.unexpected, 0, "script: no unexpected command");
	if (sc.unexpected)
		printf("# %s", sc.log);
}

static void test_script_uidvalidity_changed(void)
{
	struct step steps[] = {
		{ "CAPABILITY", CAPS, "OK caps", 0, NULL },
		{ "LOGIN", "", "OK logged in", 0, NULL },
		{ "SELECT \"INBOX\"", SELECTED("42"), "OK [READ-WRITE] selected", 0, NULL },
		{ "CAPABILITY", "* CAPABILITY IMAP4rev1 UIDPLUS\r\n", "OK caps", 0, NULL },
		{ "UID FETCH 1:* (UID INTERNALDATE", "* 1 FETCH (UID 5 RFC822.SIZE 10)\r\n",
		  "OK fetched", 0, NULL },
		/* the session ends under us, as Exchange does */
		{ "UID STORE", "* BYE Session invalidated - AccessTokenExpired\r\n", NULL, 0, NULL },
		{ "CAPABILITY", CAPS, "OK caps", 0, NULL },
		{ "LOGIN", "", "OK logged in", 0, NULL },
		{ "SELECT \"INBOX\"", SELECTED("43"), "OK [READ-WRITE] selected", 0, NULL },
		{ "LOGOUT", "* BYE bye\r\n", "OK bye", 0, NULL },
	};
	struct script sc;
	struct mailbox_params p;
	struct mailbox *mb = NULL;
	struct mailbox_item *items = NULL;
	struct ms_err err = MS_ERR_INIT;
	pthread_t th;
	size_t n = 0;
	long conns = 0;

	memset(&sc, 0, sizeof(sc));
	sc.greeting = GREETING;
	sc.steps = steps;
	sc.n = sizeof(steps) / sizeof(steps[0]);
	sc.max_conns = 2;
	if (!ok(script_listen(&sc) == 0, "scripted server listens"))
		return;
	pthread_create(&th, NULL, serve, &sc);
	script_params(&p, sc.port);
	ok(mailbox_open(&mb, &p, &err) == 0, "script2: open %s", err.msg);
	if (mb) {
		ok(mailbox_list(mb, &items, &n, &err) == 0 && n == 1, "script2: listed");
		if (n == 1) {
			ok(mailbox_delete(mb, &items[0], &err) == -1 &&
			   err.code == MS_ERR_PROTO && strstr(err.msg, "UIDVALIDITY") &&
			   strstr(err.msg, "from 42 to 43"),
			   "script2: a changed UIDVALIDITY stops the delete: %s", err.msg);
			ok(!strstr(err.msg, "Canary"), "script2: no password in the error");
		}
		mailbox_stats(mb, &conns, NULL);
		is_int(conns, 2, "script2: one reconnection");
		err_clear(&err);
		mailbox_close(mb, &err);
	}
	pthread_join(th, NULL);
	close(sc.lfd);
	{
		/* after the new SELECT no STORE may reach the server */
		const char *sel = strstr(sc.log, "SELECT");
		sel = sel ? strstr(sel + 1, "SELECT") : NULL;
		ok(sel && !strstr(sel, "UID STORE"), "script2: nothing stored in the new session");
	}
}

/* A message over 64 MB is refused before a byte of it is read. */
static void test_script_too_big(void)
{
	struct step steps[] = {
		{ "CAPABILITY", CAPS, "OK caps", 0, NULL },
		{ "LOGIN", "", "OK logged in", 0, NULL },
		{ "EXAMINE \"INBOX\"", SELECTED("42"), "OK [READ-ONLY] examined", 0, NULL },
		{ "CAPABILITY", CAPS, "OK caps", 0, NULL },
		{ "UID FETCH 1:* (UID INTERNALDATE", "* 1 FETCH (UID 9 RFC822.SIZE 70000000)\r\n",
		  "OK fetched", 0, NULL },
		{ "LOGOUT", "* BYE bye\r\n", "OK bye", 0, NULL },
	};
	struct script sc;
	struct mailbox_params p;
	struct mailbox *mb = NULL;
	struct mailbox_item *items = NULL;
	struct ms_err err = MS_ERR_INIT;
	pthread_t th;
	size_t n = 0;

	memset(&sc, 0, sizeof(sc));
	sc.greeting = GREETING;
	sc.steps = steps;
	sc.n = sizeof(steps) / sizeof(steps[0]);
	sc.max_conns = 1;
	if (!ok(script_listen(&sc) == 0, "scripted server listens"))
		return;
	pthread_create(&th, NULL, serve, &sc);
	script_params(&p, sc.port);
	p.read_only = 1;
	ok(mailbox_open(&mb, &p, &err) == 0, "script4: EXAMINE for read-only %s", err.msg);
	if (mb) {
		ok(mailbox_list(mb, &items, &n, &err) == 0 && n == 1, "script4: listed");
		if (n == 1) {
			struct buf out;
			buf_init(&out, 0);
			ok(mailbox_fetch_message(mb, &items[0], &out, &err) == -1 &&
			   err.code == MS_ERR_TOOBIG, "script4: 70 MB refused: %s", err.msg);
			buf_release(&out);
		}
		err_clear(&err);
		mailbox_close(mb, &err);
	}
	pthread_join(th, NULL);
	close(sc.lfd);
	ok(!strstr(sc.log, "BODY.PEEK[]") && !strstr(sc.log, "SELECT"),
	   "script4: nothing fetched, nothing selected read-write");
	is_int(sc.unexpected, 0, "script4: no unexpected command");
}

/* STARTTLS required but not offered: fail before any credential moves */
static void test_script_no_starttls(void)
{
	struct step steps[] = {
		{ "CAPABILITY", CAPS, "OK caps", 0, NULL },
		{ "LOGIN", "", "OK logged in", 0, NULL },
		{ "AUTHENTICATE", "", "OK logged in", 0, NULL },
		{ "LOGOUT", "* BYE bye\r\n", "OK bye", 0, NULL },
	};
	struct script sc;
	struct mailbox_params p;
	struct mailbox *mb = NULL;
	struct ms_err err = MS_ERR_INIT;
	pthread_t th;

	memset(&sc, 0, sizeof(sc));
	sc.greeting = GREETING;
	sc.steps = steps;
	sc.n = sizeof(steps) / sizeof(steps[0]);
	sc.max_conns = 1;
	if (!ok(script_listen(&sc) == 0, "scripted server listens"))
		return;
	pthread_create(&th, NULL, serve, &sc);
	script_params(&p, sc.port);
	p.tls = TLSM_STARTTLS;
	ok(mailbox_open(&mb, &p, &err) == -1 && err.code == MS_ERR_TLS,
	   "script3: no STARTTLS offered is a TLS error: %s", err.msg);
	ok(strstr(err.msg, "no STARTTLS") && strstr(err.msg, "SecurityProtocol=NONE"),
	   "script3: the error names SecurityProtocol=NONE as the opt-in");
	pthread_join(th, NULL);
	close(sc.lfd);
	ok(!strstr(sc.log, "LOGIN") && !strstr(sc.log, "AUTHENTICATE") &&
	   !strstr(sc.log, "Canary"), "script3: no credentials sent in clear");
}


/* A server that wants TLS offers LOGINDISABLED and no mechanism before
 * STARTTLS: with TLSM_NONE libcurl sends no credential and gives up.  The
 * error says why, names StartTLS=True, and does not quote the CAPABILITY's
 * OK as a refusal (what Cyrus with allowplaintext: no showed). */
static void test_script_logindisabled(void)
{
	struct step steps[] = {
		{ "CAPABILITY", "* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n",
		  "OK Completed", 0, NULL },
		{ "LOGIN", "", "OK logged in", 0, NULL },
		{ "AUTHENTICATE", "", "OK logged in", 0, NULL },
		{ "LOGOUT", "* BYE bye\r\n", "OK bye", 0, NULL },
	};
	struct script sc;
	struct mailbox_params p;
	struct mailbox *mb = NULL;
	struct ms_err err = MS_ERR_INIT;
	pthread_t th;

	memset(&sc, 0, sizeof(sc));
	sc.greeting = "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] scripted\r\n";
	sc.steps = steps;
	sc.n = sizeof(steps) / sizeof(steps[0]);
	sc.max_conns = 1;
	if (!ok(script_listen(&sc) == 0, "scripted server listens"))
		return;
	pthread_create(&th, NULL, serve, &sc);
	script_params(&p, sc.port);
	ok(mailbox_open(&mb, &p, &err) == -1 && err.code == MS_ERR_AUTH,
	   "logindisabled: open fails as a login problem: %s", err.msg);
	ok(strstr(err.msg, "accepts no login without TLS") &&
	   strstr(err.msg, "LOGINDISABLED") && strstr(err.msg, "StartTLS=True"),
	   "logindisabled: says why and names StartTLS=True");
	ok(!strstr(err.msg, "OK Completed") && !strstr(err.msg, "refused"),
	   "logindisabled: no OK quoted as a refusal");
	pthread_join(th, NULL);
	close(sc.lfd);
	ok(!strstr(sc.log, "LOGIN ") && !strstr(sc.log, "AUTHENTICATE") &&
	   !strstr(sc.log, "Canary"), "logindisabled: no credentials sent");
}


/* Answers far over libcurl's 300 KB: 2,000 messages listed with their
 * header blocks in one UID FETCH (1.4 MB), on one connection; then an
 * over-long line and an absurd literal are refused, not trusted. */
#define SCRIPT_N 2000
static void test_script_large(void)
{
	struct step steps[] = {
		{ "CAPABILITY", "* CAPABILITY IMAP4rev1 UIDPLUS\r\n", "OK caps", 0, NULL },
		{ "LOGIN", "", "OK logged in", 0, NULL },
		{ "SELECT \"INBOX\"", "* 2000 EXISTS\r\n* OK [UIDVALIDITY 9] x\r\n",
		  "OK [READ-WRITE] selected", 0, NULL },
		{ "CAPABILITY", "* CAPABILITY IMAP4rev1 UIDPLUS\r\n", "OK caps", 0, NULL },
		{ "UID FETCH 1:* (UID INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS", "",
		  "OK fetched", 0, NULL },
		{ "UID FETCH 7 (UID RFC822.SIZE BODY.PEEK[])", "", "OK fetched", 0, NULL },
		{ "LOGOUT", "* BYE bye\r\n", "OK bye", 0, NULL },
	};
	struct script sc;
	struct mailbox_params p;
	struct mailbox *mb = NULL;
	struct mailbox_item *items = NULL;
	struct ms_err err = MS_ERR_INIT;
	struct buf list, longline;
	pthread_t th;
	size_t n = 0;
	long conns = 0, logins = 0;
	int all = 1;

	buf_init(&list, 0);
	for (int u = 1; u <= SCRIPT_N; u++) {
		char h[700];
		int hl = snprintf(h, sizeof(h), "Subject: scripted %d\r\n"
				  "From: <s@x.test>\r\nX-Pad: %0500d\r\n\r\n", u, u);
		buf_appendf(&list, &err, "* %d FETCH (UID %d INTERNALDATE "
			    "\"28-Nov-2026 01:35:34 +0000\" RFC822.SIZE %d BODY[HEADER.FIELDS "
			    "(SUBJECT FROM)]<0> {%d}\r\n%s)\r\n", u, u, 1000 + u, hl, h);
	}
	steps[4].bulk = list.data;
	/* a 2 MB line: more than any response line may be */
	buf_init(&longline, 0);
	buf_appends(&longline, "* 7 FETCH (UID 7 X-JUNK \"", &err);
	for (int i = 0; i < 2 * 1024; i++)
		buf_appendf(&longline, &err, "%01024d", i);
	buf_appends(&longline, "\")\r\n", &err);
	steps[5].bulk = longline.data;
	ok(!err.code, "script5: answers built %s", err.msg);

	memset(&sc, 0, sizeof(sc));
	sc.greeting = GREETING;
	sc.steps = steps;
	sc.n = sizeof(steps) / sizeof(steps[0]);
	sc.max_conns = 1;
	if (!ok(script_listen(&sc) == 0, "scripted server listens"))
		goto out;
	pthread_create(&th, NULL, serve, &sc);
	script_params(&p, sc.port);
	ok(mailbox_open(&mb, &p, &err) == 0, "script5: open %s", err.msg);
	if (mb) {
		ok(mailbox_list(mb, &items, &n, &err) == 0 && n == SCRIPT_N,
		   "script5: 2,000 listed (%zu) %s", n, err.msg);
		ok(n == SCRIPT_N && items[1999].size == 3000 &&
		   strcmp(items[1999].key, "imap:9:2000") == 0, "script5: the last one right");
		ok(mailbox_fetch_headers(mb, &err) == 0, "script5: 2,000 header blocks %s",
		   err.msg);
		for (size_t i = 0; i < n; i++) {
			char want[64];
			snprintf(want, sizeof(want), "Subject: scripted %zu\r\n", i + 1);
			if (!items[i].headers || strncmp(items[i].headers, want, strlen(want)) ||
			    items[i].headers_len < 500)
				all = 0;
		}
		ok(all && n == SCRIPT_N, "script5: every header block whole and right");
		mailbox_stats(mb, &conns, &logins);
		is_int(conns, 1, "script5: one connection");
		is_int(logins, 1, "script5: one login");
		if (n == SCRIPT_N) {
			struct buf m;
			buf_init(&m, 0);
			err_clear(&err);
			ok(mailbox_fetch_message(mb, &items[6], &m, &err) == -1 &&
			   err.code == MS_ERR_TOOBIG && strstr(err.msg, "line longer"),
			   "script5: a 2 MB response line is refused: %s", err.msg);
			buf_release(&m);
		}
		err_clear(&err);
		mailbox_close(mb, &err);
	}
	pthread_join(th, NULL);
	close(sc.lfd);
	is_int(sc.unexpected, 0, "script5: no unexpected command");
out:
	buf_release(&list);
	buf_release(&longline);
}

/* With params->since: one UID SEARCH SINCE (a day early), then one UID
 * FETCH from the first UID it found; what is older than since by
 * INTERNALDATE is dropped as the answer streams in. */
static void test_script_since(void)
{
	struct step steps[] = {
		{ "CAPABILITY", "* CAPABILITY IMAP4rev1 UIDPLUS\r\n", "OK caps", 0, NULL },
		{ "LOGIN", "", "OK logged in", 0, NULL },
		{ "SELECT \"INBOX\"", "* 9 EXISTS\r\n* OK [UIDVALIDITY 9] x\r\n",
		  "OK [READ-WRITE] selected", 0, NULL },
		{ "CAPABILITY", "* CAPABILITY IMAP4rev1 UIDPLUS\r\n", "OK caps", 0, NULL },
		{ "UID SEARCH 1:* SINCE 27-Nov-2026", "* SEARCH 12 8 9\r\n", "OK searched", 0, NULL },
		{ "UID FETCH 8:* (UID INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS",
		  "* 1 FETCH (UID 8 INTERNALDATE \"27-Nov-2026 23:00:00 +0000\" RFC822.SIZE 1)\r\n"
		  "* 2 FETCH (UID 9 INTERNALDATE \"28-Nov-2026 01:35:34 +0000\" RFC822.SIZE 2)\r\n"
		  "* 3 FETCH (UID 10 INTERNALDATE \"20-Nov-2026 01:35:34 +0000\" RFC822.SIZE 3)\r\n"
		  "* 4 FETCH (UID 12 INTERNALDATE \"28-Nov-2026 02:00:00 +0000\" RFC822.SIZE 4)\r\n",
		  "OK fetched", 0, NULL },
		{ "LOGOUT", "* BYE bye\r\n", "OK bye", 0, NULL },
	};
	struct script sc;
	struct mailbox_params p;
	struct mailbox *mb = NULL;
	struct mailbox_item *items = NULL;
	struct ms_err err = MS_ERR_INIT;
	pthread_t th;
	size_t n = 0;

	memset(&sc, 0, sizeof(sc));
	sc.greeting = GREETING;
	sc.steps = steps;
	sc.n = sizeof(steps) / sizeof(steps[0]);
	sc.max_conns = 1;
	if (!ok(script_listen(&sc) == 0, "scripted server listens"))
		return;
	pthread_create(&th, NULL, serve, &sc);
	script_params(&p, sc.port);
	p.since = 1795829734 - 3600;    /* 28-Nov-2026 00:35:34 UTC */
	ok(mailbox_open(&mb, &p, &err) == 0, "script7: open %s", err.msg);
	if (mb) {
		ok(mailbox_list(mb, &items, &n, &err) == 0 && n == 2, "script7: two since (%zu) %s",
		   n, err.msg);
		if (n == 2) {
			is(items[0].key, "imap:9:9", "script7: UID 9 kept");
			is(items[1].key, "imap:9:12", "script7: UID 12 kept");
			ok(items[0].headers && items[0].headers[0] == '\0',
			   "script7: no header fields is an empty block");
		}
		ok(mailbox_fetch_headers(mb, &err) == 0, "script7: headers need no command %s",
		   err.msg);
		err_clear(&err);
		mailbox_close(mb, &err);
	}
	pthread_join(th, NULL);
	close(sc.lfd);
	is_int(sc.unexpected, 0, "script7: no unexpected command");
	if (sc.unexpected)
		printf("# %s", sc.log);
}

/* Literals: an announced size beyond every cap is refused before a byte
 * is read. */
static void test_script_absurd_literal(void)
{
	struct step steps[] = {
		{ "CAPABILITY", "* CAPABILITY IMAP4rev1 UIDPLUS\r\n", "OK caps", 0, NULL },
		{ "LOGIN", "", "OK logged in", 0, NULL },
		{ "SELECT \"INBOX\"", "* 1 EXISTS\r\n* OK [UIDVALIDITY 9] x\r\n",
		  "OK [READ-WRITE] selected", 0, NULL },
		{ "CAPABILITY", "* CAPABILITY IMAP4rev1 UIDPLUS\r\n", "OK caps", 0, NULL },
		{ "UID FETCH 1:* (UID INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS",
		  "* 1 FETCH (UID 3 BODY[HEADER.FIELDS (SUBJECT)]<0> {99999999999}\r\nSubject: x",
		  NULL, 0, NULL },
		{ "LOGOUT", "* BYE bye\r\n", "OK bye", 0, NULL },
	};
	struct script sc;
	struct mailbox_params p;
	struct mailbox *mb = NULL;
	struct mailbox_item *items = NULL;
	struct ms_err err = MS_ERR_INIT;
	pthread_t th;
	size_t n = 0;

	memset(&sc, 0, sizeof(sc));
	sc.greeting = GREETING;
	sc.steps = steps;
	sc.n = sizeof(steps) / sizeof(steps[0]);
	sc.max_conns = 1;
	if (!ok(script_listen(&sc) == 0, "scripted server listens"))
		return;
	pthread_create(&th, NULL, serve, &sc);
	script_params(&p, sc.port);
	ok(mailbox_open(&mb, &p, &err) == 0, "script6: open %s", err.msg);
	if (mb) {
		ok(mailbox_list(mb, &items, &n, &err) == -1 && err.code == MS_ERR_TOOBIG,
		   "script6: a 100 GB literal is refused: %s", err.msg);
		err_clear(&err);
		mailbox_close(mb, &err);
	}
	pthread_join(th, NULL);
	close(sc.lfd);
}

/* How a connection is protected (issue 14, item 4); the INI side is
 * test_profile.c. */
static void test_tls_choose(void)
{
	is_int(mailbox_tls_choose(TLSL_UNSET, -1, 0), TLSM_IMPLICIT, "no port: implicit");
	is_int(mailbox_tls_choose(TLSL_UNSET, -1, 993), TLSM_IMPLICIT, "993: implicit");
	is_int(mailbox_tls_choose(TLSL_UNSET, -1, 995), TLSM_IMPLICIT, "995: implicit");
	is_int(mailbox_tls_choose(TLSL_UNSET, -1, 143), TLSM_STARTTLS, "143, empty: STARTTLS");
	is_int(mailbox_tls_choose(TLSL_UNSET, -1, 110), TLSM_STARTTLS, "110, empty: STARTTLS");
	is_int(mailbox_tls_choose(TLSL_UNSET, -1, 2143), TLSM_STARTTLS,
	       "another port, empty: STARTTLS");
	is_int(mailbox_tls_choose(TLSL_TLS1_2, -1, 143), TLSM_STARTTLS,
	       "143 with TLS1_2: STARTTLS (never implicit TLS on a plain port)");
	is_int(mailbox_tls_choose(TLSL_TLS1_2, -1, 2993), TLSM_IMPLICIT,
	       "another port with TLS1_2: implicit, as before");
	is_int(mailbox_tls_choose(TLSL_NONE, -1, 993), TLSM_NONE, "NONE: plaintext");
	is_int(mailbox_tls_choose(TLSL_NONE, 1, 143), TLSM_NONE, "NONE wins over StartTLS");
	is_int(mailbox_tls_choose(TLSL_UNSET, 1, 993), TLSM_STARTTLS, "StartTLS=True");
	is_int(mailbox_tls_choose(TLSL_UNSET, 0, 2143), TLSM_IMPLICIT, "StartTLS=False: implicit");
	is(mailbox_tls_mode_name(TLSM_STARTTLS), "starttls", "name starttls");
	is(mailbox_tls_mode_name(TLSM_IMPLICIT), "implicit", "name implicit");
	is(mailbox_tls_mode_name(TLSM_NONE), "none", "name none");

}

int main(void)
{
	test_tls_choose();
	test_dates();
	test_uidvalidity_caps();
	test_search();
	test_fetch();
	test_uid_set();
	test_pop();
	test_graph();
	test_redact_lastline();
	test_script_no_uidplus(0);
	test_script_no_uidplus(1);
	test_script_logindisabled();
	test_script_uidvalidity_changed();
	test_script_no_starttls();
	test_script_too_big();
	test_script_large();
	test_script_absurd_literal();
	test_script_since();
	return done_testing();
}
