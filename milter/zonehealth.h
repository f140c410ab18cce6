/*
 * zonehealth.h - whether each DNSBL / URIBL zone of the policy may be
 * trusted right now (RFC 5782 section 5).
 * A blocklist that lists everything (its domain expired and was parked
 * behind a wildcard), that answers its error codes (Spamhaus refuses
 * queries from public resolvers with 127.255.255.254) or that stopped
 * answering must never decide mail: each zone's test entries are probed
 * at start and every interval, and a zone that fails is taken out of use
 * (logged once) until a probe finds it healthy again.
 *   IP zones:     2.0.0.127.ZONE must be listed, 1.0.0.127.ZONE must not.
 *   domain zones: INVALID.ZONE must not be listed; TEST.ZONE should be
 *                 (many URIBLs publish other test names, so a missing TEST
 *                 entry is only logged).
 * Both must be answered (a timeout or SERVFAIL is a failure).
 * Owns: the zone table and, once started, one prober thread.  Locks: one
 * mutex for the table, never held across DNS waits.
 */
#ifndef PORTCULLIS_ZONEHEALTH_H
#define PORTCULLIS_ZONEHEALTH_H

#include <stdbool.h>

struct dns;
struct policy;

enum zone_kind {
	ZONE_IP,		/* "dnsbl" lines: reversed client addresses */
	ZONE_DOMAIN		/* "uribl" lines: domains of links */
};

struct zone_health;

/* The zones of pol, every one usable until probed.  The state of zones
 * already known to prev (the previous snapshot) is carried over, so a
 * reload does not put a broken zone back in use. */
struct zone_health *zone_health_new(const struct policy *pol,
    const struct zone_health *prev);
/* Starts the prober: probes at once, then every interval_ms, each query
 * waiting at most timeout_ms.  dns must outlive the health object.
 * 0 or -1. */
int zone_health_start(struct zone_health *, struct dns *,
    unsigned interval_ms, unsigned timeout_ms);
/* Stops the prober.  NULL is fine. */
void zone_health_free(struct zone_health *);

/* Whether the zone may decide (true for NULL or an unknown zone). */
bool zone_health_usable(struct zone_health *, const char *zone,
    enum zone_kind);
/* A lookup saw an error answer (why: static or short text): the zone is
 * out of use until the next good probe.  Without a running prober the
 * failure is only logged (once per zone). */
void zone_health_fail(struct zone_health *, const char *zone,
    enum zone_kind, const char *why);

#endif
