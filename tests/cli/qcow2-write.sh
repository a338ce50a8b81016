#!/usr/bin/env bash
# requires: OUTPUT_QCOW2
# SPDX-License-Identifier: MIT
# The qcow2 writer, judged by qemu-img: check clean, compare identical,
# info shows what was asked, every cluster size and codec read back by
# qemu-img and by edgeimg; output the same bytes for any -j and from the
# recipe (given back verbatim, as info prints it); zeros not stored;
# bounded memory; bad options refused, naming the valid ones.
. "$(dirname "$0")/../lib.sh"
need qemu-img sfdisk mkfs.ext4 python3 cmp script pkg-config zstd

mkdisk "$T/disk.raw" 32
# Extra content: zeros written as data (not a hole), text.
dd if=/dev/zero of="$T/disk.raw" bs=1M seek=20 count=2 conv=notrunc status=none
yes 'edgeimg qcow2 writer' | head -c 300000 |
	dd of="$T/disk.raw" bs=1 seek=25000000 conv=notrunc status=none

# qcheck IMG DESC: qemu-img check exits 0 and finds nothing; edgeimg check
# says the same numbers.
qcheck() {
	qemu-img check --output=json "$1" >"$T/qc.json" 2>"$T/qc.err"
	check "$2: qemu-img check exits 0 ($(cat "$T/qc.err"))" test $? -eq 0
	ei check --json "$1" >"$T/ec.json" 2>"$T/ec.err"
	check "$2: edgeimg check exits 0 ($(cat "$T/ec.err"))" test $? -eq 0
	check "$2: edgeimg check agrees with qemu-img check" python3 - "$T/qc.json" "$T/ec.json" <<'PY'
import json, sys
q, e = (json.load(open(p)) for p in sys.argv[1:3])
for d in (q, e):
    d.pop("filename")
    assert "leaks" not in d and "corruptions" not in d, d
assert q == e, (q, e)
PY
}

# judge IMG DESC: qemu-img and edgeimg read IMG as the disk.
judge() {
	qcheck "$1" "$2"
	check "$2: qemu-img compare says identical" \
		qemu-img compare -q -f raw -F qcow2 "$T/disk.raw" "$1"
	rm -f "$T/rt.raw"
	ei convert -O raw "$1" "$T/rt.raw" 2>"$T/.e"
	check "$2: edgeimg reads it back ($(cat "$T/.e"))" cmp -s "$T/disk.raw" "$T/rt.raw"
}

# --- every cluster size and codec, compressed; plain; version 2 -----------
for cs in 4k 16k 64k 512k 2M; do
	for c in zlib zstd; do
		o="$T/c-$cs-$c.qcow2"
		run_ei 0 -- convert -c -O qcow2 -o cluster_size=$cs,compression_type=$c "$T/disk.raw" "$o"
		judge "$o" "-c $cs $c"
		qemu-img info --output=json "$o" >"$T/qi.json"
		check "$cs $c: qemu-img info shows the cluster size and codec" \
			python3 - "$T/qi.json" "$cs" "$c" <<'PY'
import json, sys
i = json.load(open(sys.argv[1])); d = i["format-specific"]["data"]
m = {"4k": 4096, "16k": 16384, "64k": 65536, "512k": 524288, "2M": 2097152}
assert i["cluster-size"] == m[sys.argv[2]], i
assert d["compression-type"] == sys.argv[3] and d["compat"] == "1.1", d
PY
	done
done
run_ei 0 -- convert -O qcow2 "$T/disk.raw" "$T/plain.qcow2"
judge "$T/plain.qcow2" "plain"
qemu-img check --output=json "$T/plain.qcow2" >"$T/qc.json"
check "plain: no compressed clusters" python3 -c "
import json, sys; d = json.load(open('$T/qc.json'))
assert 'compressed-clusters' not in d and d['allocated-clusters'] > 0, d"
run_ei 0 -- convert -O qcow2 -o compat=0.10 "$T/disk.raw" "$T/v2.qcow2"
judge "$T/v2.qcow2" "compat=0.10"
run_ei 0 -- convert -c -O qcow2 -o compat=0.10,cluster_size=8k "$T/disk.raw" "$T/v2c.qcow2"
judge "$T/v2c.qcow2" "compat=0.10 -c"
qemu-img info "$T/v2c.qcow2" >"$T/qi.txt"
has "compat=0.10 is version 2" 'compat: 0\.10' "$(cat "$T/qi.txt")"
# qemu-img converts our output, and its output is our input too
rm -f "$T/q.raw"
qemu-img convert -O raw "$T/c-64k-zstd.qcow2" "$T/q.raw"
check "qemu-img convert of the zstd image is the disk" cmp -s "$T/disk.raw" "$T/q.raw"
qemu-img convert -c -O qcow2 "$T/disk.raw" "$T/qemu-c.qcow2"
run_ei 0 -- convert -c -O qcow2 "$T/qemu-c.qcow2" "$T/re.qcow2"
judge "$T/re.qcow2" "qcow2 -> qcow2 -c"

# --- compressed is smaller; zero clusters are not stored -----------------
c=$(stat -c %s "$T/c-64k-zlib.qcow2") q=$(stat -c %s "$T/qemu-c.qcow2")
check "-c zlib is no larger than qemu-img -c ($c vs $q bytes)" test "$c" -le "$q"
p=$(stat -c %s "$T/plain.qcow2")
check "-c is smaller than plain ($c < $p)" test "$c" -lt "$p"
dd if=/dev/zero of="$T/zeros.raw" bs=1M count=16 status=none
run_ei 0 -- convert -c -O qcow2 "$T/zeros.raw" "$T/zeros.qcow2"
qemu-img check --output=json "$T/zeros.qcow2" >"$T/qc.json"
check "written zeros are not stored" python3 -c "
import json; d = json.load(open('$T/qc.json'))
assert 'allocated-clusters' not in d, d"
check "an all-zero disk is a few clusters" test "$(stat -c %s "$T/zeros.qcow2")" -le $((4 * 65536))
check "zeros compare identical" qemu-img compare -q "$T/zeros.raw" "$T/zeros.qcow2"
# a size that is not a multiple of the cluster size nor of 512 (QEMU counts
# sectors: the last one is padded), data up to the last byte
truncate -s $((10 * 1048576 + 4115)) "$T/odd.raw"
printf 'the last sector' | dd of="$T/odd.raw" bs=1 seek=$((10 * 1048576 + 4100)) conv=notrunc status=none
for o in "-c" ""; do
	run_ei 0 -- convert $o -O qcow2 --force "$T/odd.raw" "$T/odd.qcow2"
	qcheck "$T/odd.qcow2" "odd size $o"
	check "odd size $o: compare identical" qemu-img compare -q "$T/odd.raw" "$T/odd.qcow2"
done
qemu-img info --output=json "$T/odd.qcow2" >"$T/qi.json"
has "odd size: rounded up to a sector" '"virtual-size": 10490368' "$(cat "$T/qi.json")"
run_ei 0 -- compare "$T/odd.raw" "$T/odd.qcow2"
has "odd size: edgeimg compare says identical" '^Images are identical\.$' "$OUT"
# a 2 TiB sparse disk: small L1, nothing stored, fast
truncate -s 2T "$T/huge.raw"
printf 'far away' | dd of="$T/huge.raw" bs=1 seek=$((1 << 40)) conv=notrunc status=none
run_ei 0 -- convert -c -O qcow2 "$T/huge.raw" "$T/huge.qcow2"
qcheck "$T/huge.qcow2" "2 TiB"
check "2 TiB: a few clusters" test "$(stat -c %s "$T/huge.qcow2")" -le $((16 * 65536))
qemu-io -f qcow2 -c "read -P 0x66 $((1 << 40)) 1" "$T/huge.qcow2" >"$T/io.txt" 2>&1
has "2 TiB: qemu-io reads the byte far away" 'read 1/1 bytes' "$(cat "$T/io.txt")"
run_ei 1 -- convert -c -O qcow2 -o cluster_size=4k "$T/huge.raw" "$T/o.qcow2"
has "4 KiB clusters for 2 TiB: refused, names the fix" 'qcow2: .*use a larger cluster_size' "$ERR"
check "refused: no output" test ! -e "$T/o.qcow2"
rm -f "$T/huge.raw" "$T/huge.qcow2"

# --- deterministic: any -j, any run; the recipe re-encodes it -------------
for c in zlib zstd; do
	for j in 1 2 4; do
		run_ei 0 -- convert -c -j $j -O qcow2 -o compression_type=$c "$T/disk.raw" "$T/j$j.qcow2"
	done
	run_ei 0 -- convert -c -j 4 -O qcow2 -o compression_type=$c "$T/disk.raw" "$T/j4b.qcow2"
	check "$c: -j 1 and -j 2 give the same bytes" cmp -s "$T/j1.qcow2" "$T/j2.qcow2"
	check "$c: -j 1 and -j 4 give the same bytes" cmp -s "$T/j1.qcow2" "$T/j4.qcow2"
	check "$c: a second run gives the same bytes" cmp -s "$T/j4.qcow2" "$T/j4b.qcow2"
	run_ei 0 -- info --json "$T/j1.qcow2"
	recipe=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["recipe"])' <<<"$OUT")
	lib=$(codec_lib "$([ $c = zlib ] && echo deflate || echo zstd)")
	has "$c: recipe in info --json" "^format=qcow2,writer=[0-9.]+,compat=1\.1,cluster_size=65536,compression_type=$c,compress=on,level=[0-9]+,[a-z]+=" "$recipe"
	check "$c: the recipe ends in the library and its version ($lib)" test "${recipe##*,}" = "$lib"
	opts=$(sed -E 's/^format=qcow2,writer=[^,]*,//' <<<"$recipe")
	run_ei 0 -- convert -O qcow2 -o "$opts" "$T/disk.raw" "$T/re-$c.qcow2"
	check "$c: convert -o <recipe> gives the same bytes" cmp -s "$T/j1.qcow2" "$T/re-$c.qcow2"
	# the same recipe from a build with another library version: refused
	other=$(sed -E 's/(deflate=[a-z]+-|zstd=)[0-9.]+$/\19.8.7/' <<<"$opts")
	mkdir -p "$T/o"
	run_ei 1 -- convert -O qcow2 -o "$other" "$T/disk.raw" "$T/o/x.qcow2"
	has "$c: a recipe naming another library version is refused, naming both" \
		"^edgeimg convert: qcow2: recipe needs (deflate [a-z]+-|zstd )9\.8\.7, this build has ${lib#*=}\$" "$ERR"
	check "$c: refused recipe: no output" test -z "$(ls -A "$T/o")"
	rm -f "$T"/j*.qcow2
done
run_ei 0 -- info "$T/plain.qcow2"
has "recipe in info text" '^recipe: format=qcow2,writer=[0-9.]+,compat=1\.1,cluster_size=65536,compression_type=(zlib|zstd),compress=off$' "$OUT"
recipe=$(sed -n 's/^recipe: //p' <<<"$OUT")
run_ei 0 -- convert -O qcow2 -o "$(sed -E 's/^format=qcow2,writer=[^,]*,//' <<<"$recipe")" "$T/disk.raw" "$T/re.qcow2" --force
check "plain: the recipe gives the same bytes" cmp -s "$T/plain.qcow2" "$T/re.qcow2"
cp "$T/plain.qcow2" "$T/badrecipe.qcow2"
python3 - "$T/badrecipe.qcow2" <<'PY'
import sys
d = bytearray(open(sys.argv[1], 'rb').read())
d[d.index(b'format=qcow2', 0, 4096) + 6] = 1
open(sys.argv[1], 'wb').write(d)
PY
run_ei 0 -- info "$T/badrecipe.qcow2"
check "a garbled recipe is not shown, info still works" test -z "$(grep "^recipe:" <<<"$OUT")"
qemu-img info "$T/c-64k-zlib.qcow2" >"$T/qi.txt" 2>&1
check "qemu-img info says nothing about the recipe extension" \
	test -z "$(grep -iE 'warn|unknown|error|recipe' "$T/qi.txt")"

# --- the recipe given back verbatim: format=, writer= and all --------------
# Non-default options for every codec; the recipe from info (text) and
# from info --json, given to -o as it is (with and without -c, and from
# another edgeimg version: the bytes may then differ, but this build's
# writer made these), writes the same bytes.
rt_cases="zlib:compat=0.10,cluster_size=16384,compression_type=zlib,level=2"
has_feature CODEC_ZSTD && rt_cases="$rt_cases zstd:cluster_size=131072,compression_type=zstd,level=7"
for rc in $rt_cases; do
	c=${rc%%:*} o=${rc#*:}
	run_ei 0 -- convert -c -O qcow2 -o "$o" "$T/disk.raw" "$T/rt-$c.qcow2"
	judge "$T/rt-$c.qcow2" "recipe round trip, $c"
	recipe_round_trip qcow2 "$T/rt-$c.qcow2" "$T/disk.raw" "$o" "$c"
	rm -f "$T/rt2.qcow2"
	run_ei 0 -- convert -c -O qcow2 -o "$RECIPE" "$T/disk.raw" "$T/rt2.qcow2"
	check "$c: -c with the recipe: the same bytes" cmp -s "$T/rt-$c.qcow2" "$T/rt2.qcow2"
	rm -f "$T/rt2.qcow2"
done
recipe_c=$RECIPE

# --- options -------------------------------------------------------------
refuse() {  # refuse PATTERN OPTIONS...: a usage error (exit 2), or WANT=N
	local pat=$1
	shift
	run_ei "${WANT:-2}" -- convert -O qcow2 "$@" "$T/disk.raw" "$T/o/x.qcow2"
	has "refused: $*" "$pat" "$ERR"
	check "refused, no output: $*" test -z "$(ls -A "$T/o")"
}
mkdir -p "$T/o"
refuse 'qcow2: cluster_size=3000 is not a power of two from 4 KiB to 2 MiB' -o cluster_size=3000
refuse 'qcow2: cluster_size=2048 is not' -o cluster_size=2k
refuse 'qcow2: cluster_size=4194304 is not' -o cluster_size=4M
refuse 'qcow2: cluster_size=big is not a power of two from 4 KiB to 2 MiB$' -o cluster_size=big
refuse "qcow2: compression_type=lz4 is not zlib or zstd" -c -o compression_type=lz4
refuse 'qcow2: compression_type=zstd needs compat=1.1' -c -o compat=0.10,compression_type=zstd
refuse 'qcow2: compat=0.11 is not 0.10 or 1.1' -o compat=0.11
refuse 'qcow2: level=99 is not in 1\.\.9 for zlib' -c -o level=99
refuse 'qcow2: level=0 is not in 1\.\.22 for zstd' -c -o compression_type=zstd,level=0
refuse 'qcow2: level needs compression' -o level=3
refuse 'qcow2: -c contradicts compress=off' -c -o compress=off
refuse 'qcow2: compress=yes is not on or off' -o compress=yes
deflate=$(codec_lib deflate) zstdlib=$(codec_lib zstd)
check "the zstd library of the recipe is the one zstd --version names" \
	test "v${zstdlib#zstd=}," = "$(zstd --version | grep -oE 'v[0-9.]+,')"
otherlib=$(if has_feature DEFLATE_LIBDEFLATE; then echo zlib-1.2.13; else echo libdeflate-1.14; fi)
WANT=1 refuse "qcow2: recipe needs deflate $otherlib, this build has ${deflate#deflate=}" -c -o deflate=$otherlib
WANT=1 refuse "qcow2: recipe needs zstd 1\.0\.0, this build has ${zstdlib#zstd=}" \
	-c -o compression_type=zstd,zstd=1.0.0
refuse "qcow2: $zstdlib applies to compressed output only" -o $zstdlib
refuse "qcow2: $deflate does not apply to zstd compression" -c -o compression_type=zstd,$deflate
refuse "qcow2: xz=5\.4\.1 does not apply to deflate compression" -c -o xz=5.4.1
run_ei 0 -- convert -c -O qcow2 -o "compression_type=zlib,${deflate%-*}" "$T/disk.raw" "$T/bare.qcow2"
check "a recipe from before versions (${deflate%-*}) gives the same bytes" \
	cmp -s "$T/c-64k-zlib.qcow2" "$T/bare.qcow2"
# An unknown key: the nearest valid one, and every valid key, which are
# the keys of the recipe of a compressed image (but format and writer).
keys=$(sed -E 's/=[^,]*//g; s/^format,writer,//; s/,/, /g' <<<"$recipe_c")
keys=${keys%, *}        # the library key: only this build's ones are listed
refuse "^edgeimg convert: qcow2: unknown option 'cluster_sise'; did you mean 'cluster_size'\\? valid: $keys, deflate(, zstd)?\$" \
	-o cluster_sise=64k
refuse "^edgeimg convert: qcow2: unknown option 'compression'; did you mean 'compression_type'\\? valid: $keys," \
	-c -o compression=zstd
refuse "^edgeimg convert: qcow2: unknown option 'preallocation'; valid: $keys," -o preallocation=full
# a recipe of another writer, or one whose writer= is not a version
refuse '^edgeimg convert: qcow2: format=squashfs is not qcow2: the recipe is for -O squashfs$' \
	-o format=squashfs,writer=0.1.0,compression=gzip
refuse '^edgeimg convert: qcow2: writer=latest is not an edgeimg version such as [0-9.]+$' \
	-o format=qcow2,writer=latest,compat=1.1
run_ei 0 -- convert -O qcow2 -o compress=on,level=1 "$T/disk.raw" "$T/o1.qcow2"
qcheck "$T/o1.qcow2" "compress=on without -c"
run_ei 0 -- help convert
has "help convert names -c" '-c +compress' "$OUT"

# --- memory: peak RSS under the cap, any -j ------------------------------
if [ -z "${SAN:-}" ] && has_oracle /usr/bin/time; then
	head -c 96000000 /dev/urandom >"$T/rand.raw"
	/usr/bin/time -f %M -o "$T/rss" $EDGEIMG convert -c -j 16 -O qcow2 -o cluster_size=2M \
		"$T/rand.raw" "$T/rand.qcow2" 2>/dev/null
	rss=$(tail -n 1 "$T/rss")
	check "peak RSS ${rss} KiB < 64 MiB with -j 16 and 2 MiB clusters" test "$rss" -lt 65536
	check "incompressible clusters are stored plain" \
		qemu-img compare -q "$T/rand.raw" "$T/rand.qcow2"
	rm -f "$T/rand.raw" "$T/rand.qcow2"
fi

# --- failures leave nothing; progress and summary --------------------------
( ulimit -f 2048; ei convert -O qcow2 "$T/disk.raw" "$T/o/half.qcow2" ) >"$T/.out" 2>"$T/.err"
check "a failed write exits non-zero" test $? -ne 0
has "a failed write says why" 'File too large' "$(cat "$T/.err")"
check "a failed write leaves no file" test -z "$(ls -A "$T/o")"
run_ei 0 -- convert -c -v -O qcow2 "$T/disk.raw" "$T/v.qcow2"
has "-v summary line" 'v\.qcow2: 32 MiB in, .* out' "$ERR"
script -qec "$EDGEIMG convert -c -p -O qcow2 $T/disk.raw $T/p.qcow2" /dev/null >"$T/tty.log" 2>&1
has "progress on a terminal" '100\.00/100%' "$(tr '\r' '\n' <"$T/tty.log")"

done_tests
