#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# seed-squashfs.sh DIR: small valid squashfs images for the squashfs fuzzer,
# made by mksquashfs (every codec, small and large blocks, plain metadata,
# fragments, a symlink, a subdirectory, an xattr) and, when the build's
# edgeimg is next to the fuzz directory, by edgeimg (partitions=on too).
set -eu
out=$1
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
mkdir -p "$d/a/sub" "$d/b"
seq -f 'line %06g of a squashfs fuzz seed' 6000 | head -c 150000 >"$d/a/disk.img"
head -c 20000 /dev/urandom >>"$d/a/disk.img"
truncate -s 300000 "$d/a/disk.img"
echo hello >"$d/a/zz"
ln -s disk.img "$d/a/ln"
python3 -c "import os; os.setxattr('$d/a/zz', 'user.t', b'v')" 2>/dev/null || true
head -c 5000 "$d/a/disk.img" >"$d/b/vm.raw"
i=0
if command -v mksquashfs >/dev/null; then
	for c in gzip xz lz4 zstd; do
		for o in "" "-b 4K" "-noI -noF -always-use-fragments" "-no-fragments -nopad"; do
			i=$((i + 1))
			mksquashfs "$d/a" "$out/mk-$c-$i.sqfs" -comp $c $o -noappend \
				-quiet -no-progress >/dev/null 2>&1 || true
		done
	done
	mksquashfs "$d/b" "$out/mk-one.sqfs" -noappend -quiet -no-progress >/dev/null 2>&1 || true
fi
ei=$(dirname "$0")/../../build/edgeimg
[ -x "$out/../../edgeimg" ] && ei=$out/../../edgeimg
[ -n "${EDGEIMG:-}" ] && ei=$EDGEIMG
if [ -x "$ei" ]; then
	truncate -s 2M "$d/p.raw"
	printf 'label: gpt\nstart=34, size=1000, type=L\nstart=1100, size=2000, type=L\n' |
		sfdisk -q "$d/p.raw" >/dev/null 2>&1 || true
	dd if="$d/a/disk.img" of="$d/p.raw" bs=512 seek=40 conv=notrunc status=none
	for o in compression=gzip compression=zstd,block_size=4k compression=xz \
		compression=lz4,partitions=on partitions=on,block_size=8k; do
		i=$((i + 1))
		"$ei" convert -O squashfs -o "$o" "$d/p.raw" "$out/ei-$i.sqfs" >/dev/null 2>&1 || true
	done
fi
