#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# seed-pack.sh DIR: inputs for the packed views' fuzzer: qcow2 files with
# compressed clusters as qemu-img convert -c writes them (zlib, zstd;
# 4 KiB clusters) and as edgeimg writes them (another zlib level: blocks
# that do not reproduce), of a small generated disk; squashfs files as
# mksquashfs writes them with xz (a BCJ filter) and lz4 (-Xhc), of a small
# tree.
. "$(dirname "$0")/seedlib.sh"
python3 - "$t" <<'PY'
import random, sys
d = sys.argv[1]
r = random.Random(9)
disk = bytearray(r.randbytes(8 << 10)) + b"packed seed text\n" * 1500 + bytes(8 << 10)
disk += disk[:9000]
open(f"{d}/disk", "wb").write(disk + bytes(-len(disk) % 4096))
import os
os.makedirs(f"{d}/tree/bin")
open(f"{d}/tree/text", "wb").write(b"squashfs seed text\n" * 900)
open(f"{d}/tree/bin/code", "wb").write(bytes(r.randrange(256) for _ in range(3000)) * 3)
PY
qemu-img convert -c -O qcow2 -o cluster_size=4096 "$t/disk" "$dir/pack-zlib.qcow2"
qemu-img convert -c -O qcow2 -o cluster_size=4096,compression_type=zstd "$t/disk" "$dir/pack-zstd.qcow2"
"$ei" convert --force -c -O qcow2 -o cluster_size=4096,level=9 "$t/disk" "$dir/pack-ei.qcow2"
for c in "xz -Xbcj x86" "lz4 -Xhc"; do
	# shellcheck disable=SC2086 # the codec and its options
	mksquashfs "$t/tree" "$dir/pack-${c%% *}.sqfs" -comp $c -b 4096 -noappend -quiet \
		-no-progress -all-root
done
