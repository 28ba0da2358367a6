/* test_cmdline.c - Windows splitting, finding the connector, its options,
 * redaction. */
#include <stdlib.h>
#include <string.h>

#include <getopt.h>

#include "ini/cmdline.h"
#include "base/suggest.h"
#include "tap.h"

/* Split and join with '|' for compact comparisons. */
static char *split_join(const char *cmd)
{
	static char out[8192];
	struct ms_err err = MS_ERR_INIT;
	char **argv;
	int argc, i;

	if (cmdline_split_windows(cmd, &argv, &argc, &err) < 0) {
		snprintf(out, sizeof(out), "ERROR: %s", err.msg);
		return out;
	}
	out[0] = '\0';
	for (i = 0; i < argc; i++) {
		if (i)
			strcat(out, "|");
		strcat(out, argv[i]);
	}
	if (argv[argc] != NULL)
		strcat(out, "!NOT-NULL-TERMINATED");
	cmdline_argv_free(argv, argc);
	return out;
}

static void test_split(void)
{
	char *big;
	struct ms_err err = MS_ERR_INIT;
	char **argv;
	int argc;

	is(split_join("a b  c"), "a|b|c", "blanks separate");
	is(split_join("  "), "", "empty line: no arguments");
	is(split_join("prog \"a b\" c"), "prog|a b|c", "quoted argument");
	is(split_join("prog a\"b c\"d"), "prog|ab cd", "quotes inside an argument");
	is(split_join("prog a\\\\b"), "prog|a\\\\b", "backslashes not before a quote are literal");
	is(split_join("prog a\\\"b"), "prog|a\"b", "odd backslash escapes a quote");
	is(split_join("prog a\\\\\"b c\""), "prog|a\\b c", "even backslashes: half, quote toggles");
	is(split_join("prog a\\\\\\\"b"), "prog|a\\\"b", "2n+1 backslashes: n and a literal quote");
	is(split_join("prog \"\" x"), "prog||x", "empty quoted argument");
	is(split_join("prog \"a\"\"b\""), "prog|a\"b", "\"\" inside quotes is a quote");
	is(split_join("\"C:\\Program Files\\x\\SMArtEmail.exe\" -inifile:\"D:\\a b\\c.ini\""),
	   "C:\\Program Files\\x\\SMArtEmail.exe|-inifile:D:\\a b\\c.ini",
	   "program name and a quoted option value");
	is(split_join("C:\\dir\\\"x y\" z"), "C:\\dir\\x y|z",
	   "program name: backslashes literal, quotes toggle");
	is(split_join("prog \"C:\\dir\\\\\""), "prog|C:\\dir\\",
	   "quoted path ending in a backslash (escaped)");
	is(split_join("prog\t-a\r\n-b"), "prog|-a|-b", "tabs and line ends are blanks");

	big = malloc(CMDLINE_MAX + 2);
	memset(big, 'x', CMDLINE_MAX + 1);
	big[CMDLINE_MAX + 1] = '\0';
	ok(cmdline_split_windows(big, &argv, &argc, &err) < 0 &&
	   err.code == MS_ERR_DATA && strstr(err.msg, "4000"),
	   "a command line over 4,000 characters is refused: %s", err.msg);
	big[CMDLINE_MAX] = '\0';
	err_clear(&err);
	ok(cmdline_split_windows(big, &argv, &argc, &err) == 0 && argc == 1,
	   "exactly 4,000 characters is fine");
	cmdline_argv_free(argv, argc);
	free(big);
}

static void test_exe(void)
{
	ok(cmdline_is_connector_exe("smartemail.exe"), "smartemail.exe");
	ok(cmdline_is_connector_exe("SMArtEmail.EXE"), "SMArtEmail.EXE");
	ok(cmdline_is_connector_exe("C:\\Program Files\\OpConxps\\SMArt Email\\SMArtEmail.exe"),
	   "full path");
	ok(cmdline_is_connector_exe("smartemail"), "without extension");
	ok(cmdline_is_connector_exe("C:\\PROGRA~1\\OPCONX~1\\SMARTE~1.EXE"), "8.3 short name");
	ok(cmdline_is_connector_exe("D:/tools/mailshift"), "mailshift, forward slashes");
	ok(cmdline_is_connector_exe("mailshift.exe"), "mailshift.exe");
	ok(!cmdline_is_connector_exe("smartemail.ini"), "not an INI file");
	ok(!cmdline_is_connector_exe("notsmartemail.exe"), "not a longer name");
	ok(!cmdline_is_connector_exe("SMARTE~X.EXE"), "not a broken short name");
	ok(!cmdline_is_connector_exe("cmd.exe"), "not cmd");
}

static void test_job(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct cmdline_job j;

	ok(cmdline_job_parse("\"C:\\Program Files\\OpConxps\\SMArt Email\\SMArtEmail.exe\" --imap",
			     &j, &err) == 0 && j.exe == 0 && j.end == 2 && !j.via_cmd,
	   "direct: the connector is argv[0]");
	cmdline_job_release(&j);

	ok(cmdline_job_parse("notepad.exe smartemail.exe", &j, &err) == 0 && j.exe == -1,
	   "a program that merely names the connector is not a connector job");
	cmdline_job_release(&j);

	ok(cmdline_job_parse("cmd /c \"C:\\PROGRA~1\\X\\SMARTE~1.EXE\" -inifile:\"D:\\a b.ini\" --pop",
			     &j, &err) == 0 && j.via_cmd && j.exe == 0 && j.argc == 3 &&
	   strcmp(j.argv[1], "-inifile:D:\\a b.ini") == 0,
	   "cmd /c with a quoted 8.3 path");
	cmdline_job_release(&j);

	ok(cmdline_job_parse("C:\\Windows\\System32\\cmd.exe /S /C \"\"C:\\Program Files\\x\\SMArtEmail.exe\" -inifile:\"D:\\a b.ini\"\"",
			     &j, &err) == 0 && j.via_cmd && j.exe == 0 && j.argc == 2 &&
	   strcmp(j.argv[0], "C:\\Program Files\\x\\SMArtEmail.exe") == 0 &&
	   strcmp(j.argv[1], "-inifile:D:\\a b.ini") == 0,
	   "cmd.exe /S /C \"\"...\" ...\": outer quotes stripped");
	cmdline_job_release(&j);

	ok(cmdline_job_parse("cmd /c cd /d D:\\jobs && smartemail.exe -inifile:a.ini > out.log 2>&1",
			     &j, &err) == 0 && j.exe == 4 && j.end == 6,
	   "cmd chain: connector after cd &&, options end at >");
	cmdline_job_release(&j);

	ok(cmdline_job_parse("cmd /c del /q x", &j, &err) == 0 && j.exe == -1 && j.via_cmd,
	   "cmd /c without the connector");
	cmdline_job_release(&j);

	ok(cmdline_job_parse(NULL, &j, &err) == 0 && j.exe == -1 && j.argc == 0,
	   "no command line");
	cmdline_job_release(&j);
}

#define PARSE(...) do { \
	char *av_[] = { "smartemail", __VA_ARGS__, NULL }; \
	err_clear(&err); \
	cmdline_opts_release(&o); \
	rc = cmdline_parse_connector((int)(sizeof(av_) / sizeof(av_[0])) - 1, av_, &o, &err); \
} while (0)

#define PARSE_EX(fl, ...) do { \
	char *av_[] = { "smartemail", __VA_ARGS__, NULL }; \
	err_clear(&err); \
	cmdline_opts_release(&o); \
	rc = cmdline_parse_connector_ex((int)(sizeof(av_) / sizeof(av_[0])) - 1, av_, fl, &o, &err); \
} while (0)

static void test_options(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct connector_opts o;
	int rc;

	memset(&o, 0, sizeof(o));
	PARSE("-SERVER:imap.example.com", "-Port:993", "--IMAP", "--Tls1_2", "--delete");
	ok(rc == 0 && strcmp(o.server, "imap.example.com") == 0 && o.port == 993 &&
	   o.protocol == PROTO_IMAP && o.tls == TLSL_TLS1_2 && o.delete_mail,
	   "options are case-insensitive");
	PARSE("--msal", "--renewMsalToken", "--RENEWTOKENSILENT", "--doNotSaveAccount");
	ok(rc == 0 && o.msal && o.protocol == PROTO_MSAL && o.renew_msal_token &&
	   o.renew_silent && o.do_not_save_account, "MSAL flags");
	PARSE("--credentials", "-user:u@x", "-password:s3cret", "-opconuser:ops",
	      "-opconpassword:pw2", "-inifile:C:\\a b\\c.ini");
	ok(rc == 0 && o.credentials == CRED_STORE && strcmp(o.user, "u@x") == 0 &&
	   strcmp(o.password, "s3cret") == 0 && strcmp(o.opcon_user, "ops") == 0 &&
	   strcmp(o.opcon_password, "pw2") == 0 && strcmp(o.inifile, "C:\\a b\\c.ini") == 0,
	   "--credentials and its values");
	PARSE("-inifile:\"C:\\x y.ini\"");
	is(o.inifile, "C:\\x y.ini", "literal quotes around a value are removed");
	PARSE("-inifile=D:\\y.ini");
	is(o.inifile, "D:\\y.ini", "'=' works as a separator too");
	PARSE("-v", "-vv", "--verbose", "--dry-run", "--oauth-login", "--state:/var/x.db",
	      "--help", "--version");
	ok(rc == 0 && o.verbose == 4 && o.dry_run && o.oauth_login && o.help && o.version &&
	   strcmp(o.state_path, "/var/x.db") == 0, "our options");

	PARSE("--foo");
	ok(rc < 0 && err.code == MS_ERR_USAGE && strcmp(err.msg, "unknown option '--foo'") == 0,
	   "unknown option: %s", err.msg);
	PARSE("--dryrun");
	is(err.msg, "unknown option '--dryrun' (did you mean --dry-run?)",
	   "a mistyped option names the closest one");
	PARSE("-inifle:x.ini");
	is(err.msg, "unknown option '-inifle' (did you mean -inifile:...?)",
	   "a mistyped value option is suggested with its ':'");
	PARSE("--fleet");
	is(err.msg, "unknown option '--fleet'", "nothing close: no suggestion");
	PARSE("-V");
	ok(rc == 0 && o.version && o.verbose == 0, "-V is the version, as in the tools");
	PARSE("-v");
	ok(rc == 0 && !o.version && o.verbose == 1, "-v is still verbose");
	PARSE("-pasword:hunter2");
	ok(rc < 0 && err.code == MS_ERR_USAGE && strstr(err.msg, "-pasword") &&
	   !strstr(err.msg, "hunter2"), "a mistyped secret option never shows its value: %s",
	   err.msg);
	PARSE("--imap", "--pop");
	ok(rc < 0 && err.code == MS_ERR_USAGE && strstr(err.msg, "--imap and --pop"),
	   "--imap with --pop: %s", err.msg);
	PARSE("--ssl", "--tls1_2");
	ok(rc < 0 && err.code == MS_ERR_USAGE, "two TLS levels: %s", err.msg);
	PARSE("-server");
	ok(rc < 0 && strcmp(err.msg, "option '-server' requires a value") == 0,
	   "missing value: %s", err.msg);
	PARSE("-server:");
	ok(rc < 0 && strstr(err.msg, "requires a value"), "empty value: %s", err.msg);
	PARSE("-password:\"\"");
	ok(rc < 0 && strstr(err.msg, "requires a value"), "empty quoted value: %s", err.msg);
	PARSE("--imap:yes");
	ok(rc < 0 && strstr(err.msg, "takes no value"), "flag with a value: %s", err.msg);
	PARSE("-port:0");
	ok(rc < 0 && strstr(err.msg, "invalid port '0'"), "port 0: %s", err.msg);
	PARSE("-port:65536");
	ok(rc < 0 && strstr(err.msg, "invalid port"), "port 65536: %s", err.msg);
	PARSE("-port:99x");
	ok(rc < 0 && strstr(err.msg, "invalid port"), "port not a number: %s", err.msg);
	PARSE("-port:65535");
	ok(rc == 0 && o.port == 65535, "port 65535");
	PARSE("stray");
	ok(rc < 0 && strstr(err.msg, "unexpected argument 'stray'"), "positional: %s", err.msg);
	PARSE("-password:two", "words");
	ok(rc < 0 && strstr(err.msg, "after '-password'") && !strstr(err.msg, "words") &&
	   !strstr(err.msg, "two"), "the rest of an unquoted password is not echoed: %s", err.msg);
	/* fuzz_cmdline: a quoting mistake glues a secret into another token */
	PARSE("x -password:hunter2");
	ok(rc < 0 && strstr(err.msg, "unexpected argument 'x -password:***'") &&
	   !strstr(err.msg, "hunter2"), "a glued password is not echoed: %s", err.msg);
	PARSE("-port:\"1 -opconpassword:hunter2\"");
	ok(rc < 0 && !strstr(err.msg, "hunter2"), "nor in an invalid port: %s", err.msg);
	PARSE("-port:[[MAILPORT]]");
	ok(rc < 0, "a property port is refused by the connector");
	PARSE_EX(CMDLINE_ALLOW_PROPERTIES, "-port:[[MAILPORT]]", "-server:[[HOST]]");
	ok(rc == 0 && o.port == 0 && strcmp(o.port_text, "[[MAILPORT]]") == 0 &&
	   o.has_property, "the audit accepts property values");
	PARSE("/?");
	ok(rc == 0 && o.help, "/? asks for help");
	cmdline_opts_release(&o);
	ok(o.password == NULL && o.server == NULL, "release clears the struct");
}

static void test_properties(void)
{
	ok(cmdline_is_property("[[PW]]"), "[[PW]] is a property");
	ok(!cmdline_is_property("[[A]]x[[B]]"), "two properties are not one");
	ok(!cmdline_is_property("x[[PW]]"), "prefix text");
	ok(!cmdline_is_property("[[]]"), "empty name");
	ok(cmdline_has_property("C:\\[[DIR]]\\x.ini"), "contains a property");
	ok(!cmdline_has_property("C:\\[[x.ini"), "unterminated is not a property");
	ok(cmdline_has_env_ref("%PROGRAMDATA%\\x"), "environment reference");
	ok(!cmdline_has_env_ref("100% sure"), "a lone percent sign");
	ok(!cmdline_has_env_ref("50%% off"), "%% is not a reference");
}

static void test_redact(void)
{
	char *s;

	s = cmdline_redact("smartemail.exe --credentials -user:a@b -password:hunter2 -opconpassword:\"x y\" -inifile:c.ini");
	is(s, "smartemail.exe --credentials -user:a@b -password:*** -opconpassword:*** -inifile:c.ini",
	   "secrets redacted, the rest kept");
	free(s);
	s = cmdline_redact("mailshift --credentials -clientsecret:s3cr3t~x -inifile:c.ini");
	is(s, "mailshift --credentials -clientsecret:*** -inifile:c.ini",
	   "-clientsecret: is a secret too");
	free(s);
	s = cmdline_redact("smartemail.exe \"-Password:a b c\" --imap");
	is(s, "smartemail.exe \"-Password:***\" --imap", "a fully quoted option keeps its quotes");
	free(s);
	s = cmdline_redact("smartemail.exe -password:[[MAIL_PW]] -opconpassword:\"[[OPCON_PW]]\"");
	is(s, "smartemail.exe -password:[[MAIL_PW]] -opconpassword:\"[[OPCON_PW]]\"",
	   "property references are not secrets");
	free(s);
	s = cmdline_redact("smartemail.exe -password:pre[[X]]post");
	is(s, "smartemail.exe -password:***", "a value that only contains a property is a secret");
	free(s);
	s = cmdline_redact("cmd /c \"smartemail.exe -password:abc\"");
	is(s, "cmd /c \"smartemail.exe -password:***\"", "inside cmd /c quotes");
	free(s);
	s = cmdline_redact("cmd /c \"smartemail.exe -password:\"a b\" -opconpassword:[[P]] --imap\"");
	is(s, "cmd /c \"smartemail.exe -password:*** -opconpassword:[[P]] --imap\"",
	   "quoted value inside cmd /c quotes");
	free(s);
	s = cmdline_redact("");
	is(s, "", "empty");
	free(s);
	/* fuzz_cmdline: a quoted value that swallows the next secret option */
	s = cmdline_redact("t.exe\"  c\"-PASSWORD=\"a -password:\"hunter2\" ");
	ok(s && !strstr(s, "hunter2"), "a swallowed secret option is redacted too: %s", s);
	free(s);
	{
		char *argv[] = { "C:\\Program Files\\x\\smartemail.exe", "-password:abc",
				 "-inifile:C:\\a b.ini", "-opconpassword:[[P]]", "x\"y", "end\\" };
		s = cmdline_render_redacted(argv, 0, 6);
		is(s, "\"C:\\Program Files\\x\\smartemail.exe\" -password:*** \"-inifile:C:\\a b.ini\" "
		   "-opconpassword:[[P]] \"x\\\"y\" end\\", "render argv, quoted where needed");
		free(s);
	}
}

/* The one "did you mean" of INI keys and every program's options. */
static void test_suggest(void)
{
	static const struct option lo[] = {
		{ "fleet", required_argument, NULL, 'f' },
		{ "format", required_argument, NULL, 'F' },
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 }
	};
	static const char *const names[] = { "AuthMethod", "Server", NULL };
	struct suggest s;
	char msg[256];

	ok(suggest_distance("flet", "fleet") == 1 && suggest_distance("ab", "ba") == 1 &&
	   suggest_distance("SERVER", "server") == 0, "distance: case-insensitive, swaps");
	suggest_init(&s, "AuthMethd");
	suggest_consider_list(&s, names);
	is(suggest_result(&s), "AuthMethod", "the closest name");
	suggest_init(&s, "Zzzzzz");
	suggest_consider_list(&s, names);
	ok(suggest_result(&s) == NULL, "nothing close enough: NULL");
	is(config_suggest("Mail", "AuthMethd"), "AuthMethod", "config_suggest uses it");

#define GETOPT_ERR(...) do { \
	char *av_[] = { "mailshift-audit", __VA_ARGS__, NULL }; \
	int c_; \
	optind = 0; \
	opterr = 0; \
	while ((c_ = getopt_long((int)(sizeof(av_) / sizeof(av_[0])) - 1, av_, \
				 "f:F:qhV", lo, NULL)) != -1 && c_ != '?') \
		; \
	suggest_getopt_error(av_, "f:F:qhV", lo, msg, sizeof(msg)); \
} while (0)
	GETOPT_ERR("--flet", "x");
	is(msg, "unknown option '--flet' (did you mean --fleet?)", "getopt: did you mean");
	GETOPT_ERR("--fleet");
	is(msg, "option '--fleet' requires a value", "getopt: missing value");
	GETOPT_ERR("--quiet=1");
	is(msg, "option '--quiet' takes no value", "getopt: value for a flag");
	GETOPT_ERR("-f");
	is(msg, "option '-f' requires a value", "getopt: short option without value");
	GETOPT_ERR("-Z");
	is(msg, "unknown option '-Z'", "getopt: unknown short option");
	GETOPT_ERR("--zebra");
	is(msg, "unknown option '--zebra'", "getopt: nothing close");
#undef GETOPT_ERR
}

int main(void)
{
	test_split();
	test_exe();
	test_job();
	test_options();
	test_properties();
	test_redact();
	test_suggest();
	return done_testing();
}
