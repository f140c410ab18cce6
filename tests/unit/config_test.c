/*
 * config_test.c - portcullis.conf parsing: every key, every error with its
 * FILE:LINE:COL, suggestions, limits.  Table-driven.
 */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"

static char *
write_tmp(const char *text)
{
	char tmpl[] = "/tmp/portcullis-config-XXXXXX";
	int fd = mkstemp(tmpl);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return strdup(tmpl);
}

struct bad_case {
	const char *text;
	const char *expect;	/* message after "FILE:" */
};

static const struct bad_case bad_cases[] = {
	{ "sockett = inet:1@127.0.0.1\n",
	  "1:1: unknown key 'sockett' (did you mean 'socket'?)" },
	{ "# comment\n\n  polcy = x\n",
	  "3:3: unknown key 'polcy' (did you mean 'policy'?)" },
	{ "frobnicate = 1\n", "1:1: unknown key 'frobnicate'" },
	{ "socket = tcp:25\n", "1:10: invalid socket 'tcp:25' (expected "
	  "unix:/PATH, inet:PORT@HOST or inet6:PORT@HOST)" },
	{ "socket = inet:70000@127.0.0.1\n", "1:10: invalid socket" },
	{ "dns_timeout = 5x\n", "1:15: invalid dns_timeout '5x'" },
	{ "dns_timeout = 2m\n", "1:15: invalid dns_timeout '2m'" },
	{ "on_error = maybe\n", "1:12: invalid on_error 'maybe' (expected "
	  "tempfail or accept)" },
	{ "resolver = 300.1.1.1:53\n", "1:12: invalid resolver" },
	{ "resolver = 127.0.0.1:0\n", "1:12: invalid resolver" },
	{ "authserv_id = mx;evil\n", "1:15: invalid authserv_id" },
	{ "greylist_store = mysql://x\n", "1:18: invalid greylist_store" },
	{ "socket inet:1@127.0.0.1\n", "1:8: expected '=' after 'socket'" },
	{ "user =\n", "1:7: missing value for 'user'" },
	{ "dnsbl_probe_interval = 500ms\n",
	  "1:24: invalid dnsbl_probe_interval '500ms'" },
	{ "dnsbl_probe_interval = 2d\n",
	  "1:24: invalid dnsbl_probe_interval '2d'" },
	{ "uribl_max_lookups = 1001\n",
	  "1:21: invalid uribl_max_lookups '1001' (a number from 0 to 1000)" },
	{ "uribl_max_lookups = -1\n", "1:21: invalid uribl_max_lookups" },
	{ "dkim_max_signatures = 0\n",
	  "1:23: invalid dkim_max_signatures '0' (a number from 1 to 8)" },
	{ "dkim_max_signatures = 9\n", "1:23: invalid dkim_max_signatures" },
	{ "geoip_asndb = x\n",
	  "1:1: unknown key 'geoip_asndb' (did you mean 'geoip_asn_db'?)" },
	{ "metrics = 127.0.0.1\n", "1:11: invalid metrics address "
	  "'127.0.0.1' (expected IP:PORT or [IPv6]:PORT, e.g. "
	  "127.0.0.1:9790)" },
	{ "metrics = localhost:9790\n", "1:11: invalid metrics address" },
	{ "metrics = 127.0.0.1:0\n", "1:11: invalid metrics address" },
	/* no authentication on the page: off loopback only when asked */
	{ "metrics = 192.0.2.1:9790\n", "1:11: metrics address "
	  "'192.0.2.1:9790' is not a loopback address (the page has no "
	  "authentication; set metrics_allow_remote = yes to serve it "
	  "there)" },
	{ "# x\nmetrics = [::]:9790\nmetrics_allow_remote = no\n",
	  "2:11: metrics address '[::]:9790' is not a loopback address" },
	{ "metrics_allow_remote = maybe\n", "1:24: invalid "
	  "metrics_allow_remote 'maybe' (expected yes or no)" },
	{ "metric = 127.0.0.1:9790\n",
	  "1:1: unknown key 'metric' (did you mean 'metrics'?)" },
	{ "report_store = file:/x\n", "1:16: invalid report_store "
	  "'file:/x' (expected lmdb:DIR or redis://HOST:PORT/DB)" },
	{ "report_store = lmdb:\n", "1:16: invalid report_store" },
	{ "report_stor = lmdb:/x\n",
	  "1:1: unknown key 'report_stor' (did you mean 'report_store'?)" },
	{ "greylist_store = lmdb:/var/x\n\nreport_store = lmdb:/var/x\n",
	  "3:16: report_store is the directory of greylist_store" },
	{ "greylist_store = lmdb:st\nreport_store = lmdb:/tmp/st?mapsize=1G\n",
	  "2:16: report_store is the directory of greylist_store" },
	{ "attachment_mime_depth = 0\n", "1:25: invalid "
	  "attachment_mime_depth '0' (a number from 1 to 100)" },
	{ "attachment_mime_depth = 101\n",
	  "1:25: invalid attachment_mime_depth '101'" },
	{ "attachment_parts = 100001\n", "1:20: invalid attachment_parts "
	  "'100001' (a number from 1 to 100000)" },
	{ "attachment_parts = 5x\n", "1:20: invalid attachment_parts '5x'" },
	{ "attachment_archive_depth = 9\n", "1:28: invalid "
	  "attachment_archive_depth '9' (a number from 1 to 8)" },
	{ "attachment_archive_entries = -1\n",
	  "1:30: invalid attachment_archive_entries '-1'" },
	{ "attachment_archive_entries = 1000001\n",
	  "1:30: invalid attachment_archive_entries '1000001'" },
	{ "attachment_archive_bytes = 0\n", "1:28: invalid "
	  "attachment_archive_bytes '0' (bytes, or with K, M or G, from 1 "
	  "to 1024G)" },
	{ "attachment_archive_bytes = 1025G\n",
	  "1:28: invalid attachment_archive_bytes '1025G'" },
	{ "attachment_archive_bytes = 10MB\n",
	  "1:28: invalid attachment_archive_bytes '10MB'" },
	{ "attachment_archive_bytes = 99999999999999999999999\n",
	  "1:28: invalid attachment_archive_bytes" },
	{ "attachment_archive_byte = 1\n", "1:1: unknown key "
	  "'attachment_archive_byte' (did you mean 'attachment_archive_bytes'?)" },
};

static void
test_bad(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct diag d = { 0 };
		char *path = write_tmp(bad_cases[i].text), want[512];
		struct config *c = config_load(path, &d);

		assert_null(c);
		assert_int_equal(d.nerrors, 1);
		snprintf(want, sizeof(want), "%s:%s", path,
		    bad_cases[i].expect);
		if (strncmp(d.msgs[0], want, strlen(want)) != 0)
			fail_msg("case %zu: got '%s', want prefix '%s'", i,
			    d.msgs[0], want);
		diag_free(&d);
		unlink(path);
		free(path);
	}
}

static void
test_all_errors_reported(void **state)
{
	struct diag d = { 0 };
	char *path = write_tmp("sokcet = x\non_error = no\nuser = a\n"
	    "dns_timeout = 0s\n");

	(void)state;
	assert_null(config_load(path, &d));
	assert_int_equal(d.nerrors, 3);
	diag_free(&d);
	unlink(path);
	free(path);
}

static void
test_good(void **state)
{
	struct diag d = { 0 };
	char *path = write_tmp(
	    "# a full config\n"
	    "socket         = unix:/run/portcullis/portcullis.sock\n"
	    "policy         = rules/p.rules   # trailing comment\n"
	    "authserv_id    = mx.corp.example\n"
	    "resolver       = 127.0.0.1:5353\n"
	    "dns_timeout    = 1500ms\n"
	    "greylist_store = lmdb:grey\n"
	    "user           = portcullis\r\n"
	    "on_error       = accept\n"
	    "dnsbl_probe_interval = 90s\n"
	    "uribl_max_lookups = 0\n"
	    "dkim_max_signatures = 8\n"
	    "geoip_db = geo/country.mmdb\n"
	    "geoip_asn_db = /var/geo/asn.mmdb\n"
	    "metrics = [0::1]:9790\n"
	    "report_store = lmdb:reports\n"
	    "attachment_mime_depth = 12\n"
	    "attachment_parts = 100000\n"
	    "attachment_archive_depth = 1\n"
	    "attachment_archive_entries = 77\n"
	    "attachment_archive_bytes = 3M\n");
	struct config *c = config_load(path, &d);

	(void)state;
	assert_non_null(c);
	assert_int_equal(d.n, 0);
	assert_string_equal(c->socket, "unix:/run/portcullis/portcullis.sock");
	assert_string_equal(c->policy, "/tmp/rules/p.rules");
	assert_string_equal(c->authserv_id, "mx.corp.example");
	assert_string_equal(c->resolver, "127.0.0.1@5353");
	assert_int_equal(c->dns_timeout_ms, 1500);
	assert_string_equal(c->greylist_store, "lmdb:/tmp/grey");
	assert_string_equal(c->user, "portcullis");
	assert_int_equal(c->on_error, ON_ERROR_ACCEPT);
	assert_int_equal(c->dnsbl_probe_ms, 90000);
	assert_int_equal(c->uribl_max_lookups, 0);
	assert_int_equal(c->dkim_max_signatures, 8);
	assert_string_equal(c->geoip_db, "/tmp/geo/country.mmdb");
	assert_int_equal(c->geoip_db_line, 13);
	assert_string_equal(c->geoip_asn_db, "/var/geo/asn.mmdb");
	assert_string_equal(c->metrics, "[::1]:9790");	/* canonical */
	assert_false(c->metrics_allow_remote);
	assert_string_equal(c->report_store, "lmdb:/tmp/reports");
	assert_int_equal(c->attachment_mime_depth, 12);
	assert_int_equal(c->attachment_parts, 100000);
	assert_int_equal(c->attachment_archive_depth, 1);
	assert_int_equal(c->attachment_archive_entries, 77);
	assert_true(c->attachment_archive_bytes == (uint64_t)3 << 20);
	config_free(c);
	unlink(path);
	free(path);
}

static void
test_defaults(void **state)
{
	struct diag d = { 0 };
	char *path = write_tmp("\n");
	struct config *c = config_load(path, &d);

	(void)state;
	assert_non_null(c);
	assert_string_equal(c->socket, "inet:8895@127.0.0.1");
	assert_string_equal(c->policy, "/tmp/policy.rules");
	assert_null(c->resolver);
	assert_int_equal(c->dns_timeout_ms, 5000);
	assert_int_equal(c->on_error, ON_ERROR_TEMPFAIL);
	assert_non_null(c->authserv_id);
	assert_int_equal(c->dnsbl_probe_ms, 300000);
	assert_int_equal(c->uribl_max_lookups, 40);
	assert_int_equal(c->dkim_max_signatures, 5);
	assert_null(c->metrics);	/* no listener unless asked */
	assert_null(c->report_store);	/* nothing recorded unless asked */
	/* attachment limits: the scanner's defaults (attach.h) */
	assert_int_equal(c->attachment_mime_depth, 30);
	assert_int_equal(c->attachment_parts, 1000);
	assert_int_equal(c->attachment_archive_depth, 3);
	assert_int_equal(c->attachment_archive_entries, 10000);
	assert_true(c->attachment_archive_bytes == (uint64_t)100 << 20);
	{
		static const struct {
			const char *text;
			uint64_t bytes;
		} sizes[] = {
			{ "attachment_archive_bytes = 1\n", 1 },
			{ "attachment_archive_bytes = 64k\n", 65536 },
			{ "attachment_archive_bytes = 2G\n",
			    (uint64_t)2 << 30 },
			{ "attachment_archive_bytes = 1024G\n",
			    (uint64_t)1 << 40 },
		};
		size_t k;

		for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
			struct diag d1 = { 0 };
			char *p1 = write_tmp(sizes[k].text);
			struct config *c1 = config_load(p1, &d1);

			assert_non_null(c1);
			assert_true(c1->attachment_archive_bytes ==
			    sizes[k].bytes);
			config_free(c1);
			unlink(p1);
			free(p1);
		}
	}
	{
		struct diag d0 = { 0 };
		char *p0 = write_tmp("dnsbl_probe_interval = 0\n");
		struct config *c0 = config_load(p0, &d0);

		assert_non_null(c0);
		assert_int_equal(c0->dnsbl_probe_ms, 0);
		config_free(c0);
		unlink(p0);
		free(p0);
	}
	config_free(c);
	unlink(path);
	free(path);
}

/* An address off loopback with the explicit permission, in either
 * order of the two keys. */
static void
test_metrics_remote(void **state)
{
	static const char *const texts[] = {
		"metrics = 192.0.2.1:9790\nmetrics_allow_remote = yes\n",
		"metrics_allow_remote = yes\nmetrics = 192.0.2.1:9790\n",
	};
	size_t i;

	(void)state;
	for (i = 0; i < 2; i++) {
		struct diag d = { 0 };
		char *path = write_tmp(texts[i]);
		struct config *c = config_load(path, &d);

		assert_non_null(c);
		assert_int_equal(d.n, 0);
		assert_string_equal(c->metrics, "192.0.2.1:9790");
		assert_true(c->metrics_allow_remote);
		config_free(c);
		unlink(path);
		free(path);
	}
}

static void
test_resolver_forms(void **state)
{
	static const char *const in[] = { "10.1.2.3", "10.1.2.3:53",
	    "[::1]:5353", "::1" };
	static const char *const out[] = { "10.1.2.3", "10.1.2.3@53",
	    "::1@5353", "::1" };
	size_t i;

	(void)state;
	for (i = 0; i < 4; i++) {
		struct diag d = { 0 };
		char text[100], *path;
		struct config *c;

		snprintf(text, sizeof(text), "resolver = %s\n", in[i]);
		path = write_tmp(text);
		c = config_load(path, &d);
		assert_non_null(c);
		assert_string_equal(c->resolver, out[i]);
		config_free(c);
		unlink(path);
		free(path);
	}
}

static void
test_long_line_and_nul(void **state)
{
	struct diag d = { 0 };
	char *big = malloc(CONFIG_LINE_MAX + 100), *path;

	(void)state;
	memset(big, 'a', CONFIG_LINE_MAX + 50);
	strcpy(big + CONFIG_LINE_MAX + 50, " = 1\n");
	path = write_tmp(big);
	assert_null(config_load(path, &d));
	assert_non_null(strstr(d.msgs[0], ":1:1: line too long"));
	diag_free(&d);
	unlink(path);
	free(path);
	free(big);
}

static void
test_missing_file(void **state)
{
	struct diag d = { 0 };

	(void)state;
	assert_null(config_load("/nonexistent/portcullis.conf", &d));
	assert_non_null(strstr(d.msgs[0], "/nonexistent/portcullis.conf: "
	    "cannot open"));
	diag_free(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_all_errors_reported),
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_metrics_remote),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_resolver_forms),
		cmocka_unit_test(test_long_line_and_nul),
		cmocka_unit_test(test_missing_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
