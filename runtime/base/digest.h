/*
 * digest.h - SHA-256, and as hex: the one form in which receipts, packets,
 * deploy.json and the migrate state name a file's content, and the
 * connector's fingerprints and event names are made.
 */
#ifndef MS_BASE_DIGEST_H
#define MS_BASE_DIGEST_H

#include <stddef.h>

#define DIGEST_SHA256_LEN 32
#define DIGEST_SHA256_HEX_LEN 64

/* One piece of the bytes hashed. */
struct digest_part {
	const void *data;
	size_t len;
};

/* SHA-256 of the parts one after the other: 0, or -1 when OpenSSL could
 * not allocate (md is then unset).  The algorithm is fetched from OpenSSL
 * once per process (an implicit fetch at every call cost the connector a
 * tenth of a steady-state poll). */
int digest_sha256(const struct digest_part *parts, size_t n,
		   unsigned char md[DIGEST_SHA256_LEN]);

/* n bytes as 2n lowercase hex digits and a NUL (hex holds 2n+1). */
void digest_hex(const unsigned char *bytes, size_t n, char *hex);

/* SHA-256 of data as 64 lowercase hex digits and a NUL (hex holds 65).
 * If OpenSSL cannot allocate, 64 'x': a name no content has, so every
 * comparison with it fails (a conflict, never a false match). */
void digest_sha256_hex(const void *data, size_t len,
		       char hex[DIGEST_SHA256_HEX_LEN + 1]);

#endif
