#!/bin/bash
# daemon_signals.sh - the daemon's life behind real Postfix:
#  (c) "portcullis -n" names FILE:LINE:COL of a misspelt fact with a
#      suggestion and exits 1; exits 0 on a good policy and on the shipped
#      rules/default.policy;
#  (a) SIGHUP with a broken policy: the daemon keeps running, logs the error
#      with FILE:LINE:COL, the old policy still decides; SIGHUP (and SIGUSR1)
#      with a good one: the new policy decides;
#  (b) SIGTERM while a message is in the middle of DATA: the message is
#      finished (delivered, tagged) and the daemon then exits 0.
. "$(dirname "$0")/lib.sh"

have_portcullis || skip_all "portcullis is not built ($PORTCULLIS)"

cat >"$TEST_TMP/test.zone" <<'EOF'
$ORIGIN test.
$TTL 300
@		IN SOA	ns.test. hostmaster.test. 1 3600 600 86400 300
@		IN NS	ns.test.
ns		IN A	127.0.0.1
ext		IN TXT	"v=spf1 ip4:127.0.0.1 -all"
EOF
start_unbound "$TEST_TMP/test.zone"

ETC=$TEST_TMP/etc
mkdir -p "$ETC"
CONF=$ETC/portcullis.conf
cat >"$CONF" <<EOF
socket      = inet:$PORT_MILTER@127.0.0.1
policy      = policy.rules
authserv_id = mx.corp.test
resolver    = $DNS_RESOLVER
dns_timeout = 3s
EOF

# policy TEXT-OF-THE-BLOCKED-RULE FACT: the policy, with the rule on line 5.
policy() {
	cat <<EOF
# daemon_signals.sh
internal domains  corp.test
trusted networks  127.0.0.3/32
external tag "[EXTERNAL]"
rule blocked: when ${2:-mail_from} is "spam@bad.test" then reject "5.7.1 $1"
default accept
EOF
}
# The misspelt fact starts on line 5, column 20 (1-based); the message
# is one line: FILE:LINE:COL: … 'mial_from' … (did you mean 'mail_from'?)
NL=$'\n'
BROKEN_MSG="[^$NL]*'mial_from'[^$NL]*\\(did you mean 'mail_from'\\?\\)"
BROKEN_LOG="policy\\.rules:5:20: .*'mial_from'.*\\(did you mean 'mail_from'\\?\\)"

# install_policy TEXT [FACT]: replace policy.rules atomically.
install_policy() {
	policy "$@" >"$ETC/policy.rules.new" && mv -f "$ETC/policy.rules.new" "$ETC/policy.rules"
}

# ------------------------------------------------------------ (c) -n
policy "blocked by the broken policy" mial_from >"$ETC/broken.rules"
sed 's|^policy *=.*|policy = broken.rules|' "$CONF" >"$ETC/broken.conf"
out=$("$PORTCULLIS" -n -c "$ETC/broken.conf" 2>&1)
rc=$?
is "$rc" 1 "-n on a misspelt fact exits 1"
like "$out" "(^|[/$NL])broken\.rules:5:20: $BROKEN_MSG" "-n prints FILE:LINE:COL: … (did you mean 'mail_from'?)" ||
	diag "$out"

install_policy "blocked by the old policy"
out=$("$PORTCULLIS" -n -c "$CONF" 2>&1)
is "$?" 0 "-n on the test's good policy exits 0" || diag "$out"

cat >"$ETC/default.conf" <<EOF
socket = inet:$PORT_MILTER@127.0.0.1
policy = $abs_top_srcdir/rules/default.policy
EOF
out=$("$PORTCULLIS" -n -c "$ETC/default.conf" 2>&1)
is "$?" 0 "-n on the shipped rules/default.policy exits 0" || diag "$out"

# ------------------------------------------------------------ (a) reload
start_sink
start_portcullis "$CONF"
start_postfix "inet:$PORT_MILTER@127.0.0.1"

# blocked_reply: send from the blocked sender; the reply is in SEND_REPLY.
blocked_reply() {
	send "$PORT_POSTFIX" --helo client.ext.test --from spam@bad.test --to bob@corp.test \
		--header "X-Test-Id: blocked-$_send_n"
}
blocked_reply
is "$SEND_REPLY" "550 5.7.1 blocked by the old policy" "the first policy decides"

install_policy "blocked by the broken policy" mial_from
kill -HUP "$PORTCULLIS_PID"
logged_error() { grep -Eq "(^|[/ ])$BROKEN_LOG" "$PORTCULLIS_LOG"; }
logged_or_dead() { logged_error || pid_gone "$PORTCULLIS_PID"; }
poll 100 0.1 logged_or_dead
ok "SIGHUP with a broken policy: the error is logged with FILE:LINE:COL" logged_error ||
	diag_file "$PORTCULLIS_LOG"
if ok "SIGHUP with a broken policy: the daemon keeps running" pid_alive "$PORTCULLIS_PID"; then :
else
	wait_exit "$PORTCULLIS_PID" 1 && diag "portcullis exited with status $EXIT_STATUS"
fi
ok "... and still listens" port_listening "$PORT_MILTER"
blocked_reply
is "$SEND_REPLY" "550 5.7.1 blocked by the old policy" "the old policy still decides after a failed reload"
send "$PORT_POSTFIX" --helo client.ext.test --from alice@ext.test --to bob@corp.test \
	--header "X-Test-Id: after-bad-hup" --header "Subject: still here"
is "$SEND_CODE" 250 "mail still flows after a failed reload" || diag_send
if f=$(sent_message after-bad-hup); then
	is "$(header_of "$f" Subject)" "[EXTERNAL] still here" "... and is still tagged"
else
	fail "mail after a failed reload delivered"
fi

# reload_settled TEXT: the reject text is now TEXT, or it never will be
# (the daemon is gone).  Polled: the reload runs in its own thread.
reload_settled() {
	pid_alive "$PORTCULLIS_PID" || return 0
	blocked_reply
	[ "$SEND_REPLY" = "550 5.7.1 $1" ]
}

install_policy "blocked by the new policy"
kill -HUP "$PORTCULLIS_PID" 2>/dev/null
poll 50 0.2 reload_settled "blocked by the new policy"
is "$SEND_REPLY" "550 5.7.1 blocked by the new policy" "SIGHUP with a fixed policy: the new policy decides" ||
	diag_file "$PORTCULLIS_LOG"
ok "the daemon still runs after the good reload" pid_alive "$PORTCULLIS_PID"

install_policy "blocked by the USR1 policy"
kill -USR1 "$PORTCULLIS_PID" 2>/dev/null
poll 50 0.2 reload_settled "blocked by the USR1 policy"
is "$SEND_REPLY" "550 5.7.1 blocked by the USR1 policy" "SIGUSR1 reloads too"
ok "the daemon still runs after SIGUSR1" pid_alive "$PORTCULLIS_PID"

# ------------------------------------------------------------ (b) SIGTERM
cat >"$TEST_TMP/inflight.eml" <<'EOF'
From: Alice <alice@ext.test>
To: Bob <bob@corp.test>
Subject: in flight
Message-ID: <inflight@ext.test>
X-Test-Id: inflight

first body line
second body line, sent after SIGTERM
EOF
HELD=$TEST_TMP/held GO=$TEST_TMP/go RESULT=$TEST_TMP/inflight.result
python3 "$_lib_dir/smtp_hold.py" 127.0.0.1 "$PORT_POSTFIX" alice@ext.test bob@corp.test \
	"$TEST_TMP/inflight.eml" "$HELD" "$GO" "$RESULT" 2>"$TEST_TMP/inflight.log" &
CLIENT_PID=$!
_track smtp_hold "$CLIENT_PID"
held_or_failed() { [ -e "$HELD" ] || [ -e "$RESULT" ]; }
poll 100 0.1 held_or_failed
ok "the client is in the middle of DATA" test -e "$HELD" ||
	{ diag_file "$TEST_TMP/inflight.log"; diag_file "$RESULT"; }
milter_conns() { ss -Htn state established "( dport = :$PORT_MILTER )" 2>/dev/null | grep -c .; }
ok "Postfix holds a connection to portcullis meanwhile" test "$(milter_conns)" -ge 1

sigterm_taken() {	# SIGTERM (15) no longer pending for the process
	local p
	p=$(sed -n 's/^ShdPnd:[[:space:]]*//p' "/proc/$PORTCULLIS_PID/status" 2>/dev/null) || return 0
	[ -z "$p" ] && return 0
	(( (0x$p & 0x4000) == 0 ))
}
kill -TERM "$PORTCULLIS_PID" 2>/dev/null
poll 50 0.1 sigterm_taken
# Shutting down means no new connections: wait for that (or for an exit,
# which would lose the message), bounded, before letting the client go on.
shutting_down() { port_closed "$PORT_MILTER" || pid_gone "$PORTCULLIS_PID"; }
poll 150 0.1 shutting_down || diag "portcullis still listens 15 s after SIGTERM"
ok "portcullis has not exited before the message in flight is finished" pid_alive "$PORTCULLIS_PID"
touch "$GO"
wait_exit "$CLIENT_PID" 300 || diag "the client did not finish in 30 s"
reply=$(cat "$RESULT" 2>/dev/null)
diag "final reply to the message in flight: $reply"
f=; [[ $reply == 250* ]] && f=$(wait_for_message inflight 10)
like "$reply" '^(250 |4[0-9][0-9] )' "the message in flight is not lost (250, or a 4xx the client retries)" ||
	diag_file "$TEST_TMP/inflight.log"
like "$reply" '^250 ' "SIGTERM lets the message in flight finish: 250"
if [ -n "$f" ]; then
	is "$(header_of "$f" Subject)" "[EXTERNAL] in flight" "the message in flight was filtered (tagged)"
	is "$(headers_of "$f" Authentication-Results | grep -ciE '^mx\.corp\.test[[:space:]]*;')" 1 \
		"the message in flight got our Authentication-Results"
else
	fail "the message in flight was delivered" "not in the sink"
fi
ok "portcullis exits after the message in flight" wait_exit "$PORTCULLIS_PID" 300
is "$EXIT_STATUS" 0 "portcullis exit status after SIGTERM is 0"

[ "$_tap_failed" -gt 0 ] && diag_file "$PORTCULLIS_LOG" 40
done_testing
