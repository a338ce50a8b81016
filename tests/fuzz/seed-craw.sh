#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# seed-craw.sh DIR: small gzip, xz and zstd streams of a raw disk, single
# and concatenated, and edgeimg's own (seekable, multi-block), for fuzz-craw.
set -eu
out=$1
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
python3 -c "import sys; sys.stdout.buffer.write(bytes((i * 7 + i // 4096) & 0xff for i in range(32768)) + bytes(65536) + b'edgeimg' * 1000)" >"$w/disk.img"
gzip -c "$w/disk.img" >"$out/disk.gz"
{ head -c 20000 "$w/disk.img" | gzip -1 -c; tail -c +20001 "$w/disk.img" | gzip -c; } >"$out/two.gz"
if command -v xz >/dev/null; then
	xz -c "$w/disk.img" >"$out/disk.xz"
	xz -c --check=sha256 -0 "$w/disk.img" >"$out/sha.xz"
	cat "$out/disk.xz" "$out/sha.xz" >"$out/two.xz"
fi
if command -v zstd >/dev/null; then
	zstd -q -c "$w/disk.img" >"$out/disk.zst"
	head -c 50000 "$w/disk.img" | zstd -q -c --no-check >"$out/pipe.zst"
	cat "$out/disk.zst" "$out/pipe.zst" >"$out/two.zst"
fi
# edgeimg's own: a seekable .zst (seek table, recipe frame) and a multi-block
# .xz (an index of several blocks), both read at random through the index.
# made by the edgeimg next to DIR (or $EDGEIMG), when there is one.
ei=${EDGEIMG:-$(cd "$(dirname "$out")/.." && pwd)/edgeimg}
if [ -x "${ei%% *}" ]; then
	$ei convert -O craw -o compression=zstd,level=1,block_size=64k "$w/disk.img" "$out/seekable.zst" 2>/dev/null || true
	$ei convert -O craw -o compression=xz,level=0,block_size=64k "$w/disk.img" "$out/blocks.xz" 2>/dev/null || true
	$ei convert -O craw -o compression=gzip,level=1,block_size=64k "$w/disk.img" "$out/pieces.gz" 2>/dev/null || true
fi
