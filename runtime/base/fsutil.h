/*
 * fsutil.h - file system primitives with the durability rules the whole
 * product relies on: nothing is ever half-written.
 */
#ifndef MS_FSUTIL_H
#define MS_FSUTIL_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include "base/err.h"

/* Read a whole file, refusing files above cap bytes.  *data is
 * NUL-terminated and owned by the caller (free()). */
int fs_read_file(const char *path, size_t cap, char **data, size_t *len,
		 struct ms_err *err);

/* fs_read_file() that also gives the file's mode (permission bits, from
 * the fstat of the open file, so no second lookup of path) and returns 1,
 * not an error, when path does not exist (ENOENT, ENOTDIR).  mode may be
 * NULL.  On 1 and -1, *data is NULL. */
int fs_read_file_mode(const char *path, size_t cap, char **data, size_t *len,
		      mode_t *mode, struct ms_err *err);

/* Write data to path atomically and durably: a temporary file in the same
 * directory (".name.tmp.PID.N"), fsync, rename over path, fsync the
 * directory.  mode applies to a new file; an existing file keeps its mode. */
int fs_write_atomic(const char *path, const void *data, size_t len,
		    mode_t mode, struct ms_err *err);

/* Whether a folder entry is one of fs_write_atomic()'s temporary files
 * (".NAME.tmp.PID.N"): 1 with the length of NAME (it starts at entry + 1)
 * and the writer's PID, else 0.  NAME may itself hold ".tmp.". */
int fs_temp_name_parse(const char *entry, size_t *name_len, long *pid);

/* Remove from dir the temporary files of fs_write_atomic() and its kin
 * (fs_temp_name_parse()) that a process killed while writing left: those
 * whose writer is surely gone (platform_pid_may_own(): no process has its
 * PID, or the one that has it now started after the file was last
 * written) and, when want is not NULL, whose NAME
 * (not NUL-terminated: len bytes) want accepts.  One listing of dir; a
 * folder that cannot be listed is left alone.  Returns how many it
 * removed. */
size_t fs_clean_dead_temps(const char *dir,
			   int (*want)(const char *name, size_t len, void *ctx),
			   void *ctx);

/* fs_clean_dead_temps() for one file: in path's folder, those of path's
 * name and, when suffix is not NULL, of its name followed by suffix. */
size_t fs_clean_dead_temps_of(const char *path, const char *suffix);

/* A file written as a stream, then put in place as fs_write_atomic()
 * puts its bytes: fs_atomic_open() creates the temporary file (the mode
 * of an existing path kept, else mode) and gives it as a->fp;
 * fs_atomic_commit() flushes, fsyncs and renames it over path, then
 * fsyncs the folder; fs_atomic_abort() removes it, path untouched.  Both
 * release a; after a failed open there is nothing to release. */
struct fs_atomic {
	FILE *fp;
	char *path, *tmp;
};
int fs_atomic_open(struct fs_atomic *a, const char *path, mode_t mode,
		   struct ms_err *err);
int fs_atomic_commit(struct fs_atomic *a, struct ms_err *err);
void fs_atomic_abort(struct fs_atomic *a);

/* fs_write_atomic() without its last step, for a writer that replaces
 * many files: a temporary file in the same directory is written, given
 * exactly mode (no umask; the existing file is not stat()ed: pass the mode
 * it should keep), fsynced and renamed over path.  The bytes are durable
 * when this returns, the rename is NOT: the caller must fs_fsync_dir()
 * path's directory before it treats the change as done (one directory
 * fsync then covers every rename made in that directory). */
int fs_write_atomic_nodirsync(const char *path, const void *data, size_t len,
			      mode_t mode, struct ms_err *err);

/* fs_write_atomic_nodirsync() in two steps, for a writer that writes a
 * file's bytes before it knows it will put them in place:
 * fs_stage_write() writes the temporary sibling of path (exactly mode,
 * fsynced) and returns its name (malloc'd; NULL and err on failure), which
 * changes nothing a reader of path or of its folder's files sees but that
 * name; fs_stage_commit() renames it over path (on failure it is removed
 * and err names path); fs_stage_discard() removes it (tmp may be NULL).
 * Both free tmp.  A process killed between the two leaves the temporary
 * file to fs_clean_dead_temps(). */
char *fs_stage_write(const char *path, const void *data, size_t len, mode_t mode,
		     struct ms_err *err);
int fs_stage_commit(char *tmp, const char *path, struct ms_err *err);
void fs_stage_discard(char *tmp);

/* fs_write_atomic_nodirsync() without any fsync: written and renamed into
 * place, durable only once the caller has made the file system durable
 * (platform_sync_fs) or fsynced the file (fs_fsync_file) and its
 * directory.  For a writer of many small files that makes them durable
 * together. */
int fs_write_unsynced(const char *path, const void *data, size_t len,
		      mode_t mode, struct ms_err *err);
/* fsync one existing file. */
int fs_fsync_file(const char *path, struct ms_err *err);

/* Create a file that must not exist yet, atomically (temp + link(2)), so a
 * reader never sees it partial.  Fails with EEXIST semantics: returns 1 if
 * the path already exists, 0 on success, -1 on error. */
int fs_create_exclusive(const char *path, const void *data, size_t len,
			mode_t mode, struct ms_err *err);

/* mkdir -p with mode for created components. */
int fs_mkdirs(const char *path, mode_t mode, struct ms_err *err);

int fs_fsync_dir(const char *dir, struct ms_err *err);

/* Join dir and name into a newly allocated string. */
char *fs_join(const char *dir, const char *name);

int fs_exists(const char *path);

#endif
