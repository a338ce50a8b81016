# SPDX-License-Identifier: MIT
# Sourced by bench.sh: root filesystems (issue 13).  The corpus v1 root
# partition, read by edgeimg from disk-v1.qcow2 (convert --files
# --partition 2 -O squashfs), against what users do today: mount the same
# partition read-only through a loop device, mksquashfs the mount point,
# sync, unmount.  zstd at mksquashfs's default level (15) and gzip, 128 KiB
# blocks.  Both outputs are judged by sqfsdiff (contents and metadata)
# before a row is printed.  Needs root (the loop mount).

# same_tree A B WHAT: sqfsdiff finds no difference between the squashfs
# images A and B (contents, owners, modes, times), else the bench stops.
same_tree() {
	sqfsdiff -T -a "$1" -b "$2" >"$tmp/diff" 2>&1 && return 0
	echo "bench: sqfsdiff: $3:" >&2
	head -20 "$tmp/diff" >&2
	exit 1
}

src=$corpus/disk-v1.qcow2 raw=$corpus/disk-v1.raw
[ -f "$src" ] && [ -f "$raw" ] || { echo "bench: $src or $raw missing" >&2; exit 1; }
if ! "$ei" info --files --partition 2 "$src" >"$tmp/e.list" 2>"$tmp/.err"; then
	echo; echo "root filesystems: edgeimg cannot list partition 2's files: $(cat "$tmp/.err")"
	return 0 2>/dev/null || exit 1
fi
start=$(sfdisk --json "$raw" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["partitions"][1]["start"] * 512)')
mnt=$tmp/mnt
mkdir -p "$mnt"
cat "$src" "$raw" >/dev/null
header "Root filesystem: edgeimg convert --files --partition 2 -O squashfs disk-v1.qcow2 vs mount -o ro,loop + mksquashfs + sync (best of $rep runs each)"
for comp in zstd gzip; do
	eout=$tmp/e.sqfs pout=$tmp/p.sqfs
	ecmd=("$ei" convert --files --partition 2 -O squashfs -o compression=$comp,block_size=131072 "$src" "$eout")
	pcmd=(bash -c 'mount -o ro,loop,offset="$2" "$3" "$4" && mksquashfs "$4" "$1" -comp "$5" -b 131072 -noappend -quiet -no-progress >/dev/null; r=$?; umount "$4"; [ $r = 0 ] && sync -- "$1"' \
		x "$pout" "$start" "$raw" "$mnt" "$comp")
	pair
	same_tree "$eout" "$pout" "edgeimg's root filesystem differs from mksquashfs's"
	row "rootfs $comp" "$(size_of "$eout")" "$(size_of "$pout")"
	verdict "rootfs $comp: wall / mount+mksquashfs's" "$(ratio "$e_wall" "$p_wall")" 0.5
	verdict "rootfs $comp: size / mksquashfs's" "$(ratio "$(size_of "$eout")" "$(size_of "$pout")")" 1.0
	verdict "rootfs $comp: peak RSS, MiB" "$(mib "$e_rss")" 64
	rm -f "$eout" "$pout"
done

# skip_random (the default) against the same convert with
# -o skip_random=off as the "peer": the time storing random-looking blocks
# without zstd's level saves, and the bytes it costs.
header "Root filesystem, zstd: edgeimg convert (skip_random=on, the default) vs the same with -o skip_random=off (best of $rep runs each)"
eout=$tmp/e.sqfs pout=$tmp/p.sqfs
ecmd=("$ei" convert --files --partition 2 -O squashfs -o compression=zstd,block_size=131072 "$src" "$eout")
pcmd=("$ei" convert --files --partition 2 -O squashfs -o compression=zstd,block_size=131072,skip_random=off "$src" "$pout")
pair
same_tree "$eout" "$pout" "skip_random=on and off give other files"
row "skip_random vs off" "$(size_of "$eout")" "$(size_of "$pout")"
rm -f "$eout" "$pout"

# group_fragments (the default) against -o group_fragments=off, the
# fragments of mksquashfs's walk order: the bytes that packing the tails of
# files of one name together saves, and its time.
header "Root filesystem: edgeimg convert (group_fragments=on, the default) vs the same with -o group_fragments=off (best of $rep runs each)"
for comp in zstd gzip; do
	eout=$tmp/e.sqfs pout=$tmp/p.sqfs
	ecmd=("$ei" convert --files --partition 2 -O squashfs -o compression=$comp,block_size=131072 "$src" "$eout")
	pcmd=("$ei" convert --files --partition 2 -O squashfs -o compression=$comp,block_size=131072,group_fragments=off "$src" "$pout")
	pair
	same_tree "$eout" "$pout" "group_fragments=on and off give other trees"
	row "group vs off, $comp" "$(size_of "$eout")" "$(size_of "$pout")"
	rm -f "$eout" "$pout"
done

# What grows with the number of entries: a tree of 100,000 small files (in
# 1,000 directories) from a directory, edgeimg vs mksquashfs, both from the
# same directory; peak RSS is the row to read.
many=$tmp/many
python3 - "$many" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(1000):
    p = os.path.join(root, 'd%04d' % d)
    os.makedirs(p)
    for f in range(100):
        with open(os.path.join(p, 'f%03d' % f), 'w') as fh:
            fh.write('%d/%d\n' % (d, f) * (1 + (d * 100 + f) % 7))
os.utime(root, (1700000000, 1700000000))
PY
header "100,000 files from a directory: edgeimg convert --files -O squashfs vs mksquashfs (zstd; best of $rep runs each)"
eout=$tmp/e.sqfs pout=$tmp/p.sqfs
ecmd=("$ei" convert --files -O squashfs -o compression=zstd "$many" "$eout")
pcmd=("${synced[@]}" "$pout" mksquashfs "$many" "$pout" -comp zstd -noappend -quiet -no-progress)
pair
same_tree "$eout" "$pout" "the 100,000-file images differ"
row "100k files zstd" "$(size_of "$eout")" "$(size_of "$pout")"
verdict "100k files: peak RSS, MiB" "$(mib "$e_rss")" 64
rm -rf "$many" "$eout" "$pout"

# Root filesystems in delta and apply: edgeimg's root filesystems of the
# v1 and v2 root partitions (zstd, 128 KiB blocks) as OLD and NEW; the
# patch against xdelta3 -9 between the same two files, and against
# edgeimg's patch between the two root partitions as raw ext4 (the issue's
# yardstick: <= 1.2x); apply against xdelta3 -d, its result compared with
# v2's root filesystem byte for byte.
v2=$corpus/disk-v2.qcow2
[ -f "$v2" ] || { echo "bench: $v2 missing" >&2; exit 1; }
for v in 1 2; do
	"$ei" convert --force --files --partition 2 -O squashfs -o compression=zstd,block_size=131072 \
		"$corpus/disk-v$v.qcow2" "$tmp/r$v.sqfs" >/dev/null 2>"$tmp/.err" ||
		{ echo "bench: edgeimg convert --files of v$v failed: $(cat "$tmp/.err")" >&2; exit 1; }
done
header "Delta, root filesystems v1 -> v2 (edgeimg's, zstd): edgeimg delta vs xdelta3 -9 between the files (sizes: patch bytes)"
rm -f "$tmp/pp.patch" "$tmp/e.patch" "$tmp/x.patch"
measure e "$ei" delta --partition 2 "$corpus/disk-v1.qcow2" "$v2" "$tmp/pp.patch"
part_patch=$(size_of "$tmp/pp.patch")
p_wall=- p_cpu=- p_rss=0
row "ext4 partitions (raw)" "$part_patch" "-"
measure e "$ei" delta "$tmp/r1.sqfs" "$tmp/r2.sqfs" "$tmp/e.patch"
measure p "${synced[@]}" "$tmp/x.patch" xdelta3 -f -9 -B 1073741824 -e -s "$tmp/r1.sqfs" "$tmp/r2.sqfs" "$tmp/x.patch"
row "rootfs vs xdelta3 -9" "$(size_of "$tmp/e.patch")" "$(size_of "$tmp/x.patch")"
verdict "rootfs patch / the raw ext4 partitions' patch" "$(ratio "$(size_of "$tmp/e.patch")" "$part_patch")" 1.2
verdict "rootfs patch / xdelta3 -9's" "$(ratio "$(size_of "$tmp/e.patch")" "$(size_of "$tmp/x.patch")")" 1.0
rm -f "$tmp/e.out" "$tmp/x.out"
measure e "$ei" apply -v "$tmp/r1.sqfs" "$tmp/e.patch" "$tmp/e.out"
copied=$(grep -o '[0-9]* of [0-9]* compressed blocks copied' "$tmp/.err")
measure p "${synced[@]}" "$tmp/x.out" xdelta3 -f -d -s "$tmp/r1.sqfs" "$tmp/x.patch" "$tmp/x.out"
row "apply rootfs" "$(size_of "$tmp/e.out")" "$(size_of "$tmp/x.out")"
cmp -s "$tmp/e.out" "$tmp/r2.sqfs" || { echo "bench: apply did not rebuild v2's root filesystem byte for byte" >&2; exit 1; }
verdicts+=("  rootfs: apply rebuilt v2's root filesystem byte for byte (cmp); ${copied:-no compressed blocks copied} from v1's")
verdict "rootfs apply: peak RSS, MiB" "$(mib "$e_rss")" 64
incremental "rootfs" "$tmp/r1.sqfs" "$tmp/r2.sqfs" --files --partition 2 -O squashfs \
	-o compression=zstd,block_size=131072 "$corpus/disk-v2.qcow2"
rm -f "$tmp"/r?.sqfs "$tmp/pp.patch" "$tmp/e.patch" "$tmp/x.patch" "$tmp/e.out" "$tmp/x.out"

# libguestfs, what users run without root: its appliance VM mounts the
# partition and streams a tar out, which sqfstar turns into a root
# filesystem (no KVM here: TCG, as LIBGUESTFS_BACKEND_SETTINGS=force_tcg).
# One run each: the VM takes minutes.  Printed where libguestfs runs.
if command -v guestfish >/dev/null && command -v sqfstar >/dev/null &&
   LIBGUESTFS_BACKEND=direct guestfish --ro -a "$src" run >/dev/null 2>"$tmp/.err"; then
	[ -e /dev/kvm ] || export LIBGUESTFS_BACKEND_SETTINGS=force_tcg
	header "Root filesystem: edgeimg convert --files vs guestfish --ro tar-out | sqfstar (zstd; one run each)"
	eout=$tmp/e.sqfs pout=$tmp/p.sqfs
	ecmd=("$ei" convert --files --partition 2 -O squashfs -o compression=zstd,block_size=131072 "$src" "$eout")
	pcmd=(bash -c 'set -o pipefail; LIBGUESTFS_BACKEND=direct guestfish --ro -a "$2" -m /dev/sda2 tar-out / - xattrs:true numericowner:true |
		sqfstar -comp zstd -b 131072 -quiet -no-progress "$1" && sync -- "$1"' x "$pout" "$src")
	rep_saved=$rep rep=1
	pair
	rep=$rep_saved
	row "rootfs vs libguestfs" "$(size_of "$eout")" "$(size_of "$pout")"
	verdict "rootfs zstd: wall / libguestfs + sqfstar's" "$(ratio "$e_wall" "$p_wall")" 0.5
	rm -f "$eout" "$pout"
else
	echo; echo "SKIPPED: libguestfs does not run here (guestfish, sqfstar or its appliance missing): the libguestfs row is missing${tmp:+ ($(head -c 200 "$tmp/.err" 2>/dev/null))}"
fi
