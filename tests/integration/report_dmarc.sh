#!/bin/bash
# report_dmarc.sh - DMARC aggregate reports (RFC 9990) end to end: known
# traffic through real Postfix and the daemon (DNS from a real unbound on
# loopback, DKIM signatures made by dkimpy with a key made now), the rows
# the daemon records in its report store (report_store = lmdb:...), then
# `portcullis report dmarc`:
#  - one report per Policy Domain (ext.test, q.test), named as RFC 9990
#    says, valid against the RFC's schema (tests/data/report/dmarc-2.0.xsd,
#    xmllint), with the expected records: identical messages grouped with
#    a count, source IPs, SPF/DKIM results and alignment, dispositions
#    (pass, reject, quarantine), a subdomain without its own record in its
#    parent's report, the published policy;
#  - the rua= destinations judged as RFC 9990 section 4 says: the same
#    Organizational Domain kept; an external one kept only with its
#    <domain>._report._dmarc.<host> record, dropped without; an
#    authorization record's own rua= on the same host replacing the URI,
#    one naming another host dropping both; a mailto only;
#  - --gzip (gunzips to the same document), --mail (a message to the kept
#    addresses only), and --expire (the period's rows gone afterwards).
. "$(dirname "$0")/lib.sh"

have_portcullis || skip_all "portcullis is not built ($PORTCULLIS)"
DKIM_PY=/usr/bin/python3
"$DKIM_PY" -c 'import dkim' 2>/dev/null || skip_all "no dkimpy for $DKIM_PY (python3-dkim)"
command -v openssl >/dev/null || skip_all "no openssl"
command -v xmllint >/dev/null || skip_all "no xmllint (libxml2-utils)"
XSD=$abs_top_srcdir/tests/data/report/dmarc-2.0.xsd
[ -r "$XSD" ] || bail_out "no schema at $XSD"

# ------------------------------------------------------------ DKIM key
KEYS=$TEST_TMP/keys
mkdir -p "$KEYS"
openssl genrsa -out "$KEYS/sel.pem" 2048 2>"$KEYS/genrsa.log" ||
	bail_out "openssl genrsa failed: $(cat "$KEYS/genrsa.log")"
PUB=$(openssl rsa -in "$KEYS/sel.pem" -pubout -outform DER 2>/dev/null | base64 -w0)
[ -n "$PUB" ] || bail_out "cannot extract the public key"
DKIM_TXT=$(printf 'v=DKIM1; k=rsa; p=%s' "$PUB" | fold -w 255 | sed 's/.*/"&"/' | tr '\n' ' ')

# ------------------------------------------------------------ DNS
# ext.test asks for reports at its own domain and four others:
#   reports.test   authorizes it         -> kept
#   noauth.test    does not              -> dropped
#   override.test  authorizes, with its own rua= on the same host
#                                        -> replaced by that address
#   evil.test      authorizes, with a rua= on another host -> dropped
# plus one https: URI (only mailto: is supported -> dropped).
cat >"$TEST_TMP/test.zone" <<EOF
\$ORIGIN test.
\$TTL 300
@		IN SOA	ns.test. hostmaster.test. 1 3600 600 86400 300
@		IN NS	ns.test.
ns		IN A	127.0.0.1
ext		IN TXT	"v=spf1 ip4:127.0.0.1 -all"
ext		IN A	127.0.0.1
news.ext	IN A	127.0.0.1
_dmarc.ext	IN TXT	"v=DMARC1; p=reject; fo=1; rua=mailto:dmarc@ext.test,mailto:agg@reports.test,mailto:agg@noauth.test,mailto:old@override.test,mailto:agg@evil.test,https://reports.test/dmarc"
sel._domainkey.ext IN TXT ( $DKIM_TXT )
ext.test._report._dmarc.reports		IN TXT	"v=DMARC1"
ext.test._report._dmarc.noauth		IN TXT	"v=spf1 -all"
ext.test._report._dmarc.override	IN TXT	"v=DMARC1; rua=mailto:new@override.test"
ext.test._report._dmarc.evil		IN TXT	"v=DMARC1; rua=mailto:victim@victim.test"
q		IN A	127.0.0.1
_dmarc.q	IN TXT	"v=DMARC1; p=quarantine; adkim=s; rua=mailto:dmarc@q.test"
other		IN TXT	"v=spf1 ip4:127.0.0.1 -all"
EOF
cat >"$TEST_TMP/reverse.zone" <<'EOF'
$ORIGIN 0.0.127.in-addr.arpa.
$TTL 300
@		IN SOA	ns.test. hostmaster.test. 1 3600 600 86400 300
@		IN NS	ns.test.
1		IN PTR	mail.ext.test.
EOF
start_unbound "$TEST_TMP/test.zone" "$TEST_TMP/reverse.zone"

# ------------------------------------------------------------ portcullis
ETC=$TEST_TMP/etc
mkdir -p "$ETC"
CONF=$ETC/portcullis.conf
cat >"$CONF" <<EOF
# report_dmarc.sh
socket       = inet:$PORT_MILTER@127.0.0.1
policy       = report.policy
authserv_id  = mx.corp.test
resolver     = $DNS_RESOLVER
dns_timeout  = 2s
report_store = lmdb:$TEST_TMP/reports
EOF
cat >"$ETC/report.policy" <<'EOF'
internal domains  corp.test
trusted networks  127.0.0.3/32
rule dmarc: when dmarc is fail and dmarc.policy is reject     then reject "5.7.1 rejected by the DMARC policy of %{from.domain}"
rule quar:  when dmarc is fail and dmarc.policy is quarantine then quarantine "DMARC quarantine"
default accept
EOF
ok "the config and policy load" "$PORTCULLIS" -n -c "$CONF"

SINCE=$(date +%s)
start_sink
start_portcullis "$CONF"
start_postfix "inet:$PORT_MILTER@127.0.0.1"

# ------------------------------------------------------------ traffic
MSG=$TEST_TMP/msg
mkdir -p "$MSG"

# mkmsg FILE MARKER FROM-DOMAIN: a plain message from alice@FROM-DOMAIN.
mkmsg() {
	{
		echo "From: Alice <alice@$3>"
		echo "To: Bob <bob@corp.test>"
		echo "Subject: Quarterly figures"
		echo "Date: Tue, 01 Apr 2025 10:00:00 +0000"
		echo "Message-ID: <$2@$3>"
		echo "X-Test-Id: $2"
		echo
		echo "Hello Bob, message $2."
	} >"$1"
}

# dkim_sign IN OUT: OUT is IN signed d=ext.test s=sel by dkimpy.
dkim_sign() {
	"$DKIM_PY" - "$1" "$2" "$KEYS/sel.pem" <<'EOF'
import sys, dkim
msg = open(sys.argv[1], "rb").read().replace(b"\n", b"\r\n")
sig = dkim.sign(msg, b"sel", b"ext.test", open(sys.argv[3], "rb").read(),
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=[b"from", b"to", b"subject", b"date",
                                 b"message-id", b"x-test-id"])
open(sys.argv[2], "wb").write((sig + msg).replace(b"\r\n", b"\n"))
EOF
}

# sendmsg IP MAILFROM FILE: one message through Postfix from IP.
sendmsg() {
	send "$PORT_POSTFIX" --local-interface "$1" --helo client.ext.test \
		--from "$2" --to bob@corp.test --data "@$3"
}

# (a) twice: signed by ext.test, SPF pass from 127.0.0.1 -> pass, pass
for i in 1 2; do
	mkmsg "$MSG/pass$i.plain" "pass$i" ext.test
	dkim_sign "$MSG/pass$i.plain" "$MSG/pass$i.eml"
	sendmsg 127.0.0.1 alice@ext.test "$MSG/pass$i.eml"
	is "$SEND_CODE" 250 "signed message $i from 127.0.0.1 accepted" || diag_send
done
# (b) signed, from 127.0.0.2 (outside the SPF record): DKIM carries it
mkmsg "$MSG/pass3.plain" pass3 ext.test
dkim_sign "$MSG/pass3.plain" "$MSG/pass3.eml"
sendmsg 127.0.0.2 alice@ext.test "$MSG/pass3.eml"
is "$SEND_CODE" 250 "signed message from 127.0.0.2 accepted" || diag_send
# (c) unsigned From ext.test, envelope other.test (SPF pass, unaligned)
mkmsg "$MSG/forged.eml" forged ext.test
sendmsg 127.0.0.1 bounce@other.test "$MSG/forged.eml"
is "$SEND_CODE" 550 "unaligned forgery of ext.test refused" || diag_send
# (d) the same from news.ext.test, which has no record: sp of ext.test
mkmsg "$MSG/sub.eml" sub news.ext.test
sendmsg 127.0.0.1 bounce@other.test "$MSG/sub.eml"
is "$SEND_CODE" 550 "unaligned forgery of news.ext.test refused (sp=reject)" || diag_send
# (e) q.test, p=quarantine: the forgery is quarantined (accepted: 250)
mkmsg "$MSG/quar.eml" quar q.test
sendmsg 127.0.0.1 bounce@other.test "$MSG/quar.eml"
is "$SEND_CODE" 250 "forgery of q.test accepted into quarantine" || diag_send
# (f) a null sender: SPF of the HELO, envelope_from empty
mkmsg "$MSG/bounce.plain" bounce ext.test
dkim_sign "$MSG/bounce.plain" "$MSG/bounce.eml"
send "$PORT_POSTFIX" --local-interface 127.0.0.1 --helo ext.test \
	--from '<>' --to bob@corp.test --data "@$MSG/bounce.eml"
is "$SEND_CODE" 250 "signed bounce (null sender) accepted" || diag_send
# (g) no DMARC record at all: nothing to report
mkmsg "$MSG/none.eml" none other.test
sendmsg 127.0.0.1 bounce@other.test "$MSG/none.eml"
is "$SEND_CODE" 250 "mail from a domain without DMARC accepted" || diag_send

wait_for_message bounce >/dev/null || fail "the bounce was delivered"
# The rows are written by the daemon's writer thread; a graceful stop
# writes what is queued.
stop_portcullis
is "$PORTCULLIS_STATUS" 0 "portcullis stopped cleanly"
unlike "$(cat "$PORTCULLIS_LOG")" 'report store|report rows lost' \
	"no report store error in the log"
UNTIL=$(($(date +%s) + 1))

# ------------------------------------------------------------ reports
OUT=$TEST_TMP/out
mkdir -p "$OUT"
report() {	# report ARGS...: runs the report command, manifest in $MAN
	MAN=$("$PORTCULLIS" report dmarc -c "$CONF" --since "$SINCE" \
		--until "$UNTIL" --org-name "Corp Test Mail" \
		--email dmarc-reports@corp.test --outdir "$OUT" "$@" 2>"$TEST_TMP/report.err")
	REPORT_RC=$?
	[ -s "$TEST_TMP/report.err" ] && diag_file "$TEST_TMP/report.err"
	return 0
}
report
is "$REPORT_RC" 0 "portcullis report dmarc exits 0"
diag "manifest:" "$MAN"

END=$((UNTIL - 1))
is "$(grep -c '^report ' <<<"$MAN")" 2 "two reports: one per Policy Domain"
EXT=$(awk '$1 == "report" && $2 == "ext.test" { print $3 }' <<<"$MAN")
Q=$(awk '$1 == "report" && $2 == "q.test" { print $3 }' <<<"$MAN")
like "$EXT" "^mx\\.corp\\.test!ext\\.test!$SINCE!$END![0-9a-f]{16}\\.xml\$" \
	"ext.test report named receiver!policy-domain!begin!end!unique-id.xml"
like "$Q" "^mx\\.corp\\.test!q\\.test!$SINCE!$END![0-9a-f]{16}\\.xml\$" "q.test report named likewise"
like "$MAN" "report ext\\.test [^ ]+ records=5 messages=6" "ext.test: 6 messages in 5 records"
like "$MAN" "report q\\.test [^ ]+ records=1 messages=1" "q.test: 1 message in 1 record"
unlike "$MAN" 'other\.test' "no report for a domain without DMARC record"
is "$(ls "$OUT" | grep -c .)" 2 "two files written, nothing else"

for f in "$EXT" "$Q"; do
	ok "$f validates against the RFC 9990 schema" \
		xmllint --noout --schema "$XSD" "$OUT/$f"
done
diag "the ext.test report:" "$(cat "$OUT/$EXT")"

# rows FILE: one line per record, fields in a fixed order.
rows() {
	"$DKIM_PY" - "$1" <<'EOF'
import sys
import xml.etree.ElementTree as ET
ns = {"d": "urn:ietf:params:xml:ns:dmarc-2.0"}
t = ET.parse(sys.argv[1]).getroot()
def g(e, p):
    x = e.find(p, ns)
    return "-" if x is None else (x.text or "")
for r in t.findall("d:record", ns):
    dk = ",".join("%s/%s/%s" % (g(d, "d:domain"), g(d, "d:selector"),
                  g(d, "d:result")) for d in r.findall("d:auth_results/d:dkim", ns))
    why = ",".join(g(x, "d:type") for x in r.findall("d:row/d:policy_evaluated/d:reason", ns))
    print(" ".join([g(r, "d:row/d:source_ip"), g(r, "d:row/d:count"),
        g(r, "d:row/d:policy_evaluated/d:disposition"),
        "dkim=" + g(r, "d:row/d:policy_evaluated/d:dkim"),
        "spf=" + g(r, "d:row/d:policy_evaluated/d:spf"),
        "reason=" + (why or "-"),
        "from=" + g(r, "d:identifiers/d:header_from"),
        "env=" + (g(r, "d:identifiers/d:envelope_from") or "''"),
        "to=" + g(r, "d:identifiers/d:envelope_to"),
        "auth_dkim=" + (dk or "-"),
        "auth_spf=%s/%s/%s" % (g(r, "d:auth_results/d:spf/d:domain"),
            g(r, "d:auth_results/d:spf/d:scope"),
            g(r, "d:auth_results/d:spf/d:result"))]))
EOF
}
got=$(rows "$OUT/$EXT" | sort)
expected=$(sort <<'EOF'
127.0.0.1 2 pass dkim=pass spf=pass reason=- from=ext.test env=ext.test to=corp.test auth_dkim=ext.test/sel/pass auth_spf=ext.test/mfrom/pass
127.0.0.2 1 pass dkim=pass spf=fail reason=- from=ext.test env=ext.test to=corp.test auth_dkim=ext.test/sel/pass auth_spf=ext.test/mfrom/fail
127.0.0.1 1 reject dkim=fail spf=fail reason=- from=ext.test env=other.test to=corp.test auth_dkim=- auth_spf=other.test/mfrom/pass
127.0.0.1 1 reject dkim=fail spf=fail reason=- from=news.ext.test env=other.test to=corp.test auth_dkim=- auth_spf=other.test/mfrom/pass
EOF
)
# the bounce: same IP and results as (a) except the envelope; its own
# record, so 5 lines with it
expected=$(sort <<<"$expected
127.0.0.1 1 pass dkim=pass spf=pass reason=- from=ext.test env='' to=corp.test auth_dkim=ext.test/sel/pass auth_spf=ext.test/mfrom/pass")
is "$got" "$expected" "ext.test: the expected records (IP, count, disposition, alignment, identifiers, auth results)"
like "$(rows "$OUT/$Q")" '^127\.0\.0\.1 1 quarantine dkim=fail spf=fail reason=- from=q\.test env=other\.test to=corp\.test auth_dkim=- auth_spf=other\.test/mfrom/pass$' \
	"q.test: the quarantined forgery"

# policy_published: the record as seen, defaults filled in
pp() { "$DKIM_PY" -c 'import sys, xml.etree.ElementTree as ET
ns = {"d": "urn:ietf:params:xml:ns:dmarc-2.0"}
p = ET.parse(sys.argv[1]).getroot().find("d:policy_published", ns)
print(" ".join("%s=%s" % (c.tag.split("}")[1], c.text) for c in p))' "$1"; }
is "$(pp "$OUT/$EXT")" "domain=ext.test discovery_method=treewalk p=reject sp=reject np=reject adkim=r aspf=r fo=1 testing=n" \
	"ext.test: policy_published"
is "$(pp "$OUT/$Q")" "domain=q.test discovery_method=treewalk p=quarantine sp=quarantine np=quarantine adkim=s aspf=r fo=0 testing=n" \
	"q.test: policy_published"
meta=$("$DKIM_PY" -c 'import sys, xml.etree.ElementTree as ET
ns = {"d": "urn:ietf:params:xml:ns:dmarc-2.0"}
t = ET.parse(sys.argv[1]).getroot()
m = t.find("d:report_metadata", ns)
print(t.find("d:version", ns).text, m.find("d:org_name", ns).text, "|",
      m.find("d:email", ns).text, m.find("d:report_id", ns).text,
      m.find("d:date_range/d:begin", ns).text, m.find("d:date_range/d:end", ns).text)' "$OUT/$EXT")
id=${EXT##*!}
id=${id%.xml}
is "$meta" "1.0 Corp Test Mail | dmarc-reports@corp.test $id $SINCE $END" \
	"report_metadata: org_name, email, report_id (the file's unique-id), date_range"

# destinations
dest() { awk -v d="$1" '($1 == "keep" || $1 == "drop") && $2 == d { print $1, $3 }' <<<"$MAN"; }
is "$(dest ext.test)" "keep dmarc@ext.test
keep agg@reports.test
drop mailto:agg@noauth.test
keep new@override.test
drop mailto:agg@evil.test
drop https://reports.test/dmarc" "ext.test: rua destinations judged (same org kept, authorized kept, unauthorized dropped, override replaced, foreign override dropped, https dropped)"
like "$MAN" 'keep ext\.test agg@reports\.test authorized by ext\.test\._report\._dmarc\.reports\.test' \
	"the kept external destination names its authorization record"
like "$MAN" 'drop ext\.test mailto:agg@noauth\.test not authorized: no v=DMARC1 record at ext\.test\._report\._dmarc\.noauth\.test' \
	"the unauthorized destination says why"
like "$MAN" 'drop ext\.test mailto:agg@evil\.test the authorization record at ext\.test\._report\._dmarc\.evil\.test names another destination host' \
	"an override to another host drops the destination"
is "$(dest q.test)" "keep dmarc@q.test" "q.test: its own address kept"

# the same period again: the same file names (RFC 9990: re-sent reports
# keep their names), now gzipped and with messages to send
rm -f "$OUT"/*
report --gzip --mail
is "$REPORT_RC" 0 "report --gzip --mail exits 0"
GZ=$(awk '$1 == "report" && $2 == "ext.test" { print $3 }' <<<"$MAN")
is "$GZ" "$EXT.gz" "the gzipped report keeps the name, with .xml.gz"
ok "it gunzips to a valid report" \
	eval "gzip -dc '$OUT/$GZ' >'$TEST_TMP/gz.xml' && xmllint --noout --schema '$XSD' '$TEST_TMP/gz.xml'"
is "$(rows "$TEST_TMP/gz.xml" | sort)" "$expected" "the gzipped report has the same records"
EML=$OUT/$GZ.eml
like "$MAN" "mail ext\\.test $GZ\\.eml" "a message is written for ext.test"
if [ -r "$EML" ]; then
	is "$(headers_of "$EML" To)" "dmarc@ext.test, agg@reports.test, new@override.test" \
		"the message goes to the kept destinations only"
	like "$(headers_of "$EML" Subject)" "^Report Domain: ext\\.test Submitter: mx\\.corp\\.test Report-ID: <$id>\$" \
		"Subject as RFC 9990 2.5.2 says"
	ok "the attachment decodes to the gzipped report" eval "
		'$DKIM_PY' -c 'import email, sys
m = email.message_from_binary_file(open(sys.argv[1], \"rb\"))
p = [x for x in m.walk() if x.get_filename() == sys.argv[2]][0]
assert p.get_content_type() == \"application/gzip\"
sys.stdout.buffer.write(p.get_payload(decode=True))' '$EML' '$GZ' | cmp -s - '$OUT/$GZ'"
else
	fail "the message file exists" "$EML"
fi

# --expire: rows of the period deleted once the reports are written
report --expire
is "$REPORT_RC" 0 "report --expire exits 0"
like "$MAN" '(^|
)expired 7$' "the period's 7 rows expired"
report
is "$REPORT_RC" 0 "a report after --expire exits 0"
is "$(grep -c '^report ' <<<"$MAN")" 0 "nothing left to report"

# A store that fails never touches mail: the daemon with its rows going
# to a Redis where nothing listens accepts the message, and says in its
# log that rows were lost.
sed "s|^report_store .*|report_store = redis://127.0.0.1:$PORT_SPARE/0|" \
	"$CONF" >"$ETC/down.conf"
port_free "$PORT_SPARE" || bail_out "port $PORT_SPARE is in use"
PORTCULLIS_LOG=$TEST_TMP/portcullis-down.log
start_portcullis "$ETC/down.conf"
sendmsg 127.0.0.1 alice@ext.test "$MSG/pass1.eml"
is "$SEND_CODE" 250 "with the report store down, a message is accepted as before" || diag_send
lost() { grep -q 'report store redis://127\.0\.0\.1:[0-9]*/0: .*1 DMARC report rows lost' "$PORTCULLIS_LOG"; }
ok "the lost row is logged" poll 100 0.1 lost || diag_file "$PORTCULLIS_LOG"
unlike "$(cat "$PORTCULLIS_LOG")" 'action=tempfail' "no message was tempfailed"
stop_portcullis
is "$PORTCULLIS_STATUS" 0 "portcullis stopped cleanly with the store down"

# usage errors
"$PORTCULLIS" report dmarc -c "$CONF" --since "$UNTIL" --until "$SINCE" 2>/dev/null
is "$?" 2 "--until before --since is a usage error"
"$PORTCULLIS" report dmarc -c "$CONF" --since yesterday --until now 2>/dev/null
is "$?" 2 "a bad time is a usage error"
done_testing
