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
#include "connector.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "connector_int.h"
#include "event.h"
#include "fsutil.h"
#include "ini.h"
#include "log.h"
#include "message.h"
#include "rules.h"
#include "state.h"

#define MESSAGE_CAP ((size_t)64 * 1024 * 1024)

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
};

static void note(struct run *run, enum connector_note n, const char *key,
		 const char *section, const char *text)
{
	if (run->r->report)
		run->r->report(run->r->report_ctx, n, key, section, text);
}

/* ---- file names ------------------------------------------------------- */

static void hash_hex(const char *a, const char *b, char out[17])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	EVP_DigestUpdate(c, a, strlen(a));
	EVP_DigestUpdate(c, "\n", 1);
	EVP_DigestUpdate(c, b, strlen(b));
	EVP_DigestFinal_ex(c, md, &mdlen);
	EVP_MD_CTX_free(c);
	for (int i = 0; i < 8; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static char *staging_dir_for(const char *msgin)
{
	char *copy = strdup(msgin), *slash, *out = NULL;
	size_t n;

	if (!copy)
		return NULL;
	n = strlen(copy);
	while (n > 1 && copy[n - 1] == '/')
		copy[--n] = '\0';
	slash = strrchr(copy, '/');
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

static void audit_line(struct run *run, enum event_log_kind kind,
		       const struct message *msg, const char *date,
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
	f.sender = msg->from_addr;
	f.subject = msg->subject;
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

struct pending {
	char **lines;      /* rendered with credentials: wipe */
	char **redacted;   /* for reports and logs */
	char **sections;
	size_t n;
};

static void pending_release(struct pending *p)
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

static int pending_add(struct run *run, struct pending *p, const char *section,
		       const char *event, struct ms_err *err)
{
	char *line = NULL, *red = NULL, *sec = NULL;
	char **a, **b, **c;

	if (event_render(event, run->cfg.opcon_user, run->opcon_password,
			 &line, err))
		return err_prefix(err, "[%s] event '%s'", section, event);
	if (event_render(event, run->cfg.opcon_user,
			 run->opcon_password ? "***" : NULL, &red, err)) {
		event_line_free(line);
		return -1;
	}
	sec = strdup(section);
	a = realloc(p->lines, (p->n + 1) * sizeof(*a));
	if (a) p->lines = a;
	b = realloc(p->redacted, (p->n + 1) * sizeof(*b));
	if (b) p->redacted = b;
	c = realloc(p->sections, (p->n + 1) * sizeof(*c));
	if (c) p->sections = c;
	if (!a || !b || !c || !sec) {
		event_line_free(line);
		free(red);
		free(sec);
		return err_set(err, MS_ERR_NOMEM, "out of memory");
	}
	p->lines[p->n] = line;
	p->redacted[p->n] = red;
	p->sections[p->n] = sec;
	p->n++;
	return 0;
}

/* Deliver the staged files of a message into MSGIN (those still staged). */
static int deliver_staged(struct run *run, const char *key, struct ms_err *err)
{
	char **names = NULL;
	size_t n = 0;
	int rc = -1;

	if (state_staged_names(run->state, run->mailbox_id, key, &names, &n, err))
		return -1;
	for (size_t i = 0; i < n; i++) {
		char *from = fs_join(run->staging, names[i]);
		char *to = fs_join(run->cfg.msgin_dir, names[i]);

		if (!from || !to) {
			free(from);
			free(to);
			err_set(err, MS_ERR_NOMEM, "out of memory");
			goto out;
		}
		if (rename(from, to) < 0 && errno != ENOENT) {
			err_set(err, MS_ERR_IO, "cannot move event into '%s': %s",
				run->cfg.msgin_dir, strerror(errno));
			free(from);
			free(to);
			goto out;
		}
		free(from);
		free(to);
	}
	if (n && fs_fsync_dir(run->cfg.msgin_dir, err))
		goto out;
	rc = 0;
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

static int stage_events(struct run *run, const struct mailbox_item *it,
			const struct message *msg, const struct pending *p,
			int matched, struct ms_err *err)
{
	char hash[17];
	char **names = NULL;
	int rc = -1;

	hash_hex(run->mailbox_id, it->key, hash);
	names = calloc(p->n ? p->n : 1, sizeof(*names));
	if (!names)
		return err_set(err, MS_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < p->n; i++) {
		struct buf body;
		char *path;
		int w;

		if (asprintf(&names[i], "mailshift-%s-%zu.txt", hash, i + 1) < 0) {
			names[i] = NULL;
			err_set(err, MS_ERR_NOMEM, "out of memory");
			goto out;
		}
		path = fs_join(run->staging, names[i]);
		if (!path) {
			err_set(err, MS_ERR_NOMEM, "out of memory");
			goto out;
		}
		buf_init(&body, 0);
		if (buf_appends(&body, p->lines[i], err) ||
		    buf_append(&body, "\r\n", 2, err)) {
			buf_wipe(&body);
			free(path);
			goto out;
		}
		w = fs_write_atomic(path, body.data, body.len, 0600, err);
		buf_wipe(&body);
		free(path);
		if (w)
			goto out;
	}
	if (state_stage(run->state, run->mailbox_id, it->key, msg->message_id,
			(const char *const *)names, p->n, matched, err))
		goto out;
	rc = 0;
out:
	for (size_t i = 0; i < p->n; i++)
		free(names[i]);
	free(names);
	return rc;
}

/* ---- deletion ---------------------------------------------------------- */

static int delete_due(const struct run *run, int matched)
{
	switch (run->delete_mode) {
	case DELETE_ALL: return 1;
	case DELETE_MATCH: return matched;
	default: return 0;
	}
}

static int finish_message(struct run *run, const struct mailbox_item *it,
			  int matched, struct ms_err *err)
{
	int deleted = 0;

	if (delete_due(run, matched)) {
		if (mailbox_delete(run->mb, it, err))
			return -1;
		deleted = 1;
		run->sum->deleted++;
		note(run, NOTE_DELETED, it->key, NULL, NULL);
	}
	return state_set(run->state, run->mailbox_id, it->key, MSG_DONE, deleted, err);
}

/* ---- downloads ----------------------------------------------------------- */

/* Create dir/name without overwriting: name, name (1), name (2) ... */
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
			return err_set(err, MS_ERR_NOMEM, "out of memory");
		path = fs_join(dir, file);
		free(file);
		if (!path)
			return err_set(err, MS_ERR_NOMEM, "out of memory");
		rc = fs_create_exclusive(path, data, len, 0640, err);
		free(path);
		if (rc <= 0)
			return rc;
	}
	return err_set(err, MS_ERR_IO, "too many files named '%s' in '%s'", name, dir);
}

static void download(struct run *run, const struct mailbox_item *it,
		     const struct message *full, const struct buf *raw)
{
	struct ms_err err = MS_ERR_INIT;
	char hash[17], *name = NULL, *dir = run->cfg.download_folder;

	if (!run->cfg.download_emails || !dir || !raw)
		return;
	if (fs_mkdirs(dir, 0750, &err))
		goto fail;
	hash_hex(run->mailbox_id, it->key, hash);
	if (asprintf(&name, "%s.eml", hash) < 0) {
		name = NULL;
		goto fail;
	}
	if (save_unique(dir, name, raw->data, raw->len, &err))
		goto fail;
	for (size_t i = 0; full && i < full->n_attachments; i++) {
		const struct message_attachment *a = &full->attachments[i];
		char *safe;

		if (!a->data)
			continue;
		safe = message_attachment_safe_name(a->name);
		if (!safe || save_unique(dir, safe, a->data, a->size, &err)) {
			free(safe);
			goto fail;
		}
		free(safe);
	}
	free(name);
	return;
fail:
	log_warnx("cannot save message %s into '%s': %s", it->key, dir,
		  err.msg[0] ? err.msg : "out of memory");
	free(name);
}

/* ---- one message ----------------------------------------------------------- */

static int process_message(struct run *run, const struct mailbox_item *it,
			   struct ms_err *err)
{
	struct message hdr = { 0 }, full = { 0 };
	struct rule_result res = { 0 };
	struct pending pend = { 0 };
	struct buf raw;
	const struct message *msg = &hdr;
	enum msg_state st = MSG_UNKNOWN;
	time_t received;
	int rc = -1, have_raw = 0, was_deleted = 0, was_matched = 0;

	buf_init(&raw, MESSAGE_CAP);
	if (message_parse(&hdr, it->headers ? it->headers : "", it->headers_len,
			  1, 0, err))
		goto out;
	if (!run->r->dry_run) {
		if (state_lookup_ex(run->state, run->mailbox_id, it->key,
				    hdr.message_id, &st, &was_deleted, &was_matched,
				    err))
			goto out;
		if (st == MSG_DONE && was_deleted) {
			/* recorded as deleted yet still here: a POP session
			 * died before QUIT committed the DELE */
			run->sum->skipped++;
			rc = mailbox_delete(run->mb, it, err);
			goto out;
		}
		if (st == MSG_DONE) {
			run->sum->skipped++;
			note(run, NOTE_SKIPPED, it->key, NULL, hdr.subject);
			rc = 0;
			goto out;
		}
		if (st == MSG_STAGED || st == MSG_DELIVERED) {
			/* an interrupted run left this one half done */
			if (st == MSG_STAGED &&
			    (deliver_staged(run, it->key, err) ||
			     state_set(run->state, run->mailbox_id, it->key,
				       MSG_DELIVERED, 0, err)))
				goto out;
			note(run, NOTE_RECOVERED, it->key, NULL, hdr.subject);
			rc = finish_message(run, it, was_matched, err);
			run->sum->skipped++;
			goto out;
		}
	}
	received = it->received ? it->received : (hdr.has_date ? hdr.date : 0);
	if (since_time(&run->cfg) && received && received < since_time(&run->cfg)) {
		rc = 0;     /* older than LastRunDate: the incumbent ignores it */
		goto out;
	}
	run->sum->considered++;
	if (!received)
		received = time(NULL);

	if (rules_need_body(run->rules, &hdr, received) ||
	    (run->cfg.download_emails && run->cfg.download_folder)) {
		if (mailbox_fetch_message(run->mb, it, &raw, err) ||
		    message_parse(&full, raw.data, raw.len, 0, 1, err))
			goto out;
		have_raw = 1;
		run->sum->bodies++;
		msg = &full;
	}
	if (rules_evaluate(run->rules, msg, received, &res, err))
		goto out;

	for (size_t i = 0; i < res.n_rules; i++) {
		const struct rule_outcome *o = &res.rules[i];
		for (size_t j = 0; o->matched && j < o->n_events; j++)
			if (pending_add(run, &pend, o->section, o->events[j], err))
				goto out;
	}
	if (res.matched) {
		run->sum->matched++;
		for (size_t i = 0; i < res.n_rules; i++)
			if (res.rules[i].matched)
				note(run, NOTE_MATCHED, it->key, res.rules[i].section,
				     msg->subject);
	} else {
		run->sum->rejected++;
		note(run, NOTE_REJECTED, it->key, NULL, res.reason);
		if (rules_reject_event(run->rules)) {
			struct event_fields f = { 0 };
			char *ev = NULL;

			f.sender = msg->from_addr;
			f.subject = msg->subject;
			f.date = res.date;
			f.reason = res.reason;
			if (event_substitute(rules_reject_event(run->rules), &f, SUBST_EVENT,
					     &ev, err) ||
			    pending_add(run, &pend, "Audit", ev, err)) {
				free(ev);
				goto out;
			}
			free(ev);
		}
	}
	for (size_t i = 0; i < pend.n; i++)
		note(run, NOTE_EVENT, it->key, pend.sections[i], pend.redacted[i]);
	run->sum->events += (long)pend.n;

	if (run->r->dry_run) {
		rc = 0;
		goto out;
	}
	if (stage_events(run, it, msg, &pend, res.matched, err) ||
	    deliver_staged(run, it->key, err))
		goto out;
	if (run->r->crash_after && ++run->delivered >= run->r->crash_after)
		_exit(137);   /* test hook: a crash between delivery and state */
	if (state_set(run->state, run->mailbox_id, it->key, MSG_DELIVERED, 0, err))
		goto out;

	if (res.matched)
		audit_line(run, EVENT_LOG_ACCEPT, msg, res.date, NULL, NULL);
	else
		audit_line(run, EVENT_LOG_REJECT, msg, res.date, NULL, res.reason);
	for (size_t i = 0; i < pend.n; i++)
		audit_line(run, EVENT_LOG_EVENT, msg, res.date, pend.redacted[i], NULL);
	connector_notify(run->r, &run->cfg, msg, &res);
	if (res.matched && have_raw)
		download(run, it, &full, &raw);

	rc = finish_message(run, it, res.matched, err);
out:
	if (rc && err->code != MS_OK)
		err_prefix(err, "message %s", it->key);
	pending_release(&pend);
	rules_result_release(&res);
	message_release(&hdr);
	message_release(&full);
	buf_wipe(&raw);
	return rc;
}

/* ---- setup ------------------------------------------------------------- */

/* Remove temporary files that a killed run left in the staging folder
 * (".NAME.tmp.PID.N" from fs_write_atomic) when PID is gone. */
static void clean_staging(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		const char *t = strstr(e->d_name, ".tmp.");
		long pid;
		char *path;

		if (e->d_name[0] != '.' || !t)
			continue;
		pid = strtol(t + 5, NULL, 10);
		if (pid <= 0 || (kill((pid_t)pid, 0) < 0 && errno == ESRCH)) {
			if ((path = fs_join(dir, e->d_name))) {
				unlink(path);
				free(path);
			}
		}
	}
	closedir(d);
}

static int apply_overrides(struct run *run, struct ms_err *err)
{
	const struct connector_run *r = run->r;
	struct config *c = &run->cfg;

	if (r->server) {
		free(c->server);
		if (!(c->server = strdup(r->server)))
			return err_set(err, MS_ERR_NOMEM, "out of memory");
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

static int open_mailbox(struct run *run, struct ms_err *err)
{
	const struct config *c = &run->cfg;
	struct mailbox_params p = { 0 };
	char *password = NULL;
	int rc;

	p.protocol = c->protocol;
	p.host = c->server;
	mailbox_params_set_tls(&p, c);
	p.verify_peer = !c->self_signed;
	p.ca_file = c->ca_file;
	p.user = c->oauth_mailbox && c->auth == AUTH_OAUTH2 ? c->oauth_mailbox : c->user;
	p.folder = c->folder ? c->folder : "INBOX";
	p.graph_endpoint = c->graph_endpoint ? c->graph_endpoint : "https://graph.microsoft.com";
	p.since = since_time(c);
	p.verbose = run->r->verbose;
	p.read_only = run->r->dry_run;
	if (c->self_signed)
		log_warnx("%s: SelfSignedCertificate=True: the server's certificate "
			  "is not verified", c->path);
	if (run->r->mailbox &&
	    session_matches(mailbox_params_of(run->r->mailbox), &p,
			    c->auth == AUTH_OAUTH2)) {
		if (asprintf(&run->mailbox_id, "%s://%s:%d/%s/%s",
			     config_protocol_name(c->protocol), p.host ? p.host : "graph",
			     p.port, p.user, p.folder) < 0) {
			run->mailbox_id = NULL;
			return err_set(err, MS_ERR_NOMEM, "out of memory");
		}
		run->mb = run->r->mailbox;
		run->mb_borrowed = 1;
		run->sum->reused_mailbox = 1;
		return mailbox_reuse(run->mb, p.since, p.read_only, err);
	}
	if (run->r->mailbox)
		log_debug("%s: the session handed over is not the one this INI file "
			  "names: opening another", c->path);
	if (c->auth == AUTH_OAUTH2) {
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
		if (connector_resolve_secret(c->password, "[Mail] Password", c->path,
					     &password, err))
			return -1;
		p.password = password;
	}
	if (asprintf(&run->mailbox_id, "%s://%s:%d/%s/%s",
		     config_protocol_name(c->protocol), p.host ? p.host : "graph",
		     p.port, p.user, p.folder) < 0) {
		run->mailbox_id = NULL;
		connector_secret_free(password);
		return err_set(err, MS_ERR_NOMEM, "out of memory");
	}
	rc = mailbox_open(&run->mb, &p, err);
	connector_secret_free(password);
	return rc;
}

static char *default_state_path(const struct run *run)
{
	char *p = NULL;

	if (run->r->state_path)
		return strdup(run->r->state_path);
	if (run->cfg.state_db)
		return strdup(run->cfg.state_db);
	if (asprintf(&p, "%s.state.db", run->r->ini_path) < 0)
		return NULL;
	return p;
}

static int write_last_run(struct run *run, time_t started, struct ms_err *err)
{
	char when[64];

	if (!run->cfg.use_last_run_date || run->r->dry_run)
		return 0;
	config_format_run_date(started, when, sizeof(when));
	if (ini_set(run->ini, "General", "LastRunDate", when, err) ||
	    ini_save(run->ini, run->r->ini_path, err))
		return err_prefix(err, "cannot write LastRunDate into '%s'",
				  run->r->ini_path);
	return 0;
}

int connector_run(const struct connector_run *r, struct connector_summary *sum,
		  struct ms_err *err)
{
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
	if (config_notify_problem(&run.cfg))
		log_warnx("%s: %s is set but %s: no notify mail will be sent",
			  r->ini_path, run.cfg.notify_on_accepts ?
			  (run.cfg.notify_on_rejects ? "NotifyOnAccepts/NotifyOnRejects" :
			   "NotifyOnAccepts") : "NotifyOnRejects",
			  config_notify_problem(&run.cfg));
	for (size_t i = 0; i < run.cfg.n_unknown_keys; i++) {
		char text[512];

		config_unknown_key_text(&run.cfg.unknown_keys[i], text, sizeof(text));
		log_warnx("%s:%d: %s", r->ini_path, run.cfg.unknown_keys[i].line, text);
	}
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
	    connector_resolve_secret(run.cfg.opcon_password,
				     "[General] OpConUserPassword", r->ini_path,
				     &run.opcon_password, err))
		goto out;
	if (!r->dry_run) {
		if (!(state_path = default_state_path(&run)) ||
		    !(run.staging = staging_dir_for(run.cfg.msgin_dir))) {
			err_set(err, MS_ERR_NOMEM, "out of memory");
			goto out;
		}
		if (fs_mkdirs(run.cfg.msgin_dir, 0750, err) ||
		    fs_mkdirs(run.staging, 0700, err) ||
		    state_open(&run.state, state_path, err))
			goto out;
		clean_staging(run.staging);
	}
	if (open_mailbox(&run, err) ||
	    mailbox_list(run.mb, &items, &n, err) ||
	    mailbox_fetch_headers(run.mb, err))
		goto out;
	sum->listed = (long)n;
	for (size_t i = 0; i < n; i++) {
		if (r->only_key && strcmp(r->only_key, items[i].key) != 0)
			continue;
		if (process_message(&run, &items[i], err))
			goto out;
	}
	rc = 0;
out:
	if (run.mb && !run.mb_borrowed) {
		struct ms_err cerr = MS_ERR_INIT;
		if (mailbox_close(run.mb, rc ? &cerr : err))
			rc = -1;
	}
	if (rc == 0)
		rc = write_last_run(&run, started, err);
	state_close(run.state);
	connector_oauth_free(run.oauth);
	rules_free(run.rules);
	config_release(&run.cfg);
	ini_free(run.ini);
	free(run.mailbox_id);
	free(run.staging);
	connector_secret_free(run.opcon_password);
	free(state_path);
	return rc;
}

int connector_exit_code(int rc, const struct connector_summary *sum)
{
	if (rc || sum->config_broken)
		return 2;
	if (sum->matched > 0)
		return 0;
	return sum->exit_code_no_match;
}
