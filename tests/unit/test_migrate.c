/*
 * test_migrate.c - the pure parts of mailshift-migrate: mapping file, INI
 * rewrite (golden files, losslessness on every sample INI), command-line
 * and export rewriting, diffs.  Run from the repository root.
 * MIGRATE_GOLDEN_UPDATE=1 rewrites tests/golden/migrate/ instead of
 * comparing (review the diff before committing it).
 */
#include <ctype.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include "audit/analysis.h"
#include "base/digest.h"
#include "base/buf.h"
#include "ini/config.h"
#include "audit/fleet.h"
#include "base/fsutil.h"
#include "base/platform.h"
#include "ini/ini.h"
#include "migrate/migrate.h"
#include "migrate/migrate_int.h"
#include "auth/seal.h"
#include "tap.h"

#define GOLDEN "tests/golden/migrate"

static const char map_json[] =
	"{\"transport\": \"imap\", \"connector\": \"C:\\\\mailshift\\\\mailshift.exe\","
	" \"tenants\": ["
	"  {\"domains\": [\"contoso.com\"], \"tenantId\": \"t-contoso\","
	"   \"clientId\": \"c-1\", \"clientSecret\": \"env:CONTOSO\"},"
	"  {\"domains\": [\"fabrikam.com\"], \"tenantId\": \"t-fab\","
	"   \"clientId\": \"c-2\", \"certificateFile\": \"C:\\\\certs\\\\fab.pem\","
	"   \"authority\": \"https://login.microsoftonline.us\"},"
	"  {\"domains\": [\"northwind.com\"], \"tenantId\": \"t-nw\","
	"   \"clientId\": \"c-3\", \"clientSecret\": \"literal-secret\"}"
	"]}";

static void test_map(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct migrate_map *m = NULL;
	struct migrate_tenant_view t;
	static const char *const bad[] = {
		"[]",
		"{\"tenants\": []}",
		"{\"transport\": \"smtp\", \"tenants\": [{\"domains\": [\"a.com\"],"
		" \"tenantId\": \"t\", \"clientId\": \"c\", \"clientSecret\": \"s\"}]}",
		"{\"tenants\": [{\"domains\": [\"a.com\"], \"tenantId\": \"t\","
		" \"clientId\": \"c\"}]}",
		"{\"tenants\": [{\"domains\": [\"a.com\"], \"tenantId\": \"t\","
		" \"clientId\": \"c\", \"clientSecret\": \"s\", \"certificateFile\": \"x\"}]}",
		"{\"tenants\": [{\"domains\": [\"a@b.com\"], \"tenantId\": \"t\","
		" \"clientId\": \"c\", \"clientSecret\": \"s\"}]}",
		"{\"tenants\": [{\"domains\": [\"a.com\"], \"clientId\": \"c\","
		" \"clientSecret\": \"s\"}]}",
		NULL
	};
	int i;

	ok(migrate_map_parse(&m, "map.json", map_json, strlen(map_json), &err) == 0,
	   "map parses: %s", err.msg);
	if (!m)
		return;
	ok(migrate_map_transport(m) == MT_IMAP, "transport imap");
	is(migrate_map_connector(m), "C:\\mailshift\\mailshift.exe", "connector");
	ok(migrate_map_find(m, "ap@contoso.com", &t) == 0 &&
	   strcmp(t.tenant_id, "t-contoso") == 0 && !t.secret_literal,
	   "domain match, env: reference is not literal");
	ok(migrate_map_find(m, "x@EU.Contoso.COM", &t) == 0 &&
	   strcmp(t.tenant_id, "t-contoso") == 0, "subdomain, any case");
	ok(migrate_map_find(m, "x@notcontoso.com", &t) < 0, "suffix without a dot");
	ok(migrate_map_find(m, "scanner", &t) < 0, "no domain");
	ok(migrate_map_find(m, "a@fabrikam.com", &t) == 0 && t.certificate_file &&
	   !t.client_secret && strcmp(t.authority, "https://login.microsoftonline.us") == 0,
	   "certificate tenant with authority");
	ok(migrate_map_find(m, "a@northwind.com", &t) == 0 && t.secret_literal,
	   "literal secret flagged for sealing");
	ok(migrate_map_find_id(m, "t-nw", "c-3", &t) == 0 &&
	   strcmp(t.client_secret, "literal-secret") == 0, "find by ids");
	ok(migrate_map_find_id(m, "t-nw", "c-1", &t) < 0, "ids must both match");
	migrate_map_free(m);
	for (i = 0; bad[i]; i++) {
		err_clear(&err);
		m = NULL;
		ok(migrate_map_parse(&m, "bad.json", bad[i], strlen(bad[i]), &err) < 0 &&
		   !m && err.code == MS_ERR_DATA && strstr(err.msg, "bad.json"),
		   "bad map %d refused: %s", i, err.msg);
	}
}

/* Every line the rewrite removed is one of the [Mail] keys it may change;
 * every line it added is one of the keys it sets or a new [OAuth] block. */
static int only_expected_lines(const char *diff, char *why, size_t whysz)
{
	static const char *const changed[] = { "Password", "Server",
		"EmailProtocol", "SecurityProtocol", "Port", "SelfSignedCertificate",
		"AuthMethod", "StartTLS", NULL };
	static const char *const added[] = { "TenantId", "ClientId", "ClientSecret",
		"CertificateFile", "Flow", "Mailbox", "Authority", "GraphEndpoint",
		"CAFile", NULL };
	const char *p = diff;

	while (p && *p) {
		const char *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if ((p[0] == '-' || p[0] == '+') && strncmp(p, "---", 3) &&
		    strncmp(p, "+++", 3)) {
			const char *k = p + 1;
			size_t kn = 0;
			int okk = 0, i;
			while (*k == ' ' || *k == '\t')
				k++;
			while (k[kn] && k[kn] != '=' && k[kn] != '\n' && k[kn] != ' ')
				kn++;
			for (i = 0; changed[i]; i++)
				if (strlen(changed[i]) == kn && strncasecmp(k, changed[i], kn) == 0)
					okk = 1;
			/* [OAuth] values of an already migrated file may be replaced */
			for (i = 0; added[i]; i++)
				if (strlen(added[i]) == kn && strncmp(k, added[i], kn) == 0)
					okk = 1;
			if (p[0] == '+' && (n == 1 || strncmp(p, "+[OAuth]", 8) == 0))
				okk = 1;
			if (!okk) {
				snprintf(why, whysz, "unexpected line '%.*s'", (int)n, p);
				return 0;
			}
		}
		p = e ? e + 1 : NULL;
	}
	return 1;
}

static int write_file(const char *path, const char *data, size_t len)
{
	struct ms_err err = MS_ERR_INIT;
	char *dir = strdup(path), *slash;

	if ((slash = strrchr(dir, '/'))) {
		*slash = '\0';
		fs_mkdirs(dir, 0755, &err);
	}
	free(dir);
	return fs_write_atomic(path, data, len, 0644, &err);
}

static void golden_one(const char *path, const char *gname)
{
	struct ms_err err = MS_ERR_INIT;
	struct migrate_target t;
	struct ini *a = NULL, *b = NULL;
	struct config cfg;
	struct buf d;
	char *data = NULL, *out = NULL, *again = NULL, *want = NULL;
	size_t len = 0, outlen = 0, againlen = 0, wantlen = 0;
	char gpath[1024], why[256] = "";
	int r;

	if (fs_read_file(path, INI_MAX_FILE, &data, &len, &err) < 0) {
		ok(0, "read %s: %s", path, err.msg);
		return;
	}
	memset(&t, 0, sizeof(t));
	t.transport = MT_KEEP;
	t.tenant_id = "11111111-2222-3333-4444-555555555555";
	t.client_id = "66666666-7777-8888-9999-000000000000";
	t.client_secret = MIGRATE_SEALED_PLACEHOLDER;
	r = migrate_rewrite_ini(gname, data, len, &t, &out, &outlen, &err);
	if (ini_parse(&a, path, data, len, &err) < 0 || ini_check(a, &err) < 0) {
		/* structurally broken files are refused, never half-rewritten */
		ok(r < 0 && !out, "%s: invalid INI refused (%s)", gname, err.msg);
		goto done;
	}
	if (!ok(r == 0, "%s: rewritten %s", gname, err.msg))
		goto done;
	snprintf(gpath, sizeof(gpath), "%s/%s", GOLDEN, gname);
	if (getenv("MIGRATE_GOLDEN_UPDATE")) {
		ok(write_file(gpath, out, outlen) == 0, "%s: golden written", gname);
	} else {
		err_clear(&err);
		ok(fs_read_file(gpath, INI_MAX_FILE, &want, &wantlen, &err) == 0 &&
		   wantlen == outlen && memcmp(want, out, outlen) == 0,
		   "%s: matches golden %s", gname, gpath);
	}
	buf_init(&d, BUF_DEFAULT_CAP);
	ok(migrate_diff(gname, data, len, out, outlen, MIGRATE_DIFF_INI, &d, &err) == 0 &&
	   only_expected_lines(d.data ? d.data : "", why, sizeof(why)),
	   "%s: lossless, only migration keys change %s", gname, why);
	buf_release(&d);
	ok(ini_parse(&b, gname, out, outlen, &err) == 0 &&
	   ini_encoding(b) == ini_encoding(a) &&
	   strcmp(ini_dominant_eol(b), ini_dominant_eol(a)) == 0,
	   "%s: encoding %s and line ends kept", gname, ini_encoding_name(a));
	memset(&cfg, 0, sizeof(cfg));
	ok(b && config_from_ini(&cfg, b, gname, &err) == 0 &&
	   analysis_oauth_complete(&cfg) && cfg.auth == AUTH_OAUTH2 && !cfg.self_signed &&
	   (cfg.protocol == PROTO_GRAPH || cfg.password == NULL),
	   "%s: the connector reads complete OAuth settings %s", gname, err.msg);
	config_release(&cfg);
	err_clear(&err);
	ok(migrate_rewrite_ini(gname, out, outlen, &t, &again, &againlen, &err) == 0 &&
	   againlen == outlen && memcmp(again, out, outlen) == 0,
	   "%s: a second rewrite changes nothing", gname);
done:
	ini_free(a);
	ini_free(b);
	free(data);
	free(out);
	free(again);
	free(want);
}

static void golden_dir(const char *dir, const char *prefix, int depth)
{
	struct dirent **names = NULL;
	int n, i;

	if (depth > 12 || (n = scandir(dir, &names, NULL, alphasort)) < 0)
		return;
	for (i = 0; i < n; i++) {
		const char *nm = names[i]->d_name;
		char path[1024], gname[512];
		struct stat sb;
		size_t l = strlen(nm);

		if (nm[0] == '.') {
			free(names[i]);
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, nm);
		snprintf(gname, sizeof(gname), "%s%s%s", prefix, prefix[0] ? "__" : "", nm);
		for (char *c = gname; *c; c++)
			if (*c == ' ')
				*c = '_';
		if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
			golden_dir(path, gname, depth + 1);
		else if (l > 4 && strcasecmp(nm + l - 4, ".ini") == 0)
			golden_one(path, gname);
		free(names[i]);
	}
	free(names);
}

static void test_transports(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct migrate_target t;
	struct ini *ini = NULL;
	const char in[] = "[Mail]\r\nUser = a@contoso.com\r\nPassword = x\r\n"
			  "Server = pop.contoso.com\r\nEmailProtocol = POP3\r\n"
			  "SecurityProtocol = SSL\r\n";
	char *out = NULL;
	size_t len = 0;

	memset(&t, 0, sizeof(t));
	t.tenant_id = "t";
	t.client_id = "c";
	t.certificate_file = "C:\\c.pem";
	t.mailbox = "box@contoso.com";
	t.authority = "https://login.microsoftonline.us";
	t.transport = MT_KEEP;
	ok(migrate_rewrite_ini("x.ini", in, sizeof(in) - 1, &t, &out, &len, &err) == 0 &&
	   ini_parse(&ini, "x", out, len, &err) == 0, "keep: rewritten");
	if (ini) {
		is(ini_get(ini, "Mail", "EmailProtocol"), "POP3", "keep: POP3 kept as written");
		is(ini_get(ini, "Mail", "Port"), "995", "keep: pop port");
		is(ini_get(ini, "Mail", "Server"), "outlook.office365.com", "server");
		is(ini_get(ini, "Mail", "SecurityProtocol"), "TLS1_2", "weak TLS raised");
		is(ini_get(ini, "Mail", "Password"), "", "password cleared");
		is(ini_get(ini, "OAuth", "CertificateFile"), "C:\\c.pem", "certificate");
		ok(!ini_get(ini, "OAuth", "ClientSecret"), "no secret with a certificate");
		is(ini_get(ini, "OAuth", "Mailbox"), "box@contoso.com", "mailbox");
		is(ini_get(ini, "OAuth", "Authority"), "https://login.microsoftonline.us",
		   "authority");
		ok(strstr(out, "User = a@contoso.com\r\nPassword = \r\n") != NULL,
		   "spacing and CRLF kept on the edited line");
	}
	ini_free(ini);
	ini = NULL;
	free(out);
	out = NULL;
	t.transport = MT_GRAPH;
	ok(migrate_rewrite_ini("x.ini", in, sizeof(in) - 1, &t, &out, &len, &err) == 0 &&
	   ini_parse(&ini, "x", out, len, &err) == 0, "graph: rewritten");
	if (ini) {
		is(ini_get(ini, "Mail", "EmailProtocol"), "GRAPH", "graph protocol");
		is(ini_get(ini, "Mail", "Server"), "pop.contoso.com",
		   "graph leaves the server alone");
	}
	ini_free(ini);
	free(out);
}

/* Issue 14, item 7: "notify" in the mapping adds a [Notify] section when
 * NotifyOn* have nowhere to send from; the map's own port keeps TLS from
 * the first byte. */
static void test_notify_and_port(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct migrate_target t;
	struct ini *ini = NULL;
	struct migrate_map *m = NULL;
	struct migrate_tenant_view tv;
	const char in[] = "[Mail]\r\nUser = a@contoso.com\r\nServer = outlook.office365.com\r\n"
			  "EmailProtocol = IMAP\r\n[Audit]\r\nNotifyOnRejects = True\r\n";
	const char has[] = "[Mail]\r\nUser = a@contoso.com\r\nEmailProtocol = IMAP\r\n"
			   "[Audit]\r\nNotifyOnAccepts=yes\r\n[Notify]\r\nServer=smtp.contoso.com\r\n";
	const char map[] = "{\"notify\": \"smtp\", \"tenants\": ["
		"{\"domains\": [\"contoso.com\"], \"tenantId\": \"t\", \"clientId\": \"c\","
		" \"clientSecret\": \"env:S\", \"notify\": \"graph\"},"
		"{\"domains\": [\"fabrikam.com\"], \"tenantId\": \"t\", \"clientId\": \"c\","
		" \"clientSecret\": \"env:S\"}]}";
	char *out = NULL;
	size_t len = 0;

	ok(migrate_map_parse(&m, "map.json", map, sizeof(map) - 1, &err) == 0, "map with notify");
	ok(m && migrate_map_find(m, "a@contoso.com", &tv) == 0 && tv.notify == MN_GRAPH,
	   "notify: the tenant's own value");
	ok(m && migrate_map_find(m, "a@fabrikam.com", &tv) == 0 && tv.notify == MN_SMTP,
	   "notify: the top level's otherwise");
	migrate_map_free(m);
	m = NULL;
	ok(migrate_map_parse(&m, "map.json", "{\"notify\": \"fax\", \"tenants\": []}", 36,
			     &err) == -1 && strstr(err.msg, "'notify' must be graph, smtp or none"),
	   "notify: a bad value refused: %s", err.msg);
	migrate_map_free(m);

	memset(&t, 0, sizeof(t));
	t.tenant_id = "t";
	t.client_id = "c";
	t.client_secret = "env:S";
	t.transport = MT_IMAP;
	t.notify = MN_GRAPH;
	ok(migrate_rewrite_ini("x.ini", in, sizeof(in) - 1, &t, &out, &len, &err) == 0 &&
	   ini_parse(&ini, "x", out, len, &err) == 0, "notify graph: rewritten");
	if (ini)
		is(ini_get(ini, "Notify", "Transport"), "Graph", "[Notify] Transport=Graph added");
	ini_free(ini);
	ini = NULL;
	free(out);
	t.notify = MN_SMTP;
	t.port = 10993;
	ok(migrate_rewrite_ini("x.ini", in, sizeof(in) - 1, &t, &out, &len, &err) == 0 &&
	   ini_parse(&ini, "x", out, len, &err) == 0, "notify smtp: rewritten");
	if (ini) {
		is(ini_get(ini, "Notify", "Server"), "smtp.office365.com", "SMTP server");
		is(ini_get(ini, "Notify", "Port"), "587", "SMTP port");
		is(ini_get(ini, "Notify", "TLS"), "StartTLS", "STARTTLS");
		is(ini_get(ini, "Notify", "AuthMethod"), "OAuth2", "XOAUTH2 through the same app");
		is(ini_get(ini, "Mail", "SecurityProtocol"), "TLS1_2",
		   "the map's own port: SecurityProtocol written so TLS starts at once");
	}
	ini_free(ini);
	ini = NULL;
	free(out);
	t.port = 0;
	ok(migrate_rewrite_ini("x.ini", has, sizeof(has) - 1, &t, &out, &len, &err) == 0 &&
	   ini_parse(&ini, "x", out, len, &err) == 0, "existing [Notify]: rewritten");
	if (ini) {
		is(ini_get(ini, "Notify", "Server"), "smtp.contoso.com", "a usable [Notify] is kept");
		ok(!ini_get(ini, "Notify", "Transport"), "nothing added to it");
		ok(!ini_get(ini, "Mail", "SecurityProtocol"), "993: SecurityProtocol left unset");
	}
	ini_free(ini);
	ini = NULL;
	free(out);
	t.notify = MN_UNSET;
	ok(migrate_rewrite_ini("x.ini", in, sizeof(in) - 1, &t, &out, &len, &err) == 0 &&
	   !strstr(out, "[Notify]"), "no notify in the map: no [Notify] added");
	free(out);
}

struct cmdcase {
	const char *in, *connector, *want;
	unsigned flags;
};

static void test_commands(void)
{
	static const struct cmdcase cases[] = {
		{ "\"C:\\Program Files\\OpConxps\\SMArt Email\\SMArtEmail.exe\" -inifile:\"D:\\x.ini\" --delete",
		  "C:\\ms\\mailshift.exe",
		  "C:\\ms\\mailshift.exe -inifile:\"D:\\x.ini\" --delete", MIGRATE_CMD_CHANGED },
		{ "smartemail --pop -server:outlook.office365.com -port:995 -inifile:x.ini",
		  NULL, "smartemail -inifile:x.ini", MIGRATE_CMD_CHANGED },
		{ "cmd /c \"C:\\PROGRA~1\\X\\SMARTE~1.EXE\" --IMAP  -Server:\"a b\" & echo done",
		  "C:\\Program Files\\mailshift\\mailshift.exe",
		  "cmd /c \"C:\\Program Files\\mailshift\\mailshift.exe\" & echo done",
		  MIGRATE_CMD_CHANGED },
		{ "smartemail -inifile:x.ini --delete", NULL,
		  "smartemail -inifile:x.ini --delete", 0 },
		{ "smartemail --msal --renewMsalToken --renewTokenSilent", "m.exe",
		  "smartemail --msal --renewMsalToken --renewTokenSilent",
		  MIGRATE_CMD_KEEPALIVE },
		{ "smartemail -server:h -user:u -password:Secret1", NULL,
		  "smartemail -user:u -password:Secret1",
		  MIGRATE_CMD_CHANGED | MIGRATE_CMD_PASSWORD },
		{ "smartemail -password:[[MAIL_PW]]", NULL, "smartemail -password:[[MAIL_PW]]", 0 },
		{ "robocopy a b", "m.exe", "robocopy a b", MIGRATE_CMD_UNLOCATED },
		{ NULL, NULL, NULL, 0 }
	};
	int i;

	for (i = 0; cases[i].in; i++) {
		struct ms_err err = MS_ERR_INIT;
		char *out = NULL;
		unsigned flags = 0;
		ok(migrate_rewrite_command(cases[i].in, cases[i].connector, &out, &flags,
					   &err) == 0, "command %d rewritten", i);
		is(out, cases[i].want, "command %d text", i);
		is_int(flags, cases[i].flags, "command %d flags", i);
		free(out);
	}
}

static void test_exports(void)
{
	struct ms_err err = MS_ERR_INIT;
	const char json[] =
		"\xEF\xBB\xBF[\r\n  {\"name\": \"A\", \"details\": {\"commandLine\" :"
		" \"\\\"C:\\\\x\\\\smartemail.exe\\\" --pop\"}},\r\n"
		"  {\"name\": \"B\", \"details\": {\"commandLine\": \"other\"}},\r\n"
		"  {\"note\": \"commandLine\", \"commandLine\": \"\\u0022C:\\\\x\\\\smartemail.exe\\\" --pop\"}\r\n]";
	const char xml[] =
		"<?xml version=\"1.0\"?>\n<jobs><job><cmd_line>smartemail &amp;&amp; x"
		" -server:h</cmd_line></job>\n<job><cmd_line>keep</cmd_line></job></jobs>\n";
	const char *olds[] = { "\"C:\\x\\smartemail.exe\" --pop", "smartemail && x -server:h" };
	const char *news[] = { "\"C:\\x\\smartemail.exe\"", "smartemail && x" };
	const char want_json[] =
		"\xEF\xBB\xBF[\r\n  {\"name\": \"A\", \"details\": {\"commandLine\" :"
		" \"\\\"C:\\\\x\\\\smartemail.exe\\\"\"}},\r\n"
		"  {\"name\": \"B\", \"details\": {\"commandLine\": \"other\"}},\r\n"
		"  {\"note\": \"commandLine\", \"commandLine\": \"\\\"C:\\\\x\\\\smartemail.exe\\\"\"}\r\n]";
	const char want_xml[] =
		"<?xml version=\"1.0\"?>\n<jobs><job><cmd_line>smartemail &amp;&amp; x"
		"</cmd_line></job>\n<job><cmd_line>keep</cmd_line></job></jobs>\n";
	const char xml2[] =
		"<jobs><job><cmd_line attr=\"1\">&quot;C:\\M\xC3\xBCller\\smartemail.exe&quot; --pop"
		"</cmd_line><cmd_line><![CDATA[smartemail --imap <x>]]></cmd_line>"
		"<cmd_line/></job></jobs>";
	const char want_xml2[] =
		"<jobs><job><cmd_line attr=\"1\">&quot;C:\\M\xC3\xBCller\\smartemail.exe&quot;"
		"</cmd_line><cmd_line><![CDATA[smartemail <x>]]></cmd_line>"
		"<cmd_line/></job></jobs>";
	const char *olds2[] = { "\"C:\\M\xC3\xBCller\\smartemail.exe\" --pop",
				"smartemail --imap <x>" };
	const char *news2[] = { "\"C:\\M\xC3\xBCller\\smartemail.exe\"",
				"smartemail <x>" };
	const char utf16[] = "\xFF\xFE[\0]\0";
	char *out = NULL;
	size_t len = 0, n = 0;

	ok(migrate_rewrite_export("a.json", json, sizeof(json) - 1, olds, news, 2, &out,
				  &len, &n, &err) == 0, "json export rewritten");
	is_int(n, 2, "both matching command lines replaced (escaped differently)");
	is(out, want_json, "json: only the strings changed, BOM and CRLF kept");
	free(out);
	out = NULL;
	ok(migrate_rewrite_export("a.xml", xml, sizeof(xml) - 1, olds, news, 2, &out,
				  &len, &n, &err) == 0 && n == 1, "xml export rewritten");
	is(out, want_xml, "xml: entities re-encoded, the rest kept");
	free(out);
	out = NULL;
	ok(migrate_rewrite_export("b.xml", xml2, sizeof(xml2) - 1, olds2, news2, 2, &out,
				  &len, &n, &err) == 0 && n == 2, "xml: attributes, CDATA, UTF-8");
	is(out, want_xml2, "xml: &quot; style and CDATA kept");
	free(out);
	out = NULL;
	err_clear(&err);
	ok(migrate_rewrite_export("u.json", utf16, sizeof(utf16) - 1, olds, news, 2, &out,
				  &len, &n, &err) < 0 && err.code == MS_ERR_DATA,
	   "UTF-16 export refused: %s", err.msg);
	free(out);
}

static void test_diff(void)
{
	struct ms_err err = MS_ERR_INIT;
	const char a[] = "[Mail]\nUser=u\nPassword=Hunter2\nServer=s\n";
	const char b[] = "[Mail]\nUser=u\nPassword=\nServer=s\nAuthMethod=OAuth2\n"
			 "[OAuth]\nClientSecret=TopSecret9\nClientSecret=env:X\n";
	const char want[] =
		"--- a/x.ini\n+++ b/x.ini\n@@ -1,4 +1,8 @@\n [Mail]\n User=u\n"
		"-Password=***\n+Password=\n Server=s\n+AuthMethod=OAuth2\n+[OAuth]\n"
		"+ClientSecret=***\n+ClientSecret=env:X\n";
	struct buf d;

	buf_init(&d, BUF_DEFAULT_CAP);
	ok(migrate_diff("x.ini", a, sizeof(a) - 1, b, sizeof(b) - 1, MIGRATE_DIFF_INI,
			&d, &err) == 0, "diff");
	is(d.data, want, "unified diff with secrets masked");
	ok(d.data && !strstr(d.data, "Hunter2") && !strstr(d.data, "TopSecret9"),
	   "no secret in the diff");
	buf_release(&d);
	buf_init(&d, BUF_DEFAULT_CAP);
	ok(migrate_diff("j.json", "\"commandLine\": \"smartemail -password:Pw1 --pop\"\n",
			48, "\"commandLine\": \"smartemail -password:Pw1\"\n", 42,
			MIGRATE_DIFF_EXPORT, &d, &err) == 0 && d.data &&
	   !strstr(d.data, "Pw1"), "export diff redacts command-line passwords");
	buf_release(&d);
}

/* Endpoints in the mapping file: top level for every tenant, a tenant's
 * own winning; bad values refused. */
static void test_map_endpoints(void)
{
	static const char js[] =
		"{\"graphEndpoint\": \"https://127.0.0.1:8443\", \"caFile\": \"C:\\\\ca\\\\test ca.pem\","
		" \"server\": \"127.0.0.1\", \"port\": 10993, \"tenants\": ["
		"  {\"domains\": [\"contoso.com\"], \"tenantId\": \"t1\", \"clientId\": \"c1\","
		"   \"clientSecret\": \"env:X\"},"
		"  {\"domains\": [\"fabrikam.com\"], \"tenantId\": \"t2\", \"clientId\": \"c2\","
		"   \"clientSecret\": \"env:Y\", \"graphEndpoint\": \"https://graph.microsoft.us\","
		"   \"server\": \"outlook.office365.us\", \"port\": \"993\", \"caFile\": null}"
		"]}";
	static const char plain[] =
		"{\"tenants\": [{\"domains\": [\"a.com\"], \"tenantId\": \"t\","
		" \"clientId\": \"c\", \"clientSecret\": \"env:S\"}]}";
	static const char *const bad[] = {
		"{\"port\": 0, \"tenants\": [{\"domains\": [\"a.com\"], \"tenantId\": \"t\","
		" \"clientId\": \"c\", \"clientSecret\": \"s\"}]}",
		"{\"tenants\": [{\"domains\": [\"a.com\"], \"tenantId\": \"t\","
		" \"clientId\": \"c\", \"clientSecret\": \"s\", \"port\": 65536}]}",
		"{\"tenants\": [{\"domains\": [\"a.com\"], \"tenantId\": \"t\","
		" \"clientId\": \"c\", \"clientSecret\": \"s\", \"port\": \"99x\"}]}",
		"{\"tenants\": [{\"domains\": [\"a.com\"], \"tenantId\": \"t\","
		" \"clientId\": \"c\", \"clientSecret\": \"s\", \"port\": 993.5}]}",
		"{\"graphEndpoint\": \"http://127.0.0.1\", \"tenants\": [{\"domains\": [\"a.com\"],"
		" \"tenantId\": \"t\", \"clientId\": \"c\", \"clientSecret\": \"s\"}]}",
		"{\"tenants\": [{\"domains\": [\"a.com\"], \"tenantId\": \"t\","
		" \"clientId\": \"c\", \"clientSecret\": \"s\", \"server\": \"a b\"}]}",
		"{\"server\": \"\", \"tenants\": [{\"domains\": [\"a.com\"], \"tenantId\": \"t\","
		" \"clientId\": \"c\", \"clientSecret\": \"s\"}]}",
		"{\"caFile\": 5, \"tenants\": [{\"domains\": [\"a.com\"], \"tenantId\": \"t\","
		" \"clientId\": \"c\", \"clientSecret\": \"s\"}]}",
		NULL
	};
	struct ms_err err = MS_ERR_INIT;
	struct migrate_map *m = NULL;
	struct migrate_tenant_view t;
	int i;

	ok(migrate_map_parse(&m, "ep.json", js, strlen(js), &err) == 0,
	   "map with endpoints parses: %s", err.msg);
	if (m) {
		memset(&t, 0, sizeof(t));
		ok(migrate_map_find(m, "a@contoso.com", &t) == 0, "contoso found");
		is(t.graph_endpoint, "https://127.0.0.1:8443", "top-level graphEndpoint");
		is(t.ca_file, "C:\\ca\\test ca.pem", "top-level caFile");
		is(t.server, "127.0.0.1", "top-level server");
		is_int(t.port, 10993, "top-level port");
		memset(&t, 0, sizeof(t));
		ok(migrate_map_find_id(m, "t2", "c2", &t) == 0, "fabrikam found");
		is(t.graph_endpoint, "https://graph.microsoft.us", "tenant graphEndpoint wins");
		is(t.server, "outlook.office365.us", "tenant server wins");
		is_int(t.port, 993, "tenant port as a string");
		is(t.ca_file, "C:\\ca\\test ca.pem", "null caFile: the top level's");
		migrate_map_free(m);
	}
	m = NULL;
	ok(migrate_map_parse(&m, "plain.json", plain, strlen(plain), &err) == 0 &&
	   migrate_map_find(m, "x@a.com", &t) == 0 && !t.graph_endpoint && !t.ca_file &&
	   !t.server && t.port == 0, "no endpoints: defaults");
	migrate_map_free(m);
	for (i = 0; bad[i]; i++) {
		err_clear(&err);
		m = NULL;
		ok(migrate_map_parse(&m, "bad.json", bad[i], strlen(bad[i]), &err) < 0 &&
		   !m && err.code == MS_ERR_DATA && strstr(err.msg, "bad.json"),
		   "bad endpoint %d refused: %s", i, err.msg);
	}
}

/* An INI file pointed at the local test world: golden files (lossless,
 * only the expected keys), the connector reads the endpoints back, and
 * Graph leaves [Mail] Server / Port / CAFile alone. */
static void endpoint_golden(const char *path, const char *gname,
			    enum migrate_transport tr)
{
	struct ms_err err = MS_ERR_INIT;
	struct migrate_target t;
	struct ini *b = NULL;
	struct config cfg;
	struct buf d;
	char *data = NULL, *out = NULL, *want = NULL, *again = NULL;
	size_t len = 0, outlen = 0, wantlen = 0, againlen = 0;
	char gpath[1024], why[256] = "";

	if (!ok(fs_read_file(path, INI_MAX_FILE, &data, &len, &err) == 0, "read %s: %s",
		path, err.msg))
		return;
	memset(&t, 0, sizeof(t));
	t.transport = tr;
	t.tenant_id = "11111111-2222-3333-4444-555555555555";
	t.client_id = "66666666-7777-8888-9999-000000000000";
	t.client_secret = "env:MAILSHIFT_TEST_SECRET";
	t.graph_endpoint = "https://127.0.0.1:8443";
	t.ca_file = "C:\\mailshift\\test-ca.pem";
	t.server = "127.0.0.1";
	t.port = 10993;
	if (!ok(migrate_rewrite_ini(gname, data, len, &t, &out, &outlen, &err) == 0,
		"endpoints: %s rewritten %s", gname, err.msg))
		goto done;
	snprintf(gpath, sizeof(gpath), "%s/endpoints/%s", GOLDEN, gname);
	if (getenv("MIGRATE_GOLDEN_UPDATE")) {
		ok(write_file(gpath, out, outlen) == 0, "endpoints: %s golden written", gname);
	} else {
		ok(fs_read_file(gpath, INI_MAX_FILE, &want, &wantlen, &err) == 0 &&
		   wantlen == outlen && memcmp(want, out, outlen) == 0,
		   "endpoints: %s matches golden %s", gname, gpath);
	}
	buf_init(&d, BUF_DEFAULT_CAP);
	ok(migrate_diff(gname, data, len, out, outlen, MIGRATE_DIFF_INI, &d, &err) == 0 &&
	   only_expected_lines(d.data ? d.data : "", why, sizeof(why)),
	   "endpoints: %s lossless, only migration keys change %s", gname, why);
	buf_release(&d);
	memset(&cfg, 0, sizeof(cfg));
	ok(ini_parse(&b, gname, out, outlen, &err) == 0 &&
	   config_from_ini(&cfg, b, gname, &err) == 0, "endpoints: %s read back %s",
	   gname, err.msg);
	is(cfg.graph_endpoint, "https://127.0.0.1:8443", "%s: [OAuth] GraphEndpoint", gname);
	is(cfg.oauth_ca_file, "C:\\mailshift\\test-ca.pem", "%s: [OAuth] CAFile", gname);
	if (tr == MT_GRAPH) {
		ok(!cfg.server || strcmp(cfg.server, "127.0.0.1") != 0,
		   "%s: graph leaves [Mail] Server alone", gname);
		ok(cfg.port != 10993, "%s: graph leaves [Mail] Port alone", gname);
		ok(!b || !ini_get(b, "Mail", "CAFile"), "%s: no [Mail] CAFile for graph",
		   gname);
	} else {
		is(cfg.server, "127.0.0.1", "%s: [Mail] Server", gname);
		is_int(cfg.port, 10993, "%s: [Mail] Port", gname);
		is(cfg.ca_file, "C:\\mailshift\\test-ca.pem", "%s: [Mail] CAFile", gname);
	}
	config_release(&cfg);
	ok(migrate_rewrite_ini(gname, out, outlen, &t, &again, &againlen, &err) == 0 &&
	   againlen == outlen && memcmp(again, out, outlen) == 0,
	   "endpoints: %s a second rewrite changes nothing", gname);
done:
	ini_free(b);
	free(data);
	free(out);
	free(want);
	free(again);
}

/* The state database keeps files sealed: seal_bytes round trip, bound to
 * its key and its associated data, tamper-evident. */
static void test_seal_bytes(void)
{
	struct ms_err err = MS_ERR_INIT;
	unsigned char k1[SEAL_KEY_LEN], k2[SEAL_KEY_LEN];
	struct seal_key *a = NULL, *b = NULL;
	const char data[] = "[Mail]\r\nPassword=Hunter2-canary\r\n\0binary\xff";
	unsigned char *s = NULL, *p = NULL, *e = NULL;
	size_t slen = 0, plen = 0, elen = 0;

	memset(k1, 0x11, sizeof(k1));
	memset(k2, 0x22, sizeof(k2));
	ok(seal_key_from_bytes(&a, k1, sizeof(k1), &err) == 0 &&
	   seal_key_from_bytes(&b, k2, sizeof(k2), &err) == 0, "keys");
	ok(seal_bytes(a, data, sizeof(data), "row 1", 5, &s, &slen, &err) == 0 &&
	   slen == sizeof(data) + SEAL_BYTES_OVERHEAD && memcmp(s, "MSB1", 4) == 0,
	   "sealed: header and length");
	ok(s && !memmem(s, slen, "Hunter2", 7), "no plaintext in the sealed bytes");
	ok(unseal_bytes(a, s, slen, "row 1", 5, &p, &plen, &err) == 0 &&
	   plen == sizeof(data) && memcmp(p, data, plen) == 0, "round trip, binary kept");
	free(p);
	err_clear(&err);
	ok(unseal_bytes(b, s, slen, "row 1", 5, &p, &plen, &err) < 0 && !p &&
	   err.code == MS_ERR_DATA, "another key refused: %s", err.msg);
	err_clear(&err);
	ok(unseal_bytes(a, s, slen, "row 2", 5, &p, &plen, &err) < 0 && !p,
	   "another row's aad refused");
	s[slen / 2] ^= 1;
	err_clear(&err);
	ok(unseal_bytes(a, s, slen, "row 1", 5, &p, &plen, &err) < 0 && !p,
	   "altered bytes refused");
	err_clear(&err);
	ok(unseal_bytes(a, data, sizeof(data), NULL, 0, &p, &plen, &err) < 0 &&
	   err.code == MS_ERR_DATA, "clear bytes are not sealed data");
	ok(seal_bytes(a, "", 0, NULL, 0, &e, &elen, &err) == 0 &&
	   elen == SEAL_BYTES_OVERHEAD, "empty file sealed");
	free(p);
	p = NULL;
	ok(unseal_bytes(a, e, elen, NULL, 0, &p, &plen, &err) == 0 && plen == 0,
	   "empty file unsealed");
	free(p);
	free(e);
	free(s);
	seal_key_free(a);
	seal_key_free(b);
}

/* The fsutil primitives migrate's batched writes rely on. */
static void test_fs_batch(void)
{
	struct ms_err err = MS_ERR_INIT;
	char dir[] = "/tmp/test_migrate.XXXXXX", *path = NULL, *data = NULL;
	struct stat st;
	struct dirent *de;
	size_t len = 0;
	mode_t mode = 0, um;
	int temps = 0;
	DIR *dh;

	if (!mkdtemp(dir) || !(path = fs_join(dir, "a.ini"))) {
		ok(0, "temporary folder");
		free(path);
		return;
	}
	is_int(fs_read_file_mode(path, 1024, &data, &len, &mode, &err), 1,
	       "fs_read_file_mode: a missing file is 1, not an error");
	ok(!data && !err.code, "nothing read, no error set");
	um = umask(077);
	ok(fs_write_atomic_nodirsync(path, "one\n", 4, 0644, &err) == 0,
	   "fs_write_atomic_nodirsync creates the file");
	umask(um);
	ok(stat(path, &st) == 0 && (st.st_mode & 07777) == 0644,
	   "with exactly the mode asked, the umask (077) not applied");
	ok(fs_read_file_mode(path, 1024, &data, &len, &mode, &err) == 0 &&
	   len == 4 && memcmp(data, "one\n", 4) == 0 && mode == 0644,
	   "fs_read_file_mode reads it and gives its mode");
	free(data);
	data = NULL;
	ok(fs_write_atomic_nodirsync(path, "two, longer\n", 12, 0640, &err) == 0 &&
	   fs_read_file(path, 1024, &data, &len, &err) == 0 && len == 12 &&
	   memcmp(data, "two, longer\n", 12) == 0, "replaces an existing file");
	free(data);
	data = NULL;
	ok(stat(path, &st) == 0 && (st.st_mode & 07777) == 0640,
	   "the replacement has the mode passed");
	ok(fs_fsync_dir(dir, &err) == 0, "the folder is fsynced by the caller");
	if ((dh = opendir(dir))) {
		while ((de = readdir(dh)))
			if (strstr(de->d_name, ".tmp."))
				temps++;
		closedir(dh);
	}
	is_int(temps, 0, "no temporary file left next to it");
	err_clear(&err);
	ok(fs_read_file_mode(path, 4, &data, &len, NULL, &err) < 0 &&
	   err.code == MS_ERR_TOOBIG, "fs_read_file_mode keeps the size cap");
	err_clear(&err);
	{
		char *under = fs_join(path, "x");
		ok(under && fs_read_file_mode(under, 1024, &data, &len, NULL, &err) == 1 &&
		   !err.code, "a path under a file does not exist either (ENOTDIR)");
		free(under);
	}
	unlink(path);
	free(path);
	path = fs_join(dir, "missing/b.ini");
	ok(path && fs_write_atomic_nodirsync(path, "x", 1, 0600, &err) < 0 &&
	   err.code == MS_ERR_IO, "a folder that does not exist is an error");
	free(path);
	rmdir(dir);
}

/* How many temporary files (".NAME.tmp.PID.N") dir holds. */
static int count_temps(const char *dir)
{
	struct dirent *de;
	size_t len;
	long pid;
	int n = 0;
	DIR *dh = opendir(dir);

	if (!dh)
		return -1;
	while ((de = readdir(dh)))
		n += fs_temp_name_parse(de->d_name, &len, &pid);
	closedir(dh);
	return n;
}

static int holds(const char *dir, const char *name, const char *text)
{
	char *p = fs_join(dir, name), *data = NULL;
	size_t len = 0;
	struct ms_err err = MS_ERR_INIT;
	int r = p && fs_read_file(p, 1024, &data, &len, &err) == 0 &&
		len == strlen(text) && memcmp(data, text, len) == 0;

	free(data);
	free(p);
	return r;
}

/* A file written ahead (fs_stage_*): nothing a reader sees changes until
 * it is put in place; removed instead, nothing is left. */
static void test_fs_stage(void)
{
	struct ms_err err = MS_ERR_INIT;
	char dir[] = "/tmp/test_stage.XXXXXX", *path = NULL, *tmp = NULL;
	struct stat st;

	if (!mkdtemp(dir) || !(path = fs_join(dir, "a.ini")) ||
	    fs_write_atomic_nodirsync(path, "old\n", 4, 0640, &err) < 0) {
		ok(0, "temporary folder");
		free(path);
		return;
	}
	tmp = fs_stage_write(path, "new\n", 4, 0600, &err);
	ok(tmp && holds(dir, "a.ini", "old\n") && count_temps(dir) == 1,
	   "fs_stage_write: a temporary file beside a.ini, a.ini untouched");
	ok(tmp && stat(tmp, &st) == 0 && (st.st_mode & 07777) == 0600 && st.st_size == 4,
	   "the temporary file has the bytes and exactly the mode asked");
	ok(tmp && fs_stage_commit(tmp, path, &err) == 0 && holds(dir, "a.ini", "new\n") &&
	   count_temps(dir) == 0 && stat(path, &st) == 0 && (st.st_mode & 07777) == 0600,
	   "fs_stage_commit puts it in place, nothing left beside");
	tmp = fs_stage_write(path, "third\n", 6, 0600, &err);
	ok(tmp != NULL, "written ahead again");
	fs_stage_discard(tmp);
	ok(holds(dir, "a.ini", "new\n") && count_temps(dir) == 0,
	   "fs_stage_discard removes it, a.ini untouched");
	fs_stage_discard(NULL);
	free(path);
	path = fs_join(dir, "missing/b.ini");
	err_clear(&err);
	ok(path && !fs_stage_write(path, "x", 1, 0600, &err) && err.code == MS_ERR_IO,
	   "a folder that does not exist: NULL and an error");
	free(path);
	path = fs_join(dir, "a.ini");
	if (path)
		unlink(path);
	free(path);
	ok(rmdir(dir) == 0, "nothing else left in the folder");
}

/* The stage of an apply (mig_stage_*): files written ahead in order,
 * each put in place only with the very bytes and mode its batch writes,
 * every one not put in place removed. */
static void test_stage(void)
{
	static const char *names[] = { "a.ini", "b.ini", "c.ini", "d.ini", "e.ini" };
	static const char *news[] = { "A\n", "B\n", "C\n", "D\n", "E\n" };
	struct mig_stage *st;
	struct mig_staged *e[5];
	struct ms_err err = MS_ERR_INIT;
	char dir[] = "/tmp/test_stage2.XXXXXX", *tmp, *path;
	char other[] = "A\n";
	int k, waited = 0, dtmp;

	if (!mkdtemp(dir)) {
		ok(0, "temporary folder");
		return;
	}
	for (k = 0; k < 5; k++) {
		path = fs_join(dir, names[k]);
		if (!path || fs_write_atomic_nodirsync(path, "old\n", 4, 0640, &err) < 0)
			ok(0, "file %s", names[k]);
		free(path);
	}
	ok(!mig_stage_add(NULL, dir, "a.ini", "x", 1, 0640) && !mig_stage_take(NULL, "x", 1, 0) &&
	   (mig_stage_drop(NULL), 1), "no stage: nothing written ahead, nothing to take");
	st = mig_stage_start(0);
	ok(st != NULL, "a stage started");
	for (k = 0; k < 3; k++)
		e[k] = mig_stage_add(st, dir, names[k], news[k], 2, 0640);
	ok(e[0] && e[1] && e[2], "three files added");
	while (count_temps(dir) < 3 && waited++ < 500)
		usleep(10000);
	is_int(count_temps(dir), 3, "all three written ahead");
	ok(holds(dir, "a.ini", "old\n") && holds(dir, "b.ini", "old\n") &&
	   holds(dir, "c.ini", "old\n"), "and none of the files changed");
	tmp = mig_stage_take(e[0], news[0], 2, 0640);
	path = fs_join(dir, "a.ini");
	ok(tmp && path && fs_stage_commit(tmp, path, &err) == 0 && holds(dir, "a.ini", "A\n"),
	   "taken with its bytes and mode: put in place");
	free(path);
	ok(!mig_stage_take(e[0], news[0], 2, 0640), "an entry is taken once");
	ok(!mig_stage_take(e[1], other, 2, 0640) && count_temps(dir) == 1,
	   "other bytes (not the buffer written ahead): its temporary file removed");
	ok(!mig_stage_take(e[2], news[2], 2, 0600) && count_temps(dir) == 0,
	   "another mode: removed too");
	ok(holds(dir, "b.ini", "old\n") && holds(dir, "c.ini", "old\n"),
	   "the files not put in place are untouched");
	/* taken at once: either already written ahead (then put in place)
	 * or never written ahead after */
	e[3] = mig_stage_add(st, dir, names[3], news[3], 2, 0640);
	tmp = mig_stage_take(e[3], news[3], 2, 0640);
	dtmp = tmp != NULL;
	path = fs_join(dir, "d.ini");
	if (tmp && path)
		fs_stage_commit(tmp, path, &err);
	free(path);
	e[4] = mig_stage_add(st, dir, names[4], news[4], 2, 0640);
	mig_stage_drop(e[4]);
	usleep(50000);
	ok(count_temps(dir) == 0 && holds(dir, "e.ini", "old\n"),
	   "dropped: nothing written ahead is left of it");
	ok(dtmp ? holds(dir, "d.ini", "D\n") : holds(dir, "d.ini", "old\n"),
	   "taken at once: put in place only if it had been written ahead");
	for (k = 0; k < 2; k++)
		e[k] = mig_stage_add(st, dir, names[k + 1], news[k + 1], 2, 0640);
	waited = 0;
	while (count_temps(dir) < 2 && waited++ < 500)
		usleep(10000);
	mig_stage_stop(&st);
	ok(!st && count_temps(dir) == 0, "stopped: every temporary file not taken removed");
	ok(holds(dir, "b.ini", "old\n") && holds(dir, "c.ini", "old\n"),
	   "and their files untouched");
	/* bounded: 25 bytes ahead at most, files of 10 */
	{
		static const char ten[3][11] = { "0123456789", "abcdefghij", "ABCDEFGHIJ" };

		st = mig_stage_start(25);
		for (k = 0; k < 3; k++)
			e[k] = mig_stage_add(st, dir, names[k], ten[k], 10, 0640);
		waited = 0;
		while (count_temps(dir) < 2 && waited++ < 500)
			usleep(10000);
		usleep(100000);
		is_int(count_temps(dir), 2, "at most 25 bytes ahead: two files of 10, not three");
		tmp = mig_stage_take(e[0], ten[0], 10, 0640);
		dtmp = tmp != NULL;
		fs_stage_discard(tmp);
		waited = 0;
		while (count_temps(dir) < 2 && waited++ < 500)
			usleep(10000);
		ok(dtmp && count_temps(dir) == 2 && (tmp = mig_stage_take(e[2], ten[2], 10, 0640)),
		   "one taken: the third is written ahead");
		fs_stage_discard(tmp);
		mig_stage_stop(&st);
		is_int(count_temps(dir), 0, "stopped: nothing left");
	}
	for (k = 0; k < 5; k++) {
		path = fs_join(dir, names[k]);
		if (path)
			unlink(path);
		free(path);
	}
	ok(rmdir(dir) == 0, "nothing else left in the folder");
}

static int name_is(const char *name, size_t len, void *want)
{
	return strlen(want) == len && memcmp(name, want, len) == 0;
}

static int touch_in(const char *dir, const char *name, const char *text)
{
	char *p = fs_join(dir, name);
	FILE *f = p ? fopen(p, "w") : NULL;
	int rc = f && fputs(text, f) >= 0 ? 0 : -1;

	if (f && fclose(f) != 0)
		rc = -1;
	free(p);
	return rc;
}

static int exists_in(const char *dir, const char *name)
{
	char *p = fs_join(dir, name);
	int r = p && fs_exists(p);

	free(p);
	return r;
}

/* The dead writers' temporary files found and removed by name; a file
 * written as a stream put in place (or not at all) whole. */
static void test_fs_temps(void)
{
	struct ms_err err = MS_ERR_INIT;
	char dir[] = "/tmp/test_fstemps.XXXXXX", live[64], *path = NULL, *data = NULL;
	struct fs_atomic fa;
	struct stat st;
	size_t len = 0;

	if (!mkdtemp(dir) || !(path = fs_join(dir, "r.json"))) {
		ok(0, "temporary folder");
		free(path);
		return;
	}
	snprintf(live, sizeof(live), ".r.json.tmp.%ld.0", (long)getpid());
	ok(touch_in(dir, "r.json", "old") == 0 &&
	   touch_in(dir, ".r.json.tmp.4194303.0", "half") == 0 &&
	   touch_in(dir, live, "ours") == 0 &&
	   touch_in(dir, ".other.json.tmp.4194303.1", "half") == 0 &&
	   touch_in(dir, ".r.json.tmp.x.0", "not ours") == 0, "files made");
	ok(fs_clean_dead_temps(dir, name_is, "r.json") == 1 &&
	   !exists_in(dir, ".r.json.tmp.4194303.0"),
	   "a dead writer's temporary file of r.json removed");
	ok(exists_in(dir, live) && exists_in(dir, ".other.json.tmp.4194303.1") &&
	   exists_in(dir, ".r.json.tmp.x.0") && exists_in(dir, "r.json"),
	   "a live writer's, another name's, a foreign name and the file kept");
	ok(fs_clean_dead_temps(dir, NULL, NULL) == 1 &&
	   !exists_in(dir, ".other.json.tmp.4194303.1") && exists_in(dir, live),
	   "without a filter: every dead writer's, never a live one's");
	ok(fs_clean_dead_temps("/nonexistent/mailshift", NULL, NULL) == 0,
	   "a folder that cannot be listed: nothing removed");
	/* a PID come round again: ours, on a file last written before we
	 * started */
	ok(platform_pid_may_own((long)getpid(), time(NULL)) == 1 &&
	   platform_pid_may_own((long)getpid(), time(NULL) - 3600) == 0 &&
	   platform_pid_may_own(4194303, time(NULL)) == 0,
	   "a PID may own a file written after its process started, not before");
	{
		char old[64], *p;
		struct utimbuf ut = { time(NULL) - 3600, time(NULL) - 3600 };

		snprintf(old, sizeof(old), ".r.json.tmp.%ld.7", (long)getpid());
		p = fs_join(dir, old);
		ok(p && touch_in(dir, old, "half") == 0 && utime(p, &ut) == 0 &&
		   fs_clean_dead_temps(dir, name_is, "r.json") == 1 &&
		   !exists_in(dir, old) && exists_in(dir, live),
		   "a file an hour old named by a PID now ours removed, our fresh one kept");
		free(p);
	}

	chmod(path, 0600);
	ok(fs_atomic_open(&fa, path, 0644, &err) == 0 && fputs("partial", fa.fp) >= 0,
	   "a stream opened beside r.json (past a file of the same PID's name)");
	fs_atomic_abort(&fa);
	ok(fs_read_file(path, 64, &data, &len, &err) == 0 && strcmp(data, "old") == 0,
	   "aborted: r.json untouched");
	free(data);
	data = NULL;
	ok(fs_clean_dead_temps(dir, name_is, "r.json") == 0 && exists_in(dir, live),
	   "and no temporary file of ours left behind");
	ok(fs_atomic_open(&fa, path, 0644, &err) == 0 && fputs("new", fa.fp) >= 0 &&
	   fs_atomic_commit(&fa, &err) == 0, "a stream committed over r.json");
	ok(fs_read_file(path, 64, &data, &len, &err) == 0 && strcmp(data, "new") == 0 &&
	   stat(path, &st) == 0 && (st.st_mode & 07777) == 0600,
	   "r.json holds the new bytes and keeps its mode");
	free(data);
	data = NULL;
	free(path);
	path = fs_join(dir, "n.csv");
	ok(path && fs_atomic_open(&fa, path, 0640, &err) == 0 &&
	   fs_atomic_commit(&fa, &err) == 0 && stat(path, &st) == 0 &&
	   (st.st_mode & 07777) == 0640 && st.st_size == 0,
	   "a new file made empty with exactly the mode asked");
	ok(fs_atomic_open(&fa, "/nonexistent/mailshift/r.json", 0644, &err) < 0 &&
	   err.code == MS_ERR_IO && strstr(err.msg, "/nonexistent/mailshift/"),
	   "a folder that does not exist: an error naming it");
	if (path)
		unlink(path);
	free(path);
	path = NULL;
	{
		const char *names[] = { "r.json", live, ".r.json.tmp.x.0" };
		size_t i;

		for (i = 0; i < 3; i++)
			if ((path = fs_join(dir, names[i]))) {
				unlink(path);
				free(path);
			}
	}
	ok(rmdir(dir) == 0, "nothing else left in the folder");
}

int main(void)
{
	char hex[65];

	digest_sha256_hex("abc", 3, hex);
	is(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	   "sha256");
	{
		size_t len = 0;
		long pid = 0;

		ok(fs_temp_name_parse(".recon.ini.tmp.4194303.0", &len, &pid) == 1 &&
		   len == 9 && pid == 4194303, "a temporary file of recon.ini by 4194303");
		ok(fs_temp_name_parse(".a.tmp.b.tmp.12.3", &len, &pid) == 1 &&
		   len == 7 && pid == 12, "a NAME holding .tmp. itself");
		ok(!fs_temp_name_parse("recon.ini.tmp.1.0", &len, &pid) &&
		   !fs_temp_name_parse(".recon.ini.tmp.1.", &len, &pid) &&
		   !fs_temp_name_parse(".recon.ini.tmp.x.0", &len, &pid) &&
		   !fs_temp_name_parse(".recon.ini.tmp.1.0x", &len, &pid) &&
		   !fs_temp_name_parse("..tmp.1.0", &len, &pid),
		   "not temporary files: no dot, no counter, no PID, junk, no NAME");
	}
	test_fs_temps();
	test_map();
	test_transports();
	test_notify_and_port();
	test_commands();
	test_exports();
	test_diff();
	golden_dir("samples/ini", "ini", 0);
	golden_dir("samples/fleet/machines", "fleet", 0);
	test_map_endpoints();
	endpoint_golden("samples/ini/example1-crlf-bom.ini", "example1-crlf-bom.ini",
			MT_KEEP);
	endpoint_golden("samples/ini/example3-utf16le-bom-crlf.ini",
			"example3-utf16le-bom-crlf.ini", MT_POP);
	endpoint_golden("samples/fleet/machines/WINAPP01/D/Jobs/finance/ap.ini",
			"fleet-ap.ini", MT_IMAP);
	endpoint_golden("samples/fleet/machines/WINAPP01/D/Jobs/finance/recon.ini",
			"fleet-recon-graph.ini", MT_GRAPH);
	test_seal_bytes();
	test_fs_batch();
	test_fs_stage();
	test_stage();
	return done_testing();
}
