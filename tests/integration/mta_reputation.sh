#!/bin/bash
# mta_reputation.sh - blocklists and GeoIP end to end: real Postfix, the
# portcullis daemon attached by contrib/postfix-main.cf.snippet, a DNS server
# on loopback (dnsbl_dns.py), a GeoIP database built at test time
# (tests/data/geoip/make-mmdb.pl).  The client address is set per session
# with Postfix's XCLIENT (smtpd_authorized_xclient_hosts), which Postfix
# hands to the milter as the client.
#  (1) a client on a listed IPv4 address: 550 5.7.1 naming the zone, in
#      reply to RCPT TO (the rule is first: decided at connect, answered at
#      RCPT), nothing delivered;
#  (2) zone health: the zone starts listing 127.0.0.1 (as a list whose
#      domain expired and got a wildcard does); the prober takes it out of
#      use (logged) and the same client is delivered; the zone is repaired;
#      the prober puts it back (logged) and the client is refused again;
#  (3) GeoIP: a client whose address the test database places in BR is
#      refused by a client.country rule; one placed in NL is delivered;
#      client.asn from an ASN database (geoip_asn_db) decides a rule;
#  (4) a message with a link whose domain a uribl zone lists is refused in
#      reply to the end of DATA (uribl facts are known at end of message);
#      the same message with a clean link is delivered; links to a domain
#      (a subdomain of it) or an address (in a network) of a deny list
#      file are refused by a url.domains rule;
#  (5) staging (DESIGN.md section 3): with a rule that reads dmarc placed
#      before the dnsbl rule (SIGHUP with the new policy), the listed client
#      is refused only in reply to the end of DATA, and the log says
#      stage=eom; (1) showed the dnsbl rule first refusing at RCPT TO.
. "$(dirname "$0")/lib.sh"

have_portcullis || skip_all "portcullis is not built ($PORTCULLIS)"
PY=/usr/bin/python3
[ -x "$PY" ] || skip_all "no $PY"
perl -MMaxMind::DB::Writer::Tree -e 1 2>/dev/null ||
	skip_all "no MaxMind::DB::Writer (libmaxmind-db-writer-perl)"

ETC=$TEST_TMP/etc
mkdir -p "$ETC" "$TEST_TMP/geo" "$TEST_TMP/msg"
perl "$abs_top_srcdir/tests/data/geoip/make-mmdb.pl" "$TEST_TMP/geo" \
	>"$TEST_TMP/geo/make.log" 2>&1 ||
	{ diag_file "$TEST_TMP/geo/make.log"; bail_out "make-mmdb.pl failed"; }

# ------------------------------------------------------------ DNS
ZONE=$ETC/zone.txt
DNSLOG=$TEST_TMP/dns.log
write_zone() {	# write_zone [broken]: bl.test healthy, or listing 127.0.0.1
	cat >"$ZONE" <<'EOF'
2.0.0.127.bl.test A 127.0.0.2
99.2.0.192.bl.test A 127.0.0.4
99.2.0.192.bl.test TXT "see https://bl.test/lookup"
test.uri.test A 127.0.0.2
spamvertised.com.uri.test A 127.0.0.2
EOF
	[ "${1:-}" = broken ] && echo "1.0.0.127.bl.test A 127.0.0.2" >>"$ZONE"
	return 0
}
write_zone
"$PY" "$abs_top_srcdir/tests/integration/dnsbl_dns.py" "$PORT_DNS" "$ZONE" \
	"$DNSLOG" </dev/null >"$TEST_TMP/dns.out" 2>&1 &
DNS_PID=$!
_track dnsbl_dns "$DNS_PID"
_dns_line() { grep -qx "$1" "$DNSLOG" 2>/dev/null; }
poll 100 0.05 _dns_line listening || { diag_file "$TEST_TMP/dns.out"; bail_out "dnsbl_dns.py does not start"; }
# dns_reload N: the server re-reads the zone file (its N-th reload)
dns_reload() {
	kill -HUP "$DNS_PID"
	poll 100 0.05 _dns_line "reloaded $1" || bail_out "dnsbl_dns.py did not reload"
}

# ------------------------------------------------------------ portcullis
cat >"$ETC/policy.rules" <<'EOF'
# mta_reputation.sh
dnsbl bl.test codes 127.0.0.2-127.0.0.11
uribl uri.test
rule geo:   when client.country is "BR" then reject "5.7.1 no mail from %{client.country}"
rule asn:   when client.asn == 64500 and helo is "asn.ext.test" then reject "5.7.1 no mail from AS%{client.asn}"
rule dnsbl: when dnsbl.listed then reject "5.7.1 %{client.ip} is listed by %{dnsbl.zone}"
rule uri:   when uribl.listed then reject "5.7.1 link to %{uribl.domains} is listed"
list bad_links file "bad_links.txt"
rule links: when url.domains in bad_links then reject "5.7.1 link to a blocked domain"
default accept
EOF
printf '%s\n' '# mta_reputation.sh: link domains refused' blocked-shop.com 203.0.113.0/24 \
	>"$ETC/bad_links.txt"
cat >"$ETC/portcullis.conf" <<EOF
socket      = inet:$PORT_MILTER@127.0.0.1
policy      = policy.rules
authserv_id = mx.corp.test
resolver    = 127.0.0.1:$PORT_DNS
dns_timeout = 3s
dnsbl_probe_interval = 1s
geoip_db    = $TEST_TMP/geo/country.mmdb
geoip_asn_db = $TEST_TMP/geo/asn.mmdb
EOF
start_sink
start_portcullis "$ETC/portcullis.conf"
# XCLIENT moves the client out of mynetworks: corp.test is relayed for it
POSTFIX_MAIN_CF_EXTRA="smtpd_authorized_xclient_hosts = 127.0.0.0/8
relay_domains = corp.test"
start_postfix "inet:$PORT_MILTER@127.0.0.1"

# mkmsg FILE ID BODY
mkmsg() {
	printf 'From: Alice <alice@ext.test>\r\nTo: bob@corp.test\r\nSubject: %s\r\nX-Test-Id: %s\r\n\r\n%s\r\n' \
		"$2" "$2" "$3" >"$1"
}
# deliver ID CLIENT-IP [BODY]: one session from CLIENT-IP ($HELO or mx.ext.test)
deliver() {
	mkmsg "$TEST_TMP/msg/$1.eml" "$1" "${3:-hello}"
	send "$PORT_POSTFIX" --xclient-addr "$2" --helo "${HELO:-mx.ext.test}" \
		--from alice@ext.test --to bob@corp.test --data "@$TEST_TMP/msg/$1.eml"
}
# last_refusal_cmd: the command a 5xx answered (RCPT or the end of DATA)
refused_at() {
	awk '/^ *-> RCPT TO/ { c = "RCPT" } /^ *-> \.$/ { c = "DATA" }
		/^<\*\* +5[0-9][0-9]/ { print c; exit }' "$SEND_LOG"
}
delivered() { sent_message "$1" >/dev/null; }
log_has() { grep -q "$1" "$PORTCULLIS_LOG"; }

# ------------------------------------------------------------ (1)
deliver listed-1 192.0.2.99
is "$SEND_REPLY" "550 5.7.1 192.0.2.99 is listed by bl.test" \
	"(1) listed client: 550 5.7.1 naming the zone" || diag_send
is "$(refused_at)" RCPT "(1) refused in reply to RCPT TO" || diag_send
deliver clean-1 192.0.2.98
is "$SEND_CODE" 250 "(1) an unlisted client of the same network is accepted" || diag_send
ok "(1) ... and delivered" delivered clean-1

# ------------------------------------------------------------ (2)
write_zone broken
dns_reload 1
ok "(2) the prober takes the zone that lists 127.0.0.1 out of use" \
	poll 100 0.1 log_has 'dnsbl zone bl.test out of use: 127.0.0.1 is listed'
deliver listed-2 192.0.2.99
is "$SEND_CODE" 250 "(2) zone out of use: the listed client is accepted" || diag_send
ok "(2) ... and delivered" delivered listed-2
write_zone
dns_reload 2
ok "(2) the repaired zone is back in use (logged)" \
	poll 100 0.1 log_has 'dnsbl zone bl.test healthy again: back in use'
deliver listed-3 192.0.2.99
is "$SEND_REPLY" "550 5.7.1 192.0.2.99 is listed by bl.test" \
	"(2) zone back in use: the listed client is refused again" || diag_send

# ------------------------------------------------------------ (3)
deliver geo-br 198.51.100.7
is "$SEND_REPLY" "550 5.7.1 no mail from BR" "(3) a client placed in BR by the test .mmdb is refused" || diag_send
is "$(refused_at)" RCPT "(3) refused in reply to RCPT TO" || diag_send
deliver geo-nl 192.0.2.7
is "$SEND_CODE" 250 "(3) a client placed in NL is accepted" || diag_send
ok "(3) ... and delivered" delivered geo-nl
# client.asn from the ASN database: 192.0.2.0/24 is AS64500 there
HELO=asn.ext.test deliver geo-asn 192.0.2.7
is "$SEND_REPLY" "550 5.7.1 no mail from AS64500" "(3) client.asn from the test ASN .mmdb decides a rule" || diag_send

# ------------------------------------------------------------ (4)
deliver uri-bad 192.0.2.7 "Cheap watches at http://www.Spamvertised.com/offer?id=1 today"
is "$SEND_REPLY" "550 5.7.1 link to spamvertised.com is listed" \
	"(4) a message with a listed link is refused" || diag_send
is "$(refused_at)" DATA "(4) refused in reply to the end of DATA" || diag_send
deliver uri-good 192.0.2.7 "Our newsletter: https://news.example-clean.com/today"
is "$SEND_CODE" 250 "(4) a message with a clean link is accepted" || diag_send
ok "(4) ... and delivered" delivered uri-good
deliver link-deny 192.0.2.7 '<a href="https://Shop.Blocked-Shop.com/buy">buy</a> or http://0xCB.0.113.9/'
is "$SEND_REPLY" "550 5.7.1 link to a blocked domain" \
	"(4) a link to a subdomain of a domain of the deny list file is refused" || diag_send
deliver link-deny-ip 192.0.2.7 'see http://0xCB.0.113.9/x'
is "$SEND_REPLY" "550 5.7.1 link to a blocked domain" \
	"(4) a link to an address (hex-obfuscated) in a network of the list is refused" || diag_send

# ------------------------------------------------------------ (5)
sed -i 's/^rule dnsbl:/rule dmarc: when dmarc is fail and dmarc.policy is reject then reject "5.7.1 DMARC"\n&/' \
	"$ETC/policy.rules"
_reloads() { grep -c ' reloaded ' "$PORTCULLIS_LOG"; }
r0=$(_reloads)
kill -HUP "$PORTCULLIS_PID"
_reloaded() { [ "$(_reloads)" -gt "$r0" ]; }
ok "(5) the policy with the dmarc rule first is loaded (SIGHUP)" poll 100 0.1 _reloaded
deliver listed-4 192.0.2.99
is "$SEND_REPLY" "550 5.7.1 192.0.2.99 is listed by bl.test" \
	"(5) dmarc rule first: the listed client is still refused, by the dnsbl rule" || diag_send
is "$(refused_at)" DATA "(5) ... but only in reply to the end of DATA" || diag_send
_log4() { grep 'client=192.0.2.99 ' "$PORTCULLIS_LOG" | grep ' rule=dnsbl stage=eom ' | grep -q .; }
ok "(5) the log line says rule=dnsbl stage=eom" poll 50 0.1 _log4

for id in listed-1 listed-3 geo-br geo-asn uri-bad link-deny link-deny-ip listed-4; do
	if find_message "$id" >/dev/null 2>&1; then fail "refused $id was not delivered"
	else pass "refused $id was not delivered"
	fi
done
ok "portcullis is still running" pid_alive "$PORTCULLIS_PID"
[ "$_tap_failed" -gt 0 ] && diag_file "$PORTCULLIS_LOG" 30
done_testing
