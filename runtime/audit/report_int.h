/*
 * report_int.h - what report.c (text, JSON, CSV, the streaming sink) and
 * report_html.c (the HTML page) share.  Not for other modules.
 */
#ifndef MS_REPORT_INT_H
#define MS_REPORT_INT_H

#include <stddef.h>

#include "audit/report.h"
#include "base/buf.h"

/* The finding codes explained (static strings). */
struct report_code {
	const char *code, *why, *fix;
};
extern const struct report_code report_catalogue[];
extern const size_t report_catalogue_n;

/* The streaming writer of report_write(); NULL when rendering into memory. */
struct sink;

/* Hands what b holds to the sink once it is large enough (force: always);
 * a no-op without a sink. */
int report_spill(struct buf *b, struct sink *k, int force, struct ms_err *err);
/* The sentences that must come before any count (no job read, incomplete
 * exports); appends nothing when neither. */
int report_headline(const struct audit *a, struct buf *b, struct ms_err *err);

int report_render_html(const struct audit *a, const struct report_opts *o,
		       struct buf *b, struct sink *k, struct ms_err *err);

#endif
