/*
 * fleetdir.h - the fleet folder as files: where the INI files collected
 * from each machine are, and which Windows path each one had.
 *
 *   FLEET/machines/M/D/...     files collected from machine M, drive D
 *                              (folder "D" or "D$", any case)
 *
 * The audit (fleet.h reads the job exports too), migrate and verify all
 * need this much of the layout, so it lives below them.  Also the
 * sorted directory listing the fleet readers walk with.
 *
 * Ownership: the fleet_ini array and a fleet_dirlist own their strings;
 * release them with fleet_inis_free() / fleet_dirlist_free().
 */
#ifndef MS_FLEETDIR_H
#define MS_FLEETDIR_H

#include <stddef.h>
#include "base/err.h"

#define FLEET_MAX_DEPTH 32   /* folders below machines/ or jobs/ */

/* Every *.ini file under FLEET/machines, sorted by machine then path. */
struct fleet_ini {
	char *machine;
	char *windows_path;   /* e.g. "D:\Jobs\finance\recon.ini" */
	char *file;           /* local path */
	char *rel;            /* relative to the fleet folder */
};

/* The Windows path of a fleet-relative file on a machine:
 * "machines/WINAPP01/D/Jobs/a.ini" -> "D:\Jobs\a.ini" (also from a "D$"
 * folder), and the machine's folder name through *machine when not NULL.
 * Both malloc'd; NULL when rel is not such a file (or out of memory). */
char *fleet_windows_path(const char *rel, char **machine);

int fleet_list_inis(const char *dir, struct fleet_ini **out, size_t *n,
		    struct ms_err *err);
void fleet_inis_free(struct fleet_ini *v, size_t n);

/* A folder's entry names, sorted (byte order), hidden entries skipped. */
struct fleet_dirlist {
	char **names;
	size_t n;
};

int fleet_dirlist_read(const char *path, struct fleet_dirlist *d,
		       struct ms_err *err);
void fleet_dirlist_free(struct fleet_dirlist *d);
/* Is entry i of d (path: its full path) a folder?  1 a folder, 2 a
 * symbolic link to one, 0 not a folder.  From the listing's own entry
 * type where the file system gives one (no stat() then), else as
 * fleet_is_dir() and fleet_is_symlink() say. */
int fleet_dirlist_dir(const struct fleet_dirlist *d, size_t i, const char *path);
/* stat(): a folder (following links); lstat(): a symbolic link. */
int fleet_is_dir(const char *path);
int fleet_is_symlink(const char *path);
/* Is path there and no regular file: a FIFO (which would hold its
 * reader for ever, waiting for a writer) or a device (read without
 * end)?  1 if so, and it is not to be read; 0 for a regular file and
 * for a path that cannot be stat'ed (its reader says why it cannot open
 * it).  FLEET_NOT_A_FILE is what a fleet reader says of it, after its
 * name. */
int fleet_not_a_file(const char *path);
#define FLEET_NOT_A_FILE "not a regular file (a FIFO, a device?): not read"
/* Does name end with suffix, ignoring ASCII case (".INI", ".Json")? */
int fleet_ends_with_ci(const char *name, const char *suffix);

#endif
