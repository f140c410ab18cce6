/*
 * uriscan.c - finds the hosts of URLs in a streamed message and reduces
 * them to SURBL/URIBL lookup keys (registered domain or IPv4 address).
 * Layers, each a push-style state machine fed byte by byte: body lines
 * (MIME boundaries, part headers) -> Content-Transfer-Encoding decoder ->
 * HTML tokenizer (text/html only) -> word scanner -> uri_host_key().
 * Owns: per scanner, the MIME boundary stack, the decoder, tokenizer and
 * word states, and the set of keys emitted (malloc'ed strings); process
 * wide, one libpsl context made under pthread_once and kept until exit.
 * Limits: uriscan.h (keys, depth, bytes per part, line, field, word and
 * attribute buffers).  Memory per scanner is fixed at uriscan_new() except
 * for the keys (at most max_keys of them, each <= DNS_NAME_MAX bytes).
 * Errors: nothing is reported but uriscan_truncated(): a limit was hit, or
 * a key could not be stored.  Never aborts on hostile input.
 *
 * Decisions, so that callers and reviewers need not read the code:
 * - Scanned: the text/plain and text/html leaves of the MIME tree (a part
 *   without Content-Type is text/plain, in multipart/digest message/rfc822),
 *   after QP or base64 decoding.  Other leaves (attachments), preambles,
 *   epilogues and all header fields are not scanned.  Of repeated
 *   Content-Type or Content-Transfer-Encoding fields, the first counts.
 *   An unparsable Content-Type is text/plain (RFC 2045 5.2); a multipart
 *   without a usable boundary is skipped.
 * - URLs: "http:", "https:", "ftp:" anywhere in a run of text (any case,
 *   followed by any number of "/" or "\"), "www." at the start of a host,
 *   and in href, src, action, formaction, background, cite, data, poster,
 *   style and content (meta refresh) attribute values, which are scanned
 *   like text, also protocol-relative "//host".  A bare
 *   name ("visit evil-shop.com") counts only when its last label is a
 *   suffix of the PSL proper (not the implicit "*" rule), so "file.exe" or
 *   "v1.2" are not hosts.  Bare IPv4 addresses are not keys (version
 *   numbers look the same); IPv4 hosts of scheme URLs are.
 * - Not URLs: e-mail addresses and "mailto:" (a text run holding "@" is
 *   never a bare name; the SMTP envelope and From are other checks' work),
 *   IPv6 literals "[...]" (no URIBL lists them).
 * - HTML: tags are removed; inline tags join the text around them as a
 *   browser shows it ("ht<b></b>tp://"), block tags (p, br, div, td, li,
 *   img ...) separate words.  Character references are decoded in text
 *   and attribute values (numeric, and the named ones a URL can use).
 * - Text runs end at ASCII white space and controls, < > " ` { } | ^,
 *   and at Unicode spaces, quotes and CJK brackets; zero-width characters
 *   and soft hyphens are removed first, as the reader does not see them.
 *   A host glued to CJK text ("...evil.com" followed by ideographs) is
 *   also tried without the CJK part (see cjk_glued()).
 * - Chunking: any split of the body, CRLF or LF, gives the same keys in
 *   the same order (the tests and the fuzz target check this).
 * - Keys: PSL_TYPE_ANY, so the private section counts: foo.github.io is
 *   its own key, as SURBL lists such names.  The key set de-duplicates
 *   per message; past max_keys nothing more is emitted.
 */

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idn2.h>
#include <libpsl.h>

#include "dns.h"
#include "uriscan.h"

#define ENT_MAX		32	/* chars of a character reference */
#define ANAME_MAX	12	/* chars of an attribute name kept */
#define TNAME_MAX	12	/* chars of a tag name kept */
#define LABEL_MAX	63

enum ctype { CT_TEXT, CT_HTML, CT_MULTI, CT_DIGEST, CT_RFC822, CT_OTHER };
enum cte { CTE_IDENT, CTE_QP, CTE_B64 };
enum mstate { MS_HEADERS, MS_SKIP, MS_CONTENT };

enum hstate {
	H_TEXT, H_ENT, H_TAG_OPEN, H_TAG_NAME, H_BANG, H_COMMENT, H_DECL,
	H_ATTR_BEFORE, H_ATTR_NAME, H_ATTR_AFTER, H_VAL_BEFORE, H_VAL_Q,
	H_VAL_UQ
};

/* Headers of the entity whose header block is being read. */
struct entity {
	enum ctype	type;
	bool		type_seen, cte_seen;
	enum cte	cte;
	size_t		blen;		/* 0: no usable boundary */
	char		boundary[URISCAN_BOUNDARY_MAX];
};

/* One open multipart. */
struct level {
	size_t		blen;
	unsigned	depth;		/* of the multipart entity */
	bool		digest;
	char		boundary[URISCAN_BOUNDARY_MAX];
};

struct uriscan {
	struct uriscan_limits lim;
	uriscan_key_fn	fn;
	void		*ctx;		/* borrows (the caller's) */
	bool		body_started, ended, truncated;

	/* MIME */
	struct entity	ent;
	enum mstate	ms;
	unsigned	depth;		/* of the current entity */
	struct level	*stack;		/* owns, max_depth entries */
	unsigned	nstack;
	unsigned char	line[URISCAN_LINE_MAX];
	size_t		llen;
	bool		long_line;	/* line[] flushed, rest streams */
	bool		pending_cr;	/* chunk ended in CR */
	char		field[URISCAN_FIELD_MAX];
	size_t		flen;
	bool		field_ovf;

	/* current text part */
	enum cte	cte;
	bool		html, part_full;
	size_t		part_bytes;
	int		qp_st;		/* 0; 1 "="; 2 "=X"; 3 "= " */
	unsigned char	qp_hex;
	uint32_t	b64_bits;
	int		b64_n;

	/* HTML tokenizer */
	enum hstate	hst;
	bool		endtag, attr_want, val_ovf;
	unsigned char	quote;
	unsigned	hn;		/* dashes seen (comments) */
	size_t		elen, alen, tlen, vlen;
	char		ref[ENT_MAX];	/* character reference name */
	char		aname[ANAME_MAX + 1];
	char		tname[TNAME_MAX + 1];
	unsigned char	val[URISCAN_ATTR_MAX];

	/* word scanner */
	unsigned char	word[URISCAN_WORD_MAX];
	size_t		wlen;
	bool		wcont;		/* word[] starts mid-run */

	/* keys emitted: open addressing, owns the strings */
	char		**keys;
	size_t		kmask;
	unsigned	nkeys;
	/* host names emitted (only with a host callback): the same */
	uriscan_host_fn	hfn;
	char		**hosts;	/* owns; kmask + 1 slots */
	unsigned	nhosts;
};

static void	scan_chunk(struct uriscan *, unsigned char *, size_t, bool,
		    bool, size_t *);
static int	host_key(const char *, size_t, char *, size_t, bool *, bool,
		    char *);

/* -- small helpers (locale independent) -- */

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static bool
is_alnum(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z');
}

static bool
is_wsp(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f';
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static bool
ieq(const void *a, const char *b, size_t n)
{
	const unsigned char *p = a;
	size_t i;

	for (i = 0; i < n; i++)
		if (lower(p[i]) != lower((unsigned char)b[i]))
			return false;
	return true;
}

static bool
ieqs(const char *a, size_t n, const char *b)
{
	return strlen(b) == n && ieq(a, b, n);
}

/* -- the PSL -- */

static pthread_once_t psl_once = PTHREAD_ONCE_INIT;
static const psl_ctx_t *psl;	/* process lifetime, read-only after init */

static void
psl_init(void)
{
	/*
	 * Debian 12 (libpsl5 0.21.2) has both: psl_latest() takes the newer
	 * of /usr/share/publicsuffix/public_suffix_list.dafsa (package
	 * publicsuffix) and the list built in; without the package it still
	 * returns the built-in one.  psl_builtin() is the last resort for
	 * builds where psl_latest() finds nothing.
	 */
	psl = psl_latest(NULL);
	if (psl == NULL)
		psl = psl_builtin();
}

static const psl_ctx_t *
psl_get(void)
{
	(void)pthread_once(&psl_once, psl_init);
	return psl;
}

/* -- keys -- */

/* FNV-1a: the slot where a search for str starts. */
static size_t
set_slot(const char *str, size_t mask)
{
	uint32_t h = 2166136261u;

	for (; *str != '\0'; str++)
		h = (h ^ (unsigned char)*str) * 16777619u;
	return h & mask;
}

/*
 * The set tab (open addressing, mask + 1 slots, never more than half
 * full): the slot holding str, or the empty slot where it would go.
 */
static size_t
set_find(char *const *tab, size_t mask, const char *str)
{
	size_t i;

	for (i = set_slot(str, mask); tab[i] != NULL; i = (i + 1) & mask)
		if (strcmp(tab[i], str) == 0)
			break;
	return i;
}

static void
key_emit(struct uriscan *us, const char *key, const char *host, bool is_ip)
{
	size_t i = set_find(us->keys, us->kmask, key);

	if (us->keys[i] == NULL) {
		if (us->nkeys >= us->lim.max_keys) {
			us->truncated = true;
			return;
		}
		/* The table holds at least 2 * max_keys slots: never
		 * full. */
		if ((us->keys[i] = strdup(key)) == NULL) {
			us->truncated = true;
			return;
		}
		us->nkeys++;
		us->fn(us->ctx, key, is_ip);
	}
	/* the host names below a key, once each, for lists that list
	 * them (uribl "labels") */
	if (us->hfn == NULL || is_ip || strcmp(host, key) == 0)
		return;
	i = set_find(us->hosts, us->kmask, host);
	if (us->hosts[i] != NULL)
		return;
	if (us->nhosts >= us->lim.max_keys ||
	    (us->hosts[i] = strdup(host)) == NULL) {
		us->truncated = true;
		return;
	}
	us->nhosts++;
	us->hfn(us->ctx, host, key);
}

static void
host_emit(struct uriscan *us, const unsigned char *p, size_t n, bool bare)
{
	char key[DNS_NAME_MAX + 1], host[DNS_NAME_MAX + 1];
	bool is_ip;

	if (n > 0 && host_key((const char *)p, n, key, sizeof(key), &is_ip,
	    bare, host) == 0)
		key_emit(us, key, host, is_ip);
}

/* -- host normalisation -- */

/*
 * WHATWG URL "IPv4 number": 0x hex, leading-0 octal, else decimal.
 * -1 when invalid or past 2^32.
 */
static int
ipv4_number(const char *s, size_t n, uint64_t *v)
{
	unsigned base = 10;
	size_t i = 0;
	int d;

	*v = 0;
	if (n == 0)
		return -1;
	if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		i = 2;
	} else if (n >= 2 && s[0] == '0') {
		base = 8;
		i = 1;
	}
	for (; i < n; i++) {
		d = hexval((unsigned char)s[i]);
		if (d < 0 || (unsigned)d >= base)
			return -1;
		*v = *v * base + (unsigned)d;
		if (*v > 0xffffffffu)
			return -1;
	}
	return 0;
}

/* Does the last label look like a number (then the host must be IPv4)? */
static bool
ends_in_number(const char *s)
{
	const char *l = strrchr(s, '.');
	size_t i;

	l = l != NULL ? l + 1 : s;
	if (*l == '\0')
		return false;
	if (l[0] == '0' && (l[1] == 'x' || l[1] == 'X')) {
		for (i = 2; l[i] != '\0'; i++)
			if (hexval((unsigned char)l[i]) < 0)
				return false;
		return true;
	}
	for (i = 0; l[i] != '\0'; i++)
		if (l[i] < '0' || l[i] > '9')
			return false;
	return true;
}

/* inet_aton-like, as browsers parse hosts: 1 to 4 parts.  -1: invalid. */
static int
ipv4_parse(const char *s, uint32_t *addr)
{
	uint64_t part[4], v;
	size_t np = 0, len;
	const char *e;

	for (;;) {
		e = strchr(s, '.');
		len = e != NULL ? (size_t)(e - s) : strlen(s);
		if (np == 4 || ipv4_number(s, len, &part[np]) < 0)
			return -1;
		np++;
		if (e == NULL)
			break;
		s = e + 1;
	}
	v = 0;
	for (len = 0; len + 1 < np; len++) {
		if (part[len] > 255)
			return -1;
		v |= part[len] << (8 * (3 - len));
	}
	if (part[np - 1] >= ((uint64_t)1 << (8 * (5 - np))))
		return -1;
	*addr = (uint32_t)(v | part[np - 1]);
	return 0;
}

/* U+3002, U+FF0E, U+FF61: browsers and IDNA map them to "." */
static size_t
unicode_dot(const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;

	if (n >= 3 && ((u[0] == 0xe3 && u[1] == 0x80 && u[2] == 0x82) ||
	    (u[0] == 0xef && u[1] == 0xbc && u[2] == 0x8e) ||
	    (u[0] == 0xef && u[1] == 0xbd && u[2] == 0xa1)))
		return 3;
	return 0;
}

static int
host_key(const char *raw, size_t len, char *out, size_t outlen, bool *is_ip,
    bool bare, char *host)
{
	char buf[URISCAN_HOST_RAW_MAX + 1], *a = NULL;
	const char *reg, *tld;
	size_t i, j, start = 0, lab;
	bool nonascii = false;
	uint32_t ip;
	int rc, d1, d2;

	*is_ip = false;
	if (len > URISCAN_HOST_RAW_MAX)
		return -1;
	/* The authority ends at the path; browsers read "\" as "/". */
	for (i = 0; i < len; i++)
		if (raw[i] == '/' || raw[i] == '\\' || raw[i] == '?' ||
		    raw[i] == '#')
			break;
	len = i;
	/* user:pass@ - the last "@" ends it (http://paypal.com@evil/). */
	for (i = 0; i < len; i++)
		if (raw[i] == '@')
			start = i + 1;
	if (start < len && raw[start] == '[')
		return -1;		/* IPv6 literal: not listed */
	/* The port is split off before percent-decoding, as WHATWG does. */
	for (i = start; i < len; i++)
		if (raw[i] == ':')
			break;
	len = i;
	for (i = start, j = 0; i < len; i++) {
		unsigned char c = (unsigned char)raw[i];

		if (c == '%' && i + 2 < len &&
		    (d1 = hexval((unsigned char)raw[i + 1])) >= 0 &&
		    (d2 = hexval((unsigned char)raw[i + 2])) >= 0) {
			c = (unsigned char)(d1 * 16 + d2);
			i += 2;
		}
		if (c == '\0')
			return -1;
		buf[j++] = (char)c;
	}
	buf[j] = '\0';
	/* Unicode dots (maybe percent-encoded) become ASCII dots. */
	for (i = 0, len = j, j = 0; i < len; i++) {
		size_t k = unicode_dot(buf + i, len - i);

		if (k > 0) {
			buf[j++] = '.';
			i += k - 1;
			continue;
		}
		if ((unsigned char)buf[i] >= 0x80)
			nonascii = true;
		buf[j++] = buf[i];
	}
	while (j > 0 && buf[j - 1] == '.')
		j--;
	buf[j] = '\0';
	if (j == 0)
		return -1;
	if (nonascii) {
		rc = idn2_to_ascii_8z(buf, &a,
		    IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
		/* Names valid only under IDNA2003 rules (e.g. with symbols). */
		if (rc != IDN2_OK)
			rc = idn2_to_ascii_8z(buf, &a,
			    IDN2_NFC_INPUT | IDN2_TRANSITIONAL);
		if (rc != IDN2_OK)
			return -1;
		j = strlen(a);
		if (j > DNS_NAME_MAX) {
			idn2_free(a);
			return -1;
		}
		memcpy(buf, a, j + 1);
		idn2_free(a);
		while (j > 0 && buf[j - 1] == '.')
			j--;
		buf[j] = '\0';
		if (j == 0)
			return -1;
	}
	for (i = 0; i < j; i++)
		buf[i] = (char)lower((unsigned char)buf[i]);

	if (ends_in_number(buf)) {
		if (bare || ipv4_parse(buf, &ip) < 0)
			return -1;
		rc = snprintf(out, outlen, "%u.%u.%u.%u", ip >> 24,
		    (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
		if (rc < 0 || (size_t)rc >= outlen)
			return -1;
		*is_ip = true;
		return 0;
	}
	if (j > DNS_NAME_MAX)
		return -1;
	for (i = 0, lab = 0; i <= j; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c == '.' || c == '\0') {
			if (lab == 0 || lab > LABEL_MAX)
				return -1;
			lab = 0;
		} else if (is_alnum(c) || c == '-' || c == '_')
			lab++;
		else
			return -1;
	}
	if (psl_get() == NULL)
		return -1;
	if (bare) {
		tld = strrchr(buf, '.');
		if (tld == NULL || !psl_is_public_suffix2(psl, tld + 1,
		    PSL_TYPE_ANY | PSL_TYPE_NO_STAR_RULE))
			return -1;
	}
	reg = psl_registrable_domain(psl, buf);
	if (reg == NULL || strlen(reg) >= outlen)
		return -1;
	memcpy(out, reg, strlen(reg) + 1);
	if (host != NULL)		/* j <= DNS_NAME_MAX, checked above */
		memcpy(host, buf, j + 1);
	return 0;
}

int
uri_host_key(const char *host, size_t len, char *out, size_t outlen,
    bool *is_ip)
{
	bool ip;

	if (is_ip == NULL)
		is_ip = &ip;
	if (host == NULL || out == NULL || outlen == 0)
		return -1;
	return host_key(host, len, out, outlen, is_ip, false, NULL);
}

/* -- finding URLs in a run of text -- */

/* Bytes that end a run of text (never inside a host or authority). */
static bool
is_delim(unsigned char c)
{
	return c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == '"' ||
	    c == '`' || c == '{' || c == '}' || c == '|' || c == '^';
}

/*
 * The same as a table, with the bytes that need unicode_clean(): every
 * byte of a message body passes here, most of them in plain words.
 */
#define BC_DELIM	1u
#define BC_NONASCII	2u
#define BC_MARK		4u	/* '.' and ':': no URL or host without one */
static unsigned char byte_class[256];
static pthread_once_t byte_class_once = PTHREAD_ONCE_INIT;

static void
byte_class_init(void)
{
	unsigned c;

	for (c = 0; c < 256; c++)
		byte_class[c] = (unsigned char)((is_delim((unsigned char)c) ?
		    BC_DELIM : 0u) | (c >= 0x80 ? BC_NONASCII : 0u) |
		    (c == '.' || c == ':' ? BC_MARK : 0u));
}

/* Bytes of a host as written in a URL, port included. */
static bool
is_hostch(unsigned char c)
{
	return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '%' ||
	    c == ':' || c == '[' || c == ']' || c >= 0x80;
}

static size_t
scheme_at(const unsigned char *p, size_t n)
{
	if (n >= 5 && ieq(p, "http:", 5))
		return 5;
	if (n >= 6 && ieq(p, "https:", 6))
		return 6;
	if (n >= 4 && ieq(p, "ftp:", 4))
		return 4;
	return 0;
}

static bool
has_nonascii(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] >= 0x80)
			return true;
	return false;
}

/* Lead byte of a 3-byte UTF-8 kana or CJK ideograph (U+3000..U+9FFF). */
static bool
is_cjk_lead(unsigned char c)
{
	return c >= 0xe3 && c <= 0xe9;
}

/*
 * CJK text needs no spaces, so "http://evil.com\u8bbf\u95ee" or
 * "\u8bbf\u95eeevil.com" glue a host to the words around it, and the
 * whole is an IDN that is not the linked host.  Then each ASCII run with
 * a dot between CJK characters (or the ends) is tried as well, with the
 * bare-name suffix check; only CJK counts, so "www.m" of
 * "www.m\u00fcnchen.de" is never tried.
 */
static void
cjk_glued(struct uriscan *us, const unsigned char *p, size_t n)
{
	size_t a = 0, b;

	if (!has_nonascii(p, n))
		return;		/* the common case: nothing glued */
	while (a < n) {
		while (a < n && p[a] >= 0x80)
			a++;
		for (b = a; b < n && p[b] < 0x80; b++)
			;
		if (b > a && (a == 0 || (a >= 3 && is_cjk_lead(p[a - 3]))) &&
		    (b == n || is_cjk_lead(p[b])) && is_alnum(p[a]) &&
		    memchr(p + a, '.', b - a) != NULL)
			host_emit(us, p + a, b - a, true);
		a = b;
	}
}

/*
 * Where the authority starting at or after some index of a run ends, and
 * the last "@" before that end: found once per authority, so a run like
 * "http:)http:)..." costs linear time, not quadratic.
 */
struct auth {
	size_t	from, end, at;		/* at == end: no "@" */
	bool	valid;
};

/*
 * p[j..n): the authority and what follows, up to the end of the run.
 * Emits the host; returns the index where scanning goes on.  open_end:
 * the run may continue past n, so a host reaching n may be incomplete and
 * is left for the next window.
 */
static size_t
host_extract(struct uriscan *us, const unsigned char *p, size_t n, size_t j,
    bool open_end, struct auth *c)
{
	size_t h, e;

	if (!c->valid || j > c->end || j < c->from) {
		c->valid = true;
		c->from = j;
		c->at = SIZE_MAX;
		for (e = j; e < n; e++) {
			if (p[e] == '/' || p[e] == '\\' || p[e] == '?' ||
			    p[e] == '#')
				break;
			if (p[e] == '@')
				c->at = e;
		}
		c->end = e;
	}
	/* user:pass@: the last "@" of the authority ends it */
	h = c->at != SIZE_MAX && c->at >= j ? c->at + 1 : j;
	/* Sentence punctuation after the host: "(http://a.example/x)." */
	for (e = h; e < c->end && is_hostch(p[e]); e++)
		;
	if (open_end && e == n)
		return n;
	host_emit(us, p + h, e - h, false);
	cjk_glued(us, p + h, e - h);
	return e > j ? e : j + 1;
}

/* "visit evil-shop.com today": a name with a real public suffix. */
static void
bare_check(struct uriscan *us, const unsigned char *p, size_t n)
{
	size_t e, i;
	bool dotted;

	if (memchr(p, '@', n) != NULL)
		return;		/* an e-mail address, not a URL */
	while (n > 0 && p[0] < 0x80 && !is_alnum(p[0])) {
		p++;
		n--;
	}
	for (e = 0; e < n; e++)
		if (p[e] == '/' || p[e] == '\\' || p[e] == '?' ||
		    p[e] == '#' || p[e] == ':')
			break;
	while (e > 0 && p[e - 1] < 0x80 && !is_alnum(p[e - 1]))
		e--;
	dotted = false;
	for (i = 0; i < e; i++) {
		if (p[i] >= 0x80 || p[i] == '.')
			dotted = true;	/* a dot, or maybe a Unicode one */
		else if (!is_alnum(p[i]) && p[i] != '-' && p[i] != '_')
			return;
	}
	/* Most runs are words: all ASCII and without a dot, a bare name is
	 * never a host (host_key() wants a public suffix after a dot) and
	 * nothing is glued to CJK text, so skip both. */
	if (!dotted)
		return;
	host_emit(us, p, e, true);
	cjk_glued(us, p, e);
}

/* One run of non-delimiters. */
static void
scan_run(struct uriscan *us, const unsigned char *p, size_t n, bool bare_ok,
    bool open_end)
{
	struct auth ac = { 0, 0, 0, false };
	size_t i = 0, m, j;
	bool found = false;

	while (i < n) {
		int c = lower(p[i]);

		if ((c == 'h' || c == 'f') &&
		    (m = scheme_at(p + i, n - i)) > 0) {
			j = i + m;
			while (j < n && (p[j] == '/' || p[j] == '\\'))
				j++;
			found = true;
			i = host_extract(us, p, n, j, open_end, &ac);
			continue;
		}
		if (c == 'w' && n - i > 4 && ieq(p + i, "www.", 4) &&
		    (i == 0 || !(is_alnum(p[i - 1]) || p[i - 1] == '-' ||
		    p[i - 1] == '_' || p[i - 1] == '.'))) {
			found = true;
			i = host_extract(us, p, n, i, open_end, &ac);
			continue;
		}
		i++;
	}
	if (!found && bare_ok)
		bare_check(us, p, n);
}

/*
 * Unicode the reader does not see (zero-width, soft hyphen) is removed;
 * Unicode spaces, quotes and CJK brackets become " ".  In place (it only
 * shrinks); returns the new length.
 */
static size_t
unicode_clean(unsigned char *p, size_t n)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = p[i];

		if (c < 0x80) {
			p[o++] = c;
			continue;
		}
		if (c == 0xc2 && i + 1 < n) {
			if (p[i + 1] == 0xad) {			/* shy */
				i++;
				continue;
			}
			if (p[i + 1] == 0xa0 || p[i + 1] == 0xab ||
			    p[i + 1] == 0xbb) {
				p[o++] = ' ';
				i++;
				continue;
			}
		}
		if (i + 2 < n && (c == 0xe2 || c == 0xe3 || c == 0xef)) {
			unsigned cp = ((c & 0x0fu) << 12) |
			    ((p[i + 1] & 0x3fu) << 6) | (p[i + 2] & 0x3fu);

			if ((p[i + 1] & 0xc0) != 0x80 ||
			    (p[i + 2] & 0xc0) != 0x80)
				cp = 0;
			if ((cp >= 0x200b && cp <= 0x200d) || cp == 0x2060 ||
			    cp == 0xfeff) {
				i += 2;
				continue;
			}
			if ((cp >= 0x2000 && cp <= 0x200a) ||
			    cp == 0x2018 || cp == 0x2019 || cp == 0x201c ||
			    cp == 0x201d || cp == 0x2028 || cp == 0x2029 ||
			    cp == 0x2039 || cp == 0x203a || cp == 0x3000 ||
			    cp == 0x3001 || (cp >= 0x3008 && cp <= 0x3011) ||
			    cp == 0xff08 || cp == 0xff09 || cp == 0xff1c ||
			    cp == 0xff1e) {
				p[o++] = ' ';
				i += 2;
				continue;
			}
		}
		p[o++] = c;
	}
	return o;
}

/*
 * A piece of text: split into runs, each scanned.  cont: p starts in the
 * middle of a run; partial: the last run may continue after p[n - 1].
 * Neither incomplete run may be a bare name.  *newlen: length after
 * unicode_clean() (p is modified).
 */
static void
scan_chunk(struct uriscan *us, unsigned char *p, size_t n, bool cont,
    bool partial, size_t *newlen)
{
	size_t i = 0, s;
	bool bare_ok, first, last;
	unsigned seen = 0;

	/*
	 * The common case, a word of ASCII: one run, nothing to clean.  And
	 * without a dot or a colon it holds no scheme, no "www." and no
	 * dotted name, so nothing to find at all.
	 */
	while (i < n && (byte_class[p[i]] & (BC_DELIM | BC_NONASCII)) == 0)
		seen |= byte_class[p[i++]];
	if (i == n) {
		if (newlen != NULL)
			*newlen = n;
		if ((seen & BC_MARK) != 0)
			scan_run(us, p, n, !cont && !partial, partial);
		return;
	}
	i = 0;
	n = unicode_clean(p, n);
	if (newlen != NULL)
		*newlen = n;
	while (i < n) {
		while (i < n && is_delim(p[i]))
			i++;
		if (i == n)
			break;
		s = i;
		while (i < n && !is_delim(p[i]))
			i++;
		first = s == 0;
		last = i == n;
		bare_ok = !(cont && first) && !(partial && last);
		scan_run(us, p + s, i - s, bare_ok, partial && last);
	}
}

static void
word_end(struct uriscan *us)
{
	if (us->wlen > 0)
		scan_chunk(us, us->word, us->wlen, us->wcont, false, NULL);
	us->wlen = 0;
	us->wcont = false;
}

/*
 * An overlong run ("xxxx...http://evil/") filled word[]: scan what we
 * have, keep a tail so a URL starting in it is seen whole.
 */
static void
word_overflow(struct uriscan *us)
{
	size_t n;

	scan_chunk(us, us->word, us->wlen, us->wcont, true, &n);
	if (n > URISCAN_WORD_TAIL) {
		memmove(us->word, us->word + n - URISCAN_WORD_TAIL,
		    URISCAN_WORD_TAIL);
		n = URISCAN_WORD_TAIL;
	}
	us->wlen = n;
	us->wcont = true;
}

static void
text_byte(struct uriscan *us, unsigned char c)
{
	if (byte_class[c] & BC_DELIM) {
		word_end(us);
		return;
	}
	if (us->wlen == sizeof(us->word))
		word_overflow(us);
	us->word[us->wlen++] = c;
}

/* text_byte() of each byte, a run of non-delimiters at a time. */
static void
text_bytes(struct uriscan *us, const unsigned char *p, size_t n)
{
	size_t i = 0, s, k;

	while (i < n) {
		if (byte_class[p[i]] & BC_DELIM) {
			word_end(us);
			i++;
			continue;
		}
		for (s = i; i < n && !(byte_class[p[i]] & BC_DELIM); i++)
			;
		while (s < i) {
			if (us->wlen == sizeof(us->word))
				word_overflow(us);
			k = sizeof(us->word) - us->wlen;
			if (k > i - s)
				k = i - s;
			memcpy(us->word + us->wlen, p + s, k);
			us->wlen += k;
			s += k;
		}
	}
}

/* -- HTML -- */

static void
utf8_put(unsigned char *o, size_t *n, unsigned long cp)
{
	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	if (cp < 0x80)
		o[(*n)++] = (unsigned char)cp;
	else if (cp < 0x800) {
		o[(*n)++] = (unsigned char)(0xc0 | (cp >> 6));
		o[(*n)++] = (unsigned char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		o[(*n)++] = (unsigned char)(0xe0 | (cp >> 12));
		o[(*n)++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		o[(*n)++] = (unsigned char)(0x80 | (cp & 0x3f));
	} else {
		o[(*n)++] = (unsigned char)(0xf0 | (cp >> 18));
		o[(*n)++] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		o[(*n)++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		o[(*n)++] = (unsigned char)(0x80 | (cp & 0x3f));
	}
}

/* Named references a URL can be spelt with (HTML5 names, case matters). */
static const struct {
	const char *name;
	const char *text;
	bool legacy;		/* valid without ";" */
} entities[] = {
	{ "amp", "&", true }, { "lt", "<", true }, { "gt", ">", true },
	{ "quot", "\"", true }, { "nbsp", " ", true }, { "apos", "'", false },
	{ "period", ".", false }, { "sol", "/", false },
	{ "bsol", "\\", false }, { "colon", ":", false },
	{ "commat", "@", false }, { "percnt", "%", false },
	{ "num", "#", false }, { "quest", "?", false },
	{ "equals", "=", false }, { "lowbar", "_", false },
	{ "UnderBar", "_", false }, { "excl", "!", false },
	{ "lpar", "(", false }, { "rpar", ")", false },
	{ "semi", ";", false }, { "comma", ",", false },
	{ "plus", "+", false }, { "ast", "*", false },
	{ "dollar", "$", false }, { "Tab", "\t", false },
	{ "NewLine", "\n", false }, { "shy", "", true },
	{ "zwj", "", false }, { "zwnj", "", false },
	{ "ZeroWidthSpace", "", false }, { "NoBreak", "", false },
	{ "hyphen", "-", false }, { "dash", "-", false },
	{ "minus", "-", false }, { "lsqb", "[", false },
	{ "rsqb", "]", false }, { "lcub", "{", false },
	{ "rcub", "}", false }, { "verbar", "|", false },
	{ "grave", "`", false }, { "Hat", "^", false },
	{ "tilde", "~", false }, { "midast", "*", false },
};

/*
 * A character reference name (without "&" and ";") -> UTF-8 in o (at most
 * 4 bytes, never more than the reference's own length).  -1: not one.
 */
static int
ent_decode(const char *s, size_t n, bool semi, unsigned char *o, size_t *on)
{
	unsigned long cp = 0;
	size_t i, k;

	*on = 0;
	if (n >= 2 && s[0] == '#') {
		bool hex = s[1] == 'x' || s[1] == 'X';

		i = hex ? 2 : 1;
		if (i == n)
			return -1;
		for (; i < n; i++) {
			int d = hexval((unsigned char)s[i]);

			if (d < 0 || (!hex && d > 9))
				return -1;
			cp = cp * (hex ? 16 : 10) + (unsigned)d;
			if (cp > 0x10ffff)
				cp = 0x110000;	/* stays invalid */
		}
		if (cp == 0xa0)
			cp = ' ';
		utf8_put(o, on, cp);
		return 0;
	}
	for (i = 0; i < sizeof(entities) / sizeof(entities[0]); i++) {
		if (strlen(entities[i].name) != n ||
		    memcmp(entities[i].name, s, n) != 0)
			continue;
		if (!semi && !entities[i].legacy)
			return -1;
		k = strlen(entities[i].text);
		memcpy(o, entities[i].text, k);
		*on = k;
		return 0;
	}
	return -1;
}

/*
 * May c extend the reference name r[0..n)?  Numeric ones stop at the
 * first non-digit, as browsers read them ("&#46com" is ".com").
 */
static bool
ref_char(const char *r, size_t n, unsigned char c)
{
	if (n >= ENT_MAX)
		return false;
	if (n == 0)
		return is_alnum(c) || c == '#';
	if (r[0] != '#')
		return is_alnum(c);
	if (n == 1)
		return (c >= '0' && c <= '9') || c == 'x' || c == 'X';
	if (r[1] == 'x' || r[1] == 'X')
		return hexval(c) >= 0;
	return c >= '0' && c <= '9';
}

static void
ent_emit(struct uriscan *us, bool semi)
{
	unsigned char o[4];
	size_t n, i;

	if (ent_decode(us->ref, us->elen, semi, o, &n) == 0) {
		for (i = 0; i < n; i++)
			text_byte(us, o[i]);
		return;
	}
	text_byte(us, '&');
	for (i = 0; i < us->elen; i++)
		text_byte(us, (unsigned char)us->ref[i]);
	if (semi)
		text_byte(us, ';');
}

/* Tags after which the browser starts a new line or box. */
static bool
tag_separates(const char *t)
{
	static const char *const block[] = {
		"address", "area", "article", "aside", "blockquote", "body",
		"br", "button", "caption", "center", "dd", "div", "dl", "dt",
		"footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "head",
		"header", "hr", "html", "iframe", "img", "input", "li", "meta",
		"nav", "ol", "option", "p", "pre", "script", "section",
		"select", "style", "table", "tbody", "td", "textarea",
		"tfoot", "th", "thead", "title", "tr", "ul", NULL
	};
	size_t i;

	for (i = 0; block[i] != NULL; i++)
		if (strcmp(block[i], t) == 0)
			return true;
	return false;
}

static bool
attr_is_url(const char *a)
{
	static const char *const url[] = {
		"href", "src", "action", "formaction", "background", "cite",
		"data", "poster", "style", "content", NULL
	};
	size_t i;

	for (i = 0; url[i] != NULL; i++)
		if (strcmp(url[i], a) == 0)
			return true;
	return false;
}

/* An href/src/... value is complete in val[]. */
static void
attr_value_end(struct uriscan *us)
{
	unsigned char *v = us->val, o[4];
	size_t n = us->vlen, i, j, k, on;

	if (!us->attr_want)
		return;
	us->attr_want = false;
	/* Decode character references in place: output never outgrows
	 * its reference ("&#65536" is 7 bytes, its UTF-8 4). */
	for (i = 0, j = 0; i < n; ) {
		if (v[i] == '&') {
			for (k = i + 1; k < n && ref_char((char *)v + i + 1,
			    k - i - 1, v[k]); k++)
				;
			if (k > i + 1 && ent_decode((char *)v + i + 1,
			    k - i - 1, k < n && v[k] == ';', o, &on) == 0) {
				memcpy(v + j, o, on);
				j += on;
				i = k < n && v[k] == ';' ? k + 1 : k;
				continue;
			}
		}
		/* Browsers drop tab and newline anywhere in a URL. */
		if (v[i] != '\t' && v[i] != '\n' && v[i] != '\r')
			v[j++] = v[i];
		i++;
	}
	n = j;
	for (i = 0; i < n && v[i] <= 0x20; i++)
		;
	/* Protocol-relative: "//evil.example/" (or "\\"). */
	if (n - i >= 2 && (v[i] == '/' || v[i] == '\\') &&
	    (v[i + 1] == '/' || v[i + 1] == '\\')) {
		for (j = i; j < n && (v[j] == '/' || v[j] == '\\'); j++)
			;
		struct auth c = { 0, 0, 0, false };

		for (k = j; k < n && !is_delim(v[k]); k++)
			;
		host_extract(us, v, k, j, us->val_ovf && k == n, &c);
	}
	scan_chunk(us, v, n, false, us->val_ovf, NULL);
}

static void
html_tag_name_end(struct uriscan *us)
{
	us->tname[us->tlen <= TNAME_MAX ? us->tlen : 0] = '\0';
	if (tag_separates(us->tname))
		word_end(us);
}

static void
html_byte(struct uriscan *us, unsigned char c)
{
	for (;;) {
		switch (us->hst) {
		case H_TEXT:
			if (c == '<')
				us->hst = H_TAG_OPEN;
			else if (c == '&') {
				us->hst = H_ENT;
				us->elen = 0;
			} else
				text_byte(us, c);
			return;
		case H_ENT:
			if (c == ';') {
				ent_emit(us, true);
				us->hst = H_TEXT;
				return;
			}
			if (ref_char(us->ref, us->elen, c)) {
				us->ref[us->elen++] = (char)c;
				return;
			}
			ent_emit(us, false);
			us->hst = H_TEXT;
			continue;
		case H_TAG_OPEN:
			us->tlen = 0;
			us->endtag = false;
			if (c == '!') {
				us->hst = H_BANG;
				us->hn = 0;
			} else if (c == '/') {
				us->endtag = true;
				us->hst = H_TAG_NAME;
			} else if (c == '?')
				us->hst = H_DECL;
			else if (is_alnum(c) && !(c >= '0' && c <= '9')) {
				us->hst = H_TAG_NAME;
				continue;
			} else {
				/* "a < b": not a tag, and "<" ends a run */
				word_end(us);
				us->hst = H_TEXT;
				continue;
			}
			return;
		case H_TAG_NAME:
			if (is_alnum(c)) {
				if (us->tlen < TNAME_MAX)
					us->tname[us->tlen] = (char)lower(c);
				us->tlen++;
				return;
			}
			html_tag_name_end(us);
			if (us->endtag) {
				us->hst = H_DECL;
				continue;
			}
			us->hst = H_ATTR_BEFORE;
			continue;
		case H_BANG:
			if (c == '-') {
				if (++us->hn == 2) {
					us->hst = H_COMMENT;
					us->hn = 0;
				}
				return;
			}
			us->hst = H_DECL;
			continue;
		case H_COMMENT:
			if (c == '-')
				us->hn++;
			else if (c == '>' && us->hn >= 2)
				us->hst = H_TEXT;
			else
				us->hn = 0;
			return;
		case H_DECL:
			if (c == '>')
				us->hst = H_TEXT;
			return;
		case H_ATTR_BEFORE:
			if (c == '>')
				us->hst = H_TEXT;
			else if (!is_wsp(c) && c != '/') {
				us->alen = 0;
				us->hst = H_ATTR_NAME;
				continue;
			}
			return;
		case H_ATTR_NAME:
			if (c == '=' || is_wsp(c) || c == '>' || c == '/') {
				us->aname[us->alen <= ANAME_MAX ?
				    us->alen : 0] = '\0';
				us->hst = c == '=' ? H_VAL_BEFORE :
				    c == '>' ? H_TEXT : is_wsp(c) ?
				    H_ATTR_AFTER : H_ATTR_BEFORE;
				return;
			}
			if (us->alen < ANAME_MAX)
				us->aname[us->alen] = (char)lower(c);
			us->alen++;
			return;
		case H_ATTR_AFTER:
			if (is_wsp(c))
				return;
			if (c == '=')
				us->hst = H_VAL_BEFORE;
			else if (c == '>')
				us->hst = H_TEXT;
			else {
				us->alen = 0;
				us->hst = H_ATTR_NAME;
				continue;
			}
			return;
		case H_VAL_BEFORE:
			if (is_wsp(c))
				return;
			if (c == '>') {
				us->hst = H_TEXT;
				return;
			}
			us->vlen = 0;
			us->val_ovf = false;
			us->attr_want = attr_is_url(us->aname);
			if (c == '"' || c == '\'') {
				us->quote = c;
				us->hst = H_VAL_Q;
				return;
			}
			us->hst = H_VAL_UQ;
			continue;
		case H_VAL_Q:
		case H_VAL_UQ:
			if ((us->hst == H_VAL_Q && c == us->quote) ||
			    (us->hst == H_VAL_UQ && (is_wsp(c) || c == '>'))) {
				attr_value_end(us);
				us->hst = c == '>' ? H_TEXT : H_ATTR_BEFORE;
				return;
			}
			if (!us->attr_want)
				return;
			if (us->vlen < sizeof(us->val))
				us->val[us->vlen++] = c;
			else
				us->val_ovf = true;
			return;
		}
	}
}

/* -- the current text part -- */

static void
out_byte(struct uriscan *us, unsigned char c)
{
	if (us->part_full)
		return;
	if (++us->part_bytes > us->lim.max_part_scan) {
		us->part_full = true;
		us->truncated = true;
		return;
	}
	if (us->html)
		html_byte(us, c);
	else
		text_byte(us, c);
}

/* out_byte() of each byte of p[0..n). */
static void
out_bytes(struct uriscan *us, const unsigned char *p, size_t n)
{
	size_t room, i;
	bool full = false;

	if (us->part_full)
		return;
	room = us->lim.max_part_scan - us->part_bytes;
	if (n > room) {
		n = room;
		full = true;
	}
	us->part_bytes += n;
	if (us->html)
		for (i = 0; i < n; i++)
			html_byte(us, p[i]);
	else
		text_bytes(us, p, n);
	if (full) {
		us->part_bytes++;
		us->part_full = true;
		us->truncated = true;
	}
}

static void
content_begin(struct uriscan *us)
{
	us->cte = us->ent.cte;
	us->html = us->ent.type == CT_HTML;
	us->part_full = false;
	us->part_bytes = 0;
	us->qp_st = 0;
	us->b64_bits = 0;
	us->b64_n = 0;
	us->hst = H_TEXT;
	us->attr_want = false;
	us->wlen = 0;
	us->wcont = false;
	us->ms = MS_CONTENT;
}

static void
b64_flush(struct uriscan *us)
{
	/* 2 chars give 1 byte, 3 give 2 (RFC 4648 4, padding optional) */
	if (us->b64_n == 2)
		out_byte(us, (unsigned char)(us->b64_bits >> 4));
	else if (us->b64_n == 3) {
		out_byte(us, (unsigned char)(us->b64_bits >> 10));
		out_byte(us, (unsigned char)(us->b64_bits >> 2));
	}
	us->b64_bits = 0;
	us->b64_n = 0;
}

static void
content_end(struct uriscan *us)
{
	if (us->ms != MS_CONTENT)
		return;
	if (us->cte == CTE_B64)
		b64_flush(us);
	else if (us->cte == CTE_QP && us->qp_st != 0) {
		if (us->qp_st == 2) {
			out_byte(us, '=');
			out_byte(us, us->qp_hex);
		}
		us->qp_st = 0;
	}
	if (us->html) {
		if (us->hst == H_ENT)
			ent_emit(us, false);
		else if (us->hst == H_VAL_Q || us->hst == H_VAL_UQ)
			attr_value_end(us);
		us->hst = H_TEXT;
	}
	word_end(us);
	us->ms = MS_SKIP;
}

static void
qp_byte(struct uriscan *us, unsigned char c)
{
	for (;;) {
		switch (us->qp_st) {
		case 0:
			if (c == '=')
				us->qp_st = 1;
			else
				out_byte(us, c);
			return;
		case 1:
			if (hexval(c) >= 0) {
				us->qp_hex = c;
				us->qp_st = 2;
				return;
			}
			/* "=" then white space to the end: a soft break
			 * with trailing blanks a gateway left */
			if (c == ' ' || c == '\t' || c == '\r') {
				us->qp_st = 3;
				return;
			}
			out_byte(us, '=');
			us->qp_st = 0;
			continue;
		case 2:
			us->qp_st = 0;
			if (hexval(c) >= 0) {
				out_byte(us, (unsigned char)(hexval(us->qp_hex)
				    * 16 + hexval(c)));
				return;
			}
			out_byte(us, '=');
			out_byte(us, us->qp_hex);
			continue;
		default:
			if (c == ' ' || c == '\t' || c == '\r')
				return;
			out_byte(us, '=');
			out_byte(us, ' ');
			us->qp_st = 0;
			continue;
		}
	}
}

static void
qp_eol(struct uriscan *us)
{
	if (us->qp_st == 2) {
		out_byte(us, '=');
		out_byte(us, us->qp_hex);
	}
	if (us->qp_st == 0 || us->qp_st == 2)
		out_byte(us, '\n');
	us->qp_st = 0;		/* 1 or 3: soft line break */
}

static void
b64_byte(struct uriscan *us, unsigned char c)
{
	int v;

	if (c >= 'A' && c <= 'Z')
		v = c - 'A';
	else if (c >= 'a' && c <= 'z')
		v = c - 'a' + 26;
	else if (c >= '0' && c <= '9')
		v = c - '0' + 52;
	else if (c == '+')
		v = 62;
	else if (c == '/')
		v = 63;
	else {
		if (c == '=')
			b64_flush(us);
		return;		/* white space and junk: skipped */
	}
	us->b64_bits = (us->b64_bits << 6) | (uint32_t)v;
	if (++us->b64_n == 4) {
		out_byte(us, (unsigned char)(us->b64_bits >> 16));
		out_byte(us, (unsigned char)(us->b64_bits >> 8));
		out_byte(us, (unsigned char)us->b64_bits);
		us->b64_bits = 0;
		us->b64_n = 0;
	}
}

static void
content(struct uriscan *us, const unsigned char *p, size_t n, bool eol)
{
	size_t i;

	switch (us->cte) {
	case CTE_QP:
		for (i = 0; i < n; i++)
			qp_byte(us, p[i]);
		if (eol)
			qp_eol(us);
		break;
	case CTE_B64:
		for (i = 0; i < n; i++)
			b64_byte(us, p[i]);
		break;
	default:
		out_bytes(us, p, n);
		if (eol)
			out_byte(us, '\n');
		break;
	}
}

/* -- MIME headers -- */

static void
entity_reset(struct entity *e, enum ctype deftype)
{
	memset(e, 0, sizeof(*e));
	e->type = deftype;
	e->cte = CTE_IDENT;
}

/* Skips white space (folds included) and (nested) comments. */
static size_t
skip_cfws(const char *s, size_t n, size_t i)
{
	unsigned nest = 0;

	for (; i < n; i++) {
		if (nest > 0) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == '(')
				nest++;
			else if (s[i] == ')')
				nest--;
		} else if (s[i] == '(')
			nest = 1;
		else if (!is_wsp((unsigned char)s[i]))
			break;
	}
	return i;
}

/* RFC 2045 token characters */
static bool
is_tokch(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

static size_t
token_end(const char *s, size_t n, size_t i)
{
	while (i < n && is_tokch((unsigned char)s[i]))
		i++;
	return i;
}

static void
parse_ctype(struct entity *e, const char *s, size_t n)
{
	size_t i, t, te, st, se, pn, pe, vb;
	char b[URISCAN_BOUNDARY_MAX];
	size_t bl;
	bool ovf;

	e->type = CT_TEXT;	/* RFC 2045 5.2: unparsable is text/plain */
	t = skip_cfws(s, n, 0);
	te = token_end(s, n, t);
	i = skip_cfws(s, n, te);
	if (te == t || i >= n || s[i] != '/')
		return;
	st = skip_cfws(s, n, i + 1);
	se = token_end(s, n, st);
	if (se == st)
		return;
	if (ieqs(s + t, te - t, "text"))
		e->type = ieqs(s + st, se - st, "plain") ? CT_TEXT :
		    ieqs(s + st, se - st, "html") ? CT_HTML : CT_OTHER;
	else if (ieqs(s + t, te - t, "multipart"))
		e->type = ieqs(s + st, se - st, "digest") ? CT_DIGEST :
		    CT_MULTI;
	else if (ieqs(s + t, te - t, "message") &&
	    ieqs(s + st, se - st, "rfc822"))
		e->type = CT_RFC822;
	else
		e->type = CT_OTHER;
	i = se;
	/* Parameters, leniently: a broken one is skipped up to ";". */
	while (i < n) {
		i = skip_cfws(s, n, i);
		if (i >= n)
			break;
		if (s[i] != ';') {
			while (i < n && s[i] != ';')
				i++;
			continue;
		}
		pn = skip_cfws(s, n, i + 1);
		pe = token_end(s, n, pn);
		i = skip_cfws(s, n, pe);
		if (pe == pn || i >= n || s[i] != '=')
			continue;
		vb = skip_cfws(s, n, i + 1);
		bl = 0;
		ovf = false;
		if (vb < n && s[vb] == '"') {
			for (i = vb + 1; i < n && s[i] != '"'; i++) {
				if (s[i] == '\\' && i + 1 < n)
					i++;
				if (s[i] == '\r' || s[i] == '\n')
					continue;	/* a fold */
				if (bl < sizeof(b))
					b[bl++] = s[i];
				else
					ovf = true;
			}
			if (i < n)
				i++;
		} else {
			/* lenient: "boundary==_x?y" is common */
			for (i = vb; i < n && s[i] != ';' &&
			    !is_wsp((unsigned char)s[i]); i++) {
				if (bl < sizeof(b))
					b[bl++] = s[i];
				else
					ovf = true;
			}
		}
		if (ieqs(s + pn, pe - pn, "boundary") && e->blen == 0 &&
		    !ovf && bl > 0) {
			memcpy(e->boundary, b, bl);
			e->blen = bl;
		}
	}
}

static void
field_process(struct uriscan *us, const char *name, size_t nlen,
    const char *val, size_t vlen)
{
	struct entity *e = &us->ent;
	size_t t, te;

	while (nlen > 0 && is_wsp((unsigned char)name[nlen - 1]))
		nlen--;
	if (ieqs(name, nlen, "content-type") && !e->type_seen) {
		e->type_seen = true;
		parse_ctype(e, val, vlen);
	} else if (ieqs(name, nlen, "content-transfer-encoding") &&
	    !e->cte_seen) {
		e->cte_seen = true;
		t = skip_cfws(val, vlen, 0);
		te = token_end(val, vlen, t);
		if (ieqs(val + t, te - t, "quoted-printable"))
			e->cte = CTE_QP;
		else if (ieqs(val + t, te - t, "base64"))
			e->cte = CTE_B64;
	}
}

static void
field_end(struct uriscan *us)
{
	const char *colon;

	if (us->flen == 0)
		return;
	colon = memchr(us->field, ':', us->flen);
	if (colon != NULL) {
		size_t nlen = (size_t)(colon - us->field);

		/* A cut Content-* field may have lost its boundary. */
		if (us->field_ovf && nlen >= 8 && ieq(us->field, "content-", 8))
			us->truncated = true;
		field_process(us, us->field, nlen, colon + 1,
		    us->flen - nlen - 1);
	}
	us->flen = 0;
	us->field_ovf = false;
}

static void
field_append(struct uriscan *us, const unsigned char *p, size_t n)
{
	size_t room = sizeof(us->field) - us->flen;

	if (n > room) {
		n = room;
		us->field_ovf = true;
	}
	memcpy(us->field + us->flen, p, n);
	us->flen += n;
}

/* The blank line after an entity's header block. */
static void
headers_end(struct uriscan *us)
{
	struct entity *e = &us->ent;
	struct level *l;

	us->ms = MS_SKIP;
	switch (e->type) {
	case CT_MULTI:
	case CT_DIGEST:
		if (e->blen == 0)
			return;
		if (us->depth >= us->lim.max_depth ||
		    us->nstack >= us->lim.max_depth) {
			us->truncated = true;
			return;
		}
		l = &us->stack[us->nstack++];
		memcpy(l->boundary, e->boundary, e->blen);
		l->blen = e->blen;
		l->depth = us->depth;
		l->digest = e->type == CT_DIGEST;
		return;		/* the preamble is skipped */
	case CT_RFC822:
		if (us->depth >= us->lim.max_depth) {
			us->truncated = true;
			return;
		}
		us->depth++;
		entity_reset(e, CT_TEXT);
		us->ms = MS_HEADERS;
		return;
	case CT_TEXT:
	case CT_HTML:
		content_begin(us);
		return;
	default:
		return;
	}
}

/* A line (or the first URISCAN_LINE_MAX bytes of one) starting "--". */
static bool
boundary_match(struct uriscan *us, const unsigned char *p, size_t n)
{
	struct level *l;
	unsigned i = us->nstack;
	size_t k;
	bool close;

	/* Innermost first, so an outer boundary also ends inner parts. */
	while (i-- > 0) {
		l = &us->stack[i];
		if (n < 2 + l->blen || memcmp(p + 2, l->boundary, l->blen) != 0)
			continue;
		/*
		 * RFC 2046 5.1.1: only white space may follow ("--b2"
		 * must not end "--b20"'s parts).
		 */
		close = n >= 4 + l->blen && p[2 + l->blen] == '-' &&
		    p[3 + l->blen] == '-';
		for (k = 2 + l->blen + (close ? 2 : 0); k < n; k++)
			if (p[k] != ' ' && p[k] != '\t')
				break;
		if (k < n)
			continue;
		content_end(us);
		us->flen = 0;
		us->field_ovf = false;
		if (close) {
			/* close delimiter: the epilogue is skipped */
			us->nstack = i;
			us->ms = MS_SKIP;
			return true;
		}
		us->nstack = i + 1;
		us->depth = l->depth + 1;
		entity_reset(&us->ent, l->digest ? CT_RFC822 : CT_TEXT);
		us->ms = MS_HEADERS;
		return true;
	}
	return false;
}

/* Bytes of one line.  first: they start the line; eol: they end it. */
static void
line_data(struct uriscan *us, const unsigned char *p, size_t n, bool first,
    bool eol)
{
	if (first && us->nstack > 0 && n >= 2 && p[0] == '-' && p[1] == '-' &&
	    boundary_match(us, p, n))
		return;
	switch (us->ms) {
	case MS_HEADERS:
		if (first && n == 0 && eol) {
			field_end(us);
			headers_end(us);
		} else if (first && n > 0 && (p[0] == ' ' || p[0] == '\t')) {
			field_append(us, p, n);		/* a fold */
		} else {
			if (first)
				field_end(us);
			field_append(us, p, n);
		}
		break;
	case MS_CONTENT:
		content(us, p, n, eol);
		break;
	default:
		break;
	}
}

static void
line_complete(struct uriscan *us)
{
	size_t n = us->llen;

	if (n > 0 && us->line[n - 1] == '\r')
		n--;
	us->llen = 0;
	line_data(us, us->line, n, true, true);
}

static void
body_begin(struct uriscan *us)
{
	us->body_started = true;
	us->depth = 0;
	headers_end(us);
}

/* -- API -- */

struct uriscan *
uriscan_new(const struct uriscan_limits *lim, uriscan_key_fn fn, void *ctx)
{
	struct uriscan *us;
	size_t slots = 4;

	(void)pthread_once(&byte_class_once, byte_class_init);
	if (fn == NULL || (us = calloc(1, sizeof(*us))) == NULL)
		return NULL;
	if (lim != NULL)
		us->lim = *lim;
	if (us->lim.max_keys == 0)
		us->lim.max_keys = URISCAN_KEYS_DEFAULT;
	if (us->lim.max_keys > URISCAN_KEYS_MAX)
		us->lim.max_keys = URISCAN_KEYS_MAX;
	if (us->lim.max_depth == 0)
		us->lim.max_depth = URISCAN_DEPTH_DEFAULT;
	if (us->lim.max_depth > URISCAN_DEPTH_MAX)
		us->lim.max_depth = URISCAN_DEPTH_MAX;
	if (us->lim.max_part_scan == 0)
		us->lim.max_part_scan = URISCAN_PART_DEFAULT;
	while (slots < 2 * (size_t)us->lim.max_keys)
		slots *= 2;
	us->keys = calloc(slots, sizeof(*us->keys));
	us->stack = calloc(us->lim.max_depth, sizeof(*us->stack));
	if (us->keys == NULL || us->stack == NULL) {
		free(us->keys);
		free(us->stack);
		free(us);
		return NULL;
	}
	us->kmask = slots - 1;
	us->fn = fn;
	us->ctx = ctx;
	entity_reset(&us->ent, CT_TEXT);
	us->ms = MS_HEADERS;
	return us;
}

int
uriscan_set_host_fn(struct uriscan *us, uriscan_host_fn hfn)
{
	if (us == NULL || us->body_started || us->hosts != NULL)
		return -1;
	if ((us->hosts = calloc(us->kmask + 1, sizeof(*us->hosts))) == NULL)
		return -1;
	us->hfn = hfn;
	return 0;
}

void
uriscan_header(struct uriscan *us, const char *name, const char *value)
{
	if (us == NULL || us->body_started || us->ended || name == NULL ||
	    value == NULL)
		return;
	field_process(us, name, strlen(name), value, strlen(value));
}

void
uriscan_body(struct uriscan *us, const unsigned char *p, size_t n)
{
	const unsigned char *nl;
	size_t k, dk, room;

	if (us == NULL || us->ended || p == NULL)
		return;
	if (!us->body_started)
		body_begin(us);
	while (n > 0) {
		if (us->long_line) {
			/* A CR ending the last chunk belongs to CRLF? */
			if (us->pending_cr) {
				us->pending_cr = false;
				if (p[0] != '\n')
					line_data(us, (const unsigned char *)
					    "\r", 1, false, false);
			}
			nl = memchr(p, '\n', n);
			k = nl != NULL ? (size_t)(nl - p) : n;
			dk = k;
			if (dk > 0 && p[dk - 1] == '\r') {
				dk--;
				if (nl == NULL)
					us->pending_cr = true;
			}
			line_data(us, p, dk, false, nl != NULL);
			if (nl == NULL)
				return;
			us->long_line = false;
			p += k + 1;
			n -= k + 1;
			continue;
		}
		if (us->llen == sizeof(us->line)) {
			/* Full: decided only now, so any chunking of the
			 * same bytes takes the same path. */
			if (p[0] == '\n') {
				p++;
				n--;
				line_complete(us);
				continue;
			}
			line_data(us, us->line, us->llen, true, false);
			us->llen = 0;
			us->long_line = true;
			continue;
		}
		room = sizeof(us->line) - us->llen;
		nl = memchr(p, '\n', n < room + 1 ? n : room + 1);
		k = nl != NULL ? (size_t)(nl - p) : (n < room ? n : room);
		memcpy(us->line + us->llen, p, k);
		us->llen += k;
		p += k;
		n -= k;
		if (nl != NULL) {
			p++;
			n--;
			line_complete(us);
		}
	}
}

void
uriscan_end(struct uriscan *us)
{
	if (us == NULL || us->ended)
		return;
	if (!us->body_started)
		body_begin(us);
	/* The last line may lack its newline. */
	if (us->long_line) {
		if (us->pending_cr)
			line_data(us, (const unsigned char *)"\r", 1, false,
			    false);
		line_data(us, (const unsigned char *)"", 0, false, true);
	} else if (us->llen > 0)
		line_complete(us);
	if (us->ms == MS_HEADERS)
		field_end(us);
	content_end(us);
	us->ended = true;
}

bool
uriscan_truncated(const struct uriscan *us)
{
	return us != NULL && us->truncated;
}

void
uriscan_free(struct uriscan *us)
{
	size_t i;

	if (us == NULL)
		return;
	for (i = 0; i <= us->kmask; i++) {
		free(us->keys[i]);
		if (us->hosts != NULL)
			free(us->hosts[i]);
	}
	free(us->keys);
	free(us->hosts);
	free(us->stack);
	free(us);
}
