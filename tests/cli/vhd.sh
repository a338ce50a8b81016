#!/usr/bin/env bash
# requires: FORMAT_VHD
# SPDX-License-Identifier: MIT
# VHD (qemu's vpc) reader: fixed and dynamic images made by qemu-img, the
# creator-dependent size rule, sector bitmaps, and every hostile row
# (H1-H6, G1, G2), judged by qemu-img.
. "$(dirname "$0")/../lib.sh"
need qemu-img sfdisk mkfs.ext4 python3 cmp /usr/bin/time

mkdisk "$T/disk.raw" 32
mkdir -p "$T/o"

# A patcher for VHD fields; checksums are recomputed unless "nosum".
#   footer FILE OFF FMT VALUE   (both copies when there are two)
#   dyn FILE OFF FMT VALUE      (dynamic header at 512)
#   raw FILE OFF HEXBYTES       (no checksum)
cat >"$T/p.py" <<'PY'
import struct, sys
op, path = sys.argv[1], sys.argv[2]
b = bytearray(open(path, 'rb').read())
def csum(buf, at):
    s = sum(buf) - sum(buf[at:at + 4])
    return (~s) & 0xffffffff
nosum = sys.argv[-1] == 'nosum'
if op == 'raw':
    off, data = int(sys.argv[3], 0), bytes.fromhex(sys.argv[4])
    b[off:off + len(data)] = data
else:
    off, fmt, val = int(sys.argv[3], 0), sys.argv[4], sys.argv[5]
    v = val.encode().ljust(struct.calcsize(fmt), b'\0') if 's' in fmt else int(val, 0)
    if op == 'footer':
        bases = [len(b) - 512] + ([0] if b[:8] == b'conectix' else [])
        for base in bases:
            struct.pack_into(fmt, b, base + off, v)
            if not nosum:
                struct.pack_into('>I', b, base + 64, csum(b[base:base + 512], 64))
    else:
        struct.pack_into(fmt, b, 512 + off, v)
        if not nosum:
            struct.pack_into('>I', b, 512 + 36, csum(b[512:1536], 36))
open(path, 'wb').write(b)
PY
p() { python3 "$T/p.py" "$@"; }

# judge IMG DESC: info, convert and compare agree with qemu-img (-f vpc).
judge() {
	local img=$1 d=$2
	qemu-img info -f vpc --output=json "$img" >"$T/q.json"
	run_ei 0 -- info --json -f vhd "$img"
	echo "$OUT" >"$T/e.json"
	check "$d: virtual-size and block size as qemu-img" python3 - "$T/e.json" "$T/q.json" <<'PY'
import json, sys
a, q = (json.load(open(p)) for p in sys.argv[1:3])
assert a['virtual-size'] == q['virtual-size'], (a['virtual-size'], q['virtual-size'])
d = a['format-specific']['data']
if 'cluster-size' in q:
    assert d['block-size'] == q['cluster-size'], (d, q)
    assert d['subformat'] == 'dynamic'
else:
    assert d['subformat'] == 'fixed' and 'block-size' not in d, d
PY
	rm -f "$T/e.raw" "$T/q.raw"
	run_ei 0 -- convert -O raw "$img" "$T/e.raw"
	qemu-img convert -f vpc -O raw "$img" "$T/q.raw"
	check "$d: convert is byte-identical to qemu-img's" cmp -s "$T/e.raw" "$T/q.raw"
	local eb qb
	eb=$(stat -c %b "$T/e.raw") qb=$(stat -c %b "$T/q.raw")
	check "$d: output keeps holes ($eb <= $qb + 64 blocks)" test "$eb" -le $((qb + 64))
	run_ei 0 -- compare "$img" "$T/q.raw"
	has "$d: compare says identical" '^Images are identical\.$' "$OUT"
}

# --- the variants qemu-img makes -------------------------------------------
qemu-img convert -O vpc -o force_size=off "$T/disk.raw" "$T/dyn.vhd"
qemu-img convert -O vpc -o force_size=on "$T/disk.raw" "$T/dynf.vhd"
qemu-img convert -O vpc -o subformat=fixed,force_size=off "$T/disk.raw" "$T/fix.vhd"
qemu-img convert -O vpc -o subformat=fixed,force_size=on "$T/disk.raw" "$T/fixf.vhd"
judge "$T/dyn.vhd" "dynamic, CHS size"
judge "$T/dynf.vhd" "dynamic, force_size"
judge "$T/fix.vhd" "fixed, CHS size"
judge "$T/fixf.vhd" "fixed, force_size"
for s in 100M 77777K; do
	qemu-img create -q -f vpc -o force_size=off "$T/c.vhd" $s
	judge "$T/c.vhd" "empty $s (not CHS-aligned)"
done
qemu-img create -q -f vpc -o subformat=fixed "$T/c.vhd" 3333K
judge "$T/c.vhd" "empty fixed 3333K"
rm -f "$T/c.vhd"
qemu-img create -q -f vpc "$T/big.vhd" 5000M
q=$(qemu-img info -f vpc --output=json "$T/big.vhd" | sed -nE 's/.*"virtual-size": ([0-9]+).*/\1/p')
run_ei 0 -- info --json "$T/big.vhd"
has "5000M: virtual-size as qemu-img ($q)" "\"virtual-size\": $q," "$OUT"
# above 127 GiB the geometry is the largest one and current_size counts
qemu-img create -q -f vpc "$T/big.vhd" 200G
q=$(qemu-img info -f vpc --output=json "$T/big.vhd" | sed -nE 's/.*"virtual-size": ([0-9]+).*/\1/p')
run_ei 0 -- info --json "$T/big.vhd"
has "200G: virtual-size as qemu-img ($q)" "\"virtual-size\": $q," "$OUT"
has "200G: size from current_size" '"size-from": "current_size"' "$OUT"
rm -f "$T/big.vhd"

# probing: dynamic by the head, fixed by the tail
run_ei 0 -- info "$T/dyn.vhd"
has "dynamic probed" '^file format: vhd$' "$OUT"
run_ei 0 -- info "$T/fix.vhd"
has "fixed probed by its footer" '^file format: vhd$' "$OUT"
has "fixed info" 'subformat: fixed' "$OUT"
run_ei 0 -- info --json "$T/dyn.vhd"
has "creator key" '"creator": "qemu"' "$OUT"

# --- H4: the creator decides between CHS and current_size ------------------
# current_size 32 MiB exactly, geometry 964/4/17 (33562624 bytes): each
# creator application must give qemu-img's answer.
cp "$T/dyn.vhd" "$T/h4.vhd"
p footer "$T/h4.vhd" 48 '>Q' 33554432
p footer "$T/h4.vhd" 40 '>Q' 33554432
for app in 'vpc ' qemu qem2 'win ' 'd2v ' CTXS tap 'tap ' xyzw; do
	p footer "$T/h4.vhd" 28 4s "$app"
	q=$(qemu-img info -f vpc --output=json "$T/h4.vhd" | sed -nE 's/.*"virtual-size": ([0-9]+).*/\1/p')
	run_ei 0 -- info --json "$T/h4.vhd"
	has "H4 creator '$app': virtual-size $q as qemu-img" "\"virtual-size\": $q," "$OUT"
done
judge "$T/h4.vhd" "H4 unknown creator"
p footer "$T/h4.vhd" 28 4s 'win '
judge "$T/h4.vhd" "H4 Hyper-V creator"
# the largest geometry means current_size whatever the creator
p footer "$T/h4.vhd" 28 4s 'vpc '
p footer "$T/h4.vhd" 56 '>H' 65535
p footer "$T/h4.vhd" 58 '>B' 16
p footer "$T/h4.vhd" 59 '>B' 255
judge "$T/h4.vhd" "H4 largest geometry"
# beyond 2040 GiB is refused (qemu: EFBIG)
p footer "$T/h4.vhd" 48 '>Q' $((0xff000001 * 512))
run_ei 1 -- info -f vhd "$T/h4.vhd"
has "H4 > 2040 GiB refused" 'vhd: current_size of [0-9]+ sectors exceeds the VHD maximum' "$ERR"

# --- sector bitmaps and BAT entries -------------------------------------------
# clear the bitmap of the first allocated block for sectors 8..15: those
# sectors read as zero (qemu ignores bitmaps, so compare against its bytes
# with that range zeroed)
cp "$T/dyn.vhd" "$T/bm.vhd"
bat0=$(python3 -c "import struct;print(struct.unpack('>I',open('$T/bm.vhd','rb').read()[1536:1540])[0])")
p raw "$T/bm.vhd" $((bat0 * 512 + 1)) 00
qemu-img convert -f vpc -O raw "$T/dyn.vhd" "$T/q.raw"
dd if=/dev/zero of="$T/q.raw" bs=512 seek=8 count=8 conv=notrunc status=none
rm -f "$T/e.raw"
run_ei 0 -- convert -O raw "$T/bm.vhd" "$T/e.raw"
check "bitmap bit 0 reads as zero" cmp -s "$T/e.raw" "$T/q.raw"
run_ei 0 -- compare "$T/bm.vhd" "$T/q.raw"
has "bitmap: compare identical" '^Images are identical\.$' "$OUT"
# H6: a BAT entry 0xFFFFFFFF is unallocated and reads as zero, as in qemu
cp "$T/dyn.vhd" "$T/h6.vhd"
p raw "$T/h6.vhd" 1536 ffffffff
judge "$T/h6.vhd" "H6 0xFFFFFFFF entry"

# --- hostile inputs: exit 1, a message naming vhd and the field, no output ----
# bad IMG PATTERN DESC: info and convert refuse it with PATTERN
bad_img() {
	local img=$1 pat=$2 d=$3
	run_ei 1 -- info -f vhd "$img"
	has "$d (info)" "$pat" "$ERR"
	run_ei 1 -- convert -f vhd -O raw "$img" "$T/o/out.raw"
	has "$d (convert)" "$pat" "$ERR"
	check "$d: no output left" test -z "$(listing)"
}
# H1 block_size
for v in 0 0x80000000 0x12345678 256; do
	cp "$T/dyn.vhd" "$T/h.vhd"
	p dyn "$T/h.vhd" 32 '>I' $v
	bad_img "$T/h.vhd" "vhd: block_size $((v)) is not a power of two" "H1 block_size=$v"
done
# H2 max_table_entries / table_offset
cp "$T/dyn.vhd" "$T/h.vhd"
p dyn "$T/h.vhd" 28 '>I' 0x40000000
bad_img "$T/h.vhd" 'vhd: BAT of 4294967296 bytes \(max_table_entries 1073741824\) exceeds the table limit' "H2 huge BAT"
if [ -z "${SAN:-}" ]; then
	/usr/bin/time -f %M -o "$T/rss" $EDGEIMG info -f vhd "$T/h.vhd" >/dev/null 2>&1
	rss=$(tail -n 1 "$T/rss")
	check "H2 huge BAT: peak RSS $rss KiB < 64 MiB" test "$rss" -lt 65536
fi
cp "$T/dyn.vhd" "$T/h.vhd"
p dyn "$T/h.vhd" 28 '>I' 4000000
bad_img "$T/h.vhd" 'vhd: BAT at 1536\+16000000 .* is outside' "H2 BAT past EOF"
cp "$T/dyn.vhd" "$T/h.vhd"
p dyn "$T/h.vhd" 16 '>Q' $(( $(stat -c %s "$T/dyn.vhd") - 512 - 32 ))
bad_img "$T/h.vhd" 'vhd: BAT at [0-9]+\+68 .* is outside' "H2 BAT overlapping the footer"
cp "$T/dyn.vhd" "$T/h.vhd"
p dyn "$T/h.vhd" 16 '>Q' 1024
bad_img "$T/h.vhd" 'vhd: BAT at 1024\+68 overlaps the dynamic header' "H2 BAT overlapping the header"
cp "$T/dyn.vhd" "$T/h.vhd"
p dyn "$T/h.vhd" 28 '>I' 3
bad_img "$T/h.vhd" 'vhd: max_table_entries 3 is too small for 17 blocks' "H2 BAT too small"
cp "$T/dyn.vhd" "$T/h.vhd"
p footer "$T/h.vhd" 16 '>Q' 0xfffffffffffffe00
bad_img "$T/h.vhd" 'vhd: footer data_offset' "H2 dynamic header offset"
# H3 checksums and copies
cp "$T/dyn.vhd" "$T/h.vhd"
p footer "$T/h.vhd" 24 '>I' 12345 nosum
bad_img "$T/h.vhd" 'vhd: footer checksum 0x[0-9a-f]+ is wrong' "H3 footer checksum"
cp "$T/fix.vhd" "$T/h.vhd"
p footer "$T/h.vhd" 24 '>I' 12345 nosum
bad_img "$T/h.vhd" 'vhd: footer checksum' "H3 fixed footer checksum"
run_ei 1 -- info "$T/h.vhd"
has "H3 fixed footer checksum, probed" 'vhd: footer checksum' "$ERR"
cp "$T/dyn.vhd" "$T/h.vhd"
p raw "$T/h.vhd" 24 01020304
bad_img "$T/h.vhd" 'vhd: the footer at the end of the file differs from its copy' "H3 footer copy differs"
cp "$T/dyn.vhd" "$T/h.vhd"
p dyn "$T/h.vhd" 40 '>I' 7 nosum
bad_img "$T/h.vhd" 'vhd: dynamic header checksum' "H3 dynamic header checksum"
cp "$T/dyn.vhd" "$T/h.vhd"
p dyn "$T/h.vhd" 0 8s cxsparsX
bad_img "$T/h.vhd" 'vhd: dynamic header cookie' "dynamic header cookie"
# H5 differencing disks: qemu-img cannot make them, so build a child of
# dyn.vhd here, with the expected disk: the parent's bytes overlaid by the
# child's sectors whose bitmap bit is set.
qemu-img convert -f vpc -O raw "$T/dyn.vhd" "$T/parent.raw"
cp "$T/dyn.vhd" "$T/parent.vhd"
mkdiff() {      # mkdiff CHILD PARENT_NAME [PARENT_UUID_HEX]
	python3 - "$T/parent.vhd" "$T/parent.raw" "$1" "$2" "${3:-}" <<'PY'
import struct, sys
par, praw, out, name, uid = sys.argv[1:6]
pb = open(par, 'rb').read()
exp = bytearray(open(praw, 'rb').read())
def csum(b, at):
    return (~(sum(b) - sum(b[at:at + 4]))) & 0xffffffff
f = bytearray(pb[:512])
struct.pack_into('>I', f, 60, 4)
f[68:84] = bytes(range(0x10, 0x20))
struct.pack_into('>I', f, 64, csum(f, 64))
size = struct.unpack('>Q', f[48:56])[0]
bs, n = 2 << 20, (size + (2 << 20) - 1) >> 21
h = bytearray(1024)
h[0:8] = b'cxsparse'
struct.pack_into('>QQIII', h, 8, 2**64 - 1, 1536, 0x10000, n, bs)
h[40:56] = bytes.fromhex(uid) if uid else pb[68:84]
nm = name.encode('utf-16-be')
h[64:64 + len(nm)] = nm
struct.pack_into('>I', h, 36, csum(h, 36))
bat = [0xffffffff] * n
body = bytearray()
base = (1536 + 4 * n + 511) & ~511
for blk, bits, fill in ((0, b'\xff', 0xab), (5, b'\x80\x01', 0xee), (n - 1, b'\xff' * 512, 0xcd)):
    bat[blk] = (base + len(body)) // 512
    bm = bits.ljust(512, b'\0')
    body += bm + bytes([fill]) * bs
    for sec in range(bs // 512):
        o = blk * bs + sec * 512
        if bm[sec // 8] >> (7 - sec % 8) & 1 and o < size:
            exp[o:o + 512] = bytes([fill]) * 512
img = bytes(f) + bytes(h) + struct.pack('>%dI' % n, *bat)
open(out, 'wb').write(img.ljust(base, b'\0') + bytes(body) + bytes(f))
open(out + '.expect', 'wb').write(exp)
PY
}
mkdiff "$T/child.vhd" parent.vhd
bad_img "$T/child.vhd" "vhd: parent 'parent\.vhd' refused: .*--allow-refs" "H5 differencing refused"
run_ei 2 -- compare "$T/child.vhd" "$T/child.vhd.expect"
has "H5 compare refused too" "vhd: parent 'parent\.vhd' refused: .*--allow-refs" "$ERR"
run_ei 0 -- info --allow-refs --json "$T/child.vhd"
has "H5 allowed: differencing" '"subformat": "differencing"' "$OUT"
has "H5 allowed: parent named" '"parent": "parent.vhd"' "$OUT"
rm -f "$T/e.raw"
run_ei 0 -- convert --allow-refs -O raw "$T/child.vhd" "$T/e.raw"
check "H5 allowed: child over parent as expected" cmp -s "$T/e.raw" "$T/child.vhd.expect"
run_ei 0 -- compare --allow-refs "$T/child.vhd" "$T/child.vhd.expect"
has "H5 allowed: compare identical" '^Images are identical\.$' "$OUT"
mkdiff "$T/h.vhd" parent.vhd 000102030405060708090a0b0c0d0e0f
run_ei 1 -- info --allow-refs "$T/h.vhd"
has "H5 parent_uuid mismatch" "vhd: parent 'parent\.vhd' is not the disk of parent_uuid" "$ERR"
mkdiff "$T/h.vhd" h.vhd 101112131415161718191a1b1c1d1e1f
run_ei 1 -- info --allow-refs "$T/h.vhd"
has "H5 parent loop stops at the depth cap" 'chain deeper than' "$ERR"
mkdiff "$T/h.vhd" ../parent.vhd
run_ei 1 -- info --allow-refs "$T/h.vhd"
has "H5 parent outside the directory refused" 'only a plain file name' "$ERR"
mkdiff "$T/h.vhd" missing.vhd
run_ei 1 -- info --allow-refs "$T/h.vhd"
has "H5 missing parent" 'missing\.vhd.*No such file' "$ERR"
cp "$T/dyn.vhd" "$T/h.vhd"
p footer "$T/h.vhd" 60 '>I' 7
bad_img "$T/h.vhd" 'vhd: disk_type 7 is not' "unknown disk_type"
cp "$T/fix.vhd" "$T/h.vhd"
p footer "$T/h.vhd" 48 '>Q' 40000000
p footer "$T/h.vhd" 28 4s 'win '
bad_img "$T/h.vhd" 'vhd: fixed disk of 40000000 bytes does not fit' "fixed disk larger than its file"
# H6 a BAT entry past the end of the file, or inside the footer copy
for v in 0x7fffffff 0; do
	cp "$T/dyn.vhd" "$T/h.vhd"
	p raw "$T/h.vhd" 1540 "$(printf %08x $v)"
	bad_img "$T/h.vhd" 'vhd: BAT entry 1: block at' "H6 BAT entry $v"
done
# truncation sweep over the metadata and into the first block, and the end
sz=$(stat -c %s "$T/dyn.vhd")
ok_all=1
for n in $(seq 0 512 8192) $((sz - 1024)) $((sz - 513)) $((sz - 1)); do
	head -c $n "$T/dyn.vhd" >"$T/t.vhd"
	ei convert -f vhd -O raw "$T/t.vhd" "$T/o/out.raw" >/dev/null 2>"$T/.err"
	rc=$?
	if [ $rc -ne 1 ] || ! file_matches '^edgeimg convert: .*vhd: ' "$T/.err" || [ -n "$(listing)" ]; then
		ok_all=0
		echo "truncated at $n: exit $rc: $(cat "$T/.err")"
	fi
done
check "truncation sweep: every cut is refused cleanly" test $ok_all -eq 1

# --- G1 / G2 ------------------------------------------------------------------
: >"$T/g0"
printf conectix >"$T/g1"
head -c 4096 /dev/zero >"$T/g2"
head -c 4096 /dev/zero | tr '\0' '\377' >"$T/g3"
for g in g0 g1 g2 g3; do
	run_ei 1 -- info -f vhd "$T/$g"
	has "G1 $g refused" 'vhd: ' "$ERR"
done
run_ei 1 -- info "$T/g1"
has "G1 magic only, probed" 'vhd: file of 8 bytes is shorter' "$ERR"
# other formats' bytes given as vhd
qemu-img convert -O qcow2 "$T/disk.raw" "$T/x.qcow2"
qemu-img convert -O vdi "$T/disk.raw" "$T/x.vdi"
qemu-img convert -O vmdk "$T/disk.raw" "$T/x.vmdk"
qemu-img convert -O vhdx "$T/disk.raw" "$T/x.vhdx"
for x in x.qcow2 x.vdi x.vmdk x.vhdx disk.raw; do
	run_ei 1 -- info -f vhd "$T/$x"
	has "G2 $x as vhd" 'vhd: no "conectix" footer' "$ERR"
done
# and the vhd given as every other declared format: a clean refusal
for f in $(sed -nE 's/^features: //p' <<<"$(ei --version)" | tr ' ' '\n' | sed -nE 's/^FORMAT_//p' | tr 'A-Z' 'a-z'); do
	[ "$f" = vhd ] && continue
	for img in dyn.vhd fix.vhd; do
		run_ei 1 -- info -f "$f" "$T/$img"
		has "G2 $img as $f: refused with a message" "." "$ERR"
	done
done

# qemu's name for the format is accepted by -f
run_ei 0 -- info -f vpc --json "$T/dyn.vhd"
has "-f vpc is -f vhd" '"format": "vhd"' "$OUT"

done_tests
