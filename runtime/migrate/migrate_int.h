/*
 * migrate_int.h - what the files of the migrate engine share among
 * themselves (not for other modules: they use migrate.h).
 */
#ifndef MS_MIGRATE_INT_H
#define MS_MIGRATE_INT_H

#include "migrate/migrate.h"

/* An item's state (items.state, stored as its name):
 *   planned -> applying -> applied, or skipped / conflict / failed;
 *   rollback: -> rolled-back. */
enum migrate_item_state {
	MI_NONE = 0,        /* no state yet / no change to make */
	MI_PLANNED,
	MI_APPLYING,
	MI_APPLIED,
	MI_SKIPPED,
	MI_CONFLICT,
	MI_FAILED,
	MI_ROLLED_BACK,
};

/* What a job's command line needs (jobs.action, stored as its name). */
enum migrate_job_action {
	MJ_UNSET = 0,       /* not decided (stored as "none") */
	MJ_NONE,
	MJ_CHANGE,
	MJ_MANUAL,
	MJ_SKIPPED,
};

/* The stored names ("planned", "rolled-back", "manual"); "" for MI_NONE. */
const char *migrate_item_state_name(enum migrate_item_state s);
const char *migrate_job_action_name(enum migrate_job_action a);
/* A stored name back to its value; -1 for a name we never write. */
int migrate_item_state_parse(const char *name, enum migrate_item_state *s);
int migrate_job_action_parse(const char *name, enum migrate_job_action *a);

#endif
