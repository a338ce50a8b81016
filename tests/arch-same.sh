#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# arch-same.sh A B: the two edgeimg binaries A and B (a command each: a
# runner may come first, "qemu-aarch64-static build/aarch64/edgeimg") write
# the same bytes: every writer with its compressions, the block map, and a
# delta patch, from the same inputs.  For the static x86_64 and aarch64
# builds: deterministic output on both architectures is what the delta
# design rests on (a device rebuilds what CI built).
set -u
a=$1 b=$2
top=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0

"$top/tests/mkdisk.sh" "$T/v1.raw" 24 || { echo "arch-same: setup error: mkdisk failed"; exit 1; }
cp "$T/v1.raw" "$T/v2.raw"
head -c 2000000 /dev/urandom | dd of="$T/v2.raw" bs=1M seek=13 conv=notrunc status=none

# writes BIN FMT: BIN writes FMT (an unknown -O is a usage error, 2)
writes() {
	$1 convert -O "$2" /nonexistent "$T/.w" >/dev/null 2>&1
	[ $? -ne 2 ]
}

# same NAME ARGS...: "ARGS" with OUT as the last argument, run by both
same() {
	local n=$1 i=0 bin
	shift
	for bin in "$a" "$b"; do
		i=$((i + 1))
		rm -f "$T/$i.$n" "$T/$i.$n.bmap"
		if ! $bin "$@" "$T/$i.$n" 2>"$T/err"; then
			echo "FAIL arch-same: $n: '$bin $*' failed: $(cat "$T/err")"
			fail=$((fail + 1))
			return
		fi
	done
	if cmp -s "$T/1.$n" "$T/2.$n"; then
		pass=$((pass + 1))
	else
		echo "FAIL arch-same: $n: the two binaries wrote different bytes"
		fail=$((fail + 1))
	fi
}

for bin in "$a" "$b"; do
	for f in raw qcow2 squashfs craw simg; do
		writes "$bin" $f && continue
		if [ -n "${CI:-}" ]; then
			# the generic boards build every writer: one missing is a failure
			echo "FAIL arch-same: '$bin' does not write $f"
			fail=$((fail + 1))
		else
			echo "arch-same: '$bin' does not write $f: its rows are not run"
		fi
	done
done
both() { writes "$a" "$1" && writes "$b" "$1"; }

same raw convert -O raw "$T/v1.raw"
if both qcow2; then
	same qcow2 convert -O qcow2 "$T/v1.raw"
	for c in zlib zstd; do
		same qcow2-$c convert -j 3 -c -O qcow2 -o compression_type=$c "$T/v1.raw"
	done
fi
if both squashfs; then
	for c in gzip xz lz4 zstd; do
		same squashfs-$c convert -j 3 -O squashfs -o compression=$c "$T/v1.raw"
	done
fi
if both craw; then
	for c in zstd xz gzip; do
		same craw-$c convert -j 3 -O craw -o compression=$c "$T/v1.raw"
	done
fi
both simg && same simg convert -O simg "$T/v1.raw"
# root filesystems: the files of the disk's ext4 partition (libext2fs)
if both squashfs; then
	for c in gzip xz lz4 zstd; do
		same rootfs-$c convert --files -j 3 -O squashfs -o compression=$c "$T/v1.raw"
	done
fi
same rootfs-tar convert --files -O tar "$T/v1.raw"
# incremental builds: v2's container given v1's (A's), on both machines
# the bytes of A's full build of v2
# reuse NAME CONVERT-OPTIONS...: v1's container as OLD, then same
reuse() {
	local n=$1
	shift
	if ! $a convert "$@" "$T/v1.raw" "$T/old.$n" 2>"$T/err" ||
	   ! $a convert "$@" "$T/v2.raw" "$T/full.$n" 2>>"$T/err"; then
		echo "FAIL arch-same: $n: setup: $(cat "$T/err")"
		fail=$((fail + 1))
		return
	fi
	same "$n" convert -j 3 --reuse "$T/old.$n" "$@" "$T/v2.raw"
	if cmp -s "$T/1.$n" "$T/full.$n"; then pass=$((pass + 1)); else
		echo "FAIL arch-same: $n: convert --reuse did not write the full build's bytes"
		fail=$((fail + 1))
	fi
	rm -f "$T/old.$n" "$T/full.$n"
}
both qcow2 && reuse reuse-qcow2 -c -O qcow2 -o compression_type=zstd
both squashfs && reuse reuse-squashfs -O squashfs -o compression=zstd
# the block map: its file beside the image
for i in 1 2; do
	bin=$a
	[ $i = 2 ] && bin=$b
	rm -f "$T/m$i.bmap"
	$bin convert -O raw --bmap "$T/m$i.bmap" "$T/v1.raw" "$T/m$i.raw" 2>"$T/err" ||
		echo "FAIL arch-same: bmap: $(cat "$T/err")"
done
if cmp -s "$T/m1.bmap" "$T/m2.bmap"; then pass=$((pass + 1)); else
	echo "FAIL arch-same: bmap: the two maps differ"
	fail=$((fail + 1))
fi
# a patch, and with -j
if $a help delta >/dev/null 2>&1; then
	same patch delta "$T/v1.raw" "$T/v2.raw"
	same patch-j3 delta -j 3 "$T/v1.raw" "$T/v2.raw"
	# programs for both machines: LZMA2 data frames after the x86 and the
	# ARM64 BCJ filter (the aarch64 one from the cross toolchain's libc)
	cp "$T/v1.raw" "$T/v3.raw"
	dd if="$(readlink -f "$(command -v sh)")" of="$T/v3.raw" bs=4096 seek=1024 conv=notrunc status=none
	arm=$(ls /usr/aarch64-linux-gnu/lib/libc.so.6 /usr/lib/aarch64-linux-gnu/libc.so.6 2>/dev/null | head -n 1)
	[ -n "$arm" ] && dd if="$arm" of="$T/v3.raw" bs=4096 seek=3072 conv=notrunc status=none
	if [ -z "$arm" ] && [ -n "${CI:-}" ]; then
		# CI installs the cross toolchain: without its libc no ARM64 chunk is tried
		echo "FAIL arch-same: patch-lzma: no aarch64 libc.so.6 of the cross toolchain to patch"
		fail=$((fail + 1))
	fi
	same patch-lzma delta --chunk 1M "$T/v1.raw" "$T/v3.raw"
	flags=$(python3 - "$T/1.patch-lzma" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
off = struct.unpack_from("<I", b, 12)[0]
for k in range(struct.unpack_from("<I", b, 56)[0]):
    ozl, dzl = struct.unpack_from("<I", b, off + 28)[0], struct.unpack_from("<I", b, off + 44)[0]
    print(hex(struct.unpack_from("<I", b, off + 48)[0]))
    off += 88 + ozl + dzl
PY
)
	host=$(case $(uname -m) in x86_64) echo 0x11 ;; aarch64) echo 0x21 ;; esac)
	for f in $host ${arm:+0x21}; do
		if grep -qx "$f" <<<"$flags"; then pass=$((pass + 1)); else
			echo "FAIL arch-same: patch-lzma: no chunk with flags $f (LZMA2, BCJ $([ $f = 0x11 ] && echo x86 || echo ARM64)): $(echo $flags)"
			fail=$((fail + 1))
		fi
	done
	same lzma-apply apply "$T/v1.raw" "$T/1.patch-lzma"
	# two root filesystems (their file-tree views), and apply's rebuild
	if both squashfs && [ -f "$T/1.rootfs-zstd" ]; then
		same rootfs-patch delta "$T/1.rootfs-gzip" "$T/1.rootfs-zstd"
		same rootfs-apply apply "$T/1.rootfs-gzip" "$T/1.rootfs-patch"
		if cmp -s "$T/1.rootfs-apply" "$T/1.rootfs-zstd"; then pass=$((pass + 1)); else
			echo "FAIL arch-same: rootfs-apply: apply did not rebuild the root filesystem"
			fail=$((fail + 1))
		fi
	fi
	# containers other tools wrote (qemu-img -c zlib, mksquashfs gzip):
	# the exact patch (views built by compressing NEW's blocks again) and
	# its apply (compressing them on the device) on both machines
	if command -v qemu-img >/dev/null && command -v mksquashfs >/dev/null &&
	   qemu-img convert -c -O qcow2 "$T/v1.raw" "$T/q1.qcow2" &&
	   qemu-img convert -c -O qcow2 "$T/v2.raw" "$T/q2.qcow2" &&
	   mkdir -p "$T/d1" "$T/d2" && cp "$T/v1.raw" "$T/d1/disk.img" && cp "$T/v2.raw" "$T/d2/disk.img" &&
	   mksquashfs "$T/d1" "$T/s1.sqfs" -quiet -no-progress -all-root >/dev/null &&
	   mksquashfs "$T/d2" "$T/s2.sqfs" -quiet -no-progress -all-root >/dev/null; then
		for x in q:qcow2 s:sqfs; do
			same exact-${x#*:} delta -j 3 --exact "$T/${x%%:*}1.${x#*:}" "$T/${x%%:*}2.${x#*:}"
			same exact-apply-${x#*:} apply "$T/${x%%:*}1.${x#*:}" "$T/1.exact-${x#*:}"
			if cmp -s "$T/1.exact-apply-${x#*:}" "$T/${x%%:*}2.${x#*:}"; then pass=$((pass + 1)); else
				echo "FAIL arch-same: exact-apply-${x#*:}: apply did not rebuild NEW's file"
				fail=$((fail + 1))
			fi
		done
	elif [ -n "${CI:-}" ]; then
		echo "FAIL arch-same: exact: qemu-img or mksquashfs missing or failed"
		fail=$((fail + 1))
	fi
fi
echo "arch-same: $pass passed, $fail failed"
[ $fail -eq 0 ]
