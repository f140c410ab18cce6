#!/bin/bash
# dns_cache.sh - the second identical message makes no new DNS queries for
# records still within their TTL, counted at the DNS server.
# portcullis resolves SPF (libspf2 through spf.c's DNS layer), DKIM keys
# (libopendkim's dkim_dns hooks), DMARC records and client.ptr through
# dns.c: one libunbound context, so one cache, per daemon.  Here a real
# unbound on loopback serves the test zones (every record, and the SOA
# minimum that bounds negative answers, with a TTL of 3600 s), logs every
# query it receives (log-queries) and counts them (unbound-control
# stats_noreset, total.num.queries).  Through real Postfix:
#  - message 1, DKIM-signed by dkimpy, from an SPF-authorised client with
#    a forward-confirmed reverse name, makes queries: the SPF records
#    (include:, a: and mx: terms, one A lookup that is NODATA), the
#    HELO's (NXDOMAIN), the DKIM key, the _dmarc record, PTR and its A;
#  - message 2, identical (same client, HELO, envelope and signed bytes),
#    in a new SMTP session, makes none and gets the same
#    Authentication-Results (spf=pass, dkim=pass, dmarc=pass);
#  - message 3, the same through Sendmail, makes none either.
# The policy decides on spf, spf.helo, dkim, dmarc and client.ptr, so each
# of them is computed for every message.
. "$(dirname "$0")/lib.sh"

have_portcullis || skip_all "portcullis is not built ($PORTCULLIS)"
DKIM_PY=/usr/bin/python3
"$DKIM_PY" -c 'import dkim' 2>/dev/null || skip_all "no dkimpy for $DKIM_PY (python3-dkim)"
command -v openssl >/dev/null || skip_all "no openssl"
command -v unbound-control >/dev/null || skip_all "no unbound-control"

# ------------------------------------------------------------ DKIM key
KEYS=$TEST_TMP/keys
mkdir -p "$KEYS"
openssl genrsa -out "$KEYS/sel.pem" 2048 2>"$KEYS/genrsa.log" ||
	bail_out "openssl genrsa failed: $(cat "$KEYS/genrsa.log")"
PUB=$(openssl rsa -in "$KEYS/sel.pem" -pubout -outform DER 2>/dev/null | base64 -w0)
[ -n "$PUB" ] || bail_out "cannot extract the public key"
DKIM_TXT=$(printf 'v=DKIM1; k=rsa; p=%s' "$PUB" | fold -w 255 | sed 's/.*/"&"/' | tr '\n' ' ')

# ------------------------------------------------------------ zones
# ext.test: SPF walks a:out (no match), a:v6 (NODATA for A, a void
# lookup), include:_spf, whose mx:ext.test (MX, then A of mx.ext.test: no
# match) and a:mail (127.0.0.1: pass).  client.ext.test (the HELO) does
# not exist: NXDOMAIN, cached for the SOA minimum (RFC 2308).
cat >"$TEST_TMP/test.zone" <<EOF
\$ORIGIN test.
\$TTL 3600
@		IN SOA	ns.test. hostmaster.test. 1 3600 600 86400 3600
@		IN NS	ns.test.
ns		IN A	127.0.0.1
ext		IN TXT	"v=spf1 a:out.ext.test a:v6.ext.test include:_spf.ext.test -all"
ext		IN MX	10 mx.ext.test.
_spf.ext	IN TXT	"v=spf1 mx:ext.test a:mail.ext.test -all"
out.ext		IN A	192.0.2.25
v6.ext		IN AAAA	2001:db8::25
mx.ext		IN A	192.0.2.26
mail.ext	IN A	127.0.0.1
_dmarc.ext	IN TXT	"v=DMARC1; p=reject"
sel._domainkey.ext IN TXT ( $DKIM_TXT )
EOF
cat >"$TEST_TMP/reverse.zone" <<'EOF'
$ORIGIN 0.0.127.in-addr.arpa.
$TTL 3600
@		IN SOA	ns.test. hostmaster.test. 1 3600 600 86400 3600
@		IN NS	ns.test.
1		IN PTR	mail.ext.test.
EOF

# lib.sh's start_unbound, plus log-queries (each query received is logged,
# before it is answered, to stderr: unbuffered) and a control interface on
# 127.0.0.1:$PORT_SPARE for "stats_noreset".  Both are updated before the
# answer leaves, so once portcullis has its answers they are final: no
# waiting needed.
UNBOUND_CONF_EXTRA="	log-queries: yes
	extended-statistics: no
remote-control:
	control-enable: yes
	control-interface: 127.0.0.1
	control-port: $PORT_SPARE
	control-use-cert: no"
start_counting_unbound() {
	start_unbound "$@"
	if ! poll 100 0.05 dns_count >/dev/null; then
		diag_file "$UNBOUND_LOG"
		bail_out "unbound-control does not answer on $PORT_SPARE"
	fi
}
# dns_count: queries received so far (unbound's counter).
dns_count() {
	unbound-control -c "$UNBOUND_CONF" stats_noreset 2>/dev/null |
		awk -F= '$1 == "total.num.queries" { print $2; found = 1 }
			END { exit !found }'
}
# unbound 1.17 logs a query as "[time] unbound[pid:0] info: ADDR NAME. TYPE IN".
dns_log_lines() { wc -l <"$UNBOUND_LOG"; }
# dns_queries_since N: the queries logged after line N, as "name TYPE".
dns_queries_since() {
	tail -n +"$(($1 + 1))" "$UNBOUND_LOG" |
		awk '$3 == "info:" && $NF == "IN" && NF == 7 {
			n = $5; sub(/\.$/, "", n); print n, $6 }'
}

start_counting_unbound "$TEST_TMP/test.zone" "$TEST_TMP/reverse.zone"

got_txt=$(dns_query sel._domainkey.ext.test TXT | tr -d '" \n')
is "$got_txt" "$(printf 'v=DKIM1;k=rsa;p=%s' "$PUB")" "the DKIM key is published"
is "$(dns_query 1.0.0.127.in-addr.arpa PTR)" "mail.ext.test." "PTR 127.0.0.1 -> mail.ext.test"
ttl=$(dig +noall +answer +tries=1 +time=2 @127.0.0.1 -p "$PORT_DNS" ext.test TXT | awk '{ print $2; exit }')
is "$ttl" 3600 "records are served with TTL 3600"
neg=$(dig +noall +authority +tries=1 +time=2 @127.0.0.1 -p "$PORT_DNS" client.ext.test TXT | awk '$4 == "SOA" { print $2; exit }')
is "$neg" 3600 "NXDOMAIN comes with the SOA, negative TTL 3600"

# ------------------------------------------------------------ portcullis
ETC=$TEST_TMP/etc
mkdir -p "$ETC"
CONF=$ETC/portcullis.conf
cat >"$CONF" <<EOF
# dns_cache.sh
socket      = inet:$PORT_MILTER@127.0.0.1
policy      = cache.policy
authserv_id = mx.corp.test
resolver    = $DNS_RESOLVER
dns_timeout = 5s
EOF
# Every message must have spf, dkim and dmarc pass, spf.helo none (the
# HELO name's NXDOMAIN, not a temperror) and client.ptr confirmed, or it is
# refused with the values in the reply.
cat >"$ETC/cache.policy" <<'EOF'
internal domains  corp.test
trusted networks  127.0.0.3/32
rule trusted: when trusted or authenticated then accept
rule ptr:     when client.ptr is not "mail.ext.test" then reject "5.7.1 client.ptr=%{client.ptr}"
rule helo:    when spf.helo is not none then reject "5.7.1 spf.helo=%{spf.helo}"
rule auth:    when spf is not pass or dkim is not pass or dmarc is not pass then reject "5.7.1 spf=%{spf} dkim=%{dkim} dmarc=%{dmarc}"
default accept
EOF
"$PORTCULLIS" -n -c "$CONF" >"$ETC/check.log" 2>&1 ||
	{ diag_file "$ETC/check.log"; bail_out "portcullis -n refuses the test policy"; }

start_sink
start_portcullis "$CONF"
start_postfix "inet:$PORT_MILTER@127.0.0.1"
start_sendmail "inet:$PORT_MILTER@127.0.0.1"

# ------------------------------------------------------------ the message
MSG=$TEST_TMP/msg
mkdir -p "$MSG"
{
	echo "From: Alice <alice@ext.test>"
	echo "To: Bob <bob@corp.test>"
	echo "Subject: Cached report"
	echo "Date: Tue, 01 Apr 2025 10:00:00 +0000"
	echo "Message-ID: <cache-1@ext.test>"
	echo "X-Test-Id: cache-1"
	echo "MIME-Version: 1.0"
	echo "Content-Type: text/plain; charset=utf-8"
	echo
	echo "Hello Bob,"
	echo "this message is sent three times, identical."
} >"$MSG/plain.eml"
"$DKIM_PY" - "$MSG/plain.eml" "$MSG/signed.eml" "$KEYS/sel.pem" <<'EOF' ||
import sys, dkim
msg = open(sys.argv[1], "rb").read().replace(b"\n", b"\r\n")
key = open(sys.argv[3], "rb").read()
sig = dkim.sign(msg, b"sel", b"ext.test", key,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=[b"from", b"to", b"subject", b"date",
                                 b"message-id", b"x-test-id"])
open(sys.argv[2], "wb").write((sig + msg).replace(b"\r\n", b"\n"))
EOF
	bail_out "dkimpy cannot sign"

# ours FILE: the Authentication-Results carrying our authserv-id.
ours() { headers_of "$1" Authentication-Results | grep -iE '^mx\.corp\.test[[:space:]]*;'; }

# new_message BEFORE: the complete sink file not in the list BEFORE.
new_message() { sink_complete_files | grep -vxF -e "$1" -e '' | head -n 1; }

# deliver MTA PORT N: send the signed message, wait for the N-th delivery;
# sets DELIVERED (the file) and AR (our A-R), DNS_DELTA (queries counted
# by unbound) and DNS_LIST (the queries logged, "name TYPE", sorted).
deliver() {
	local mta=$1 port=$2 n=$3 before c0 c1 l0
	before=$(sink_complete_files)
	c0=$(dns_count) || bail_out "cannot read unbound's counters"
	l0=$(dns_log_lines)
	send "$port" --local-interface 127.0.0.1 --helo client.ext.test \
		--from alice@ext.test --to bob@corp.test --data "@$MSG/signed.eml"
	is "$SEND_CODE" 250 "$mta: message $n accepted" || diag_send
	DELIVERED='' AR=''
	if [ "$SEND_CODE" = 250 ] && wait_for_delivery "$n"; then
		DELIVERED=$(new_message "$before")
		AR=$(ours "$DELIVERED")
	fi
	ok "$mta: message $n delivered" test -n "$DELIVERED"
	c1=$(dns_count) || bail_out "cannot read unbound's counters"
	DNS_DELTA=$((c1 - c0))
	DNS_LIST=$(dns_queries_since "$l0" | sort)
	is "$(printf '%s\n' "$DNS_LIST" | grep -c .)" "$DNS_DELTA" \
		"$mta: message $n: the query log agrees with unbound's counter ($DNS_DELTA)"
	diag "$mta: message $n: $DNS_DELTA queries at the DNS server${DNS_LIST:+:}"
	[ -n "$DNS_LIST" ] && diag "  ${DNS_LIST//$'\n'/$'\n'  }"
	diag "$mta: message $n: Authentication-Results: $AR"
}

# ------------------------------------------------------------ message 1
deliver postfix "$PORT_POSTFIX" 1
AR1=$AR
N1=$DNS_DELTA
LIST1=$DNS_LIST
ok "message 1 made DNS queries (>0)" test "$N1" -gt 0
for q in "ext.test TXT" "_spf.ext.test TXT" "out.ext.test A" "v6.ext.test A" \
	"ext.test MX" "mx.ext.test A" "mail.ext.test A" \
	"sel._domainkey.ext.test TXT" "_dmarc.ext.test TXT" \
	"client.ext.test TXT" "1.0.0.127.in-addr.arpa PTR"; do
	ok "message 1 queried $q" grep -qxF "$q" <<<"$LIST1"
done
like "$AR1" 'spf=pass smtp\.mailfrom=alice@ext\.test' "message 1: spf=pass"
like "$AR1" 'dkim=pass \(2048-bit key\) header\.d=ext\.test header\.s=sel' "message 1: dkim=pass"
like "$AR1" 'dmarc=pass \(p=reject sp=reject dis=none\) header\.from=ext\.test' "message 1: dmarc=pass"

# ------------------------------------------------------------ message 2
deliver postfix "$PORT_POSTFIX" 2
is "$DNS_DELTA" 0 "message 2 (identical, TTLs not expired) made no new DNS query" ||
	diag "new queries of message 2 (name TYPE, listed above)"
is "$AR" "$AR1" "message 2 has the Authentication-Results of message 1"
like "$AR" 'spf=pass .*; dkim=pass .*; dmarc=pass ' "message 2: spf=pass, dkim=pass, dmarc=pass"

# ------------------------------------------------------------ message 3
deliver sendmail "$PORT_SENDMAIL" 3
is "$DNS_DELTA" 0 "message 3 (identical, through Sendmail) made no new DNS query" ||
	diag "new queries of message 3 (name TYPE, listed above)"
is "$AR" "$AR1" "message 3 has the Authentication-Results of message 1"

ok "portcullis is still running" pid_alive "$PORTCULLIS_PID"
[ "$_tap_failed" -gt 0 ] && diag_file "$PORTCULLIS_LOG" 20
done_testing
