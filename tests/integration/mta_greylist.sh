#!/bin/bash
# mta_greylist.sh - greylisting end to end: real Postfix and real Sendmail,
# portcullis attached by the contrib/ snippets, SPF from a loopback unbound,
# the LMDB store and a Redis store shared by two portcullis instances.
# The client address is set with Postfix's XCLIENT.  No test waits for a
# delay: a retry "before the delay" is made under `delay 1h`, and a retry
# "after the delay" after the policy's delay was lowered to 0s by a reload
# (SIGHUP) - the store keeps first_seen, the state is judged with the
# current delay.  The state the daemon computed is read from its log line
# (greylist=STATE).
#  (0) a triplet is recorded only when a rule references `greylist`: a
#      policy with a `greylist` line but no rule reading it leaves the store
#      empty after messages; a rule that decides first (a trusted network)
#      keeps its messages out of the store too;
#  (1) LMDB: a new triplet gets 451 4.7.1; a retry before the delay gets
#      451 again (greylist=early); after SIGHUP lowered the delay the retry
#      is delivered (passed), the next one too (allowed);
#  (2) a sending pool: SPF passes for the sender's domain, so the domain is
#      the sender's identity: first try from 192.0.2.20 refused, the retry
#      from 198.51.100.30 (another network) delivered; a domain without SPF
#      retried from another network is a new triplet again (451);
#  (3) a restart keeps the LMDB state: the triplet of (1) is still allowed;
#      "portcullis greylist list" and "stats" show it; after a reload to
#      `autoallow 1` a new sender from the network of that pass is
#      allowed at once, one from a network without a pass is not;
#  (4) Redis: two portcullis instances (one behind Postfix, one behind
#      Sendmail) share one redis-server; a triplet first seen through one
#      and retried through the other is delivered.
. "$(dirname "$0")/lib.sh"

have_portcullis || skip_all "portcullis is not built ($PORTCULLIS)"
command -v redis-server >/dev/null || skip_all "no redis-server"

cat >"$TEST_TMP/test.zone" <<'EOF'
$ORIGIN test.
$TTL 300
@		IN SOA	ns.test. hostmaster.test. 1 3600 600 86400 300
@		IN NS	ns.test.
ns		IN A	127.0.0.1
pool		IN TXT	"v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.0/24 -all"
EOF
start_unbound "$TEST_TMP/test.zone"

ETC=$TEST_TMP/etc
mkdir -p "$ETC" "$TEST_TMP/msg"
# policy DELAY [AUTOALLOW]: greylisting with that delay (autoallow 0 unless
# given), a trusted network first
policy() {
	cat >"$ETC/policy.rules.new" <<EOF
# mta_greylist.sh
greylist delay $1 window 2h expire 1d netmask 24/64 autoallow ${2:-0}
rule trusted: when client.ip in {203.0.113.0/24} then accept
rule greylist: when greylist is new or greylist is early then tempfail "4.7.1 greylisted, please retry later"
default accept
EOF
	mv "$ETC/policy.rules.new" "$ETC/policy.rules"
}
# The policy of (0): the greylist line, but no rule reads greylist
cat >"$ETC/policy.rules" <<EOF
# mta_greylist.sh (0)
greylist delay 1h window 2h expire 1d netmask 24/64 autoallow 0
rule blocked: when mail_from.domain is blocked.test then reject "5.7.1 blocked"
default accept
EOF
# conf FILE SOCKET-PORT STORE
conf() {
	cat >"$1" <<EOF
socket      = inet:$2@127.0.0.1
policy      = policy.rules
authserv_id = mx.corp.test
resolver    = $DNS_RESOLVER
dns_timeout = 3s
greylist_store = $3
EOF
}
conf "$ETC/lmdb.conf" "$PORT_MILTER" "lmdb:$TEST_TMP/greylist"

start_sink
start_portcullis "$ETC/lmdb.conf"
POSTFIX_MAIN_CF_EXTRA="smtpd_authorized_xclient_hosts = 127.0.0.0/8
relay_domains = corp.test"
start_postfix "inet:$PORT_MILTER@127.0.0.1"

# reload_to DELAY: writes the greylist policy with DELAY, sends SIGHUP and
# waits for the daemon's "reloaded" log line (the reload has its thread)
_reloads() { grep -c 'reloaded ' "$PORTCULLIS_LOG" 2>/dev/null || true; }
_reloaded_past() { [ "$(_reloads)" -gt "$1" ]; }
reload_to() {
	local before
	before=$(_reloads)
	policy "$@"
	kill -HUP "$PORTCULLIS_PID"
	poll 100 0.1 _reloaded_past "$before" ||
		{ diag_file "$PORTCULLIS_LOG"; bail_out "no reload after SIGHUP"; }
}

n=0
# try FROM [XCLIENT-ADDR] [PORT]: one session; the message's X-Test-Id is
# try-N; sets ID
try() {
	local from=$1 addr=${2:-} port=${3:-$PORT_POSTFIX}
	n=$((n + 1)) ID=try-$n
	printf 'From: %s\r\nTo: bob@corp.test\r\nSubject: %s\r\nX-Test-Id: %s\r\n\r\nhello\r\n' \
		"$from" "$ID" "$ID" >"$TEST_TMP/msg/$ID.eml"
	send "$port" ${addr:+--xclient-addr "$addr"} --helo mx.ext.test \
		--from "$from" --to bob@corp.test --data "@$TEST_TMP/msg/$ID.eml"
}
# state_of FROM: the greylist state of the last log line of FROM
_state() { grep -F "mail_from=<$1>" "$PORTCULLIS_LOG" | tail -n 1 | grep -o 'greylist=[a-z]*' | cut -d= -f2 | grep .; }
state_of() { poll 50 0.1 _state "$1" >/dev/null; _state "$1"; }
delivered() { sent_message "$1" >/dev/null; }

# ------------------------------------------------------------ (0)
try z@plain.test 192.0.2.10
is "$SEND_CODE" 250 "(0) no rule reads greylist: accepted at once" || diag_send
try z@plain.test 192.0.2.10
is "$SEND_CODE" 250 "(0) ... the retry too" || diag_send
unlike "$(grep -F 'mail_from=<z@plain.test>' "$PORTCULLIS_LOG")" 'greylist=' \
	"(0) ... greylist was not computed (no greylist= in the log lines)"
list=$("$PORTCULLIS" greylist -c "$ETC/lmdb.conf" list 2>&1)
is "$list" "" "(0) ... and the store is empty (greylist list prints nothing)"
stats=$("$PORTCULLIS" greylist -c "$ETC/lmdb.conf" stats 2>&1)
like "$stats" '(^|
)pending 0(
|$)' "(0) ... greylist stats: pending 0" || diag "$stats"

reload_to 1h
try t@plain.test 203.0.113.5
is "$SEND_CODE" 250 "(0) a rule before the greylist rule accepts a trusted client" || diag_send
try t@plain.test 203.0.113.5
is "$SEND_CODE" 250 "(0) ... its retry too" || diag_send
list=$("$PORTCULLIS" greylist -c "$ETC/lmdb.conf" list 2>&1)
unlike "$list" 't@plain\.test' "(0) ... and its triplet was never recorded" || diag "$list"

# ------------------------------------------------------------ (1)
try a@plain.test 192.0.2.10
is "$SEND_REPLY" "451 4.7.1 greylisted, please retry later" "(1) a new triplet: 451 4.7.1 at RCPT" || diag_send
is "$(state_of a@plain.test)" new "(1) ... the daemon logged greylist=new"
try a@plain.test 192.0.2.10
is "$SEND_REPLY" "451 4.7.1 greylisted, please retry later" "(1) a retry before the delay (1h): 451 again" || diag_send
is "$(state_of a@plain.test)" early "(1) ... greylist=early"
list=$("$PORTCULLIS" greylist -c "$ETC/lmdb.conf" list 2>&1)
like "$list" '192\.0\.2\.0/24[[:space:]]+a@plain\.test[[:space:]]+bob@corp\.test[[:space:]]+pending' \
	"(1) ... greylist list shows the triplet pending" || diag "$list"
reload_to 0s
try a@plain.test 192.0.2.10
is "$SEND_CODE" 250 "(1) after SIGHUP lowered the delay to 0s, the retry is accepted" || diag_send
is "$(state_of a@plain.test)" passed "(1) ... greylist=passed"
ok "(1) ... and delivered" delivered "$ID"
try a@plain.test 192.0.2.10
is "$SEND_CODE" 250 "(1) the next message of the triplet is accepted at once" || diag_send
is "$(state_of a@plain.test)" allowed "(1) ... greylist=allowed"

# ------------------------------------------------------------ (2)
try b@pool.test 192.0.2.20
is "$SEND_REPLY" "451 4.7.1 greylisted, please retry later" "(2) pool sender, first host: 451" || diag_send
is "$(state_of b@pool.test)" new "(2) ... greylist=new"
try b@pool.test 198.51.100.30
is "$SEND_CODE" 250 "(2) the retry from another network of the SPF-passing domain is accepted" || diag_send
is "$(state_of b@pool.test)" passed "(2) ... as the same triplet (greylist=passed)"
ok "(2) ... and delivered" delivered "$ID"
try d@nospf.test 192.0.2.21
is "$SEND_REPLY" "451 4.7.1 greylisted, please retry later" "(2) a sender without SPF, first host: 451" || diag_send
try d@nospf.test 198.51.100.31
is "$SEND_REPLY" "451 4.7.1 greylisted, please retry later" \
	"(2) ... its retry from another network is another triplet: 451" || diag_send
is "$(state_of d@nospf.test)" new "(2) ... greylist=new"

# ------------------------------------------------------------ (3)
stop_portcullis
is "$PORTCULLIS_STATUS" 0 "(3) portcullis stopped (exit 0)"
start_portcullis "$ETC/lmdb.conf"
try a@plain.test 192.0.2.10
is "$SEND_CODE" 250 "(3) after a restart the LMDB store still allows the triplet" || diag_send
is "$(state_of a@plain.test)" allowed "(3) ... greylist=allowed"
list=$("$PORTCULLIS" greylist -c "$ETC/lmdb.conf" list 2>&1)
like "$list" '192\.0\.2\.0/24[[:space:]]+a@plain\.test[[:space:]]+bob@corp\.test[[:space:]]+passed' \
	"(3) greylist list shows the triplet as passed" || diag "$list"
like "$list" 'spf:pool\.test[[:space:]]+b@pool\.test[[:space:]]+bob@corp\.test' \
	"(3) greylist list shows the pool's triplet under its SPF identity" || diag "$list"
stats=$("$PORTCULLIS" greylist -c "$ETC/lmdb.conf" stats 2>&1)
like "$stats" '(^|
)passed 2(
|$)' "(3) greylist stats counts the 2 passed triplets" || diag "$stats"

# autoallow N through the daemon: the store counts every network's passed
# triplets (192.0.2.0/24: one, a@plain.test); after a reload to
# `delay 1h ... autoallow 1` a new sender from that network is allowed at
# once, while one from 198.51.100.0/24 (no pass there: the pool's pass is
# counted under spf:pool.test) is still greylisted.
reload_to 1h 1
try e@plain2.test 192.0.2.12
is "$SEND_CODE" 250 "(3) autoallow 1: a new triplet from a network with one pass is accepted at once" || diag_send
is "$(state_of e@plain2.test)" allowed "(3) ... greylist=allowed"
try f@plain2.test 198.51.100.77
is "$SEND_REPLY" "451 4.7.1 greylisted, please retry later" \
	"(3) autoallow 1: a new triplet from a network without a pass: 451" || diag_send
is "$(state_of f@plain2.test)" new "(3) ... greylist=new"
policy 0s	# (4) starts from the policy of (1)-(3)

# ------------------------------------------------------------ (4)
stop_portcullis
REDIS_SOCK=$TEST_TMP/redis.sock
redis-server --port 0 --unixsocket "$REDIS_SOCK" --unixsocketperm 700 \
	--save '' --appendonly no --dir "$TEST_TMP" </dev/null >"$TEST_TMP/redis.log" 2>&1 &
_track redis $!
_redis_up() { [ -S "$REDIS_SOCK" ] && redis-cli -s "$REDIS_SOCK" ping 2>/dev/null | grep -q PONG; }
poll 100 0.05 _redis_up || { diag_file "$TEST_TMP/redis.log"; bail_out "redis-server does not start"; }
PORT_B=$((PORT_SPARE + 1))
conf "$ETC/redis-a.conf" "$PORT_MILTER" "redis://$REDIS_SOCK?db=0"
conf "$ETC/redis-b.conf" "$PORT_B" "redis://$REDIS_SOCK?db=0"
LOG_A=$TEST_TMP/portcullis-a.log LOG_B=$TEST_TMP/portcullis-b.log
PORTCULLIS_LOG=$LOG_A
start_portcullis "$ETC/redis-a.conf"
PID_A=$PORTCULLIS_PID
PORTCULLIS_LOG=$LOG_B
start_portcullis "$ETC/redis-b.conf"
start_sendmail "inet:$PORT_B@127.0.0.1"
PORTCULLIS_LOG=$LOG_A
try c@plain.test "" "$PORT_POSTFIX"
is "$SEND_REPLY" "451 4.7.1 greylisted, please retry later" "(4) via Postfix and instance A: a new triplet, 451" || diag_send
is "$(state_of c@plain.test)" new "(4) ... instance A logged greylist=new"
PORTCULLIS_LOG=$LOG_B
try c@plain.test "" "$PORT_SENDMAIL"
is "$SEND_CODE" 250 "(4) the retry via Sendmail and instance B is accepted" || diag_send
is "$(state_of c@plain.test)" passed "(4) ... instance B found the triplet A recorded (greylist=passed)"
ok "(4) ... and delivered" delivered "$ID"
ok "instance A is still running" pid_alive "$PID_A"
done_testing
