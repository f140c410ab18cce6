/*
 * report_row.c - the stored form of one DMARC result (report_row.h): a
 * versioned "name=value" line format, chosen over a binary layout so that
 * a store can be read with mdb_dump or redis-cli and a newer writer can
 * add fields an older reader skips.  Also the RFC 9990 grouping key, XML
 * escaping and rua= parsing.
 * Owns: nothing; no allocation outside the caller's struct buf.
 * Limits: report_row.h.  Errors: 0 / -1, no logging (callers log).
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_row.h"
#include "util.h"

/* ------------------------------------------------------------------ */
/* Encoding                                                           */
/* ------------------------------------------------------------------ */

static bool
rr_plain(unsigned char c)
{
	/* a value stays one printable ASCII token: ' ' separates the parts
	 * of a dkim line, '\n' the lines, '%' starts an escape */
	return c > 0x20 && c < 0x7f && c != '%';
}

static int
rr_put_escaped(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		char e[3];

		if (rr_plain(c)) {
			if (buf_putc(b, (char)c) != 0)
				return -1;
			continue;
		}
		e[0] = '%';
		e[1] = hex[c >> 4];
		e[2] = hex[c & 0xf];
		if (buf_append(b, e, 3) != 0)
			return -1;
	}
	return 0;
}

static int
rr_field(struct buf *b, const char *name, const char *val)
{
	if (buf_puts(b, name) != 0 || buf_putc(b, '=') != 0 ||
	    rr_put_escaped(b, val) != 0 || buf_putc(b, '\n') != 0)
		return -1;
	return 0;
}

static int
rr_char_field(struct buf *b, const char *name, char c)
{
	char v[2] = { c, '\0' };

	return rr_field(b, name, v);
}

static int
rr_dkim_field(struct buf *b, const struct report_dkim *d)
{
	/* the parts are escaped, so ' ' only separates them; an empty d=
	 * or s= (dkimv leaves one that does not fit empty) is an empty
	 * token, which the decoder keeps */
	if (buf_puts(b, "dkim=") != 0 || rr_put_escaped(b, d->result) != 0 ||
	    buf_putc(b, ' ') != 0 || rr_put_escaped(b, d->domain) != 0 ||
	    buf_putc(b, ' ') != 0 || rr_put_escaped(b, d->selector) != 0 ||
	    buf_putc(b, '\n') != 0)
		return -1;
	return 0;
}

/* The fields a report record shows: shared by the encoding and the
 * grouping key, so the two can never disagree on what a row is. */
static int
rr_record_fields(const struct report_row *r, struct buf *b)
{
	size_t i;

	if (rr_field(b, "ip", r->ip) != 0 ||
	    rr_field(b, "hfrom", r->header_from) != 0 ||
	    rr_field(b, "efrom", r->envelope_from) != 0 ||
	    rr_field(b, "eto", r->envelope_to) != 0 ||
	    rr_field(b, "spfd", r->spf_domain) != 0 ||
	    rr_field(b, "spfr", r->spf_result) != 0)
		return -1;
	for (i = 0; i < r->ndkim && i < REPORT_DKIM_MAX; i++)
		if (rr_dkim_field(b, &r->dkim[i]) != 0)
			return -1;
	if (rr_field(b, "dkal", r->dkim_aligned ? "pass" : "fail") != 0 ||
	    rr_field(b, "spal", r->spf_aligned ? "pass" : "fail") != 0 ||
	    rr_field(b, "disp", r->disposition) != 0)
		return -1;
	for (i = 0; i < r->nreason && i < REPORT_REASON_MAX; i++)
		if (rr_field(b, "reason", r->reason[i]) != 0)
			return -1;
	return 0;
}

int
rrow_encode(const struct report_row *r, struct buf *b)
{
	char num[32];

	b->len = 0;
	if (b->p != NULL)
		b->p[0] = '\0';
	snprintf(num, sizeof(num), "%d", REPORT_ROW_VERSION);
	if (rr_field(b, "v", num) != 0)
		return -1;
	snprintf(num, sizeof(num), "%llu", (unsigned long long)r->time);
	if (rr_field(b, "time", num) != 0)
		return -1;
	snprintf(num, sizeof(num), "%016llx", (unsigned long long)r->id);
	if (rr_field(b, "id", num) != 0 ||
	    rr_record_fields(r, b) != 0 ||
	    rr_field(b, "dmarc", r->dmarc_result) != 0 ||
	    rr_field(b, "pdom", r->policy_domain) != 0 ||
	    rr_field(b, "p", r->p) != 0 ||
	    rr_field(b, "sp", r->sp) != 0 ||
	    rr_field(b, "np", r->np) != 0 ||
	    rr_char_field(b, "adkim", r->adkim) != 0 ||
	    rr_char_field(b, "aspf", r->aspf) != 0 ||
	    rr_char_field(b, "testing", r->testing) != 0 ||
	    rr_field(b, "fo", r->fo) != 0 ||
	    rr_field(b, "rua", r->rua) != 0)
		return -1;
	return b->len <= REPORT_VALUE_MAX ? 0 : -1;
}

int
rrow_group_key(const struct report_row *r, struct buf *b)
{
	b->len = 0;
	if (b->p != NULL)
		b->p[0] = '\0';
	return rr_record_fields(r, b);
}

/* ------------------------------------------------------------------ */
/* Decoding                                                           */
/* ------------------------------------------------------------------ */

static int
rr_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Undoes %XX into dst (size bytes, NUL-terminated).  -1 for a bad or
 * NUL escape, a raw byte that the encoder would have escaped, or no
 * room. */
static int
rr_unescape(const char *s, size_t n, char *dst, size_t size)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= n)
				return -1;
			hi = rr_hex(s[i + 1]);
			lo = rr_hex(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		} else if (!rr_plain(c))
			return -1;
		if (o + 1 >= size)
			return -1;
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return 0;
}

/* Character classes a decoded field must keep to. */
enum rr_class {
	RR_ANY,		/* no control characters (text: rua, domains) */
	RR_WORD,	/* a-z and '_' */
	RR_IP,		/* hex digits, '.', ':' */
	RR_FO,		/* 0-9 a-z ':' */
	RR_DIGITS,
	RR_HEX
};

static bool
rr_class_ok(const char *s, enum rr_class cl)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		bool ok;

		switch (cl) {
		case RR_ANY:
			ok = c >= 0x20 && c != 0x7f;
			break;
		case RR_WORD:
			ok = (c >= 'a' && c <= 'z') || c == '_';
			break;
		case RR_IP:
			ok = (c >= '0' && c <= '9') || (c >= 'a' &&
			    c <= 'f') || (c >= 'A' && c <= 'F') || c == '.' ||
			    c == ':';
			break;
		case RR_FO:
			ok = (c >= '0' && c <= '9') || (c >= 'a' &&
			    c <= 'z') || c == ':';
			break;
		case RR_DIGITS:
			ok = c >= '0' && c <= '9';
			break;
		case RR_HEX:
			ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
			break;
		default:
			ok = false;
		}
		if (!ok)
			return false;
	}
	return true;
}

static int
rr_get(const char *s, size_t n, char *dst, size_t size, enum rr_class cl)
{
	if (rr_unescape(s, n, dst, size) != 0 || !rr_class_ok(dst, cl))
		return -1;
	return 0;
}

/* Enumerations of the RFC 9990 schema: a decoded row can only say what
 * the schema allows, so every document written from rows is valid. */
static const char *const rr_policies[] = {
	"none", "quarantine", "reject", NULL };
static const char *const rr_dispositions[] = {
	"none", "pass", "quarantine", "reject", NULL };
static const char *const rr_dkim_results[] = {	/* RFC 8601 2.7.1 */
	"none", "pass", "fail", "policy", "neutral", "temperror",
	"permerror", NULL };
static const char *const rr_spf_results[] = {	/* RFC 8601 2.7.2 */
	"none", "neutral", "pass", "fail", "softfail", "temperror",
	"permerror", NULL };
static const char *const rr_reasons[] = {
	"local_policy", "mailing_list", "other", "policy_test_mode",
	"trusted_forwarder", NULL };

static int
rr_get_enum(const char *s, size_t n, char *dst, size_t size,
    const char *const *words, bool empty_ok)
{
	size_t i;

	if (rr_get(s, n, dst, size, RR_WORD) != 0)
		return -1;
	if (dst[0] == '\0')
		return empty_ok ? 0 : -1;
	for (i = 0; words[i] != NULL; i++)
		if (strcmp(dst, words[i]) == 0)
			return 0;
	return -1;
}

static int
rr_get_char(const char *s, size_t n, char *dst, const char *allowed)
{
	if (n != 1 || strchr(allowed, s[0]) == NULL || s[0] == '\0')
		return -1;
	*dst = s[0];
	return 0;
}

static int
rr_get_aligned(const char *s, size_t n, bool *dst)
{
	if (n == 4 && memcmp(s, "pass", 4) == 0)
		*dst = true;
	else if (n == 4 && memcmp(s, "fail", 4) == 0)
		*dst = false;
	else
		return -1;
	return 0;
}

static int
rr_get_dkim(const char *s, size_t n, struct report_dkim *d)
{
	const char *sp1 = memchr(s, ' ', n), *sp2;

	if (sp1 == NULL)
		return -1;
	sp2 = memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - s));
	if (sp2 == NULL || memchr(sp2 + 1, ' ', n - (size_t)(sp2 + 1 - s)))
		return -1;
	if (rr_get_enum(s, (size_t)(sp1 - s), d->result, sizeof(d->result),
	    rr_dkim_results, false) != 0 ||
	    rr_get(sp1 + 1, (size_t)(sp2 - sp1 - 1), d->domain,
	    sizeof(d->domain), RR_ANY) != 0 ||
	    rr_get(sp2 + 1, (size_t)(s + n - sp2 - 1), d->selector,
	    sizeof(d->selector), RR_ANY) != 0)
		return -1;
	return 0;
}

static int
rr_u64(const char *s, size_t n, int base, uint64_t *out)
{
	char tmp[24], *end;

	if (n == 0 || n >= sizeof(tmp) || rr_get(s, n, tmp, sizeof(tmp),
	    base == 16 ? RR_HEX : RR_DIGITS) != 0)
		return -1;
	*out = strtoull(tmp, &end, base);
	return *end == '\0' ? 0 : -1;
}

static bool
rr_is(const char *name, size_t nlen, const char *word)
{
	return strlen(word) == nlen && memcmp(name, word, nlen) == 0;
}

/* One line "name=value" into r; seen flags the required fields. */
static int
rr_line(struct report_row *r, const char *name, size_t nlen, const char *v,
    size_t vlen, unsigned *seen)
{
#define GET(field, cl) rr_get(v, vlen, r->field, sizeof(r->field), cl)
#define ENUM(field, words, empty) \
	rr_get_enum(v, vlen, r->field, sizeof(r->field), words, empty)
	if (rr_is(name, nlen, "time")) {
		*seen |= 1;
		return rr_u64(v, vlen, 10, &r->time);
	}
	if (rr_is(name, nlen, "id"))
		return vlen == 16 ? rr_u64(v, vlen, 16, &r->id) : -1;
	if (rr_is(name, nlen, "ip")) {
		*seen |= 2;
		return GET(ip, RR_IP);
	}
	if (rr_is(name, nlen, "hfrom")) {
		*seen |= 4;
		return GET(header_from, RR_ANY);
	}
	if (rr_is(name, nlen, "efrom"))
		return GET(envelope_from, RR_ANY);
	if (rr_is(name, nlen, "eto"))
		return GET(envelope_to, RR_ANY);
	if (rr_is(name, nlen, "spfd"))
		return GET(spf_domain, RR_ANY);
	if (rr_is(name, nlen, "spfr"))
		return ENUM(spf_result, rr_spf_results, true);
	if (rr_is(name, nlen, "dkim")) {
		if (r->ndkim >= REPORT_DKIM_MAX)
			return -1;
		return rr_get_dkim(v, vlen, &r->dkim[r->ndkim++]);
	}
	if (rr_is(name, nlen, "dmarc"))
		return GET(dmarc_result, RR_WORD);
	if (rr_is(name, nlen, "dkal"))
		return rr_get_aligned(v, vlen, &r->dkim_aligned);
	if (rr_is(name, nlen, "spal"))
		return rr_get_aligned(v, vlen, &r->spf_aligned);
	if (rr_is(name, nlen, "disp")) {
		*seen |= 8;
		return ENUM(disposition, rr_dispositions, false);
	}
	if (rr_is(name, nlen, "reason")) {
		if (r->nreason >= REPORT_REASON_MAX)
			return -1;
		return rr_get_enum(v, vlen, r->reason[r->nreason++],
		    sizeof(r->reason[0]), rr_reasons, false);
	}
	if (rr_is(name, nlen, "pdom")) {
		*seen |= 16;
		if (GET(policy_domain, RR_ANY) != 0 ||
		    !rrow_domain_ok(r->policy_domain))
			return -1;
		return 0;
	}
	if (rr_is(name, nlen, "p"))
		return ENUM(p, rr_policies, true);
	if (rr_is(name, nlen, "sp"))
		return ENUM(sp, rr_policies, true);
	if (rr_is(name, nlen, "np"))
		return ENUM(np, rr_policies, true);
	if (rr_is(name, nlen, "adkim"))
		return rr_get_char(v, vlen, &r->adkim, "rs");
	if (rr_is(name, nlen, "aspf"))
		return rr_get_char(v, vlen, &r->aspf, "rs");
	if (rr_is(name, nlen, "testing"))
		return rr_get_char(v, vlen, &r->testing, "yn");
	if (rr_is(name, nlen, "fo"))
		return GET(fo, RR_FO);
	if (rr_is(name, nlen, "rua"))
		return GET(rua, RR_ANY);
	return 0;	/* a field of a newer writer */
#undef GET
#undef ENUM
}

/* The line loop of both decoders: versioned (a stored row) or not (a
 * grouping key).  need: the seen-bits that must be present. */
static int
rr_decode(const char *val, size_t len, struct report_row *r, bool versioned,
    unsigned need)
{
	size_t pos = 0;
	unsigned seen = 0;
	bool first = versioned;

	memset(r, 0, sizeof(*r));
	if (val == NULL || len > REPORT_VALUE_MAX)
		return -1;
	while (pos < len) {
		const char *line = val + pos, *nl, *eq;
		size_t ll;

		nl = memchr(line, '\n', len - pos);
		ll = nl != NULL ? (size_t)(nl - line) : len - pos;
		pos += ll + (nl != NULL ? 1 : 0);
		eq = memchr(line, '=', ll);
		if (eq == NULL || eq == line)
			return -1;
		if (first) {
			/* another version is another format */
			if (!rr_is(line, (size_t)(eq - line), "v") ||
			    ll - (size_t)(eq - line) - 1 != 1 ||
			    eq[1] != '0' + REPORT_ROW_VERSION)
				return -1;
			first = false;
			continue;
		}
		if (rr_line(r, line, (size_t)(eq - line), eq + 1,
		    ll - (size_t)(eq - line) - 1, &seen) != 0)
			return -1;
	}
	if (first || (seen & need) != need || r->ip[0] == '\0' ||
	    r->header_from[0] == '\0' || r->disposition[0] == '\0')
		return -1;
	if (r->adkim == '\0')
		r->adkim = 'r';
	if (r->aspf == '\0')
		r->aspf = 'r';
	if (r->testing == '\0')
		r->testing = 'n';
	return 0;
}

int
rrow_decode(const char *val, size_t len, struct report_row *r)
{
	/* time, ip, hfrom, disp, pdom */
	return rr_decode(val, len, r, true, 31);
}

int
rrow_decode_key(const char *key, size_t len, struct report_row *r)
{
	/* ip, hfrom, disp */
	return rr_decode(key, len, r, false, 2 | 4 | 8);
}

/* ------------------------------------------------------------------ */
/* XML                                                                */
/* ------------------------------------------------------------------ */

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), or 0
 * when it is not one (RFC 3629: no overlong forms, no surrogates, at most
 * U+10FFFF; XML 1.0 excludes U+FFFE and U+FFFF). */
static size_t
rr_utf8_len(const unsigned char *s, size_t n)
{
	unsigned long cp;
	size_t len, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff ||
	    cp == 0xfffe || cp == 0xffff)
		return 0;
	return len;
}

int
rrow_xml_escape(struct buf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		unsigned char c = p[i];
		const char *ent = NULL;
		size_t n;
		int rc;

		switch (c) {
		case '&':
			ent = "&amp;";
			break;
		case '<':
			ent = "&lt;";
			break;
		case '>':
			ent = "&gt;";
			break;
		case '"':
			ent = "&quot;";
			break;
		case '\'':
			ent = "&apos;";
			break;
		default:
			break;
		}
		if (ent != NULL) {
			rc = buf_puts(b, ent);
			n = 1;
		} else if ((c < 0x20 && c != '\t' && c != '\n' &&
		    c != '\r') || c == 0x7f) {
			/* XML 1.0 allows no C0 control, not even as a
			 * character reference; DEL is allowed but useless */
			rc = buf_putc(b, '?');
			n = 1;
		} else if ((n = rr_utf8_len(p + i, len - i)) == 0) {
			rc = buf_putc(b, '?');
			n = 1;
		} else
			rc = buf_append(b, s + i, n);
		if (rc != 0)
			return -1;
		i += n;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* rua= URIs                                                          */
/* ------------------------------------------------------------------ */

bool
rrow_domain_ok(const char *s)
{
	size_t n = strlen(s), lab = 0, i;

	if (n == 0 || n > 253)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == '.') {
			if (lab == 0)
				return false;
			lab = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_'))
			return false;
		if (++lab > 63)
			return false;
	}
	return lab > 0;
}

static bool
rr_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* "10m" -> bytes; -1 for anything else or an overflow. */
static int
rr_size(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0, mult = 1;
	size_t i;

	if (n == 0)
		return -1;
	switch (s[n - 1]) {
	case 'k': case 'K':
		mult = 1024ULL;
		n--;
		break;
	case 'm': case 'M':
		mult = 1024ULL * 1024;
		n--;
		break;
	case 'g': case 'G':
		mult = 1024ULL * 1024 * 1024;
		n--;
		break;
	case 't': case 'T':
		mult = 1024ULL * 1024 * 1024 * 1024;
		n--;
		break;
	default:
		break;
	}
	if (n == 0 || n > 15)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v == 0 || v > UINT64_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

/* RFC 3986 percent-decoding of a mailto: address into dst: %XX undone
 * (not %00), other bytes kept for the caller to judge.  0 or -1. */
static int
rr_unescape_lax(const char *s, size_t n, char *dst, size_t size)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= n)
				return -1;
			hi = rr_hex(s[i + 1]);
			lo = rr_hex(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		} else if (c == '\0')
			return -1;
		if (o + 1 >= size)
			return -1;
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return 0;
}

/* Fills u from one trimmed entry. */
static void
rr_rua_one(const char *s, size_t n, struct rua_uri *u)
{
	const char *bang = memchr(s, '!', n), *q, *at;
	size_t ulen = bang != NULL ? (size_t)(bang - s) : n, alen, i, shown;
	char *h;

	memset(u, 0, sizeof(*u));
	shown = n > REPORT_RUA_TEXT_MAX ? REPORT_RUA_TEXT_MAX : n;
	memcpy(u->uri, s, shown);
	u->uri[shown] = '\0';
	for (i = 0; i < shown; i++)	/* shown in the manifest */
		if ((unsigned char)u->uri[i] < 0x21 ||
		    (unsigned char)u->uri[i] >= 0x7f)
			u->uri[i] = '?';
	u->why = "bad size limit";
	if (bang != NULL && rr_size(bang + 1, n - ulen - 1,
	    &u->size_limit) != 0)
		return;
	u->why = "not a mailto: URI";
	if (ulen < 7 || !mem_ieq(s, 7, "mailto:", 7))
		return;
	u->why = "bad address";
	s += 7;
	ulen -= 7;
	/* RFC 6068: ?headers are not part of the address */
	q = memchr(s, '?', ulen);
	alen = q != NULL ? (size_t)(q - s) : ulen;
	if (rr_unescape_lax(s, alen, u->addr, sizeof(u->addr)) != 0)
		goto bad;
	at = strrchr(u->addr, '@');
	if (at == NULL || at == u->addr || at[1] == '\0' ||
	    strlen(at + 1) > REPORT_DOMAIN_MAX)
		goto bad;
	for (i = 0; u->addr[i] != '\0'; i++)
		if ((unsigned char)u->addr[i] <= 0x20 ||
		    (unsigned char)u->addr[i] == 0x7f || u->addr[i] == ',' ||
		    u->addr[i] == '<' || u->addr[i] == '>')
			goto bad;
	memcpy(u->host, at + 1, strlen(at + 1) + 1);
	for (h = u->host; *h != '\0'; h++)
		if (*h >= 'A' && *h <= 'Z')
			*h = (char)(*h - 'A' + 'a');
	if (h > u->host && h[-1] == '.')
		h[-1] = '\0';
	if (!rrow_domain_ok(u->host))
		goto bad;
	u->mailto = true;
	u->why = NULL;
	return;
bad:
	u->addr[0] = u->host[0] = '\0';
}

size_t
rrow_rua_parse(const char *rua, size_t len, struct rua_uri *out, size_t max,
    bool *more)
{
	size_t pos = 0, n = 0;

	if (more != NULL)
		*more = false;
	if (rua == NULL)
		return 0;
	while (pos <= len) {
		const char *e = rua + pos, *comma;
		size_t el;

		comma = memchr(e, ',', len - pos);
		el = comma != NULL ? (size_t)(comma - e) : len - pos;
		pos += el + 1;
		while (el > 0 && rr_wsp(e[0])) {
			e++;
			el--;
		}
		while (el > 0 && rr_wsp(e[el - 1]))
			el--;
		if (el > 0) {
			if (n == max) {
				if (more != NULL)
					*more = true;
				break;
			}
			rr_rua_one(e, el, &out[n++]);
		}
		if (comma == NULL)
			break;
	}
	return n;
}
