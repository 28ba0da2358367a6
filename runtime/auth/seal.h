/*
 * seal.h - sealed secrets: AES-256-GCM under a per-machine key.
 *
 * A sealed value is "mssealed:v1:" + base64(nonce[12] || ciphertext || tag[16]),
 * safe to write into an INI file.  The machine key is 32 random bytes in
 * the key file named by paths_key_file(), created 0600 on first sealing
 * (exclusively and atomically, so concurrent first uses agree on one key).
 * A key file that is readable or writable by group or others, or owned
 * by another user, is refused and never used.
 *
 * Ownership: returned strings are malloc'd and owned by the caller.
 * Plaintexts returned by unseal_value() are secrets: release them with
 * seal_wipe_free(), which cleanses before freeing.  A struct seal_key
 * holds key material; seal_key_free() cleanses it.
 */
#ifndef MS_SEAL_H
#define MS_SEAL_H

#include <stddef.h>
#include "base/err.h"

#define SEAL_PREFIX "mssealed:v1:"
#define SEAL_KEY_LEN 32

struct seal_key;

/* Load the machine key; with create, make the key file when missing. */
int seal_key_load(struct seal_key **key, int create, struct ms_err *err);
/* A key from raw bytes (tests, key rotation tools). */
int seal_key_from_bytes(struct seal_key **key, const unsigned char *bytes,
			size_t len, struct ms_err *err);
void seal_key_free(struct seal_key *key);

/* Seal / unseal with an explicit key. */
int seal_value_key(const struct seal_key *key, const char *plain,
		   char **sealed, struct ms_err *err);
int unseal_value_key(const struct seal_key *key, const char *sealed,
		     char **plain, struct ms_err *err);

/* Seal / unseal binary data (whole files) with an explicit key:
 * SEAL_BYTES_MAGIC || nonce[12] || ciphertext || tag[16], so
 * SEAL_BYTES_OVERHEAD bytes longer than the plaintext, binary (not an
 * INI value).  aad (may be NULL with aadlen 0) is authenticated, not
 * stored: the same aad must be given to unseal (bind a blob to its row).
 * At most SEAL_BYTES_MAX bytes.  *out is malloc'd and owned by the
 * caller; unseal_bytes() output is plaintext: cleanse it before freeing.
 * A wrong key, another aad or altered bytes fail with MS_ERR_DATA. */
#define SEAL_BYTES_MAGIC "MSB1"
#define SEAL_BYTES_OVERHEAD (4 + 12 + 16)
#define SEAL_BYTES_MAX ((size_t)2 * 1024 * 1024 * 1024)
int seal_bytes(const struct seal_key *key, const void *plain, size_t len,
	       const void *aad, size_t aadlen, unsigned char **out,
	       size_t *outlen, struct ms_err *err);
int unseal_bytes(const struct seal_key *key, const void *sealed, size_t len,
		 const void *aad, size_t aadlen, unsigned char **out,
		 size_t *outlen, struct ms_err *err);

/* Convenience: load the machine key (creating it for seal_value), use it
 * once, wipe it. */
int seal_value(const char *plain, char **sealed, struct ms_err *err);
int unseal_value(const char *sealed, char **plain, struct ms_err *err);

/* True when s carries the sealed-value prefix. */
int seal_is_sealed(const char *s);

/* mem_wipe_free() (base/mem.h) by its old name, for the callers outside
 * auth/ not yet moved to it; new code calls mem_wipe_free(). */
void seal_wipe_free(char *s);

/* Base64 (RFC 4648): url selects the URL-safe alphabet without padding.
 * Encode returns a malloc'd string or NULL when out of memory.  Decode
 * accepts padding or none, rejects any other character, and returns a
 * malloc'd buffer (NUL-terminated for convenience) in *out. */
char *seal_b64_encode(const void *data, size_t len, int url);
int seal_b64_decode(const char *s, size_t len, int url, unsigned char **out,
		    size_t *outlen, struct ms_err *err);

#endif
