/*
 * test_rules.c - the rules engine on real mails (tests/data/mime/) and
 * hand-built configurations (no config_load()).
 */
#include "ini/rules.h"
#include "ini/config.h"
#include "mail/event.h"
#include "base/fsutil.h"
#include "mail/message.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S(x) ((char *)(x))

/* 2026-11-05 12:00:00 UTC, a Thursday (TZ is UTC in this test) */
#define NOON ((time_t)1793880000)
#define AT(h, m) (NOON - 12 * 3600 + (h) * 3600 + (m) * 60)

static struct config_token tokens[] = {
	{ S("SCHED"), S("DailySched") },
	{ S("FINANCE"), S("alice@corp.example;Bob@Corp.Example") },
	{ S("PAYJOB"), S("PAY(\\w+)") },
};

static void base_config(struct config *cfg, struct config_rule *rules, size_t n)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->path = S("test.ini");
	cfg->tokens = tokens;
	cfg->n_tokens = sizeof(tokens) / sizeof(tokens[0]);
	cfg->rules = rules;
	cfg->n_rules = n;
}

static void rule(struct config_rule *r, const char *section, const char *mask,
		 char **events, size_t n_events)
{
	memset(r, 0, sizeof(*r));
	r->section = S(section);
	r->line = 10;
	r->subject_mask = S(mask);
	r->events = events;
	r->n_events = n_events;
}

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
	rc = message_parse(m, data, len, headers_only, 0, &err);
	free(data);
	return rc;
}

/* Compile cfg, evaluate the mail, keep the result. */
static int run(const struct config *cfg, const char *mail, time_t received,
	       struct rule_result *res)
{
	struct ms_err err = MS_ERR_INIT;
	struct rules *rs = NULL;
	struct message m;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	if (rules_compile(&rs, cfg, &err)) {
		printf("# compile: %s\n", err.msg);
		return -1;
	}
	for (size_t i = 0; i < rules_warning_count(rs); i++)
		printf("# warning: %s\n", rules_warning(rs, i));
	if (load(&m, mail, 0) == 0) {
		rc = rules_evaluate(rs, &m, received, res, &err);
		if (rc)
			printf("# evaluate: %s\n", err.msg);
	}
	message_release(&m);
	rules_free(rs);
	return rc;
}

/* Compile cfg; a configuration skipped as broken comes back as an error:
 * err->msg is its warning without "FILE:LINE: " and " ([..] skipped)",
 * err->line the LINE. */
static int compile_err(const struct config *cfg, struct ms_err *err)
{
	struct rules *rs = NULL;
	const char *w, *p;
	int rc;

	err_clear(err);
	rc = rules_compile(&rs, cfg, err);
	if (rc == 0 && (w = rules_warning(rs, 0)) && (p = strstr(w, ": "))) {
		const char *end = strstr(w, " ([");
		int line = 0;

		sscanf(w, "test.ini:%d:", &line);
		err_set_line(err, MS_ERR_CONFIG, line, "%.*s",
			     (int)((end ? end : w + strlen(w)) - (p + 2)), p + 2);
		rc = -1;
	}
	rules_free(rs);
	return rc;
}

static void test_subject_and_tokens(void)
{
	char *ev[] = { S("$JOB:ADD,[[$DATE]],[[SCHED]],PAY_[[1]],Daily"),
		       S("$CONSOLE:DISPLAY,[[SUBJECT]] from [[SENDER]] at [[DATE]] ([[0]])") };
	struct config_rule r[2];
	struct config cfg;
	struct rule_result res;

	rule(&r[0], "Configuration1", "NOPE (\\w+)", ev, 1);
	rule(&r[1], "Configuration2", "COMPLETE: [[PAYJOB]] (\\d+)", ev, 2);
	base_config(&cfg, r, 2);
	ok(run(&cfg, "plain.eml", NOON, &res) == 0, "subject: evaluates");
	ok(res.matched && res.reason == NULL, "subject: matched overall");
	is_int(res.n_rules, 2, "subject: one outcome per configuration");
	ok(!res.rules[0].matched && res.rules[0].stage == RULE_STAGE_SUBJECT,
	   "subject: Configuration1 did not match");
	is(res.rules[0].reason, "No matching subjects found", "subject: per-rule reason");
	ok(res.rules[1].matched, "subject: Configuration2 matched");
	is(res.rules[1].section, "Configuration2", "subject: section name");
	is_int(res.rules[1].n_captures, 3, "subject: captures kept");
	is(res.rules[1].captures[1], "ROLL", "subject: [Tokens] inside the mask");
	is_int(res.rules[1].n_events, 2, "subject: Event and Event2");
	is(res.rules[1].events[0], "$JOB:ADD,[[$DATE]],DailySched,PAY_ROLL,Daily",
	   "subject: event 1 rendered, OpCon token kept");
	/* Date: Tue, 03 Nov 2026 14:05:09 -0500 = 19:05:09 UTC */
	is(res.rules[1].events[1],
	   "$CONSOLE:DISPLAY,JOB COMPLETE: PAYROLL 42 from Jobs.Bot@example.com at "
	   "11/3/2026 7:05:09 PM (COMPLETE: PAYROLL 42)", "subject: event 2 rendered");
	is(res.date, "11/3/2026 7:05:09 PM", "subject: [[DATE]] is the date sent");
	is_int(res.n_events, 2, "subject: total events");
	rules_result_release(&res);

	/* no Date: header: received time */
	rule(&r[0], "Configuration1", "date test", ev + 1, 1);
	base_config(&cfg, r, 1);
	ok(run(&cfg, "date-missing.eml", NOON, &res) == 0 && res.matched, "no date: matched");
	is(res.date, "11/5/2026 12:00:00 PM", "no date: [[DATE]] is the received time");
	rules_result_release(&res);
}

static void test_invalid_config(void)
{
	char *ev[] = { S("$CONSOLE:DISPLAY,x") };
	struct config_rule r[2];
	struct config cfg;
	struct ms_err err;

	rule(&r[0], "Configuration1", "fine", ev, 1);
	rule(&r[1], "Configuration2", "JOB (\\w+", ev, 1);
	r[1].line = 42;
	base_config(&cfg, r, 2);
	ok(compile_err(&cfg, &err) == -1, "invalid regex refused");
	is_int(err.code, MS_ERR_CONFIG, "invalid regex: config error");
	is(err.msg, "[Configuration2] SubjectLineMask: invalid regular expression at "
	   "offset 8: missing closing parenthesis", "invalid regex: message names rule and key");
	is_int(err.line, 42, "invalid regex: section line");

	rule(&r[1], "Configuration2", "ok", ev, 1);
	r[1].qualifying_subject = S("(?<x");
	ok(compile_err(&cfg, &err) == -1 &&
	   strncmp(err.msg, "[Configuration2] QualifyingSubjectLine: invalid regular expression", 66) == 0,
	   "invalid qualifier: %s", err.msg);
	rule(&r[1], "Configuration2", "ok", ev, 1);
	r[1].attachment_mask = S("*.pdf");
	ok(compile_err(&cfg, &err) == -1 &&
	   strncmp(err.msg, "[Configuration2] AttachmentMask: invalid regular expression", 58) == 0,
	   "invalid attachment mask: %s", err.msg);

	{
		static const char *bad[] = { "2500-0100", "0800", "0800-2400x", "2400-0100",
					     "0860-0900", "8:00-9:00", "0800-0900-1000", "abcd-efgh" };
		size_t i;
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			rule(&r[1], "Configuration2", "ok", ev, 1);
			r[1].time_frame = S(bad[i]);
			ok(compile_err(&cfg, &err) == -1 && err.code == MS_ERR_CONFIG &&
			   strncmp(err.msg, "[Configuration2] AllowedTimeFrame: malformed", 44) == 0,
			   "time frame '%s' refused: %s", bad[i], err.msg);
		}
	}
	rule(&r[1], "Configuration2", "ok", ev, 1);
	r[1].allowed_senders = S("[[NOSUCH]]");
	ok(compile_err(&cfg, &err) == -1 &&
	   strncmp(err.msg, "[Configuration2] AllowedSenders: unknown token", 46) == 0,
	   "unknown token in AllowedSenders refused: %s", err.msg);
	r[1].allowed_senders = S(" ; , ");
	ok(compile_err(&cfg, &err) == -1 && strstr(err.msg, "no sender"),
	   "empty sender list refused");
	r[1].allowed_senders = S("any@");
	ok(compile_err(&cfg, &err) == -1 && strstr(err.msg, "empty domain"),
	   "any@ without domain refused");

	{
		int s, e;
		ok(rules_parse_time_frame("0000-2400", &s, &e) == 0 && s == 0 && e == 1440,
		   "0000-2400 parses");
		ok(rules_parse_time_frame(" 22:00 - 06:30 ", &s, &e) == 0 && s == 1320 && e == 390,
		   "HH:MM with blanks tolerated");
	}
}

/* Issue 14: a broken configuration is skipped with one warning naming
 * file, line and what is wrong; the others keep working; nothing with a
 * literal [[...]] or without $COMMAND: gets through. */
static void test_skip_broken(void)
{
	char *good[] = { S("$CONSOLE:DISPLAY,[[1]] [[SUBJECT]] [[$DATE]]") };
	char *nocmd[] = { S("CONSOLE:DISPLAY,hello") };
	char *beyond[] = { S("$CONSOLE:DISPLAY,[[3]]") };
	char *unknown[] = { S("$CONSOLE:DISPLAY,[[NOSUCH]]") };
	char *reason[] = { S("$CONSOLE:DISPLAY,[[REASON]]") };
	char *event[] = { S("$CONSOLE:DISPLAY,[[EVENT]]") };
	char *att[] = { S("$CONSOLE:DISPLAY,[[ATTACHMENT]]") };
	struct config_rule r[2];
	struct config cfg;
	struct ms_err err = MS_ERR_INIT;
	struct rules *rs = NULL;
	struct rule_result res;

	rule(&r[0], "Configuration1", "COMPLETE: (\\w+)", good, 1);
	rule(&r[1], "Configuration2", "COMPLETE", nocmd, 1);
	r[1].line = 17;
	base_config(&cfg, r, 2);
	ok(rules_compile(&rs, &cfg, &err) == 0, "one broken rule: the load goes on");
	is_int(rules_skipped(rs), 1, "the broken one is skipped");
	is_int(rules_warning_count(rs), 1, "reported once");
	is(rules_warning(rs, 0), "test.ini:17: [Configuration2] Event: 'CONSOLE:DISPLAY,hello' "
	   "is not an OpCon event (it must start with $COMMAND:, e.g. $JOB:ADD or "
	   "$CONSOLE:DISPLAY) ([Configuration2] skipped)", "warning: file, line, what");
	rules_free(rs);
	rs = NULL;
	ok(run(&cfg, "plain.eml", NOON, &res) == 0 && res.matched && res.n_rules == 1 &&
	   strcmp(res.rules[0].section, "Configuration1") == 0,
	   "the good rule still matches");
	rules_result_release(&res);

	r[0].events = nocmd;
	ok(rules_compile(&rs, &cfg, &err) == -1 && err.code == MS_ERR_CONFIG &&
	   strstr(err.msg, "every [ConfigurationN] is broken") &&
	   strstr(err.msg, "test.ini:10: [Configuration1]"),
	   "every rule broken: a configuration error: %s", err.msg);
	rules_free(rs);
	rs = NULL;
	r[0].events = good;

#define BROKEN(evs, mask, want) do { \
		rule(&r[1], "Configuration2", mask, evs, 1); \
		ok(compile_err(&cfg, &err) == -1 && strstr(err.msg, want), \
		   "refused at load: %s", err.msg); \
	} while (0)
	BROKEN(beyond, "(a)(b)", "[[3]] in '$CONSOLE:DISPLAY,[[3]]': the mask has only 2 groups");
	BROKEN(beyond, NULL, "there is no SubjectLineMask, so it has no groups");
	BROKEN(beyond, "x", "[[3]] in '$CONSOLE:DISPLAY,[[3]]': the SubjectLineMask has no groups");
	BROKEN(unknown, "x", "unknown token [[NOSUCH]]");
	BROKEN(reason, "x", "[[REASON]] has no value");
	BROKEN(event, "x", "[[EVENT]] has no value");
	BROKEN(att, "x", "[[ATTACHMENT]] in '$CONSOLE:DISPLAY,[[ATTACHMENT]]' needs ProcessAttachments=True");
	rule(&r[1], "Configuration2", "x", beyond, 1);
	r[1].time_frame = S("[[NOSUCH]]");
	ok(compile_err(&cfg, &err) == -1 && strstr(err.msg, "AllowedTimeFrame: unknown token"),
	   "unknown token in a time frame: %s", err.msg);
	rule(&r[1], "Configuration2", "x", good, 1);
	r[1].error = S("test.ini:23: [Configuration2] ProcessBody: not a boolean");
	ok(compile_err(&cfg, &err) == -1 && strstr(err.msg, "ProcessBody: not a boolean"),
	   "config.c's own finding is skipped the same way");
	r[1].error = NULL;

	/* AllowedTimeFrame=[[TOKEN]] works as documented */
	{
		static struct config_token tf[] = { { S("HOURS"), S("1100-1300") } };
		rule(&r[1], "Configuration2", "COMPLETE", good, 0);
		r[1].time_frame = S("[[HOURS]]");
		base_config(&cfg, r, 2);
		cfg.tokens = tf;
		cfg.n_tokens = 1;
		r[0].time_frame = S("[[hours]]");
		ok(run(&cfg, "plain.eml", NOON, &res) == 0 && res.matched,
		   "AllowedTimeFrame from a token: inside");
		rules_result_release(&res);
		ok(run(&cfg, "plain.eml", NOON - 2 * 3600, &res) == 0 && !res.matched &&
		   strcmp(res.reason, "Message received outside timeframe") == 0,
		   "AllowedTimeFrame from a token: outside");
		rules_result_release(&res);
		r[0].time_frame = NULL;
	}

	/* RejectEvent: [[REASON]] yes, [[EVENT]] and captures no */
	base_config(&cfg, r, 1);
	cfg.reject_event = S("$CONSOLE:DISPLAY,[[SCHED]] [[REASON]]");
	ok(rules_compile(&rs, &cfg, &err) == 0 && rules_warning_count(rs) == 0,
	   "RejectEvent with [[REASON]] and a [Tokens] name");
	is(rules_reject_event(rs), "$CONSOLE:DISPLAY,DailySched [[REASON]]",
	   "RejectEvent: [Tokens] substituted at load");
	rules_free(rs);
	rs = NULL;
	cfg.reject_event = S("$CONSOLE:DISPLAY,[[1]]");
	ok(rules_compile(&rs, &cfg, &err) == 0 && rules_skipped(rs) == 0 &&
	   !rules_reject_event(rs) && rules_warning_count(rs) == 1 &&
	   strstr(rules_warning(rs, 0), "test.ini: [Audit] RejectEvent: [[1]]") &&
	   strstr(rules_warning(rs, 0), "(RejectEvent not raised)"),
	   "RejectEvent with a capture: left out with a warning: %s",
	   rules_warning(rs, 0) ? rules_warning(rs, 0) : "");
	rules_free(rs);
#undef BROKEN
}

static void test_senders(void)
{
	char *ev[] = { S("$CONSOLE:DISPLAY,[[SENDER]]") };
	struct config_rule r[1];
	struct config cfg;
	struct rule_result res;
	static const struct { const char *list; int ok; } cases[] = {
		{ NULL, 1 },
		{ "ALL", 1 },
		{ "all", 1 },
		{ "jobs.bot@example.com", 1 },
		{ "JOBS.BOT@EXAMPLE.COM", 1 },
		{ "other@example.com", 0 },
		{ "x@y.z; jobs.bot@example.com", 1 },
		{ "x@y.z, jobs.bot@example.com", 1 },
		{ "any@example.com", 1 },
		{ "ANY@Example.Com", 1 },
		{ "any@sub.example.com", 0 },
		{ "any@ample.com", 0 },
		{ "*@example.com", 1 },
		{ "@example.com", 1 },
		{ "Job Bot <jobs.bot@example.com>", 1 },
		{ "[[FINANCE]]", 0 },
		{ "[[FINANCE]];any@example.com", 1 },
		{ "bot@example.com", 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rule(&r[0], "Configuration1", "PAYROLL", ev, 1);
		r[0].allowed_senders = S(cases[i].list);
		base_config(&cfg, r, 1);
		ok(run(&cfg, "plain.eml", NOON, &res) == 0 && res.matched == cases[i].ok,
		   "AllowedSenders '%s' -> %s", cases[i].list ? cases[i].list : "(unset)",
		   cases[i].ok ? "accepted" : "rejected");
		if (!cases[i].ok)
			ok(res.rules[0].stage == RULE_STAGE_SENDER &&
			   strcmp(res.reason, "Invalid Sender") == 0,
			   "  rejected as Invalid Sender");
		rules_result_release(&res);
	}

	/* token list: alice and bob from [[FINANCE]] */
	rule(&r[0], "Configuration1", "Rechnung", ev, 1);
	r[0].allowed_senders = S("[[FINANCE]]");
	base_config(&cfg, r, 1);
	ok(run(&cfg, "cp1252-subject.eml", NOON, &res) == 0 && !res.matched,
	   "token list: rene not in it");
	rules_result_release(&res);
	r[0].allowed_senders = S("[[FINANCE]];rene@EXAMPLE.de");
	ok(run(&cfg, "cp1252-subject.eml", NOON, &res) == 0 && res.matched,
	   "token list plus an address");
	rules_result_release(&res);

	/* custom reject text */
	r[0].allowed_senders = S("nobody@example.com");
	cfg.reject_sender_msg = S("Sender not allowed");
	ok(run(&cfg, "cp1252-subject.eml", NOON, &res) == 0 && !res.matched, "custom text: rejected");
	is(res.reason, "Sender not allowed", "custom RejectSenderMessage");
	is(res.rules[0].reason, "Sender not allowed", "custom text per rule");
	rules_result_release(&res);
	cfg.reject_sender_msg = S("N/A");
	ok(run(&cfg, "cp1252-subject.eml", NOON, &res) == 0, "N/A text");
	is(res.reason, "Invalid Sender", "N/A RejectSenderMessage means the default");
	rules_result_release(&res);
}

static void test_timeframes(void)
{
	char *ev[] = { S("$CONSOLE:DISPLAY,x") };
	struct config_rule r[1];
	struct config cfg;
	struct rule_result res;
	static const struct { const char *tf; int h, m, ok; } cases[] = {
		{ "0000-2400", 0, 0, 1 },
		{ "0000-2400", 23, 59, 1 },
		{ "0800-1700", 7, 59, 0 },
		{ "0800-1700", 8, 0, 1 },
		{ "0800-1700", 12, 0, 1 },
		{ "0800-1700", 17, 0, 1 },
		{ "0800-1700", 17, 1, 0 },
		{ "2200-0600", 23, 30, 1 },
		{ "2200-0600", 2, 0, 1 },
		{ "2200-0600", 6, 0, 1 },
		{ "2200-0600", 6, 1, 0 },
		{ "2200-0600", 12, 0, 0 },
		{ "2200-0600", 21, 59, 0 },
		{ "1200-2400", 23, 59, 1 },
		{ "1200-2400", 11, 59, 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rule(&r[0], "Configuration1", "PAYROLL", ev, 1);
		r[0].time_frame = S(cases[i].tf);
		base_config(&cfg, r, 1);
		ok(run(&cfg, "plain.eml", AT(cases[i].h, cases[i].m), &res) == 0 &&
		   res.matched == cases[i].ok, "AllowedTimeFrame %s at %02d:%02d -> %s",
		   cases[i].tf, cases[i].h, cases[i].m, cases[i].ok ? "in" : "out");
		if (!cases[i].ok)
			ok(res.rules[0].stage == RULE_STAGE_TIMEFRAME &&
			   strcmp(res.reason, "Message received outside timeframe") == 0,
			   "  rejected as outside timeframe");
		rules_result_release(&res);
	}
	/* the machine's local time, not UTC */
	setenv("TZ", "EST5EDT", 1);
	tzset();
	rule(&r[0], "Configuration1", "PAYROLL", ev, 1);
	r[0].time_frame = S("0600-0800");
	base_config(&cfg, r, 1);
	ok(run(&cfg, "plain.eml", NOON, &res) == 0 && res.matched,
	   "time frame in local time (12:00 UTC = 07:00 EST)");
	rules_result_release(&res);
	setenv("TZ", "UTC", 1);
	tzset();
}

static void test_body(void)
{
	char *ev[] = { S("$JOB:ADD,[[$DATE]],S,[[1]],[[2]]") };
	struct config_rule r[1];
	struct config cfg;
	struct rule_result res;

	/* no qualifier: subject and each body line can raise events */
	rule(&r[0], "Configuration1", "(PAYROLL|Job: (\\w+) status=(\\w+))", ev, 1);
	r[0].subject_mask = S("(?:JOB COMPLETE: (\\w+) (\\d+)|Job: (\\w+) status=(\\w+))");
	base_config(&cfg, r, 1);
	ok(run(&cfg, "plain.eml", NOON, &res) == 0 && res.matched, "body off: subject matched");
	is_int(res.rules[0].n_events, 1, "body off: only the subject raises");
	rules_result_release(&res);

	r[0].process_body = 1;
	ok(run(&cfg, "plain.eml", NOON, &res) == 0 && res.matched, "body on: matched");
	is_int(res.rules[0].n_events, 3, "body on: subject plus two body lines");
	is(res.rules[0].events[0], "$JOB:ADD,[[$DATE]],S,PAYROLL,42", "body on: subject event first");
	is(res.rules[0].events[1], "$JOB:ADD,[[$DATE]],S,,", "body on: line captures are per line");
	rules_result_release(&res);

	r[0].subject_mask = S("Job: (\\w+) status=(\\w+)");
	ok(run(&cfg, "plain.eml", NOON, &res) == 0 && res.matched, "body lines only");
	is_int(res.rules[0].n_events, 2, "body lines only: two events");
	is(res.rules[0].events[0], "$JOB:ADD,[[$DATE]],S,PAYROLL,OK", "body line 1");
	is(res.rules[0].events[1], "$JOB:ADD,[[$DATE]],S,BILLING,FAILED", "body line 2");
	rules_result_release(&res);

	/* qualifier: must match the subject, raises nothing itself */
	r[0].subject_mask = S("(?:COMPLETE: (\\w+)|Job: (\\w+) status=(\\w+))");
	r[0].qualifying_subject = S("^JOB COMPLETE");
	ok(run(&cfg, "plain.eml", NOON, &res) == 0 && res.matched, "qualifier: matched");
	is_int(res.rules[0].n_events, 2, "qualifier: subject raises nothing, lines do");
	is(res.rules[0].events[0], "$JOB:ADD,[[$DATE]],S,,PAYROLL", "qualifier: first line event");
	rules_result_release(&res);
	r[0].qualifying_subject = S("^REPORT");
	ok(run(&cfg, "plain.eml", NOON, &res) == 0 && !res.matched,
	   "qualifier not matching: no match even though lines would");
	is(res.reason, "No matching subjects found", "qualifier not matching: reason");
	rules_result_release(&res);

	/* HTML body ([[2]] names a group that takes no part: empty, never
	 * a literal [[2]]) */
	rule(&r[0], "Configuration1", "^Job: (\\w+)( x)?", ev, 1);
	r[0].process_body = 1;
	r[0].qualifying_subject = S("Daily report");
	base_config(&cfg, r, 1);
	ok(run(&cfg, "html-only.eml", NOON, &res) == 0 && res.matched, "html body: matched");
	is_int(res.rules[0].n_events, 3, "html body: three lines (script ignored)");
	is(res.rules[0].events[0], "$JOB:ADD,[[$DATE]],S,ALPHA,", "html: ALPHA");
	is(res.rules[0].events[1], "$JOB:ADD,[[$DATE]],S,BETA,", "html: BETA");
	is(res.rules[0].events[2], "$JOB:ADD,[[$DATE]],S,GAMMA,", "html: GAMMA");
	rules_result_release(&res);
	r[0].qualifying_subject = NULL;
	ok(run(&cfg, "alternative.eml", NOON, &res) == 0 && res.matched &&
	   res.rules[0].n_events == 1, "alternative: one event, not one per copy");
	rules_result_release(&res);
}

static void test_attachments(void)
{
	char *ev[] = { S("$CONSOLE:DISPLAY,[[1]]") };
	struct config_rule r[1];
	struct config cfg;
	struct rule_result res;

	rule(&r[0], "Configuration1", "batch (\\d+)", ev, 1);
	r[0].process_attachments = 1;
	r[0].attachment_mask = S("^Rechnung M\xc3\xa4rz \\d+\\.pdf$");
	base_config(&cfg, r, 1);
	ok(run(&cfg, "attachments.eml", NOON, &res) == 0 && res.matched, "RFC 2231 name matched");
	is_int(res.rules[0].n_attachments, 1, "one matching attachment");
	is(res.rules[0].attachments[0], "Rechnung M\xc3\xa4rz 2026.pdf", "its name");
	is(res.rules[0].events[0], "$CONSOLE:DISPLAY,7", "events use the subject captures");
	rules_result_release(&res);

	/* [[ATTACHMENT]] and [[A1]].. from the first matching attachment */
	{
		char *aev[] = { S("$CONSOLE:DISPLAY,[[1]] [[ATTACHMENT]] [[A1]]/[[A2]]") };
		r[0].events = aev;
		r[0].attachment_mask = S("^Rechnung (M\xc3\xa4rz) (\\d+)\\.pdf$");
		ok(run(&cfg, "attachments.eml", NOON, &res) == 0 && res.matched,
		   "attachment captures: matched");
		is(res.rules[0].events[0], "$CONSOLE:DISPLAY,7 Rechnung Marz 2026.pdf Marz/2026",
		   "[[ATTACHMENT]] is the name, [[A1]] [[A2]] the AttachmentMask's groups");
		rules_result_release(&res);
		r[0].attachment_mask = S("^Rechnung M\xc3\xa4rz (\\d+)\\.pdf$");
		base_config(&cfg, r, 1);
		{
			struct ms_err e = MS_ERR_INIT;
			ok(compile_err(&cfg, &e) == -1 &&
			   strstr(e.msg, "[[A2]] in") && strstr(e.msg, "AttachmentMask has only 1 group"),
			   "[[A2]] beyond the AttachmentMask's groups refused: %s", e.msg);
		}
		r[0].events = ev;
		r[0].attachment_mask = S("^Rechnung M\xc3\xa4rz \\d+\\.pdf$");
	}

	r[0].attachment_mask = S("\\.png$");
	ok(run(&cfg, "attachments.eml", NOON, &res) == 0 && res.matched,
	   "inline image counts as an attachment");
	rules_result_release(&res);

	r[0].attachment_mask = S("(?i)\\.xlsx$");
	cfg.reject_no_attachment_msg = NULL;
	ok(run(&cfg, "attachments.eml", NOON, &res) == 0 && !res.matched, "no matching attachment");
	ok(res.rules[0].stage == RULE_STAGE_ATTACHMENT && res.rules[0].mask_matched,
	   "stage: attachment");
	is(res.reason, "No matching attachments found", "reason: no matching attachments");
	is_int(res.rules[0].n_events, 0, "no events");
	rules_result_release(&res);

	r[0].process_attachments = 0;
	ok(run(&cfg, "attachments.eml", NOON, &res) == 0 && res.matched,
	   "ProcessAttachments off: mask ignored");
	rules_result_release(&res);

	r[0].process_attachments = 1;
	r[0].attachment_mask = S("\\.\\.[\\\\/]");
	ok(run(&cfg, "attachments.eml", NOON, &res) == 0 && res.matched &&
	   res.rules[0].n_attachments == 2, "names with ../ and ..\\ are matched as written");
	rules_result_release(&res);
}

static void test_reasons_and_hostile(void)
{
	char *ev[] = { S("$CONSOLE:DISPLAY,[[SUBJECT]],[[SENDER]]") };
	struct config_rule r[3];
	struct config cfg;
	struct rule_result res;
	struct ms_err err = MS_ERR_INIT;
	char *line = NULL;

	/* missing subject */
	rule(&r[0], "Configuration1", "^Report", ev, 1);
	base_config(&cfg, r, 1);
	cfg.reject_no_subject_msg = S("Nothing for us");
	ok(run(&cfg, "no-subject.eml", NOON, &res) == 0 && !res.matched, "no subject: no match");
	is(res.reason, "Nothing for us", "custom RejectNoMatchingSubjectMessage");
	rules_result_release(&res);
	rule(&r[0], "Configuration1", "^$", ev, 1);
	ok(run(&cfg, "no-subject.eml", NOON, &res) == 0 && res.matched, "no subject: ^$ matches");
	is(res.rules[0].events[0], "$CONSOLE:DISPLAY,,nobody@example.com", "no subject: empty field");
	rules_result_release(&res);
	rule(&r[0], "Configuration1", NULL, ev, 1);
	ok(run(&cfg, "no-subject.eml", NOON, &res) == 0 && res.matched,
	   "unset SubjectLineMask matches everything");
	rules_result_release(&res);

	/* overall reason: the first rule whose mask matched */
	rule(&r[0], "Configuration1", "NOPE", ev, 1);
	rule(&r[1], "Configuration2", "PAYROLL", ev, 1);
	r[1].time_frame = S("0100-0200");
	rule(&r[2], "Configuration3", "PAYROLL", ev, 1);
	r[2].allowed_senders = S("x@y.z");
	base_config(&cfg, r, 3);
	ok(run(&cfg, "plain.eml", NOON, &res) == 0 && !res.matched, "reasons: nothing matched");
	is(res.reason, "Message received outside timeframe", "reasons: first failing mask match");
	is(res.rules[2].reason, "Invalid Sender", "reasons: third rule's own reason");
	ok(res.rules[1].mask_matched && !res.rules[0].mask_matched, "mask_matched flags");
	rules_result_release(&res);

	/* audit texts from the result */
	rule(&r[0], "Configuration1", "NOPE", ev, 1);
	base_config(&cfg, r, 1);
	ok(run(&cfg, "plain.eml", NOON, &res) == 0 && !res.matched, "audit: rejected");
	{
		struct message m;
		struct event_fields f;
		char *s = NULL;
		ok(load(&m, "plain.eml", 1) == 0, "audit: headers");
		rules_event_fields(&m, &res, &f);
		ok(event_log_line("[[SENDER]]|[[SUBJECT]]|[[DATE]]|[[REASON]]|[[EVENT]]",
				  EVENT_LOG_REJECT, &f, &s, &err) == 0, "audit: log line");
		is(s, "Jobs.Bot@example.com|JOB COMPLETE: PAYROLL 42|11/3/2026 7:05:09 PM|"
		   "No matching subjects found|[[EVENT]]", "audit: reject log line");
		free(s);
		ok(event_substitute("$CONSOLE:DISPLAY,Rejected [[SUBJECT]]: [[REASON]]",
				    &f, SUBST_EVENT, &s, &err) == 0 &&
		   event_render(s, "u", "p", &line, &err) == 0, "audit: RejectEvent");
		is(line, "$CONSOLE:DISPLAY,Rejected JOB COMPLETE: PAYROLL 42: No matching "
		   "subjects found,u,p", "audit: RejectEvent line");
		event_line_free(line);
		free(s);
		message_release(&m);
	}
	rules_result_release(&res);

	/* cp1252 subject: transliterated into the event */
	rule(&r[0], "Configuration1", "f\xc3\xbcr (M\xc3\xa4rz)", ev, 1);
	base_config(&cfg, r, 1);
	ok(run(&cfg, "cp1252-subject.eml", NOON, &res) == 0 && res.matched, "cp1252: matched");
	is(res.rules[0].events[0], "$CONSOLE:DISPLAY,Rechnung fur Marz - EUR 100,rene@example.de",
	   "cp1252: event is ASCII");
	rules_result_release(&res);

	/* hostile subject end to end */
	rule(&r[0], "Configuration1", "(.*)", ev, 1);
	ok(run(&cfg, "hostile-subject.eml", NOON, &res) == 0 && res.matched, "hostile: matched");
	ok(event_render(res.rules[0].events[0], "ocuser", "ocpw", &line, &err) == 0,
	   "hostile: rendered");
	{
		size_t commas = 0;
		const char *p;
		for (p = line; *p; p++)
			commas += *p == ',';
		is_int(commas, 4, "hostile: exactly the template's 2 fields plus user and password");
		ok(!strpbrk(line, "\r\n"), "hostile: one line");
		is(line, "$CONSOLE:DISPLAY,x;$JOB:ADD;a;b  $CONSOLE:DISPLAY;pwned?e,"
		   "eve@evil.example,ocuser,ocpw", "hostile: exact line");
	}
	event_line_free(line);
	rules_result_release(&res);

	/* too many matching lines: capped, no failure */
	{
		char *ev2[] = { S("$CONSOLE:DISPLAY,[[1]]"), S("$CONSOLE:DISPLAY,again [[1]]") };
		rule(&r[0], "Configuration1", "Job: (\\w+)", ev2, 2);
		r[0].process_body = 1;
		ok(run(&cfg, "many-lines.eml", NOON, &res) == 0 && res.matched,
		   "10,000 matching lines: matched");
		is_int(res.n_events, 10000, "20,000 events capped at 10,000");
		is(res.rules[0].events[9999], "$CONSOLE:DISPLAY,again N4999", "cap keeps the first ones");
	}
	rules_result_release(&res);
}

static void test_need_body(void)
{
	char *ev[] = { S("$CONSOLE:DISPLAY,x") };
	struct config_rule r[1];
	struct config cfg;
	struct ms_err err = MS_ERR_INIT;
	struct rules *rs;
	struct message m;

	ok(load(&m, "plain.eml", 1) == 0, "need body: headers parsed");
	rule(&r[0], "Configuration1", "PAYROLL", ev, 1);
	base_config(&cfg, r, 1);
#define NEED(expect, what) do { \
	ok(rules_compile(&rs, &cfg, &err) == 0 && \
	   rules_need_body(rs, &m, NOON) == (expect), what); \
	rules_free(rs); } while (0)
	NEED(0, "subject-only rule: headers suffice");
	r[0].process_body = 1;
	NEED(1, "ProcessBody without qualifier: body needed");
	r[0].qualifying_subject = S("^JOB COMPLETE");
	NEED(1, "ProcessBody with a matching qualifier: body needed");
	r[0].qualifying_subject = S("^REPORT");
	NEED(0, "ProcessBody with a non-matching qualifier: not needed");
	r[0].qualifying_subject = NULL;
	r[0].allowed_senders = S("x@y.z");
	NEED(0, "sender rejected: not needed");
	r[0].allowed_senders = NULL;
	r[0].time_frame = S("0100-0200");
	NEED(0, "outside time frame: not needed");
	r[0].time_frame = NULL;
	r[0].process_body = 0;
	r[0].process_attachments = 1;
	r[0].attachment_mask = S("\\.pdf$");
	NEED(1, "attachments with a matching subject: needed");
	r[0].subject_mask = S("NOPE");
	NEED(0, "attachments with a non-matching subject: not needed");
#undef NEED
	message_release(&m);
}


/* rules_compile_memo(): the same rules, warnings and messages as
 * rules_compile(), a broken mask refused the same way the second time,
 * the masks shared (and still usable) while the memo lives, and past
 * RULES_MASKS_MAX patterns each compiled for its own rules. */
static void test_masks_memo(void)
{
	char *ev[] = { S("$CONSOLE:DISPLAY,[[1]]") };
	struct config_rule r[3];
	struct config cfg;
	struct ms_err e1 = MS_ERR_INIT, e2 = MS_ERR_INIT;
	struct rules *a = NULL, *b = NULL, *c = NULL;
	struct rules_masks *mm = rules_masks_new();
	struct rule_result res;
	struct message m;
	char pat[64];
	size_t i;
	int same = 1;

	ok(mm != NULL, "masks memo made");
	rule(&r[0], "Configuration1", "COMPLETE: (\\w+)", ev, 1);
	rule(&r[1], "Configuration2", "JOB (\\w+", ev, 1);
	r[1].line = 42;
	rule(&r[2], "Configuration3", "COMPLETE: (\\w+)", ev, 1);
	r[2].qualifying_subject = S("(?<x");
	r[2].attachment_mask = S("\\.pdf$");
	base_config(&cfg, r, 3);
	ok(rules_compile(&a, &cfg, &e1) == 0, "without the memo: compiles");
	ok(rules_compile_memo(&b, &cfg, mm, &e2) == 0, "with the memo: compiles");
	ok(rules_compile_memo(&c, &cfg, mm, &e2) == 0, "with the memo, again");
	ok(a && b && c && rules_warning_count(a) == 2 && rules_warning_count(b) == 2 &&
	   rules_warning_count(c) == 2 && rules_skipped(c) == 2,
	   "the same two configurations skipped");
	for (i = 0; a && b && c && i < rules_warning_count(a); i++) {
		is(rules_warning(b, i), rules_warning(a, i), "memo: warning %zu the same", i);
		is(rules_warning(c, i), rules_warning(a, i), "memo, again: warning %zu the same", i);
	}
	rules_free(b);
	b = NULL;
	/* c's mask is the memo's: it still matches after b is gone */
	if (load(&m, "plain.eml", 0) == 0) {
		ok(rules_evaluate(a, &m, NOON, &res, &e2) == 0, "evaluates");
		same = res.n_rules == 1;
		rules_result_release(&res);
		ok(rules_evaluate(c, &m, NOON, &res, &e2) == 0, "evaluates with borrowed masks");
		same = same && res.n_rules == 1;
		rules_result_release(&res);
		ok(same, "one configuration evaluated, either way");
	}
	message_release(&m);
	rules_free(c);
	rules_free(a);

	/* every configuration broken: the same error */
	base_config(&cfg, &r[1], 1);
	err_clear(&e1);
	err_clear(&e2);
	ok(rules_compile(&a, &cfg, &e1) == -1 && rules_compile_memo(&b, &cfg, mm, &e2) == -1,
	   "all broken: refused with and without the memo");
	is(e2.msg, e1.msg, "all broken: the same message");
	is_int(e2.line, e1.line, "all broken: the same line");

	/* more patterns than the memo keeps */
	same = 1;
	for (i = 0; i < RULES_MASKS_MAX + 10; i++) {
		snprintf(pat, sizeof(pat), "^Job%zu (\\w+)$", i);
		rule(&r[0], "Configuration1", pat, ev, 1);
		base_config(&cfg, r, 1);
		err_clear(&e2);
		if (rules_compile_memo(&b, &cfg, mm, &e2) != 0 || rules_warning_count(b))
			same = 0;
		rules_free(b);
		b = NULL;
	}
	ok(same, "past RULES_MASKS_MAX patterns: each compiles");
	rules_masks_free(mm);
	rules_masks_free(NULL);
}

int main(void)
{
	setenv("TZ", "UTC", 1);
	tzset();
	message_library_init();
	test_subject_and_tokens();
	test_invalid_config();
	test_skip_broken();
	test_senders();
	test_timeframes();
	test_body();
	test_attachments();
	test_reasons_and_hostile();
	test_need_body();
	test_masks_memo();
	message_library_shutdown();
	return done_testing();
}
