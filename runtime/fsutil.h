/*
 * fsutil.h - file system primitives with the durability rules the whole
 * product relies on: nothing is ever half-written.
 */
#ifndef MS_FSUTIL_H
#define MS_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>
#include "err.h"

/* Read a whole file, refusing files above cap bytes.  *data is
 * NUL-terminated and owned by the caller (free()). */
int fs_read_file(const char *path, size_t cap, char **data, size_t *len,
		 struct ms_err *err);

/* Write data to path atomically and durably: a temporary file in the same
 * directory (".name.tmp.PID.N"), fsync, rename over path, fsync the
 * directory.  mode applies to a new file; an existing file keeps its mode. */
int fs_write_atomic(const char *path, const void *data, size_t len,
		    mode_t mode, struct ms_err *err);

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
