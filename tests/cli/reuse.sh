#!/usr/bin/env bash
# requires: CODEC_ZSTD
# SPDX-License-Identifier: MIT
# convert --reuse OLD: an incremental build copies the compressed blocks of
# an earlier one.  Judged by cmp against a full build of the same input
# (the bytes must be those), by qemu-img check and compare (qcow2), by
# unsquashfs (the disk in a squashfs, the files of a root filesystem), and
# by the counts -v and --json print.  An OLD written otherwise gets a
# warning and a full build; a damaged OLD an error and no OUT; an OLD that
# is OUT, a missing OLD, or an output that copies nothing are refused.
# An OLD whose recipe lies about its compression is caught by the first
# blocks, compressed again and compared.
. "$(dirname "$0")/../lib.sh"
need qemu-img unsquashfs cmp python3 sha256sum sfdisk mkfs.ext4

mkdir -p "$T/o"

# v1: the sample disk; v2: v1 with three ranges rewritten (text and
# random bytes), as a rebuilt appliance differs from the last one
fixture "the sample disk" mkdisk "$T/v1.raw" 32 || { done_tests; exit; }
fixture "v2 from v1" mkdisk_v2 "$T/v1.raw" "$T/v2.raw" 7 || { done_tests; exit; }

# copied DESC: the -v line says most blocks came from OLD, and not all
copied() {
	local n
	n=$(sed -n 's/.*: \([0-9]*\) of \([0-9]*\) compressed blocks copied from .*/\1 \2/p' <<<"$ERR")
	if [ -z "$n" ]; then
		bad "$1: -v prints no count of copied blocks: $ERR"
		return
	fi
	check "$1: most of OUT's blocks copied from OLD, some compressed ($n)" \
		test $((${n% *} * 2)) -gt "${n#* }" -a "${n% *}" -lt "${n#* }"
}

# --- compressed qcow2, zlib and zstd -----------------------------------------
if has_feature OUTPUT_QCOW2; then
	for ct in zlib zstd; do
		o=(-c -O qcow2 -o compression_type=$ct)
		run_ei 0 -- convert "${o[@]}" "$T/v1.raw" "$T/q1.qcow2"
		run_ei 0 -- convert "${o[@]}" "$T/v2.raw" "$T/full.qcow2"
		run_ei 0 -- convert -v --reuse "$T/q1.qcow2" "${o[@]}" "$T/v2.raw" "$T/o/q2.qcow2"
		copied "qcow2 $ct"
		check "qcow2 $ct: --reuse writes the full build's bytes" cmp "$T/full.qcow2" "$T/o/q2.qcow2"
		check "qcow2 $ct: qemu-img check is clean" qemu-img check -q "$T/o/q2.qcow2"
		check "qcow2 $ct: qemu-img compare: v2" \
			qemu-img compare -q -f raw -F qcow2 "$T/v2.raw" "$T/o/q2.qcow2"
		rm -f "$T/o/q2.qcow2"
		run_ei 0 -- convert -j 1 --reuse "$T/q1.qcow2" "${o[@]}" "$T/v2.raw" "$T/o/q2.qcow2"
		check "qcow2 $ct: -j 1 gives the same bytes" cmp "$T/full.qcow2" "$T/o/q2.qcow2"
		[ $ct = zstd ] || rm -f "$T/q1.qcow2" "$T/full.qcow2"
		rm -f "$T/o/q2.qcow2"
	done
	# --json: what was taken
	run_ei 0 -- convert --json --reuse "$T/q1.qcow2" "${o[@]}" "$T/v2.raw" "$T/o/q2.qcow2"
	check "qcow2: --json names OLD and counts the blocks" python3 - "$T/q1.qcow2" <<PY
import json, sys
d = json.loads('''$OUT''')
assert d["reuse"] == sys.argv[1] and d["reuse-taken"] is True, d
assert 0 < d["reused-blocks"] < d["compressed-blocks"], d
PY
	rm -f "$T/o/q2.qcow2"

	# OLD written with another level: a warning, then a full build
	run_ei 0 -- convert -c -O qcow2 -o compression_type=zstd,level=9 "$T/v2.raw" "$T/full9.qcow2"
	run_ei 0 -- convert --json --reuse "$T/q1.qcow2" -c -O qcow2 -o compression_type=zstd,level=9 \
		"$T/v2.raw" "$T/o/q2.qcow2"
	has "qcow2: OLD of another level: a warning" 'warning: --reuse .*q1.qcow2: not a qcow2 that edgeimg wrote with these options' "$ERR"
	has "... and --json says nothing was taken" '"reuse-taken": false' "$OUT"
	check "... and OUT is the full build" cmp "$T/full9.qcow2" "$T/o/q2.qcow2"
	rm -f "$T/o/q2.qcow2" "$T/full9.qcow2"
	# OLD of no container at all: the same
	run_ei 0 -- convert --reuse "$T/v1.raw" "${o[@]}" "$T/v2.raw" "$T/o/q2.qcow2"
	has "qcow2: a raw OLD: a warning" 'warning: --reuse .*v1.raw: not a qcow2' "$ERR"
	check "... and OUT is the full build" cmp "$T/full.qcow2" "$T/o/q2.qcow2"
	rm -f "$T/o/q2.qcow2"

	# an OLD whose recipe lies (level 1 clusters under the default
	# level's recipe): the first clusters found are compressed again and
	# compared, which catches it; OUT is the full build's bytes
	run_ei 0 -- convert -c -O qcow2 -o compression_type=zstd,level=1 "$T/v1.raw" "$T/liar.qcow2"
	run_ei 0 -- info "$T/full.qcow2"
	lvl=$(grep -o ',level=[0-9],' <<<"$OUT")
	check "qcow2: the recipe names a one-digit level ($lvl)" test -n "$lvl"
	fixture "rewrite the liar's recipe" recipe_level "$T/liar.qcow2" "$lvl"
	run_ei 0 -- convert --json --reuse "$T/liar.qcow2" "${o[@]}" "$T/v2.raw" "$T/o/q2.qcow2"
	has "qcow2: a lying OLD: a warning" 'warning: --reuse .*liar.qcow2: its blocks are not what its recipe gives' "$ERR"
	has "... --json says so" '"reuse-refused": true' "$OUT"
	has "... and that none were copied" '"reused-blocks": 0,' "$OUT"
	check "... and OUT is the full build's bytes" cmp "$T/full.qcow2" "$T/o/q2.qcow2"
	rm -f "$T/o/q2.qcow2" "$T/liar.qcow2"

	# a damaged OLD: a compressed cluster past its end; an error, no OUT
	run_ei 0 -- convert --json "${o[@]}" "$T/v1.raw" "$T/cut.qcow2"
	truncate -s $(($(stat -c %s "$T/cut.qcow2") / 2)) "$T/cut.qcow2"
	run_ei 1 -- convert --reuse "$T/cut.qcow2" "${o[@]}" "$T/v2.raw" "$T/o/q2.qcow2"
	has "qcow2: a cut OLD: the error names the cluster past the end" \
		'qcow2: .*(past the end|cluster)' "$ERR"
	check "... and no OUT" test -z "$(listing)"

	# refused before anything is written
	sum=$(sha256sum <"$T/q1.qcow2")
	run_ei 2 -- convert --force --reuse "$T/q1.qcow2" "${o[@]}" "$T/v2.raw" "$T/q1.qcow2"
	has "OUT is OLD: refused" 'also an input of this command' "$ERR"
	check "... and OLD is as it was" test "$(sha256sum <"$T/q1.qcow2")" = "$sum"
	run_ei 1 -- convert --reuse "$T/no-such.qcow2" "${o[@]}" "$T/v2.raw" "$T/o/q2.qcow2"
	has "a missing OLD: the error says --reuse" '^edgeimg convert: --reuse: .*no-such.qcow2: No such file' "$ERR"
	check "... and no OUT" test -z "$(listing)"
	run_ei 2 -- convert --reuse "$T/q1.qcow2" -O raw "$T/v2.raw" "$T/o/r.raw"
	has "-O raw: nothing to copy, refused" '--reuse: a raw output copies no blocks' "$ERR"
	check "... and no OUT" test -z "$(listing)"
	rm -f "$T/q1.qcow2" "$T/full.qcow2" "$T/cut.qcow2"
else
	echo "SKIP $NAME: qcow2 writer not built (OUTPUT_QCOW2)"
	t_skip=$((t_skip + 1))
fi

# --- squashfs holding the disk: gzip and zstd -------------------------------
if has_feature OUTPUT_SQUASHFS && has_feature FILES; then
	for c in gzip zstd; do
		o=(-O squashfs -o compression=$c,level=3)
		run_ei 0 -- convert "${o[@]}" "$T/v1.raw" "$T/s1.sqfs"
		run_ei 0 -- convert "${o[@]}" "$T/v2.raw" "$T/full.sqfs"
		run_ei 0 -- convert -v --reuse "$T/s1.sqfs" "${o[@]}" "$T/v2.raw" "$T/o/s2.sqfs"
		copied "squashfs $c"
		check "squashfs $c: --reuse writes the full build's bytes" cmp "$T/full.sqfs" "$T/o/s2.sqfs"
		rm -rf "$T/x"
		if fixture "unsquashfs the --reuse build" unsquashfs -q -n -d "$T/x" "$T/o/s2.sqfs" >/dev/null; then
			check "squashfs $c: unsquashfs gives v2 back" cmp "$T/x/disk.img" "$T/v2.raw"
		fi
		rm -rf "$T/x" "$T/o/s2.sqfs" "$T/s1.sqfs" "$T/full.sqfs"
	done
	# a damaged OLD: a data block's bytes overwritten; an error, no OUT
	run_ei 0 -- convert -O squashfs -o compression=zstd "$T/v1.raw" "$T/bad.sqfs"
	python3 - "$T/bad.sqfs" <<'PY'
import sys
with open(sys.argv[1], 'r+b') as f:
    f.seek(4096)
    f.write(b'\xa5' * 4096)
PY
	run_ei 1 -- convert --reuse "$T/bad.sqfs" -O squashfs -o compression=zstd "$T/v2.raw" "$T/o/s2.sqfs"
	has "squashfs: a damaged OLD: the error names squashfs" 'squashfs' "$ERR"
	check "... and no OUT" test -z "$(listing)"
	rm -f "$T/bad.sqfs"
else
	echo "SKIP $NAME: squashfs writer or the file view not built (OUTPUT_SQUASHFS, FILES)"
	t_skip=$((t_skip + 1))
fi

# --- root filesystems: convert --files ---------------------------------------
if has_feature OUTPUT_SQUASHFS && has_feature FILES; then
	mkdir -p "$T/t1/etc" "$T/t1/bin" "$T/t1/lib"
	cp -r "$TOP/src" "$T/t1/lib/"
	seq 1 1500000 >"$T/t1/etc/numbers"
	head -c 2000000 /dev/urandom >"$T/t1/bin/prog"
	echo v1 >"$T/t1/etc/version"
	cp -a "$T/t1" "$T/t2"
	echo v2 >"$T/t2/etc/version"
	seq 5 300000 >"$T/t2/etc/numbers2"
	rm -r "$T/t2/lib/src/cli"
	export SOURCE_DATE_EPOCH=1700000000
	o=(--files -O squashfs -o compression=zstd)
	run_ei 0 -- convert "${o[@]}" "$T/t1" "$T/r1.sqfs"
	run_ei 0 -- convert "${o[@]}" "$T/t2" "$T/full.sqfs"
	run_ei 0 -- convert -v --reuse "$T/r1.sqfs" "${o[@]}" "$T/t2" "$T/o/r2.sqfs"
	copied "root filesystem"
	check "root filesystem: --reuse writes the full build's bytes" cmp "$T/full.sqfs" "$T/o/r2.sqfs"
	rm -rf "$T/x"
	if fixture "unsquashfs the --reuse root filesystem" unsquashfs -q -n -d "$T/x" "$T/o/r2.sqfs" >/dev/null; then
		check "root filesystem: unsquashfs gives the tree back" diff -r "$T/t2" "$T/x"
	fi
	rm -rf "$T/x" "$T/o/r2.sqfs"
	# a disk-backed OLD for a root filesystem: other blocks, but the
	# same compression: taken, and the bytes are still the full build's
	run_ei 0 -- convert -O squashfs -o compression=zstd "$T/v1.raw" "$T/d1.sqfs"
	run_ei 0 -- convert --reuse "$T/d1.sqfs" "${o[@]}" "$T/t2" "$T/o/r2.sqfs"
	check "root filesystem, disk-backed OLD: the full build's bytes" cmp "$T/full.sqfs" "$T/o/r2.sqfs"
	rm -f "$T/o/r2.sqfs"
	run_ei 2 -- convert --reuse "$T/r1.sqfs" --files -O tar "$T/t2" "$T/o/r2.tar"
	has "--files -O tar: nothing to copy, refused" '--reuse: a tar output copies no blocks' "$ERR"
	check "... and no OUT" test -z "$(listing)"
	unset SOURCE_DATE_EPOCH
else
	echo "SKIP $NAME: root filesystems: squashfs writer or the file view not built (OUTPUT_SQUASHFS, FILES)"
	t_skip=$((t_skip + 1))
fi

done_tests
