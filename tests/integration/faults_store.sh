#!/bin/bash
# faults_store.sh - greylist store faults end to end: real Postfix, the
# daemon, and the reply the SMTP client sees.  The policy greylists with
# `delay 0s` (a retry of a recorded triplet passes at once), so every
# answer below tells whether the store worked:
#  (R) Redis on 127.0.0.1 (a port of this test), greylist_on_error = pass
#      (the default): Redis down at start -> 250, not greylisted, logged;
#      Redis started -> 451 4.7.1 and the retry passes; Redis stopped
#      mid-run -> 250 again; Redis restarted -> greylisting resumes;
#  (T) the same with greylist_on_error = tempfail: down at start -> 451
#      (on_error, 4.3.0); started -> 451 4.7.1 then pass; stopped mid-run ->
#      451 4.3.0 for a known and a new triplet; restarted -> resumes;
#  (L) LMDB with a tiny map (?mapsize=64k) filled by one session's RCPTs:
#      once full a new triplet is not greylisted (250, "raise ?mapsize="
#      logged); with tempfail the same full store answers 451 4.3.0;
#  (K) LMDB crash safety: the daemon killed with SIGKILL in the middle of
#      a session's stream of RCPTs; restarted on the same store it opens,
#      and every triplet the client had been answered 451 4.7.1 for is
#      still there (listed, and its retry passes).
# Through all of it the daemon never crashes (and its log has no sanitizer
# report).
. "$(dirname "$0")/lib.sh"

have_portcullis || skip_all "portcullis is not built ($PORTCULLIS)"
command -v redis-server >/dev/null || skip_all "no redis-server"
command -v redis-cli >/dev/null || skip_all "no redis-cli"
PY=/usr/bin/python3
[ -x "$PY" ] || skip_all "no $PY"

cat >"$TEST_TMP/test.zone" <<'EOF'
$ORIGIN test.
$TTL 300
@		IN SOA	ns.test. hostmaster.test. 1 3600 600 86400 300
@		IN NS	ns.test.
ns		IN A	127.0.0.1
EOF
start_unbound "$TEST_TMP/test.zone"

ETC=$TEST_TMP/etc
mkdir -p "$ETC" "$TEST_TMP/msg" "$TEST_TMP/redis"
cat >"$ETC/policy.rules" <<'EOF'
# faults_store.sh
greylist delay 0s window 1h expire 1d netmask 24/64 autoallow 0
rule greylist: when greylist is new or greylist is early then tempfail "4.7.1 greylisted, please retry later"
default accept
EOF
GREY="451 4.7.1 greylisted, please retry later"
ONERR="451 4.3.0 temporary failure in the mail filter, please try again later"

# conf FILE STORE ON_ERROR
conf() {
	cat >"$1" <<EOF
socket      = inet:$PORT_MILTER@127.0.0.1
policy      = policy.rules
authserv_id = mx.corp.test
resolver    = $DNS_RESOLVER
dns_timeout = 3s
greylist_store = $2
greylist_on_error = $3
EOF
}
REDIS_PORT=$PORT_SPARE
conf "$ETC/redis-pass.conf" "redis://127.0.0.1:$REDIS_PORT/0" pass
conf "$ETC/redis-tempfail.conf" "redis://127.0.0.1:$REDIS_PORT/0" tempfail
conf "$ETC/small-pass.conf" "lmdb:$TEST_TMP/small?mapsize=64k" pass
conf "$ETC/small-tempfail.conf" "lmdb:$TEST_TMP/small?mapsize=64k" tempfail
conf "$ETC/kill.conf" "lmdb:$TEST_TMP/kill" pass

# redis_start / redis_stop: redis-server on 127.0.0.1:$REDIS_PORT, no
# persistence, our child
_redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }
redis_start() {
	redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' \
		--appendonly no --dir "$TEST_TMP/redis" \
		</dev/null >>"$TEST_TMP/redis.log" 2>&1 &
	REDIS_PID=$!
	_track redis "$REDIS_PID"
	poll 100 0.05 _redis_up ||
		{ diag_file "$TEST_TMP/redis.log"; bail_out "redis-server does not start"; }
}
redis_stop() {
	stop_pid "$REDIS_PID" TERM 100
	poll 50 0.1 port_closed "$REDIS_PORT" || bail_out "redis-server still listens"
}

start_sink
# Many RCPTs refused in one session (L, K): no error sleep, no error limit.
POSTFIX_MAIN_CF_EXTRA="smtpd_authorized_xclient_hosts = 127.0.0.0/8
relay_domains = corp.test
smtpd_soft_error_limit = 100000
smtpd_hard_error_limit = 100000
smtpd_error_sleep_time = 0
smtpd_recipient_limit = 100000"
start_postfix "inet:$PORT_MILTER@127.0.0.1"

n=0
# try FROM: one session from 192.0.2.10 to bob@corp.test; sets ID
try() {
	n=$((n + 1)) ID=try-$n
	printf 'From: %s\r\nTo: bob@corp.test\r\nSubject: %s\r\nX-Test-Id: %s\r\n\r\nhello\r\n' \
		"$1" "$ID" "$ID" >"$TEST_TMP/msg/$ID.eml"
	send "$PORT_POSTFIX" --xclient-addr 192.0.2.10 --helo mx.ext.test \
		--from "$1" --to bob@corp.test --data "@$TEST_TMP/msg/$ID.eml"
}
delivered() { sent_message "$1" >/dev/null; }
logged() { grep -qF -- "$1" "$PORTCULLIS_LOG"; }
alive() { ok "$1: the daemon is still running" pid_alive "$PORTCULLIS_PID"; }

# rcpts.py PORT FROM (gen PREFIX N | file FILE): one session, one RCPT per
# address, a line "ADDRESS CODE TEXT" per reply (flushed).  STOP_UNLESS:
# stop after the first reply without that text; DATA_ID: when a recipient
# was accepted, send a message with that X-Test-Id.
cat >"$TEST_TMP/rcpts.py" <<'EOF'
import os, smtplib, sys
port, sender, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
if mode == "gen":
    rcpts = ["%s%d@corp.test" % (sys.argv[4], i) for i in range(int(sys.argv[5]))]
else:
    rcpts = open(sys.argv[4]).read().split()
stop = os.environ.get("STOP_UNLESS")
data_id = os.environ.get("DATA_ID")
accepted = 0
try:
    s = smtplib.SMTP("127.0.0.1", port, "mx.ext.test", timeout=60)
    s.ehlo("mx.ext.test")
    s.mail(sender)
    for r in rcpts:
        code, msg = s.rcpt(r)
        print(r, code, msg.decode("utf-8", "replace"), flush=True)
        if code == 250:
            accepted += 1
        if stop and stop not in msg.decode("utf-8", "replace"):
            break
    if data_id and accepted:
        code, msg = s.data(("From: %s\r\nSubject: %s\r\nX-Test-Id: %s\r\n\r\nhi\r\n"
                            % (sender, data_id, data_id)).encode())
        print("DATA", code, msg.decode("utf-8", "replace"), flush=True)
    s.quit()
except (smtplib.SMTPException, OSError) as e:
    print("disconnected", type(e).__name__, flush=True)
EOF
rcpts() { "$PY" "$TEST_TMP/rcpts.py" "$PORT_POSTFIX" "$@"; }

# ------------------------------------------------------------ (R)
start_portcullis "$ETC/redis-pass.conf"
try r1@plain.test
is "$SEND_CODE" 250 "(R) Redis down at start, on_error pass: accepted, not greylisted" || diag_send
ok "(R) ... delivered" delivered "$ID"
ok "(R) ... and logged as not greylisted" logged "greylist store failed: bob@corp.test not greylisted"
redis_start
try r2@plain.test
is "$SEND_REPLY" "$GREY" "(R) Redis started: a new triplet is greylisted" || diag_send
try r2@plain.test
is "$SEND_CODE" 250 "(R) ... and its retry passes (the triplet is in Redis)" || diag_send
ok "(R) ... Redis holds it" eval 'redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --scan --pattern "g:*" | grep -qF r2@plain.test'
redis_stop
try r3@plain.test
is "$SEND_CODE" 250 "(R) Redis stopped mid-run: accepted, not greylisted" || diag_send
ok "(R) ... delivered" delivered "$ID"
alive "(R)"
redis_start
try r4@plain.test
is "$SEND_REPLY" "$GREY" "(R) Redis restarted: greylisting resumes" || diag_send
try r4@plain.test
is "$SEND_CODE" 250 "(R) ... and the retry passes" || diag_send
alive "(R)"

# ------------------------------------------------------------ (T)
stop_portcullis
redis_stop
start_portcullis "$ETC/redis-tempfail.conf"
try t1@plain.test
is "$SEND_REPLY" "$ONERR" "(T) Redis down at start, on_error tempfail: 451 4.3.0" || diag_send
ok "(T) ... logged (on_error applied)" logged "applying on_error"
redis_start
try t2@plain.test
is "$SEND_REPLY" "$GREY" "(T) Redis started: a new triplet is greylisted" || diag_send
try t2@plain.test
is "$SEND_CODE" 250 "(T) ... and its retry passes" || diag_send
redis_stop
try t2@plain.test
is "$SEND_REPLY" "$ONERR" "(T) Redis stopped mid-run: a known triplet gets 451 4.3.0" || diag_send
try t3@plain.test
is "$SEND_REPLY" "$ONERR" "(T) ... and a new one too" || diag_send
alive "(T)"
redis_start
try t4@plain.test
is "$SEND_REPLY" "$GREY" "(T) Redis restarted: greylisting resumes" || diag_send
try t4@plain.test
is "$SEND_CODE" 250 "(T) ... and the retry passes" || diag_send
alive "(T)"
stop_portcullis
redis_stop

# ------------------------------------------------------------ (L)
start_portcullis "$ETC/small-pass.conf"
STOP_UNLESS=greylisted DATA_ID=mapfull rcpts l@plain.test gen fill 3000 >"$TEST_TMP/fill.out" 2>&1
first=$(head -n 1 "$TEST_TMP/fill.out")
is "${first#* }" "$GREY" "(L) the first recipients are greylisted (store working)" ||
	diag_file "$TEST_TMP/fill.out" 5
full=$(grep -v " $GREY\$" "$TEST_TMP/fill.out" | head -n 1)
like "$full" '^fill[0-9]+@corp\.test 250 ' "(L) once the 64k map is full a new triplet is accepted, not greylisted (on_error pass)" ||
	diag_file "$TEST_TMP/fill.out" 5
greyed=$(grep -c " $GREY\$" "$TEST_TMP/fill.out")
ok "(L) ... after $greyed greylisted recipients (more than 10)" test "$greyed" -gt 10
ok "(L) ... logged: map full, raise ?mapsize=" logged "raise ?mapsize= in greylist_store"
ok "(L) ... and not greylisted" logged "greylist store failed: ${full%% *} not greylisted"
ok "(L) ... the message to the accepted recipient is delivered" delivered mapfull
alive "(L)"
stop_portcullis
is "$PORTCULLIS_STATUS" 0 "(L) the daemon stops cleanly (exit 0)"
# LMDB's "full" depends on the key: an insert into a leaf with room can
# still recycle pages.  So: new triplets until one is not stored.
start_portcullis "$ETC/small-tempfail.conf"
STOP_UNLESS=greylisted rcpts l@plain.test gen more 3000 >"$TEST_TMP/more.out" 2>&1
full=$(grep -v " $GREY\$" "$TEST_TMP/more.out" | head -n 1)
is "${full#* }" "$ONERR" "(L) the same full store with on_error tempfail: a new triplet gets 451 4.3.0" ||
	diag_file "$TEST_TMP/more.out" 5
is "$(grep -c ' 250 ' "$TEST_TMP/more.out")" 0 "(L) ... and no recipient was accepted unchecked"
alive "(L)"
stop_portcullis

# ------------------------------------------------------------ (K)
start_portcullis "$ETC/kill.conf"
STOP_UNLESS=greylisted rcpts k@plain.test gen kill 20000 >"$TEST_TMP/kill.out" 2>&1 &
CLIENT=$!
_track rcpts "$CLIENT"
_greyed_ge() { [ "$(grep -c " $GREY\$" "$TEST_TMP/kill.out" 2>/dev/null)" -ge "$1" ]; }
poll 600 0.05 _greyed_ge 50 || { diag_file "$TEST_TMP/kill.out" 5; bail_out "the RCPT stream did not start"; }
kill -KILL "$PORTCULLIS_PID"
wait_exit "$CLIENT" 600 || bail_out "the client did not stop after the daemon died"
wait "$PORTCULLIS_PID" 2>/dev/null
is "$?" 137 "(K) the daemon was killed by SIGKILL in the middle of the RCPT stream"
grep " $GREY\$" "$TEST_TMP/kill.out" | cut -d' ' -f1 >"$TEST_TMP/acked"
acked=$(grep -c . "$TEST_TMP/acked")
last=$(tail -n 1 "$TEST_TMP/kill.out")
unlike "$last" "greylisted" "(K) ... the client saw the daemon go ($acked triplets answered 451 4.7.1 before)" ||
	diag_file "$TEST_TMP/kill.out" 5
PORTCULLIS_LOG=$TEST_TMP/portcullis-restarted.log
start_portcullis "$ETC/kill.conf"
pass "(K) restarted on the same store: it opens"
"$PORTCULLIS" greylist -c "$ETC/kill.conf" list >"$TEST_TMP/kill.list" 2>&1
missing=0
while read -r a; do
	grep -qF " $a pending" "$TEST_TMP/kill.list" || { missing=$((missing + 1)); diag "lost: $a"; }
done <"$TEST_TMP/acked"
is "$missing" 0 "(K) every one of the $acked acknowledged triplets is listed pending"
rcpts k@plain.test file "$TEST_TMP/acked" >"$TEST_TMP/retry.out" 2>&1
is "$(grep -c ' 250 ' "$TEST_TMP/retry.out")" "$acked" "(K) ... and the retry of each passes (250)" ||
	diag_file "$TEST_TMP/retry.out" 5
alive "(K)"
done_testing
