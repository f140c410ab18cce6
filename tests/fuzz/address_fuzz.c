/*
 * address_fuzz.c - libFuzzer target for milter/addr.c: envelope
 * addresses (RFC 5321 MAIL FROM / RCPT TO arguments, addr_envelope())
 * and header From mailboxes (RFC 5322 through GMime's parser,
 * addr_header_from(), addr_header_domains()).
 * Input: any bytes; the whole input (up to its first NUL, as an MTA
 * passes a C string) is the envelope argument, and the whole input
 * (ptr, len) the From value.
 * Owns: per input, every result, freed before returning.
 * Errors: a broken contract of addr.h aborts (a reported crash): an
 * envelope address over ADDR_MAX or holding a control character, a
 * domain that is not the lower-cased part after the address's last '@';
 * addr_header_from() returning mailboxes without an address or domain,
 * or one with upper case in its domain; addr_header_domains() returning
 * more than max or duplicate domains; results that change from one call
 * to the next.
 *
 * Build: see tests/fuzz/README.md (run.sh links it with libfz.a)
 *   ./address_fuzz -max_len=4096 -dict=tests/fuzz/address.dict \
 *       tests/fuzz/corpus/address
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FZ_CHECK(c) do { \
	if (!(c)) { \
		fprintf(stderr, "address_fuzz: broken: %s (line %d)\n", #c, \
		    __LINE__); \
		abort(); \
	} \
} while (0)

#define FZ_DOMAINS_MAX 8

static bool
fz_lower(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			return false;
	return true;
}

static void
fz_envelope(const char *s)
{
	char *a, *d, *a2, *d2;
	const char *at;

	if (addr_envelope(s, &a, &d) != 0) {
		FZ_CHECK(a == NULL && d == NULL);
		return;
	}
	FZ_CHECK(a != NULL && d != NULL);
	FZ_CHECK(strlen(a) <= ADDR_MAX);
	FZ_CHECK(strpbrk(a, "\r\n\t") == NULL);
	FZ_CHECK(fz_lower(d));
	at = strrchr(a, '@');
	if (at == NULL)
		FZ_CHECK(*d == '\0');
	else
		FZ_CHECK(strcmp(at + 1, d) == 0);
	/* the same again */
	FZ_CHECK(addr_envelope(s, &a2, &d2) == 0);
	FZ_CHECK(strcmp(a, a2) == 0 && strcmp(d, d2) == 0);
	free(a2);
	free(d2);
	free(a);
	free(d);
}

static void
fz_from(const char *s, size_t n)
{
	char *a = (char *)1, *d = (char *)1, **doms = NULL;
	size_t nd = 0, got, i, j;
	int cnt;

	cnt = addr_header_from(s, n, &a, &d);
	FZ_CHECK(cnt >= 0);
	if (cnt == 0)
		FZ_CHECK(a == NULL && d == NULL);
	else {
		FZ_CHECK(a != NULL && d != NULL);
		FZ_CHECK(fz_lower(d));
		FZ_CHECK(strlen(a) <= ADDR_MAX);
	}
	free(a);
	free(d);

	got = addr_header_domains(s, n, &doms, &nd, FZ_DOMAINS_MAX);
	FZ_CHECK(got == nd && nd <= FZ_DOMAINS_MAX);
	/* every mailbox gives a domain, "" when it has none */
	if (cnt > 0)
		FZ_CHECK(nd > 0);
	for (i = 0; i < nd; i++) {
		FZ_CHECK(doms[i] != NULL && fz_lower(doms[i]));
		for (j = 0; j < i; j++)
			FZ_CHECK(strcmp(doms[i], doms[j]) != 0);
	}
	for (i = 0; i < nd; i++)
		free(doms[i]);
	free(doms);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;
	size_t i;

	addr_init();
	s = malloc(size + 1);
	FZ_CHECK(s != NULL);
	memcpy(s, data, size);
	s[size] = '\0';
	fz_envelope(s);
	fz_from(s, size);
	/* normalising twice changes nothing more */
	{
		char *t = strdup(s), *u;

		FZ_CHECK(t != NULL);
		addr_domain_normalise(t);
		u = strdup(t);
		FZ_CHECK(u != NULL);
		addr_domain_normalise(u);
		for (i = 0; u[i] != '\0'; i++)
			FZ_CHECK(!(u[i] >= 'A' && u[i] <= 'Z'));
		free(t);
		free(u);
	}
	free(s);
	return 0;
}
