/*
 * cmdline.h - the incumbent's command line: Windows splitting, finding the
 * connector inside a job's command line (also behind "cmd /c"), parsing
 * its options, and rendering a command line with secrets redacted.
 *
 * Ownership: cmdline_split_windows() hands the caller an argv array of
 * malloc'd strings, released with cmdline_argv_free() (which wipes them:
 * a job command line can hold a literal password).  struct cmdline_job
 * owns its argv; cmdline_job_release() frees it.  struct connector_opts
 * owns every string in it; cmdline_opts_release() wipes the secrets
 * (user, password, OpCon user and password) and frees everything.
 * Strings passed in are borrowed and never kept.
 */
#ifndef MS_CMDLINE_H
#define MS_CMDLINE_H

#include "ini/config.h"
#include "base/err.h"

/* OpCon limits a job's command line to 4,000 characters. */
#define CMDLINE_MAX 4000

/* Split cmd by the MSVC rules (CommandLineToArgvW / the C runtime):
 * blanks separate arguments outside quotes; 2n backslashes before a quote
 * give n backslashes and the quote toggles quoting; 2n+1 give n
 * backslashes and a literal quote; other backslashes are literal; "" inside
 * quotes is a literal quote.  argv[argc] is NULL.  A command line longer
 * than CMDLINE_MAX fails with MS_ERR_DATA. */
int cmdline_split_windows(const char *cmd, char ***argv, int *argc,
			  struct ms_err *err);
void cmdline_argv_free(char **argv, int argc);

/* Is this token the connector executable?  smartemail[.exe] in any case,
 * any directory, its 8.3 short form SMARTE~N.EXE, or mailshift[.exe]. */
int cmdline_is_connector_exe(const char *token);

/* A job's command line, split, with the connector located. */
struct cmdline_job {
	char **argv;      /* every token (after unwrapping "cmd /c") */
	int argc;
	int exe;          /* index of the connector executable, -1 if none */
	int end;          /* one past the connector's last option (stops at
			   * &, &&, |, ||, >, < tokens of a cmd chain) */
	int via_cmd;      /* run through cmd /c or /k */
};

/* Split a job command line and find the connector in it (directly, or as
 * the command of a "cmd[.exe] [/s] [/q] /c ..." wrapper, also after
 * "cd /d X &&").  A line that runs no connector is not an error:
 * j->exe is -1. */
int cmdline_job_parse(const char *cmd, struct cmdline_job *j,
		      struct ms_err *err);
void cmdline_job_release(struct cmdline_job *j);

enum credentials_mode { CRED_NONE = 0, CRED_STORE };

struct connector_opts {
	/* -server: -port: (override [Mail] Server / Port) */
	char *server;
	char *port_text;          /* as written */
	int port;                 /* 1..65535, 0 = not given (or a property) */
	/* --imap --pop --msal: PROTO_UNSET when none */
	enum mail_protocol protocol;
	/* --ssl --tls1_1 --tls1_2: TLSL_UNSET when none */
	enum tls_level tls;
	int delete_mail;          /* --delete */
	int msal;                 /* --msal */
	int renew_msal_token;     /* --renewMsalToken */
	int renew_silent;         /* --renewTokenSilent */
	int do_not_save_account;  /* --doNotSaveAccount */
	enum credentials_mode credentials; /* --credentials */
	char *user;               /* -user: (secret-ish: wiped) */
	char *password;           /* -password: (secret) */
	char *opcon_user;         /* -opconuser: */
	char *opcon_password;     /* -opconpassword: (secret) */
	char *client_secret;      /* -clientsecret: (ours, secret): --credentials
				   * seals it into [OAuth] ClientSecret */
	char *inifile;            /* -inifile:, literal quotes removed */
	char *state_path;         /* --state:PATH (ours) */
	/* ours */
	int dry_run;              /* --dry-run */
	int verbose;              /* -v, repeatable; -vv counts 2 */
	int help;                 /* --help, -h, -? */
	int version;              /* --version */
	int oauth_login;          /* --oauth-login (device-code sign-in) */
	int list_failed;          /* --failed: list failed/quarantined mail */
	int retry_failed;         /* --retry-failed: try quarantined mail again */
	/* where a value still holds an unexpanded [[PROPERTY]] or %VAR% */
	int has_property;
};

/* Flags for cmdline_parse_connector_ex(). */
#define CMDLINE_ALLOW_PROPERTIES 0x1 /* accept -port:[[P]] (audit) */

/* Parse the connector's options.  argv[0] is the program name and is
 * skipped; argv[1..argc-1] are options (case-insensitive).  Single-dash
 * options take their value after ':' (also '='), quotes around the value
 * are removed when still there.  Errors are MS_ERR_USAGE: "unknown option
 * '--foo'", "option '-server' requires a value", "invalid port 'x'",
 * "--imap and --pop cannot be used together", "unexpected argument 'x'".
 * Error messages never contain a secret value.  *o is initialised here;
 * release it with cmdline_opts_release() even after a failure. */
int cmdline_parse_connector(int argc, char **argv, struct connector_opts *o,
			    struct ms_err *err);
int cmdline_parse_connector_ex(int argc, char **argv, unsigned flags,
			       struct connector_opts *o, struct ms_err *err);
void cmdline_opts_release(struct connector_opts *o);

/* Does s contain an OpCon property reference [[NAME]]?  An environment
 * reference %NAME%? */
int cmdline_has_property(const char *s);
int cmdline_has_env_ref(const char *s);
/* Is s exactly one property reference, e.g. "[[SMTP_PW]]"? */
int cmdline_is_property(const char *s);

/* A copy of a raw command line with the values of -password:,
 * -opconpassword: and -clientsecret: (any case, quoted or not) replaced by
 * "***", unless the
 * value is a [[PROPERTY]] reference (not a secret).  Everything else is
 * kept byte for byte.  Caller frees; NULL only when out of memory. */
char *cmdline_redact(const char *cmd);
/* Render argv[from..to-1] as one Windows command line (quoted where
 * needed), secrets redacted as above.  Caller frees. */
char *cmdline_render_redacted(char **argv, int from, int to);

#endif
