/*
 * dns.h - the one resolver of portcullis, on libunbound.
 * Every DNS query of every check goes through here: one shared cache,
 * asynchronous queries started early and waited for late, a per-query
 * deadline, an optional forwarder (config "resolver"), or the system
 * resolver (/etc/resolv.conf, /etc/hosts) otherwise.
 * Owns: one ub_ctx and one thread that runs ub_process(); per query, a
 * refcounted struct dns_query (one ref for the waiter, one for the
 * in-flight callback).  Locks: dns->lock (query bookkeeping), each
 * query's own mutex; never held across a wait on another module.
 * Errors: dns_new() returns NULL with a message; a query ends in one of
 * the enum dns_status values, never blocks past its deadline.
 */
#ifndef PORTCULLIS_DNS_H
#define PORTCULLIS_DNS_H

#include <stddef.h>
#include <stdint.h>

#define DNS_NAME_MAX	253	/* presentation form, no trailing dot */
#define DNS_RR_MAX	64	/* records kept of one answer */
#define DNS_RDATA_MAX	65535

enum dns_status {
	DNS_OK = 0,		/* records present */
	DNS_NODATA,		/* name exists, no record of that type */
	DNS_NXDOMAIN,
	DNS_SERVFAIL,		/* SERVFAIL, REFUSED and other rcodes */
	DNS_TIMEOUT,		/* no answer before the deadline */
	DNS_ERROR		/* internal failure (not the network's) */
};

enum dns_type {
	DNS_T_A = 1,
	DNS_T_PTR = 12,
	DNS_T_MX = 15,
	DNS_T_TXT = 16,
	DNS_T_AAAA = 28
};

struct dns;
struct dns_query;

struct dns_options {
	const char *forwarder;		/* "IP@PORT", NULL: system resolver */
	const char *const *local_data;	/* RRs in zone-file syntax served
					 * from memory (portcullis test);
					 * NULL-terminated, may be NULL */
	int no_network;			/* with local_data: never ask a
					 * server; unknown names NXDOMAIN */
};

/* Makes the resolver and starts its thread.  NULL and *err (static text)
 * on failure. */
struct dns *dns_new(const struct dns_options *, const char **err);
/* Stops the thread; pending queries end as DNS_ERROR.  NULL is fine. */
void dns_free(struct dns *);

/* Starts a query.  Never NULL: a query that cannot start completes at
 * once with DNS_ERROR.  name: presentation form.  Thread safe. */
struct dns_query *dns_query_start(struct dns *, const char *name,
    enum dns_type type);

/*
 * Waits until the answer is in or deadline_ms (clock_ms() scale) passes,
 * then returns the status.  Repeatable.  The records stay with the query.
 */
enum dns_status dns_query_wait(struct dns_query *, uint64_t deadline_ms);
/* Records of a DNS_OK answer: rdata in wire format. */
size_t dns_query_count(const struct dns_query *);
const unsigned char *dns_query_rdata(const struct dns_query *, size_t i,
    size_t *len);
/* Drops the waiter's reference; a pending query is abandoned safely. */
void dns_query_free(struct dns_query *);

/* Converts an rdata domain name (uncompressed wire form) to text without
 * the trailing dot, lower case.  0 or -1. */
int dns_name_from_wire(const unsigned char *, size_t, char *out,
    size_t outlen);

/*
 * Joins the character-strings of one TXT rdata (RFC 1035 3.3.14; RFC 7208
 * 3.3 and RFC 6376 3.6.2.2 concatenate them without separator) into out,
 * NUL-terminated.  Returns the length, or -1 when the rdata is malformed,
 * holds a NUL byte (nul_ok false) or does not fit.
 */
long dns_txt_join(const unsigned char *rdata, size_t len, char *out,
    size_t outlen, int nul_ok);

/* The reverse-lookup name of an address (in-addr.arpa / ip6.arpa). */
int dns_reverse_name(int family, const unsigned char *addr, char *out,
    size_t outlen);

const char *dns_status_name(enum dns_status);

/* Answers given from portcullis's own cache, without libunbound. */
unsigned long long dns_cache_hits(const struct dns *);

#endif
