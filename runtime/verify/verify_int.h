/*
 * verify_int.h - the engine's private parts shared between verify.c (the
 * threads, limits, sessions and the config, token and login steps) and
 * verify_probe.c (the send, seen and cleanup steps).  Not for the tools.
 *
 * Ownership: a struct job is its worker thread's; the engine and the
 * mailbox limits are shared under engine.mu.
 */
#ifndef MS_VERIFY_INT_H
#define MS_VERIFY_INT_H

#include <pthread.h>
#include <time.h>

#include "auth/oauth.h"
#include "base/err.h"
#include "ini/config.h"
#include "transport/mailbox/mailbox.h"
#include "verify/verify.h"

#define VERIFY_MAX_EVENTS  100
#define VERIFY_MAX_POLLS   100000

/* LIM_POP is exclusive: a POP3 session numbers the messages when it
 * starts, so a message another session deletes meanwhile breaks it (and
 * RFC 1939 locks the maildrop anyway); it waits until no other IMAP, POP
 * or Graph session of the mailbox runs, and they wait for it. */
enum limit_kind { LIM_SMTP = 0, LIM_GRAPH, LIM_SESSION, LIM_POP, LIM_COUNT };

/* The limits of one mailbox, shared by every thread. */
struct mbx_limits {
	char *key;                    /* lowercased address */
	int used[LIM_COUNT];
	int readers;                  /* IMAP and Graph sessions open */
	int waiting;                  /* threads waiting for a session slot */
	struct verify_rate rate;      /* probes sent from it */
	struct mbx_limits *next;
};

/* Credentials proven by a fresh token request in this run. */
struct proven {
	unsigned char key[32];        /* SHA-256 of the credential's identity */
	int ok;
	struct proven *next;
};

struct engine {
	const struct verify_opts *o;
	struct proven *proven;
	/* Forced token requests one at a time: oauth.c hands out a token
	 * another request stored while it waited for the cache lock, which
	 * would let a wrong secret pass on its neighbour's token. */
	pthread_mutex_t proof_mu;
	struct verify_run *r;
	struct config sender;         /* --sender-ini, loaded once */
	int have_sender;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct mbx_limits *limits;
	size_t next, done;
};

/* One mailbox being verified (owned by its thread). */
struct job {
	struct engine *e;
	struct verify_result *res;
	struct config cfg;
	int cfg_loaded;
	enum mail_protocol proto;     /* IMAP, POP or GRAPH */
	int oauth;
	struct oauth_params op;
	int have_op;
	char *password;               /* basic auth, resolved */
	const char *address;          /* mailbox address (borrowed from cfg) */
	char *probe_key;              /* the probe's message key when seen */
	/* The mailbox session kept from one step to the next (see "mailbox
	 * sessions" below); its slot is held while `held`. */
	struct mailbox *mb;
	struct mbx_limits *mb_limit;
	int held;
	time_t sent_at;
	double t_sent;
	double t_step;
};

/* small helpers: monotonic seconds, a sleep, strdup/asprintf that return
 * NULL instead of failing (a missing message is not worth a stop) */
double verify_mono_now(void);
void verify_sleep_s(double s);
char *verify_strdup(const char *s);
char *verify_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* per-mailbox limits (LIM_*): wait for a slot, give it back; the wait
 * before the next probe from mailbox may go out */
struct mbx_limits *verify_limit_acquire(struct engine *e, const char *mailbox,
					enum limit_kind k);
void verify_limit_release(struct engine *e, struct mbx_limits *l,
			  enum limit_kind k);
double verify_limit_rate(struct engine *e, const char *mailbox);

/* step results of j (a message is the job's to free) */
void job_step_begin(struct job *j);
void job_step_end(struct job *j, enum verify_step s, enum verify_status st);
void job_step_pass(struct job *j, enum verify_step s, char *message);
int job_step_fail(struct job *j, enum verify_step s, const struct ms_err *err,
		  const struct oauth_error *oe);
void job_step_fail_own(struct job *j, enum verify_step s, enum ms_errcode code,
		       const char *cause, const char *fix, char *message);

/* mailbox_token_fn / send_token_fn over a struct oauth_params */
int verify_token_cb(void *ctx, int force_refresh, char **token,
		    struct ms_err *err);

/* the mailbox session kept from one step to the next */
int job_session_get(struct job *j, time_t since, int read_only,
		    struct ms_err *err);
int job_session_close(struct job *j, struct ms_err *err);
void job_session_hold(struct job *j);
void job_session_idle(struct job *j);
void job_session_park(struct job *j, double wait);

/* steps 4 to 6 (verify_probe.c) */
int job_step_send(struct job *j);
int job_step_seen(struct job *j);
void job_step_cleanup(struct job *j);

#endif
