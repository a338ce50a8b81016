#!/usr/bin/env bash
# requires: DELTA_SIGN
# SPDX-License-Identifier: MIT
# Signed patches (HOSTILE-INPUTS P7), judged by openssl: keys from openssl
# genpkey; edgeimg's signature verifies with openssl pkeyutl and equals
# openssl's (Ed25519 is deterministic); a header signed by openssl and
# spliced in is accepted; unsigned, another key's, a signature moved from
# another patch, a flipped byte and a downgrade are refused before anything
# is written; --resume with --verify; the apply lock.
. "$(dirname "$0")/../lib.sh"
need openssl python3 cmp sha256sum mkfifo

mkdir -p "$T/o"
cd "$T" || exit 1

# --- fixtures: 4 MiB disks, v2 and v3 with edits in every MiB -------------
python3 - <<'PY'
import random
r = random.Random(11)
v1 = bytearray(r.randbytes(3 << 20) + bytes(1 << 20))
v2 = bytearray(v1)
for m in range(4):
    v2[m * 1048576 + 5000:m * 1048576 + 9000] = r.randbytes(4000)
v3 = bytearray(v2)
v3[100:200] = bytes(100)
for n, d in (("v1", v1), ("v2", v2), ("v3", v3)):
    open(n + ".raw", "wb").write(d)
PY
# sig.py: the patch surgery of src/delta/delta-format.md ("Signature")
cat >sig.py <<'PY'
import hashlib, struct, sys
def load(p):
    d = bytearray(open(p, "rb").read())
    return d, struct.unpack_from("<I", d, 12)[0]
cmd, p = sys.argv[1], sys.argv[2]
d, hs = load(p)
if cmd == "split":              # header bytes, signature, key id (hex)
    open(sys.argv[3], "wb").write(d[:hs])
    open(sys.argv[4], "wb").write(d[hs + 40:hs + 104])
    print(d[hs + 8:hs + 40].hex())
elif cmd == "splice":           # put key id and signature file in
    d[hs + 8:hs + 40] = bytes.fromhex(sys.argv[3])
    d[hs + 40:hs + 104] = open(sys.argv[4], "rb").read()
    open(sys.argv[5], "wb").write(d)
elif cmd == "movesig":          # the whole section of another patch
    o, ohs = load(sys.argv[3])
    d[hs:hs + 128] = o[ohs:ohs + 128]
    open(sys.argv[4], "wb").write(d)
elif cmd == "flip":             # one byte, at an offset from the section
    d[hs + int(sys.argv[3])] ^= 0x20
    open(sys.argv[4], "wb").write(d)
elif cmd == "setver":           # patch_version, header checksum redone
    struct.pack_into("<Q", d, 184, int(sys.argv[3]))
    d[hs - 32:hs] = hashlib.sha256(d[:hs - 32]).digest()
    open(sys.argv[4], "wb").write(d)
PY
openssl genpkey -algorithm ed25519 -out k.pem 2>/dev/null
openssl pkey -in k.pem -pubout -out k.pub
openssl genpkey -algorithm ed25519 -out k2.pem 2>/dev/null
openssl pkey -in k2.pem -pubout -out k2.pub
kid() { openssl pkey -pubin -in "$1" -outform DER | tail -c 32 | sha256sum | cut -d' ' -f1; }
kid1=$(kid k.pub) kid2=$(kid k2.pub)

# --- sign, judged by openssl ------------------------------------------------
run_ei 0 -- delta --chunk 1M --sign k.pem --patch-version 2 v1.raw v2.raw p2
run_ei 0 -- delta --chunk 1M --sign k.pem --patch-version 3 v1.raw v3.raw p3
run_ei 0 -- delta --chunk 1M v1.raw v2.raw pu
run_ei 0 -- info p2
has "info: signed, with the key id of k.pub" "^signed: yes, Ed25519, key id $kid1\$" "$OUT"
has "info: patch version" '^patch version: 2$' "$OUT"
has "info: the SIGNED feature" '^features:.* signed' "$OUT"
run_ei 0 -- info pu
has "info: unsigned" '^signed: no$' "$OUT"
run_ei 0 -- info --json p2
check "info --json: signed, key-id, patch-version" python3 -c "
import json, sys
j = json.loads(sys.argv[1])
assert j['signed'] is True and j['key-id'] == '$kid1' and j['patch-version'] == 2, j
assert 'signed' in j['incompatible-features'], j" "$OUT"
check "the signature section names k.pub" test "$(python3 sig.py split p2 hdr sig)" = "$kid1"
check "openssl verifies edgeimg's signature over the header" \
	sh -c 'openssl pkeyutl -verify -pubin -inkey k.pub -rawin -in hdr -sigfile sig >/dev/null'
openssl pkeyutl -sign -rawin -inkey k.pem -in hdr -out sig.ossl
check "openssl's signature of the header is edgeimg's, byte for byte" cmp -s sig sig.ossl

# --- verify: accepted ------------------------------------------------------
run_ei 0 -- apply --verify k.pub --min-version 2 v1.raw p2 o/n.raw
check "verified apply gives NEW" cmp -s v2.raw o/n.raw
check "verified apply leaves only OUT" test "$(listing)" = n.raw
rm -f o/*
run_ei 0 -- apply v1.raw p2 o/n.raw
check "a signed patch applies without --verify too" cmp -s v2.raw o/n.raw
rm -f o/*
# a header signed by openssl with k2, spliced in with k2's key id
openssl pkeyutl -sign -rawin -inkey k2.pem -in hdr -out sig2
python3 sig.py splice p2 "$kid2" sig2 p2k2
run_ei 0 -- apply --verify k2.pub v1.raw p2k2 o/n.raw
check "openssl's signature spliced in is accepted" cmp -s v2.raw o/n.raw
rm -f o/*

# --- P7 refusals: no OUT, no state ------------------------------------------
refused() {     # refused DESC REGEX APPLY-ARGS...
	local d=$1 re=$2
	shift 2
	run_ei 1 -- apply "$@"
	has "$d: message" "$re" "$ERR"
	check "$d: nothing written, no state" test -z "$(listing)"
}
refused "missing signature" 'pu: patch: not signed' --verify k.pub v1.raw pu o/n.raw
refused "unsigned, on stdin" 'not signed' --verify k.pub v1.raw - o/n.raw <pu
refused "wrong key" "signed by key $kid1, not by the trusted key $kid2" \
	--verify k2.pub v1.raw p2 o/n.raw
python3 sig.py movesig p2 p3 p2moved
refused "signature moved from another patch" 'bad signature: key [0-9a-f]{64} did not sign this header' \
	--verify k.pub v1.raw p2moved o/n.raw
python3 sig.py flip p2 50 p2flip
refused "a flipped byte in the signature" 'bad signature' --verify k.pub v1.raw p2flip o/n.raw
python3 sig.py flip p2 100 p2flipS
refused "a flipped byte in S" 'bad signature' --verify k.pub v1.raw p2flipS o/n.raw
python3 sig.py flip p2 10 p2flipid
refused "a flipped byte in the key id" 'signed by key [0-9a-f]{64}, not by the trusted key' \
	--verify k.pub v1.raw p2flipid o/n.raw
python3 sig.py flip p2 0 p2magic
refused "a bad section magic" 'signature section: magic' --verify k.pub v1.raw p2magic o/n.raw
python3 sig.py flip p2 120 p2resv
refused "non-zero reserved bytes" 'signature section: reserved bytes' v1.raw p2resv o/n.raw
python3 sig.py setver p2 9 p2v9
refused "a raised patch_version with the checksum redone" 'bad signature' \
	--verify k.pub v1.raw p2v9 o/n.raw
refused "downgrade" 'patch_version 2 is below --min-version 3: refusing a downgrade' \
	--verify k.pub --min-version 3 v1.raw p2 o/n.raw
run_ei 0 -- apply --verify k.pub --min-version 3 v1.raw p3 o/n3.raw
check "the newer patch passes --min-version 3" cmp -s v3.raw o/n3.raw
rm -f o/*

# --- keys: strict parsing, named errors ---------------------------------------
run_ei 1 -- delta --sign k.pub v1.raw v2.raw o/x
has "--sign with a public key" 'k.pub.*a public key; signing needs the private key' "$ERR"
run_ei 1 -- apply --verify k.pem v1.raw p2 o/n.raw
has "--verify with a private key" 'k.pem.*a private key; verifying takes the public key' "$ERR"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.pem 2>/dev/null
run_ei 1 -- delta --sign ec.pem v1.raw v2.raw o/x
has "an EC key" 'ec.pem: not an Ed25519 key' "$ERR"
sed '2s/^./!/' k.pub >bad64.pub
run_ei 1 -- apply --verify bad64.pub v1.raw p2 o/n.raw
has "bad base64" 'bad64.pub: line 2: byte 0x21 is not base64' "$ERR"
head -n 2 k.pub >cut.pub
run_ei 1 -- apply --verify cut.pub v1.raw p2 o/n.raw
has "no END line" "cut.pub: no '-----END PUBLIC KEY-----' line" "$ERR"
run_ei 1 -- apply --verify nonexistent.pub v1.raw p2 o/n.raw
has "a missing key file" 'nonexistent.pub' "$ERR"
check "key errors leave nothing" test -z "$(listing)"

# --- --resume with --verify: from a cut stream, then from the offset --------
half=$(($(stat -c %s p2) / 2))
head -c $half p2 | ei apply --verify k.pub v1.raw - o/r.raw 2>/dev/null
off=$(ei apply --resume-offset o/r.raw)
check "a cut stream leaves a checkpoint past the header ($off)" test "$off" -gt 416
tail -c +$((off + 1)) p2 | ei apply --resume --verify k2.pub v1.raw - o/r.raw 2>"$T/.err"
has "resume checks the checkpoint's signature" 'signed by key' "$(cat "$T/.err")"
tail -c +$((off + 1)) p2 | ei apply --resume --verify k.pub --min-version 2 v1.raw - o/r.raw
check "resumed signed apply from the offset gives NEW" cmp -s v2.raw o/r.raw
check "resume leaves only OUT" test "$(listing)" = r.raw
rm -f o/*
head -c $half p2 | ei apply v1.raw - o/r.raw 2>/dev/null
run_ei 0 -- apply --resume --verify k.pub v1.raw p2 o/r.raw
check "resumed with the whole signed patch file" cmp -s v2.raw o/r.raw
rm -f o/*

# --- the state directory is not trusted: the partial NEW is read back ----
# the attack: cut a signed stream, write other bytes into the partial file,
# resume with --verify.  The read-back of the result refuses to commit it.
head -c $half p2 | ei apply --verify k.pub v1.raw - o/r.raw 2>/dev/null
check "a cut stream left a partial file" test -s o/r.raw.edgeimg-part
printf 'forged by whoever can write the state directory' |
	dd of=o/r.raw.edgeimg-part bs=1 seek=4096 conv=notrunc status=none
run_ei 1 -- apply --resume --verify k.pub v1.raw p2 o/r.raw
has "forged partial file: refused by the read-back" \
	"NEW read back from .*r.raw.edgeimg-part has content hash [0-9a-f]{64}, the patch promises $(chash v2.raw): OUT not committed" "$ERR"
check "forged partial file: no OUT, no state" test -z "$(listing)"
head -c $half p2 | ei apply v1.raw - o/r.raw 2>/dev/null
python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(100); b = f.read(1); f.seek(100); f.write(bytes([b[0] ^ 1]))' o/r.raw.edgeimg-part
run_ei 1 -- apply --resume v1.raw p2 o/r.raw
has "a flipped byte in the partial file is found" 'NEW read back from .* has content hash' "$ERR"
check "a flipped byte: no OUT" test ! -e o/r.raw

# --- a forged chunk under --verify: refused before any of its bytes is written
python3 - p2 p2forged <<'PY'
import struct, sys, zlib
b = bytearray(open(sys.argv[1], "rb").read())
off = struct.unpack_from("<I", b, 12)[0] + 128        # header, signature
for k in range(2):                                      # to chunk 2
    off += 88 + struct.unpack_from("<I", b, off + 28)[0] + struct.unpack_from("<I", b, off + 44)[0]
n = 88 + struct.unpack_from("<I", b, off + 28)[0] + struct.unpack_from("<I", b, off + 44)[0]
b[off + n - 3] ^= 0x5a                                  # its data, CRC made valid
c = zlib.crc32(bytes(b[off:off + 84])); c = zlib.crc32(bytes(b[off + 88:off + n]), c)
struct.pack_into("<I", b, off + 84, c)
open(sys.argv[2], "wb").write(b)
open("chunk2.off", "w").write(str(struct.unpack_from("<Q", b, off + 8)[0]))
PY
run_ei 1 -- apply --verify k.pub v1.raw p2forged o/f.raw
has "a forged chunk with a valid CRC is refused under --verify" \
	'chunk 2 at byte [0-9]+ does not belong to this patch' "$ERR"
check "none of its bytes was written: the partial file ends where chunk 2 starts" \
	test "$(stat -c %s o/f.raw.edgeimg-part)" = "$(cat chunk2.off)"
check "no OUT" test ! -e o/f.raw
run_ei 0 -- apply --resume --verify k.pub v1.raw p2 o/f.raw
check "the genuine patch resumes from chunk 2" cmp -s v2.raw o/f.raw
rm -f o/*

# --- the apply lock: a second apply on the same OUT or state is refused -----
mkfifo fifo
exec 3<>fifo    # kept open: the first apply waits for its patch
timeout 120 $EDGEIMG apply v1.raw fifo o/l.raw 2>lock1.err 3>&- & pid=$!
for _ in $(seq 100); do [ -e o/l.raw.edgeimg-lock ] && break; sleep 0.05; done
run_ei 1 -- apply v1.raw p2 o/l.raw
has "second apply on the same OUT" 'another apply is running on .*o/l.raw' "$ERR"
run_ei 1 -- apply --state o/l.raw v1.raw p2 o/other.raw
has "second apply on the same --state" 'another apply is running' "$ERR"
cat p2 >&3
exec 3>&-
wait $pid
check "the first apply finishes ($(cat lock1.err))" cmp -s v2.raw o/l.raw
check "no lock or state left" test "$(listing)" = l.raw
rm -f o/*
run_ei 0 -- apply v1.raw p2 o/l.raw
check "the lock is free again" cmp -s v2.raw o/l.raw

done_tests
