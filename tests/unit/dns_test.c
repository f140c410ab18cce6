/*
 * dns_test.c - milter/dns.c's answer cache, on a resolver that answers
 * from local data only (no network): a repeated name and type is answered
 * from the cache with the same records, whatever its case or trailing
 * dot; another type of the same name is not; a record with TTL 0 is never
 * cached; negative answers are cached only with a TTL (SOA minimum);
 * portcullis_dns_cache_hits_total counts the hits.
 * Owns: the resolver of each test.
 */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dns.h"
#include "metrics.h"
#include "util.h"

static const char *const data[] = {
	"a.test. 300 IN A 192.0.2.1",
	"a.test. 300 IN A 192.0.2.3",
	"zero.test. 0 IN A 192.0.2.2",
	"txt.test. 300 IN TXT \"hello\"",
	NULL
};

static struct dns *
mk(void)
{
	struct dns_options o = { NULL, data, 1 };
	const char *err;
	struct dns *d = dns_new(&o, &err);

	assert_non_null(d);
	return d;
}

/* status of one lookup; the records' first bytes in *first (A: 4) */
static enum dns_status
ask(struct dns *d, const char *name, enum dns_type t, size_t *n,
    unsigned char first[2][4])
{
	struct dns_query *q = dns_query_start(d, name, t);
	enum dns_status st = dns_query_wait(q, clock_ms() + 5000);
	size_t i;

	*n = dns_query_count(q);
	for (i = 0; i < *n && i < 2; i++) {
		size_t len;
		const unsigned char *r = dns_query_rdata(q, i, &len);

		assert_non_null(r);
		memset(first[i], 0, 4);
		memcpy(first[i], r, len < 4 ? len : 4);
	}
	dns_query_free(q);
	return st;
}

static void
test_repeat_is_a_hit(void **state)
{
	struct dns *d = mk();
	unsigned char r1[2][4], r2[2][4];
	size_t n1, n2;

	(void)state;
	assert_int_equal(ask(d, "a.test", DNS_T_A, &n1, r1), DNS_OK);
	assert_int_equal(n1, 2);
	assert_int_equal(dns_cache_hits(d), 0);
	assert_int_equal(ask(d, "a.test", DNS_T_A, &n2, r2), DNS_OK);
	assert_int_equal(dns_cache_hits(d), 1);
	assert_int_equal(n2, 2);
	assert_memory_equal(r1, r2, sizeof(r1));
	/* the same name spelt differently */
	assert_int_equal(ask(d, "A.Test.", DNS_T_A, &n2, r2), DNS_OK);
	assert_int_equal(dns_cache_hits(d), 2);
	assert_memory_equal(r1, r2, sizeof(r1));
	/* another type is another question */
	assert_int_equal(ask(d, "a.test", DNS_T_TXT, &n2, r2), DNS_NODATA);
	assert_int_equal(dns_cache_hits(d), 2);
	assert_int_equal(ask(d, "txt.test", DNS_T_TXT, &n2, r2), DNS_OK);
	assert_int_equal(ask(d, "txt.test", DNS_T_TXT, &n2, r2), DNS_OK);
	assert_int_equal(dns_cache_hits(d), 3);
	assert_int_equal(n2, 1);
	assert_memory_equal(r2[0], "\005hel", 4);
	dns_free(d);
}

static void
test_ttl_zero_not_cached(void **state)
{
	struct dns *d = mk();
	unsigned char r[2][4];
	size_t n;

	(void)state;
	assert_int_equal(ask(d, "zero.test", DNS_T_A, &n, r), DNS_OK);
	assert_int_equal(ask(d, "zero.test", DNS_T_A, &n, r), DNS_OK);
	assert_int_equal(n, 1);
	assert_memory_equal(r[0], "\300\000\002\002", 4);
	assert_int_equal(dns_cache_hits(d), 0);
	dns_free(d);
}

static void
test_metric_counts_hits(void **state)
{
	struct dns *d = mk();
	unsigned char r[2][4];
	size_t n, len;
	char *pg;

	(void)state;
	metrics_reset();
	assert_int_equal(ask(d, "a.test", DNS_T_A, &n, r), DNS_OK);
	assert_int_equal(ask(d, "a.test", DNS_T_A, &n, r), DNS_OK);
	assert_int_equal(ask(d, "a.test", DNS_T_A, &n, r), DNS_OK);
	pg = metrics_render(&len);
	assert_non_null(pg);
	assert_non_null(strstr(pg, "\nportcullis_dns_cache_hits_total 2\n"));
	assert_non_null(strstr(pg, "\nportcullis_dns_queries_total 3\n"));
	assert_non_null(strstr(pg,
	    "\nportcullis_dns_results_total{status=\"ok\"} 3\n"));
	free(pg);
	dns_free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_repeat_is_a_hit),
		cmocka_unit_test(test_ttl_zero_not_cached),
		cmocka_unit_test(test_metric_counts_hits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
