/* test_compat.c - base/compat: strndup, memmem and strcasestr in portable C. */
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "base/compat.h"

int main(void)
{
	const char hay[] = "ab\0abcabd";   /* a NUL inside: memmem goes on */
	const char *t;
	char *s;

	s = ms_strndup("hello", 3);
	is(s, "hel", "ms_strndup cuts at n");
	free(s);
	s = ms_strndup("hi", 10);
	is(s, "hi", "ms_strndup stops at the NUL before n");
	free(s);
	s = ms_strndup("x", 0);
	is(s, "", "ms_strndup of 0 bytes is an empty string");
	free(s);

	ok(ms_memmem(hay, sizeof(hay) - 1, "abd", 3) == hay + 6,
	   "ms_memmem finds a needle past a NUL byte");
	ok(ms_memmem(hay, sizeof(hay) - 1, "abc", 3) == hay + 3,
	   "ms_memmem skips a partial match");
	ok(ms_memmem(hay, sizeof(hay) - 1, "abe", 3) == NULL, "ms_memmem: absent");
	ok(ms_memmem(hay, 2, "abc", 3) == NULL, "ms_memmem: needle longer than hay");
	ok(ms_memmem(hay, 8, "abd", 3) == NULL,
	   "ms_memmem never reads past hlen (the match ends at byte 9)");
	ok(ms_memmem(hay, 3, "", 0) == hay, "ms_memmem: an empty needle is at the start");

	t = "Authorization: Bearer x";
	ok(ms_strcasestr(t, "authorization:") == t, "ms_strcasestr ignores case");
	ok(ms_strcasestr("550 5.7.1 SENDER rejected", "sender") != NULL &&
	   strncmp(ms_strcasestr("550 5.7.1 SENDER rejected", "sender"), "SENDER", 6) == 0,
	   "ms_strcasestr returns the match in s");
	ok(ms_strcasestr("recipient", "sender") == NULL, "ms_strcasestr: absent");
	ok(ms_strcasestr("sen", "sender") == NULL, "ms_strcasestr: s shorter than the needle");
	t = "abc";
	ok(ms_strcasestr(t, "") == t, "ms_strcasestr: an empty needle is at the start");
	return done_testing();
}
