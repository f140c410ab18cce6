/*
 * dnsbl.c - client-address blocklists and the answer rules shared with
 * URIBL.  See dnsbl.h.
 */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dnsbl.h"
#include "dns.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define DNSBL_REASON_MAX	512	/* bytes of TXT reason kept */
#define DNSBL_SUMMARY_MAX	1024

int
dnsbl_ip_name(const struct pol_ip *ip, const char *zone, char *out,
    size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	char rev[64 + 1];
	size_t o = 0;
	int i, n;

	if (ip == NULL || zone == NULL || outlen == 0)
		return -1;
	if (ip->family == AF_INET)
		snprintf(rev, sizeof(rev), "%u.%u.%u.%u", ip->addr[3],
		    ip->addr[2], ip->addr[1], ip->addr[0]);
	else if (ip->family == AF_INET6) {
		for (i = 15; i >= 0; i--) {
			rev[o++] = hex[ip->addr[i] & 0xf];
			rev[o++] = '.';
			rev[o++] = hex[ip->addr[i] >> 4];
			rev[o++] = '.';
		}
		rev[o - 1] = '\0';
	} else
		return -1;
	n = snprintf(out, outlen, "%s.%s", rev, zone);
	if (n < 0 || (size_t)n >= outlen || n > DNS_NAME_MAX)
		return -1;
	return 0;
}

/* 127.0.0.1 and 127.255.255.0/24 are what big lists answer for "you may
 * not query" / "bad query"; anything outside 127/8 is a list gone wrong
 * (or a parked domain's wildcard). */
static bool
error_answer(uint32_t a)
{
	return (a >> 24) != 127 || a == 0x7f000001 || (a >> 8) == 0x7fffff;
}

enum dnsbl_answer
dnsbl_classify(const struct pol_dnsbl *d, struct dns_query *q,
    uint64_t deadline, char *code, size_t codelen)
{
	enum dnsbl_answer res = DNSBL_NOT_LISTED;
	size_t i, n, len;

	if (code != NULL && codelen > 0)
		code[0] = '\0';
	switch (dns_query_wait(q, deadline)) {
	case DNS_OK:
		break;
	case DNS_NODATA:
	case DNS_NXDOMAIN:
		return DNSBL_NOT_LISTED;
	case DNS_TIMEOUT:
		return DNSBL_TIMEOUT;
	default:
		return DNSBL_FAILURE;
	}
	n = dns_query_count(q);
	for (i = 0; i < n; i++) {
		const unsigned char *rd = dns_query_rdata(q, i, &len);
		struct pol_ip ans;
		uint32_t a;

		if (len != 4)
			return DNSBL_FAILURE;
		a = (uint32_t)rd[0] << 24 | (uint32_t)rd[1] << 16 |
		    (uint32_t)rd[2] << 8 | rd[3];
		memset(&ans, 0, sizeof(ans));
		ans.family = AF_INET;
		memcpy(ans.addr, rd, 4);
		/* one error answer spoils the whole answer: a list that
		 * mixes them is not telling the truth about this address */
		if (error_answer(a)) {
			if (code != NULL)
				inet_ntop(AF_INET, rd, code, (socklen_t)codelen);
			return DNSBL_ERROR_ANSWER;
		}
		if (res != DNSBL_LISTED && pol_dnsbl_match(d, &ans)) {
			res = DNSBL_LISTED;
			if (code != NULL)
				inet_ntop(AF_INET, rd, code, (socklen_t)codelen);
		}
	}
	return res;
}

const char *
dnsbl_answer_name(enum dnsbl_answer a)
{
	switch (a) {
	case DNSBL_NOT_LISTED:
		return "clean";
	case DNSBL_LISTED:
		return "listed";
	case DNSBL_ERROR_ANSWER:
		return "error-answer";
	case DNSBL_TIMEOUT:
		return "timeout";
	case DNSBL_FAILURE:
		return "failure";
	}
	return "?";
}

struct dnsbl_zone_q {
	const struct pol_dnsbl *zone;	/* borrows the policy */
	struct dns_query *a;		/* owns; NULL: zone skipped */
	struct dns_query *txt;		/* owns; may be NULL */
	enum dnsbl_answer answer;
	char code[INET_ADDRSTRLEN];
};

struct dnsbl_conn {
	struct zone_health *health;	/* borrows (the snapshot's) */
	struct dnsbl_zone_q *zq;	/* owns */
	size_t nzq;
	bool done;
	struct dnsbl_result res;
	const char **zones;		/* owns the array */
	char reason[DNSBL_REASON_MAX + 1];
	char summary[DNSBL_SUMMARY_MAX];
};

struct dnsbl_conn *
dnsbl_start(struct dns *dns, const struct policy *pol,
    struct zone_health *health, const struct pol_ip *ip, bool want_reason)
{
	struct dnsbl_conn *c;
	size_t i, n = pol_dnsbl_count(pol);

	if (n == 0 || dns == NULL || ip == NULL ||
	    (ip->family != AF_INET && ip->family != AF_INET6))
		return NULL;
	c = xcalloc(1, sizeof(*c));
	c->health = health;
	c->zq = xcalloc(n, sizeof(*c->zq));
	c->nzq = n;
	c->zones = xcalloc(n + 1, sizeof(char *));
	for (i = 0; i < n; i++) {
		struct dnsbl_zone_q *z = &c->zq[i];
		char name[DNS_NAME_MAX + 1];

		z->zone = pol_dnsbl_get(pol, i);
		if (!zone_health_usable(health, z->zone->zone, ZONE_IP) ||
		    dnsbl_ip_name(ip, z->zone->zone, name, sizeof(name)) != 0)
			continue;
		z->a = dns_query_start(dns, name, DNS_T_A);
		if (want_reason)
			z->txt = dns_query_start(dns, name, DNS_T_TXT);
	}
	return c;
}

void
dnsbl_free(struct dnsbl_conn *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nzq; i++) {
		dns_query_free(c->zq[i].a);
		dns_query_free(c->zq[i].txt);
	}
	free(c->zq);
	free(c->zones);
	free(c);
}

/* The listing reason: the first TXT string of the answer, cleaned. */
static void
fetch_reason(struct dns_query *q, uint64_t deadline, char *out, size_t len)
{
	const unsigned char *rd;
	size_t rdlen;
	char txt[DNSBL_REASON_MAX + 1];

	if (q == NULL || dns_query_wait(q, deadline) != DNS_OK ||
	    dns_query_count(q) == 0)
		return;
	rd = dns_query_rdata(q, 0, &rdlen);
	if (dns_txt_join(rd, rdlen, txt, sizeof(txt), 0) < 0) {
		/* longer than we keep: the first character-string will do */
		if (rdlen == 0 || rd[0] == 0 || (size_t)rd[0] + 1 > rdlen)
			return;
		/* a character-string is at most 255 bytes: it fits */
		memcpy(txt, rd + 1, rd[0]);
		txt[rd[0]] = '\0';
	}
	str_escape_log(out, len, txt, strlen(txt));
}

const struct dnsbl_result *
dnsbl_result(struct dnsbl_conn *c, uint64_t deadline)
{
	static const char *const no_zones[] = { NULL };
	static const struct dnsbl_result empty = {
		.zones = (const char **)no_zones, .reason = ""
	};
	struct buf sum;
	size_t i;

	if (c == NULL)
		return &empty;
	if (c->done)
		return &c->res;
	c->done = true;
	c->res.zones = c->zones;
	c->res.reason = c->reason;
	buf_init(&sum, DNSBL_SUMMARY_MAX - 1);
	for (i = 0; i < c->nzq; i++) {
		struct dnsbl_zone_q *z = &c->zq[i];

		if (z->a == NULL) {
			metrics_zone_lookup(ZONE_IP, z->zone->zone,
			    METRICS_ZONE_UNUSED);
			c->res.skipped++;
			buf_appendf(&sum, "%s%s=unused", sum.len ? "," : "",
			    z->zone->zone);
			continue;
		}
		z->answer = dnsbl_classify(z->zone, z->a, deadline, z->code,
		    sizeof(z->code));
		metrics_zone_lookup(ZONE_IP, z->zone->zone, (int)z->answer);
		switch (z->answer) {
		case DNSBL_LISTED:
			if (!c->res.listed)
				fetch_reason(z->txt, deadline, c->reason,
				    sizeof(c->reason));
			c->res.listed = true;
			c->zones[c->res.nzones++] = z->zone->zone;
			c->res.weight += z->zone->weight;
			break;
		case DNSBL_ERROR_ANSWER:
			c->res.errors++;
			zone_health_fail(c->health, z->zone->zone, ZONE_IP,
			    "error answer to a lookup");
			break;
		case DNSBL_TIMEOUT:
			c->res.timeouts++;
			break;
		case DNSBL_FAILURE:
			c->res.errors++;
			break;
		case DNSBL_NOT_LISTED:
			break;
		}
		buf_appendf(&sum, "%s%s=%s%s%s%s", sum.len ? "," : "",
		    z->zone->zone, dnsbl_answer_name(z->answer),
		    z->code[0] ? "(" : "", z->code, z->code[0] ? ")" : "");
	}
	snprintf(c->summary, sizeof(c->summary), "%s",
	    sum.p != NULL ? sum.p : "");
	buf_free(&sum);
	return &c->res;
}

const char *
dnsbl_summary(const struct dnsbl_conn *c)
{
	return c != NULL ? c->summary : "";
}
