#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

static void vset(struct ms_err *err, enum ms_errcode code, int line,
		 const char *fmt, va_list ap)
{
	if (!err || err->code != MS_OK)
		return;
	err->code = code;
	err->line = line;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

int err_set(struct ms_err *err, enum ms_errcode code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vset(err, code, 0, fmt, ap);
	va_end(ap);
	return -1;
}

int err_set_line(struct ms_err *err, enum ms_errcode code, int line,
		 const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vset(err, code, line, fmt, ap);
	va_end(ap);
	return -1;
}

int err_prefix(struct ms_err *err, const char *fmt, ...)
{
	char head[MS_ERR_MSG_MAX], joined[2 * MS_ERR_MSG_MAX + 2];
	size_t n;
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	/* join in a buffer large enough for both, then cut to the record */
	snprintf(joined, sizeof(joined), "%s: %s", head, err->msg);
	n = strlen(joined);
	if (n >= sizeof(err->msg))
		n = sizeof(err->msg) - 1;
	memcpy(err->msg, joined, n);
	err->msg[n] = '\0';
	if (err->code == MS_OK)
		err->code = MS_ERR_INTERNAL;
	return -1;
}

void err_clear(struct ms_err *err)
{
	if (!err)
		return;
	err->code = MS_OK;
	err->line = 0;
	err->msg[0] = '\0';
}

const char *err_code_name(enum ms_errcode code)
{
	static const char *const names[] = {
		"ok", "usage", "config", "io", "network", "tls", "auth",
		"protocol", "data", "out of memory", "too big", "busy",
		"throttled", "internal",
	};
	if ((unsigned)code < sizeof(names) / sizeof(names[0]))
		return names[code];
	return "unknown";
}

int err_is_temporary(const struct ms_err *err)
{
	return err && (err->code == MS_ERR_NET || err->code == MS_ERR_BUSY ||
		       err->code == MS_ERR_THROTTLED);
}

int err_sysexit(const struct ms_err *err)
{
	if (!err)
		return EX_SOFTWARE;
	switch (err->code) {
	case MS_OK: return EX_OK;
	case MS_ERR_USAGE: return EX_USAGE;
	case MS_ERR_CONFIG: return EX_CONFIG;
	case MS_ERR_IO: return EX_IOERR;
	case MS_ERR_NET: case MS_ERR_BUSY: case MS_ERR_THROTTLED:
		return EX_TEMPFAIL;
	case MS_ERR_TLS: return EX_PROTOCOL;
	case MS_ERR_AUTH: return EX_NOPERM;
	case MS_ERR_PROTO: return EX_PROTOCOL;
	case MS_ERR_DATA: case MS_ERR_TOOBIG: return EX_DATAERR;
	case MS_ERR_NOMEM: return EX_OSERR;
	default: return EX_SOFTWARE;
	}
}
