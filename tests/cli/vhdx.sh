#!/usr/bin/env bash
# requires: FORMAT_VHDX
# SPDX-License-Identifier: MIT
# VHDX images made by qemu-img (fixed and dynamic, 1-256 MiB blocks, sector
# bitmap entries between chunks), 4096-byte logical sectors and dirty logs
# patched in, judged by qemu-img; every VHDX row of HOSTILE-INPUTS.md (X1-X9)
# and G1/G2 must fail cleanly with a named field and leave no output.
. "$(dirname "$0")/../lib.sh"
need qemu-img python3 cmp sfdisk mkfs.ext4

# --- a small library to patch VHDX files: "vx IMG 'python statements'" ----
cat >"$T/vx.py" <<'PY'
import struct, sys, uuid
T = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82f63b78 if c & 1 else c >> 1
    T.append(c)
Z = []                                  # the CRC state map of 256 zero bytes
for k in range(32):
    c = 1 << k
    for _ in range(256):
        c = T[c & 0xff] ^ (c >> 8)
    Z.append(c)
def crc32c(b, c=0xffffffff):            # zero blocks go fast: it is linear
    zero, n = bytes(256), len(b) - len(b) % 256
    for o in range(0, n, 256):
        blk = b[o:o + 256]
        if blk == zero:
            c = sum_z(c)
        else:
            for x in blk:
                c = T[(c ^ x) & 0xff] ^ (c >> 8)
    for x in b[n:]:
        c = T[(c ^ x) & 0xff] ^ (c >> 8)
    return c ^ 0xffffffff
def sum_z(c):
    r = 0
    for k in range(32):
        if c >> k & 1:
            r ^= Z[k]
    return r
def seal(buf, off, n):                  # set the CRC-32C at off+4 over n bytes
    buf[off + 4:off + 8] = b'\0' * 4
    struct.pack_into('<I', buf, off + 4, crc32c(buf[off:off + n]))
G = lambda s: uuid.UUID(s).bytes_le
BAT = G('2DC27766-F623-4200-9D64-115E9BFD4A08')
META = G('8B7CA206-4790-4B9A-B8FE-575F050F886E')
FP = G('CAA16737-FA36-4D43-B3B6-33F0AA44E76B')
VS = G('2FA54224-CD1B-4876-B211-5DBED83BF4B8')
LSS = G('8141BF1D-A96F-4709-BA47-F233A8FAAB5F')
PSS = G('CDA348C7-445D-4471-9CC9-E9885251C556')
PARENT = G('A8D35F2D-B30B-454D-ABF7-D3D84834AB0C')
H = (0x10000, 0x20000)
RT = (0x30000, 0x40000)
MIB = 1 << 20
import os
FSIZE = os.path.getsize(sys.argv[1])
# Big sparse images: only their first MiBs (headers to metadata) are patched.
ORIG = bytearray(open(sys.argv[1], 'rb').read(FSIZE if FSIZE <= 64 * MIB else 8 * MIB))
f = bytearray(ORIG)
seal_hdr = seal_rt = True
def u16(o, v): struct.pack_into('<H', f, o, v)
def u32(o, v): struct.pack_into('<I', f, o, v)
def u64(o, v): struct.pack_into('<Q', f, o, v)
def g32(o): return struct.unpack_from('<I', f, o)[0]
def g64(o): return struct.unpack_from('<Q', f, o)[0]
def rte(guid):                          # offset of a region table entry
    for i in range(g32(RT[0] + 8)):
        if f[RT[0] + 16 + 32 * i:RT[0] + 32 + 32 * i] == guid:
            return RT[0] + 16 + 32 * i
def both_rt(fn):                        # apply fn(base) to both copies
    for r in RT: fn(r)
def rt_set(guid, off=None, length=None, req=None):
    e = rte(guid) - RT[0]
    for r in RT:
        if off is not None: u64(r + e + 16, off)
        if length is not None: u32(r + e + 24, length)
        if req is not None: u32(r + e + 28, req)
def rt_add(guid, off, length, req=0):   # one more entry in both copies
    for r in RT:
        n = g32(r + 8)
        struct.pack_into('<16sQII', f, r + 16 + 32 * n, guid, off, length, req)
        u32(r + 8, n + 1)
bat = lambda: g64(rte(BAT) + 16)
md = lambda: g64(rte(META) + 16)
def mde(guid):                          # offset of a metadata table entry
    m = md()
    for i in range(struct.unpack_from('<H', f, m + 10)[0]):
        if f[m + 32 + 32 * i:m + 48 + 32 * i] == guid:
            return m + 32 + 32 * i
def md_add(guid, off, length, flags=0):
    m = md(); n = struct.unpack_from('<H', f, m + 10)[0]
    struct.pack_into('<16sIII', f, m + 32 + 32 * n, guid, off, length, flags)
    u16(m + 10, n + 1)
item = lambda guid: md() + g32(mde(guid) + 16)
def hdr(i, seq=None, log_guid=None, log_version=None, log_length=None,
        log_offset=None, version=None):
    o = H[i]
    if seq is not None: u64(o + 8, seq)
    if log_guid is not None: f[o + 48:o + 64] = log_guid
    if log_version is not None: u16(o + 64, log_version)
    if version is not None: u16(o + 66, version)
    if log_length is not None: u32(o + 68, log_length)
    if log_offset is not None: u64(o + 72, log_offset)
def log(entries, guid=b'\x42' * 16, torn=None, flushed=None):
    """entries: [[(file_offset, 4096 bytes | zero length int)]]; sets both headers' LogGuid"""
    lo, pos = g64(H[0] + 72), 0
    for n, writes in enumerate(entries):
        seq = 7 + n
        descs, secs = [], []
        for off, w in writes:
            if isinstance(w, int):
                descs.append(struct.pack('<4sIQQQ', b'zero', 0, w, off, seq))
            else:
                descs.append(struct.pack('<4s4s8sQQ', b'desc', w[4092:], w[:8], off, seq))
                secs.append(struct.pack('<4sI', b'data', seq >> 32) + w[8:4092] +
                            struct.pack('<I', seq & 0xffffffff))
        nd = -(-(len(descs) + 2) // 128)
        total = (nd + len(secs)) * 4096
        ent = bytearray(struct.pack('<4sIIIQII16sQQ', b'loge', 0, total, pos, seq,
                        len(descs), 0, guid, flushed or len(f), len(f)))
        ent += b''.join(descs)
        ent = ent.ljust(nd * 4096, b'\0') + b''.join(secs)
        seal(ent, 0, len(ent))
        if torn == n:
            ent[-1] ^= 0xff
        f[lo + pos:lo + pos + total] = ent
        pos += total
    for i in (0, 1):
        hdr(i, log_guid=guid)
def sealed():                           # CRCs of what changed, made right
    for o, n, on in [(o, 4096, seal_hdr) for o in H] + [(o, 65536, seal_rt) for o in RT]:
        if on and (f[o:o + 4] + f[o + 8:o + n] != ORIG[o:o + 4] + ORIG[o + 8:o + n]):
            seal(f, o, n)
    return f
def dump(path, buf):                    # write buf sparsely: zeros as holes
    zero = bytes(65536)
    with open(path, 'wb') as out:
        for o in range(0, len(buf), 65536):
            if buf[o:o + 65536] != zero[:len(buf) - o]:
                out.seek(o); out.write(buf[o:o + 65536])
        out.truncate(len(buf))
def reset():
    global f, seal_hdr, seal_rt
    f = bytearray(ORIG); seal_hdr = seal_rt = True
if sys.argv[2] == '--cases':            # --cases TABLE DIR: NAME|PATTERN|CODE
    for line in open(sys.argv[3]):
        if not line.strip(): continue
        name, _, code = line.rstrip('\n').split('|', 2)
        reset(); exec(code)
        dump('%s/%s.vhdx' % (sys.argv[4], name), sealed())
elif sys.argv[2] == '--boundary':       # --boundary DIR: run $EDGEIMG on each
    import os, shlex, subprocess
    U32 = [0, 0x100, 0x1000, 0x10000, 0x100000, 2**32 // 4, 2**31 - 1, 2**31,
           2**31 + 1, 2**32 - 2, 2**32 - 1]
    U64 = U32 + [2**24, 2**28, 2**32, 2**64 // 4, 2**63 - 1, 2**63, 2**63 + 1,
                 2**64 - 2, 2**64 - 1]
    F32 = ['both_rt(lambda r: u32(r + 8, @))', 'rt_set(BAT, length=@)',
           'rt_set(META, length=@)', 'u32(item(FP), @)', 'u32(item(FP) + 4, @)',
           'u32(item(LSS), @)', 'u32(item(PSS), @)', 'u32(mde(VS) + 16, @)',
           'u32(mde(VS) + 20, @)', 'hdr(0, log_length=@, log_guid=b"\\1" * 16)',
           'u16(md() + 10, @ & 0xffff)']
    F64 = ['u64(item(VS), @)', 'rt_set(BAT, off=@)', 'rt_set(META, off=@)',
           'u64(bat() + 8, @)', 'hdr(0, seq=@)', 'hdr(0, log_offset=@)']
    ei = shlex.split(os.environ['EDGEIMG'])
    img, out = sys.argv[3] + '/bv.vhdx', sys.argv[3] + '/o/bv.raw'
    runs = bad = 0
    for fields, vals in ((F32, U32), (F64, U64)):
        for code in fields:
            for v in vals:
                reset(); exec(code.replace('@', str(v)))
                dump(img, sealed())
                for args in (['info', img], ['convert', '-O', 'raw', img, out]):
                    if args[0] == 'convert' and p.returncode:
                        break           # it opens as info does: read what opens
                    p = subprocess.run(ei + args, capture_output=True, text=True)
                    runs += 1
                    if p.returncode not in (0, 1) or 'Sanitizer' in p.stderr or \
                            'runtime error' in p.stderr:
                        bad += 1
                        print('boundary %s = %d: %s exit %d: %s' % (code, v, args[0],
                              p.returncode, p.stderr[:300]))
                    if os.path.exists(out): os.unlink(out)
    os.unlink(img)
    print('%d %d' % (runs, bad))
else:
    exec(sys.argv[2])
    with open(sys.argv[1], 'r+b') as out:
        out.write(sealed())
        if len(ORIG) == FSIZE:
            out.truncate(len(f))
PY
vx() { python3 "$T/vx.py" "$@"; }

mkdisk "$T/disk.raw" 32
mkdir -p "$T/o"

# judge IMG RAW: edgeimg reads IMG as the raw disk RAW (qemu-img's output).
judge() {
	local img=$1 raw=$2 name
	name=$(basename "$img")
	run_ei 0 -- convert -O raw "$img" "$T/o/out.raw"
	check "$name: convert -O raw is byte-identical to qemu-img's" \
		qemu-img compare -q -f raw -F raw "$T/o/out.raw" "$raw"
	check "$name: same size as qemu-img's" \
		test "$(stat -c %s "$T/o/out.raw")" -eq "$(stat -c %s "$raw")"
	check "$name: output keeps holes ($(stat -c %b "$T/o/out.raw") <= $(stat -c %b "$raw") + 256 blocks)" \
		test "$(stat -c %b "$T/o/out.raw")" -le $(($(stat -c %b "$raw") + 256))
	rm -f "$T/o/out.raw"
	[ -n "${3:-}" ] && return   # a sparse disk of many GiB: compare is slow
	run_ei 0 -- compare "$img" "$raw"
	has "$name: compare says identical" '^Images are identical\.$' "$OUT"
}

# variant NAME OPTIONS: disk.raw converted by qemu-img, read back by both.
variant() {
	local img=$T/$1.vhdx
	qemu-img convert -f raw -O vhdx -o "$2" "$T/disk.raw" "$img"
	qemu-img convert -f vhdx -O raw "$img" "$T/q.raw"
	check "$1: qemu-img reads back the disk" cmp -s "$T/q.raw" "$T/disk.raw"
	judge "$img" "$T/q.raw"
	run_ei 0 -- info --json "$img"
	echo "$OUT" >"$T/ei.json"
	qemu-img info -f vhdx --output=json "$img" >"$T/q.json"
	check "$1: info --json agrees with qemu-img" python3 - "$T/ei.json" "$T/q.json" "$2" <<'PY'
import json, sys
a, q = (json.load(open(p)) for p in sys.argv[1:3])
for k in ("format", "virtual-size", "actual-size"):
    assert a[k] == q[k], (k, a[k], q[k])
d = a["format-specific"]["data"]
assert d["block-size"] == q["cluster-size"], (d, q)
assert d["logical-sector-size"] == 512 and d["physical-sector-size"] == 512, d
want = "fixed" if "subformat=fixed" in sys.argv[3] else "dynamic"
assert d["subformat"] == want and d["log-replayed"] is False, d
PY
}

# --- correct: every variant qemu-img makes --------------------------------
variant dyn-1m subformat=dynamic,block_size=1M
variant dyn-8m subformat=dynamic,block_size=8M,log_size=4M
variant dyn-32m subformat=dynamic,block_size=32M
variant dyn-256m subformat=dynamic,block_size=256M
variant dyn-nozero subformat=dynamic,block_size=2M,block_state_zero=off
variant fixed-1m subformat=fixed,block_size=1M
variant fixed-32m subformat=fixed,block_size=32M,block_state_zero=off
variant fixed-256m subformat=fixed,block_size=256M,log_size=2M
variant default block_size=0
run_ei 0 -- info "$T/dyn-1m.vhdx"
has "info text" '^file format: vhdx$' "$OUT"
has "info text" 'block-size: 1048576' "$OUT"
run_ei 0 -- info -f vhdx --json "$T/fixed-32m.vhdx"
has "-f vhdx" '"subformat": "fixed"' "$OUT"
# empty images as qemu-img create makes them (ZERO blocks, a sparse file)
for sub in dynamic fixed; do
	qemu-img create -q -f vhdx -o subformat=$sub "$T/empty-$sub.vhdx" 20M
	truncate -s 20M "$T/zero.raw"
	judge "$T/empty-$sub.vhdx" "$T/zero.raw"
done
# fully present blocks that are holes in the file come back as zero extents
check "fixed image has data blocks" python3 - "$T/fixed-32m.vhdx" <<'PY'
import struct, sys
f = open(sys.argv[1], 'rb').read()
b = struct.unpack_from('<Q', f, 0x30000 + 32)[0]
assert struct.unpack_from('<Q', f, b)[0] & 7 == 6
PY

# sector bitmap entries between chunks: 256 MiB blocks (16 per chunk) and
# 1 MiB blocks (4096 per chunk), data in blocks before and after them
truncate -s 4608M "$T/sparse.raw"
for at in 0 3840 4351 4352 4500 4607; do
	head -c 70000 /dev/urandom | dd of="$T/sparse.raw" bs=1M seek=$at conv=notrunc status=none
done
qemu-img convert -f raw -O vhdx -o block_size=256M "$T/sparse.raw" "$T/chunks-256m.vhdx"
judge "$T/chunks-256m.vhdx" "$T/sparse.raw" big
qemu-img convert -f raw -O vhdx -o block_size=1M "$T/sparse.raw" "$T/chunks-1m.vhdx"
judge "$T/chunks-1m.vhdx" "$T/sparse.raw" big
check "chunks-256m has BAT entries after a sector bitmap entry" python3 - "$T/chunks-256m.vhdx" <<'PY'
import struct, sys
f = open(sys.argv[1], 'rb').read()
b = struct.unpack_from('<Q', f, 0x30000 + 32)[0]
assert struct.unpack_from('<Q', f, b + 8 * 17)[0] & 7 == 6   # block 16
PY

# --- 4096-byte logical sectors: qemu-img can neither make nor read them ----
# Patch the sector size of a qemu-img image whose blocks fit one chunk (the
# layout does not change): the disk is the same.
cp "$T/dyn-1m.vhdx" "$T/lss4k.vhdx"
vx "$T/lss4k.vhdx" 'u32(item(LSS), 4096); u32(item(PSS), 4096)'
qemu-img info "$T/lss4k.vhdx" >/dev/null 2>&1
check "qemu-img 7 refuses 4096-byte logical sectors (else make it the judge)" test $? -ne 0
judge "$T/lss4k.vhdx" "$T/disk.raw"
run_ei 0 -- info --json "$T/lss4k.vhdx"
has "4k: logical-sector-size" '"logical-sector-size": 4096' "$OUT"
has "4k: virtual size" '"virtual-size": 33554432' "$OUT"
# With 256 MiB blocks a chunk is 128 blocks at 4096 bytes, 16 at 512: move
# each BAT entry from index b + b/16 to b + b/128.  Same disk, other layout.
truncate -s 33G "$T/sparse4k.raw"
for at in 0 4095 4352 16384 33000 33791; do
	head -c 5000 /dev/urandom | dd of="$T/sparse4k.raw" bs=1M seek=$at conv=notrunc status=none
done
qemu-img convert -f raw -O vhdx -o block_size=256M "$T/sparse4k.raw" "$T/chunks4k.vhdx"
vx "$T/chunks4k.vhdx" '
b = bat(); n = 132
ent = [g64(b + 8 * (i + i // 16)) for i in range(n)]
f[b:b + 8 * (n + n // 16)] = bytes(8 * (n + n // 16))
for i, v in enumerate(ent): u64(b + 8 * (i + i // 128), v)
u32(item(LSS), 4096)'
judge "$T/chunks4k.vhdx" "$T/sparse4k.raw" big
rm -f "$T/sparse4k.raw" "$T/sparse.raw"

# --- dirty logs: replayed in memory, the file untouched ---------------------
# From qemu-img's own image: entry 1 rewrites the first BAT sector (block 20
# now maps block 0's data) and zeroes 4 KiB of block 1; entry 2 writes a
# pattern into block 2.  qemu-img replays it with "check -r all" on a copy.
mkdirty() {
	cp "$T/dyn-1m.vhdx" "$1"
	vx "$1" "
b = bat(); s = bytearray(f[b:b + 4096])
struct.pack_into('<Q', s, 8 * 20, struct.unpack_from('<Q', s, 0)[0])
h1 = g64(b + 8) & ~0xfffff; h2 = g64(b + 16) & ~0xfffff
pat = bytes((i * 7 + 3) & 0xff for i in range(4096))
log([[(b, bytes(s)), (h1, 4096)], [(h2 + 8192, pat)]], $2)"
}
mkdirty "$T/dirty.vhdx" 'torn=None'
sum=$(sha256sum <"$T/dirty.vhdx")
qemu-img info "$T/dirty.vhdx" >"$T/q.out" 2>&1
has "qemu-img sees a log to replay" 'log that needs to be replayed' "$(cat "$T/q.out")"
cp "$T/dirty.vhdx" "$T/replayed.vhdx"
qemu-img check -q -r all "$T/replayed.vhdx" >/dev/null 2>&1
qemu-img convert -f vhdx -O raw "$T/replayed.vhdx" "$T/q.raw"
check "the log changes the disk" test "$(cmp "$T/q.raw" "$T/disk.raw" | wc -l)" -eq 1
judge "$T/dirty.vhdx" "$T/q.raw"
run_ei 0 -- info --json "$T/dirty.vhdx"
has "info says the log was replayed" '"log-replayed": true' "$OUT"
check "the dirty image is left untouched" test "$(sha256sum <"$T/dirty.vhdx")" = "$sum"
# a torn second entry (bad CRC-32C): only the first is replayed, as qemu does
mkdirty "$T/torn.vhdx" 'torn=1'
cp "$T/torn.vhdx" "$T/replayed.vhdx"
qemu-img check -q -r all "$T/replayed.vhdx" >/dev/null 2>&1
qemu-img convert -f vhdx -O raw "$T/replayed.vhdx" "$T/q2.raw"
check "the torn entry is not replayed" test "$(cmp -s "$T/q.raw" "$T/q2.raw"; echo $?)" -eq 1
judge "$T/torn.vhdx" "$T/q2.raw"
# a LogGuid with no entry of that GUID: nothing to replay (qemu-img agrees)
cp "$T/dyn-1m.vhdx" "$T/guid.vhdx"
vx "$T/guid.vhdx" 'hdr(0, log_guid=b"\x11" * 16); hdr(1, log_guid=b"\x11" * 16)'
qemu-img convert -f vhdx -O raw "$T/guid.vhdx" "$T/q.raw"
judge "$T/guid.vhdx" "$T/q.raw"
rm -f "$T/q.raw" "$T/q2.raw" "$T/replayed.vhdx"

# --- safe: hostile inputs ------------------------------------------------------
# NAME|PATTERN|CODE: CODE patches a copy of dyn-1m; info and convert must
# exit 1 with PATTERN (an extended regex) in the message and leave no output.
cat >"$T/cases" <<'EOF'
X1-2048|vhdx: region table entry_count 2048 is more than 2047|both_rt(lambda r: u32(r + 8, 2048))
X1-ffffffff|vhdx: region table entry_count 4294967295 is more than 2047|both_rt(lambda r: u32(r + 8, 0xffffffff))
X2-bat-md|vhdx: metadata region at [0-9]+\+1048576 overlaps the BAT region|rt_set(BAT, off=md())
X2-bat-log|vhdx: BAT region at 1048576\+1048576 overlaps the log at 1048576\+1048576|rt_set(BAT, off=MIB)
X2-bat-header|vhdx: BAT region at 0\+1048576 overlaps the headers at 0\+327680|rt_set(BAT, off=0)
X2-md-in-bat|vhdx: metadata region at [0-9]+\+1048576 overlaps the BAT region|rt_set(META, off=bat() + 4096)
X2-md-log|vhdx: metadata region at 1572864\+1048576 overlaps the log|rt_set(META, off=MIB + MIB // 2)
X2-dup-bat|vhdx: region table entry 2 is a second BAT region|rt_add(BAT, 64 * MIB, MIB)
X2-dup-md|vhdx: region table entry 2 is a second metadata region|rt_add(META, 64 * MIB, MIB)
X2-required|vhdx: region table entry 2 has an unknown GUID marked required|rt_add(b"\x99" * 16, 64 * MIB, MIB, 1)
X2-unknown-overlap|vhdx: region at 2097152\+1048576 overlaps the BAT region|rt_add(b"\x99" * 16, 2 * MIB, MIB, 0)
X2-no-bat|vhdx: region table has no BAT region|both_rt(lambda r: f.__setitem__(slice(r + 16, r + 32), b"\x98" * 16))
X2-md-short|vhdx: metadata region at [0-9]+ has length 4096, less than 65536|rt_set(META, length=4096)
X2-bat-empty|vhdx: BAT region at [0-9]+ has length 0|rt_set(BAT, length=0)
X3-512k|vhdx: block_size 524288 is not a power of two between 1 MiB and 256 MiB|u32(item(FP), 512 << 10)
X3-257m|vhdx: block_size 269484032 is not a power of two between 1 MiB and 256 MiB|u32(item(FP), 257 << 20)
X3-3m|vhdx: block_size 3145728 is not a power of two|u32(item(FP), 3 << 20)
X3-0|vhdx: block_size 0 is not a power of two|u32(item(FP), 0)
X3-max|vhdx: block_size 4294967295 is not a power of two|u32(item(FP), 0xffffffff)
X4-1024|vhdx: logical_sector_size 1024 is not 512 or 4096|u32(item(LSS), 1024)
X4-0|vhdx: logical_sector_size 0 is not 512 or 4096|u32(item(LSS), 0)
X4-513|vhdx: logical_sector_size 513 is not 512 or 4096|u32(item(LSS), 513)
X5-2048|vhdx: metadata table entry_count 2048 is more than 2047|u16(md() + 10, 2048)
X5-ffff|vhdx: metadata table entry_count 65535 is more than 2047|u16(md() + 10, 0xffff)
X5-required|vhdx: metadata entry 5 has an unknown GUID marked required|md_add(b"\x97" * 16, 65536, 8, 4)
X5-missing|vhdx: metadata lacks the required 'logical sector size' item|e = mde(LSS); u32(e + 24, 0); f[e:e + 16] = b"\x96" * 16
X5-dup|vhdx: metadata entry 5 is a second 'virtual disk size' item|md_add(VS, 65544, 8, 6)
X5-item-past|vhdx: metadata item 'virtual disk size' at 4294967295\+8 does not fit|u32(mde(VS) + 16, 0xffffffff)
X5-item-short|vhdx: metadata item 'virtual disk size' at [0-9]+\+4 does not fit|u32(mde(VS) + 20, 4)
X5-item-in-table|vhdx: metadata item 'virtual disk size' at 32\+8 does not fit|u32(mde(VS) + 16, 32)
X5-signature|vhdx: metadata table at [0-9]+ has no 'metadata' signature|f[md()] ^= 1
X6-crc|vhdx: no valid VHDX header found: header 1 has CRC-32C 0x[0-9a-f]+, its bytes give 0x[0-9a-f]+; header 2 has CRC-32C|seal_hdr = False; f[H[0] + 100] ^= 1; f[H[1] + 100] ^= 1
X6-same-seq|vhdx: no valid VHDX header found: both headers have sequence number 5 but differ|hdr(0, seq=5); hdr(1, seq=5); f[H[1] + 16] ^= 1
X6-signature|vhdx: no valid VHDX header found: header 1 has no 'head' signature; header 2 has no 'head' signature|f[H[0]] = f[H[1]] = 0
X6-version|header 1 has version 2, not 1; header 2 has version 2, not 1|hdr(0, version=2); hdr(1, version=2)
X6-rt-crc|vhdx: no valid region table: copy 1 has CRC-32C 0x[0-9a-f]+, its bytes give 0x[0-9a-f]+; copy 2 has CRC|seal_rt = False; f[RT[0] + 1000] ^= 1; f[RT[1] + 1000] ^= 1
X6-rt-signature|vhdx: no valid region table: copy 1 has no 'regi' signature|f[RT[0]] = f[RT[1]] = 0
X7-descriptor|vhdx: log entry 7: descriptor 0 has no 'desc' or 'zero' signature|log([[(bat(), bytes(4096))]]); lo = g64(H[0] + 72); f[lo + 64] = 0x41; seal(f, lo, 8192)
X7-data-sector|vhdx: log entry 7: data sector 0 has no 'data' signature|log([[(bat(), bytes(4096))]]); lo = g64(H[0] + 72); f[lo + 4096] = 0x41; seal(f, lo, 8192)
X7-desc-seq|vhdx: log entry 7: descriptor 0 has sequence number 8|log([[(bat(), bytes(4096))]]); lo = g64(H[0] + 72); u64(lo + 64 + 24, 8); seal(f, lo, 8192)
X7-truncated|vhdx: log entry 7: FlushedFileOffset [0-9]+ is past the end of the file|log([[(bat(), f[bat():bat() + 4096])]], flushed=len(f) + 4096)
X7-offset|vhdx: log entry 7: descriptor 0 file offset 4097 is not a multiple of 4096|log([[(4097, bytes(4096))]])
X7-zero-len|vhdx: log entry 7: zero descriptor 0 length 100 is not a multiple of 4096|log([[(4096, 100)]])
X7-wrap|vhdx: log entry 7: descriptor 0 writes 18446744073709543424\+16384, past the largest file|log([[(2**64 - 8192, 16384)]])
X7-version|vhdx: header log_version 1 is not 0|hdr(0, log_version=1); hdr(1, log_version=1)
X7-log-offset|vhdx: header log_offset 12345 is not a whole MiB after the first|hdr(0, log_offset=12345); hdr(1, log_offset=12345)
X7-log-length|vhdx: header log_length 4096 is not a multiple of 1 MiB|hdr(0, log_length=4096, log_guid=b"\1" * 16); hdr(1, log_length=4096, log_guid=b"\1" * 16)
X7-log-past|vhdx: log at 1099511627776\+1048576 lies past the end|hdr(0, log_offset=1 << 40, log_guid=b"\1" * 16); hdr(1, log_offset=1 << 40, log_guid=b"\1" * 16)
X8-no-locator|vhdx: file parameters has_parent is set but there is no parent locator|u32(item(FP) + 4, 2)
X8-locator|vhdx: parent locator LocatorType is not the VHDX type|u32(item(FP) + 4, 2); md_add(PARENT, 65600, 64, 4)
X9-bat-small|vhdx: the BAT needs 1048831 entries \(8390648 bytes\) but its region holds 1048576 bytes|u64(item(VS), 1 << 40)
X9-on-metadata|vhdx: BAT entry 0 \(block 0\) at [0-9]+\+1048576 overlaps the metadata region|u64(bat(), md() | 6)
X9-on-bat|vhdx: BAT entry 3 \(block 3\) at [0-9]+\+1048576 overlaps the BAT region|u64(bat() + 24, bat() | 6)
X9-on-log|vhdx: BAT entry 1 \(block 1\) at 1048576\+1048576 overlaps the log at 1048576|u64(bat() + 8, MIB | 6)
X9-on-header|vhdx: BAT entry 2 \(block 2\) at 0\+1048576 overlaps the headers|u64(bat() + 16, 6)
X9-past-eof|vhdx: BAT entry 5 \(block 5\) at 1099511627776\+1048576 lies past the end of the file|u64(bat() + 40, (1 << 40) | 6)
X9-partial|vhdx: BAT entry 0 \(block 0\) is PARTIALLY_PRESENT|u64(bat(), g64(bat()) | 7)
X9-state4|vhdx: BAT entry 1 \(block 1\) has the unknown state 4|u64(bat() + 8, 4)
X9-cut-data|vhdx: BAT entry [0-9]+ \(block [0-9]+\) at [0-9]+\+1048576 lies past the end of the file|del f[-4096:]
size-odd|vhdx: virtual disk size 33554433 is not a multiple of the 512-byte logical sector up to 64 TiB|u64(item(VS), 33554433)
size-huge|vhdx: virtual disk size 18446744073709551615 is not a multiple|u64(item(VS), 2**64 - 1)
EOF
mkdir -p "$T/c"
vx "$T/dyn-1m.vhdx" --cases "$T/cases" "$T/c"
while IFS='|' read -r name pat _; do
	img=$T/c/$name.vhdx
	run_ei 1 -- info "$img"
	has "$name: info names the field" "$pat" "$ERR"
	run_ei 1 -- convert -O raw "$img" "$T/o/x.raw"
	has "$name: convert names the field" "$pat" "$ERR"
	check "$name: no output left" test -z "$(listing)"
	rm -f "$img"
done <"$T/cases"

# NAME|CODE: patched copies of dyn-1m that qemu-img reads; edgeimg must agree
cat >"$T/cases" <<'EOF'
unknown-region|rt_add(b"\x99" * 16, 64 * MIB, MIB, 0)
unknown-item|md_add(b"\x97" * 16, 65536, 8, 0)
header1-bad|seal_hdr = False; f[H[0] + 100] ^= 1
header2-bad|seal_hdr = False; f[H[1] + 100] ^= 1
header-equal|hdr(0, seq=8); hdr(1, seq=8); f[H[0] + 16:H[0] + 80] = f[H[1] + 16:H[1] + 80]
states|b = bat(); u64(b, 1); u64(b + 8, 3); u64(b + 16, 5); u64(b + 24, 0); u64(b + 32, 2)
EOF
vx "$T/dyn-1m.vhdx" --cases <(sed 's/|/||/' "$T/cases") "$T/c"
while IFS='|' read -r name _; do
	qemu-img convert -f vhdx -O raw "$T/c/$name.vhdx" "$T/q.raw"
	judge "$T/c/$name.vhdx" "$T/q.raw"
	rm -f "$T/c/$name.vhdx"
done <"$T/cases"
# region table: a bad first copy falls back to the second (qemu-img fails)
cp "$T/dyn-1m.vhdx" "$T/rt.vhdx"
vx "$T/rt.vhdx" 'seal_rt = False; f[RT[0] + 1000] ^= 1'
judge "$T/rt.vhdx" "$T/disk.raw"
# the header with the higher sequence number is the one used
cp "$T/dyn-1m.vhdx" "$T/h2.vhdx"
vx "$T/h2.vhdx" 'hdr(0, seq=9, log_version=3); hdr(1, seq=8)'
run_ei 1 -- info "$T/h2.vhdx"
has "header 1 (sequence 9) is used" 'vhdx: header log_version 3 is not 0' "$ERR"
vx "$T/h2.vhdx" 'hdr(0, seq=7)'
run_ei 0 -- info "$T/h2.vhdx"
rm -f "$T/q.raw" "$T/rt.vhdx" "$T/h2.vhdx"

# a huge table, a huge log: refused before any allocation, memory bounded
cp "$T/dyn-1m.vhdx" "$T/huge.vhdx"
vx "$T/huge.vhdx" 'u64(item(VS), 64 << 40); rt_set(BAT, off=1 << 40, length=0xfff00000)'
run_ei 1 -- convert -O raw "$T/huge.vhdx" "$T/o/x.raw"
has "huge BAT: limit" 'vhdx: BAT of 67108864 entries is larger than the table limit of 33554432 bytes' "$ERR"
[ -z "${SAN:-}" ] && /usr/bin/time -f %M -o "$T/rss" $EDGEIMG convert -O raw "$T/huge.vhdx" "$T/o/x.raw" 2>/dev/null
[ -z "${SAN:-}" ] && check "huge BAT: peak RSS $(tail -n 1 "$T/rss") KiB < 64 MiB" test "$(tail -n 1 "$T/rss")" -lt 65536
cp "$T/dyn-1m.vhdx" "$T/huge.vhdx"
vx "$T/huge.vhdx" 'hdr(0, log_length=0xfff00000, log_guid=b"\1" * 16); hdr(1, log_length=0xfff00000, log_guid=b"\1" * 16)'
run_ei 1 -- convert -O raw "$T/huge.vhdx" "$T/o/x.raw"
has "huge log: limit" 'vhdx: log of 4293918720 bytes is larger than the table limit' "$ERR"
[ -z "${SAN:-}" ] && /usr/bin/time -f %M -o "$T/rss" $EDGEIMG convert -O raw "$T/huge.vhdx" "$T/o/x.raw" 2>/dev/null
[ -z "${SAN:-}" ] && check "huge log: peak RSS $(tail -n 1 "$T/rss") KiB < 64 MiB" test "$(tail -n 1 "$T/rss")" -lt 65536
check "huge: no output left" test -z "$(listing)"
rm -f "$T/huge.vhdx"

# boundary values (HOSTILE-INPUTS UINT32_V, UINT64_V) into every header,
# region, metadata and BAT field: exit 0 or 1, never a crash; what opens
# is converted too
head -c 3000000 /dev/urandom >"$T/small.raw"
qemu-img convert -f raw -O vhdx -o block_size=1M "$T/small.raw" "$T/small.vhdx"
bv=$(EDGEIMG="$EDGEIMG" python3 "$T/vx.py" "$T/small.vhdx" --boundary "$T")
echo "$bv" | grep '^boundary'
read -r bv_n bv_bad < <(echo "$bv" | tail -n 1)
check "boundary values: $bv_n runs, $bv_bad crashed or exited > 1" test "$bv_bad" -eq 0 -a "$bv_n" -gt 241
check "boundary values: no output left" test -z "$(listing)"

# truncation sweep: every 8 KiB of the header section, and around the log,
# the BAT, the metadata and the data blocks; every cut is a clean error
read -r bat_off md_off data_off size < <(python3 - "$T/dyn-1m.vhdx" <<'PY'
import struct, sys
f = open(sys.argv[1], 'rb').read()
b = struct.unpack_from('<Q', f, 0x30000 + 32)[0]
m = struct.unpack_from('<Q', f, 0x30000 + 64)[0]
print(b, m, struct.unpack_from('<Q', f, b)[0] & ~0xfffff, len(f))
PY
)
cuts="$(seq 0 8192 335872) 7 8 65600 1048576 1052672 $bat_off $((bat_off + 8))"
cuts="$cuts $((bat_off + 4096)) $md_off $((md_off + 32)) $((md_off + 65536)) $((md_off + 65544))"
cuts="$cuts $((md_off + 65571)) $data_off $((data_off + 512)) $((data_off + 1048575)) $((size - 1))"
tr_bad=0 tr_n=0 k=0
for c in $cuts; do
	head -c "$c" "$T/dyn-1m.vhdx" >"$T/cut.vhdx"
	for verb in info convert; do
		# convert opens the same way: try it on every third cut
		[ $verb = convert ] && [ $((k++ % 3)) -ne 0 ] && continue
		if [ $verb = info ]; then ei info -f vhdx "$T/cut.vhdx" >/dev/null 2>"$T/cut.err"
		else ei convert -f vhdx -O raw "$T/cut.vhdx" "$T/o/cut.raw" >/dev/null 2>"$T/cut.err"; fi
		rc=$?
		tr_n=$((tr_n + 1))
		if [ $rc -ne 1 ] || ! file_matches '^edgeimg [a-z]*: ([^ ]*cut.vhdx: )?vhdx: ' "$T/cut.err"; then
			tr_bad=$((tr_bad + 1))
			echo "cut at $c: $verb exit $rc: $(head -c 300 "$T/cut.err")"
		fi
	done
done
check "truncation sweep: $tr_n runs, $tr_bad without a clean vhdx error" test $tr_bad -eq 0
check "truncation sweep: no output left" test -z "$(listing)"
rm -f "$T/cut.vhdx"

# --- G1: empty, magic only, all zeros, all 0xff ----------------------------
: >"$T/g-empty"
printf 'vhdxfile' >"$T/g-magic"
head -c $((1 << 20)) /dev/zero >"$T/g-zero"
head -c $((1 << 20)) /dev/zero | tr '\0' '\377' >"$T/g-ff"
run_ei 1 -- info -f vhdx "$T/g-empty"
has "G1 empty" "vhdx: 0-byte file has no 'vhdxfile' signature" "$ERR"
run_ei 1 -- info "$T/g-magic"
has "G1 magic only (probed as vhdx)" 'vhdx: no valid VHDX header found: header 1 is past the end' "$ERR"
run_ei 1 -- convert -O raw "$T/g-magic" "$T/o/x.raw"
for g in zero ff; do
	run_ei 1 -- info -f vhdx "$T/g-$g"
	has "G1 all $g" "vhdx: no 'vhdxfile' signature at offset 0" "$ERR"
	run_ei 1 -- convert -f vhdx -O raw "$T/g-$g" "$T/o/x.raw"
done
cp "$T/g-magic" "$T/g-magic2" && head -c $((1 << 20)) /dev/zero >>"$T/g-magic2"
run_ei 1 -- convert -O raw "$T/g-magic2" "$T/o/x.raw"
has "G1 magic and zeros" 'no valid VHDX header found: header 1 has no .head. signature' "$ERR"
check "G1: no output left" test -z "$(listing)"

# --- G2: other formats' files as vhdx, and this one as every other format --
qemu-img convert -f raw -O qcow2 "$T/disk.raw" "$T/g.qcow2"
qemu-img convert -f raw -O vmdk "$T/disk.raw" "$T/g.vmdk"
qemu-img convert -f raw -O vpc "$T/disk.raw" "$T/g.vhd"
qemu-img convert -f raw -O vdi "$T/disk.raw" "$T/g.vdi"
for g in "$T/disk.raw" "$T/g.qcow2" "$T/g.vmdk" "$T/g.vhd" "$T/g.vdi"; do
	run_ei 1 -- convert -f vhdx -O raw "$g" "$T/o/x.raw"
	has "G2 $(basename "$g") as vhdx" "vhdx: no 'vhdxfile' signature at offset 0" "$ERR"
done
for fmt in qcow2 vmdk vhd vdi; do
	has_feature "FORMAT_${fmt^^}" || continue
	run_ei 1 -- info -f $fmt "$T/dyn-1m.vhdx"
	has "G2 vhdx as $fmt" "$fmt" "$ERR"
done
check "G2: no output left" test -z "$(listing)"

done_tests
