/*
 * authres_test.c - unit tests for milter/authres.c (Authentication-Results).
 * Owns: nothing; table rows for ar_build() (input, exact value or -1) and
 * for ar_is_ours() (raw value with length, expected answer).
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "authres.h"

#define ID	"mx.corp.example"

static const struct ar_dkim_sig sig_example[] = {
	{ "pass", 2048, "sender.example", "sel", "AbCdEfGh", false, false,
	  false },
};

static const struct ar_dkim_sig sig_many[] = {
	{ "pass", 2048, "sender.example", "sel", "AbCdEfGhIjKl", false, false,
	  false },
	{ "fail", 1024, "list.example", "s1.sub", "ab/+\r\n\t cd=e", false,
	  false, false },
	{ "permerror", 0, NULL, NULL, NULL, false, false, false },
	{ "NEUTRAL", 0, "x.example", "", "", false, false, false },
};

/* The comment: key type, a partly signed body, a testing key. */
static const struct ar_dkim_sig sig_comments[] = {
	{ "pass", 0, "a.example", "ed", "EdEdEdEd", true, false, false },
	{ "pass", 2048, "b.example", "l", "LlLlLlLl", false, true, false },
	{ "pass", 1024, "c.example", "t", "TtTtTtTt", false, true, true },
	{ "fail", 0, "d.example", "x", "XxXxXxXx", false, false, true },
};

static const struct ar_dkim_sig sig_hostile[] = {
	{ "pass", 2048, "evil.example;\r\n\tdkim=pass", "s;el\r\nX: y",
	  "\"\\\x01", false, false, false },
};

static const struct ar_dkim_sig sig_badresult[] = {
	{ "pass; dmarc=pass", 2048, "sender.example", "sel", "AbCdEfGh", false,
	  false, false },
};

/* A local-part of 300 bytes: the property goes, the header stays. */
#define L10	"llllllllll"
#define L100	L10 L10 L10 L10 L10 L10 L10 L10 L10 L10
#define LONG_ADDR	L100 L100 L100 "@sender.example"

struct build_case {
	const char		*name;
	struct ar_input		 in;
	int			 rc;
	const char		*out;	/* exact value when rc == 0 */
};

#define MF	"alice@sender.example"
#define HELO	"mail.sender.example"
#define FROM	"sender.example"

static const struct build_case builds[] = {
	{ "DESIGN.md section 6 example",
	  { ID, "pass", MF, HELO, sig_example, 1, "pass", "reject", "reject",
	    "none", FROM }, 0,
	  "mx.corp.example;\n"
	  "\tspf=pass smtp.mailfrom=alice@sender.example"
	  " smtp.helo=mail.sender.example;\n"
	  "\tdkim=pass (2048-bit key) header.d=sender.example header.s=sel"
	  " header.b=AbCdEfGh;\n"
	  "\tdmarc=pass (p=reject sp=reject dis=none)"
	  " header.from=sender.example" },
	{ "pipeline before the checks: all none",
	  { ID, "none", MF, HELO, NULL, 0, "none", NULL, NULL, NULL, FROM }, 0,
	  "mx.corp.example;\n"
	  "\tspf=none smtp.mailfrom=alice@sender.example"
	  " smtp.helo=mail.sender.example;\n"
	  "\tdkim=none;\n"
	  "\tdmarc=none header.from=sender.example" },
	{ "NULL results are none",
	  { ID, NULL, MF, HELO, NULL, 0, NULL, NULL, NULL, NULL, NULL }, 0,
	  "mx.corp.example;\n"
	  "\tspf=none smtp.mailfrom=alice@sender.example"
	  " smtp.helo=mail.sender.example;\n"
	  "\tdkim=none;\n"
	  "\tdmarc=none" },
	{ "null sender \"\"",
	  { ID, "pass", "", HELO, NULL, 0, "none", NULL, NULL, NULL, FROM }, 0,
	  "mx.corp.example;\n"
	  "\tspf=pass smtp.mailfrom=postmaster@mail.sender.example"
	  " smtp.helo=mail.sender.example;\n"
	  "\tdkim=none;\n"
	  "\tdmarc=none header.from=sender.example" },
	{ "null sender NULL",
	  { ID, "pass", NULL, HELO, NULL, 0, "none", NULL, NULL, NULL, FROM },
	  0,
	  "mx.corp.example;\n"
	  "\tspf=pass smtp.mailfrom=postmaster@mail.sender.example"
	  " smtp.helo=mail.sender.example;\n"
	  "\tdkim=none;\n"
	  "\tdmarc=none header.from=sender.example" },
	{ "null sender <>",
	  { ID, "none", "<>", HELO, NULL, 0, NULL, NULL, NULL, NULL, NULL }, 0,
	  "mx.corp.example;\n"
	  "\tspf=none smtp.mailfrom=postmaster@mail.sender.example"
	  " smtp.helo=mail.sender.example;\n"
	  "\tdkim=none;\n"
	  "\tdmarc=none" },
	{ "null sender without HELO",
	  { ID, "none", "", NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL }, 0,
	  "mx.corp.example;\n\tspf=none;\n\tdkim=none;\n\tdmarc=none" },
	{ "null sender, address-literal HELO",
	  { ID, "none", "", "[192.0.2.1]", NULL, 0, NULL, NULL, NULL, NULL,
	    NULL }, 0,
	  "mx.corp.example;\n"
	  "\tspf=none smtp.mailfrom=\"postmaster@[192.0.2.1]\""
	  " smtp.helo=\"[192.0.2.1]\";\n"
	  "\tdkim=none;\n\tdmarc=none" },
	{ "angle brackets stripped",
	  { ID, "softfail", "<" MF ">", HELO, NULL, 0, "fail", "quarantine",
	    NULL, "quarantine", FROM }, 0,
	  "mx.corp.example;\n"
	  "\tspf=softfail smtp.mailfrom=alice@sender.example"
	  " smtp.helo=mail.sender.example;\n"
	  "\tdkim=none;\n"
	  "\tdmarc=fail (p=quarantine dis=quarantine)"
	  " header.from=sender.example" },
	{ "results are case-insensitive, written lowercase",
	  { ID, "PermError", MF, NULL, NULL, 0, "TempError", NULL, NULL, NULL,
	    NULL }, 0,
	  "mx.corp.example;\n"
	  "\tspf=permerror smtp.mailfrom=alice@sender.example;\n"
	  "\tdkim=none;\n\tdmarc=temperror" },
	{ "several signatures, b= quoted and trimmed",
	  { ID, "pass", MF, HELO, sig_many, 4, "pass", NULL, NULL, NULL,
	    FROM }, 0,
	  "mx.corp.example;\n"
	  "\tspf=pass smtp.mailfrom=alice@sender.example"
	  " smtp.helo=mail.sender.example;\n"
	  "\tdkim=pass (2048-bit key) header.d=sender.example header.s=sel"
	  " header.b=AbCdEfGh;\n"
	  "\tdkim=fail (1024-bit key) header.d=list.example header.s=s1.sub"
	  " header.b=\"ab/+cd=e\";\n"
	  "\tdkim=permerror;\n"
	  "\tdkim=neutral header.d=x.example;\n"
	  "\tdmarc=pass header.from=sender.example" },
	{ "dkim comments: ed25519 key, l=, testing key",
	  { ID, "pass", MF, HELO, sig_comments, 4, "pass", NULL, NULL, NULL,
	    FROM }, 0,
	  "mx.corp.example;\n"
	  "\tspf=pass smtp.mailfrom=alice@sender.example"
	  " smtp.helo=mail.sender.example;\n"
	  "\tdkim=pass (ed25519 key) header.d=a.example header.s=ed"
	  " header.b=EdEdEdEd;\n"
	  "\tdkim=pass (2048-bit key; partial body signed (l=))"
	  " header.d=b.example header.s=l header.b=LlLlLlLl;\n"
	  "\tdkim=pass (1024-bit key; partial body signed (l=); testing key)"
	  " header.d=c.example header.s=t header.b=TtTtTtTt;\n"
	  "\tdkim=fail (testing key) header.d=d.example header.s=x"
	  " header.b=XxXxXxXx;\n"
	  "\tdmarc=pass header.from=sender.example" },
	{ "local-part with space is quoted",
	  { ID, "fail", "john doe@sender.example", HELO, NULL, 0, NULL, NULL,
	    NULL, NULL, NULL }, 0,
	  "mx.corp.example;\n"
	  "\tspf=fail smtp.mailfrom=\"john doe\"@sender.example"
	  " smtp.helo=mail.sender.example;\n"
	  "\tdkim=none;\n\tdmarc=none" },
	{ "quoted local-part kept",
	  { ID, "fail", "<\"john doe\"@sender.example>", NULL, NULL, 0, NULL,
	    NULL, NULL, NULL, NULL }, 0,
	  "mx.corp.example;\n"
	  "\tspf=fail smtp.mailfrom=\"john doe\"@sender.example;\n"
	  "\tdkim=none;\n\tdmarc=none" },
	{ "dot-atom specials kept",
	  { ID, "pass", "a.b+tag=x/y@sender.example", NULL, NULL, 0, NULL,
	    NULL, NULL, NULL, NULL }, 0,
	  "mx.corp.example;\n"
	  "\tspf=pass smtp.mailfrom=a.b+tag=x/y@sender.example;\n"
	  "\tdkim=none;\n\tdmarc=none" },
	{ "semicolon and CRLF in local-part",
	  { ID, "pass", "a;b\r\nX-Injected: 1@sender.example", NULL, NULL, 0,
	    NULL, NULL, NULL, NULL, NULL }, 0,
	  "mx.corp.example;\n"
	  "\tspf=pass smtp.mailfrom=\"a;b??X-Injected: 1\"@sender.example;\n"
	  "\tdkim=none;\n\tdmarc=none" },
	{ "quote and backslash escaped",
	  { ID, "pass", "a\"b\\c@sender.example", NULL, NULL, 0, NULL, NULL,
	    NULL, NULL, NULL }, 0,
	  "mx.corp.example;\n"
	  "\tspf=pass smtp.mailfrom=\"a\\\"b\\\\c\"@sender.example;\n"
	  "\tdkim=none;\n\tdmarc=none" },
	{ "hostile HELO and null sender",
	  { ID, "none", "", "mail.example; dkim=pass", NULL, 0, NULL, NULL,
	    NULL, NULL, NULL }, 0,
	  "mx.corp.example;\n"
	  "\tspf=none smtp.mailfrom=\"postmaster@mail.example; dkim=pass\""
	  " smtp.helo=\"mail.example; dkim=pass\";\n"
	  "\tdkim=none;\n\tdmarc=none" },
	{ "hostile domain without @",
	  { ID, "none", "nobody", "localhost", NULL, 0, NULL, NULL, NULL, NULL,
	    "example.org\r\nBcc: x" }, 0,
	  "mx.corp.example;\n"
	  "\tspf=none smtp.mailfrom=\"nobody\" smtp.helo=\"localhost\";\n"
	  "\tdkim=none;\n"
	  "\tdmarc=none header.from=\"example.org??Bcc: x\"" },
	{ "hostile dkim fields",
	  { ID, "none", MF, NULL, sig_hostile, 1, NULL, NULL, NULL, NULL,
	    NULL }, 0,
	  "mx.corp.example;\n"
	  "\tspf=none smtp.mailfrom=alice@sender.example;\n"
	  "\tdkim=pass (2048-bit key)"
	  " header.d=\"evil.example;???dkim=pass\""
	  " header.s=\"s;el??X: y\" header.b=\"\\\"\\\\?\";\n"
	  "\tdmarc=none" },
	{ "hostile dmarc comment words left out",
	  { ID, "none", MF, NULL, NULL, 0, "fail", "reject) (x", "none",
	    "\r\nX: y", FROM }, 0,
	  "mx.corp.example;\n"
	  "\tspf=none smtp.mailfrom=alice@sender.example;\n"
	  "\tdkim=none;\n"
	  "\tdmarc=fail (sp=none) header.from=sender.example" },
	{ "UTF-8 local-part quoted, invalid bytes as ?",
	  { ID, "none", "j\xc3\xb6rg\xff@sender.example", NULL, NULL, 0, NULL,
	    NULL, NULL, NULL, NULL }, 0,
	  "mx.corp.example;\n"
	  "\tspf=none smtp.mailfrom=\"j\xc3\xb6rg?\"@sender.example;\n"
	  "\tdkim=none;\n\tdmarc=none" },
	{ "over-long value left out",
	  { ID, "none", LONG_ADDR, HELO, NULL, 0, NULL, NULL, NULL, NULL,
	    NULL }, 0,
	  "mx.corp.example;\n"
	  "\tspf=none smtp.helo=mail.sender.example;\n"
	  "\tdkim=none;\n\tdmarc=none" },
	{ "authserv-id that is not a token is quoted",
	  { "mx corp", NULL, MF, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL },
	  0,
	  "\"mx corp\";\n"
	  "\tspf=none smtp.mailfrom=alice@sender.example;\n"
	  "\tdkim=none;\n\tdmarc=none" },
	{ "unknown spf result",
	  { ID, "pass; dkim=pass", MF, HELO, NULL, 0, NULL, NULL, NULL, NULL,
	    NULL }, -1, NULL },
	{ "unknown dkim result",
	  { ID, "pass", MF, HELO, sig_badresult, 1, NULL, NULL, NULL, NULL,
	    NULL }, -1, NULL },
	{ "dmarc has no softfail",
	  { ID, "pass", MF, HELO, NULL, 0, "softfail", NULL, NULL, NULL,
	    NULL }, -1, NULL },
	{ "empty result",
	  { ID, "", MF, HELO, NULL, 0, NULL, NULL, NULL, NULL, NULL }, -1,
	  NULL },
	{ "no authserv-id",
	  { NULL, "pass", MF, HELO, NULL, 0, NULL, NULL, NULL, NULL, NULL },
	  -1, NULL },
	{ "empty authserv-id",
	  { "", "pass", MF, HELO, NULL, 0, NULL, NULL, NULL, NULL, NULL },
	  -1, NULL },
	{ "ndkim without dkim",
	  { ID, "pass", MF, HELO, NULL, 2, NULL, NULL, NULL, NULL, NULL },
	  -1, NULL },
};

/* No line may be cut into a new header, whatever the input. */
static void
check_header_safe(const char *v)
{
	size_t	i, col = 0;

	for (i = 0; v[i] != '\0'; i++) {
		assert_true(v[i] != '\r');
		if (v[i] == '\n') {
			assert_true(v[i + 1] == '\t');
			col = 0;
			continue;
		}
		assert_true(++col < 998);
	}
}

static void
run_build(void **state)
{
	const struct build_case	*c = *state;
	char			*out = (char *)1;

	assert_int_equal(ar_build(&c->in, &out), c->rc);
	if (c->rc == -1) {
		assert_null(out);
		return;
	}
	assert_non_null(out);
	check_header_safe(out);
	assert_string_equal(out, c->out);
	free(out);
}

static void
test_build_null(void **state)
{
	char	*out = (char *)1;

	(void)state;
	assert_int_equal(ar_build(NULL, &out), -1);
	assert_null(out);
	assert_int_equal(ar_build(&builds[0].in, NULL), -1);
}

/* Longest values everywhere: lines stay under 998. */
static void
test_build_max(void **state)
{
	char			 big[AR_PVALUE_MAX - 1];
	char			 addr[AR_PVALUE_MAX + 1];
	struct ar_dkim_sig	 sig;
	struct ar_input		 in;
	char			*out;

	(void)state;
	memset(big, '"', sizeof(big) - 1);	/* quoting doubles: omitted */
	big[sizeof(big) - 1] = '\0';
	memset(addr, 'a', sizeof(addr) - 1);
	memcpy(addr + sizeof(addr) - 1 - 12, "@example.org", 12);
	addr[sizeof(addr) - 1] = '\0';
	sig = (struct ar_dkim_sig){ "temperror", 65535, addr, addr, addr,
	    true, true, true };
	in = (struct ar_input){ ID, "temperror", addr, addr, &sig, 1,
	    "temperror", big, big, big, addr };
	assert_int_equal(ar_build(&in, &out), 0);
	check_header_safe(out);
	free(out);
	in.smtp_mailfrom = big;
	in.smtp_helo = big;
	assert_int_equal(ar_build(&in, &out), 0);
	check_header_safe(out);
	assert_null(strstr(out, "smtp."));
	free(out);
}

/* A hostile number of big signatures: capped, never a failure. */
static void
test_build_many_sigs(void **state)
{
	static struct ar_dkim_sig	 sigs[AR_DKIM_MAX + 36];
	char				 dom[AR_PVALUE_MAX + 1];
	struct ar_input			 in;
	char				*out, *p;
	size_t				 i, n = 0;

	(void)state;
	memset(dom, 'd', sizeof(dom) - 1);
	memcpy(dom + sizeof(dom) - 1 - 4, ".org", 4);
	dom[sizeof(dom) - 1] = '\0';
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigs[i] = (struct ar_dkim_sig){ "temperror", 65535, dom,
		    dom, "AbCdEfGh", false, true, true };
	in = (struct ar_input){ ID, NULL, MF, HELO, sigs,
	    sizeof(sigs) / sizeof(sigs[0]), NULL, NULL, NULL, NULL, NULL };
	assert_int_equal(ar_build(&in, &out), 0);
	check_header_safe(out);
	for (p = out; (p = strstr(p, "\n\tdkim=")) != NULL; p++)
		n++;
	assert_int_equal(n, AR_DKIM_MAX);
	free(out);
}

struct ours_case {
	const char	*name;
	const char	*value;
	size_t		 len;
	const char	*id;
	bool		 ours;
};

#define V(s)	(s), sizeof(s) - 1

static const struct ours_case ours[] = {
	{ "plain", V("mx.corp.example; spf=pass"), ID, true },
	{ "with version", V("mx.corp.example 1; spf=pass"), ID, true },
	{ "comment first", V("(comment) mx.corp.example 1; spf=pass"), ID,
	  true },
	{ "nested comment, quoted-pair",
	  V("(a (nested) \\) b) mx.corp.example; none"), ID, true },
	{ "folded, leading space, case",
	  V(" \r\n\t(c)\n MX.Corp.Example; spf=pass"), ID, true },
	{ "no space before ;", V("mx.corp.example;spf=pass"), ID, true },
	{ "comment after id", V("mx.corp.example(x); dkim=none"), ID, true },
	{ "id alone", V("mx.corp.example"), ID, true },
	{ "quoted id", V("\"mx.corp.example\"; spf=pass"), ID, true },
	{ "quoted id with quoted-pair", V("\"mx.corp.ex\\ample\" 1; none"),
	  ID, true },
	{ "tspecial ends token (removed: safe side)",
	  V("mx.corp.example/evil; x"), ID, true },
	{ "NUL ends token (removed: safe side)",
	  V("mx.corp.example\0.evil; x"), ID, true },
	{ "suffix", V("mx.corp.example.evil; spf=pass"), ID, false },
	{ "suffix with dash", V("mx.corp.example-evil; spf=pass"), ID,
	  false },
	{ "prefix", V("evil.mx.corp.example; spf=pass"), ID, false },
	{ "shorter", V("mx.corp.exampl; spf=pass"), ID, false },
	{ "8-bit suffix", V("mx.corp.example\xc3\xa9; spf=pass"), ID, false },
	{ "other id", V("other.example; spf=pass"), ID, false },
	{ "our id only in a comment",
	  V("(mx.corp.example) other.example; spf=pass"), ID, false },
	{ "unterminated comment", V("(mx.corp.example; spf=pass"), ID,
	  false },
	{ "unterminated quoted id", V("\"mx.corp.example"), ID, false },
	{ "quoted suffix", V("\"mx.corp.example.evil\"; x"), ID, false },
	{ "empty", V(""), ID, false },
	{ "only CFWS", V(" (x) \r\n "), ID, false },
	{ "length bounds the read", "mx.corp.example; spf=pass", 10, ID,
	  false },
	{ "length cuts exactly after id", "mx.corp.example.evil", 15, ID,
	  true },
	{ "empty id", V("mx.corp.example;"), "", false },
	{ "NULL id", V("mx.corp.example;"), NULL, false },
	{ "NULL value", NULL, 0, ID, false },
};

static void
run_ours(void **state)
{
	const struct ours_case	*c = *state;

	assert_int_equal(ar_is_ours(c->value, c->len, c->id), c->ours);
}

/* Our own output is recognised as ours, and only by our id. */
static void
test_roundtrip(void **state)
{
	char	*out;
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(builds) / sizeof(builds[0]); i++) {
		if (builds[i].rc != 0)
			continue;
		assert_int_equal(ar_build(&builds[i].in, &out), 0);
		assert_true(ar_is_ours(out, strlen(out),
		    builds[i].in.authserv_id));
		assert_false(ar_is_ours(out, strlen(out), "other.example"));
		free(out);
	}
}

int
main(void)
{
	static const struct CMUnitTest extra[] = {
		cmocka_unit_test(test_build_null),
		cmocka_unit_test(test_build_max),
		cmocka_unit_test(test_build_many_sigs),
		cmocka_unit_test(test_roundtrip),
	};
	size_t			 nb = sizeof(builds) / sizeof(builds[0]);
	size_t			 no = sizeof(ours) / sizeof(ours[0]);
	size_t			 ne = sizeof(extra) / sizeof(extra[0]), i;
	struct CMUnitTest	*t;
	int			 rc;

	t = calloc(nb + no + ne, sizeof(*t));
	if (t == NULL)
		return 1;
	for (i = 0; i < nb; i++) {
		t[i].name = builds[i].name;
		t[i].test_func = run_build;
		t[i].initial_state = (void *)(uintptr_t)&builds[i];
	}
	for (i = 0; i < no; i++) {
		t[nb + i].name = ours[i].name;
		t[nb + i].test_func = run_ours;
		t[nb + i].initial_state = (void *)(uintptr_t)&ours[i];
	}
	for (i = 0; i < ne; i++)
		t[nb + no + i] = extra[i];
	rc = _cmocka_run_group_tests("authres", t, nb + no + ne, NULL, NULL);
	free(t);
	return rc;
}
