#!/usr/bin/env bash
# requires: FORMAT_VDI
# SPDX-License-Identifier: MIT
# VDI reader: static and dynamic images made by qemu-img, unallocated and
# discarded blocks, and every hostile row (D1-D5, G1, G2), judged by
# qemu-img.
. "$(dirname "$0")/../lib.sh"
need qemu-img sfdisk mkfs.ext4 python3 cmp /usr/bin/time

mkdisk "$T/disk.raw" 32
mkdir -p "$T/o"

# p FILE OFF FMT VALUE: patch a little-endian field (python struct format).
p() {
	python3 - "$@" <<'PY'
import struct, sys
path, off, fmt, val = sys.argv[1], int(sys.argv[2], 0), sys.argv[3], int(sys.argv[4], 0)
b = bytearray(open(path, 'rb').read())
struct.pack_into(fmt, b, off, val)
open(path, 'wb').write(b)
PY
}
BMAP=512        # the block map offset of qemu-img's images

# judge IMG DESC: info, convert and compare agree with qemu-img.
judge() {
	local img=$1 d=$2
	qemu-img info -f vdi --output=json "$img" >"$T/q.json"
	run_ei 0 -- info --json "$img"
	echo "$OUT" >"$T/e.json"
	check "$d: format, virtual-size and block size as qemu-img" python3 - "$T/e.json" "$T/q.json" "$3" <<'PY'
import json, sys
a, q = (json.load(open(p)) for p in sys.argv[1:3])
assert a['format'] == q['format'] == 'vdi'
assert a['virtual-size'] == q['virtual-size'], (a['virtual-size'], q['virtual-size'])
d = a['format-specific']['data']
assert d['block-size'] == q['cluster-size'], (d, q)
assert d['image-type'] == sys.argv[3], d
PY
	rm -f "$T/e.raw" "$T/q.raw"
	run_ei 0 -- convert -O raw "$img" "$T/e.raw"
	qemu-img convert -f vdi -O raw "$img" "$T/q.raw"
	check "$d: convert is byte-identical to qemu-img's" cmp -s "$T/e.raw" "$T/q.raw"
	local eb qb
	eb=$(stat -c %b "$T/e.raw") qb=$(stat -c %b "$T/q.raw")
	check "$d: output keeps holes ($eb <= $qb + 64 blocks)" test "$eb" -le $((qb + 64))
	run_ei 0 -- compare "$img" "$T/q.raw"
	has "$d: compare says identical" '^Images are identical\.$' "$OUT"
}

# --- the variants qemu-img makes -------------------------------------------
qemu-img convert -O vdi "$T/disk.raw" "$T/dyn.vdi"
qemu-img convert -O vdi -o static=on "$T/disk.raw" "$T/st.vdi"
judge "$T/dyn.vdi" "dynamic" dynamic
judge "$T/st.vdi" "static" static
qemu-img create -q -f vdi "$T/c.vdi" 77777K
judge "$T/c.vdi" "empty dynamic 77777K" dynamic
qemu-img create -q -f vdi -o static=on "$T/c.vdi" 5M
judge "$T/c.vdi" "empty static 5M" static
rm -f "$T/c.vdi"
run_ei 0 -- info "$T/dyn.vdi"
has "probed" '^file format: vdi$' "$OUT"
has "info text" 'image-type: dynamic' "$OUT"
# an odd disk_size (VBoxManage convertfromraw) is rounded up to a sector
cp "$T/dyn.vdi" "$T/odd.vdi"
p "$T/odd.vdi" 368 '<Q' $((32 * 1048576 - 1000))
judge "$T/odd.vdi" "odd disk_size" dynamic
# 0xfffffffe (discarded) reads as zero, as does 0xffffffff; the run is a hole
cp "$T/dyn.vdi" "$T/z.vdi"
p "$T/z.vdi" $((BMAP + 4)) '<I' 0xfffffffe
p "$T/z.vdi" $((BMAP + 8)) '<I' 0xffffffff
judge "$T/z.vdi" "discarded and unallocated entries" dynamic

# --- hostile inputs: exit 1, a message naming vdi and the field, no output ----
bad_img() {
	local img=$1 pat=$2 d=$3
	run_ei 1 -- info -f vdi "$img"
	has "$d (info)" "$pat" "$ERR"
	run_ei 1 -- convert -f vdi -O raw "$img" "$T/o/out.raw"
	has "$d (convert)" "$pat" "$ERR"
	check "$d: no output left" test -z "$(listing)"
}
# D1 disk_size
cp "$T/dyn.vdi" "$T/h.vdi"
d1=$(( (512 << 40) - (128 << 20) + (64 << 10) ))
p "$T/h.vdi" 368 '<Q' $d1
bad_img "$T/h.vdi" "vdi: disk_size $d1 exceeds the largest VDI disk of $((d1 - 65536)) bytes" "D1 disk_size"
# D2 blocks_in_image
qemu-img create -q -f vdi "$T/d2.vdi" 64M
cp "$T/d2.vdi" "$T/h.vdi"
p "$T/h.vdi" 384 '<I' 63
bad_img "$T/h.vdi" 'vdi: disk_size 67108864 needs more than blocks_in_image 63' "D2 too few blocks"
cp "$T/d2.vdi" "$T/h.vdi"
p "$T/h.vdi" 384 '<I' 0x1fffff81
bad_img "$T/h.vdi" 'vdi: blocks_in_image 536870785 exceeds the maximum of 536870784' "D2 too many blocks"
# a block map bigger than the table limit, with its memory bounded
cp "$T/d2.vdi" "$T/h.vdi"
p "$T/h.vdi" 384 '<I' 0x1fffff80
bad_img "$T/h.vdi" 'vdi: block map of 2147483136 bytes .* exceeds the table limit' "block map above the limit"
if [ -z "${SAN:-}" ]; then
	/usr/bin/time -f %M -o "$T/rss" $EDGEIMG info "$T/h.vdi" >/dev/null 2>&1
	rss=$(tail -n 1 "$T/rss")
	check "huge block map: peak RSS $rss KiB < 64 MiB" test "$rss" -lt 65536
fi
cp "$T/d2.vdi" "$T/h.vdi"
p "$T/h.vdi" 0x154 '<I' 0x7ffffe00
bad_img "$T/h.vdi" 'vdi: block map at 2147483136\+256 is past the end of the file' "block map past EOF"
cp "$T/d2.vdi" "$T/h.vdi"
p "$T/h.vdi" 0x154 '<I' 0x201
bad_img "$T/h.vdi" 'vdi: offset_bmap 0x201 is not a multiple of 512' "unaligned offset_bmap"
cp "$T/d2.vdi" "$T/h.vdi"
p "$T/h.vdi" 0x158 '<I' 0x200
bad_img "$T/h.vdi" 'vdi: offset_data 0x200 overlaps the block map' "offset_data inside the block map"
# D3 block_size
for v in $((1048576 - 1)) $((1048576 + 65536)) 0; do
	cp "$T/dyn.vdi" "$T/h.vdi"
	p "$T/h.vdi" 376 '<I' $v
	bad_img "$T/h.vdi" "vdi: block_size $v is not 1048576" "D3 block_size $v"
done
# D4 block map entries
# (blocks_allocated, at 388, as qemu-img wrote it for this disk's data)
alloc=$(python3 -c 'import struct, sys; print(struct.unpack_from("<I", open(sys.argv[1], "rb").read(392), 388)[0])' "$T/dyn.vdi")
cp "$T/dyn.vdi" "$T/h.vdi"
p "$T/h.vdi" $((BMAP + 4)) '<I' $alloc
bad_img "$T/h.vdi" "vdi: block map entry 1 is $alloc, not below blocks_allocated $alloc" "D4 entry >= blocks_allocated ($alloc)"
cp "$T/dyn.vdi" "$T/h.vdi"
p "$T/h.vdi" 388 '<I' 32
p "$T/h.vdi" $((BMAP + 4)) '<I' 20
bad_img "$T/h.vdi" 'vdi: block map entry 1: data at [0-9]+\+1048576 is past the end of the file' "D4 data past EOF"
cp "$T/dyn.vdi" "$T/h.vdi"
p "$T/h.vdi" $((BMAP + 8)) '<I' 0
bad_img "$T/h.vdi" 'vdi: block map entry 2 uses physical block 0 a second time' "D4 block used twice"
cp "$T/dyn.vdi" "$T/h.vdi"
p "$T/h.vdi" 388 '<I' 33
bad_img "$T/h.vdi" 'vdi: blocks_allocated 33 exceeds blocks_in_image 32' "blocks_allocated too big"
# D5 signature: not VDI
cp "$T/dyn.vdi" "$T/h.vdi"
p "$T/h.vdi" 0x40 '<I' 0xbeda1070
bad_img "$T/h.vdi" 'vdi: signature 0xbeda1070 is not 0xbeda107f' "D5 signature"
run_ei 0 -- info "$T/h.vdi"
has "D5: without the signature the file is not probed as vdi" '^file format: raw$' "$OUT"
# other header fields qemu refuses
cp "$T/dyn.vdi" "$T/h.vdi"
p "$T/h.vdi" 0x44 '<I' 0x00010000
bad_img "$T/h.vdi" 'vdi: version 1.0 is not 1.1' "version 1.0"
cp "$T/dyn.vdi" "$T/h.vdi"
p "$T/h.vdi" 0x1b8 '<I' 1
bad_img "$T/h.vdi" 'vdi: uuid_link/uuid_parent set' "parent uuid"
cp "$T/dyn.vdi" "$T/h.vdi"
p "$T/h.vdi" 0x4c '<I' 4
bad_img "$T/h.vdi" 'vdi: image_type 4 is not' "image_type"
cp "$T/dyn.vdi" "$T/h.vdi"
p "$T/h.vdi" 0x168 '<I' 4096
bad_img "$T/h.vdi" 'vdi: sector_size 4096 is not 512' "sector_size"
cp "$T/dyn.vdi" "$T/h.vdi"
p "$T/h.vdi" 0x17c '<I' 512
bad_img "$T/h.vdi" 'vdi: block_extra 512 is not 0' "block_extra"
# truncation sweep over header, block map and data
sz=$(stat -c %s "$T/dyn.vdi")
ok_all=1
for n in $(seq 0 256 4096) 1048576 $((sz - 512)) $((sz - 1)); do
	head -c $n "$T/dyn.vdi" >"$T/t.vdi"
	ei convert -f vdi -O raw "$T/t.vdi" "$T/o/out.raw" >/dev/null 2>"$T/.err"
	rc=$?
	if [ $rc -ne 1 ] || ! file_matches '^edgeimg convert: .*vdi: ' "$T/.err" || [ -n "$(listing)" ]; then
		ok_all=0
		echo "truncated at $n: exit $rc: $(cat "$T/.err")"
	fi
done
check "truncation sweep: every cut is refused cleanly" test $ok_all -eq 1

# --- G1 / G2 ------------------------------------------------------------------
: >"$T/g0"
printf '%64s\x7f\x10\xda\xbe' '' >"$T/g1"
head -c 4096 /dev/zero >"$T/g2"
head -c 4096 /dev/zero | tr '\0' '\377' >"$T/g3"
for g in g0 g1 g2 g3; do
	run_ei 1 -- info -f vdi "$T/$g"
	has "G1 $g refused" 'vdi: ' "$ERR"
done
run_ei 1 -- info "$T/g1"
has "G1 magic only, probed" 'vdi: file of 68 bytes is shorter than the 512-byte header' "$ERR"
qemu-img convert -O qcow2 "$T/disk.raw" "$T/x.qcow2"
qemu-img convert -O vpc "$T/disk.raw" "$T/x.vhd"
qemu-img convert -O vmdk "$T/disk.raw" "$T/x.vmdk"
qemu-img convert -O vhdx "$T/disk.raw" "$T/x.vhdx"
for x in x.qcow2 x.vhd x.vmdk x.vhdx disk.raw; do
	run_ei 1 -- info -f vdi "$T/$x"
	has "G2 $x as vdi" 'vdi: signature 0x[0-9a-f]+ is not 0xbeda107f' "$ERR"
done
for f in $(sed -nE 's/^features: //p' <<<"$(ei --version)" | tr ' ' '\n' | sed -nE 's/^FORMAT_//p' | tr 'A-Z' 'a-z'); do
	[ "$f" = vdi ] && continue
	run_ei 1 -- info -f "$f" "$T/dyn.vdi"
	has "G2 vdi as $f: refused" "." "$ERR"
done

done_tests
