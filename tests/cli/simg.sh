#!/usr/bin/env bash
# requires: FORMAT_SIMG
# SPDX-License-Identifier: MIT
# Android sparse images, read and written.  The writer is judged by
# simg2img (its expansion is the disk, padded with zeros to a whole 4096-byte
# block as img2simg pads it), by zlib's CRC-32 of that expansion for
# crc=on, and by img2simg's size; the reader by img2simg's images (several
# block sizes), which it must expand as simg2img does; the hostile rows
# (SP1, G1, G2) each fail naming the chunk and the field, leaving no output.
. "$(dirname "$0")/../lib.sh"
need img2simg simg2img python3 cmp sfdisk mkfs.ext4 qemu-img truncate

mkdir -p "$T/o"

# mk SRC OFF FMT VALUE...: $H, a copy of SRC with little-endian fields
# patched (python struct formats).
mk() {
	python3 - "$H" "$@" <<'PY'
import struct, sys
out, src, a = sys.argv[1], sys.argv[2], sys.argv[3:]
b = bytearray(open(src, 'rb').read())
for i in range(0, len(a), 3):
    struct.pack_into(a[i + 1], b, int(a[i], 0), int(a[i + 2], 0))
open(out, 'wb').write(b)
PY
}

# chunk FILE N: the offset of chunk N's header (libsparse's walk).
chunk() {
	python3 - "$@" <<'PY'
import struct, sys
b = open(sys.argv[1], 'rb').read()
hsz, csz = struct.unpack_from('<HH', b, 8)
pos = hsz
for i in range(int(sys.argv[2])):
    pos += struct.unpack_from('<I', b, pos + 8)[0]
print(pos)
PY
}

# padded RAW OUT: RAW with zeros up to a whole 4096-byte block.
padded() {
	cp --sparse=always "$1" "$2"
	truncate -s $((($(stat -c %s "$1") + 4095) / 4096 * 4096)) "$2"
}

# --- fixtures: made here, at test time --------------------------------------
# mixed.raw: random data, written zeros, holes, runs of a repeated 32-bit
# value (whole blocks, and starting and ending inside blocks), a RAW run
# and a FILL run across the writer's 1 MiB windows, and a size that is
# not a multiple of 4096.
fixture "mixed disk" python3 - "$T/mixed.raw" <<'PY'
import os, sys
f = open(sys.argv[1], 'wb')
K = 4096
f.write(os.urandom(3 * K))                          # RAW
f.write(bytes(5 * K))                               # written zeros
f.write(b'\xde\xad\xbe\xef' * (4 * K // 4))         # FILL deadbeef
f.write(b'\x01\x02\x03\x04' * (2 * K // 4))         # FILL, another value
f.write(os.urandom(K // 2) + b'\x55' * (K // 2))    # a block half pattern
f.seek(1024 * 1024 - 2 * K)
f.write(os.urandom(5 * K))                          # RAW across 1 MiB
f.seek(2 * 1024 * 1024 - K)
f.write(b'\x11\x11\x11\x11' * (3 * K // 4))         # FILL across 2 MiB
f.seek(3 * 1024 * 1024 + 100)
f.write(b'\x22\x22\x22\x22' * (2 * K // 4))         # FILL off the block grid
f.seek(5 * 1024 * 1024 + 1000 - 300)                # holes, then a tail
f.write(os.urandom(300))                            # size 5 MiB + 1000
PY
padded "$T/mixed.raw" "$T/mixed.pad"
mkdisk "$T/disk.raw" 24
# an ext4 file system image, as a flasher takes it
mkdir -p "$T/tree/sub"
cp -r "$TOP/src" "$T/tree/"
head -c 1000000 /dev/urandom >"$T/tree/sub/random.bin"
printf '\xab\xcd\xef\x01%.0s' $(seq 4096) >"$T/tree/sub/pattern.bin"
fixture "mkfs.ext4 -d" mkfs.ext4 -q -F -d "$T/tree" "$T/ext4.img" 24M >/dev/null
# a large, nearly empty disk: its holes are never read
truncate -s 6G "$T/big.raw"
printf 'edge' | dd of="$T/big.raw" bs=1 seek=$((5 << 30)) conv=notrunc status=none

# --- the writer, judged by simg2img -------------------------------------------
# judge_write RAW DESC: -O simg of RAW expands (simg2img) to RAW padded;
# -j1 and -j4 write the same bytes; no larger than img2simg's; every
# chunk as the writer promises (DONT_CARE for RAW's holes only, blocks
# it holds as data are FILL for one repeated value, zeros included, as
# img2simg writes them, RAW blocks neither; neighbours of a type joined).
judge_write() {
	local raw=$1 d=$2
	rm -f "$T/w.simg" "$T/w4.simg" "$T/w.raw" "$T/i.simg"
	padded "$raw" "$T/want.raw"
	run_ei 0 -- convert -j1 -O simg "$raw" "$T/w.simg"
	fixture "$d: simg2img" simg2img "$T/w.simg" "$T/w.raw" >/dev/null || return
	check "$d: simg2img expands it to the disk (padded to 4096)" cmp -s "$T/w.raw" "$T/want.raw"
	run_ei 0 -- convert -j4 -O simg "$raw" "$T/w4.simg"
	check "$d: -j1 and -j4 write identical bytes" cmp -s "$T/w.simg" "$T/w4.simg"
	fixture "$d: img2simg" img2simg "$raw" "$T/i.simg" >/dev/null || return
	local ws is
	ws=$(stat -c %s "$T/w.simg") is=$(stat -c %s "$T/i.simg")
	check "$d: $ws bytes, no larger than img2simg's $is" test "$ws" -le "$is"
	check "$d: chunks as promised" python3 - "$T/w.simg" "$T/want.raw" "$raw" <<'PY'
import os, struct, sys
b = open(sys.argv[1], 'rb').read()
raw = open(sys.argv[2], 'rb').read()
# the 4 KiB blocks of IN's data (SEEK_DATA/SEEK_HOLE), as the writer reads them
strict = sys.argv[3].endswith('mixed.raw')
fill0 = set()
alloc, fd = set(), os.open(sys.argv[3], os.O_RDONLY)
end, at = os.fstat(fd).st_size, 0
while at < end:
    try:
        d = os.lseek(fd, at, os.SEEK_DATA)
    except OSError:
        break
    h = os.lseek(fd, d, os.SEEK_HOLE)
    alloc.update(range(d // 4096, (h + 4095) // 4096))
    at = h
magic, major, minor, hsz, csz, bs, tb, tc, ck = struct.unpack_from('<IHHHHIIII', b)
assert (magic, major, minor, hsz, csz, bs) == (0xed26ff3a, 1, 0, 28, 12, 4096)
assert tb * bs == len(raw) and ck == 0, (tb, ck)
pos, blk, prev = hsz, 0, None
for i in range(tc):
    t, _, n, tot = struct.unpack_from('<HHII', b, pos)
    data = raw[blk * bs:(blk + n) * bs]
    blocks = [data[k:k + bs] for k in range(0, len(data), bs)]
    if t == 0xcac1:
        assert tot == 12 + n * bs and b[pos + 12:pos + tot] == data
        assert all(x != x[:4] * (bs // 4) for x in blocks), 'RAW block of one value'
    elif t == 0xcac2:
        v = b[pos + 12:pos + 16]
        assert tot == 16 and data == v * (n * bs // 4)
        assert v != bytes(4) or all(k in alloc for k in range(blk, blk + n)), \
            'FILL 0 over a hole at block %d' % blk
        if v == bytes(4):
            fill0.update(range(blk, blk + n))
    elif t == 0xcac3:
        assert tot == 12 and data == bytes(n * bs)
        # (only where the file's holes are stable: a file system image
        # made by mkfs has unwritten extents that SEEK_DATA reports as
        # data once img2simg has read them into the page cache)
        assert not strict or not any(k in alloc for k in range(blk, blk + n)), \
            'DONT_CARE over data IN holds at block %d' % blk
    else:
        raise AssertionError('chunk type %x' % t)
    key = (t, b[pos + 12:pos + 16] if t == 0xcac2 else None)
    assert key != prev or (t == 0xcac1 and n == 1048575), 'chunks %d, %d not joined' % (i - 1, i)
    prev = key
    pos += tot
    blk += n
assert pos == len(b) and blk == tb
# mixed.raw's written zeros (blocks 3..7) are FILL 0: a flasher writes them
assert not strict or set(range(3, 8)) <= fill0, sorted(fill0)[:10]
PY
}
judge_write "$T/mixed.raw" "mixed disk"
judge_write "$T/disk.raw" "GPT disk with ext4"
judge_write "$T/ext4.img" "ext4 image"
# from another format: qcow2's extents, not the raw file's holes
fixture "qemu-img to qcow2" qemu-img convert -f raw -O qcow2 "$T/mixed.raw" "$T/mixed.qcow2"
if has_feature FORMAT_QCOW2; then
	run_ei 0 -- convert -O simg "$T/mixed.qcow2" "$T/o/q.simg"
	simg2img "$T/o/q.simg" "$T/q.raw" >/dev/null 2>&1
	check "qcow2 -> simg: simg2img gives the disk" cmp -s "$T/q.raw" "$T/mixed.pad"
	rm -f "$T/o/q.simg" "$T/q.raw"
fi
# the 6 GiB disk: 4 bytes of data, holes never read (fast, tiny)
start=$(date +%s%N)
run_ei 0 -- convert -O simg "$T/big.raw" "$T/o/big.simg"
ms=$((($(date +%s%N) - start) / 1000000))
sz=$(stat -c %s "$T/o/big.simg")
check "6 GiB of holes: $sz bytes (28 + 3 chunks + 1 block)" test "$sz" -eq $((28 + 12 + 12 + 12 + 4096))
if [ -z "${SAN:-}" ]; then
	check "6 GiB of holes: written in $ms ms, not read" test "$ms" -lt 3000
fi
run_ei 0 -- compare "$T/o/big.simg" "$T/big.raw"
has "6 GiB of holes: compare with the raw" '^Images are identical\.$' "$OUT"
rm -f "$T/o/big.simg"
# an empty disk: no chunk at all
truncate -s 0 "$T/empty.raw"
run_ei 0 -- convert -O simg "$T/empty.raw" "$T/o/e.simg"
check "empty disk: a 28-byte header" test "$(stat -c %s "$T/o/e.simg")" -eq 28
simg2img "$T/o/e.simg" "$T/e.raw" >/dev/null 2>&1
check "empty disk: simg2img gives 0 bytes" test "$(stat -c %s "$T/e.raw")" -eq 0
rm -f "$T/o/e.simg"

# --- crc=on: a CRC32 chunk of the whole image ---------------------------------
run_ei 0 -- convert -O simg -o crc=on "$T/mixed.raw" "$T/c.simg"
simg2img "$T/c.simg" "$T/c.raw" >/dev/null 2>&1
check "crc=on: simg2img accepts it and gives the disk" cmp -s "$T/c.raw" "$T/mixed.pad"
check "crc=on: the last chunk and image_checksum hold zlib's CRC-32 of the disk" \
	python3 - "$T/c.simg" "$T/mixed.pad" <<'PY'
import struct, sys, zlib
b = open(sys.argv[1], 'rb').read()
crc = zlib.crc32(open(sys.argv[2], 'rb').read())
tc, ck = struct.unpack_from('<II', b, 20)
assert ck == crc, (hex(ck), hex(crc))
assert b[-16:] == struct.pack('<HHIII', 0xcac4, 0, 0, 16, crc), b[-16:].hex()
PY
run_ei 0 -- convert -O simg -o crc=off "$T/mixed.raw" "$T/o/n.simg"
run_ei 0 -- convert -O simg "$T/mixed.raw" "$T/o/d.simg"
check "crc=off is the default" cmp -s "$T/o/n.simg" "$T/o/d.simg"
rm -f "$T/o/d.simg"
rm -f "$T/o/n.simg"
run_ei 0 -- info "$T/c.simg"
has "crc=on: info shows the CRC32 chunk" 'crc32-chunks: 1' "$OUT"
run_ei 0 -- convert -O raw "$T/c.simg" "$T/o/c.raw"
check "crc=on: read back (checksums verified)" cmp -s "$T/o/c.raw" "$T/mixed.pad"
rm -f "$T/o/c.raw"

# --- options are refused before OUT exists --------------------------------------
run_ei 2 -- convert -O simg -o crc=yes "$T/mixed.raw" "$T/o/x.simg"
has "crc=yes refused" 'simg: crc=yes is not on or off' "$ERR"
run_ei 2 -- convert -O simg -o crc=on,block_size=512 "$T/mixed.raw" "$T/o/x.simg"
has "unknown option refused" "block_size" "$ERR"
run_ei 2 -- convert -c -O simg "$T/mixed.raw" "$T/o/x.simg"
has "-c refused" 'simg: -c' "$ERR"
run_ei 2 -- convert -O simg "$T/mixed.raw" -
has "not to standard output" 'cannot go to standard output' "$ERR"
check "refused options: no output" test -z "$(listing)"
run_ei 0 -- help convert
has "help convert lists simg's crc" '^  crc: on or off; default off' "$OUT"

# --- the reader, judged by img2simg and simg2img ----------------------------------
# judge_read SIMG WANT DESC: edgeimg expands SIMG to WANT, as simg2img does.
judge_read() {
	local s=$1 want=$2 d=$3
	rm -f "$T/o/r.raw" "$T/s.raw"
	fixture "$d: simg2img" simg2img "$s" "$T/s.raw" >/dev/null || return
	check "$d: simg2img gives the expected disk" cmp -s "$T/s.raw" "$want"
	run_ei 0 -- info "$s"
	has "$d: probed" '^file format: simg$' "$OUT"
	run_ei 0 -- convert -O raw "$s" "$T/o/r.raw"
	check "$d: convert -O raw equals simg2img's" cmp -s "$T/o/r.raw" "$T/s.raw"
	run_ei 0 -- compare "$s" "$want"
	has "$d: compare says identical" '^Images are identical\.$' "$OUT"
	rm -f "$T/o/r.raw"
}
for bs in 4096 1024 65536; do
	img2simg "$T/mixed.raw" "$T/i$bs.simg" $bs >/dev/null 2>&1 || bad "setup: img2simg -b $bs"
	truncate -s $((($(stat -c %s "$T/mixed.raw") + bs - 1) / bs * bs)) "$T/want$bs.raw"
	dd if="$T/mixed.raw" of="$T/want$bs.raw" conv=notrunc,sparse status=none
	judge_read "$T/i$bs.simg" "$T/want$bs.raw" "img2simg, $bs-byte blocks"
done
run_ei 0 -- info --json "$T/i1024.simg"
echo "$OUT" >"$T/info.json"
check "info --json: block size, blocks and chunks as the header says" python3 - "$T/i1024.simg" "$T/info.json" <<'PY'
import json, struct, sys
b = open(sys.argv[1], 'rb').read()
bs, tb, tc = struct.unpack_from('<III', b, 12)
j = json.load(open(sys.argv[2]))
d = j['format-specific']['data']
assert (d['block-size'], d['total-blocks'], d['chunks']) == (bs, tb, tc), (d, bs, tb, tc)
assert j['virtual-size'] == bs * tb
PY
img2simg "$T/disk.raw" "$T/disk.simg" >/dev/null 2>&1 || bad "setup: img2simg disk"
judge_read "$T/disk.simg" "$T/disk.raw" "img2simg of the GPT disk"
judge_read "$T/w.simg" "$T/want.raw" "edgeimg's own"
judge_read "$T/c.simg" "$T/mixed.pad" "edgeimg's own, crc=on"
# larger headers: libsparse skips the bytes past 28 and 12, and so does edgeimg
check "setup: 32-byte file header, 16-byte chunk headers" python3 - "$T/i4096.simg" "$T/big-hdr.simg" <<'PY'
import struct, sys
b = open(sys.argv[1], 'rb').read()
hsz, csz = struct.unpack_from('<HH', b, 8)
tc = struct.unpack_from('<I', b, 20)[0]
out = bytearray(b[:28]) + b'HDR!'
struct.pack_into('<HH', out, 8, 32, 16)
pos = hsz
for i in range(tc):
    t, r, n, tot = struct.unpack_from('<HHII', b, pos)
    out += struct.pack('<HHII', t, r, n, tot + 4) + b'CHK!' + b[pos + 12:pos + tot]
    pos += tot
open(sys.argv[2], 'wb').write(out)
PY
judge_read "$T/big-hdr.simg" "$T/want4096.raw" "file_hdr_sz 32, chunk_hdr_sz 16"
# a FILL chunk of zeros reads as zeros (allocated), DONT_CARE as a hole
if has_feature OUTPUT_QCOW2; then
	run_ei 0 -- convert -O qcow2 "$T/i4096.simg" "$T/o/f.qcow2"
	check "img2simg's zero FILL chunks: qemu-img agrees on the content" \
		qemu-img compare -q -f qcow2 -F raw "$T/o/f.qcow2" "$T/want4096.raw"
	rm -f "$T/o/f.qcow2"
fi

# --- delta takes a sparse image as OLD and NEW ----------------------------------
if has_feature CODEC_ZSTD; then
	run_ei 0 -- delta "$T/i4096.simg" "$T/disk.simg" "$T/o/p.patch"
	run_ei 0 -- apply "$T/want4096.raw" "$T/o/p.patch" "$T/o/new.raw"
	check "delta from a sparse OLD to a sparse NEW applies to their disks" cmp -s "$T/o/new.raw" "$T/disk.raw"
	rm -f "$T/o/p.patch" "$T/o/new.raw"
fi

# --- hostile inputs (SP1, G1, G2): exit 1, a named error, no output ------------
bad_img() {
	local img=$1 pat=$2 d=$3
	run_ei 1 -- info "$img"
	has "$d (info)" "$pat" "$ERR"
	run_ei 1 -- convert -f simg -O raw "$img" "$T/o/out.raw"
	has "$d (convert)" "$pat" "$ERR"
	check "$d: no output left" test -z "$(listing)"
}
H=$T/h.simg
S=$T/i4096.simg                 # RAW, FILL (zero and not), 6 chunks
nch=$(python3 -c 'import struct,sys; print(struct.unpack_from("<I", open(sys.argv[1],"rb").read(), 20)[0])' "$S")
tb=$(python3 -c 'import struct,sys; print(struct.unpack_from("<I", open(sys.argv[1],"rb").read(), 16)[0])' "$S")
c0=$(chunk "$S" 0)
c1=$(chunk "$S" 1)
mk "$S" 4 '<H' 2
bad_img "$H" 'simg: major_version 2 is not 1' "major_version"
mk "$S" 8 '<H' 20
bad_img "$H" 'simg: file_hdr_sz 20 is smaller than 28' "file_hdr_sz"
mk "$S" 10 '<H' 8
bad_img "$H" 'simg: chunk_hdr_sz 8 is smaller than 12' "chunk_hdr_sz"
for v in 4095 0 $((128 << 20)); do
	mk "$S" 12 '<I' $v
	bad_img "$H" "simg: blk_sz $v is not a multiple of 4 from 4 to 67108864" "blk_sz $v"
done
mk "$S" 12 '<I' $((64 << 20)) 16 '<I' 0xffffffff
bad_img "$H" 'simg: total_blks 4294967295 of 67108864 bytes make .* past the limit' "total_blks past the size limit"
mk "$S" 20 '<I' 0xffffffff
bad_img "$H" "simg: total_chunks 4294967295: the file \\($(stat -c %s "$S") bytes\\) holds at most" "total_chunks past the file"
if [ -z "${SAN:-}" ]; then
	/usr/bin/time -f %M -o "$T/rss" $EDGEIMG info "$H" >/dev/null 2>&1
	rss=$(tail -n 1 "$T/rss")
	check "total_chunks 2^32-1: peak RSS $rss KiB < 64 MiB" test "$rss" -lt 65536
fi
mk "$S" $c0 '<H' 0xcac5
bad_img "$H" 'simg: chunk 0 at 28: chunk_type 0xcac5 is not RAW, FILL, DONT_CARE or CRC32' "chunk_type"
raw0=$(python3 -c 'import struct,sys; print(struct.unpack_from("<I", open(sys.argv[1],"rb").read(), int(sys.argv[2]) + 8)[0])' "$S" $c0)
mk "$S" $((c0 + 8)) '<I' $((raw0 - 4))
bad_img "$H" "simg: chunk 0 \\(RAW\\): total_sz $((raw0 - 4)) holds $((raw0 - 16)) bytes after its header, not $((raw0 - 12))" "RAW total_sz"
mk "$S" $((c0 + 8)) '<I' 4
bad_img "$H" 'simg: chunk 0 \(RAW\): total_sz 4 is smaller than chunk_hdr_sz 12' "total_sz below the header"
mk "$S" $((c1 + 8)) '<I' 20
bad_img "$H" 'simg: chunk 1 \(FILL\): total_sz 20 holds 8 bytes after its header, not 4' "FILL total_sz"
mk "$S" $((c1 + 4)) '<I' 0xffffffff
bad_img "$H" "simg: chunk 1 \\(FILL\\): chunk_sz 4294967295 at block [0-9]+ goes past total_blks $tb" "chunk_sz past total_blks"
# block counts that overflow 32 bits: chunk 1 claims all but one block of 2^32-1
mk "$S" 16 '<I' 0xffffffff $((c1 + 4)) '<I' 0xfffffff0
bad_img "$H" "simg: chunk [2-9] \\([A-Z_]+\\): chunk_sz [0-9]+ at block 4294967[0-9]+ goes past total_blks 4294967295" "block counts overflowing"
mk "$S" 16 '<I' $((tb + 1))
bad_img "$H" "simg: the $nch chunks cover $tb blocks, total_blks is $((tb + 1))" "total_blks above the chunks"
mk "$S" 20 '<I' $((nch - 1))
bad_img "$H" "simg: the $((nch - 1)) chunks cover [0-9]+ blocks, total_blks is $tb" "total_chunks below the chunks"
head -c $(($(stat -c %s "$S") - 100)) "$S" >"$H"
bad_img "$H" "simg: chunk $((nch - 1)) \\(RAW\\) at [0-9]+\\+[0-9]+ is past the end of the file" "last chunk cut"
# CRC32 chunks and image_checksum
C=$T/c.simg
cn=$(python3 -c 'import struct,sys; print(struct.unpack_from("<I", open(sys.argv[1],"rb").read(), 20)[0])' "$C")
cc=$(chunk "$C" $((cn - 1)))
mk "$C" $((cc + 12)) '<I' 0x12345678
bad_img "$H" "simg: chunk $((cn - 1)) \\(CRC32\\): 0x12345678 is not 0x[0-9a-f]{8}, the CRC32 of the [0-9]+ blocks before it" "CRC32 chunk wrong"
# the byte inverted (a fixed value would match random data once in 256 runs)
off=$(($(chunk "$C" 0) + 12 + 100))
mk "$C" $off '<B' "$(python3 -c 'import sys; print(open(sys.argv[1], "rb").read()[int(sys.argv[2])] ^ 0xff)' "$C" $off)"
bad_img "$H" "simg: chunk $((cn - 1)) \\(CRC32\\): 0x[0-9a-f]{8} is not" "a RAW byte changed under a CRC32 chunk"
mk "$C" $((cc + 4)) '<I' 1
bad_img "$H" "simg: chunk $((cn - 1)) \\(CRC32\\): chunk_sz 1 is not 0" "CRC32 chunk_sz"
mk "$C" $((cc + 8)) '<I' 20
bad_img "$H" "simg: chunk $((cn - 1)) \\(CRC32\\): total_sz 20 holds 8 bytes after its header, not 4" "CRC32 total_sz"
mk "$S" 24 '<I' 0x12345678
bad_img "$H" 'simg: image_checksum 0x12345678 is not 0x[0-9a-f]{8}, the CRC32 of the image' "image_checksum wrong"
# G1: empty, the magic alone, zeros; G2: another format named simg
: >"$H"
run_ei 1 -- info -f simg "$H"
has "0-byte file" 'simg: file of 0 bytes is shorter than the 28-byte header' "$ERR"
head -c 4 "$S" >"$H"
bad_img "$H" 'simg: file of 4 bytes is shorter than the 28-byte header' "the magic alone"
head -c 4096 /dev/zero >"$H"
run_ei 1 -- info -f simg "$H"
has "zeros as simg" 'simg: magic 0x00000000 is not 0xed26ff3a' "$ERR"
run_ei 1 -- info -f simg "$T/mixed.qcow2"
has "qcow2 as simg" 'simg: magic 0x[0-9a-f]{8} is not 0xed26ff3a' "$ERR"
# G3: a sparse image whose RAW data holds VDI's signature at 0x40 is both
if has_feature FORMAT_VDI; then
	mk "$S" 64 '<I' 0xbeda107f
	run_ei 1 -- info "$H"
	has "simg and vdi at once: refused, naming both" 'looks like both (vdi and simg|simg and vdi); name one with -f' "$ERR"
	run_ei 0 -- info -f simg "$H"
	has "simg and vdi at once: -f simg reads it" '^file format: simg$' "$OUT"
fi
check "hostile: no output left" test -z "$(listing)"
done_tests
