#!/usr/bin/env python3
"""smtp_hold.py - an SMTP client that stops in the middle of DATA, so a test
can do something (signal the milter) while a message is in flight.

    smtp_hold.py HOST PORT MAILFROM RCPT MESSAGE.eml HELD_FILE GO_FILE RESULT_FILE

It sends EHLO, MAIL, RCPT, DATA, the message's header section and the first
body line, creates HELD_FILE, waits (at most 120 s) for GO_FILE to exist,
sends the rest and the final dot, writes the server's final reply (one
line, e.g. "250 2.0.0 Ok: queued as ...") to RESULT_FILE and quits.  A
reply other than the expected one at an earlier step is written to
RESULT_FILE too, prefixed "early: ".  The whole transcript goes to stderr.
Exit status 0 when a final reply was read, 1 otherwise.
"""
import os
import socket
import sys
import time


def main():
    host, port, mail_from, rcpt, eml, held, go, result = sys.argv[1:9]
    port = int(port)
    with open(eml, "rb") as f:
        data = f.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    # Dot-stuffing.
    data = b"\r\n".join(b"." + l if l.startswith(b".") else l
                        for l in data.split(b"\r\n"))
    head, sep, body = data.partition(b"\r\n\r\n")
    blines = body.split(b"\r\n", 1)
    first = head + sep + blines[0] + b"\r\n"
    rest = blines[1] if len(blines) > 1 else b""

    s = socket.create_connection((host, port), timeout=150)
    f = s.makefile("rb")

    def reply():
        lines = []
        while True:
            l = f.readline()
            if not l:
                raise EOFError("connection closed")
            sys.stderr.write("<- " + l.decode(errors="replace"))
            lines.append(l.rstrip(b"\r\n").decode(errors="replace"))
            if l[3:4] != b"-":
                return lines[-1]

    def cmd(c, want):
        sys.stderr.write("-> " + c + "\n")
        s.sendall(c.encode() + b"\r\n")
        r = reply()
        if not r.startswith(want):
            with open(result, "w") as o:
                o.write("early: " + r + "\n")
            raise SystemExit(1)
        return r

    def finish(text):
        with open(result, "w") as o:
            o.write(text + "\n")

    try:
        r = reply()
        if not r.startswith("220"):
            finish("early: " + r)
            return 1
        cmd("EHLO client.ext.test", "250")
        cmd("MAIL FROM:<%s>" % mail_from, "250")
        cmd("RCPT TO:<%s>" % rcpt, "250")
        cmd("DATA", "354")
        sys.stderr.write("-> (headers and first body line)\n")
        s.sendall(first)
        open(held, "w").close()
        deadline = time.monotonic() + 120
        while not os.path.exists(go):
            if time.monotonic() > deadline:
                finish("early: no go file within 120 s")
                return 1
            time.sleep(0.05)   # poll interval for the go file
        sys.stderr.write("-> (rest of the body and the dot)\n")
        s.sendall(rest + b".\r\n")
        r = reply()
        finish(r)
        try:
            cmd("QUIT", "221")
        except (EOFError, OSError, SystemExit):
            pass
        return 0
    except (EOFError, OSError) as e:
        finish("early: %s" % e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
