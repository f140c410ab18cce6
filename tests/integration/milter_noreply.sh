#!/bin/bash
# milter_noreply.sh - the steps the MTA need not wait for.  portcullis
# negotiates no reply (SMFIP_NR_*) for connect, HELO, MAIL, the headers,
# end of header and the body (DATA and unknown commands are not even sent), and answers RCPT and end of message only
# (RCPT stays answered: a refusal of one recipient exists only there).  A
# decision made at a step without a reply is given at the next answered
# one, with the same reply: an accept of a trusted client at connect as
# the RCPT answer, a refused sender address at RCPT, a rule decided at end
# of header at end of message.  Driven by milter_client.py, which sends a
# step marked "no reply" without waiting, as Postfix does.
. "$(dirname "$0")/lib.sh"

have_portcullis || skip_all "portcullis is not built ($PORTCULLIS)"
PY=/usr/bin/python3
CLIENT=$(dirname "$0")/milter_client.py

ETC=$TEST_TMP/etc
mkdir -p "$ETC"
cat >"$ETC/policy.rules" <<'POL'
trusted networks 192.0.2.10
external tag "[EXTERNAL]"
rule trusted:  when trusted then accept
rule refused:  when subject contains "forbidden" then reject "5.7.1 subject refused"
rule welcome:  when subject contains "welcome" then accept
rule held:     when subject contains "later" then tempfail "4.7.1 try later"
default accept
POL
cat >"$ETC/portcullis.conf" <<CONF
socket      = unix:$TEST_TMP/milter.sock
policy      = $ETC/policy.rules
authserv_id = mx.corp.test
resolver    = 127.0.0.1:9
dns_timeout = 1s
CONF
start_portcullis "$ETC/portcullis.conf"

# send ARGS...: one message; prints the client's JSON line
send() {
	"$PY" "$CLIENT" "unix:$TEST_TMP/milter.sock" message "$@" 2>&1
}
# field JSON EXPR: a value of the JSON line, as Python prints it
field() {
	"$PY" -c 'import json, sys; r = json.loads(sys.argv[1]); print(eval(sys.argv[2], {}, {"r": r}))' "$1" "$2" 2>&1
}

out=$(send --ip 192.0.2.7 --from a@ext.test --rcpt b@corp.test --subject hello)
is "$(field "$out" "r['noreply']")" \
    "['body', 'connect', 'data', 'eoh', 'header', 'helo', 'mail', 'unknown']" \
    "no reply negotiated for connect, HELO, MAIL, headers, end of header, body; RCPT answered"
is "$(field "$out" "r['stages']")" \
    "{'connect': None, 'helo': None, 'mail': None, 'rcpt': {'continue': 1}}" \
    "an undecided message: only RCPT is answered before the end"
is "$(field "$out" "(r['action'], r['authres'])")" "('accept', True)" \
    "and the end of message carries the verdict and Authentication-Results"

out=$(send --ip 192.0.2.10 --from a@ext.test --rcpt b@corp.test --subject hello)
is "$(field "$out" "r['stages']['rcpt']")" "{'accept': 1}" \
    "a trusted client accepted at connect: the accept is the RCPT answer"
is "$(field "$out" "r.get('edits', [])")" "[]" \
    "and the MTA is told nothing more of the message (no tag, no header)"

out=$(send --ip 192.0.2.7 --from '@ext.test' --rcpt b@corp.test --rcpt c@corp.test)
is "$(field "$out" "r.get('rcpt_replies')")" \
    "['550 5.1.7 invalid sender address', '550 5.1.7 invalid sender address']" \
    "a sender refused at MAIL is refused at each RCPT, with the reply of MAIL"

out=$(send --ip 192.0.2.7 --from a@ext.test --rcpt b@corp.test --subject "a forbidden word")
is "$(field "$out" "(r['action'], r['reply'])")" "('reply', '550 5.7.1 subject refused')" \
    "a rule decided at end of header refuses at end of message"
is "$(field "$out" "r['authres']")" "False" "without header edits"

out=$(send --ip 192.0.2.7 --from a@ext.test --rcpt b@corp.test --subject "later please")
is "$(field "$out" "(r['action'], r['reply'])")" "('reply', '451 4.7.1 try later')" \
    "a tempfail decided at end of header: the same at end of message"

out=$(send --ip 192.0.2.7 --from a@ext.test --rcpt b@corp.test --subject "welcome aboard")
is "$(field "$out" "(r['action'], r['edits'])")" "('accept', [])" \
    "an accept decided at end of header: accepted untouched at end of message"

# the next message of the daemon is judged afresh (nothing kept over)
out=$(send --ip 192.0.2.7 --from a@ext.test --rcpt b@corp.test --subject hello)
is "$(field "$out" "(r['action'], r['authres'])")" "('accept', True)" \
    "a plain message after those gets its verdict and header"

done_testing
