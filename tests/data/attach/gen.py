#!/usr/bin/env python3
"""gen.py - regenerates the attachment corpus: one .eml per case and
expect.txt (format described at its top).  Run from anywhere:

    python3 tests/data/attach/gen.py

Archives are built with python's zipfile/tarfile/gzip/bz2; the 7z, the
encrypted zip and the iso fixtures need Debian's p7zip-full, zip and
genisoimage at *generation* time only (the .eml files are committed, so
tests need none of them).  RAR cannot be written by free tools: the two
RAR 4 fixtures are built byte by byte below (stored file, CRCs computed).
Expected names are written here by hand, not taken from the scanner.
"""
import base64, bz2, gzip, io, os, struct, subprocess, sys, tarfile, tempfile, zipfile, zlib

HERE = os.path.dirname(os.path.abspath(__file__))
cases = []   # (file, names, blocked, flags, limits-override, comment)

def b64(data):
    s = base64.b64encode(data).decode()
    return "\n".join(s[i:i + 76] for i in range(0, len(s), 76)) + "\n"

HDR = "From: sender@example.org\nTo: rcpt@example.net\nSubject: test\nDate: Mon, 2 Mar 2026 10:00:00 +0000\nMessage-ID: <{}@example.org>\nMIME-Version: 1.0\n"

def part(ct, body, disp=None, cte="base64", extra=""):
    h = "Content-Type: " + ct + "\n"
    if disp:
        h += "Content-Disposition: " + disp + "\n"
    if cte:
        h += "Content-Transfer-Encoding: " + cte + "\n"
    h += extra
    if isinstance(body, bytes):
        body = b64(body) if cte == "base64" else body.decode("latin-1")
    return h + "\n" + body

def multipart(parts, sub="mixed", b=None, depth=0):
    b = b or "=_b%d_%x" % (depth, len(parts))
    s = "Content-Type: multipart/%s; boundary=\"%s\"\n\nThis is a multi-part message in MIME format.\n" % (sub, b)
    for p in parts:
        s += "--%s\n%s\n" % (b, p.rstrip("\n"))
    return s + "--%s--\n" % b

TEXT = part("text/plain; charset=us-ascii", "Please find the file attached.\n", cte="7bit")
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + b"This program cannot be run in DOS mode.\r\n"

def att(name, data=EXE, ct="application/octet-stream", disp="attachment"):
    return part('%s; name="%s"' % (ct, name), data, disp='%s; filename="%s"' % (disp, name))

def write(fname, msg, names, blocked=(), flags=(), lim=None, crlf=False, comment=""):
    path = os.path.join(HERE, fname)
    data = msg.encode("utf-8", "surrogateescape") if isinstance(msg, str) else msg
    if crlf:
        data = data.replace(b"\n", b"\r\n")
    with open(path, "wb") as f:
        f.write(data)
    cases.append((fname, list(names), list(blocked), list(flags), lim, comment))

def mail(fname, body, names, blocked=(), flags=(), lim=None, crlf=False, comment=""):
    write(fname, HDR.format(fname) + body, names, blocked, flags, lim, crlf, comment)

def mkzip(members, compression=zipfile.ZIP_DEFLATED):
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", compression) as z:
        for n, d in members:
            z.writestr(n, d)
    return bio.getvalue()

def mktar(members, mode="w"):
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode=mode) as t:
        for n, d in members:
            ti = tarfile.TarInfo(n)
            ti.size = len(d)
            ti.mtime = 1700000000
            t.addfile(ti, io.BytesIO(d))
    return bio.getvalue()

def tool(args, cwd):
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def crc16(b):
    return zlib.crc32(b) & 0xffff

def mkrar(name, data, encrypted=False):
    """RAR 4.x, one stored file (method 0x30).  Block CRC = low 16 bits of
    the CRC32 of the block from its type byte on."""
    out = b"Rar!\x1a\x07\x00"
    mh = struct.pack("<BHH", 0x73, 0, 13) + b"\x00" * 6
    out += struct.pack("<H", crc16(mh)) + mh
    nb = name.encode()
    flags = 0x8000 | (0x04 if encrypted else 0)
    fh_rest = struct.pack("<IIBIIBBHI", len(data), len(data), 2, zlib.crc32(data), 0x5a000000, 20, 0x30, len(nb), 0x20) + nb
    fh = struct.pack("<BHH", 0x74, flags, 7 + len(fh_rest)) + fh_rest
    out += struct.pack("<H", crc16(fh)) + fh + data
    eb = struct.pack("<BHH", 0x7b, 0x4000, 7)
    out += struct.pack("<H", crc16(eb)) + eb
    return out

def main():
    for f in os.listdir(HERE):
        if f.endswith(".eml"):
            os.unlink(os.path.join(HERE, f))
    tmp = tempfile.mkdtemp()

    # -- names in MIME headers --
    mail("plain_exe.eml", multipart([TEXT, att("report.exe")]), ["report.exe"], ["report.exe"])
    mail("plain_pdf.eml", multipart([TEXT, att("report.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")]), ["report.pdf"])
    mail("plain_exe_crlf.eml", multipart([TEXT, att("report.exe")]), ["report.exe"], ["report.exe"], crlf=True)
    mail("ct_name_only.eml", multipart([TEXT, part('application/octet-stream; name="setup.exe"', EXE)]), ["setup.exe"], ["setup.exe"])
    mail("ct_name_unquoted.eml", multipart([TEXT, part('application/x-msdownload; name=setup.scr', EXE)]), ["setup.scr"], ["setup.scr"])
    mail("rfc2231_charset.eml", multipart([TEXT, part("application/octet-stream", EXE, disp="attachment; filename*=utf-8''%E6%97%A5%E6%9C%AC%E8%AA%9E.exe")]), ["日本語.exe"], ["日本語.exe"])
    mail("rfc2231_continuation.eml", multipart([TEXT, part("application/octet-stream", EXE, disp="attachment;\n filename*0*=utf-8''very%20long%20name;\n filename*1=\"_continued\";\n filename*2=\".scr\"")]), ["very long name_continued.scr"], ["very long name_continued.scr"])
    mail("rfc2231_latin1.eml", multipart([TEXT, part("application/pdf", b"%PDF-1.4\n", disp="attachment; filename*=iso-8859-1'fr'r%E9sum%E9.pdf")]), ["résumé.pdf"])
    mail("rfc2231_ct_name.eml", multipart([TEXT, part("application/octet-stream; name*=utf-8''fa%C3%A7ture.js", EXE)]), ["façture.js"], ["façture.js"])
    mail("rfc2047_quoted_b.eml", multipart([TEXT, part('application/octet-stream; name="=?UTF-8?B?cmVjaG51bmcuZXhl?="', EXE, disp='attachment; filename="=?UTF-8?B?cmVjaG51bmcuZXhl?="')]), ["rechnung.exe"], ["rechnung.exe"], comment="Outlook: RFC 2047 inside a quoted parameter")
    mail("rfc2047_quoted_q.eml", multipart([TEXT, part('application/octet-stream', EXE, disp='attachment; filename="=?iso-8859-1?Q?Rechnung_M=E4rz.js?="')]), ["Rechnung März.js"], ["Rechnung März.js"])
    mail("rfc2047_two_words.eml", multipart([TEXT, part('application/octet-stream', EXE, disp='attachment;\n filename="=?utf-8?Q?Angebot_?= =?utf-8?Q?2026.vbs?="')]), ["Angebot 2026.vbs"], ["Angebot 2026.vbs"])
    mail("rfc2047_unquoted.eml", multipart([TEXT, part('application/octet-stream; name==?utf-8?B?bGV0dGVyLmh0YQ==?=', EXE)]), ["letter.hta"], ["letter.hta"])
    mail("upper_exe.eml", multipart([TEXT, att("INVOICE.EXE")]), ["INVOICE.EXE"], ["INVOICE.EXE"])
    mail("double_ext.eml", multipart([TEXT, att("invoice.pdf.exe")]), ["invoice.pdf.exe"], ["invoice.pdf.exe"])
    mail("trailing_dots.eml", multipart([TEXT, att("x.exe. . ")]), ["x.exe"], ["x.exe"])
    mail("rlo_raw.eml", multipart([TEXT, att("invoice\u202efdp.exe")]), ["invoicefdp.exe"], ["invoicefdp.exe"], comment="U+202E in raw UTF-8: shows as invoiceexe.pdf")
    mail("rlo_2231.eml", multipart([TEXT, part("application/octet-stream", EXE, disp="attachment; filename*=utf-8''invoice%E2%80%AEfdp.exe")]), ["invoicefdp.exe"], ["invoicefdp.exe"])
    mail("rlo_scr_doc.eml", multipart([TEXT, att("photo\u202egpj.scr")]), ["photogpj.scr"], ["photogpj.scr"])
    mail("zwsp_ext.eml", multipart([TEXT, att("payload.e\u200bxe")]), ["payload.exe"], ["payload.exe"])
    mail("zw_mix.eml", multipart([TEXT, att("a.b\u200dat\ufeff\u2060"), att("b.sc\u00adr")]), ["a.bat", "b.scr"], ["a.bat", "b.scr"])
    mail("control_chars.eml", multipart([TEXT, part("application/octet-stream", EXE, disp="attachment; filename*=utf-8''run%09.c%0Amd")]), ["run.cmd"], ["run.cmd"])
    mail("invalid_utf8.eml", multipart([TEXT, part("application/octet-stream", EXE, disp="attachment; filename*=utf-8''bad%FF%FEname.lnk")]), ["bad??name.lnk"], ["bad??name.lnk"])
    mail("name_mismatch.eml", multipart([TEXT, part('application/octet-stream; name="doc.exe"', EXE, disp='attachment; filename="doc.pdf"')]), ["doc.pdf", "doc.exe"], ["doc.exe"], comment="filename and name disagree: both checked")
    mail("raw_8bit_utf8.eml", multipart([TEXT, att("naïve.com")]), ["naïve.com"], ["naïve.com"])
    mail("raw_8bit_latin1.eml", (multipart([TEXT, att("XXXX.pdf")]).replace("XXXX", "r\udce9sum\udce9")), ["résumé.pdf"], comment="8-bit Latin-1 name: fallback charset")
    long = "a" * 3000 + ".exe"
    mail("long_name.eml", multipart([TEXT, att(long)]), ["a" * 1020 + ".exe"], ["a" * 1020 + ".exe"], comment="long name keeps its tail")
    mail("many_blocked.eml", multipart([TEXT, att("a.js"), att("b.vbs"), att("c.cmd"), att("d.com"), att("e.hta"), att("f.lnk"), att("ok.txt", b"x", "text/plain")]), ["a.js", "b.vbs", "c.cmd", "d.com", "e.hta", "f.lnk", "ok.txt"], ["a.js", "b.vbs", "c.cmd", "d.com", "e.hta", "f.lnk"])
    mail("disposition_no_filename.eml", multipart([TEXT, part("application/octet-stream", EXE, disp="attachment")]), [])
    mail("inline_images.eml", multipart([multipart([part("text/html", "<img src=cid:logo>\n", cte="7bit"), part('image/png; name="logo.png"', b"\x89PNG\r\n\x1a\n" + b"\x00" * 32, disp='inline; filename="logo.png"', extra="Content-ID: <logo>\n")], "related", depth=1), att("photo.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 32, "image/jpeg", "inline")]), ["logo.png", "photo.jpg"])
    mail("winmail_dat.eml", multipart([TEXT, part('application/ms-tnef; name="winmail.dat"', b"\x78\x9f\x3e\x22" + b"\x00" * 40, disp='attachment; filename="winmail.dat"')]), ["winmail.dat"])
    mail("alternative.eml", multipart([multipart([TEXT, part("text/html", "<p>hi</p>\n", cte="7bit")], "alternative", depth=1), att("plan.xlsx", b"not really", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")]), ["plan.xlsx"])
    mail("no_mime.eml", "Content-Type: text/plain\n\nJust text, no attachment.\nsetup.exe is only a word here.\n", [])
    mail("header_only.eml", "", [])
    write("empty.eml", "", [])
    mail("single_part_exe.eml", part('application/octet-stream; name="tool.exe"', EXE, disp='attachment; filename="tool.exe"'), ["tool.exe"], ["tool.exe"], comment="the message itself is the attachment")

    # -- structure --
    inner = att("deep.exe")
    for d in range(5, 0, -1):
        inner = multipart([part("text/plain", "level %d\n" % d, cte="7bit"), inner], depth=d)
    mail("nested5.eml", inner, ["deep.exe"], ["deep.exe"])
    inner = att("toodeep.exe")
    for d in range(31, 0, -1):
        inner = multipart([inner], depth=d)
    mail("nested31.eml", inner, [], [], ["limits=mime_depth 30"], comment="31 nested multiparts: past mime_depth 30, nothing deeper is handed to GMime")
    fwd = HDR.format("inner") + multipart([TEXT, att("fwd.exe")])
    mail("rfc822.eml", multipart([TEXT, part('message/rfc822; name="forward.eml"', fwd, disp='attachment; filename="forward.eml"', cte="7bit")]), ["forward.eml", "fwd.exe"], ["fwd.exe"])
    fwd2 = HDR.format("in2") + multipart([TEXT, part("message/rfc822", HDR.format("in3") + multipart([att("twice.bat")], b="in3"), cte="7bit")], b="in2")
    mail("rfc822_twice.eml", multipart([TEXT, part("message/rfc822", fwd2, cte="7bit")]), ["twice.bat"], ["twice.bat"])
    mail("rfc822_base64.eml", multipart([TEXT, part('message/rfc822; name="fwd.eml"', fwd.encode(), disp='attachment; filename="fwd.eml"')]), ["fwd.eml"], comment="encoded message/rfc822 is a leaf for GMime")
    digest = "Content-Type: multipart/digest; boundary=dg\n\n--dg\n\n" + HDR.format("d1") + multipart([TEXT, att("dig1.exe")], b="d1b") + "--dg\n\n" + HDR.format("d2") + "Content-Type: text/plain\n\nplain\n--dg--\n"
    mail("digest.eml", digest, ["dig1.exe"], ["dig1.exe"], comment="digest children default to message/rfc822")
    mail("missing_end_boundary.eml", multipart([TEXT, att("cut.exe")]).rsplit("--=_b0", 1)[0].rstrip() + "\n", ["cut.exe"], ["cut.exe"], ["limits=broken multipart: missing end boundary"], comment="the name still counts; a broken multipart is a limit")
    mail("truncated_base64.eml", multipart([TEXT, att("half.exe")])[:-60], ["half.exe"], ["half.exe"], ["limits=broken multipart: missing end boundary"])
    mail("wrong_boundary.eml", 'Content-Type: multipart/mixed; boundary="right"\n\n--wrong\nContent-Type: application/octet-stream; name="hidden.exe"\n\nMZ\n--wrong--\n', ["hidden.exe"], ["hidden.exe"], ["limits=broken multipart"], comment="GMime sees no part: the text is preamble, its part header still counts")
    mail("boundary_no_quotes_space.eml", 'Content-Type: multipart/mixed; boundary=abc\n\n--abc   \nContent-Type: application/octet-stream; name="sp.exe"\n\nMZ\n--abc--  \n', ["sp.exe"], ["sp.exe"], comment="white space after a boundary is allowed")
    mail("part_without_headers.eml", 'Content-Type: multipart/mixed; boundary="nh"\n\n--nh\n\nno headers here\n--nh\nContent-Type: application/octet-stream; name="after.cmd"\n\nx\n--nh--\n', ["after.cmd"], ["after.cmd"])
    mail("multipart_no_boundary.eml", 'Content-Type: multipart/mixed\n\n--x\nContent-Type: application/octet-stream; name="nob.exe"\n\nMZ\n--x--\n', ["nob.exe"], ["nob.exe"], ["limits=broken multipart: no boundary"], comment="multipart without boundary: all prologue, its part header still counts")
    mail("garbage_base64_zip.eml", multipart([TEXT, part('application/zip; name="data.zip"', "!!!! not base64 at all ????\n@@@@\n", disp='attachment; filename="data.zip"')]), ["data.zip"], [], ["limits=corrupt zip in data.zip"])
    mail("nested_boundary_prefix.eml", 'Content-Type: multipart/mixed; boundary="a"\n\n--a\nContent-Type: multipart/mixed; boundary="ab"\n\n--ab\nContent-Type: application/octet-stream; name="in.exe"\n\nMZ\n--ab--\n--a\nContent-Type: text/plain; name="out.txt"\n\nx\n--a--\n', ["in.exe", "out.txt"], ["in.exe"], comment="boundary that prefixes its parent's")
    ps = [att("first.txt", b"x", "text/plain")] + [part("text/plain", "p%d\n" % i, cte="7bit") for i in range(1998)] + [att("late.exe")]
    mail("parts2000.eml", multipart(ps), ["first.txt"], [], ["limits=mime_parts 1000"])

    # -- archives --
    zexe = mkzip([("readme.txt", b"hello"), ("bin/tool.exe", EXE)])
    mail("zip_exe.eml", multipart([TEXT, att("docs.zip", zexe, "application/zip")]), ["docs.zip", "docs.zip/readme.txt", "docs.zip/bin/tool.exe"], ["docs.zip/bin/tool.exe"])
    mail("zip_clean.eml", multipart([TEXT, att("docs.zip", mkzip([("a.txt", b"a"), ("dir/", b""), ("b.pdf", b"%PDF")]), "application/zip")]), ["docs.zip", "docs.zip/a.txt", "docs.zip/b.pdf"])
    mail("zip_stored.eml", multipart([TEXT, att("s.zip", mkzip([("x.js", b"alert(1)")], zipfile.ZIP_STORED), "application/zip")]), ["s.zip", "s.zip/x.js"], ["s.zip/x.js"])
    mail("zip_misnamed.eml", multipart([TEXT, att("invoice.pdf", zexe, "application/pdf")]), ["invoice.pdf", "invoice.pdf/readme.txt", "invoice.pdf/bin/tool.exe"], ["invoice.pdf/bin/tool.exe"], comment="recognised by content")
    mail("zip_unnamed.eml", multipart([TEXT, part("application/zip", zexe)]), ["(unnamed)/readme.txt", "(unnamed)/bin/tool.exe"], ["(unnamed)/bin/tool.exe"])
    mail("zip_member_tricks.eml", multipart([TEXT, att("t.zip", mkzip([("r\u00e9sum\u00e9.exe", EXE), ("doc\u202efdp.scr", EXE), ("dots.bat. .", b"x"), ("./lead/../x.txt", b"x"), ("/abs.vbs", b"x")]), "application/zip")]), ["t.zip", "t.zip/résumé.exe", "t.zip/docfdp.scr", "t.zip/dots.bat", "t.zip/lead/../x.txt", "t.zip/abs.vbs"], ["t.zip/résumé.exe", "t.zip/docfdp.scr", "t.zip/dots.bat", "t.zip/abs.vbs"])
    mail("zip_in_zip.eml", multipart([TEXT, att("outer.zip", mkzip([("inner.zip", mkzip([("evil.exe", EXE)]))]), "application/zip")]), ["outer.zip", "outer.zip/inner.zip", "outer.zip/inner.zip/evil.exe"], ["outer.zip/inner.zip/evil.exe"])
    z = mkzip([("e.exe", EXE)])
    for n in "dcb":
        z = mkzip([("%s.zip" % n, z)])
    mail("zip_depth4.eml", multipart([TEXT, att("a.zip", z, "application/zip")]), ["a.zip", "a.zip/b.zip", "a.zip/b.zip/c.zip", "a.zip/b.zip/c.zip/d.zip"], [], ["limits=archive_depth 3"], comment="a.zip is level 1: d.zip (level 4) is not opened")
    inner = mkzip([("evil.exe", EXE)])
    mail("zip_disguised.eml", multipart([TEXT, att("outer.zip", mkzip([("data.bin", inner)]), "application/zip")]), ["outer.zip", "outer.zip/data.bin", "outer.zip/data.bin/evil.exe"], ["outer.zip/data.bin/evil.exe"], comment="a zip renamed data.bin inside a zip: recognised by content")
    z = mkzip([("data.bin", inner)])
    for n in "cb":
        z = mkzip([("%s.zip" % n, z)])
    mail("zip_disguised_depth.eml", multipart([TEXT, att("a.zip", z, "application/zip")]), ["a.zip", "a.zip/b.zip", "a.zip/b.zip/c.zip", "a.zip/b.zip/c.zip/data.bin"], [], ["limits=archive_depth 3"], comment="a renamed zip past the depth limit: opened only to tell it is one")
    docx = mkzip([("[Content_Types].xml", b"<?xml version='1.0'?><Types/>"), ("word/document.xml", b"<?xml version='1.0'?><w:document/>"), ("word/media/image1.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 32)])
    mail("zip_docx_member.eml", multipart([TEXT, att("docs.zip", mkzip([("notes.txt", b"plain text, no archive"), ("report.docx", docx)]), "application/zip")]), ["docs.zip", "docs.zip/notes.txt", "docs.zip/report.docx", "docs.zip/report.docx/[Content_Types].xml", "docs.zip/report.docx/word/document.xml", "docs.zip/report.docx/word/media/image1.png"], [], comment="an office document in a zip is a zip too: looked into, nothing blocked, no limit")
    mail("zip_depth3_ok.eml", multipart([TEXT, att("b.zip", mkzip([("c.zip", mkzip([("d.zip", mkzip([("e.exe", EXE)]))]))]), "application/zip")]), ["b.zip", "b.zip/c.zip", "b.zip/c.zip/d.zip", "b.zip/c.zip/d.zip/e.exe"], ["b.zip/c.zip/d.zip/e.exe"])
    mail("zip_entries_limit.eml", multipart([TEXT, att("many.zip", mkzip([("f%02d.txt" % i, b"x") for i in range(20)]), "application/zip")]), ["many.zip"] + ["many.zip/f%02d.txt" % i for i in range(10)], [], ["limits=archive_entries 10"], lim="archive_entries=10")
    zb = zexe[: len(zexe) // 2]
    mail("zip_truncated.eml", multipart([TEXT, att("cut.zip", zb, "application/zip")]), ["cut.zip", "cut.zip/readme.txt", "cut.zip/bin/tool.exe"], ["cut.zip/bin/tool.exe"], ["limits=corrupt zip in cut.zip"], comment="names before the damage still count")
    mail("not_a_zip.eml", multipart([TEXT, att("fake.zip", b"This is plain text, not a zip file.\n" * 20, "application/zip")]), ["fake.zip"], [], ["limits=corrupt zip in fake.zip"])
    tgz = mktar([("x/run.sh", b"#!/bin/sh\n"), ("x/run.bat", b"@echo off\n")], "w:gz")
    mail("tar_gz.eml", multipart([TEXT, att("b.tar.gz", tgz, "application/gzip")]), ["b.tar.gz", "b.tar.gz/x/run.sh", "b.tar.gz/x/run.bat"], ["b.tar.gz/x/run.bat"])
    mail("tgz.eml", multipart([TEXT, att("b.tgz", tgz, "application/gzip")]), ["b.tgz", "b.tgz/x/run.sh", "b.tgz/x/run.bat"], ["b.tgz/x/run.bat"])
    mail("tar_plain.eml", multipart([TEXT, att("t.tar", mktar([("a.vbs", b"x"), ("b.txt", b"y")]), "application/x-tar")]), ["t.tar", "t.tar/a.vbs", "t.tar/b.txt"], ["t.tar/a.vbs"])
    mail("tar_bz2.eml", multipart([TEXT, att("c.tar.bz2", mktar([("c.js", b"x")], "w:bz2"), "application/x-bzip2")]), ["c.tar.bz2", "c.tar.bz2/c.js"], ["c.tar.bz2/c.js"])
    mail("tar_xz.eml", multipart([TEXT, att("c.tar.xz", mktar([("c.cmd", b"x")], "w:xz"), "application/x-xz")]), ["c.tar.xz", "c.tar.xz/c.cmd"], ["c.tar.xz/c.cmd"])
    gzn = io.BytesIO()
    with gzip.GzipFile(filename="payload.exe", mode="wb", fileobj=gzn, mtime=0) as g:
        g.write(EXE)
    mail("gz_fname.eml", multipart([TEXT, att("payload.gz", gzn.getvalue(), "application/gzip")]), ["payload.gz", "payload.gz/payload.exe"], ["payload.gz/payload.exe"], comment="inner name from the gzip header")
    gzp = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gzp, mtime=0) as g:
        g.write(EXE)
    mail("gz_noname.eml", multipart([TEXT, att("tool.exe.gz", gzp.getvalue(), "application/gzip")]), ["tool.exe.gz", "tool.exe.gz/tool.exe"], ["tool.exe.gz/tool.exe"], comment="no FNAME: outer name minus .gz")
    mail("zip_gz_in_zip.eml", multipart([TEXT, att("o.zip", mkzip([("inner.zip.gz", gzip.compress(mkzip([("deep.hta", b"x")]), mtime=0))]), "application/zip")]), ["o.zip", "o.zip/inner.zip.gz", "o.zip/inner.zip.gz/deep.hta"], ["o.zip/inner.zip.gz/deep.hta"], comment="compression is a filter: the zip is read through gzip, one level")
    mail("rar_exe.eml", multipart([TEXT, att("r.rar", mkrar("setup.exe", EXE), "application/vnd.rar")]), ["r.rar", "r.rar/setup.exe"], ["r.rar/setup.exe"], comment="hand-built RAR 4")
    mail("rar_encrypted.eml", multipart([TEXT, att("r.rar", mkrar("secret.exe", EXE, True), "application/vnd.rar")]), ["r.rar", "r.rar/secret.exe"], ["r.rar/secret.exe"], ["encrypted"])

    have = lambda t: subprocess.run(["sh", "-c", "command -v " + t], stdout=subprocess.DEVNULL).returncode == 0
    d = os.path.join(tmp, "files")
    os.makedirs(os.path.join(d, "sub"))
    open(os.path.join(d, "sub", "tool.exe"), "wb").write(EXE)
    open(os.path.join(d, "notes.txt"), "wb").write(b"notes\n")
    if have("zip"):
        tool(["zip", "-q", "-r", "-e", "-P", "secret", os.path.join(tmp, "enc.zip"), "notes.txt", "sub/tool.exe"], d)
        mail("zip_encrypted.eml", multipart([TEXT, att("enc.zip", open(os.path.join(tmp, "enc.zip"), "rb").read(), "application/zip")]), ["enc.zip", "enc.zip/notes.txt", "enc.zip/sub/tool.exe"], ["enc.zip/sub/tool.exe"], ["encrypted"], comment="zip encryption hides data, not names")
        open(os.path.join(d, "inner.zip"), "wb").write(mkzip([("hidden.exe", EXE)]))
        tool(["zip", "-q", "-e", "-P", "secret", os.path.join(tmp, "enc2.zip"), "inner.zip"], d)
        os.unlink(os.path.join(d, "inner.zip"))
        mail("zip_encrypted_nested.eml", multipart([TEXT, att("enc2.zip", open(os.path.join(tmp, "enc2.zip"), "rb").read(), "application/zip")]), ["enc2.zip", "enc2.zip/inner.zip"], [], ["encrypted"], comment="an encrypted member archive cannot be opened: encrypted, not corrupt")
    if have("7z"):
        tool(["7z", "a", "-bd", "-y", os.path.join(tmp, "a.7z"), "notes.txt", "sub"], d)
        mail("7z_exe.eml", multipart([TEXT, att("a.7z", open(os.path.join(tmp, "a.7z"), "rb").read(), "application/x-7z-compressed")]), ["a.7z", "a.7z/notes.txt", "a.7z/sub/tool.exe"], ["a.7z/sub/tool.exe"])
        tool(["7z", "a", "-bd", "-y", "-psecret", "-mhe=on", os.path.join(tmp, "he.7z"), "notes.txt", "sub"], d)
        mail("7z_encrypted_headers.eml", multipart([TEXT, att("he.7z", open(os.path.join(tmp, "he.7z"), "rb").read(), "application/x-7z-compressed")]), ["he.7z"], [], ["encrypted"], comment="names hidden: only the encrypted flag")
        tool(["7z", "a", "-bd", "-y", "-psecret", "-mhe=off", os.path.join(tmp, "ed.7z"), "notes.txt", "sub"], d)
        mail("7z_encrypted_data.eml", multipart([TEXT, att("ed.7z", open(os.path.join(tmp, "ed.7z"), "rb").read(), "application/x-7z-compressed")]), ["ed.7z", "ed.7z/notes.txt", "ed.7z/sub/tool.exe"], ["ed.7z/sub/tool.exe"], ["encrypted"])
        z7 = open(os.path.join(tmp, "a.7z"), "rb").read()
        mail("7z_in_zip.eml", multipart([TEXT, att("w.zip", mkzip([("a.7z", z7)]), "application/zip")]), ["w.zip", "w.zip/a.7z", "w.zip/a.7z/notes.txt", "w.zip/a.7z/sub/tool.exe"], ["w.zip/a.7z/sub/tool.exe"], comment="a nested 7z needs seeking: read from a temporary copy")
        mail("7z_in_zip_bytes.eml", multipart([TEXT, att("w.zip", mkzip([("a.7z", z7)]), "application/zip")]), ["w.zip", "w.zip/a.7z"], [], ["limits=archive_bytes 64"], lim="archive_bytes=64", comment="the temporary copy of a nested 7z counts against archive_bytes")
    if have("genisoimage"):
        tool(["genisoimage", "-quiet", "-J", "-R", "-o", os.path.join(tmp, "disk.iso"), "."], d)
        iso = open(os.path.join(tmp, "disk.iso"), "rb").read()
        mail("iso_exe.eml", multipart([TEXT, att("disk.iso", iso, "application/x-iso9660-image")]), ["disk.iso", "disk.iso/notes.txt", "disk.iso/sub/tool.exe"], ["disk.iso", "disk.iso/sub/tool.exe"])
        mail("iso_as_img.eml", multipart([TEXT, att("photos.img", iso, "application/octet-stream")]), ["photos.img", "photos.img/notes.txt", "photos.img/sub/tool.exe"], ["photos.img/sub/tool.exe"], comment="iso recognised by content")
        mail("iso_in_zip.eml", multipart([TEXT, att("w.zip", mkzip([("disk.iso", iso)]), "application/zip")]), ["w.zip", "w.zip/disk.iso", "w.zip/disk.iso/notes.txt", "w.zip/disk.iso/sub/tool.exe"], ["w.zip/disk.iso", "w.zip/disk.iso/sub/tool.exe"], comment="an iso inside a zip is read from the zip entry's stream, forward only")

    # -- bombs: archive_bytes 16 MiB --
    big = 256 << 20
    class Zero(io.RawIOBase):
        def __init__(s, n): s.n = n
        def readable(s): return True
        def readinto(s, b):
            k = min(len(b), s.n); b[:k] = bytes(k); s.n -= k; return k
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w:gz", compresslevel=9) as t:
        ti = tarfile.TarInfo("zeros.bin"); ti.size = big; ti.mtime = 0
        t.addfile(ti, io.BufferedReader(Zero(big), 1 << 20))
        ti = tarfile.TarInfo("after.exe"); ti.size = len(EXE); ti.mtime = 0
        t.addfile(ti, io.BytesIO(EXE))
    mail("bomb_tgz.eml", multipart([TEXT, att("bomb.tar.gz", bio.getvalue(), "application/gzip")]), ["bomb.tar.gz", "bomb.tar.gz/zeros.bin"], [], ["limits=archive_bytes 16777216"], lim="archive_bytes=16777216", comment="256 MiB of zeros before after.exe: reading stops at 16 MiB")
    inner_tar = io.BytesIO()
    tb = tarfile.TarInfo("zeros.bin"); tb.size = big; tb.mtime = 0
    ti = tarfile.TarInfo("x.exe"); ti.size = len(EXE); ti.mtime = 0
    zbio = io.BytesIO()
    with zipfile.ZipFile(zbio, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        with z.open("inner.tar", "w", force_zip64=True) as w:
            w.write(tb.tobuf(format=tarfile.USTAR_FORMAT))
            chunk = bytes(1 << 20)
            for _ in range(big >> 20):
                w.write(chunk)
            w.write(ti.tobuf(format=tarfile.USTAR_FORMAT) + EXE + bytes(512 - len(EXE)) + bytes(1024))
    outer = mkzip([("bomb.zip", zbio.getvalue())], zipfile.ZIP_STORED)
    mail("bomb_nested_zip.eml", multipart([TEXT, att("outer.zip", outer, "application/zip")]), ["outer.zip", "outer.zip/bomb.zip", "outer.zip/bomb.zip/inner.tar", "outer.zip/bomb.zip/inner.tar/zeros.bin"], [], ["limits=archive_bytes 16777216"], lim="archive_bytes=16777216", comment="256 MiB tar in a zip in a zip: the tar is read from the middle zip's entry data")

    with open(os.path.join(HERE, "expect.txt"), "w", encoding="utf-8") as f:
        f.write("""# expect.txt - expected results of attach_scan() for each corpus message,
# written by gen.py (edit there).  Block list: exe com scr bat js vbs lnk
# iso cmd hta (extension of the last name component, any case).
# A case starts with "= FILE" and lists, in order:
#   name NAME        every expected name, in message order (exactly these)
#   block NAME       every expected blocked name, in order
#   encrypted        the encrypted flag is expected (else it must be clear)
#   limits=TEXT      limits expected, limit_what starting with TEXT
#   lim KEY=VALUE    a limit other than the default for this case
#   # ...            comment
""")
        for fname, names, blocked, flags, lim, comment in cases:
            f.write("\n= %s\n" % fname)
            if comment:
                f.write("# %s\n" % comment)
            if lim:
                f.write("lim %s\n" % lim)
            for n in names:
                f.write("name %s\n" % n)
            for n in blocked:
                f.write("block %s\n" % n)
            for fl in flags:
                f.write("%s\n" % fl)
    print("%d cases" % len(cases))

main()
