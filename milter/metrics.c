/*
 * metrics.c - counters, gauges and the stage latency histogram of the
 * process, and their Prometheus text exposition (format 0.0.4).  See
 * metrics.h.
 * Owns: every counter (static, lock-free atomics, relaxed: a scrape needs
 * no ordering between counters), the rule and zone label tables and
 * table_lock, which only metrics_policy() and metrics_reset() take.
 * The label tables are append-only: a slot's name is written once, before
 * its index is published (release), and never changes, so hooks and the
 * renderer read names without a lock.  Hiding a name that left the policy
 * is a flag; its slot is never reused (so an old message cannot count
 * into another rule's slot).
 * Limits: METRICS_* in metrics.h.  Errors: see metrics.h.
 */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics.h"
#include "util.h"

typedef _Atomic uint64_t counter_t;

#define NS_PER_S	((uint64_t)1000000000)

#define INC(c)		atomic_fetch_add_explicit(&(c), 1, memory_order_relaxed)
#define ADD(c, n)	atomic_fetch_add_explicit(&(c), (n), \
			    memory_order_relaxed)
#define GET(c)		atomic_load_explicit(&(c), memory_order_relaxed)

/* ---- fixed label sets ---- */

/* indexed by enum pol_action */
static const char *const action_names[] = {
	"none", "accept", "reject", "tempfail", "quarantine", "strip"
};
#define NACTIONS (sizeof(action_names) / sizeof(action_names[0]))

/* indexed by enum spf_result */
#define NSPF	(SPF_R_PERMERROR + 1)
/* the dkim fact's values (dkimv.h) */
static const char *const dkim_names[] = {
	"pass", "fail", "neutral", "policy", "none", "temperror", "permerror"
};
#define NDKIM (sizeof(dkim_names) / sizeof(dkim_names[0]))
#define NDMARC	(DMARC_R_PERMERROR + 1)
/* zone lookup results: enum dnsbl_answer, then "unused" */
#define ZONE_RESULTS	(DNSBL_FAILURE + 2)
#define ZONE_UNUSED_IDX	(DNSBL_FAILURE + 1)
#define NGREY	(GREY_ALLOWED + 1)
/* enum dns_status, DNS_OK .. DNS_ERROR */
#define NDNS	(DNS_ERROR + 1)

/* Pipeline rule names that are not policy rules (session.c). */
static const char *const builtin_rules[] = {
	"default", "on_error", "syntax", "limits", "strip"
};

/* Histogram buckets (upper bounds) of a stage's processing time. */
static const uint64_t bucket_ns[] = {
	500000, 1000000, 2500000, 5000000, 10000000, 25000000, 50000000,
	100000000, 250000000, 500000000, 1000000000, 2500000000ULL,
	5000000000ULL, 10000000000ULL, 30000000000ULL
};
static const char *const bucket_le[] = {
	"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
	"0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30"
};
#define NBUCKETS (sizeof(bucket_ns) / sizeof(bucket_ns[0]))

/* ---- label tables ---- */

struct slot {
	char name[METRICS_NAME_MAX + 1];	/* written once, see above */
	atomic_bool shown;			/* in the current policy */
	atomic_int healthy;			/* zones: the gauge */
	counter_t n[ZONE_RESULTS];		/* rules: n[0] */
};

struct table {
	struct slot *slots;	/* borrows a static array */
	size_t cap;
	_Atomic size_t n;	/* published slots */
	atomic_uint *hash;	/* slot index + 1; 0: empty */
	size_t hmask;
	bool icase;		/* zone names: ASCII case ignored, as
				 * zonehealth.c compares them */
};

static struct slot rule_slots[METRICS_RULES_MAX];
static atomic_uint rule_hash[METRICS_RULES_MAX * 2];
static struct slot dnsbl_slots[METRICS_ZONES_MAX];
static atomic_uint dnsbl_hash[METRICS_ZONES_MAX * 2];
static struct slot uribl_slots[METRICS_ZONES_MAX];
static atomic_uint uribl_hash[METRICS_ZONES_MAX * 2];

static struct table rules = {
	rule_slots, METRICS_RULES_MAX, 0, rule_hash,
	METRICS_RULES_MAX * 2 - 1, false
};
static struct table dnsbl_zones = {
	dnsbl_slots, METRICS_ZONES_MAX, 0, dnsbl_hash,
	METRICS_ZONES_MAX * 2 - 1, true
};
static struct table uribl_zones = {
	uribl_slots, METRICS_ZONES_MAX, 0, uribl_hash,
	METRICS_ZONES_MAX * 2 - 1, true
};
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- the counters ---- */

static struct {
	counter_t reloads_ok, reloads_failed;
	counter_t messages[NACTIONS];
	counter_t on_error;
	counter_t rule_other;
	counter_t spf[2][NSPF];
	counter_t dkim[NDKIM];
	counter_t dmarc[NDMARC];
	counter_t uribl_links, uribl_over_limit;
	counter_t grey[NGREY];
	counter_t grey_errors;
	counter_t dns_queries;
	counter_t dns_results[NDNS];
	counter_t dns_cache_hits;
	struct {
		counter_t bucket[NBUCKETS + 1];	/* not cumulative; last:
						 * over the largest bound */
		counter_t sum_ns;
	} stage[POL_STAGE_COUNT];
} m;

static uint64_t start_mono_ns;
static time_t start_wall;
static int (*gauge_conns)(void);
static int (*gauge_flight)(void);

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

void
metrics_init(void)
{
	start_mono_ns = now_ns();
	start_wall = time(NULL);
}

void
metrics_gauge_sources(int (*connections)(void), int (*in_flight)(void))
{
	gauge_conns = connections;
	gauge_flight = in_flight;
}

static unsigned char
fold(unsigned char c, bool icase)
{
	return icase && c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* FNV-1a */
static size_t
name_hash(const char *s, bool icase)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++) {
		h ^= fold((unsigned char)*s, icase);
		h *= 16777619u;
	}
	return h;
}

static bool
name_eq(const char *a, const char *b, bool icase)
{
	return icase ? str_ieq(a, b) : strcmp(a, b) == 0;
}

/* The slot of name, or NULL.  Lock-free (see the file header). */
static struct slot *
table_find(struct table *t, const char *name)
{
	size_t h, i;

	if (name == NULL)
		return NULL;
	h = name_hash(name, t->icase);
	for (i = 0; i <= t->hmask; i++) {
		unsigned v = atomic_load_explicit(&t->hash[(h + i) & t->hmask],
		    memory_order_acquire);

		if (v == 0)
			return NULL;
		if (name_eq(t->slots[v - 1].name, name, t->icase))
			return &t->slots[v - 1];
	}
	return NULL;
}

/* Finds or appends name.  table_lock held.  NULL when the table is full
 * or the name too long. */
static struct slot *
table_add(struct table *t, const char *name)
{
	struct slot *s = table_find(t, name);
	size_t n, h, i;

	if (s != NULL)
		return s;
	n = atomic_load_explicit(&t->n, memory_order_relaxed);
	if (n >= t->cap || strlen(name) > METRICS_NAME_MAX)
		return NULL;
	s = &t->slots[n];
	memcpy(s->name, name, strlen(name) + 1);
	atomic_store_explicit(&s->healthy, 1, memory_order_relaxed);
	atomic_store_explicit(&s->shown, false, memory_order_relaxed);
	atomic_store_explicit(&t->n, n + 1, memory_order_release);
	h = name_hash(name, t->icase);
	for (i = 0; i <= t->hmask; i++) {
		atomic_uint *e = &t->hash[(h + i) & t->hmask];

		if (atomic_load_explicit(e, memory_order_relaxed) == 0) {
			atomic_store_explicit(e, (unsigned)n + 1,
			    memory_order_release);
			break;
		}
	}
	return s;
}

/* Shows exactly the names marked in want (indexed like the slots). */
static void
table_show(struct table *t, const bool *want)
{
	size_t i, n = atomic_load_explicit(&t->n, memory_order_relaxed);

	for (i = 0; i < n; i++) {
		struct slot *s = &t->slots[i];

		/* a zone (back) in the policy starts usable, as
		 * zone_health_new() starts it */
		if (want[i] && !atomic_load(&s->shown))
			atomic_store(&s->healthy, 1);
		atomic_store(&s->shown, want[i]);
	}
}

static void
zones_set(struct table *t, const struct policy *pol, enum zone_kind kind)
{
	bool want[METRICS_ZONES_MAX] = { false };
	size_t i, n = kind == ZONE_IP ? pol_dnsbl_count(pol) :
	    pol_uribl_count(pol);

	for (i = 0; i < n; i++) {
		const struct pol_dnsbl *d = kind == ZONE_IP ?
		    pol_dnsbl_get(pol, i) : pol_uribl_get(pol, i);
		struct slot *s = table_add(t, d->zone);

		if (s != NULL)
			want[s - t->slots] = true;
	}
	table_show(t, want);
}

void
metrics_policy(const struct policy *pol)
{
	static bool want[METRICS_RULES_MAX];	/* under table_lock */
	size_t i, n;

	pthread_mutex_lock(&table_lock);
	memset(want, 0, sizeof(want));
	for (i = 0; i < sizeof(builtin_rules) / sizeof(builtin_rules[0]);
	    i++) {
		struct slot *s = table_add(&rules, builtin_rules[i]);

		if (s != NULL)
			want[s - rules.slots] = true;
	}
	n = pol_rule_count(pol);
	for (i = 0; i < n; i++) {
		const char *name = pol_rule_name(pol, i);
		struct slot *s;

		/* a monitor rule never decides */
		if (name == NULL || pol_rule_is_monitor(pol, i))
			continue;
		if ((s = table_add(&rules, name)) != NULL)
			want[s - rules.slots] = true;
	}
	table_show(&rules, want);
	zones_set(&dnsbl_zones, pol, ZONE_IP);
	zones_set(&uribl_zones, pol, ZONE_DOMAIN);
	pthread_mutex_unlock(&table_lock);
}

/* ---- hooks ---- */

void
metrics_reload(bool ok)
{
	if (ok)
		INC(m.reloads_ok);
	else
		INC(m.reloads_failed);
}

void
metrics_message(enum pol_action a, const char *rule)
{
	struct slot *s;

	if ((unsigned)a < NACTIONS)
		INC(m.messages[a]);
	if (rule == NULL || rule[0] == '\0')
		return;
	if (strcmp(rule, "on_error") == 0)
		INC(m.on_error);
	if ((s = table_find(&rules, rule)) != NULL)
		INC(s->n[0]);
	else
		INC(m.rule_other);
}

void
metrics_spf(bool helo, enum spf_result r)
{
	if ((unsigned)r < NSPF)
		INC(m.spf[helo ? 1 : 0][r]);
}

void
metrics_dkim(const char *best)
{
	size_t i;

	for (i = 0; best != NULL && i < NDKIM; i++)
		if (strcmp(best, dkim_names[i]) == 0) {
			INC(m.dkim[i]);
			return;
		}
}

void
metrics_dmarc(enum dmarc_result r)
{
	if ((unsigned)r < NDMARC)
		INC(m.dmarc[r]);
}

static struct table *
zone_table(enum zone_kind kind)
{
	return kind == ZONE_IP ? &dnsbl_zones : &uribl_zones;
}

void
metrics_zone_lookup(enum zone_kind kind, const char *zone, int answer)
{
	struct slot *s = table_find(zone_table(kind), zone);
	size_t idx = answer == METRICS_ZONE_UNUSED ? ZONE_UNUSED_IDX :
	    (size_t)answer;

	if (s != NULL && answer >= METRICS_ZONE_UNUSED && idx < ZONE_RESULTS)
		INC(s->n[idx]);
}

void
metrics_zone_health(enum zone_kind kind, const char *zone, bool usable)
{
	struct slot *s = table_find(zone_table(kind), zone);

	if (s != NULL)
		atomic_store_explicit(&s->healthy, usable ? 1 : 0,
		    memory_order_relaxed);
}

void
metrics_uribl_links(size_t looked_up, size_t over_limit)
{
	ADD(m.uribl_links, looked_up);
	ADD(m.uribl_over_limit, over_limit);
}

void
metrics_greylist(int state)
{
	if (state < 0)
		INC(m.grey_errors);
	else if (state < (int)NGREY)
		INC(m.grey[state]);
}

void
metrics_dns_query(void)
{
	INC(m.dns_queries);
}

void
metrics_dns_cache_hit(void)
{
	INC(m.dns_cache_hits);
}

void
metrics_dns_result(enum dns_status st)
{
	if ((unsigned)st < NDNS)
		INC(m.dns_results[st]);
}

void
metrics_observe_stage(enum pol_stage st, uint64_t ns)
{
	size_t i;

	if ((unsigned)st >= POL_STAGE_COUNT)
		return;
	for (i = 0; i < NBUCKETS && ns > bucket_ns[i]; i++)
		;
	INC(m.stage[st].bucket[i]);
	ADD(m.stage[st].sum_ns, ns);
}

struct metrics_timer
metrics_timer_begin(enum pol_stage st)
{
	struct metrics_timer t = { now_ns(), st };

	return t;
}

void
metrics_timer_end(struct metrics_timer *t)
{
	uint64_t now = now_ns();

	metrics_observe_stage(t->stage, now > t->t0_ns ? now - t->t0_ns : 0);
}

/* ---- exposition ---- */

/* Length of the valid UTF-8 sequence at p (n bytes left), or 0. */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		cp = p[0] & 0x07;
	} else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	/* overlong forms, surrogates, past U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

int
metrics_escape_label(struct buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, k;
	int rc = 0;

	while (i < n && rc == 0) {
		switch (p[i]) {
		case '\\':
			rc = buf_append(b, "\\\\", 2);
			i++;
			continue;
		case '"':
			rc = buf_append(b, "\\\"", 2);
			i++;
			continue;
		case '\n':
			rc = buf_append(b, "\\n", 2);
			i++;
			continue;
		default:
			break;
		}
		if ((k = utf8_len(p + i, n - i)) == 0) {
			rc = buf_append(b, "\xef\xbf\xbd", 3);	/* U+FFFD */
			i++;
		} else {
			rc = buf_append(b, s + i, k);
			i += k;
		}
	}
	return rc;
}

/* The page under construction; err once anything did not fit. */
struct page {
	struct buf b;
	bool err;
};

static void
put(struct page *pg, const char *s)
{
	if (buf_puts(&pg->b, s) != 0)
		pg->err = true;
}

static void __attribute__((format(printf, 2, 3)))
putf(struct page *pg, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) ||
	    buf_append(&pg->b, line, (size_t)n) != 0)
		pg->err = true;
}

static void
label(struct page *pg, const char *value)
{
	if (metrics_escape_label(&pg->b, value) != 0)
		pg->err = true;
}

/* "# HELP" and "# TYPE" of a family (help is ours: no escaping needed). */
static void
family(struct page *pg, const char *name, const char *type,
    const char *help)
{
	putf(pg, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{key="value"} n */
static void
sample1(struct page *pg, const char *name, const char *key,
    const char *value, uint64_t n)
{
	putf(pg, "%s{%s=\"", name, key);
	label(pg, value);
	putf(pg, "\"} %" PRIu64 "\n", n);
}

static void
render_rules(struct page *pg)
{
	const char *name = "portcullis_messages_by_rule_total";
	size_t i, n = atomic_load_explicit(&rules.n, memory_order_acquire);

	family(pg, name, "counter", "Messages by the rule that decided them "
	    "(rules of the current policy and the pipeline's own).");
	for (i = 0; i < n; i++)
		if (atomic_load(&rules.slots[i].shown))
			sample1(pg, name, "rule", rules.slots[i].name,
			    GET(rules.slots[i].n[0]));
	sample1(pg, name, "rule", METRICS_RULE_OTHER, GET(m.rule_other));
}

static void
render_zone_lookups(struct page *pg, struct table *t, const char *name,
    bool with_unused)
{
	size_t i, r, n = atomic_load_explicit(&t->n, memory_order_acquire);

	for (i = 0; i < n; i++) {
		struct slot *s = &t->slots[i];

		if (!atomic_load(&s->shown))
			continue;
		for (r = 0; r < ZONE_RESULTS; r++) {
			if (r == ZONE_UNUSED_IDX && !with_unused)
				continue;
			putf(pg, "%s{zone=\"", name);
			label(pg, s->name);
			putf(pg, "\",result=\"%s\"} %" PRIu64 "\n",
			    r == ZONE_UNUSED_IDX ? "unused" :
			    dnsbl_answer_name((enum dnsbl_answer)r),
			    GET(s->n[r]));
		}
	}
}

static void
render_zone_health(struct page *pg)
{
	struct table *ts[2] = { &dnsbl_zones, &uribl_zones };
	const char *kinds[2] = { "dnsbl", "uribl" };
	size_t k, i;

	family(pg, "portcullis_zone_healthy", "gauge", "Whether a blocklist "
	    "zone of the policy is in use (1) or taken out of use by its "
	    "health probes (0).");
	for (k = 0; k < 2; k++) {
		size_t n = atomic_load_explicit(&ts[k]->n,
		    memory_order_acquire);

		for (i = 0; i < n; i++) {
			struct slot *s = &ts[k]->slots[i];

			if (!atomic_load(&s->shown))
				continue;
			putf(pg, "portcullis_zone_healthy{kind=\"%s\",zone=\"",
			    kinds[k]);
			label(pg, s->name);
			putf(pg, "\"} %d\n", atomic_load(&s->healthy));
		}
	}
}

static void
render_histogram(struct page *pg)
{
	const char *name = "portcullis_stage_duration_seconds";
	int st;
	size_t i;

	family(pg, name, "histogram", "Time portcullis spent processing each "
	    "SMTP stage of a message (the MTA and network not included).");
	for (st = 0; st < POL_STAGE_COUNT; st++) {
		const char *sn = pol_stage_name((enum pol_stage)st);
		uint64_t cum = 0, sum;

		for (i = 0; i <= NBUCKETS; i++) {
			cum += GET(m.stage[st].bucket[i]);
			putf(pg, "%s_bucket{stage=\"%s\",le=\"%s\"} %" PRIu64
			    "\n", name, sn, i < NBUCKETS ? bucket_le[i] :
			    "+Inf", cum);
		}
		sum = GET(m.stage[st].sum_ns);
		putf(pg, "%s_sum{stage=\"%s\"} %" PRIu64 ".%09" PRIu64 "\n",
		    name, sn, sum / NS_PER_S, sum % NS_PER_S);
		/* the +Inf bucket, so the two agree in one scrape */
		putf(pg, "%s_count{stage=\"%s\"} %" PRIu64 "\n", name, sn,
		    cum);
	}
}

char *
metrics_render(size_t *len)
{
	struct page pg;
	uint64_t up_ns;
	size_t i, r;

	memset(&pg, 0, sizeof(pg));
	buf_init(&pg.b, METRICS_PAGE_MAX);

	family(&pg, "portcullis_build_info", "gauge", "Always 1; the version "
	    "of the running portcullis as a label.");
	put(&pg, "portcullis_build_info{version=\"");
	label(&pg, PACKAGE_VERSION);
	put(&pg, "\"} 1\n");
	family(&pg, "portcullis_start_time_seconds", "gauge", "When the "
	    "daemon started, in seconds since the Unix epoch.");
	putf(&pg, "portcullis_start_time_seconds %lld\n",
	    (long long)start_wall);
	up_ns = start_mono_ns != 0 ? now_ns() - start_mono_ns : 0;
	family(&pg, "portcullis_uptime_seconds", "gauge", "Seconds since the "
	    "daemon started (monotonic clock).");
	putf(&pg, "portcullis_uptime_seconds %" PRIu64 ".%03" PRIu64 "\n",
	    up_ns / NS_PER_S, up_ns % NS_PER_S / (NS_PER_S / 1000));
	family(&pg, "portcullis_connections_open", "gauge", "SMTP "
	    "connections the MTA has open with portcullis.");
	putf(&pg, "portcullis_connections_open %d\n",
	    gauge_conns != NULL ? gauge_conns() : 0);
	family(&pg, "portcullis_messages_in_flight", "gauge", "Messages "
	    "between MAIL FROM and their end.");
	putf(&pg, "portcullis_messages_in_flight %d\n",
	    gauge_flight != NULL ? gauge_flight() : 0);
	family(&pg, "portcullis_reloads_total", "counter", "Configuration "
	    "reloads (SIGHUP, SIGUSR1) by result; a failed one keeps the "
	    "previous configuration.");
	sample1(&pg, "portcullis_reloads_total", "result", "ok",
	    GET(m.reloads_ok));
	sample1(&pg, "portcullis_reloads_total", "result", "failed",
	    GET(m.reloads_failed));

	family(&pg, "portcullis_messages_total", "counter", "Messages by "
	    "final action (none: ended without a verdict).");
	for (i = 1; i <= NACTIONS; i++)	/* "none" last */
		sample1(&pg, "portcullis_messages_total", "action",
		    action_names[i % NACTIONS], GET(m.messages[i % NACTIONS]));
	family(&pg, "portcullis_messages_on_error_total", "counter",
	    "Messages decided by on_error after an internal failure.");
	putf(&pg, "portcullis_messages_on_error_total %" PRIu64 "\n",
	    GET(m.on_error));
	render_rules(&pg);

	family(&pg, "portcullis_spf_results_total", "counter", "SPF results "
	    "by identity (mailfrom: the spf fact; helo: spf.helo).");
	for (i = 0; i < 2; i++)
		for (r = 0; r < NSPF; r++)
			putf(&pg, "portcullis_spf_results_total{identity=\"%s\","
			    "result=\"%s\"} %" PRIu64 "\n", i ? "helo" :
			    "mailfrom", spf_result_name((enum spf_result)r),
			    GET(m.spf[i][r]));
	family(&pg, "portcullis_dkim_results_total", "counter", "DKIM: the "
	    "best result of each message's signatures (the dkim fact).");
	for (r = 0; r < NDKIM; r++)
		sample1(&pg, "portcullis_dkim_results_total", "result",
		    dkim_names[r], GET(m.dkim[r]));
	family(&pg, "portcullis_dmarc_results_total", "counter", "DMARC "
	    "results of messages (the dmarc fact).");
	for (r = 0; r < NDMARC; r++)
		sample1(&pg, "portcullis_dmarc_results_total", "result",
		    dmarc_result_name((enum dmarc_result)r), GET(m.dmarc[r]));

	family(&pg, "portcullis_dnsbl_lookups_total", "counter", "Client "
	    "address lookups per dnsbl zone by result (unused: the zone was "
	    "out of use).");
	render_zone_lookups(&pg, &dnsbl_zones,
	    "portcullis_dnsbl_lookups_total", true);
	family(&pg, "portcullis_uribl_lookups_total", "counter", "Link "
	    "lookups per uribl zone by result.");
	render_zone_lookups(&pg, &uribl_zones,
	    "portcullis_uribl_lookups_total", false);
	family(&pg, "portcullis_uribl_links_total", "counter", "Link keys "
	    "(registered domains, addresses) looked up in the uribl zones.");
	putf(&pg, "portcullis_uribl_links_total %" PRIu64 "\n",
	    GET(m.uribl_links));
	family(&pg, "portcullis_uribl_links_over_limit_total", "counter",
	    "Link keys not looked up (past uribl_max_lookups).");
	putf(&pg, "portcullis_uribl_links_over_limit_total %" PRIu64 "\n",
	    GET(m.uribl_over_limit));
	render_zone_health(&pg);

	family(&pg, "portcullis_greylist_checks_total", "counter", "Greylist "
	    "triplets checked in the store, by state.");
	for (r = 0; r < NGREY; r++)
		sample1(&pg, "portcullis_greylist_checks_total", "state",
		    greylist_state_name((enum greylist_state)r),
		    GET(m.grey[r]));
	family(&pg, "portcullis_greylist_store_errors_total", "counter",
	    "Greylist checks that failed in the store.");
	putf(&pg, "portcullis_greylist_store_errors_total %" PRIu64 "\n",
	    GET(m.grey_errors));

	family(&pg, "portcullis_dns_queries_total", "counter", "DNS queries "
	    "started through the resolver (checks and zone probes).");
	putf(&pg, "portcullis_dns_queries_total %" PRIu64 "\n",
	    GET(m.dns_queries));
	family(&pg, "portcullis_dns_results_total", "counter", "How DNS "
	    "queries ended: the answer's status, timeout (the waiter gave "
	    "up) or error (could not be asked).");
	for (r = 0; r < NDNS; r++)
		sample1(&pg, "portcullis_dns_results_total", "status",
		    dns_status_name((enum dns_status)r),
		    GET(m.dns_results[r]));
	family(&pg, "portcullis_dns_cache_hits_total", "counter", "DNS "
	    "queries answered from portcullis's own answer cache, without "
	    "asking libunbound.");
	putf(&pg, "portcullis_dns_cache_hits_total %" PRIu64 "\n",
	    GET(m.dns_cache_hits));

	render_histogram(&pg);
	if (pg.err) {
		buf_free(&pg.b);
		return NULL;
	}
	*len = pg.b.len;
	return pg.b.p != NULL ? pg.b.p : xstrdup("");
}

/* ---- configuration ---- */

int
metrics_parse_addr(const char *spec, struct sockaddr_storage *ss,
    socklen_t *sslen, bool *loopback, char *norm, size_t normlen)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port;
	unsigned long pn;
	size_t hl;
	char *end;
	int n;

	memset(ss, 0, sizeof(*ss));
	if (spec[0] == '[') {
		const char *rb = strchr(spec, ']');
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		if (rb == NULL || rb[1] != ':')
			return -1;
		hl = (size_t)(rb - spec - 1);
		if (hl == 0 || hl >= sizeof(host))
			return -1;
		memcpy(host, spec + 1, hl);
		host[hl] = '\0';
		port = rb + 2;
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return -1;
		s6->sin6_family = AF_INET6;
		*sslen = sizeof(*s6);
		*loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
	} else {
		const char *colon = strchr(spec, ':');
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		if (colon == NULL)
			return -1;
		hl = (size_t)(colon - spec);
		if (hl == 0 || hl >= sizeof(host))
			return -1;
		memcpy(host, spec, hl);
		host[hl] = '\0';
		port = colon + 1;
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -1;
		s4->sin_family = AF_INET;
		*sslen = sizeof(*s4);
		*loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	}
	if (*port < '1' || *port > '9')
		return -1;
	errno = 0;
	pn = strtoul(port, &end, 10);
	if (*end != '\0' || errno != 0 || pn == 0 || pn > 65535)
		return -1;
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)pn);
	else
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)pn);
	if (norm != NULL) {
		char text[INET6_ADDRSTRLEN];

		inet_ntop(ss->ss_family, ss->ss_family == AF_INET6 ?
		    (void *)&((struct sockaddr_in6 *)ss)->sin6_addr :
		    (void *)&((struct sockaddr_in *)ss)->sin_addr, text,
		    sizeof(text));
		n = snprintf(norm, normlen, ss->ss_family == AF_INET6 ?
		    "[%s]:%lu" : "%s:%lu", text, pn);
		if (n < 0 || (size_t)n >= normlen)
			return -1;
	}
	return 0;
}

void
metrics_reset(void)
{
	struct table *ts[3] = { &rules, &dnsbl_zones, &uribl_zones };
	size_t k, i;

	pthread_mutex_lock(&table_lock);
	for (k = 0; k < 3; k++) {
		for (i = 0; i <= ts[k]->hmask; i++)
			atomic_store(&ts[k]->hash[i], 0);
		atomic_store(&ts[k]->n, 0);
		memset(ts[k]->slots, 0, ts[k]->cap * sizeof(struct slot));
	}
	memset(&m, 0, sizeof(m));
	pthread_mutex_unlock(&table_lock);
}
