/*
 * connector_int.h - private parts of the connector shared between
 * connector.c, connector_deliver.c and connector_auth.c.  Not for the
 * tools.
 */
#ifndef MS_CONNECTOR_INT_H
#define MS_CONNECTOR_INT_H

#include "ini/config.h"
#include "connector/connector.h"
#include "transport/mailbox/mailbox.h"
#include "mail/message.h"
#include "ini/rules.h"
#include "mail/event.h"
#include "connector/state.h"
#include "base/buf.h"

/* Wire the [OAuth] section into p->token_fn/token_ctx (token cache).
 * *out owns the token source; free it with connector_oauth_free() after
 * the mailbox is closed. */
struct connector_oauth;
int connector_oauth_setup(const struct connector_run *r, const struct config *c,
			  struct mailbox_params *p, struct connector_oauth **out,
			  struct ms_err *err);
void connector_oauth_free(struct connector_oauth *o);

/* Send the [Audit] Notify* mails for one processed message (best effort:
 * failures are logged, never fatal). */
void connector_notify(const struct connector_run *r, const struct config *c,
		      const struct message *msg, const struct rule_result *res);
/* The same from the fields alone (a message delivered with its group). */
struct event_fields;
void connector_notify_fields(const struct connector_run *r, const struct config *c,
			     int matched, const struct event_fields *f);

/* ---- one run, shared by connector.c and connector_deliver.c ---- */

struct run {
	const struct connector_run *r;
	struct connector_summary *sum;
	struct config cfg;
	struct ini *ini;
	struct rules *rules;
	struct state *state;
	struct mailbox *mb;
	int mb_borrowed;       /* mb is r->mailbox: not ours to close */
	char *mailbox_id;      /* "imaps://host:port/user/folder" */
	char *staging;         /* staging folder beside MSGIN */
	int delete_mode;       /* effective enum delete_mode */
	char *opcon_password;  /* resolved [General] OpConUserPassword (wiped) */
	struct connector_oauth *oauth;
	long delivered;        /* messages whose events reached MSGIN */
	char rules_hash[STATE_HASH_LEN + 1]; /* the rule set of this run */
	time_t prior_before;   /* a first run: mail received before this
				* (LastRunDate) was the incumbent's */
	time_t deadline;       /* [General] RunTimeout from the start */
	time_t oldest_failed;  /* received time of the oldest failed message */
	long quarantined_seen; /* quarantined messages still on the server */
	char gen_checked[512]; /* the IMAP key generation older_generation() */
	int gen_older;         /* ... answered for */
	char **unsynced;       /* files staged since the last sync_staging() */
	size_t n_unsynced, cap_unsynced;
	struct ready *ready;   /* the group waiting for delivery (GROUP_MAX) */
	size_t n_ready;
	int fetch_refusals;    /* messages in a row the server would not hand
				* over (MS_ERR_PROTO): a broken server, not a
				* bad message, after FETCH_REFUSALS_MAX */
};


struct msg_ctx {                 /* one message, as process_message sees it */
	const struct mailbox_item *it;
	const char *key;           /* it->key, or a key of its own (reused key) */
	char fp[STATE_HASH_LEN + 1];
	char seed[512];            /* names its files: key, fingerprint, try */
	const struct message *msg; /* headers, or the whole message */
	time_t received;
};


struct pending {
	char **lines;      /* rendered with credentials: wipe */
	char **redacted;   /* for reports and logs */
	char **sections;
	size_t n, cap;     /* cap: of each of the three arrays */
};


/* A message staged and recorded, waiting for its group's delivery: up to
 * GROUP_MAX messages share one commit, one rename pass and one MSGIN
 * fsync, in the exactly-once order: files durable, names committed, files
 * renamed into MSGIN and MSGIN durable, then each message delivered,
 * logged, notified and deleted. */
#define GROUP_MAX 64

struct ready {
	const struct mailbox_item *it;
	char *key;
	int matched;
	char **names;                 /* staged file names, pend.n of them */
	struct pending pend;          /* redacted events for the logs */
	char *sender, *subject, *date, *reason;
};

/* Tell the caller's report callback (connector_run.report). */
void run_note(struct run *run, enum connector_note n, const char *key,
	      const char *section, const char *text);

/* file names: 16 hex digits of SHA-256(a "\n" b), -1 when OpenSSL cannot
 * allocate; the staging folder beside MSGIN (caller frees) */
int run_hash_hex(const char *a, const char *b, char out[17]);
char *run_staging_dir_for(const char *msgin);

/* [Audit] accept / reject / OpCon event log line (best effort) */
void run_audit_line(struct run *run, enum event_log_kind kind,
		    const char *sender, const char *subject, const char *date,
		    const char *event, const char *reason);

/* events of one message, rendered with and without credentials */
void run_pending_release(struct pending *p);
int run_pending_add(struct run *run, struct pending *p, const char *section,
		    const char *event, struct ms_err *err);
/* stage p's events beside MSGIN and record them (*out: their names) */
int run_stage_events(struct run *run, const struct msg_ctx *m,
		     const struct pending *p, int matched, char ***out,
		     struct ms_err *err);
/* finish the delivery of a message recorded as staged (after a crash) */
int run_deliver_staged(struct run *run, const char *key, struct ms_err *err);
/* make the staged files durable before a commit (state precommit hook) */
int run_sync_staging(void *ctx, struct ms_err *err);
void run_forget_unsynced(struct run *run);

/* the group of messages waiting for delivery */
int run_group_add(struct run *run, const struct msg_ctx *m, int matched,
		  char **names, struct pending *pend,
		  const struct rule_result *res, struct ms_err *err);
int run_group_deliver(struct run *run, struct ms_err *err);
void run_group_release(struct run *run);
int run_in_group(const struct run *run, const char *key);

/* deletion on the server: is it due (DeleteEmails), do it, or both after
 * the events are delivered */
int run_delete_due(const struct run *run, int matched);
int run_delete_message(struct run *run, const struct mailbox_item *it,
		       const char *key, struct ms_err *err);
int run_finish_message(struct run *run, const struct mailbox_item *it,
		       const char *key, int matched, struct ms_err *err);

/* [General] DownloadEmails: the message and its attachments */
int run_download(struct run *run, const char *seed,
		 const struct message *full, const struct buf *raw,
		 struct ms_err *err);

/* 1 for an error of one message (recorded as failed, the run goes on) */
int run_message_error(const struct ms_err *e);
/* record a message that cannot be processed (failed, then quarantined) */
int run_fail_message(struct run *run, const struct msg_ctx *m,
		     const struct ms_err *why, struct ms_err *err);

#endif
