/* test_escape.c - base/escape: the one HTML/XML/JSON escaper of the
 * reports; hostile fleet text stays text, the output stays well-formed. */
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "base/buf.h"
#include "base/escape.h"

static struct buf out;

static const char *html(const char *s)
{
	struct ms_err err = MS_ERR_INIT;

	buf_reset(&out);
	return escape_html(&out, s, &err) == 0 ? out.data : "(error)";
}

static const char *markup(const char *s, unsigned flags)
{
	struct ms_err err = MS_ERR_INIT;

	buf_reset(&out);
	return escape_markup(&out, s, flags, &err) == 0 ? out.data : "(error)";
}

static const char *json(const char *s, unsigned flags)
{
	struct ms_err err = MS_ERR_INIT;

	buf_reset(&out);
	return escape_json(&out, s, flags, &err) == 0 ? out.data : "(error)";
}

static const char *csv(const char *s)
{
	struct ms_err err = MS_ERR_INIT;

	buf_reset(&out);
	return escape_csv(&out, s, &err) == 0 ? out.data : "(error)";
}

int main(void)
{
	struct ms_err err = MS_ERR_INIT;
	struct buf small;

	buf_init(&out, 1 << 20);
	is(html("<script>alert('x')</script> & \"q\""),
	   "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;",
	   "html: markup characters escaped");
	is(html("S\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x93\xA7"), "S\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x93\xA7",
	   "html: valid UTF-8 kept (2, 3 and 4 bytes)");
	is(html("bad\xFF\xFE" "end"), "bad\xEF\xBF\xBD\xEF\xBF\xBD" "end",
	   "html: each invalid byte becomes U+FFFD");
	is(html("over\xC0\xAF" "long"), "over\xEF\xBF\xBD\xEF\xBF\xBDlong",
	   "html: an overlong sequence is invalid");
	is(html("cut\xE2\x82"), "cut\xEF\xBF\xBD\xEF\xBF\xBD", "html: a sequence cut by the end");
	is(html("a\x01" "b\x7f" "c\tnl\n"), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c\tnl\n",
	   "html: control characters replaced, TAB and LF kept");
	is(html("\xEF\xBF\xBF"), "\xEF\xBF\xBD", "html: U+FFFF is not a character");
	is(html(NULL), "", "html: NULL is empty (and a C string)");
	is(markup("it's \"x\"\n\xED\xA0\x80", ESC_XML | ESC_ATTR_WS),
	   "it&apos;s &quot;x&quot;&#10;\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD",
	   "xml attribute: &apos;, newline as a reference, surrogate refused");
	is(markup("a \"b\" 'c' <d>", ESC_XML | ESC_KEEP_QUOTE), "a \"b\" 'c' &lt;d&gt;",
	   "xml text keeping its quotes");

	is(json("q\" b\\ t\t n\n c\x01", 0), "\"q\\\" b\\\\ t\\t n\\n c\\u0001\"",
	   "json: RFC 8259 escapes");
	is(json("</script><!--&", 0), "\"</script><!--&\"", "json: < kept without the flag");
	is(json("</script><!--&", ESC_JSON_SCRIPT),
	   "\"\\u003c/script\\u003e\\u003c!--\\u0026\"", "json in a script: < > & escaped");
	is(json("\xC3\xA9\xFF", ESC_JSON_SCRIPT), "\"\xC3\xA9\xEF\xBF\xBD\"",
	   "json: UTF-8 kept, invalid byte replaced");
	is(json(NULL, 0), "null", "json: NULL is null");
	is(json("", 0), "\"\"", "json: empty string");

	is(csv("plain, with a comma"), "\"plain, with a comma\"", "csv: a cell is quoted");
	is(csv("say \"hi\"\r\nbye"), "\"say \"\"hi\"\"\r\nbye\"",
	   "csv: quotes doubled, line breaks kept inside the quotes");
	is(csv("=HYPERLINK(\"http://x\")"), "\"'=HYPERLINK(\"\"http://x\"\")\"",
	   "csv: a formula gets a leading apostrophe");
	is(csv("+1"), "\"'+1\"", "csv: + defused");
	is(csv("-2+3"), "\"'-2+3\"", "csv: - defused");
	is(csv("@SUM(A1)"), "\"'@SUM(A1)\"", "csv: @ defused");
	is(csv("\tx"), "\"'\tx\"", "csv: a leading TAB defused");
	is(csv("a=b"), "\"a=b\"", "csv: = not at the start is data");
	is(csv(NULL), "\"\"", "csv: NULL is an empty cell");

	buf_init(&small, 8);
	ok(escape_html(&small, "<<<<", &err) < 0 && err.code == MS_ERR_TOOBIG,
	   "a full buffer is an error, not a cut string");
	buf_release(&small);
	buf_release(&out);
	return done_testing();
}
