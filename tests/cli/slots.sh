#!/usr/bin/env bash
# requires: CODEC_ZSTD
# SPDX-License-Identifier: MIT
# A/B slots as a device sees them: loop devices bigger than the images they
# hold, two updates in a row (A -> B, then B -> A), the bytes past the image
# untouched, patches made from the slots themselves (--old-size/--new-size),
# a mounted slot and a slot another apply writes refused, zero ranges
# written with BLKZEROOUT, state on another file system.  Judged by cmp,
# sha256sum, strace and the kernel (mount, losetup).  Root only.
. "$(dirname "$0")/../lib.sh"
need python3 cmp losetup mkfs.ext4 mount

if [ "$(id -u)" != 0 ] || ! losetup -f >/dev/null 2>&1; then
	if [ -n "${CI:-}" ]; then
		bad "loop devices are needed (root and /dev/loop*) and missing under CI"
	else
		echo "SKIP $NAME: no loop devices (needs root)"
		t_skip=$((t_skip + 1))
	fi
	done_tests
	exit
fi
devs=()
mnt=
cleanup() {
	[ -n "$mnt" ] && umount "$mnt" 2>/dev/null
	for d in "${devs[@]}"; do losetup -d "$d" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
# loop VAR FILE: attach FILE, its device in VAR and in devs (not in a
# subshell, which would lose it and leave the device attached)
loop() { local d; d=$(losetup -f --show "$2") || return; devs+=("$d"); printf -v "$1" %s "$d"; }
mkdir -p "$T/o" "$T/st"

# three versions of a 6 MiB image, each a few edits from the last, and
# two 16 MiB slots full of a pattern that must survive past the image
python3 - "$T" <<'PY'
import random, sys
r = random.Random(3)
v = bytearray(r.randbytes(4 << 20) + bytes(2 << 20))
for n in (1, 2, 3):
    if n > 1:
        for k in range(5):
            o = r.randrange(0, len(v) - 70000)
            v[o:o + 60000] = r.randbytes(60000)
        v[(5 << 20):(5 << 20) + 8192] = bytes(8192)     # a zero range
    open("%s/v%d.raw" % (sys.argv[1], n), "wb").write(v)
pat = bytes(range(256)) * 4096
for s in "ab":
    open("%s/slot-%s.img" % (sys.argv[1], s), "wb").write(pat * 16)
PY
size=$(stat -c %s "$T/v1.raw")
loop A "$T/slot-a.img" && loop B "$T/slot-b.img" || { bad "setup: losetup"; done_tests; exit; }
dd if="$T/v1.raw" of="$A" bs=1M conv=fsync status=none
tailsum() { tail -c +$((size + 1)) "$1" | sha256sum | cut -d' ' -f1; }
tail_a=$(tailsum "$A") tail_b=$(tailsum "$B")

run_ei 0 -- delta "$T/v1.raw" "$T/v2.raw" "$T/p12"
run_ei 0 -- delta "$T/v2.raw" "$T/v3.raw" "$T/p23"

# --- update 1: slot A (holding v1) -> slot B ----------------------------------
run_ei 0 -- apply -v --state "$T/st/b" "$A" "$T/p12" "$B"
has "OLD, a 16 MiB slot, is read for the 6 MiB the patch names" "OLD $A has 16777216 bytes; the patch uses its first $size" "$ERR"
check "slot B holds v2" cmp -s -n "$size" "$T/v2.raw" "$B"
check "slot B past the image is untouched" test "$(tailsum "$B")" = "$tail_b"
has "-v says what was written to the device" 'written to the device' "$ERR"
check "no state left" test -z "$(ls -A "$T/st")"
# --- update 2: slot B (holding v2) -> slot A -----------------------------------
run_ei 0 -- apply --state "$T/st/a" "$B" "$T/p23" "$A"
check "slot A holds v3" cmp -s -n "$size" "$T/v3.raw" "$A"
check "slot A past the image is untouched" test "$(tailsum "$A")" = "$tail_a"
# --- patches made from the slots themselves ------------------------------------
run_ei 0 -- delta --old-size "$size" --new-size "$size" "$B" "$A" "$T/p23s"
run_ei 0 -- apply "$T/v2.raw" "$T/p23s" "$T/o/v3.raw"
check "delta from two slots (--old-size, --new-size) gives v2 -> v3" cmp -s "$T/v3.raw" "$T/o/v3.raw"
rm -f "$T/o/v3.raw"
run_ei 2 -- delta --old-size 99G "$B" "$A" "$T/o/x"
has "--old-size past the device" 'asked for its first [0-9]+ bytes, it has 16777216' "$ERR"

# --- a mounted slot is never written; two applies never write one slot -------
dd if=/dev/zero of="$T/slot-c.img" bs=1M count=16 status=none
loop C "$T/slot-c.img"
mkfs.ext4 -q "$C"
mnt=$T/mnt
mkdir -p "$mnt"
if fixture "mount a slot" mount -o ro "$C" "$mnt"; then
	sum=$(sha256sum <"$C")
	run_ei 1 -- apply --state "$T/st/c" "$A" "$T/p23" "$C"
	has "a mounted slot is refused (O_EXCL)" 'the device is in use' "$ERR"
	run_ei 1 -- convert -O raw "$T/v1.raw" "$C"
	has "convert too" 'the device is in use' "$ERR"
	check "the mounted slot was not written" test "$(sha256sum <"$C")" = "$sum"
	umount "$mnt" && mnt=
fi
# one apply holds slot B (waiting for its patch on a FIFO); another apply with
# another --state must not write it
mkfifo "$T/fifo"
exec 3<>"$T/fifo"
timeout 60 $EDGEIMG apply --state "$T/st/one" "$T/v2.raw" "$T/fifo" "$B" 2>"$T/one.err" 3>&- & pid=$!
for _ in $(seq 100); do [ -e "$T/st/one.edgeimg-lock" ] && break; sleep 0.05; done
sleep 0.2
run_ei 1 -- apply --state "$T/st/two" "$A" "$T/p23" "$B"
has "a second apply on the same slot, another --state: refused" '(in use|another apply is writing)' "$ERR"
timeout 60 cat "$T/p23" >&3
exec 3>&-
wait $pid
check "the first apply finishes ($(cat "$T/one.err"))" cmp -s -n "$size" "$T/v3.raw" "$B"

# --- zero ranges: BLKZEROOUT, not buffers of zeros -----------------------------
if has_oracle strace; then
	dd if=/dev/urandom of="$A" bs=1M count=6 conv=fsync status=none
	strace -f -e trace=ioctl -o "$T/strace" $EDGEIMG apply --state "$T/st/z" "$T/v2.raw" "$T/p23" "$A" 2>"$T/.err"
	check "apply into a slot zeroes with BLKZEROOUT ($(cat "$T/.err"))" grep -q BLKZEROOUT "$T/strace"
	check "and the zero ranges read as zero over random bytes" cmp -s -n "$size" "$T/v3.raw" "$A"
fi

# --- the state on another file system than OUT: the rename never crosses ------
mkdir -p "$T/tmpfs"
if fixture "mount a tmpfs for the state" mount -t tmpfs -o size=16m tmpfs "$T/tmpfs"; then
	mnt=$T/tmpfs
	head -c $(($(stat -c %s "$T/p12") / 2)) "$T/p12" |
		ei apply --state "$T/tmpfs/s" "$T/v1.raw" - "$T/o/n.raw" 2>/dev/null
	check "the cut apply left its checkpoint on the tmpfs" test -e "$T/tmpfs/s.edgeimg-apply"
	run_ei 0 -- apply --resume --state "$T/tmpfs/s" "$T/v1.raw" "$T/p12" "$T/o/n.raw"
	check "--state on a tmpfs, OUT on another file system: completes" cmp -s "$T/v2.raw" "$T/o/n.raw"
	check "nothing left in the state directory" test -z "$(ls -A "$T/tmpfs")"
	umount "$T/tmpfs" && mnt=
fi
done_tests
