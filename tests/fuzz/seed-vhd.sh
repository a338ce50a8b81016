#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# seed-vhd.sh DIR: small valid VHD images (fixed, dynamic with full and
# partial sector bitmaps, several creators) for the vhd fuzzer.
set -eu
python3 - "$1" <<'PY'
import os, struct, sys
d = sys.argv[1]

def csum(b, field):
    b = bytearray(b); b[field:field + 4] = b'\0\0\0\0'
    return (~sum(b)) & 0xffffffff

def footer(size, dtype, data_offset, app=b'qemu', chs=None):
    f = bytearray(512)
    f[0:8] = b'conectix'
    struct.pack_into('>IIQI4sI4sQQ', f, 8, 2, 0x10000, data_offset, 0, app,
                     0x50003, b'Wi2k', size, size)
    c, h, s = chs or (size // 512 // 64, 4, 16)
    struct.pack_into('>HBBI', f, 56, c, h, s, dtype)
    struct.pack_into('>I', f, 64, csum(f, 64))
    return bytes(f)

def dynamic(size, bs, blocks, app=b'qemu', chs=None):
    """blocks: {index: (bitmap bytes or None for all set, fill byte)}"""
    n = (size + bs - 1) // bs
    bm = ((bs // 512 + 7) // 8 + 511) & ~511
    ft = footer(size, 3, 512, app, chs)
    h = bytearray(1024)
    h[0:8] = b'cxsparse'
    struct.pack_into('>QQIII', h, 8, 0xffffffffffffffff, 1536, 0x10000, n, bs)
    struct.pack_into('>I', h, 36, csum(h, 36))
    bat = [0xffffffff] * n
    body = bytearray()
    off = (1536 + n * 4 + 511) & ~511
    for i, (bits, fill) in sorted(blocks.items()):
        bat[i] = (off + len(body)) // 512
        body += (bits or b'\xff' * (bs // 4096 or 1)).ljust(bm, b'\0')
        body += bytes([fill]) * bs
    img = ft + bytes(h) + struct.pack('>%dI' % n, *bat)
    img = img.ljust(off, b'\0') + bytes(body) + ft
    return img

def w(name, b):
    open(os.path.join(d, name), 'wb').write(b)

size = 64 * 1024
w('dyn-empty.vhd', dynamic(size, 4096, {}))
w('dyn-full.vhd', dynamic(size, 4096, {0: (None, 0x11), 3: (None, 0x22), 15: (None, 0x33)}))
w('dyn-partial.vhd', dynamic(size, 4096, {1: (b'\xa5', 0x44), 2: (b'\x0f', 0x55)}))
w('dyn-win.vhd', dynamic(size + 512, 8192, {0: (b'\xff\x00', 0x66)}, app=b'win '))
w('dyn-d2v.vhd', dynamic(size, 4096, {4: (None, 0x77)}, app=b'd2v '))
w('dyn-chs.vhd', dynamic(size, 4096, {2: (None, 0x78)}, app=b'vpc ', chs=(4, 4, 4)))
w('dyn-512.vhd', dynamic(8192, 512, {1: (b'\x80', 0x12), 9: (b'\x00', 0x13)}, app=b'win '))
w('dyn-2k.vhd', dynamic(8192, 2048, {0: (b'\xa0', 0x14), 3: (None, 0x15)}, app=b'win '))
w('fixed.vhd', bytes(range(256)) * (size // 256) + footer(size, 2, 0xffffffffffffffff))
w('fixed-win.vhd', b'\x5a' * size + footer(size, 2, 0xffffffffffffffff, b'win '))
PY
if command -v qemu-img >/dev/null 2>&1; then
	qemu-img create -q -f vpc "$1/qemu-dyn.vhd" 16M
	qemu-img create -q -f vpc -o subformat=fixed "$1/qemu-fixed.vhd" 300K
	qemu-img create -q -f vpc -o force_size=on "$1/qemu-force.vhd" 5M
fi
