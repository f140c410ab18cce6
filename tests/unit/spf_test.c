/*
 * spf_test.c - unit tests for milter/spf.c (SPF on libspf2, RFC 7208).
 * Owns: one resolver serving the zone below from memory (no network);
 * one table row per check, run as one cmocka test each; a validator
 * table; a temperror case against a forwarder that never answers.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dns.h"
#include "spf.h"
#include "util.h"

#define T(name, text)	name " 300 IN TXT " text
#define DEADLINE_MS	3000

static const char *const zone[] = {
	T("pass.example.com.", "\"v=spf1 ip4:192.0.2.1 -all\""),
	T("soft.example.com.", "\"v=spf1 ~all\""),
	T("neutral.example.com.", "\"v=spf1 ?all\""),
	T("other.example.com.", "\"not spf\""),
	T("split.example.com.", "\"v=spf1 ip4:\" \"192.0.2.1 -all\""),
	T("inc.example.com.", "\"v=spf1 include:pass.example.com -all\""),
	T("redir.example.com.", "\"v=spf1 redirect=pass.example.com\""),
	T("redirall.example.com.",
	    "\"v=spf1 ?all redirect=pass.example.com\""),
	T("incnone.example.com.", "\"v=spf1 include:none.example.com\""),
	T("two.example.com.", "\"v=spf1 +all\""),
	T("two.example.com.", "\"v=spf1 -all\""),
	T("a.example.com.", "\"v=spf1 a -all\""),
	"a.example.com. 300 IN A 192.0.2.10",
	"a.example.com. 300 IN AAAA 2001:db8::10",
	T("mx.example.com.", "\"v=spf1 mx -all\""),
	"mx.example.com. 300 IN MX 10 mail.example.com.",
	"mail.example.com. 300 IN A 192.0.2.20",
	T("cidr0.example.com.", "\"v=spf1 ip4:1.1.1.1/0 -all\""),
	T("a0.example.com.", "\"v=spf1 a:a.example.com/0 -all\""),
	T("ip6.example.com.", "\"v=spf1 ip6:2001:db8::/32 -all\""),
	/* lookup limits */
	T("l10.example.com.", "\"v=spf1 include:n.example.com "
	    "include:n.example.com include:n.example.com include:n.example.com "
	    "include:n.example.com include:n.example.com include:n.example.com "
	    "include:n.example.com include:n.example.com include:n.example.com "
	    "-all\""),
	T("l11.example.com.", "\"v=spf1 include:n.example.com "
	    "include:n.example.com include:n.example.com include:n.example.com "
	    "include:n.example.com include:n.example.com include:n.example.com "
	    "include:n.example.com include:n.example.com include:n.example.com "
	    "include:n.example.com +all\""),
	T("n.example.com.", "\"v=spf1 ip4:10.0.0.1 -all\""),
	T("void2.example.com.", "\"v=spf1 a:nx1.example.com "
	    "a:nx2.example.com -all\""),
	T("void3.example.com.", "\"v=spf1 a:nx1.example.com "
	    "a:nx2.example.com a:nx3.example.com +all\""),
	/* malformed records: never pass */
	T("m1.example.com.", "\"v=spf1 a: +all\""),
	T("m2.example.com.", "\"v=spf1 ip4:192.0.2.1/032 +all\""),
	T("m3.example.com.", "\"v=spf1 exists:%{z}.example.com +all\""),
	T("m4.example.com.", "\"v=spf1 +all exp=e.example.com "
	    "exp=e.example.com\""),
	T("m5.example.com.", "\"v=spf1 +all redirect=a.example.com "
	    "redirect=a.example.com\""),
	T("m6.example.com.", "\"v=spf1 a:foo.1 +all\""),
	T("m7.example.com.", "\"v=spf1 +all foo\""),
	T("m8.example.com.", "\"v=spf1 mx: +all\""),
	T("m9.example.com.", "\"v=spf1 include:pass.example.com/24 +all\""),
	T("m10.example.com.", "\"v=spf1 exists:foo%.example.com +all\""),
	T("m11.example.com.", "\"v=spf1 +all 1bad=x\""),
	T("m12.example.com.", "\"v=spf1 ptr/0 +all\""),
	T("minc.example.com.", "\"v=spf1 include:m1.example.com +all\""),
	T("nul.example.com.", "\"v=spf1 +all\\000\""),
	T("modok.example.com.", "\"v=spf1 foo.bar-x_y=%{d} +all\""),
	/* explanations */
	T("expfail.example.com.", "\"v=spf1 -all exp=e.example.com\""),
	T("e.example.com.", "\"%{i} may not send for %{d} (%{l}, %{c})\""),
	T("expredir.example.com.", "\"v=spf1 redirect=expfail.example.com\""),
	T("helo.example.com.", "\"v=spf1 ip4:192.0.2.1 -all\""),
	NULL
};

struct spf_case {
	const char	*name;
	const char	*ip;
	const char	*helo;
	const char	*sender;	/* NULL: HELO identity */
	enum spf_result	 expect;
	const char	*explanation;	/* NULL: not checked */
};

static const struct spf_case cases[] = {
	{ "pass", "192.0.2.1", "h.example.net", "u@pass.example.com",
	  SPF_R_PASS, "" },
	{ "fail", "192.0.2.2", "h.example.net", "u@pass.example.com",
	  SPF_R_FAIL, "" },
	{ "softfail", "192.0.2.2", "h.example.net", "u@soft.example.com",
	  SPF_R_SOFTFAIL, NULL },
	{ "neutral", "192.0.2.2", "h.example.net", "u@neutral.example.com",
	  SPF_R_NEUTRAL, NULL },
	{ "none: no TXT", "192.0.2.2", "h.example.net", "u@nx.example.com",
	  SPF_R_NONE, NULL },
	{ "none: TXT but no SPF", "192.0.2.2", "h.example.net",
	  "u@other.example.com", SPF_R_NONE, NULL },
	{ "none: not a domain", "192.0.2.2", "h.example.net", "u@nodots",
	  SPF_R_NONE, NULL },
	{ "strings joined", "192.0.2.1", "h.example.net",
	  "u@split.example.com", SPF_R_PASS, NULL },
	{ "include pass", "192.0.2.1", "h.example.net", "u@inc.example.com",
	  SPF_R_PASS, NULL },
	{ "include no match", "192.0.2.9", "h.example.net",
	  "u@inc.example.com", SPF_R_FAIL, NULL },
	{ "include of none is permerror", "192.0.2.9", "h.example.net",
	  "u@incnone.example.com", SPF_R_PERMERROR, NULL },
	{ "redirect", "192.0.2.1", "h.example.net", "u@redir.example.com",
	  SPF_R_PASS, NULL },
	{ "redirect ignored beside all", "192.0.2.1", "h.example.net",
	  "u@redirall.example.com", SPF_R_NEUTRAL, NULL },
	{ "two records", "192.0.2.1", "h.example.net", "u@two.example.com",
	  SPF_R_PERMERROR, NULL },
	{ "a", "192.0.2.10", "h.example.net", "u@a.example.com",
	  SPF_R_PASS, NULL },
	{ "a ipv6", "2001:db8::10", "h.example.net", "u@a.example.com",
	  SPF_R_PASS, NULL },
	{ "mx", "192.0.2.20", "h.example.net", "u@mx.example.com",
	  SPF_R_PASS, NULL },
	{ "mx no match", "192.0.2.21", "h.example.net", "u@mx.example.com",
	  SPF_R_FAIL, NULL },
	{ "ip4 /0", "203.0.113.7", "h.example.net", "u@cidr0.example.com",
	  SPF_R_PASS, NULL },
	{ "ip4 /0 does not match ipv6", "2001:db8::1", "h.example.net",
	  "u@cidr0.example.com", SPF_R_FAIL, NULL },
	{ "a /0", "203.0.113.7", "h.example.net", "u@a0.example.com",
	  SPF_R_PASS, NULL },
	{ "ip6", "2001:db8::77", "h.example.net", "u@ip6.example.com",
	  SPF_R_PASS, NULL },
	{ "ipv4-mapped client is ipv4", "::ffff:192.0.2.1", "h.example.net",
	  "u@pass.example.com", SPF_R_PASS, NULL },
	{ "ipv4-mapped client fails as ipv4", "::ffff:192.0.2.2",
	  "h.example.net", "u@pass.example.com", SPF_R_FAIL, NULL },
	{ "10 lookups", "192.0.2.1", "h.example.net", "u@l10.example.com",
	  SPF_R_FAIL, NULL },
	{ "11 lookups", "192.0.2.1", "h.example.net", "u@l11.example.com",
	  SPF_R_PERMERROR, NULL },
	{ "2 void lookups", "192.0.2.1", "h.example.net",
	  "u@void2.example.com", SPF_R_FAIL, NULL },
	{ "3 void lookups", "192.0.2.1", "h.example.net",
	  "u@void3.example.com", SPF_R_PERMERROR, NULL },
	{ "malformed: empty a:", "192.0.2.1", "h.example.net",
	  "u@m1.example.com", SPF_R_PERMERROR, NULL },
	{ "malformed: /032", "192.0.2.1", "h.example.net",
	  "u@m2.example.com", SPF_R_PERMERROR, NULL },
	{ "malformed: bad macro letter", "192.0.2.1", "h.example.net",
	  "u@m3.example.com", SPF_R_PERMERROR, NULL },
	{ "malformed: two exp=", "192.0.2.1", "h.example.net",
	  "u@m4.example.com", SPF_R_PERMERROR, NULL },
	{ "malformed: two redirect=", "192.0.2.1", "h.example.net",
	  "u@m5.example.com", SPF_R_PERMERROR, NULL },
	{ "malformed: numeric toplabel", "192.0.2.1", "h.example.net",
	  "u@m6.example.com", SPF_R_PERMERROR, NULL },
	{ "malformed: unknown mechanism", "192.0.2.1", "h.example.net",
	  "u@m7.example.com", SPF_R_PERMERROR, NULL },
	{ "malformed: empty mx:", "192.0.2.1", "h.example.net",
	  "u@m8.example.com", SPF_R_PERMERROR, NULL },
	{ "malformed: include with cidr", "192.0.2.1", "h.example.net",
	  "u@m9.example.com", SPF_R_PERMERROR, NULL },
	{ "malformed: lone %", "192.0.2.1", "h.example.net",
	  "u@m10.example.com", SPF_R_PERMERROR, NULL },
	{ "malformed: modifier name", "192.0.2.1", "h.example.net",
	  "u@m11.example.com", SPF_R_PERMERROR, NULL },
	{ "malformed: ptr/0", "192.0.2.1", "h.example.net",
	  "u@m12.example.com", SPF_R_PERMERROR, NULL },
	{ "malformed: in include", "192.0.2.1", "h.example.net",
	  "u@minc.example.com", SPF_R_PERMERROR, NULL },
	{ "NUL byte in record", "192.0.2.1", "h.example.net",
	  "u@nul.example.com", SPF_R_PERMERROR, NULL },
	{ "modifier name with . - _", "192.0.2.1", "h.example.net",
	  "u@modok.example.com", SPF_R_PASS, NULL },
	{ "exp= explanation", "192.0.2.2", "h.example.net",
	  "user@expfail.example.com", SPF_R_FAIL,
	  "192.0.2.2 may not send for expfail.example.com (user, 192.0.2.2)" },
	{ "exp= of the redirect target", "2001:db8::1", "h.example.net",
	  "user@expredir.example.com", SPF_R_FAIL,
	  "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1 "
	  "may not send for expfail.example.com (user, 2001:db8::1)" },
	{ "null sender uses helo", "192.0.2.1", "helo.example.com", "",
	  SPF_R_PASS, NULL },
	{ "<> sender uses helo", "192.0.2.2", "helo.example.com", "<>",
	  SPF_R_FAIL, NULL },
	{ "no local-part is postmaster", "192.0.2.2", "h.example.net",
	  "@expfail.example.com", SPF_R_FAIL,
	  "192.0.2.2 may not send for expfail.example.com (postmaster, "
	  "192.0.2.2)" },
	{ "helo identity", "192.0.2.1", "helo.example.com", NULL,
	  SPF_R_PASS, NULL },
	{ "helo identity fail", "192.0.2.3", "helo.example.com", NULL,
	  SPF_R_FAIL, NULL },
};

static struct dns *dns;

static void
run_case(void **state)
{
	const struct spf_case *c = *state;
	struct spf_outcome out;
	int rc;

	if (c->sender != NULL)
		rc = spf_check(dns, clock_ms() + DEADLINE_MS, c->ip, c->helo,
		    c->sender, &out);
	else
		rc = spf_check_helo(dns, clock_ms() + DEADLINE_MS, c->ip,
		    c->helo, &out);
	assert_int_equal(rc, 0);
	if (out.result != c->expect)
		fail_msg("%s: got %s (%s), want %s", c->name,
		    spf_result_name(out.result), out.problem,
		    spf_result_name(c->expect));
	if (c->explanation != NULL)
		assert_string_equal(out.explanation, c->explanation);
	if (out.result != SPF_R_FAIL)
		assert_string_equal(out.explanation, "");
}

struct val_case {
	const char	*rec;
	size_t		 len;
	bool		 ok;
};

#define V(s, ok)	{ (s), sizeof(s) - 1, (ok) }

static const struct val_case vals[] = {
	V("v=spf1", true),
	V("v=spf1 ", true),
	V("V=SPF1 -ALL", true),
	V("v=spf1  a  -all", true),
	V("v=spf1 a/24//64 mx:example.com/0 ip6:::1/128 ip4:10.0.0.0/8", true),
	V("v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all", true),
	V("v=spf1 a:foo:bar/baz.example.com", true),
	V("v=spf1 exp=%{d}.example.com redirect=_spf.example.com", true),
	V("v=spf1 a:example.com.", true),
	V("v=spf1 foo=", true),
	V("v=spf10", false),
	V("v=spf1 -all\0", false),
	V("v=spf1 a:", false),
	V("v=spf1 exists:", false),
	V("v=spf1 ptr:", false),
	V("v=spf1 include:", false),
	V("v=spf1 ip4:1.2.3.4/33", false),
	V("v=spf1 ip4:01.2.3.4", false),
	V("v=spf1 ip6:1::/129", false),
	V("v=spf1 a/032", false),
	V("v=spf1 a:example.com/24/64", false),
	V("v=spf1 all:x", false),
	V("v=spf1 -all\t", false),
	V("v=spf1 a:%{x}.example.com", false),
	V("v=spf1 a:%{c}.example.com", false),
	V("v=spf1 a:%{d0}.example.com", false),
	V("v=spf1 a:%{d", false),
	V("v=spf1 a:example.-com", false),
	V("v=spf1 a:example.com-", false),
	V("v=spf1 a:museum", false),
	V("v=spf1 redirect=", false),
	V("v=spf1 exp=a.example.com exp=b.example.com", false),
	V("v=spf1 ~ip4:1.2.3.4 =all", false),
	V("v=spf1 a:caf\xc3\xa9.example.com", false),
};

static void
test_validator(void **state)
{
	size_t i;
	char why[128];

	(void)state;
	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		int rc = spf_record_validate(vals[i].rec, vals[i].len, why,
		    sizeof(why));

		if ((rc == 0) != vals[i].ok)
			fail_msg("validator: \"%s\" gave %d (%s)",
			    vals[i].rec, rc, rc ? why : "");
	}
}

static void
test_names(void **state)
{
	(void)state;
	assert_string_equal(spf_result_name(SPF_R_PASS), "pass");
	assert_string_equal(spf_result_name(SPF_R_SOFTFAIL), "softfail");
	assert_string_equal(spf_result_name(SPF_R_TEMPERROR), "temperror");
	assert_string_equal(spf_result_name(SPF_R_PERMERROR), "permerror");
	assert_string_equal(spf_result_name(SPF_R_NONE), "none");
	assert_string_equal(spf_result_name(SPF_R_NEUTRAL), "neutral");
	assert_string_equal(spf_result_name(SPF_R_FAIL), "fail");
}

static void
test_bad_client(void **state)
{
	struct spf_outcome out;

	(void)state;
	assert_int_equal(spf_check(dns, clock_ms() + DEADLINE_MS,
	    "not an ip", "h.example.net", "u@pass.example.com", &out), -1);
}

/* Checks from several threads at once share one resolver. */
#define THREADS		4
#define ROUNDS		10

static void *
thread_main(void *arg)
{
	size_t i, k, bad = 0;
	struct spf_outcome out;

	(void)arg;
	for (k = 0; k < ROUNDS; k++)
		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			const struct spf_case *c = &cases[i];
			int rc = c->sender != NULL ?
			    spf_check(dns, clock_ms() + DEADLINE_MS, c->ip,
			    c->helo, c->sender, &out) :
			    spf_check_helo(dns, clock_ms() + DEADLINE_MS,
			    c->ip, c->helo, &out);

			if (rc != 0 || out.result != c->expect)
				bad++;
		}
	return (void *)(uintptr_t)bad;
}

static void
test_threads(void **state)
{
	pthread_t t[THREADS];
	size_t i;
	void *bad;

	(void)state;
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, thread_main,
		    NULL), 0);
	for (i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], &bad), 0);
		assert_int_equal((uintptr_t)bad, 0);
	}
}

/* A resolver that never gets an answer: temperror within the deadline. */
static void
test_temperror(void **state)
{
	struct dns_options o = { .forwarder = "127.0.0.1@1" };
	struct spf_outcome out;
	struct dns *silent;
	const char *err;
	uint64_t t0, t1;

	(void)state;
	silent = dns_new(&o, &err);
	assert_non_null(silent);
	t0 = clock_ms();
	assert_int_equal(spf_check(silent, t0 + 1000, "192.0.2.1",
	    "h.example.net", "u@example.com", &out), 0);
	t1 = clock_ms();
	assert_int_equal(out.result, SPF_R_TEMPERROR);
	assert_true(out.problem[0] != '\0');
	if (t1 - t0 > 1500)
		fail_msg("temperror after %llu ms", (unsigned long long)(t1 -
		    t0));
	dns_free(silent);
}

static int
group_setup(void **state)
{
	struct dns_options o = { .local_data = zone, .no_network = 1 };
	const char *err;

	(void)state;
	dns = dns_new(&o, &err);
	if (dns == NULL) {
		fprintf(stderr, "dns_new: %s\n", err);
		return -1;
	}
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	dns_free(dns);
	return 0;
}

int
main(void)
{
	static const struct CMUnitTest extra[] = {
		cmocka_unit_test(test_validator),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_bad_client),
		cmocka_unit_test(test_temperror),
		cmocka_unit_test(test_threads),
	};
	size_t			 nc = sizeof(cases) / sizeof(cases[0]);
	size_t			 ne = sizeof(extra) / sizeof(extra[0]), i;
	struct CMUnitTest	*t;
	int			 rc;

	t = calloc(nc + ne, sizeof(*t));
	if (t == NULL)
		return 1;
	for (i = 0; i < nc; i++) {
		t[i].name = cases[i].name;
		t[i].test_func = run_case;
		t[i].initial_state = (void *)(uintptr_t)&cases[i];
	}
	for (i = 0; i < ne; i++)
		t[nc + i] = extra[i];
	rc = _cmocka_run_group_tests("spf", t, nc + ne, group_setup,
	    group_teardown);
	free(t);
	return rc;
}
