/*
 * utf8.c - UTF-8 decoding and encoding (utf8.h).
 */
#include "base/utf8.h"

size_t utf8_decode(const char *p, size_t n, uint32_t *cp)
{
	const unsigned char *s = (const unsigned char *)p;
	uint32_t c;
	size_t k, i;

	if (n == 0)
		return 0;
	c = s[0];
	if (c < 0x80)
		k = 1;
	else if (c >= 0xC2 && c <= 0xDF)
		k = 2, c &= 0x1F;
	else if (c >= 0xE0 && c <= 0xEF)
		k = 3, c &= 0x0F;
	else if (c >= 0xF0 && c <= 0xF4)
		k = 4, c &= 0x07;
	else
		return 0;       /* continuation byte, C0/C1, F5..FF */
	if (n < k)
		return 0;
	for (i = 1; i < k; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if ((k == 3 && c < 0x800) || (k == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
	    (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	if (cp)
		*cp = c;
	return k;
}

size_t utf8_encode(uint32_t cp, char *o)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

int utf8_valid(const char *p, size_t n)
{
	size_t i = 0, k;

	while (i < n) {
		if (!(k = utf8_decode(p + i, n - i, NULL)))
			return 0;
		i += k;
	}
	return 1;
}
