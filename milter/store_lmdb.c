/*
 * store_lmdb.c - the embedded stores on LMDB: the greylist store (the
 * default): one environment in a directory, one unnamed database of
 * triplet and identity records (store.h), each check one write
 * transaction; and the DMARC report rows (report.h), in an environment
 * of their own (config report_store), keyed "r:" TIME ":" ID so that a
 * time range is one cursor walk.  Crash safe: the MDB defaults
 * (synchronous commits, no MDB_NOSYNC), so a restart keeps the state.
 * The only file that includes <lmdb.h>.
 * Owns: per store the MDB_env; the greylist sweep position.  Locks:
 * LMDB's writer lock (process-shared; one write transaction at a time),
 * nothing of ours: the sweep position is only touched inside a write
 * transaction, the time of the last sweep is an atomic.
 * Limits: map size (spec "?mapsize=", GREY_LMDB_MAPSIZE_DEFAULT); keys <=
 * GREY_KEY_MAX; a sweep examines <= GREY_SWEEP_MAX records a transaction
 * of its own, never the check's, so that no transaction holds the writer
 * lock for long and a message's answer never waits on a sweep's result.
 * Errors: -1 with a log line; MDB_MAP_FULL gets one sweep and one retry.
 *
 * Value format (GREY_LMDB_VALUE_LEN bytes, big-endian):
 *   0 version (1)  1 flags (1 passed, 2 manual)  2-3 zero  4-7 count
 *   8 first_seen  16 last_seen  24 last_pass  32 expires_at (u64 each)
 * A value of another size or version reads as absent and is overwritten:
 * a future format never crashes an old binary, it only forgets.
 */
#include "autoconfig.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

#include "log.h"
#include "report.h"
#include "store.h"
#include "util.h"

#define GREY_LMDB_VERSION	1
#define GREY_LMDB_VALUE_LEN	40
#define GREY_LMDB_F_PASSED	0x1
#define GREY_LMDB_F_MANUAL	0x2

struct lmdb_store {
	MDB_env *env;		/* owns */
	MDB_dbi dbi;
	char *dir;		/* owns */
	/* `now` of the last opportunistic step; claimed atomically by the
	 * check that runs the next one. */
	_Atomic uint64_t last_sweep;
	/* Sweep position: only used inside a write transaction, which LMDB
	 * serialises, so it needs no lock of its own. */
	char resume[GREY_KEY_MAX + 1];
	size_t resume_len;	/* 0: start at the first key */
};

static void
put64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static uint64_t
get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void
rec_encode(const struct grey_rec *r, unsigned char *v)
{
	memset(v, 0, GREY_LMDB_VALUE_LEN);
	v[0] = GREY_LMDB_VERSION;
	v[1] = (unsigned char)((r->passed ? GREY_LMDB_F_PASSED : 0) |
	    (r->manual ? GREY_LMDB_F_MANUAL : 0));
	v[4] = (unsigned char)(r->count >> 24);
	v[5] = (unsigned char)(r->count >> 16);
	v[6] = (unsigned char)(r->count >> 8);
	v[7] = (unsigned char)r->count;
	put64(v + 8, r->first_seen);
	put64(v + 16, r->last_seen);
	put64(v + 24, r->last_pass);
	put64(v + 32, r->expires_at);
}

static void
rec_decode(const MDB_val *d, struct grey_rec *r)
{
	const unsigned char *v = d->mv_data;

	memset(r, 0, sizeof(*r));
	if (d->mv_size != GREY_LMDB_VALUE_LEN || v[0] != GREY_LMDB_VERSION)
		return;
	r->present = true;
	r->passed = (v[1] & GREY_LMDB_F_PASSED) != 0;
	r->manual = (v[1] & GREY_LMDB_F_MANUAL) != 0;
	r->count = (uint32_t)v[4] << 24 | (uint32_t)v[5] << 16 |
	    (uint32_t)v[6] << 8 | v[7];
	r->first_seen = get64(v + 8);
	r->last_seen = get64(v + 16);
	r->last_pass = get64(v + 24);
	r->expires_at = get64(v + 32);
}

/* mkdir -p with mode 0750 for what is missing.  what names the store in
 * messages. */
static int
mkdir_p(const char *what, const char *dir, char *err, size_t errlen)
{
	char *p = xstrdup(dir), *s;
	struct stat st;

	for (s = p + 1; ; s++) {
		char c = *s;

		if (c != '/' && c != '\0')
			continue;
		*s = '\0';
		if (mkdir(p, 0750) != 0 && errno != EEXIST) {
			snprintf(err, errlen, "%s %s: mkdir %s: %s", what,
			    dir, p, strerror(errno));
			free(p);
			return -1;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s %s: not a directory", what, dir);
		return -1;
	}
	return 0;
}

/* "256M", "1G", "65536" -> bytes. */
static int
parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K':
		v = v > ULLONG_MAX / 1024 ? 0 : v * 1024;
		end++;
		break;
	case 'm': case 'M':
		v = v > ULLONG_MAX / (1024 * 1024) ? 0 : v * 1024 * 1024;
		end++;
		break;
	case 'g': case 'G':
		v = v > ULLONG_MAX / (1024 * 1024 * 1024) ? 0 :
		    v * 1024 * 1024 * 1024;
		end++;
		break;
	}
	if (*end != '\0' || v == 0 || v > SIZE_MAX)
		return -1;
	*out = (size_t)v;
	return 0;
}

/*
 * Creates dir when missing and opens the environment in it with its
 * unnamed database.  0, or -1 with a message (what names the store);
 * *env is then closed and NULL.
 */
static int
env_open(const char *what, const char *dir, size_t mapsize, MDB_env **env,
    MDB_dbi *dbi, char *err, size_t errlen)
{
	MDB_txn *txn;
	int rc, dead;

	*env = NULL;
	if (mkdir_p(what, dir, err, errlen) != 0)
		return -1;
	if ((rc = mdb_env_create(env)) != 0 ||
	    (rc = mdb_env_set_mapsize(*env, mapsize)) != 0 ||
	    (rc = mdb_env_set_maxreaders(*env, 512)) != 0 ||
	    /* MDB_NOTLS: libmilter may run one connection's callbacks on
	     * several threads; transactions are never tied to a thread. */
	    (rc = mdb_env_open(*env, dir, MDB_NOTLS, 0640)) != 0)
		goto fail;
	/* Readers left by a killed process would pin old pages forever. */
	(void)mdb_reader_check(*env, &dead);
	if ((rc = mdb_txn_begin(*env, NULL, 0, &txn)) != 0)
		goto fail;
	if ((rc = mdb_dbi_open(txn, NULL, 0, dbi)) != 0 ||
	    (rc = mdb_txn_commit(txn)) != 0) {
		if (rc != 0)
			mdb_txn_abort(txn);
		goto fail;
	}
	return 0;
fail:
	snprintf(err, errlen, "%s lmdb:%s: %s", what, dir, mdb_strerror(rc));
	if (*env != NULL)
		mdb_env_close(*env);
	*env = NULL;
	return -1;
}

void *
grey_lmdb_open(const char *spec, char *err, size_t errlen)
{
	struct lmdb_store *st;
	size_t mapsize = GREY_LMDB_MAPSIZE_DEFAULT;
	const char *q = strchr(spec, '?');

	if (q != NULL && (strncmp(q, "?mapsize=", 9) != 0 ||
	    parse_size(q + 9, &mapsize) != 0)) {
		snprintf(err, errlen, "greylist store lmdb:%s: bad option "
		    "(expected ?mapsize=BYTES[k|M|G])", spec);
		return NULL;
	}
	st = xcalloc(1, sizeof(*st));
	st->dir = q != NULL ? xstrndup(spec, (size_t)(q - spec)) :
	    xstrdup(spec);
	if (st->dir[0] == '\0') {
		snprintf(err, errlen, "greylist store lmdb: no directory");
		goto fail;
	}
	if (env_open("greylist store", st->dir, mapsize, &st->env, &st->dbi,
	    err, errlen) != 0)
		goto fail;
	return st;
fail:
	if (st->env != NULL)
		mdb_env_close(st->env);
	free(st->dir);
	free(st);
	return NULL;
}

static void
lmdb_close(void *h)
{
	struct lmdb_store *st = h;

	if (st == NULL)
		return;
	mdb_env_close(st->env);
	free(st->dir);
	free(st);
}

/*
 * One sweep step inside txn: examines at most max records from the
 * remembered position, deletes those whose expires_at < now.  *done is
 * set when the end of the database was reached (the position wraps).
 */
static int
sweep_step(struct lmdb_store *st, MDB_txn *txn, uint64_t now, size_t max,
    size_t *deleted, bool *done)
{
	MDB_cursor *cur;
	MDB_val k, v;
	size_t seen = 0;
	int rc;

	*done = false;
	if ((rc = mdb_cursor_open(txn, st->dbi, &cur)) != 0)
		return rc;
	if (st->resume_len > 0) {
		k.mv_data = st->resume;
		k.mv_size = st->resume_len;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	} else
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (rc == 0 && seen < max) {
		struct grey_rec r;

		seen++;
		rec_decode(&v, &r);
		/* Undecodable values are garbage of another version. */
		if (!r.present || r.expires_at < now) {
			if ((rc = mdb_cursor_del(cur, 0)) != 0)
				break;
			(*deleted)++;
		}
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc == MDB_NOTFOUND) {
		st->resume_len = 0;
		*done = true;
		rc = 0;
	} else if (rc == 0) {
		/* Stopped at max: k is the first key not yet examined. */
		if (k.mv_size <= GREY_KEY_MAX) {
			memcpy(st->resume, k.mv_data, k.mv_size);
			st->resume_len = k.mv_size;
		} else
			st->resume_len = 0;
	}
	mdb_cursor_close(cur);
	return rc;
}

static int
get_rec(MDB_txn *txn, MDB_dbi dbi, const char *key, size_t len,
    struct grey_rec *r)
{
	MDB_val k = { len, (void *)(uintptr_t)key }, v;
	int rc;

	memset(r, 0, sizeof(*r));
	if ((rc = mdb_get(txn, dbi, &k, &v)) == 0)
		rec_decode(&v, r);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int
put_rec(MDB_txn *txn, MDB_dbi dbi, const char *key, size_t len,
    const struct grey_rec *r)
{
	unsigned char buf[GREY_LMDB_VALUE_LEN];
	MDB_val k = { len, (void *)(uintptr_t)key }, v = { sizeof(buf), buf };

	rec_encode(r, buf);
	return mdb_put(txn, dbi, &k, &v, 0);
}

/* Sweeps one step in its own transaction; the number deleted in *n.
 * restart: from the first key rather than the remembered position (set
 * inside the transaction, where the position may be touched). */
static int
sweep_txn(struct lmdb_store *st, uint64_t now, size_t max, bool restart,
    size_t *n, bool *done)
{
	MDB_txn *txn;
	int rc;

	if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0)
		return rc;
	if (restart)
		st->resume_len = 0;
	if ((rc = sweep_step(st, txn, now, max, n, done)) != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_txn_commit(txn);
}

/*
 * Whether this check should run a sweep step: at most one every
 * GREY_SWEEP_INTERVAL seconds of `now`, claimed by one thread (a clock
 * stepping back restarts the interval).
 */
static bool
sweep_due(struct lmdb_store *st, uint64_t now)
{
	uint64_t last = atomic_load(&st->last_sweep);

	if (now >= last && now - last < GREY_SWEEP_INTERVAL)
		return false;
	return atomic_compare_exchange_strong(&st->last_sweep, &last, now);
}

static int
lmdb_check(void *h, const struct greylist_params *p, const char *tkey,
    size_t tlen, const char *ikey, size_t ilen, uint64_t now,
    enum greylist_state *out)
{
	struct lmdb_store *st = h;
	int rc = 0;
	size_t n = 0;
	bool done;

	/*
	 * Most checks are of allowed triplets that grey_decide() leaves
	 * unchanged: decide in a read-only transaction first (no writer
	 * lock, no commit, no fdatasync), and only when something must be
	 * written decide again in a write transaction, on what is stored
	 * then (another thread may have written in between).
	 */
	{
		struct grey_rec t, id;
		MDB_txn *txn;
		unsigned w = 1;

		if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) == 0) {
			if (get_rec(txn, st->dbi, tkey, tlen, &t) == 0 &&
			    get_rec(txn, st->dbi, ikey, ilen, &id) == 0)
				w = grey_decide(p, now, &t, &id, out);
			mdb_txn_abort(txn);
		}
		if (w == 0)
			goto sweep;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		struct grey_rec t, id;
		MDB_txn *txn;
		unsigned w;

		if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0)
			break;
		if ((rc = get_rec(txn, st->dbi, tkey, tlen, &t)) == 0 &&
		    (rc = get_rec(txn, st->dbi, ikey, ilen, &id)) == 0) {
			w = grey_decide(p, now, &t, &id, out);
			if ((w & GREY_WRITE_TRIPLET) != 0)
				rc = put_rec(txn, st->dbi, tkey, tlen, &t);
			if (rc == 0 && (w & GREY_WRITE_IDENTITY) != 0)
				rc = put_rec(txn, st->dbi, ikey, ilen, &id);
		}
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
		if (rc != MDB_MAP_FULL || attempt > 0)
			break;
		/* Full: one sweep from the start of the database; retry
		 * only when it freed something. */
		n = 0;
		if (sweep_txn(st, now, GREY_SWEEP_MAX, true, &n, &done) != 0 ||
		    n == 0)
			break;
		log_warn("greylist store lmdb:%s: map full, swept %zu "
		    "expired records", st->dir, n);
	}
	if (rc != 0) {
		log_err("greylist store lmdb:%s: %s%s", st->dir,
		    mdb_strerror(rc), rc == MDB_MAP_FULL ?
		    " (raise ?mapsize= in greylist_store)" : "");
		return -1;
	}
	/*
	 * Expired records go a batch at a time, after the check committed
	 * and in a write transaction of their own: the message's answer
	 * never depends on the sweep, and no transaction holds the writer
	 * lock for more than GREY_SWEEP_MAX records.  A failed step only
	 * costs a log line; the next one retries.
	 */
sweep:
	if (sweep_due(st, now)) {
		n = 0;
		if ((rc = sweep_txn(st, now, GREY_SWEEP_MAX, false, &n,
		    &done)) != 0)
			log_warn("greylist store lmdb:%s: sweep: %s", st->dir,
			    mdb_strerror(rc));
	}
	return 0;
}

static int
lmdb_put(void *h, const char *key, size_t len, const struct grey_rec *r,
    uint64_t now)
{
	struct lmdb_store *st = h;
	MDB_txn *txn;
	int rc;

	(void)now;
	if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0)
		goto fail;
	if ((rc = put_rec(txn, st->dbi, key, len, r)) != 0) {
		mdb_txn_abort(txn);
		goto fail;
	}
	if ((rc = mdb_txn_commit(txn)) == 0)
		return 0;
fail:
	log_err("greylist store lmdb:%s: %s", st->dir, mdb_strerror(rc));
	return -1;
}

static int
lmdb_del(void *h, const char *key, size_t len)
{
	struct lmdb_store *st = h;
	MDB_val k = { len, (void *)(uintptr_t)key };
	MDB_txn *txn;
	int rc, found;

	if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0)
		goto fail;
	rc = mdb_del(txn, st->dbi, &k, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		goto fail;
	}
	found = rc == 0;
	if ((rc = mdb_txn_commit(txn)) == 0)
		return found;
fail:
	log_err("greylist store lmdb:%s: %s", st->dir, mdb_strerror(rc));
	return -1;
}

/*
 * Walks the database in one read transaction.  Used by the CLI only: a
 * long read transaction does not block writers (MVCC), it only keeps the
 * pages it sees from being reused until it ends.
 */
static int
lmdb_list(void *h, grey_list_cb cb, void *arg)
{
	struct lmdb_store *st = h;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	char buf[GREY_KEY_MAX + 1];
	int rc, r = 0;

	if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) != 0)
		goto fail;
	if ((rc = mdb_cursor_open(txn, st->dbi, &cur)) != 0) {
		mdb_txn_abort(txn);
		goto fail;
	}
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (rc == 0 && r == 0) {
		struct grey_entry e;

		if (grey_key_split(k.mv_data, k.mv_size, &e, buf,
		    sizeof(buf)) == 0) {
			rec_decode(&v, &e.rec);
			if (e.rec.present)
				r = cb(&e, arg);
		}
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (rc != 0 && rc != MDB_NOTFOUND)
		goto fail;
	return r;
fail:
	log_err("greylist store lmdb:%s: %s", st->dir, mdb_strerror(rc));
	return -1;
}

static int
count_cb(const struct grey_entry *e, void *arg)
{
	struct grey_stats *s = arg;

	if (e->sender == NULL) {
		s->identities++;
		if (e->rec.manual)
			s->manual++;
	} else if (e->rec.passed)
		s->passed++;
	else
		s->pending++;
	return 0;
}

static int
lmdb_stats(void *h, struct grey_stats *s)
{
	struct lmdb_store *st = h;
	MDB_envinfo info;
	MDB_stat ms;
	int rc;

	memset(s, 0, sizeof(*s));
	if ((rc = mdb_env_info(st->env, &info)) != 0 ||
	    (rc = mdb_env_stat(st->env, &ms)) != 0) {
		log_err("greylist store lmdb:%s: %s", st->dir,
		    mdb_strerror(rc));
		return -1;
	}
	/* Pages in use up to the high-water mark: what the file holds. */
	s->bytes = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
	s->capacity = info.me_mapsize;
	s->txnid = info.me_last_txnid;
	return lmdb_list(h, count_cb, s) < 0 ? -1 : 0;
}

static int
lmdb_sweep(void *h, uint64_t now, size_t max, size_t *n)
{
	struct lmdb_store *st = h;
	bool done = false;
	int rc;

	*n = 0;
	if (max > 0) {
		rc = sweep_txn(st, now, max, false, n, &done);
	} else {
		/* Everything, but in steps: mail keeps flowing meanwhile. */
		bool first = true;

		do {
			rc = sweep_txn(st, now, GREY_SWEEP_MAX, first, n,
			    &done);
			first = false;
		} while (rc == 0 && !done);
	}
	if (rc != 0) {
		log_err("greylist store lmdb:%s: sweep: %s", st->dir,
		    mdb_strerror(rc));
		return -1;
	}
	return 0;
}

const struct grey_store_ops grey_lmdb_ops = {
	.name = "lmdb",
	.check = lmdb_check,
	.put = lmdb_put,
	.del = lmdb_del,
	.list = lmdb_list,
	.stats = lmdb_stats,
	.sweep = lmdb_sweep,
	.close = lmdb_close,
};

/* ------------------------------------------------------------------ */
/* DMARC report rows (report.h)                                       */
/* ------------------------------------------------------------------ */

struct rep_lmdb {
	MDB_env *env;		/* owns */
	MDB_dbi dbi;
	char *dir;		/* owns */
};

void *
rep_lmdb_open(const char *spec, char *err, size_t errlen)
{
	struct rep_lmdb *st;
	size_t mapsize = REPORT_LMDB_MAPSIZE_DEFAULT;
	const char *q = strchr(spec, '?');

	if (q != NULL && (strncmp(q, "?mapsize=", 9) != 0 ||
	    parse_size(q + 9, &mapsize) != 0)) {
		snprintf(err, errlen, "report store lmdb:%s: bad option "
		    "(expected ?mapsize=BYTES[k|M|G])", spec);
		return NULL;
	}
	st = xcalloc(1, sizeof(*st));
	st->dir = q != NULL ? xstrndup(spec, (size_t)(q - spec)) :
	    xstrdup(spec);
	if (st->dir[0] == '\0') {
		snprintf(err, errlen, "report store lmdb: no directory");
		goto fail;
	}
	if (env_open("report store", st->dir, mapsize, &st->env, &st->dbi,
	    err, errlen) != 0)
		goto fail;
	return st;
fail:
	free(st->dir);
	free(st);
	return NULL;
}

static void
rep_lmdb_close(void *h)
{
	struct rep_lmdb *st = h;

	if (st == NULL)
		return;
	mdb_env_close(st->env);
	free(st->dir);
	free(st);
}

static int
rep_lmdb_put(void *h, const struct rep_kv *kv, size_t n)
{
	struct rep_lmdb *st = h;
	MDB_txn *txn;
	size_t i;
	int rc;

	if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0)
		goto fail;
	for (i = 0; i < n; i++) {
		MDB_val k = { kv[i].klen, (void *)(uintptr_t)kv[i].key };
		MDB_val v = { kv[i].vlen, (void *)(uintptr_t)kv[i].val };

		if ((rc = mdb_put(txn, st->dbi, &k, &v, 0)) != 0) {
			mdb_txn_abort(txn);
			goto fail;
		}
	}
	if ((rc = mdb_txn_commit(txn)) == 0)
		return 0;
fail:
	log_err("report store lmdb:%s: %s%s", st->dir, mdb_strerror(rc),
	    rc == MDB_MAP_FULL ? " (expire reported rows with `portcullis "
	    "report dmarc --expire`, or raise ?mapsize= in report_store)" :
	    "");
	return -1;
}

/* The time of a row key "r:" 10 digits ":" 16 hex, or -1 for another
 * key (never written by us; skipped). */
static int
rep_key_time(const MDB_val *k, uint64_t *t)
{
	const char *p = k->mv_data;
	size_t i;

	if (k->mv_size != 2 + 10 + 1 + 16 || p[0] != 'r' || p[1] != ':' ||
	    p[12] != ':')
		return -1;
	*t = 0;
	for (i = 2; i < 12; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		*t = *t * 10 + (uint64_t)(p[i] - '0');
	}
	return 0;
}

/* Positions cur at the first row key of time >= since. */
static int
rep_seek(MDB_cursor *cur, uint64_t since, MDB_val *k, MDB_val *v)
{
	char start[REPORT_KEY_MAX + 1];
	int n = snprintf(start, sizeof(start), "r:%010llu",
	    (unsigned long long)(since > 9999999999ULL ? 9999999999ULL :
	    since));

	k->mv_data = start;
	k->mv_size = (size_t)n;
	return mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
}

/*
 * One read transaction for the whole range: the CLI's, and LMDB's MVCC
 * lets the writer go on meanwhile (the pages read stay pinned until the
 * scan ends).
 */
static int
rep_lmdb_scan(void *h, uint64_t since, uint64_t until, rep_scan_cb cb,
    void *arg)
{
	struct rep_lmdb *st = h;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	uint64_t t;
	int rc, r = 0;

	if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) != 0)
		goto fail;
	if ((rc = mdb_cursor_open(txn, st->dbi, &cur)) != 0) {
		mdb_txn_abort(txn);
		goto fail;
	}
	rc = rep_seek(cur, since, &k, &v);
	while (rc == 0 && r == 0) {
		if (k.mv_size < 2 || memcmp(k.mv_data, "r:", 2) != 0)
			break;		/* past the row keys */
		if (rep_key_time(&k, &t) == 0) {
			if (t >= until)
				break;
			if (t >= since)
				r = cb(t, v.mv_data, v.mv_size, arg);
		}
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (rc != 0 && rc != MDB_NOTFOUND)
		goto fail;
	return r;
fail:
	log_err("report store lmdb:%s: %s", st->dir, mdb_strerror(rc));
	return -1;
}

/* Deletes in steps of REPORT_EXPIRE_STEP rows a transaction, so that the
 * daemon's writer never waits long for the writer lock. */
static int
rep_lmdb_expire(void *h, uint64_t since, uint64_t until, uint64_t *n)
{
	struct rep_lmdb *st = h;
	int rc;

	*n = 0;
	for (;;) {
		MDB_txn *txn;
		MDB_cursor *cur;
		MDB_val k, v;
		uint64_t t;
		size_t step = 0;
		bool done = false;

		if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0)
			goto fail;
		if ((rc = mdb_cursor_open(txn, st->dbi, &cur)) != 0) {
			mdb_txn_abort(txn);
			goto fail;
		}
		rc = rep_seek(cur, since, &k, &v);
		while (rc == 0 && step < REPORT_EXPIRE_STEP) {
			if (k.mv_size < 2 || memcmp(k.mv_data, "r:", 2) != 0)
				break;
			if (rep_key_time(&k, &t) == 0) {
				if (t >= until)
					break;
				if ((rc = mdb_cursor_del(cur, 0)) != 0)
					break;
				step++;
			}
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		}
		if (rc == 0 || rc == MDB_NOTFOUND) {
			done = step < REPORT_EXPIRE_STEP;
			rc = 0;
		}
		mdb_cursor_close(cur);
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
		if (rc != 0)
			goto fail;
		*n += step;
		if (done)
			return 0;
	}
fail:
	log_err("report store lmdb:%s: expire: %s", st->dir,
	    mdb_strerror(rc));
	return -1;
}

const struct rep_store_ops rep_lmdb_ops = {
	.name = "lmdb",
	.put = rep_lmdb_put,
	.scan = rep_lmdb_scan,
	.expire = rep_lmdb_expire,
	.close = rep_lmdb_close,
};
