#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# seed-ext.sh DIR: small ext2/3/4 filesystems for the ext fuzzer, made by
# mke2fs -d from a tree with every file type, a sparse and a many-extent
# file, hard links, fast and slow symlinks, xattrs in the inode and in a
# block, and an htree directory: ext2, ext3, ext4 with 1 KiB and 4 KiB
# blocks, inline data, 128-byte inodes; without metadata checksums mostly,
# so that mutations reach the structures behind them.
set -eu
out=$1
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
s=$d/src
mkdir -p "$s/sub/deep" "$s/many"
printf 'hello\n' >"$s/a"
: >"$s/empty"
truncate -s 300K "$s/sparse"
printf 'x' | dd of="$s/sparse" bs=1 seek=200000 conv=notrunc status=none
for i in $(seq 0 9); do
	head -c 1024 /dev/urandom | dd of="$s/frag" bs=1024 seek=$((i * 3)) conv=notrunc status=none
done
head -c 20000 /dev/urandom >"$s/sub/data"
ln "$s/a" "$s/sub/hl"
ln -s a "$s/fast"
ln -s "$(printf 'y%.0s' $(seq 100))" "$s/slow"
mkfifo "$s/fifo"
mknod "$s/chr" c 4 5 2>/dev/null || true
for i in $(seq 1 60); do : >"$s/many/file-$i"; done
setfattr -n user.u -v 1 "$s/a" 2>/dev/null || true
setfattr -n trusted.t -v "$(head -c 300 /dev/zero | tr '\0' t)" "$s/sub" 2>/dev/null || true
mk() { # NAME SIZE MKE2FS-ARGS...
	local n=$1 sz=$2
	shift 2
	mke2fs -q -F -E root_owner=0:0 -d "$s" "$@" "$d/$n" "$sz" >/dev/null 2>&1 && cp "$d/$n" "$out/$n"
}
mk ext2-1k 400K -t ext2 -b 1024 -N 128
mk ext4-1k 400K -t ext4 -b 1024 -N 128 -O ^has_journal,^metadata_csum
mk ext4-4k 1M -t ext4 -b 4096 -N 128 -O ^has_journal,^metadata_csum
mk ext4-csum 400K -t ext4 -b 1024 -N 128 -O ^has_journal
mk ext4-inline 400K -t ext4 -b 1024 -N 128 -O ^has_journal,^metadata_csum,inline_data
mk ext4-128 400K -t ext4 -b 1024 -N 128 -I 128 -O ^has_journal,^metadata_csum
mk ext4-64bit 400K -t ext4 -b 1024 -N 128 -O ^has_journal,^metadata_csum,64bit,^flex_bg
