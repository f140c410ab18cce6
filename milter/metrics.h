/*
 * metrics.h - the process's counters, gauges and stage latency histogram,
 * rendered in the Prometheus text exposition format (version 0.0.4).
 * The pipeline, the resolver, the blocklist and greylist modules count
 * through the one-line hooks below; metrics_http.c serves the page.
 * Owns: every counter (process lifetime, lock-free atomics), the label
 * tables of rule and zone names (written only by metrics_policy(), under
 * its own mutex; read lock-free), and the start time.
 * Limits: METRICS_RULES_MAX distinct rule names and METRICS_ZONES_MAX
 * zones of each kind over the life of the process (names past that are
 * counted under rule="(other)" or not at all for zones); a page is at
 * most METRICS_PAGE_MAX bytes.
 * Thread safety: every hook may be called from any thread and costs a
 * few relaxed atomic additions (plus, for names, a hash lookup): no lock,
 * no allocation.  Errors: hooks cannot fail; metrics_render() returns
 * NULL when the page would exceed its maximum.
 */
#ifndef PORTCULLIS_METRICS_H
#define PORTCULLIS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dmarc.h"
#include "dns.h"
#include "dnsbl.h"
#include "greylist.h"
#include "policy.h"
#include "spf.h"
#include "zonehealth.h"

#define METRICS_RULES_MAX	512	/* rule names over the process's life */
#define METRICS_ZONES_MAX	128	/* dnsbl (and uribl) zones, ditto */
#define METRICS_NAME_MAX	253	/* a rule or zone name (DNS_NAME_MAX) */
#define METRICS_PAGE_MAX	(4u * 1024 * 1024)	/* one rendered page */
/* The label of decisions whose rule is not in the table (see above). */
#define METRICS_RULE_OTHER	"(other)"
/* A zone that was out of use: not queried (dnsbl "unused" in the log). */
#define METRICS_ZONE_UNUSED	(-1)

/* Records the start time (uptime, start_time).  Call once at start-up. */
void metrics_init(void);

/*
 * The labels the page shows follow the current policy: its deciding rules
 * (plus the pipeline's own: default, on_error, syntax, limits, strip) and
 * its dnsbl and uribl zones.  A name that leaves the policy disappears
 * from the page; its count is kept (a message of the old policy still in
 * flight may add to it) and continues if the name comes back.  A zone
 * that comes (back) into the policy is shown healthy until probed, as
 * zonehealth.h starts it.  Called by the daemon at start and at each
 * reload, from one thread at a time.
 */
void metrics_policy(const struct policy *);

/* Sources of the two gauges the glue owns (open connections, messages in
 * flight), read at each scrape.  Set before the listener starts. */
void metrics_gauge_sources(int (*connections)(void),
    int (*in_flight)(void));

/* ---- hooks ---- */

/* A configuration reload: ok, or failed (the old one stays). */
void metrics_reload(bool ok);
/* A message's outcome, once per message (its log line): the action
 * (POL_ACT_NONE: it ended without a verdict) and the deciding rule ("":
 * none; "on_error": an internal failure decided). */
void metrics_message(enum pol_action, const char *rule);
/* SPF result of the MAIL FROM identity (helo false) or the HELO one. */
void metrics_spf(bool helo, enum spf_result);
/* DKIM: the message's best result ("pass" ... "permerror"). */
void metrics_dkim(const char *best);
void metrics_dmarc(enum dmarc_result);
/* One blocklist lookup of zone judged: an enum dnsbl_answer, or
 * METRICS_ZONE_UNUSED. */
void metrics_zone_lookup(enum zone_kind, const char *zone, int answer);
/* A zone's health changed or was confirmed (zonehealth.c). */
void metrics_zone_health(enum zone_kind, const char *zone, bool usable);
/* Link keys of a message looked up in the uribl zones, and those over
 * uribl_max_lookups. */
void metrics_uribl_links(size_t looked_up, size_t over_limit);
/* One greylist store check: its state (enum greylist_state), or -1 when
 * the store failed. */
void metrics_greylist(int state);
/* The resolver: a query started; a query ended (every query ends once:
 * with its answer's status, DNS_TIMEOUT when its waiter gave up, or
 * DNS_ERROR). */
void metrics_dns_query(void);
void metrics_dns_result(enum dns_status);
/* A query answered from dns.c's own cache (counted as a query too). */
void metrics_dns_cache_hit(void);

/*
 * Stage latency.  METRICS_STAGE_TIMER(stage) at the top of a function
 * times the whole call, every return path included (the cleanup
 * attribute of GCC and Clang), into the histogram of that stage.
 */
struct metrics_timer {
	uint64_t t0_ns;
	enum pol_stage stage;
};
struct metrics_timer metrics_timer_begin(enum pol_stage);
void metrics_timer_end(struct metrics_timer *);
#define METRICS_STAGE_TIMER(st)						\
	struct metrics_timer metrics_timer_				\
	    __attribute__((cleanup(metrics_timer_end))) =		\
	    metrics_timer_begin(st)
/* One observation (for tests and the timer). */
void metrics_observe_stage(enum pol_stage, uint64_t ns);

/* ---- output ---- */

/* The page, NUL-terminated, malloc'ed; *len its length.  NULL when it
 * would exceed METRICS_PAGE_MAX.  Thread safe. */
char *metrics_render(size_t *len);

struct buf;
/*
 * Appends s as a label value without the quotes: backslash, double quote
 * and newline escaped as the exposition format says; bytes that are not
 * valid UTF-8 replaced by U+FFFD (the format is UTF-8).  0 or -1 past the
 * buffer's maximum.
 */
int metrics_escape_label(struct buf *, const char *s);

/*
 * Parses a listen address "IPv4:PORT" or "[IPv6]:PORT" (numeric only,
 * port 1-65535) into *ss and *sslen; *loopback tells whether it is in
 * 127.0.0.0/8 or ::1.  norm (size normlen) gets the canonical text.
 * 0 or -1.
 */
int metrics_parse_addr(const char *spec, struct sockaddr_storage *ss,
    socklen_t *sslen, bool *loopback, char *norm, size_t normlen);

/* Zeroes every counter and forgets every name (unit tests only). */
void metrics_reset(void);

#endif
