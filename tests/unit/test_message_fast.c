/*
 * test_message_fast.c - message_parse_headers_fast() gives what
 * message_parse(..., headers_only = 1, ...) gives through GMime: every
 * file of tests/data/mime/, hostile header blocks, every prefix of a
 * block and 4,000 random ones (run from the top of the tree).
 */
#include "mail/message.h"
#include "base/fsutil.h"
#include "tap.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef RANDOM_BLOCKS
#define RANDOM_BLOCKS 6000
#endif

/* message.c's cut of the header block */
static size_t header_block_len(const char *data, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (data[i] != '\n')
			continue;
		if (data[i + 1] == '\n')
			return i + 1;
		if (data[i + 1] == '\r' && i + 2 < len && data[i + 2] == '\n')
			return i + 1;
	}
	return len;
}

/* The reference is GMime's whole-message parse of the header block
 * alone, which is what message_parse(headers_only = 1) did before it
 * was routed to the fast path, and still does for its header fields. */
static int same(const char *what, const char *data, size_t len)
{
	struct message a, b;
	struct ms_err ea = MS_ERR_INIT, eb = MS_ERR_INIT;
	int ra = message_parse(&a, data, header_block_len(data, len), 0, 0, &ea);
	int rb = message_parse_headers_fast(&b, data, len, &eb);
	int eq = ra == rb;

	if (ra == 0 && rb == 0) {
		eq = strcmp(a.subject, b.subject) == 0 &&
		     strcmp(a.from_addr, b.from_addr) == 0 &&
		     strcmp(a.from_name, b.from_name) == 0 &&
		     strcmp(a.message_id, b.message_id) == 0 &&
		     a.has_date == b.has_date && a.date == b.date &&
		     a.date_offset_min == b.date_offset_min &&
		     b.has_body == 0 && b.n_body_lines == 0 && b.n_attachments == 0;
		if (!eq) {
			printf("# %s:\n#  gmime subject [%s] from [%s] [%s] id [%s] date %d %lld %d\n",
			       what, a.subject, a.from_addr, a.from_name, a.message_id,
			       a.has_date, (long long)a.date, a.date_offset_min);
			printf("#  fast  subject [%s] from [%s] [%s] id [%s] date %d %lld %d\n",
			       b.subject, b.from_addr, b.from_name, b.message_id,
			       b.has_date, (long long)b.date, b.date_offset_min);
		}
	}
	message_release(&a);
	message_release(&b);
	return eq;
}

static const char *const hostile[] = {
	"",
	"\r\n",
	"no header at all\r\n\r\nbody",
	"Subject: plain\r\n\r\n",
	"Subject: =?utf-8?B?w6lsw6hnYW50?=\r\n\r\n",
	"Subject: =?iso-8859-1?q?caf=E9?= au =?utf-8?q?lait?=\r\n\r\n",
	"Subject: =?x-unknown?q?abc?=\r\n\r\n",
	"Subject: =?utf-8?B?broken base64\r\n\r\n",
	"Subject: folded\r\n on\r\n\tthree lines\r\n\r\n",
	"Subject: first\r\nSubject: second\r\n\r\n",
	"SUBJECT:   upper  case   \r\n\r\n",
	"Subject : blank before colon\r\n\r\n",
	"Subject:\r\n\r\n",
	"Subject: raw \xe9t\xe9 8bit\r\n\r\n",
	"Subject: nul\0inside\r\n\r\n",
	"Subject: ctl \x01\x7f chars\r\n\r\n",
	"Subject: bare LF\nFrom: a@b.test\n\n",
	"Subject: no final newline",
	"Subject: x\r\nbad line without colon\r\nFrom: a@b.test\r\n\r\n",
	" leading fold\r\nSubject: x\r\n\r\n",
	"From: \"Name, Quoted\" <User@EXAMPLE.Test>\r\n\r\n",
	"From: =?utf-8?q?J=C3=B6rg?= <j@X.TEST>\r\n\r\n",
	"From: undisclosed-recipients:;\r\nSender: s@Sender.Test\r\n\r\n",
	"From: group: a@G.test, b@g.test;\r\n\r\n",
	"From: \r\nFrom: second@From.Test\r\n\r\n",
	"From: not an address\r\n\r\n",
	"From: <>\r\n\r\n",
	"From: a@b.test (comment name)\r\n\r\n",
	"From: <<<@@@>>>\r\n\r\n",
	"Sender: only@sender.test\r\n\r\n",
	"From: x\r\n\tfolded@Fold.Test\r\n\r\n",
	"From: Sender 12 <sender12@Example.Test>\r\n\r\n",
	"From: <a@B.c>\r\n\r\n",
	"From: a.b@C.d\r\n\r\n",
	"From: \"Q, N\" <a@B.test>\r\n\r\n",
	"From: \"  spaced \" <a@b.test>\r\n\r\n",
	"From: \"in  two\" <a@b.test>\r\n\r\n",
	"From: Name  Two <a@b.test>\r\n\r\n",
	"From: Name<a@b.test>\r\n\r\n",
	"From: a..b@c.test\r\n\r\n",
	"From: .a@b.test\r\n\r\n",
	"From: a@b.test.\r\n\r\n",
	"From: a@B\r\n\r\n",
	"From: a@xn--bcher-kva.example\r\n\r\n",
	"From: Box <a@XN--bcher-kva.example>\r\n\r\n",
	"From: \"=?utf-8?q?J=C3=B6rg?=\" <a@b.test>\r\n\r\n",
	"From: J\xc3\xb6rg <a@b.test>\r\n\r\n",
	"From: \"a\\\"b\" <a@b.test>\r\n\r\n",
	"From: a@b.test, c@d.test\r\n\r\n",
	"From: <a@b.test> trailing\r\n\r\n",
	"From: <a@b.test>   \r\n\r\n",
	"From: 123 <a@b.test>\r\n\r\n",
	"From: A <a@b.test>\r\n\r\n",
	"From: \"\" <a@b.test>\r\n\r\n",
	"From: \"x\"<a@b.test>\r\n\r\n",
	"From: Mr. X <a@b.test>\r\n\r\n",
	"From: a+tag-1_x@sub.Example-1.test\r\n\r\n",
	"From: <a@b.test\r\n\r\n",
	"From: a@b.test>\r\n\r\n",
	"From: \"Q\" <a@b.test>\r\nSender: s@s.test\r\n\r\n",
	"Subject: plain  two\tblanks  \r\n\r\n",
	"Subject: a = b ? c =?\r\n\r\n",
	"Subject: ?= =? ==??\r\n\r\n",
	"Message-ID: <id@example.test>\r\n\r\n",
	"Message-Id: id-without-brackets@x\r\n\r\n",
	"Message-ID: <>\r\n\r\n",
	"Message-ID: <a@b>\r\nMessage-ID: <c@d>\r\n\r\n",
	"Message-ID:    <  spaced  >  \r\n\r\n",
	"Message-ID: garbage ((( \r\n\r\n",
	"Message-ID: <folded\r\n @id>\r\n\r\n",
	"Date: Sat, 28 Nov 2026 01:35:34 +0100\r\n\r\n",
	"Date: 28 Nov 2026 01:35:34 -0500 (EST)\r\n\r\n",
	"Date: Sat, 28 Nov 2026 01:35:34 GMT\r\n\r\n",
	"Date: not a date\r\n\r\n",
	"Date: Sat, 28 Nov 2026 01:35:34 +0100\r\nDate: Sun, 29 Nov 2026 02:00:00 +0000\r\n\r\n",
	"Date: Sat, 28 Nov 2026\r\n 01:35:34 +0100\r\n\r\n",
	"Date: 31 Feb 2026 99:99:99 +9999\r\n\r\n",
	"From mbox-line Sat Nov 28 01:35:34 2026\r\nSubject: after mbox\r\n\r\n",
	"Subject: x\r\n\r\nSubject: in the body\r\n",
	"Content-Type: text/plain; charset=iso-8859-1\r\nSubject: caf\xe9\r\n\r\n",
	"Subject: =?utf-8?q?a?= =?utf-8?q?b?=\r\n\r\n",
	"Subject: =?utf-8*fr?q?langue?=\r\n\r\n",
	"Subject:=?utf-8?q?nospace?=\r\n\r\n",
	"X-Other: a\r\nsubject: lower\r\n\r\n",
};

int main(void)
{
	DIR *d = opendir("tests/data/mime");
	struct dirent *de;
	size_t files = 0;

	if (!ok(d != NULL, "tests/data/mime opened"))
		return done_testing();
	while ((de = readdir(d)) != NULL) {
		char path[512];
		char *data = NULL;
		size_t len = 0;
		struct ms_err err = MS_ERR_INIT;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "tests/data/mime/%s", de->d_name);
		if (fs_read_file(path, (size_t)64 << 20, &data, &len, &err)) {
			ok(0, "%s read: %s", path, err.msg);
			continue;
		}
		ok(same(de->d_name, data, len), "same fields as message_parse: %s", de->d_name);
		files++;
		free(data);
	}
	closedir(d);
	ok(files >= 10, "%zu files compared", files);
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		size_t len = strlen(hostile[i]);
		if (i == 14)    /* the one with a NUL inside */
			len = 29;
		ok(same(hostile[i], hostile[i], len), "same fields: hostile %zu", i);
	}
	/* every prefix of a real header block (cut anywhere) */
	{
		static const char blk[] =
			"Date: Sat, 28 Nov 2026 01:35:34 +0100\r\n"
			"From: =?utf-8?q?J=C3=B6rg?= <j@X.TEST>\r\n"
			"Subject: =?utf-8?B?w6lsw6hnYW50?=\r\n folded tail\r\n"
			"Message-ID: <cut@example.test>\r\n\r\n";
		int all = 1;
		for (size_t n = 0; n <= sizeof(blk) - 1; n++)
			if (!same("prefix", blk, n)) {
				printf("#  prefix of %zu bytes: [%.*s]\n", n, (int)n, blk);
				all = 0;
			}
		ok(all, "same fields on every prefix of a header block");
	}
	/* random blocks built from pieces that matter to a header parser
	 * (deterministic: the same blocks every run) */
	{
		static const char *const piece[] = {
			"Subject", "From", "Sender", "Message-ID", "Date", "X-Other",
			"subject", "FROM", ":", ": ", " : ", "\r\n", "\n", "\r", "\r\n ",
			"\r\n\t", " ", "\t", "<", ">", "@", "a@B.test", "\"Q, N\"",
			"=?utf-8?q?J=C3=B6rg?=", "=?iso-8859-1?b?6Q==?=", "=?", "?=",
			"(c)", ";", ",", "g:", "Sat, 28 Nov 2026 01:35:34 +0100",
			"28 Nov 2026", "+0100", "\xe9", "\xc3", "\x01", "\r\n\r\n", "From ",
			"x", "From: ", "From: Name <", "a.b@c.test>", "From: \"", "\" <", "xn--q",
			".", "..", "Word ", "12",
		};
		const size_t np = sizeof(piece) / sizeof(piece[0]);
		unsigned long long r = 0x9e3779b97f4a7c15ULL;
		char blk[2048];
		int all = 1, shown = 0;

		for (int it = 0; it < RANDOM_BLOCKS; it++) {
			size_t n = 0;
			int k;
			r = r * 6364136223846793005ULL + 1442695040888963407ULL;
			k = 1 + (int)((r >> 33) % 40);
			for (int j = 0; j < k; j++) {
				const char *pc;
				size_t pl;
				r = r * 6364136223846793005ULL + 1442695040888963407ULL;
				pc = piece[(r >> 33) % np];
				pl = strlen(pc);
				if (n + pl >= sizeof(blk))
					break;
				memcpy(blk + n, pc, pl);
				n += pl;
			}
			if (!same("random", blk, n)) {
				if (shown++ < 20) {
					printf("#  random block %d: [", it);
					for (size_t c = 0; c < n; c++)
						if (blk[c] == '\r')
							printf("\\r");
						else if (blk[c] == '\n')
							printf("\\n");
						else if (blk[c] == '\t')
							printf("\\t");
						else
							putchar(blk[c]);
					printf("]\n");
				}
				all = 0;
			}
		}
		ok(all, "same fields on %d random header blocks", RANDOM_BLOCKS);
	}
	/* many From headers: the first mailbox is in the 70th; then the
	 * same with none (Sender after them) */
	{
		static char big[8192];
		size_t n = 0;
		for (int i = 0; i < 69; i++)
			n += (size_t)snprintf(big + n, sizeof(big) - n, "From: group%d:;\r\n", i);
		n += (size_t)snprintf(big + n, sizeof(big) - n,
				      "From: Seventy <x70@Example.Test>\r\nSender: s@s.test\r\n\r\n");
		ok(same("70 From", big, n), "same fields: the 70th From header");
		n = 0;
		for (int i = 0; i < 100; i++)
			n += (size_t)snprintf(big + n, sizeof(big) - n, "From: group%d:;\r\n", i);
		n += (size_t)snprintf(big + n, sizeof(big) - n,
				      "Sender: First <s1@S.test>\r\nSender: s2@s.test\r\n\r\n");
		ok(same("100 From, Sender", big, n), "same fields: Sender after 100 empty From");
	}
	/* how much faster (a diagnostic, not a test) */
	{
		static const char blk[] =
			"Date: Sat, 28 Nov 2026 01:35:34 +0100\r\n"
			"From: \"Job Bot\" <jobs.bot@Example.com>\r\n"
			"Subject: =?utf-8?B?w6lsw6hnYW50?= JOB COMPLETE: PAYROLL 42\r\n"
			"Message-ID: <abc.123@example.com>\r\n"
			"Content-Type: text/plain; charset=utf-8\r\nMIME-Version: 1.0\r\n\r\n";
		struct timespec t0, t1, t2;
		struct ms_err err = MS_ERR_INIT;
		int fine = 1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (int i = 0; i < 2000; i++) {
			struct message m;
			fine &= message_parse(&m, blk, sizeof(blk) - 1, 0, 0, &err) == 0;
			message_release(&m);
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		for (int i = 0; i < 2000; i++) {
			struct message m;
			fine &= message_parse_headers_fast(&m, blk, sizeof(blk) - 1, &err) == 0;
			message_release(&m);
		}
		clock_gettime(CLOCK_MONOTONIC, &t2);
		ok(fine, "2,000 blocks parsed both ways");
		printf("# GMime message: %.1f us a block, fast scan: %.1f us\n",
		       ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 2000 / 1e3,
		       ((t2.tv_sec - t1.tv_sec) * 1e9 + (t2.tv_nsec - t1.tv_nsec)) / 2000 / 1e3);
	}
	{
		struct message m;
		struct ms_err err = MS_ERR_INIT;
		ok(message_parse_headers_fast(&m, NULL, 0, &err) == 0 && strcmp(m.subject, "") == 0,
		   "NULL data is an empty message");
		message_release(&m);
	}
	return done_testing();
}
