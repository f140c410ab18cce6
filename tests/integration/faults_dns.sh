#!/bin/bash
# faults_dns.sh - DNS faults end to end: real Postfix, the daemon with the
# SHIPPED rules/default.policy (placeholders and the blocklist zones made
# ours), a DNS server on loopback (dnsbl_dns.py) that misbehaves per
# domain.  For each fault the SMTP client's reply is asserted:
#  - the sender domain's DNS is silent (timeout), answers SERVFAIL,
#    truncated answers (TC bit, no TCP service), garbage, or answers only
#    after the client gave up: SPF and DMARC are temperror and the shipped
#    rule "authfail" answers 451 4.7.0 - never an accept without checks;
#    the late answers, released afterwards, change nothing;
#  - the blocklist zone is silent, SERVFAIL, truncated or garbage: a dead
#    list lists nobody, the message of a sender that authenticates is
#    delivered;
#  - the whole DNS server stopped: 451 4.7.0; started again: delivered;
#  - through all of it the daemon keeps running and its log line of each
#    refused message says why (rule=authfail, spf=temperror).
. "$(dirname "$0")/lib.sh"

have_portcullis || skip_all "portcullis is not built ($PORTCULLIS)"
PY=/usr/bin/python3
[ -x "$PY" ] || skip_all "no $PY"

ETC=$TEST_TMP/etc
mkdir -p "$ETC" "$TEST_TMP/msg"

# ------------------------------------------------------------ DNS
ZONE=$ETC/zone.txt
DNSLOG=$TEST_TMP/dns.log
cat >"$ZONE" <<'EOF'
good.test TXT "v=spf1 ip4:192.0.2.0/24 -all"
_dmarc.good.test TXT "v=DMARC1; p=reject"
silent down.test
servfail sf.test
truncate tc.test
garbage junk.test
late late.test
silent bl-silent.test
servfail bl-sf.test
truncate bl-tc.test
garbage bl-junk.test
EOF
start_dns() {
	"$PY" "$abs_top_srcdir/tests/integration/dnsbl_dns.py" "$PORT_DNS" \
		"$ZONE" "$DNSLOG" </dev/null >>"$TEST_TMP/dns.out" 2>&1 &
	DNS_PID=$!
	_track dnsbl_dns "$DNS_PID"
	poll 100 0.05 _dns_started "$1" ||
		{ diag_file "$TEST_TMP/dns.out"; bail_out "dnsbl_dns.py does not start"; }
}
_dns_started() { [ "$(grep -c '^listening$' "$DNSLOG" 2>/dev/null)" -ge "$1" ]; }
start_dns 1

# ------------------------------------------------------------ portcullis
test_conf "$ETC/portcullis.conf" "inet:$PORT_MILTER@127.0.0.1" "greylist_store = lmdb:$TEST_TMP/greylist"
# the shipped policy; its placeholders and its blocklist made ours: four
# faulty blocklists, each answering in its own wrong way
shipped_policy 'bl-silent.test\ndnsbl bl-sf.test\ndnsbl bl-tc.test\ndnsbl bl-junk.test' \
	uri-silent.test >"$ETC/policy.rules"
ok "the edited shipped policy loads" "$PORTCULLIS" -n -c "$ETC/portcullis.conf"
start_sink
start_portcullis "$ETC/portcullis.conf"
# greylisting is not under test: the test network and the SPF-passing
# sender domain have passed it before
for id in 192.0.2.0/24 spf:good.test; do
	ok "greylist allow --network $id" \
		"$PORTCULLIS" greylist -c "$ETC/portcullis.conf" allow --network "$id"
done
POSTFIX_MAIN_CF_EXTRA="smtpd_authorized_xclient_hosts = 127.0.0.0/8
relay_domains = corp.test"
start_postfix "inet:$PORT_MILTER@127.0.0.1"

# deliver ID SENDER-DOMAIN: one session from 192.0.2.7
deliver() {
	printf 'From: Alice <alice@%s>\r\nTo: bob@corp.test\r\nSubject: %s\r\nX-Test-Id: %s\r\n\r\nhello\r\n' \
		"$2" "$1" "$1" >"$TEST_TMP/msg/$1.eml"
	send "$PORT_POSTFIX" --xclient-addr 192.0.2.7 --helo mx.good.test \
		--from "alice@$2" --to bob@corp.test --data "@$TEST_TMP/msg/$1.eml"
}
delivered() { sent_message "$1" >/dev/null; }
# log_line FROM-DOMAIN: the daemon's last message line for that sender
log_line() { grep "mail_from=<\?alice@$1" "$PORTCULLIS_LOG" | tail -n 1; }
_logged() { [ -n "$(log_line "$1")" ]; }

# ------------------------------------------------------------ control
deliver good-1 good.test
is "$SEND_CODE" 250 "control: a sender whose DNS works is accepted, the blocklists all faulty" || diag_send
ok "control: ... and delivered" delivered good-1
AR=$(header_of "$(find_message good-1)" Authentication-Results)
like "$AR" 'spf=pass .*dmarc=pass' "control: spf=pass and dmarc=pass in Authentication-Results"

# ------------------------------------------------------------ sender faults
for f in "down.test:silent (timeout)" "sf.test:SERVFAIL" \
	"tc.test:truncated (TC, no TCP)" "junk.test:garbage" \
	"late.test:answers after the timeout"; do
	dom=${f%%:*} what=${f#*:}
	id=fault-${dom%.test}
	deliver "$id" "$dom"
	is "$SEND_REPLY" "451 4.7.0 temporary failure in sender authentication, please retry later" \
		"$what: 451 4.7.0 from the shipped authfail rule" || diag_send
	if find_message "$id" >/dev/null 2>&1; then fail "$what: nothing delivered"
	else pass "$what: nothing delivered"
	fi
	ok "$what: the log line is written" poll 50 0.1 _logged "$dom"
	like "$(log_line "$dom")" 'rule=authfail' "$what: the log line names rule=authfail"
done
ok "the DNS server saw the SPF query of down.test (it was asked, and stayed silent)" \
	grep -q '^query down.test TXT' "$DNSLOG"
ok "the DNS server truncated answers for tc.test" grep -q '^query tc.test TXT' "$DNSLOG"

# the late answers arrive now, after the client got its reply
kill -USR1 "$DNS_PID"
_released() { grep -q '^released [1-9][0-9]* late' "$DNSLOG"; }
ok "the late answers were sent after the reply" poll 100 0.1 _released
deliver good-2 good.test
is "$SEND_CODE" 250 "after the late answers: a good sender is still accepted" || diag_send
ok "after the late answers: ... and delivered" delivered good-2

# ------------------------------------------------------------ server down
stop_pid "$DNS_PID" TERM 50
deliver down-1 good.test
# a new sender: nothing of it is cached
deliver down-2 other.test
is "$SEND_REPLY" "451 4.7.0 temporary failure in sender authentication, please retry later" \
	"DNS server stopped: 451 4.7.0 for a sender not in the cache" || diag_send
if find_message down-2 >/dev/null 2>&1; then fail "DNS server stopped: nothing delivered"
else pass "DNS server stopped: nothing delivered"
fi
start_dns 2
# a name whose lookup failed is answered SERVFAIL from libunbound's cache
# for 5 s (RFC 2308 section 7.1 allows 5 minutes); any other is asked
deliver up-1 third.test
is "$SEND_CODE" 250 "DNS server back: accepted again" || diag_send
ok "DNS server back: ... and delivered" delivered up-1

ok "portcullis is still running" pid_alive "$PORTCULLIS_PID"
stop_portcullis
is "$PORTCULLIS_STATUS" 0 "portcullis exits 0 on SIGTERM"
[ "$_tap_failed" -gt 0 ] && diag_file "$PORTCULLIS_LOG" 40
done_testing
