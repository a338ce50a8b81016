#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# convert --bmap: the block map beside a raw (and compressed raw) output,
# judged by bmap-tools: "bmaptool copy" verifies every range's SHA-256 and
# the map's own checksum, "bmaptool create" of the written raw file must
# map the same ranges.  Into a file and into a loop device.
. "$(dirname "$0")/../lib.sh"
need bmaptool qemu-img sfdisk mkfs.ext4 cmp python3

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

# --- a loop device standing in for the card ----------------------------------
if [ "$(id -u)" = 0 ] && truncate -s 32M "$T/card.img" &&
   dev=$(losetup -f --show "$T/card.img" 2>/dev/null); then
	run_ei 0 -- convert -O raw --bmap "$T/d.bmap" "$T/$img" "$T/d.raw"
	dd if=/dev/zero of="$dev" bs=1M count=32 status=none
	check "bmaptool copy onto a loop device" \
		bmaptool -q copy --bmap "$T/d.bmap" "$T/d.raw" "$dev"
	check "the device holds the disk" cmp -s "$T/disk.raw" "$dev"
	losetup -d "$dev"
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
