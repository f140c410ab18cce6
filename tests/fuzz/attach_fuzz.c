/*
 * attach_fuzz.c - libFuzzer target for milter/attach.c: the depth
 * pre-scan, GMime's parse with portcullis's options, the part walk, name
 * normalisation, libarchive listing (nested, streaming, seeking in
 * decoded parts) and the strip action.
 * Input: 1 control byte, then a message (RFC 5322, any line ends).  The
 * control byte picks small limits (bit 0: mime_depth 3 / parts 20; bit 1:
 * archive_depth 1 / entries 16; bit 2: archive_bytes 64 KiB instead of
 * 1 MiB) so the limit paths run often.
 * Each input is written to one temporary file (made once, unlinked) and
 * scanned, then stripped; when parts were removed the stripped body is
 * checked to hold no blocked file name of the scan.  The input is also
 * fed to attach_name_normalise() as a name.
 * Owns: per input, the results, freed before returning, so LeakSanitizer
 * sees every leak.
 * Errors: a broken contract of attach.h aborts (a reported crash): -1 on
 * a readable file, a name that is empty, overlong, not valid UTF-8, holds
 * a removed character or ends in a dot or space; blocked names that are
 * not names; limits without limit_what; a strip that fails other than
 * E2BIG after limits, or, within the limits, that removes nothing when
 * the scan blocked a name (or something when it did not).
 *
 * Build:
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -fno-sanitize-recover=undefined -I/tmp/ac -Imilter \
 *       $(pkg-config --cflags gmime-3.0 libarchive) milter/attach.c \
 *       milter/util.c tests/fuzz/attach_fuzz.c \
 *       $(pkg-config --libs gmime-3.0 libarchive) -lpthread -o attach_fuzz
 *   (/tmp/ac holds an empty autoconfig.h outside a configured tree)
 *   ./attach_fuzz -max_len=262144 tests/fuzz/corpus/attach
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "attach.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int fz_fd = -1;

#define FZ_CHECK(c) do { \
	if (!(c)) { \
		fprintf(stderr, "attach_fuzz: broken: %s (line %d)\n", #c, \
		    __LINE__); \
		abort(); \
	} \
} while (0)

/* Blocks by extension, like the default policy does. */
static bool
fz_blocked(void *ctx, const char *name)
{
	static const char *exts[] = { "exe", "scr", "js", "iso", "bat" };
	const char *base = strrchr(name, '/'), *dot;
	size_t i;

	(void)ctx;
	base = base != NULL ? base + 1 : name;
	if ((dot = strrchr(base, '.')) == NULL)
		return false;
	for (i = 0; i < sizeof exts / sizeof exts[0]; i++)
		if (strcasecmp(dot + 1, exts[i]) == 0)
			return true;
	return false;
}

/* Valid UTF-8, nothing attach_name_normalise() removes. */
static void
fz_check_name(const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, len, k;
	uint32_t c;

	FZ_CHECK(n < max);
	while (i < n) {
		if (p[i] < 0x80)
			len = 1, c = p[i];
		else if ((p[i] & 0xe0) == 0xc0)
			len = 2, c = p[i] & 0x1f;
		else if ((p[i] & 0xf0) == 0xe0)
			len = 3, c = p[i] & 0x0f;
		else {
			FZ_CHECK((p[i] & 0xf8) == 0xf0);
			len = 4, c = p[i] & 0x07;
		}
		FZ_CHECK(i + len <= n);
		for (k = 1; k < len; k++) {
			FZ_CHECK((p[i + k] & 0xc0) == 0x80);
			c = c << 6 | (p[i + k] & 0x3f);
		}
		FZ_CHECK(c >= 0x20 && c != 0x7f && !(c >= 0x80 && c <= 0x9f));
		FZ_CHECK(!(c >= 0x202a && c <= 0x202e) &&
		    !(c >= 0x2066 && c <= 0x2069) && c != 0x200e &&
		    c != 0x200f && c != 0x061c && !(c >= 0x200b &&
		    c <= 0x200d) && c != 0x2060 && c != 0xfeff && c != 0xad);
		i += len;
	}
	if (n > 0)
		FZ_CHECK(s[n - 1] != '.' && s[n - 1] != ' ');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct attach_limits lim = { 0 };
	struct attach_result r;
	struct attach_stripped st;
	char name[256], *s;
	uint8_t ctl;
	size_t i, j;
	int rv;

	if (size < 1)
		return 0;
	ctl = data[0];
	data++, size--;

	s = malloc(size + 1);
	FZ_CHECK(s != NULL);
	memcpy(s, data, size);
	s[size] = '\0';
	attach_name_normalise(s, name, sizeof name);
	fz_check_name(name, sizeof name);
	free(s);

	if (fz_fd == -1) {
		char path[] = "/tmp/attach_fuzz.XXXXXX";

		fz_fd = mkstemp(path);
		FZ_CHECK(fz_fd >= 0);
		unlink(path);
	}
	FZ_CHECK(ftruncate(fz_fd, 0) == 0);
	FZ_CHECK(pwrite(fz_fd, data, size, 0) == (ssize_t)size);

	lim.mime_depth = ctl & 1 ? 3 : 0;
	lim.mime_parts = ctl & 1 ? 20 : 0;
	lim.archive_depth = ctl & 2 ? 1 : 0;
	lim.archive_entries = ctl & 2 ? 16 : 0;
	lim.archive_bytes = ctl & 4 ? 64 * 1024 : 1024 * 1024;

	rv = attach_scan(fz_fd, &lim, fz_blocked, NULL, &r);
	FZ_CHECK(rv == 0);
	FZ_CHECK(r.nnames <= ATTACH_NAMES_MAX);
	FZ_CHECK(r.nblocked <= r.nnames || r.nnames == ATTACH_NAMES_MAX);
	for (i = 0; i < r.nnames; i++) {
		FZ_CHECK(r.names[i][0] != '\0');
		/* components are normalised names, joined by '/' */
		fz_check_name(r.names[i], ATTACH_PATH_MAX);
	}
	for (i = 0; i < r.nblocked; i++) {
		FZ_CHECK(fz_blocked(NULL, r.blocked[i]));
		if (r.nnames < ATTACH_NAMES_MAX) {
			for (j = 0; j < r.nnames; j++)
				if (strcmp(r.names[j], r.blocked[i]) == 0)
					break;
			FZ_CHECK(j < r.nnames);
		}
	}
	for (i = 0; i < r.nnames && r.nnames < ATTACH_NAMES_MAX; i++)
		if (fz_blocked(NULL, r.names[i]))
			FZ_CHECK(r.nblocked > 0);
	FZ_CHECK(!r.limits || r.limit_what[0] != '\0');
	FZ_CHECK(memchr(r.limit_what, '\0', sizeof r.limit_what) != NULL);

	errno = 0;
	rv = attach_strip(fz_fd, &lim, fz_blocked, NULL, &st);
	if (rv == -1) {
		/* only past a limit; strip may stay within the limits where
		 * the scan did not, as it skips what it removes whole */
		FZ_CHECK(r.limits && errno == E2BIG);
		FZ_CHECK(st.body == NULL);
	} else if (!r.limits) {
		FZ_CHECK(rv == 0);
		if (r.nblocked > 0)
			FZ_CHECK(st.removed > 0 && st.body != NULL);
		else
			FZ_CHECK(st.removed == 0 && st.body == NULL);
		FZ_CHECK(st.body == NULL || strlen(st.body) <= st.len);
		FZ_CHECK((st.content_type == NULL) == (st.cte == NULL));
	}
	attach_stripped_free(&st);
	attach_result_free(&r);
	return 0;
}
