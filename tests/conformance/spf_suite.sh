#!/bin/sh
# spf_suite.sh - "make check" entry for the RFC 7208 SPF test suite (TAP).
# Runs tests/conformance/spf_suite.py, which serves each scenario's zone
# data from a DNS server on loopback and checks every test through
# portcullis's own path (spf.c -> dns.c -> libunbound -> that server) with
# the spf_suite driver.  The suite lives outside the tree
# ($abs_top_srcdir/../shared/conformance/rfc7208-tests.yml, or $SPF_SUITE);
# without it the test is skipped, never passed.
srcdir=${srcdir:-.}
abs_top_srcdir=${abs_top_srcdir:-$(cd "$srcdir" && pwd)}
abs_top_builddir=${abs_top_builddir:-$(pwd)}
suite=${SPF_SUITE:-$abs_top_srcdir/../shared/conformance/rfc7208-tests.yml}
driver=${SPF_SUITE_DRIVER:-$abs_top_builddir/tests/conformance/spf_suite}

if [ ! -f "$suite" ]; then
	echo "1..0 # SKIP RFC 7208 suite not found (../shared absent)"
	exit 0
fi
if ! command -v python3 >/dev/null 2>&1; then
	echo "1..0 # SKIP python3 not installed"
	exit 0
fi
if [ ! -x "$driver" ]; then
	echo "Bail out! driver $driver not built"
	exit 1
fi
exec python3 "$abs_top_srcdir/tests/conformance/spf_suite.py" \
    "$driver" "$suite"
