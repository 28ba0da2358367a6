/*
 * mailbox.h - one interface over IMAP, POP3 (libcurl) and Microsoft Graph.
 *
 * A struct mailbox is one session: opened once per run, used for every
 * message, closed at the end (one connection, one login).  libcurl types
 * stay inside mailbox_*.c.
 *
 * Ownership: params strings are borrowed for the life of the mailbox.
 * Items returned by mailbox_list() are owned by the mailbox and valid until
 * mailbox_close().
 */
#ifndef MS_MAILBOX_H
#define MS_MAILBOX_H

#include <stddef.h>
#include <time.h>
#include "base/buf.h"
#include "base/err.h"
#include "transport/protocol.h"

enum tls_mode { TLSM_IMPLICIT, TLSM_STARTTLS, TLSM_NONE };

struct mailbox_params;

/* How a connection is protected: the one place that decides it (the
 * connector, verify and the audit all ask it, through ini/profile.h).  level is SecurityProtocol (after --ssl/--tls1_x), starttls is
 * [Mail] StartTLS (-1 when not written), port 0 when not set.
 *   SecurityProtocol=NONE           -> none (the explicit opt-in)
 *   StartTLS=True                   -> STARTTLS
 *   StartTLS=False                  -> implicit TLS
 *   no port, 993, 995               -> implicit TLS
 *   143, 110                        -> STARTTLS
 *   another port, SecurityProtocol set  -> implicit TLS (as before)
 *   another port, SecurityProtocol empty -> STARTTLS
 * Empty SecurityProtocol thus chooses by port, as the incumbent's mail
 * library does, and never sends a password in clear: STARTTLS is
 * required (a server that does not offer it is refused). */
enum tls_mode mailbox_tls_choose(enum tls_level level, int starttls, int port);
/* "implicit", "starttls", "none" */
const char *mailbox_tls_mode_name(enum tls_mode m);

/* Supplies a fresh bearer token when the server says the one we used has
 * expired (reconnect-with-fresh-token).  Returns 0 and fills *token (caller
 * wipes and frees) or -1 with err. */
typedef int (*mailbox_token_fn)(void *ctx, int force_refresh, char **token,
				struct ms_err *err);

struct mailbox_params {
	enum mail_protocol protocol;   /* PROTO_IMAP, PROTO_POP, PROTO_GRAPH (PROTO_MSAL = Graph) */
	const char *host;
	int port;
	enum tls_mode tls;
	enum tls_level tls_min;
	int verify_peer;               /* 1 unless SelfSignedCertificate=True */
	const char *ca_file;           /* NULL = system store */
	const char *user;              /* login / mailbox UPN for Graph */
	const char *password;          /* basic auth; NULL with a token */
	mailbox_token_fn token_fn;     /* XOAUTH2 / Graph bearer; NULL for basic */
	void *token_ctx;
	const char *folder;            /* IMAP folder, default "INBOX" */
	const char *graph_endpoint;    /* NULL = GRAPH_DEFAULT_ENDPOINT */
	time_t since;                  /* list only mail received at/after, 0 = all */
	long timeout_s;                /* per operation, default 60 */
	time_t deadline;               /* the whole session ends by then (wall
					* clock), 0 = none; and every wait for
					* the server must bring at least
					* MAILBOX_MIN_RATE bytes a second over
					* MAILBOX_RATE_WINDOW seconds */
	int verbose;                   /* protocol trace through log_trace, credentials redacted */
	int read_only;                 /* never delete, EXAMINE instead of SELECT */
};

#define MAILBOX_MIN_RATE    10L
#define MAILBOX_RATE_WINDOW 60L

struct mailbox_item {
	char *key;          /* exactly-once key: "imap:<uidvalidity>:<uid>",
			     * "pop:<uidl>", "graph:<immutable id>" */
	char *server_id;    /* UID / message number / Graph id */
	size_t size;
	time_t received;    /* INTERNALDATE / receivedDateTime, 0 if unknown */
	char *headers;      /* raw header block, filled by mailbox_fetch_headers
			     * (IMAP: the fields Date, From, Sender, Reply-To,
			     * Subject, Message-ID, Content-Type, MIME-Version,
			     * at most 64 KB; POP: TOP n 0; Graph: synthetic
			     * Message-ID/Date/From/Subject from the listing);
			     * "" for a message deleted meanwhile */
	size_t headers_len;
};

struct mailbox;

int mailbox_open(struct mailbox **mb, const struct mailbox_params *p,
		 struct ms_err *err);
/* List the folder.  Fills *items (owned by mb) in server order.  With
 * params->since only mail received at or after it (IMAP INTERNALDATE,
 * Graph receivedDateTime; POP3 has no arrival date: its Date header,
 * mail without a readable Date is kept; IMAP without UIDPLUS also lists
 * every \Deleted message, a deletion still pending being one of them).
 * At most 1,000,000 items. */
int mailbox_list(struct mailbox *mb, struct mailbox_item **items, size_t *n,
		 struct ms_err *err);
/* Fetch the header blocks of all listed items in as few round trips as the
 * protocol allows (IMAP: the header fields the rules read, at most 64 KB a
 * message, come with the listing in one UID FETCH, so this sends nothing;
 * POP: TOP n 0 each; Graph: built from the listing, no request). */
int mailbox_fetch_headers(struct mailbox *mb, struct ms_err *err);
/* Fetch one whole message (raw RFC 5322) into out (appended).  IMAP reads
 * it with one BODY.PEEK[] and never sets \Seen.  More than
 * 64 MB is refused (MS_ERR_TOOBIG). */
int mailbox_fetch_message(struct mailbox *mb, const struct mailbox_item *it,
			  struct buf *out, struct ms_err *err);
/* Mark one message deleted (IMAP: \Deleted + UID EXPUNGE, or EXPUNGE at
 * close without UIDPLUS; POP: DELE, committed at QUIT; Graph: DELETE).  A
 * message already gone counts as deleted; a read-only mailbox refuses
 * (MS_ERR_USAGE). */
int mailbox_delete(struct mailbox *mb, const struct mailbox_item *it,
		   struct ms_err *err);
/* Commit deletions (POP QUIT / IMAP EXPUNGE) and close. Always frees mb.
 *
 * Connection loss: when the server ends the session in the middle of a run
 * (Exchange: "* BYE ... AccessTokenExpired"), the next command logs in
 * again (with a forced token refresh if the login is refused), selects
 * the folder again (refusing a changed UIDVALIDITY) or maps POP message
 * numbers again through UIDL and re-sends the DELE marks, then repeats. */
int mailbox_close(struct mailbox *mb, struct ms_err *err);

/* Make an open session ready for another listing (one login for several
 * steps): since and read_only replace the values given at open, the
 * items listed so far stay valid until the next mailbox_list().
 * IMAP selects the folder again (EXAMINE read-only, SELECT otherwise;
 * pending expunges are done first), so mail that arrived meanwhile is
 * listed and a changed UIDVALIDITY is refused; a lost connection is
 * opened again.  Graph asks the server at every listing anyway.  POP3
 * keeps its session: it still sees the maildrop as it was at login
 * (RFC 1939), so mail that arrived later needs a new session (see
 * mailbox_sees_new_mail()), and DELE marks still take effect at QUIT.
 * After a failure the session is of no further use: close it. */
int mailbox_reuse(struct mailbox *mb, time_t since, int read_only,
		  struct ms_err *err);
/* 1 when mailbox_reuse() lists mail that arrived after the session was
 * opened (IMAP, Graph), 0 when only a new session does (POP3). */
int mailbox_sees_new_mail(const struct mailbox *mb);
/* The parameters the session was opened with (borrowed, valid until
 * mailbox_close(); the strings in it are the caller's of mailbox_open). */
const struct mailbox_params *mailbox_params_of(const struct mailbox *mb);

/* Replace the session's deadline (mailbox_params.deadline); 0 = none. */
void mailbox_set_deadline(struct mailbox *mb, time_t deadline);

/* Connections opened and login commands sent so far (IMAP/POP: one each
 * for a healthy run; Graph: HTTP requests are not counted, both 0). */
void mailbox_stats(const struct mailbox *mb, long *connections, long *logins);

#endif
