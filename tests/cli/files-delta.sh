#!/usr/bin/env bash
# requires: FILES FILES_EXT OUTPUT_SQUASHFS CODEC_ZSTD
# SPDX-License-Identifier: MIT
# Root filesystems as OLD and NEW of delta and apply: squashfs root
# filesystems written by edgeimg from two ext4 images (mkfs.ext4 -d), the
# patch made between their file-tree views, apply rebuilding NEW's file
# byte for byte (cmp), for every compressor; a mksquashfs image as OLD;
# one as NEW (refused without -O, rebuilt as edgeimg's root filesystem of
# the same files with it, judged by sqfsdiff); a cut patch resumed; a
# loop device as the slot written and as OLD; an unprivileged user.
. "$(dirname "$0")/../lib.sh"
need cmp mkfs.ext4 setfattr mksquashfs sqfsdiff unsquashfs setpriv

# --- two versions of a small tree, as ext4 images -----------------------------
t1=$T/t1
mkdir -p "$t1/usr/lib" "$t1/etc" "$t1/var/empty"
cp -r "$TOP/src" "$t1/usr/lib/"
head -c 1500000 /dev/urandom >"$t1/usr/lib/blob.so"
head -c 300000 /dev/urandom >"$t1/usr/lib/prog"
ln "$t1/usr/lib/prog" "$t1/usr/lib/prog-link"
ln -s ../usr/lib/prog "$t1/etc/prog"
truncate -s 3M "$t1/var/sparse"
printf 'data' | dd of="$t1/var/sparse" bs=1 seek=2000000 conv=notrunc status=none
printf 'v1\n' >"$t1/etc/version"
fixture "setfattr" setfattr -n user.note -v one "$t1/etc/version" || { done_tests; exit; }
setfattr -n security.capability -v 0x0100000200000000000000000000000000000000 "$t1/usr/lib/prog"
cp -a "$t1" "$T/t2"
t2=$T/t2
printf 'v2\n' >"$t2/etc/version"
setfattr -n user.note -v two "$t2/etc/version"
rm -r "$t2/usr/lib/src/files"
head -c 200000 /dev/urandom >"$t2/usr/lib/new.so"
head -c 100000 /dev/urandom | dd of="$t2/usr/lib/blob.so" bs=1 seek=700000 conv=notrunc status=none
echo "/* v2 */" >>"$t2/usr/lib/src/edgeimg.h"
for v in 1 2; do
	fixture "mkfs.ext4 -d" mkfs.ext4 -q -F -b 4096 -d "$T/t$v" "$T/e$v.ext4" 16M >/dev/null ||
		{ done_tests; exit; }
done

# --- delta and apply between two edgeimg root filesystems ----------------------
for comp in zstd gzip xz lz4; do
	run_ei 0 -- convert --files -O squashfs -o compression=$comp "$T/e1.ext4" "$T/r1.$comp"
	run_ei 0 -- convert --files -O squashfs -o compression=$comp "$T/e2.ext4" "$T/r2.$comp"
	run_ei 0 -- delta -v "$T/r1.$comp" "$T/r2.$comp" "$T/p.$comp"
	has "$comp: the target is a root filesystem's recipe" "target format=squashfs,.*compression=$comp,.*files=on" "$ERR"
	check "$comp: no note that apply would write other bytes" test -z "$(grep 'is not what' <<<"$ERR")"
	run_ei 0 -- apply -v "$T/r1.$comp" "$T/p.$comp" "$T/o.$comp"
	check "$comp: apply rebuilt NEW's root filesystem byte for byte" cmp "$T/r2.$comp" "$T/o.$comp"
	# unchanged files' blocks come from OLD's root filesystem, as stored
	n=$(sed -n 's/.*: \([0-9]*\) of \([0-9]*\) compressed blocks copied from OLD.*/\1 \2/p' <<<"$ERR")
	check "$comp: most blocks copied from OLD, not compressed again ($n)" \
		test -n "$n" -a "${n% *}" -gt 0 -a $((${n% *} * 2)) -gt "${n#* }"
	rm -f "$T/o.$comp"
done
# group_fragments=off: a recipe without the key (as every root filesystem
# before it) is rebuilt with walk-order fragments, not today's default;
# and OLD grouped, NEW not, and the reverse
for v in off on; do
	run_ei 0 -- convert --files -O squashfs -o group_fragments=off "$T/e$([ $v = off ] && echo 1 || echo 2).ext4" "$T/gx.$v"
done
check "setup: group_fragments=off changes the file" test -n "$(cmp "$T/gx.on" "$T/r2.zstd" 2>&1)"
run_ei 0 -- delta "$T/gx.off" "$T/gx.on" "$T/pgx"
run_ei 0 -- apply "$T/gx.off" "$T/pgx" "$T/o.sqfs"
check "group_fragments=off, both: NEW byte for byte" cmp "$T/gx.on" "$T/o.sqfs"
rm -f "$T/o.sqfs" "$T/pgx"
run_ei 0 -- delta "$T/r1.zstd" "$T/gx.on" "$T/pgx"
run_ei 0 -- apply "$T/r1.zstd" "$T/pgx" "$T/o.sqfs"
check "OLD grouped, NEW group_fragments=off: NEW byte for byte" cmp "$T/gx.on" "$T/o.sqfs"
rm -f "$T/o.sqfs" "$T/pgx"
run_ei 0 -- delta "$T/gx.off" "$T/r2.zstd" "$T/pgx"
run_ei 0 -- apply "$T/gx.off" "$T/pgx" "$T/o.sqfs"
check "OLD group_fragments=off, NEW grouped: NEW byte for byte" cmp "$T/r2.zstd" "$T/o.sqfs"
rm -f "$T/o.sqfs" "$T/pgx" "$T/gx.off" "$T/gx.on"
# the view is the files: OLD's files compressed otherwise are the same OLD,
# with nothing to copy
run_ei 0 -- apply -v "$T/r1.gzip" "$T/p.zstd" "$T/o.sqfs"
check "the zstd patch applied to OLD's files in gzip: NEW byte for byte" cmp "$T/r2.zstd" "$T/o.sqfs"
check "... with no block copied" test -z "$(grep 'copied from OLD' <<<"$ERR")"
rm -f "$T/o.sqfs"
run_ei 0 -- delta "$T/r1.gzip" "$T/r2.zstd" "$T/pg"
run_ei 0 -- apply -v "$T/r1.gzip" "$T/pg" "$T/o.sqfs"
check "OLD in gzip, NEW in zstd: NEW byte for byte" cmp "$T/r2.zstd" "$T/o.sqfs"
check "... with no block copied" test -z "$(grep 'copied from OLD' <<<"$ERR")"
rm -f "$T/o.sqfs" "$T/pg"
# an OLD whose recipe lies (mksquashfs's zlib blocks under edgeimg's
# libdeflate recipe): the copied blocks make another container, which the
# read-back catches; apply builds it again from NEW alone
if fixture "mksquashfs -comp gzip" mksquashfs "$t1" "$T/liar.sqfs" -noappend -quiet -no-progress -comp gzip >/dev/null; then
	rec=$(tail -c +$(($(od -An -t u8 -j 40 -N 8 "$T/r2.gzip" | tr -d ' ') + 1)) "$T/r2.gzip" | head -n 1 | tr -d '\0')
	used=$(od -An -t u8 -j 40 -N 8 "$T/liar.sqfs" | tr -d ' ')
	printf '%s\n' "$rec" | dd of="$T/liar.sqfs" bs=1 seek=$used conv=notrunc status=none
	run_ei 0 -- delta "$T/liar.sqfs" "$T/r2.gzip" "$T/pl"
	run_ei 0 -- apply -v "$T/liar.sqfs" "$T/pl" "$T/o.sqfs"
	has "a lying OLD: its blocks were tried, then the container built again" \
		'blocks copied from OLD is not the patch.s: building it again without them' "$ERR"
	check "... and NEW byte for byte" cmp "$T/r2.gzip" "$T/o.sqfs"
	rm -f "$T/o.sqfs" "$T/pl" "$T/liar.sqfs"
fi
rm -f "$T/r1.gzip"
rm -f "$T"/r1.gzip "$T"/r?.xz "$T"/r?.lz4

# the patch against the one between the ext4 images themselves
run_ei 0 -- delta "$T/e1.ext4" "$T/e2.ext4" "$T/p.ext4"
ps=$(stat -c %s "$T/p.zstd") pe=$(stat -c %s "$T/p.ext4")
check "the root filesystems' patch ($ps bytes) within 1.2x the ext4 images' ($pe)" \
	test $((ps * 10)) -le $((pe * 12))
run_ei 0 -- info "$T/p.zstd"
has "info of the patch names the target" 'files=on' "$OUT"

# SOURCE_DATE_EPOCH on the device does not change the rebuild
SOURCE_DATE_EPOCH=1 ei apply "$T/r1.zstd" "$T/p.zstd" "$T/o.zstd" 2>"$T/.err"
check "apply with SOURCE_DATE_EPOCH set: still NEW byte for byte" cmp "$T/r2.zstd" "$T/o.zstd"
rm -f "$T/o.zstd"
# ... and root filesystems made with it rebuild with their recorded time
SOURCE_DATE_EPOCH=1700000000 ei convert --files -O squashfs "$T/e1.ext4" "$T/s1.sqfs"
SOURCE_DATE_EPOCH=1700000000 ei convert --files -O squashfs "$T/e2.ext4" "$T/s2.sqfs"
run_ei 0 -- delta "$T/s1.sqfs" "$T/s2.sqfs" "$T/ps"
run_ei 0 -- apply "$T/s1.sqfs" "$T/ps" "$T/o.sqfs"
check "SOURCE_DATE_EPOCH root filesystems: NEW byte for byte" cmp "$T/s2.sqfs" "$T/o.sqfs"
rm -f "$T/o.sqfs" "$T/s1.sqfs" "$T/s2.sqfs" "$T/ps"

# --- a root filesystem other tools made ------------------------------------------
fixture "mksquashfs" mksquashfs "$t1" "$T/m1.sqfs" -noappend -quiet -no-progress -comp zstd >/dev/null
fixture "mksquashfs" mksquashfs "$t2" "$T/m2.sqfs" -noappend -quiet -no-progress -comp zstd >/dev/null
run_ei 0 -- delta "$T/m1.sqfs" "$T/r2.zstd" "$T/pm"
run_ei 0 -- apply "$T/m1.sqfs" "$T/pm" "$T/o.sqfs"
check "OLD made by mksquashfs: NEW byte for byte" cmp "$T/r2.zstd" "$T/o.sqfs"
rm -f "$T/o.sqfs"
# NEW made by mksquashfs, no -O: the target is its own file (the packed
# views of delta --exact), rebuilt byte for byte
run_ei 0 -- delta -v "$T/r1.zstd" "$T/m2.sqfs" "$T/pm2"
has "NEW made by mksquashfs, no -O: its blocks compressed again on the device" \
	"of NEW's [0-9]+ compressed blocks are compressed again" "$ERR"
run_ei 0 -- apply "$T/r1.zstd" "$T/pm2" "$T/o.sqfs"
check "NEW made by mksquashfs, no -O: its own file, byte for byte" cmp "$T/m2.sqfs" "$T/o.sqfs"
rm -f "$T/o.sqfs" "$T/pm2"
run_ei 0 -- delta -O squashfs -o compression=zstd "$T/r1.zstd" "$T/m2.sqfs" "$T/pm2"
run_ei 0 -- apply "$T/r1.zstd" "$T/pm2" "$T/o.sqfs"
sqfsdiff -T -a "$T/m2.sqfs" -b "$T/o.sqfs" >"$T/diff" 2>&1
rc=$?
check "NEW made by mksquashfs, -O squashfs: the same files, owners, modes, times (sqfsdiff -T): $(head -c 300 "$T/diff")" \
	test $rc = 0 -a ! -s "$T/diff"
sqfsdiff -a "$T/m1.sqfs" -b "$T/o.sqfs" >/dev/null 2>&1
check "... where sqfsdiff tells v1 from it" test $? = 1
rm -f "$T/o.sqfs" "$T/pm" "$T/pm2"

# --- what is refused ---------------------------------------------------------------
run_ei 2 -- delta "$T/e1.ext4" "$T/r2.zstd" "$T/px"
has "a disk as OLD, a root filesystem as NEW" 'NEW is a squashfs root filesystem and OLD is not' "$ERR"
run_ei 2 -- delta "$T/r1.zstd" "$T/e2.ext4" "$T/px"
has "a root filesystem as OLD, a disk as NEW" 'OLD is a squashfs root filesystem and NEW is not' "$ERR"
run_ei 2 -- delta -O qcow2 "$T/r1.zstd" "$T/r2.zstd" "$T/px"
has "a root filesystem's target is squashfs" 'its target is -O squashfs' "$ERR"
check "no patch after the refusals" test ! -e "$T/px"
run_ei 1 -- apply "$T/m2.sqfs" "$T/p.zstd" "$T/o.sqfs"
has "apply with another root filesystem as OLD" "nothing written" "$ERR"
check "no OUT after it" test ! -e "$T/o.sqfs"
run_ei 1 -- apply "$T/e1.ext4" "$T/p.zstd" "$T/o.sqfs"
has "apply with a disk as OLD of a root filesystem's patch" 'not a squashfs root filesystem' "$ERR"

# --- what a view of OLD may hold -------------------------------------------------------
# The view holds each entry's record (its path among them) and 40 bytes of
# index, capped at the limit of metadata held in memory (32 MiB): a tree of
# 12,000 entries with 3,000-byte paths (mksquashfs's, about 37 MB of
# records) is refused while it is walked, by delta and by apply, which
# stays within 64 MiB of memory instead of holding it all first.
deep=$T/deep deep_made=0
if fixture "a tree of long paths" python3 - "$deep" <<'PY'
import os, sys
d = os.path.join(sys.argv[1], *[c * 250 for c in "abcdefghijkl"])
os.makedirs(d)
for i in range(12000):
    open(os.path.join(d, "f%05d" % i), "w").close()
PY
then
	fixture "mksquashfs of the tree" mksquashfs "$deep" "$T/deep.sqfs" -noappend -quiet -no-progress >/dev/null &&
		deep_made=1
	rm -rf "$deep"
fi
if [ $deep_made = 1 ]; then
	run_ei 1 -- delta "$T/deep.sqfs" "$T/r2.zstd" "$T/px"
	has "delta: OLD's view over the limit, named" 'file-tree view: .*deep.sqfs.*pass 32 MiB, the limit of metadata held in memory' "$ERR"
	check "... and no patch" test ! -e "$T/px"
	rm -f "$T/o.sqfs"
	if [ -z "${SAN:-}" ] && [[ $EDGEIMG != *" "* ]] && has_oracle /usr/bin/time; then
		/usr/bin/time -f %M -o "$T/rss" $EDGEIMG apply "$T/deep.sqfs" "$T/p.zstd" "$T/o.sqfs" 2>"$T/.err"
		check "apply: OLD's view over the limit refused in $(tail -n 1 "$T/rss") KiB (< 64 MiB)" \
			test "$(tail -n 1 "$T/rss")" -lt 65536
	else
		ei apply "$T/deep.sqfs" "$T/p.zstd" "$T/o.sqfs" 2>"$T/.err"
	fi
	has "apply: OLD's view over the limit, named" 'OLD.*pass 32 MiB, the limit of metadata held in memory' "$(cat "$T/.err")"
	check "... and no OUT" test ! -e "$T/o.sqfs"
	rm -f "$T/deep.sqfs"
fi

# --- a cut download, resumed -------------------------------------------------------
half=$(($(stat -c %s "$T/p.zstd") / 2))
head -c $half "$T/p.zstd" | ei apply "$T/r1.zstd" - "$T/o.sqfs" 2>"$T/.err"
has "a cut patch stops, resumable" 'run again with --resume' "$(cat "$T/.err")"
check "no OUT from the cut patch" test ! -e "$T/o.sqfs"
run_ei 0 -- apply --resume "$T/r1.zstd" "$T/p.zstd" "$T/o.sqfs"
check "resumed: NEW byte for byte" cmp "$T/r2.zstd" "$T/o.sqfs"
check "no state left" test -z "$(ls "$T" | grep edgeimg-)"
rm -f "$T/o.sqfs"

# --- a loop device: the slot written, then the slot as OLD ---------------------------
if [ "$(id -u)" = 0 ] && truncate -s 24M "$T/slot.img" &&
   dev=$(losetup -f --show "$T/slot.img" 2>/dev/null); then
	n=$(stat -c %s "$T/r2.zstd")
	run_ei 0 -- apply --state "$T/slot" "$T/r1.zstd" "$T/p.zstd" "$dev"
	check "slot: the root filesystem written into the device" cmp -n $n "$T/r2.zstd" "$dev"
	# the next update's OLD is that slot: its root filesystem's files
	run_ei 0 -- delta "$T/r2.zstd" "$T/r1.zstd" "$T/pback"
	run_ei 0 -- apply "$dev" "$T/pback" "$T/back.sqfs"
	check "slot as OLD: NEW byte for byte" cmp "$T/r1.zstd" "$T/back.sqfs"
	losetup -d "$dev"
	rm -f "$T/back.sqfs" "$T/pback"
elif [ -n "${CI:-}" ]; then
	bad "no loop device (root: $(id -u)): the slot case cannot run under CI"
else
	echo "SKIP $NAME: no loop device (needs root and /dev/loop*): the slot case was not run"
fi
rm -f "$T/slot.img"

# --- a view written from the spec, not by edgeimg ------------------------------------
# tests/fuzz/seed-ftview.sh writes views by its own Python from the layout
# in src/delta/delta-format.md; the squashfs writer's files=on (what apply
# runs) makes a root filesystem of one, which unsquashfs judges.
mkdir -p "$T/views"
if fixture "seed-ftview.sh" bash "$TOP/tests/fuzz/seed-ftview.sh" "$T/views"; then
	run_ei 0 -- convert -f raw -O squashfs -o files=on "$T/views/tree" "$T/v.sqfs"
	unsquashfs -lls "$T/v.sqfs" >"$T/ls" 2>&1
	for want in 'drwxr-xr-x root/root .* squashfs-root/etc$' \
		'-rw-r--r-- root/root +4200 .* squashfs-root/etc/file$' \
		'-rw-r--r-- root/root +4200 .* squashfs-root/etc/hard$' \
		'lrw-r--r-- root/root .* squashfs-root/etc/link -> file$' \
		'brw-r--r-- root/root .* squashfs-root/sda$' \
		'-rw-r--r-- root/root +8293 .* squashfs-root/sparse$' \
		'prw-r--r-- .* squashfs-root/z-fifo$' 'srw-r--r-- .* squashfs-root/z-sock$'; do
		has "a view from the spec: unsquashfs lists /$want/" "$want" "$(cat "$T/ls")"
	done
	unsquashfs -d "$T/vx" "$T/v.sqfs" >/dev/null 2>&1
	check "... and extracts etc/file's bytes" cmp "$T/vx/etc/file" <(for i in $(seq 700); do echo hello; done)
	run_ei 0 -- convert -f raw -O squashfs -o files=on "$T/views/root" "$T/v0.sqfs"
	check "a view of the root alone: an empty root filesystem" test "$(unsquashfs -lls "$T/v0.sqfs" | grep -c squashfs-root)" = 1
	run_ei 1 -- convert -O squashfs -o files=on "$T/e1.ext4" "$T/v1.sqfs"
	has "files=on of a disk: refused, pointing at convert --files" 'files=on takes a file-tree view.*convert --files' "$ERR"
	head -c 5000 "$T/views/tree" >"$T/views/cut"
	run_ei 1 -- convert -f raw -O squashfs -o files=on "$T/views/cut" "$T/v1.sqfs"
	has "a cut view: refused, naming the view" 'file-tree view: header .*view bytes 28672 \(of 5000\)' "$ERR"
	check "... and no OUT" test ! -e "$T/v1.sqfs"
fi

# --- an unprivileged user ------------------------------------------------------------
if [ "$(id -u)" = 0 ]; then
	mkdir -p "$T/u"
	cp "$T/r1.zstd" "$T/r2.zstd" "$T/u/"
	chown -R nobody "$T/u"
	chmod 755 "$T"
	setpriv --reuid=nobody --regid=nogroup --clear-groups \
		$EDGEIMG delta "$T/u/r1.zstd" "$T/u/r2.zstd" "$T/u/p" 2>"$T/.err"
	check "nobody makes the patch: $(head -c 200 "$T/.err")" test -s "$T/u/p"
	setpriv --reuid=nobody --regid=nogroup --clear-groups \
		$EDGEIMG apply "$T/u/r1.zstd" "$T/u/p" "$T/u/o.sqfs" 2>"$T/.err"
	check "nobody applies it: NEW byte for byte" cmp "$T/r2.zstd" "$T/u/o.sqfs"
fi
done_tests
