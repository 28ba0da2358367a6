/*
 * verify_probe.c - mailshift-verify's probe: send a message to the
 * mailbox (step 4), wait until it is listed and let the connector's own
 * code judge it in a dry run on the session verify holds (step 5), then
 * delete the probe and nothing else (step 6).
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "ini/config.h"
#include "ini/profile.h"
#include "connector/connector.h"
#include "mail/explain.h"
#include "transport/http.h"
#include "base/log.h"
#include "base/mem.h"
#include "transport/mailbox/mailbox.h"
#include "mail/message.h"
#include "auth/oauth.h"
#include "auth/secret.h"
#include "transport/send.h"
#include "verify/verify.h"
#include "verify/verify_int.h"

/* ---- step 4: send ------------------------------------------------------------- */

struct sender {
	struct send_params sp;
	struct oauth_params op;
	int have_op;
	char *password;
	const char *from;
	const char *limit_key;        /* the sending mailbox */
	enum limit_kind kind;
};

static void sender_release(struct sender *s)
{
	if (s->have_op)
		oauth_params_release(&s->op);
	secret_free(s->password);
	memset(s, 0, sizeof(*s));
}

/* Settings to send from config c (the sender INI or the mailbox's own). */
static int sender_setup(struct job *j, const struct config *c, struct sender *s,
			struct ms_err *err)
{
	const struct verify_sender *vs = &j->e->o->sender;
	int notify = c->notify_server || profile_notify_graph(c);
	int graph, oauth;

	memset(s, 0, sizeof(*s));
	if (notify) {
		/* the connector's notify sender, as it would send */
		profile_notify_params(c, &s->sp);
		graph = s->sp.transport == SEND_GRAPH;
		oauth = graph || c->notify_auth == AUTH_OAUTH2;
		s->from = c->notify_from;
	} else {
		graph = profile_protocol(c) == PROTO_GRAPH;
		oauth = profile_uses_oauth(c);
		s->sp.transport = graph ? SEND_GRAPH : SEND_SMTP;
		if (!graph) {
			s->sp.host = vs->smtp_host ? vs->smtp_host :
				profile_is_microsoft_host(c->server) ?
				"smtp.office365.com" : c->server;
			s->sp.port = vs->smtp_port;
			s->sp.tls = vs->smtp_implicit_tls ? SEND_TLS_IMPLICIT :
				SEND_TLS_STARTTLS;
		}
		s->sp.user = profile_mailbox_user(c);
		s->sp.ca_file = profile_ca_file(c, graph ? PROFILE_PEER_MICROSOFT :
						PROFILE_PEER_SMTP);
		s->sp.graph_endpoint = c->graph_endpoint;
	}
	if (!s->sp.user)
		return err_set(err, MS_ERR_CONFIG, "%s: no sending mailbox ([Mail] User)",
			       c->path);
	if (!graph && !s->sp.host)
		return err_set(err, MS_ERR_CONFIG, "%s: no SMTP server to send the probe "
			       "through (set [Notify] Server or use --smtp)", c->path);
	s->sp.timeout_s = j->e->o->op_timeout_s > 0 ? j->e->o->op_timeout_s : 60;
	s->sp.verbose = j->e->o->verbose;
	if (oauth) {
		if (profile_oauth_params(c, graph ? PROTO_GRAPH : PROTO_IMAP,
					 &s->op, err))
			return err_prefix(err, "%s", c->path);
		s->have_op = 1;
		s->sp.auth = SEND_AUTH_XOAUTH2;
		s->sp.token_fn = verify_token_cb;
		s->sp.token_ctx = &s->op;
	} else {
		const char *ref = notify ? c->notify_password : c->password;
		if (!ref)
			return err_set(err, MS_ERR_CONFIG, "%s: no password to send the "
				       "probe with", c->path);
		if (secret_resolve(ref, &s->password, err))
			return err_prefix(err, "%s: password", c->path);
		s->sp.auth = SEND_AUTH_BASIC;
		s->sp.password = s->password;
	}
	if (vs->from)
		s->from = vs->from;
	if (!s->from)
		s->from = s->sp.user;
	s->limit_key = s->sp.user;
	s->kind = graph ? LIM_GRAPH : LIM_SMTP;
	return 0;
}

int job_step_send(struct job *j)
{
	struct engine *e = j->e;
	struct ms_err err = MS_ERR_INIT;
	struct sender s;
	struct send_message m = { 0 };
	struct send_header h = { "X-Mailshift-Probe", NULL };
	struct mbx_limits *l;
	char id[32], *body;
	double wait;
	int rc;

	job_step_begin(j);
	verify_probe_id(id, sizeof(id));
	j->res->probe_id = verify_strdup(id);
	j->res->probe_subject = e->o->subject ? verify_printf("%s [%s]", e->o->subject, id) :
		verify_printf("mailshift-verify probe %s", id);
	if (!j->res->probe_id || !j->res->probe_subject) {
		err_nomem(&err);
		job_step_fail(j, VSTEP_SEND, &err, NULL);
		return -1;
	}
	if (sender_setup(j, e->have_sender ? &e->sender : &j->cfg, &s, &err)) {
		sender_release(&s);
		job_step_fail(j, VSTEP_SEND, &err, NULL);
		return -1;
	}
	body = verify_printf("This is a probe sent by mailshift-verify to prove that the "
			     "connector configured in\n%s\nreceives and matches mail.\n\n"
			     "Probe id: %s\n\nmailshift-verify deletes this message (and only "
			     "this message) once the connector\nhas seen it.  If you read it, "
			     "it is safe to delete.\n", j->res->label, id);
	h.value = id;
	m.from = s.from;
	m.from_name = "mailshift-verify";
	m.to = j->address;
	m.subject = j->res->probe_subject;
	m.body = body;
	m.headers = &h;
	m.n_headers = 1;
	wait = verify_limit_rate(e, s.limit_key);
	job_session_park(j, wait);
	verify_sleep_s(wait);
	l = verify_limit_acquire(e, s.limit_key, s.kind);
	j->sent_at = time(NULL);
	j->t_sent = verify_mono_now();
	rc = send_mail(&s.sp, &m, &err);
	verify_limit_release(e, l, s.kind);
	free(body);
	if (rc) {
		job_step_fail(j, VSTEP_SEND, &err, NULL);
		sender_release(&s);
		return -1;
	}
	job_step_pass(j, VSTEP_SEND, verify_printf("probe %s sent from %s to %s via %s", id, s.from,
		      j->address, s.sp.transport == SEND_GRAPH ?
		      "Graph sendMail" : "SMTP submission"));
	sender_release(&s);
	return 0;
}

/* ---- step 5: seen ---------------------------------------------------------------- */

/* Items of the mailbox carrying the probe id in their subject: calls fn
 * for each (fn returns -1 to stop with an error). */
typedef int (*probe_fn)(struct mailbox *mb, const struct mailbox_item *it,
			void *ctx, struct ms_err *err);

/* What find_probe() does with the session afterwards (closed anyway on
 * an error). */
enum keep { KEEP_NEVER, KEEP_ALWAYS, KEEP_IF_FOUND };

static int find_probe(struct job *j, int read_only, enum keep keep, probe_fn fn,
		      void *ctx, size_t *found, struct ms_err *err)
{
	struct mailbox *mb;
	struct mailbox_item *items = NULL;
	struct ms_err cerr = MS_ERR_INIT;
	size_t n = 0;
	int rc;

	*found = 0;
	/* listing from a little before the send (clock skew between us and
	 * the server); POP filters on the Date header we wrote */
	if (job_session_get(j, j->sent_at - 300, read_only, err))
		return -1;
	mb = j->mb;
	rc = mailbox_list(mb, &items, &n, err);
	if (rc == 0 && n)
		rc = mailbox_fetch_headers(mb, err);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct message msg = { 0 };
		struct ms_err perr = MS_ERR_INIT;
		int hit;

		if (!items[i].headers || !items[i].headers_len)
			continue;
		if (message_parse(&msg, items[i].headers, items[i].headers_len, 1, 0,
				  &perr))
			continue;
		hit = msg.subject && strstr(msg.subject, j->res->probe_id) != NULL;
		message_release(&msg);
		/* once the key is known, only that message is the probe */
		if (!hit || (j->probe_key && strcmp(items[i].key, j->probe_key) != 0))
			continue;
		(*found)++;
		if (fn && fn(mb, &items[i], ctx, err))
			rc = -1;
	}
	if (rc || keep == KEEP_NEVER || (keep == KEEP_IF_FOUND && !*found)) {
		if (job_session_close(j, rc ? &cerr : err))
			rc = -1;
	} else {
		job_session_idle(j);
	}
	return rc;
}

static int remember_key(struct mailbox *mb, const struct mailbox_item *it,
			void *ctx, struct ms_err *err)
{
	struct job *j = ctx;

	if (!j->probe_key && !(j->probe_key = strdup(it->key)))
		return err_nomem(err);
	return 0;
}

struct seen_ctx {
	struct job *j;
	int considered, matched;
	char *reason;
	struct ms_err err;
};

static void add_section(struct verify_result *res, const char *section)
{
	char *n;

	if (!section || strncasecmp(section, "Configuration", 13) != 0)
		return;
	if (res->matched) {
		/* already listed? sections are short, a substring test is enough
		 * when bounded by separators */
		size_t len = strlen(section);
		for (const char *p = res->matched; (p = strstr(p, section)); p += len)
			if ((p == res->matched || p[-1] == ' ') &&
			    (p[len] == 0 || p[len] == ','))
				return;
		n = verify_printf("%s, %s", res->matched, section);
	} else {
		n = verify_strdup(section);
	}
	if (n) {
		free(res->matched);
		res->matched = n;
	}
}

static void seen_report(void *ctx, enum connector_note note, const char *key,
			const char *section, const char *text)
{
	struct seen_ctx *s = ctx;
	struct verify_result *res = s->j->res;

	if (!key || !s->j->probe_key || strcmp(key, s->j->probe_key) != 0)
		return;
	switch (note) {
	case NOTE_MATCHED:
		s->considered = 1;
		s->matched = 1;
		add_section(res, section);
		break;
	case NOTE_REJECTED:
		s->considered = 1;
		free(s->reason);
		s->reason = verify_strdup(text ? text : "no rule matched");
		break;
	case NOTE_EVENT: {
		char **ne;
		if (res->n_events >= VERIFY_MAX_EVENTS)
			break;
		ne = realloc(res->events, (res->n_events + 1) * sizeof(*ne));
		if (!ne)
			break;
		res->events = ne;
		if ((ne[res->n_events] = verify_strdup(text ? text : "")))
			res->n_events++;
		add_section(res, section);
		break;
	}
	default:
		break;
	}
}

int job_step_seen(struct job *j)
{
	struct engine *e = j->e;
	struct ms_err err = MS_ERR_INIT;
	struct connector_run cr = { 0 };
	struct connector_summary sum;
	struct seen_ctx sc = { 0 };
	/* POP: only the session that lists the probe is worth keeping */
	enum keep keep = j->proto == PROTO_POP ? KEEP_IF_FOUND : KEEP_ALWAYS;
	long timeout = e->o->timeout_s > 0 ? e->o->timeout_s : 120;
	double poll = (e->o->poll_ms > 0 ? e->o->poll_ms : 2000) / 1000.0;
	double deadline = j->t_sent + (double)timeout;
	size_t found = 0, polls = 0;
	int rc;

	job_step_begin(j);
	/* poll read-only until the probe is listed */
	for (;;) {
		struct ms_err perr = MS_ERR_INIT;
		if (find_probe(j, 1, keep, remember_key, j, &found, &perr) == 0 && found)
			break;
		if (perr.code != MS_OK && !err_is_temporary(&perr) &&
		    perr.code != MS_ERR_PROTO) {
			job_step_fail(j, VSTEP_SEEN, &perr, NULL);
			return -1;
		}
		if (verify_mono_now() + poll > deadline || ++polls > VERIFY_MAX_POLLS) {
			job_step_fail_own(j, VSTEP_SEEN, MS_ERR_NET,
					  "the probe did not arrive in time",
					  "check the mail flow to this mailbox (transport "
					  "rules, quarantine, junk filtering) or raise --timeout",
					  verify_printf("probe %s not in %s after %ld s%s%s", j->res->probe_id,
							j->address, timeout,
							perr.code != MS_OK ? "; last poll: " : "",
							perr.code != MS_OK ? perr.msg : ""));
			return -1;
		}
		job_session_park(j, poll);
		verify_sleep_s(poll);
	}
	j->res->seen_after = verify_mono_now() - j->t_sent;
	/* the connector's own code, in dry-run mode */
	sc.j = j;
	cr.ini_path = j->res->ini;
	cr.dry_run = 1;
	cr.only_key = j->probe_key;   /* evaluate the probe, not the whole mailbox */
	cr.verbose = e->o->verbose;
	cr.report = seen_report;
	cr.report_ctx = &sc;
	/* the connector uses our session: both take the connection from
	 * profile_mailbox_params(), so it is the one it would open */
	if ((rc = j->mb ? 0 : job_session_get(j, j->sent_at - 300, 1, &err)) == 0) {
		job_session_hold(j);
		cr.mailbox = j->mb;
		rc = connector_run(&cr, &sum, &err);
		if (rc)
			job_session_close(j, NULL);   /* in an unknown state */
		else
			job_session_idle(j);
	}
	if (rc) {
		err_prefix(&err, "connector dry run");
		job_step_fail(j, VSTEP_SEEN, &err, NULL);
		free(sc.reason);
		return -1;
	}
	if (!sc.considered) {
		job_step_fail_own(j, VSTEP_SEEN, MS_ERR_CONFIG,
				  "the connector did not consider the probe",
				  "check [General] LastRunDate/UseLastRunDate and the "
				  "folder the connector reads",
				  verify_printf("the connector listed %ld message%s but did not "
						"evaluate probe %s (%s)", sum.listed,
						sum.listed == 1 ? "" : "s", j->res->probe_id,
						j->probe_key));
		free(sc.reason);
		return -1;
	}
	j->res->outcome = sc.matched ? verify_strdup("matched") :
		verify_printf("rejected: %s", sc.reason ? sc.reason : "no rule matched");
	if (e->o->subject && !sc.matched) {
		job_step_fail_own(j, VSTEP_SEEN, MS_ERR_CONFIG,
				  "no [ConfigurationN] of the INI file matched the probe's "
				  "subject",
				  "check SubjectLineMask, AllowedSenders and TimeFrame of the "
				  "rule that should match, or the --subject given",
				  verify_printf("probe \"%s\" rejected: %s", j->res->probe_subject,
						sc.reason ? sc.reason : "no rule matched"));
		free(sc.reason);
		return -1;
	}
	job_step_pass(j, VSTEP_SEEN,
		      verify_printf("probe seen after %.1f s; the connector %s it%s%s; %zu event%s "
				    "would be written", j->res->seen_after,
				    sc.matched ? "matched" : "rejected",
				    j->res->matched ? " by " : "",
				    j->res->matched ? j->res->matched : "",
				    j->res->n_events, j->res->n_events == 1 ? "" : "s"));
	free(sc.reason);
	return 0;
}

/* ---- step 6: cleanup ---------------------------------------------------------- */

static int delete_probe(struct mailbox *mb, const struct mailbox_item *it,
			void *ctx, struct ms_err *err)
{
	size_t *deleted = ctx;

	if (mailbox_delete(mb, it, err))
		return -1;
	(*deleted)++;
	return 0;
}

void job_step_cleanup(struct job *j)
{
	struct ms_err err = MS_ERR_INIT;
	size_t found = 0, deleted = 0;

	job_step_begin(j);
	/* the kept session: its close (QUIT for POP) commits the deletion */
	if (find_probe(j, 0, KEEP_NEVER, delete_probe, &deleted, &found, &err)) {
		job_step_fail(j, VSTEP_CLEANUP, &err, NULL);
		return;
	}
	if (deleted == 0 && j->probe_key) {
		job_step_fail_own(j, VSTEP_CLEANUP, MS_ERR_DATA,
				  "the probe was gone before it could be deleted",
				  "another program (a running connector?) processed the "
				  "mailbox meanwhile; nothing else was touched",
				  verify_printf("probe %s (%s) no longer in %s", j->res->probe_id,
						j->probe_key, j->address));
		return;
	}
	if (deleted == 0) {
		job_step_end(j, VSTEP_CLEANUP, VST_SKIP);
		j->res->steps[VSTEP_CLEANUP].message =
			verify_printf("probe %s never arrived: nothing deleted (delete it by "
				      "hand if it arrives later)", j->res->probe_id);
		return;
	}
	job_step_pass(j, VSTEP_CLEANUP, verify_printf("deleted %zu message%s: probe %s only",
		      deleted, deleted == 1 ? "" : "s",
		      j->res->probe_id));
}
