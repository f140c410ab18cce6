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
sed 's/^/# /' "$T/out"
echo "1..$n"
exit $bad
