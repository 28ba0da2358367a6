/*
 * fleet_int.h - what the files of the fleet reader share (fleet.c,
 * fleet_json.c, fleet_paths.c); other modules use fleet.h.
 */
#ifndef MS_FLEET_INT_H
#define MS_FLEET_INT_H

#include "audit/fleet.h"

struct cJSON;

/* A malformed export: reported through h->problem, naming file and line. */
void fleet_problem(const struct fleet_handlers *h, const char *file, int line,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* fleet_json.c */
int fleet_scan_json(const char *path, const char *rel,
		    const struct fleet_handlers *h, struct ms_err *err);
/* A field that is a string or an object with one of the given names. */
const char *fleet_jname(const struct cJSON *o, const char *key, const char *k1,
			const char *k2);
/* The 1-based line of byte off in text. */
int fleet_line_of(const char *text, size_t off);

#endif
