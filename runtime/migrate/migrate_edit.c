/*
 * migrate_edit.c - the pure parts of mailshift-migrate: INI and
 * command-line rewriting, export rewriting, diffs, hashes (the mapping
 * file is migrate_map.c).
 */
#include "migrate/migrate.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "ini/cmdline.h"
#include "audit/fleet.h"
#include "base/escape.h"
#include "base/fsutil.h"
#include "base/mem.h"
#include "base/utf8.h"
#include "ini/ini.h"
#include "auth/seal.h"
#include "auth/secret.h"
#include "ini/config.h"

const char *migrate_transport_name(enum migrate_transport t)
{
	switch (t) {
	case MT_IMAP: return "imap";
	case MT_POP: return "pop";
	case MT_GRAPH: return "graph";
	default: return "keep";
	}
}

/* INI rewriting. */

static int ensure(struct ini *ini, const char *sect, const char *key,
		  const char *value, struct ms_err *err)
{
	const char *cur = ini_get(ini, sect, key);

	if (cur && strcmp(cur, value) == 0)
		return 0;
	return ini_set(ini, sect, key, value, err);
}

static int is_exo_host(const char *s)
{
	static const char *const ok[] = { "outlook.office365.com",
		"outlook.office365.us", "partner.outlook.cn", "outlook.office.de",
		NULL };
	char *u = ini_unquote(s);
	int i, r = 0;

	if (!u)
		return 0;
	for (i = 0; ok[i]; i++)
		if (strcasecmp(u, ok[i]) == 0)
			r = 1;
	free(u);
	return r;
}

/* The INI value s (maybe quoted) names host, in any case. */
static int same_host(const char *s, const char *host)
{
	char *u = s ? ini_unquote(s) : NULL;
	int r = u && strcasecmp(u, host) == 0;

	free(u);
	return r;
}

static int ini_true(const struct ini *ini, const char *sect, const char *key)
{
	int b = 0;

	return config_parse_bool(ini_get(ini, sect, key), &b) == 0 && b;
}

/* NotifyOnAccepts / NotifyOnRejects without anywhere to send from: a
 * [Notify] section through the same app registration (Graph sendMail as
 * the mailbox, or Exchange Online SMTP with XOAUTH2), when the mapping
 * asks for it.  A [Notify] that names a server or Graph is kept. */
static int add_notify(struct ini *ini, enum migrate_notify how,
		      struct ms_err *err)
{
	const char *tr = ini_get(ini, "Notify", "Transport");

	if (how != MN_GRAPH && how != MN_SMTP)
		return 0;
	if (!ini_true(ini, "Audit", "NotifyOnAccepts") &&
	    !ini_true(ini, "Audit", "NotifyOnRejects"))
		return 0;
	if ((tr && strcasecmp(tr, "Graph") == 0) ||
	    !config_is_unset(ini_get(ini, "Notify", "Server")))
		return 0;
	if (how == MN_GRAPH)
		return ini_set(ini, "Notify", "Transport", "Graph", err);
	return ini_set(ini, "Notify", "Transport", "SMTP", err) < 0 ||
	       ini_set(ini, "Notify", "Server", "smtp.office365.com", err) < 0 ||
	       ini_set(ini, "Notify", "Port", "587", err) < 0 ||
	       ini_set(ini, "Notify", "TLS", "StartTLS", err) < 0 ||
	       ini_set(ini, "Notify", "AuthMethod", "OAuth2", err) < 0 ? -1 : 0;
}

int migrate_rewrite_ini(const char *name, const char *data, size_t len,
			const struct migrate_target *t, char **out,
			size_t *outlen, struct ms_err *err)
{
	struct ini *ini = NULL;
	int rc = -1, was_cp1252 = 0;

	*out = NULL;
	*outlen = 0;
	/* an ANSI file comes out as UTF-8 with a BOM: the connector reads it */
	if (ini_parse_any(&ini, name, data, len, &was_cp1252, err) < 0)
		return -1;
	if (ini_check(ini, err) == 0)
		rc = migrate_rewrite_ini_parsed(ini, t, out, outlen, err);
	ini_free(ini);
	return rc;
}

/* The edits of migrate_rewrite_ini_parsed(), in one edit batch. */
static int rewrite_ini_edits(struct ini *ini, const struct migrate_target *t,
			     struct ms_err *err)
{
	enum migrate_transport tr = t->transport;
	const char *proto, *sp;
	char port[16];

	if (tr == MT_KEEP) {
		proto = ini_get(ini, "Mail", "EmailProtocol");
		if (proto && (strcasecmp(proto, "POP") == 0 ||
			      strcasecmp(proto, "POP3") == 0))
			tr = MT_POP;
		else if (proto && strcasecmp(proto, "GRAPH") == 0)
			tr = MT_GRAPH;
		else
			tr = MT_IMAP;	/* IMAP, MSAL or unset */
	}
	if (ensure(ini, "Mail", "AuthMethod", "OAuth2", err) < 0)
		return -1;
	switch (tr) {
	case MT_GRAPH:
		if (ensure(ini, "Mail", "EmailProtocol", "GRAPH", err) < 0)
			return -1;
		break;
	default:
		proto = ini_get(ini, "Mail", "EmailProtocol");
		/* keep "POP3" spelled as it was */
		if (!(tr == MT_POP && proto && strcasecmp(proto, "POP3") == 0) &&
		    !(tr == MT_POP && proto && strcasecmp(proto, "POP") == 0) &&
		    !(tr == MT_IMAP && proto && strcasecmp(proto, "IMAP") == 0) &&
		    ini_set(ini, "Mail", "EmailProtocol", tr == MT_POP ? "POP" : "IMAP",
			    err) < 0)
			return -1;
		if (t->server ? !same_host(ini_get(ini, "Mail", "Server"), t->server) &&
		    ini_set(ini, "Mail", "Server", t->server, err) < 0 :
		    !is_exo_host(ini_get(ini, "Mail", "Server")) &&
		    ini_set(ini, "Mail", "Server", "outlook.office365.com", err) < 0)
			return -1;
		snprintf(port, sizeof(port), "%d", t->port > 0 ? t->port :
			 tr == MT_POP ? 995 : 993);
		if (ensure(ini, "Mail", "Port", port, err) < 0)
			return -1;
		if (t->ca_file && ensure(ini, "Mail", "CAFile", t->ca_file, err) < 0)
			return -1;
		sp = ini_get(ini, "Mail", "SecurityProtocol");
		if (sp && !config_is_unset(sp) &&
		    strcasecmp(sp, "TLS1_2") && strcasecmp(sp, "TLS1_3") &&
		    strcasecmp(sp, "TLS12") && strcasecmp(sp, "TLS1.2") &&
		    strcasecmp(sp, "TLSv1.2") && strcasecmp(sp, "TLS13") &&
		    strcasecmp(sp, "TLS1.3") && strcasecmp(sp, "TLSv1.3") &&
		    ini_set(ini, "Mail", "SecurityProtocol", "TLS1_2", err) < 0)
			return -1;
		if (ini_get(ini, "Mail", "StartTLS") &&
		    ensure(ini, "Mail", "StartTLS", "False", err) < 0)
			return -1;
		/* the mapping's own port means TLS from the first byte: with
		 * SecurityProtocol empty the connector would choose STARTTLS
		 * on a port other than 993/995 (mailbox_tls_choose()) */
		if (t->port > 0 && t->port != 993 && t->port != 995 &&
		    config_is_unset(ini_get(ini, "Mail", "SecurityProtocol")) &&
		    ini_set(ini, "Mail", "SecurityProtocol", "TLS1_2", err) < 0)
			return -1;
		break;
	}
	if (ensure(ini, "Mail", "SelfSignedCertificate", "False", err) < 0)
		return -1;
	sp = ini_get(ini, "Mail", "Password");
	if (sp && sp[0] && ini_set(ini, "Mail", "Password", "", err) < 0)
		return -1;
	if ((t->authority && ensure(ini, "OAuth", "Authority", t->authority, err) < 0) ||
	    ensure(ini, "OAuth", "TenantId", t->tenant_id, err) < 0 ||
	    ensure(ini, "OAuth", "ClientId", t->client_id, err) < 0)
		return -1;
	if (t->client_secret) {
		if (ensure(ini, "OAuth", "ClientSecret", t->client_secret, err) < 0)
			return -1;
		ini_remove(ini, "OAuth", "CertificateFile");
	} else {
		if (ensure(ini, "OAuth", "CertificateFile", t->certificate_file, err) < 0)
			return -1;
		ini_remove(ini, "OAuth", "ClientSecret");
	}
	if (ensure(ini, "OAuth", "Flow", "ClientCredentials", err) < 0 ||
	    (t->mailbox && ensure(ini, "OAuth", "Mailbox", t->mailbox, err) < 0) ||
	    (t->graph_endpoint &&
	     ensure(ini, "OAuth", "GraphEndpoint", t->graph_endpoint, err) < 0) ||
	    (t->ca_file && ensure(ini, "OAuth", "CAFile", t->ca_file, err) < 0))
		return -1;
	return add_notify(ini, t->notify, err);
}

int migrate_rewrite_ini_parsed(struct ini *ini, const struct migrate_target *t,
			       char **out, size_t *outlen, struct ms_err *err)
{
	int rc;

	*out = NULL;
	*outlen = 0;
	/* the index rebuilt once for all the edits, not after each */
	ini_edit_begin(ini);
	rc = rewrite_ini_edits(ini, t, err);
	if (ini_edit_end(ini, rc < 0 ? NULL : err) < 0 || rc < 0)
		return -1;
	return ini_serialize(ini, out, outlen, err);
}

/* Command lines. */

struct span { size_t off, len; };

#define SPAN_MAX 512

static size_t split_spans(const char *s, struct span *sp, size_t max)
{
	size_t i = 0, n = 0, len = strlen(s);

	while (i < len && n < max) {
		int inq = 0;
		size_t start, bs = 0;

		while (i < len && (s[i] == ' ' || s[i] == '\t'))
			i++;
		if (i >= len)
			break;
		start = i;
		for (; i < len; i++) {
			if (s[i] == '\\') {
				bs++;
				continue;
			}
			if (s[i] == '"' && bs % 2 == 0)
				inq = !inq;
			else if (!inq && (s[i] == ' ' || s[i] == '\t'))
				break;
			bs = 0;
		}
		sp[n].off = start;
		sp[n].len = i - start;
		n++;
	}
	return n;
}

static char *decode_span(const char *s, const struct span *sp)
{
	struct ms_err err = MS_ERR_INIT;
	char *t = strndup(s + sp->off, sp->len), *r = NULL;
	char **argv = NULL;
	int argc = 0;

	if (!t)
		return NULL;
	if (cmdline_split_windows(t, &argv, &argc, &err) == 0 && argc >= 1)
		r = strdup(argv[0]);
	else
		r = strdup(t);
	if (argv)
		cmdline_argv_free(argv, argc);
	mem_wipe(t, sp->len);
	free(t);
	return r;
}

static int opt_is(const char *tok, const char *name)
{
	size_t n = strlen(name);

	return strncasecmp(tok, name, n) == 0 &&
	       (tok[n] == '\0' || tok[n] == ':' || tok[n] == '=');
}

int migrate_rewrite_command(const char *cmd, const char *connector,
			    char **out, unsigned *flags, struct ms_err *err)
{
	struct span sp[SPAN_MAX];
	unsigned char drop[SPAN_MAX];
	size_t n, i, exe = SPAN_MAX, end;
	struct buf b;
	char *tok;

	*out = NULL;
	*flags = 0;
	n = split_spans(cmd, sp, SPAN_MAX);
	memset(drop, 0, sizeof(drop));
	for (i = 0; i < n && exe == SPAN_MAX; i++) {
		if (!(tok = decode_span(cmd, &sp[i])))
			return err_nomem(err);
		if (cmdline_is_connector_exe(tok))
			exe = i;
		free(tok);
	}
	if (exe == SPAN_MAX) {
		*flags |= MIGRATE_CMD_UNLOCATED;
		return (*out = strdup(cmd)) ? 0 : err_nomem(err);
	}
	for (end = exe + 1; end < n; end++) {
		char c = cmd[sp[end].off];
		if (c == '&' || c == '|' || c == '<' || c == '>')
			break;
		if (!(tok = decode_span(cmd, &sp[end])))
			return err_nomem(err);
		if (opt_is(tok, "-server") || opt_is(tok, "-port") ||
		    opt_is(tok, "--imap") || opt_is(tok, "--pop") ||
		    opt_is(tok, "--msal"))
			drop[end] = 1;
		else if (opt_is(tok, "--renewmsaltoken") ||
			 opt_is(tok, "--renewtokensilent"))
			*flags |= MIGRATE_CMD_KEEPALIVE;
		else if ((opt_is(tok, "-password") || opt_is(tok, "-opconpassword")) &&
			 strchr(tok, ':') && !cmdline_is_property(strchr(tok, ':') + 1))
			*flags |= MIGRATE_CMD_PASSWORD;
		mem_wipe(tok, strlen(tok));
		free(tok);
	}
	if (*flags & MIGRATE_CMD_KEEPALIVE)
		return (*out = strdup(cmd)) ? 0 : err_nomem(err);
	buf_init(&b, CMDLINE_MAX * 4);
	{
		size_t pos = 0;
		for (i = 0; i < n; i++) {
			if (drop[i]) {
				/* drop the blanks before the token and the token */
				pos = sp[i].off + sp[i].len;
				continue;
			}
			if (buf_append(&b, cmd + pos, sp[i].off - pos, err) < 0)
				goto fail;
			if (i == exe && connector) {
				int q = strpbrk(connector, " \t") != NULL;
				if (buf_appendf(&b, err, "%s%s%s", q ? "\"" : "", connector,
						q ? "\"" : "") < 0)
					goto fail;
			} else if (buf_append(&b, cmd + sp[i].off, sp[i].len, err) < 0) {
				goto fail;
			}
			pos = sp[i].off + sp[i].len;
		}
		if (buf_appends(&b, cmd + pos, err) < 0)
			goto fail;
	}
	if (!b.data && buf_appends(&b, "", err) < 0)
		goto fail;
	if (strcmp(b.data, cmd) != 0)
		*flags |= MIGRATE_CMD_CHANGED;
	*out = buf_detach(&b, NULL);
	return 0;
fail:
	buf_wipe(&b);
	return -1;
}

/* Exports. */

static int utf8_put(struct buf *b, unsigned long cp, struct ms_err *err)
{
	char u[4];

	return buf_append(b, u, utf8_encode((uint32_t)cp, u), err);
}

static int hex4(const char *p, unsigned long *v)
{
	int i;

	*v = 0;
	for (i = 0; i < 4; i++) {
		int c = p[i];
		*v <<= 4;
		if (c >= '0' && c <= '9') *v |= (unsigned long)(c - '0');
		else if (c >= 'a' && c <= 'f') *v |= (unsigned long)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F') *v |= (unsigned long)(c - 'A' + 10);
		else return -1;
	}
	return 0;
}

/* Decode the JSON string body s[0..n) (without quotes). */
static int json_decode(const char *s, size_t n, struct buf *b, struct ms_err *err)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned long cp, lo;
		char c = s[i];

		if (c != '\\') {
			if (buf_append(b, &c, 1, err) < 0)
				return -1;
			continue;
		}
		if (++i >= n)
			return err_set(err, MS_ERR_DATA, "bad JSON escape");
		switch (s[i]) {
		case 'b': c = '\b'; break;
		case 'f': c = '\f'; break;
		case 'n': c = '\n'; break;
		case 'r': c = '\r'; break;
		case 't': c = '\t'; break;
		case 'u':
			if (i + 4 >= n || hex4(s + i + 1, &cp) < 0)
				return err_set(err, MS_ERR_DATA, "bad JSON escape");
			i += 4;
			if (cp >= 0xD800 && cp < 0xDC00 && i + 6 < n &&
			    s[i + 1] == '\\' && s[i + 2] == 'u' &&
			    hex4(s + i + 3, &lo) == 0 && lo >= 0xDC00 && lo < 0xE000) {
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				i += 6;
			}
			if (utf8_put(b, cp, err) < 0)
				return -1;
			continue;
		default: c = s[i]; break;
		}
		if (buf_append(b, &c, 1, err) < 0)
			return -1;
	}
	return buf_appends(b, "", err);
}

static int json_encode(const char *s, struct buf *b, struct ms_err *err)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			if (buf_appendf(b, err, "\\%c", c) < 0)
				return -1;
		} else if (c < 0x20) {
			if (buf_appendf(b, err, "\\u%04x", c) < 0)
				return -1;
		} else if (buf_append(b, s, 1, err) < 0) {
			return -1;
		}
	}
	return 0;
}

static int xml_decode(const char *s, size_t n, struct buf *b, struct ms_err *err)
{
	size_t i;

	if (n >= 12 && strncmp(s, "<![CDATA[", 9) == 0 &&
	    strncmp(s + n - 3, "]]>", 3) == 0) {
		if (buf_append(b, s + 9, n - 12, err) < 0)
			return -1;
		return buf_appends(b, "", err);
	}
	for (i = 0; i < n; i++) {
		if (s[i] == '&') {
			const char *semi = memchr(s + i, ';', n - i);
			size_t k = semi ? (size_t)(semi - (s + i)) : 0;
			unsigned long cp = 0;
			if (!semi || k < 2)
				return err_set(err, MS_ERR_DATA, "bad XML entity");
			if (k == 4 && strncmp(s + i, "&amp", 4) == 0) cp = '&';
			else if (k == 3 && strncmp(s + i, "&lt", 3) == 0) cp = '<';
			else if (k == 3 && strncmp(s + i, "&gt", 3) == 0) cp = '>';
			else if (k == 5 && strncmp(s + i, "&quot", 5) == 0) cp = '"';
			else if (k == 5 && strncmp(s + i, "&apos", 5) == 0) cp = '\'';
			else if (s[i + 1] == '#') {
				char num[16];
				if (k - 2 >= sizeof(num) || k < 3)
					return err_set(err, MS_ERR_DATA, "bad XML entity");
				memcpy(num, s + i + 2, k - 2);
				num[k - 2] = '\0';
				cp = num[0] == 'x' || num[0] == 'X' ? strtoul(num + 1, NULL, 16) :
				     strtoul(num, NULL, 10);
				if (cp == 0 || cp > 0x10FFFF)
					return err_set(err, MS_ERR_DATA, "bad XML entity");
			} else
				return err_set(err, MS_ERR_DATA, "unknown XML entity");
			if (utf8_put(b, cp, err) < 0)
				return -1;
			i += k;
		} else if (buf_append(b, s + i, 1, err) < 0) {
			return -1;
		}
	}
	return buf_appends(b, "", err);
}

static int xml_encode(const char *s, int cdata, int quot, struct buf *b,
		      struct ms_err *err)
{
	if (cdata && !strstr(s, "]]>"))
		return buf_appendf(b, err, "<![CDATA[%s]]>", s);
	return escape_markup(b, s, ESC_XML | (quot ? 0 : ESC_KEEP_QUOTE), err);
}

static long find_change(const char *v, const char *const *olds, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v, olds[i]) == 0)
			return (long)i;
	return -1;
}

/* End of a JSON string starting at s[i] == '"': index of the closing quote. */
static size_t json_string_end(const char *s, size_t len, size_t i)
{
	/* memchr to each quote, then past any escape before it: an export
	 * is tens of MB of mostly plain strings */
	for (i++; i < len;) {
		const char *q = memchr(s + i, '"', len - i);
		const char *bs = memchr(s + i, '\\', (size_t)((q ? q : s + len) - (s + i)));

		if (bs) {
			i = (size_t)(bs - s) + 2;
			continue;
		}
		return q ? (size_t)(q - s) : len;
	}
	return len;
}

static int rewrite_json(const char *s, size_t len, const char *const *olds,
			const char *const *news, size_t n, struct buf *o,
			size_t *replaced, struct ms_err *err)
{
	size_t i = 0, copied = 0;
	struct buf v;
	int rc = -1;

	buf_init(&v, CMDLINE_MAX * 8);
	while (i < len) {
		size_t e, j;
		const char *q = memchr(s + i, '"', len - i);

		if (!q)
			break;
		i = (size_t)(q - s);
		e = json_string_end(s, len, i);
		if (e >= len)
			break;
		j = e + 1;
		while (j < len && isspace((unsigned char)s[j]))
			j++;
		if (j < len && s[j] == ':' && e - i - 1 == 11 &&
		    strncmp(s + i + 1, "commandLine", 11) == 0) {
			size_t vs = j + 1, ve;
			long k;
			while (vs < len && isspace((unsigned char)s[vs]))
				vs++;
			if (vs >= len || s[vs] != '"') {
				i = vs;
				continue;
			}
			ve = json_string_end(s, len, vs);
			if (ve >= len)
				break;
			buf_reset(&v);
			if (json_decode(s + vs + 1, ve - vs - 1, &v, err) < 0)
				goto done;
			if ((k = find_change(v.data, olds, n)) >= 0) {
				if (buf_append(o, s + copied, vs + 1 - copied, err) < 0 ||
				    json_encode(news[k], o, err) < 0)
					goto done;
				copied = ve;
				(*replaced)++;
			}
			i = ve + 1;
			continue;
		}
		i = e + 1;
	}
	rc = buf_append(o, s + copied, len - copied, err);
done:
	buf_wipe(&v);
	return rc;
}

static int rewrite_xml(const char *s, size_t len, const char *const *olds,
		       const char *const *news, size_t n, struct buf *o,
		       size_t *replaced, struct ms_err *err)
{
	size_t i = 0, copied = 0;
	struct buf v;
	int rc = -1;

	buf_init(&v, CMDLINE_MAX * 8);
	while (i + 10 < len) {
		const char *p = memmem(s + i, len - i, "<cmd_line", 9);
		const char *gt, *close;
		size_t ts, te;
		long k;

		if (!p)
			break;
		i = (size_t)(p - s) + 9;
		if (s[i] != '>' && !isspace((unsigned char)s[i]))
			continue;
		if (!(gt = memchr(s + i, '>', len - i)) || gt[-1] == '/')
			continue;
		ts = (size_t)(gt - s) + 1;
		if (!(close = memmem(s + ts, len - ts, "</cmd_line>", 11)))
			break;
		te = (size_t)(close - s);
		buf_reset(&v);
		if (xml_decode(s + ts, te - ts, &v, err) < 0)
			goto done;
		if ((k = find_change(v.data, olds, n)) >= 0) {
			int cdata = te - ts >= 9 && strncmp(s + ts, "<![CDATA[", 9) == 0;
			int quot = memmem(s + ts, te - ts, "&quot;", 6) != NULL;
			if (buf_append(o, s + copied, ts - copied, err) < 0 ||
			    xml_encode(news[k], cdata, quot, o, err) < 0)
				goto done;
			copied = te;
			(*replaced)++;
		}
		i = te + 11;
	}
	rc = buf_append(o, s + copied, len - copied, err);
done:
	buf_wipe(&v);
	return rc;
}

int migrate_rewrite_export(const char *name, const char *data, size_t len,
			   const char *const *olds, const char *const *news,
			   size_t n, char **out, size_t *outlen,
			   size_t *replaced, struct ms_err *err)
{
	struct buf o;
	size_t k, lead = 0;
	int xml;

	*out = NULL;
	*outlen = 0;
	*replaced = 0;
	if (len >= 2 && (((unsigned char)data[0] == 0xFF && (unsigned char)data[1] == 0xFE) ||
			 ((unsigned char)data[0] == 0xFE && (unsigned char)data[1] == 0xFF)))
		return err_set(err, MS_ERR_DATA, "'%s' is UTF-16: not rewritten (use the "
			       "change list)", name);
	for (k = 0; k < len && k < 64; k++)
		if (data[k] == '\0')
			return err_set(err, MS_ERR_DATA, "'%s' is UTF-16: not rewritten "
				       "(use the change list)", name);
	if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
		lead = 3;
	for (k = lead; k < len && isspace((unsigned char)data[k]); k++)
		;
	xml = k < len && data[k] == '<';
	buf_init(&o, len * 2 + 64 * 1024);
	if ((xml ? rewrite_xml(data, len, olds, news, n, &o, replaced, err) :
		   rewrite_json(data, len, olds, news, n, &o, replaced, err)) < 0) {
		err_prefix(err, "%s", name);
		buf_release(&o);
		return -1;
	}
	if (!o.data && buf_appends(&o, "", err) < 0) {
		buf_release(&o);
		return -1;
	}
	*outlen = o.len;
	*out = buf_detach(&o, NULL);
	return 0;
}

/* Diffs. */

struct lines {
	const char **p;
	size_t *n;
	size_t count;
};

static int split_lines(const char *s, size_t len, struct lines *l,
		       struct ms_err *err)
{
	size_t i, start = 0, cap = 16;

	l->count = 0;
	l->p = malloc(cap * sizeof(*l->p));
	l->n = malloc(cap * sizeof(*l->n));
	if (!l->p || !l->n)
		return err_nomem(err);
	for (i = 0; i <= len; i++) {
		if (i < len && s[i] != '\n')
			continue;
		if (i == len && start == len)
			break;
		if (l->count == cap) {
			const char **np;
			size_t *nn;
			cap *= 2;
			np = realloc(l->p, cap * sizeof(*np));
			if (np)
				l->p = np;
			nn = realloc(l->n, cap * sizeof(*nn));
			if (nn)
				l->n = nn;
			if (!np || !nn)
				return err_nomem(err);
		}
		l->p[l->count] = s + start;
		l->n[l->count] = i - start;
		if (l->n[l->count] && s[i - 1] == '\r')
			l->n[l->count]--;
		l->count++;
		start = i + 1;
	}
	return 0;
}

static int line_eq(const struct lines *a, size_t i, const struct lines *b,
		   size_t j)
{
	return a->n[i] == b->n[j] && memcmp(a->p[i], b->p[j], a->n[i]) == 0;
}

static int is_secret_key(const char *k, size_t n)
{
	static const char *const keys[] = { "password", "clientsecret",
		"opconuserpassword", "secret", NULL };
	int i;

	for (i = 0; keys[i]; i++)
		if (strlen(keys[i]) == n && strncasecmp(k, keys[i], n) == 0)
			return 1;
	return 0;
}

static int put_line(struct buf *out, char tag, const char *p, size_t n,
		    int kind, struct ms_err *err)
{
	char *t, *r = NULL;
	int rc;

	if (!(t = strndup(p, n)))
		return err_nomem(err);
	if (kind == MIGRATE_DIFF_EXPORT) {
		r = cmdline_redact(t);
	} else {
		const char *eq = strchr(t, '='), *k = t, *v;
		size_t kn;
		while (*k == ' ' || *k == '\t')
			k++;
		if (eq && *k != ';' && *k != '#') {
			kn = (size_t)(eq - k);
			while (kn && (k[kn - 1] == ' ' || k[kn - 1] == '\t'))
				kn--;
			v = eq + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			if (is_secret_key(k, kn) && *v &&
			    strncmp(v, "env:", 4) && strncmp(v, "file:", 5) &&
			    strcmp(v, MIGRATE_SEALED_PLACEHOLDER) &&
			    strncmp(v, "mssealed:", 9)) {
				if (asprintf(&r, "%.*s***", (int)(v - t), t) < 0)
					r = NULL;
			} else {
				r = strdup(t);
			}
		} else {
			r = strdup(t);
		}
	}
	mem_wipe(t, n);
	free(t);
	if (!r)
		return err_nomem(err);
	rc = buf_appendf(out, err, "%c%s\n", tag, r);
	mem_wipe(r, strlen(r));
	free(r);
	return rc;
}

#define DIFF_CONTEXT 3
#define DIFF_DP_MAX ((size_t)4 * 1000 * 1000)

/* ops: ' ' keep, '-' delete (a), '+' insert (b) */
static int diff_ops(const struct lines *a, const struct lines *b, char **ops,
		    size_t *nops, struct ms_err *err)
{
	size_t pre = 0, suf = 0, n, m, i, j, k = 0;
	uint32_t *dp = NULL;
	char *o;

	while (pre < a->count && pre < b->count && line_eq(a, pre, b, pre))
		pre++;
	while (suf < a->count - pre && suf < b->count - pre &&
	       line_eq(a, a->count - 1 - suf, b, b->count - 1 - suf))
		suf++;
	n = a->count - pre - suf;
	m = b->count - pre - suf;
	if (!(o = malloc(a->count + b->count + 1)))
		return err_nomem(err);
	for (i = 0; i < pre; i++)
		o[k++] = ' ';
	if (n == m && n > 0 && (n + 1) * (m + 1) > DIFF_DP_MAX) {
		/* same line count, too big for the table: the rewrites change
		 * lines in place (exports), so pair the lines up */
		for (i = 0; i < n; i = j) {
			if (line_eq(a, pre + i, b, pre + i)) {
				o[k++] = ' ';
				j = i + 1;
				continue;
			}
			for (j = i; j < n && !line_eq(a, pre + j, b, pre + j); j++)
				o[k++] = '-';
			memset(o + k, '+', j - i);
			k += j - i;
		}
	} else if (n && m && (n + 1) * (m + 1) <= DIFF_DP_MAX &&
	    (dp = calloc((n + 1) * (m + 1), sizeof(*dp)))) {
		/* LCS table from the end */
		for (i = n; i-- > 0;)
			for (j = m; j-- > 0;)
				dp[i * (m + 1) + j] = line_eq(a, pre + i, b, pre + j) ?
					dp[(i + 1) * (m + 1) + j + 1] + 1 :
					(dp[(i + 1) * (m + 1) + j] >= dp[i * (m + 1) + j + 1] ?
					 dp[(i + 1) * (m + 1) + j] : dp[i * (m + 1) + j + 1]);
		i = j = 0;
		while (i < n && j < m) {
			if (line_eq(a, pre + i, b, pre + j)) {
				o[k++] = ' '; i++; j++;
			} else if (dp[(i + 1) * (m + 1) + j] >= dp[i * (m + 1) + j + 1]) {
				o[k++] = '-'; i++;
			} else {
				o[k++] = '+'; j++;
			}
		}
		for (; i < n; i++)
			o[k++] = '-';
		for (; j < m; j++)
			o[k++] = '+';
		free(dp);
	} else {
		for (i = 0; i < n; i++)
			o[k++] = '-';
		for (j = 0; j < m; j++)
			o[k++] = '+';
	}
	for (i = 0; i < suf; i++)
		o[k++] = ' ';
	*ops = o;
	*nops = k;
	return 0;
}

static int to_text(const char *d, size_t len, char **out, size_t *olen,
		   struct ms_err *err)
{
	return fleet_to_utf8(d, len, out, olen, err);
}

int migrate_diff(const char *name, const char *a, size_t alen,
		 const char *b, size_t blen, int kind, struct buf *out,
		 struct ms_err *err)
{
	char *ta = NULL, *tb = NULL, *ops = NULL;
	size_t la = 0, lb = 0, nops = 0, x, y;
	struct lines A = { 0 }, B = { 0 };
	size_t *ai = NULL, *bi = NULL;
	int rc = -1;

	if (to_text(a, alen, &ta, &la, err) < 0 || to_text(b, blen, &tb, &lb, err) < 0 ||
	    split_lines(ta, la, &A, err) < 0 || split_lines(tb, lb, &B, err) < 0 ||
	    diff_ops(&A, &B, &ops, &nops, err) < 0)
		goto done;
	if (!(ai = malloc((nops + 1) * sizeof(*ai))) ||
	    !(bi = malloc((nops + 1) * sizeof(*bi)))) {
		err_nomem(err);
		goto done;
	}
	/* line numbers (0-based) in a and b at each op */
	for (x = y = 0; x < nops; x++) {
		ai[x] = y;
		y += ops[x] != '+';
	}
	for (x = y = 0; x < nops; x++) {
		bi[x] = y;
		y += ops[x] != '-';
	}
	if (buf_appendf(out, err, "--- a/%s\n+++ b/%s\n", name, name) < 0)
		goto done;
	x = 0;
	while (x < nops) {
		size_t first, last, s, e, an = 0, bn = 0, z;
		while (x < nops && ops[x] == ' ')
			x++;
		if (x >= nops)
			break;
		first = x;
		last = x;
		/* extend while the next change is within 2*context */
		for (z = x; z < nops; z++) {
			if (ops[z] != ' ')
				last = z;
			else if (z - last > 2 * DIFF_CONTEXT)
				break;
		}
		s = first > DIFF_CONTEXT ? first - DIFF_CONTEXT : 0;
		e = last + DIFF_CONTEXT + 1 < nops ? last + DIFF_CONTEXT + 1 : nops;
		for (z = s; z < e; z++) {
			an += ops[z] != '+';
			bn += ops[z] != '-';
		}
		if (buf_appendf(out, err, "@@ -%zu,%zu +%zu,%zu @@\n",
				an ? ai[s] + 1 : ai[s], an, bn ? bi[s] + 1 : bi[s], bn) < 0)
			goto done;
		for (z = s; z < e; z++) {
			int r = ops[z] == '+' ?
				put_line(out, '+', B.p[bi[z]], B.n[bi[z]], kind, err) :
				put_line(out, ops[z], A.p[ai[z]], A.n[ai[z]], kind, err);
			if (r < 0)
				goto done;
		}
		x = e;
	}
	rc = 0;
done:
	free(ai);
	free(bi);
	free(ops);
	free(A.p);
	free(A.n);
	free(B.p);
	free(B.n);
	if (ta)
		mem_wipe(ta, la);
	if (tb)
		mem_wipe(tb, lb);
	free(ta);
	free(tb);
	return rc;
}
