/*
 * store.h - the greylist store interface, between greylist.c (triplet
 * logic, key building) and one file per backend: store_lmdb.c (embedded,
 * the default) and store_redis.c (shared by several MX hosts).  Tests may
 * supply their own struct grey_store_ops.
 * Owns: nothing itself; each backend documents its handle.
 * Locks (never nested, never held across a call into another module):
 *   LMDB: its own writer lock (one write transaction at a time);
 *   Redis: the pool mutex, held only to pop or push an idle connection.
 * Errors: 0 / -1; backends log what failed (log_err; Redis rate-limits
 * its lines during an outage).
 */
#ifndef PORTCULLIS_STORE_H
#define PORTCULLIS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "greylist.h"

/*
 * One stored record.  Two kinds share it:
 *   triplet "g:" IDENTITY "\t" SENDER "\t" RCPT
 *     passed, first_seen, last_seen, last_pass (0: never passed);
 *   identity "a:" IDENTITY  (autoallow counter, or a manual allow)
 *     count = triplets passed, manual = `portcullis greylist allow
 *     --network`, first_seen, last_seen (last pass or allowed sighting).
 * expires_at is when the record may be deleted (LMDB sweep, Redis TTL);
 * the logic itself decides expiry from the current params, not from it.
 */
struct grey_rec {
	bool present;
	bool passed;
	bool manual;
	uint32_t count;
	uint64_t first_seen, last_seen, last_pass;
	uint64_t expires_at;
};

/* What grey_decide() changed: the records to write back. */
#define GREY_WRITE_TRIPLET	0x1
#define GREY_WRITE_IDENTITY	0x2

/*
 * The transition function of DESIGN.md section 4, shared by every store
 * that can read and write both records in one transaction (LMDB; the Redis
 * Lua script in store_redis.c is a transcription of it, and the unit suite
 * runs the same cases against both).  trip and ident are the stored
 * records (present false when missing); they are updated in place.
 * Returns GREY_WRITE_* flags and the state in *out (0: nothing changed,
 * an allowed triplet not due for a refresh: the store writes nothing).
 * Pure.
 */
unsigned grey_decide(const struct greylist_params *, uint64_t now,
    struct grey_rec *trip, struct grey_rec *ident, enum greylist_state *out);

/* Seconds between two writes of an allowed record's timestamps:
 * min(expire / GREY_REFRESH_DIV, GREY_REFRESH_MAX).  0 for every
 * sighting. */
uint64_t grey_refresh_after(const struct greylist_params *);

/* Key prefixes and the field separator (escaped inside fields). */
#define GREY_TRIPLET_PREFIX	"g:"
#define GREY_IDENTITY_PREFIX	"a:"
#define GREY_SEP		'\t'
/* "<>" stands for the null sender in keys and listings. */
#define GREY_NULL_SENDER	"<>"

/* One record as the CLI lists it; strings borrow (until the callback
 * returns).  sender and rcpt are NULL for identity records. */
struct grey_entry {
	const char *identity;
	const char *sender;	/* "#" SHA-256 hex when the key was hashed */
	const char *rcpt;	/* "" when the key was hashed */
	struct grey_rec rec;
};
typedef int (*grey_list_cb)(const struct grey_entry *, void *arg);

struct grey_stats {
	uint64_t pending, passed;	/* triplets */
	uint64_t identities, manual;	/* identity records */
	uint64_t bytes;		/* on disk (LMDB), in memory (Redis) */
	uint64_t capacity;		/* LMDB map size, 0 for Redis */
	uint64_t txnid;		/* LMDB: id of the last committed write
				 * transaction (each one counts); 0 Redis */
};

struct grey_store_ops {
	const char *name;
	/* Reads both records, calls grey_decide(), writes back, atomically.
	 * tkey/ikey are complete keys (with prefix), NUL-free. */
	int (*check)(void *h, const struct greylist_params *,
	    const char *tkey, size_t tlen, const char *ikey, size_t ilen,
	    uint64_t now, enum greylist_state *out);
	/* Stores rec under key, replacing it (the CLI); stores that expire
	 * keys give it a TTL of rec->expires_at - now. */
	int (*put)(void *h, const char *key, size_t len,
	    const struct grey_rec *, uint64_t now);
	/* 1 when deleted, 0 when there was no such key, -1 on error. */
	int (*del)(void *h, const char *key, size_t len);
	/* Calls cb for every record; a non-zero cb result stops (returned). */
	int (*list)(void *h, grey_list_cb, void *arg);
	int (*stats)(void *h, struct grey_stats *);
	/* Deletes up to max records whose expires_at < now (0: all); the
	 * number deleted in *n.  Stores that expire keys themselves do
	 * nothing. */
	int (*sweep)(void *h, uint64_t now, size_t max, size_t *n);
	void (*close)(void *h);
};

/* Backends.  spec is what follows "lmdb:" / the whole "redis://..." URL. */
void *grey_lmdb_open(const char *spec, char *err, size_t errlen);
void *grey_redis_open(const char *spec, char *err, size_t errlen);
extern const struct grey_store_ops grey_lmdb_ops, grey_redis_ops;

/* Wraps an opened backend handle (tests: a fake). */
struct greylist *greylist_from_store(const struct grey_store_ops *,
    void *h);

/*
 * Builds the triplet key into dst (NUL-terminated; size >= GREY_KEY_MAX
 * + 1): fields escaped (bytes <= 0x20, 0x7f, '%' as %XX, addresses
 * lower-cased), "<>" for the null sender, and sender + rcpt replaced by
 * "#" SHA-256 hex when the key would exceed GREY_KEY_MAX.  Returns the
 * length, or -1 when even the identity does not fit.
 */
int grey_key_triplet(const char *identity, const char *sender,
    const char *rcpt, char *dst, size_t size);
/* "a:" IDENTITY.  Returns the length or -1. */
int grey_key_identity(const char *identity, char *dst, size_t size);
/* Splits a stored key into fields for listing, copied into buf; they stay
 * escaped (that form is printable and is what `allow`/`delete` take).
 * Returns 0 for a triplet or identity key, -1 for anything else. */
int grey_key_split(const char *key, size_t len, struct grey_entry *e,
    char *buf, size_t size);

/* Access to the backend for the CLI. */
const struct grey_store_ops *greylist_ops(struct greylist *, void **h);

#endif
