#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# seed-reuse.sh DIR: containers for the reuse indexes' fuzzer, written by
# the edgeimg next to DIR (or $EDGEIMG) from a small generated disk: qcow2
# with zlib and zstd clusters (4 KiB), squashfs holding the disk (gzip,
# zstd; 4 KiB blocks) and a squashfs root filesystem.
. "$(dirname "$0")/seedlib.sh"
python3 - "$t" <<'PY'
import os, random, sys
d = sys.argv[1]
r = random.Random(5)
disk = bytearray(r.randbytes(12 << 10)) + b"reuse seed text\n" * 2048 + bytes(8 << 10)
disk += disk[:20000]                        # blocks that repeat
open(f"{d}/disk", "wb").write(disk + bytes(-len(disk) % 4096))
os.makedirs(f"{d}/tree/etc")
open(f"{d}/tree/etc/a", "wb").write(b"file a\n" * 3000)
open(f"{d}/tree/etc/b", "wb").write(r.randbytes(9000))
PY
"$ei" convert -c -O qcow2 -o cluster_size=4096 "$t/disk" "$dir/reuse-zlib.qcow2"
"$ei" convert -c -O qcow2 -o cluster_size=4096,compression_type=zstd "$t/disk" "$dir/reuse-zstd.qcow2"
"$ei" convert -O squashfs -o compression=gzip,block_size=4096 "$t/disk" "$dir/reuse-gzip.sqfs"
"$ei" convert -O squashfs -o compression=zstd,block_size=4096 "$t/disk" "$dir/reuse-zstd.sqfs"
SOURCE_DATE_EPOCH=1 "$ei" convert --files -O squashfs -o block_size=4096 "$t/tree" "$dir/reuse-tree.sqfs"
