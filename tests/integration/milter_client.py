#!/usr/bin/python3
"""milter_client.py - the MTA side of the milter protocol (version 6), as
Postfix speaks it, for tests that need what an MTA will not do on demand:
disconnect in the middle of the headers or of the body, send 100,000
header fields or 10,000 recipients in one message, hold 1,000 sessions
open at once, or keep a steady load while the test signals the daemon.

  milter_client.py SOCKET SCENARIO [OPTIONS]

SOCKET is inet:PORT@HOST or unix:PATH (as in portcullis.conf).  Scenarios:
  message     one message; prints one JSON line: the reply of each stage
              that answered (rcpt_replies: the text of each RCPT reply),
              the final action, the reply text, the header edits,
              whether Authentication-Results was added, and the steps
              the filter negotiated no reply for (noreply)
  drop        starts a message and closes the connection in the middle
              (--at header|body); prints {"dropped": STAGE}
  concurrent  --sessions N sessions connect and negotiate, then all send
              their message; prints {"sessions": N, "actions": {...},
              "errors": [...]}
  load        --messages M at --concurrency C; prints the same summary
Each error of a summary names the step it happened at: "optneg: [Errno
111] Connection refused", "body: connection closed by the filter";
error_steps counts the errors by step.
Message options: --from ADDR --rcpt ADDR (repeatable) --rcpts N (N
generated recipients) --headers N (N extra header fields) --body-bytes N
--ip IP --helo NAME --subject TEXT --body TEXT (the body, instead of
generated lines) --hold FILE (after the body, wait until FILE exists
before the end of message).

Every step the filter did not negotiate away is sent; a step it marked
"no reply" (SMFIP_NR_*) is not waited for.  Body chunks are at most 65,535
bytes.  Exit status 0 when every session got a valid answer (a reply code
of 4xx/5xx with an enhanced status code, no CR or LF in it), 1 otherwise,
2 on a usage error.
"""
import json
import socket
import struct
import sys
import threading

SMFIC = {'abort': b'A', 'body': b'B', 'connect': b'C', 'macro': b'D',
         'eob': b'E', 'helo': b'H', 'header': b'L', 'mail': b'M',
         'eoh': b'N', 'optneg': b'O', 'quit': b'Q', 'rcpt': b'R',
         'data': b'T'}
# protocol flags: steps the filter may skip, steps it may not answer
P_NOCONNECT, P_NOHELO, P_NOMAIL, P_NORCPT = 0x1, 0x2, 0x4, 0x8
P_NOBODY, P_NOHDRS, P_NOEOH, P_NR_HDR = 0x10, 0x20, 0x40, 0x80
P_NOUNKNOWN, P_NODATA, P_SKIP, P_RCPT_REJ = 0x100, 0x200, 0x400, 0x800
P_NR_CONN, P_NR_HELO, P_NR_MAIL, P_NR_RCPT = 0x1000, 0x2000, 0x4000, 0x8000
P_NR_DATA, P_NR_UNKN, P_NR_EOH, P_NR_BODY = 0x10000, 0x20000, 0x40000, 0x80000
P_HDR_LEADSPC = 0x100000
NR_NAMES = {'connect': P_NR_CONN, 'helo': P_NR_HELO, 'mail': P_NR_MAIL,
            'rcpt': P_NR_RCPT, 'data': P_NR_DATA, 'unknown': P_NR_UNKN,
            'header': P_NR_HDR, 'eoh': P_NR_EOH, 'body': P_NR_BODY}
MTA_PROTO = 0x1FFFFF
MTA_ACTIONS = 0x1FF
CHUNK = 65535
FINAL = {b'a': 'accept', b'c': 'continue', b'r': 'reject', b't': 'tempfail',
         b'd': 'discard', b'y': 'reply', b's': 'skip'}


class ProtocolError(Exception):
    pass


def parse_socket(spec):
    if spec.startswith('inet:'):
        port, _, host = spec[5:].partition('@')
        return socket.AF_INET, (host or '127.0.0.1', int(port))
    if spec.startswith('inet6:'):
        port, _, host = spec[6:].partition('@')
        return socket.AF_INET6, (host or '::1', int(port))
    if spec.startswith(('unix:', 'local:')):
        return socket.AF_UNIX, spec.split(':', 1)[1]
    return socket.AF_UNIX, spec


def valid_reply(text):
    """A 4xx/5xx reply with an enhanced status code and no CR/LF."""
    if '\r' in text or '\n' in text or len(text) > 1000:
        return False
    w = text.split(' ', 2)
    if len(w) < 2 or len(w[0]) != 3 or not w[0].isdigit():
        return False
    if w[0][0] not in '45':
        return False
    e = w[1].split('.')
    return (len(e) == 3 and e[0] == w[0][0] and
            all(x.isdigit() and 0 < len(x) <= 3 for x in e))


class Session:
    def __init__(self, spec, timeout=120):
        fam, addr = parse_socket(spec)
        self.s = socket.socket(fam, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(addr)
        if fam != socket.AF_UNIX:
            self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.proto = 0
        self.edits = []

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def send(self, cmd, data=b''):
        self.s.sendall(struct.pack('!I', len(data) + 1) + cmd + data)

    def recv_exact(self, n):
        b = bytearray()
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                raise ProtocolError('connection closed by the filter')
            b += c
        return bytes(b)

    def recv(self):
        (n,) = struct.unpack('!I', self.recv_exact(4))
        if n < 1 or n > 1 << 24:
            raise ProtocolError('bad packet length %d' % n)
        p = self.recv_exact(n)
        return p[:1], p[1:]

    def optneg(self):
        self.send(SMFIC['optneg'], struct.pack('!III', 6, MTA_ACTIONS,
                                               MTA_PROTO))
        cmd, data = self.recv()
        if cmd != b'O' or len(data) < 12:
            raise ProtocolError('bad OPTNEG answer %r' % cmd)
        _, self.actions, self.proto = struct.unpack('!III', data[:12])

    def reply(self):
        """Reads until a final answer of this step; keeps header edits."""
        while True:
            cmd, data = self.recv()
            if cmd in (b'h', b'i', b'm', b'q', b'b', b'e', b'+', b'-'):
                self.edits.append((cmd.decode(), data))
                continue
            if cmd == b'p':
                continue
            if cmd == b'y':
                return 'reply', data.rstrip(b'\0').decode('utf-8',
                                                          'replace')
            if cmd in FINAL:
                return FINAL[cmd], ''
            raise ProtocolError('unexpected answer %r' % cmd)

    def step(self, name, data, skip_flag, nr_flag):
        """Sends a step; returns its answer, or None when not answered."""
        if self.proto & skip_flag:
            return None
        self.send(SMFIC[name], data)
        if self.proto & nr_flag:
            return None
        return self.reply()

    def macro(self, stage, pairs):
        data = stage
        for k, v in pairs:
            data += k.encode() + b'\0' + v.encode() + b'\0'
        self.send(SMFIC['macro'], data)


def wait_for_file(path, tries=1200, interval=0.05):
    """Bounded poll until path exists (the test's signal)."""
    import os
    import time
    for _ in range(tries):
        if os.path.exists(path):
            return
        time.sleep(interval)
    raise ProtocolError('gave up waiting for %s' % path)


def decided(ans):
    """A final answer that ends the message (or the session)."""
    return ans is not None and ans[0] not in ('continue', 'skip')


class StageError(ProtocolError):
    """A failure, named by the step it happened at ("rcpt: ...")."""


def run_message(spec, o, drop_at=None, pre=None):
    """One session with one message.  Returns a result dict; a failure
    raises StageError naming the step (optneg, connect, helo, mail,
    rcpt, data, header, eoh, body, eom)."""
    at = ['optneg']
    try:
        return message_steps(spec, o, drop_at, pre, at)
    except (OSError, ProtocolError) as e:
        raise StageError('%s: %s' % (at[0], e))


def message_steps(spec, o, drop_at, pre, at):
    res = {'stages': {}}
    s = pre or Session(spec)
    try:
        if pre is None:
            s.optneg()
        # the steps the filter will not answer, by name
        res['noreply'] = sorted(k for k, bit in NR_NAMES.items()
                                if s.proto & bit)
        at[0] = 'connect'
        s.macro(b'C', [('j', 'mx.corp.test'), ('{daemon_name}', 'mx'),
                       ('v', 'Postfix 3.7'), ('_', 'client [%s]' % o['ip'])])
        a = s.step('connect', b'client.test\0' + b'4' +
                   struct.pack('!H', 25000) + o['ip'].encode() + b'\0',
                   P_NOCONNECT, P_NR_CONN)
        res['stages']['connect'] = a
        if decided(a):
            return finish(res, a)
        at[0] = 'helo'
        a = s.step('helo', o['helo'].encode() + b'\0', P_NOHELO, P_NR_HELO)
        res['stages']['helo'] = a
        if decided(a):
            return finish(res, a)
        at[0] = 'mail'
        s.macro(b'M', [('{mail_addr}', o['from'])])
        a = s.step('mail', b'<' + o['from'].encode() + b'>\0',
                   P_NOMAIL, P_NR_MAIL)
        res['stages']['mail'] = a
        if decided(a):
            return finish(res, a)
        at[0] = 'rcpt'
        accepted = 0
        rcpt_answers = {}
        last = None         # the last decided RCPT answer
        for r in o['rcpts']:
            s.macro(b'R', [('{rcpt_addr}', r)])
            a = s.step('rcpt', b'<' + r.encode() + b'>\0',
                       P_NORCPT, P_NR_RCPT)
            key = a[0] if a else 'none'
            rcpt_answers[key] = rcpt_answers.get(key, 0) + 1
            if a and a[0] == 'reply':
                res.setdefault('rcpt_replies', []).append(a[1])
                if not valid_reply(a[1]):
                    res.setdefault('invalid', []).append(a[1])
            if not decided(a):
                accepted += 1
            else:
                last = a
        res['stages']['rcpt'] = rcpt_answers
        if accepted == 0:
            # no recipient goes on: the message ends here, with an
            # accept at RCPT (the filter is done with it: the MTA sends
            # it on untouched) or the refusal of the recipients
            s.send(SMFIC['abort'])
            if 'accept' in rcpt_answers:
                res['authres'] = False
                return finish(res, ('accept', ''))
            return finish(res, last or ('norcpt', ''))
        at[0] = 'data'
        s.macro(b'T', [('i', 'QID%d' % threading.get_ident())])
        a = s.step('data', b'', P_NODATA, P_NR_DATA)
        if decided(a):
            return finish(res, a)
        at[0] = 'header'
        hdrs = [('From', '<%s>' % o['from']), ('To', o['rcpts'][0]),
                ('Subject', o['subject']), ('Message-ID', '<m@client.test>')]
        hdrs += [('X-Filler-%d' % i, 'value %d' % i)
                 for i in range(o['headers'])]
        for i, (k, v) in enumerate(hdrs):
            if drop_at == 'header' and i == len(hdrs) // 2:
                res['dropped'] = 'header'
                return res
            lead = b' ' if s.proto & P_HDR_LEADSPC else b''
            a = s.step('header', k.encode() + b'\0' + lead + v.encode() +
                       b'\0', P_NOHDRS, P_NR_HDR)
            if decided(a):
                return finish(res, a)
        at[0] = 'eoh'
        a = s.step('eoh', b'', P_NOEOH, P_NR_EOH)
        if decided(a):
            return finish(res, a)
        line = b'The quick brown fox jumps over the lazy dog. 0123456789\r\n'
        if o.get('body'):
            line = o['body'].encode() + b'\r\n'
            o = dict(o, body_bytes=len(line))
        at[0] = 'body'
        left = o['body_bytes']
        sent = 0
        while left > 0 and not s.proto & P_NOBODY:
            n = min(CHUNK, left)
            chunk = (line * (n // len(line) + 1))[:n]
            if drop_at == 'body' and sent >= o['body_bytes'] // 2:
                res['dropped'] = 'body'
                return res
            a = s.step('body', chunk, P_NOBODY, P_NR_BODY)
            if decided(a):
                return finish(res, a)
            left -= n
            sent += n
        if drop_at is not None:
            res['dropped'] = drop_at
            return res
        if o.get('hold'):
            # the body is sent; end of message only once the test says
            wait_for_file(o['hold'])
        at[0] = 'eom'
        s.send(SMFIC['eob'])
        a = s.reply()
        res['edits'] = [e[0] for e in s.edits]
        res['authres'] = any(added_name(e) == b'authentication-results'
                             for e in s.edits)
        s.send(SMFIC['quit'])
        return finish(res, a)
    finally:
        s.close()


def added_name(edit):
    """The lower-case name of a header addition ('h', or 'i' after its
    4-byte index), or None."""
    cmd, data = edit
    if cmd == 'i':
        data = data[4:]
    elif cmd != 'h':
        return None
    return data.split(b'\0', 1)[0].lower()


def finish(res, a):
    res['action'], res['reply'] = a
    if a[0] == 'reply' and not valid_reply(a[1]):
        res.setdefault('invalid', []).append(a[1])
    return res


def summary(results, errors):
    actions = {}
    for r in results:
        k = r['action'] + (':' + r['reply'].split(' ')[0]
                           if r['reply'] else '')
        actions[k] = actions.get(k, 0) + 1
    invalid = [x for r in results for x in r.get('invalid', [])]
    steps = {}
    for e in errors:
        k = e.split(':', 1)[0]
        steps[k] = steps.get(k, 0) + 1
    return {'sessions': len(results) + len(errors), 'actions': actions,
            'error_steps': steps,
            'authres': sum(1 for r in results if r.get('authres')),
            'invalid': invalid[:10], 'errors': errors[:10],
            'nerrors': len(errors)}


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    spec, scen, args = argv[1], argv[2], argv[3:]
    o = {'from': 'alice@ext.test', 'rcpts': [], 'headers': 0,
         'body_bytes': 2000, 'ip': '192.0.2.7', 'helo': 'mx.ext.test',
         'subject': 'hello', 'at': 'body', 'body': None, 'sessions': 10,
         'messages': 100, 'concurrency': 8, 'hold': None}
    i = 0
    while i < len(args):
        k = args[i].lstrip('-').replace('-', '_')
        if i + 1 >= len(args):
            print('missing value for %s' % args[i], file=sys.stderr)
            return 2
        v = args[i + 1]
        if k == 'rcpt':
            o['rcpts'].append(v)
        elif k == 'rcpts':
            o['rcpts'] += ['user%d@corp.test' % n for n in range(int(v))]
        elif k in ('headers', 'body_bytes', 'sessions', 'messages',
                   'concurrency'):
            o[k] = int(v)
        elif k in o:
            o[k] = v
        else:
            print('unknown option %s' % args[i], file=sys.stderr)
            return 2
        i += 2
    if not o['rcpts']:
        o['rcpts'] = ['bob@corp.test']

    if scen == 'message':
        r = run_message(spec, o)
        print(json.dumps(r))
        return 0 if not r.get('invalid') else 1
    if scen == 'drop':
        r = run_message(spec, o, drop_at=o['at'])
        print(json.dumps(r))
        return 0
    if scen == 'concurrent':
        # every session connects and negotiates first; then all of them
        # send their message at once
        sessions, errors = [], []
        for _ in range(o['sessions']):
            try:
                s = Session(spec)
                s.optneg()
                sessions.append(s)
            except (OSError, ProtocolError) as e:
                errors.append('connect: %s' % e)
        results, lock = [], threading.Lock()

        def one(s):
            try:
                r = run_message(spec, o, pre=s)
                with lock:
                    results.append(r)
            except (OSError, ProtocolError) as e:
                with lock:
                    errors.append(str(e))
        ts = [threading.Thread(target=one, args=(s,), daemon=True)
              for s in sessions]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        out = summary(results, errors)
        print(json.dumps(out))
        return 0 if not errors and not out['invalid'] else 1
    if scen == 'load':
        results, errors, lock = [], [], threading.Lock()
        todo = list(range(o['messages']))

        def worker():
            while True:
                with lock:
                    if not todo:
                        return
                    todo.pop()
                try:
                    r = run_message(spec, o)
                    with lock:
                        results.append(r)
                except (OSError, ProtocolError) as e:
                    with lock:
                        errors.append(str(e))
        ts = [threading.Thread(target=worker, daemon=True)
              for _ in range(o['concurrency'])]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        out = summary(results, errors)
        print(json.dumps(out))
        return 0 if not errors and not out['invalid'] else 1
    print('unknown scenario %s' % scen, file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))
