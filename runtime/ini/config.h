/*
 * config.h - the typed view of a connector INI file (the incumbent's keys
 * plus mailshift's [OAuth], [Notify] and [State] additions).
 *
 * config_load() reads an INI through ini.h and fills a struct config.
 * Every string in it is owned by the struct (UTF-8, NUL-terminated) and
 * freed by config_release(); NULL means "unset" (absent, empty, N/A or N\A).
 * Secrets (passwords, client secret) are stored as written in the file
 * (possibly sealed, "env:NAME", "file:PATH" or the incumbent's opaque
 * encryption); resolving them is secret.h's job.
 */
#ifndef MS_CONFIG_H
#define MS_CONFIG_H

#include <stddef.h>
#include <time.h>
#include "base/err.h"
#include "transport/protocol.h"   /* enum mail_protocol, enum tls_level */
#include "auth/oauth.h"           /* enum oauth_flow */

struct ini;

enum delete_mode { DELETE_MATCH = 0, DELETE_ALL, DELETE_NONE };
enum auth_method { AUTH_UNSET = 0, AUTH_BASIC, AUTH_OAUTH2 };

struct config_token {          /* [Tokens] NAME=value */
	char *name;
	char *value;
};

struct config_rule {           /* one [ConfigurationN] section */
	char *section;         /* e.g. "Configuration1" */
	int line;              /* line of the section header */
	char *subject_mask;    /* SubjectLineMask, raw (tokens not substituted) */
	char **events;         /* Event, Event2, Event3 ... in numeric order */
	size_t n_events;
	char *allowed_senders; /* raw; NULL means ALL */
	char *time_frame;      /* raw "HHMM-HHMM"; NULL means all day */
	int process_body;      /* ProcessBody YES/NO */
	char *qualifying_subject;
	char *attachment_mask;
	int process_attachments;
	char *error;           /* NULL, or why this rule cannot be used
				* ("FILE:LINE: [ConfigurationN] Key: ..."):
				* the rest of the file still loads and
				* rules_compile() skips it */
};

struct config_unknown_key {   /* a key neither the incumbent's nor ours */
	char *section;         /* as written; "[Mial]" whole for an unknown
				* section (key NULL then) */
	char *key;
	int line;
	const char *suggestion;/* static: the closest known name, or NULL */
};

struct config {
	char *path;            /* file it came from */

	/* [General] */
	char *msgin_dir;       /* %VAR% expanded */
	char *opcon_user;
	char *opcon_password;  /* secret, as written */
	enum delete_mode delete_mode;
	int download_emails;   /* default 1 */
	char *download_folder; /* %VAR% expanded */
	int exit_code_no_match;/* default 0 */
	int use_last_run_date; /* default 1 */
	char *last_run_date;   /* raw, e.g. "1/1/2017 12:30:00 AM" */
	time_t last_run;       /* parsed, 0 if unset */
	int send_rejection_notice; /* seen in the wild; recorded only */
	int send_accepted_notice;
	int run_timeout;       /* RunTimeout (ours), seconds, default 600 */

	/* [Mail] */
	char *user;
	char *password;        /* secret, as written */
	char *server;
	enum mail_protocol protocol;
	enum tls_level tls_min;
	int port;              /* 0 = protocol default */
	int self_signed;       /* SelfSignedCertificate: incumbent default 1 */
	int self_signed_explicit;
	char *ca_file;         /* CAFile (ours) */
	enum auth_method auth;  /* AuthMethod (ours) */
	int starttls;          /* StartTLS=True (ours): upgrade a plain port */
	int starttls_set;      /* StartTLS written (False = implicit TLS);
				* see mailbox_tls_choose() */
	char *folder;          /* Folder (ours), default INBOX */

	/* [Audit] */
	char *accept_log, *accept_format;
	int log_accepts;
	char *reject_log, *reject_format;
	int log_rejects;
	int notify_on_accepts, notify_on_rejects;
	char *notify_accept_subject, *notify_accept_body, *notify_accept_to;
	char *notify_reject_subject, *notify_reject_body, *notify_reject_to;
	char *reject_timeframe_msg, *reject_sender_msg, *reject_no_subject_msg,
	     *reject_no_attachment_msg;
	char *reject_event;
	int log_opcon_events;
	char *opcon_event_log, *opcon_event_format;

	/* [Tokens] */
	struct config_token *tokens;
	size_t n_tokens;

	/* [ConfigurationN], in numeric order */
	struct config_rule *rules;
	size_t n_rules;

	/* [OAuth] (ours) */
	int has_oauth;
	char *oauth_authority;   /* default https://login.microsoftonline.com */
	char *oauth_tenant;
	char *oauth_client_id;
	char *oauth_client_secret;  /* secret reference, as written */
	char *oauth_cert_file;
	enum oauth_flow oauth_flow;
	char *oauth_scope;       /* NULL = chosen from protocol */
	char *oauth_mailbox;     /* default [Mail] User */
	char *graph_endpoint;    /* default https://graph.microsoft.com */
	char *oauth_ca_file;
	char *oauth_assertion_alg; /* PS256 (default) or RS256 */

	/* [Notify] (ours): where notify mails go out */
	int has_notify;
	char *notify_server;
	int notify_port;
	int notify_implicit_tls;   /* 1 = TLS from the first byte, 0 = STARTTLS */
	char *notify_user, *notify_password, *notify_from;
	enum auth_method notify_auth;
	char *notify_transport;    /* "smtp" (default) or "graph" */

	/* [State] (ours) */
	char *state_db;            /* default: <ini path>.state.db */
	int max_attempts;          /* MaxAttempts, default 5 */

	/* keys and sections neither the incumbent nor mailshift reads, in
	 * file order (a typo such as AuthMethd= would silently mean the
	 * default): callers warn about them */
	struct config_unknown_key *unknown_keys;
	size_t n_unknown_keys;
};

/* Parse the file at path.  On a malformed file or value, fails with
 * MS_ERR_CONFIG and a message "FILE:LINE: [Section] Key: what is wrong". */
int config_load(struct config *cfg, const char *path, struct ms_err *err);
/* Same, from an already parsed INI (borrowed). */
int config_from_ini(struct config *cfg, const struct ini *ini, const char *path,
		    struct ms_err *err);
void config_release(struct config *cfg);

/* Parse helpers shared with the tools. */
int config_parse_bool(const char *s, int *out);          /* TRUE/FALSE/YES/NO/1/0 */
int config_is_unset(const char *s);                      /* NULL, "", N/A, N\A */
/* Expand %VAR% from the environment (unknown ones stay as written;
 * %PROGRAMDATA% falls back to C:\ProgramData).  Caller frees. */
char *config_expand_env(const char *s);
/* Parse the incumbent's LastRunDate ("M/D/YYYY h:mm:ss AM|PM", also ISO
 * 8601); local time.  Returns 0 on success. */
int config_parse_run_date(const char *s, time_t *out);
/* Format t as the incumbent writes it: "M/D/YYYY h:mm:ss AM". Buffer >= 32. */
void config_format_run_date(time_t t, char *out, size_t outsz);
/* Write [General] LastRunDate = t back into the INI file at path, changing
 * only that value's bytes (or adding the key to [General]), in the file's
 * encoding and line ends, atomically. */
int config_save_run_date(const char *path, time_t t, struct ms_err *err);

/* Why the [Audit] NotifyOnAccepts / NotifyOnRejects mails of cfg cannot
 * go out (a static sentence), or NULL when they can or none is asked
 * for: no [Notify] section, no Server for SMTP, Graph or OAuth2 without a
 * complete [OAuth] section. */
const char *config_notify_problem(const struct config *cfg);
const char *config_protocol_name(enum mail_protocol p);
/* Is this a key config.c reads (any key in [Tokens], EventN in rules)?
 * For audit's "unknown key" warnings. */
int config_known_key(const char *section, const char *key);
/* General, Mail, Audit, Tokens, OAuth, Notify, State, ConfigurationN. */
int config_known_section(const char *section);
/* The closest known key of section to key ("AuthMethd" -> "AuthMethod"),
 * or NULL when none is close; for an unknown section name with key NULL,
 * the closest section name.  Static strings. */
const char *config_suggest(const char *section, const char *key);
/* "[Mail] AuthMethd: unknown key, ignored (did you mean AuthMethod?)"
 * into out (always terminated). */
void config_unknown_key_text(const struct config_unknown_key *u, char *out,
			     size_t outsz);
int config_default_port(enum mail_protocol p, int implicit_tls);

#endif
