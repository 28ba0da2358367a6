/*
 * test_event.c - token substitution, escaping and OpCon event lines.
 */
#include "mail/event.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

static size_t count(const char *s, char c)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == c;
	return n;
}

static int all_ascii_printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7E)
			return 0;
	return 1;
}

int main(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct event_fields f;
	const char *caps[] = { "JOB PAYROLL", "PAYROLL", "" };
	struct subst_var extra[] = {
		{ "SCHED", "Daily,Main", 1 },
		{ "untrusted", "a,b", 0 },
	};
	char *s = NULL, *line = NULL;

	memset(&f, 0, sizeof(f));
	f.sender = "bob@example.com";
	f.subject = "JOB PAYROLL done";
	f.date = "11/5/2026 8:00:00 AM";
	f.captures = caps;
	f.n_captures = 3;
	f.extra = extra;
	f.n_extra = 2;

	/* plain substitution */
	ok(event_substitute("$JOB:ADD,[[$DATE]],[[SCHED]],[[1]],FREQ,[[sender]]",
			    &f, SUBST_EVENT, &s, &err) == 0, "substitute");
	is(s, "$JOB:ADD,[[$DATE]],Daily,Main,PAYROLL,FREQ,bob@example.com",
	   "OpCon [[$DATE]] kept, trusted token keeps its comma, case-insensitive names");
	free(s);
	ok(event_substitute("[[$SCHEDULE DATE]] [[NOPE]] [[2]] [[9]] [[0]] [[untrusted]]",
			    &f, SUBST_EVENT, &s, &err) == 0, "substitute 2");
	is(s, "[[$SCHEDULE DATE]] [[NOPE]]  [[9]] JOB PAYROLL a;b",
	   "unknown and out-of-range tokens kept, empty group empty, untrusted comma escaped");
	free(s);
	ok(event_substitute("[[[1]]] [[1] [[", &f, SUBST_EVENT, &s, &err) == 0,
	   "odd brackets");
	is(s, "[PAYROLL] [[1] [[", "odd brackets handled");
	free(s);
	ok(event_substitute("[[a [[1]] [[]] [[[[1]]]]", &f, SUBST_EVENT, &s, &err) == 0,
	   "nested brackets");
	is(s, "[[a PAYROLL [[]] [[PAYROLL]]", "the token is the innermost [[..]]");
	free(s);

	/* hostile subject: one line, original field count */
	{
		const char *hostile = "x,$JOB:ADD,..\r\n$CONSOLE:DISPLAY,pwned\n\0";
		const char *tmpl = "$CONSOLE:DISPLAY,Mail [[SUBJECT]] from [[SENDER]]";
		size_t fields;
		f.subject = hostile;
		f.sender = "eve,\r\n@evil.example";
		ok(event_substitute(tmpl, &f, SUBST_EVENT, &s, &err) == 0,
		   "hostile: substitute");
		fields = count(tmpl, ',');
		is_int(count(s, ','), fields, "hostile: no field added");
		ok(!strchr(s, '\r') && !strchr(s, '\n'), "hostile: no line added");
		ok(event_render(s, "ocuser", "ocpw", &line, &err) == 0, "hostile: render");
		is_int(count(line, ','), fields + 2, "hostile: only user and password added");
		ok(!strchr(line, '\r') && !strchr(line, '\n'), "hostile: rendered line is one line");
		ok(all_ascii_printable(line), "hostile: printable ASCII");
		is(line, "$CONSOLE:DISPLAY,Mail x;$JOB:ADD;..  $CONSOLE:DISPLAY;pwned  "
		   "from eve;  @evil.example,ocuser,ocpw", "hostile: exact line");
		event_line_free(line);
		free(s);
		f.subject = "JOB PAYROLL done";
		f.sender = "bob@example.com";
	}

	/* a hostile value cannot smuggle a token either */
	f.subject = "[[SENDER]] [[1]]";
	ok(event_substitute("[[SUBJECT]]", &f, SUBST_EVENT, &s, &err) == 0, "no re-expansion");
	is(s, "[[SENDER]] [[1]]", "values are not expanded again");
	free(s);
	f.subject = "JOB PAYROLL done";

	/* non-ASCII */
	ok(event_escape("M\xc3\xbcller \xe2\x80\x93 \xe2\x82\xac 5 \xe2\x80\x9cq\xe2\x80\x9d "
			"\xc3\x9f \xe6\x9d\xb1 \xc3\xa9\xc3\xa8 \xc2\xb8 \xff",
			SUBST_EVENT, &s, &err) == 0, "escape non-ASCII");
	is(s, "Muller - EUR 5 \"q\" ss ? ee   ?", "transliterated or '?'");
	free(s);
	ok(event_escape("a\tb\x7f" "c\xc2\x85" "d,\xe2\x80\xa8", SUBST_LINE, &s, &err) == 0,
	   "escape line");
	is(s, "a b c d, ", "line mode: controls (C0, DEL, C1, U+2028) to blank, comma kept");
	free(s);
	ok(event_escape("a\r\nb\x01\xc3\xa9", SUBST_TEXT, &s, &err) == 0, "escape text");
	is(s, "a\nb \xc3\xa9", "text mode: LF kept, CR dropped, UTF-8 kept");
	free(s);
	ok(event_escape("a,\r\nb", SUBST_RAW, &s, &err) == 0, "escape raw");
	is(s, "a,\r\nb", "raw mode: verbatim");
	free(s);

	/* event_render */
	ok(event_render("  $JOB:ADD,[[$DATE]],S,J,F  \r\n", "u", "p", &line, &err) == 0,
	   "render trims");
	is(line, "$JOB:ADD,[[$DATE]],S,J,F,u,p", "credentials appended");
	event_line_free(line);
	ok(event_render("$JOB:ADD,x,S\xc3\xa9", "u", NULL, &line, &err) == 0,
	   "render unset password");
	is(line, "$JOB:ADD,x,Se,u,", "template transliterated, empty password field");
	event_line_free(line);
	ok(event_render("$CONSOLE:DISPLAY,hi,me,pw", NULL, "ignored", &line, &err) == 0,
	   "render without user");
	is(line, "$CONSOLE:DISPLAY,hi,me,pw", "no OpConUser: event as written");
	event_line_free(line);
	ok(event_render("$CONSOLE:DISPLAY,a\rb", "", NULL, &line, &err) == 0 &&
	   strcmp(line, "$CONSOLE:DISPLAY,a b") == 0, "empty user: nothing appended, CR gone");
	event_line_free(line);
	err_clear(&err);
	ok(event_render("JOB:ADD,x", "u", "p", &line, &err) == -1 &&
	   err.code == MS_ERR_CONFIG && line == NULL, "event without '$' refused");
	err_clear(&err);
	ok(event_render("$JOB:ADD,x", "u", "se,cret", &line, &err) == -1 &&
	   !strstr(err.msg, "se,cret"), "password with comma refused, not quoted");
	err_clear(&err);
	ok(event_render("$JOB:ADD,x", "u\n", "p", &line, &err) == -1,
	   "user with newline refused");

	/* log lines */
	f.event = "$JOB:ADD,x";
	f.reason = "No matching subjects found";
	f.subject = "evil\r\nsecond line";
	ok(event_log_line(NULL, EVENT_LOG_REJECT, &f, &s, &err) == 0, "default reject format");
	is(s, "11/5/2026 8:00:00 AM rejected from bob@example.com subject "
	   "\"evil  second line\": No matching subjects found", "reject line");
	free(s);
	ok(event_log_line("N/A", EVENT_LOG_ACCEPT, &f, &s, &err) == 0 &&
	   strstr(s, "accepted from bob@example.com"), "N/A format -> default accept");
	free(s);
	ok(event_log_line("[[DATE]]|[[EVENT]]|[[REASON]]", EVENT_LOG_EVENT, &f, &s, &err) == 0,
	   "custom format");
	is(s, "11/5/2026 8:00:00 AM|$JOB:ADD,x|No matching subjects found",
	   "custom format, commas kept in logs");
	free(s);

	/* date format */
	{
		char buf[64];
		setenv("TZ", "UTC", 1);
		tzset();
		event_format_date(1793865600, buf, sizeof(buf));
		is(buf, "11/5/2026 8:00:00 AM", "date: morning");
		event_format_date(1793865600 + 5 * 3600 + 7, buf, sizeof(buf));
		is(buf, "11/5/2026 1:00:07 PM", "date: afternoon");
		event_format_date(1793836800, buf, sizeof(buf));
		is(buf, "11/5/2026 12:00:00 AM", "date: midnight is 12 AM");
		event_format_date(1793880000, buf, sizeof(buf));
		is(buf, "11/5/2026 12:00:00 PM", "date: noon is 12 PM");
	}

	/* size cap */
	{
		char *big = malloc(EVENT_MAX_LEN + 2);
		memset(big, 'a', EVENT_MAX_LEN + 1);
		big[EVENT_MAX_LEN + 1] = '\0';
		f.subject = big;
		err_clear(&err);
		ok(event_substitute("[[SUBJECT]]", &f, SUBST_EVENT, &s, &err) == -1 &&
		   err.code == MS_ERR_TOOBIG && s == NULL, "over-long rendering refused");
		free(big);
	}
	return done_testing();
}
