/*
 * fleet.h - read a fleet folder (job exports, collected INI files per
 * machine, optional notification export); see shared/domain/fleet.md.
 *
 *   FLEET/jobs/...            job exports (.json, .xml), any depth
 *   FLEET/machines/M/D/...     files collected from machine M, drive D
 *                              (folder "D" or "D$", any case)
 *   FLEET/notify/NAME.json     notification SMTP slots (optional)
 *
 * Jobs are delivered one at a time to a callback, and both formats are
 * streamed (libxml2's reader for XML, a small reader of our own for JSON
 * that hands each job object to cJSON on its own, at most FLEET_MAX_JOB
 * bytes), so memory stays flat whatever the size of an export.  A
 * malformed export is reported through the problem callback (naming the
 * file and the line) and the scan goes on with the next file; jobs read
 * before the fault have been delivered.
 *
 * Ownership: every string in a struct fleet_job is borrowed and valid only
 * during the callback.  struct fleet_path, the fleet_ini array and the
 * notify slot array own their strings; release them with the matching
 * *_release / *_free function.
 */
#ifndef MS_FLEET_H
#define MS_FLEET_H

#include <stddef.h>
#include "base/err.h"
#include "base/fleetdir.h"

#define FLEET_MAX_JOB ((size_t)1024 * 1024)   /* one job object in JSON */
#define FLEET_DEFAULT_INI "C:\\ProgramData\\OpConxps\\SMArt Email\\SMArtEmail.ini"

struct fleet_job {
	const char *source;       /* export file, relative to the fleet folder */
	int line;                 /* line of the job in the export, 0 if unknown */
	const char *schedule;     /* never NULL ("" when unknown) */
	const char *name;         /* never NULL */
	const char *machine;      /* never NULL */
	const char *job_type;     /* never NULL, e.g. "Windows" */
	const char *command_line; /* NULL when the job has none */
	const char *working_dir;  /* NULL when none */
	const char *batch_user;   /* NULL when none */
	/* fleet_scan_async() with a prepare handler: what it returned for
	 * this job (the job handler owns it from then on, also when it
	 * fails); NULL otherwise, and when the scan could not start its
	 * thread (prepare() is then not called) */
	void *prepared;
};

struct fleet_handlers {
	/* Called for every job of every export.  Return 0 to go on, -1 (with
	 * err filled) to stop the whole scan. */
	int (*job)(const struct fleet_job *job, void *ctx, struct ms_err *err);
	/* A problem with one file (file relative to the fleet folder, line 0
	 * when unknown); the scan goes on.  May be NULL. */
	void (*problem)(const char *file, int line, const char *msg, void *ctx);
	/* Called after each export file with the count so far (progress
	 * display for big fleets).  May be NULL. */
	void (*file_done)(const char *file, size_t files, void *ctx);
	void *ctx;
	/* fleet_scan_async() only, may be NULL: called on the reader thread
	 * for each job before it is handed over (so it must not touch what
	 * the other handlers use without a lock); its result reaches job()
	 * as job->prepared.  release() frees a result whose job is dropped
	 * (a handler failed): job() never sees it.  fleet_scan() ignores
	 * both. */
	void *(*prepare)(const struct fleet_job *job, void *ctx);
	void (*release)(void *prepared, void *ctx);
	/* May be NULL.  When set, a job that cannot run the connector is
	 * not decoded and reaches neither prepare() nor job(): other() counts
	 * it instead (n jobs at a time; returns 0 to go on, -1 with err
	 * filled to stop the scan, as job()).  The test is
	 * fleet_may_run_connector() on the job's text as the export holds it
	 * (JSON) or on its decoded command line (XML), so every job that
	 * analysis_is_connector_job() accepts still reaches job().  Malformed
	 * jobs are reported through problem() as ever. */
	int (*other)(size_t n, void *ctx, struct ms_err *err);
};

/* Could this text hold a command line that runs the connector?  0 only
 * when it certainly does not: no "smarte" or "mailsh" in any case, not
 * even with quotes or backslashes between the letters (a command line
 * drops those: "smart""email.exe" runs smartemail.exe), and no JSON \u
 * escape that could spell one. */
int fleet_may_run_connector(const char *text, size_t len);

/* Scan FLEET/jobs (files in byte order of their paths, so reports are
 * stable).  Fails only when the folder or its jobs/ folder cannot be read
 * (MS_ERR_IO) or a callback fails. */
int fleet_scan(const char *dir, const struct fleet_handlers *h,
	       struct ms_err *err);
/* The same scan with the exports read on a second thread while the
 * handlers run on the caller's: they get the same calls, in the same
 * order, with the same arguments.  At most a few hundred KB of read jobs
 * wait between the two, so memory stays flat.  When a handler fails, the
 * reader stops and what it had read is dropped.  Falls back to
 * fleet_scan() when no thread can be started. */
int fleet_scan_async(const char *dir, const struct fleet_handlers *h,
		     struct ms_err *err);

/* Is a job type one that can run the connector ("Windows", or unknown)? */
int fleet_job_is_windows(const struct fleet_job *job);

/* Where a Windows path of a machine is in the fleet folder. */
enum fleet_where {
	FLEET_FOUND = 0,
	FLEET_NOT_FOUND,      /* the file (or the machine) was not collected */
	FLEET_AMBIGUOUS,      /* an 8.3 name or a case clash with several candidates */
	FLEET_UNRESOLVED,     /* a [[PROPERTY]] or unknown %VAR% in the path */
	FLEET_UNSUPPORTED     /* UNC or relative without a working directory */
};

struct fleet_path {
	enum fleet_where where;
	char *windows_path;   /* absolute, backslashes, as the job names it */
	char *file;           /* local file (FLEET/machines/M/...) when found */
	char *rel;            /* the same relative to the fleet folder */
	char *detail;         /* why not found / which candidates, or NULL */
};

/* Resolve the INI file of a job: inifile is the -inifile: value (NULL for
 * the default file), relative to working_dir; %PROGRAMDATA% means
 * C:\ProgramData.  Fails only when out of memory; how the lookup went is
 * in p->where. */
int fleet_resolve_ini(const char *dir, const char *machine,
		      const char *inifile, const char *working_dir,
		      struct fleet_path *p, struct ms_err *err);
/* The same for any path on a machine (certificate files). */
int fleet_resolve_path(const char *dir, const char *machine,
		       const char *winpath, const char *working_dir,
		       struct fleet_path *p, struct ms_err *err);
/* The same lookup on a machine's own disk (mailshift-audit collect, on
 * the agent): winpath absolute ("C:\\x\\y.ini", as p->windows_path of the
 * two above gives it), root a folder whose entries are the drives ("C",
 * "D", also "C$"), or NULL for the running system's own drives ("C:/").
 * p->file is the file found, p->rel "C/ProgramData/..." with the names as
 * stored (an 8.3 or wrongly cased name resolved to the long one). */
int fleet_resolve_on_disk(const char *root, const char *winpath,
			  struct fleet_path *p, struct ms_err *err);
void fleet_path_release(struct fleet_path *p);
const char *fleet_where_name(enum fleet_where w);

/* The 8.3 test: could short (e.g. "PROGRA~1") be the short name of long
 * (e.g. "Program Files")?  Ignores the ~N number. */
int fleet_short_name_matches(const char *shortname, const char *longname);

/* The files under FLEET/jobs that a scan does not read because their
 * names are not those of exports (*.json, *.xml), fleet-relative, in scan
 * order; *out is a malloc'd array of malloc'd strings (free each, then
 * it).  Fails only when out of memory or jobs/ cannot be read. */
int fleet_list_ignored(const char *dir, char ***out, size_t *n,
		       struct ms_err *err);


/* One notification SMTP slot (SMTPSERVER{n} and friends). */
struct fleet_notify_slot {
	char *source;         /* notify/x.json, relative to the fleet folder */
	int slot;             /* 1..4 */
	char *server;
	int port;             /* 0 when absent */
	char *user;           /* NULL when absent */
	int has_password;     /* SMTPPASSWORD set (the value is never kept) */
	int ssl;              /* SMTPSSL true */
	char *app_id;         /* SMTPAPPID, NULL when absent */
	int has_secret;       /* SMTPSECRET set */
	char *tenant_id;      /* SMTPTENANTID */
};

/* Read FLEET/notify/NAME.json (absent folder: no slots, no error).  Malformed
 * files go to h->problem. */
int fleet_read_notify(const char *dir, const struct fleet_handlers *h,
		      struct fleet_notify_slot **out, size_t *n,
		      struct ms_err *err);
void fleet_notify_free(struct fleet_notify_slot *v, size_t n);

/* Convert an export's bytes to UTF-8: strips a UTF-8 BOM, converts
 * UTF-16LE/BE (with BOM, or LE evident from zero bytes).  *out is
 * malloc'd and NUL-terminated.  Bad UTF-16 fails with MS_ERR_DATA. */
int fleet_to_utf8(const char *data, size_t len, char **out, size_t *outlen,
		  struct ms_err *err);

#endif
