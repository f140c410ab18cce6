#!/bin/bash
# mta_bench_selftest.sh - the bench itself, without portcullis: the sink,
# Postfix and Sendmail relaying to it, unbound answering from a zone file,
# and both MTAs with the contrib/ snippets pointing at a closed milter port
# (Postfix: 451 4.7.1, Sendmail: 451 4.3.2 with F=T).
. "$(dirname "$0")/lib.sh"

start_sink
start_postfix ""
start_sendmail ""

cat >"$TEST_TMP/bench.test.zone" <<'EOF'
$ORIGIN bench.test.
$TTL 300
@	IN SOA	ns.bench.test. hostmaster.bench.test. 1 3600 600 86400 300
@	IN NS	ns.bench.test.
ns	IN A	127.0.0.1
@	IN TXT	"v=spf1 ip4:127.0.0.0/8 -all"
EOF
start_unbound "$TEST_TMP/bench.test.zone"
is "$(dns_query bench.test TXT)" '"v=spf1 ip4:127.0.0.0/8 -all"' "unbound answers from the zone file"
is "$(dig +tries=1 +time=2 @127.0.0.1 -p "$PORT_DNS" bench.test TXT | grep -c 'flags:.* aa')" 1 "the answer is authoritative"
like "$(dig +tries=1 +time=2 @127.0.0.1 -p "$PORT_DNS" example.com A)" 'status: (REFUSED|SERVFAIL)' "no recursion for other names"

i=0
for mta in postfix sendmail; do
	port=$PORT_POSTFIX; [ $mta = sendmail ] && port=$PORT_SENDMAIL
	for src in 127.0.0.1 127.0.0.3; do
		i=$((i + 1))
		id=self-$mta-$src
		send "$port" --local-interface "$src" --helo client.ext.test \
			--from alice@ext.test --to bob@corp.test \
			--header "X-Test-Id: $id" --header "Subject: bench $mta $src"
		is "$SEND_CODE" 250 "$mta accepts a message from $src" || diag_send
		if f=$(sent_message "$id"); then
			pass "$mta relays the message from $src to the sink"
			is "$(header_of "$f" Subject)" "bench $mta $src" "$mta: Subject intact"
			like "$(header_of "$f" X-Rcpt-Args)" "^<bob@corp.test>( |$)" "$mta: envelope recipient"
		else
			fail "$mta relays the message from $src to the sink" "sink has $(sink_count) files"
			[ $mta = postfix ] && diag "$(postfix_log | tail -n 20)"
		fi
	done
done
helo_pf=$(header_of "$(find_message self-postfix-127.0.0.1)" X-Helo-Args)
helo_sm=$(header_of "$(find_message self-sendmail-127.0.0.1)" X-Helo-Args)
isnt "$helo_pf" "$helo_sm" "X-Helo-Args tells the MTAs apart ($helo_pf / $helo_sm)"
ok "wait_for_delivery counts 4 complete messages" wait_for_delivery 4 10

# Folded headers and counting.
f=$(find_message self-postfix-127.0.0.1)
printf 'X-A: one\nX-b: two\n\tcontinued\nx-a: three\n\nbody\nX-A: not a header\n' >"$TEST_TMP/h.eml"
is "$(count_headers "$TEST_TMP/h.eml" x-a)" 2 "count_headers is case-insensitive and stops at the body"
is "$(header_of "$TEST_TMP/h.eml" X-B)" "two continued" "header_of unfolds"

# The contrib snippets with a milter that is not there.
stop_mtas_for_milter_test() {
	_postfix_stop
	stop_pid "$SM_PID" TERM 100
	_stop_group "$SM_PID"
}
stop_mtas_for_milter_test
ok "ports closed after stopping the MTAs" eval "poll 100 0.1 port_closed $PORT_POSTFIX && poll 100 0.1 port_closed $PORT_SENDMAIL"
start_postfix "inet:${PORT_MILTER}@127.0.0.1"
start_sendmail "inet:${PORT_MILTER}@127.0.0.1"
ok "Postfix main.cf has the snippet with the socket replaced" \
	grep -qx "smtpd_milters = inet:127.0.0.1:$PORT_MILTER" "$PF_DIR/conf/main.cf"
ok "sendmail.cf has the filter with the socket replaced" \
	grep -q "^Xportcullis, S=inet:$PORT_MILTER@127.0.0.1, F=T" "$SM_DIR/conf/sendmail.cf"
like "$(grep '^O Milter.macros.connect=' "$SM_DIR/conf/sendmail.cf")" '\{client_addr\}' "sendmail.cf sends {client_addr} at connect"
like "$(LD_LIBRARY_PATH=$PF_LIBS "$PF_ROOT/usr/sbin/postconf" -c "$PF_DIR/conf" -h milter_connect_macros)" '\{client_addr\}' "postconf sees {client_addr} at connect"

send "$PORT_POSTFIX" --from alice@ext.test --to bob@corp.test --header "X-Test-Id: down-pf"
is "$SEND_REPLY" "451 4.7.1 Service unavailable - try again later" "Postfix tempfails with the milter down" || diag_send
pf_down=$SEND_REPLY
send "$PORT_SENDMAIL" --from alice@ext.test --to bob@corp.test --header "X-Test-Id: down-sm"
like "$SEND_REPLY" '^451 4\.3\.2 ' "Sendmail tempfails with the milter down" || diag_send
diag "milter down: Postfix '$pf_down'"
diag "milter down: Sendmail '$SEND_REPLY'"
is "$(sink_count)" 4 "nothing more reached the sink"

pgid=$(ps -o pgid= -p "$SM_PID" | tr -d ' ')
is "$pgid" "$SM_PID" "sendmail leads its own process group"

# A fake milter (tests/integration/fake_milter.py): what each MTA does with
# a milter's replies and header edits.
MACROS=$TEST_TMP/macros.log
python3 "$_lib_dir/fake_milter.py" "$PORT_MILTER" "$MACROS" >"$TEST_TMP/fake.log" 2>&1 &
FAKE_PID=$!
_track fake_milter "$FAKE_PID"
poll 100 0.05 port_listening "$PORT_MILTER" || bail_out "fake milter did not start"
for mta in postfix sendmail; do
	port=$PORT_POSTFIX; [ $mta = sendmail ] && port=$PORT_SENDMAIL
	send "$port" --from spam@bad.test --to bob@corp.test --header "X-Test-Id: fk-block-$mta"
	# Sendmail puts the address before the text of a MAIL FROM reply.
	expect="550 5.7.1 sender blocked by test"
	[ $mta = sendmail ] && expect="550 5.7.1 <spam@bad.test>... sender blocked by test"
	is "$SEND_REPLY" "$expect" "$mta relays the milter's MAIL reject text" || diag_send
	send "$port" --from alice@ext.test --to later@corp.test --header "X-Test-Id: fk-wait-$mta"
	is "$SEND_REPLY" "451 4.7.1 try again later, test" "$mta relays the milter's RCPT tempfail text" || diag_send
	printf '%s\n' "From: alice@ext.test" "To: bob@corp.test" "Subject: hello there" \
		"Authentication-Results: mx.corp.test; spf=pass smtp.mailfrom=ceo@corp.test" \
		"Authentication-Results: other.example; dkim=pass header.d=other.example" \
		"X-Test-Id: fk-tag-$mta" "" "body" >"$TEST_TMP/fk-$mta.eml"
	send "$port" --from alice@ext.test --to bob@corp.test --data "@$TEST_TMP/fk-$mta.eml"
	is "$SEND_CODE" 250 "$mta accepts through the fake milter" || diag_send
	if f=$(sent_message "fk-tag-$mta"); then
		is "$(header_of "$f" Subject)" "[EXTERNAL] hello there" "$mta applies the Subject change"
		is "$(headers_of "$f" Authentication-Results | grep -c '^mx\.corp\.test;')" 1 "$mta: one A-R of ours"
		is "$(headers_of "$f" Authentication-Results | grep -c 'ceo@corp')" 0 "$mta removes the forged A-R"
		is "$(headers_of "$f" Authentication-Results | grep -c '^other\.example;')" 1 "$mta keeps the other A-R"
		diag "$mta delivered: $(grep -i '^\(subject\|authentication-results\):' "$f" | tr '\n' '|')"
	else
		fail "$mta delivers through the fake milter"
	fi
	printf '%s\n' "From: alice@ext.test" "To: bob@corp.test" "X-Test-Id: fk-nosubj-$mta" "" "body" >"$TEST_TMP/fk-ns-$mta.eml"
	send "$port" --from alice@ext.test --to bob@corp.test --data "@$TEST_TMP/fk-ns-$mta.eml"
	f=$(wait_for_message "fk-nosubj-$mta")
	is "$(count_headers "$f" Subject)/$(header_of "$f" Subject)" "1/[EXTERNAL]" "$mta adds a missing Subject"
	send "$port" --local-interface 127.0.0.3 --from alice@ext.test --to bob@corp.test \
		--header "X-Test-Id: fk-trusted-$mta" --header "Subject: inside"
	f=$(wait_for_message "fk-trusted-$mta")
	is "$(header_of "$f" Subject)" "inside" "$mta: the milter sees the client address 127.0.0.3"
done
ok "the fake milter is still running" pid_alive "$FAKE_PID"

# The macros the contrib/ snippets make the MTAs send, per stage: what
# each MTA sent for the last message (the trusted one, from 127.0.0.3).
# macro STAGE NAME: the last value sent at STAGE (C H M R N E).
macro() { awk -v s="$1" -v n="$2" '$1 == s && index($2, n "=") == 1 { v = substr($2, length(n) + 2) } END { print v }' "$MACROS"; }
: >"$MACROS"
for mta in postfix sendmail; do
	port=$PORT_POSTFIX; [ $mta = sendmail ] && port=$PORT_SENDMAIL
	: >"$MACROS"
	send "$port" --local-interface 127.0.0.3 --from alice@ext.test --to bob@corp.test \
		--header "X-Test-Id: fk-macros-$mta"
	wait_for_message "fk-macros-$mta" >/dev/null
	is "$(macro C '{client_addr}')" 127.0.0.3 "$mta sends {client_addr} at connect"
	like "$(macro C '{client_name}')" '.' "$mta sends {client_name} at connect ($(macro C '{client_name}'))"
	like "$(macro N i)" '^[0-9A-Za-z]+$' "$mta sends the queue id i at end of headers"
	is "$(macro E i)" "$(macro N i)" "$mta sends the same i at end of message"
	# and nothing portcullis does not read (every macro costs bytes with
	# every message): the snippets list exactly what the daemon asks for
	# (Postfix repeats i with every header field and body chunk)
	is "$(awk '{ sub(/=.*/, "", $2); print $1 " " $2 }' "$MACROS" | sort -u |
		grep -v -x -e 'C {client_addr}' -e 'C {client_name}' -e 'M {auth_authen}' -e '[MRTLNBE] i' |
		tr '\n' ' ')" "" "$mta sends no other macro"
	diag "$mta macros: $(sort -u "$MACROS" | tr '\n' ' ')"
done
done_testing
