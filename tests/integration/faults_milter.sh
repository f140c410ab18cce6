#!/bin/bash
# faults_milter.sh - faults on the milter side, driven by milter_client.py
# (the MTA side of the protocol, doing what a real MTA will not do on
# demand).  For each fault: the answer the MTA gets, the daemon still
# running and answering the next session normally (accepted, with its
# Authentication-Results), and - with an ASan build - no sanitizer report
# in its log (done_testing).
#  a. the MTA disconnects in the middle of the headers, of the body;
#  b. a 50 MB body: accepted with A-R, peak resident memory under 100 MB;
#  c. 10,010 recipients: the first 10,000 (the documented limit, see
#     portcullis(8) LIMITS) go on, each one over it gets
#     "452 4.5.3 too many recipients", the message is accepted with A-R;
#  d. 100,000 header fields: accepted with A-R (this policy accepts
#     what could not be inspected), the attachment check stopped at its
#     limit of 10,000 fields (attachment.limits, logged), peak resident
#     memory under 100 MB;
#  e. 1,000 sessions open at once: every one answered, accepted;
#  f. SIGHUP every 100 ms during a load of 1,000 messages: every message
#     answered, accepted with A-R;
#  h. the spool directory ($TMPDIR, where the body is kept for the
#     attachment checks) on a full 1 MB tmpfs: 451 4.3.0 (on_error), the
#     next small message accepted;
#  g. SIGTERM under load: every message the daemon answered was accepted
#     with A-R or refused for later, none accepted without, none broken
#     off after MAIL (the rest: connection refused); exit status 0.
. "$(dirname "$0")/lib.sh"

have_portcullis || skip_all "portcullis is not built ($PORTCULLIS)"
PY=/usr/bin/python3
[ -x "$PY" ] || skip_all "no $PY"
CLIENT=$abs_top_srcdir/tests/integration/milter_client.py
ASAN=
ldd "$PORTCULLIS" 2>/dev/null | grep -q libasan && ASAN=1

ETC=$TEST_TMP/etc
SPOOL=$TEST_TMP/spool
mkdir -p "$ETC" "$SPOOL" "$TEST_TMP/out"

# the sender domain's SPF record: every message gets spf=pass in its A-R
cat >"$ETC/ext.test.zone" <<'EOF'
$ORIGIN ext.test.
@	3600 IN SOA ns.ext.test. hostmaster.ext.test. 1 3600 600 86400 60
@	3600 IN NS ns.ext.test.
ns	3600 IN A 127.0.0.1
@	3600 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
EOF
start_unbound "$ETC/ext.test.zone"

# a policy that reads the attachments: the body is spooled to $TMPDIR
cat >"$ETC/policy.rules" <<'EOF'
internal domains  corp.test
attachments block exe
rule attach: when attachment.blocked then reject "5.7.1 attachment %{attachment.name} is not allowed"
default accept
EOF
test_conf "$ETC/portcullis.conf" "unix:$TEST_TMP/milter.sock"
ok "the configuration loads" "$PORTCULLIS" -n -c "$ETC/portcullis.conf"
export TMPDIR=$SPOOL
start_portcullis "$ETC/portcullis.conf"
unset TMPDIR
# a unix socket: thousands of sessions leave no TCP TIME-WAIT behind
SOCK=unix:$TEST_TMP/milter.sock

_out_n=0
# mc SCENARIO [OPTION…]: milter_client.py; OUT is the file of its JSON
# line, MC_STATUS its exit status
mc() {
	_out_n=$((_out_n + 1))
	OUT=$TEST_TMP/out/$_out_n.json
	"$PY" "$CLIENT" "$SOCK" "$@" >"$OUT" 2>"$OUT.err"
	MC_STATUS=$?
}
# j EXPR: EXPR (Python, the JSON object is "r") evaluated on $OUT
j() {
	"$PY" -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))' "$OUT" "$1" 2>/dev/null
}
diag_out() { diag "$(head -c 2000 "$OUT")"; diag_file "$OUT.err" 10; }

# next_ok WHAT: the daemon is alive and the next message is accepted with
# its Authentication-Results
next_ok() {
	ok "$1: the daemon is still running" pid_alive "$PORTCULLIS_PID"
	mc message --subject "after $1"
	is "$(j 'r["action"], r["authres"]')" "('accept', True)" \
		"$1: the next message is accepted with Authentication-Results" || diag_out
}
# vm FIELD: the daemon's /proc status field in kB
vm() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$PORTCULLIS_PID/status"; }
nfds() { find "/proc/$PORTCULLIS_PID/fd" -mindepth 1 | wc -l; }
_fds_back() { [ "$(nfds)" -le "$1" ]; }

# ------------------------------------------------------------ control
mc message
is "$(j 'r["action"], r["authres"]')" "('accept', True)" \
	"control: a message is accepted with Authentication-Results" || diag_out
FDS0=$(nfds)

# ------------------------------------------------------------ a. disconnects
mc drop --at header --headers 20
is "$(j 'r["dropped"]')" header "a. the client dropped the connection in the middle of the headers" || diag_out
next_ok "a. drop mid-header"
mc drop --at body --body-bytes 300000
is "$(j 'r["dropped"]')" body "a. the client dropped the connection in the middle of the body" || diag_out
next_ok "a. drop mid-body"
ok "a. the dropped sessions' descriptors are closed (back to $FDS0)" \
	poll 100 0.1 _fds_back "$FDS0" || diag "now $(nfds) descriptors"

# peak_under_100mb PHASE WHAT: the daemon's peak resident memory (VmHWM)
# after WHAT is under 100 MB (skipped in the ASan build: its quarantine
# keeps up to 256 MB of freed memory by design)
peak_under_100mb() {
	local hwm
	hwm=$(vm VmHWM)
	diag "$1. peak resident memory after $2: $hwm kB"
	if [ -n "$ASAN" ]; then
		_tap_result 0 "$1. peak resident memory under 100 MB # SKIP ASan build"
	elif [ "$hwm" -lt $((100 * 1024)) ]; then
		pass "$1. peak resident memory under 100 MB ($hwm kB)"
	else
		fail "$1. peak resident memory under 100 MB" "VmHWM $hwm kB"
	fi
}

# ------------------------------------------------------------ b. 50 MB
mc message --body-bytes $((50 * 1024 * 1024))
is "$(j 'r["action"], r["authres"]')" "('accept', True)" \
	"b. a 50 MB message is accepted with Authentication-Results" || diag_out
peak_under_100mb b "the 50 MB message"
next_ok "b. 50 MB"

# ------------------------------------------------------------ c. recipients
mc message --rcpts 10010
is "$(j 'r["stages"]["rcpt"]')" "{'continue': 10000, 'reply': 10}" \
	"c. 10,010 recipients: 10,000 go on, 10 get a reply" || diag_out
is "$(j '{t: r["rcpt_replies"].count(t) for t in r["rcpt_replies"]}')" "{'452 4.5.3 too many recipients': 10}" \
	"c. each recipient over the limit gets 452 4.5.3 too many recipients" || diag_out
is "$(j 'r["action"], r["authres"]')" "('accept', True)" \
	"c. the message (to the first 10,000) is accepted with Authentication-Results" || diag_out
next_ok "c. 10,010 recipients"

# ------------------------------------------------------------ d. header fields
mc message --headers 100000
is "$(j 'r["action"], r["authres"]')" "('accept', True)" \
	"d. 100,000 header fields: accepted with Authentication-Results" || diag_out
ok "d. the attachment check stopped at its documented limit (attachment.limits)" \
	grep -q 'attachment limit: header_fields 10000' "$PORTCULLIS_LOG"
peak_under_100mb d "100,000 header fields"
next_ok "d. 100,000 header fields"

# ------------------------------------------------------------ e. concurrency
mc concurrent --sessions 1000
is "$MC_STATUS" 0 "e. 1,000 concurrent sessions: every one got a valid answer" || diag_out
is "$(j 'r["sessions"], r["nerrors"], r["actions"], r["authres"]')" \
	"(1000, 0, {'accept': 1000}, 1000)" \
	"e. 1,000 concurrent sessions: all accepted with Authentication-Results" || diag_out
next_ok "e. 1,000 concurrent sessions"

# ------------------------------------------------------------ f. SIGHUP
RELOADS0=$(grep -c 'reloaded' "$PORTCULLIS_LOG")
(
	# the signal rate of the fault, not a synchronisation
	while kill -HUP "$PORTCULLIS_PID" 2>/dev/null; do sleep 0.1; done
) &
HUP_PID=$!
mc load --messages 1000 --concurrency 8
kill "$HUP_PID" 2>/dev/null
wait "$HUP_PID" 2>/dev/null
RELOADS=$(( $(grep -c 'reloaded' "$PORTCULLIS_LOG") - RELOADS0 ))
diag "f. $RELOADS reloads during the load"
ok "f. the daemon reloaded during the load (SIGHUP was delivered)" test "$RELOADS" -gt 1
is "$(j 'r["sessions"], r["nerrors"], r["actions"], r["authres"]')" \
	"(1000, 0, {'accept': 1000}, 1000)" \
	"f. SIGHUP every 100 ms: 1,000 messages answered, all accepted with Authentication-Results" || diag_out
next_ok "f. SIGHUP under load"

# ------------------------------------------------------------ h. disk full
# our own mount namespace (lib.sh runs the test under unshare --mount-proc):
# the tmpfs is seen by this test and its daemon only
if [ -z "${_PORTCULLIS_TEST_NS:-}" ]; then
	# never mount in the machine's own namespace
	_tap_result 0 "h. disk full # SKIP no private mount namespace (unshare failed)"
elif mount -t tmpfs -o size=1m,mode=0700 portcullis-spool "$SPOOL" 2>"$TEST_TMP/mount.err"; then
	_umount_spool() { umount "$SPOOL" 2>/dev/null; }
	at_cleanup _umount_spool
	mc message --body-bytes $((4 * 1024 * 1024)) --subject "disk full"
	is "$(j 'r["action"], r["reply"]')" \
		"('reply', '451 4.3.0 temporary failure in the mail filter, please try again later')" \
		"h. spool on a full 1 MB tmpfs, 4 MB message: 451 4.3.0 (on_error)" || diag_out
	is "$(j 'r["authres"]')" False "h. ... and no header was added" || diag_out
	ok "h. the daemon logs the failure to keep the message" \
		grep -q 'could not be kept for attachment inspection' "$PORTCULLIS_LOG"
	next_ok "h. disk full"
	umount "$SPOOL"
else
	diag_file "$TEST_TMP/mount.err"
	fail "h. a tmpfs can be mounted in the test's mount namespace"
fi

# ------------------------------------------------------------ g. SIGTERM
LOAD_OUT=$TEST_TMP/out/sigterm.json
"$PY" "$CLIENT" "$SOCK" load --messages 3000 --concurrency 8 \
	>"$LOAD_OUT" 2>"$LOAD_OUT.err" &
LOAD_PID=$!
N0=$(grep -c 'action=' "$PORTCULLIS_LOG")
_under_load() { [ "$(grep -c 'action=' "$PORTCULLIS_LOG")" -ge $((N0 + 100)) ]; }
ok "g. the load is running (100 messages answered)" poll 300 0.1 _under_load
kill -TERM "$PORTCULLIS_PID"
ok "g. the daemon exits after SIGTERM under load" wait_exit "$PORTCULLIS_PID" 600
is "$EXIT_STATUS" 0 "g. ... with status 0"
ok "g. the load client ends" wait_exit "$LOAD_PID" 600
OUT=$LOAD_OUT
diag "g. $(cat "$OUT")"
# what an answered message may be: accepted with its A-R, or refused for
# later (421 4.3.2 while draining, or a tempfail); never accepted without
ACC=$(j 'r["actions"].get("accept", 0)')
ok "g. some messages were accepted before the signal" test "${ACC:-0}" -gt 0
is "$(j 'r["authres"]')" "$ACC" "g. every accepted message has its Authentication-Results" || diag_out
is "$(j 'sorted(k for k in r["actions"] if k != "accept" and not k.startswith(("reply:4", "tempfail")))')" "[]" \
	"g. every other answer is a temporary refusal" || diag_out
is "$(j 'r["invalid"]')" "[]" "g. every reply is well formed" || diag_out
is "$(j 'r["sessions"]')" 3000 "g. every message of the load was tried" || diag_out
# a session with no answer is one the daemon had not started a message
# of (closed before its first answered step: the MTA applies its
# milter_default_action).  The first step answered is RCPT: connect, HELO
# and MAIL are negotiated without a reply (milter_noreply.sh), so the
# client sends them at once and waits at RCPT.  A message whose MAIL the
# daemon read is in flight until its RCPT is answered, so none is broken
# off after that: no error at DATA, a header, the body or the end.
is "$(j 'sorted(k for k in r["error_steps"] if k not in ("optneg", "connect", "helo", "mail", "rcpt"))')" "[]" \
	"g. no message in flight was broken off (no error after MAIL)" || diag_out
ACCLOG=$(( $(grep -c 'action=accept' "$PORTCULLIS_LOG") ))
diag "g. $ACCLOG messages logged as accepted in all"

[ "$_tap_failed" -gt 0 ] && diag_file "$PORTCULLIS_LOG" 40
done_testing
