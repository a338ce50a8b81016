#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run.sh FUZZDIR FMT...: seed and run each fuzzer for $FUZZ_TIME seconds.
# Corpora persist in FUZZDIR/corpus-FMT, crashes land in FUZZDIR/crash-FMT-*.
# Ends with an "N passed, N failed" line: a fuzzer that finds a crash fails.
set -u
dir=$1
shift
pass=0 fail=0
for f in "$@"; do
	c=$dir/corpus-$f
	mkdir -p "$c"
	bash "$(dirname "$0")/seed-$f.sh" "$c" >/dev/null 2>&1 || true
	if "$dir/fuzz-$f" -max_total_time="${FUZZ_TIME:-10}" -rss_limit_mb=2048 \
		-max_len=1048576 -timeout=20 -artifact_prefix="$dir/crash-$f-" \
		"$c" >"$dir/fuzz-$f.log" 2>&1; then
		echo "fuzz-$f: $(grep -Eo '#[0-9]+' "$dir/fuzz-$f.log" | tail -n 1 | tr -d '#') runs in ${FUZZ_TIME:-10} s, no crash"
		pass=$((pass + 1))
	else
		echo "FAIL fuzz-$f: see $dir/fuzz-$f.log"
		grep -E 'ERROR|SUMMARY|runtime error' "$dir/fuzz-$f.log" | head -n 5
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
