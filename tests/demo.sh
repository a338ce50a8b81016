#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# demo.sh BUILD_DIR: the main job on a built-in example.  Makes a sample
# disk, shows what edgeimg sees in it, converts it to raw, compressed qcow2
# and a squashfs-backed image (as built), and has qemu-img and unsquashfs
# judge the results; then patches a new version of the disk from the old
# one and applies the patch, judged by cmp.
set -eu
b=$1
ei=$b/edgeimg
d=$b/demo
mkdir -p "$d"
rm -f "$d"/*
echo "== making a 64 MiB sample disk (GPT, ext4 over real files): $d/sample.raw"
"$(dirname "$0")/mkdisk.sh" "$d/sample.raw" 64
echo "== edgeimg info"
"$ei" info "$d/sample.raw"
echo "== edgeimg convert -O raw (zero ranges become holes)"
"$ei" convert -v -O raw "$d/sample.raw" "$d/sample-out.raw"

echo "== edgeimg compare"
"$ei" compare "$d/sample.raw" "$d/sample-out.raw"
if command -v qemu-img >/dev/null; then
	echo "== qemu-img compare (the judge)"
	qemu-img compare -f raw -F raw "$d/sample.raw" "$d/sample-out.raw"
fi
features=$("$ei" --version)
if grep -qw OUTPUT_QCOW2 <<<"$features"; then
	echo "== edgeimg convert -c -O qcow2 (compressed, in parallel)"
	"$ei" convert -v -c -O qcow2 "$d/sample.raw" "$d/sample.qcow2"
	if command -v qemu-img >/dev/null; then
		echo "== qemu-img check and compare (the judges)"
		qemu-img check "$d/sample.qcow2"
		qemu-img compare "$d/sample.raw" "$d/sample.qcow2"
	fi
fi
if grep -qw OUTPUT_SQUASHFS <<<"$features"; then
	echo "== edgeimg convert -O squashfs (from the qcow2: the disk as disk.img in a squashfs)"
	"$ei" convert -v -O squashfs "$d/sample.qcow2" "$d/sample.sqfs"
	if command -v unsquashfs >/dev/null; then
		echo "== unsquashfs -l (the judge)"
		unsquashfs -l "$d/sample.sqfs"
	fi
	"$ei" compare "$d/sample.raw" "$d/sample.sqfs"
fi
if "$ei" help 2>&1 | grep -q '^  delta '; then
	echo "== a new version of the disk: 2 MiB rewritten, then a delta patch from the old one"
	cp --sparse=always "$d/sample.raw" "$d/sample-v2.raw"
	head -c 2097152 /dev/urandom |
		dd of="$d/sample-v2.raw" bs=1M seek=20 conv=notrunc status=none
	"$ei" delta -v "$d/sample.raw" "$d/sample-v2.raw" "$d/sample.patch"
	"$ei" info "$d/sample.patch"
	echo "== edgeimg apply (as a device would: OLD + patch from a pipe -> NEW, verified)"
	"$ei" apply -v "$d/sample.raw" - "$d/sample-v2-applied.raw" <"$d/sample.patch"
	echo "== cmp (the judge)"
	cmp "$d/sample-v2.raw" "$d/sample-v2-applied.raw" && echo "identical"
fi
