#!/usr/bin/env bash
# requires: CODEC_ZSTD FORMAT_QCOW2 FORMAT_VMDK
# SPDX-License-Identifier: MIT
# Delta patches: delta/apply round trips judged by cmp and content hashes
# (tests/lib.sh chash, Python's hashlib), over
# files, pipes, a loopback HTTP server and a loop device; wrong sources and
# hostile patches (HOSTILE-INPUTS P1-P10) refused with specific errors and
# nothing left behind; SIGKILL at random points then --resume; containers.
. "$(dirname "$0")/../lib.sh"
need sfdisk mkfs.ext4 debugfs python3 cmp sha256sum curl qemu-img pkg-config

mkdir -p "$T/o"
sha() { chash "$1"; }

# --- fixtures: v1 from tests/mkdisk.sh; v2 = v1 with files changed by debugfs
mib=24 size=$((24 << 20))
mkdisk "$T/v1.raw" $mib
cp "$T/v1.raw" "$T/v2.raw"
dd if="$T/v1.raw" of="$T/p1" bs=1M skip=1 count=$(((mib - 4) / 2)) status=none
cp "$TOP/src/core/format.h" "$T/format.h"
printf '/* a new line in the new version */\n' >>"$T/format.h"
head -c 400000 /dev/urandom >"$T/new.bin"
seq 1 40000 >"$T/numbers.txt"
debugfs -w "$T/p1" >/dev/null 2>&1 <<EOF
rm /random.bin
rm /src/format.h
write $T/format.h /src/format.h
write $T/new.bin /new.bin
mkdir /etc2
write $T/numbers.txt /etc2/numbers.txt
EOF
dd if="$T/p1" of="$T/v2.raw" bs=1M seek=1 conv=notrunc status=none
rm -f "$T/p1"
check "debugfs changed the disk" sh -c "! cmp -s '$T/v1.raw' '$T/v2.raw'"
v1sum=$(sha "$T/v1.raw") v2sum=$(sha "$T/v2.raw")

# --- round trip -------------------------------------------------------------
run_ei 0 -- delta -v "$T/v1.raw" "$T/v2.raw" "$T/p"
has "summary" "chunks for $mib MiB of NEW" "$ERR"
psize=$(stat -c %s "$T/p")
check "patch is small ($psize bytes for a 0.8 MB change)" test "$psize" -lt 600000
run_ei 0 -- apply -v "$T/v1.raw" "$T/p" "$T/o/new.raw"
check "apply gives NEW byte for byte" cmp -s "$T/v2.raw" "$T/o/new.raw"
check "apply leaves only OUT" test "$(listing)" = new.raw
check "zero blocks are holes in OUT" \
	test "$(stat -c %b "$T/o/new.raw")" -le $(($(stat -c %b "$T/v2.raw") + 64))
rm -f "$T/o/new.raw"
# deterministic for any -j, and run to run
for j in 1 2 4 4; do
	run_ei 0 -- delta --force -j $j --level 5 --chunk 1M "$T/v1.raw" "$T/v2.raw" "$T/p.j$j"
done
check "same patch for -j 1, 2, 4 and again" \
	sh -c "cmp -s '$T/p.j1' '$T/p.j2' && cmp -s '$T/p.j1' '$T/p.j4'"
rm -f "$T"/p.j?

# --- info PATCH -------------------------------------------------------------
run_ei 0 -- info "$T/p"
has "info: format" '^file format: edgeimg delta patch, version 2$' "$OUT"
has "info: old hash is the content hash of v1" "^old content hash: $v1sum\$" "$OUT"
has "info: new hash is the content hash of v2" "^new content hash: $v2sum\$" "$OUT"
has "info: target" '^target: raw$' "$OUT"
run_ei 0 -- info --json "$T/p"
echo "$OUT" >"$T/info.json"
check "info --json: sizes, hashes, features" python3 - "$T/info.json" "$v1sum" "$v2sum" "$psize" "$size" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["format"] == "edgeimg-patch" and j["version"] == 2, j
assert j["old-size"] == j["new-size"] == int(sys.argv[5]), j
assert j["old-hash"] == sys.argv[2] and j["new-hash"] == sys.argv[3], j
assert j["target"] == "raw" and j["target-hash"] == sys.argv[3], j
assert j["patch-size"] == int(sys.argv[4]) and j["chunks"] >= 1, j
assert set(j["incompatible-features"]) <= {"ref", "recipe"}, j
PY

# --- shapes: identical disks, other sizes, empty, a partial last block ------
run_ei 0 -- delta "$T/v1.raw" "$T/v1.raw" "$T/same.p"
check "a patch between equal disks is tiny" test "$(stat -c %s "$T/same.p")" -lt 4000
run_ei 0 -- apply "$T/v1.raw" "$T/same.p" "$T/o/same.raw"
check "equal disks round trip" cmp -s "$T/v1.raw" "$T/o/same.raw"
head -c 27000123 "$T/v2.raw" >"$T/odd.raw"
printf 'tail' >>"$T/odd.raw"
: >"$T/empty.raw"
for pair in "v1 odd" "odd v1" "empty v1" "v1 empty" "empty empty"; do
	set -- $pair
	run_ei 0 -- delta --level 5 "$T/$1.raw" "$T/$2.raw" "$T/s.p"
	run_ei 0 -- apply "$T/$1.raw" "$T/s.p" "$T/o/s.raw"
	check "round trip $1 -> $2" cmp -s "$T/$2.raw" "$T/o/s.raw"
	rm -f "$T/s.p" "$T/o/s.raw"
done
rm -f "$T/o/same.raw"

# --- any readable format on either side; --chunk makes many chunks ---------
qemu-img convert -f raw -O qcow2 "$T/v1.raw" "$T/v1.qcow2"
qemu-img convert -f raw -O vmdk "$T/v2.raw" "$T/v2.vmdk"
run_ei 0 -- delta --chunk 1M --level 9 "$T/v1.qcow2" "$T/v2.vmdk" "$T/pc"
# another NEW, different in chunk 2's MiB: its chunk 2 is no chunk of pc
cp "$T/v1.raw" "$T/v5.raw"
head -c 8192 /dev/urandom | dd of="$T/v5.raw" bs=1k seek=2600 conv=notrunc status=none
run_ei 0 -- delta --chunk 1M --level 9 "$T/v1.qcow2" "$T/v5.raw" "$T/pc2"
run_ei 0 -- info --json "$T/pc"
has "--chunk 1M gives many chunks (a chunk of zeros only may hold up to 256 MiB)" "\"chunks\": ([89]|1[0-9]|2[0-4])," "$OUT"
run_ei 0 -- apply "$T/v1.qcow2" "$T/pc" "$T/o/n.raw"
check "qcow2 OLD + patch from vmdk NEW" cmp -s "$T/v2.raw" "$T/o/n.raw"
rm -f "$T/o/n.raw"
run_ei 0 -- apply "$T/v1.raw" "$T/pc" "$T/o/n.raw"
check "the patch fits OLD's content whatever its container" cmp -s "$T/v2.raw" "$T/o/n.raw"
rm -f "$T/o/n.raw"

# --- a patch from stdin ------------------------------------------------------
ei apply "$T/v1.raw" - "$T/o/n.raw" <"$T/p" >/dev/null 2>"$T/.err"
check "apply reads a redirected patch" cmp -s "$T/v2.raw" "$T/o/n.raw"
rm -f "$T/o/n.raw"
cat "$T/p" | ei apply "$T/v1.raw" - "$T/o/n.raw" 2>"$T/.err"
check "apply reads a piped patch" cmp -s "$T/v2.raw" "$T/o/n.raw"
rm -f "$T/o/n.raw"

# --- the wrong source is refused before any write (P5) ----------------------
cp "$T/v1.raw" "$T/v1x.raw"
printf '\x01' | dd of="$T/v1x.raw" bs=1 seek=20000000 conv=notrunc status=none
run_ei 1 -- apply "$T/v1x.raw" "$T/p" "$T/o/n.raw"
has "one flipped byte of OLD" "is not the patch's source: its content hash is [0-9a-f]{64}, the patch was made for $v1sum: nothing written" "$ERR"
check "wrong OLD: nothing written, no state" test -z "$(listing)"
cat "$T/p" | ei apply "$T/v1x.raw" - "$T/o/n.raw" 2>"$T/.err"
has "wrong OLD through a pipe" "nothing written" "$(cat "$T/.err")"
check "wrong OLD through a pipe: nothing written" test -z "$(listing)"
run_ei 1 -- apply "$T/odd.raw" "$T/p" "$T/o/n.raw"
has "OLD of another size" "the patch was made for a disk of $size bytes: nothing written" "$ERR"
check "OLD of another size: nothing written" test -z "$(listing)"
run_ei 1 -- apply "$T/v1.raw" "$T/p" "$T/v2.raw"
has "OUT exists" 'already exists; use --force' "$ERR"
run_ei 2 -- apply "$T/v1.raw" "$T/p" "$T/v1.raw"
has "OUT is OLD, even without --force" 'OUT is OLD' "$ERR"
run_ei 2 -- apply --force "$T/v1.raw" "$T/p" "$T/v1.raw"
has "OUT is OLD" 'OUT is OLD' "$ERR"
check "OLD untouched" test "$(sha "$T/v1.raw")" = "$v1sum"

# --- hostile patches: a specific error, no crash, nothing left (P1-P10) ----
cat >"$T/pt.py" <<'PY'
# pt.py IN OUT OP...: rewrite a patch (version 2) as an attacker would,
# fixing the checksums and the chunk hash chain unless told not to;
# pt.py IN --batch: the same for each "OUT OP..." line of standard input.
import hashlib, struct, sys, zlib
CH = 88                         # bytes of a chunk header
def mutate(b, op):
    hs = struct.unpack_from("<I", b, 12)[0]
    if struct.unpack_from("<Q", b, 16)[0] & 4:
        hs += 128               # the signature section
    def fix_header():
        rl = struct.unpack_from("<I", b, 72)[0]
        b[256 + rl:288 + rl] = hashlib.sha256(b[:256 + rl]).digest()
    def chunks():
        out, off = [], hs
        for _ in range(struct.unpack_from("<I", b, 56)[0]):
            if off + CH > len(b):
                break
            ozl, dzl = struct.unpack_from("<I", b, off + 28)[0], struct.unpack_from("<I", b, off + 44)[0]
            out.append((off, CH + ozl + dzl))
            off += CH + ozl + dzl
        return out
    def fix_crc(off, n):
        c = zlib.crc32(bytes(b[off:off + CH - 4]))
        c = zlib.crc32(bytes(b[off + CH:off + n]), c)
        struct.pack_into("<I", b, off + CH - 4, c)
    def fix_chain():            # each chunk names the next one's SHA-256
        nxt = bytes(32)
        for off, n in reversed(chunks()):
            n = min(n, len(b) - off)
            b[off + 52:off + 84] = nxt
            fix_crc(off, n)
            nxt = hashlib.sha256(bytes(b[off:off + n])).digest()
        b[192:224] = nxt
        fix_header()
    kind = op[0]
    if kind == "hdr":          # hdr FMT OFFSET VALUE
        struct.pack_into("<" + op[1], b, int(op[2]), int(op[3], 0)); fix_header()
    elif kind == "hflip":      # hflip OFFSET: every bit of a header byte, checksum fixed
        b[int(op[1])] ^= 0xff; fix_header()
    elif kind == "chunk":      # chunk K FMT OFFSET VALUE, all sums fixed
        off, n = chunks()[int(op[1])]
        struct.pack_into("<" + op[2], b, off + int(op[3]), int(op[4], 0))
        fix_chain()
    elif kind == "flip":       # flip OFFSET (nothing fixed)
        b[int(op[1])] ^= 0x40
    elif kind == "flip-body":  # flip a byte of chunk K's body [crc: fix its CRC; chain: all]
        off, n = chunks()[int(op[1])]
        b[off + CH + int(op[2])] ^= 0x40
        if len(op) > 3 and op[3] == "crc": fix_crc(off, n)
        if len(op) > 3 and op[3] == "chain": fix_chain()
    elif kind == "swap":       # swap chunks 0 and 1, chain fixed
        (o0, n0), (o1, n1) = chunks()[:2]
        b[o0:o1 + n1] = b[o1:o1 + n1] + b[o0:o0 + n0]
        fix_chain()
    elif kind == "graft":      # chunk K of patch FILE in place of ours (a forged chunk)
        other = bytearray(open(op[2], "rb").read())
        save = b[:]
        b[:] = other; ooff, on = chunks()[int(op[1])]
        piece = other[ooff:ooff + on]
        b[:] = save; off, n = chunks()[int(op[1])]
        b[off:off + n] = piece
        struct.pack_into("<Q", b, 48, len(b)); fix_header()
    elif kind == "drop":       # drop chunk K, fix patch_size and the chain
        off, n = chunks()[int(op[1])]
        del b[off:off + n]
        struct.pack_into("<Q", b, 48, len(b)); fix_chain()
    elif kind == "recipe":     # recipe OLD NEW: edit the recipe, fix the sizes
        rl = struct.unpack_from("<I", b, 72)[0]
        r = bytes(b[256:256 + rl]).replace(op[1].encode(), op[2].encode())
        b[256:256 + rl] = r
        struct.pack_into("<I", b, 72, len(r)); struct.pack_into("<I", b, 12, 288 + len(r))
        struct.pack_into("<Q", b, 48, len(b)); fix_header()
    elif kind == "append":
        b += b"garbage"
    elif kind == "cut":
        del b[int(op[1]):]
    return b
src = open(sys.argv[1], "rb").read()
if sys.argv[2] == "--batch":
    for line in sys.stdin:
        out, *op = line.split()
        open(out, "wb").write(mutate(bytearray(src), op))
else:
    open(sys.argv[2], "wb").write(mutate(bytearray(src), sys.argv[3:]))
PY
# bp DESC PATTERN OP...: applying the patch rewritten by OP must fail with
# a message matching PATTERN and leave nothing behind.  All are made by one
# python run, then applied.
cases=()
bp() { cases+=("$1"$'\t'"$2"$'\t'"${*:3}"); }
hs=$(python3 -c 'import struct,sys; print(struct.unpack_from("<I", open(sys.argv[1],"rb").read(), 12)[0])' "$T/pc")
bp "P3 new_size 2^62" 'new_size 4611686018427387904 exceeds the limit' hdr Q 40 0x4000000000000000
bp "old_size 2^64-1" 'exceeds the limit' hdr Q 32 0xffffffffffffffff
bp "chunk_count 2^32-1" 'chunk_count 4294967295 does not fit' hdr I 56 0xffffffff
bp "chunk_count 0" 'chunk_count 0 does not fit' hdr I 56 0
bp "patch_size too small" 'patch_size 100 is less than' hdr Q 48 100
bp "patch_size too large" 'the patch header says' hdr Q 48 0x7fffffff
bp "max_data 2^31" 'max_data 2147483648 or max_ref .* exceeds' hdr I 64 0x80000000
bp "header_size" 'header_size 4096 is not 288' hdr I 12 4096
bp "recipe_len 2^31" 'recipe_len 2147483648 exceeds' hdr I 72 0x80000000
bp "version 3" 'version 3, this edgeimg reads version 2' hdr I 8 3
bp "version 1" 'version 1 \(edgeimg 0.1, chunks not authenticated\)' hdr I 8 1
bp "unknown incompatible feature" 'unknown incompatible features 0x8000000000000000' hdr Q 16 0x8000000000000000
bp "block_size 3" 'block_size 3 is not a power of two' hdr I 60 3
bp "raw target hash" 'a raw target must have target_size and target_sha' hflip 152
bp "corrupt header" 'header checksum mismatch' flip 100
bp "bad magic" 'not an edgeimg patch' flip 1
bp "corrupt chunk body" 'chunk 3 at byte [0-9]+ does not belong to this patch: its SHA-256 is [0-9a-f]{64}, the patch commits to' flip-body 3 5
bp "corrupt chunk body, CRC fixed" 'chunk 3 at byte [0-9]+ does not belong to this patch' flip-body 3 5 crc
bp "a chunk of another patch" 'chunk 2 at byte [0-9]+ does not belong to this patch' graft 2 "$T/pc2"
bp "corrupt zstd frame, chain fixed" 'chunk 3: op stream (declares|is not|: zstd)' flip-body 3 5 chain
bp "corrupt data frame, chain fixed" "(chunk 3: data|NEW read back from .* has content hash [0-9a-f]{64}, the patch promises)" flip-body 3 200 chain
bp "reordered chunks" 'chunk 0 at byte [0-9]+ says it is chunk 1: chunks are missing or out of order' swap
bp "missing chunk" 'chunk 2 at byte [0-9]+ says it is chunk 3' drop 2
bp "trailing garbage (P4)" '[0-9]+ bytes, the patch header says [0-9]+: nothing written' append
bp "P10 op_count 2^32-1" 'op_count 4294967295 is not 1..65536' chunk 1 I 20 0xffffffff
bp "ops_len 2^31" 'ops_len 2147483648 / ops_zlen' chunk 1 I 24 0x80000000
bp "data_len 2^31" 'data_len 2147483648 / data_zlen' chunk 0 I 40 0x80000000
bp "ref_len over max_ref" 'ref_len 4294967295 out of range' chunk 0 I 36 0xffffffff
bp "new_len 2^32-1" 'new_len 4294967295 at 0 is not 1..268435456' chunk 0 I 16 0xffffffff
bp "new_off wrong" 'new_off 5, expected 1048576' chunk 1 Q 8 5
bp "chunk flags" 'chunk 1: unknown flags 0x4' chunk 1 I 48 4
bp "op frame size lies" 'op stream (declares|is not one whole|is not a zstd)' chunk 0 I 24 7
bp "a zstd frame that does not end (P4)" 'chunk 0: (op stream is not one whole zstd frame|data)' chunk 0 I 28 9
# truncation: a sweep over the header and the first chunk, then the middle
size=$(stat -c %s "$T/pc")
for cut in 0 4 8 100 255 256 $((hs - 1)) $hs $((hs + 30)) $((hs + 56)) $((hs + 200)) $((size / 2)) $((size - 1)); do
	bp "truncated at $cut" '(truncated|the patch header says|not an edgeimg patch|no patch magic)' cut $cut
done
for i in "${!cases[@]}"; do
	IFS=$'\t' read -r d pat op <<<"${cases[$i]}"
	echo "$T/bad$i.p $op"
done | python3 "$T/pt.py" "$T/pc" --batch
for i in "${!cases[@]}"; do
	IFS=$'\t' read -r d pat op <<<"${cases[$i]}"
	run_ei 1 -- apply "$T/v1.raw" "$T/bad$i.p" "$T/o/n.raw"
	has "$d" "$pat" "$ERR"
	# a refused header leaves nothing; a bad chunk keeps the checkpoint of
	# the chunks proven before it (for --resume), and never OUT
	case $op in
	chunk*|flip-body*|graft*|swap*|drop*|"cut $((size / 2))"|"cut $((size - 1))")
		check "$d: no OUT" test ! -e "$T/o/n.raw" ;;
	*)
		check "$d: nothing left behind" test -z "$(listing)" ;;
	esac
	rm -f "$T/bad$i.p" "$T"/o/*
done
# a bad chunk keeps the state; the right patch then resumes from it
python3 "$T/pt.py" "$T/pc" "$T/bad.p" flip-body 3 5
run_ei 1 -- apply "$T/v1.raw" "$T/bad.p" "$T/o/n.raw"
has "a forged chunk says where the work is kept" 'the work done is kept in .*n.raw.edgeimg-apply' "$ERR"
run_ei 0 -- apply -v --resume "$T/v1.raw" "$T/pc" "$T/o/n.raw"
check "and the right patch resumes from chunk 3" cmp -s "$T/v2.raw" "$T/o/n.raw"
has "resumed from chunk 3" 'chunks 3\.\.' "$ERR"
rm -f "$T"/o/*

# the same through a pipe: the end is found while applying
python3 "$T/pt.py" "$T/pc" "$T/bad.p" cut $((size / 2))
cat "$T/bad.p" | ei apply "$T/v1.raw" - "$T/o/n.raw" 2>"$T/.err"
has "a stream cut in the middle is a truncation" '<stdin>: truncated: the patch ends at byte [0-9]+, [0-9]+ of [0-9]+ chunks applied' "$(cat "$T/.err")"
check "a cut stream keeps the state for --resume, no OUT" \
	test "$(listing | tr '\n' ' ')" = "n.raw.edgeimg-apply n.raw.edgeimg-part "
python3 "$T/pt.py" "$T/pc" "$T/bad.p" append
cat "$T/bad.p" | ei apply "$T/v1.raw" - "$T/o/n.raw" 2>"$T/.err"
has "trailing bytes in a stream" 'trailing bytes after the last chunk' "$(cat "$T/.err")"
check "trailing bytes: no OUT; the verified chunks stay for --resume" \
	test "$(listing | tr '\n' ' ')" = "n.raw.edgeimg-apply n.raw.edgeimg-part "
run_ei 0 -- apply --resume "$T/v1.raw" "$T/pc" "$T/o/n.raw"
check "then the patch itself finishes it" cmp -s "$T/v2.raw" "$T/o/n.raw"
rm -f "$T"/o/*
# G1: an empty file, a file of zeros, of 0xff bytes, the magic alone
: >"$T/g.p"
head -c 4096 /dev/zero >"$T/g0.p"
head -c 4096 /dev/zero | tr '\0' '\377' >"$T/gf.p"
printf 'EIDELTA\032' >"$T/gm.p"
for g in g g0 gf gm; do
	run_ei 1 -- apply "$T/v1.raw" "$T/$g.p" "$T/o/n.raw"
	has "G1 $g" '(not an edgeimg patch|past the end|truncated)' "$ERR"
done
run_ei 1 -- info "$T/gm.p"
has "info of the magic alone" 'patch: header at 0\+256 lies past the end' "$ERR"
check "G1: nothing left" test -z "$(listing)"
# P6: the result's hash differs from the promised one
python3 "$T/pt.py" "$T/pc" "$T/bad.p" hflip 112
python3 "$T/pt.py" "$T/bad.p" "$T/bad.p" hflip 152
run_ei 1 -- apply "$T/v1.raw" "$T/bad.p" "$T/o/n.raw"
has "P6 NEW hash mismatch, found by reading OUT back" "NEW read back from .* has content hash $v2sum, the patch promises [0-9a-f]{64}: OUT not committed" "$ERR"
check "P6: not committed, no state" test -z "$(listing)"
# peak memory of apply on a hostile header is small
if [ -z "${SAN:-}" ] && has_oracle /usr/bin/time; then
	python3 "$T/pt.py" "$T/pc" "$T/bad.p" chunk 0 I 40 0x800000
	/usr/bin/time -f %M -o "$T/rss" $EDGEIMG apply "$T/v1.raw" "$T/bad.p" "$T/o/n.raw" 2>/dev/null
	check "hostile chunk: RSS $(tail -n 1 "$T/rss") KiB < 64 MiB" test "$(tail -n 1 "$T/rss")" -lt 65536
	rm -f "$T"/o/*
	/usr/bin/time -f %M -o "$T/rss" $EDGEIMG apply "$T/v1.raw" "$T/p" "$T/o/n.raw"
	check "apply: RSS $(tail -n 1 "$T/rss") KiB < 64 MiB" test "$(tail -n 1 "$T/rss")" -lt 65536
	rm -f "$T"/o/*
fi

# --- real transport: HTTP on loopback, a cut download resumed with curl -r -
cat >"$T/srv.py" <<'PY'
# A static file server with Range support, on 127.0.0.1, any free port.
import http.server, io, os, re, sys
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
    def send_head(self):
        path = self.translate_path(self.path)
        m = re.match(r"bytes=(\d+)-$", self.headers.get("Range", ""))
        if not m or not os.path.isfile(path):
            return super().send_head()
        size, start = os.path.getsize(path), int(m.group(1))
        if start >= size:
            self.send_error(416)
            return None
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read()
        self.send_response(206)
        self.send_header("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        return io.BytesIO(data)
os.chdir(sys.argv[1])
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[2], "w").write(str(s.server_address[1]))
s.serve_forever()
PY
mkdir -p "$T/www"
cp "$T/pc" "$T/www/p.patch"
python3 "$T/srv.py" "$T/www" "$T/port" & srv=$!
trap '[ -n "$srv" ] && kill $srv 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.05; done
url=http://127.0.0.1:$(cat "$T/port")/p.patch
curl -s "$url" | ei apply "$T/v1.raw" - "$T/o/n.raw" 2>"$T/.err"
check "curl -s URL | edgeimg apply OLD - OUT" cmp -s "$T/v2.raw" "$T/o/n.raw"
rm -f "$T/o/n.raw"
half=$(($(stat -c %s "$T/pc") / 2))
curl -s "$url" | head -c $half | ei apply "$T/v1.raw" - "$T/o/n.raw" 2>"$T/.err"
has "a cut download stops with a truncation" 'truncated' "$(cat "$T/.err")"
has "and says how to go on" 'run the same command with --resume' "$(cat "$T/.err")"
check "a cut download leaves no OUT" test ! -e "$T/o/n.raw"
run_ei 0 -- apply --resume-offset "$T/o/n.raw"
off=$OUT
check "resume offset $off lies inside the first half" test "$off" -gt "$hs" -a "$off" -le "$half"
curl -s -r "$off-" "$url" | ei apply --resume "$T/v1.raw" - "$T/o/n.raw" 2>"$T/.err"
check "curl -r OFFSET- | apply --resume finishes the job" cmp -s "$T/v2.raw" "$T/o/n.raw"
check "no state left after the resume" test "$(listing)" = n.raw
rm -f "$T/o/n.raw"
# a resumed stream of the whole patch works too; a wrong offset is refused
curl -s "$url" | head -c $half | ei apply "$T/v1.raw" - "$T/o/n.raw" 2>/dev/null
curl -s -r "$((hs))-" "$url" | ei apply --resume "$T/v1.raw" - "$T/o/n.raw" 2>"$T/.err"
has "a stream from the wrong chunk is refused" 'the stream starts with chunk 0; the checkpoint needs chunk [1-9]' "$(cat "$T/.err")"
curl -s "$url" | ei apply --resume "$T/v1.raw" - "$T/o/n.raw" 2>"$T/.err"
check "--resume with the whole patch on stdin" cmp -s "$T/v2.raw" "$T/o/n.raw"
rm -f "$T/o/n.raw"
kill $srv 2>/dev/null
wait $srv 2>/dev/null
srv=

# --- SIGKILL at random points, then --resume: the same result --------------
# kill points spread over the time an uninterrupted apply takes here
t0=$(date +%s%N)
ei apply "$T/v1.raw" "$T/pc" "$T/o/k.raw" 2>/dev/null
dur=$((($(date +%s%N) - t0) / 1000000))
rm -f "$T/o/k.raw"
# at LO HI: a random time between LO% and HI% of that, for sleep
at() {
	local ms=$((dur * ($1 + RANDOM % ($2 - $1)) / 100))
	printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}
# 10 kills at random points of a fresh apply, each resumed to the end
ok_all=1
for i in $(seq 10); do
	$EDGEIMG apply --force "$T/v1.raw" "$T/pc" "$T/o/k.raw" 2>/dev/null & pid=$!
	sleep "$(at 5 95)"
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	ei apply --resume --force "$T/v1.raw" "$T/pc" "$T/o/k.raw" 2>/dev/null
	cmp -s "$T/v2.raw" "$T/o/k.raw" || ok_all=0
	[ -z "$(listing | grep -v '^k.raw$')" ] || ok_all=0
	rm -f "$T/o/k.raw"
done
check "killed at 10 random points and resumed: NEW byte for byte, no state left" test $ok_all = 1
# deterministic: a SIGKILL once the checkpoint is past chunk 0 (the patch
# comes through a FIFO that holds back its second half), then --resume
# starts from that checkpoint, not from the beginning
mkfifo "$T/fifo"
$EDGEIMG apply "$T/v1.raw" - "$T/o/k.raw" <"$T/fifo" 2>/dev/null & pid=$!
exec 7>"$T/fifo"
head -c "$half" "$T/pc" >&7
o=0
for i in $(seq 300); do
	o=$(ei apply --resume-offset "$T/o/k.raw" 2>/dev/null || echo 0)
	[ "$o" -gt "$hs" ] && break
	sleep 0.1
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
exec 7>&-
rm -f "$T/fifo"
check "a checkpoint past chunk 0 before the kill (offset $o)" test "$o" -gt "$hs"
check "--resume-offset after the kill is the same ($o)" test "$(ei apply --resume-offset "$T/o/k.raw")" = "$o"
ei apply -v --resume "$T/v1.raw" "$T/pc" "$T/o/k.raw" 2>"$T/.err"
check "resumed after a SIGKILL: NEW byte for byte" cmp -s "$T/v2.raw" "$T/o/k.raw"
has "the resume started past chunk 0" 'chunks [1-9][0-9]*\.\.' "$(cat "$T/.err")"
rm -f "$T/o/k.raw"
# kill, resume, kill again...: progress accumulates
for i in $(seq 10); do
	$EDGEIMG apply --resume "$T/v1.raw" "$T/pc" "$T/o/k.raw" 2>/dev/null & pid=$!
	sleep "$(at 5 50)"
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	[ -e "$T/o/k.raw" ] && break
done
# a kill between the commit's rename and the state's removal leaves OUT
# and the checkpoint: --resume then finds the work done
[ "$(listing)" = k.raw ] || ei apply --resume "$T/v1.raw" "$T/pc" "$T/o/k.raw" 2>"$T/.err"
check "killed repeatedly while resuming: NEW byte for byte" cmp -s "$T/v2.raw" "$T/o/k.raw"
check "no state left" test "$(listing)" = k.raw
rm -f "$T/o/k.raw"
# that window, made on purpose: the state of a cut apply, OUT renamed in
curl_cut() { head -c $half "$T/pc"; }
curl_cut | ei apply "$T/v1.raw" - "$T/o/k.raw" 2>/dev/null
cp "$T/v1.raw" "$T/o/k.raw"
rm -f "$T/o/k.raw.edgeimg-part"
run_ei 1 -- apply --resume "$T/v1.raw" "$T/pc" "$T/o/k.raw"
has "--resume with the state beside an OUT that is not the result" 'already exists; use --force' "$ERR"
check "refused: the state stays" test -e "$T/o/k.raw.edgeimg-apply"
cp "$T/v2.raw" "$T/o/k.raw"
run_ei 1 -- apply --resume "$T/v1.raw" "$T/p" "$T/o/k.raw"
has "... and another patch than the checkpoint's: refused" 'already exists; use --force' "$ERR"
run_ei 0 -- apply --resume "$T/v1.raw" "$T/pc" "$T/o/k.raw"
has "--resume after a cut between commit and cleanup: the result is found" 'already holds the patch.s result' "$ERR"
check "... OUT untouched" cmp -s "$T/v2.raw" "$T/o/k.raw"
check "... and the state removed" test "$(listing)" = k.raw
rm -f "$T/o/k.raw"
# resume refuses another patch or another source
curl_cut | ei apply "$T/v1.raw" - "$T/o/k.raw" 2>/dev/null
run_ei 1 -- apply --resume "$T/v1.raw" "$T/p" "$T/o/k.raw"
has "resume with another patch" 'belongs to another patch; refusing to resume' "$ERR"
run_ei 1 -- apply --resume "$T/v1x.raw" "$T/pc" "$T/o/k.raw"
has "resume with another source" "is not the patch's source" "$ERR"
check "refusals keep the state" test "$(listing | tr '\n' ' ')" = "k.raw.edgeimg-apply k.raw.edgeimg-part "
run_ei 0 -- apply --resume "$T/v1.raw" "$T/pc" "$T/o/k.raw"
check "then the right inputs finish it" cmp -s "$T/v2.raw" "$T/o/k.raw"
rm -f "$T"/o/*
run_ei 0 -- apply --resume-offset "$T/o/none.raw"
has "--resume-offset without a checkpoint" '^0$' "$OUT"

# --- a loop device standing in for an inactive A/B slot ---------------------
if [ "$(id -u)" = 0 ] && truncate -s 40M "$T/slot.img" &&
   dev=$(losetup -f --show "$T/slot.img" 2>/dev/null); then
	head -c 41943040 /dev/urandom >"$dev"
	run_ei 0 -- apply -v --state "$T/o/slot" "$T/v1.qcow2" "$T/p" "$dev"
	check "slot: NEW written in place" cmp -s -n $size "$T/v2.raw" "$dev"
	check "slot: state removed" test -z "$(listing)"
	run_ei 1 -- apply --state "$T/o/slot" "$T/v1x.raw" "$T/p" "$dev"
	has "slot: wrong source refused" "nothing written" "$ERR"
	check "slot: untouched by the refusal" cmp -s -n $size "$T/v2.raw" "$dev"
	losetup -d "$dev"
else
	echo "SKIP $NAME: no loop device (needs root and /dev/loop*): the A/B slot case was not run"
fi
rm -f "$T/slot.img"

# --- LZMA2 data frames: a program's code, after a BCJ filter ----------------
# A program of this machine (x86-64 or arm64 code) at a 4 KiB boundary of
# an otherwise unchanged disk: its chunk's data compresses better as LZMA2
# after the BCJ filter than as zstd, and the patch says so.
if ei --version | grep -qw CODEC_XZ; then
	prog=$(readlink -f "$(command -v sh)")
	cp "$T/v1.raw" "$T/v3.raw"
	dd if="$prog" of="$T/v3.raw" bs=4096 seek=1024 conv=notrunc status=none
	dd if="$(readlink -f "$(command -v cmp)")" of="$T/v3.raw" bs=4096 seek=3072 conv=notrunc status=none
	run_ei 0 -- delta -v --chunk 1M "$T/v1.raw" "$T/v3.raw" "$T/pz"
	n=$(sed -n 's/.*LZMA2 data frames (BCJ for code): \([0-9]*\) of \([0-9]*\) chunks, .* (\([0-9]*\) bytes) smaller.*/\1 \3/p' <<<"$ERR")
	check "lzma: the programs' chunks are LZMA2, and smaller ($n)" \
		test -n "$n" -a "${n% *}" -gt 0 -a "${n#* }" -gt 0
	run_ei 0 -- info "$T/pz"
	has "lzma: info names the LZMA feature" '^features: .*lzma' "$OUT"
	python3 - "$T/pz" >"$T/flags" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
off = struct.unpack_from("<I", b, 12)[0]
for k in range(struct.unpack_from("<I", b, 56)[0]):
    ozl, dzl = struct.unpack_from("<I", b, off + 28)[0], struct.unpack_from("<I", b, off + 44)[0]
    print(k, struct.unpack_from("<I", b, off + 48)[0], ozl, struct.unpack_from("<I", b, off + 32)[0])
    off += 88 + ozl + dzl
PY
	bcj=$(case $(uname -m) in x86_64) echo 17;; aarch64) echo 33;; esac)
	check "lzma: a chunk's flags name LZMA and this machine's BCJ filter (0x$(printf %x "${bcj:-0}"))" \
		grep -q "^[0-9]* ${bcj:-x} " "$T/flags"
	check "lzma: LZMA2 chunks have no reference" \
		sh -c "! awk '\$2 % 2 == 1 && \$4 != 0' '$T/flags' | grep -q ."
	run_ei 0 -- apply "$T/v1.raw" "$T/pz" "$T/o/n.raw"
	check "lzma: apply gives NEW byte for byte" cmp -s "$T/v3.raw" "$T/o/n.raw"
	rm -f "$T/o/n.raw"
	run_ei 0 -- delta --force -j 1 --chunk 1M "$T/v1.raw" "$T/v3.raw" "$T/pz1"
	check "lzma: the same patch with one thread" cmp -s "$T/pz" "$T/pz1"
	run_ei 0 -- delta -v --no-lzma --chunk 1M "$T/v1.raw" "$T/v3.raw" "$T/pz0"
	has "lzma: --no-lzma: -v says LZMA2 was not tried" 'LZMA2 data frames: not tried \(--no-lzma\)' "$ERR"
	run_ei 0 -- info "$T/pz0"
	check "lzma: --no-lzma: no LZMA feature" test -z "$(grep '^features: .*lzma' <<<"$OUT")"
	check "lzma: the LZMA2 patch is smaller ($(stat -c %s "$T/pz") < $(stat -c %s "$T/pz0"))" \
		test "$(stat -c %s "$T/pz")" -lt "$(stat -c %s "$T/pz0")"
	run_ei 0 -- apply "$T/v1.raw" "$T/pz0" "$T/o/n.raw"
	check "lzma: --no-lzma patch: NEW byte for byte" cmp -s "$T/v3.raw" "$T/o/n.raw"
	rm -f "$T/o/n.raw"
	# hostile LZMA2 chunks: refused with the field, no OUT (the chunks
	# before are kept for --resume, as for any bad chunk)
	k=$(awk '$2 % 2 == 1 { print $1; exit }' "$T/flags")
	ozl=$(awk -v k="$k" '$1 == k { print $3 }' "$T/flags")
	lz_bad() {      # lz_bad NAME MESSAGE OP... (of pt.py, on $T/pz or $src)
		local name=$1 msg=$2
		shift 2
		python3 "$T/pt.py" "${src:-$T/pz}" "$T/bad.p" "$@"
		run_ei 1 -- apply "$T/v1.raw" "$T/bad.p" "$T/o/n.raw"
		has "lzma: $name: refused" "$msg" "$ERR"
		check "lzma: $name: no OUT" test ! -e "$T/o/n.raw"
		rm -f "$T"/o/*
	}
	lz_bad "a corrupt LZMA2 frame" "chunk $k: data: the LZMA2 frame of [0-9]+ bytes" \
		flip-body "$k" $((ozl + 40)) chain
	lz_bad "a frame cut short" "chunk $k: data_len [0-9]+ / data_zlen|chunk $k: data: the LZMA2 frame" \
		chunk "$k" I 44 0x10
	lz_bad "an unknown BCJ filter" "chunk $k: unknown BCJ filter 7" chunk "$k" I 48 0x71
	lz_bad "BCJ bits without LZMA" "chunk $k: flags 0x10 need an LZMA2 data frame" chunk "$k" I 48 0x10
	# a reference the header allows (REF, max_ref) and the chunk declares
	python3 "$T/pt.py" "$T/pz" "$T/r1.p" hdr I 68 4096
	python3 "$T/pt.py" "$T/r1.p" "$T/r2.p" hdr Q 16 $(($(od -An -t u8 -j 16 -N 8 "$T/pz") | 1))
	python3 "$T/pt.py" "$T/r2.p" "$T/r1.p" chunk "$k" I 36 4096
	src=$T/r1.p lz_bad "an LZMA2 frame with a reference" \
		"chunk $k: an LZMA2 data frame with 1 references" chunk "$k" I 32 1
	rm -f "$T/r1.p" "$T/r2.p"
	lz_bad "an unknown chunk flag" "chunk $k: unknown flags 0x103" chunk "$k" I 48 0x103
	lz_bad "LZMA chunks in a patch without the feature" "flags 0x[0-9a-f]+ need an LZMA2 data frame and the patch's LZMA feature" \
		hdr Q 16 1
	rm -f "$T/pz" "$T/pz0" "$T/pz1" "$T/bad.p" "$T/v3.raw" "$T/flags"
else
	echo "SKIP $NAME: built without the xz codec (CODEC_XZ): LZMA2 data frames not made"
	run_ei 0 -- delta -v "$T/v1.raw" "$T/v2.raw" "$T/o/pn"
	has "no xz: -v says LZMA2 was not tried, and why" 'LZMA2 data frames: not tried \(this edgeimg is built without xz' "$ERR"
	rm -f "$T/o/pn"
fi

# --- container targets: squashfs and compressed qcow2 made by edgeimg ------
# What apply -v says of the blocks it copied from OLD's container: most of
# them, since v2 is v1 with 0.8 MB rewritten in place.
copied() {
	local n=$(sed -n 's/.*: \([0-9]*\) of \([0-9]*\) compressed blocks copied from OLD.*/\1 \2/p' <<<"$ERR")
	check "$1: most compressed blocks copied from OLD, not compressed again ($n)" \
		test -n "$n" -a "${n% *}" -gt 0 -a $((${n% *} * 2)) -gt "${n#* }"
}
container() {
	local fmt=$1 ext=$2
	shift 2
	run_ei 0 -- convert -O "$fmt" "$@" "$T/v1.raw" "$T/c1.$ext"
	run_ei 0 -- convert -O "$fmt" "$@" "$T/v2.raw" "$T/c2.$ext"
	run_ei 0 -- delta -v "$T/c1.$ext" "$T/c2.$ext" "$T/p.$ext"
	check "$fmt: NEW is what the writer gives (no note)" sh -c "! grep -q 'note:' '$T/.err'"
	run_ei 0 -- info "$T/p.$ext"
	has "$fmt: the patch names the recipe" "^target: format=$fmt,writer=" "$OUT"
	has "$fmt: the target hash is NEW's file" "^target content hash: $(sha "$T/c2.$ext")\$" "$OUT"
	local cs=$(stat -c %s "$T/p.$ext")
	check "$fmt: patch $cs <= 1.2 x raw patch $psize" test $((cs * 10)) -le $((psize * 12))
	run_ei 0 -- apply -v "$T/c1.$ext" "$T/p.$ext" "$T/o/n.$ext"
	check "$fmt: apply rebuilds NEW's container byte for byte" cmp -s "$T/c2.$ext" "$T/o/n.$ext"
	copied "$fmt"
	check "$fmt: only OUT left" test "$(listing)" = "n.$ext"
	rm -f "$T/o/n.$ext"
	cat "$T/p.$ext" | ei apply "$T/v1.raw" - "$T/o/n.$ext" 2>"$T/.err"
	check "$fmt: raw OLD, piped patch" cmp -s "$T/c2.$ext" "$T/o/n.$ext"
	rm -f "$T/o/n.$ext"
	# a wrong container hash: decoded, rebuilt, refused, nothing left
	python3 "$T/pt.py" "$T/p.$ext" "$T/bad.p" hflip 152
	run_ei 1 -- apply "$T/v1.raw" "$T/bad.p" "$T/o/n.$ext"
	has "$fmt: container hash mismatch" "container built from NEW has [0-9]+ bytes and content hash $(sha "$T/c2.$ext")" "$ERR"
	check "$fmt: mismatch leaves nothing" test -z "$(listing)"
	# a recipe this build's writer cannot follow: refused before anything is written
	run_ei 0 -- info "$T/p.$ext"
	has "$fmt: the recipe names the zstd library ($zstdlib)" "^target: format=$fmt,.*,$zstdlib(,|\$)" "$OUT"
	python3 "$T/pt.py" "$T/p.$ext" "$T/bad.p" recipe "$zstdlib" zstd=1.5.99
	run_ei 1 -- apply "$T/v1.raw" "$T/bad.p" "$T/o/n.$ext"
	has "$fmt: another zstd version is refused up front, naming both" \
		"refusing the patch before writing anything: $fmt: recipe needs zstd 1\.5\.99, this build has ${zstdlib#zstd=}\$" "$ERR"
	check "$fmt: refused recipe: no OUT, no state" test -z "$(listing)"
	python3 "$T/pt.py" "$T/p.$ext" "$T/bad.p" recipe level= lebel=
	ei apply "$T/v1.raw" - "$T/o/n.$ext" <"$T/bad.p" >/dev/null 2>"$T/.err"
	check "$fmt: an unknown recipe option is refused up front, piped" test $? -eq 1
	has "$fmt: names the option" "refusing the patch before writing anything: $fmt: unknown option 'lebel'" "$(cat "$T/.err")"
	check "$fmt: refused piped recipe: no OUT, no state" test -z "$(listing)"
	# killed while building the container: resume rebuilds it
	$EDGEIMG apply "$T/v1.raw" "$T/p.$ext" "$T/o/n.$ext" 2>/dev/null & pid=$!
	sleep 0.3
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	run_ei 0 -- apply --resume --force "$T/v1.raw" "$T/p.$ext" "$T/o/n.$ext"
	check "$fmt: killed and resumed, byte for byte" cmp -s "$T/c2.$ext" "$T/o/n.$ext"
	rm -f "$T/o/n.$ext"
	# -O from a raw NEW
	run_ei 0 -- delta --level 5 -O "$fmt" "$@" "$T/v1.raw" "$T/v2.raw" "$T/p2.$ext"
	run_ei 0 -- apply "$T/v1.raw" "$T/p2.$ext" "$T/o/n.$ext"
	check "$fmt: -O from a raw NEW gives the same container" cmp -s "$T/c2.$ext" "$T/o/n.$ext"
	rm -f "$T/o/n.$ext" "$T/p.$ext" "$T/p2.$ext"
	# an option the writer does not take: refused before PATCH exists
	run_ei 2 -- delta -O "$fmt" -o no_such_option=1 "$T/v1.raw" "$T/v2.raw" "$T/o/p3"
	has "$fmt: delta -o with an unknown option" 'no_such_option' "$ERR"
	check "$fmt: no patch left" test -z "$(listing)"
}
zstdlib=$(codec_lib zstd)
if has_feature OUTPUT_SQUASHFS || ei --version | grep -qw OUTPUT_SQUASHFS; then
	container squashfs sqfs -o compression=zstd,level=3
else
	echo "SKIP $NAME: squashfs writer not built (OUTPUT_SQUASHFS): container case not run"
fi
if has_feature OUTPUT_QCOW2 || ei --version | grep -qw OUTPUT_QCOW2; then
	container qcow2 qcow2 -o compress=on,compression_type=zstd
	# zlib clusters too: each measured by inflate, since qcow2 records
	# only the sectors a compressed cluster touches
	run_ei 0 -- convert -c -O qcow2 "$T/v1.raw" "$T/z1.qcow2"
	run_ei 0 -- convert -c -O qcow2 "$T/v2.raw" "$T/z2.qcow2"
	run_ei 0 -- delta "$T/z1.qcow2" "$T/z2.qcow2" "$T/pz"
	run_ei 0 -- apply -v "$T/z1.qcow2" "$T/pz" "$T/o/n.qcow2"
	check "qcow2 zlib: apply rebuilds NEW's container byte for byte" cmp -s "$T/z2.qcow2" "$T/o/n.qcow2"
	copied "qcow2 zlib"
	rm -f "$T/o/n.qcow2"
	# an OLD whose recipe lies (level 1 clusters under a level 6 recipe):
	# the copied clusters make another container, which the read-back
	# catches; apply builds it again from NEW alone
	run_ei 0 -- convert -c -O qcow2 -o level=1 "$T/v1.raw" "$T/liar.qcow2"
	run_ei 0 -- info "$T/z2.qcow2"
	lvl=$(grep -o ',level=[0-9],' <<<"$OUT")
	check "qcow2: NEW's recipe names a one-digit level ($lvl)" test -n "$lvl"
	fixture "rewrite the liar's recipe" recipe_level "$T/liar.qcow2" "$lvl"
	run_ei 0 -- delta "$T/liar.qcow2" "$T/z2.qcow2" "$T/pl"
	run_ei 0 -- apply -v "$T/liar.qcow2" "$T/pl" "$T/o/n.qcow2"
	has "qcow2: a lying OLD: its clusters were tried, then the container built again" \
		'blocks copied from OLD is not the patch.s: building it again without them' "$ERR"
	check "... and NEW byte for byte" cmp -s "$T/z2.qcow2" "$T/o/n.qcow2"
	rm -f "$T/o/n.qcow2" "$T"/z?.qcow2 "$T/liar.qcow2" "$T/pz" "$T/pl"
else
	echo "SKIP $NAME: qcow2 writer not built (OUTPUT_QCOW2): container case not run"
fi

# --- squashfs root filesystems (mksquashfs's) as bytes: -f raw -F raw -------
if has_oracle mksquashfs; then
	mkdir -p "$T/r1/etc" "$T/r1/bin"
	seq 1 30000 >"$T/r1/etc/numbers"
	head -c 300000 /dev/urandom >"$T/r1/bin/prog"
	echo v1 >"$T/r1/etc/version"
	cp -a "$T/r1" "$T/r2"
	echo v2 >"$T/r2/etc/version"
	head -c 100000 /dev/urandom >"$T/r2/bin/new"
	if fixture "mksquashfs r1" mksquashfs "$T/r1" "$T/r1.sqfs" -quiet -noappend -comp gzip &&
	   fixture "mksquashfs r2" mksquashfs "$T/r2" "$T/r2.sqfs" -quiet -noappend -comp gzip; then
		run_ei 0 -- delta -f raw -F raw "$T/r1.sqfs" "$T/r2.sqfs" "$T/pr"
		run_ei 0 -- apply -f raw "$T/r1.sqfs" "$T/pr" "$T/o/r2.sqfs"
		check "two mksquashfs root filesystems, -f raw -F raw: byte for byte" cmp -s "$T/r2.sqfs" "$T/o/r2.sqfs"
		rm -f "$T/o/r2.sqfs"
	fi
fi

# --- usage ------------------------------------------------------------------
for v in delta apply; do
	run_ei 0 -- help $v
	has "help $v" "^usage: edgeimg $v" "$OUT"
done
run_ei 0 -- help apply
has "help apply shows the curl -r recipe" 'curl -r "\$\(edgeimg apply --resume-offset new.img\)-"' "$OUT"
run_ei 0 -- help
has "verbs listed" '^  delta ' "$OUT"
run_ei 2 -- delta "$T/v1.raw" "$T/v2.raw"
has "delta usage" 'expected OLD, NEW and PATCH' "$ERR"
run_ei 2 -- delta -o level=3 "$T/v1.raw" "$T/v2.raw" "$T/o/x"
has "-o needs -O" '-o needs -O' "$ERR"
run_ei 2 -- delta --level 30 "$T/v1.raw" "$T/v2.raw" "$T/o/x"
run_ei 1 -- delta "$T/v1.raw" "$T/v2.raw" "$T/p"
has "existing PATCH" 'already exists; use --force' "$ERR"
run_ei 1 -- info "$T/o/none"
check "usage errors leave nothing" test -z "$(listing)"

done_tests
