/*
 * spf_record_fuzz.c - libFuzzer target for spf_record_validate() of
 * milter/spf.c, the strict RFC 7208 section 12 ABNF validator the custom
 * DNS layer runs on every SPF TXT record before evaluating it
 * (mechanisms, qualifiers, modifiers, CIDR lengths, macro strings).
 * Input: the joined TXT record's bytes (may hold NUL).
 * Owns: nothing between inputs.
 * Errors: a broken contract of spf.h aborts (a reported crash): a result
 * other than 0 / -1; -1 without a reason, a reason not terminated within
 * whylen; 0 for a record that does not start with "v=spf1" (then end or
 * space), that holds a byte outside printable ASCII and space, or that
 * is accepted differently with a one-byte reason buffer.
 *
 * Build: see tests/fuzz/README.md (run.sh links it with libfz.a)
 *   ./spf_record_fuzz -max_len=4096 -dict=tests/fuzz/spf_record.dict \
 *       tests/fuzz/corpus/spf_record
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "spf.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FZ_CHECK(c) do { \
	if (!(c)) { \
		fprintf(stderr, "spf_record_fuzz: broken: %s (line %d)\n", \
		    #c, __LINE__); \
		abort(); \
	} \
} while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[256], tiny[1];
	char *rec;
	size_t i;
	int rc, rc2;

	/* exactly size bytes, so ASan sees any read past the record */
	rec = malloc(size > 0 ? size : 1);
	FZ_CHECK(rec != NULL);
	memcpy(rec, data, size);
	memset(why, 'x', sizeof(why));
	rc = spf_record_validate(rec, size, why, sizeof(why));
	FZ_CHECK(rc == 0 || rc == -1);
	if (rc == -1) {
		FZ_CHECK(memchr(why, '\0', sizeof(why)) != NULL);
		FZ_CHECK(why[0] != '\0');
	} else {
		FZ_CHECK(size >= 6 && strncasecmp(rec, "v=spf1", 6) == 0);
		FZ_CHECK(size == 6 || rec[6] == ' ');
		for (i = 0; i < size; i++)
			FZ_CHECK(rec[i] >= 0x20 && rec[i] <= 0x7e);
	}
	tiny[0] = 'x';
	rc2 = spf_record_validate(rec, size, tiny, sizeof(tiny));
	FZ_CHECK(rc2 == rc);
	if (rc2 == -1)
		FZ_CHECK(tiny[0] == '\0');
	free(rec);
	return 0;
}
