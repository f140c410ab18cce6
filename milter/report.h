/*
 * report.h - recording DMARC results for aggregate reports (RFC 9990):
 * the report store (config report_store: LMDB or Redis, shared by every
 * snapshot that names it) and the recorder the pipeline calls at end of
 * message.  Recording never delays or fails a message: report_record()
 * only queues a row; one writer thread per store writes queued rows in
 * batches.  A full queue or a store error drops rows, logs (at most one
 * line every REPORT_LOG_INTERVAL_MS) and counts them.
 * Owns: the table of open stores and its mutex; per store, the backend
 * handle, the queue, its mutex and condition variable, and the writer
 * thread.  Locks (never nested, never held across I/O): the table mutex
 * (open/close), a store's queue mutex (push/pop).
 * Limits: REPORT_QUEUE_MAX queued rows, REPORT_BATCH_MAX rows a write.
 * Errors: report_store_acquire() returns NULL with a message; the rest
 * returns 0 / -1 with a log line.
 */
#ifndef PORTCULLIS_REPORT_H
#define PORTCULLIS_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "report_row.h"

struct spf_outcome;
struct dkimv_result;
struct dmarc_outcome;

#define REPORT_QUEUE_MAX	4096	/* rows waiting for the writer */
#define REPORT_BATCH_MAX	256	/* rows written in one transaction */
#define REPORT_LOG_INTERVAL_MS	10000
#define REPORT_LMDB_MAPSIZE_DEFAULT	(1024ULL * 1024 * 1024)
#define REPORT_KEY_MAX		40	/* "r:" time ":" id */
/* The Redis sorted set holding the rows (score: time). */
#define REPORT_REDIS_KEY	"portcullis:dmarc:rows"
/* Rows an LMDB expire deletes a transaction (writers keep flowing). */
#define REPORT_EXPIRE_STEP	1000

/* One row for a backend: key (LMDB), time (Redis score), value. */
struct rep_kv {
	uint64_t	 time;
	const char	*key;
	size_t		 klen;
	const char	*val;
	size_t		 vlen;
};

/* A stored row for a scan; val borrows until the callback returns. */
typedef int (*rep_scan_cb)(uint64_t time, const char *val, size_t vlen,
    void *arg);

struct rep_store_ops {
	const char *name;
	/* Stores n rows (one transaction / one command).  0 or -1. */
	int (*put)(void *h, const struct rep_kv *kv, size_t n);
	/* Calls cb for each row with since <= time < until, oldest first;
	 * a non-zero cb result stops the scan and is returned. */
	int (*scan)(void *h, uint64_t since, uint64_t until, rep_scan_cb cb,
	    void *arg);
	/* Deletes the rows with since <= time < until, the count in *n. */
	int (*expire)(void *h, uint64_t since, uint64_t until, uint64_t *n);
	void (*close)(void *h);
};

/* Backends (store_lmdb.c, store_redis.c); spec as greylist_store's. */
void *rep_lmdb_open(const char *spec, char *err, size_t errlen);
void *rep_redis_open(const char *spec, char *err, size_t errlen);
extern const struct rep_store_ops rep_lmdb_ops, rep_redis_ops;

struct report_store;

/*
 * Opens (or shares, by spec) the store "lmdb:/DIR[?mapsize=N]" or
 * "redis://HOST[:PORT][/DB]" / "redis:///SOCKET[?db=N]".  writer: start
 * the writer thread (the daemon); false for the CLI, which only scans and
 * expires.  A store shared by several snapshots has a writer when any
 * acquisition asked for one.  Returns NULL with a message in err.
 * Start-up and reload only (not on a message's path).
 */
struct report_store *report_store_acquire(const char *spec, bool writer,
    char *err, size_t errlen);
/* Drops a reference; the last one writes what is queued (bounded by the
 * store's own timeouts), stops the writer and closes.  NULL is fine. */
void report_store_release(struct report_store *);
/* The backend, for the CLI. */
const struct rep_store_ops *report_store_ops(struct report_store *,
    void **h);
/* Tests and the writer: waits until the queue is empty and written. */
void report_store_flush(struct report_store *);

/* What the pipeline knows of a message at its end.  Borrowed. */
struct report_msg {
	const char *client_ip;		/* NULL: nothing to report */
	const char *helo;		/* may be NULL */
	const char *mail_from;		/* "" for the null sender */
	const char *mail_from_domain;
	const char *rcpt_domain;	/* first accepted recipient's, or
					 * NULL */
	const struct spf_outcome *spf;
	const struct dkimv_result *dkim;	/* may be NULL */
	const struct dmarc_outcome *dmarc;
	enum pol_action action;		/* the final verdict */
};

/*
 * Builds the row of a message whose DMARC was evaluated and queues it.
 * Nothing is queued when no DMARC record was found (no Policy Domain to
 * report to), for a tempfail (the message comes again) or without a
 * client address.  Never blocks on I/O; thread safe.
 */
void report_record(struct report_store *, const struct report_msg *);

/*
 * The row for m at time now (the pure part of report_record(), for
 * tests).  Returns 0, 1 when the message is not reported, -1 when a
 * field does not fit (the row would mislead).
 */
int report_row_build(const struct report_msg *m, uint64_t now,
    struct report_row *r);

/* The storage key of a row ("r:" 10-digit time ":" 16 hex id) into dst
 * (>= REPORT_KEY_MAX + 1).  Its length. */
size_t report_key(uint64_t time, uint64_t id, char *dst);

/* Counters since start: rows queued, written, dropped (queue full,
 * store error), not reportable. */
struct report_counters {
	uint64_t queued, written, dropped, skipped;
};
void report_counters(struct report_counters *);

#endif
