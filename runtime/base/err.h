/*
 * err.h - the error record every fallible library function fills.
 *
 * Ownership: the caller owns the struct ms_err (usually on its stack).
 * Functions that can fail return 0 on success or -1 on failure and, on
 * failure, fill *err.  The first error wins: err_set() on a record that
 * already holds an error keeps the original, so low-level causes are not
 * overwritten by generic wrappers.  Use err_prefix() to add context.
 *
 * Messages follow git's style: lowercase, no full stop, subjects quoted
 * ("cannot open 'x.ini': permission denied").  They never contain
 * secrets; callers redact before formatting.
 */
#ifndef MS_ERR_H
#define MS_ERR_H

#include <stddef.h>

enum ms_errcode {
	MS_OK = 0,
	MS_ERR_USAGE,    /* bad command line */
	MS_ERR_CONFIG,   /* malformed or incomplete configuration */
	MS_ERR_IO,       /* local file system */
	MS_ERR_NET,      /* connection, DNS, timeout: worth retrying later */
	MS_ERR_TLS,      /* certificate or handshake refused */
	MS_ERR_AUTH,     /* credentials or token refused */
	MS_ERR_PROTO,    /* server said something we cannot use */
	MS_ERR_DATA,     /* malformed input data (mail, export, JSON) */
	MS_ERR_NOMEM,
	MS_ERR_TOOBIG,   /* a size cap was hit */
	MS_ERR_BUSY,     /* locked by another process */
	MS_ERR_THROTTLED,/* server asked us to back off */
	MS_ERR_INTERNAL
};

#define MS_ERR_MSG_MAX 1024

struct ms_err {
	enum ms_errcode code;
	int line;                 /* file line the error refers to, 0 if none */
	char msg[MS_ERR_MSG_MAX];
};

#define MS_ERR_INIT { MS_OK, 0, "" }

/* Set an error unless one is already set.  Always returns -1. */
int err_set(struct ms_err *err, enum ms_errcode code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Like err_set() with a line number. */
int err_set_line(struct ms_err *err, enum ms_errcode code, int line,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Prepend "context: " to an existing message.  Always returns -1. */
int err_prefix(struct ms_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void err_clear(struct ms_err *err);

/* Short name of a code, e.g. "config". */
const char *err_code_name(enum ms_errcode code);

/* True for errors a scheduler should simply retry later (network, busy,
 * throttled). */
int err_is_temporary(const struct ms_err *err);

/* Map an error to a sysexits.h value (EX_TEMPFAIL for temporary ones). */
int err_sysexit(const struct ms_err *err);

#endif
