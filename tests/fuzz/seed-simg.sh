#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# seed-simg.sh DIR: small valid Android sparse images for the simg fuzzer:
# every chunk type, a CRC32 chunk and image_checksum (zlib's CRC-32),
# 512-byte blocks and larger headers; img2simg's own when it is there.
set -eu
python3 - "$1" <<'PY'
import os, struct, sys, zlib
d = sys.argv[1]

def simg(bs, chunks, hsz=28, csz=12, checksum=False):
    body, blocks, disk = b'', 0, b''
    for kind, n, arg in chunks:
        if kind == 'raw':
            data = (arg * (n * bs))[:n * bs]
            body += struct.pack('<HHII', 0xcac1, 0, n, csz + len(data)) + bytes(csz - 12) + data
        elif kind == 'fill':
            data = arg * (n * bs // 4)
            body += struct.pack('<HHII', 0xcac2, 0, n, csz + 4) + bytes(csz - 12) + arg
        elif kind == 'skip':
            data = bytes(n * bs)
            body += struct.pack('<HHII', 0xcac3, 0, n, csz) + bytes(csz - 12)
        else:
            data = b''
            body += struct.pack('<HHII', 0xcac4, 0, 0, csz + 4) + bytes(csz - 12) + \
                struct.pack('<I', zlib.crc32(disk))
        disk += data
        blocks += n
    h = struct.pack('<IHHHHIIII', 0xed26ff3a, 1, 0, hsz, csz, bs, blocks, len(chunks),
                    zlib.crc32(disk) if checksum else 0)
    return h + bytes(hsz - 28) + body

def w(name, b):
    open(os.path.join(d, name), 'wb').write(b)

w('all.simg', simg(4096, [('raw', 2, bytes(range(256))), ('fill', 3, b'\xde\xad\xbe\xef'),
                          ('skip', 4, None), ('fill', 1, bytes(4)), ('raw', 1, b'x')]))
w('crc.simg', simg(4096, [('raw', 1, b'ab'), ('skip', 2, None), ('crc', 0, None),
                          ('fill', 2, b'1234'), ('crc', 0, None)], checksum=True))
w('b512.simg', simg(512, [('skip', 3, None), ('raw', 2, b'\x01\x02\x03'), ('fill', 5, b'\x07\x00\x00\x00')]))
w('hdr.simg', simg(1024, [('raw', 1, b'q'), ('skip', 1, None), ('fill', 2, b'zzzz')], hsz=32, csz=16))
w('empty.simg', simg(4096, []))
PY
if command -v img2simg >/dev/null 2>&1; then
	python3 -c 'import os, sys; sys.stdout.buffer.write(os.urandom(8192) + bytes(8192) + b"\xab\xcd\xef\x01" * 2048 + b"tail")' >"$1/.raw"
	img2simg "$1/.raw" "$1/img2simg.simg" >/dev/null 2>&1 || true
	rm -f "$1/.raw"
fi
