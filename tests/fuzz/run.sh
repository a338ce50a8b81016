#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run.sh FUZZDIR FMT...: seed and run each fuzzer for $FUZZ_TIME seconds,
# $FUZZ_JOBS at a time (default: one per core; each fuzzer is one process
# on one core).  Corpora persist in FUZZDIR/corpus-FMT, crashes land in
# FUZZDIR/crash-FMT-*.  Results are printed in the order given and end
# with an "N passed, N failed" line: a fuzzer that finds a crash fails.
set -u
dir=$1
shift
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}

# one FMT: seed, run, and leave the verdict in FUZZDIR/fuzz-FMT.result
# (first line "pass" or "fail", then what to print).
one() {
	local f=$1 c=$dir/corpus-$1 r=$dir/fuzz-$1.result
	mkdir -p "$c"
	bash "$(dirname "$0")/seed-$f.sh" "$c" >/dev/null 2>&1 || true
	if "$dir/fuzz-$f" -max_total_time="${FUZZ_TIME:-10}" -rss_limit_mb=2048 \
		-max_len=1048576 -timeout=20 -artifact_prefix="$dir/crash-$f-" \
		"$c" >"$dir/fuzz-$f.log" 2>&1; then
		printf 'pass\nfuzz-%s: %s runs in %s s, no crash\n' "$f" \
			"$(grep -Eo '#[0-9]+' "$dir/fuzz-$f.log" | tail -n 1 | tr -d '#')" \
			"${FUZZ_TIME:-10}" >"$r"
	else
		{
			printf 'fail\nFAIL fuzz-%s: see %s\n' "$f" "$dir/fuzz-$f.log"
			grep -E 'ERROR|SUMMARY|runtime error' "$dir/fuzz-$f.log" | head -n 5
		} >"$r"
	fi
}

running=0
for f in "$@"; do
	rm -f "$dir/fuzz-$f.result"
	one "$f" &
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
done
wait

pass=0 fail=0
for f in "$@"; do
	r=$dir/fuzz-$f.result
	if [ -f "$r" ] && [ "$(head -n 1 "$r")" = pass ]; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		[ -f "$r" ] || echo "FAIL fuzz-$f: no result (the runner died)"
	fi
	[ -f "$r" ] && tail -n +2 "$r"
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
