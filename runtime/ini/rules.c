/*
 * rules.c - evaluate one message against the [ConfigurationN] rules (see
 * rules.h for the order and the decisions).
 */
#include "ini/rules.h"

#include "ini/config.h"
#include "mail/event.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/mask.h"
#include "mail/message.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct sender {
	char *addr;             /* lowercase address, or domain */
	int is_domain;
};

struct rule {
	char *section;
	int line;
	struct mask *subject;   /* NULL: matches every subject */
	struct mask *qualifier; /* NULL: none */
	struct mask *attachment;/* NULL: none */
	unsigned borrowed;      /* BORROWED_*: masks that belong to a
				 * struct rules_masks */
	int process_body;
	int process_attachments;
	char **events;          /* [Tokens] already substituted */
	size_t n_events;
	int all_senders;
	struct sender *senders;
	size_t n_senders;
	int start_min, end_min; /* end 1440 = "2400" */
};

#define BORROWED_SUBJECT    1u
#define BORROWED_QUALIFIER  2u
#define BORROWED_ATTACHMENT 4u

struct rules {
	struct rule *r;
	size_t n;
	char *reason_sender, *reason_timeframe, *reason_no_subject,
	     *reason_no_attachment;
	char *reject_event;     /* [Tokens] substituted and checked; NULL
				 * when unset or broken */
	char **warnings;        /* "FILE:LINE: [Section] Key: what ..." */
	size_t n_warnings, warnings_alloc;
	size_t skipped;         /* broken configurations left out */
};

static int unset(const char *s)
{
	return !s || !*s || strcmp(s, "N/A") == 0 || strcmp(s, "N\\A") == 0;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
			 e[-1] == '\n'))
		*--e = '\0';
	return s;
}

static void lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

int rules_parse_time_frame(const char *s, int *start_min, int *end_min)
{
	int v[2], i;
	const char *p = s;

	if (!s)
		return -1;
	for (i = 0; i < 2; i++) {
		int h, m;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]))
			return -1;
		h = (p[0] - '0') * 10 + (p[1] - '0');
		p += 2;
		if (*p == ':')
			p++;
		if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]))
			return -1;
		m = (p[0] - '0') * 10 + (p[1] - '0');
		p += 2;
		if (h > 24 || m > 59 || (h == 24 && (m != 0 || i == 0)))
			return -1;
		v[i] = h * 60 + m;
		while (*p == ' ' || *p == '\t')
			p++;
		if (i == 0 && *p++ != '-')
			return -1;
	}
	if (*p)
		return -1;
	*start_min = v[0];
	*end_min = v[1];
	return 0;
}

static int time_ok(const struct rule *r, time_t received)
{
	struct tm tm;
	int minute;

	if (r->start_min == 0 && r->end_min == 1440)
		return 1;
	if (!localtime_r(&received, &tm))
		return 0;
	minute = tm.tm_hour * 60 + tm.tm_min;
	if (r->start_min <= r->end_min)
		return minute >= r->start_min && minute <= r->end_min;
	return minute >= r->start_min || minute <= r->end_min;
}

static int sender_ok(const struct rule *r, const char *from)
{
	const char *at;
	size_t i;

	if (r->all_senders)
		return 1;
	if (!from || !*from)
		return 0;
	at = strrchr(from, '@');
	for (i = 0; i < r->n_senders; i++) {
		const struct sender *s = &r->senders[i];
		if (s->is_domain) {
			if (at && strcasecmp(at + 1, s->addr) == 0)
				return 1;
		} else if (strcasecmp(from, s->addr) == 0) {
			return 1;
		}
	}
	return 0;
}

static int parse_senders(struct rule *r, const char *list, struct ms_err *err)
{
	char *copy, *tok, *save = NULL;
	size_t alloc = 0;
	int rc = -1;

	if (unset(list)) {
		r->all_senders = 1;
		return 0;
	}
	if (!(copy = strdup(list)))
		return err_nomem(err);
	if (strstr(copy, "[[")) {
		err_set(err, MS_ERR_CONFIG, "unknown token in '%s'", list);
		goto done;
	}
	for (tok = strtok_r(copy, ";,", &save); tok;
	     tok = strtok_r(NULL, ";,", &save)) {
		char *e = trim(tok), *lt, *gt;
		struct sender s = { NULL, 0 };

		if (!*e)
			continue;
		if (strcasecmp(e, "ALL") == 0) {
			r->all_senders = 1;
			continue;
		}
		if ((lt = strchr(e, '<')) && (gt = strchr(lt, '>'))) {
			*gt = '\0';
			e = trim(lt + 1);
		}
		if (strncasecmp(e, "any@", 4) == 0)
			e += 4, s.is_domain = 1;
		else if (strncmp(e, "*@", 2) == 0)
			e += 2, s.is_domain = 1;
		else if (e[0] == '@')
			e += 1, s.is_domain = 1;
		if (!*e) {
			err_set(err, MS_ERR_CONFIG, "empty domain in '%s'", list);
			goto done;
		}
		if (MEM_GROW(r->senders, alloc, r->n_senders + 1, NULL) < 0)
			goto nomem;
		if (!(s.addr = strdup(e)))
			goto nomem;
		lower(s.addr);
		r->senders[r->n_senders++] = s;
	}
	if (!r->all_senders && r->n_senders == 0) {
		err_set(err, MS_ERR_CONFIG, "no sender in '%s'", list);
		goto done;
	}
	rc = 0;
	goto done;
nomem:
	err_nomem(err);
done:
	free(copy);
	return rc;
}

static void rule_release(struct rule *r)
{
	size_t i;

	free(r->section);
	if (!(r->borrowed & BORROWED_SUBJECT))
		mask_free(r->subject);
	if (!(r->borrowed & BORROWED_QUALIFIER))
		mask_free(r->qualifier);
	if (!(r->borrowed & BORROWED_ATTACHMENT))
		mask_free(r->attachment);
	for (i = 0; i < r->n_events; i++)
		free(r->events[i]);
	free(r->events);
	for (i = 0; i < r->n_senders; i++)
		free(r->senders[i].addr);
	free(r->senders);
}

void rules_free(struct rules *rs)
{
	size_t i;

	if (!rs)
		return;
	for (i = 0; i < rs->n; i++)
		rule_release(&rs->r[i]);
	free(rs->r);
	free(rs->reason_sender);
	free(rs->reason_timeframe);
	free(rs->reason_no_subject);
	free(rs->reason_no_attachment);
	free(rs->reject_event);
	for (i = 0; i < rs->n_warnings; i++)
		free(rs->warnings[i]);
	free(rs->warnings);
	free(rs);
}

/* Substitute [Tokens] into a rule value; NULL stays NULL. */
static int with_tokens(const char *value, const struct subst_var *vars,
		       size_t n_vars, char **out, struct ms_err *err)
{
	*out = NULL;
	if (unset(value))
		return 0;
	return event_substitute_vars(value, vars, n_vars, out, err);
}

/* One pattern of a struct rules_masks: its mask, or the message
 * mask_compile() refused it with. */
struct mask_memo {
	char *pattern;
	struct mask *m;
	char *msg;
};

struct rules_masks {
	struct mask_memo *slots;        /* open addressing, alloc a power of 2 */
	size_t n, alloc;
};

struct rules_masks *rules_masks_new(void)
{
	struct rules_masks *mm = calloc(1, sizeof(*mm));

	if (mm && !(mm->slots = calloc(mm->alloc = 2 * RULES_MASKS_MAX,
				       sizeof(*mm->slots)))) {
		free(mm);
		mm = NULL;
	}
	return mm;
}

void rules_masks_free(struct rules_masks *mm)
{
	size_t i;

	if (!mm)
		return;
	for (i = 0; i < mm->alloc; i++) {
		free(mm->slots[i].pattern);
		mask_free(mm->slots[i].m);
		free(mm->slots[i].msg);
	}
	free(mm->slots);
	free(mm);
}

static struct mask_memo *mask_memo_slot(struct rules_masks *mm, const char *pat)
{
	uint64_t h = 1469598103934665603ULL;
	const unsigned char *p;
	size_t i;

	for (p = (const unsigned char *)pat; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	for (i = (size_t)h & (mm->alloc - 1);
	     mm->slots[i].pattern && strcmp(mm->slots[i].pattern, pat) != 0;
	     i = (i + 1) & (mm->alloc - 1))
		;
	return &mm->slots[i];
}

/* mask_compile(), once per pattern when mm is not NULL: *borrowed says
 * whether *m belongs to mm. */
static int compile_pattern(struct mask **m, const char *pat,
			   struct rules_masks *mm, int *borrowed,
			   struct ms_err *err)
{
	struct ms_err lerr = MS_ERR_INIT;
	struct mask_memo *e;

	*borrowed = 0;
	if (!mm)
		return mask_compile(m, pat, err);
	e = mask_memo_slot(mm, pat);
	if (e->pattern) {
		*m = e->m;
		*borrowed = e->m != NULL;
		return e->m ? 0 : err_set(err, MS_ERR_CONFIG, "%s", e->msg);
	}
	if (mask_compile(m, pat, &lerr) < 0) {
		if (lerr.code == MS_ERR_CONFIG && mm->n < RULES_MASKS_MAX &&
		    (e->msg = strdup(lerr.msg)) && !(e->pattern = strdup(pat))) {
			free(e->msg);
			e->msg = NULL;
		}
		mm->n += e->pattern != NULL;
		return err_set(err, lerr.code, "%s", lerr.msg);
	}
	if (mm->n < RULES_MASKS_MAX && (e->pattern = strdup(pat))) {
		e->m = *m;
		mm->n++;
		*borrowed = 1;
	}
	return 0;
}

/* The mask of a rule value ([Tokens] substituted); NULL when unset.
 * *borrowed: it belongs to mm. */
static int compile_mask(struct mask **m, int *borrowed, const char *raw,
			const struct subst_var *vars, size_t n_vars,
			struct rules_masks *mm, struct ms_err *err)
{
	char *pat = NULL;
	int rc;

	*m = NULL;
	*borrowed = 0;
	if (with_tokens(raw, vars, n_vars, &pat, err))
		return -1;
	if (!pat)
		return 0;
	rc = compile_pattern(m, pat, mm, borrowed, err);
	free(pat);
	return rc;
}

/* What a template may name, besides OpCon's own [[$...]] tokens. */
struct token_scope {
	int captures;          /* highest [[N]]: the mask's groups; -1 none */
	int attachments;       /* highest [[AN]]; -1: no [[ATTACHMENT]] either */
	int reason;            /* [[REASON]] has a value */
	const char *where;     /* for the message: "an event" */
};

/* Check every [[NAME]] of tmpl (scanned as event_substitute() does) against
 * scope: no literal [[...]] may ever reach MSGIN. */
static int check_tokens(const char *tmpl, const struct token_scope *sc,
			struct ms_err *err)
{
	static const char *const always[] = { "SENDER", "SUBJECT", "DATE" };
	const char *p = tmpl, *open, *close;

	while ((open = strstr(p, "[[")) != NULL &&
	       (close = strstr(open + 2, "]]")) != NULL) {
		const char *q, *name;
		size_t len, i;
		int known = 0;

		for (q = open + 1; q + 1 < close; q++)
			if (q[0] == '[' && q[1] == '[')
				open = q;
		name = open + 2;
		len = (size_t)(close - name);
		p = close + 2;
		if (len && name[0] == '$')
			continue;              /* OpCon expands it */
		for (i = 0; i < sizeof(always) / sizeof(always[0]); i++)
			if (strlen(always[i]) == len &&
			    strncasecmp(always[i], name, len) == 0)
				known = 1;
		if (known)
			continue;
		if (len && len <= 4 && strspn(name, "0123456789") >= len) {
			int k = atoi(name);
			if (k == 0 || k <= sc->captures)
				continue;
			if (sc->captures <= 0)
				return err_set(err, MS_ERR_CONFIG,
					       "[[%.*s]] in %s: %s has no groups",
					       (int)len, name, sc->where,
					       sc->captures < 0 ? "there is no SubjectLineMask, so it" :
					       "the SubjectLineMask");
			return err_set(err, MS_ERR_CONFIG,
				       "[[%.*s]] in %s: the mask has only %d group%s",
				       (int)len, name, sc->where, sc->captures,
				       sc->captures == 1 ? "" : "s");
		}
		if (len == 10 && strncasecmp(name, "ATTACHMENT", 10) == 0) {
			if (sc->attachments >= 0)
				continue;
			return err_set(err, MS_ERR_CONFIG,
				       "[[ATTACHMENT]] in %s needs ProcessAttachments=True "
				       "and an AttachmentMask", sc->where);
		}
		if (len >= 2 && len <= 5 && (name[0] == 'A' || name[0] == 'a') &&
		    strspn(name + 1, "0123456789") >= len - 1) {
			int k = atoi(name + 1);
			if (sc->attachments >= 0 && (k == 0 || k <= sc->attachments))
				continue;
			if (sc->attachments < 0)
				return err_set(err, MS_ERR_CONFIG,
					       "[[%.*s]] in %s needs ProcessAttachments=True "
					       "and an AttachmentMask", (int)len, name,
					       sc->where);
			return err_set(err, MS_ERR_CONFIG,
				       "[[%.*s]] in %s: the AttachmentMask has only %d "
				       "group%s", (int)len, name, sc->where,
				       sc->attachments, sc->attachments == 1 ? "" : "s");
		}
		if ((len == 6 && strncasecmp(name, "REASON", 6) == 0 && !sc->reason) ||
		    (len == 5 && strncasecmp(name, "EVENT", 5) == 0))
			return err_set(err, MS_ERR_CONFIG,
				       "[[%.*s]] has no value in %s", (int)len, name,
				       sc->where);
		if (len == 6 && strncasecmp(name, "REASON", 6) == 0)
			continue;
		return err_set(err, MS_ERR_CONFIG,
			       "unknown token [[%.*s]] in %s (not a message token, a "
			       "capture or a [Tokens] name)", (int)len, name, sc->where);
	}
	return 0;
}

/* An OpCon event template: "$COMMAND:..." once tokens are taken out. */
static int check_event_syntax(const char *tmpl, struct ms_err *err)
{
	const char *s = tmpl;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s != '$' || !strchr(s, ':'))
		return err_set(err, MS_ERR_CONFIG,
			       "'%s' is not an OpCon event (it must start with "
			       "$COMMAND:, e.g. $JOB:ADD or $CONSOLE:DISPLAY)", tmpl);
	return 0;
}

static int compile_rule(struct rule *r, const struct config_rule *cr,
			const struct subst_var *vars, size_t n_vars,
			struct rules_masks *mm, struct ms_err *err)
{
	const char *key = NULL;
	char *tmp = NULL, where[240];
	struct token_scope sc;
	size_t i;
	int bs = 0, bq = 0, ba = 0;

	r->line = cr->line;
	if (cr->error)          /* config.c found it broken already */
		return err_set_line(err, MS_ERR_CONFIG, cr->line, "%s", cr->error);
	if (!(r->section = strdup(cr->section ? cr->section : "Configuration")))
		return err_nomem(err);
	r->process_body = cr->process_body;
	r->process_attachments = cr->process_attachments;

	key = "SubjectLineMask";
	if (compile_mask(&r->subject, &bs, cr->subject_mask, vars, n_vars, mm,
			 err))
		goto fail;
	r->borrowed |= bs ? BORROWED_SUBJECT : 0;
	if (!r->subject)
		log_debug("[%s] SubjectLineMask unset: every subject matches",
			  r->section);
	key = "QualifyingSubjectLine";
	if (compile_mask(&r->qualifier, &bq, cr->qualifying_subject, vars, n_vars,
			 mm, err))
		goto fail;
	r->borrowed |= bq ? BORROWED_QUALIFIER : 0;
	key = "AttachmentMask";
	if (compile_mask(&r->attachment, &ba, cr->attachment_mask, vars, n_vars,
			 mm, err))
		goto fail;
	r->borrowed |= ba ? BORROWED_ATTACHMENT : 0;

	key = "AllowedSenders";
	if (with_tokens(cr->allowed_senders, vars, n_vars, &tmp, err) ||
	    parse_senders(r, tmp, err))
		goto fail;
	free(tmp);
	tmp = NULL;

	key = "AllowedTimeFrame";
	r->start_min = 0;
	r->end_min = 1440;
	if (with_tokens(cr->time_frame, vars, n_vars, &tmp, err))
		goto fail;
	if (tmp && strstr(tmp, "[[")) {
		err_set(err, MS_ERR_CONFIG, "unknown token in '%s'", tmp);
		goto fail;
	}
	if (tmp && rules_parse_time_frame(tmp, &r->start_min, &r->end_min)) {
		err_set(err, MS_ERR_CONFIG,
			"malformed time frame '%s' (want HHMM-HHMM)", tmp);
		goto fail;
	}
	free(tmp);
	tmp = NULL;

	key = "Event";
	sc.captures = r->subject ? (int)mask_group_count(r->subject) : -1;
	sc.attachments = r->process_attachments && r->attachment ?
		(int)mask_group_count(r->attachment) : -1;
	sc.reason = 0;
	if (cr->n_events) {
		if (!(r->events = calloc(cr->n_events, sizeof(char *))))
			goto nomem;
		for (i = 0; i < cr->n_events; i++) {
			if (unset(cr->events[i]))
				continue;
			if (event_substitute_vars(cr->events[i], vars, n_vars,
						  &r->events[r->n_events], err))
				goto fail;
			r->n_events++;
			snprintf(where, sizeof(where), "'%.200s'", cr->events[i]);
			sc.where = where;
			if (check_event_syntax(r->events[r->n_events - 1], err) ||
			    check_tokens(r->events[r->n_events - 1], &sc, err))
				goto fail;
		}
	}
	return 0;
nomem:
	err_nomem(err);
fail:
	free(tmp);
	err->line = cr->line;
	return err_prefix(err, "[%s] %s", r->section, key);
}

static char *reason_text(const char *configured, const char *dflt)
{
	return strdup(unset(configured) ? dflt : configured);
}

/* Record one broken configuration (section) or a broken RejectEvent
 * (section NULL) as "FILE:LINE: what (... skipped)".  msg may already
 * start with the file name (config.c's own checks). */
static int add_warning(struct rules *rs, const char *path, int line,
		       const char *msg, const char *section, struct ms_err *err)
{
	char *w = NULL;
	char where[64];
	int r;

	if (!path)
		path = "(ini)";
	if (section)
		snprintf(where, sizeof(where), "[%s] skipped", section);
	else
		snprintf(where, sizeof(where), "RejectEvent not raised");
	if (strncmp(msg, path, strlen(path)) == 0)
		r = asprintf(&w, "%s (%s)", msg, where);
	else if (section)
		r = asprintf(&w, "%s:%d: %s (%s)", path, line, msg, where);
	else
		r = asprintf(&w, "%s: [Audit] RejectEvent: %s (%s)", path, msg, where);
	if (r < 0)
		return err_nomem(err);
	if (MEM_GROW(rs->warnings, rs->warnings_alloc, rs->n_warnings + 1, err) < 0) {
		free(w);
		return -1;
	}
	rs->warnings[rs->n_warnings++] = w;
	return 0;
}

int rules_compile(struct rules **out, const struct config *cfg,
		  struct ms_err *err)
{
	return rules_compile_memo(out, cfg, NULL, err);
}

int rules_compile_memo(struct rules **out, const struct config *cfg,
		       struct rules_masks *mm, struct ms_err *err)
{
	struct subst_var *vars = NULL;
	struct rules *rs = NULL;
	size_t i;

	*out = NULL;
	if (!(rs = calloc(1, sizeof(*rs))))
		goto nomem;
	if (cfg->n_tokens &&
	    !(vars = calloc(cfg->n_tokens, sizeof(*vars))))
		goto nomem;
	for (i = 0; i < cfg->n_tokens; i++) {
		vars[i].name = cfg->tokens[i].name;
		vars[i].value = cfg->tokens[i].value ? cfg->tokens[i].value : "";
		vars[i].trusted = 1;
	}
	if (!(rs->reason_sender = reason_text(cfg->reject_sender_msg,
					      RULES_REASON_SENDER)) ||
	    !(rs->reason_timeframe = reason_text(cfg->reject_timeframe_msg,
						 RULES_REASON_TIMEFRAME)) ||
	    !(rs->reason_no_subject = reason_text(cfg->reject_no_subject_msg,
						  RULES_REASON_NO_SUBJECT)) ||
	    !(rs->reason_no_attachment = reason_text(cfg->reject_no_attachment_msg,
						     RULES_REASON_NO_ATTACHMENT)))
		goto nomem;
	if (cfg->n_rules && !(rs->r = calloc(cfg->n_rules, sizeof(*rs->r))))
		goto nomem;
	for (i = 0; i < cfg->n_rules; i++) {
		struct ms_err rerr = MS_ERR_INIT;

		rs->n++;
		if (compile_rule(&rs->r[rs->n - 1], &cfg->rules[i], vars,
				 cfg->n_tokens, mm, &rerr) == 0)
			continue;
		rule_release(&rs->r[rs->n - 1]);
		memset(&rs->r[rs->n - 1], 0, sizeof(rs->r[0]));
		rs->n--;
		if (rerr.code != MS_ERR_CONFIG) {
			err_set(err, rerr.code, "%s", rerr.msg);
			goto fail;
		}
		rs->skipped++;
		if (add_warning(rs, cfg->path, rerr.line ? rerr.line : cfg->rules[i].line,
				rerr.msg, cfg->rules[i].section, err))
			goto fail;
	}
	if (cfg->n_rules && rs->n == 0) {
		err_set_line(err, MS_ERR_CONFIG, cfg->rules[0].line,
			     "every [ConfigurationN] is broken, nothing can match: %s",
			     rs->warnings[0]);
		goto fail;
	}
	if (!unset(cfg->reject_event)) {
		struct ms_err rerr = MS_ERR_INIT;
		struct token_scope sc = { -1, -1, 1, "RejectEvent" };
		char *ev = NULL;

		if (event_substitute_vars(cfg->reject_event, vars, cfg->n_tokens,
					  &ev, &rerr) ||
		    check_event_syntax(ev, &rerr) || check_tokens(ev, &sc, &rerr)) {
			free(ev);
			if (rerr.code != MS_ERR_CONFIG) {
				err_set(err, rerr.code, "%s", rerr.msg);
				goto fail;
			}
			if (add_warning(rs, cfg->path, 0, rerr.msg, NULL, err))
				goto fail;
		} else {
			rs->reject_event = ev;
		}
	}
	free(vars);
	*out = rs;
	return 0;
nomem:
	err_nomem(err);
fail:
	free(vars);
	rules_free(rs);
	return -1;
}

static int mask_hit(const struct rule *r, const struct mask *m,
		    const char *s, struct mask_captures *caps)
{
	int rc;

	if (!m) {              /* unset mask: matches, whole subject is [[0]] */
		if (caps) {
			caps->n = 1;
			if (!(caps->v = calloc(1, sizeof(char *))) ||
			    !(caps->v[0] = strdup(s ? s : ""))) {
				free(caps->v);
				caps->v = NULL;
				caps->n = 0;
				return -1;
			}
		}
		return 1;
	}
	rc = mask_match(m, s, caps);
	if (rc < 0)
		log_warnx("[%s] mask '%s' hit a matching limit: no match",
			  r->section, mask_pattern(m));
	return rc;
}

int rules_need_body(const struct rules *rs, const struct message *msg,
		    time_t received)
{
	size_t i;

	for (i = 0; rs && i < rs->n; i++) {
		const struct rule *r = &rs->r[i];
		if (!sender_ok(r, msg->from_addr) || !time_ok(r, received))
			continue;
		if (r->process_body) {
			if (!r->qualifier ||
			    mask_hit(r, r->qualifier, msg->subject, NULL) == 1)
				return 1;
		}
		if (r->process_attachments && r->attachment &&
		    mask_hit(r, r->subject, msg->subject, NULL) == 1)
			return 1;
	}
	return 0;
}

struct hits {
	struct mask_captures *v;
	size_t n, alloc;
};

static int hits_add(struct hits *h, struct mask_captures *c, struct ms_err *err)
{
	if (MEM_GROW(h->v, h->alloc, h->n + 1, err) < 0) {
		mask_captures_release(c);
		return -1;
	}
	h->v[h->n++] = *c;
	return 0;
}

static void hits_release(struct hits *h)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		mask_captures_release(&h->v[i]);
	free(h->v);
}

/* Try s against the subject mask; a match is appended to h. */
static int try_line(const struct rule *r, const char *s, struct hits *h,
		    struct ms_err *err)
{
	struct mask_captures c = { NULL, 0 };
	int rc = mask_hit(r, r->subject, s, &c);

	if (rc == 1)
		return hits_add(h, &c, err);
	mask_captures_release(&c);
	if (rc < 0 && !r->subject)
		return err_nomem(err);
	return 0;
}

static int collect_hits(const struct rule *r, const struct message *msg,
			struct hits *h, struct ms_err *err)
{
	size_t i;

	if (r->process_body && r->qualifier) {
		if (mask_hit(r, r->qualifier, msg->subject, NULL) != 1)
			return 0;
	} else if (try_line(r, msg->subject, h, err)) {
		return -1;
	}
	if (!r->process_body)
		return 0;
	for (i = 0; i < msg->n_body_lines; i++)
		if (try_line(r, msg->body_lines[i], h, err))
			return -1;
	return 0;
}

static int str_push(char ***v, size_t *n, char *s, struct ms_err *err)
{
	char **nv;

	if (!s)
		return err_nomem(err);
	if (!(nv = realloc(*v, (*n + 1) * sizeof(char *)))) {
		free(s);
		return err_nomem(err);
	}
	*v = nv;
	nv[(*n)++] = s;
	return 0;
}

static int evaluate_rule(const struct rules *rs, const struct rule *r,
			 const struct message *msg, time_t received,
			 const char *date, struct rule_outcome *o,
			 size_t *total_events, struct ms_err *err)
{
	struct hits h = { NULL, 0, 0 };
	struct mask_captures att = { NULL, 0 };
	size_t i, j;
	int rc = -1;

	if (!(o->section = strdup(r->section)))
		return err_nomem(err);
	if (!sender_ok(r, msg->from_addr))
		o->stage = RULE_STAGE_SENDER;
	else if (!time_ok(r, received))
		o->stage = RULE_STAGE_TIMEFRAME;
	if (collect_hits(r, msg, &h, err))
		goto done;
	o->mask_matched = h.n > 0;
	if (!o->stage && !h.n)
		o->stage = RULE_STAGE_SUBJECT;
	if (!o->stage && r->process_attachments && r->attachment) {
		for (i = 0; i < msg->n_attachments; i++) {
			const char *name = msg->attachments[i].name;
			struct mask_captures c = { NULL, 0 };
			int hit = mask_hit(r, r->attachment, name ? name : "",
					   o->n_attachments ? NULL : &c);

			/* the first matching attachment gives [[ATTACHMENT]]
			 * and [[A1]].. */
			if (hit == 1 && !o->n_attachments)
				att = c;
			else
				mask_captures_release(&c);
			if (hit == 1 &&
			    str_push(&o->attachments, &o->n_attachments,
				     strdup(name ? name : ""), err))
				goto done;
		}
		if (!o->n_attachments)
			o->stage = RULE_STAGE_ATTACHMENT;
	}
	if (h.n) {
		for (i = 0; i < h.v[0].n; i++)
			if (str_push(&o->captures, &o->n_captures,
				     strdup(h.v[0].v[i]), err))
				goto done;
	}
	switch (o->stage) {
	case RULE_STAGE_SENDER:
		o->reason = strdup(rs->reason_sender);
		break;
	case RULE_STAGE_TIMEFRAME:
		o->reason = strdup(rs->reason_timeframe);
		break;
	case RULE_STAGE_SUBJECT:
		o->reason = strdup(rs->reason_no_subject);
		break;
	case RULE_STAGE_ATTACHMENT:
		o->reason = strdup(rs->reason_no_attachment);
		break;
	default:
		o->stage = RULE_STAGE_MATCHED;
		o->matched = 1;
		break;
	}
	if (!o->matched && !o->reason) {
		err_nomem(err);
		goto done;
	}
	if (o->matched) {
		for (i = 0; i < h.n; i++) {
			struct event_fields f;
			memset(&f, 0, sizeof(f));
			f.sender = msg->from_addr ? msg->from_addr : "";
			f.subject = msg->subject ? msg->subject : "";
			f.date = date;
			f.captures = (const char *const *)h.v[i].v;
			f.n_captures = h.v[i].n;
			if (o->n_attachments) {
				f.attachment = o->attachments[0];
				f.att_captures = (const char *const *)att.v;
				f.n_att_captures = att.n;
			}
			for (j = 0; j < r->n_events; j++) {
				char *ev;
				if (*total_events >= RULES_MAX_EVENTS) {
					log_warnx("[%s] more than %d events for "
						  "one message: the rest dropped",
						  r->section, RULES_MAX_EVENTS);
					goto out;
				}
				if (event_substitute(r->events[j], &f, SUBST_EVENT,
						     &ev, err) ||
				    str_push(&o->events, &o->n_events, ev, err))
					goto done;
				(*total_events)++;
			}
		}
	}
out:
	rc = 0;
done:
	hits_release(&h);
	mask_captures_release(&att);
	return rc;
}

int rules_evaluate(const struct rules *rs, const struct message *msg,
		   time_t received, struct rule_result *out,
		   struct ms_err *err)
{
	char date[64];
	size_t i;
	const char *reason = NULL;

	memset(out, 0, sizeof(*out));
	event_format_date(msg->has_date ? msg->date : received, date,
			  sizeof(date));
	if (!(out->date = strdup(date)))
		goto nomem;
	if (rs->n && !(out->rules = calloc(rs->n, sizeof(*out->rules))))
		goto nomem;
	for (i = 0; i < rs->n; i++) {
		struct rule_outcome *o = &out->rules[i];
		out->n_rules++;
		if (evaluate_rule(rs, &rs->r[i], msg, received, date, o,
				  &out->n_events, err))
			goto fail;
		if (o->matched)
			out->matched = 1;
		else if (!reason && o->mask_matched)
			reason = o->reason;
	}
	if (!out->matched &&
	    !(out->reason = strdup(reason ? reason : rs->reason_no_subject)))
		goto nomem;
	return 0;
nomem:
	err_nomem(err);
fail:
	rules_result_release(out);
	return -1;
}

static void strv_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void rules_result_release(struct rule_result *res)
{
	size_t i;

	if (!res)
		return;
	for (i = 0; i < res->n_rules; i++) {
		struct rule_outcome *o = &res->rules[i];
		free(o->section);
		free(o->reason);
		strv_free(o->events, o->n_events);
		strv_free(o->captures, o->n_captures);
		strv_free(o->attachments, o->n_attachments);
	}
	free(res->rules);
	free(res->reason);
	free(res->date);
	memset(res, 0, sizeof(*res));
}

void rules_event_fields(const struct message *msg, const struct rule_result *res,
			struct event_fields *f)
{
	memset(f, 0, sizeof(*f));
	f->sender = msg && msg->from_addr ? msg->from_addr : "";
	f->subject = msg && msg->subject ? msg->subject : "";
	f->date = res && res->date ? res->date : "";
	f->reason = res ? res->reason : NULL;
}

size_t rules_skipped(const struct rules *rs)
{
	return rs ? rs->skipped : 0;
}

size_t rules_warning_count(const struct rules *rs)
{
	return rs ? rs->n_warnings : 0;
}

const char *rules_warning(const struct rules *rs, size_t i)
{
	return rs && i < rs->n_warnings ? rs->warnings[i] : NULL;
}

const char *rules_reject_event(const struct rules *rs)
{
	return rs ? rs->reject_event : NULL;
}
