#!/usr/bin/env bash
# requires: CODEC_ZSTD
# SPDX-License-Identifier: MIT
# delta --exact: containers other tools made (qemu-img convert -c qcow2,
# zlib and zstd; mksquashfs gzip (and its level, window and strategies),
# zstd, xz (with BCJ filters and another dictionary) and lz4 (and -Xhc)
# root filesystems and a disk-backed squashfs) rebuilt by apply byte for
# byte.  Judged by cmp
# against NEW, by qemu-img check and unsquashfs on the result, by the
# patch's size against the patch between the decoded contents (raw disks,
# file trees), and by the counts -v and --json print.  Blocks that do not
# compress again to the same bytes travel as they are and the result is
# still NEW's file.  A patch whose recipe names another zlib, a wrong OLD,
# and options that cut NEW are refused without output.
. "$(dirname "$0")/../lib.sh"
need qemu-img qemu-io mksquashfs unsquashfs cmp python3 sha256sum sfdisk mkfs.ext4

mkdir -p "$T/o"

fixture "the sample disk" mkdisk "$T/v1.raw" 32 || { done_tests; exit; }
fixture "v2 from v1" mkdisk_v2 "$T/v1.raw" "$T/v2.raw" 11 || { done_tests; exit; }
run_ei 0 -- delta "$T/v1.raw" "$T/v2.raw" "$T/raw.patch"
raw_size=$(stat -c %s "$T/raw.patch")

# counts: "R of NEW's N compressed blocks ... S shipped" from -v, as "R N S"
counts() {
	sed -n "s/.*: \([0-9]*\) of NEW's \([0-9]*\) compressed blocks are compressed again on the device, \([0-9]*\) shipped.*/\1 \2 \3/p" <<<"$ERR"
}

# exact DESC OLD NEW [BASE_SIZE]: delta --exact, apply, cmp; with BASE_SIZE
# the patch is at most 1.2 times the patch between the decoded contents
exact() {
	local d=$1 old=$2 new=$3 base=${4:-} size
	rm -f "$T/p.patch" "$T/o/out"
	run_ei 0 -- delta -v --exact "$old" "$new" "$T/p.patch"
	read -r REBUILT BLOCKS STORED <<<"$(counts)"
	if [ -z "${BLOCKS:-}" ]; then
		bad "$d: delta -v prints no count of blocks: $ERR"
		return 1
	fi
	run_ei 0 -- apply -v "$old" "$T/p.patch" "$T/o/out"
	COPIED=$(sed -n 's/.*: \([0-9]*\) of [0-9]* compressed blocks copied from OLD.*/\1/p' <<<"$ERR")
	check "$d: apply rebuilds NEW's file byte for byte" cmp "$new" "$T/o/out"
	if [ -n "$base" ]; then
		size=$(stat -c %s "$T/p.patch")
		check "$d: the patch ($size bytes) is at most 1.2 times the decoded contents' ($base)" \
			test $((size * 10)) -le $((base * 12))
	fi
}

# --- qcow2 of qemu-img convert -c --------------------------------------------
for ct in zlib zstd; do
	fixture "qemu-img -c $ct v1" qemu-img convert -c -O qcow2 -o compression_type=$ct \
		"$T/v1.raw" "$T/q1.qcow2" || continue
	fixture "qemu-img -c $ct v2" qemu-img convert -c -O qcow2 -o compression_type=$ct \
		"$T/v2.raw" "$T/q2.qcow2" || continue
	exact "qcow2 $ct" "$T/q1.qcow2" "$T/q2.qcow2" "$raw_size" || continue
	check "qcow2 $ct: every compressed cluster reproduces ($REBUILT of $BLOCKS)" \
		test "$REBUILT" = "$BLOCKS" -a "$BLOCKS" -gt 20 -a "$STORED" = 0
	check "qcow2 $ct: qemu-img check of the result is clean" qemu-img check -q "$T/o/out"
	check "qcow2 $ct: qemu-img compare: the result holds v2" \
		qemu-img compare -q -f raw -F qcow2 "$T/v2.raw" "$T/o/out"
	cp "$T/p.patch" "$T/p-$ct.patch"
	cp "$T/q2.qcow2" "$T/q2-$ct.qcow2"
	run_ei 0 -- info "$T/p.patch"
	has "qcow2 $ct: info names the target" "format=repack,writer=[^,]*,$ct=" "$OUT"
done

if [ -f "$T/p-zlib.patch" ]; then
	# the same patch for any thread count
	run_ei 0 -- delta -j 1 --exact "$T/q1.qcow2" "$T/q2.qcow2" "$T/j1.patch"
	check "qcow2: -j 1 gives the same patch" cmp "$T/p-zstd.patch" "$T/j1.patch"
	run_ei 0 -- delta --json --exact "$T/q1.qcow2" "$T/q2.qcow2" "$T/o/j.patch"
	has "qcow2: --json counts the blocks" '"exact-blocks": [1-9][0-9]*,' "$OUT"
	has "qcow2: --json counts the blocks rebuilt" '"exact-rebuilt": [1-9]' "$OUT"
	rm -f "$T/o/j.patch"
	# without --exact: NEW, a compressed qcow2 no edgeimg wrote, is the
	# target all the same (the same patch); -O raw makes its disk the target
	run_ei 0 -- delta "$T/q1.qcow2" "$T/q2.qcow2" "$T/auto.patch"
	check "qcow2: delta without --exact, the same patch" cmp "$T/p-zstd.patch" "$T/auto.patch"
	run_ei 0 -- delta -O raw "$T/q1.qcow2" "$T/q2.qcow2" "$T/rawt.patch"
	run_ei 0 -- apply "$T/q1.qcow2" "$T/rawt.patch" "$T/o/out.raw"
	check "qcow2: delta -O raw: apply gives NEW's disk" cmp "$T/v2.raw" "$T/o/out.raw"
	rm -f "$T/o/out.raw" "$T/auto.patch" "$T/rawt.patch"

	# a recipe that names another zlib: refused before anything is written
	rm -f "$T/o/out"
	fixture "a patch naming zlib 9.9.99" python3 - "$T/p-zlib.patch" "$T/zlib9.patch" <<'PY' &&
import hashlib, struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
rlen = struct.unpack_from('<I', b, 72)[0]
rec = bytes(b[256:256 + rlen])
i = rec.index(b'zlib=') + 5
j = rec.find(b',', i)
j = len(rec) if j < 0 else j
new = rec[:i] + b'9' * (j - i) + rec[j:]
b[256:256 + rlen] = new
b[256 + rlen:288 + rlen] = hashlib.sha256(bytes(b[:256 + rlen])).digest()
open(sys.argv[2], 'wb').write(b)
PY
	{
		run_ei 1 -- apply "$T/q1.qcow2" "$T/zlib9.patch" "$T/o/out"
		has "another zlib: named" "needs zlib 9+" "$ERR"
		check "another zlib: no OUT" test -z "$(listing)"
	}
	# any file is an OLD (a raw disk: one RAW record)
	rm -f "$T/o/out"
	exact "raw OLD, qemu-img NEW" "$T/v1.raw" "$T/q2.qcow2"
	rm -f "$T/o/out"
	# OLD that is not the patch's: refused, nothing written
	run_ei 1 -- apply "$T/q2.qcow2" "$T/p-zlib.patch" "$T/o/out"
	has "wrong OLD: named" "not the patch.s source|made for a disk of" "$ERR"
	check "wrong OLD: no OUT" test -z "$(listing)"
fi

# edgeimg's own NEW: its recipe is the fast path, the patch the same as
# without --exact
if has_feature OUTPUT_QCOW2; then
	run_ei 0 -- convert -c -O qcow2 -o level=9 "$T/v1.raw" "$T/e1.qcow2"
	run_ei 0 -- convert -c -O qcow2 -o level=9 "$T/v2.raw" "$T/e2.qcow2"
	run_ei 0 -- delta "$T/e1.qcow2" "$T/e2.qcow2" "$T/recipe.patch"
	rm -f "$T/o/out" "$T/p.patch"
	run_ei 0 -- delta -v --exact "$T/e1.qcow2" "$T/e2.qcow2" "$T/p.patch"
	has "edgeimg's NEW: its recipe" "NEW is edgeimg's own container: its recipe rebuilds it" "$ERR"
	check "edgeimg's NEW: the patch is the recipe's, byte for byte" cmp "$T/recipe.patch" "$T/p.patch"
	run_ei 0 -- apply "$T/e1.qcow2" "$T/p.patch" "$T/o/out"
	check "edgeimg's NEW: apply rebuilds its file" cmp "$T/e2.qcow2" "$T/o/out"
	rm -f "$T/o/out"
	# blocks that do not reproduce: edgeimg's own zlib level 9 clusters,
	# in a file qemu-io wrote a cluster into since (the recipe no longer
	# gives it), travel as they are, and the result is still NEW's file
	fixture "qemu-io write" qemu-io -f qcow2 -c "write -P 7 1M 64k" "$T/e2.qcow2" >/dev/null
	if exact "edgeimg level 9 qcow2, written by qemu-io" "$T/e1.qcow2" "$T/e2.qcow2"; then
		check "edgeimg level 9 qcow2: blocks that do not reproduce are counted ($STORED of $BLOCKS)" \
			test "$STORED" -gt 0 -a "$((REBUILT + STORED))" -le "$BLOCKS"
		check "edgeimg level 9 qcow2: qemu-img check of the result is clean" \
			qemu-img check -q "$T/o/out"
	fi
	# OLD's clusters hold NEW's content in other bytes (edgeimg's level 9,
	# NEW qemu-img's level 6): what apply copies is judged by the hash,
	# the container built again without them, and NEW's file it is
	if [ -f "$T/q2-zlib.qcow2" ]; then
		rm -f "$T/o/out"
		exact "edgeimg's OLD, qemu-img's NEW" "$T/e1.qcow2" "$T/q2-zlib.qcow2"
	fi
else
	echo "SKIP $NAME: qcow2 writer not built (OUTPUT_QCOW2): edgeimg's clusters as OLD and NEW"
	t_skip=$((t_skip + 1))
fi

# --- squashfs made by mksquashfs ---------------------------------------------
if has_feature FORMAT_SQUASHFS; then
	fixture "tree 1" python3 - "$T/t1" "$T/t2" <<'PY' || { done_tests; exit; }
import os, random, shutil, sys
t1, t2 = sys.argv[1:3]
r = random.Random(3)
for d in ("etc", "usr/bin", "usr/share/doc"):
    os.makedirs(os.path.join(t1, d))
for i in range(60):
    open(f"{t1}/usr/share/doc/f{i}", "wb").write(b"doc %d\n" % i * r.randrange(10, 3000))
open(f"{t1}/usr/bin/tool", "wb").write(r.randbytes(400000) + b"x" * 300000)
open(f"{t1}/etc/conf", "w").write("a = 1\n" * 100)
shutil.copy(shutil.which("cmp"), f"{t1}/usr/bin/cmp")   # machine code, for xz's BCJ filters
os.symlink("tool", f"{t1}/usr/bin/link")
shutil.copytree(t1, t2, symlinks=True)
open(f"{t2}/etc/conf", "a").write("b = 2\n")
os.remove(f"{t2}/usr/share/doc/f7")
open(f"{t2}/usr/bin/new", "wb").write(r.randbytes(200000))
b = bytearray(open(f"{t2}/usr/bin/tool", "rb").read())
b[100000:100100] = r.randbytes(100)
open(f"{t2}/usr/bin/tool", "wb").write(b)
PY
	for c in zstd gzip "gzip -Xcompression-level 6 -Xwindow-size 10 -Xstrategy default,filtered,run_length_encoded" \
		"xz" "xz -Xbcj x86,arm -Xdict-size 50%" lz4 "lz4 -Xhc -b 65536"; do
		k=${c%% *}
		if [ "$k" = xz ] || [ "$k" = lz4 ]; then
			if ! has_feature "CODEC_${k^^}"; then
				echo "SKIP $NAME: codec not built (CODEC_${k^^}): squashfs $c"
				t_skip=$((t_skip + 1))
				continue
			fi
		fi
		# shellcheck disable=SC2086 # $c: the codec and its options
		fixture "mksquashfs $c 1" mksquashfs "$T/t1" "$T/s1.sqfs" -comp $c -noappend -quiet \
			-no-progress -all-root || continue
		# shellcheck disable=SC2086
		fixture "mksquashfs $c 2" mksquashfs "$T/t2" "$T/s2.sqfs" -comp $c -noappend -quiet \
			-no-progress -all-root || continue
		if [ "$c" != "${c#gzip -X}" ]; then
			# its compressor options (after the 96-byte superblock and a
			# 2-byte header: level, window, strategies) lying about the window
			cp "$T/s1.sqfs" "$T/bad.sqfs"
			printf '\003' | dd of="$T/bad.sqfs" bs=1 seek=102 conv=notrunc status=none
			run_ei 1 -- delta --exact "$T/bad.sqfs" "$T/s2.sqfs" "$T/o/bad.patch"
			has "squashfs $c: a window of 2^3 in OLD's options is refused by name" \
				'squashfs: gzip window_size 3 \(not 8\.\.15\)' "$ERR"
			check "squashfs $c: and no patch is left" test ! -e "$T/o/bad.patch"
		fi
		if [ "$c" != "${c#xz -Xbcj}" ] && [ "$(uname -m)" != x86_64 ]; then
			echo "SKIP $NAME: squashfs $c: BCJ blocks looked for on x86_64 hosts only (the tree's code is this host's)"
			t_skip=$((t_skip + 1))
		elif [ "$c" != "${c#xz -Xbcj}" ]; then
			# the x86 machine code made mksquashfs keep an x86 BCJ block
			check "squashfs $c: NEW has blocks filtered by BCJ" python3 - "$T/s2.sqfs" <<'PY'
import sys
d = open(sys.argv[1], "rb").read()
m, i, n = b"\xfd7zXZ\x00\x00\x01", 0, 0
while (i := d.find(m, i) + 1) > 0:
    n += (d[i + 12] & 3) == 1       # the block header's flags: two filters
sys.exit(n == 0)
PY
		fi
		# the decoded contents' patch: the file trees, rebuilt by edgeimg
		run_ei 0 -- delta --force -O squashfs "$T/s1.sqfs" "$T/s2.sqfs" "$T/tree.patch"
		exact "squashfs $c" "$T/s1.sqfs" "$T/s2.sqfs" "$(stat -c %s "$T/tree.patch")" ||
			continue
		check "squashfs $c: every block reproduces ($REBUILT of $BLOCKS)" \
			test "$REBUILT" = "$BLOCKS" -a "$BLOCKS" -gt 10
		# the unchanged files' blocks are OLD's, copied, not compressed
		check "squashfs $c: apply copies OLD's blocks of unchanged files (${COPIED:-none} of $BLOCKS)" \
			test "${COPIED:-0}" -gt 0 -a "${COPIED:-0}" -lt "$BLOCKS"
		check "squashfs $c: unsquashfs reads the result" \
			unsquashfs -no-progress -d "$T/x" "$T/o/out" >/dev/null
		check "squashfs $c: its files are tree 2's" diff -r "$T/t2" "$T/x"
		rm -rf "$T/x"
	done
	# an OLD whose blocks have NEW's content but other bytes (edgeimg's
	# gzip root filesystem of tree 1, NEW mksquashfs's of tree 2): what
	# apply copies is judged by the container's hash, and NEW's file it is
	if ! has_feature OUTPUT_SQUASHFS || ! has_feature FILES; then
		echo "SKIP $NAME: squashfs writer or file view not built: edgeimg's root filesystem as OLD"
		t_skip=$((t_skip + 1))
	elif [ -f "$T/s2.sqfs" ]; then
		run_ei 0 -- convert --files -O squashfs -o compression=gzip "$T/t1" "$T/e1.sqfs"
		rm -f "$T/o/out"
		exact "edgeimg's OLD, mksquashfs's NEW" "$T/e1.sqfs" "$T/s2.sqfs"
	fi
	# a squashfs holding a disk (mksquashfs of a directory with disk.img)
	mkdir -p "$T/d1" "$T/d2"
	cp "$T/v1.raw" "$T/d1/disk.img"
	cp "$T/v2.raw" "$T/d2/disk.img"
	if fixture "mksquashfs disk 1" mksquashfs "$T/d1" "$T/ds1.sqfs" -comp zstd -noappend \
		-quiet -no-progress -all-root &&
		fixture "mksquashfs disk 2" mksquashfs "$T/d2" "$T/ds2.sqfs" -comp zstd -noappend \
			-quiet -no-progress -all-root &&
		exact "disk-backed squashfs" "$T/ds1.sqfs" "$T/ds2.sqfs" "$raw_size"; then
		check "disk-backed squashfs: blocks reproduce ($REBUILT of $BLOCKS)" \
			test "$REBUILT" = "$BLOCKS" -a "$BLOCKS" -gt 10
	fi
	# memory: 1 MiB xz blocks, each compressed again on the device (OLD, a
	# gzip image, holds none of them), with -j 16 in the 64 MiB cap
	if [ -n "${SAN:-}" ] || [[ $EDGEIMG == *" "* ]] || ! has_feature CODEC_XZ; then
		echo "SKIP $NAME: apply's peak RSS: not under ASan or a runner, not without CODEC_XZ"
		t_skip=$((t_skip + 1))
	elif has_oracle /usr/bin/time; then
		cp -a "$T/t2" "$T/t3"
		python3 -c "import random; r = random.Random(5); open('$T/t3/big', 'w').write(''.join('%d %s\n' % (i, r.choice(['alpha', 'beta', 'gamma'])) for i in range(900000)))"
		if fixture "mksquashfs xz, 1 MiB blocks" mksquashfs "$T/t3" "$T/x3.sqfs" -comp xz \
			-b 1048576 -noappend -quiet -no-progress -all-root &&
			fixture "mksquashfs gzip" mksquashfs "$T/t1" "$T/g1.sqfs" -comp gzip -noappend \
				-quiet -no-progress -all-root; then
			rm -f "$T/p.patch" "$T/o/out"
			run_ei 0 -- delta --exact "$T/g1.sqfs" "$T/x3.sqfs" "$T/p.patch"
			/usr/bin/time -f %M -o "$T/rss" $EDGEIMG apply -j 16 "$T/g1.sqfs" "$T/p.patch" \
				"$T/o/out" 2>/dev/null
			rss=$(tail -n 1 "$T/rss")
			check "xz, 1 MiB blocks: apply -j 16 rebuilds NEW" cmp "$T/x3.sqfs" "$T/o/out"
			check "xz, 1 MiB blocks: apply -j 16 peak RSS ${rss} KiB < 64 MiB" test "$rss" -lt 65536
		fi
	fi
else
	echo "SKIP $NAME: squashfs reader not built (FORMAT_SQUASHFS): mksquashfs's containers"
	t_skip=$((t_skip + 1))
fi

# --- refusals: no patch, no output -------------------------------------------
rm -rf "$T/o"/*
run_ei 2 -- delta --exact -O qcow2 "$T/v1.raw" "$T/v2.raw" "$T/o/p.patch"
has "--exact with -O: named" "the target is NEW's own file" "$ERR"
run_ei 2 -- delta --exact --partition 1 "$T/v1.raw" "$T/v2.raw" "$T/o/p.patch"
has "--exact with --partition: named" "--partition" "$ERR"
run_ei 1 -- delta --exact "$T/v1.raw" "$T/v2.raw" "$T/o/p.patch"
has "--exact of a raw NEW: named" "no container an exact rebuild knows" "$ERR"
check "refusals: no patch" test -z "$(listing)"

done_tests
