/*
 * profile.h - the one home for the INI -> connection decisions.
 *
 * The connector, mailshift-verify and the audit all read the same INI
 * file and must come to the same connection: which protocol, which
 * account, which TLS mode and port, which CA bundle, whether the login
 * uses OAuth and whether [OAuth] is complete enough for it.  Each of
 * those questions is answered here, once; the answers are the plain
 * parameter structs of the transports and auth (struct mailbox_params,
 * struct oauth_params, struct send_params), so that transport/ and
 * auth/ never see the INI model.
 *
 * Which CA bundle (CURLOPT_CAINFO: a bundle replaces the system store,
 * so a fallback is only taken where the INI's meaning allows it):
 *   IMAP / POP3 mailbox         [Mail] CAFile, else the system store
 *   SMTP (notify, probe)        [Mail] CAFile, else [OAuth] CAFile
 *   token service, Graph        [OAuth] CAFile, else [Mail] CAFile
 *                               (mailbox and sending alike)
 *
 * Ownership: the filled structs borrow strings from the config, which
 * must outlive them; profile_oauth_params() also fills owned_secret and
 * owned_scope (release with oauth_params_release()).  Credentials
 * (password, token source), since, deadline, timeouts and verbosity are
 * the caller's: they are not in the INI.
 */
#ifndef MS_PROFILE_H
#define MS_PROFILE_H

#include "ini/config.h"
#include "auth/oauth.h"
#include "transport/mailbox/mailbox.h"
#include "transport/protocol.h"
#include "transport/send.h"

/* The peer a connection goes to, for profile_ca_file(). */
enum profile_peer {
	PROFILE_PEER_MAILBOX,     /* the mailbox: IMAP, POP3 or Graph by protocol */
	PROFILE_PEER_SMTP,        /* SMTP submission (notify mails, probes) */
	PROFILE_PEER_MICROSOFT,   /* the token service, Graph sending */
};

/* The CA bundle for a connection of c to peer (table above), or NULL for
 * the system store. */
const char *profile_ca_file(const struct config *c, enum profile_peer peer);

/* [Mail] EmailProtocol as the connection sees it: MSAL is Graph. */
enum mail_protocol profile_protocol(const struct config *c);

/* 1 when the mailbox login uses OAuth 2.0: AuthMethod=OAuth2 or Graph
 * (an [OAuth] section alone does not change an IMAP/POP login). */
int profile_uses_oauth(const struct config *c);

/* The mailbox address: [OAuth] Mailbox with OAuth, else [Mail] User. */
const char *profile_mailbox_user(const struct config *c);

/* 1 when [OAuth] has what a token request needs: TenantId, ClientId and
 * ClientSecret or CertificateFile (DeviceCode: no client credential; the
 * signed-in user's refresh token stands in for it).  Says nothing about
 * whether the INI uses OAuth (profile_uses_oauth()). */
int profile_oauth_complete(const struct config *c);
/* The same, as an error naming the first missing key ("FILE: [OAuth]
 * ClientId is not set"); 0 when complete. */
int profile_oauth_check(const struct config *c, struct ms_err *err);

/* The secret a login needs that holds the incumbent's encryption, which
 * mailshift cannot read: "[OAuth] ClientSecret" for an OAuth login (even
 * beside a CertificateFile: the value must be fixed, not ignored),
 * "[Mail] Password" for a basic one; NULL when it is readable or unset. */
const char *profile_legacy_secret(const struct config *c, int oauth);
/* Resolve one secret reference of the INI at path (sealed, env:, file:,
 * literal) into *plain (wipe it with secret_free()); the incumbent's
 * encryption is refused with MS_ERR_CONFIG "PATH: WHAT holds a value
 * encrypted by smartemail.exe ...".  what names the key, e.g.
 * "[Mail] Password". */
int profile_secret_resolve(const char *ref, const char *what, const char *path,
			   char **plain, struct ms_err *err);

/* The mailbox connection of c: protocol (MSAL as Graph), host, port and
 * TLS mode (mailbox_tls_choose()), minimum TLS level, peer verification,
 * CA bundle, user, folder (default INBOX) and Graph endpoint.  Everything
 * else in *p is zeroed. */
void profile_mailbox_params(const struct config *c, struct mailbox_params *p);

/* The token request of c's [OAuth] for proto (its default scope): fails
 * with MS_ERR_CONFIG "FILE: [OAuth] Key ..." naming the missing or bad
 * key.  ClientSecret is resolved (not when CertificateFile is set: the
 * certificate wins); the mailbox defaults to [Mail] User. */
int profile_oauth_params(const struct config *c, enum mail_protocol proto,
			 struct oauth_params *p, struct ms_err *err);

/* 1 when [Notify] sends through Graph (Transport=Graph), 0 for SMTP. */
int profile_notify_graph(const struct config *c);
/* The [Notify] sender of c: transport, host, port, TLS mode, user
 * (default [Mail] User), CA bundle and Graph endpoint.  Credentials are
 * the caller's; everything else in *sp is zeroed. */
void profile_notify_params(const struct config *c, struct send_params *sp);

/* 1 for Exchange Online's host names (outlook.office365.com and the
 * national clouds), which refuse basic authentication. */
int profile_is_microsoft_host(const char *host);

#endif
