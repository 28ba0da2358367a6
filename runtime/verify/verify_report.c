/*
 * verify_report.c - mailshift-verify's reports (text, JSON, JUnit XML,
 * HTML) and the pure helpers (escaping, the rate window, probe ids).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/rand.h>

#include "base/html_style.h"
#include "base/buf.h"
#include "base/escape.h"
#include "base/mem.h"
#include "verify/verify.h"

#define REPORT_CAP ((size_t)256 * 1024 * 1024)

static const char *const step_names[VSTEP_COUNT] = {
	"config", "token", "login", "send", "seen", "cleanup",
};

const char *verify_step_name(enum verify_step s)
{
	return s < VSTEP_COUNT ? step_names[s] : "?";
}

const char *verify_status_name(enum verify_status s)
{
	switch (s) {
	case VST_PASS: return "pass";
	case VST_FAIL: return "fail";
	default:       return "skip";
	}
}

int verify_format_parse(const char *s, enum verify_format *f)
{
	static const struct { const char *name; enum verify_format f; } t[] = {
		{ "text", VFMT_TEXT }, { "json", VFMT_JSON },
		{ "junit", VFMT_JUNIT }, { "xml", VFMT_JUNIT }, { "html", VFMT_HTML },
	};
	for (size_t i = 0; s && i < sizeof(t) / sizeof(t[0]); i++)
		if (strcasecmp(s, t[i].name) == 0) {
			*f = t[i].f;
			return 0;
		}
	return -1;
}

/* ---- rate window -------------------------------------------------------- */

void verify_rate_init(struct verify_rate *rl, int limit, double window)
{
	memset(rl, 0, sizeof(*rl));
	if (limit < 1)
		limit = 1;
	if (limit > VERIFY_RATE_MAX)
		limit = VERIFY_RATE_MAX;
	rl->limit = limit;
	rl->window = window > 0 ? window : 60;
}

double verify_rate_reserve(struct verify_rate *rl, double now)
{
	double at = now;

	if (rl->n == (size_t)rl->limit) {
		/* the oldest of the last `limit` grants leaves the window */
		double oldest = rl->t[rl->head];
		if (oldest + rl->window > at)
			at = oldest + rl->window;
		rl->t[rl->head] = at;
		rl->head = (rl->head + 1) % (size_t)rl->limit;
	} else {
		rl->t[(rl->head + rl->n) % (size_t)rl->limit] = at;
		rl->n++;
	}
	return at;
}

void verify_probe_id(char *out, size_t outsz)
{
	unsigned char r[8];
	static const char hex[] = "0123456789abcdef";
	char id[24];

	if (RAND_bytes(r, sizeof(r)) != 1) {
		/* fall back to time and address bits: unique enough for a probe */
		unsigned long long x = (unsigned long long)time(NULL) ^
			(unsigned long long)(size_t)out ^ (unsigned long long)clock();
		memcpy(r, &x, sizeof(r));
	}
	memcpy(id, "MSV-", 4);
	for (size_t i = 0; i < sizeof(r); i++) {
		id[4 + 2 * i] = hex[r[i] >> 4];
		id[5 + 2 * i] = hex[r[i] & 15];
	}
	id[20] = 0;
	snprintf(out, outsz, "%s", id);
}

/* ---- escaping ------------------------------------------------------------- */

/* The malloc'd forms verify.h promises, over base/escape. */
static char *escape(const char *s, int xml)
{
	struct buf b;
	struct ms_err err = MS_ERR_INIT;

	buf_init(&b, REPORT_CAP);
	if ((xml ? escape_xml_attr(&b, s, &err) : escape_html(&b, s, &err)) < 0) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, NULL);
}

char *verify_html_escape(const char *s)
{
	return escape(s, 0);
}

char *verify_xml_escape(const char *s)
{
	return escape(s, 1);
}

/* ---- text ----------------------------------------------------------------- */

static void iso_time(time_t t, char *out, size_t outsz)
{
	struct tm tm;

	if (!t || !gmtime_r(&t, &tm)) {
		snprintf(out, outsz, "-");
		return;
	}
	strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static double total_seconds(const struct verify_result *m)
{
	double s = 0;

	for (int i = 0; i < VSTEP_COUNT; i++)
		s += m->steps[i].seconds;
	return s;
}

/* Text reports keep one line per item: folds CR/LF/TAB into spaces. */
static int text_line(struct buf *b, const char *s, struct ms_err *err)
{
	for (; s && *s; s++) {
		char c = (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s;
		if (buf_append(b, &c, 1, err))
			return -1;
	}
	return 0;
}

static int render_text(const struct verify_run *r, struct buf *b,
		       struct ms_err *err)
{
	char t0[32];

	iso_time(r->started, t0, sizeof(t0));
	if (buf_appendf(b, err, "mailshift-verify: %zu mailbox%s, %zu passed, %zu "
			"failed%s", r->n, r->n == 1 ? "" : "es", r->passed, r->failed,
			r->send ? " (with probe)" : " (read-only)") ||
	    (r->id && buf_appendf(b, err, ", run %ld", r->id)) ||
	    buf_appendf(b, err, ", started %s\n", t0))
		return -1;
	for (size_t i = 0; i < r->n; i++) {
		const struct verify_result *m = &r->results[i];

		if (buf_appendf(b, err, "\n%s  ", m->passed ? "PASS" : "FAIL") ||
		    text_line(b, m->mailbox ? m->mailbox : "-", err) ||
		    buf_appendf(b, err, "  %s  ", m->protocol ? m->protocol : "-") ||
		    text_line(b, m->label ? m->label : m->ini, err) ||
		    buf_appends(b, "\n     ", err))
			return -1;
		for (int s = 0; s < VSTEP_COUNT; s++) {
			const struct verify_step_result *sr = &m->steps[s];
			if (buf_appendf(b, err, " %s %s", step_names[s],
					sr->status == VST_PASS ? "ok" :
					sr->status == VST_FAIL ? "FAILED" : "-") ||
			    (sr->status != VST_SKIP &&
			     buf_appendf(b, err, " (%.2fs)", sr->seconds)))
				return -1;
		}
		if (buf_appends(b, "\n", err))
			return -1;
		if (m->warning && (buf_appends(b, "      warning: ", err) ||
				   text_line(b, m->warning, err) ||
				   buf_appends(b, "\n", err)))
			return -1;
		if (m->probe_id) {
			if (buf_appends(b, "      probe ", err) ||
			    text_line(b, m->probe_id, err))
				return -1;
			if (m->seen_after >= 0 &&
			    buf_appendf(b, err, " seen after %.1f s", m->seen_after))
				return -1;
			if (m->outcome && (buf_appends(b, "; ", err) ||
					   text_line(b, m->outcome, err)))
				return -1;
			if (m->matched && (buf_appends(b, " by ", err) ||
					   text_line(b, m->matched, err)))
				return -1;
			if (buf_appends(b, "\n", err))
				return -1;
			for (size_t e = 0; e < m->n_events; e++)
				if (buf_appends(b, "      would write: ", err) ||
				    text_line(b, m->events[e], err) ||
				    buf_appends(b, "\n", err))
					return -1;
		}
		for (int s = 0; s < VSTEP_COUNT; s++) {
			const struct verify_step_result *sr = &m->steps[s];
			if (sr->status != VST_FAIL)
				continue;
			if (buf_appendf(b, err, "      %s: ", step_names[s]) ||
			    text_line(b, sr->message, err) || buf_appends(b, "\n", err) ||
			    (sr->cause && (buf_appends(b, "        cause: ", err) ||
					   text_line(b, sr->cause, err) ||
					   buf_appends(b, "\n", err))) ||
			    (sr->fix && (buf_appends(b, "        fix: ", err) ||
					 text_line(b, sr->fix, err) ||
					 buf_appends(b, "\n", err))))
				return -1;
		}
	}
	return 0;
}

/* ---- JSON ----------------------------------------------------------------- */

static cJSON *jstr(const char *s)
{
	return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static cJSON *json_result(const struct verify_result *m)
{
	cJSON *o = cJSON_CreateObject(), *steps, *probe, *ev;

	if (!o)
		return NULL;
	cJSON_AddItemToObject(o, "ini", jstr(m->ini));
	cJSON_AddItemToObject(o, "label", jstr(m->label));
	cJSON_AddItemToObject(o, "mailbox", jstr(m->mailbox));
	cJSON_AddItemToObject(o, "protocol", jstr(m->protocol));
	cJSON_AddBoolToObject(o, "passed", m->passed);
	cJSON_AddItemToObject(o, "warning", jstr(m->warning));
	if (m->probe_id) {
		probe = cJSON_AddObjectToObject(o, "probe");
		if (probe) {
			cJSON_AddItemToObject(probe, "id", jstr(m->probe_id));
			cJSON_AddItemToObject(probe, "subject", jstr(m->probe_subject));
			if (m->seen_after >= 0)
				cJSON_AddNumberToObject(probe, "seen_after",
							(double)(long)(m->seen_after * 1000) / 1000);
			else
				cJSON_AddNullToObject(probe, "seen_after");
			cJSON_AddItemToObject(probe, "outcome", jstr(m->outcome));
			cJSON_AddItemToObject(probe, "matched", jstr(m->matched));
			ev = cJSON_AddArrayToObject(probe, "events");
			for (size_t i = 0; ev && i < m->n_events; i++)
				cJSON_AddItemToArray(ev, cJSON_CreateString(m->events[i]));
		}
	} else {
		cJSON_AddNullToObject(o, "probe");
	}
	steps = cJSON_AddArrayToObject(o, "steps");
	for (int s = 0; steps && s < VSTEP_COUNT; s++) {
		const struct verify_step_result *sr = &m->steps[s];
		cJSON *j = cJSON_CreateObject();
		if (!j)
			break;
		cJSON_AddStringToObject(j, "step", step_names[s]);
		cJSON_AddStringToObject(j, "status", verify_status_name(sr->status));
		cJSON_AddNumberToObject(j, "seconds", (double)(long)(sr->seconds * 1000) / 1000);
		if (sr->status == VST_FAIL)
			cJSON_AddStringToObject(j, "code", err_code_name(sr->code));
		else
			cJSON_AddNullToObject(j, "code");
		cJSON_AddItemToObject(j, "message", jstr(sr->message));
		cJSON_AddItemToObject(j, "cause", jstr(sr->cause));
		cJSON_AddItemToObject(j, "fix", jstr(sr->fix));
		cJSON_AddItemToObject(j, "topic", jstr(sr->topic));
		cJSON_AddItemToArray(steps, j);
	}
	return o;
}

static int render_json(const struct verify_run *r, struct buf *b,
		       struct ms_err *err)
{
	cJSON *root = cJSON_CreateObject(), *sum, *arr;
	char t[32], *txt;
	int rc = -1;

	if (!root)
		return err_nomem(err);
	if (r->id)
		cJSON_AddNumberToObject(root, "run", (double)r->id);
	else
		cJSON_AddNullToObject(root, "run");
	iso_time(r->started, t, sizeof(t));
	cJSON_AddStringToObject(root, "started", t);
	iso_time(r->finished, t, sizeof(t));
	cJSON_AddStringToObject(root, "finished", t);
	cJSON_AddItemToObject(root, "source", jstr(r->source));
	cJSON_AddBoolToObject(root, "send", r->send);
	sum = cJSON_AddObjectToObject(root, "summary");
	if (sum) {
		cJSON_AddNumberToObject(sum, "mailboxes", (double)r->n);
		cJSON_AddNumberToObject(sum, "passed", (double)r->passed);
		cJSON_AddNumberToObject(sum, "failed", (double)r->failed);
	}
	arr = cJSON_AddArrayToObject(root, "mailboxes");
	for (size_t i = 0; arr && i < r->n; i++) {
		cJSON *o = json_result(&r->results[i]);
		if (!o)
			goto out;
		cJSON_AddItemToArray(arr, o);
	}
	if (!(txt = cJSON_Print(root)))
		goto out;
	rc = buf_appends(b, txt, err) || buf_appends(b, "\n", err) ? -1 : 0;
	cJSON_free(txt);
out:
	cJSON_Delete(root);
	if (rc && err->code == MS_OK)
		err_nomem(err);
	return rc;
}

/* ---- JUnit XML ------------------------------------------------------------ */

static int xml_put(struct buf *b, const char *s, struct ms_err *err)
{
	return escape_xml_attr(b, s, err);
}

static int render_junit(const struct verify_run *r, struct buf *b,
			struct ms_err *err)
{
	size_t tests = 0, failures = 0, skipped = 0;
	double all = 0;
	char t[32];

	for (size_t i = 0; i < r->n; i++) {
		for (int s = 0; s < VSTEP_COUNT; s++) {
			tests++;
			failures += r->results[i].steps[s].status == VST_FAIL;
			skipped += r->results[i].steps[s].status == VST_SKIP;
		}
		all += total_seconds(&r->results[i]);
	}
	iso_time(r->started, t, sizeof(t));
	if (buf_appendf(b, err, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			"<testsuites name=\"mailshift-verify\" tests=\"%zu\" "
			"failures=\"%zu\" errors=\"0\" skipped=\"%zu\" time=\"%.3f\">\n",
			tests, failures, skipped, all))
		return -1;
	for (size_t i = 0; i < r->n; i++) {
		const struct verify_result *m = &r->results[i];
		size_t f = 0, k = 0;
		const char *who = m->mailbox ? m->mailbox : m->label ? m->label : m->ini;

		for (int s = 0; s < VSTEP_COUNT; s++) {
			f += m->steps[s].status == VST_FAIL;
			k += m->steps[s].status == VST_SKIP;
		}
		if (buf_appends(b, "  <testsuite name=\"", err) || xml_put(b, who, err) ||
		    buf_appends(b, " (", err) ||
		    xml_put(b, m->label ? m->label : m->ini, err) ||
		    buf_appendf(b, err, ")\" tests=\"%d\" failures=\"%zu\" errors=\"0\" "
				"skipped=\"%zu\" time=\"%.3f\" timestamp=\"%s\">\n",
				VSTEP_COUNT, f, k, total_seconds(m), t))
			return -1;
		if (buf_appends(b, "    <properties>\n      <property name=\"ini\" value=\"", err) ||
		    xml_put(b, m->ini, err) || buf_appends(b, "\"/>\n", err) ||
		    (m->protocol && (buf_appends(b, "      <property name=\"protocol\" value=\"", err) ||
				     xml_put(b, m->protocol, err) || buf_appends(b, "\"/>\n", err))) ||
		    (m->probe_id && (buf_appends(b, "      <property name=\"probe\" value=\"", err) ||
				     xml_put(b, m->probe_id, err) || buf_appends(b, "\"/>\n", err))) ||
		    buf_appends(b, "    </properties>\n", err))
			return -1;
		for (int s = 0; s < VSTEP_COUNT; s++) {
			const struct verify_step_result *sr = &m->steps[s];
			if (buf_appends(b, "    <testcase classname=\"mailshift-verify.", err) ||
			    xml_put(b, who, err) ||
			    buf_appendf(b, err, "\" name=\"%s\" time=\"%.3f\"", step_names[s],
					sr->seconds))
				return -1;
			if (sr->status == VST_PASS) {
				if (buf_appends(b, "/>\n", err))
					return -1;
				continue;
			}
			if (sr->status == VST_SKIP) {
				if (buf_appends(b, "><skipped message=\"", err) ||
				    xml_put(b, sr->message ? sr->message : "not run", err) ||
				    buf_appends(b, "\"/></testcase>\n", err))
					return -1;
				continue;
			}
			if (buf_appends(b, ">\n      <failure message=\"", err) ||
			    xml_put(b, sr->message, err) ||
			    buf_appendf(b, err, "\" type=\"%s\">", err_code_name(sr->code)) ||
			    xml_put(b, sr->message, err) ||
			    (sr->cause && (buf_appends(b, "&#10;cause: ", err) ||
					   xml_put(b, sr->cause, err))) ||
			    (sr->fix && (buf_appends(b, "&#10;fix: ", err) ||
					 xml_put(b, sr->fix, err))) ||
			    buf_appends(b, "</failure>\n    </testcase>\n", err))
				return -1;
		}
		if (buf_appends(b, "  </testsuite>\n", err))
			return -1;
	}
	return buf_appends(b, "</testsuites>\n", err);
}

/* ---- HTML ----------------------------------------------------------------- */

static int html_put(struct buf *b, const char *s, struct ms_err *err)
{
	return escape_html(b, s, err);
}

/* Prose from the explanation catalogue, where `command` marks what to
 * type: escaped, each backtick pair as <code>...</code> (an unpaired one
 * is dropped), so no literal backtick reaches the page. */
static int html_prose(struct buf *b, const char *s, struct ms_err *err)
{
	char *e = verify_html_escape(s), *p, *q;
	int rc = 0, open = 0;

	if (!e)
		return err_nomem(err);
	for (p = e; rc == 0 && *p; p = q + 1) {
		if (!(q = strchr(p, '`'))) {
			rc = buf_appends(b, p, err);
			if (open && rc == 0)
				rc = buf_appends(b, "</code>", err);
			break;
		}
		if (!open && !strchr(q + 1, '`')) {   /* unpaired: dropped */
			rc = buf_append(b, p, (size_t)(q - p), err);
			continue;
		}
		rc = buf_append(b, p, (size_t)(q - p), err) ||
		     buf_appends(b, open ? "</code>" : "<code>", err);
		open = !open;
	}
	free(e);
	return rc;
}

/* The page shares the audit report's stylesheet and table script
 * (audit/report.h): one look for both reports, a sortable table that the
 * summary cards, a status select and a text box filter. */
static int html_header(const struct verify_run *r, struct buf *b,
		       struct ms_err *err)
{
	char t[32];

	iso_time(r->started, t, sizeof(t));
	if (buf_appends(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
			"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
			"style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n"
			"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
			"<title>mailshift-verify report</title>\n<style>\n", err) ||
	    buf_appends(b, html_style_css(), err) ||
	    buf_appends(b, "</style>\n</head>\n<body>\n<header><h1>Mailbox verification"
			"</h1><p>", err) ||
	    buf_appendf(b, err, "%zu mailbox%s &middot; %s &middot; started <time datetime=\"%s\">"
			"%s</time>", r->n, r->n == 1 ? "" : "es",
			r->send ? "with probe mail" : "read-only (no probe mail)", t, t) ||
	    (r->id && buf_appendf(b, err, " &middot; run %ld", r->id)) ||
	    (r->source && (buf_appends(b, " &middot; ", err) || html_put(b, r->source, err))) ||
	    buf_appends(b, "</p>", err))
		return -1;
	if (r->failed &&
	    buf_appendf(b, err, "<p class=\"alert\">%zu of %zu mailbox%s failed: the failing "
			"step is marked in its row, with the cause and the fix.</p>", r->failed,
			r->n, r->n == 1 ? "" : "es"))
		return -1;
	return buf_appends(b, "</header>\n<main>\n<h2>Summary</h2>\n<div class=\"cards\" "
			   "role=\"group\" aria-label=\"Show only\">\n", err) ||
	       buf_appendf(b, err, "<button type=\"button\" class=\"card s-pass\" data-f=\"pass\" "
			   "aria-pressed=\"false\"><b>%zu</b><span>passed</span></button>\n"
			   "<button type=\"button\" class=\"card s-fail\" data-f=\"fail\" "
			   "aria-pressed=\"false\"><b>%zu</b><span>failed</span></button>\n</div>\n",
			   r->passed, r->failed) ||
	       buf_appendf(b, err, "<h2>Mailboxes</h2>\n<div class=\"controls\"><input id=\"q\" "
			   "type=\"search\" placeholder=\"Filter mailboxes\" aria-label=\"Filter "
			   "mailboxes\"><select id=\"st\" aria-label=\"Result\"><option value=\"\">"
			   "all results</option><option value=\"pass\">passed</option><option "
			   "value=\"fail\">failed</option></select><span id=\"shown\" role=\"status\">"
			   "%zu mailbox%s</span></div>\n", r->n, r->n == 1 ? "" : "es") ? -1 : 0;
}

/* The details cell: warning, the probe and what the connector did with
 * it, the failing step's error, cause and fix. */
static int html_details(const struct verify_result *m, struct buf *b,
			struct ms_err *err)
{
	if (m->warning && (buf_appends(b, "<p>warning: ", err) ||
			   html_put(b, m->warning, err) || buf_appends(b, "</p>", err)))
		return -1;
	if (m->probe_id) {
		if (buf_appends(b, "<p>probe <code>", err) ||
		    html_put(b, m->probe_subject ? m->probe_subject : m->probe_id, err) ||
		    buf_appends(b, "</code>", err) ||
		    (m->seen_after >= 0 &&
		     buf_appendf(b, err, " seen after %.1f s", m->seen_after)) ||
		    (m->outcome && (buf_appends(b, "; ", err) ||
				    html_put(b, m->outcome, err))) ||
		    (m->matched && (buf_appends(b, " by ", err) ||
				    html_put(b, m->matched, err))) ||
		    buf_appends(b, "</p>", err))
			return -1;
		/* a passed mailbox whose probe no rule matched: the probe's
		 * own subject is not meant to match one (no --subject) */
		if (m->passed && m->outcome && strncmp(m->outcome, "rejected", 8) == 0 &&
		    buf_appends(b, "<p class=\"note\">As expected: the mailbox received the "
				"probe and the connector read it; no rule matched its subject, so "
				"it would write no event (give --subject to test a rule).</p>", err))
			return -1;
		for (size_t e = 0; e < m->n_events; e++)
			if (buf_appends(b, "<p>would write <code>", err) ||
			    html_put(b, m->events[e], err) ||
			    buf_appends(b, "</code></p>", err))
				return -1;
	}
	for (int s = 0; s < VSTEP_COUNT; s++) {
		const struct verify_step_result *sr = &m->steps[s];
		if (sr->status != VST_FAIL)
			continue;
		if (buf_appendf(b, err, "<p><strong>%s failed</strong>: <code>", step_names[s]) ||
		    html_put(b, sr->message, err) || buf_appends(b, "</code>", err) ||
		    (sr->cause && (buf_appends(b, "<br>cause: ", err) ||
				   html_prose(b, sr->cause, err))) ||
		    (sr->fix && (buf_appends(b, "<br><b>fix:</b> ", err) ||
				 html_prose(b, sr->fix, err))) ||
		    buf_appends(b, "</p>", err))
			return -1;
	}
	return 0;
}

static int html_row(const struct verify_result *m, struct buf *b,
		    struct ms_err *err)
{
	const char *res = m->passed ? "pass" : "fail";

	if (buf_appendf(b, err, "<tr class=\"%s\" data-status=\"%s\"><td data-k=\"%d\">"
			"<span class=\"pill bg-%s\">%s</span></td><td>", res, res, m->passed,
			res, m->passed ? "PASS" : "FAIL") ||
	    html_put(b, m->mailbox ? m->mailbox : "-", err) ||
	    buf_appends(b, "<br><small>", err) ||
	    html_put(b, m->protocol ? m->protocol : "-", err) ||
	    buf_appends(b, "</small></td><td><code>", err) ||
	    html_put(b, m->label ? m->label : m->ini, err) ||
	    buf_appends(b, "</code>", err) ||
	    (m->jobs && (buf_appends(b, "<br><small class=\"jobs\">OpCon: ", err) ||
			 html_put(b, m->jobs, err) || buf_appends(b, "</small>", err))) ||
	    buf_appends(b, "</td>", err))
		return -1;
	for (int s = 0; s < VSTEP_COUNT; s++) {
		const struct verify_step_result *sr = &m->steps[s];
		const char *st = verify_status_name(sr->status);

		if (buf_appendf(b, err, "<td class=\"step%s\" data-k=\"%d\"><span class=\"pill "
				"bg-%s\">%s</span>", sr->status == VST_FAIL ? " failed" : "",
				sr->status == VST_FAIL ? 0 : sr->status == VST_SKIP ? 1 : 2,
				st, st) ||
		    (sr->status != VST_SKIP &&
		     buf_appendf(b, err, "<small>%.2f s</small>", sr->seconds)) ||
		    buf_appends(b, "</td>", err))
			return -1;
	}
	return buf_appends(b, "<td>", err) || html_details(m, b, err) ||
	       buf_appends(b, "</td></tr>\n", err) ? -1 : 0;
}

static int render_html(const struct verify_run *r, struct buf *b,
		       struct ms_err *err)
{
	if (html_header(r, b, err) ||
	    buf_appends(b, "<table class=\"sortable filtered\" id=\"results\"><colgroup>"
			"<col style=\"width:7%\"><col style=\"width:15%\"><col style=\"width:15%\">",
			err))
		return -1;
	for (int s = 0; s < VSTEP_COUNT; s++)
		if (buf_appends(b, "<col style=\"width:7%\">", err))
			return -1;
	if (buf_appends(b, "<col></colgroup>\n<thead><tr><th>Result</th><th>Mailbox</th>"
			"<th>INI file</th>", err))
		return -1;
	for (int s = 0; s < VSTEP_COUNT; s++)
		if (buf_appendf(b, err, "<th class=\"step\">%s</th>", step_names[s]))
			return -1;
	if (buf_appends(b, "<th>Details</th></tr></thead>\n<tbody>\n", err))
		return -1;
	for (size_t i = 0; i < r->n; i++)
		if (html_row(&r->results[i], b, err))
			return -1;
	return buf_appends(b, "</tbody></table>\n</main>\n<script>\n", err) ||
	       buf_appends(b, html_style_table_js(), err) ||
	       buf_appends(b, "</script>\n</body>\n</html>\n", err) ? -1 : 0;
}

int verify_render(const struct verify_run *r, enum verify_format f,
		  char **out, size_t *len, struct ms_err *err)
{
	struct buf b;
	int rc;

	*out = NULL;
	buf_init(&b, REPORT_CAP);
	switch (f) {
	case VFMT_JSON:  rc = render_json(r, &b, err); break;
	case VFMT_JUNIT: rc = render_junit(r, &b, err); break;
	case VFMT_HTML:  rc = render_html(r, &b, err); break;
	default:         rc = render_text(r, &b, err); break;
	}
	if (rc == 0 && buf_append(&b, "", 0, err))
		rc = -1;
	if (rc) {
		buf_release(&b);
		return -1;
	}
	*out = buf_detach(&b, len);
	return 0;
}
