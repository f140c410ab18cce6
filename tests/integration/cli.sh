#!/usr/bin/env bash
# cli.sh - the command line without an MTA: -V, -n on good and broken
# config and policy (FILE:LINE:COL with suggestions, exit status), and
# "portcullis check" JSON (contract of DESIGN.md section 5).  TAP output.
set -u
: "${abs_top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${abs_top_builddir:=$abs_top_srcdir}"
: "${PORTCULLIS:=$abs_top_builddir/portcullis}"
T=$(mktemp -d /tmp/portcullis-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
n=0 bad=0
ok() {	# ok COND-EXIT-STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; bad=1; fi
}


out=$("$PORTCULLIS" -V); ok $? "-V exits 0"
[[ $out =~ ^portcullis\ [0-9]+\.[0-9]+\.[0-9]+$ ]]; ok $? "-V prints the version ($out)"

cat >"$T/good.conf" <<CONF
policy = good.rules
authserv_id = mx.corp.test
resolver = 127.0.0.1:9
dns_timeout = 300ms
CONF
cat >"$T/good.rules" <<'RULES'
internal domains corp.test
trusted networks 10.0.0.0/8
external tag "[EXTERNAL]"
rule trusted: when trusted then accept
rule blocked: when mail_from.domain is "bad.test" then reject "5.7.1 %{mail_from.domain} is blocked"
rule later: when rcpt is "later@corp.test" then tempfail "4.7.1 later"
default accept
RULES
"$PORTCULLIS" -n -c "$T/good.conf" >"$T/out" 2>&1; ok $? "-n on a good config and policy exits 0"

sed 's/mail_from.domain is/mail_from.domian is/' "$T/good.rules" >"$T/typo.rules"
sed 's/good.rules/typo.rules/' "$T/good.conf" >"$T/typo.conf"
"$PORTCULLIS" -n -c "$T/typo.conf" >"$T/out" 2>&1; rc=$?
[ $rc -eq 1 ]; ok $? "-n on a misspelt fact exits 1 (got $rc)"
grep -q "^$T/typo.rules:5:[0-9]*: unknown fact 'mail_from.domian' (did you mean 'mail_from.domain'?)" "$T/out"
ok $? "-n names FILE:LINE:COL and suggests the fact: $(head -1 "$T/out")"

printf 'policy = good.rules\nauthserv_idd = x\n' >"$T/key.conf"
"$PORTCULLIS" -n -c "$T/key.conf" >"$T/out" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "^$T/key.conf:2:1: unknown key 'authserv_idd' (did you mean 'authserv_id'?)" "$T/out"
ok $? "-n on a misspelt config key: $(head -1 "$T/out")"

printf 'policy = good.rules\ndns_timeout = soon\n' >"$T/val.conf"
"$PORTCULLIS" -n -c "$T/val.conf" >"$T/out" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "^$T/val.conf:2:15: invalid dns_timeout 'soon'" "$T/out"
ok $? "-n on a bad value: $(head -1 "$T/out")"

printf 'policy = good.rules\n' >"$T/default.conf"
cp "$abs_top_srcdir/rules/default.policy" "$T/good.rules.default"
printf 'policy = %s\n' "$abs_top_srcdir/rules/default.policy" >"$T/shipped.conf"
"$PORTCULLIS" -n -c "$T/shipped.conf" >"$T/out" 2>&1; ok $? "-n on the shipped default policy exits 0 $(head -1 "$T/out")"
# Every DNS query of a mail check goes through dns.c (libunbound): the
# daemon's own code calls no system resolver function.
if command -v nm >/dev/null; then
	nm -u "$PORTCULLIS" | grep -E '\b(res_n?(query|search|send|mkquery)|__res_[a-z]+|getaddrinfo|gethostbyname[0-9_a-z]*|getnameinfo|gethostbyaddr[_a-z]*)\b' >"$T/resolver.syms"
	[ ! -s "$T/resolver.syms" ]
	ok $? "the daemon calls no system resolver function (nm -u): $(tr '\n' ' ' <"$T/resolver.syms")"
fi
# policy(5) EXAMPLES quotes every statement of the shipped policy, in order.
grep -v '^#' "$abs_top_srcdir/rules/default.policy" | grep -v '^[[:space:]]*$' >"$T/policy.stmts"
awk '/^\.SH EXAMPLES/ { ex = 1; next } /^\.SH / { ex = 0 }
	ex && /^\.nf/ { nf = 1; next } ex && /^\.fi/ { nf = 0; next }
	ex && nf { gsub(/\\-/, "-"); gsub(/\\e/, "\\"); sub(/^\\&/, ""); print }' \
	"$abs_top_srcdir/policy/portcullis.policy.5" >"$T/man.stmts"
diff -u "$T/policy.stmts" "$T/man.stmts" >"$T/stmts.diff"
ok $? "policy(5) EXAMPLES quotes rules/default.policy statement by statement, in order $(head -c 300 "$T/stmts.diff")"
"$PORTCULLIS" -n -c "$abs_top_srcdir/contrib/portcullis.conf" >"$T/out" 2>&1
grep -q "policy.rules: cannot open\|policy.rules" "$T/out"
ok $? "-n on the shipped config names the policy path it reads"

cat >"$T/msg.eml" <<'EML'
From: Alice <alice@sender.test>
To: bob@corp.test
Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= aus
 Berlin
Authentication-Results: mx.corp.test; spf=pass smtp.mailfrom=forged.test
Authentication-Results: other.test; spf=fail
Message-ID: <1@sender.test>

Hello Bob.
EML
check() { "$PORTCULLIS" check -c "$T/good.conf" "$@"; }
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

check --ip 192.0.2.7 --helo mail.sender.test --from alice@sender.test \
    --rcpt bob@corp.test "$T/msg.eml" >"$T/j1"; ok $? "check exits 0 for an accepted message"
python3 -m json.tool "$T/j1" >/dev/null; ok $? "check prints one valid JSON object"
[ "$(json "$T/j1" 'd["action"], d["rule"], d["stage"]')" = "accept default eom" ]
ok $? "accept by default at eom: $(json "$T/j1" 'd["action"], d["rule"], d["stage"]')"
sub=$(json "$T/j1" '[h["value"] for h in d["headers_changed"] if h["name"]=="Subject"][0]')
[[ $sub == "[EXTERNAL] "* ]]; ok $? "Subject changed with the tag: $sub"
ar=$(json "$T/j1" '[h["value"] for h in d["headers_added"] if h["name"]=="Authentication-Results"][0]')
[[ $ar == "mx.corp.test;"* && $ar == *"spf=temperror smtp.mailfrom=alice@sender.test"* && $ar == *"dkim=none"* && $ar == *"dmarc=temperror header.from=sender.test"* ]]
ok $? "one Authentication-Results added; with DNS unreachable SPF and DMARC say temperror: $ar"
[ "$(json "$T/j1" 'd["headers_removed"]')" = "[{'name': 'Authentication-Results', 'index': 1}]" ]
ok $? "our forged Authentication-Results (index 1) removed, the other kept"
[ "$(json "$T/j1" 'd["facts"]["external"], d["facts"]["trusted"], d["facts"]["mail_from.domain"]')" = "True False sender.test" ]
ok $? "facts are reported: $(json "$T/j1" 'd["facts"]')"
[ "$(json "$T/j1" 'sorted(d.keys())')" = "['action', 'facts', 'headers_added', 'headers_changed', 'headers_removed', 'monitored', 'recipients', 'rule', 'score', 'stage']" ]
ok $? "every contract member is present"

check --ip 192.0.2.7 --from spam@bad.test --rcpt bob@corp.test "$T/msg.eml" >"$T/j2"
[ "$(json "$T/j2" 'd["action"], d["rule"], d["stage"], d["smtp"]')" = "reject blocked mail {'code': 550, 'dsn': '5.7.1', 'text': 'bad.test is blocked'}" ]
ok $? "reject at MAIL with the expanded text: $(json "$T/j2" 'd["smtp"]')"

check --ip 192.0.2.7 --from a@sender.test --rcpt later@corp.test "$T/msg.eml" >"$T/j3"
[ "$(json "$T/j3" 'd["action"], d["rule"], d["stage"], d["smtp"]')" = "tempfail later rcpt {'code': 451, 'dsn': '4.7.1', 'text': 'later'}" ]
ok $? "tempfail at RCPT: $(json "$T/j3" 'd["smtp"]')"

check --ip 192.0.2.7 --from a@sender.test --rcpt later@corp.test --rcpt bob@corp.test "$T/msg.eml" >"$T/j4"
[ "$(json "$T/j4" 'd["action"], [r["action"] for r in d["recipients"]]')" = "accept ['tempfail', 'continue']" ]
ok $? "a refusal at RCPT concerns that recipient only"

check --ip 10.1.2.3 --from a@corp.test --rcpt bob@corp.test "$T/msg.eml" >"$T/j5"
[ "$(json "$T/j5" 'd["action"], d["rule"], d["stage"], d["headers_added"], d["headers_changed"]')" = "accept trusted connect [] []" ]
ok $? "trusted client accepted at connect, message untouched"

printf 'From: a@sender.test\n\nno subject\n' >"$T/nosub.eml"
check --ip 192.0.2.7 --from '' --helo mx.sender.test --rcpt bob@corp.test "$T/nosub.eml" >"$T/j6"
[ "$(json "$T/j6" '[h["value"] for h in d["headers_added"] if h["name"]=="Subject"]')" = "['[EXTERNAL]']" ]
ok $? "a missing Subject is added with the tag"
json "$T/j6" '[h["value"] for h in d["headers_added"] if h["name"]=="Authentication-Results"][0]' | grep 'smtp.mailfrom=postmaster@mx.sender.test' >/dev/null
ok $? "null sender: smtp.mailfrom=postmaster@HELO"

check --trace --ip 192.0.2.7 --from spam@bad.test --rcpt bob@corp.test "$T/msg.eml" >"$T/j7"
[ "$(json "$T/j7" '[(t["stage"], t["rule"], t["value"], t["facts"]) for t in d["trace"]]')" = "[('connect', 'trusted', 'false', ['trusted']), ('connect', 'blocked', 'unknown', ['mail_from.domain']), ('helo', 'trusted', 'false', ['trusted']), ('helo', 'blocked', 'unknown', ['mail_from.domain']), ('mail', 'trusted', 'false', ['trusted']), ('mail', 'blocked', 'true', ['mail_from.domain'])]" ]
ok $? "--trace lists each rule per stage with its value and facts: $(json "$T/j7" 'd["trace"]' | head -c 300)"

check --ip 192.0.2.7 --from a@b.test "$T/msg.eml" >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ]; ok $? "check without --rcpt is a usage error (exit $rc)"
check --ip 192.0.2.7 --from a@b.test --rcpt c@d.test "$T/missing.eml" >/dev/null 2>&1; rc=$?
[ $rc -eq 1 ]; ok $? "check on a missing file exits 1 (exit $rc)"
echo "1..$n"
exit $bad
