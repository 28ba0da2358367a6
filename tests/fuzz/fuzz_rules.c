/*
 * fuzz_rules.c - a fuzzed mail through the whole decision: message_parse,
 * rules_need_body, rules_evaluate against a fixed configuration whose
 * events carry every mail token, event_render.
 *
 * Properties (the injection rule of event.h, end to end):
 *   - every rendered event has exactly the fields of its template (mail
 *     text adds no comma), no CR/LF, and its MSGIN line is printable
 *     ASCII ending in ",<user>,<password>";
 *   - the audit log lines hold no control character;
 *   - when rules_need_body() says the headers are enough, evaluating the
 *     headers-only parse and the full parse gives the same decision and
 *     the same events.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ini/config.h"
#include "base/err.h"
#include "mail/event.h"
#include "ini/ini.h"
#include "mail/message.h"
#include "ini/rules.h"

static const char conf[] =
	"[General]\r\n"
	"MSGINDirectory = /tmp/msgin\r\n"
	"OpConUser = ocadm\r\n"
	"OpConUserPassword = pw\r\n"
	"[Mail]\r\n"
	"User = a@example.com\r\nPassword = x\r\nServer = 127.0.0.1\r\n"
	"EmailProtocol = IMAP\r\n"
	"[Tokens]\r\n"
	"SCHED = FIN,DAILY\r\n"
	"[Configuration1]\r\n"
	"SubjectLineMask = ^(?i)invoice (\\w+)(?<rest>.*)$\r\n"
	"Event = $CONSOLE:DISPLAY,[[SUBJECT]]\r\n"
	"Event2 = $JOB:ADD,S,J,[[SENDER]],[[1]],[[rest]],[[DATE]],[[0]]\r\n"
	"[Configuration2]\r\n"
	"SubjectLineMask = (.+)\r\n"
	"QualifyingSubjectLine = ^report\r\n"
	"ProcessBody = YES\r\n"
	"Event = $PROPERTY:SET,P_[[1]],[[SUBJECT]]\r\n"
	"AllowedSenders = ALL\r\n"
	"[Configuration3]\r\n"
	"SubjectLineMask = ^att\r\n"
	"ProcessAttachments = YES\r\n"
	"AttachmentMask = (?<n>.+)\\.csv$\r\n"
	"Event = $JOB:ADD,[[SCHED]],[[n]],[[SENDER]]\r\n"
	"AllowedSenders = *@example.com; Name <b@example.org>\r\n"
	"AllowedTimeFrame = 0000-2400\r\n";

/* Commas each event template has (the [[SCHED]] token is trusted and
 * brings one of its own). */
static size_t template_commas(const char *ev)
{
	if (!strncmp(ev, "$CONSOLE:DISPLAY,", 17))
		return 1;
	if (!strncmp(ev, "$JOB:ADD,S,J,", 13))
		return 7;
	if (!strncmp(ev, "$PROPERTY:SET,", 14))
		return 2;
	if (!strncmp(ev, "$JOB:ADD,", 9))
		return 4;
	return (size_t)-1;
}

static struct rules *rs;
static int debug;       /* FUZZ_RULES_DEBUG=1: print the events */

static void fail(const char *what, const char *s)
{
	fprintf(stderr, "%s: [%s]\n", what, s ? s : "(null)");
	abort();
}

static size_t count(const char *s, char c)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == c;
	return n;
}

static void setup(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct ini *ini = NULL;
	struct config cfg;

	setenv("TZ", "UTC", 1);
	debug = getenv("FUZZ_RULES_DEBUG") != NULL;
	message_library_init();
	memset(&cfg, 0, sizeof(cfg));
	if (ini_parse(&ini, "fuzz_rules.ini", conf, sizeof(conf) - 1, &err) ||
	    config_from_ini(&cfg, ini, "fuzz_rules.ini", &err) ||
	    rules_compile(&rs, &cfg, &err))
		fail("fixed configuration refused", err.msg);
	config_release(&cfg);
	ini_free(ini);
}

static void check_result(const struct message *msg,
			 const struct rule_result *res)
{
	struct ms_err err = MS_ERR_INIT;
	struct event_fields f;
	char *line, *log;
	size_t i, j;
	const char *s;

	for (i = 0; i < res->n_rules; i++) {
		const struct rule_outcome *o = &res->rules[i];

		for (j = 0; j < o->n_events; j++) {
			const char *ev = o->events[j];

			if (debug)
				fprintf(stderr, "%s: %s\n", o->section, ev);
			if (count(ev, ',') != template_commas(ev))
				fail("mail text changed the fields of an event", ev);
			if (strpbrk(ev, "\r\n"))
				fail("mail text added a line to an event", ev);
			err_clear(&err);
			if (event_render(ev, "ocadm", "pw", &line, &err) != 0)
				fail("event_render refused an event", err.msg);
			for (s = line; *s; s++)
				if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
					fail("MSGIN line is not printable ASCII", line);
			if (count(line, ',') != template_commas(ev) + 2 ||
			    strcmp(line + strlen(line) - 9, ",ocadm,pw"))
				fail("MSGIN line has the wrong fields", line);
			event_line_free(line);
		}
	}
	rules_event_fields(msg, res, &f);
	err_clear(&err);
	if (event_log_line(NULL, res->matched ? EVENT_LOG_ACCEPT : EVENT_LOG_REJECT,
			   &f, &log, &err) == 0) {
		for (s = log; *s; s++)
			if ((unsigned char)*s < 0x20 || *s == 0x7f)
				fail("audit log line holds a control character", log);
		free(log);
	}
}

static int same_events(const struct rule_result *a, const struct rule_result *b)
{
	size_t i, j;

	if (a->matched != b->matched || a->n_rules != b->n_rules ||
	    a->n_events != b->n_events)
		return 0;
	for (i = 0; i < a->n_rules; i++) {
		if (a->rules[i].n_events != b->rules[i].n_events)
			return 0;
		for (j = 0; j < a->rules[i].n_events; j++)
			if (strcmp(a->rules[i].events[j], b->rules[i].events[j]))
				return 0;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ms_err err = MS_ERR_INIT;
	struct message h, m;
	struct rule_result rh, rm;
	time_t received = 1795829734;   /* 2026-11-28 01:35:34 UTC */
	int need;

	if (size > 128 * 1024)
		return 0;
	if (!rs)
		setup();
	if (message_parse(&h, (const char *)data, size, 1, 0, &err) != 0)
		return 0;
	if (message_parse(&m, (const char *)data, size, 0, 0, &err) != 0) {
		message_release(&h);
		return 0;
	}
	need = rules_need_body(rs, &h, received);
	memset(&rh, 0, sizeof(rh));
	memset(&rm, 0, sizeof(rm));
	if (rules_evaluate(rs, &h, received, &rh, &err) == 0)
		check_result(&h, &rh);
	else
		need = 1;
	err_clear(&err);
	if (rules_evaluate(rs, &m, received, &rm, &err) == 0) {
		check_result(&m, &rm);
		if (!need && !same_events(&rh, &rm))
			fail("headers were said to be enough, but the body "
			     "changed the decision", m.subject);
	}
	rules_result_release(&rh);
	rules_result_release(&rm);
	message_release(&h);
	message_release(&m);
	return 0;
}
