#!/usr/bin/python3
"""mkcorpus.py - the benchmark corpus and the DNS data that goes with it.

usage: mkcorpus.py OUTDIR [COUNT]   (default 300 messages)

Writes, in OUTDIR:
  msgs/NNNN.eml   messages of 2-60 KB (CRLF), each DKIM-signed (dkimpy,
                  rsa-sha256, relaxed/simple) by its sender domain with a
                  key generated for this run; about a third multipart with
                  a base64 attachment; URLs in every body.  The first line,
                  "X-Bench-Client: IP NAME", is the SMTP client for
                  milterload (not part of the message).
  list            the message files, one a line
  bench.zone      zone "bench." (not a special-use name, which resolvers
                  built on libunbound answer themselves, e.g. OpenDKIM's):
                  per sender domain SN.bench SPF (the client networks),
                  the DKIM key, DMARC p=reject, MX; the clients' A
                  records; bl.dnsbl.bench (DNSBL: every tenth message's
                  client is listed, 127.0.0.2) and uri.dnsbl.bench (URIBL:
                  one link domain in twenty is listed, 127.0.1.2)
  rev4.zone       zone "2.0.192.in-addr.arpa." (PTR of clean clients)
  rev4b.zone      zone "100.51.198.in-addr.arpa." (PTR of listed clients)
  domains         the sender domains (for the filters' configs)

Deterministic given the seed except for the keys.  Needs python3-dkim and
openssl.
"""
import base64
import os
import random
import subprocess
import sys

import dkim

DOMAINS = 20
SELECTOR = "sel"
WORDS = ("the quarterly report invoice meeting schedule project update "
         "please find attached review budget team customer delivery order "
         "shipment account payment reminder notes agenda minutes draft "
         "proposal contract renewal support ticket release version server "
         "network office travel expense approval summary analysis results").split()
LINK_DOMAINS = ["www.shop%d.com" % i for i in range(40)] + \
    ["news%d.net" % i for i in range(40)]


def text(rng, nbytes):
    out, n = [], 0
    line = []
    while n < nbytes:
        w = rng.choice(WORDS)
        line.append(w)
        n += len(w) + 1
        if len(" ".join(line)) > 66:
            out.append(" ".join(line))
            line = []
            if rng.random() < 0.08:
                d = rng.choice(LINK_DOMAINS)
                out.append("https://%s/p/%d?ref=%d" % (d, rng.randint(1, 999),
                                                       rng.randint(1, 9999)))
                n += 40
    out.append(" ".join(line))
    return "\r\n".join(out) + "\r\n"


def main():
    outdir = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    rng = random.Random(7)
    os.makedirs(os.path.join(outdir, "msgs"), exist_ok=True)
    os.makedirs(os.path.join(outdir, "keys"), exist_ok=True)

    keys, zone = {}, []
    zone.append("$ORIGIN bench.\n$TTL 3600\n"
                "@ IN SOA ns.bench. hostmaster.bench. 1 3600 600 86400 3600\n"
                "@ IN NS ns.bench.\nns IN A 10.53.0.1\n"
                "bl.dnsbl IN A 10.53.0.1\nuri.dnsbl IN A 10.53.0.1\n"
                # RFC 5782 section 5 test entries, which filters probe
                "2.0.0.127.bl.dnsbl IN A 127.0.0.2\n"
                "test.uri.dnsbl IN A 127.0.1.2\n")
    domains = ["s%d.bench" % i for i in range(DOMAINS)]
    for d in domains:
        pem = os.path.join(outdir, "keys", d + ".pem")
        subprocess.run(["openssl", "genrsa", "-out", pem, "2048"],
                       check=True, stderr=subprocess.DEVNULL)
        der = subprocess.run(["openssl", "rsa", "-in", pem, "-pubout",
                              "-outform", "DER"], check=True,
                             capture_output=True).stdout
        keys[d] = open(pem, "rb").read()
        p = base64.b64encode(der).decode()
        txt = "v=DKIM1; k=rsa; p=" + p
        chunks = " ".join('"%s"' % txt[i:i + 250]
                          for i in range(0, len(txt), 250))
        rel = d[:-len(".bench")]
        zone.append('%s IN TXT "v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.0/24 '
                    'mx -all"\n' % rel)
        zone.append("%s IN MX 10 mx.%s.bench.\n" % (rel, rel))
        zone.append("mx.%s IN A 192.0.2.250\n" % rel)
        zone.append("%s._domainkey.%s IN TXT ( %s )\n" % (SELECTOR, rel,
                                                          chunks))
        zone.append('_dmarc.%s IN TXT "v=DMARC1; p=reject; '
                    'rua=mailto:dmarc@%s"\n' % (rel, d))
    rev, revb = [], []
    for i in range(1, 41):
        zone.append("c%d.clients IN A 192.0.2.%d\n" % (i, i))
        rev.append("%d IN PTR c%d.clients.bench.\n" % (i, i))
    for i in range(1, 11):
        zone.append("l%d.clients IN A 198.51.100.%d\n" % (i, i))
        revb.append("%d IN PTR l%d.clients.bench.\n" % (i, i))
        zone.append("%d.100.51.198.bl.dnsbl IN A 127.0.0.2\n" % i)
        zone.append('%d.100.51.198.bl.dnsbl IN TXT "listed"\n' % i)
    for j, d in enumerate(LINK_DOMAINS):
        if j % 20 == 0:
            zone.append("%s.uri.dnsbl IN A 127.0.1.2\n" %
                        d[4:] if d.startswith("www.") else
                        "%s.uri.dnsbl IN A 127.0.1.2\n" % d)
    soa = "@ IN SOA ns.bench. hostmaster.bench. 1 3600 600 86400 3600\n" \
          "@ IN NS ns.bench.\n"
    with open(os.path.join(outdir, "bench.zone"), "w") as f:
        f.write("".join(zone))
    with open(os.path.join(outdir, "rev4.zone"), "w") as f:
        f.write("$ORIGIN 2.0.192.in-addr.arpa.\n$TTL 3600\n" + soa +
                "".join(rev))
    with open(os.path.join(outdir, "rev4b.zone"), "w") as f:
        f.write("$ORIGIN 100.51.198.in-addr.arpa.\n$TTL 3600\n" + soa +
                "".join(revb))
    with open(os.path.join(outdir, "domains"), "w") as f:
        f.write("\n".join(domains) + "\n")

    paths, total = [], 0
    for n in range(count):
        d = domains[n % DOMAINS]
        if n % 10 == 9:
            ip, name = "198.51.100.%d" % (n // 10 % 10 + 1), \
                "l%d.clients.bench" % (n // 10 % 10 + 1)
        else:
            k = n % 40 + 1
            ip, name = "192.0.2.%d" % k, "c%d.clients.bench" % k
        # skewed like real mail: mostly small, average about 16 KB
        size = int(min(60000, 2000 + rng.expovariate(1 / 14500)))
        user = rng.choice(["alice", "bob", "carol", "dave", "erin"])
        hdr = ("From: %s <%s@%s>\r\nTo: Bob <bob@corp.test>\r\n"
               "Subject: %s %s %d\r\nDate: Sun, 06 Dec 2026 02:00:%02d +0000\r\n"
               "Message-ID: <bench.%d.%d@%s>\r\nMIME-Version: 1.0\r\n" %
               (user.title(), user, d, rng.choice(WORDS), rng.choice(WORDS), n,
                n % 60, n, rng.randint(1, 1 << 30), d))
        if n % 3 == 0:
            att = bytes(rng.getrandbits(8) for _ in range(size * 2 // 3 * 3 // 4))
            b64 = base64.b64encode(att).decode()
            b64 = "\r\n".join(b64[i:i + 76] for i in range(0, len(b64), 76))
            bnd = "=_bench_%d" % n
            hdr += 'Content-Type: multipart/mixed; boundary="%s"\r\n' % bnd
            body = ("This is a multi-part message in MIME format.\r\n\r\n"
                    "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s"
                    "\r\n--%s\r\nContent-Type: application/pdf; name=\"r%d.pdf\""
                    "\r\nContent-Disposition: attachment; filename=\"r%d.pdf\""
                    "\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n--%s--\r\n"
                    % (bnd, text(rng, size // 3), bnd, n, n, b64, bnd))
        else:
            hdr += "Content-Type: text/plain; charset=utf-8\r\n"
            body = text(rng, size)
        msg = (hdr + "\r\n" + body).encode()
        sig = dkim.sign(msg, SELECTOR.encode(), d.encode(), keys[d],
                        include_headers=[b"from", b"to", b"subject", b"date",
                                         b"message-id", b"mime-version",
                                         b"content-type"])
        p = os.path.join(outdir, "msgs", "%04d.eml" % n)
        with open(p, "wb") as f:
            f.write(("X-Bench-Client: %s %s\r\n" % (ip, name)).encode())
            f.write(sig.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
            f.write(msg)
        total += len(msg)
        paths.append(os.path.abspath(p))
    with open(os.path.join(outdir, "list"), "w") as f:
        f.write("\n".join(paths) + "\n")
    print("%d messages, average %d bytes, %d domains" %
          (count, total // count, DOMAINS))


if __name__ == "__main__":
    main()
