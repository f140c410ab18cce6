#!/usr/bin/python3
"""dnsbl_dns.py - a small authoritative DNS server on loopback (UDP) for
the blocklist tests, where unbound cannot play the parts needed:

  dnsbl_dns.py PORT ZONEFILE LOGFILE

ZONEFILE lines (re-read on SIGHUP; "reloaded N" is then logged):
  NAME A|AAAA|TXT VALUE      a record (TTL 0: never cached, so a probe
                             after a change sees the change)
  silent SUFFIX              never answer names under SUFFIX (a timeout)
  servfail SUFFIX            answer SERVFAIL under SUFFIX
  truncate SUFFIX            answer with the TC bit and no records under
                             SUFFIX (there is no TCP service to retry on)
  garbage SUFFIX             answer under SUFFIX with the query's id and a
                             body that is not DNS (an answer count with
                             truncated, nonsensical records after it)
  late SUFFIX                hold every query under SUFFIX, unanswered,
                             until SIGUSR1, then answer them all ("released
                             N late" is logged): answers that arrive only
                             after the client gave up
  ttl SECONDS SUFFIX         records under SUFFIX have this TTL (not 0)
  barrier N SUFFIX           hold every query under SUFFIX until N of them
                             different names are held at once, then answer
                             them all (a resent query counts once): a
                             client that asks one zone after the other
                             never gets an answer (it times out), one that
                             asks them in parallel does.  Logged:
                             "barrier released N in flight".
Every other name is NXDOMAIN.  Every query is logged as "query NAME TYPE",
flushed, before it is answered.
"""
import select
import signal
import socket
import struct
import sys

TYPES = {'A': 1, 'TXT': 16, 'AAAA': 28}
TYPE_NAMES = {v: k for k, v in TYPES.items()}


class Zone:
    def __init__(self, path):
        self.path = path
        self.load()

    def load(self):
        self.records, self.silent, self.servfail = {}, [], []
        self.truncate, self.garbage, self.late = [], [], []
        self.barriers = []        # [n, suffix]
        self.ttls = []            # [ttl, suffix]
        with open(self.path) as f:
            for line in f:
                w = line.split(None, 2)
                if not w or w[0].startswith('#'):
                    continue
                if w[0] == 'silent':
                    self.silent.append(w[1].lower().rstrip('.'))
                elif w[0] in ('servfail', 'truncate', 'garbage', 'late'):
                    getattr(self, w[0]).append(w[1].lower().rstrip('.'))
                elif w[0] == 'barrier':
                    n, suffix = w[1], w[2].strip()
                    self.barriers.append((int(n), suffix.lower().rstrip('.')))
                elif w[0] == 'ttl':
                    n, suffix = w[1], w[2].strip()
                    self.ttls.append((int(n), suffix.lower().rstrip('.')))
                else:
                    name = w[0].lower().rstrip('.')
                    self.records.setdefault((name, TYPES[w[1]]), []).append(
                        w[2].strip())


def under(name, suffix):
    return name == suffix or name.endswith('.' + suffix)


def rdata(t, v):
    if t == 1:
        return socket.inet_pton(socket.AF_INET, v)
    if t == 28:
        return socket.inet_pton(socket.AF_INET6, v)
    s = v.strip('"').encode()
    return bytes([len(s)]) + s


def parse_query(pkt):
    if len(pkt) < 12:
        return None
    qid, flags, qd = struct.unpack('!HHH', pkt[:6])
    if qd != 1 or flags & 0x8000:
        return None
    i, labels = 12, []
    while i < len(pkt) and pkt[i] != 0:
        n = pkt[i]
        if n > 63 or i + 1 + n > len(pkt):
            return None
        labels.append(pkt[i + 1:i + 1 + n].decode('ascii', 'replace'))
        i += 1 + n
    i += 1
    if i + 4 > len(pkt):
        return None
    qtype, qclass = struct.unpack('!HH', pkt[i:i + 4])
    return qid, flags, '.'.join(labels).lower(), qtype, pkt[12:i + 4]


def reply(zone, q, rcode=None):
    qid, flags, name, qtype, question = q
    answers = []
    if rcode is None:
        answers = zone.records.get((name, qtype), [])
        exists = any(k[0] == name for k in zone.records)
        rcode = 0 if answers or exists else 3
    out = struct.pack('!HHHHHH', qid, 0x8400 | (flags & 0x0100) | rcode,
                      1, len(answers), 0, 0) + question
    ttl = next((t for t, sfx in zone.ttls if under(name, sfx)), 0)
    for v in answers:
        rd = rdata(qtype, v)
        out += struct.pack('!HHHIH', 0xc00c, qtype, 1, ttl, len(rd)) + rd
    return out


def truncated(q):
    qid, flags, _, _, question = q
    return struct.pack('!HHHHHH', qid, 0x8600 | (flags & 0x0100), 1, 0, 0,
                       0) + question


def garbage(q):
    # the right id and question, then three answers that are not there:
    # a compression pointer past the end and bytes that are no record
    qid, flags, _, _, question = q
    return struct.pack('!HHHHHH', qid, 0x8400 | (flags & 0x0100), 1, 3, 0,
                       0) + question + b'\xc0\xff\x00\x10\xde\xad\xbe'


def main():
    port, zpath, lpath = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    zone = Zone(zpath)
    log = open(lpath, 'a', buffering=1)
    reload_wanted, release_wanted, late = [], [], []
    signal.signal(signal.SIGHUP, lambda *a: reload_wanted.append(1))
    signal.signal(signal.SIGUSR1, lambda *a: release_wanted.append(1))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(('127.0.0.1', port))
    held = {}                 # barrier index -> [(query, addr)]
    nreload = 0
    log.write('listening\n')
    while True:
        if reload_wanted:
            reload_wanted.clear()
            zone.load()
            nreload += 1
            log.write('reloaded %d\n' % nreload)
        if release_wanted:
            release_wanted.clear()
            for hq, ha in late:
                sock.sendto(reply(zone, hq), ha)
            log.write('released %d late\n' % len(late))
            late.clear()
        try:
            r, _, _ = select.select([sock], [], [], 0.5)
        except InterruptedError:
            continue
        if not r:
            continue
        pkt, addr = sock.recvfrom(4096)
        q = parse_query(pkt)
        if q is None:
            continue
        name, qtype = q[2], q[3]
        log.write('query %s %s\n' % (name, TYPE_NAMES.get(qtype, qtype)))
        if any(under(name, s) for s in zone.silent):
            continue
        if any(under(name, s) for s in zone.servfail):
            sock.sendto(reply(zone, q, rcode=2), addr)
            continue
        if any(under(name, s) for s in zone.truncate):
            sock.sendto(truncated(q), addr)
            continue
        if any(under(name, s) for s in zone.garbage):
            sock.sendto(garbage(q), addr)
            continue
        if any(under(name, s) for s in zone.late):
            late.append((q, addr))
            continue
        for bi, (n, suffix) in enumerate(zone.barriers):
            if under(name, suffix):
                held.setdefault(bi, []).append((q, addr))
                # a resent query (the client's retry) is not another one
                inflight = len({(hq[2], hq[3]) for hq, _ in held[bi]})
                if inflight >= n:
                    log.write('barrier released %d in flight\n' % inflight)
                    for hq, ha in held.pop(bi):
                        sock.sendto(reply(zone, hq), ha)
                break
        else:
            sock.sendto(reply(zone, q), addr)


if __name__ == '__main__':
    main()
