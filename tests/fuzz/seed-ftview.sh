#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# seed-ftview.sh DIR: small file-tree views for the view parser's fuzzer,
# written from the layout in src/delta/delta-format.md ("Root filesystems:
# the file-tree view") by this Python, not by edgeimg: the root alone; a
# tree of every type with xattrs, a hard link and a sparse file.
set -eu
python3 - "$1" <<'PY'
import os, struct, sys

def up(v, a):
    return (v + a - 1) // a * a

def view(entries, mkfs=-1):
    body = bytearray()
    pos = 4096
    for (typ, path, size, data, target, link, xattrs, flags) in entries:
        x = b"".join(struct.pack("<BI", len(n), len(v)) + n + v for n, v in xattrs)
        rec = struct.pack("<4sIBBHIIIqQIIHHHH", b"EIFE", 0, typ, flags, len(xattrs),
                          0o755 if typ == 2 else 0o644, 0, 0, 1700000000, size, 0, 0,
                          len(path), len(target), len(link), 0)
        rec = bytearray(rec + path + target + link + x)
        struct.pack_into("<I", rec, 4, len(rec))
        body += rec
        pos += len(rec)
        if data:
            pad = up(pos, 4096) - pos
            body += bytes(pad) + data
            pos += pad + len(data)
        pad = up(pos, 8) - pos
        body += bytes(pad)
        pos += pad
    end = struct.pack("<4sIQ", b"EIFE", 16, 0)
    body += end
    pos += 16
    total = up(pos, 4096)
    body += bytes(total - pos)
    hdr = struct.pack("<8sIIqQQ", b"EIFTREE\x1a", 1, 4096, mkfs, len(entries), total)
    return hdr + bytes(4096 - len(hdr)) + bytes(body)

out = sys.argv[1]
root = (2, b"", 0, b"", b"", b"", [], 0)
open(os.path.join(out, "root"), "wb").write(view([root]))
data = b"hello\n" * 700
sparse = bytes(8192) + b"x" + bytes(100)
tree = [
    root,
    (2, b"etc", 0, b"", b"", b"", [(b"user.a", b"1")], 0),
    (1, b"etc/file", len(data), data, b"", b"", [(b"security.selinux", b"x\0"), (b"user.b", b"")], 0),
    (1, b"etc/hard", 0, b"", b"", b"etc/file", [], 0),
    (3, b"etc/link", 0, b"", b"file", b"", [], 0),
    (4, b"sda", 0, b"", b"", b"", [], 0),
    (1, b"sparse", len(sparse), sparse, b"", b"", [], 1),
    (6, b"z-fifo", 0, b"", b"", b"", [], 0),
    (7, b"z-sock", 0, b"", b"", b"", [], 0),
]
open(os.path.join(out, "tree"), "wb").write(view(tree, 1700000000))
PY
