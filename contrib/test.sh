#!/usr/bin/env bash
# contrib/test.sh - install what the test suite needs on Debian 12, build
# portcullis twice (warnings as errors; AddressSanitizer + UBSan), run the
# whole suite in both builds and "make distcheck", and end with one line
# "N passed, N failed".  Run as root from the source tree:
#     sudo bash contrib/test.sh
# Exit status: 0 when everything passed.
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
cd "$src" || exit 1
jobs=$(nproc 2>/dev/null || echo 2)

pkgs=$(awk '$1 == "build" || $1 == "test" { print $2 }' contrib/debian-packages)
if [ "$(id -u)" -eq 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || exit 1
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $pkgs >/dev/null || exit 1
else
	echo "contrib/test.sh: not root; assuming the packages are installed" >&2
fi

# One download of the MTAs for every build below.
export MTA_CACHE="${MTA_CACHE:-$src/tests/mta-cache}"

passed=0 failed=0 skipped=0
count_results() {	# $1: build dir; adds the per-assertion TAP results
	local trs p f s
	trs=$(find "$1/tests" -name '*.trs' 2>/dev/null)
	[ -n "$trs" ] || return 0
	# shellcheck disable=SC2086
	p=$(cat $trs | grep -c '^:test-result: PASS') || true
	# shellcheck disable=SC2086
	f=$(cat $trs | grep -cE '^:test-result: (FAIL|ERROR|XPASS)') || true
	# shellcheck disable=SC2086
	s=$(cat $trs | grep -c '^:test-result: SKIP') || true
	passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
}

autoreconf -fi >/dev/null 2>&1 || { echo "autoreconf failed"; echo "0 passed, 1 failed"; exit 1; }

run_build() {		# $1: name, rest: configure flags
	local name=$1; shift
	local dir="$src/_build-$name"
	rm -rf "$dir"; mkdir -p "$dir"
	echo "=== build $name: configure $*"
	if ! (cd "$dir" && "$src/configure" -q "$@" && make -s -j"$jobs"); then
		echo "=== build $name FAILED"
		failed=$((failed + 1))
		return
	fi
	echo "=== build $name: make check"
	(cd "$dir" && make -s -j"$jobs" check) || true
	# show what failed, with the suite's log for errors
	find "$dir/tests" -name '*.trs' | while read -r t; do
		grep -E '^:test-result: (FAIL|ERROR|XPASS)' "$t" >/dev/null || continue
		echo "--- $name: ${t%.trs}.log"
		grep -E '^(not ok|Bail out)' "${t%.trs}.log" | head -n 20
		tail -n 30 "${t%.trs}.log"
	done
	count_results "$dir"
}

run_build werror --enable-werror
# The Debian package is built from the source whatever a build's
# configuration: tests/integration/deb_install.sh runs once, above.
export PORTCULLIS_SKIP_DEB="the package was built and installed by the werror build's run"
# The fuzz targets are built by clang with ASan+UBSan whatever the build's
# flags: the werror build's run fuzzed them already.
export FUZZ_SKIP="fuzzed in the werror build's run (same targets, same sanitizers)"
run_build asan --enable-werror --enable-sanitizers

echo "=== make distcheck"
if (cd "$src/_build-werror" && make -s distcheck >distcheck.out 2>&1); then
	passed=$((passed + 1))
else
	tail -n 60 "$src/_build-werror/distcheck.out"
	failed=$((failed + 1))
fi

if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
