/*
 * report_row.h - one DMARC result as stored for aggregate reports (RFC
 * 9990): the row, its storage encoding and decoding, the grouping key of
 * RFC 9990 ("one record per (IP, result, IDs, auths) tuple"), XML text
 * escaping and the parsing of a DMARC rua= URI list.  Pure functions: no
 * I/O, no globals, so the unit suite and the fuzz target take it alone.
 * Owns: nothing.
 * Limits: every field has a named maximum below; REPORT_VALUE_MAX bytes
 * a stored value; REPORT_DKIM_MAX signatures, REPORT_REASON_MAX reasons,
 * REPORT_RUA_MAX URIs.
 * Errors: 0 / -1.  A stored value that does not decode is refused whole
 * (the caller skips it and says so); a field too long for its slot when a
 * row is built is left empty, never cut (report.c counts it).
 */
#ifndef PORTCULLIS_REPORT_ROW_H
#define PORTCULLIS_REPORT_ROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

#define REPORT_DOMAIN_MAX	255	/* a domain (dkimv's d= slot) */
#define REPORT_SELECTOR_MAX	63
#define REPORT_IP_MAX		45	/* INET6_ADDRSTRLEN - 1 */
#define REPORT_WORD_MAX		15	/* results, policies, reasons */
#define REPORT_FO_MAX		16	/* DMARC_FO_MAX */
#define REPORT_RUA_TEXT_MAX	512	/* DMARC_URI_MAX */
#define REPORT_DKIM_MAX		8	/* DKIMV_SIG_MAX */
#define REPORT_REASON_MAX	2	/* policy_test_mode, local_policy */
#define REPORT_REASON_LEN	23	/* a PolicyOverrideType word */
/* An encoded row, bytes: above the largest a row can encode to (every
 * slot full, every byte escaped: about 13 KB), so no row is too big. */
#define REPORT_VALUE_MAX	16384
#define REPORT_RUA_MAX		8	/* URIs of one rua= taken */
#define REPORT_ADDR_MAX		320	/* a mailto: address, decoded */
#define REPORT_ROW_VERSION	1

struct report_dkim {
	char	domain[REPORT_DOMAIN_MAX + 1];		/* d= */
	char	selector[REPORT_SELECTOR_MAX + 1];	/* s= */
	char	result[REPORT_WORD_MAX + 1];		/* RFC 8601 name */
};

/*
 * One message.  Strings are NUL-terminated; "" means absent, except
 * envelope_from, which is "" for the null reverse-path (RFC 9990: present
 * but empty).  Words are lower case.
 */
struct report_row {
	uint64_t time;			/* Unix seconds, when evaluated */
	uint64_t id;			/* unique among rows */
	char	 ip[REPORT_IP_MAX + 1];	/* source_ip */
	char	 header_from[REPORT_DOMAIN_MAX + 1];
	char	 envelope_from[REPORT_DOMAIN_MAX + 1];
	char	 envelope_to[REPORT_DOMAIN_MAX + 1];
	char	 spf_domain[REPORT_DOMAIN_MAX + 1];	/* checked (mfrom) */
	char	 spf_result[REPORT_WORD_MAX + 1];
	struct report_dkim dkim[REPORT_DKIM_MAX];	/* report order */
	size_t	 ndkim;
	char	 dmarc_result[REPORT_WORD_MAX + 1];	/* pass, fail, ... */
	bool	 dkim_aligned, spf_aligned;	/* policy_evaluated */
	char	 disposition[REPORT_WORD_MAX + 1];	/* none pass q. r. */
	char	 reason[REPORT_REASON_MAX][REPORT_REASON_LEN + 1];
	size_t	 nreason;
	/* policy_published, as seen for this message */
	char	 policy_domain[REPORT_DOMAIN_MAX + 1];
	char	 p[REPORT_WORD_MAX + 1], sp[REPORT_WORD_MAX + 1],
		 np[REPORT_WORD_MAX + 1];
	char	 adkim, aspf;		/* 'r' or 's' */
	char	 testing;		/* 'y' or 'n' */
	char	 fo[REPORT_FO_MAX + 1];
	char	 rua[REPORT_RUA_TEXT_MAX + 1];	/* raw rua= text */
};

/*
 * Encodes r as "name=value\n" lines, "v=1" first, values %XX-escaped
 * (bytes <= 0x20, '%', 0x7f and above), into b (cleared first).
 * Returns 0, or -1 when b's maximum is too small.
 */
int	rrow_encode(const struct report_row *r, struct buf *b);

/*
 * Decodes a stored value (len bytes, need not be NUL-terminated) into r.
 * Refuses (-1) a value longer than REPORT_VALUE_MAX, another version, a
 * line without '=', a bad %XX escape or an escaped NUL, a field longer
 * than its slot, more than REPORT_DKIM_MAX dkim or REPORT_REASON_MAX
 * reason lines, a word or domain with characters it cannot hold (the
 * policy domain names output files: LDH, '_' and '.' only), a missing
 * time, ip, header_from or policy_domain.  Unknown names are ignored (a
 * newer writer).  Returns 0.  Thread safe, no allocation.
 */
int	rrow_decode(const char *val, size_t len, struct report_row *r);

/*
 * The grouping key of RFC 9990: every field a report record shows
 * (source IP, policy_evaluated, identifiers, auth_results), none of the
 * time, id or published policy.  Into b (cleared first).  0 or -1.
 */
int	rrow_group_key(const struct report_row *r, struct buf *b);

/* Decodes a grouping key back into the record fields of r (the rest
 * zero).  0 or -1, as rrow_decode(). */
int	rrow_decode_key(const char *key, size_t len, struct report_row *r);

/*
 * Appends s as XML character data or attribute text: & < > " ' as
 * entities; control characters other than TAB, LF, CR (not allowed in
 * XML 1.0) and bytes that are not well-formed UTF-8 (overlong forms,
 * surrogates, past U+10FFFF, U+FFFE/U+FFFF) each become '?'.  0 or -1
 * (b's maximum).
 */
int	rrow_xml_escape(struct buf *b, const char *s, size_t len);

/* One URI of a rua= list. */
struct rua_uri {
	char	uri[REPORT_RUA_TEXT_MAX + 1];	/* as written, trimmed */
	bool	mailto;		/* a mailto: URI with a usable address */
	const char *why;	/* !mailto: why not (static text) */
	char	addr[REPORT_ADDR_MAX + 1];	/* decoded, no ?query */
	char	host[REPORT_DOMAIN_MAX + 1];	/* lower case, no dot */
	uint64_t size_limit;	/* "!10m": bytes; 0: none */
};

/*
 * Splits a rua= value (RFC 9989: comma-separated URIs, each optionally
 * followed by "!" size [k|m|g|t]) into at most max URIs.  An entry that
 * is not a usable mailto: (other scheme, bad %XX, no '@', a host that is
 * not a domain, too long) is kept with mailto false so the caller can say
 * why it was dropped.  Empty entries are skipped.  Returns the count;
 * entries past max are not returned (*more set when there were some).
 */
size_t	rrow_rua_parse(const char *rua, size_t len, struct rua_uri *out,
	    size_t max, bool *more);

/* Whether s is a lower-case LDH domain ('_' allowed, dots between
 * labels, no trailing dot), as policy domains and receivers must be. */
bool	rrow_domain_ok(const char *s);

#endif
