#!/bin/bash
# mta_auth.sh - end to end: SPF, DKIM and DMARC computed by portcullis behind
# real Postfix and real Sendmail, DNS from a real unbound on loopback, the
# SHIPPED rules/default.policy (only its internal domains and trusted
# networks changed, so that 127.0.0.1 is an outside client).
# Through each MTA:
#  - a message DKIM-signed by dkimpy (key made at test time, published in
#    the test zone) from an SPF-authorised IP is delivered, tagged, with
#    exactly one Authentication-Results of ours saying spf=pass, dkim=pass
#    (2048-bit key) and dmarc=pass (p=reject ...);
#  - the same message altered after signing, from an IP SPF does not
#    authorise, fails DMARC with p=reject: the shipped rule "dmarc" refuses
#    it (550 5.7.1) and nothing is delivered; the same with SPF passing
#    but unaligned (MAIL FROM another domain);
#  - with the DNS server gone, the shipped rule "authfail" asks the client
#    to retry (451 4.7.0) and nothing is delivered.
# Loopback is no exception in RFC 7208: libspf2's "localhost is always
# allowed" shortcut is bypassed by spf.c, and the "check: spf=fail for
# 127.0.0.2" assertion guards that.
. "$(dirname "$0")/lib.sh"

have_portcullis || skip_all "portcullis is not built ($PORTCULLIS)"
# dkimpy: Debian's python3-dkim is for the system python (the python3
# first on PATH may be another one without it).
DKIM_PY=/usr/bin/python3
"$DKIM_PY" -c 'import dkim' 2>/dev/null || skip_all "no dkimpy for $DKIM_PY (python3-dkim)"
command -v openssl >/dev/null || skip_all "no openssl"

# ------------------------------------------------------------ DKIM key
KEYS=$TEST_TMP/keys
mkdir -p "$KEYS"
openssl genrsa -out "$KEYS/sel.pem" 2048 2>"$KEYS/genrsa.log" ||
	bail_out "openssl genrsa failed: $(cat "$KEYS/genrsa.log")"
PUB=$(openssl rsa -in "$KEYS/sel.pem" -pubout -outform DER 2>/dev/null | base64 -w0)
[ -n "$PUB" ] || bail_out "cannot extract the public key"
# the TXT record as quoted character-strings of at most 255 octets
DKIM_TXT=$(printf 'v=DKIM1; k=rsa; p=%s' "$PUB" | fold -w 255 | sed 's/.*/"&"/' | tr '\n' ' ')

# ------------------------------------------------------------ DNS
cat >"$TEST_TMP/test.zone" <<EOF
\$ORIGIN test.
\$TTL 300
@		IN SOA	ns.test. hostmaster.test. 1 3600 600 86400 300
@		IN NS	ns.test.
ns		IN A	127.0.0.1
ext		IN TXT	"v=spf1 ip4:127.0.0.1 -all"
_dmarc.ext	IN TXT	"v=DMARC1; p=reject"
sel._domainkey.ext IN TXT ( $DKIM_TXT )
mail.ext	IN A	127.0.0.1
other		IN TXT	"v=spf1 ip4:127.0.0.1 -all"
hello		IN TXT	"v=spf1 ip4:127.0.0.1 -all"
EOF
# the outside client 127.0.0.1 has a forward-confirmed reverse name
cat >"$TEST_TMP/reverse.zone" <<'EOF'
$ORIGIN 0.0.127.in-addr.arpa.
$TTL 300
@		IN SOA	ns.test. hostmaster.test. 1 3600 600 86400 300
@		IN NS	ns.test.
1		IN PTR	mail.ext.test.
EOF
start_unbound "$TEST_TMP/test.zone" "$TEST_TMP/reverse.zone"

# the key as published is the key we sign with
got_txt=$(dig +short +time=2 +tries=1 -p "$PORT_DNS" @127.0.0.1 sel._domainkey.ext.test TXT | tr -d '" \n')
is "$got_txt" "$(printf 'v=DKIM1;k=rsa;p=%s' "$PUB")" "the DKIM key is published (split into <=255-octet strings)"

# ------------------------------------------------------------ portcullis
ETC=$TEST_TMP/etc
mkdir -p "$ETC"
CONF=$ETC/portcullis.conf
cat >"$CONF" <<EOF
# mta_auth.sh
socket      = inet:$PORT_MILTER@127.0.0.1
policy      = default.policy
authserv_id = mx.corp.test
resolver    = $DNS_RESOLVER
dns_timeout = 2s
greylist_store = lmdb:$TEST_TMP/greylist
EOF
# the shipped policy, only the placeholders made ours
sed -e 's/^internal domains[[:space:]].*/internal domains  corp.test/' \
	-e 's/^trusted networks[[:space:]].*/trusted networks  127.0.0.3\/32/' \
	"$abs_top_srcdir/rules/default.policy" >"$ETC/default.policy"
is "$(diff "$abs_top_srcdir/rules/default.policy" "$ETC/default.policy" | grep -c '^>')" 2 \
	"the policy is the shipped one with two lines changed"
like "$(grep '^internal domains' "$ETC/default.policy")" 'corp\.test$' "policy: internal domains corp.test"
like "$(grep '^trusted networks' "$ETC/default.policy")" '127\.0\.0\.3/32$' "policy: trusted networks 127.0.0.3/32"

start_sink
start_portcullis "$CONF"
# The shipped policy greylists unknown senders; this test is about
# authentication, so the test client's senders have passed greylisting
# before: allowed with the administrator's tool, in the daemon's store.
for id in 127.0.0.0/24 spf:ext.test spf:other.test; do
	ok "greylist allow --network $id" \
		"$PORTCULLIS" greylist -c "$CONF" allow --network "$id"
done
start_postfix "inet:$PORT_MILTER@127.0.0.1"
start_sendmail "inet:$PORT_MILTER@127.0.0.1"

# ------------------------------------------------------------ messages
MSG=$TEST_TMP/msg
mkdir -p "$MSG"

# mkmsg FILE MARKER: a plain message from alice@ext.test.
mkmsg() {
	{
		echo "From: Alice <alice@ext.test>"
		echo "To: Bob <bob@corp.test>"
		echo "Subject: Signed report"
		echo "Date: Tue, 01 Apr 2025 10:00:00 +0000"
		echo "Message-ID: <$2@ext.test>"
		echo "X-Test-Id: $2"
		echo "MIME-Version: 1.0"
		echo "Content-Type: text/plain; charset=utf-8"
		echo
		echo "Hello Bob,"
		echo "this is message $2, signed by ext.test."
	} >"$1"
}

# dkim_sign IN OUT: OUT is IN with a DKIM-Signature d=ext.test s=sel
# (relaxed/relaxed, rsa-sha256) made by dkimpy.
dkim_sign() {
	"$DKIM_PY" - "$1" "$2" "$KEYS/sel.pem" <<'EOF'
import sys, dkim
msg = open(sys.argv[1], "rb").read().replace(b"\n", b"\r\n")
key = open(sys.argv[3], "rb").read()
sig = dkim.sign(msg, b"sel", b"ext.test", key,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=[b"from", b"to", b"subject", b"date",
                                 b"message-id", b"x-test-id"])
out = sig + msg
open(sys.argv[2], "wb").write(out.replace(b"\r\n", b"\n"))
EOF
}

# b8 FILE: the header.b value we expect for FILE's DKIM-Signature: its
# first 8 octets of b= (no whitespace), quoted when not an RFC 2045 token.
b8() {
	"$DKIM_PY" - "$1" <<'EOF'
import re, sys
h = open(sys.argv[1], "rb").read().decode().split("\n\n", 1)[0]
sig = re.search(r"^DKIM-Signature:(.*(?:\n[ \t].*)*)", h, re.M | re.I).group(1)
b = re.search(r"(?:^|;)\s*b\s*=([^;]*)", sig).group(1)
b = re.sub(r"\s", "", b)[:8]
print('"%s"' % b if re.search(r'[()<>@,;:\\"/\[\]?=]', b) else b)
EOF
}

# ours FILE: the Authentication-Results carrying our authserv-id, unfolded.
ours() { headers_of "$1" Authentication-Results | grep -iE '^mx\.corp\.test[[:space:]]*;'; }

# log_since N: the portcullis log from line N+1 on.
log_lines() { wc -l <"$PORTCULLIS_LOG"; }
log_since() { tail -n +"$(($1 + 1))" "$PORTCULLIS_LOG"; }

# sm_prefix: Sendmail may put "<addr>... " before a milter's text.
SM_PREFIX='(<[^>]*>\.\.\. )?'

suite() {	# suite MTA PORT
	local mta=$1 port=$2 f id ar b n
	local out=(--local-interface 127.0.0.1 --helo client.ext.test)

	# (3) signed, from an authorised IP: spf, dkim and dmarc pass
	id=signed-$mta
	mkmsg "$MSG/$id.plain" "$id"
	dkim_sign "$MSG/$id.plain" "$MSG/$id.eml" || fail "$mta: dkimpy signed the message"
	send "$port" "${out[@]}" --from alice@ext.test --to bob@corp.test --data "@$MSG/$id.eml"
	is "$SEND_CODE" 250 "$mta: signed message from an authorised IP accepted" || diag_send
	if f=$(sent_message "$id"); then
		ar=$(ours "$f")
		diag "$mta: Authentication-Results: $ar"
		is "$(printf '%s\n' "$ar" | grep -c .)" 1 "$mta: exactly one A-R of ours"
		is "$(count_headers "$f" Authentication-Results)" 1 "$mta: no other A-R"
		like "$ar" 'spf=pass smtp\.mailfrom=alice@ext\.test' "$mta: spf=pass smtp.mailfrom=alice@ext.test"
		like "$ar" 'dkim=pass \(2048-bit key\) header\.d=ext\.test header\.s=sel' \
			"$mta: dkim=pass (2048-bit key) header.d=ext.test header.s=sel"
		like "$ar" 'dmarc=pass \(p=reject sp=reject dis=none\) header\.from=ext\.test' \
			"$mta: dmarc=pass (p=reject sp=reject dis=none) header.from=ext.test"
		b=$(b8 "$MSG/$id.eml")
		is "$ar" "mx.corp.test; spf=pass smtp.mailfrom=alice@ext.test smtp.helo=client.ext.test; dkim=pass (2048-bit key) header.d=ext.test header.s=sel header.b=$b; dmarc=pass (p=reject sp=reject dis=none) header.from=ext.test" \
			"$mta: the whole A-R value, header.b the signature's first 8 octets"
		is "$(header_of "$f" Subject)" "[EXTERNAL] Signed report" "$mta: Subject tagged [EXTERNAL]"
		is "$(count_headers "$f" DKIM-Signature)" 1 "$mta: the DKIM-Signature is delivered"
	else
		fail "$mta: signed message delivered" "no message $id in the sink"
	fi

	# (4) the same message altered after signing, from an IP outside the
	# SPF record: SPF fail, DKIM fail => DMARC fail, p=reject => rule dmarc
	id=forged-$mta
	mkmsg "$MSG/$id.plain" "$id"
	dkim_sign "$MSG/$id.plain" "$MSG/$id.signed" || fail "$mta: dkimpy signed the message"
	sed 's/^this is message .*/this is a forged message, pay to IBAN XX00./' \
		"$MSG/$id.signed" >"$MSG/$id.eml"
	ok "$mta: the forged body differs from the signed one" \
		eval "! cmp -s '$MSG/$id.signed' '$MSG/$id.eml'"
	n=$(log_lines)
	send "$port" --local-interface 127.0.0.2 --helo client.ext.test \
		--from alice@ext.test --to bob@corp.test --data "@$MSG/$id.eml"
	diag "$mta replied to the forged message: $SEND_REPLY"
	like "$SEND_REPLY" "^550 5\\.7\\.1 ${SM_PREFIX}rejected by the DMARC policy of ext\\.test\$" \
		"$mta: DMARC fail with p=reject refused: 550 5.7.1 rejected by the DMARC policy of ext.test" ||
		diag_send
	poll 50 0.1 eval "log_since $n | grep -q 'client=127\\.0\\.0\\.2 .*action='"
	like "$(log_since "$n" | grep 'client=127\.0\.0\.2 ' | grep 'action=' | tail -n 1)" \
		'action=reject rule=dmarc stage=[a-z]+ .* ms=[0-9]+' "$mta: portcullis logs action=reject rule=dmarc" ||
		diag_file "$PORTCULLIS_LOG" 10
	if ! is "$(find_message "$id")" "" "$mta: the forged message is not delivered"; then
		f=$(find_message "$id")
		diag "$mta: delivered with: $(ours "$f")"
	fi

	# (4b) the same forgery with SPF out of the picture: the envelope
	# sender's domain other.test passes SPF but is not aligned with
	# From: ext.test, DKIM fails => DMARC fail => rule dmarc.  (Unlike (4)
	# this does not depend on SPF failing for a 127/8 client.)
	id=unaligned-$mta
	mkmsg "$MSG/$id.plain" "$id"
	dkim_sign "$MSG/$id.plain" "$MSG/$id.signed" || fail "$mta: dkimpy signed the message"
	sed 's/^this is message .*/this is a forged message, pay to IBAN XX00./' \
		"$MSG/$id.signed" >"$MSG/$id.eml"
	n=$(log_lines)
	send "$port" "${out[@]}" --from bounce@other.test --to bob@corp.test --data "@$MSG/$id.eml"
	diag "$mta replied to the unaligned forged message: $SEND_REPLY"
	like "$SEND_REPLY" "^550 5\\.7\\.1 ${SM_PREFIX}rejected by the DMARC policy of ext\\.test\$" \
		"$mta: unaligned SPF + broken DKIM: 550 5.7.1 rejected by the DMARC policy of ext.test" ||
		diag_send
	poll 50 0.1 eval "log_since $n | grep -q 'mail_from=<bounce@other\\.test> .*action='"
	like "$(log_since "$n" | grep 'mail_from=<bounce@other\.test> ' | tail -n 1)" \
		'action=reject rule=dmarc stage=[a-z]+ .* ms=[0-9]+' "$mta: portcullis logs action=reject rule=dmarc (unaligned)" ||
		diag_file "$PORTCULLIS_LOG" 10
	is "$(find_message "$id")" "" "$mta: the unaligned forged message is not delivered"

	# (5) DNS down: tested after both MTAs (below)
}

suite postfix "$PORT_POSTFIX"
suite sendmail "$PORT_SENDMAIL"

# ------------------------------------------------------------ SPF alone
# Where (4) goes wrong, without an MTA: "portcullis check" on the forged
# message from 127.0.0.2 (loopback, outside the SPF record) and from
# 192.0.2.2 (not loopback, outside the record).  Both must be spf=fail.
# spf_of IP: the spf= result of our A-R for the forged message from IP
# (under an accept-everything policy, so that the A-R is always written).
sed 's/^policy[[:space:]]*=.*/policy = accept.policy/' "$CONF" >"$ETC/check.conf"
echo "default accept" >"$ETC/accept.policy"
spf_of() {
	"$PORTCULLIS" check -c "$ETC/check.conf" --ip "$1" --helo client.ext.test \
		--from alice@ext.test --rcpt bob@corp.test "$MSG/forged-postfix.eml" 2>/dev/null |
		"$DKIM_PY" -c 'import json, re, sys
d = json.load(sys.stdin)
for h in d.get("headers_added") or []:
    if h.get("name", "").lower() == "authentication-results":
        m = re.search(r"\bspf=([a-z]+)", h.get("value", ""))
        print(m.group(1) if m else "?")'
}
is "$(spf_of 192.0.2.2)" fail "check: spf=fail for 192.0.2.2, outside ip4:127.0.0.1 -all"
is "$(spf_of 127.0.0.2)" fail "check: spf=fail for 127.0.0.2, outside ip4:127.0.0.1 -all (loopback is no exception in RFC 7208)"

# The HELO identity (RFC 7208 2.3): spf.helo is the HELO name's own
# record (hello.test: ip4:127.0.0.1 -all), whatever the MAIL FROM; and for
# a null sender the spf fact itself is the HELO identity (RFC 7208 2.4),
# written smtp.mailfrom=postmaster@HELO (DESIGN.md 6).  alice@ext.test's
# record authorises 127.0.0.1 too, so the "none" for HELO client.ext.test
# (no record) from 127.0.0.1 shows spf.helo is not the MAIL FROM identity.
printf '%s\n' 'rule h: when spf.helo is not none then reject "5.7.1 spf.helo=%{spf.helo}"' \
	'default accept' >"$ETC/helo.policy"
sed 's/^policy[[:space:]]*=.*/policy = helo.policy/' "$CONF" >"$ETC/helo.conf"
helo_of() {	# helo_of IP HELO: the spf.helo fact, from the rule's reply text
	"$PORTCULLIS" check -c "$ETC/helo.conf" --ip "$1" --helo "$2" \
		--from alice@ext.test --rcpt bob@corp.test "$MSG/forged-postfix.eml" 2>/dev/null |
		"$DKIM_PY" -c 'import json, sys
d = json.load(sys.stdin)
print((d.get("smtp") or {}).get("text", "spf.helo=none").split("=", 1)[1])'
}
is "$(helo_of 127.0.0.1 hello.test)" pass "check: spf.helo=pass for HELO hello.test from 127.0.0.1"
is "$(helo_of 192.0.2.2 hello.test)" fail "check: spf.helo=fail for HELO hello.test from 192.0.2.2"
is "$(helo_of 127.0.0.1 client.ext.test)" none "check: spf.helo=none for a HELO name without a record (MAIL FROM's record would pass)"
nullar_of() {	# nullar_of IP: our A-R's spf part for a null sender, HELO hello.test
	"$PORTCULLIS" check -c "$ETC/check.conf" --ip "$1" --helo hello.test \
		--from '' --rcpt bob@corp.test "$MSG/forged-postfix.eml" 2>/dev/null |
		"$DKIM_PY" -c 'import json, re, sys
d = json.load(sys.stdin)
for h in d.get("headers_added") or []:
    if h.get("name", "").lower() == "authentication-results":
        m = re.search(r"\bspf=[a-z]+ smtp\.mailfrom=\S+", h.get("value", ""))
        print(m.group(0) if m else "?")'
}
is "$(nullar_of 127.0.0.1)" "spf=pass smtp.mailfrom=postmaster@hello.test" \
	"check: a null sender is checked as postmaster@HELO: pass from 127.0.0.1"
is "$(nullar_of 192.0.2.2)" "spf=fail smtp.mailfrom=postmaster@hello.test" \
	"check: a null sender is checked as postmaster@HELO: fail from 192.0.2.2"

# dkim_max_signatures reaches the verifier from portcullis.conf: a message
# signed three times gets three dkim= results by default, one with
# dkim_max_signatures = 1 (the others are neither verified nor reported).
dkim_sign "$MSG/signed-postfix.eml" "$MSG/twice.eml" &&
	dkim_sign "$MSG/twice.eml" "$MSG/thrice.eml" || fail "dkimpy signed the message twice more"
sed 's/^policy[[:space:]]*=.*/policy = accept.policy/' "$CONF" >"$ETC/onesig.conf"
echo "dkim_max_signatures = 1" >>"$ETC/onesig.conf"
ndkim_of() {	# ndkim_of CONF: how many dkim=pass our A-R has for thrice.eml
	"$PORTCULLIS" check -c "$1" --ip 127.0.0.1 --helo client.ext.test \
		--from alice@ext.test --rcpt bob@corp.test "$MSG/thrice.eml" 2>/dev/null |
		"$DKIM_PY" -c 'import json, re, sys
d = json.load(sys.stdin)
for h in d.get("headers_added") or []:
    if h.get("name", "").lower() == "authentication-results":
        print(len(re.findall(r"\bdkim=pass\b", h.get("value", ""))))'
}
is "$(ndkim_of "$ETC/check.conf")" 3 "check: three signatures, three dkim=pass (default dkim_max_signatures 5)"
is "$(ndkim_of "$ETC/onesig.conf")" 1 "check: dkim_max_signatures = 1 in portcullis.conf: one dkim=pass"

# l= reaches the A-R comment through the daemon's path (dkimv -> session
# -> authres): a signature over the first part of the body only, with a
# line appended after signing, still passes and says so.
"$DKIM_PY" - "$MSG/signed-postfix.plain" "$MSG/partial.eml" "$KEYS/sel.pem" <<'PY' || fail "dkimpy signed with l="
import sys, dkim
msg = open(sys.argv[1], "rb").read().replace(b"\n", b"\r\n")
key = open(sys.argv[3], "rb").read()
sig = dkim.sign(msg, b"sel", b"ext.test", key, length=True,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=[b"from", b"to", b"subject", b"date",
                                 b"message-id", b"x-test-id"])
out = sig + msg + b"Appended after signing.\r\n"
open(sys.argv[2], "wb").write(out.replace(b"\r\n", b"\n"))
PY
dkim_of() {	# dkim_of FILE: the dkim= part of our A-R (up to header.d)
	"$PORTCULLIS" check -c "$ETC/check.conf" --ip 127.0.0.1 --helo client.ext.test \
		--from alice@ext.test --rcpt bob@corp.test "$1" 2>/dev/null |
		"$DKIM_PY" -c 'import json, re, sys
d = json.load(sys.stdin)
for h in d.get("headers_added") or []:
    if h.get("name", "").lower() == "authentication-results":
        m = re.search(r"\bdkim=.*? header\.d=", h.get("value", ""))
        print(m.group(0) if m else "?")'
}
is "$(dkim_of "$MSG/partial.eml")" "dkim=pass (2048-bit key; partial body signed (l=)) header.d=" \
	"check: a signature with l= passes, and the A-R comment says the body was signed in part"

# ------------------------------------------------------------ (5) DNS down
stop_pid "$UNBOUND_PID" TERM 100
ok "unbound stopped" pid_gone "$UNBOUND_PID"
poll 50 0.1 eval "! port_listening $PORT_DNS"
dig +short +time=1 +tries=1 -p "$PORT_DNS" @127.0.0.1 ext.test TXT >"$TEST_TMP/dig-down.out" 2>&1
unlike "$(cat "$TEST_TMP/dig-down.out")" 'v=spf1' "nothing answers on the test DNS port any more"

# portcullis's resolver (libunbound) caches what it was told (TTL 300):
# names asked before still resolve.  So the message is from a domain never
# asked about, down-MTA.test.
for mta in postfix sendmail; do
	case $mta in postfix) port=$PORT_POSTFIX ;; sendmail) port=$PORT_SENDMAIL ;; esac
	id=dnsdown-$mta
	dom=down-$mta.test
	{
		echo "From: Dave <dave@$dom>"
		echo "To: Bob <bob@corp.test>"
		echo "Subject: DNS is down"
		echo "Date: Tue, 01 Apr 2025 10:00:00 +0000"
		echo "Message-ID: <$id@$dom>"
		echo "X-Test-Id: $id"
		echo
		echo "this is message $id."
	} >"$MSG/$id.eml"
	n=$(log_lines)
	t0=$(date +%s%N)
	send "$port" --local-interface 127.0.0.1 --helo client.ext.test \
		--from "dave@$dom" --to bob@corp.test --data "@$MSG/$id.eml"
	t1=$(date +%s%N)
	diag "$mta replied with DNS down: $SEND_REPLY (SMTP session $(((t1 - t0) / 1000000)) ms)"
	like "$SEND_REPLY" "^451 4\\.7\\.0 ${SM_PREFIX}temporary failure in sender authentication, please retry later\$" \
		"$mta: DNS down: 451 4.7.0 temporary failure in sender authentication, please retry later" || diag_send
	like "$SEND_CODE" '^4' "$mta: DNS down: a temporary failure, never 250"
	is "$(find_message "$id")" "" "$mta: DNS down: nothing delivered"
	poll 100 0.1 eval "log_since $n | grep -q 'mail_from=<dave@$dom> .*action='"
	line=$(log_since "$n" | grep "mail_from=<dave@$dom> " | tail -n 1)
	like "$line" "client=127\\.0\\.0\\.1 mail_from=<dave@$dom> .*action=tempfail rule=authfail stage=[a-z]+ .* ms=[0-9]+\$" \
		"$mta: portcullis logs action=tempfail rule=authfail with ms=" || diag_file "$PORTCULLIS_LOG" 15
	diag "$mta: portcullis took ${line##* ms=} ms (dns_timeout 2s per check)"
done

ok "portcullis is still running" pid_alive "$PORTCULLIS_PID"
[ "$_tap_failed" -gt 0 ] && diag_file "$PORTCULLIS_LOG" 40
done_testing
