#!/usr/bin/env bash
# requires: CODEC_ZSTD
# SPDX-License-Identifier: MIT
# The library without the command line: tests/api/example-apply.c links
# libedgeimg.a and includes src/edgeimg.h only (checked here), and applies
# patches the CLI made by feeding them in pieces: whole, from a pipe, cut
# and resumed, signed and verified.  Judged by cmp and openssl.
. "$(dirname "$0")/../lib.sh"
need python3 cmp openssl
: "${API_EXAMPLE:?set API_EXAMPLE to the example-apply program}"
ex() { ${RUNNER:-} "$API_EXAMPLE" "$@"; }

check "the example includes the public header and nothing else of edgeimg" \
	test "$(grep -c '#include "' "$TOP/tests/api/example-apply.c")" = 1 -a \
	"$(grep '#include "' "$TOP/tests/api/example-apply.c")" = '#include "edgeimg.h"'
check "the CLI includes only edgeimg.h and its own cli/cli.h" \
	sh -c "! grep -h '#include \"' '$TOP'/src/cli/*.c '$TOP'/src/cli/*.h | grep -v -e '\"edgeimg.h\"' -e '\"cli/cli.h\"'"

python3 - "$T" <<'PY'
import random, sys
r = random.Random(5)
v1 = bytearray(r.randbytes(5 << 20) + bytes(3 << 20))
v2 = bytearray(v1)
for m in range(0, 8, 2):
    v2[m * 1048576 + 1000:m * 1048576 + 70000] = r.randbytes(69000)
open(sys.argv[1] + "/v1.raw", "wb").write(v1)
open(sys.argv[1] + "/v2.raw", "wb").write(v2)
PY
mkdir -p "$T/o"
run_ei 0 -- delta --chunk 1M "$T/v1.raw" "$T/v2.raw" "$T/p"
ex "$T/v1.raw" "$T/p" "$T/o/n.raw" >"$T/.out" 2>"$T/.err"
check "the library applies a patch file ($(cat "$T/.err"))" cmp -s "$T/v2.raw" "$T/o/n.raw"
has "and reports the read-back content hash" "$(chash "$T/v2.raw")" "$(cat "$T/.out")"
rm -f "$T/o/n.raw"
cat "$T/p" | ex "$T/v1.raw" - "$T/o/n.raw" >/dev/null 2>"$T/.err"
check "from a pipe" cmp -s "$T/v2.raw" "$T/o/n.raw"
rm -f "$T/o/n.raw"
half=$(($(stat -c %s "$T/p") / 2))
head -c $half "$T/p" | ex "$T/v1.raw" - "$T/o/n.raw" >/dev/null 2>"$T/.err"
has "a cut stream is an error that keeps the work" 'run again with --resume' "$(cat "$T/.err")"
off=$(ei apply --resume-offset "$T/o/n.raw")
check "the CLI sees the library's checkpoint ($off)" test "$off" -gt 0
tail -c +$((off + 1)) "$T/p" | ex --resume "$T/v1.raw" - "$T/o/n.raw" >"$T/.out" 2>"$T/.err"
check "resumed through the library from byte $off" cmp -s "$T/v2.raw" "$T/o/n.raw"
has "from a chunk past the first" 'chunks [1-9][0-9]*\.\.' "$(cat "$T/.out")"
rm -f "$T/o/n.raw"
fixture "an Ed25519 key" openssl genpkey -algorithm ed25519 -out "$T/k.pem" &&
	fixture "its public key" openssl pkey -in "$T/k.pem" -pubout -out "$T/k.pub"
run_ei 0 -- delta --sign "$T/k.pem" "$T/v1.raw" "$T/v2.raw" "$T/ps"
ex --verify "$T/k.pub" "$T/v1.raw" "$T/ps" "$T/o/n.raw" >/dev/null 2>"$T/.err"
check "a signed patch verified by the library" cmp -s "$T/v2.raw" "$T/o/n.raw"
rm -f "$T/o/n.raw"
ex --verify "$T/k.pub" "$T/v1.raw" "$T/p" "$T/o/n.raw" >/dev/null 2>"$T/.err"
has "an unsigned one refused" 'not signed' "$(cat "$T/.err")"
check "refused: nothing written" test -z "$(ls -A "$T/o")"
done_tests
