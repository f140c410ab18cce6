/*
 * report_agg.h - DMARC aggregate reports (RFC 9990) from stored rows:
 * grouping per Policy Domain into records ("one record per (IP, result,
 * IDs, auths) tuple", with a count), the XML document of one report, its
 * file name, and the verification of external report destinations (RFC
 * 9990 section 4, "Verifying External Destinations") through dns.c.
 * Owns: struct agg, the rows of one reporting period: per Policy Domain
 * its latest published policy and its distinct records.  Single-threaded
 * (the CLI).
 * Limits: AGG_GROUPS_MAX distinct records, AGG_DOMAINS_MAX domains;
 * AGG_XML_MAX bytes of one document.
 * Errors: 0 / -1 with a message in err where one is taken.
 */
#ifndef PORTCULLIS_AGG_H
#define PORTCULLIS_AGG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "report_row.h"

struct buf;
struct dns;

#define AGG_GROUPS_MAX	1000000		/* distinct records a period */
#define AGG_DOMAINS_MAX	100000		/* Policy Domains a period */
#define AGG_XML_MAX	(512u * 1024 * 1024)	/* one document */
#define AGG_DEST_MAX	(2 * REPORT_RUA_MAX)	/* URIs judged a report */

struct agg;

struct agg *agg_new(void);
void agg_free(struct agg *);

/*
 * Adds one row: its record's count goes up by one; the row's published
 * policy replaces its domain's when the row is newer.  -1 (and err) past
 * AGG_GROUPS_MAX or AGG_DOMAINS_MAX.
 */
int agg_add(struct agg *, const struct report_row *, char *err,
    size_t errlen);

/* Policy Domains, sorted; valid until the next agg_add(). */
size_t agg_ndomains(struct agg *);
const char *agg_domain(struct agg *, size_t i);
/* Records and messages of domain i. */
void agg_domain_counts(struct agg *, size_t i, size_t *records,
    uint64_t *messages);
/* The published rua= text of domain i (latest row), "" when none. */
const char *agg_domain_rua(struct agg *, size_t i);

/* What report_metadata says. */
struct agg_meta {
	const char *org_name;
	const char *email;
	const char *extra_contact_info;	/* NULL: not written */
	const char *report_id;
	uint64_t begin, end;		/* date_range, seconds */
	const char *generator;		/* NULL: not written */
};

/*
 * The XML document of domain i's report into out (cleared first, max
 * AGG_XML_MAX): namespace urn:ietf:params:xml:ns:dmarc-2.0, version 1.0,
 * report_metadata, policy_published (the latest seen, discovery_method
 * treewalk), then the records sorted by source IP and content.  0 or -1.
 */
int agg_xml(struct agg *, size_t i, const struct agg_meta *,
    struct buf *out);

/*
 * The file name of RFC 9990 2.5.2 (without directory):
 * receiver "!" policy-domain "!" begin "!" end "!" unique-id ".xml"
 * (".xml.gz" when gz).  unique-id and report_id are the same token:
 * 16 hex digits of SHA-256 over receiver, domain, begin and end, so a
 * report made again for the same period keeps its name (RFC 9990: a
 * re-sent report MUST keep its file name).  -1 when receiver or domain
 * is not a lower-case LDH domain (they name a file) or out is too small.
 */
int agg_report_id(const char *receiver, const char *domain, uint64_t begin,
    uint64_t end, char *id, size_t idlen);
int agg_filename(const char *receiver, const char *domain, uint64_t begin,
    uint64_t end, const char *id, bool gz, char *out, size_t outlen);

/* One rua= destination, judged. */
struct agg_dest {
	char	 uri[REPORT_RUA_TEXT_MAX + 1];	/* as published */
	char	 addr[REPORT_ADDR_MAX + 1];	/* kept: send here */
	bool	 kept;
	char	 why[640];			/* printable reason */
};

/*
 * Judges the rua= URIs of policy_domain for a report of report_size bytes
 * (RFC 9990): only mailto: is supported; a URI whose size limit the
 * report exceeds is dropped; a host whose Organizational Domain (the DNS
 * tree walk) is the policy domain's is kept; any other is kept only when
 * "<policy_domain>._report._dmarc.<host>" holds a TXT record starting
 * with v=DMARC1.  Such a record's own rua= replaces the URI, unless it
 * names another host: then neither is used.  A temporary DNS failure
 * drops the URI (the report can be made again later).  Kept addresses
 * are listed once.  Every query ends by timeout_ms.  Returns the number
 * of entries in out (kept and dropped, at most max).
 */
size_t agg_rua_verify(struct dns *dns, unsigned timeout_ms,
    const char *policy_domain, const char *rua, uint64_t report_size,
    struct agg_dest *out, size_t max);

#endif
