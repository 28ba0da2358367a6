/*
 * protocol.h - the words a connection is described in, shared by the
 * transports, auth and the INI model: which mail protocol, which minimum
 * TLS level.  Only enums: the INI model (ini/config.h) and the
 * transports (mailbox.h, oauth.h) both use them, and transports must not
 * include ini/.
 */
#ifndef MS_PROTOCOL_H
#define MS_PROTOCOL_H

enum mail_protocol { PROTO_UNSET = 0, PROTO_IMAP, PROTO_POP, PROTO_MSAL, PROTO_GRAPH };
/* Minimum TLS level; TLS_NONE means plaintext (explicitly allowed only). */
enum tls_level { TLSL_UNSET = 0, TLSL_SSL, TLSL_SSL2, TLSL_TLS1, TLSL_TLS1_1,
		 TLSL_TLS1_2, TLSL_TLS1_3, TLSL_NONE };

/* Microsoft Graph's public endpoint: the default of [OAuth] GraphEndpoint
 * and of a Graph mailbox or sender given none. */
#define GRAPH_DEFAULT_ENDPOINT "https://graph.microsoft.com"

#endif
