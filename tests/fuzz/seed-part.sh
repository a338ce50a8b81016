#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# seed-part.sh DIR: 1 MiB disks for the partition-table fuzzer, each
# behind the mode byte of fuzz_part.c (1: the fuzzer fixes GPT CRCs): a
# GPT by sfdisk, the same with a hybrid MBR by sgdisk, an MBR with
# logical partitions, and a FAT filesystem over a whole disk.
set -eu
dir=$1
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
seed() { { printf '\001'; cat "$2"; } >"$dir/$1"; }
truncate -s 1M "$t/gpt"
printf 'label: gpt\nstart=40, size=400, type=L, name=root\nstart=440, size=200, type=U, name=esp\nstart=640, size=1300, type=S\n' |
	sfdisk -q "$t/gpt" >/dev/null
seed gpt "$t/gpt"
if command -v sgdisk >/dev/null; then
	cp "$t/gpt" "$t/hybrid"
	sgdisk -h 2 "$t/hybrid" >/dev/null 2>&1 && seed hybrid "$t/hybrid"
fi
truncate -s 1M "$t/mbr"
printf 'label: dos\nstart=2, size=100, type=83\nstart=102, type=5\nstart=104, size=100, type=82\nstart=206, size=100, type=c\nstart=308, size=100, type=83\n' |
	sfdisk -q "$t/mbr" >/dev/null
seed mbr "$t/mbr"
if command -v mkfs.vfat >/dev/null; then
	mkfs.vfat -n SEED -C "$t/fat" 1024 >/dev/null && seed fat "$t/fat"
fi
