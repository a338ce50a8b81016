#!/usr/bin/env bash
# requires: OUTPUT_SQUASHFS
# SPDX-License-Identifier: MIT
# squashfs-backed images: edgeimg's writer judged by unsquashfs, sqfs2tar
# and (where loop mounts work) the kernel; the reader judged on images made
# by mksquashfs and by edgeimg, and against every squashfs row of
# HOSTILE-INPUTS.md (S1-S13, G1, G2) built by patching valid images.
. "$(dirname "$0")/../lib.sh"
need qemu-img unsquashfs mksquashfs sqfs2tar sfdisk mkfs.ext4 python3 cmp pkg-config

# sq.py: read and patch squashfs images whose metadata is stored
# uncompressed (mksquashfs -noI -noF -noX), so that fields have positions.
#   sq.py get IMG FIELD...      superblock fields, one line
#   sq.py batch <LINES          each line "OUT BASE OP ARGS...": OUT is BASE patched
cat >"$T/sq.py" <<'PY'
import struct, sys
NAMES = ('magic inodes mkfs_time block_size fragments compression block_log '
         'flags no_ids major minor root_inode bytes_used id_table xattr_table '
         'inode_table dir_table frag_table export_table').split()
FMT = '<IIIIIHHHHHHQQQQQQQQ'

def superblock(d):
    return dict(zip(NAMES, struct.unpack_from(FMT, d, 0)))

def patch(d, op, a):
    sb = superblock(d)

    def le(pos, width, v):
        v = int(v)
        d[pos:pos + width] = v.to_bytes(width, 'little', signed=v < 0)

    def raw_meta(pos):
        assert struct.unpack_from('<H', d, pos)[0] & 0x8000, 'compressed'
        return pos + 2

    def inode_pos(ref):     # small images: one uncompressed block
        return raw_meta(sb['inode_table'] + (ref >> 16)) + (ref & 0xffff)

    def entry(name):
        p = inode_pos(sb['root_inode'])
        start, nlink, size, off, parent = struct.unpack_from('<IIHHI', d, p + 16)
        q = raw_meta(sb['dir_table'] + start) + off
        end = q + size - 3
        while q < end:
            count, blk, base = struct.unpack_from('<III', d, q)
            hdr = q
            q += 12
            for _ in range(count + 1):
                o, delta, typ, ns = struct.unpack_from('<HhHH', d, q)
                if bytes(d[q + 8:q + 9 + ns]).decode() == name:
                    return dict(hdr=hdr, pos=q, ref=blk << 16 | o, base=base)
                q += 9 + ns
        raise KeyError(name)

    if op == 'sb':                  # sb FIELD VALUE
        i = NAMES.index(a[0])
        off = struct.calcsize(FMT[:1 + i])
        le(off, struct.calcsize('<' + FMT[1 + i]), int(a[1], 0))
    elif op == 'hdr-count':         # hdr-count NAME COUNT
        le(entry(a[0])['hdr'], 4, int(a[1]) - 1)
    elif op == 'name-size':         # name-size NAME SIZE
        le(entry(a[0])['pos'] + 6, 2, int(a[1]) - 1)
    elif op == 'rename':            # rename NAME NEW (same length)
        e = entry(a[0])
        assert len(a[1]) == len(a[0])
        d[e['pos'] + 8:e['pos'] + 8 + len(a[1])] = a[1].encode()
    elif op == 'loop':              # loop NAME: NAME's entry -> the root inode
        le(entry(a[0])['pos'], 2, sb['root_inode'] & 0xffff)
    elif op == 'number':            # number NAME N: NAME's inode number
        e = entry(a[0])
        le(e['pos'] + 2, 2, int(a[1]) - e['base'])
    elif op == 'inode':             # inode NAME OFF WIDTH VALUE
        le(inode_pos(entry(a[0])['ref']) + int(a[1]), int(a[2]), int(a[3], 0))
    elif op == 'frag':              # frag NAME OFF WIDTH VALUE: its fragment
        i = struct.unpack_from('<I', d, inode_pos(entry(a[0])['ref']) + 20)[0]
        idx = struct.unpack_from('<Q', d, sb['frag_table'] + 8 * (i // 512))[0]
        le(raw_meta(idx) + 16 * (i % 512) + int(a[1]), int(a[2]), int(a[3], 0))
    elif op == 'xattr':             # xattr OFF WIDTH VALUE: the xattr id table
        le(sb['xattr_table'] + int(a[0]), int(a[1]), int(a[2], 0))
    else:
        raise ValueError('sq.py: unknown op ' + op)

if sys.argv[1] == 'get':
    sb = superblock(open(sys.argv[2], 'rb').read(96))
    print(' '.join(str(sb[f]) for f in sys.argv[3:]))
else:
    for line in sys.stdin:
        w = line.split()
        if not w:
            continue
        d = bytearray(open(w[1], 'rb').read())
        patch(d, w[2], w[3:])
        open(w[0], 'wb').write(d)
PY
sq() { python3 "$T/sq.py" "$@"; }

trap 'umount "$T/mnt" 2>/dev/null; rm -rf "$T"' EXIT
mkdisk "$T/disk.raw" 32
qemu-img convert -f raw -O qcow2 "$T/disk.raw" "$T/disk.qcow2"
qemu-img convert -f qcow2 -O raw "$T/disk.qcow2" "$T/ref.raw"
mkdir -p "$T/o"

# ok_sqfs DESC IMG REF: unsquashfs -s/-l/-d and sqfs2tar accept IMG and its
# disk.img is REF; edgeimg reads it back to the same bytes.
ok_sqfs() {
	local d=$1 img=$2 ref=$3
	check "$d: unsquashfs -s" sh -c "unsquashfs -s '$img' >/dev/null 2>&1"
	check "$d: unsquashfs -l lists disk.img" \
		sh -c "unsquashfs -l '$img' 2>/dev/null | grep -qx 'squashfs-root/disk.img'"
	rm -rf "$T/x"
	unsquashfs -q -n -d "$T/x" "$img" >/dev/null 2>&1
	check "$d: unsquashfs extracts the disk" cmp -s "$T/x/disk.img" "$ref"
	check "$d: sqfs2tar reads it" \
		sh -c "sqfs2tar '$img' 2>/dev/null | tar -xOf - disk.img | cmp -s - '$ref'"
	run_ei 0 -- convert -O raw "$img" "$T/back.raw"
	check "$d: edgeimg reads it back" cmp -s "$T/back.raw" "$ref"
	rm -f "$T/back.raw"
}

# --- the writer, every codec, from raw and from qcow2 ---------------------
codecs="gzip"
has_feature CODEC_ZSTD && codecs="$codecs zstd"
has_feature CODEC_XZ && codecs="$codecs xz"
has_feature CODEC_LZ4 && codecs="$codecs lz4"
for c in $codecs; do
	o=compression=$c
	[ $c = xz ] && o=$o,level=1     # xz -6 on 3 MB of random bytes is slow
	run_ei 0 -- convert -O squashfs -o $o "$T/disk.qcow2" "$T/$c.sqfs"
	ok_sqfs "$c" "$T/$c.sqfs" "$T/ref.raw"
	has "$c: unsquashfs names the compressor" "Compression $c" \
		"$(unsquashfs -s "$T/$c.sqfs" 2>/dev/null)"
	run_ei 0 -- compare "$T/$c.sqfs" "$T/disk.raw"
	has "$c: compare says identical" '^Images are identical\.$' "$OUT"
	run_ei 0 -- info --json "$T/$c.sqfs"
	lib=$(codec_lib "$([ $c = gzip ] && echo deflate || echo $c)")
	check "$c: info --json, the recipe once, naming the library ($lib)" python3 - "$c" "$lib" <<PY
import json, sys
j = json.loads('''$OUT''')
assert j['format'] == 'squashfs' and j['virtual-size'] == 33554432, j
f = j['format-specific']['data']
assert f['compression'] == sys.argv[1] and f['block-size'] == 131072, f
assert f['disk-file'] == 'disk.img', f
assert 'recipe' not in f, f
assert j['recipe'].startswith('format=squashfs,writer='), j
assert ',compression=%s,level=' % sys.argv[1] in j['recipe'], j
skip = ',skip_random=on' if sys.argv[1] == 'zstd' else ''
assert ',%s%s,block_size=' % (sys.argv[2], skip) in j['recipe'], (j['recipe'], sys.argv[2])
PY
	check "$c: info --json has one recipe key" test "$(grep -c '"recipe"' <<<"$OUT")" -eq 1
	run_ei 0 -- info "$T/$c.sqfs"
	check "$c: info shows one recipe line" test "$(grep -c 'recipe' <<<"$OUT")" -eq 1
	has "$c: info's recipe line" "^recipe: format=squashfs,writer=[0-9.]+,compression=$c,level=[0-9]+,$lib," "$OUT"
done
size_gz=$(stat -c %s "$T/gzip.sqfs")
check "gzip output is compact ($size_gz bytes for a 32 MiB disk)" test "$size_gz" -lt 8000000
check "output is padded to 4 KiB" test $((size_gz % 4096)) -eq 0
has "lz4 carries its compressor options (HC)" 'High Compression' \
	"$(unsquashfs -s "$T/lz4.sqfs" 2>/dev/null)"

# block sizes, levels, a disk whose size is not a multiple of the block
for o in block_size=4096 block_size=1M level=1 block_size=65536,level=5; do
	run_ei 0 -- convert -O squashfs -o "$o" "$T/disk.raw" "$T/bs.sqfs"
	ok_sqfs "$o" "$T/bs.sqfs" "$T/disk.raw"
	rm -f "$T/bs.sqfs"
done
head -c 300001 "$T/disk.raw" >"$T/odd.raw"
head -c 777 /dev/urandom >>"$T/odd.raw"
run_ei 0 -- convert -O squashfs -f raw "$T/odd.raw" "$T/odd.sqfs"
ok_sqfs "odd size" "$T/odd.sqfs" "$T/odd.raw"
: >"$T/empty.raw"
run_ei 0 -- convert -O squashfs -f raw "$T/empty.raw" "$T/empty.sqfs"
ok_sqfs "empty disk" "$T/empty.sqfs" "$T/empty.raw"
run_ei 0 -- convert -O squashfs -o name=vm.raw "$T/disk.raw" "$T/name.sqfs"
check "name=vm.raw" sh -c "unsquashfs -l '$T/name.sqfs' | grep -qx 'squashfs-root/vm.raw'"
run_ei 0 -- convert -O raw "$T/name.sqfs" "$T/o/n.raw"
check "name=vm.raw: the recipe names the disk" cmp -s "$T/o/n.raw" "$T/disk.raw"
rm -f "$T/o/n.raw"

# zero blocks are sparse, incompressible blocks are stored plain
truncate -s 64M "$T/sparse.raw"
head -c 1048576 /dev/urandom >"$T/rnd"
dd if="$T/rnd" of="$T/sparse.raw" bs=1M seek=40 conv=notrunc status=none
dd if=/dev/zero of="$T/sparse.raw" bs=1M seek=10 count=4 conv=notrunc status=none
run_ei 0 -- convert -O squashfs "$T/sparse.raw" "$T/sparse.sqfs"
ok_sqfs "sparse" "$T/sparse.sqfs" "$T/sparse.raw"
s=$(stat -c %s "$T/sparse.sqfs")
check "zeros cost nothing, random data is stored once ($s bytes)" \
	test "$s" -gt 1048576 -a "$s" -lt 1130000
run_ei 0 -- info --json "$T/sparse.sqfs"
has "sparse bytes counted" '"sparse-bytes": 66060288' "$OUT"
run_ei 0 -- convert -O raw "$T/sparse.sqfs" "$T/sparse.back"
check "sparse blocks come back as holes" \
	test "$(stat -c %b "$T/sparse.back")" -le $((2 * 2048 + 64))
rm -f "$T/sparse.back"

# --- reproducible: any -j, any run, SOURCE_DATE_EPOCH, the recipe --------
for j in 1 2 4; do
	run_ei 0 -- convert -j $j -O squashfs -o partitions=on "$T/disk.raw" "$T/j$j.sqfs"
done
run_ei 0 -- convert -j 3 -O squashfs -o partitions=on "$T/disk.qcow2" "$T/j3.sqfs"
check "-j 1 and -j 2 give the same bytes" cmp -s "$T/j1.sqfs" "$T/j2.sqfs"
check "-j 1 and -j 4 give the same bytes" cmp -s "$T/j1.sqfs" "$T/j4.sqfs"
check "qcow2 input, -j 3: the same bytes" cmp -s "$T/j1.sqfs" "$T/j3.sqfs"
run_ei 0 -- convert -O squashfs -o compression=gzip "$T/disk.raw" "$T/again.sqfs"
check "a second run gives the same bytes" cmp -s "$T/gzip.sqfs" "$T/again.sqfs"
SOURCE_DATE_EPOCH=1700000000 ei convert -O squashfs "$T/disk.raw" "$T/sde.sqfs" 2>/dev/null
has "SOURCE_DATE_EPOCH is the creation time" 'Nov 14 22:13:20 2023' \
	"$(TZ=UTC unsquashfs -s "$T/sde.sqfs" 2>/dev/null)"
has "and the files' time" '2023-11-14 22:13 squashfs-root/disk.img' \
	"$(TZ=UTC unsquashfs -lls "$T/sde.sqfs" 2>/dev/null)"
has "owner root, mode 0644" '^-rw-r--r-- root/root' \
	"$(unsquashfs -lln "$T/sde.sqfs" 2>/dev/null | grep disk.img | sed 's#0/0#root/root#')"
for img in sde j1 lz4; do
	run_ei 0 -- info --json "$T/$img.sqfs"
	recipe=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["recipe"])' <<<"$OUT")
	opts=$(sed -E 's/^format=squashfs,writer=[^,]*,//' <<<"$recipe")
	has "recipe of $img spells out every option" \
		'^compression=[a-z0-9]+,level=[0-9]+,(deflate|zstd|xz|lz4)=[a-z0-9.-]+,(skip_random=on,)?block_size=[0-9]+,name=disk.img,partitions=o(n|ff),mtime=[0-9]+$' "$opts"
	src=$T/disk.raw
	[ "$img" = lz4 ] && src=$T/disk.qcow2
	run_ei 0 -- convert -O squashfs -o "$opts" "$src" "$T/re.sqfs"
	check "re-encoding $img from its recipe gives the same bytes" cmp -s "$T/$img.sqfs" "$T/re.sqfs"
	rm -f "$T/re.sqfs"
done

# --- the recipe given back verbatim: format=, writer= and all --------------
# Non-default options for every compressor; the recipe from info (text)
# and from info --json, given to -o as it is (also from another edgeimg
# version), writes the same bytes.
for c in $codecs; do
	# (the reader picks disk.img among several files: another name goes
	# with partitions=off)
	case $c in
	gzip) o=level=4,name=vm.img ;; zstd) o=level=5,partitions=on ;;
	xz) o=level=1,name=vm.img ;; lz4) o=level=4,partitions=on ;;
	esac
	o=compression=$c,$o,block_size=65536,mtime=1234567
	run_ei 0 -- convert -O squashfs -o "$o" "$T/disk.raw" "$T/rt-$c.sqfs"
	name=disk.img
	[[ $o = *name=vm.img* ]] && name=vm.img
	check "recipe round trip, $c: unsquashfs lists $name" \
		sh -c "unsquashfs -l '$T/rt-$c.sqfs' 2>/dev/null | grep -qx 'squashfs-root/$name'"
	run_ei 0 -- convert -O raw "$T/rt-$c.sqfs" "$T/back.raw"
	check "recipe round trip, $c: edgeimg reads the disk back" cmp -s "$T/back.raw" "$T/disk.raw"
	rm -f "$T/back.raw"
	recipe_round_trip squashfs "$T/rt-$c.sqfs" "$T/disk.raw" "$o" "$c"
	rm -f "$T/rt-$c.sqfs"
done

# --- options: the recipe's library pinned, bad values refused, no output ---
wrefuse() {  # wrefuse PATTERN OPTIONS...: a usage error (exit 2), or WANT=N
	local pat=$1
	shift
	run_ei "${WANT:-2}" -- convert -O squashfs "$@" "$T/disk.raw" "$T/o/x.sqfs"
	has "refused: $*" "$pat" "$ERR"
	check "refused, no output: $*" test -z "$(listing)"
}
deflate=$(codec_lib deflate)
other=$(sed -E 's/,(deflate=[a-z]+-|zstd=|xz=|lz4=)[0-9.]+,/,\19.8.7,/' <<<"$opts")
WANT=1 wrefuse "squashfs: recipe needs (deflate [a-z]+-|zstd |xz |lz4 )9\.8\.7, this build has [0-9]" -o "$other"
WANT=1 wrefuse "squashfs: recipe needs deflate zlib-0\.9, this build has ${deflate#deflate=}\$" \
	-o compression=gzip,deflate=zlib-0.9
wrefuse "squashfs: xz=5\.4\.1 does not apply to deflate compression" -o compression=gzip,xz=5.4.1
if has_feature CODEC_ZSTD; then
	zstdlib=$(codec_lib zstd)
	WANT=1 wrefuse "squashfs: recipe needs zstd 1\.5\.99, this build has ${zstdlib#zstd=}\$" \
		-o compression=zstd,zstd=1.5.99
	wrefuse "squashfs: $deflate does not apply to zstd compression" -o compression=zstd,$deflate
fi
wrefuse 'squashfs: block_size=2048 is not a power of two from 4096 to 1048576' -o block_size=2k
wrefuse 'squashfs: block_size=2097152 is not a power of two' -o block_size=2M
wrefuse 'squashfs: block_size=3000 is not a power of two' -o block_size=3000
wrefuse 'squashfs: compression=lzo is not one of gzip, zstd, xz, lz4' -o compression=lzo
wrefuse 'squashfs: level=10 is not 1\.\.9 for gzip' -o compression=gzip,level=10
wrefuse 'squashfs: partitions=maybe is not on or off' -o partitions=maybe
# an unknown key: the nearest valid one, and every valid key, which are
# the keys of the recipe (but format and writer, and the library key is
# this build's ones)
keys=$(sed -E 's/=[^,]*//g; s/^format,writer,//; s/,(deflate|zstd|xz|lz4),/,/; s/,/, /g' <<<"$RECIPE")
# files=on is a root filesystem's key, never in a disk's recipe;
# skip_random=on is in a zstd recipe only, group_fragments in a root
# filesystem's
keys="$keys, files, skip_random, group_fragments"
libs=deflate
for c in zstd xz lz4; do has_feature CODEC_${c^^} && libs="$libs, $c"; done
wrefuse "^edgeimg convert: squashfs: unknown option 'cluster_size'; valid: $keys, $libs\$" -o cluster_size=64k
wrefuse "^edgeimg convert: squashfs: unknown option 'blocksize'; did you mean 'block_size'\\? valid: $keys, $libs\$" \
	-o blocksize=64k
wrefuse "^edgeimg convert: squashfs: unknown option 'compresion'; did you mean 'compression'\\? valid: " \
	-o compresion=gzip
# a recipe of another writer, or one whose writer= is not a version
wrefuse '^edgeimg convert: squashfs: format=qcow2 is not squashfs: the recipe is for -O qcow2$' \
	-o format=qcow2,writer=0.1.0,compat=1.1
wrefuse '^edgeimg convert: squashfs: writer=1\.x is not an edgeimg version such as [0-9.]+$' \
	-o writer=1.x,compression=gzip
SOURCE_DATE_EPOCH=yesterday wrefuse 'squashfs: SOURCE_DATE_EPOCH=yesterday is not a number'
run_ei 0 -- convert -c -O squashfs -o compression=gzip "$T/disk.raw" "$T/c.sqfs"
check "-c is welcome (squashfs always compresses): the same bytes" cmp -s "$T/gzip.sqfs" "$T/c.sqfs"
rm -f "$T/c.sqfs"

# --- skip_random: zstd stores random-looking blocks without its level ----
# Block 0 is random bytes holding eight 600-byte repeats far apart: zstd's
# fastest level finds none, level 15 finds them all (about 4 KiB less).
# Block 1 is random bytes, blocks 2 and 3 text.  skip_random=on (the
# default) stores block 0 plain, off compresses it; both store block 1
# plain and compress the text.  The recipe names skip_random only when on,
# so apply builds a recipe without it (every recipe before it) with it off.
cat >"$T/rnd.py" <<'PY'
import random, sys
r = random.Random(7)
b = bytearray(r.randbytes(131072))
for k in range(8):
    b[70000 + 7000 * k:70600 + 7000 * k] = b[1000 + 5000 * k:1600 + 5000 * k]
text = b''.join(b'line %06d of a compressible block\n' % i for i in range(7490))[:262144]
open(sys.argv[1], 'wb').write(bytes(b) + r.randbytes(131072) + text)
PY
declare -A rsize rrec
if has_feature CODEC_ZSTD && fixture "the random disk" python3 "$T/rnd.py" "$T/rnd.raw"; then
	for s in on off; do
		run_ei 0 -- convert -O squashfs -o compression=zstd,skip_random=$s "$T/rnd.raw" "$T/rnd-$s.sqfs"
		rm -rf "$T/x"
		unsquashfs -q -d "$T/x" "$T/rnd-$s.sqfs" >/dev/null 2>&1
		check "skip_random=$s: unsquashfs gives the disk back" cmp -s "$T/x/disk.img" "$T/rnd.raw"
		rsize[$s]=$(unsquashfs -s "$T/rnd-$s.sqfs" | sed -n 's/^Filesystem size \([0-9]*\) bytes.*/\1/p')
		run_ei 0 -- info "$T/rnd-$s.sqfs"
		rrec[$s]=$(sed -n 's/^recipe: //p' <<<"$OUT")
	done
	# on: blocks 0 and 1 plain, so the filesystem holds 2 x 128 KiB and the
	# text compressed; off: block 0 is 4 KiB smaller
	check "skip_random=on: blocks 0 and 1 plain (${rsize[on]} bytes > 262144)" \
		test "${rsize[on]}" -gt 262144
	check "skip_random=off: block 0 compressed (${rsize[off]} < ${rsize[on]} - 4000)" \
		test "${rsize[off]}" -lt $((rsize[on] - 4000))
	has "the default is named in the recipe" ',zstd=[0-9.]+,skip_random=on,block_size=' "${rrec[on]}"
	check "off is a recipe without it" test "${rrec[off]}" = "${rrec[on]/,skip_random=on/}"
	run_ei 0 -- convert -O squashfs -o compression=zstd "$T/rnd.raw" "$T/rnd-def.sqfs"
	check "the default is on: the same bytes" cmp -s "$T/rnd-on.sqfs" "$T/rnd-def.sqfs"
	# a patch to each: apply builds what convert built (cmp)
	for s in on off; do
		run_ei 0 -- delta -O squashfs -o compression=zstd,skip_random=$s \
			"$T/disk.raw" "$T/rnd.raw" "$T/rnd-$s.patch"
		run_ei 0 -- apply "$T/disk.raw" "$T/rnd-$s.patch" "$T/rnd-$s.out"
		check "apply of a skip_random=$s patch gives convert's file" \
			cmp -s "$T/rnd-$s.sqfs" "$T/rnd-$s.out"
	done
	# --reuse takes no blocks from a container written the other way
	run_ei 0 -- convert -v --reuse "$T/rnd-off.sqfs" -O squashfs -o compression=zstd \
		"$T/rnd.raw" "$T/rnd-reuse.sqfs"
	has "--reuse of a skip_random=off container: not with these options" \
		'not a squashfs that edgeimg wrote with these options' "$ERR"
	check "--reuse: the same bytes as without" cmp -s "$T/rnd-on.sqfs" "$T/rnd-reuse.sqfs"
	WANT=2 wrefuse 'squashfs: skip_random=yes is not on or off' -o compression=zstd,skip_random=yes
	rm -rf "$T/x" "$T"/rnd*.sqfs "$T"/rnd*.out "$T"/rnd*.patch "$T/rnd.raw"
fi

# --- partitions=on: pN.img and partitions.txt, also -----------------------
run_ei 0 -- info --json "$T/j1.sqfs"
img=$T/j1.sqfs
l=$(unsquashfs -l "$img" 2>/dev/null)
for f in disk.img p1.img p2.img partitions.txt; do
	has "partitions=on: $f" "^squashfs-root/$f\$" "$l"
done
ok_sqfs "partitions=on" "$img" "$T/disk.raw"
check "p1.img is partition 1" \
	sh -c "dd if='$T/disk.raw' bs=512 skip=2048 count=28672 status=none | cmp -s - '$T/x/p1.img'"
check "p2.img is partition 2" \
	sh -c "dd if='$T/disk.raw' bs=512 skip=30720 count=32768 status=none | cmp -s - '$T/x/p2.img'"
has "manifest" '^1 p1\.img 1048576 14680064 0FC63DAF-8483-4772-8E79-3D69D8477DE4 ' "$(cat "$T/x/partitions.txt")"
s1=$(stat -c %s "$T/gzip.sqfs") s2=$(stat -c %s "$img")
check "aligned partitions share disk.img's blocks ($s2 vs $s1 bytes)" test "$s2" -lt $((s1 + 16384))
# unaligned starts (a copy), unaligned ends (a fragment tail), MBR + logical
seq -f 'line %09g of the edgeimg squashfs test disk' 300000 | head -c 8000000 >"$T/mbr.raw"
truncate -s 8M "$T/mbr.raw"
printf 'label: dos\nstart=2048, size=4000, type=83\nstart=6152, size=3000, type=83\nstart=9200, type=5\nstart=10240, size=1500, type=83\nstart=12000, size=3000, type=83\n' |
	sfdisk -q "$T/mbr.raw" >/dev/null
run_ei 0 -- convert -O squashfs -o partitions=on,block_size=64k "$T/mbr.raw" "$T/mbr.sqfs"
ok_sqfs "MBR" "$T/mbr.sqfs" "$T/mbr.raw"
for p in $(sfdisk -d "$T/mbr.raw" | sed -nE 's/.*raw([0-9]+) : start= *([0-9]+), size= *([0-9]+), type=83.*/\1:\2:\3/p'); do
	IFS=: read -r n st sz <<<"$p"
	check "MBR p$n.img" sh -c "dd if='$T/mbr.raw' bs=512 skip=$st count=$sz status=none | cmp -s - '$T/x/p$n.img'"
done
has "MBR manifest" '^5 p5\.img 5242880 768000 0x83 - ""$' "$(cat "$T/x/partitions.txt")"
run_ei 2 -- convert -O squashfs -o partitions=on "$T/sparse.raw" "$T/o/x.sqfs"
has "partitions=on needs a partition table" 'squashfs: partitions=on, but the disk has no GPT or MBR' "$ERR"

# --- the kernel: loop-mount where the machine allows ----------------------
for c in $codecs; do
	rm -f "$T/k.sqfs"
	o=compression=$c
	[ $c = xz ] && o=$o,level=1
	[ $c = zstd ] && o=$o,level=3
	run_ei 0 -- convert -O squashfs -o $o,partitions=on,block_size=64k "$T/mbr.raw" "$T/k.sqfs"
	kernel_mount "$T/k.sqfs" || break
	check "kernel ($c): disk.img" cmp -s "$T/mnt/disk.img" "$T/mbr.raw"
	check "kernel ($c): p2.img (unaligned copy)" \
		sh -c "dd if='$T/mbr.raw' bs=512 skip=6152 count=3000 status=none | cmp -s - '$T/mnt/p2.img'"
	check "kernel ($c): p1.img (shared blocks)" \
		sh -c "dd if='$T/mbr.raw' bs=512 skip=2048 count=4000 status=none | cmp -s - '$T/mnt/p1.img'"
	umount "$T/mnt"
done
if kernel_mount "$T/j1.sqfs"; then
	check "kernel: GPT disk.img" cmp -s "$T/mnt/disk.img" "$T/disk.raw"
	check "kernel: GPT p1.img" \
		sh -c "dd if='$T/disk.raw' bs=512 skip=2048 count=28672 status=none | cmp -s - '$T/mnt/p1.img'"
	umount "$T/mnt"
fi

# --- the reader: a squashfs-backed image converts to qcow2 ---------------
if has_feature OUTPUT_QCOW2; then
	run_ei 0 -- convert -O qcow2 "$T/zstd.sqfs" "$T/sq.qcow2"
	check "squashfs -> qcow2: qemu-img compare" \
		qemu-img compare -q -f qcow2 -F raw "$T/sq.qcow2" "$T/disk.raw"
	rm -f "$T/sq.qcow2"
fi

# --- the reader: images made by mksquashfs --------------------------------
mkdir -p "$T/src"
cp --sparse=always "$T/odd.raw" "$T/src/disk.img"
for c in $codecs; do
	for o in "-b 4K" "-b 1M" "-nopad" "-no-fragments" "-always-use-fragments" "-noI -noD -noF"; do
		rm -f "$T/m.sqfs"
		mksquashfs "$T/src" "$T/m.sqfs" -comp $c $o -noappend -quiet -no-progress >/dev/null 2>&1
		run_ei 0 -- convert -O raw "$T/m.sqfs" "$T/o/m.raw"
		check "mksquashfs -comp $c $o: read back" cmp -s "$T/o/m.raw" "$T/odd.raw"
		rm -f "$T/o/m.raw"
	done
done
# a small disk lives in a fragment
head -c 50000 "$T/disk.raw" >"$T/src/disk.img"
mksquashfs "$T/src" "$T/frag.sqfs" -noappend -quiet -no-progress >/dev/null 2>&1
run_ei 0 -- convert -O raw "$T/frag.sqfs" "$T/o/f.raw"
check "a disk in a fragment" cmp -s "$T/o/f.raw" "$T/src/disk.img"
rm -f "$T/o/f.raw"
run_ei 0 -- compare "$T/frag.sqfs" "$T/src/disk.img"
# which file is the disk: a squashfs is a disk only when it says so
# (disk.img, an edgeimg recipe, the partitions=on layout); any other is a
# root filesystem, refused by name, whose bytes -f raw still reads.
mv "$T/src/disk.img" "$T/src/vm.raw"
mksquashfs "$T/src" "$T/one.sqfs" -noappend -quiet -no-progress >/dev/null 2>&1 || bad "setup: mksquashfs one.sqfs"
run_ei 1 -- info "$T/one.sqfs"
has "one file, no disk.img: a root filesystem" \
	"squashfs: $T/one.sqfs is a squashfs root filesystem \(1 entry in /, no disk\.img\): not a disk image; read its bytes with -f raw" "$ERR"
echo other >"$T/src/other.raw"
mksquashfs "$T/src" "$T/two.sqfs" -noappend -quiet -no-progress >/dev/null 2>&1 || bad "setup: mksquashfs two.sqfs"
run_ei 1 -- info "$T/two.sqfs"
has "two files, no disk.img: a root filesystem" "$T/two.sqfs is a squashfs root filesystem \(2 entries in /" "$ERR"
rm -rf "$T/src"
# Root filesystems as mksquashfs makes them: one file /init (the case that
# was read as a 10-byte disk and patched), and a small tree.
mkdir -p "$T/r1" "$T/r2/etc" "$T/r2/bin"
printf '0123456789' >"$T/r1/init"
printf '#!/bin/sh\n' >"$T/r2/init"
echo root:x:0:0 >"$T/r2/etc/passwd"
head -c 100000 /dev/urandom >"$T/r2/bin/busybox"
ln -s busybox "$T/r2/bin/sh"
mksquashfs "$T/r1" "$T/root1.sqfs" -noappend -quiet -no-progress >/dev/null 2>&1 || bad "setup: mksquashfs root1"
mksquashfs "$T/r2" "$T/root2.sqfs" -comp zstd -noappend -quiet -no-progress >/dev/null 2>&1 || bad "setup: mksquashfs root2"
cp "$T/root1.sqfs" "$T/root1b.sqfs"
for r in root1:1 root2:3; do
	img=$T/${r%:*}.sqfs n=${r#*:}
	for verb in "info" "convert -O raw" "convert -O squashfs" "compare"; do
		case $verb in
		info) args=("$img") ;;
		compare) args=("$img" "$T/root1b.sqfs") ;;
		*) args=("$img" "$T/o/x.img") ;;
		esac
		run_ei $([ "$verb" = compare ] && echo 2 || echo 1) -- $verb "${args[@]}"
		has "${r%:*} ($n entries), $verb: refused as a root filesystem" \
			"squashfs: $img is a squashfs root filesystem \($n entr(y|ies) in /, no disk\.img\): not a disk image" "$ERR"
	done
	check "${r%:*}: no output left" test -z "$(listing)"
	run_ei 0 -- convert -f raw -O raw "$img" "$T/o/bytes.raw"
	check "${r%:*}: -f raw reads its bytes" cmp -s "$img" "$T/o/bytes.raw"
	rm -f "$T/o/bytes.raw"
done
if has_feature CODEC_ZSTD; then
	# delta compares root filesystems by their files (files-delta.sh); a
	# NEW no edgeimg wrote (its recipe gone) is its own file's target,
	# rebuilt byte for byte through the packed views
	cp "$T/root1.sqfs" "$T/root1n.sqfs"
	printf 'X' | dd of="$T/root1n.sqfs" bs=1 seek=200 conv=notrunc status=none
	run_ei 0 -- delta "$T/root1.sqfs" "$T/root1n.sqfs" "$T/o/p.patch"
	run_ei 0 -- apply "$T/root1.sqfs" "$T/o/p.patch" "$T/o/out.sqfs"
	check "delta of a root filesystem no edgeimg wrote: apply gives its file" \
		cmp "$T/root1n.sqfs" "$T/o/out.sqfs"
	rm -f "$T/o/p.patch" "$T/o/out.sqfs"
fi
# What still reads: the recipe's name= (above), and the partitions=on
# layout without a recipe, as unsquashfs + mksquashfs repack it.
run_ei 0 -- convert -O squashfs -o name=vm.raw,partitions=on "$T/mbr.raw" "$T/pn.sqfs"
run_ei 0 -- info "$T/pn.sqfs"
has "partitions=on, name=vm.raw: the recipe names the disk" 'disk-file: vm\.raw' "$OUT"
rm -rf "$T/x"
unsquashfs -q -n -d "$T/x" "$T/pn.sqfs" >/dev/null 2>&1 || bad "setup: unsquashfs pn.sqfs"
mksquashfs "$T/x" "$T/pn2.sqfs" -noappend -quiet -no-progress >/dev/null 2>&1 || bad "setup: mksquashfs pn2"
run_ei 0 -- info "$T/pn2.sqfs"
has "partitions=on layout, no recipe: vm.raw is the disk" 'disk-file: vm\.raw' "$OUT"
check "partitions=on layout, no recipe: no recipe" test "$(grep -c recipe <<<"$OUT")" -eq 0
run_ei 0 -- convert -O raw "$T/pn2.sqfs" "$T/o/pn.raw"
check "partitions=on layout, no recipe: read back" cmp -s "$T/o/pn.raw" "$T/mbr.raw"
rm -f "$T/o/pn.raw"
# the layout with a stray file is a root filesystem again
echo x >"$T/x/notes.txt"
mksquashfs "$T/x" "$T/pn3.sqfs" -noappend -quiet -no-progress >/dev/null 2>&1 || bad "setup: mksquashfs pn3"
run_ei 1 -- info "$T/pn3.sqfs"
has "partitions layout plus a stray file: a root filesystem" "$T/pn3.sqfs is a squashfs root filesystem \(7 entries in /" "$ERR"
rm -rf "$T/x" "$T/r1" "$T/r2"

# --- hostile images (HOSTILE-INPUTS.md S1-S13, G1, G2) --------------------
# A base image with uncompressed metadata: disk.img (two blocks and a
# tail), a small file in a fragment, a symlink, a subdirectory, an xattr.
mkdir -p "$T/h/sub"
seq 1 100000 | head -c 300000 >"$T/h/disk.img"
echo hello >"$T/h/zz"
printf 'abc' >"$T/h/abc"
printf 'q' >"$T/h/q"
ln -s target "$T/h/ln"
python3 -c "import os; os.setxattr('$T/h/zz', 'user.t', b'v')" 2>/dev/null
mksquashfs "$T/h" "$T/base.sqfs" -noI -noF -noX -always-use-fragments -noappend -quiet -no-progress >/dev/null 2>&1
run_ei 0 -- convert -O raw "$T/base.sqfs" "$T/o/base.raw"
check "the hostile base is valid" cmp -s "$T/o/base.raw" "$T/h/disk.img"
rm -f "$T/o/base.raw"

# refuse DESC PATTERN OP ARGS...: a copy of the base patched by sq.py must
# be refused cleanly by info and convert with a message naming the field,
# leaving no output.  The cases are collected, patched by one python run.
cases=()
refuse() { cases+=("$1|$2|${*:3}"); }
read -r bs bu xattr tab <<<"$(sq get "$T/base.sqfs" block_size bytes_used xattr_table inode_table)"
fs=$(stat -c %s "$T/base.sqfs")
refuse "S1 block_size 2 MiB" 'squashfs: block_size 2097152 is not a power of two' sb block_size 2097152
refuse "S1 block_size != 1<<block_log" "squashfs: block_log 16 does not match block_size $bs" sb block_log 16
refuse "S1 block_log 21" 'squashfs: block_log 21 does not match' sb block_log 21
refuse "S2 bytes_used > file size" "squashfs: bytes_used $((fs + 1)) is not between 96 and the file size" sb bytes_used $((fs + 1))
refuse "S2 bytes_used negative" 'squashfs: bytes_used 9223372036854775808 is not between' sb bytes_used 0x8000000000000000
refuse "S3 root_inode offset" 'squashfs: root_inode offset 8193 is not below 8192' sb root_inode 0x2001
refuse "S4 fragments 0xffffffff" 'squashfs: fragment table of 4294967295 entries needs .* does not fit' sb fragments 0xffffffff
refuse "S5 fragment index >= count" 'squashfs: fragment index 7 is not below the 2 fragments' inode disk.img 20 4 7
refuse "S5 fragment size negative" 'squashfs: fragment [0-9] has size word 0xffffffff' frag disk.img 8 4 0xffffffff
refuse "S5 fragment size > block size" 'squashfs: fragment [0-9] has size word 0x00040000, allowed 1..131072' frag disk.img 8 4 0x40000
refuse "S6 no_ids reaches into the next table" 'squashfs: id table of 5000 entries needs 24 bytes of index' sb no_ids 5000
refuse "S6 no_ids 0" 'squashfs: no_ids is 0' sb no_ids 0
refuse "S7 directory count 300" 'squashfs: directory header count 300 is not 1..256' hdr-count zz 300
refuse "S7 name size 300" 'squashfs: directory entry name size 300 exceeds 256' name-size zz 300
refuse "S7 name size 0xffff+1 (\"\")" 'squashfs: directory entry name size 65536 exceeds 256' name-size zz 65536
refuse "S7 name '..'" "squashfs: directory entry name '\.\.' is not a plain name" rename zz ..
refuse "S7 name 'a/b'" "squashfs: directory entry name 'a/b' is not a plain name" rename abc a/b
refuse "S7 name '.'" "squashfs: directory entry name '\.' is not a plain name" rename q .
refuse "S8 duplicate names" "squashfs: directory entry 'ln' appears twice" rename zz ln
refuse "S9 entry -> the root (a loop)" "squashfs: directory entry 'sub' refers to its own directory \(a loop\)" loop sub
refuse "S10 symlink target > 4096" "squashfs: symlink 'ln' target of 5000 bytes exceeds 4096" inode ln 20 4 5000
refuse "S11 inode number 0 in the inode" 'squashfs: inode at 0x[0-9a-f]+ has inode_number 0' inode disk.img 12 4 0
refuse "S11 inode number 0 in the entry" "squashfs: directory entry 'zz' has inode number 0" number zz 0
refuse "S12 block size word > block_size" 'squashfs: block 0 size 1048576 exceeds block_size 131072' inode disk.img 32 4 0x100000
refuse "S12 size word with unknown bits" 'squashfs: block 1 has size word 0x' inode disk.img 36 4 0xfe000010
if [ "$xattr" != 18446744073709551615 ]; then
	refuse "S13 xattr_ids >= 2^31" 'squashfs: xattr_ids 2147483648 is not in 1..2147483647' xattr 8 4 0x80000000
	refuse "S13 xattr table length" 'squashfs: xattr id table of 700 entries needs 16 bytes of index, the image has 8' xattr 8 4 700
else
	refuse "S13 xattr table outside" 'squashfs: xattr_id_table_start' sb xattr_table $((fs + 100))
	echo "SKIP $NAME: S13 on a real xattr table (no user xattrs here)"
fi
refuse "version 3.0" 'squashfs: version 3.0 is not supported' sb major 3
refuse "lzo" 'squashfs: lzo compression is not supported by this build' sb compression 3
refuse "unknown compressor" 'squashfs: compression id 9 is unknown' sb compression 9
refuse "unknown flags" 'squashfs: unknown flags 0x8000' sb flags 0x81cb
i=0
for c in "${cases[@]}"; do
	i=$((i + 1))
	IFS='|' read -r d pat args <<<"$c"
	echo "$T/bad$i.sqfs $T/base.sqfs $args"
done | python3 "$T/sq.py" batch || bad "sq.py batch"
i=0
for c in "${cases[@]}"; do
	i=$((i + 1))
	IFS='|' read -r d pat args <<<"$c"
	run_ei 1 -- info "$T/bad$i.sqfs"
	has "$d (info)" "$pat" "$ERR"
	run_ei 1 -- convert -O raw "$T/bad$i.sqfs" "$T/o/bad.raw"
	has "$d (convert)" "$pat" "$ERR"
	check "$d: no output left" test -z "$(listing)"
	rm -f "$T/bad$i.sqfs"
done
# S12: a compressed block that decompresses to more than it may (the
# file made shorter, so that its last block must be short); and a claimed
# 16 TiB file, whose block list would exceed the table limit.
cp "$T/disk.raw" "$T/h/disk.img"
mksquashfs "$T/h" "$T/base2.sqfs" -noI -noF -noappend -quiet -no-progress >/dev/null 2>&1
printf '%s\n' "$T/bad.sqfs $T/base2.sqfs inode disk.img 24 8 33554000" \
	"$T/huge.sqfs $T/base2.sqfs inode disk.img 24 8 0x100000000000" |
	python3 "$T/sq.py" batch || bad "sq.py batch"
run_ei 1 -- convert -O raw "$T/bad.sqfs" "$T/o/bad.raw"
has "S12 decompressed output > the block" 'squashfs: block 255: zlib: output exceeds' "$ERR"
check "S12: no output left" test -z "$(listing)"
run_ei 1 -- info "$T/huge.sqfs"
has "a 16 TiB block list is refused" 'squashfs: block list of 134217728 blocks exceeds the limit' "$ERR"
# S10: 1000 nested links named disk.img are never followed
rm -rf "$T/h" && mkdir -p "$T/h"
echo data >"$T/h/l0"
for i in $(seq 1 999); do ln -s "l$((i - 1))" "$T/h/l$i"; done
ln -s l999 "$T/h/disk.img"
mksquashfs "$T/h" "$T/links.sqfs" -noappend -quiet -no-progress >/dev/null 2>&1
run_ei 1 -- info "$T/links.sqfs"
has "S10 1000 nested links" 'squashfs: disk.img is a symlink, not a regular file \(links are never followed\)' "$ERR"
rm -rf "$T/h"
# G1: empty, the magic alone, all zeros, all 0xff
: >"$T/g.sqfs"
run_ei 1 -- info -f squashfs "$T/g.sqfs"
has "G1 empty file" 'squashfs: file of 0 bytes is shorter than the 96-byte superblock' "$ERR"
printf 'hsqs' >"$T/g.sqfs"
run_ei 1 -- info "$T/g.sqfs"
has "G1 the magic alone" 'squashfs: file of 4 bytes is shorter' "$ERR"
head -c 65536 /dev/zero >"$T/g.sqfs"
run_ei 1 -- info -f squashfs "$T/g.sqfs"
has "G1 all zeros" "squashfs: no 'hsqs' magic" "$ERR"
head -c 65536 /dev/zero | tr '\0' '\377' >"$T/g.sqfs"
run_ei 1 -- convert -f squashfs -O raw "$T/g.sqfs" "$T/o/g.raw"
has "G1 all 0xff" "squashfs: no 'hsqs' magic" "$ERR"
check "G1: no output left" test -z "$(listing)"
# G2: qcow2 bytes as squashfs, squashfs bytes as every other format
run_ei 1 -- info -f squashfs "$T/disk.qcow2"
has "G2 qcow2 as squashfs" "squashfs: no 'hsqs' magic" "$ERR"
for f in qcow2 vmdk vhd vhdx vdi; do
	ei info -f $f "$T/base.sqfs" >/dev/null 2>&1
	check "G2 squashfs as $f: a clean refusal" test $? -eq 1
done
# version, compressor, flags
# Truncation sweep: cut the image in its tables (bytes_used following),
# and flip every byte of the tables: exit 0 or 1, never a crash.
python3 - "$T/base.sqfs" "$tab" "$bu" "$T/sweep" <<'PY'
import os, sys
d = open(sys.argv[1], 'rb').read()
lo, hi, out = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
os.makedirs(out, exist_ok=True)
for cut in range(lo, hi, 7):            # cut, bytes_used following
    b = bytearray(d[:cut])
    b[40:48] = cut.to_bytes(8, 'little')
    open('%s/cut%06d' % (out, cut), 'wb').write(b)
for pos in range(lo, hi, 3):            # one byte of the tables flipped
    b = bytearray(d)
    b[pos] ^= 0xa5
    open('%s/flip%06d' % (out, pos), 'wb').write(b)
PY
crash=0 n=0
for f in "$T"/sweep/*; do
	ei convert -O raw "$f" "$T/o/sweep.raw" >/dev/null 2>"$T/sweep.err"
	rc=$?
	rm -f "$T/o/sweep.raw"
	n=$((n + 1))
	[ $rc -le 1 ] && ! grep -q Sanitizer "$T/sweep.err" || { crash=$((crash + 1)); echo "crash on $f: $(head -c 300 "$T/sweep.err")"; }
done
check "truncations and byte flips over the tables ($n images): no crash" test "$crash" -eq 0
rm -rf "$T/sweep"

# Peak memory: a huge claim and a conversion.
if [ -z "${SAN:-}" ] && has_oracle /usr/bin/time; then
	rss=$(/usr/bin/time -f %M $EDGEIMG info "$T/huge.sqfs" 2>&1 >/dev/null | tail -n 1)
	check "peak RSS on a huge claim: $rss KiB < 64 MiB" test "$rss" -lt 65536
	rss=$(/usr/bin/time -f %M $EDGEIMG convert -O squashfs -o partitions=on "$T/disk.raw" "$T/o/rss.sqfs" 2>&1 >/dev/null | tail -n 1)
	check "peak RSS of a conversion: $rss KiB < 64 MiB" test "$rss" -lt 65536
	rm -f "$T/o/rss.sqfs"
fi

# --- options -------------------------------------------------------------
for o in "block_size=2M:block_size=2097152 is not a power of two" \
	"block_size=3000:block_size=3000 is not" \
	"compression=lzo:compression=lzo is not one of" \
	"level=10:level=10 is not 1..9 for gzip" \
	"name=a/b:name=a/b is not" "name=..:name=.. is not" \
	"partitions=yes:partitions=yes is not on or off" \
	"partitions=on,name=p1.img:name=p1.img clashes" \
	"mtime=99999999999:mtime=99999999999 is not 0\\.\\.4294967295" \
	"frobnicate=1:unknown option 'frobnicate'"; do
	run_ei 2 -- convert -O squashfs -o "${o%%:*}" "$T/disk.raw" "$T/o/x.sqfs"
	has "-o ${o%%:*}" "squashfs: ${o#*:}" "$ERR"
done
SOURCE_DATE_EPOCH=yesterday ei convert -O squashfs "$T/disk.raw" "$T/o/x.sqfs" 2>"$T/.err"
has "bad SOURCE_DATE_EPOCH" 'SOURCE_DATE_EPOCH=yesterday is not a number' "$(cat "$T/.err")"
check "no output after bad options" test -z "$(listing)"

done_tests
