#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the unit-test programs ($UNIT_BINS, under $RUNNER) and the CLI test
# scripts (tests/cli/*.sh, against $EDGEIMG, and again against $EDGEIMG_SAN
# when set); every one ends in an "N passed, N failed" line.  They run
# $CHECK_JOBS at a time (default: one per core), each in its own scratch
# directory, and are reported in a fixed order with the seconds each took.
# Prints the sum as the last line; exits 1 when anything failed, crashed,
# timed out ($TEST_TIMEOUT seconds, default 1800) or printed no tally.
set -u
cd "$(dirname "$0")/.."
pass=0 fail=0 skip=0
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
jobs=${CHECK_JOBS:-$(nproc 2>/dev/null || echo 1)}

names=() cmds=()
add() { names+=("$1"); cmds+=("$2"); }

for b in ${UNIT_BINS:-}; do
	add "$(basename "$b")" "${RUNNER:-} $b"
done
# The longest scripts first, so that the last ones to finish are short.
for t in $(ls -S tests/cli/*.sh); do
	n=$(basename "$t" .sh)
	[ -n "${TESTS:-}" ] && [[ " $(echo $TESTS) " != *" $n "* ]] && continue
	# A test of a feature this configuration leaves out is not run.
	req=$(sed -n 's/^# requires: //p' "$t")
	missing=
	for f in $req; do grep -qw "$f" <<<"${FEATURES:-}" || missing="$missing $f"; done
	if [ -n "$missing" ]; then
		echo "not built:$missing: $n.sh not run"
		continue
	fi
	add "$n.sh" "bash $t"
	# The same test again on the ASan/UBSan build, when there is one.
	[ -n "${EDGEIMG_SAN:-}" ] && add "$n.sh [asan]" "env EDGEIMG=$EDGEIMG_SAN SAN=1 bash $t"
done

# start I: run job I in the background; its output, status and seconds
# go to $logs/I.{log,rc,s}.
start() {
	(
		s=$SECONDS
		eval "timeout -k 10 ${TEST_TIMEOUT:-1800} ${cmds[$1]}" >"$logs/$1.log" 2>&1
		echo $? >"$logs/$1.rc"
		echo $((SECONDS - s)) >"$logs/$1.s"
	) &
}

# report I: the tally of job I, added to the sums.
report() {
	local i=$1 name=${names[$1]} rc line p f s
	rc=$(cat "$logs/$i.rc")
	grep -v -E '^[^ ]+: [0-9]+ passed, [0-9]+ failed' "$logs/$i.log" | grep -E '^(FAIL|SKIP)' || true
	line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$logs/$i.log" | tail -n 1)
	if [ -z "$line" ]; then
		[ "$rc" -eq 124 ] && echo "FAIL $name: timed out after ${TEST_TIMEOUT:-1800} s"
		echo "FAIL $name: exit $rc and no tally; its output:"
		tail -n 20 "$logs/$i.log"
		fail=$((fail + 1))
		return
	fi
	p=$(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$line")
	f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
	s=$(sed -nE 's/.* ([0-9]+) skipped.*/\1/p' <<<"$line")
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + ${s:-0}))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL $name: exit $rc with no failed check; its output:"
		tail -n 20 "$logs/$i.log"
		fail=$((fail + 1))
	fi
	echo "$line ($(cat "$logs/$i.s") s)"
}

# A pool of $jobs; results are printed in the order above as they complete.
next=0 shown=0 running=0
while [ "$shown" -lt ${#names[@]} ]; do
	while [ "$running" -lt "$jobs" ] && [ "$next" -lt ${#names[@]} ]; do
		start $next
		next=$((next + 1)) running=$((running + 1))
	done
	wait -n 2>/dev/null || true
	running=0
	for ((i = shown; i < next; i++)); do
		[ -f "$logs/$i.s" ] || running=$((running + 1))
	done
	while [ "$shown" -lt "$next" ] && [ -f "$logs/$shown.s" ]; do
		report $shown
		shown=$((shown + 1))
	done
done
wait
if [ "$skip" -gt 0 ]; then
	echo "$pass passed, $fail failed, $skip skipped"
else
	echo "$pass passed, $fail failed"
fi
[ "$fail" -eq 0 ]
