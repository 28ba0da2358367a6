/*
 * event.c - token substitution with per-context escaping, OpCon event
 * lines and audit log lines (see event.h).
 */
#include "mail/event.h"

#include "base/buf.h"
#include "base/compat.h"
#include "base/mem.h"
#include "base/utf8.h"

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Decode one UTF-8 sequence at s (NUL-terminated).  Returns its length and
 * the code point in *cp, or 1 with *cp = 0xFFFD for an invalid byte. */
static size_t utf8_next(const unsigned char *s, uint32_t *cp)
{
	size_t n = utf8_decode((const char *)s, 4, cp);

	if (!n)
		*cp = UTF8_REPLACEMENT;
	return n ? n : 1;
}

/* ASCII for a code point >= 0x80: a transliteration or "?". */
static const char *translit(uint32_t cp)
{
	/* U+00A0..U+00FF */
	static const char *const latin1[96] = {
		" ", "!", "c", "L", "?", "Y", "|", "S", "\"", "(c)", "a", "<<",
		"-", "-", "(R)", "-", "o", "+-", "2", "3", "'", "u", "P", ".",
		",", "1", "o", ">>", "1/4", "1/2", "3/4", "?",
		"A", "A", "A", "A", "A", "A", "AE", "C", "E", "E", "E", "E",
		"I", "I", "I", "I", "D", "N", "O", "O", "O", "O", "O", "x",
		"O", "U", "U", "U", "U", "Y", "TH", "ss",
		"a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e",
		"i", "i", "i", "i", "d", "n", "o", "o", "o", "o", "o", "/",
		"o", "u", "u", "u", "u", "y", "th", "y",
	};

	if (cp >= 0xA0 && cp <= 0xFF) {
		/* U+00B8 cedilla and friends must not yield a comma */
		if (cp == 0xB8)
			return " ";
		return latin1[cp - 0xA0];
	}
	switch (cp) {
	case 0x0152: return "OE";
	case 0x0153: return "oe";
	case 0x0160: return "S";
	case 0x0161: return "s";
	case 0x017D: return "Z";
	case 0x017E: return "z";
	case 0x0178: return "Y";
	case 0x0141: return "L";
	case 0x0142: return "l";
	case 0x0106: case 0x010C: return "C";
	case 0x0107: case 0x010D: return "c";
	case 0x0118: case 0x011A: return "E";
	case 0x0119: case 0x011B: return "e";
	case 0x0143: case 0x0147: return "N";
	case 0x0144: case 0x0148: return "n";
	case 0x0150: return "O";
	case 0x0151: return "o";
	case 0x0158: return "R";
	case 0x0159: return "r";
	case 0x015A: return "S";
	case 0x015B: return "s";
	case 0x0164: return "T";
	case 0x0165: return "t";
	case 0x016E: case 0x0170: return "U";
	case 0x016F: case 0x0171: return "u";
	case 0x0179: case 0x017B: return "Z";
	case 0x017A: case 0x017C: return "z";
	case 0x2010: case 0x2011: case 0x2012: case 0x2013: case 0x2014:
	case 0x2015: case 0x2212: return "-";
	case 0x2018: case 0x2019: case 0x201B: case 0x2032: return "'";
	case 0x201A: return "'";
	case 0x201C: case 0x201D: case 0x201E: case 0x2033: return "\"";
	case 0x2022: return "*";
	case 0x2026: return "...";
	case 0x2039: return "<";
	case 0x203A: return ">";
	case 0x20AC: return "EUR";
	case 0x2122: return "TM";
	case 0x2002: case 0x2003: case 0x2009: case 0x200A: case 0x202F:
		return " ";
	default: return "?";
	}
}

static int is_control(uint32_t cp)
{
	return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) ||
	       cp == 0x2028 || cp == 0x2029 || cp == 0x85;
}

/* Append value escaped for mode. */
static int append_escaped(struct buf *b, const char *value,
			  enum subst_mode mode, int trusted, struct ms_err *err)
{
	const unsigned char *s = (const unsigned char *)value;
	uint32_t cp;
	size_t n;

	if (mode == SUBST_RAW)
		return buf_appends(b, value, err);
	while (*s) {
		n = utf8_next(s, &cp);
		if (cp == '\n' && mode == SUBST_TEXT) {
			if (buf_append(b, "\n", 1, err))
				return -1;
		} else if (cp == '\r' && mode == SUBST_TEXT) {
			/* dropped: CRLF -> LF */
		} else if (is_control(cp)) {
			if (buf_append(b, " ", 1, err))
				return -1;
		} else if (mode == SUBST_EVENT && cp == ',' && !trusted) {
			if (buf_append(b, ";", 1, err))
				return -1;
		} else if (mode == SUBST_EVENT && cp >= 0x80) {
			if (buf_appends(b, translit(cp), err))
				return -1;
		} else if (cp == 0xFFFD && n == 1) {
			if (buf_append(b, "?", 1, err))
				return -1;
		} else if (buf_append(b, s, n, err)) {
			return -1;
		}
		s += n;
	}
	return 0;
}

int event_escape(const char *value, enum subst_mode mode, char **out,
		 struct ms_err *err)
{
	struct buf b;

	*out = NULL;
	buf_init(&b, EVENT_MAX_LEN);
	if (append_escaped(&b, value ? value : "", mode, 0, err) ||
	    buf_append(&b, "", 0, err)) {
		buf_release(&b);
		return -1;
	}
	*out = buf_detach(&b, NULL);
	return 0;
}

/* Find the value of token name[0..len); NULL if unknown. */
static const char *lookup(const struct event_fields *f, const char *name,
			  size_t len, int *trusted)
{
	static const struct { const char *name; size_t off; } std[] = {
		{ "SENDER", offsetof(struct event_fields, sender) },
		{ "SUBJECT", offsetof(struct event_fields, subject) },
		{ "DATE", offsetof(struct event_fields, date) },
		{ "EVENT", offsetof(struct event_fields, event) },
		{ "REASON", offsetof(struct event_fields, reason) },
	};
	size_t i;

	*trusted = 0;
	if (len == 0 || name[0] == '$')
		return NULL;
	if (len <= 4 && strspn(name, "0123456789") >= len) {
		size_t k = 0;
		for (i = 0; i < len; i++)
			k = k * 10 + (size_t)(name[i] - '0');
		if (f->captures && k < f->n_captures)
			return f->captures[k] ? f->captures[k] : "";
		return NULL;
	}
	if (len == 10 && strncasecmp(name, "ATTACHMENT", 10) == 0)
		return f->attachment;
	if (len >= 2 && len <= 5 && (name[0] == 'A' || name[0] == 'a') &&
	    strspn(name + 1, "0123456789") >= len - 1) {
		size_t k = 0;
		for (i = 1; i < len; i++)
			k = k * 10 + (size_t)(name[i] - '0');
		if (f->att_captures && k < f->n_att_captures)
			return f->att_captures[k] ? f->att_captures[k] : "";
		return NULL;
	}
	for (i = 0; i < sizeof(std) / sizeof(std[0]); i++) {
		if (strlen(std[i].name) == len &&
		    strncasecmp(std[i].name, name, len) == 0)
			return *(const char *const *)((const char *)f + std[i].off);
	}
	for (i = 0; i < f->n_extra; i++) {
		const struct subst_var *v = &f->extra[i];
		if (v->name && strlen(v->name) == len &&
		    strncasecmp(v->name, name, len) == 0) {
			*trusted = v->trusted;
			return v->value ? v->value : "";
		}
	}
	return NULL;
}

int event_substitute(const char *tmpl, const struct event_fields *f,
		     enum subst_mode mode, char **out, struct ms_err *err)
{
	static const struct event_fields none;
	const char *p = tmpl ? tmpl : "", *open, *close;
	struct buf b;

	*out = NULL;
	if (!f)
		f = &none;
	buf_init(&b, EVENT_MAX_LEN);
	while ((open = strstr(p, "[[")) != NULL) {
		const char *val;
		int trusted;

		close = strstr(open + 2, "]]");
		if (!close)
			break;
		/* "[[[X]]", "[[a [[X]]": the token starts at the last "[["
		 * before the "]]" */
		{
			const char *q;
			for (q = open + 1; q + 1 < close; q++)
				if (q[0] == '[' && q[1] == '[')
					open = q;
		}
		val = lookup(f, open + 2, (size_t)(close - open - 2), &trusted);
		if (!val) {
			if (buf_append(&b, p, (size_t)(close + 2 - p), err))
				goto fail;
		} else if (buf_append(&b, p, (size_t)(open - p), err) ||
			   append_escaped(&b, val, mode, trusted, err)) {
			goto fail;
		}
		p = close + 2;
	}
	if (buf_appends(&b, p, err) || buf_append(&b, "", 0, err))
		goto fail;
	*out = buf_detach(&b, NULL);
	return 0;
fail:
	buf_release(&b);
	return -1;
}

int event_substitute_vars(const char *tmpl, const struct subst_var *vars,
			  size_t n_vars, char **out, struct ms_err *err)
{
	struct event_fields f;

	memset(&f, 0, sizeof(f));
	f.extra = vars;
	f.n_extra = n_vars;
	return event_substitute(tmpl, &f, SUBST_RAW, out, err);
}

static int credential_ok(const char *s)
{
	for (; *s; s++)
		if (*s == ',' || (unsigned char)*s < 0x20 || *s == 0x7F)
			return 0;
	return 1;
}

int event_render(const char *event, const char *opcon_user,
		 const char *opcon_password, char **line, struct ms_err *err)
{
	const char *s = event ? event : "", *e;
	struct buf b;
	char *body = NULL;
	int rc = -1;

	*line = NULL;
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
			 e[-1] == '\n'))
		e--;
	if (*s != '$' || !memchr(s, ':', (size_t)(e - s)))
		return err_set(err, MS_ERR_CONFIG,
			       "event does not start with '$COMMAND:'");
	if ((opcon_user && !credential_ok(opcon_user)) ||
	    (opcon_password && !credential_ok(opcon_password)))
		return err_set(err, MS_ERR_CONFIG,
			       "OpConUser or its password holds a comma or a "
			       "control character");
	if (!(body = ms_strndup(s, (size_t)(e - s))))
		return err_nomem(err);
	buf_init(&b, EVENT_MAX_LEN);
	/* The template is configuration, so commas stay; "trusted" keeps them
	 * while controls and non-ASCII still go. */
	if (append_escaped(&b, body, SUBST_EVENT, 1, err))
		goto done;
	if (opcon_user && *opcon_user) {
		if (buf_append(&b, ",", 1, err) ||
		    buf_appends(&b, opcon_user, err) ||
		    buf_append(&b, ",", 1, err) ||
		    buf_appends(&b, opcon_password ? opcon_password : "", err))
			goto done;
	}
	if (buf_append(&b, "", 0, err))
		goto done;
	*line = buf_detach(&b, NULL);
	rc = 0;
done:
	if (rc)
		buf_wipe(&b);
	free(body);
	return rc;
}

void event_line_free(char *line)
{
	mem_wipe_free(line);
}

int event_log_line(const char *format, enum event_log_kind kind,
		   const struct event_fields *f, char **out,
		   struct ms_err *err)
{
	char *s;
	size_t i;

	if (!format || !*format || strcmp(format, "N/A") == 0 ||
	    strcmp(format, "N\\A") == 0) {
		switch (kind) {
		case EVENT_LOG_ACCEPT: format = EVENT_DEFAULT_ACCEPT_FORMAT; break;
		case EVENT_LOG_REJECT: format = EVENT_DEFAULT_REJECT_FORMAT; break;
		default: format = EVENT_DEFAULT_EVENT_FORMAT; break;
		}
	}
	if (event_substitute(format, f, SUBST_LINE, &s, err))
		return -1;
	/* the format itself is one line too */
	for (i = 0; s[i]; i++)
		if (s[i] == '\r' || s[i] == '\n')
			s[i] = ' ';
	*out = s;
	return 0;
}

void event_format_date(time_t t, char *out, size_t outsz)
{
	struct tm tm;
	int h;

	if (!localtime_r(&t, &tm)) {
		if (outsz)
			out[0] = '\0';
		return;
	}
	h = tm.tm_hour % 12;
	if (h == 0)
		h = 12;
	snprintf(out, outsz, "%d/%d/%d %d:%02d:%02d %s", tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_year + 1900, h, tm.tm_min, tm.tm_sec,
		 tm.tm_hour < 12 ? "AM" : "PM");
}
