/* test_utf8.c - base/utf8: the one decoder (overlong, surrogates,
 * truncated, out of range) and encoder. */
#include <stdint.h>
#include <string.h>

#include "tap.h"
#include "base/utf8.h"

static size_t dec(const char *s, size_t n, uint32_t *cp)
{
	*cp = 0xDEAD;
	return utf8_decode(s, n, cp);
}

int main(void)
{
	uint32_t cp, c;
	char o[4];
	int bad = 0;

	is_int(dec("A", 1, &cp), 1, "ASCII: one byte");
	is_int(cp, 'A', "ASCII: its code point");
	is_int(dec("\xC3\xA9", 2, &cp), 2, "U+00E9: two bytes");
	is_int(cp, 0xE9, "U+00E9");
	is_int(dec("\xE2\x82\xAC", 3, &cp), 3, "U+20AC: three bytes");
	is_int(cp, 0x20AC, "U+20AC");
	is_int(dec("\xF0\x9F\x98\x80", 4, &cp), 4, "U+1F600: four bytes");
	is_int(cp, 0x1F600, "U+1F600");
	is_int(dec("\xF4\x8F\xBF\xBF", 4, &cp), 4, "U+10FFFF is the last");
	is_int(dec("\xEF\xBF\xBF", 3, &cp), 3, "U+FFFF decodes");

	/* overlong */
	is_int(dec("\xC0\xAF", 2, &cp), 0, "overlong '/' in two bytes (C0 AF)");
	is_int(dec("\xC1\xBF", 2, &cp), 0, "overlong C1 BF");
	is_int(dec("\xE0\x80\xAF", 3, &cp), 0, "overlong '/' in three bytes");
	is_int(dec("\xE0\x9F\xBF", 3, &cp), 0, "overlong U+07FF in three bytes");
	is_int(dec("\xF0\x80\x80\xAF", 4, &cp), 0, "overlong '/' in four bytes");
	is_int(dec("\xF0\x8F\xBF\xBF", 4, &cp), 0, "overlong U+FFFF in four bytes");
	is_int(cp, 0xDEAD, "an invalid sequence leaves *cp alone");

	/* surrogates and range */
	is_int(dec("\xED\xA0\x80", 3, &cp), 0, "U+D800 (high surrogate) refused");
	is_int(dec("\xED\xBF\xBF", 3, &cp), 0, "U+DFFF (low surrogate) refused");
	is_int(dec("\xED\x9F\xBF", 3, &cp), 3, "U+D7FF, just below, decodes");
	is_int(dec("\xED\xA0\x80\xED\xB0\x80", 6, &cp), 0, "CESU-8 pair refused");
	is_int(dec("\xF4\x90\x80\x80", 4, &cp), 0, "U+110000 refused");
	is_int(dec("\xF5\x80\x80\x80", 4, &cp), 0, "F5 lead refused");
	is_int(dec("\xFF", 1, &cp), 0, "FF refused");

	/* truncated and stray */
	is_int(dec("\xC3", 1, &cp), 0, "two-byte sequence cut at one");
	is_int(dec("\xE2\x82", 2, &cp), 0, "three-byte sequence cut at two");
	is_int(dec("\xF0\x9F\x98", 3, &cp), 0, "four-byte sequence cut at three");
	is_int(dec("\xE2\x82\xAC", 2, &cp), 0, "n is a hard limit");
	is_int(dec("\xE2\x82", 4, &cp), 0, "NUL-terminated: stops at the NUL");
	is_int(dec("\xE2" "A" "\xAC", 3, &cp), 0, "ASCII inside a sequence");
	is_int(dec("\x80", 1, &cp), 0, "stray continuation byte");
	is_int(dec("", 0, &cp), 0, "nothing to decode");
	ok(utf8_decode("\xC3\xA9", 2, NULL) == 2, "cp may be NULL");

	ok(utf8_valid("caf\xC3\xA9 \xE2\x82\xAC", 9), "valid text");
	ok(!utf8_valid("caf\xE9", 4), "Windows-1252 text is not UTF-8");
	ok(utf8_valid("", 0), "empty text is valid");

	/* the encoder round-trips every scalar value */
	for (c = 0; c <= 0x10FFFF; c++) {
		size_t n;
		if (c >= 0xD800 && c <= 0xDFFF)
			continue;
		n = utf8_encode(c, o);
		if (utf8_decode(o, n, &cp) != n || cp != c)
			bad++;
	}
	is_int(bad, 0, "encode then decode: every scalar value round-trips");
	is_int(utf8_encode(0x7F, o), 1, "U+007F: one byte");
	is_int(utf8_encode(0x80, o), 2, "U+0080: two bytes");
	is_int(utf8_encode(0x800, o), 3, "U+0800: three bytes");
	is_int(utf8_encode(0x10000, o), 4, "U+10000: four bytes");
	ok(memcmp(o, "\xF0\x90\x80\x80", 4) == 0, "U+10000 as F0 90 80 80");
	return done_testing();
}
