#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# demo.sh BUILD_DIR: the main job on a built-in example.  Makes a sample
# disk, shows what edgeimg sees in it, converts it, and has qemu-img judge.
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
