/*
 * report_test.c - unit tests for DMARC aggregate reports: the stored row
 * format (report_row.c: round trip, refusals), XML escaping, rua= parsing,
 * the row a message gives (report.c: disposition, reasons, DKIM order),
 * grouping and the XML document (report_agg.c), validated against the
 * RFC 9990 schema in tests/data/report/ with xmllint, and the stores: the
 * queue and writer thread over LMDB (report_test) or over a redis-server
 * of our own on a unix socket (report_redis_test, built with
 * -DREPORT_TEST_REDIS; a TAP SKIP plan without redis-server).
 * Owns: a temporary directory (and the redis-server child).
 */
#include "autoconfig.h"

#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#ifdef REPORT_TEST_REDIS
#include <hiredis.h>
#endif

#include "dkimv.h"
#include "dmarc.h"
#include "report.h"
#include "report_agg.h"
#include "report_row.h"
#include "spf.h"
#include "util.h"

/* The pure tests run in report_test only. */
#ifdef REPORT_TEST_REDIS
#define PURE __attribute__((unused))
#else
#define PURE
#endif

static char tmpdir[] = "/tmp/report_test.XXXXXX";
static pid_t redis_pid;

/* ---------------------------------------------------------------- rows */

/* A complete row as a message gives it. */
static void
sample_row(struct report_row *r)
{
	memset(r, 0, sizeof(*r));
	r->time = 1743500000;
	r->id = 0x0123456789abcdefULL;
	strcpy(r->ip, "192.0.2.1");
	strcpy(r->header_from, "example.com");
	strcpy(r->envelope_from, "bounce.example.com");
	strcpy(r->envelope_to, "corp.test");
	strcpy(r->spf_domain, "bounce.example.com");
	strcpy(r->spf_result, "pass");
	strcpy(r->dkim[0].domain, "example.com");
	strcpy(r->dkim[0].selector, "sel");
	strcpy(r->dkim[0].result, "pass");
	strcpy(r->dkim[1].domain, "other.example");
	strcpy(r->dkim[1].selector, "");
	strcpy(r->dkim[1].result, "fail");
	r->ndkim = 2;
	strcpy(r->dmarc_result, "pass");
	r->dkim_aligned = true;
	r->spf_aligned = false;
	strcpy(r->disposition, "pass");
	strcpy(r->policy_domain, "example.com");
	strcpy(r->p, "reject");
	strcpy(r->sp, "quarantine");
	strcpy(r->np, "reject");
	r->adkim = 'r';
	r->aspf = 's';
	r->testing = 'n';
	strcpy(r->fo, "0:d");
	strcpy(r->rua, "mailto:dmarc@example.com, mailto:x%20y@ext.example");
}

PURE static void
test_row_roundtrip(void **state)
{
	struct report_row a, b;
	struct buf enc;

	(void)state;
	sample_row(&a);
	/* hostile envelope text survives as it was (control characters
	 * never get here: report_row_build() replaces them) */
	memset(a.envelope_from, 0, sizeof(a.envelope_from));
	strcpy(a.envelope_from, "we=ird%dom\xc3\xa9 x");
	strcpy(a.reason[0], "local_policy");
	a.nreason = 1;
	buf_init(&enc, REPORT_VALUE_MAX);
	assert_int_equal(rrow_encode(&a, &enc), 0);
	assert_non_null(strstr(enc.p, "v=1\ntime=1743500000\n"
	    "id=0123456789abcdef\nip=192.0.2.1\n"));
	assert_non_null(strstr(enc.p, "efrom=we=ird%25dom%C3%A9%20x\n"));
	assert_non_null(strstr(enc.p, "dkim=fail other.example \n"));
	assert_int_equal(rrow_decode(enc.p, enc.len, &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	buf_free(&enc);
}

struct decode_case {
	const char *name;
	const char *text;
	int rc;
};

#define HEAD	"v=1\ntime=5\nip=192.0.2.1\nhfrom=example.com\n"
#define TAIL	"disp=none\npdom=example.com\n"

PURE static const struct decode_case decode_cases[] = {
	{ "minimal", HEAD TAIL, 0 },
	{ "no trailing newline", HEAD "disp=none\npdom=example.com", 0 },
	{ "unknown field ignored", HEAD "future=1\n" TAIL, 0 },
	{ "empty", "", -1 },
	{ "version 2", "v=2\ntime=5\nip=1.2.3.4\nhfrom=a\n" TAIL, -1 },
	{ "no version", "time=5\nip=1.2.3.4\nhfrom=a\n" TAIL, -1 },
	{ "no time", "v=1\nip=1.2.3.4\nhfrom=a\n" TAIL, -1 },
	{ "no ip", "v=1\ntime=5\nhfrom=a\n" TAIL, -1 },
	{ "no header_from", "v=1\ntime=5\nip=1.2.3.4\n" TAIL, -1 },
	{ "no disposition", HEAD "pdom=example.com\n", -1 },
	{ "no policy domain", HEAD "disp=none\n", -1 },
	{ "line without =", HEAD "garbage\n" TAIL, -1 },
	{ "empty name", HEAD "=x\n" TAIL, -1 },
	{ "raw space", HEAD "efrom=a b\n" TAIL, -1 },
	{ "raw high byte", HEAD "efrom=caf\xc3\xa9\n" TAIL, -1 },
	{ "escaped NUL", HEAD "efrom=a%00b\n" TAIL, -1 },
	{ "short escape", HEAD "efrom=a%4\n" TAIL, -1 },
	{ "bad escape", HEAD "efrom=a%zz\n" TAIL, -1 },
	{ "escaped control", HEAD "efrom=a%0Ab\n" TAIL, -1 },
	{ "bad ip", "v=1\ntime=5\nip=192.0.2.1;\nhfrom=a\n" TAIL, -1 },
	{ "bad time", "v=1\ntime=5x\nip=1.2.3.4\nhfrom=a\n" TAIL, -1 },
	{ "time too long", "v=1\ntime=123456789012345678901234\n"
	  "ip=1.2.3.4\nhfrom=a\n" TAIL, -1 },
	{ "bad id", HEAD "id=12\n" TAIL, -1 },
	{ "disposition not in the schema", HEAD
	  "disp=discard\npdom=example.com\n", -1 },
	{ "policy not in the schema", HEAD "p=maybe\n" TAIL, -1 },
	{ "reason not in the schema", HEAD "reason=forwarded\n" TAIL, -1 },
	{ "spf result not in the schema", HEAD "spfr=hardfail\n" TAIL, -1 },
	{ "dkim with two parts", HEAD "dkim=pass example.com\n" TAIL, -1 },
	{ "dkim with four parts", HEAD "dkim=pass a b c\n" TAIL, -1 },
	{ "dkim bad result", HEAD "dkim=good a b\n" TAIL, -1 },
	{ "nine dkim lines", HEAD "dkim=pass a b\ndkim=pass a b\n"
	  "dkim=pass a b\ndkim=pass a b\ndkim=pass a b\ndkim=pass a b\n"
	  "dkim=pass a b\ndkim=pass a b\ndkim=pass a b\n" TAIL, -1 },
	{ "three reasons", HEAD "reason=other\nreason=other\nreason=other\n"
	  TAIL, -1 },
	{ "policy domain with a slash", HEAD "disp=none\npdom=a/b\n", -1 },
	{ "policy domain dot-dot", HEAD "disp=none\npdom=..\n", -1 },
	{ "policy domain upper case", HEAD "disp=none\npdom=A.example\n", -1 },
	{ "adkim x", HEAD "adkim=x\n" TAIL, -1 },
	{ "testing yes", HEAD "testing=yes\n" TAIL, -1 },
	{ "aligned maybe", HEAD "dkal=maybe\n" TAIL, -1 },
	{ "field too long", HEAD "ip=1111111111111111111111111111111111111111"
	  "11111111111\n" TAIL, -1 },
};

PURE static void
run_decode(void **state)
{
	const struct decode_case *tc = *state;
	struct report_row r;

	assert_int_equal(rrow_decode(tc->text, strlen(tc->text), &r), tc->rc);
}

PURE static void
test_decode_limits(void **state)
{
	char *big = xmalloc(REPORT_VALUE_MAX + 2);
	struct report_row r;
	size_t n;

	(void)state;
	/* a value over REPORT_VALUE_MAX is refused before it is read */
	n = (size_t)snprintf(big, REPORT_VALUE_MAX + 2, "%s%s", HEAD, TAIL);
	memset(big + n, 'x', REPORT_VALUE_MAX + 1 - n);
	big[REPORT_VALUE_MAX + 1] = '\0';
	big[n] = 'z';
	big[n + 1] = '=';
	assert_int_equal(rrow_decode(big, REPORT_VALUE_MAX + 1, &r), -1);
	/* the same at the limit is read (an unknown long field) */
	assert_int_equal(rrow_decode(big, REPORT_VALUE_MAX, &r), 0);
	/* not NUL-terminated: only len bytes are read */
	memcpy(big, HEAD TAIL, strlen(HEAD TAIL));
	big[strlen(HEAD TAIL)] = 'q';
	assert_int_equal(rrow_decode(big, strlen(HEAD TAIL), &r), 0);
	assert_int_equal(rrow_decode(NULL, 0, &r), -1);
	free(big);
}

/* ---------------------------------------------------------------- XML */

struct xml_case {
	const char *in;
	const char *out;
};

PURE static const struct xml_case xml_cases[] = {
	{ "plain.example", "plain.example" },
	{ "<a href=\"x\">&'</a>",
	  "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;" },
	{ "tab\tnl\ncr\r", "tab\tnl\ncr\r" },
	{ "\x01\x1f\x7f", "???" },
	{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 "
	  "\xe2\x82\xac \xf0\x9f\x98\x80" },
	{ "\xc0\xaf", "??" },			/* overlong '/' */
	{ "\xe0\x80\xaf", "???" },		/* overlong, 3 bytes */
	{ "\xed\xa0\x80", "???" },		/* a surrogate */
	{ "\xef\xbf\xbe\xef\xbf\xbf", "??????" },	/* U+FFFE U+FFFF */
	{ "\xf4\x90\x80\x80", "????" },		/* past U+10FFFF */
	{ "\xe2\x82", "??" },			/* cut short */
	{ "\x80x", "?x" },			/* a lone continuation */
	{ "\xff", "?" },
};

PURE static void
test_xml_escape(void **state)
{
	struct buf b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(xml_cases) / sizeof(xml_cases[0]); i++) {
		buf_init(&b, 1000);
		assert_int_equal(rrow_xml_escape(&b, xml_cases[i].in,
		    strlen(xml_cases[i].in)), 0);
		assert_string_equal(b.p != NULL ? b.p : "",
		    xml_cases[i].out);
		buf_free(&b);
	}
	/* a NUL inside the length is a control character */
	buf_init(&b, 1000);
	assert_int_equal(rrow_xml_escape(&b, "a\0b", 3), 0);
	assert_string_equal(b.p, "a?b");
	buf_free(&b);
	/* the buffer's maximum is an error, not a cut */
	buf_init(&b, 8);
	assert_int_equal(rrow_xml_escape(&b, "&&", 2), -1);
	buf_free(&b);
}

/* ---------------------------------------------------------------- rua= */

struct rua_case {
	const char *rua;
	size_t n;
	bool more;
	struct {
		bool mailto;
		const char *addr, *host;
		uint64_t size;
	} u[3];
};

PURE static const struct rua_case rua_cases[] = {
	{ "mailto:dmarc@example.com", 1, false,
	  { { true, "dmarc@example.com", "example.com", 0 } } },
	{ " mailto:a@Example.COM.!10m , mailto:b@x.example!20k,", 2, false,
	  { { true, "a@Example.COM.", "example.com", 10485760 },
	    { true, "b@x.example", "x.example", 20480 } } },
	{ "https://reports.example/dmarc", 1, false, { { false, "", "", 0 } } },
	{ "mailto:noat.example", 1, false, { { false, "", "", 0 } } },
	{ "mailto:a@b.example!0", 1, false, { { false, "", "", 0 } } },
	{ "mailto:a@b.example!10x", 1, false, { { false, "", "", 0 } } },
	{ "mailto:a@b.example!99999999999999999t", 1, false,
	  { { false, "", "", 0 } } },
	{ "mailto:a%40b@c.example", 1, false,
	  { { true, "a@b@c.example", "c.example", 0 } } },
	{ "mailto:a@b.example?subject=hi", 1, false,
	  { { true, "a@b.example", "b.example", 0 } } },
	{ "mailto:a%00@b.example", 1, false, { { false, "", "", 0 } } },
	{ "mailto:a%2@b.example", 1, false, { { false, "", "", 0 } } },
	{ "mailto:a b@b.example", 1, false, { { false, "", "", 0 } } },
	{ "mailto:a@b..example", 1, false, { { false, "", "", 0 } } },
	{ "mailto:a@b_x/../example", 1, false, { { false, "", "", 0 } } },
	{ "MAILTO:a@b.example", 1, false,
	  { { true, "a@b.example", "b.example", 0 } } },
	{ ",,,", 0, false, { { false, "", "", 0 } } },
	{ "mailto:1@a.example,mailto:2@a.example,mailto:3@a.example,"
	  "mailto:4@a.example,mailto:5@a.example,mailto:6@a.example,"
	  "mailto:7@a.example,mailto:8@a.example,mailto:9@a.example", 8,
	  true, { { true, "1@a.example", "a.example", 0 } } },
};

PURE static void
test_rua_parse(void **state)
{
	struct rua_uri u[REPORT_RUA_MAX];
	size_t i, j, n;
	bool more;

	(void)state;
	for (i = 0; i < sizeof(rua_cases) / sizeof(rua_cases[0]); i++) {
		const struct rua_case *tc = &rua_cases[i];

		n = rrow_rua_parse(tc->rua, strlen(tc->rua), u,
		    REPORT_RUA_MAX, &more);
		if (n != tc->n || more != tc->more)
			fail_msg("'%s': %zu URIs (more %d), expected %zu",
			    tc->rua, n, more, tc->n);
		for (j = 0; j < n && j < 3 && (j < 1 || tc->n <= 3); j++) {
			if (tc->u[j].addr == NULL)
				break;
			assert_int_equal(u[j].mailto, tc->u[j].mailto);
			if (!u[j].mailto) {
				assert_non_null(u[j].why);
				continue;
			}
			assert_string_equal(u[j].addr, tc->u[j].addr);
			assert_string_equal(u[j].host, tc->u[j].host);
			assert_true(u[j].size_limit == tc->u[j].size);
		}
	}
}

/* ---------------------------------------------------------------- build */

struct build_case {
	const char *name;
	enum dmarc_result result;
	enum dmarc_policy policy, untested;
	bool testing;
	enum pol_action action;
	int rc;
	const char *disposition;
	const char *reasons;	/* space-separated */
};

PURE static const struct build_case build_cases[] = {
	{ "pass, accepted, p=reject", DMARC_R_PASS, DMARC_P_REJECT,
	  DMARC_P_REJECT, false, POL_ACT_ACCEPT, 0, "pass", "" },
	{ "pass, accepted, p=none", DMARC_R_PASS, DMARC_P_NONE, DMARC_P_NONE,
	  false, POL_ACT_ACCEPT, 0, "none", "" },
	{ "pass, refused by another rule", DMARC_R_PASS, DMARC_P_REJECT,
	  DMARC_P_REJECT, false, POL_ACT_REJECT, 0, "reject",
	  "local_policy" },
	{ "fail, rejected as asked", DMARC_R_FAIL, DMARC_P_REJECT,
	  DMARC_P_REJECT, false, POL_ACT_REJECT, 0, "reject", "" },
	{ "fail, quarantined as asked", DMARC_R_FAIL, DMARC_P_QUARANTINE,
	  DMARC_P_QUARANTINE, false, POL_ACT_QUARANTINE, 0, "quarantine",
	  "" },
	{ "fail, accepted against p=reject", DMARC_R_FAIL, DMARC_P_REJECT,
	  DMARC_P_REJECT, false, POL_ACT_ACCEPT, 0, "none", "local_policy" },
	{ "fail, strip counts as delivered", DMARC_R_FAIL, DMARC_P_NONE,
	  DMARC_P_NONE, false, POL_ACT_STRIP, 0, "none", "" },
	{ "fail, t=y stepped reject down to quarantine", DMARC_R_FAIL,
	  DMARC_P_QUARANTINE, DMARC_P_REJECT, true, POL_ACT_QUARANTINE, 0,
	  "quarantine", "policy_test_mode" },
	{ "fail, t=y, and accepted anyway", DMARC_R_FAIL, DMARC_P_QUARANTINE,
	  DMARC_P_REJECT, true, POL_ACT_ACCEPT, 0, "none",
	  "policy_test_mode local_policy" },
	{ "fail, t=y with p=none changes nothing", DMARC_R_FAIL, DMARC_P_NONE,
	  DMARC_P_NONE, true, POL_ACT_ACCEPT, 0, "none", "" },
	{ "tempfail is not reported", DMARC_R_FAIL, DMARC_P_REJECT,
	  DMARC_P_REJECT, false, POL_ACT_TEMPFAIL, 1, NULL, NULL },
	{ "temperror is not reported", DMARC_R_TEMPERROR, DMARC_P_REJECT,
	  DMARC_P_REJECT, false, POL_ACT_ACCEPT, 1, NULL, NULL },
	{ "permerror is not reported", DMARC_R_PERMERROR, DMARC_P_REJECT,
	  DMARC_P_REJECT, false, POL_ACT_ACCEPT, 1, NULL, NULL },
};

/* Message state like session.c hands it over.  Big: static. */
static struct dkimv_result dkres;
static struct dmarc_outcome dmo;
static struct spf_outcome spfo;

static void
sample_msg(struct report_msg *m)
{
	static const char *const sig[][3] = {
		{ "fail", "other.example", "s1" },
		{ "pass", "other.example", "s2" },
		{ "pass", "mail.example.com", "s3" },
		{ "pass", "example.com", "s4" },
		{ "neutral", "example.com", "s5" },
	};
	size_t i;

	memset(&dkres, 0, sizeof(dkres));
	for (i = 0; i < sizeof(sig) / sizeof(sig[0]); i++) {
		strcpy(dkres.sigs[i].result, sig[i][0]);
		strcpy(dkres.sigs[i].domain, sig[i][1]);
		strcpy(dkres.sigs[i].selector, sig[i][2]);
	}
	dkres.nsigs = i;
	strcpy(dkres.best, "pass");
	memset(&dmo, 0, sizeof(dmo));
	dmo.result = DMARC_R_PASS;
	dmo.policy = dmo.policy_untested = DMARC_P_REJECT;
	strcpy(dmo.p, "reject");
	strcpy(dmo.sp, "none");
	strcpy(dmo.np, "reject");
	strcpy(dmo.dis, "none");
	strcpy(dmo.header_from, "example.com");
	strcpy(dmo.org_domain, "example.com");
	strcpy(dmo.policy_domain, "example.com");
	strcpy(dmo.fo, "1");
	strcpy(dmo.rua, "mailto:d@example.com");
	dmo.dkim_aligned = true;
	dmo.aspf_strict = true;
	memset(&spfo, 0, sizeof(spfo));
	spfo.result = SPF_R_SOFTFAIL;
	memset(m, 0, sizeof(*m));
	m->client_ip = "2001:db8::25";
	m->helo = "mx.example.com";
	m->mail_from = "bounce@bounces.example.com";
	m->mail_from_domain = "bounces.example.com";
	m->rcpt_domain = "corp.test";
	m->spf = &spfo;
	m->dkim = &dkres;
	m->dmarc = &dmo;
	m->action = POL_ACT_ACCEPT;
}

PURE static void
run_build(void **state)
{
	const struct build_case *tc = *state;
	struct report_msg m;
	struct report_row r;
	char got[100] = "";
	size_t i;

	sample_msg(&m);
	dmo.result = tc->result;
	dmo.policy = tc->policy;
	dmo.policy_untested = tc->untested;
	dmo.testing = tc->testing;
	m.action = tc->action;
	assert_int_equal(report_row_build(&m, 1000, &r), tc->rc);
	if (tc->rc != 0)
		return;
	assert_string_equal(r.disposition, tc->disposition);
	for (i = 0; i < r.nreason; i++)
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s",
		    i ? " " : "", r.reason[i]);
	assert_string_equal(got, tc->reasons);
	assert_int_equal(r.testing, tc->testing ? 'y' : 'n');
}

PURE static void
test_build_fields(void **state)
{
	struct report_msg m;
	struct report_row r;
	static const char *const order[] = { "s4", "s3", "s2", "s1", "s5" };
	size_t i;

	(void)state;
	sample_msg(&m);
	assert_int_equal(report_row_build(&m, 1234, &r), 0);
	assert_true(r.time == 1234);
	assert_string_equal(r.ip, "2001:db8::25");
	assert_string_equal(r.header_from, "example.com");
	assert_string_equal(r.envelope_from, "bounces.example.com");
	assert_string_equal(r.envelope_to, "corp.test");
	assert_string_equal(r.spf_domain, "bounces.example.com");
	assert_string_equal(r.spf_result, "softfail");
	/* RFC 9990: strict aligned passes, relaxed, other passes, rest */
	assert_int_equal(r.ndkim, 5);
	for (i = 0; i < 5; i++)
		assert_string_equal(r.dkim[i].selector, order[i]);
	assert_true(r.dkim_aligned);
	assert_false(r.spf_aligned);
	assert_string_equal(r.policy_domain, "example.com");
	assert_string_equal(r.p, "reject");
	assert_string_equal(r.sp, "none");
	assert_string_equal(r.np, "reject");
	assert_int_equal(r.adkim, 'r');
	assert_int_equal(r.aspf, 's');
	assert_string_equal(r.fo, "1");
	assert_string_equal(r.rua, "mailto:d@example.com");

	/* the null sender: envelope_from empty, SPF checked the HELO */
	m.mail_from = "";
	m.mail_from_domain = "";
	assert_int_equal(report_row_build(&m, 1234, &r), 0);
	assert_string_equal(r.envelope_from, "");
	assert_string_equal(r.spf_domain, "mx.example.com");

	/* hostile envelope text: controls become '?', too long is empty */
	sample_msg(&m);
	m.mail_from_domain = "evil\x01.example";
	m.rcpt_domain = "x\x7f";
	assert_int_equal(report_row_build(&m, 1, &r), 0);
	assert_string_equal(r.envelope_from, "evil?.example");
	assert_string_equal(r.envelope_to, "x?");
	{
		char longd[REPORT_DOMAIN_MAX + 10];

		memset(longd, 'a', sizeof(longd) - 1);
		longd[sizeof(longd) - 1] = '\0';
		m.mail_from_domain = longd;
		assert_int_equal(report_row_build(&m, 1, &r), 0);
		assert_string_equal(r.envelope_from, "");
	}

	/* no client address, or not an address: nothing to report */
	sample_msg(&m);
	m.client_ip = NULL;
	assert_int_equal(report_row_build(&m, 1, &r), 1);
	m.client_ip = "unix socket";
	assert_int_equal(report_row_build(&m, 1, &r), 1);
	/* no record found: no Policy Domain to report to */
	sample_msg(&m);
	dmo.policy_domain[0] = '\0';
	assert_int_equal(report_row_build(&m, 1, &r), 1);
}

/* ---------------------------------------------------------------- reports */

PURE static bool
have_program(const char *name)
{
	char *cmd = xasprintf("command -v %s >/dev/null 2>&1", name);
	int rc = system(cmd);

	free(cmd);
	return rc == 0;
}

/* Validates doc against the RFC 9990 schema with xmllint; 0 when valid.
 * Without xmllint the test fails: validation is its point. */
PURE static int
xmllint_validate(const char *doc, size_t len)
{
	char path[300], *cmd;
	const char *src = getenv("abs_top_srcdir");
	FILE *fp;
	int rc;

	snprintf(path, sizeof(path), "%s/doc.xml", tmpdir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(doc, 1, len, fp), len);
	fclose(fp);
	cmd = xasprintf("xmllint --noout --schema "
	    "'%s/tests/data/report/dmarc-2.0.xsd' '%s' >'%s.log' 2>&1",
	    src != NULL ? src : "../..", path, path);
	rc = system(cmd);
	if (rc != 0) {
		free(cmd);
		cmd = xasprintf("sed 's/^/# /' '%s.log'", path);
		(void)system(cmd);
	}
	free(cmd);
	return rc;
}

PURE static size_t
count_str(const char *hay, const char *needle)
{
	size_t n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

PURE static void
test_grouping_and_xml(void **state)
{
	struct agg *a = agg_new();
	struct report_row r;
	struct agg_meta m = { "Portcullis <Test> & Co", "postmaster@mx.test",
	    NULL, "00112233aabbccdd", 1743465600, 1743551999,
	    "portcullis test" };
	struct buf xml;
	char err[200];
	size_t records, i;
	uint64_t msgs;

	(void)state;
	assert_true(have_program("xmllint"));
	sample_row(&r);
	/* three identical messages (time and id differ: one record) */
	for (i = 0; i < 3; i++) {
		r.time = 1743500000 + i;
		r.id = i;
		assert_int_equal(agg_add(a, &r, err, sizeof(err)), 0);
	}
	/* another source IP: another record */
	strcpy(r.ip, "198.51.100.7");
	assert_int_equal(agg_add(a, &r, err, sizeof(err)), 0);
	/* same IP, the DKIM result differs: another record */
	strcpy(r.dkim[1].result, "temperror");
	assert_int_equal(agg_add(a, &r, err, sizeof(err)), 0);
	assert_int_equal(agg_add(a, &r, err, sizeof(err)), 0);
	/* a failure quarantined, with a hostile envelope, a new policy
	 * published later (the last one is reported) */
	sample_row(&r);
	r.time = 1743540000;
	strcpy(r.ip, "203.0.113.9");
	strcpy(r.envelope_from, "x<y>&\"z'.example");
	strcpy(r.disposition, "quarantine");
	r.dkim_aligned = false;
	strcpy(r.reason[0], "policy_test_mode");
	r.nreason = 1;
	strcpy(r.p, "quarantine");
	r.testing = 'y';
	r.ndkim = 0;
	assert_int_equal(agg_add(a, &r, err, sizeof(err)), 0);
	/* a subdomain without its own record: the same Policy Domain */
	sample_row(&r);
	strcpy(r.header_from, "news.example.com");
	r.time = 1743400000;	/* older: its policy is not the one shown */
	strcpy(r.p, "none");
	assert_int_equal(agg_add(a, &r, err, sizeof(err)), 0);
	/* another Policy Domain */
	sample_row(&r);
	strcpy(r.policy_domain, "other.example");
	strcpy(r.header_from, "other.example");
	strcpy(r.envelope_from, "");	/* null reverse-path */
	r.rua[0] = '\0';
	assert_int_equal(agg_add(a, &r, err, sizeof(err)), 0);

	assert_int_equal(agg_ndomains(a), 2);
	assert_string_equal(agg_domain(a, 0), "example.com");
	assert_string_equal(agg_domain(a, 1), "other.example");
	agg_domain_counts(a, 0, &records, &msgs);
	assert_int_equal(records, 5);
	assert_true(msgs == 8);
	agg_domain_counts(a, 1, &records, &msgs);
	assert_int_equal(records, 1);
	assert_true(msgs == 1);
	assert_string_equal(agg_domain_rua(a, 0),
	    "mailto:dmarc@example.com, mailto:x%20y@ext.example");
	assert_string_equal(agg_domain_rua(a, 1), "");

	buf_init(&xml, AGG_XML_MAX);
	assert_int_equal(agg_xml(a, 0, &m, &xml), 0);
	assert_int_equal(xmllint_validate(xml.p, xml.len), 0);
	assert_non_null(strstr(xml.p, "<feedback xmlns=\""
	    "urn:ietf:params:xml:ns:dmarc-2.0\">"));
	assert_non_null(strstr(xml.p, "<org_name>Portcullis &lt;Test&gt; "
	    "&amp; Co</org_name>"));
	assert_non_null(strstr(xml.p, "<begin>1743465600</begin>"));
	assert_non_null(strstr(xml.p, "<end>1743551999</end>"));
	/* the latest policy seen */
	assert_non_null(strstr(xml.p, "<p>quarantine</p>"));
	assert_non_null(strstr(xml.p, "<testing>y</testing>"));
	assert_non_null(strstr(xml.p, "<discovery_method>treewalk"));
	assert_int_equal(count_str(xml.p, "<record>"), 5);
	/* records sorted by source IP: the three first */
	assert_non_null(strstr(xml.p, "<source_ip>192.0.2.1</source_ip>\n"
	    "      <count>3</count>"));
	assert_non_null(strstr(xml.p, "<source_ip>198.51.100.7</source_ip>\n"
	    "      <count>2</count>"));
	assert_non_null(strstr(xml.p, "<source_ip>198.51.100.7</source_ip>\n"
	    "      <count>1</count>"));
	assert_int_equal(count_str(xml.p, "<count>1</count>"), 3);
	assert_non_null(strstr(xml.p, "<envelope_from>x&lt;y&gt;&amp;&quot;"
	    "z&apos;.example</envelope_from>"));
	assert_non_null(strstr(xml.p, "<reason>\n          <type>"
	    "policy_test_mode</type>"));
	assert_non_null(strstr(xml.p, "<header_from>news.example.com"));
	assert_int_equal(count_str(xml.p, "<scope>mfrom</scope>"), 5);
	assert_non_null(strstr(xml.p, "<selector></selector>"));
	assert_true(xml.p[xml.len - 1] == '\n');

	assert_int_equal(agg_xml(a, 1, &m, &xml), 0);
	assert_int_equal(xmllint_validate(xml.p, xml.len), 0);
	assert_non_null(strstr(xml.p, "<envelope_from></envelope_from>"));
	assert_int_equal(agg_xml(a, 2, &m, &xml), -1);

	/* the validator is not a rubber stamp: a broken document fails */
	{
		char *bad = xstrdup(xml.p), *p = strstr(bad, "<dkim>pass");

		if (p == NULL)
			p = strstr(bad, "<dkim>fail");
		assert_non_null(p);
		memcpy(p + 6, "good", 4);
		assert_int_not_equal(xmllint_validate(bad, strlen(bad)), 0);
		free(bad);
	}
	buf_free(&xml);
	agg_free(a);
}

PURE static void
test_many_groups(void **state)
{
	struct agg *a = agg_new();
	struct report_row r;
	char err[200];
	size_t records, i;
	uint64_t msgs;

	(void)state;
	sample_row(&r);
	/* enough to grow both tables several times */
	for (i = 0; i < 20000; i++) {
		snprintf(r.ip, sizeof(r.ip), "10.%zu.%zu.%zu", i >> 16,
		    (i >> 8) & 255, i & 255);
		snprintf(r.policy_domain, sizeof(r.policy_domain),
		    "d%zu.example", i % 1500);
		assert_int_equal(agg_add(a, &r, err, sizeof(err)), 0);
		assert_int_equal(agg_add(a, &r, err, sizeof(err)), 0);
	}
	assert_int_equal(agg_ndomains(a), 1500);
	agg_domain_counts(a, 0, &records, &msgs);
	assert_string_equal(agg_domain(a, 0), "d0.example");
	assert_true(records == 14 && msgs == 28);
	agg_free(a);
}

PURE static void
test_names(void **state)
{
	char id[32], id2[32], name[600];

	(void)state;
	assert_int_equal(agg_report_id("mx.corp.test", "example.com",
	    1743465600, 1743551999, id, sizeof(id)), 0);
	assert_int_equal(strlen(id), 16);
	assert_int_equal(strspn(id, "0123456789abcdef"), 16);
	/* the same period again: the same name (RFC 9990 re-sends) */
	assert_int_equal(agg_report_id("mx.corp.test", "example.com",
	    1743465600, 1743551999, id2, sizeof(id2)), 0);
	assert_string_equal(id, id2);
	assert_int_equal(agg_report_id("mx.corp.test", "example.com",
	    1743465600, 1743552000, id2, sizeof(id2)), 0);
	assert_string_not_equal(id, id2);
	assert_int_equal(agg_filename("mx.corp.test", "example.com",
	    1743465600, 1743551999, id, false, name, sizeof(name)), 0);
	assert_true(strncmp(name, "mx.corp.test!example.com!1743465600!"
	    "1743551999!", 36) == 0);
	assert_string_equal(name + strlen(name) - 4, ".xml");
	assert_int_equal(agg_filename("mx.corp.test", "example.com",
	    1, 2, id, true, name, sizeof(name)), 0);
	assert_string_equal(name + strlen(name) - 7, ".xml.gz");
	/* names that could leave the directory are refused */
	assert_int_equal(agg_filename("mx.corp.test", "../etc", 1, 2, id,
	    false, name, sizeof(name)), -1);
	assert_int_equal(agg_filename("mx/corp", "example.com", 1, 2, id,
	    false, name, sizeof(name)), -1);
	assert_int_equal(agg_report_id("MX.test", "example.com", 1, 2, id,
	    sizeof(id)), -1);
	assert_int_equal(agg_filename("mx.corp.test", "example.com", 1, 2,
	    id, false, name, 20), -1);
}

/* ---------------------------------------------------------------- stores */

static int
rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

struct scan_count {
	size_t rows, bad;
	uint64_t first, last;
	size_t stop_after;
};

static int
count_cb(uint64_t t, const char *val, size_t vlen, void *arg)
{
	struct scan_count *c = arg;
	struct report_row r;

	if (rrow_decode(val, vlen, &r) != 0 || r.time != t)
		c->bad++;
	if (c->rows == 0)
		c->first = t;
	c->last = t;
	c->rows++;
	return c->stop_after != 0 && c->rows == c->stop_after ? 7 : 0;
}

/* The recorder over a store: queued rows are written by the writer
 * thread, scanned by time range, expired by range. */
static void
store_roundtrip(const char *spec)
{
	char err[300];
	struct report_store *st = report_store_acquire(spec, true, err,
	    sizeof(err)), *again;
	const struct rep_store_ops *ops;
	struct report_counters before, after;
	struct report_msg m;
	struct scan_count c;
	struct rep_kv kv[1];
	struct report_row r;
	struct buf val;
	char key[REPORT_KEY_MAX + 1];
	void *h;
	uint64_t n;
	size_t i;

	if (st == NULL)
		fail_msg("%s", err);
	/* one store per spec, shared */
	again = report_store_acquire(spec, false, err, sizeof(err));
	assert_ptr_equal(again, st);
	report_store_release(again);
	ops = report_store_ops(st, &h);

	/* rows at known times, straight through the backend (2500: more
	 * than one Redis page and one LMDB expire step) */
	buf_init(&val, REPORT_VALUE_MAX);
	sample_row(&r);
	for (i = 0; i < 2500; i++) {
		r.time = 1000 + i / 10;		/* ten rows a second */
		r.id = i;
		assert_int_equal(rrow_encode(&r, &val), 0);
		kv[0].time = r.time;
		kv[0].klen = report_key(r.time, r.id, key);
		kv[0].key = key;
		kv[0].val = val.p;
		kv[0].vlen = val.len;
		assert_int_equal(ops->put(h, kv, 1), 0);
	}
	buf_free(&val);
	memset(&c, 0, sizeof(c));
	assert_int_equal(ops->scan(h, 1010, 1020, count_cb, &c), 0);
	assert_int_equal(c.rows, 100);
	assert_int_equal(c.bad, 0);
	assert_true(c.first == 1010 && c.last == 1019);
	memset(&c, 0, sizeof(c));
	assert_int_equal(ops->scan(h, 0, 5000, count_cb, &c), 0);
	assert_int_equal(c.rows, 2500);
	assert_true(c.first == 1000 && c.last == 1249);
	memset(&c, 0, sizeof(c));
	c.stop_after = 5;
	assert_int_equal(ops->scan(h, 0, 5000, count_cb, &c), 7);
	assert_int_equal(c.rows, 5);

	/* the recorder: queued, written by the thread */
	report_counters(&before);
	sample_msg(&m);
	for (i = 0; i < 50; i++)
		report_record(st, &m);
	m.action = POL_ACT_TEMPFAIL;	/* not reported */
	report_record(st, &m);
	report_store_flush(st);
	report_counters(&after);
	assert_true(after.queued - before.queued == 50);
	assert_true(after.written - before.written == 50);
	assert_true(after.skipped - before.skipped == 1);
	assert_true(after.dropped == before.dropped);
	memset(&c, 0, sizeof(c));
	assert_int_equal(ops->scan(h, 1000000, UINT32_MAX, count_cb, &c), 0);
	assert_int_equal(c.rows, 50);
	assert_int_equal(c.bad, 0);

	/* expire a range: only that range goes */
	assert_int_equal(ops->expire(h, 1010, 1240, &n), 0);
	assert_true(n == 2300);
	memset(&c, 0, sizeof(c));
	assert_int_equal(ops->scan(h, 0, 5000, count_cb, &c), 0);
	assert_int_equal(c.rows, 200);
	assert_int_equal(ops->expire(h, 0, UINT32_MAX, &n), 0);
	assert_true(n == 250);
	memset(&c, 0, sizeof(c));
	assert_int_equal(ops->scan(h, 0, UINT32_MAX, count_cb, &c), 0);
	assert_int_equal(c.rows, 0);
	report_store_release(st);
}

#ifndef REPORT_TEST_REDIS
static void
test_store_lmdb(void **state)
{
	char *spec = xasprintf("lmdb:%s/rows", tmpdir);
	char err[300];

	(void)state;
	store_roundtrip(spec);
	free(spec);
	/* errors name the store */
	assert_null(report_store_acquire("lmdb:/proc/nope/x", false, err,
	    sizeof(err)));
	assert_non_null(strstr(err, "report store"));
	assert_null(report_store_acquire("file:/x", false, err,
	    sizeof(err)));
	assert_non_null(strstr(err, "expected lmdb:DIR"));
	assert_null(report_store_acquire("lmdb:/tmp/x?mapsize=big", false,
	    err, sizeof(err)));
}
#else
static void
test_store_redis(void **state)
{
	char *spec = xasprintf("redis://%s/redis.sock?db=3", tmpdir);

	(void)state;
	store_roundtrip(spec);
	free(spec);
}
#endif

/* ---------------------------------------------------------------- main */

static int
setup(void **state)
{
	(void)state;
	if (mkdtemp(tmpdir) == NULL)
		return -1;
#ifdef REPORT_TEST_REDIS
	{
		char *sock = xasprintf("%s/redis.sock", tmpdir);
		pid_t pid = fork();

		if (pid < 0)
			return -1;
		if (pid == 0) {
			int fd = open("/dev/null", O_WRONLY);

			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
			}
			execlp("redis-server", "redis-server", "--port", "0",
			    "--unixsocket", sock, "--save", "",
			    "--appendonly", "no", "--dir", tmpdir,
			    (char *)NULL);
			_exit(127);
		}
		redis_pid = pid;
		/* ready when it answers PING (the socket file exists from
		 * bind(), before listen()) */
		for (int i = 0; i < 500; i++) {
			struct timeval tv = { 1, 0 };
			redisContext *c = redisConnectUnixWithTimeout(sock, tv);
			redisReply *r = NULL;
			bool up = false;

			if (c != NULL && c->err == 0 &&
			    (r = redisCommand(c, "PING")) != NULL)
				up = r->type == REDIS_REPLY_STATUS;
			if (r != NULL)
				freeReplyObject(r);
			if (c != NULL)
				redisFree(c);
			if (up)
				break;
			usleep(10000);	/* poll interval */
		}
		free(sock);
	}
#endif
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	if (redis_pid > 0) {
		kill(redis_pid, SIGTERM);
		waitpid(redis_pid, NULL, 0);
	}
	(void)nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

#define CASES(fn, table) do { \
	for (size_t i_ = 0; i_ < sizeof(table) / sizeof(table[0]); i_++) { \
		tests[n].name = table[i_].name; \
		tests[n].test_func = fn; \
		tests[n].initial_state = (void *)&table[i_]; \
		n++; \
	} \
} while (0)

int
main(void)
{
	struct CMUnitTest tests[100];
	size_t n = 0;

	memset(tests, 0, sizeof(tests));
#ifndef REPORT_TEST_REDIS
	CASES(run_decode, decode_cases);
	CASES(run_build, build_cases);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_row_roundtrip);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_decode_limits);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_xml_escape);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_rua_parse);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_build_fields);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(
	    test_grouping_and_xml);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_many_groups);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_names);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_store_lmdb);
	return _cmocka_run_group_tests("report", tests, n, setup, teardown);
#else
	if (system("command -v redis-server >/dev/null 2>&1") != 0) {
		printf("1..0 # SKIP redis-server not found: the Redis report "
		    "store is untested\n");
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_store_redis);
	return _cmocka_run_group_tests("report_redis", tests, n, setup,
	    teardown);
#endif
}
