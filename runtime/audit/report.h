/*
 * report.h - mailshift-audit's output formats: a terminal summary (text),
 * JSON (the machine-readable contract), CSV (one row per job) and one
 * self-contained HTML file (no network; everything from the fleet is
 * escaped).  Text, JSON and CSV are deterministic (no timestamps, audit
 * order: golden files); the HTML page shows when it was made (now).
 * Command lines are already redacted by analysis.c; reports never hold a
 * secret.
 *
 * Ownership: report_render() hands a malloc'd NUL-terminated buffer to the
 * caller; report_write() borrows the FILE.  The audit is borrowed.
 */
#ifndef MS_REPORT_H
#define MS_REPORT_H

#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "audit/analysis.h"
#include "base/err.h"

enum report_format { REPORT_TEXT = 0, REPORT_JSON, REPORT_CSV, REPORT_HTML };

struct report_opts {
	enum report_format format;
	const char *fleet_dir;    /* shown in the report as given */
	const char *version;      /* tool version shown in HTML (not in JSON, to
				   * keep golden files stable), may be NULL */
	time_t made;              /* the date HTML says it was made; 0 = now
				   * (one value, so two renders agree) */
};

/* "text", "json", "csv", "html" (any case); -1 when unknown. */
int report_format_parse(const char *s, enum report_format *f);

int report_render(const struct audit *a, const struct report_opts *o,
		  char **out, size_t *len, struct ms_err *err);
/* A spilled audit (analysis_opts.spill) renders as text, JSON or CSV; HTML
 * needs the verdicts in memory (MS_ERR_INTERNAL otherwise).
 * report_write(): the same report streamed to fp (the caller's, left
 * open and not flushed): never whole in memory, written in chunks of a
 * few hundred KB.  Fails (MS_ERR_IO) when a write fails; fp then holds
 * part of the report. */
int report_write(const struct audit *a, const struct report_opts *o,
		 FILE *fp, struct ms_err *err);


/* The one-line fix of a finding code (a static string; a generic text
 * for unknown codes). */
const char *report_finding_fix(const char *code);

#endif
