/*
 * greylist.h - greylisting of (sender identity, envelope sender, recipient)
 * triplets, the `greylist` fact of DESIGN.md section 4.
 * Owns: an open store (struct greylist): an LMDB environment or a pool of
 * Redis connections, each with its own lock (see store.h for the order).
 * Limits: GREY_KEY_MAX bytes a stored key (longer ones are hashed).
 * Errors: greylist_open() fills err; greylist_check() returns -1 when the
 * store failed, and the caller applies greylist_on_error.
 */
#ifndef PORTCULLIS_GREYLIST_H
#define PORTCULLIS_GREYLIST_H

#include <stddef.h>
#include <stdint.h>

/* A key longer than this stores sender and recipient as a SHA-256 hex
 * digest instead (LMDB's default key limit is 511 bytes). */
#define GREY_KEY_MAX		400
/* Opportunistic LMDB sweep: at most this many records examined (and so at
 * most this many deleted) in one write transaction... */
#define GREY_SWEEP_MAX		1000
/* ...and at most one such step every this many seconds of `now`. */
#define GREY_SWEEP_INTERVAL	60
/* An allowed triplet's (or identity's) timestamps are written again only
 * once expire / GREY_REFRESH_DIV seconds, at most GREY_REFRESH_MAX, have
 * passed since the last write (grey_refresh_after()). */
#define GREY_REFRESH_DIV	16
#define GREY_REFRESH_MAX	3600
/* LMDB map size when the spec gives none. */
#define GREY_LMDB_MAPSIZE_DEFAULT	(256u * 1024 * 1024)
/* Redis connect and command timeout. */
#define GREY_REDIS_TIMEOUT_MS	1000
/* Idle Redis connections kept; more may exist while threads are busy. */
#define GREY_REDIS_POOL_MAX	16

/* Seconds; filled from policy/policy.h struct pol_greylist.  A netmask of
 * 0 means the default (/24, /64); autoallow 0 turns autoallow off. */
struct greylist_params {
	unsigned delay, window, expire;
	unsigned netmask4, netmask6;
	unsigned autoallow;
};

enum greylist_state { GREY_NEW, GREY_EARLY, GREY_PASSED, GREY_ALLOWED };

struct greylist;	/* an open store */

/*
 * Opens a store.  spec is one of
 *   lmdb:/DIR[?mapsize=BYTES[k|M|G]]   directory created (0750) if missing
 *   redis://HOST[:PORT][/DB]           TCP, port 6379, db 0 by default;
 *                                      an IPv6 HOST is written [::1]
 *   redis:///PATH/TO.sock[?db=N]       a unix socket
 * Redis is not contacted here (it may be down at start-up: each check
 * connects when it needs to); LMDB is opened now.  Returns NULL with a
 * message in err on failure.  Start-up only; the handle is then shared by
 * every thread.
 */
struct greylist *greylist_open(const char *spec, char *err, size_t errlen);
/* Accepts NULL.  No check may be running. */
void greylist_close(struct greylist *);

/*
 * Records the triplet and returns its state in *out.
 * client_ip: textual IPv4 or IPv6 (an IPv4-mapped IPv6 counts as IPv4).
 * spf_pass_domain: the envelope sender's domain when SPF passed for it,
 *   else NULL; it then replaces the client network as sender identity.
 * mail_from: "" for the null sender; mail_from and rcpt are folded to
 *   lower case entirely (local parts too: two spellings of one mailbox
 *   must not be greylisted twice, and collisions only merge retries).
 * now: wall-clock seconds, passed in so tests control time.
 * Returns 0, or -1 when the store failed or client_ip is not an address
 * (logged).  Thread safe.
 */
int greylist_check(struct greylist *, const struct greylist_params *,
    const char *client_ip, const char *spf_pass_domain,
    const char *mail_from, const char *rcpt, uint64_t now,
    enum greylist_state *out);

/* "new", "early", "passed", "allowed" (the fact's values). */
const char *greylist_state_name(enum greylist_state);
/* The reverse: the state, or -1 for another word. */
int greylist_state_parse(const char *);

/*
 * The sender identity of a client: "203.0.113.0/24", "2001:db8::/64"
 * (network, masked), or "spf:example.org" when spf_pass_domain is given.
 * 0, or -1 when client_ip is not an address (and no SPF domain given) or
 * the result does not fit size.
 */
int greylist_identity(const struct greylist_params *, const char *client_ip,
    const char *spf_pass_domain, char *dst, size_t size);

#endif
