#!/usr/bin/env python3
"""fake_milter.py - a tiny milter (protocol 6, no libmilter) for testing the
bench itself: it shows what Postfix and Sendmail do with a milter's replies
and header edits, independently of portcullis.

    fake_milter.py PORT [MACRO_LOG]

With MACRO_LOG, every macro the MTA sends is appended to that file as
"STAGE {name}=value" (STAGE: the command letter, C connect, H helo, M mail,
R rcpt, T data, N end of headers, E end of message).

Behaviour, per message:
  MAIL FROM spam@bad.test      -> "550 5.7.1 sender blocked by test"
  RCPT TO later@corp.test      -> "451 4.7.1 try again later, test"
  client 127.0.0.3             -> accept untouched
  otherwise, at end of message -> Subject prefixed "[EXTERNAL] " (created
      when missing), every "Authentication-Results: mx.corp.test;..." removed,
      "Authentication-Results: mx.corp.test; none" added.
On SIGTERM it stops listening, lets open sessions finish and exits 0;
it ignores SIGHUP and SIGUSR1.
"""
import re
import signal
import socket
import struct
import sys
import threading


MACRO_LOG = None
LOCK = threading.Lock()


def recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def send(conn, cmd, data=b""):
    conn.sendall(struct.pack(">I", len(data) + 1) + cmd + data)


def session(conn):
    client = ""
    headers = []
    try:
        while True:
            (length,) = struct.unpack(">I", recv_exact(conn, 4))
            pkt = recv_exact(conn, length)
            cmd, data = pkt[:1], pkt[1:]
            if cmd == b"O":
                ver, act, proto = struct.unpack(">III", data[:12])
                # actions: ADDHDRS 0x01, CHGHDRS 0x10; no protocol steps off
                send(conn, b"O", struct.pack(">III", 6, 0x01 | 0x10, 0))
            elif cmd == b"D":
                if MACRO_LOG:
                    stage, rest = data[:1].decode(), data[1:].split(b"\0")
                    with LOCK, open(MACRO_LOG, "a") as log:
                        for i in range(0, len(rest) - 1, 2):
                            log.write("%s %s=%s\n" % (stage, rest[i].decode(errors="replace"),
                                                       rest[i + 1].decode(errors="replace")))
                continue
            elif cmd == b"A":
                headers = []
                continue
            elif cmd == b"C":
                parts = data.split(b"\0")
                # hostname \0 family port(2) address \0
                client = data[len(parts[0]) + 1 + 1 + 2:].split(b"\0")[0].decode()
                send(conn, b"c")
            elif cmd == b"M":
                args = data.split(b"\0")
                if args[0].strip(b"<>").lower() == b"spam@bad.test":
                    send(conn, b"y", b"550 5.7.1 sender blocked by test\0")
                else:
                    headers = []
                    send(conn, b"c")
            elif cmd == b"R":
                args = data.split(b"\0")
                if args[0].strip(b"<>").lower() == b"later@corp.test":
                    send(conn, b"y", b"451 4.7.1 try again later, test\0")
                else:
                    send(conn, b"c")
            elif cmd == b"L":
                name, value = data.split(b"\0")[:2]
                headers.append((name.decode(), value.decode()))
                send(conn, b"c")
            elif cmd == b"E":
                if client != "127.0.0.3":
                    subj = [v for n, v in headers if n.lower() == "subject"]
                    if subj:
                        send(conn, b"m", struct.pack(">I", 1) + b"Subject\0"
                             + ("[EXTERNAL] " + subj[0].lstrip()).encode() + b"\0")
                    else:
                        send(conn, b"h", b"Subject\0[EXTERNAL]\0")
                    idx = 0
                    for n, v in headers:
                        if n.lower() == "authentication-results":
                            idx += 1
                            if re.match(r"\s*mx\.corp\.test\s*;", v, re.I):
                                send(conn, b"m", struct.pack(">I", idx)
                                     + b"Authentication-Results\0\0")
                    send(conn, b"h", b"Authentication-Results\0mx.corp.test; none\0")
                headers = []
                send(conn, b"c")
            elif cmd == b"Q":
                return
            elif cmd == b"K":
                client = ""
                headers = []
            else:  # H helo, T data, N eoh, B body, U unknown
                send(conn, b"c")
    except (EOFError, ConnectionError):
        return
    finally:
        conn.close()


class Stop(Exception):
    pass


def stop(*_):
    raise Stop


def main():
    global MACRO_LOG
    port = int(sys.argv[1])
    MACRO_LOG = sys.argv[2] if len(sys.argv) > 2 else None
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(16)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    sessions = []
    try:
        while True:
            conn, _ = srv.accept()
            t = threading.Thread(target=session, args=(conn,), daemon=True)
            t.start()
            sessions.append(t)
    except Stop:
        pass
    # SIGTERM: accept no more, let the open sessions finish (at most 60 s).
    srv.close()
    for t in sessions:
        t.join(60)


if __name__ == "__main__":
    main()
