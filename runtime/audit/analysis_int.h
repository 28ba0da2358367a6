/*
 * analysis_int.h - what the files of the analysis engine share
 * (analysis.c, analysis_checks.c, analysis_spill.c); other modules use
 * analysis.h.
 */
#ifndef MS_ANALYSIS_INT_H
#define MS_ANALYSIS_INT_H

#include <stdint.h>
#include <string.h>

#include "audit/analysis.h"
#include "ini/profile.h"

struct audit_spill;

/* shared-ini: how many of the jobs sharing an INI file are named */
#define SHARED_LIST_MAX 10

static inline char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* analysis.c */
void analysis_sort_findings(struct job_verdict *v);
uint64_t analysis_fnv1a(const char *s, size_t n);
/* The problem of an export, or NULL. */
const struct audit_problem *audit_problem_of(const struct audit *a,
					     const char *source);
void audit_mark_incomplete(struct job_verdict *v, const struct audit_problem *p,
			   char **owned);
int audit_shared_inis(struct audit *a, struct ms_err *err);
int audit_add_finding(struct finding **f, size_t *n, const char *code,
		      enum finding_severity sev, char *msg, struct ms_err *err);

/* A job's source as listed when it was read from more than one export:
 * "jobs/a.json:12" (no ":line" when unknown).  *out is malloc'd. */
int audit_job_source(const struct job_verdict *v, char **out,
		     struct ms_err *err);

/* analysis_spill.c: verdicts kept in a temporary database */
int audit_spill_open(struct audit_spill **out, struct ms_err *err);
void audit_spill_free(struct audit_spill *s);
/* Returns 1, not 0, when v is a job already spilled from another export
 * (only its source is added). */
int audit_spill_add(struct audit_spill *s, const struct job_verdict *v,
		    struct ms_err *err);
/* After the scan: the rows indexed in report order. */
int audit_spill_finish(struct audit *a, struct ms_err *err);
/* How many connector jobs use the collected INI file. */
size_t audit_spill_ini_jobs(const struct audit_spill *s, const char *file);
int audit_spill_each(const struct audit *a, unsigned mask,
		     int (*fn)(const struct job_verdict *v, void *ctx,
			       struct ms_err *err),
		     void *ctx, struct ms_err *err);

#endif
