#!/usr/bin/python3
"""idleconns.py SOCKET PID N: opens N milter connections to SOCKET (unix:PATH
or inet:PORT@HOST), each through option negotiation and CONNECT (waiting
for the filter's answer, so its per-connection state exists), holds them
all open and prints the resident memory (VmRSS, kB) and thread count of
process PID before and while they are open.  Part of tests/bench/memory."""
import socket
import struct
import sys
import time


def status(pid):
    d = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            d[k] = v.strip()
    return int(d["VmRSS"].split()[0]), int(d["Threads"])


def conn(spec):
    if spec.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(spec[5:])
    else:
        port, _, host = spec[5:].partition("@")
        s = socket.create_connection((host, int(port)))
    return s


def send(s, cmd, data=b""):
    s.sendall(struct.pack(">I", len(data) + 1) + cmd + data)


def recv(s):
    hdr = b""
    while len(hdr) < 4:
        b = s.recv(4 - len(hdr))
        if not b:
            raise EOFError("filter closed the connection")
        hdr += b
    n = struct.unpack(">I", hdr)[0]
    body = b""
    while len(body) < n:
        b = s.recv(n - len(body))
        if not b:
            raise EOFError("filter closed the connection")
        body += b
    return body[:1], body[1:]


def main():
    spec, pid, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    time.sleep(0.5)
    rss0, thr0 = status(pid)
    socks = []
    for i in range(n):
        s = conn(spec)
        # version 6, every action, every protocol step and flag offered
        # but "no reply to CONNECT" (0x1000): portcullis would take it,
        # and the answer is what tells its per-connection state exists
        send(s, b"O", struct.pack(">III", 6, 0x1FF, 0x1FFFFF & ~0x1000))
        cmd, _ = recv(s)
        assert cmd == b"O", cmd
        addr = "192.0.2.%d" % (1 + i % 250)
        send(s, b"C", b"c1.clients.bench\0" + b"4" +
             struct.pack(">H", 25) + addr.encode() + b"\0")
        cmd, _ = recv(s)
        assert cmd in (b"c", b"a"), cmd   # continue (accept: trusted)
        socks.append(s)
    time.sleep(1)
    rss1, thr1 = status(pid)
    print("idle_connections %d" % n)
    print("rss_before_kb %d threads_before %d" % (rss0, thr0))
    print("rss_open_kb %d threads_open %d" % (rss1, thr1))
    print("rss_per_idle_connection_kb %.1f" % ((rss1 - rss0) / n))
    for s in socks:
        send(s, b"Q")
        s.close()


main()
