/*
 * fuzz_mask.c - .NET-style masks (PCRE2 inside) and token substitution.
 *
 * Input: the pattern up to the first '\n', the subject after it (both cut
 * at a NUL).  Properties:
 *   - mask_compile() either compiles or fails with MS_ERR_CONFIG;
 *   - mask_match() ends (resource limits) and, on a match, gives
 *     group count + 1 non-NULL captures; without captures it agrees;
 *   - the subject and the captures substituted as mail values into an
 *     event template in SUBST_EVENT mode add exactly one comma-separated
 *     field each and no CR/LF: "$CONSOLE:DISPLAY,[[SUBJECT]]" has one comma
 *     more than "$CONSOLE:DISPLAY"; the rendered MSGIN line is printable
 *     ASCII and ends in ",<user>,<password>";
 *   - SUBST_LINE output (log lines, mail headers) holds no control
 *     character; SUBST_TEXT keeps LF but no CR.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "mail/event.h"
#include "mail/mask.h"

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

static void check_event(const char *subject, const char *sender,
			const struct mask_captures *caps)
{
	struct ms_err err = MS_ERR_INIT;
	struct event_fields f;
	char *out = NULL, *line = NULL;
	const char *s;
	size_t commas;

	memset(&f, 0, sizeof(f));
	f.subject = subject;
	f.sender = sender;
	f.captures = caps ? (const char *const *)caps->v : NULL;
	f.n_captures = caps ? caps->n : 0;

	if (event_substitute("$CONSOLE:DISPLAY,[[SUBJECT]]", &f, SUBST_EVENT,
			     &out, &err) != 0) {
		if (err.code != MS_ERR_TOOBIG)
			fail("event_substitute failed", err.msg);
		return;
	}
	if (count(out, ',') != 1)
		fail("the subject added or removed an event field", out);
	if (strpbrk(out, "\r\n"))
		fail("the subject added a line", out);
	free(out);
	out = NULL;

	/* Every mail value at once: five fields and no more. */
	if (event_substitute("$JOB:ADD,[[SUBJECT]],[[SENDER]],[[0]],[[1]]", &f,
			     SUBST_EVENT, &out, &err) != 0) {
		if (err.code != MS_ERR_TOOBIG)
			fail("event_substitute failed", err.msg);
		return;
	}
	commas = count(out, ',');
	if (commas != 4)
		fail("mail values changed the number of event fields", out);
	if (strpbrk(out, "\r\n"))
		fail("mail values added a line", out);
	if (event_render(out, "ocadm", "pw", &line, &err) == 0) {
		if (count(line, ',') != 6)
			fail("rendered event has the wrong number of fields", line);
		for (s = line; *s; s++)
			if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
				fail("rendered event is not printable ASCII", line);
		if (strlen(line) < 9 ||
		    strcmp(line + strlen(line) - 9, ",ocadm,pw"))
			fail("rendered event lost its credentials", line);
		event_line_free(line);
	} else if (err.code != MS_ERR_TOOBIG) {
		fail("event_render refused a substituted event", err.msg);
	}
	free(out);
	out = NULL;

	err_clear(&err);
	if (event_log_line(NULL, EVENT_LOG_REJECT, &f, &out, &err) == 0) {
		for (s = out; *s; s++)
			if ((unsigned char)*s < 0x20 || *s == 0x7f)
				fail("log line holds a control character", out);
		free(out);
		out = NULL;
	}
	if (event_escape(subject, SUBST_TEXT, &out, &err) == 0) {
		if (strchr(out, '\r'))
			fail("SUBST_TEXT kept a CR", out);
		free(out);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ms_err err = MS_ERR_INIT;
	struct mask *m = NULL;
	struct mask_captures caps = { 0 };
	char *buf, *subject, *nl;
	int r, r2;
	size_t i;

	if (size > 16 * 1024)
		return 0;
	if (!(buf = malloc(size + 1)))
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	subject = "";
	if ((nl = strchr(buf, '\n'))) {
		*nl = '\0';
		subject = nl + 1;
	}

	/* Substitution alone, with the subject as sender too. */
	check_event(subject, subject, NULL);

	if (mask_compile(&m, buf, &err) != 0) {
		if (err.code != MS_ERR_CONFIG && err.code != MS_ERR_NOMEM)
			fail("mask_compile failed with an odd code", err.msg);
		free(buf);
		return 0;
	}
	if (strcmp(mask_pattern(m), buf))
		fail("mask_pattern differs", mask_pattern(m));
	r = mask_match(m, subject, &caps);
	if (r == 1) {
		if (caps.n != mask_group_count(m) + 1 || !caps.v)
			fail("wrong number of captures", buf);
		for (i = 0; i < caps.n; i++)
			if (!caps.v[i])
				fail("NULL capture", buf);
		check_event(subject, caps.v[0], &caps);
	} else if (r != 0 && r != -1) {
		fail("mask_match returned an odd value", buf);
	}
	mask_captures_release(&caps);
	r2 = mask_match(m, subject, NULL);
	if (r2 != r && r != -1 && r2 != -1)
		fail("mask_match without captures disagrees", buf);
	mask_free(m);
	free(buf);
	return 0;
}
