/*
 * fuzz_cmdline.c - the Windows command line splitter, the job command line
 * parser, the connector's option parser and the redaction of secrets.
 *
 * Input: byte 0 picks how a canary password is written, byte 1 how many
 * of the following bytes (at most 16) extend the canary; the rest is cut
 * at the first '\n' into a prefix and a suffix.  The harness builds
 *     PREFIX -password:CANARY SUFFIX   (or one of the variants below)
 * and checks, whatever the prefix and suffix hold:
 *   - cmdline_redact() of it does not contain the canary;
 *   - cmdline_render_redacted() of the split argv does not contain it
 *     when the option is a token of its own;
 *   - no error message of the parsers contains it;
 *   - the splitter and job parser keep their invariants (argv[argc] is
 *     NULL, exe < end <= argc).
 * A leak counts only when it repeats with a second canary ("Jy..."): text
 * of the prefix that decodes to the canary (quotes inside it) is not one.
 * The raw input is run through every function too (no canary check).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ini/cmdline.h"
#include "base/err.h"

static const char *const forms[] = {
	" -password:%s ",
	" -password:\"%s\" ",
	" \"-password:%s\" ",
	" -password=%s ",
	" -opconpassword:%s ",
	" -PassWord:\"%s\" ",
	" \"-opconpassword:%s\" ",
	" -OPCONPASSWORD=\"%s\" ",
};

/* Does the token start with -password: or -opconpassword: (or '=')? */
static int secret_token(const char *a)
{
	if (!strncasecmp(a, "-password", 9))
		return a[9] == ':' || a[9] == '=';
	if (!strncasecmp(a, "-opconpassword", 14))
		return a[14] == ':' || a[14] == '=';
	return 0;
}

static void die(const char *what, const char *cmd, const char *text)
{
	fprintf(stderr, "%s\ncommand line: [%s]\noutput: [%s]\n", what, cmd,
		text ? text : "(null)");
	abort();
}

/* A leak of the canary: remembered, and judged by the caller (the same
 * leak with a second canary proves the value itself flows out, not text
 * of the prefix that happens to decode to the canary). */
static const char *leak_what;
static char leak_text[8192];

static void leak(const char *what, const char *text)
{
	if (leak_what)
		return;
	leak_what = what;
	snprintf(leak_text, sizeof(leak_text), "%s", text);
}

/* Run every parser over cmd; when canary is not NULL, it must not leak. */
static void exercise(const char *cmd, const char *canary)
{
	struct ms_err err = MS_ERR_INIT;
	struct cmdline_job j;
	struct connector_opts o;
	char **argv = NULL, *red;
	int argc = 0, i, own_token = 0, rc;
	size_t len = strlen(cmd);

	red = cmdline_redact(cmd);
	if (!red)
		die("cmdline_redact returned NULL", cmd, NULL);
	if (canary && strstr(red, canary))
		leak("cmdline_redact left the password in", red);
	free(red);

	if (cmdline_split_windows(cmd, &argv, &argc, &err) == 0) {
		if (argc < 0 || argv == NULL || argv[argc] != NULL)
			die("argv is not NULL-terminated", cmd, NULL);
		for (i = 0; i < argc; i++) {
			if (!argv[i])
				die("argv has a NULL entry", cmd, NULL);
			(void)cmdline_is_connector_exe(argv[i]);
			(void)cmdline_has_property(argv[i]);
			(void)cmdline_has_env_ref(argv[i]);
			(void)cmdline_is_property(argv[i]);
			if (canary && strstr(argv[i], canary) &&
			    secret_token(argv[i]))
				own_token = 1;
		}
		red = cmdline_render_redacted(argv, 0, argc);
		if (!red)
			die("cmdline_render_redacted returned NULL", cmd, NULL);
		/* Only tokens that start with the option are redacted; one
		 * inside a bigger quoted token is text of that token. */
		if (canary && own_token && strstr(red, canary)) {
			int other = 0;
			for (i = 0; i < argc; i++)
				if (strstr(argv[i], canary) &&
				    !secret_token(argv[i]))
					other = 1;
			if (!other)
				leak("cmdline_render_redacted left the password in",
				     red);
		}
		free(red);
		for (i = 0; i < 2; i++) {
			err_clear(&err);
			rc = cmdline_parse_connector_ex(argc, argv,
							i ? CMDLINE_ALLOW_PROPERTIES : 0,
							&o, &err);
			if (canary && rc != 0 && strstr(err.msg, canary))
				leak("option parser error shows the password",
				     err.msg);
			cmdline_opts_release(&o);
		}
		cmdline_argv_free(argv, argc);
	} else if (len <= CMDLINE_MAX) {
		die("split failed on a short command line", cmd, err.msg);
	}

	err_clear(&err);
	if (cmdline_job_parse(cmd, &j, &err) == 0) {
		if (j.argc < 0 || (j.argc > 0 && !j.argv) ||
		    (j.argv && j.argv[j.argc] != NULL))
			die("job argv is not NULL-terminated", cmd, NULL);
		if (j.exe >= 0) {
			if (j.exe >= j.argc || j.end <= j.exe || j.end > j.argc)
				die("job exe/end out of range", cmd, NULL);
			for (i = 0; i < 2; i++) {
				err_clear(&err);
				rc = cmdline_parse_connector_ex(j.end - j.exe,
								j.argv + j.exe,
								i ? CMDLINE_ALLOW_PROPERTIES : 0,
								&o, &err);
				if (canary && rc != 0 && strstr(err.msg, canary))
					leak("option parser error shows the password",
					     err.msg);
				cmdline_opts_release(&o);
			}
			red = cmdline_render_redacted(j.argv, j.exe, j.end);
			if (!red)
				die("render_redacted returned NULL", cmd, NULL);
			free(red);
		}
		cmdline_job_release(&j);
	} else if (len <= CMDLINE_MAX) {
		die("job parse failed on a short command line", cmd, err.msg);
	} else if (canary && strstr(err.msg, canary)) {
		leak("job parse error shows the password", err.msg);
	}
}

/* prefix + form(canary) + suffix, malloc'd. */
static char *build(const char *prefix, const char *form, const char *canary,
		   const char *suffix)
{
	size_t n = strlen(prefix) + strlen(form) + strlen(canary) +
		   strlen(suffix) + 1;
	char *cmd = malloc(n);

	if (!cmd)
		return NULL;
	snprintf(cmd, n, "%s", prefix);
	snprintf(cmd + strlen(cmd), n - strlen(cmd), form, canary);
	strcat(cmd, suffix);
	return cmd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char canary[32], canary2[32], *raw, *cmd, *nl;
	const char *prefix, *suffix, *form, *what;
	size_t n, i, k, rest;

	if (size > 8192)
		return 0;
	/* The raw input as a command line (up to its first NUL). */
	if (!(raw = malloc(size + 1)))
		return 0;
	memcpy(raw, data, size);
	raw[size] = '\0';
	leak_what = NULL;
	exercise(raw, NULL);
	free(raw);

	if (size < 2)
		return 0;
	form = forms[data[0] % (sizeof(forms) / sizeof(forms[0]))];
	k = data[1] % 17;
	data += 2;
	size -= 2;
	/* Canary: "Kz" and up to 16 input bytes that can be part of one
	 * unquoted-or-quoted value (no blank, quote, bracket, control). */
	n = 0;
	canary[n++] = 'K';
	canary[n++] = 'z';
	for (i = 0; i < size && i < k; i++)
		if (data[i] > 0x20 && data[i] < 0x7f && data[i] != '"' &&
		    data[i] != '[' && data[i] != ']')
			canary[n++] = (char)data[i];
	canary[n] = '\0';
	memcpy(canary2, canary, n + 1);
	canary2[0] = 'J';
	canary2[1] = 'y';
	data += i;
	size -= i;

	rest = size;
	if (!(raw = malloc(rest + 1)))
		return 0;
	memcpy(raw, data, rest);
	raw[rest] = '\0';
	prefix = raw;
	suffix = "";
	if ((nl = strchr(raw, '\n'))) {
		*nl = '\0';
		suffix = nl + 1;
	}
	/* The canary must appear only where the harness puts it. */
	if (strstr(prefix, canary) || strstr(suffix, canary) ||
	    strstr(prefix, canary2) || strstr(suffix, canary2)) {
		free(raw);
		return 0;
	}
	if (!(cmd = build(prefix, form, canary, suffix))) {
		free(raw);
		return 0;
	}
	leak_what = NULL;
	exercise(cmd, canary);
	if ((what = leak_what)) {
		char *cmd2 = build(prefix, form, canary2, suffix);

		leak_what = NULL;
		if (cmd2)
			exercise(cmd2, canary2);
		if (leak_what && !strcmp(leak_what, what))
			die(what, cmd2, leak_text);
		free(cmd2);
	}
	free(cmd);
	free(raw);
	return 0;
}
