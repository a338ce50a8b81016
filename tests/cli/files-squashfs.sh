#!/usr/bin/env bash
# requires: FILES OUTPUT_SQUASHFS
# SPDX-License-Identifier: MIT
# convert --files -O squashfs: a directory tree as a squashfs root
# filesystem, judged by squashfs-tools (unsquashfs -lls, extraction and
# sha256 per file), squashfs-tools-ng (sqfsdiff against mksquashfs of the
# same directory: contents, owners, permissions, xattrs, times, inode
# numbers) and the kernel (loop mount, compared by tests/files-list.py with
# the source), for every compressor built; sparse files, duplicates, hard
# links, large and deep directories, every file type; same bytes for any
# -j and, with SOURCE_DATE_EPOCH, whatever the source's times.
. "$(dirname "$0")/../lib.sh"
need python3 mksquashfs unsquashfs sqfsdiff setfattr getfattr mkfifo sha256sum

trap 'umount "$T/mnt" 2>/dev/null; rm -rf "$T"' EXIT
list() { python3 "$TOP/tests/files-list.py" "$1"; }
root=0
[ "$(id -u)" = 0 ] && root=1

# --- the tree -----------------------------------------------------------------
s=$T/src
mkdir -p "$s/etc/deep" "$s/empty" "$s/bin" "$s/big" "$s/wide" "$s/dup/a" "$s/dup/b"
printf 'root:x:0:0\n' >"$s/etc/passwd"
head -c 300000 /dev/urandom >"$s/bin/prog"
head -c 131072 /dev/urandom >"$s/bin/one-block"       # exactly a block: no tail
head -c 131073 /dev/urandom >"$s/bin/block-and-1"     # a one-byte tail
: >"$s/etc/empty-file"
head -c 200000 /dev/zero >"$s/etc/zeros"               # written zeros: sparse blocks
truncate -s 5M "$s/sparse"                             # holes with data between
printf 'tail' | dd of="$s/sparse" bs=1 seek=3000000 conv=notrunc status=none
truncate -s 64M "$s/all-hole"
# duplicates: a large file four times, a small one (fragment only) three times
head -c 400000 /dev/urandom >"$s/dup/a/big1"
cp "$s/dup/a/big1" "$s/dup/a/big2"
cp "$s/dup/a/big1" "$s/dup/b/big3"
cp "$s/dup/a/big1" "$s/dup/b/big4"
printf 'small and the same' >"$s/dup/a/s1"
cp "$s/dup/a/s1" "$s/dup/b/s2"
cp "$s/dup/a/s1" "$s/dup/b/s3"
# hard links: three names of one file in two directories, one of a symlink's dir
head -c 5000 /dev/urandom >"$s/bin/hl"
ln "$s/bin/hl" "$s/bin/hl2"
ln "$s/bin/hl" "$s/etc/hl3"
ln -s ../etc/passwd "$s/bin/link"
ln -s "$(head -c 4095 /dev/zero | tr '\0' 'x')" "$s/long-link"   # the longest target
mkfifo "$s/fifo"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$s/sock"
printf 'odd' >"$s/etc/name with space"$'\\and\001ctl'
# 300 entries (more than one directory header), and a directory whose
# listing passes 8 KiB (an extended inode with index entries)
for i in $(seq 1 300); do echo $i >"$s/wide/f$i"; done
for i in $(seq 1 400); do
	: >"$s/big/$(printf 'an-entry-name-long-enough-to-fill-blocks-%04d' $i)"
done
mkdir -p "$s/big/sub"
# a deep tree
d=$s/etc/deep
for i in $(seq 1 60); do d=$d/d$i; done
mkdir -p "$d"
echo bottom >"$d/file"
chmod 4755 "$s/bin/prog"
chmod 1777 "$s/empty"
chmod 0600 "$s/etc/passwd"
fixture "setfattr" setfattr -n user.comment -v hello "$s/etc/passwd"
setfattr -n user.bin -v 0x00ff10 "$s/bin/prog"
setfattr -n user.empty "$s/bin/one-block"
setfattr -n user.comment -v hello "$s/bin/block-and-1"  # the same set as passwd's
setfattr -n user.dir -v d "$s/etc"
setfattr -n user.big -v "$(head -c 3000 /dev/zero | tr '\0' 'v')" "$s/wide/f1"
if [ $root = 1 ]; then
	setfattr -n trusted.t -v 0x01 "$s/bin/prog"
	setfattr -n security.s -v sec "$s/bin/link" -h 2>/dev/null ||
		setfattr -n security.s -v sec "$s/etc/zeros"
	mknod "$s/null" c 1 3
	mknod "$s/loop9" b 7 9
	mknod "$s/bigminor" c 240 300000
	chown 1234:5678 "$s/etc/passwd"
	chown -h 70000:70001 "$s/bin/link"
	chown 42:43 "$s/wide"
fi
i=0
while read -r f; do
	touch -h -d @$((1500000000 + i * 1000)) "$f"
	i=$((i + 1))
done < <(find "$s" -depth)
newest=$((1500000000 + (i - 1) * 1000))      # the root's, visited last
list "$s" >"$T/want"

codecs="gzip"
has_feature CODEC_ZSTD && codecs="$codecs zstd"
has_feature CODEC_XZ && codecs="$codecs xz"
has_feature CODEC_LZ4 && codecs="$codecs lz4"

# sha256 of every regular file, by path
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
sums "$s" >"$T/want.sums"

for c in $codecs; do
	bs=131072
	[ $c = lz4 ] && bs=4096
	[ $c = xz ] && bs=1048576
	run_ei 0 -- convert --files -O squashfs -o compression=$c,block_size=$bs "$s" "$T/$c.sqfs"
	check "$c: unsquashfs -lls reads it" unsquashfs -lls "$T/$c.sqfs" >/dev/null
	rm -rf "$T/x"
	check "$c: unsquashfs extracts it" unsquashfs -q -n -d "$T/x" "$T/$c.sqfs" >/dev/null
	sums "$T/x" >"$T/got.sums"
	check "$c: every file's sha256 as the source's" cmp -s "$T/want.sums" "$T/got.sums"
	fixture "mksquashfs -comp $c" mksquashfs "$s" "$T/ref-$c.sqfs" -noappend -comp $c -b $bs -quiet -no-progress
	check "$c: sqfsdiff -T -I against mksquashfs: contents, owners, modes, xattrs, times, inode numbers" \
		sqfsdiff -T -I -a "$T/ref-$c.sqfs" -b "$T/$c.sqfs"
	ours=$(stat -c %s "$T/$c.sqfs") ref=$(stat -c %s "$T/ref-$c.sqfs")
	echo "size $c/$bs: edgeimg $ours, mksquashfs $ref"
	check "$c: no larger than mksquashfs's + 2% ($ours vs $ref)" test $((ours * 100)) -le $((ref * 102))
	if kernel_mount "$T/$c.sqfs"; then
		list "$T/mnt" >"$T/got"
		check "$c: the kernel's view is the source's (types, modes, owners, times, sizes, hashes, hard links, xattrs)" \
			diff "$T/want" "$T/got"
		check "$c: hard links share an inode (stat)" \
			test "$(stat -c '%i %h' "$T/mnt/bin/hl")" = "$(stat -c '%i %h' "$T/mnt/etc/hl3")"
		check "$c: three links counted" test "$(stat -c %h "$T/mnt/bin/hl2")" = 3
		check "$c: a lookup in the indexed directory" \
			test -e "$T/mnt/big/an-entry-name-long-enough-to-fill-blocks-0377"
		umount "$T/mnt"
	fi
done
grep -q '/bin/hl2 => /bin/hl$' "$T/want" && ok || bad "the source lists hard links (files-list.py)"

# --- duplicates and sparse files: stored once, holes not stored ---------------------
size() { stat -c %s "$1"; }
mkdir -p "$T/d1" "$T/d4"
head -c 2000000 /dev/urandom >"$T/d1/f"
for i in 1 2 3 4; do cp "$T/d1/f" "$T/d4/f$i"; done
run_ei 0 -- convert --files -O squashfs "$T/d1" "$T/d1.sqfs"
run_ei 0 -- convert --files -O squashfs "$T/d4" "$T/d4.sqfs"
check "four copies cost what one does ($(size "$T/d4.sqfs") vs $(size "$T/d1.sqfs"))" \
	test "$(size "$T/d4.sqfs")" -le $(($(size "$T/d1.sqfs") + 4096))
has "duplicates flagged" "Duplicates are removed" "$(unsquashfs -s "$T/d4.sqfs")"
rm -rf "$T/x"
unsquashfs -q -n -d "$T/x" "$T/d4.sqfs" >/dev/null
for f in f1 f2 f3 f4; do
	check "copy $f reads back" cmp -s "$T/x/$f" "$T/d1/f"
done
mkdir -p "$T/sp"
truncate -s 1G "$T/sp/hole"
printf 'x' | dd of="$T/sp/hole" bs=1 seek=500000000 conv=notrunc status=none
run_ei 0 -- convert --files -O squashfs "$T/sp" "$T/sp.sqfs"
check "a 1 GiB sparse file takes under 64 KiB ($(size "$T/sp.sqfs"))" test "$(size "$T/sp.sqfs")" -lt 65536
rm -rf "$T/x"
unsquashfs -q -n -d "$T/x" "$T/sp.sqfs" >/dev/null
check "the sparse file reads back" cmp -s "$T/x/hole" "$T/sp/hole"

# --- determinism ----------------------------------------------------------------
run_ei 0 -- convert --files -O squashfs -j1 "$s" "$T/j1.sqfs"
run_ei 0 -- convert --files -O squashfs -j4 "$s" "$T/j4.sqfs"
check "-j1 and -j4: the same bytes" cmp "$T/j1.sqfs" "$T/j4.sqfs"
run_ei 0 -- convert --files -O squashfs "$s" "$T/again.sqfs"
check "twice: the same bytes" cmp "$T/j1.sqfs" "$T/again.sqfs"
used=$(od -An -t u8 -j 40 -N 8 "$T/j1.sqfs" | tr -d ' ')
recipe=$(tail -c +$((used + 1)) "$T/j1.sqfs" | head -n 1 | tr -d '\0')
has "the recipe right after bytes_used, files=on, without name= or mtime=" \
	'^edgeimg-recipe:format=squashfs,writer=[^,]*,compression=[a-z0-9]*,level=[0-9]*,[a-z]*=[^,]*,(skip_random=on,)?block_size=131072,files=on,group_fragments=on$' \
	"$recipe"
check "zeros after the recipe to 4 KiB" test $(($(stat -c %s "$T/j1.sqfs") % 4096)) = 0
recipe=${recipe#edgeimg-recipe:}
run_ei 0 -- convert --files -O squashfs -o "$recipe" "$s" "$T/rt.sqfs"
check "convert -o <its recipe>: the same bytes" cmp "$T/j1.sqfs" "$T/rt.sqfs"
SOURCE_DATE_EPOCH=1700000000 run_ei 0 -- convert --files -O squashfs "$s" "$T/e1.sqfs"
find "$s" -exec touch -h -d @1234567890 {} +
SOURCE_DATE_EPOCH=1700000000 run_ei 0 -- convert --files -O squashfs "$s" "$T/e2.sqfs"
check "SOURCE_DATE_EPOCH: the same bytes whatever the source's times" cmp "$T/e1.sqfs" "$T/e2.sqfs"
lls=$(unsquashfs -lls -UTC "$T/e1.sqfs" | grep ' squashfs-root')
n_all=$(grep -c . <<<"$lls") n_epoch=$(grep -c ' 2023-11-14 22:13 squashfs-root' <<<"$lls")
check "SOURCE_DATE_EPOCH: every inode's time ($n_epoch of $n_all)" test "$n_all" -gt 700 -a "$n_epoch" = "$n_all"
has "SOURCE_DATE_EPOCH: the filesystem's time" "Creation or last append time Tue Nov 14 22:13:20 2023" \
	"$(TZ=UTC unsquashfs -s "$T/e1.sqfs")"
has "SOURCE_DATE_EPOCH in the recipe" 'mtime=1700000000$' \
	"$(tr '\0' '\n' <"$T/e1.sqfs" | grep -a '^edgeimg-recipe:')"

# --- group_fragments: tails of files of one name share fragment blocks ----------
# 40 directories, each with a 3,000-byte text (the same but for its
# first line) named copyright and 60 KB of random bytes: in walk order
# each fragment block holds two copyrights and two random files; grouped,
# one block holds the copyrights, which gzip then stores about once.
g=$T/grp
python3 - "$g" <<'PY'
import os, random, sys
random.seed(7)
text = bytes(random.choice(b'abcdefghijklmnopqrstuvwxyz ') for _ in range(2900))
for i in range(40):
    d = os.path.join(sys.argv[1], 'pkg%02d' % i)
    os.makedirs(d)
    open(os.path.join(d, 'copyright'), 'wb').write(b'Package: pkg%02d\n' % i + text)
    open(os.path.join(d, 'noise.bin'), 'wb').write(random.randbytes(60000))
PY
[ -f "$g/pkg39/copyright" ] || bad "setup: python3 wrote no tree in $g"
sums "$g" >"$T/grp.sums"
declare -A gsize grec
for v in on off; do
	run_ei 0 -- convert --files -O squashfs -o group_fragments=$v "$g" "$T/g-$v.sqfs"
	rm -rf "$T/x"
	check "group_fragments=$v: unsquashfs extracts it" unsquashfs -q -n -d "$T/x" "$T/g-$v.sqfs" >/dev/null
	sums "$T/x" >"$T/got.sums"
	check "group_fragments=$v: every file's sha256 as the source's" cmp -s "$T/grp.sums" "$T/got.sums"
	gsize[$v]=$(stat -c %s "$T/g-$v.sqfs")
	grec[$v]=$(tr '\0' '\n' <"$T/g-$v.sqfs" | grep -a '^edgeimg-recipe:')
done
check "group_fragments=on and off: the same tree (sqfsdiff -T -I)" \
	sqfsdiff -T -I -a "$T/g-off.sqfs" -b "$T/g-on.sqfs"
check "grouped: the copyrights stored about once (${gsize[on]} < ${gsize[off]} - 40000)" \
	test "${gsize[on]}" -lt $((gsize[off] - 40000))
run_ei 0 -- convert --files -O squashfs "$g" "$T/g-def.sqfs"
check "on is the default: the same bytes" cmp -s "$T/g-on.sqfs" "$T/g-def.sqfs"
has "the recipe names it when on" ',files=on,group_fragments=on$' "${grec[on]}"
check "off is a recipe without it" test "${grec[off]}" = "${grec[on]/,group_fragments=on/}"
run_ei 0 -- convert --files -O squashfs -j1 "$g" "$T/g-j1.sqfs"
check "grouped, -j1: the same bytes" cmp -s "$T/g-on.sqfs" "$T/g-j1.sqfs"
# one open name block per 128 KiB of the 4 MiB: a 1 MiB block size has 4
mkdir -p "$T/many"
for i in $(seq 1 12); do
	for n in a b c d e f; do head -c 3000 /dev/urandom >"$T/many/$n$i"; done
	mkdir -p "$T/many/dir$i"
	for n in a b c d e f; do cp "$T/many/$n$i" "$T/many/dir$i/$n"; done
done
run_ei 0 -- convert --files -O squashfs -o block_size=1M "$T/many" "$T/many.sqfs"
rm -rf "$T/x"
unsquashfs -q -n -d "$T/x" "$T/many.sqfs" >/dev/null
check "more names than open blocks: every file reads back" diff -r "$T/many" "$T/x"
run_ei 2 -- convert --files -O squashfs -o group_fragments=yes "$g" "$T/no.sqfs"
has "group_fragments=yes refused" 'squashfs: group_fragments=yes is not on or off' "$ERR"
check "group_fragments=yes: no OUT" test ! -e "$T/no.sqfs"
head -c 1048576 /dev/urandom >"$T/disk.raw"
run_ei 2 -- convert -O squashfs -o group_fragments=on "$T/disk.raw" "$T/no.sqfs"
has "group_fragments= on a disk refused" 'group_fragments= is for a root filesystem \(--files\), not for a disk' "$ERR"
check "group_fragments= on a disk: no OUT" test ! -e "$T/no.sqfs"

# --- refused ----------------------------------------------------------------------
run_ei 2 -- convert --files -O squashfs -o partitions=on "$s" "$T/no.sqfs"
check "partitions= refused, no OUT" test ! -e "$T/no.sqfs"
done_tests
