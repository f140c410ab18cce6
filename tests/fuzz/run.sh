#!/usr/bin/env bash
# run.sh - fuzzes the policy language (tests/fuzz/policy_fuzz.c) with
# libFuzzer under ASan, UBSan and LeakSanitizer.  TAP output:
#   1 - FUZZ_SECONDS (default 60) of fuzzing from a copy of the seed corpus
#       tests/fuzz/corpus/policy/, with the dictionary tests/fuzz/policy.dict
#   2 - every input of tests/fuzz/regressions/policy/ still passes (run
#       first, reported second)
# A crash, leak, timeout or out-of-memory input is printed in "# " lines and
# saved under tests/fuzz/regressions/policy/ (add it with the fix).  Without
# clang and libFuzzer the whole script is skipped, never passed.
# Environment: abs_top_srcdir (default: two levels up), FUZZ_SECONDS, CLANG.
set -u
: "${abs_top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${FUZZ_SECONDS:=60}"
: "${CLANG:=clang}"
src=$abs_top_srcdir
seeds=$src/tests/fuzz/corpus/policy
regdir=$src/tests/fuzz/regressions/policy
dict=$src/tests/fuzz/policy.dict
case $FUZZ_SECONDS in
''|*[!0-9]*) echo "1..0 # SKIP FUZZ_SECONDS='$FUZZ_SECONDS' is not a number"; exit 0 ;;
esac

T=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-fuzz.XXXXXX") || exit 99
trap 'rm -rf "$T"' EXIT
# the target makes its empty base dir under TMPDIR: keep it in $T
export TMPDIR=$T
# symbolized stacks; leaks are part of the contract
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# -- can this clang build a libFuzzer target with the sanitizers? --
cat >"$T/probe.c" <<'EOF'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; return (int)(n & 0); }
EOF
if ! command -v "$CLANG" >/dev/null 2>&1 ||
    ! "$CLANG" -fsanitize=fuzzer,address,undefined "$T/probe.c" \
    -o "$T/probe" >"$T/probe.log" 2>&1 ||
    ! "$T/probe" -runs=1 >>"$T/probe.log" 2>&1; then
	echo "1..0 # SKIP clang with libFuzzer not found"
	exit 0
fi

echo "1..2"
bin=$T/policy_fuzz
if ! "$CLANG" -std=c11 -D_GNU_SOURCE -g -O1 \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$src/policy" "$src"/policy/*.c "$src/tests/fuzz/policy_fuzz.c" \
    -o "$bin" >"$T/build.log" 2>&1; then
	sed 's/^/# /' "$T/build.log" | head -40
	echo "not ok 1 - policy fuzz target builds"
	echo "not ok 2 - policy fuzz target builds"
	exit 1
fi

# show_input FILE: the input as printable text, then as bytes
show_input() {
	local size
	size=$(wc -c <"$1")
	echo "# input ($size bytes), as text:"
	LC_ALL=C sed -e 's/[^[:print:]\t]/?/g' -e 's/^/#   | /' "$1" | head -60
	echo "# as bytes:"
	od -An -c -v "$1" | head -260 | sed 's/^/#  /'
}

# show_report LOG: the sanitizer's or libFuzzer's verdict and first stack
show_report() {
	awk '/^==[0-9]+== ?ERROR|runtime error:|^ALARM|^SUMMARY/ { print; next }
	    /^ +#[0-9]+ / && !done { print; seen = 1; if (++n == 25) done = 1; next }
	    seen { done = 1 }' "$1" | head -40 | sed 's/^/# /'
}

# save_artifact FILE: keeps it as a regression input
save_artifact() {
	local base
	base=$(basename "$1")
	if mkdir -p "$regdir" 2>/dev/null && cp "$1" "$regdir/$base" 2>/dev/null
	then
		echo "# saved as tests/fuzz/regressions/policy/$base"
	else
		echo "# could not save it under $regdir (read-only source tree?)"
	fi
}

opts=(-max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
[ -r "$dict" ] && opts+=(-dict="$dict")

# -- 2 (run first): the regression inputs --
regs=()
if [ -d "$regdir" ]; then
	while IFS= read -r -d '' f; do
		regs+=("$f")
	done < <(find "$regdir" -maxdepth 1 -type f ! -name '.*' -print0 | sort -z)
fi
reg_ok=1
reg_out=()
if [ ${#regs[@]} -gt 0 ]; then
	mkdir -p "$T/regart"
	"$bin" "${opts[@]}" -artifact_prefix="$T/regart/" "${regs[@]}" \
	    >"$T/reg.log" 2>&1
	rc=$?
	if [ $rc -ne 0 ]; then
		reg_ok=0
		bad=$(sed -n 's/^Running: //p' "$T/reg.log" | tail -1)
		reg_out+=("# $(basename "$bad") fails (libFuzzer exit $rc):")
		while IFS= read -r l; do reg_out+=("$l"); done \
		    < <(show_report "$T/reg.log"; [ -f "$bad" ] && show_input "$bad")
	fi
fi

# -- 1: fuzzing --
mkdir -p "$T/corpus" "$T/art"
[ -d "$seeds" ] && cp "$seeds"/* "$T/corpus/" 2>/dev/null
start=$(date +%s)
"$bin" "${opts[@]}" -max_total_time="$FUZZ_SECONDS" \
    -artifact_prefix="$T/art/" "$T/corpus" >"$T/fuzz.log" 2>&1
rc=$?
secs=$(( $(date +%s) - start ))
runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$T/fuzz.log" | tail -1)
[ -n "$runs" ] ||
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$T/fuzz.log")
[ -n "$runs" ] ||
    runs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$T/fuzz.log" | tail -1)
arts=()
for f in "$T"/art/crash-* "$T"/art/leak-* "$T"/art/timeout-* \
    "$T"/art/oom-*; do
	[ -f "$f" ] && arts+=("$f")
done

status=0
if [ $rc -eq 0 ] && [ ${#arts[@]} -eq 0 ]; then
	echo "ok 1 - policy parser fuzzed for $secs s: ${runs:-?} runs, no crash"
else
	status=1
	echo "not ok 1 - policy parser fuzzed for $secs s: ${runs:-?} runs," \
	    "libFuzzer exit $rc"
	show_report "$T/fuzz.log"
	[ ${#arts[@]} -gt 0 ] || tail -20 "$T/fuzz.log" | sed 's/^/# /'
fi
for f in "${arts[@]}"; do
	echo "# $(basename "$f"):"
	show_input "$f"
	save_artifact "$f"
done
if [ $reg_ok -eq 1 ]; then
	echo "ok 2 - ${#regs[@]} policy regression inputs pass"
else
	status=1
	echo "not ok 2 - ${#regs[@]} policy regression inputs, one fails"
	printf '%s\n' "${reg_out[@]}"
fi
exit $status
