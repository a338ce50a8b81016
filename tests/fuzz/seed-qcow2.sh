#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# seed-qcow2.sh DIR: small valid qcow2 images of each variant (v2, v3,
# 512 B to 2 MiB clusters, zero, zlib/zstd compressed and extended-L2
# clusters, refcount widths, a snapshot), each well under 1 MiB.
set -eu
command -v qemu-img >/dev/null && command -v qemu-io >/dev/null || exit 0
d=$1
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
head -c 40000 /dev/urandom >"$t/rand"
# src: 4 MiB with data, a run of text, zeros and holes
truncate -s 4M "$t/src"
dd if="$t/rand" of="$t/src" bs=4096 seek=3 count=9 conv=notrunc status=none
yes 'edgeimg qcow2 seed' | head -c 200000 |
	dd of="$t/src" bs=4096 seek=300 conv=notrunc status=none
n=0
mk() {  # mk OPTIONS [convert flags...]: convert src with -o OPTIONS
	local o=$1
	shift
	n=$((n + 1))
	qemu-img convert -q "$@" -f raw -O qcow2 -o "$o" "$t/src" "$d/qcow2-$n.qcow2"
}
mk compat=0.10
mk compat=1.1
mk cluster_size=512
mk cluster_size=4k,refcount_bits=1
mk cluster_size=64k,refcount_bits=64,lazy_refcounts=on
mk cluster_size=2M
mk extended_l2=on,cluster_size=16k
mk cluster_size=4k -c
mk cluster_size=4k,compression_type=zstd -c
mk compat=0.10,cluster_size=4k -c
mk extended_l2=on,cluster_size=32k,compression_type=zstd -c
# zero clusters, plain and preallocated, and zero subclusters
n=$((n + 1))
qemu-img create -q -f qcow2 -o cluster_size=4k "$d/qcow2-$n.qcow2" 2M
qemu-io -f qcow2 -c 'write -P 1 0 64k' -c 'write -z 8k 8k' -c 'write -z -u 32k 8k' \
	-c 'write -z 1m 64k' "$d/qcow2-$n.qcow2" >/dev/null
n=$((n + 1))
qemu-img create -q -f qcow2 -o cluster_size=16k,extended_l2=on "$d/qcow2-$n.qcow2" 2M
qemu-io -f qcow2 -c 'write -P 2 0 48k' -c 'write -z 1k 2k' -c 'write -P 3 100k 1k' \
	-c 'write -z 1m 4k' "$d/qcow2-$n.qcow2" >/dev/null
# an internal snapshot
n=$((n + 1))
qemu-img create -q -f qcow2 -o cluster_size=4k "$d/qcow2-$n.qcow2" 1M
qemu-io -f qcow2 -c 'write -P 4 0 16k' "$d/qcow2-$n.qcow2" >/dev/null
qemu-img snapshot -c snap "$d/qcow2-$n.qcow2"
qemu-io -f qcow2 -c 'write -P 5 4k 8k' "$d/qcow2-$n.qcow2" >/dev/null
# keep the corpus within the fuzzer's -max_len
for f in "$d"/qcow2-*.qcow2; do
	[ "$(stat -c %s "$f")" -le 1048576 ] || rm -f "$f"
done
