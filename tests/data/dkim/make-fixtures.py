#!/usr/bin/python3
"""
make-fixtures.py OUTDIR - DKIM fixtures for tests/unit/dkim_test.c.

Generates fresh keys (openssl genrsa; ed25519 through python3-cryptography),
signs messages with dkimpy (python3-dkim) and writes into OUTDIR:
  zone        one resource record per line, zone-file syntax, for the
              resolver's local_data (TXT strings split at 255 bytes)
  NAME.eml    one signed (or tampered) message per case, CRLF line ends
Nothing private is kept: OUTDIR is a temporary directory of the test.
"""
import base64
import os
import subprocess
import sys
import time
import types

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

# dkimpy signs ed25519 through PyNaCl, which Debian 12 may lack: a shim
# module over python3-cryptography gives it the two calls it makes.
try:
    import nacl.signing  # noqa: F401
except ImportError:
    class _SignedMessage:
        def __init__(self, sig):
            self.signature = sig

    class _SigningKey:
        def __init__(self, key, encoder=None):
            seed = encoder.decode(key) if encoder else key
            self._k = ed25519.Ed25519PrivateKey.from_private_bytes(seed)

        def sign(self, data):
            return _SignedMessage(self._k.sign(data))

    class _Base64Encoder:
        @staticmethod
        def decode(data):
            return base64.b64decode(data)

    nacl = types.ModuleType("nacl")
    nacl.signing = types.ModuleType("nacl.signing")
    nacl.encoding = types.ModuleType("nacl.encoding")
    nacl.exceptions = types.ModuleType("nacl.exceptions")
    nacl.signing.SigningKey = _SigningKey
    nacl.encoding.Base64Encoder = _Base64Encoder
    nacl.exceptions.ValueError = ValueError
    for m in (nacl, nacl.signing, nacl.encoding, nacl.exceptions):
        sys.modules[m.__name__] = m

import dkim  # noqa: E402

DOMAIN = b"example.test"
OUT = sys.argv[1]

MSG = (b"From: Alice <alice@example.test>\r\n"
       b"To: Bob <bob@example.net>\r\n"
       b"Subject: DKIM test\r\n"
       b"   folded subject line\r\n"
       b"Date: Tue, 24 Nov 2026 12:00:00 +0000\r\n"
       b"Message-ID: <dkim-test@example.test>\r\n"
       b"\r\n"
       b"Hello Bob,\r\n"
       b"\r\n"
       b"this body is signed.  Trailing spaces here:   \r\n"
       b"The end.\r\n"
       b"\r\n\r\n")

zone = []


def txt_rr(name, text):
    """A TXT record in zone-file syntax, strings of at most 255 bytes."""
    parts = [text[i:i + 255] for i in range(0, len(text), 255)] or [""]
    return "%s IN TXT %s" % (name, " ".join('"%s"' % p for p in parts))


def publish(sel, record):
    zone.append(txt_rr("%s._domainkey.example.test." % sel, record))


def rsa_key(bits):
    pem = subprocess.run(["openssl", "genrsa", str(bits)], check=True,
                         capture_output=True).stdout
    key = serialization.load_pem_private_key(pem, password=None)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, base64.b64encode(der).decode()


def ed_key():
    key = ed25519.Ed25519PrivateKey.generate()
    seed = key.private_bytes(serialization.Encoding.Raw,
                             serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return base64.b64encode(seed), base64.b64encode(pub).decode()


def sign(msg, sel, priv, alg=b"rsa-sha256", canon=(b"relaxed", b"relaxed"),
         length=False):
    return dkim.sign(msg, sel, DOMAIN, priv, signature_algorithm=alg,
                     canonicalize=canon, length=length,
                     include_headers=[b"from", b"to", b"subject", b"date",
                                      b"message-id"]) + msg


def write(name, data):
    with open(os.path.join(OUT, name + ".eml"), "wb") as f:
        f.write(data)


rsa2048, pub2048 = rsa_key(2048)
rsa1024, pub1024 = rsa_key(1024)
rsa512, pub512 = rsa_key(512)
other, pubother = rsa_key(2048)
edpriv, edpub = ed_key()

publish("r2048", "v=DKIM1; k=rsa; p=" + pub2048)
publish("r1024", "v=DKIM1; k=rsa; p=" + pub1024)
publish("r512", "v=DKIM1; k=rsa; p=" + pub512)
publish("ed", "v=DKIM1; k=ed25519; p=" + edpub)
publish("wrong", "v=DKIM1; k=rsa; p=" + pubother)
publish("revoked", "v=DKIM1; k=rsa; p=")
publish("testing", "v=DKIM1; t=y; k=rsa; p=" + pub2048)
publish("sha256only", "v=DKIM1; h=sha256; k=rsa; p=" + pub2048)

write("relaxed", sign(MSG, b"r2048", rsa2048))
write("simple", sign(MSG, b"r2048", rsa2048, canon=(b"simple", b"simple")))
write("rsa1024", sign(MSG, b"r1024", rsa1024))
write("rsa512", sign(MSG, b"r512", rsa512))
write("ed25519", sign(MSG, b"ed", edpriv, alg=b"ed25519-sha256"))
write("length", sign(MSG, b"r2048", rsa2048, length=True) +
      b"Appended after signing: l= leaves it unsigned.\r\n")
# a good signature over a bad one (the "wrong" selector publishes a
# different key): each gets its own result
write("two", sign(sign(MSG, b"wrong", rsa2048), b"r2048", rsa2048))
write("header-tampered", sign(MSG, b"r2048", rsa2048).replace(
    b"Subject: DKIM test", b"Subject: DKIM best"))
write("body-tampered", sign(MSG, b"r2048", rsa2048).replace(
    b"Hello Bob", b"Hello Eve"))
write("revoked", sign(MSG, b"revoked", rsa2048))
write("testing", sign(MSG, b"testing", rsa2048))
# a testing key's signature that fails: RFC 6376 3.6.1 (t=y), treated as
# an unsigned message by the dkim fact
write("testing-tampered", sign(MSG, b"testing", rsa2048).replace(
    b"Hello Bob", b"Hello Eve"))
write("sha1", sign(MSG, b"r2048", rsa2048, alg=b"rsa-sha1"))
write("sha1-keyh", sign(MSG, b"sha256only", rsa2048, alg=b"rsa-sha1"))
write("unsigned", MSG)
write("nokey", sign(MSG, b"absent", rsa2048))

# x= expiry: dkimpy has no parameter for it, so the tag is added to the
# fields it signs, with t= an hour before x= and x= an hour ago.
_gen_header = dkim.DKIM.gen_header


def _with_expiry(self, fields, *args, **kw):
    now = int(time.time())
    fields = [(k, str(now - 7200).encode() if k == b"t" else v)
              for k, v in fields]
    i = [k for k, _ in fields].index(b"h")
    fields.insert(i, (b"x", str(now - 3600).encode()))
    return _gen_header(self, fields, *args, **kw)


dkim.DKIM.gen_header = _with_expiry
write("expired", sign(MSG, b"r2048", rsa2048))
dkim.DKIM.gen_header = _gen_header


# h= without From (RFC 6376 6.1.1): dkimpy refuses to sign so, so "from"
# is taken out of the fields and headers it hashes.
def _without_from(self, fields, include_headers, *args, **kw):
    fields = [(k, b" : ".join(x for x in v.split(b" : ") if x != b"from")
               if k == b"h" else v) for k, v in fields]
    include_headers = tuple(x for x in include_headers if x != b"from")
    return _gen_header(self, fields, include_headers, *args, **kw)


dkim.DKIM.gen_header = _without_from
write("nofrom", sign(MSG, b"r2048", rsa2048))
dkim.DKIM.gen_header = _gen_header

# a selector no DNS name can hold
write("badsel", sign(MSG, b"bad..sel", rsa2048))

# a second From added after signing (RFC 6376 8.15 / RFC 7489 6.6.1)
write("twofrom", b"From: Mallory <mallory@evil.test>\r\n" +
      sign(MSG, b"r2048", rsa2048))

# a good signature and a broken one (no s=) above it
write("good-broken", b"DKIM-Signature: v=1; a=rsa-sha256; d=example.test;"
      b" h=from; bh=AAAA;\r\n b=BBBBBBBBBBBBBBBB\r\n" +
      sign(MSG, b"r2048", rsa2048))

# dkim_max_signatures (default 5): five failing signatures (the "wrong"
# selector publishes another key) above a good one; the good one is the
# sixth in header order, so it must be neither verified nor reported
six = sign(MSG, b"r2048", rsa2048)
for _ in range(5):
    six = sign(six, b"wrong", rsa2048)
write("six", six)

with open(os.path.join(OUT, "zone"), "w") as f:
    f.write("\n".join(zone) + "\n")
