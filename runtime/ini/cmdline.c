/*
 * cmdline.c - Windows command line splitting and the connector's options.
 */
#include "ini/cmdline.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/compat.h"
#include "base/mem.h"
#include "base/suggest.h"

/* A token of a split line: its decoded text and where it was in the raw
 * string (start inclusive, end exclusive). */
struct tok {
	char *text;
	size_t start, end;
};

static void toks_free(struct tok *t, int n)
{
	int i;

	if (!t)
		return;
	for (i = 0; i < n; i++) {
		mem_wipe_free(t[i].text);
	}
	free(t);
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * The MSVC rules.  first: treat the first token like CommandLineToArgvW
 * treats the program name (quotes toggle, backslashes literal).
 */
static int split_raw(const char *cmd, int first, struct tok **out, int *nout,
		     struct ms_err *err)
{
	struct tok *t = NULL;
	int n = 0;
	size_t alloc = 0, len = strlen(cmd), i = 0;
	char *cur = NULL;

	*out = NULL;
	*nout = 0;
	if (!(cur = malloc(len + 1)))
		return err_nomem(err);
	for (;;) {
		size_t k = 0, start;
		int inq = 0;

		while (i < len && is_blank(cmd[i]))
			i++;
		if (i >= len)
			break;
		start = i;
		if (first && n == 0) {
			while (i < len && (inq || !is_blank(cmd[i]))) {
				if (cmd[i] == '"')
					inq = !inq;
				else
					cur[k++] = cmd[i];
				i++;
			}
		} else {
			while (i < len && (inq || !is_blank(cmd[i]))) {
				if (cmd[i] == '\\') {
					size_t nb = 0;
					while (i < len && cmd[i] == '\\') {
						nb++;
						i++;
					}
					if (i < len && cmd[i] == '"') {
						size_t m;
						for (m = 0; m < nb / 2; m++)
							cur[k++] = '\\';
						if (nb % 2) {
							cur[k++] = '"';
							i++;
						}
						/* even: the quote is handled below */
					} else {
						size_t m;
						for (m = 0; m < nb; m++)
							cur[k++] = '\\';
					}
					continue;
				}
				if (cmd[i] == '"') {
					if (inq && i + 1 < len && cmd[i + 1] == '"') {
						/* "" inside quotes: a literal quote */
						cur[k++] = '"';
						i += 2;
						continue;
					}
					inq = !inq;
					i++;
					continue;
				}
				cur[k++] = cmd[i++];
			}
		}
		if (MEM_GROW(t, alloc, (size_t)n + 1, NULL) < 0)
			goto nomem;
		cur[k] = '\0';
		t[n].start = start;
		t[n].end = i;
		if (!(t[n].text = strdup(cur)))
			goto nomem;
		n++;
	}
	mem_wipe(cur, len + 1);
	free(cur);
	*out = t;
	*nout = n;
	return 0;
nomem:
	mem_wipe(cur, len + 1);
	free(cur);
	toks_free(t, n);
	return err_nomem(err);
}

static int toks_to_argv(struct tok *t, int from, int n, char ***argv, int *argc,
			struct ms_err *err)
{
	char **v;
	int i;

	v = calloc((size_t)(n - from) + 1, sizeof(*v));
	if (!v)
		return err_nomem(err);
	for (i = from; i < n; i++) {
		v[i - from] = t[i].text;
		t[i].text = NULL;
	}
	*argv = v;
	*argc = n - from;
	return 0;
}

int cmdline_split_windows(const char *cmd, char ***argv, int *argc,
			  struct ms_err *err)
{
	struct tok *t = NULL;
	int n = 0, rc;

	*argv = NULL;
	*argc = 0;
	if (!cmd)
		cmd = "";
	if (strlen(cmd) > CMDLINE_MAX)
		return err_set(err, MS_ERR_DATA,
			       "command line is longer than %d characters",
			       CMDLINE_MAX);
	if (split_raw(cmd, 1, &t, &n, err) < 0)
		return -1;
	rc = toks_to_argv(t, 0, n, argv, argc, err);
	toks_free(t, n);
	return rc;
}

void cmdline_argv_free(char **argv, int argc)
{
	int i;

	if (!argv)
		return;
	for (i = 0; i < argc; i++) {
		mem_wipe_free(argv[i]);
	}
	free(argv);
}

static const char *base_name(const char *p)
{
	const char *b = p, *s;

	for (s = p; *s; s++)
		if (*s == '\\' || *s == '/' || *s == ':')
			b = s + 1;
	return b;
}

int cmdline_is_connector_exe(const char *token)
{
	const char *b;
	size_t n;

	if (!token)
		return 0;
	b = base_name(token);
	n = strlen(b);
	if (n > 4 && strcasecmp(b + n - 4, ".exe") == 0)
		n -= 4;
	if ((n == 10 && strncasecmp(b, "smartemail", 10) == 0) ||
	    (n == 9 && strncasecmp(b, "mailshift", 9) == 0))
		return 1;
	/* 8.3 short names: SMARTE~1.EXE, MAILSH~2.EXE */
	if (n >= 8 && (strncasecmp(b, "smarte~", 7) == 0 ||
		       strncasecmp(b, "mailsh~", 7) == 0)) {
		size_t i;
		for (i = 7; i < n; i++)
			if (!isdigit((unsigned char)b[i]))
				return 0;
		return 1;
	}
	return 0;
}

static int is_cmd_exe(const char *token)
{
	const char *b = base_name(token);

	return strcasecmp(b, "cmd") == 0 || strcasecmp(b, "cmd.exe") == 0;
}

static int is_chain_token(const char *s)
{
	return s[0] == '&' || s[0] == '|' || s[0] == '>' || s[0] == '<' ||
	       (isdigit((unsigned char)s[0]) && s[1] == '>');
}

/* Find the connector in argv; fill j->exe / j->end. */
static void locate(struct cmdline_job *j, int anywhere)
{
	int i;

	j->exe = -1;
	j->end = j->argc;
	for (i = 0; i < j->argc; i++) {
		if (cmdline_is_connector_exe(j->argv[i])) {
			j->exe = i;
			break;
		}
		if (!anywhere)
			return;
	}
	if (j->exe < 0)
		return;
	for (i = j->exe + 1; i < j->argc; i++) {
		if (is_chain_token(j->argv[i])) {
			j->end = i;
			break;
		}
	}
}

static int split_tail(const char *tail, struct cmdline_job *j,
		      struct ms_err *err)
{
	struct tok *t = NULL;
	int n = 0, rc;

	if (split_raw(tail, 0, &t, &n, err) < 0)
		return -1;
	rc = toks_to_argv(t, 0, n, &j->argv, &j->argc, err);
	toks_free(t, n);
	return rc;
}

int cmdline_job_parse(const char *cmd, struct cmdline_job *j,
		      struct ms_err *err)
{
	struct tok *t = NULL;
	int n = 0, i, rc = -1;
	size_t tail_at = 0;

	memset(j, 0, sizeof(*j));
	j->exe = -1;
	if (!cmd)
		cmd = "";
	if (strlen(cmd) > CMDLINE_MAX)
		return err_set(err, MS_ERR_DATA,
			       "command line is longer than %d characters",
			       CMDLINE_MAX);
	if (split_raw(cmd, 1, &t, &n, err) < 0)
		return -1;
	if (n > 0 && is_cmd_exe(t[0].text)) {
		/* cmd [/s] [/q] [/d] [/e:on] [/v:on] /c|/k command */
		for (i = 1; i < n; i++) {
			if (strcasecmp(t[i].text, "/c") == 0 ||
			    strcasecmp(t[i].text, "/k") == 0 ||
			    strcasecmp(t[i].text, "/r") == 0) {
				tail_at = t[i].end;
				break;
			}
			if (t[i].text[0] != '/')
				break;
		}
		if (tail_at) {
			const char *tail = cmd + tail_at;
			char *stripped = NULL;

			j->via_cmd = 1;
			while (is_blank(*tail))
				tail++;
			if (split_tail(tail, j, err) < 0)
				goto done;
			locate(j, 1);
			if (j->exe < 0 && tail[0] == '"') {
				/* cmd's other rule: drop the first and the
				 * last quote of the command */
				const char *last = strrchr(tail, '"');
				size_t len = (size_t)(last - tail);

				if (!(stripped = malloc(strlen(tail) + 1))) {
					err_nomem(err);
					goto done;
				}
				memcpy(stripped, tail + 1, len ? len - 1 : 0);
				stripped[len ? len - 1 : 0] = '\0';
				if (len > 0)
					strcat(stripped, last + 1);
				cmdline_argv_free(j->argv, j->argc);
				j->argv = NULL;
				j->argc = 0;
				rc = split_tail(stripped, j, err);
				mem_wipe_free(stripped);
				if (rc < 0)
					goto done;
				locate(j, 1);
			}
			rc = 0;
			goto done;
		}
	}
	if (toks_to_argv(t, 0, n, &j->argv, &j->argc, err) < 0)
		goto done;
	locate(j, 0);
	rc = 0;
done:
	toks_free(t, n);
	if (rc < 0)
		cmdline_job_release(j);
	return rc;
}

void cmdline_job_release(struct cmdline_job *j)
{
	if (!j)
		return;
	cmdline_argv_free(j->argv, j->argc);
	j->argv = NULL;
	j->argc = 0;
	j->exe = -1;
}

/* Options. */

int cmdline_has_property(const char *s)
{
	const char *a, *b;

	if (!s || !(a = strstr(s, "[[")))
		return 0;
	b = strstr(a + 2, "]]");
	return b && b > a + 2;
}

int cmdline_has_env_ref(const char *s)
{
	const char *a, *b, *c;

	if (!s)
		return 0;
	for (a = strchr(s, '%'); a; a = strchr(b + 1, '%')) {
		b = strchr(a + 1, '%');
		if (!b)
			return 0;
		if (b == a + 1)
			continue;
		for (c = a + 1; c < b; c++)
			if (!(isalnum((unsigned char)*c) || *c == '_' ||
			      *c == '(' || *c == ')'))
				break;
		if (c == b)
			return 1;
	}
	return 0;
}

int cmdline_is_property(const char *s)
{
	size_t n;

	if (!s)
		return 0;
	n = strlen(s);
	/* "[[NAME]]" and nothing else: the first "]]" is the last one */
	return n > 4 && strncmp(s, "[[", 2) == 0 &&
	       strstr(s + 2, "]]") == s + n - 2;
}

static char *unquoted_dup(const char *v)
{
	size_t n = strlen(v);

	if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
		return ms_strndup(v + 1, n - 2);
	if (n >= 1 && v[0] == '"')
		return strdup(v + 1);
	if (n >= 1 && v[n - 1] == '"')
		return ms_strndup(v, n - 1);
	return strdup(v);
}

static void wipe_free(char **p)
{
	mem_wipe_free(*p);
	*p = NULL;
}

static size_t secret_prefix(const char *text);

/* An argument as an error message may show it: at most 40 bytes, cut
 * after the first -password: or -opconpassword: inside it (a quoting
 * mistake can glue a secret option into another token), "***" marking
 * the cut. */
static void shown_arg(const char *a, char *out, size_t outsz)
{
	size_t i, n = strlen(a), cut = 0;

	for (i = 0; i < n && !cut; i++)
		cut = secret_prefix(a + i) ? i + secret_prefix(a + i) : 0;
	if (cut) {
		if (cut > 40)
			cut = 40;
		snprintf(out, outsz, "%.*s***", (int)cut, a);
	} else {
		snprintf(out, outsz, "%.40s", a);
	}
}

enum optkind { OPT_FLAG, OPT_VALUE };

struct optdef {
	const char *name;   /* without dashes, lowercase */
	int dashes;         /* 1 or 2 */
	enum optkind kind;
	int id;
};

enum {
	O_SERVER, O_PORT, O_USER, O_PASSWORD, O_OPCONUSER, O_OPCONPASSWORD,
	O_INIFILE, O_IMAP, O_POP, O_SSL, O_TLS11, O_TLS12, O_DELETE, O_MSAL,
	O_RENEW, O_SILENT, O_NOSAVE, O_CREDENTIALS, O_HELP, O_VERSION,
	O_DRYRUN, O_VERBOSE, O_OAUTHLOGIN, O_STATE, O_FAILED, O_RETRYFAILED,
	O_CLIENTSECRET
};

static const struct optdef optdefs[] = {
	{ "server", 1, OPT_VALUE, O_SERVER },
	{ "port", 1, OPT_VALUE, O_PORT },
	{ "user", 1, OPT_VALUE, O_USER },
	{ "password", 1, OPT_VALUE, O_PASSWORD },
	{ "opconuser", 1, OPT_VALUE, O_OPCONUSER },
	{ "opconpassword", 1, OPT_VALUE, O_OPCONPASSWORD },
	{ "clientsecret", 1, OPT_VALUE, O_CLIENTSECRET },
	{ "inifile", 1, OPT_VALUE, O_INIFILE },
	{ "imap", 2, OPT_FLAG, O_IMAP },
	{ "pop", 2, OPT_FLAG, O_POP },
	{ "ssl", 2, OPT_FLAG, O_SSL },
	{ "tls1_1", 2, OPT_FLAG, O_TLS11 },
	{ "tls1_2", 2, OPT_FLAG, O_TLS12 },
	{ "delete", 2, OPT_FLAG, O_DELETE },
	{ "msal", 2, OPT_FLAG, O_MSAL },
	{ "renewmsaltoken", 2, OPT_FLAG, O_RENEW },
	{ "renewtokensilent", 2, OPT_FLAG, O_SILENT },
	{ "donotsaveaccount", 2, OPT_FLAG, O_NOSAVE },
	{ "credentials", 2, OPT_FLAG, O_CREDENTIALS },
	{ "help", 2, OPT_FLAG, O_HELP },
	{ "h", 1, OPT_FLAG, O_HELP },
	{ "?", 1, OPT_FLAG, O_HELP },
	{ "version", 2, OPT_FLAG, O_VERSION },
	{ "dry-run", 2, OPT_FLAG, O_DRYRUN },
	{ "verbose", 2, OPT_FLAG, O_VERBOSE },
	{ "oauth-login", 2, OPT_FLAG, O_OAUTHLOGIN },
	{ "state", 2, OPT_VALUE, O_STATE },
	{ "failed", 2, OPT_FLAG, O_FAILED },
	{ "retry-failed", 2, OPT_FLAG, O_RETRYFAILED },
};

static int option_dashes(const char *name)
{
	size_t d;

	for (d = 0; d < sizeof(optdefs) / sizeof(optdefs[0]); d++)
		if (strcmp(optdefs[d].name, name) == 0)
			return optdefs[d].dashes == 1 && optdefs[d].kind == OPT_VALUE ?
			       1 : 2;
	return 2;
}

/* The known option closest to a mistyped one (its name without dashes
 * and value), or NULL. */
static const char *suggest_option(const char *name, size_t nlen)
{
	char typed[64];
	struct suggest s;
	size_t d;

	snprintf(typed, sizeof(typed), "%.*s", (int)(nlen > 63 ? 63 : nlen), name);
	suggest_init(&s, typed);
	for (d = 0; d < sizeof(optdefs) / sizeof(optdefs[0]); d++)
		if (strlen(optdefs[d].name) > 1)
			suggest_consider(&s, optdefs[d].name);
	return suggest_result(&s);
}

static int set_protocol(struct connector_opts *o, enum mail_protocol p,
			struct ms_err *err)
{
	if (o->protocol != PROTO_UNSET && o->protocol != p)
		return err_set(err, MS_ERR_USAGE, "--%s and --%s cannot be used together",
			       o->protocol == PROTO_IMAP ? "imap" :
			       o->protocol == PROTO_POP ? "pop" : "msal",
			       p == PROTO_IMAP ? "imap" : p == PROTO_POP ? "pop" : "msal");
	o->protocol = p;
	return 0;
}

static const char *tls_flag(enum tls_level t)
{
	return t == TLSL_SSL ? "ssl" : t == TLSL_TLS1_1 ? "tls1_1" : "tls1_2";
}

static int set_tls(struct connector_opts *o, enum tls_level t,
		   struct ms_err *err)
{
	if (o->tls != TLSL_UNSET && o->tls != t)
		return err_set(err, MS_ERR_USAGE, "--%s and --%s cannot be used together",
			       tls_flag(o->tls), tls_flag(t));
	o->tls = t;
	return 0;
}

static int parse_port(const char *v, int *port)
{
	long n = 0;
	const char *s;

	if (!*v || strlen(v) > 5)
		return -1;
	for (s = v; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		n = n * 10 + (*s - '0');
	}
	if (n < 1 || n > 65535)
		return -1;
	*port = (int)n;
	return 0;
}

static int set_value(struct connector_opts *o, int id, const char *shown,
		     const char *raw, unsigned flags, struct ms_err *err)
{
	char *v = unquoted_dup(raw), **slot = NULL;

	if (!v)
		return err_nomem(err);
	if (!*v) {
		free(v);
		return err_set(err, MS_ERR_USAGE, "option '%s' requires a value", shown);
	}
	if (cmdline_has_property(v))
		o->has_property = 1;
	switch (id) {
	case O_SERVER: slot = &o->server; break;
	case O_USER: slot = &o->user; break;
	case O_PASSWORD: slot = &o->password; break;
	case O_OPCONUSER: slot = &o->opcon_user; break;
	case O_OPCONPASSWORD: slot = &o->opcon_password; break;
	case O_CLIENTSECRET: slot = &o->client_secret; break;
	case O_INIFILE: slot = &o->inifile; break;
	case O_STATE: slot = &o->state_path; break;
	case O_PORT:
		if (parse_port(v, &o->port) < 0) {
			if (!((flags & CMDLINE_ALLOW_PROPERTIES) &&
			      (cmdline_has_property(v) || cmdline_has_env_ref(v)))) {
				char sa[64];

				shown_arg(v, sa, sizeof(sa));
				err_set(err, MS_ERR_USAGE, "invalid port '%s'", sa);
				free(v);
				return -1;
			}
			o->port = 0;
		}
		slot = &o->port_text;
		break;
	default:
		free(v);
		return err_set(err, MS_ERR_INTERNAL, "bad option id");
	}
	wipe_free(slot);
	*slot = v;
	return 0;
}

static int set_flag(struct connector_opts *o, int id, struct ms_err *err)
{
	switch (id) {
	case O_IMAP: return set_protocol(o, PROTO_IMAP, err);
	case O_POP: return set_protocol(o, PROTO_POP, err);
	case O_MSAL:
		o->msal = 1;
		return set_protocol(o, PROTO_MSAL, err);
	case O_SSL: return set_tls(o, TLSL_SSL, err);
	case O_TLS11: return set_tls(o, TLSL_TLS1_1, err);
	case O_TLS12: return set_tls(o, TLSL_TLS1_2, err);
	case O_DELETE: o->delete_mail = 1; break;
	case O_RENEW: o->renew_msal_token = 1; break;
	case O_SILENT: o->renew_silent = 1; break;
	case O_NOSAVE: o->do_not_save_account = 1; break;
	case O_CREDENTIALS: o->credentials = CRED_STORE; break;
	case O_HELP: o->help = 1; break;
	case O_VERSION: o->version = 1; break;
	case O_DRYRUN: o->dry_run = 1; break;
	case O_VERBOSE: o->verbose++; break;
	case O_OAUTHLOGIN: o->oauth_login = 1; break;
	case O_FAILED: o->list_failed = 1; break;
	case O_RETRYFAILED: o->retry_failed = 1; break;
	}
	return 0;
}

int cmdline_parse_connector_ex(int argc, char **argv, unsigned flags,
			       struct connector_opts *o, struct ms_err *err)
{
	int i;

	memset(o, 0, sizeof(*o));
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *name, *sep;
		char shown[64];
		size_t nlen;
		int dashes, d, found = 0;

		if (!a)
			break;
		/* "/?" is the Windows way to ask for help */
		if (strcmp(a, "/?") == 0) {
			o->help = 1;
			continue;
		}
		if (a[0] != '-' || a[1] == '\0') {
			/* after a secret option it may be the rest of an
			 * unquoted secret: do not echo it */
			if (i > 1 && argv[i - 1] && secret_prefix(argv[i - 1]))
				return err_set(err, MS_ERR_USAGE,
					       "unexpected argument after '%.*s' (quote "
					       "values that contain blanks)",
					       (int)strcspn(argv[i - 1], ":="), argv[i - 1]);
			shown_arg(a, shown, sizeof(shown));
			return err_set(err, MS_ERR_USAGE, "unexpected argument '%s'", shown);
		}
		dashes = a[1] == '-' ? 2 : 1;
		name = a + dashes;
		sep = name + strcspn(name, ":=");
		nlen = (size_t)(sep - name);
		snprintf(shown, sizeof(shown), "%.*s%.*s", dashes, "--",
			 (int)(nlen > 40 ? 40 : nlen), name);
		/* -V is the version, as in the three tools */
		if (dashes == 1 && nlen == 1 && name[0] == 'V' && !*sep) {
			o->version = 1;
			continue;
		}
		/* -v, -vv, -vvv */
		if (dashes == 1 && nlen >= 1 && !*sep &&
		    strspn(name, "vV") == nlen) {
			o->verbose += (int)nlen;
			continue;
		}
		for (d = 0; d < (int)(sizeof(optdefs) / sizeof(optdefs[0])); d++) {
			const struct optdef *od = &optdefs[d];

			if (od->dashes != dashes || strlen(od->name) != nlen ||
			    strncasecmp(od->name, name, nlen) != 0)
				continue;
			found = 1;
			if (od->kind == OPT_FLAG) {
				if (*sep)
					return err_set(err, MS_ERR_USAGE,
						       "option '%s' takes no value", shown);
				if (set_flag(o, od->id, err) < 0)
					return -1;
			} else {
				if (!*sep)
					return err_set(err, MS_ERR_USAGE,
						       "option '%s' requires a value", shown);
				if (set_value(o, od->id, shown, sep + 1, flags, err) < 0)
					return -1;
			}
			break;
		}
		if (!found) {
			const char *near = suggest_option(name, nlen);
			int nd = near ? option_dashes(near) : 0;

			return err_set(err, MS_ERR_USAGE, "unknown option '%s'%s%.*s%s%s",
				       shown, near ? " (did you mean " : "", nd, "--",
				       near ? near : "",
				       near ? (nd == 1 ? ":...?)" : "?)") : "");
		}
	}
	return 0;
}

int cmdline_parse_connector(int argc, char **argv, struct connector_opts *o,
			    struct ms_err *err)
{
	return cmdline_parse_connector_ex(argc, argv, 0, o, err);
}

void cmdline_opts_release(struct connector_opts *o)
{
	if (!o)
		return;
	wipe_free(&o->server);
	wipe_free(&o->port_text);
	wipe_free(&o->user);
	wipe_free(&o->password);
	wipe_free(&o->opcon_user);
	wipe_free(&o->opcon_password);
	wipe_free(&o->client_secret);
	wipe_free(&o->inifile);
	wipe_free(&o->state_path);
	memset(o, 0, sizeof(*o));
}

/* Redaction. */

/* Length of the secret option name the decoded token starts with, 0 if
 * none ("-password:" -> 10). */
/* The options whose values are secrets, redacted everywhere. */
static const char *const secret_options[] = { "-password", "-opconpassword",
					      "-clientsecret" };
#define N_SECRET_OPTIONS (sizeof(secret_options) / sizeof(secret_options[0]))

static size_t secret_prefix(const char *text)
{
	const char *const *names = secret_options;
	size_t i;

	if (text[0] != '-')
		return 0;       /* every secret option starts with one */
	for (i = 0; i < N_SECRET_OPTIONS; i++) {
		size_t n = strlen(names[i]);
		if (strncasecmp(text, names[i], n) == 0 &&
		    (text[n] == ':' || text[n] == '='))
			return n + 1;
	}
	return 0;
}

static int value_is_property(const char *v)
{
	char *u = unquoted_dup(v);
	int r;

	if (!u)
		return 0;
	r = cmdline_is_property(u);
	free(u);
	return r;
}

/* Second pass over the text: options inside one quoted token (the
 * command of "cmd /c \"...\"") are not tokens of their own. */
static char *redact_scan(char *s)
{
	struct ms_err err = MS_ERR_INIT;
	struct buf b;
	size_t i = 0, len, k;

	if (!s)
		return NULL;
	len = strlen(s);
	buf_init(&b, len * 2 + 64);
	while (i < len) {
		size_t n = 0, vs, ve, at = i;
		const char *dash;
		char *val;
		int prop;

		/* the next secret option starting a word (each starts with a
		 * '-'), the bytes before it copied as they are */
		while ((dash = memchr(s + at, '-', len - at))) {
			at = (size_t)(dash - s);
			if ((at == 0 || is_blank(s[at - 1]) || s[at - 1] == '"') &&
			    (n = secret_prefix(s + at)))
				break;
			at++;
		}
		if (!n)
			at = len;
		if (at > i && buf_append(&b, s + i, at - i, &err) < 0)
			goto fail;
		if (!n)
			break;
		i = at;
		vs = i + n;
		if (s[vs] == '"') {
			const char *q = strchr(s + vs + 1, '"');
			ve = q ? (size_t)(q - s) + 1 : len;
		} else {
			ve = vs;
			while (ve < len && !is_blank(s[ve]) && s[ve] != '"')
				ve++;
		}
		/* A quoted value that swallows another secret option (quotes
		 * that pair up otherwise than assumed here) ends before it, so
		 * that option's own value is redacted in the next round. */
		for (k = vs + 1; k < ve; k++)
			if ((is_blank(s[k - 1]) || s[k - 1] == '"') &&
			    secret_prefix(s + k)) {
				ve = k;
				break;
			}
		if (!(val = ms_strndup(s + vs, ve - vs)))
			goto fail;
		prop = value_is_property(val) || strcmp(val, "***") == 0 ||
		       strcmp(val, "***\"") == 0;
		mem_wipe_free(val);
		if (buf_append(&b, s + i, n, &err) < 0 ||
		    (prop ? buf_append(&b, s + vs, ve - vs, &err) :
			    buf_appends(&b, "***", &err)) < 0)
			goto fail;
		i = ve;
	}
	mem_wipe(s, len);
	free(s);
	if (!b.data)
		return strdup("");
	return buf_detach(&b, NULL);
fail:
	mem_wipe(s, len);
	free(s);
	buf_wipe(&b);
	return NULL;
}

char *cmdline_redact(const char *cmd)
{
	struct ms_err err = MS_ERR_INIT;
	struct tok *t = NULL;
	struct buf b;
	size_t pos = 0;
	int n = 0, i;

	if (!cmd)
		cmd = "";
	if (split_raw(cmd, 1, &t, &n, &err) < 0)
		return NULL;
	buf_init(&b, strlen(cmd) * 2 + 64);
	for (i = 0; i < n; i++) {
		size_t p = secret_prefix(t[i].text), s, colon;
		int q = 0;

		if (!p || value_is_property(t[i].text + p))
			continue;
		/* find the separator in the raw text */
		for (colon = t[i].start; colon < t[i].end; colon++) {
			if (cmd[colon] == '"')
				q = !q;
			if (cmd[colon] == ':' || cmd[colon] == '=')
				break;
		}
		if (colon >= t[i].end)
			continue;
		s = colon + 1;
		if (buf_append(&b, cmd + pos, s - pos, &err) < 0 ||
		    buf_appends(&b, q ? "***\"" : "***", &err) < 0)
			goto fail;
		pos = t[i].end;
	}
	if (buf_appends(&b, cmd + pos, &err) < 0)
		goto fail;
	toks_free(t, n);
	return redact_scan(b.data ? buf_detach(&b, NULL) : strdup(""));
fail:
	toks_free(t, n);
	buf_wipe(&b);
	return NULL;
}

static int append_quoted(struct buf *b, const char *s, struct ms_err *err)
{
	const char *p;

	if (*s && !strpbrk(s, " \t\"")) {
		return buf_appends(b, s, err);
	}
	if (buf_appends(b, "\"", err) < 0)
		return -1;
	for (p = s; *p; p++) {
		size_t nb = 0;
		while (p[nb] == '\\')
			nb++;
		if (nb) {
			/* backslashes before a quote or the end get doubled */
			size_t m, times = (p[nb] == '"' || p[nb] == '\0') ? 2 : 1;
			for (m = 0; m < nb * times; m++)
				if (buf_append(b, "\\", 1, err) < 0)
					return -1;
			p += nb - 1;
			continue;
		}
		if (*p == '"' && buf_appends(b, "\\", err) < 0)
			return -1;
		if (buf_append(b, p, 1, err) < 0)
			return -1;
	}
	return buf_appends(b, "\"", err);
}

char *cmdline_render_redacted(char **argv, int from, int to)
{
	struct ms_err err = MS_ERR_INIT;
	struct buf b;
	int i;

	buf_init(&b, BUF_DEFAULT_CAP);
	for (i = from; i < to; i++) {
		size_t p = secret_prefix(argv[i]);

		if (i > from && buf_appends(&b, " ", &err) < 0)
			goto fail;
		if (p && !value_is_property(argv[i] + p)) {
			if (buf_appendf(&b, &err, "%.*s***", (int)p, argv[i]) < 0)
				goto fail;
			continue;
		}
		if (append_quoted(&b, argv[i], &err) < 0)
			goto fail;
	}
	if (!b.data)
		return strdup("");
	return buf_detach(&b, NULL);
fail:
	buf_wipe(&b);
	return NULL;
}
