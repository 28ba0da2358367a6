#include "auth/jwt.h"

#include <cjson/cJSON.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/fsutil.h"
#include "base/mem.h"
#include "auth/seal.h"

#define CERT_FILE_MAX ((size_t)1024 * 1024)

int jwt_alg_parse(const char *s, enum jwt_alg *alg, struct ms_err *err)
{
	if (!s || !*s || strcasecmp(s, "PS256") == 0) {
		*alg = JWT_PS256;
		return 0;
	}
	if (strcasecmp(s, "RS256") == 0) {
		*alg = JWT_RS256;
		return 0;
	}
	return err_set(err, MS_ERR_CONFIG,
		       "unknown assertion algorithm '%s' (PS256 or RS256)", s);
}

const char *jwt_alg_name(enum jwt_alg alg)
{
	return alg == JWT_RS256 ? "RS256" : "PS256";
}

/* Never prompt on a terminal for a pass phrase. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf; (void)size; (void)rwflag; (void)u;
	return -1;
}

static const char *ossl_reason(void)
{
	static char msg[256];
	unsigned long e = ERR_peek_last_error();

	if (!e)
		return "unknown error";
	ERR_error_string_n(e, msg, sizeof(msg));
	ERR_clear_error();
	return msg;
}

static int load_cert(const char *path, X509 **cert, EVP_PKEY **pkey,
		     struct ms_err *err)
{
	char *data = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	int ret = -1;

	*cert = NULL;
	if (pkey)
		*pkey = NULL;
	if (fs_read_file(path, CERT_FILE_MAX, &data, &len, err))
		return err_prefix(err, "cannot read certificate file");
	ERR_clear_error();
	if (!(bio = BIO_new_mem_buf(data, (int)len)))
		goto nomem;
	if (!(*cert = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL))) {
		err_set(err, MS_ERR_CONFIG, "certificate file '%s' holds no PEM certificate",
			path);
		goto out;
	}
	if (pkey) {
		BIO_free(bio);
		if (!(bio = BIO_new_mem_buf(data, (int)len)))
			goto nomem;
		if (!(*pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL))) {
			err_set(err, MS_ERR_CONFIG,
				"certificate file '%s' holds no unencrypted private key (%s)",
				path, ossl_reason());
			goto out;
		}
		if (!EVP_PKEY_is_a(*pkey, "RSA")) {
			err_set(err, MS_ERR_CONFIG,
				"certificate file '%s': the private key is not an RSA key", path);
			goto out;
		}
		if (X509_check_private_key(*cert, *pkey) != 1) {
			err_set(err, MS_ERR_CONFIG,
				"certificate file '%s': the private key does not match the "
				"certificate", path);
			goto out;
		}
	}
	ret = 0;
	goto out;
nomem:
	err_nomem(err);
out:
	BIO_free(bio);
	mem_wipe(data, len);
	free(data);
	ERR_clear_error();
	if (ret) {
		X509_free(*cert);
		*cert = NULL;
		if (pkey) {
			EVP_PKEY_free(*pkey);
			*pkey = NULL;
		}
	}
	return ret;
}

static char *b64url_json(cJSON *obj)
{
	char *txt = cJSON_PrintUnformatted(obj), *out;

	if (!txt)
		return NULL;
	out = seal_b64_encode(txt, strlen(txt), 1);
	cJSON_free(txt);
	return out;
}

static int uuid_v4(char out[37])
{
	unsigned char r[16];

	if (RAND_bytes(r, sizeof(r)) != 1)
		return -1;
	r[6] = (r[6] & 0x0f) | 0x40;
	r[8] = (r[8] & 0x3f) | 0x80;
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5],
		 r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
	return 0;
}

static int sign(EVP_PKEY *pkey, enum jwt_alg alg, const char *input,
		char **sig_b64, struct ms_err *err)
{
	EVP_MD_CTX *md = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *sig = NULL;
	size_t siglen = 0;
	int ret = -1;

	*sig_b64 = NULL;
	if (!(md = EVP_MD_CTX_new()))
		return err_nomem(err);
	if (EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, pkey) != 1)
		goto fail;
	if (alg == JWT_PS256 &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
	     EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1))
		goto fail;
	if (alg == JWT_RS256 &&
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
		goto fail;
	if (EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)input,
			   strlen(input)) != 1)
		goto fail;
	if (!(sig = malloc(siglen))) {
		err_nomem(err);
		goto out;
	}
	if (EVP_DigestSign(md, sig, &siglen, (const unsigned char *)input,
			   strlen(input)) != 1)
		goto fail;
	if (!(*sig_b64 = seal_b64_encode(sig, siglen, 1))) {
		err_nomem(err);
		goto out;
	}
	ret = 0;
	goto out;
fail:
	err_set(err, MS_ERR_INTERNAL, "cannot sign the client assertion: %s",
		ossl_reason());
out:
	free(sig);
	EVP_MD_CTX_free(md);
	return ret;
}

int jwt_client_assertion_at(const char *cert_pem_path, const char *client_id,
			    const char *token_url, enum jwt_alg alg, time_t now,
			    int lifetime_s, char **jwt, struct ms_err *err)
{
	X509 *cert = NULL;
	EVP_PKEY *pkey = NULL;
	cJSON *hdr = NULL, *claims = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char *thumb = NULL, *h64 = NULL, *c64 = NULL, *input = NULL, *sig = NULL;
	char jti[37];
	size_t n;
	int ret = -1;

	*jwt = NULL;
	if (!client_id || !*client_id || !token_url || !*token_url)
		return err_set(err, MS_ERR_CONFIG,
			       "a client assertion needs a client id and a token URL");
	if (lifetime_s == 0)
		lifetime_s = JWT_DEFAULT_LIFETIME;
	if (lifetime_s < 0 || lifetime_s > JWT_MAX_LIFETIME)
		return err_set(err, MS_ERR_CONFIG,
			       "client assertion lifetime %d s is outside 1..%d s",
			       lifetime_s, JWT_MAX_LIFETIME);
	if (!now)
		now = time(NULL);
	if (load_cert(cert_pem_path, &cert, &pkey, err))
		return -1;
	if (X509_digest(cert, alg == JWT_PS256 ? EVP_sha256() : EVP_sha1(), md,
			&mdlen) != 1) {
		err_set(err, MS_ERR_INTERNAL, "cannot compute the certificate thumbprint");
		goto out;
	}
	if (uuid_v4(jti)) {
		err_set(err, MS_ERR_INTERNAL, "cannot get random bytes for a jti");
		goto out;
	}
	if (!(thumb = seal_b64_encode(md, mdlen, 1)) ||
	    !(hdr = cJSON_CreateObject()) || !(claims = cJSON_CreateObject()) ||
	    !cJSON_AddStringToObject(hdr, "alg", jwt_alg_name(alg)) ||
	    !cJSON_AddStringToObject(hdr, "typ", "JWT") ||
	    !cJSON_AddStringToObject(hdr, alg == JWT_PS256 ? "x5t#S256" : "x5t", thumb) ||
	    !cJSON_AddStringToObject(claims, "aud", token_url) ||
	    !cJSON_AddStringToObject(claims, "iss", client_id) ||
	    !cJSON_AddStringToObject(claims, "sub", client_id) ||
	    !cJSON_AddStringToObject(claims, "jti", jti) ||
	    !cJSON_AddNumberToObject(claims, "nbf", (double)now) ||
	    !cJSON_AddNumberToObject(claims, "iat", (double)now) ||
	    !cJSON_AddNumberToObject(claims, "exp", (double)(now + lifetime_s)) ||
	    !(h64 = b64url_json(hdr)) || !(c64 = b64url_json(claims))) {
		err_nomem(err);
		goto out;
	}
	n = strlen(h64) + strlen(c64) + 2;
	if (!(input = malloc(n))) {
		err_nomem(err);
		goto out;
	}
	snprintf(input, n, "%s.%s", h64, c64);
	if (sign(pkey, alg, input, &sig, err))
		goto out;
	n = strlen(input) + strlen(sig) + 2;
	if (!(*jwt = malloc(n))) {
		err_nomem(err);
		goto out;
	}
	snprintf(*jwt, n, "%s.%s", input, sig);
	ret = 0;
out:
	cJSON_Delete(hdr);
	cJSON_Delete(claims);
	free(thumb);
	free(h64);
	free(c64);
	free(input);
	free(sig);
	X509_free(cert);
	EVP_PKEY_free(pkey);
	return ret;
}

int jwt_client_assertion(const char *cert_pem_path, const char *client_id,
			 const char *token_url, enum jwt_alg alg, char **jwt,
			 struct ms_err *err)
{
	return jwt_client_assertion_at(cert_pem_path, client_id, token_url, alg, 0, 0,
				       jwt, err);
}

int cert_expiry(const char *cert_pem_path, time_t *not_after, struct ms_err *err)
{
	X509 *cert = NULL;
	const ASN1_TIME *t;
	struct tm tm;

	*not_after = 0;
	if (load_cert(cert_pem_path, &cert, NULL, err))
		return -1;
	memset(&tm, 0, sizeof(tm));
	t = X509_get0_notAfter(cert);
	if (!t || ASN1_TIME_to_tm(t, &tm) != 1) {
		X509_free(cert);
		return err_set(err, MS_ERR_DATA,
			       "certificate file '%s': unreadable expiry date", cert_pem_path);
	}
	X509_free(cert);
	*not_after = timegm(&tm);
	return 0;
}
