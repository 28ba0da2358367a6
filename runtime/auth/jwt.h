/*
 * jwt.h - client assertions for Microsoft's token endpoint (RFC 7523).
 *
 * The certificate file is one PEM file holding the private key (RSA,
 * unencrypted) and the certificate registered with the application.
 * Header: {"alg":"PS256","typ":"JWT","x5t#S256":<b64url SHA-256 of DER>}
 *      or {"alg":"RS256","typ":"JWT","x5t":<b64url SHA-1 of DER>}.
 * Claims: aud = token URL, iss = sub = client id, jti = random UUID v4,
 * nbf = iat = now, exp = now + lifetime (default 300 s, at most 600 s).
 * Encoding: base64url without padding.
 *
 * Ownership: *jwt is malloc'd and owned by the caller; it is a credential,
 * release it with mem_wipe_free() (base/mem.h).
 */
#ifndef MS_JWT_H
#define MS_JWT_H

#include <time.h>
#include "base/err.h"

enum jwt_alg { JWT_PS256 = 0, JWT_RS256 };

#define JWT_DEFAULT_LIFETIME 300
#define JWT_MAX_LIFETIME 600

/* "PS256" / "RS256" (case-insensitive); NULL or "" means PS256. */
int jwt_alg_parse(const char *s, enum jwt_alg *alg, struct ms_err *err);
const char *jwt_alg_name(enum jwt_alg alg);

int jwt_client_assertion(const char *cert_pem_path, const char *client_id,
			 const char *token_url, enum jwt_alg alg, char **jwt,
			 struct ms_err *err);

/* As above with an explicit clock and lifetime (tests: expired assertions).
 * now 0 = time(NULL); lifetime 0 = default; lifetime above the maximum is
 * refused. */
int jwt_client_assertion_at(const char *cert_pem_path, const char *client_id,
			    const char *token_url, enum jwt_alg alg, time_t now,
			    int lifetime_s, char **jwt, struct ms_err *err);

/* notAfter of the certificate in cert_pem_path (UTC). */
int cert_expiry(const char *cert_pem_path, time_t *not_after, struct ms_err *err);

#endif
