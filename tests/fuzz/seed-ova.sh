#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# seed-ova.sh DIR: small OVAs (ustar, pax, gnu tar; raw, qcow2 and
# streamOptimized VMDK disks; SHA-1 and SHA-256 manifests) for fuzz-ova.
set -eu
out=$1
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
python3 -c "import sys; sys.stdout.buffer.write(bytes((i * 7 + i // 4096) & 0xff for i in range(32768)) + bytes(32768))" >"$w/disk.img"
disks=disk.img
if command -v qemu-img >/dev/null; then
	qemu-img convert -f raw -O qcow2 -o cluster_size=4096 "$w/disk.img" "$w/disk.qcow2" && disks="$disks disk.qcow2"
	qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$w/disk.img" "$w/disk.vmdk" &&
		disks="$disks disk.vmdk"
fi
for d in $disks; do
	cat >"$w/app.ovf" <<OVF
<?xml version="1.0"?>
<Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"><References>
<File ovf:href="$d" ovf:id="file1"/></References><DiskSection>
<Disk ovf:diskId="vmdisk1" ovf:fileRef="file1"/></DiskSection></Envelope>
OVF
	for alg in sha1 sha256; do
		(cd "$w" && ${alg}sum app.ovf "$d" | awk -v a="$(tr a-z A-Z <<<$alg)" '{ print a "(" $2 ")= " $1 }' >app.mf)
		for fmt in ustar pax gnu; do
			tar -C "$w" -b 1 --format=$fmt -cf "$out/${d#disk.}-$fmt-$alg.ova" app.ovf app.mf "$d"
		done
	done
	tar -C "$w" -b 1 --format=ustar -cf "$out/${d#disk.}-nomf.ova" app.ovf "$d"
done
