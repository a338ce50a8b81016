#!/usr/bin/env bash
# requires: FILES_EXT
# SPDX-License-Identifier: MIT
# ext2/3/4 as a file view (src/files/ext.c): images made by mke2fs -d from a
# generated tree (every file type, sparse and many-extent files, hard links,
# fast and slow symlinks, devices, setuid bits, ids past 65535, xattrs, an
# ACL, odd names, an htree directory), 1 KiB and 4 KiB blocks, inline data,
# 128-byte inodes; "edgeimg info --files" judged by the kernel (a read-only
# loop mount listed by tests/files-list.py) and by the generated tree itself;
# a partition of a GPT disk, also inside a qcow2; then hostile images made
# with debugfs and byte patches (E1-E9 of HOSTILE-INPUTS.md): each a named
# error, a non-zero exit, no listing, no crash.
. "$(dirname "$0")/../lib.sh"
need mke2fs debugfs python3 sfdisk qemu-img setfattr setfacl mknod
trap 'umount "$T/mnt" 2>/dev/null; rm -rf "$T"' EXIT
LIST="$TOP/tests/files-list.py"

# --- the tree ---------------------------------------------------------------
S=$T/src
mkdir -p "$S/sub/deep/er" "$S/many" "$S/sticky"
printf 'hello\n' >"$S/a"
: >"$S/empty"
truncate -s 10M "$S/sparse"
printf 'x' | dd of="$S/sparse" bs=1 seek=5000000 conv=notrunc status=none
head -c 3000000 /dev/urandom >"$S/big"
# 150 extents: data every 64 KiB, so the extent tree has an index block
for i in $(seq 0 149); do
	head -c 4096 /dev/urandom | dd of="$S/frag" bs=4096 seek=$((i * 16)) conv=notrunc status=none
done
# two extents in the inode: data at 0 and at 1 MiB
printf 'one' >"$S/two"
printf 'two' | dd of="$S/two" bs=1 seek=1048576 conv=notrunc status=none
ln "$S/a" "$S/sub/hl"
ln "$S/big" "$S/sub/deep/hl2"
ln -s a "$S/fast"
ln -s "$(printf 'x%.0s' $(seq 300))" "$S/slow"
ln -s ../../../outside "$S/sub/deep/up"
mkfifo "$S/fifo"
mknod "$S/chr" c 4 5
mknod "$S/blk" b 300 70000
mknod "$S/oldblk" b 8 1
python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$S/sock"
chmod 4755 "$S/a"
chmod 2711 "$S/sub"
chmod 1777 "$S/sticky"
chown 100000:70000 "$S/empty"
chown 4294967294:65536 "$S/fifo"
setfattr -n user.foo -v bar "$S/a"
setfattr -n user.empty "$S/a"
setfattr -n trusted.t -v 1 "$S/sub"
setfattr -n security.s -v 0x00ff00 "$S/big"
setfattr -n user.big -v "$(head -c 700 /dev/zero | tr '\0' 'v')" "$S/two"
setfacl -m u:1234:r "$S/empty"
printf 'n' >"$S/name with space"
printf 'n' >"$S/$(printf 'nl\nname')"
printf 'n' >"$S/$(printf 'bin\377\001')"
printf 'n' >"$S/$(printf 'L%.0s' $(seq 255))"
for i in $(seq 1 400); do : >"$S/many/f$i"; done
touch -h -d '2001-02-03 04:05:06' "$S/fast" "$S/sub/deep/er"
touch -d '1960-01-01' "$S/sub/deep"

# listing TREE: files-list.py of a directory
listing() { python3 "$LIST" "$1"; }

# kernel IMG OUT: the kernel's listing of IMG, or 1 where it cannot mount
kernel() {
	mkdir -p "$T/mnt"
	[ "$(id -u)" = 0 ] || return 1
	mount -o ro,loop "$1" "$T/mnt" 2>"$T/mount.err" || return 1
	listing "$T/mnt" >"$2"
	umount "$T/mnt"
}

# check_img NAME IMG: info --files of IMG against the kernel's view (where
# it mounts) and against the tree it was made from (lost+found and the
# root's own times aside; a sparse file's size where mke2fs -O inline_data
# loses its tail, see below).
check_img() {
	local name=$1 img=$2 sha
	sha=$(sha256sum <"$img")
	run_ei 0 -- info --files "$img"
	printf '%s\n' "$OUT" >"$T/$name.got"
	has "$name: ACL warned of" 'warning: empty: POSIX ACL not kept' "$ERR"
	if kernel "$img" "$T/$name.kernel"; then
		check "$name: listing = kernel's ($(diff "$T/$name.kernel" "$T/$name.got" | head -c 600))" \
			cmp -s "$T/$name.kernel" "$T/$name.got"
	elif [ -n "${CI:-}" ]; then
		bad "$name: cannot loop-mount: $(head -c 200 "$T/mount.err")"
	else
		echo "SKIP $NAME: $name: no loop mount"
		t_skip=$((t_skip + 1))
	fi
	grep -v -e ' /$' -e ' /lost+found$' "$T/$name.got" >"$T/$name.g2"
	grep -v ' /$' "$T/tree" >"$T/$name.t2"
	if [ "${3:-}" = inline ]; then
		# mke2fs 1.47.0 -d -O inline_data stops a sparse file at its last data
		grep -v ' /sparse$' "$T/$name.g2" >"$T/$name.g3"
		grep -v ' /sparse$' "$T/$name.t2" >"$T/$name.t3"
		mv "$T/$name.g3" "$T/$name.g2"
		mv "$T/$name.t3" "$T/$name.t2"
	fi
	check "$name: listing = the tree's ($(diff "$T/$name.t2" "$T/$name.g2" | head -c 600))" \
		cmp -s "$T/$name.t2" "$T/$name.g2"
	check "$name: the image is unchanged" test "$sha" = "$(sha256sum <"$img")"
}

listing "$S" >"$T/tree"
mk() { fixture "mke2fs $*" mke2fs -q -F -E root_owner=0:0 -d "$S" "$@"; }
mk -t ext2 -b 1024 "$T/e2-1k.img" 48M && check_img ext2-1k "$T/e2-1k.img"
mk -t ext3 -b 4096 "$T/e3-4k.img" 48M && check_img ext3-4k "$T/e3-4k.img"
mk -t ext4 -b 4096 "$T/e4-4k.img" 48M && check_img ext4-4k "$T/e4-4k.img"
mk -t ext4 -b 1024 "$T/e4-1k.img" 48M && check_img ext4-1k "$T/e4-1k.img"
mk -t ext4 -I 128 "$T/e4-128.img" 48M && check_img ext4-128 "$T/e4-128.img"
mk -t ext4 -O inline_data "$T/e4-inl.img" 48M && check_img ext4-inline "$T/e4-inl.img" inline
mk -t ext4 -O ^has_journal,^metadata_csum,^64bit "$T/e4-plain.img" 48M &&
	check_img ext4-plain "$T/e4-plain.img"

# inline data really used: small files and directories inside their inodes
if [ -f "$T/e4-inl.img" ]; then
	flags=$(debugfs -R 'stat /a' "$T/e4-inl.img" 2>/dev/null | sed -n 's/.*Flags: \(0x[0-9a-f]*\).*/\1/p')
	check "inline_data: /a is stored inline (flags $flags)" test $((flags & 0x10000000)) -ne 0
fi
# the many-extent file has an extent index block
depth=$(debugfs -R 'ex /frag' "$T/e4-4k.img" 2>/dev/null | awk 'NR == 2 { print $1 }')
check "ext4: /frag's extent tree has two levels ($depth)" test "$depth" = "0/" -o "$depth" = "0/1"

# mkfs_time / --files over a partition of a GPT disk, raw and in a qcow2
truncate -s 64M "$T/disk.img"
printf 'label: gpt\nstart=2048, size=8192, type=L, name=boot\nstart=10240, size=100352, type=L, name=root\n' |
	sfdisk -q "$T/disk.img" >/dev/null
dd if="$T/e4-4k.img" of="$T/disk.img" bs=512 seek=10240 conv=notrunc status=none
run_ei 0 -- info --files --partition 2 "$T/disk.img"
check "partition 2 of a GPT disk: the same listing" test "$OUT" = "$(cat "$T/ext4-4k.got")"
run_ei 0 -- info --files --partition root "$T/disk.img"
check "partition 'root': the same listing" test "$OUT" = "$(cat "$T/ext4-4k.got")"
run_ei 0 -- info --files "$T/disk.img"
check "the disk's only filesystem found without --partition" test "$OUT" = "$(cat "$T/ext4-4k.got")"
fixture "qemu-img convert" qemu-img convert -f raw -O qcow2 "$T/disk.img" "$T/disk.qcow2" &&
	run_ei 0 -- info --files --partition 2 "$T/disk.qcow2" &&
	check "partition 2 inside a qcow2: the same listing" test "$OUT" = "$(cat "$T/ext4-4k.got")"
run_ei 1 -- info --files --partition 1 "$T/disk.img"
has "an empty partition" 'no filesystem|not an ext2/3/4|not a squashfs' "$ERR"

# --- hostile images -----------------------------------------------------------
# Base: ext4 without checksums (so that the structure checks are reached)
# and one with them (so that a checksum is what fails).
H=$T/h.img
fixture "mke2fs hostile base" mke2fs -q -F -t ext4 -b 4096 -O ^metadata_csum,^has_journal \
	-E root_owner=0:0 -d "$S" "$H" 48M || { done_tests; exit; }
run_ei 0 -- info --files "$H"

cat >"$T/ext.py" <<'PY'
# ext.py IMG OP ARGS: patch an ext2/3/4 image in place.
#   sb OFF SIZE VALUE       superblock field at byte OFF (1024 + OFF)
#   blk BLOCK OFF SIZE VALUE  a field inside a block (4 KiB blocks)
#   name OLD NEW            the first directory entry named OLD renamed NEW (same length)
#   dent-ino NAME INO       the entry NAME's inode number
#   garbage BLOCK           a block of a directory overwritten with 0xa5
import struct, sys
img, op, a = sys.argv[1], sys.argv[2], sys.argv[3:]
d = bytearray(open(img, 'rb').read())

def put(pos, size, v):
    d[pos:pos + size] = int(v, 0).to_bytes(size, 'little')

def dent(name):
    n = name.encode('latin-1')
    p = 0
    while True:
        p = d.index(n, p)
        # rec_len, name_len and file type in front of the name
        ino, rec, nl = struct.unpack_from('<IHB', d, p - 8)
        if nl == len(n) and rec >= 8 + nl and ino:
            return p - 8
        p += 1

if op == 'sb':
    put(1024 + int(a[0], 0), int(a[1]), a[2])
elif op == 'blk':
    put(int(a[0]) * 4096 + int(a[1], 0), int(a[2]), a[3])
elif op == 'name':
    p = dent(a[0]) + 8
    d[p:p + len(a[1])] = a[1].encode('latin-1')
elif op == 'dent-ino':
    put(dent(a[0]), 4, a[1])
elif op == 'garbage':
    b = int(a[0])
    d[b * 4096:(b + 1) * 4096] = b'\xa5' * 4096
open(img, 'wb').write(d)
PY
# hostile DESC PATTERN SETUP...: a copy of $H changed by SETUP (commands
# where "@" is the copy) must fail with PATTERN in the error
# and be left unchanged (info prints the listing as it goes).
hostile() {
	local desc=$1 pat=$2 c=$T/bad.img sha
	shift 2
	cp "$H" "$c"
	local cmd
	for cmd in "$@"; do
		fixture "$desc: $cmd" bash -c "${cmd//@/$c}" >/dev/null || return
	done
	sha=$(sha256sum <"$c")
	run_ei 1 -- info --files "$c"
	has "$desc" "$pat" "$ERR"
	check "$desc: the image is unchanged" test "$sha" = "$(sha256sum <"$c")"
}
E=" python3 $T/ext.py @"
dbg() { echo "debugfs -w -R '$1' @"; }
ino() { debugfs -R "stat $1" "$H" 2>/dev/null | sed -n 's/^Inode: \([0-9]*\).*/\1/p'; }
bmap() { debugfs -R "bmap $1 $2" "$H" 2>/dev/null; }

# E1 superblock
hostile "E1 block size 2^31" 's_log_block_size 21 is not in 0..6' "$E sb 24 4 21"
hostile "E1 blocks count 0" 's_blocks_count 0 ' "$E sb 4 4 0"
hostile "E1 blocks count past the disk" 's_blocks_count 4294967295 .*past|s_blocks_count 4294967295 .*is not in' "$E sb 4 4 0xffffffff"
hostile "E1 inodes count 0" 's_inodes_count 0 ' "$E sb 0 4 0"
hostile "E1 inodes count 2^32-1" 's_inodes_count 4294967295 ' "$E sb 0 4 0xffffffff"
hostile "E1 inode size 100" 's_inode_size 100 is not a power of two' "$E sb 88 2 100"
hostile "E1 inode size 384" 's_inode_size 384 is not a power of two' "$E sb 88 2 384"
hostile "E1 first data block 5" 's_first_data_block 5 ' "$E sb 20 4 5"
hostile "E1 blocks per group 0" 's_blocks_per_group 0 ' "$E sb 32 4 0"
hostile "E1 inodes per group 2^31" 's_inodes_per_group 2147483648 ' "$E sb 40 4 0x80000000"
hostile "E1 unknown incompatible feature" 'incompatible features not supported: 0x40000000' "$E sb 96 4 0x400002c2"
hostile "E1 encrypt" 'incompatible features not supported: encrypt' "$(dbg 'feature encrypt')"
hostile "E1 magic gone: not ext" 'not an ext2/3/4|no filesystem|not a squashfs' "$E sb 56 2 0"
# E2 group descriptors
hostile "E2 inode table outside" 'group descriptors: .*inode table' "$(dbg 'set_bg 0 inode_table 99999999')"
hostile "E2 inode bitmap outside" 'group descriptors: .*inode bitmap' "$(dbg 'set_bg 0 inode_bitmap 99999999')"
# E9 journal
hostile "E9 needs_recovery" 'journal needs recovery' "$(dbg 'feature needs_recovery')"
# E3 extent trees
a=$(ino /a) two=$(ino /two) frag=$(ino /frag)
hostile "E3 extent past the filesystem" "inode $two \(two\): block 4000000000 .*outside the filesystem" \
	"$(dbg "set_inode_field /two block[5] 4000000000")"
hostile "E3 extents overlapping" "inode $two \(two\): extent at file block 0 overlaps" \
	"$(dbg "set_inode_field /two block[6] 0")"
hostile "E3 extent depth 6" "inode $frag \(frag\): extent tree depth 6 is more than 5" \
	"$(dbg "set_inode_field /frag block[1] 0x60004")"
# a loop: /frag's index block made an index pointing at itself
idx=$(debugfs -R 'ex /frag' "$H" 2>/dev/null | awk 'NR == 2 { print $8 }')
hostile "E3 extent tree loop" "inode $frag \(frag\): extent tree: .*cyclic loop" \
	"$(dbg "set_inode_field /frag block[1] 0x20004")" "$E blk $idx 6 2 1" "$E blk $idx 16 4 $idx" "$E blk $idx 20 2 0"
hostile "E3 extent header garbage" "inode $frag \(frag\): extent tree" "$E blk $idx 0 4 0x12345678"
# 40 files whose extents all point at /big's blocks: the walk's block
# budget (twice the filesystem's size) stops the reading, whatever the count
w=($(debugfs -R 'inode_dump -b /big' "$H" 2>/dev/null | python3 -c '
import sys
b = bytearray()
for l in sys.stdin:
    p = l.split()
    if len(p) > 1 and p[0] != "*":
        b += bytes.fromhex("".join(t for t in p[1:9] if len(t) == 4))
print(" ".join(str(int.from_bytes(b[i * 4:i * 4 + 4], "little")) for i in range(15)))'))
for i in $(seq 1 40); do
	for k in $(seq 0 14); do echo "set_inode_field /many/f$i block[$k] ${w[$k]}"; done
	echo "set_inode_field /many/f$i flags 0x80000"
	echo "set_inode_field /many/f$i size 3000000"
done >"$T/shared.cmds"
hostile "E3 blocks shared by 40 files" 'the files map more blocks than the filesystem.s 12288' \
	"debugfs -w -f $T/shared.cmds @"
# E4 directory blocks
sub=$(ino /sub) many=$(ino /many)
hostile "E4 directory block garbage" "directory inode $many \(many\)" "$E garbage $(bmap /many 0)"
hostile "E4 a name with /" "directory inode $sub \(sub\): a name holds '/'" "$E name deep de/p"
hostile "E4 an entry of inode 0xffffff" "entry 'deep' has inode 16777215" "$E dent-ino deep 0xffffff"
hostile "E4 an entry of the journal's inode" "entry 'deep' has inode 8 " "$E dent-ino deep 8"
# E5 inode graph
hostile "E5 directory loop" 'directory inode [0-9]+ is reached twice \(a loop\)' "$(dbg 'link /sub /sub/deep/loop')"
hostile "E5 root linked below" 'directory inode 2 is reached twice' "$(dbg 'link / /sub/root')"
hostile "E5 links_count 1 but two entries" "inode $a is reached twice but its i_links_count is 1" \
	"$(dbg 'set_inode_field /a links_count 1')"
hostile "E5 more entries than links_count" "is reached more often than its i_links_count 2" \
	"$(dbg 'link /a /sub/third')"
hostile "E5 a deleted inode linked" "inode $a \(a\) is linked but its i_links_count is 0" \
	"$(dbg 'set_inode_field /a links_count 0')"
# E6 symlinks
hostile "E6 fast symlink target with NUL" 'symlink target holds a NUL' "$(dbg 'set_inode_field /fast block[0] 0')"
hostile "E6 symlink length 5000" 'symlink length 5000 is not in 1..4095' "$(dbg 'set_inode_field /slow size 5000')"
# E7 xattrs
xb=$(debugfs -R 'stat /two' "$H" 2>/dev/null | sed -n 's/^File ACL: \([0-9]*\).*/\1/p')
hostile "E7 xattr block refcount 0" "inode $two \(two\): xattr block $xb has refcount 0" "$E blk $xb 4 4 0"
hostile "E7 xattr block outside" "inode $two \(two\): xattr block 99999999 is outside" \
	"$(dbg 'set_inode_field /two file_acl 99999999')"
hostile "E7 xattr value size 2^32-1" "inode $two \(two\): extended attributes: " "$E blk $xb 40 4 0xffffffff"
hostile "E7 xattr value offset past the block" "inode $two \(two\): extended attributes: " "$E blk $xb 34 2 0xfff0"
hostile "E7 unknown name index" "inode $two \(two\): extended attribute 'big' has an unknown name index" \
	"$E blk $xb 33 1 99"
# E8 sizes
hostile "E8 size 2^62" "inode $a \(a\): size 4611686018427387904 is past" "$(dbg 'set_inode_field /a size 0x4000000000000000')"
hostile "E8 i_extra_isize 250" "i_extra_isize 250 " "$(dbg 'set_inode_field /a extra_isize 250')"
hostile "E8 no file type" "i_mode 0777 is no file type" "$(dbg 'set_inode_field /a mode 0777')"

# inline data past the inode
if [ -f "$T/e4-inl.img" ]; then
	cp "$T/e4-inl.img" "$T/inl-bad.img"
	debugfs -w -R 'set_inode_field /a size 1000' "$T/inl-bad.img" >/dev/null 2>&1
	run_ei 1 -- info --files "$T/inl-bad.img"
	has "E8 inline data size past the inode" 'size 1000 is past its [0-9]+ bytes of inline data' "$ERR"
fi
# metadata_csum: a group descriptor checksum wrong
cp "$T/e4-4k.img" "$T/csum.img"
python3 "$T/ext.py" "$T/csum.img" blk 1 0x1e 2 0x1234
run_ei 1 -- info --files "$T/csum.img"
has "E2 group descriptor checksum wrong" 'group descriptor 0: checksum 0x1234 is wrong' "$ERR"

# G1: nothing, zeros, the magic alone
: >"$T/zero"
run_ei 1 -- info --files "$T/zero"
truncate -s 1M "$T/zeros"
run_ei 1 -- info --files "$T/zeros"
has "G1 zeros: no filesystem" 'no filesystem|not a squashfs' "$ERR"
cp "$T/zeros" "$T/magic"
python3 "$T/ext.py" "$T/magic" sb 56 2 0xef53
run_ei 1 -- info --files "$T/magic"
has "G1 the magic alone" 'ext2: s_blocks_count 0 ' "$ERR"

done_tests
