#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the unit-test programs ($UNIT_BINS, under $RUNNER) and the CLI test
# scripts (tests/cli/*.sh, against $EDGEIMG); every one ends in an
# "N passed, N failed" line.  Prints the sum as the last line; exits 1 when
# anything failed, crashed or printed no tally.
set -u
cd "$(dirname "$0")/.."
pass=0 fail=0 skip=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

run_one() {
	local name=$1 rc line p f s
	shift
	"$@" >"$log" 2>&1
	rc=$?
	grep -v -E '^[^ ]+: [0-9]+ passed, [0-9]+ failed' "$log" | grep -E '^(FAIL|SKIP)' || true
	line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	if [ -z "$line" ]; then
		echo "FAIL $name: exit $rc and no tally; its output:"
		tail -n 20 "$log"
		fail=$((fail + 1))
		return
	fi
	p=$(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$line")
	f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
	s=$(sed -nE 's/.* ([0-9]+) skipped.*/\1/p' <<<"$line")
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + ${s:-0}))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL $name: exit $rc with no failed check; its output:"
		tail -n 20 "$log"
		fail=$((fail + 1))
	fi
	echo "$line"
}

for b in ${UNIT_BINS:-}; do
	run_one "$(basename "$b")" ${RUNNER:-} "$b"
done
for t in tests/cli/*.sh; do
	[ -n "${TESTS:-}" ] && ! grep -qw "$(basename "$t" .sh)" <<<"$TESTS" && continue
	# A test of a feature this configuration leaves out is not run.
	req=$(sed -n 's/^# requires: //p' "$t")
	missing=
	for f in $req; do grep -qw "$f" <<<"${FEATURES:-}" || missing="$missing $f"; done
	if [ -n "$missing" ]; then
		echo "not built:$missing: $(basename "$t") not run"
		continue
	fi
	run_one "$(basename "$t")" bash "$t"
	# The same test again on the ASan/UBSan build, when there is one.
	if [ -n "${EDGEIMG_SAN:-}" ]; then
		EDGEIMG=$EDGEIMG_SAN SAN=1 run_one "$(basename "$t") [asan]" bash "$t"
	fi
done
if [ "$skip" -gt 0 ]; then
	echo "$pass passed, $fail failed, $skip skipped"
else
	echo "$pass passed, $fail failed"
fi
[ "$fail" -eq 0 ]
