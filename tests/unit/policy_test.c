/*
 * policy_test.c - unit tests of the policy module (policy/): loading and
 * diagnostics, every operator, Kleene staging, monitor rules, scores,
 * lists (inline, files, CIDR v4/v6, parent domains), %{fact} expansion,
 * nesting limits and the shipped default policy.
 * Owns: nothing global; each test frees what it makes.
 * Data files are found under $top_srcdir (default ".").
 * Table-driven: one row per case with input and expected result.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1	/* POSIX 2008, strcasestr (as configure does) */
#endif
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy.h"

#define FILE_NAME	"policy.rules"

/* ---- helpers ---- */

static char *
data_path(const char *rel)
{
	const char *top = getenv("top_srcdir");
	size_t n;
	char *p;

	if (top == NULL || *top == '\0')
		top = ".";
	n = strlen(top) + strlen(rel) + 2;
	p = malloc(n);
	assert_non_null(p);
	snprintf(p, n, "%s/%s", top, rel);
	return p;
}

/* All diagnostics of a load, one formatted line each, joined by '\n'. */
static void
diag_join(const struct pol_diag *d, char *out, size_t len)
{
	char line[1024];
	size_t i, o = 0;

	out[0] = '\0';
	for (i = 0; i < d->n; i++) {
		assert_true(pol_diag_format(&d->items[i], line,
		    sizeof(line)) > 0);
		o += (size_t)snprintf(out + o, len - o, "%s%s", i ? "\n" : "",
		    line);
		assert_true(o < len);
	}
}

static struct policy *
load_text(const char *text, char *diags, size_t len)
{
	struct pol_diag d;
	struct policy *p;

	memset(&d, 0, sizeof(d));
	p = pol_load_buffer(FILE_NAME, text, strlen(text), &d);
	diag_join(&d, diags, len);
	if (p == NULL)
		assert_true(d.nerrors > 0);
	pol_diag_free(&d);
	return p;
}

static struct policy *
load_ok(const char *text)
{
	char diags[8192];
	struct policy *p = load_text(text, diags, sizeof(diags));

	if (p == NULL || diags[0] != '\0')
		fail_msg("policy did not load cleanly:\n%s\n--\n%s", text,
		    diags);
	return p;
}

/* ---- the fake fact provider ---- */

#define FAKE_MAX	32
#define FAKE_LIST_MAX	16

struct fake_fact {
	char name[80];
	char *val;			/* NULL: unknown */
	bool fail;
	bool is_list;
	const char *elems[FAKE_LIST_MAX];
	size_t nelems;
	struct pol_ip ip;
};

struct fake {
	struct fake_fact f[FAKE_MAX];
	size_t n;
	uint64_t asked;			/* bit per fact asked */
	unsigned nasked;
};

/*
 * Spec: "name=value|name=value".  Values: "?" unknown, "!" provider
 * failure, "[a,b]" a list; otherwise typed by the fact (true/false,
 * numbers, addresses, text).
 */
static void
fake_init(struct fake *fk, const char *spec)
{
	const char *p = spec, *bar, *eq;
	struct fake_fact *f;
	char *s;

	memset(fk, 0, sizeof(*fk));
	while (p != NULL && *p != '\0') {
		bar = strchr(p, '|');
		eq = strchr(p, '=');
		assert_non_null(eq);
		assert_true(fk->n < FAKE_MAX);
		f = &fk->f[fk->n++];
		assert_true((size_t)(eq - p) < sizeof(f->name));
		memcpy(f->name, p, (size_t)(eq - p));
		f->val = strndup(eq + 1, bar != NULL ? (size_t)(bar - eq - 1) :
		    strlen(eq + 1));
		assert_non_null(f->val);
		if (strcmp(f->val, "?") == 0) {
			free(f->val);
			f->val = NULL;
		} else if (strcmp(f->val, "!") == 0)
			f->fail = true;
		else if (f->val[0] == '[') {
			f->is_list = true;
			s = f->val + 1;
			if (*s != ']')
				for (;;) {
					char *e = s + strcspn(s, ",]");
					bool end = *e != ',';

					*e = '\0';
					assert_true(f->nelems < FAKE_LIST_MAX);
					f->elems[f->nelems++] = s;
					if (end)
						break;
					s = e + 1;
				}
		}
		p = bar != NULL ? bar + 1 : NULL;
	}
}

static void
fake_free(struct fake *fk)
{
	size_t i;

	for (i = 0; i < fk->n; i++)
		free(fk->f[i].val);
}

static int
fake_get(void *ctx, enum pol_fact fact, const char *hname,
    struct pol_value *out)
{
	struct fake *fk = ctx;
	const struct pol_fact_info *fi = pol_fact_info(fact);
	char name[128];
	struct fake_fact *f = NULL;
	size_t i;

	assert_non_null(fi);
	assert_int_equal(out->type, POL_V_UNKNOWN);
	if (fact == POL_FACT_HEADER) {
		assert_non_null(hname);
		snprintf(name, sizeof(name), "header.%s", hname);
	} else {
		assert_null(hname);
		snprintf(name, sizeof(name), "%s", fi->name);
	}
	fk->asked |= 1ULL << fact;
	fk->nasked++;
	for (i = 0; i < fk->n; i++)
		if (strcasecmp(fk->f[i].name, name) == 0)
			f = &fk->f[i];
	if (f == NULL)
		return 0;
	if (f->fail)
		return -1;
	if (f->val == NULL)
		return 0;
	if (f->is_list) {
		out->type = POL_V_LIST;
		out->list = f->elems;
		out->nlist = f->nelems;
		return 0;
	}
	switch (fi->type) {
	case POL_V_BOOL:
		out->type = POL_V_BOOL;
		out->b = strcmp(f->val, "true") == 0;
		break;
	case POL_V_NUM:
		out->type = POL_V_NUM;
		out->num = strtod(f->val, NULL);
		break;
	case POL_V_IP:
		out->type = POL_V_IP;
		out->s = f->val;
		assert_int_equal(pol_ip_parse(f->val, &f->ip), 0);
		out->ip = f->ip;
		break;
	default:
		out->type = POL_V_STR;
		out->s = f->val;
		break;
	}
	return 0;
}

/* ---- loading and diagnostics ---- */

struct diag_case {
	const char *name;
	const char *policy;
	bool loads;
	const char *diags;	/* exact, one line each */
};

static const struct diag_case diag_cases[] = {
	{ "empty policy", "", true, "" },
	{ "comments only", "# nothing\n   # here\n", true, "" },
	{ "the DESIGN example (without the list file)",
	    "internal domains  corp.example, corp-mail.example\n"
	    "trusted networks  127.0.0.0/8, ::1, 10.0.0.0/8\n"
	    "list partners { partner.example, supplier.example }\n"
	    "dnsbl zen.spamhaus.org  codes 127.0.0.2-127.0.0.11  weight 6\n"
	    "uribl multi.surbl.org   mask 0x08,0x10,0x40         weight 5\n"
	    "attachments block exe com scr pif bat cmd vbs js jse wsf hta "
	    "msi lnk iso img\n"
	    "greylist delay 5m window 4h expire 35d netmask 24/64 "
	    "autoallow 5\n"
	    "external tag \"[EXTERNAL]\" unless from.domain in partners and "
	    "dmarc is pass\n"
	    "score softfail: when spf is softfail add 2\n"
	    "rule trusted:   when trusted or authenticated then accept\n"
	    "rule dnsbl:     when dnsbl.listed then reject \"5.7.1 "
	    "%{client.ip} is listed by %{dnsbl.zone}\"\n"
	    "rule greylist:  when greylist is new or greylist is early then "
	    "tempfail \"4.7.1 greylisted, please retry later\"\n"
	    "rule dmarc:     when dmarc is fail and dmarc.policy is reject "
	    "then reject \"5.7.1 rejected by the DMARC policy of "
	    "%{from.domain}\"\n"
	    "rule attach:    when attachment.blocked then reject \"5.7.1 "
	    "attachment %{attachment.name} is not allowed\"\n"
	    "rule spoof:     when from.internal and not trusted and not "
	    "authenticated and dmarc is not pass then quarantine \"internal "
	    "domain from outside\"\n"
	    "rule high:      when score >= 10 then reject\n"
	    "rule quar:      when dmarc is fail and dmarc.policy is "
	    "quarantine then quarantine \"DMARC quarantine\"\n"
	    "default accept\n", true, "" },
	{ "unknown fact with suggestion (the contract example)",
	    "\n\n\n\n\n\n\n\n\n\n\n"
	    "rule dmarc:     when dmarc.polcy is reject then reject\n", false,
	    "policy.rules:12:22: unknown fact 'dmarc.polcy' "
	    "(did you mean 'dmarc.policy'?)" },
	{ "unknown fact without suggestion",
	    "rule a: when frobnicated then reject\n", false,
	    "policy.rules:1:14: unknown fact 'frobnicated'" },
	{ "unknown enum value with suggestion",
	    "rule a: when dmarc is pas then reject\n", false,
	    "policy.rules:1:23: unknown value 'pas' for fact 'dmarc' "
	    "(did you mean 'pass'?)" },
	{ "unknown enum value, the values listed",
	    "rule a: when greylist is blue then tempfail\n", false,
	    "policy.rules:1:26: unknown value 'blue' for fact 'greylist' "
	    "(expected one of: new, early, passed, allowed)" },
	{ "enum values ignore case and may be quoted",
	    "rule a: when dmarc is \"Fail\" and spf is PASS then reject\n",
	    true, "" },
	{ "boolean value",
	    "rule a: when trusted is ture then accept\n", false,
	    "policy.rules:1:25: unknown value 'ture' for fact 'trusted' "
	    "(did you mean 'true'?)" },
	{ "unknown action",
	    "rule a: when trusted then acept\n", false,
	    "policy.rules:1:27: unknown action 'acept' "
	    "(did you mean 'accept'?)" },
	{ "unknown statement",
	    "rul a: when trusted then accept\n", false,
	    "policy.rules:1:1: unknown statement 'rul' "
	    "(did you mean 'rule'?)" },
	{ "unknown list",
	    "list partners { a.example }\n"
	    "rule a: when from.domain in partner then accept\n", false,
	    "policy.rules:1:6: warning: list 'partners' is never used\n"
	    "policy.rules:2:29: unknown list 'partner' "
	    "(did you mean 'partners'?)" },
	{ "unknown dnsbl option",
	    "dnsbl zen.spamhaus.org wieght 5\n", false,
	    "policy.rules:1:24: unknown dnsbl option 'wieght' "
	    "(did you mean 'weight'?)" },
	{ "labels is a uribl option",
	    "dnsbl zen.spamhaus.org labels 3\n", false,
	    "policy.rules:1:24: 'labels' is a uribl option" },
	{ "labels below 2",
	    "uribl multi.uribl.com labels 1\n", false,
	    "policy.rules:1:30: expected a whole number from 2 to 10 "
	    "after 'labels', found '1'" },
	{ "labels above 10",
	    "uribl multi.uribl.com labels 11\n", false,
	    "policy.rules:1:30: expected a whole number from 2 to 10 "
	    "after 'labels', found '11'" },
	{ "labels not a number",
	    "uribl multi.uribl.com labels x\n", false,
	    "policy.rules:1:30: expected a whole number from 2 to 10 "
	    "after 'labels', found 'x'" },
	{ "unknown greylist option",
	    "greylist dealy 5m\nrule g: when greylist is new then tempfail\n",
	    false,
	    "policy.rules:1:10: unknown greylist option 'dealy' "
	    "(did you mean 'delay'?)" },
	{ "all errors are reported, in file order",
	    "rule a: when spf is pas then reject\n"
	    "rule b: when dkim.domain in x then accept\n"
	    "rule c: when trusted then acept\n", false,
	    "policy.rules:1:21: unknown value 'pas' for fact 'spf' "
	    "(did you mean 'pass'?)\n"
	    "policy.rules:2:14: unknown fact 'dkim.domain' "
	    "(did you mean 'dkim.domains'?)\n"
	    "policy.rules:3:27: unknown action 'acept' "
	    "(did you mean 'accept'?)" },
	{ "syntax error recovery goes on with the next statement",
	    "rule a: when (trusted then accept\n"
	    "rul b: when trusted then accept\n"
	    "rule c: when spf is fail then rejct\n", false,
	    "policy.rules:1:23: expected ')' (for the '(' at 1:14), "
	    "found 'then'\n"
	    "policy.rules:2:1: unknown statement 'rul' "
	    "(did you mean 'rule'?)\n"
	    "policy.rules:3:31: unknown action 'rejct' "
	    "(did you mean 'reject'?)" },
	{ "missing then",
	    "rule a: when trusted accept\n", false,
	    "policy.rules:1:22: expected 'then', found 'accept'" },
	{ "mistyped and",
	    "rule a: when trusted adn authenticated then accept\n", false,
	    "policy.rules:1:22: expected 'then', found 'adn' "
	    "(did you mean 'and'?)" },
	{ "missing when",
	    "rule a: trusted then accept\n", false,
	    "policy.rules:1:9: expected 'when' or 'then', found 'trusted'" },
	{ "duplicate rule names",
	    "rule a: when trusted then accept\n"
	    "rule a: when authenticated then accept\n", false,
	    "policy.rules:2:6: duplicate rule name 'a' "
	    "(first defined at line 1)" },
	{ "duplicate list names",
	    "list a { x.example }\nlist a { y.example }\n"
	    "rule r: when helo in a then reject\n", false,
	    "policy.rules:2:6: duplicate list name 'a' "
	    "(first defined at line 1)" },
	{ "duplicate default",
	    "default accept\ndefault reject\n", false,
	    "policy.rules:2:1: duplicate 'default' (first at line 1)" },
	{ "reply code class must fit reject",
	    "rule a: when spf is fail then reject \"4.7.1 no\"\n", false,
	    "policy.rules:1:38: the text starts with status code '4.7.1' "
	    "but reject needs a 5.x.x code" },
	{ "reply code class must fit tempfail",
	    "rule a: when spf is temperror then tempfail \"5.7.1 later\"\n",
	    false,
	    "policy.rules:1:45: the text starts with status code '5.7.1' "
	    "but tempfail needs a 4.x.x code" },
	{ "reply code class must fit the default",
	    "default reject \"4.7.1 no\"\n", false,
	    "policy.rules:1:16: the text starts with status code '4.7.1' "
	    "but reject needs a 5.x.x code" },
	{ "basic reply code in the text",
	    "rule a: when spf is fail then reject \"550 no\"\n", false,
	    "policy.rules:1:38: the text must not start with an SMTP reply "
	    "code; start it with an enhanced status code such as '5.7.1'" },
	{ "invalid status code class",
	    "rule a: when spf is fail then reject \"3.7.1 no\"\n", false,
	    "policy.rules:1:38: '3.7.1' is not a valid enhanced status code "
	    "(the class is 2, 4 or 5)" },
	{ "status code on quarantine is unused",
	    "rule a: when spf is fail then quarantine \"5.7.1 held\"\n", true,
	    "policy.rules:1:42: warning: status code '5.7.1' is not used: "
	    "only reject and tempfail send a reply text" },
	{ "unknown fact in a text",
	    "rule a: when spf is fail then reject \"5.7.1 %{client.iq}\"\n",
	    false,
	    "policy.rules:1:45: unknown fact 'client.iq' in text "
	    "(did you mean 'client.ip'?)" },
	{ "unterminated reference in a text",
	    "rule a: when spf is fail then reject \"5.7.1 %{client.ip\"\n",
	    false,
	    "policy.rules:1:45: unterminated '%{' in text" },
	{ "percent signs in texts",
	    "rule a: when spf is fail then reject \"5.7.1 100%% sure, 5% "
	    "%{header.X-Foo}\"\n", true, "" },
	{ "shadowed rule and unused default",
	    "rule all: when true then accept\n"
	    "rule later: when spf is fail then reject\n"
	    "default reject\n", true,
	    "policy.rules:2:6: warning: rule 'later' is never reached: rule "
	    "'all' (line 1) decides every message\n"
	    "policy.rules:3:1: warning: the default is never used: rule 'all' "
	    "(line 1) decides every message" },
	{ "unconditional rule shadows",
	    "rule all: then quarantine\n"
	    "rule later: when spf is fail then reject\n", true,
	    "policy.rules:2:6: warning: rule 'later' is never reached: rule "
	    "'all' (line 1) decides every message" },
	{ "monitor rules do not shadow",
	    "rule m monitor: when true then reject\n"
	    "rule later: when spf is fail then reject\n", true, "" },
	{ "rules that can never match",
	    "rule f: when false then reject\n"
	    "rule g: when spf is pass and spf is fail then reject\n"
	    "rule h: when trusted and not trusted then reject\n"
	    "rule i: when dmarc is pass and dmarc is not pass then reject\n"
	    "rule j: when false or (authenticated and false) then reject\n"
	    "rule k: when dkim.domains is a.example and dkim.domains is "
	    "b.example then reject\n", true,
	    "policy.rules:1:6: warning: rule 'f' can never match\n"
	    "policy.rules:2:6: warning: rule 'g' can never match\n"
	    "policy.rules:3:6: warning: rule 'h' can never match\n"
	    "policy.rules:4:6: warning: rule 'i' can never match\n"
	    "policy.rules:5:6: warning: rule 'j' can never match" },
	{ "unconditional tempfail",
	    "rule wait: when true then tempfail\n", true,
	    "policy.rules:1:6: warning: rule 'wait' tempfails every message: "
	    "no message could ever be delivered (its condition does not "
	    "depend on the message)" },
	{ "tautological tempfail",
	    "rule wait: when trusted or not trusted then tempfail\n", true,
	    "policy.rules:1:6: warning: rule 'wait' tempfails every message: "
	    "no message could ever be delivered (its condition does not "
	    "depend on the message)" },
	{ "default tempfail",
	    "rule ok: when authenticated then accept\ndefault tempfail\n",
	    true,
	    "policy.rules:2:1: warning: 'default tempfail' makes every "
	    "message that no rule decides wait forever" },
	{ "unused list",
	    "list friends { a.example }\n", true,
	    "policy.rules:1:6: warning: list 'friends' is never used" },
	{ "unused greylist settings",
	    "greylist delay 1m\n", true,
	    "policy.rules:1:1: warning: the greylist settings are not used: "
	    "no rule tests 'greylist'" },
	{ "greylist window shorter than delay",
	    "greylist delay 5h window 4h\n"
	    "rule g: when greylist is new then tempfail\n", false,
	    "policy.rules:1:1: greylist window (14400s) must be longer than "
	    "delay (18000s)" },
	{ "bad duration",
	    "greylist delay 5x\n", false,
	    "policy.rules:1:16: '5x' is not a duration (such as 30s, 5m, 4h "
	    "or 35d)" },
	{ "attachment.blocked without a block list",
	    "rule a: when attachment.blocked then reject\n", true,
	    "policy.rules:1:14: warning: 'attachment.blocked' is never true: "
	    "there is no 'attachments block' line" },
	{ "dnsbl.listed without a zone",
	    "rule a: when dnsbl.listed then reject\n", true,
	    "policy.rules:1:14: warning: 'dnsbl.listed' is never true: "
	    "there is no 'dnsbl' line" },
	{ "networks list for a domain",
	    "rule a: when from.domain in trusted networks then accept\n"
	    "trusted networks 10.0.0.0/8\n", true,
	    "policy.rules:1:14: warning: trusted networks holds only "
	    "networks: 'from.domain in' it never matches" },
	{ "domains list for an IP",
	    "list d { a.example }\n"
	    "rule a: when client.ip in d then accept\n", true,
	    "policy.rules:2:14: warning: list 'd' holds no networks: "
	    "'client.ip in' it never matches" },
	{ "host bits in a network",
	    "trusted networks 10.0.0.1/8\n", false,
	    "policy.rules:1:18: '10.0.0.1/8' has host bits set "
	    "(did you mean '10.0.0.0/8'?)" },
	{ "a domain in trusted networks",
	    "trusted networks example.org\n", false,
	    "policy.rules:1:18: 'example.org' is not an IP address or "
	    "network" },
	{ "a network in internal domains",
	    "internal domains 10.0.0.0/8, ok.example, bad_.exa mple\n", false,
	    "policy.rules:1:18: '10.0.0.0/8' is not a domain\n"
	    "policy.rules:1:51: unexpected 'mple' after the statement (one "
	    "statement a line)" },
	{ "IPv6 networks and the v4-mapped form",
	    "trusted networks ::1, 2001:db8::/32, ::ffff:10.0.0.0/104, "
	    "fe80::/10\n", true, "" },
	{ "type errors",
	    "rule a: when spf then reject\n"
	    "rule b: when size then reject\n"
	    "rule c: when dmarc >= 3 then reject\n"
	    "rule d: when trusted in x then reject\n"
	    "rule e: when size matches /1/ then reject\n"
	    "rule f: when authenticated contains \"x\" then reject\n"
	    "rule g: when size is big then reject\n"
	    "rule h: when client.ip is 1.2.3 then reject\n", false,
	    "policy.rules:1:14: fact 'spf' is not true or false; compare it, "
	    "e.g. 'spf is pass'\n"
	    "policy.rules:2:14: fact 'size' is a number; compare it, e.g. "
	    "'size > 0'\n"
	    "policy.rules:3:14: fact 'dmarc' is not a number: compare it with "
	    "'is', 'in', 'matches' or 'contains'\n"
	    "policy.rules:4:14: fact 'trusted' is true or false: use it "
	    "alone, not with 'in'\n"
	    "policy.rules:5:14: fact 'size' is a number: 'matches' needs a "
	    "text\n"
	    "policy.rules:6:14: fact 'authenticated' is true or false: "
	    "'contains' needs a text\n"
	    "policy.rules:7:22: 'big' is not a number (fact 'size' is a "
	    "number)\n"
	    "policy.rules:8:27: '1.2.3' is not an IP address" },
	{ "score cannot use score",
	    "score loop: when score > 1 add 1\n", false,
	    "policy.rules:1:18: a score rule cannot use 'score'" },
	{ "bad regular expression",
	    "rule a: when subject matches /a(b/ then reject\n", false,
	    "policy.rules:1:30: invalid regular expression: Unmatched ( or "
	    "\\(" },
	{ "back-references are refused",
	    "rule a: when subject matches /(a*)*\\1/ then reject\n", false,
	    "policy.rules:1:30: back-references such as '\\1' are not allowed "
	    "in regular expressions" },
	{ "unknown regex flag",
	    "rule a: when subject matches /a/g then reject\n", false,
	    "policy.rules:1:33: unknown regular expression flag 'g'" },
	{ "unterminated string",
	    "rule a: when spf is fail then reject \"5.7.1 oops\n", false,
	    "policy.rules:1:38: unterminated string" },
	{ "unknown escape",
	    "rule a: when subject contains \"a\\tb\" then reject\n", false,
	    "policy.rules:1:33: unknown escape '\\t' in string (only \\\" and "
	    "\\\\ are known)" },
	{ "single quotes",
	    "rule a: when subject contains 'x' then reject\n", false,
	    "policy.rules:1:31: strings use double quotes, not '" },
	{ "lone =",
	    "rule a: when size = 3 then reject\n", false,
	    "policy.rules:1:19: unexpected '=' (did you mean '=='?)" },
	{ "header names",
	    "rule a: when header.X-Spam-Flag is YES then quarantine\n"
	    "rule b: when header.x-spam-flag contains \"yes\" then "
	    "quarantine\n", true, "" },
	{ "reply text must be quoted",
	    "rule a: when spf is fail then reject go away\n", false,
	    "policy.rules:1:38: the text after the action must be quoted, "
	    "found 'go'" },
	{ "one statement a line",
	    "default accept rule a: then reject\n", false,
	    "policy.rules:1:16: unexpected 'rule' after the statement (one "
	    "statement a line)" },
	{ "statements may span lines",
	    "rule long: when from.internal\n"
	    "    and not trusted\n"
	    "    and not authenticated\n"
	    "    then quarantine\n"
	    "    \"internal domain from outside\"\n"
	    "list multi {\n  a.example\n  b.example,\n}\n"
	    "attachments block exe,\n    com\n"
	    "rule m: when from.domain in multi then accept\n", true, "" },
	{ "dnsbl codes and masks",
	    "dnsbl a.example codes 127.0.0.2, 127.0.0.4-127.0.0.7 weight 2.5\n"
	    "uribl b.example mask 0x08,0x10 weight -1\n"
	    "dnsbl c.example codes 127.0.0.9-127.0.0.3\n"
	    "dnsbl d.example mask 0xz\n", false,
	    "policy.rules:3:23: empty range '127.0.0.9-127.0.0.3': the first "
	    "code is above the second\n"
	    "policy.rules:4:22: '0xz' is not a mask (a number such as 0x08)" },
	{ "duplicate zone",
	    "dnsbl a.example\ndnsbl a.example weight 1\n", false,
	    "policy.rules:2:1: duplicate dnsbl zone 'a.example' (first at "
	    "line 1)" },
	{ "bad extension",
	    "attachments block exe .COM b@d\n", false,
	    "policy.rules:1:28: 'b@d' is not a file name extension" },
	{ "tag errors",
	    "external tag \"\"\nexternal tag \"[EXT]\" unless from.domain "
	    "in nowhere\n", false,
	    "policy.rules:1:14: the tag text is empty\n"
	    "policy.rules:2:1: duplicate 'external tag' (first at line 1)" },
	{ "monitor and strip",
	    "attachments block exe\n"
	    "rule try monitor: when size > 1000 then reject\n"
	    "rule s: when attachment.blocked then strip \"removed\"\n", true,
	    "" },
	{ "strip with nothing to strip",
	    "rule s: when size > 10 then strip\n", true,
	    "policy.rules:1:29: warning: 'strip' has nothing to remove: "
	    "there is no 'attachments block' line" },
	{ "in with built-in lists and inline lists",
	    "internal domains corp.example\ntrusted networks 10.0.0.0/8\n"
	    "rule a: when client.ip in trusted networks then accept\n"
	    "rule b: when mail_from.domain in internal domains then reject\n"
	    "rule c: when client.country in {CN, RU, \"KP\"} then reject\n"
	    "rule d: when client.asn in {64496, 64511} then reject\n", true,
	    "" },
	{ "not in, not matches, not contains, !=",
	    "rule a: when helo not in {x.example} and subject not matches "
	    "/^re:/i and subject not contains \"hi\" and size != 3 then "
	    "reject\n", true, "" },
	{ "missing list file",
	    "list l file \"/nonexistent/portcullis/list.txt\"\n"
	    "rule a: when helo in l then reject\n", false,
	    "policy.rules:1:13: cannot read list file "
	    "'/nonexistent/portcullis/list.txt': No such file or "
	    "directory" },
	{ "invalid names",
	    "rule -x: then accept\nlist 9 { a.example }\n", false,
	    "policy.rules:1:6: invalid rule name '-x' (letters, digits, '_', "
	    "'-' and '.', at most 64 bytes)\n"
	    "policy.rules:2:6: warning: list '9' is never used" },
	{ "junk character",
	    "rule a: when trusted then accept $\n", false,
	    "policy.rules:1:34: unexpected character '$'" },
	{ "a list named like a built-in",
	    "list trusted { a.example }\n"
	    "rule a: when helo in trusted then accept\n"
	    "rule b: when client.ip in trusted networks then accept\n", true,
	    "" },
	{ "a rule named like a keyword",
	    "rule is: when trusted then accept\n"
	    "rule default monitor: when trusted then reject\n", true, "" },
	{ "too deep in a tag condition",
	    "external tag \"[X]\" unless not not not not not not not not not "
	    "not not not not not not not not not not not not not not not not "
	    "not not not not not not not not not not not not not not not not "
	    "not not not not not not not not not not not not not not not not "
	    "not not not not not not not not not not not not not not not not "
	    "trusted\n", false,
	    "policy.rules:1:283: condition nested more than 64 levels deep" },
	{ "at end of file",
	    "rule a: when (trusted", false,
	    "policy.rules:1:22: expected ')' (for the '(' at 1:14), found "
	    "end of file" },
};

static void
test_diagnostics(void **state)
{
	char diags[8192];
	struct policy *p;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(diag_cases) / sizeof(diag_cases[0]); i++) {
		const struct diag_case *c = &diag_cases[i];

		p = load_text(c->policy, diags, sizeof(diags));
		if ((p != NULL) != c->loads || strcmp(diags, c->diags) != 0)
			fail_msg("case '%s': loads %d (want %d)\n"
			    "got:\n%s\nwant:\n%s", c->name, p != NULL, c->loads,
			    diags, c->diags);
		pol_free(p);
	}
}

/* ---- evaluation ---- */

struct eval_case {
	const char *name;
	const char *policy;
	enum pol_stage stage;
	const char *facts;
	int ret;
	enum pol_tri state;
	enum pol_action action;
	const char *rule;		/* NULL: none */
	const char *monitored;		/* "a,b" or "" */
};

#define CONNECT	POL_STAGE_CONNECT
#define HELO	POL_STAGE_HELO
#define MAIL	POL_STAGE_MAIL
#define RCPT	POL_STAGE_RCPT
#define EOH	POL_STAGE_EOH
#define EOM	POL_STAGE_EOM
#define T	POL_TRUE
#define F	POL_FALSE
#define U	POL_UNKNOWN
#define NONE	POL_ACT_NONE
#define ACCEPT	POL_ACT_ACCEPT
#define REJECT	POL_ACT_REJECT
#define TEMPF	POL_ACT_TEMPFAIL
#define QUAR	POL_ACT_QUARANTINE
#define STRIP	POL_ACT_STRIP

static const char ops_policy[] =
    "list partners { partner.example, alice@friends.example, "
    "192.0.2.0/24, 2001:db8::/32 }\n"
    "rule is:        when spf is pass then accept\n"
    "rule isnot:     when dkim is not pass then reject\n"
    "rule in_dom:    when from.domain in partners then quarantine\n"
    "rule in_addr:   when mail_from in partners then strip\n"
    "rule notin:     when client.ptr not in {ok.example} then tempfail\n"
    "rule default:   when true then accept\n";

static const struct eval_case eval_cases[] = {
	/* is, is not */
	{ "is: true", ops_policy, EOM, "spf=pass", 0, T, ACCEPT, "is", "" },
	{ "is not: true", ops_policy, EOM, "spf=fail|dkim=fail", 0, T,
	    REJECT, "isnot", "" },
	{ "is: unknown stops", ops_policy, MAIL, "", 0, U, NONE, NULL, "" },
	{ "in: parent domain", ops_policy, EOM,
	    "spf=none|dkim=pass|from.domain=Mail.Partner.Example.", 0, T,
	    QUAR, "in_dom", "" },
	{ "in: not a suffix match", ops_policy, EOM,
	    "spf=none|dkim=pass|from.domain=notpartner.example|"
	    "mail_from=x@y.example|client.ptr=ok.example", 0, T, ACCEPT,
	    "default", "" },
	{ "in: address", ops_policy, EOM,
	    "spf=none|dkim=pass|from.domain=x.example|"
	    "mail_from=<ALICE@friends.example>", 0, T, STRIP, "in_addr", "" },
	{ "in: other address of the domain does not match", ops_policy, EOM,
	    "spf=none|dkim=pass|from.domain=x.example|"
	    "mail_from=bob@friends.example|client.ptr=ok.example", 0, T,
	    ACCEPT, "default", "" },
	{ "in: address by domain", ops_policy, EOM,
	    "spf=none|dkim=pass|from.domain=x.example|"
	    "mail_from=bob@sub.partner.example", 0, T, STRIP, "in_addr", "" },
	{ "not in", ops_policy, EOM,
	    "spf=none|dkim=pass|from.domain=x.example|mail_from=a@b.example|"
	    "client.ptr=bad.example", 0, T, TEMPF, "notin", "" },
	/* client.ip in networks */
	{ "CIDR v4", "list n { 192.0.2.0/24 }\n"
	    "rule r: when client.ip in n then reject\n",
	    CONNECT, "client.ip=192.0.2.77", 0, T, REJECT, "r", "" },
	{ "CIDR v4 miss", "list n { 192.0.2.0/24 }\n"
	    "rule r: when client.ip in n then reject\n",
	    CONNECT, "client.ip=192.0.3.1", 0, F, NONE, NULL, "" },
	{ "CIDR v6", "list n { 2001:db8::/32 }\n"
	    "rule r: when client.ip in n then reject\n",
	    CONNECT, "client.ip=2001:db8:ffff::1", 0, T, REJECT, "r", "" },
	{ "CIDR v6 miss", "list n { 2001:db8::/32 }\n"
	    "rule r: when client.ip in n then reject\n",
	    CONNECT, "client.ip=2001:db9::1", 0, F, NONE, NULL, "" },
	{ "v4-mapped client", "list n { 192.0.2.0/24 }\n"
	    "rule r: when client.ip in n then reject\n",
	    CONNECT, "client.ip=::ffff:192.0.2.1", 0, T, REJECT, "r", "" },
	{ "single address and /0", "list n { 198.51.100.7, ::/0 }\n"
	    "rule r: when client.ip in n then reject\n",
	    CONNECT, "client.ip=198.51.100.7", 0, T, REJECT, "r", "" },
	{ "::/0 matches any v6", "list n { ::/0 }\n"
	    "rule r: when client.ip in n then reject\n",
	    CONNECT, "client.ip=2a00::5", 0, T, REJECT, "r", "" },
	{ "client.ip is", "rule r: when client.ip is 2001:DB8::1 then reject\n",
	    CONNECT, "client.ip=2001:db8:0::1", 0, T, REJECT, "r", "" },
	{ "trusted networks built-in",
	    "trusted networks 10.0.0.0/8, ::1\n"
	    "rule r: when client.ip in trusted networks then accept\n",
	    CONNECT, "client.ip=::1", 0, T, ACCEPT, "r", "" },
	{ "internal domains built-in",
	    "internal domains corp.example\n"
	    "rule r: when rcpt.domain not in internal domains then reject "
	    "\"5.7.1 relaying denied\"\n",
	    RCPT, "rcpt.domain=elsewhere.example", 0, T, REJECT, "r", "" },
	/* matches, contains */
	{ "matches /i", "rule r: when subject matches /^re: *viagra/i then "
	    "reject\n", EOH, "subject=RE:   VIAGRA now", 0, T, REJECT, "r",
	    "" },
	{ "matches is case-sensitive without /i",
	    "rule r: when subject matches /viagra/ then reject\n", EOM,
	    "subject=VIAGRA", 0, T, ACCEPT, "default", "" },
	{ "not matches", "rule r: when subject not matches /x/ then reject\n",
	    EOH, "subject=abc", 0, T, REJECT, "r", "" },
	{ "contains ignores case",
	    "rule r: when subject contains \"Lottery\" then reject\n", EOH,
	    "subject=You won the LOTTERY", 0, T, REJECT, "r", "" },
	{ "not contains", "rule r: when subject not contains \"x\" then "
	    "reject\n", EOH, "subject=x marks", 0, F, NONE, NULL, "" },
	{ "header fact", "rule r: when header.X-Spam-Flag is yes then "
	    "quarantine\n", EOH, "header.x-spam-flag=YES", 0, T, QUAR, "r",
	    "" },
	{ "header list", "rule r: when header.Received contains \"evil\" then "
	    "reject\n", EOH, "header.received=[from a,from evil.example]",
	    0, T, REJECT, "r", "" },
	/* numbers */
	{ "<", "rule r: when size < 100 then reject\n", EOM, "size=99", 0,
	    T, REJECT, "r", "" },
	{ "< false", "rule r: when size < 100 then reject\n", EOM, "size=100",
	    0, T, ACCEPT, "default", "" },
	{ "<=", "rule r: when size <= 100 then reject\n", EOM, "size=100", 0,
	    T, REJECT, "r", "" },
	{ "==", "rule r: when client.asn == 64496 then reject\n", CONNECT,
	    "client.asn=64496", 0, T, REJECT, "r", "" },
	{ "!=", "rule r: when client.asn != 64496 then reject\n", CONNECT,
	    "client.asn=64496", 0, F, NONE, NULL, "" },
	{ ">=", "rule r: when size >= 10.5 then reject\n", EOM, "size=10.5",
	    0, T, REJECT, "r", "" },
	{ ">", "rule r: when size > -1 then reject\n", EOM, "size=0", 0, T,
	    REJECT, "r", "" },
	{ "number in list", "rule r: when client.asn in {64496, 64511} then "
	    "reject\n", CONNECT, "client.asn=64511", 0, T, REJECT, "r", "" },
	/* booleans and Kleene logic */
	{ "bare boolean", "rule r: when authenticated then accept\n", MAIL,
	    "authenticated=true", 0, T, ACCEPT, "r", "" },
	{ "bare text: empty is false", "rule r: when not client.ptr then "
	    "reject\n", CONNECT, "client.ptr=", 0, T, REJECT, "r", "" },
	{ "is true", "rule r: when trusted is false then reject\n", CONNECT,
	    "trusted=false", 0, T, REJECT, "r", "" },
	{ "unknown or true is true",
	    "rule r: when spf is fail or trusted then reject\n", CONNECT,
	    "trusted=true", 0, T, REJECT, "r", "" },
	{ "unknown and false is false",
	    "rule r: when spf is fail and trusted then reject\n", CONNECT,
	    "trusted=false", 0, F, NONE, NULL, "" },
	{ "unknown and true is unknown",
	    "rule r: when spf is fail and trusted then reject\n", CONNECT,
	    "trusted=true", 0, U, NONE, NULL, "" },
	{ "not unknown is unknown",
	    "rule r: when not spf is fail then reject\n", CONNECT, "", 0, U,
	    NONE, NULL, "" },
	{ "precedence: not > and > or",
	    "rule r: when not trusted and authenticated or spf is pass then "
	    "accept\n", MAIL, "trusted=true|authenticated=true|spf=fail", 0,
	    F, NONE, NULL, "" },
	{ "parentheses",
	    "rule r: when not (trusted and authenticated) then accept\n", MAIL,
	    "trusted=true|authenticated=false", 0, T, ACCEPT, "r", "" },
	/* staging */
	{ "a rule unknown at MAIL stops evaluation",
	    "rule dmarc: when dmarc is fail then reject\n"
	    "rule auth: when authenticated then accept\n", MAIL,
	    "authenticated=true", 0, U, NONE, NULL, "" },
	{ "a rule true at RCPT decides",
	    "rule trusted: when trusted then accept\n"
	    "rule relay: when rcpt.domain is not corp.example then reject\n"
	    "rule dmarc: when dmarc is fail then reject\n", RCPT,
	    "trusted=false|rcpt.domain=other.example", 0, T, REJECT, "relay",
	    "" },
	{ "false rules are skipped before unknown ones",
	    "rule trusted: when trusted then accept\n"
	    "rule dmarc: when dmarc is fail then reject\n", CONNECT,
	    "trusted=false", 0, U, NONE, NULL, "" },
	{ "all rules false before EOM: state false",
	    "rule trusted: when trusted then accept\ndefault reject\n",
	    CONNECT, "trusted=false", 0, F, NONE, NULL, "" },
	{ "the default decides at EOM",
	    "rule trusted: when trusted then accept\n"
	    "default reject \"5.7.1 go away\"\n", EOM, "trusted=false", 0, T,
	    REJECT, "default", "" },
	{ "no default line: accept", "rule t: when trusted then reject\n",
	    EOM, "trusted=false", 0, T, ACCEPT, "default", "" },
	{ "unknown at EOM is an internal failure",
	    "rule dmarc: when dmarc is fail then reject\n", EOM, "", -1, U,
	    NONE, NULL, "" },
	{ "provider failure", "rule t: when trusted then accept\n", CONNECT,
	    "trusted=!", -1, U, NONE, NULL, "" },
	{ "rcpt list at EOM: any element",
	    "rule r: when rcpt.domain is b.example then quarantine\n", EOM,
	    "rcpt.domain=[a.example,B.example]", 0, T, QUAR, "r", "" },
	{ "rcpt list at EOM: is not means none",
	    "rule r: when rcpt.domain is not b.example then quarantine\n", EOM,
	    "rcpt.domain=[a.example,b.example]", 0, T, ACCEPT, "default", "" },
	{ "list fact in list",
	    "list bad { bad.example }\n"
	    "rule r: when uribl.domains in bad then reject\n", EOM,
	    "uribl.domains=[ok.example,x.bad.example]", 0, T, REJECT, "r",
	    "" },
	{ "uribl IPs as written",
	    "list bad { 192.0.2.0/24 }\n"
	    "rule r: when uribl.domains in bad then reject\n", EOM,
	    "uribl.domains=[ok.example,192.0.2.5]", 0, T, REJECT, "r", "" },
	{ "empty list fact", "rule r: when dkim.domains then accept\n", EOM,
	    "dkim.domains=[]", 0, T, ACCEPT, "default", "" },
	/* monitor rules */
	{ "monitor rule fires and evaluation goes on",
	    "rule m monitor: when size > 10 then reject\n"
	    "rule r: when size > 5 then quarantine\n", EOM, "size=20", 0, T,
	    QUAR, "r", "m" },
	{ "unknown monitor rule does not stop",
	    "rule m monitor: when dmarc is fail then reject\n"
	    "rule r: when trusted then accept\n", CONNECT, "trusted=true", 0, T,
	    ACCEPT, "r", "" },
	{ "monitor rules after the deciding rule are not evaluated",
	    "rule r: when trusted then accept\n"
	    "rule m monitor: when trusted then reject\n", CONNECT,
	    "trusted=true", 0, T, ACCEPT, "r", "" },
	{ "two monitor rules",
	    "rule m1 monitor: when true then reject\n"
	    "rule m2 monitor: when trusted then tempfail\n", EOM,
	    "trusted=true", 0, T, ACCEPT, "default", "m1,m2" },
	/* scores */
	{ "score sums true score rules",
	    "score a: when spf is softfail add 2\n"
	    "score b: when dkim is fail add 3.5\n"
	    "score c: when trusted add -1\n"
	    "rule high: when score >= 5.5 then reject\n", EOM,
	    "spf=softfail|dkim=fail|trusted=false", 0, T, REJECT, "high", "" },
	{ "negative score",
	    "score a: when spf is softfail add 2\n"
	    "score b: when dkim is fail add 3.5\n"
	    "score c: when trusted add -1\n"
	    "rule high: when score >= 5.5 then reject\n", EOM,
	    "spf=softfail|dkim=fail|trusted=true", 0, T, ACCEPT, "default",
	    "" },
	{ "unknown score rule makes score unknown",
	    "score a: when spf is softfail add 2\n"
	    "score b: when dkim is fail add 3.5\n"
	    "rule high: when score >= 1 then reject\n", MAIL, "spf=softfail",
	    0, U, NONE, NULL, "" },
	{ "score with the provider's weights",
	    "dnsbl bl.example weight 6\n"
	    "score a: when spf is softfail add 2\n"
	    "rule high: when score >= 8 then reject\n", EOM,
	    "spf=softfail|score=6", 0, T, REJECT, "high", "" },
	{ "provider's weights unknown",
	    "dnsbl bl.example weight 6\n"
	    "score a: when spf is softfail add 2\n"
	    "rule high: when score >= 8 then reject\n", MAIL,
	    "spf=softfail|score=?", 0, U, NONE, NULL, "" },
	{ "no weights: the provider is not asked",
	    "score a: when spf is softfail add 2\n"
	    "rule high: when score >= 2 then reject\n", EOM,
	    "spf=softfail|score=!", 0, T, REJECT, "high", "" },
	{ "greylist per recipient",
	    "rule t: when trusted then accept\n"
	    "rule g: when greylist is new or greylist is early then tempfail "
	    "\"4.7.1 greylisted\"\n", RCPT, "trusted=false|greylist=early", 0,
	    T, TEMPF, "g", "" },
};

static void
test_evaluate(void **state)
{
	char diags[4096], mon[256];
	struct pol_facts pf;
	struct pol_eval ev;
	struct fake fk;
	struct policy *p;
	size_t i, j, o;
	int r;

	(void)state;
	for (i = 0; i < sizeof(eval_cases) / sizeof(eval_cases[0]); i++) {
		const struct eval_case *c = &eval_cases[i];

		p = load_text(c->policy, diags, sizeof(diags));
		if (p == NULL)
			fail_msg("case '%s': policy failed:\n%s", c->name,
			    diags);
		fake_init(&fk, c->facts);
		pf.get = fake_get;
		pf.ctx = &fk;
		pol_eval_init(&ev);
		r = pol_evaluate(p, c->stage, &pf, &ev);
		for (o = 0, j = 0; j < ev.nmonitored; j++)
			o += (size_t)snprintf(mon + o, sizeof(mon) - o, "%s%s",
			    j ? "," : "", ev.monitored[j].rule);
		mon[o] = '\0';
		if (r != c->ret || (r == 0 && (ev.state != c->state ||
		    ev.action != c->action ||
		    (c->rule == NULL) != (ev.rule == NULL) ||
		    (c->rule != NULL && strcmp(c->rule, ev.rule) != 0) ||
		    strcmp(mon, c->monitored) != 0)))
			fail_msg("case '%s': ret %d state %d action %s rule %s "
			    "monitored '%s'; want ret %d state %d action %s "
			    "rule %s monitored '%s'", c->name, r, ev.state,
			    pol_action_name(ev.action),
			    ev.rule ? ev.rule : "-", mon, c->ret, c->state,
			    pol_action_name(c->action),
			    c->rule ? c->rule : "-", c->monitored);
		fake_free(&fk);
		pol_free(p);
	}
}

/* The worked example of portcullis.policy(5), stage by stage. */
static void
test_worked_example(void **state)
{
	static const struct {
		enum pol_stage stage;
		const char *facts;
		enum pol_tri state;
		enum pol_action act;
		const char *rule;
	} steps[] = {
		{ CONNECT, "trusted=false", U, NONE, NULL },
		{ MAIL, "trusted=false|authenticated=false", U, NONE, NULL },
		{ RCPT, "trusted=false|authenticated=false|"
		    "rcpt.domain=elsewhere.example", T, REJECT, "relay" },
		{ RCPT, "trusted=false|authenticated=false|"
		    "rcpt.domain=corp.example|greylist=new", T, TEMPF,
		    "greylist" },
		{ RCPT, "trusted=false|authenticated=false|"
		    "rcpt.domain=corp.example|greylist=passed", U, NONE, NULL },
		{ EOH, "trusted=false|authenticated=false|"
		    "rcpt.domain=[corp.example]|greylist=passed", U, NONE,
		    NULL },
		{ EOM, "trusted=false|authenticated=false|"
		    "rcpt.domain=[corp.example]|greylist=passed|dmarc=fail|"
		    "dmarc.policy=reject", T, REJECT, "dmarc" },
		{ EOM, "trusted=false|authenticated=false|"
		    "rcpt.domain=[corp.example]|greylist=passed|dmarc=pass",
		    T, ACCEPT, "default" },
	};
	struct policy *p = load_ok(
	    "internal domains corp.example\n"
	    "rule trusted:  when trusted or authenticated then accept\n"
	    "rule relay:    when rcpt.domain not in internal domains then "
	    "reject\n"
	    "rule greylist: when greylist is new then tempfail\n"
	    "rule dmarc:    when dmarc is fail and dmarc.policy is reject then "
	    "reject\n"
	    "default accept\n");
	struct pol_facts pf = { fake_get, NULL };
	struct pol_eval ev;
	struct fake fk;
	size_t i;

	(void)state;
	pol_eval_init(&ev);
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		fake_init(&fk, steps[i].facts);
		pf.ctx = &fk;
		assert_int_equal(pol_evaluate(p, steps[i].stage, &pf, &ev), 0);
		if (ev.state != steps[i].state || ev.action != steps[i].act ||
		    (steps[i].rule != NULL && (ev.rule == NULL ||
		    strcmp(ev.rule, steps[i].rule) != 0)))
			fail_msg("step %zu: state %d action %s rule %s", i,
			    ev.state, pol_action_name(ev.action),
			    ev.rule ? ev.rule : "-");
		fake_free(&fk);
	}
	pol_free(p);
}

/* Monitor rules are reported once per message, across stages. */
static void
test_monitor_once(void **state)
{
	struct policy *p = load_ok(
	    "rule m monitor: when trusted is false then reject\n"
	    "rule d: when dmarc is fail then reject\n");
	struct pol_facts pf = { fake_get, NULL };
	struct pol_eval ev;
	struct fake fk;

	(void)state;
	fake_init(&fk, "trusted=false");
	pf.ctx = &fk;
	pol_eval_init(&ev);
	assert_int_equal(pol_evaluate(p, CONNECT, &pf, &ev), 0);
	assert_int_equal(ev.state, POL_UNKNOWN);
	assert_int_equal(ev.nmonitored, 1);
	assert_string_equal(ev.monitored[0].rule, "m");
	assert_int_equal(ev.monitored[0].action, POL_ACT_REJECT);
	assert_int_equal(ev.monitored[0].stage, POL_STAGE_CONNECT);
	assert_int_equal(pol_evaluate(p, MAIL, &pf, &ev), 0);
	assert_int_equal(ev.nmonitored, 1);
	fake_free(&fk);
	fake_init(&fk, "trusted=false|dmarc=pass");
	pf.ctx = &fk;
	assert_int_equal(pol_evaluate(p, EOM, &pf, &ev), 0);
	assert_int_equal(ev.state, POL_TRUE);
	assert_true(ev.is_default);
	assert_int_equal(ev.nmonitored, 1);
	fake_free(&fk);
	pol_free(p);
}

/* Lazy facts: short-circuit keeps greylist from being asked. */
static void
test_lazy_facts(void **state)
{
	struct policy *p = load_ok(
	    "rule t: when trusted or authenticated then accept\n"
	    "rule g: when greylist is new then tempfail\n"
	    "rule x: when spf is fail and spf is fail and spf is fail then "
	    "reject\n");
	struct pol_facts pf = { fake_get, NULL };
	struct pol_eval ev;
	struct fake fk;

	(void)state;
	fake_init(&fk, "trusted=true");
	pf.ctx = &fk;
	pol_eval_init(&ev);
	assert_int_equal(pol_evaluate(p, RCPT, &pf, &ev), 0);
	assert_int_equal(ev.action, POL_ACT_ACCEPT);
	assert_false(fk.asked & (1ULL << POL_FACT_GREYLIST));
	assert_false(fk.asked & (1ULL << POL_FACT_AUTHENTICATED));
	fake_free(&fk);
	/* each fact is asked once per call */
	fake_init(&fk, "trusted=false|authenticated=false|greylist=passed|"
	    "spf=pass");
	pf.ctx = &fk;
	assert_int_equal(pol_evaluate(p, RCPT, &pf, &ev), 0);
	assert_int_equal(ev.state, POL_FALSE);
	assert_int_equal(fk.nasked, 4);
	fake_free(&fk);
	pol_free(p);
}

static void
test_score_values(void **state)
{
	struct policy *p = load_ok(
	    "uribl u.example weight 5\n"
	    "score a: when spf is softfail add 2.25\n"
	    "score b: when dkim is fail add -0.5\n"
	    "rule r: when score > 100 then reject \"5.7.1 score %{score}\"\n");
	struct pol_facts pf = { fake_get, NULL };
	struct pol_eval ev;
	struct fake fk;
	char buf[128];

	(void)state;
	assert_true(pol_references(p, POL_FACT_SCORE));
	assert_true(pol_references(p, POL_FACT_URIBL_DOMAINS));
	assert_true(pol_references(p, POL_FACT_SPF));
	fake_init(&fk, "spf=softfail|dkim=fail|score=5");
	pf.ctx = &fk;
	pol_eval_init(&ev);
	assert_int_equal(pol_evaluate(p, EOM, &pf, &ev), 0);
	assert_true(ev.score_known);
	assert_true(ev.score > 6.74 && ev.score < 6.76);
	assert_true(ev.is_default);
	assert_int_equal(pol_expand_eval("%{score}", &pf, &ev, buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "6.75");
	fake_free(&fk);
	/* score unknown at EOM is a failure */
	fake_init(&fk, "spf=softfail|dkim=fail|score=?");
	pf.ctx = &fk;
	assert_int_equal(pol_evaluate(p, EOM, &pf, &ev), -1);
	fake_free(&fk);
	pol_free(p);
}

/* ---- expansion ---- */

struct expand_case {
	const char *text;
	const char *facts;
	size_t len;
	const char *want;
};

static const struct expand_case expand_cases[] = {
	{ "plain", "", 100, "plain" },
	{ "%{client.ip} is listed by %{dnsbl.zone}",
	    "client.ip=192.0.2.1|dnsbl.zone=zen.spamhaus.org", 100,
	    "192.0.2.1 is listed by zen.spamhaus.org" },
	{ "100%% sure, 5% off, %x", "", 100, "100% sure, 5% off, %x" },
	{ "[%{from.domain}]", "", 100, "[]" },
	{ "%{nosuch.fact}!", "", 100, "!" },
	{ "%{unterminated", "", 100, "%{unterminated" },
	{ "%{dkim.domains}", "dkim.domains=[a.example,b.example]", 100,
	    "a.example, b.example" },
	{ "%{authenticated}/%{size}", "authenticated=true|size=1234", 100,
	    "true/1234" },
	{ "%{header.X-Mailer}", "header.x-mailer=Mutt", 100, "Mutt" },
	/* CR/LF injection: the value cannot end the reply line */
	{ "5.7.1 hello %{helo}",
	    "helo=evil\r\n250 2.0.0 Ok\r\nDATA\n\t\x01\x7f", 100,
	    "5.7.1 hello evil250 2.0.0 OkDATA" },
	{ "a\r\nb", "", 100, "ab" },
	/* bounded output */
	{ "0123456789", "", 5, "0123" },
	{ "%{subject}|", "subject=\xc3\xa9\xc3\xa9", 4, "\xc3\xa9" },
};

static void
test_expand(void **state)
{
	struct pol_facts pf = { fake_get, NULL };
	char buf[POL_EXPAND_MAX + 64], big[600];
	struct fake fk;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(expand_cases) / sizeof(expand_cases[0]); i++) {
		const struct expand_case *c = &expand_cases[i];

		fake_init(&fk, c->facts);
		pf.ctx = &fk;
		assert_true(c->len <= sizeof(buf));
		assert_int_equal(pol_expand(c->text, &pf, buf, c->len), 0);
		if (strcmp(buf, c->want) != 0)
			fail_msg("expand '%s': got '%s' want '%s'", c->text,
			    buf, c->want);
		fake_free(&fk);
	}
	/* a value is cut at POL_FACT_VALUE_MAX, all at POL_EXPAND_MAX */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "subject=", 8);
	fake_init(&fk, big);
	pf.ctx = &fk;
	assert_int_equal(pol_expand("%{subject}", &pf, buf, sizeof(buf)), 0);
	assert_int_equal(strlen(buf), POL_FACT_VALUE_MAX);
	assert_int_equal(pol_expand("%{subject}%{subject}%{subject}", &pf,
	    buf, sizeof(buf)), 0);
	assert_int_equal(strlen(buf), POL_EXPAND_MAX);
	fake_free(&fk);
	fake_init(&fk, "helo=!");
	pf.ctx = &fk;
	assert_int_equal(pol_expand("%{helo}", &pf, buf, sizeof(buf)), -1);
	fake_free(&fk);
	assert_int_equal(pol_expand("x", &pf, buf, 0), -1);
}

static void
test_reply(void **state)
{
	static const struct {
		enum pol_action act;
		const char *text;
		unsigned code;
		const char *dsn, *rest;
	} cases[] = {
		{ POL_ACT_REJECT, "5.7.1 sender blocked", 550, "5.7.1",
		    "sender blocked" },
		{ POL_ACT_REJECT, "5.1.10 no such user", 550, "5.1.10",
		    "no such user" },
		{ POL_ACT_REJECT, "go away", 550, "5.7.1", "go away" },
		{ POL_ACT_REJECT, NULL, 550, "5.7.1", "" },
		{ POL_ACT_TEMPFAIL, "4.7.1 greylisted", 451, "4.7.1",
		    "greylisted" },
		{ POL_ACT_TEMPFAIL, "5.7.1 wrong class", 451, "4.7.1",
		    "5.7.1 wrong class" },
		{ POL_ACT_TEMPFAIL, "4.2.2", 451, "4.2.2", "" },
		{ POL_ACT_REJECT, "5.7.1234 too long", 550, "5.7.1",
		    "5.7.1234 too long" },
	};
	struct pol_reply rp;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pol_reply_make(cases[i].act, cases[i].text, &rp);
		assert_int_equal(rp.code, cases[i].code);
		assert_string_equal(rp.dsn, cases[i].dsn);
		assert_string_equal(rp.text, cases[i].rest);
	}
}

/* ---- lists ---- */

static void
test_list_files(void **state)
{
	static const struct {
		const char *facts;
		enum pol_action act;
		const char *rule;
	} cases[] = {
		{ "client.ip=192.0.2.200|mail_from=a@b.example", REJECT,
		    "nets" },
		{ "client.ip=198.51.100.7|mail_from=a@b.example", REJECT,
		    "nets" },
		{ "client.ip=198.51.100.8|mail_from=a@b.example", ACCEPT,
		    "default" },
		{ "client.ip=2001:db8:bad:1::25|mail_from=a@b.example", REJECT,
		    "nets" },
		{ "client.ip=2001:db8:bae::1|mail_from=a@b.example", ACCEPT,
		    "default" },
		{ "client.ip=203.0.113.9|mail_from=a@b.example", REJECT,
		    "nets" },
		{ "client.ip=::ffff:203.0.113.9|mail_from=a@b.example", REJECT,
		    "nets" },
		{ "client.ip=10.0.0.1|mail_from=Spammer@Example.COM", REJECT,
		    "senders" },
		{ "client.ip=10.0.0.1|mail_from=other@example.com", ACCEPT,
		    "default" },
		{ "client.ip=10.0.0.1|mail_from=x@news.bulk.example", REJECT,
		    "senders" },
		{ "client.ip=10.0.0.1|mail_from=x@a.wild.example", REJECT,
		    "senders" },
		{ "client.ip=10.0.0.1|mail_from=x@wild.example", REJECT,
		    "senders" },
		{ "client.ip=10.0.0.1|mail_from=x@dot.example", REJECT,
		    "senders" },
		{ "client.ip=10.0.0.1|mail_from=one@crlf.example", REJECT,
		    "senders" },
		{ "client.ip=10.0.0.1|mail_from=", ACCEPT, "default" },
	};
	char *path = data_path("tests/data/policy/lists.policy"), diags[4096];
	struct pol_facts pf = { fake_get, NULL };
	struct pol_diag d;
	struct pol_eval ev;
	struct policy *p;
	struct fake fk;
	size_t i;

	(void)state;
	memset(&d, 0, sizeof(d));
	p = pol_load(path, &d);
	diag_join(&d, diags, sizeof(diags));
	if (p == NULL || d.n != 0)
		fail_msg("%s: %s", path, diags);
	pol_diag_free(&d);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fake_init(&fk, cases[i].facts);
		pf.ctx = &fk;
		pol_eval_init(&ev);
		assert_int_equal(pol_evaluate(p, EOM, &pf, &ev), 0);
		if (ev.action != cases[i].act ||
		    strcmp(ev.rule, cases[i].rule) != 0)
			fail_msg("%s: got %s by %s", cases[i].facts,
			    pol_action_name(ev.action), ev.rule);
		fake_free(&fk);
	}
	assert_true(pol_list_contains(p, "senders", "bulk.example"));
	assert_true(pol_list_contains(p, "nets", "192.0.2.1"));
	assert_false(pol_list_contains(p, "nets", "192.0.3.1"));
	assert_false(pol_list_contains(p, "nosuch", "192.0.2.1"));
	pol_free(p);
	free(path);

	/* errors in list files carry the list file's name and line */
	path = data_path("tests/data/policy/bad.policy");
	memset(&d, 0, sizeof(d));
	assert_null(pol_load(path, &d));
	diag_join(&d, diags, sizeof(diags));
	{
		char want[2048], *top = data_path("tests/data/policy");

		snprintf(want, sizeof(want),
		    "%s/lists/broken.txt:2:5: unexpected text after the entry "
		    "(one entry a line; comments start with '#')\n"
		    "%s/lists/broken.txt:3:1: '10.0.0.1/8' has host bits set "
		    "(did you mean '10.0.0.0/8'?)\n"
		    "%s/lists/broken.txt:4:1: '300.1.2.3' is not a domain, an "
		    "address or a network\n"
		    "%s/bad.policy:2:19: cannot read list file "
		    "'%s/lists/does-not-exist.txt': No such file or directory",
		    top, top, top, top, top);
		if (strcmp(diags, want) != 0)
			fail_msg("got:\n%s\nwant:\n%s", diags, want);
		free(top);
	}
	pol_diag_free(&d);
	free(path);
}

/* A large list: loads fast, matches by hash whatever its size. */
static void
test_big_list(void **state)
{
	char dir[] = "/tmp/policy_test.XXXXXX", path[256], pol[512], diags[512];
	struct pol_diag d;
	struct policy *p;
	struct timespec t0, t1;
	FILE *f;
	unsigned i, n = 300000;
	double secs;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/big.txt", dir);
	assert_non_null(f = fopen(path, "w"));
	for (i = 0; i < n; i++) {
		switch (i % 3) {
		case 0:
			fprintf(f, "d%u.example\n", i);
			break;
		case 1:
			fprintf(f, "%u.%u.%u.0/24\n", 10 + i / 65536 % 200,
			    i / 256 % 256, i % 256);
			break;
		default:
			fprintf(f, "2001:db8:%x:%x::/64\n", i / 65536,
			    i % 65536);
			break;
		}
	}
	fclose(f);
	snprintf(pol, sizeof(pol), "list big file \"big.txt\"\n"
	    "rule r: when client.ip in big or helo in big then reject\n");
	snprintf(path, sizeof(path), "%s/p.rules", dir);
	memset(&d, 0, sizeof(d));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	p = pol_load_buffer(path, pol, strlen(pol), &d);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	diag_join(&d, diags, sizeof(diags));
	if (p == NULL)
		fail_msg("%s", diags);
	pol_diag_free(&d);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	print_message("loaded %u entries in %.3f s\n", n, secs);
	assert_true(pol_list_contains(p, "big", "d3.example"));
	assert_true(pol_list_contains(p, "big", "mx.d299997.example"));
	assert_false(pol_list_contains(p, "big", "d2.example"));
	assert_true(pol_list_contains(p, "big", "10.0.1.77"));
	assert_false(pol_list_contains(p, "big", "10.0.0.77"));
	assert_true(pol_list_contains(p, "big", "2001:db8:0:2::1"));
	assert_false(pol_list_contains(p, "big", "2001:db8:0:3::1"));
	pol_free(p);
	snprintf(path, sizeof(path), "%s/big.txt", dir);
	unlink(path);
	rmdir(dir);
}

/* ---- nesting ---- */

static char *
nested(const char *open, const char *close, unsigned depth)
{
	size_t lo = strlen(open), lc = strlen(close), o = 0;
	char *s = malloc(64 + depth * (lo + lc));
	unsigned i;

	assert_non_null(s);
	o += (size_t)sprintf(s, "rule r: when ");
	for (i = 0; i < depth; i++, o += lo)
		memcpy(s + o, open, lo);
	o += (size_t)sprintf(s + o, "trusted");
	for (i = 0; i < depth; i++, o += lc)
		memcpy(s + o, close, lc);
	sprintf(s + o, " then accept\n");
	return s;
}

static void
test_depth(void **state)
{
	char diags[1024], want[256];
	struct policy *p;
	char *s;

	(void)state;
	s = nested("(", ")", POL_EXPR_DEPTH_MAX);
	p = load_text(s, diags, sizeof(diags));
	assert_non_null(p);
	assert_string_equal(diags, "");
	pol_free(p);
	free(s);
	s = nested("(", ")", POL_EXPR_DEPTH_MAX + 1);
	assert_null(load_text(s, diags, sizeof(diags)));
	snprintf(want, sizeof(want), "policy.rules:1:%d: condition nested "
	    "more than %d levels deep", 14 + POL_EXPR_DEPTH_MAX,
	    POL_EXPR_DEPTH_MAX);
	assert_string_equal(diags, want);
	free(s);
	s = nested("not ", "", POL_EXPR_DEPTH_MAX + 1);
	assert_null(load_text(s, diags, sizeof(diags)));
	snprintf(want, sizeof(want), "policy.rules:1:%d: condition nested "
	    "more than %d levels deep", 14 + 4 * POL_EXPR_DEPTH_MAX,
	    POL_EXPR_DEPTH_MAX);
	assert_string_equal(diags, want);
	free(s);
	/* hostile nesting: one error, no stack overflow */
	s = nested("(not ", ")", 200000);
	assert_null(load_text(s, diags, sizeof(diags)));
	free(s);
	/* long flat chains are not nesting */
	{
		size_t n = 100000, o = 0, i;

		s = malloc(n * 18 + 64);
		assert_non_null(s);
		o += (size_t)sprintf(s, "rule r: when trusted");
		for (i = 0; i < n; i++)
			o += (size_t)sprintf(s + o, " or authenticated");
		sprintf(s + o, " then accept\n");
		p = load_text(s, diags, sizeof(diags));
		assert_non_null(p);
		pol_free(p);
		free(s);
	}
}

/* Garbage never crashes the loader. */
static void
test_garbage(void **state)
{
	struct pol_diag d;
	struct policy *p;
	unsigned seed = 12345, i, j;
	char buf[512];
	static const char alphabet[] = "rule when then not and or ( ) { } "
	    "\"x\" /r/ is in list : , < >= == 0 \\ # \n \x01 \xff . @ -";

	(void)state;
	for (i = 0; i < 3000; i++) {
		for (j = 0; j < sizeof(buf); j++) {
			seed = seed * 1103515245 + 12345;
			buf[j] = alphabet[(seed >> 16) %
			    (sizeof(alphabet) - 1)];
		}
		memset(&d, 0, sizeof(d));
		p = pol_load_buffer(FILE_NAME, buf, sizeof(buf), &d);
		pol_free(p);
		pol_diag_free(&d);
	}
	memset(&d, 0, sizeof(d));
	memcpy(buf, "rule a: when\0trusted then accept\n", 33);
	assert_null(pol_load_buffer(FILE_NAME, buf, 33, &d));
	pol_diag_free(&d);
}

/* ---- the default policy and the API around it ---- */

/* The shipped policy loads with no error and no warning. */
static void
test_shipped_policy(void **state)
{
	char *path = data_path("rules/default.policy"), diags[4096];
	struct pol_diag d;
	struct policy *p;

	(void)state;
	memset(&d, 0, sizeof(d));
	p = pol_load(path, &d);
	diag_join(&d, diags, sizeof(diags));
	if (p == NULL || d.n != 0)
		fail_msg("%s:\n%s", path, diags);
	assert_string_equal(pol_tag_text(p), "[EXTERNAL]");
	pol_diag_free(&d);
	pol_free(p);
	free(path);
}

/* The complete default policy: every check's statements. */
static void
test_default_policy(void **state)
{
	char *path = data_path("tests/data/policy/complete.policy");
	char diags[4096];
	struct pol_facts pf = { fake_get, NULL };
	const struct pol_greylist *g;
	const struct pol_dnsbl *bl;
	const char *const *exts;
	struct pol_diag d;
	struct pol_eval ev;
	struct pol_ip ip;
	struct policy *p;
	struct fake fk;

	(void)state;
	memset(&d, 0, sizeof(d));
	p = pol_load(path, &d);
	diag_join(&d, diags, sizeof(diags));
	if (p == NULL || d.n != 0)
		fail_msg("%s:\n%s", path, diags);
	pol_diag_free(&d);
	free(path);

	assert_true(pol_domain_is_internal(p, "example.org"));
	assert_true(pol_domain_is_internal(p, "Mail.Example.ORG."));
	assert_false(pol_domain_is_internal(p, "example.com"));
	assert_int_equal(pol_ip_parse("127.0.0.1", &ip), 0);
	assert_true(pol_ip_is_trusted(p, &ip));
	assert_int_equal(pol_ip_parse("IPv6:::1", &ip), 0);
	assert_true(pol_ip_is_trusted(p, &ip));
	assert_int_equal(pol_ip_parse("192.0.2.1", &ip), 0);
	assert_false(pol_ip_is_trusted(p, &ip));
	assert_string_equal(pol_tag_text(p), "[EXTERNAL]");
	assert_int_equal(pol_dnsbl_count(p), 1);
	bl = pol_dnsbl_get(p, 0);
	assert_string_equal(bl->zone, "zen.spamhaus.org");
	assert_int_equal(bl->ncodes, 1);
	assert_int_equal(pol_ip_parse("127.0.0.4", &ip), 0);
	assert_true(pol_dnsbl_match(bl, &ip));
	assert_int_equal(pol_ip_parse("127.255.255.254", &ip), 0);
	assert_false(pol_dnsbl_match(bl, &ip));
	assert_null(pol_dnsbl_get(p, 1));
	assert_int_equal(pol_uribl_count(p), 1);
	assert_true(pol_uribl_get(p, 0)->weight == 5);
	assert_true(pol_attachment_exts(p, &exts) > 10);
	assert_true(pol_attachment_blocked(p, "invoice.PDF.exe"));
	assert_true(pol_attachment_blocked(p, "invoice.exe. . "));
	assert_false(pol_attachment_blocked(p, "invoice.pdf"));
	assert_false(pol_attachment_blocked(p, "exe"));
	g = pol_greylist(p);
	assert_true(g->configured);
	assert_int_equal(g->delay, 300);
	assert_int_equal(g->window, 4 * 3600);
	assert_int_equal(g->expire, 35 * 86400);
	assert_int_equal(g->netmask4, 24);
	assert_int_equal(g->netmask6, 64);
	assert_int_equal(g->autoallow, 5);
	assert_true(pol_references(p, POL_FACT_GREYLIST));
	assert_true(pol_references(p, POL_FACT_DMARC_POLICY));
	assert_true(pol_references(p, POL_FACT_EXTERNAL));
	assert_true(pol_references(p, POL_FACT_URIBL_DOMAINS));
	assert_false(pol_references(p, POL_FACT_CLIENT_COUNTRY));
	assert_false(pol_references(p, POL_FACT_HEADER));

	/* trusted: accept at connect */
	fake_init(&fk, "trusted=true");
	pf.ctx = &fk;
	pol_eval_init(&ev);
	assert_int_equal(pol_evaluate(p, CONNECT, &pf, &ev), 0);
	assert_int_equal(ev.state, POL_TRUE);
	assert_int_equal(ev.action, POL_ACT_ACCEPT);
	assert_string_equal(ev.rule, "trusted");
	fake_free(&fk);
	/* listed: reject at RCPT with the expanded text */
	fake_init(&fk, "trusted=false|authenticated=false|dnsbl.listed=true|"
	    "client.ip=192.0.2.9|dnsbl.zone=zen.spamhaus.org");
	pf.ctx = &fk;
	pol_eval_init(&ev);
	assert_int_equal(pol_evaluate(p, RCPT, &pf, &ev), 0);
	assert_int_equal(ev.action, POL_ACT_REJECT);
	assert_string_equal(ev.rule, "dnsbl");
	{
		char buf[POL_EXPAND_MAX + 1];
		struct pol_reply rp;

		assert_int_equal(pol_expand(ev.text, &pf, buf, sizeof(buf)),
		    0);
		pol_reply_make(ev.action, buf, &rp);
		assert_int_equal(rp.code, 550);
		assert_string_equal(rp.dsn, "5.7.1");
		assert_string_equal(rp.text,
		    "192.0.2.9 is listed by zen.spamhaus.org");
	}
	fake_free(&fk);
	/* new triplet: greylisted at RCPT */
	fake_init(&fk, "trusted=false|authenticated=false|dnsbl.listed=false|"
	    "greylist=?");
	pf.ctx = &fk;
	pol_eval_init(&ev);
	assert_int_equal(pol_evaluate(p, MAIL, &pf, &ev), 0);
	assert_int_equal(ev.state, POL_UNKNOWN);
	fake_free(&fk);
	fake_init(&fk, "trusted=false|authenticated=false|dnsbl.listed=false|"
	    "greylist=new");
	pf.ctx = &fk;
	assert_int_equal(pol_evaluate(p, RCPT, &pf, &ev), 0);
	assert_int_equal(ev.action, POL_ACT_TEMPFAIL);
	fake_free(&fk);
	/* a clean message: the default at EOM, tagged */
	fake_init(&fk, "trusted=false|authenticated=false|dnsbl.listed=false|"
	    "greylist=passed|dmarc=pass|dmarc.policy=none|spf=pass|dkim=pass|"
	    "attachment.blocked=false|attachment.limits=false|"
	    "attachment.encrypted=false|from.internal=false|"
	    "client.ptr=x.example|"
	    "score=0|external=true");
	pf.ctx = &fk;
	pol_eval_init(&ev);
	assert_int_equal(pol_evaluate(p, EOM, &pf, &ev), 0);
	assert_int_equal(ev.action, POL_ACT_ACCEPT);
	assert_true(ev.is_default);
	assert_true(ev.score_known);
	assert_true(ev.score == 0);
	{
		bool tag;

		assert_int_equal(pol_tag_applies(p, &pf, &tag), 0);
		assert_true(tag);
	}
	fake_free(&fk);
	/* spoofed internal domain */
	fake_init(&fk, "trusted=false|authenticated=false|dnsbl.listed=false|"
	    "greylist=allowed|dmarc=none|dmarc.policy=none|spf=none|dkim=none|"
	    "attachment.blocked=false|attachment.limits=false|"
	    "attachment.encrypted=false|from.internal=true|client.ptr=|"
	    "score=0");
	pf.ctx = &fk;
	pol_eval_init(&ev);
	assert_int_equal(pol_evaluate(p, EOM, &pf, &ev), 0);
	assert_int_equal(ev.action, POL_ACT_QUARANTINE);
	assert_string_equal(ev.rule, "spoof");
	fake_free(&fk);
	pol_free(p);
}

static void
test_tag(void **state)
{
	struct policy *p = load_ok(
	    "list partners { partner.example }\n"
	    "external tag \"[EXT]\" unless from.domain in partners and dmarc "
	    "is pass\n");
	struct pol_facts pf = { fake_get, NULL };
	static const struct {
		const char *facts;
		int ret;
		bool applies;
	} cases[] = {
		{ "external=false", 0, false },
		{ "external=true|from.domain=partner.example|dmarc=pass", 0,
		    false },
		{ "external=true|from.domain=partner.example|dmarc=fail", 0,
		    true },
		{ "external=true|from.domain=other.example", 0, true },
		{ "external=true|from.domain=partner.example", -1, false },
		{ "", -1, false },
	};
	struct fake fk;
	size_t i;
	bool a;

	(void)state;
	assert_true(pol_references(p, POL_FACT_EXTERNAL));
	assert_true(pol_references(p, POL_FACT_TRUSTED));
	assert_true(pol_references(p, POL_FACT_AUTHENTICATED));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fake_init(&fk, cases[i].facts);
		pf.ctx = &fk;
		assert_int_equal(pol_tag_applies(p, &pf, &a), cases[i].ret);
		if (cases[i].ret == 0)
			assert_int_equal(a, cases[i].applies);
		fake_free(&fk);
	}
	pol_free(p);
	p = load_ok("rule a: when trusted then accept\n");
	assert_null(pol_tag_text(p));
	assert_int_equal(pol_tag_applies(p, &pf, &a), 0);
	assert_false(a);
	pol_free(p);
}

static void
test_api(void **state)
{
	const struct pol_fact_info *fi;
	const char *const *names;
	struct pol_diag_item it;
	struct policy *p;
	struct pol_ip ip;
	size_t n;
	char buf[64];
	int i;

	(void)state;
	/* every fact name of DESIGN.md section 4 round-trips */
	for (i = 0; i < POL_FACT_COUNT; i++) {
		fi = pol_fact_info((enum pol_fact)i);
		assert_non_null(fi);
		if (i == POL_FACT_HEADER)
			continue;
		assert_int_equal(pol_fact_lookup(fi->name, strlen(fi->name)),
		    i);
	}
	assert_null(pol_fact_info(POL_FACT_COUNT));
	assert_int_equal(pol_fact_lookup("header.Subject", 14),
	    POL_FACT_HEADER);
	assert_int_equal(pol_fact_lookup("header.", 7), -1);
	assert_int_equal(pol_fact_lookup("dmarc.polcy", 11), -1);
	assert_int_equal(pol_fact_lookup("dmarc.policyX", 12),
	    POL_FACT_DMARC_POLICY);
	names = pol_fact_values(POL_FACT_SPF, &n);
	assert_int_equal(n, 7);
	assert_string_equal(names[2], "softfail");
	assert_null(pol_fact_values(POL_FACT_SIZE, &n));
	assert_string_equal(pol_action_name(POL_ACT_TEMPFAIL), "tempfail");
	assert_string_equal(pol_stage_name(POL_STAGE_EOM), "eom");
	assert_string_equal(pol_stage_name(POL_STAGE_RCPT), "rcpt");
	assert_int_equal(pol_ip_parse("[192.0.2.1]", &ip), 0);
	assert_int_equal(ip.family, 2);
	assert_int_equal(pol_ip_parse("192.0.2", &ip), -1);
	assert_int_equal(pol_ip_parse("", &ip), -1);
	assert_int_equal(pol_ip_parse("2001:db8::1%eth0", &ip), -1);
	it.is_error = false;
	it.file = (char *)"f";
	it.line = 3;
	it.col = 4;
	it.msg = (char *)"m";
	assert_true(pol_diag_format(&it, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "f:3:4: warning: m");
	p = load_ok("rule a: when header.X-One is a and header.x-one is a and "
	    "header.Two contains \"b\" then reject "
	    "\"5.7.1 %{header.Three}\"\n");
	assert_int_equal(pol_header_names(p, &names), 3);
	assert_string_equal(names[0], "x-one");
	assert_string_equal(names[1], "two");
	assert_string_equal(names[2], "three");
	assert_true(pol_references(p, POL_FACT_HEADER));
	assert_false(pol_greylist(p)->configured);
	assert_int_equal(pol_greylist(p)->delay, POL_GREY_DELAY_DEFAULT);
	pol_free(p);
	p = load_ok("rule a: when from.internal then reject\n"
	    "rule b: when rcpt.domain is x.example then reject\n");
	assert_true(pol_references(p, POL_FACT_FROM_DOMAIN));
	assert_true(pol_references(p, POL_FACT_RCPT));
	assert_false(pol_references(p, POL_FACT_MAIL_FROM));
	pol_free(p);
	pol_free(NULL);
	pol_diag_free(NULL);
}

static void
test_load_errors(void **state)
{
	char dir[] = "/tmp/policy_test.XXXXXX", path[256], diags[1024],
	    want[512];
	struct pol_diag d;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/nope.rules", dir);
	memset(&d, 0, sizeof(d));
	assert_null(pol_load(path, &d));
	diag_join(&d, diags, sizeof(diags));
	snprintf(want, sizeof(want), "%s:1:1: cannot load the policy: No such "
	    "file or directory", path);
	assert_string_equal(diags, want);
	pol_diag_free(&d);
	assert_null(pol_load(dir, &d));
	pol_diag_free(&d);
	snprintf(path, sizeof(path), "%s/ww.rules", dir);
	assert_non_null(f = fopen(path, "w"));
	fputs("default accept\n", f);
	fclose(f);
	assert_int_equal(chmod(path, 0666), 0);
	assert_null(pol_load(path, &d));
	diag_join(&d, diags, sizeof(diags));
	snprintf(want, sizeof(want), "%s:1:1: cannot load the policy: "
	    "writable by other users (mode 0666)", path);
	assert_string_equal(diags, want);
	pol_diag_free(&d);
	assert_int_equal(chmod(path, 0644), 0);
	{
		struct policy *p = pol_load(path, &d);

		assert_non_null(p);
		assert_int_equal(d.n, 0);
		pol_free(p);
	}
	unlink(path);
	rmdir(dir);
}

/*
 * Who may own and write the policy and its list files: the lenient rule
 * (pol_load, "check", "test") refuses only world-writable files; the
 * daemon's strict rule also group-writable ones and foreign owners.
 */
static void
test_file_untrusted(void **state)
{
	static const struct {
		unsigned mode;
		unsigned uid;		/* the file's owner */
		int strict;		/* -1: no owner rule (NULL) */
		unsigned daemon;	/* the daemon's uid */
		const char *why;	/* NULL: accepted */
	} rows[] = {
		{ 0644, 1000, -1, 0, NULL },
		{ 0664, 1000, -1, 0, NULL },
		{ 0666, 1000, -1, 0, "writable by other users (mode 0666)" },
		{ 0646, 0, 0, 0, "writable by other users (mode 0646)" },
		{ 0664, 1000, 0, 0, NULL },
		{ 0644, 0, 1, 104, NULL },
		{ 0600, 104, 1, 104, NULL },
		{ 0640, 0, 1, 0, NULL },
		{ 0664, 0, 1, 104, "writable by other users (mode 0664)" },
		{ 0620, 104, 1, 104, "writable by other users (mode 0620)" },
		{ 0602, 0, 1, 104, "writable by other users (mode 0602)" },
		{ 02664, 0, 1, 0, "writable by other users (mode 2664)" },
		{ 0644, 1000, 1, 104, "owned by uid 1000, not by root or uid "
		    "104 (the user portcullis runs as)" },
		{ 0444, 104, 1, 0, "owned by uid 104, not by root" },
	};
	struct pol_file_owner o;
	struct stat st;
	char why[160];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		bool refused;

		memset(&st, 0, sizeof(st));
		st.st_mode = S_IFREG | rows[i].mode;
		st.st_uid = rows[i].uid;
		o.strict = rows[i].strict == 1;
		o.uid = rows[i].daemon;
		why[0] = '\0';
		refused = pol_file_untrusted(&st, rows[i].strict < 0 ? NULL :
		    &o, why, sizeof(why));
		if (rows[i].why == NULL) {
			if (refused)
				fail_msg("row %zu refused: %s", i, why);
		} else {
			if (!refused)
				fail_msg("row %zu accepted", i);
			assert_string_equal(why, rows[i].why);
		}
	}
}

/* The strict rule reaches list files: a group-writable list refuses the
 * policy that names it, at the line naming it; the lenient one does not. */
static void
test_load_owned(void **state)
{
	char dir[] = "/tmp/policy_test.XXXXXX", path[256], list[256],
	    diags[1024], want[768];
	struct pol_file_owner strict = { true, 0 };
	struct pol_diag d;
	struct policy *p;
	FILE *f;

	(void)state;
	strict.uid = geteuid();
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/p.rules", dir);
	snprintf(list, sizeof(list), "%s/l.txt", dir);
	assert_non_null(f = fopen(path, "w"));
	fputs("list bad file \"l.txt\"\n"
	    "rule r: when mail_from in bad then reject\n"
	    "default accept\n", f);
	fclose(f);
	assert_non_null(f = fopen(list, "w"));
	fputs("bad.test\n", f);
	fclose(f);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(chmod(list, 0664), 0);
	memset(&d, 0, sizeof(d));
	assert_null(pol_load_owned(path, &strict, &d));
	diag_join(&d, diags, sizeof(diags));
	snprintf(want, sizeof(want), "%s:1:15: list file '%s' refused: "
	    "writable by other users (mode 0664)", path, list);
	assert_string_equal(diags, want);
	pol_diag_free(&d);
	assert_non_null(p = pol_load(path, &d));
	assert_int_equal(d.n, 0);
	pol_free(p);
	assert_int_equal(chmod(list, 0644), 0);
	assert_non_null(p = pol_load_owned(path, &strict, &d));
	assert_int_equal(d.n, 0);
	pol_free(p);
	assert_int_equal(chmod(path, 0664), 0);
	assert_null(pol_load_owned(path, &strict, &d));
	diag_join(&d, diags, sizeof(diags));
	snprintf(want, sizeof(want), "%s:1:1: cannot load the policy: "
	    "writable by other users (mode 0664)", path);
	assert_string_equal(diags, want);
	pol_diag_free(&d);
	unlink(list);
	unlink(path);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diagnostics),
		cmocka_unit_test(test_evaluate),
		cmocka_unit_test(test_worked_example),
		cmocka_unit_test(test_monitor_once),
		cmocka_unit_test(test_lazy_facts),
		cmocka_unit_test(test_score_values),
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_reply),
		cmocka_unit_test(test_list_files),
		cmocka_unit_test(test_big_list),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_shipped_policy),
		cmocka_unit_test(test_default_policy),
		cmocka_unit_test(test_tag),
		cmocka_unit_test(test_api),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_file_untrusted),
		cmocka_unit_test(test_load_owned),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
