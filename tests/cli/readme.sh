#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# README's usage block against the verbs' own help: every usage line that
# "edgeimg help VERB" prints is in README's block, and the block names no
# verb the binary lacks (or, built without it, does not name as left out),
# so the two cannot drift apart.
. "$(dirname "$0")/../lib.sh"
need python3

block=$(python3 - "$TOP/README.md" <<'PY'
import sys
t = open(sys.argv[1]).read()
start = t.index("## Using it")
a = t.index("```\n", start) + 4
print(t[a:t.index("```", a)], end="")
PY
)
check "README has a usage block" test -n "$block"
verbs=$(ei help | sed -n 's/^  \([a-z]*\) .*/\1/p')
check "edgeimg help lists verbs" test -n "$verbs"
for v in $verbs; do
	run_ei 0 -- help "$v"
	# the usage lines: "usage: edgeimg ..." and its continuations
	lines=$(sed -n '/^usage: /,/^$/p' <<<"$OUT" | sed -e '/^$/d' -e 's/^usage: //' -e 's/^ *\(edgeimg \)/\1/')
	while IFS= read -r l; do
		if grep -qxF -- "$l" <<<"$block"; then ok; else bad "README's usage block lacks, for $v: '$l'"; fi
	done <<<"$lines"
done
while IFS= read -r l; do
	v=$(sed -n 's/^edgeimg \([a-z]*\) .*/\1/p' <<<"$l")
	[ -z "$v" ] || [ "$v" = help ] && continue
	if ei help "$v" >/dev/null 2>&1; then
		ok
	elif ! has_feature CODEC_ZSTD && ei help "$v" 2>&1 | grep -q "^edgeimg: '$v' is not in this build: it needs CONFIG_CODEC_ZSTD"; then
		ok # a verb this configuration leaves out, and says so
	else
		bad "README's usage block names '$v', which this edgeimg lacks"
	fi
done <<<"$block"
done_tests
