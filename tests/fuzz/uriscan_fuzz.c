/*
 * uriscan_fuzz.c - libFuzzer target for milter/uriscan.c: MIME walk,
 * QP/base64 decoders, HTML tokenizer, URL finder and uri_host_key().
 * Input: 4 control bytes, then a message (header fields up to the first
 * blank line, then the body).  Control bytes: 0-2 pick three chunk
 * boundaries of the body, 3 picks small limits (so truncation paths run).
 * Each input is scanned twice, body whole and body split at the chosen
 * boundaries: both must give the same keys in the same order.
 * Owns: per input, two scanners and the recorded keys, freed before
 * returning, so LeakSanitizer sees every leak of uriscan.c.
 * Errors: a broken contract of uriscan.h aborts (a reported crash): a key
 * emitted twice, an empty or overlong key, an upper-case or non-LDH key,
 * is_ip on a non-dotted-quad, more keys than max_keys, a chunking that
 * changes the keys.
 *
 * Build:
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -fno-sanitize-recover=undefined -Imilter milter/uriscan.c \
 *       tests/fuzz/uriscan_fuzz.c -lpsl -lidn2 -lpthread -o uriscan_fuzz
 *   ./uriscan_fuzz -max_len=65536 tests/fuzz/corpus/uriscan
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "uriscan.h"

#define FZ_KEYS_MAX	URISCAN_KEYS_DEFAULT
#define FZ_NAME_MAX	128

struct fz_keys {
	char	 key[FZ_KEYS_MAX][DNS_NAME_MAX + 1];
	bool	 ip[FZ_KEYS_MAX];
	unsigned n, max;
};

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fz_check_key(const char *key, bool is_ip)
{
	size_t n = strlen(key), i;
	unsigned a, b, c, d;
	char tail;

	if (n == 0 || n > DNS_NAME_MAX || key[0] == '.' || key[n - 1] == '.')
		abort();
	for (i = 0; i < n; i++)
		if (!((key[i] >= 'a' && key[i] <= 'z') ||
		    (key[i] >= '0' && key[i] <= '9') || key[i] == '-' ||
		    key[i] == '.' || key[i] == '_'))
			abort();
	if (is_ip != (sscanf(key, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail)
	    == 4))
		abort();
	if (is_ip && (a > 255 || b > 255 || c > 255 || d > 255))
		abort();
}

static void
fz_record(void *ctx, const char *key, bool is_ip)
{
	struct fz_keys *k = ctx;
	unsigned i;

	fz_check_key(key, is_ip);
	for (i = 0; i < k->n; i++)
		if (strcmp(k->key[i], key) == 0)
			abort();		/* emitted twice */
	if (k->n >= k->max)
		abort();		/* past max_keys */
	memcpy(k->key[k->n], key, strlen(key) + 1);
	k->ip[k->n++] = is_ip;
}

/* Header fields of data[0..hlen) as a milter hands them over. */
static void
fz_headers(struct uriscan *us, const uint8_t *data, size_t hlen)
{
	const uint8_t *p = data, *end = data + hlen, *b, *nl, *colon;
	char name[FZ_NAME_MAX], *value;
	size_t vlen;

	while (p < end) {
		b = p;
		do {
			nl = memchr(p, '\n', (size_t)(end - p));
			p = nl != NULL ? nl + 1 : end;
		} while (p < end && (*p == ' ' || *p == '\t'));
		colon = memchr(b, ':', (size_t)(p - b));
		if (colon == NULL || (size_t)(colon - b) >= sizeof(name) ||
		    memchr(b, '\0', (size_t)(p - b)) != NULL)
			continue;
		memcpy(name, b, (size_t)(colon - b));
		name[colon - b] = '\0';
		vlen = (size_t)(p - colon - 1);
		if ((value = malloc(vlen + 1)) == NULL)
			abort();
		memcpy(value, colon + 1, vlen);
		value[vlen] = '\0';
		uriscan_header(us, name, value);
		free(value);
	}
}

static bool
fz_run(const struct uriscan_limits *lim, const uint8_t *data, size_t hlen,
    const uint8_t *body, size_t blen, const size_t *cut, struct fz_keys *k)
{
	struct uriscan *us;
	size_t i, at = 0;
	bool t;

	k->n = 0;
	if ((us = uriscan_new(lim, fz_record, k)) == NULL)
		abort();
	fz_headers(us, data, hlen);
	for (i = 0; cut != NULL && i < 3; i++) {
		if (cut[i] < at || cut[i] > blen)
			continue;
		uriscan_body(us, body + at, cut[i] - at);
		at = cut[i];
	}
	uriscan_body(us, body + at, blen - at);
	uriscan_end(us);
	t = uriscan_truncated(us);
	uriscan_free(us);
	return t;
}

static int
fz_cmp(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fz_keys k1, k2;	/* 50 KB: not on the stack */
	struct uriscan_limits lim = { 0 };
	const uint8_t *msg, *body, *sep;
	size_t mlen, hlen, blen, cut[3], i;
	char out[DNS_NAME_MAX + 1];
	bool t1, t2, ip;

	if (size < 4)
		return 0;
	msg = data + 4;
	mlen = size - 4;
	/* small limits one time in four: the truncation paths */
	if ((data[3] & 3) == 0) {
		lim.max_keys = 1 + (data[3] >> 2 & 7);
		lim.max_depth = 1 + (data[3] >> 5);
		lim.max_part_scan = 64 + 8 * (size_t)data[3];
	}
	k1.max = k2.max = lim.max_keys ? lim.max_keys : URISCAN_KEYS_DEFAULT;
	sep = memmem(msg, mlen, "\n\n", 2);
	hlen = sep != NULL ? (size_t)(sep - msg) + 1 : 0;
	body = sep != NULL ? sep + 2 : msg;
	blen = mlen - (size_t)(body - msg);
	for (i = 0; i < 3; i++)
		cut[i] = blen > 0 ? (data[i] * blen) / 255 : 0;
	qsort(cut, 3, sizeof(cut[0]), fz_cmp);

	t1 = fz_run(&lim, msg, hlen, body, blen, NULL, &k1);
	t2 = fz_run(&lim, msg, hlen, body, blen, cut, &k2);
	if (t1 != t2 || k1.n != k2.n)
		abort();
	for (i = 0; i < k1.n; i++)
		if (strcmp(k1.key[i], k2.key[i]) != 0 || k1.ip[i] != k2.ip[i])
			abort();

	/* the host normaliser alone, on the start of the message */
	if (uri_host_key((const char *)msg, mlen < 300 ? mlen : 300, out,
	    sizeof(out), &ip) == 0)
		fz_check_key(out, ip);
	return 0;
}
