/*
 * platform.h - what differs between operating systems, in one place.
 *
 * The rest of the library is written against POSIX as Linux has it; the
 * calls here are the seam where another system (Windows agents) gets its
 * own implementation.  platform_posix.c is the one for Linux.
 */
#ifndef MS_PLATFORM_H
#define MS_PLATFORM_H

/* Keep this process from ever writing a core dump or being attached to
 * by another user's debugger: a core of the connector or a tool would hold
 * the mailbox, OpCon and client secrets in clear.  Every program calls it
 * first.  Returns 0, or -1 when the system refused (the program goes on:
 * it is hardening, not a precondition). */
int platform_no_core_dumps(void);

/* Make every file written on the file system that holds dir durable, with
 * their names (Linux: syncfs(2)): one call for many small files instead of
 * an fsync each.  0 when done, -1 with err on failure, 1 when this system
 * cannot (the caller then fsyncs each file and the directory). */
struct ms_err;
int platform_sync_fs(const char *dir, struct ms_err *err);

#endif
