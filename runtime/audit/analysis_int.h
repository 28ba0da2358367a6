/*
 * analysis_int.h - what the files of the analysis engine share
 * (analysis.c, analysis_checks.c, analysis_inicache.c, analysis_spill.c);
 * other modules use
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

/* analysis_inicache.c */
/*
 * The INI cache of one audit run: jobs sharing an INI file are common
 * (shared-ini), so the INI lookup (path resolution on the fleet folder)
 * and its parse are done once per distinct (machine, -inifile:, working
 * directory) and reused.  The fleet is not expected to change during a
 * run.  Open addressing, FNV-1a; entries own everything in them.
 */
struct ini_entry {
	char *key;                      /* machine NUL inifile NUL wd, see ini_key */
	size_t keylen;
	struct fleet_path fp;
	int have_cfg;
	int cp1252;                     /* saved as Windows-1252: read converted */
	int evicted;                    /* cfg released (INI_CACHE_LOADED): load again */
	struct config cfg;
	struct rules_memo rules;        /* cfg's rule findings, once known */
	char *load_msg;                 /* config_load() failure, fleet-relative */
};

/* At most this many entries keep their struct config (~4 KB each, about
 * 100 allocations; analysis_opts.ini_loaded_max): the oldest loaded is
 * released when another is loaded, and loaded again if a later job uses
 * it (the rest of the entry, its rule findings included, stays).  Most
 * INI files serve one job; keeping every config of a 10,000-file fleet
 * grew the heap by ~30 MB (a page fault per 4 KB), and freeing them all
 * was part of the serial tail after the scan. */
#define INI_CACHE_LOADED 1024

struct ini_cache {
	struct ini_entry **slots;
	size_t n, alloc;
	struct rules_masks *masks;      /* shared by the entries' rules memos */
	/* the entries holding a config, oldest first from ring[head] */
	struct ini_entry **ring;
	size_t ring_cap, ring_n, head;
};

uint64_t analysis_fnv1a(const char *s, size_t n);
void audit_ini_entry_free(struct ini_entry *e);
void audit_ini_cache_free(struct ini_cache *c);
/* Resolve and load the INI file of a job (once per distinct lookup when c
 * is not NULL).  *out is owned by the cache, or by the caller when c is
 * NULL (release with audit_ini_entry_free()). */
int audit_ini_lookup(struct ini_cache *c, const struct analysis_opts *o,
		     const char *machine, const char *inifile,
		     const char *working_dir, struct ini_entry **out,
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
