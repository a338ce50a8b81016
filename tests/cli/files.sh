#!/usr/bin/env bash
# requires: FILES
# SPDX-License-Identifier: MIT
# The file view's front door: info --files and convert --files on a host
# directory (the kernel's view by tests/files-list.py is the judge), how
# an input's filesystem is chosen (a disk with several partitions names
# them, one is taken), and the usage errors of --files, each before OUT
# exists.  The sources (ext2/3/4, tar, squashfs) and the writers have
# their own files-*.sh.
. "$(dirname "$0")/../lib.sh"
need python3 cmp setfattr mkfifo unsquashfs tar setpriv

list() { python3 "$TOP/tests/files-list.py" "$1"; }

# --- a tree of every type a directory holds ----------------------------------
s=$T/src
mkdir -p "$s/etc/deep/er" "$s/empty" "$s/bin"
printf 'root:x:0:0\n' >"$s/etc/passwd"
head -c 200000 /dev/urandom >"$s/bin/prog"
: >"$s/etc/empty-file"
truncate -s 5M "$s/sparse"
printf 'tail' | dd of="$s/sparse" bs=1 seek=3000000 conv=notrunc status=none
ln "$s/bin/prog" "$s/bin/prog-hardlink"
ln -s ../etc/passwd "$s/bin/link"
ln -s "$(printf 'x%.0s' $(seq 1 300))" "$s/long-link"
mkfifo "$s/fifo"
printf 'odd' >"$s/etc/name with space"$'\\and\001ctl'
chmod 4755 "$s/bin/prog"
chmod 1777 "$s/empty"
fixture "setfattr" setfattr -n user.comment -v hello "$s/etc/passwd"
setfattr -n user.bin -v 0x00ff10 "$s/bin/prog"
touch -d @1600000000 "$s/etc/passwd"
if [ "$(id -u)" = 0 ]; then
	mknod "$s/null" c 1 3
	mknod "$s/loop9" b 7 9
	chown 1234:5678 "$s/etc/passwd"
	chown 70000:70001 "$s/bin/link" -h
fi

run_ei 0 -- info --files "$s"
list "$s" >"$T/want"
printf '%s\n' "$OUT" >"$T/got"
check "info --files of a directory is the kernel's view" cmp "$T/want" "$T/got"
check "hard link named after its first path" grep -q ' /bin/prog-hardlink => /bin/prog$' "$T/got"
check "the control byte and the backslash escaped" grep -q '/etc/name\\040with\\040space\\134and\\001ctl$' "$T/got"
check "xattrs listed" grep -qx '  xattr user.bin=00ff10' "$T/got"

# a trailing slash, a relative name: the same listing
(cd "$T" && ei info --files src/) >"$T/got2"
check "relative name with a slash: same listing" cmp "$T/want" "$T/got2"

# --- usage errors, before OUT exists -------------------------------------------
run_ei 2 -- convert --files -O raw "$s" "$T/o.raw"
check "--files -O raw refused, naming the outputs" grep -q "squashfs or tar" <<<"$ERR"
check "no OUT after -O raw" test ! -e "$T/o.raw"
run_ei 2 -- convert --files -O squashfs -o name=x.img "$s" "$T/o.sqfs"
check "-o name= refused for a file tree" test ! -e "$T/o.sqfs"
run_ei 2 -- convert --files -O squashfs -o compression=nope "$s" "$T/o.sqfs"
check "a bad -o refused before OUT" test ! -e "$T/o.sqfs"
run_ei 2 -- convert --files --bmap "$T/o.bmap" -O squashfs "$s" "$T/o.sqfs"
check "--bmap with --files refused" grep -q "not a file tree" <<<"$ERR"
run_ei 2 -- convert --files --partition 1 -O squashfs "$s" "$T/o.sqfs"
check "--partition of a directory refused" grep -q "directory has no partitions" <<<"$ERR"
run_ei 1 -- info --files "$T/nonexistent"
check "a missing IN named" grep -q "nonexistent" <<<"$ERR"
run_ei 2 -- info --files --json "$s"

# --- a file that is no filesystem --------------------------------------------
head -c 1048576 /dev/urandom >"$T/noise.raw"
run_ei 1 -- info --files -f raw "$T/noise.raw"
check "random bytes: no filesystem, said so" grep -q "no filesystem edgeimg reads files of" <<<"$ERR"
run_ei 1 -- convert --files -f raw -O squashfs "$T/noise.raw" "$T/o.sqfs"
check "no OUT from a disk without a filesystem" test ! -e "$T/o.sqfs"
# --- a disk's filesystem, converted by an unprivileged user -------------------
# No root, no mount: the sample disk's ext4 partition (the only one with a
# filesystem) to a root filesystem and a tar as nobody, each then listed
# by its own reader and compared with the partition's listing; the tar is
# also listed by GNU tar.
if has_feature FILES_EXT && [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	fixture "mkdisk" mkdisk "$T/disk.raw" 24
	mkdir -m 0777 "$T/nobody"
	chmod 0644 "$T/disk.raw"
	chmod 0755 "$T"
	run_ei 0 -- info --files "$T/disk.raw"
	printf '%s\n' "$OUT" >"$T/disk.list"
	as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- $EDGEIMG "$@"; }
	if has_feature OUTPUT_SQUASHFS; then
		check "convert --files -O squashfs as nobody" as_nobody convert --files -O squashfs "$T/disk.raw" "$T/nobody/root.sqfs"
		check "the root filesystem is owned by nobody" test "$(stat -c %u "$T/nobody/root.sqfs")" = 65534
		check "unsquashfs reads it" unsquashfs -s "$T/nobody/root.sqfs"
		ei info --files "$T/nobody/root.sqfs" >"$T/sqfs.list" 2>"$T/err"
		check "its files are the partition's" cmp "$T/disk.list" "$T/sqfs.list"
	fi
	if has_feature FILES_TAR; then
		check "convert --files -O tar as nobody" as_nobody convert --files -O tar "$T/disk.raw" "$T/nobody/root.tar"
		ei info --files "$T/nobody/root.tar" >"$T/tar.list" 2>"$T/err"
		check "the tar's files are the partition's" cmp "$T/disk.list" "$T/tar.list"
		check "GNU tar lists every entry" test "$(tar -tf "$T/nobody/root.tar" | wc -l)" = "$(grep -c '^[^ ]' "$T/disk.list")"
	fi
elif [ -n "${CI:-}" ]; then
	bad "the unprivileged conversion needs root (to drop it), setpriv and FILES_EXT"
fi
done_tests
