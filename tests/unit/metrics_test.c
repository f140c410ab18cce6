/*
 * metrics_test.c - milter/metrics.c and milter/metrics_http.c: label
 * escaping, the exposition text after known counts (exact lines), the
 * histogram's cumulative buckets, rule and zone labels across policy
 * reloads and past the table's bound, listen address parsing, counting
 * from several threads during reloads and scrapes, and the HTTP listener
 * (GET /metrics, 404 for anything else) on loopback.
 * Owns: nothing; each test starts from metrics_reset().
 */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "metrics.h"
#include "metrics_http.h"
#include "policy.h"
#include "util.h"

/* ---- helpers ---- */

static struct policy *
policy_from(const char *text)
{
	struct pol_diag pd = { 0 };
	struct policy *p = pol_load_buffer("test.policy", text, strlen(text),
	    &pd);

	if (p == NULL) {
		char line[512];
		size_t i;

		for (i = 0; i < pd.n; i++) {
			pol_diag_format(&pd.items[i], line, sizeof(line));
			print_error("%s\n", line);
		}
	}
	pol_diag_free(&pd);
	assert_non_null(p);
	return p;
}

static char *
page(void)
{
	size_t len = 0;
	char *p = metrics_render(&len);

	assert_non_null(p);
	assert_int_equal(strlen(p), len);
	assert_true(len > 0 && p[len - 1] == '\n');
	return p;
}

/* Whether the page has this exact line. */
static bool
has_line(const char *pg, const char *line)
{
	size_t n = strlen(line);
	const char *p = pg;

	while ((p = strstr(p, line)) != NULL) {
		if ((p == pg || p[-1] == '\n') && p[n] == '\n')
			return true;
		p += n;
	}
	return false;
}

#define ASSERT_LINE(pg, line) do {					\
	if (!has_line((pg), (line))) {					\
		print_error("missing line: %s\n", (line));		\
		fail();							\
	}								\
} while (0)
#define ASSERT_NO_LINE_WITH(pg, text) do {				\
	if (strstr((pg), (text)) != NULL) {				\
		print_error("unexpected: %s\n", (text));		\
		fail();							\
	}								\
} while (0)

static int
reset(void **state)
{
	(void)state;
	metrics_reset();
	return 0;
}

/* ---- escaping ---- */

struct esc_case {
	const char *in;
	const char *out;
};

static const struct esc_case esc_cases[] = {
	{ "plain", "plain" },
	{ "", "" },
	{ "back\\slash", "back\\\\slash" },
	{ "say \"hi\"", "say \\\"hi\\\"" },
	{ "line1\nline2", "line1\\nline2" },
	{ "tab\tand\rcr", "tab\tand\rcr" },	/* only \\, \" and \n */
	{ "caf\xc3\xa9", "caf\xc3\xa9" },	/* UTF-8 kept */
	{ "\xf0\x9f\x93\xa8", "\xf0\x9f\x93\xa8" },	/* 4 bytes */
	{ "a\xff" "b", "a\xef\xbf\xbd" "b" },	/* invalid byte */
	{ "\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd" },	/* overlong */
	{ "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
	{ "cut\xe2\x82", "cut\xef\xbf\xbd\xef\xbf\xbd" },	/* truncated */
	{ "\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
	  "\xef\xbf\xbd" },				/* past U+10FFFF */
};

static void
test_escape(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(esc_cases) / sizeof(esc_cases[0]); i++) {
		struct buf b;

		buf_init(&b, 1024);
		assert_int_equal(metrics_escape_label(&b, esc_cases[i].in), 0);
		assert_string_equal(b.p != NULL ? b.p : "", esc_cases[i].out);
		buf_free(&b);
	}
}

static void
test_escape_limit(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 4);
	/* never truncated silently */
	assert_int_equal(metrics_escape_label(&b, "a\"b\"c"), -1);
	buf_free(&b);
}

/* ---- the page ---- */

static const char policy_a[] =
    "dnsbl bl.test codes 127.0.0.2\n"
    "dnsbl other.test\n"
    "uribl uri.test\n"
    "rule listed: when dnsbl.listed then reject\n"
    "rule watch monitor: when spf is fail then reject\n"
    "rule b-1.x: when mail_from is \"b@x.test\" then tempfail\n"
    "rule old: when mail_from is \"o@x.test\" then reject\n"
    "default accept\n";

static const char policy_b[] =
    "dnsbl bl.test codes 127.0.0.2\n"
    "uribl uri.test\n"
    "rule listed: when dnsbl.listed then reject\n"
    "rule b-1.x: when mail_from is \"b@x.test\" then tempfail\n"
    "rule new: when mail_from is \"n@x.test\" then quarantine\n"
    "default accept\n";

static void
test_families_and_counts(void **state)
{
	struct policy *pol = policy_from(policy_a);
	char *pg;

	(void)state;
	metrics_policy(pol);
	metrics_message(POL_ACT_REJECT, "listed");
	metrics_message(POL_ACT_REJECT, "listed");
	metrics_message(POL_ACT_TEMPFAIL, "b-1.x");
	metrics_message(POL_ACT_ACCEPT, "default");
	metrics_message(POL_ACT_TEMPFAIL, "on_error");
	metrics_message(POL_ACT_QUARANTINE, "not-a-rule");
	metrics_message(POL_ACT_NONE, "");
	metrics_spf(false, SPF_R_PASS);
	metrics_spf(false, SPF_R_PASS);
	metrics_spf(true, SPF_R_SOFTFAIL);
	metrics_dkim("none");
	metrics_dkim("pass");
	metrics_dkim("bogus");		/* not a result: not counted */
	metrics_dmarc(DMARC_R_FAIL);
	metrics_zone_lookup(ZONE_IP, "bl.test", DNSBL_LISTED);
	metrics_zone_lookup(ZONE_IP, "BL.TEST", DNSBL_NOT_LISTED);
	metrics_zone_lookup(ZONE_IP, "other.test", METRICS_ZONE_UNUSED);
	metrics_zone_lookup(ZONE_IP, "unknown.test", DNSBL_LISTED);
	metrics_zone_lookup(ZONE_DOMAIN, "uri.test", DNSBL_TIMEOUT);
	metrics_zone_lookup(ZONE_DOMAIN, "uri.test", DNSBL_ERROR_ANSWER);
	metrics_zone_health(ZONE_DOMAIN, "uri.test", false);
	metrics_uribl_links(3, 1);
	metrics_greylist(GREY_NEW);
	metrics_greylist(GREY_NEW);
	metrics_greylist(GREY_ALLOWED);
	metrics_greylist(-1);
	metrics_dns_query();
	metrics_dns_query();
	metrics_dns_query();
	metrics_dns_result(DNS_OK);
	metrics_dns_result(DNS_TIMEOUT);
	metrics_dns_cache_hit();
	metrics_dns_cache_hit();
	metrics_reload(true);
	metrics_reload(false);
	metrics_reload(false);

	pg = page();
	ASSERT_LINE(pg, "# HELP portcullis_messages_total Messages by final "
	    "action (none: ended without a verdict).");
	ASSERT_LINE(pg, "# TYPE portcullis_messages_total counter");
	ASSERT_LINE(pg, "portcullis_messages_total{action=\"accept\"} 1");
	ASSERT_LINE(pg, "portcullis_messages_total{action=\"reject\"} 2");
	ASSERT_LINE(pg, "portcullis_messages_total{action=\"tempfail\"} 2");
	ASSERT_LINE(pg, "portcullis_messages_total{action=\"quarantine\"} 1");
	ASSERT_LINE(pg, "portcullis_messages_total{action=\"strip\"} 0");
	ASSERT_LINE(pg, "portcullis_messages_total{action=\"none\"} 1");
	ASSERT_LINE(pg, "portcullis_messages_on_error_total 1");
	ASSERT_LINE(pg, "# TYPE portcullis_messages_by_rule_total counter");
	ASSERT_LINE(pg, "portcullis_messages_by_rule_total{rule=\"listed\"} 2");
	ASSERT_LINE(pg, "portcullis_messages_by_rule_total{rule=\"b-1.x\"} 1");
	ASSERT_LINE(pg, "portcullis_messages_by_rule_total{rule=\"old\"} 0");
	ASSERT_LINE(pg, "portcullis_messages_by_rule_total{rule=\"default\"} 1");
	ASSERT_LINE(pg,
	    "portcullis_messages_by_rule_total{rule=\"on_error\"} 1");
	ASSERT_LINE(pg, "portcullis_messages_by_rule_total{rule=\"strip\"} 0");
	ASSERT_LINE(pg,
	    "portcullis_messages_by_rule_total{rule=\"(other)\"} 1");
	/* a monitor rule never decides: no series */
	ASSERT_NO_LINE_WITH(pg, "rule=\"watch\"");
	ASSERT_LINE(pg, "portcullis_spf_results_total{identity=\"mailfrom\","
	    "result=\"pass\"} 2");
	ASSERT_LINE(pg, "portcullis_spf_results_total{identity=\"mailfrom\","
	    "result=\"fail\"} 0");
	ASSERT_LINE(pg, "portcullis_spf_results_total{identity=\"helo\","
	    "result=\"softfail\"} 1");
	ASSERT_LINE(pg, "portcullis_dkim_results_total{result=\"none\"} 1");
	ASSERT_LINE(pg, "portcullis_dkim_results_total{result=\"pass\"} 1");
	ASSERT_LINE(pg, "portcullis_dmarc_results_total{result=\"fail\"} 1");
	ASSERT_LINE(pg, "portcullis_dmarc_results_total{result=\"pass\"} 0");
	ASSERT_LINE(pg, "portcullis_dnsbl_lookups_total{zone=\"bl.test\","
	    "result=\"listed\"} 1");
	ASSERT_LINE(pg, "portcullis_dnsbl_lookups_total{zone=\"bl.test\","
	    "result=\"clean\"} 1");
	ASSERT_LINE(pg, "portcullis_dnsbl_lookups_total{zone=\"other.test\","
	    "result=\"unused\"} 1");
	ASSERT_NO_LINE_WITH(pg, "unknown.test");
	ASSERT_LINE(pg, "portcullis_uribl_lookups_total{zone=\"uri.test\","
	    "result=\"timeout\"} 1");
	ASSERT_LINE(pg, "portcullis_uribl_lookups_total{zone=\"uri.test\","
	    "result=\"error-answer\"} 1");
	ASSERT_NO_LINE_WITH(pg, "portcullis_uribl_lookups_total{zone=\""
	    "uri.test\",result=\"unused\"}");
	ASSERT_LINE(pg, "portcullis_uribl_links_total 3");
	ASSERT_LINE(pg, "portcullis_uribl_links_over_limit_total 1");
	ASSERT_LINE(pg, "# TYPE portcullis_zone_healthy gauge");
	ASSERT_LINE(pg,
	    "portcullis_zone_healthy{kind=\"dnsbl\",zone=\"bl.test\"} 1");
	ASSERT_LINE(pg,
	    "portcullis_zone_healthy{kind=\"uribl\",zone=\"uri.test\"} 0");
	ASSERT_LINE(pg, "portcullis_greylist_checks_total{state=\"new\"} 2");
	ASSERT_LINE(pg,
	    "portcullis_greylist_checks_total{state=\"allowed\"} 1");
	ASSERT_LINE(pg, "portcullis_greylist_store_errors_total 1");
	ASSERT_LINE(pg, "portcullis_dns_queries_total 3");
	ASSERT_LINE(pg, "portcullis_dns_results_total{status=\"ok\"} 1");
	ASSERT_LINE(pg, "portcullis_dns_results_total{status=\"timeout\"} 1");
	ASSERT_LINE(pg, "portcullis_dns_results_total{status=\"error\"} 0");
	ASSERT_LINE(pg, "# TYPE portcullis_dns_cache_hits_total counter");
	ASSERT_LINE(pg, "portcullis_dns_cache_hits_total 2");
	ASSERT_LINE(pg, "portcullis_reloads_total{result=\"ok\"} 1");
	ASSERT_LINE(pg, "portcullis_reloads_total{result=\"failed\"} 2");
	ASSERT_LINE(pg, "portcullis_build_info{version=\"" PACKAGE_VERSION
	    "\"} 1");
	ASSERT_LINE(pg, "# TYPE portcullis_stage_duration_seconds histogram");
	free(pg);
	pol_free(pol);
}

/* Every sample's family was announced by HELP and TYPE before it, and
 * the lines of a family are together. */
static void
test_structure(void **state)
{
	struct policy *pol = policy_from(policy_a);
	char *pg, *line, *save = NULL, seen[64][80], cur[80] = "";
	size_t nseen = 0, i;

	(void)state;
	metrics_policy(pol);
	pg = page();
	for (line = strtok_r(pg, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char name[80];

		if (strncmp(line, "# HELP ", 7) == 0) {
			assert_true(sscanf(line + 7, "%79s", name) == 1);
			for (i = 0; i < nseen; i++)
				assert_string_not_equal(seen[i], name);
			assert_true(nseen < 64);
			snprintf(seen[nseen++], sizeof(seen[0]), "%s", name);
			snprintf(cur, sizeof(cur), "%s", name);
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			assert_true(sscanf(line + 7, "%79s", name) == 1);
			assert_string_equal(name, cur);
			continue;
		}
		assert_true(line[0] != '#');
		/* a sample: its name is the family's, or a histogram's
		 * _bucket/_sum/_count of it */
		assert_true(cur[0] != '\0');
		assert_memory_equal(line, cur, strlen(cur));
		assert_true(strchr("{ _", line[strlen(cur)]) != NULL);
	}
	free(pg);
	pol_free(pol);
}

static void
test_histogram(void **state)
{
	char *pg;

	(void)state;
	metrics_observe_stage(POL_STAGE_CONNECT, 100000);	/* 0.1 ms */
	metrics_observe_stage(POL_STAGE_CONNECT, 500000);	/* on bound */
	metrics_observe_stage(POL_STAGE_CONNECT, 3000000);	/* 3 ms */
	metrics_observe_stage(POL_STAGE_CONNECT, 40000000000ULL); /* 40 s */
	metrics_observe_stage(POL_STAGE_EOM, 2000000000ULL);	/* 2 s */
	pg = page();
#define B(le, n) "portcullis_stage_duration_seconds_bucket{stage=\"connect\"" \
	",le=\"" le "\"} " #n
	ASSERT_LINE(pg, B("0.0005", 2));	/* le: less or equal */
	ASSERT_LINE(pg, B("0.001", 2));
	ASSERT_LINE(pg, B("0.0025", 2));
	ASSERT_LINE(pg, B("0.005", 3));
	ASSERT_LINE(pg, B("30", 3));
	ASSERT_LINE(pg, B("+Inf", 4));
#undef B
	ASSERT_LINE(pg, "portcullis_stage_duration_seconds_count"
	    "{stage=\"connect\"} 4");
	ASSERT_LINE(pg, "portcullis_stage_duration_seconds_sum"
	    "{stage=\"connect\"} 40.003600000");
	ASSERT_LINE(pg, "portcullis_stage_duration_seconds_bucket"
	    "{stage=\"eom\",le=\"1\"} 0");
	ASSERT_LINE(pg, "portcullis_stage_duration_seconds_bucket"
	    "{stage=\"eom\",le=\"2.5\"} 1");
	ASSERT_LINE(pg, "portcullis_stage_duration_seconds_count"
	    "{stage=\"helo\"} 0");
	free(pg);
}

static void
timed_stage(void)
{
	METRICS_STAGE_TIMER(POL_STAGE_RCPT);
	volatile int x = 0;

	x++;
}

static void
test_timer(void **state)
{
	char *pg;

	(void)state;
	timed_stage();
	timed_stage();
	pg = page();
	ASSERT_LINE(pg, "portcullis_stage_duration_seconds_count"
	    "{stage=\"rcpt\"} 2");
	free(pg);
}

/* ---- labels across reloads ---- */

static void
test_reload_labels(void **state)
{
	struct policy *a = policy_from(policy_a), *b = policy_from(policy_b);
	char *pg;

	(void)state;
	metrics_policy(a);
	metrics_message(POL_ACT_REJECT, "old");
	metrics_message(POL_ACT_TEMPFAIL, "b-1.x");
	metrics_zone_health(ZONE_IP, "other.test", false);
	metrics_zone_lookup(ZONE_IP, "other.test", DNSBL_TIMEOUT);

	metrics_policy(b);
	/* a message of the old policy ends after the reload */
	metrics_message(POL_ACT_REJECT, "old");
	metrics_message(POL_ACT_TEMPFAIL, "b-1.x");
	metrics_message(POL_ACT_QUARANTINE, "new");
	pg = page();
	ASSERT_NO_LINE_WITH(pg, "rule=\"old\"");
	ASSERT_NO_LINE_WITH(pg, "other.test");
	ASSERT_LINE(pg, "portcullis_messages_by_rule_total{rule=\"b-1.x\"} 2");
	ASSERT_LINE(pg, "portcullis_messages_by_rule_total{rule=\"new\"} 1");
	ASSERT_LINE(pg,
	    "portcullis_messages_by_rule_total{rule=\"(other)\"} 0");
	free(pg);

	/* back: the count went on, the zone starts usable again */
	metrics_policy(a);
	pg = page();
	ASSERT_LINE(pg, "portcullis_messages_by_rule_total{rule=\"old\"} 2");
	ASSERT_NO_LINE_WITH(pg, "rule=\"new\"");
	ASSERT_LINE(pg,
	    "portcullis_zone_healthy{kind=\"dnsbl\",zone=\"other.test\"} 1");
	ASSERT_LINE(pg, "portcullis_dnsbl_lookups_total{zone=\"other.test\","
	    "result=\"timeout\"} 1");
	free(pg);

	/* a zone that stays keeps its state over a reload */
	metrics_zone_health(ZONE_IP, "bl.test", false);
	metrics_policy(b);
	pg = page();
	ASSERT_LINE(pg,
	    "portcullis_zone_healthy{kind=\"dnsbl\",zone=\"bl.test\"} 0");
	free(pg);
	pol_free(a);
	pol_free(b);
}

/* More rule names than the table holds: the rest count as (other), and
 * the page stays bounded. */
static void
test_rule_table_bound(void **state)
{
	struct buf text;
	struct policy *pol;
	char *pg, line[128];
	size_t i, shown = 0;
	const char *p;

	(void)state;
	buf_init(&text, 1024 * 1024);
	for (i = 0; i < METRICS_RULES_MAX + 100; i++)
		assert_int_equal(buf_appendf(&text, "rule r%zu: when "
		    "mail_from is \"r%zu@x.test\" then reject\n", i, i), 0);
	assert_int_equal(buf_puts(&text, "default accept\n"), 0);
	pol = policy_from(text.p);
	buf_free(&text);
	metrics_policy(pol);
	metrics_message(POL_ACT_REJECT, "r0");
	snprintf(line, sizeof(line), "r%u", METRICS_RULES_MAX + 99);
	metrics_message(POL_ACT_REJECT, line);
	pg = page();
	ASSERT_LINE(pg, "portcullis_messages_by_rule_total{rule=\"r0\"} 1");
	ASSERT_LINE(pg,
	    "portcullis_messages_by_rule_total{rule=\"(other)\"} 1");
	for (p = pg; (p = strstr(p, "portcullis_messages_by_rule_total{"))
	    != NULL; p++)
		shown++;
	assert_int_equal(shown, METRICS_RULES_MAX + 1);
	free(pg);
	pol_free(pol);
}

/* ---- threads ---- */

#define WORKERS		4
#define PER_WORKER	20000

static void *
worker(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < PER_WORKER; i++) {
		metrics_message(POL_ACT_REJECT, "b-1.x");
		metrics_zone_lookup(ZONE_IP, "bl.test", DNSBL_LISTED);
		metrics_observe_stage(POL_STAGE_MAIL, 1000);
	}
	return NULL;
}

static void
test_threads(void **state)
{
	struct policy *a = policy_from(policy_a), *b = policy_from(policy_b);
	pthread_t t[WORKERS];
	char *pg, line[160];
	int i;

	(void)state;
	metrics_policy(a);
	for (i = 0; i < WORKERS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, worker, NULL), 0);
	/* reloads and scrapes while the workers count */
	for (i = 0; i < 200; i++) {
		size_t len;

		metrics_policy(i % 2 ? a : b);
		free(metrics_render(&len));
	}
	for (i = 0; i < WORKERS; i++)
		pthread_join(t[i], NULL);
	metrics_policy(a);
	pg = page();
	snprintf(line, sizeof(line),
	    "portcullis_messages_by_rule_total{rule=\"b-1.x\"} %d",
	    WORKERS * PER_WORKER);
	ASSERT_LINE(pg, line);
	snprintf(line, sizeof(line), "portcullis_dnsbl_lookups_total"
	    "{zone=\"bl.test\",result=\"listed\"} %d", WORKERS * PER_WORKER);
	ASSERT_LINE(pg, line);
	snprintf(line, sizeof(line), "portcullis_stage_duration_seconds_count"
	    "{stage=\"mail\"} %d", WORKERS * PER_WORKER);
	ASSERT_LINE(pg, line);
	free(pg);
	pol_free(a);
	pol_free(b);
}

/* ---- listen addresses ---- */

struct addr_case {
	const char *in;
	int rc;
	bool loopback;
	const char *norm;
};

static const struct addr_case addr_cases[] = {
	{ "127.0.0.1:9790", 0, true, "127.0.0.1:9790" },
	{ "127.1.2.3:1", 0, true, "127.1.2.3:1" },
	{ "[::1]:9790", 0, true, "[::1]:9790" },
	{ "[0:0::1]:65535", 0, true, "[::1]:65535" },
	{ "192.0.2.10:9790", 0, false, "192.0.2.10:9790" },
	{ "0.0.0.0:9790", 0, false, "0.0.0.0:9790" },
	{ "[::]:9790", 0, false, "[::]:9790" },
	{ "[2001:db8::1]:80", 0, false, "[2001:db8::1]:80" },
	{ "[::ffff:127.0.0.1]:80", 0, false, "[::ffff:127.0.0.1]:80" },
	{ "127.0.0.1", -1, false, NULL },	/* port required */
	{ "127.0.0.1:", -1, false, NULL },
	{ "127.0.0.1:0", -1, false, NULL },
	{ "127.0.0.1:65536", -1, false, NULL },
	{ "127.0.0.1:09790", -1, false, NULL },
	{ "127.0.0.1:97x", -1, false, NULL },
	{ "127.0.0.1:-1", -1, false, NULL },
	{ "localhost:9790", -1, false, NULL },	/* numeric only */
	{ "::1:9790", -1, false, NULL },
	{ "[::1]", -1, false, NULL },
	{ "[::1]9790", -1, false, NULL },
	{ "[]:9790", -1, false, NULL },
	{ ":9790", -1, false, NULL },
	{ "", -1, false, NULL },
};

static void
test_parse_addr(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]); i++) {
		const struct addr_case *c = &addr_cases[i];
		struct sockaddr_storage ss;
		socklen_t sslen;
		bool lo = !c->loopback;
		char norm[80];
		int rc;

		rc = metrics_parse_addr(c->in, &ss, &sslen, &lo, norm,
		    sizeof(norm));
		if (rc != c->rc)
			print_error("case '%s': rc %d\n", c->in, rc);
		assert_int_equal(rc, c->rc);
		if (rc != 0)
			continue;
		assert_int_equal(lo, c->loopback);
		assert_string_equal(norm, c->norm);
	}
}

/* ---- HTTP ---- */

/* A port on 127.0.0.1 that was free a moment ago. */
static unsigned
free_port(int family)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = socket(family, SOCK_STREAM, 0);

	if (fd < 0)
		return 0;
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = (sa_family_t)family;
	if (family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_addr.s_addr =
		    htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	if (bind(fd, (struct sockaddr *)&ss, family == AF_INET ?
	    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
		close(fd);
		return 0;
	}
	close(fd);
	return ntohs(family == AF_INET ?
	    ((struct sockaddr_in *)&ss)->sin_port :
	    ((struct sockaddr_in6 *)&ss)->sin6_port);
}

static int
connect_to(int family, unsigned port)
{
	struct sockaddr_storage ss;
	int fd = socket(family, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = (sa_family_t)family;
	if (family == AF_INET) {
		((struct sockaddr_in *)&ss)->sin_addr.s_addr =
		    htonl(INADDR_LOOPBACK);
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
	} else {
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
		((struct sockaddr_in6 *)&ss)->sin6_port =
		    htons((uint16_t)port);
	}
	if (connect(fd, (struct sockaddr *)&ss, family == AF_INET ?
	    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One request; the whole response (HTTP/1.0: the server closes). */
static char *
http(int family, unsigned port, const char *request)
{
	struct buf b;
	char chunk[4096];
	ssize_t n;
	int fd = connect_to(family, port);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, request, strlen(request)),
	    (ssize_t)strlen(request));
	buf_init(&b, METRICS_PAGE_MAX + 4096);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		assert_int_equal(buf_append(&b, chunk, (size_t)n), 0);
	close(fd);
	return b.p != NULL ? b.p : xstrdup("");
}

/* The status code of a response ("HTTP/1.x NNN"), 0 if none. */
static int
status(const char *r)
{
	int code;

	if (strncmp(r, "HTTP/1.", 7) != 0 || sscanf(r + 8, " %3d", &code) != 1)
		return 0;
	return code;
}

static void
http_checks(int family)
{
	struct metrics_http *h;
	char addr[80], err[256], *r;
	unsigned port = free_port(family);
	int fd;

	if (port == 0) {
		print_message("no %s loopback here: skipped\n",
		    family == AF_INET ? "IPv4" : "IPv6");
		return;
	}
	snprintf(addr, sizeof(addr), family == AF_INET ? "127.0.0.1:%u" :
	    "[::1]:%u", port);
	fd = metrics_http_bind(addr, err, sizeof(err));
	if (fd < 0)
		print_error("%s\n", err);
	assert_true(fd >= 0);
	h = metrics_http_start(fd, err, sizeof(err));
	assert_non_null(h);
	metrics_message(POL_ACT_REJECT, "");

	r = http(family, port, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
	assert_int_equal(status(r), 200);
	assert_non_null(strstr(r, "\r\nContent-Type: text/plain; "
	    "version=0.0.4; charset=utf-8\r\n"));
	assert_non_null(strstr(r, "\r\n\r\n# HELP portcullis_build_info "));
	assert_non_null(strstr(r, "\nportcullis_messages_total"
	    "{action=\"reject\"} 1\n"));
	free(r);
	/* a query string is not part of the path */
	r = http(family, port, "GET /metrics?x=1 HTTP/1.0\r\n\r\n");
	assert_int_equal(status(r), 200);
	free(r);
	r = http(family, port, "GET / HTTP/1.0\r\n\r\n");
	assert_int_equal(status(r), 404);
	assert_null(strstr(r, "portcullis_"));
	free(r);
	r = http(family, port, "GET /metrics/ HTTP/1.0\r\n\r\n");
	assert_int_equal(status(r), 404);
	free(r);
	r = http(family, port, "HEAD /metrics HTTP/1.0\r\n\r\n");
	assert_int_equal(status(r), 404);
	free(r);
	r = http(family, port, "POST /metrics HTTP/1.0\r\n"
	    "Content-Length: 3\r\n\r\nabc");
	assert_int_equal(status(r), 404);
	free(r);
	/* a request too large for the connection's memory is refused,
	 * not served */
	{
		struct buf big;
		size_t i;

		buf_init(&big, 64 * 1024);
		assert_int_equal(buf_puts(&big, "GET /metrics HTTP/1.0\r\n"),
		    0);
		for (i = 0; i < 40; i++)
			assert_int_equal(buf_appendf(&big, "X-Pad-%zu: %0999d"
			    "\r\n", i, 0), 0);
		assert_int_equal(buf_puts(&big, "\r\n"), 0);
		r = http(family, port, big.p);
		assert_int_equal(status(r), 431);
		assert_null(strstr(r, "portcullis_build_info"));
		free(r);
		buf_free(&big);
	}
	metrics_http_stop(h);
	/* the socket is closed with the server */
	fd = connect_to(family, port);
	if (fd >= 0)
		close(fd);
	assert_true(fd < 0);
}

static void
test_http_ipv4(void **state)
{
	(void)state;
	http_checks(AF_INET);
}

static void
test_http_ipv6(void **state)
{
	(void)state;
	http_checks(AF_INET6);
}

static void
test_http_bind_errors(void **state)
{
	char err[256];
	unsigned port = free_port(AF_INET);
	char addr[64];
	int fd, fd2;

	(void)state;
	assert_int_equal(metrics_http_bind("nonsense", err, sizeof(err)), -1);
	assert_string_equal(err, "invalid address 'nonsense'");
	assert_true(port != 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
	fd = metrics_http_bind(addr, err, sizeof(err));
	assert_true(fd >= 0);
	/* the address is in use */
	fd2 = metrics_http_bind(addr, err, sizeof(err));
	assert_int_equal(fd2, -1);
	assert_non_null(strstr(err, "cannot listen on"));
	close(fd);
	assert_null(metrics_http_start(-1, err, sizeof(err)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_escape_limit),
		cmocka_unit_test_setup(test_families_and_counts, reset),
		cmocka_unit_test_setup(test_structure, reset),
		cmocka_unit_test_setup(test_histogram, reset),
		cmocka_unit_test_setup(test_timer, reset),
		cmocka_unit_test_setup(test_reload_labels, reset),
		cmocka_unit_test_setup(test_rule_table_bound, reset),
		cmocka_unit_test_setup(test_threads, reset),
		cmocka_unit_test(test_parse_addr),
		cmocka_unit_test_setup(test_http_ipv4, reset),
		cmocka_unit_test_setup(test_http_ipv6, reset),
		cmocka_unit_test(test_http_bind_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
