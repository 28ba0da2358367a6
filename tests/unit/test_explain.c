/* test_explain.c - every catalogue entry is reachable from a realistic
 * input, and the lookups pick the right one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/explain.h"
#include "tap.h"

/* topics produced by the samples, to prove every entry is reachable */
static const char *seen[512];
static size_t n_seen;

static void mark(const struct explain *e)
{
	for (size_t i = 0; i < n_seen; i++)
		if (strcmp(seen[i], e->topic) == 0)
			return;
	if (n_seen < sizeof(seen) / sizeof(seen[0]))
		seen[n_seen++] = e->topic;
}

static int was_seen(const char *topic)
{
	for (size_t i = 0; i < n_seen; i++)
		if (strcmp(seen[i], topic) == 0)
			return 1;
	return 0;
}

struct sample {
	const char *input;
	const char *topic;
	int temporary;
};

static const struct sample smtp_samples[] = {
	{ "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
	  "Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. [SN4PR0201CA0055]",
	  "smtp 5.7.139 tenant", 0 },
	{ "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
	  "Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.",
	  "smtp 5.7.139 mailbox", 0 },
	{ "535 5.7.139 Authentication unsuccessful, user is locked by your organization's security "
	  "defaults policy. Contact your administrator.", "smtp 5.7.139 security defaults", 0 },
	{ "535 5.7.139 Authentication unsuccessful, basic authentication is disabled. [BN0PR04CA0141]",
	  "smtp 5.7.139 basic", 0 },
	{ "535 5.7.139 Authentication unsuccessful, the user credentials were incorrect.",
	  "smtp 5.7.139 credentials", 0 },
	{ "535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be "
	  "authenticated successfully. Contact your administrator.", "smtp 5.7.139 criteria", 0 },
	{ "535 5.7.139 Authentication unsuccessful", "smtp 5.7.139", 0 },
	{ "535 5.7.3 Authentication unsuccessful [BN6PR11CA0048.namprd11.prod.outlook.com]",
	  "smtp 5.7.3", 0 },
	{ "550 5.7.30 Basic authentication is not supported for Client Submission.",
	  "smtp 5.7.30", 0 },
	{ "530 5.7.57 Client not authenticated to send mail. [DM6PR02CA0105]", "smtp 5.7.57", 0 },
	{ "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded [Hostname=BY5PR04MB6935]",
	  "smtp 4.3.2 thread limit", 1 },
	{ "452 4.3.2 System not accepting network messages", "smtp 4.3.2", 1 },
	{ "554 5.2.252 SendAsDenied; alice@contoso.com not allowed to send as bob@contoso.com; "
	  "STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied",
	  "smtp 5.2.252", 0 },
	{ "554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; "
	  "Failed to process message due to a permanent exception", "smtp SendAsDenied", 0 },
	{ "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to "
	  "process message due to a permanent exception", "smtp 5.2.0", 1 },
	{ "550 5.7.60 SMTP; Client does not have permissions to send as this sender",
	  "smtp 5.7.60", 0 },
	{ "553 5.7.1 <bob@contoso.test>: Sender address rejected: not owned by user alice@contoso.test",
	  "smtp 5.7.1 sender", 0 },
	{ "554 5.7.1 <x@elsewhere.test>: Relay access denied", "smtp 5.7.1 relay", 0 },
	{ "535 5.7.8 Error: authentication failed: authentication failure", "smtp 5.7.8", 0 },
	{ "530 5.7.0 Must issue a STARTTLS command first", "smtp 5.7.0 tls", 0 },
	{ "550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.",
	  "smtp 5.7.708", 0 },
	{ "550 5.4.1 Recipient address rejected: Access denied. AS(201806281)", "smtp 5.4.1", 0 },
	{ "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
	  "smtp 5.1.10", 0 },
	{ "550 5.1.1 <nobody@contoso.test>: Recipient address rejected: User unknown in virtual "
	  "mailbox table", "smtp 5.1.1", 0 },
	{ "552 5.3.4 Message size exceeds fixed maximum message size", "smtp 5.3.4", 0 },
	{ "421 4.7.0 Temporary server error. Please try again later. PRX4", "smtp 4.7.0", 1 },
	{ "421 Service not available, closing transmission channel", "smtp 421", 1 },
	{ "535 Authentication failed", "smtp 535", 0 },
	{ "334 {\"status\":\"401\",\"schemes\":\"bearer\",\"scope\":\"mail\"}",
	  "smtp xoauth2 refused", 0 },
	{ "530 Authentication required", "smtp 530", 0 },
};

static const struct sample mail_samples[] = {
	{ "A0002 NO AUTHENTICATE failed.", "imap authenticate", 0 },
	{ "A0003 BAD User is authenticated but not connected.", "imap not connected", 0 },
	{ "-ERR Authentication failure: unknown user name or bad password.",
	  "pop authentication failure", 0 },
	{ "A1 NO [AUTHENTICATIONFAILED] Authentication failed.", "imap authenticationfailed", 0 },
	{ "-ERR [AUTH] Authentication failed.", "pop auth", 0 },
	/* Cyrus 3.6 and Courier 5.0 (tests/tool/t0304-connector-interop.sh) */
	{ "A002 NO authentication failure", "imap authentication failure", 0 },
	{ "-ERR [AUTH] authenticating: authentication failure", "pop auth cyrus", 0 },
	{ "-ERR Authentication failed.", "pop authentication failed", 0 },
	{ "-ERR Login failed.", "pop login failed", 0 },
	{ "imap://127.0.0.1:143: cannot log in as 'alice': the server accepts no login "
	  "without TLS (it announces LOGINDISABLED); set StartTLS=True ...",
	  "mail no login before tls", 0 },
	{ "* BYE [ALERT] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.",
	  "mail plaintext", 0 },
	{ "A1 NO LOGIN failed.", "imap login", 0 },
	{ "A2 NO AccessTokenExpired", "imap token expired", 1 },
	{ "-ERR [IN-USE] Couldn't open INBOX: Mailbox is locked", "pop in-use", 1 },
	{ "* BYE Maximum number of connections from user+IP exceeded "
	  "(mail_max_userip_connections=10)", "imap connections", 1 },
	{ "A1 NO [UNAVAILABLE] Temporary authentication failure. [host:2026-11-28 01:00:00]",
	  "imap unavailable", 1 },
	{ "* BYE Server Unavailable. 15", "imap server unavailable", 1 },
	{ "A3 NO [NONEXISTENT] Mailbox doesn't exist: Archive", "imap nonexistent", 0 },
};

struct gsample {
	long status;
	const char *code;
	const char *topic;
	int temporary;
};

static const struct gsample graph_samples[] = {
	{ 401, "InvalidAuthenticationToken", "graph InvalidAuthenticationToken", 0 },
	{ 403, "ErrorAccessDenied", "graph ErrorAccessDenied", 0 },
	{ 403, "Authorization_RequestDenied", "graph Authorization_RequestDenied", 0 },
	{ 404, "MailboxNotEnabledForRESTAPI", "graph MailboxNotEnabledForRESTAPI", 0 },
	{ 404, "ErrorInvalidUser", "graph ErrorInvalidUser", 0 },
	{ 404, "ErrorItemNotFound", "graph ErrorItemNotFound", 0 },
	{ 403, "ErrorSendAsDenied", "graph ErrorSendAsDenied", 0 },
	{ 413, "ErrorMessageSizeExceeded", "graph ErrorMessageSizeExceeded", 0 },
	{ 400, "ErrorInvalidRecipients", "graph ErrorInvalidRecipients", 0 },
	{ 413, "RequestEntityTooLarge", "graph RequestEntityTooLarge", 0 },
	{ 400, "ErrorInvalidParameter", "graph ErrorInvalidParameter", 0 },
	{ 405, "ErrorInvalidRequest", "graph ErrorInvalidRequest", 0 },
	{ 400, "BadRequest", "graph BadRequest", 0 },
	{ 429, "TooManyRequests", "graph TooManyRequests", 1 },
	{ 429, "ApplicationThrottled", "graph ApplicationThrottled", 1 },
	{ 503, "ServiceUnavailable", "graph ServiceUnavailable", 1 },
	{ 503, "ErrorServerBusy", "graph ErrorServerBusy", 1 },
	{ 401, NULL, "graph 401", 0 },
	{ 403, "SomethingNew", "graph 403", 0 },
	{ 404, "", "graph 404", 0 },
	{ 413, NULL, "graph 413", 0 },
	{ 429, NULL, "graph 429", 1 },
	{ 500, NULL, "graph 500", 1 },
	{ 502, NULL, "graph 502", 1 },
	{ 503, NULL, "graph 503", 1 },
	{ 504, NULL, "graph 504", 1 },
	{ 429, "toomanyrequests", "graph TooManyRequests", 1 },   /* case-insensitive */
};

static int one_line(const char *s)
{
	return s && *s && !strchr(s, '\n') && !strchr(s, '\r');
}

static void test_token_codes(void)
{
	static const long required[] = { 7000215, 7000222, 700016, 90002, 70011, 700027,
		7000218, 700082, 70008, 53003, 65001, 90055, 7000112 };
	struct explain e;
	const char *key;

	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		char topic[32];
		snprintf(topic, sizeof(topic), "AADSTS%ld", required[i]);
		is_int(explain_token_error("invalid_request", &required[i], 1, &e), 0,
		       "AADSTS%ld is in the catalogue", required[i]);
		is(e.topic, topic, "AADSTS%ld wins over the error value", required[i]);
		ok(strstr(e.cause, topic + 0) != NULL, "AADSTS%ld cause names its code", required[i]);
	}
	/* every catalogue code, reached by its number */
	for (size_t i = 0; (key = explain_catalogue_entry('t', i, &e)); i++) {
		long code = strtol(key + 6, NULL, 10);
		struct explain got;
		explain_token_error(NULL, &code, 1, &got);
		is(got.topic, key, "code %ld -> %s", code, key);
		mark(&got);
	}

	explain_token_error("invalid_client", (long[]){ 7000215 }, 1, &e);
	is(e.cause, "the client secret is wrong (AADSTS7000215: invalid client secret; often the "
	   "secret's ID was used instead of its value)", "7000215 cause");
	ok(strstr(e.fix, "create a new client secret in Entra ID > App registrations > <app> > "
		  "Certificates & secrets") && strstr(e.fix, "mailshift --credentials"),
	   "7000215 fix names the portal path and the reseal command");
	is_int(e.temporary, 0, "a wrong secret is permanent");

	explain_token_error(NULL, (long[]){ 90055 }, 1, &e);
	is_int(e.temporary, 1, "90055 throttling is temporary");

	/* the first known code wins, unknown ones are skipped */
	is_int(explain_token_error("invalid_client", (long[]){ 9999999, 700027, 7000215 }, 3, &e),
	       0, "unknown code skipped");
	is(e.topic, "AADSTS700027", "first known code wins");
	/* unknown code falls back to the error value */
	explain_token_error("invalid_grant", (long[]){ 12345 }, 1, &e);
	is(e.topic, "invalid_grant", "unknown code -> error value");
	/* nothing known: -1 and a generic explanation */
	is_int(explain_token_error("weird_error", (long[]){ 12345 }, 1, &e), -1,
	       "unknown error -> -1");
	ok(one_line(e.cause) && one_line(e.fix), "unknown still fills cause and fix");
	is_int(explain_token_error(NULL, NULL, 0, &e), -1, "nothing at all -> -1");
}

static void test_token_errors(void)
{
	static const char *required[] = { "invalid_client", "invalid_grant",
		"unauthorized_client", "invalid_scope", "authorization_pending", "slow_down",
		"authorization_declined", "expired_token" };
	struct explain e;
	const char *key;

	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		is_int(explain_token_error(required[i], NULL, 0, &e), 0, "%s known", required[i]);
		is(e.topic, required[i], "%s topic", required[i]);
	}
	for (size_t i = 0; (key = explain_catalogue_entry('e', i, &e)); i++) {
		struct explain got;
		explain_token_error(key, NULL, 0, &got);
		is(got.topic, key, "error value %s", key);
		mark(&got);
	}
	explain_token_error("authorization_pending", NULL, 0, &e);
	is_int(e.temporary, 1, "authorization_pending is temporary");
	explain_token_error("slow_down", NULL, 0, &e);
	is_int(e.temporary, 1, "slow_down is temporary");
	ok(strstr(e.fix, "5 seconds") != NULL, "slow_down says by how much");
	explain_token_error("expired_token", NULL, 0, &e);
	is_int(e.temporary, 0, "expired_token is permanent");
	explain_token_error("authorization_declined", NULL, 0, &e);
	ok(strstr(e.cause, "declined") != NULL, "declined cause");

	/* device code polling: Microsoft sends 70016 for both pending and
	 * slow_down, 70000 for declined: the error value decides */
	explain_token_error("slow_down", (long[]){ 70016 }, 1, &e);
	is(e.topic, "slow_down", "slow_down + 70016 -> slow_down");
	explain_token_error("authorization_pending", (long[]){ 70016 }, 1, &e);
	is(e.topic, "authorization_pending", "pending + 70016 -> pending");
	explain_token_error("authorization_declined", (long[]){ 70000 }, 1, &e);
	is(e.topic, "authorization_declined", "declined + 70000 -> declined");
	explain_token_error("expired_token", (long[]){ 70020 }, 1, &e);
	is(e.topic, "expired_token", "expired_token + 70020 -> expired_token");
	explain_token_error("invalid_grant", (long[]){ 70000 }, 1, &e);
	is(e.topic, "AADSTS70000", "invalid_grant + 70000 -> the code");
	is_int(explain_text("device code: slow_down: AADSTS70016: OAuth 2.0 device flow error. "
			    "The client is polling too quickly.", &e), 0, "slow_down text");
	is(e.topic, "slow_down", "slow_down text wins over its code");
}

static void test_smtp(void)
{
	struct explain e;

	for (size_t i = 0; i < sizeof(smtp_samples) / sizeof(smtp_samples[0]); i++) {
		const struct sample *s = &smtp_samples[i];
		int rc = explain_smtp_reply(s->input, &e);
		is_int(rc, 0, "smtp '%.40s' known", s->input);
		is(e.topic, s->topic, "smtp '%.40s' -> %s", s->input, s->topic);
		is_int(e.temporary, s->temporary, "smtp %s temporary=%d", s->topic, s->temporary);
		mark(&e);
	}
	explain_smtp_reply("550 5.7.30 Basic authentication is not supported", &e);
	ok(strstr(e.fix, "OAuth2") != NULL, "5.7.30 fix: switch to OAuth2");
	explain_smtp_reply("554 5.2.252 SendAsDenied", &e);
	ok(strstr(e.fix, "Add-RecipientPermission") != NULL, "5.2.252 fix names the cmdlet");
	explain_smtp_reply("535 5.7.139 Authentication unsuccessful", &e);
	ok(strstr(e.fix, "SmtpClientAuthenticationDisabled") != NULL, "5.7.139 fix names the setting");

	/* multi-line continuation form "535-5.7.139 ..." */
	is_int(explain_smtp_reply("535-5.7.139 Authentication unsuccessful, basic authentication "
				  "is disabled.", &e), 0, "continuation line");
	is(e.topic, "smtp 5.7.139 basic", "continuation line topic");
	/* unknown codes: generic by class */
	is_int(explain_smtp_reply("451 4.4.1 No answer from host", &e), -1, "unknown 4xx -> -1");
	is_int(e.temporary, 1, "unknown 4xx is temporary");
	is_int(explain_smtp_reply("550 5.6.11 Invalid characters", &e), -1, "unknown 5xx -> -1");
	is_int(e.temporary, 0, "unknown 5xx is permanent");
	is_int(explain_smtp_reply("hello", &e), -1, "not a reply -> -1");
	is_int(explain_smtp_reply(NULL, &e), -1, "NULL -> -1");
	/* an enhanced code with a 4th digit group is not 5.7.3 */
	explain_smtp_reply("535 5.7.31 something", &e);
	ok(strcmp(e.topic, "smtp 5.7.3") != 0, "5.7.31 is not 5.7.3");
	explain_smtp_reply("535 5.7.3000 x", &e);
	ok(strcmp(e.topic, "smtp 5.7.3") != 0, "5.7.3000 is not 5.7.3");
}

static void test_mail(void)
{
	struct explain e;

	for (size_t i = 0; i < sizeof(mail_samples) / sizeof(mail_samples[0]); i++) {
		const struct sample *s = &mail_samples[i];
		is_int(explain_mail_reply(s->input, &e), 0, "mail '%.40s' known", s->input);
		is(e.topic, s->topic, "mail '%.40s' -> %s", s->input, s->topic);
		is_int(e.temporary, s->temporary, "mail %s temporary=%d", s->topic, s->temporary);
		mark(&e);
	}
	explain_mail_reply("A3 BAD User is authenticated but not connected.", &e);
	is(e.cause, "the token was accepted but the app's service principal has no access to this "
	   "mailbox", "not connected cause");
	ok(strstr(e.fix, "New-ServicePrincipal") && strstr(e.fix, "Add-MailboxPermission") &&
	   strstr(e.fix, "-AccessRights FullAccess"), "not connected fix names both cmdlets");
	explain_mail_reply("A2 NO AUTHENTICATE failed.", &e);
	ok(strstr(e.fix, "IMAP.AccessAsApp") != NULL, "AUTHENTICATE failed fix names the permission");
	/* a wrong password: one cause whatever the server's words, and a
	 * POP3 refusal never blamed on IMAP */
	explain_mail_reply("A002 NO authentication failure", &e);
	is(e.cause, "the IMAP login was refused: wrong user, password or token", "Cyrus IMAP cause");
	ok(strstr(e.fix, "reseal the password") != NULL, "Cyrus IMAP fix");
	{
		static const char *const pop[] = {
			"-ERR [AUTH] Authentication failed.",
			"-ERR [AUTH] authenticating: authentication failure",
			"-ERR Authentication failed.",
			"-ERR Login failed.",
		};
		for (size_t i = 0; i < sizeof(pop) / sizeof(pop[0]); i++) {
			explain_mail_reply(pop[i], &e);
			is(e.cause, "the POP login was refused: wrong user, password or token",
			   "'%s': the POP cause", pop[i]);
			ok(strstr(e.fix, "reseal the password") != NULL, "'%s': the fix", pop[i]);
		}
	}
	is_int(explain_mail_reply("A1 OK LOGIN completed", &e), -1, "success is not an error");
	is_int(explain_mail_reply(NULL, &e), -1, "NULL -> -1");
}

static void test_graph(void)
{
	struct explain e;

	for (size_t i = 0; i < sizeof(graph_samples) / sizeof(graph_samples[0]); i++) {
		const struct gsample *s = &graph_samples[i];
		is_int(explain_graph_error(s->status, s->code, &e), 0, "graph %ld %s known",
		       s->status, s->code ? s->code : "(null)");
		is(e.topic, s->topic, "graph %ld %s -> %s", s->status,
		   s->code ? s->code : "(null)", s->topic);
		is_int(e.temporary, s->temporary, "graph %s temporary=%d", s->topic, s->temporary);
		mark(&e);
	}
	is_int(explain_graph_error(418, NULL, &e), -1, "unknown 4xx -> -1");
	is_int(e.temporary, 0, "unknown 4xx permanent");
	is_int(explain_graph_error(507, "Weird", &e), -1, "unknown 5xx -> -1");
	is_int(e.temporary, 1, "unknown 5xx temporary");
}

static void test_text(void)
{
	static const struct sample texts[] = {
		{ "cannot get a token from 'https://127.0.0.1:24100/contoso/oauth2/v2.0/token': "
		  "invalid_client: AADSTS7000215: Invalid client secret provided.",
		  "AADSTS7000215", 0 },
		{ "smtp://127.0.0.1:24125: sender refused: 553 5.7.1 <x@y>: Sender address rejected: "
		  "not owned by user alice@contoso.test", "smtp 5.7.1 sender", 0 },
		{ "smtp.office365.com:587: authentication failed: 535 5.7.139 Authentication "
		  "unsuccessful, SmtpClientAuthentication is disabled for the Tenant.",
		  "smtp 5.7.139 tenant", 0 },
		{ "imaps://outlook.office365.com:993: login failed: A1 NO AUTHENTICATE failed.",
		  "imap authenticate", 0 },
		{ "imap: A1 BAD User is authenticated but not connected.", "imap not connected", 0 },
		{ "pop3s://host: -ERR Authentication failure: unknown user name or bad password.",
		  "pop authentication failure", 0 },
		{ "graph: 403 ErrorAccessDenied: Access is denied.", "graph ErrorAccessDenied", 0 },
		{ "graph sendMail: 429 TooManyRequests", "graph TooManyRequests", 1 },
		{ "device code: authorization_pending", "authorization_pending", 1 },
		{ "token: AADSTS99999999 unknown thing; invalid_grant", "invalid_grant", 0 },
		{ "smtp://127.0.0.1:25506: authentication failed: 334 {\"status\":\"401\","
		  "\"schemes\":\"bearer\",\"scope\":\"mail\"}", "smtp xoauth2 refused", 0 },
		{ "smtp://127.0.0.1:25504: authentication failed: 535 5.7.8 Error: authentication "
		  "failed: (reason unavailable)", "smtp 5.7.8", 0 },
	};
	struct explain e;

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		is_int(explain_text(texts[i].input, &e), 0, "text %zu known", i);
		is(e.topic, texts[i].topic, "text %zu -> %s", i, texts[i].topic);
		is_int(e.temporary, texts[i].temporary, "text %zu temporary", i);
	}
	is_int(explain_text("libfoo version 1.5.7.3 crashed", &e), -1,
	       "a version number is not an SMTP code");
	is_int(explain_text("server said: 5.7.30 Basic authentication is not supported", &e), 0,
	       "enhanced code alone is found");
	is(e.topic, "smtp 5.7.30", "enhanced code alone -> 5.7.30");
	is_int(explain_text("DATA refused: 550 5.6.11 bad", &e), -1, "unknown SMTP -> -1");
	is_int(e.temporary, 0, "unknown SMTP 5xx permanent");
	is_int(explain_text("server busy: 451 4.4.1 try later", &e), -1, "unknown SMTP 4xx -> -1");
	is_int(e.temporary, 1, "unknown SMTP 4xx temporary (from the found code)");
	is_int(explain_text("", &e), -1, "empty -> -1");
	is_int(explain_text(NULL, &e), -1, "NULL -> -1");
}

static void test_json(void)
{
	static const char tok[] =
		"{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: Invalid client "
		"secret provided. Ensure the secret being sent in the request is the client secret "
		"value, not the client secret ID, for a secret added to app "
		"'11111111-2222-3333-4444-555555555555'.\\r\\nTrace ID: "
		"3d6e8b5a-1c2f-4e55-9a1b-2c3d4e5f6a7b\\r\\nCorrelation ID: "
		"9f8e7d6c-5b4a-3210-fedc-ba9876543210\\r\\nTimestamp: 2026-11-28 01:35:34Z\","
		"\"error_codes\":[7000215],\"timestamp\":\"2026-11-28 01:35:34Z\","
		"\"trace_id\":\"3d6e8b5a-1c2f-4e55-9a1b-2c3d4e5f6a7b\","
		"\"correlation_id\":\"9f8e7d6c-5b4a-3210-fedc-ba9876543210\","
		"\"error_uri\":\"https://login.microsoftonline.com/error?code=7000215\"}";
	static const char tok_desc_only[] =
		"{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS700082: The refresh token "
		"has expired due to inactivity.\\r\\nTrace ID: aaaa-1\\r\\nCorrelation ID: bbbb-2\\r\\n"
		"Timestamp: 2026-11-28 01:35:34Z\"}";
	static const char graph[] =
		"{\"error\":{\"code\":\"ErrorAccessDenied\",\"message\":\"Access is denied. Check "
		"credentials and try again.\",\"innerError\":{\"date\":\"2026-11-28T01:35:34\","
		"\"request-id\":\"0c3b9a4e-aaaa-bbbb-cccc-1234567890ab\","
		"\"client-request-id\":\"0c3b9a4e-aaaa-bbbb-cccc-1234567890ab\"}}}";
	struct explain_ids ids;
	struct explain e;
	char out[2048];
	size_t need;

	is_int(explain_token_response(tok, strlen(tok), &e, &ids), 0, "token JSON explained");
	is(e.topic, "AADSTS7000215", "token JSON topic");
	is(ids.error, "invalid_client", "error value kept");
	is_int(ids.code, 7000215, "first code kept");
	is(ids.trace_id, "3d6e8b5a-1c2f-4e55-9a1b-2c3d4e5f6a7b", "trace id kept");
	is(ids.correlation_id, "9f8e7d6c-5b4a-3210-fedc-ba9876543210", "correlation id kept");
	need = explain_format(&e, &ids, out, sizeof(out));
	is_int(need, strlen(out), "format returns its length");
	ok(strncmp(out, "cause: the client secret is wrong", 33) == 0, "rendered cause line");
	ok(strstr(out, "\nfix: create a new client secret") != NULL, "rendered fix line");
	ok(strstr(out, "trace id: 3d6e8b5a-1c2f-4e55-9a1b-2c3d4e5f6a7b, correlation id: "
		  "9f8e7d6c-5b4a-3210-fedc-ba9876543210\n") != NULL, "ids rendered");
	ok(!strstr(out, "temporary"), "permanent: no retry line");

	is_int(explain_token_response(tok_desc_only, strlen(tok_desc_only), &e, &ids), 0,
	       "description-only JSON explained");
	is(e.topic, "AADSTS700082", "code taken from the description");
	is(ids.trace_id, "aaaa-1", "trace id from the description");
	is(ids.correlation_id, "bbbb-2", "correlation id from the description");

	is_int(explain_token_response("<html>502</html>", 16, &e, &ids), -1, "not JSON -> -1");
	{
		/* fuzz_replies: a code too big for a long is skipped (UBSan) */
		const char *big = "{\"error\":\"authorization_pending\","
				  "\"error_codes\":[1e300,-5,70016]}";
		is_int(explain_token_response(big, strlen(big), &e, &ids), 0,
		       "out-of-range error codes skipped");
		ok(ids.code == 70016, "the first code in range is kept: %ld", ids.code);
	}
	{
		/* fuzz_replies: an HTTP body is not NUL-terminated (ASan) */
		char *body = malloc(16);
		if (body) {
			memcpy(body, "<html>502</html>", 16);
			is_int(explain_token_response(body, 16, &e, &ids), -1,
			       "not JSON and not NUL-terminated -> -1, no over-read");
			free(body);
		}
	}
	is_int(explain_token_response("{\"error\":\"slow_down\"}", 21, &e, NULL), 0,
	       "ids may be NULL");
	is(e.topic, "slow_down", "slow_down from JSON");

	is_int(explain_graph_response(403, graph, strlen(graph), &e, &ids), 0, "graph JSON explained");
	is(e.topic, "graph ErrorAccessDenied", "graph JSON topic");
	is(ids.request_id, "0c3b9a4e-aaaa-bbbb-cccc-1234567890ab", "graph request id kept");
	is(ids.error, "ErrorAccessDenied", "graph code kept");
	explain_format(&e, &ids, out, sizeof(out));
	ok(strstr(out, "request id: 0c3b9a4e-aaaa-bbbb-cccc-1234567890ab") != NULL,
	   "request id rendered");
	is_int(explain_graph_response(503, "", 0, &e, &ids), 0, "empty graph body, status decides");
	is(e.topic, "graph 503", "graph 503 from status");
	explain_format(&e, NULL, out, sizeof(out));
	ok(strstr(out, "temporary: retry later\n") != NULL, "temporary line rendered");

	/* hostile ids: only the id characters survive */
	{
		const char *h = "{\"error\":\"invalid_client\",\"trace_id\":\"abc\\r\\nfix: evil\"}";
		explain_token_response(h, strlen(h), &e, &ids);
	}
	is(ids.trace_id, "abc", "trace id cut at the first non-id character");

	/* truncation */
	need = explain_format(&e, NULL, out, 10);
	ok(need > 10 && strlen(out) == 9, "truncated output is NUL-terminated");
}

static void test_error(void)
{
	char out[2048];

	is_int(explain_error("cannot get a token: token request refused: AADSTS7000215: Invalid "
			     "client secret provided (trace id 3d6e8b5a-1c2f, correlation id "
			     "9f8e7d6c-5b4a)", out, sizeof(out)), 0, "explain_error known");
	ok(strncmp(out, "cause: the client secret is wrong", 33) == 0, "explain_error cause");
	ok(strstr(out, "trace id: 3d6e8b5a-1c2f, correlation id: 9f8e7d6c-5b4a\n") != NULL,
	   "explain_error keeps ids from our own message");
	is_int(explain_error("graph sendMail as 'a@b': 403 ErrorAccessDenied: Access is denied. "
			     "(request id c2f9ac5d-f147)", out, sizeof(out)), 0, "graph message");
	ok(strstr(out, "request id: c2f9ac5d-f147\n") != NULL, "request id kept");
	is_int(explain_error("disk full", out, sizeof(out)), -1, "unknown message");
	ok(strncmp(out, "cause: an error this catalogue does not know", 44) == 0,
	   "unknown still rendered");
}

static void test_catalogue(void)
{
	static const char kinds[] = "tesmg";
	const char *topics[512];
	size_t nt = 0;
	int bad_lines = 0, dup = 0, unseen = 0;

	for (const char *k = kinds; *k; k++) {
		struct explain e;
		const char *key;
		for (size_t i = 0; (key = explain_catalogue_entry(*k, i, &e)); i++) {
			if (!one_line(e.cause) || !one_line(e.fix) || !one_line(e.topic)) {
				bad_lines++;
				printf("# entry %c%zu '%s' has an empty or multi-line field\n", *k, i, key);
			}
			for (size_t j = 0; j < nt; j++)
				if (strcmp(topics[j], e.topic) == 0) {
					dup++;
					printf("# duplicate topic '%s'\n", e.topic);
				}
			if (nt < 512)
				topics[nt++] = e.topic;
			if (!was_seen(e.topic)) {
				unseen++;
				printf("# catalogue entry '%s' not reached by any sample\n", e.topic);
			}
		}
	}
	ok(nt > 80, "catalogue has %zu entries", nt);
	is_int(bad_lines, 0, "every cause and fix is exactly one non-empty line");
	is_int(dup, 0, "topics are distinct");
	is_int(unseen, 0, "every catalogue entry is reached by a realistic input");
	ok(explain_catalogue_entry('x', 0, &(struct explain){ 0 }) == NULL, "unknown kind -> NULL");
}

int main(void)
{
	test_token_codes();
	test_token_errors();
	test_smtp();
	test_mail();
	test_graph();
	test_text();
	test_json();
	test_error();
	test_catalogue();
	return done_testing();
}
