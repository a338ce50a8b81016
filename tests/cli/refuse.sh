#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Files that are recognised but not read as disks are refused by name,
# never read as raw bytes: tar archives that are not OVAs (made by tar:
# ustar, pax and GNU, long names in extended headers) and, in a build
# without FORMAT_SIMG, Android sparse images (made by img2simg; a build
# with it reads them as simg, never as raw).  Every refusal exits non-zero,
# names the file and what it is, and leaves no output; -f raw still reads
# their bytes.
. "$(dirname "$0")/../lib.sh"
need tar img2simg simg2img sfdisk mkfs.ext4 cmp gzip

mkdir -p "$T/o" "$T/tree/sub"
mkdisk "$T/disk.raw" 16
echo hello >"$T/tree/a.txt"
long=$(printf 'd%.0s' $(seq 120))
mkdir -p "$T/ltree/$long"
echo x >"$T/ltree/$long/file.img"

# refused DESC FILE PATTERN: info, convert and compare refuse FILE with a
# message matching PATTERN and leave no output; -f raw reads its bytes.
refused() {
	local d=$1 f=$2 pat=$3
	run_ei 1 -- info "$f"
	has "$d: info" "^edgeimg info: $pat" "$ERR"
	run_ei 1 -- info --json "$f"
	has "$d: info --json" "$pat" "$ERR"
	run_ei 1 -- convert -O raw "$f" "$T/o/x.raw"
	has "$d: convert" "$pat" "$ERR"
	run_ei 2 -- compare "$f" "$T/disk.raw"
	has "$d: compare" "$pat" "$ERR"
	check "$d: no output left" test -z "$(listing)"
	run_ei 0 -- convert -f raw -O raw "$f" "$T/o/bytes.raw"
	check "$d: -f raw reads its bytes" cmp -s "$f" "$T/o/bytes.raw"
	rm -f "$T/o/bytes.raw"
}

# --- tar archives that are not OVAs ----------------------------------------
# (refused by the OVA reader, which parses tar headers: a build without it
# reads a tar as raw bytes)
if has_feature FORMAT_OVA; then
	tar -C "$T" --format=ustar -cf "$T/ustar.tar" tree || bad "setup: tar ustar"
	refused "ustar, a directory first" "$T/ustar.tar" \
		"$T/ustar\\.tar is a tar archive, not an OVA \\(first member 'tree/' is not an \\.ovf\\): not a disk image; read its bytes with -f raw"
	tar -C "$T" --format=ustar -cf "$T/disk.tar" disk.raw || bad "setup: tar disk"
	refused "ustar holding a disk" "$T/disk.tar" \
		"$T/disk\\.tar is a tar archive, not an OVA \\(first member 'disk\\.raw' is not an \\.ovf\\)"
	tar -C "$T/tree" -cf "$T/dot.tar" . || bad "setup: tar ."
	refused "GNU tar of ." "$T/dot.tar" "$T/dot\\.tar is a tar archive, not an OVA \\(first member '\\./' is not"
	tar -C "$T/ltree" --format=pax -cf "$T/pax.tar" "$long/file.img" || bad "setup: tar pax"
	refused "pax, a long name in a path record" "$T/pax.tar" \
		"$T/pax\\.tar is a tar archive, not an OVA \\(first member '$long/file\\.img' is not an \\.ovf\\)"
	tar -C "$T/ltree" --format=gnu -cf "$T/gnu.tar" "$long/file.img" || bad "setup: tar gnu"
	refused "GNU, a long name in an L header" "$T/gnu.tar" \
		"$T/gnu\\.tar is a tar archive, not an OVA \\(first member '$long/file\\.img' is not an \\.ovf\\)"
	# the magic without a valid header checksum is not a tar: raw bytes
	cp "$T/disk.raw" "$T/magic.raw"
	printf 'ustar\00000' | dd of="$T/magic.raw" bs=1 seek=257 conv=notrunc status=none
	run_ei 0 -- info "$T/magic.raw"
	has "ustar magic, bad checksum: raw" '^file format: raw$' "$OUT"
fi

# --- Android sparse images --------------------------------------------------
img2simg "$T/disk.raw" "$T/disk.simg" >/dev/null 2>&1 || bad "setup: img2simg"
simg2img "$T/disk.simg" "$T/back.raw" >/dev/null 2>&1 || bad "setup: simg2img"
check "img2simg made a sparse image of the disk (simg2img agrees)" cmp -s "$T/back.raw" "$T/disk.raw"
if has_feature FORMAT_SIMG; then
	run_ei 0 -- info "$T/disk.simg"
	has "Android sparse: read as simg, not raw" '^file format: simg$' "$OUT"
	run_ei 0 -- compare "$T/disk.simg" "$T/disk.raw"
	has "Android sparse: its disk is the one simg2img expands" '^Images are identical\.$' "$OUT"
	run_ei 0 -- convert -f raw -O raw "$T/disk.simg" "$T/o/bytes.raw"
	check "Android sparse: -f raw reads its bytes" cmp -s "$T/disk.simg" "$T/o/bytes.raw"
	rm -f "$T/o/bytes.raw"
else
	refused "Android sparse" "$T/disk.simg" \
		"$T/disk\\.simg is an Android sparse image: not supported by this build \\(CONFIG_FORMAT_SIMG\\)"
fi
# inside a compressed stream: craw names what it holds
if has_feature FORMAT_CRAW; then
	gzip -c "$T/disk.simg" >"$T/disk.simg.gz"
	run_ei 1 -- info "$T/disk.simg.gz"
	has "gzip of an Android sparse image" 'craw: the gzip stream holds a simg image \(Android sparse image\), not a raw disk' "$ERR"
fi

# --- delta refuses them as OLD or NEW ----------------------------------------
if has_feature CODEC_ZSTD; then
	if ! has_feature FORMAT_SIMG; then
		run_ei 1 -- delta "$T/disk.simg" "$T/disk.raw" "$T/o/p.patch"
		has "delta: OLD an Android sparse image" "^edgeimg delta: OLD: $T/disk\\.simg is an Android sparse image" "$ERR"
	fi
	if has_feature FORMAT_OVA; then
		run_ei 1 -- delta "$T/disk.raw" "$T/disk.tar" "$T/o/p.patch"
		has "delta: NEW a tar" "NEW: $T/disk\\.tar is a tar archive, not an OVA" "$ERR"
	fi
	check "delta: no patch left" test -z "$(listing)"
fi
done_tests
