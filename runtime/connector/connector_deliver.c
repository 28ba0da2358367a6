/*
 * connector_deliver.c - what becomes of a message once the connector has
 * judged it: its events staged, committed and renamed into MSGIN (one
 * group of up to GROUP_MAX messages at a time), its audit-log lines, its
 * downloads, its deletion on the server; or, when it cannot be processed,
 * its failure, RejectEvent and quarantine.  The order of these steps is
 * the exactly-once contract explained at the top of connector.c.
 */
#include "connector/connector.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/mem.h"
#include "connector/connector_int.h"
#include "mail/event.h"
#include "base/fsutil.h"
#include "ini/ini.h"
#include "ini/profile.h"
#include "auth/secret.h"
#include "base/log.h"
#include "mail/message.h"
#include "base/platform.h"
#include "ini/rules.h"
#include "base/digest.h"
#include "connector/state.h"

/* ---- file names ------------------------------------------------------- */

int run_hash_hex(const char *a, const char *b, char out[17])
{
	unsigned char md[DIGEST_SHA256_LEN];
	struct digest_part p[3] = { { a, strlen(a) }, { "\n", 1 }, { b, strlen(b) } };

	if (digest_sha256(p, 3, md))
		return -1;
	digest_hex(md, 8, out);
	return 0;
}

char *run_staging_dir_for(const char *msgin)
{
	char *copy = strdup(msgin), *slash, *out = NULL;
	size_t n;

	if (!copy)
		return NULL;
	n = strlen(copy);
	while (n > 1 && platform_is_sep(copy[n - 1]))
		copy[--n] = '\0';
	slash = (char *)platform_last_sep(copy);
	if (!slash) {
		if (asprintf(&out, ".mailshift-staging-%s", copy) < 0)
			out = NULL;
	} else {
		*slash = '\0';
		if (asprintf(&out, "%s/.mailshift-staging-%s", *copy ? copy : "",
			     slash + 1) < 0)
			out = NULL;
	}
	free(copy);
	return out;
}

/* ---- audit logs ----------------------------------------------------------- */

static void append_log(const char *path, const char *line)
{
	FILE *f;

	if (!path || !*path)
		return;
	f = fopen(path, "a");
	if (!f) {
		log_warnx("cannot append to '%s': %s", path, strerror(errno));
		return;
	}
	fprintf(f, "%s\r\n", line);
	if (fclose(f) != 0)
		log_warnx("cannot write '%s': %s", path, strerror(errno));
}

void run_audit_line(struct run *run, enum event_log_kind kind,
		    const char *sender, const char *subject, const char *date,
		    const char *event, const char *reason)
{
	const struct config *c = &run->cfg;
	const char *path, *fmt;
	struct event_fields f = { 0 };
	struct ms_err err = MS_ERR_INIT;
	char *line = NULL;

	switch (kind) {
	case EVENT_LOG_ACCEPT:
		if (!c->log_accepts) return;
		path = c->accept_log; fmt = c->accept_format; break;
	case EVENT_LOG_REJECT:
		if (!c->log_rejects) return;
		path = c->reject_log; fmt = c->reject_format; break;
	default:
		if (!c->log_opcon_events) return;
		path = c->opcon_event_log; fmt = c->opcon_event_format; break;
	}
	f.sender = sender;
	f.subject = subject;
	f.date = date;
	f.event = event;
	f.reason = reason;
	if (event_log_line(fmt, kind, &f, &line, &err) == 0)
		append_log(path, line);
	else
		log_warnx("audit log: %s", err.msg);
	free(line);
}

/* ---- events ----------------------------------------------------------- */

void run_pending_release(struct pending *p)
{
	for (size_t i = 0; i < p->n; i++) {
		event_line_free(p->lines[i]);
		free(p->redacted[i]);
		free(p->sections[i]);
	}
	free(p->lines);
	free(p->redacted);
	free(p->sections);
	memset(p, 0, sizeof(*p));
}

int run_pending_add(struct run *run, struct pending *p, const char *section,
		    const char *event, struct ms_err *err)
{
	char *line = NULL, *red = NULL, *sec = NULL;
	size_t ca = p->cap, cb = p->cap, cc = p->cap;

	if (event_render(event, run->cfg.opcon_user, run->opcon_password,
			 &line, err))
		return err_prefix(err, "[%s] event '%s'", section, event);
	if (event_render(event, run->cfg.opcon_user,
			 run->opcon_password ? "***" : NULL, &red, err)) {
		event_line_free(line);
		return -1;
	}
	/* three arrays of one length: each grows to the same capacity, and
	 * p->cap only when all did (a larger block is never a problem) */
	if (!(sec = strdup(section)) ||
	    MEM_GROW(p->lines, ca, p->n + 1, err) ||
	    MEM_GROW(p->redacted, cb, p->n + 1, err) ||
	    MEM_GROW(p->sections, cc, p->n + 1, err)) {
		event_line_free(line);
		free(red);
		free(sec);
		return err_nomem(err);
	}
	p->cap = ca;
	p->lines[p->n] = line;
	p->redacted[p->n] = red;
	p->sections[p->n] = sec;
	p->n++;
	return 0;
}

/* Rename staged files into MSGIN (a file already gone was delivered);
 * the caller makes MSGIN durable (fs_fsync_dir) before it counts them as
 * delivered. */
static int move_staged(struct run *run, char *const *names, size_t n,
		       struct ms_err *err)
{
	for (size_t i = 0; i < n; i++) {
		char *from = fs_join(run->staging, names[i]);
		char *to = fs_join(run->cfg.msgin_dir, names[i]);
		int e = 0;

		if (!from || !to)
			e = ENOMEM;
		else if (platform_replace(from, to) < 0 && errno != ENOENT)
			e = errno;
		free(from);
		free(to);
		if (e == ENOMEM)
			return err_nomem(err);
		if (e)
			return err_set(err, MS_ERR_IO, "cannot move event into '%s': %s",
				       run->cfg.msgin_dir, strerror(e));
	}
	return 0;
}

/* Deliver the staged files of a message recorded by an earlier run. */
int run_deliver_staged(struct run *run, const char *key, struct ms_err *err)
{
	char **names = NULL;
	size_t n = 0;
	int rc = -1;

	if (state_staged_names(run->state, run->mailbox_id, key, &names, &n, err))
		return -1;
	if (move_staged(run, names, n, err) ||
	    (n && fs_fsync_dir(run->cfg.msgin_dir, err)))
		goto out;
	rc = 0;
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

/* Remember a staged file until the pre-commit hook makes it durable. */
static int remember_unsynced(struct run *run, const char *path, struct ms_err *err)
{
	if (MEM_GROW(run->unsynced, run->cap_unsynced, run->n_unsynced + 1, err))
		return -1;
	if (!(run->unsynced[run->n_unsynced] = strdup(path)))
		return err_nomem(err);
	run->n_unsynced++;
	return 0;
}

void run_forget_unsynced(struct run *run)
{
	for (size_t i = 0; i < run->n_unsynced; i++)
		free(run->unsynced[i]);
	run->n_unsynced = 0;
}

/* Write a message's event files into the staging folder and record their
 * names.  The files are not durable yet: the pre-commit hook makes them
 * durable, names and all, before any commit can make a record of them
 * durable (one syncfs for a whole group instead of an fsync per file).
 * On success *names (n = p->n) is the caller's. */
int run_stage_events(struct run *run, const struct msg_ctx *m,
		     const struct pending *p, int matched, char ***out,
		     struct ms_err *err)
{
	char hash[17];
	char **names = NULL;
	int rc = -1;

	*out = NULL;
	if (run_hash_hex(run->mailbox_id, m->seed, hash))
		return err_nomem(err);
	names = calloc(p->n ? p->n : 1, sizeof(*names));
	if (!names)
		return err_nomem(err);
	for (size_t i = 0; i < p->n; i++) {
		struct buf body;
		char *path;
		int w;

		if (asprintf(&names[i], "mailshift-%s-%zu.txt", hash, i + 1) < 0) {
			names[i] = NULL;
			err_nomem(err);
			goto out;
		}
		path = fs_join(run->staging, names[i]);
		if (!path) {
			err_nomem(err);
			goto out;
		}
		buf_init(&body, 0);
		if (buf_appends(&body, p->lines[i], err) ||
		    buf_append(&body, "\r\n", 2, err)) {
			buf_wipe(&body);
			free(path);
			goto out;
		}
		w = fs_write_unsynced(path, body.data, body.len, 0600, err) ||
			remember_unsynced(run, path, err);
		buf_wipe(&body);
		free(path);
		if (w)
			goto out;
	}
	if (state_stage(run->state, run->mailbox_id, m->key, m->msg->message_id,
			m->fp, run->rules_hash, (const char *const *)names, p->n,
			matched, err))
		goto out;
	*out = names;
	names = NULL;
	rc = 0;
out:
	for (size_t i = 0; names && i < p->n; i++)
		free(names[i]);
	free(names);
	return rc;
}

/* The pre-commit hook (state_set_precommit): the staged files, and their
 * names in the staging folder, are durable before any commit can make a
 * record of them durable. */
int run_sync_staging(void *ctx, struct ms_err *err)
{
	struct run *run = ctx;
	int rc;

	if (!run->n_unsynced)
		return 0;
	rc = platform_sync_fs(run->staging, err);
	if (rc == 1) {     /* no syncfs here: each file, then the folder */
		rc = 0;
		for (size_t i = 0; i < run->n_unsynced && !rc; i++)
			rc = fs_fsync_file(run->unsynced[i], err);
		if (!rc)
			rc = fs_fsync_dir(run->staging, err);
	}
	if (rc)
		return -1;
	run_forget_unsynced(run);
	return 0;
}

/* ---- groups ------------------------------------------------------------ */

static void ready_release(struct ready *r)
{
	for (size_t i = 0; r->names && i < r->pend.n; i++)
		free(r->names[i]);
	free(r->names);
	run_pending_release(&r->pend);
	free(r->key);
	free(r->sender);
	free(r->subject);
	free(r->date);
	free(r->reason);
	memset(r, 0, sizeof(*r));
}

void run_group_release(struct run *run)
{
	for (size_t i = 0; i < run->n_ready; i++)
		ready_release(&run->ready[i]);
	run->n_ready = 0;
}

int run_in_group(const struct run *run, const char *key)
{
	for (size_t i = 0; i < run->n_ready; i++)
		if (strcmp(run->ready[i].key, key) == 0)
			return 1;
	return 0;
}

/* Deliver the waiting group.  After a failure the messages not finished
 * stay recorded as staged or delivered: the next run finishes them. */
int run_group_deliver(struct run *run, struct ms_err *err)
{
	int rc = -1;

	if (!run->n_ready)
		return 0;
	if (state_commit(run->state, err))
		goto out;
	for (size_t i = 0; i < run->n_ready; i++)
		if (move_staged(run, run->ready[i].names, run->ready[i].pend.n, err))
			goto out;
	if (fs_fsync_dir(run->cfg.msgin_dir, err))
		goto out;
	for (size_t i = 0; i < run->n_ready; i++) {
		struct ready *r = &run->ready[i];
		struct event_fields f = { 0 };

		if (run->r->crash_after && ++run->delivered >= run->r->crash_after)
			_exit(137);   /* test hook: a crash between delivery and state */
		if (state_set(run->state, run->mailbox_id, r->key, MSG_DELIVERED, 0, err))
			goto out;
		run_audit_line(run, r->matched ? EVENT_LOG_ACCEPT : EVENT_LOG_REJECT,
			       r->sender, r->subject, r->date, NULL,
			       r->matched ? NULL : r->reason);
		for (size_t j = 0; j < r->pend.n; j++)
			run_audit_line(run, EVENT_LOG_EVENT, r->sender, r->subject, r->date,
				       r->pend.redacted[j], NULL);
		f.sender = r->sender;
		f.subject = r->subject;
		f.date = r->date;
		f.reason = r->reason;
		connector_notify_fields(run->r, &run->cfg, r->matched, &f);
		if (run_finish_message(run, r->it, r->key, r->matched, err))
			goto out;
	}
	rc = 0;
out:
	run_group_release(run);
	return rc;
}

/* Add a staged message to the group (taking its names and pending events)
 * and deliver the group when it is full. */
int run_group_add(struct run *run, const struct msg_ctx *m, int matched,
		  char **names, struct pending *pend,
		  const struct rule_result *res, struct ms_err *err)
{
	struct ready *r = &run->ready[run->n_ready];

	memset(r, 0, sizeof(*r));
	r->it = m->it;
	r->matched = matched;
	r->names = names;
	r->pend = *pend;
	memset(pend, 0, sizeof(*pend));
	r->key = strdup(m->key);
	r->sender = strdup(m->msg->from_addr ? m->msg->from_addr : "");
	r->subject = strdup(m->msg->subject ? m->msg->subject : "");
	r->date = strdup(res->date ? res->date : "");
	r->reason = res->reason ? strdup(res->reason) : NULL;
	run->n_ready++;
	if (!r->key || !r->sender || !r->subject || !r->date ||
	    (res->reason && !r->reason))
		return err_nomem(err);
	/* the lines with credentials are on disk: not kept in memory */
	for (size_t i = 0; i < r->pend.n; i++) {
		event_line_free(r->pend.lines[i]);
		r->pend.lines[i] = NULL;
	}
	if (run->n_ready == GROUP_MAX)
		return run_group_deliver(run, err);
	return 0;
}

/* ---- deletion ---------------------------------------------------------- */

int run_delete_due(const struct run *run, int matched)
{
	switch (run->delete_mode) {
	case DELETE_ALL: return 1;
	case DELETE_MATCH: return matched;
	default: return 0;
	}
}

int run_delete_message(struct run *run, const struct mailbox_item *it,
		       const char *key, struct ms_err *err)
{
	if (mailbox_delete(run->mb, it, err))
		return -1;
	run->sum->deleted++;
	run_note(run, NOTE_DELETED, key, NULL, NULL);
	return 0;
}

int run_finish_message(struct run *run, const struct mailbox_item *it,
		       const char *key, int matched, struct ms_err *err)
{
	int deleted = 0;

	if (run_delete_due(run, matched)) {
		if (run_delete_message(run, it, key, err))
			return -1;
		deleted = 1;
	}
	return state_set(run->state, run->mailbox_id, key, MSG_DONE, deleted, err);
}

/* ---- downloads ----------------------------------------------------------- */

/* 1 when path holds exactly data (a save that an interrupted run made);
 * compared in pieces, so a large attachment is not read whole. */
static int same_content(const char *path, const void *data, size_t len)
{
	const unsigned char *want = data;
	unsigned char chunk[64 * 1024];
	struct stat st;
	size_t off = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), same = 0;

	if (fd < 0)
		return 0;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size == len) {
		for (;;) {
			ssize_t r = read(fd, chunk, sizeof(chunk));

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				same = r == 0 && off == len;
				break;
			}
			if ((size_t)r > len - off || memcmp(chunk, want + off, (size_t)r))
				break;
			off += (size_t)r;
		}
	}
	close(fd);
	return same;
}

/* Create dir/name without overwriting: name, name (1), name (2) ...; a
 * file that already holds the same bytes counts as saved, so a message
 * tried again after a failure or a crash is not saved twice. */
static int save_unique(const char *dir, const char *name, const void *data,
		       size_t len, struct ms_err *err)
{
	const char *dot = strrchr(name, '.');
	size_t stem = dot && dot != name ? (size_t)(dot - name) : strlen(name);

	for (int i = 0; i < 1000; i++) {
		char *file = NULL, *path;
		int rc;

		if (i == 0)
			file = strdup(name);
		else if (asprintf(&file, "%.*s (%d)%s", (int)stem, name, i,
				  name + stem) < 0)
			file = NULL;
		if (!file)
			return err_nomem(err);
		path = fs_join(dir, file);
		free(file);
		if (!path)
			return err_nomem(err);
		rc = fs_create_exclusive(path, data, len, 0640, err);
		if (rc > 0 && same_content(path, data, len))
			rc = 0;
		free(path);
		if (rc <= 0)
			return rc;
	}
	return err_set(err, MS_ERR_IO, "too many files named '%s' in '%s'", name, dir);
}

/* DownloadEmails: the .eml and its attachments, before any event of the
 * message is written: a save that fails fails the message. */
int run_download(struct run *run, const char *seed,
		 const struct message *full, const struct buf *raw,
		 struct ms_err *err)
{
	char hash[17], *name = NULL, *dir = run->cfg.download_folder;
	int rc = -1;

	if (fs_mkdirs(dir, 0750, err))
		goto out;
	if (run_hash_hex(run->mailbox_id, seed, hash) ||
	    asprintf(&name, "%s.eml", hash) < 0) {
		name = NULL;
		err_nomem(err);
		goto out;
	}
	if (save_unique(dir, name, raw->data, raw->len, err))
		goto out;
	for (size_t i = 0; i < full->n_attachments; i++) {
		const struct message_attachment *a = &full->attachments[i];
		char *safe;

		if (!a->data)
			continue;
		safe = message_attachment_safe_name(a->name);
		if (!safe) {
			err_nomem(err);
			goto out;
		}
		if (save_unique(dir, safe, a->data, a->size, err)) {
			free(safe);
			goto out;
		}
		free(safe);
	}
	rc = 0;
out:
	if (rc)
		err_prefix(err, "cannot save the message into DownloadFolder '%s'", dir);
	free(name);
	return rc;
}

/* ---- failed messages -------------------------------------------------------- */

/* Errors that belong to one message (it is recorded as failed and the run
 * goes on); everything else (the connection, MSGIN, the state database,
 * memory) stops the run. */
int run_message_error(const struct ms_err *e)
{
	return e->code == MS_ERR_TOOBIG || e->code == MS_ERR_DATA ||
		e->code == MS_ERR_PROTO || e->code == MS_ERR_CONFIG;
}


/* The RejectEvent of a failed message, written at most once (at its
 * first failure, after that failure is committed). */
static void failure_event(struct run *run, const struct msg_ctx *m,
			  const char *date, const char *reason)
{
	struct event_fields f = { 0 };
	struct pending p = { 0 };
	struct ms_err e = MS_ERR_INIT;
	char *ev = NULL, hash[17], name[64], *from = NULL, *to = NULL;
	struct buf body;

	buf_init(&body, 0);
	f.sender = m->msg->from_addr;
	f.subject = m->msg->subject;
	f.date = date;
	f.reason = reason;
	if (state_batch_end(run->state, &e) || state_batch_begin(run->state, &e) ||
	    event_substitute(rules_reject_event(run->rules), &f, SUBST_EVENT,
			     &ev, &e) ||
	    run_pending_add(run, &p, "Audit", ev, &e))
		goto out;
	if (run_hash_hex(run->mailbox_id, m->seed, hash)) {
		err_nomem(&e);
		goto out;
	}
	snprintf(name, sizeof(name), "mailshift-%s-failed.txt", hash);
	if (!(from = fs_join(run->staging, name)) ||
	    !(to = fs_join(run->cfg.msgin_dir, name))) {
		err_nomem(&e);
		goto out;
	}
	if (buf_appends(&body, p.lines[0], &e) || buf_append(&body, "\r\n", 2, &e) ||
	    fs_write_atomic(from, body.data, body.len, 0600, &e))
		goto out;
	if (platform_replace(from, to) < 0) {
		err_set(&e, MS_ERR_IO, "cannot move event into '%s': %s",
			run->cfg.msgin_dir, strerror(errno));
		goto out;
	}
	if (fs_fsync_dir(run->cfg.msgin_dir, &e))
		goto out;
	run_note(run, NOTE_EVENT, m->key, "Audit", p.redacted[0]);
	run_audit_line(run, EVENT_LOG_EVENT, m->msg->from_addr, m->msg->subject, date,
		       p.redacted[0], NULL);
	run->sum->events++;
out:
	if (e.code != MS_OK)
		log_warnx("message %s: RejectEvent for the failure not written: %s",
			  m->key, e.msg);
	buf_wipe(&body);
	free(ev);
	free(from);
	free(to);
	run_pending_release(&p);
}

/* A message that cannot be processed: recorded as failed with its reason
 * and left on the server; the reject log, RejectEvent and notify say so;
 * later runs try it again, [State] MaxAttempts times in all. */
int run_fail_message(struct run *run, const struct msg_ctx *m,
		     const struct ms_err *why, struct ms_err *err)
{
	struct state_failure f = { 0 };
	struct rule_result res = { 0 };
	enum msg_state st = MSG_FAILED;
	char date[64], reason[MS_ERR_MSG_MAX + 32];
	int attempts = 1;

	snprintf(reason, sizeof(reason), "cannot be processed: %s", why->msg);
	run->sum->failed++;
	if (m->received && (!run->oldest_failed || m->received < run->oldest_failed))
		run->oldest_failed = m->received;
	if (!run->r->dry_run) {
		f.message_id = m->msg->message_id;
		f.fingerprint = m->fp;
		f.subject = m->msg->subject;
		f.sender = m->msg->from_addr;
		f.reason = why->msg;
		f.max_attempts = run->cfg.max_attempts;
		if (state_fail(run->state, run->mailbox_id, m->key, &f, &attempts,
			       &st, err))
			return -1;
	}
	run_note(run, st == MSG_QUARANTINED ? NOTE_QUARANTINED : NOTE_FAILED, m->key,
		 NULL, reason);
	if (st == MSG_QUARANTINED)
		run->sum->quarantined++;
	if (run->r->dry_run)
		return 0;
	event_format_date(m->msg->has_date ? m->msg->date : m->received, date,
			  sizeof(date));
	run_audit_line(run, EVENT_LOG_REJECT, m->msg->from_addr, m->msg->subject, date,
		       NULL, reason);
	if (attempts == 1) {
		if (rules_reject_event(run->rules))
			failure_event(run, m, date, reason);
		res.reason = reason;
		res.date = date;
		connector_notify(run->r, &run->cfg, m->msg, &res);
	}
	return 0;
}
