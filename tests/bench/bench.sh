#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench.sh EDGEIMG CORPUS_DIR [SECTION...]: edgeimg side by side with its
# peers on the corpus of ../shared/bench/make-corpus.sh, in one run, on one
# machine.  Prints wall time, CPU time, peak RSS and output size of both
# tools and the ratios edgeimg/peer.  Sections: read qcow2 squashfs
# flash rootfs delta (default: all that this binary supports).  Scratch space: $BENCH_TMP.
# The read, qcow2 and squashfs rows are the best of $BENCH_REPEAT (3) runs
# of each tool, alternating; the delta rows are single runs.
set -u
ei=$1 corpus=$2
shift 2
sections=${*:-read qcow2 squashfs flash rootfs delta}
tmp=${BENCH_TMP:-$(dirname "$ei")/bench-tmp}
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
cores=$(nproc)
features=$("$ei" --version | sed -n 's/^features: //p')
has() { grep -qw "$1" <<<"$features"; }

# measure VAR CMD...: run CMD, set VAR_wall VAR_cpu VAR_rss (KiB); fail loudly.
measure() {
	local var=$1 rc=0
	shift
	sync
	/usr/bin/time -f '%e %U %S %M' "$@" >/dev/null 2>"$tmp/.err" || rc=$?
	if [ $rc -ne 0 ] || ! read -r w u s m <<<"$(tail -n 1 "$tmp/.err")" ||
		[[ ! $w =~ ^[0-9.]+$ ]]; then
		echo "bench: '$*' failed:" >&2
		cat "$tmp/.err" >&2
		exit 1
	fi
	printf -v "${var}_wall" '%s' "$w"
	printf -v "${var}_cpu" '%s' "$(awk -v u="$u" -v s="$s" 'BEGIN{printf "%.2f", u+s}')"
	printf -v "${var}_rss" '%s' "$m"
}

# Every peer's output is synced to disk inside its measured time, as
# edgeimg syncs its own before the rename: both then end with the output
# on stable storage.  Usage: measure p "${synced[@]}" OUT PEER-COMMAND...
synced=(bash -c '"${@:2}" && sync -- "$1"' synced)

verdicts=()
# verdict TEXT VALUE LIMIT: "ok" when VALUE <= LIMIT.
verdict() {
	verdicts+=("$(awk -v t="$1" -v v="$2" -v l="$3" \
		'BEGIN{printf "  %-58s %8s <= %-6s %s", t, v, l, (v != "-" && v + 0 <= l + 0) ? "ok" : "MISSED"}')")
}

# pair LABEL-FREE: runs the edgeimg command (array ecmd, output eout) and
# the peer's (pcmd, pout) $rep times, alternating, each from a removed
# output, and keeps for each side the run with the shortest wall time
# (e_* and p_*): a shared machine's noise only ever adds time.
rep=${BENCH_REPEAT:-3}
pair() {
	local k
	for ((k = 0; k < rep; k++)); do
		rm -f "$eout"
		measure t "${ecmd[@]}"
		if [ $k -eq 0 ] || awk -v a="$t_wall" -v b="$e_wall" 'BEGIN{exit !(a < b)}'; then
			e_wall=$t_wall e_cpu=$t_cpu e_rss=$t_rss
		fi
		rm -f "$pout"
		measure t "${pcmd[@]}"
		if [ $k -eq 0 ] || awk -v a="$t_wall" -v b="$p_wall" 'BEGIN{exit !(a < b)}'; then
			p_wall=$t_wall p_cpu=$t_cpu p_rss=$t_rss
		fi
	done
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "-" }'; }
mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }
size_of() { stat -c %s "$1"; }

header() {
	printf '\n%s\n' "$1"
	printf '%-22s | %8s %8s %8s %10s | %8s %8s %8s %10s | %6s %6s %6s\n' \
		case "ei s" "ei cpu" "ei MiB" "ei bytes" "peer s" "peer cpu" "peer MiB" \
		"peer bytes" wall rss size
}

# row LABEL EI_BYTES PEER_BYTES: uses e_* and p_* from measure.
row() {
	printf '%-22s | %8s %8s %8s %10s | %8s %8s %8s %10s | %6s %6s %6s\n' "$1" \
		"$e_wall" "$e_cpu" "$(mib "$e_rss")" "$2" "$p_wall" "$p_cpu" \
		"$(mib "$p_rss")" "$3" "$(ratio "$e_wall" "$p_wall")" \
		"$(ratio "$e_rss" "$p_rss")" "$(ratio "$2" "$3")"
}

# incremental LABEL OLD FULL CONVERT-ARGS... IN: convert --reuse OLD of IN
# against the same convert without it (best of $rep each), both compared
# with FULL (the build made before) byte for byte; the blocks copied.
incremental() {
	local label=$1 old=$2 full=$3 n
	shift 3
	header "Incremental build, $label: edgeimg convert --reuse OLD vs the same convert without it (sizes: output bytes)"
	eout=$tmp/inc.e pout=$tmp/inc.p
	ecmd=("$ei" convert --reuse "$old" "$@" "$eout")
	pcmd=("$ei" convert "$@" "$pout")
	pair
	cmp -s "$eout" "$full" || { echo "bench: convert --reuse did not write the full build's bytes" >&2; exit 1; }
	cmp -s "$pout" "$full" || { echo "bench: two full builds differ" >&2; exit 1; }
	row "convert --reuse" "$(size_of "$eout")" "$(size_of "$pout")"
	rm -f "$eout"
	n=$("$ei" convert -v --reuse "$old" "$@" "$eout" 2>&1 | grep -o '[0-9]* of [0-9]* compressed blocks copied')
	verdict "$label: convert --reuse wall / full build's" "$(ratio "$e_wall" "$p_wall")" 0.3
	verdicts+=("  $label: convert --reuse wrote the full build's bytes (cmp); ${n:-no compressed blocks copied} from OLD")
	rm -f "$eout" "$pout"
}

echo "edgeimg bench: $("$ei" --version | head -n 1), $cores cores, corpus $corpus"

for sec in $sections; do
case $sec in
read)
	header "Reading: edgeimg convert -O raw vs qemu-img convert -O raw + sync (best of $rep runs each; sizes: allocated bytes of the output)"
	for f in disk-v1.raw disk-v1.qcow2 disk-v1.vmdk disk-v1-stream.vmdk disk-v1.vhd \
		disk-v1-fixed.vhd disk-v1.vhdx disk-v1.vdi; do
		[ -f "$corpus/$f" ] || { echo "bench: $corpus/$f missing" >&2; exit 1; }
		# Name the format: qemu-img probes a fixed VHD (footer only) as raw.
		case $f in
		*.qcow2) fmt=qcow2 ;; *.vmdk) fmt=vmdk ;; *.vhdx) fmt=vhdx ;;
		*.vhd) fmt=vpc ;; *.vdi) fmt=vdi ;; *) fmt=raw ;;
		esac
		if ! "$ei" info "$corpus/$f" >/dev/null 2>&1; then
			printf '%-22s | edgeimg cannot read this format yet\n' "$f"
			continue
		fi
		rm -f "$tmp/e.raw" "$tmp/q.raw"
		# Both tools read from the page cache: whichever ran first would
		# otherwise pay for reading the file from disk.
		cat "$corpus/$f" >/dev/null
		eout=$tmp/e.raw pout=$tmp/q.raw
		ecmd=("$ei" convert -O raw "$corpus/$f" "$eout")
		pcmd=("${synced[@]}" "$pout" qemu-img convert -f "$fmt" -O raw "$corpus/$f" "$pout")
		pair
		cmp -s "$tmp/e.raw" "$tmp/q.raw" || { echo "bench: $f: outputs differ" >&2; exit 1; }
		row "$f" $(($(stat -c %b "$tmp/e.raw") * 512)) $(($(stat -c %b "$tmp/q.raw") * 512))
		verdict "read $f: wall / qemu-img's" "$(ratio "$e_wall" "$p_wall")" 1.0
		verdict "read $f: peak RSS, MiB" "$(mib "$e_rss")" 64
	done
	rm -f "$tmp/e.raw" "$tmp/q.raw"
	;;
qcow2)
	has OUTPUT_QCOW2 || { echo; echo "qcow2 writer not built: section skipped"; continue; }
	header "Compressed qcow2: edgeimg convert -c vs qemu-img convert -c -m $cores -W + sync (best of $rep runs each; input disk-v1.raw)"
	for c in zlib zstd; do
		rm -f "$tmp/e.qcow2" "$tmp/q.qcow2"
		eout=$tmp/e.qcow2 pout=$tmp/q.qcow2
		ecmd=("$ei" convert -c -O qcow2 -o compression_type=$c "$corpus/disk-v1.raw" "$eout")
		pcmd=("${synced[@]}" "$pout" qemu-img convert -c -m "$cores" -W -f raw -O qcow2
			-o compression_type=$c "$corpus/disk-v1.raw" "$pout")
		pair
		qemu-img check -q "$tmp/e.qcow2" || { echo "bench: qemu-img check failed" >&2; exit 1; }
		qemu-img compare -q "$corpus/disk-v1.raw" "$tmp/e.qcow2" || { echo "bench: qemu-img compare: differs" >&2; exit 1; }
		row "qcow2 -c $c" "$(size_of "$tmp/e.qcow2")" "$(size_of "$tmp/q.qcow2")"
		if [ $c = zlib ]; then lw=0.5 ls=0.97; else lw=0.7 ls=1.0; fi
		verdict "qcow2 $c: wall / qemu-img's" "$(ratio "$e_wall" "$p_wall")" $lw
		verdict "qcow2 $c: size / qemu-img's" "$(ratio "$(size_of "$tmp/e.qcow2")" "$(size_of "$tmp/q.qcow2")")" $ls
		verdict "qcow2 $c: peak RSS, MiB" "$(mib "$e_rss")" 64
	done
	rm -f "$tmp/e.qcow2" "$tmp/q.qcow2"
	;;
squashfs)
	has OUTPUT_SQUASHFS || { echo; echo "squashfs writer not built: section skipped"; continue; }
	header "squashfs-backed: edgeimg convert -O squashfs vs mksquashfs of a folder holding the disk + sync (best of $rep runs each; 128 KiB blocks)"
	mkdir -p "$tmp/dir"
	cp --sparse=always "$corpus/disk-v1.raw" "$tmp/dir/disk.img"
	for c in gzip:9 zstd:15; do
		comp=${c%:*} level=${c#*:}
		rm -f "$tmp/e.sqfs" "$tmp/q.sqfs"
		eout=$tmp/e.sqfs pout=$tmp/q.sqfs
		ecmd=("$ei" convert -O squashfs -o compression=$comp,level=$level,block_size=131072
			"$corpus/disk-v1.raw" "$eout")
		pcmd=("${synced[@]}" "$pout" mksquashfs "$tmp/dir" "$pout" -comp "$comp"
			-b 131072 -noappend -quiet)
		pair
		row "squashfs $comp-$level" "$(size_of "$tmp/e.sqfs")" "$(size_of "$tmp/q.sqfs")"
		if [ $comp = gzip ]; then lw=0.5; else lw=1.0; fi
		verdict "squashfs $comp: wall / mksquashfs's" "$(ratio "$e_wall" "$p_wall")" $lw
		verdict "squashfs $comp: size / mksquashfs's" "$(ratio "$(size_of "$tmp/e.sqfs")" "$(size_of "$tmp/q.sqfs")")" 1.0
		verdict "squashfs $comp: peak RSS, MiB" "$(mib "$e_rss")" 64
	done
	rm -rf "$tmp/dir" "$tmp/e.sqfs" "$tmp/q.sqfs"
	;;
flash)
	. "$(dirname "$0")/bench-flash.sh"
	;;
rootfs)
	grep -qw FILES <<<"$features" || { echo; echo "file view not built: rootfs section skipped"; continue; }
	. "$(dirname "$0")/bench-rootfs.sh"
	;;
delta)
	grep -q '^  delta ' <<<"$("$ei" help 2>&1)" || { echo; echo "delta not built: section skipped"; continue; }
	. "$(dirname "$0")/bench-delta.sh"
	;;
esac
done

if [ ${#verdicts[@]} -gt 0 ]; then
	echo
	echo "Targets (issues 3 to 6, 13 and 15), measured in this run:"
	printf '%s\n' "${verdicts[@]}"
fi
