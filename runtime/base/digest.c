/*
 * digest.c - see digest.h.
 */
#include "base/digest.h"

#include <openssl/sha.h>
#include <stdio.h>

void digest_sha256_hex(const void *data, size_t len,
		       char hex[DIGEST_SHA256_HEX_LEN + 1])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	size_t i;

	SHA256(data, len, md);
	for (i = 0; i < sizeof(md); i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[DIGEST_SHA256_HEX_LEN] = '\0';
}
