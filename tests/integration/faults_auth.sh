#!/bin/bash
# faults_auth.sh - DNS faults in SPF, DKIM and DMARC lookups, end to end:
# real Postfix, the daemon with the SHIPPED rules/default.policy (its
# placeholders made ours), a DNS server on loopback (dnsbl_dns.py) that
# answers SERVFAIL or stays silent for chosen names, a DKIM key made at
# test time, messages signed by dkimpy.  Each fault leaves the other two
# checks working, so each assertion isolates one lookup:
#  - the SPF record of the MAIL FROM domain (SERVFAIL, timeout): the
#    shipped rule "authfail" answers 451 4.7.0; with the message let
#    through (the policy without that rule), the A-R says spf=temperror
#    beside dkim=pass and dmarc=pass;
#  - the DKIM key (SERVFAIL, timeout), SPF passing but not aligned: the
#    signature is dkim=temperror and DMARC, which that aligned signature
#    might have passed, is temperror, not fail: 451 4.7.0, never the
#    550 of the rule "dmarc" (p=reject);
#  - the _dmarc record (SERVFAIL, timeout), SPF and DKIM passing:
#    dmarc=temperror, 451 4.7.0 - not accepted, not rejected;
#  - nothing of a faulty message is delivered; the daemon keeps running.
. "$(dirname "$0")/lib.sh"

have_portcullis || skip_all "portcullis is not built ($PORTCULLIS)"
PY=/usr/bin/python3
[ -x "$PY" ] || skip_all "no $PY"
"$PY" -c 'import dkim' 2>/dev/null || skip_all "no dkimpy for $PY (python3-dkim)"
command -v openssl >/dev/null || skip_all "no openssl"

ETC=$TEST_TMP/etc
MSG=$TEST_TMP/msg
KEYS=$TEST_TMP/keys
mkdir -p "$ETC" "$MSG" "$KEYS"

# ------------------------------------------------------------ DKIM key
# 1024 bits: the key record fits one TXT character-string, which is all
# dnsbl_dns.py serves
openssl genrsa -out "$KEYS/sel.pem" 1024 2>"$KEYS/genrsa.log" ||
	bail_out "openssl genrsa failed: $(cat "$KEYS/genrsa.log")"
PUB=$(openssl rsa -in "$KEYS/sel.pem" -pubout -outform DER 2>/dev/null | base64 -w0)
[ -n "$PUB" ] || bail_out "cannot extract the public key"
KEY_TXT="v=DKIM1; k=rsa; p=$PUB"

# ------------------------------------------------------------ DNS
# Domains (each From domain publishes p=reject):
#   good.test   control: SPF, key and DMARC all answer
#   spft.test   MAIL FROM bounce.spft.test SERVFAIL, bounce2.spft.test silent
#   dkt.test    key SERVFAIL; dkt2.test key silent; MAIL FROM relay.test
#   dmt.test    _dmarc SERVFAIL; dmt2.test _dmarc silent
ZONE=$ETC/zone.txt
DNSLOG=$TEST_TMP/dns.log
{
	echo 'relay.test TXT "v=spf1 ip4:192.0.2.0/24 -all"'
	for d in good spft dkt dkt2 dmt dmt2; do
		echo "$d.test TXT \"v=spf1 ip4:192.0.2.0/24 -all\""
		echo "_dmarc.$d.test TXT \"v=DMARC1; p=reject\""
		echo "sel._domainkey.$d.test TXT \"$KEY_TXT\""
	done
	echo 'servfail bounce.spft.test'
	echo 'silent bounce2.spft.test'
	echo 'servfail _domainkey.dkt.test'
	echo 'silent _domainkey.dkt2.test'
	echo 'servfail _dmarc.dmt.test'
	echo 'silent _dmarc.dmt2.test'
} >"$ZONE"
"$PY" "$abs_top_srcdir/tests/integration/dnsbl_dns.py" "$PORT_DNS" \
	"$ZONE" "$DNSLOG" </dev/null >>"$TEST_TMP/dns.out" 2>&1 &
DNS_PID=$!
_track dnsbl_dns "$DNS_PID"
_dns_started() { grep -q '^listening$' "$DNSLOG" 2>/dev/null; }
poll 100 0.05 _dns_started ||
	{ diag_file "$TEST_TMP/dns.out"; bail_out "dnsbl_dns.py does not start"; }

# ------------------------------------------------------------ portcullis
test_conf "$ETC/portcullis.conf" "inet:$PORT_MILTER@127.0.0.1" "greylist_store = lmdb:$TEST_TMP/greylist"
# the shipped policy, its placeholders made ours, its blocklists pointed
# at names the DNS server answers NXDOMAIN (listed nowhere)
shipped_policy >"$ETC/shipped.rules"
cp "$ETC/shipped.rules" "$ETC/policy.rules"
ok "the edited shipped policy loads" "$PORTCULLIS" -n -c "$ETC/portcullis.conf"
grep -q '^rule authfail:.*spf is temperror or dmarc is temperror' "$ETC/policy.rules" ||
	bail_out "the shipped policy has no authfail rule on spf/dmarc temperror"
start_sink
start_portcullis "$ETC/portcullis.conf"
# greylisting is not under test: the test network and the SPF-passing
# sender domains have passed it before
for id in 192.0.2.0/24 spf:good.test spf:relay.test spf:dmt.test \
	spf:dmt2.test; do
	ok "greylist allow --network $id" \
		"$PORTCULLIS" greylist -c "$ETC/portcullis.conf" allow --network "$id"
done
POSTFIX_MAIN_CF_EXTRA="smtpd_authorized_xclient_hosts = 127.0.0.0/8
relay_domains = corp.test"
start_postfix "inet:$PORT_MILTER@127.0.0.1"

# deliver ID FROM-DOMAIN MAILFROM-DOMAIN: a message From alice@FROM-DOMAIN,
# DKIM-signed d=FROM-DOMAIN s=sel by dkimpy, sent from 192.0.2.7 with
# MAIL FROM alice@MAILFROM-DOMAIN.
deliver() {
	printf 'From: Alice <alice@%s>\r\nTo: bob@corp.test\r\nSubject: %s\r\nX-Test-Id: %s\r\n\r\nhello\r\n' \
		"$2" "$1" "$1" >"$MSG/$1.plain"
	"$PY" - "$MSG/$1.plain" "$MSG/$1.eml" "$KEYS/sel.pem" "$2" <<'EOF' ||
import sys, dkim
msg = open(sys.argv[1], "rb").read()
key = open(sys.argv[3], "rb").read()
sig = dkim.sign(msg, b"sel", sys.argv[4].encode(), key,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=[b"from", b"to", b"subject", b"x-test-id"])
open(sys.argv[2], "wb").write(sig + msg)
EOF
		bail_out "dkimpy cannot sign"
	send "$PORT_POSTFIX" --xclient-addr 192.0.2.7 --helo mx.relay.test \
		--from "alice@$3" --to bob@corp.test --data "@$MSG/$1.eml"
}
delivered() { sent_message "$1" >/dev/null; }
log_line() { grep "mail_from=<\?alice@$1" "$PORTCULLIS_LOG" | tail -n 1; }
_logged() { [ -n "$(log_line "$1")" ]; }
ar_of() { header_of "$(find_message "$1")" Authentication-Results; }

TEMPFAIL="451 4.7.0 temporary failure in sender authentication, please retry later"
# the faults: ID FROM MAILFROM WHAT
FAULTS="spf-sf spft.test bounce.spft.test SPF-record-SERVFAIL
spf-to spft.test bounce2.spft.test SPF-record-timeout
dkim-sf dkt.test relay.test DKIM-key-SERVFAIL
dkim-to dkt2.test relay.test DKIM-key-timeout
dmarc-sf dmt.test dmt.test _dmarc-SERVFAIL
dmarc-to dmt2.test dmt2.test _dmarc-timeout"

# ------------------------------------------------------------ control
deliver good-1 good.test good.test
is "$SEND_CODE" 250 "control: all lookups answer: accepted" || diag_send
ok "control: ... and delivered" delivered good-1
like "$(ar_of good-1)" 'spf=pass .*dkim=pass \(1024-bit key\) header\.d=good\.test .*dmarc=pass \(p=reject sp=reject dis=none\) header\.from=good\.test' \
	"control: spf, dkim and dmarc pass in Authentication-Results"

# ------------------------------------------------------------ shipped policy
while read -r id from mf what; do
	what=${what//-/ }
	deliver "$id" "$from" "$mf"
	is "$SEND_REPLY" "$TEMPFAIL" "$what: 451 4.7.0 from the shipped authfail rule (not 250, not 550)" ||
		diag_send
	if find_message "$id" >/dev/null 2>&1; then fail "$what: nothing delivered"
	else pass "$what: nothing delivered"
	fi
	ok "$what: the log line is written" poll 50 0.1 _logged "$mf"
	like "$(log_line "$mf")" 'rule=authfail' "$what: the log line names rule=authfail"
done <<<"$FAULTS"
ok "the DNS server was asked for the DKIM key of dkt.test" \
	grep -q '^query sel._domainkey.dkt.test TXT' "$DNSLOG"
ok "the DNS server was asked for _dmarc.dmt2.test (and stayed silent)" \
	grep -q '^query _dmarc.dmt2.test TXT' "$DNSLOG"

# ------------------------------------------------------------ let through
# The same policy without its authfail rule (reloaded by SIGHUP): the
# messages are delivered and their Authentication-Results show each
# temperror; nothing else in the shipped policy refuses them.
sed '/^rule authfail:/d' "$ETC/shipped.rules" >"$ETC/policy.rules"
nreload=$(grep -c 'reloaded ' "$PORTCULLIS_LOG")
kill -HUP "$PORTCULLIS_PID"
_reloaded() { [ "$(grep -c 'reloaded ' "$PORTCULLIS_LOG")" -gt "$nreload" ]; }
ok "SIGHUP: the policy without authfail is loaded" poll 100 0.1 _reloaded ||
	diag_file "$PORTCULLIS_LOG" 20

# expected A-R fragments, by fault id
declare -A EXPECT=(
	[spf-sf]='spf=temperror smtp\.mailfrom=alice@bounce\.spft\.test.*dkim=pass .*dmarc=pass \(p=reject sp=reject dis=none\) header\.from=spft\.test'
	[spf-to]='spf=temperror smtp\.mailfrom=alice@bounce2\.spft\.test.*dkim=pass .*dmarc=pass \(p=reject sp=reject dis=none\) header\.from=spft\.test'
	[dkim-sf]='spf=pass smtp\.mailfrom=alice@relay\.test.*dkim=temperror .*header\.d=dkt\.test .*dmarc=temperror \(p=reject sp=reject\) header\.from=dkt\.test'
	[dkim-to]='spf=pass smtp\.mailfrom=alice@relay\.test.*dkim=temperror .*header\.d=dkt2\.test .*dmarc=temperror \(p=reject sp=reject\) header\.from=dkt2\.test'
	[dmarc-sf]='spf=pass .*dkim=pass .*header\.d=dmt\.test.*dmarc=temperror header\.from=dmt\.test'
	[dmarc-to]='spf=pass .*dkim=pass .*header\.d=dmt2\.test.*dmarc=temperror header\.from=dmt2\.test'
)
while read -r id from mf what; do
	what=${what//-/ }
	deliver "$id-2" "$from" "$mf"
	is "$SEND_CODE" 250 "$what, no authfail rule: accepted" || diag_send
	if ok "$what, no authfail rule: delivered" delivered "$id-2"; then
		like "$(ar_of "$id-2")" "${EXPECT[$id]}" "$what: Authentication-Results" ||
			diag "$(ar_of "$id-2")"
	else
		fail "$what: Authentication-Results"
	fi
done <<<"$FAULTS"

ok "portcullis is still running" pid_alive "$PORTCULLIS_PID"
stop_portcullis
is "$PORTCULLIS_STATUS" 0 "portcullis exits 0 on SIGTERM"
[ "$_tap_failed" -gt 0 ] && diag_file "$PORTCULLIS_LOG" 40
done_testing
