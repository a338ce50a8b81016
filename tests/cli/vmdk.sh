#!/usr/bin/env bash
# requires: FORMAT_VMDK
# SPDX-License-Identifier: MIT
# VMDK reader: every subformat qemu-img writes (monolithicSparse,
# streamOptimized, monolithicFlat, twoGbMaxExtentSparse/Flat, compat6,
# hwversion, zeroed grains), multi-extent descriptors, a VMware-style
# stream with a footer, delta disks, the --allow-refs policy, and every
# hostile row (V1-V12, G1, G2), judged by qemu-img.
. "$(dirname "$0")/../lib.sh"
need qemu-img qemu-io sfdisk mkfs.ext4 python3 cmp /usr/bin/time

SEED=$TOP/tests/fuzz/seed-vmdk.sh
mkdisk "$T/disk.raw" 24
mkdir -p "$T/o" "$T/v" "$T/j" "$T/h"
V=$T/v

# judge IMG NAME [--allow-refs] [--big]: convert, compare and info agree
# with qemu-img.  --big compares with qemu-img compare (hole-aware) instead
# of cmp; the info --json pairs are checked together at the end.
nj=0
judge() {
	local img=$1 d=$2 a='' big=''
	shift 2
	for o in "$@"; do
		[ "$o" = --big ] && big=1 || a=$o
	done
	rm -f "$T/q.raw" "$T/e.raw"
	qemu-img convert -f vmdk -O raw "$img" "$T/q.raw"
	run_ei 0 -- convert $a -O raw "$img" "$T/e.raw"
	if [ -n "$big" ]; then
		check "$d: same disk as qemu-img convert" \
			qemu-img compare -q -f raw -F raw "$T/q.raw" "$T/e.raw"
	else
		check "$d: same bytes as qemu-img convert" cmp -s "$T/q.raw" "$T/e.raw"
	fi
	check "$d: holes kept ($(stat -c %b "$T/e.raw") <= $(stat -c %b "$T/q.raw") + 256 blocks)" \
		test "$(stat -c %b "$T/e.raw")" -le $(($(stat -c %b "$T/q.raw") + 256))
	run_ei 0 -- compare $a "$img" "$T/q.raw"
	has "$d: compare says identical" '^Images are identical\.$' "$OUT"
	nj=$((nj + 1))
	qemu-img info -f vmdk --output=json "$img" >"$T/j/$nj.q"
	run_ei 0 -- info --json $a "$img"
	echo "$OUT" >"$T/j/$nj.e"
	echo "$d" >"$T/j/$nj.name"
}

# reject IMG PATTERN DESC [ARGS...]: info and convert exit 1 naming the
# problem and leave no output.
reject() {
	local img=$1 pat=$2 d=$3
	shift 3
	run_ei 1 -- info "$@" "$img"
	has "$d: info" "$pat" "$ERR"
	run_ei 1 -- convert "$@" -O raw "$img" "$T/o/out.raw"
	has "$d: convert" "$pat" "$ERR"
	check "$d: no output left" test -z "$(listing)"
}

# fail_read IMG PATTERN DESC: opens, but reading the disk fails cleanly.
fail_read() {
	run_ei 1 -- convert -O raw "$1" "$T/o/out.raw"
	has "$3" "$2" "$ERR"
	check "$3: no output left" test -z "$(listing)"
}

# --- every subformat qemu-img writes ---------------------------------------
for s in monolithicSparse streamOptimized monolithicFlat twoGbMaxExtentSparse \
	twoGbMaxExtentFlat; do
	qemu-img convert -q -f raw -O vmdk -o subformat=$s "$T/disk.raw" "$V/$s.vmdk"
done
judge "$V/monolithicSparse.vmdk" monolithicSparse
judge "$V/streamOptimized.vmdk" streamOptimized
for s in monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat; do
	reject "$V/$s.vmdk" "vmdk: extent file '$s-[fs]?[0-9]*(flat)?\.vmdk' refused: .*need --allow-refs" \
		"$s without --allow-refs"
	judge "$V/$s.vmdk" "$s" --allow-refs
done
run_ei 0 -- info --allow-refs "$V/monolithicFlat.vmdk"
has "a descriptor file is probed as vmdk" '^file format: vmdk$' "$OUT"
# a real split: 2 GiB + 1 MiB gives two extent files
qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse "$V/split.vmdk" 2049M
qemu-io -c 'write -P 0x61 2047M 2M' -c 'write -P 0x62 5M 64k' "$V/split.vmdk" >/dev/null
judge "$V/split.vmdk" "twoGbMaxExtentSparse, 2 extents" --allow-refs --big
# three small extents of each kind, one flat file holding two at offsets
head -c 8M "$T/disk.raw" >"$V/x1.raw"
for i in 2 3; do
	dd if="$T/disk.raw" of="$V/x$i.raw" bs=1M skip=$(((i - 1) * 8)) count=8 status=none
done
for i in 1 2 3; do
	qemu-img convert -q -f raw -O vmdk -o subformat=twoGbMaxExtentSparse "$V/x$i.raw" "$V/p$i.vmdk"
done
{ head -c 1M /dev/urandom; cat "$V/x2.raw" "$V/x3.raw"; } >"$V/both.bin"
desc() {
	# (no blank line before the extents: QEMU's sscanf would read the
	# next line through it and count that extent twice)
	printf '# Disk DescriptorFile\nversion=1\nCID=%s\nparentCID=ffffffff\ncreateType="%s"\n# Extent description\n' "$1" "$2"
	shift 2
	printf '%s\n' "$@"
}
desc 1234abcd twoGbMaxExtentSparse 'RW 16384 SPARSE "p1-s001.vmdk"' \
	'RW 16384 SPARSE "p2-s001.vmdk"' 'RW 16384 SPARSE "p3-s001.vmdk"' >"$V/multi.vmdk"
judge "$V/multi.vmdk" "three sparse extents" --allow-refs
desc fedcba98 twoGbMaxExtentFlat 'RW 16384 FLAT "x1.raw" 0' \
	'RW 16384 FLAT "both.bin" 2048' 'RW 16384 FLAT "both.bin" 18432' >"$V/multif.vmdk"
judge "$V/multif.vmdk" "three flat extents at offsets" --allow-refs
# a flat file shorter than its extent reads as zeros past its end (QEMU)
desc 1 monolithicFlat 'RW 20480 FLAT "x1.raw" 0' >"$V/short.vmdk"
judge "$V/short.vmdk" "flat extent past the end of its file" --allow-refs
# options that change the header or descriptor
qemu-img convert -q -f raw -O vmdk -o compat6 "$T/disk.raw" "$V/c6.vmdk"
judge "$V/c6.vmdk" compat6
qemu-img convert -q -f raw -O vmdk -o hwversion=10,adapter_type=lsilogic "$T/disk.raw" "$V/hw.vmdk"
judge "$V/hw.vmdk" "hwversion=10"
qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized,compat6 "$T/disk.raw" "$V/sc6.vmdk"
judge "$V/sc6.vmdk" "streamOptimized compat6"
# zeroed grains (GTE 1) read as zeros
qemu-img convert -q -f raw -O vmdk -o zeroed_grain=on "$T/disk.raw" "$V/zg.vmdk"
qemu-io -c 'write -z 4M 3M' -c 'write -P 0x77 9M 64k' "$V/zg.vmdk" >/dev/null
judge "$V/zg.vmdk" "zeroed grains"
# a size that is not a whole grain: the last grain is partial
qemu-img create -q -f raw "$T/odd.raw" 5245440
printf 'tail' | dd of="$T/odd.raw" bs=1 seek=5245400 conv=notrunc status=none
for s in monolithicSparse streamOptimized; do
	qemu-img convert -q -f raw -O vmdk -o subformat=$s "$T/odd.raw" "$V/odd-$s.vmdk"
	judge "$V/odd-$s.vmdk" "partial last grain, $s"
done
# VMware's stream layout: gdOffset = GD_AT_END, tables and footer at the end
bash "$SEED" --footer "$V/streamOptimized.vmdk" "$V/footer.vmdk"
judge "$V/footer.vmdk" "stream with a footer (GD_AT_END)"
# a descriptor file that only qemu's probe rule recognises
sed '1s/.*/# written by hand/' "$V/monolithicFlat.vmdk" >"$V/hand.vmdk"
run_ei 0 -- info --allow-refs "$V/hand.vmdk"
has "a descriptor without the usual first line is vmdk" '^file format: vmdk$' "$OUT"
# a KDMV header of capacity 0 that points at a descriptor (QEMU reads it)
python3 - "$V/monolithicSparse.vmdk" "$V/monolithicFlat.vmdk" "$V/ptr.vmdk" <<'PY'
import struct, sys
h = bytearray(open(sys.argv[1], 'rb').read(512))
struct.pack_into('<Q', h, 12, 0)
open(sys.argv[3], 'wb').write(h + open(sys.argv[2], 'rb').read())
PY
reject "$V/ptr.vmdk" "vmdk: extent file 'monolithicFlat-flat\.vmdk' refused: .*--allow-refs" \
	"a header pointing at a descriptor, without --allow-refs"
judge "$V/ptr.vmdk" "a header pointing at a descriptor" --allow-refs
# V6 createType vmfs: one VMFS (flat) extent, refused without --allow-refs
sed -e 's/createType="monolithicFlat"/createType="vmfs"/' \
	-e 's/FLAT "\(.*\)" 0$/VMFS "\1"/' "$V/monolithicFlat.vmdk" >"$V/vmfs.vmdk"
reject "$V/vmfs.vmdk" "vmdk: extent file .* need --allow-refs" "V6 createType vmfs refused by default"
judge "$V/vmfs.vmdk" "V6 createType vmfs allowed" --allow-refs

# --- V10 delta disks ----------------------------------------------------------
qemu-img create -q -f vmdk -b monolithicSparse.vmdk -F vmdk "$V/delta.vmdk"
qemu-io -c 'write -P 0x5a 1M 128k' -c 'write -P 0x5b 20M 64k' "$V/delta.vmdk" >/dev/null
reject "$V/delta.vmdk" "vmdk: parent \(delta disk\) 'monolithicSparse\.vmdk' refused: .*--allow-refs" \
	"V10 delta disk refused by default"
judge "$V/delta.vmdk" "V10 delta disk with --allow-refs" --allow-refs

# --- hostile files, all made by one python run --------------------------------
# Each entry: name, source, list of edits: (offset, struct format, value)
# on the file, ('desc', text) for the embedded descriptor, ('sub', old,
# new) inside it, ('gte', n, value) for the grain table entry of the nth
# stored grain, ('grain', n, bytes) for the nth compressed grain's data,
# ('cut', size) to truncate.
cat >"$T/h.py" <<'PY'
import struct, sys, zlib
V, H = sys.argv[1], sys.argv[2]
S, Z, F, D = 'monolithicSparse', 'streamOptimized', 'footer', 'delta'
def grains(b):          # (file offset, offset of its entry) of stored grains
    cap, gran = struct.unpack_from('<QQ', b, 12)
    gtn = struct.unpack_from('<I', b, 44)[0]
    gdo = struct.unpack_from('<Q', b, 56)[0]
    out = []
    for gt in struct.unpack_from('<%dI' % -(-cap // (gtn * gran)), b, gdo * 512):
        for i in range(gtn if gt else 0):
            g = struct.unpack_from('<I', b, gt * 512 + 4 * i)[0]
            if g > 1:
                out.append((g * 512, gt * 512 + 4 * i))
    return sorted(out)
def desc(t):
    return '# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\n' + t
EOS = 0
big = 'x' * 70
cases = {
    'v11-0': (S, [(4, '<I', 0)]), 'v11-4': (S, [(4, '<I', 4)]),
    'v11-max': (S, [(4, '<I', 0xffffffff)]),
    'v1-max': (S, [(20, '<Q', 2**64 - 1)]), 'v1-0': (S, [(20, '<Q', 0)]),
    'v1-100': (S, [(20, '<Q', 100)]), 'v1-4m': (S, [(20, '<Q', 0x400000)]),
    'v2-max': (S, [(44, '<I', 0xffffffff)]), 'v2-513': (S, [(44, '<I', 513)]),
    'v12-0': (S, [(44, '<I', 0)]),
    'v12-wrap': (S, [(44, '<I', 512), (20, '<Q', 0x800000)]),
    'v3': (S, [(12, '<Q', 0xffffffff), (44, '<I', 1)]),
    'gd-huge': (S, [(12, '<Q', 7 * 2**20 * 128), (44, '<I', 1)]),
    'cap-max': (S, [(12, '<Q', 2**63 - 1)]),
    'v4-off2': (S, [(28, '<Q', 2)]), 'v4-off0': (S, [(28, '<Q', 0)]),
    'v4-size': (S, [(36, '<Q', 2048)]),
    'gd-0': (S, [(56, '<Q', 0)]), 'gd-high': (S, [(56, '<Q', 0xffffffffffff0000)]),
    'gd-eof': (S, [(56, '<Q', 0x40000000)]),
    'grain-off': (S, [(64, '<Q', 0x100000)]),
    'flags': (S, [(8, '<I', 0x00040003)]), 'compress': (S, [(77, '<H', 2)]),
    'nl': (S, [(73, '<I', 0x0a0d0a0a)]), 'cowd': (S, [(0, '>I', 0x434f5744)]),
    'v5-vmfs': (S, [('desc', desc('createType="monolithicSparse"\nRW 12582912 VMFS "dummy.vmdk" 1\n'))]),
    'v5-abs': (S, [('desc', desc('createType="monolithicSparse"\nRW 49152 SPARSE "/etc/passwd"\n'))]),
    'v5-dotdot': (S, [('desc', desc('createType="monolithicSparse"\nRW 49152 SPARSE "../x"\n'))]),
    'v5-two': (S, [('desc', desc('createType="monolithicSparse"\nRW 100 SPARSE "a.vmdk"\nRW 100 SPARSE "b.vmdk"\n'))]),
    'v6-vmfs': (S, [('desc', desc('createType="vmfs"\n'))]),
    'v6-2gb': (S, [('desc', desc('createType="twoGbMaxExtentSparse"\n'))]),
    'v6-flat': (S, [('desc', desc('createType="monolithicFlat"\n'))]),
    'v6-unknown': (S, [('desc', desc('createType="nonsense"\n'))]),
    'v6-long': (S, [('desc', desc('createType="%s"\n' % big))]),
    'no-cid': (S, [('desc', '# Disk DescriptorFile\nversion=1\nparentCID=ffffffff\n')]),
    'desc-v9': (S, [('desc', '# Disk DescriptorFile\nversion=9\nCID=1\nparentCID=ffffffff\n')]),
    'cid-twice': (S, [('desc', desc('CID=2\n'))]),
    'v10-nohint': (S, [('sub', 'parentCID=ffffffff', 'parentCID=0badcafe')]),
    'v10-abs': (D, [('sub', '"monolithicSparse.vmdk"', '"/etc/passwd"')]),
    'v10-dotdot': (D, [('sub', '"monolithicSparse.vmdk"', '"../x"')]),
    'v10-json': (D, [('sub', '"monolithicSparse.vmdk"', '"json:x"')]),
    'v7-missing': (F, [('cut', -1536)]),
    'v7-garbage': (F, [(-1024, '>I', 0x58585858)]),
    'v7-again': (F, [(-1024 + 56, '<Q', 2**64 - 1)]),
    'v7-gd-eof': (F, [(-1024 + 56, '<Q', 0x7fffffff)]),
    'v7-nofooter': (Z, [(56, '<Q', 2**64 - 1)]),
    'v7-tiny': (F, [('cut', 2000)]),
    'v8-half': (S, [('cut', 'half')]),
    'gte-eof': (S, [('gte', 3, 0xfffffff0)]),
    'v9-huge': (Z, [('gsize', 0, 0x7fffffff)]),
    'v9-zero': (Z, [('gsize', 0, 0)]),
    'v9-eof': (Z, [('gsize', -1, 'eof')]),
    'v9-big': (Z, [('grain', 0, zlib.compress(b'\1' * 70000))]),
    'v9-short': (Z, [('grain', 0, zlib.compress(b'\1' * 1000))]),
    'v9-bad': (Z, [('grain', 0, b'\xff' * 64)]),
}
src = {}
for name, (s, edits) in cases.items():
    if s not in src:
        src[s] = open('%s/%s.vmdk' % (V, s), 'rb').read()
    b = bytearray(src[s])
    for ed in edits:
        if ed[0] in ('desc', 'sub'):
            dsz = struct.unpack_from('<Q', b, 36)[0] * 512
            t = ed[1].encode() if ed[0] == 'desc' else \
                bytes(b[512:512 + dsz]).replace(ed[1].encode(), ed[2].encode())
            b[512:512 + dsz] = t[:dsz].ljust(dsz, b'\0')
        elif ed[0] == 'cut':
            b = b[:len(b) // 2 if ed[1] == 'half' else ed[1]]
        elif ed[0] == 'gte':
            struct.pack_into('<I', b, grains(b)[ed[1]][1], ed[2])
        elif ed[0] == 'gsize':
            g = grains(b)[ed[1]][0]
            v = len(b) - g - 12 + 100 if ed[2] == 'eof' else ed[2]
            struct.pack_into('<I', b, g + 8, v)
        elif ed[0] == 'grain':
            g = grains(b)[ed[1]][0]
            struct.pack_into('<I', b, g + 8, len(ed[2]))
            b[g + 12:g + 12 + len(ed[2])] = ed[2]
        else:
            off = ed[0] if ed[0] >= 0 else len(b) + ed[0]
            struct.pack_into(ed[1], b, off, ed[2])
    open('%s/%s.vmdk' % (H, name), 'wb').write(b)
# where the grain data of S and Z ends, for the truncation sweeps
for s in (S, Z):
    b = src[s]
    g = grains(b)[-1][0]
    comp = struct.unpack_from('<H', b, 77)[0]
    gran = struct.unpack_from('<Q', b, 20)[0]
    print(g + 12 + struct.unpack_from('<I', b, g + 8)[0] if comp else g + gran * 512)
PY
# the delta disk's hint must stay a plain name: the cases live next to it
ends=$(python3 "$T/h.py" "$V" "$T/h") || bad "making the hostile files failed"
cp "$T"/h/v10-*.vmdk "$V/"
h=$T/h

for c in 0 4 4294967295; do
	n=${c/4294967295/max}
	reject "$h/v11-$n.vmdk" "vmdk: version $c is not 1, 2 or 3" "V11 version $c"
done
for c in max 0 100 4m; do
	reject "$h/v1-$c.vmdk" 'vmdk: Invalid granularity [0-9]+: not a power of two' "V1 granularity $c"
done
reject "$h/v2-max.vmdk" 'vmdk: numGTEsPerGT 4294967295 is not in 1\.\.512' "V2 numGTEsPerGT 0xffffffff"
reject "$h/v2-513.vmdk" 'vmdk: numGTEsPerGT 513 is not in 1\.\.512' "V2 numGTEsPerGT 513"
reject "$h/v12-0.vmdk" 'vmdk: numGTEsPerGT 0 is not in 1\.\.512' "V12 numGTEsPerGT 0"
reject "$h/v12-wrap.vmdk" 'vmdk: Invalid granularity 8388608' "V12 numGTEsPerGT x granularity = 2^32"
reject "$h/v3.vmdk" 'vmdk: L1 size too big: a grain directory of 33554432 entries' \
	"V3 capacity 0xffffffff, numGTEsPerGT 1"
reject "$h/gd-huge.vmdk" 'vmdk: grain directory at sector [0-9]+ \(29360128 bytes\) lies past the end' \
	"a 28 MiB grain directory past EOF"
if [ -z "${SAN:-}" ]; then
	for c in v3 gd-huge; do
		/usr/bin/time -f %M -o "$T/rss" $EDGEIMG convert -O raw "$h/$c.vmdk" "$T/o/x" >/dev/null 2>&1
		check "$c: peak RSS $(tail -n 1 "$T/rss") KiB < 64 MiB" test "$(tail -n 1 "$T/rss")" -lt 65536
	done
fi
reject "$h/cap-max.vmdk" 'vmdk: capacity 9223372036854775807 sectors exceeds the limit' "capacity 2^63-1"
reject "$h/v4-off2.vmdk" 'vmdk: descriptorOffset 2 / descriptorSize 20: the descriptor must start at sector 1' \
	"V4 descriptorOffset 2"
reject "$h/v4-off0.vmdk" 'vmdk: descriptorOffset 0 ' "V4 descriptorOffset 0"
reject "$h/v4-size.vmdk" 'vmdk: descriptorOffset 1 / descriptorSize 2048: .* 1\.\.2047 sectors' \
	"V4 descriptorSize 1 MiB"
reject "$h/gd-0.vmdk" 'vmdk: gdOffset 0 is invalid' "gdOffset 0"
reject "$h/gd-high.vmdk" 'vmdk: gdOffset 18446744073709486080 is invalid' "gdOffset 0xffffffffffff0000"
reject "$h/gd-eof.vmdk" 'vmdk: grain directory at sector 1073741824 .* lies past the end' "gdOffset past EOF"
reject "$h/grain-off.vmdk" 'vmdk: File truncated: grains start at sector 1048576' "grainOffset past EOF"
reject "$h/flags.vmdk" 'vmdk: flags 0x00040003 has unknown grain format bits 0x00040000' "unknown flag"
reject "$h/compress.vmdk" 'vmdk: compressAlgorithm 2 is not 0' "unknown compression"
reject "$h/nl.vmdk" 'vmdk: newline check bytes 0a 0a 0d 0a' "text-mode transfer damage"
reject "$h/cowd.vmdk" 'vmdk: .*VMDK3 \(COWD\) sparse extents are not supported' "VMDK3 refused"

# V5, V6: the descriptor embedded in a monolithic sparse file
reject "$h/v5-vmfs.vmdk" "vmdk: invalid extent line 'RW 12582912 VMFS \"dummy\.vmdk\" 1'" \
	"V5 malformed extent line"
reject "$h/v5-abs.vmdk" "vmdk: extent file '/etc/passwd' refused: only a plain file name" \
	"V5 extent file /etc/passwd" --allow-refs
reject "$h/v5-dotdot.vmdk" "vmdk: extent file '\.\./x' refused: only a plain file name" \
	"V5 extent file ../x" --allow-refs
reject "$h/v5-two.vmdk" 'vmdk: 2 extents in a monolithic sparse file' "V5 two extents"
for c in vmfs:vmfs 2gb:twoGbMaxExtentSparse flat:monolithicFlat unknown:nonsense; do
	reject "$h/v6-${c%%:*}.vmdk" "vmdk: createType '${c#*:}' in a monolithic sparse file" \
		"V6 embedded createType ${c#*:}"
done
reject "$h/v6-long.vmdk" 'vmdk: descriptor createType is 70 characters long, at most 64' "V6 createType of 70 characters"
reject "$h/no-cid.vmdk" 'vmdk: descriptor has no CID line' "descriptor without CID"
reject "$h/desc-v9.vmdk" "vmdk: descriptor version '9' is not 1, 2 or 3" "descriptor version 9"
reject "$h/cid-twice.vmdk" 'vmdk: descriptor names CID twice' "CID twice"

# V5, V6: descriptor files
M=$V/monolithicFlat.vmdk
mk() { sed "$1" "$M" >"$V/d.vmdk"; }
mk 's/createType="monolithicFlat"/createType="nonsense"/'
reject "$V/d.vmdk" "vmdk: unknown createType 'nonsense'" "V6 unknown createType" --allow-refs
mk 's/createType="monolithicFlat"/createType="monolithicSparse"/'
reject "$V/d.vmdk" "vmdk: createType 'monolithicSparse' is not supported in a descriptor file" \
	"V6 sparse createType in a descriptor file" --allow-refs
mk "s/createType=\"monolithicFlat\"/createType=\"$(printf 'y%.0s' $(seq 65))\"/"
reject "$V/d.vmdk" 'vmdk: descriptor createType is 65 characters long' "V6 65-character createType"
for n in /etc/passwd ../x json:x; do
	mk "s|\"monolithicFlat-flat.vmdk\"|\"$n\"|"
	reject "$V/d.vmdk" "vmdk: extent file '$n' refused: only a plain file name" "V5 flat extent $n" --allow-refs
done
mk 's/^RW .*/&\n&/'
reject "$V/d.vmdk" "vmdk: createType 'monolithicFlat' with 2 extents \(1 expected\)" \
	"V5 two extents in monolithicFlat" --allow-refs
mk 's/^RW \(.*\) 0$/RW \1/'
reject "$V/d.vmdk" 'vmdk: invalid extent line' "V5 FLAT without offset" --allow-refs
mk 's/^RW [0-9]* /RW -5 /'
reject "$V/d.vmdk" 'vmdk: invalid extent line' "V5 negative size" --allow-refs
mk 's/^RW [0-9]* /RW 99999999999999999999999 /'
reject "$V/d.vmdk" 'vmdk: invalid extent line' "V5 size overflow" --allow-refs
mk 's/^RW [0-9]* /RW 1099511627776000 /'
reject "$V/d.vmdk" 'vmdk: extents of more than' "V5 huge extent" --allow-refs
mk 's/FLAT/SESPARSE/'
reject "$V/d.vmdk" "vmdk: extent type 'SESPARSE' is not supported" "unsupported extent type" --allow-refs
mk '/^RW /d'
reject "$V/d.vmdk" "vmdk: createType 'monolithicFlat' with 0 extents" "no extents" --allow-refs
mk 's/^RW /NOACCESS /'
reject "$V/d.vmdk" 'vmdk: NOACCESS extents are not supported' "NOACCESS extent" --allow-refs
mk 's/FLAT/SPARSE/;s/ 0$//;s/monolithicFlat"/twoGbMaxExtentSparse"/'
reject "$V/d.vmdk" 'vmdk: .*sparse extent has no KDMV header' "a SPARSE extent that is a flat file" --allow-refs
check "fixture: one extent of 49152 sectors" grep -q '^RW 49152 ' "$V/twoGbMaxExtentSparse.vmdk"
sed 's/^RW 49152 /RW 49151 /' "$V/twoGbMaxExtentSparse.vmdk" >"$V/d.vmdk"
reject "$V/d.vmdk" "vmdk: extent .* holds 49152 sectors, the descriptor says 49151" \
	"sparse extent size mismatch" --allow-refs
# a descriptor of 1 MiB + 1 (QEMU reads the first 1 MiB - 1 bytes)
{ cat "$M"; head -c 1048577 /dev/zero | tr '\0' '#'; } >"$V/d.vmdk"
judge "$V/d.vmdk" "descriptor file over 1 MiB" --allow-refs

# V10 delta disks, hostile
reject "$h/v10-nohint.vmdk" 'vmdk: parentCID 0badcafe makes this a delta disk, but no parentFileNameHint' \
	"V10 parentCID without a parent name" --allow-refs
for c in abs:/etc/passwd dotdot:\\.\\./x json:json:x; do
	reject "$V/v10-${c%%:*}.vmdk" "vmdk: parent \(delta disk\) '${c#*:}' refused: only a plain file name" \
		"V10 parent named ${c#*:}" --allow-refs
done
cp "$V/delta.vmdk" "$V/delta2.vmdk"
pcid=$(grep -ao 'parentCID=[0-9a-f]*' "$V/delta2.vmdk")
sed -i "s/$pcid/parentCID=12345678/" "$V/delta2.vmdk"
reject "$V/delta2.vmdk" "vmdk: parent 'monolithicSparse\.vmdk' has CID [0-9a-f]+, this delta disk expects parentCID 12345678" \
	"V10 parent CID mismatch" --allow-refs
cp "$V/delta.vmdk" "$V/self.vmdk"
sed -i 's/parentFileNameHint="monolithicSparse.vmdk"/parentFileNameHint="self.vmdk"/' "$V/self.vmdk"
reject "$V/self.vmdk" 'chain deeper than 8 images' "V10 a delta disk that is its own parent" --allow-refs

# V7 footer
reject "$h/v7-missing.vmdk" 'vmdk: gdOffset says the grain directory is at the end, but there is no valid footer' \
	"V7 missing footer"
reject "$h/v7-garbage.vmdk" 'vmdk: gdOffset says .* no valid footer' "V7 garbage footer"
reject "$h/v7-again.vmdk" 'vmdk: footer gdOffset is 0xffffffffffffffff too' "V7 footer gdOffset at the end again"
reject "$h/v7-gd-eof.vmdk" 'vmdk: grain directory at sector 2147483647' "V7 footer gdOffset past EOF"
reject "$h/v7-nofooter.vmdk" 'vmdk: gdOffset says .* no valid footer' "V7 GD_AT_END without a footer"
reject "$h/v7-tiny.vmdk" 'vmdk: gdOffset says .* no room for a footer' "V7 2000-byte file"

# V8 truncated sparse
qemu-img create -q -f vmdk "$V/big.vmdk" 100G
truncate -s 10M "$V/big.vmdk"
reject "$V/big.vmdk" 'vmdk: File truncated: grains start at sector [0-9]+, the file has 10485760 bytes' \
	"V8 100 GiB image cut to 10 MiB"
run_ei 0 -- info "$h/v8-half.vmdk"
fail_read "$h/v8-half.vmdk" 'vmdk: grain at [0-9]+\+[0-9]+ lies past the end' "V8 grains past EOF"
fail_read "$h/gte-eof.vmdk" 'vmdk: grain at 2199023247360\+[0-9]+ lies past the end' "grain table entry past EOF"

# V9 stream grain markers
fail_read "$h/v9-huge.vmdk" 'vmdk: grain marker at [0-9]+: compressed size 2147483647 is not in 1\.\.131072' \
	"V9 compressed size 0x7fffffff"
fail_read "$h/v9-zero.vmdk" 'vmdk: grain marker at [0-9]+: compressed size 0 is not' "V9 compressed size 0"
fail_read "$h/v9-eof.vmdk" 'vmdk: grain marker at [0-9]+: compressed size [0-9]+ exceeds the [0-9]+ bytes left' \
	"V9 compressed size past EOF"
fail_read "$h/v9-big.vmdk" 'vmdk: grain [0-9]+ inflates to more than the grain size of 65536' \
	"V9 grain inflating past the grain size"
fail_read "$h/v9-short.vmdk" 'vmdk: grain [0-9]+ inflates to 1000 bytes, the disk needs' "V9 short grain"
fail_read "$h/v9-bad.vmdk" 'vmdk: grain [0-9]+: invalid zlib stream' "V9 invalid zlib stream"

# --- G1, G2 -------------------------------------------------------------------
: >"$T/g.vmdk"
reject "$T/g.vmdk" 'vmdk: a file of 0 bytes is too small' "G1 empty file" -f vmdk
printf 'KDMV' >"$T/g.vmdk"
reject "$T/g.vmdk" 'vmdk: .*ends inside the 79-byte header' "G1 only the magic"
head -c 1048576 /dev/zero >"$T/g.vmdk"
reject "$T/g.vmdk" 'vmdk: no KDMV header and no createType' "G1 all zeros" -f vmdk
head -c 1048576 /dev/zero | tr '\0' '\377' >"$T/g.vmdk"
reject "$T/g.vmdk" 'vmdk: no KDMV header and no createType' "G1 all 0xff" -f vmdk
printf '# Disk DescriptorFile\n' >"$T/g.vmdk"
reject "$T/g.vmdk" 'vmdk: no KDMV header and no createType' "G1 descriptor signature only"
head -c 4M "$T/disk.raw" >"$T/g.raw"
for f in qcow2 vpc vdi vhdx; do
	qemu-img convert -q -f raw -O $f "$T/g.raw" "$T/g.$f"
	reject "$T/g.$f" 'vmdk: no KDMV header and no createType' "G2 $f read as vmdk" -f vmdk
done
for f in qcow2 vhd vhdx vdi; do
	run_ei 1 -- info -f $f "$V/monolithicSparse.vmdk"
done

# --- truncation sweeps: header, descriptor, tables, grains, footer ------------
sweep() {
	local img=$1 from=$2 step=$3 end=$4 d=$5 n=0 okc=0 cut rc
	for ((cut = from; cut < end; cut += step)); do
		head -c $cut "$img" >"$T/cut.vmdk"
		ei convert -f vmdk -O raw "$T/cut.vmdk" "$T/o/out.raw" >/dev/null 2>"$T/cut.err"
		rc=$?
		n=$((n + 1))
		if [ $rc -eq 1 ] && file_matches '^edgeimg convert: ([^ ]*cut.vmdk: )?vmdk: ' "$T/cut.err" &&
		   [ -z "$(listing)" ]; then
			okc=$((okc + 1))
		else
			echo "  cut at $cut: rc $rc, $(cat "$T/cut.err")"
			rm -f "$T/o/"*
		fi
	done
	check "$d: $okc of $n cuts fail cleanly" test $okc -eq $n
}
read -r send zend <<<"$(echo $ends)"
sweep "$V/monolithicSparse.vmdk" 0 512 65536 "sweep monolithicSparse header, descriptor, tables"
sweep "$V/monolithicSparse.vmdk" 65536 $(((send - 65536) / 40 / 512 * 512 + 512)) "$send" \
	"sweep monolithicSparse grains"
sweep "$V/streamOptimized.vmdk" 1000 $((zend / 48 + 1)) "$zend" "sweep streamOptimized"
fsz=$(stat -c %s "$V/footer.vmdk")
sweep "$V/footer.vmdk" $((fsz - 16384)) 512 "$fsz" "sweep footer stream tables and footer"

# --- info --json against qemu-img, all variants at once ------------------------
python3 - "$T/j" "$nj" >"$T/j.out" <<'PY'
import json, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(1, n + 1):
    name = open('%s/%d.name' % (d, i)).read().strip()
    try:
        a, q = (json.load(open('%s/%d.%s' % (d, i, s))) for s in 'eq')
        assert a['format'] == 'vmdk' and a['virtual-size'] == q['virtual-size'], (a, q)
        ad, qd = a['format-specific']['data'], q['format-specific']['data']
        for k in ('cid', 'parent-cid', 'create-type'):
            assert ad[k] == qd[k], (k, ad[k], qd[k])
        assert len(ad['extents']) == len(qd['extents']), (ad, qd)
        for x, y in zip(ad['extents'], qd['extents']):
            for k in ('virtual-size', 'filename', 'cluster-size', 'format', 'compressed'):
                assert x.get(k) == y.get(k), (k, x, y)
        print('ok')
    except Exception as ex:
        print('FAIL %s: info --json differs from qemu-img: %r' % (name, ex))
PY
while read -r l; do
	[ "$l" = ok ] && ok || bad "${l#FAIL }"
done <"$T/j.out"
check "info --json compared for all $nj variants" test "$(wc -l <"$T/j.out")" -eq "$nj"

done_tests
