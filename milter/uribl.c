/*
 * uribl.c - SURBL / URIBL lookups of the links of a message.  See uribl.h.
 */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "dnsbl.h"
#include "metrics.h"
#include "uribl.h"
#include "util.h"

#define URIBL_SUMMARY_MAX	1024

struct uribl_q {
	size_t key;			/* index into keys */
	const struct pol_dnsbl *zone;	/* borrows the policy */
	struct dns_query *q;		/* owns */
	char *host;			/* owns; the host name queried for
					 * a zone with "labels", NULL when
					 * the key itself is */
};

struct uribl_msg {
	struct dns *dns;		/* borrows */
	const struct policy *pol;	/* borrows */
	struct zone_health *health;	/* borrows */
	unsigned max_lookups;
	char **keys;			/* owns */
	size_t nkeys;
	unsigned nhostq;		/* host-name queries ("labels") */
	unsigned skipped;
	struct uribl_q *qs;		/* owns */
	size_t nqs;
	bool done;
	struct uribl_result res;
	const char **listed;		/* owns the array; borrows keys */
	char summary[URIBL_SUMMARY_MAX];
};

struct uribl_msg *
uribl_new(struct dns *dns, const struct policy *pol,
    struct zone_health *health, unsigned max_lookups)
{
	struct uribl_msg *u;

	if (dns == NULL || pol_uribl_count(pol) == 0)
		return NULL;
	u = xcalloc(1, sizeof(*u));
	u->dns = dns;
	u->pol = pol;
	u->health = health;
	u->max_lookups = max_lookups;
	return u;
}

void
uribl_free(struct uribl_msg *u)
{
	size_t i;

	if (u == NULL)
		return;
	for (i = 0; i < u->nqs; i++) {
		dns_query_free(u->qs[i].q);
		free(u->qs[i].host);
	}
	free(u->qs);
	for (i = 0; i < u->nkeys; i++)
		free(u->keys[i]);
	free(u->keys);
	free(u->listed);
	free(u);
}

/* KEY.ZONE for a domain, the reversed octets for an IPv4 address. */
static int
query_name(const char *key, bool is_ip, const char *zone, char *out,
    size_t len)
{
	int n;

	if (is_ip) {
		struct pol_ip ip;

		memset(&ip, 0, sizeof(ip));
		if (inet_pton(AF_INET, key, ip.addr) != 1)
			return -1;
		ip.family = AF_INET;
		return dnsbl_ip_name(&ip, zone, out, len);
	}
	n = snprintf(out, len, "%s.%s", key, zone);
	return n < 0 || (size_t)n >= len || n > DNS_NAME_MAX ? -1 : 0;
}

void
uribl_key(struct uribl_msg *u, const char *key, bool is_ip)
{
	size_t i, n;

	if (u == NULL || u->done)
		return;
	if (u->nkeys + u->nhostq >= u->max_lookups) {
		u->skipped++;
		return;
	}
	u->keys = xreallocarray(u->keys, u->nkeys + 1, sizeof(char *));
	u->keys[u->nkeys] = xstrdup(key);
	n = pol_uribl_count(u->pol);
	for (i = 0; i < n; i++) {
		const struct pol_dnsbl *z = pol_uribl_get(u->pol, i);
		char name[DNS_NAME_MAX + 1];

		if (!zone_health_usable(u->health, z->zone, ZONE_DOMAIN) ||
		    query_name(key, is_ip, z->zone, name, sizeof(name)) != 0)
			continue;
		u->qs = xreallocarray(u->qs, u->nqs + 1, sizeof(*u->qs));
		u->qs[u->nqs].key = u->nkeys;
		u->qs[u->nqs].zone = z;
		u->qs[u->nqs].host = NULL;
		u->qs[u->nqs].q = dns_query_start(u->dns, name, DNS_T_A);
		u->nqs++;
	}
	u->nkeys++;
}

bool
uribl_wants_hosts(const struct policy *pol)
{
	size_t i, n = pol_uribl_count(pol);

	for (i = 0; i < n; i++)
		if (pol_uribl_get(pol, i)->labels > 0)
			return true;
	return false;
}

/* The last n labels of name (all of it when it has fewer). */
static const char *
last_labels(const char *name, unsigned n)
{
	const char *p = name + strlen(name);

	while (p > name) {
		if (p[-1] == '.' && --n == 0)
			return p;
		p--;
	}
	return name;
}

static unsigned
count_labels(const char *name)
{
	unsigned n = 1;

	for (; *name != '\0'; name++)
		n += *name == '.';
	return n;
}

void
uribl_host(struct uribl_msg *u, const char *host, const char *key)
{
	size_t i, j, k, n;

	if (u == NULL || u->done)
		return;
	for (k = 0; k < u->nkeys; k++)
		if (strcmp(u->keys[k], key) == 0)
			break;
	if (k == u->nkeys)
		return;		/* the key itself was over the limit */
	n = pol_uribl_count(u->pol);
	for (i = 0; i < n; i++) {
		const struct pol_dnsbl *z = pol_uribl_get(u->pol, i);
		const char *cut;
		char name[DNS_NAME_MAX + 1];

		if (z->labels == 0)
			continue;
		cut = last_labels(host, z->labels);
		/* no longer than the key: the key's query covers it */
		if (count_labels(cut) <= count_labels(key))
			continue;
		for (j = 0; j < u->nqs; j++)
			if (u->qs[j].zone == z && u->qs[j].host != NULL &&
			    strcmp(u->qs[j].host, cut) == 0)
				break;
		if (j < u->nqs)
			continue;
		if (u->nkeys + u->nhostq >= u->max_lookups) {
			u->skipped++;
			continue;
		}
		if (!zone_health_usable(u->health, z->zone, ZONE_DOMAIN) ||
		    query_name(cut, false, z->zone, name, sizeof(name)) != 0)
			continue;
		u->qs = xreallocarray(u->qs, u->nqs + 1, sizeof(*u->qs));
		u->qs[u->nqs].key = k;
		u->qs[u->nqs].zone = z;
		u->qs[u->nqs].host = xstrdup(cut);
		u->qs[u->nqs].q = dns_query_start(u->dns, name, DNS_T_A);
		u->nqs++;
		u->nhostq++;
	}
}

const struct uribl_result *
uribl_result(struct uribl_msg *u, uint64_t deadline)
{
	static const char *const none[] = { NULL };
	static const struct uribl_result empty = {
		.domains = (const char **)none
	};
	bool *key_listed, *zone_listed;
	struct buf sum;
	size_t i, nz;

	if (u == NULL)
		return &empty;
	if (u->done)
		return &u->res;
	u->done = true;
	nz = pol_uribl_count(u->pol);
	key_listed = xcalloc(u->nkeys + 1, sizeof(bool));
	zone_listed = xcalloc(nz + 1, sizeof(bool));
	buf_init(&sum, URIBL_SUMMARY_MAX - 1);
	buf_appendf(&sum, "keys:%zu", u->nkeys);
	if (u->skipped)
		buf_appendf(&sum, ",over_limit:%u", u->skipped);
	for (i = 0; i < u->nqs; i++) {
		struct uribl_q *q = &u->qs[i];
		char code[INET_ADDRSTRLEN];
		enum dnsbl_answer a;
		size_t z;

		a = dnsbl_classify(q->zone, q->q, deadline, code,
		    sizeof(code));
		metrics_zone_lookup(ZONE_DOMAIN, q->zone->zone, (int)a);
		switch (a) {
		case DNSBL_LISTED:
			key_listed[q->key] = true;
			for (z = 0; z < nz; z++)
				if (pol_uribl_get(u->pol, z) == q->zone)
					zone_listed[z] = true;
			buf_appendf(&sum, ",listed:%s@%s(%s)", q->host != NULL ?
			    q->host : u->keys[q->key], q->zone->zone, code);
			break;
		case DNSBL_ERROR_ANSWER:
			u->res.errors++;
			zone_health_fail(u->health, q->zone->zone, ZONE_DOMAIN,
			    "error answer to a lookup");
			break;
		case DNSBL_TIMEOUT:
			u->res.timeouts++;
			break;
		case DNSBL_FAILURE:
			u->res.errors++;
			break;
		case DNSBL_NOT_LISTED:
			break;
		}
	}
	if (u->res.timeouts)
		buf_appendf(&sum, ",timeouts:%u", u->res.timeouts);
	if (u->res.errors)
		buf_appendf(&sum, ",errors:%u", u->res.errors);
	u->listed = xcalloc(u->nkeys + 1, sizeof(char *));
	for (i = 0; i < u->nkeys; i++)
		if (key_listed[i])
			u->listed[u->res.ndomains++] = u->keys[i];
	for (i = 0; i < nz; i++)
		if (zone_listed[i])
			u->res.weight += pol_uribl_get(u->pol, i)->weight;
	u->res.listed = u->res.ndomains > 0;
	u->res.domains = u->listed;
	u->res.keys = (unsigned)u->nkeys;
	u->res.skipped = u->skipped;
	metrics_uribl_links(u->nkeys, u->skipped);
	snprintf(u->summary, sizeof(u->summary), "%s", sum.p ? sum.p : "");
	buf_free(&sum);
	free(key_listed);
	free(zone_listed);
	return &u->res;
}

const char *
uribl_summary(const struct uribl_msg *u)
{
	return u != NULL ? u->summary : "";
}
