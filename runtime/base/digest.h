/*
 * digest.h - SHA-256 of a byte range as hex, the one form in which
 * receipts, packets, deploy.json and the migrate state name a file's
 * content.
 */
#ifndef MS_BASE_DIGEST_H
#define MS_BASE_DIGEST_H

#include <stddef.h>

#define DIGEST_SHA256_HEX_LEN 64

/* SHA-256 of data as 64 lowercase hex digits and a NUL (hex holds 65). */
void digest_sha256_hex(const void *data, size_t len,
		       char hex[DIGEST_SHA256_HEX_LEN + 1]);

#endif
