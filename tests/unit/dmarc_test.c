/*
 * dmarc_test.c - unit tests for milter/dmarc.c (DMARC, RFC 9989).
 * Owns: nothing; one table row per case, run as one cmocka test each.
 * Evaluation rows give the DNS records (zone-file lines served from memory
 * by dns.c with no_network, so no server is needed), the input and the
 * expected result, policy and Authentication-Results fragment.  Parser rows
 * give a TXT record and the expected parse.  One test points the resolver
 * at a port where nothing listens, for temperror.
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

#include "dmarc.h"
#include "dns.h"
#include "util.h"

#define RR_MAX	8
#define ID_MAX	4

/* A _dmarc TXT record and an address record, zone-file syntax. */
#define DM(name, txt)	"_dmarc." name ". 300 IN TXT \"" txt "\""
#define A(name)		name ". 300 IN A 192.0.2.1"
#define MX(name)	name ". 300 IN MX 10 mx.example.net."

struct eval_case {
	const char		*name;
	const char		*rr[RR_MAX];	/* NULL-terminated */
	const char		*from[ID_MAX];	/* NULL-terminated */
	const char		*spf;		/* result, NULL: none */
	const char		*spf_domain;
	const char		*dkim[ID_MAX];	/* passing d=, NULL-ended */
	enum dmarc_result	 result;
	enum dmarc_policy	 policy;
	const char		*ar;
	const char		*dkim_temp[ID_MAX];	/* temperror d= */
	unsigned		 queries;	/* DNS queries; 0: unchecked */
	bool			 fault;		/* names outside rr SERVFAIL */
};

#define EX_REJECT	DM("example.com", "v=DMARC1; p=reject")
#define EX_A		A("example.com")
#define PASS		DMARC_R_PASS
#define FAIL		DMARC_R_FAIL
#define NONE		DMARC_R_NONE
#define PERM		DMARC_R_PERMERROR
#define TEMP		DMARC_R_TEMPERROR
#define AR_EX_NONE	"dmarc=none header.from=example.com"
#define AR_EX_TEMP	"dmarc=temperror header.from=example.com"
#define RUA		"rua=mailto:d@example.com"
#define P_NONE		DMARC_P_NONE
#define P_QUAR		DMARC_P_QUARANTINE
#define P_REJ		DMARC_P_REJECT

#define AR_EX_PASS	"dmarc=pass (p=reject sp=reject dis=none) " \
			"header.from=example.com"
#define AR_EX_FAIL	"dmarc=fail (p=reject sp=reject dis=reject) " \
			"header.from=example.com"

/* Eleven labels: the walk jumps from them to the rightmost seven. */
#define LONG11		"a.b.c.d.e.f.g.h.i.example.com"

static const struct eval_case eval_cases[] = {
	/* --- alignment, exact and relaxed, strict modes --- */
	{ "dkim exact aligned", { EX_REJECT, EX_A }, { "example.com" },
	  NULL, NULL, { "example.com" }, PASS, P_REJ, AR_EX_PASS, { NULL }, 0, false },
	{ "spf exact aligned", { EX_REJECT, EX_A }, { "example.com" },
	  "pass", "example.com", { NULL }, PASS, P_REJ, AR_EX_PASS, { NULL }, 0, false },
	{ "nothing passes", { EX_REJECT, EX_A }, { "example.com" },
	  "fail", "example.com", { NULL }, FAIL, P_REJ, AR_EX_FAIL, { NULL }, 0, false },
	{ "spf pass unaligned", { EX_REJECT, EX_A }, { "example.com" },
	  "pass", "other.net", { NULL }, FAIL, P_REJ, AR_EX_FAIL, { NULL }, 0, false },
	{ "dkim pass unaligned", { EX_REJECT, EX_A }, { "example.com" },
	  NULL, NULL, { "other.net", "example.net" }, FAIL, P_REJ,
	  AR_EX_FAIL, { NULL }, 0, false },
	{ "spf softfail does not count", { EX_REJECT, EX_A },
	  { "example.com" }, "softfail", "example.com", { NULL }, FAIL, P_REJ,
	  AR_EX_FAIL, { NULL }, 0, false },
	{ "relaxed dkim subdomain", { EX_REJECT, EX_A }, { "example.com" },
	  NULL, NULL, { "mail.example.com" }, PASS, P_REJ, AR_EX_PASS, { NULL }, 0, false },
	{ "relaxed spf parent of From", { EX_REJECT, EX_A,
	  A("news.example.com") }, { "news.example.com" }, "pass",
	  "example.com", { NULL }, PASS, P_REJ,
	  "dmarc=pass (p=reject sp=reject dis=none) "
	  "header.from=news.example.com", { NULL }, 0, false },
	{ "relaxed sibling subdomains", { EX_REJECT, A("a.example.com") },
	  { "a.example.com" }, NULL, NULL, { "b.example.com" }, PASS, P_REJ,
	  "dmarc=pass (p=reject sp=reject dis=none) "
	  "header.from=a.example.com", { NULL }, 0, false },
	{ "relaxed not fooled by suffix", { EX_REJECT, EX_A },
	  { "example.com" }, "pass", "badexample.com", { "xexample.com" },
	  FAIL, P_REJ, AR_EX_FAIL, { NULL }, 0, false },
	{ "adkim=s subdomain fails", { DM("example.com",
	  "v=DMARC1; p=reject; adkim=s"), EX_A }, { "example.com" }, NULL,
	  NULL, { "mail.example.com" }, FAIL, P_REJ, AR_EX_FAIL, { NULL }, 0, false },
	{ "adkim=s exact passes", { DM("example.com",
	  "v=DMARC1; p=reject; adkim=s"), EX_A }, { "example.com" }, NULL,
	  NULL, { "example.com" }, PASS, P_REJ, AR_EX_PASS, { NULL }, 0, false },
	{ "aspf=s subdomain fails", { DM("example.com",
	  "v=DMARC1; p=reject; aspf=s"), EX_A }, { "example.com" }, "pass",
	  "bounce.example.com", { NULL }, FAIL, P_REJ, AR_EX_FAIL, { NULL }, 0, false },
	{ "aspf=s exact passes", { DM("example.com",
	  "v=DMARC1; p=reject; aspf=s"), EX_A }, { "example.com" }, "pass",
	  "example.com", { NULL }, PASS, P_REJ, AR_EX_PASS, { NULL }, 0, false },
	{ "adkim=s but relaxed spf aligns", { DM("example.com",
	  "v=DMARC1; p=reject; adkim=s"), EX_A }, { "example.com" }, "pass",
	  "bounce.example.com", { "mail.example.com" }, PASS, P_REJ,
	  AR_EX_PASS, { NULL }, 0, false },
	{ "HELO identity (null sender) aligns", { EX_REJECT, EX_A },
	  { "example.com" }, "pass", "mx1.example.com", { NULL }, PASS,
	  P_REJ, AR_EX_PASS, { NULL }, 0, false },
	{ "case and trailing dots", { EX_REJECT, EX_A }, { "Example.COM." },
	  NULL, NULL, { "MAIL.example.com." }, PASS, P_REJ, AR_EX_PASS, { NULL }, 0, false },

	/* --- policy discovery by the tree walk, sp --- */
	{ "no record anywhere", { A("example.org") }, { "example.org" },
	  "pass", "example.org", { NULL }, NONE, P_NONE,
	  "dmarc=none header.from=example.org", { NULL }, 0, false },
	{ "walk from a deep subdomain", { DM("example.com",
	  "v=DMARC1; p=quarantine; sp=none"), A("a.b.c.example.com") },
	  { "a.b.c.example.com" }, NULL, NULL, { NULL }, FAIL, P_NONE,
	  "dmarc=fail (p=quarantine sp=none dis=none) "
	  "header.from=a.b.c.example.com", { NULL }, 0, false },
	{ "sp on a subdomain", { DM("example.com",
	  "v=DMARC1; p=none; sp=reject"), A("sub.example.com") },
	  { "sub.example.com" }, NULL, NULL, { NULL }, FAIL, P_REJ,
	  "dmarc=fail (p=none sp=reject dis=reject) "
	  "header.from=sub.example.com", { NULL }, 0, false },
	{ "p at the Author Domain despite sp", { DM("example.com",
	  "v=DMARC1; p=none; sp=reject"), EX_A }, { "example.com" }, NULL,
	  NULL, { NULL }, FAIL, P_NONE,
	  "dmarc=fail (p=none sp=reject dis=none) header.from=example.com", { NULL }, 0, false },
	{ "own record beats the parent's", { EX_REJECT,
	  DM("sub.example.com", "v=DMARC1; p=quarantine"),
	  A("sub.example.com") }, { "sub.example.com" }, NULL, NULL,
	  { NULL }, FAIL, P_QUAR,
	  "dmarc=fail (p=quarantine sp=quarantine dis=quarantine) "
	  "header.from=sub.example.com", { NULL }, 0, false },
	{ "more than 8 labels: walk skips to 7", {
	  DM("c.d.e.f.g.h.i.example.com", "v=DMARC1; p=none"), EX_REJECT,
	  A(LONG11) }, { LONG11 }, NULL, NULL, { NULL }, FAIL, P_REJ,
	  "dmarc=fail (p=reject sp=reject dis=reject) header.from=" LONG11, { NULL }, 0, false },
	{ "more than 8 labels: 7-label psd=n record found", {
	  DM("e.f.g.h.i.example.com", "v=DMARC1; p=quarantine; psd=n"),
	  EX_REJECT, A(LONG11) }, { LONG11 }, NULL, NULL, { NULL }, FAIL,
	  P_QUAR, "dmarc=fail (p=quarantine sp=quarantine dis=quarantine) "
	  "header.from=" LONG11, { NULL }, 0, false },
	{ "more than 8 labels: the Org Domain's record, not the first", {
	  DM("e.f.g.h.i.example.com", "v=DMARC1; p=quarantine"), EX_REJECT,
	  A(LONG11) }, { LONG11 }, NULL, NULL, { NULL }, FAIL, P_REJ,
	  "dmarc=fail (p=reject sp=reject dis=reject) header.from=" LONG11,
	  { NULL }, 0, false },
	{ "more than 8 labels: relaxed pass", { EX_REJECT, A(LONG11) },
	  { LONG11 }, "pass", "example.com", { NULL }, PASS, P_REJ,
	  "dmarc=pass (p=reject sp=reject dis=none) header.from=" LONG11, { NULL }, 0, false },

	/* --- np: non-existent subdomains (NXDOMAIN) --- */
	{ "np for an NXDOMAIN subdomain", { DM("example.com",
	  "v=DMARC1; p=none; sp=quarantine; np=reject"), EX_A },
	  { "ghost.example.com" }, NULL, NULL, { NULL }, FAIL, P_REJ,
	  "dmarc=fail (p=none sp=quarantine dis=reject) "
	  "header.from=ghost.example.com", { NULL }, 0, false },
	{ "np absent: sp for NXDOMAIN", { DM("example.com",
	  "v=DMARC1; p=none; sp=quarantine"), EX_A },
	  { "ghost.example.com" }, NULL, NULL, { NULL }, FAIL, P_QUAR,
	  "dmarc=fail (p=none sp=quarantine dis=quarantine) "
	  "header.from=ghost.example.com", { NULL }, 0, false },
	{ "np not for an existing subdomain", { DM("example.com",
	  "v=DMARC1; p=none; sp=quarantine; np=reject"), EX_A,
	  A("real.example.com") }, { "real.example.com" }, NULL, NULL,
	  { NULL }, FAIL, P_QUAR,
	  "dmarc=fail (p=none sp=quarantine dis=quarantine) "
	  "header.from=real.example.com", { NULL }, 0, false },
	{ "np not for an MX-only subdomain (NODATA)", { DM("example.com",
	  "v=DMARC1; p=none; sp=quarantine; np=reject"), EX_A,
	  MX("mxonly.example.com") }, { "mxonly.example.com" }, NULL, NULL,
	  { NULL }, FAIL, P_QUAR,
	  "dmarc=fail (p=none sp=quarantine dis=quarantine) "
	  "header.from=mxonly.example.com", { NULL }, 0, false },

	/* --- t= and legacy pct= --- */
	{ "t=y: reject becomes quarantine", { DM("example.com",
	  "v=DMARC1; p=reject; t=y"), EX_A }, { "example.com" }, NULL, NULL,
	  { NULL }, FAIL, P_QUAR,
	  "dmarc=fail (p=reject sp=reject dis=quarantine) "
	  "header.from=example.com", { NULL }, 0, false },
	{ "t=y: quarantine becomes none", { DM("example.com",
	  "v=DMARC1; p=quarantine; t=y"), EX_A }, { "example.com" }, NULL,
	  NULL, { NULL }, FAIL, P_NONE,
	  "dmarc=fail (p=quarantine sp=quarantine dis=none) "
	  "header.from=example.com", { NULL }, 0, false },
	{ "t=n: policy in full", { DM("example.com",
	  "v=DMARC1; p=reject; t=n"), EX_A }, { "example.com" }, NULL, NULL,
	  { NULL }, FAIL, P_REJ, AR_EX_FAIL, { NULL }, 0, false },
	{ "t=y with pass", { DM("example.com", "v=DMARC1; p=reject; t=y"),
	  EX_A }, { "example.com" }, NULL, NULL, { "example.com" }, PASS,
	  P_QUAR, AR_EX_PASS, { NULL }, 0, false },
	{ "t=y on sp of a subdomain", { DM("example.com",
	  "v=DMARC1; p=none; sp=reject; t=y"), A("sub.example.com") },
	  { "sub.example.com" }, NULL, NULL, { NULL }, FAIL, P_QUAR,
	  "dmarc=fail (p=none sp=reject dis=quarantine) "
	  "header.from=sub.example.com", { NULL }, 0, false },
	{ "legacy pct=0 reads as t=y", { DM("example.com",
	  "v=DMARC1; p=reject; pct=0"), EX_A }, { "example.com" }, NULL,
	  NULL, { NULL }, FAIL, P_QUAR,
	  "dmarc=fail (p=reject sp=reject dis=quarantine) "
	  "header.from=example.com", { NULL }, 0, false },
	{ "legacy pct=50 reads as t=n", { DM("example.com",
	  "v=DMARC1; p=reject; pct=50"), EX_A }, { "example.com" }, NULL,
	  NULL, { NULL }, FAIL, P_REJ, AR_EX_FAIL, { NULL }, 0, false },
	{ "t=n wins over pct=0", { DM("example.com",
	  "v=DMARC1; p=reject; pct=0; t=n"), EX_A }, { "example.com" },
	  NULL, NULL, { NULL }, FAIL, P_REJ, AR_EX_FAIL, { NULL }, 0, false },

	/* --- psd=: public suffix domains and the Organizational Domain --- */
	{ "psd=y record covers a domain below", {
	  DM("bank", "v=DMARC1; p=reject; psd=y"), A("foo.bank") },
	  { "foo.bank" }, "pass", "other.net", { NULL }, FAIL, P_REJ,
	  "dmarc=fail (p=reject sp=reject dis=reject) header.from=foo.bank", { NULL }, 0, false },
	{ "psd=y: org domain is one label below", {
	  DM("bank", "v=DMARC1; p=reject; psd=y"), A("a.foo.bank") },
	  { "a.foo.bank" }, NULL, NULL, { "b.foo.bank" }, PASS, P_REJ,
	  "dmarc=pass (p=reject sp=reject dis=none) header.from=a.foo.bank", { NULL }, 0, false },
	{ "psd=y: two registrants do not align", {
	  DM("bank", "v=DMARC1; p=reject; psd=y"), A("foo.bank") },
	  { "foo.bank" }, "pass", "bar.bank", { "bank" }, FAIL, P_REJ,
	  "dmarc=fail (p=reject sp=reject dis=reject) header.from=foo.bank", { NULL }, 0, false },
	{ "psd=y: np for a non-existent domain", { DM("bank",
	  "v=DMARC1; p=none; sp=quarantine; np=reject; psd=y") },
	  { "ghost.bank" }, NULL, NULL, { NULL }, FAIL, P_REJ,
	  "dmarc=fail (p=none sp=quarantine dis=reject) "
	  "header.from=ghost.bank", { NULL }, 0, false },
	{ "psd=y: own record below the PSD wins", {
	  DM("bank", "v=DMARC1; p=reject; psd=y"),
	  DM("foo.bank", "v=DMARC1; p=none"), A("foo.bank") },
	  { "foo.bank" }, NULL, NULL, { NULL }, FAIL, P_NONE,
	  "dmarc=fail (p=none sp=none dis=none) header.from=foo.bank", { NULL }, 0, false },
	{ "fewest-labels record is the org domain", { DM("example.com",
	  "v=DMARC1; p=none"), DM("dept.example.com", "v=DMARC1; p=reject"),
	  A("dept.example.com") }, { "dept.example.com" }, NULL, NULL,
	  { "example.com" }, PASS, P_REJ,
	  "dmarc=pass (p=reject sp=reject dis=none) "
	  "header.from=dept.example.com", { NULL }, 0, false },
	{ "psd=n makes its domain the org domain", { DM("example.com",
	  "v=DMARC1; p=none"), DM("dept.example.com",
	  "v=DMARC1; p=reject; psd=n"), A("dept.example.com") },
	  { "dept.example.com" }, NULL, NULL, { "example.com" }, FAIL, P_REJ,
	  "dmarc=fail (p=reject sp=reject dis=reject) "
	  "header.from=dept.example.com", { NULL }, 0, false },
	{ "no record: the domain is its own org domain", {
	  DM("a.example.com", "v=DMARC1; p=reject") }, { "a.example.com" },
	  "pass", "b.example.com", { NULL }, FAIL, P_REJ,
	  "dmarc=fail (p=reject sp=reject dis=reject) "
	  "header.from=a.example.com", { NULL }, 0, false },

	/* --- record sets and malformed records --- */
	{ "two DMARC records: no record", { EX_REJECT,
	  DM("example.com", "v=DMARC1; p=none"), EX_A }, { "example.com" },
	  NULL, NULL, { NULL }, NONE, P_NONE,
	  "dmarc=none header.from=example.com", { NULL }, 0, false },
	{ "two records at a subdomain: parent's", { EX_REJECT,
	  DM("sub.example.com", "v=DMARC1; p=none"),
	  DM("sub.example.com", "v=DMARC1; p=quarantine"),
	  A("sub.example.com") }, { "sub.example.com" }, NULL, NULL,
	  { NULL }, FAIL, P_REJ,
	  "dmarc=fail (p=reject sp=reject dis=reject) "
	  "header.from=sub.example.com", { NULL }, 0, false },
	{ "other TXT beside the record", { EX_REJECT,
	  DM("example.com", "v=spf1 -all"), EX_A }, { "example.com" }, NULL,
	  NULL, { NULL }, FAIL, P_REJ, AR_EX_FAIL, { NULL }, 0, false },
	{ "missing v=: not a record", { DM("example.com", "p=reject"),
	  EX_A }, { "example.com" }, NULL, NULL, { NULL }, NONE, P_NONE,
	  "dmarc=none header.from=example.com", { NULL }, 0, false },
	{ "v= not first: not a record", { DM("example.com",
	  "p=reject; v=DMARC1"), EX_A }, { "example.com" }, NULL, NULL,
	  { NULL }, NONE, P_NONE, "dmarc=none header.from=example.com", { NULL }, 0, false },
	{ "wrong version: not a record", { DM("example.com",
	  "v=DMARC2; p=reject"), EX_A }, { "example.com" }, NULL, NULL,
	  { NULL }, NONE, P_NONE, "dmarc=none header.from=example.com", { NULL }, 0, false },
	{ "bad p=, no rua: DMARC does not apply", { DM("example.com",
	  "v=DMARC1; p=bogus"), EX_A }, { "example.com" }, NULL, NULL,
	  { NULL }, NONE, P_NONE, AR_EX_NONE, { NULL }, 0, false },
	{ "no p=, rua only: p=none", { DM("example.com",
	  "v=DMARC1; rua=mailto:d@example.com"), EX_A }, { "example.com" },
	  NULL, NULL, { NULL }, FAIL, P_NONE,
	  "dmarc=fail (p=none sp=none dis=none) header.from=example.com", { NULL }, 0, false },
	{ "unknown tags ignored", { DM("example.com",
	  "v=DMARC1; foo=bar; p=reject; rf=afrf; ri=86400; x"), EX_A },
	  { "example.com" }, NULL, NULL, { NULL }, FAIL, P_REJ, AR_EX_FAIL, { NULL }, 0, false },
	{ "bad sp=, no rua: DMARC does not apply", { DM("example.com",
	  "v=DMARC1; p=quarantine; sp=maybe"), A("s.example.com") },
	  { "s.example.com" }, NULL, NULL, { NULL }, NONE, P_NONE,
	  "dmarc=none header.from=s.example.com", { NULL }, 0, false },
	{ "case-insensitive names and words, whitespace", {
	  DM("example.com", "V = DMARC1 ;P = Reject ; ADKIM=S ; "), EX_A },
	  { "example.com" }, NULL, NULL, { "mail.example.com" }, FAIL, P_REJ,
	  AR_EX_FAIL, { NULL }, 0, false },
	{ "record split into strings", {
	  "_dmarc.example.com. 300 IN TXT \"v=DMARC1; \" \"p=reject\"",
	  EX_A }, { "example.com" }, NULL, NULL, { NULL }, FAIL, P_REJ,
	  AR_EX_FAIL, { NULL }, 0, false },

	/* --- v=DMARC1: exact, case-sensitive, first (RFC 9989 4.7) --- */
	{ "v=dmarc1 (value case): not a record", { DM("example.com",
	  "v=dmarc1; p=reject"), EX_A }, { "example.com" }, NULL, NULL,
	  { NULL }, NONE, P_NONE, AR_EX_NONE, { NULL }, 0, false },
	{ "leading space before v: not a record", { DM("example.com",
	  " v=DMARC1; p=reject"), EX_A }, { "example.com" }, NULL, NULL,
	  { NULL }, NONE, P_NONE, AR_EX_NONE, { NULL }, 0, false },
	{ "v=DMARC1 without ';': not a record", { DM("example.com",
	  "v=DMARC1 p=reject"), EX_A }, { "example.com" }, NULL, NULL,
	  { NULL }, NONE, P_NONE, AR_EX_NONE, { NULL }, 0, false },
	{ "non-record at the Author Domain: as if absent", {
	  DM("sub.example.com", "v=Dmarc1; p=none"), EX_REJECT,
	  A("sub.example.com") }, { "sub.example.com" }, NULL, NULL, { NULL },
	  FAIL, P_REJ, "dmarc=fail (p=reject sp=reject dis=reject) "
	  "header.from=sub.example.com", { NULL }, 0, false },

	/* --- tree walk: Organizational Domain, psd=, when to walk --- */
	{ "policy of the Org Domain, not the first record up", {
	  DM("b.example.com", "v=DMARC1; p=none"), EX_REJECT,
	  A("a.b.example.com") }, { "a.b.example.com" }, NULL, NULL,
	  { NULL }, FAIL, P_REJ, "dmarc=fail (p=reject sp=reject "
	  "dis=reject) header.from=a.b.example.com", { NULL }, 5, false },
	{ "psd=n ends the walk and is the Org Domain", {
	  DM("b.example.com", "v=DMARC1; p=quarantine; psd=n"), EX_REJECT,
	  A("a.b.example.com") }, { "a.b.example.com" }, NULL, NULL,
	  { NULL }, FAIL, P_QUAR, "dmarc=fail (p=quarantine sp=quarantine "
	  "dis=quarantine) header.from=a.b.example.com", { NULL }, 3, false },
	{ "psd=y at the Author Domain ends the walk", {
	  DM("example.com", "v=DMARC1; p=reject; psd=y"),
	  DM("com", "v=DMARC1; p=none"), EX_A }, { "example.com" }, NULL,
	  NULL, { "other.com" }, FAIL, P_REJ, AR_EX_FAIL, { NULL }, 0, false },
	{ "RFC B.4.3: psd=y above, SPF aligned", {
	  DM("giant.bank.example", "v=DMARC1; p=quarantine"),
	  DM("bank.example", "v=DMARC1; p=reject; psd=y") },
	  { "giant.bank.example" }, "pass", "mail.giant.bank.example",
	  { "mail.mega.bank.example" }, PASS, P_QUAR,
	  "dmarc=pass (p=quarantine sp=quarantine dis=none) "
	  "header.from=giant.bank.example", { NULL }, 0, false },
	{ "RFC B.4.3: other registrant's DKIM unaligned", {
	  DM("giant.bank.example", "v=DMARC1; p=quarantine"),
	  DM("bank.example", "v=DMARC1; p=reject; psd=y") },
	  { "giant.bank.example" }, NULL, NULL, { "mail.mega.bank.example" },
	  FAIL, P_QUAR, "dmarc=fail (p=quarantine sp=quarantine "
	  "dis=quarantine) header.from=giant.bank.example", { NULL }, 0, false },
	{ "psd=y: Org Domain without record, PSD policy", {
	  DM("a.foo.bank", "v=DMARC1; p=none"),
	  DM("bank", "v=DMARC1; p=reject; sp=quarantine; psd=y"),
	  A("b.a.foo.bank") }, { "b.a.foo.bank" }, NULL, NULL, { NULL },
	  FAIL, P_QUAR, "dmarc=fail (p=reject sp=quarantine dis=quarantine) "
	  "header.from=b.a.foo.bank", { NULL }, 0, false },
	{ "no walk: own record, identical identifiers", {
	  DM("a.example.com", "v=DMARC1; p=reject"), EX_REJECT },
	  { "a.example.com" }, "pass", "a.example.com", { "a.example.com" },
	  PASS, P_REJ, "dmarc=pass (p=reject sp=reject dis=none) "
	  "header.from=a.example.com", { NULL }, 1, false },
	{ "no walk: own record, strict alignment", {
	  DM("a.example.com", "v=DMARC1; p=reject; adkim=s; aspf=s"),
	  EX_REJECT }, { "a.example.com" }, "pass", "example.com",
	  { "mail.a.example.com" }, FAIL, P_REJ, "dmarc=fail (p=reject "
	  "sp=reject dis=reject) header.from=a.example.com", { NULL }, 1, false },
	{ "no walk: no identifiers", {
	  DM("a.example.com", "v=DMARC1; p=reject"), EX_REJECT },
	  { "a.example.com" }, "fail", "a.example.com", { NULL }, FAIL, P_REJ,
	  "dmarc=fail (p=reject sp=reject dis=reject) "
	  "header.from=a.example.com", { NULL }, 1, false },
	{ "walk: relaxed, different identifier", {
	  DM("a.example.com", "v=DMARC1; p=reject"), EX_REJECT },
	  { "a.example.com" }, NULL, NULL, { "example.com" }, PASS, P_REJ,
	  "dmarc=pass (p=reject sp=reject dis=none) "
	  "header.from=a.example.com", { NULL }, 3, false },

	/* --- invalid or missing p=, sp=, np= (RFC 9989 4.10.1) --- */
	{ "no p=, no rua: DMARC does not apply", { DM("example.com",
	  "v=DMARC1; adkim=s"), EX_A }, { "example.com" }, NULL, NULL,
	  { NULL }, NONE, P_NONE, AR_EX_NONE, { NULL }, 0, false },
	{ "empty p=, no rua: DMARC does not apply", { DM("example.com",
	  "v=DMARC1; p=; sp=reject"), EX_A }, { "example.com" }, NULL, NULL,
	  { NULL }, NONE, P_NONE, AR_EX_NONE, { NULL }, 0, false },
	{ "bad p=, valid rua: p=none", { DM("example.com",
	  "v=DMARC1; p=bogus; " RUA), EX_A }, { "example.com" }, NULL, NULL,
	  { NULL }, FAIL, P_NONE,
	  "dmarc=fail (p=none sp=none dis=none) header.from=example.com", { NULL }, 0, false },
	{ "bad p=, rua not a URI: DMARC does not apply", { DM("example.com",
	  "v=DMARC1; p=bogus; rua=d@example.com"), EX_A }, { "example.com" },
	  NULL, NULL, { NULL }, NONE, P_NONE, AR_EX_NONE, { NULL }, 0, false },
	{ "bad sp=, valid rua: all none", { DM("example.com",
	  "v=DMARC1; p=reject; sp=maybe; " RUA), A("s.example.com") },
	  { "s.example.com" }, NULL, NULL, { NULL }, FAIL, P_NONE,
	  "dmarc=fail (p=none sp=none dis=none) header.from=s.example.com", { NULL }, 0, false },
	{ "bad np=, valid rua: all none", { DM("example.com",
	  "v=DMARC1; p=reject; np=x; " RUA), EX_A }, { "ghost.example.com" },
	  NULL, NULL, { NULL }, FAIL, P_NONE,
	  "dmarc=fail (p=none sp=none dis=none) "
	  "header.from=ghost.example.com", { NULL }, 0, false },
	{ "bad np=, no rua: DMARC does not apply", { DM("example.com",
	  "v=DMARC1; p=reject; np=x"), EX_A }, { "ghost.example.com" }, NULL,
	  NULL, { NULL }, NONE, P_NONE,
	  "dmarc=none header.from=ghost.example.com", { NULL }, 0, false },
	{ "own record without policy: no walk to the parent", {
	  DM("sub.example.com", "v=DMARC1; p=bogus"), EX_REJECT,
	  A("sub.example.com") }, { "sub.example.com" }, NULL, NULL, { NULL },
	  NONE, P_NONE, "dmarc=none header.from=sub.example.com", { NULL }, 0, false },

	/* --- DKIM and SPF temperror identities --- */
	{ "aligned DKIM temperror: temperror", { EX_REJECT, EX_A },
	  { "example.com" }, NULL, NULL, { NULL }, TEMP, P_NONE, AR_EX_TEMP,
	  { "example.com" }, 0, false },
	{ "relaxed-aligned DKIM temperror: temperror", { EX_REJECT, EX_A },
	  { "example.com" }, "fail", "example.com", { NULL }, TEMP, P_NONE,
	  AR_EX_TEMP, { "mail.example.com" }, 0, false },
	{ "unaligned DKIM temperror: fail", { EX_REJECT, EX_A },
	  { "example.com" }, NULL, NULL, { NULL }, FAIL, P_REJ, AR_EX_FAIL,
	  { "other.net" }, 0, false },
	{ "DKIM temperror beside an aligned pass: pass", { EX_REJECT, EX_A },
	  { "example.com" }, NULL, NULL, { "example.com" }, PASS, P_REJ,
	  AR_EX_PASS, { "example.com" }, 0, false },
	{ "aligned SPF temperror: temperror", { EX_REJECT, EX_A },
	  { "example.com" }, "temperror", "example.com", { NULL }, TEMP,
	  P_NONE, AR_EX_TEMP, { NULL }, 0, false },
	{ "unaligned SPF temperror: fail", { EX_REJECT, EX_A },
	  { "example.com" }, "temperror", "other.net", { NULL }, FAIL, P_REJ,
	  AR_EX_FAIL, { NULL }, 0, false },

	/* --- several From domains: temperror > fail > pass --- */
	{ "two From: temperror outranks fail", { EX_REJECT, EX_A },
	  { "example.com", "example.net" }, NULL, NULL, { NULL }, TEMP,
	  P_NONE, "dmarc=temperror header.from=example.net", { NULL }, 0,
	  true },
	{ "two From: temperror first, fail second", { EX_REJECT, EX_A },
	  { "example.net", "example.com" }, NULL, NULL, { NULL }, TEMP,
	  P_NONE, "dmarc=temperror header.from=example.net", { NULL }, 0,
	  true },
	{ "two From: fail outranks none", { EX_REJECT, EX_A,
	  A("example.org") }, { "example.org", "example.com" }, NULL, NULL,
	  { NULL }, FAIL, P_REJ, AR_EX_FAIL, { NULL }, 0, false },

	/* --- IDN From domains (RFC 9989 5.3.1) --- */
	{ "U-label From domain aligns as its A-label", {
	  DM("xn--bcher-kva.example", "v=DMARC1; p=reject") },
	  { "b\xc3\xbc" "cher.example" }, NULL, NULL,
	  { "xn--bcher-kva.example" }, PASS, P_REJ,
	  "dmarc=pass (p=reject sp=reject dis=none) "
	  "header.from=xn--bcher-kva.example", { NULL }, 0, false },
	{ "U-label, decomposed and upper case", {
	  DM("xn--bcher-kva.example", "v=DMARC1; p=reject") },
	  { "Bu\xcc\x88" "cher.EXAMPLE" }, NULL, NULL, { NULL }, FAIL, P_REJ,
	  "dmarc=fail (p=reject sp=reject dis=reject) "
	  "header.from=xn--bcher-kva.example", { NULL }, 0, false },
	{ "U-label SPF domain against an A-label From", {
	  DM("xn--bcher-kva.example", "v=DMARC1; p=reject") },
	  { "xn--bcher-kva.example" }, "pass", "mail.b\xc3\xbc" "cher.example",
	  { NULL }, PASS, P_REJ, "dmarc=pass (p=reject sp=reject dis=none) "
	  "header.from=xn--bcher-kva.example", { NULL }, 0, false },
	{ "invalid U-label: permerror", { EX_REJECT },
	  { "\xe2\x98\x83\xcc\x88..example" }, NULL, NULL, { NULL }, PERM,
	  P_NONE, "dmarc=permerror", { NULL }, 0, false },

	/* --- several From domains, none --- */
	{ "two From: one fails", { EX_REJECT, EX_A,
	  DM("example.net", "v=DMARC1; p=quarantine") },
	  { "example.com", "example.net" }, NULL, NULL, { "example.com" },
	  FAIL, P_QUAR,
	  "dmarc=fail (p=quarantine sp=quarantine dis=quarantine) "
	  "header.from=example.net", { NULL }, 0, false },
	{ "two From: both pass", { EX_REJECT, EX_A,
	  DM("example.net", "v=DMARC1; p=quarantine") },
	  { "example.com", "example.net" }, NULL, NULL,
	  { "example.net", "example.com" }, PASS, P_REJ, AR_EX_PASS, { NULL }, 0, false },
	{ "two From: pass and none", { EX_REJECT, EX_A },
	  { "example.com", "example.org" }, NULL, NULL, { "example.com" },
	  PASS, P_REJ, AR_EX_PASS, { NULL }, 0, false },
	{ "two From: both fail, strictest", {
	  DM("example.com", "v=DMARC1; p=quarantine"), EX_A,
	  DM("example.net", "v=DMARC1; p=reject") },
	  { "example.com", "example.net" }, NULL, NULL, { NULL }, FAIL, P_REJ,
	  "dmarc=fail (p=reject sp=reject dis=reject) "
	  "header.from=example.net", { NULL }, 0, false },
	{ "duplicate From domains once", { EX_REJECT, EX_A },
	  { "example.com", "EXAMPLE.com" }, NULL, NULL, { "example.com" },
	  PASS, P_REJ, AR_EX_PASS, { NULL }, 0, false },
	{ "no From: permerror", { EX_REJECT, EX_A }, { NULL }, "pass",
	  "example.com", { "example.com" }, PERM, P_NONE, "dmarc=permerror", { NULL }, 0, false },
	{ "malformed From domain: permerror", { EX_REJECT, EX_A },
	  { "exa mple.com" }, NULL, NULL, { NULL }, PERM, P_NONE,
	  "dmarc=permerror", { NULL }, 0, false },
	{ "empty-label From domain: permerror", { EX_REJECT, EX_A },
	  { "example..com" }, NULL, NULL, { NULL }, PERM, P_NONE,
	  "dmarc=permerror", { NULL }, 0, false },
};

static size_t
count(const char *const *v, size_t max)
{
	size_t	n = 0;

	while (n < max && v[n] != NULL)
		n++;
	return n;
}

static void
run_eval(void **state)
{
	const struct eval_case	*tc = *state;
	const char		*rr[RR_MAX + 1];
	/* fault rows: names outside rr go to a port where nothing listens
	 * (SERVFAIL or timeout), the others are answered from memory */
	struct dns_options	 o = { tc->fault ? "127.0.0.1@1" : NULL, rr,
				    tc->fault ? 0 : 1 };
	struct dmarc_input	 in;
	struct dmarc_outcome	 out;
	struct dns		*dns;
	const char		*err;
	char			 ar[600];
	size_t			 n;

	n = count(tc->rr, RR_MAX);
	memcpy(rr, tc->rr, n * sizeof(rr[0]));
	rr[n] = NULL;
	dns = dns_new(&o, &err);
	if (dns == NULL)
		fail_msg("dns_new: %s", err);
	memset(&in, 0, sizeof(in));
	in.from_domains = tc->from;
	in.nfrom = count(tc->from, ID_MAX);
	in.spf_result = tc->spf;
	in.spf_domain = tc->spf_domain;
	in.dkim_pass_domains = tc->dkim;
	in.ndkim = count(tc->dkim, ID_MAX);
	in.dkim_temp_domains = tc->dkim_temp;
	in.ndkim_temp = count(tc->dkim_temp, ID_MAX);
	assert_int_equal(dmarc_evaluate(dns, clock_ms() +
	    (tc->fault ? 1000 : 5000), &in, &out), 0);
	dns_free(dns);
	assert_string_equal(dmarc_result_name(out.result),
	    dmarc_result_name(tc->result));
	assert_string_equal(dmarc_policy_name(out.policy),
	    dmarc_policy_name(tc->policy));
	assert_true(dmarc_authres(&out, ar, sizeof(ar)) > 0);
	assert_string_equal(ar, tc->ar);
	assert_true(out.queries <= DMARC_QUERIES_MAX);
	if (tc->queries != 0)
		assert_int_equal(out.queries, tc->queries);
}

/* A resolver with nothing behind it: temperror by the deadline. */
static void
test_temperror(void **state)
{
	static const char *const from[] = { "example.com" };
	static const char *const dkim[] = { "example.com" };
	struct dns_options	 o = { "127.0.0.1@1", NULL, 0 };
	struct dmarc_input	 in = { from, 1, "pass", "example.com",
				    dkim, 1, NULL, 0 };
	struct dmarc_outcome	 out;
	struct dns		*dns;
	const char		*err;
	char			 ar[200];

	(void)state;
	dns = dns_new(&o, &err);
	if (dns == NULL)
		fail_msg("dns_new: %s", err);
	assert_int_equal(dmarc_evaluate(dns, clock_ms() + 300, &in, &out), 0);
	dns_free(dns);
	assert_int_equal(out.result, DMARC_R_TEMPERROR);
	assert_int_equal(out.policy, DMARC_P_NONE);
	assert_true(dmarc_authres(&out, ar, sizeof(ar)) > 0);
	assert_string_equal(ar, "dmarc=temperror header.from=example.com");
}

/* The walk of an 11-label name makes at most DMARC_WALK_MAX queries. */
static void
test_walk_bound(void **state)
{
	static const char *const from[] = { "a.b.c.d.e.f.g.h.i.j.k.l.m.n" };
	const char		*rr[] = { NULL };
	struct dns_options	 o = { NULL, rr, 1 };
	struct dmarc_input	 in = { from, 1, NULL, NULL, NULL, 0, NULL,
				    0 };
	struct dmarc_outcome	 out;
	struct dns		*dns;
	const char		*err;

	(void)state;
	dns = dns_new(&o, &err);
	if (dns == NULL)
		fail_msg("dns_new: %s", err);
	assert_int_equal(dmarc_evaluate(dns, clock_ms() + 5000, &in, &out),
	    0);
	dns_free(dns);
	assert_int_equal(out.result, DMARC_R_NONE);
	assert_int_equal(out.queries, DMARC_WALK_MAX);
}

/* Too many From domains; NULL arguments; a short A-R buffer. */
static void
test_limits(void **state)
{
	static const char *const from[DMARC_FROM_MAX + 1] = {
		"a1.example", "a2.example", "a3.example", "a4.example",
		"a5.example", "a6.example", "a7.example", "a8.example",
		"a9.example" };
	const char		*rr[] = { NULL };
	struct dns_options	 o = { NULL, rr, 1 };
	struct dmarc_input	 in = { from, DMARC_FROM_MAX + 1, NULL, NULL,
				    NULL, 0, NULL, 0 };
	struct dmarc_outcome	 out;
	struct dns		*dns;
	const char		*err;
	char			 ar[8];
	char			 longd[300];

	(void)state;
	dns = dns_new(&o, &err);
	if (dns == NULL)
		fail_msg("dns_new: %s", err);
	assert_int_equal(dmarc_evaluate(dns, clock_ms() + 5000, &in, &out),
	    0);
	assert_int_equal(out.result, DMARC_R_PERMERROR);
	assert_int_equal(out.queries, 0);
	in.nfrom = DMARC_FROM_MAX;
	assert_int_equal(dmarc_evaluate(dns, clock_ms() + 5000, &in, &out),
	    0);
	assert_int_equal(out.result, DMARC_R_NONE);
	/* a domain over 253 octets is not a domain */
	memset(longd, 'a', sizeof(longd) - 1);
	longd[sizeof(longd) - 1] = '\0';
	for (size_t i = 60; i < sizeof(longd) - 1; i += 61)
		longd[i] = '.';
	{
		const char *f1[] = { longd };

		in.from_domains = f1;
		in.nfrom = 1;
		assert_int_equal(dmarc_evaluate(dns, clock_ms() + 5000, &in,
		    &out), 0);
		assert_int_equal(out.result, DMARC_R_PERMERROR);
		assert_true(out.no_from);
	}
	assert_int_equal(dmarc_evaluate(dns, 0, NULL, &out), -1);
	assert_int_equal(dmarc_evaluate(NULL, 0, &in, &out), -1);
	assert_int_equal(dmarc_evaluate(dns, 0, &in, NULL), -1);
	dns_free(dns);
	out.result = DMARC_R_PASS;
	snprintf(out.header_from, sizeof(out.header_from), "example.com");
	assert_int_equal(dmarc_authres(&out, ar, sizeof(ar)), -1);
	assert_string_equal(ar, "");
	assert_string_equal(dmarc_result_name(DMARC_R_FAIL), "fail");
	assert_string_equal(dmarc_policy_name(DMARC_P_QUARANTINE),
	    "quarantine");
}

/* ------------------------------------------------------------------ */
/* Parser rows                                                        */
/* ------------------------------------------------------------------ */

struct parse_case {
	const char		*name;
	const char		*txt;
	size_t			 len;
	int			 rc;
	enum dmarc_policy	 p, sp, np;
	bool			 adkim_s, aspf_s, testing;
	enum dmarc_psd		 psd;
	int			 pct;
	unsigned		 unknown, bad;
	const char		*rua, *fo;	/* NULL: not checked */
	int			 nopol;	/* no_policy: 0 unchecked, 1 no, 2 yes */
};

#define S(s)	(s), sizeof(s) - 1
#define U	DMARC_PSD_U

static const struct parse_case parse_cases[] = {
	{ "minimal", S("v=DMARC1; p=reject"), 0, P_REJ, P_REJ, P_REJ,
	  false, false, false, U, -1, 0, 0, "", "0", 0 },
	{ "only v", S("v=DMARC1"), 0, P_NONE, P_NONE, P_NONE,
	  false, false, false, U, -1, 0, 0, "", "0", 0 },
	{ "all tags", S("v=DMARC1; p=quarantine; sp=reject; np=none; "
	  "adkim=s; aspf=s; t=y; psd=n; rua=mailto:a@x.example,"
	  "mailto:b@y.example; ruf=mailto:f@x.example; fo=1:d"), 0, P_QUAR,
	  P_REJ, P_NONE, true, true, true, DMARC_PSD_N, -1, 0, 0,
	  "mailto:a@x.example,mailto:b@y.example", "1:d", 0 },
	{ "np defaults to sp", S("v=DMARC1; p=none; sp=quarantine"), 0,
	  P_NONE, P_QUAR, P_QUAR, false, false, false, U, -1, 0, 0, NULL,
	  NULL, 0 },
	{ "psd=y", S("v=DMARC1; p=reject; psd=y"), 0, P_REJ, P_REJ, P_REJ,
	  false, false, false, DMARC_PSD_Y, -1, 0, 0, NULL, NULL, 0 },
	{ "psd=u", S("v=DMARC1; psd=u"), 0, P_NONE, P_NONE, P_NONE,
	  false, false, false, U, -1, 0, 0, NULL, NULL, 0 },
	{ "pct=0 is testing", S("v=DMARC1; p=reject; pct=0"), 0, P_REJ,
	  P_REJ, P_REJ, false, false, true, U, 0, 0, 0, NULL, NULL, 0 },
	{ "pct=100", S("v=DMARC1; p=reject; pct=100"), 0, P_REJ, P_REJ,
	  P_REJ, false, false, false, U, 100, 0, 0, NULL, NULL, 0 },
	{ "pct=101 invalid", S("v=DMARC1; p=reject; pct=101"), 0, P_REJ,
	  P_REJ, P_REJ, false, false, false, U, -1, 0, 1, NULL, NULL, 0 },
	{ "pct=-1 invalid", S("v=DMARC1; pct=-1"), 0, P_NONE, P_NONE,
	  P_NONE, false, false, false, U, -1, 0, 1, NULL, NULL, 0 },
	{ "t=y beats pct=100", S("v=DMARC1; pct=100; t=y"), 0, P_NONE,
	  P_NONE, P_NONE, false, false, true, U, 100, 0, 0, NULL, NULL, 0 },
	{ "missing v", S("p=reject"), -1, P_NONE, P_NONE, P_NONE,
	  false, false, false, U, -1, 0, 0, NULL, NULL, 0 },
	{ "v later", S("p=reject; v=DMARC1"), -1, P_NONE, P_NONE, P_NONE,
	  false, false, false, U, -1, 0, 0, NULL, NULL, 0 },
	{ "v without =", S("v DMARC1; p=reject"), -1, P_NONE, P_NONE,
	  P_NONE, false, false, false, U, -1, 0, 0, NULL, NULL, 0 },
	{ "empty", S(""), -1, P_NONE, P_NONE, P_NONE,
	  false, false, false, U, -1, 0, 0, NULL, NULL, 0 },
	{ "spf record", S("v=spf1 -all"), -1, P_NONE, P_NONE, P_NONE,
	  false, false, false, U, -1, 0, 0, NULL, NULL, 0 },
	{ "DMARC10", S("v=DMARC10; p=reject"), -1, P_NONE, P_NONE, P_NONE,
	  false, false, false, U, -1, 0, 0, NULL, NULL, 0 },
	{ "NUL byte", S("v=DMARC1; p=reject\0; p=none"), -1, P_NONE, P_NONE,
	  P_NONE, false, false, false, U, -1, 0, 0, NULL, NULL, 0 },
	{ "not NUL-terminated", "v=DMARC1; p=rejectXXXX", 18, 0, P_REJ,
	  P_REJ, P_REJ, false, false, false, U, -1, 0, 0, NULL, NULL, 0 },
	{ "bad values default", S("v=DMARC1; p=x; sp=; adkim=q; aspf=rr; "
	  "t=maybe; psd=x; fo=2; np=no"), 0, P_NONE, P_NONE, P_NONE, false,
	  false, false, U, -1, 0, 8, NULL, "0", 0 },
	{ "unknown tags and junk", S("v=DMARC1; ri=3600; rf=afrf; zz=1; "
	  "junk; =x; p=quarantine;;"), 0, P_QUAR, P_QUAR, P_QUAR, false,
	  false, false, U, -1, 3, 2, NULL, NULL, 0 },
	{ "repeated tag: first kept", S("v=DMARC1; p=none; p=reject"), 0,
	  P_NONE, P_NONE, P_NONE, false, false, false, U, -1, 0, 1, NULL,
	  NULL, 0 },
	{ "tab and space around tags", S("v=DMARC1;\tp=reject ;\tsp = none"),
	  0, P_REJ, P_NONE, P_NONE, false, false, false, U, -1, 0, 0, NULL,
	  NULL, 1 },
	{ "CR LF is not WSP", S("v=DMARC1;\r\n\tp=reject"), 0, P_NONE,
	  P_NONE, P_NONE, false, false, false, U, -1, 0, 1, NULL, NULL, 2 },
	{ "upper case", S("V=DMARC1; P=REJECT; ADKIM=S; PSD=Y"), 0, P_REJ,
	  P_REJ, P_REJ, true, false, false, DMARC_PSD_Y, -1, 0, 0, NULL,
	  NULL, 0 },
	{ "fo list with spaces: invalid", S("v=DMARC1; fo=0 : s"), 0,
	  P_NONE, P_NONE, P_NONE, false, false, false, U, -1, 0, 1, NULL,
	  "0", 2 },
	{ "fo 0 and 1: invalid", S("v=DMARC1; p=none; fo=0:1"), 0, P_NONE,
	  P_NONE, P_NONE, false, false, false, U, -1, 0, 1, NULL, "0", 1 },
	{ "fo d twice: invalid", S("v=DMARC1; p=none; fo=d:1:d"), 0, P_NONE,
	  P_NONE, P_NONE, false, false, false, U, -1, 0, 1, NULL, "0", 1 },
	{ "fo d:1:s", S("v=DMARC1; p=none; fo=d:1:s"), 0, P_NONE, P_NONE,
	  P_NONE, false, false, false, U, -1, 0, 0, NULL, "d:1:s", 1 },
	{ "fo S:D:0 (any case, any order)", S("v=DMARC1; p=none; fo=S:D:0"),
	  0, P_NONE, P_NONE, P_NONE, false, false, false, U, -1, 0, 0, NULL,
	  "S:D:0", 1 },
	{ "fo empty element: invalid", S("v=DMARC1; p=none; fo=1::d"), 0,
	  P_NONE, P_NONE, P_NONE, false, false, false, U, -1, 0, 1, NULL, "0",
	  1 },
	{ "v value lower case", S("v=dmarc1; p=reject"), -1, P_NONE, P_NONE,
	  P_NONE, false, false, false, U, -1, 0, 0, NULL, NULL, 0 },
	{ "v after whitespace", S(" v=DMARC1; p=reject"), -1, P_NONE, P_NONE,
	  P_NONE, false, false, false, U, -1, 0, 0, NULL, NULL, 0 },
	{ "v value runs on", S("v=DMARC1 p=reject"), -1, P_NONE, P_NONE,
	  P_NONE, false, false, false, U, -1, 0, 0, NULL, NULL, 0 },
	{ "v with WSP around =", S("v = DMARC1 ; p=reject"), 0, P_REJ, P_REJ,
	  P_REJ, false, false, false, U, -1, 0, 0, NULL, NULL, 1 },
	{ "tag name not ALPHA: ignored", S("v=DMARC1; p=reject; p1=none; "
	  "a_b=c"), 0, P_REJ, P_REJ, P_REJ, false, false, false, U, -1, 0, 2,
	  NULL, NULL, 1 },
	{ "value with a control character", S("v=DMARC1; p=reject; "
	  "adkim=\x01s"), 0, P_REJ, P_REJ, P_REJ, false, false, false, U, -1,
	  0, 1, NULL, NULL, 1 },
	{ "no p, valid rua: p=none", S("v=DMARC1; rua=mailto:a@x.example"),
	  0, P_NONE, P_NONE, P_NONE, false, false, false, U, -1, 0, 0,
	  "mailto:a@x.example", NULL, 1 },
	{ "no p, rua with size suffix", S("v=DMARC1; "
	  "rua=mailto:a@x.example!10m"), 0, P_NONE, P_NONE, P_NONE, false,
	  false, false, U, -1, 0, 0, NULL, NULL, 1 },
	{ "no p, second rua URI valid", S("v=DMARC1; rua=bogus , "
	  "mailto:a@x.example"), 0, P_NONE, P_NONE, P_NONE, false, false,
	  false, U, -1, 0, 0, NULL, NULL, 1 },
	{ "no p, rua not a URI", S("v=DMARC1; rua=a@x.example"), 0, P_NONE,
	  P_NONE, P_NONE, false, false, false, U, -1, 0, 0, NULL, NULL, 2 },
	{ "no p, rua bad escape", S("v=DMARC1; rua=mailto:a%4@x.example"), 0,
	  P_NONE, P_NONE, P_NONE, false, false, false, U, -1, 0, 0, NULL,
	  NULL, 2 },
	{ "bad sp, valid rua: all none", S("v=DMARC1; p=reject; sp=x; "
	  "rua=mailto:a@x.example"), 0, P_NONE, P_NONE, P_NONE, false, false,
	  false, U, -1, 0, 1, NULL, NULL, 1 },
	{ "bad np, no rua: no policy", S("v=DMARC1; p=reject; np=x"), 0,
	  P_NONE, P_NONE, P_NONE, false, false, false, U, -1, 0, 1, NULL,
	  NULL, 2 },
	{ "fo trailing colon", S("v=DMARC1; fo=1:"), 0, P_NONE, P_NONE,
	  P_NONE, false, false, false, U, -1, 0, 1, NULL, "0", 0 },
};

static void
run_parse(void **state)
{
	const struct parse_case	*tc = *state;
	struct dmarc_record	 r;

	assert_int_equal(dmarc_record_parse(tc->txt, tc->len, &r), tc->rc);
	if (tc->rc != 0)
		return;
	assert_int_equal(r.p, tc->p);
	assert_int_equal(r.sp, tc->sp);
	assert_int_equal(r.np, tc->np);
	assert_int_equal(r.adkim_strict, tc->adkim_s);
	assert_int_equal(r.aspf_strict, tc->aspf_s);
	assert_int_equal(r.testing, tc->testing);
	assert_int_equal(r.psd, tc->psd);
	assert_int_equal(r.pct, tc->pct);
	assert_int_equal(r.unknown_tags, tc->unknown);
	assert_int_equal(r.bad_values, tc->bad);
	if (tc->rua != NULL)
		assert_string_equal(r.rua, tc->rua);
	if (tc->fo != NULL)
		assert_string_equal(r.fo, tc->fo);
	if (tc->nopol != 0)
		assert_int_equal(r.no_policy, tc->nopol == 2);
}

/* Oversized records and URI lists. */
static void
test_parse_sizes(void **state)
{
	struct dmarc_record	 r;
	char			*t;
	size_t			 n;

	(void)state;
	t = xmalloc(DMARC_RECORD_MAX + 2);
	memset(t, ' ', DMARC_RECORD_MAX + 1);
	memcpy(t, "v=DMARC1; p=reject", 18);
	assert_int_equal(dmarc_record_parse(t, DMARC_RECORD_MAX, &r), 0);
	assert_int_equal(r.p, DMARC_P_REJECT);
	assert_int_equal(dmarc_record_parse(t, DMARC_RECORD_MAX + 1, &r), -1);
	/* rua of DMARC_URI_MAX + 1 characters: dropped, flagged */
	n = snprintf(t, DMARC_RECORD_MAX, "v=DMARC1; rua=");
	memset(t + n, 'm', DMARC_URI_MAX + 1);
	memcpy(t + n + DMARC_URI_MAX + 1, "; p=reject", 10);
	n += DMARC_URI_MAX + 11;
	assert_int_equal(dmarc_record_parse(t, n, &r), 0);
	assert_true(r.uri_dropped);
	assert_string_equal(r.rua, "");
	assert_int_equal(r.p, DMARC_P_REJECT);
	assert_int_equal(dmarc_record_parse(NULL, 0, &r), -1);
	free(t);
}

int
main(void)
{
	static const struct CMUnitTest extra[] = {
		cmocka_unit_test(test_temperror),
		cmocka_unit_test(test_walk_bound),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_parse_sizes),
	};
	size_t			 ne_ = sizeof(eval_cases) /
				    sizeof(eval_cases[0]);
	size_t			 np_ = sizeof(parse_cases) /
				    sizeof(parse_cases[0]);
	size_t			 nx = sizeof(extra) / sizeof(extra[0]), i;
	struct CMUnitTest	*t;
	int			 rc;

	t = calloc(ne_ + np_ + nx, sizeof(*t));
	if (t == NULL)
		return 1;
	for (i = 0; i < ne_; i++) {
		t[i].name = eval_cases[i].name;
		t[i].test_func = run_eval;
		t[i].initial_state = (void *)(uintptr_t)&eval_cases[i];
	}
	for (i = 0; i < np_; i++) {
		t[ne_ + i].name = parse_cases[i].name;
		t[ne_ + i].test_func = run_parse;
		t[ne_ + i].initial_state = (void *)(uintptr_t)&parse_cases[i];
	}
	for (i = 0; i < nx; i++)
		t[ne_ + np_ + i] = extra[i];
	rc = _cmocka_run_group_tests("dmarc", t, ne_ + np_ + nx, NULL, NULL);
	free(t);
	return rc;
}
