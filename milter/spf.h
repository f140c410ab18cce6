/*
 * spf.h - SPF (RFC 7208) checks of the MAIL FROM and HELO identities.
 * libspf2 is the engine; spf.c wraps it so that it is conformant: every
 * query goes through dns.c (a custom libspf2 DNS layer), every record is
 * validated against the RFC 7208 section 12 ABNF first, lookups and void
 * lookups are counted, and explanations are expanded here.
 * Owns: nothing between calls; each check builds and frees its own libspf2
 * server, so checks run in parallel on any thread.
 * Limits: SPF_LOOKUP_MAX DNS-querying terms, SPF_VOID_MAX void lookups,
 * SPF_MX_MAX names per mx, SPF_RECORD_MAX bytes per record.
 * Errors: the check's result set (temperror, permerror); -1 only on an
 * internal failure (out of memory in libspf2), with out->problem set.
 */
#ifndef PORTCULLIS_SPF_H
#define PORTCULLIS_SPF_H

#include <stddef.h>
#include <stdint.h>

#define SPF_LOOKUP_MAX	10	/* RFC 7208 4.6.4 */
#define SPF_VOID_MAX	2	/* RFC 7208 4.6.4 */
#define SPF_MX_MAX	10	/* RFC 7208 4.6.4, names per mx */
#define SPF_PTR_MAX	10	/* RFC 7208 4.6.4, names per ptr */
#define SPF_RECORD_MAX	4096	/* bytes of one joined TXT record */
#define SPF_EXP_MAX	512	/* bytes of an expanded explanation */

struct dns;

enum spf_result {
	SPF_R_NONE,
	SPF_R_NEUTRAL,
	SPF_R_PASS,
	SPF_R_FAIL,
	SPF_R_SOFTFAIL,
	SPF_R_TEMPERROR,
	SPF_R_PERMERROR
};

struct spf_outcome {
	enum spf_result result;
	char explanation[SPF_EXP_MAX];	/* expanded exp= text of a fail,
					 * "" otherwise (untrusted text) */
	char problem[256];		/* why permerror/temperror, for
					 * logs (untrusted text inside) */
};

/* "pass", "fail", ... (RFC 8601 result names). */
const char *spf_result_name(enum spf_result);

/*
 * RFC 7208 check_host() for the MAIL FROM identity.  sender "" or "<>"
 * checks postmaster@helo (RFC 7208 2.4); a sender without local-part
 * uses "postmaster".  client_ip: IPv4 or IPv6 text (IPv4-mapped IPv6 is
 * evaluated as IPv4).  Blocks; every query goes through dns and ends by
 * deadline_ms (clock_ms() scale), after which the result is temperror.
 * Returns 0 with *out filled, or -1 on internal failure.  Thread safe.
 */
int spf_check(struct dns *dns, uint64_t deadline_ms, const char *client_ip,
    const char *helo, const char *sender, struct spf_outcome *out);

/* The same for the HELO identity (RFC 7208 2.3): domain helo, sender
 * postmaster@helo. */
int spf_check_helo(struct dns *dns, uint64_t deadline_ms,
    const char *client_ip, const char *helo, struct spf_outcome *out);

/*
 * The RFC 7208 section 12 validator, exposed for tests and the fuzzer:
 * 0 when rec (len bytes, may hold NUL) is a well-formed SPF record, -1
 * with a reason in why otherwise.
 */
int spf_record_validate(const char *rec, size_t len, char *why,
    size_t whylen);

#endif
