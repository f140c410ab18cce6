/*
 * authres.c - writes our RFC 8601 Authentication-Results value and
 * recognises existing ones that claim our authserv-id (DESIGN.md 6).
 * Owns: nothing; no shared state, no GMime, no libmilter.
 * Limits: AR_PVALUE_MAX per property value; lines stay far below 998.
 * Errors: ar_build() returns -1 (bad arguments, unknown result, memory).
 *
 * Folding is one method per line, "\n\t" before each, as in the DESIGN.md
 * example: LF only, since libmilter wants header values folded with a bare
 * LF + WSP (see tag.c).  Method lines are not folded further at 78 columns:
 * the contract's own dkim line is 81 octets long, and RFC 5322 2.1.1 makes
 * 78 a SHOULD; the MUST of 998 is kept because every property value is at
 * most AR_PVALUE_MAX octets (the longest line, spf, stays under 600).
 */

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authres.h"
#include "util.h"

static const char *const ar_spf_results[] = {
	"none", "neutral", "pass", "fail", "softfail", "policy",
	"temperror", "permerror", NULL
};
static const char *const ar_dkim_results[] = {
	"none", "pass", "fail", "policy", "neutral", "temperror",
	"permerror", NULL
};
static const char *const ar_dmarc_results[] = {
	"none", "pass", "fail", "temperror", "permerror", NULL
};

static char
ar_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool
ar_alpha(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool
ar_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* RFC 2045 5.1 token character (bytes >= 0x80 are not). */
static bool
ar_tokenc(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* RFC 5322 3.2.3 atext. */
static bool
ar_atext(unsigned char c)
{
	return ar_alpha(c) || ar_digit(c) ||
	    (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/*
 * Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, <= U+10FFFF), 0 when invalid.
 */
static size_t
ar_utf8_len(const unsigned char *s, size_t n)
{
	size_t	len, i;
	unsigned long cp;

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
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/* RFC 6376 3.5 domain-name: sub-domain 1*("." sub-domain), LDH labels. */
static bool
ar_is_domain(const char *s, size_t n)
{
	size_t	i, lab = 0, dots = 0;

	if (n == 0 || n > 253)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (lab == 0 || s[i - 1] == '-')
				return false;
			lab = 0;
			dots++;
		} else if (ar_alpha(c) || ar_digit(c)) {
			lab++;
		} else if (c == '-') {
			if (lab == 0)
				return false;
			lab++;
		} else
			return false;
		if (lab > 63)
			return false;
	}
	return dots > 0 && lab > 0 && s[n - 1] != '-';
}

/* RFC 5322 3.2.3 dot-atom-text. */
static bool
ar_is_dot_atom(const char *s, size_t n)
{
	size_t	i;

	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return false;
		} else if (!ar_atext((unsigned char)s[i]))
			return false;
	}
	return true;
}

/* An RFC 5322 quoted-string without controls, as it may come in MAIL FROM. */
static bool
ar_is_quoted(const char *s, size_t n)
{
	size_t	i;

	if (n < 2 || s[0] != '"' || s[n - 1] != '"')
		return false;
	for (i = 1; i < n - 1; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f || c >= 0x80 || c == '"')
			return false;
		if (c == '\\') {
			if (++i >= n - 1)
				return false;
			c = (unsigned char)s[i];
			if (c < 0x20 || c == 0x7f || c >= 0x80)
				return false;
		}
	}
	return true;
}

static bool
ar_is_token(const char *s, size_t n)
{
	size_t	i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++)
		if (!ar_tokenc((unsigned char)s[i]))
			return false;
	return true;
}

/*
 * Appends s as an RFC 5322 quoted-string: '"' and '\' escaped, controls and
 * invalid UTF-8 as '?', valid UTF-8 kept (RFC 6532 3.2).  No CR, LF or NUL
 * can pass.  0 or -1.
 */
static int
ar_put_quoted(struct buf *b, const char *s, size_t n)
{
	const unsigned char	*u = (const unsigned char *)s;
	size_t			 i, l;

	if (buf_putc(b, '"') == -1)
		return -1;
	for (i = 0; i < n; i += l) {
		l = 1;
		if (u[i] == '"' || u[i] == '\\') {
			if (buf_putc(b, '\\') == -1 ||
			    buf_putc(b, (char)u[i]) == -1)
				return -1;
		} else if (u[i] < 0x20 || u[i] == 0x7f) {
			if (buf_putc(b, '?') == -1)
				return -1;
		} else if (u[i] < 0x80) {
			if (buf_putc(b, (char)u[i]) == -1)
				return -1;
		} else if ((l = ar_utf8_len(u + i, n - i)) == 0) {
			l = 1;
			if (buf_putc(b, '?') == -1)
				return -1;
		} else if (buf_append(b, s + i, l) == -1)
			return -1;
	}
	return buf_putc(b, '"');
}

/* A value (RFC 2045 token, else quoted-string).  0 or -1. */
static int
ar_put_value(struct buf *b, const char *s, size_t n)
{
	if (ar_is_token(s, n))
		return buf_append(b, s, n);
	return ar_put_quoted(b, s, n);
}

/* A domain-name as is when valid, else a quoted value.  0 or -1. */
static int
ar_put_domain(struct buf *b, const char *s, size_t n)
{
	if (ar_is_domain(s, n))
		return buf_append(b, s, n);
	return ar_put_quoted(b, s, n);
}

/*
 * An address as the RFC 8601 2.2 pvalue [local-part "@"] domain-name: the
 * local-part kept when a dot-atom or a clean quoted-string, else quoted;
 * anything that is not local@domain-name becomes one quoted-string.
 */
static int
ar_put_addr(struct buf *b, const char *s, size_t n)
{
	const char	*at;
	size_t		 ll;

	at = NULL;
	for (ll = n; ll > 0; ll--)
		if (s[ll - 1] == '@') {
			at = s + ll - 1;
			break;
		}
	if (at == NULL || !ar_is_domain(at + 1, n - (size_t)(at - s) - 1))
		return ar_put_quoted(b, s, n);
	ll = (size_t)(at - s);
	if (ll == 0 || ar_is_dot_atom(s, ll) || ar_is_quoted(s, ll)) {
		if (buf_append(b, s, ll) == -1)
			return -1;
	} else if (ar_put_quoted(b, s, ll) == -1)
		return -1;
	return buf_append(b, at, n - ll);
}

enum ar_kind { AR_K_VALUE, AR_K_DOMAIN, AR_K_ADDR };

/*
 * Appends " name=pvalue" unless s is NULL or empty, or its pvalue would
 * exceed AR_PVALUE_MAX (then the property is left out: cutting would change
 * its meaning, and every property is optional in RFC 8601).  0 or -1.
 */
static int
ar_put_prop(struct buf *b, const char *name, const char *s, size_t n,
    enum ar_kind kind)
{
	struct buf	v = { NULL, 0, 0, 4 * AR_PVALUE_MAX + 8 };
	int		rc = -1;

	if (s == NULL || n == 0)
		return 0;
	if (n > AR_PVALUE_MAX)
		return 0;
	switch (kind) {
	case AR_K_VALUE:
		rc = ar_put_value(&v, s, n);
		break;
	case AR_K_DOMAIN:
		rc = ar_put_domain(&v, s, n);
		break;
	case AR_K_ADDR:
		rc = ar_put_addr(&v, s, n);
		break;
	}
	if (rc == 0 && v.len <= AR_PVALUE_MAX)
		rc = buf_putc(b, ' ') == -1 || buf_puts(b, name) == -1 ||
		    buf_putc(b, '=') == -1 || buf_append(b, v.p, v.len) == -1 ?
		    -1 : 0;
	free(v.p);
	return rc;
}

/* "method=result" with result checked against its set.  0 or -1. */
static int
ar_put_result(struct buf *b, const char *method, const char *res,
    const char *const *set)
{
	size_t	i, k, n;

	if (res == NULL)
		res = "none";
	n = strlen(res);
	for (i = 0; set[i] != NULL; i++) {
		if (strlen(set[i]) != n)
			continue;
		for (k = 0; k < n && ar_lower(res[k]) == set[i][k]; k++)
			continue;
		if (k == n)
			break;
	}
	if (set[i] == NULL)
		return -1;
	if (buf_puts(b, "\n\t") == -1 || buf_puts(b, method) == -1 ||
	    buf_putc(b, '=') == -1 || buf_puts(b, set[i]) == -1)
		return -1;
	return 0;
}

static size_t
ar_len(const char *s)
{
	return s == NULL ? 0 : strlen(s);
}

static int
ar_put_spf(struct buf *b, const struct ar_input *in)
{
	char		 pm[sizeof("postmaster@") + AR_PVALUE_MAX];
	const char	*mf = in->smtp_mailfrom;
	size_t		 n = ar_len(mf);
	int		 w;

	if (ar_put_result(b, "spf", in->spf, ar_spf_results) == -1)
		return -1;
	/* The envelope may come with its SMTP angle brackets. */
	if (n >= 2 && mf[0] == '<' && mf[n - 1] == '>') {
		mf++;
		n -= 2;
	}
	if (n > 0) {
		if (ar_put_prop(b, "smtp.mailfrom", mf, n, AR_K_ADDR) == -1)
			return -1;
	} else if (ar_len(in->smtp_helo) > 0) {
		/* Null sender: RFC 7208 2.4, DESIGN.md 6.  Too long: left out. */
		w = snprintf(pm, sizeof(pm), "postmaster@%s", in->smtp_helo);
		if (w > 0 && (size_t)w < sizeof(pm) &&
		    ar_put_prop(b, "smtp.mailfrom", pm, (size_t)w,
		    AR_K_ADDR) == -1)
			return -1;
	}
	return ar_put_prop(b, "smtp.helo", in->smtp_helo,
	    ar_len(in->smtp_helo), AR_K_DOMAIN);
}

static int
ar_put_dkim(struct buf *b, const struct ar_dkim_sig *sig)
{
	char	bb[AR_DKIM_B_LEN];
	char	cmt[96];
	size_t	i, n = 0;
	int	w = 0;

	if (ar_put_result(b, "dkim", sig->result, ar_dkim_results) == -1)
		return -1;
	/*
	 * The comment tells a reader what the result rests on: the key
	 * ("2048-bit key", "ed25519 key"), a body signed only in part (l=,
	 * RFC 6376 8.2: text may have been appended), a key in testing.
	 */
	if (sig->ed25519)
		w = snprintf(cmt, sizeof(cmt), "ed25519 key");
	else if (sig->bits > 0)
		w = snprintf(cmt, sizeof(cmt), "%u-bit key", sig->bits);
	if (sig->partial_body)
		w += snprintf(cmt + w, sizeof(cmt) - (size_t)w, "%s%s",
		    w > 0 ? "; " : "", "partial body signed (l=)");
	if (sig->testing)
		w += snprintf(cmt + w, sizeof(cmt) - (size_t)w, "%s%s",
		    w > 0 ? "; " : "", "testing key");
	if (w > 0 && (buf_putc(b, ' ') == -1 || buf_putc(b, '(') == -1 ||
	    buf_append(b, cmt, (size_t)w) == -1 || buf_putc(b, ')') == -1))
		return -1;
	if (ar_put_prop(b, "header.d", sig->domain, ar_len(sig->domain),
	    AR_K_DOMAIN) == -1 ||
	    ar_put_prop(b, "header.s", sig->selector, ar_len(sig->selector),
	    AR_K_VALUE) == -1)
		return -1;
	/* b= may carry folding whitespace (RFC 6376 3.5); it is not data. */
	for (i = 0; sig->b != NULL && sig->b[i] != '\0' &&
	    n < AR_DKIM_B_LEN; i++)
		if (strchr(" \t\r\n", sig->b[i]) == NULL)
			bb[n++] = sig->b[i];
	return ar_put_prop(b, "header.b", bb, n, AR_K_VALUE);
}

/* A word for the dmarc comment: ctext-safe, short. */
static bool
ar_comment_word(const char *s)
{
	size_t	i;

	if (s == NULL || s[0] == '\0')
		return false;
	for (i = 0; s[i] != '\0'; i++)
		if (i >= AR_COMMENT_WORD_MAX || !(ar_alpha((unsigned char)s[i]) ||
		    ar_digit((unsigned char)s[i]) || s[i] == '-' ||
		    s[i] == '_' || s[i] == '.'))
			return false;
	return true;
}

static int
ar_put_dmarc(struct buf *b, const struct ar_input *in)
{
	static const char *const name[] = { "p=", "sp=", "dis=" };
	const char	*val[] = { in->dmarc_p, in->dmarc_sp, in->dmarc_dis };
	bool		 paren = false;
	size_t		 i;

	if (ar_put_result(b, "dmarc", in->dmarc, ar_dmarc_results) == -1)
		return -1;
	/* Policy words come from a DNS record: hostile, so only plain words. */
	for (i = 0; i < 3; i++) {
		if (!ar_comment_word(val[i]))
			continue;
		if (buf_puts(b, paren ? " " : " (") == -1 ||
		    buf_puts(b, name[i]) == -1 || buf_puts(b, val[i]) == -1)
			return -1;
		paren = true;
	}
	if (paren && buf_putc(b, ')') == -1)
		return -1;
	return ar_put_prop(b, "header.from", in->header_from,
	    ar_len(in->header_from), AR_K_DOMAIN);
}

int
ar_build(const struct ar_input *in, char **out)
{
	struct buf	b = { NULL, 0, 0, AR_VALUE_MAX };
	size_t		i, n;

	if (out == NULL)
		return -1;
	*out = NULL;
	if (in == NULL || (in->ndkim > 0 && in->dkim == NULL))
		return -1;
	n = ar_len(in->authserv_id);
	if (n == 0 || n > AR_PVALUE_MAX)
		return -1;
	if (ar_put_value(&b, in->authserv_id, n) == -1 ||
	    b.len > AR_PVALUE_MAX)
		goto fail;

	if (buf_putc(&b, ';') == -1 || ar_put_spf(&b, in) == -1 ||
	    buf_putc(&b, ';') == -1)
		goto fail;
	if (in->ndkim == 0) {
		if (ar_put_result(&b, "dkim", "none", ar_dkim_results) == -1 ||
		    buf_putc(&b, ';') == -1)
			goto fail;
	}
	for (i = 0; i < in->ndkim && i < AR_DKIM_MAX; i++)
		if (ar_put_dkim(&b, &in->dkim[i]) == -1 ||
		    buf_putc(&b, ';') == -1)
			goto fail;
	if (ar_put_dmarc(&b, in) == -1)
		goto fail;
	*out = b.p;
	return 0;
fail:
	free(b.p);
	return -1;
}

/*
 * Skips CFWS (RFC 5322 3.2.2) from *i: whitespace, CR, LF and comments,
 * nested, with quoted-pairs.  Iterative, a depth counter instead of
 * recursion.  false when a comment is not closed.
 */
static bool
ar_skip_cfws(const char *v, size_t len, size_t *i)
{
	size_t	depth = 0;

	while (*i < len) {
		char c = v[*i];

		if (depth == 0) {
			if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
				(*i)++;
				continue;
			}
			if (c != '(')
				return true;
		}
		if (c == '\\') {
			(*i)++;			/* quoted-pair in a comment */
		} else if (c == '(') {
			depth++;
		} else if (c == ')') {
			depth--;
		}
		(*i)++;
	}
	return depth == 0;
}

bool
ar_is_ours(const char *value, size_t len, const char *authserv_id)
{
	size_t	i = 0, k = 0, idlen, start;

	if (value == NULL || authserv_id == NULL)
		return false;
	if ((idlen = strlen(authserv_id)) == 0)
		return false;
	if (!ar_skip_cfws(value, len, &i) || i >= len)
		return false;

	if (value[i] == '"') {
		/* quoted-string: compare its content, unescaped, unfolded */
		for (i++; i < len && value[i] != '"'; i++) {
			char c = value[i];

			if (c == '\r' || c == '\n')
				continue;
			if (c == '\\') {
				if (++i >= len)
					return false;
				c = value[i];
			}
			if (k >= idlen || ar_lower(c) != ar_lower(authserv_id[k]))
				return false;
			k++;
		}
		return i < len && k == idlen;
	}

	/* Bytes >= 0x80 continue the token: "id\xc3\xa9" is another id. */
	for (start = i; i < len && (ar_tokenc((unsigned char)value[i]) ||
	    (unsigned char)value[i] >= 0x80); i++)
		continue;
	if (i - start != idlen)
		return false;
	for (k = 0; k < idlen; k++)
		if (ar_lower(value[start + k]) != ar_lower(authserv_id[k]))
			return false;
	return true;
}
