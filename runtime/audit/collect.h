/*
 * collect.h - assemble the fleet folder through the scheduler instead of
 * by hand (docs/fleet.md has the file formats).
 *
 *   collect_plan()   central: from FLEET/jobs, per machine a manifest of
 *                    the files its connector jobs need, and an OpCon
 *                    import file (Deploy JSON, schedule MAILSHIFT_COLLECT)
 *                    with one Windows job per machine running "collect";
 *   collect_run()    on the agent: each manifest path resolved with the
 *                    machine's own file system, copied byte for byte into
 *                    SHARE/machines/<MACHINE>/<DRIVE>/<path>, and a receipt
 *                    (sizes and SHA-256 only, never content) written to
 *                    SHARE/collect/receipts/<MACHINE>.json.
 *
 * Where a job's INI file is, and how an 8.3 or wrongly cased name is
 * matched, is decided once, in fleet.h (fleet_resolve_ini() centrally,
 * fleet_resolve_on_disk() on the agent).
 *
 * Ownership: strings in the option structs are borrowed; the result
 * structs own theirs (collect_plan_result_release(),
 * collect_result_release()).
 */
#ifndef MS_COLLECT_H
#define MS_COLLECT_H

#include <stddef.h>
#include "base/err.h"

#define COLLECT_SCHEDULE "MAILSHIFT_COLLECT"
#define COLLECT_DEFAULT_EXE "C:\\Program Files\\mailshift\\mailshift-audit.exe"
#define COLLECT_MAX_FILE ((size_t)64 * 1024 * 1024)   /* one collected file */
#define COLLECT_MAX_MANIFEST ((size_t)16 * 1024 * 1024)

struct collect_plan_opts {
	const char *fleet_dir;    /* reads FLEET/jobs */
	const char *share;        /* the share as the agents name it (UNC) */
	const char *out_dir;      /* the share as this machine sees it; NULL:
				   * the fleet folder */
	const char *exe;          /* NULL: COLLECT_DEFAULT_EXE */
	const char *notify;       /* "MACHINE=WINPATH": that machine also sends
				   * the notification export, or NULL */
};

struct collect_plan_result {
	size_t machines, files, unresolved, jobs;
	char *manifest_dir;       /* OUT/collect/manifests */
	char *import_file;        /* OUT/collect/MAILSHIFT_COLLECT.json */
	char **problems;          /* exports that could not be read: "file:line: msg" */
	size_t n_problems;
};

int collect_plan(const struct collect_plan_opts *o, struct collect_plan_result *r,
		 struct ms_err *err);
void collect_plan_result_release(struct collect_plan_result *r);

struct collect_opts {
	const char *manifest;     /* the machine's manifest file */
	const char *share;        /* where machines/ and collect/receipts/ are */
	const char *machine;      /* NULL: %COMPUTERNAME%, else the host name */
	const char *root;         /* NULL: this system's drives; else a folder
				   * whose entries are the drives (C, D):
				   * tests, or a mounted disk image */
};

/* What happened to one manifest entry. */
enum collect_status {
	COLLECT_COPIED = 0,
	COLLECT_MISSING,          /* not there (or a folder) */
	COLLECT_AMBIGUOUS,        /* an 8.3 name with several candidates */
	COLLECT_UNREADABLE,       /* there, but could not be read (why says) */
	COLLECT_UNRESOLVED,       /* [[PROPERTY]], %VAR%, UNC: no local path */
	COLLECT_STATUS_COUNT
};

struct collect_result {
	char *machine;            /* the folder written under machines/ */
	char *receipt;            /* the receipt file */
	size_t counts[COLLECT_STATUS_COUNT];
	int machine_differs;      /* the manifest was made for another machine */
};

/* Fails (nothing changed in the share) when the manifest cannot be read,
 * the machine name is not a usable folder name, or the share cannot be
 * written; a file that is missing or unreadable is only reported. */
int collect_run(const struct collect_opts *o, struct collect_result *r,
		struct ms_err *err);
void collect_result_release(struct collect_result *r);
const char *collect_status_name(enum collect_status s);

/* The import files of the fleet schedules (also mailshift-migrate's
 * MAILSHIFT_DEPLOY): Windows jobs in the Deploy JSON shape the audit reads
 * ({"scheduleList": [{"name", "jobList": [...]}]}), grouped by schedule in
 * the order given.  working_dir and batch_user may be NULL. */
struct import_job {
	const char *schedule, *name, *machine, *command_line, *working_dir,
		   *batch_user;
};
int collect_import_write(const char *path, const struct import_job *jobs,
			 size_t n, struct ms_err *err);
/* share + each part, joined with the share's own separator ('\' for UNC
 * and drive paths, '/' for a POSIX folder).  malloc'd, NULL when out of
 * memory. */
char *collect_share_path(const char *share, const char *const *parts, size_t n);
/* text and a final newline into path, atomically (0600 when private). */
int collect_write_json(const char *path, const char *text, int private_file,
		       struct ms_err *err);

#endif
