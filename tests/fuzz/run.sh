#!/usr/bin/env bash
# run.sh - fuzzes portcullis's parsers with libFuzzer under ASan, UBSan and
# LeakSanitizer.  Targets (tests/fuzz/NAME_fuzz.c):
#   policy   the policy language (tests/fuzz/policy.dict)
#   uriscan  MIME walking, transfer decoding, HTML and URL extraction
#   attach   MIME structure, attachment names, archives, limits, strip
#   report   DMARC report rows as stored, rua= lists, XML escaping
#   config         portcullis.conf (milter/config.c)
#   headers        Authentication-Results (ours and forged), From, Subject
#   dmarc_record   the DMARC record parser
#   address        envelope (RFC 5321) and From (RFC 5322) addresses
#   spf_record     the RFC 7208 ABNF validator of SPF records
#   milter_events  any sequence of milter events fed to the core
# The last six link with libfz.a: every object of milter/ (but main.c and
# glue.c) and policy/, built once per run with the sanitizers and
# libFuzzer's coverage (-fsanitize=fuzzer-no-link).
# TAP output, two results per target:
#   - FUZZ_SECONDS (default 60) of fuzzing from a copy of the seed corpus
#     tests/fuzz/corpus/NAME/
#   - every input of tests/fuzz/regressions/NAME/ still passes (run first)
# A crash, leak, timeout or out-of-memory input is printed in "# " lines and
# saved under tests/fuzz/regressions/NAME/ (add it with the fix).  Without
# clang and libFuzzer the whole script is skipped, never passed.
# Environment: abs_top_srcdir (default: two levels up), FUZZ_SECONDS,
# FUZZ_TARGETS (default: all), CLANG, FUZZ_SKIP.
set -u
: "${abs_top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${FUZZ_SECONDS:=60}"
: "${FUZZ_TARGETS:=policy uriscan attach report config headers dmarc_record address spf_record milter_events}"
: "${CLANG:=clang}"
# FUZZ_SKIP=REASON: skipped, visibly (contrib/test.sh fuzzes in its first
# build only: the targets are built by clang whatever the build's flags)
if [ -n "${FUZZ_SKIP:-}" ]; then
	echo "1..0 # SKIP $FUZZ_SKIP"
	exit 0
fi
src=$abs_top_srcdir
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

set -- $FUZZ_TARGETS
echo "1..$(($# * 2))"
n=0

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
		echo "# saved as tests/fuzz/regressions/$target/$base"
	else
		echo "# could not save it under $regdir (read-only source tree?)"
	fi
}

# fuzz_target NAME MAX_LEN CLANG-ARGS...: builds and runs one target
fuzz_target() {
target=$1 max_len=$2
shift 2
seeds=$src/tests/fuzz/corpus/$target
regdir=$src/tests/fuzz/regressions/$target
dict=$src/tests/fuzz/$target.dict
bin=$T/${target}_fuzz
local t1=$((n + 1)) t2=$((n + 2))
n=$((n + 2))
if ! "$CLANG" -std=c11 -D_GNU_SOURCE -g -O1 \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    "$src/tests/fuzz/${target}_fuzz.c" "$@" \
    -o "$bin" >"$T/build.log" 2>&1; then
	sed 's/^/# /' "$T/build.log" | head -40
	echo "not ok $t1 - $target fuzz target builds"
	echo "not ok $t2 - $target fuzz target builds"
	status=1
	return
fi
rm -rf "$T/corpus" "$T/art" "$T/regart"
opts=(-max_len="$max_len" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
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
# CPU seconds of the fuzzing (user + system), for tests/fuzz/README.md
timer=()
[ -x /usr/bin/time ] && timer=(/usr/bin/time -f '%U %S' -o "$T/cpu")
rm -f "$T/cpu"
"${timer[@]}" "$bin" "${opts[@]}" -max_total_time="$FUZZ_SECONDS" \
    -artifact_prefix="$T/art/" "$T/corpus" >"$T/fuzz.log" 2>&1
rc=$?
secs=$(( $(date +%s) - start ))
cpu=$(awk 'NF == 2 && $1 ~ /^[0-9.]+$/ { printf "%.0f", $1 + $2 }' \
    "$T/cpu" 2>/dev/null)
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

if [ $rc -eq 0 ] && [ ${#arts[@]} -eq 0 ]; then
	echo "ok $t1 - $target fuzzed for $secs s (${cpu:-?} s CPU):" \
	    "${runs:-?} runs, no crash"
else
	status=1
	echo "not ok $t1 - $target fuzzed for $secs s (${cpu:-?} s CPU):" \
	    "${runs:-?} runs," \
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
	echo "ok $t2 - ${#regs[@]} $target regression inputs pass"
else
	status=1
	echo "not ok $t2 - ${#regs[@]} $target regression inputs, one fails"
	printf '%s\n' "${reg_out[@]}"
fi
}

# libfz: builds $T/libfz.a once; 0 or 1 (the log printed)
CORE_PKGS="gmime-3.0 libunbound opendkim libmaxminddb libpsl libidn2
    libarchive lmdb hiredis libcrypto libssl libmicrohttpd"
libfz_state=
libfz() {
	local f o
	[ -n "$libfz_state" ] && return "$libfz_state"
	libfz_state=1
	mkdir -p "$T/libfz" || return 1
	# the configure header: of it only the version is used
	echo '#define PACKAGE_VERSION "fuzz"' >"$T/autoconfig.h"
	# shellcheck disable=SC2046,SC2086
	for f in "$src"/milter/*.c "$src"/policy/*.c; do
		case $f in */milter/main.c|*/milter/glue.c) continue ;; esac
		o=$T/libfz/$(basename "$(dirname "$f")")-$(basename "$f" .c).o
		if ! "$CLANG" -std=c11 -D_GNU_SOURCE -g -O1 \
		    -fsanitize=fuzzer-no-link,address,undefined \
		    -fno-sanitize-recover=undefined -I"$T" -I"$src/milter" \
		    -I"$src/policy" -DSYSCONFDIR='"/etc"' \
		    -DLOCALSTATEDIR='"/var"' \
		    $(pkg-config --cflags $CORE_PKGS) -c "$f" -o "$o" \
		    >"$T/libfz.log" 2>&1; then
			echo "# building $f for libfz.a failed:"
			sed 's/^/# /' "$T/libfz.log" | head -40
			return 1
		fi
	done
	ar rcs "$T/libfz.a" "$T"/libfz/*.o || return 1
	libfz_state=0
}

# core_target NAME MAX_LEN: a target linked with libfz.a
core_target() {
	if ! libfz; then
		n=$((n + 2)); status=1
		echo "not ok $((n - 1)) - $1 fuzz target builds (libfz.a)"
		echo "not ok $n - $1 fuzz target builds (libfz.a)"
		return
	fi
	# shellcheck disable=SC2046,SC2086
	fuzz_target "$1" "$2" -I"$T" -I"$src/milter" -I"$src/policy" \
	    $(pkg-config --cflags gmime-3.0) "$T/libfz.a" \
	    $(pkg-config --libs $CORE_PKGS) -lspf2 -lpthread
}

status=0
for t in "$@"; do
	case $t in
	policy)
		fuzz_target policy 4096 -I"$src/policy" "$src"/policy/*.c ;;
	uriscan)
		fuzz_target uriscan 65536 -I"$src/milter" \
		    "$src/milter/uriscan.c" -lpsl -lidn2 -lpthread ;;
	attach)
		# attach.c includes the configure header; nothing in it is
		# needed here, so an empty one stands in outside a build tree
		: >"$T/autoconfig.h"
		# shellcheck disable=SC2046
		fuzz_target attach 262144 -I"$T" -I"$src/milter" \
		    $(pkg-config --cflags gmime-3.0 libarchive) \
		    "$src/milter/attach.c" "$src/milter/util.c" \
		    $(pkg-config --libs gmime-3.0 libarchive) -lpthread ;;
	report)
		: >"$T/autoconfig.h"
		fuzz_target report 20000 -I"$T" -I"$src/milter" \
		    "$src/milter/report_row.c" "$src/milter/util.c" ;;
	config)		core_target config 16384 ;;
	headers)	core_target headers 16384 ;;
	dmarc_record)	core_target dmarc_record 4096 ;;
	address)	core_target address 4096 ;;
	spf_record)	core_target spf_record 4096 ;;
	milter_events)	core_target milter_events 16384 ;;
	*)
		echo "not ok $((n + 1)) - unknown fuzz target $t"
		n=$((n + 1)); status=1 ;;
	esac
done
exit $status
