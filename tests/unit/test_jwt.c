/* jwt.c: client assertions, checked with OpenSSL in the test itself. */
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/jwt.h"
#include "auth/seal.h"
#include "base/mem.h"
#include "tap.h"

static EVP_PKEY *pkey;
static X509 *cert;

/* A self-signed certificate valid for days, with its key, into path. */
static int make_cert(const char *path, EVP_PKEY *k, int days, int with_key)
{
	X509 *x = X509_new();
	FILE *f;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 42);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"mailshift test app", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_sign(x, k, EVP_sha256());
	if (!(f = fopen(path, "w")))
		return -1;
	if (with_key)
		PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	PEM_write_X509(f, x);
	fclose(f);
	if (k == pkey && !cert)
		cert = x;
	else
		X509_free(x);
	return 0;
}

static cJSON *part_json(const char *jwt, int idx, char **raw_out)
{
	struct ms_err err = MS_ERR_INIT;
	const char *s = jwt, *e;
	unsigned char *raw;
	size_t n;
	cJSON *j;

	for (int i = 0; i < idx; i++)
		s = strchr(s, '.') + 1;
	e = strchr(s, '.');
	if (seal_b64_decode(s, e ? (size_t)(e - s) : strlen(s), 1, &raw, &n, &err))
		return NULL;
	j = cJSON_Parse((char *)raw);
	if (raw_out)
		*raw_out = (char *)raw;
	else
		free(raw);
	return j;
}

static int verify(const char *jwt, enum jwt_alg alg)
{
	struct ms_err err = MS_ERR_INIT;
	const char *dot2 = strrchr(jwt, '.');
	unsigned char *sig;
	size_t siglen;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	EVP_PKEY *pub = X509_get0_pubkey(cert);
	int ok_ = 0;

	if (seal_b64_decode(dot2 + 1, strlen(dot2 + 1), 1, &sig, &siglen, &err))
		return 0;
	if (EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, pub) == 1) {
		if (alg == JWT_PS256) {
			EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
			EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
		} else {
			EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING);
		}
		ok_ = EVP_DigestVerify(md, sig, siglen, (const unsigned char *)jwt,
				       (size_t)(dot2 - jwt)) == 1;
	}
	EVP_MD_CTX_free(md);
	free(sig);
	return ok_;
}

static int is_uuid_v4(const char *s)
{
	if (strlen(s) != 36)
		return 0;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!strchr("0123456789abcdef", s[i])) {
			return 0;
		}
	}
	return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static const char *url = "https://127.0.0.1:25101/tenant-1/oauth2/v2.0/token";
static const char *cid = "11111111-2222-3333-4444-555555555555";

static void check(const char *path, enum jwt_alg alg)
{
	struct ms_err err = MS_ERR_INIT;
	char *jwt = NULL, *hraw = NULL;
	cJSON *h, *c;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	char *thumb;
	time_t t0 = time(NULL);
	const char *name = jwt_alg_name(alg);

	ok(jwt_client_assertion(path, cid, url, alg, &jwt, &err) == 0, "%s assertion (%s)",
	   name, err.msg);
	if (!jwt)
		return;
	ok(strchr(jwt, '=') == NULL && strchr(jwt, '+') == NULL && strchr(jwt, '/') == NULL,
	   "%s: base64url without padding", name);
	h = part_json(jwt, 0, &hraw);
	c = part_json(jwt, 1, NULL);
	ok(h && c, "%s: header and claims are JSON", name);
	is(cJSON_GetStringValue(cJSON_GetObjectItem(h, "alg")), name, "%s: alg", name);
	is(cJSON_GetStringValue(cJSON_GetObjectItem(h, "typ")), "JWT", "%s: typ", name);
	X509_digest(cert, alg == JWT_PS256 ? EVP_sha256() : EVP_sha1(), md, &mdlen);
	thumb = seal_b64_encode(md, mdlen, 1);
	if (alg == JWT_PS256) {
		is(cJSON_GetStringValue(cJSON_GetObjectItem(h, "x5t#S256")), thumb,
		   "PS256: x5t#S256 is the SHA-256 thumbprint");
		ok(!cJSON_GetObjectItem(h, "x5t"), "PS256: no x5t");
	} else {
		is(cJSON_GetStringValue(cJSON_GetObjectItem(h, "x5t")), thumb,
		   "RS256: x5t is the SHA-1 thumbprint");
		ok(!cJSON_GetObjectItem(h, "x5t#S256"), "RS256: no x5t#S256");
	}
	free(thumb);
	is(cJSON_GetStringValue(cJSON_GetObjectItem(c, "aud")), url, "%s: aud", name);
	is(cJSON_GetStringValue(cJSON_GetObjectItem(c, "iss")), cid, "%s: iss", name);
	is(cJSON_GetStringValue(cJSON_GetObjectItem(c, "sub")), cid, "%s: sub", name);
	ok(is_uuid_v4(cJSON_GetStringValue(cJSON_GetObjectItem(c, "jti"))),
	   "%s: jti is a UUID v4", name);
	{
		double iat = cJSON_GetNumberValue(cJSON_GetObjectItem(c, "iat"));
		double nbf = cJSON_GetNumberValue(cJSON_GetObjectItem(c, "nbf"));
		double exp = cJSON_GetNumberValue(cJSON_GetObjectItem(c, "exp"));
		ok(iat >= (double)t0 && iat <= (double)t0 + 5, "%s: iat is now", name);
		ok(nbf == iat, "%s: nbf = iat", name);
		ok(exp == iat + 300, "%s: exp = iat + 300", name);
	}
	ok(verify(jwt, alg), "%s: signature verifies with the certificate's key", name);
	ok(!verify(jwt, alg == JWT_PS256 ? JWT_RS256 : JWT_PS256),
	   "%s: does not verify under the other padding", name);
	{
		/* change one claim byte: signature must fail */
		char *t = strdup(jwt);
		char *p = strchr(t, '.') + 3;
		*p = *p == 'A' ? 'B' : 'A';
		ok(!verify(t, alg), "%s: altered claims do not verify", name);
		free(t);
	}
	cJSON_Delete(h);
	cJSON_Delete(c);
	free(hraw);
	mem_wipe_free(jwt);
}

int main(void)
{
	struct ms_err err = MS_ERR_INIT;
	char dir[64] = "/tmp/test_jwt.XXXXXX", path[128], nokey[128], other[128];
	char *jwt = NULL;
	enum jwt_alg alg;
	time_t na;

	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/app.pem", dir);
	snprintf(nokey, sizeof(nokey), "%s/nokey.pem", dir);
	snprintf(other, sizeof(other), "%s/other.pem", dir);
	pkey = EVP_RSA_gen(2048);
	if (!pkey || make_cert(path, pkey, 20, 1) || make_cert(nokey, pkey, 20, 0))
		return 1;

	ok(jwt_alg_parse(NULL, &alg, &err) == 0 && alg == JWT_PS256, "default alg PS256");
	ok(jwt_alg_parse("rs256", &alg, &err) == 0 && alg == JWT_RS256, "rs256 parsed");
	ok(jwt_alg_parse("HS256", &alg, &err) < 0 && err.code == MS_ERR_CONFIG,
	   "HS256 refused");

	check(path, JWT_PS256);
	check(path, JWT_RS256);

	/* jti uniqueness */
	{
		char *seen[50];
		int dup = 0, n = 0;
		for (int i = 0; i < 50; i++) {
			cJSON *c;
			jwt = NULL;
			err_clear(&err);
			if (jwt_client_assertion(path, cid, url, JWT_PS256, &jwt, &err))
				break;
			c = part_json(jwt, 1, NULL);
			seen[n] = strdup(cJSON_GetStringValue(cJSON_GetObjectItem(c, "jti")));
			for (int k = 0; k < n; k++)
				if (strcmp(seen[k], seen[n]) == 0)
					dup++;
			n++;
			cJSON_Delete(c);
			mem_wipe_free(jwt);
		}
		ok(n == 50 && dup == 0, "50 assertions, 50 distinct jti values");
		for (int k = 0; k < n; k++)
			free(seen[k]);
	}

	/* explicit clock and lifetime */
	err_clear(&err);
	ok(jwt_client_assertion_at(path, cid, url, JWT_PS256, 1000000, 600, &jwt, &err) == 0,
	   "assertion at a fixed time");
	{
		cJSON *c = part_json(jwt, 1, NULL);
		ok(cJSON_GetNumberValue(cJSON_GetObjectItem(c, "iat")) == 1000000 &&
		   cJSON_GetNumberValue(cJSON_GetObjectItem(c, "exp")) == 1000600,
		   "fixed iat and exp");
		cJSON_Delete(c);
		mem_wipe_free(jwt);
	}
	err_clear(&err);
	ok(jwt_client_assertion_at(path, cid, url, JWT_PS256, 0, 601, &jwt, &err) < 0 &&
	   err.code == MS_ERR_CONFIG, "lifetime above 600 s refused");

	/* failures */
	err_clear(&err);
	ok(jwt_client_assertion(nokey, cid, url, JWT_PS256, &jwt, &err) < 0 &&
	   strstr(err.msg, "private key"), "certificate without key refused (%s)", err.msg);
	{
		EVP_PKEY *k2 = EVP_RSA_gen(2048);
		FILE *f;
		make_cert(other, k2, 20, 0);
		/* key of pkey, certificate of k2 */
		f = fopen(other, "a");
		PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL);
		fclose(f);
		err_clear(&err);
		ok(jwt_client_assertion(other, cid, url, JWT_PS256, &jwt, &err) < 0 &&
		   strstr(err.msg, "does not match"), "mismatched key refused (%s)", err.msg);
		EVP_PKEY_free(k2);
	}
	{
		/* an encrypted key must fail, never prompt */
		char enc[128];
		FILE *f;
		snprintf(enc, sizeof(enc), "%s/enc.pem", dir);
		f = fopen(enc, "w");
		PEM_write_PrivateKey(f, pkey, EVP_aes_256_cbc(), (unsigned char *)"pw", 2,
				     NULL, NULL);
		PEM_write_X509(f, cert);
		fclose(f);
		err_clear(&err);
		ok(jwt_client_assertion(enc, cid, url, JWT_PS256, &jwt, &err) < 0 &&
		   strstr(err.msg, "unencrypted private key"), "encrypted key refused (%s)", err.msg);
	}
	err_clear(&err);
	ok(jwt_client_assertion("/nonexistent/x.pem", cid, url, JWT_PS256, &jwt, &err) < 0 &&
	   strstr(err.msg, "/nonexistent/x.pem"), "missing file names the file");

	/* certificate expiry */
	err_clear(&err);
	ok(cert_expiry(path, &na, &err) == 0, "cert_expiry (%s)", err.msg);
	{
		long d = (long)(na - time(NULL));
		ok(d > 20 * 86400 - 60 && d <= 20 * 86400, "notAfter is 20 days away (%ld s)", d);
	}

	X509_free(cert);
	EVP_PKEY_free(pkey);
	{
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			return 1;
	}
	return done_testing();
}
