/*
 * dmarc.c - DMARC evaluation after RFC 9989 (DMARCbis): the record
 * parser, policy discovery and Organizational Domain by the DNS tree walk
 * (no Public Suffix List), relaxed/strict alignment of the SPF and DKIM
 * identities, sp=/np=/t= and the legacy pct= tag.
 * Owns: per dmarc_evaluate() call, a heap cache of _dmarc lookups and a
 * TXT join buffer, both freed before it returns; no locks, no globals.
 * Limits: see dmarc.h (DMARC_WALK_MAX, DMARC_QUERIES_MAX, ...).
 * Also the Organizational Domain alone (dmarc_org_domain()), for the
 * verification of external report destinations.
 * Errors: DNS failures become DMARC_R_TEMPERROR, limits and unusable From
 * domains DMARC_R_PERMERROR; nothing is logged here (the caller logs the
 * summary line with the queue id).
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idn2.h>

#include "dmarc.h"
#include "dns.h"
#include "util.h"

/* ------------------------------------------------------------------ */
/* Record parser (RFC 9989 4.7, 4.8)                                  */
/* ------------------------------------------------------------------ */

/* WSP of RFC 5234: space and horizontal tab only (dmarc-sep, equals). */
static bool
dm_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static void
dm_trim(const char **s, size_t *n)
{
	while (*n > 0 && dm_wsp((*s)[0])) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && dm_wsp((*s)[*n - 1]))
		(*n)--;
}

static bool
dm_is(const char *s, size_t n, const char *word)
{
	return mem_ieq(s, n, word, strlen(word));
}

static bool
dm_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
dm_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
dm_hex(char c)
{
	return dm_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int
dm_policy_word(const char *s, size_t n, enum dmarc_policy *p)
{
	if (dm_is(s, n, "none"))
		*p = DMARC_P_NONE;
	else if (dm_is(s, n, "quarantine"))
		*p = DMARC_P_QUARANTINE;
	else if (dm_is(s, n, "reject"))
		*p = DMARC_P_REJECT;
	else
		return -1;
	return 0;
}

/*
 * dmarc-fo of RFC 9989 4.8: a non-empty ':' list of 0 1 d s (any case,
 * no whitespace), "0" and "1" mutually exclusive, "d" and "s" at most
 * once each.
 */
static bool
dm_fo_valid(const char *s, size_t n)
{
	size_t	i;
	bool	seen01 = false, seen_d = false, seen_s = false;

	if (n == 0 || n > DMARC_FO_MAX)
		return false;
	for (i = 0; i < n; i += 2) {
		char c = s[i];

		if (c == '0' || c == '1') {
			if (seen01)
				return false;
			seen01 = true;
		} else if (c == 'd' || c == 'D') {
			if (seen_d)
				return false;
			seen_d = true;
		} else if (c == 's' || c == 'S') {
			if (seen_s)
				return false;
			seen_s = true;
		} else
			return false;
		if (i + 1 < n && s[i + 1] != ':')
			return false;
		if (i + 1 == n - 1)
			return false;	/* a trailing ':' */
	}
	return true;
}

/*
 * One dmarc-uri (RFC 3986 URI, ',' and '!' percent-encoded) with the
 * obsolete "!size" suffix allowed: scheme ":" then URI characters.
 */
static bool
dm_uri_valid(const char *s, size_t n)
{
	size_t	i, end = n;

	/* obs-dmarc-report-size = "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] */
	for (i = 0; i < n; i++)
		if (s[i] == '!')
			break;
	if (i < n) {
		size_t j = i + 1;

		while (j < n && dm_digit(s[j]))
			j++;
		if (j == i + 1)
			return false;
		if (j < n && strchr("kmgtKMGT", s[j]) != NULL)
			j++;
		if (j != n)
			return false;
		end = i;
	}
	if (end == 0 || !dm_alpha(s[0]))
		return false;
	for (i = 1; i < end && s[i] != ':'; i++)
		if (!dm_alpha(s[i]) && !dm_digit(s[i]) && s[i] != '+' &&
		    s[i] != '-' && s[i] != '.')
			return false;
	if (i >= end)
		return false;	/* no scheme ':' */
	for (i++; i < end; i++) {
		char c = s[i];

		if (c == '%') {
			if (i + 2 >= end)
				return false;
			if (!dm_hex(s[i + 1]) || !dm_hex(s[i + 2]))
				return false;
			i += 2;
		} else if (!dm_alpha(c) && !dm_digit(c) &&
		    strchr("-._~:/?#[]@$&'()*+;=", c) == NULL)
			return false;
	}
	return true;
}

/* dmarc-urilist: true when at least one element is a valid URI. */
static bool
dm_urilist_any_valid(const char *s, size_t n)
{
	size_t	pos = 0;

	while (pos <= n) {
		const char	*e = s + pos;
		size_t		 el = 0;

		while (pos + el < n && s[pos + el] != ',')
			el++;
		pos += el + 1;
		dm_trim(&e, &el);
		if (dm_uri_valid(e, el))
			return true;
	}
	return false;
}

enum dm_tag {
	DM_T_P, DM_T_SP, DM_T_NP, DM_T_ADKIM, DM_T_ASPF, DM_T_T, DM_T_PSD,
	DM_T_PCT, DM_T_RUA, DM_T_RUF, DM_T_FO, DM_T_N
};

static const char *const dm_tag_names[DM_T_N] = {
	"p", "sp", "np", "adkim", "aspf", "t", "psd", "pct", "rua", "ruf", "fo"
};

/* Applies one known tag; returns -1 for an invalid value. */
static int
dm_tag_apply(struct dmarc_record *r, enum dm_tag t, const char *v, size_t n)
{
	size_t	i;
	int	pct;

	switch (t) {
	case DM_T_P:
		if (dm_policy_word(v, n, &r->p) == -1)
			return -1;
		r->has_p = true;
		return 0;
	case DM_T_SP:
		if (dm_policy_word(v, n, &r->sp) == -1)
			return -1;
		r->has_sp = true;
		return 0;
	case DM_T_NP:
		if (dm_policy_word(v, n, &r->np) == -1)
			return -1;
		r->has_np = true;
		return 0;
	case DM_T_ADKIM:
	case DM_T_ASPF:
		if (!dm_is(v, n, "r") && !dm_is(v, n, "s"))
			return -1;
		if (t == DM_T_ADKIM)
			r->adkim_strict = dm_is(v, n, "s");
		else
			r->aspf_strict = dm_is(v, n, "s");
		return 0;
	case DM_T_T:
		if (dm_is(v, n, "y"))
			r->testing = true;
		else if (!dm_is(v, n, "n"))
			return -1;
		r->has_t = true;
		return 0;
	case DM_T_PSD:
		if (dm_is(v, n, "y"))
			r->psd = DMARC_PSD_Y;
		else if (dm_is(v, n, "n"))
			r->psd = DMARC_PSD_N;
		else if (dm_is(v, n, "u"))
			r->psd = DMARC_PSD_U;
		else
			return -1;
		return 0;
	case DM_T_PCT:
		if (n == 0 || n > 3)
			return -1;
		for (pct = 0, i = 0; i < n; i++) {
			if (!dm_digit(v[i]))
				return -1;
			pct = pct * 10 + (v[i] - '0');
		}
		if (pct > 100)
			return -1;
		r->pct = pct;
		return 0;
	case DM_T_RUA:
	case DM_T_RUF:
		if (t == DM_T_RUA)
			r->rua_valid = dm_urilist_any_valid(v, n);
		if (n > DMARC_URI_MAX) {
			r->uri_dropped = true;
			return 0;
		}
		memcpy(t == DM_T_RUA ? r->rua : r->ruf, v, n);
		(t == DM_T_RUA ? r->rua : r->ruf)[n] = '\0';
		return 0;
	case DM_T_FO:
		if (!dm_fo_valid(v, n))
			return -1;
		memcpy(r->fo, v, n);
		r->fo[n] = '\0';
		return 0;
	case DM_T_N:
		break;
	}
	return -1;
}

/* v=DMARC1 exactly at the start: "v" (either case) equals %s"DMARC1". */
static bool
dm_version_ok(const char *part, size_t plen)
{
	size_t	i = 1;

	if (plen == 0 || (part[0] != 'v' && part[0] != 'V'))
		return false;
	while (i < plen && dm_wsp(part[i]))
		i++;
	if (i >= plen || part[i] != '=')
		return false;
	i++;
	while (i < plen && dm_wsp(part[i]))
		i++;
	while (plen > i && dm_wsp(part[plen - 1]))
		plen--;
	return plen - i == 6 && memcmp(part + i, "DMARC1", 6) == 0;
}

int
dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *r)
{
	bool	seen[DM_T_N] = { false };
	bool	bad_policy_tag = false;
	size_t	pos = 0, ntag = 0;

	memset(r, 0, sizeof(*r));
	r->pct = -1;
	r->fo[0] = '0';
	if (txt == NULL || len > DMARC_RECORD_MAX ||
	    memchr(txt, '\0', len) != NULL)
		return -1;
	for (;;) {
		const char	*part = txt + pos, *name, *val, *eq;
		size_t		 plen, nlen, vlen, end = pos, i;
		int		 t;
		bool		 syntax_ok;

		while (end < len && txt[end] != ';')
			end++;
		plen = end - pos;
		if (ntag == 0) {
			/* RFC 9989 4.7: v=DMARC1 first, value case
			 * sensitive; else the whole record is ignored */
			if (!dm_version_ok(part, plen))
				return -1;
			goto next;
		}
		dm_trim(&part, &plen);
		if (plen == 0)
			goto next;	/* a trailing or doubled ';' */
		eq = memchr(part, '=', plen);
		if (eq == NULL) {
			r->bad_values++;	/* not a tag: ignored */
			goto next;
		}
		name = part;
		nlen = (size_t)(eq - part);
		val = eq + 1;
		vlen = plen - nlen - 1;
		dm_trim(&name, &nlen);
		dm_trim(&val, &vlen);
		/* dmarc-tag = 1*ALPHA equals 1*dmarc-value; a name that is
		 * not a tag name is ignored outright (RFC 9989 4.8) */
		for (i = 0; i < nlen && dm_alpha(name[i]); i++)
			;
		if (nlen == 0 || i < nlen) {
			r->bad_values++;
			goto next;
		}
		syntax_ok = vlen > 0;
		for (i = 0; syntax_ok && i < vlen; i++)
			syntax_ok = (unsigned char)val[i] >= 0x20 &&
			    (unsigned char)val[i] <= 0x7e;
		for (t = 0; t < DM_T_N; t++)
			if (dm_is(name, nlen, dm_tag_names[t]))
				break;
		if (t == DM_T_N) {
			if (syntax_ok)
				r->unknown_tags++;	/* MUST be ignored */
			else
				r->bad_values++;
		} else if (seen[t])
			r->bad_values++;	/* first one kept */
		else {
			seen[t] = true;
			if (!syntax_ok || dm_tag_apply(r, (enum dm_tag)t, val,
			    vlen) == -1) {
				r->bad_values++;
				/* RFC 9989 4.10.1: an invalid p, sp or np */
				if (t == DM_T_P || t == DM_T_SP ||
				    t == DM_T_NP)
					bad_policy_tag = true;
			}
		}
next:
		ntag++;
		if (end >= len)
			break;
		pos = end + 1;
	}
	/*
	 * RFC 9989 4.10.1: no valid p=, or an sp= or np= that is not valid:
	 * with a valid rua= the record reads as p=none (sp and np too);
	 * without one DMARC does not apply (no_policy).
	 */
	if (!r->has_p || bad_policy_tag) {
		r->policy_defaulted = true;
		r->p = r->sp = r->np = DMARC_P_NONE;
		r->has_p = r->has_sp = r->has_np = false;
		if (!r->rua_valid)
			r->no_policy = true;
	}
	/* Defaults (RFC 9989 4.7): sp follows p, np follows sp. */
	if (!r->has_sp)
		r->sp = r->p;
	if (!r->has_np)
		r->np = r->sp;
	/* Legacy pct (RFC 7489): sampling is gone in RFC 9989; pct=0 meant
	 * "do not apply the policy", which t=y now says.  t= wins. */
	if (!r->has_t && r->pct == 0)
		r->testing = true;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Evaluation                                                         */
/* ------------------------------------------------------------------ */

enum dm_state {
	DM_LV_NONE,	/* no record, or not exactly one (RFC 9989 4.10) */
	DM_LV_RECORD,
	DM_LV_TEMP	/* SERVFAIL, timeout, internal error */
};

struct dm_level {
	char			name[DMARC_DOMAIN_MAX + 1];
	enum dm_state		state;
	struct dmarc_record	rec;
};

struct dm_ctx {
	struct dns		*dns;		/* borrowed */
	uint64_t		 deadline;
	struct dm_level		*lv;		/* owns; DMARC_QUERIES_MAX */
	size_t			 nlv;
	unsigned		 queries;
	char			*txt;		/* owns; TXT join buffer */
};

#define DM_TXT_BUF	(DNS_RDATA_MAX + 1)
#define DM_LABELS_MAX	128		/* 253 octets hold at most 127 */
#define DM_IDN_IN_MAX	1024		/* UTF-8 From domain given to idn2 */

enum dm_rc { DM_OK = 0, DM_TEMP = -1, DM_LIMIT = -2 };

/* Copies a string known to fit (domains <= DMARC_DOMAIN_MAX, policy
 * words); one that does not is a bug, and leaves dst empty. */
static void
dm_word(char *dst, size_t size, const char *w)
{
	size_t	n = strlen(w);

	if (n >= size) {
		dst[0] = '\0';
		return;
	}
	memcpy(dst, w, n + 1);
}

/* Lower-cased copy without a trailing dot; LDH and '_' labels only. */
static int
dm_domain_ascii(const char *in, char *out)
{
	size_t	n, i, lab = 0;

	n = strnlen(in, DMARC_DOMAIN_MAX + 2);
	if (n > 0 && in[n - 1] == '.')
		n--;
	if (n == 0 || n > DMARC_DOMAIN_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '.') {
			if (lab == 0)
				return -1;
			lab = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_') {
			lab++;
		} else if (c >= 'A' && c <= 'Z') {
			c = (unsigned char)(c - 'A' + 'a');
			lab++;
		} else
			return -1;
		if (lab > 63)
			return -1;
		out[i] = (char)c;
	}
	if (lab == 0)
		return -1;
	out[n] = '\0';
	return 0;
}

/*
 * The domain as DNS and alignment see it: lower case, no trailing dot,
 * U-labels converted to A-labels first (RFC 9989 5.3.1, RFC 5890 2.3.2.1:
 * IDNA2008, input NFC-normalised).  A name libidn2 refuses is not a
 * domain (-1).
 */
static int
dm_domain_norm(const char *in, char *out)
{
	const unsigned char	*p;
	char			*a = NULL;
	int			 rc;

	if (in == NULL)
		return -1;
	for (p = (const unsigned char *)in; *p != '\0' && *p < 0x80; p++)
		;
	if (*p == '\0')
		return dm_domain_ascii(in, out);
	/* bounded before libidn2 reads it: 63 four-byte characters a label */
	if (strnlen(in, DM_IDN_IN_MAX + 1) > DM_IDN_IN_MAX)
		return -1;
	if (idn2_to_ascii_8z(in, &a, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) !=
	    IDN2_OK)
		return -1;
	rc = dm_domain_ascii(a, out);
	idn2_free(a);
	return rc;
}

int
dmarc_domain_dns(const char *in, char out[DMARC_DOMAIN_MAX + 1])
{
	return dm_domain_norm(in, out);
}

/* Start offsets of the labels of d, leftmost first; their count. */
static size_t
dm_labels(const char *d, size_t off[DM_LABELS_MAX])
{
	size_t	n = 0, i;

	off[n++] = 0;
	for (i = 0; d[i] != '\0'; i++)
		if (d[i] == '.' && n < DM_LABELS_MAX)
			off[n++] = i + 1;
	return n;
}

/* Next tree-walk target (RFC 9989 4.10): the label index after idx, or
 * n when the single-label name was the last. */
static size_t
dm_walk_next(size_t idx, size_t n)
{
	size_t	m = n - idx;	/* labels of the target just queried */

	if (m <= 1)
		return n;
	if (m > DMARC_WALK_MAX)
		return n - (DMARC_WALK_MAX - 1);
	return idx + 1;
}

/* The _dmarc record set at domain d (normalized), cached per evaluation. */
static struct dm_level *
dm_lookup(struct dm_ctx *c, const char *d)
{
	struct dm_level		*lv;
	struct dns_query	*q;
	enum dns_status		 st;
	char			 qname[DNS_NAME_MAX + 16];
	size_t			 i, nrec = 0;

	for (i = 0; i < c->nlv; i++)
		if (strcmp(c->lv[i].name, d) == 0)
			return &c->lv[i];
	if (c->nlv >= DMARC_QUERIES_MAX)
		return NULL;
	lv = &c->lv[c->nlv++];
	memset(lv, 0, sizeof(*lv));	/* dm_levels() does not */
	dm_word(lv->name, sizeof(lv->name), d);
	lv->state = DM_LV_NONE;
	/* "_dmarc." plus a long domain can exceed a DNS name: no record can
	 * live there, so the walk goes on with the shorter names */
	if (snprintf(qname, sizeof(qname), "_dmarc.%s", d) > DNS_NAME_MAX)
		return lv;
	if (c->queries >= DMARC_QUERIES_MAX)
		return NULL;
	c->queries++;
	q = dns_query_start(c->dns, qname, DNS_T_TXT);
	st = dns_query_wait(q, c->deadline);
	if (st == DNS_OK) {
		for (i = 0; i < dns_query_count(q); i++) {
			const unsigned char	*rd;
			size_t			 rdlen;
			long			 n;
			struct dmarc_record	 tmp;

			rd = dns_query_rdata(q, i, &rdlen);
			if (rd == NULL)
				continue;
			/* a record with a NUL byte or too long for the
			 * parser is not read as a DMARC record */
			n = dns_txt_join(rd, rdlen, c->txt, DM_TXT_BUF, 0);
			if (n < 0 || dmarc_record_parse(c->txt, (size_t)n,
			    &tmp) == -1)
				continue;
			if (++nrec == 1)
				lv->rec = tmp;
		}
		/* several DMARC records at one name: none (RFC 9989 4.10) */
		lv->state = nrec == 1 ? DM_LV_RECORD : DM_LV_NONE;
	} else if (st == DNS_NXDOMAIN || st == DNS_NODATA)
		lv->state = DM_LV_NONE;
	else
		lv->state = DM_LV_TEMP;
	dns_query_free(q);
	return lv;
}

/*
 * Room for every level an evaluation may look up (pointers to levels are
 * kept, so it never moves).  Not zeroed: at 1.3 KB a level that is 130 KB
 * of memset a message for the one to three levels a message uses;
 * dm_lookup() clears each level it takes.
 */
static struct dm_level *
dm_levels(void)
{
	return xreallocarray(NULL, DMARC_QUERIES_MAX, sizeof(struct dm_level));
}

/* A name already looked up in this evaluation, or NULL (no query). */
static struct dm_level *
dm_cached(struct dm_ctx *c, const char *d)
{
	size_t	i;

	for (i = 0; i < c->nlv; i++)
		if (strcmp(c->lv[i].name, d) == 0)
			return &c->lv[i];
	return NULL;
}

/*
 * Organizational Domain (RFC 9989 4.10.2) by the DNS tree walk from d
 * (4.10), records taken from the longest name to the shortest.  The walk
 * stops at a record with psd=n or psd=y (4.10 steps 2 and 6).  psd=n: that
 * name is it; psd=y at a name other than d: the name one label below it;
 * otherwise the name with the fewest labels holding a record; no record
 * at all: d.  psd_lv, when not NULL, gets the psd=y record that ended the
 * walk (a Public Suffix Domain's policy), else NULL.
 */
static enum dm_rc
dm_org_domain(struct dm_ctx *c, const char *d, const char **org,
    struct dm_level **psd_lv)
{
	size_t	off[DM_LABELS_MAX], n, idx;
	size_t	best = 0;

	if (psd_lv != NULL)
		*psd_lv = NULL;
	n = dm_labels(d, off);
	for (idx = 0; idx < n; idx = dm_walk_next(idx, n)) {
		struct dm_level *lv = dm_lookup(c, d + off[idx]);

		if (lv == NULL)
			return DM_LIMIT;
		if (lv->state == DM_LV_TEMP)
			return DM_TEMP;
		if (lv->state != DM_LV_RECORD)
			continue;
		if (lv->rec.psd == DMARC_PSD_N) {
			best = idx;
			break;
		}
		if (lv->rec.psd == DMARC_PSD_Y) {
			/* at d itself: d is the only record, so rule 3
			 * makes d the Organizational Domain */
			if (idx > 0)
				best = idx - 1;
			if (psd_lv != NULL)
				*psd_lv = lv;
			break;
		}
		best = idx;
	}
	*org = d + off[best];
	return DM_OK;
}

/* The Author Domain and, once a relaxed check needs it, its
 * Organizational Domain (borrows the domain string). */
struct dm_author {
	const char	*d;
	const char	*org;		/* NULL until computed */
};

/*
 * Identifier alignment (RFC 9989 4.4, 4.10.2).  Identical names align
 * and strict mode is a string comparison: neither needs a tree walk
 * ("no need to perform Identifier Alignment Evaluations").  Only a relaxed
 * check of different names walks, first for the Author Domain (once per
 * evaluation), then for the identifier.  1 aligned, 0 not, or a negative
 * enum dm_rc.
 */
static int
dm_aligned(struct dm_ctx *c, struct dm_author *au, const char *id_raw,
    bool strict)
{
	char		 id[DMARC_DOMAIN_MAX + 1];
	const char	*id_org;
	size_t		 il, ol;
	enum dm_rc	 rc;

	if (id_raw == NULL || dm_domain_norm(id_raw, id) == -1)
		return 0;
	if (strcmp(id, au->d) == 0)
		return 1;
	if (strict)
		return 0;
	if (au->org == NULL &&
	    (rc = dm_org_domain(c, au->d, &au->org, NULL)) != DM_OK)
		return rc;
	/* the Organizational Domain is a suffix of its name: only names in
	 * au->org's subtree can share it (saves a walk) */
	il = strlen(id);
	ol = strlen(au->org);
	if (!(il == ol && strcmp(id, au->org) == 0) &&
	    !(il > ol && id[il - ol - 1] == '.' &&
	    strcmp(id + il - ol, au->org) == 0))
		return 0;
	if ((rc = dm_org_domain(c, id, &id_org, NULL)) != DM_OK)
		return rc;
	return strcmp(id_org, au->org) == 0;
}

static enum dmarc_policy
dm_downgrade(enum dmarc_policy p)
{
	/* t=y (RFC 9989 4.7; pct=0 of RFC 7489): one step milder */
	return p == DMARC_P_REJECT ? DMARC_P_QUARANTINE : DMARC_P_NONE;
}

/* Evaluates one normalized From domain into o (zeroed by the caller). */
static void
dm_eval_one(struct dm_ctx *c, const struct dmarc_input *in, const char *d,
    struct dmarc_outcome *o)
{
	struct dm_level		*lv, *psd_lv = NULL;
	struct dm_author	 au = { d, NULL };
	const struct dmarc_record *rec;	/* borrows c->lv */
	bool			 pass = false, temp = false, limit = false;
	enum dm_rc		 rc = DM_OK;
	size_t			 i;
	int			 a;

	dm_word(o->header_from, sizeof(o->header_from), d);
	/*
	 * Policy discovery (RFC 9989 4.10.1): the Author Domain's own record;
	 * else the record of its Organizational Domain, found by the tree
	 * walk that starts there (4.10, 4.10.2); else that of the Public
	 * Suffix Domain (the psd=y record that ended the walk).
	 */
	lv = dm_lookup(c, d);
	if (lv == NULL)
		rc = DM_LIMIT;
	else if (lv->state == DM_LV_TEMP)
		rc = DM_TEMP;
	else if (lv->state != DM_LV_RECORD) {
		rc = dm_org_domain(c, d, &au.org, &psd_lv);
		if (rc == DM_OK) {
			lv = dm_cached(c, au.org);
			if (lv == NULL || lv->state != DM_LV_RECORD)
				lv = psd_lv;
		}
	}
	if (rc == DM_TEMP) {
		o->result = DMARC_R_TEMPERROR;
		return;
	}
	if (rc == DM_LIMIT) {
		o->result = DMARC_R_PERMERROR;
		return;
	}
	/* no record, or one without a usable policy and without a valid
	 * rua= (4.10.1): DMARC does not apply to the message */
	if (lv == NULL || lv->rec.no_policy) {
		o->result = DMARC_R_NONE;
		return;
	}
	rec = &lv->rec;
	dm_word(o->policy_domain, sizeof(o->policy_domain), lv->name);
	dm_word(o->p, sizeof(o->p), dmarc_policy_name(rec->p));
	dm_word(o->sp, sizeof(o->sp), dmarc_policy_name(rec->sp));
	dm_word(o->np, sizeof(o->np), dmarc_policy_name(rec->np));
	o->adkim_strict = rec->adkim_strict;
	o->aspf_strict = rec->aspf_strict;
	dm_word(o->fo, sizeof(o->fo), rec->fo);
	dm_word(o->rua, sizeof(o->rua), rec->rua);

	/* RFC 9989 4.4: pass if any aligned DKIM or SPF identity passed.
	 * SPF alignment is evaluated even after a DKIM pass: an aggregate
	 * report (RFC 9990) gives both alignment results. */
	for (i = 0; !o->dkim_aligned && i < in->ndkim && i < DMARC_DKIM_MAX;
	    i++) {
		if (in->dkim_pass_domains == NULL)
			break;
		a = dm_aligned(c, &au, in->dkim_pass_domains[i],
		    rec->adkim_strict);
		o->dkim_aligned = a == 1;
		temp |= a == DM_TEMP;
		limit |= a == DM_LIMIT;
	}
	if (in->spf_result != NULL && str_ieq(in->spf_result, "pass") &&
	    in->spf_domain != NULL) {
		a = dm_aligned(c, &au, in->spf_domain, rec->aspf_strict);
		o->spf_aligned = a == 1;
		temp |= a == DM_TEMP;
		limit |= a == DM_LIMIT;
	}
	pass = o->dkim_aligned || o->spf_aligned;
	/*
	 * RFC 9989 5.3.6: a check that could not complete leaves the message
	 * neither pass nor fail.  An aligned identity whose own check ended
	 * in temperror (a DKIM key lookup, the SPF record) might still pass
	 * on a retry: temperror, not fail.
	 */
	for (i = 0; !pass && in->dkim_temp_domains != NULL &&
	    i < in->ndkim_temp && i < DMARC_DKIM_MAX; i++) {
		a = dm_aligned(c, &au, in->dkim_temp_domains[i],
		    rec->adkim_strict);
		temp |= a == 1 || a == DM_TEMP;
		limit |= a == DM_LIMIT;
	}
	if (!pass && in->spf_result != NULL &&
	    str_ieq(in->spf_result, "temperror") && in->spf_domain != NULL) {
		a = dm_aligned(c, &au, in->spf_domain, rec->aspf_strict);
		temp |= a == 1 || a == DM_TEMP;
		limit |= a == DM_LIMIT;
	}
	if (au.org != NULL)
		dm_word(o->org_domain, sizeof(o->org_domain), au.org);

	/* Which policy: p at the Author Domain itself, else sp, or np when
	 * the Author Domain does not exist (NXDOMAIN, RFC 8020). */
	o->policy = rec->p;
	if (strcmp(lv->name, d) != 0) {
		struct dns_query	*q;
		enum dns_status		 st = DNS_ERROR;

		o->policy = rec->sp;
		if (c->queries < DMARC_QUERIES_MAX) {
			c->queries++;
			q = dns_query_start(c->dns, d, DNS_T_A);
			st = dns_query_wait(q, c->deadline);
			dns_query_free(q);
		}
		if (st == DNS_NXDOMAIN) {
			o->policy = rec->np;
			o->nonexistent = true;
		} else if (st != DNS_OK && st != DNS_NODATA && !pass)
			temp = true;	/* the policy is unknown */
	}
	o->policy_untested = o->policy;
	if (rec->testing) {
		o->policy = dm_downgrade(o->policy);
		o->testing = true;
	}
	if (pass)
		o->result = DMARC_R_PASS;
	else if (temp)
		o->result = DMARC_R_TEMPERROR;
	else if (limit)
		o->result = DMARC_R_PERMERROR;
	else
		o->result = DMARC_R_FAIL;
	if (o->result == DMARC_R_PASS)
		dm_word(o->dis, sizeof(o->dis), "none");
	else if (o->result == DMARC_R_FAIL)
		dm_word(o->dis, sizeof(o->dis), dmarc_policy_name(o->policy));
	else
		o->policy = DMARC_P_NONE;	/* no policy without a verdict
						 * (RFC 9989 5.3.6) */
}

/* Severity for combining several From domains. */
static int
dm_rank(enum dmarc_result r)
{
	/* A temporary failure outranks a fail: the message is tempfailed
	 * and retried rather than rejected on incomplete information. */
	switch (r) {
	case DMARC_R_TEMPERROR:
		return 4;
	case DMARC_R_FAIL:
		return 3;
	case DMARC_R_PERMERROR:
		return 2;
	case DMARC_R_PASS:
		return 1;
	case DMARC_R_NONE:
		break;
	}
	return 0;
}

int
dmarc_evaluate(struct dns *dns, uint64_t deadline_ms,
    const struct dmarc_input *in, struct dmarc_outcome *out)
{
	struct dm_ctx		 c;
	struct dmarc_outcome	*one;	/* owns; too big for a small stack */
	char			 doms[DMARC_FROM_MAX][DMARC_DOMAIN_MAX + 1];
	size_t			 ndom = 0, i, j;
	bool			 first = true;

	if (out == NULL)
		return -1;
	memset(out, 0, sizeof(*out));
	out->result = DMARC_R_PERMERROR;
	if (dns == NULL || in == NULL)
		return -1;
	/* No usable From: permerror with no_from, a fact a policy can
	 * reject on (RFC 9989 leaves such messages to local policy). */
	if (in->nfrom == 0 || in->from_domains == NULL) {
		out->no_from = true;
		return 0;
	}
	for (i = 0; i < in->nfrom; i++) {
		char d[DMARC_DOMAIN_MAX + 1];

		if (dm_domain_norm(in->from_domains[i], d) == -1) {
			out->no_from = true;
			return 0;
		}
		for (j = 0; j < ndom; j++)
			if (strcmp(doms[j], d) == 0)
				break;
		if (j < ndom)
			continue;
		if (ndom == DMARC_FROM_MAX)
			return 0;
		memcpy(doms[ndom++], d, sizeof(d));
	}

	c.dns = dns;
	c.deadline = deadline_ms;
	c.lv = dm_levels();
	c.nlv = 0;
	c.queries = 0;
	c.txt = xmalloc(DM_TXT_BUF);
	one = xmalloc(sizeof(*one));
	for (i = 0; i < ndom; i++) {
		memset(one, 0, sizeof(*one));
		dm_eval_one(&c, in, doms[i], one);
		if (first || dm_rank(one->result) > dm_rank(out->result) ||
		    (one->result == DMARC_R_FAIL && out->result ==
		    DMARC_R_FAIL && one->policy > out->policy))
			*out = *one;
		first = false;
	}
	out->queries = c.queries;
	free(one);
	free(c.lv);
	free(c.txt);
	return 0;
}

int
dmarc_org_domain(struct dns *dns, uint64_t deadline_ms, const char *domain,
    char *out, size_t outlen)
{
	struct dm_ctx	 c;
	char		 d[DMARC_DOMAIN_MAX + 1];
	const char	*org;
	enum dm_rc	 rc;
	int		 ret = 0;

	if (dns == NULL || out == NULL || outlen == 0)
		return -2;
	out[0] = '\0';
	if (dm_domain_norm(domain, d) == -1)
		return -2;
	c.dns = dns;
	c.deadline = deadline_ms;
	c.lv = dm_levels();
	c.nlv = 0;
	c.queries = 0;
	c.txt = xmalloc(DM_TXT_BUF);
	rc = dm_org_domain(&c, d, &org, NULL);
	if (rc != DM_OK)
		ret = -1;
	else if (strlen(org) >= outlen)
		ret = -2;
	else
		memcpy(out, org, strlen(org) + 1);
	free(c.lv);
	free(c.txt);
	return ret;
}

int
dmarc_authres(const struct dmarc_outcome *o, char *buf, size_t len)
{
	int	n;

	if (buf == NULL || len == 0)
		return -1;
	buf[0] = '\0';
	if (o == NULL)
		return -1;
	if ((o->result == DMARC_R_PASS || o->result == DMARC_R_FAIL) &&
	    o->p[0] != '\0')
		n = snprintf(buf, len, "dmarc=%s (p=%s sp=%s dis=%s)%s%s",
		    dmarc_result_name(o->result), o->p, o->sp, o->dis,
		    o->header_from[0] != '\0' ? " header.from=" : "",
		    o->header_from);
	else
		n = snprintf(buf, len, "dmarc=%s%s%s",
		    dmarc_result_name(o->result),
		    o->header_from[0] != '\0' ? " header.from=" : "",
		    o->header_from);
	if (n < 0 || (size_t)n >= len) {
		buf[0] = '\0';
		return -1;
	}
	return n;
}

const char *
dmarc_result_name(enum dmarc_result r)
{
	switch (r) {
	case DMARC_R_NONE:
		return "none";
	case DMARC_R_PASS:
		return "pass";
	case DMARC_R_FAIL:
		return "fail";
	case DMARC_R_TEMPERROR:
		return "temperror";
	case DMARC_R_PERMERROR:
		return "permerror";
	}
	return "permerror";
}

const char *
dmarc_policy_name(enum dmarc_policy p)
{
	switch (p) {
	case DMARC_P_NONE:
		return "none";
	case DMARC_P_QUARANTINE:
		return "quarantine";
	case DMARC_P_REJECT:
		return "reject";
	}
	return "none";
}
