#include "transport/http.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/compat.h"
#include "base/log.h"
#include "base/platform.h"
#include "base/mem.h"

struct http_client {
	CURL *curl;
	struct http_client_params p;
	char *ca_file;
};

static int global_ready;

static int curl_global(struct ms_err *err)
{
	if (global_ready)
		return 0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return err_set(err, MS_ERR_INTERNAL, "cannot initialise libcurl");
	global_ready = 1;
	return 0;
}

void http_tls_setup(void *curl, const char *ca_file, int verify)
{
	if (ca_file)
		curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file);
	else if (platform_tls_system_store())
		curl_easy_setopt(curl, CURLOPT_SSL_OPTIONS, (long)CURLSSLOPT_NATIVE_CA);
	if (!verify) {
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
	}
}

int http_client_new(struct http_client **out, const struct http_client_params *p,
		    struct ms_err *err)
{
	struct http_client *c;

	*out = NULL;
	if (curl_global(err))
		return -1;
	c = calloc(1, sizeof(*c));
	if (!c)
		return err_nomem(err);
	if (p)
		c->p = *p;
	if (!c->p.timeout_s)
		c->p.timeout_s = 60;
	if (!c->p.connect_timeout_s)
		c->p.connect_timeout_s = 15;
	if (!c->p.max_body)
		c->p.max_body = 16u * 1024 * 1024;
	if (p && p->ca_file && !(c->ca_file = strdup(p->ca_file))) {
		free(c);
		return err_nomem(err);
	}
	c->p.ca_file = c->ca_file;
	c->curl = curl_easy_init();
	if (!c->curl) {
		free(c->ca_file);
		free(c);
		return err_set(err, MS_ERR_INTERNAL, "cannot create a libcurl handle");
	}
	*out = c;
	return 0;
}

void http_client_free(struct http_client *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->curl);
	free(c->ca_file);
	free(c);
}

struct sink {
	struct http_response *resp;
	struct ms_err *err;
	int failed;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct sink *s = ud;
	size_t n = size * nmemb;

	if (buf_append(&s->resp->body, ptr, n, s->err)) {
		s->failed = 1;
		return 0;
	}
	return n;
}

static char *header_value(const char *line, size_t len, const char *name)
{
	size_t nl = strlen(name);
	const char *v, *end = line + len;
	char *out;

	if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return NULL;
	v = line + nl + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	out = malloc((size_t)(end - v) + 1);
	if (!out)
		return NULL;
	memcpy(out, v, (size_t)(end - v));
	out[end - v] = '\0';
	return out;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *ud)
{
	struct sink *s = ud;
	size_t n = size * nmemb;
	char *v;

	if ((v = header_value(line, n, "Retry-After"))) {
		char *endp;
		long secs = strtol(v, &endp, 10);
		/* an HTTP-date form is treated as "a little while" */
		s->resp->retry_after_s = (*endp == '\0' && secs >= 0) ? secs : 5;
		free(v);
	} else if ((v = header_value(line, n, "request-id")) ||
		   (v = header_value(line, n, "x-ms-request-id"))) {
		free(s->resp->request_id);
		s->resp->request_id = v;
	} else if ((v = header_value(line, n, "Content-Type"))) {
		free(s->resp->content_type);
		s->resp->content_type = v;
	}
	return n;
}

static int on_debug(CURL *h, curl_infotype type, char *data, size_t size, void *ud)
{
	char line[512];
	size_t n;

	(void)h; (void)ud;
	if (type != CURLINFO_HEADER_OUT && type != CURLINFO_HEADER_IN &&
	    type != CURLINFO_TEXT)
		return 0;
	n = size < sizeof(line) - 1 ? size : sizeof(line) - 1;
	memcpy(line, data, n);
	line[n] = '\0';
	/* never trace credentials */
	{
		char *a = ms_strcasestr(line, "Authorization:");
		if (a) {
			char *e = strpbrk(a, "\r\n");
			strcpy(a, "Authorization: [redacted]");
			(void)e;
		}
	}
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_trace("%s %s", type == CURLINFO_HEADER_OUT ? ">" :
		  type == CURLINFO_HEADER_IN ? "<" : "*", line);
	return 0;
}

int http_do(struct http_client *c, const struct http_request *req,
	    struct http_response *resp, struct ms_err *err)
{
	struct curl_slist *hdrs = NULL;
	struct sink s = { resp, err, 0 };
	char *auth = NULL;
	CURLcode rc;
	long timeout;
	int ret = -1;

	memset(resp, 0, sizeof(*resp));
	buf_init(&resp->body, c->p.max_body);
	resp->retry_after_s = -1;

	curl_easy_reset(c->curl);
	timeout = c->p.timeout_s;
	if (c->p.deadline) {
		long long left = c->p.deadline - (long long)time(NULL);

		if (left <= 0)
			return err_set(err, MS_ERR_NET, "%s: the run's time limit ran out "
				       "([General] RunTimeout)", req->url);
		if (left < timeout)
			timeout = (long)left;
	}
	curl_easy_setopt(c->curl, CURLOPT_URL, req->url);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, timeout);
	/* a server that drips bytes is given up on, as in mailbox.c */
	curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_LIMIT, 10L);
	curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, c->p.connect_timeout_s);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, &s);
	curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "mailshift/" MS_VERSION);
	http_tls_setup(c->curl, c->p.ca_file, !c->p.insecure);
	if (c->p.verbose) {
		curl_easy_setopt(c->curl, CURLOPT_DEBUGFUNCTION, on_debug);
		curl_easy_setopt(c->curl, CURLOPT_VERBOSE, 1L);
	}
	if (req->method && strcmp(req->method, "GET") != 0) {
		if (strcmp(req->method, "POST") == 0)
			curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
		else
			curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, req->method);
	}
	if (req->body) {
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, req->body);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)req->body_len);
	} else if (req->method && strcmp(req->method, "POST") == 0) {
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, "");
	}
	if (req->content_type) {
		char h[256];
		snprintf(h, sizeof(h), "Content-Type: %s", req->content_type);
		hdrs = curl_slist_append(hdrs, h);
	}
	if (req->bearer) {
		size_t n = strlen(req->bearer) + 32;
		auth = malloc(n);
		if (!auth) {
			err_nomem(err);
			goto out;
		}
		snprintf(auth, n, "Authorization: Bearer %s", req->bearer);
		hdrs = curl_slist_append(hdrs, auth);
	}
	for (const char *const *h = req->headers; h && *h; h++)
		hdrs = curl_slist_append(hdrs, *h);
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);

	rc = curl_easy_perform(c->curl);
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &resp->status);
	if (s.failed) {
		err_prefix(err, "response from '%s'", req->url);
		goto out;
	}
	if (rc != CURLE_OK) {
		enum ms_errcode code = MS_ERR_NET;
		if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
		    rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_SSL_CERTPROBLEM)
			code = MS_ERR_TLS;
		err_set(err, code, "request to '%s' failed: %s", req->url,
			curl_easy_strerror(rc));
		goto out;
	}
	ret = 0;
out:
	curl_slist_free_all(hdrs);
	mem_wipe_free(auth);
	if (ret)
		http_response_release(resp);
	return ret;
}

void http_response_release(struct http_response *resp)
{
	if (!resp)
		return;
	buf_wipe(&resp->body);
	free(resp->request_id);
	free(resp->content_type);
	resp->request_id = resp->content_type = NULL;
}

char *http_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = malloc(n * 3 + 1), *o = out;

	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p)) {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

int http_form_add(struct buf *form, const char *name, const char *value,
		  struct ms_err *err)
{
	char *v = http_escape(value ? value : "");
	int rc;

	if (!v)
		return err_nomem(err);
	rc = buf_appendf(form, err, "%s%s=%s", form->len ? "&" : "", name, v);
	mem_wipe_free(v);
	return rc;
}
