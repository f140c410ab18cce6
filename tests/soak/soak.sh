#!/bin/bash
# soak.sh - a bounded soak of the daemon (not part of make check; "make
# soak").  unbound serves the test zones on loopback, the daemon runs the
# SHIPPED rules/default.policy (its placeholders and list zones made
# ours), and milter_client.py keeps a steady load on it (the load scenario,
# SOAK_CONCURRENCY sessions at once, 8 by default) for SOAK_SECONDS (600 by
# default).  Every second the daemon's resident memory (VmRSS) and its
# open file descriptors are written to $SOAK_CSV (default
# tests/soak/soak.csv in the current directory: seconds,rss_kb,fds and
# VmRSS's parts rss_anon_kb (the heap) and rss_file_kb (mapped files: the
# binary, its libraries, the greylist store's LMDB map)).
#
# At the end it prints the start, 2-minute, end and peak figures and the
# messages sent, and fails (TAP "not ok") when
#  - resident memory at the end exceeds that at the end of the 2nd minute
#    (the warm-up: caches, allocator arenas, thread stacks) by more than
#    SOAK_RSS_TOLERANCE_KB (default 4096 kB) - it must be flat after it;
#  - the descriptors open once the load has stopped are more than before
#    the load began, or the most open in the last minute more than in the
#    2nd minute plus one per session at once;
#  - a message was not answered, or was accepted without its
#    Authentication-Results.
# Figures of a run: tests/soak/README.md.
: "${SOAK_SECONDS:=600}"
: "${SOAK_CONCURRENCY:=8}"
: "${SOAK_RSS_TOLERANCE_KB:=4096}"
: "${SOAK_CSV:=$PWD/tests/soak/soak.csv}"
export TEST_TIMEOUT=$((SOAK_SECONDS + 600))
_soak_dir=$(cd "$(dirname "$0")" && pwd)
: "${abs_top_srcdir:=$(cd "$_soak_dir/../.." && pwd)}"
export abs_top_srcdir SOAK_SECONDS SOAK_CONCURRENCY SOAK_RSS_TOLERANCE_KB SOAK_CSV
. "$abs_top_srcdir/tests/integration/lib.sh"

have_portcullis || skip_all "portcullis is not built ($PORTCULLIS)"
PY=/usr/bin/python3
[ -x "$PY" ] || skip_all "no $PY"
CLIENT=$abs_top_srcdir/tests/integration/milter_client.py
[ "$SOAK_SECONDS" -ge 180 ] ||
	diag "SOAK_SECONDS=$SOAK_SECONDS: shorter than the 2-minute warm-up plus one; the memory check compares the last sample with itself"

ETC=$TEST_TMP/etc
mkdir -p "$ETC" "$(dirname "$SOAK_CSV")"

# ------------------------------------------------------------ DNS
# one zone, test.: every name under it is answered (NXDOMAIN when not
# listed, as DMARC's tree walk up to _dmarc.test wants).  The sender
# domain ext.test has SPF pass and a DMARC record (p=none): every message
# goes through SPF, DMARC, the blocklist bl.test and the URI blocklist
# uri.test (its body has links) and is accepted.
cat >"$ETC/test.zone" <<'EOF'
$ORIGIN test.
@	3600 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60
@	3600 IN NS ns.test.
ns	3600 IN A 127.0.0.1
ext	3600 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
_dmarc.ext	3600 IN TXT "v=DMARC1; p=none"
; the RFC 5782 test entries the daemon probes
2.0.0.127.bl	3600 IN A 127.0.0.2
test.uri	3600 IN A 127.0.1.2
EOF
start_unbound "$ETC/test.zone"

# ------------------------------------------------------------ portcullis
test_conf "$ETC/portcullis.conf" "unix:$TEST_TMP/milter.sock" "greylist_store = lmdb:$TEST_TMP/greylist"
shipped_policy >"$ETC/policy.rules"
ok "the edited shipped policy loads" "$PORTCULLIS" -n -c "$ETC/portcullis.conf" ||
	bail_out "the configuration does not load"
# greylisting is not under soak: the test network and the SPF-passing
# sender domain have passed it before
for id in 192.0.2.0/24 spf:ext.test; do
	ok "greylist allow --network $id" \
		"$PORTCULLIS" greylist -c "$ETC/portcullis.conf" allow --network "$id"
done
start_portcullis "$ETC/portcullis.conf"
SOCK=unix:$TEST_TMP/milter.sock
BODY='Hello Bob, the report is at https://www.ext.test/r/2026 and the form at http://forms.example.test/f?id=7 - Alice'
MSG_OPTS=(--rcpt bob@corp.test --rcpt carol@corp.test --subject "soak" --body "$BODY")

"$PY" "$CLIENT" "$SOCK" message "${MSG_OPTS[@]}" >"$TEST_TMP/first.json" 2>&1
like "$(cat "$TEST_TMP/first.json")" '"authres": true, "action": "accept"' \
	"the soak message is accepted with Authentication-Results" ||
	bail_out "the soak message is not accepted: $(cat "$TEST_TMP/first.json")"

rss() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$PORTCULLIS_PID/status"; }
nfds() { ls "/proc/$PORTCULLIS_PID/fd" 2>/dev/null | wc -l; }
FDS_IDLE0=$(nfds)

# ------------------------------------------------------------ sampler
# one process, no fork a sample: on time even on a busy machine
"$PY" - "$PORTCULLIS_PID" "$SOAK_CSV" "$TEST_TMP/stop-sampling" <<'EOF' &
import os, sys, time
pid, csv, stop = sys.argv[1], sys.argv[2], sys.argv[3]
t0 = time.monotonic()
k = 0
with open(csv, 'w', buffering=1) as out:
    out.write('seconds,rss_kb,fds,rss_anon_kb,rss_file_kb\n')
    while not os.path.exists(stop):
        try:
            with open('/proc/%s/status' % pid) as f:
                st = dict(l.split(':', 1) for l in f if ':' in l)
            if st['State'].split()[0] in ('Z', 'X'):
                break
            rss = int(st['VmRSS'].split()[0])
            anon = int(st['RssAnon'].split()[0])
            fil = int(st['RssFile'].split()[0])
            fds = len(os.listdir('/proc/%s/fd' % pid))
        except (OSError, KeyError, ValueError):
            break
        out.write('%d,%d,%d,%d,%d\n' % (round(time.monotonic() - t0),
                                        rss, fds, anon, fil))
        k += 1
        # the sampling period: the next whole second from the start
        time.sleep(max(0.0, t0 + k - time.monotonic()))
EOF
SAMPLER_PID=$!

# ------------------------------------------------------------ load
END=$((SECONDS + SOAK_SECONDS))
BATCH=0
: >"$TEST_TMP/batches.json"
while [ "$SECONDS" -lt "$END" ]; do
	BATCH=$((BATCH + 1))
	"$PY" "$CLIENT" "$SOCK" load --messages 400 \
		--concurrency "$SOAK_CONCURRENCY" "${MSG_OPTS[@]}" \
		>>"$TEST_TMP/batches.json" 2>>"$TEST_TMP/batches.err"
	pid_alive "$PORTCULLIS_PID" || break
done
touch "$TEST_TMP/stop-sampling"
wait "$SAMPLER_PID"

ok "the daemon is running after the soak" pid_alive "$PORTCULLIS_PID"
# the sessions are closed by the daemon after the client's QUIT: wait
# (bounded) for its descriptors to settle before comparing
_fds_settled() { [ "$(nfds)" -le "$FDS_IDLE0" ]; }
poll 100 0.1 _fds_settled
FDS_IDLE1=$(nfds)

# ------------------------------------------------------------ figures
read -r SENT ACCEPTED AUTHRES NERR OTHER < <("$PY" - "$TEST_TMP/batches.json" <<'EOF'
import json, sys
sent = acc = ar = err = 0
other = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    sent += r['sessions']
    err += r['nerrors']
    ar += r['authres']
    for k, v in r['actions'].items():
        if k == 'accept':
            acc += v
        else:
            other[k] = other.get(k, 0) + v
print(sent, acc, ar, err, json.dumps(other, separators=(',', ':')) or '{}')
EOF
)
# FW2 and FL: the most descriptors open in the 2nd minute and in the last
# one (a single sample may fall between two batches, all sessions closed)
read -r S0 R0 F0 SW RW FW SE RE FE RMAX FMAX NS A0 AW AE FW2 FL < <(awk -F, -v w=120 '
	NR == 1 { next }
	NR == 2 { s0 = $1; r0 = $2; f0 = $3; a0 = $4 }
	$1 <= w { sw = $1; rw = $2; fw = $3; aw = $4 }
	$1 > w - 60 && $1 <= w && $3 > fw2 { fw2 = $3 }
	{ se = $1; re = $2; fe = $3; ae = $4; n++; t[n] = $1; f[n] = $3
	  if ($2 > rmax) rmax = $2; if ($3 > fmax) fmax = $3 }
	END { for (i = n; i > 0 && t[i] > se - 60; i--) if (f[i] > fl) fl = f[i]
	      print s0, r0, f0, sw, rw, fw, se, re, fe, rmax, fmax, n, a0, aw, ae, fw2 + 0, fl + 0 }' "$SOAK_CSV")
cat <<EOF
# soak: $SOAK_SECONDS s, concurrency $SOAK_CONCURRENCY, $BATCH batches, shipped policy
# messages sent: $SENT (accepted $ACCEPTED, with Authentication-Results $AUTHRES, other answers $OTHER, session errors $NERR)
# samples: $NS (one a second) in $SOAK_CSV
# VmRSS kB: start (t=$S0) $R0, after the warm-up (t=$SW) $RW, end (t=$SE) $RE, max $RMAX
#   of which RssAnon kB: start $A0, after the warm-up $AW, end $AE
# fds:      start (t=$S0) $F0, after the warm-up (t=$SW) $FW, end (t=$SE) $FE, max $FMAX (2nd minute $FW2, last minute $FL); idle before the load $FDS_IDLE0, idle after $FDS_IDLE1
EOF
ok "samples were taken every second ($NS for $SOAK_SECONDS s)" \
	test "$NS" -ge $((SOAK_SECONDS * 9 / 10))
ok "messages were sent ($SENT)" test "${SENT:-0}" -gt 0
is "$NERR" 0 "every session got an answer" || diag_file "$TEST_TMP/batches.err" 10
is "$ACCEPTED" "$SENT" "every message was accepted" || diag "other answers: $OTHER"
is "$AUTHRES" "$ACCEPTED" "every accepted message has its Authentication-Results"
ok "resident memory flat after the warm-up: end $RE kB <= $RW kB + $SOAK_RSS_TOLERANCE_KB kB" \
	test "$RE" -le $((RW + SOAK_RSS_TOLERANCE_KB))
ok "open descriptors did not grow: $FDS_IDLE1 idle after the load, $FDS_IDLE0 before" \
	test "$FDS_IDLE1" -le "$FDS_IDLE0"
ok "open descriptors flat under load: at most $FL in the last minute, $FW2 in the 2nd (+ $SOAK_CONCURRENCY sessions)" \
	test "$FL" -le $((FW2 + SOAK_CONCURRENCY))
[ "$_tap_failed" -gt 0 ] && diag_file "$PORTCULLIS_LOG" 20
stop_portcullis
is "$PORTCULLIS_STATUS" 0 "portcullis exits 0 on SIGTERM"
done_testing
