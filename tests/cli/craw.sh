#!/usr/bin/env bash
# requires: FORMAT_CRAW
# SPDX-License-Identifier: MIT
# Compressed raw disks (.gz, .xz, .zst): every codec and its multi-member
# forms, judged by gzip/xz/zstd -dc and qemu-img; truncated and corrupt
# streams, a 2^31 zstd window (P9), an xz dictionary over the memory limit,
# a gzip bomb within the memory cap, content that is not a raw disk (T13),
# G1 and G2.
. "$(dirname "$0")/../lib.sh"
need qemu-img sfdisk mkfs.ext4 python3 cmp gzip xz zstd /usr/bin/time

mkdir -p "$T/o"
mkdisk "$T/disk.raw" 24

# judge FILE DCMD KIND DESC: edgeimg reads FILE as DCMD decompresses it.
judge() {
	local f=$1 dcmd=$2 kind=$3 d=$4
	rm -f "$T/d.raw" "$T/e.raw" "$T/q.raw"
	$dcmd <"$f" >"$T/d.raw"
	run_ei 0 -- convert -O raw "$f" "$T/e.raw"
	check "$d: convert = $dcmd" cmp -s "$T/d.raw" "$T/e.raw"
	check "$d: qemu-img compare agrees" qemu-img compare -q -f raw -F raw "$T/d.raw" "$T/e.raw"
	qemu-img convert -f raw -O raw "$T/d.raw" "$T/q.raw"
	check "$d: holes kept ($(stat -c %b "$T/e.raw") <= $(stat -c %b "$T/q.raw") + 64 blocks)" \
		test "$(stat -c %b "$T/e.raw")" -le $(($(stat -c %b "$T/q.raw") + 64))
	run_ei 0 -- compare "$f" "$T/d.raw"
	has "$d: compare says identical" '^Images are identical\.$' "$OUT"
	run_ei 0 -- info --json "$f"
	echo "$OUT" >"$T/e.json"
	check "$d: info: format, virtual size, compression" \
		python3 - "$T/e.json" "$(stat -c %s "$T/d.raw")" "$kind" "$(stat -c %s "$f")" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))
assert a['format'] == 'craw', a['format']
assert a['virtual-size'] == int(sys.argv[2]), (a['virtual-size'], sys.argv[2])
d = a['format-specific']['data']
assert d['compression'] == sys.argv[3], d
assert d['compressed-size'] == int(sys.argv[4]), d
assert d['virtual-size-source'] == ('xz index' if sys.argv[3] == 'xz' else 'counted by decompressing'), d
PY
}

# --- correct: each codec, single and concatenated streams --------------------
gzip -c "$T/disk.raw" >"$T/a.gz"
judge "$T/a.gz" "gzip -dc" gzip "gzip"
gzip -1 -c "$T/disk.raw" >"$T/b.gz"
head -c 5000000 "$T/disk.raw" | gzip -c >"$T/m.gz"
tail -c +5000001 "$T/disk.raw" | gzip -9 -c >>"$T/m.gz"
judge "$T/m.gz" "gzip -dc" gzip "gzip, two members"
cp "$T/b.gz" "$T/pad.gz" && head -c 4096 /dev/zero >>"$T/pad.gz"
judge "$T/pad.gz" "gzip -dcq" gzip "gzip with zero padding"
xz -T1 -c "$T/disk.raw" >"$T/a.xz"
judge "$T/a.xz" "xz -dc" xz "xz"
xz -T2 --block-size=4MiB -0 -c "$T/disk.raw" >"$T/b.xz"
judge "$T/b.xz" "xz -dc" xz "xz, many blocks"
{ head -c 3000000 "$T/disk.raw" | xz -c --check=sha256; tail -c +3000001 "$T/disk.raw" | xz -c --check=none; } >"$T/m.xz"
judge "$T/m.xz" "xz -dc" xz "xz, two streams"
zstd -q -c "$T/disk.raw" >"$T/a.zst"
judge "$T/a.zst" "zstd -dcq" zstd "zstd"
{ head -c 7000000 "$T/disk.raw" | zstd -q -c --no-check; tail -c +7000001 "$T/disk.raw" | zstd -q -c -19; } >"$T/m.zst"
judge "$T/m.zst" "zstd -dcq" zstd "zstd, two frames, no content size"
# a sparse disk (mostly zeros): zero runs stay holes
truncate -s 64M "$T/sparse.raw"
printf 'edgeimg' | dd of="$T/sparse.raw" bs=1 seek=40000000 conv=notrunc status=none
zstd -q -c "$T/sparse.raw" >"$T/s.zst"
judge "$T/s.zst" "zstd -dcq" zstd "sparse disk"
check "zero runs become holes" test "$(stat -c %b "$T/e.raw")" -le 64
run_ei 0 -- info "$T/a.xz"
has "info text" '^file format: craw$' "$OUT"
has "info text names the codec" 'compression: xz' "$OUT"

# --- random reads: delta and apply with a compressed OLD --------------------
# NEW is OLD's 1 MiB pieces shuffled, so OLD is read backwards over and
# over; the result is judged by cmp.  With no temporary file possible
# (TMPDIR missing) the reader starts the stream over instead: slower, same bytes.
if has_feature CODEC_ZSTD; then
	python3 - "$T/disk.raw" "$T/shuf.raw" <<'PY'
import random, sys
d = open(sys.argv[1], 'rb').read()
p = [d[i:i + 1048576] for i in range(0, len(d), 1048576)]
random.Random(7).shuffle(p)
open(sys.argv[2], 'wb').write(b''.join(p))
PY
	for z in a.zst a.gz a.xz; do
		rm -f "$T/o/p.patch" "$T/o/new.raw"
		run_ei 0 -- delta "$T/$z" "$T/shuf.raw" "$T/o/p.patch"
		run_ei 0 -- apply "$T/$z" "$T/o/p.patch" "$T/o/new.raw"
		check "delta and apply over $z, OLD read at random" cmp -s "$T/o/new.raw" "$T/shuf.raw"
	done
	rm -f "$T/o/new.raw"
	TMPDIR=$T/none ei apply "$T/a.gz" "$T/o/p.patch" "$T/o/new.raw" >/dev/null 2>"$T/.err"
	check "apply over a.gz without a temporary directory ($(head -c 200 "$T/.err"))" \
		cmp -s "$T/o/new.raw" "$T/shuf.raw"
	rm -f "$T/o/p.patch" "$T/o/new.raw" "$T/shuf.raw"
fi

# --- a gzip bomb: 1 GiB of zeros in about 1 MiB (16 members of 64 MiB) ------
head -c 64M /dev/zero | gzip -9 -c >"$T/z64.gz"
for _ in $(seq 16); do cat "$T/z64.gz"; done >"$T/bomb.gz"
check "the bomb is about 1 MiB" test "$(stat -c %s "$T/bomb.gz")" -lt 1200000
if [ -z "${SAN:-}" ]; then
	/usr/bin/time -f %M -o "$T/rss" $EDGEIMG convert -O raw "$T/bomb.gz" "$T/o/bomb.raw" 2>"$T/.err"
	check "bomb converts" test $? -eq 0
	rss=$(tail -n 1 "$T/rss")
	check "bomb: peak RSS $rss KiB < 64 MiB" test "$rss" -lt 65536
else
	run_ei 0 -- convert -O raw "$T/bomb.gz" "$T/o/bomb.raw"
fi
check "bomb: 1 GiB, all holes" test "$(stat -c %s:%b "$T/o/bomb.raw")" = "1073741824:0"
rm -f "$T/o/bomb.raw" "$T/bomb.gz"

# --- hostile ---------------------------------------------------------------
# refuse FILE PATTERN DESC [convert]: info (unless "convert") and convert fail
# naming the problem, with no output left behind.
refuse() {
	if [ "${4:-}" != convert ]; then
		run_ei 1 -- info "$1"
		has "$3: info" "$2" "$ERR"
	fi
	run_ei 1 -- convert -O raw "$1" "$T/o/x"
	has "$3: convert" "$2" "$ERR"
	check "$3: no output left behind" test -z "$(listing)"
}
# truncated streams: cut each codec at a few points
for z in a.gz a.xz a.zst m.zst; do
	n=$(stat -c %s "$T/$z")
	for cut in 20 $((n / 10)) $((n / 2)) $((n - 9)) $((n - 1)); do
		head -c $cut "$T/$z" >"$T/cut.${z##*.}"
		refuse "$T/cut.${z##*.}" "craw: (gzip|xz|zstd) (stream is truncated|data is corrupt)" "$z cut at $cut"
	done
done
# corrupt streams: bytes flipped in the middle
for z in a.gz a.xz a.zst; do
	cp "$T/$z" "$T/bad.${z##*.}"
	printf '\xde\xad\xbe\xef' | dd of="$T/bad.${z##*.}" bs=1 seek=$(($(stat -c %s "$T/$z") / 2)) conv=notrunc status=none
	# xz: info reads the size from the index, only reading the data finds it
	refuse "$T/bad.${z##*.}" "craw: (gzip|xz|zstd) data is corrupt near offset" "$z corrupt" \
		$([ "$z" = a.xz ] && echo convert)
done
# gzip's CRC-32 and ISIZE are checked
python3 - "$T/a.gz" "$T/crc.gz" <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
b[-6] ^= 0xff
open(sys.argv[2], 'wb').write(b)
PY
refuse "$T/crc.gz" 'craw: gzip data is corrupt near offset .*incorrect data check' "gzip CRC"
# trailing garbage after a gzip stream
cp "$T/b.gz" "$T/trail.gz" && printf 'garbage' >>"$T/trail.gz"
refuse "$T/trail.gz" 'craw: trailing data after the gzip stream' "gzip trailing garbage"
# P9: a zstd frame declaring a 2^31 window (windowLog 31), as the zstd tool refuses
printf '\x28\xb5\x2f\xfd\x00\xa8\x01\x00\x00' >"$T/p9.zst"
check "P9: zstd refuses it too" sh -c "! zstd -dcq <'$T/p9.zst' >/dev/null 2>&1"
refuse "$T/p9.zst" 'craw: zstd frame near offset .* needs a window larger than the 128 MiB allowed' "P9"
# the same made by the zstd tool: --long=31 from a pipe declares a 2^31 window
head -c 100000 "$T/disk.raw" | zstd -q -c --long=31 >"$T/long.zst"
check "P9: zstd --long=31 needs --long=31 to decode" sh -c "! zstd -dcq <'$T/long.zst' >/dev/null 2>&1"
refuse "$T/long.zst" 'craw: zstd frame near offset 0 needs a window larger than the 128 MiB allowed' "P9 --long=31"
# an xz dictionary of 1.5 GiB: over the decoder memory limit
head -c 100000 "$T/disk.raw" | xz -c --lzma2=dict=1536MiB >"$T/dict.xz"
refuse "$T/dict.xz" 'craw: xz stream needs [0-9]+ MiB of decoder memory, more than the 128 MiB allowed' "xz memlimit"
# an xz index that lies about the size: found when reading reaches the end
for delta in -1048576 1048576; do
	python3 - "$T/a.xz" "$T/lie.xz" $delta <<'PY'
import struct, sys, zlib
b = bytearray(open(sys.argv[1], 'rb').read())
assert b[-2:] == b'YZ'
isize = (struct.unpack_from('<I', b, len(b) - 8)[0] + 1) * 4
at = len(b) - 12 - isize
def varint(p):
    v = s = 0
    while True:
        v |= (b[p] & 0x7f) << s
        s += 7
        p += 1
        if not b[p - 1] & 0x80:
            return v, p
n, p = varint(at + 1)
assert n == 1, n
_, p = varint(p)                        # unpadded size
start = p
size, end = varint(p)                   # uncompressed size
new, v = size + int(sys.argv[3]), bytearray()
while True:
    v.append(new & 0x7f | (0x80 if new >> 7 else 0))
    new >>= 7
    if not new:
        break
assert len(v) == end - start
b[start:end] = v
struct.pack_into('<I', b, len(b) - 12 - 4, zlib.crc32(b[at:len(b) - 16]))
open(sys.argv[2], 'wb').write(b)
PY
	check "xz -l believes the index" sh -c "xz -lv --robot '$T/lie.xz' | grep -q '^totals'"
	run_ei 0 -- info --json "$T/lie.xz"
	has "index size $delta is what info says" "\"virtual-size\": $((24 * 1048576 + delta))," "$OUT"
	if [ "$delta" -lt 0 ]; then
		# the disk's GPT does not fit the size the index gives: info says so
		has "index size $delta: info names the GPT past the disk" \
			"\"partition-table-error\": \"gpt: .* not inside the disk's $(((24 * 1048576 + delta) / 512)) sectors" "$OUT"
	fi
	refuse "$T/lie.xz" 'craw: (the xz stream holds more than the [0-9]+ bytes found at open \(its index is wrong\)|xz data is corrupt|xz stream ended at)' \
		"lying xz index $delta" convert
done

# content that is not a raw disk: a tar (a compressed OVA, T13), a qcow2
mkdir -p "$T/t" && echo x >"$T/t/app.ovf" && tar -C "$T/t" -cf "$T/t.tar" app.ovf
gzip -c "$T/t.tar" >"$T/t.tar.gz"
refuse "$T/t.tar.gz" 'craw: the gzip stream holds a tar archive \(a compressed OVA\?\)' "T13 tar.gz"
if has_feature FORMAT_QCOW2; then
	qemu-img convert -O qcow2 "$T/disk.raw" "$T/q.qcow2"
	zstd -q -c "$T/q.qcow2" >"$T/q.qcow2.zst"
	refuse "$T/q.qcow2.zst" 'craw: the zstd stream holds a qcow2 image' "compressed qcow2"
fi
gzip -c "$T/a.xz" >"$T/nested.xz.gz"
refuse "$T/nested.xz.gz" 'craw: the gzip stream holds a craw image' "nested compression"

# G1: empty, magic only, all zeros, all 0xff
: >"$T/empty"
run_ei 1 -- info -f craw "$T/empty"
has "G1 empty" 'craw: .*empty is not a gzip, xz or zstd stream \(0 bytes' "$ERR"
for m in '\x1f\x8b\x08' '\xfd7zXZ\x00' '\x28\xb5\x2f\xfd'; do
	printf "$m" >"$T/magic"
	run_ei 1 -- info -f craw "$T/magic"
	has "G1 magic only ($m)" 'craw: (gzip|xz|zstd) (stream is truncated|data is corrupt)' "$ERR"
done
head -c 65536 /dev/zero >"$T/zeros"
run_ei 1 -- info -f craw "$T/zeros"
has "G1 zeros" 'craw: .* is not a gzip, xz or zstd stream' "$ERR"
head -c 65536 /dev/zero | tr '\0' '\377' >"$T/ffs"
run_ei 1 -- info -f craw "$T/ffs"
has "G1 0xff" 'craw: .* is not a gzip, xz or zstd stream \(6 bytes, magic ff ff ff ff\)' "$ERR"
# G2: the streams given as every other format, other images given as craw
for f in ova qcow2 vmdk vhd vhdx vdi; do
	grep -qw "FORMAT_$(tr a-z A-Z <<<"$f")" <<<"${FEATURES:-}" || continue
	for z in a.gz a.xz a.zst; do
		run_ei 1 -- info -f $f "$T/$z"
		check "G2: $z as $f fails with a message" test -n "$ERR"
	done
done
run_ei 1 -- info -f craw "$T/disk.raw"
has "G2: raw as craw" 'craw: .* is not a gzip, xz or zstd stream' "$ERR"
run_ei 1 -- info -f craw "$T/t.tar"
has "G2: tar as craw" 'craw: .* is not a gzip, xz or zstd stream' "$ERR"

# a pipe cannot be counted then read
mkfifo "$T/fifo"
(cat "$T/a.gz" >"$T/fifo" &)
run_ei 1 -- info -f craw "$T/fifo"
has "a pipe is refused" 'craw: .* is not seekable' "$ERR"
cat "$T/fifo" >/dev/null 2>&1 &

done_tests
