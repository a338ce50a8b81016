#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# seed-probe.sh DIR: the probe fuzzer starts from every other fuzzer's seeds.
set -eu
for s in "$(dirname "$0")"/seed-*.sh; do
	case $s in */seed-probe.sh) continue ;; esac
	bash "$s" "$1"
done
# Files recognised and refused: tars that are not OVAs, an Android sparse image.
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
head -c 70000 /dev/urandom >"$w/disk.img"
for fmt in ustar pax gnu; do
	tar -C "$w" -b 1 --format=$fmt -cf "$1/notova-$fmt.tar" disk.img
done
if command -v img2simg >/dev/null; then
	truncate -s 1M "$w/disk.img"
	img2simg "$w/disk.img" "$1/disk.simg" >/dev/null 2>&1 || true
fi
