#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# convert --bmap: the block map beside a raw (and compressed raw) output,
# judged by bmap-tools: "bmaptool copy" verifies every range's SHA-256 and
# the map's own checksum, "bmaptool create" of the written raw file must
# map the same ranges.  Into a file and into a loop device.
. "$(dirname "$0")/../lib.sh"
need bmaptool qemu-img sfdisk mkfs.ext4 e2fsck cmp python3

# ranges FILE: the mapped ranges of a bmap, one "FIRST-LAST" per line
ranges() {
	python3 - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
for r in root.find("BlockMap"):
    t = r.text.strip()
    print(t if "-" in t else t + "-" + t)
PY
}

# counts FILE: the sizes and counts a bmap states
counts() {
	python3 - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
for k in ("ImageSize", "BlockSize", "BlocksCount", "MappedBlocksCount", "ChecksumType"):
    print(k, root.find(k).text.strip())
PY
}

mkdisk "$T/disk.raw" 32
# data that ends in a partial block: the disk's size is not a multiple of 4 KiB
cp "$T/disk.raw" "$T/odd.raw"
printf 'the end' >>"$T/odd.raw"
# zeros written into it are allocated data: mapped, so that a flasher
# writes them (a stale card must not keep its old bytes there)
dd if=/dev/zero of="$T/odd.raw" bs=4096 seek=5000 count=16 conv=notrunc status=none
# a qcow2 of it where this build reads qcow2 (its clusters map the data)
img=disk.raw
if has_feature FORMAT_QCOW2 &&
   fixture "qcow2 of the disk" qemu-img convert -f raw -O qcow2 "$T/disk.raw" "$T/disk.qcow2"; then
	img=disk.qcow2
fi

# --- raw OUT: bmaptool copy and create agree with the map -------------------
for src in $img odd.raw; do
	rm -f "$T/o.raw" "$T/o.bmap" "$T/copy.raw" "$T/ref.bmap"
	ref=$T/${src%.*}.raw
	run_ei 0 -- convert -v -O raw --bmap "$T/o.bmap" "$T/$src" "$T/o.raw"
	has "$src: -v counts the mapped blocks" 'o\.bmap: [0-9]+ of [0-9]+ blocks of 4 KiB mapped' "$ERR"
	check "$src: raw OUT is the disk" cmp -s "$ref" "$T/o.raw"
	check "$src: bmaptool copy verifies and writes the disk" \
		bmaptool -q copy --bmap "$T/o.bmap" "$T/o.raw" "$T/copy.raw"
	check "$src: bmaptool's copy is the disk" cmp -s "$ref" "$T/copy.raw"
	if [ $src = odd.raw ] &&
	   fixture "bmaptool create of IN" bmaptool create -o "$T/in.bmap" "$T/odd.raw"; then
		check "$src: the same ranges as bmaptool create of IN (written zeros mapped)" \
			diff <(ranges "$T/in.bmap") <(ranges "$T/o.bmap")
		check "$src: the zeros written at block 5000 are mapped" \
			grep -qE '^[0-9]+-[0-9]+$' <(ranges "$T/o.bmap" | awk -F- '$1 <= 5000 && $2 >= 5015')
	fi
	if fixture "bmaptool create of the raw OUT" bmaptool create -o "$T/ref.bmap" "$T/o.raw"; then
		check "$src: bmaptool create maps the same ranges" \
			diff <(ranges "$T/ref.bmap") <(ranges "$T/o.bmap")
		check "$src: same image size and block counts" \
			diff <(counts "$T/ref.bmap") <(counts "$T/o.bmap")
	fi
done
run_ei 0 -- convert --json -O raw --bmap "$T/j.bmap" "$T/disk.raw" "$T/j.raw"
check "--json names the map and its mapped blocks" python3 -c '
import json, sys
j = json.loads(sys.argv[1])
assert j["bmap"].endswith("j.bmap") and j["bmap-mapped-blocks"] > 0, j' "$OUT"
# the same disk twice: the same map, byte for byte
run_ei 0 -- convert -j 1 -O raw --bmap "$T/j1.bmap" "$T/disk.raw" "$T/j1.raw"
check "the map is deterministic" cmp -s "$T/j.bmap" "$T/j1.bmap"

# --- the map lies: bmaptool notices --------------------------------------------
cp "$T/j.bmap" "$T/lie.bmap"
first=$(ranges "$T/j.bmap" | head -1 | cut -d- -f1)
python3 - "$T/j.raw" "$first" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2]) * 4096 + 100)
    f.write(b"X")
PY
run=$(bmaptool -q copy --bmap "$T/lie.bmap" "$T/j.raw" "$T/lie.out" 2>&1)
check "bmaptool refuses an image the map does not describe" test $? -ne 0
sed -i 's/<BlocksCount> /<BlocksCount> 1/' "$T/lie.bmap"
bmaptool -q copy --bmap "$T/lie.bmap" "$T/disk.raw" "$T/lie.out" >/dev/null 2>&1
check "bmaptool refuses a map whose own checksum is wrong" test $? -ne 0

# --- compressed raw OUT: the flasher's .img.zst/.img.xz/.img.gz + .bmap ----
# bmaptool decompresses the image itself and checks every mapped range
# against the map; the map describes the disk, whatever the compression.
ccodecs=()
if has_feature FORMAT_CRAW; then
	ccodecs=(gzip:gz)
	has_feature CODEC_ZSTD && ccodecs+=(zstd:zst)
	has_feature CODEC_XZ && ccodecs+=(xz:xz)
fi
run_ei 0 -- convert -O raw --bmap "$T/plain.bmap" "$T/$img" "$T/plain.raw"
for cx in "${ccodecs[@]}"; do
	c=${cx%%:*} x=${cx#*:}
	rm -f "$T/c.img.$x" "$T/c.bmap" "$T/c.copy"
	run_ei 0 -- convert -O craw -o compression=$c --bmap "$T/c.bmap" "$T/$img" "$T/c.img.$x"
	check "craw $c: the map is the raw output's map" cmp -s "$T/plain.bmap" "$T/c.bmap"
	check "craw $c: bmaptool copy of .img.$x + .bmap verifies" \
		bmaptool -q copy --bmap "$T/c.bmap" "$T/c.img.$x" "$T/c.copy"
	check "craw $c: bmaptool's copy is the disk" cmp -s "$T/disk.raw" "$T/c.copy"
done

# one partition as the image: rootfs.ext4.zst + .bmap for one slot, and
# the same partition as an Android sparse image; judged against dd of the
# partition's bytes and by e2fsck
p1=$(sfdisk -J "$T/disk.raw" | python3 -c '
import json, sys
p = json.load(sys.stdin)["partitiontable"]["partitions"][0]
print(p["start"], p["size"])')
dd if="$T/disk.raw" of="$T/p1.ref" bs=512 skip=${p1% *} count=${p1#* } status=none
if has_feature FORMAT_CRAW && has_feature CODEC_ZSTD && has_oracle zstd; then
	pz=p1.ext4.zst
	run_ei 0 -- convert --partition 1 -O craw -o compression=zstd --bmap "$T/p1.bmap" "$T/$img" "$T/$pz"
	check "partition 1: zstd -d gives the partition's bytes" \
		sh -c "zstd -dcq '$T/$pz' | cmp -s - '$T/p1.ref'"
	check "partition 1: bmaptool copy of .ext4.zst + .bmap verifies" \
		bmaptool -q copy --bmap "$T/p1.bmap" "$T/$pz" "$T/p1.copy"
	check "partition 1: bmaptool's copy is the partition" cmp -s "$T/p1.ref" "$T/p1.copy"
	check "partition 1: e2fsck finds the copy's ext4 clean" e2fsck -fn "$T/p1.copy"
	check "partition 1: the map covers the partition only ($(counts "$T/p1.bmap" | grep ImageSize))" \
		grep -qx "ImageSize $(stat -c %s "$T/p1.ref")" <(counts "$T/p1.bmap")
else
	pz=p1.raw
	run_ei 0 -- convert --partition 1 -O raw --bmap "$T/p1.bmap" "$T/$img" "$T/$pz"
	check "partition 1: raw OUT is the partition's bytes" cmp -s "$T/p1.ref" "$T/$pz"
fi
if has_feature FORMAT_SIMG && has_oracle simg2img; then
	run_ei 0 -- convert --partition 1 -O simg "$T/$img" "$T/p1.simg"
	check "partition 1: simg2img gives the partition's bytes" \
		sh -c "simg2img '$T/p1.simg' '$T/p1.unsparse' && cmp -s '$T/p1.ref' '$T/p1.unsparse'"
fi

# --- a loop device standing in for the card ----------------------------------
if [ "$(id -u)" = 0 ] && truncate -s 32M "$T/card.img" &&
   dev=$(losetup -f --show "$T/card.img" 2>/dev/null); then
	run_ei 0 -- convert -O raw --bmap "$T/d.bmap" "$T/$img" "$T/d.raw"
	dd if=/dev/zero of="$dev" bs=1M count=32 status=none
	check "bmaptool copy onto a loop device" \
		bmaptool -q copy --bmap "$T/d.bmap" "$T/d.raw" "$dev"
	check "the device holds the disk" cmp -s "$T/disk.raw" "$dev"
	losetup -d "$dev"
	# the slot: one partition's compressed image and its map onto a device
	# of the partition's size holding other bytes
	head -c $(stat -c %s "$T/p1.ref") /dev/urandom >"$T/slot.img"
	if dev=$(losetup -f --show "$T/slot.img" 2>/dev/null); then
		check "bmaptool copy of $pz + .bmap onto a loop device" \
			bmaptool -q copy --bmap "$T/p1.bmap" "$T/$pz" "$dev"
		check "the device holds the partition where the map says (e2fsck: clean)" \
			e2fsck -fn "$dev"
		blocks=$(ranges "$T/p1.bmap" | python3 -c '
import sys
for l in sys.stdin:
    a, b = map(int, l.split("-"))
    print(a, b - a + 1)')
		same=1
		while read -r a n; do
			cmp -s <(dd if="$dev" bs=4096 skip=$a count=$n status=none) \
				<(dd if="$T/p1.ref" bs=4096 skip=$a count=$n status=none) || same=0
		done <<<"$blocks"
		check "every mapped range on the device is the partition's" test $same = 1
		losetup -d "$dev"
	else
		bad "a second loop device could not be set up"
	fi
elif [ -n "${CI:-}" ]; then
	bad "no loop device under CI (needs root and /dev/loop*)"
else
	echo "SKIP $NAME: no loop device: bmaptool copy onto a device was not run"
fi

# --- refusals before anything exists ----------------------------------------
rm -f "$T"/n.*
if has_feature FORMAT_QCOW2; then
	run_ei 2 -- convert -O qcow2 --bmap "$T/n.bmap" "$T/disk.raw" "$T/n.qcow2"
	has "--bmap beside qcow2 refused" 'raw or compressed raw output, not qcow2' "$ERR"
fi
run_ei 2 -- convert -O raw --bmap "$T/n.raw" "$T/disk.raw" "$T/n.raw"
has "--bmap that is OUT refused" 'is OUT' "$ERR"
run_ei 2 -- convert -O raw --bmap - "$T/disk.raw" "$T/n.raw"
has "--bmap - refused" "names a file" "$ERR"
check "no output after the refusals" test -z "$(ls "$T"/n.* 2>/dev/null)"
echo keep >"$T/old.bmap"
run_ei 1 -- convert -O raw --bmap "$T/old.bmap" "$T/disk.raw" "$T/n.raw"
check "an existing map is not replaced without --force" test "$(cat "$T/old.bmap")" = keep
check "nor is OUT written" test ! -e "$T/n.raw"
run_ei 0 -- convert --force -O raw --bmap "$T/old.bmap" "$T/disk.raw" "$T/n.raw"
check "--force replaces it" bmaptool -q copy --bmap "$T/old.bmap" "$T/n.raw" "$T/n.copy"
# IN fails half way: neither file appears
if [ $img = disk.qcow2 ]; then
	head -c $(($(stat -c %s "$T/disk.qcow2") / 2)) "$T/disk.qcow2" >"$T/cut.qcow2"
	run_ei 1 -- convert -O raw --bmap "$T/cut.bmap" "$T/cut.qcow2" "$T/cut.raw"
	check "a failed convert leaves neither OUT nor the map" \
		test ! -e "$T/cut.raw" -a ! -e "$T/cut.bmap"
fi

# --- faults on the map's file (the host build, under tests/fault/fault.c) ---
# Each call on the map's directory fails in turn (ENOSPC, EIO, a short
# write): convert exits 1 naming the map, and never leaves a map that does
# not describe the OUT beside it (an old one included); the same command
# with --force then finishes.
if [ -z "${RUNNER:-}" ] && ldd $EDGEIMG >/dev/null 2>&1 && [ -f "${FAULT_LIB:-}" ]; then
	asan=
	[ -n "${SAN:-}" ] && asan="verify_asan_link_order=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
	mkdir -p "$T/bm" "$T/fo"
	# fi ENV...: convert raw --force with the map in $T/bm under the interposer
	fi_run() {
		(export LD_PRELOAD="$FAULT_LIB" FAULT_MATCH="$T/bm:$T/bm/*" FAULT_OPS=mut \
			${asan:+ASAN_OPTIONS=$asan} "$@"
		 exec $EDGEIMG convert --force -O raw --bmap "$T/bm/m.bmap" "$T/v2.raw" "$T/fo/o.raw") \
			>/dev/null 2>"$T/fe"
	}
	# v1 and its map are there first; v2 has other data (small disks: every
	# run syncs its OUT)
	truncate -s 4M "$T/v1.raw"
	head -c 300000 /dev/urandom | dd of="$T/v1.raw" bs=4096 seek=10 conv=notrunc status=none
	cp "$T/v1.raw" "$T/v2.raw"
	head -c 300000 /dev/urandom | dd of="$T/v2.raw" bs=4096 seek=500 conv=notrunc status=none
	# the fault-free maps of both disks, judged by bmaptool once; the maps
	# are deterministic, so cmp against them judges every run after
	run_ei 0 -- convert -O raw --bmap "$T/ref1.bmap" "$T/v1.raw" "$T/ref1.raw"
	run_ei 0 -- convert -O raw --bmap "$T/ref2.bmap" "$T/v2.raw" "$T/ref2.raw"
	check "faults: the reference map of v2 is right" \
		bmaptool -q copy --bmap "$T/ref2.bmap" "$T/ref2.raw" "$T/fo/c.raw"
	check "faults: bmaptool's copy is v2" cmp -s "$T/v2.raw" "$T/fo/c.raw"
	# pair_ok: OUT and the map beside it (if any) are v1's or v2's, together
	pair_ok() {
		if cmp -s "$T/fo/o.raw" "$T/v2.raw"; then
			[ ! -e "$T/bm/m.bmap" ] || cmp -s "$T/bm/m.bmap" "$T/ref2.bmap"
		else
			cmp -s "$T/fo/o.raw" "$T/v1.raw" && cmp -s "$T/bm/m.bmap" "$T/ref1.bmap"
		fi
	}
	rm -f "$T/fc"
	fi_run FAULT_COUNT="$T/fc"
	points=$(sed -n 's/^points //p' "$T/fc" 2>/dev/null)
	check "faults: the map's calls are counted ($points)" test "${points:-0}" -ge 5
	for ((i = 1; i <= ${points:-0}; i++)); do
		for how in ENOSPC EIO short; do
			cp "$T/ref1.raw" "$T/fo/o.raw"
			cp "$T/ref1.bmap" "$T/bm/m.bmap"
			fi_run FAULT_AT=$i FAULT_ERR=$how
			rc=$?
			if [ $rc -eq 0 ]; then
				# a short write completed: the result must be right
				check "fault $how at $i: completed with v2 and its map" \
					sh -c "cmp -s '$T/fo/o.raw' '$T/v2.raw' && cmp -s '$T/bm/m.bmap' '$T/ref2.bmap'"
				continue
			fi
			check "fault $how at $i: exit 1 (got $rc)" test $rc -eq 1
			has "fault $how at $i: the message names the map" 'm\.bmap|/bm' "$(cat "$T/fe")"
			check "fault $how at $i: no map beside an OUT it does not describe" pair_ok
			check "fault $how at $i: no temporary left" test -z "$(ls -A "$T/bm" | grep -v '^m\.bmap$')"
			fi_run
			check "fault $how at $i: the same command again finishes" \
				sh -c "cmp -s '$T/fo/o.raw' '$T/v2.raw' && cmp -s '$T/bm/m.bmap' '$T/ref2.bmap'"
		done
	done
elif [ -n "${CI:-}" ] && [ -z "${RUNNER:-}" ] && ldd $EDGEIMG >/dev/null 2>&1; then
	bad "no fault library FAULT_LIB='${FAULT_LIB:-}' for a dynamic binary under CI"
else
	echo "SKIP $NAME: faults on the map not run (a static binary, or no fault library)"
fi
done_tests
