# SPDX-License-Identifier: MIT
# Sourced by bench.sh: root filesystems (issue 13).  The corpus v1 root
# partition, read by edgeimg from disk-v1.qcow2 (convert --files
# --partition 2 -O squashfs), against what users do today: mount the same
# partition read-only through a loop device, mksquashfs the mount point,
# sync, unmount.  zstd at mksquashfs's default level (15) and gzip, 128 KiB
# blocks.  Both outputs are judged by sqfsdiff (contents and metadata)
# before a row is printed.  Needs root (the loop mount).

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
	# sqfsdiff compares the two images: contents, owners, modes, times
	if ! sqfsdiff -T -a "$eout" -b "$pout" >"$tmp/diff" 2>&1; then
		echo "bench: sqfsdiff: edgeimg's root filesystem differs from mksquashfs's:" >&2
		head -20 "$tmp/diff" >&2
		exit 1
	fi
	row "rootfs $comp" "$(size_of "$eout")" "$(size_of "$pout")"
	verdict "rootfs $comp: wall / mount+mksquashfs's" "$(ratio "$e_wall" "$p_wall")" 0.5
	verdict "rootfs $comp: size / mksquashfs's" "$(ratio "$(size_of "$eout")" "$(size_of "$pout")")" 1.0
	verdict "rootfs $comp: peak RSS, MiB" "$(mib "$e_rss")" 64
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
sqfsdiff -T -a "$eout" -b "$pout" >"$tmp/diff" 2>&1 ||
	{ echo "bench: sqfsdiff: the 100,000-file images differ:" >&2; head -20 "$tmp/diff" >&2; exit 1; }
row "100k files zstd" "$(size_of "$eout")" "$(size_of "$pout")"
verdict "100k files: peak RSS, MiB" "$(mib "$e_rss")" 64
rm -rf "$many" "$eout" "$pout"
