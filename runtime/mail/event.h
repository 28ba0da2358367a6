/*
 * event.h - token substitution and the text of OpCon external events and
 * audit log lines.  Pure string work: writing MSGIN files is the caller's.
 *
 * Tokens are written [[NAME]] and matched case-insensitively.  A token we
 * do not know is left exactly as written, which keeps OpCon's own tokens
 * ([[$DATE]], [[$SCHEDULE DATE]], everything starting with '$') for OpCon
 * to expand.  Substitution is one pass over the template: a value that
 * itself contains "[[X]]" is never expanded again.
 *
 * The security rule: a value that came from mail (sender, subject, body
 * line captures, attachment names, reason, date) is escaped at
 * substitution time according to the mode, so it can never add a field or
 * a line:
 *   SUBST_EVENT  ','  -> ';'   (a comma separates OpCon event fields)
 *                CR, LF, NUL, TAB and every other control character
 *                (C0, DEL, C1) -> ' '
 *                non-ASCII -> an ASCII transliteration (e -> e for é,
 *                ss for ß, '"' for curly quotes, "EUR" for the euro sign,
 *                ...) or '?' (MSGIN files are plain ASCII)
 *   SUBST_LINE   controls (incl. CR, LF, TAB) -> ' '; UTF-8 kept.
 *                For log lines and mail header values (Subject:).
 *   SUBST_TEXT   like SUBST_LINE but LF is kept (CR dropped): mail bodies.
 *   SUBST_RAW    values verbatim: configuration into configuration
 *                ([Tokens] into masks, sender lists and event templates).
 * "Trusted" values ([Tokens] from the INI file) keep their commas in
 * SUBST_EVENT mode (an admin may put several fields in one token) but
 * still lose control characters and non-ASCII.
 *
 * Ownership: every char ** output is a new heap string owned by the
 * caller (free()); a line from event_render() holds the OpCon password:
 * release it with event_line_free(), which wipes it first.
 */
#ifndef MS_EVENT_H
#define MS_EVENT_H

#include <stddef.h>
#include <time.h>
#include "base/err.h"

enum subst_mode { SUBST_RAW, SUBST_EVENT, SUBST_LINE, SUBST_TEXT };

struct subst_var {             /* borrowed strings */
	const char *name;      /* without the brackets, e.g. "FINANCE" */
	const char *value;
	int trusted;           /* from the configuration, not from mail */
};

/* The message tokens.  A NULL field means "not available here": the token
 * stays as written.  All strings are borrowed. */
struct event_fields {
	const char *sender;            /* [[SENDER]] */
	const char *subject;           /* [[SUBJECT]] */
	const char *date;              /* [[DATE]], see event_format_date() */
	const char *event;             /* [[EVENT]] (never with credentials) */
	const char *reason;            /* [[REASON]] */
	const char *const *captures;   /* [[0]] whole match, [[1]].. groups */
	size_t n_captures;
	const char *attachment;        /* [[ATTACHMENT]]: the matching name */
	const char *const *att_captures; /* [[A0]] whole match, [[A1]].. the
					  * AttachmentMask's groups */
	size_t n_att_captures;
	const struct subst_var *extra; /* more tokens, looked up after the above */
	size_t n_extra;
};

/* Maximum length of any rendered string. */
#define EVENT_MAX_LEN ((size_t)1024 * 1024)

/* Substitute the tokens of f into tmpl. */
int event_substitute(const char *tmpl, const struct event_fields *f,
		     enum subst_mode mode, char **out, struct ms_err *err);

/* Substitute only the variables vars (all treated as trusted) in mode
 * SUBST_RAW: [Tokens] into configuration values. */
int event_substitute_vars(const char *tmpl, const struct subst_var *vars,
			  size_t n_vars, char **out, struct ms_err *err);

/* The final MSGIN line for one event whose template is already
 * substituted: surrounding blanks trimmed, any control character -> ' ',
 * non-ASCII transliterated, then ",<user>,<password>" appended when
 * opcon_user is set (non-NULL, non-empty; an unset password appends an
 * empty field).  With opcon_user unset the event is written as the rule
 * author wrote it (they may have put the credentials in themselves).
 * Fails with MS_ERR_CONFIG if the event does not start with '$' or the
 * credentials hold a comma or a control character (never quoted in the
 * message).  No trailing newline. */
int event_render(const char *event, const char *opcon_user,
		 const char *opcon_password, char **line, struct ms_err *err);
/* Wipe and free a line from event_render(). */
void event_line_free(char *line);

enum event_log_kind { EVENT_LOG_ACCEPT, EVENT_LOG_REJECT, EVENT_LOG_EVENT };

/* Default formats when [Audit] LogAcceptFormat / LogRejectFormat /
 * LogOpConEventFormat are unset. */
#define EVENT_DEFAULT_ACCEPT_FORMAT \
	"[[DATE]] accepted from [[SENDER]] subject \"[[SUBJECT]]\""
#define EVENT_DEFAULT_REJECT_FORMAT \
	"[[DATE]] rejected from [[SENDER]] subject \"[[SUBJECT]]\": [[REASON]]"
#define EVENT_DEFAULT_EVENT_FORMAT \
	"[[DATE]] event from [[SENDER]] subject \"[[SUBJECT]]\": [[EVENT]]"

/* One audit log line (no newline): format (NULL or unset -> the default
 * for kind) substituted in SUBST_LINE mode. */
int event_log_line(const char *format, enum event_log_kind kind,
		   const struct event_fields *f, char **out,
		   struct ms_err *err);

/* [[DATE]]: t in the machine's local time as the incumbent (.NET, en-US)
 * prints it, "M/D/YYYY h:mm:ss AM", e.g. "11/28/2026 1:34:19 AM".
 * outsz >= 32. */
void event_format_date(time_t t, char *out, size_t outsz);

/* Escape one value for mode (what substitution does to a mail value).
 * Caller frees. */
int event_escape(const char *value, enum subst_mode mode, char **out,
		 struct ms_err *err);

#endif
