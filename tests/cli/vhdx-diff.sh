#!/usr/bin/env bash
# requires: FORMAT_VHDX
# SPDX-License-Identifier: MIT
# VHDX differencing disks over their parents (--allow-refs), judged by
# libyal's libvhdi (Debian python3-libvhdi) reading the same chain.  No
# Debian tool writes a VHDX differencing disk, so the children are laid out
# here from MS-VHDX by a small generator over parents qemu-img makes; the
# judge is libvhdi, never the generator.  Every hostile parent locator,
# sector bitmap and chain case must fail with its own message and leave no
# output.
. "$(dirname "$0")/../lib.sh"
need qemu-img python3 cmp sfdisk mkfs.ext4
PYV=
for p in python3 /usr/bin/python3; do
	"$p" -c 'import pyvhdi' 2>/dev/null && { PYV=$p; break; }
done
[ -n "$PYV" ] || need python3-libvhdi    # the judge: a python3 with pyvhdi

cat >"$T/mkdiff.py" <<'PY'
# mkdiff.py PARENT OUT 'CODE': write OUT, a VHDX differencing disk over the
# VHDX PARENT, laid out from MS-VHDX by hand (no Debian tool writes one).
# CODE sets what differs from the defaults below; post(f, at) may patch
# the finished bytes (at: offsets of the parts).
import functools, os, random, struct, sys, uuid
MIB = 1 << 20
step = lambda c, _: (c >> 1) ^ 0x82f63b78 if c & 1 else c >> 1   # CRC-32C
T = [functools.reduce(step, range(8), i) for i in range(256)]
def crc32c(b):
    c = 0xffffffff
    for x in b:
        c = T[(c ^ x) & 0xff] ^ (c >> 8)
    return c ^ 0xffffffff
def seal(buf, off, n):
    buf[off + 4:off + 8] = b'\0' * 4
    struct.pack_into('<I', buf, off + 4, crc32c(bytes(buf[off:off + n])))
G = lambda s: uuid.UUID(s).bytes_le
BAT, META = G('2DC27766-F623-4200-9D64-115E9BFD4A08'), G('8B7CA206-4790-4B9A-B8FE-575F050F886E')
FP, VS = G('CAA16737-FA36-4D43-B3B6-33F0AA44E76B'), G('2FA54224-CD1B-4876-B211-5DBED83BF4B8')
P83, LSS = G('BECA12AB-B2E6-4523-93EF-C309E000C746'), G('8141BF1D-A96F-4709-BA47-F233A8FAAB5F')
PSS, PLOC = G('CDA348C7-445D-4471-9CC9-E9885251C556'), G('A8D35F2D-B30B-454D-ABF7-D3D84834AB0C')
LOCTYPE = G('B04AEFB7-D19E-4A81-B789-25B8E9445913')

def parent_facts(path):                 # DataWriteGuid, size, lss of a VHDX
    with open(path, 'rb') as f:
        head = f.read(4 * MIB)
    hs = [head[o:o + 4096] for o in (0x10000, 0x20000)]
    hs = [h for h in hs if h[:4] == b'head']
    h = max(hs, key=lambda h: struct.unpack_from('<Q', h, 8)[0])
    n = struct.unpack_from('<I', head, 0x30008)[0]
    md = [struct.unpack_from('<Q', head, 0x30010 + 32 * i + 16)[0] for i in range(n)
          if head[0x30010 + 32 * i:0x30020 + 32 * i] == META][0]
    with open(path, 'rb') as f:
        f.seek(md)
        m = f.read(MIB)
    items = {}
    for i in range(struct.unpack_from('<H', m, 10)[0]):
        e = m[32 + 32 * i:64 + 32 * i]
        items[e[:16]] = m[struct.unpack_from('<I', e, 16)[0]:]
    return (h[32:48], struct.unpack_from('<Q', items[VS])[0],
            struct.unpack_from('<I', items[LSS])[0])

parent, out = sys.argv[1], sys.argv[2]
pguid, size, lss = parent_facts(parent)
bs = MIB                                # block size
blocks = {}                             # block -> state (6, 7, 0..3)
bitmaps = {}                            # block -> [(first, count)] sectors present
params = 2                              # HasParent
linkage = '{%s}' % uuid.UUID(bytes_le=pguid)  # lower case, as libvhdi wants it
kv = [('parent_linkage', linkage),
      ('relative_path', '.\\' + os.path.basename(parent)),
      ('volume_path', '\\\\?\\Volume{26a21bda-a627-11d7-9931-806e6f6e6963}\\vm\\' + os.path.basename(parent)),
      ('absolute_win32_path', 'C:\\vm\\' + os.path.basename(parent))]
loctype = LOCTYPE
sb_state = 6                            # the sector bitmap entries used
full_bat = True                         # a differencing BAT: the last chunk's SB entry too
data_guid = uuid.uuid4().bytes_le
post = None
exec(sys.argv[3] if len(sys.argv) > 3 else '')

def enc(x): return x if isinstance(x, bytes) else x.encode('utf-16-le')
loc = bytearray(LOCTYPE if loctype is None else loctype) + struct.pack('<HH', 0, len(kv))
strs = bytearray()
base = 20 + 12 * len(kv)
ents = []
for k, v in kv:
    k, v = enc(k), enc(v)
    ko = base + len(strs); strs += k
    vo = base + len(strs); strs += v
    ents.append(struct.pack('<IIHH', ko, vo, len(k), len(v)))
loc += b''.join(ents) + strs

cr = (1 << 23) * lss // bs              # chunk ratio
nblk = -(-size // bs)
nchunk = -(-nblk // cr)
nbat = nchunk * (cr + 1) if full_bat else nblk + (nblk - 1) // cr
at = {'hdr': (0x10000, 0x20000), 'rt': (0x30000, 0x40000), 'log': MIB,
      'md': 2 * MIB, 'bat': 3 * MIB}
at['sb'] = 3 * MIB + -(-nbat * 8 // MIB) * MIB
at['data'] = at['sb'] + nchunk * MIB
f = bytearray(at['data'])
f[0:8] = b'vhdxfile'
f[8:8 + 16] = 'edgeimg test'.encode('utf-16-le')
for i, o in enumerate(at['hdr']):
    struct.pack_into('<4sIQ16s16s16sHHIQ', f, o, b'head', 0, 1 + i, uuid.uuid4().bytes_le,
                     data_guid, bytes(16), 0, 1, MIB, at['log'])
    seal(f, o, 4096)
for o in at['rt']:
    struct.pack_into('<4sIII', f, o, b'regi', 0, 2, 0)
    struct.pack_into('<16sQII', f, o + 16, BAT, at['bat'], -(-nbat * 8 // MIB) * MIB, 1)
    struct.pack_into('<16sQII', f, o + 48, META, at['md'], MIB, 1)
    seal(f, o, 65536)
items = [(FP, struct.pack('<II', bs, params), 4), (VS, struct.pack('<Q', size), 6),
         (P83, uuid.uuid4().bytes_le, 6), (LSS, struct.pack('<I', lss), 6),
         (PSS, struct.pack('<I', lss), 6), (PLOC, bytes(loc), 6)]
m, io = at['md'], 65536
struct.pack_into('<8sHH', f, m, b'metadata', 0, len(items))
for i, (g, data, flags) in enumerate(items):
    struct.pack_into('<16sIII', f, m + 32 + 32 * i, g, io, len(data), flags)
    if g == PLOC: at['loc'] = m + io
    f[m + io:m + io + len(data)] = data
    io += (len(data) + 7) & ~7
# sector bitmaps, then the blocks in order
sb = [bytearray(MIB) for _ in range(nchunk)]
spb = bs // lss
for b, runs in bitmaps.items():
    for first, count in runs:
        for k in range(first, first + count):
            s = (b % cr) * spb + k
            sb[b // cr][s // 8] |= 1 << (s % 8)
for c in range(nchunk):
    if sb_state:
        f[at['sb'] + c * MIB:at['sb'] + (c + 1) * MIB] = sb[c]
    idx = (c + 1) * (cr + 1) - 1
    if idx < nbat:
        struct.pack_into('<Q', f, at['bat'] + 8 * idx,
                         ((at['sb'] + c * MIB) | sb_state) if sb_state else 0)
nxt = at['data']
for b in sorted(blocks):
    st = blocks[b]
    ent = st
    if st in (6, 7):
        f += random.Random(b).randbytes(min(bs, size - b * bs))
        f += bytes(-len(f) % MIB)
        ent |= nxt
        at.setdefault('blk', {})[b] = nxt
        nxt = len(f)
    struct.pack_into('<Q', f, at['bat'] + 8 * (b + b // cr), ent)
if post:
    post(f, at)
open(out, 'wb').write(f)
PY
cat >"$T/libvhdi.py" <<'PY'
# judge.py CHILD PARENT...: the disk of the chain as libvhdi reads it, to stdout
import sys, pyvhdi
fs = []
for p in sys.argv[1:]:
    f = pyvhdi.file(); f.open(p); fs.append(f)
for c, p in zip(fs, fs[1:]):
    c.set_parent(p)
c, out, off = fs[0], sys.stdout.buffer, 0
while off < c.media_size:
    n = min(1 << 22, c.media_size - off)
    out.write(c.read_buffer_at_offset(n, off)); off += n
PY
mk() { python3 "$T/mkdiff.py" "$@"; }
vhdi() { "$PYV" "$T/libvhdi.py" "$@"; }
mkdir -p "$T/o"

# judge CHILD PARENT...: edgeimg reads CHILD over its parents as libvhdi
# reads the chain, or as the file $WANT (made from libvhdi's reads) when
# WANT is set.
judge() {
	local name want=${WANT:-$T/l.raw}
	name=$(basename "$1")
	if [ -z "${WANT:-}" ] && ! vhdi "$@" >"$T/l.raw"; then
		bad "$name: libvhdi cannot read the chain"
		return
	fi
	run_ei 0 -- convert --allow-refs -O raw "$1" "$T/o/e.raw"
	check "$name: convert -O raw is byte-identical to libvhdi's read" \
		cmp "$T/o/e.raw" "$want"
	run_ei 0 -- compare --allow-refs -F raw "$1" "$want"
	has "$name: compare says identical" '^Images are identical\.$' "$OUT"
	rm -f "$T/o/e.raw"
}

# --- parents made by qemu-img; libvhdi must read them as qemu-img does ----
mkdisk "$T/disk.raw" 32
qemu-img convert -f raw -O vhdx -o block_size=1M "$T/disk.raw" "$T/parent.vhdx"
check "libvhdi reads qemu-img's parent as the disk" \
	cmp <(vhdi "$T/parent.vhdx") "$T/disk.raw"
# 4096-byte logical sectors: qemu-img's image with the sector size patched
# (its blocks fit one chunk either way, so the layout holds)
cp "$T/parent.vhdx" "$T/p4k.vhdx"
python3 - "$T/p4k.vhdx" <<'PY'
import struct, sys, uuid
f = bytearray(open(sys.argv[1], 'rb').read())
G = lambda s: uuid.UUID(s).bytes_le
n = struct.unpack_from('<I', f, 0x30008)[0]
md = [struct.unpack_from('<Q', f, 0x30010 + 32 * i + 16)[0] for i in range(n)
      if f[0x30010 + 32 * i:0x30020 + 32 * i] == G('8B7CA206-4790-4B9A-B8FE-575F050F886E')][0]
for i in range(struct.unpack_from('<H', f, md + 10)[0]):
    e = md + 32 + 32 * i
    if f[e:e + 16] in (G('8141BF1D-A96F-4709-BA47-F233A8FAAB5F'), G('CDA348C7-445D-4471-9CC9-E9885251C556')):
        struct.pack_into('<I', f, md + struct.unpack_from('<I', f, e + 16)[0], 4096)
open(sys.argv[1], 'wb').write(f)
PY
check "libvhdi reads the 4096-byte-sector parent as the disk" \
	cmp <(vhdi "$T/p4k.vhdx") "$T/disk.raw"

# --- correct: FULLY_PRESENT, PARTIALLY_PRESENT (sector bitmaps), from the parent
# 512-byte sectors, 1 MiB blocks: runs of one sector, runs across bitmap
# bytes, a whole half block, the last block; UNDEFINED (1) and UNMAPPED (3)
# read from the parent, as libvhdi reads them
mk "$T/parent.vhdx" "$T/d512.vhdx" '
blocks = {0: 6, 3: 7, 5: 7, 10: 6, 12: 1, 13: 3, 17: 7, 20: 0, 31: 7}
bitmaps = {3: [(0, 8), (100, 50), (2040, 8)], 5: [(0, 1024)],
           17: [(1, 1), (3, 1), (9, 13), (511, 2)], 31: [(2047, 1)]}'
judge "$T/d512.vhdx" "$T/parent.vhdx"
# 4096-byte sectors, 2 MiB blocks
mk "$T/p4k.vhdx" "$T/d4k.vhdx" '
bs = 2 * MIB
blocks = {0: 6, 3: 7, 5: 7, 11: 7, 15: 6}
bitmaps = {3: [(0, 8), (100, 50), (500, 12)], 5: [(0, 256)], 11: [(7, 1), (511, 1)]}'
judge "$T/d4k.vhdx" "$T/p4k.vhdx"
# a chain of three: a differencing disk over a differencing disk
mk "$T/d512.vhdx" "$T/top.vhdx" '
blocks = {3: 7, 4: 6, 17: 7}
bitmaps = {3: [(50, 100)], 17: [(0, 4), (2000, 48)]}'
judge "$T/top.vhdx" "$T/d512.vhdx" "$T/parent.vhdx"
run_ei 0 -- info --allow-refs --json "$T/top.vhdx"
has "chain: info says differencing" '"subformat": "differencing"' "$OUT"
# parent_linkage2 may name the parent when parent_linkage does not (libvhdi
# wants parent_linkage: it judges the same child with the right one)
mk "$T/parent.vhdx" "$T/link1.vhdx" 'blocks = {1: 6, 6: 7}; bitmaps = {6: [(3, 5)]}'
mk "$T/parent.vhdx" "$T/link2.vhdx" '
blocks = {1: 6, 6: 7}; bitmaps = {6: [(3, 5)]}
kv = [("parent_linkage", "{11111111-2222-3333-4444-555555555555}"),
      ("parent_linkage2", linkage), kv[1]]'
WANT=$T/want.raw
vhdi "$T/link1.vhdx" "$T/parent.vhdx" >"$WANT"
judge "$T/link2.vhdx"
# ZERO (2) blocks read as zeros, as MS-VHDX says (libvhdi reads the parent
# there): the judge is libvhdi's read of the chain with that block zeroed
mk "$T/parent.vhdx" "$T/zero.vhdx" 'blocks = {2: 2, 4: 6}'
vhdi "$T/zero.vhdx" "$T/parent.vhdx" >"$WANT"
dd if=/dev/zero of="$WANT" bs=1M seek=2 count=1 conv=notrunc status=none
judge "$T/zero.vhdx"
WANT=

# info: the parent as stored and as resolved
run_ei 0 -- info --allow-refs "$T/d512.vhdx"
has "info: subformat" 'subformat: differencing' "$OUT"
has "info: parent as stored" 'parent: \.\\parent\.vhdx$' "$OUT"
has "info: parent resolved" "parent-file: $T/parent\.vhdx$" "$OUT"
run_ei 0 -- info --allow-refs --json "$T/d4k.vhdx"
has "info --json: parent" '"parent": "\.\\\\p4k\.vhdx"' "$OUT"
has "info --json: logical sectors" '"logical-sector-size": 4096' "$OUT"

# without --allow-refs: refused, naming the option
for verb in info convert; do
	if [ $verb = info ]; then run_ei 1 -- info "$T/d512.vhdx"
	else run_ei 1 -- convert -O raw "$T/d512.vhdx" "$T/o/x.raw"; fi
	has "$verb without --allow-refs" "vhdx: parent 'parent\.vhdx' refused: references to other files need --allow-refs" "$ERR"
done
run_ei 2 -- compare "$T/d512.vhdx" "$T/disk.raw"
has "compare without --allow-refs" 'need --allow-refs' "$ERR"
check "refused: no output left" test -z "$(listing)"

# --- safe: hostile children ---------------------------------------------------
# NAME|PATTERN|CODE: CODE changes the child of parent.vhdx (blocks 0 and 3
# present) before or after it is laid out; info and convert, both with
# --allow-refs, must exit 1 with PATTERN and leave no output.

cat >"$T/cases" <<'EOF'
loc-type|vhdx: parent locator LocatorType is not the VHDX type|loctype = bytes(16)
loc-count|vhdx: parent locator KeyValueCount 65535 does not fit its [0-9]+ bytes|post = lambda f, at: struct.pack_into('<H', f, at['loc'] + 18, 0xffff)
key-outside|vhdx: parent locator entry 0: key at 4294967295\+28 or value at [0-9]+\+[0-9]+ is empty or outside the [0-9]+-byte locator|post = lambda f, at: struct.pack_into('<I', f, at['loc'] + 20, 0xffffffff)
value-outside|vhdx: parent locator entry 1: key at [0-9]+\+26 or value at [0-9]+\+65534 is empty or outside|post = lambda f, at: struct.pack_into('<H', f, at['loc'] + 20 + 12 + 10, 0xfffe)
key-empty|vhdx: parent locator entry 0: key at [0-9]+\+0 or value|kv[0] = ('', linkage)
key-odd|vhdx: parent locator entry 0: key length 29 or value length 76 is odd \(not UTF-16\)|kv[0] = ('parent_linkage'.encode('utf-16-le') + b'x', linkage)
value-odd|vhdx: parent locator entry 1: key length 26 or value length 3 is odd|kv[1] = ('relative_path', b'.\0x')
surrogate|vhdx: parent locator relative_path \(entry 1\): value of 4 bytes has a lone UTF-16 high surrogate|kv[1] = ('relative_path', b'\x00\xd8a\x00')
value-nul|vhdx: parent locator relative_path \(entry 1\): value of 4 bytes holds a NUL character|kv[1] = ('relative_path', b'a\x00\x00\x00')
no-linkage|vhdx: parent locator lacks the required parent_linkage key|kv = kv[1:]
bad-linkage|vhdx: parent locator parent_linkage 'not-a-guid' is not a GUID|kv[0] = ('parent_linkage', 'not-a-guid')
dup-key|vhdx: parent locator has a second 'relative_path' key \(entry 4\)|kv.append(('relative_path', 'other.vhdx'))
no-relative|vhdx: parent locator has no relative_path|kv = [kv[0], kv[3]]
path-dotdot|vhdx: parent relative_path '\.\.\\parent\.vhdx' refused: only a plain file name in the image's directory|kv[1] = ('relative_path', '..\\parent.vhdx')
path-subdir|vhdx: parent relative_path 'vm\\parent\.vhdx' refused: only a plain file name|kv[1] = ('relative_path', 'vm\\parent.vhdx')
path-absolute|vhdx: parent relative_path 'C:\\vm\\parent\.vhdx' refused|kv[1] = ('relative_path', 'C:\\vm\\parent.vhdx')
path-slash|vhdx: parent '\./parent\.vhdx' refused: only a plain file name in the image's directory is allowed|kv[1] = ('relative_path', './parent.vhdx')
path-missing|vhdx: parent: .*nope\.vhdx|kv[1] = ('relative_path', '.\\nope.vhdx')
not-vhdx|vhdx: parent 'disk\.raw': vhdx: no 'vhdxfile' signature|kv[1] = ('relative_path', '.\\disk.raw')
wrong-linkage|vhdx: parent 'parent\.vhdx' is not the disk of parent_linkage: its DataWriteGuid differs|kv[0] = ('parent_linkage', '{11111111-2222-3333-4444-555555555555}')
other-size|vhdx: parent 'parent\.vhdx' has virtual size 33554432 and 512-byte logical sectors, the child 16777216 and 512|size = 16 * MIB
other-sector|vhdx: parent 'parent\.vhdx' has virtual size 33554432 and 512-byte logical sectors, the child 33554432 and 4096|lss = 4096
loop|vhdx: parent 'loop\.vhdx'.*chain deeper than 8 images|kv[0] = ('parent_linkage', '{%s}' % uuid.UUID(bytes_le=data_guid)); kv[1] = ('relative_path', '.\\loop.vhdx')
sb-missing|vhdx: BAT entry 3 \(block 3\) is PARTIALLY_PRESENT but the sector bitmap block of its chunk 0 \(BAT entry 4096\) is not present|sb_state = 0
sb-state|vhdx: BAT entry 4096 \(sector bitmap of chunk 0\) has the unknown state 3|sb_state = 3
sb-past-eof|vhdx: BAT entry 4096 \(sector bitmap of chunk 0\) at 1099511627776\+1048576 lies past the end of the file|post = lambda f, at: struct.pack_into('<Q', f, at['bat'] + 8 * 4096, (1 << 40) | 6)
sb-on-metadata|vhdx: BAT entry 4096 \(sector bitmap of chunk 0\) at 2097152\+1048576 overlaps the metadata region|post = lambda f, at: struct.pack_into('<Q', f, at['bat'] + 8 * 4096, at['md'] | 6)
bat-short|vhdx: the BAT needs 4097 entries \(32776 bytes\) but its region holds 32768 bytes|post = lambda f, at: [(struct.pack_into('<I', f, o + 16 + 24, 32768), seal(f, o, 65536)) for o in at['rt']]
loc-huge|vhdx: parent locator of 131072 bytes is larger than 65536|post = lambda f, at: struct.pack_into('<I', f, at['md'] + 32 + 32 * 5 + 20, 131072)
loc-short|vhdx: metadata item 'parent locator' at [0-9]+\+8 does not fit|post = lambda f, at: struct.pack_into('<I', f, at['md'] + 32 + 32 * 5 + 20, 8)
no-locator|vhdx: file parameters has_parent is set but there is no parent locator|post = lambda f, at: f.__setitem__(slice(at['md'] + 32 + 32 * 5, at['md'] + 64 + 32 * 5), bytes(32))
cut-bitmap|vhdx: BAT entry 0 \(block 0\) at [0-9]+\+[0-9]+ lies past the end of the file|post = lambda f, at: f.__delitem__(slice(at['sb'] + 4096, None))
EOF
while IFS='|' read -r name pat code; do
	img=$T/$name.vhdx
	[ "$name" = loop ] && img=$T/loop.vhdx
	mk "$T/parent.vhdx" "$img" "blocks = {0: 6, 3: 7}; bitmaps = {3: [(8, 8)]}
$code"
	run_ei 1 -- info --allow-refs "$img"
	has "$name: info names the field" "$pat" "$ERR"
	run_ei 1 -- convert --allow-refs -O raw "$img" "$T/o/x.raw"
	has "$name: convert names the field" "$pat" "$ERR"
	check "$name: no output left" test -z "$(listing)"
	rm -f "$img"
done <"$T/cases"

# a PARTIALLY_PRESENT block in a disk without a parent is still refused
mk "$T/parent.vhdx" "$T/np.vhdx" 'blocks = {3: 7}; params = 0'
run_ei 1 -- info "$T/np.vhdx"
has "no has_parent: PARTIALLY_PRESENT refused" 'vhdx: BAT entry 3 \(block 3\) is PARTIALLY_PRESENT, which only a differencing disk may use' "$ERR"

done_tests
