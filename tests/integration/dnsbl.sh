#!/bin/bash
# dnsbl.sh - client-address blocklists (RFC 5782) through portcullis's own
# resolver, against a DNS server on loopback (dnsbl_dns.py, which can also
# stay silent and hold queries), with "portcullis check" as the client:
#  - a listed IPv4 client (reversed octets) and a listed IPv6 client
#    (reversed nibbles); the TXT reason in %{dnsbl.reason};
#  - "codes" ranges and "mask" bits: answers outside them are not listings;
#  - error answers (127.255.255.254, 127.0.0.1, outside 127/8) are never
#    listings, and they are logged;
#  - a zone that never answers: not listed, the message is accepted (a dead
#    list never refuses mail), and the log line says timeout;
#  - five zones whose server answers only once all five queries are in
#    flight at once: all five listings arrive (sequential lookups would
#    each wait alone and time out), and the server logs 5 in flight;
#  - the weights of the listing zones add up to the score;
#  - early fetch: the blocklist query leaves at connect, before the SPF
#    query of MAIL, though the rule reading it comes after the SPF rule;
#    a zone no rule reads is never queried.
#  - uribl: a zone with "labels N" is also asked the links' host names cut
#    to N labels; a link to an address is asked reversed; at most 40 link
#    domains are asked; a link's query leaves while the body streams
#    (milter_client.py holds the end of the message back), and so do
#    the SPF record (asked at MAIL) and the DMARC record (end of headers);
#  - a client accepted at connect (trusted) costs no DNS query at all.
# Zone health (out of use and back) is shown through the daemon in
# mta_reputation.sh.
. "$(dirname "$0")/lib.sh"

have_portcullis || skip_all "portcullis is not built ($PORTCULLIS)"
PY=/usr/bin/python3
[ -x "$PY" ] || skip_all "no $PY"

ETC=$TEST_TMP/etc
mkdir -p "$ETC"
ZONE=$ETC/zone.txt
DNSLOG=$TEST_TMP/dns.log
# nibbles of 2001:db8::10
V6=$("$PY" -c 'import ipaddress; print(ipaddress.ip_address("2001:db8::10").reverse_pointer.replace(".ip6.arpa", ""))')
cat >"$ZONE" <<EOF
10.2.0.192.list4.test A 127.0.0.2
10.2.0.192.list4.test TXT "Listed since 2026, see https://list4.test/?192.0.2.10"
10.2.0.192.codes.test A 127.0.0.2
$V6.list4.test A 127.0.0.2
20.2.0.192.codes.test A 127.0.0.5
21.2.0.192.codes.test A 127.0.0.3
30.2.0.192.mask.test A 127.0.0.8
31.2.0.192.mask.test A 127.0.0.4
40.2.0.192.err.test A 127.255.255.254
41.2.0.192.err.test A 127.0.0.1
42.2.0.192.err.test A 10.0.0.2
silent quiet.test
barrier 5 slow.test
bad.blogs.example.com.uri.test A 127.0.0.2
1.0.168.192.uri.test A 127.0.0.2
stream-listed.example.uri.test A 127.0.0.2
EOF
for i in 1 2 3 4 5; do
	echo "10.2.0.192.z$i.slow.test A 127.0.0.$((i + 1))" >>"$ZONE"
done

"$PY" "$(dirname "$0")/dnsbl_dns.py" "$PORT_DNS" "$ZONE" "$DNSLOG" \
	</dev/null >"$TEST_TMP/dns.out" 2>&1 &
_track dnsbl_dns $!
_dns_listening() { grep -q '^listening' "$DNSLOG" 2>/dev/null; }
poll 100 0.05 _dns_listening || { diag_file "$TEST_TMP/dns.out"; bail_out "dnsbl_dns.py does not start"; }

# conf NAME POLICY-TEXT: a config and policy pair
conf() {
	printf '%s\n' "$2" >"$ETC/$1.rules"
	cat >"$ETC/$1.conf" <<EOF
policy      = $1.rules
authserv_id = mx.corp.test
resolver    = 127.0.0.1:$PORT_DNS
dns_timeout = 3s
EOF
}
conf main 'dnsbl list4.test
dnsbl codes.test codes 127.0.0.2-127.0.0.4
dnsbl mask.test  mask 0x08
dnsbl err.test
rule listed: when dnsbl.listed then reject "5.7.1 %{client.ip} is listed by %{dnsbl.zone}: %{dnsbl.reason}"
default accept'
conf weights 'dnsbl list4.test weight 4
dnsbl codes.test weight 2.5
dnsbl mask.test weight 10
rule high: when score >= 6.5 then reject "5.7.1 score %{score}"
default accept'
conf quiet 'dnsbl quiet.test
dnsbl list4.test
rule listed: when dnsbl.listed then reject "5.7.1 listed by %{dnsbl.zone}"
default accept'
conf slow 'dnsbl z1.slow.test
dnsbl z2.slow.test
dnsbl z3.slow.test
dnsbl z4.slow.test
dnsbl z5.slow.test
rule listed: when dnsbl.listed then reject "5.7.1 listed by %{dnsbl.zones}"
default accept'

conf early 'dnsbl list4.test
rule spf:    when spf is fail then reject "5.7.1 SPF"
rule listed: when dnsbl.listed then reject "5.7.1 listed by %{dnsbl.zone}"
default accept'
conf unread 'dnsbl list4.test
rule spf: when spf is fail then reject "5.7.1 SPF"
default accept'

conf labels 'uribl uri.test labels 4
uribl uri2.test
rule uri: when uribl.listed then reject "5.7.1 link to %{uribl.domains} is listed"
default accept'
conf links 'uribl uri.test
rule uri: when uribl.listed then reject "5.7.1 link to %{uribl.domains} is listed"
default accept'
conf trusted 'trusted networks 192.0.2.50/32
dnsbl list4.test
uribl uri.test
rule trusted: when trusted then accept
rule listed: when dnsbl.listed or uribl.listed then reject "5.7.1 listed"
rule spf: when spf is fail then reject "5.7.1 SPF"
default accept'

printf 'From: a@ext.test\nTo: bob@corp.test\nSubject: hello\n\nhello\n' >"$TEST_TMP/m.eml"

# check CONF IP: "portcullis check" JSON in $J, stderr in $CHECK_ERR
check() {
	CHECK_ERR=$TEST_TMP/check.$1.$2.err
	J=$("$PORTCULLIS" check -c "$ETC/$1.conf" --ip "$2" --helo mx.ext.test \
		--from a@ext.test --rcpt bob@corp.test "$TEST_TMP/m.eml" 2>"$CHECK_ERR")
}
# jget EXPR: a Python expression on the JSON object j
jget() { "$PY" -c 'import json,sys; j=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1" <<<"$J"; }
zones() { jget '",".join(j["facts"].get("dnsbl.zones", ["?"]))'; }

# ------------------------------------------------------------ listed
check main 192.0.2.10
is "$(jget 'j["action"]')" reject "IPv4 192.0.2.10 listed by list4.test: reject"
is "$(zones)" list4.test,codes.test "IPv4: dnsbl.zones: list4.test and codes.test, in policy order"
is "$(jget 'j["smtp"]["text"]')" "192.0.2.10 is listed by list4.test: Listed since 2026, see https://list4.test/?192.0.2.10" \
	"IPv4: the reply names the first zone and its TXT reason"
is "$(jget 'j["stage"]')" connect "IPv4: decided at connect"

check main 2001:db8::10
is "$(jget 'j["action"]')" reject "IPv6 2001:db8::10 listed (reversed nibbles): reject"
is "$(zones)" list4.test "IPv6: dnsbl.zones is list4.test"

check main 192.0.2.11
is "$(jget 'j["action"]')" accept "192.0.2.11 listed nowhere: accept"
is "$(jget 'j["facts"]["dnsbl.listed"]')" False "192.0.2.11: dnsbl.listed false"

# ------------------------------------------------------------ codes, mask
check main 192.0.2.20
is "$(jget 'j["facts"]["dnsbl.listed"]')" False "codes 127.0.0.2-127.0.0.4: answer 127.0.0.5 is not a listing"
check main 192.0.2.21
is "$(zones)" codes.test "codes 127.0.0.2-127.0.0.4: answer 127.0.0.3 is a listing"
check main 192.0.2.30
is "$(zones)" mask.test "mask 0x08: answer 127.0.0.8 is a listing"
check main 192.0.2.31
is "$(jget 'j["facts"]["dnsbl.listed"]')" False "mask 0x08: answer 127.0.0.4 is not a listing"

# ------------------------------------------------------------ error answers
for ip_code in 192.0.2.40:127.255.255.254 192.0.2.41:127.0.0.1 192.0.2.42:10.0.0.2; do
	ip=${ip_code%%:*} code=${ip_code#*:}
	check main "$ip"
	is "$(jget 'j["action"]')" accept "error answer $code is not a listing: accept"
	is "$(jget 'j["facts"]["dnsbl.listed"]')" False "error answer $code: dnsbl.listed false"
	like "$(cat "$CHECK_ERR")" 'dnsbl zone err\.test: error answer' \
		"error answer $code: logged as an error of zone err.test"
done

# ------------------------------------------------------------ weights
check weights 192.0.2.10
is "$(jget 'j["action"]')" reject "weights 4 + 2.5 of the two listing zones reach 6.5: reject"
is "$(jget 'j["smtp"]["text"]')" "score 6.5" "weights: the score is the sum of the listing zones' weights"
check weights 192.0.2.21
is "$(jget 'j["action"]')" accept "weight 2.5 alone stays under 6.5: accept"

# ------------------------------------------------------------ timeout
check quiet 192.0.2.10
is "$(jget 'j["action"]')" reject "a silent zone does not stop the others: list4.test still lists"
is "$(zones)" list4.test "silent zone: not among the listing zones"
check quiet 192.0.2.11
is "$(jget 'j["action"]')" accept "silent zone, client listed nowhere: accepted, never refused"
is "$(jget 'j["facts"]["dnsbl.listed"]')" False "silent zone: a timeout is not a listing"
grep -q '^query 11\.2\.0\.192\.quiet\.test A$' "$DNSLOG"
ok "the silent zone was asked" [ $? -eq 0 ]

# ------------------------------------------------------------ parallel
check slow 192.0.2.10
is "$(zones)" z1.slow.test,z2.slow.test,z3.slow.test,z4.slow.test,z5.slow.test \
	"five zones held until all five queries are in flight: all five list" ||
	diag_file "$CHECK_ERR"
ok "the DNS server had 5 queries in flight at once" \
	grep -q '^barrier released 5 in flight$' "$DNSLOG"

# ------------------------------------------------------------ early fetch
# The dnsbl rule comes after an SPF rule, which cannot be known before
# MAIL: evaluated lazily, the blocklist would be asked after the sender's
# SPF record.  Fetched early, its query leaves at connect, first.
qline() { grep -n -x -F "query $1" "$DNSLOG" | tail -n 1 | cut -d: -f1; }
check early 192.0.2.13
a=$(qline "13.2.0.192.list4.test A") t=$(qline "ext.test TXT")
ok "early fetch: the blocklist query (line ${a:-none}) reaches the server before SPF's (line ${t:-none})" \
	test -n "$a" -a -n "$t" -a "${a:-0}" -lt "${t:-0}"
# A dnsbl zone no rule reads is never asked.
check unread 192.0.2.14
is "$(jget 'j["action"]')" accept "unread zone: accepted"
ok "a zone no rule reads is never queried" \
	bash -c "! grep -q '^query 14\.2\.0\.192\.' '$DNSLOG'"

# ------------------------------------------------------------ uribl
# mkbody FILE TEXT: a message whose body is TEXT
mkbody() { printf 'From: a@ext.test\nTo: bob@corp.test\nSubject: links\n\n%s\n' "$2" >"$1"; }
# checkm CONF IP FILE: "portcullis check" of FILE
checkm() {
	CHECK_ERR=$TEST_TMP/check.$1.err
	J=$("$PORTCULLIS" check -c "$ETC/$1.conf" --ip "$2" --helo mx.ext.test \
		--from a@ext.test --rcpt bob@corp.test "$3" 2>"$CHECK_ERR")
}
queried() { grep -q -x -F "query $1" "$DNSLOG"; }

# "labels 4": the host name cut to 4 labels is asked too, in that zone only
mkbody "$TEST_TMP/labels.eml" 'see http://x.bad.blogs.example.com/a and http://good.blogs.example.com/b'
checkm labels 192.0.2.60 "$TEST_TMP/labels.eml"
is "$(jget 'j["smtp"]["text"]')" "link to example.com is listed" \
	"labels 4: a host name listed below its registered domain refuses the message, named by its registered domain" ||
	diag_file "$CHECK_ERR"
ok "labels 4: bad.blogs.example.com (x.bad.blogs.example.com cut to 4 labels) was asked" \
	queried "bad.blogs.example.com.uri.test A"
ok "labels 4: good.blogs.example.com was asked" queried "good.blogs.example.com.uri.test A"
ok "labels 4: the registered domain was asked as well" queried "example.com.uri.test A"
ok "a zone without labels is asked the registered domain only" \
	bash -c "grep -q -x 'query example.com.uri2.test A' '$DNSLOG' && ! grep -q 'blogs.example.com.uri2.test' '$DNSLOG'"

# an address written as one decimal number is asked reversed
mkbody "$TEST_TMP/ip.eml" 'click http://3232235521/login'
checkm links 192.0.2.61 "$TEST_TMP/ip.eml"
ok "a link to 3232235521 (192.168.0.1) is asked as 1.0.168.192.uri.test" \
	queried "1.0.168.192.uri.test A"
is "$(jget 'j["smtp"]["text"]')" "link to 192.168.0.1 is listed" \
	"... and its listing refuses the message, naming the address"

# at most uribl_max_lookups (default 40) link domains are asked
body=""
for i in $(seq 1 50); do body="$body http://www.shop$i.com/"; done
mkbody "$TEST_TMP/many.eml" "$body"
checkm links 192.0.2.62 "$TEST_TMP/many.eml"
is "$(grep -c -E '^query shop[0-9]+\.com\.uri\.test A$' "$DNSLOG")" 40 \
	"50 link domains: the first 40 (uribl_max_lookups) are asked, no more"
is "$(jget 'j["action"]')" accept "... the message is judged on those"

# ------------------------------------------------------------ early accept
# A client the connect stage accepts (a trusted network) costs no query:
# neither its blocklist, nor its sender's SPF, nor the links of its body.
printf 'From: a@trusted-sender.test\nTo: bob@corp.test\nSubject: x\n\nhttp://trusted-link.example/\n' >"$TEST_TMP/trusted.eml"
J=$("$PORTCULLIS" check -c "$ETC/trusted.conf" --ip 192.0.2.50 --helo mx.ext.test \
	--from a@trusted-sender.test --rcpt bob@corp.test "$TEST_TMP/trusted.eml" 2>"$TEST_TMP/trusted.err")
is "$(jget 'j["action"]') $(jget 'j["stage"]')" "accept connect" "a trusted client is accepted at connect"
ok "... and no DNS query was made for it (blocklist, SPF, links)" \
	bash -c "! grep -q -E '50\.2\.0\.192|trusted-sender|trusted-link' '$DNSLOG'"
J=$("$PORTCULLIS" check -c "$ETC/trusted.conf" --ip 192.0.2.51 --helo mx.ext.test \
	--from a@trusted-sender.test --rcpt bob@corp.test "$TEST_TMP/trusted.eml" 2>"$TEST_TMP/trusted.err")
ok "the same message from an untrusted client: its blocklist is asked" \
	queried "51.2.0.192.list4.test A"

# ------------------------------------------------------------ streaming
# The links' lookups start while the body streams: with the end of the
# message held back by the client, the query has already reached the
# server.
echo "socket      = inet:$PORT_MILTER@127.0.0.1" >>"$ETC/links.conf"
start_portcullis "$ETC/links.conf"
HOLD=$TEST_TMP/hold
"$PY" "$(dirname "$0")/milter_client.py" "inet:$PORT_MILTER@127.0.0.1" message \
	--ip 192.0.2.63 --from a@spf-early.test --body 'offer at https://stream-listed.example/x' \
	--hold "$HOLD" >"$TEST_TMP/stream.json" 2>"$TEST_TMP/stream.err" &
CLIENT=$!
ok "the link's lookup reaches the server before the end of the message" \
	poll 200 0.05 queried "stream-listed.example.uri.test A"
# SPF's record is asked at MAIL and DMARC's at the end of the headers,
# both long before the end of the message that needs them.
ok "... so do the SPF record of the sender (asked at MAIL)" \
	poll 200 0.05 queried "spf-early.test TXT"
ok "... and the DMARC record of the From domain (asked at end of headers)" \
	poll 200 0.05 queried "_dmarc.spf-early.test TXT"
touch "$HOLD"
wait "$CLIENT"
is "$?" 0 "the milter client got a valid answer" || diag_file "$TEST_TMP/stream.err"
like "$(cat "$TEST_TMP/stream.json")" '"reply": "550 5\.7\.1 link to stream-listed\.example is listed"' \
	"... the listed link refuses the message at its end"

done_testing
