/*
 * report.c - the DMARC report store and the recorder (report.h): rows
 * built at end of message, queued, and written by one thread per store so
 * that no message ever waits for a disk sync or a Redis round trip.
 * Owns: the table of open stores (stores[], store_lock); per store its
 * backend handle, queue (q, qlock, qcond, idle) and writer thread; the
 * process's counters and the id nonce.
 * Limits: REPORT_QUEUE_MAX, REPORT_BATCH_MAX (report.h).
 * Errors: rows that cannot be queued or written are dropped, counted and
 * logged at most once every REPORT_LOG_INTERVAL_MS with the number left
 * unsaid; a message is never affected.
 */
#include "autoconfig.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "dkimv.h"
#include "dmarc.h"
#include "log.h"
#include "report.h"
#include "spf.h"
#include "util.h"

#define REPORT_STORES_MAX	4	/* specs in use at once (reloads) */

struct report_store {
	char *spec;			/* owns */
	unsigned refs;			/* under store_lock */
	const struct rep_store_ops *ops;	/* borrows (static) */
	void *h;			/* owns, through ops->close */
	pthread_mutex_t qlock;		/* guards the fields below */
	pthread_cond_t qcond;		/* rows queued, or stop */
	pthread_cond_t idle;		/* queue empty and nothing writing */
	struct report_row **q;		/* owns the ring and its rows */
	size_t qhead, qlen;
	bool writing, stop, has_writer;
	pthread_t tid;
};

static pthread_mutex_t store_lock = PTHREAD_MUTEX_INITIALIZER;
static struct report_store *stores[REPORT_STORES_MAX];

static _Atomic uint64_t n_queued, n_written, n_dropped, n_skipped;
static _Atomic uint64_t last_log_ms, unlogged;
static _Atomic uint64_t id_counter;
static uint64_t id_nonce;
static pthread_once_t nonce_once = PTHREAD_ONCE_INIT;

/* Logs a lost row, or counts it when a line went out recently: an
 * outage under load must not flood syslog. */
static void
lost_log(const char *spec, const char *what, uint64_t rows)
{
	uint64_t now = clock_ms(), last = atomic_load(&last_log_ms);
	unsigned long long n;

	atomic_fetch_add(&n_dropped, rows);
	if ((last != 0 && now - last < REPORT_LOG_INTERVAL_MS) ||
	    !atomic_compare_exchange_strong(&last_log_ms, &last, now)) {
		atomic_fetch_add(&unlogged, rows);
		return;
	}
	n = atomic_exchange(&unlogged, 0);
	if (n == 0)
		log_err("report store %s: %s: %llu DMARC report rows lost",
		    spec, what, (unsigned long long)rows);
	else
		log_err("report store %s: %s: %llu DMARC report rows lost "
		    "(and %llu more since the last line)", spec, what,
		    (unsigned long long)rows, n);
}

void
report_counters(struct report_counters *c)
{
	c->queued = atomic_load(&n_queued);
	c->written = atomic_load(&n_written);
	c->dropped = atomic_load(&n_dropped);
	c->skipped = atomic_load(&n_skipped);
}

static void
nonce_init(void)
{
	uint32_t r = 0;

	/* rows of several hosts may share one Redis set: the id must not
	 * collide across processes, the counter keeps it unique inside */
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = (uint32_t)time(NULL) ^ (uint32_t)clock_ms();
	id_nonce = (uint64_t)r << 32;
}

static uint64_t
next_id(void)
{
	pthread_once(&nonce_once, nonce_init);
	return id_nonce | (atomic_fetch_add(&id_counter, 1) & 0xffffffffu);
}

size_t
report_key(uint64_t t, uint64_t id, char *dst)
{
	int n = snprintf(dst, REPORT_KEY_MAX + 1, "r:%010llu:%016llx",
	    (unsigned long long)t, (unsigned long long)id);

	return n > 0 ? (size_t)n : 0;
}

/* ------------------------------------------------------------------ */
/* The writer                                                         */
/* ------------------------------------------------------------------ */

static void *
writer_main(void *arg)
{
	struct report_store *st = arg;
	struct report_row **rows = xcalloc(REPORT_BATCH_MAX, sizeof(*rows));
	struct rep_kv *kv = xcalloc(REPORT_BATCH_MAX, sizeof(*kv));
	struct buf *vals = xcalloc(REPORT_BATCH_MAX, sizeof(*vals));
	char (*keys)[REPORT_KEY_MAX + 1] = xcalloc(REPORT_BATCH_MAX,
	    sizeof(*keys));
	size_t i, n, good;

	for (i = 0; i < REPORT_BATCH_MAX; i++)
		buf_init(&vals[i], REPORT_VALUE_MAX);
	pthread_mutex_lock(&st->qlock);
	for (;;) {
		while (st->qlen == 0 && !st->stop)
			pthread_cond_wait(&st->qcond, &st->qlock);
		if (st->qlen == 0)
			break;		/* stopping, and all written */
		for (n = 0; n < REPORT_BATCH_MAX && st->qlen > 0; n++) {
			rows[n] = st->q[st->qhead];
			st->q[st->qhead] = NULL;
			st->qhead = (st->qhead + 1) % REPORT_QUEUE_MAX;
			st->qlen--;
		}
		st->writing = true;
		pthread_mutex_unlock(&st->qlock);

		for (i = good = 0; i < n; i++) {
			if (rrow_encode(rows[i], &vals[good]) != 0) {
				lost_log(st->spec, "row too large", 1);
				continue;
			}
			kv[good].time = rows[i]->time;
			kv[good].klen = report_key(rows[i]->time,
			    rows[i]->id, keys[good]);
			kv[good].key = keys[good];
			kv[good].val = vals[good].p;
			kv[good].vlen = vals[good].len;
			good++;
		}
		if (good > 0) {
			if (st->ops->put(st->h, kv, good) == 0)
				atomic_fetch_add(&n_written, good);
			else
				lost_log(st->spec, "write failed", good);
		}
		for (i = 0; i < n; i++)
			free(rows[i]);

		pthread_mutex_lock(&st->qlock);
		st->writing = false;
		if (st->qlen == 0)
			pthread_cond_broadcast(&st->idle);
	}
	st->writing = false;
	pthread_cond_broadcast(&st->idle);
	pthread_mutex_unlock(&st->qlock);
	for (i = 0; i < REPORT_BATCH_MAX; i++)
		buf_free(&vals[i]);
	free(vals);
	free(keys);
	free(kv);
	free(rows);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Opening and sharing                                                */
/* ------------------------------------------------------------------ */

static struct report_store *
store_open(const char *spec, char *err, size_t errlen)
{
	const struct rep_store_ops *ops;
	struct report_store *st;
	void *h;

	if (strncmp(spec, "lmdb:", 5) == 0) {
		ops = &rep_lmdb_ops;
		h = rep_lmdb_open(spec + 5, err, errlen);
	} else if (strncmp(spec, "redis://", 8) == 0) {
		ops = &rep_redis_ops;
		h = rep_redis_open(spec, err, errlen);
	} else {
		snprintf(err, errlen, "report store '%s': expected lmdb:DIR "
		    "or redis://HOST:PORT/DB or redis:///SOCKET?db=N", spec);
		return NULL;
	}
	if (h == NULL)
		return NULL;
	st = xcalloc(1, sizeof(*st));
	st->spec = xstrdup(spec);
	st->ops = ops;
	st->h = h;
	st->q = xcalloc(REPORT_QUEUE_MAX, sizeof(*st->q));
	pthread_mutex_init(&st->qlock, NULL);
	pthread_cond_init(&st->qcond, NULL);
	pthread_cond_init(&st->idle, NULL);
	return st;
}

static void
store_close(struct report_store *st)
{
	size_t i;

	if (st->has_writer) {
		pthread_mutex_lock(&st->qlock);
		st->stop = true;
		pthread_cond_signal(&st->qcond);
		pthread_mutex_unlock(&st->qlock);
		pthread_join(st->tid, NULL);
	}
	for (i = 0; i < REPORT_QUEUE_MAX; i++)
		free(st->q[i]);
	st->ops->close(st->h);
	pthread_cond_destroy(&st->idle);
	pthread_cond_destroy(&st->qcond);
	pthread_mutex_destroy(&st->qlock);
	free(st->q);
	free(st->spec);
	free(st);
}

struct report_store *
report_store_acquire(const char *spec, bool writer, char *err,
    size_t errlen)
{
	struct report_store *st = NULL;
	size_t i, slot = REPORT_STORES_MAX;

	pthread_mutex_lock(&store_lock);
	for (i = 0; i < REPORT_STORES_MAX; i++) {
		if (stores[i] != NULL && strcmp(stores[i]->spec, spec) == 0) {
			st = stores[i];
			break;
		}
		if (stores[i] == NULL && slot == REPORT_STORES_MAX)
			slot = i;
	}
	if (st == NULL) {
		if (slot == REPORT_STORES_MAX)
			snprintf(err, errlen, "too many report stores in use");
		else if ((st = store_open(spec, err, errlen)) != NULL)
			stores[slot] = st;
	}
	if (st != NULL && writer && !st->has_writer) {
		if (pthread_create(&st->tid, NULL, writer_main, st) != 0) {
			snprintf(err, errlen, "report store %s: cannot start "
			    "the writer thread", spec);
			if (st->refs == 0) {
				for (i = 0; i < REPORT_STORES_MAX; i++)
					if (stores[i] == st)
						stores[i] = NULL;
				store_close(st);
			}
			st = NULL;
		} else {
			pthread_mutex_lock(&st->qlock);
			st->has_writer = true;
			pthread_mutex_unlock(&st->qlock);
		}
	}
	if (st != NULL)
		st->refs++;
	pthread_mutex_unlock(&store_lock);
	return st;
}

void
report_store_release(struct report_store *st)
{
	size_t i;
	bool last = false;

	if (st == NULL)
		return;
	pthread_mutex_lock(&store_lock);
	if (--st->refs == 0) {
		for (i = 0; i < REPORT_STORES_MAX; i++)
			if (stores[i] == st)
				stores[i] = NULL;
		last = true;
	}
	pthread_mutex_unlock(&store_lock);
	/* outside the table lock: the last rows are written now */
	if (last)
		store_close(st);
}

const struct rep_store_ops *
report_store_ops(struct report_store *st, void **h)
{
	*h = st->h;
	return st->ops;
}

void
report_store_flush(struct report_store *st)
{
	pthread_mutex_lock(&st->qlock);
	while (st->has_writer && (st->qlen > 0 || st->writing))
		pthread_cond_wait(&st->idle, &st->qlock);
	pthread_mutex_unlock(&st->qlock);
}

/* ------------------------------------------------------------------ */
/* Rows                                                               */
/* ------------------------------------------------------------------ */

/* Copies src when it fits; -1 (dst "") when not. */
static int
cp(char *dst, size_t size, const char *src)
{
	size_t n = src != NULL ? strlen(src) : 0;

	dst[0] = '\0';
	if (n >= size)
		return -1;
	if (n > 0)
		memcpy(dst, src, n + 1);
	return 0;
}

/* The same for text from the envelope or a signature: a value that does
 * not fit stays empty rather than cut; control characters, which no
 * domain has and XML cannot carry, become '?'. */
static void
cp_hostile(char *dst, size_t size, const char *src)
{
	char *p;

	if (cp(dst, size, src) != 0)
		return;
	for (p = dst; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
			*p = '?';
}

static bool
ip_ok(const char *ip)
{
	size_t n = ip != NULL ? strlen(ip) : 0;

	if (n == 0 || n > REPORT_IP_MAX)
		return false;
	return strspn(ip, "0123456789abcdefABCDEF.:") == n;
}

/* RFC 9990 "DKIM Signatures in Aggregate Reports": passing signatures
 * strictly aligned with the From domain first, then relaxed aligned,
 * then other passes, then the rest.  Relaxed alignment is judged here by
 * the Organizational Domain suffix only: this orders, it decides
 * nothing. */
static int
dkim_rank(const struct dkimv_sig *s, const struct dmarc_outcome *o)
{
	size_t dl = strlen(s->domain), ol = strlen(o->org_domain);

	if (strcmp(s->result, "pass") != 0)
		return 3;
	if (str_ieq(s->domain, o->header_from))
		return 0;
	if (ol > 0 && (str_ieq(s->domain, o->org_domain) ||
	    (dl > ol && s->domain[dl - ol - 1] == '.' &&
	    str_ieq(s->domain + dl - ol, o->org_domain))))
		return 1;
	return 2;
}

static void
add_reason(struct report_row *r, const char *why)
{
	if (r->nreason < REPORT_REASON_MAX)
		cp(r->reason[r->nreason++], sizeof(r->reason[0]), why);
}

int
report_row_build(const struct report_msg *m, uint64_t now,
    struct report_row *r)
{
	const struct dmarc_outcome *o = m->dmarc;
	const char *actual, *spf_dom;
	size_t i;
	int rank;

	memset(r, 0, sizeof(*r));
	if (o == NULL || m->spf == NULL)
		return 1;
	/* a Policy Domain to report to, and a result about its policy */
	if (o->policy_domain[0] == '\0' || (o->result != DMARC_R_PASS &&
	    o->result != DMARC_R_FAIL))
		return 1;
	switch (m->action) {
	case POL_ACT_REJECT:
		actual = "reject";
		break;
	case POL_ACT_QUARANTINE:
		actual = "quarantine";
		break;
	case POL_ACT_ACCEPT:
	case POL_ACT_STRIP:
		actual = "none";
		break;
	default:
		return 1;	/* tempfail: it will come again */
	}
	if (!ip_ok(m->client_ip))
		return 1;
	r->time = now;
	if (cp(r->ip, sizeof(r->ip), m->client_ip) != 0 ||
	    cp(r->header_from, sizeof(r->header_from), o->header_from) != 0 ||
	    cp(r->policy_domain, sizeof(r->policy_domain),
	    o->policy_domain) != 0 || !rrow_domain_ok(r->policy_domain))
		return -1;
	if (m->mail_from != NULL && m->mail_from[0] != '\0')
		cp_hostile(r->envelope_from, sizeof(r->envelope_from),
		    m->mail_from_domain);
	if (m->rcpt_domain != NULL)
		cp_hostile(r->envelope_to, sizeof(r->envelope_to),
		    m->rcpt_domain);
	/* RFC 7208 2.4: a null sender is checked as postmaster@HELO */
	spf_dom = m->mail_from != NULL && m->mail_from[0] != '\0' ?
	    m->mail_from_domain : m->helo;
	cp_hostile(r->spf_domain, sizeof(r->spf_domain), spf_dom);
	cp(r->spf_result, sizeof(r->spf_result),
	    spf_result_name(m->spf->result));
	if (m->dkim != NULL) {
		for (rank = 0; rank <= 3; rank++)
			for (i = 0; i < m->dkim->nsigs && i < DKIMV_SIG_MAX &&
			    r->ndkim < REPORT_DKIM_MAX; i++) {
				const struct dkimv_sig *s = &m->dkim->sigs[i];
				struct report_dkim *d = &r->dkim[r->ndkim];

				if (dkim_rank(s, o) != rank)
					continue;
				cp_hostile(d->domain, sizeof(d->domain),
				    s->domain);
				cp_hostile(d->selector, sizeof(d->selector),
				    s->selector);
				if (cp(d->result, sizeof(d->result),
				    s->result) == 0 && d->result[0] != '\0')
					r->ndkim++;
			}
	}
	cp(r->dmarc_result, sizeof(r->dmarc_result),
	    dmarc_result_name(o->result));
	r->dkim_aligned = o->dkim_aligned;
	r->spf_aligned = o->spf_aligned;

	/*
	 * The disposition is what was done to the message (RFC 9990:
	 * counts include messages other filters blocked).  "pass" is a
	 * DMARC pass under a policy that would have acted (the schema's
	 * ActionDispositionType).  When it is not what the policy asked,
	 * the reason says why: t=y stepped the policy down
	 * (policy_test_mode), or the administrator's rules decided
	 * otherwise (local_policy).
	 */
	if (o->result == DMARC_R_PASS) {
		if (strcmp(actual, "none") != 0) {
			cp(r->disposition, sizeof(r->disposition), actual);
			add_reason(r, "local_policy");
		} else
			cp(r->disposition, sizeof(r->disposition),
			    o->policy != DMARC_P_NONE ? "pass" : "none");
	} else {
		cp(r->disposition, sizeof(r->disposition), actual);
		if (o->testing && o->policy != o->policy_untested)
			add_reason(r, "policy_test_mode");
		if (strcmp(actual, dmarc_policy_name(o->policy)) != 0)
			add_reason(r, "local_policy");
	}

	cp(r->p, sizeof(r->p), o->p);
	cp(r->sp, sizeof(r->sp), o->sp);
	cp(r->np, sizeof(r->np), o->np);
	r->adkim = o->adkim_strict ? 's' : 'r';
	r->aspf = o->aspf_strict ? 's' : 'r';
	r->testing = o->testing ? 'y' : 'n';
	cp(r->fo, sizeof(r->fo), o->fo);
	cp_hostile(r->rua, sizeof(r->rua), o->rua);
	return 0;
}

void
report_record(struct report_store *st, const struct report_msg *m)
{
	struct report_row *r;
	int rc;

	if (st == NULL || m == NULL)
		return;
	r = xmalloc(sizeof(*r));
	rc = report_row_build(m, (uint64_t)time(NULL), r);
	if (rc != 0) {
		free(r);
		atomic_fetch_add(&n_skipped, 1);
		return;
	}
	r->id = next_id();
	pthread_mutex_lock(&st->qlock);
	if (!st->has_writer || st->qlen >= REPORT_QUEUE_MAX) {
		pthread_mutex_unlock(&st->qlock);
		free(r);
		lost_log(st->spec, st->has_writer ? "queue full" :
		    "not open for writing", 1);
		return;
	}
	st->q[(st->qhead + st->qlen) % REPORT_QUEUE_MAX] = r;
	st->qlen++;
	pthread_cond_signal(&st->qcond);
	pthread_mutex_unlock(&st->qlock);
	atomic_fetch_add(&n_queued, 1);
}
