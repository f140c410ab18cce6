/*
 * spf.c - SPF checks (RFC 7208) on libspf2, made conformant around it.
 * libspf2 evaluates; a custom SPF_dns_server_t layer answers its lookups
 * from dns.c, validates every SPF record against the section 12 ABNF
 * (a malformed one aborts the check: permerror), counts DNS-querying terms
 * and void lookups (4.6.4), and hands libspf2 a normalised record (exp=
 * and unknown modifiers dropped, redirect= dropped beside "all", /0
 * prefixes that libspf2 rejects rewritten or evaluated here).  The
 * explanation of a fail is expanded here (section 7), not by libspf2.
 * Owns: per check, one struct spf_ctx, one libspf2 server and layer.
 * Limits: see spf.h.  Errors: results; -1 only when libspf2 fails.
 * The only file that includes <spf2/spf.h>.
 */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <spf2/spf.h>

#include "dns.h"
#include "log.h"
#include "spf.h"
#include "util.h"

#define SPF_NAMES_MAX	64	/* MX/PTR target names kept per check */
#define SPF_RECS_MAX	32	/* records remembered per check */
#define SPF_SPEC_MAX	256	/* bytes of a kept redirect=/exp= spec */
#define SPF_PARTS_MAX	128	/* parts of a macro value */
#define SPF_REWRITE_MAX	(2 * SPF_RECORD_MAX)

enum spf_abort {
	SPF_AB_NONE,
	SPF_AB_MALFORMED,	/* permerror */
	SPF_AB_LIMIT,		/* permerror */
	SPF_AB_VOID,		/* permerror */
	SPF_AB_DNS		/* temperror */
};

struct spf_rec {
	char	 domain[DNS_NAME_MAX + 1];
	bool	 has_all;
	bool	 has_redirect;
	bool	 has_exp;
	char	 redirect[SPF_SPEC_MAX];	/* unexpanded domain-spec */
	char	 exp[SPF_SPEC_MAX];		/* unexpanded domain-spec */
};

struct spf_name {
	char	 name[DNS_NAME_MAX + 1];
	bool	 from_ptr;
};

struct spf_ctx {
	struct dns	*dns;		/* borrows (for the call) */
	uint64_t	 deadline;
	int		 family;
	unsigned char	 addr[16];
	const char	*local;		/* borrows: sender local-part */
	const char	*domain;	/* borrows: sender domain */
	const char	*helo;		/* borrows */
	unsigned	 ntxt;		/* TXT lookups (the first is free) */
	unsigned	 nlookups;	/* DNS-querying terms */
	unsigned	 nvoid;
	enum spf_abort	 abort;
	char		 problem[256];
	struct spf_name	 names[SPF_NAMES_MAX];
	size_t		 nnames;
	struct spf_rec	 recs[SPF_RECS_MAX];
	size_t		 nrecs;
	bool		 ptr_done;
	bool		 upper_hex;	/* client IP text in upper case */
	char		 ptr[DNS_NAME_MAX + 1];	/* %{p} value */
};

/* What the validator learns about a record. */
struct spf_parse {
	bool		 has_all;
	bool		 has_redirect;
	bool		 has_exp;
	const char	*redirect;	/* borrows from the record */
	size_t		 redirect_len;
	const char	*exp;
	size_t		 exp_len;
};

const char *
spf_result_name(enum spf_result r)
{
	switch (r) {
	case SPF_R_NONE:	return "none";
	case SPF_R_NEUTRAL:	return "neutral";
	case SPF_R_PASS:	return "pass";
	case SPF_R_FAIL:	return "fail";
	case SPF_R_SOFTFAIL:	return "softfail";
	case SPF_R_TEMPERROR:	return "temperror";
	case SPF_R_PERMERROR:	return "permerror";
	}
	return "permerror";
}

/* Ends the check: the first reason wins.  what: "... at", name: where. */
static void
ctx_abort(struct spf_ctx *ctx, enum spf_abort ab, const char *what,
    const char *name)
{
	char esc[128];

	if (ctx->abort != SPF_AB_NONE)
		return;
	ctx->abort = ab;
	str_escape_log(esc, sizeof(esc), name, strlen(name));
	/* a log text: cut short rather than lost */
	if (snprintf(ctx->problem, sizeof(ctx->problem), "%s %s", what,
	    esc) >= (int)sizeof(ctx->problem))
		ctx->problem[sizeof(ctx->problem) - 1] = '\0';
}

/*
 * The validator (RFC 7208 section 12).
 */

static bool
is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

static bool
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/*
 * macro-string (7.1); with explain, also SP (explain-string, 6.2) and the
 * letters c, r, t, which are legal only in explanation text.  *endm tells
 * whether the string ends in a macro-expand (domain-end, section 12).
 */
static int
macro_check(const char *s, size_t n, bool explain, bool *endm)
{
	size_t i = 0;
	bool last = false;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			if (i + 1 >= n)
				return -1;
			c = (unsigned char)s[i + 1];
			if (c == '%' || c == '_' || c == '-') {
				i += 2;
				last = true;
				continue;
			}
			if (c != '{')
				return -1;
			i += 2;
			if (i >= n)
				return -1;
			c = (unsigned char)tolower((unsigned char)s[i]);
			if (strchr("slodiphv", c) == NULL &&
			    !(explain && strchr("crt", c) != NULL))
				return -1;
			if (c == '\0')
				return -1;
			i++;
			if (i < n && isdigit((unsigned char)s[i])) {
				unsigned long v = 0;

				while (i < n && isdigit((unsigned char)s[i])) {
					if (v < 100000)
						v = v * 10 + (unsigned)(s[i] -
						    '0');
					i++;
				}
				/* 7.1: a DIGIT transformer is nonzero */
				if (v == 0)
					return -1;
			}
			if (i < n && (s[i] == 'r' || s[i] == 'R'))
				i++;
			while (i < n && s[i] != '\0' &&
			    strchr(".-+,/_=", s[i]) != NULL)
				i++;
			if (i >= n || s[i] != '}')
				return -1;
			i++;
			last = true;
		} else if ((c >= 0x21 && c <= 0x7e) || (explain && c == ' ')) {
			i++;
			last = false;
		} else
			return -1;
	}
	*endm = last;
	return 0;
}

/* "." toplabel ["."] at the end of [s, s+n). */
static bool
toplabel_ok(const char *s, size_t n)
{
	size_t e, b, i;
	bool alpha = false;

	if (n > 0 && s[n - 1] == '.')
		n--;
	e = n;
	b = e;
	while (b > 0 && s[b - 1] != '.')
		b--;
	if (b == 0 || b == e)
		return false;
	if (s[b] == '-' || s[e - 1] == '-')
		return false;
	for (i = b; i < e; i++) {
		if (is_alpha((unsigned char)s[i]))
			alpha = true;
		else if (!is_alnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	}
	return alpha;
}

static int
domain_spec_check(const char *s, size_t n)
{
	bool endm = false;

	if (n == 0 || macro_check(s, n, false, &endm) != 0)
		return -1;
	return endm || toplabel_ok(s, n) ? 0 : -1;
}

/* ip4-cidr-length / ip6-cidr-length digits: "0" or no leading zero. */
static int
cidr_num(const char *s, size_t n, unsigned max, unsigned *out)
{
	size_t i;
	unsigned v = 0;

	if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* dual-cidr-length at s ("/N", "//M", "/N//M"); v4/v6 -1 when absent. */
static int
dual_cidr(const char *s, size_t n, int *v4, int *v6)
{
	const char *sl;
	unsigned v;

	*v4 = *v6 = -1;
	if (n == 0)
		return 0;
	if (s[0] != '/')
		return -1;
	if (n >= 2 && s[1] == '/') {
		if (cidr_num(s + 2, n - 2, 128, &v) != 0)
			return -1;
		*v6 = (int)v;
		return 0;
	}
	sl = memchr(s + 1, '/', n - 1);
	if (sl == NULL) {
		if (cidr_num(s + 1, n - 1, 32, &v) != 0)
			return -1;
		*v4 = (int)v;
		return 0;
	}
	if (cidr_num(s + 1, (size_t)(sl - s - 1), 32, &v) != 0)
		return -1;
	*v4 = (int)v;
	if ((size_t)(sl - s) + 1 >= n || sl[1] != '/')
		return -1;
	if (cidr_num(sl + 2, n - (size_t)(sl - s) - 2, 128, &v) != 0)
		return -1;
	*v6 = (int)v;
	return 0;
}

/* ip4-network: dotted quad, dec-octet without leading zeros. */
static int
ip4_check(const char *s, size_t n, unsigned char out[4])
{
	size_t i = 0;
	int part;

	for (part = 0; part < 4; part++) {
		size_t b = i;
		unsigned v = 0;

		while (i < n && isdigit((unsigned char)s[i]) && i - b < 3) {
			v = v * 10 + (unsigned)(s[i] - '0');
			i++;
		}
		if (i == b || v > 255 || (i - b > 1 && s[b] == '0'))
			return -1;
		out[part] = (unsigned char)v;
		if (part < 3) {
			if (i >= n || s[i] != '.')
				return -1;
			i++;
		}
	}
	return i == n ? 0 : -1;
}

static int
ip6_check(const char *s, size_t n, unsigned char out[16])
{
	char tmp[INET6_ADDRSTRLEN + 1];

	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return inet_pton(AF_INET6, tmp, out) == 1 ? 0 : -1;
}

/*
 * Splits a mechanism argument before its dual-cidr-length: the first '/'
 * outside a macro whose rest parses as one ('/' is legal in a
 * domain-spec, e.g. "a:foo:bar/baz.example.com").
 */
static size_t
spec_end(const char *s, size_t n)
{
	size_t i;
	bool in = false;
	int v4, v6;

	for (i = 0; i < n; i++) {
		if (s[i] == '{')
			in = true;
		else if (s[i] == '}')
			in = false;
		else if (s[i] == '/' && !in &&
		    dual_cidr(s + i, n - i, &v4, &v6) == 0)
			return i;
	}
	return n;
}

/*
 * One term as term_parse() reads it: the lower-case mechanism or modifier
 * name, qualifier, argument and CIDR lengths.
 */
struct spf_term {
	char		 qual;		/* '+', '-', '~', '?' */
	bool		 modifier;
	char		 name[16];	/* lower case, "" if unknown */
	const char	*arg;		/* after ':' or '=' (NULL: none) */
	size_t		 arglen;
	const char	*cidr;		/* dual-cidr text (a, mx, ip4, ip6) */
	size_t		 cidrlen;
	int		 v4, v6;	/* cidr values, -1 absent */
};

static int
term_parse(const char *t, size_t n, struct spf_term *term, char *why,
    size_t wl)
{
	size_t i = 0, nl;
	const char *name;

	memset(term, 0, sizeof(*term));
	term->qual = '+';
	term->v4 = term->v6 = -1;
	/* modifier: name "=" (name = ALPHA *( ALPHA / DIGIT / - _ . )) */
	while (i < n && (is_alnum((unsigned char)t[i]) || t[i] == '-' ||
	    t[i] == '_' || t[i] == '.'))
		i++;
	if (i < n && t[i] == '=' && i > 0) {
		if (!is_alpha((unsigned char)t[0])) {
			snprintf(why, wl, "bad modifier name");
			return -1;
		}
		term->modifier = true;
		term->arg = t + i + 1;
		term->arglen = n - i - 1;
		if (i == 8 && mem_ieq(t, i, "redirect", 8)) {
			strcpy(term->name, "redirect");
			if (domain_spec_check(term->arg, term->arglen) != 0) {
				snprintf(why, wl, "bad redirect= domain");
				return -1;
			}
		} else if (i == 3 && mem_ieq(t, i, "exp", 3)) {
			strcpy(term->name, "exp");
			if (domain_spec_check(term->arg, term->arglen) != 0) {
				snprintf(why, wl, "bad exp= domain");
				return -1;
			}
		} else {
			bool endm;

			if (macro_check(term->arg, term->arglen, false,
			    &endm) != 0) {
				snprintf(why, wl, "bad macro in modifier");
				return -1;
			}
		}
		return 0;
	}
	i = 0;
	if (n > 0 && strchr("+-~?", t[0]) != NULL) {
		term->qual = t[0];
		i = 1;
	}
	name = t + i;
	while (i < n && is_alnum((unsigned char)t[i]))
		i++;
	nl = (size_t)(t + i - name);
	if (nl == 0 || nl >= sizeof(term->name)) {
		snprintf(why, wl, "unknown mechanism");
		return -1;
	}
	memcpy(term->name, name, nl);
	term->name[nl] = '\0';
	for (char *p = term->name; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	t += i;
	n -= i;
	if (strcmp(term->name, "all") == 0) {
		if (n != 0)
			goto bad;
		return 0;
	}
	if (strcmp(term->name, "include") == 0 ||
	    strcmp(term->name, "exists") == 0 ||
	    strcmp(term->name, "ptr") == 0) {
		if (n == 0 && strcmp(term->name, "ptr") == 0)
			return 0;
		if (n == 0 || t[0] != ':')
			goto bad;
		term->arg = t + 1;
		term->arglen = n - 1;
		if (domain_spec_check(term->arg, term->arglen) != 0)
			goto bad;
		return 0;
	}
	if (strcmp(term->name, "a") == 0 || strcmp(term->name, "mx") == 0) {
		size_t e;

		if (n > 0 && t[0] == ':') {
			e = spec_end(t + 1, n - 1);
			term->arg = t + 1;
			term->arglen = e;
			if (domain_spec_check(term->arg, term->arglen) != 0)
				goto bad;
			t += 1 + e;
			n -= 1 + e;
		}
		term->cidr = t;
		term->cidrlen = n;
		if (dual_cidr(t, n, &term->v4, &term->v6) != 0)
			goto bad;
		return 0;
	}
	if (strcmp(term->name, "ip4") == 0 || strcmp(term->name, "ip6") == 0) {
		unsigned char a[16];
		const char *sl;
		size_t e;
		unsigned v;
		bool six = term->name[2] == '6';

		if (n == 0 || t[0] != ':')
			goto bad;
		t++;
		n--;
		sl = memchr(t, '/', n);
		e = sl == NULL ? n : (size_t)(sl - t);
		term->arg = t;
		term->arglen = e;
		if ((six ? ip6_check(t, e, a) : ip4_check(t, e, a)) != 0)
			goto bad;
		if (sl != NULL) {
			term->cidr = sl;
			term->cidrlen = n - e;
			if (cidr_num(sl + 1, n - e - 1, six ? 128 : 32,
			    &v) != 0)
				goto bad;
			if (six)
				term->v6 = (int)v;
			else
				term->v4 = (int)v;
		}
		return 0;
	}
	snprintf(why, wl, "unknown mechanism");
	return -1;
bad:
	snprintf(why, wl, "bad %s mechanism", term->name);
	return -1;
}

/* Iterates the terms: *pos advances; 0 at the end. */
static int
term_next(const char *rec, size_t len, size_t *pos, const char **t,
    size_t *tl)
{
	size_t i = *pos, b;

	while (i < len && rec[i] == ' ')
		i++;
	if (i >= len)
		return 0;
	b = i;
	while (i < len && rec[i] != ' ')
		i++;
	*t = rec + b;
	*tl = i - b;
	*pos = i;
	return 1;
}

static int
rec_parse(const char *rec, size_t len, struct spf_parse *p, char *why,
    size_t wl)
{
	const char *t;
	size_t tl, pos = 6;
	struct spf_term term;

	memset(p, 0, sizeof(*p));
	if (len < 6 || !mem_ieq(rec, 6, "v=spf1", 6) ||
	    (len > 6 && rec[6] != ' ')) {
		snprintf(why, wl, "not an SPF record");
		return -1;
	}
	if (memchr(rec, '\0', len) != NULL) {
		snprintf(why, wl, "NUL byte in record");
		return -1;
	}
	while (term_next(rec, len, &pos, &t, &tl)) {
		if (term_parse(t, tl, &term, why, wl) != 0)
			return -1;
		if (!term.modifier && strcmp(term.name, "all") == 0)
			p->has_all = true;
		if (term.modifier && strcmp(term.name, "redirect") == 0) {
			if (p->has_redirect) {
				snprintf(why, wl, "duplicate redirect=");
				return -1;
			}
			p->has_redirect = true;
			p->redirect = term.arg;
			p->redirect_len = term.arglen;
		}
		if (term.modifier && strcmp(term.name, "exp") == 0) {
			if (p->has_exp) {
				snprintf(why, wl, "duplicate exp=");
				return -1;
			}
			p->has_exp = true;
			p->exp = term.arg;
			p->exp_len = term.arglen;
		}
	}
	return 0;
}

int
spf_record_validate(const char *rec, size_t len, char *why, size_t whylen)
{
	struct spf_parse p;

	return rec_parse(rec, len, &p, why, whylen);
}

/*
 * DNS through dns.c, with the RFC 7208 4.6.4 accounting.
 */

static bool
name_known(const struct spf_ctx *ctx, const char *name, bool *from_ptr)
{
	size_t i;

	for (i = 0; i < ctx->nnames; i++)
		if (str_ieq(ctx->names[i].name, name)) {
			*from_ptr = ctx->names[i].from_ptr;
			return true;
		}
	return false;
}

static void
name_add(struct spf_ctx *ctx, const char *name, bool from_ptr)
{
	bool fp;

	if (ctx->nnames >= SPF_NAMES_MAX || name_known(ctx, name, &fp))
		return;
	snprintf(ctx->names[ctx->nnames].name, sizeof(ctx->names[0].name),
	    "%s", name);
	ctx->names[ctx->nnames++].from_ptr = from_ptr;
}

/*
 * One query.  counted: a DNS-querying term (limit, void lookups);
 * soft: a failure is not an error of the check (PTR, 5.5).  Returns the
 * status; *qp is the query (caller frees) or NULL once aborted.
 */
static enum dns_status
ctx_query(struct spf_ctx *ctx, const char *name, enum dns_type type,
    bool counted, bool soft, struct dns_query **qp)
{
	struct dns_query *q;
	enum dns_status st;

	*qp = NULL;
	if (ctx->abort != SPF_AB_NONE)
		return DNS_NXDOMAIN;
	if (counted && ++ctx->nlookups > SPF_LOOKUP_MAX) {
		ctx_abort(ctx, SPF_AB_LIMIT, "more than 10 DNS lookups at",
		    name);
		return DNS_NXDOMAIN;
	}
	q = dns_query_start(ctx->dns, name, type);
	st = dns_query_wait(q, ctx->deadline);
	if (st == DNS_OK && dns_query_count(q) == 0)
		st = DNS_NODATA;
	if (counted && (st == DNS_NODATA || st == DNS_NXDOMAIN) &&
	    ++ctx->nvoid > SPF_VOID_MAX)
		ctx_abort(ctx, SPF_AB_VOID, "more than 2 void lookups at",
		    name);
	if ((st == DNS_TIMEOUT || st == DNS_SERVFAIL || st == DNS_ERROR) &&
	    !soft) {
		char msg[64];

		snprintf(msg, sizeof(msg), "DNS %s for",
		    dns_status_name(st));
		ctx_abort(ctx, SPF_AB_DNS, msg, name);
	}
	*qp = q;
	return st;
}

/* Whether one A/AAAA rdata equals the client address under prefix. */
static bool
addr_match(const struct spf_ctx *ctx, const unsigned char *rd, size_t len,
    int prefix)
{
	size_t full, alen = ctx->family == AF_INET ? 4 : 16;
	unsigned bits;

	if (len != alen)
		return false;
	if (prefix < 0)
		prefix = (int)alen * 8;
	full = (size_t)prefix / 8;
	bits = (unsigned)prefix % 8;
	if (memcmp(rd, ctx->addr, full) != 0)
		return false;
	if (bits != 0) {
		unsigned char m = (unsigned char)(0xff << (8 - bits));

		if ((rd[full] & m) != (ctx->addr[full] & m))
			return false;
	}
	return true;
}

/*
 * Macro expansion (RFC 7208 section 7).
 */

static void
ptr_validate(struct spf_ctx *ctx, const char *d)
{
	char rev[DNS_NAME_MAX + 1], name[DNS_NAME_MAX + 1];
	struct dns_query *q, *qa;
	size_t i, j, n;
	bool sub = false;

	ctx->ptr_done = true;
	snprintf(ctx->ptr, sizeof(ctx->ptr), "unknown");
	if (dns_reverse_name(ctx->family, ctx->addr, rev, sizeof(rev)) != 0)
		return;
	q = dns_query_start(ctx->dns, rev, DNS_T_PTR);
	if (dns_query_wait(q, ctx->deadline) != DNS_OK) {
		dns_query_free(q);
		return;
	}
	n = dns_query_count(q);
	for (i = 0; i < n && i < SPF_PTR_MAX && !sub; i++) {
		const unsigned char *rd;
		size_t len, dl = strlen(d), nl;

		rd = dns_query_rdata(q, i, &len);
		if (dns_name_from_wire(rd, len, name, sizeof(name)) != 0)
			continue;
		qa = dns_query_start(ctx->dns, name, ctx->family == AF_INET ?
		    DNS_T_A : DNS_T_AAAA);
		if (dns_query_wait(qa, ctx->deadline) == DNS_OK) {
			for (j = 0; j < dns_query_count(qa); j++) {
				const unsigned char *ad;
				size_t al;

				ad = dns_query_rdata(qa, j, &al);
				if (!addr_match(ctx, ad, al, -1))
					continue;
				nl = strlen(name);
				/* 7.3: prefer the domain or a subdomain */
				if (str_ieq(name, d) || (nl > dl &&
				    name[nl - dl - 1] == '.' &&
				    str_ieq(name + nl - dl, d)))
					sub = true;
				if (sub || strcmp(ctx->ptr, "unknown") == 0)
					snprintf(ctx->ptr, sizeof(ctx->ptr),
					    "%s", name);
				break;
			}
		}
		dns_query_free(qa);
	}
	dns_query_free(q);
}

static int
out_add(char *out, size_t outlen, size_t *o, const char *s, size_t n)
{
	if (*o + n >= outlen)
		return -1;
	memcpy(out + *o, s, n);
	*o += n;
	out[*o] = '\0';
	return 0;
}

static int
macro_value(struct spf_ctx *ctx, int letter, const char *d, char *v,
    size_t vl)
{
	char tmp[INET6_ADDRSTRLEN];
	size_t i, o = 0;

	switch (letter) {
	case 's':
		snprintf(v, vl, "%s@%s", ctx->local, ctx->domain);
		break;
	case 'l':
		snprintf(v, vl, "%s", ctx->local);
		break;
	case 'o':
		snprintf(v, vl, "%s", ctx->domain);
		break;
	case 'd':
		snprintf(v, vl, "%s", d);
		break;
	case 'h':
		snprintf(v, vl, "%s", ctx->helo);
		break;
	case 'v':
		snprintf(v, vl, "%s", ctx->family == AF_INET ? "in-addr" :
		    "ip6");
		break;
	case 'r':
		snprintf(v, vl, "unknown");
		break;
	case 't':
		snprintf(v, vl, "%lld", (long long)time(NULL));
		break;
	case 'p':
		if (!ctx->ptr_done)
			ptr_validate(ctx, d);
		snprintf(v, vl, "%s", ctx->ptr);
		break;
	case 'c':
	case 'i':
		if (ctx->family == AF_INET || letter == 'c') {
			if (inet_ntop(ctx->family, ctx->addr, tmp,
			    sizeof(tmp)) == NULL)
				return -1;
			snprintf(v, vl, "%s", tmp);
			break;
		}
		/* 7.3: IPv6 %{i} is dot-separated nibbles */
		for (i = 0; i < 16 && o + 4 < vl; i++)
			o += (size_t)snprintf(v + o, vl - o,
			    ctx->upper_hex ? "%s%X.%X" : "%s%x.%x",
			    i ? "." : "", ctx->addr[i] >> 4,
			    ctx->addr[i] & 15);
		break;
	default:
		return -1;
	}
	return 0;
}

/*
 * Expands [s, s+n) with d as the current domain; domain: a domain-spec,
 * shortened from the left to 253 bytes (7.3).  0 or -1.
 */
static int macro_expand1(struct spf_ctx *, const char *, size_t,
    const char *, char *, size_t);

static int
macro_expand(struct spf_ctx *ctx, const char *s, size_t n, const char *d,
    bool domain, char *out, size_t outlen)
{
	char *big, *p;
	size_t o;

	if (!domain)
		return macro_expand1(ctx, s, n, d, out, outlen);
	/* 7.3: expand in full, then drop labels from the left */
	big = xmalloc(SPF_RECORD_MAX);
	if (macro_expand1(ctx, s, n, d, big, SPF_RECORD_MAX) != 0) {
		free(big);
		return -1;
	}
	o = strlen(big);
	if (o > 0 && big[o - 1] == '.')
		big[--o] = '\0';
	p = big;
	while (strlen(p) > DNS_NAME_MAX) {
		char *dot = strchr(p, '.');

		if (dot == NULL) {
			free(big);
			return -1;
		}
		p = dot + 1;
	}
	if (strlen(p) >= outlen) {
		free(big);
		return -1;
	}
	memcpy(out, p, strlen(p) + 1);
	free(big);
	return 0;
}

static int
macro_expand1(struct spf_ctx *ctx, const char *s, size_t n, const char *d,
    char *out, size_t outlen)
{
	size_t i = 0, o = 0;

	out[0] = '\0';
	while (i < n) {
		char val[1024], joined[1024];
		const char *parts[SPF_PARTS_MAX];
		size_t plen[SPF_PARTS_MAX], np = 0, k, from, j = 0;
		unsigned long keep = 0;
		bool rev = false, upper;
		char delims[8] = "";
		int letter;

		if (s[i] != '%') {
			if (out_add(out, outlen, &o, s + i, 1) != 0)
				return -1;
			i++;
			continue;
		}
		if (i + 1 >= n)
			return -1;
		if (s[i + 1] == '%' || s[i + 1] == '_' || s[i + 1] == '-') {
			const char *r = s[i + 1] == '%' ? "%" :
			    s[i + 1] == '_' ? " " : "%20";

			if (out_add(out, outlen, &o, r, strlen(r)) != 0)
				return -1;
			i += 2;
			continue;
		}
		if (s[i + 1] != '{' || i + 2 >= n)
			return -1;
		i += 2;
		upper = isupper((unsigned char)s[i]);
		letter = tolower((unsigned char)s[i]);
		i++;
		while (i < n && isdigit((unsigned char)s[i])) {
			if (keep < 1000)
				keep = keep * 10 + (unsigned)(s[i] - '0');
			i++;
		}
		if (i < n && (s[i] == 'r' || s[i] == 'R')) {
			rev = true;
			i++;
		}
		while (i < n && s[i] != '}') {
			if (strlen(delims) + 1 < sizeof(delims) &&
			    strchr(delims, s[i]) == NULL)
				delims[strlen(delims)] = s[i];
			i++;
		}
		if (i >= n)
			return -1;
		i++;
		if (delims[0] == '\0')
			delims[0] = '.';
		if (macro_value(ctx, letter, d, val, sizeof(val)) != 0)
			return -1;
		/* split, reverse, keep the rightmost parts, join with '.' */
		for (k = 0, from = 0; ; k++) {
			if (val[k] == '\0' || strchr(delims, val[k]) != NULL) {
				if (np < SPF_PARTS_MAX) {
					parts[np] = val + from;
					plen[np++] = k - from;
				}
				from = k + 1;
				if (val[k] == '\0')
					break;
			}
		}
		if (rev)
			for (k = 0; k < np / 2; k++) {
				const char *tp = parts[k];
				size_t tl = plen[k];

				parts[k] = parts[np - 1 - k];
				plen[k] = plen[np - 1 - k];
				parts[np - 1 - k] = tp;
				plen[np - 1 - k] = tl;
			}
		from = keep > 0 && keep < np ? np - keep : 0;
		joined[0] = '\0';
		for (k = from; k < np; k++) {
			if (j + plen[k] + 2 >= sizeof(joined))
				return -1;
			if (k > from)
				joined[j++] = '.';
			memcpy(joined + j, parts[k], plen[k]);
			j += plen[k];
			joined[j] = '\0';
		}
		if (upper) {
			/* 7.3: upper-case letters are URL-escaped */
			for (k = 0; joined[k] != '\0'; k++) {
				unsigned char c = (unsigned char)joined[k];
				char esc[4];

				if (is_alnum(c) || strchr("-._~", c) != NULL) {
					if (out_add(out, outlen, &o,
					    joined + k, 1) != 0)
						return -1;
				} else {
					snprintf(esc, sizeof(esc), "%%%02X", c);
					if (out_add(out, outlen, &o, esc,
					    3) != 0)
						return -1;
				}
			}
		} else if (out_add(out, outlen, &o, joined, j) != 0)
			return -1;
	}
	return 0;
}

/*
 * a/0 and mx/0 (and //0), which libspf2 refuses: evaluated here.
 * Returns 1 (matches), 0 (does not), -1 (the check is aborted).
 */
static int
zero_eval(struct spf_ctx *ctx, const struct spf_term *term, const char *d)
{
	char target[DNS_NAME_MAX + 2], mxn[DNS_NAME_MAX + 1];
	enum dns_type t = ctx->family == AF_INET ? DNS_T_A : DNS_T_AAAA;
	struct dns_query *q, *qa;
	enum dns_status st;
	size_t i, len;
	int match = 0;

	if (term->arg != NULL) {
		if (macro_expand(ctx, term->arg, term->arglen, d, true, target,
		    sizeof(target)) != 0)
			return 0;
	} else
		snprintf(target, sizeof(target), "%s", d);
	if (strcmp(term->name, "a") == 0) {
		st = ctx_query(ctx, target, t, true, false, &q);
		match = st == DNS_OK;
		dns_query_free(q);
		return ctx->abort != SPF_AB_NONE ? -1 : match;
	}
	st = ctx_query(ctx, target, DNS_T_MX, true, false, &q);
	if (st == DNS_OK && dns_query_count(q) > SPF_MX_MAX)
		ctx_abort(ctx, SPF_AB_LIMIT, "more than 10 MX names at",
		    target);
	for (i = 0; st == DNS_OK && ctx->abort == SPF_AB_NONE && !match &&
	    i < dns_query_count(q); i++) {
		const unsigned char *rd = dns_query_rdata(q, i, &len);

		if (len < 3 || dns_name_from_wire(rd + 2, len - 2, mxn,
		    sizeof(mxn)) != 0)
			continue;
		if (ctx_query(ctx, mxn, t, false, false, &qa) == DNS_OK)
			match = 1;
		dns_query_free(qa);
	}
	dns_query_free(q);
	return ctx->abort != SPF_AB_NONE ? -1 : match;
}

/*
 * The record libspf2 gets: exp= and unknown modifiers dropped (the
 * explanation is ours; libspf2 refuses some legal modifier names),
 * redirect= dropped beside "all" (6.1), ip4/ip6 /0 split into two /1,
 * a/mx with the client family's prefix /0 evaluated here.  0 or -1.
 */
static int
rec_rewrite(struct spf_ctx *ctx, const char *rec, size_t len,
    const struct spf_parse *p, const char *d, char *out, size_t outlen)
{
	const char *t;
	size_t tl, pos = 6, o = 0;
	struct spf_term term;
	char why[64], *buf;
	size_t bufsize = SPF_RECORD_MAX + 64;
	int zero, r, rc = -1;

	/* worker threads have small stacks: the term buffer is on the heap */
	buf = xmalloc(bufsize);
	if (out_add(out, outlen, &o, "v=spf1", 6) != 0)
		goto out;
	while (term_next(rec, len, &pos, &t, &tl)) {
		if (term_parse(t, tl, &term, why, sizeof(why)) != 0)
			goto out;
		buf[0] = '\0';
		if (term.modifier) {
			if (strcmp(term.name, "redirect") != 0 || p->has_all)
				continue;
			snprintf(buf, bufsize, " %.*s", (int)tl, t);
		} else if ((strcmp(term.name, "ip4") == 0 && term.v4 == 0) ||
		    (strcmp(term.name, "ip6") == 0 && term.v6 == 0)) {
			if (term.name[2] == '4')
				snprintf(buf, bufsize, " %cip4:0.0.0.0/1"
				    " %cip4:128.0.0.0/1", term.qual,
				    term.qual);
			else
				snprintf(buf, bufsize, " %cip6:::/1"
				    " %cip6:8000::/1", term.qual, term.qual);
		} else if ((strcmp(term.name, "a") == 0 ||
		    strcmp(term.name, "mx") == 0) &&
		    (term.v4 == 0 || term.v6 == 0)) {
			zero = ctx->family == AF_INET ? term.v4 : term.v6;
			if (zero == 0) {
				if ((r = zero_eval(ctx, &term, d)) < 0)
					goto out;
				if (r == 1)
					snprintf(buf, bufsize, " %call",
					    term.qual);
				else
					continue;
			} else {
				/* the /0 of the other family is moot */
				int keep = ctx->family == AF_INET ? term.v4 :
				    term.v6;

				snprintf(buf, bufsize, " %c%s%s%.*s",
				    term.qual, term.name,
				    term.arg != NULL ? ":" : "",
				    (int)term.arglen,
				    term.arg != NULL ? term.arg : "");
				if (keep > 0) {
					size_t bl = strlen(buf);

					snprintf(buf + bl, bufsize - bl,
					    ctx->family == AF_INET ? "/%d" :
					    "//%d", keep);
				}
			}
		} else
			snprintf(buf, bufsize, " %.*s", (int)tl, t);
		if (out_add(out, outlen, &o, buf, strlen(buf)) != 0)
			goto out;
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

static void
rec_remember(struct spf_ctx *ctx, const char *domain,
    const struct spf_parse *p)
{
	struct spf_rec *r;

	if (ctx->nrecs >= SPF_RECS_MAX)
		return;
	r = &ctx->recs[ctx->nrecs++];
	memset(r, 0, sizeof(*r));
	snprintf(r->domain, sizeof(r->domain), "%s", domain);
	r->has_all = p->has_all;
	r->has_redirect = p->has_redirect && p->redirect_len < SPF_SPEC_MAX;
	if (r->has_redirect)
		memcpy(r->redirect, p->redirect, p->redirect_len);
	r->has_exp = p->has_exp && p->exp_len < SPF_SPEC_MAX;
	if (r->has_exp)
		memcpy(r->exp, p->exp, p->exp_len);
}

/* Whether a joined TXT string is an SPF record (4.5). */
static bool
txt_is_spf(const char *s, size_t len)
{
	return len >= 6 && mem_ieq(s, 6, "v=spf1", 6) &&
	    (len == 6 || s[6] == ' ');
}

/*
 * The TXT answer for libspf2: at most the one SPF record, validated and
 * rewritten.  Returns the herrno.
 */
static int
layer_txt(struct spf_ctx *ctx, SPF_dns_rr_t *rr, const char *domain,
    struct dns_query *q)
{
	char *txt = xmalloc(SPF_RECORD_MAX + 1);
	char *out = xmalloc(SPF_REWRITE_MAX);
	char why[128], msg[192];
	size_t i, n = dns_query_count(q), nspf = 0, tlen = 0;
	struct spf_parse p;
	int herrno = NO_DATA;

	for (i = 0; i < n; i++) {
		const unsigned char *rd;
		size_t len;
		long l;

		rd = dns_query_rdata(q, i, &len);
		l = dns_txt_join(rd, len, txt, SPF_RECORD_MAX + 1, 1);
		if (l < 0) {
			/* unusable; an SPF record only if it says so */
			if (len > 7 && mem_ieq((const char *)rd + 1, 6,
			    "v=spf1", 6))
				nspf += 2;
			continue;
		}
		if (txt_is_spf(txt, (size_t)l)) {
			nspf++;
			tlen = (size_t)l;
			memcpy(out, txt, tlen);
		}
	}
	if (nspf > 1) {
		ctx_abort(ctx, SPF_AB_MALFORMED,
		    "several or unusable SPF records at", domain);
		herrno = HOST_NOT_FOUND;
	} else if (nspf == 1) {
		memcpy(txt, out, tlen);
		txt[tlen] = '\0';
		if (rec_parse(txt, tlen, &p, why, sizeof(why)) != 0) {
			snprintf(msg, sizeof(msg), "malformed SPF record "
			    "(%s) at", why);
			ctx_abort(ctx, SPF_AB_MALFORMED, msg, domain);
			herrno = HOST_NOT_FOUND;
		} else {
			rec_remember(ctx, domain, &p);
			if (rec_rewrite(ctx, txt, tlen, &p, domain, out,
			    SPF_REWRITE_MAX) != 0) {
				ctx_abort(ctx, SPF_AB_MALFORMED,
				    "cannot rewrite the SPF record at",
				    domain);
				herrno = HOST_NOT_FOUND;
			} else if (SPF_dns_rr_buf_realloc(rr, 0,
			    strlen(out) + 1) == SPF_E_SUCCESS) {
				memcpy(rr->rr[0]->txt, out, strlen(out) + 1);
				rr->num_rr = 1;
				herrno = NETDB_SUCCESS;
			} else
				herrno = TRY_AGAIN;
		}
	}
	free(txt);
	free(out);
	return herrno;
}

/*
 * An rdata name (MX exchange, PTR target) as text, lower case.  Unlike
 * dns_name_from_wire() it keeps visible characters such as ':' and '/'
 * (RFC 7208 7.1 lets a domain-spec hold them, so MX targets may too);
 * characters that would change the meaning of presentation form are
 * refused.  0 or -1.
 */
static int
spf_name_from_wire(const unsigned char *p, size_t len, char *out,
    size_t outlen)
{
	size_t i = 0, o = 0, j, lab;

	while (i < len) {
		lab = p[i++];
		if (lab == 0) {
			out[o] = '\0';
			return 0;
		}
		if (lab > 63 || lab > len - i)
			return -1;
		if (o != 0) {
			if (o + 1 >= outlen)
				return -1;
			out[o++] = '.';
		}
		for (j = 0; j < lab; j++) {
			unsigned char c = p[i + j];

			if (o + 1 >= outlen || c < 0x21 || c > 0x7e ||
			    strchr(".\\;\"()$@", c) != NULL)
				return -1;
			out[o++] = (char)tolower(c);
		}
		i += lab;
	}
	return -1;
}

/* A name that DNS can carry: labels of 1..63 bytes, 253 in all. */
static bool
name_valid(const char *d)
{
	size_t n = strlen(d), lab = 0, i;

	if (n > 0 && d[n - 1] == '.')
		n--;
	if (n == 0 || n > DNS_NAME_MAX)
		return false;
	for (i = 0; i <= n; i++) {
		if (i == n || d[i] == '.') {
			if (lab == 0 || lab > 63)
				return false;
			lab = 0;
		} else
			lab++;
	}
	return true;
}

static SPF_dns_rr_t *
layer_lookup(SPF_dns_server_t *srv, const char *domain, ns_type type,
    int should_cache)
{
	struct spf_ctx *ctx = srv->hook;
	SPF_dns_rr_t *rr;
	struct dns_query *q = NULL;
	enum dns_status st;
	enum dns_type dt;
	bool counted = false, soft = false, fp = false, known;
	size_t i, n, len;
	int herrno = NETDB_SUCCESS, cnt = 0;
	char name[DNS_NAME_MAX + 1];

	(void)should_cache;
	rr = SPF_dns_rr_new_init(srv, domain, type, 300, NETDB_SUCCESS);
	if (rr == NULL)
		return NULL;
	switch (type) {
	case ns_t_a:	dt = DNS_T_A; break;
	case ns_t_aaaa:	dt = DNS_T_AAAA; break;
	case ns_t_mx:	dt = DNS_T_MX; break;
	case ns_t_ptr:	dt = DNS_T_PTR; break;
	case ns_t_txt:	dt = DNS_T_TXT; break;
	default:
		/* type SPF (99) is obsolete (RFC 7208 3.1): never asked */
		rr->herrno = NO_DATA;
		return rr;
	}
	if (!name_valid(domain)) {
		/* 4.3/4.6: no such name can exist; no query, no match */
		rr->herrno = HOST_NOT_FOUND;
		return rr;
	}
	known = name_known(ctx, domain, &fp);
	if (dt == DNS_T_TXT)
		counted = ctx->ntxt++ > 0;
	else if (dt == DNS_T_MX)
		counted = true;
	else if (dt == DNS_T_PTR) {
		counted = true;
		soft = true;	/* 5.5: a PTR failure is no match */
	} else
		counted = !known;
	if (known && fp)
		soft = true;
	st = ctx_query(ctx, domain, dt, counted, soft, &q);
	if (q == NULL || ctx->abort != SPF_AB_NONE) {
		rr->herrno = ctx->abort == SPF_AB_DNS ? TRY_AGAIN :
		    HOST_NOT_FOUND;
		dns_query_free(q);
		return rr;
	}
	switch (st) {
	case DNS_OK:
		break;
	case DNS_NODATA:
		herrno = NO_DATA;
		break;
	case DNS_NXDOMAIN:
		herrno = HOST_NOT_FOUND;
		break;
	default:
		/* 5.5: a failed PTR or PTR-name lookup is just no match */
		herrno = soft ? HOST_NOT_FOUND : TRY_AGAIN;
		break;
	}
	if (st != DNS_OK) {
		rr->herrno = herrno;
		dns_query_free(q);
		return rr;
	}
	if (dt == DNS_T_TXT) {
		rr->herrno = layer_txt(ctx, rr, domain, q);
		dns_query_free(q);
		return rr;
	}
	n = dns_query_count(q);
	if (dt == DNS_T_MX && n > SPF_MX_MAX) {
		ctx_abort(ctx, SPF_AB_LIMIT, "more than 10 MX names at",
		    domain);
		rr->herrno = HOST_NOT_FOUND;
		dns_query_free(q);
		return rr;
	}
	for (i = 0; i < n; i++) {
		const unsigned char *rd = dns_query_rdata(q, i, &len);

		switch (dt) {
		case DNS_T_A:
		case DNS_T_AAAA:
			if (len != (dt == DNS_T_A ? 4u : 16u) ||
			    SPF_dns_rr_buf_realloc(rr, cnt, len) !=
			    SPF_E_SUCCESS)
				continue;
			memcpy(dt == DNS_T_A ? (void *)&rr->rr[cnt]->a :
			    (void *)&rr->rr[cnt]->aaaa, rd, len);
			cnt++;
			break;
		case DNS_T_MX:
		case DNS_T_PTR:
			if (dt == DNS_T_MX && len < 3)
				continue;
			if (spf_name_from_wire(dt == DNS_T_MX ? rd + 2 : rd,
			    dt == DNS_T_MX ? len - 2 : len, name,
			    sizeof(name)) != 0)
				continue;
			if (dt == DNS_T_PTR && cnt >= SPF_PTR_MAX)
				continue;
			name_add(ctx, name, dt == DNS_T_PTR);
			if (SPF_dns_rr_buf_realloc(rr, cnt,
			    strlen(name) + 1) != SPF_E_SUCCESS)
				continue;
			memcpy(dt == DNS_T_MX ? rr->rr[cnt]->mx :
			    rr->rr[cnt]->ptr, name, strlen(name) + 1);
			cnt++;
			break;
		default:
			break;
		}
	}
	rr->num_rr = cnt;
	rr->herrno = cnt > 0 ? NETDB_SUCCESS : NO_DATA;
	dns_query_free(q);
	return rr;
}

/*
 * The explanation (6.2) of the record that produced the fail: the
 * top-level record, or the redirect= target it handed over to.
 */
static void
spf_explain(struct spf_ctx *ctx, struct spf_outcome *out)
{
	char name[DNS_NAME_MAX + 2], *txt;
	char exp[SPF_EXP_MAX];
	struct dns_query *q;
	size_t cur = 0, j, len;
	const unsigned char *rd;
	long l;
	bool endm;

	if (ctx->nrecs == 0)
		return;
	while (ctx->recs[cur].has_redirect && !ctx->recs[cur].has_all) {
		if (macro_expand(ctx, ctx->recs[cur].redirect,
		    strlen(ctx->recs[cur].redirect), ctx->recs[cur].domain,
		    true, name, sizeof(name)) != 0)
			return;
		for (j = cur + 1; j < ctx->nrecs; j++)
			if (str_ieq(ctx->recs[j].domain, name))
				break;
		if (j >= ctx->nrecs)
			break;
		cur = j;
	}
	if (!ctx->recs[cur].has_exp)
		return;
	if (macro_expand(ctx, ctx->recs[cur].exp, strlen(ctx->recs[cur].exp),
	    ctx->recs[cur].domain, true, name, sizeof(name)) != 0)
		return;
	/* 6.2: any failure here means no explanation, not an error */
	txt = xmalloc(SPF_RECORD_MAX + 1);
	q = dns_query_start(ctx->dns, name, DNS_T_TXT);
	if (dns_query_wait(q, ctx->deadline) == DNS_OK &&
	    dns_query_count(q) == 1) {
		rd = dns_query_rdata(q, 0, &len);
		l = dns_txt_join(rd, len, txt, SPF_RECORD_MAX + 1, 0);
		if (l >= 0 && macro_check(txt, (size_t)l, true, &endm) == 0 &&
		    macro_expand(ctx, txt, (size_t)l, ctx->recs[cur].domain,
		    false, exp, sizeof(exp)) == 0)
			snprintf(out->explanation, sizeof(out->explanation),
			    "%s", exp);
	}
	dns_query_free(q);
	free(txt);
}

/* RFC 7208 4.3: a domain that is not a usable FQDN gives "none". */
static bool
domain_usable(const char *d)
{
	size_t n = strlen(d), lab = 0, labels = 0, i;

	if (n == 0 || n > DNS_NAME_MAX + 1 || d[0] == '[')
		return false;
	if (d[n - 1] == '.')
		n--;
	for (i = 0; i <= n; i++) {
		if (i == n || d[i] == '.') {
			if (lab == 0 || lab > 63)
				return false;
			labels++;
			lab = 0;
		} else
			lab++;
	}
	return labels >= 2;
}

static void
quiet_handler(const char *file, int line, const char *msg)
{
	(void)file;
	(void)line;
	(void)msg;
}

static pthread_once_t spf_once = PTHREAD_ONCE_INIT;

/* libspf2's warnings go to stderr otherwise; our problem text says why */
static void
spf_init_once(void)
{
	SPF_warning_handler = quiet_handler;
	SPF_info_handler = quiet_handler;
	SPF_debug_handler = quiet_handler;
}

static enum spf_result
map_result(SPF_result_t r)
{
	switch (r) {
	case SPF_RESULT_NEUTRAL:	return SPF_R_NEUTRAL;
	case SPF_RESULT_PASS:		return SPF_R_PASS;
	case SPF_RESULT_FAIL:		return SPF_R_FAIL;
	case SPF_RESULT_SOFTFAIL:	return SPF_R_SOFTFAIL;
	case SPF_RESULT_NONE:		return SPF_R_NONE;
	case SPF_RESULT_TEMPERROR:	return SPF_R_TEMPERROR;
	default:			return SPF_R_PERMERROR;
	}
}

/*
 * libspf2 answers "pass" for every loopback client without reading the
 * record ("localhost always gets a free ride"), which would let anyone on
 * 127/8 pass SPF for any domain.  For such a client do what
 * SPF_request_query_mailfrom() does after that shortcut: fetch the record
 * through our layer and interpret it.
 */
static void
spf_query_loopback(SPF_server_t *server, SPF_request_t *req,
    SPF_response_t **respp)
{
	SPF_record_t *rec = NULL;
	SPF_errcode_t err;

	if ((*respp = SPF_response_new(req)) == NULL)
		return;
	req->cur_dom = req->env_from_dp;
	err = SPF_server_get_record(server, req, *respp, &rec);
	if (err != SPF_E_SUCCESS || rec == NULL) {
		/* no record, or none usable: leave it to the mapping of
		 * "(invalid)" and the layer's own verdict */
		if (rec != NULL)
			SPF_record_free(rec);
		if (err == SPF_E_NOT_SPF)
			SPF_i_done(*respp, SPF_RESULT_NONE, SPF_REASON_NONE,
			    SPF_E_SUCCESS);
		else
			SPF_i_done(*respp, SPF_RESULT_INVALID,
			    SPF_REASON_NONE, err);
		return;
	}
	(*respp)->spf_record_exp = rec;
	(void)SPF_record_interpret(rec, req, *respp, 0);
	SPF_record_free(rec);
	(*respp)->spf_record_exp = NULL;
}

static int
spf_run(struct dns *dns, uint64_t deadline, const char *client_ip,
    const char *helo, const char *sender, bool helo_id,
    struct spf_outcome *out)
{
	struct spf_ctx *ctx;
	SPF_dns_server_t *layer;
	SPF_server_t *server;
	SPF_request_t *req;
	SPF_response_t *resp = NULL;
	char local[256], domain[DNS_NAME_MAX + 2], from[520];
	const char *at;
	unsigned char a6[16];
	SPF_result_t lr;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->result = SPF_R_NONE;
	if (helo == NULL)
		helo = "";
	ctx = xcalloc(1, sizeof(*ctx));
	ctx->dns = dns;
	ctx->deadline = deadline;
	if (inet_pton(AF_INET, client_ip, ctx->addr) == 1)
		ctx->family = AF_INET;
	else if (inet_pton(AF_INET6, client_ip, a6) == 1) {
		static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0,
		    0, 0, 0, 0, 0xff, 0xff };

		/* an IPv4-mapped client is an IPv4 client (RFC 4291 2.5.5) */
		if (memcmp(a6, mapped, 12) == 0) {
			ctx->family = AF_INET;
			memcpy(ctx->addr, a6 + 12, 4);
		} else {
			ctx->family = AF_INET6;
			memcpy(ctx->addr, a6, 16);
			/* %{i} nibbles keep the case the address came in
			 * (DNS ignores it; the RFC 7208 suite expects it) */
			ctx->upper_hex = strpbrk(client_ip, "ABCDEF") != NULL;
		}
	} else {
		snprintf(out->problem, sizeof(out->problem),
		    "invalid client address");
		free(ctx);
		return -1;
	}
	/* the identity (2.3, 2.4, 4.3) */
	snprintf(local, sizeof(local), "postmaster");
	if (helo_id || sender == NULL || sender[0] == '\0' ||
	    strcmp(sender, "<>") == 0)
		snprintf(domain, sizeof(domain), "%s", helo);
	else if ((at = strrchr(sender, '@')) == NULL)
		snprintf(domain, sizeof(domain), "%s", sender);
	else {
		if (at > sender && (size_t)(at - sender) < sizeof(local))
			snprintf(local, sizeof(local), "%.*s",
			    (int)(at - sender), sender);
		snprintf(domain, sizeof(domain), "%s", at + 1);
	}
	if (!domain_usable(domain)) {
		snprintf(out->problem, sizeof(out->problem),
		    "no usable domain to check");
		free(ctx);
		return 0;
	}
	if (domain[strlen(domain) - 1] == '.')
		domain[strlen(domain) - 1] = '\0';
	ctx->local = local;
	ctx->domain = domain;
	ctx->helo = helo;

	(void)pthread_once(&spf_once, spf_init_once);

	layer = xcalloc(1, sizeof(*layer));
	layer->lookup = layer_lookup;
	layer->name = "portcullis";
	layer->hook = ctx;
	if ((server = SPF_server_new_dns(layer, 0)) == NULL) {
		free(layer);
		free(ctx);
		snprintf(out->problem, sizeof(out->problem),
		    "cannot create the libspf2 server");
		return -1;
	}
	/* the limits are counted in the layer, libspf2's own are off */
	(void)SPF_server_set_max_dns_mech(server, 1000);
	(void)SPF_server_set_max_dns_mx(server, 1000);
	(void)SPF_server_set_max_dns_ptr(server, SPF_PTR_MAX);
	if ((req = SPF_request_new(server)) == NULL) {
		SPF_server_free(server);
		free(layer);
		free(ctx);
		snprintf(out->problem, sizeof(out->problem),
		    "cannot create the libspf2 request");
		return -1;
	}
	if (ctx->family == AF_INET) {
		struct in_addr in4;

		memcpy(&in4, ctx->addr, 4);
		SPF_request_set_ipv4(req, in4);
	} else {
		struct in6_addr in6;

		memcpy(&in6, ctx->addr, 16);
		SPF_request_set_ipv6(req, in6);
	}
	snprintf(from, sizeof(from), "%s@%s", local, domain);
	SPF_request_set_helo_dom(req, helo[0] != '\0' ? helo : domain);
	if (SPF_request_set_env_from(req, from) != 0) {
		out->result = SPF_R_NONE;
		snprintf(out->problem, sizeof(out->problem),
		    "libspf2 refuses the sender");
		goto done;
	}
	if (SPF_request_is_loopback(req))
		spf_query_loopback(server, req, &resp);
	else
		(void)SPF_request_query_mailfrom(req, &resp);
	lr = resp != NULL ? SPF_response_result(resp) : SPF_RESULT_INVALID;
	out->result = map_result(lr);
	if (ctx->abort != SPF_AB_NONE) {
		out->result = ctx->abort == SPF_AB_DNS ? SPF_R_TEMPERROR :
		    SPF_R_PERMERROR;
		snprintf(out->problem, sizeof(out->problem), "%s",
		    ctx->problem);
	} else if (lr == SPF_RESULT_INVALID) {
		/* libspf2's "(invalid)": a DNS failure or a record error */
		if (resp != NULL &&
		    SPF_response_errcode(resp) == SPF_E_DNS_ERROR)
			out->result = SPF_R_TEMPERROR;
		else
			out->result = SPF_R_PERMERROR;
		snprintf(out->problem, sizeof(out->problem), "libspf2: %s",
		    resp != NULL ? SPF_strerror(SPF_response_errcode(resp)) :
		    "no response");
	} else if (out->result == SPF_R_PERMERROR ||
	    out->result == SPF_R_TEMPERROR) {
		snprintf(out->problem, sizeof(out->problem), "libspf2: %s",
		    SPF_strerror(SPF_response_errcode(resp)));
	}
	if (out->result == SPF_R_FAIL)
		spf_explain(ctx, out);
done:
	if (resp != NULL)
		SPF_response_free(resp);
	SPF_request_free(req);
	/* SPF_server_new_dns() leaves the layer to its creator */
	SPF_server_free(server);
	free(layer);
	free(ctx);
	return rc;
}

int
spf_check(struct dns *dns, uint64_t deadline_ms, const char *client_ip,
    const char *helo, const char *sender, struct spf_outcome *out)
{
	return spf_run(dns, deadline_ms, client_ip, helo, sender, false, out);
}

int
spf_check_helo(struct dns *dns, uint64_t deadline_ms, const char *client_ip,
    const char *helo, struct spf_outcome *out)
{
	return spf_run(dns, deadline_ms, client_ip, helo, NULL, true, out);
}
