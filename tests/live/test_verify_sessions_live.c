/*
 * test_verify_sessions_live.c - one mailbox session for several steps, as
 * mailshift-verify uses it: mailbox_reuse() on IMAP (a message delivered
 * after the login is listed once the folder is selected again; read-only
 * and read-write in turn; one login in all), on POP3 (the session keeps
 * the maildrop it saw at login, a new session sees the new message), and
 * a session handed to the connector's dry run (connector_run.mailbox:
 * used when it matches the INI, not when it does not).  Logins are
 * counted by mailbox_stats().
 *
 *   MS_WORLD_DIR=/tmp/w build/tests/live/test_verify_sessions_live
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "connector/connector.h"
#include "transport/mailbox/mailbox.h"
#include "tap.h"
#include "world.h"

static char tag[64];

static int deliver_tagged(const char *upn, const char *what)
{
	char msg[1024];

	snprintf(msg, sizeof(msg),
		 "From: sender@example.test\r\nTo: %s\r\nSubject: vs %s %s\r\n"
		 "Date: Sat, 28 Nov 2026 01:35:00 +0000\r\n"
		 "Message-ID: <vs-%s-%s@example.test>\r\n\r\nbody\r\n",
		 upn, tag, what, tag, what);
	return world_lmtp_deliver(upn, msg);
}

/* Index of the listed item whose header block names "vs TAG what". */
static long find(struct mailbox *mb, const char *what, struct mailbox_item **itp)
{
	struct mailbox_item *items = NULL;
	struct ms_err err = MS_ERR_INIT;
	char want[128];
	size_t n = 0;

	snprintf(want, sizeof(want), "vs %s %s", tag, what);
	if (mailbox_list(mb, &items, &n, &err) || mailbox_fetch_headers(mb, &err)) {
		printf("# list: %s\n", err.msg);
		return -2;
	}
	for (size_t i = 0; i < n; i++)
		if (items[i].headers && strstr(items[i].headers, want)) {
			if (itp)
				*itp = &items[i];
			return (long)i;
		}
	return -1;
}

static void params(struct mailbox_params *p, enum mail_protocol proto)
{
	memset(p, 0, sizeof(*p));
	p->protocol = proto;
	p->host = "127.0.0.1";
	p->tls = TLSM_IMPLICIT;
	p->tls_min = TLSL_TLS1_2;
	p->verify_peer = 1;
	p->ca_file = world_get("WORLD_CA_FILE");
	p->user = world_get("WORLD_USER_DAVE");
	p->password = world_get("WORLD_PASS_DAVE");
	p->folder = "INBOX";
	p->timeout_s = 20;
	p->read_only = 1;
	p->port = world_port(proto == PROTO_IMAP ? "WORLD_IMAPS_PORT" : "WORLD_POP3S_PORT");
}

static void test_imap(void)
{
	struct mailbox_params p;
	struct mailbox *mb = NULL;
	struct mailbox_item *it = NULL;
	struct ms_err err = MS_ERR_INIT;
	long logins = -1, conns = -1;

	params(&p, PROTO_IMAP);
	p.since = time(NULL);
	if (!ok(mailbox_open(&mb, &p, &err) == 0, "imap: open read-only (%s)", err.msg))
		return;
	ok(mailbox_sees_new_mail(mb), "imap: a reused session sees new mail");
	is_int(find(mb, "imap", NULL), -1, "imap: not there before delivery");
	ok(deliver_tagged(p.user, "imap") == 0, "imap: delivered after the login");
	ok(mailbox_reuse(mb, time(NULL) - 300, 1, &err) == 0, "imap: reuse read-only (%s)",
	   err.msg);
	ok(find(mb, "imap", &it) >= 0, "imap: the new message is listed on the same session");
	if (it)
		is_int(mailbox_delete(mb, it, &err), -1, "imap: read-only refuses to delete");
	err_clear(&err);
	ok(mailbox_reuse(mb, time(NULL) - 300, 0, &err) == 0, "imap: reuse read-write (%s)",
	   err.msg);
	it = NULL;
	ok(find(mb, "imap", &it) >= 0 && it && mailbox_delete(mb, it, &err) == 0,
	   "imap: deleted on the same session (%s)", err.msg);
	ok(mailbox_reuse(mb, 0, 1, &err) == 0, "imap: reuse read-only again");
	is_int(find(mb, "imap", NULL), -1, "imap: gone");
	mailbox_stats(mb, &conns, &logins);
	is_int(conns, 1, "imap: one connection");
	is_int(logins, 1, "imap: one login for all of it");
	ok(mailbox_close(mb, &err) == 0, "imap: close (%s)", err.msg);
}

static void test_pop(void)
{
	struct mailbox_params p;
	struct mailbox *mb = NULL, *mb2 = NULL;
	struct mailbox_item *it = NULL;
	struct ms_err err = MS_ERR_INIT;
	long logins = -1;

	params(&p, PROTO_POP);
	if (!ok(mailbox_open(&mb, &p, &err) == 0, "pop: open (%s)", err.msg))
		return;
	ok(!mailbox_sees_new_mail(mb), "pop: a reused session does not see new mail");
	is_int(find(mb, "pop", NULL), -1, "pop: not there before delivery");
	ok(deliver_tagged(p.user, "pop") == 0, "pop: delivered after the login");
	ok(mailbox_reuse(mb, 0, 1, &err) == 0, "pop: reuse");
	is_int(find(mb, "pop", NULL), -1, "pop: the session still sees the maildrop of its login");
	mailbox_stats(mb, NULL, &logins);
	is_int(logins, 1, "pop: one login");
	ok(mailbox_close(mb, &err) == 0, "pop: close (%s)", err.msg);
	if (!ok(mailbox_open(&mb2, &p, &err) == 0, "pop: a new session (%s)", err.msg))
		return;
	ok(find(mb2, "pop", NULL) >= 0, "pop: the new session lists it");
	ok(mailbox_reuse(mb2, 0, 0, &err) == 0, "pop: reuse read-write");
	ok(find(mb2, "pop", &it) >= 0 && it && mailbox_delete(mb2, it, &err) == 0,
	   "pop: DELE on the same session (%s)", err.msg);
	ok(mailbox_close(mb2, &err) == 0, "pop: QUIT commits (%s)", err.msg);
	mb2 = NULL;
	if (mailbox_open(&mb2, &p, &err) == 0) {
		is_int(find(mb2, "pop", NULL), -1, "pop: gone after QUIT");
		mailbox_close(mb2, &err);
	} else {
		ok(0, "pop: open after QUIT (%s)", err.msg);
	}
}

struct seen {
	int matched, considered;
};

static void on_note(void *ctx, enum connector_note note, const char *key,
		    const char *section, const char *text)
{
	struct seen *s = ctx;

	(void)key; (void)section; (void)text;
	s->considered += note == NOTE_MATCHED || note == NOTE_REJECTED;
	s->matched += note == NOTE_MATCHED;
}

static void test_connector(const char *dir)
{
	struct mailbox_params p;
	struct mailbox *mb = NULL;
	struct ms_err err = MS_ERR_INIT;
	struct connector_run r;
	struct connector_summary sum;
	struct seen s = { 0, 0 };
	char ini[1024], host2[] = "localhost";
	long logins = -1;
	FILE *f;

	snprintf(ini, sizeof(ini), "%s/vs-%s.ini", dir, tag);
	if (!(f = fopen(ini, "w"))) {
		ok(0, "connector: cannot write %s", ini);
		return;
	}
	fprintf(f, "[General]\nUseLastRunDate=False\n[Mail]\nUser=%s\nPassword=env:VS_PW\n"
		"Server=127.0.0.1\nPort=%s\nEmailProtocol=IMAP\nSecurityProtocol=TLS1_2\n"
		"SelfSignedCertificate=False\n"
		"CAFile=%s\n[Configuration1]\nSubjectLineMask=vs %s*\n"
		"Event=$CONSOLE:DISPLAY,[[SUBJECT]]\n", world_get("WORLD_USER_DAVE"),
		world_get("WORLD_IMAPS_PORT"), world_get("WORLD_CA_FILE"), tag);
	fclose(f);
	setenv("VS_PW", world_get("WORLD_PASS_DAVE"), 1);
	ok(deliver_tagged(world_get("WORLD_USER_DAVE"), "conn") == 0, "connector: delivered");

	params(&p, PROTO_IMAP);
	p.since = time(NULL);
	if (!ok(mailbox_open(&mb, &p, &err) == 0, "connector: open (%s)", err.msg))
		goto out;
	memset(&r, 0, sizeof(r));
	r.ini_path = ini;
	r.dry_run = 1;
	r.mailbox = mb;
	r.report = on_note;
	r.report_ctx = &s;
	ok(connector_run(&r, &sum, &err) == 0, "connector: dry run on our session (%s)",
	   err.msg);
	is_int(sum.reused_mailbox, 1, "connector: used the session handed over");
	is_int(s.matched, 1, "connector: matched the message delivered after our login");
	mailbox_stats(mb, NULL, &logins);
	is_int(logins, 1, "connector: no login of its own");
	ok(mailbox_reuse(mb, 0, 1, &err) == 0 && find(mb, "conn", NULL) >= 0,
	   "connector: our session still works afterwards, the message still there");
	ok(mailbox_close(mb, &err) == 0, "connector: close");

	/* another host name: not the session the INI names */
	mb = NULL;
	p.host = host2;
	if (!ok(mailbox_open(&mb, &p, &err) == 0, "connector: open via localhost (%s)",
		err.msg))
		goto out;
	memset(&s, 0, sizeof(s));
	r.mailbox = mb;
	ok(connector_run(&r, &sum, &err) == 0, "connector: dry run (%s)", err.msg);
	is_int(sum.reused_mailbox, 0, "connector: a session for another server is not used");
	is_int(s.matched, 1, "connector: matched on its own session");
	mailbox_stats(mb, NULL, &logins);
	is_int(logins, 1, "connector: our session untouched");
	ok(mailbox_reuse(mb, 0, 0, &err) == 0, "connector: reuse read-write");
	{
		struct mailbox_item *it = NULL;
		ok(find(mb, "conn", &it) >= 0 && it && mailbox_delete(mb, it, &err) == 0,
		   "connector: test message deleted (%s)", err.msg);
	}
	ok(mailbox_close(mb, &err) == 0, "connector: close");
out:
	unlink(ini);
}

int main(void)
{
	const char *dir = getenv("MS_WORLD_DIR");

	if (!dir || !*dir) {
		printf("1..0 # SKIP no mail world (MS_WORLD_DIR)\n");
		return 0;
	}
	if (world_load(dir) || !world_get("WORLD_USER_DAVE")) {
		printf("Bail out! cannot read %s/env\n", dir);
		return 1;
	}
	snprintf(tag, sizeof(tag), "%ld-%ld", (long)getpid(), (long)time(NULL));
	test_imap();
	test_pop();
	test_connector(getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	world_free();
	return done_testing();
}
