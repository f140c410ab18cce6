#!/bin/bash
# mta_external_tag.sh - end to end: portcullis behind real Postfix and real
# Sendmail (contrib/ snippets), DNS from a real unbound on loopback.
# Through each MTA: mail from outside is delivered with "[EXTERNAL]" in its
# Subject (also an RFC 2047 one; created when missing; not twice) and
# exactly one Authentication-Results of ours (a forged one of ours removed,
# another server's kept); mail from the trusted network passes untouched;
# the reject and tempfail rules give the client their texts.  Then
# "portcullis check" on the same messages must agree with what the MTAs did.
. "$(dirname "$0")/lib.sh"

have_portcullis || skip_all "portcullis is not built ($PORTCULLIS)"

# ------------------------------------------------------------ DNS
cat >"$TEST_TMP/test.zone" <<'EOF'
$ORIGIN test.
$TTL 300
@		IN SOA	ns.test. hostmaster.test. 1 3600 600 86400 300
@		IN NS	ns.test.
ns		IN A	127.0.0.1
ext		IN TXT	"v=spf1 ip4:127.0.0.1 -all"
_dmarc.ext	IN TXT	"v=DMARC1; p=none"
corp		IN TXT	"v=spf1 ip4:127.0.0.3 -all"
_dmarc.corp	IN TXT	"v=DMARC1; p=reject"
bad		IN TXT	"v=spf1 -all"
mail.ext	IN A	127.0.0.1
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

# ------------------------------------------------------------ portcullis
ETC=$TEST_TMP/etc
mkdir -p "$ETC"
CONF=$ETC/portcullis.conf
cat >"$CONF" <<EOF
# mta_external_tag.sh
socket      = inet:$PORT_MILTER@127.0.0.1
policy      = policy.rules
authserv_id = mx.corp.test
resolver    = $DNS_RESOLVER
dns_timeout = 3s
on_error    = tempfail
EOF
cat >"$ETC/policy.rules" <<'EOF'
# mta_external_tag.sh: 127.0.0.1 is outside, 127.0.0.3 the trusted network
internal domains  corp.test
trusted networks  127.0.0.3/32

external tag "[EXTERNAL]"

rule trusted: when trusted                       then accept
rule blocked: when mail_from is "spam@bad.test"  then reject "5.7.1 sender blocked by test"
rule wait:    when rcpt is "later@corp.test"     then tempfail "4.7.1 try again later, test: 100% sure"
rule ptr:     when mail_from is "ptr@ext.test"   then reject "5.7.1 client name %{client.ptr}"
default accept
EOF

start_sink
start_portcullis "$CONF"
start_postfix "inet:$PORT_MILTER@127.0.0.1"
start_sendmail "inet:$PORT_MILTER@127.0.0.1"

# ------------------------------------------------------------ messages
MSG=$TEST_TMP/msg
mkdir -p "$MSG"
ENC_SUBJECT="=?UTF-8?B?$(printf 'Grüße aus Köln' | base64)?="

# mkmsg FILE MARKER [HEADER…]: a message with From, To, Date, Message-ID,
# the given headers and X-Test-Id MARKER.
mkmsg() {
	local f=$1 id=$2; shift 2
	{
		echo "From: Alice <alice@ext.test>"
		echo "To: Bob <bob@corp.test>"
		echo "Date: Tue, 01 Apr 2025 10:00:00 +0000"
		echo "Message-ID: <$id@ext.test>"
		for h in "$@"; do echo "$h"; done
		echo "X-Test-Id: $id"
		echo "MIME-Version: 1.0"
		echo "Content-Type: text/plain; charset=utf-8"
		echo
		echo "Hello Bob,"
		echo "this is message $id."
	} >"$f"
}

# decoded VALUE: an RFC 2047 header value, decoded.
decoded() {
	python3 -c 'import sys
from email.header import decode_header, make_header
print(str(make_header(decode_header(sys.argv[1]))))' "$1"
}

# ours FILE: how many Authentication-Results carry our authserv-id.
ours() { headers_of "$1" Authentication-Results | grep -ciE '^mx\.corp\.test[[:space:]]*;'; }

declare -A SUBJECT_OF	# case-mta -> delivered Subject
declare -A REPLY_OF	# case-mta -> SMTP reply

suite() {	# suite MTA PORT
	local mta=$1 port=$2 f id
	local out=(--local-interface 127.0.0.1 --helo client.ext.test)

	# (a) plain message from outside
	id=plain-$mta
	mkmsg "$MSG/$id.eml" "$id" "Subject: Quarterly report"
	send "$port" "${out[@]}" --from alice@ext.test --to bob@corp.test --data "@$MSG/$id.eml"
	is "$SEND_CODE" 250 "$mta: message from outside accepted" || diag_send
	if f=$(sent_message "$id"); then
		SUBJECT_OF[$id]=$(header_of "$f" Subject)
		is "${SUBJECT_OF[$id]}" "[EXTERNAL] Quarterly report" "$mta: outside mail tagged"
		is "$(count_headers "$f" Subject)" 1 "$mta: one Subject"
		is "$(ours "$f")" 1 "$mta: exactly one Authentication-Results beginning with mx.corp.test;"
		is "$(count_headers "$f" Authentication-Results)" 1 "$mta: no other Authentication-Results"
		diag "$mta: $(headers_of "$f" Authentication-Results)"
	else
		fail "$mta: outside mail delivered" "no message $id in the sink"
	fi

	# (a) forged Authentication-Results of ours removed, another kept
	id=forged-$mta
	mkmsg "$MSG/$id.eml" "$id" "Subject: Invoice" \
		"Authentication-Results: mx.corp.test; spf=pass smtp.mailfrom=ceo@corp.test" \
		"Authentication-Results: other.example; dkim=pass header.d=other.example"
	send "$port" "${out[@]}" --from alice@ext.test --to bob@corp.test --data "@$MSG/$id.eml"
	is "$SEND_CODE" 250 "$mta: message with a forged A-R accepted" || diag_send
	if f=$(sent_message "$id"); then
		SUBJECT_OF[$id]=$(header_of "$f" Subject)
		is "${SUBJECT_OF[$id]}" "[EXTERNAL] Invoice" "$mta: forged-A-R mail tagged"
		is "$(ours "$f")" 1 "$mta: exactly one A-R of ours after a forged one"
		is "$(headers_of "$f" Authentication-Results | grep -c 'ceo@corp\.test')" 0 \
			"$mta: the forged A-R of ours is gone"
		is "$(headers_of "$f" Authentication-Results | grep -cE '^other\.example;')" 1 \
			"$mta: the A-R of other.example is kept"
		is "$(count_headers "$f" Authentication-Results)" 2 "$mta: two A-R in all"
	else
		fail "$mta: forged-A-R mail delivered" "no message $id in the sink"
	fi

	# (b) trusted network: untouched
	id=trusted-$mta
	mkmsg "$MSG/$id.eml" "$id" "Subject: Internal memo"
	send "$port" --local-interface 127.0.0.3 --helo client.corp.test \
		--from carol@corp.test --to bob@corp.test --data "@$MSG/$id.eml"
	is "$SEND_CODE" 250 "$mta: message from the trusted network accepted" || diag_send
	if f=$(sent_message "$id"); then
		SUBJECT_OF[$id]=$(header_of "$f" Subject)
		is "${SUBJECT_OF[$id]}" "Internal memo" "$mta: trusted mail not tagged"
		is "$(ours "$f")" 0 "$mta: trusted mail has no A-R of ours"
	else
		fail "$mta: trusted mail delivered" "no message $id in the sink"
	fi

	# (c) reject rule decided at MAIL FROM
	id=blocked-$mta
	mkmsg "$MSG/$id.eml" "$id" "Subject: Buy now"
	send "$port" "${out[@]}" --from spam@bad.test --to bob@corp.test --data "@$MSG/$id.eml"
	REPLY_OF[$id]=$SEND_REPLY
	diag "$mta replied to the blocked sender: $SEND_REPLY"
	# decided at MAIL FROM, answered at RCPT TO (smtpd_delay_reject's way)
	if [ "$mta" = sendmail ]; then
		# Sendmail puts the address before a RCPT reply's text
		# (seen with a bare milter too: mta_bench_selftest.sh).
		is "$SEND_REPLY" "550 5.7.1 <bob@corp.test>... sender blocked by test" \
			"$mta: reject rule gives 550 5.7.1 and its text" || diag_send
	else
		is "$SEND_REPLY" "550 5.7.1 sender blocked by test" \
			"$mta: reject rule gives 550 5.7.1 and its text" || diag_send
	fi

	# (c) tempfail rule at RCPT TO
	id=later-$mta
	mkmsg "$MSG/$id.eml" "$id" "Subject: Later"
	send "$port" "${out[@]}" --from alice@ext.test --to later@corp.test --data "@$MSG/$id.eml"
	REPLY_OF[$id]=$SEND_REPLY
	diag "$mta replied to the tempfailed recipient: $SEND_REPLY"
	is "$SEND_REPLY" "451 4.7.1 try again later, test: 100% sure" \
		"$mta: tempfail rule gives 451 4.7.1 and its text, a literal % intact (the glue doubles it for smfi_setreply)" || diag_send

	# client.ptr comes from the test's DNS server through portcullis's
	# resolver: PTR 127.0.0.1 -> mail.ext.test, confirmed by its A record
	id=ptr-$mta
	mkmsg "$MSG/$id.eml" "$id" "Subject: Who am I"
	send "$port" "${out[@]}" --from ptr@ext.test --to bob@corp.test --data "@$MSG/$id.eml"
	like "$SEND_REPLY" '^550 5\.7\.1 (<[^>]*>\.\.\. )?client name mail\.ext\.test$' \
		"$mta: client.ptr resolved through the test DNS server" || diag_send

	# (d) RFC 2047 Subject
	id=encoded-$mta
	mkmsg "$MSG/$id.eml" "$id" "Subject: $ENC_SUBJECT"
	send "$port" "${out[@]}" --from alice@ext.test --to bob@corp.test --data "@$MSG/$id.eml"
	is "$SEND_CODE" 250 "$mta: message with an encoded Subject accepted" || diag_send
	if f=$(sent_message "$id"); then
		SUBJECT_OF[$id]=$(header_of "$f" Subject)
		is "$(decoded "${SUBJECT_OF[$id]}")" "[EXTERNAL] Grüße aus Köln" \
			"$mta: encoded Subject tagged (decoded: tag then the original text)"
		is "$(count_headers "$f" Subject)" 1 "$mta: one Subject (encoded)"
		diag "$mta: encoded Subject delivered as: ${SUBJECT_OF[$id]}"
		is "$(ours "$f")" 1 "$mta: one A-R of ours (encoded Subject)"
	else
		fail "$mta: encoded-Subject mail delivered" "no message $id in the sink"
	fi

	# (d) no Subject at all
	id=nosubject-$mta
	mkmsg "$MSG/$id.eml" "$id"
	send "$port" "${out[@]}" --from alice@ext.test --to bob@corp.test --data "@$MSG/$id.eml"
	is "$SEND_CODE" 250 "$mta: message without Subject accepted" || diag_send
	if f=$(sent_message "$id"); then
		SUBJECT_OF[$id]=$(header_of "$f" Subject)
		is "$(count_headers "$f" Subject)" 1 "$mta: a missing Subject is created"
		is "${SUBJECT_OF[$id]}" "[EXTERNAL]" "$mta: the created Subject is the tag"
		is "$(ours "$f")" 1 "$mta: one A-R of ours (no Subject)"
	else
		fail "$mta: mail without Subject delivered" "no message $id in the sink"
	fi

	# (d) already tagged, behind "Re:": not tagged again
	id=retagged-$mta
	mkmsg "$MSG/$id.eml" "$id" "Subject: Re: [EXTERNAL] Quarterly report"
	send "$port" "${out[@]}" --from alice@ext.test --to bob@corp.test --data "@$MSG/$id.eml"
	is "$SEND_CODE" 250 "$mta: already tagged message accepted" || diag_send
	if f=$(sent_message "$id"); then
		SUBJECT_OF[$id]=$(header_of "$f" Subject)
		is "${SUBJECT_OF[$id]}" "Re: [EXTERNAL] Quarterly report" "$mta: the tag is not added twice"
		is "$(ours "$f")" 1 "$mta: one A-R of ours (already tagged)"
	else
		fail "$mta: already tagged mail delivered" "no message $id in the sink"
	fi
}

suite postfix "$PORT_POSTFIX"
suite sendmail "$PORT_SENDMAIL"
is "$(find_message blocked-postfix; find_message blocked-sendmail; find_message later-postfix; find_message later-sendmail)" "" \
	"refused messages never reached the sink"
ok "portcullis is still running" pid_alive "$PORTCULLIS_PID"

# ------------------------------------------------------------ (e) check
# json_summary FILE: key=value lines from check's JSON (header values
# unfolded); status 1 when the file is not one JSON object.
json_summary() {
	python3 - "$1" <<'EOF'
import json, re, sys
try:
    d = json.load(open(sys.argv[1]))
    assert isinstance(d, dict)
except Exception as e:
    print("error=%s" % e)
    sys.exit(1)
def unfold(v):
    return re.sub(r"\r?\n[ \t]*", " ", str(v)).strip()
def named(key, name):
    return [h for h in (d.get(key) or []) if str(h.get("name", "")).lower() == name]
smtp = d.get("smtp") or {}
print("action=%s" % d.get("action"))
print("rule=%s" % d.get("rule"))
print("reply=%s %s %s" % (smtp.get("code"), smtp.get("dsn"), smtp.get("text")))
print("subject_changed=%s" % "|".join(unfold(h.get("value")) for h in named("headers_changed", "subject")))
print("subject_added=%s" % "|".join(unfold(h.get("value")) for h in named("headers_added", "subject")))
ar = [unfold(h.get("value")) for h in named("headers_added", "authentication-results")]
print("ar_added=%d" % len(ar))
print("ar_ours=%d" % len([v for v in ar if re.match(r"mx\.corp\.test\s*;", v, re.I)]))
print("removed=%s" % ",".join("%s:%s" % (str(h.get("name")).lower(), h.get("index"))
                              for h in (d.get("headers_removed") or [])))
print("changes=%d" % sum(len(d.get(k) or []) for k in ("headers_added", "headers_changed", "headers_removed")))
EOF
}

declare -A J
# run_check CASE IP FROM RCPT: portcullis check on the CASE's message; J[]
run_check() {
	local c=$1 json=$TEST_TMP/check-$1.json
	J=()
	"$PORTCULLIS" check -c "$CONF" --ip "$2" --helo client.ext.test \
		--from "$3" --rcpt "$4" "$MSG/$c.eml" >"$json" 2>"$TEST_TMP/check-$c.err"
	local rc=$?
	is "$rc" 0 "check $c: exit status 0" || diag_file "$TEST_TMP/check-$c.err"
	local k v
	while IFS='=' read -r k v; do J[$k]=$v; done < <(json_summary "$json")
	if [ -n "${J[error]:-}" ]; then
		fail "check $c: prints one JSON object" "${J[error]}"
		diag_file "$json"
		return 1
	fi
	pass "check $c: prints one JSON object"
}

for mta in postfix sendmail; do
	c=plain-$mta
	if run_check "$c" 127.0.0.1 alice@ext.test bob@corp.test; then
		is "${J[action]}" accept "check $c: action accept, as the MTA delivered it"
		like "${J[rule]}" '^(default|None|)$' "check $c: decided by the default, like the MTA path (tagged)"
		is "${J[subject_changed]}" "${SUBJECT_OF[$c]}" "check $c: changed Subject = the one $mta delivered"
		is "${J[ar_ours]}" 1 "check $c: adds one A-R of ours, as $mta delivered"
	fi
	c=forged-$mta
	if run_check "$c" 127.0.0.1 alice@ext.test bob@corp.test; then
		is "${J[action]}" accept "check $c: action accept"
		is "${J[subject_changed]}" "${SUBJECT_OF[$c]}" "check $c: changed Subject = the one $mta delivered"
		is "${J[ar_ours]}" 1 "check $c: adds one A-R of ours"
		is "${J[removed]}" "authentication-results:1" "check $c: removes the forged A-R (index 1), keeps the other"
	fi
	c=trusted-$mta
	if run_check "$c" 127.0.0.3 carol@corp.test bob@corp.test; then
		is "${J[action]}" accept "check $c: action accept"
		is "${J[rule]}" trusted "check $c: rule trusted"
		is "${J[changes]}" 0 "check $c: no header changes, as $mta delivered it untouched"
	fi
	c=blocked-$mta
	if run_check "$c" 127.0.0.1 spam@bad.test bob@corp.test; then
		is "${J[action]}" reject "check $c: action reject"
		is "${J[rule]}" blocked "check $c: rule blocked"
		is "${J[reply]}" "550 5.7.1 sender blocked by test" "check $c: the reply the MTA gave (${REPLY_OF[$c]})"
	fi
	c=later-$mta
	if run_check "$c" 127.0.0.1 alice@ext.test later@corp.test; then
		is "${J[action]}" tempfail "check $c: action tempfail"
		is "${J[rule]}" wait "check $c: rule wait"
		is "${J[reply]}" "451 4.7.1 try again later, test: 100% sure" "check $c: the reply the MTA gave (${REPLY_OF[$c]})"
	fi
	c=encoded-$mta
	if run_check "$c" 127.0.0.1 alice@ext.test bob@corp.test; then
		is "${J[action]}" accept "check $c: action accept"
		is "${J[subject_changed]}" "${SUBJECT_OF[$c]}" "check $c: changed Subject = the one $mta delivered"
	fi
	c=nosubject-$mta
	if run_check "$c" 127.0.0.1 alice@ext.test bob@corp.test; then
		is "${J[action]}" accept "check $c: action accept"
		is "${J[subject_added]}" "${SUBJECT_OF[$c]}" "check $c: added Subject = the one $mta delivered"
		is "${J[subject_changed]}" "" "check $c: no Subject changed"
	fi
	c=retagged-$mta
	if run_check "$c" 127.0.0.1 alice@ext.test bob@corp.test; then
		is "${J[action]}" accept "check $c: action accept"
		is "${J[subject_changed]}${J[subject_added]}" "" "check $c: Subject left alone, as $mta delivered it"
	fi
done

[ "$_tap_failed" -gt 0 ] && diag_file "$PORTCULLIS_LOG" 40
done_testing
