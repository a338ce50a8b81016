#!/usr/bin/env bash
# requires: FILES FORMAT_SQUASHFS
# SPDX-License-Identifier: MIT
# A squashfs root filesystem as a --files source: info --files of images
# mksquashfs made of a tree holding every file type (every codec, 4 KiB
# and 1 MiB blocks, fragments or not, duplicates, sparse files, hard links,
# devices, fifos, sockets, xattrs user./trusted./security. inline and
# out of line, symlinks up to 4095 bytes, 320 entries in a directory),
# judged by the kernel (tests/files-list.py over a read-only loop mount)
# and by unsquashfs -d; then images with bytes poked into their inode,
# directory, fragment and xattr tables: a named error, exit 1, no output.
. "$(dirname "$0")/../lib.sh"
need mksquashfs unsquashfs python3 setfattr mkfifo cmp

list() { python3 "$TOP/tests/files-list.py" "$1"; }
root=0
[ "$(id -u)" = 0 ] && root=1

# --- the tree -------------------------------------------------------------------
# On a tmpfs where one can be mounted: ext4 holds no xattr value of 10 KiB.
# unsquashfs extracts there too
fs=$T/fs
mkdir -p "$fs" "$T/mnt"
tmpfs=0
if [ $root = 1 ] && mount -t tmpfs -o size=64m edgeimg-test "$fs" 2>/dev/null; then
	tmpfs=1
	trap 'umount "$T/mnt" 2>/dev/null; umount "$fs"; rm -rf "$T"' EXIT
fi
s=$fs/tree
mkdir -p "$s"
mkdir -p "$s/big/sub" "$s/sub/deeper/deepest" "$s/dev" "$s/emptydir"
echo hello >"$s/a.txt"
: >"$s/empty"
head -c 4095 /dev/urandom >"$s/f4095"
head -c 4096 /dev/urandom >"$s/f4096"
head -c 4097 /dev/urandom >"$s/f4097"
head -c 300000 /dev/urandom >"$s/rand"
cp "$s/rand" "$s/rand-copy"
seq 1 30000 >"$s/seq.txt"
truncate -s 2M "$s/sparse"
printf 'middle' | dd of="$s/sparse" bs=1 seek=1000000 conv=notrunc status=none
truncate -s 1M "$s/allsparse"
head -c 70000 /dev/urandom >"$s/tailzero"
truncate -s 300000 "$s/tailzero"
echo linked >"$s/hl1"
ln "$s/hl1" "$s/sub/hl2"
ln "$s/hl1" "$s/zz-hl3"
for i in $(seq 1 320); do echo "$i" >"$s/big/entry-$(printf %04d "$i")"; done
mkfifo "$s/dev/fifo"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$s/dev/sock"
ln -s a.txt "$s/sym-short"
ln -s "$(python3 -c "print('x/' * 2047 + 'y')")" "$s/sym-4095"
ln -s /nonexistent/abs "$s/sub/sym-abs"
printf 'odd' >"$s/name with space"
printf 'nl' >"$s/new"$'\n'"line"
printf 'bs' >"$s/back\\slash"
printf 'u' >"$s/ünï"
chmod 4755 "$s/a.txt"
chmod 1777 "$s/sub"
chmod 2750 "$s/sub/deeper"
chmod 0600 "$s/f4095"
touch -d @1000000000 "$s/a.txt"
touch -h -d @1234567890 "$s/sym-short"
touch -d @4000000000 "$s/empty"
fixture "user xattrs" setfattr -n user.comment -v hello "$s/a.txt"
setfattr -n user.dirattr -v dv "$s/sub"
setfattr -n user.empty "$s/sub/deeper"
setfattr -n user.onlink -v L "$s/hl1"
setfattr -n user.root -v r "$s"
# a value over 64 bytes on two inodes with different sets: stored once,
# the second an out-of-line reference to it
long=$(python3 -c "print('v' * 100)")
setfattr -n user.shared -v "$long" "$s/f4096"
setfattr -n user.shared -v "$long" "$s/empty"
setfattr -n user.more -v m "$s/empty"
if [ $tmpfs = 1 ]; then
	setfattr -n user.long -v "0x$(head -c 10000 /dev/urandom | od -An -v -tx1 | tr -d ' \n')" "$s/f4097"
fi
if [ $root = 1 ]; then
	mknod "$s/dev/sda1" b 8 1
	mknod "$s/dev/ttyS0" c 4 64
	mknod "$s/dev/bigdev" c 300 70000
	chown 1000:1000 "$s/f4096"
	chown 65534:100 "$s/sub/deeper/deepest"
	chown 12345:54321 "$s/seq.txt"
	chown -h 70000:70001 "$s/sym-short"
	setfattr -n trusted.t1 -v 0xdeadbeef "$s/a.txt"
	setfattr -n security.selinux -v "system_u:object_r:etc_t:s0" "$s/a.txt"
	setfattr -h -n trusted.symx -v s "$s/sym-short"
	setfattr -n trusted.devx -v d "$s/dev/sda1"
fi

# loop mounts: the kernel's view where they work
mount_ok=0
mksquashfs "$s" "$T/probe.sqfs" -noappend -quiet -no-progress >/dev/null 2>&1
if [ $root = 1 ] && mount -o loop,ro "$T/probe.sqfs" "$T/mnt" 2>/dev/null; then
	umount "$T/mnt"
	mount_ok=1
elif [ -n "${CI:-}" ]; then
	# the kernel is a judge: missing under CI is a failure, not a note
	bad "no loop mounts here (root: $root): the kernel cannot judge"
else
	echo "NOTE $NAME: no loop mounts here: unsquashfs -d is the only judge"
fi

# judge IMG DESC: info --files of IMG against the kernel's view and unsquashfs's
judge() {
	local img=$1 d=$2
	run_ei 0 -- info --files "$img"
	printf '%s\n' "$OUT" >"$T/got"
	if [ $mount_ok = 1 ] && FIXTURE_TRIES=3 fixture "mount $d" mount -o loop,ro "$img" "$T/mnt"; then
		list "$T/mnt" >"$T/want-k"
		umount "$T/mnt"
		check "$d: the kernel's view" cmp "$T/want-k" "$T/got"
	fi
	rm -rf "$fs/x"
	if fixture "unsquashfs $d" unsquashfs -q -n -d "$fs/x" "$img" >/dev/null; then
		list "$fs/x" >"$T/want-u"
		# unsquashfs sets the root's owner and times, not its xattrs
		# when run unprivileged: the root line is compared without them
		check "$d: unsquashfs's view" cmp <(sed '2,/^[^ ]/{/^  xattr /d}' "$T/want-u") \
			<(sed '2,/^[^ ]/{/^  xattr /d}' "$T/got")
	fi
}

i=0
for c in gzip xz lz4 zstd; do
	for o in "" "-b 4K -no-fragments" "-b 1M -always-use-fragments" "-no-duplicates -noI -noD -noF -noX"; do
		# every option with gzip, the codecs each with two
		[ "$c" != gzip ] && [ "$o" = "-no-duplicates -noI -noD -noF -noX" ] && continue
		[ "$c" != gzip ] && [ "$o" = "" ] && continue
		i=$((i + 1))
		img=$T/m$i.sqfs
		# shellcheck disable=SC2086
		fixture "mksquashfs -comp $c $o" mksquashfs "$s" "$img" -noappend -quiet \
			-no-progress -comp $c $o >/dev/null || continue
		judge "$img" "$c $o"
		[ $i = 1 ] && cp "$T/got" "$T/got1"
	done
done
# no sparse blocks, no xattrs (the kernel lists none), no exports
fixture "mksquashfs -no-sparse" mksquashfs "$s" "$T/ns.sqfs" -noappend -quiet -no-progress \
	-no-sparse -b 4K >/dev/null && judge "$T/ns.sqfs" "-no-sparse"
if fixture "mksquashfs -no-xattrs" mksquashfs "$s" "$T/nx.sqfs" -noappend -quiet -no-progress \
	-no-xattrs >/dev/null; then
	judge "$T/nx.sqfs" "-no-xattrs"
	check "-no-xattrs: no xattr listed" test "$(grep -c '^  xattr' "$T/got")" = 0
fi

# the listing says what the tree holds (not only what the judges agree on)
g=$T/got1
check "hard link named after its first path" grep -q ' /sub/hl2 => /hl1$' "$g"
check "a later hard link carries the first one's hash" \
	test "$(grep -c "$(sha256sum "$s/hl1" | cut -c1-64)" "$g")" = 3
check "the sparse file's hash" grep -q "^f 0644 [0-9]* [0-9]* [0-9]* 2097152 $(sha256sum "$s/sparse" | cut -c1-64) /sparse\$" "$g"
check "the 4095-byte symlink" grep -q '^l 0777 .* 4095 - /sym-4095 -> x/x/' "$g"
check "the out-of-line xattr value on both files" \
	test "$(grep -c "^  xattr user.shared=$(printf %s "$long" | od -An -v -tx1 | tr -d ' \n')\$" "$g")" = 2
check "a directory with 320 entries" test "$(grep -c ' /big/entry-' "$g")" = 320
check "escaped names" grep -q ' /new\\012line$' "$g"
check "fifo and socket" grep -qE '^p .* /dev/fifo$' "$g"
check "socket" grep -qE '^s .* /dev/sock$' "$g"
if [ $root = 1 ]; then
	check "a device number past 8 bits" grep -q '^c 0644 0 0 [0-9]* 300,70000 - /dev/bigdev$' "$g"
	check "uid and gid from the id table" grep -q '^f 0644 12345 54321 ' "$g"
	check "security.selinux" grep -q '^  xattr security.selinux=' "$g"
fi
if [ $tmpfs = 1 ]; then
	check "a 10 KiB xattr value across metadata blocks" \
		test "$(grep '^  xattr user.long=' "$g" | tr -d '\n' | wc -c)" = $((18 + 20000))
fi

# --- back through edgeimg's own squashfs writer: the same listing --------------
if has_feature OUTPUT_SQUASHFS; then
	run_ei 0 -- convert --files -O squashfs "$T/m1.sqfs" "$T/rt.sqfs"
	run_ei 0 -- info --files "$T/rt.sqfs"
	printf '%s\n' "$OUT" >"$T/got-rt"
	check "squashfs -> convert --files -O squashfs: the same listing" cmp "$T/got1" "$T/got-rt"
fi

# --- directories deeper than the walk goes -------------------------------------
deep=$T/deep
p=$deep
for n in $(seq 1 260); do p=$p/d; done
mkdir -p "$p"
if fixture "mksquashfs deep" mksquashfs "$deep" "$T/deep.sqfs" -noappend -quiet -no-progress >/dev/null; then
	run_ei 1 -- info --files "$T/deep.sqfs"
	has "260 nested directories refused" "squashfs: /d/d/d.*directories nested deeper than 256" "$ERR"
fi

# --- hostile images -------------------------------------------------------------
# A small tree, metadata uncompressed (-noI -noF -noX), one block a table:
# poke.py finds fields by path and patches them.
h=$T/h
mkdir -p "$h/dir/sub"
echo small >"$h/dir/file"
echo zz >"$h/dir/zz"
head -c 10000 /dev/urandom >"$h/blocks"
echo tail >"$h/frag"
ln -s file "$h/dir/link"
printf 'x%.0s' $(seq 1 300) >"$h/frag2"
setfattr -n user.a -v 1 "$h/dir/file"
setfattr -n user.b -v "$long" "$h/frag"
setfattr -n user.b -v "$long" "$h/dir"
setfattr -n user.c -v 2 "$h/dir"
fixture "mksquashfs -noI" mksquashfs "$h" "$T/base.sqfs" -noappend -quiet -no-progress \
	-noI -noF -noX -no-exports -b 4K >/dev/null || { done_tests; exit; }
cat >"$T/poke.py" <<'PY'
import struct, sys
NAMES = ('magic inodes mkfs_time block_size fragments compression block_log flags '
         'no_ids major minor root_inode bytes_used id_table xattr_table inode_table '
         'dir_table frag_table export_table').split()
FMT = '<IIIIIHHHHHHQQQQQQQQ'

class Img:
    def __init__(self, d):
        self.d = d
        self.sb = dict(zip(NAMES, struct.unpack_from(FMT, d, 0)))

    def block(self, pos):           # an uncompressed metadata block: its data
        h = struct.unpack_from('<H', self.d, pos)[0]
        assert h & 0x8000, 'compressed metadata at %d' % pos
        return pos + 2

    def inode(self, ref):
        return self.block(self.sb['inode_table'] + (ref >> 16)) + (ref & 0xffff)

    def u64(self, pos):
        return struct.unpack_from('<Q', self.d, pos)[0]

    def entries(self, ref):         # a directory inode's entries
        p = self.inode(ref)
        t = struct.unpack_from('<H', self.d, p)[0]
        if t == 1:
            start, nlink, size, off = struct.unpack_from('<IIHH', self.d, p + 16)
        else:
            nlink, size, start, parent, icount, off = struct.unpack_from('<IIIIHH', self.d, p + 16)
        q = self.block(self.sb['dir_table'] + start) + off
        end = q + size - 3
        while q < end:
            count, blk, base = struct.unpack_from('<III', self.d, q)
            hdr, q = q, q + 12
            for _ in range(count + 1):
                o, delta, typ, ns = struct.unpack_from('<HhHH', self.d, q)
                yield dict(name=bytes(self.d[q + 8:q + 9 + ns]).decode(), pos=q, hdr=hdr,
                           ref=blk << 16 | o)
                q += 9 + ns

    def find(self, path):
        ref, ent = self.sb['root_inode'], None
        for part in filter(None, path.split('/')):
            ent = next(e for e in self.entries(ref) if e['name'] == part)
            ref = ent['ref']
        return ref, ent

def le(d, pos, width, v):
    d[pos:pos + width] = int(v, 0).to_bytes(width, 'little', signed=int(v, 0) < 0)

def main():
    src, dst = sys.argv[1], sys.argv[2]
    d = bytearray(open(src, 'rb').read())
    ops, cur = [], []
    for w in sys.argv[3:] + ['--']:     # OP ARGS [-- OP ARGS]...
        if w == '--':
            ops.append(cur)
            cur = []
        else:
            cur.append(w)
    for o in ops:
        poke(d, Img(d), o[0], o[1:])
    if dst != '/dev/null':
        open(dst, 'wb').write(d)

def poke(d, img, op, a):
    if op == 'inode':               # inode PATH OFF WIDTH VALUE
        le(d, img.inode(img.find(a[0])[0]) + int(a[1]), int(a[2]), a[3])
    elif op == 'entry':             # entry PATH OFF WIDTH VALUE: its directory entry
        le(d, img.find(a[0])[1]['pos'] + int(a[1]), int(a[2]), a[3])
    elif op == 'hdr':               # hdr PATH OFF WIDTH VALUE: its directory header
        le(d, img.find(a[0])[1]['hdr'] + int(a[1]), int(a[2]), a[3])
    elif op == 'name':              # name PATH NEW (same length)
        e = img.find(a[0])[1]
        new = a[1].encode().replace(b'NUL', b'\0')
        d[e['pos'] + 8:e['pos'] + 8 + len(new)] = new
    elif op == 'entry-ref':         # entry-ref PATH OTHER: PATH's entry points at OTHER's inode
        e = img.find(a[0])[1]
        ref = img.find(a[1])[0]
        le(d, e['pos'], 2, str(ref & 0xffff))
        le(d, e['hdr'] + 4, 4, str(ref >> 16))
    elif op == 'frag':              # frag IDX OFF WIDTH VALUE
        p = img.block(img.u64(img.sb['frag_table'])) + 16 * int(a[0])
        le(d, p + int(a[1]), int(a[2]), a[3])
    elif op == 'xattr-id':          # xattr-id IDX OFF WIDTH VALUE
        p = img.block(img.u64(img.sb['xattr_table'] + 16)) + 16 * int(a[0])
        le(d, p + int(a[1]), int(a[2]), a[3])
    elif op == 'xattr-kv':          # xattr-kv OFF WIDTH VALUE: in the key/value block
        p = img.block(img.u64(img.sb['xattr_table'])) + int(a[0])
        le(d, p, int(a[1]), a[2])
    elif op == 'find-ool':          # the offset of the first out-of-line value's reference
        p = img.block(img.u64(img.sb['xattr_table']))
        end = img.u64(img.sb['xattr_table'] + 16)
        q = p
        while q < end:
            t, ns = struct.unpack_from('<HH', d, q)
            q += 4 + ns
            vs = struct.unpack_from('<I', d, q)[0]
            if t & 0x100:
                print(q + 4 - p)
                return
            q += 4 + vs
        sys.exit('no out-of-line value')
    else:
        sys.exit('poke.py: unknown op ' + op)

main()
PY
run_ei 0 -- info --files "$T/base.sqfs"
printf '%s\n' "$OUT" >"$T/base.txt"
# the base is judged too, so that every poke starts from a right reading
rm -rf "$T/hx"
fixture "unsquashfs base" unsquashfs -q -n -d "$T/hx" "$T/base.sqfs" >/dev/null &&
	check "the base image's listing" cmp <(list "$T/hx" | sed '2,/^[^ ]/{/^  xattr /d}') \
		<(sed '2,/^[^ ]/{/^  xattr /d}' "$T/base.txt")
ool=$(python3 "$T/poke.py" "$T/base.sqfs" /dev/null find-ool)
check "the base holds an out-of-line xattr value" test -n "$ool"

# hostile DESC PATTERN POKE...: the poked image is refused with PATTERN
n=0
hostile() {
	local d=$1 pat=$2
	shift 2
	n=$((n + 1))
	fixture "poke $d" python3 "$T/poke.py" "$T/base.sqfs" "$T/bad$n.sqfs" "$@" || return
	run_ei 1 -- info --files "$T/bad$n.sqfs"
	has "$d" "$pat" "$ERR"
	run_ei 1 -- convert --files -O squashfs "$T/bad$n.sqfs" "$T/out$n.sqfs"
	check "$d: no output left" test ! -e "$T/out$n.sqfs"
}
# /blocks: a basic file inode (start 16, fragment 20, offset 24, size 28,
# block list 32); /frag and /dir/file: extended ones (xattrs: start 16,
# size 24, nlink 40, fragment 44, offset 48, xattr 52); /dir: an extended
# directory (listing offset 34); /dir/link: a symlink (size 20)
hostile "inode type against its entry" "squashfs: /dir/file: inode type 3, its directory entry says 2" \
	inode dir/file 0 2 3
hostile "inode number 0" "squashfs: /dir/file: inode at 0x[0-9a-f]+ has inode_number 0" \
	inode dir/file 12 4 0
hostile "inode number past the superblock's" "squashfs: /dir/file: inode_number 4000 exceeds" \
	inode dir/file 12 4 4000
hostile "entry's inode number against the inode's" "squashfs: /dir/file: directory entry inode number" \
	entry dir/file 2 2 7
hostile "uid index past no_ids" "squashfs: /dir/file: .*uid/gid index 9" inode dir/file 4 2 9
hostile "block size word over block_size" "squashfs: /blocks: block 0 size 1048576 exceeds block_size 4096" \
	inode blocks 32 4 0x100000
hostile "block size word with unknown bits" "squashfs: /blocks: block 1 size word 0x04000010 has unknown bits" \
	inode blocks 36 4 0x04000010
hostile "data block outside the image" "squashfs: /blocks: block 0 at [0-9]+\+[0-9]+ is outside the image" \
	inode blocks 16 4 0x7ffffff0
hostile "file size past what the inode table holds" "squashfs: /blocks: file_size 4294963200 needs" \
	inode blocks 20 4 0xffffffff -- inode blocks 28 4 0xfffff000
hostile "fragment index out of range" "squashfs: /frag: fragment index 77, fragments is" \
	inode frag 44 4 77
hostile "fragment offset past block_size" "squashfs: /frag: fragment offset 4094 \+ tail 5 exceeds" \
	inode frag 48 4 4094
hostile "fragment size word over block_size" "squashfs: /[a-z/0-9]+: fragment 0 has size word 0x01100000" \
	frag 0 8 4 0x01100000
hostile "fragment outside the image" "squashfs: /[a-z/0-9]+: fragment 0 at [0-9]+\+[0-9]+ is outside the image" \
	frag 0 0 8 0x7fffffffff
hostile "directory header count" "squashfs: /dir: directory header count 300" hdr dir/file 0 4 299
hostile "name with a slash" "squashfs: /dir: directory entry name 'f/le' is not a plain name" \
	name dir/file f/le
hostile "name with a NUL" "squashfs: /dir: directory entry name 'f\?le' is not a plain name" \
	name dir/file fNULle
hostile "name '..'" "squashfs: /dir: directory entry name '..' is not a plain name" \
	name dir/zz ..
hostile "name size past 256" "squashfs: /dir: directory entry name size 300 exceeds 256" entry dir/file 6 2 299
hostile "duplicate names" "squashfs: /dir: directory entry 'link' appears twice" name dir/file link
hostile "a directory entry pointing at the root (a loop)" "squashfs: /dir/sub: inode [0-9]+ is a directory seen before \(a loop\)" \
	entry-ref dir/sub ''
hostile "a directory entry pointing at its own directory" "squashfs: /dir/sub: inode [0-9]+ is a directory seen before \(a loop\)" \
	entry-ref dir/sub dir
hostile "directory listing offset past 8191" "squashfs: /dir: directory file_size [0-9]+, offset 9000" \
	inode dir 34 2 9000
hostile "symlink size past 4096" "squashfs: /dir/link: symlink_size 5000, allowed 1..4096" \
	inode dir/link 20 4 5000
hostile "xattr index past xattr_ids" "squashfs: /frag: xattr index 1000, xattr_ids is" \
	inode frag 52 4 1000
hostile "xattr count 0" "squashfs: /[a-z/]+: xattr id 0 has count 0" xattr-id 0 8 4 0
hostile "xattr type unknown" "squashfs: /[a-z/]+: xattr type 0x0007" xattr-kv 0 2 7
hostile "out-of-line xattr reference past the table" "squashfs: /(dir|frag): xattr table: metadata block at [0-9]+ is outside" \
	xattr-kv "$ool" 8 0x7fff00000000

# an unsorted directory is listed sorted (the kernel's lookups need it sorted;
# the listing does not)
fixture "poke unsorted" python3 "$T/poke.py" "$T/base.sqfs" "$T/unsorted.sqfs" name dir/file zzzz &&
	run_ei 0 -- info --files "$T/unsorted.sqfs" &&
	check "an unsorted directory listed sorted" \
		test "$(printf '%s\n' "$OUT" | awk '$8 ~ /^\/dir\// { print $8 }' | tr '\n' ' ')" = "/dir/link /dir/sub /dir/zz /dir/zzzz "

# truncated: the tables past the end
head -c 2000 "$T/base.sqfs" >"$T/trunc.sqfs"
run_ei 1 -- info --files "$T/trunc.sqfs"
has "a truncated image" "squashfs: bytes_used [0-9]+ is not between 96 and the file size 2000" "$ERR"
done_tests
