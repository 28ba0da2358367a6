/*
 * utf8.h - the one UTF-8 decoder and encoder, and the one ASCII
 * case-insensitive comparison.
 *
 * Valid means RFC 3629: no overlong forms (C0, C1, E0 80..9F, F0 80..8F),
 * no UTF-16 surrogates (ED A0..BF), nothing above U+10FFFF (F4 90.., F5..),
 * no stray continuation byte, no sequence cut short.  What to do with an
 * invalid byte (refuse the file, write U+FFFD, pass it through) is the
 * caller's decision, so the decoder only says "0".
 */
#ifndef MS_UTF8_H
#define MS_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define UTF8_REPLACEMENT 0xFFFD

/* Decodes the sequence at p, of which n bytes may be read: returns its
 * length (1-4) with the code point in *cp (cp may be NULL), or 0 when the
 * bytes at p are not valid UTF-8 (n = 0 included).  On a NUL-terminated
 * string n may be larger than what is left: a NUL is never a
 * continuation byte, so decoding stops there. */
size_t utf8_decode(const char *p, size_t n, uint32_t *cp);

/* Writes cp (at most 0x10FFFF) as 1-4 bytes to o, returns how many. */
size_t utf8_encode(uint32_t cp, char *o);

/* Is every byte of p[0..n) part of a valid sequence? */
int utf8_valid(const char *p, size_t n);

/* strcasecmp() as the C locale has it and as SQLite's NOCASE collates:
 * ASCII letters folded, bytes compared unsigned.  Inline: it is called
 * for every key of every INI file (config.c) and every spilled job. */
static inline int ascii_casecmp(const char *a, const char *b)
{
	const unsigned char *p = (const unsigned char *)a,
			    *q = (const unsigned char *)b;
	int x, y;

	for (;; p++, q++) {
		x = *p >= 'A' && *p <= 'Z' ? *p + 32 : *p;
		y = *q >= 'A' && *q <= 'Z' ? *q + 32 : *q;
		if (x != y || !x)
			return x - y;
	}
}

#endif
