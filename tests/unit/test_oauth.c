/*
 * oauth.c without the mail world: scopes, URLs, parameters from the
 * configuration, and the token client against a scripted HTTP server on
 * 127.0.0.1 (Microsoft's exact error format, Retry-After, bad replies).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/fsutil.h"
#include "auth/oauth.h"
#include "auth/seal.h"
#include "tap.h"

/* ---- a scripted HTTP server ---- */

struct canned {
	const char *status;     /* "200 OK" */
	const char *headers;    /* extra header lines, each ending in \r\n */
	const char *body;
	int delay_ms;           /* wait before answering */
};

static char reqlog[256];
static int port;

static void serve_one(int fd, const struct canned *c, FILE *log)
{
	char buf[65536];
	size_t n = 0;
	ssize_t r;
	char *end = NULL, *cl;
	size_t want = 0;

	while (n < sizeof(buf) - 1) {
		r = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		buf[n] = '\0';
		if (buf[0] == 0x16)     /* a TLS ClientHello: answer in clear */
			break;
		if (!end && (end = strstr(buf, "\r\n\r\n"))) {
			cl = strcasestr(buf, "Content-Length:");
			want = (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
		}
		if (end && n >= want)
			break;
	}
	fprintf(log, "%s\n----\n", buf);
	fflush(log);
	if (c->delay_ms)
		usleep((useconds_t)c->delay_ms * 1000);
	dprintf(fd, "HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
		"Content-Length: %zu\r\nConnection: close\r\n%s\r\n%s",
		c->status, strlen(c->body), c->headers ? c->headers : "", c->body);
	close(fd);
}

static pid_t serve(const struct canned *c, int n)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	pid_t pid;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 16) < 0)
		exit(1);
	getsockname(lfd, (struct sockaddr *)&a, &al);
	port = ntohs(a.sin_port);
	if (truncate(reqlog, 0) < 0 && errno != ENOENT)
		exit(1);
	pid = fork();
	if (pid == 0) {
		FILE *log = fopen(reqlog, "a");
		for (int i = 0; i < n; i++) {
			int fd = accept(lfd, NULL, NULL);
			if (fd < 0)
				_exit(1);
			serve_one(fd, &c[i], log);
		}
		fclose(log);
		_exit(0);
	}
	close(lfd);
	return pid;
}

static int finish(pid_t pid)
{
	int st = 0;
	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
	return st;
}

static int count_requests(void)
{
	struct ms_err err = MS_ERR_INIT;
	char *d, *p;
	size_t n;
	int c = 0;

	if (fs_read_file(reqlog, 1 << 20, &d, &n, &err))
		return -1;
	for (p = d; (p = strstr(p, "\n----\n")); p++)
		c++;
	free(d);
	return c;
}

static int log_has(const char *s)
{
	struct ms_err err = MS_ERR_INIT;
	char *d;
	size_t n;
	int r;

	if (fs_read_file(reqlog, 1 << 20, &d, &n, &err))
		return 0;
	r = strstr(d, s) != NULL;
	free(d);
	return r;
}

static unsigned waits[16];
static int n_waits;

static void hook(unsigned s)
{
	if (n_waits < 16)
		waits[n_waits] = s;
	n_waits++;
}

static char authority[64];

static void params(struct oauth_params *p)
{
	memset(p, 0, sizeof(*p));
	snprintf(authority, sizeof(authority), "http://127.0.0.1:%d", port);
	p->authority = authority;
	p->tenant = "contoso.test";
	p->client_id = "client-1";
	p->client_secret = "CANARY-s3cret";
	p->scope = "https://outlook.office365.com/.default";
}

#define TOKEN_OK "{\"token_type\":\"Bearer\",\"expires_in\":3599,\"access_token\":\"AT-ONE\"}"

static void test_pure(void)
{
	struct oauth_params p = { 0 };
	struct ms_err err = MS_ERR_INIT;
	char *url;

	is(oauth_scope_default(PROTO_IMAP, FLOW_CLIENT_CREDENTIALS),
	   "https://outlook.office365.com/.default", "IMAP app scope");
	is(oauth_scope_default(PROTO_POP, FLOW_CLIENT_CREDENTIALS),
	   "https://outlook.office365.com/.default", "POP app scope");
	is(oauth_scope_default(PROTO_IMAP, FLOW_DEVICE_CODE),
	   "https://outlook.office.com/IMAP.AccessAsUser.All offline_access", "IMAP delegated");
	is(oauth_scope_default(PROTO_POP, FLOW_DEVICE_CODE),
	   "https://outlook.office.com/POP.AccessAsUser.All offline_access", "POP delegated");
	is(oauth_scope_default(PROTO_GRAPH, FLOW_CLIENT_CREDENTIALS),
	   "https://graph.microsoft.com/.default", "Graph app scope");
	is(oauth_scope_default(PROTO_MSAL, FLOW_CLIENT_CREDENTIALS),
	   "https://graph.microsoft.com/.default", "MSAL means Graph");
	is(oauth_scope_default(PROTO_GRAPH, FLOW_DEVICE_CODE),
	   "https://graph.microsoft.com/Mail.ReadWrite https://graph.microsoft.com/Mail.Send "
	   "offline_access", "Graph delegated");
	is(oauth_scope_smtp(FLOW_DEVICE_CODE),
	   "https://outlook.office.com/SMTP.Send offline_access", "SMTP delegated");
	is(oauth_flow_name(FLOW_UNSET), "client_credentials", "unset flow = client credentials");

	p.tenant = "contoso.onmicrosoft.com";
	ok(oauth_token_url(&p, &url, &err) == 0, "token URL with the default authority");
	is(url, "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
	   "default token URL");
	free(url);
	p.authority = "https://login.microsoftonline.us//";
	p.tenant = "a b";
	oauth_token_url(&p, &url, &err);
	is(url, "https://login.microsoftonline.us/a%20b/oauth2/v2.0/token",
	   "trailing slashes trimmed, tenant escaped");
	free(url);
	p.tenant = NULL;
	ok(oauth_token_url(&p, &url, &err) < 0 && err.code == MS_ERR_CONFIG, "no tenant");
}

static void test_scripted(void)
{
	struct oauth_params p;
	struct oauth_error oe;
	struct ms_err err = MS_ERR_INIT;
	char *tok = NULL;
	time_t exp;
	pid_t pid;

	/* Microsoft's real error layout: CRLF-separated trailer */
	{
		static const struct canned c[] = { { "401 Unauthorized", NULL,
			"{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: "
			"Invalid client secret provided. Ensure the secret being sent in the "
			"request is the client secret value, not the client secret ID, for a "
			"secret added to app 'x'.\\r\\nTrace ID: 1111\\r\\nCorrelation ID: 2222"
			"\\r\\nTimestamp: 2026-11-28 01:02:03Z\",\"error_codes\":[7000215],"
			"\"timestamp\":\"2026-11-28 01:02:03Z\",\"trace_id\":\"1111\","
			"\"correlation_id\":\"2222\",\"error_uri\":\"https://x/error\"}", 0 } };
		pid = serve(c, 1);
		params(&p);
		ok(oauth_get_token_ex(&p, 0, &tok, NULL, &oe, &err) < 0 && err.code == MS_ERR_AUTH,
		   "401 refused");
		is(err.msg, "token request refused: AADSTS7000215: Invalid client secret provided "
		   "(trace id 1111, correlation id 2222)", "message from Microsoft's format");
		is(oe.error, "invalid_client", "oe.error");
		ok(oe.n_codes == 1 && oe.codes[0] == 7000215 && oe.http_status == 401,
		   "oe codes and status");
		ok(strncmp(oe.description, "AADSTS7000215: Invalid client secret provided. Ensure",
			   50) == 0 && !strchr(oe.description, '\r'),
		   "oe.description keeps the first line");
		is(oe.trace_id, "1111", "trace id");
		is(oe.correlation_id, "2222", "correlation id");
		finish(pid);
		ok(log_has("grant_type=client_credentials") && log_has("client_id=client-1") &&
		   log_has("scope=https%3A%2F%2Foutlook.office365.com%2F.default") &&
		   log_has("client_secret=CANARY-s3cret") &&
		   log_has("POST /contoso.test/oauth2/v2.0/token "),
		   "form: grant, client, scope, secret, path");
		ok(!strstr(err.msg, "CANARY"), "no secret in the message");
	}

	/* 429 with a long Retry-After (capped), then 503 (backoff), then success
	 * with expires_in as a string (v1 style) */
	{
		static const struct canned c[] = {
			{ "429 Too Many Requests", "Retry-After: 45\r\n", "{}", 0 },
			{ "503 Service Unavailable", NULL, "oops", 0 },
			{ "200 OK", NULL, "{\"token_type\":\"Bearer\",\"expires_in\":\"1200\","
			  "\"access_token\":\"AT-TWO\"}", 0 } };
		time_t now = time(NULL);
		pid = serve(c, 3);
		params(&p);
		n_waits = 0;
		err_clear(&err);
		ok(oauth_get_token(&p, 0, &tok, &exp, &err) == 0 && tok &&
		   strcmp(tok, "AT-TWO") == 0, "token after 429 and 503 (%s)", err.msg);
		ok(n_waits == 2 && waits[0] == 30 && waits[1] == 2,
		   "Retry-After capped at 30 s, then 2 s backoff (%u, %u)", waits[0], waits[1]);
		ok(exp >= now + 1200 && exp <= now + 1205, "expires_in given as a string");
		oauth_token_free(tok);
		tok = NULL;
		finish(pid);
		is_int(count_requests(), 3, "three requests");
	}

	/* throttled to the end: MS_ERR_THROTTLED, temporary */
	{
		static const struct canned c[] = {
			{ "429 Too Many Requests", "Retry-After: 1\r\n", "{}", 0 },
			{ "429 Too Many Requests", "Retry-After: 1\r\n", "{}", 0 },
			{ "429 Too Many Requests", "Retry-After: 1\r\n", "{}", 0 } };
		pid = serve(c, 3);
		params(&p);
		n_waits = 0;
		err_clear(&err);
		ok(oauth_get_token(&p, 1, &tok, NULL, &err) < 0 && err.code == MS_ERR_THROTTLED &&
		   err_is_temporary(&err), "429 three times: throttled (%s)", err.msg);
		ok(n_waits == 2 && waits[0] == 1 && waits[1] == 1, "Retry-After: 1 honoured");
		finish(pid);
	}

	/* a 404 page: no retry, protocol error */
	{
		static const struct canned c[] = { { "404 Not Found", NULL, "<html>nope</html>", 0 } };
		pid = serve(c, 1);
		params(&p);
		n_waits = 0;
		err_clear(&err);
		ok(oauth_get_token(&p, 1, &tok, NULL, &err) < 0 && err.code == MS_ERR_PROTO &&
		   strstr(err.msg, "HTTP 404"), "404 without OAuth error: %s", err.msg);
		is_int(n_waits, 0, "not retried");
		finish(pid);
	}

	/* a token that is not a bearer token */
	{
		static const struct canned c[] = { { "200 OK", NULL,
			"{\"token_type\":\"pop\",\"expires_in\":3599,\"access_token\":\"AT\"}", 0 } };
		pid = serve(c, 1);
		params(&p);
		err_clear(&err);
		ok(oauth_get_token(&p, 1, &tok, NULL, &err) < 0 && err.code == MS_ERR_PROTO,
		   "non-bearer token refused: %s", err.msg);
		finish(pid);
	}

	/* nothing listening: network error, retried, temporary */
	{
		params(&p);
		snprintf(authority, sizeof(authority), "http://127.0.0.1:1");
		n_waits = 0;
		err_clear(&err);
		ok(oauth_get_token(&p, 1, &tok, NULL, &err) < 0 && err.code == MS_ERR_NET &&
		   n_waits == 2, "connection refused: temporary after retries (%s)", err.msg);
	}

	/* TLS failure is not retried */
	{
		static const struct canned c[] = { { "200 OK", NULL, TOKEN_OK, 0 } };
		pid = serve(c, 1);
		params(&p);
		snprintf(authority, sizeof(authority), "https://127.0.0.1:%d", port);
		n_waits = 0;
		err_clear(&err);
		ok(oauth_get_token(&p, 1, &tok, NULL, &err) < 0 && err.code == MS_ERR_TLS &&
		   n_waits == 0, "TLS failure, not retried (%s)", err.msg);
		finish(pid);
	}
}

/* 20 processes, one slow token endpoint that answers once: one request */
static void test_stampede(void)
{
	static const struct canned c[] = { { "200 OK", NULL,
		"{\"token_type\":\"Bearer\",\"expires_in\":3599,\"access_token\":"
		"\"AT-STAMPEDE\"}", 800 } };
	struct oauth_params p;
	int gate[2], good = 0;
	pid_t server, kids[20];

	server = serve(c, 1);
	params(&p);
	p.client_id = "client-stampede";
	if (pipe(gate) < 0)
		return;
	for (int i = 0; i < 20; i++) {
		if ((kids[i] = fork()) == 0) {
			struct ms_err e = MS_ERR_INIT;
			char ch, *t = NULL;
			close(gate[1]);
			if (read(gate[0], &ch, 1) != 0)
				_exit(2);
			if (oauth_get_token(&p, 0, &t, NULL, &e) || strcmp(t, "AT-STAMPEDE"))
				_exit(1);
			oauth_token_free(t);
			_exit(0);
		}
	}
	close(gate[0]);
	close(gate[1]);
	for (int i = 0; i < 20; i++) {
		int st;
		if (waitpid(kids[i], &st, 0) == kids[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0)
			good++;
	}
	finish(server);
	is_int(good, 20, "stampede: 20 processes got the token");
	is_int(count_requests(), 1, "stampede: one request reached the server");
}

int main(void)
{
	char home[64] = "/tmp/test_oauth.XXXXXX";

	if (!mkdtemp(home))
		return 1;
	setenv("MAILSHIFT_HOME", home, 1);
	unsetenv("MAILSHIFT_KEY_FILE");
	unsetenv("MAILSHIFT_TOKEN_CACHE");
	snprintf(reqlog, sizeof(reqlog), "%s/requests.log", home);
	oauth_set_sleep_hook(hook);

	test_pure();
	test_scripted();
	test_stampede();

	{
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", home);
		if (system(cmd) != 0)
			return 1;
	}
	return done_testing();
}
