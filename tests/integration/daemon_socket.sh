#!/usr/bin/env bash
# daemon_socket.sh - daemon life without an MTA: a unix socket created mode
# 0660 for the configured user and removed on exit, the pidfile, the
# privilege drop, detaching (the command returns once the milter listens)
# and a clean exit on SIGTERM.  TAP output.  Needs root for -u.
set -u
: "${abs_top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${abs_top_builddir:=$abs_top_srcdir}"
: "${PORTCULLIS:=$abs_top_builddir/portcullis}"
T=$(mktemp -d /tmp/portcullis-sock.XXXXXX)
n=0 bad=0 pid=
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
ok() { n=$((n + 1)); if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; bad=1; fi; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
# wait_for CMD...: bounded polling for a condition (200 x 50 ms)
wait_for() { local i; for i in $(seq 200); do "$@" && return 0; sleep 0.05; done; return 1; }
gone() { ! kill -0 "$1" 2>/dev/null; }

if [ "$(id -u)" -ne 0 ]; then
	echo "1..0 # SKIP needs root to change user"
	exit 0
fi
user=nobody
group=$(id -gn "$user")
mkdir -p "$T/run"
chown "$user" "$T/run"
chmod 755 "$T"
cat >"$T/portcullis.conf" <<CONF
socket = unix:$T/run/portcullis.sock
policy = policy.rules
authserv_id = mx.test
resolver = 127.0.0.1:9
user = $user
CONF
printf 'external tag "[EXTERNAL]"\ndefault accept\n' >"$T/policy.rules"
chmod 644 "$T/portcullis.conf" "$T/policy.rules"

# detached start: the command returns once the socket listens
"$PORTCULLIS" -c "$T/portcullis.conf" -P "$T/run/portcullis.pid" 2>"$T/start.err"
ok $? "detached start exits 0 once listening $(head -c 200 "$T/start.err")"
[ -S "$T/run/portcullis.sock" ]; ok $? "the unix socket exists when the command returns"
pid=$(cat "$T/run/portcullis.pid" 2>/dev/null)
[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; ok $? "the pidfile names the running daemon ($pid)"
mode=$(stat -c '%a %U %G' "$T/run/portcullis.sock")
[ "$mode" = "660 $user $group" ]; ok $? "socket mode 0660 owned by $user:$group (got $mode)"
u=$(ps -o user= -p "$pid" | tr -d ' ')
[ "$u" = "$user" ]; ok $? "the daemon runs as $user (got $u)"
python3 - "$T/run/portcullis.sock" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
# SMFIC_OPTNEG: version 6, all actions, all protocol steps offered
body = b'O' + struct.pack('!III', 6, 0x1ff, 0x1fffff)
s.sendall(struct.pack('!I', len(body)) + body)
hdr = s.recv(4)
n = struct.unpack('!I', hdr)[0]
data = b''
while len(data) < n:
    data += s.recv(n - len(data))
sys.exit(0 if data[:1] == b'O' else 1)
PY
ok $? "the daemon answers milter option negotiation on the socket"
kill -TERM "$pid"
wait_for gone "$pid"; ok $? "SIGTERM stops the daemon"
[ ! -e "$T/run/portcullis.sock" ]; ok $? "the socket is removed on exit"
[ ! -e "$T/run/portcullis.pid" ]; ok $? "the pidfile is removed on exit"
pid=

# a start that fails (socket directory missing) reports it
sed "s|$T/run/portcullis.sock|$T/missing/portcullis.sock|" "$T/portcullis.conf" >"$T/bad.conf"
"$PORTCULLIS" -c "$T/bad.conf" 2>"$T/bad.err"; rc=$?
[ $rc -ne 0 ]; ok $? "a start that cannot open the socket exits non-zero (exit $rc)"
echo "1..$n"
exit $bad
