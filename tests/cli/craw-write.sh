#!/usr/bin/env bash
# requires: FORMAT_CRAW
# SPDX-License-Identifier: MIT
# The compressed raw writer (convert -O craw), judged by the codecs' own
# tools: zstd -d, xz -d, gzip -d and pigz -d give the disk back (cmp),
# zstd -l and xz -l accept the files; the same bytes for any -j; edgeimg
# reads its output back (compare, convert -O raw); a seekable .zst and a
# multi-block .xz are read without decoding the whole stream (a corrupt
# frame in the middle: info still opens it, the read that needs it fails
# naming it); hostile seek tables (SP2) refused naming the entry, no
# output; bad options refused before OUT exists.
. "$(dirname "$0")/../lib.sh"
need sfdisk mkfs.ext4 python3 cmp gzip pkg-config file

mkdir -p "$T/o"
# A disk of data (an ext4 partition), zeros written as data, a run of text,
# holes (the empty partition, the tail), its size not a multiple of 1 MiB.
fixture "sample disk" mkdisk "$T/disk.raw" 16 || { done_tests; exit; }
dd if=/dev/zero of="$T/disk.raw" bs=1M seek=11 count=2 conv=notrunc status=none
yes 'edgeimg craw writer' | head -c 700000 |
	dd of="$T/disk.raw" bs=1 seek=13500000 conv=notrunc status=none
truncate -s $((19 * 1048576 + 12345)) "$T/disk.raw"

codecs=gzip
has_feature CODEC_XZ && codecs="$codecs xz"
has_feature CODEC_ZSTD && codecs="$codecs zstd"

# dtool CODEC: the tool that decompresses it to standard output.
dtool() {
	case $1 in
	gzip) echo "gzip -dc" ;;
	xz) echo "xz -dc" ;;
	zstd) echo "zstd -dcq" ;;
	esac
}

for c in $codecs; do
	[ "$c" = gzip ] || need "$c"
	for j in 1 2 4; do
		run_ei 0 -- convert -j $j -O craw -o compression=$c,level=3,block_size=1M \
			"$T/disk.raw" "$T/$c.j$j"
	done
	check "$c: -j 1 and -j 2 give the same bytes" cmp -s "$T/$c.j1" "$T/$c.j2"
	check "$c: -j 1 and -j 4 give the same bytes" cmp -s "$T/$c.j1" "$T/$c.j4"
	f=$T/$c.j2
	$(dtool $c) <"$f" >"$T/d.raw"
	check "$c: $(dtool $c) gives the disk back" cmp -s "$T/disk.raw" "$T/d.raw"
	run_ei 0 -- compare "$f" "$T/disk.raw"
	has "$c: compare says identical" '^Images are identical\.$' "$OUT"
	rm -f "$T/e.raw"
	run_ei 0 -- convert -O raw "$f" "$T/e.raw"
	check "$c: edgeimg reads its output back" cmp -s "$T/disk.raw" "$T/e.raw"
	# the default block size and level, as the recipe spells them
	run_ei 0 -- convert -O craw -o compression=$c "$T/disk.raw" "$T/$c.def"
	$(dtool $c) <"$T/$c.def" >"$T/d.raw"
	check "$c: defaults: $(dtool $c) gives the disk back" cmp -s "$T/disk.raw" "$T/d.raw"
	# OUT -: the same bytes into a pipe (written front to back)
	$EDGEIMG convert -j 2 -O craw -o compression=$c,level=3,block_size=1M \
		"$T/disk.raw" - 2>"$T/perr" | cat >"$T/$c.pipe"
	check "$c: OUT - into a pipe: the file's bytes ($(head -c 200 "$T/perr"))" \
		cmp -s "$T/$c.j1" "$T/$c.pipe"
done

if has_oracle pigz; then
	pigz -dc <"$T/gzip.j2" >"$T/d.raw"
	check "gzip: pigz -d gives the disk back" cmp -s "$T/disk.raw" "$T/d.raw"
fi
gzip -tv "$T/gzip.j2" 2>"$T/gt" >&2
check "gzip -t: CRC and length of the combined trailer are right" grep -q 'OK' "$T/gt"
run_ei 0 -- info "$T/gzip.j2"
has "gzip: the recipe is the header's comment" \
	'^recipe: format=craw,writer=[0-9.]+,compression=gzip,level=3,block_size=1048576,deflate=zlib-[0-9.]+$' "$OUT"

# --- xz: one block per unit, an index; read at random ---------------------
if has_feature CODEC_XZ; then
	xz -lvv "$T/xz.j2" >"$T/xl" 2>&1
	check "xz -l accepts it ($(tail -n 1 "$T/xl"))" test $? -eq 0
	blocks=$(xz -l --robot "$T/xz.j2" | awk '$1 == "totals" { print $3 }')
	check "xz: one block per MiB (20 blocks, xz -l says $blocks)" test "$blocks" = 20
	run_ei 0 -- info "$T/xz.j2"
	has "xz: read through its index, 20 blocks" '^ +blocks: 20$' "$OUT"
	# corrupt block 3 (disk bytes 3..4 MiB, ext4 data): the file opens,
	# the read of all names the block
	python3 - "$T/xz.j2" "$T/xbad.xz" <<'PY'
import lzma, subprocess, sys
out = subprocess.run(["xz", "-l", "--robot", "-vv", sys.argv[1]], capture_output=True, text=True).stdout
b = [l.split("\t") for l in out.splitlines() if l.startswith("block\t")]
off, size = int(b[3][4]), int(b[3][6])   # compressed offset and total size of the 4th block
assert size > 4096, size
d = bytearray(open(sys.argv[1], "rb").read())
for i in range(off + size // 2, off + size // 2 + 64):
    d[i] ^= 0x55
open(sys.argv[2], "wb").write(d)
PY
	run_ei 0 -- info "$T/xbad.xz"
	has "xz: a corrupt middle block: the file still opens (no whole-stream decode)" '^virtual size: .*\(19935289 bytes\)$' "$OUT"
	run_ei 1 -- convert -O raw "$T/xbad.xz" "$T/o/x.raw"
	has "xz: the read that needs the corrupt block names it" '^edgeimg convert: craw: xz block 3 at offset [0-9]+ is corrupt' "$ERR"
	check "xz: corrupt block: no output" test -z "$(listing)"
fi

# --- zstd: the seekable format, read at random ----------------------------
if has_feature CODEC_ZSTD; then
	z=$T/zstd.j2
	zstd -lv "$z" >"$T/zl" 2>&1
	check "zstd -l accepts it" test $? -eq 0
	has "zstd -l: 20 frames and 2 skippable frames (recipe, seek table)" \
		'^# Zstandard Frames: 20$' "$(sed -n 's/^# Zstandard Frames:/# Zstandard Frames:/p' "$T/zl")"
	run_ei 0 -- info --json "$z"
	check "info: the seek table gives the size, 20 frames, the recipe" \
		python3 - "$T/.out" "$(codec_lib zstd)" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))
d = a["format-specific"]["data"]
assert a["virtual-size"] == 19935289, a
assert d["virtual-size-source"] == "zstd seek table" and d["frames"] == 20, d
assert a["recipe"] == "format=craw,writer=%s,compression=zstd,level=3,block_size=1048576,%s" % (
    a["recipe"].split(",")[1][7:], sys.argv[2]), a["recipe"]
PY
	recipe=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["recipe"])' "$T/.out")
	run_ei 0 -- convert -O craw -o "$recipe" "$T/disk.raw" "$T/re.zst"
	check "zstd: convert -o <recipe> gives the same bytes" cmp -s "$z" "$T/re.zst"

	# seek-table editing: python3 seek.py IN OUT ACTION [ENTRY]
	cat >"$T/seek.py" <<'PY'
import struct, sys
src, dst, act = sys.argv[1:4]
d = bytearray(open(src, "rb").read())
n = struct.unpack_from("<I", d, len(d) - 9)[0]
t = len(d) - (8 + 8 * n + 9)            # the seek table's skippable frame
ent = lambda i: t + 8 + 8 * i
k = int(sys.argv[4]) if len(sys.argv) > 4 else 0
if act == "corrupt":                    # bytes in the middle of frame k
    off = sum(struct.unpack_from("<I", d, ent(i))[0] for i in range(k))
    cs = struct.unpack_from("<I", d, ent(k))[0]
    for i in range(off + cs // 2, off + cs // 2 + 32):
        d[i] ^= 0x5a
elif act == "count":                    # entry count past the frame
    struct.pack_into("<I", d, len(d) - 9, n + 1)
elif act == "huge":
    struct.pack_into("<I", d, len(d) - 9, 0x10000000)
elif act == "csum":                     # compressed sizes summing past the file
    cs = struct.unpack_from("<I", d, ent(k))[0]
    struct.pack_into("<I", d, ent(k), cs + len(d))
elif act == "cshort":                   # entry k one byte short
    cs = struct.unpack_from("<I", d, ent(k))[0]
    struct.pack_into("<I", d, ent(k), cs - 1)
elif act == "dless":                    # decompressed size smaller than the frame
    struct.pack_into("<I", d, ent(k) + 4, struct.unpack_from("<I", d, ent(k) + 4)[0] - 4096)
elif act == "dmore":                    # larger than the frame
    struct.pack_into("<I", d, ent(k) + 4, struct.unpack_from("<I", d, ent(k) + 4)[0] + 4096)
open(dst, "wb").write(d)
PY
	# a corrupt frame in the middle (frame 3, disk bytes 3..4 MiB, ext4
	# data): open needs no decoding of it; the read that needs it names it
	python3 "$T/seek.py" "$z" "$T/bad.zst" corrupt 3
	check "setup: zstd -d fails on the corrupt frame" \
		sh -c "! zstd -dcq <'$T/bad.zst' >/dev/null 2>&1"
	run_ei 0 -- info "$T/bad.zst"
	has "zstd: a corrupt middle frame: the file still opens (no whole-stream decode)" \
		'^virtual size: .*\(19935289 bytes\)$' "$OUT"
	run_ei 1 -- convert -O raw "$T/bad.zst" "$T/o/x.raw"
	has "zstd: the read that needs the corrupt frame names its entry" \
		'^edgeimg convert: craw: zstd seek table entry 3: the frame at offset [0-9]+ is corrupt' "$ERR"
	check "zstd: corrupt frame: no output" test -z "$(listing)"

	# SP2: hostile seek tables, each an error naming what lies, no output
	sp2() {
		local act=$1 k=$2 want=$3 d=$4
		python3 "$T/seek.py" "$z" "$T/h.zst" "$act" "$k"
		run_ei 1 -- convert -O raw "$T/h.zst" "$T/o/x.raw"
		has "SP2 $d" "$want" "$ERR"
		check "SP2 $d: no output" test -z "$(listing)"
	}
	sp2 count 0 '^edgeimg convert: [^ ]+: craw: zstd seek table: the entry count 21 does not fit its skippable frame' \
		"entry count past the frame"
	sp2 huge 0 '^edgeimg convert: [^ ]+: craw: zstd seek table: 268435456 entries need [0-9]+ bytes, the file holds [0-9]+$' \
		"entry count past the file"
	sp2 csum 4 '^edgeimg convert: [^ ]+: craw: zstd seek table entry 4: compressed size [0-9]+ at offset [0-9]+ goes past the [0-9]+ bytes of frames before the table$' \
		"compressed sizes summing past the file"
	sp2 cshort 3 '^edgeimg convert: [^ ]+: craw: zstd seek table: the compressed sizes of its 20 entries sum to [0-9]+, not the [0-9]+ bytes of frames before the table$' \
		"compressed sizes summing short of the table"
	sp2 dless 5 '^edgeimg convert: craw: zstd seek table entry 5 says 1044480 decompressed bytes, its frame at offset [0-9]+ holds more than 1044480$' \
		"a decompressed size smaller than the frame"
	sp2 dmore 6 '^edgeimg convert: craw: zstd seek table entry 6 says 1052672 decompressed bytes, its frame at offset [0-9]+ holds 1048576$' \
		"a decompressed size larger than the frame"
fi

# --- bad options: refused before OUT exists --------------------------------
# refuse EXIT PATTERN OPTS...
refuse() {
	local code=$1 want=$2
	shift 2
	run_ei "$code" -- convert -O craw "$@" "$T/disk.raw" "$T/o/x.craw"
	has "refused: $*" "$want" "$ERR"
	check "refused $*: no output" test -z "$(listing)"
}
refuse 2 "^edgeimg convert: craw: compression=lz4 is not one of zstd, xz, gzip\$" -o compression=lz4
refuse 2 '^edgeimg convert: craw: level=10 is not in 1\.\.9 for gzip$' -o compression=gzip,level=10
refuse 2 '^edgeimg convert: craw: level=0 is not in 1\.\.9 for gzip$' -o compression=gzip,level=0
refuse 2 "^edgeimg convert: craw: block_size=3145728 is not a power of two from 64 KiB to 64 MiB\$" -o block_size=3M
refuse 2 "^edgeimg convert: craw: block_size=32768 is not a power of two from 64 KiB to 64 MiB\$" -o block_size=32k
refuse 2 "unknown option 'levle'.*did you mean 'level'" -o levle=3
refuse 1 '^edgeimg convert: craw: recipe needs deflate zlib-0\.0\.1, this build has zlib-' -o compression=gzip,deflate=zlib-0.0.1
if has_feature CODEC_ZSTD; then
	refuse 2 '^edgeimg convert: craw: level=20 is not in 1\.\.19 for zstd$' -o compression=zstd,level=20
	refuse 2 '^edgeimg convert: craw: xz=5\.4\.1 does not apply to zstd compression$' -o compression=zstd,xz=5.4.1
else
	refuse 1 '^edgeimg convert: craw: compression=zstd is not built in \(CODEC_ZSTD is off\)$' -o compression=zstd
fi
if has_feature CODEC_XZ; then
	refuse 2 '^edgeimg convert: craw: level=10 is not in 0\.\.9 for xz$' -o compression=xz,level=10
else
	refuse 1 '^edgeimg convert: craw: compression=xz is not built in \(CODEC_XZ is off\)$' -o compression=xz
fi

# --- xz: each block's branch-call filter, chosen from its data ------------
# xz -lvv names each block's filters: x86 code gets --x86, ARM64 code
# --arm64, text and random data none; xz -d undoes them.
if has_feature CODEC_XZ; then
	a64=/usr/aarch64-linux-gnu/lib/libc.so.6        # gcc-aarch64-linux-gnu's
	if [ -r "$a64" ] && [ -r /bin/bash ] && file -L /bin/bash | grep -q 'x86-64'; then
		{
			head -c $((128 * 1024 + 1048576)) /bin/bash | tail -c 1048576
			head -c $((256 * 1024 + 1048576)) "$a64" | tail -c 1048576
			yes 'edgeimg craw writer' | head -c 1048576
			head -c 1048576 /dev/urandom
		} >"$T/bcj.raw"
		run_ei 0 -- convert -j 3 -O craw -o compression=xz,level=1,block_size=1M "$T/bcj.raw" "$T/bcj.xz"
		xz --robot -lvv "$T/bcj.xz" | awk -F'\t' '$1 == "block" { print $3, $NF }' >"$T/bcjl"
		check "xz: block 1 (x86 code) --x86, 2 (ARM64 code) --arm64, 3 and 4 (text, random) none: $(tr '\n' ' ' <"$T/bcjl")" \
			test "$(tr '\n' ' ' <"$T/bcjl")" = "1 --x86 --lzma2=dict=1MiB 2 --arm64 --lzma2=dict=1MiB 3 --lzma2=dict=1MiB 4 --lzma2=dict=1MiB "
		xz -dc "$T/bcj.xz" | cmp -s - "$T/bcj.raw"
		check "xz: xz -d undoes the filters" test $? -eq 0
		run_ei 0 -- compare "$T/bcj.xz" "$T/bcj.raw"
		has "xz: edgeimg reads the filtered blocks" '^Images are identical\.$' "$OUT"
	elif [ -n "${CI:-}" ]; then
		bad "setup error: no x86-64 /bin/bash or no $a64 (gcc-aarch64-linux-gnu) for the filter test"
	else
		echo "SKIP $NAME: no x86-64 /bin/bash or no $a64: the filter test"
		t_skip=$((t_skip + 1))
	fi
fi

# bmap_copy LABEL MAP IMAGE DISK: bmaptool copy of IMAGE (.zst or .xz by
# name) with MAP verifies every range and gives DISK.
bmap_copy() {
	has_oracle bmaptool || return 0
	rm -f "$T/bcopy"
	bmaptool -q copy --bmap "$2" "$3" "$T/bcopy" 2>"$T/bt" || cat "$T/bt" >&2
	check "$1: bmaptool copy verifies the ranges and gives the disk" cmp -s "$4" "$T/bcopy"
	rm -f "$T/bcopy"
}

# --- frames streamed by several workers: order, the map, memory -------------
# Small frames, more workers than frames in flight: the bytes of -j 1, and
# --bmap's map (its data taken in disk order from whichever worker read
# it) the raw output's, which bmaptool copy verifies.
for c in $codecs; do
	[ "$c" = gzip ] && continue
	rm -f "$T"/s*.bmap "$T/raw.bmap"
	x=${c%d}       # bmaptool knows .zst and .xz by name
	for j in 1 3; do
		run_ei 0 -- convert -j $j -O craw -o compression=$c,level=1,block_size=64k \
			--bmap "$T/s$j.bmap" "$T/disk.raw" "$T/s$j.$x"
	done
	check "$c, 64 KiB frames: -j 1 and -j 3 give the same bytes" cmp -s "$T/s1.$x" "$T/s3.$x"
	run_ei 0 -- convert -O raw --bmap "$T/raw.bmap" "$T/disk.raw" "$T/s.raw"
	check "$c, 64 KiB frames, -j 3: --bmap is the raw output's map" cmp -s "$T/raw.bmap" "$T/s3.bmap"
	check "$c, 64 KiB frames, -j 1: --bmap is the raw output's map" cmp -s "$T/raw.bmap" "$T/s1.bmap"
	bmap_copy "$c, 64 KiB frames, -j 3" "$T/s3.bmap" "$T/s3.$x" "$T/disk.raw"
	rm -f "$T/s1.$x" "$T/s3.$x" "$T/s.raw"
done

# --- --bmap data read again -------------------------------------------------
# xz level 6 with 8 MiB blocks and --bmap, -j 2: the worker ahead of the
# head keeps its output and only the first of its block's data in the cap
# and reads the rest again, with the hole in it, when its block is next.
# The map is the raw output's all the same and the bytes -j 1's.
if has_feature CODEC_XZ && ! python3 - "$T/rr.raw" <<'PY'; then
import random, sys
r = random.Random(7)
w = ['alpha', 'beta', 'gamma', 'delta', 'edge', 'image', 'slot', 'boot']
s = ''.join('%d %s %s\n' % (r.randrange(10**6), r.choice(w), r.choice(w))
            for _ in range(1000000)).encode()[:17 << 20]
with open(sys.argv[1], 'wb') as f:
    f.write(s[:11 << 20])
    f.seek(12 << 20)
    f.write(s[12 << 20:])
PY
	bad "setup error: python3 could not write the text disk"
elif has_feature CODEC_XZ; then
	rm -f "$T"/rr*.bmap
	for j in 1 2; do
		run_ei 0 -- convert -j $j -O craw -o compression=xz --bmap "$T/rr$j.bmap" \
			"$T/rr.raw" "$T/rr$j.xz"
	done
	run_ei 0 -- convert -O raw --bmap "$T/rrraw.bmap" "$T/rr.raw" "$T/rr.out"
	check "xz level 6, 8 MiB blocks, -j 2 --bmap: the raw output's map" cmp -s "$T/rrraw.bmap" "$T/rr2.bmap"
	check "xz level 6, 8 MiB blocks: -j 1 and -j 2 give the same bytes" cmp -s "$T/rr1.xz" "$T/rr2.xz"
	bmap_copy "xz level 6, -j 2" "$T/rr2.bmap" "$T/rr2.xz" "$T/rr.raw"
	rm -f "$T"/rr*
fi

# --- memory: level 19 and xz level 6 in the 64 MiB default cap ------------
# Incompressible data, three frames of the default size, -j 4: the workers
# hold whole frames' output while another is written.  Not under ASan or a
# runner (qemu-user's own translation cache is in the RSS /usr/bin/time sees).
if [ -n "${SAN:-}" ] || [[ $EDGEIMG == *" "* ]]; then
	echo "SKIP $NAME: peak RSS at levels 19 and 6: not under ASan or a runner"
	t_skip=$((t_skip + 1))
elif has_oracle /usr/bin/time; then
	for c in zstd xz; do
		has_feature CODEC_${c^^} || continue
		case $c in
		zstd) n=40000000 lv=19 ;;
		xz) n=20000000 lv=6 ;;
		esac
		head -c $n /dev/urandom >"$T/rand.raw"
		/usr/bin/time -f %M -o "$T/rss" $EDGEIMG convert -j 4 -O craw \
			-o compression=$c,level=$lv "$T/rand.raw" "$T/rand.$c" 2>/dev/null
		rss=$(tail -n 1 "$T/rss")
		check "$c level $lv: peak RSS ${rss} KiB < 64 MiB with -j 4" test "$rss" -lt 65536
		$(dtool $c) <"$T/rand.$c" | cmp -s - "$T/rand.raw"
		check "$c: incompressible frames decompress" test $? -eq 0
		rm -f "$T/rand.raw" "$T/rand.$c"
	done
fi

done_tests
