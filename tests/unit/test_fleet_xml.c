/* test_fleet_xml.c - Schedule Extract exports: the subset scanner against
 * libxml2 (issue 16).  Whatever the scanner reads, or gives up on half
 * way, the jobs, counts, problems and lines must be libxml2's own: on
 * edge cases, on exports whose every part lands on the 64 KB read
 * buffer's edge, and on thousands of random mutations of an export. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/fleet_int.h"
#include "base/buf.h"
#include "tap.h"

static char top[256], path[512];

/* What a scan hands over, one line per call. */
static int on_job(const struct fleet_job *j, void *ctx, struct ms_err *err)
{
	(void)err;
	return buf_appendf(ctx, NULL, "job %d [%s] [%s] [%s] [%s] [%s] [%s] [%s]\n", j->line,
			   j->schedule, j->name, j->machine, j->job_type,
			   j->command_line ? j->command_line : "(null)",
			   j->working_dir ? j->working_dir : "(null)",
			   j->batch_user ? j->batch_user : "(null)");
}

static int on_other(size_t n, void *ctx, struct ms_err *err)
{
	(void)err;
	return buf_appendf(ctx, NULL, "other %zu\n", n);
}

static void on_problem(const char *file, int line, const char *msg, void *ctx)
{
	(void)file;
	buf_appendf(ctx, NULL, "problem %d %s\n", line, msg);
}

static void write_file(const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(2);
	}
}

/* One read of path: its log in b, the result code; *handed as
 * fleet_scan_xml_as() sets it. */
static int scan_log(struct buf *b, enum fleet_xml_how how, int other, size_t *handed)
{
	struct ms_err err = MS_ERR_INIT;
	struct fleet_handlers h = { .job = on_job, .problem = on_problem,
				   .other = other ? on_other : NULL };
	int rc;

	buf_reset(b);
	h.ctx = b;
	rc = fleet_scan_xml_as(path, "x.xml", &h, how, handed, &err);
	buf_appendf(b, NULL, "rc %d\n", rc < 0 ? -1 : 0);
	return rc;
}

/* libxml2 alone and the scanner with libxml2 behind it: the same log.
 * *whole: the scanner read the file to its end by itself. */
static int same_as_libxml2(const char *data, size_t len, int other, int *whole, char **why)
{
	struct buf a, b, c;
	size_t handed = 0;
	int same, rc;

	write_file(data, len);
	buf_init(&a, 1 << 24);
	buf_init(&b, 1 << 24);
	buf_init(&c, 1 << 24);
	scan_log(&a, FLEET_XML_LIBXML2, other, NULL);
	scan_log(&b, FLEET_XML_AUTO, other, NULL);
	rc = scan_log(&c, FLEET_XML_SUBSET, other, &handed);
	*whole = rc == 0;
	same = strcmp(a.data, b.data) == 0 &&
	       /* by itself, the scanner hands over nothing libxml2 would not */
	       (rc != 0 || strcmp(a.data, c.data) == 0);
	if (!same && why) {
		*why = malloc(a.len + b.len + c.len + 64);
		sprintf(*why, "libxml2:\n%sauto:\n%ssubset (rc %d):\n%s", a.data, b.data, rc,
			c.data);
	}
	buf_release(&a);
	buf_release(&b);
	buf_release(&c);
	return same;
}

static void show(const char *why)
{
	const char *p = why;

	while (p && *p) {
		const char *nl = strchr(p, '\n');
		int n = nl ? (int)(nl - p) : (int)strlen(p);

		printf("#   %.*s\n", n, p);
		p += n + (nl != NULL);
	}
}

#define JOB(skd, jn, cmd) \
	"  <job>\r\n    <skdname>" skd "</skdname>\r\n    <jname>" jn "</jname>\r\n" \
	"    <pmname>WIN01</pmname>\r\n    <jobtype>Windows</jobtype>\r\n" \
	"    <jdesc>nightly &amp; weekly</jdesc>\r\n    <jobdata>\r\n" \
	"      <cmd_line>" cmd "</cmd_line>\r\n      <working_dir>D:\\Jobs</working_dir>\r\n" \
	"      <wuid>CONTOSO\\svc</wuid>\r\n    </jobdata>\r\n  </job>\r\n"
#define HEAD "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<!-- Schedule Extract -->\r\n<jobs>\r\n"
#define TAIL "</jobs>\r\n"

/* Documents the scanner reads by itself (1) or gives up on (0); either
 * way the same as libxml2. */
static const struct { const char *name; const char *doc; int whole; } cases[] = {
	{ "a plain export", HEAD JOB("S1", "J1", "smartemail.exe -inifile:a.ini")
	  JOB("S1", "J2", "robocopy a b") TAIL, 1 },
	{ "LF only, no declaration", "<jobs>\n<job><jname>A</jname>"
	  "<cmd_line>smartemail</cmd_line></job>\n</jobs>\n", 1 },
	{ "a BOM", "\xEF\xBB\xBF" HEAD JOB("S", "J", "smartemail") TAIL, 1 },
	{ "a BOM, no declaration", "\xEF\xBB\xBF<jobs><job><jname>B</jname></job></jobs>", 1 },
	{ "declaration without encoding", "<?xml version=\"1.0\"?>\n<msg><job>"
	  "<cmd_line>smartemail</cmd_line></job></msg>", 1 },
	{ "declaration in single quotes, UTF-8 in capitals",
	  "<?xml version='1.0' encoding='UTF-8'?><jobs><job><jname>Q</jname></job></jobs>", 1 },
	{ "declaration: latin-1", "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<jobs><job>"
	  "<jname>caf\xE9</jname><cmd_line>smartemail</cmd_line></job></jobs>", 0 },
	{ "declaration: standalone", "<?xml version=\"1.0\" standalone=\"yes\"?><jobs/>", 0 },
	{ "declaration: version 1.1", "<?xml version=\"1.1\"?><jobs/>", 0 },
	{ "declaration after a blank", " <?xml version=\"1.0\"?><jobs/>", 0 },
	{ "the root is one job", "<job><jname>R</jname><cmd_line>smartemail x</cmd_line></job>", 1 },
	{ "an empty root", "<jobs/>", 1 },
	{ "an empty root with a blank", "<jobs />\r\n", 1 },
	{ "a root that is not an export", "<html><job/></html>", 0 },
	{ "no root", "<!-- nothing -->\n", 0 },
	{ "empty file", "", 0 },
	{ "blanks only", " \r\n\t\n", 0 },
	{ "<job/> is no job", "<jobs>\n<job/>\n<job />\n<job><jname>X</jname></job>\n</jobs>", 1 },
	{ "<job></job> is a job", "<jobs><job></job></jobs>", 1 },
	{ "a job in a job", "<jobs><job><jname>O</jname><job><jname>I</jname></job>"
	  "<cmd_line>c</cmd_line></job></jobs>", 1 },
	{ "fields outside a job", "<jobs><jname>N</jname><cmd_line>smartemail</cmd_line>"
	  "<job><jname>Y</jname></job></jobs>", 1 },
	{ "text after a child of a field", "<jobs><job><cmd_line>smart<b>x</b>email</cmd_line>"
	  "</job></jobs>", 1 },
	{ "a comment in a field", "<jobs><job><cmd_line>smart<!-- c -->email</cmd_line>"
	  "</job></jobs>", 1 },
	{ "multi-line start tags", "<jobs>\n<job\n>\n<jname\r\n>M</jname\n>\n"
	  "<cmd_line   >smartemail</cmd_line\t>\n</job   \n>\n<job\n\n/>\n</jobs>", 1 },
	{ "entities", "<jobs><job><jname>&lt;a&gt; &amp; &quot;b&quot; &apos;c&apos;</jname>"
	  "<cmd_line>smartemail -x:&quot;a b&quot;</cmd_line></job></jobs>", 1 },
	{ "a character reference", "<jobs><job><jname>&#65;&#x42;</jname></job></jobs>", 0 },
	{ "an undefined entity", "<jobs><job><jname>&nbsp;</jname></job></jobs>", 0 },
	{ "a bare ampersand", "<jobs><job><jname>a & b</jname></job></jobs>", 0 },
	{ "CR LF inside a field", "<jobs><job><cmd_line>smartemail\r\n-inifile:a\r\n</cmd_line>"
	  "</job></jobs>", 1 },
	{ "a lone CR", "<jobs><job><cmd_line>smartemail\r-x</cmd_line></job></jobs>", 0 },
	{ "UTF-8 in fields", "<jobs><job><jname>caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80</jname>"
	  "<cmd_line>smartemail</cmd_line></job></jobs>", 1 },
	{ "bad UTF-8", "<jobs><job><jname>caf\xE9</jname></job></jobs>", 0 },
	{ "an overlong sequence", "<jobs><job><jname>\xC0\xAF</jname></job></jobs>", 0 },
	{ "a surrogate in UTF-8", "<jobs><job><jname>\xED\xA0\x80</jname></job></jobs>", 0 },
	{ "U+FFFE", "<jobs><job><jname>\xEF\xBF\xBE</jname></job></jobs>", 0 },
	{ "a control character", "<jobs><job><jname>a\x01</jname></job></jobs>", 0 },
	{ "a NUL", "<jobs><job><jname>a\0b</jname></job></jobs>", 0 },
	{ "]]> in text", "<jobs><job><jname>a]]>b</jname></job></jobs>", 0 },
	{ "] and ]] in text", "<jobs><job><jname>a]b]]c]</jname></job></jobs>", 1 },
	{ "> in text", "<jobs><job><jname>a>b</jname></job></jobs>", 1 },
	{ "CDATA", "<jobs><job><cmd_line><![CDATA[smartemail <x>]]></cmd_line></job></jobs>", 0 },
	{ "a DOCTYPE", "<!DOCTYPE jobs>\n<jobs><job/></jobs>", 0 },
	{ "an internal entity", "<!DOCTYPE jobs [<!ENTITY e \"smartemail\">]>\n"
	  "<jobs><job><cmd_line>&e;</cmd_line></job></jobs>", 0 },
	{ "a processing instruction", "<jobs><?pi x?><job><jname>P</jname></job></jobs>", 0 },
	{ "an attribute", "<jobs><job id=\"1\"><jname>A1</jname></job></jobs>", 0 },
	{ "an attribute on the third job", "<jobs>\n<job><jname>1</jname><cmd_line>smartemail"
	  "</cmd_line></job>\n<job><jname>2</jname><cmd_line>robocopy</cmd_line></job>\n"
	  "<job n=\"3\"><jname>3</jname><cmd_line>smartemail</cmd_line></job>\n"
	  "<job><jname>4</jname></job>\n</jobs>\n", 0 },
	{ "a namespace", "<x:jobs xmlns:x=\"urn:x\"><x:job><x:jname>N</x:jname></x:job></x:jobs>", 0 },
	{ "a prefix without its namespace", "<jobs><a:job><jname>N</jname></a:job></jobs>", 0 },
	{ "names with dots and dashes", "<jobs><job><x.y-z_1>t</x.y-z_1><jname>D</jname></job>"
	  "</jobs>", 1 },
	{ "a name starting with a digit", "<jobs><job><1a/></job></jobs>", 0 },
	{ "a non-ASCII name", "<jobs><job><caf\xC3\xA9>t</caf\xC3\xA9></job></jobs>", 0 },
	{ "mismatched end tag", "<jobs><job><jname>M</jobs></job>", 0 },
	{ "end tag with no start", "<jobs></job></jobs>", 0 },
	{ "an end tag closed as empty", "<jobs><job><jname>E</jname></job/></jobs>", 0 },
	{ "truncated in a tag", "<jobs><job><jname>T</jname></jo", 0 },
	{ "truncated in text", "<jobs><job><jname>T</jname>", 0 },
	{ "truncated after a job", "<jobs><job><jname>T</jname><cmd_line>smartemail</cmd_line>"
	  "</job>\n", 0 },
	{ "text after the root", "<jobs/>x", 0 },
	{ "a second root", "<jobs/><jobs/>", 0 },
	{ "text before the root", "x<jobs/>", 0 },
	{ "comments before and after", "<!-- a -->\r\n<jobs><job><jname>C</jname></job></jobs>"
	  "\r\n<!-- b\r\n c -->\r\n", 1 },
	{ "-- in a comment", "<jobs><!-- a -- b --><job/></jobs>", 0 },
	{ "---> ends a comment", "<jobs><!-- a ---><job/></jobs>", 0 },
	{ "an empty comment", "<jobs><!----><job><jname>E</jname></job></jobs>", 1 },
	{ "an unclosed comment", "<jobs><!-- a <job/></jobs>", 0 },
	{ "a field over 64 KB", NULL, 0 },
	{ "deep nesting", NULL, 0 },
};

static void test_cases(void)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *doc = (char *)cases[i].doc, *why = NULL;
		size_t len = doc ? strlen(doc) : 0;
		int whole = -1, other;

		if (!doc && strstr(cases[i].name, "64 KB")) {
			doc = malloc(70000 + 100);
			len = (size_t)sprintf(doc, "<jobs><job><cmd_line>smartemail ");
			memset(doc + len, 'x', 70000);
			len += 70000;
			len += (size_t)sprintf(doc + len, "</cmd_line></job></jobs>");
		} else if (!doc) {
			int d;

			doc = malloc(200 * 16 + 100);
			len = (size_t)sprintf(doc, "<jobs><job><jname>deep</jname>");
			for (d = 0; d < 100; d++)
				len += (size_t)sprintf(doc + len, "<d%d>", d);
			for (d = 99; d >= 0; d--)
				len += (size_t)sprintf(doc + len, "</d%d>", d);
			len += (size_t)sprintf(doc + len, "</job></jobs>");
		} else if (strcmp(cases[i].name, "a NUL") == 0) {
			len = strlen(doc) + 1 + strlen(doc + strlen(doc) + 1);
		}
		for (other = 0; other <= 1; other++) {
			int same = same_as_libxml2(doc, len, other, &whole, &why);

			ok(same, "%s%s: as libxml2 reads it", cases[i].name,
			   other ? " (other jobs counted)" : "");
			if (!same)
				show(why);
			free(why);
			why = NULL;
		}
		ok(whole == cases[i].whole, "%s: %s", cases[i].name,
		   cases[i].whole ? "the scanner reads it by itself" : "the scanner leaves it to libxml2");
		if (doc != cases[i].doc)
			free(doc);
	}
}

/* A job that makes the scanner give up half way: the jobs it handed over
 * are not handed over twice, nor lost. */
static void test_give_up_half_way(void)
{
	const char *doc = "<jobs>\n<job><jname>1</jname><cmd_line>smartemail</cmd_line></job>\n"
			  "<job><jname>2</jname><cmd_line>robocopy</cmd_line></job>\n"
			  "<job n=\"3\"><jname>3</jname><cmd_line>smartemail</cmd_line></job>\n"
			  "<job><jname>4</jname><cmd_line>smartemail</cmd_line></job>\n</jobs>\n";
	struct buf b;
	size_t handed = 0;

	buf_init(&b, 1 << 20);
	write_file(doc, strlen(doc));
	ok(scan_log(&b, FLEET_XML_SUBSET, 1, &handed) == 1 && handed == 2,
	   "the scanner gives up at the third job, two handed over (%zu)", handed);
	scan_log(&b, FLEET_XML_AUTO, 1, NULL);
	is(b.data, "job 2 [] [1] [] [] [smartemail] [(null)] [(null)]\nother 1\n"
	   "job 4 [] [3] [] [] [smartemail] [(null)] [(null)]\n"
	   "job 5 [] [4] [] [] [smartemail] [(null)] [(null)]\nrc 0\n",
	   "then libxml2: each job once, in order, with its line");
	buf_release(&b);
}

/* A realistic export of about 400 KB, shifted byte by byte so that each
 * part (CR LF, an entity, a tag, a UTF-8 character, a comment) lands on
 * the edge of the 64 KB read buffer in one of the runs. */
static void test_buffer_edges(void)
{
	struct buf d;
	int shift, k, bad = 0, whole_all = 1;

	buf_init(&d, 1 << 22);
	for (shift = 0; shift < 48; shift++) {
		char *why = NULL;
		int whole;

		buf_reset(&d);
		buf_appendf(&d, NULL, HEAD "<!-- %.*s -->\r\n", shift,
			    "................................................");
		for (k = 0; k < 600; k++)
			buf_appendf(&d, NULL,
				    "  <job>\r\n    <skdname>S%d</skdname>\r\n    <jname>caf\xC3\xA9-%d"
				    "</jname>\r\n    <jdesc>a &amp; b &lt;%d&gt; \xE2\x82\xAC ]] "
				    "<!-- c --> x</jdesc>\r\n    <jobdata>\r\n      <cmd_line>%s "
				    "-inifile:&quot;D:\\a b\\%d.ini&quot;</cmd_line>\r\n"
				    "      <wuid>U</wuid>\r\n    </jobdata>\r\n  </job>\r\n",
				    k, k, k, k % 7 ? "robocopy" : "smartemail.exe", k);
		buf_appendf(&d, NULL, TAIL);
		if (!same_as_libxml2(d.data, d.len, shift % 2, &whole, &why)) {
			if (!bad++)
				show(why);
		}
		whole_all &= whole;
		free(why);
	}
	ok(bad == 0, "48 shifts of a 400 KB export across the read buffer: as libxml2 (%d differ)",
	   bad);
	ok(whole_all, "... each read by the scanner by itself");
	buf_release(&d);
}

/* Random mutations of an export: whatever the scanner makes of them,
 * what is handed over is what libxml2 hands over. */
static void test_mutations(void)
{
	static const char seed[] = "\xEF\xBB\xBF" HEAD
		JOB("S1", "caf\xC3\xA9", "smartemail.exe -inifile:&quot;a b.ini&quot;")
		"<!-- between -->\r\n"
		JOB("S1", "J2", "robocopy a b")
		JOB("S2", "J&amp;3", "C:\\PROGRA~1\\smartemail.exe")
		"  <job/>\r\n" TAIL;
	static const char alphabet[] = "<>&/]!?-= \r\n\t\"'a:;#x\xC3\xA9\xFF\x01";
	unsigned long rnd = 20261207;
	int i, bad = 0, whole_n = 0, runs = 4000;
	char doc[4096];

#define RND() (rnd = rnd * 6364136223846793005UL + 1442695040888963407UL, (unsigned)(rnd >> 33))
	for (i = 0; i < runs; i++) {
		size_t len = sizeof(seed) - 1, at, n;
		char *why = NULL;
		int m, edits = 1 + (int)(RND() % 3), whole;

		memcpy(doc, seed, len);
		for (m = 0; m < edits; m++) {
			at = RND() % (len + 1);
			switch (RND() % 5) {
			case 0:         /* delete a few bytes */
				n = 1 + RND() % 4;
				if (at + n > len)
					n = len - at;
				memmove(doc + at, doc + at + n, len - at - n);
				len -= n;
				break;
			case 1:         /* insert one */
			case 2:
				if (len + 1 >= sizeof(doc))
					break;
				memmove(doc + at + 1, doc + at, len - at);
				doc[at] = alphabet[RND() % (sizeof(alphabet) - 1)];
				len++;
				break;
			case 3:         /* change one */
				if (at < len)
					doc[at] = alphabet[RND() % (sizeof(alphabet) - 1)];
				break;
			default:        /* cut the end */
				len = at;
				break;
			}
		}
		if (!same_as_libxml2(doc, len, i % 2, &whole, &why)) {
			if (!bad++) {
				printf("# mutation %d:\n", i);
				fwrite(doc, 1, len, stdout);
				printf("\n");
				show(why);
			}
		}
		whole_n += whole;
		free(why);
	}
#undef RND
	ok(bad == 0, "%d mutations of an export: as libxml2 (%d differ)", runs, bad);
	/* most mutations leave the subset; enough must stay in it for the
	 * comparison to mean something */
	ok(whole_n > runs / 20, "... %d of them read by the scanner by itself", whole_n);
}

int main(void)
{
	snprintf(top, sizeof(top), "%s/test_fleet_xml.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(top)) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/x.xml", top);
	test_cases();
	test_give_up_half_way();
	test_buffer_edges();
	test_mutations();
	unlink(path);
	rmdir(top);
	return done_testing();
}
