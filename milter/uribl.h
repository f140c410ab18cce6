/*
 * uribl.h - SURBL / URIBL lookups of the links of a message (RFC 5782
 * domain lists).  uriscan.c finds the keys (registered domains, IPv4
 * addresses) while the body streams; each key is queried in every usable
 * "uribl" zone at once, so the lookups overlap the rest of the message,
 * and the answers are collected at end of message.
 * A domain key is queried as KEY.ZONE, an address reversed
 * (4.3.2.1.ZONE); with the zone option "labels N" the link's host name,
 * cut to its last N labels, is queried too (HOST.ZONE).  Answers are judged as for dnsbl (dnsbl_classify():
 * codes, mask, error answers never listings, a timeout not a listing).
 * Owns: per message a struct uribl_msg with its queries.
 * Limits: max_lookups keys a message (config uribl_max_lookups), the
 * rest counted as skipped.
 */
#ifndef PORTCULLIS_URIBL_H
#define PORTCULLIS_URIBL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "zonehealth.h"

struct dns;
struct uribl_msg;

/* NULL when the policy has no uribl zone. */
struct uribl_msg *uribl_new(struct dns *, const struct policy *,
    struct zone_health *, unsigned max_lookups);
void uribl_free(struct uribl_msg *);
/* A key found in the message: its queries start now.  NULL msg is
 * fine (nothing to do). */
void uribl_key(struct uribl_msg *, const char *key, bool is_ip);
/* A host name of a link whose key (registered domain) was handed to
 * uribl_key(): queried, cut to the zone's "labels", in each zone that has
 * that option, when the cut name is longer than the key; a listing counts
 * for the key.  Each such name counts as a lookup against max_lookups. */
void uribl_host(struct uribl_msg *, const char *host, const char *key);
/* Whether a uribl zone of the policy has "labels" (hosts are needed). */
bool uribl_wants_hosts(const struct policy *);

struct uribl_result {
	bool listed;
	const char **domains;	/* listed keys, in order found;
				 * NULL-terminated; owned by the msg */
	size_t ndomains;
	double weight;		/* sum of the weights of listing zones */
	unsigned keys, skipped;	/* keys looked up; keys over the limit */
	unsigned errors, timeouts;	/* answers */
};
/* Waits for every query (each until deadline) once.  NULL msg: an empty
 * result. */
const struct uribl_result *uribl_result(struct uribl_msg *,
    uint64_t deadline);
/* For the log line ("keys:2,listed:a.com@multi.surbl.org(127.0.0.2)"),
 * "" before uribl_result(). */
const char *uribl_summary(const struct uribl_msg *);

#endif
