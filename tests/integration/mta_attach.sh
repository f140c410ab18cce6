#!/bin/bash
# mta_attach.sh - attachment inspection end to end, through real Postfix
# and real Sendmail with portcullis attached by the contrib/ snippets:
#  (1) a message with an executable attachment (its name RFC 2231-encoded)
#      is refused 550 5.7.1 in reply to the end of DATA, naming the file,
#      and nothing is delivered; the same name inside a zip too;
#  (2) with a "strip" rule the message is delivered without the
#      attachment: the delivered copy has the notice naming it, keeps the
#      text part, and no longer has the executable's bytes; a clean message
#      is delivered untouched; through Sendmail, and through Postfix (a
#      strip rule for one recipient, before the reject rule);
#  (3) "portcullis check" agrees with both (JSON: action, body_replaced),
#      and the attachment_* limit keys of portcullis.conf reach the
#      scanner (attachment.limits).
. "$(dirname "$0")/lib.sh"

have_portcullis || skip_all "portcullis is not built ($PORTCULLIS)"
PY=/usr/bin/python3
[ -x "$PY" ] || skip_all "no $PY"

ETC=$TEST_TMP/etc MSG=$TEST_TMP/msg
mkdir -p "$ETC" "$MSG"
cat >"$ETC/reject.rules" <<'EOF'
# mta_attach.sh: refuse; strip for one recipient
attachments block exe scr js
rule strip: when attachment.blocked and rcpt in { strip@corp.test } then strip
rule attach: when attachment.blocked then reject "5.7.1 attachment %{attachment.name} is not allowed"
default accept
EOF
cat >"$ETC/strip.rules" <<'EOF'
# mta_attach.sh: strip
attachments block exe scr js
rule attach: when attachment.blocked then strip
default accept
EOF
# conf NAME PORT: a config for the policy NAME.rules
conf() {
	cat >"$ETC/$1.conf" <<EOF
socket      = inet:$2@127.0.0.1
policy      = $1.rules
authserv_id = mx.corp.test
dns_timeout = 2s
EOF
}
conf reject "$PORT_MILTER"
conf strip "$((PORT_SPARE + 1))"

# The executable's bytes: a marker we can look for in what is delivered.
EXE_B64=$(printf 'MZ-portcullis-test-executable-%064d' 0 | base64 -w 60)
# mkmsg FILE ID KIND: KIND exe (attachment), zip (exe inside a zip), clean
mkmsg() {
	local f=$1 id=$2 kind=$3
	{
		printf 'From: alice@ext.test\r\nTo: bob@corp.test\r\nSubject: %s\r\nX-Test-Id: %s\r\n' "$id" "$id"
		printf 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="sep"\r\n\r\n'
		printf -- '--sep\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nPlease see the attached file.\r\n'
		case $kind in
		exe)
			printf -- "--sep\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=UTF-8''Rechnung%%202026.exe\r\nContent-Transfer-Encoding: base64\r\n\r\n"
			printf '%s\r\n' "$EXE_B64" ;;
		zip)
			printf -- '--sep\r\nContent-Type: application/zip; name="docs.zip"\r\nContent-Disposition: attachment; filename="docs.zip"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
			"$PY" -c '
import base64, io, sys, zipfile
b = io.BytesIO()
with zipfile.ZipFile(b, "w") as z:
    z.writestr("readme.txt", "hello")
    z.writestr("setup/install.exe", "MZ" + "x" * 100)
sys.stdout.write(base64.encodebytes(b.getvalue()).decode().replace("\n", "\r\n"))' ;;
		clean)
			printf -- '--sep\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename="report.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
			printf '%s\r\n' "$(printf '%%PDF-1.4 test' | base64)" ;;
		esac
		printf -- '--sep--\r\n'
	} >"$f"
}

start_sink
start_portcullis "$ETC/reject.conf"
PID_REJECT=$PORTCULLIS_PID LOG_REJECT=$PORTCULLIS_LOG
PORTCULLIS_LOG=$TEST_TMP/portcullis-strip.log
start_portcullis "$ETC/strip.conf"
start_postfix "inet:$PORT_MILTER@127.0.0.1"
start_sendmail "inet:$((PORT_SPARE + 1))@127.0.0.1"

sendmsg() {	# sendmsg PORT FILE [RCPT]
	send "$1" --helo mx.ext.test --from alice@ext.test --to "${3:-bob@corp.test}" --data "@$2"
}
refused_at_data() {
	awk '/^ *-> \.$/ { d = 1 } d && /^<\*\* +5[0-9][0-9]/ { f = 1 } END { exit !f }' "$SEND_LOG"
}
delivered() { sent_message "$1" >/dev/null; }

# ------------------------------------------------------------ (1) Postfix, reject
mkmsg "$MSG/exe.eml" att-exe exe
sendmsg "$PORT_POSTFIX" "$MSG/exe.eml"
is "$SEND_REPLY" "550 5.7.1 attachment Rechnung 2026.exe is not allowed" \
	"(1) postfix: an .exe attachment (RFC 2231 name) is refused, naming the file" || diag_send
ok "(1) postfix: refused in reply to the end of DATA" refused_at_data
mkmsg "$MSG/zip.eml" att-zip zip
sendmsg "$PORT_POSTFIX" "$MSG/zip.eml"
is "$SEND_REPLY" "550 5.7.1 attachment docs.zip/setup/install.exe is not allowed" \
	"(1) postfix: an .exe inside a zip is refused, naming archive and member" || diag_send
mkmsg "$MSG/clean.eml" att-clean clean
sendmsg "$PORT_POSTFIX" "$MSG/clean.eml"
is "$SEND_CODE" 250 "(1) postfix: a PDF attachment is accepted" || diag_send
ok "(1) ... and delivered" delivered att-clean

# ------------------------------------------------------------ (2) Sendmail, strip
mkmsg "$MSG/strip.eml" att-strip exe
sendmsg "$PORT_SENDMAIL" "$MSG/strip.eml"
is "$SEND_CODE" 250 "(2) sendmail, strip rule: the message is accepted" || diag_send
if f=$(wait_for_message att-strip); then
	pass "(2) ... and delivered"
	body=$(cat "$f")
	like "$body" 'The attachment Rechnung 2026\.exe was removed' \
		"(2) the delivered message has the notice naming the file"
	like "$body" 'Please see the attached file\.' "(2) the text part is kept"
	unlike "$body" "${EXE_B64:0:40}" "(2) the executable's bytes are gone"
	unlike "$body" 'filename\*=UTF-8' "(2) the attachment's part header is gone"
else
	fail "(2) ... and delivered" "no message att-strip in the sink"
fi
mkmsg "$MSG/strip-clean.eml" att-strip-clean clean
sendmsg "$PORT_SENDMAIL" "$MSG/strip-clean.eml"
if f=$(wait_for_message att-strip-clean); then
	like "$(cat "$f")" "$(printf '%%PDF-1.4 test' | base64)" \
		"(2) strip rule, clean message: delivered with its attachment"
else
	fail "(2) strip rule, clean message: delivered with its attachment" "not in the sink"
fi

# ------------------------------------------------------------ (2) Postfix, strip
mkmsg "$MSG/pf-strip.eml" att-pf-strip exe
sendmsg "$PORT_POSTFIX" "$MSG/pf-strip.eml" strip@corp.test
is "$SEND_CODE" 250 "(2) postfix, strip rule: the message is accepted" || diag_send
if f=$(wait_for_message att-pf-strip); then
	pass "(2) postfix: ... and delivered"
	body=$(cat "$f")
	like "$body" 'The attachment Rechnung 2026\.exe was removed by the mail filter portcullis' \
		"(2) postfix: the delivered message has the text/plain notice naming the file"
	# parsed as a mail client would: a text/plain part holds the notice,
	# no part carries a file name any more
	is "$("$PY" -c '
import email, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"))
notice = [p for p in m.walk() if p.get_content_type() == "text/plain"
          and b"Rechnung 2026.exe was removed" in (p.get_payload(decode=True) or b"")]
names = [p.get_filename() for p in m.walk() if p.get_filename()]
print(len(notice), names)' "$f")" "1 []" "(2) postfix: the notice is a text/plain part; no part names a file"
	like "$body" 'Please see the attached file\.' "(2) postfix: the text part is kept"
	unlike "$body" "${EXE_B64:0:40}" "(2) postfix: the executable's bytes are gone"
	unlike "$body" 'filename\*=UTF-8' "(2) postfix: the attachment's part header is gone"
	like "$body" 'X-Test-Id: att-pf-strip' "(2) postfix: the message header is kept"
else
	fail "(2) postfix: ... and delivered" "no message att-pf-strip in the sink"
fi

# ------------------------------------------------------------ (3) check
J=$("$PORTCULLIS" check -c "$ETC/reject.conf" --ip 192.0.2.7 --from alice@ext.test \
	--rcpt bob@corp.test "$MSG/exe.eml" 2>/dev/null)
jget() { "$PY" -c 'import json,sys; j=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1" <<<"$J"; }
is "$(jget 'j["action"]')" reject "(3) check: reject"
is "$(jget '",".join(j["facts"]["attachment.names"])')" "Rechnung 2026.exe" "(3) check: attachment.names"
J=$("$PORTCULLIS" check -c "$ETC/strip.conf" --ip 192.0.2.7 --from alice@ext.test \
	--rcpt bob@corp.test "$MSG/exe.eml" 2>/dev/null)
is "$(jget 'j["action"]')" strip "(3) check, strip policy: strip"
like "$(jget 'j["body_replaced"]')" 'The attachment Rechnung 2026\.exe was removed' \
	"(3) check: body_replaced holds the notice"

# the attachment_* keys reach the scanner: one archive entry allowed
cp "$ETC/reject.conf" "$ETC/entries1.conf"
echo "attachment_archive_entries = 1" >>"$ETC/entries1.conf"
J=$("$PORTCULLIS" check -c "$ETC/reject.conf" --ip 192.0.2.7 --from alice@ext.test \
	--rcpt bob@corp.test "$MSG/zip.eml" 2>/dev/null)
is "$(jget 'j["facts"].get("attachment.limits")')" False "(3) check, default limits: the zip is within them"
J=$("$PORTCULLIS" check -c "$ETC/entries1.conf" --ip 192.0.2.7 --from alice@ext.test \
	--rcpt bob@corp.test "$MSG/zip.eml" 2>/dev/null)
is "$(jget 'j["facts"].get("attachment.limits")')" True \
	"(3) check, attachment_archive_entries = 1: attachment.limits"

for id in att-exe att-zip; do
	if find_message "$id" >/dev/null 2>&1; then fail "refused $id was not delivered"
	else pass "refused $id was not delivered"
	fi
done
ok "both portcullis instances are still running" \
	bash -c "kill -0 $PID_REJECT && kill -0 $PORTCULLIS_PID"
done_testing
