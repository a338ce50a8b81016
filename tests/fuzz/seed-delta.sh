#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# seed-delta.sh DIR: real patches for the patch decoder's fuzzer, made by
# the edgeimg next to DIR (or $EDGEIMG) from small generated disks, one
# with LZMA2 data frames (a program's code).  Each
# seed starts with the mode byte of fuzz_delta.c: 0 checks the checksums,
# 1 skips them.
. "$(dirname "$0")/seedlib.sh"
python3 - "$t" <<'PY'
import os, random, sys
d = sys.argv[1]
r = random.Random(7)
old = bytearray(r.randbytes(24 << 10)) + b"the quick brown fox\n" * 1500 + bytes(16 << 10)
new = bytearray(old)
new[5000:5004] = b"EDIT"                    # an edit: DATA against a reference
new[40000:40000] = b"inserted " * 50        # a shift: anchors
new += r.randbytes(3000)                    # new data
new[49152:53248] = bytes(4096)              # zeros
open(f"{d}/old", "wb").write(old)
open(f"{d}/new", "wb").write(new[:len(new) - 1234])
open(f"{d}/same", "wb").write(old)
# a program at a 4 KiB boundary: LZMA2 data frames after a BCJ filter
import shutil
prog = open(shutil.which("sh"), "rb").read()[:96 << 10]
open(f"{d}/prog", "wb").write(bytes(old) + bytes(-len(old) % 4096) + prog)
# the Ed25519 key fuzz_delta.c verifies with: the seed 32 bytes of 0x42,
# as a PKCS#8 PEM file (RFC 8410)
import base64
der = bytes.fromhex("302e020100300506032b657004220420") + b"\x42" * 32
open(f"{d}/k.pem", "w").write("-----BEGIN PRIVATE KEY-----\n" +
    base64.b64encode(der).decode() + "\n-----END PRIVATE KEY-----\n")
PY
mk() {  # mk NAME OLD NEW [delta options]
	local name=$1 o=$2 n=$3
	shift 3
	"$ei" delta --force "$@" "$t/$o" "$t/$n" "$t/p" >/dev/null
	for m in 0 1; do
		{ printf "\\x0$m"; cat "$t/p"; } >"$dir/seed-$name-$m"
	done
}
mk one old new
mk chunks old new --chunk 16k --level 3
mk same old same
mk grow same new --chunk 32k
mk signed old new --chunk 16k --sign "$t/k.pem" --patch-version 5
mk lzma old prog --chunk 32k
: >"$t/empty"
mk empty empty new --level 1
