#!/bin/bash
# milter_nodelay.sh - the MTA's connections to an inet milter socket have
# TCP_NODELAY on portcullis's side, so a reply written in several packets
# (header changes, then the verdict) never waits for the MTA's delayed ACK
# (~40 ms a message over loopback TCP).  libmilter accepts the connections
# itself; portcullis sets the option on its listening socket, which Linux
# copies to every accepted one.  Checked on the daemon's own descriptor: a
# client holds a milter session open while the test takes a duplicate of
# the daemon's end (pidfd_getfd(2): root, Linux 5.6) and reads the option.
# A message on that socket then gets its verdict and its
# Authentication-Results header.  (IPv6 listeners: tests/unit/netopt_test.)
. "$(dirname "$0")/lib.sh"

have_portcullis || skip_all "portcullis is not built ($PORTCULLIS)"
[ "$(id -u)" = 0 ] || skip_all "needs root (pidfd_getfd)"
PY=/usr/bin/python3

ETC=$TEST_TMP/etc
mkdir -p "$ETC"
printf 'external tag "[EXTERNAL]"\ndefault accept\n' >"$ETC/policy.rules"
cat >"$ETC/portcullis.conf" <<CONF
socket      = inet:$PORT_MILTER@127.0.0.1
policy      = $ETC/policy.rules
authserv_id = mx.corp.test
resolver    = 127.0.0.1:9
dns_timeout = 1s
CONF

# server_nodelay PORT: opens a milter session (OPTNEG answered), finds the
# daemon's end of it and prints its TCP_NODELAY ("none": not found)
server_nodelay() {
	"$PY" - "$PORTCULLIS_PID" "$1" <<'PY'
import ctypes, os, socket, struct, sys
pid, port = int(sys.argv[1]), int(sys.argv[2])
c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
c.settimeout(10)
c.connect(("127.0.0.1", port))
body = b'O' + struct.pack('!III', 6, 0x1ff, 0x1fffff)
c.sendall(struct.pack('!I', len(body)) + body)
n = struct.unpack('!I', c.recv(4, socket.MSG_WAITALL))[0]
c.recv(n, socket.MSG_WAITALL)          # the filter's OPTNEG: accepted
mine = c.getsockname()[1]
libc = ctypes.CDLL(None, use_errno=True)
SYS_pidfd_open, SYS_pidfd_getfd = 434, 438
pfd = libc.syscall(SYS_pidfd_open, pid, 0)
if pfd < 0:
    print("error: pidfd_open: errno %d" % ctypes.get_errno())
    sys.exit(0)
found = None
for name in os.listdir("/proc/%d/fd" % pid):
    try:
        if not os.readlink("/proc/%d/fd/%s" % (pid, name)).startswith("socket:"):
            continue
    except OSError:
        continue
    fd = libc.syscall(SYS_pidfd_getfd, pfd, int(name), 0)
    if fd < 0:
        continue
    s = socket.socket(fileno=fd)
    try:
        if s.family == socket.AF_INET and s.type == socket.SOCK_STREAM \
                and s.getpeername() == c.getsockname():
            found = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    except OSError:
        pass
    s.close()
print("none" if found is None else found)
c.close()
PY
}

start_portcullis "$ETC/portcullis.conf"
v=$(server_nodelay "$PORT_MILTER")
case $v in error*) skip_all "no pidfd_getfd here ($v)" ;; esac
isnt "$v" "none" "the daemon's end of the milter session was found"
is "$v" 1 "TCP_NODELAY is on for the connection libmilter accepted"
out=$("$PY" "$(dirname "$0")/milter_client.py" "inet:$PORT_MILTER@127.0.0.1" \
	message --ip 192.0.2.7 --from a@ext.test --rcpt b@corp.test 2>&1)
like "$out" '"action": "(continue|accept)"' "a message on that socket gets its verdict"
like "$out" '"authres": true' "and its Authentication-Results header"
stop_portcullis
is "$PORTCULLIS_STATUS" 0 "clean exit"
done_testing
