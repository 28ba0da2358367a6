#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>

static log_sink_fn sink;
static void *sink_ctx;
static enum log_level sink_max = LOG_LVL_WARN;

void log_set_sink(log_sink_fn fn, void *ctx, enum log_level max_level)
{
	sink = fn;
	sink_ctx = ctx;
	sink_max = max_level;
}

int log_enabled(enum log_level level)
{
	return sink && level <= sink_max;
}

static void vlog(enum log_level level, const char *fmt, va_list ap)
{
	char msg[2048];

	if (!log_enabled(level))
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	sink(level, msg, sink_ctx);
}

#define DEFINE_LOG(name, level)                      \
	void name(const char *fmt, ...)              \
	{                                            \
		va_list ap;                          \
		va_start(ap, fmt);                   \
		vlog(level, fmt, ap);                \
		va_end(ap);                          \
	}

DEFINE_LOG(log_warnx, LOG_LVL_WARN)
DEFINE_LOG(log_info, LOG_LVL_INFO)
DEFINE_LOG(log_debug, LOG_LVL_DEBUG)
DEFINE_LOG(log_trace, LOG_LVL_TRACE)

void log_stderr_sink(enum log_level level, const char *msg, void *ctx)
{
	const char *prog = ctx ? (const char *)ctx : "mailshift";
	const char *tag = level == LOG_LVL_ERROR ? "error: "
			: level == LOG_LVL_WARN ? "warning: " : "";

	fprintf(stderr, "%s: %s%s\n", prog, tag, msg);
}
