/*
 * rules.h - one message against the [ConfigurationN] rules, in the
 * incumbent's order (see shared/domain/connector.md, "How one message is
 * processed"):
 *   1. sender in AllowedSenders          else "Invalid Sender"
 *   2. received within AllowedTimeFrame  else "Message received outside timeframe"
 *   3. subject against SubjectLineMask; captures become [[1]], [[2]] ..
 *   4. ProcessBody=YES: without QualifyingSubjectLine every body line is
 *      matched too and each match (subject or line) raises the events;
 *      with one, the subject must match the qualifier and then only body
 *      line matches raise events
 *   5. ProcessAttachments with an AttachmentMask: some attachment name must
 *      match, else "No matching attachments found"
 *   6. each match renders Event, Event2, .. with the tokens substituted
 *      (SUBST_EVENT escaping; credentials are appended by event_render()).
 * A message no configuration accepts is rejected; its reason is the reason
 * of the first configuration whose subject (or body) mask matched but
 * which failed a check, else "No matching subjects found".  Reason texts
 * come from [Audit] Reject*Message when set.
 *
 * Decisions (the incumbent's manual is silent):
 *   - AllowedSenders: ';' or ',' separated, blanks trimmed, "ALL" (any
 *     case), "any@domain" / "*@domain" / "@domain" for a whole domain,
 *     "Name <a@b>" accepted; addresses compare case-insensitively.
 *   - AllowedTimeFrame: minute of day of the received time in the
 *     machine's local time, both ends inclusive ("0800-1700" accepts
 *     08:00:00 to 17:00:59); "2400" only as an end; a start after the end
 *     wraps past midnight ("2200-0600").
 *   - An unset SubjectLineMask matches every subject (as the empty .NET
 *     regex does).
 *   - Body lines: see message.h (empty lines are not matched).
 *   - [[DATE]] is the Date: header in local time (event_format_date());
 *     a message without a valid Date: uses the received time.
 *   - A mask that hits a PCRE2 resource limit counts as no match (logged).
 *   - At most RULES_MAX_EVENTS events per message (the rest are dropped
 *     with a warning); [[0]] is the whole match.
 *
 * Ownership: struct rules is opaque, freed with rules_free(); it borrows
 * nothing from the struct config after rules_compile() returns.  A struct
 * rule_result owns all its strings; rules_result_release() frees them.
 */
#ifndef MS_RULES_H
#define MS_RULES_H

#include <stddef.h>
#include <time.h>
#include "base/err.h"
#include "mail/event.h"

struct config;
struct message;
struct rules;

#define RULES_REASON_SENDER       "Invalid Sender"
#define RULES_REASON_TIMEFRAME    "Message received outside timeframe"
#define RULES_REASON_NO_SUBJECT   "No matching subjects found"
#define RULES_REASON_NO_ATTACHMENT "No matching attachments found"

enum rule_stage {              /* how far a configuration got */
	RULE_STAGE_SENDER = 1,     /* rejected by AllowedSenders */
	RULE_STAGE_TIMEFRAME,      /* rejected by AllowedTimeFrame */
	RULE_STAGE_SUBJECT,        /* subject/body did not match */
	RULE_STAGE_ATTACHMENT,     /* no matching attachment */
	RULE_STAGE_MATCHED
};

struct rule_outcome {
	char *section;             /* "Configuration1" */
	int matched;
	enum rule_stage stage;
	int mask_matched;          /* subject or a body line matched, whatever
				    * the other checks said */
	char *reason;              /* reject reason; NULL when matched */
	char **events;             /* rendered events, in order: for each
				    * match (subject first, then body lines),
				    * Event, Event2, ..; no credentials */
	size_t n_events;
	char **captures;           /* captures of the first match, [0] whole */
	size_t n_captures;
	char **attachments;        /* names of the matching attachments */
	size_t n_attachments;
};

struct rule_result {
	struct rule_outcome *rules;   /* one per configuration, in order */
	size_t n_rules;
	int matched;                  /* some configuration matched */
	char *reason;                 /* overall reject reason; NULL if matched */
	char *date;                   /* the [[DATE]] text used */
	size_t n_events;              /* total over all configurations */
};

/* Compile the configurations of cfg ([Tokens] substituted into every
 * value first) and check each one whole, so that nothing fails later on
 * a message: masks, AllowedSenders, AllowedTimeFrame (also when it comes
 * from a [[TOKEN]]), every Event is "$COMMAND:..." and names only tokens
 * that have a value there ([[SENDER]], [[SUBJECT]], [[DATE]], [[0]] ..
 * [[N]] up to the SubjectLineMask's groups, [[ATTACHMENT]] and [[A1]] ..
 * up to the AttachmentMask's groups with ProcessAttachments, OpCon's
 * [[$...]]; never [[EVENT]] or [[REASON]]), so no literal [[...]] ever
 * reaches MSGIN.  [Audit] RejectEvent is checked the same way ([[REASON]]
 * allowed, no captures).
 *
 * A broken configuration is left out and recorded as one warning,
 * "FILE:LINE: [Configuration2] SubjectLineMask: invalid regular expression
 * at offset 5: missing closing parenthesis ([Configuration2] skipped)"
 * (LINE is the section's); a broken RejectEvent likewise (then
 * rules_reject_event() is NULL).  The caller shows the warnings (the
 * library never prints).  Fails with MS_ERR_CONFIG only when every
 * configuration is broken (the message quotes the first warning), and on
 * out-of-memory. */
int rules_compile(struct rules **out, const struct config *cfg,
		  struct ms_err *err);
void rules_free(struct rules *rs);

/* Compiled masks kept across rules_compile_memo() calls, for a caller
 * that checks many INI files sharing a few masks (the audit): each
 * distinct pattern is compiled once (at most RULES_MASKS_MAX of them
 * are kept; the others are compiled each time).  One thread at a time. */
struct rules_masks;
#define RULES_MASKS_MAX 1024
struct rules_masks *rules_masks_new(void);
void rules_masks_free(struct rules_masks *mm);
/* rules_compile() with the masks (and a pattern's failure, with the same
 * message) taken from mm; the rules borrow them, so free rs before mm.
 * mm NULL: exactly rules_compile(). */
int rules_compile_memo(struct rules **out, const struct config *cfg,
		       struct rules_masks *mm, struct ms_err *err);

/* Configurations left out as broken. */
size_t rules_skipped(const struct rules *rs);
/* The warnings of rules_compile(), borrowed from rs. */
size_t rules_warning_count(const struct rules *rs);
const char *rules_warning(const struct rules *rs, size_t i);
/* [Audit] RejectEvent with [Tokens] substituted, checked; NULL when unset
 * or broken.  Borrowed from rs. */
const char *rules_reject_event(const struct rules *rs);

/* 1 if some configuration that passes the sender and time checks could
 * need the body or the attachments of msg (parsed headers only) to decide;
 * 0 if the headers are enough. */
int rules_need_body(const struct rules *rs, const struct message *msg,
		    time_t received);

/* Evaluate msg (received at `received`, UTC seconds) against every
 * configuration.  Fails only on out-of-memory or an over-long rendering;
 * a rejection is a successful result with matched = 0. */
int rules_evaluate(const struct rules *rs, const struct message *msg,
		   time_t received, struct rule_result *out,
		   struct ms_err *err);
void rules_result_release(struct rule_result *res);

#define RULES_MAX_EVENTS 10000

/* Fill f with the message tokens for the audit texts: [[SENDER]],
 * [[SUBJECT]], [[DATE]] (res->date) and [[REASON]] (res->reason, NULL when
 * matched); [[EVENT]] is left NULL for the caller to set per event.  Use
 * it with event_log_line() for LogAcceptFormat / LogRejectFormat /
 * LogOpConEventFormat, with event_substitute(SUBST_EVENT) and then
 * event_render() for RejectEvent, and with SUBST_LINE / SUBST_TEXT for
 * the notification subject and body.  Everything is borrowed from msg and
 * res, which must outlive f. */
void rules_event_fields(const struct message *msg, const struct rule_result *res,
			struct event_fields *f);

/* Minute of day tests exposed for the tools: parse "HHMM-HHMM" into
 * minutes (end 1440 for "2400").  0 on success, -1 if malformed. */
int rules_parse_time_frame(const char *s, int *start_min, int *end_min);

#endif
