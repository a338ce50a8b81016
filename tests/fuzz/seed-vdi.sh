#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# seed-vdi.sh DIR: small valid VDI images (static, dynamic, discarded and
# unallocated blocks) for the vdi fuzzer; disks under 1 MiB keep them small.
set -eu
python3 - "$1" <<'PY'
import os, struct, sys
d = sys.argv[1]

def vdi(size, itype, bmap, nalloc, data):
    blocks = len(bmap)
    h = bytearray(512)
    h[0:0x40] = b'<<< QEMU VM Virtual Disk Image >>>\n'.ljust(0x40, b'\0')
    bmap_len = (blocks * 4 + 511) & ~511
    struct.pack_into('<IIII', h, 0x40, 0xbeda107f, 0x00010001, 0x180, itype)
    struct.pack_into('<II', h, 0x154, 0x200, 0x200 + bmap_len)
    struct.pack_into('<IIQIIII', h, 0x168, 512, 0, size, 1 << 20, 0, blocks, nalloc)
    h[0x188:0x198] = bytes(range(16))
    return bytes(h) + struct.pack('<%dI' % blocks, *bmap).ljust(bmap_len, b'\0') + data

def w(name, b):
    open(os.path.join(d, name), 'wb').write(b)

w('dyn-empty.vdi', vdi(200 * 1024, 1, [0xffffffff], 0, b''))
w('dyn-one.vdi', vdi(96 * 1024, 1, [0], 1, bytes(range(256)) * 384))
w('dyn-zero.vdi', vdi(64 * 1024, 1, [0xfffffffe], 0, b''))
w('static.vdi', vdi(128 * 1024 + 100, 2, [0], 1, b'\x42' * (129 * 1024)))
PY
if command -v qemu-img >/dev/null 2>&1; then
	qemu-img create -q -f vdi "$1/qemu-dyn.vdi" 64M
fi
