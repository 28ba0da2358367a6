/*
 * test_mask.c - .NET regular expression semantics on PCRE2.
 */
#include "mail/mask.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static int m1(const char *pat, const char *subj)
{
	struct ms_err err = MS_ERR_INIT;
	struct mask *m;
	int rc;

	if (mask_compile(&m, pat, &err)) {
		printf("# compile '%s': %s\n", pat, err.msg);
		return -2;
	}
	rc = mask_match(m, subj, NULL);
	mask_free(m);
	return rc;
}

int main(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct mask_captures c;
	struct mask *m;

	/* search semantics */
	is_int(m1("PAYROLL", "JOB COMPLETE: PAYROLL 42"), 1, "match anywhere, not anchored");
	is_int(m1("^PAYROLL", "JOB COMPLETE: PAYROLL 42"), 0, "^ anchors at start");
	is_int(m1("payroll", "JOB COMPLETE: PAYROLL"), 0, "case-sensitive by default");
	is_int(m1("(?i)payroll", "JOB COMPLETE: PAYROLL"), 1, "(?i) inline option");
	is_int(m1("", "anything"), 1, "empty pattern matches");
	is_int(m1("\\AJob\\z", "Job"), 1, "\\A and \\z");
	is_int(m1("Job$", "Job\n"), 1, "$ before a final newline, as .NET");
	is_int(m1("Job\\z", "Job\n"), 0, "\\z is the very end");
	is_int(m1("a.b", "a\nb"), 0, ". does not match newline");
	is_int(m1("(?s)a.b", "a\nb"), 1, "(?s) singleline");

	/* Unicode classes, as .NET */
	is_int(m1("^\\d+$", "\xd9\xa3\xd9\xa4"), 1, "\\d matches Arabic-Indic digits");
	is_int(m1("^\\w+$", "Gr\xc3\xb6\xc3\x9f" "e"), 1, "\\w matches umlauts");
	is_int(m1("^M.rz$", "M\xc3\xa4rz"), 1, ". is one code point");
	is_int(m1("\\bM\xc3\xa4rz\\b", "f\xc3\xbcr M\xc3\xa4rz!"), 1, "\\b with Unicode");
	is_int(m1("x", "\xff\xfe x"), 1, "invalid UTF-8 subject still searched");

	/* captures and .NET numbering */
	ok(mask_compile(&m, "JOB (\\w+): (\\w+)(X)?", &err) == 0, "compile with groups");
	is_int(mask_group_count(m), 3, "three groups");
	is_int(mask_match(m, "xx JOB PAYROLL: DONE yy", &c), 1, "match with captures");
	is_int(c.n, 4, "whole match plus three groups");
	is(c.v[0], "JOB PAYROLL: DONE", "[[0]] whole match");
	is(c.v[1], "PAYROLL", "[[1]]");
	is(c.v[2], "DONE", "[[2]]");
	is(c.v[3], "", "unset group is empty");
	mask_captures_release(&c);
	is_int(mask_match(m, "nothing", &c), 0, "no match");
	ok(c.v == NULL && c.n == 0, "no match: captures empty");
	mask_captures_release(&c);
	mask_free(m);

	ok(mask_compile(&m, "(?<sched>\\w+)-(\\d+)-(?'job'\\w+)-(x)", &err) == 0,
	   "named groups (?<n>) and (?'n')");
	is_int(mask_match(m, "S1-42-J9-x", &c), 1, "named match");
	is(c.v[1], "42", ".NET numbers unnamed groups first: [[1]]");
	is(c.v[2], "x", ".NET: [[2]] second unnamed group");
	is(c.v[3], "S1", ".NET: named groups after: [[3]] sched");
	is(c.v[4], "J9", ".NET: [[4]] job");
	mask_captures_release(&c);
	mask_free(m);

	ok(mask_compile(&m, "(?:(?<v>a\\d)|(?<v>b\\d))(c)", &err) == 0,
	   "duplicate names allowed");
	is_int(mask_group_count(m), 2, "duplicate name is one .NET group");
	is_int(mask_match(m, "b7c", &c), 1, "dup match");
	is(c.v[1], "c", "dup: unnamed first");
	is(c.v[2], "b7", "dup: the set alternative wins");
	mask_captures_release(&c);
	mask_free(m);

	ok(mask_compile(&m, "(?n)(a)(?<k>b)", &err) == 0, "(?n) explicit capture");
	is_int(mask_group_count(m), 1, "(?n): only the named group captures");
	mask_free(m);
	is_int(m1("(?x) a b # comment", "ab"), 1, "(?x) ignore whitespace");

	/* errors */
	err_clear(&err);
	ok(mask_compile(&m, "JOB (\\w+", &err) == -1, "invalid pattern fails");
	is_int(err.code, MS_ERR_CONFIG, "invalid pattern: config error");
	is(err.msg, "invalid regular expression at offset 8: missing closing parenthesis",
	   "invalid pattern: PCRE2 message with offset");
	ok(m == NULL, "invalid pattern: no mask");
	err_clear(&err);
	ok(mask_compile(&m, "[a-z-[aeiou]]", &err) == -1 &&
	   strstr(err.msg, "subtraction") && strstr(err.msg, "offset 4"),
	   ".NET class subtraction refused: %s", err.msg);
	err_clear(&err);
	ok(mask_compile(&m, "[[:alpha:]-]x", &err) == 0, "posix class then '-' is fine");
	mask_free(m);
	err_clear(&err);
	ok(mask_compile(&m, "\\Q-[\\E", &err) == 0, "\\Q-[\\E literal is fine");
	mask_free(m);

	/* catastrophic backtracking stops */
	{
		char subj[64];
		time_t t0 = time(NULL);
		memset(subj, 'a', 40);
		subj[40] = '!';
		subj[41] = '\0';
		ok(mask_compile(&m, "^(a+)+$", &err) == 0, "evil pattern compiles");
		is_int(mask_match(m, subj, &c), -1, "evil pattern hits the limit: -1");
		ok(c.v == NULL, "limit: no captures");
		ok(time(NULL) - t0 < 5, "limit: returns quickly");
		mask_captures_release(&c);
		mask_free(m);
	}
	mask_free(NULL);
	return done_testing();
}
