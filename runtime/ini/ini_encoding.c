/*
 * ini_encoding.c - the bytes of an INI file and its UTF-8 text, both ways
 * (see ini.h for the rules): UTF-8 checking, UTF-16 decoding and
 * encoding, recognising BOM-less UTF-16, and Windows-1252 ("ANSI") files.
 */
#include "ini/ini_int.h"

#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "base/utf8.h"

/* ---- decoding ---- */

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
size_t ini_utf8_seq(const unsigned char *p, size_t n, uint32_t *cp)
{
	return utf8_decode((const char *)p, n, cp);
}

static int count_line(const char *p, size_t n)
{
	int line = 1;
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == '\n')
			line++;
		else if (p[i] == '\r' && !(i + 1 < n && p[i + 1] == '\n'))
			line++;
	}
	return line;
}

int ini_check_utf8(const char *name, const char *p, size_t n,
		   struct ms_err *err)
{
	size_t i = 0, k;
	uint32_t cp;

	while (i < n) {
		/* plain ASCII (no NUL, no high bit) 8 bytes at a time */
		while (n - i >= 8) {
			uint64_t w;

			memcpy(&w, p + i, 8);
			if ((w & 0x8080808080808080ULL) ||
			    ((w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL))
				break;
			i += 8;
		}
		if (i >= n)
			break;
		if (p[i] == '\0')
			return err_set_line(err, MS_ERR_CONFIG, count_line(p, i),
					    "%s:%d: NUL byte in the file", name,
					    count_line(p, i));
		k = ini_utf8_seq((const unsigned char *)p + i, n - i, &cp);
		if (!k)
			return err_set_line(err, MS_ERR_CONFIG, count_line(p, i),
					    "%s:%d: invalid UTF-8 (byte 0x%02x at offset %zu); save the file as UTF-8 or UTF-16",
					    name, count_line(p, i),
					    (unsigned char)p[i], i);
		i += k;
	}
	return 0;
}

static int put_utf8(struct buf *b, uint32_t c, struct ms_err *err)
{
	char o[4];

	return buf_append(b, o, utf8_encode(c, o), err);
}

int ini_decode_utf16(const char *name, const unsigned char *p, size_t n,
		     int be, struct buf *out, struct ms_err *err)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2) {
		uint32_t u = be ? (uint32_t)(p[i] << 8 | p[i + 1])
				: (uint32_t)(p[i + 1] << 8 | p[i]);
		if (u == 0) {
			int line = count_line(out->data ? out->data : "", out->len);
			return err_set_line(err, MS_ERR_CONFIG, line,
					    "%s:%d: NUL character in the file", name, line);
		}
		if (u >= 0xd800 && u <= 0xdbff && i + 3 < n) {
			uint32_t v = be ? (uint32_t)(p[i + 2] << 8 | p[i + 3])
					: (uint32_t)(p[i + 3] << 8 | p[i + 2]);
			if (v >= 0xdc00 && v <= 0xdfff) {
				u = 0x10000 + ((u - 0xd800) << 10) + (v - 0xdc00);
				i += 2;
			}
		}
		if (u >= 0xd800 && u <= 0xdfff) {
			int line = count_line(out->data ? out->data : "", out->len);
			return err_set_line(err, MS_ERR_CONFIG, line,
					    "%s:%d: invalid UTF-16 (unpaired surrogate at offset %zu)",
					    name, line, i);
		}
		if (put_utf8(out, u, err) < 0)
			return -1;
	}
	if (n % 2) {
		int line = count_line(out->data ? out->data : "", out->len);
		return err_set_line(err, MS_ERR_CONFIG, line,
				    "%s:%d: UTF-16 file has an odd number of bytes (%zu)",
				    name, line, n);
	}
	return 0;
}

/*
 * Is p[0..n) valid UTF-16 in that byte order (no NUL, every surrogate
 * paired)?  *syntax counts the units that are INI syntax characters:
 * '[', ']', '=', CR and LF.
 */
static int utf16_scan(const unsigned char *p, size_t n, int be, size_t *syntax)
{
	size_t i;

	*syntax = 0;
	if (n % 2)
		return 0;
	for (i = 0; i < n; i += 2) {
		uint32_t u = be ? (uint32_t)(p[i] << 8 | p[i + 1])
				: (uint32_t)(p[i + 1] << 8 | p[i]);

		if (u == 0)
			return 0;
		if (u >= 0xd800 && u <= 0xdbff) {
			uint32_t v;

			if (i + 3 >= n)
				return 0;
			v = be ? (uint32_t)(p[i + 2] << 8 | p[i + 3])
			       : (uint32_t)(p[i + 3] << 8 | p[i + 2]);
			if (v < 0xdc00 || v > 0xdfff)
				return 0;
			i += 2;
			continue;
		}
		if (u >= 0xdc00 && u <= 0xdfff)
			return 0;
		*syntax += u == '[' || u == ']' || u == '=' || u == '\r' ||
			   u == '\n';
	}
	return 1;
}

/*
 * UTF-16 without a BOM.  Recognised first by structure, so that a file
 * whose text is mostly non-ASCII (no share of zero bytes to speak of)
 * is still recognised, before and after an edit: the bytes are valid
 * UTF-16 in one byte order, and the INI syntax characters appear as
 * 16-bit units of that order more often than of the other (in UTF-8
 * they cannot appear at all: each such unit holds a zero byte).  When
 * that does not decide, the old rule: most odd (LE) or even (BE) bytes
 * are zero, which also catches a damaged UTF-16 file, so that the
 * decoder names the damage.  ini_serialize() checks that what it wrote
 * reads back, for the cases neither rule gets right.
 */
int ini_guess_utf16(const unsigned char *p, size_t n, int *be)
{
	size_t i, z_even = 0, z_odd = 0, half, syn_le, syn_be;
	int ok_le, ok_be;

	/* no zero byte: no syntax unit of either order (each holds one)
	 * and no share of zero bytes, so neither rule can say UTF-16 */
	if (n < 2 || !memchr(p, 0, n))
		return 0;
	ok_le = utf16_scan(p, n, 0, &syn_le);
	ok_be = utf16_scan(p, n, 1, &syn_be);
	if (!ok_le)
		syn_le = 0;
	if (!ok_be)
		syn_be = 0;
	if (syn_le != syn_be) {
		*be = syn_be > syn_le;
		return 1;
	}
	for (i = 0; i + 1 < n; i += 2) {
		z_even += p[i] == 0;
		z_odd += p[i + 1] == 0;
	}
	half = n / 2;
	if (z_odd * 2 >= half && z_even * 8 < z_odd) {
		*be = 0;
		return 1;
	}
	if (z_even * 2 >= half && z_odd * 8 < z_even) {
		*be = 1;
		return 1;
	}
	return 0;
}

/* Windows-1252 0x80..0x9F as Unicode (0 = undefined); 0xA0..0xFF are
 * Latin-1, the same code points. */
static const uint16_t cp1252_c1[32] = {
	0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
	0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178
};

int ini_is_cp1252(const char *data, size_t len)
{
	const unsigned char *u = (const unsigned char *)data;
	struct ms_err e = MS_ERR_INIT;
	int high = 0;

	if (len >= 2 && ((u[0] == 0xff && u[1] == 0xfe) || (u[0] == 0xfe && u[1] == 0xff)))
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (u[i] == 0)
			return 0;
		if (u[i] >= 0x80 && u[i] <= 0x9f && !cp1252_c1[u[i] - 0x80])
			return 0;
		high |= u[i] >= 0x80;
	}
	return high && ini_check_utf8("", data, len, &e) < 0;
}

int ini_parse_any(struct ini **out, const char *name, const char *data,
		  size_t len, int *was_cp1252, struct ms_err *err)
{
	struct buf b;
	int rc;

	*was_cp1252 = 0;
	if (!ini_is_cp1252(data, len))
		return ini_parse(out, name, data, len, err);
	buf_init(&b, INI_MAX_FILE * 3 + 3);
	if (buf_append(&b, "\xef\xbb\xbf", 3, err) < 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)data[i];
		uint32_t cp = c < 0x80 ? c : c < 0xa0 ? cp1252_c1[c - 0x80] : c;

		if (put_utf8(&b, cp, err) < 0) {
			buf_release(&b);
			return -1;
		}
	}
	rc = ini_parse(out, name, b.data, b.len, err);
	buf_release(&b);
	if (rc == 0)
		*was_cp1252 = 1;
	return rc;
}
/* ---- output ---- */

/* ---- output ---- */

static int put_utf16(struct buf *b, uint32_t c, int be, struct ms_err *err)
{
	unsigned char o[4];
	uint32_t u[2];
	size_t k = 1, i;

	if (c >= 0x10000) {
		c -= 0x10000;
		u[0] = 0xd800 + (c >> 10);
		u[1] = 0xdc00 + (c & 0x3ff);
		k = 2;
	} else {
		u[0] = c;
	}
	for (i = 0; i < k; i++) {
		o[2 * i + (be ? 1 : 0)] = (unsigned char)(u[i] & 0xff);
		o[2 * i + (be ? 0 : 1)] = (unsigned char)(u[i] >> 8);
	}
	return buf_append(b, o, 2 * k, err);
}

int ini_put_text(struct buf *b, const struct ini *ini, const char *s,
		 size_t n, struct ms_err *err)
{
	int be = ini->enc == INI_ENC_UTF16BE || ini->enc == INI_ENC_UTF16BE_BOM;
	size_t i, k;
	uint32_t cp;

	if (ini->enc == INI_ENC_UTF8 || ini->enc == INI_ENC_UTF8_BOM)
		return buf_append(b, s, n, err);
	for (i = 0; i < n; i += k) {
		k = ini_utf8_seq((const unsigned char *)s + i, n - i, &cp);
		if (!k)
			return err_set(err, MS_ERR_INTERNAL,
				       "%s: invalid UTF-8 in memory", ini->name);
		if (put_utf16(b, cp, be, err) < 0)
			return -1;
	}
	return 0;
}
