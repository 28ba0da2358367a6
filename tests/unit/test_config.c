/*
 * test_config.c - the typed config model over ini.h.  Run from the
 * repository root.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

#include "ini/config.h"
#include "base/fsutil.h"
#include "ini/ini.h"
#include "tap.h"
#include "config_text.h"

static time_t local_time(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	tm.tm_isdst = -1;
	return mktime(&tm);
}

static void test_example1(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct config cfg;

	if (!ok(config_load(&cfg, "samples/ini/example1-crlf-bom.ini", &err) == 0,
		"load example1 (CRLF + BOM) (%s)", err.msg))
		return;
	is(cfg.path, "samples/ini/example1-crlf-bom.ini", "path kept");
	is(cfg.msgin_dir, "C:\\ProgramData\\OpConxps\\SAM\\MSGIN", "MSGINDirectory");
	is(cfg.opcon_user, "ocadm", "OpConUser");
	is(cfg.opcon_password, "AQAAANCMnd8BFdERjHoAwE/Cl+sBAAAAq1k2", "OpConUserPassword as written");
	is_int(cfg.delete_mode, DELETE_MATCH, "DeleteEmails");
	is_int(cfg.download_emails, 0, "DownloadEmails=False");
	ok(cfg.download_folder == NULL, "DownloadFolder unset");
	is_int(cfg.exit_code_no_match, 0, "ExitCodeForNoMatchingEmails");
	is_int(cfg.use_last_run_date, 1, "UseLastRunDate");
	is(cfg.last_run_date, "3/14/2024 6:05:00 PM", "LastRunDate raw");
	is_int(cfg.last_run, local_time(2024, 3, 14, 18, 5, 0), "LastRunDate parsed (PM)");
	is(cfg.user, "opcon-requests@example.com", "User");
	is(cfg.password, "AQAAANCMnd8BFdERjHoAwE/Cl+sBAAAAx93f", "Password as written");
	is(cfg.server, "imap.example.com", "Server");
	is_int(cfg.protocol, PROTO_IMAP, "EmailProtocol");
	is_int(cfg.tls_min, TLSL_TLS1_2, "SecurityProtocol");
	is_int(cfg.port, 993, "Port");
	is_int(cfg.self_signed, 0, "SelfSignedCertificate=False");
	is_int(cfg.self_signed_explicit, 1, "... explicitly");
	is(cfg.folder, "INBOX", "Folder default");
	is_int(cfg.log_accepts, 0, "LogAccepts");
	is_int(cfg.n_tokens, 0, "no tokens");
	if (is_int(cfg.n_rules, 1, "one rule")) {
		struct config_rule *r = &cfg.rules[0];

		is(r->section, "Configuration1", "rule section");
		is_int(r->line, 29, "rule header line");
		is(r->subject_mask, "^Run job (\\S+)$", "SubjectLineMask");
		if (is_int(r->n_events, 1, "one event"))
			is(r->events[0], "$JOB:ADD,[[$DATE]],SCHED,[[1]],OCADHOC", "Event");
		is(r->allowed_senders, "ops@example.com;scheduler@example.com", "AllowedSenders");
		is(r->time_frame, "0000-2400", "AllowedTimeFrame");
		is_int(r->process_body, 0, "ProcessBody=NO");
		is_int(r->process_attachments, 0, "ProcessAttachments default");
	}
	is_int(cfg.has_oauth, 0, "no [OAuth]");
	ok(cfg.state_db == NULL, "StateDatabase default unset");
	config_release(&cfg);
	ok(cfg.path == NULL && cfg.rules == NULL, "release clears the struct");
}

static void test_example3_utf16(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct config cfg;

	setenv("PROGRAMDATA", "/srv/pd", 1);
	if (!ok(config_load(&cfg, "samples/ini/example3-utf16le-bom-crlf.ini", &err) == 0,
		"load example3 (UTF-16LE) (%s)", err.msg))
		return;
	is_int(cfg.delete_mode, DELETE_ALL, "DeleteEmails=All");
	is(cfg.download_folder, "/srv/pd\\OpConxps\\SMArt Email\\invoices",
	   "%%PROGRAMDATA%% from the environment");
	is_int(cfg.exit_code_no_match, 7, "ExitCodeForNoMatchingEmails=7");
	is_int(cfg.use_last_run_date, 0, "UseLastRunDate=False");
	ok(cfg.last_run_date == NULL && cfg.last_run == 0, "no LastRunDate");
	is_int(cfg.tls_min, TLSL_TLS1_1, "TLS1_1");
	is_int(cfg.self_signed, 1, "SelfSignedCertificate=True");
	is(cfg.accept_log, "C:\\ProgramData\\OpConxps\\SMArt Email\\accepts.log", "AuditAcceptLogFile");
	is_int(cfg.log_accepts, 1, "LogAccepts");
	is(cfg.accept_format, "[[DATE]],[[SENDER]],[[SUBJECT]],[[EVENT]]", "LogAcceptFormat");
	is_int(cfg.notify_on_accepts, 1, "NotifyOnAccepts");
	is(cfg.notify_accept_subject, "Invoice received: [[SUBJECT]]", "NotifyOnAcceptSubject");
	is(cfg.notify_accept_body, "Your invoice was received and queued for import.",
	   "NotifyOnAcceptBody");
	is(cfg.notify_accept_to, "[[SENDER]]", "NotifyOnAcceptTo");
	is(cfg.reject_log, "C:\\ProgramData\\OpConxps\\SMArt Email\\rejects.log", "AuditRejectLogFile");
	is_int(cfg.log_rejects, 1, "LogRejects");
	is(cfg.reject_format, "[[DATE]],[[SENDER]],[[SUBJECT]],[[REASON]]", "LogRejectFormat");
	is_int(cfg.notify_on_rejects, 1, "NotifyOnRejects");
	is(cfg.notify_reject_subject, "Invoice refused: [[SUBJECT]]", "NotifyOnRejectSubject");
	is(cfg.notify_reject_body, "Your mail was refused: [[REASON]]", "NotifyOnRejectBody");
	ok(cfg.notify_reject_to == NULL, "NotifyOnRejectTo=N/A is unset");
	is(cfg.reject_timeframe_msg, "Invoices are accepted between 06:00 and 22:00",
	   "RejectTimeframeMessage");
	is(cfg.reject_sender_msg, "You are not on the vendor list", "RejectSenderMessage");
	is(cfg.reject_no_subject_msg, "Subject must be \"Invoice <number>\"",
	   "RejectNoMatchingSubjectMessage");
	is(cfg.reject_no_attachment_msg, "No PDF invoice attached", "RejectNoAttachmentMessage");
	is(cfg.reject_event, "$CONSOLE:DISPLAY,invoice mail rejected from [[SENDER]]: [[REASON]]",
	   "RejectEvent");
	is_int(cfg.log_opcon_events, 1, "LogOpConEvents");
	is(cfg.opcon_event_log, "/srv/pd\\OpConxps\\SMArt Email\\events.log", "OpConEventLogFile");
	is(cfg.opcon_event_format, "[[DATE]] [[EVENT]]", "LogOpConEventFormat");
	if (is_int(cfg.n_tokens, 2, "two tokens")) {
		is(cfg.tokens[0].name, "VENDORS", "token name");
		is(cfg.tokens[0].value,
		   "billing@acme.example;ar@globex.example;invoices@initech.example", "token value");
		is(cfg.tokens[1].name, "SCHEDULE", "second token");
	}
	if (is_int(cfg.n_rules, 2, "two rules")) {
		is(cfg.rules[0].attachment_mask, "(?i)^INV[-_]?\\d+\\.pdf$", "AttachmentMask");
		is_int(cfg.rules[0].process_attachments, 1, "ProcessAttachments=true");
		is(cfg.rules[0].allowed_senders, "[[VENDORS]]", "token kept raw");
		if (is_int(cfg.rules[0].n_events, 2, "Event, Event2"))
			is(cfg.rules[0].events[1], "$PROPERTY:SET,AP_LAST_INVOICE,[[1]]", "Event2");
		is(cfg.rules[1].section, "Configuration2", "second rule");
		ok(cfg.rules[1].time_frame == NULL, "no time frame");
	}
	config_release(&cfg);
	unsetenv("PROGRAMDATA");
}

static void test_example2_and_variant(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct config cfg;

	unsetenv("PROGRAMDATA");
	if (ok(config_load(&cfg, "samples/ini/example2-crlf-no-final-newline.ini", &err) == 0,
	       "load example2 (%s)", err.msg)) {
		is(cfg.msgin_dir, "C:\\ProgramData\\OpConxps\\SAM\\MSGIN",
		   "%%PROGRAMDATA%% falls back to C:\\ProgramData");
		is_int(cfg.delete_mode, DELETE_NONE, "DeleteEmails=None");
		is_int(cfg.protocol, PROTO_POP, "EmailProtocol=POP");
		is_int(cfg.tls_min, TLSL_SSL, "SSL");
		is_int(cfg.last_run, local_time(2017, 1, 1, 0, 30, 0), "12:30:00 AM is 00:30");
		if (is_int(cfg.n_rules, 1, "one rule")) {
			is_int(cfg.rules[0].process_body, 1, "ProcessBody=YES");
			is(cfg.rules[0].qualifying_subject, "^Daily close status", "QualifyingSubjectLine");
			is(cfg.rules[0].time_frame, "0600-2100", "AllowedTimeFrame");
			ok(cfg.rules[0].n_events == 2 &&
			   strcmp(cfg.rules[0].events[1], "$CONSOLE:DISPLAY,account [[1]] closed") == 0,
			   "Event2 on the last line without a newline");
		}
		config_release(&cfg);
	}
	if (ok(config_load(&cfg, "samples/ini/variant-odd-spacing.ini", &err) == 0,
	       "load variant (%s)", err.msg)) {
		is(cfg.opcon_user, "svc_opcon", "OpConUser");
		ok(cfg.opcon_password == NULL, "N/A password is unset");
		ok(cfg.download_folder == NULL, "N\\A is unset");
		is_int(cfg.delete_mode, DELETE_MATCH, "lower-case match");
		is_int(cfg.protocol, PROTO_IMAP, "lower-case imap");
		is_int(cfg.tls_min, TLSL_TLS1_2, "lower-case tls1_2");
		is_int(cfg.self_signed, 1, "yes");
		is(cfg.notify_reject_subject, "R\xc3\xa9" "ception refus\xc3\xa9" "e : [[SUBJECT]]",
		   "non-ASCII value");
		if (is_int(cfg.n_rules, 2, "two rules")) {
			is(cfg.rules[0].section, "Configuration1", "numeric order, not file order");
			is(cfg.rules[1].section, "Configuration2", "then Configuration2");
			ok(cfg.rules[0].allowed_senders == NULL, "AllowedSenders=ALL is unset");
			if (is_int(cfg.rules[0].n_events, 3, "three events")) {
				is(cfg.rules[0].events[0], "$CONSOLE:DISPLAY,pong from [[SENDER]]",
				   "Event1 is Event");
				is(cfg.rules[0].events[1], "$CONSOLE:DISPLAY,second", "Event2 second");
				is(cfg.rules[0].events[2], "$CONSOLE:DISPLAY,third", "Event3 third");
			}
		}
		config_release(&cfg);
	}
}

static void test_defaults_and_ours(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct config cfg;

	setenv("PROGRAMDATA", "/pd", 1);
	if (ok(from_text(&cfg, "[Mail]\nServer=x\n", &err) == 0, "minimal file")) {
		is(cfg.msgin_dir, "/pd\\OpConxps\\SAM\\MSGIN", "default MSGINDirectory, expanded");
		is_int(cfg.delete_mode, DELETE_MATCH, "default DeleteEmails Match");
		is_int(cfg.download_emails, 1, "default DownloadEmails True");
		is_int(cfg.use_last_run_date, 1, "default UseLastRunDate True");
		is_int(cfg.self_signed, 1, "default SelfSignedCertificate True (!)");
		is_int(cfg.self_signed_explicit, 0, "... not explicit");
		is_int(cfg.exit_code_no_match, 0, "default exit code 0");
		is_int(cfg.protocol, PROTO_UNSET, "protocol unset");
		is_int(cfg.tls_min, TLSL_UNSET, "tls unset");
		is_int(cfg.port, 0, "port unset");
		is_int(cfg.auth, AUTH_UNSET, "auth unset");
		is(cfg.oauth_authority, "https://login.microsoftonline.com", "default authority");
		is(cfg.graph_endpoint, "https://graph.microsoft.com", "default Graph endpoint");
		is(cfg.oauth_assertion_alg, "PS256", "default PS256");
		is(cfg.notify_transport, "smtp", "default transport");
		is_int(cfg.n_rules, 0, "no rules");
		config_release(&cfg);
	}
	unsetenv("PROGRAMDATA");

	setenv("MS_TEST_ROOT", "/tmp/ms", 1);
	if (ok(from_text(&cfg,
			 "[Mail]\n"
			 "User=svc@contoso.com\nServer=127.0.0.1\nEmailProtocol=GRAPH\n"
			 "SecurityProtocol=NONE\nPort=1143\nCAFile=\"%MS_TEST_ROOT%/ca.pem\"\n"
			 "AuthMethod=xoauth2\nStartTLS=on\nFolder=Posteingang\n"
			 "[OAuth]\nAuthority=https://127.0.0.1:8443\nTenant=t-1\n"
			 "ClientId=cid\nClientSecret=env:MS_SECRET\n"
			 "CertificateFile=%ms_test_root%/cert.pem\nFlow=DeviceCode\nScope=s1 s2\n"
			 "GraphEndpoint=https://127.0.0.1:9443\nCAFile=%MS_TEST_ROOT%/ca2.pem\n"
			 "AssertionAlgorithm=rs256\n"
			 "[Notify]\nServer=smtp.local\nPort=465\nUser=n@x\nPassword=file:/p\n"
			 "From=opcon@x\nAuthMethod=OAuth2\nTransport=graph\n"
			 "[State]\nStateDatabase=%MS_TEST_ROOT%/state.db\n", &err) == 0,
	       "all of ours (%s)", err.msg)) {
		is_int(cfg.protocol, PROTO_GRAPH, "GRAPH");
		is_int(cfg.tls_min, TLSL_NONE, "NONE");
		is_int(cfg.port, 1143, "Port");
		is(cfg.ca_file, "/tmp/ms/ca.pem", "CAFile unquoted and expanded");
		is_int(cfg.auth, AUTH_OAUTH2, "AuthMethod xoauth2");
		is_int(cfg.starttls, 1, "StartTLS=on");
		is(cfg.folder, "Posteingang", "Folder");
		is_int(cfg.has_oauth, 1, "has [OAuth]");
		is(cfg.oauth_authority, "https://127.0.0.1:8443", "Authority");
		is(cfg.oauth_tenant, "t-1", "Tenant alias");
		is(cfg.oauth_client_id, "cid", "ClientId");
		is(cfg.oauth_client_secret, "env:MS_SECRET", "ClientSecret as written");
		is(cfg.oauth_cert_file, "/tmp/ms/cert.pem", "CertificateFile, case-insensitive %%var%%");
		is_int(cfg.oauth_flow, FLOW_DEVICE_CODE, "Flow");
		is(cfg.oauth_scope, "s1 s2", "Scope");
		is(cfg.oauth_mailbox, "svc@contoso.com", "Mailbox defaults to [Mail] User");
		is(cfg.graph_endpoint, "https://127.0.0.1:9443", "GraphEndpoint");
		is(cfg.oauth_ca_file, "/tmp/ms/ca2.pem", "[OAuth] CAFile");
		is(cfg.oauth_assertion_alg, "RS256", "AssertionAlgorithm");
		is(cfg.notify_server, "smtp.local", "[Notify] Server");
		is_int(cfg.notify_port, 465, "[Notify] Port");
		is_int(cfg.notify_implicit_tls, 1, "implicit TLS on 465 by default");
		is(cfg.notify_user, "n@x", "[Notify] User");
		is(cfg.notify_password, "file:/p", "[Notify] Password");
		is(cfg.notify_from, "opcon@x", "[Notify] From");
		is_int(cfg.notify_auth, AUTH_OAUTH2, "[Notify] AuthMethod");
		is(cfg.notify_transport, "graph", "[Notify] Transport");
		is(cfg.state_db, "/tmp/ms/state.db", "StateDatabase");
		config_release(&cfg);
	}
	if (ok(from_text(&cfg, "[Notify]\nPort=587\n[OAuth]\nTenantId=a\nTenant=b\nFlow=ClientCredentials\n"
			 "[Mail]\nEmailProtocol=POP3\nSecurityProtocol=Tls12\n", &err) == 0,
	       "TLS spellings")) {
		is_int(cfg.notify_implicit_tls, 0, "STARTTLS on 587 by default");
		is(cfg.oauth_tenant, "a", "TenantId wins over Tenant");
		is_int(cfg.oauth_flow, FLOW_CLIENT_CREDENTIALS, "ClientCredentials");
		is_int(cfg.protocol, PROTO_POP, "POP3");
		is_int(cfg.tls_min, TLSL_TLS1_2, "Tls12");
		config_release(&cfg);
	}
	if (ok(from_text(&cfg, "[Notify]\nPort=465\nTLS=StartTLS\n", &err) == 0, "explicit TLS mode")) {
		is_int(cfg.notify_implicit_tls, 0, "TLS=StartTLS overrides the port");
		config_release(&cfg);
	}
	unsetenv("MS_TEST_ROOT");
}

static void test_rule_order(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct config cfg;

	if (ok(from_text(&cfg,
			 "[Configuration10]\nEvent=ten\n"
			 "[configuration2]\nEVENT12=twelve\nevent=one\nEvent2=two\nEvent10=ten\n"
			 "[Configuration1]\nEvent=N/A\n"
			 "[ConfigurationX]\nEvent=ignored\n", &err) == 0, "rules (%s)", err.msg)) {
		if (is_int(cfg.n_rules, 3, "three rules (ConfigurationX is not one)")) {
			is(cfg.rules[0].section, "Configuration1", "1");
			is(cfg.rules[1].section, "configuration2", "2 (spelling kept)");
			is(cfg.rules[2].section, "Configuration10", "10 after 2");
			is_int(cfg.rules[0].n_events, 0, "Event=N/A is no event");
			if (is_int(cfg.rules[1].n_events, 4, "four events")) {
				is(cfg.rules[1].events[0], "one", "Event");
				is(cfg.rules[1].events[1], "two", "Event2");
				is(cfg.rules[1].events[2], "ten", "Event10");
				is(cfg.rules[1].events[3], "twelve", "Event12");
			}
		}
		config_release(&cfg);
	}
}

static void check_error(const char *text, const char *want, const char *name)
{
	struct ms_err err = MS_ERR_INIT;
	struct config cfg;

	ok(from_text(&cfg, text, &err) < 0 && err.code == MS_ERR_CONFIG, "%s fails", name);
	is(err.msg, want, "%s: message", name);
	ok(cfg.path == NULL, "%s: nothing left allocated", name);
}

static void check_rule_error(const char *text, const char *want, const char *name)
{
	struct ms_err err = MS_ERR_INIT;
	struct config cfg;

	if (!ok(from_text(&cfg, text, &err) == 0 && cfg.n_rules == 2,
		"%s: the file loads (%s)", name, err.msg))
		return;
	is(cfg.rules[0].error, want, "%s: recorded on the rule", name);
	ok(!cfg.rules[1].error && cfg.rules[1].n_events == 1, "%s: the next rule is whole", name);
	config_release(&cfg);
}

/* Issue 14, item 9: every key neither the incumbent's nor ours, with the
 * closest known one; item 7: notify settings that cannot send. */
static void test_unknown_keys_and_notify(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct config cfg;
	char text[512];

	if (ok(from_text(&cfg, "[Mail]\nServer=x\nAuthMethd=OAuth2\nPorrt=993\n"
			 "[OAuth]\nClientSecrett=s\n[Configuration1]\nEvnt=$CONSOLE:DISPLAY,x\n"
			 "Event7=$CONSOLE:DISPLAY,y\nWhatever=1\n[Tokens]\nANYTHING=1\n"
			 "[Mial]\nUser=a\n[General]\nLastRunDate=1/1/2017 12:30:00 AM\n",
			 &err) == 0, "typos load (%s)", err.msg)) {
		if (is_int(cfg.n_unknown_keys, 6, "six unknown keys and sections")) {
			const struct config_unknown_key *u = cfg.unknown_keys;
			is(u[0].key, "AuthMethd", "AuthMethd");
			is_int(u[0].line, 3, "its line");
			is(u[0].suggestion, "AuthMethod", "did you mean AuthMethod");
			is(u[1].suggestion, "Port", "Porrt -> Port");
			is(u[2].suggestion, "ClientSecret", "ClientSecrett -> ClientSecret");
			is(u[3].suggestion, "Event", "Evnt -> Event");
			ok(u[4].suggestion == NULL, "Whatever: nothing close");
			ok(u[5].key == NULL && strcmp(u[5].section, "Mial") == 0 &&
			   strcmp(u[5].suggestion, "Mail") == 0, "[Mial]: unknown section, did you mean [Mail]");
			config_unknown_key_text(&u[0], text, sizeof(text));
			is(text, "[Mail] AuthMethd: unknown key, ignored (did you mean AuthMethod?)",
			   "warning text");
			config_unknown_key_text(&u[4], text, sizeof(text));
			is(text, "[Configuration1] Whatever: unknown key, ignored", "no suggestion");
			config_unknown_key_text(&u[5], text, sizeof(text));
			is(text, "[Mial]: unknown section, ignored (did you mean [Mail]?)", "section text");
		}
		ok(cfg.auth == AUTH_UNSET, "the typo really is ignored");
		ok(!config_notify_problem(&cfg), "no notify asked: no problem");
		config_release(&cfg);
	}
	if (ok(from_text(&cfg, "[Audit]\nNotifyOnRejects=True\n", &err) == 0, "notify")) {
		is(config_notify_problem(&cfg), "there is no [Notify] section (where the mails go out)",
		   "NotifyOnRejects without [Notify]");
		config_release(&cfg);
	}
	if (ok(from_text(&cfg, "[Audit]\nNotifyOnAccepts=True\n[Notify]\nPort=587\n", &err) == 0,
	       "notify without server")) {
		is(config_notify_problem(&cfg), "[Notify] Server is not set", "no server");
		config_release(&cfg);
	}
	if (ok(from_text(&cfg, "[Audit]\nNotifyOnAccepts=True\n[Notify]\nTransport=Graph\n",
			 &err) == 0, "notify graph")) {
		is(config_notify_problem(&cfg), "[Notify] Transport=Graph needs a complete [OAuth] section",
		   "Graph without [OAuth]");
		config_release(&cfg);
	}
	if (ok(from_text(&cfg, "[Audit]\nNotifyOnAccepts=True\n[Notify]\nTransport=Graph\n"
			 "[OAuth]\nTenantId=t\nClientId=c\nClientSecret=env:X\n", &err) == 0,
	       "notify graph ok")) {
		ok(!config_notify_problem(&cfg), "Graph through a complete [OAuth]: usable");
		is_int(cfg.n_unknown_keys, 0, "no unknown key");
		config_release(&cfg);
	}
}

static void test_errors(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct config cfg;

	check_error("[Mail]\nServer=x\nSecurityProtocol = TLS9\n",
		    "mem.ini:3: [Mail] SecurityProtocol: unknown value 'TLS9' (expected SSL, SSL2, TLS1, TLS1_1, TLS1_2, TLS1_3, NONE)",
		    "SecurityProtocol");
	check_error("[Mail]\nEmailProtocol=SMTP\n",
		    "mem.ini:2: [Mail] EmailProtocol: unknown value 'SMTP' (expected IMAP, POP, POP3, MSAL, GRAPH)",
		    "EmailProtocol");
	check_error("[Mail]\nPort=99a\n",
		    "mem.ini:2: [Mail] Port: invalid number '99a' (expected 1 to 65535)", "Port text");
	check_error("[Mail]\nPort=70000\n",
		    "mem.ini:2: [Mail] Port: invalid number '70000' (expected 1 to 65535)", "Port range");
	check_error("[General]\nExitCodeForNoMatchingEmails=-1\n",
		    "mem.ini:2: [General] ExitCodeForNoMatchingEmails: invalid number '-1' (expected 0 to 255)",
		    "exit code");
	check_error("[General]\nDeleteEmails=Some\n",
		    "mem.ini:2: [General] DeleteEmails: unknown value 'Some' (expected Match, All or None)",
		    "DeleteEmails");
	check_error("[General]\nDownloadEmails=maybe\n",
		    "mem.ini:2: [General] DownloadEmails: invalid boolean 'maybe' (expected TRUE, FALSE, YES, NO, 1 or 0)",
		    "boolean");
	check_error("[General]\nLastRunDate=yesterday\n",
		    "mem.ini:2: [General] LastRunDate: cannot parse 'yesterday' (expected M/D/YYYY h:mm:ss AM or ISO 8601)",
		    "LastRunDate");
	/* a broken rule is recorded on the rule, the rest of the file loads
	 * (rules_compile() skips it with a warning) */
	check_rule_error("[Configuration1]\nSubjectLineMask=x\nAllowedTimeFrame=0800-2460\n"
			 "[Configuration2]\nEvent=$CONSOLE:DISPLAY,x\n",
			 "mem.ini:3: [Configuration1] AllowedTimeFrame: invalid value '0800-2460' (expected HHMM-HHMM, e.g. 0800-1700)",
			 "time frame");
	check_rule_error("[Configuration1]\nEvent=a\nEvent1=b\n[Configuration2]\nEvent=$CONSOLE:DISPLAY,x\n",
			 "mem.ini:3: [Configuration1] Event1: both Event and Event1 are set (line 2); keep one",
			 "Event and Event1");
	check_rule_error("[Configuration1]\nProcessBody=perhaps\n[Configuration2]\nEvent=$CONSOLE:DISPLAY,x\n",
			 "mem.ini:2: [Configuration1] ProcessBody: invalid boolean 'perhaps' (expected TRUE, FALSE, YES, NO, 1 or 0)",
			 "ProcessBody");
	check_error("[Configuration1]\nEvent=a\n[Configuration01]\nEvent=b\n",
		    "mem.ini:3: [Configuration01]: same rule number as [Configuration1] (line 1)",
		    "same rule number");
	check_error("[OAuth]\nFlow=Interactive\n",
		    "mem.ini:2: [OAuth] Flow: unknown value 'Interactive' (expected ClientCredentials or DeviceCode)",
		    "Flow");
	check_error("[Notify]\nTransport=Fax\n",
		    "mem.ini:2: [Notify] Transport: unknown value 'Fax' (expected SMTP or Graph)",
		    "Transport");
	/* a token in the time frame is not checked here */
	ok(from_text(&cfg, "[Configuration1]\nAllowedTimeFrame=[[TF]]\n", &err) == 0,
	   "time frame with a token accepted");
	config_release(&cfg);
	/* structural errors fail config_load with file:line */
	err_clear(&err);
	ok(config_load(&cfg, "tests/data/ini/bad-garbage-line.ini", &err) < 0, "garbage line fails");
	is(err.msg, "tests/data/ini/bad-garbage-line.ini:4: expected 'key = value', a [section], a comment or a blank line",
	   "garbage line message");
	err_clear(&err);
	ok(config_load(&cfg, "tests/data/ini/invalid/latin1.ini", &err) < 0 &&
	   strncmp(err.msg, "tests/data/ini/invalid/latin1.ini:2: invalid UTF-8", 50) == 0,
	   "encoding errors pass through: %s", err.msg);
	err_clear(&err);
	ok(config_load(&cfg, "tests/data/ini/no-such.ini", &err) < 0 && err.code == MS_ERR_IO,
	   "missing file: %s", err.msg);
}

static void test_helpers(void)
{
	static const char *const t[] = { "TRUE", "true", "Yes", "YES", "1", "on" };
	static const char *const f[] = { "FALSE", "False", "no", "NO", "0", "off" };
	char buf[64], *s;
	time_t tt;
	size_t i;
	int b;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		ok(config_parse_bool(t[i], &b) == 0 && b == 1, "bool %s", t[i]);
	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		ok(config_parse_bool(f[i], &b) == 0 && b == 0, "bool %s", f[i]);
	ok(config_parse_bool("2", &b) < 0 && config_parse_bool("", &b) < 0 &&
	   config_parse_bool(NULL, &b) < 0, "bad booleans");
	ok(config_is_unset(NULL) && config_is_unset("") && config_is_unset("N/A") &&
	   config_is_unset("n/a") && config_is_unset("N\\A") && !config_is_unset("NA") &&
	   !config_is_unset(" "), "config_is_unset");

	setenv("MS_T1", "one", 1);
	unsetenv("PROGRAMDATA");
	s = config_expand_env("%MS_T1%\\x\\%NO_SUCH_VAR_X%\\100%\\%%\\%ProgramData%");
	is(s, "one\\x\\%NO_SUCH_VAR_X%\\100%\\%%\\C:\\ProgramData", "expand_env");
	free(s);
	unsetenv("MS_T1");

	setenv("TZ", "EST5EDT,M3.2.0,M11.1.0", 1);
	tzset();
	ok(config_parse_run_date("1/1/2017 12:30:00 AM", &tt) == 0 && tt == 1483248600,
	   "1/1/2017 12:30:00 AM EST");
	ok(config_parse_run_date("7/4/2023 12:00:00 PM", &tt) == 0 && tt == 1688486400,
	   "noon EDT");
	config_format_run_date(1688486400, buf, sizeof(buf));
	is(buf, "7/4/2023 12:00:00 PM", "format noon");
	config_format_run_date(1483248600, buf, sizeof(buf));
	is(buf, "1/1/2017 12:30:00 AM", "format past midnight");
	config_format_run_date(1710453909, buf, sizeof(buf));
	is(buf, "3/14/2024 6:05:09 PM", "format afternoon");
	ok(config_parse_run_date(buf, &tt) == 0 && tt == 1710453909, "format/parse round trip");
	ok(config_parse_run_date("2024-03-14T22:05:09Z", &tt) == 0 && tt == 1710453909, "ISO Z");
	ok(config_parse_run_date("2024-03-14T23:05:09+01:00", &tt) == 0 && tt == 1710453909,
	   "ISO offset");
	ok(config_parse_run_date("2024-03-14 18:05:09", &tt) == 0 && tt == 1710453909,
	   "ISO local");
	ok(config_parse_run_date("3/14/2024 18:05:09", &tt) == 0 && tt == 1710453909,
	   "24-hour without AM/PM");
	ok(config_parse_run_date("3/14/2024", &tt) == 0 && tt == 1710388800, "date only");
	ok(config_parse_run_date("2/30/2024 1:00:00 AM", &tt) < 0, "no Feb 30");
	ok(config_parse_run_date("13/1/2024 1:00:00 AM", &tt) < 0, "no month 13");
	ok(config_parse_run_date("1/1/2024 13:00:00 PM", &tt) < 0, "13 PM");
	ok(config_parse_run_date("1/1/2024 1:00:00 XM", &tt) < 0, "XM");
	ok(config_parse_run_date("2024-03-14T25:00Z", &tt) < 0, "hour 25");
	unsetenv("TZ");
	tzset();

	is(config_protocol_name(PROTO_POP), "POP", "protocol name");
	is_int(config_default_port(PROTO_IMAP, 1), 993, "IMAPS");
	is_int(config_default_port(PROTO_IMAP, 0), 143, "IMAP");
	is_int(config_default_port(PROTO_POP, 1), 995, "POP3S");
	is_int(config_default_port(PROTO_POP, 0), 110, "POP3");
	ok(config_known_key("mail", "selfsignedcertificate"), "known key");
	ok(config_known_key("Configuration7", "Event14"), "EventN known");
	ok(config_known_key("Tokens", "ANYTHING"), "any token");
	ok(!config_known_key("Mail", "Passwort"), "typo unknown");
	ok(!config_known_key("Configuration1", "Event0"), "Event0 unknown");
	ok(config_known_section("configuration12") && config_known_section("OAuth") &&
	   !config_known_section("Configuration") && !config_known_section("Misc"),
	   "known sections");
}

static void test_save_run_date(void)
{
	struct ms_err err = MS_ERR_INIT;
	char dir[] = "/tmp/test_config.XXXXXX", *path, *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	struct ini *ini = NULL;
	struct config cfg;
	time_t t = 1710453909;

	if (!ok(mkdtemp(dir) != NULL, "temp dir"))
		return;
	path = fs_join(dir, "x.ini");
	setenv("TZ", "EST5EDT,M3.2.0,M11.1.0", 1);
	tzset();
	ok(fs_read_file("samples/ini/example1-crlf-bom.ini", INI_MAX_FILE, &a, &alen, &err) == 0 &&
	   fs_write_atomic(path, a, alen, 0600, &err) == 0, "copy example1");
	ok(config_save_run_date(path, t, &err) == 0, "save LastRunDate (%s)", err.msg);
	ok(fs_read_file(path, INI_MAX_FILE, &b, &blen, &err) == 0, "read back");
	/* only the date bytes differ: "3/14/2024 6:05:00 PM" -> "3/14/2024 6:05:09 PM" */
	ok(a && b && alen == blen && memcmp(a, b, alen) != 0, "same length, changed");
	if (a && b && alen == blen) {
		size_t i, diff = 0;

		for (i = 0; i < alen; i++)
			diff += a[i] != b[i];
		is_int(diff, 1, "exactly one byte changed (the seconds digit)");
	}
	ok(config_load(&cfg, path, &err) == 0 && cfg.last_run == t, "reads back as the same time");
	config_release(&cfg);
	free(b);
	b = NULL;
	/* a UTF-16 file without the key gets it added in [General] */
	free(a);
	a = NULL;
	ok(fs_read_file("samples/ini/example3-utf16le-bom-crlf.ini", INI_MAX_FILE, &a, &alen, &err) == 0 &&
	   fs_write_atomic(path, a, alen, 0600, &err) == 0, "copy example3");
	ok(config_save_run_date(path, t, &err) == 0, "add LastRunDate");
	ok(ini_load(&ini, path, &err) == 0, "reload");
	if (ini) {
		is(ini_encoding_name(ini), "UTF-16LE with BOM", "still UTF-16LE");
		is(ini_get(ini, "General", "LastRunDate"), "3/14/2024 6:05:09 PM", "value");
		is_int(ini_get_line(ini, "General", "LastRunDate"), 11, "after the last [General] key");
	}
	ini_free(ini);
	err_clear(&err);
	ok(config_save_run_date("/nonexistent/dir/x.ini", t, &err) < 0 && err.code == MS_ERR_IO,
	   "missing file fails: %s", err.msg);
	unsetenv("TZ");
	tzset();
	unlink(path);
	rmdir(dir);
	free(path);
	free(a);
}

int main(void)
{
	test_example1();
	test_example3_utf16();
	test_example2_and_variant();
	test_defaults_and_ours();
	test_rule_order();
	test_errors();
	test_unknown_keys_and_notify();
	test_helpers();
	test_save_run_date();
	return done_testing();
}
