# SPDX-License-Identifier: MIT
# Sourced by tests/cli/*.sh: checks that count, oracles that must exist
# under CI, and a scratch directory removed on exit.
set -u
: "${EDGEIMG:?set EDGEIMG to the edgeimg binary (with a runner prefix if any)}"
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
t_pass=0 t_fail=0 t_skip=0
NAME=$(basename "$0" .sh)${SAN:+[asan]}

ei() { $EDGEIMG "$@"; }         # unquoted: EDGEIMG may carry a runner

ok() { t_pass=$((t_pass + 1)); }
bad() { t_fail=$((t_fail + 1)); echo "FAIL $NAME: $*"; }

# check DESC CMD...: CMD must succeed.
check() {
	local d=$1
	shift
	if "$@"; then ok; else bad "$d"; fi
}

# run_ei EXPECTED_EXIT -- ARGS...: run edgeimg, keep stdout in $OUT and
# stderr in $ERR, and count whether the exit status is the expected one.
run_ei() {
	local want=$1
	shift
	[ "$1" = "--" ] && shift
	ei "$@" >"$T/.out" 2>"$T/.err"
	RC=$?
	OUT=$(<"$T/.out")
	ERR=$(<"$T/.err")
	if [ "$RC" -eq "$want" ]; then ok; else
		bad "edgeimg $* exited $RC, expected $want; stderr: $ERR"
	fi
}

# has DESC PATTERN TEXT: a line of TEXT matches the extended regex PATTERN
# (as grep -E would say; matched line by line in bash, without a process).
has() {
	if matches "$2" "$3"; then ok; else bad "$1: '$3' lacks /$2/"; fi
}

# entries DIR: the names in DIR, one a line, hidden ones too, as ls -A
# prints them (nothing when DIR is missing); in bash, without a process.
entries() {
	local f
	for f in "$1"/* "$1"/.[!.]* "$1"/..?*; do
		{ [ -e "$f" ] || [ -L "$f" ]; } && printf '%s\n' "${f##*/}"
	done
	return 0
}

# listing: what is in $T/o, where the tests' outputs go (a test with
# another place defines its own).
listing() { entries "$T/o"; }

# file_matches PATTERN FILE: a line of FILE matches the extended regex
# PATTERN (grep -qE, without a process).
file_matches() { matches "$1" "$(<"$2")"; }

# matches PATTERN TEXT: a line of TEXT matches the extended regex PATTERN.
# An invalid PATTERN is an error (status 2), as it is to grep.
matches() {
	local line rc
	while IFS= read -r line; do
		[[ $line =~ $1 ]]
		rc=$?
		[ $rc -eq 1 ] || break
	done <<<"$2"
	[ $rc -eq 2 ] && echo "matches: invalid regex /$1/" >&2
	return $rc
}

# need TOOL...: an oracle.  Missing under CI is a failure; elsewhere a skip.
need() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 && continue
		if [ -n "${CI:-}" ]; then
			bad "oracle '$t' is missing (CI must install it)"
		else
			echo "SKIP $NAME: oracle '$t' is missing"
			t_skip=$((t_skip + 1))
		fi
		done_tests
		exit
	done
}

# fixture DESC CMD...: run CMD, which makes an input of the test.  Its
# failure is a setup error reported with the tool's own message (never a
# silent pass, never a misleading fail later on); the status is returned
# so that the caller skips the checks that need the input.  Stdout passes
# through.  FIXTURE_TRIES=N runs a tool known to flake up to N times.
fixture() {
	local d=$1 tries=${FIXTURE_TRIES:-1} i
	shift
	for ((i = 1; i <= tries; i++)); do
		"$@" 2>"$T/.fixture-err" && return 0
		sleep 1
	done
	bad "setup error: $d: '$*' failed ($tries tries): $(tail -c 400 "$T/.fixture-err")"
	return 1
}

# chash FILE [LEN]: the content hash of src/delta/delta-format.md of the
# first LEN bytes of FILE (all of it by default): SHA-256 over the SHA-256
# of every 1 MiB leaf, then the length as 8 little-endian bytes; computed
# by Python's hashlib, not by edgeimg.
chash() {
	python3 - "$@" <<'PY'
import hashlib, os, struct, sys
path = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else os.path.getsize(path)
root, left = hashlib.sha256(), n
with open(path, "rb") as f:
    while left:
        leaf = f.read(min(1 << 20, left))
        if not leaf:
            sys.exit("chash: %s is shorter than %d bytes" % (path, n))
        root.update(hashlib.sha256(leaf).digest())
        left -= len(leaf)
root.update(struct.pack("<Q", n))
print(root.hexdigest())
PY
}

# kernel_mount IMG: loop-mount the squashfs IMG read-only at $T/mnt where
# the machine allows (root, loop devices, squashfs in the kernel); else say
# why as a SKIP line and return 1.
kernel_mount() {
	local why=""
	mkdir -p "$T/mnt"
	if [ "$(id -u)" != 0 ]; then
		why="not root"
	elif [ ! -e /dev/loop-control ] && [ ! -e /dev/loop0 ]; then
		why="no /dev/loop*"
	elif ! grep -qw squashfs /proc/filesystems && ! modprobe squashfs 2>/dev/null; then
		why="no squashfs in this kernel"
	elif ! mount -t squashfs -o loop,ro "$1" "$T/mnt" 2>"$T/mount.err"; then
		why="mount failed: $(head -c 200 "$T/mount.err")"
	fi
	if [ -n "$why" ]; then
		echo "SKIP kernel mount: $why"
		return 1
	fi
	return 0
}

# has_feature NAME: CONFIG_NAME is set in this build ($FEATURES, names
# separated by white space).
has_feature() {
	local f=" ${FEATURES:-} "
	[[ ${f//[$'\t\n']/ } == *" $1 "* ]]
}

# has_oracle TOOL: for one optional part of a test, true when TOOL is
# there; missing under CI is a failure (as need), elsewhere a skip.
has_oracle() {
	command -v "$1" >/dev/null 2>&1 && return 0
	if [ -n "${CI:-}" ]; then
		bad "oracle '$1' is missing (CI must install it)"
	else
		echo "SKIP $NAME: oracle '$1' is missing"
		t_skip=$((t_skip + 1))
	fi
	return 1
}

done_tests() {
	if [ "$t_skip" -gt 0 ]; then
		echo "$NAME: $t_pass passed, $t_fail failed, $t_skip skipped"
	else
		echo "$NAME: $t_pass passed, $t_fail failed"
	fi
	[ "$t_fail" -eq 0 ]
}

# recipe_level IMG ,level=N,: the ",level=1," in IMG's first 64 KiB (a
# qcow2's recipe extension) made to say ,level=N, (one digit, so that
# nothing moves): a container whose recipe lies about its blocks.
recipe_level() {
	python3 - "$1" "$2" <<'PY'
import sys
p, lvl = sys.argv[1], sys.argv[2].encode()
b = bytearray(open(p, 'rb').read(65536))
i = b.index(b',level=1,')
b[i:i + len(lvl)] = lvl
with open(p, 'r+b') as f:
    f.write(b)
PY
}

# mkdisk OUT [SIZE_MIB]: the sample disk of tests/mkdisk.sh.
mkdisk() { "$TOP/tests/mkdisk.sh" "$@"; }

# mkdisk_v2 V1 V2 SEED: V1 with three ranges rewritten (text and random
# bytes, from Python's random seeded with SEED), as a rebuilt appliance
# differs from the last one.
mkdisk_v2() {
	python3 - "$@" <<'PY'
import random, sys
b = bytearray(open(sys.argv[1], 'rb').read())
r = random.Random(int(sys.argv[3]))
for off in (3 << 20, 9 << 20):
    t = b''.join(b'line %d of the new version\n' % r.randrange(10**6) for _ in range(9000))
    b[off:off + len(t)] = t
b[12 << 20:(12 << 20) + 300000] = r.randbytes(300000)
open(sys.argv[2], 'wb').write(b)
PY
}

# codec_lib KEY: the KEY=VALUE a writer's recipe must carry for the library
# of codec family KEY (deflate, zstd, xz, lz4), as pkg-config reports the
# library this build links.
codec_lib() {
	case $1 in
	deflate)
		if has_feature DEFLATE_LIBDEFLATE; then
			echo "deflate=libdeflate-$(pkg-config --modversion libdeflate)"
		else
			echo "deflate=zlib-$(pkg-config --modversion zlib)"
		fi ;;
	zstd) echo "zstd=$(pkg-config --modversion libzstd)" ;;
	xz) echo "xz=$(pkg-config --modversion liblzma)" ;;
	lz4) echo "lz4=$(pkg-config --modversion liblz4)" ;;
	esac
}

# recipe_round_trip FMT IMG SRC OPTS DESC: IMG, which edgeimg wrote as FMT
# from SRC with -o OPTS, carries a recipe that "info" and "info --json"
# show alike, naming FMT, the writer and every KEY=VALUE of OPTS; given
# back verbatim as -o (from either, and with another writer= version) it
# writes IMG's bytes again.  The recipe is left in $RECIPE.
recipe_round_trip() {
	local fmt=$1 img=$2 src=$3 opts=$4 d=$5 json kv from r
	run_ei 0 -- info "$img"
	RECIPE=$(sed -n 's/^recipe: //p' <<<"$OUT")
	run_ei 0 -- info --json "$img"
	json=$(python3 -c 'import json,sys; print(json.load(sys.stdin).get("recipe", ""))' <<<"$OUT")
	check "$d: info and info --json show the same recipe" test "$RECIPE" = "$json"
	has "$d: the recipe names the format and the writer" "^format=$fmt,writer=[0-9]" "$RECIPE"
	for kv in ${opts//,/ }; do
		check "$d: the recipe has $kv" grep -q ",$kv\(,\|\$\)" <<<"$RECIPE"
	done
	for from in info json other-writer; do
		case $from in
		info) r=$RECIPE ;;
		json) r=$json ;;
		other-writer) r=$(sed -E 's/,writer=[^,]*,/,writer=0.0.9-rc1,/' <<<"$RECIPE") ;;
		esac
		rm -f "$T/rt.out"
		run_ei 0 -- convert -O "$fmt" -o "$r" "$src" "$T/rt.out"
		check "$d: convert -o <recipe, $from> gives the same bytes" cmp -s "$img" "$T/rt.out"
	done
	rm -f "$T/rt.out"
}
