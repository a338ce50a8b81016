#!/usr/bin/env bash
# requires: CODEC_ZSTD FORMAT_QCOW2 OUTPUT_QCOW2 OUTPUT_SQUASHFS
# SPDX-License-Identifier: MIT
# Faults are inputs too.  Under tests/fault/fault.c (LD_PRELOAD, so the host
# build only), the file-system calls edgeimg makes on the files of a command
# fail (EIO, ENOSPC), come back short, or are the moment the power goes,
# one point per run, for: convert to raw, qcow2 -c, squashfs, compressed raw
# (zstd) and Android sparse, a root filesystem and a tar archive from an
# ext4 image's files (--files),
# an incremental qcow2 build (--reuse); delta; apply into a file (raw, qcow2
# and root filesystem targets, and qemu-img's qcow2 rebuilt by a delta
# --exact patch), apply --resume from a half-done state, and, as root,
# apply into a loop device.
# A failed call must give a non-zero exit, a message that names the error,
# the operation and the file, no OUT and nothing left but apply's state;
# the same command again (convert, delta) or apply --resume must then give
# the fault-free result byte for byte.  A short write must be completed or
# reported.  After a power cut (unsynced writes lost or the last one torn,
# unsynced names undone, SIGKILL) an OUT in place must be right, and apply
# --resume or the same command again must finish with the fault-free
# result.  Results are judged by cmp, qemu-img compare/check, unsquashfs.
#
# The default is a deterministic sample of each command's fault points
# (FAULT_POINTS of them, default 20, 6 under ASan, and half as many short
# writes); FAULT_FULL=1 visits every point, each with both EIO and ENOSPC
# (but reads: EIO), and every write short.
# FAULT_SWEEPS="apply-file cut-apply ..." runs only the sweeps named.
. "$(dirname "$0")/../lib.sh"
need cmp qemu-img unsquashfs python3 zstd simg2img

if [ -n "${RUNNER:-}" ] || ! ldd $EDGEIMG >/dev/null 2>&1; then
	echo "SKIP $NAME: a static binary cannot be interposed (make check sweeps the host build)"
	t_skip=$((t_skip + 1))
	done_tests
	exit
fi
if [ ! -f "${FAULT_LIB:-}" ]; then
	if [ -n "${CI:-}" ]; then
		bad "no fault library FAULT_LIB='${FAULT_LIB:-}' for a dynamic binary under CI (make check builds it)"
	else
		echo "SKIP $NAME: no fault library (make check builds it for the host build)"
		t_skip=$((t_skip + 1))
	fi
	done_tests
	exit
fi
budget=${FAULT_POINTS:-$([ -n "${SAN:-}" ] && echo 6 || echo 20)}
[ "${FAULT_FULL:-}" = 1 ] && budget=0
asan=
[ -n "${SAN:-}" ] && asan="verify_asan_link_order=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

W=$T/w
mkdir -p "$W"
dev=
trap '[ -n "$dev" ] && losetup -d "$dev"; rm -rf "$T"' EXIT
FM="$W/*:$W"

# --- inputs: 2 MiB disks of text, random bytes and holes --------------------
seq 1 100000 | head -c 524288 >"$T/text"
truncate -s 2M "$W/old.raw"
dd if="$T/text" of="$W/old.raw" conv=notrunc status=none
head -c 262144 /dev/urandom | dd of="$W/old.raw" bs=256k seek=2 conv=notrunc status=none
dd if="$T/text" of="$W/old.raw" bs=512k seek=2 conv=notrunc status=none
head -c 150000 /dev/urandom | dd of="$W/old.raw" bs=1k seek=1800 conv=notrunc status=none
cp "$W/old.raw" "$W/new.raw"
head -c 100000 /dev/urandom | dd of="$W/new.raw" bs=1k seek=50 conv=notrunc status=none
seq 5 5999 | dd of="$W/new.raw" bs=1k seek=1250 conv=notrunc status=none
check "inputs: OLD and NEW differ" sh -c "! cmp -s '$W/old.raw' '$W/new.raw'"

# fe ENV... -- ARGS: edgeimg ARGS under the interposer, watching $FM, its
# syncs left to the model (FAULT_NOSYNC); stdout in $T/o, stderr in $T/e,
# the exit status in RC.
fe() {
	local envs=()
	while [ "$1" != "--" ]; do envs+=("$1"); shift; done
	shift
	# (braces: bash's "Killed" after a power cut goes to /dev/null)
	{ (
		export LD_PRELOAD="$FAULT_LIB" FAULT_MATCH="$FM" FAULT_NOSYNC=1 \
			${asan:+ASAN_OPTIONS=$asan} "${envs[@]}"
		exec $EDGEIMG "$@"
	) >"$T/o" 2>"$T/e"; } 2>/dev/null
	RC=$?
	ERRS=
	read -r -d '' ERRS <"$T/e"
	ERRS=${ERRS//$'\n'/ | }
}

# (the harness runs few programs: a sweep runs edgeimg thousands of times)
shopt -s dotglob nullglob
# extra: the files of $W that are neither in $L0 nor OUT, in EXTRA.
extra() {
	local f
	EXTRA=
	for f in "$W"/*; do
		f=${f##*/}
		[[ " $L0 " == *" $f "* || $f == "${OUTPATH##*/}" ]] || EXTRA+="$f "
	done
}
# rmf FILE...: rm -f those that exist (no program run when none does).
rmf() {
	local f e=()
	for f; do [ -e "$f" ] && e+=("$f"); done
	[ ${#e[@]} -eq 0 ] || rm -f "${e[@]}"
}
listing() {
	local f
	L0=
	for f in "$W"/*; do L0+="${f##*/} "; done
}
sweep() { [ -z "${FAULT_SWEEPS:-}" ] || [[ " $FAULT_SWEEPS " == *" $1 "* ]]; }
# made DESC: the fe run that made an input of the test succeeded.
made() { [ "$RC" -eq 0 ] || { bad "setup error: $1: exit $RC: $ERRS"; return 1; }; }
add() { S[$1]=$((${S[$1]:-0} + 1)); }
declare -A S

# The command under test writes OUT: $OUTPATH (a file) or $OUTDEV (a
# device); $REF is the fault-free result; apply's state is $PREFIX.*.
result_ok() {
	if [ -n "$OUTDEV" ]; then
		cmp -s -n "$REFSIZE" "$REF" "$OUTDEV"
	else
		cmp -s "$REF" "$OUTPATH"
	fi
}

# reset_out: no file OUT; a device OUT filled with other bytes, so that a
# write that did not happen cannot pass for one that did.
reset_out() {
	if [ -n "$OUTDEV" ]; then
		dd if="$T/junk" of="$OUTDEV" bs=1M status=none
	else
		rmf "$OUTPATH"
	fi
}

# done_ok: the directory holds $L0 and OUT (a file), nothing else.
done_ok() {
	extra
	[ -z "$EXTRA" ] && { [ -n "$OUTDEV" ] || [ -e "$OUTPATH" ]; }
}

# state_only [lock]: nothing but $L0 and apply's state, PREFIX.edgeimg-apply
# and -part (and the lock file a killed apply leaves).
state_only() {
	local f
	extra
	for f in $EXTRA; do
		[ -n "$PREFIX" ] || return 1
		case $f in
		"$PREFIX.edgeimg-apply" | "$PREFIX.edgeimg-part") ;;
		"$PREFIX.edgeimg-lock") [ "${1:-}" = lock ] || return 1 ;;
		*) return 1 ;;
		esac
	done
}

# count OPS -- ARGS: the points of ARGS for the kinds OPS in NPTS, and the
# calls of each kind in KINDS; the run must succeed with the fault-free OUT.
count() {
	local ops=$1
	shift 2
	rm -f "$T/cnt"
	reset_out
	$PRE
	fe FAULT_COUNT="$T/cnt" FAULT_OPS="$ops" -- "$@"
	NPTS=$(sed -n 's/^points //p' "$T/cnt" 2>/dev/null)
	KINDS=$(grep -v '^points' "$T/cnt" 2>/dev/null | tr '\n' ' ' | sed 's/ $//')
	if [ "$RC" -ne 0 ] || [ "${NPTS:-0}" -eq 0 ] || ! result_ok; then
		bad "setup error: counting 'edgeimg $*' (exit $RC, ${NPTS:-no} points; a static binary?): $ERRS"
		NPTS=0
		return 1
	fi
	reset_out
}

# pick N [B]: the points a sweep visits: all of 1..N when FAULT_FULL=1 or N
# is within the budget B ($budget), else B of them spread evenly, the last
# included.
pick() {
	local n=$1 b=${2:-$budget} k
	if [ "$b" -eq 0 ] || [ "$n" -le "$b" ]; then
		seq 1 "$n"
		return
	fi
	for ((k = 0; k < b - 1; k++)); do echo $((k * n / b + 1)); done
	echo "$n"
}

# faulted: the fault log's line as FK (kind), FF (function), FE (errno
# name), FP (path).
faulted() {
	FK= FF= FE= FP=
	[ -s "$T/flog" ] && read -r _ _ FK FF FE FP <"$T/flog"
}

# msg_ok: stderr names the error, the operation and the file: the faulted
# one (the final name of a .tmp, the directory for a directory), or OUT for
# a temporary that becomes OUT (unnamed, hidden, OUT.edgeimg-out or -part).
msg_ok() {
	local base=${FP##*/} op etext= out=${OUTDEV:-$OUTPATH}
	base=${base%.tmp}
	out=${out##*/}
	case $FP in
	*"/#"*" (deleted)" | */.*.edgeimg-*) base=$out ;;
	"$W/$out.edgeimg-out" | "$W/$out.edgeimg-part") [[ $ERRS == *"$base"* ]] || base=$out ;;
	"$W" | "$W/.") base=$W ;;
	esac
	case $FE in
	EIO) etext="Input/output error" ;;
	ENOSPC) etext="No space left on device" ;;
	esac
	case $FK in
	open) op='.' ;;         # "FILE: strerror" is how a failed open reads
	read) op='read' ;;
	write) op='writ' ;;
	sync) op='sync' ;;
	rename) op='renam|in place' ;;
	link) op='link' ;;
	trunc) op='truncat' ;;
	chmod) op='chmod' ;;
	*) op='.' ;;
	esac
	[[ $ERRS == *"$base"* && $ERRS =~ $op && $ERRS == *"$etext"* ]]
}

# tolerated ARGS: a failed call edgeimg may survive by design, with the
# same result; its reason in TOL: advice (sync_file_range), a hole punch or
# BLKZEROOUT that falls back to writing zeros, an O_TMPFILE that falls back
# to a named temporary, a probe of an input that is then read in earnest
# (is OLD a patch?), a checkpoint apply without --resume discards anyway,
# the removal of a file no longer needed (once OUT is committed: a file
# that stays must be named in a note).
tolerated() {
	local f
	TOL=
	case $FK in
	sfr) TOL=advice ;;
	alloc | ioctl) TOL="zeros written" ;;
	open | read)
		if [ "$FK" = open ] && { [ "$FP" = "$W/." ] || [ "$FP" = "$W" ]; }; then
			TOL="named temporary"
		elif [[ " $L0 " == *" ${FP##*/} "* ]]; then
			TOL="input probe"
		elif [ "$FP" = "$W/$PREFIX.edgeimg-apply" ] && [[ " $* " != *" --resume "* ]]; then
			TOL="checkpoint discarded"
		fi ;;
	unlink)
		extra
		for f in $EXTRA; do [[ $ERRS == *"$f"* ]] || return 1; done
		TOL="left and named" ;;
	esac
	[ -n "$TOL" ]
}

# follow HOW ARGS: after a fault, without one: ARGS again ("again"), or
# apply --resume ARGS-but-the-verb ("resume"); the fault-free result,
# nothing else left.
follow() {
	local how=$1 out=
	shift
	if [ "$how" = again ]; then
		fe -- "$@"
	else
		fe -- apply --resume --json "${@:2}"
	fi
	if [ "$RC" -ne 0 ]; then
		bad "$LABEL: then $how: exit $RC: $ERRS"
	elif ! result_ok; then
		bad "$LABEL: then $how: OUT differs from the fault-free one"
	elif ! done_ok; then
		bad "$LABEL: then $how: left behind: $EXTRA"
	else
		ok
		add again
		[ "$how" = resume ] && read -r -d '' out <"$T/o"
		[ "$how" = resume ] && [[ $out != *'"first-chunk": 0,'* ]] && add resumed
	fi
	reset_out
}

stale='No such file or directory|Input/output error|Bad file descriptor|Invalid argument|Success|Resource temporarily|Permission denied|File exists'

# judge ERR HOW ARGS: the outcome of one faulted run of ARGS.
judge() {
	local e=$1 how=$2
	shift 2
	if [ -z "$FK" ]; then
		add notreached
		reset_out
		return 1
	fi
	[ "$e" = short ] || add pts
	if [ "$RC" -eq 0 ]; then
		if [ "$e" = short ]; then
			add scomp
		elif tolerated "$@"; then
			add tol
			[[ ${S[tolk]:-} == *"$FK: $TOL"* ]] || S[tolk]="${S[tolk]:+${S[tolk]}, }$FK: $TOL"
			done_ok || S[left]="${S[left]:+${S[left]}, }${EXTRA}after $FK"
		else
			bad "$LABEL: the fault was swallowed: exit 0"
		fi
		if result_ok; then ok; else bad "$LABEL: exit 0 but OUT differs from the fault-free one"; fi
		reset_out
		rmf "$W"/*.edgeimg-lock
		return 0
	fi
	if [ "$RC" -gt 128 ]; then
		bad "$LABEL: killed by signal $((RC - 128)): ${ERRS: -600}"
		reset_out
		return 0
	fi
	if [ "$e" = short ]; then add srep; else add refused; fi
	if msg_ok; then ok; else
		bad "$LABEL: exit $RC, but the message does not name the error, the operation and the file: $ERRS"
	fi
	# a short write sets no errno: a reason other than "no space" is stale
	if [ "$e" = short ] && [[ $ERRS =~ $stale ]]; then
		bad "$LABEL: a short write reported with a reason it did not have: $ERRS"
	fi
	if [ -z "$OUTDEV" ] && [ -e "$OUTPATH" ]; then
		bad "$LABEL: exit $RC, yet OUT was committed"
		rmf "$OUTPATH"
	elif ! state_only; then
		bad "$LABEL: left behind: $EXTRA"
	else
		ok
	fi
	follow "$how" "$@"
}

# fault_sweep NAME HOW -- ARGS: a fault at each (picked) point of edgeimg
# ARGS, judged, then HOW (again, resume); then a short write at each
# (picked) write.  $PRE, when set, runs before each run of ARGS.
fault_sweep() {
	local name=$1 how=$2 i e npts
	shift 3
	listing
	count all -- "$@" || return
	npts=$NPTS
	for i in $(pick "$npts"); do
		add uniq
		for e in EIO ENOSPC; do
			# the sample: EIO at odd points, ENOSPC at even ones
			[ "${FAULT_FULL:-}" != 1 ] && [ $((i % 2)) -eq $([ $e = EIO ] && echo 0 || echo 1) ] && continue
			$PRE
			: >"$T/flog"
			fe FAULT_AT="$i" FAULT_ERR="$e" FAULT_LOG="$T/flog" -- "$@"
			faulted
			LABEL="$name: $FE at call $i ($FK $FF $FP)"
			judge "$e" "$how" "$@" || continue
			[ "$FK" = read ] && break       # a read fails with EIO only
		done
	done
	count write -- "$@" || return
	for i in $(pick "$NPTS" $(((budget + 1) / 2))); do
		$PRE
		: >"$T/flog"
		fe FAULT_AT="$i" FAULT_ERR=short FAULT_OPS=write FAULT_LOG="$T/flog" -- "$@"
		faulted
		LABEL="$name: short write at write $i ($FF $FP)"
		add short
		judge short "$how" "$@"
	done
	[ "${S[pts]:-0}" -gt 0 ] || bad "$name: no fault was reached (${S[notreached]:-0} points not reached)"
	echo "fault: $name: calls: ${KINDS}; $npts points, ${S[pts]:-0} faults at ${S[uniq]:-0} of them: ${S[refused]:-0} refused cleanly, ${S[tol]:-0} tolerated (${S[tolk]:-none}${S[left]:+; left: ${S[left]}}), ${S[notreached]:-0} not reached; ${S[short]:-0} short writes: ${S[scomp]:-0} completed, ${S[srep]:-0} reported; then ${S[again]:-0} identical by $how${S[resumed]:+ (${S[resumed]} from a checkpoint)}"
	S=()
}

# cut_sweep NAME HOW -- ARGS: cut the power at each (picked) point of ARGS,
# the last write torn when there is one to tear (with FAULT_FULL=1, then
# lost too), then HOW: the fault-free result; an OUT in place after the
# cut must be it.
cut_sweep() {
	local name=$1 how=$2 i log torn
	shift 3
	listing
	count mut -- "$@" || return
	for i in $(pick "$NPTS"); do
		add uniq
		for torn in 1 0; do
			cut_at "$name" "$i" "$torn" "$how" "$@"
			[ "${FAULT_FULL:-}" = 1 ] && [[ $log == *$'\n'torn* ]] || break
		done
	done
	echo "fault: $name: $NPTS points, ${S[cuts]:-0} power cuts at ${S[uniq]:-0} of them (${S[torn]:-0} with a torn write): ${S[committed]:-0} found OUT committed, ${S[again]:-0} then finished identically by $how${S[resumed]:+ (${S[resumed]} from a checkpoint)}${S[left]:+; ${S[left]} cuts left a file that is not apply state}"
	S=()
}

# cut_at NAME I TORN HOW ARGS: one power cut at call I, then HOW; the
# fault log in "log".
cut_at() {
	local name=$1 i=$2 torn=$3 how=$4
	shift 4
	: >"$T/flog"
	fe FAULT_CUT="$i" FAULT_OPS=mut FAULT_TORN="$torn" FAULT_LOG="$T/flog" -- "$@"
	faulted
	LABEL="$name: power cut at call $i ($FK $FF $FP)"
	add cuts
	log=
	read -r -d '' log <"$T/flog"
	if [ "$RC" -ne 137 ] || [[ $log != cut* ]]; then
		bad "$LABEL: no cut (exit $RC): $log ${ERRS: -400}"
		reset_out
		return
	fi
	[[ $log == *$'\n'torn* ]] && add torn && LABEL+=", the last write torn"
	if [ -e "$OUTPATH" ]; then
		if result_ok; then ok; else bad "$LABEL: a wrong OUT was committed"; fi
		add committed
		rmf "$OUTPATH"
	fi
	state_only lock || add left
	follow "$how" "$@"
	rmf "$W"/*.edgeimg-*
}

# pin NAME HOW ERR MATCH ENV... -- ARGS: one fault, at a call MATCH and ENV
# pick out, judged as in a sweep (ERR: EIO or short) and followed by HOW.
pin() {
	local name=$1 how=$2 e=$3 fm=$FM envs=()
	FM=$4
	shift 4
	while [ "$1" != "--" ]; do envs+=("$1"); shift; done
	shift
	listing
	: >"$T/flog"
	fe "${envs[@]}" FAULT_LOG="$T/flog" -- "$@"
	FM=$fm
	faulted
	LABEL="$name ($FK $FF $FP)"
	judge "$e" "$how" "$@" || bad "setup error: $name: the call was not reached"
	S=()
}

# --- the fault layer itself, on a few calls of Python's whose outcome is known
cat >"$T/model.py" <<'PY'
import os, sys
d, step = sys.argv[1], sys.argv[2]
p = lambda n: os.path.join(d, n)
def put(name, data, off=0, sync=False):
    fd = os.open(p(name), os.O_RDWR | os.O_CREAT, 0o644)
    n = os.pwrite(fd, data, off)
    if sync:
        os.fsync(fd)
    os.close(fd)
    return n
def dsync():
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(fd)
    os.close(fd)
if step == "setup":
    put("f", b"A" * 8192, sync=True); put("g", b"G" * 100, sync=True)
    put("h", b"H" * 100, sync=True); dsync()
elif step == "run":             # the calls, numbered as FAULT_OPS=mut counts them
    put("f", b"B" * 4096, 0)                    # 1 open, 2 write: unsynced
    put("f", b"C" * 4096, 8192)                 # 3 open, 4 write: unsynced, grows f
    put("n", b"N" * 100, sync=True)             # 5 open (a new name), 6 write, 7 fsync
    os.rename(p("g"), p("h"))                   # 8 rename over h
    if "fsync" in sys.argv:
        fd = os.open(p("f"), os.O_RDWR); os.fsync(fd); os.close(fd)
    if "dsync" in sys.argv:
        dsync()
    put("z", b"Z", sync=True)
elif step == "short":
    print(put("f", b"S" * 4096))
else:                           # what the directory holds: NAME:RUNS...
    out = []
    for n in sorted(os.listdir(d)):
        b, runs = open(p(n), "rb").read(), []
        for c in b:
            if runs and runs[-1][0] == c:
                runs[-1][1] += 1
            else:
                runs.append([c, 1])
        out.append(n + ":" + "".join("%c%d" % (c, k) for c, k in runs))
    print(" ".join(out))
PY
# model CUT TORN ARGS: run the model's calls, cut at CUT; in MODEL what is left.
model() {
	local fm=$FM
	rm -rf "$T/m"
	mkdir "$T/m"
	python3 "$T/model.py" "$T/m" setup
	FM="$T/m/*:$T/m"
	{ ( export LD_PRELOAD="$FAULT_LIB" FAULT_MATCH="$FM" FAULT_OPS=mut FAULT_CUT=$1 FAULT_TORN=$2
	    exec python3 "$T/model.py" "$T/m" run "${@:3}" ) >/dev/null 2>&1; } 2>/dev/null
	RC=$?
	FM=$fm
	MODEL=$(python3 "$T/model.py" "$T/m" list)
}
model 9 0
check "model: unsynced writes and names are undone by a cut (exit $RC, left: $MODEL)" \
	test "$RC $MODEL" = "137 f:A8192 g:G100 h:H100"
model 3 1
check "model: a torn last write keeps its first half (exit $RC, left: $MODEL)" \
	test "$RC $MODEL" = "137 f:B2048A6144 g:G100 h:H100"
model 11 0 fsync
check "model: fsync keeps a file's writes, not its directory's names (left: $MODEL)" \
	test "$MODEL" = "f:B4096A4096C4096 g:G100 h:H100"
model 11 0 dsync
check "model: a directory's fsync keeps its names, not the data (left: $MODEL)" \
	test "$MODEL" = "f:A8192 h:G100 n:N100"
out=$( (export LD_PRELOAD="$FAULT_LIB" FAULT_MATCH="$T/m/*" FAULT_AT=2 FAULT_ERR=ENOSPC
	exec python3 "$T/model.py" "$T/m" run) 2>&1)
has "model: the 2nd call fails with ENOSPC" "No space left on device" "$out"
out=$( (export LD_PRELOAD="$FAULT_LIB" FAULT_MATCH="$T/m/*" FAULT_AT=1 FAULT_ERR=short
	exec python3 "$T/model.py" "$T/m" short) 2>&1)
has "model: a short write moves half" "^2048$" "$out"
rm -rf "$T/m"

# --- convert to each writer, and delta ---------------------------------------
OUTDEV= PREFIX= PRE=
writers=(raw qcow2 squashfs)
has_feature FORMAT_CRAW && has_feature CODEC_ZSTD && writers+=(craw)
has_feature FORMAT_SIMG && writers+=(simg)
for w in "${writers[@]}"; do
	case $w in
	raw) args=(convert -O raw) ;;
	craw) args=(convert -j 2 -O craw -o compression=zstd,level=1,block_size=256k) ;;
	simg) args=(convert -O simg -o crc=on) ;;
	qcow2) args=(convert -j 2 -O qcow2 -c) ;;
	squashfs) args=(convert -j 1 -O squashfs -o compression=gzip,level=1) ;;
	esac
	OUTPATH=$W/c.$w REF=$T/ref.$w
	fe -- "${args[@]}" "$W/old.raw" "$OUTPATH"
	made "convert to $w" || continue
	mv "$OUTPATH" "$REF"
	case $w in
	raw) check "convert raw: OUT is IN" cmp -s "$W/old.raw" "$REF" ;;
	qcow2)
		check "convert qcow2 -c: qemu-img check" qemu-img check -q "$REF"
		check "convert qcow2 -c: qemu-img compare" qemu-img compare -q -f raw -F qcow2 "$W/old.raw" "$REF" ;;
	squashfs)
		check "convert squashfs: unsquashfs -cat disk.img is IN" \
			sh -c "unsquashfs -cat '$REF' disk.img | cmp -s - '$W/old.raw'" ;;
	craw)
		check "convert craw zstd: zstd -d gives IN" \
			sh -c "zstd -dcq '$REF' | cmp -s - '$W/old.raw'" ;;
	simg)
		check "convert simg: simg2img gives IN" \
			sh -c "simg2img '$REF' '$T/simg.raw' && cmp -s '$T/simg.raw' '$W/old.raw'" ;;
	esac
	sweep "convert-$w" && fault_sweep "convert-$w" again -- "${args[@]}" "$W/old.raw" "$OUTPATH"
	sweep "cut-convert-$w" && cut_sweep "cut-convert-$w" again -- "${args[@]}" "$W/old.raw" "$OUTPATH"
done
# a root filesystem from an ext4 image's files (--files): the same sweeps
if has_feature FILES_EXT; then
	mkdir -p "$T/ftree"
	cp "$T/text" "$T/ftree/a"
	head -c 300000 /dev/urandom >"$T/ftree/b"
	ln -s a "$T/ftree/l"
	fixture "mkfs.ext4" mkfs.ext4 -q -d "$T/ftree" "$W/fs.ext4" 4M
	args=(convert --files -j 1 -O squashfs -o compression=gzip,level=1)
	OUTPATH=$W/c.rootfs REF=$T/ref.rootfs
	fe -- "${args[@]}" "$W/fs.ext4" "$OUTPATH"
	if made "convert --files"; then
		mv "$OUTPATH" "$REF"
		check "convert --files: unsquashfs -cat b is the file" \
			sh -c "unsquashfs -cat '$REF' b | cmp -s - '$T/ftree/b'"
		sweep convert-files && fault_sweep convert-files again -- "${args[@]}" "$W/fs.ext4" "$OUTPATH"
		sweep cut-convert-files && cut_sweep cut-convert-files again -- "${args[@]}" "$W/fs.ext4" "$OUTPATH"
	fi
	# the same tree as a tar archive (libarchive writes it)
	if has_feature FILES_TAR; then
		OUTPATH=$W/c.tar REF=$T/ref.tar
		fe -- convert --files -O tar "$W/fs.ext4" "$OUTPATH"
		if made "convert --files -O tar"; then
			mv "$OUTPATH" "$REF"
			check "convert --files -O tar: tar -xO b is the file" \
				sh -c "tar -xOf '$REF' ./b | cmp -s - '$T/ftree/b'"
			sweep convert-tar && fault_sweep convert-tar again -- \
				convert --files -O tar "$W/fs.ext4" "$OUTPATH"
			sweep cut-convert-tar && cut_sweep cut-convert-tar again -- \
				convert --files -O tar "$W/fs.ext4" "$OUTPATH"
		fi
	fi
	rm -f "$W/fs.ext4"
fi

# the fsync of the directory after the rename fails: OUT was not committed
OUTPATH=$W/c.raw REF=$T/ref.raw
pin "convert: the fsync that makes the rename durable fails" again EIO "$W" \
	FAULT_OPS=sync FAULT_AT=1 -- convert -O raw "$W/old.raw" "$OUTPATH"

OUTPATH=$W/p REF=$T/ref.delta
fe -- delta -j 1 "$W/old.raw" "$W/new.raw" "$OUTPATH"
made "delta" && mv "$OUTPATH" "$REF"
fe -- apply "$W/old.raw" "$REF" "$T/new.check"
made "apply" && check "delta: the fault-free patch applies to NEW" cmp -s "$W/new.raw" "$T/new.check"
sweep delta && fault_sweep delta again -- delta -j 1 "$W/old.raw" "$W/new.raw" "$OUTPATH"
sweep cut-delta && cut_sweep cut-delta again -- delta -j 1 "$W/old.raw" "$W/new.raw" "$OUTPATH"
cp "$REF" "$W/p"

# --- apply into a file: a raw target, a qcow2 target ---------------------------
OUTPATH=$W/n.raw PREFIX=n.raw REF=$W/new.raw
sweep apply-file && fault_sweep apply-file resume -- apply "$W/old.raw" "$W/p" "$OUTPATH"
sweep cut-apply && cut_sweep cut-apply resume -- apply "$W/old.raw" "$W/p" "$OUTPATH"
# apply --resume from the state of an apply that failed half-way
state() { cp "$T/state/"* "$W/"; }
if sweep apply-resume && FM="$W/$PREFIX.edgeimg-part" count write -- apply "$W/old.raw" "$W/p" "$OUTPATH"; then
	FM="$W/$PREFIX.edgeimg-part" fe FAULT_OPS=write FAULT_AT=$((NPTS / 2)) -- apply "$W/old.raw" "$W/p" "$OUTPATH"
	mkdir -p "$T/state"
	mv "$W/$PREFIX".edgeimg-* "$T/state/"
	check "apply-resume: the state of a failed apply (exit $RC)" test -f "$T/state/$PREFIX.edgeimg-apply"
	PRE=state
	fault_sweep apply-resume resume -- apply --resume --json "$W/old.raw" "$W/p" "$OUTPATH"
	PRE=
	# the checkpoint cannot be read: an I/O error, not a bad checkpoint to remove
	state
	pin "apply --resume: the read of the checkpoint fails" resume EIO "$W/$PREFIX.edgeimg-apply" \
		FAULT_OPS=read FAULT_AT=1 -- apply --resume "$W/old.raw" "$W/p" "$OUTPATH"
	rm -rf "$T/state"
fi
# the commit's directory fsync (the last one) fails: no OUT, then --resume
FM=$W count sync -- apply "$W/old.raw" "$W/p" "$OUTPATH" &&
	pin "apply: the fsync that makes the rename durable fails" resume EIO "$W" \
		FAULT_OPS=sync FAULT_AT="$NPTS" -- apply "$W/old.raw" "$W/p" "$OUTPATH"
# a short write of the checkpoint: completed, or reported for what it is
pin "apply: a short write of the checkpoint" resume short "$W/*.edgeimg-apply.tmp" \
	FAULT_OPS=write FAULT_ERR=short FAULT_AT=1 -- apply "$W/old.raw" "$W/p" "$OUTPATH"

fe -- delta -j 1 -O qcow2 "$W/old.raw" "$W/new.raw" "$W/pq"
made "delta -O qcow2"
fe -- apply "$W/old.raw" "$W/pq" "$T/ref.apply-qcow2"
made "apply, qcow2 target" && check "apply, qcow2 target: qemu-img compare with NEW" \
	qemu-img compare -q -f raw -F qcow2 "$W/new.raw" "$T/ref.apply-qcow2"
OUTPATH=$W/n.qcow2 PREFIX=n.qcow2 REF=$T/ref.apply-qcow2
sweep apply-qcow2 && fault_sweep apply-qcow2 resume -- apply "$W/old.raw" "$W/pq" "$OUTPATH"
sweep cut-apply-qcow2 && cut_sweep cut-apply-qcow2 resume -- apply "$W/old.raw" "$W/pq" "$OUTPATH"
# a write of the container fails: the half-built container is not kept
pin "apply: a write of the qcow2 container fails" resume EIO "$W/n.qcow2.edgeimg-out" \
	FAULT_OPS=write FAULT_AT=1 -- apply "$W/old.raw" "$W/pq" "$OUTPATH"
rm -f "$W/pq"

# a root filesystem's patch: OLD read as its file-tree view, NEW's root
# filesystem rebuilt from the decoded view by the squashfs writer
if has_feature FILES_EXT && [ -f "$T/ref.rootfs" ]; then
	mkdir -p "$T/ftree2"
	cp -a "$T/ftree/." "$T/ftree2/"
	head -c 100000 /dev/urandom >"$T/ftree2/c"
	echo more >>"$T/ftree2/a"
	if fixture "mkfs.ext4" mkfs.ext4 -q -d "$T/ftree2" "$T/fs2.ext4" 4M >/dev/null; then
		fe -- convert --files -j 1 -O squashfs -o compression=gzip,level=1 "$T/fs2.ext4" "$T/ref.rootfs2"
		made "convert --files of the second tree"
		cp "$T/ref.rootfs" "$W/old.sqfs"
		fe -- delta -j 1 "$W/old.sqfs" "$T/ref.rootfs2" "$W/pr"
		if made "delta between root filesystems"; then
			OUTPATH=$W/n.sqfs PREFIX=n.sqfs REF=$T/ref.rootfs2
			sweep apply-rootfs && fault_sweep apply-rootfs resume -- apply "$W/old.sqfs" "$W/pr" "$OUTPATH"
			sweep cut-apply-rootfs && cut_sweep cut-apply-rootfs resume -- apply "$W/old.sqfs" "$W/pr" "$OUTPATH"
		fi
		rm -f "$W/pr" "$W/old.sqfs" "$T/fs2.ext4"
	fi
fi

# An incremental build of NEW's qcow2 given OLD's (convert --reuse); the
# compressed qcow2 of OLD and NEW that qemu-img made, and a delta --exact
# patch between them, whose apply rebuilds qemu-img's file byte for byte (the
# repack writer, copying OLD's clusters where NEW's are the same)
if fixture "qemu-img convert -c of OLD" qemu-img convert -c -O qcow2 "$W/old.raw" "$T/old.qcow2" &&
	fixture "qemu-img convert -c of NEW" qemu-img convert -c -O qcow2 "$W/new.raw" "$T/ref.exact"; then
	cp "$T/old.qcow2" "$W/old.qcow2"
	cp "$T/ref.qcow2" "$W/old-ei.qcow2"
	OUTPATH=$W/r.qcow2 REF=$T/ref.reuse
	fe -- convert -j 2 -O qcow2 -c "$W/new.raw" "$REF"
	made "convert -c of NEW" && sweep convert-reuse && fault_sweep convert-reuse again -- \
		convert -j 2 -O qcow2 -c --reuse "$W/old-ei.qcow2" "$W/new.raw" "$OUTPATH"
	rm -f "$W/old-ei.qcow2"
	fe -- delta -j 1 --exact "$W/old.qcow2" "$T/ref.exact" "$W/px"
	if made "delta --exact"; then
		OUTPATH=$W/n.qcow2 PREFIX=n.qcow2 REF=$T/ref.exact
		sweep apply-exact && fault_sweep apply-exact resume -- apply "$W/old.qcow2" "$W/px" "$OUTPATH"
		sweep cut-apply-exact && cut_sweep cut-apply-exact resume -- \
			apply "$W/old.qcow2" "$W/px" "$OUTPATH"
	fi
	rm -f "$W/px" "$W/old.qcow2"
fi

# --- apply into a loop device standing in for an inactive A/B slot -------------
if ! sweep apply-device; then
	:
elif [ "$(id -u)" = 0 ] && truncate -s 3M "$T/slot.img" &&
   dev=$(losetup -f --show "$T/slot.img" 2>/dev/null); then
	head -c $((3 << 20)) /dev/urandom >"$T/junk"
	OUTDEV=$dev OUTPATH= PREFIX=slot REF=$W/new.raw REFSIZE=$(stat -c %s "$W/new.raw")
	FM="$W/*:$W:$dev"
	fault_sweep apply-device resume -- apply --state "$W/slot" "$W/old.raw" "$W/p" "$dev"
	FM="$W/*:$W" OUTDEV=
	losetup -d "$dev"
	dev=
elif [ -n "${CI:-}" ]; then
	bad "loop devices are needed (root and /dev/loop*) and missing under CI: apply into a device was not swept"
else
	echo "SKIP $NAME: no loop device (needs root and /dev/loop*): apply into a device was not swept"
	t_skip=$((t_skip + 1))
fi

times >"$T/times"
echo "fault: CPU time of the commands run: $(tail -n 1 "$T/times")"
done_tests
