#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# mkdisk.sh OUT [SIZE_MIB]: a sample GPT disk for tests and the demo.
# Partition 1 is ext4 made by mkfs.ext4 -d over real files (this source
# tree, the system's licence texts, 3 MB of random bytes); partition 2 is
# left empty.  Needs sfdisk and mkfs.ext4.
set -eu
out=$1 mib=${2:-32}
top=$(cd "$(dirname "$0")/.." && pwd)
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
mkdir -p "$d/tree"
cp -r "$top/src" "$top/formats" "$d/tree/"
cp -r /usr/share/common-licenses "$d/tree/" 2>/dev/null || true
head -c 3000000 /dev/urandom >"$d/tree/random.bin"
half=$(((mib - 4) / 2))
rm -f "$out"
truncate -s "${mib}M" "$out"
printf 'label: gpt\nstart=2048, size=%d, type=L\nstart=%d, type=L\n' \
	$((half * 2048)) $((2048 + half * 2048)) | sfdisk -q "$out" >/dev/null
mkfs.ext4 -q -F -d "$d/tree" "$d/p1" "${half}M" >/dev/null
dd if="$d/p1" of="$out" bs=512 seek=2048 conv=notrunc,sparse status=none
