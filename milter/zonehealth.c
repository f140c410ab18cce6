/*
 * zonehealth.c - RFC 5782 section 5 probes of the policy's blocklist
 * zones; a zone that fails is out of use until it is healthy again.
 * See zonehealth.h.
 */
#include "autoconfig.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dns.h"
#include "dnsbl.h"
#include "log.h"
#include "metrics.h"
#include "util.h"
#include "zonehealth.h"

#define ZONE_WHY_MAX	128

struct zone_state {
	char *zone;		/* owns */
	enum zone_kind kind;
	const struct pol_dnsbl *line;	/* borrows the policy */
	bool usable;
	bool missing_test_logged;	/* domain zones: TEST not listed */
	char why[ZONE_WHY_MAX];	/* why it is out of use */
	bool fail_logged;	/* without prober: logged once */
};

struct zone_health {
	pthread_mutex_t lock;
	struct zone_state *z;	/* owns */
	size_t n;
	/* the prober */
	struct dns *dns;	/* borrows */
	unsigned interval_ms, timeout_ms;
	bool running, stop;
	pthread_t thread;
	pthread_cond_t wake;
};

static void
add_zones(struct zone_health *h, const struct policy *pol,
    const struct zone_health *prev, enum zone_kind kind)
{
	size_t i, j, n = kind == ZONE_IP ? pol_dnsbl_count(pol) :
	    pol_uribl_count(pol);

	for (i = 0; i < n; i++) {
		const struct pol_dnsbl *d = kind == ZONE_IP ?
		    pol_dnsbl_get(pol, i) : pol_uribl_get(pol, i);
		struct zone_state *s;

		h->z = xreallocarray(h->z, h->n + 1, sizeof(*h->z));
		s = &h->z[h->n++];
		memset(s, 0, sizeof(*s));
		s->zone = xstrdup(d->zone);
		s->kind = kind;
		s->line = d;
		s->usable = true;
		for (j = 0; prev != NULL && j < prev->n; j++)
			if (prev->z[j].kind == kind &&
			    str_ieq(prev->z[j].zone, d->zone)) {
				s->usable = prev->z[j].usable;
				s->missing_test_logged =
				    prev->z[j].missing_test_logged;
				memcpy(s->why, prev->z[j].why, sizeof(s->why));
				break;
			}
	}
}

struct zone_health *
zone_health_new(const struct policy *pol, const struct zone_health *prev)
{
	struct zone_health *h = xcalloc(1, sizeof(*h));

	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->wake, NULL);
	if (prev != NULL)
		pthread_mutex_lock((pthread_mutex_t *)&prev->lock);
	add_zones(h, pol, prev, ZONE_IP);
	add_zones(h, pol, prev, ZONE_DOMAIN);
	if (prev != NULL)
		pthread_mutex_unlock((pthread_mutex_t *)&prev->lock);
	return h;
}

static struct zone_state *
find(struct zone_health *h, const char *zone, enum zone_kind kind)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		if (h->z[i].kind == kind && str_ieq(h->z[i].zone, zone))
			return &h->z[i];
	return NULL;
}

static const char *
kind_name(enum zone_kind k)
{
	return k == ZONE_IP ? "dnsbl" : "uribl";
}

/* Whether two reasons for being out of use are the same trouble: a zone
 * that does not answer shows as a timeout, then as a server failure while
 * the resolver remembers the failure, and so on; that is one trouble,
 * logged once. */
static bool
same_trouble(const char *a, const char *b)
{
	static const char quiet[] = "not answering";

	if (strncmp(a, quiet, sizeof(quiet) - 1) == 0 &&
	    strncmp(b, quiet, sizeof(quiet) - 1) == 0)
		return true;
	return strcmp(a, b) == 0;
}

/* Sets a zone's state, logging each change once.  Lock held. */
static void
set_state(struct zone_state *s, bool usable, const char *why)
{
	if (usable && !s->usable)
		log_info("%s zone %s healthy again: back in use",
		    kind_name(s->kind), s->zone);
	else if (!usable && (s->usable || !same_trouble(s->why, why)))
		log_warn("%s zone %s out of use: %s", kind_name(s->kind),
		    s->zone, why);
	s->usable = usable;
	metrics_zone_health(s->kind, s->zone, usable);
	if (usable)
		s->why[0] = '\0';
	else
		snprintf(s->why, sizeof(s->why), "%s", why);
}

bool
zone_health_usable(struct zone_health *h, const char *zone,
    enum zone_kind kind)
{
	struct zone_state *s;
	bool usable = true;

	if (h == NULL)
		return true;
	pthread_mutex_lock(&h->lock);
	if ((s = find(h, zone, kind)) != NULL)
		usable = s->usable;
	pthread_mutex_unlock(&h->lock);
	return usable;
}

void
zone_health_fail(struct zone_health *h, const char *zone,
    enum zone_kind kind, const char *why)
{
	struct zone_state *s;

	if (h == NULL)
		return;
	pthread_mutex_lock(&h->lock);
	if ((s = find(h, zone, kind)) != NULL) {
		if (h->running)
			set_state(s, false, why);
		else if (!s->fail_logged) {
			s->fail_logged = true;
			log_warn("%s zone %s: %s", kind_name(kind), zone, why);
		}
	}
	pthread_mutex_unlock(&h->lock);
}

/* ---- probes ---- */

struct probe {
	struct dns_query *pos;	/* must be listed */
	struct dns_query *neg;	/* must not be listed */
};

/* The verdict on one zone from its two probe answers; why gets the
 * reason when it fails.  *missing_test: a domain zone without TEST. */
static bool
judge(const struct zone_state *s, struct probe *p, uint64_t deadline,
    char *why, size_t whylen, bool *missing_test)
{
	char code[48];
	enum dnsbl_answer pos, neg;

	*missing_test = false;
	pos = dnsbl_classify(s->line, p->pos, deadline, code, sizeof(code));
	switch (pos) {
	case DNSBL_ERROR_ANSWER:
		snprintf(why, whylen, "test entry answered with error code "
		    "%s", code);
		return false;
	case DNSBL_TIMEOUT:
		snprintf(why, whylen, "not answering (timeout)");
		return false;
	case DNSBL_FAILURE:
		snprintf(why, whylen, "not answering (server failure)");
		return false;
	case DNSBL_NOT_LISTED:
		if (s->kind == ZONE_IP) {
			snprintf(why, whylen, "test entry 127.0.0.2 is not "
			    "listed");
			return false;
		}
		*missing_test = true;
		break;
	case DNSBL_LISTED:
		break;
	}
	neg = dnsbl_classify(s->line, p->neg, deadline, code, sizeof(code));
	switch (neg) {
	case DNSBL_LISTED:
	case DNSBL_ERROR_ANSWER:
		snprintf(why, whylen, "%s is listed (%s): the zone lists "
		    "everything", s->kind == ZONE_IP ? "127.0.0.1" :
		    "INVALID", code);
		return false;
	case DNSBL_TIMEOUT:
		snprintf(why, whylen, "not answering (timeout)");
		return false;
	case DNSBL_FAILURE:
		snprintf(why, whylen, "not answering (server failure)");
		return false;
	case DNSBL_NOT_LISTED:
		break;
	}
	return true;
}

/* Probes every zone in parallel and updates their states. */
static void
probe_all(struct zone_health *h)
{
	struct probe *p;
	uint64_t deadline;
	size_t i;

	p = xcalloc(h->n ? h->n : 1, sizeof(*p));
	for (i = 0; i < h->n; i++) {
		char name[DNS_NAME_MAX + 2];
		const char *zone = h->z[i].zone;	/* immutable */

		if (h->z[i].kind == ZONE_IP) {
			snprintf(name, sizeof(name), "2.0.0.127.%s", zone);
			p[i].pos = dns_query_start(h->dns, name, DNS_T_A);
			snprintf(name, sizeof(name), "1.0.0.127.%s", zone);
			p[i].neg = dns_query_start(h->dns, name, DNS_T_A);
		} else {
			snprintf(name, sizeof(name), "test.%s", zone);
			p[i].pos = dns_query_start(h->dns, name, DNS_T_A);
			snprintf(name, sizeof(name), "invalid.%s", zone);
			p[i].neg = dns_query_start(h->dns, name, DNS_T_A);
		}
	}
	deadline = clock_ms() + h->timeout_ms;
	for (i = 0; i < h->n; i++) {
		char why[ZONE_WHY_MAX];
		bool good, missing;

		good = judge(&h->z[i], &p[i], deadline, why, sizeof(why),
		    &missing);
		pthread_mutex_lock(&h->lock);
		set_state(&h->z[i], good, why);
		if (good && missing && !h->z[i].missing_test_logged) {
			h->z[i].missing_test_logged = true;
			log_info("uribl zone %s does not list TEST (RFC 5782 "
			    "section 5); kept in use", h->z[i].zone);
		}
		pthread_mutex_unlock(&h->lock);
		dns_query_free(p[i].pos);
		dns_query_free(p[i].neg);
	}
	free(p);
}

static void *
prober(void *arg)
{
	struct zone_health *h = arg;

	pthread_mutex_lock(&h->lock);
	while (!h->stop) {
		struct timespec ts;

		pthread_mutex_unlock(&h->lock);
		probe_all(h);
		pthread_mutex_lock(&h->lock);
		if (h->stop)
			break;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += h->interval_ms / 1000;
		ts.tv_nsec += (long)(h->interval_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (!h->stop && pthread_cond_timedwait(&h->wake, &h->lock,
		    &ts) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

int
zone_health_start(struct zone_health *h, struct dns *dns,
    unsigned interval_ms, unsigned timeout_ms)
{
	pthread_condattr_t ca;

	if (h == NULL || h->n == 0 || interval_ms == 0 || h->running)
		return 0;
	/* the wait above counts on the monotonic clock */
	pthread_cond_destroy(&h->wake);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->wake, &ca);
	pthread_condattr_destroy(&ca);
	h->dns = dns;
	h->interval_ms = interval_ms;
	h->timeout_ms = timeout_ms;
	h->running = true;
	if (pthread_create(&h->thread, NULL, prober, h) != 0) {
		h->running = false;
		return -1;
	}
	return 0;
}

void
zone_health_free(struct zone_health *h)
{
	size_t i;

	if (h == NULL)
		return;
	if (h->running) {
		pthread_mutex_lock(&h->lock);
		h->stop = true;
		pthread_cond_broadcast(&h->wake);
		pthread_mutex_unlock(&h->lock);
		pthread_join(h->thread, NULL);
	}
	for (i = 0; i < h->n; i++)
		free(h->z[i].zone);
	free(h->z);
	pthread_cond_destroy(&h->wake);
	pthread_mutex_destroy(&h->lock);
	free(h);
}
