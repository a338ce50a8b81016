#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Raw images and the first verbs (info, convert, compare), judged by
# qemu-img and checksums; bad input must fail cleanly with no output left.
. "$(dirname "$0")/../lib.sh"
need qemu-img sfdisk mkfs.ext4 python3 cmp script

mkdisk "$T/disk.raw" 32

# --- info: the keys and values qemu-img reports ---------------------------
run_ei 0 -- info --json "$T/disk.raw"
echo "$OUT" >"$T/ei.json"
qemu-img info -f raw --output=json "$T/disk.raw" >"$T/q.json"
check "info --json is valid JSON with qemu-img's format/virtual-size/actual-size" \
	python3 - "$T/ei.json" "$T/q.json" <<'PY'
import json, sys
a, q = (json.load(open(p)) for p in sys.argv[1:3])
for k in ("format", "virtual-size", "actual-size", "filename"):
    assert a[k] == q[k], (k, a[k], q[k])
PY
run_ei 0 -- info "$T/disk.raw"
has "info text" '^file format: raw$' "$OUT"
has "info text" 'virtual size: 32 MiB \(33554432 bytes\)' "$OUT"
run_ei 0 -- info --output=json -f raw "$T/disk.raw"
has "info --output=json" '"format": "raw"' "$OUT"

# --- convert raw -> raw: same content, holes kept --------------------------
run_ei 0 -- convert -O raw "$T/disk.raw" "$T/out.raw"
check "qemu-img compare says identical" qemu-img compare -q -f raw -F raw "$T/disk.raw" "$T/out.raw"
check "same bytes" cmp -s "$T/disk.raw" "$T/out.raw"
in_blocks=$(stat -c %b "$T/disk.raw")
out_blocks=$(stat -c %b "$T/out.raw")
check "output is sparse ($out_blocks <= $in_blocks blocks)" test "$out_blocks" -le "$in_blocks"
check "output keeps the virtual size" test "$(stat -c %s "$T/out.raw")" -eq 33554432
# zero runs written as data in the input become holes in the output
dd if=/dev/zero of="$T/zeros.raw" bs=1M count=8 status=none
run_ei 0 -- convert -O raw "$T/zeros.raw" "$T/zeros.out"
check "written zeros become holes" test "$(stat -c %b "$T/zeros.out")" -eq 0
check "zeros compare identical" cmp -s "$T/zeros.raw" "$T/zeros.out"
# -j, -v, -p off a terminal
run_ei 0 -- convert -j 1 -v -p -O raw "$T/disk.raw" "$T/out2.raw"
has "summary line" 'out2.raw: 32 MiB in' "$ERR"
check "-j 1 gives the same bytes" cmp -s "$T/out.raw" "$T/out2.raw"
# -p on a terminal draws progress
script -qec "$EDGEIMG convert -p -O raw $T/disk.raw $T/out3.raw" /dev/null >"$T/tty.log" 2>&1
has "progress on a terminal" '100\.00/100%' "$(tr '\r' '\n' <"$T/tty.log")"

# --- compare: exit 0 / 1 / 2 as qemu-img compare -------------------------
run_ei 0 -- compare "$T/disk.raw" "$T/out.raw"
has "identical message" '^Images are identical\.$' "$OUT"
cp "$T/disk.raw" "$T/mod.raw"
printf '\x5a' | dd of="$T/mod.raw" bs=1 seek=20000001 conv=notrunc status=none
want=$(cmp "$T/disk.raw" "$T/mod.raw" | sed -E 's/.* byte ([0-9]+),.*/\1/')
want=$((want - 1))
run_ei 1 -- compare "$T/disk.raw" "$T/mod.raw"
has "first differing offset" "^Content mismatch at offset $want!\$" "$OUT"
qemu-img compare -q -f raw -F raw "$T/disk.raw" "$T/mod.raw"
check "qemu-img agrees they differ" test $? -eq 1
# a larger image whose extra part is zero: same disk unless -s
cp "$T/disk.raw" "$T/big.raw" && truncate -s 40M "$T/big.raw"
run_ei 0 -- compare "$T/disk.raw" "$T/big.raw"
check "qemu-img agrees a zero tail is the same" qemu-img compare -q -f raw -F raw "$T/disk.raw" "$T/big.raw"
run_ei 1 -- compare -s "$T/disk.raw" "$T/big.raw"
printf '\x01' | dd of="$T/big.raw" bs=1 seek=36000000 conv=notrunc status=none
run_ei 1 -- compare "$T/big.raw" "$T/disk.raw"
has "offset in the tail" 'Content mismatch at offset 36000000!' "$OUT"
run_ei 2 -- compare "$T/disk.raw" "$T/missing.raw"
has "names the missing file" 'missing\.raw: No such file' "$ERR"

# --- bad input: clear message, non-zero exit, nothing left behind --------
mkdir -p "$T/o"
run_ei 1 -- info "$T/nope.raw"
has "missing file" 'nope\.raw: No such file or directory' "$ERR"
run_ei 2 -- info -f vhdx9 "$T/disk.raw"
has "unknown -f" "unknown format 'vhdx9'" "$ERR"
run_ei 1 -- info "$T"
has "directory" 'is a directory' "$ERR"
run_ei 2 -- convert -O nosuch "$T/disk.raw" "$T/o/x"
has "unknown -O" "cannot write format 'nosuch'" "$ERR"
run_ei 2 -- convert "$T/disk.raw" "$T/o/x"
has "-O is required" 'name the output format with -O' "$ERR"
run_ei 2 -- convert -O raw -o cluster_size=64k "$T/disk.raw" "$T/o/x"
has "unknown -o key" "^edgeimg convert: raw: unknown option 'cluster_size'; raw takes no options\$" "$ERR"
check "no output after an unknown -o key" test -z "$(listing)"
# a recipe's format= and writer= are checked like any writer's
run_ei 2 -- convert -O raw -o format=qcow2,writer=0.1.0,compat=1.1 "$T/disk.raw" "$T/o/x"
has "a recipe of another format" '^edgeimg convert: raw: format=qcow2 is not raw: the recipe is for -O qcow2$' "$ERR"
check "no output after a recipe of another format" test -z "$(listing)"
run_ei 2 -- convert -O raw -o format=raw,writer=new "$T/disk.raw" "$T/o/x"
has "writer= not a version" '^edgeimg convert: raw: writer=new is not an edgeimg version such as [0-9.]+$' "$ERR"
check "no output after a bad writer=" test -z "$(listing)"
run_ei 2 -- convert -O raw -o format=raw,writer=0.1.0,level=1 "$T/disk.raw" "$T/o/x"
has "a recipe with an option raw does not take" "raw: unknown option 'level'; raw takes no options" "$ERR"
run_ei 0 -- convert -O raw -o format=raw,writer=0.0.1 "$T/disk.raw" "$T/o/r.raw"
check "format=raw,writer=0.0.1 is taken: the same disk" cmp -s "$T/disk.raw" "$T/o/r.raw"
rm -f "$T/o/r.raw"
run_ei 2 -- convert -O raw -c "$T/disk.raw" "$T/o/x"
has "-c is refused, not ignored" '^edgeimg convert: raw: -c \(compression\) does not apply to raw output$' "$ERR"
check "no output after -c" test -z "$(listing)"
run_ei 2 -- convert -O raw -c "$T/nope.raw" "$T/o/x"
has "options are refused before IN is opened" 'raw: -c \(compression\)' "$ERR"
run_ei 1 -- convert -O raw "$T/nope.raw" "$T/o/x"
check "no output after a missing input" test -z "$(listing)"
mkfifo "$T/fifo"
run_ei 1 -- convert -O raw "$T/fifo" "$T/o/x"
has "a pipe is refused" 'not a seekable file' "$ERR"
check "no output after a pipe" test -z "$(listing)"
echo keep >"$T/o/exists"
sum=$(sha256sum <"$T/o/exists")
run_ei 1 -- convert -O raw "$T/disk.raw" "$T/o/exists"
has "existing output" 'already exists; use --force' "$ERR"
check "existing output untouched" test "$(sha256sum <"$T/o/exists")" = "$sum"
run_ei 0 -- convert --force -O raw "$T/disk.raw" "$T/o/exists"
check "--force replaces it" cmp -s "$T/disk.raw" "$T/o/exists"
rm -f "$T/o/exists"
# a write that fails half-way (file size limit) leaves nothing behind
( ulimit -f 4096; ei convert -O raw "$T/disk.raw" "$T/o/half" ) >"$T/.out" 2>"$T/.err"
check "a failed write exits non-zero" test $? -ne 0
has "a failed write says why" 'File too large' "$(cat "$T/.err")"
check "a failed write leaves no file" test -z "$(listing)"
# a convert killed while writing leaves no temporary and no partial output
head -c 100000000 /dev/urandom >"$T/rand.raw" 2>/dev/null
$EDGEIMG convert -O raw "$T/rand.raw" "$T/o/killed" & pid=$!
for _ in $(seq 1000); do
	ls -A "$T/o" | grep -q edgeimg- && break
	kill -0 $pid 2>/dev/null || break
	sleep 0.002
done
kill -TERM $pid 2>/dev/null; wait $pid
check "SIGTERM leaves no temporary" test -z "$(ls -A "$T/o" | grep edgeimg-)"
check "SIGTERM leaves no partial output" \
	sh -c "test ! -e '$T/o/killed' || cmp -s '$T/rand.raw' '$T/o/killed'"
rm -f "$T/o/killed" "$T/rand.raw"
: >"$T/empty.raw"
run_ei 0 -- info --json "$T/empty.raw"
has "empty file is a 0-byte raw disk" '"virtual-size": 0' "$OUT"

# --- the verbs explain themselves -----------------------------------------
run_ei 0 -- --version
has "version" '^edgeimg [0-9]+\.[0-9]+\.[0-9]+' "$OUT"
has "features" '^features: .*TOOLCHAIN_' "$OUT"
for v in info convert compare; do
	run_ei 0 -- help $v
	has "help $v" "^usage: edgeimg $v" "$OUT"
done
run_ei 2 -- frobnicate
has "unknown verb" "no verb 'frobnicate'" "$ERR"
run_ei 2 -- info
has "usage on missing args" '^usage: edgeimg info' "$ERR"

# the output's mode follows the umask, as a file created by open() would
for m in 027 002; do
	rm -f "$T/o/mode.raw"
	(umask $m && ei convert -O raw "$T/disk.raw" "$T/o/mode.raw") || bad "convert under umask $m"
	check "umask $m: the output's mode is $(printf '%o' $((0666 & ~0$m)))" \
		test "$(stat -c %a "$T/o/mode.raw")" = "$(printf '%o' $((0666 & ~0$m)))"
done

done_tests
