/*
 * log.h - the library's only way to say something.
 *
 * The library never writes to stdout/stderr itself: it calls the sink a
 * program installs with log_set_sink().  Without a sink, messages are
 * dropped.  Never pass secrets; use log_redact helpers in the callers.
 */
#ifndef MS_LOG_H
#define MS_LOG_H

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG, LOG_LVL_TRACE };

typedef void (*log_sink_fn)(enum log_level level, const char *msg, void *ctx);

void log_set_sink(log_sink_fn fn, void *ctx, enum log_level max_level);
int log_enabled(enum log_level level);

void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Stderr sink for programs: "prog: message". ctx is the program name. */
void log_stderr_sink(enum log_level level, const char *msg, void *ctx);

#endif
