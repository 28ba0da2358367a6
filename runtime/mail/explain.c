/*
 * explain.c - the error catalogue.  Tables first, lookups after; nothing
 * here allocates or talks to anything.
 */
#include "mail/explain.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/compat.h"

#define PERM 0
#define TEMP 1

#define APPREG "Entra ID > App registrations > <app>"
#define SECRETS APPREG " > Certificates & secrets"
#define PERMS APPREG " > API permissions"
/* where the new client secret goes depends on where [OAuth] ClientSecret
 * takes it from; verify names the one of each INI (secret_update_hint()) */
#define RESEAL "put the new value where [OAuth] ClientSecret takes it from (its env: " \
	"variable or file:, or seal it with `mailshift --credentials -clientsecret:VALUE`)"
#define MBX_PERM "New-ServicePrincipal -AppId <client id> -ObjectId <enterprise app object id>, " \
	"then Add-MailboxPermission -Identity <mailbox> -User <service principal id> -AccessRights FullAccess"

/* ---- token endpoint: AADSTS codes ------------------------------------ */

struct code_entry {
	long code;
	struct explain e;
};

static const struct code_entry token_codes[] = {
	{ 7000215, { "the client secret is wrong (AADSTS7000215: invalid client secret; "
		"often the secret's ID was used instead of its value)",
		"create a new client secret in " SECRETS " and " RESEAL,
		PERM, "AADSTS7000215" } },
	{ 7000222, { "the client secret has expired (AADSTS7000222)",
		"create a new client secret in " SECRETS ", " RESEAL
		" and note its new expiry date", PERM, "AADSTS7000222" } },
	{ 700016, { "the application was not found in the tenant (AADSTS700016): "
		"[OAuth] ClientId or TenantId is wrong, or the app was never consented in this tenant",
		"compare [OAuth] ClientId and TenantId with " APPREG
		" > Overview (Application (client) ID, Directory (tenant) ID); "
		"for a multi-tenant app an admin of this tenant must consent",
		PERM, "AADSTS700016" } },
	{ 90002, { "the tenant was not found (AADSTS90002): [OAuth] TenantId is wrong, "
		"the tenant has no active subscription, or Authority points at another cloud",
		"set [OAuth] TenantId to the Directory (tenant) ID from Entra ID > Overview "
		"(or a verified domain) and check [OAuth] Authority for national clouds",
		PERM, "AADSTS90002" } },
	{ 70011, { "the requested scope is invalid (AADSTS70011): client credentials need "
		"exactly one resource ending in /.default",
		"set [OAuth] Scope to https://outlook.office365.com/.default (IMAP, POP, SMTP) or "
		"https://graph.microsoft.com/.default (Graph), or remove it to use the default",
		PERM, "AADSTS70011" } },
	{ 700027, { "the client assertion signature did not validate (AADSTS700027): the "
		"certificate in [OAuth] CertificateFile is not one uploaded to the app, or its key does not match",
		"upload the certificate of [OAuth] CertificateFile in " SECRETS
		" > Certificates, or point CertificateFile at the matching key and certificate",
		PERM, "AADSTS700027" } },
	{ 7000218, { "the token request carried no client credential (AADSTS7000218): "
		"neither a client secret nor a certificate assertion",
		"set [OAuth] ClientSecret (sealed with `mailshift --credentials`) or CertificateFile; "
		"for device code enable 'Allow public client flows' in " APPREG " > Authentication",
		PERM, "AADSTS7000218" } },
	{ 700082, { "the refresh token expired because it was not used for too long "
		"(AADSTS700082, 90 days of inactivity by default)",
		"sign in again with `mailshift --oauth-login` and schedule "
		"`mailshift --renewMsalToken --renewTokenSilent` so the token stays in use",
		PERM, "AADSTS700082" } },
	{ 70008, { "the refresh token has expired or was revoked (AADSTS70008: "
		"inactivity, password change or an admin revoked sessions)",
		"sign in again with `mailshift --oauth-login`", PERM, "AADSTS70008" } },
	{ 53003, { "access was blocked by a Conditional Access policy (AADSTS53003)",
		"ask an Entra ID admin to check Entra ID > Sign-in logs for this app and adjust "
		"Protection > Conditional Access (exclude the app or allow the location it runs from)",
		PERM, "AADSTS53003" } },
	{ 65001, { "the app has not been granted the permission it asks for (AADSTS65001: no consent)",
		"grant admin consent in " PERMS " > Grant admin consent (IMAP.AccessAsApp, "
		"POP.AccessAsApp, SMTP.SendAsApp, Mail.ReadWrite or Mail.Send as needed)",
		PERM, "AADSTS65001" } },
	{ 90055, { "the token service is throttling this app (AADSTS90055: too many requests)",
		"retry later; keep the shared token cache enabled so runs reuse one token",
		TEMP, "AADSTS90055" } },
	{ 7000112, { "the application is disabled in the tenant (AADSTS7000112)",
		"enable it: Entra ID > Enterprise applications > <app> > Properties > "
		"Enabled for users to sign-in = Yes", PERM, "AADSTS7000112" } },
	{ 700024, { "the client assertion is not within its valid time range (AADSTS700024): "
		"this machine's clock is wrong", "synchronise the clock (NTP) and retry",
		PERM, "AADSTS700024" } },
	{ 500011, { "the resource of the requested scope does not exist in the tenant "
		"(AADSTS500011): wrong scope host or no Exchange Online in this tenant",
		"set [OAuth] Scope to https://outlook.office365.com/.default or "
		"https://graph.microsoft.com/.default and check the tenant has Exchange Online",
		PERM, "AADSTS500011" } },
	{ 50173, { "the grant was revoked, typically after a password change (AADSTS50173)",
		"sign in again with `mailshift --oauth-login`", PERM, "AADSTS50173" } },
	{ 50076, { "multi-factor authentication is required for this sign-in (AADSTS50076)",
		"sign in interactively with `mailshift --oauth-login` (device code), or use "
		"client credentials, which Conditional Access MFA rules do not apply to",
		PERM, "AADSTS50076" } },
	{ 50126, { "the user name or password is wrong (AADSTS50126)",
		"check [Mail] User and reseal the password with `mailshift --credentials`",
		PERM, "AADSTS50126" } },
	{ 50034, { "the user account does not exist in this tenant (AADSTS50034)",
		"check [Mail] User / [OAuth] Mailbox and [OAuth] TenantId", PERM, "AADSTS50034" } },
	{ 50053, { "the account is locked after too many failed sign-ins (AADSTS50053)",
		"wait for the lockout to expire and fix the stored password; ask an admin "
		"to check Entra ID > Sign-in logs", TEMP, "AADSTS50053" } },
	{ 50057, { "the user account is disabled (AADSTS50057)",
		"enable the account in Entra ID > Users > <user> > Properties, or use another mailbox",
		PERM, "AADSTS50057" } },
	{ 70016, { "the user has not finished the device code sign-in yet (AADSTS70016)",
		"keep polling; open the verification URL and enter the code shown",
		TEMP, "AADSTS70016" } },
	{ 70000, { "the grant is invalid (AADSTS70000): the device code was already used or "
		"is not valid", "run `mailshift --oauth-login` again", PERM, "AADSTS70000" } },
	{ 70020, { "the device code expired before the sign-in was completed (AADSTS70020)",
		"run `mailshift --oauth-login` again and finish signing in within the time shown",
		PERM, "AADSTS70020" } },
	{ 70003, { "the app may not use this grant type (AADSTS70003)",
		"check [OAuth] Flow; device code needs 'Allow public client flows' in " APPREG
		" > Authentication", PERM, "AADSTS70003" } },
	{ 50196, { "the token service is refusing a request loop from this client (AADSTS50196)",
		"retry later; keep the shared token cache enabled so runs reuse one token",
		TEMP, "AADSTS50196" } },
	{ 900144, { "a required parameter is missing from the token request (AADSTS900144)",
		"check [OAuth] ClientId, Scope and the credential settings are all set",
		PERM, "AADSTS900144" } },
	{ 900561, { "the token endpoint was called with the wrong HTTP method (AADSTS900561): "
		"[OAuth] Authority probably points at a proxy or a wrong URL",
		"check [OAuth] Authority (default https://login.microsoftonline.com)",
		PERM, "AADSTS900561" } },
	{ 9002313, { "the token request is malformed (AADSTS9002313)",
		"check [OAuth] Authority, TenantId, ClientId and Scope for stray characters",
		PERM, "AADSTS9002313" } },
	{ 90014, { "a required field is missing from the token request (AADSTS90014)",
		"check [OAuth] ClientId, Scope and the credential settings are all set",
		PERM, "AADSTS90014" } },
};

/* ---- token endpoint: `error` values ---------------------------------- */

struct name_entry {
	const char *name;
	struct explain e;
};

static const struct name_entry token_errors[] = {
	{ "invalid_client", { "the token service refused the app's credentials (invalid_client)",
		"check [OAuth] ClientId, and ClientSecret (" RESEAL ") or CertificateFile "
		"against " SECRETS, PERM, "invalid_client" } },
	{ "invalid_grant", { "the grant is invalid or expired (invalid_grant): refresh "
		"token, device code or assertion no longer accepted",
		"sign in again with `mailshift --oauth-login`; for certificates check "
		"[OAuth] CertificateFile matches the uploaded certificate", PERM, "invalid_grant" } },
	{ "unauthorized_client", { "the app may not use this flow (unauthorized_client)",
		"for device code enable 'Allow public client flows' in " APPREG
		" > Authentication; check [OAuth] ClientId and TenantId", PERM, "unauthorized_client" } },
	{ "invalid_scope", { "the requested scope is invalid (invalid_scope)",
		"set [OAuth] Scope to https://outlook.office365.com/.default (IMAP, POP, SMTP) or "
		"https://graph.microsoft.com/.default (Graph), or remove it to use the default",
		PERM, "invalid_scope" } },
	{ "authorization_pending", { "the user has not finished the device code sign-in yet "
		"(authorization_pending)", "keep polling at the given interval",
		TEMP, "authorization_pending" } },
	{ "slow_down", { "the device code poll was too fast (slow_down)",
		"poll less often: add 5 seconds to the interval", TEMP, "slow_down" } },
	{ "authorization_declined", { "the user declined the sign-in (authorization_declined)",
		"run `mailshift --oauth-login` again and accept, or ask an admin to grant consent in "
		PERMS, PERM, "authorization_declined" } },
	{ "expired_token", { "the device code expired before the sign-in was completed (expired_token)",
		"run `mailshift --oauth-login` again and finish signing in within the time shown",
		PERM, "expired_token" } },
	{ "access_denied", { "the sign-in was denied (access_denied)",
		"ask an admin to check Entra ID > Sign-in logs for this app", PERM, "access_denied" } },
	{ "consent_required", { "consent is required for the requested permissions (consent_required)",
		"grant admin consent in " PERMS " > Grant admin consent", PERM, "consent_required" } },
	{ "interaction_required", { "the sign-in needs user interaction (interaction_required: "
		"MFA, consent or Conditional Access)", "sign in again with `mailshift --oauth-login`",
		PERM, "interaction_required" } },
	{ "invalid_request", { "the token request is malformed (invalid_request)",
		"check [OAuth] Authority, TenantId, ClientId and Scope", PERM, "invalid_request" } },
	{ "invalid_tenant", { "the tenant was not found (invalid_tenant)",
		"set [OAuth] TenantId to the Directory (tenant) ID from Entra ID > Overview "
		"(or a verified domain)", PERM, "invalid_tenant" } },
	{ "unsupported_grant_type", { "the token service does not support this grant type here "
		"(unsupported_grant_type)", "check [OAuth] Flow and [OAuth] Authority",
		PERM, "unsupported_grant_type" } },
	{ "temporarily_unavailable", { "the token service is temporarily unavailable",
		"retry later", TEMP, "temporarily_unavailable" } },
	{ "server_error", { "the token service had an internal error (server_error)",
		"retry later", TEMP, "server_error" } },
};

/* ---- SMTP replies ----------------------------------------------------- */

struct smtp_entry {
	int basic;            /* 3-digit code, 0 = any */
	const char *enhanced; /* "5.7.139", NULL = any */
	const char *text;     /* case-insensitive substring, NULL = any */
	struct explain e;
};

#define SENDAS_FIX "send from the authenticated mailbox itself, or grant Send As: " \
	"Add-RecipientPermission -Identity <From address> -Trustee <login mailbox> -AccessRights SendAs"

static const struct smtp_entry smtp_table[] = {
	{ 0, "5.7.139", "disabled for the Tenant", { "SMTP AUTH is disabled for the whole tenant (5.7.139)",
		"enable it for the sending mailbox: Set-CASMailbox -Identity <mailbox> "
		"-SmtpClientAuthenticationDisabled $false, or send through Graph ([Notify] Transport=graph)",
		PERM, "smtp 5.7.139 tenant" } },
	{ 0, "5.7.139", "disabled for the Mailbox", { "SMTP AUTH is disabled for this mailbox (5.7.139)",
		"Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled $false",
		PERM, "smtp 5.7.139 mailbox" } },
	{ 0, "5.7.139", "security defaults", { "the mailbox is locked by the tenant's security "
		"defaults, which block SMTP AUTH with a password (5.7.139)",
		"use OAuth ([Notify] AuthMethod=OAuth2 with SMTP.SendAsApp) or Graph; or turn off "
		"security defaults in Entra ID > Properties > Manage security defaults",
		PERM, "smtp 5.7.139 security defaults" } },
	{ 0, "5.7.139", "basic authentication is disabled", { "basic SMTP AUTH is disabled for "
		"this tenant (5.7.139)", "switch [Notify] AuthMethod to OAuth2 (XOAUTH2 with "
		"SMTP.SendAsApp) or send through Graph", PERM, "smtp 5.7.139 basic" } },
	{ 0, "5.7.139", "credentials were incorrect", { "the SMTP user or password is wrong (5.7.139)",
		"check [Notify] User and reseal the password with `mailshift --credentials`",
		PERM, "smtp 5.7.139 credentials" } },
	{ 0, "5.7.139", "did not meet the criteria", { "a Conditional Access policy or MFA "
		"requirement refused the SMTP login (5.7.139)", "use OAuth ([Notify] AuthMethod=OAuth2) "
		"or ask an admin to review Entra ID > Sign-in logs", PERM, "smtp 5.7.139 criteria" } },
	{ 0, "5.7.139", NULL, { "SMTP AUTH is disabled for the tenant or the mailbox, or blocked by "
		"security defaults (5.7.139)", "Set-CASMailbox -Identity <mailbox> "
		"-SmtpClientAuthenticationDisabled $false (Set-TransportConfig for the tenant), or send "
		"through Graph", PERM, "smtp 5.7.139" } },
	{ 0, "5.7.3", NULL, { "the SMTP login was refused (5.7.3 authentication unsuccessful): wrong "
		"user or password, or for XOAUTH2 a token without SMTP.SendAsApp or an unregistered "
		"service principal", "check [Notify] User and reseal the password with `mailshift "
		"--credentials`; for OAuth grant SMTP.SendAsApp in " PERMS " and run " MBX_PERM,
		PERM, "smtp 5.7.3" } },
	{ 0, "5.7.30", NULL, { "the server does not accept basic authentication (5.7.30)",
		"switch [Notify] AuthMethod to OAuth2 (XOAUTH2 with SMTP.SendAsApp) or send through Graph",
		PERM, "smtp 5.7.30" } },
	{ 0, "5.7.57", NULL, { "the client is not authenticated (5.7.57): the server refused to "
		"send without a login", "set [Notify] User and a password or OAuth2, and use port 587 "
		"with STARTTLS", PERM, "smtp 5.7.57" } },
	{ 0, "4.3.2", "thread limit", { "too many concurrent SMTP connections for this mailbox "
		"(4.3.2: Exchange allows 3)", "retry later and send with fewer parallel connections",
		TEMP, "smtp 4.3.2 thread limit" } },
	{ 0, "4.3.2", NULL, { "the server is temporarily refusing mail (4.3.2)",
		"retry later", TEMP, "smtp 4.3.2" } },
	{ 0, "5.2.252", NULL, { "the login mailbox may not send as the From address (5.2.252 SendAsDenied)",
		SENDAS_FIX, PERM, "smtp 5.2.252" } },
	{ 0, NULL, "SendAsDenied", { "the login mailbox may not send as the From address (SendAsDenied)",
		SENDAS_FIX, PERM, "smtp SendAsDenied" } },
	{ 0, "5.2.0", NULL, { "the mailbox hit its sending limit (5.2.0: 10,000 recipients a day "
		"or 30 messages a minute in Exchange Online)", "retry after the limit resets (up to 24 "
		"hours) and send fewer notifications; check Microsoft Defender > Restricted entities "
		"if the mailbox was blocked", TEMP, "smtp 5.2.0" } },
	{ 0, "5.7.60", NULL, { "the login mailbox may not send as this sender (5.7.60)",
		SENDAS_FIX, PERM, "smtp 5.7.60" } },
	{ 0, "5.7.1", "not owned by user", { "the server refuses this From address for the "
		"logged-in user (sender not owned by the login)", "set the From address to the login "
		"mailbox, or allow the login to send as it (Exchange: Add-RecipientPermission "
		"-AccessRights SendAs)", PERM, "smtp 5.7.1 sender" } },
	{ 0, "5.7.1", "Relay access denied", { "the server refuses to relay to this recipient "
		"(relay access denied): not logged in, or the recipient domain is not accepted",
		"log in before sending ([Notify] User) or send to a domain the server accepts",
		PERM, "smtp 5.7.1 relay" } },
	{ 0, "5.7.8", NULL, { "the SMTP login was refused (5.7.8 authentication failed): wrong user, "
		"password or token", "check [Notify] User and reseal the password with `mailshift "
		"--credentials`", PERM, "smtp 5.7.8" } },
	{ 0, "5.7.0", "STARTTLS", { "the server requires STARTTLS before this command",
		"use STARTTLS or implicit TLS (never plaintext) for submission", PERM, "smtp 5.7.0 tls" } },
	{ 0, "5.7.708", NULL, { "Exchange Online refuses mail from this IP address (5.7.708)",
		"send through the tenant's own connector or Graph; ask Microsoft support to review the IP",
		PERM, "smtp 5.7.708" } },
	{ 0, "5.4.1", NULL, { "the recipient address was rejected by the receiving organisation (5.4.1)",
		"check the recipient address exists (Directory Based Edge Blocking rejects unknown ones)",
		PERM, "smtp 5.4.1" } },
	{ 0, "5.1.10", NULL, { "the recipient was not found (5.1.10)",
		"correct the address in NotifyOnAcceptTo / NotifyOnRejectTo", PERM, "smtp 5.1.10" } },
	{ 0, "5.1.1", NULL, { "the recipient mailbox does not exist (5.1.1)",
		"correct the address in NotifyOnAcceptTo / NotifyOnRejectTo", PERM, "smtp 5.1.1" } },
	{ 0, "5.3.4", NULL, { "the message is larger than the server accepts (5.3.4)",
		"send a shorter notification body", PERM, "smtp 5.3.4" } },
	{ 0, "4.7.0", NULL, { "the server refused the session for now (4.7.0)",
		"retry later", TEMP, "smtp 4.7.0" } },
	{ 334, NULL, "\"schemes\"", { "the server refused the XOAUTH2 bearer token (expired, issued "
		"for another resource, or the app lacks SMTP.SendAsApp or access to the mailbox)",
		"request the token for https://outlook.office365.com/.default, grant SMTP.SendAsApp "
		"with admin consent in " PERMS " and run " MBX_PERM, PERM, "smtp xoauth2 refused" } },
	{ 421, NULL, NULL, { "the server closed the session (421 service not available)",
		"retry later", TEMP, "smtp 421" } },
	{ 535, NULL, NULL, { "the SMTP login was refused (535)",
		"check [Notify] User and its password or token", PERM, "smtp 535" } },
	{ 530, NULL, NULL, { "the server requires authentication or TLS first (530)",
		"set [Notify] User and use STARTTLS or implicit TLS", PERM, "smtp 530" } },
};

static const struct explain smtp_temp_generic = {
	"the mail server refused for now (temporary SMTP error)", "retry later",
	TEMP, "smtp 4xx" };
static const struct explain smtp_perm_generic = {
	"the mail server refused the mail (permanent SMTP error)",
	"read the server's reply above; it names what it refused", PERM, "smtp 5xx" };

/* ---- IMAP / POP replies ---------------------------------------------- */

static const struct name_entry mail_table[] = {
	{ "User is authenticated but not connected", { "the token was accepted but the app's "
		"service principal has no access to this mailbox",
		"register the service principal and give it the mailbox: " MBX_PERM,
		PERM, "imap not connected" } },
	{ "AccessTokenExpired", { "the access token expired during the session",
		"reconnect with a fresh token (automatic); if it persists check the clock",
		TEMP, "imap token expired" } },
	{ "AUTHENTICATE failed", { "the server refused the XOAUTH2 login: the token is for the "
		"wrong resource or user, or the app lacks IMAP.AccessAsApp / POP.AccessAsApp",
		"grant IMAP.AccessAsApp (or POP.AccessAsApp) with admin consent in " PERMS
		", use scope https://outlook.office365.com/.default, and " MBX_PERM,
		PERM, "imap authenticate" } },
	{ "[AUTHENTICATIONFAILED]", { "the IMAP login was refused: wrong user, password or token",
		"check [Mail] User and reseal the password with `mailshift --credentials`; "
		"for OAuth check the token's scope and user", PERM, "imap authenticationfailed" } },
	/* the same refusal in Cyrus's and Courier's POP3 words, before any
	 * IMAP entry that a POP reply could also contain ("Login failed") */
	{ "-ERR [AUTH] authenticating: authentication failure", { "the POP login was refused: "
		"wrong user, password or token",
		"check [Mail] User and reseal the password with `mailshift --credentials`",
		PERM, "pop auth cyrus" } },
	{ "-ERR Authentication failed", { "the POP login was refused: wrong user, password or token",
		"check [Mail] User and reseal the password with `mailshift --credentials`",
		PERM, "pop authentication failed" } },
	{ "-ERR Login failed", { "the POP login was refused: wrong user, password or token",
		"check [Mail] User and reseal the password with `mailshift --credentials`",
		PERM, "pop login failed" } },
	/* Cyrus IMAP's wording of a wrong password (SASL's "authentication
	 * failure") */
	{ " NO authentication failure", { "the IMAP login was refused: wrong user, password or token",
		"check [Mail] User and reseal the password with `mailshift --credentials`; "
		"for OAuth check the token's scope and user", PERM, "imap authentication failure" } },
	{ "accepts no login without TLS", { "the server offers no login before TLS "
		"(LOGINDISABLED, or no mechanism until STARTTLS)",
		"set [Mail] StartTLS=True with SecurityProtocol=TLS1_2, or use the server's "
		"implicit TLS port", PERM, "mail no login before tls" } },
	{ "Plaintext authentication disallowed", { "the server refuses a login before TLS",
		"use [Mail] SecurityProtocol TLS (implicit) or StartTLS=True", PERM, "mail plaintext" } },
	{ "-ERR Authentication failure", { "the POP login was refused: wrong password, or for "
		"OAuth the app lacks POP.AccessAsApp, or POP is disabled on the mailbox",
		"check [Mail] User and password; for OAuth grant POP.AccessAsApp and " MBX_PERM
		"; enable POP: Set-CASMailbox -Identity <mailbox> -PopEnabled $true",
		PERM, "pop authentication failure" } },
	{ "[AUTH] Authentication failed", { "the POP login was refused: wrong user, password or token",
		"check [Mail] User and reseal the password with `mailshift --credentials`",
		PERM, "pop auth" } },
	{ "LOGIN failed", { "the IMAP login with a password was refused (Exchange Online no longer "
		"accepts basic authentication for IMAP/POP; elsewhere: wrong password)",
		"for Exchange Online switch to OAuth ([Mail] AuthMethod=OAuth2 with an [OAuth] section); "
		"otherwise reseal the password with `mailshift --credentials`", PERM, "imap login" } },
	{ "[IN-USE]", { "the POP mailbox is locked by another session",
		"retry later; make sure no other client keeps the mailbox open", TEMP, "pop in-use" } },
	{ "Maximum number of connections", { "too many connections for this user and address",
		"retry later with fewer parallel sessions", TEMP, "imap connections" } },
	{ "[UNAVAILABLE]", { "the mail server is temporarily unavailable", "retry later",
		TEMP, "imap unavailable" } },
	{ "Server Unavailable", { "the mail server is temporarily unavailable", "retry later",
		TEMP, "imap server unavailable" } },
	{ "[NONEXISTENT]", { "the folder does not exist", "check [Mail] Folder (default INBOX)",
		PERM, "imap nonexistent" } },
};

/* ---- Graph errors ----------------------------------------------------- */

struct graph_entry {
	const char *code;   /* error.code, NULL = match on status alone */
	long status;        /* 0 = any */
	struct explain e;
};

static const struct graph_entry graph_table[] = {
	{ "InvalidAuthenticationToken", 0, { "Graph refused the access token (expired, or issued "
		"for another resource or cloud)", "request it for scope https://graph.microsoft.com/.default "
		"and check [OAuth] GraphEndpoint matches [OAuth] Authority's cloud", PERM,
		"graph InvalidAuthenticationToken" } },
	{ "ErrorAccessDenied", 0, { "the app may not access this mailbox through Graph (missing "
		"application permission, or RBAC for Applications excludes the mailbox)",
		"grant Mail.ReadWrite and Mail.Send (application) with admin consent in " PERMS
		"; with RBAC for Applications add the mailbox to the app's management scope "
		"(New-ManagementRoleAssignment -App <app> -Role 'Application Mail.ReadWrite' "
		"-CustomResourceScope <scope>)", PERM, "graph ErrorAccessDenied" } },
	{ "Authorization_RequestDenied", 0, { "the app lacks the directory permission for this "
		"operation (insufficient privileges)", "grant the missing application permission "
		"with admin consent in " PERMS, PERM, "graph Authorization_RequestDenied" } },
	{ "MailboxNotEnabledForRESTAPI", 0, { "the user has no Exchange Online mailbox "
		"(on-premises, unlicensed, inactive or soft-deleted)", "assign an Exchange Online "
		"licence to the user, or use IMAP/POP against the server that hosts the mailbox",
		PERM, "graph MailboxNotEnabledForRESTAPI" } },
	{ "ErrorInvalidUser", 0, { "the mailbox user does not exist", "check [OAuth] Mailbox "
		"(or [Mail] User): it must be the mailbox's UPN or object id", PERM,
		"graph ErrorInvalidUser" } },
	{ "ErrorItemNotFound", 0, { "the message no longer exists (deleted or moved by someone else)",
		"nothing to do if another run already processed it", PERM, "graph ErrorItemNotFound" } },
	{ "ErrorSendAsDenied", 0, { "the app or user may not send as this address (ErrorSendAsDenied)",
		"grant Mail.Send (application) with admin consent, or send from the mailbox in the "
		"URL itself; for delegated access Add-RecipientPermission -AccessRights SendAs",
		PERM, "graph ErrorSendAsDenied" } },
	{ "ErrorMessageSizeExceeded", 0, { "the message is larger than Graph accepts (about 4 MB per "
		"request)", "send a smaller notification", PERM, "graph ErrorMessageSizeExceeded" } },
	{ "ErrorInvalidRecipients", 0, { "a recipient address is invalid", "correct the addresses "
		"in NotifyOnAcceptTo / NotifyOnRejectTo", PERM, "graph ErrorInvalidRecipients" } },
	{ "RequestEntityTooLarge", 0, { "the request is larger than Graph accepts (4 MB)",
		"send a smaller message", PERM, "graph RequestEntityTooLarge" } },
	{ "ErrorInvalidParameter", 0, { "Graph refused a parameter of the request "
		"(ErrorInvalidParameter)", "check the mailbox, folder and message settings; if they "
		"are right, report the request as a mailshift bug", PERM, "graph ErrorInvalidParameter" } },
	{ "ErrorInvalidRequest", 0, { "Graph does not support this request (ErrorInvalidRequest)",
		"check [OAuth] GraphEndpoint points at Microsoft Graph v1.0", PERM,
		"graph ErrorInvalidRequest" } },
	{ "BadRequest", 0, { "Graph could not read the request (BadRequest)",
		"check [OAuth] GraphEndpoint; if it is right, report the request as a mailshift bug",
		PERM, "graph BadRequest" } },
	{ "TooManyRequests", 0, { "Graph is throttling this app for this mailbox (429)",
		"wait the Retry-After time (automatic) and keep to 4 concurrent requests per mailbox",
		TEMP, "graph TooManyRequests" } },
	{ "ApplicationThrottled", 0, { "Graph is throttling this app (ApplicationThrottled)",
		"wait the Retry-After time (automatic) and send fewer requests", TEMP,
		"graph ApplicationThrottled" } },
	{ "ServiceUnavailable", 0, { "Graph is temporarily unavailable (503)",
		"retry later (automatic, with backoff)", TEMP, "graph ServiceUnavailable" } },
	{ "ErrorServerBusy", 0, { "the mailbox server is busy", "retry later (automatic, with backoff)",
		TEMP, "graph ErrorServerBusy" } },
	{ NULL, 401, { "Graph refused the request as unauthenticated (401)",
		"check the token's scope https://graph.microsoft.com/.default and the app's permissions",
		PERM, "graph 401" } },
	{ NULL, 403, { "Graph refused the request as forbidden (403)",
		"grant Mail.ReadWrite / Mail.Send (application) with admin consent in " PERMS,
		PERM, "graph 403" } },
	{ NULL, 404, { "the mailbox or item was not found (404)",
		"check [OAuth] Mailbox and the message id", PERM, "graph 404" } },
	{ NULL, 413, { "the request is too large for Graph (413)", "send a smaller message",
		PERM, "graph 413" } },
	{ NULL, 429, { "Graph is throttling this app for this mailbox (429)",
		"wait the Retry-After time (automatic) and keep to 4 concurrent requests per mailbox",
		TEMP, "graph 429" } },
	{ NULL, 500, { "Graph had an internal error (500)", "retry later", TEMP, "graph 500" } },
	{ NULL, 502, { "Graph gateway error (502)", "retry later", TEMP, "graph 502" } },
	{ NULL, 503, { "Graph is temporarily unavailable (503)", "retry later (automatic, with backoff)",
		TEMP, "graph 503" } },
	{ NULL, 504, { "Graph timed out (504)", "retry later", TEMP, "graph 504" } },
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const struct explain unknown = {
	"an error this catalogue does not know",
	"read the server's message above", PERM, "unknown" };

static int fallback(struct explain *out, const struct explain *e)
{
	*out = *e;
	return -1;
}

/* Case-insensitive substring search. */
static const char *find_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return hay;
	return NULL;
}

/* ---- token ------------------------------------------------------------ */

static const struct explain *token_code(long code)
{
	for (size_t i = 0; i < NELEM(token_codes); i++)
		if (token_codes[i].code == code)
			return &token_codes[i].e;
	return NULL;
}

static const struct explain *token_error_value(const char *error)
{
	if (!error)
		return NULL;
	for (size_t i = 0; i < NELEM(token_errors); i++)
		if (strcmp(token_errors[i].name, error) == 0)
			return &token_errors[i].e;
	return NULL;
}

/* Device code polling answers: Microsoft gives authorization_pending and
 * slow_down the same code (70016), so the `error` value decides. */
static const char *const decisive[] = { "authorization_pending", "slow_down",
	"authorization_declined", "expired_token", NULL };

static int is_decisive(const char *error)
{
	for (const char *const *d = decisive; error && *d; d++)
		if (strcmp(*d, error) == 0)
			return 1;
	return 0;
}

int explain_token_error(const char *error, const long *codes, size_t n,
			struct explain *out)
{
	const struct explain *e;

	if (is_decisive(error) && (e = token_error_value(error))) {
		*out = *e;
		return 0;
	}

	for (size_t i = 0; codes && i < n; i++)
		if ((e = token_code(codes[i]))) {
			*out = *e;
			return 0;
		}
	if ((e = token_error_value(error))) {
		*out = *e;
		return 0;
	}
	return fallback(out, &unknown);
}

/* ---- SMTP -------------------------------------------------------------- */

/* Parse "NNN[ -]X.Y.Z ..." at s.  Fills basic (0 if none) and enhanced
 * ("" if none). */
static void smtp_parse(const char *s, int *basic, char *enh, size_t enhsz)
{
	const char *p = s;
	size_t n = 0;

	*basic = 0;
	enh[0] = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	if (isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]) &&
	    isdigit((unsigned char)p[2]) && (p[3] == ' ' || p[3] == '-' || p[3] == '\0')) {
		*basic = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
		p += 3;
		if (*p)
			p++;
	}
	/* class.subject.detail: 1 digit, 1-3 digits, 1-3 digits */
	if ((*p == '2' || *p == '4' || *p == '5') && p[1] == '.') {
		const char *q = p + 2;
		int d1 = 0, d2 = 0;
		while (isdigit((unsigned char)*q) && d1 < 4) { q++; d1++; }
		if (d1 >= 1 && d1 <= 3 && *q == '.') {
			q++;
			while (isdigit((unsigned char)*q) && d2 < 4) { q++; d2++; }
			if (d2 >= 1 && d2 <= 3 && !isdigit((unsigned char)*q) && *q != '.') {
				n = (size_t)(q - p);
				if (n < enhsz) {
					memcpy(enh, p, n);
					enh[n] = '\0';
				}
			}
		}
	}
}

static int smtp_lookup(int basic, const char *enh, const char *text,
		       struct explain *out)
{
	for (size_t i = 0; i < NELEM(smtp_table); i++) {
		const struct smtp_entry *t = &smtp_table[i];
		if (t->basic && t->basic != basic)
			continue;
		if (t->enhanced && strcmp(t->enhanced, enh) != 0)
			continue;
		if (t->text && !find_ci(text, t->text))
			continue;
		if (!t->basic && !t->enhanced && !t->text)
			continue;
		*out = t->e;
		return 0;
	}
	return -1;
}

static int smtp_generic(int basic, const char *enh, struct explain *out)
{
	int cls = basic ? basic / 100 : (enh[0] ? enh[0] - '0' : 0);

	if (cls == 4)
		return fallback(out, &smtp_temp_generic);
	if (cls == 5)
		return fallback(out, &smtp_perm_generic);
	return fallback(out, &unknown);
}

int explain_smtp_reply(const char *reply, struct explain *out)
{
	char enh[16];
	int basic;

	if (!reply)
		return fallback(out, &unknown);
	smtp_parse(reply, &basic, enh, sizeof(enh));
	if (smtp_lookup(basic, enh, reply, out) == 0)
		return 0;
	return smtp_generic(basic, enh, out);
}

/* ---- IMAP / POP --------------------------------------------------------- */

static int mail_lookup(const char *reply, struct explain *out)
{
	for (size_t i = 0; i < NELEM(mail_table); i++)
		if (find_ci(reply, mail_table[i].name)) {
			*out = mail_table[i].e;
			return 0;
		}
	return -1;
}

int explain_mail_reply(const char *reply, struct explain *out)
{
	if (reply && mail_lookup(reply, out) == 0)
		return 0;
	return fallback(out, &unknown);
}

/* ---- Graph ------------------------------------------------------------- */

int explain_graph_error(long http_status, const char *code, struct explain *out)
{
	if (code && *code)
		for (size_t i = 0; i < NELEM(graph_table); i++)
			if (graph_table[i].code &&
			    strcasecmp(graph_table[i].code, code) == 0) {
				*out = graph_table[i].e;
				return 0;
			}
	for (size_t i = 0; i < NELEM(graph_table); i++)
		if (!graph_table[i].code && graph_table[i].status == http_status) {
			*out = graph_table[i].e;
			return 0;
		}
	if (http_status >= 500 || http_status == 408)
		return fallback(out, &(struct explain){ "Graph failed on its side",
			"retry later", TEMP, "graph 5xx" });
	return fallback(out, &unknown);
}

/* ---- any text ----------------------------------------------------------- */

/* Find "AADSTS<digits>" and return the number, 0 if none. */
static long find_aadsts(const char *s)
{
	const char *p = s;

	while ((p = find_ci(p, "AADSTS"))) {
		p += 6;
		if (isdigit((unsigned char)*p)) {
			long v = 0;
			int nd = 0;
			while (isdigit((unsigned char)*p) && nd < 10) {
				v = v * 10 + (*p - '0');
				p++;
				nd++;
			}
			return v;
		}
	}
	return 0;
}

/* Find an SMTP reply inside s: a 3-digit code followed by an enhanced code,
 * or an enhanced code alone, each not glued to other digits. */
static int find_smtp(const char *s, int *basic, char *enh, size_t enhsz)
{
	for (const char *p = s; *p; p++) {
		if (p > s && (isdigit((unsigned char)p[-1]) || p[-1] == '.'))
			continue;
		if (!isdigit((unsigned char)*p))
			continue;
		smtp_parse(p, basic, enh, enhsz);
		if (*basic && enh[0] && enh[0] == '0' + *basic / 100)
			return 0;
		if (!*basic && enh[0] && (enh[0] == '4' || enh[0] == '5'))
			return 0;
	}
	*basic = 0;
	enh[0] = '\0';
	return -1;
}

int explain_text(const char *msg, struct explain *out)
{
	const struct explain *e;
	char enh[16];
	int basic, have_smtp;
	long code;

	if (!msg)
		return fallback(out, &unknown);
	for (const char *const *d = decisive; *d; d++)
		if (strstr(msg, *d)) {
			*out = *token_error_value(*d);
			return 0;
		}
	if ((code = find_aadsts(msg)) && (e = token_code(code))) {
		*out = *e;
		return 0;
	}
	have_smtp = find_smtp(msg, &basic, enh, sizeof(enh)) == 0;
	if (!have_smtp && strstr(msg, "334 {")) {     /* an XOAUTH2 error challenge */
		have_smtp = 1;
		basic = 334;
	}
	if (have_smtp && smtp_lookup(basic, enh, msg, out) == 0)
		return 0;
	if (mail_lookup(msg, out) == 0)
		return 0;
	for (size_t i = 0; i < NELEM(graph_table); i++)
		if (graph_table[i].code && strstr(msg, graph_table[i].code)) {
			*out = graph_table[i].e;
			return 0;
		}
	for (size_t i = 0; i < NELEM(token_errors); i++)
		if (strstr(msg, token_errors[i].name)) {
			*out = token_errors[i].e;
			return 0;
		}
	if (have_smtp)
		return smtp_generic(basic, enh, out);
	return fallback(out, &unknown);
}

/* ---- ids and JSON bodies ------------------------------------------------ */

static void copy_id(char *dst, const char *src, size_t len)
{
	size_t n = 0;

	/* ids are printable tokens; anything else ends them */
	while (n < len && n < EXPLAIN_ID_MAX - 1 && src[n] &&
	       (isalnum((unsigned char)src[n]) || src[n] == '-' || src[n] == '_' ||
		src[n] == '.' || src[n] == ':'))
		n++;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void id_after(const char *text, const char *label, char *dst)
{
	const char *p;

	if (dst[0] || !(p = find_ci(text, label)))
		return;
	p += strlen(label);
	while (*p == ' ' || *p == ':')
		p++;
	copy_id(dst, p, strlen(p));
}

void explain_ids_from_text(const char *text, struct explain_ids *ids)
{
	if (!text || !ids)
		return;
	id_after(text, "Trace ID", ids->trace_id);
	id_after(text, "Correlation ID", ids->correlation_id);
	id_after(text, "request id", ids->request_id);
	id_after(text, "request-id", ids->request_id);
	if (!ids->code)
		ids->code = find_aadsts(text);
}

static const char *json_str(const cJSON *obj, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

int explain_token_response(const char *json, size_t len, struct explain *out,
			   struct explain_ids *ids)
{
	struct explain_ids local;
	const cJSON *codes;
	const char *error, *desc, *s;
	long cv[16];
	size_t n = 0;
	cJSON *root;
	int rc;

	if (!ids)
		ids = &local;
	memset(ids, 0, sizeof(*ids));
	root = json ? cJSON_ParseWithLength(json, len) : NULL;
	if (!root) {
		/* not JSON: explain it as text, which need not be
		 * NUL-terminated (an HTTP body is len bytes) */
		char *t = json ? ms_strndup(json, len) : NULL;

		rc = explain_text(t ? t : "", out);
		free(t);
		return rc;
	}
	error = json_str(root, "error");
	desc = json_str(root, "error_description");
	if (error)
		copy_id(ids->error, error, strlen(error));
	codes = cJSON_GetObjectItemCaseSensitive(root, "error_codes");
	if (cJSON_IsArray(codes)) {
		const cJSON *c;
		cJSON_ArrayForEach(c, codes) {
			if (n >= NELEM(cv))
				break;
			/* AADSTS codes have at most 8 digits; a bigger number
			 * would not even fit a long */
			if (cJSON_IsNumber(c) && c->valuedouble >= 0 &&
			    c->valuedouble <= 99999999)
				cv[n++] = (long)c->valuedouble;
		}
	}
	if (n)
		ids->code = cv[0];
	if ((s = json_str(root, "trace_id")))
		copy_id(ids->trace_id, s, strlen(s));
	if ((s = json_str(root, "correlation_id")))
		copy_id(ids->correlation_id, s, strlen(s));
	if (desc) {
		explain_ids_from_text(desc, ids);
		/* the description names the code even when error_codes is absent */
		if (!n && ids->code)
			cv[n++] = ids->code;
	}
	rc = explain_token_error(error, cv, n, out);
	cJSON_Delete(root);
	return rc;
}

int explain_graph_response(long http_status, const char *json, size_t len,
			   struct explain *out, struct explain_ids *ids)
{
	struct explain_ids local;
	const cJSON *e, *inner;
	const char *code = NULL, *s;
	cJSON *root;
	int rc;

	if (!ids)
		ids = &local;
	memset(ids, 0, sizeof(*ids));
	root = json && len ? cJSON_ParseWithLength(json, len) : NULL;
	e = root ? cJSON_GetObjectItemCaseSensitive(root, "error") : NULL;
	if (cJSON_IsObject(e)) {
		code = json_str(e, "code");
		inner = cJSON_GetObjectItemCaseSensitive(e, "innerError");
		if (!inner)
			inner = cJSON_GetObjectItemCaseSensitive(e, "innererror");
		if (cJSON_IsObject(inner) && (s = json_str(inner, "request-id")))
			copy_id(ids->request_id, s, strlen(s));
		if (cJSON_IsObject(inner) && (s = json_str(inner, "client-request-id")) &&
		    !ids->request_id[0])
			copy_id(ids->request_id, s, strlen(s));
	}
	if (code)
		copy_id(ids->error, code, strlen(code));
	rc = explain_graph_error(http_status, code, out);
	cJSON_Delete(root);
	return rc;
}

/* ---- rendering ---------------------------------------------------------- */

size_t explain_format(const struct explain *e, const struct explain_ids *ids,
		      char *out, size_t outsz)
{
	char idl[3 * EXPLAIN_ID_MAX + 64];
	size_t il = 0;
	int n;

	idl[0] = '\0';
	if (ids) {
		const char *sep = "";
		if (ids->trace_id[0]) {
			il += (size_t)snprintf(idl + il, sizeof(idl) - il, "%strace id: %s",
					       sep, ids->trace_id);
			sep = ", ";
		}
		if (ids->correlation_id[0]) {
			il += (size_t)snprintf(idl + il, sizeof(idl) - il,
					       "%scorrelation id: %s", sep, ids->correlation_id);
			sep = ", ";
		}
		if (ids->request_id[0])
			il += (size_t)snprintf(idl + il, sizeof(idl) - il,
					       "%srequest id: %s", sep, ids->request_id);
	}
	n = snprintf(out, outsz, "cause: %s\nfix: %s\n%s%s%s",
		     e->cause, e->fix,
		     e->temporary ? "temporary: retry later\n" : "",
		     idl, idl[0] ? "\n" : "");
	if (n < 0) {
		if (outsz)
			out[0] = '\0';
		return 0;
	}
	return (size_t)n;
}

int explain_error(const char *message, char *out, size_t outsz)
{
	struct explain_ids ids;
	struct explain e;
	int rc = explain_text(message, &e);

	memset(&ids, 0, sizeof(ids));
	explain_ids_from_text(message, &ids);
	explain_format(&e, &ids, out, outsz);
	return rc;
}

const char *explain_catalogue_entry(char kind, size_t i, struct explain *out)
{
	switch (kind) {
	case 't':
		if (i >= NELEM(token_codes))
			return NULL;
		*out = token_codes[i].e;
		return token_codes[i].e.topic;   /* "AADSTS<code>" */
	case 'e':
		if (i >= NELEM(token_errors))
			return NULL;
		*out = token_errors[i].e;
		return token_errors[i].name;
	case 's':
		if (i >= NELEM(smtp_table))
			return NULL;
		*out = smtp_table[i].e;
		return smtp_table[i].text ? smtp_table[i].text :
		       smtp_table[i].enhanced ? smtp_table[i].enhanced : "basic";
	case 'm':
		if (i >= NELEM(mail_table))
			return NULL;
		*out = mail_table[i].e;
		return mail_table[i].name;
	case 'g':
		if (i >= NELEM(graph_table))
			return NULL;
		*out = graph_table[i].e;
		return graph_table[i].code ? graph_table[i].code : "status";
	}
	return NULL;
}
