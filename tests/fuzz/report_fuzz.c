/*
 * report_fuzz.c - libFuzzer target for milter/report_row.c, the parsers
 * of DMARC report data: rrow_decode() (a stored row: the store is ours,
 * but a shared Redis or a damaged file is input like any other),
 * rrow_decode_key(), rrow_rua_parse() (a rua= tag from the DNS) and
 * rrow_xml_escape().
 * Input: any bytes, given whole to each parser.
 * Owns: nothing between inputs.
 * Errors: a broken contract of report_row.h aborts (a reported crash): a
 * decoded row that does not encode and decode to itself; a row, a key
 * or an escape that exceeds its limits; an XML escape holding a control
 * character or '<', '&' unescaped; a rua= entry marked usable whose host
 * is not a domain or whose address has no '@'.
 *
 * Build:
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -fno-sanitize-recover=undefined -I/tmp/ac -Imilter \
 *       milter/report_row.c milter/util.c tests/fuzz/report_fuzz.c \
 *       -o report_fuzz
 *   (/tmp/ac holds an empty autoconfig.h outside a configured tree)
 *   ./report_fuzz -max_len=16384 tests/fuzz/corpus/report
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_row.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FZ_CHECK(c) do { \
	if (!(c)) { \
		fprintf(stderr, "report_fuzz: broken: %s (line %d)\n", #c, \
		    __LINE__); \
		abort(); \
	} \
} while (0)

static struct report_row fz_a, fz_b;
static struct rua_uri fz_u[REPORT_RUA_MAX];

static void
fz_row(const char *s, size_t n)
{
	struct buf enc;

	if (rrow_decode(s, n, &fz_a) != 0)
		return;
	FZ_CHECK(fz_a.ndkim <= REPORT_DKIM_MAX);
	FZ_CHECK(fz_a.nreason <= REPORT_REASON_MAX);
	FZ_CHECK(rrow_domain_ok(fz_a.policy_domain));
	/* what decodes must encode, and decode to the same row */
	buf_init(&enc, REPORT_VALUE_MAX);
	FZ_CHECK(rrow_encode(&fz_a, &enc) == 0);
	FZ_CHECK(rrow_decode(enc.p, enc.len, &fz_b) == 0);
	FZ_CHECK(strcmp(fz_a.ip, fz_b.ip) == 0);
	FZ_CHECK(strcmp(fz_a.header_from, fz_b.header_from) == 0);
	FZ_CHECK(strcmp(fz_a.envelope_from, fz_b.envelope_from) == 0);
	FZ_CHECK(strcmp(fz_a.rua, fz_b.rua) == 0);
	FZ_CHECK(fz_a.ndkim == fz_b.ndkim && fz_a.time == fz_b.time);
	/* the grouping key decodes back to the record fields */
	FZ_CHECK(rrow_group_key(&fz_a, &enc) == 0);
	FZ_CHECK(rrow_decode_key(enc.p, enc.len, &fz_b) == 0);
	FZ_CHECK(strcmp(fz_a.disposition, fz_b.disposition) == 0);
	buf_free(&enc);
}

static void
fz_xml(const char *s, size_t n)
{
	struct buf b;
	size_t i;

	buf_init(&b, 6 * n + 16);
	FZ_CHECK(rrow_xml_escape(&b, s, n) == 0);
	for (i = 0; i < b.len; i++) {
		unsigned char c = (unsigned char)b.p[i];

		FZ_CHECK(c >= 0x20 || c == '\t' || c == '\n' || c == '\r');
		FZ_CHECK(c != '<' && c != '>' && c != '"' && c != 0x7f);
		if (c == '&')
			FZ_CHECK(strncmp(b.p + i, "&amp;", 5) == 0 ||
			    strncmp(b.p + i, "&lt;", 4) == 0 ||
			    strncmp(b.p + i, "&gt;", 4) == 0 ||
			    strncmp(b.p + i, "&quot;", 6) == 0 ||
			    strncmp(b.p + i, "&apos;", 6) == 0);
	}
	buf_free(&b);
}

static void
fz_rua(const char *s, size_t n)
{
	size_t i, k;
	bool more;

	k = rrow_rua_parse(s, n, fz_u, REPORT_RUA_MAX, &more);
	FZ_CHECK(k <= REPORT_RUA_MAX);
	for (i = 0; i < k; i++) {
		FZ_CHECK(strlen(fz_u[i].uri) <= REPORT_RUA_TEXT_MAX);
		if (!fz_u[i].mailto) {
			FZ_CHECK(fz_u[i].why != NULL);
			continue;
		}
		FZ_CHECK(rrow_domain_ok(fz_u[i].host));
		FZ_CHECK(strchr(fz_u[i].addr, '@') != NULL);
		FZ_CHECK(strlen(fz_u[i].addr) <= REPORT_ADDR_MAX);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;

	fz_row(s, size);
	if (rrow_decode_key(s, size, &fz_b) == 0)
		FZ_CHECK(fz_b.ip[0] != '\0');
	fz_xml(s, size);
	fz_rua(s, size);
	return 0;
}
