/*
 * store_redis.c - the shared stores on Redis (hiredis), for several MX
 * hosts.  DMARC report rows (report.h) are members of one sorted set,
 * REPORT_REDIS_KEY, scored by time: a row holds its unique id, so equal
 * rows stay distinct members, and a time range is one ZRANGEBYSCORE.
 * The greylist store: each check is one Lua script (EVALSHA, EVAL when the
 * server does not know it yet), so the read-modify-write of a triplet and
 * its identity counter is atomic across hosts.  The script transcribes
 * grey_decide() (greylist.c); the unit suite runs the same cases on both.
 * Keys are those of store.h, each a hash:
 *   f first_seen, l last_seen, p last_pass (0: never), s passed (0/1),
 *   c passes (identity), m manual allow (identity);
 * with a TTL of expire (passed triplets, identities) or window (pending
 * triplets), so Redis forgets without a sweep.  `now` comes from the
 * caller, not from Redis TIME: MX hosts must keep their clocks in sync.
 * The only file that includes hiredis.
 * Owns: a pool of idle connections and its mutex (held only to pop or
 * push one).  Each check takes a connection for itself, so threads never
 * share one.
 * Limits: GREY_REDIS_TIMEOUT_MS to connect and a command; at most
 * GREY_REDIS_POOL_MAX idle connections kept.
 * Errors: -1, quickly: a dead or slow server costs at most about one
 * timeout a check; the next check reconnects.  Failures are logged at most
 * once every GREY_REDIS_LOG_INTERVAL_MS with the number left unsaid, so
 * an outage under load does not flood syslog.  Not Redis
 * Cluster (the two keys of a check may live in different slots).
 */
#include "autoconfig.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis.h>
#include <openssl/evp.h>

#include "log.h"
#include "report.h"
#include "store.h"
#include "util.h"

/* KEYS[1] triplet, KEYS[2] identity; ARGV now delay window expire
 * autoallow.  Returns the enum greylist_state value.  Kept in step with
 * grey_decide(): same order of tests, same inclusive bounds, the same
 * refresh interval (grey_refresh_after()) for allowed records. */
#define LUA_NUM_(x)	#x
#define LUA_NUM(x)	LUA_NUM_(x)
static const char grey_lua[] =
"local now = tonumber(ARGV[1])\n"
"local delay, window = tonumber(ARGV[2]), tonumber(ARGV[3])\n"
"local expire, autoallow = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
"local function ttl(at)\n"
"  local d = at - now\n"
"  if d < 1 then d = 1 end\n"
"  return d\n"
"end\n"
"local refresh = math.min(math.floor(expire / " LUA_NUM(GREY_REFRESH_DIV)
    "), " LUA_NUM(GREY_REFRESH_MAX) ")\n"
"local t = redis.call('HMGET', KEYS[1], 'f', 'p', 's', 'l')\n"
"local i = redis.call('HMGET', KEYS[2], 'l', 'c', 'm')\n"
"local tf, tp, ts = tonumber(t[1]), tonumber(t[2]) or 0, tonumber(t[3])\n"
"local tl = tonumber(t[4]) or 0\n"
"local il, ic, im = tonumber(i[1]), tonumber(i[2]) or 0, tonumber(i[3])\n"
"local tpres, ipres = tf ~= nil, il ~= nil\n"
"if tpres then\n"
"  if ts == 1 then\n"
"    if now > tp + expire then tpres = false end\n"
"  elseif now > tf + window then tpres = false end\n"
"end\n"
"if ipres and now > il + expire then ipres = false end\n"
"local function refresh_identity()\n"
"  redis.call('HSET', KEYS[2], 'l', now)\n"
"  redis.call('EXPIRE', KEYS[2], ttl(now + expire))\n"
"end\n"
"if tpres and ts == 1 then\n"
"  if now >= tp + refresh then\n"
"    redis.call('HMSET', KEYS[1], 'l', now, 'p', now)\n"
"    redis.call('EXPIRE', KEYS[1], ttl(now + expire))\n"
"  end\n"
"  if ipres and now >= il + refresh then refresh_identity() end\n"
"  return 3\n"
"end\n"
"if ipres and (im == 1 or (autoallow > 0 and ic >= autoallow)) then\n"
"  if tpres and now >= tl + refresh then\n"
"    redis.call('HSET', KEYS[1], 'l', now)\n"
"  end\n"
"  if now >= il + refresh then refresh_identity() end\n"
"  return 3\n"
"end\n"
"if not tpres then\n"
"  redis.call('DEL', KEYS[1])\n"
"  redis.call('HMSET', KEYS[1], 'f', now, 'l', now, 'p', 0, 's', 0)\n"
"  redis.call('EXPIRE', KEYS[1], ttl(now + window))\n"
"  return 0\n"
"end\n"
"if now < tf + delay then\n"
"  redis.call('HSET', KEYS[1], 'l', now)\n"
"  return 1\n"
"end\n"
"redis.call('HMSET', KEYS[1], 'l', now, 'p', now, 's', 1)\n"
"redis.call('EXPIRE', KEYS[1], ttl(now + expire))\n"
"if not ipres then\n"
"  redis.call('DEL', KEYS[2])\n"
"  redis.call('HMSET', KEYS[2], 'f', now, 'c', 0, 'm', 0)\n"
"end\n"
"redis.call('HINCRBY', KEYS[2], 'c', 1)\n"
"refresh_identity()\n"
"return 2\n";

#define GREY_REDIS_LOG_INTERVAL_MS	10000

struct redis_store {
	const char *what;	/* "greylist store", "report store" */
	char *spec;		/* owns; for log lines */
	char *host;		/* owns; NULL for a unix socket */
	char *path;		/* owns; the unix socket or NULL */
	int port;
	unsigned db;
	char sha[41];		/* SHA-1 hex of grey_lua, for EVALSHA */
	pthread_mutex_t lock;	/* guards idle[], nidle */
	redisContext *idle[GREY_REDIS_POOL_MAX];	/* owns */
	size_t nidle;
	_Atomic uint64_t last_log_ms;	/* clock_ms() of the last line */
	_Atomic uint64_t unlogged;	/* errors since, not logged */
};

/* Logs one failure, or counts it when one was logged recently. */
static void
fail_log(struct redis_store *st, const char *what, const char *why)
{
	uint64_t now = clock_ms(), last = atomic_load(&st->last_log_ms);

	if ((last != 0 && now - last < GREY_REDIS_LOG_INTERVAL_MS) ||
	    !atomic_compare_exchange_strong(&st->last_log_ms, &last, now)) {
		atomic_fetch_add(&st->unlogged, 1);
		return;
	}
	{
		unsigned long long n = atomic_exchange(&st->unlogged, 0);

		if (n == 0)
			log_err("%s %s: %s: %s", st->what, st->spec, what,
			    why);
		else
			log_err("%s %s: %s: %s (and %llu errors not logged)",
			    st->what, st->spec, what, why, n);
	}
}

static int
parse_db(const char *s, unsigned *db)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (end == s || *end != '\0' || v > 65535)
		return -1;
	*db = (unsigned)v;
	return 0;
}

/* redis://HOST[:PORT][/DB], redis://[V6]:PORT/DB, redis:///SOCK[?db=N] */
static int
parse_spec(struct redis_store *st, const char *spec)
{
	const char *s = spec + 8, *e;

	st->port = 6379;
	if (*s == '/') {
		const char *q = strchr(s, '?');

		if (q != NULL && (strncmp(q, "?db=", 4) != 0 ||
		    parse_db(q + 4, &st->db) != 0))
			return -1;
		st->path = q != NULL ? xstrndup(s, (size_t)(q - s)) :
		    xstrdup(s);
		return st->path[1] == '\0' ? -1 : 0;
	}
	if (*s == '[') {
		if ((e = strchr(s, ']')) == NULL || e == s + 1)
			return -1;
		st->host = xstrndup(s + 1, (size_t)(e - s - 1));
		s = e + 1;
	} else {
		e = s + strcspn(s, ":/");
		if (e == s)
			return -1;
		st->host = xstrndup(s, (size_t)(e - s));
		s = e;
	}
	if (*s == ':') {
		char *end;
		long v = strtol(s + 1, &end, 10);

		if (end == s + 1 || v < 1 || v > 65535)
			return -1;
		st->port = (int)v;
		s = end;
	}
	if (*s == '/' && s[1] != '\0')
		return parse_db(s + 1, &st->db);
	return *s == '\0' || strcmp(s, "/") == 0 ? 0 : -1;
}

static void redis_close(void *h);

static struct redis_store *
store_new(const char *what, const char *spec, char *err, size_t errlen)
{
	struct redis_store *st = xcalloc(1, sizeof(*st));

	st->what = what;
	if (parse_spec(st, spec) != 0) {
		snprintf(err, errlen, "%s '%s': expected "
		    "redis://HOST[:PORT][/DB] or redis:///SOCKET[?db=N]", what,
		    spec);
		goto fail;
	}
	st->spec = xstrdup(spec);
	if (pthread_mutex_init(&st->lock, NULL) != 0) {
		snprintf(err, errlen, "%s %s: mutex", what, spec);
		goto fail;
	}
	return st;
fail:
	free(st->spec);
	free(st->host);
	free(st->path);
	free(st);
	return NULL;
}

void *
grey_redis_open(const char *spec, char *err, size_t errlen)
{
	struct redis_store *st;
	unsigned char md[20];
	unsigned mdlen = 0;

	if ((st = store_new("greylist store", spec, err, errlen)) == NULL)
		return NULL;
	if (!EVP_Digest(grey_lua, sizeof(grey_lua) - 1, md, &mdlen,
	    EVP_sha1(), NULL) || mdlen != sizeof(md)) {
		snprintf(err, errlen, "greylist store %s: SHA-1 failed", spec);
		goto fail;
	}
	for (size_t i = 0; i < sizeof(md); i++)
		snprintf(st->sha + 2 * i, 3, "%02x", md[i]);
	return st;
fail:
	redis_close(st);
	return NULL;
}

static void
redis_close(void *h)
{
	struct redis_store *st = h;

	if (st == NULL)
		return;
	for (size_t i = 0; i < st->nidle; i++)
		redisFree(st->idle[i]);
	pthread_mutex_destroy(&st->lock);
	free(st->spec);
	free(st->host);
	free(st->path);
	free(st);
}

static redisContext *
conn_new(struct redis_store *st)
{
	struct timeval tv = { GREY_REDIS_TIMEOUT_MS / 1000,
	    (GREY_REDIS_TIMEOUT_MS % 1000) * 1000 };
	redisContext *c;
	redisReply *r;

	c = st->path != NULL ? redisConnectUnixWithTimeout(st->path, tv) :
	    redisConnectWithTimeout(st->host, st->port, tv);
	if (c == NULL) {
		fail_log(st, "connect", "cannot allocate a connection");
		return NULL;
	}
	if (c->err == 0 && redisSetTimeout(c, tv) != REDIS_OK && c->err == 0)
		c->err = REDIS_ERR_OTHER;
	if (c->err == 0 && st->db != 0) {
		r = redisCommand(c, "SELECT %u", st->db);
		if (r == NULL || r->type == REDIS_REPLY_ERROR) {
			fail_log(st, "SELECT", r != NULL ? r->str :
			    c->errstr);
			if (r != NULL)
				freeReplyObject(r);
			redisFree(c);
			return NULL;
		}
		freeReplyObject(r);
	}
	if (c->err != 0) {
		fail_log(st, "connect", c->errstr);
		redisFree(c);
		return NULL;
	}
	return c;
}

/* An idle connection or a new one; *reused tells which. */
static redisContext *
conn_get(struct redis_store *st, bool *reused)
{
	redisContext *c = NULL;

	pthread_mutex_lock(&st->lock);
	if (st->nidle > 0)
		c = st->idle[--st->nidle];
	pthread_mutex_unlock(&st->lock);
	*reused = c != NULL;
	return c != NULL ? c : conn_new(st);
}

/* Back to the pool, or freed when it failed (the next call reconnects)
 * or the pool is full. */
static void
conn_put(struct redis_store *st, redisContext *c)
{
	if (c == NULL)
		return;
	if (c->err == 0) {
		pthread_mutex_lock(&st->lock);
		if (st->nidle < GREY_REDIS_POOL_MAX) {
			st->idle[st->nidle++] = c;
			c = NULL;
		}
		pthread_mutex_unlock(&st->lock);
	}
	if (c != NULL)
		redisFree(c);
}

/* After the server went away every idle connection is dead: drop them
 * all rather than fail one check per stale connection. */
static void
pool_flush(struct redis_store *st)
{
	redisContext *dead[GREY_REDIS_POOL_MAX];
	size_t n;

	pthread_mutex_lock(&st->lock);
	n = st->nidle;
	memcpy(dead, st->idle, n * sizeof(dead[0]));
	st->nidle = 0;
	pthread_mutex_unlock(&st->lock);
	for (size_t i = 0; i < n; i++)
		redisFree(dead[i]);
}

/*
 * Runs one command (printf-style, hiredis %b for binary) on a pooled
 * connection.  A reused connection that fails fast (not a timeout: a
 * stale socket after a server restart) is retried once on a fresh one.
 * Returns the reply (caller frees) or NULL, logged.
 */
static redisReply *
run(struct redis_store *st, const char *what, const char *fmt, ...)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		redisContext *c;
		redisReply *r;
		bool reused;
		uint64_t t0 = clock_ms();
		va_list ap;

		if ((c = conn_get(st, &reused)) == NULL)
			return NULL;
		va_start(ap, fmt);
		r = redisvCommand(c, fmt, ap);
		va_end(ap);
		if (r != NULL) {
			conn_put(st, c);
			return r;
		}
		if (reused && attempt == 0 &&
		    clock_ms() - t0 < GREY_REDIS_TIMEOUT_MS / 2) {
			redisFree(c);
			pool_flush(st);
			continue;
		}
		fail_log(st, what, c->errstr[0] != '\0' ? c->errstr :
		    "no reply");
		redisFree(c);
		return NULL;
	}
	return NULL;
}

static int
redis_check(void *h, const struct greylist_params *p, const char *tkey,
    size_t tlen, const char *ikey, size_t ilen, uint64_t now,
    enum greylist_state *out)
{
	struct redis_store *st = h;
	unsigned long long n = now;
	redisReply *r;

	r = run(st, "EVALSHA", "EVALSHA %s 2 %b %b %llu %u %u %u %u", st->sha,
	    tkey, tlen, ikey, ilen, n, p->delay, p->window, p->expire,
	    p->autoallow);
	/* A restarted or flushed server forgot the script: send it whole
	 * (EVAL also caches it for the next EVALSHA). */
	if (r != NULL && r->type == REDIS_REPLY_ERROR &&
	    strncmp(r->str, "NOSCRIPT", 8) == 0) {
		freeReplyObject(r);
		r = run(st, "EVAL", "EVAL %s 2 %b %b %llu %u %u %u %u",
		    grey_lua, tkey, tlen, ikey, ilen, n, p->delay, p->window,
		    p->expire, p->autoallow);
	}
	if (r == NULL)
		return -1;
	if (r->type != REDIS_REPLY_INTEGER || r->integer < GREY_NEW ||
	    r->integer > GREY_ALLOWED) {
		fail_log(st, "script", r->type == REDIS_REPLY_ERROR ?
		    r->str : "bad reply");
		freeReplyObject(r);
		return -1;
	}
	*out = (enum greylist_state)r->integer;
	freeReplyObject(r);
	return 0;
}

static int
redis_put(void *h, const char *key, size_t len, const struct grey_rec *rec,
    uint64_t now)
{
	struct redis_store *st = h;
	uint64_t ttl = rec->expires_at > now ? rec->expires_at - now : 1;
	redisReply *r;
	int rc;

	/* DEL, HMSET and EXPIRE in one script: a check racing with the CLI
	 * sees the old record or the new one, never half of it. */
	r = run(st, "put", "EVAL %s 1 %b %llu %llu %llu %u %u %u %llu",
	    "redis.call('DEL', KEYS[1])\n"
	    "redis.call('HMSET', KEYS[1], 'f', ARGV[1], 'l', ARGV[2],"
	    " 'p', ARGV[3], 's', ARGV[4], 'c', ARGV[5], 'm', ARGV[6])\n"
	    "redis.call('EXPIRE', KEYS[1], ARGV[7])\n"
	    "return 1\n", key, len,
	    (unsigned long long)rec->first_seen,
	    (unsigned long long)rec->last_seen,
	    (unsigned long long)rec->last_pass, rec->passed ? 1u : 0u,
	    rec->count, rec->manual ? 1u : 0u, (unsigned long long)ttl);
	if (r == NULL)
		return -1;
	rc = r->type == REDIS_REPLY_INTEGER ? 0 : -1;
	if (rc != 0)
		log_err("greylist store %s: put: %s", st->spec,
		    r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
	freeReplyObject(r);
	return rc;
}

static int
redis_del(void *h, const char *key, size_t len)
{
	struct redis_store *st = h;
	redisReply *r;
	int rc;

	if ((r = run(st, "DEL", "DEL %b", key, len)) == NULL)
		return -1;
	rc = r->type == REDIS_REPLY_INTEGER ? (r->integer > 0) : -1;
	freeReplyObject(r);
	return rc;
}

static uint64_t
field_u64(const redisReply *r)
{
	return r->type == REDIS_REPLY_STRING ?
	    strtoull(r->str, NULL, 10) : 0;
}

/* SCAN, not KEYS: the server keeps serving the MX hosts meanwhile. */
static int
redis_list(void *h, grey_list_cb cb, void *arg)
{
	struct redis_store *st = h;
	char cursor[32] = "0", buf[GREY_KEY_MAX + 1];
	int ret = 0;

	do {
		redisReply *r, *keys;

		r = run(st, "SCAN", "SCAN %s MATCH [ga]:* COUNT 500", cursor);
		if (r == NULL)
			return -1;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[0]->len >= sizeof(cursor) ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			log_err("greylist store %s: SCAN: bad reply",
			    st->spec);
			freeReplyObject(r);
			return -1;
		}
		memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);
		keys = r->element[1];
		for (size_t i = 0; ret == 0 && i < keys->elements; i++) {
			redisReply *k = keys->element[i], *v;
			struct grey_entry e;

			if (k->type != REDIS_REPLY_STRING ||
			    grey_key_split(k->str, k->len, &e, buf,
			    sizeof(buf)) != 0)
				continue;
			v = run(st, "HMGET", "HMGET %b f l p s c m", k->str,
			    k->len);
			if (v == NULL) {
				ret = -1;
				break;
			}
			if (v->type == REDIS_REPLY_ARRAY && v->elements == 6 &&
			    v->element[0]->type == REDIS_REPLY_STRING) {
				e.rec.present = true;
				e.rec.first_seen = field_u64(v->element[0]);
				e.rec.last_seen = field_u64(v->element[1]);
				e.rec.last_pass = field_u64(v->element[2]);
				e.rec.passed = field_u64(v->element[3]) == 1;
				e.rec.count =
				    (uint32_t)field_u64(v->element[4]);
				e.rec.manual = field_u64(v->element[5]) == 1;
				ret = cb(&e, arg);
			}
			freeReplyObject(v);
		}
		freeReplyObject(r);
	} while (ret == 0 && strcmp(cursor, "0") != 0);
	return ret;
}

static int
redis_count_cb(const struct grey_entry *e, void *arg)
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
redis_stats(void *h, struct grey_stats *s)
{
	struct redis_store *st = h;
	redisReply *r;
	const char *m;

	memset(s, 0, sizeof(*s));
	if ((r = run(st, "INFO", "INFO memory")) == NULL)
		return -1;
	/* The whole server's memory: the greylist may share it. */
	if (r->type == REDIS_REPLY_STRING &&
	    (m = strstr(r->str, "used_memory:")) != NULL)
		s->bytes = strtoull(m + 12, NULL, 10);
	freeReplyObject(r);
	return redis_list(h, redis_count_cb, s) < 0 ? -1 : 0;
}

static int
redis_sweep(void *h, uint64_t now, size_t max, size_t *n)
{
	(void)h;
	(void)now;
	(void)max;
	*n = 0;		/* keys carry a TTL: Redis expires them itself */
	return 0;
}

const struct grey_store_ops grey_redis_ops = {
	.name = "redis",
	.check = redis_check,
	.put = redis_put,
	.del = redis_del,
	.list = redis_list,
	.stats = redis_stats,
	.sweep = redis_sweep,
	.close = redis_close,
};

/* ------------------------------------------------------------------ */
/* DMARC report rows (report.h)                                       */
/* ------------------------------------------------------------------ */

void *
rep_redis_open(const char *spec, char *err, size_t errlen)
{
	return store_new("report store", spec, err, errlen);
}

/* run() for an argument vector (binary safe, any length). */
static redisReply *
run_argv(struct redis_store *st, const char *what, int argc,
    const char **argv, const size_t *argvlen)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		redisContext *c;
		redisReply *r;
		bool reused;
		uint64_t t0 = clock_ms();

		if ((c = conn_get(st, &reused)) == NULL)
			return NULL;
		r = redisCommandArgv(c, argc, argv, argvlen);
		if (r != NULL) {
			conn_put(st, c);
			return r;
		}
		if (reused && attempt == 0 &&
		    clock_ms() - t0 < GREY_REDIS_TIMEOUT_MS / 2) {
			redisFree(c);
			pool_flush(st);
			continue;
		}
		fail_log(st, what, c->errstr[0] != '\0' ? c->errstr :
		    "no reply");
		redisFree(c);
		return NULL;
	}
	return NULL;
}

/* One ZADD for the batch: atomic, one round trip. */
static int
rep_redis_put(void *h, const struct rep_kv *kv, size_t n)
{
	struct redis_store *st = h;
	const char **argv;
	size_t *len, i;
	char (*score)[24];
	redisReply *r;
	int rc = -1;

	if (n == 0)
		return 0;
	argv = xcalloc(2 + 2 * n, sizeof(*argv));
	len = xcalloc(2 + 2 * n, sizeof(*len));
	score = xcalloc(n, sizeof(*score));
	argv[0] = "ZADD";
	len[0] = 4;
	argv[1] = REPORT_REDIS_KEY;
	len[1] = strlen(REPORT_REDIS_KEY);
	for (i = 0; i < n; i++) {
		snprintf(score[i], sizeof(score[i]), "%llu",
		    (unsigned long long)kv[i].time);
		argv[2 + 2 * i] = score[i];
		len[2 + 2 * i] = strlen(score[i]);
		argv[3 + 2 * i] = kv[i].val;
		len[3 + 2 * i] = kv[i].vlen;
	}
	r = run_argv(st, "ZADD", (int)(2 + 2 * n), argv, len);
	if (r != NULL) {
		if (r->type == REDIS_REPLY_INTEGER)
			rc = 0;
		else
			fail_log(st, "ZADD", r->type == REDIS_REPLY_ERROR ?
			    r->str : "bad reply");
		freeReplyObject(r);
	}
	free(score);
	free(len);
	free(argv);
	return rc;
}

/*
 * Pages of REPORT_EXPIRE_STEP rows by score.  A page starts at the last
 * score seen, skipping the members of that score already returned, so
 * that no offset grows with the size of the set.
 */
static int
rep_redis_scan(void *h, uint64_t since, uint64_t until, rep_scan_cb cb,
    void *arg)
{
	struct redis_store *st = h;
	unsigned long long min = since, same = 0;
	int ret = 0;

	if (until == 0 || since >= until)
		return 0;
	for (;;) {
		redisReply *r;
		size_t i, got;

		r = run(st, "ZRANGEBYSCORE", "ZRANGEBYSCORE %s %llu (%llu "
		    "WITHSCORES LIMIT %llu %d", REPORT_REDIS_KEY, min,
		    (unsigned long long)until, same, REPORT_EXPIRE_STEP);
		if (r == NULL)
			return -1;
		if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0) {
			fail_log(st, "ZRANGEBYSCORE", r->type ==
			    REDIS_REPLY_ERROR ? r->str : "bad reply");
			freeReplyObject(r);
			return -1;
		}
		got = r->elements / 2;
		for (i = 0; ret == 0 && i < got; i++) {
			redisReply *m = r->element[2 * i];
			redisReply *sc = r->element[2 * i + 1];
			unsigned long long t;
			char *end;

			if (m->type != REDIS_REPLY_STRING ||
			    sc->type != REDIS_REPLY_STRING)
				continue;
			t = strtoull(sc->str, &end, 10);
			if (end == sc->str)
				continue;
			if (t == min)
				same++;
			else {
				min = t;
				same = 1;
			}
			ret = cb(t, m->str, m->len, arg);
		}
		freeReplyObject(r);
		if (ret != 0 || got < (size_t)REPORT_EXPIRE_STEP)
			return ret;
	}
}

static int
rep_redis_expire(void *h, uint64_t since, uint64_t until, uint64_t *n)
{
	struct redis_store *st = h;
	redisReply *r;
	int rc = -1;

	*n = 0;
	if (since >= until)
		return 0;
	r = run(st, "ZREMRANGEBYSCORE", "ZREMRANGEBYSCORE %s %llu (%llu",
	    REPORT_REDIS_KEY, (unsigned long long)since,
	    (unsigned long long)until);
	if (r == NULL)
		return -1;
	if (r->type == REDIS_REPLY_INTEGER && r->integer >= 0) {
		*n = (uint64_t)r->integer;
		rc = 0;
	} else
		fail_log(st, "ZREMRANGEBYSCORE", r->type == REDIS_REPLY_ERROR ?
		    r->str : "bad reply");
	freeReplyObject(r);
	return rc;
}

const struct rep_store_ops rep_redis_ops = {
	.name = "redis",
	.put = rep_redis_put,
	.scan = rep_redis_scan,
	.expire = rep_redis_expire,
	.close = redis_close,
};
