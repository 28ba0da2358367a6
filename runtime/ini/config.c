/*
 * config.c - the typed view of a connector INI file (see config.h).
 *
 * Keys supported (section and key names case-insensitive; booleans
 * TRUE/FALSE, YES/NO, 1/0, ON/OFF in any case; an empty value, N/A or N\A
 * means unset; "path" values may be quoted and get %VAR% expansion):
 *
 * [General]
 *   MSGINDirectory      path   default %PROGRAMDATA%\OpConxps\SAM\MSGIN
 *   OpConUser           text
 *   OpConUserPassword   secret (as written: the incumbent's encryption, or
 *                               mailshift's sealed / env: / file: forms)
 *   DeleteEmails        Match | All | None          default Match
 *   DownloadEmails      bool                        default True
 *   DownloadFolder      path
 *   ExitCodeForNoMatchingEmails  0..255             default 0
 *   UseLastRunDate      bool                        default True
 *   LastRunDate         "M/D/YYYY h:mm:ss AM" or ISO 8601, local time
 *   SendRejectionNotice, SendAcceptedNotice   bool (seen in the wild;
 *                               recorded, no documented effect)
 *   RunTimeout          seconds, 10..86400 (ours)   default 600: the whole
 *                               run stops cleanly after it
 * [Mail]
 *   User, Password (secret), Server
 *   EmailProtocol       IMAP | POP | POP3 | MSAL | GRAPH
 *   SecurityProtocol    SSL | SSL2 | TLS1 | TLS1_1 | TLS1_2 | TLS1_3 | NONE
 *                       (also TLS, TLS1.2, TLS12, Tls12 ... spellings)
 *   Port                1..65535 (default by protocol)
 *   SelfSignedCertificate bool                      default True (!)
 *   CAFile              path   (ours) trust these CAs
 *   AuthMethod          Basic | OAuth2 (XOAUTH2, OAuth)   (ours)
 *   StartTLS            bool   (ours) upgrade a plain connection
 *   Folder              text   (ours) default INBOX
 * [Audit]
 *   AuditAcceptLogFile (path), LogAccepts (bool), LogAcceptFormat,
 *   NotifyOnAccepts (bool), NotifyOnAcceptSubject, NotifyOnAcceptBody,
 *   NotifyOnAcceptTo; AuditRejectLogFile (path), LogRejects (bool),
 *   LogRejectFormat, NotifyOnRejects (bool), NotifyOnRejectSubject,
 *   NotifyOnRejectBody, NotifyOnRejectTo; RejectTimeframeMessage,
 *   RejectSenderMessage, RejectNoMatchingSubjectMessage,
 *   RejectNoAttachmentMessage; RejectEvent; LogOpConEvents (bool),
 *   OpConEventLogFile (path), LogOpConEventFormat.
 *   Notify*To unset means the connector's default, [[SENDER]].
 * [Tokens]
 *   NAME = value, any name; the last of a repeated name wins.
 * [Configuration1], [Configuration2], ... (numeric order, any case)
 *   SubjectLineMask, Event (= Event1), Event2, Event3 ... (numeric order),
 *   AllowedSenders (; list, ALL = unset), AllowedTimeFrame (HHMM-HHMM,
 *   checked unless it holds a [[TOKEN]]), ProcessBody (bool),
 *   QualifyingSubjectLine, AttachmentMask, ProcessAttachments (bool).
 * [OAuth] (ours)
 *   Authority           default https://login.microsoftonline.com
 *   TenantId (or Tenant), ClientId, ClientSecret (secret reference),
 *   CertificateFile (path), Flow ClientCredentials | DeviceCode,
 *   Scope, Mailbox (default [Mail] User),
 *   GraphEndpoint       default https://graph.microsoft.com
 *   CAFile (path), AssertionAlgorithm PS256 (default) | RS256
 * [Notify] (ours)
 *   Server, Port, TLS Implicit | StartTLS (default Implicit on 465,
 *   StartTLS otherwise), User, Password (secret), From,
 *   AuthMethod Basic | OAuth2, Transport SMTP (default) | Graph
 * [State] (ours)
 *   StateDatabase       path, default unset (connector: <ini>.state.db)
 *   MaxAttempts         1..1000, default 5: failed tries of one message
 *                       before it is quarantined
 */
#include "ini/config.h"
#include "ini/profile.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "ini/ini.h"
#include "base/suggest.h"
#include "base/utf8.h"
#include "base/mem.h"

struct ctx {
	struct config *cfg;
	const struct ini *ini;
	const char *path;
	struct ms_err *err;
	/* the section of the last get(): its name as passed (the same
	 * string for a run of keys of one section) and its number */
	const char *sect;
	long sect_index;
};

struct enum_name {
	const char *name;
	int value;
};

/* ---- shared helpers ---- */

/* (Known names are compared with ascii_casecmp(), base/utf8.h: the C
 * locale's strcasecmp inline -- no tool sets a locale -- cheaper than a
 * call where most names differ at their first letters.) */

int config_is_unset(const char *s)
{
	return !s || !*s || ((*s == 'N' || *s == 'n') &&
			     (ascii_casecmp(s, "N/A") == 0 ||
			      ascii_casecmp(s, "N\\A") == 0));
}

int config_parse_bool(const char *s, int *out)
{
	static const char *const yes[] = { "true", "yes", "1", "on", "y" };
	static const char *const no[] = { "false", "no", "0", "off", "n" };
	size_t i;

	if (!s)
		return -1;
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (ascii_casecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (ascii_casecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

static const char *env_lookup(const char *name)
{
	char up[256];
	const char *v;
	size_t i, n = strlen(name);

	if ((v = getenv(name)))
		return v;
	if (n >= sizeof(up))
		return NULL;
	for (i = 0; i <= n; i++)
		up[i] = (char)toupper((unsigned char)name[i]);
	if ((v = getenv(up)))
		return v;
	if (strcmp(up, "PROGRAMDATA") == 0)
		return "C:\\ProgramData";
	return NULL;
}

static int env_name_char(int c)
{
	return isalnum(c) || c == '_' || c == '(' || c == ')' || c == '-' || c == '.';
}

char *config_expand_env(const char *s)
{
	size_t cap, len = 0, i = 0;
	char *out;

	if (!s)
		return NULL;
	cap = strlen(s) + 1;
	out = malloc(cap);
	if (!out)
		return NULL;
	while (s[i]) {
		const char *add = s + i, *v = NULL;
		size_t alen = 1;

		if (s[i] == '%') {
			size_t j = i + 1;
			char name[256];

			while (s[j] && env_name_char((unsigned char)s[j]))
				j++;
			if (s[j] == '%' && j > i + 1 && j - i - 1 < sizeof(name)) {
				memcpy(name, s + i + 1, j - i - 1);
				name[j - i - 1] = '\0';
				v = env_lookup(name);
				if (v) {
					add = v;
					alen = strlen(v);
					i = j + 1;
				}
			}
		}
		if (!v)
			i++;
		if (len + alen + 1 > cap) {
			char *p;

			while (len + alen + 1 > cap)
				cap *= 2;
			p = realloc(out, cap);
			if (!p) {
				free(out);
				return NULL;
			}
			out = p;
		}
		memcpy(out + len, add, alen);
		len += alen;
	}
	out[len] = '\0';
	return out;
}

const char *config_protocol_name(enum mail_protocol p)
{
	switch (p) {
	case PROTO_IMAP: return "IMAP";
	case PROTO_POP: return "POP";
	case PROTO_MSAL: return "MSAL";
	case PROTO_GRAPH: return "GRAPH";
	default: return "unset";
	}
}

int config_default_port(enum mail_protocol p, int implicit_tls)
{
	switch (p) {
	case PROTO_IMAP: return implicit_tls ? 993 : 143;
	case PROTO_POP: return implicit_tls ? 995 : 110;
	case PROTO_MSAL: return 993;
	case PROTO_GRAPH: return 443;
	default: return 0;
	}
}

const char *config_notify_problem(const struct config *cfg)
{
	int graph = profile_notify_graph(cfg);
	int oauth = profile_oauth_complete(cfg);

	if (!cfg->notify_on_accepts && !cfg->notify_on_rejects)
		return NULL;
	if (!graph && !cfg->notify_server)
		return cfg->has_notify ? "[Notify] Server is not set" :
			"there is no [Notify] section (where the mails go out)";
	if ((graph || cfg->notify_auth == AUTH_OAUTH2) && !oauth)
		return graph ? "[Notify] Transport=Graph needs a complete [OAuth] section" :
			"[Notify] AuthMethod=OAuth2 needs a complete [OAuth] section";
	return NULL;
}

/* ---- known keys (for audit) ---- */

static const char *const general_keys[] = {
	"MSGINDirectory", "OpConUser", "OpConUserPassword", "DeleteEmails",
	"DownloadEmails", "DownloadFolder", "ExitCodeForNoMatchingEmails",
	"UseLastRunDate", "LastRunDate", "SendRejectionNotice",
	"SendAcceptedNotice", "RunTimeout", NULL
};
static const char *const mail_keys[] = {
	"User", "Password", "Server", "EmailProtocol", "SecurityProtocol", "Port",
	"SelfSignedCertificate", "CAFile", "AuthMethod", "StartTLS", "Folder", NULL
};
static const char *const audit_keys[] = {
	"AuditAcceptLogFile", "LogAccepts", "LogAcceptFormat", "NotifyOnAccepts",
	"NotifyOnAcceptSubject", "NotifyOnAcceptBody", "NotifyOnAcceptTo",
	"AuditRejectLogFile", "LogRejects", "LogRejectFormat", "NotifyOnRejects",
	"NotifyOnRejectSubject", "NotifyOnRejectBody", "NotifyOnRejectTo",
	"RejectTimeframeMessage", "RejectSenderMessage",
	"RejectNoMatchingSubjectMessage", "RejectNoAttachmentMessage",
	"RejectEvent", "LogOpConEvents", "OpConEventLogFile",
	"LogOpConEventFormat", NULL
};
static const char *const rule_keys[] = {
	"SubjectLineMask", "AllowedSenders", "AllowedTimeFrame", "ProcessBody",
	"QualifyingSubjectLine", "AttachmentMask", "ProcessAttachments", NULL
};
static const char *const oauth_keys[] = {
	"Authority", "TenantId", "Tenant", "ClientId", "ClientSecret",
	"CertificateFile", "Flow", "Scope", "Mailbox", "GraphEndpoint", "CAFile",
	"AssertionAlgorithm", NULL
};
static const char *const notify_keys[] = {
	"Server", "Port", "TLS", "User", "Password", "From", "AuthMethod",
	"Transport", NULL
};
static const char *const state_keys[] = { "StateDatabase", "MaxAttempts", NULL };

static int in_list(const char *const *list, const char *key)
{
	for (; *list; list++)
		if (ascii_casecmp(*list, key) == 0)
			return 1;
	return 0;
}

/* "Configuration12" -> 12; -1 if not a rule section. */
static long rule_number(const char *section)
{
	const char *p;
	long n = 0;

	if (strncasecmp(section, "Configuration", 13) != 0)
		return -1;
	p = section + 13;
	if (!*p || strlen(p) > 9)
		return -1;
	for (; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		n = n * 10 + (*p - '0');
	}
	return n;
}

/* "Event" -> 1, "Event1" -> 1, "Event7" -> 7; 0 if not an event key. */
static long event_number(const char *key)
{
	const char *p;
	long n = 0;

	if (strncasecmp(key, "Event", 5) != 0)
		return 0;
	p = key + 5;
	if (!*p)
		return 1;
	if (strlen(p) > 6)
		return 0;
	for (; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return 0;
		n = n * 10 + (*p - '0');
	}
	return n;
}

int config_known_key(const char *section, const char *key)
{
	if (!section || !key)
		return 0;
	if (ascii_casecmp(section, "General") == 0)
		return in_list(general_keys, key);
	if (ascii_casecmp(section, "Mail") == 0)
		return in_list(mail_keys, key);
	if (ascii_casecmp(section, "Audit") == 0)
		return in_list(audit_keys, key);
	if (ascii_casecmp(section, "Tokens") == 0)
		return 1;
	if (ascii_casecmp(section, "OAuth") == 0)
		return in_list(oauth_keys, key);
	if (ascii_casecmp(section, "Notify") == 0)
		return in_list(notify_keys, key);
	if (ascii_casecmp(section, "State") == 0)
		return in_list(state_keys, key);
	if (rule_number(section) >= 0)
		return in_list(rule_keys, key) || event_number(key) > 0;
	return 0;
}

int config_known_section(const char *section)
{
	static const char *const names[] = {
		"General", "Mail", "Audit", "Tokens", "OAuth", "Notify", "State", NULL
	};

	return section && (in_list(names, section) || rule_number(section) >= 0);
}

/*
 * suggest_consider_list(), skipping the names whose length alone puts
 * them further from the mistyped one than suggest_result() accepts (the
 * edit distance is at least the difference in length): the same answer
 * without the distance of every known key for every unknown one.
 */
static void consider_list(struct suggest *s, const char *const *names)
{
	size_t n = strlen(s->name), limit = n / 3;

	if (limit < 1)
		limit = 1;
	if (limit > 3)
		limit = 3;
	for (; *names; names++) {
		size_t m = strlen(*names);

		if ((m > n ? m - n : n - m) <= limit)
			suggest_consider(s, *names);
	}
}

const char *config_suggest(const char *section, const char *key)
{
	static const char *const sections[] = {
		"General", "Mail", "Audit", "Tokens", "OAuth", "Notify", "State",
		"Configuration1", NULL
	};
	static const char *const events[] = { "Event", "Event2", NULL };
	struct suggest s;

	if (!section)
		return NULL;
	suggest_init(&s, key ? key : section);
	if (!key)
		consider_list(&s, sections);
	else if (ascii_casecmp(section, "General") == 0)
		consider_list(&s, general_keys);
	else if (ascii_casecmp(section, "Mail") == 0)
		consider_list(&s, mail_keys);
	else if (ascii_casecmp(section, "Audit") == 0)
		consider_list(&s, audit_keys);
	else if (ascii_casecmp(section, "OAuth") == 0)
		consider_list(&s, oauth_keys);
	else if (ascii_casecmp(section, "Notify") == 0)
		consider_list(&s, notify_keys);
	else if (ascii_casecmp(section, "State") == 0)
		consider_list(&s, state_keys);
	else if (rule_number(section) >= 0) {
		consider_list(&s, rule_keys);
		consider_list(&s, events);
	}
	return suggest_result(&s);
}

void config_unknown_key_text(const struct config_unknown_key *u, char *out,
			     size_t outsz)
{
	if (!u->key)
		snprintf(out, outsz, "[%s]: unknown section, ignored%s%s%s", u->section,
			 u->suggestion ? " (did you mean [" : "",
			 u->suggestion ? u->suggestion : "", u->suggestion ? "]?)" : "");
	else
		snprintf(out, outsz, "[%s] %s: unknown key, ignored%s%s%s", u->section,
			 u->key, u->suggestion ? " (did you mean " : "",
			 u->suggestion ? u->suggestion : "", u->suggestion ? "?)" : "");
}

struct unknown_ctx {
	struct config *cfg;
	const char *section;
	struct ms_err *err;
};

static int add_unknown(struct config *cfg, const char *section, const char *key,
		       int line, struct ms_err *err)
{
	struct config_unknown_key *u;

	if (cfg->n_unknown_keys >= 1000)       /* a bound on a hostile file */
		return 0;
	u = realloc(cfg->unknown_keys, (cfg->n_unknown_keys + 1) * sizeof(*u));
	if (!u)
		return err_nomem(err);
	cfg->unknown_keys = u;
	u += cfg->n_unknown_keys;
	memset(u, 0, sizeof(*u));
	u->line = line;
	u->section = strdup(section);
	u->key = key ? strdup(key) : NULL;
	u->suggestion = config_suggest(section, key);
	cfg->n_unknown_keys++;
	if (!u->section || (key && !u->key))
		return err_nomem(err);
	return 0;
}

static int unknown_key_cb(const char *key, const char *value, int line, void *arg)
{
	struct unknown_ctx *u = arg;

	(void)value;
	if (!key[0] || config_known_key(u->section, key))
		return 0;
	return add_unknown(u->cfg, u->section, key, line, u->err);
}

/* Every key and section neither the incumbent's nor ours. */
static int find_unknown_keys(struct config *cfg, const struct ini *ini,
			     struct ms_err *err)
{
	size_t i, n = ini_section_count(ini);

	for (i = 0; i < n; i++) {
		const char *name = ini_section_name(ini, i);
		struct unknown_ctx u = { cfg, name, err };

		if (!name || !*name)           /* keys before any header */
			continue;
		if (!config_known_section(name)) {
			if (add_unknown(cfg, name, NULL, ini_section_line(ini, i), err))
				return -1;
			continue;
		}
		if (ini_foreach_key(ini, name, unknown_key_cb, &u))
			return -1;
	}
	return 0;
}

/* ---- typed getters ---- */

static const char *get(struct ctx *c, const char *sect, const char *key)
{
	const char *v;

	if (sect != c->sect) {
		c->sect = sect;
		c->sect_index = ini_section_index(c->ini, sect);
	}
	v = ini_get_in(c->ini, c->sect_index, key);

	return config_is_unset(v) ? NULL : v;
}

static int line_of(struct ctx *c, const char *sect, const char *key)
{
	return ini_get_line(c->ini, sect, key);
}

static int get_str(struct ctx *c, const char *sect, const char *key, char **out)
{
	const char *v = get(c, sect, key);

	if (!v)
		return 0;
	free(*out);
	*out = strdup(v);
	return *out ? 0 : err_nomem(c->err);
}

/* Like get_str, trying alternative key names (the later in the list win
 * only when the earlier are absent). */
static int get_str2(struct ctx *c, const char *sect, const char *k1,
		    const char *k2, char **out)
{
	if (get(c, sect, k1))
		return get_str(c, sect, k1, out);
	return get_str(c, sect, k2, out);
}

static int get_path(struct ctx *c, const char *sect, const char *key, char **out)
{
	const char *v = get(c, sect, key);
	char *uq;

	if (!v)
		return 0;
	uq = ini_unquote(v);
	if (!uq)
		return err_nomem(c->err);
	free(*out);
	*out = config_expand_env(uq);
	free(uq);
	return *out ? 0 : err_nomem(c->err);
}

static int get_bool(struct ctx *c, const char *sect, const char *key, int *out)
{
	const char *v = get(c, sect, key);

	if (!v)
		return 0;
	if (config_parse_bool(v, out) < 0) {
		int line = line_of(c, sect, key);

		return err_set_line(c->err, MS_ERR_CONFIG, line,
				    "%s:%d: [%s] %s: invalid boolean '%s' (expected TRUE, FALSE, YES, NO, 1 or 0)",
				    c->path, line, sect, key, v);
	}
	return 0;
}

static int get_int(struct ctx *c, const char *sect, const char *key, int min,
		   int max, int *out)
{
	const char *v = get(c, sect, key);
	char *end;
	long n;
	int line;

	if (!v)
		return 0;
	n = strtol(v, &end, 10);
	if (end != v && !*end && n >= min && n <= max && isdigit((unsigned char)v[v[0] == '-']) ) {
		*out = (int)n;
		return 0;
	}
	line = line_of(c, sect, key);
	return err_set_line(c->err, MS_ERR_CONFIG, line,
			    "%s:%d: [%s] %s: invalid number '%s' (expected %d to %d)",
			    c->path, line, sect, key, v, min, max);
}

static int get_enum(struct ctx *c, const char *sect, const char *key,
		    const struct enum_name *names, const char *expected, int *out)
{
	const char *v = get(c, sect, key);
	int line;

	if (!v)
		return 0;
	for (; names->name; names++) {
		if (ascii_casecmp(names->name, v) == 0) {
			*out = names->value;
			return 0;
		}
	}
	line = line_of(c, sect, key);
	return err_set_line(c->err, MS_ERR_CONFIG, line,
			    "%s:%d: [%s] %s: unknown value '%s' (expected %s)",
			    c->path, line, sect, key, v, expected);
}

static const struct enum_name delete_names[] = {
	{ "Match", DELETE_MATCH }, { "All", DELETE_ALL }, { "None", DELETE_NONE },
	{ NULL, 0 }
};
static const struct enum_name proto_names[] = {
	{ "IMAP", PROTO_IMAP }, { "IMAP4", PROTO_IMAP }, { "POP", PROTO_POP },
	{ "POP3", PROTO_POP }, { "MSAL", PROTO_MSAL }, { "GRAPH", PROTO_GRAPH },
	{ NULL, 0 }
};
static const struct enum_name tls_names[] = {
	{ "SSL", TLSL_SSL }, { "SSL2", TLSL_SSL2 }, { "SSL3", TLSL_SSL },
	{ "TLS", TLSL_TLS1 }, { "TLS1", TLSL_TLS1 }, { "TLS1.0", TLSL_TLS1 },
	{ "TLS1_0", TLSL_TLS1 }, { "TLS10", TLSL_TLS1 }, { "TLSv1", TLSL_TLS1 },
	{ "TLS1_1", TLSL_TLS1_1 }, { "TLS1.1", TLSL_TLS1_1 }, { "TLS11", TLSL_TLS1_1 },
	{ "TLSv1.1", TLSL_TLS1_1 },
	{ "TLS1_2", TLSL_TLS1_2 }, { "TLS1.2", TLSL_TLS1_2 }, { "TLS12", TLSL_TLS1_2 },
	{ "TLSv1.2", TLSL_TLS1_2 },
	{ "TLS1_3", TLSL_TLS1_3 }, { "TLS1.3", TLSL_TLS1_3 }, { "TLS13", TLSL_TLS1_3 },
	{ "TLSv1.3", TLSL_TLS1_3 },
	{ "NONE", TLSL_NONE }, { NULL, 0 }
};
static const struct enum_name auth_names[] = {
	{ "Basic", AUTH_BASIC }, { "Password", AUTH_BASIC }, { "Login", AUTH_BASIC },
	{ "OAuth2", AUTH_OAUTH2 }, { "OAuth", AUTH_OAUTH2 }, { "XOAUTH2", AUTH_OAUTH2 },
	{ NULL, 0 }
};
static const struct enum_name flow_names[] = {
	{ "ClientCredentials", FLOW_CLIENT_CREDENTIALS },
	{ "client_credentials", FLOW_CLIENT_CREDENTIALS },
	{ "DeviceCode", FLOW_DEVICE_CODE }, { "device_code", FLOW_DEVICE_CODE },
	{ NULL, 0 }
};
static const struct enum_name alg_names[] = {
	{ "PS256", 1 }, { "RS256", 2 }, { NULL, 0 }
};
static const struct enum_name tlsmode_names[] = {
	{ "Implicit", 1 }, { "SSL", 1 }, { "TLS", 1 }, { "StartTLS", 0 },
	{ NULL, 0 }
};
static const struct enum_name transport_names[] = {
	{ "SMTP", 1 }, { "Graph", 2 }, { NULL, 0 }
};

/* ---- sections ---- */

static int load_general(struct ctx *c)
{
	struct config *cfg = c->cfg;
	const char *S = "General";
	int d = cfg->delete_mode;

	cfg->msgin_dir = config_expand_env("%PROGRAMDATA%\\OpConxps\\SAM\\MSGIN");
	if (!cfg->msgin_dir)
		return err_nomem(c->err);
	if (get_path(c, S, "MSGINDirectory", &cfg->msgin_dir) ||
	    get_str(c, S, "OpConUser", &cfg->opcon_user) ||
	    get_str(c, S, "OpConUserPassword", &cfg->opcon_password) ||
	    get_enum(c, S, "DeleteEmails", delete_names, "Match, All or None", &d) ||
	    get_bool(c, S, "DownloadEmails", &cfg->download_emails) ||
	    get_path(c, S, "DownloadFolder", &cfg->download_folder) ||
	    get_int(c, S, "ExitCodeForNoMatchingEmails", 0, 255,
		    &cfg->exit_code_no_match) ||
	    get_bool(c, S, "UseLastRunDate", &cfg->use_last_run_date) ||
	    get_str(c, S, "LastRunDate", &cfg->last_run_date) ||
	    get_bool(c, S, "SendRejectionNotice", &cfg->send_rejection_notice) ||
	    get_bool(c, S, "SendAcceptedNotice", &cfg->send_accepted_notice) ||
	    get_int(c, S, "RunTimeout", 10, 86400, &cfg->run_timeout))
		return -1;
	cfg->delete_mode = (enum delete_mode)d;
	if (cfg->last_run_date &&
	    config_parse_run_date(cfg->last_run_date, &cfg->last_run) < 0) {
		int line = line_of(c, S, "LastRunDate");

		return err_set_line(c->err, MS_ERR_CONFIG, line,
				    "%s:%d: [General] LastRunDate: cannot parse '%s' (expected M/D/YYYY h:mm:ss AM or ISO 8601)",
				    c->path, line, cfg->last_run_date);
	}
	return 0;
}

static int load_mail(struct ctx *c)
{
	struct config *cfg = c->cfg;
	const char *S = "Mail";
	int p = 0, t = 0, a = 0;

	if (get_str(c, S, "User", &cfg->user) ||
	    get_str(c, S, "Password", &cfg->password) ||
	    get_str(c, S, "Server", &cfg->server) ||
	    get_enum(c, S, "EmailProtocol", proto_names,
		     "IMAP, POP, POP3, MSAL, GRAPH", &p) ||
	    get_enum(c, S, "SecurityProtocol", tls_names,
		     "SSL, SSL2, TLS1, TLS1_1, TLS1_2, TLS1_3, NONE", &t) ||
	    get_int(c, S, "Port", 1, 65535, &cfg->port) ||
	    get_path(c, S, "CAFile", &cfg->ca_file) ||
	    get_enum(c, S, "AuthMethod", auth_names, "Basic or OAuth2", &a) ||
	    get_bool(c, S, "StartTLS", &cfg->starttls) ||
	    get_str(c, S, "Folder", &cfg->folder))
		return -1;
	cfg->protocol = (enum mail_protocol)p;
	cfg->tls_min = (enum tls_level)t;
	cfg->auth = (enum auth_method)a;
	cfg->starttls_set = get(c, S, "StartTLS") != NULL;
	if (get(c, S, "SelfSignedCertificate")) {
		if (get_bool(c, S, "SelfSignedCertificate", &cfg->self_signed))
			return -1;
		cfg->self_signed_explicit = 1;
	}
	if (!cfg->folder && !(cfg->folder = strdup("INBOX")))
		return err_nomem(c->err);
	return 0;
}

static int load_audit(struct ctx *c)
{
	struct config *cfg = c->cfg;
	const char *S = "Audit";

	return get_path(c, S, "AuditAcceptLogFile", &cfg->accept_log) ||
	       get_bool(c, S, "LogAccepts", &cfg->log_accepts) ||
	       get_str(c, S, "LogAcceptFormat", &cfg->accept_format) ||
	       get_bool(c, S, "NotifyOnAccepts", &cfg->notify_on_accepts) ||
	       get_str(c, S, "NotifyOnAcceptSubject", &cfg->notify_accept_subject) ||
	       get_str(c, S, "NotifyOnAcceptBody", &cfg->notify_accept_body) ||
	       get_str(c, S, "NotifyOnAcceptTo", &cfg->notify_accept_to) ||
	       get_path(c, S, "AuditRejectLogFile", &cfg->reject_log) ||
	       get_bool(c, S, "LogRejects", &cfg->log_rejects) ||
	       get_str(c, S, "LogRejectFormat", &cfg->reject_format) ||
	       get_bool(c, S, "NotifyOnRejects", &cfg->notify_on_rejects) ||
	       get_str(c, S, "NotifyOnRejectSubject", &cfg->notify_reject_subject) ||
	       get_str(c, S, "NotifyOnRejectBody", &cfg->notify_reject_body) ||
	       get_str(c, S, "NotifyOnRejectTo", &cfg->notify_reject_to) ||
	       get_str(c, S, "RejectTimeframeMessage", &cfg->reject_timeframe_msg) ||
	       get_str(c, S, "RejectSenderMessage", &cfg->reject_sender_msg) ||
	       get_str(c, S, "RejectNoMatchingSubjectMessage",
		       &cfg->reject_no_subject_msg) ||
	       get_str(c, S, "RejectNoAttachmentMessage",
		       &cfg->reject_no_attachment_msg) ||
	       get_str(c, S, "RejectEvent", &cfg->reject_event) ||
	       get_bool(c, S, "LogOpConEvents", &cfg->log_opcon_events) ||
	       get_path(c, S, "OpConEventLogFile", &cfg->opcon_event_log) ||
	       get_str(c, S, "LogOpConEventFormat", &cfg->opcon_event_format) ? -1 : 0;
}

static int token_cb(const char *key, const char *value, int line, void *arg)
{
	struct ctx *c = arg;
	struct config *cfg = c->cfg;
	struct config_token *t;
	char *v;
	size_t i;

	if (!key[0])
		return 0;
	v = strdup(value);
	if (!v)
		return err_nomem(c->err);
	for (i = 0; i < cfg->n_tokens; i++) {
		if (strcasecmp(cfg->tokens[i].name, key) == 0) {
			free(cfg->tokens[i].value);
			cfg->tokens[i].value = v;
			return 0;
		}
	}
	t = realloc(cfg->tokens, (cfg->n_tokens + 1) * sizeof(*t));
	if (!t) {
		free(v);
		return err_nomem(c->err);
	}
	cfg->tokens = t;
	t[cfg->n_tokens].value = v;
	t[cfg->n_tokens].name = strdup(key);
	if (!t[cfg->n_tokens].name) {
		free(v);
		return err_nomem(c->err);
	}
	cfg->n_tokens++;
	return 0;
}

struct event_ref {
	long n;
	int line;
	const char *key;
	const char *value;
};

struct rule_ctx {
	struct ctx *c;
	const char *section;
	struct event_ref *ev;
	size_t n_ev, cap_ev;
};

static int event_cb(const char *key, const char *value, int line, void *arg)
{
	struct rule_ctx *r = arg;
	long n = event_number(key);
	struct event_ref *e;
	size_t i;

	if (n <= 0 || config_is_unset(value))
		return 0;
	for (i = 0; i < r->n_ev; i++) {
		if (r->ev[i].n != n)
			continue;
		/* Event and Event1 are the same slot; a repeated key: last wins */
		if (strcasecmp(r->ev[i].key, key) != 0)
			return err_set_line(r->c->err, MS_ERR_CONFIG, line,
					    "%s:%d: [%s] %s: both Event and Event1 are set (line %d); keep one",
					    r->c->path, line, r->section, key,
					    r->ev[i].line);
		r->ev[i].value = value;
		r->ev[i].line = line;
		return 0;
	}
	if (MEM_GROW(r->ev, r->cap_ev, r->n_ev + 1, r->c->err))
		return -1;
	e = r->ev;
	e[r->n_ev].n = n;
	e[r->n_ev].line = line;
	e[r->n_ev].key = key;
	e[r->n_ev].value = value;
	r->n_ev++;
	return 0;
}

static int event_cmp(const void *a, const void *b)
{
	const struct event_ref *x = a, *y = b;

	return x->n < y->n ? -1 : x->n > y->n;
}

/* HHMM-HHMM, hours 00..24, minutes 00..59, at most 2400. */
static int valid_time_frame(const char *s)
{
	int i, v[2];

	if (strlen(s) != 9 || s[4] != '-')
		return 0;
	for (i = 0; i < 9; i++)
		if (i != 4 && !isdigit((unsigned char)s[i]))
			return 0;
	v[0] = atoi(s);
	v[1] = atoi(s + 5);
	for (i = 0; i < 2; i++)
		if (v[i] % 100 > 59 || v[i] > 2400)
			return 0;
	return 1;
}

static int load_rule(struct ctx *c, struct config_rule *rule, const char *section,
		     int line)
{
	struct rule_ctx r = { c, section, NULL, 0, 0 };
	const char *S = section;
	size_t i;
	int rc = -1;

	rule->section = strdup(section);
	rule->line = line;
	if (!rule->section) {
		err_nomem(c->err);
		goto out;
	}
	if (get_str(c, S, "SubjectLineMask", &rule->subject_mask) ||
	    get_str(c, S, "AllowedSenders", &rule->allowed_senders) ||
	    get_str(c, S, "AllowedTimeFrame", &rule->time_frame) ||
	    get_bool(c, S, "ProcessBody", &rule->process_body) ||
	    get_str(c, S, "QualifyingSubjectLine", &rule->qualifying_subject) ||
	    get_str(c, S, "AttachmentMask", &rule->attachment_mask) ||
	    get_bool(c, S, "ProcessAttachments", &rule->process_attachments))
		goto out;
	if (rule->allowed_senders && strcasecmp(rule->allowed_senders, "ALL") == 0) {
		free(rule->allowed_senders);
		rule->allowed_senders = NULL;
	}
	if (rule->time_frame && !strstr(rule->time_frame, "[[") &&
	    !valid_time_frame(rule->time_frame)) {
		int l = line_of(c, S, "AllowedTimeFrame");

		err_set_line(c->err, MS_ERR_CONFIG, l,
			     "%s:%d: [%s] AllowedTimeFrame: invalid value '%s' (expected HHMM-HHMM, e.g. 0800-1700)",
			     c->path, l, S, rule->time_frame);
		goto out;
	}
	if (ini_foreach_key(c->ini, section, event_cb, &r))
		goto out;
	if (r.n_ev) {
		qsort(r.ev, r.n_ev, sizeof(*r.ev), event_cmp);
		rule->events = calloc(r.n_ev, sizeof(*rule->events));
		if (!rule->events) {
			err_nomem(c->err);
			goto out;
		}
	}
	for (i = 0; i < r.n_ev; i++) {
		rule->events[i] = strdup(r.ev[i].value);
		if (!rule->events[i]) {
			err_nomem(c->err);
			goto out;
		}
		rule->n_events++;
	}
	rc = 0;
out:
	free(r.ev);
	return rc;
}

struct rule_ref {
	long n;
	int line;
	const char *name;
};

static int rule_ref_cmp(const void *a, const void *b)
{
	const struct rule_ref *x = a, *y = b;

	if (x->n != y->n)
		return x->n < y->n ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

static int load_rules(struct ctx *c)
{
	struct config *cfg = c->cfg;
	struct rule_ref *refs;
	size_t i, n = 0, ns = ini_section_count(c->ini);
	int rc = -1;

	refs = calloc(ns ? ns : 1, sizeof(*refs));
	if (!refs)
		return err_nomem(c->err);
	for (i = 0; i < ns; i++) {
		const char *name = ini_section_name(c->ini, i);
		long num = name ? rule_number(name) : -1;

		if (num < 0)
			continue;
		refs[n].n = num;
		refs[n].line = ini_section_line(c->ini, i);
		refs[n].name = name;
		n++;
	}
	qsort(refs, n, sizeof(*refs), rule_ref_cmp);
	for (i = 1; i < n; i++) {
		if (refs[i].n == refs[i - 1].n) {
			err_set_line(c->err, MS_ERR_CONFIG, refs[i].line,
				     "%s:%d: [%s]: same rule number as [%s] (line %d)",
				     c->path, refs[i].line, refs[i].name,
				     refs[i - 1].name, refs[i - 1].line);
			goto out;
		}
	}
	if (n) {
		cfg->rules = calloc(n, sizeof(*cfg->rules));
		if (!cfg->rules) {
			err_nomem(c->err);
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		cfg->n_rules++;
		if (load_rule(c, &cfg->rules[i], refs[i].name, refs[i].line) < 0) {
			/* one broken rule never stops the others: recorded,
			 * and rules_compile() leaves it out */
			if (c->err->code != MS_ERR_CONFIG)
				goto out;
			if (!(cfg->rules[i].error = strdup(c->err->msg))) {
				err_nomem(c->err);
				goto out;
			}
			err_clear(c->err);
		}
	}
	rc = 0;
out:
	free(refs);
	return rc;
}

static int load_oauth(struct ctx *c)
{
	struct config *cfg = c->cfg;
	const char *S = "OAuth";
	int f = 0, alg = 1;

	cfg->has_oauth = ini_has_section(c->ini, S);
	if (get_str(c, S, "Authority", &cfg->oauth_authority) ||
	    get_str2(c, S, "TenantId", "Tenant", &cfg->oauth_tenant) ||
	    get_str(c, S, "ClientId", &cfg->oauth_client_id) ||
	    get_str(c, S, "ClientSecret", &cfg->oauth_client_secret) ||
	    get_path(c, S, "CertificateFile", &cfg->oauth_cert_file) ||
	    get_enum(c, S, "Flow", flow_names, "ClientCredentials or DeviceCode", &f) ||
	    get_str(c, S, "Scope", &cfg->oauth_scope) ||
	    get_str(c, S, "Mailbox", &cfg->oauth_mailbox) ||
	    get_str(c, S, "GraphEndpoint", &cfg->graph_endpoint) ||
	    get_path(c, S, "CAFile", &cfg->oauth_ca_file) ||
	    get_enum(c, S, "AssertionAlgorithm", alg_names, "PS256 or RS256", &alg))
		return -1;
	cfg->oauth_flow = (enum oauth_flow)f;
	if (!cfg->oauth_authority &&
	    !(cfg->oauth_authority = strdup(OAUTH_DEFAULT_AUTHORITY)))
		return err_nomem(c->err);
	if (!cfg->graph_endpoint &&
	    !(cfg->graph_endpoint = strdup(GRAPH_DEFAULT_ENDPOINT)))
		return err_nomem(c->err);
	if (!cfg->oauth_mailbox && cfg->user &&
	    !(cfg->oauth_mailbox = strdup(cfg->user)))
		return err_nomem(c->err);
	cfg->oauth_assertion_alg = strdup(alg == 2 ? "RS256" : "PS256");
	return cfg->oauth_assertion_alg ? 0 : err_nomem(c->err);
}

static int load_notify(struct ctx *c)
{
	struct config *cfg = c->cfg;
	const char *S = "Notify";
	int tls = -1, a = 0, tr = 1;

	cfg->has_notify = ini_has_section(c->ini, S);
	if (get_str(c, S, "Server", &cfg->notify_server) ||
	    get_int(c, S, "Port", 1, 65535, &cfg->notify_port) ||
	    get_enum(c, S, "TLS", tlsmode_names, "Implicit or StartTLS", &tls) ||
	    get_str(c, S, "User", &cfg->notify_user) ||
	    get_str(c, S, "Password", &cfg->notify_password) ||
	    get_str(c, S, "From", &cfg->notify_from) ||
	    get_enum(c, S, "AuthMethod", auth_names, "Basic or OAuth2", &a) ||
	    get_enum(c, S, "Transport", transport_names, "SMTP or Graph", &tr))
		return -1;
	cfg->notify_implicit_tls = tls >= 0 ? tls : cfg->notify_port == 465;
	cfg->notify_auth = (enum auth_method)a;
	cfg->notify_transport = strdup(tr == 2 ? "graph" : "smtp");
	return cfg->notify_transport ? 0 : err_nomem(c->err);
}

int config_from_ini(struct config *cfg, const struct ini *ini, const char *path,
		    struct ms_err *err)
{
	struct ctx c;

	memset(cfg, 0, sizeof(*cfg));
	cfg->delete_mode = DELETE_MATCH;
	cfg->download_emails = 1;
	cfg->use_last_run_date = 1;
	cfg->run_timeout = 600;
	cfg->max_attempts = 5;
	cfg->self_signed = 1;
	if (!path)
		path = ini_name(ini);
	c.cfg = cfg;
	c.ini = ini;
	c.path = path;
	c.err = err;
	c.sect = NULL;
	c.sect_index = -1;
	cfg->path = strdup(path);
	if (!cfg->path) {
		err_nomem(err);
		goto fail;
	}
	if (load_general(&c) < 0 || load_mail(&c) < 0 || load_audit(&c) < 0 ||
	    ini_foreach_key(ini, "Tokens", token_cb, &c) != 0 ||
	    load_rules(&c) < 0 || load_oauth(&c) < 0 || load_notify(&c) < 0 ||
	    get_path(&c, "State", "StateDatabase", &cfg->state_db) < 0 ||
	    get_int(&c, "State", "MaxAttempts", 1, 1000, &cfg->max_attempts) < 0 ||
	    find_unknown_keys(cfg, ini, err) < 0)
		goto fail;
	return 0;
fail:
	config_release(cfg);
	return -1;
}

int config_load(struct config *cfg, const char *path, struct ms_err *err)
{
	struct ini *ini = NULL;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	if (ini_load(&ini, path, err) < 0 || ini_check(ini, err) < 0) {
		ini_free(ini);
		return -1;
	}
	rc = config_from_ini(cfg, ini, path, err);
	ini_free(ini);
	return rc;
}

void config_release(struct config *cfg)
{
	size_t i, j;

	if (!cfg)
		return;
	free(cfg->path);
	free(cfg->msgin_dir);
	free(cfg->opcon_user);
	mem_wipe_free(cfg->opcon_password);
	free(cfg->download_folder);
	free(cfg->last_run_date);
	free(cfg->user);
	mem_wipe_free(cfg->password);
	free(cfg->server);
	free(cfg->ca_file);
	free(cfg->folder);
	free(cfg->accept_log);
	free(cfg->accept_format);
	free(cfg->reject_log);
	free(cfg->reject_format);
	free(cfg->notify_accept_subject);
	free(cfg->notify_accept_body);
	free(cfg->notify_accept_to);
	free(cfg->notify_reject_subject);
	free(cfg->notify_reject_body);
	free(cfg->notify_reject_to);
	free(cfg->reject_timeframe_msg);
	free(cfg->reject_sender_msg);
	free(cfg->reject_no_subject_msg);
	free(cfg->reject_no_attachment_msg);
	free(cfg->reject_event);
	free(cfg->opcon_event_log);
	free(cfg->opcon_event_format);
	for (i = 0; i < cfg->n_tokens; i++) {
		free(cfg->tokens[i].name);
		free(cfg->tokens[i].value);
	}
	free(cfg->tokens);
	for (i = 0; i < cfg->n_rules; i++) {
		struct config_rule *r = &cfg->rules[i];

		free(r->section);
		free(r->subject_mask);
		for (j = 0; j < r->n_events; j++)
			free(r->events[j]);
		free(r->events);
		free(r->allowed_senders);
		free(r->time_frame);
		free(r->qualifying_subject);
		free(r->attachment_mask);
		free(r->error);
	}
	free(cfg->rules);
	for (i = 0; i < cfg->n_unknown_keys; i++) {
		free(cfg->unknown_keys[i].section);
		free(cfg->unknown_keys[i].key);
	}
	free(cfg->unknown_keys);
	free(cfg->oauth_authority);
	free(cfg->oauth_tenant);
	free(cfg->oauth_client_id);
	mem_wipe_free(cfg->oauth_client_secret);
	free(cfg->oauth_cert_file);
	free(cfg->oauth_scope);
	free(cfg->oauth_mailbox);
	free(cfg->graph_endpoint);
	free(cfg->oauth_ca_file);
	free(cfg->oauth_assertion_alg);
	free(cfg->notify_server);
	free(cfg->notify_user);
	mem_wipe_free(cfg->notify_password);
	free(cfg->notify_from);
	free(cfg->notify_transport);
	free(cfg->state_db);
	memset(cfg, 0, sizeof(*cfg));
}
