/*
 * fleet_int.h - what the files of the fleet reader share (fleet.c,
 * fleet_json.c, fleet_xml.c, fleet_paths.c); other modules use fleet.h.
 */
#ifndef MS_FLEET_INT_H
#define MS_FLEET_INT_H

#include "audit/fleet.h"

struct cJSON;

/* A malformed export: reported through h->problem, naming file and line. */
void fleet_problem(const struct fleet_handlers *h, const char *file, int line,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* fleet_xml.c: a Schedule Extract export.  fleet_scan_xml_as() is for
 * the tests: FLEET_XML_LIBXML2 reads with libxml2 only, FLEET_XML_SUBSET
 * with the subset scanner only (returns 1 when it gave up, having
 * handed over *handed jobs), FLEET_XML_AUTO as fleet_scan_xml(). */
enum fleet_xml_how { FLEET_XML_AUTO, FLEET_XML_LIBXML2, FLEET_XML_SUBSET };
int fleet_scan_xml(const char *path, const char *rel,
		   const struct fleet_handlers *h, struct ms_err *err);
int fleet_scan_xml_as(const char *path, const char *rel,
		      const struct fleet_handlers *h, enum fleet_xml_how how,
		      size_t *handed, struct ms_err *err);

/* fleet_json.c */
int fleet_scan_json(const char *path, const char *rel,
		    const struct fleet_handlers *h, struct ms_err *err);
/* A field that is a string or an object with one of the given names. */
const char *fleet_jname(const struct cJSON *o, const char *key, const char *k1,
			const char *k2);
/* The 1-based line of byte off in text. */
int fleet_line_of(const char *text, size_t off);

#endif
