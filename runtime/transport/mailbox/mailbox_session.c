/*
 * mailbox_session.c - the libcurl session that IMAP and POP3 share (one
 * easy handle per run, so libcurl keeps one connection and one login for
 * every command), the raw connection over it, and credential redaction
 * for the protocol trace.
 */
#include "transport/mailbox/mailbox.h"
#include "transport/mailbox/mailbox_int.h"
#include "transport/http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "base/mem.h"

/* ------------------------------------------------------------------ */
/* the libcurl session (IMAP, POP3) */

struct mb_session {
	CURL *curl;
	struct mailbox *mb;
	char *base;             /* "imaps://127.0.0.1:993/" */
	struct buf lines;       /* response lines of the last perform */
	struct buf body;        /* body data of the last perform */
	struct ms_err cap_err;  /* a cap hit inside a callback */
	int cap_hit;
	int clipped;            /* libcurl stripped an excessive line */
	int used;               /* a connection was made before */
	char errbuf[CURL_ERROR_SIZE];
	/* raw connection (CURLOPT_CONNECT_ONLY): libcurl connects, does
	 * TLS and logs in, then the backend talks over curl_easy_send/recv */
	int raw;                /* connected in CONNECT_ONLY mode */
	int lost;               /* the raw connection failed or was closed */
	size_t rpos, rlen;      /* unread bytes in rbuf */
	long waited_ms;         /* time spent waiting in this rate window */
	size_t window_bytes;    /* bytes received in it */
	char rbuf[64 * 1024];
};

static int curl_ready;

static size_t on_lines(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct mb_session *s = ud;
	size_t n = size * nmemb;

	if (buf_append(&s->lines, ptr, n, &s->cap_err)) {
		s->cap_hit = 1;
		return 0;
	}
	return n;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct mb_session *s = ud;
	size_t n = size * nmemb;

	if (buf_append(&s->body, ptr, n, &s->cap_err)) {
		s->cap_hit = 1;
		return 0;
	}
	return n;
}

static int word_is(const char *w, size_t wl, const char *s)
{
	return strlen(s) == wl && strncasecmp(w, s, wl) == 0;
}

void mb_redact_line(char *line, size_t size)
{
	static const char *const pop_verbs[] = {
		"QUIT", "STAT", "LIST", "UIDL", "NOOP", "RSET", "CAPA", "STLS",
		"TOP", "RETR", "DELE", "USER", "*", NULL
	};
	const char *w[3] = { NULL, NULL, NULL };
	size_t wl[3] = { 0, 0, 0 };
	size_t nw = 0;
	char *p = line, *cut = NULL;

	while (*p && nw < 3) {
		while (*p == ' ')
			p++;
		if (!*p || *p == '\r' || *p == '\n')
			break;
		w[nw] = p;
		while (*p && *p != ' ' && *p != '\r' && *p != '\n')
			p++;
		wl[nw] = (size_t)(p - w[nw]);
		nw++;
	}
	if (nw == 0)
		return;
	if (nw == 1) {
		/* a bare SASL response (base64 blob) unless a known verb */
		for (int i = 0; pop_verbs[i]; i++)
			if (word_is(w[0], wl[0], pop_verbs[i]))
				return;
		cut = (char *)w[0];
	} else if (word_is(w[0], wl[0], "PASS")) {
		cut = (char *)w[1];
	} else if (word_is(w[0], wl[0], "AUTH") || word_is(w[0], wl[0], "APOP")) {
		if (nw > 2)
			cut = (char *)w[2];
	} else if (word_is(w[1], wl[1], "LOGIN")) {
		if (nw > 2)
			cut = (char *)w[2];
	} else if (word_is(w[1], wl[1], "AUTHENTICATE")) {
		/* tag AUTHENTICATE MECH [initial response] */
		if (nw > 2) {
			char *q = (char *)w[2] + wl[2];
			if (*q == ' ')
				cut = q + 1;
		}
	}
	if (cut) {
		size_t room = size - (size_t)(cut - line);
		mem_wipe(cut, strlen(cut));
		snprintf(cut, room, "[redacted]");
	}
}

static int on_debug(CURL *h, curl_infotype type, char *data, size_t size,
		    void *ud)
{
	struct mb_session *s = ud;
	char line[600];
	size_t n;

	(void)h;
	if (type != CURLINFO_TEXT && type != CURLINFO_HEADER_IN &&
	    type != CURLINFO_HEADER_OUT)
		return 0;
	/* every line of every message passes here: be quick when quiet */
	if (type == CURLINFO_HEADER_IN &&
	    (!s->mb->p.verbose || !log_enabled(LOG_LVL_TRACE)))
		return 0;
	n = size < sizeof(line) - 1 ? size : sizeof(line) - 1;
	memcpy(line, data, n);
	line[n] = '\0';
	if (type == CURLINFO_TEXT &&
	    strstr(line, "Excessive server response line"))
		s->clipped = 1;
	/* curl_easy_send/recv note "reached easy.c:NNN" on every call */
	if (type == CURLINFO_TEXT && strncmp(line, "reached ", 8) == 0)
		return 0;
	if (type == CURLINFO_HEADER_OUT) {
		/* count login commands before redacting them */
		char *sp = strchr(line, ' ');
		if (strncasecmp(line, "PASS ", 5) == 0 ||
		    strncasecmp(line, "AUTH ", 5) == 0 ||
		    strncasecmp(line, "APOP ", 5) == 0 ||
		    (sp && (strncasecmp(sp, " LOGIN ", 7) == 0 ||
			    strncasecmp(sp, " AUTHENTICATE ", 14) == 0)))
			s->mb->logins++;
		mb_redact_line(line, sizeof(line));
	}
	if (!s->mb->p.verbose || !log_enabled(LOG_LVL_TRACE)) {
		mem_wipe(line, n);
		return 0;
	}
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	n = strlen(line);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
			line[i] = '.';
	log_trace("%s %s%s", type == CURLINFO_HEADER_OUT ? ">" :
		  type == CURLINFO_HEADER_IN ? "<" : "*", line,
		  size >= sizeof(line) - 1 ? " ..." : "");
	mem_wipe(line, n);
	return 0;
}

static long tls_version(enum tls_level l)
{
	switch (l) {
	case TLSL_TLS1_1: return CURL_SSLVERSION_TLSv1_1;
	case TLSL_TLS1_2: return CURL_SSLVERSION_TLSv1_2;
	case TLSL_TLS1_3: return CURL_SSLVERSION_TLSv1_3;
	/* SSL/SSL2 cannot be negotiated by a modern OpenSSL: TLS 1.0 is the
	 * floor; only the minimum is set, the highest common one wins */
	default: return CURL_SSLVERSION_TLSv1_0;
	}
}

static int set_token(struct mailbox *mb, int force, struct ms_err *err)
{
	char *token = NULL;

	if (mb->p.token_fn(mb->p.token_ctx, force, &token, err)) {
		return err_prefix(err, "%s: cannot get a token for '%s'",
				  mb->label, mb->p.user);
	}
	if (!token || !*token) {
		free(token);
		return err_set(err, MS_ERR_AUTH, "%s: empty token for '%s'",
			       mb->label, mb->p.user);
	}
	curl_easy_setopt(mb->session->curl, CURLOPT_XOAUTH2_BEARER, token);
	mem_wipe_free(token);
	return 0;
}

int mb_session_new(struct mailbox *mb, const char *scheme, struct ms_err *err)
{
	struct mb_session *s;
	const struct mailbox_params *p = &mb->p;
	char url[600], protos[16];
	CURL *c;

	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return err_set(err, MS_ERR_INTERNAL, "cannot initialise libcurl");
		curl_ready = 1;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_nomem(err);
	s->mb = mb;
	buf_init(&s->lines, MB_MAX_RESPONSE);
	buf_init(&s->body, MB_MAX_RESPONSE);
	snprintf(protos, sizeof(protos), "%s%s", scheme,
		 p->tls == TLSM_IMPLICIT ? "s" : "");
	snprintf(url, sizeof(url), strchr(p->host, ':') ? "%s://[%s]:%d/" :
		 "%s://%s:%d/", protos, p->host, p->port);
	s->base = strdup(url);
	s->curl = c = curl_easy_init();
	mb->session = s;
	if (!s->base || !c)
		return err_set(err, MS_ERR_NOMEM, "cannot create a libcurl handle");

	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, protos);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->errbuf);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, p->timeout_s);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, p->timeout_s < 15 ? p->timeout_s : 15L);
	/* each answer of the login and of the LOGOUT at the end */
	curl_easy_setopt(c, CURLOPT_SERVER_RESPONSE_TIMEOUT, p->timeout_s);
	/* a server that drips bytes must not keep a run alive forever */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, MAILBOX_MIN_RATE);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, MAILBOX_RATE_WINDOW);
	curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 4L * 1024 * 1024);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_lines);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, s);
	/* always on: the debug callback notices clipped lines; it traces
	 * only with p->verbose */
	curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, on_debug);
	curl_easy_setopt(c, CURLOPT_DEBUGDATA, s);
	curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);

	if (p->tls == TLSM_STARTTLS)
		curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	else if (p->tls == TLSM_NONE)
		curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_NONE);
	curl_easy_setopt(c, CURLOPT_SSLVERSION, tls_version(p->tls_min));
	http_tls_setup(c, p->ca_file, p->verify_peer);

	curl_easy_setopt(c, CURLOPT_USERNAME, p->user);
	if (p->token_fn) {
		/* Exchange offers only XOAUTH2, and libcurl would prefer
		 * OAUTHBEARER where both are offered: ask for XOAUTH2 */
		curl_easy_setopt(c, CURLOPT_LOGIN_OPTIONS, "AUTH=XOAUTH2");
		if (set_token(mb, 0, err))
			return -1;
	} else {
		curl_easy_setopt(c, CURLOPT_PASSWORD, p->password);
	}
	return 0;
}

void mb_session_free(struct mb_session *s)
{
	if (!s)
		return;
	if (s->curl)
		curl_easy_cleanup(s->curl);
	buf_wipe(&s->lines);
	buf_wipe(&s->body);
	free(s->base);
	free(s);
}

struct buf *mb_session_lines(struct mailbox *mb)
{
	return &mb->session->lines;
}

struct buf *mb_session_body(struct mailbox *mb)
{
	return &mb->session->body;
}

int mb_session_clipped(struct mailbox *mb)
{
	return mb->session->clipped;
}

/* A server's refusal: POP3 -ERR, IMAP BYE, or a tagged NO/BAD (status
 * words in any case, RFC 3501). */
static int refusal_line(const char *ls, const char *le)
{
	const char *sp = memchr(ls, ' ', (size_t)(le - ls));

	return (le - ls >= 4 && strncmp(ls, "-ERR", 4) == 0) ||
		(le - ls >= 5 && strncasecmp(ls, "* BYE", 5) == 0) ||
		(sp && ls[0] != '*' && ls[0] != '+' &&
		 ((le - sp >= 4 && strncasecmp(sp, " NO ", 4) == 0) ||
		  (le - sp >= 5 && strncasecmp(sp, " BAD ", 5) == 0)));
}

void mb_last_line(const char *resp, size_t len, char *out, size_t outsz)
{
	const char *end = resp + len, *start, *best_s = NULL, *best_e = NULL;
	size_t n;

	if (outsz == 0)
		return;
	out[0] = '\0';
	if (!resp)
		return;
	/* walk lines backwards; skip SASL continuations ("+ blob") */
	while (end > resp) {
		const char *e = end;
		while (e > resp && (e[-1] == '\n' || e[-1] == '\r'))
			e--;
		start = e;
		while (start > resp && start[-1] != '\n')
			start--;
		if (e > start && !(start[0] == '+' && (e - start == 1 || start[1] == ' '))) {
			best_s = start;
			best_e = e;
			break;
		}
		end = start;
	}
	if (!best_s)
		return;
	/* prefer the refusal itself (POP -ERR, IMAP tagged NO/BAD, BYE) to
	 * what libcurl's disconnect brought in after it */
	for (const char *ls = resp; ls < resp + len;) {
		const char *le = memchr(ls, '\n', (size_t)(resp + len - ls));
		le = le ? le : resp + len;
		if (refusal_line(ls, le)) {
			best_s = ls;
			best_e = le;
			while (best_e > best_s && (best_e[-1] == '\r' || best_e[-1] == '\n'))
				best_e--;
		}
		ls = le + 1;
	}
	n = (size_t)(best_e - best_s);
	if (n > outsz - 1)
		n = outsz - 1;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)best_s[i];
		out[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	out[n] = '\0';
}

void mb_login_reply(const char *resp, size_t len, char *out, size_t outsz)
{
	const char *end = resp ? resp + len : NULL, *s;
	unsigned char dec[512];
	int n;

	mb_last_line(resp, len, out, outsz);
	if (!resp || !len || outsz < 32)
		return;
	while (end > resp && (end[-1] == '\n' || end[-1] == '\r'))
		end--;
	s = end;
	while (s > resp && s[-1] != '\n')
		s--;
	/* XOAUTH2 refusals come as a "+ base64(JSON)" challenge that libcurl
	 * does not answer: show the JSON */
	if (end - s < 3 || s[0] != '+' || s[1] != ' ' || (size_t)(end - s - 2) > 600)
		return;
	n = EVP_DecodeBlock(dec, (const unsigned char *)s + 2, (int)(end - s - 2));
	if (n <= 0)
		return;
	while (n > 0 && dec[n - 1] == '\0')
		n--;
	for (int i = 0; i < n; i++)
		if (dec[i] < 0x20 || dec[i] > 0x7e)
			return;
	snprintf(out, outsz, "SASL error %.*s", n, (const char *)dec);
}

/* libcurl gives up with CURLE_LOGIN_DENIED before sending any credential
 * when the server offers no login it can use: IMAP LOGINDISABLED with no
 * AUTH= mechanism (what a server that wants TLS shows before STARTTLS),
 * POP3 without USER, APOP or SASL.  Nothing was refused then: the last
 * reply is the CAPABILITY's OK, and quoting it as a refusal misleads.
 * Returns 1 with err set when the conversation holds no refusal. */
static int login_not_offered(struct mailbox *mb, const char *resp, size_t len,
			     struct ms_err *err)
{
	int logindisabled = 0;

	if (!resp || !len)
		return 0;
	for (const char *ls = resp; ls < resp + len;) {
		const char *le = memchr(ls, '\n', (size_t)(resp + len - ls));
		le = le ? le : resp + len;
		if (refusal_line(ls, le))
			return 0;
		/* a continuation ("+ challenge", not POP3's "+OK"): a SASL
		 * exchange began, so a login was tried (an XOAUTH2 refusal
		 * ends with its "+ base64(JSON)" challenge) */
		if (ls[0] == '+' && (le - ls < 2 || ls[1] != 'O'))
			return 0;
		if (ls[0] == '*' && memmem(ls, (size_t)(le - ls), "LOGINDISABLED", 13))
			logindisabled = 1;
		ls = le + 1;
	}
	if (mb->p.tls == TLSM_NONE)
		err_set(err, MS_ERR_AUTH, "%s: cannot log in as '%s': the server accepts no "
			"login without TLS (%s); set StartTLS=True with SecurityProtocol=TLS1_2 "
			"in [Mail], or use its implicit TLS port", mb->label, mb->p.user,
			logindisabled ? "it announces LOGINDISABLED" :
			"it offers no login mechanism before TLS");
	else
		err_set(err, MS_ERR_AUTH, "%s: cannot log in as '%s': the server offers no "
			"login mechanism this connector can use%s", mb->label, mb->p.user,
			logindisabled ? " (it announces LOGINDISABLED)" : "");
	return 1;
}

static enum ms_errcode curl_code(CURLcode rc)
{
	switch (rc) {
	case CURLE_LOGIN_DENIED:
		return MS_ERR_AUTH;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_USE_SSL_FAILED:
		return MS_ERR_TLS;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
		return MS_ERR_NET;
	case CURLE_OUT_OF_MEMORY:
		return MS_ERR_NOMEM;
	default:
		return MS_ERR_PROTO;
	}
}

static int perform_once(struct mailbox *mb, const char *path, const char *cmd,
			int nobody, size_t body_cap, int fresh, int *reconnected,
			CURLcode *rcp, struct ms_err *err)
{
	struct mb_session *s = mb->session;
	char url[1200], last[400];
	int refreshed = 0;
	long nconn = 0;
	CURLcode rc;

	if (reconnected)
		*reconnected = 0;
	if (strlen(s->base) + strlen(path) >= sizeof(url))
		return err_set(err, MS_ERR_INTERNAL, "%s: url too long", mb->label);
	memcpy(url, s->base, strlen(s->base));
	memcpy(url + strlen(s->base), path, strlen(path) + 1);
	curl_easy_setopt(s->curl, CURLOPT_URL, url);
	curl_easy_setopt(s->curl, CURLOPT_CUSTOMREQUEST, cmd);
	curl_easy_setopt(s->curl, CURLOPT_NOBODY, nobody ? 1L : 0L);
	curl_easy_setopt(s->curl, CURLOPT_FRESH_CONNECT, fresh ? 1L : 0L);
again:
	buf_reset(&s->lines);
	buf_reset(&s->body);
	s->body.cap = body_cap ? body_cap : MB_MAX_RESPONSE;
	s->cap_hit = 0;
	s->clipped = 0;
	err_clear(&s->cap_err);
	s->errbuf[0] = '\0';
	if (mb->p.deadline) {
		long left = (long)(mb->p.deadline - time(NULL));

		if (left <= 0)
			return mb_deadline_error(mb, err);
		/* a raw (CONNECT_ONLY) perform only connects and logs in */
		curl_easy_setopt(s->curl, CURLOPT_TIMEOUT,
				 left < mb->p.timeout_s || s->raw ? left : mb->p.timeout_s);
	}
	rc = curl_easy_perform(s->curl);
	if (rc == CURLE_OPERATION_TIMEDOUT && mb->p.deadline &&
	    time(NULL) >= mb->p.deadline)
		return mb_deadline_error(mb, err);
	*rcp = rc;
	nconn = 0;
	curl_easy_getinfo(s->curl, CURLINFO_NUM_CONNECTS, &nconn);
	if (nconn > 0) {
		mb->connects += nconn;
		if (s->used && reconnected)
			*reconnected = 1;
		if (s->used)
			log_debug("%s: reconnected", mb->label);
	}
	if (rc == CURLE_OK) {
		s->used = 1;
		return 0;
	}
	if (s->cap_hit) {
		return err_set(err, s->cap_err.code, "%s: response to '%s': %s",
			       mb->label, cmd ? cmd : "fetch", s->cap_err.msg);
	}
	mb_login_reply(s->lines.data, s->lines.len, last, sizeof(last));
	if (rc == CURLE_LOGIN_DENIED) {
		if (mb->p.token_fn && !refreshed) {
			/* Exchange: "AUTHENTICATE failed" / AccessTokenExpired:
			 * one fresh token, one new connection, one retry */
			log_debug("%s: login refused (%s); retrying with a fresh token",
				  mb->label, last);
			refreshed = 1;
			if (set_token(mb, 1, err))
				return -1;
			goto again;
		}
		if (login_not_offered(mb, s->lines.data, s->lines.len, err))
			return -1;
		return err_set(err, MS_ERR_AUTH, "%s: login refused for '%s': %s",
			       mb->label, mb->p.user, *last ? last :
			       (*s->errbuf ? s->errbuf : curl_easy_strerror(rc)));
	}
	switch (curl_code(rc)) {
	case MS_ERR_TLS: {
		const char *why = *s->errbuf ? s->errbuf : curl_easy_strerror(rc);
		/* a reset or a closed socket during the handshake is the
		 * network (a server going down), not a certificate problem */
		if (strstr(why, "Connection reset") || strstr(why, "Recv failure") ||
		    strstr(why, "Send failure") || strstr(why, "unexpected eof"))
			return err_set(err, MS_ERR_NET, "%s: connection lost: %s",
				       mb->label, why);
		if (rc == CURLE_USE_SSL_FAILED && mb->p.tls == TLSM_STARTTLS)
			return err_set(err, MS_ERR_TLS,
				       "%s: the server offers no STARTTLS, so the "
				       "password would cross the network in clear: "
				       "refused (set [Mail] SecurityProtocol=NONE to "
				       "allow plaintext explicitly): %s", mb->label, why);
		return err_set(err, MS_ERR_TLS, "%s: TLS refused: %s", mb->label, why);
	}
	case MS_ERR_NET:
		return err_set(err, MS_ERR_NET, "%s: %s", mb->label,
			       *s->errbuf ? s->errbuf : curl_easy_strerror(rc));
	default:
		return err_set(err, curl_code(rc), "%s: '%s' failed: %s", mb->label,
			       cmd ? cmd : path, *last ? last :
			       (*s->errbuf ? s->errbuf : curl_easy_strerror(rc)));
	}
}

/* The server ended the session under us: a dead connection libcurl
 * only noticed while reading, IMAP "* BYE" (Exchange: "Session
 * invalidated - AccessTokenExpired"), POP "-ERR [SYS/TEMP]". */
static int session_lost(CURLcode rc, const struct buf *lines)
{
	const char *d = lines->data;

	if (rc == CURLE_OK)
		return 0;
	if (rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR ||
	    rc == CURLE_GOT_NOTHING || rc == CURLE_PARTIAL_FILE)
		return 1;
	if (!d)
		return 0;
	if (strncmp(d, "* BYE", 5) == 0 || strstr(d, "\n* BYE") ||
	    strstr(d, "-ERR [SYS/TEMP]") || strstr(d, "-ERR [IN-USE]") ||
	    strncmp(d, "+OK Logging out", 15) == 0 ||
	    strstr(d, "Session invalidated"))
		return 1;
	return 0;
}

/* 1 while the connection of the last perform is open with nothing
 * unasked for waiting on it.  libcurl ends a POP3 multi-line answer at
 * the server's close as if it had been complete (the length is not
 * known in advance, and its end-of-body match is internal): a closed
 * or readable connection after it says the answer may have been cut. */
static int session_quiet(struct mb_session *s)
{
	curl_socket_t sock = CURL_SOCKET_BAD;
	struct pollfd pfd;
	int r;

	if (curl_easy_getinfo(s->curl, CURLINFO_ACTIVESOCKET, &sock) != CURLE_OK ||
	    sock == CURL_SOCKET_BAD)
		return 0;
	pfd.fd = sock;
	pfd.events = POLLIN;
	pfd.revents = 0;
	do
		r = poll(&pfd, 1, 0);
	while (r < 0 && errno == EINTR);
	return r == 0;
}

int mb_session_perform(struct mailbox *mb, const char *path, const char *cmd,
		       int nobody, size_t body_cap, int *reconnected,
		       struct ms_err *err)
{
	struct mb_session *s = mb->session;
	struct ms_err first = MS_ERR_INIT;
	CURLcode rc = CURLE_OK;
	int was_used = s->used, pop = strncmp(s->base, "pop3", 4) == 0;

	if (perform_once(mb, path, cmd, nobody, body_cap, 0, reconnected, &rc,
			 &first) == 0) {
		if (!pop || nobody || session_quiet(s))
			return 0;
		/* taken as lost even when the close came just after a whole
		 * answer: repeating a read costs one command, keeping a cut
		 * one can cost a message */
		err_set(&first, MS_ERR_NET, "%s: the connection closed during "
			"'%s': its answer may be cut short", mb->label, cmd);
		rc = CURLE_PARTIAL_FILE;
		was_used = 1;
	}
	if (!was_used || !reconnected || !session_lost(rc, &s->lines))
		return err_set(err, first.code, "%s", first.msg);
	/* Never repeat the command blindly in a new session (POP message
	 * numbers, IMAP selection): log in again with a NOOP and let the
	 * backend restore its state and repeat. */
	log_debug("%s: session lost (%s); logging in again", mb->label, first.msg);
	if (perform_once(mb, "", "NOOP", pop, 0, 1, reconnected, &rc, err))
		return -1;
	*reconnected = 1;
	return err_set(err, MS_ERR_NET, "%s", first.msg);
}

/* ------------------------------------------------------------------ */
/* the raw connection: CONNECT_ONLY + curl_easy_send/recv
 *
 * libcurl hands every IMAP response line and literal to the header
 * callback and counts them against its "response headers" limit (300 KB
 * in Debian's 7.88.1 with the CVE-2023-38039 fix, curl >= 8.3), which a
 * large mailbox exceeds.  So libcurl only connects, negotiates TLS
 * (implicit or STARTTLS) and logs in (SASL with XOAUTH2 or PLAIN/LOGIN):
 * CURLOPT_CONNECT_ONLY stops after the protocol's connect phase, which
 * for IMAP and POP3 includes the greeting, capabilities, STARTTLS and the
 * login.  The commands then go over that connection with our own reader,
 * which has its own caps. */

int mb_conn_open(struct mailbox *mb, int fresh, struct ms_err *err)
{
	struct mb_session *s = mb->session;
	CURLcode rc = CURLE_OK;
	int reconnected = 0;

	if (s->raw && s->used) {
		/* libcurl 7.88 neither reuses nor frees a CONNECT_ONLY
		 * connection when its handle performs again: close it with the
		 * handle and go on with a copy (same options and token) */
		CURL *copy = curl_easy_duphandle(s->curl);
		if (!copy)
			return err_set(err, MS_ERR_NOMEM, "cannot create a libcurl handle");
		curl_easy_cleanup(s->curl);
		s->curl = copy;
	}
	s->rpos = s->rlen = 0;
	s->lost = 0;
	s->raw = 1;
	s->waited_ms = 0;       /* a new connection is judged on its own */
	s->window_bytes = 0;
	curl_easy_setopt(s->curl, CURLOPT_CONNECT_ONLY, 1L);
	/* CURLOPT_TIMEOUT would count from the connect to every later
	 * curl_easy_recv: our reader has its own per-read timeout */
	curl_easy_setopt(s->curl, CURLOPT_TIMEOUT, 0L);
	if (perform_once(mb, "", NULL, 0, 0, fresh || s->used, &reconnected,
			 &rc, err)) {
		s->lost = 1;
		return -1;
	}
	return 0;
}

int mb_conn_lost(struct mailbox *mb)
{
	return !mb->session || mb->session->lost;
}

void mb_conn_abandon(struct mailbox *mb)
{
	if (mb->session)
		mb->session->lost = 1;
}

int mb_deadline_error(struct mailbox *mb, struct ms_err *err)
{
	return err_set(err, MS_ERR_NET, "%s: the run's time limit ran out "
		       "([General] RunTimeout)", mb->label);
}

static int conn_wait(struct mailbox *mb, short events, struct ms_err *err)
{
	struct mb_session *s = mb->session;
	curl_socket_t sock = CURL_SOCKET_BAD;
	struct pollfd pfd;
	struct timespec t0, t1;
	long wait_ms;
	int r;

	if (curl_easy_getinfo(s->curl, CURLINFO_ACTIVESOCKET, &sock) != CURLE_OK ||
	    sock == CURL_SOCKET_BAD) {
		s->lost = 1;
		return err_set(err, MS_ERR_NET, "%s: connection closed", mb->label);
	}
	pfd.fd = sock;
	pfd.events = events;
	pfd.revents = 0;
	wait_ms = mb->p.timeout_s * 1000;
	if (mb->p.deadline) {
		long left = ((long)(mb->p.deadline - time(NULL))) * 1000;

		if (left <= 0) {
			s->lost = 1;
			return mb_deadline_error(mb, err);
		}
		if (left < wait_ms)
			wait_ms = left;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do
		r = poll(&pfd, 1, (int)wait_ms);
	while (r < 0 && errno == EINTR);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	s->waited_ms += (t1.tv_sec - t0.tv_sec) * 1000 +
		(t1.tv_nsec - t0.tv_nsec) / 1000000;
	if (r == 0 && mb->p.deadline && time(NULL) >= mb->p.deadline) {
		s->lost = 1;
		return mb_deadline_error(mb, err);
	}
	if (r == 0) {
		s->lost = 1;
		return err_set(err, MS_ERR_NET, "%s: no answer from the server in %ld s",
			       mb->label, mb->p.timeout_s);
	}
	/* the minimum rate, counted over the time spent waiting only */
	if (s->waited_ms >= MAILBOX_RATE_WINDOW * 1000) {
		size_t want = (size_t)(MAILBOX_MIN_RATE * s->waited_ms / 1000);

		if (s->window_bytes < want) {
			size_t got = s->window_bytes;
			long waited = s->waited_ms / 1000;

			s->lost = 1;
			s->waited_ms = 0;
			s->window_bytes = 0;
			return err_set(err, MS_ERR_NET,
				       "%s: the server sent %zu bytes in %ld s of waiting, "
				       "less than %ld bytes a second: giving up",
				       mb->label, got, waited, MAILBOX_MIN_RATE);
		}
		s->waited_ms = 0;
		s->window_bytes = 0;
	}
	if (r < 0) {
		s->lost = 1;
		return err_set(err, MS_ERR_NET, "%s: poll: %s", mb->label, strerror(errno));
	}
	return 0;
}

void mb_conn_trace(struct mailbox *mb, const char *dir, const char *data,
		   size_t len)
{
	char line[600];
	size_t n;

	if (!mb->p.verbose || !log_enabled(LOG_LVL_TRACE))
		return;
	n = len < sizeof(line) - 1 ? len : sizeof(line) - 1;
	memcpy(line, data, n);
	line[n] = '\0';
	if (*dir == '>')
		mb_redact_line(line, sizeof(line));
	n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
			line[i] = '.';
	log_trace("%s %s%s", dir, line, len >= sizeof(line) - 1 ? " ..." : "");
	mem_wipe(line, sizeof(line));
}

int mb_conn_send(struct mailbox *mb, const char *line, struct ms_err *err)
{
	struct mb_session *s = mb->session;
	size_t len = strlen(line), off = 0;
	char *msg;

	if (!s || !s->raw || s->lost)
		return err_set(err, MS_ERR_NET, "%s: not connected", mb->label);
	msg = malloc(len + 3);
	if (!msg)
		return err_nomem(err);
	memcpy(msg, line, len);
	memcpy(msg + len, "\r\n", 3);
	mb_conn_trace(mb, ">", line, len);
	len += 2;
	/* bounded: every pass sends something or waits at most the timeout */
	while (off < len) {
		size_t sent = 0;
		CURLcode rc = curl_easy_send(s->curl, msg + off, len - off, &sent);
		if (rc == CURLE_AGAIN) {
			if (conn_wait(mb, POLLOUT, err))
				goto fail;
			continue;
		}
		if (rc != CURLE_OK) {
			s->lost = 1;
			err_set(err, MS_ERR_NET, "%s: send failed: %s", mb->label,
				curl_easy_strerror(rc));
			goto fail;
		}
		off += sent;
	}
	mem_wipe_free(msg);
	return 0;
fail:
	mem_wipe_free(msg);
	return -1;
}

/* Refill rbuf; 0 on data, -1 with err on close/error/timeout. */
static int conn_fill(struct mailbox *mb, struct ms_err *err)
{
	struct mb_session *s = mb->session;

	if (!s || !s->raw || s->lost)
		return err_set(err, MS_ERR_NET, "%s: not connected", mb->label);
	for (;;) {
		size_t got = 0;
		CURLcode rc = curl_easy_recv(s->curl, s->rbuf, sizeof(s->rbuf), &got);
		if (rc == CURLE_AGAIN) {
			if (conn_wait(mb, POLLIN, err))
				return -1;
			continue;
		}
		if (rc != CURLE_OK) {
			s->lost = 1;
			return err_set(err, MS_ERR_NET, "%s: receive failed: %s",
				       mb->label, curl_easy_strerror(rc));
		}
		if (got == 0) {
			s->lost = 1;
			return err_set(err, MS_ERR_NET, "%s: connection closed by the server",
				       mb->label);
		}
		s->rpos = 0;
		s->rlen = got;
		s->window_bytes += got;
		return 0;
	}
}

int mb_conn_read_line(struct mailbox *mb, struct buf *out, size_t maxlen,
		      struct ms_err *err)
{
	struct mb_session *s = mb->session;
	size_t start = out->len;

	for (;;) {
		const char *p, *nl;
		size_t n;

		if (s->rpos == s->rlen && conn_fill(mb, err))
			return -1;
		p = s->rbuf + s->rpos;
		nl = memchr(p, '\n', s->rlen - s->rpos);
		n = nl ? (size_t)(nl - p) + 1 : s->rlen - s->rpos;
		if (out->len - start + n > maxlen) {
			s->lost = 1;    /* the stream cannot be resynchronised */
			return err_set(err, MS_ERR_TOOBIG,
				       "%s: response line longer than %zu bytes",
				       mb->label, maxlen);
		}
		if (buf_append(out, p, n, err)) {
			s->lost = 1;
			return -1;
		}
		s->rpos += n;
		if (nl)
			return 0;
	}
}

int mb_conn_read_exact(struct mailbox *mb, struct buf *out, size_t n,
		       struct ms_err *err)
{
	struct mb_session *s = mb->session;

	while (n) {
		size_t k;

		if (s->rpos == s->rlen && conn_fill(mb, err))
			return -1;
		k = s->rlen - s->rpos < n ? s->rlen - s->rpos : n;
		if (buf_append(out, s->rbuf + s->rpos, k, err)) {
			s->lost = 1;
			return -1;
		}
		s->rpos += k;
		n -= k;
	}
	return 0;
}
