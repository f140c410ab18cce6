/*
 * dmarc.h - DMARC (RFC 9989) evaluation: record parser, policy discovery
 * and Organizational Domain by the DNS tree walk, SPF/DKIM alignment.
 * Owns: nothing shared; dmarc_evaluate() keeps a per-call cache of the
 * _dmarc lookups on the heap and frees it before returning.  All DNS goes
 * through dns.c.
 * Limits: DMARC_WALK_MAX queries per tree walk, DMARC_QUERIES_MAX per
 * evaluation, DMARC_FROM_MAX From domains, DMARC_DKIM_MAX DKIM domains,
 * every string bounded by the constants below.
 * Errors: dmarc_record_parse() returns 0 / -1; dmarc_evaluate() returns
 * 0 with a DMARC result (temperror, permerror included) in the outcome,
 * -1 only for bad arguments.
 */
#ifndef PORTCULLIS_DMARC_H
#define PORTCULLIS_DMARC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dns;

/* RFC 9989 4.10: at most eight _dmarc queries per DNS tree walk. */
#define DMARC_WALK_MAX		8
/* Distinct DNS queries of one evaluation (walks share a cache). */
#define DMARC_QUERIES_MAX	96
/* From domains evaluated; more is permerror (a hostile message). */
#define DMARC_FROM_MAX		8
/* Passing DKIM domains considered for alignment; the rest ignored. */
#define DMARC_DKIM_MAX		16
/* A TXT record longer than this is not read as a DMARC record. */
#define DMARC_RECORD_MAX	2048
/* Kept rua=/ruf= text; longer lists are dropped (flagged), not cut. */
#define DMARC_URI_MAX		512
#define DMARC_FO_MAX		16
#define DMARC_DOMAIN_MAX	253

enum dmarc_result {
	DMARC_R_NONE,
	DMARC_R_PASS,
	DMARC_R_FAIL,
	DMARC_R_TEMPERROR,
	DMARC_R_PERMERROR
};

enum dmarc_policy {
	DMARC_P_NONE,
	DMARC_P_QUARANTINE,
	DMARC_P_REJECT
};

enum dmarc_psd {
	DMARC_PSD_U,		/* absent or "u" */
	DMARC_PSD_Y,
	DMARC_PSD_N
};

/* A parsed DMARC policy record.  Plain data, no pointers. */
struct dmarc_record {
	enum dmarc_policy p;	/* absent/invalid: none (RFC 9989) */
	enum dmarc_policy sp;	/* absent/invalid: p */
	enum dmarc_policy np;	/* absent/invalid: sp */
	bool	 has_p, has_sp, has_np;	/* present with a valid value */
	bool	 adkim_strict;	/* adkim=s; default r */
	bool	 aspf_strict;	/* aspf=s; default r */
	bool	 testing;	/* t=y, or legacy pct=0 without t= */
	bool	 has_t;
	enum dmarc_psd psd;
	int	 pct;		/* legacy RFC 7489 pct, -1 absent/invalid */
	char	 rua[DMARC_URI_MAX + 1];	/* raw text, "" absent */
	char	 ruf[DMARC_URI_MAX + 1];
	bool	 uri_dropped;	/* a rua/ruf longer than DMARC_URI_MAX */
	char	 fo[DMARC_FO_MAX + 1];		/* default "0" */
	unsigned unknown_tags;	/* ignored tags (RFC 9989: MUST ignore) */
	unsigned bad_values;	/* syntax errors and invalid values, ignored */
	bool	 rua_valid;	/* rua= holds at least one valid URI */
	/* RFC 9989 4.10.1: no valid p=, or an invalid sp=/np=: the record
	 * reads as p=none (policy_defaulted) when rua_valid, else DMARC does
	 * not apply to the message (no_policy, with policy_defaulted). */
	bool	 policy_defaulted;
	bool	 no_policy;
};

/*
 * Parses one TXT record (already joined, RFC 7489/9989 tag list).  txt
 * need not be NUL-terminated.  Returns 0 when it is a DMARC record: its
 * first bytes are the version tag, "v" (either case), optional SP/HTAB,
 * "=", optional SP/HTAB and exactly "DMARC1" (case sensitive, RFC 9989
 * 4.7/4.8), then ';' or the end.  -1 when it is not (then it is discarded
 * as RFC 9989 4.10 says: leading whitespace, "v=dmarc1", "v=DMARC1 p=..."
 * all are not), holds a NUL byte, or is longer than DMARC_RECORD_MAX.
 * The other tags follow the 4.8 ABNF (separators "*WSP ; *WSP", names
 * 1*ALPHA and case-insensitive, values printable ASCII): unknown tags are
 * ignored, syntax errors and invalid values of known tags fall back to
 * the defaults (counted in bad_values); fo= must be a dmarc-fo list.  A
 * missing or invalid p=, or an invalid sp= or np=, makes the record
 * p=none when rua= holds a valid URI and no_policy otherwise (RFC 9989
 * 4.10.1).  Of a repeated tag the first is kept.
 * Legacy pct=: RFC 9989 drops sampling; pct=0 without t= reads as t=y
 * (what pct=0 meant), any other pct as t=n.  Thread safe, no allocation.
 */
int	dmarc_record_parse(const char *txt, size_t len,
	    struct dmarc_record *out);

struct dmarc_input {
	const char *const *from_domains;	/* borrowed; all From domains */
	size_t		 nfrom;			/* 0: no usable From */
	const char	*spf_result;		/* "pass", ...; NULL: none */
	const char	*spf_domain;		/* MAIL FROM domain, or HELO */
	const char *const *dkim_pass_domains;	/* d= of passing signatures */
	size_t		 ndkim;
	/* d= of signatures whose key lookup failed (DKIM temperror): an
	 * aligned one makes a non-passing result temperror, not fail */
	const char *const *dkim_temp_domains;
	size_t		 ndkim_temp;
};

struct dmarc_outcome {
	enum dmarc_result result;
	enum dmarc_policy policy;	/* applies after sp/np/t */
	char	 p[12], sp[12];		/* record's words, "" if none */
	char	 dis[12];		/* none, quarantine or reject */
	char	 header_from[DMARC_DOMAIN_MAX + 3];	/* deciding domain */
	/* its Organizational Domain and where its record was found; both
	 * "" when no record was found (result none) */
	char	 org_domain[DMARC_DOMAIN_MAX + 3];
	char	 policy_domain[DMARC_DOMAIN_MAX + 3];
	bool	 testing;		/* t=y applied */
	bool	 nonexistent;		/* np applied (NXDOMAIN) */
	bool	 no_from;		/* no usable From domain */
	unsigned queries;		/* DNS queries made */
	/* For aggregate reports (RFC 9990), set when a record was found:
	 * the identifier alignment results (both are evaluated, even when
	 * one alone decides the pass), the policy before t=y stepped it
	 * down, and the record as published (defaults filled in). */
	bool	 dkim_aligned;		/* a passing DKIM d= aligned */
	bool	 spf_aligned;		/* the passing SPF domain aligned */
	enum dmarc_policy policy_untested;	/* p/sp/np before t=y */
	char	 np[12];		/* record's word, "" if none */
	bool	 adkim_strict, aspf_strict;
	char	 fo[DMARC_FO_MAX + 1];
	char	 rua[DMARC_URI_MAX + 1];	/* raw rua= text, "" absent */
};

/*
 * Evaluates DMARC for a message (RFC 9989 4.10.1 policy discovery, 4.10.2
 * Organizational Domain by the tree walk, 4.4 alignment, 5.3 policy).
 * Blocking; every query ends by deadline_ms (clock_ms() scale).
 * Policy: the From domain's own record (p), else its Organizational
 * Domain's, else the psd=y record that ended the walk (sp, or np when the
 * From domain's A query answers NXDOMAIN, RFC 8020; that query is made
 * only then).  A record with no_policy gives none.  Alignment walks only
 * for a relaxed check of two different names.  Result: pass when an
 * aligned identity passed; else temperror when a lookup it depends on
 * failed (SERVFAIL, timeout) or an aligned identity's own check is
 * temperror (dkim_temp_domains, spf_result "temperror"); else fail.
 * Several From domains (U-labels converted to A-labels by libidn2): each
 * is evaluated, the outcome is that of the worst in the order temperror
 * > fail > permerror > pass > none (of two fails the stricter policy).
 * nfrom 0, an empty or malformed (non-LDH, refused by libidn2, too long)
 * From domain, or more than DMARC_FROM_MAX domains give permerror with
 * no_from set for the first two.  A name holding several v=DMARC1
 * records holds none.  policy is set for pass and fail only (pass: the
 * policy that would apply, dis "none"), else none.  org_domain is set
 * when a relaxed check (or the discovery) needed it, else "".  Returns 0,
 * or -1 for NULL arguments.  Thread safe (dns is); stack use about 5 KB,
 * the cache is on the heap.
 */
int	dmarc_evaluate(struct dns *dns, uint64_t deadline_ms,
	    const struct dmarc_input *in, struct dmarc_outcome *out);

/*
 * Writes the Authentication-Results method fragment of DESIGN.md 6,
 * e.g. "dmarc=pass (p=reject sp=reject dis=none) header.from=example.com";
 * the comment only when a record was found, header.from only when known.
 * Returns the length, or -1 when it does not fit (buf then "").
 */
int	dmarc_authres(const struct dmarc_outcome *, char *buf, size_t len);

/*
 * The Organizational Domain of domain (RFC 9989 4.10.2, the DNS tree
 * walk), for checks outside a message evaluation (the verification of
 * external report destinations, RFC 9990).  Writes it, lower-cased and
 * without a trailing dot, into out.  Returns 0; -1 when a lookup failed
 * (temporary: SERVFAIL, timeout) or the query limit was reached; -2
 * when domain is not a domain or out is too small.  Blocking, every
 * query ends by deadline_ms.  Thread safe.
 */
int	dmarc_org_domain(struct dns *dns, uint64_t deadline_ms,
	    const char *domain, char *out, size_t outlen);

const char *dmarc_result_name(enum dmarc_result);
const char *dmarc_policy_name(enum dmarc_policy);

/*
 * A From domain as DMARC queries it: lower case, no trailing dot, U-labels
 * as A-labels (libidn2).  0, or -1 for a name that is not a domain.
 */
int	dmarc_domain_dns(const char *in, char out[DMARC_DOMAIN_MAX + 1]);

#endif
