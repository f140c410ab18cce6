/*
 * spf_suite.c - one RFC 7208 suite test through portcullis's SPF path.
 * Owns: one resolver (forwarding to the suite's DNS server on loopback).
 * Usage: spf_suite FORWARDER CLIENT_IP HELO MAILFROM [TIMEOUT_MS]
 * Prints the result on the first line and the explanation (or "") on the
 * second, the problem on the third; exits 1 on an internal failure.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>

#include "dns.h"
#include "spf.h"
#include "util.h"

int
main(int argc, char **argv)
{
	struct dns_options o = { 0 };
	struct spf_outcome out;
	struct dns *dns;
	const char *err;
	uint64_t ms = 1500;
	int rc;

	if (argc < 5) {
		fprintf(stderr, "usage: spf_suite FORWARDER IP HELO MAILFROM "
		    "[TIMEOUT_MS]\n");
		return 2;
	}
	if (argc > 5)
		ms = strtoull(argv[5], NULL, 10);
	o.forwarder = argv[1];
	if ((dns = dns_new(&o, &err)) == NULL) {
		fprintf(stderr, "spf_suite: %s\n", err);
		return 1;
	}
	rc = spf_check(dns, clock_ms() + ms, argv[2], argv[3], argv[4], &out);
	if (rc != 0)
		fprintf(stderr, "spf_suite: spf_check failed: %s\n",
		    out.problem);
	else
		printf("%s\n%s\n%s\n", spf_result_name(out.result),
		    out.explanation, out.problem);
	dns_free(dns);
	return rc == 0 ? 0 : 1;
}
