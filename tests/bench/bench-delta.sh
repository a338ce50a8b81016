# SPDX-License-Identifier: MIT
# bench-delta.sh: the "delta" section of tests/bench/bench.sh (sourced; uses
# its ei, corpus, tmp, has, measure, header, row, ratio and size_of).
# Patches a1 -> a2 (arm64) and v1 -> v2 of the corpus as raw disks against
# zstd --patch-from and xdelta3, apply against xdelta3 -d, then the same two disks as squashfs-
# backed and compressed qcow2 images written by edgeimg, containers other
# tools wrote (qemu-img convert -c, mksquashfs of the root partitions)
# through delta --exact, and prints the issue's targets with the measured
# ratios.
for t in zstd xdelta3; do
	command -v $t >/dev/null || { echo "bench: delta needs $t (the peer)" >&2; exit 1; }
done
v1=$corpus/disk-v1.raw v2=$corpus/disk-v2.raw
for f in "$v1" "$v2"; do
	[ -f "$f" ] || { echo "bench: $f missing" >&2; exit 1; }
done

# raw_pair LABEL OLD NEW: edgeimg delta (-v: what LZMA2 saved) against
# zstd --patch-from and xdelta3 -9; then apply of that patch against apply
# of the --no-lzma one (zstd frames only), the apply before LZMA2.
# Leaves the patch in $tmp/e.patch and its size in $raw_patch.
raw_pair() {
	local label=$1 o=$2 n=$3 lz
	header "Delta, $label: edgeimg delta vs zstd -19 --long=31 --patch-from, xdelta3 -9 -B 1073741824 (sizes: patch bytes)"
	rm -f "$tmp/e.patch" "$tmp/z.patch" "$tmp/x.patch" "$tmp/n.patch"
	measure e "$ei" delta -v "$o" "$n" "$tmp/e.patch"
	lz=$(sed -n 's/.*LZMA2 data frames (BCJ for code): \([0-9]* of [0-9]* chunks\), .* (\([0-9]*\) bytes) smaller.*/\1, \2 bytes/p' "$tmp/.err")
	de_wall=$e_wall de_rss=$e_rss
	measure p "${synced[@]}" "$tmp/z.patch" zstd -q -f -19 --long=31 --patch-from="$o" "$n" -o "$tmp/z.patch"
	row "raw vs zstd -19" "$(size_of "$tmp/e.patch")" "$(size_of "$tmp/z.patch")"
	verdict "$label: patch / zstd --patch-from's" "$(ratio "$(size_of "$tmp/e.patch")" "$(size_of "$tmp/z.patch")")" 0.85
	verdict "$label: delta wall time / zstd's" "$(ratio "$de_wall" "$p_wall")" 0.25
	verdict "$label: delta peak RSS, MiB" "$(mib "$de_rss")" 512
	measure p "${synced[@]}" "$tmp/x.patch" xdelta3 -f -9 -B 1073741824 -e -s "$o" "$n" "$tmp/x.patch"
	row "raw vs xdelta3 -9" "$(size_of "$tmp/e.patch")" "$(size_of "$tmp/x.patch")"
	measure p "$ei" delta --no-lzma "$o" "$n" "$tmp/n.patch"
	row "raw vs --no-lzma" "$(size_of "$tmp/e.patch")" "$(size_of "$tmp/n.patch")"
	verdicts+=("  $label: LZMA2 data frames (BCJ for code): ${lz:-none}; the patch is $(ratio "$(size_of "$tmp/e.patch")" "$(size_of "$tmp/n.patch")") of the zstd-only one")
	rm -f "$tmp/e.raw" "$tmp/n.raw"
	measure e "$ei" apply "$o" "$tmp/e.patch" "$tmp/e.raw"
	measure p "$ei" apply "$o" "$tmp/n.patch" "$tmp/n.raw"
	cmp -s "$tmp/e.raw" "$n" || { echo "bench: edgeimg apply: output differs from $n" >&2; exit 1; }
	cmp -s "$tmp/n.raw" "$n" || { echo "bench: edgeimg apply --no-lzma patch: output differs from $n" >&2; exit 1; }
	row "apply vs --no-lzma's" $(($(stat -c %b "$tmp/e.raw") * 512)) $(($(stat -c %b "$tmp/n.raw") * 512))
	verdict "$label: apply wall / apply of the zstd-only patch" "$(ratio "$e_wall" "$p_wall")" 1.5
	verdict "$label: apply peak RSS, MiB" "$(mib "$e_rss")" 64
	rm -f "$tmp/e.raw" "$tmp/n.raw" "$tmp/n.patch"
	raw_patch=$(size_of "$tmp/e.patch")
}
if [ -f "$corpus/disk-a2.raw" ]; then
	raw_pair "arm64 a1 -> a2" "$corpus/disk-a1.raw" "$corpus/disk-a2.raw"
else
	verdicts+=("  arm64 a1 -> a2: not in the corpus (make-corpus.sh with ARM64=1 builds it): not measured")
fi
raw_pair "raw v1 -> v2" "$v1" "$v2"         # its xdelta3 patch is applied below

header "Apply, raw: edgeimg apply vs xdelta3 -d (sizes: allocated bytes of the output)"
rm -f "$tmp/e.raw" "$tmp/x.raw"
measure e "$ei" apply "$v1" "$tmp/e.patch" "$tmp/e.raw"
measure p "${synced[@]}" "$tmp/x.raw" xdelta3 -f -d -s "$v1" "$tmp/x.patch" "$tmp/x.raw"
cmp -s "$tmp/e.raw" "$v2" || { echo "bench: edgeimg apply: output differs from v2" >&2; exit 1; }
cmp -s "$tmp/x.raw" "$v2" || { echo "bench: xdelta3 -d: output differs from v2" >&2; exit 1; }
row "apply raw" $(($(stat -c %b "$tmp/e.raw") * 512)) $(($(stat -c %b "$tmp/x.raw") * 512))
verdict "apply wall time / xdelta3 -d's" "$(ratio "$e_wall" "$p_wall")" 1.0
verdict "apply peak RSS, MiB" "$(mib "$e_rss")" 64
rm -f "$tmp/e.raw" "$tmp/x.raw" "$tmp/z.patch" "$tmp/x.patch"

# apply against what the I/O alone costs: read OLD, write NEW, sync it.
# Both start from the page cache; apply also hashes OLD, proves every
# chunk and reads NEW back from the media before its rename.
header "Apply, raw, against the I/O floor (cat OLD >/dev/null; cp --sparse=always NEW OUT; sync OUT) (sizes: allocated bytes)"
cat "$v1" "$v2" "$tmp/e.patch" >/dev/null
rm -f "$tmp/e.raw" "$tmp/f.raw"
measure e "$ei" apply "$v1" "$tmp/e.patch" "$tmp/e.raw"
measure p bash -c 'cat "$1" >/dev/null && cp --sparse=always "$2" "$3" && sync -- "$3"' floor "$v1" "$v2" "$tmp/f.raw"
row "apply vs I/O floor" $(($(stat -c %b "$tmp/e.raw") * 512)) $(($(stat -c %b "$tmp/f.raw") * 512))
verdict "apply wall time / the I/O floor's" "$(ratio "$e_wall" "$p_wall")" 2.0
verdict "apply peak RSS, MiB" "$(mib "$e_rss")" 32
rm -f "$tmp/e.raw" "$tmp/f.raw"
chunks=$("$ei" info --json "$tmp/e.patch" | sed -n 's/.*"chunks": \([0-9]*\).*/\1/p')
verdicts+=("$(awk -v c="$chunks" -v p="$raw_patch" 'BEGIN{printf "  %-58s %8.4f <= %-6s %s", "chunk chain: 32 bytes x " c " chunks / patch size", 32 * c / p, 0.005, 32 * c / p <= 0.005 ? "ok" : "MISSED"}')")

# delta's memory whatever -j: each worker's zstd context counts
header "Delta memory at -j 16 (workers are fewer when their memory would pass 512 MiB)"
rm -f "$tmp/j.patch"
measure e "$ei" delta -j 16 "$v1" "$v2" "$tmp/j.patch"
measure p "$ei" delta -j 1 "$v1" "$v2" "$tmp/j1.patch"
row "delta -j16 vs -j1" "$(size_of "$tmp/j.patch")" "$(size_of "$tmp/j1.patch")"
cmp -s "$tmp/j.patch" "$tmp/j1.patch" || { echo "bench: delta -j 16 and -j 1 differ" >&2; exit 1; }
verdict "delta -j 16 peak RSS, MiB" "$(mib "$e_rss")" 512
rm -f "$tmp/j.patch" "$tmp/j1.patch"

# a 2 TiB sparse disk holding 1 GiB of data (truncate + dd): what is hashed,
# indexed, patched and read back is the data, not the 2 TiB
header "A 2 TiB sparse disk with 1 GiB of data, 8 MiB of it changed: delta and apply (edgeimg alone; sizes: patch bytes)"
rm -f "$tmp/s1.raw" "$tmp/s2.raw"
truncate -s 2T "$tmp/s1.raw"
dd if=/dev/urandom of="$tmp/s1.raw" bs=1M count=1024 seek=$((1 << 20)) conv=notrunc status=none
cp --sparse=always "$tmp/s1.raw" "$tmp/s2.raw"
dd if=/dev/urandom of="$tmp/s2.raw" bs=1M count=8 seek=$(((1 << 20) + 100)) conv=notrunc status=none
measure e "$ei" delta "$tmp/s1.raw" "$tmp/s2.raw" "$tmp/s.patch"
sd_wall=$e_wall sd_rss=$e_rss
measure p "$ei" apply "$tmp/s1.raw" "$tmp/s.patch" "$tmp/s.out"
"$ei" compare "$tmp/s2.raw" "$tmp/s.out" >/dev/null ||
	{ echo "bench: the 2 TiB apply differs" >&2; exit 1; }
printf '%-22s | %8s %8s %8s %10s | %8s %8s %8s %10s |\n' "delta | apply" "$sd_wall" "-" "$(mib "$sd_rss")" \
	"$(size_of "$tmp/s.patch")" "$p_wall" "$p_cpu" "$(mib "$p_rss")" "-"
verdict "2 TiB sparse: delta wall, s" "$sd_wall" 60
verdict "2 TiB sparse: apply wall, s" "$p_wall" 60
rm -f "$tmp/s1.raw" "$tmp/s2.raw" "$tmp/s.patch" "$tmp/s.out"

# bench_container LABEL FMT EXT CONVERT-OPTIONS...: both disks written by
# edgeimg as FMT, then patched by edgeimg and by xdelta3 (the files).
bench_container() {
	local label=$1 fmt=$2 x=$3
	shift 3
	"$ei" convert --force "$@" -O "$fmt" "$v1" "$tmp/c1.$x" >/dev/null 2>&1 &&
	"$ei" convert --force "$@" -O "$fmt" "$v2" "$tmp/c2.$x" >/dev/null 2>&1 ||
		{ echo "bench: edgeimg convert -O $fmt failed" >&2; exit 1; }
	header "Delta, $label (v1, v2 written by edgeimg convert $* -O $fmt): edgeimg delta vs xdelta3 -9 between the files"
	rm -f "$tmp/e.patch" "$tmp/x.patch"
	measure e "$ei" delta "$tmp/c1.$x" "$tmp/c2.$x" "$tmp/e.patch"
	measure p "${synced[@]}" "$tmp/x.patch" xdelta3 -f -9 -B 1073741824 -e -s "$tmp/c1.$x" "$tmp/c2.$x" "$tmp/x.patch"
	row "$fmt vs xdelta3 -9" "$(size_of "$tmp/e.patch")" "$(size_of "$tmp/x.patch")"
	verdict "$label patch / xdelta3's" "$(ratio "$(size_of "$tmp/e.patch")" "$(size_of "$tmp/x.patch")")" 0.2
	verdict "$label patch / the raw patch" "$(ratio "$(size_of "$tmp/e.patch")" "$raw_patch")" 1.2
	rm -f "$tmp/e.out" "$tmp/x.out"
	measure e "$ei" apply -v "$tmp/c1.$x" "$tmp/e.patch" "$tmp/e.out"
	copied=$(grep -o '[0-9]* of [0-9]* compressed blocks copied' "$tmp/.err")
	measure p "${synced[@]}" "$tmp/x.out" xdelta3 -f -d -s "$tmp/c1.$x" "$tmp/x.patch" "$tmp/x.out"
	row "apply $fmt" "$(size_of "$tmp/e.out")" "$(size_of "$tmp/x.out")"
	cmp -s "$tmp/e.out" "$tmp/c2.$x" || { echo "bench: apply did not rebuild v2's $fmt byte for byte" >&2; exit 1; }
	verdicts+=("  $label: apply rebuilt v2's container byte for byte (cmp); ${copied:-no compressed blocks copied} from v1's")
	rm -f "$tmp/e.patch" "$tmp/x.patch" "$tmp/e.out" "$tmp/x.out"
	incremental "$label" "$tmp/c1.$x" "$tmp/c2.$x" "$@" -O "$fmt" "$v2"
	rm -f "$tmp/c1.$x" "$tmp/c2.$x"
}
# bench_foreign LABEL OLD NEW BASE: containers another tool wrote, through
# delta --exact (apply must rebuild NEW byte for byte) against xdelta3 -9
# between the files; BASE is the size of the patch between their decoded
# contents, which the exact patch should stay within 1.2 times of.
bench_foreign() {
	local label=$1 o=$2 n=$3 base=$4 counts
	header "Delta --exact, $label: edgeimg delta --exact vs xdelta3 -9 between the files (sizes: patch bytes)"
	rm -f "$tmp/e.patch" "$tmp/x.patch" "$tmp/e.out" "$tmp/x.out"
	measure e "$ei" delta -v --exact "$o" "$n" "$tmp/e.patch"
	counts=$(sed -n "s/.*: \([0-9]*\) of NEW's \([0-9]*\) compressed blocks are compressed again.*/\1 of \2/p" "$tmp/.err")
	de_wall=$e_wall de_rss=$e_rss
	measure p "${synced[@]}" "$tmp/x.patch" xdelta3 -f -9 -B 1073741824 -e -s "$o" "$n" "$tmp/x.patch"
	row "exact vs xdelta3 -9" "$(size_of "$tmp/e.patch")" "$(size_of "$tmp/x.patch")"
	verdict "$label: patch / the decoded contents' patch" "$(ratio "$(size_of "$tmp/e.patch")" "$base")" 1.2
	verdict "$label: delta peak RSS, MiB" "$(mib "$de_rss")" 512
	measure e "$ei" apply "$o" "$tmp/e.patch" "$tmp/e.out"
	measure p "${synced[@]}" "$tmp/x.out" xdelta3 -f -d -s "$o" "$tmp/x.patch" "$tmp/x.out"
	row "apply exact" "$(size_of "$tmp/e.out")" "$(size_of "$tmp/x.out")"
	cmp -s "$tmp/e.out" "$n" || { echo "bench: apply did not rebuild $label byte for byte" >&2; exit 1; }
	verdict "$label: apply peak RSS, MiB" "$(mib "$e_rss")" 64
	verdicts+=("  $label: apply rebuilt NEW byte for byte (cmp); NEW's compressed blocks compressed again on the device: ${counts:-?}, the others shipped; patch $(size_of "$tmp/e.patch") bytes, the decoded contents' $base")
	rm -f "$tmp/e.patch" "$tmp/x.patch" "$tmp/e.out" "$tmp/x.out"
}
# qcow2 from qemu-img convert -c (zlib, zstd) of the two raw disks: the
# decoded contents' patch is the raw one
if command -v qemu-img >/dev/null; then
	for ct in zlib zstd; do
		qemu-img convert -c -O qcow2 -o compression_type=$ct "$v1" "$tmp/q1.qcow2" &&
		qemu-img convert -c -O qcow2 -o compression_type=$ct "$v2" "$tmp/q2.qcow2" ||
			{ echo "bench: qemu-img convert -c failed" >&2; exit 1; }
		bench_foreign "qemu-img -c $ct qcow2" "$tmp/q1.qcow2" "$tmp/q2.qcow2" "$raw_patch"
		rm -f "$tmp/q1.qcow2" "$tmp/q2.qcow2"
	done
else
	echo; echo "SKIPPED: no qemu-img: the foreign qcow2 rows are missing"
fi
# root filesystems from mksquashfs of the loop-mounted root partitions
# (gzip, zstd): the decoded contents' patch is the file trees' (delta -O squashfs)
if has FORMAT_SQUASHFS && command -v mksquashfs >/dev/null && [ "$(id -u)" = 0 ]; then
	mkdir -p "$tmp/mnt"
	for comp in gzip zstd; do
		for v in 1 2; do
			off=$(sfdisk --json "$corpus/disk-v$v.raw" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["partitions"][1]["start"] * 512)')
			mount -o ro,loop,offset="$off" "$corpus/disk-v$v.raw" "$tmp/mnt" &&
			mksquashfs "$tmp/mnt" "$tmp/r$v.sqfs" -comp $comp -noappend -quiet -no-progress \
				>/dev/null 2>"$tmp/mksq.err"    # it warns of each ACL it cannot store
			r=$?
			umount "$tmp/mnt"
			[ $r = 0 ] || { echo "bench: mount + mksquashfs of v$v failed: $(cat "$tmp/mksq.err")" >&2; exit 1; }
		done
		"$ei" delta -O squashfs "$tmp/r1.sqfs" "$tmp/r2.sqfs" "$tmp/t.patch" 2>/dev/null ||
			{ echo "bench: the file trees' patch failed" >&2; exit 1; }
		bench_foreign "mksquashfs -comp $comp rootfs" "$tmp/r1.sqfs" "$tmp/r2.sqfs" "$(size_of "$tmp/t.patch")"
		rm -f "$tmp/r1.sqfs" "$tmp/r2.sqfs" "$tmp/t.patch"
	done
else
	echo; echo "SKIPPED: the mksquashfs root filesystem rows need root, mksquashfs and the squashfs reader"
fi

if has OUTPUT_SQUASHFS; then
	bench_container "squashfs-backed" squashfs sqfs -o compression=zstd,level=15
else
	echo; echo "SKIPPED: squashfs writer not built (no OUTPUT_SQUASHFS): the squashfs-backed delta rows are missing"
fi
if has OUTPUT_QCOW2; then
	bench_container "compressed qcow2" qcow2 qcow2 -c -o compression_type=zstd
else
	echo; echo "SKIPPED: qcow2 writer not built (no OUTPUT_QCOW2): the compressed qcow2 delta rows are missing"
fi
rm -f "$tmp/e.patch"
