#!/usr/bin/env bash
# policy_cases.sh - "portcullis test": the shipped example cases for the
# default policy pass; a failing case prints a diff, the summary line and
# exits non-zero; malformed cases are failures with a reason.  TAP output.
set -u
: "${abs_top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${abs_top_builddir:=$abs_top_srcdir}"
: "${PORTCULLIS:=$abs_top_builddir/portcullis}"
T=$(mktemp -d /tmp/portcullis-cases.XXXXXX)
trap 'rm -rf "$T"' EXIT
n=0 bad=0
ok() { n=$((n + 1)); if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; bad=1; fi; }
R=$abs_top_srcdir/rules/tests

ncase=$(ls "$R"/*.case | wc -l)
"$PORTCULLIS" test -c "$R/portcullis.conf" "$R" >"$T/out" 2>&1; rc=$?
sed 's/^/# /' "$T/out"
ok $rc "the example cases of rules/tests pass"
[ "$(tail -n 1 "$T/out")" = "$ncase passed, 0 failed" ]
ok $? "summary line counts every case ($ncase)"

cp "$R/outside.case" "$T/wrong.case"
sed -i 's/^expect rule default$/expect rule trusted/' "$T/wrong.case"
"$PORTCULLIS" test -c "$R/portcullis.conf" "$R/trusted.case" "$T/wrong.case" >"$T/out" 2>&1; rc=$?
[ $rc -eq 1 ]; ok $? "a failing case makes the run exit 1 (exit $rc)"
grep -q "^FAIL $T/wrong.case$" "$T/out" && grep -q '^  - trusted$' "$T/out" && grep -q '^  + default$' "$T/out"
ok $? "the failing case is named with a diff of expected and actual"
[ "$(tail -n 1 "$T/out")" = "1 passed, 1 failed" ]; ok $? "summary: 1 passed, 1 failed"

printf 'ip 192.0.2.1\nfrom a@b.test\nrcpt c@d.test\nexpect colour blue\nmessage\n\nx\n' >"$T/bad.case"
"$PORTCULLIS" test -c "$R/portcullis.conf" "$T/bad.case" >"$T/out" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "bad.case:4: unknown expectation 'colour'" "$T/out"
ok $? "a malformed case fails with file and line: $(sed -n 2p "$T/out")"

# the case's DNS records answer, and only they: PTR confirmed by A
cat >"$T/p.rules" <<'RULES'
rule named: when client.ptr is "mx.example.net" then reject "5.7.1 hello %{client.ptr}"
default accept
RULES
printf 'policy = p.rules\nauthserv_id = mx.test\n' >"$T/c.conf"
cat >"$T/dns.case" <<'CASE'
ip 192.0.2.9
from a@example.net
rcpt b@example.org
dns 9.2.0.192.in-addr.arpa. IN PTR mx.example.net.
dns mx.example.net. IN A 192.0.2.9
expect action reject
expect reply 550 5.7.1 hello mx.example.net
message
Subject: x

y
CASE
sed -e '/IN A 192.0.2.9/d' -e 's/^expect action reject/expect action accept/' -e '/^expect reply/d' "$T/dns.case" >"$T/unconfirmed.case"
"$PORTCULLIS" test -c "$T/c.conf" "$T/dns.case" "$T/unconfirmed.case" >"$T/out" 2>&1
ok $? "DNS records of a case are served by the resolver; an unconfirmed PTR is no name"

# %{spf.explanation} in a reply: the exp= TXT of the sender's domain,
# macro-expanded by portcullis; an explanation with control characters is
# a syntax error (RFC 7208 6.2: not an explain-string) and is dropped, so
# a sender's DNS can never put CR/LF into the SMTP reply.
cat >"$T/exp.rules" <<'RULES'
rule spf: when spf is fail then reject "5.7.1 %{spf.explanation}"
default accept
RULES
printf 'policy = exp.rules\nauthserv_id = mx.test\n' >"$T/exp.conf"
cat >"$T/exp.case" <<'CASE'
ip 192.0.2.9
from a@example.net
rcpt b@example.org
dns example.net. IN TXT "v=spf1 ip4:198.51.100.0/24 -all exp=why.example.net"
dns why.example.net. IN TXT "%{i} is not one of %{d}'s servers; see https://example.net/spf?%{l}"
expect action reject
expect reply 550 5.7.1 192.0.2.9 is not one of example.net's servers; see https://example.net/spf?a
message
Subject: x

y
CASE
cat >"$T/inject.case" <<'CASE'
ip 192.0.2.9
from a@example.net
rcpt b@example.org
dns example.net. IN TXT "v=spf1 -all exp=why.example.net"
dns why.example.net. IN TXT "denied\013\010250 2.0.0 ok\013\010DATA"
expect action reject
expect reply 550 5.7.1 message rejected by policy
message
Subject: x

y
CASE
"$PORTCULLIS" test -c "$T/exp.conf" "$T/exp.case" "$T/inject.case" >"$T/out" 2>&1
ok $? "%{spf.explanation} expands the sender's exp= text into the reply; one with CR/LF is dropped, not sent"
sed 's/^/# /' "$T/out"
echo "1..$n"
exit $bad
