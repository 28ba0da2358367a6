/*
 * digest.c - see digest.h.
 */
#include "base/digest.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static EVP_MD *sha256_fetched;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_release(void)
{
	EVP_MD_free(sha256_fetched);
	sha256_fetched = NULL;
}

static void sha256_fetch(void)
{
	sha256_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (sha256_fetched)
		atexit(sha256_release);   /* valgrind: nothing left behind */
}

int digest_sha256(const struct digest_part *parts, size_t n,
		  unsigned char md[DIGEST_SHA256_LEN])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int len = 0;
	int ok;

	pthread_once(&sha256_once, sha256_fetch);
	ok = c && EVP_DigestInit_ex(c, sha256_fetched ? sha256_fetched : EVP_sha256(),
				    NULL);
	for (size_t i = 0; ok && i < n; i++)
		ok = EVP_DigestUpdate(c, parts[i].data, parts[i].len);
	ok = ok && EVP_DigestFinal_ex(c, md, &len) && len == DIGEST_SHA256_LEN;
	EVP_MD_CTX_free(c);
	return ok ? 0 : -1;
}

void digest_hex(const unsigned char *bytes, size_t n, char *hex)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		hex[2 * i] = digits[bytes[i] >> 4];
		hex[2 * i + 1] = digits[bytes[i] & 15];
	}
	hex[2 * n] = '\0';
}

void digest_sha256_hex(const void *data, size_t len,
		       char hex[DIGEST_SHA256_HEX_LEN + 1])
{
	unsigned char md[DIGEST_SHA256_LEN];
	struct digest_part p = { data, len };

	if (digest_sha256(&p, 1, md)) {
		memset(hex, 'x', DIGEST_SHA256_HEX_LEN);
		hex[DIGEST_SHA256_HEX_LEN] = '\0';
		return;
	}
	digest_hex(md, sizeof(md), hex);
}
