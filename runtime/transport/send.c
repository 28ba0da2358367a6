/*
 * send.c - the pure half of send.h: message composition (headers, body,
 * the Graph JSON) and the SMTP trace (send_int.h).  Sending it over SMTP
 * or Graph is send_net.c.
 */
#include "transport/send.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/utf8.h"
#include "transport/send_int.h"

#define LINE_SOFT 78          /* RFC 5322 SHOULD */
#define LINE_HARD 998         /* RFC 5322 MUST */

/* ---- UTF-8 and neutralising --------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (1-4), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *p)
{
	return utf8_decode((const char *)p, 4, NULL);
}

static const char replacement[] = "\xef\xbf\xbd";

char *send_neutralise(const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)p);
	char *out = malloc(n * 3 + 1), *o = out;
	int pending = 0;

	if (!out)
		return NULL;
	while (*p) {
		size_t k;
		if (*p < 0x20 || *p == 0x7f) {
			pending = 1;
			p++;
			continue;
		}
		if (pending && o > out)
			*o++ = ' ';
		pending = 0;
		if ((k = utf8_seq(p)) == 0) {
			memcpy(o, replacement, 3);
			o += 3;
			p++;
			continue;
		}
		memcpy(o, p, k);
		o += k;
		p += k;
	}
	while (o > out && o[-1] == ' ')
		o--;
	*o = '\0';
	{
		char *start = out;
		while (*start == ' ')
			start++;
		if (start != out)
			memmove(out, start, strlen(start) + 1);
	}
	return out;
}

/* Keep s as UTF-8, replacing invalid bytes; line ends untouched. */
static char *utf8_clean(const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)p);
	char *out = malloc(n * 3 + 1), *o = out;

	if (!out)
		return NULL;
	while (*p) {
		size_t k = utf8_seq(p);
		if (!k) {
			memcpy(o, replacement, 3);
			o += 3;
			p++;
			continue;
		}
		memcpy(o, p, k);
		o += k;
		p += k;
	}
	*o = '\0';
	return out;
}

void send_safe_copy(char *dst, size_t dstsz, const char *src)
{
	size_t i = 0;

	for (; src && *src && i + 1 < dstsz; src++)
		dst[i++] = ((unsigned char)*src < 0x20 || *src == 0x7f) ? '?' : *src;
	dst[i] = '\0';
}

/* ---- addresses -------------------------------------------------------- */

int send_address_valid(const char *addr)
{
	const char *at = NULL, *p;
	size_t len;

	if (!addr)
		return 0;
	len = strlen(addr);
	if (len < 3 || len > 254)
		return 0;
	for (p = addr; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= 0x20 || c >= 0x7f || strchr("<>()[],;:\"\\", c))
			return 0;
		if (c == '@') {
			if (at)
				return 0;
			at = p;
		}
	}
	if (!at || at == addr || at - addr > 64 || !at[1])
		return 0;
	/* domain: labels separated by single dots, none empty */
	if (at[1] == '.' || addr[len - 1] == '.' || strstr(at, ".."))
		return 0;
	return 1;
}

void send_free_recipients(char **addrs, size_t n)
{
	if (!addrs)
		return;
	for (size_t i = 0; i < n; i++)
		free(addrs[i]);
	free(addrs);
}

int send_parse_recipients(const char *list, char ***addrs, size_t *n,
			  struct ms_err *err)
{
	char **v = NULL;
	size_t count = 0, cap = 0;
	const char *p = list ? list : "";

	*addrs = NULL;
	*n = 0;
	while (*p) {
		const char *s = p, *e;
		size_t len;
		char *a;

		while (*p && *p != ';' && *p != ',')
			p++;
		e = p;
		if (*p)
			p++;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (s == e)
			continue;
		len = (size_t)(e - s);
		if (count >= SEND_MAX_RECIPIENTS) {
			send_free_recipients(v, count);
			return err_set(err, MS_ERR_DATA, "too many recipients (at most %d)",
				       SEND_MAX_RECIPIENTS);
		}
		if (!(a = malloc(len + 1))) {
			send_free_recipients(v, count);
			return err_nomem(err);
		}
		memcpy(a, s, len);
		a[len] = '\0';
		if (!send_address_valid(a)) {
			char shown[128];
			send_safe_copy(shown, sizeof(shown), a);
			free(a);
			send_free_recipients(v, count);
			return err_set(err, MS_ERR_DATA, "invalid recipient address '%s'", shown);
		}
		if (MEM_GROW(v, cap, count + 1, err) < 0) {
			free(a);
			send_free_recipients(v, count);
			return -1;
		}
		v[count++] = a;
	}
	if (!count)
		return err_set(err, MS_ERR_DATA, "no recipient address");
	*addrs = v;
	*n = count;
	return 0;
}

/* ---- ids and dates ------------------------------------------------------ */

void send_make_message_id(const char *from, char *out, size_t outsz)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char rnd[16];
	char r[33];
	const char *dom = "mailshift", *at;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		/* still unique enough for a Message-ID: time, pid and address */
		uint64_t x = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16) ^
			     (uint64_t)(uintptr_t)out;
		for (size_t i = 0; i < sizeof(rnd); i++, x = x * 6364136223846793005ULL + 1)
			rnd[i] = (unsigned char)(x >> 33);
	}
	for (size_t i = 0; i < sizeof(rnd); i++) {
		r[2 * i] = hex[rnd[i] >> 4];
		r[2 * i + 1] = hex[rnd[i] & 15];
	}
	r[32] = '\0';
	if (from && (at = strchr(from, '@')) && send_address_valid(from))
		dom = at + 1;
	snprintf(out, outsz, "<%s.%lld@%s>", r, (long long)time(NULL), dom);
}

void send_format_date(time_t t, char *out, size_t outsz)
{
	static const char *const wd[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const mo[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	if (!gmtime_r(&t, &tm)) {
		snprintf(out, outsz, "Thu, 01 Jan 1970 00:00:00 +0000");
		return;
	}
	snprintf(out, outsz, "%s, %02d %s %04d %02d:%02d:%02d +0000", wd[tm.tm_wday],
		 tm.tm_mday, mo[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		 tm.tm_sec);
}

/* ---- header encoding ---------------------------------------------------- */

static int plain_ascii(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			return 0;
	return strstr(s, "=?") == NULL;
}

/* RFC 2047 B words of at most 42 bytes of UTF-8 each, never splitting a
 * character; separated by CRLF SP. */
static int encode_words(struct buf *out, const char *s, struct ms_err *err)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0;
	int first = 1;

	while (i < n) {
		unsigned char b64[64];
		size_t take = n - i < 42 ? n - i : 42;
		/* back off to a character boundary */
		while (take > 1 && i + take < n && (p[i + take] & 0xc0) == 0x80)
			take--;
		EVP_EncodeBlock(b64, p + i, (int)take);
		if (buf_appendf(out, err, "%s=?UTF-8?B?%s?=", first ? "" : "\r\n ", b64))
			return -1;
		first = 0;
		i += take;
	}
	return 0;
}

static int header_value(struct buf *out, size_t name_len, const char *clean,
			struct ms_err *err)
{
	size_t col = name_len + 2, longest = 0, cur = 0;

	for (const char *p = clean; *p; p++) {
		cur = *p == ' ' ? 0 : cur + 1;
		if (cur > longest)
			longest = cur;
	}
	if (!plain_ascii(clean) || name_len + 3 + longest > LINE_HARD)
		return encode_words(out, clean, err);
	for (const char *p = clean; *p;) {
		const char *q = p;
		size_t seg;
		while (*q == ' ')
			q++;
		while (*q && *q != ' ')
			q++;
		seg = (size_t)(q - p);
		if (*p == ' ' && col > name_len + 2 && col + seg > LINE_SOFT) {
			if (buf_append(out, "\r\n", 2, err))
				return -1;
			col = 0;
		}
		if (buf_append(out, p, seg, err))
			return -1;
		col += seg;
		p = q;
	}
	return 0;
}

int send_encode_header(struct buf *out, size_t name_len, const char *value,
		       struct ms_err *err)
{
	char *clean = send_neutralise(value);
	int rc;

	if (!clean)
		return err_nomem(err);
	rc = header_value(out, name_len, clean, err);
	free(clean);
	return rc;
}

/* ---- body --------------------------------------------------------------- */

/* CRLF line ends, valid UTF-8, a final CRLF. */
static int body_lines(const char *body, struct buf *out, struct ms_err *err)
{
	char *clean = utf8_clean(body);
	int rc = 0;

	if (!clean)
		return err_nomem(err);
	for (const char *p = clean; *p && rc == 0; p++) {
		if (*p == '\r') {
			if (p[1] == '\n')
				p++;
			rc = buf_append(out, "\r\n", 2, err);
		} else if (*p == '\n') {
			rc = buf_append(out, "\r\n", 2, err);
		} else {
			rc = buf_append(out, p, 1, err);
		}
	}
	if (rc == 0 && (out->len < 2 || memcmp(out->data + out->len - 2, "\r\n", 2) != 0))
		rc = buf_append(out, "\r\n", 2, err);
	free(clean);
	return rc;
}

static int needs_qp(const struct buf *b)
{
	size_t col = 0;

	for (size_t i = 0; i < b->len; i++) {
		unsigned char c = (unsigned char)b->data[i];
		if (c >= 0x80)
			return 1;
		if (c == '\r' && i + 1 < b->len && b->data[i + 1] == '\n') {
			col = 0;
			i++;
			continue;
		}
		if (++col > LINE_HARD)
			return 1;
	}
	return 0;
}

/* Quoted-printable of CRLF text: hard line breaks kept, soft breaks at 76,
 * trailing blanks and a leading '.' encoded. */
static int qp_encode(const struct buf *in, struct buf *out, struct ms_err *err)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0;

	for (size_t i = 0; i < in->len; i++) {
		unsigned char c = (unsigned char)in->data[i];
		char enc[4];
		size_t elen;
		int eol_next;

		if (c == '\r' && i + 1 < in->len && in->data[i + 1] == '\n') {
			if (buf_append(out, "\r\n", 2, err))
				return -1;
			col = 0;
			i++;
			continue;
		}
		eol_next = i + 1 >= in->len ||
			   (in->data[i + 1] == '\r' && i + 2 < in->len && in->data[i + 2] == '\n');
		if ((c >= 33 && c <= 126 && c != '=' && !(c == '.' && col == 0)) ||
		    ((c == ' ' || c == '\t') && !eol_next)) {
			enc[0] = (char)c;
			elen = 1;
		} else {
			enc[0] = '=';
			enc[1] = hex[c >> 4];
			enc[2] = hex[c & 15];
			elen = 3;
		}
		if (col + elen > 75) {
			if (buf_append(out, "=\r\n", 3, err))
				return -1;
			col = 0;
			if (c == '.') {       /* the new line must not start with '.' */
				memcpy(enc, "=2E", 3);
				elen = 3;
			}
		}
		if (buf_append(out, enc, elen, err))
			return -1;
		col += elen;
	}
	return 0;
}

/* ---- composition -------------------------------------------------------- */

static int header_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n < 3 || n > 76 || strncasecmp(name, "X-", 2) != 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '-')
			return 0;
	return 1;
}

static int msgid_ok(const char *id)
{
	size_t n = strlen(id);

	if (n < 5 || n > 250 || id[0] != '<' || id[n - 1] != '>' || !strchr(id, '@'))
		return 0;
	for (size_t i = 1; i + 1 < n; i++) {
		unsigned char c = (unsigned char)id[i];
		if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>')
			return 0;
	}
	return 1;
}

static int append_from(struct buf *out, const struct send_message *m,
		       struct ms_err *err)
{
	char *name;
	int rc = 0;

	if (buf_appends(out, "From: ", err))
		return -1;
	name = m->from_name ? send_neutralise(m->from_name) : NULL;
	if (m->from_name && !name)
		return err_nomem(err);
	if (name && *name) {
		if (plain_ascii(name) && strlen(name) <= 200) {
			rc = buf_append(out, "\"", 1, err);
			for (const char *p = name; rc == 0 && *p; p++) {
				if ((*p == '"' || *p == '\\') && buf_append(out, "\\", 1, err))
					rc = -1;
				else
					rc = buf_append(out, p, 1, err);
			}
			if (rc == 0)
				rc = buf_append(out, "\"", 1, err);
		} else {
			rc = encode_words(out, name, err);
		}
		if (rc == 0)
			rc = buf_appendf(out, err, "%s<%s>\r\n",
					 plain_ascii(name) && strlen(name) <= 200 ? " " : "\r\n ",
					 m->from);
	} else {
		rc = buf_appendf(out, err, "%s\r\n", m->from);
	}
	free(name);
	return rc;
}

int send_compose(const struct send_message *m, struct buf *out,
		 struct ms_err *err)
{
	struct buf body;
	char **rcpt = NULL, date[48], mid[256];
	size_t nrcpt = 0, col;
	int ret = -1;

	buf_init(&body, SEND_MAX_TEXT);
	if (!send_address_valid(m->from)) {
		char shown[128];
		send_safe_copy(shown, sizeof(shown), m->from ? m->from : "");
		return err_set(err, MS_ERR_DATA, "invalid sender address '%s'", shown);
	}
	if (send_parse_recipients(m->to, &rcpt, &nrcpt, err))
		return -1;
	for (size_t i = 0; i < m->n_headers; i++) {
		if (!header_name_ok(m->headers[i].name)) {
			char shown[96];
			send_safe_copy(shown, sizeof(shown), m->headers[i].name ? m->headers[i].name : "");
			err_set(err, MS_ERR_DATA, "invalid extra header name '%s' (want X-...)",
				shown);
			goto out;
		}
	}
	if (m->message_id) {
		if (!msgid_ok(m->message_id)) {
			err_set(err, MS_ERR_DATA, "invalid Message-ID");
			goto out;
		}
		snprintf(mid, sizeof(mid), "%s", m->message_id);
	} else {
		send_make_message_id(m->from, mid, sizeof(mid));
	}
	send_format_date(m->date ? m->date : time(NULL), date, sizeof(date));

	if (buf_appendf(out, err, "Date: %s\r\n", date) || append_from(out, m, err))
		goto out;
	if (buf_appends(out, "To: ", err))
		goto out;
	col = 4;
	for (size_t i = 0; i < nrcpt; i++) {
		size_t l = strlen(rcpt[i]);
		if (i && buf_appends(out, col + l + 2 > LINE_SOFT ? ",\r\n " : ", ", err))
			goto out;
		if (i)
			col = col + l + 2 > LINE_SOFT ? 1 : col + 2;
		if (buf_appends(out, rcpt[i], err))
			goto out;
		col += l;
	}
	if (buf_appends(out, "\r\nSubject: ", err) ||
	    send_encode_header(out, 7, m->subject ? m->subject : "", err) ||
	    buf_appendf(out, err, "\r\nMessage-ID: %s\r\n", mid))
		goto out;
	for (size_t i = 0; i < m->n_headers; i++) {
		const struct send_header *h = &m->headers[i];
		if (buf_appendf(out, err, "%s: ", h->name) ||
		    send_encode_header(out, strlen(h->name), h->value ? h->value : "", err) ||
		    buf_appends(out, "\r\n", err))
			goto out;
	}
	if (body_lines(m->body ? m->body : "", &body, err))
		goto out;
	if (buf_appendf(out, err, "Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
			"Content-Type: text/plain; charset=utf-8\r\n"
			"Content-Transfer-Encoding: %s\r\n\r\n",
			needs_qp(&body) ? "quoted-printable" : "7bit"))
		goto out;
	if (needs_qp(&body) ? qp_encode(&body, out, err)
			    : buf_append(out, body.data, body.len, err))
		goto out;
	ret = 0;
out:
	buf_release(&body);
	send_free_recipients(rcpt, nrcpt);
	return ret;
}

/* ---- Graph JSON ----------------------------------------------------------- */

static cJSON *email_address(const char *addr)
{
	cJSON *o = cJSON_CreateObject(), *ea = cJSON_CreateObject();

	if (!o || !ea || !cJSON_AddStringToObject(ea, "address", addr)) {
		cJSON_Delete(o);
		cJSON_Delete(ea);
		return NULL;
	}
	cJSON_AddItemToObject(o, "emailAddress", ea);
	return o;
}

int send_graph_json(const struct send_message *m, const char *sender,
		    int save_to_sent, char **json, struct ms_err *err)
{
	cJSON *root = NULL, *msg, *body, *to, *hdrs, *r;
	char **rcpt = NULL, *subject = NULL, *text = NULL;
	size_t nrcpt = 0;
	int ret = -1;

	*json = NULL;
	if (!send_address_valid(m->from))
		return err_set(err, MS_ERR_DATA, "invalid sender address");
	if (send_parse_recipients(m->to, &rcpt, &nrcpt, err))
		return -1;
	for (size_t i = 0; i < m->n_headers; i++)
		if (!header_name_ok(m->headers[i].name)) {
			err_set(err, MS_ERR_DATA, "invalid extra header name (want X-...)");
			goto out;
		}
	subject = send_neutralise(m->subject ? m->subject : "");
	text = utf8_clean(m->body ? m->body : "");
	root = cJSON_CreateObject();
	if (!subject || !text || !root)
		goto nomem;
	if (!(msg = cJSON_AddObjectToObject(root, "message")) ||
	    !cJSON_AddStringToObject(msg, "subject", subject) ||
	    !(body = cJSON_AddObjectToObject(msg, "body")) ||
	    !cJSON_AddStringToObject(body, "contentType", "Text") ||
	    !cJSON_AddStringToObject(body, "content", text) ||
	    !(to = cJSON_AddArrayToObject(msg, "toRecipients")))
		goto nomem;
	for (size_t i = 0; i < nrcpt; i++) {
		if (!(r = email_address(rcpt[i])))
			goto nomem;
		cJSON_AddItemToArray(to, r);
	}
	if (sender && strcasecmp(sender, m->from) != 0) {
		if (!(r = email_address(m->from)))
			goto nomem;
		cJSON_AddItemToObject(msg, "from", r);
	}
	if (m->n_headers) {
		if (!(hdrs = cJSON_AddArrayToObject(msg, "internetMessageHeaders")))
			goto nomem;
		for (size_t i = 0; i < m->n_headers; i++) {
			char *v = send_neutralise(m->headers[i].value ? m->headers[i].value : "");
			cJSON *h = cJSON_CreateObject();
			if (!v || !h || !cJSON_AddStringToObject(h, "name", m->headers[i].name) ||
			    !cJSON_AddStringToObject(h, "value", v)) {
				free(v);
				cJSON_Delete(h);
				goto nomem;
			}
			free(v);
			cJSON_AddItemToArray(hdrs, h);
		}
	}
	if (!cJSON_AddBoolToObject(root, "saveToSentItems", save_to_sent ? 1 : 0))
		goto nomem;
	if (!(*json = cJSON_PrintUnformatted(root)))
		goto nomem;
	ret = 0;
	goto out;
nomem:
	err_nomem(err);
out:
	cJSON_Delete(root);
	free(subject);
	free(text);
	send_free_recipients(rcpt, nrcpt);
	return ret;
}

/* ---- the SMTP trace (send_int.h) ------------------------------------------ */

/*
 * Server text for an error message or a log line: control characters and
 * bytes that are not valid UTF-8 become '?', and the copy is cut only
 * between characters.
 */
static void reply_copy(char *dst, size_t dstsz, const char *src)
{
	const unsigned char *p = (const unsigned char *)(src ? src : "");
	size_t i = 0, k;

	if (!dstsz)
		return;
	while (*p) {
		/* utf8_seq() stops at the NUL: it is not a continuation byte */
		k = (*p < 0x20 || *p == 0x7f) ? 0 : utf8_seq(p);
		if (i + (k ? k : 1) >= dstsz)
			break;
		if (k) {
			memcpy(dst + i, p, k);
			i += k;
			p += k;
		} else {
			dst[i++] = '?';
			p++;
		}
	}
	dst[i] = '\0';
}

void send_trace_init(struct send_trace *t, int verbose)
{
	memset(t, 0, sizeof(*t));
	t->verbose = verbose;
}

/* A 334 challenge is base64; an XOAUTH2 failure puts a small JSON status in
 * it, which is worth keeping.  Anything else is shown as "334". */
static void keep_challenge(struct send_trace *t, const char *b64)
{
	unsigned char dec[SEND_REPLY_MAX];
	size_t n = strlen(b64);
	int dl;

	while (n && (b64[n - 1] == ' '))
		n--;
	if (n == 0 || n >= (sizeof(dec) / 3) * 4) {
		snprintf(t->reply, sizeof(t->reply), "334");
		return;
	}
	dl = EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)n);
	while (dl > 0 && dec[dl - 1] == '\0')
		dl--;
	if (dl > 1 && dec[0] == '{') {
		dec[dl] = '\0';
		memcpy(t->reply, "334 ", 4);
		reply_copy(t->reply + 4, sizeof(t->reply) - 4, (const char *)dec);
	} else {
		snprintf(t->reply, sizeof(t->reply), "334");
	}
	mem_wipe(dec, sizeof(dec));
}

void send_trace_line_in(struct send_trace *t, const char *line)
{
	if (strlen(line) < 3)
		return;
	if (strncmp(line, "334", 3) == 0 &&
	    (line[3] == ' ' || line[3] == '-' || line[3] == '\0')) {
		if (!t->quitting)
			keep_challenge(t, line[3] ? line + 4 : "");
		if (t->verbose)
			log_trace("smtp < 334 [challenge hidden]");
		return;
	}
	/* any other reply ends the SASL exchange (235, 4xx, 5xx) */
	t->in_auth = 0;
	if (!t->quitting)
		reply_copy(t->reply, sizeof(t->reply), line);
	if (t->verbose) {
		char safe[SEND_REPLY_MAX];
		reply_copy(safe, sizeof(safe), line);
		log_trace("smtp < %s", safe);
	}
}

void send_trace_line_out(struct send_trace *t, const char *line)
{
	static const char *const shown[] = { "EHLO", "HELO", "STARTTLS", "MAIL", "RCPT",
					     "DATA", "QUIT", "RSET", "NOOP", NULL };
	char verb[16];
	size_t n = 0;

	/* SASL continuation: a credential, whatever it looks like */
	if (t->in_auth) {
		if (t->verbose)
			log_trace("smtp > [credentials hidden]");
		return;
	}
	while (n < sizeof(verb) - 1 && isalpha((unsigned char)line[n])) {
		verb[n] = (char)toupper((unsigned char)line[n]);
		n++;
	}
	verb[n] = '\0';
	if (n && (line[n] == ' ' || line[n] == '\0')) {
		for (const char *const *v = shown; *v; v++)
			if (strcmp(verb, *v) == 0) {
				if (strcmp(verb, "QUIT") == 0)
					t->quitting = 1;
				else
					snprintf(t->cmd, sizeof(t->cmd), "%s", verb);
				if (t->verbose) {
					char safe[SEND_REPLY_MAX];
					reply_copy(safe, sizeof(safe), line);
					log_trace("smtp > %s", safe);
				}
				return;
			}
		if (strcmp(verb, "AUTH") == 0) {
			char mech[24];
			size_t k = 0;
			const char *p = line + n;
			while (*p == ' ')
				p++;
			while (k < sizeof(mech) - 1 && (isalnum((unsigned char)p[k]) || p[k] == '-'))
				mech[k] = p[k], k++;
			mech[k] = '\0';
			snprintf(t->cmd, sizeof(t->cmd), "AUTH");
			t->in_auth = 1;
			if (t->verbose)
				log_trace("smtp > AUTH %s [credentials hidden]", mech);
			return;
		}
	}
	/* not a command we know: may be a credential */
	if (t->verbose)
		log_trace("smtp > [credentials hidden]");
}

void send_trace_chunk(struct send_trace *t, int outgoing, const char *data,
		      size_t size)
{
	/* room for a character cut by the reply's cap: reply_copy() drops it */
	char line[SEND_REPLY_MAX + 4];
	size_t i = 0;

	/* one or more LF or CRLF terminated lines; bounded by size */
	while (i < size) {
		size_t j = i, n;
		while (j < size && data[j] != '\n')
			j++;
		n = j - i;
		if (n && data[i + n - 1] == '\r')
			n--;
		if (n > sizeof(line) - 1)
			n = sizeof(line) - 1;
		memcpy(line, data + i, n);
		line[n] = '\0';
		if (outgoing)
			send_trace_line_out(t, line);
		else
			send_trace_line_in(t, line);
		i = j + 1;
	}
	mem_wipe(line, sizeof(line));
}
