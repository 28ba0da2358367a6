/*
 * connector.h - one run of the connector: read the INI, open the mailbox
 * once, match every new message against the rules, write the events into
 * MSGIN durably, record them, and only then delete on the server.
 *
 * The library never prints: what a program shows (dry-run findings, a
 * summary) reaches it through the report callback.
 *
 * Ownership: every pointer in struct connector_run is borrowed for the
 * duration of connector_run().  Strings handed to the callback are
 * borrowed for the duration of the call; event lines given to it never
 * hold the OpCon password.
 */
#ifndef MS_CONNECTOR_H
#define MS_CONNECTOR_H

#include "ini/config.h"
#include "base/err.h"
#include "transport/mailbox/mailbox.h"

enum connector_note {
	NOTE_MATCHED,      /* a configuration matched: section = its name,
			    * text = subject (once per matching section) */
	NOTE_REJECTED,     /* text = reason */
	NOTE_EVENT,        /* text = event line, credentials redacted */
	NOTE_DELETED,
	NOTE_SKIPPED,      /* already processed in an earlier run */
	NOTE_RECOVERED,    /* finished the work of an interrupted run */
	NOTE_FAILED,       /* text = why the message cannot be processed; it
			    * stays on the server and is tried again */
	NOTE_QUARANTINED   /* the same, [State] MaxAttempts reached: no
			    * longer tried (mailshift --retry-failed) */
};

typedef void (*connector_report_fn)(void *ctx, enum connector_note note,
				    const char *message_key, const char *section,
				    const char *text);

struct connector_run {
	const char *ini_path;
	/* command-line overrides (0 / NULL / *_UNSET = keep the INI's) */
	const char *server;
	int port;
	enum mail_protocol protocol;
	enum tls_level tls;
	int delete_mail;           /* --delete */
	int msal;                  /* --msal */
	int dry_run;               /* match and report only: no event, no
				    * deletion, no state, no INI write */
	int verbose;               /* protocol trace */
	const char *state_path;    /* NULL = [State] StateDatabase or <ini>.state.db */
	int retry_failed;          /* --retry-failed: quarantined messages are
				    * tried again in this run */
	const char *only_key;      /* evaluate only the message with this key
				    * (mailbox_item.key), e.g. a verify probe */
	/* an open session to use instead of opening one (mailshift-verify
	 * hands its own over, saving a login): borrowed, never closed; the
	 * run lists it again (mailbox_reuse() with its own since and
	 * read-only setting), which replaces its items.  Used only when it
	 * was opened for what the INI (after the overrides above) names:
	 * same protocol, server, port, TLS, user, folder, Graph endpoint,
	 * certificate checks and kind of credential; else the run opens its
	 * own session as without it.  NULL = open one. */
	struct mailbox *mailbox;
	/* bearer token source; NULL = the [OAuth] section through oauth.h */
	mailbox_token_fn token_fn;
	void *token_ctx;
	connector_report_fn report;
	void *report_ctx;
	/* test hook: stop (as if killed) right after the n-th message's
	 * events are durable in MSGIN, before its state is recorded;
	 * 0 = never.  Read from MAILSHIFT_CRASH_AFTER by the program. */
	long crash_after;
};

struct connector_summary {
	long listed;       /* messages in the folder */
	long considered;   /* new ones, received since LastRunDate */
	long matched;
	long rejected;
	long skipped;      /* already processed */
	long events;       /* event files written (or that would be) */
	long deleted;
	long bodies;       /* whole messages fetched */
	long failed;       /* messages that could not be processed (left on
			    * the server; the run exits 2) */
	long quarantined;  /* of those, quarantined by this run */
	long quarantined_kept; /* quarantined earlier, still on the server */
	long prior;        /* first run: older than LastRunDate, left alone */
	long recovered_matched; /* matched by an interrupted run, finished by
				 * this one (counts as matched for the exit code) */
	int exit_code_no_match;
	int reused_mailbox;  /* 1 when connector_run.mailbox was used */
	long config_broken;  /* configurations (or RejectEvent) left out as
			      * broken: the run exits 2 after its work */
};

int connector_run(const struct connector_run *r, struct connector_summary *sum,
		  struct ms_err *err);

/* --credentials: seal the given secrets into the INI file (only the keys
 * given change; every other byte stays).  User names are kept in clear
 * (they are addresses, not secrets); passwords are sealed with the machine
 * key.  Any argument may be NULL. */
int connector_store_credentials(const char *ini_path, const char *user,
				const char *password, const char *opcon_user,
				const char *opcon_password, struct ms_err *err);
/* --credentials -clientsecret:VALUE: seal an app's client secret into
 * [OAuth] ClientSecret the same way (the fix verify and the connector
 * print for a wrong or expired client secret). */
int connector_store_client_secret(const char *ini_path, const char *secret,
				  struct ms_err *err);

/* --oauth-login: device-code sign-in for the INI's [OAuth] section
 * (Flow=DeviceCode); the prompt callback shows the code and URL.  Stores
 * the refresh token in the machine's token cache. */
typedef int (*connector_prompt_fn)(void *ctx, const char *user_code,
				   const char *verification_uri,
				   const char *message, long expires_in);
int connector_oauth_login(const char *ini_path, connector_prompt_fn prompt,
			  void *ctx, struct ms_err *err);
/* --renewMsalToken --renewTokenSilent: use the stored refresh token now and
 * store the rotated one (keeps a delegated sign-in alive). */
int connector_oauth_renew(const char *ini_path, struct ms_err *err);

/* --failed: every failed and quarantined message recorded in the state
 * database of the INI (or state_path), oldest first. */
struct connector_failed {
	const char *mailbox, *key, *subject, *sender, *reason;
	int quarantined;
	int attempts;
	time_t first_seen, updated;
};
typedef int (*connector_failed_fn)(void *ctx, const struct connector_failed *f);
int connector_list_failed(const char *ini_path, const char *state_path,
			  connector_failed_fn fn, void *ctx, struct ms_err *err);

/* The exit code a run maps to, as the incumbent: 0 when mail matched,
 * [General] ExitCodeForNoMatchingEmails when none did, 2 on an error or
 * when a message could not be processed or a broken configuration was
 * left out (sum->config_broken). */
int connector_exit_code(int rc, const struct connector_summary *sum);

#endif
