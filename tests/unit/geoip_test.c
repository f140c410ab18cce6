/*
 * geoip_test.c - unit tests for milter/geoip.c (MaxMind DB lookups).
 * Owns: a temporary directory of databases made at start by
 * tests/data/geoip/make-mmdb.pl (MaxMind::DB::Writer), the handles opened
 * on them, and table rows: address, expected country, ASN and result.
 * Skips (TAP "1..0 # SKIP") when perl or MaxMind::DB::Writer is missing.
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <cmocka.h>

#include "geoip.h"

#define ERR_LEN		512
#define PATH_LEN	512
#define THREADS		4
#define ROUNDS		2000

static char fixdir[] = "/tmp/geoip_test.XXXXXX";
static char country_db[PATH_LEN], asn_db[PATH_LEN], country4_db[PATH_LEN];
static struct geoip *both;	/* country.mmdb + asn.mmdb */

struct geoip_case {
	const char	*name;
	const char	*ip;
	const char	*country;	/* expected, "" for unknown */
	unsigned long	 asn;		/* expected, 0 for unknown */
	int		 ret;
};

/*
 * Text that is not a plain numeric address is "unknown" (0, empty), not an
 * error: -1 is kept for a broken database, which the caller treats as an
 * internal failure, while a strange address must not delay mail.
 */
static const struct geoip_case cases[] = {
	{ "IPv4 country and ASN", "192.0.2.1", "NL", 64500, 0 },
	{ "IPv4 last address of the /24", "192.0.2.255", "NL", 64500, 0 },
	{ "IPv4 country only", "198.51.100.7", "BR", 0, 0 },
	{ "registered_country fallback", "203.0.113.9", "JP", 0, 0 },
	{ "IPv6 country and ASN", "2001:db8:1::1", "DE", 64501, 0 },
	{ "IPv6 end of the /48", "2001:db8:1:ffff:ffff:ffff:ffff:ffff",
	  "DE", 64501, 0 },
	{ "IPv6 upper case", "2001:DB8:1::ABCD", "DE", 64501, 0 },
	{ "IPv4-mapped IPv6", "::ffff:192.0.2.1", "NL", 64500, 0 },
	{ "IPv4-mapped IPv6, hex form", "::ffff:c000:201", "NL", 64500, 0 },
	{ "IPv4-mapped, country only", "::FFFF:198.51.100.7", "BR", 0, 0 },
	{ "IPv4 not in the database", "192.0.3.1", "", 0, 0 },
	{ "IPv4 loopback", "127.0.0.1", "", 0, 0 },
	{ "IPv6 not in the database", "2001:db8:2::1", "", 0, 0 },
	{ "IPv6 loopback", "::1", "", 0, 0 },
	{ "IPv6 unspecified", "::", "", 0, 0 },

	/* hostile or broken database values */
	{ "iso_code with CR, falls back", "2001:db8:bad:1::1", "FR", 0, 0 },
	{ "three letters", "2001:db8:bad:2::1", "", 0, 0 },
	{ "lower case is upper-cased", "2001:db8:bad:3::1", "SE", 0, 0 },
	{ "two bytes, one non-ASCII letter", "2001:db8:bad:4::1", "", 0, 0 },
	{ "NUL inside", "2001:db8:bad:5::1", "", 0, 0 },
	{ "country without iso_code", "2001:db8:bad:6::1", "", 0, 0 },

	/* not a plain numeric address: unknown */
	{ "empty", "", "", 0, 0 },
	{ "word", "unknown", "", 0, 0 },
	{ "short IPv4 (inet_aton form)", "192.0.2", "", 0, 0 },
	{ "hex IPv4", "0xc0.0.2.1", "", 0, 0 },
	{ "octet over 255", "192.0.2.256", "", 0, 0 },
	{ "trailing space", "192.0.2.1 ", "", 0, 0 },
	{ "leading space", " 192.0.2.1", "", 0, 0 },
	{ "bracketed IPv6", "[2001:db8:1::1]", "", 0, 0 },
	{ "Postfix IPv6: prefix", "IPv6:2001:db8:1::1", "", 0, 0 },
	{ "IPv6 zone", "2001:db8:1::1%eth0", "", 0, 0 },
	{ "with prefix length", "192.0.2.0/24", "", 0, 0 },
	{ "host name", "mx.example.com", "", 0, 0 },
};

/* Runs one lookup with poisoned outputs so that untouched ones show. */
static int
lookup(const struct geoip *g, const char *ip, char country[3],
    unsigned long *asn)
{
	memcpy(country, "??", 3);
	*asn = 99;
	return geoip_lookup(g, ip, country, asn);
}

static void
test_cases(void **state)
{
	char country[GEOIP_COUNTRY_LEN];
	unsigned long asn;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct geoip_case *c = &cases[i];

		print_message("# %s: %s\n", c->name, c->ip);
		assert_int_equal(lookup(both, c->ip, country, &asn), c->ret);
		assert_string_equal(country, c->country);
		assert_int_equal(asn, c->asn);
	}
}

static void
test_null_ip_and_handle(void **state)
{
	char country[GEOIP_COUNTRY_LEN];
	unsigned long asn;

	(void)state;
	assert_int_equal(lookup(both, NULL, country, &asn), 0);
	assert_string_equal(country, "");
	assert_int_equal(asn, 0);
	/* no database configured */
	assert_int_equal(lookup(NULL, "192.0.2.1", country, &asn), 0);
	assert_string_equal(country, "");
	assert_int_equal(asn, 0);
	geoip_close(NULL);
}

static void
test_country_only(void **state)
{
	char err[ERR_LEN], country[GEOIP_COUNTRY_LEN];
	struct geoip *g;
	unsigned long asn;

	(void)state;
	g = geoip_open(country_db, NULL, err, sizeof(err));
	assert_non_null(g);
	assert_string_equal(err, "");
	assert_int_equal(lookup(g, "192.0.2.1", country, &asn), 0);
	assert_string_equal(country, "NL");
	assert_int_equal(asn, 0);
	assert_int_equal(lookup(g, "2001:db8:1::1", country, &asn), 0);
	assert_string_equal(country, "DE");
	assert_int_equal(asn, 0);
	geoip_close(g);
}

static void
test_asn_only(void **state)
{
	char err[ERR_LEN], country[GEOIP_COUNTRY_LEN];
	struct geoip *g;
	unsigned long asn;

	(void)state;
	g = geoip_open(NULL, asn_db, err, sizeof(err));
	assert_non_null(g);
	assert_int_equal(lookup(g, "192.0.2.1", country, &asn), 0);
	assert_string_equal(country, "");
	assert_int_equal(asn, 64500);
	assert_int_equal(lookup(g, "::ffff:192.0.2.1", country, &asn), 0);
	assert_int_equal(asn, 64500);
	assert_int_equal(lookup(g, "2001:db8:1::1", country, &asn), 0);
	assert_int_equal(asn, 64501);
	geoip_close(g);
}

/* The databases given the wrong way round: they open, and know nothing. */
static void
test_swapped(void **state)
{
	char err[ERR_LEN], country[GEOIP_COUNTRY_LEN];
	struct geoip *g;
	unsigned long asn;
	size_t i;

	(void)state;
	g = geoip_open(asn_db, country_db, err, sizeof(err));
	assert_non_null(g);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(lookup(g, cases[i].ip, country, &asn), 0);
		assert_string_equal(country, "");
		assert_int_equal(asn, 0);
	}
	geoip_close(g);
}

/* An IPv4-only database (ip_version 4): IPv6 is unknown, not an error. */
static void
test_ipv4_database(void **state)
{
	char err[ERR_LEN], country[GEOIP_COUNTRY_LEN];
	struct geoip *g;
	unsigned long asn;

	(void)state;
	g = geoip_open(country4_db, NULL, err, sizeof(err));
	assert_non_null(g);
	assert_int_equal(lookup(g, "192.0.2.1", country, &asn), 0);
	assert_string_equal(country, "NL");
	assert_int_equal(lookup(g, "::ffff:192.0.2.1", country, &asn), 0);
	assert_string_equal(country, "NL");
	assert_int_equal(lookup(g, "2001:db8:1::1", country, &asn), 0);
	assert_string_equal(country, "");
	assert_int_equal(asn, 0);
	assert_int_equal(lookup(g, "198.51.100.7", country, &asn), 0);
	assert_string_equal(country, "");
	geoip_close(g);
}

/* Writes len bytes of data to dir/name; returns the path in path. */
static void
write_file(char *path, const char *name, const void *data, size_t len)
{
	FILE *f;

	snprintf(path, PATH_LEN, "%s/%s", fixdir, name);
	assert_non_null(f = fopen(path, "wb"));
	if (len > 0)
		assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* geoip_open() must fail with a message that names the file. */
static void
expect_open_fails(const char *cdb, const char *adb, const char *named)
{
	char err[ERR_LEN];
	struct geoip *g;

	g = geoip_open(cdb, adb, err, sizeof(err));
	print_message("# open %s, %s: %s\n", cdb ? cdb : "(null)",
	    adb ? adb : "(null)", err);
	assert_null(g);
	assert_non_null(strstr(err, named));
	assert_true(strlen(err) > strlen(named) + 2);
	geoip_close(g);
}

static void
test_open_errors(void **state)
{
	char err[ERR_LEN], missing[PATH_LEN], text[PATH_LEN], empty[PATH_LEN];
	char tiny[4];
	struct geoip *g;

	(void)state;
	snprintf(missing, sizeof(missing), "%s/missing.mmdb", fixdir);
	write_file(text, "text.mmdb", "not a database\n", 15);
	write_file(empty, "empty.mmdb", "", 0);

	expect_open_fails(missing, NULL, missing);
	expect_open_fails(NULL, missing, missing);
	expect_open_fails(text, NULL, text);
	expect_open_fails(empty, NULL, empty);
	expect_open_fails(fixdir, NULL, fixdir);	/* a directory */
	if (access("/etc/hostname", R_OK) == 0)
		expect_open_fails("/etc/hostname", NULL, "/etc/hostname");
	/* the second file fails after the first opened: named, no leak */
	expect_open_fails(country_db, text, text);
	expect_open_fails(text, asn_db, text);

	/* a missing file says why */
	g = geoip_open(missing, NULL, err, sizeof(err));
	assert_null(g);
	assert_non_null(strstr(err, "No such file"));

	/* nothing configured: NULL and an empty message */
	memcpy(err, "x", 2);
	assert_null(geoip_open(NULL, NULL, err, sizeof(err)));
	assert_string_equal(err, "");

	/* a short buffer gets a truncated, terminated message */
	memset(tiny, 'x', sizeof(tiny));
	assert_null(geoip_open(missing, NULL, tiny, sizeof(tiny)));
	assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
	/* errlen 0: nothing written */
	assert_null(geoip_open(missing, NULL, NULL, 0));
}

/*
 * A search tree whose first node points past the data section: the open
 * succeeds (libmaxminddb does not verify the tree), lookups report -1 with
 * empty results.
 */
static void
test_corrupt_tree(void **state)
{
	char err[ERR_LEN], path[PATH_LEN], country[GEOIP_COUNTRY_LEN];
	unsigned char *data;
	struct geoip *g;
	unsigned long asn;
	FILE *f;
	long len;

	(void)state;
	assert_non_null(f = fopen(country_db, "rb"));
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	assert_true((len = ftell(f)) > 6);
	rewind(f);
	assert_non_null(data = malloc((size_t)len));
	assert_int_equal(fread(data, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	/* node 0, both 24-bit records */
	memset(data, 0xff, 6);
	write_file(path, "corrupt.mmdb", data, (size_t)len);
	free(data);

	g = geoip_open(path, NULL, err, sizeof(err));
	assert_non_null(g);
	assert_int_equal(lookup(g, "192.0.2.1", country, &asn), -1);
	assert_string_equal(country, "");
	assert_int_equal(asn, 0);
	assert_int_equal(lookup(g, "2001:db8:1::1", country, &asn), -1);
	assert_string_equal(country, "");
	geoip_close(g);
}

static void *
lookup_thread(void *arg)
{
	char country[GEOIP_COUNTRY_LEN];
	unsigned long asn;
	size_t i, bad = 0, n = sizeof(cases) / sizeof(cases[0]);

	(void)arg;
	for (i = 0; i < ROUNDS; i++) {
		const struct geoip_case *c = &cases[i % n];

		if (geoip_lookup(both, c->ip, country, &asn) != c->ret ||
		    strcmp(country, c->country) != 0 || asn != c->asn)
			bad++;
	}
	return (void *)bad;
}

/* One handle shared by threads (run under TSan too). */
static void
test_threads(void **state)
{
	pthread_t t[THREADS];
	void *bad;
	size_t i;

	(void)state;
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, lookup_thread,
		    NULL), 0);
	for (i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], &bad), 0);
		assert_null(bad);
	}
}

static int
setup(void **state)
{
	const char *src = getenv("abs_top_srcdir");
	char cmd[1024], err[ERR_LEN];

	(void)state;
	if (mkdtemp(fixdir) == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd), "perl %s/tests/data/geoip/make-mmdb.pl %s",
	    src != NULL ? src : ".", fixdir);
	if (system(cmd) != 0) {
		fprintf(stderr, "fixtures failed: %s\n", cmd);
		return -1;
	}
	snprintf(country_db, sizeof(country_db), "%s/country.mmdb", fixdir);
	snprintf(asn_db, sizeof(asn_db), "%s/asn.mmdb", fixdir);
	snprintf(country4_db, sizeof(country4_db), "%s/country4.mmdb",
	    fixdir);
	if ((both = geoip_open(country_db, asn_db, err, sizeof(err))) ==
	    NULL) {
		fprintf(stderr, "geoip_open: %s\n", err);
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	char cmd[512];

	(void)state;
	geoip_close(both);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fixdir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_null_ip_and_handle),
		cmocka_unit_test(test_country_only),
		cmocka_unit_test(test_asn_only),
		cmocka_unit_test(test_swapped),
		cmocka_unit_test(test_ipv4_database),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_corrupt_tree),
		cmocka_unit_test(test_threads),
	};

	/* the databases are written by MaxMind::DB::Writer (Perl) */
	if (system("perl -MMaxMind::DB::Writer::Tree -e 1 "
	    ">/dev/null 2>&1") != 0) {
		printf("1..0 # SKIP perl or MaxMind::DB::Writer "
		    "(libmaxmind-db-writer-perl) missing\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
