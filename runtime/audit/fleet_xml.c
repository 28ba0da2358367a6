/*
 * fleet_xml.c - Schedule Extract exports (XML).
 *
 * libxml2 is the reference: its SAX parser, fed 64 KB at a time, reads
 * any export and names the line of any fault.  Real exports keep to a
 * plain subset of XML, though: UTF-8, no DTD, no attributes, no
 * namespaces, no CDATA, no processing instruction, only the five
 * predefined entities.  The subset scanner below reads that subset
 * about three times as fast (~0.05 s against libxml2's 0.15 s for the
 * 68 MB of XML of a realistic 100k fleet, where libxml2 was two fifths of
 * the export reader's time; issue 16) and gives up at the first thing
 * outside it or that libxml2 would refuse or report: then libxml2 reads
 * the file from its start and skips the jobs the scanner had handed
 * over.  Both drive the same job state (xj_start/xj_text/xj_end), so the
 * jobs are the same, in the same order, with the same lines, and every
 * fault is libxml2's own message.  tests/unit/test_fleet_xml.c holds
 * the two side by side on edge cases, across the read buffer's edge and
 * on random mutations of an export; tests/fuzz/fuzz_fleet.c fuzzes it.
 */
#include "audit/fleet_int.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/SAX2.h>

#include "base/buf.h"
#include "base/mem.h"

enum xfield { XF_NONE = -1, XF_SKD, XF_JNAME, XF_PM, XF_TYPE, XF_CMD, XF_WD,
	      XF_WUID, XF_COUNT };
static const char *const xfield_names[XF_COUNT] = {
	"skdname", "jname", "pmname", "jobtype", "cmd_line", "working_dir", "wuid"
};

#define XML_MAX_FIELD (64 * 1024)
#define XML_CHUNK 65536

struct xerr {
	int set;
	int line;
	char msg[512];
};

struct xscan {
	struct xerr xe;         /* the first error, as libxml2 reports it */
	xmlParserCtxtPtr ctxt;  /* libxml2's, while it reads */
	const struct fleet_handlers *h;
	const char *rel;
	struct ms_err *err;
	struct buf f[XF_COUNT];
	enum xfield cur;
	int in_job, job_line, saw_root, depth, job_depth;
	int stop;               /* 1 a problem was reported, -1 the handler failed */
	size_t handed;          /* jobs ended: handed over, or counted as other */
	size_t skip;            /* libxml2 after the scanner: the jobs it handed */
};

static void xml_error(void *arg, const xmlError *e)
{
	struct xerr *x = arg;

	if (x->set || !e || e->level < XML_ERR_ERROR)
		return;
	x->set = 1;
	x->line = e->line;
	snprintf(x->msg, sizeof(x->msg), "%s", e->message ? e->message : "XML error");
	/* libxml2 messages end with a newline */
	x->msg[strcspn(x->msg, "\r\n")] = '\0';
}

/* Pretty-printed exports put line breaks and indentation around values. */
static void trim_buf(struct buf *b)
{
	size_t s = 0;

	while (b->len && isspace((unsigned char)b->data[b->len - 1]))
		b->data[--b->len] = '\0';
	while (s < b->len && isspace((unsigned char)b->data[s]))
		s++;
	if (s) {
		memmove(b->data, b->data + s, b->len - s + 1);
		b->len -= s;
	}
}

static void xs_stop(struct xscan *x, int how)
{
	x->stop = how;
	if (x->ctxt)
		xmlStopParser(x->ctxt);
}

/* ------------------------------------------------ the job state */

/* An element starts; empty: it is <name/> (an empty <job/> is no job);
 * line: where its start tag ends, as libxml2 counts. */
static void xj_start(struct xscan *x, const char *name, int empty, int line)
{
	int i;

	x->depth++;
	if (!x->in_job && !empty && strcmp(name, "job") == 0) {
		x->in_job = 1;
		x->job_depth = x->depth;
		x->job_line = line;
		for (i = 0; i < XF_COUNT; i++)
			buf_reset(&x->f[i]);
		x->cur = XF_NONE;
		return;
	}
	x->cur = XF_NONE;
	if (x->in_job)
		for (i = 0; i < XF_COUNT; i++)
			if (name[0] == xfield_names[i][0] &&
			    strcmp(name, xfield_names[i]) == 0)
				x->cur = (enum xfield)i;
}

/* Text (entities decoded, line breaks as LF): -1 when it makes the field
 * it belongs to too long. */
static int xj_text(struct xscan *x, const char *ch, size_t len)
{
	if (!x->in_job || x->cur == XF_NONE || len == 0)
		return 0;
	/* no error record: a 1 KB one set up at every call cost more than
	 * the rest of this function */
	return buf_append(&x->f[x->cur], ch, len, NULL);
}

static void xj_end(struct xscan *x, const char *name)
{
	struct fleet_job fj;
	int i;

	if (x->in_job && x->depth == x->job_depth && strcmp(name, "job") == 0) {
		x->in_job = 0;
		x->handed++;
		if (x->skip) {
			x->skip--;      /* the scanner handed it over */
		} else if (x->h->other &&
			   !fleet_may_run_connector(x->f[XF_CMD].data ? x->f[XF_CMD].data : "",
						    x->f[XF_CMD].len)) {
			/* no connector job: counted, not handed over */
			if (x->h->other(1, x->h->ctx, x->err) < 0)
				xs_stop(x, -1);
		} else {
			for (i = 0; i < XF_COUNT; i++)
				trim_buf(&x->f[i]);
#define FV(k) (x->f[k].len ? x->f[k].data : "")
#define FN(k) (x->f[k].len ? x->f[k].data : NULL)
			memset(&fj, 0, sizeof(fj));
			fj.source = x->rel;
			fj.line = x->job_line;
			fj.schedule = FV(XF_SKD);
			fj.name = FV(XF_JNAME);
			fj.machine = FV(XF_PM);
			fj.job_type = FV(XF_TYPE);
			fj.command_line = FN(XF_CMD);
			fj.working_dir = FN(XF_WD);
			fj.batch_user = FN(XF_WUID);
#undef FV
#undef FN
			if (x->h->job && x->h->job(&fj, x->h->ctx, x->err) < 0)
				xs_stop(x, -1);
		}
	}
	x->cur = XF_NONE;
	x->depth--;
}

static int xj_root_ok(const char *name)
{
	return !strcmp(name, "jobs") || !strcmp(name, "msg") || !strcmp(name, "job");
}

/* ------------------------------------------------ libxml2 */

/* libxml2 hands structured errors the SAX user data */
static void xs_error(void *ctx, const xmlError *e)
{
	xml_error(&((struct xscan *)ctx)->xe, e);
}

static void xs_start(void *ctx, const xmlChar *localname, const xmlChar *prefix,
		     const xmlChar *uri, int nns, const xmlChar **ns, int nattr,
		     int ndef, const xmlChar **attrs)
{
	struct xscan *x = ctx;
	const char *name = (const char *)localname;
	const xmlParserInput *in = x->ctxt->input;

	(void)prefix; (void)uri; (void)nns; (void)ns; (void)nattr; (void)ndef; (void)attrs;
	if (x->stop)
		return;
	if (!x->saw_root) {
		x->saw_root = 1;
		if (!xj_root_ok(name)) {
			fleet_problem(x->h, x->rel, xmlSAX2GetLineNumber(x->ctxt),
				      "not a Schedule Extract export: root element <%s>", name);
			xs_stop(x, 1);
			return;
		}
	}
	/* the parser stands on the "/>" of an empty element */
	xj_start(x, name, in && in->cur && in->cur[0] == '/', xmlSAX2GetLineNumber(x->ctxt));
}

static void xs_text(void *ctx, const xmlChar *ch, int len)
{
	struct xscan *x = ctx;

	if (x->stop || len <= 0)
		return;
	if (xj_text(x, (const char *)ch, (size_t)len) < 0) {
		fleet_problem(x->h, x->rel, xmlSAX2GetLineNumber(x->ctxt),
			      "<%s> is too long", xfield_names[x->cur]);
		xs_stop(x, 1);
	}
}

static void xs_end(void *ctx, const xmlChar *localname, const xmlChar *prefix,
		   const xmlChar *uri)
{
	struct xscan *x = ctx;

	(void)prefix; (void)uri;
	if (!x->stop)
		xj_end(x, (const char *)localname);
}

/* The whole file through libxml2's SAX interface with a push parser fed
 * 64 KB at a time (the text reader built and freed a node for every
 * element and text). */
static int libxml2_scan(struct xscan *x, FILE *fp, const char *path)
{
	const struct fleet_handlers *h = x->h;
	xmlSAXHandler sax;
	char *b;
	size_t n;
	int rc = 0;

	memset(&sax, 0, sizeof(sax));
	sax.initialized = XML_SAX2_MAGIC;
	sax.startElementNs = xs_start;
	sax.endElementNs = xs_end;
	sax.characters = xs_text;
	sax.ignorableWhitespace = xs_text;
	sax.cdataBlock = xs_text;
	sax.serror = (xmlStructuredErrorFunc)xs_error;
	if (!(b = malloc(XML_CHUNK)))
		return err_nomem(x->err);
	n = fread(b, 1, 4, fp);
	x->ctxt = xmlCreatePushParserCtxt(&sax, x, b, (int)n, NULL);
	if (!x->ctxt) {
		free(b);
		fleet_problem(h, x->rel, 0, "cannot open XML export");
		return 0;
	}
	/* NOCDATA drops cdataBlock: CDATA then comes as text */
	xmlCtxtUseOptions(x->ctxt, XML_PARSE_NONET | XML_PARSE_NOCDATA);
	while (!x->stop && (n = fread(b, 1, XML_CHUNK, fp)) > 0)
		if (xmlParseChunk(x->ctxt, b, (int)n, 0) != 0 && !x->stop)
			break;
	if (!x->stop)
		xmlParseChunk(x->ctxt, b, 0, 1);
	free(b);
	if (x->stop < 0) {
		rc = -1;
	} else if (x->stop == 0 && (!x->ctxt->wellFormed || x->xe.set)) {
		fleet_problem(h, x->rel, x->xe.line ? x->xe.line : xmlSAX2GetLineNumber(x->ctxt),
			      "invalid XML: %s", x->xe.set ? x->xe.msg : "parse error");
	} else if (x->stop == 0 && !x->saw_root) {
		fleet_problem(h, x->rel, 0, "empty XML export");
	}
	if (x->ctxt->myDoc)
		xmlFreeDoc(x->ctxt->myDoc);
	xmlFreeParserCtxt(x->ctxt);
	x->ctxt = NULL;
	if (ferror(fp) && rc == 0)
		fleet_problem(h, x->rel, 0, "cannot read '%s'", path);
	return rc;
}

/* ------------------------------------------------ the subset scanner */

#define XSUB_BUF   (64 * 1024)
#define XSUB_NAME  64           /* longest element name read */
#define XSUB_DEPTH 64           /* deepest nesting read */
#define XSUB_TAG   128          /* a tag longer than this: libxml2 */

struct xsub {
	FILE *fp;
	const char *p, *end;    /* what is left of buf */
	int eof;
	int line;
	int root;               /* 0 before the root element, 1 in it, 2 after */
	int depth;
	unsigned char nlen[XSUB_DEPTH];
	char names[XSUB_DEPTH][XSUB_NAME + 1];
	char buf[XSUB_BUF];
};

/* Bytes a name goes on with: ASCII letters, digits, '_', '.', '-' (a
 * ':' is a namespace, and any other character is libxml2's to judge). */
static const unsigned char name_ch[256] = {
	['-'] = 1, ['.'] = 1, ['_'] = 1,
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
	['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
#define L(c) [c] = 2, [c - 'a' + 'A'] = 2
	L('a'), L('b'), L('c'), L('d'), L('e'), L('f'), L('g'), L('h'), L('i'),
	L('j'), L('k'), L('l'), L('m'), L('n'), L('o'), L('p'), L('q'), L('r'),
	L('s'), L('t'), L('u'), L('v'), L('w'), L('x'), L('y'), L('z'),
#undef L
};

/* At least n bytes at s->p when the file has them (fewer than n left:
 * what there is); what is there.  Moves the bytes left to the front of
 * buf: pointers into buf other than s->p do not survive it. */
static size_t xsub_more(struct xsub *s, size_t n)
{
	size_t have = (size_t)(s->end - s->p);

	if (have >= n || s->eof)
		return have;
	memmove(s->buf, s->p, have);
	s->p = s->buf;
	s->end = s->buf + have;
	while (have < n && !s->eof) {
		size_t got = fread(s->buf + have, 1, XSUB_BUF - have, s->fp);

		if (got == 0)
			s->eof = 1;
		have += got;
		s->end = s->buf + have;
		if (have == XSUB_BUF)
			break;
	}
	return have;
}

/* The length of the UTF-8 sequence at q (avail bytes there) when it is
 * a character XML allows, 0 if not (overlong, a surrogate, U+FFFE,
 * U+FFFF, beyond U+10FFFF, cut short). */
static size_t xsub_utf8(const unsigned char *q, size_t avail)
{
	unsigned long u;
	size_t n, i;

	if (q[0] < 0xC2)
		return 0;
	if (q[0] < 0xE0)
		n = 2, u = q[0] & 0x1Fu;
	else if (q[0] < 0xF0)
		n = 3, u = q[0] & 0x0Fu;
	else if (q[0] < 0xF5)
		n = 4, u = q[0] & 0x07u;
	else
		return 0;
	if (avail < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((q[i] & 0xC0) != 0x80)
			return 0;
		u = u << 6 | (q[i] & 0x3Fu);
	}
	if ((n == 3 && u < 0x800) || (n == 4 && (u < 0x10000 || u > 0x10FFFF)) ||
	    (u >= 0xD800 && u <= 0xDFFF) || u == 0xFFFE || u == 0xFFFF)
		return 0;
	return n;
}

/* [a, b) as comment text: characters XML allows, CR only before LF; the
 * line breaks added to *lines.  0 if not. */
static int xsub_chars(const char *a, const char *b, int *lines)
{
	const unsigned char *q = (const unsigned char *)a, *e = (const unsigned char *)b;

	while (q < e) {
		size_t n;

		if (*q >= 0x20 && *q < 0x80) {
			q++;
		} else if (*q == '\n') {
			++*lines;
			q++;
		} else if (*q == '\t') {
			q++;
		} else if (*q == '\r') {
			if (q + 1 >= e || q[1] != '\n')
				return 0;
			q++;
		} else if (*q >= 0x80 && (n = xsub_utf8(q, (size_t)(e - q)))) {
			q += n;
		} else {
			return 0;
		}
	}
	return 1;
}

/* Blanks between tags outside the root element; 1 at a '<' or the end,
 * 0 at anything else. */
static int xsub_blanks(struct xsub *s)
{
	for (;;) {
		char c;

		if (s->p == s->end && xsub_more(s, 1) == 0)
			return 1;
		c = *s->p;
		if (c == ' ' || c == '\t') {
			s->p++;
		} else if (c == '\n') {
			s->line++;
			s->p++;
		} else if (c == '\r') {
			if (xsub_more(s, 2) < 2 || s->p[1] != '\n')
				return 0;
			s->p++;
		} else {
			return c == '<';
		}
	}
}

/* Text inside the root element, up to the next '<' or the end: what
 * belongs to a field goes to it, decoded (CR LF as LF, the five
 * entities); 0 at anything outside the subset. */
static int xsub_text(struct xscan *x, struct xsub *s)
{
	const int keep = x->in_job && x->cur != XF_NONE;
	const char *seg = s->p, *q = s->p, *e = s->end;

/* hand [seg, q) to the field, then read on from q with n bytes there */
#define FLUSH() do { \
		if (keep && q > seg && xj_text(x, seg, (size_t)(q - seg)) < 0) \
			return 0; \
		seg = q; \
	} while (0)
#define MORE(n) do { \
		FLUSH(); \
		s->p = q; \
		(void)xsub_more(s, n); \
		seg = q = s->p; \
		e = s->end; \
	} while (0)

	for (;;) {
		unsigned char c;

#ifdef __SSE2__
		/* 16 bytes at a time that hold no '<', '&', ']', control
		 * character or non-ASCII byte */
		while (e - q >= 16) {
			__m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
			__m128i sp = _mm_or_si128(
				_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('<')),
					     _mm_cmpeq_epi8(v, _mm_set1_epi8('&'))),
				_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(']')),
					     _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x1F)),
							    _mm_set1_epi8(0x1F))));
			unsigned m = (unsigned)_mm_movemask_epi8(sp) |
				     (unsigned)_mm_movemask_epi8(v);

			if (m) {
				q += __builtin_ctz(m);
				break;
			}
			q += 16;
		}
#endif
		while (q < e && (c = (unsigned char)*q) >= 0x20 && c < 0x80 &&
		       c != '<' && c != '&' && c != ']')
			q++;
		if (q == e) {
			MORE(1);
			if (q == e) {
				s->p = q;
				return 1;       /* the end: the caller sees it */
			}
			continue;
		}
		c = (unsigned char)*q;
		if (c == '<') {
			FLUSH();
			s->p = q;
			return 1;
		} else if (c == '\n') {
			s->line++;
			q++;
		} else if (c == '\t') {
			q++;
		} else if (c == '\r') {
			if (e - q < 2)
				MORE(2);
			if (e - q < 2 || q[1] != '\n')
				return 0;
			FLUSH();        /* the CR goes, the LF stays */
			seg = ++q;
		} else if (c == '&') {
			static const struct { const char *ent; char ch; } ents[] = {
				{ "&lt;", '<' }, { "&gt;", '>' }, { "&amp;", '&' },
				{ "&quot;", '"' }, { "&apos;", '\'' },
			};
			size_t i, n = 0;

			if (e - q < 6)
				MORE(6);
			for (i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
				n = strlen(ents[i].ent);
				if ((size_t)(e - q) >= n && memcmp(q, ents[i].ent, n) == 0)
					break;
			}
			if (i == sizeof(ents) / sizeof(ents[0]))
				return 0;       /* a character reference, another entity */
			FLUSH();
			if (keep && xj_text(x, &ents[i].ch, 1) < 0)
				return 0;
			seg = q += n;
		} else if (c == ']') {
			if (e - q < 3)
				MORE(3);
			if (e - q >= 3 && q[1] == ']' && q[2] == '>')
				return 0;       /* "]]>" is not allowed in text */
			q++;
		} else if (c >= 0x80) {
			size_t n;

			if (e - q < 4)
				MORE(4);
			if (!(n = xsub_utf8((const unsigned char *)q, (size_t)(e - q))))
				return 0;
			q += n;
		} else {
			return 0;               /* a control character */
		}
	}
#undef MORE
#undef FLUSH
}

/* A comment at s->p ("<!--" read there): 0 if it is not one or not one
 * libxml2 reads without a word ("--" inside, a bad character). */
static int xsub_comment(struct xsub *s)
{
	const char *dd;
	size_t avail = xsub_more(s, 4);
	int lines = 0, tries;

	if (avail < 4 || memcmp(s->p, "<!--", 4) != 0)
		return 0;               /* CDATA, a DOCTYPE */
	for (tries = 0;; tries++) {
		dd = memmem(s->p + 4, avail - 4, "--", 2);
		if (dd && dd + 2 < s->end)
			break;
		if (tries || s->eof)
			return 0;
		avail = xsub_more(s, XSUB_BUF);
	}
	if (dd[2] != '>' || !xsub_chars(s->p + 4, dd, &lines))
		return 0;
	s->line += lines;
	s->p = dd + 3;
	return 1;
}

/* The XML declaration at s->p ("<?xml" read there), when it is
 * version="1.0" with no encoding or UTF-8, one blank between its parts. */
static int xsub_decl(struct xsub *s)
{
	size_t avail = xsub_more(s, 128);
	const char *q = s->p + 5, *e, *gt = memmem(s->p, avail, "?>", 2);
	char quote;

	if (!gt)
		return 0;
	e = gt;
#define WORD(w) (e - q >= (long)strlen(w) && memcmp(q, w, strlen(w)) == 0 && \
		 (q += strlen(w), 1))
	if (!WORD(" version="))
		return 0;
	if (q >= e || (*q != '"' && *q != '\''))
		return 0;
	quote = *q++;
	if (!WORD("1.0") || q >= e || *q++ != quote)
		return 0;
	if (WORD(" encoding=")) {
		if (q >= e || (*q != '"' && *q != '\''))
			return 0;
		quote = *q++;
		if (e - q < 6 || strncasecmp(q, "utf-8", 5) != 0 || q[5] != quote)
			return 0;
		q += 6;
	}
#undef WORD
	if (q != e)
		return 0;
	s->p = gt + 2;
	return 1;
}

/* A tag at s->p (a '<' there, not "<!" nor "<?"): 0 if it is not one
 * the subset has (attributes, a namespace, a long name, too deep, not
 * closing what is open, a second root), -1 when a handler failed. */
static int xsub_tag(struct xscan *x, struct xsub *s)
{
	char name[XSUB_NAME + 1];
	const char *q, *e, *n0;
	size_t avail = xsub_more(s, XSUB_TAG), n;
	int closing, empty = 0, lines = 0;

	q = s->p + 1;
	e = s->p + avail;
	if ((closing = q < e && *q == '/'))
		q++;
	n0 = q;
	if (q >= e || (name_ch[(unsigned char)*q] != 2 && *q != '_'))
		return 0;
	while (q < e && name_ch[(unsigned char)*q])
		q++;
	if ((n = (size_t)(q - n0)) > XSUB_NAME)
		return 0;
	memcpy(name, n0, n);
	name[n] = '\0';
	for (; q < e; q++) {
		if (*q == '\n')
			lines++;
		else if (*q == '\r' && (q + 1 >= e || q[1] != '\n'))
			return 0;
		else if (*q != ' ' && *q != '\t' && *q != '\r')
			break;
	}
	if (!closing && q < e && *q == '/') {
		empty = 1;
		q++;
	}
	if (q >= e || *q != '>')
		return 0;               /* an attribute, junk, too long */
	if (closing) {
		if (s->depth == 0 || s->nlen[s->depth - 1] != n ||
		    memcmp(s->names[s->depth - 1], name, n) != 0)
			return 0;
		s->depth--;
	} else {
		if (s->root == 2 || (s->root == 0 && !xj_root_ok(name)))
			return 0;
		if (!empty) {
			if (s->depth == XSUB_DEPTH)
				return 0;
			memcpy(s->names[s->depth], name, n + 1);
			s->nlen[s->depth++] = (unsigned char)n;
		}
		s->root = 1;
		x->saw_root = 1;
	}
	s->line += lines;
	s->p = q + 1;
	if (!closing)
		xj_start(x, name, empty, s->line);
	if (closing || empty)
		xj_end(x, name);
	if (s->depth == 0)
		s->root = 2;
	return x->stop < 0 ? -1 : 1;
}

/* The file through the subset scanner: 1 read to its end, 0 gave up
 * (libxml2 is to read it), -1 a handler failed (err is set). */
static int xsub_scan(struct xscan *x, struct xsub *s)
{
	s->p = s->end = s->buf;
	s->line = 1;
	if (xsub_more(s, 3) >= 3 && memcmp(s->p, "\xEF\xBB\xBF", 3) == 0)
		s->p += 3;
	if (xsub_more(s, 5) >= 5 && memcmp(s->p, "<?xml", 5) == 0 && !xsub_decl(s))
		return 0;
	for (;;) {
		int rc;

		if (s->root != 1) {
			if (!xsub_blanks(s))
				return 0;
			if (s->p == s->end)     /* the end */
				return s->root == 2 && !ferror(s->fp);
		} else if (!xsub_text(x, s)) {
			return 0;
		} else if (s->p == s->end) {
			return 0;               /* the end inside the root */
		}
		/* at a '<' */
		if (xsub_more(s, 2) < 2)
			return 0;
		if (s->p[1] == '!')
			rc = xsub_comment(s);
		else if (s->p[1] == '?')
			rc = 0;                 /* a processing instruction */
		else
			rc = xsub_tag(x, s);
		if (rc <= 0)
			return rc;
	}
}

/* ------------------------------------------------ the export */

int fleet_scan_xml_as(const char *path, const char *rel,
		      const struct fleet_handlers *h, enum fleet_xml_how how,
		      size_t *handed, struct ms_err *err)
{
	struct xscan *x;
	struct xsub *s = NULL;
	FILE *fp;
	int i, rc = 0;

	if (handed)
		*handed = 0;
	if (!(fp = fopen(path, "rb"))) {
		fleet_problem(h, rel, 0, "cannot open XML export");
		return 0;
	}
	if (!(x = calloc(1, sizeof(*x)))) {
		fclose(fp);
		return err_nomem(err);
	}
	x->h = h;
	x->rel = rel;
	x->err = err;
	x->cur = XF_NONE;
	for (i = 0; i < XF_COUNT; i++)
		buf_init(&x->f[i], XML_MAX_FIELD);
	if (how != FLEET_XML_LIBXML2) {
		if (!(s = malloc(sizeof(*s)))) {
			rc = err_nomem(err);
			goto out;
		}
		s->fp = fp;
		s->eof = 0;
		s->root = s->depth = 0;
		rc = xsub_scan(x, s);
		if (handed)
			*handed = x->handed;
		if (rc != 0) {
			rc = rc < 0 ? -1 : 0;
			goto out;
		}
		if (how == FLEET_XML_SUBSET) {
			rc = 1;
			goto out;
		}
		/* libxml2 from the start, past the jobs handed over */
		rewind(fp);
		x->skip = x->handed;
		x->handed = 0;
		x->in_job = x->saw_root = x->depth = x->job_depth = 0;
		x->cur = XF_NONE;
	}
	rc = libxml2_scan(x, fp, path);
out:
	fclose(fp);
	for (i = 0; i < XF_COUNT; i++)
		buf_wipe(&x->f[i]);
	free(s);
	free(x);
	return rc;
}

int fleet_scan_xml(const char *path, const char *rel,
		   const struct fleet_handlers *h, struct ms_err *err)
{
	return fleet_scan_xml_as(path, rel, h, FLEET_XML_AUTO, NULL, err);
}
