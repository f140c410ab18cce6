#!/bin/bash
# policy_stages.sh - the policy language seen through real MTAs (Postfix and
# Sendmail relaying to smtp-sink, portcullis attached by the contrib/
# snippets), from the SMTP client's side (swaks transcripts), from the sink
# (what was delivered) and from the daemon's one log line per message:
#  (1) staging, Kleene three-valued (DESIGN.md section 3): a reject rule that
#      needs only the envelope, placed first, refuses before DATA: decided
#      at MAIL FROM, answered at RCPT TO (portcullis delays refusals decided
#      before RCPT to each RCPT, as Postfix's smtpd_delay_reject does); the
#      same rule behind a rule that reads the Subject refuses only in reply
#      to the end of data;
#  (2) a RCPT-stage rule refuses one recipient of three: 550 for it, 250 for
#      the others, who alone receive the message;
#  (3) a monitor rule that matches never decides: the message is delivered,
#      the log line names it (monitored=big:reject@STAGE), "portcullis check"
#      lists it in "monitored" with action reject while its action is accept;
#  (4) SIGHUP re-reads a list file: a sender appended to it is refused after
#      the reload, by the same daemon process.
# One daemon throughout; each policy is installed by SIGHUP, with a bounded
# wait for its "reloaded" log line.
. "$(dirname "$0")/lib.sh"

have_portcullis || skip_all "portcullis is not built ($PORTCULLIS)"

# ------------------------------------------------------------ DNS
# Nothing here needs DNS, but the daemon must never ask the system's.
cat >"$TEST_TMP/test.zone" <<'EOF'
$ORIGIN test.
$TTL 300
@		IN SOA	ns.test. hostmaster.test. 1 3600 600 86400 300
@		IN NS	ns.test.
ns		IN A	127.0.0.1
EOF
start_unbound "$TEST_TMP/test.zone"

# ------------------------------------------------------------ policies
ETC=$TEST_TMP/etc
mkdir -p "$ETC"
CONF=$ETC/portcullis.conf
cat >"$CONF" <<EOF
# policy_stages.sh
socket      = inet:$PORT_MILTER@127.0.0.1
policy      = policy.rules
authserv_id = mx.corp.test
resolver    = $DNS_RESOLVER
dns_timeout = 3s
on_error    = tempfail
EOF

HEAD='internal domains  corp.test
trusted networks  127.0.0.3/32'

# (1a, 2) the envelope rules first
cat >"$ETC/early.rules" <<EOF
# policy_stages.sh: envelope rules first
$HEAD
rule block:  when mail_from.domain is "bad.test" then reject "5.7.1 blocked"
rule nobody: when rcpt is "gone@corp.test"       then reject "5.1.1 no such user"
rule subj:   when subject contains "zzz"         then quarantine
default accept
EOF
# (1b) the same rules behind one that reads the Subject
cat >"$ETC/late.rules" <<EOF
# policy_stages.sh: a header rule first
$HEAD
rule subj:   when subject contains "zzz"         then quarantine
rule block:  when mail_from.domain is "bad.test" then reject "5.7.1 blocked"
rule nobody: when rcpt is "gone@corp.test"       then reject "5.1.1 no such user"
default accept
EOF
# (3) a monitor rule first
cat >"$ETC/monitor.rules" <<EOF
# policy_stages.sh: a monitor rule first
$HEAD
rule big monitor: when subject contains "monitor-me" then reject "5.7.1 would reject"
rule block:  when mail_from.domain is "bad.test" then reject "5.7.1 blocked"
default accept
EOF
# (4) a list file
cat >"$ETC/list.rules" <<EOF
# policy_stages.sh: a list file, re-read at SIGHUP
$HEAD
list blocked file "blocked.txt"
rule b: when mail_from in blocked then reject "5.7.1 listed"
default accept
EOF
printf '%s\n' '# policy_stages.sh: blocked senders' 'someone@else.test' >"$ETC/blocked.txt"

for p in early late monitor list; do
	sed "s|^policy *=.*|policy = $p.rules|" "$CONF" >"$ETC/$p.conf"
	out=$("$PORTCULLIS" -n -c "$ETC/$p.conf" 2>&1)
	is "$?" 0 "-n accepts the $p policy" || diag "$out"
done

# install_policy NAME: NAME.rules becomes policy.rules (atomically).
install_policy() {
	cp "$ETC/$1.rules" "$ETC/policy.rules.new" && mv -f "$ETC/policy.rules.new" "$ETC/policy.rules"
}

# reloads / reload_failures: how many reloads the log reports so far.
reloads() { grep -c 'reloaded ' "$PORTCULLIS_LOG" 2>/dev/null; }
reload_failures() { grep -c 'reload failed' "$PORTCULLIS_LOG" 2>/dev/null; }

# hup_and_wait DESC: SIGHUP the daemon, then wait (bounded, 10 s) for one
# more "reloaded" line (or a "reload failed" one, or its death); one
# assertion.
hup_and_wait() {
	local n f
	n=$(reloads) f=$(reload_failures)
	kill -HUP "$PORTCULLIS_PID"
	_reload_seen() {
		[ "$(reloads)" -gt "$n" ] || [ "$(reload_failures)" -gt "$f" ] ||
			pid_gone "$PORTCULLIS_PID"
	}
	poll 100 0.1 _reload_seen
	if [ "$(reloads)" -gt "$n" ] && [ "$(reload_failures)" -eq "$f" ]; then
		pass "$1: SIGHUP, \"reloaded\" logged"
	else
		fail "$1: SIGHUP, \"reloaded\" logged"
		diag_file "$PORTCULLIS_LOG" 20
		return 1
	fi
}

# ------------------------------------------------------------ the bench
install_policy early
start_sink
start_portcullis "$CONF"
start_postfix "inet:$PORT_MILTER@127.0.0.1"
start_sendmail "inet:$PORT_MILTER@127.0.0.1"

MSG=$TEST_TMP/msg
mkdir -p "$MSG"

# mkmsg FILE MARKER SUBJECT: a message with that Subject and X-Test-Id.
mkmsg() {
	cat >"$1" <<EOF
From: Alice <alice@ext.test>
To: Bob <bob@corp.test>
Subject: $3
Date: Tue, 01 Apr 2025 10:00:00 +0000
Message-ID: <$2@ext.test>
X-Test-Id: $2
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Hello Bob,
this is message $2.
EOF
}

# replies: the SMTP dialogue of the last transcript ($SEND_LOG), one
# "COMMAND CODE" line per final server reply, COMMAND being what the reply
# answers: CONNECT EHLO MAIL RCPT DATA DOT (the end of data) QUIT …
replies() {
	awk '
		BEGIN { cmd = "CONNECT" }
		{ sub(/\r$/, "") }
		/^ *-> / {
			l = $0; sub(/^ *-> /, "", l)
			if (indata) { if (l == ".") { cmd = "DOT"; indata = 0 }; next }
			u = toupper(l)
			if (u ~ /^MAIL FROM:/) cmd = "MAIL"
			else if (u ~ /^RCPT TO:/) cmd = "RCPT"
			else if (u ~ /^(EHLO|HELO) /) cmd = "EHLO"
			else { cmd = u; sub(/ .*/, "", cmd) }
			next
		}
		/^<(-|\*\*) +[0-9][0-9][0-9]( |$)/ {
			print cmd, $2
			if (cmd == "DATA" && $2 == 354) indata = 1
		}' "$SEND_LOG"
}

# first_refusal: "COMMAND CODE" of the first 4xx/5xx reply, or "".
first_refusal() { replies | awk '$2 ~ /^[45]/ { print; exit }'; }

# dialogue: the replies on one line, "MAIL:250 RCPT:550 …".
dialogue() { replies | awk '{ printf "%s%s:%s", (NR > 1 ? " " : ""), $1, $2 }'; }

# log_line ADDR: the daemon's log line of the message from ADDR (bounded
# wait, 10 s: it is written when the message ends, maybe after QUIT).
_log_line() { grep -F "mail_from=<$1>" "$PORTCULLIS_LOG" | tail -n 1 | grep .; }
log_line() { poll 100 0.1 _log_line "$1" >/dev/null; _log_line "$1"; }

# addr_re ADDR: an optional "<ADDR>... " (Sendmail puts the address
# before some milter replies: lib README) as an ERE.
addr_re() { printf '(<%s>\\.\\.\\. )?' "${1//./\\.}"; }

# delivered_rcpts MARKER: the recipients (from the sink's X-Rcpt-Args) of
# every complete message with that X-Test-Id, sorted, comma-separated.
delivered_rcpts() {
	local f
	grep -liE "^X-Test-Id:[[:space:]]*$1[[:space:]]*\$" "$SINK_DIR"/* 2>/dev/null |
	while IFS= read -r f; do
		sink_complete_files | grep -qxF "$f" || continue
		headers_of "$f" X-Rcpt-Args
	done | grep -oiE '<[^>]*>' | tr -d '<>' | tr '[:upper:]' '[:lower:]' | sort -u | paste -sd, -
}
_rcpts_are() { [ "$(delivered_rcpts "$1")" = "$2" ]; }

refused_never_delivered=()

# ------------------------------------------------------------ (1a) early
suite_early() {	# suite_early MTA PORT
	local mta=$1 port=$2 id from line r
	id=early-$mta from=early-$mta@bad.test
	mkmsg "$MSG/$id.eml" "$id" "Quarterly report"
	send "$port" --helo client.ext.test --from "$from" --to bob@corp.test --data "@$MSG/$id.eml"
	diag "$mta, envelope rule first: $(dialogue)"
	# Sendmail puts the recipient before a RCPT reply's text
	like "$SEND_REPLY" "^550 5\\.7\\.1 $(addr_re bob@corp.test)blocked\$" \
		"(1a) $mta: envelope rule first: 550 5.7.1 blocked" || diag_send
	r=$(first_refusal)
	is "$r" 'RCPT 550' \
		"(1a) $mta: the 550 answers RCPT TO (before DATA)" || diag_send
	unlike "$(dialogue)" '(^| )(DATA|DOT):' "(1a) $mta: DATA is never reached" || diag_send
	line=$(log_line "$from")
	like "$line" ' action=reject rule=block stage=mail ' \
		"(1a) $mta: the daemon decided at stage mail (log)" || diag "log: $line"
	refused_never_delivered+=("$id")
}

# ------------------------------------------------------------ (2) rcpts
suite_rcpts() {	# suite_rcpts MTA PORT
	local mta=$1 port=$2 id from f line n
	id=rcpts-$mta from=alice-$mta@ext.test
	mkmsg "$MSG/$id.eml" "$id" "Three recipients"
	send "$port" --helo client.ext.test --from "$from" \
		--to "ann@corp.test,gone@corp.test,cid@corp.test" --data "@$MSG/$id.eml"
	diag "$mta, three recipients: $(dialogue)"
	is "$(replies | awk '$1 == "RCPT" { printf "%s%s", n++ ? " " : "", $2 }')" "250 550 250" \
		"(2) $mta: RCPT replies 250, 550, 250" || diag_send
	like "$(grep -E '^<\*\* +5' "$SEND_LOG" | head -n 1)" \
		"550 5\\.1\\.1 $(addr_re gone@corp.test)no such user" \
		"(2) $mta: the refused recipient gets 550 5.1.1 no such user" || diag_send
	is "$(replies | awk '$1 == "DOT" { print $2 }')" 250 \
		"(2) $mta: the message itself is accepted (250 after the data)" || diag_send
	if [ "$SEND_CODE" = 250 ] && f=$(wait_for_message "$id"); then
		poll 100 0.1 _rcpts_are "$id" "ann@corp.test,cid@corp.test"
		is "$(delivered_rcpts "$id")" "ann@corp.test,cid@corp.test" \
			"(2) $mta: the sink received it for the two accepted recipients only"
		n=$(grep -liE "^X-Test-Id:[[:space:]]*${id}[[:space:]]*\$" "$SINK_DIR"/* | grep -c .)
		diag "$mta: delivered as $n message file(s) in the sink"
		is "$(headers_of "$f" Authentication-Results | grep -ciE '^mx\.corp\.test[[:space:]]*;')" 1 \
			"(2) $mta: the delivered message went through portcullis (our A-R)"
	else
		fail "(2) $mta: the sink received it for the two accepted recipients only" \
			"no message $id in the sink"
		fail "(2) $mta: the delivered message went through portcullis (our A-R)"
	fi
	line=$(log_line "$from")
	like "$line" ' action=accept rule=default stage=eom ' \
		"(2) $mta: the message is accepted by the default at eom (log)" || diag "log: $line"
	like "$line" ' rcpts=<ann@corp\.test>,<cid@corp\.test> ' \
		"(2) $mta: the log line lists the two accepted recipients" || diag "log: $line"
}

# ------------------------------------------------------------ (1b) late
suite_late() {	# suite_late MTA PORT
	local mta=$1 port=$2 id from line
	id=late-$mta from=late-$mta@bad.test
	mkmsg "$MSG/$id.eml" "$id" "Quarterly report"
	send "$port" --helo client.ext.test --from "$from" --to bob@corp.test --data "@$MSG/$id.eml"
	diag "$mta, header rule first: $(dialogue)"
	is "$SEND_REPLY" "550 5.7.1 blocked" "(1b) $mta: header rule first: 550 5.7.1 blocked" || diag_send
	is "$(first_refusal)" "DOT 550" "(1b) $mta: the 550 answers the end of data" || diag_send
	like "$(dialogue)" '(^| )MAIL:250 RCPT:250 DATA:354 DOT:550( |$)' \
		"(1b) $mta: MAIL FROM, RCPT TO and DATA were accepted first" || diag_send
	line=$(log_line "$from")
	like "$line" ' action=reject rule=block stage=eoh ' \
		"(1b) $mta: the daemon decided at stage eoh, once the Subject was known (log)" ||
		diag "log: $line"
	refused_never_delivered+=("$id")
}

# ------------------------------------------------------------ (3) monitor
suite_monitor() {	# suite_monitor MTA PORT
	local mta=$1 port=$2 id from f line
	id=monitor-$mta from=mon-$mta@ext.test
	mkmsg "$MSG/$id.eml" "$id" "please monitor-me now"
	send "$port" --helo client.ext.test --from "$from" --to bob@corp.test --data "@$MSG/$id.eml"
	diag "$mta, monitor rule matches: $(dialogue)"
	is "$SEND_CODE" 250 "(3) $mta: a message the monitor rule matches is accepted (250)" || diag_send
	if f=$(sent_message "$id"); then
		is "$(header_of "$f" Subject)" "please monitor-me now" "(3) $mta: ... and delivered"
	else
		fail "(3) $mta: ... and delivered" "no message $id in the sink"
	fi
	line=$(log_line "$from")
	is "$(grep -cF "mail_from=<$from>" "$PORTCULLIS_LOG")" 1 "(3) $mta: one log line for the message"
	like "$line" ' monitored=big:reject@[a-z]+ ' \
		"(3) $mta: the log line has monitored=big:reject@STAGE" || diag "log: $line"
	like "$line" ' action=accept rule=default stage=eom ' \
		"(3) $mta: the log line's action is accept (default, eom)" || diag "log: $line"
}

# ------------------------------------------------------------ (4) list
suite_list_before() {	# MTA PORT: the sender is not listed yet
	local mta=$1 port=$2 id from=listed-$1@ext.test
	id=list-before-$mta
	mkmsg "$MSG/$id.eml" "$id" "Before the reload"
	send "$port" --helo client.ext.test --from "$from" --to bob@corp.test --data "@$MSG/$id.eml"
	is "$SEND_CODE" 250 "(4) $mta: a sender not in blocked.txt is accepted" || diag_send
	if sent_message "$id" >/dev/null; then pass "(4) $mta: ... and delivered"
	else fail "(4) $mta: ... and delivered" "no message $id in the sink"
	fi
}
suite_list_after() {	# MTA PORT: the sender is listed now
	local mta=$1 port=$2 id from=listed-$1@ext.test
	id=list-after-$mta
	mkmsg "$MSG/$id.eml" "$id" "After the reload"
	send "$port" --helo client.ext.test --from "$from" --to bob@corp.test --data "@$MSG/$id.eml"
	diag "$mta, listed sender: $(dialogue)"
	like "$SEND_REPLY" "^550 5\\.7\\.1 $(addr_re bob@corp.test)listed\$" \
		"(4) $mta: after appending it and SIGHUP: 550 5.7.1 listed" || diag_send
	refused_never_delivered+=("$id")
}

# milter_listener_pid: the pid of the process listening on the milter port.
milter_listener_pid() {
	ss -Hltnp "sport = :$PORT_MILTER" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2
}

# ------------------------------------------------------------ run
# early policy (loaded at start)
suite_early postfix "$PORT_POSTFIX"
suite_early sendmail "$PORT_SENDMAIL"
suite_rcpts postfix "$PORT_POSTFIX"
suite_rcpts sendmail "$PORT_SENDMAIL"

install_policy late
if hup_and_wait "late policy"; then
	suite_late postfix "$PORT_POSTFIX"
	suite_late sendmail "$PORT_SENDMAIL"
fi

install_policy monitor
if hup_and_wait "monitor policy"; then
	suite_monitor postfix "$PORT_POSTFIX"
	suite_monitor sendmail "$PORT_SENDMAIL"
	# portcullis check on the same message: the same verdict, the monitor
	# listed with the action it would have taken
	for mta in postfix sendmail; do
		json=$TEST_TMP/check-monitor-$mta.json
		"$PORTCULLIS" check -c "$CONF" --ip 127.0.0.1 --helo client.ext.test \
			--from "mon-$mta@ext.test" --rcpt bob@corp.test "$MSG/monitor-$mta.eml" \
			>"$json" 2>"$json.err"
		is "$?" 0 "(3) check monitor-$mta: exit status 0" || diag_file "$json.err"
		summary=$(python3 - "$json" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    assert isinstance(d, dict)
except Exception as e:
    print("error: %s" % e)
    sys.exit(0)
mon = d.get("monitored")
big = [m for m in (mon if isinstance(mon, list) else []) if isinstance(m, dict) and m.get("rule") == "big"]
print("action=%s rule=%s monitored=%s" % (d.get("action"), d.get("rule"),
      ",".join("%s:%s" % (m.get("rule"), m.get("action")) for m in big) or "-"))
EOF
)
		diag "check monitor-$mta: $summary"
		like "$summary" '^action=accept ' "(3) check monitor-$mta: action accept" || diag_file "$json"
		like "$summary" ' monitored=big:reject$' \
			"(3) check monitor-$mta: \"monitored\" lists big with action reject" || diag_file "$json"
	done
fi

install_policy list
if hup_and_wait "list policy"; then
	pid_before=$(milter_listener_pid)
	is "$pid_before" "$PORTCULLIS_PID" "(4) the milter socket belongs to the daemon we started"
	suite_list_before postfix "$PORT_POSTFIX"
	suite_list_before sendmail "$PORT_SENDMAIL"
	echo "listed-postfix@ext.test" >>"$ETC/blocked.txt"
	echo "listed-sendmail@ext.test" >>"$ETC/blocked.txt"
	if hup_and_wait "blocked.txt edited"; then
		suite_list_after postfix "$PORT_POSTFIX"
		suite_list_after sendmail "$PORT_SENDMAIL"
	fi
	ok "(4) the daemon was not restarted: still running" pid_alive "$PORTCULLIS_PID"
	is "$(milter_listener_pid)" "$pid_before" "(4) the same process id listens on the milter socket"
fi

# none of the refused messages reached the sink
left=
for id in "${refused_never_delivered[@]}"; do
	find_message "$id" >/dev/null && left+=" $id"
done
is "$left" "" "refused messages never reached the sink (${#refused_never_delivered[@]} checked)"
ok "portcullis is still running" pid_alive "$PORTCULLIS_PID"

[ "$_tap_failed" -gt 0 ] && diag_file "$PORTCULLIS_LOG" 40
done_testing
