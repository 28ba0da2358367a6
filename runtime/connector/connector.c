/*
 * connector.c - one run of the connector (see connector.h).
 *
 * Why the order of work per message is what it is: the scheduler deletes
 * event files as it reads them, so a file in MSGIN cannot be checked later.
 * Events are therefore first written to a staging folder beside MSGIN (same
 * file system), their names committed to the state database, and only then
 * renamed into MSGIN.  rename(2) is atomic: after a crash a staged file that
 * still exists was not delivered, one that is gone was.  Deletion on the
 * server happens only after the state says DELIVERED.
 */
#include "connector/connector.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "connector/connector_int.h"
#include "mail/event.h"
#include "base/fsutil.h"
#include "ini/ini.h"
#include "ini/profile.h"
#include "auth/secret.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/message.h"
#include "base/platform.h"
#include "ini/rules.h"
#include "connector/state.h"

#define MESSAGE_CAP ((size_t)64 * 1024 * 1024)
#define FETCH_REFUSALS_MAX 3

/* LastRunDate is compared with the server's clock (INTERNALDATE,
 * receivedDateTime).  Mail up to this many seconds older than it is still
 * looked at, so a server clock behind ours loses nothing; the state
 * database keeps what was already processed from being processed again. */
#define LAST_RUN_SLACK 600

static time_t since_time(const struct config *c)
{
	if (!c->use_last_run_date || !c->last_run)
		return 0;
	return c->last_run > LAST_RUN_SLACK ? c->last_run - LAST_RUN_SLACK : 0;
}

void run_note(struct run *run, enum connector_note n, const char *key,
	      const char *section, const char *text)
{
	if (run->r->report)
		run->r->report(run->r->report_ctx, n, key, section, text);
}

/* ---- one message ----------------------------------------------------------- */

/* The fingerprint that ties a key to one message: its size and the header
 * block the server gave for it (the same bytes for the same message on
 * the same server, whatever its key). */
static int fingerprint(const struct mailbox_item *it, char out[STATE_HASH_LEN + 1],
		       struct ms_err *err)
{
	char size[32];

	snprintf(size, sizeof(size), "%zu", it->size);
	if (run_hash_hex(size, it->headers ? it->headers : "", out) ||
	    run_hash_hex(it->headers ? it->headers : "", size, out + 16))
		return err_nomem(err);
	return 0;
}

/* IMAP keys change with UIDVALIDITY, Graph ids when mail moves: the only
 * reasons a delivered message may be found under an older key.  family is
 * the key's protocol prefix, current the prefix of this generation. */
static int key_generation(const char *key, char *family, size_t fsz,
			  char *current, size_t csz)
{
	const char *c2;

	if (strncmp(key, "imap:", 5) == 0 && (c2 = strchr(key + 5, ':'))) {
		snprintf(family, fsz, "imap:");
		snprintf(current, csz, "%.*s", (int)(c2 - key + 1), key);
		return 1;
	}
	if (strncmp(key, "graph:", 6) == 0) {
		snprintf(family, fsz, "graph:");
		snprintf(current, csz, "%s", key);
		return 1;
	}
	return 0;   /* POP3: a UIDL has no generation */
}

/* Work left by an interrupted run for a key that now names another
 * message: its staged events belong to the old message and are delivered;
 * nothing is deleted (the old message is gone, the new one is not ours). */
static int settle_foreign(struct run *run, const char *key,
			  const struct state_row *row, struct ms_err *err)
{
	if (row->state == MSG_STAGED && run_deliver_staged(run, key, err))
		return -1;
	if (row->state == MSG_STAGED || row->state == MSG_DELIVERED)
		return state_set(run->state, run->mailbox_id, key, MSG_DONE, 0, err);
	return 0;
}

/* 1 when the mailbox may hold a row of an older key generation (then the
 * Message-ID fallback is worth a lookup), 0 when not, -1 with err.  For
 * IMAP the answer is the same for the whole run (one UIDVALIDITY): asked
 * once; a Graph key is its own generation, so it is always 1. */
static int older_generation(struct run *run, const char *family,
			    const char *current, struct ms_err *err)
{
	int yes = 0;

	if (strcmp(family, "imap:") != 0)
		return 1;
	if (strcmp(run->gen_checked, current) == 0)
		return run->gen_older;
	if (state_has_other_generation(run->state, run->mailbox_id, family, current,
				       &yes, err))
		return -1;
	snprintf(run->gen_checked, sizeof(run->gen_checked), "%s", current);
	run->gen_older = yes;
	return yes;
}

enum verdict { V_NEW, V_RETRY, V_REEVAL, V_DONE };

/* A listed message whose row (of this message) says it is finished:
 * counted and noted, nothing to parse, write or fetch; 1 then, 0 when the
 * row asks for more (classify()). */
static int known_done(struct run *run, const char *key,
		      const struct state_row *row)
{
	switch (row->state) {
	case MSG_DONE:
		if (row->deleted || (!row->matched && row->rules[0] &&
				     strcmp(row->rules, run->rules_hash) != 0))
			return 0;   /* a DELE to repeat, rules to apply again */
		run->sum->skipped++;
		run_note(run, NOTE_SKIPPED, key, NULL, NULL);
		return 1;
	case MSG_QUARANTINED:
		run->sum->skipped++;
		run->quarantined_seen++;
		return 1;
	case MSG_PRIOR:
		run->sum->skipped++;
		return 1;
	default:
		return 0;
	}
}

/* What the state says of a listed message (not in a dry run), given its
 * row from state_peek().  May settle an interrupted run's work and choose
 * a key of its own for mail listed under a reused key (m->key then points
 * into keybuf). */
static int classify(struct run *run, struct msg_ctx *m, char *keybuf,
		    size_t kbsz, enum verdict *v, struct state_row *row,
		    struct ms_err *err)
{
	const struct message *h = m->msg;

	*v = V_DONE;
	if (row->same < 0 &&   /* a row from before fingerprints */
	    state_get(run->state, run->mailbox_id, m->key, h->message_id, m->fp,
		      row, err))
		return -1;
	if (row->state != MSG_UNKNOWN && !row->same) {
		/* a POP3 UIDL handed to new mail, two messages under one
		 * UIDL, an IMAP server reset that kept UIDVALIDITY */
		log_warnx("%s: %s now names another message than the one recorded "
			  "under it: treated as a new message", run->mailbox_id, m->key);
		if (settle_foreign(run, m->key, row, err))
			return -1;
		snprintf(keybuf, kbsz, "%s#%.16s", m->key, m->fp);
		m->key = keybuf;
		if (state_get(run->state, run->mailbox_id, m->key, h->message_id,
			      m->fp, row, err))
			return -1;
	}
	if (known_done(run, m->key, row))
		return 0;
	switch (row->state) {
	case MSG_UNKNOWN: {
		char fam[16], cur[512];
		enum msg_state moved = MSG_UNKNOWN;

		if (key_generation(m->key, fam, sizeof(fam), cur, sizeof(cur)) &&
		    older_generation(run, fam, cur, err) == 1 &&
		    state_find_moved(run->state, run->mailbox_id, fam, cur,
				     h->message_id, m->fp, &moved, err))
			return -1;
		if (err->code != MS_OK)
			return -1;
		if (moved != MSG_UNKNOWN) {
			run->sum->skipped++;
			run_note(run, NOTE_SKIPPED, m->key, NULL, h->subject);
			return 0;
		}
		*v = V_NEW;
		return 0;
	}
	case MSG_STAGED:
	case MSG_DELIVERED:
		/* an interrupted run left this one half done */
		if (row->state == MSG_STAGED &&
		    (run_deliver_staged(run, m->key, err) ||
		     state_set(run->state, run->mailbox_id, m->key, MSG_DELIVERED,
			       0, err)))
			return -1;
		run_note(run, NOTE_RECOVERED, m->key, NULL, h->subject);
		run->sum->skipped++;
		if (row->matched)
			run->sum->recovered_matched++;
		return run_finish_message(run, m->it, m->key, row->matched, err);
	case MSG_DONE:
		if (row->deleted) {
			/* recorded as deleted yet still here: a POP session
			 * died before QUIT committed the DELE */
			run->sum->skipped++;
			return run_delete_message(run, m->it, m->key, err);
		}
		*v = V_REEVAL;     /* the rules changed since its rejection */
		return 0;
	case MSG_FAILED:
		*v = V_RETRY;
		return 0;
	default:
		run->sum->skipped++;
		return 0;
	}
}

/* 1 when a configuration decides on attachment names (a list the parser
 * cut short must not decide). */
static int rules_use_attachments(const struct config *c)
{
	for (size_t i = 0; i < c->n_rules; i++)
		if (c->rules[i].process_attachments && c->rules[i].attachment_mask)
			return 1;
	return 0;
}

/* Fetch and parse the whole message when the rules or DownloadEmails
 * need it (m->msg then points at full).  0: done; 1: this message fails
 * (merr); -1: the run stops (merr). */
static int fetch_body(struct run *run, struct msg_ctx *m, struct message *full,
		      struct buf *raw, int want_download, int *have_raw,
		      struct ms_err *merr)
{
	if (!rules_need_body(run->rules, m->msg, m->received) && !want_download)
		return 0;
	if (mailbox_fetch_message(run->mb, m->it, raw, merr)) {
		if (!run_message_error(merr))
			return -1;
		if (merr->code == MS_ERR_PROTO &&
		    ++run->fetch_refusals >= FETCH_REFUSALS_MAX) {
			/* not this message: the server (nothing more is
			 * counted against the messages) */
			err_prefix(merr, "%d messages in a row could not be "
				   "fetched, the last", FETCH_REFUSALS_MAX);
			return -1;
		}
		return 1;
	}
	run->fetch_refusals = 0;
	if (message_parse(full, raw->data, raw->len, 0, want_download, merr))
		return merr->code == MS_ERR_NOMEM ? -1 : 1;
	*have_raw = 1;
	run->sum->bodies++;
	m->msg = full;
	if (full->limit) {
		log_warnx("message %s: %s: read in part", m->key, full->limit);
		if (rules_use_attachments(&run->cfg)) {
			err_set(merr, MS_ERR_DATA, "%s: the attachment list "
				"is incomplete, so AttachmentMask cannot "
				"decide", full->limit);
			return 1;
		}
	}
	return 0;
}

/* The events of a judged message into pend: those of its matched rules,
 * or [Audit] RejectEvent for a rejected one.  -1 with merr when one
 * cannot be rendered. */
static int collect_events(struct run *run, const struct msg_ctx *m,
			  const struct rule_result *res, struct pending *pend,
			  struct ms_err *merr)
{
	struct event_fields f = { 0 };
	char *ev = NULL;
	int rc;

	for (size_t i = 0; i < res->n_rules; i++) {
		const struct rule_outcome *o = &res->rules[i];
		for (size_t j = 0; o->matched && j < o->n_events; j++)
			if (run_pending_add(run, pend, o->section, o->events[j], merr))
				return -1;
	}
	if (res->matched || !rules_reject_event(run->rules))
		return 0;
	f.sender = m->msg->from_addr;
	f.subject = m->msg->subject;
	f.date = res->date;
	f.reason = res->reason;
	rc = event_substitute(rules_reject_event(run->rules), &f, SUBST_EVENT,
			      &ev, merr) ||
	     run_pending_add(run, pend, "Audit", ev, merr) ? -1 : 0;
	free(ev);
	return rc;
}

/* Count and report the verdict and the events it writes. */
static void note_outcome(struct run *run, const struct msg_ctx *m,
			 const struct rule_result *res, const struct pending *pend)
{
	if (res->matched) {
		run->sum->matched++;
		for (size_t i = 0; i < res->n_rules; i++)
			if (res->rules[i].matched)
				run_note(run, NOTE_MATCHED, m->key, res->rules[i].section,
					 m->msg->subject);
	} else {
		run->sum->rejected++;
		run_note(run, NOTE_REJECTED, m->key, NULL, res->reason);
	}
	for (size_t i = 0; i < pend->n; i++)
		run_note(run, NOTE_EVENT, m->key, pend->sections[i], pend->redacted[i]);
	run->sum->events += (long)pend->n;
}

/* A judged message (not a dry run): its events staged and left to its
 * group's delivery; without events, logged, notified, deleted when due
 * and recorded at once. */
static int settle_message(struct run *run, const struct msg_ctx *m,
			  const char *message_id, const struct rule_result *res,
			  struct pending *pend, struct ms_err *err)
{
	int del;

	if (pend->n) {
		char **names = NULL;

		if (run_stage_events(run, m, pend, res->matched, &names, err))
			return -1;
		/* delivered with its group */
		return run_group_add(run, m, res->matched, names, pend, res, err);
	}
	/* no events: nothing to deliver, nothing to wait for; a crash
	 * before the record costs a second look at the message, no event */
	run_audit_line(run, res->matched ? EVENT_LOG_ACCEPT : EVENT_LOG_REJECT,
		       m->msg->from_addr, m->msg->subject, res->date, NULL,
		       res->matched ? NULL : res->reason);
	connector_notify(run->r, &run->cfg, m->msg, res);
	del = run_delete_due(run, res->matched);
	if (del && run_delete_message(run, m->it, m->key, err))
		return -1;
	return state_done(run->state, run->mailbox_id, m->key, message_id, m->fp,
			  run->rules_hash, res->matched, del, err);
}

static int process_message(struct run *run, const struct mailbox_item *it,
			   struct ms_err *err)
{
	struct message hdr = { 0 }, full = { 0 };
	struct rule_result res = { 0 };
	struct pending pend = { 0 };
	struct state_row row = { 0 };
	struct msg_ctx m = { 0 };
	struct ms_err merr = MS_ERR_INIT;   /* a failure of this message only */
	struct buf raw;
	enum verdict v = V_NEW;
	char keybuf[600];
	int rc = -1, have_raw = 0, want_download;

	buf_init(&raw, MESSAGE_CAP);
	m.it = it;
	m.key = it->key;
	m.msg = &hdr;
	if (fingerprint(it, m.fp, err))
		goto out;
	if (!run->r->dry_run) {
		/* the same key twice in one listing: the first one delivered
		 * before the second is judged against its record */
		if (run_in_group(run, it->key) && run_group_deliver(run, err))
			goto out;
		/* a known message needs neither its headers parsed nor more
		 * than this lookup: a steady-state poll is mostly these */
		if (state_peek(run->state, run->mailbox_id, m.key, m.fp, &row, err))
			goto out;
		if (row.same == 1 && known_done(run, m.key, &row)) {
			rc = 0;
			goto out;
		}
	}
	if (message_parse(&hdr, it->headers ? it->headers : "", it->headers_len,
			  1, 0, err))
		goto out;
	m.received = it->received ? it->received : (hdr.has_date ? hdr.date : 0);
	if (!run->r->dry_run) {
		if (classify(run, &m, keybuf, sizeof(keybuf), &v, &row, err))
			goto out;
		if (v == V_DONE) {
			rc = 0;
			goto out;
		}
	}
	if (v == V_NEW && since_time(&run->cfg) && m.received &&
	    m.received < since_time(&run->cfg)) {
		rc = 0;     /* older than LastRunDate: the incumbent ignores it */
		goto out;
	}
	if (v == V_NEW && run->prior_before && m.received &&
	    m.received < run->prior_before) {
		/* a first run: the incumbent handled what came before its
		 * LastRunDate */
		run->sum->prior++;
		rc = state_prior(run->state, run->mailbox_id, m.key, hdr.message_id,
				 m.fp, err);
		goto out;
	}
	snprintf(m.seed, sizeof(m.seed), "%s|%s|%d|%s", m.key,
		 strcmp(m.key, it->key) ? m.fp : "", row.attempts,
		 v == V_REEVAL ? row.rules : "");
	run->sum->considered++;
	if (!m.received)
		m.received = time(NULL);

	want_download = run->cfg.download_emails && run->cfg.download_folder;
	switch (fetch_body(run, &m, &full, &raw, want_download, &have_raw, &merr)) {
	case -1:
		goto fatal;
	case 1:
		goto failed;
	}
	if (rules_evaluate(run->rules, m.msg, m.received, &res, &merr)) {
		if (merr.code == MS_ERR_NOMEM)
			goto fatal;
		goto failed;
	}
	if (v == V_REEVAL && !res.matched) {
		/* still rejected under the new rules: noted once, quietly */
		run->sum->skipped++;
		rc = state_done(run->state, run->mailbox_id, m.key, hdr.message_id,
				m.fp, run->rules_hash, 0, 0, err);
		goto out;
	}
	if (collect_events(run, &m, &res, &pend, &merr))
		goto failed_event;
	if (res.matched && have_raw && want_download && !run->r->dry_run &&
	    run_download(run, m.seed, &full, &raw, &merr))
		goto failed;

	note_outcome(run, &m, &res, &pend);
	rc = run->r->dry_run ? 0 :
		settle_message(run, &m, hdr.message_id, &res, &pend, err);
	goto out;

failed_event:
	if (merr.code == MS_ERR_NOMEM)
		goto fatal;
failed:
	rc = run_fail_message(run, &m, &merr, err);
	goto out;
fatal:
	*err = merr;
out:
	if (rc && err->code != MS_OK)
		err_prefix(err, "message %s", m.key);
	run_pending_release(&pend);
	rules_result_release(&res);
	message_release(&hdr);
	message_release(&full);
	buf_wipe(&raw);
	return rc;
}

/* ---- setup ------------------------------------------------------------- */

/* Remove temporary files that a killed run left in the staging folder
 * (".NAME.tmp.PID.N" from fs_write_atomic) when PID is gone: every one
 * there is a connector's. */
static void clean_staging(const char *dir)
{
	fs_clean_dead_temps(dir, NULL, NULL);
}

static int apply_overrides(struct run *run, struct ms_err *err)
{
	const struct connector_run *r = run->r;
	struct config *c = &run->cfg;

	if (r->server) {
		free(c->server);
		if (!(c->server = strdup(r->server)))
			return err_nomem(err);
	}
	if (r->port)
		c->port = r->port;
	if (r->protocol != PROTO_UNSET)
		c->protocol = r->protocol;
	if (r->tls != TLSL_UNSET)
		c->tls_min = r->tls;
	if (r->msal) {
		/* --msal with an [OAuth] section: Microsoft 365 through it,
		 * Graph unless EmailProtocol says IMAP or POP */
		if (!c->has_oauth)
			return err_set(err, MS_ERR_CONFIG,
				       "%s: --msal needs an [OAuth] section (TenantId, "
				       "ClientId, ClientSecret or CertificateFile): the "
				       "incumbent's delegated MSAL cache cannot be used",
				       c->path);
		if (c->protocol != PROTO_IMAP && c->protocol != PROTO_POP)
			c->protocol = PROTO_GRAPH;
		c->auth = AUTH_OAUTH2;
	}
	if (c->protocol == PROTO_MSAL) {
		if (!c->has_oauth)
			return err_set(err, MS_ERR_CONFIG,
				       "%s: EmailProtocol=MSAL needs an [OAuth] section",
				       c->path);
		c->protocol = PROTO_GRAPH;
	}
	if (c->protocol == PROTO_GRAPH)
		c->auth = AUTH_OAUTH2;
	run->delete_mode = c->delete_mode;
	if (r->delete_mail && run->delete_mode == DELETE_NONE)
		run->delete_mode = DELETE_MATCH;
	return 0;
}

static int validate(struct run *run, struct ms_err *err)
{
	const struct config *c = &run->cfg;

	if (c->protocol == PROTO_UNSET)
		return err_set(err, MS_ERR_CONFIG,
			       "%s: [Mail] EmailProtocol is not set (IMAP, POP or GRAPH)",
			       c->path);
	if (c->protocol != PROTO_GRAPH && !c->server)
		return err_set(err, MS_ERR_CONFIG, "%s: [Mail] Server is not set", c->path);
	if (!c->user)
		return err_set(err, MS_ERR_CONFIG, "%s: [Mail] User is not set", c->path);
	if (!run->r->dry_run && !c->msgin_dir)
		return err_set(err, MS_ERR_CONFIG,
			       "%s: [General] MSGINDirectory is not set", c->path);
	if (c->n_rules == 0)
		return err_set(err, MS_ERR_CONFIG,
			       "%s: no [Configuration1] section: nothing to match",
			       c->path);
	return 0;
}

static int same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* 1 when the caller's open session is the one p would open. */
static int session_matches(const struct mailbox_params *have,
			   const struct mailbox_params *want, int oauth)
{
	enum mail_protocol hp = have->protocol == PROTO_MSAL ? PROTO_GRAPH :
		have->protocol;
	int graph = want->protocol == PROTO_GRAPH;

	if (hp != want->protocol || !same_str(have->user, want->user) ||
	    (oauth ? !have->token_fn : !have->password) ||
	    have->verify_peer != want->verify_peer ||
	    !same_str(have->ca_file, want->ca_file))
		return 0;
	if (graph)
		return same_str(have->graph_endpoint, want->graph_endpoint);
	return same_str(have->host, want->host) && have->port == want->port &&
		have->tls == want->tls && have->tls_min == want->tls_min &&
		same_str(have->folder, want->folder);
}

/* The mailbox's name in the state database: "imap://host:port/user/folder"
 * ("graph" for the host of a Microsoft Graph mailbox). */
static int name_mailbox(struct run *run, struct ms_err *err)
{
	const struct config *c = &run->cfg;
	struct mailbox_params p = { 0 };

	profile_mailbox_params(c, &p);
	if (asprintf(&run->mailbox_id, "%s://%s:%d/%s/%s",
		     config_protocol_name(c->protocol), p.host ? p.host : "graph",
		     p.port, p.user, p.folder) < 0) {
		run->mailbox_id = NULL;
		return err_nomem(err);
	}
	return 0;
}

static int open_mailbox(struct run *run, struct ms_err *err)
{
	const struct config *c = &run->cfg;
	struct mailbox_params p = { 0 };
	char *password = NULL;
	int rc;

	profile_mailbox_params(c, &p);
	/* --retry-failed lists the whole folder: a quarantined message may be
	 * older than LastRunDate (new mail is still held to it) */
	p.since = run->r->retry_failed ? 0 : since_time(c);
	p.deadline = run->deadline;
	p.verbose = run->r->verbose;
	p.read_only = run->r->dry_run;
	if (c->self_signed && c->tls_min != TLSL_NONE)
		log_warnx("%s: SelfSignedCertificate=True: the server's certificate "
			  "is not verified", c->path);
	if (run->r->mailbox &&
	    session_matches(mailbox_params_of(run->r->mailbox), &p,
			    profile_uses_oauth(c))) {
		run->mb = run->r->mailbox;
		run->mb_borrowed = 1;
		run->sum->reused_mailbox = 1;
		return mailbox_reuse(run->mb, p.since, p.read_only, err);
	}
	if (run->r->mailbox)
		log_debug("%s: the session handed over is not the one this INI file "
			  "names: opening another", c->path);
	if (profile_uses_oauth(c)) {
		if (run->r->token_fn) {
			p.token_fn = run->r->token_fn;
			p.token_ctx = run->r->token_ctx;
		} else if (connector_oauth_setup(run->r, c, &p, &run->oauth, err)) {
			return -1;
		}
	} else {
		if (!c->password)
			return err_set(err, MS_ERR_CONFIG, "%s: [Mail] Password is not set",
				       c->path);
		if (profile_secret_resolve(c->password, "[Mail] Password", c->path,
					   &password, err))
			return -1;
		p.password = password;
	}
	rc = mailbox_open(&run->mb, &p, err);
	secret_free(password);
	return rc;
}

struct hash_walk {
	EVP_MD_CTX *ctx;
};

static int hash_key(const char *key, const char *value, int line, void *ctx)
{
	struct hash_walk *hw = ctx;

	(void)line;
	EVP_DigestUpdate(hw->ctx, key, strlen(key));
	EVP_DigestUpdate(hw->ctx, "=", 1);
	EVP_DigestUpdate(hw->ctx, value ? value : "", value ? strlen(value) : 0);
	EVP_DigestUpdate(hw->ctx, "\n", 1);
	return 0;
}

/* The one rule for where a run's state database is: --state:, [State]
 * StateDatabase, else beside the INI file. */
static char *state_path_for(const char *given, const struct config *c,
			    const char *ini_path)
{
	char *p = NULL;

	if (given)
		return strdup(given);
	if (c->state_db)
		return strdup(c->state_db);
	if (asprintf(&p, "%s.state.db", ini_path) < 0)
		return NULL;
	return p;
}

/* A hash of what judges mail ([Tokens] and every [ConfigurationN]), kept
 * with each rejection so that kept rejected mail is judged again, once,
 * when the rules change. */
static void rules_hash(const struct ini *ini, char out[STATE_HASH_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t n = ini_section_count(ini);

	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (size_t i = 0; i < n; i++) {
		const char *sec = ini_section_name(ini, i);
		struct hash_walk hw = { ctx };

		if (strcasecmp(sec, "Tokens") != 0 &&
		    strncasecmp(sec, "Configuration", 13) != 0)
			continue;
		EVP_DigestUpdate(ctx, "[", 1);
		EVP_DigestUpdate(ctx, sec, strlen(sec));
		EVP_DigestUpdate(ctx, "]\n", 2);
		ini_foreach_key(ini, sec, hash_key, &hw);
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	for (int i = 0; i < STATE_HASH_LEN / 2; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Where events wait before the rename into MSGIN: beside it, so that
 * OpCon never sees them, unless MSGIN is a file system of its own (a
 * mount, a symlink to another disk): then in a hidden folder inside it,
 * since rename(2) cannot cross file systems. */
static char *staging_for(const char *msgin)
{
	char *beside = run_staging_dir_for(msgin), *parent, *slash;
	struct stat a, b;
	int same = 1;

	if (!beside)
		return NULL;
	parent = strdup(beside);
	if (!parent) {
		free(beside);
		return NULL;
	}
	slash = (char *)platform_last_sep(parent);
	if (slash)
		*(slash == parent ? slash + 1 : slash) = '\0';
	else
		strcpy(parent, ".");
	if (stat(parent, &a) == 0 && stat(msgin, &b) == 0 && a.st_dev != b.st_dev)
		same = 0;
	free(parent);
	if (same)
		return beside;
	free(beside);
	log_debug("MSGIN '%s' is a file system of its own: staging events inside it",
		  msgin);
	return fs_join(msgin, ".mailshift-staging");
}

static int write_last_run(struct run *run, time_t started, struct ms_err *err)
{
	char when[64];

	if (!run->cfg.use_last_run_date || run->r->dry_run)
		return 0;
	/* a failed message must be listed again by the next run */
	if (run->oldest_failed && run->oldest_failed < started)
		started = run->oldest_failed;
	config_format_run_date(started, when, sizeof(when));
	if (ini_set(run->ini, "General", "LastRunDate", when, err) ||
	    ini_save(run->ini, run->r->ini_path, err))
		return err_prefix(err, "cannot write LastRunDate into '%s'",
				  run->r->ini_path);
	return 0;
}

/* Before the first message: what the state database knows of this
 * mailbox.  An empty one (new, emptied, lost) on a mailbox whose INI has a
 * LastRunDate means the incumbent, or an earlier run, handled the mail
 * before that date: it is left alone, and the run says so. */
static int prepare_state(struct run *run, struct ms_err *err)
{
	int empty = 0;
	long n = 0;
	char when[64];

	if (state_mailbox_empty(run->state, run->mailbox_id, &empty, err))
		return -1;
	if (empty && run->cfg.last_run) {
		run->prior_before = run->cfg.last_run;
		config_format_run_date(run->cfg.last_run, when, sizeof(when));
		log_warnx("%s: the state database holds nothing for %s (new, emptied "
			  "or lost): mail received before LastRunDate (%s) is taken as "
			  "already handled and left alone", run->r->ini_path,
			  run->mailbox_id, when);
	}
	if (run->r->retry_failed) {
		if (state_retry_quarantined(run->state, run->mailbox_id, &n, err))
			return -1;
		log_info("%ld quarantined message%s tried again", n, n == 1 ? "" : "s");
	}
	return state_batch_begin(run->state, err);
}

/* The messages of one run, each on its own: a message that fails is
 * recorded and the others go on; the run stops at an error of the
 * session, MSGIN or the state, or when RunTimeout runs out. */
static int process_all(struct run *run, struct mailbox_item *items, size_t n,
		       struct ms_err *err)
{
	for (size_t i = 0; i < n; i++) {
		if (run->r->only_key && strcmp(run->r->only_key, items[i].key) != 0)
			continue;
		if (run->deadline && time(NULL) >= run->deadline) {
			/* what is staged is delivered (a short grace for
			 * its deletions), the rest waits for the next run */
			if (run->mb && !run->mb_borrowed)
				mailbox_set_deadline(run->mb, time(NULL) + 30);
			if (run_group_deliver(run, err))
				return -1;
			return err_set(err, MS_ERR_NET, "the run's time limit ([General] "
				       "RunTimeout=%d s) ran out after %zu of %zu messages: "
				       "the rest are left for the next run",
				       run->cfg.run_timeout, i, n);
		}
		if (process_message(run, &items[i], err))
			return -1;
	}
	return run_group_deliver(run, err);
}

/* Name the stage a run was in when its time ran out. */
static void stage_error(struct run *run, const char *stage, struct ms_err *err)
{
	if (run->deadline && time(NULL) >= run->deadline)
		err_prefix(err, "while %s", stage);
}

/* What the INI file says that the run cannot use: notify mails that
 * cannot go out, keys nobody reads. */
static void warn_config(const struct config *c, const char *ini_path)
{
	if (config_notify_problem(c))
		log_warnx("%s: %s is set but %s: no notify mail will be sent",
			  ini_path, c->notify_on_accepts ?
			  (c->notify_on_rejects ? "NotifyOnAccepts/NotifyOnRejects" :
			   "NotifyOnAccepts") : "NotifyOnRejects",
			  config_notify_problem(c));
	for (size_t i = 0; i < c->n_unknown_keys; i++) {
		char text[512];

		config_unknown_key_text(&c->unknown_keys[i], text, sizeof(text));
		log_warnx("%s:%d: %s", ini_path, c->unknown_keys[i].line, text);
	}
}

/* The state database's lock, for a run that writes (not a dry run), taken
 * before anything else: a run that finds another one at work stops before
 * it logs in.  *state_path is the caller's to free. */
static int lock_state(struct run *run, char **state_path, struct ms_err *err)
{
	const struct connector_run *r = run->r;

	if (!(*state_path = state_path_for(r->state_path, &run->cfg, r->ini_path)))
		return err_nomem(err);
	return state_lock(&run->state, *state_path, err);
}

/* Then MSGIN, the staging folder beside it and the database itself. */
static int open_state(struct run *run, struct ms_err *err)
{
	if (fs_mkdirs(run->cfg.msgin_dir, 0750, err))
		return -1;
	if (!(run->staging = staging_for(run->cfg.msgin_dir)))
		return err_nomem(err);
	if (fs_mkdirs(run->staging, 0700, err) ||
	    state_open_locked(run->state, err))
		return -1;
	state_set_precommit(run->state, run_sync_staging, run);
	if (!(run->ready = calloc(GROUP_MAX, sizeof(*run->ready))))
		return err_nomem(err);
	clean_staging(run->staging);
	return 0;
}

/* The state database is opened, and the mailbox's rows read into memory,
 * while the login waits on the server: a steady-state poll's lookups are
 * then answered from memory, and neither delays the other.  Until
 * state_job_join() the database is the thread's alone; the token cache,
 * which the login may use, has a connection of its own, so this needs
 * SQLite built for threads (else, and when no thread can start, it is
 * done in line, before the login, as it always was). */
struct state_job {
	struct run *run;
	struct ms_err err;
	int rc, threaded;
	pthread_t th;
};

static void state_job_run(struct state_job *j)
{
	j->rc = open_state(j->run, &j->err) ||
		state_preload(j->run->state, j->run->mailbox_id, STATE_PRELOAD_MAX,
			      &j->err) ? -1 : 0;
}

static void *state_job_main(void *v)
{
	state_job_run(v);
	return NULL;
}

static void state_job_start(struct state_job *j, struct run *run)
{
	memset(j, 0, sizeof(*j));
	j->run = run;
	j->err = (struct ms_err)MS_ERR_INIT;
	j->threaded = state_thread_safe() &&
		pthread_create(&j->th, NULL, state_job_main, j) == 0;
	if (!j->threaded)
		state_job_run(j);
}

/* 0, or -1 with the state's error in *err (it comes first: without the
 * thread, the run would have stopped at it before logging in). */
static int state_job_join(struct state_job *j, struct ms_err *err)
{
	if (j->threaded)
		pthread_join(j->th, NULL);
	j->threaded = 0;
	if (!j->rc)
		return 0;
	if (err->code)
		log_debug("%s", err->msg);   /* the login's, which waits its turn */
	*err = j->err;
	return -1;
}

int connector_run(const struct connector_run *r, struct connector_summary *sum,
		  struct ms_err *err)
{
	struct state_job job;
	struct run run = { 0 };
	struct mailbox_item *items = NULL;
	size_t n = 0;
	char *state_path = NULL;
	time_t started = time(NULL);
	int rc = -1;

	memset(sum, 0, sizeof(*sum));
	run.r = r;
	run.sum = sum;
	message_library_init();
	if (ini_load(&run.ini, r->ini_path, err) || ini_check(run.ini, err) ||
	    config_from_ini(&run.cfg, run.ini, r->ini_path, err))
		goto out;
	sum->exit_code_no_match = run.cfg.exit_code_no_match;
	run.deadline = started + run.cfg.run_timeout;
	rules_hash(run.ini, run.rules_hash);
	warn_config(&run.cfg, r->ini_path);
	if (apply_overrides(&run, err) || validate(&run, err) ||
	    rules_compile(&run.rules, &run.cfg, err)) {
		if (err->code == MS_ERR_CONFIG && err->line &&
		    !strstr(err->msg, r->ini_path))
			err_prefix(err, "%s:%d", r->ini_path, err->line);
		goto out;
	}
	/* broken configurations were left out: say so now, and exit 2 at
	 * the end, after the good ones did their work */
	for (size_t i = 0; i < rules_warning_count(run.rules); i++)
		log_warnx("%s", rules_warning(run.rules, i));
	sum->config_broken = (long)rules_warning_count(run.rules);
	if (run.cfg.opcon_password &&
	    profile_secret_resolve(run.cfg.opcon_password,
				   "[General] OpConUserPassword", r->ini_path,
				   &run.opcon_password, err))
		goto out;
	if (name_mailbox(&run, err))
		goto out;
	if (!r->dry_run) {
		if (lock_state(&run, &state_path, err))
			goto out;
		state_job_start(&job, &run);
	}
	rc = open_mailbox(&run, err);
	if (!r->dry_run && state_job_join(&job, err)) {
		rc = -1;
		goto out;
	}
	if (rc) {
		stage_error(&run, "logging in", err);
		goto out;
	}
	rc = -1;
	if (run.state && prepare_state(&run, err))
		goto out;
	if (mailbox_list(run.mb, &items, &n, err) ||
	    mailbox_fetch_headers(run.mb, err)) {
		stage_error(&run, "listing the folder", err);
		goto out;
	}
	sum->listed = (long)n;
	if (process_all(&run, items, n, err))
		goto out;
	sum->quarantined_kept = run.quarantined_seen;
	rc = 0;
out:
	if (run.n_ready) {
		/* a run stopped by an error still delivers the events it has
		 * staged; what cannot be finished now, the next run finishes */
		struct ms_err gerr = MS_ERR_INIT;

		if (run_group_deliver(&run, &gerr))
			log_debug("%s: staged events left for the next run: %s",
				  r->ini_path, gerr.msg);
	}
	if (run.state) {
		struct ms_err serr = MS_ERR_INIT;
		if (state_batch_end(run.state, rc ? &serr : err))
			rc = -1;
	}
	if (run.mb && !run.mb_borrowed) {
		struct ms_err cerr = MS_ERR_INIT;
		/* the QUIT that commits POP3 deletions is sent even when the
		 * run's time ran out */
		mailbox_set_deadline(run.mb, run.deadline ? time(NULL) + 30 : 0);
		if (mailbox_close(run.mb, rc ? &cerr : err))
			rc = -1;
	}
	if (rc == 0)
		rc = write_last_run(&run, started, err);
	state_close(run.state);
	if (run.ready) {
		run_group_release(&run);
		free(run.ready);
	}
	run_forget_unsynced(&run);
	free(run.unsynced);
	connector_oauth_free(run.oauth);
	rules_free(run.rules);
	config_release(&run.cfg);
	ini_free(run.ini);
	free(run.mailbox_id);
	free(run.staging);
	secret_free(run.opcon_password);
	free(state_path);
	return rc;
}

struct failed_walk {
	connector_failed_fn fn;
	void *ctx;
};

static int failed_row(const struct state_failed_row *row, void *ctx)
{
	struct failed_walk *fw = ctx;
	struct connector_failed f;

	f.mailbox = row->mailbox;
	f.key = row->key;
	f.subject = row->subject;
	f.sender = row->sender;
	f.reason = row->reason;
	f.quarantined = row->state == MSG_QUARANTINED;
	f.attempts = row->attempts;
	f.first_seen = row->first_seen;
	f.updated = row->updated;
	return fw->fn(fw->ctx, &f);
}

int connector_list_failed(const char *ini_path, const char *state_path,
			  connector_failed_fn fn, void *ctx, struct ms_err *err)
{
	struct config cfg;
	struct state *st = NULL;
	struct failed_walk fw = { fn, ctx };
	char *path = NULL;
	int rc = -1;

	if (config_load(&cfg, ini_path, err))
		return -1;
	if (!(path = state_path_for(state_path, &cfg, ini_path))) {
		err_nomem(err);
		goto out;
	}
	if (!fs_exists(path)) {
		rc = 0;     /* no run yet: nothing failed */
		goto out;
	}
	if (state_open(&st, path, err))
		goto out;
	rc = state_failed_foreach(st, failed_row, &fw, err);
out:
	state_close(st);
	free(path);
	config_release(&cfg);
	return rc;
}

int connector_exit_code(int rc, const struct connector_summary *sum)
{
	if (rc || sum->failed || sum->config_broken)
		return 2;
	/* mail an interrupted run matched and this one finished counts */
	if (sum->matched > 0 || sum->recovered_matched > 0)
		return 0;
	return sum->exit_code_no_match;
}
