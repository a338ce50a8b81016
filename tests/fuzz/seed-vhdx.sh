#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# seed-vhdx.sh DIR: small VHDX images for the vhdx fuzzer.  Compact ones
# (under 1 MiB, the default -max_len) pack the regions after the region
# tables: every block state, 512- and 4096-byte sectors, sector bitmap
# entries between chunks, differencing disks (a parent locator, no sector
# bitmap).  Larger ones hold data blocks, a dirty log, and a differencing
# disk's PARTIALLY_PRESENT blocks over a sector bitmap (seen whole with
# -max_len=4194304), and qemu-img's own output if present.
set -eu
dir=$1
python3 - "$dir" <<'PY'
import struct, sys, uuid

def crc32c(data, crc=0xffffffff):
    t = crc32c.table
    for b in data:
        crc = t[(crc ^ b) & 0xff] ^ (crc >> 8)
    return crc
crc32c.table = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82f63b78 if c & 1 else c >> 1
    crc32c.table.append(c)

def with_crc(buf):
    buf = bytearray(buf)
    buf[4:8] = b'\0' * 4
    struct.pack_into('<I', buf, 4, crc32c(buf) ^ 0xffffffff)
    return bytes(buf)

G = lambda s: uuid.UUID(s).bytes_le
BAT = G('2DC27766-F623-4200-9D64-115E9BFD4A08')
META = G('8B7CA206-4790-4B9A-B8FE-575F050F886E')
FP = G('CAA16737-FA36-4D43-B3B6-33F0AA44E76B')
VS = G('2FA54224-CD1B-4876-B211-5DBED83BF4B8')
P83 = G('BECA12AB-B2E6-4523-93EF-C309E000C746')
LSS = G('8141BF1D-A96F-4709-BA47-F233A8FAAB5F')
PSS = G('CDA348C7-445D-4471-9CC9-E9885251C556')
PLOC = G('A8D35F2D-B30B-454D-ABF7-D3D84834AB0C')
KIB, MIB = 1024, 1 << 20

def locator(kv):
    """A VHDX parent locator item holding the (key, value) pairs."""
    head = G('B04AEFB7-D19E-4A81-B789-25B8E9445913') + struct.pack('<HH', 0, len(kv))
    ents, strs, base = b'', b'', 20 + 12 * len(kv)
    for k, v in kv:
        k, v = k.encode('utf-16-le'), v.encode('utf-16-le')
        ents += struct.pack('<IIHH', base + len(strs), base + len(strs) + len(k),
                            len(k), len(v))
        strs += k + v
    return head + ents + strs

def build(path, vsize, bs, lss, states=None, data=None, fixed=False,
          log=None, parent=False, partial=()):
    """states: {block: state}; data: {block: bytes}; log: [[(off, bytes|int)]];
    parent: a differencing disk; partial: data blocks PARTIALLY_PRESENT"""
    states, data = dict(states or {}), dict(data or {})
    nblk = -(-vsize // bs)
    cr = (1 << 23) * lss // bs
    nent = nblk + (nblk - 1) // cr if nblk else 0
    if parent:
        nent = -(-nblk // cr) * (cr + 1)
    bat_off = 320 * KIB
    bat_len = max(4096, -(-nent * 8 // 4096) * 4096)
    md_off = -(-(bat_off + bat_len) // (64 * KIB)) * 64 * KIB
    md_len = 128 * KIB
    end = md_off + md_len
    log_off, log_len = MIB, 0
    if log:
        log_len = MIB
        end = 2 * MIB
    f = bytearray(end)
    f[0:8] = b'vhdxfile'
    f[8:8 + 26] = 'edgeimg seed'.encode('utf-16-le')
    # data blocks at whole MiBs after everything else
    pos = -(-end // MIB) * MIB
    bat = {}
    for b in range(nblk):
        st = states.get(b, 0)
        if b in data:
            f.extend(b'\0' * (pos - len(f)))
            f.extend(data[b].ljust(min(bs, vsize - b * bs), b'\0'))
            bat[b] = pos | (7 if b in partial else 6)
            pos += bs
        else:
            bat[b] = st
    for b, v in bat.items():
        struct.pack_into('<Q', f, bat_off + 8 * (b + b // cr), v)
    if partial:                         # one sector bitmap block, chunk 0
        f.extend(b'\0' * (pos - len(f)))
        sb = bytearray(MIB)
        for b in partial:
            o = b * (bs // lss) // 8
            sb[o:o + 64] = pat(b, 64)
        f.extend(sb)
        struct.pack_into('<Q', f, bat_off + 8 * cr, pos | 6)
    # metadata
    md = bytearray(64 * KIB)
    md[0:8] = b'metadata'
    items = [(FP, struct.pack('<II', bs, (1 if fixed else 0) | (2 if parent else 0)), 4),
             (VS, struct.pack('<Q', vsize), 6),
             (P83, uuid.uuid4().bytes, 6),
             (LSS, struct.pack('<I', lss), 6),
             (PSS, struct.pack('<I', 4096), 6)]
    if parent:
        items.append((PLOC, locator([
            ('parent_linkage', '{83ab5d6f-02b5-4bd3-9b12-4c0c9e0f5a77}'),
            ('parent_linkage2', '{00000000-0000-0000-0000-000000000001}'),
            ('relative_path', '.\\parent.vhdx'),
            ('volume_path', '\\\\?\\Volume{26a21bda-a627-11d7-9931-806e6f6e6963}\\parent.vhdx'),
            ('absolute_win32_path', 'C:\\vm\\parent.vhdx')]), 6))
    struct.pack_into('<HH', md, 8, 0, len(items))
    ioff = 64 * KIB
    for i, (g, v, fl) in enumerate(items):
        struct.pack_into('<16sIII', md, 32 + 32 * i, g, ioff, len(v), fl)
        f[md_off + ioff:md_off + ioff + len(v)] = v
        ioff += len(v)
    f[md_off:md_off + len(md)] = md
    # region tables
    rt = bytearray(64 * KIB)
    struct.pack_into('<4sIII', rt, 0, b'regi', 0, 2, 0)
    struct.pack_into('<16sQII', rt, 16, BAT, bat_off, bat_len, 1)
    struct.pack_into('<16sQII', rt, 48, META, md_off, md_len, 1)
    rt = with_crc(rt)
    f[192 * KIB:256 * KIB] = rt
    f[256 * KIB:320 * KIB] = rt
    # log
    guid = uuid.uuid4().bytes if log else b'\0' * 16
    lpos = 0
    for seq, writes in enumerate(log or [], 1):
        descs, secs = [], []
        for off, w in writes:
            if isinstance(w, int):
                descs.append(struct.pack('<4sIQQQ', b'zero', 0, w, off, seq))
            else:
                descs.append(struct.pack('<4s4s8sQQ', b'desc', w[4092:4096],
                                         w[0:8], off, seq))
                secs.append(struct.pack('<4sI', b'data', seq >> 32) +
                            w[8:4092] + struct.pack('<I', seq & 0xffffffff))
        nd = -(-(len(descs) + 2) // 128)
        total = (nd + len(secs)) * 4096
        hdr = struct.pack('<4sIIIQII16sQQ', b'loge', 0, total, 0, seq,
                          len(descs), 0, guid, len(f), len(f))
        ent = bytearray((hdr + b''.join(descs)).ljust(nd * 4096, b'\0'))
        ent += b''.join(secs)
        ent = with_crc(ent)
        f[log_off + lpos:log_off + lpos + total] = ent
        lpos += total
    for n, off in ((1, 64 * KIB), (2, 128 * KIB)):
        h = bytearray(4096)
        struct.pack_into('<4sIQ16s16s16sHHIQ', h, 0, b'head', 0, n,
                         uuid.uuid4().bytes, uuid.uuid4().bytes, guid,
                         0, 1, log_len, log_off)
        f[off:off + 4096] = with_crc(h)
    open(path, 'wb').write(f)

d = sys.argv[1]
pat = lambda c, n: bytes((c + i) & 0xff for i in range(n))
build(d + '/compact-512-1m.vhdx', 16 * MIB, MIB, 512,
      states={0: 2, 1: 1, 2: 3, 3: 5, 4: 0, 15: 2})
build(d + '/compact-4k-1m-fixed.vhdx', 8 * MIB, MIB, 4096,
      states={b: 2 for b in range(8)}, fixed=True)
build(d + '/compact-512-256m.vhdx', 8 << 30, 256 * MIB, 512,
      states={b: 2 for b in range(0, 32, 3)})
build(d + '/compact-4k-256m.vhdx', 40 << 30, 256 * MIB, 4096,
      states={b: 2 for b in range(0, 160, 7)})
build(d + '/data-512-1m.vhdx', 3 * MIB + 512, MIB, 512,
      data={0: pat(1, 70000), 3: pat(7, 512)})
build(d + '/compact-diff-512-1m.vhdx', 16 * MIB, MIB, 512, parent=True,
      states={0: 2, 1: 1, 2: 3, 4: 0})
build(d + '/compact-diff-4k-2m.vhdx', 24 * MIB, 2 * MIB, 4096, parent=True,
      states={3: 2})
build(d + '/diff-512-1m.vhdx', 4 * MIB, MIB, 512, parent=True,
      data={0: pat(2, 5000), 2: pat(4, 3000)}, partial={2})
build(d + '/log-512-1m.vhdx', 4 * MIB, MIB, 512, data={1: pat(3, 9000)},
      log=[[(2 * MIB + 4096, pat(9, 4096)), (2 * MIB, 8192)],
           [(2 * MIB + 8192, pat(5, 4096))]])
PY
if command -v qemu-img >/dev/null 2>&1; then
	head -c 300000 /dev/urandom >"$dir/.rand"
	qemu-img convert -f raw -O vhdx -o subformat=dynamic,block_size=1M \
		"$dir/.rand" "$dir/qemu-dynamic.vhdx" >/dev/null
	qemu-img create -f vhdx -o subformat=fixed,block_size=1M \
		"$dir/qemu-fixed.vhdx" 1M >/dev/null
	rm -f "$dir/.rand"
fi
