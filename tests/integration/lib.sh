# shellcheck shell=bash
#
# lib.sh - the integration test bench of portcullis: real Postfix, real
# Sendmail, Postfix's smtp-sink, a real unbound and the daemon, all on
# loopback, all children of the test, all state in one temp directory.
# Output is TAP for automake's tap-driver.sh: one "ok"/"not ok" per assertion.
#
# Usage in a test (bash):
#     . "$(dirname "$0")/lib.sh"
#     start_sink; start_postfix "inet:${PORT_MILTER}@127.0.0.1"
#     send "$PORT_POSTFIX" --from a@x.test --to b@corp.test --data @msg.eml
#     is "$SEND_CODE" 250 "accepted"
#     done_testing
#
# Needs (Debian 12 packages; .ci/run installs them, tests never do):
#     bash coreutils util-linux (unshare, setsid, flock, script) iproute2 (ss)
#     procps (pgrep) apt dpkg m4 python3 swaks unbound dnsutils (dig)
# and, fetched at test time by "apt-get download" from Debian's mirror into
# $MTA_CACHE and unpacked with dpkg -x (never installed):
#     postfix sendmail-bin sendmail-base sendmail-cf liblockfile1 libwrap0
# Runs as root (Postfix and Sendmail from an unpacked .deb need it).
#
# Environment:
#     abs_top_srcdir, abs_top_builddir  default: two levels above this file
#     PORTCULLIS      the daemon         default: $abs_top_builddir/portcullis
#     MTA_CACHE       unpacked MTAs      default: $abs_top_builddir/tests/mta-cache
#     PORT_BASE       first of 10 ports  default: from a hash of the test name
#     KEEP_TMP=1      keep $TEST_TMP (printed as a diagnostic) after the test
#     TEST_TIMEOUT    seconds before the whole test is killed (default 600)
#
# Each test runs as PID 1 of its own PID namespace (re-executed through
# "unshare --pid"): orphaned daemon children are reaped by the test shell
# (this machine's init reaps nothing), and whatever survives the cleanup
# dies with the namespace.  No sleep is used to synchronise: waits are
# bounded polls for a condition (port listening, file complete, pid gone).

# ---------------------------------------------------------------- set-up

_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${abs_top_srcdir:=$(cd "$_lib_dir/../.." && pwd)}"
: "${abs_top_builddir:=$abs_top_srcdir}"
if [ -z "${PORTCULLIS:-}" ]; then
	PORTCULLIS=$abs_top_builddir/portcullis
	# An out-of-tree build in build/ when run by hand from the source tree.
	[ ! -x "$PORTCULLIS" ] && [ -x "$abs_top_srcdir/build/portcullis" ] &&
		PORTCULLIS=$abs_top_srcdir/build/portcullis
fi
: "${MTA_CACHE:=$abs_top_builddir/tests/mta-cache}"
: "${TEST_TIMEOUT:=600}"
export abs_top_srcdir abs_top_builddir PORTCULLIS MTA_CACHE
TEST_NAME=$(basename "$0" .sh)
CONTRIB_DIR=$abs_top_srcdir/contrib

# Re-execute the test as PID 1 of a private PID namespace (see above).
if [ -z "${_PORTCULLIS_TEST_NS:-}" ] && [ -z "${PORTCULLIS_TEST_NO_NS:-}" ]; then
	if unshare --pid --fork --mount-proc --kill-child true 2>/dev/null; then
		export _PORTCULLIS_TEST_NS=1
		# The watchdog inside (below) cleans up; this one is the last resort.
		exec timeout -k 10 $((TEST_TIMEOUT + 60)) \
			unshare --pid --fork --mount-proc --kill-child \
			bash "$0" "$@"
	fi
	echo "# no PID namespace (unshare failed): running without one"
fi

_tap_n=0
_tap_failed=0
_tap_planned=
_send_n=0
_bg_names=()		# "name pid kind" of every daemon started, in order
_cleanup_hooks=()

# ---------------------------------------------------------------- TAP

# plan N: announce N assertions up front (or use done_testing at the end).
plan() { _tap_planned=$1; echo "1..$1"; }

# skip_all REASON: nothing to test here; exits.
skip_all() { echo "1..0 # SKIP $*"; _tap_planned=0; exit 0; }

# bail_out REASON: the bench itself broke; the driver reports an error.
bail_out() { echo "Bail out! $*"; exit 99; }

diag() { local l; while IFS= read -r l; do echo "# $l"; done <<<"$*"; }

# diag_file FILE [LINES]: the last LINES (30) of FILE as diagnostics.
diag_file() {
	[ -r "$1" ] || { diag "($1 does not exist)"; return 0; }
	echo "# --- $1 (last ${2:-30} lines)"
	tail -n "${2:-30}" "$1" | sed 's/^/#   /'
}

_tap_result() {	# _tap_result RC DESCRIPTION
	_tap_n=$((_tap_n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $_tap_n - $2"
	else
		_tap_failed=$((_tap_failed + 1))
		echo "not ok $_tap_n - $2"
	fi
	return "$1"
}

# pass DESC / fail DESC [DIAG…]
pass() { _tap_result 0 "$1"; }
fail() { _tap_result 1 "$1"; shift; [ $# -gt 0 ] && diag "$*"; return 1; }

# ok DESC CMD [ARG…]: passes when CMD exits 0.
ok() {
	local desc=$1; shift
	if "$@"; then _tap_result 0 "$desc"
	else local rc=$?; _tap_result 1 "$desc"; diag "command failed (exit $rc): $*"; return 1
	fi
}

# is GOT EXPECTED DESC
is() {
	if [ "$1" == "$2" ]; then _tap_result 0 "$3"
	else _tap_result 1 "$3"; diag "     got: '$1'"; diag "expected: '$2'"; return 1
	fi
}

# isnt GOT UNEXPECTED DESC
isnt() {
	if [ "$1" != "$2" ]; then _tap_result 0 "$3"
	else _tap_result 1 "$3"; diag "     got: '$1'"; diag "expected anything else"; return 1
	fi
}

# like GOT REGEX DESC (bash ERE, unanchored)
like() {
	if [[ $1 =~ $2 ]]; then _tap_result 0 "$3"
	else _tap_result 1 "$3"; diag "     got: '$1'"; diag "expected to match: /$2/"; return 1
	fi
}

# unlike GOT REGEX DESC
unlike() {
	if ! [[ $1 =~ $2 ]]; then _tap_result 0 "$3"
	else _tap_result 1 "$3"; diag "     got: '$1'"; diag "expected not to match: /$2/"; return 1
	fi
}

# done_testing: print the plan (when not given up front) and exit 0: the
# failures are the "not ok" lines, each counted once by the TAP driver (a
# non-zero exit would add an ERROR).  Status 1 only for a plan not kept.
done_testing() {
	_sanitizer_check
	[ -z "$_tap_planned" ] && echo "1..$_tap_n"
	[ "$_tap_failed" -gt 0 ] && diag "$_tap_failed of $_tap_n assertions failed"
	if [ -n "$_tap_planned" ] && [ "$_tap_planned" -ne "$_tap_n" ]; then
		diag "planned $_tap_planned assertions but ran $_tap_n"
		exit 1
	fi
	exit 0
}

# _sanitizer_check: with a daemon built with AddressSanitizer and UBSan
# (configure --enable-sanitizers), one more assertion: the daemon is
# stopped (LeakSanitizer reports at exit) and its log holds no report of
# a memory error, a leak or undefined behaviour, in any run of the test.
_sanitizer_check() {
	[ -n "${PORTCULLIS_LOG:-}" ] && [ -r "$PORTCULLIS_LOG" ] || return 0
	ldd "$PORTCULLIS" 2>/dev/null | grep -q 'libasan' || return 0
	if [ -n "${PORTCULLIS_PID:-}" ] && pid_alive "$PORTCULLIS_PID"; then
		stop_portcullis
	fi
	if grep -qE '==[0-9]+==ERROR: (Address|Leak)Sanitizer|runtime error:' \
	    "$PORTCULLIS_LOG"; then
		fail "no sanitizer report in the daemon's log"
		grep -E -A25 '==[0-9]+==ERROR: |runtime error:' "$PORTCULLIS_LOG" |
			head -n 60 | sed 's/^/#   /'
	else
		pass "no sanitizer report in the daemon's log"
	fi
}

# ---------------------------------------------------------------- polling

# poll TRIES INTERVAL CMD [ARG…]: run CMD until it succeeds, at most TRIES
# times with INTERVAL seconds between tries.  The sleep is only the poll
# interval: the condition is CMD.
poll() {
	local tries=$1 interval=$2 i; shift 2
	for ((i = 0; i < tries; i++)); do
		"$@" && return 0
		sleep "$interval"
	done
	"$@"
}

# pid_alive PID: the process exists and is not a zombie.
pid_alive() {
	local st
	st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
pid_gone() { ! pid_alive "$1"; }

# port_listening PORT [ADDR]: a TCP socket listens on ADDR:PORT (127.0.0.1).
port_listening() {
	[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null | awk -v a="${2:-127.0.0.1}:$1" '$4 == a || $4 == "0.0.0.0:'"$1"'" || $4 == "*:'"$1"'"')" ]
}
port_closed() { ! port_listening "$@"; }

# unix_listening PATH: a unix stream socket listens at PATH.
unix_listening() {
	[ -S "$1" ] && ss -Hlx 2>/dev/null | awk '{print $5}' | grep -qxF "$1"
}

# port_free PORT: no TCP or UDP socket of any state uses PORT.
port_free() {
	[ -z "$(ss -Htuan "( sport = :$1 )" 2>/dev/null)" ]
}

# ---------------------------------------------------------------- temp dir

TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-$TEST_NAME.XXXXXX") ||
	bail_out "mktemp failed"
# Postfix's mail_owner and smtp-sink's user (nobody) must traverse it.
chmod 0755 "$TEST_TMP"
export TEST_TMP

# ---------------------------------------------------------------- ports

# Ten consecutive ports per test, below Linux's ephemeral range (32768+),
# chosen from a hash of the test name so tests run in parallel (make -j).
#   PORT_SINK PORT_POSTFIX PORT_SENDMAIL PORT_DNS PORT_MILTER, +5..+9 spare
alloc_ports() {
	local base tries=0 p ok
	if [ -n "${PORT_BASE:-}" ]; then
		base=$PORT_BASE
	else
		base=$((20000 + ($(printf %s "$TEST_NAME" | cksum | cut -d' ' -f1) % 1200) * 10))
	fi
	while :; do
		ok=1
		for ((p = base; p < base + 10; p++)); do
			port_free "$p" || { ok=; break; }
		done
		[ -n "$ok" ] && break
		tries=$((tries + 1))
		[ "$tries" -ge 50 ] && bail_out "no 10 free ports from $base on"
		[ -n "${PORT_BASE:-}" ] && bail_out "ports $PORT_BASE..+9 are not free"
		base=$((base + 10))
		[ "$base" -ge 32760 ] && base=20000
	done
	PORT_SINK=$base
	PORT_POSTFIX=$((base + 1))
	PORT_SENDMAIL=$((base + 2))
	PORT_DNS=$((base + 3))
	PORT_MILTER=$((base + 4))
	PORT_SPARE=$((base + 5))
}
alloc_ports

# ---------------------------------------------------------------- processes

# _track NAME PID KIND: remember a child for the cleanup; KIND "group" means
# PID leads a process group of its own (kill the whole group).
_track() { _bg_names+=("$1 $2 ${3:-single}"); }

# stop_pid PID [SIGNAL] [TRIES]: signal our child and wait until it is gone
# (bounded: TRIES x 0.1 s, then SIGKILL), then reap it.  Sets STOP_STATUS to
# its exit status (128+N for signal N).
stop_pid() {
	local pid=$1 sig=${2:-TERM} tries=${3:-100}
	STOP_STATUS=
	if pid_alive "$pid"; then
		kill -"$sig" "$pid" 2>/dev/null
		if ! poll "$tries" 0.1 pid_gone "$pid"; then
			diag "pid $pid ignored SIG$sig for $((tries / 10)) s: SIGKILL"
			kill -KILL "$pid" 2>/dev/null
			poll 50 0.1 pid_gone "$pid"
		fi
	fi
	wait "$pid" 2>/dev/null
	STOP_STATUS=$?
	return 0
}

# wait_exit PID [TRIES]: wait (bounded, TRIES x 0.1 s) for our child to
# exit by itself, reap it and set EXIT_STATUS; returns 1 on timeout.
wait_exit() {
	EXIT_STATUS=
	poll "${2:-100}" 0.1 pid_gone "$1" || return 1
	wait "$1" 2>/dev/null
	EXIT_STATUS=$?
	return 0
}

# _stop_group PGID: SIGTERM the rest of a process group, bounded, then KILL.
_stop_group() {
	local pg=$1
	pgrep -g "$pg" >/dev/null 2>&1 || return 0
	kill -TERM -- "-$pg" 2>/dev/null
	poll 50 0.1 eval "! pgrep -g $pg >/dev/null 2>&1" && return 0
	diag "process group $pg survived SIGTERM: SIGKILL"
	kill -KILL -- "-$pg" 2>/dev/null
	poll 50 0.1 eval "! pgrep -g $pg >/dev/null 2>&1"
}

cleanup() {
	local rc=$? i name pid kind hook
	trap - EXIT INT TERM
	for hook in "${_cleanup_hooks[@]}"; do $hook; done
	for ((i = ${#_bg_names[@]} - 1; i >= 0; i--)); do
		read -r name pid kind <<<"${_bg_names[i]}"
		case $name in
		postfix) _postfix_stop ;;
		*) if pid_alive "$pid"; then stop_pid "$pid" TERM 100; else wait "$pid" 2>/dev/null; fi ;;
		esac
		[ "$kind" = group ] && _stop_group "$pid"
	done
	# Any child left (a test's own helper): stop it, then reap everything.
	for pid in $(jobs -p); do stop_pid "$pid" TERM 50; done
	wait 2>/dev/null
	# In our PID namespace every process is ours: name any survivor.
	if [ -n "${_PORTCULLIS_TEST_NS:-}" ] && [ $$ -eq 1 ]; then
		local left
		ps -eo pid=,ppid=,stat=,args= >"$TEST_TMP/.ps" 2>&1
		left=$(awk '$1 != 1 && $4 != "ps"' "$TEST_TMP/.ps")
		[ -n "$left" ] && diag "left over after cleanup (killed with the namespace):" "$left"
	fi
	if [ -n "${KEEP_TMP:-}" ]; then
		echo "# kept $TEST_TMP"
	else
		rm -rf "$TEST_TMP"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "# interrupted"; exit 130' INT TERM

# Watchdog: after TEST_TIMEOUT seconds, bail out and clean up.
(
	trap 'kill "$sp" 2>/dev/null; exit 0' TERM
	sleep "$TEST_TIMEOUT" &
	sp=$!
	wait "$sp" || exit 0
	echo "Bail out! $TEST_NAME timed out after $TEST_TIMEOUT s"
	kill -TERM $$
) &
_WATCHDOG_PID=$!

# at_cleanup FUNCTION: run FUNCTION first thing in the cleanup.
at_cleanup() { _cleanup_hooks+=("$1"); }

# ---------------------------------------------------------------- the MTAs

MTA_PACKAGES="postfix sendmail-bin sendmail-base sendmail-cf liblockfile1 libwrap0"

_mta_unpacked() {
	[ -x "$MTA_CACHE/pf/usr/lib/postfix/sbin/master" ] &&
	[ -x "$MTA_CACHE/pf/usr/sbin/smtp-sink" ] &&
	[ -x "$MTA_CACHE/sm/usr/libexec/sendmail/sendmail" ] &&
	[ -r "$MTA_CACHE/sm/usr/share/sendmail/cf/m4/cf.m4" ] &&
	[ -e "$MTA_CACHE/sm/usr/lib/x86_64-linux-gnu/libwrap.so.0" ] &&
	[ -e "$MTA_CACHE/.unpacked" ]
}

# fetch_mtas: download the MTA packages once into $MTA_CACHE/debs and
# unpack them into $MTA_CACHE/pf and $MTA_CACHE/sm.  Under a lock, so tests
# running in parallel fetch once.  Bails out when it cannot.
fetch_mtas() {
	local fd log
	mkdir -p "$MTA_CACHE" || bail_out "cannot create MTA_CACHE=$MTA_CACHE"
	exec {fd}>"$MTA_CACHE/.lock"
	flock -w 900 "$fd" || bail_out "timed out waiting for the lock on $MTA_CACHE"
	if ! _mta_unpacked; then
		log=$MTA_CACHE/fetch.log
		rm -rf "$MTA_CACHE/debs" "$MTA_CACHE/pf" "$MTA_CACHE/sm" "$MTA_CACHE/.unpacked"
		mkdir -p "$MTA_CACHE/debs"
		# shellcheck disable=SC2086
		if ! (cd "$MTA_CACHE/debs" && apt-get download $MTA_PACKAGES) >"$log" 2>&1; then
			# A fresh machine has no package lists yet: update once.
			# shellcheck disable=SC2086
			{ apt-get update && (cd "$MTA_CACHE/debs" && apt-get download $MTA_PACKAGES); } >>"$log" 2>&1 ||
				{ diag_file "$log"; flock -u "$fd"; bail_out "apt-get download $MTA_PACKAGES failed"; }
		fi
		(
			cd "$MTA_CACHE/debs" &&
			dpkg -x postfix_*.deb ../pf &&
			for f in sendmail-*.deb liblockfile1_*.deb libwrap0_*.deb; do
				dpkg -x "$f" ../sm || exit 1
			done
		) >>"$log" 2>&1 || { diag_file "$log"; flock -u "$fd"; bail_out "dpkg -x failed"; }
		# setgid: ld.so would ignore LD_LIBRARY_PATH (libwrap.so.0).
		chmod g-s "$MTA_CACHE/sm/usr/libexec/sendmail/sendmail"
		touch "$MTA_CACHE/.unpacked"
	fi
	flock -u "$fd"
	exec {fd}>&-
	PF_ROOT=$MTA_CACHE/pf
	SM_ROOT=$MTA_CACHE/sm
	PF_LIBS=$PF_ROOT/usr/lib/postfix
	SM_LIBS=$SM_ROOT/usr/lib/x86_64-linux-gnu
}

# ---------------------------------------------------------------- the sink

# start_sink: Postfix's smtp-sink on 127.0.0.1:$PORT_SINK; each message
# goes to its own file in $SINK_DIR, headed by X-Client-Addr, X-Helo-Args,
# X-Mail-Args and X-Rcpt-Args lines.
start_sink() {
	fetch_mtas
	SINK_DIR=$TEST_TMP/sink
	mkdir -p "$SINK_DIR" && chown nobody "$SINK_DIR"
	LD_LIBRARY_PATH=$PF_LIBS "$PF_ROOT/usr/sbin/smtp-sink" -u nobody \
		-d "$SINK_DIR/%Y%m%d%H%M%S." -h sink.test \
		"127.0.0.1:$PORT_SINK" 64 >"$TEST_TMP/sink.log" 2>&1 &
	SINK_PID=$!
	_track sink "$SINK_PID"
	if ! poll 100 0.05 port_listening "$PORT_SINK"; then
		diag_file "$TEST_TMP/sink.log"
		bail_out "smtp-sink does not listen on $PORT_SINK"
	fi
}

# The sink creates a message's file at MAIL FROM and writes it until the
# final dot: a file is complete once the sink no longer holds it open.
_sink_open_files() {
	local fd
	for fd in /proc/"$SINK_PID"/fd/*; do readlink "$fd"; done 2>/dev/null
}

# sink_complete_files: the complete message files, oldest first.
sink_complete_files() {
	local files f open
	files=$(ls -1tr "$SINK_DIR" 2>/dev/null) || return 0
	open=$(_sink_open_files)
	for f in $files; do
		grep -qxF "$SINK_DIR/$f" <<<"$open" || echo "$SINK_DIR/$f"
	done
}

_sink_count_ge() { [ "$(sink_complete_files | grep -c .)" -ge "$1" ]; }

# wait_for_delivery N [SECONDS]: wait (bounded, default 30 s) until the
# sink holds at least N complete messages.
wait_for_delivery() {
	local end=$((SECONDS + ${2:-30}))
	until _sink_count_ge "$1"; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.1	# poll interval
	done
}

# find_message MARKER: the complete message with the header line
# "X-Test-Id: MARKER" (printed), or status 1.  MARKER: letters, digits,
# '-', '_' and '.'.
find_message() {
	local f cands open
	cands=$(grep -liE "^X-Test-Id:[[:space:]]*${1//./\\.}[[:space:]]*\$" "$SINK_DIR"/* 2>/dev/null) ||
		return 1
	open=$(_sink_open_files)
	for f in $cands; do
		grep -qxF "$f" <<<"$open" && continue
		echo "$f"
		return 0
	done
	return 1
}

# wait_for_message MARKER [SECONDS]: wait (bounded, default 30 s) until the
# message with that X-Test-Id is complete in the sink; prints its path.
wait_for_message() {
	local end=$((SECONDS + ${2:-30}))
	until find_message "$1"; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.1	# poll interval
	done
}

# sent_message MARKER: after send, the delivered message with that marker
# (wait_for_message), or status 1 at once when the MTA did not answer 250.
sent_message() { [ "${SEND_CODE:-}" = 250 ] && wait_for_message "$@"; }

# sink_count: how many messages (complete or not) the sink has received.
sink_count() {
	local f n=0
	for f in "$SINK_DIR"/*; do [ -e "$f" ] && n=$((n + 1)); done
	echo "$n"
}

# ---------------------------------------------------------------- headers

# _headers FILE: the header section of a message, unfolded, one header a
# line, CRs removed.
_headers() {
	awk '
		{ sub(/\r$/, "") }
		/^$/ { exit }
		/^[ \t]/ { if (h != "") { l = $0; sub(/^[ \t]+/, "", l); h = h " " l }; next }
		{ if (h != "") print h; h = $0 }
		END { if (h != "") print h }' "$1"
}

# headers_of FILE NAME: the value of every NAME header (case-insensitive),
# unfolded, leading and trailing blanks removed, one a line, in order.
headers_of() {
	_headers "$1" | awk -v n="$2" '
		{ i = index($0, ":"); if (i == 0) next
		  if (tolower(substr($0, 1, i - 1)) != tolower(n)) next
		  v = substr($0, i + 1); sub(/^[ \t]+/, "", v); sub(/[ \t]+$/, "", v); print v }'
}

# header_of FILE NAME: the value of the first NAME header; status 1 if none.
header_of() {
	local v
	v=$(headers_of "$1" "$2")
	[ -n "$v" ] || [ "$(count_headers "$1" "$2")" -gt 0 ] || return 1
	printf '%s\n' "$v" | head -n 1
}

# count_headers FILE NAME: how many NAME headers the message has.
count_headers() {
	_headers "$1" | awk -v n="$2" '
		{ i = index($0, ":"); if (i && tolower(substr($0, 1, i - 1)) == tolower(n)) c++ }
		END { print c + 0 }'
}

# ---------------------------------------------------------------- Postfix

# _milter_pf SOCKET / _milter_sm SOCKET: a socket in libmilter syntax
# (inet:PORT@HOST or unix:/path, as in portcullis.conf) for each MTA.
_milter_pf() {
	case $1 in
	inet:*@*) local hp=${1#inet:}; echo "inet:${hp#*@}:${hp%@*}" ;;
	local:*) echo "unix:${1#local:}" ;;
	*) echo "$1" ;;
	esac
}
_milter_sm() {
	case $1 in
	inet:*@*|unix:*|local:*) echo "$1" ;;
	inet:*:*) local hp=${1#inet:}; echo "inet:${hp##*:}@${hp%:*}" ;;
	*) echo "$1" ;;
	esac
}

# start_postfix [MILTER_SOCKET]: Postfix smtpd on 127.0.0.1:$PORT_POSTFIX,
# mynetworks 127.0.0.0/8, relaying everything to the sink.  With a milter
# socket, contrib/postfix-main.cf.snippet is appended verbatim to main.cf
# with only its socket replaced; POSTFIX_MAIN_CF_EXTRA (lines) comes last.
# The master runs in the foreground as our child, its own process group.
start_postfix() {
	local milter=${1:-} d
	fetch_mtas
	[ -n "${SINK_PID:-}" ] || bail_out "start_sink before start_postfix"
	PF_DIR=$TEST_TMP/postfix
	d=$PF_DIR
	mkdir -p "$d/conf" "$d/queue" "$d/data"
	chown mail "$d/data"
	cp "$PF_ROOT/usr/share/postfix/dynamicmaps.cf" "$PF_ROOT/etc/postfix/postfix-files" "$d/conf/"
	cat >"$d/conf/main.cf" <<EOF
# generated by tests/integration/lib.sh
compatibility_level = 3.6
queue_directory = $d/queue
data_directory = $d/data
daemon_directory = $PF_ROOT/usr/lib/postfix/sbin
command_directory = $PF_ROOT/usr/sbin
shlib_directory = $PF_LIBS
meta_directory = $d/conf
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C LD_LIBRARY_PATH
mail_owner = mail
setgid_group = news
myhostname = pf.bench.test
mydomain = bench.test
myorigin = \$myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
biff = no
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$PORT_SINK
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
smtputf8_enable = no
maillog_file = $d/data/maillog
maillog_file_prefixes = /var, /dev/stdout, $TEST_TMP
EOF
	if [ -n "$milter" ]; then
		echo "# --- contrib/postfix-main.cf.snippet" >>"$d/conf/main.cf"
		sed "s|inet:127\.0\.0\.1:8895|$(_milter_pf "$milter")|" \
			"$CONTRIB_DIR/postfix-main.cf.snippet" >>"$d/conf/main.cf"
	fi
	if [ -n "${POSTFIX_MAIN_CF_EXTRA:-}" ]; then
		printf '%s\n' "# --- POSTFIX_MAIN_CF_EXTRA" "$POSTFIX_MAIN_CF_EXTRA" >>"$d/conf/main.cf"
	fi
	cat >"$d/conf/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:$PORT_POSTFIX inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
	# Postfix re-reads a config file written less than a second ago every
	# 0.3 s until it "cools down" (2 s at every daemon's start): age them.
	touch -d '-10 seconds' "$d/conf/main.cf" "$d/conf/master.cf"
	# The queue tree, as "postfix check" makes it (which takes 1.5-3.5 s
	# of postconf runs here): the master exits silently without it.
	local q
	for q in active bounce corrupt defer deferred flush hold incoming private saved trace; do
		install -d -o mail -m 0700 "$d/queue/$q"
	done
	install -d -o mail -g news -m 0730 "$d/queue/maildrop"
	install -d -o mail -g news -m 0710 "$d/queue/public"
	install -d -o root -m 0755 "$d/queue/pid"
	LD_LIBRARY_PATH=$PF_LIBS MAIL_CONFIG=$d/conf setsid \
		"$PF_ROOT/usr/lib/postfix/sbin/master" -c "$d/conf" -d \
		</dev/null >"$d/master.log" 2>&1 &
	PF_MASTER_PID=$!
	_track postfix "$PF_MASTER_PID" group
	if ! poll 200 0.05 port_listening "$PORT_POSTFIX"; then
		diag_file "$d/master.log"
		diag_file "$d/data/maillog"
		# "postfix check" prints its errors only to a tty: script(1).
		LD_LIBRARY_PATH=$PF_LIBS script -qec \
			"$PF_ROOT/usr/sbin/postfix -c $d/conf check" "$d/check.log" \
			>/dev/null 2>&1 </dev/null
		diag_file "$d/check.log"
		bail_out "Postfix does not listen on $PORT_POSTFIX"
	fi
}

# postfix_log: Postfix's maillog.
postfix_log() { cat "$PF_DIR/data/maillog" 2>/dev/null; }

_postfix_stop() {
	[ -n "${PF_MASTER_PID:-}" ] || return 0
	if pid_alive "$PF_MASTER_PID"; then
		LD_LIBRARY_PATH=$PF_LIBS "$PF_ROOT/usr/sbin/postfix" -c "$PF_DIR/conf" stop \
			>/dev/null 2>&1 </dev/null
		poll 100 0.1 pid_gone "$PF_MASTER_PID" || kill -KILL "$PF_MASTER_PID" 2>/dev/null
	fi
	wait "$PF_MASTER_PID" 2>/dev/null
	_stop_group "$PF_MASTER_PID"
	PF_MASTER_PID=
}

# ---------------------------------------------------------------- Sendmail

# start_sendmail [MILTER_SOCKET]: Sendmail -bD on 127.0.0.1:$PORT_SENDMAIL,
# relaying everything to the sink, with contrib/sendmail.mc.snippet
# included verbatim (only its socket replaced) when a milter is given;
# SENDMAIL_MC_EXTRA (m4 lines) comes before the MAILER lines.  In a private
# UTS namespace with a dotted host name (an unqualified one costs 60 s).
start_sendmail() {
	local milter=${1:-} d cf
	fetch_mtas
	[ -n "${SINK_PID:-}" ] || bail_out "start_sink before start_sendmail"
	SM_DIR=$TEST_TMP/sendmail
	d=$SM_DIR
	cf=$SM_ROOT/usr/share/sendmail/cf
	mkdir -p "$d/conf" "$d/queue" "$d/run"
	chmod 0700 "$d/queue"
	printf 'hosts files\naliases files\n' >"$d/conf/service.switch"
	: >"$d/conf/statistics"
	if [ -n "$milter" ]; then
		sed "s|inet:8895@127\.0\.0\.1|$(_milter_sm "$milter")|" \
			"$CONTRIB_DIR/sendmail.mc.snippet" >"$d/conf/milter.m4"
	fi
	{
		cat <<EOF
divert(-1)
define(\`_CF_DIR_', \`$cf/')
divert(0)dnl
include(\`$cf/m4/cf.m4')dnl
OSTYPE(\`linux')dnl
define(\`confDOMAIN_NAME', \`sm.bench.test')dnl
define(\`confDONT_PROBE_INTERFACES', \`True')dnl
define(\`confSERVICE_SWITCH_FILE', \`$d/conf/service.switch')dnl
define(\`QUEUE_DIR', \`$d/queue')dnl
define(\`STATUS_FILE', \`$d/conf/statistics')dnl
define(\`confPID_FILE', \`$d/run/sendmail.pid')dnl
define(\`ALIAS_FILE', \`')dnl
define(\`HELP_FILE', \`')dnl
define(\`confCW_FILE', \`')dnl
define(\`confHOST_STATUS_DIRECTORY', \`')dnl
define(\`confDELIVERY_MODE', \`background')dnl
define(\`confTO_IDENT', \`0')dnl
define(\`SMART_HOST', \`relay:[127.0.0.1]')dnl
define(\`RELAY_MAILER_ARGS', \`TCP \$h $PORT_SINK')dnl
define(\`ESMTP_MAILER_ARGS', \`TCP \$h $PORT_SINK')dnl
FEATURE(\`no_default_msa')dnl
FEATURE(\`nocanonify')dnl
FEATURE(\`accept_unresolvable_domains')dnl
FEATURE(\`accept_unqualified_senders')dnl
DAEMON_OPTIONS(\`Port=$PORT_SENDMAIL, Addr=127.0.0.1, Name=MTA-bench')dnl
dnl relay for every client on 127.0.0.0/8 (like Postfix's mynetworks)
RELAY_DOMAIN(\`127')dnl
EOF
		[ -n "$milter" ] && echo "include(\`$d/conf/milter.m4')dnl"
		[ -n "${SENDMAIL_MC_EXTRA:-}" ] && printf '%s\n' "$SENDMAIL_MC_EXTRA"
		echo "MAILER(\`smtp')dnl"
	} >"$d/conf/sendmail.mc"
	if ! m4 "$d/conf/sendmail.mc" >"$d/conf/sendmail.cf" 2>"$d/m4.log" || [ -s "$d/m4.log" ]; then
		diag_file "$d/m4.log"
		bail_out "m4 sendmail.mc failed"
	fi
	# unshare without --fork execs in place: $! is sendmail itself.
	# shellcheck disable=SC2016
	LD_LIBRARY_PATH=$SM_LIBS setsid unshare --uts sh -c \
		'hostname sm.bench.test && exec "$0" "$@"' \
		"$SM_ROOT/usr/libexec/sendmail/sendmail" -C "$d/conf/sendmail.cf" \
		-bD -q1m -L sm-bench -X "$d/transcript" \
		</dev/null >"$d/sendmail.log" 2>&1 &
	SM_PID=$!
	_track sendmail "$SM_PID" group
	if ! poll 200 0.05 port_listening "$PORT_SENDMAIL"; then
		diag_file "$d/sendmail.log"
		bail_out "Sendmail does not listen on $PORT_SENDMAIL"
	fi
}

# ---------------------------------------------------------------- unbound

# start_unbound ZONEFILE…: unbound on 127.0.0.1:$PORT_DNS (UDP and TCP)
# serving each zone file (RFC 1035 master format with an SOA; the zone is
# its $ORIGIN line, else the file name less .zone) authoritatively.  No
# recursion: every other name is REFUSED.  Sets DNS_RESOLVER=127.0.0.1:PORT.
start_unbound() {
	local d=$TEST_TMP/unbound z name
	mkdir -p "$d"
	cat >"$d/unbound.conf" <<EOF
server:
	interface: 127.0.0.1
	port: $PORT_DNS
	do-ip6: no
	do-daemonize: no
	chroot: ""
	username: ""
	directory: "$d"
	pidfile: "$d/unbound.pid"
	use-syslog: no
	logfile: ""
	verbosity: 1
	num-threads: 1
	access-control: 127.0.0.0/8 allow
	# RFC 6761 names (test., invalid., …) are not answered locally here.
	local-zone: "test." nodefault
	local-zone: "invalid." nodefault
	local-zone: "127.in-addr.arpa." nodefault
	# Never query out: whatever is not ours is refused.
	do-not-query-address: 0.0.0.0/0
	do-not-query-address: ::/0
	do-not-query-localhost: yes
	module-config: "iterator"
${UNBOUND_CONF_EXTRA:-}
EOF
	for z in "$@"; do
		name=$(awk 'toupper($1) == "$ORIGIN" { print $2; exit }' "$z")
		[ -n "$name" ] || name=$(basename "$z" .zone)
		name=${name%.}.
		cp "$z" "$d/$(basename "$z")"
		cat >>"$d/unbound.conf" <<EOF
auth-zone:
	name: "$name"
	zonefile: "$d/$(basename "$z")"
	for-downstream: yes
	for-upstream: no
	fallback-enabled: no
EOF
	done
	unbound-checkconf "$d/unbound.conf" >"$d/checkconf.log" 2>&1 ||
		{ diag_file "$d/checkconf.log"; bail_out "unbound-checkconf failed"; }
	UNBOUND_CONF=$d/unbound.conf
	UNBOUND_LOG=$d/unbound.log
	unbound -d -c "$d/unbound.conf" </dev/null >"$d/unbound.log" 2>&1 &
	UNBOUND_PID=$!
	_track unbound "$UNBOUND_PID"
	DNS_RESOLVER=127.0.0.1:$PORT_DNS
	local probe=${1:+$name}
	if ! poll 100 0.05 _dns_answers "${probe:-.}"; then
		diag_file "$d/unbound.log"
		bail_out "unbound does not answer on $PORT_DNS"
	fi
}

_dns_answers() {
	dig +tries=1 +time=1 @127.0.0.1 -p "$PORT_DNS" "$1" SOA 2>/dev/null |
		grep -q 'status: \(NOERROR\|NXDOMAIN\|REFUSED\|SERVFAIL\)'
}

# dns_query NAME TYPE: the answer section, short form.
dns_query() { dig +short +tries=1 +time=2 @127.0.0.1 -p "$PORT_DNS" "$1" "$2"; }

# ---------------------------------------------------------------- portcullis

# have_portcullis: the daemon is built.
have_portcullis() { [ -x "$PORTCULLIS" ]; }

# start_portcullis CONF: "$PORTCULLIS -f -c CONF" in the foreground as our
# child (PORTCULLIS_PID), stderr and stdout in $PORTCULLIS_LOG; waits until
# the socket named in CONF accepts connections.  Bails out if it does not.
# test_conf FILE SOCKET [LINE...]: the portcullis.conf of a test that runs
# the daemon against its own DNS server on $PORT_DNS (policy.rules beside
# FILE, authserv-id mx.corp.test, 2 s DNS timeout), plus each LINE.
test_conf() {
	local file=$1 sock=$2
	shift 2
	{
		echo "# $(basename "$0")"
		echo "socket      = $sock"
		echo "policy      = policy.rules"
		echo "authserv_id = mx.corp.test"
		echo "resolver    = 127.0.0.1:$PORT_DNS"
		echo "dns_timeout = 2s"
		if [ $# -gt 0 ]; then printf '%s\n' "$@"; fi
	} >"$file"
}

# shipped_policy [DNSBL-ZONE [URIBL-ZONE]]: rules/default.policy on stdout,
# its placeholders made the tests' own (internal domain corp.test, trusted
# network 127.0.0.3/32) and its blocklist zones replaced (default bl.test
# and uri.test; the rest of each line is kept).  DNSBL-ZONE may hold "\n"
# and more "dnsbl ZONE" lines.
shipped_policy() {
	sed -e 's/^internal domains[[:space:]].*/internal domains  corp.test/' \
		-e 's/^trusted networks[[:space:]].*/trusted networks  127.0.0.3\/32/' \
		-e "s/^dnsbl zen\.spamhaus\.org/dnsbl ${1:-bl.test}/" \
		-e "s/^uribl dbl\.spamhaus\.org/uribl ${2:-uri.test}/" \
		"$abs_top_srcdir/rules/default.policy"
}

start_portcullis() {
	local conf=$1 sock
	PORTCULLIS_LOG=${PORTCULLIS_LOG:-$TEST_TMP/portcullis.log}
	sock=$(sed -n 's/^[[:space:]]*socket[[:space:]]*=[[:space:]]*\([^#[:space:]]*\).*/\1/p' "$conf" | tail -n 1)
	"$PORTCULLIS" -f -c "$conf" </dev/null >>"$PORTCULLIS_LOG" 2>&1 &
	PORTCULLIS_PID=$!
	_track portcullis "$PORTCULLIS_PID"
	if ! poll 200 0.05 _portcullis_ready "$sock"; then
		diag "portcullis (pid $PORTCULLIS_PID) is not listening on $sock"
		diag_file "$PORTCULLIS_LOG"
		pid_alive "$PORTCULLIS_PID" || { wait "$PORTCULLIS_PID"; diag "it exited with status $?"; }
		bail_out "portcullis did not start"
	fi
}

_portcullis_ready() {
	pid_alive "$PORTCULLIS_PID" || return 2
	case $1 in
	inet:*@*) local hp=${1#inet:}; port_listening "${hp%@*}" "${hp#*@}" ;;
	inet:*) port_listening "${1#inet:}" 0.0.0.0 ;;
	unix:*|local:*) unix_listening "${1#*:}" ;;
	*) unix_listening "$1" ;;
	esac
}

# stop_portcullis [SIGNAL]: signal it, wait (bounded) until it is gone,
# reap it; PORTCULLIS_STATUS is its exit status.
stop_portcullis() {
	stop_pid "$PORTCULLIS_PID" "${1:-TERM}" 300
	PORTCULLIS_STATUS=$STOP_STATUS
}

# ---------------------------------------------------------------- SMTP client

# send PORT [SWAKS ARG…]: one SMTP session with swaks to 127.0.0.1:PORT.
# Sets SEND_LOG (the full transcript), SEND_CODE (the last server reply
# before QUIT, e.g. 250 after the final dot, 550 when a command was
# refused) and SEND_REPLY (that reply line, e.g. "550 5.7.1 …").  Returns 1
# when no reply could be read at all (connection failed).
send() {
	local port=$1; shift
	_send_n=$((_send_n + 1))
	SEND_LOG=$TEST_TMP/send.$_send_n.log
	swaks --server 127.0.0.1 --port "$port" --timeout 60 "$@" \
		</dev/null >"$SEND_LOG" 2>&1
	SEND_REPLY=$(awk '
		/^ *-> QUIT/ { exit }
		/^<(-|\*\*) +[0-9][0-9][0-9]/ { r = $0 }
		END { sub(/^<(-|\*\*) +/, "", r); sub(/\r$/, "", r); print r }' "$SEND_LOG")
	SEND_CODE=${SEND_REPLY:0:3}
	[ -n "$SEND_CODE" ]
}

# diag_send: the last transcript as diagnostics.
diag_send() { diag_file "$SEND_LOG" 60; }
