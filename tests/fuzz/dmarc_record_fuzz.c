/*
 * dmarc_record_fuzz.c - libFuzzer target for dmarc_record_parse() of
 * milter/dmarc.c, the DMARC policy record parser (a TXT record from any
 * domain's DNS).  Only the public parse function is used.
 * Input: the joined TXT record's bytes.
 * Owns: nothing (the parser allocates nothing).
 * Errors: a broken contract of dmarc.h aborts (a reported crash): a
 * record over DMARC_RECORD_MAX or holding a NUL accepted; an accepted
 * record whose strings are not terminated within their arrays, whose
 * enums are out of range, whose defaults (sp from p, np from sp, pct -1
 * or 0..100) do not hold, or that parses differently a second time.
 *
 * Build: see tests/fuzz/README.md (run.sh links it with libfz.a)
 *   ./dmarc_record_fuzz -max_len=4096 -dict=tests/fuzz/dmarc_record.dict \
 *       tests/fuzz/corpus/dmarc_record
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spf.h"
#include "dmarc.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FZ_CHECK(c) do { \
	if (!(c)) { \
		fprintf(stderr, "dmarc_record_fuzz: broken: %s (line %d)\n", \
		    #c, __LINE__); \
		abort(); \
	} \
} while (0)

static bool
fz_policy_ok(enum dmarc_policy p)
{
	return p == DMARC_P_NONE || p == DMARC_P_QUARANTINE ||
	    p == DMARC_P_REJECT;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dmarc_record a, b;
	const char *txt = (const char *)data;
	char *copy;
	int rc;

	/* exactly size bytes, so ASan sees any read past the record */
	copy = malloc(size > 0 ? size : 1);
	FZ_CHECK(copy != NULL);
	memcpy(copy, txt, size);
	memset(&a, 0xa5, sizeof(a));
	rc = dmarc_record_parse(copy, size, &a);
	FZ_CHECK(rc == 0 || rc == -1);
	if (size > DMARC_RECORD_MAX || memchr(copy, '\0', size) != NULL)
		FZ_CHECK(rc == -1);
	if (rc == 0) {
		FZ_CHECK(fz_policy_ok(a.p) && fz_policy_ok(a.sp) &&
		    fz_policy_ok(a.np));
		if (!a.has_p)
			FZ_CHECK(a.p == DMARC_P_NONE);
		if (!a.has_sp)
			FZ_CHECK(a.sp == a.p);
		if (!a.has_np)
			FZ_CHECK(a.np == a.sp);
		FZ_CHECK(a.psd == DMARC_PSD_U || a.psd == DMARC_PSD_Y ||
		    a.psd == DMARC_PSD_N);
		FZ_CHECK(a.pct >= -1 && a.pct <= 100);
		FZ_CHECK(memchr(a.rua, '\0', sizeof(a.rua)) != NULL);
		FZ_CHECK(memchr(a.ruf, '\0', sizeof(a.ruf)) != NULL);
		FZ_CHECK(memchr(a.fo, '\0', sizeof(a.fo)) != NULL);
		FZ_CHECK(a.fo[0] != '\0');
		/* the same bytes parse the same way */
		memset(&b, 0x5a, sizeof(b));
		FZ_CHECK(dmarc_record_parse(copy, size, &b) == 0);
		FZ_CHECK(a.p == b.p && a.sp == b.sp && a.np == b.np);
		FZ_CHECK(a.has_p == b.has_p && a.has_sp == b.has_sp &&
		    a.has_np == b.has_np && a.has_t == b.has_t);
		FZ_CHECK(a.adkim_strict == b.adkim_strict &&
		    a.aspf_strict == b.aspf_strict && a.testing == b.testing);
		FZ_CHECK(a.psd == b.psd && a.pct == b.pct);
		FZ_CHECK(strcmp(a.rua, b.rua) == 0 &&
		    strcmp(a.ruf, b.ruf) == 0 && strcmp(a.fo, b.fo) == 0);
		FZ_CHECK(a.uri_dropped == b.uri_dropped &&
		    a.unknown_tags == b.unknown_tags &&
		    a.bad_values == b.bad_values);
	}
	free(copy);
	return 0;
}
