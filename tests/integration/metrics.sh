#!/bin/bash
# metrics.sh - the Prometheus metrics page end to end: real Postfix with
# the portcullis daemon attached by contrib/postfix-main.cf.snippet, a DNS
# server on loopback (dnsbl_dns.py: SPF, DMARC, a dnsbl and a uribl zone),
# an LMDB greylist store, and curl scraping http://127.0.0.1:PORT/metrics.
# Every page scraped must pass prom_check.py (a strict checker of the text
# exposition format 0.0.4, itself shown to refuse broken pages first).
#  (1) the listener: GET /metrics 200 with the 0.0.4 content type, any
#      other path or method 404; before any mail every message counter is 0
#      and both zones are healthy (their probes passed);
#  (2) known traffic, one SMTP session each from 127.0.0.1:
#        1 accepted (default) with a clean link      -> eom
#        2 refused by rule "blocked" (sender)        -> at RCPT
#        3 tempfailed by rule "later" (sender)       -> at RCPT
#        4 refused by rule "uri" (a listed link)     -> at end of DATA
#        5, 6 tempfailed by rule "grey": greylist new, then early
#      and the exact counters that follow from the policy: messages by
#      action and by rule, SPF pass 4 (1, 4 at RCPT; 5, 6 for the greylist
#      identity), DKIM none and DMARC pass 1 (Authentication-Results of 1
#      only), dnsbl clean 6 (one lookup a connection), uribl clean 1 and
#      listed 1, greylist new 1 and early 1, stage histogram counts
#      (connect/mail/rcpt 6, eoh/eom 2), DNS queries and answers > 0;
#  (3) during a delivery: a client holds message 7 in the middle of DATA;
#      the page shows it in flight and its connection open; released, it
#      is delivered and counted (accept 2, in flight 0);
#  (4) zone health: bl.test starts listing 127.0.0.1, the prober takes it
#      out of use and the gauge goes to 0; repaired, back to 1;
#  (5) SIGHUP with a new policy and a new metrics port: the page moves
#      (old port closed), the rule that left the policy leaves the page,
#      the new rule appears at 0, the counts of the others are kept,
#      reloads ok 1; a broken policy then counts reloads failed 1 and the
#      page stays.
. "$(dirname "$0")/lib.sh"

have_portcullis || skip_all "portcullis is not built ($PORTCULLIS)"
PY=/usr/bin/python3
[ -x "$PY" ] || skip_all "no $PY"
command -v curl >/dev/null || skip_all "no curl"
CHECK=$abs_top_srcdir/tests/integration/prom_check.py

# ------------------------------------------------------------ the checker
# It must refuse what a broken page looks like, or its "ok" means nothing.
bad_page() {	# bad_page DESC TEXT: prom_check.py refuses TEXT
	if printf '%s' "$2" | "$PY" "$CHECK" - >"$TEST_TMP/check.out" 2>&1; then
		fail "prom_check refuses $1" "$(cat "$TEST_TMP/check.out")"
	else
		pass "prom_check refuses $1"
	fi
}
H='# HELP x_total X.
# TYPE x_total counter
'
HH='# HELP h H.
# TYPE h histogram
'
good="$H"'x_total{a="b \"q\" \\ \n"} 1
'"$HH"'h_bucket{le="0.5"} 1
h_bucket{le="+Inf"} 2
h_sum 0.7
h_count 2
'
printf '%s' "$good" >"$TEST_TMP/good.prom"
ok "prom_check accepts a valid page" eval '"$PY" "$CHECK" "$TEST_TMP/good.prom" >/dev/null'
bad_page "a counter without _total" '# HELP x X.
# TYPE x counter
x 1
'
bad_page "a sample before its TYPE" 'x_total 1
'"$H"
bad_page "a bad escape in a label value" "$H"'x_total{a="\t"} 1
'
bad_page "a label given twice" "$H"'x_total{a="1",a="2"} 1
'
bad_page "a series given twice" "$H"'x_total{a="1"} 1
x_total{a="1"} 2
'
bad_page "a value that is not a number" "$H"'x_total 1,5
'
bad_page "a negative counter" "$H"'x_total -1
'
bad_page "buckets that are not cumulative" "$HH"'h_bucket{le="1"} 2
h_bucket{le="+Inf"} 1
h_sum 1
h_count 1
'
bad_page "a _count other than the +Inf bucket" "$HH"'h_bucket{le="+Inf"} 2
h_sum 1
h_count 3
'
bad_page "a histogram without +Inf" "$HH"'h_bucket{le="1"} 2
h_sum 1
h_count 2
'
bad_page "a family split in two" "$H"'x_total{a="1"} 1
# HELP y Y.
# TYPE y gauge
y 1
x_total{a="2"} 1
'
bad_page "a missing final newline" "$H"'x_total 1'

# ------------------------------------------------------------ DNS
ETC=$TEST_TMP/etc
mkdir -p "$ETC" "$TEST_TMP/msg"
ZONE=$ETC/zone.txt
DNSLOG=$TEST_TMP/dns.log
write_zone() {	# write_zone [broken]: bl.test healthy, or listing 127.0.0.1
	cat >"$ZONE" <<'EOF'
ttl 300 ext.test
ext.test TXT "v=spf1 ip4:127.0.0.1 -all"
_dmarc.ext.test TXT "v=DMARC1; p=reject"
2.0.0.127.bl.test A 127.0.0.2
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
dns_reload() {	# dns_reload N: the server re-reads the zone file (its N-th)
	kill -HUP "$DNS_PID"
	poll 100 0.05 _dns_line "reloaded $1" || bail_out "dnsbl_dns.py did not reload"
}

# ------------------------------------------------------------ portcullis
M1=$PORT_SPARE
M2=$((PORT_SPARE + 1))
port_free "$M2" || bail_out "port $M2 is in use"
cat >"$ETC/policy.rules" <<'EOF'
# metrics.sh
dnsbl bl.test codes 127.0.0.2-127.0.0.11
uribl uri.test
rule listed:  when dnsbl.listed then reject "5.7.1 %{client.ip} is listed"
rule blocked: when mail_from is "spam@bad.test" then reject "5.7.1 sender blocked by test"
rule later:   when mail_from is "later@ext.test" then tempfail "4.7.1 try again later"
rule grey:    when rcpt is "grey@corp.test" and (greylist is new or greylist is early) then tempfail "4.7.1 greylisted, please retry later"
rule spf:     when spf is fail then reject "5.7.1 SPF fail"
rule uri:     when uribl.listed then reject "5.7.1 link to %{uribl.domains} is listed"
rule watch monitor: when subject contains "never" then reject
default accept
EOF
write_conf() {	# write_conf METRICS_PORT
	cat >"$ETC/portcullis.conf" <<EOF
socket      = inet:$PORT_MILTER@127.0.0.1
policy      = policy.rules
authserv_id = mx.corp.test
resolver    = 127.0.0.1:$PORT_DNS
dns_timeout = 3s
dnsbl_probe_interval = 1s
greylist_store = lmdb:$TEST_TMP/grey
metrics     = 127.0.0.1:$1
EOF
}
write_conf "$M1"
start_sink
start_portcullis "$ETC/portcullis.conf"
ok "the metrics listener is up with the daemon" port_listening "$M1"
start_postfix "inet:$PORT_MILTER@127.0.0.1"

# scrape: the page into $PAGE (a file), checked by prom_check.py; status 1
# when it cannot be had or is invalid (why: diag_scrape).
_scrapes=0
scrape() {
	_scrapes=$((_scrapes + 1))
	PAGE=$TEST_TMP/scrape.$_scrapes
	curl -sS --max-time 10 -o "$PAGE" "http://127.0.0.1:$M1/metrics" \
		>"$PAGE.check" 2>&1 || return 1
	"$PY" "$CHECK" "$PAGE" >"$PAGE.check" 2>&1
}
diag_scrape() { diag_file "$PAGE.check" 20; }
# valid_scrape DESC: an assertion that a fresh page is valid
valid_scrape() { ok "$1" scrape || diag_scrape; }
# value SERIES: the value of one series (name{labels} exactly as printed)
# in the last scrape; empty when absent.
value() { awk -v k="$1" '$1 == k { print $2; exit }' "$PAGE"; }
# is_metric SERIES EXPECTED DESC
is_metric() { is "$(value "$1")" "$2" "$3"; }
# wait_metric SERIES EXPECTED: scrape until SERIES has the value (bounded):
# the milter counts a message refused at RCPT when the MTA closes the
# connection, a moment after the client's QUIT.
_metric_is() { scrape >/dev/null 2>&1 && [ "$(value "$1")" = "$2" ]; }
wait_metric() { poll 100 0.1 _metric_is "$1" "$2"; }

# ------------------------------------------------------------ (1)
code=$(curl -s -o "$TEST_TMP/page0" -w '%{http_code} %{content_type}' "http://127.0.0.1:$M1/metrics")
is "$code" "200 text/plain; version=0.0.4; charset=utf-8" "(1) GET /metrics: 200, exposition format 0.0.4"
for req in "GET /" "GET /metrics/x" "GET /index.html" "POST /metrics" "PUT /metrics" "DELETE /metrics"; do
	is "$(curl -s -o /dev/null -w '%{http_code}' -X "${req% *}" "http://127.0.0.1:$M1${req#* }")" 404 "(1) $req: 404"
done
valid_scrape "(1) the first page is valid exposition format"
diag "$(cat "$PAGE.check")"
for a in accept reject tempfail quarantine strip none; do
	is_metric "portcullis_messages_total{action=\"$a\"}" 0 "(1) no $a message yet"
done
is "$(grep -c '^# TYPE ' "$PAGE")" 23 "(1) 23 metric families"
is "$(value 'portcullis_messages_in_flight')" 0 "(1) nothing in flight"
_healthy() { _metric_is "portcullis_zone_healthy{kind=\"$1\",zone=\"$2\"}" 1; }
ok "(1) dnsbl zone bl.test healthy" poll 100 0.1 _healthy dnsbl bl.test
ok "(1) uribl zone uri.test healthy" poll 100 0.1 _healthy uribl uri.test
unlike "$(cat "$PAGE")" 'rule="watch"' "(1) a monitor rule has no series (it never decides)"
is_metric 'portcullis_messages_by_rule_total{rule="later"}' 0 "(1) rule later is listed at 0"

# ------------------------------------------------------------ (2)
mkmsg() {	# mkmsg ID BODY
	printf 'From: Alice <alice@ext.test>\r\nTo: bob@corp.test\r\nSubject: %s\r\nX-Test-Id: %s\r\n\r\n%s\r\n' \
		"$1" "$1" "$2" >"$TEST_TMP/msg/$1.eml"
}
deliver() {	# deliver ID FROM TO BODY
	mkmsg "$1" "$4"
	send "$PORT_POSTFIX" --helo mx.ext.test --from "$2" --to "$3" \
		--data "@$TEST_TMP/msg/$1.eml"
}
deliver m1 alice@ext.test bob@corp.test "Our newsletter: https://news.example-clean.com/today"
is "$SEND_CODE" 250 "(2) message 1 accepted" || diag_send
ok "(2) ... and delivered" eval "sent_message m1 >/dev/null"
deliver m2 spam@bad.test bob@corp.test "spam"
is "$SEND_REPLY" "550 5.7.1 sender blocked by test" "(2) message 2 refused by rule blocked" || diag_send
deliver m3 later@ext.test bob@corp.test "later"
is "$SEND_REPLY" "451 4.7.1 try again later" "(2) message 3 tempfailed by rule later" || diag_send
deliver m4 alice@ext.test bob@corp.test "Cheap watches at http://www.Spamvertised.com/offer today"
is "$SEND_REPLY" "550 5.7.1 link to spamvertised.com is listed" "(2) message 4 refused by rule uri" || diag_send
deliver m5 alice@ext.test grey@corp.test "grey"
is "$SEND_REPLY" "451 4.7.1 greylisted, please retry later" "(2) message 5 greylisted (new)" || diag_send
deliver m6 alice@ext.test grey@corp.test "grey"
is "$SEND_REPLY" "451 4.7.1 greylisted, please retry later" "(2) message 6 greylisted again (early)" || diag_send

ok "(2) all six messages counted" wait_metric 'portcullis_messages_total{action="tempfail"}' 3
_conns0() { _metric_is portcullis_connections_open 0; }
ok "(2) every connection closed" poll 100 0.1 _conns0
valid_scrape "(2) the page after the traffic is valid exposition format"
is_metric 'portcullis_messages_total{action="accept"}' 1 "(2) accept 1"
is_metric 'portcullis_messages_total{action="reject"}' 2 "(2) reject 2"
is_metric 'portcullis_messages_total{action="tempfail"}' 3 "(2) tempfail 3"
is_metric 'portcullis_messages_total{action="quarantine"}' 0 "(2) quarantine 0"
is_metric 'portcullis_messages_total{action="none"}' 0 "(2) none 0"
is_metric 'portcullis_messages_on_error_total' 0 "(2) on_error 0"
is_metric 'portcullis_messages_by_rule_total{rule="default"}' 1 "(2) by rule: default 1"
is_metric 'portcullis_messages_by_rule_total{rule="blocked"}' 1 "(2) by rule: blocked 1"
is_metric 'portcullis_messages_by_rule_total{rule="later"}' 1 "(2) by rule: later 1"
is_metric 'portcullis_messages_by_rule_total{rule="uri"}' 1 "(2) by rule: uri 1"
is_metric 'portcullis_messages_by_rule_total{rule="grey"}' 2 "(2) by rule: grey 2"
is_metric 'portcullis_messages_by_rule_total{rule="listed"}' 0 "(2) by rule: listed 0"
is_metric 'portcullis_messages_by_rule_total{rule="(other)"}' 0 "(2) by rule: (other) 0"
is_metric 'portcullis_spf_results_total{identity="mailfrom",result="pass"}' 4 "(2) SPF pass 4"
is "$(awk '/^portcullis_spf_results_total/ && $1 !~ /result="pass"/ { s += $2 } END { print s + 0 }' "$PAGE")" 0 \
	"(2) no other SPF result"
is_metric 'portcullis_dkim_results_total{result="none"}' 1 "(2) DKIM none 1 (message 1)"
is_metric 'portcullis_dmarc_results_total{result="pass"}' 1 "(2) DMARC pass 1 (message 1)"
is_metric 'portcullis_dnsbl_lookups_total{zone="bl.test",result="clean"}' 6 "(2) dnsbl bl.test: 6 clean lookups"
is_metric 'portcullis_dnsbl_lookups_total{zone="bl.test",result="listed"}' 0 "(2) dnsbl bl.test: none listed"
is_metric 'portcullis_uribl_lookups_total{zone="uri.test",result="listed"}' 1 "(2) uribl uri.test: 1 listed"
is_metric 'portcullis_uribl_lookups_total{zone="uri.test",result="clean"}' 1 "(2) uribl uri.test: 1 clean"
is_metric 'portcullis_uribl_links_total' 2 "(2) 2 link keys looked up"
is_metric 'portcullis_greylist_checks_total{state="new"}' 1 "(2) greylist new 1"
is_metric 'portcullis_greylist_checks_total{state="early"}' 1 "(2) greylist early 1"
is_metric 'portcullis_greylist_checks_total{state="passed"}' 0 "(2) greylist passed 0"
is_metric 'portcullis_greylist_store_errors_total' 0 "(2) no greylist store error"
H_=portcullis_stage_duration_seconds
for st in connect mail rcpt; do
	is_metric "${H_}_count{stage=\"$st\"}" 6 "(2) stage $st timed 6 times"
done
for st in eoh eom; do
	is_metric "${H_}_count{stage=\"$st\"}" 2 "(2) stage $st timed 2 times"
done
is_metric "${H_}_bucket{stage=\"eom\",le=\"+Inf\"}" 2 "(2) eom: +Inf bucket 2"
ok "(2) DNS queries were counted" test "$(value portcullis_dns_queries_total)" -gt 0
ok "(2) DNS answers were counted" test "$(value 'portcullis_dns_results_total{status="ok"}')" -gt 0
is_metric 'portcullis_dns_results_total{status="error"}' 0 "(2) no DNS query failed to start"
# six messages from one sender domain whose records have a TTL of 300 s:
# its SPF record is asked of the server once, then comes from the cache
is "$(grep -c -x 'query ext.test TXT' "$DNSLOG")" 1 "(2) the sender's SPF record was asked of the server once"
ok "(2) ... and the cache hits were counted ($(value portcullis_dns_cache_hits_total))" \
	test "$(value portcullis_dns_cache_hits_total)" -ge 5

# ------------------------------------------------------------ (3)
mkmsg m7 "first body line, sent before the hold
second body line, sent after the page was read"
HELD=$TEST_TMP/held GO=$TEST_TMP/go RESULT=$TEST_TMP/m7.result
"$PY" "$_lib_dir/smtp_hold.py" 127.0.0.1 "$PORT_POSTFIX" alice@ext.test bob@corp.test \
	"$TEST_TMP/msg/m7.eml" "$HELD" "$GO" "$RESULT" 2>"$TEST_TMP/m7.log" &
CLIENT_PID=$!
_track smtp_hold "$CLIENT_PID"
held_or_failed() { [ -e "$HELD" ] || [ -e "$RESULT" ]; }
poll 300 0.1 held_or_failed
ok "(3) the client is in the middle of DATA" test -e "$HELD" ||
	{ diag_file "$TEST_TMP/m7.log"; diag_file "$RESULT"; }
ok "(3) the page shows the message in flight" wait_metric portcullis_messages_in_flight 1
is_metric portcullis_connections_open 1 "(3) ... and its connection open"
is_metric 'portcullis_messages_total{action="accept"}' 1 "(3) ... and not yet counted"
touch "$GO"
wait_exit "$CLIENT_PID" 300 || diag "the client did not finish in 30 s"
like "$(cat "$RESULT" 2>/dev/null)" '^250 ' "(3) message 7 accepted after the hold"
ok "(3) ... and delivered" eval "wait_for_message m7 >/dev/null"
ok "(3) counted once done" wait_metric 'portcullis_messages_total{action="accept"}' 2
is_metric portcullis_messages_in_flight 0 "(3) nothing in flight any more"
is_metric 'portcullis_messages_by_rule_total{rule="default"}' 2 "(3) by rule: default 2"
is_metric 'portcullis_dmarc_results_total{result="pass"}' 2 "(3) DMARC pass 2"
is_metric "${H_}_count{stage=\"eom\"}" 3 "(3) stage eom timed 3 times"

# ------------------------------------------------------------ (4)
write_zone broken
dns_reload 1
_unhealthy() { _metric_is 'portcullis_zone_healthy{kind="dnsbl",zone="bl.test"}' 0; }
ok "(4) a zone that lists 127.0.0.1 goes to 0" poll 150 0.1 _unhealthy
is_metric 'portcullis_zone_healthy{kind="uribl",zone="uri.test"}' 1 "(4) the other zone stays 1"
write_zone
dns_reload 2
ok "(4) repaired, it comes back to 1" poll 150 0.1 _healthy dnsbl bl.test

# ------------------------------------------------------------ (5)
sed -i -e 's/^rule later:.*/rule new: when mail_from is "new@ext.test" then quarantine/' "$ETC/policy.rules"
write_conf "$M2"
r0=$(grep -c ' reloaded ' "$PORTCULLIS_LOG")
kill -HUP "$PORTCULLIS_PID"
_reloaded() { [ "$(grep -c ' reloaded ' "$PORTCULLIS_LOG")" -gt "$r0" ]; }
ok "(5) SIGHUP: reloaded" poll 100 0.1 _reloaded
ok "(5) the page is served on the new port" poll 100 0.1 port_listening "$M2"
ok "(5) ... and no longer on the old one" poll 100 0.1 port_closed "$M1"
M1=$M2
valid_scrape "(5) the page on the new port is valid exposition format"
is_metric 'portcullis_reloads_total{result="ok"}' 1 "(5) reloads ok 1"
is_metric 'portcullis_reloads_total{result="failed"}' 0 "(5) reloads failed 0"
unlike "$(cat "$PAGE")" 'rule="later"' "(5) the rule that left the policy left the page"
is_metric 'portcullis_messages_by_rule_total{rule="new"}' 0 "(5) the new rule is on the page at 0"
is_metric 'portcullis_messages_by_rule_total{rule="blocked"}' 1 "(5) the other rules keep their counts"
is_metric 'portcullis_messages_total{action="tempfail"}' 3 "(5) so do the actions"
echo "rule broken: when nosuchfact is 1 then reject" >>"$ETC/policy.rules"
kill -HUP "$PORTCULLIS_PID"
ok "(5) a broken policy counts a failed reload" wait_metric 'portcullis_reloads_total{result="failed"}' 1
is_metric 'portcullis_messages_by_rule_total{rule="new"}' 0 "(5) ... and the labels stay those of the policy in force"
ok "(5) the log names the new address" grep -q "metrics on http://127.0.0.1:$M2/metrics" "$PORTCULLIS_LOG"

ok "portcullis is still running" pid_alive "$PORTCULLIS_PID"
stop_portcullis
is "$PORTCULLIS_STATUS" 0 "portcullis stops cleanly (SIGTERM)"
ok "the listener is closed with the daemon" port_closed "$M2"
[ "$_tap_failed" -gt 0 ] && { diag_file "$PORTCULLIS_LOG" 40; [ -n "${PAGE:-}" ] && diag_file "$PAGE" 200; }
done_testing
