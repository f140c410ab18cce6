#!/usr/bin/python3
"""spf_suite.py - runs the RFC 7208 (OpenSPF/pyspf) test suite through
portcullis's SPF path and prints TAP.

Each scenario's zonedata is served by a small DNS server on loopback (in
this process, UDP); the C driver (spf_suite) checks one test through
dns.c -> libunbound -> this server.  Zone semantics follow pyspf's runner
(test/testspf.py): SPF records are also served as TXT unless the name has
a TXT entry ("TXT: NONE" = none), TIMEOUT leaves queries unanswered (all
types, or the types not listed before it), names under "error." and names
with a label over 63 bytes are unanswered, unknown names are NXDOMAIN.
Results and explanations are counted separately.  Known residual failures
are reported as TODO (see KNOWN).
Usage: spf_suite.py DRIVER SUITE.yml
"""
import concurrent.futures
import os
import socket
import struct
import subprocess
import sys
import threading

try:
    import yaml
except ImportError:
    print("1..0 # SKIP python3-yaml not installed")
    sys.exit(0)

TYPES = {'A': 1, 'NS': 2, 'CNAME': 5, 'PTR': 12, 'MX': 15, 'TXT': 16,
         'AAAA': 28, 'SPF': 99}

# Residual failures: test name -> cause.  Reported with "# TODO cause", so
# they are counted but do not fail "make check"; once one passes it shows
# as an unexpected pass (XPASS), which does: then remove it from here.
# Tests known to fail, with their cause: reported "# TODO cause"; one that
# starts passing shows as XPASS and fails the run, so this list stays true.
KNOWN = {}


class Zone:
    def __init__(self):
        self.data = {}

    def load(self, zonedata):
        data = {}
        for name, recs in (zonedata or {}).items():
            items = []
            has_txt = any(isinstance(r, dict) and 'TXT' in r for r in recs)
            spf_as_txt = []
            for r in recs:
                if r == 'TIMEOUT':
                    items.append(('TIMEOUT', None))
                    continue
                for t, v in r.items():
                    if t == 'SPF' and not has_txt:
                        spf_as_txt.append(('TXT', v))
                    if v == 'NONE':
                        continue
                    items.append((t, v))
            data[name.lower().rstrip('.')] = items + spf_as_txt
        self.data = data

    def lookup(self, name, qtype):
        """Returns ('timeout',), ('nxdomain',) or ('ok', [(t, v)...])."""
        labels = name.split('.')
        if any(len(l) > 63 for l in labels):
            return ('timeout',)
        key = name.lower().rstrip('.')
        if key not in self.data:
            if key.startswith('error.'):
                return ('timeout',)
            return ('nxdomain',)
        out = []
        seen = False
        for t, v in self.data[key]:
            if t == 'TIMEOUT':
                if not seen:
                    return ('timeout',)
                break
            if TYPES.get(t) == qtype or (t == 'CNAME' and qtype != 5):
                seen = True
                if v == 'TIMEOUT':
                    return ('timeout',)
                out.append((t, v))
        return ('ok', out)


def enc_name(name):
    out = b''
    for l in name.rstrip('.').split('.'):
        if l:
            b = l.encode('latin-1')
            out += bytes([len(b)]) + b
    return out + b'\0'


def rdata(t, v):
    if t == 'A':
        return socket.inet_pton(socket.AF_INET, v)
    if t == 'AAAA':
        return socket.inet_pton(socket.AF_INET6, v)
    if t in ('PTR', 'CNAME', 'NS'):
        return enc_name(v)
    if t == 'MX':
        return struct.pack('!H', int(v[0])) + enc_name(v[1])
    if t in ('TXT', 'SPF'):
        strs = v if isinstance(v, list) else [v]
        if not strs:
            # "null text" (no strings) cannot be carried by DNS; the
            # nearest legal rdata is one empty string
            strs = ['']
        out = b''
        for s in strs:
            b = s.encode('utf-8') if isinstance(s, str) else bytes(s)
            if not b:
                out += b'\0'
            while b:
                out += bytes([min(len(b), 255)]) + b[:255]
                b = b[255:]
        return out
    raise ValueError(t)


def answer(zone, pkt):
    if len(pkt) < 12:
        return None
    qid, flags, qd = struct.unpack('!HHH', pkt[:6])
    if qd != 1:
        return None
    i, labels = 12, []
    while i < len(pkt) and pkt[i] != 0:
        n = pkt[i]
        labels.append(pkt[i + 1:i + 1 + n].decode('latin-1'))
        i += 1 + n
    i += 1
    qtype, qclass = struct.unpack('!HH', pkt[i:i + 4])
    question = pkt[12:i + 4]
    name = '.'.join(labels)
    rcode, ans = 0, []
    cur, depth = name, 0
    while True:
        r = zone.lookup(cur, qtype)
        if r[0] == 'timeout':
            if not ans:
                return None
            break
        if r[0] == 'nxdomain':
            if not ans:
                rcode = 3
            break
        cname = None
        for t, v in r[1]:
            if t == 'CNAME' and qtype != 5:
                cname = v
            ans.append((cur, t, v))
        if cname is None or depth > 8:
            break
        cur, depth = cname, depth + 1
    body = b''
    for n, t, v in ans:
        rd = rdata(t, v)
        body += enc_name(n) + struct.pack('!HHIH', TYPES[t], 1, 60,
                                          len(rd)) + rd
    hflags = 0x8400 | (flags & 0x0100) | 0x0080 | rcode
    return struct.pack('!HHHHHH', qid, hflags, 1, len(ans), 0, 0) + \
        question + body


def serve(sock, zone):
    while True:
        try:
            pkt, addr = sock.recvfrom(4096)
        except OSError:
            return
        try:
            resp = answer(zone, pkt)
        except Exception:
            resp = None
        if resp is not None:
            sock.sendto(resp, addr)


def main():
    if len(sys.argv) != 3:
        print("usage: spf_suite.py DRIVER SUITE.yml", file=sys.stderr)
        sys.exit(2)
    driver, suite = sys.argv[1], sys.argv[2]
    if not os.path.exists(suite):
        print("1..0 # SKIP RFC 7208 suite not found (../shared absent)")
        sys.exit(0)
    with open(suite, 'rb') as f:
        scenarios = list(yaml.safe_load_all(f))
    total = sum(len(s['tests']) for s in scenarios)
    zone = Zone()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    threading.Thread(target=serve, args=(sock, zone), daemon=True).start()
    print("1..%d" % total)
    n = right = exp_right = exp_total = 0
    def run(t):
        return subprocess.run([driver, '127.0.0.1@%d' % port,
                               str(t.get('host', '')), str(t['helo']),
                               str(t['mailfrom']), '1500'],
                              stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=8)
    for sc in scenarios:
        zone.load(sc.get('zonedata'))
        tests = list(sc['tests'].items())
        only = os.environ.get('SPF_ONLY')
        if only:
            # debugging aid: run just these tests (comma-separated)
            tests = [x for x in tests if x[0] in only.split(',')]
        procs = list(pool.map(run, [t for _, t in tests]))
        for (name, t), p in zip(tests, procs):
            n += 1
            want = t['result']
            want = want if isinstance(want, list) else [want]
            lines = p.stdout.decode('utf-8', 'replace').split('\n')
            got = lines[0] if p.returncode == 0 else 'internal-error'
            exp = lines[1] if len(lines) > 1 and lines[1] else 'DEFAULT'
            problem = lines[2] if len(lines) > 2 else ''
            ok_res = got in want
            ok = ok_res
            if ok_res:
                right += 1
            if 'explanation' in t:
                exp_total += 1
                if exp == t['explanation']:
                    exp_right += 1
                else:
                    ok = False
            line = "%s %d - %s" % ("ok" if ok else "not ok", n, name)
            if not ok:
                line += ": got %s (%s) expl %r; want %s expl %r" % (
                    got, problem.replace('#', '%23'), exp,
                    '|'.join(want), t.get('explanation'))
            if name in KNOWN:
                line += " # TODO %s" % KNOWN[name]
            print(line)
            if os.environ.get('SPF_ONLY'):
                print(p.stderr.decode('utf-8', 'replace'))
            sys.stdout.flush()
    print("# results: %d/%d right, explanations %d/%d right" % (
        right, total, exp_right, exp_total))
    sys.exit(0)


if __name__ == '__main__':
    main()
