/*
 * Windows smoke test for the cross-built libraries (scripts/deps-windows):
 * one call into each library mailshift links, linked fully statically,
 * run under Wine by tests/windows/smoke.sh, which checks every line.
 * Prints "NAME VALUE" lines; a library that fails prints "NAME FAIL why"
 * and the exit status is 1.
 */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <gmime/gmime.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/rand.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <sqlite3.h>
#include <zlib.h>

static int failures;

static void fail(const char *lib, const char *why)
{
	printf("%s FAIL %s\n", lib, why);
	failures++;
}

static void hex(const unsigned char *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

static void smoke_openssl(void)
{
	unsigned char md[EVP_MAX_MD_SIZE], rnd[32], zero[32] = { 0 };
	unsigned int n = 0;
	char out[2 * EVP_MAX_MD_SIZE + 1];

	if (!EVP_Digest("mailshift", 9, md, &n, EVP_sha256(), NULL))
		return fail("sha256", "EVP_Digest");
	hex(md, n, out);
	printf("sha256 %s\n", out);
	if (RAND_bytes(rnd, sizeof rnd) != 1)
		return fail("rand", "RAND_bytes");
	/* 32 zero bytes from a working generator: one chance in 2^256 */
	printf("rand %s\n", memcmp(rnd, zero, sizeof rnd) ? "ok" : "zeros");
	printf("openssl %s\n", OPENSSL_VERSION_TEXT);
}

static void smoke_curl(void)
{
	curl_version_info_data *v;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return fail("curl", "curl_global_init");
	v = curl_version_info(CURLVERSION_NOW);
	printf("curl %s ssl=%s https=%s\n", v->version, v->ssl_version ? v->ssl_version : "none",
	       (v->features & CURL_VERSION_SSL) ? "yes" : "no");
	curl_global_cleanup();
}

static void smoke_sqlite(void)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	if (sqlite3_open(":memory:", &db) != SQLITE_OK)
		return fail("sqlite", "open");
	if (sqlite3_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES (40), (2);", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT sum(x), sqlite_version() FROM t", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		fail("sqlite", sqlite3_errmsg(db));
	else
		printf("sqlite sum=%d version=%s\n", sqlite3_column_int(st, 0),
		       (const char *)sqlite3_column_text(st, 1));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void smoke_libxml2(void)
{
	static const char doc_text[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
				       "<jobs><job name=\"payroll\"/></jobs>";
	xmlDocPtr doc = xmlReadMemory(doc_text, sizeof doc_text - 1, "smoke.xml", NULL, XML_PARSE_NONET);
	xmlNodePtr root, job;
	xmlChar *name;

	if (!doc)
		return fail("libxml2", "xmlReadMemory");
	root = xmlDocGetRootElement(doc);
	job = root ? xmlFirstElementChild(root) : NULL;
	name = job ? xmlGetProp(job, BAD_CAST "name") : NULL;
	printf("libxml2 root=%s job=%s\n", root ? (const char *)root->name : "-",
	       name ? (const char *)name : "-");
	xmlFree(name);
	xmlFreeDoc(doc);
}

static void smoke_cjson(void)
{
	cJSON *j = cJSON_Parse("{\"jobs\": [1, 2, 3], \"name\": \"payroll\"}");
	const cJSON *name;

	if (!j)
		return fail("cjson", "cJSON_Parse");
	name = cJSON_GetObjectItemCaseSensitive(j, "name");
	printf("cjson jobs=%d name=%s\n", cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "jobs")),
	       cJSON_IsString(name) ? name->valuestring : "-");
	cJSON_Delete(j);
}

static void smoke_pcre2(void)
{
	static const char subject[] = "Subject: Invoice 20261205-042 attached";
	int errcode;
	PCRE2_SIZE erroff, *ov;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR) "Invoice (\\d{8})-(\\d+)", PCRE2_ZERO_TERMINATED,
				       PCRE2_UTF, &errcode, &erroff, NULL);
	pcre2_match_data *md;

	if (!re)
		return fail("pcre2", "pcre2_compile");
	md = pcre2_match_data_create_from_pattern(re, NULL);
	if (pcre2_match(re, (PCRE2_SPTR)subject, sizeof subject - 1, 0, 0, md, NULL) == 3) {
		ov = pcre2_get_ovector_pointer(md);
		printf("pcre2 date=%.*s n=%.*s\n", (int)(ov[3] - ov[2]), subject + ov[2],
		       (int)(ov[5] - ov[4]), subject + ov[4]);
	} else {
		fail("pcre2", "no match");
	}
	pcre2_match_data_free(md);
	pcre2_code_free(re);
}

static void smoke_gmime(void)
{
	/* An RFC 2047 subject in ISO-8859-1 (needs iconv: GLib's win_iconv)
	 * and a base64 attachment in a multipart. */
	static const char msg[] =
		"From: Payroll <payroll@example.test>\r\n"
		"To: ops@example.test\r\n"
		"Subject: =?ISO-8859-1?Q?Gr=FC=DFe_aus_M=FCnchen?=\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
		"\r\n"
		"--b1\r\n"
		"Content-Type: text/plain; charset=us-ascii\r\n"
		"\r\n"
		"body\r\n"
		"--b1\r\n"
		"Content-Type: application/octet-stream; name=\"a.txt\"\r\n"
		"Content-Transfer-Encoding: base64\r\n"
		"Content-Disposition: attachment; filename=\"a.txt\"\r\n"
		"\r\n"
		"aGVsbG8gd2luZG93cw==\r\n"
		"--b1--\r\n";
	GMimeStream *in, *out;
	GMimeParser *parser;
	GMimeMessage *m;
	GMimeObject *body, *att;
	GByteArray *bytes;
	const char *subject;
	char subject_hex[256] = "-";

	g_mime_init();
	in = g_mime_stream_mem_new_with_buffer(msg, sizeof msg - 1);
	parser = g_mime_parser_new_with_stream(in);
	m = g_mime_parser_construct_message(parser, NULL);
	if (!m) {
		fail("gmime", "g_mime_parser_construct_message");
		goto out;
	}
	subject = g_mime_message_get_subject(m);
	if (subject && strlen(subject) < sizeof subject_hex / 2)
		hex((const unsigned char *)subject, strlen(subject), subject_hex);
	body = g_mime_message_get_mime_part(m);
	att = GMIME_IS_MULTIPART(body) ? g_mime_multipart_get_part(GMIME_MULTIPART(body), 1) : NULL;
	if (!att || !GMIME_IS_PART(att)) {
		fail("gmime", "no attachment part");
		goto out;
	}
	out = g_mime_stream_mem_new();
	g_mime_data_wrapper_write_to_stream(g_mime_part_get_content(GMIME_PART(att)), out);
	bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out));
	printf("gmime subject_hex=%s file=%s content=%.*s\n", subject_hex,
	       g_mime_part_get_filename(GMIME_PART(att)), (int)bytes->len, (const char *)bytes->data);
	g_object_unref(out);
out:
	if (m)
		g_object_unref(m);
	g_object_unref(parser);
	g_object_unref(in);
	g_mime_shutdown();
}

static void smoke_zlib(void)
{
	uLong crc = crc32(0L, (const Bytef *)"123456789", 9);

	printf("zlib %s crc32=%08lx\n", zlibVersion(), crc);
}

int main(void)
{
	smoke_openssl();
	smoke_curl();
	smoke_sqlite();
	smoke_libxml2();
	smoke_cjson();
	smoke_pcre2();
	smoke_gmime();
	smoke_zlib();
	printf("done failures=%d\n", failures);
	return failures ? 1 : 0;
}
