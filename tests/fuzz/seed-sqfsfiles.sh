#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# seed-sqfsfiles.sh DIR: small squashfs root filesystems for the file-view
# fuzzer, made by mksquashfs (every codec, small and large blocks, plain
# metadata, fragments or not, a sparse file, hard links, symlinks, a fifo,
# xattrs, one shared out of line).
set -eu
out=$1
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
t=$d/t
mkdir -p "$t/dir/sub" "$t/empty"
echo hello >"$t/dir/file"
seq -f 'line %04g' 2000 >"$t/text"
head -c 9000 /dev/urandom >"$t/rand"
truncate -s 40000 "$t/sparse"
printf 'x' | dd of="$t/sparse" bs=1 seek=20000 conv=notrunc status=none
ln "$t/dir/file" "$t/hard"
ln -s dir/file "$t/link"
mkfifo "$t/fifo" 2>/dev/null || true
v=$(printf 'v%.0s' $(seq 1 80))
setfattr -n user.a -v "$v" "$t/text" 2>/dev/null || true
setfattr -n user.a -v "$v" "$t/dir" 2>/dev/null || true
setfattr -n user.b -v 1 "$t/dir" 2>/dev/null || true
i=0
command -v mksquashfs >/dev/null || exit 0
for c in gzip xz lz4 zstd; do
	for o in "-b 4K" "-b 4K -noI -noF -noX -noD" "-b 4K -no-fragments" "-no-duplicates"; do
		i=$((i + 1))
		# shellcheck disable=SC2086
		mksquashfs "$t" "$out/sqfs-$c-$i.sqfs" -comp $c $o -noappend -quiet \
			-no-progress >/dev/null 2>&1 || true
	done
done
