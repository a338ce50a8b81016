#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# seed-pack.sh DIR: inputs for the packed views' fuzzer: qcow2 files with
# compressed clusters as qemu-img convert -c writes them (zlib, zstd;
# 4 KiB clusters) and as edgeimg writes them (another zlib level: blocks
# that do not reproduce), of a small generated disk; and a packed view,
# as a patch brings one, read back from the first.
. "$(dirname "$0")/seedlib.sh"
python3 - "$t" <<'PY'
import random, sys
d = sys.argv[1]
r = random.Random(9)
disk = bytearray(r.randbytes(8 << 10)) + b"packed seed text\n" * 1500 + bytes(8 << 10)
disk += disk[:9000]
open(f"{d}/disk", "wb").write(disk + bytes(-len(disk) % 4096))
PY
qemu-img convert -c -O qcow2 -o cluster_size=4096 "$t/disk" "$dir/pack-zlib.qcow2"
qemu-img convert -c -O qcow2 -o cluster_size=4096,compression_type=zstd "$t/disk" "$dir/pack-zstd.qcow2"
"$ei" convert -c -O qcow2 -o cluster_size=4096,level=9 "$t/disk" "$dir/pack-ei.qcow2"
