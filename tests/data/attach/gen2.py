#!/usr/bin/env python3
"""gen2.py - the second part of the attachment corpus: every name a part
gives itself (repeated parameters and fields, RFC 2231 sections), broken
multiparts, and 1,000-deep nesting.  Writes its .eml files and
expect2.txt (same format as expect.txt; attach_test reads both).  Only
the standard library, deterministic output:

    python3 tests/data/attach/gen2.py

Expected names are written here by hand, not taken from the scanner.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
cases = []   # (file, names, blocked, flags, comment)

HDR = ("From: sender@example.org\nTo: rcpt@example.net\nSubject: test\n"
       "Date: Mon, 2 Mar 2026 10:00:00 +0000\nMessage-ID: <{}@example.org>\n"
       "MIME-Version: 1.0\n")
TEXT = "Content-Type: text/plain; charset=us-ascii\n\nPlease find the file attached.\n"
MZ = "TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAA\n"

def mail(fname, body, names, blocked=(), flags=(), comment=""):
    with open(os.path.join(HERE, fname), "wb") as f:
        f.write((HDR.format(fname) + body).encode("utf-8"))
    cases.append((fname, list(names), list(blocked), list(flags), comment))

def mixed(*parts, b="nb"):
    s = 'Content-Type: multipart/mixed; boundary="%s"\n\n' % b
    for p in parts:
        s += "--%s\n%s" % (b, p)
    return s + "--%s--\n" % b

def att(headers):
    return headers + "Content-Transfer-Encoding: base64\n\n" + MZ

def main():
    # -- every name of a part counts --
    mail("dup_filename.eml", mixed(TEXT, att('Content-Type: application/octet-stream\nContent-Disposition: attachment; filename="a.pdf"; filename="a.exe"\n')),
         ["a.pdf", "a.exe"], ["a.exe"], comment="filename twice: harmless first, executable second")
    mail("dup_filename_star.eml", mixed(TEXT, att("Content-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"b.pdf\"; filename*=utf-8''b.exe\n")),
         ["b.pdf", "b.exe"], ["b.exe"], comment="filename and RFC 2231 filename* disagree")
    mail("star_first.eml", mixed(TEXT, att("Content-Type: application/octet-stream\nContent-Disposition: attachment; filename*=utf-8''c.scr; filename=\"c.pdf\"\n")),
         ["c.scr", "c.pdf"], ["c.scr"], comment="filename* first, plain filename second")
    mail("dup_section.eml", mixed(TEXT, att('Content-Type: application/octet-stream\nContent-Disposition: attachment; filename*0="d."; filename*1="pdf"; filename*1="exe"\n')),
         ["d.pdfexe", "d.pdf", "d.exe"], ["d.exe"], comment="RFC 2231 section 1 twice: as GMime joins them, first wins, last wins")
    mail("sections_and_plain.eml", mixed(TEXT, att("Content-Type: application/octet-stream\nContent-Disposition: attachment;\n filename*0*=utf-8''%65%2E;\n filename*1=\"bat\";\n filename=\"e.txt\"\n")),
         ["e.bat", "e.txt"], ["e.bat"], comment="continuations with charset, and a plain filename")
    mail("ct_name_star.eml", mixed(TEXT, att("Content-Type: application/octet-stream; name=\"f.pdf\"; name*=utf-8''f%2Ejs\n")),
         ["f.pdf", "f.js"], ["f.js"], comment="Content-Type name and name* disagree")
    mail("dup_disposition_field.eml", mixed(TEXT, att('Content-Type: application/octet-stream\nContent-Disposition: attachment; filename="g.pdf"\nContent-Disposition: attachment; filename="g.exe"\n')),
         ["g.pdf", "g.exe"], ["g.exe"], comment="two Content-Disposition fields")
    mail("dup_ct_field.eml", mixed(TEXT, att('Content-Type: application/pdf; name="h.pdf"\nContent-Type: application/octet-stream; name="h.cmd"\n')),
         ["h.pdf", "h.cmd"], ["h.cmd"], comment="two Content-Type fields")
    mail("param_case.eml", mixed(TEXT, att('Content-Type: application/octet-stream\nContent-Disposition: attachment; FILENAME="i.exe"; filename="i.txt"\n')),
         ["i.exe", "i.txt"], ["i.exe"], comment="parameter names are case-insensitive")
    mail("ct_filename_param.eml", mixed(TEXT, att('Content-Type: application/octet-stream; filename="j.vbs"\nContent-Disposition: attachment; filename="j.txt"\n')),
         ["j.txt", "j.vbs"], ["j.vbs"], comment="filename written in Content-Type")
    mail("disp_all_four.eml", mixed(TEXT, att("Content-Type: application/octet-stream; name=\"k1.pdf\"; name*=utf-8''k2.pdf\nContent-Disposition: attachment; filename=\"k3.pdf\"; filename*0*=utf-8''k4; filename*1=\".hta\"\n")),
         ["k3.pdf", "k4.hta", "k1.pdf", "k2.pdf"], ["k4.hta"], comment="four places, one blocked: Disposition names first")

    # -- broken multiparts --
    mail("empty_boundary.eml", 'Content-Type: multipart/mixed; boundary=""\n\n--\nContent-Type: application/octet-stream; name="eb.exe"\n\n' + MZ + "----\n",
         ["eb.exe"], ["eb.exe"], ["limits=broken multipart: no boundary"], comment="empty boundary parameter: the part header is still read")
    mail("boundary_trailing_space.eml", 'Content-Type: multipart/mixed; boundary="ts "\n\n--ts \nContent-Type: application/octet-stream; name="ts.exe"\n\n' + MZ + "--ts --\n",
         ["ts.exe"], ["ts.exe"], ["limits=broken multipart: boundary ends in white space"], comment="RFC 2046 forbids a boundary ending in a space")
    mail("boundary_never_appears.eml", 'Content-Type: multipart/mixed; boundary="never"\n\nThis is a multi-part message in MIME format.\n--other\nContent-Type: text/plain\n\nhello\n--other\nContent-Type: application/octet-stream\nContent-Disposition: attachment;\n filename="nv.scr"\n\n' + MZ + "--other--\n",
         ["nv.scr"], ["nv.scr"], ["limits=broken multipart"], comment="a multipart whose boundary is not in its body: all preamble")
    mail("epilogue_part.eml", mixed(TEXT) + 'Content-Type: application/octet-stream; name="ep.exe"\n\n' + MZ,
         ["ep.exe"], ["ep.exe"], ["limits=broken multipart: part header in the epilogue"], comment="a part after the close delimiter")
    mail("missing_end_nested.eml", 'Content-Type: multipart/mixed; boundary="o"\n\n--o\nContent-Type: multipart/mixed; boundary="i"\n\n--i\n' + TEXT + '--o\nContent-Type: application/octet-stream; name="after.exe"\n\n' + MZ + "--o--\n",
         ["after.exe"], ["after.exe"], ["limits=broken multipart: missing end boundary"], comment="inner multipart closed only by its parent's boundary")

    # -- 1,000-deep nesting, a blocked name before it --
    deep = 'Content-Type: application/octet-stream; name="bottom.exe"\n\nMZ\n'
    n = 1000
    body = ""
    for i in range(n):
        body += 'Content-Type: multipart/mixed; boundary=%d\n\n--%d\n' % (i, i)
    body += deep + "".join("--%d--\n" % i for i in reversed(range(n)))
    mail("nested1000.eml", mixed(att('Content-Type: application/octet-stream; name="top.exe"\n'), body, b="top"),
         ["top.exe"], ["top.exe"], ["limits=mime_depth 30"], comment="1,000 nested multiparts: cut at depth 30, what came before still counts")

    with open(os.path.join(HERE, "expect2.txt"), "w", encoding="utf-8") as f:
        f.write("# expect2.txt - written by gen2.py (edit there); format as in expect.txt.\n")
        for fname, names, blocked, flags, comment in cases:
            f.write("\n= %s\n" % fname)
            if comment:
                f.write("# %s\n" % comment)
            for x in names:
                f.write("name %s\n" % x)
            for x in blocked:
                f.write("block %s\n" % x)
            for x in flags:
                f.write("%s\n" % x)
    print("%d cases" % len(cases))

main()
