#!/usr/bin/env bash
# requires: OUTPUT_QCOW2
# SPDX-License-Identifier: MIT
# edgeimg check against qemu-img check: the same exit status, counters and
# messages on clean images of every qcow2 variant and on images corrupted
# on purpose (leaks, lost refcounts, unaligned and shared L2 entries, bad
# L1/refcount table entries, COPIED flags); hostile headers refused; time
# and memory bounded.
. "$(dirname "$0")/../lib.sh"
need qemu-img qemu-io sfdisk mkfs.ext4 python3

mkdisk "$T/disk.raw" 16
qemu-img convert -O qcow2 "$T/disk.raw" "$T/plain.qcow2"
qemu-img convert -c -O qcow2 -o cluster_size=16k "$T/disk.raw" "$T/comp.qcow2"
ei convert -c -O qcow2 -o compression_type=zstd,cluster_size=8k "$T/disk.raw" "$T/ei.qcow2"

# Corrupt an image on purpose: corrupt.py IMAGE WHAT (16-bit refcounts, one
# refcount block, as qemu-img and edgeimg make small images).
cat >"$T/corrupt.py" <<'PY'
import struct, sys
path, op = sys.argv[1], sys.argv[2]
d = bytearray(open(path, 'rb').read())
f = struct.unpack('>4sIQIIQIIQQIIQ', d[:72])
cb, l1_size, l1_off, rt_off = f[4], f[7], f[8], f[9]
cs = 1 << cb
l1 = [struct.unpack_from('>Q', d, l1_off + 8 * i)[0] for i in range(l1_size)]
ents = []
for t in [e & 0x00fffffffffffe00 for e in l1 if e]:
    for i in range(cs // 8):
        e = struct.unpack_from('>Q', d, t + 8 * i)[0]
        if e:
            ents.append((t + 8 * i, e))
plain = [(p, e) for p, e in ents if not e & (1 << 62)]
comp = [(p, e) for p, e in ents if e & (1 << 62)]
rb = struct.unpack_from('>Q', d, rt_off)[0] & ~0x1ff
def rc(c, v=None):
    if v is None:
        return struct.unpack_from('>H', d, rb + 2 * c)[0]
    struct.pack_into('>H', d, rb + 2 * c, v)
def put(p, v):
    struct.pack_into('>Q', d, p, v)
if op == 'leak':                # a cluster counted twice
    rc(0, rc(0) + 1)
elif op == 'leak-free':         # a refcount on space nothing uses
    rc(len(d) // cs, 1)
    d += bytes(cs)
elif op == 'zero-rc':           # a used data cluster loses its refcount
    p, e = plain[len(plain) // 2]
    rc((e & 0x00fffffffffffe00) // cs, 0)
elif op == 'zero-rc-comp':      # a cluster holding compressed data, too
    p, e = comp[len(comp) // 2]
    rc((e & ((1 << (70 - cb)) - 1)) // cs, 0)
elif op == 'unaligned':         # an L2 entry points inside a cluster
    p, e = plain[1]
    put(p, e + 512)
elif op == 'shared':            # two L2 entries, one data cluster
    put(plain[3][0], plain[2][1])
elif op == 'shared-comp':       # two compressed entries, one stream
    put(comp[3][0], comp[2][1])
elif op == 'l1-reserved':
    put(l1_off, l1[0] | 1)
elif op == 'l1-unaligned':
    put(l1_off, l1[0] + 4096)
elif op == 'l2-past-eof':
    put(plain[0][0], (1 << 63) | (len(d) // cs + 5) * cs)
elif op == 'l2-reserved':
    put(plain[0][0], plain[0][1] | 2)
elif op == 'copied-missing':
    put(plain[0][0], plain[0][1] & ~(1 << 63))
elif op == 'copied-comp':
    put(comp[0][0], comp[0][1] | (1 << 63))
elif op == 'reftable-past-eof':
    put(rt_off + 8, (len(d) // cs + 10) * cs)
elif op == 'reftable-unaligned':
    put(rt_off, rb + 512)
elif op == 'reftable-reserved':
    put(rt_off, rb | 1)
elif op == 'refblock-shared':   # an L2 entry points at the refcount block
    put(plain[0][0], (1 << 63) | rb)
elif op == 'l2-is-l1':          # an L1 entry points at the L1 table
    put(l1_off, (1 << 63) | l1_off)
else:
    sys.exit('unknown corruption ' + op)
open(path, 'wb').write(d)
PY

# same IMAGE DESC [ARGS...]: exit status, JSON counters and problem lines
# of edgeimg check equal qemu-img check's.
same() {
	local img=$1 desc=$2
	shift 2
	qemu-img check "$@" --output=json "$img" >"$T/q.json" 2>"$T/q.err"
	local qr=$?
	ei check "$@" --json "$img" >"$T/e.json" 2>"$T/e.err"
	local er=$?
	check "$desc: exit $er, qemu-img check $qr" test "$er" -eq "$qr"
	check "$desc: same counters as qemu-img check" python3 - "$T/q.json" "$T/e.json" <<'PY'
import json, sys
def load(p):
    t = open(p).read().strip()
    return json.loads(t) if t else {}
q, e = load(sys.argv[1]), load(sys.argv[2])
for d in (q, e):
    d.pop("filename", None)
assert q == e, (q, e)
PY
	# QEMU adds a line about marking the image corrupt; the rest must match.
	grep -E '^(ERROR|Leaked|Repairing)' "$T/q.err" | sort >"$T/q.lines"
	grep -E '^(ERROR|Leaked|Repairing)' "$T/e.err" | sort >"$T/e.lines"
	check "$desc: same problem lines as qemu-img check" cmp -s "$T/q.lines" "$T/e.lines"
	RC=$er
}

# --- clean images of every kind ------------------------------------------
for img in plain comp ei; do
	same "$T/$img.qcow2" "clean $img"
	check "clean $img exits 0" test "$RC" -eq 0
done
qemu-img check "$T/comp.qcow2" >"$T/q.txt" 2>&1
run_ei 0 -- check "$T/comp.qcow2"
check "text output as qemu-img's" test "$OUT" = "$(cat "$T/q.txt")"
for rb in 1 2 8 32 64; do
	qemu-img convert -O qcow2 -o refcount_bits=$rb,cluster_size=4k "$T/disk.raw" "$T/r.qcow2"
	same "$T/r.qcow2" "refcount_bits=$rb"
done
qemu-img convert -O qcow2 -o compat=0.10 "$T/disk.raw" "$T/v2.qcow2"
same "$T/v2.qcow2" "compat=0.10"
qemu-img convert -O qcow2 -o extended_l2=on,cluster_size=64k "$T/disk.raw" "$T/x.qcow2"
qemu-io -f qcow2 -c 'write -z 4k 4k' -c 'write -P 1 1M 8k' "$T/x.qcow2" >/dev/null
same "$T/x.qcow2" "extended L2"
cp "$T/plain.qcow2" "$T/s.qcow2"
qemu-img snapshot -c one "$T/s.qcow2"
qemu-io -f qcow2 -c 'write -P 0x55 0 1M' "$T/s.qcow2" >/dev/null
qemu-img snapshot -c two "$T/s.qcow2"
qemu-io -f qcow2 -c 'write -P 0x66 512k 2M' "$T/s.qcow2" >/dev/null
same "$T/s.qcow2" "two snapshots"
check "snapshots: exit 0" test "$RC" -eq 0
cp "$T/plain.qcow2" "$T/b.qcow2"
qemu-img bitmap --add "$T/b.qcow2" b0
qemu-io -f qcow2 -c 'write -P 0x55 0 1M' "$T/b.qcow2" >/dev/null
qemu-img bitmap --add -g 512 "$T/b.qcow2" b1
same "$T/b.qcow2" "persistent bitmaps"
check "bitmaps: exit 0" test "$RC" -eq 0
# qemu-img times its PBKDF to pick an iteration count and fails under load
# ("Unable to get accurate CPU usage"): retried, and reported if it stays so.
if FIXTURE_TRIES=5 fixture "LUKS qcow2" qemu-img create -q -f qcow2 \
	--object secret,id=k,data=edge -o encrypt.format=luks,encrypt.key-secret=k,encrypt.iter-time=10 \
	"$T/l.qcow2" 4M &&
   fixture "LUKS qcow2 data" qemu-io --object secret,id=k,data=edge --image-opts \
	-c 'write -P 7 0 1M' driver=qcow2,file.filename="$T/l.qcow2",encrypt.key-secret=k >/dev/null; then
	run_ei 0 -- check --json "$T/l.qcow2"
	has "LUKS header counted: allocated, no error" '"allocated-clusters": 16' "$OUT"
fi
cp "$T/plain.qcow2" "$T/dirty.qcow2"
printf '\x01' | dd of="$T/dirty.qcow2" bs=1 seek=79 conv=notrunc status=none
same "$T/dirty.qcow2" "dirty bit"

# --- corrupted on purpose -------------------------------------------------
for op in leak leak-free zero-rc unaligned shared l1-reserved l1-unaligned \
	l2-past-eof l2-reserved copied-missing reftable-past-eof reftable-unaligned \
	reftable-reserved refblock-shared l2-is-l1; do
	cp "$T/plain.qcow2" "$T/bad.qcow2"
	python3 "$T/corrupt.py" "$T/bad.qcow2" $op
	same "$T/bad.qcow2" "$op"
	case $op in
	leak|leak-free) check "$op: exit 3 (leaks only)" test "$RC" -eq 3 ;;
	reftable-unaligned) check "$op: exit 1 (check not completed)" test "$RC" -eq 1 ;;
	*) check "$op: exit 2 (corruptions)" test "$RC" -eq 2 ;;
	esac
done
for base in comp ei; do
	for op in leak zero-rc-comp shared-comp copied-comp; do
		cp "$T/$base.qcow2" "$T/bad.qcow2"
		python3 "$T/corrupt.py" "$T/bad.qcow2" $op
		same "$T/bad.qcow2" "$base $op"
	done
done
cp "$T/plain.qcow2" "$T/bad.qcow2"
python3 "$T/corrupt.py" "$T/bad.qcow2" shared
qemu-img check "$T/bad.qcow2" >"$T/q.txt" 2>/dev/null
run_ei 2 -- check "$T/bad.qcow2"
check "corrupt: text output as qemu-img's" test "$OUT" = "$(cat "$T/q.txt")"
has "corrupt: problem lines on stderr" '^ERROR cluster [0-9]+ refcount=1 reference=2$' "$ERR"
run_ei 2 -- check -q "$T/bad.qcow2"
check "-q prints nothing" test -z "$OUT$ERR"

# --- not checkable: exit 1, or 63 for a format without a check -----------
hostile() {  # hostile DESC PATTERN PYTHON-STATEMENT
	cp "$T/plain.qcow2" "$T/h.qcow2"
	python3 -c "
import struct; d = bytearray(open('$T/h.qcow2', 'rb').read())
$3
open('$T/h.qcow2', 'wb').write(d)"
	run_ei 1 -- check -f qcow2 "$T/h.qcow2"
	has "$1" "$2" "$ERR"
	qemu-img check -f qcow2 "$T/h.qcow2" >/dev/null 2>&1
	check "$1: qemu-img check exits 1 too" test $? -eq 1
}
hostile "bad magic" 'qcow2: bad magic' "d[0] = 0"
hostile "version 4" 'qcow2: version 4 is not 2 or 3' "struct.pack_into('>I', d, 4, 4)"
hostile "cluster_bits 22" 'qcow2: cluster_bits 22 is not in 9\.\.21' "struct.pack_into('>I', d, 20, 22)"
hostile "L1 too large" 'qcow2: L1 table of 2147483647 entries exceeds' "struct.pack_into('>I', d, 36, 0x7fffffff)"
hostile "L1 too small" 'qcow2: L1 table of 0 entries is too small' "struct.pack_into('>I', d, 36, 0)"
hostile "L1 unaligned" 'qcow2: L1 table offset 0x1234567890abcdef is invalid' "struct.pack_into('>Q', d, 40, 0x1234567890abcdef)"
hostile "refcount table too large" 'qcow2: refcount table of .* exceeds' "struct.pack_into('>I', d, 56, 0xffffffff)"
hostile "refcount table unaligned" 'qcow2: refcount table offset .* is invalid' "struct.pack_into('>Q', d, 48, 0xffffffffffff0100)"
hostile "unknown incompatible bit" 'qcow2: unknown incompatible features 0x20' "struct.pack_into('>Q', d, 72, 0x20)"
hostile "header_length" 'qcow2: header_length 4294967295' "struct.pack_into('>I', d, 100, 0xffffffff)"
hostile "too many snapshots" 'qcow2: 4294967295 snapshots' "struct.pack_into('>I', d, 60, 0xffffffff)"
hostile "refcount_order 7" 'qcow2: refcount_order 7' "struct.pack_into('>I', d, 96, 7)"
hostile "snapshot table unaligned" 'qcow2: snapshot table offset 0x1234 is invalid' \
	"struct.pack_into('>IQ', d, 60, 1, 0x1234)"
hostile "size 2^63" 'qcow2: L1 table of 1 entries is too small' \
	"struct.pack_into('>Q', d, 24, (1 << 63) - 512)"
hostile "extension too long" 'qcow2: header extension 0x12345678 of 2147483647 bytes' \
	"struct.pack_into('>II', d, 112, 0x12345678, 0x7fffffff)"
run_ei 63 -- check "$T/disk.raw"
has "raw has no check" "format 'raw' does not support checks" "$ERR"
run_ei 1 -- check "$T/nope.qcow2"
has "missing file" 'nope\.qcow2: No such file' "$ERR"
run_ei 2 -- check
run_ei 0 -- help check
has "help check" '^usage: edgeimg check' "$OUT"
# truncated images: never a crash; what qemu-img check says
for cut in 100 4096 $(seq 65536 16384 393216) 600000; do
	head -c $cut "$T/plain.qcow2" >"$T/cut.qcow2"
	ei check "$T/cut.qcow2" >/dev/null 2>&1
	rc=$?
	qemu-img check "$T/cut.qcow2" >/dev/null 2>&1
	check "cut at $cut: exit $rc, as qemu-img check" test "$rc" -eq $?
done

# --- bounded: one L2 table a million times; a huge sparse file ------------
python3 - "$T/amp.qcow2" <<'PY'
import struct, sys
cs = 2 << 20                            # 2 MiB clusters, 32768 L1 entries
d = bytearray(4 * cs)                   # header, L1, L2, refcount table
struct.pack_into('>4sIQIIQIIQQIIQQQQII', d, 0, b'QFI\xfb', 3, 0, 0, 21,
                 32768 * (cs // 8) * cs, 0, 32768, cs, 3 * cs, 1, 0, 0,
                 0, 0, 0, 4, 104)
for i in range(32768):                  # every L1 entry: the L2 at 2 * cs
    struct.pack_into('>Q', d, cs + 8 * i, 2 * cs)
struct.pack_into('>Q', d, 2 * cs, (1 << 63) | 0)
open(sys.argv[1], 'wb').write(d)
PY
s=$(date +%s)
run_ei 1 -- check "$T/amp.qcow2"
has "amplification refused" 'qcow2: the tables reference more than 8 times' "$ERR"
check "amplification: quick ($(($(date +%s) - s)) s)" test $(($(date +%s) - s)) -le 20
cp "$T/plain.qcow2" "$T/huge.qcow2"
truncate -s 2T "$T/huge.qcow2"
if [ -z "${SAN:-}" ] && has_oracle /usr/bin/time; then
	/usr/bin/time -f %M -o "$T/rss" $EDGEIMG check "$T/huge.qcow2" >"$T/.out" 2>"$T/.err"
	check "2 TiB file: refused (exit 1)" test $? -eq 1
	check "2 TiB file: peak RSS $(tail -n 1 "$T/rss") KiB < 64 MiB" test "$(tail -n 1 "$T/rss")" -lt 65536
else
	ei check "$T/huge.qcow2" >"$T/.out" 2>"$T/.err"
	check "2 TiB file: refused (exit 1)" test $? -eq 1
fi
has "2 TiB file: names the limit" 'qcow2: checking [0-9]+ clusters needs [0-9]+ bytes of counters, above the limit' "$(cat "$T/.err")"

# a character device or a FIFO cannot be probed: refused at once, not read to 2^64
timeout 20 $EDGEIMG check /dev/zero >"$T/.out" 2>"$T/.err"
check "check /dev/zero: refused (exit 1), not read on and on" test $? -eq 1
has "check /dev/zero: says why" '/dev/zero: not a seekable file; give a file name' "$(cat "$T/.err")"

done_tests
