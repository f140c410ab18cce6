#!/bin/bash
# zone_health.sh - RFC 5782 section 5 zone health, every way a list fails,
# through the daemon (milter_client.py as the MTA) and a DNS server on
# loopback (dnsbl_dns.py) that plays one broken list per zone.  Every
# zone below also lists the test client, so a zone still in use shows up
# in the reply ("listed by ..."):
#  - good.test         healthy: stays in use, its listing refuses the client;
#  - notest.test       127.0.0.2 (the test entry) not listed;
#  - errtest.test      127.0.0.2 answered with an error code (127.255.255.254);
#  - everything.test   127.0.0.1 listed: the list lists everything;
#  - silent.test       never answers (timeout);
#  - servfail.test     SERVFAIL;
#  - u-good.test, u-all.test   uribl zones: INVALID listed = lists everything.
# Each broken zone is logged out of use with its reason exactly once, even
# after several probe rounds; its metrics gauge is 0 and its lookups are
# counted "unused"; the good zones stay in use.  Then a zone whose probes
# pass but whose answer to a lookup is an error code: not a listing, counted
# "error-answer" in the metrics, logged; the prober puts it back.
. "$(dirname "$0")/lib.sh"

have_portcullis || skip_all "portcullis is not built ($PORTCULLIS)"
PY=/usr/bin/python3
[ -x "$PY" ] || skip_all "no $PY"
command -v curl >/dev/null || skip_all "no curl"

ETC=$TEST_TMP/etc
mkdir -p "$ETC"
ZONE=$ETC/zone.txt
DNSLOG=$TEST_TMP/dns.log
CLIENT=10.2.0.192	# 192.0.2.10 reversed
{
	for z in good notest errtest everything silent servfail errlook; do
		echo "$CLIENT.$z.test A 127.0.0.2"
	done
	echo "2.0.0.127.good.test A 127.0.0.2"
	echo "2.0.0.127.errtest.test A 127.255.255.254"
	echo "2.0.0.127.everything.test A 127.0.0.2"
	echo "1.0.0.127.everything.test A 127.0.0.2"
	echo "2.0.0.127.errlook.test A 127.0.0.2"
	echo "20.2.0.192.errlook.test A 127.255.255.254"
	echo "silent silent.test"
	echo "servfail servfail.test"
	echo "test.u-good.test A 127.0.0.2"
	echo "test.u-all.test A 127.0.0.2"
	echo "invalid.u-all.test A 127.0.0.2"
	echo "spamvertised.example.u-good.test A 127.0.0.2"
	echo "spamvertised.example.u-all.test A 127.0.0.2"
} >"$ZONE"
"$PY" "$abs_top_srcdir/tests/integration/dnsbl_dns.py" "$PORT_DNS" "$ZONE" \
	"$DNSLOG" </dev/null >"$TEST_TMP/dns.out" 2>&1 &
_track dnsbl_dns $!
_dns_listening() { grep -q '^listening' "$DNSLOG" 2>/dev/null; }
poll 100 0.05 _dns_listening || { diag_file "$TEST_TMP/dns.out"; bail_out "dnsbl_dns.py does not start"; }

METRICS=$PORT_SPARE
cat >"$ETC/policy.rules" <<'EOF'
dnsbl good.test
dnsbl notest.test
dnsbl errtest.test
dnsbl everything.test
dnsbl silent.test
dnsbl servfail.test
uribl u-good.test
uribl u-all.test
rule dnsbl: when dnsbl.listed then reject "5.7.1 listed by %{dnsbl.zones}"
rule uri:   when uribl.listed then reject "5.7.1 link %{uribl.domains} listed"
default accept
EOF
cat >"$ETC/portcullis.conf" <<EOF
socket      = inet:$PORT_MILTER@127.0.0.1
policy      = policy.rules
authserv_id = mx.corp.test
resolver    = 127.0.0.1:$PORT_DNS
dns_timeout = 1s
dnsbl_probe_interval = 1s
metrics     = 127.0.0.1:$METRICS
EOF
start_portcullis "$ETC/portcullis.conf"

log_has() { grep -q -F "$1" "$PORTCULLIS_LOG"; }
log_count() { grep -c -F "$1" "$PORTCULLIS_LOG"; }
queries() { grep -c -x -F "query $1" "$DNSLOG"; }
probed_at_least() { [ "$(queries "$1")" -ge "$2" ]; }
scrape() { curl -s --max-time 10 "http://127.0.0.1:$METRICS/metrics"; }
metric() {	# metric NAME-WITH-LABELS: its value, or "absent"
	scrape >"$TEST_TMP/metrics.txt"
	awk -v n="$1" '$1 == n { print $2; f = 1 } END { if (!f) print "absent" }' \
		"$TEST_TMP/metrics.txt"
}
send() {	# send IP BODY: milter_client JSON in $J
	J=$("$PY" "$abs_top_srcdir/tests/integration/milter_client.py" \
		"inet:$PORT_MILTER@127.0.0.1" message --ip "$1" --body "$2" 2>"$TEST_TMP/client.err")
}
jget() { "$PY" -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$J" "$1"; }

# ------------------------------------------------------------ out of use
declare -A WHY=(
	[dnsbl zone notest.test]="test entry 127.0.0.2 is not listed"
	[dnsbl zone errtest.test]="test entry answered with error code 127.255.255.254"
	[dnsbl zone everything.test]="127.0.0.1 is listed (127.0.0.2): the zone lists everything"
	[dnsbl zone silent.test]="not answering (timeout)"
	[dnsbl zone servfail.test]="not answering (server failure)"
	[uribl zone u-all.test]="INVALID is listed (127.0.0.2): the zone lists everything"
)
for z in "${!WHY[@]}"; do
	ok "$z taken out of use: ${WHY[$z]}" \
		poll 200 0.05 log_has "$z out of use: ${WHY[$z]}"
done
# Several probe rounds later (the prober asks every zone each round),
# every broken zone is still logged once, not once per round.
ok "the prober has run at least 4 rounds" \
	poll 400 0.05 probed_at_least "2.0.0.127.notest.test A" 4
ok "... and so has the silent zone's probe" \
	poll 400 0.05 probed_at_least "2.0.0.127.silent.test A" 4
for z in "${!WHY[@]}"; do
	is "$(log_count "$z out of use")" 1 "$z: logged once, not once per probe round"
done
is "$(log_count "zone good.test out of use")" 0 "the healthy dnsbl zone stays in use"
is "$(log_count "zone u-good.test out of use")" 0 "the healthy uribl zone stays in use"
for z in notest errtest everything silent servfail; do
	is "$(metric "portcullis_zone_healthy{kind=\"dnsbl\",zone=\"$z.test\"}")" 0 \
		"metrics: $z.test unhealthy"
done
is "$(metric 'portcullis_zone_healthy{kind="dnsbl",zone="good.test"}')" 1 "metrics: good.test healthy"
is "$(metric 'portcullis_zone_healthy{kind="uribl",zone="u-all.test"}')" 0 "metrics: u-all.test unhealthy"
is "$(metric 'portcullis_zone_healthy{kind="uribl",zone="u-good.test"}')" 1 "metrics: u-good.test healthy"

# A client every zone lists: only the zone in use names it.
send 192.0.2.10 "hello"
# (a connect decision is answered at RCPT, as Postfix's smtpd_delay_reject)
like "$(jget 'j["rcpt_replies"][0]')" '^550 5\.7\.1 listed by good\.test$' \
	"a client all zones list is refused by the healthy zone alone" || diag "$J"
for z in notest errtest everything servfail silent; do
	is "$(queries "$CLIENT.$z.test A")" 0 "$z.test (out of use) is not asked about the client"
	is "$(metric "portcullis_dnsbl_lookups_total{zone=\"$z.test\",result=\"unused\"}")" 1 \
		"metrics: $z.test counted unused"
done
send 192.0.2.11 "see http://www.spamvertised.example/offer"
like "$(jget 'j["reply"]')" '^550 5\.7\.1 link spamvertised\.example listed$' \
	"a link both uribl zones list is refused by the healthy zone alone"
is "$(queries "spamvertised.example.u-all.test A")" 0 "u-all.test (out of use) is not asked"

# ------------------------------------------------------------ error answer
# errlook.test passes its probes, but answers a lookup with 127.255.255.254
# (a list refusing the query): not a listing; counted and logged.
sed -i 's/^dnsbl servfail.test$/dnsbl servfail.test\ndnsbl errlook.test/' "$ETC/policy.rules"
kill -HUP "$PORTCULLIS_PID"
ok "the policy with errlook.test is loaded" poll 200 0.05 probed_at_least "2.0.0.127.errlook.test A" 1
send 192.0.2.20 "hello"
is "$(jget 'j["action"]')" accept "an error answer is not a listing: the client is accepted"
is "$(metric 'portcullis_dnsbl_lookups_total{zone="errlook.test",result="error-answer"}')" 1 \
	"metrics: the error answer is counted as one"
is "$(metric 'portcullis_dnsbl_lookups_total{zone="errlook.test",result="listed"}')" 0 \
	"metrics: and not as a listing"
ok "the error answer is logged with its zone" \
	poll 200 0.05 log_has "dnsbl zone errlook.test out of use: error answer to a lookup"
ok "the prober, finding its test entries right, puts it back in use" \
	poll 200 0.05 log_has "dnsbl zone errlook.test healthy again: back in use"

done_testing
