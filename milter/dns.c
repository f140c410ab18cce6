/*
 * dns.c - the one resolver: libunbound context, its processing thread and
 * refcounted asynchronous queries with deadlines.  See dns.h.
 */
#include "autoconfig.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <unbound.h>

#include "dns.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

/*
 * The answer cache in front of libunbound.  libunbound has its own cache,
 * but every ub_resolve_async() goes through its pipe to the processing
 * thread and back (~185 system calls) even when it answers from memory;
 * a message makes a dozen lookups, most of them repeated across
 * messages.  Set-associative: a name hashes to one set of CACHE_WAYS
 * entries; a full set evicts the entry used least recently.  Bounded:
 * CACHE_SETS * CACHE_WAYS entries of at most CACHE_BLOB_MAX bytes of
 * rdata each (larger answers are not cached).  Answers live for their
 * TTL as libunbound gives it (for NXDOMAIN and NODATA, the SOA minimum,
 * RFC 2308), capped; TTL 0 and failures (SERVFAIL, timeouts) are never
 * cached.
 */
#define CACHE_SETS	1024
#define CACHE_WAYS	4
#define CACHE_BLOB_MAX	2048
#define CACHE_TTL_MAX	86400
#define CACHE_NEG_TTL_MAX 3600

struct cache_entry {
	uint64_t expires_ms;		/* 0: empty */
	uint64_t used;			/* LRU stamp */
	int type;
	enum dns_status status;		/* DNS_OK, DNS_NODATA, DNS_NXDOMAIN */
	size_t nrr;
	unsigned char *blob;		/* owns: per record, 2-byte length
					 * (network order) then rdata */
	size_t bloblen;
	char name[DNS_NAME_MAX + 2];	/* lower case, no trailing dot */
};

struct dns_cache {
	pthread_mutex_t lock;
	uint64_t tick;
	struct cache_entry e[CACHE_SETS][CACHE_WAYS];
};

struct dns {
	struct ub_ctx *ctx;		/* owns */
	struct dns_cache *cache;	/* owns */
	atomic_ullong cache_hits;
	pthread_t thread;
	int stop_pipe[2];		/* write end wakes the thread */
	atomic_bool stopping;
	pthread_mutex_t lock;		/* guards inflight */
	struct dns_query *inflight;	/* borrows: queries awaiting a
					 * callback, each holding a ref */
};

struct dns_query {
	struct dns *dns;		/* borrows, while in flight */
	int type;
	char key[DNS_NAME_MAX + 2];	/* cache key (cache_key()) */
	struct dns_query *prev, *next;	/* dns->inflight list */
	pthread_mutex_t lock;
	pthread_cond_t done_cv;
	int refs;			/* waiter + in-flight callback */
	bool done;
	enum dns_status status;
	size_t nrr;
	unsigned char *rr[DNS_RR_MAX];	/* owns each */
	size_t rrlen[DNS_RR_MAX];
};

static void
query_unref(struct dns_query *q)
{
	size_t i;
	int left;

	pthread_mutex_lock(&q->lock);
	left = --q->refs;
	pthread_mutex_unlock(&q->lock);
	if (left > 0)
		return;
	for (i = 0; i < q->nrr; i++)
		free(q->rr[i]);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->done_cv);
	free(q);
}

/* lower case, no trailing dot; -1 when too long for the cache */
static int
cache_key(const char *name, char *out)
{
	size_t n = strlen(name), i;

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n > DNS_NAME_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		char c = name[i];

		out[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
	}
	out[n] = '\0';
	return 0;
}

static struct cache_entry *
cache_set(struct dns_cache *c, const char *key, int type)
{
	uint32_t h = 2166136261u;	/* FNV-1a */
	const unsigned char *p;

	for (p = (const unsigned char *)key; *p != '\0'; p++)
		h = (h ^ *p) * 16777619u;
	h = (h ^ (uint32_t)type) * 16777619u;
	return c->e[h % CACHE_SETS];
}

static void
entry_clear(struct cache_entry *e)
{
	free(e->blob);
	e->blob = NULL;
	e->bloblen = 0;
	e->nrr = 0;
	e->expires_ms = 0;
}

/* Fills q from the cache: true on a hit (q done). */
static bool
cache_lookup(struct dns *d, struct dns_query *q)
{
	struct cache_entry *set;
	uint64_t now = clock_ms();
	bool hit = false;
	int w;

	if (d->cache == NULL || q->key[0] == '\0')
		return false;
	pthread_mutex_lock(&d->cache->lock);
	set = cache_set(d->cache, q->key, q->type);
	for (w = 0; w < CACHE_WAYS; w++) {
		struct cache_entry *e = &set[w];
		size_t i, off = 0;

		if (e->expires_ms == 0 || e->type != q->type ||
		    strcmp(e->name, q->key) != 0)
			continue;
		if (e->expires_ms <= now) {
			entry_clear(e);
			break;
		}
		e->used = ++d->cache->tick;
		for (i = 0; i < e->nrr; i++) {
			size_t n = (size_t)e->blob[off] << 8 | e->blob[off + 1];

			q->rr[i] = xmalloc(n > 0 ? n : 1);
			memcpy(q->rr[i], e->blob + off + 2, n);
			q->rrlen[i] = n;
			off += 2 + n;
		}
		q->nrr = e->nrr;
		q->status = e->status;
		q->done = true;
		hit = true;
		break;
	}
	pthread_mutex_unlock(&d->cache->lock);
	if (hit) {
		atomic_fetch_add(&d->cache_hits, 1);
		metrics_dns_cache_hit();
		metrics_dns_result(q->status);
	}
	return hit;
}

/* Keeps an answer for its TTL (see CACHE_SETS). */
static void
cache_store(struct dns *d, const struct dns_query *q, int ttl)
{
	struct cache_entry *set, *victim = NULL;
	unsigned char *blob = NULL;
	size_t len = 0, i;
	uint64_t now;
	int w, cap = q->status == DNS_OK ? CACHE_TTL_MAX : CACHE_NEG_TTL_MAX;

	if (d->cache == NULL || q->key[0] == '\0' || ttl <= 0 ||
	    (q->status != DNS_OK && q->status != DNS_NODATA &&
	    q->status != DNS_NXDOMAIN))
		return;
	if (ttl > cap)
		ttl = cap;
	for (i = 0; i < q->nrr; i++) {
		if (q->rrlen[i] > 0xffff)
			return;
		len += 2 + q->rrlen[i];
	}
	if (len > CACHE_BLOB_MAX)
		return;
	if (len > 0) {
		size_t off = 0;

		blob = xmalloc(len);
		for (i = 0; i < q->nrr; i++) {
			blob[off] = (unsigned char)(q->rrlen[i] >> 8);
			blob[off + 1] = (unsigned char)(q->rrlen[i] & 0xff);
			memcpy(blob + off + 2, q->rr[i], q->rrlen[i]);
			off += 2 + q->rrlen[i];
		}
	}
	now = clock_ms();
	pthread_mutex_lock(&d->cache->lock);
	set = cache_set(d->cache, q->key, q->type);
	for (w = 0; w < CACHE_WAYS; w++) {
		struct cache_entry *e = &set[w];

		if (e->expires_ms != 0 && e->type == q->type &&
		    strcmp(e->name, q->key) == 0) {
			victim = e;	/* a concurrent lookup's copy */
			break;
		}
		if (e->expires_ms != 0 && e->expires_ms <= now)
			entry_clear(e);
		if (victim == NULL || (victim->expires_ms != 0 &&
		    (e->expires_ms == 0 || e->used < victim->used)))
			victim = e;
	}
	entry_clear(victim);
	victim->blob = blob;
	victim->bloblen = len;
	victim->nrr = q->nrr;
	victim->status = q->status;
	victim->type = q->type;
	memcpy(victim->name, q->key, strlen(q->key) + 1);
	victim->used = ++d->cache->tick;
	victim->expires_ms = now + (uint64_t)ttl * 1000;
	pthread_mutex_unlock(&d->cache->lock);
}

/* Skips a (possibly compressed) name at *off; -1 when malformed. */
static int
skip_name(const unsigned char *p, size_t len, size_t *off)
{
	int labels;

	for (labels = 0; labels < 128; labels++) {
		size_t l;

		if (*off >= len)
			return -1;
		l = p[*off];
		if ((l & 0xc0) == 0xc0) {
			if (*off + 2 > len)
				return -1;
			*off += 2;
			return 0;
		}
		if (l > 63)
			return -1;
		*off += 1 + l;
		if (l == 0)
			return 0;
	}
	return -1;
}

static uint32_t
rd32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/*
 * The TTL of a negative answer (RFC 2308 section 5): the smaller of the
 * SOA record's TTL and its MINIMUM field, from the authority section of
 * the answer packet.  -1 without an SOA: such an answer is not cached
 * (libunbound's own ttl is meaningless then).
 */
static int
negative_ttl(const unsigned char *p, size_t len)
{
	size_t off = 12, i;
	unsigned qd, an, ns;

	if (p == NULL || len < 12)
		return -1;
	qd = (unsigned)p[4] << 8 | p[5];
	an = (unsigned)p[6] << 8 | p[7];
	ns = (unsigned)p[8] << 8 | p[9];
	for (i = 0; i < qd; i++) {
		if (skip_name(p, len, &off) != 0 || off + 4 > len)
			return -1;
		off += 4;
	}
	for (i = 0; i < (size_t)an + ns; i++) {
		unsigned type, rdlen;
		uint32_t ttl;
		size_t rd;

		if (skip_name(p, len, &off) != 0 || off + 10 > len)
			return -1;
		type = (unsigned)p[off] << 8 | p[off + 1];
		ttl = rd32(p + off + 4);
		rdlen = (unsigned)p[off + 8] << 8 | p[off + 9];
		off += 10;
		if (off + rdlen > len)
			return -1;
		rd = off;
		off += rdlen;
		if (i < an || type != 6)
			continue;
		if (skip_name(p, off, &rd) != 0 ||	/* MNAME */
		    skip_name(p, off, &rd) != 0 ||	/* RNAME */
		    rd + 20 > off)
			return -1;
		{
			uint32_t min = rd32(p + rd + 16);

			if (min < ttl)
				ttl = min;
			return ttl > (uint32_t)CACHE_NEG_TTL_MAX ?
			    CACHE_NEG_TTL_MAX : (int)ttl;
		}
	}
	return -1;
}

static void
cache_free(struct dns_cache *c)
{
	size_t s;
	int w;

	if (c == NULL)
		return;
	for (s = 0; s < CACHE_SETS; s++)
		for (w = 0; w < CACHE_WAYS; w++)
			entry_clear(&c->e[s][w]);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

unsigned long long
dns_cache_hits(const struct dns *d)
{
	return d == NULL ? 0 : atomic_load(&d->cache_hits);
}

static void
query_finish(struct dns_query *q, enum dns_status st, struct ub_result *r)
{
	pthread_mutex_lock(&q->lock);
	if (!q->done) {
		metrics_dns_result(st);
		q->status = st;
		if (r != NULL && st == DNS_OK) {
			size_t i;

			for (i = 0; r->data[i] != NULL && i < DNS_RR_MAX;
			    i++) {
				size_t n = (size_t)r->len[i];

				q->rr[i] = xmalloc(n);
				memcpy(q->rr[i], r->data[i], n);
				q->rrlen[i] = n;
			}
			q->nrr = i;
		}
		if (r != NULL && q->dns != NULL && st == DNS_OK &&
		    r->data[q->nrr] == NULL)
			cache_store(q->dns, q, r->ttl);
		else if (r != NULL && q->dns != NULL && (st == DNS_NODATA ||
		    st == DNS_NXDOMAIN))
			cache_store(q->dns, q, negative_ttl(r->answer_packet,
			    r->answer_len > 0 ? (size_t)r->answer_len : 0));
		q->done = true;
		pthread_cond_broadcast(&q->done_cv);
	}
	pthread_mutex_unlock(&q->lock);
}

/* libunbound callback, in the dns thread. */
static void
inflight_unlink(struct dns_query *q)
{
	struct dns *d = q->dns;

	pthread_mutex_lock(&d->lock);
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		d->inflight = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
	pthread_mutex_unlock(&d->lock);
}

static void
query_cb(void *arg, int err, struct ub_result *r)
{
	struct dns_query *q = arg;
	enum dns_status st;

	inflight_unlink(q);

	if (err != 0 || r == NULL)
		st = DNS_SERVFAIL;
	else if (r->havedata)
		st = DNS_OK;
	else if (r->nxdomain)
		st = DNS_NXDOMAIN;
	else if (r->rcode == 0)
		st = DNS_NODATA;
	else
		st = DNS_SERVFAIL;
	query_finish(q, st, r);
	if (r != NULL)
		ub_resolve_free(r);
	query_unref(q);
}

static void *
dns_thread(void *arg)
{
	struct dns *d = arg;
	struct pollfd pfd[2];

	pfd[0].fd = ub_fd(d->ctx);
	pfd[0].events = POLLIN;
	pfd[1].fd = d->stop_pipe[0];
	pfd[1].events = POLLIN;
	while (!atomic_load(&d->stopping)) {
		int n = poll(pfd, 2, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_err("dns: poll: %s", strerror(errno));
			break;
		}
		if (pfd[1].revents)
			break;
		if (pfd[0].revents && ub_process(d->ctx) != 0)
			log_warn("dns: ub_process failed");
	}
	return NULL;
}

/*
 * Special-use names that libunbound answers itself unless told not to;
 * tests and local zones need them forwarded (DESIGN.md section 2).  They
 * are declared "transparent" (no local data: forward) because libunbound
 * 1.17 ignores "nodefault" given through ub_ctx_set_option().
 */
static const char *const nodefault_zones[] = {
	"test.", "invalid.", "example.", "local.", "localhost.",
	"onion.", "home.arpa.", "10.in-addr.arpa.", "127.in-addr.arpa.",
	"168.192.in-addr.arpa.", "16.172.in-addr.arpa.",
	/* documentation networks (RFC 5737, RFC 3849) used by test suites */
	"2.0.192.in-addr.arpa.", "100.51.198.in-addr.arpa.",
	"113.0.203.in-addr.arpa.", "8.b.d.0.1.0.0.2.ip6.arpa.",
	"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.",
	NULL
};

struct dns *
dns_new(const struct dns_options *o, const char **err)
{
	struct dns *d = xcalloc(1, sizeof(*d));
	size_t i;
	int rc;

	*err = NULL;
	if ((d->ctx = ub_ctx_create()) == NULL) {
		*err = "cannot create the libunbound context";
		free(d);
		return NULL;
	}
	/* callbacks run in our thread, not a forked helper process */
	if (ub_ctx_async(d->ctx, 1) != 0)
		*err = "ub_ctx_async failed";
	/*
	 * unbound.conf(5), infra-keep-probing: hosts that did not answer
	 * during the one-probe-at-a-time period are marked down "and it may
	 * take infra-host-ttl time (15 minutes) to get probed again".  With
	 * one forwarder that would hold every message for that long after a
	 * resolver outage: keep probing it instead.  (A name whose lookup
	 * failed is still answered SERVFAIL from the cache for 5 seconds.)
	 */
	if (*err == NULL && ub_ctx_set_option(d->ctx, "infra-keep-probing:",
	    "yes") != 0)
		*err = "cannot set infra-keep-probing";
	if (*err == NULL && o->forwarder != NULL) {
		if (ub_ctx_set_option(d->ctx, "do-not-query-localhost:",
		    "no") != 0)
			*err = "cannot allow queries to localhost";
		for (i = 0; *err == NULL && nodefault_zones[i] != NULL; i++) {
			char v[128];

			snprintf(v, sizeof(v), "%s transparent",
			    nodefault_zones[i]);
			if (ub_ctx_set_option(d->ctx, "local-zone:", v) != 0)
				*err = "cannot configure local zones";
		}
		if (*err == NULL && (rc = ub_ctx_set_fwd(d->ctx,
		    o->forwarder)) != 0)
			*err = "invalid resolver address";
	} else if (*err == NULL && !o->no_network) {
		if ((rc = ub_ctx_resolvconf(d->ctx, NULL)) != 0)
			*err = "cannot read /etc/resolv.conf";
		else if (ub_ctx_hosts(d->ctx, NULL) != 0)
			log_warn("dns: cannot read /etc/hosts");
	}
	if (*err == NULL && o->no_network) {
		/* a static root zone: every name outside the local data is
		 * answered NXDOMAIN from memory, so no packet leaves the
		 * process (declared before the data, or libunbound refuses) */
		if (ub_ctx_set_option(d->ctx, "local-zone:", ". static") != 0)
			*err = "cannot isolate the resolver";
	}
	if (*err == NULL && o->local_data != NULL) {
		for (i = 0; *err == NULL && o->local_data[i] != NULL; i++)
			if (ub_ctx_data_add(d->ctx, o->local_data[i]) != 0)
				*err = "invalid DNS record in local data";
	}
	pthread_mutex_init(&d->lock, NULL);
	d->cache = xcalloc(1, sizeof(*d->cache));
	pthread_mutex_init(&d->cache->lock, NULL);
	if (*err == NULL && pipe(d->stop_pipe) != 0)
		*err = "pipe failed";
	if (*err == NULL &&
	    pthread_create(&d->thread, NULL, dns_thread, d) != 0) {
		close(d->stop_pipe[0]);
		close(d->stop_pipe[1]);
		*err = "cannot start the resolver thread";
	}
	if (*err != NULL) {
		ub_ctx_delete(d->ctx);
		pthread_mutex_destroy(&d->lock);
		cache_free(d->cache);
		free(d);
		return NULL;
	}
	return d;
}

void
dns_free(struct dns *d)
{
	if (d == NULL)
		return;
	atomic_store(&d->stopping, true);
	if (write(d->stop_pipe[1], "x", 1) != 1)
		log_warn("dns: cannot wake the resolver thread");
	pthread_join(d->thread, NULL);
	close(d->stop_pipe[0]);
	close(d->stop_pipe[1]);
	/* deleting the context drops pending queries without callbacks;
	 * their waiters still hold a reference and time out or see the
	 * status set by the deadline */
	ub_ctx_delete(d->ctx);
	while (d->inflight != NULL) {
		struct dns_query *q = d->inflight;

		d->inflight = q->next;
		query_finish(q, DNS_ERROR, NULL);
		query_unref(q);
	}
	pthread_mutex_destroy(&d->lock);
	cache_free(d->cache);
	free(d);
}

struct dns_query *
dns_query_start(struct dns *d, const char *name, enum dns_type type)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));
	int rc;

	metrics_dns_query();
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->done_cv, NULL);
	q->refs = 2;
	if (d == NULL || strlen(name) > DNS_NAME_MAX + 1) {
		query_finish(q, DNS_ERROR, NULL);
		q->refs = 1;
		return q;
	}
	q->type = (int)type;
	if (cache_key(name, q->key) != 0)
		q->key[0] = '\0';
	if (cache_lookup(d, q)) {
		q->refs = 1;
		return q;
	}
	q->dns = d;
	pthread_mutex_lock(&d->lock);
	q->next = d->inflight;
	if (q->next != NULL)
		q->next->prev = q;
	d->inflight = q;
	pthread_mutex_unlock(&d->lock);
	rc = ub_resolve_async(d->ctx, name, (int)type, 1 /* IN */, q,
	    query_cb, NULL);
	if (rc != 0) {
		inflight_unlink(q);
		log_warn("dns: cannot start query: %s", ub_strerror(rc));
		query_finish(q, DNS_ERROR, NULL);
		q->refs = 1;
	}
	return q;
}

enum dns_status
dns_query_wait(struct dns_query *q, uint64_t deadline_ms)
{
	enum dns_status st;

	pthread_mutex_lock(&q->lock);
	while (!q->done) {
		uint64_t now = clock_ms();
		struct timespec ts;

		if (now >= deadline_ms) {
			/* late answers are ignored from here on */
			metrics_dns_result(DNS_TIMEOUT);
			q->status = DNS_TIMEOUT;
			q->done = true;
			break;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		{
			uint64_t left = deadline_ms - now;

			ts.tv_sec += (time_t)(left / 1000);
			ts.tv_nsec += (long)(left % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
		}
		pthread_cond_timedwait(&q->done_cv, &q->lock, &ts);
	}
	st = q->status;
	pthread_mutex_unlock(&q->lock);
	return st;
}

size_t
dns_query_count(const struct dns_query *q)
{
	return q->status == DNS_OK ? q->nrr : 0;
}

const unsigned char *
dns_query_rdata(const struct dns_query *q, size_t i, size_t *len)
{
	if (q->status != DNS_OK || i >= q->nrr)
		return NULL;
	*len = q->rrlen[i];
	return q->rr[i];
}

void
dns_query_free(struct dns_query *q)
{
	if (q != NULL)
		query_unref(q);
}

int
dns_name_from_wire(const unsigned char *p, size_t len, char *out,
    size_t outlen)
{
	size_t i = 0, o = 0;

	if (outlen == 0)
		return -1;
	while (i < len) {
		size_t lab = p[i++], j;

		if (lab == 0) {
			out[o] = '\0';
			return o == 0 && outlen < 1 ? -1 : 0;
		}
		if (lab > 63 || lab > len - i)
			return -1;	/* compression or truncation */
		if (o != 0) {
			if (o + 1 >= outlen)
				return -1;
			out[o++] = '.';
		}
		for (j = 0; j < lab; j++) {
			unsigned char c = p[i + j];

			if (o + 1 >= outlen)
				return -1;
			if (c >= 'A' && c <= 'Z')
				c = (unsigned char)(c + 32);
			/* a hostile label may hold any byte; keep only
			 * host-name characters, reject the rest */
			if (!((c >= 'a' && c <= 'z') || (c >= '0' &&
			    c <= '9') || c == '-' || c == '_'))
				return -1;
			out[o++] = (char)c;
		}
		i += lab;
	}
	return -1;
}

long
dns_txt_join(const unsigned char *p, size_t len, char *out, size_t outlen,
    int nul_ok)
{
	size_t i = 0, o = 0;

	if (outlen == 0)
		return -1;
	while (i < len) {
		size_t n = p[i++];

		if (n > len - i || o + n >= outlen)
			return -1;
		if (!nul_ok && memchr(p + i, '\0', n) != NULL)
			return -1;
		memcpy(out + o, p + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	return (long)o;
}

int
dns_reverse_name(int family, const unsigned char *a, char *out,
    size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	int n, i;
	size_t o = 0;

	if (family == AF_INET) {
		n = snprintf(out, outlen, "%u.%u.%u.%u.in-addr.arpa", a[3],
		    a[2], a[1], a[0]);
		return n < 0 || (size_t)n >= outlen ? -1 : 0;
	}
	if (outlen < 16 * 4 + sizeof("ip6.arpa"))
		return -1;
	for (i = 15; i >= 0; i--) {
		out[o++] = hex[a[i] & 15];
		out[o++] = '.';
		out[o++] = hex[a[i] >> 4];
		out[o++] = '.';
	}
	memcpy(out + o, "ip6.arpa", sizeof("ip6.arpa"));
	return 0;
}

const char *
dns_status_name(enum dns_status st)
{
	switch (st) {
	case DNS_OK: return "ok";
	case DNS_NODATA: return "nodata";
	case DNS_NXDOMAIN: return "nxdomain";
	case DNS_SERVFAIL: return "servfail";
	case DNS_TIMEOUT: return "timeout";
	default: return "error";
	}
}
