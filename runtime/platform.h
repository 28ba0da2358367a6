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

#endif
