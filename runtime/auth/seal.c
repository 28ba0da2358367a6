#include "auth/seal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fsutil.h"
#include "base/mem.h"
#include "base/paths.h"
#include "base/platform.h"

#define NONCE_LEN 12
#define TAG_LEN 16
#define SEAL_AAD "mailshift sealed value v1"
/* A sealed value is for INI files, not bulk data. */
#define SEAL_MAX_PLAIN ((size_t)64 * 1024)

struct seal_key {
	unsigned char k[SEAL_KEY_LEN];
};

void seal_wipe_free(char *s)
{
	mem_wipe_free(s);
}

void seal_key_free(struct seal_key *key)
{
	if (!key)
		return;
	mem_wipe(key, sizeof(*key));
	free(key);
}

int seal_key_from_bytes(struct seal_key **key, const unsigned char *bytes,
			size_t len, struct ms_err *err)
{
	*key = NULL;
	if (len != SEAL_KEY_LEN)
		return err_set(err, MS_ERR_DATA, "a machine key has %d bytes, not %zu",
			       SEAL_KEY_LEN, len);
	if (!(*key = malloc(sizeof(**key))))
		return err_nomem(err);
	memcpy((*key)->k, bytes, SEAL_KEY_LEN);
	return 0;
}

static int create_key_file(const char *path, struct ms_err *err)
{
	unsigned char k[SEAL_KEY_LEN];
	char *dir, *slash;
	int rc;

	if ((dir = strdup(path)) == NULL)
		return err_nomem(err);
	slash = (char *)platform_last_sep(dir);
	if (slash && slash != dir) {
		*slash = '\0';
		if (fs_mkdirs(dir, 0700, err)) {
			free(dir);
			return -1;
		}
	}
	free(dir);
	if (RAND_bytes(k, sizeof(k)) != 1)
		return err_set(err, MS_ERR_INTERNAL, "cannot get random bytes for a machine key");
	/* 1 = another process created it first: use theirs */
	rc = platform_key_store(path, k, sizeof(k), err);
	mem_wipe(k, sizeof(k));
	return rc < 0 ? -1 : 0;
}

static int check_key_file(int fd, const char *path, struct ms_err *err)
{
	struct stat st;
	unsigned mode;

	if (fstat(fd, &st) < 0)
		return err_set(err, MS_ERR_IO, "cannot stat key file '%s': %s", path,
			       strerror(errno));
	if (!S_ISREG(st.st_mode))
		return err_set(err, MS_ERR_CONFIG, "key file '%s' is not a regular file", path);
	if (st.st_uid != geteuid())
		return err_set(err, MS_ERR_CONFIG,
			       "key file '%s' is owned by uid %ld, not by the current user "
			       "(uid %ld); refusing to use it", path, (long)st.st_uid,
			       (long)geteuid());
	mode = platform_file_mode(&st);
	if (mode & 044)
		return err_set(err, MS_ERR_CONFIG,
			       "key file '%s' is readable by others (mode 0%o); run: chmod 600 %s",
			       path, mode, path);
	if (mode & 022)
		return err_set(err, MS_ERR_CONFIG,
			       "key file '%s' is writable by others (mode 0%o); run: chmod 600 %s",
			       path, mode, path);
	if (mode & 011)
		return err_set(err, MS_ERR_CONFIG,
			       "key file '%s' is accessible by others (mode 0%o); run: chmod 600 %s",
			       path, mode, path);
	if (!platform_key_file_size_ok((long long)st.st_size, SEAL_KEY_LEN))
		return err_set(err, MS_ERR_CONFIG,
			       "key file '%s' is damaged: %lld bytes instead of %d", path,
			       (long long)st.st_size, SEAL_KEY_LEN);
	return 0;
}

int seal_key_load(struct seal_key **key, int create, struct ms_err *err)
{
	struct seal_key *k = NULL;
	char *path = NULL;
	int fd = -1, ret = -1;

	*key = NULL;
	if (paths_key_file(&path, err))
		return -1;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		if (create_key_file(path, err))
			goto out;
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0) {
		if (errno == ENOENT)
			err_set(err, MS_ERR_CONFIG,
				"machine key file '%s' does not exist; sealed values must be "
				"sealed again on this machine (--credentials)", path);
		else
			err_set(err, MS_ERR_IO, "cannot open key file '%s': %s", path,
				strerror(errno));
		goto out;
	}
	if (check_key_file(fd, path, err))
		goto out;
	if (!(k = malloc(sizeof(*k)))) {
		err_nomem(err);
		goto out;
	}
	if (platform_key_read(fd, path, k->k, SEAL_KEY_LEN, err))
		goto out;
	*key = k;
	k = NULL;
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	seal_key_free(k);
	free(path);
	return ret;
}

int seal_is_sealed(const char *s)
{
	return s && strncmp(s, SEAL_PREFIX, strlen(SEAL_PREFIX)) == 0;
}

/* ---- base64 ---- */

static const char b64std[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *seal_b64_encode(const void *data, size_t len, int url)
{
	const unsigned char *p = data;
	const char *al = url ? b64url : b64std;
	char *out, *o;
	size_t i;

	if (len > ((size_t)-1 / 4) * 3 - 3)
		return NULL;
	out = malloc((len + 2) / 3 * 4 + 1);
	if (!out)
		return NULL;
	o = out;
	for (i = 0; i + 2 < len; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
		*o++ = al[v >> 18 & 63];
		*o++ = al[v >> 12 & 63];
		*o++ = al[v >> 6 & 63];
		*o++ = al[v & 63];
	}
	if (i < len) {
		unsigned v = (unsigned)p[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)p[i + 1] << 8;
		*o++ = al[v >> 18 & 63];
		*o++ = al[v >> 12 & 63];
		if (i + 1 < len)
			*o++ = al[v >> 6 & 63];
		else if (!url)
			*o++ = '=';
		if (!url)
			*o++ = '=';
	}
	*o = '\0';
	return out;
}

static int b64_val(int c, int url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

int seal_b64_decode(const char *s, size_t len, int url, unsigned char **out,
		    size_t *outlen, struct ms_err *err)
{
	unsigned char *buf;
	size_t i, n = 0, pad = 0;
	unsigned acc = 0;
	int bits = 0;

	*out = NULL;
	*outlen = 0;
	while (pad < 2 && len > 0 && s[len - 1] == '=') {
		len--;
		pad++;
	}
	if (len % 4 == 1)
		return err_set(err, MS_ERR_DATA, "malformed base64");
	if (pad && (len + pad) % 4)
		return err_set(err, MS_ERR_DATA, "malformed base64 padding");
	buf = malloc(len / 4 * 3 + 3);
	if (!buf)
		return err_nomem(err);
	for (i = 0; i < len; i++) {
		int v = b64_val((unsigned char)s[i], url);
		if (v < 0) {
			free(buf);
			return err_set(err, MS_ERR_DATA, "malformed base64");
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	buf[n] = '\0';
	*out = buf;
	*outlen = n;
	return 0;
}

/* ---- AES-256-GCM ---- */

int seal_value_key(const struct seal_key *key, const char *plain,
		   char **sealed, struct ms_err *err)
{
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char *blob = NULL;
	size_t plen = strlen(plain), blen;
	char *b64 = NULL;
	int n, ret = -1;

	*sealed = NULL;
	if (plen > SEAL_MAX_PLAIN)
		return err_set(err, MS_ERR_TOOBIG, "value too long to seal (%zu bytes)", plen);
	blen = NONCE_LEN + plen + TAG_LEN;
	if (!(blob = malloc(blen)))
		return err_nomem(err);
	if (RAND_bytes(blob, NONCE_LEN) != 1) {
		err_set(err, MS_ERR_INTERNAL, "cannot get random bytes for a nonce");
		goto out;
	}
	if (!(ctx = EVP_CIPHER_CTX_new()) ||
	    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, key->k, blob) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &n, (const unsigned char *)SEAL_AAD,
			      (int)strlen(SEAL_AAD)) != 1 ||
	    EVP_EncryptUpdate(ctx, blob + NONCE_LEN, &n, (const unsigned char *)plain,
			      (int)plen) != 1 ||
	    EVP_EncryptFinal_ex(ctx, blob + NONCE_LEN + n, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN,
				blob + NONCE_LEN + plen) != 1) {
		err_set(err, MS_ERR_INTERNAL, "cannot seal a value: encryption failed");
		goto out;
	}
	if (!(b64 = seal_b64_encode(blob, blen, 0))) {
		err_nomem(err);
		goto out;
	}
	if (!(*sealed = malloc(strlen(SEAL_PREFIX) + strlen(b64) + 1))) {
		err_nomem(err);
		goto out;
	}
	strcpy(*sealed, SEAL_PREFIX);
	strcat(*sealed, b64);
	ret = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	if (blob) {
		mem_wipe(blob, blen);
		free(blob);
	}
	free(b64);
	return ret;
}

int unseal_value_key(const struct seal_key *key, const char *sealed,
		     char **plain, struct ms_err *err)
{
	struct ms_err e2 = MS_ERR_INIT;
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char *blob = NULL;
	char *pt = NULL;
	size_t blen = 0, clen;
	int n, ret = -1;

	*plain = NULL;
	if (!seal_is_sealed(sealed))
		return err_set(err, MS_ERR_DATA, "not a sealed value (no '%s' prefix)",
			       SEAL_PREFIX);
	sealed += strlen(SEAL_PREFIX);
	if (strlen(sealed) > SEAL_MAX_PLAIN * 2)
		return err_set(err, MS_ERR_TOOBIG, "sealed value too long");
	if (seal_b64_decode(sealed, strlen(sealed), 0, &blob, &blen, &e2)) {
		if (e2.code == MS_ERR_NOMEM)
			return err_nomem(err);
		return err_set(err, MS_ERR_DATA, "sealed value is damaged (bad base64)");
	}
	if (blen < NONCE_LEN + TAG_LEN) {
		err_set(err, MS_ERR_DATA, "sealed value is damaged (too short)");
		goto out;
	}
	clen = blen - NONCE_LEN - TAG_LEN;
	if (!(pt = malloc(clen + 1))) {
		err_nomem(err);
		goto out;
	}
	if (!(ctx = EVP_CIPHER_CTX_new()) ||
	    EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, key->k, blob) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &n, (const unsigned char *)SEAL_AAD,
			      (int)strlen(SEAL_AAD)) != 1 ||
	    EVP_DecryptUpdate(ctx, (unsigned char *)pt, &n, blob + NONCE_LEN,
			      (int)clen) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN,
				blob + NONCE_LEN + clen) != 1 ||
	    EVP_DecryptFinal_ex(ctx, (unsigned char *)pt + n, &n) != 1) {
		err_set(err, MS_ERR_DATA,
			"sealed value was altered or sealed with another machine key");
		goto out;
	}
	pt[clen] = '\0';
	if (strlen(pt) != clen) {
		err_set(err, MS_ERR_DATA, "sealed value holds a NUL byte");
		goto out;
	}
	*plain = pt;
	pt = NULL;
	ret = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	if (pt) {
		mem_wipe(pt, clen + 1);
		free(pt);
	}
	if (blob) {
		mem_wipe(blob, blen);
		free(blob);
	}
	return ret;
}

int seal_value(const char *plain, char **sealed, struct ms_err *err)
{
	struct seal_key *k;
	int rc;

	*sealed = NULL;
	if (seal_key_load(&k, 1, err))
		return -1;
	rc = seal_value_key(k, plain, sealed, err);
	seal_key_free(k);
	return rc;
}

int unseal_value(const char *sealed, char **plain, struct ms_err *err)
{
	struct seal_key *k;
	int rc;

	*plain = NULL;
	if (!seal_is_sealed(sealed))
		return err_set(err, MS_ERR_DATA, "not a sealed value (no '%s' prefix)",
			       SEAL_PREFIX);
	if (seal_key_load(&k, 0, err))
		return -1;
	rc = unseal_value_key(k, sealed, plain, err);
	seal_key_free(k);
	return rc;
}

/* ---- binary blobs ---- */

#define BYTES_AAD "mailshift sealed bytes v1"
#define BYTES_CHUNK ((size_t)1 << 20)

/* One AES-256-GCM pass over len bytes in chunks (EVP lengths are int). */
static int gcm_update(EVP_CIPHER_CTX *ctx, int enc, unsigned char *out,
		      const unsigned char *in, size_t len)
{
	size_t off = 0;
	int n;

	while (off < len) {
		size_t c = len - off < BYTES_CHUNK ? len - off : BYTES_CHUNK;
		if ((enc ? EVP_EncryptUpdate(ctx, out + off, &n, in + off, (int)c) :
		     EVP_DecryptUpdate(ctx, out + off, &n, in + off, (int)c)) != 1 ||
		    (size_t)n != c)
			return -1;
		off += c;
	}
	return 0;
}

static int gcm_aad(EVP_CIPHER_CTX *ctx, int enc, const void *aad, size_t aadlen)
{
	int n;

	if ((enc ? EVP_EncryptUpdate(ctx, NULL, &n, (const unsigned char *)BYTES_AAD,
				     (int)strlen(BYTES_AAD)) :
	     EVP_DecryptUpdate(ctx, NULL, &n, (const unsigned char *)BYTES_AAD,
			       (int)strlen(BYTES_AAD))) != 1)
		return -1;
	if (aadlen == 0)
		return 0;
	if (aadlen > BYTES_CHUNK)
		return -1;
	return (enc ? EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aadlen) :
		EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aadlen)) == 1 ? 0 : -1;
}

int seal_bytes(const struct seal_key *key, const void *plain, size_t len,
	       const void *aad, size_t aadlen, unsigned char **out,
	       size_t *outlen, struct ms_err *err)
{
	const size_t ml = strlen(SEAL_BYTES_MAGIC);
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char *blob, *nonce, *ct;
	size_t blen;
	int n, ret = -1;

	*out = NULL;
	*outlen = 0;
	if (len > SEAL_BYTES_MAX)
		return err_set(err, MS_ERR_TOOBIG, "data too long to seal (%zu bytes)", len);
	if (aadlen > BYTES_CHUNK)
		return err_set(err, MS_ERR_TOOBIG, "associated data too long");
	blen = SEAL_BYTES_OVERHEAD + len;
	if (!(blob = malloc(blen)))
		return err_nomem(err);
	memcpy(blob, SEAL_BYTES_MAGIC, ml);
	nonce = blob + ml;
	ct = nonce + NONCE_LEN;
	if (RAND_bytes(nonce, NONCE_LEN) != 1) {
		err_set(err, MS_ERR_INTERNAL, "cannot get random bytes for a nonce");
		goto out;
	}
	if (!(ctx = EVP_CIPHER_CTX_new()) ||
	    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, key->k, nonce) != 1 ||
	    gcm_aad(ctx, 1, aad, aadlen) < 0 ||
	    gcm_update(ctx, 1, ct, plain, len) < 0 ||
	    EVP_EncryptFinal_ex(ctx, ct + len, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, ct + len) != 1) {
		err_set(err, MS_ERR_INTERNAL, "cannot seal data: encryption failed");
		goto out;
	}
	*out = blob;
	*outlen = blen;
	blob = NULL;
	ret = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	free(blob);
	return ret;
}

int unseal_bytes(const struct seal_key *key, const void *sealed, size_t len,
		 const void *aad, size_t aadlen, unsigned char **out,
		 size_t *outlen, struct ms_err *err)
{
	const size_t ml = strlen(SEAL_BYTES_MAGIC);
	const unsigned char *s = sealed, *nonce, *ct;
	unsigned char tag[TAG_LEN], *pt = NULL;
	EVP_CIPHER_CTX *ctx = NULL;
	size_t clen;
	int n, ret = -1;

	*out = NULL;
	*outlen = 0;
	if (len < SEAL_BYTES_OVERHEAD || memcmp(s, SEAL_BYTES_MAGIC, ml) != 0)
		return err_set(err, MS_ERR_DATA, "not sealed data (no '%s' header)",
			       SEAL_BYTES_MAGIC);
	clen = len - SEAL_BYTES_OVERHEAD;
	if (clen > SEAL_BYTES_MAX)
		return err_set(err, MS_ERR_TOOBIG, "sealed data too long");
	if (aadlen > BYTES_CHUNK)
		return err_set(err, MS_ERR_TOOBIG, "associated data too long");
	nonce = s + ml;
	ct = nonce + NONCE_LEN;
	memcpy(tag, ct + clen, TAG_LEN);
	/* one spare byte: callers may treat the plaintext as a string */
	if (!(pt = malloc(clen + 1)))
		return err_nomem(err);
	if (!(ctx = EVP_CIPHER_CTX_new()) ||
	    EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, key->k, nonce) != 1 ||
	    gcm_aad(ctx, 0, aad, aadlen) < 0 ||
	    gcm_update(ctx, 0, pt, ct, clen) < 0 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1 ||
	    EVP_DecryptFinal_ex(ctx, pt + clen, &n) != 1) {
		err_set(err, MS_ERR_DATA,
			"sealed data was altered or sealed with another machine key");
		goto out;
	}
	pt[clen] = '\0';
	*out = pt;
	*outlen = clen;
	pt = NULL;
	ret = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	if (pt) {
		mem_wipe(pt, clen + 1);
		free(pt);
	}
	return ret;
}
