#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# seed-vmdk.sh DIR: small VMDK images of each variant for the vmdk fuzzer
# (made by qemu-img, plus a VMware-style stream with its grain directory
# in a footer).  seed-vmdk.sh --footer IN OUT rewrites the qemu-img
# streamOptimized image IN in that VMware layout (used by tests/cli/vmdk.sh).
set -eu

# VMware's stream layout: header with gdOffset = GD_AT_END, descriptor,
# each grain table's grains then a grain-table marker and the table, a
# grain-directory marker and the directory, a footer, end of stream.
footer() {
	python3 - "$1" "$2" <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read()
ver, flags, cap, gran, doff, dsz, gtn, rgd, gdo, go = \
    struct.unpack_from('<IIQQQQIQQQ', d, 4)
span = gtn * gran
gdn = -(-cap // span)
gd = struct.unpack_from('<%dI' % gdn, d, gdo * 512)
out = bytearray(d[:go * 512])
out[(doff + dsz) * 512:] = bytes(len(out) - (doff + dsz) * 512)
def pad():
    out.extend(bytes(-len(out) % 512))
def marker(n, kind):
    out.extend(struct.pack('<QII', n, 0, kind) + bytes(496))
newgd = []
for gts in gd:
    if not gts:
        newgd.append(0)
        continue
    gt = list(struct.unpack_from('<%dI' % gtn, d, gts * 512))
    for j, g in enumerate(gt):
        if g:
            size = struct.unpack_from('<I', d, g * 512 + 8)[0]
            gt[j] = len(out) // 512
            out.extend(d[g * 512:g * 512 + 12 + size])
            pad()
    marker(-(-gtn * 4 // 512), 1)
    newgd.append(len(out) // 512)
    out.extend(struct.pack('<%dI' % gtn, *gt))
    pad()
marker(-(-gdn * 4 // 512), 2)
gdpos = len(out) // 512
out.extend(struct.pack('<%dI' % gdn, *newgd))
pad()
hdr = bytearray(d[:512])
struct.pack_into('<I', hdr, 8, flags & ~2)      # no redundant GD
struct.pack_into('<Q', hdr, 48, 0)
foot = bytearray(hdr)
struct.pack_into('<Q', foot, 56, gdpos)
struct.pack_into('<Q', hdr, 56, 0xffffffffffffffff)
out[:512] = hdr
marker(1, 3)
out.extend(foot)
marker(0, 0)
open(sys.argv[2], 'wb').write(out)
PY
}

if [ "$1" = "--footer" ]; then
	footer "$2" "$3"
	exit
fi

d=$1
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
# 4 MiB disk: a few grains of data, one of them partial
qemu-img create -q -f raw "$t/r.raw" 4M
printf 'seed' | dd of="$t/r.raw" bs=1 seek=0 conv=notrunc status=none
head -c 70000 /dev/urandom | dd of="$t/r.raw" bs=1 seek=1000000 conv=notrunc status=none
printf 'end' | dd of="$t/r.raw" bs=1 seek=4194000 conv=notrunc status=none
for s in monolithicSparse streamOptimized; do
	qemu-img convert -q -f raw -O vmdk -o subformat=$s "$t/r.raw" "$d/$s.vmdk"
done
qemu-img convert -q -f raw -O vmdk -o subformat=monolithicSparse,zeroed_grain=on \
	"$t/r.raw" "$d/zeroed.vmdk"
qemu-img convert -q -f raw -O vmdk -o compat6 "$t/r.raw" "$d/compat6.vmdk"
footer "$d/streamOptimized.vmdk" "$d/stream-footer.vmdk"
# descriptor files alone (their extents are references, refused here)
for s in monolithicFlat twoGbMaxExtentSparse; do
	qemu-img convert -q -f raw -O vmdk -o subformat=$s "$t/r.raw" "$t/$s.vmdk"
	cp "$t/$s.vmdk" "$d/desc-$s.vmdk"
done
