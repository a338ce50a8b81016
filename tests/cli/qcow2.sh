#!/usr/bin/env bash
# requires: FORMAT_QCOW2
# SPDX-License-Identifier: MIT
# qcow2 reader: every variant qemu-img makes (compat 0.10/1.1, 512 B to
# 2 MiB clusters, zero clusters, zlib/zstd compression, extended L2,
# refcount widths, lazy refcounts, snapshots, backing chains) judged by
# qemu-img, and every hostile row (Q1-Q18, G1, G2).
. "$(dirname "$0")/../lib.sh"
need qemu-img qemu-io sfdisk mkfs.ext4 python3 cmp zstd /usr/bin/time

mkdisk "$T/disk.raw" 32
mkdir -p "$T/o"

# A patcher for qcow2 images (big-endian fields):
#   set FILE OFF FMT VALUE     struct.pack_into('>FMT') at OFF
#   hex FILE OFF HEXBYTES
#   l1 FILE IDX VALUE          entry IDX of the active L1 table
#   l2 FILE IDX VALUE          entry IDX of the L2 table of L1[0]
#   fill FILE                  every L1 entry := L1[0], every entry of that
#                              L2 table := its entry 0
#   append FILE DATAFILE       add DATAFILE's bytes at the end (512-aligned),
#                              print their offset
#   comp FILE IDX OFF SECTORS  L2[IDX] := a compressed descriptor
#   tail FILE IDX              move the zlib stream of compressed L2[IDX] to
#                              the end of the file, the file ending inside
#                              the descriptor's last sector; print the
#                              bytes used of that sector
#   get FILE                   shell assignments: cs l1off l2off rtoff rboff
#                              hl fsize comp (first compressed L2 index)
cat >"$T/p.py" <<'PY'
import struct, sys
op, path = sys.argv[1], sys.argv[2]
b = bytearray(open(path, 'rb').read())
u = lambda f, o: struct.unpack_from('>' + f, b, o)[0]
cb = u('I', 20); cs = 1 << cb
l1off = u('Q', 40)
v3 = u('I', 4) == 3
esz = 16 if v3 and u('Q', 72) & 16 else 8
M = 0x00fffffffffffe00
l2off = u('Q', l1off) & M if l1off + 8 <= len(b) else 0
a = sys.argv[3:]
if op == 'set':
    struct.pack_into('>' + a[1], b, int(a[0], 0), int(a[2], 0))
elif op == 'hex':
    d = bytes.fromhex(a[1]); o = int(a[0], 0); b[o:o + len(d)] = d
elif op == 'l1':
    struct.pack_into('>Q', b, l1off + 8 * int(a[0], 0), int(a[1], 0))
elif op == 'l2':
    struct.pack_into('>Q', b, l2off + esz * int(a[0], 0), int(a[1], 0))
elif op == 'fill':
    e0 = u('Q', l1off)
    for i in range(u('I', 36)):
        struct.pack_into('>Q', b, l1off + 8 * i, e0)
    f0 = u('Q', l2off)
    for i in range(cs // esz):
        struct.pack_into('>Q', b, l2off + esz * i, f0)
elif op == 'append':
    b += b'\0' * (-len(b) % 512)
    print(len(b)); b += open(a[0], 'rb').read()
elif op == 'comp':
    sh = 62 - (cb - 8)
    e = 1 << 62 | (int(a[2], 0) - 1) << sh | int(a[1], 0)
    struct.pack_into('>Q', b, l2off + esz * int(a[0], 0), e)
elif op == 'tail':
    import zlib
    sh = 62 - (cb - 8); at = l2off + esz * int(a[0], 0)
    e = u('Q', at)
    off = e & ((1 << sh) - 1); ns = ((e >> sh) & ((1 << (cb - 8)) - 1)) + 1
    raw = bytes(b[off:(off & ~511) + ns * 512])
    d = zlib.decompressobj(-15); d.decompress(raw)
    st = raw[:len(raw) - len(d.unused_data)]
    b += b'\0' * (-len(b) % 512); o = len(b); b += st
    struct.pack_into('>Q', b, at, 1 << 62 | ((len(st) + 511) // 512 - 1) << sh | o)
    print(len(st) % 512)
elif op == 'get':
    comp = next((i for i in range(cs // esz) if u('Q', l2off + esz * i) >> 62 & 1), -1) if l2off else -1
    rt = u('Q', 48)
    print(f"cs={cs} l1off={l1off} l2off={l2off} rtoff={rt} rboff={u('Q', rt) & M} "
          f"hl={u('I', 100) if v3 else 72} fsize={len(b)} comp={comp}")
    sys.exit(0)
open(path, 'wb').write(b)
PY
# (the system python3 starts much faster than a pyenv shim)
PY=$(command -v /usr/bin/python3 || command -v python3)
p() { $PY "$T/p.py" "$@"; }
hx() { printf '0x%x' $(("$*")); }

# judge IMG DESC [--allow-refs]: info, convert and compare agree with
# qemu-img.  The info pairs are checked in one python3 run by info_verdicts.
njudge=0
mkdir -p "$T/j"
judge() {
	local img=$1 d=$2 refs=${3:-}
	njudge=$((njudge + 1))
	qemu-img info -f qcow2 --output=json "$img" >"$T/j/$njudge.q"
	run_ei 0 -- info --json $refs "$img"
	echo "$OUT" >"$T/j/$njudge.e"
	echo "$d" >"$T/j/$njudge.d"
	rm -f "$T/e.raw" "$T/q.raw"
	run_ei 0 -- convert $refs -O raw "$img" "$T/e.raw"
	qemu-img convert -f qcow2 -O raw "$img" "$T/q.raw"
	check "$d: convert is byte-identical to qemu-img's" cmp -s "$T/e.raw" "$T/q.raw"
	local eb qb
	eb=$(stat -c %b "$T/e.raw") qb=$(stat -c %b "$T/q.raw")
	check "$d: output keeps holes ($eb <= $qb + 64 blocks)" test "$eb" -le $((qb + 64))
	run_ei 0 -- compare $refs "$img" "$T/q.raw"
	has "$d: compare says identical" '^Images are identical\.$' "$OUT"
}
info_verdicts() {
	local v
	while read -r v; do
		case $v in
		OK*) ok ;;
		*) bad "$v" ;;
		esac
	done < <($PY - "$T/j" "$njudge" <<'PY'
import json, sys
def one(a, q):
    assert a['format'] == 'qcow2', a['format']
    assert a['virtual-size'] == q['virtual-size'], (a['virtual-size'], q['virtual-size'])
    d, qd = a['format-specific']['data'], q['format-specific']['data']
    for k in ('compat', 'compression-type', 'lazy-refcounts', 'refcount-bits',
              'corrupt', 'extended-l2', 'data-file'):
        assert d.get(k) == qd.get(k), (k, d.get(k), qd.get(k))
    assert d['cluster-size'] == q['cluster-size'], (d['cluster-size'], q['cluster-size'])
    assert d['dirty-flag'] == q['dirty-flag'], (d['dirty-flag'], q['dirty-flag'])
    assert a['dirty-flag'] == q['dirty-flag'], ('top', a['dirty-flag'], q['dirty-flag'])
    qs = q.get('snapshots', [])
    assert d['snapshot-count'] == len(qs), (d['snapshot-count'], len(qs))
    assert len(d.get('snapshots', [])) == len(qs)
    for s, t in zip(d.get('snapshots', []), qs):
        for k in t:
            assert s[k] == t[k], (k, s[k], t[k])
    for k in ('backing-filename', 'backing-filename-format'):
        assert d.get(k) == q.get(k), (k, d.get(k), q.get(k))
j, n = sys.argv[1], int(sys.argv[2])
for i in range(1, n + 1):
    desc = open(f'{j}/{i}.d').read().strip()
    try:
        one(json.load(open(f'{j}/{i}.e')), json.load(open(f'{j}/{i}.q')))
        print('OK', desc)
    except Exception as x:
        print(f'{desc}: info differs from qemu-img: {x!r}')
PY
)
}

# scribble IMG: qemu-io writes that leave data, holes and partial clusters
scribble() {
	qemu-io -f qcow2 -c 'write -P 0xa5 100k 3k' -c 'write -P 0x5a 5000k 70k' \
		-c 'write -P 0x33 33m 1m' "$1" >/dev/null
}

# --- the variants qemu-img makes -------------------------------------------
qc() { qemu-img convert -q -f raw -O qcow2 "$@"; }
qc -o compat=0.10 "$T/disk.raw" "$T/v2.qcow2"
judge "$T/v2.qcow2" "compat=0.10"
qc -o compat=1.1 "$T/disk.raw" "$T/v3.qcow2"
judge "$T/v3.qcow2" "compat=1.1"
img=$T/v3.qcow2
eval "$(p get "$img")"
for c in 512 4k 64k 2M; do
	qc -o cluster_size=$c "$T/disk.raw" "$T/c.qcow2"
	judge "$T/c.qcow2" "cluster_size=$c"
done
qemu-img create -q -f qcow2 -o cluster_size=512,compat=0.10 "$T/c.qcow2" 40M
scribble "$T/c.qcow2"
judge "$T/c.qcow2" "compat=0.10 512 B clusters, scattered writes"
qc -o extended_l2=on "$T/disk.raw" "$T/x.qcow2"
judge "$T/x.qcow2" "extended_l2=on"
qc -o extended_l2=on,cluster_size=2M "$T/disk.raw" "$T/x2.qcow2"
judge "$T/x2.qcow2" "extended_l2=on, 2 MiB clusters"
for r in 1 2 8 32 64; do
	qc -o refcount_bits=$r "$T/disk.raw" "$T/c.qcow2"
	judge "$T/c.qcow2" "refcount_bits=$r"
done
qc -o lazy_refcounts=on "$T/disk.raw" "$T/c.qcow2"
judge "$T/c.qcow2" "lazy_refcounts=on"
for pa in metadata falloc full; do
	qemu-img create -q -f qcow2 -o preallocation=$pa "$T/c.qcow2" 8M
	qemu-io -f qcow2 -c 'write -P 0x77 1m 64k' -c 'write -P 0x12 100k 3k' \
		"$T/c.qcow2" >/dev/null
	judge "$T/c.qcow2" "preallocation=$pa"
done
# compressed clusters: zlib and zstd, several cluster sizes, v2
qc -c "$T/disk.raw" "$T/z.qcow2"
judge "$T/z.qcow2" "convert -c (zlib)"
for c in 512 4k 2M; do
	qc -c -o cluster_size=$c "$T/disk.raw" "$T/c.qcow2"
	judge "$T/c.qcow2" "convert -c, cluster_size=$c"
done
qc -c -o compat=0.10 "$T/disk.raw" "$T/c.qcow2"
judge "$T/c.qcow2" "convert -c, compat=0.10"
qc -c -o compression_type=zstd "$T/disk.raw" "$T/zs.qcow2"
judge "$T/zs.qcow2" "convert -c, compression_type=zstd"
qc -c -o compression_type=zstd,cluster_size=2M,extended_l2=on "$T/disk.raw" "$T/c.qcow2"
judge "$T/c.qcow2" "zstd, 2 MiB clusters, extended_l2"
run_ei 0 -- info "$T/z.qcow2"
has "text info" '^file format: qcow2$' "$OUT"
has "text info compat" 'compat: 1\.1' "$OUT"
# compressed, then partly overwritten
cp "$T/z.qcow2" "$T/c.qcow2"
scribble "$T/c.qcow2"
judge "$T/c.qcow2" "compressed, partly rewritten"

# zero clusters: plain (unmapped), preallocated (offset kept), on holes
cp "$T/v3.qcow2" "$T/zero.qcow2"
qemu-io -f qcow2 -c 'write -z 1m 1m' -c 'write -z -u 4m 2m' \
	-c 'write -z 30m 1m' -c 'write -z 200k 5k' "$T/zero.qcow2" >/dev/null
judge "$T/zero.qcow2" "zero clusters (write -z, -z -u)"
cp "$T/x.qcow2" "$T/zx.qcow2"
qemu-io -f qcow2 -c 'write -z 1m 8k' -c 'write -z -u 2m 6k' -c 'write -P 7 3m 2k' \
	-c 'write -z 31m 4k' "$T/zx.qcow2" >/dev/null
judge "$T/zx.qcow2" "extended_l2 zero subclusters"
# the extents: zero ranges are zero, holes are holes
qemu-img create -q -f qcow2 "$T/ext.qcow2" 4M
qemu-io -f qcow2 -c 'write -P 1 0 64k' -c 'write -z 64k 64k' "$T/ext.qcow2" >/dev/null
rm -f "$T/e.raw"
run_ei 0 -- convert -O raw "$T/ext.qcow2" "$T/e.raw"
check "only the data cluster is allocated in the output" \
	test "$(stat -c %b "$T/e.raw")" -le 136

# snapshots: the active L1 is read; the list is as qemu-img's
cp "$T/v3.qcow2" "$T/s.qcow2"
qemu-img snapshot -c first "$T/s.qcow2"
qemu-io -f qcow2 -c 'write -P 0xee 0 2m' "$T/s.qcow2" >/dev/null
qemu-img snapshot -c second "$T/s.qcow2"
qemu-io -f qcow2 -c 'write -P 0xdd 1m 2m' "$T/s.qcow2" >/dev/null
judge "$T/s.qcow2" "two internal snapshots"
run_ei 0 -- info --json "$T/s.qcow2"
has "snapshot count" '"snapshot-count": 2' "$OUT"
has "snapshot names" '"name": "second"' "$OUT"
cp "$T/v2.qcow2" "$T/s2.qcow2"
qemu-img snapshot -c old "$T/s2.qcow2"
qemu-io -f qcow2 -c 'write -P 0xee 0 2m' "$T/s2.qcow2" >/dev/null
judge "$T/s2.qcow2" "compat=0.10 with a snapshot"

# a header size that is not a multiple of 512: qemu rounds it down
cp "$T/v3.qcow2" "$T/c.qcow2"
p set "$T/c.qcow2" 24 Q 33554000
judge "$T/c.qcow2" "size not sector aligned"
# dirty (bit 0) and corrupt (bit 1) images are read; info says so
cp "$T/v3.qcow2" "$T/c.qcow2"
p set "$T/c.qcow2" 72 Q 1
judge "$T/c.qcow2" "dirty bit"
# the top-level dirty-flag is the header's bit, as qemu-img info says
qemu-img info -f qcow2 --output=json "$T/c.qcow2" >"$T/q.json"
has "qemu-img sees the dirty bit" '^    "dirty-flag": true,?$' "$(cat "$T/q.json")"
run_ei 0 -- info --json "$T/c.qcow2"
has "top-level dirty-flag is true, as qemu-img's" '^    "dirty-flag": true$' "$OUT"
p set "$T/c.qcow2" 72 Q 2
judge "$T/c.qcow2" "corrupt bit"
has "corrupt is shown" '"corrupt": true' "$(cat "$T/j/$njudge.e")"
# unknown compatible and autoclear bits are ignored
p set "$T/c.qcow2" 72 Q 0
p set "$T/c.qcow2" 80 Q 0x8000000000000000
p set "$T/c.qcow2" 88 Q 0x8000000000000000
judge "$T/c.qcow2" "unknown compatible/autoclear bits"

# --- backing files: refused by default, read through the policy ------------
cp "$T/v3.qcow2" "$T/base.qcow2"
( cd "$T" && qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 ov.qcow2 40M )
qemu-io -f qcow2 -c 'write -P 0x11 1m 64k' -c 'write -z 2m 128k' \
	-c 'write -P 0x22 35m 64k' "$T/ov.qcow2" >/dev/null
run_ei 1 -- info "$T/ov.qcow2"
has "Q8 backing refused by default" "qcow2: backing file 'base\.qcow2' refused: .*--allow-refs" "$ERR"
run_ei 1 -- convert -O raw "$T/ov.qcow2" "$T/o/out.raw"
has "Q8 convert refused by default" "--allow-refs" "$ERR"
check "Q8: no output left" test -z "$(listing)"
judge "$T/ov.qcow2" "backing chain (overlay larger than base)" --allow-refs
( cd "$T" && qemu-img create -q -f qcow2 -b ov.qcow2 -F qcow2 -o extended_l2=on ov2.qcow2 )
qemu-io -f qcow2 -c 'write -P 0x33 1m 4k' -c 'write -z 3m 8k' "$T/ov2.qcow2" >/dev/null
judge "$T/ov2.qcow2" "3-level chain, extended_l2 subclusters over a backing file" --allow-refs
( cd "$T" && qemu-img create -q -f qcow2 -b disk.raw -F raw ovr.qcow2 )
qemu-io -f qcow2 -c 'write -P 0x44 0 1k' "$T/ovr.qcow2" >/dev/null
judge "$T/ovr.qcow2" "raw backing file" --allow-refs
# without a backing format the backing file is probed
( cd "$T" && qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 ovp.qcow2 )
p set "$T/ovp.qcow2" $hl I 0x11111111     # the backing format extension, renamed
run_ei 0 -- convert --allow-refs -O raw "$T/ovp.qcow2" "$T/o/p.raw"
check "probed backing format" cmp -s "$T/o/p.raw" "$T/disk.raw"
rm -f "$T/o/p.raw"
# only plain names in the image's directory, even when allowed
qemu-img create -q -f qcow2 -b "$T/base.qcow2" -F qcow2 "$T/abs.qcow2"
run_ei 1 -- info --allow-refs "$T/abs.qcow2"
has "Q8 absolute backing path refused" "qcow2: backing file '.*' refused: only a plain file name" "$ERR"
qemu-img create -q -u -f qcow2 -b ../base.qcow2 -F qcow2 "$T/up.qcow2" 32M
run_ei 1 -- info --allow-refs "$T/up.qcow2"
has "Q8 ../ backing refused" "refused: only a plain file name" "$ERR"
# a chain that refers to itself stops at the depth cap
cp "$T/ov.qcow2" "$T/self.qcow2"
qemu-img rebase -q -u -f qcow2 -b self.qcow2 -F qcow2 "$T/self.qcow2"
run_ei 1 -- info --allow-refs "$T/self.qcow2"
has "Q8 depth cap" "chain deeper than" "$ERR"
# backing_file_size too large
cp "$T/ov.qcow2" "$T/h.qcow2"
p set "$T/h.qcow2" 16 I 0xffffffff
run_ei 1 -- info --allow-refs "$T/h.qcow2"
has "Q8 backing_file_size 0xffffffff" "qcow2: backing_file_size 4294967295 is too large" "$ERR"

# --- hostile inputs: exit 1, a message naming qcow2 and the field, no output -
# bad_img IMG PATTERN DESC: info and convert refuse it with PATTERN
bad_img() {
	local img=$1 pat=$2 d=$3
	run_ei 1 -- info -f qcow2 "$img"
	has "$d (info)" "$pat" "$ERR"
	run_ei 1 -- convert -f qcow2 -O raw "$img" "$T/o/out.raw"
	has "$d (convert)" "$pat" "$ERR"
	check "$d: no output left" test -z "$(listing)"
}
# bad_read IMG PATTERN DESC: opens (info works) but reading fails
bad_read() {
	local img=$1 pat=$2 d=$3
	run_ei 0 -- info -f qcow2 "$img"
	run_ei 1 -- convert -f qcow2 -O raw "$img" "$T/o/out.raw"
	has "$d (convert)" "$pat" "$ERR"
	check "$d: no output left" test -z "$(listing)"
	run_ei 2 -- compare -f qcow2 "$img" "$T/disk.raw"
	has "$d (compare)" "$pat" "$ERR"
}
# badf IMG OFF FMT VALUE PATTERN DESC: patch one field of a copy of IMG
badf() {
	cp "$1" "$T/h.qcow2"
	p set "$T/h.qcow2" "$2" "$3" "$4"
	bad_img "$T/h.qcow2" "$5" "$6"
}
# Q1 header_length
for v in 0xffffffff 0x7fffffff; do
	badf "$img" 100 I $v "qcow2: header_length $((v)) exceeds the cluster size" "Q1 header_length=$v"
done
badf "$img" 100 I 100 'qcow2: header_length 100 is less than 104' "header_length=100"
# Q2 header extensions
cp "$img" "$T/h.qcow2"
p set "$T/h.qcow2" $hl I 0x12345678
p set "$T/h.qcow2" $((hl + 4)) I 0x7fffffff
bad_img "$T/h.qcow2" 'qcow2: header extension 0x12345678 at 112: length 2147483647 is too large' "Q2 huge extension"
p set "$T/h.qcow2" 8 Q $((hl + 4))
bad_img "$T/h.qcow2" "qcow2: header extension at $hl: its header overruns" "Q2 backing_file_offset inside the extensions"
p set "$T/h.qcow2" 8 Q 0xffffffffffffffff
bad_img "$T/h.qcow2" 'qcow2: backing_file_offset 18446744073709551615 is invalid' "Q2 backing_file_offset past the cluster"
p set "$T/h.qcow2" 8 Q 50
bad_img "$T/h.qcow2" 'qcow2: backing_file_offset 50 lies inside the header' "backing_file_offset inside the header"
# Q3 refcount_table_clusters
for v in 0xffffffff 0x00020001; do
	badf "$img" 56 I $v "qcow2: refcount_table_clusters $((v)) is too large" "Q3 refcount_table_clusters=$v"
done
badf "$img" 56 I 0 'qcow2: refcount_table_clusters is 0' "refcount_table_clusters=0"
# Q4 refcount_table_offset
badf "$img" 48 Q 0x1234567890abcdef 'qcow2: refcount_table_offset 0x1234567890abcdef is invalid' "Q4 misaligned refcount_table_offset"
cp "$img" "$T/h.qcow2"
p set "$T/h.qcow2" 48 Q 0xffffffffffff0000
p set "$T/h.qcow2" 56 I 0x7f
bad_img "$T/h.qcow2" 'qcow2: refcount_table_offset 0xffffffffffff0000 is invalid' "Q4 huge refcount_table_offset"
badf "$img" 48 Q $((fsize + cs)) 'qcow2: refcount table at [0-9]+\+65536 lies past the end of the file' "refcount table past EOF"
# Q5 snapshots
for v in 0xffffffff 0x7fffffff; do
	badf "$img" 60 I $v "qcow2: nb_snapshots $((v)) is more than 65536" "Q5 nb_snapshots=$v"
done
cp "$img" "$T/h.qcow2"
p set "$T/h.qcow2" 64 Q 0xffffffffffff0000
p set "$T/h.qcow2" 60 I 0xffff
bad_img "$T/h.qcow2" 'qcow2: snapshots_offset 0xffffffffffff0000 is invalid' "Q5 huge snapshots_offset"
p set "$T/h.qcow2" 64 Q 0x1234567890abcdef
p set "$T/h.qcow2" 60 I 0
bad_img "$T/h.qcow2" 'qcow2: snapshots_offset 0x1234567890abcdef is invalid' "Q5 misaligned snapshots_offset"
qemu-img create -q -f qcow2 "$T/h.qcow2" 1M
qemu-img snapshot -c one "$T/h.qcow2"
p set "$T/h.qcow2" 60 I 65536
bad_img "$T/h.qcow2" 'qcow2: snapshot table at [0-9]+\+40 lies past the end' "Q5 65536 snapshots, the table runs off the file"
cp "$T/s.qcow2" "$T/h.qcow2"
snoff=$($PY -c "import struct;print(struct.unpack_from('>Q',open('$T/h.qcow2','rb').read(),64)[0])")
p set "$T/h.qcow2" $((snoff + 36)) I 1025
bad_img "$T/h.qcow2" 'qcow2: snapshot 0: extra_data_size 1025 is more than 1024' "snapshot extra_data_size"
# Q6 L1 table
for v in 0xffffffff 0x7fffffff; do
	badf "$img" 36 I $v "qcow2: l1_size $((v)) is too large" "Q6 l1_size=$v"
done
cp "$img" "$T/h.qcow2"
p set "$T/h.qcow2" 40 Q 0x7fffffffffff0000
p set "$T/h.qcow2" 36 I 0xffff
bad_img "$T/h.qcow2" 'qcow2: l1_table_offset 0x7fffffffffff0000 is invalid' "Q6 huge l1_table_offset"
p set "$T/h.qcow2" 40 Q 0x1234567890abcdef
p set "$T/h.qcow2" 36 I 1
bad_img "$T/h.qcow2" 'qcow2: l1_table_offset 0x1234567890abcdef is invalid' "Q6 misaligned l1_table_offset"
p set "$T/h.qcow2" 40 Q $((fsize + cs))
bad_img "$T/h.qcow2" 'qcow2: L1 table at [0-9]+\+8 lies past the end' "L1 table past EOF"
# Q7
badf "$img" 36 I 0 'qcow2: l1_size 0 is too small: size 33554432 needs 1 L1 entries' "Q7 l1_size=0"
# Q9 feature bits
badf "$img" 72 Q 4 'qcow2: incompatible feature bit 2 \(external data file\) is not supported' "Q9 external data file"
badf "$img" 72 Q 32 'qcow2: incompatible_features 0x20: unknown feature bit 5' "Q9 unknown bit 5"
badf "$img" 72 Q 0x8000000000000000 'qcow2: incompatible_features 0x8000000000000000: unknown feature bit 63' "Q9 unknown bit 63"
badf "$img" 72 Q 8 'qcow2: compression_type 0 needs incompatible feature bit 3 clear' "compression bit without zstd"
badf "$T/zs.qcow2" 104 B 7 'qcow2: compression_type 7 is not 0 \(zlib\) or 1 \(zstd\)' "unknown compression_type"
badf "$T/zs.qcow2" 72 Q 0 'qcow2: compression_type 1 needs incompatible feature bit 3 set' "zstd without bit 3"
qemu-img create -q -f qcow2 -o cluster_size=4k "$T/h.qcow2" 1M
p set "$T/h.qcow2" 72 Q 16
bad_img "$T/h.qcow2" 'qcow2: extended L2 entries .* cluster_bits 12: subclusters of 128 bytes' "extended_l2 with 4 KiB clusters"
badf "$img" 32 I 1 'qcow2: crypt_method 1: encrypted images \(AES\) are not supported' "AES encryption"
badf "$img" 32 I 2 'qcow2: crypt_method 2: encrypted images \(LUKS\) are not supported' "LUKS encryption"
badf "$img" 32 I 3 'qcow2: crypt_method 3 is not 0' "unknown crypt_method"
# a feature name table names an unknown bit
qemu-img create -q -f qcow2 "$T/h.qcow2" 1M
$PY - "$T/h.qcow2" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
o = 112
while True:
    t, l = struct.unpack_from('>II', b, o)
    if t == 0x6803f857:
        break
    o += 8 + (l + 7) // 8 * 8
struct.pack_into('>BB', b, o + 8, 0, 9)
b[o + 10:o + 10 + 10] = b'time-warp\0'
struct.pack_into('>Q', b, 72, 1 << 9)
open(sys.argv[1], 'wb').write(b)
PY
bad_img "$T/h.qcow2" 'qcow2: incompatible_features 0x200: unknown feature bit 9 \(time-warp\)' "Q9 unknown bit named by the feature table"
# Q10 cluster_bits
for v in 0 8 22 0xff; do
	badf "$img" 20 I $v "qcow2: cluster_bits $((v)) is not in 9\.\.21" "Q10 cluster_bits=$v"
done
# Q11 version
for v in 0 1 4 0xffffffff; do
	badf "$img" 4 I $v "qcow2: version $((v)) is not 2 or 3" "Q11 version=$v"
	run_ei 1 -- info "$T/h.qcow2"
	has "Q11 version=$v probed as qcow2" "qcow2: version" "$ERR"
done
# Q16 size
badf "$img" 24 Q 0x7fffffffffffffff 'qcow2: size 9223372036854775807 exceeds the limit' "Q16 size 2^63-1"
# Q17 refcount_order
for v in 7 0xffffffff; do
	badf "$img" 96 I $v "qcow2: refcount_order $((v)) is more than 6" "Q17 refcount_order=$v"
done
# the backing format name is at most 15 bytes
cp "$T/ov.qcow2" "$T/h.qcow2"
p set "$T/h.qcow2" $((hl + 4)) I 16
bad_img "$T/h.qcow2" 'qcow2: backing format extension length 16 exceeds 15' "backing format too long"

# Q12 L2 entries
for v in 0xbfffffffffff0000 0x800000ffffff0000; do
	cp "$img" "$T/h.qcow2"
	p l2 "$T/h.qcow2" 0 $v
	bad_read "$T/h.qcow2" 'qcow2: L2 entry for guest offset 0 points at host offset 0x[0-9a-f]+\+[0-9]+, past the end of the file' "Q12 L2 entry $v"
done
cp "$img" "$T/h.qcow2"
p l2 "$T/h.qcow2" 0 $(hx "0x8000000000000000 | (l2off + 512)")
bad_read "$T/h.qcow2" 'qcow2: L2 entry 0 of the table at 0x[0-9a-f]+: host offset 0x[0-9a-f]+ is not cluster aligned' "Q12 misaligned L2 entry"
p l2 "$T/h.qcow2" 0 0x8000000000000000
bad_read "$T/h.qcow2" 'qcow2: L2 entry 0 of the table at 0x[0-9a-f]+: host offset 0 with the copied flag set' "Q12 offset 0 with the copied flag"
cp "$img" "$T/h.qcow2"
p l1 "$T/h.qcow2" 0 $(hx "0x8000000000000000 | (l2off + 512)")
bad_read "$T/h.qcow2" 'qcow2: L1 entry 0: L2 table offset 0x[0-9a-f]+ is not cluster aligned' "misaligned L2 table"
p l1 "$T/h.qcow2" 0 $(hx "0x8000000000000000 | (fsize + 1024 * cs)")
bad_read "$T/h.qcow2" 'qcow2: L2 table at [0-9]+\+16384 lies past the end' "L2 table past EOF"
cp "$T/v2.qcow2" "$T/h.qcow2"
eval "$(p get "$T/h.qcow2" | sed 's/^/v2_/; s/ / v2_/g')"
p l2 "$T/h.qcow2" 1 1
bad_read "$T/h.qcow2" 'qcow2: L2 entry 1 of the table at 0x[0-9a-f]+: zero flag in a version 2 image' "zero flag in a v2 image"
cp "$T/x.qcow2" "$T/h.qcow2"
$PY - "$T/h.qcow2" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
l2 = struct.unpack_from('>Q', b, struct.unpack_from('>Q', b, 40)[0])[0] & 0x00fffffffffffe00
struct.pack_into('>Q', b, l2 + 8, 0x0000000100000001)   # subcluster 0 allocated and zero
open(sys.argv[1], 'wb').write(b)
PY
bad_read "$T/h.qcow2" 'qcow2: L2 entry 0 of the table at 0x[0-9a-f]+: invalid subcluster bitmap' "extended_l2 allocated and zero"

# Q13 overlaps: allowed for reading, same bytes as qemu-img
cp "$img" "$T/h.qcow2"
p l1 "$T/h.qcow2" 0 $(hx "0x8000000000000000 | l1off")
judge "$T/h.qcow2" "Q13 L1 entry pointing at the L1 table"
cp "$img" "$T/h.qcow2"
p l2 "$T/h.qcow2" 3 $(hx "0x8000000000000000 | rboff")
judge "$T/h.qcow2" "Q13 L2 entry pointing at a refcount block"
cp "$img" "$T/h.qcow2"
p l2 "$T/h.qcow2" 4 $(hx "0x8000000000000000 | l2off")
judge "$T/h.qcow2" "Q13 L2 entry pointing at its own L2 table"

# Q14 compressed clusters
zimg=$T/z.qcow2
eval "$(p get "$zimg" | sed 's/^/z_/; s/ / z_/g')"
check "the compressed image has compressed clusters" test "$z_comp" -ge 0
cp "$zimg" "$T/h.qcow2"
p comp "$T/h.qcow2" $z_comp $((z_fsize - 100)) 8
bad_read "$T/h.qcow2" 'qcow2: compressed cluster at 0x[0-9a-f]+\+[0-9]+ lies past the end of the file' "Q14 compressed size past EOF"
cp "$zimg" "$T/h.qcow2"
p comp "$T/h.qcow2" $z_comp $((z_fsize + 4096)) 1
bad_read "$T/h.qcow2" 'qcow2: compressed cluster at 0x[0-9a-f]+\+512 lies past the end of the file' "Q14 compressed offset past EOF"
defl() {   # defl N OUT: N bytes of 'A' as a raw deflate stream
	$PY -c "import sys,zlib;c=zlib.compressobj(9,zlib.DEFLATED,-15);sys.stdout.buffer.write(c.compress(b'A'*$1)+c.flush())" >"$2"
}
defl 131072 "$T/big.defl"
cp "$zimg" "$T/h.qcow2"
at=$(p append "$T/h.qcow2" "$T/big.defl")
p comp "$T/h.qcow2" $z_comp $at 1
bad_read "$T/h.qcow2" 'qcow2: compressed cluster at 0x[0-9a-f]+\+512: zlib: output exceeds 65536 bytes' "Q14 inflates beyond the cluster"
defl 100 "$T/small.defl"
cp "$zimg" "$T/h.qcow2"
at=$(p append "$T/h.qcow2" "$T/small.defl")
p comp "$T/h.qcow2" $z_comp $at 1
bad_read "$T/h.qcow2" 'qcow2: compressed cluster at 0x[0-9a-f]+\+[0-9]+ holds 100 bytes, not a cluster of 65536' "Q14 inflates short of the cluster"
# the file may end inside the last sector a compressed descriptor names
cp "$zimg" "$T/h.qcow2"
used=$(p tail "$T/h.qcow2" $z_comp)
check "the file ends inside a sector ($used bytes used)" test "$used" -gt 0
judge "$T/h.qcow2" "compressed cluster in the file's last, partial sector"
head -c 600 /dev/zero | tr '\0' '\377' >"$T/ff.bin"
cp "$zimg" "$T/h.qcow2"
at=$(p append "$T/h.qcow2" "$T/ff.bin")
p comp "$T/h.qcow2" $z_comp $at 2
bad_read "$T/h.qcow2" 'qcow2: compressed cluster at 0x[0-9a-f]+\+1024: zlib: invalid stream' "Q14 invalid zlib stream"
eval "$(p get "$T/zs.qcow2" | sed 's/^/zs_/; s/ / zs_/g')"
head -c 600 /dev/zero >"$T/zero.bin"
cp "$T/zs.qcow2" "$T/h.qcow2"
at=$(p append "$T/h.qcow2" "$T/zero.bin")
p comp "$T/h.qcow2" $zs_comp $at 2
bad_read "$T/h.qcow2" 'qcow2: compressed cluster at 0x[0-9a-f]+\+1024: zstd: ' "Q14 invalid zstd stream"
head -c 131072 /dev/zero | zstd -q -c >"$T/big.zst"
cp "$T/zs.qcow2" "$T/h.qcow2"
at=$(p append "$T/h.qcow2" "$T/big.zst")
p comp "$T/h.qcow2" $zs_comp $at 1
bad_read "$T/h.qcow2" 'qcow2: compressed cluster at 0x[0-9a-f]+\+512: zstd: ' "Q14 zstd frame beyond the cluster"
# a valid zstd frame followed by other bytes in its last sector is fine
head -c 65536 /dev/urandom | zstd -q -c >"$T/cl.zst"
head -c 700 /dev/urandom >>"$T/cl.zst"
cp "$T/zs.qcow2" "$T/h.qcow2"
at=$(p append "$T/h.qcow2" "$T/cl.zst")
p comp "$T/h.qcow2" $zs_comp $at $(( $(stat -c %s "$T/cl.zst") / 512 + 1 ))
judge "$T/h.qcow2" "zstd frame followed by trailing bytes"

# Q15 every guest cluster of a 64 MiB disk maps to one host cluster
qemu-img create -q -f qcow2 -o cluster_size=4k "$T/amp.qcow2" 64M
qemu-io -f qcow2 -c 'write -P 0x42 0 4k' "$T/amp.qcow2" >/dev/null
p fill "$T/amp.qcow2"
t0=$(date +%s%N)
judge "$T/amp.qcow2" "Q15 16384 guest clusters on one host cluster"
t1=$(date +%s%N)
check "Q15 bounded time ($(((t1 - t0) / 1000000)) ms)" test $(((t1 - t0) / 1000000)) -lt 20000

# RSS: a 32 MiB L1 table claimed by a tiny file; hostile huge counts
qemu-img create -q -f qcow2 -o cluster_size=512 "$T/rss.qcow2" 1M
p set "$T/rss.qcow2" 24 Q $((128 << 30))
p set "$T/rss.qcow2" 36 I 4194304
bad_img "$T/rss.qcow2" 'qcow2: L1 table at [0-9]+\+33554432 lies past the end' "32 MiB L1 table on a tiny file"
if [ -z "${SAN:-}" ]; then
	for f in rss.qcow2 amp.qcow2; do
		/usr/bin/time -f %M -o "$T/rss" $EDGEIMG convert -O raw "$T/$f" "$T/o/rss.raw" >/dev/null 2>&1
		rm -f "$T/o/rss.raw"
		rss=$(tail -n 1 "$T/rss")
		check "$f: peak RSS $rss KiB < 64 MiB" test "$rss" -lt 65536
	done
fi
run_ei 1 -- info -f qcow2 --json "$T/rss.qcow2"
p set "$T/rss.qcow2" 36 I 4194305
bad_img "$T/rss.qcow2" 'qcow2: l1_size 4194305 is too large' "L1 table above 32 MiB"

# Q18 truncation sweep: the first 4 clusters (and the L1/L2 tables in them)
# of a 4 KiB-cluster image, and around the L1 and L2 tables of a 64 KiB one
qemu-img create -q -f qcow2 -o cluster_size=4k "$T/tr.qcow2" 8M
qemu-io -f qcow2 -c 'write -P 0x61 0 8k' -c 'write -P 0x62 3m 4k' "$T/tr.qcow2" >/dev/null
qemu-img snapshot -c s "$T/tr.qcow2"
eval "$(p get "$T/tr.qcow2" | sed 's/^/tr_/; s/ / tr_/g')"
cuts="$(seq 0 67 $((4 * 4096))) $(seq $tr_l1off 8 $((tr_l1off + 64))) $(seq $tr_l2off 128 $((tr_l2off + 4096)))"
cuts="$cuts $(seq $l1off 97 $((l1off + 512))) $(seq $l2off 2039 $((l2off + cs)))"
sweep_bad=0 sweep_n=0
trsize=$(stat -c %s "$T/tr.qcow2") imgsize=$(stat -c %s "$img")
for n in $cuts; do
	if [ "$n" -lt $((4 * 4096)) ] || { [ "$n" -ge $tr_l1off ] && [ "$n" -le $((tr_l2off + 4096)) ]; }; then
		src=$T/tr.qcow2 size=$trsize
	else
		src=$img size=$imgsize
	fi
	[ "$n" -ge "$size" ] && continue
	head -c "$n" "$src" >"$T/cut.qcow2"
	sweep_n=$((sweep_n + 1))
	for verb in info convert; do
		if [ $verb = info ]; then
			ei info -f qcow2 "$T/cut.qcow2" >/dev/null 2>"$T/cut.err"
		else
			ei convert -f qcow2 -O raw "$T/cut.qcow2" "$T/o/cut.raw" >/dev/null 2>"$T/cut.err"
		fi
		rc=$? msg=$(<"$T/cut.err")
		# info may succeed when only data clusters are cut off
		if { [ $verb = convert ] && [ $rc -ne 1 ]; } || [ $rc -gt 1 ] ||
		   [[ $msg == *Sanitizer* || $msg == *"runtime error"* ]] ||
		   { [ $rc -eq 1 ] && [[ $msg != "edgeimg $verb: qcow2: "* && $msg != "edgeimg $verb: $T/cut.qcow2: qcow2: "* ]]; }; then
			sweep_bad=$((sweep_bad + 1))
			echo "cut at $n, $verb: rc $rc: ${msg:0:300}"
		fi
	done
	[ -n "$(listing)" ] && { sweep_bad=$((sweep_bad + 1)); rm -f "$T"/o/*; }
done
check "Q18 truncation sweep: $sweep_n cuts, each a clean qcow2 error" test "$sweep_bad" -eq 0

# --- G1, G2 ---------------------------------------------------------------
: >"$T/g.qcow2"
run_ei 1 -- info -f qcow2 "$T/g.qcow2"
has "G1 0-byte file" 'qcow2: .* is 0 bytes, too small for a qcow2 header' "$ERR"
printf 'QFI\xfb' >"$T/g.qcow2"
bad_img "$T/g.qcow2" 'qcow2: header truncated: the file has 4 bytes' "G1 magic only"
run_ei 1 -- info "$T/g.qcow2"
has "G1 magic only is probed as qcow2" 'qcow2: header truncated' "$ERR"
printf 'QFI\xfb\0\0\0\3' >"$T/g.qcow2"
bad_img "$T/g.qcow2" 'qcow2: header truncated: the file has 8 bytes' "G1 magic and version only"
head -c 1048576 /dev/zero >"$T/g.qcow2"
bad_img "$T/g.qcow2" 'qcow2: magic 0x00000000 is not 0x514649fb' "G1 all zeros"
head -c 1048576 /dev/zero | tr '\0' '\377' >"$T/g.qcow2"
bad_img "$T/g.qcow2" 'qcow2: magic 0xffffffff is not 0x514649fb' "G1 all 0xff"
# G2: qcow2 bytes as every other format, other formats' bytes as qcow2
for f in vmdk vhd vhdx vdi ova craw qcow; do
	ei info -f $f "$img" >"$T/.out" 2>"$T/.err"
	rc=$?
	grep -q "unknown format '$f'" "$T/.err" && continue
	check "G2 qcow2 bytes as -f $f: exit 1 ($rc)" test $rc -eq 1
	has "G2 qcow2 bytes as -f $f: a clean message" "^edgeimg info: ([^ ]*: )?$f" "$(cat "$T/.err")"
done
for f in vmdk vpc vhdx vdi qed; do
	qemu-img convert -q -f raw -O $f "$T/disk.raw" "$T/g.$f" 2>/dev/null || continue
	bad_img "$T/g.$f" 'qcow2: magic 0x[0-9a-f]+ is not 0x514649fb' "G2 $f bytes as -f qcow2"
	rm -f "$T/g.$f"
done

info_verdicts
done_tests
