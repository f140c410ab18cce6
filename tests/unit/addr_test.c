/*
 * addr_test.c - milter/addr.c: the author address and domains of a From
 * field as GMime reads them, including values GMime 3.2 leaked memory on
 * (an addr-spec with a domain literal followed by a comment that never
 * ends: found by tests/fuzz/address_fuzz.c; closed before GMime sees it),
 * which LeakSanitizer checks in the --enable-sanitizers build.
 * Owns: nothing.
 */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "addr.h"

struct from_case {
	const char *value;
	int count;		/* addr_header_from()'s return */
	const char *addr, *domain;
	size_t ndomains;	/* addr_header_domains() */
};

static const struct from_case cases[] = {
	{ "Alice <alice@example.org>", 1, "alice@example.org", "example.org", 1 },
	{ "alice@Example.ORG (Alice)", 1, "alice@example.org", "example.org", 1 },
	{ "a@example.org, b@example.net", 2, "a@example.org", "example.org", 2 },
	{ "Alice <alice@example.org> (never closed", 1, "alice@example.org",
	    "example.org", 1 },
	{ "a@[192.0.2.1](", 1, "a@[192.0.2.1]", "[192.0.2.1]", 1 },
	{ "a@[192.0.2.1](x(y)", 1, "a@[192.0.2.1]", "[192.0.2.1]", 1 },
	{ "a@[192.0.2.1]\t(x\\", 1, "a@[192.0.2.1]", "[192.0.2.1]", 1 },
	{ "g: a@[192.0.2.1](;", 0, NULL, NULL, 0 },	/* a group */
	{ "\"quoted (not a comment\" <q@example.org>", 1, "q@example.org",
	    "example.org", 1 },
	{ "undisclosed-recipients:;", 0, NULL, NULL, 0 },
};

static void
test_from(void **state)
{
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct from_case *c = &cases[i];
		char *addr, *domain, **doms = NULL;
		size_t n = 0;
		int got;

		print_message("# %s\n", c->value);
		got = addr_header_from(c->value, strlen(c->value), &addr,
		    &domain);
		assert_int_equal(got, c->count);
		if (c->addr == NULL) {
			assert_null(addr);
		} else {
			assert_non_null(addr);
			assert_non_null(domain);
			assert_string_equal(addr, c->addr);
			assert_string_equal(domain, c->domain);
		}
		free(addr);
		free(domain);
		addr_header_domains(c->value, strlen(c->value), &doms, &n, 8);
		assert_int_equal(n, c->ndomains);
		for (j = 0; j < n; j++)
			free(doms[j]);
		free(doms);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_from),
	};

	addr_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
