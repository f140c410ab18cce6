/*
 * dnsbl.h - DNS blocklists for the client address (RFC 5782), and the
 * answer rules shared with the URIBL lookups.
 * At connect, one A query per usable "dnsbl" zone of the policy starts at
 * once (and a TXT query per zone when the policy reads dnsbl.reason); all
 * run in parallel through dns.c and are waited for when a rule first
 * needs a dnsbl fact.
 * What counts as a listing: an A answer inside 127.0.0.0/8 that is not an
 * error answer (127.0.0.1, 127.255.255.0/24) and that passes the zone's
 * "codes" ranges or "mask" bits.  Answers outside 127/8 and error answers
 * are never listings: they are logged once per zone, counted as errors and
 * reported to zonehealth.  A timeout or SERVFAIL is "not listed" (counted,
 * shown in the log line), never a reject.
 * Owns: per connection a struct dnsbl_conn with its queries.
 */
#ifndef PORTCULLIS_DNSBL_H
#define PORTCULLIS_DNSBL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "zonehealth.h"

struct dns;
struct dns_query;

/* Reversed-address query name: IPv4 "4.3.2.1.ZONE", IPv6 32 nibbles
 * "b.a.9.8. ... .ZONE".  0, or -1 when it does not fit. */
int dnsbl_ip_name(const struct pol_ip *, const char *zone, char *out,
    size_t outlen);

enum dnsbl_answer {
	DNSBL_NOT_LISTED,	/* NXDOMAIN / NODATA, or codes not matched */
	DNSBL_LISTED,
	DNSBL_ERROR_ANSWER,	/* outside 127/8, 127.0.0.1, 127.255.255.x */
	DNSBL_TIMEOUT,		/* no answer before the deadline */
	DNSBL_FAILURE		/* SERVFAIL, malformed answer, internal */
};
/* Classifies a finished A query for zone d; *code gets the first listing
 * (or error) address as text when code is not NULL. */
enum dnsbl_answer dnsbl_classify(const struct pol_dnsbl *d,
    struct dns_query *q, uint64_t deadline, char *code, size_t codelen);
const char *dnsbl_answer_name(enum dnsbl_answer);

/* The client's lookups (one connection). */
struct dnsbl_conn;

/* Starts the queries; NULL when the policy has no dnsbl zone or the
 * address is unusable.  want_reason: also fetch the TXT reasons. */
struct dnsbl_conn *dnsbl_start(struct dns *, const struct policy *,
    struct zone_health *, const struct pol_ip *, bool want_reason);
void dnsbl_free(struct dnsbl_conn *);

struct dnsbl_result {
	bool listed;
	const char **zones;	/* listing zones in policy order (borrows
				 * the policy); NULL-terminated */
	size_t nzones;
	const char *reason;	/* TXT of the first listing zone, "" */
	double weight;		/* sum of the listing zones' weights */
	unsigned errors, timeouts, skipped;	/* zones */
};
/* Waits for every query (each until deadline) once and returns the
 * result, owned by the dnsbl_conn.  NULL conn: an empty result. */
const struct dnsbl_result *dnsbl_result(struct dnsbl_conn *,
    uint64_t deadline);
/* A short summary for the message log line ("zen=listed(127.0.0.2),
 * bl=timeout"), owned by the conn; "" before dnsbl_result(). */
const char *dnsbl_summary(const struct dnsbl_conn *);

#endif
