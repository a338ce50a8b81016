#!/usr/bin/env bash
# requires: FILES_TAR
# SPDX-License-Identifier: MIT
# Root-filesystem tarballs in and out of the file view (convert --files -O
# tar, info --files): listings judged against tests/files-list.py on the
# source directory and on what GNU tar and bsdtar extract from edgeimg's
# tar; inputs made by GNU tar and bsdtar (plain, gzip, xz, zstd, GNU and
# pax formats, GNU sparse); determinism; hostile tars made by python3's
# tarfile and byte pokes (the TR rows of HOSTILE-INPUTS.md), each refused
# naming the member, with no output left.
. "$(dirname "$0")/../lib.sh"
need tar bsdtar python3 gzip xz zstd cmp setfattr
LIST="python3 $TOP/tests/files-list.py"
D=$T/d
root=0
[ "$(id -u)" = 0 ] && root=1

# --- the source tree: every type, odd names, hard links, xattrs, sparse
mk_tree() {
	mkdir -p "$D/etc/deep/a/b" "$D/bin" "$D/dev" "$D/empty" "$D/var/log" &&
		echo hello >"$D/etc/passwd" &&
		head -c 300000 /dev/urandom >"$D/bin/busybox" &&
		ln "$D/bin/busybox" "$D/bin/sh" && ln "$D/bin/busybox" "$D/bin/ls" &&
		ln -s ../bin/sh "$D/etc/link" && ln -s /etc/passwd "$D/etc/abs" &&
		ln -s ../../../../outside "$D/etc/dangling" &&
		: >"$D/etc/emptyf" && chmod 4755 "$D/bin/busybox" && chmod 1777 "$D/var/log" &&
		truncate -s 20M "$D/var/log/sparse" && echo tail >>"$D/var/log/sparse" &&
		touch "$D/etc/é utf8" "$D/etc/$(printf 'bad\377name')" &&
		echo long >"$D/etc/deep/a/b/$(printf 'n%.0s' $(seq 1 150))" &&
		mkfifo "$D/dev/fifo" &&
		setfattr -n user.comment -v hello "$D/etc/passwd" &&
		setfattr -n security.capability -v 0sAQAAAgAgAAAAAAAAAAAAAAAAAAA= "$D/bin/busybox" &&
		setfattr -n user.empty "$D/etc" &&
		touch -h -d @1600000000 "$D/etc/abs" && touch -d @1500000000 "$D/etc/passwd" &&
		python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$D/dev/sock" ||
		return 1
	if [ $root = 1 ]; then
		mknod "$D/dev/null" c 1 3 && mknod "$D/dev/sda1" b 8 1 &&
			chown 1000:2000 "$D/etc/passwd" && chown -h 33:44 "$D/etc/link" || return 1
	fi
	touch -d @1400000000 "$D/etc" "$D"
}
fixture "source tree" mk_tree || { done_tests; exit; }
# the kernel's view, less the socket no tar holds
$LIST "$D" | grep -v ' /dev/sock$' >"$T/want"
nox() { grep -v '^  xattr '; }

# --- inputs made by GNU tar and bsdtar
G="tar --sort=name --numeric-owner"
fixture "GNU tar pax" $G --xattrs --xattrs-include='*' --format=posix -cf "$T/gnu-pax.tar" -C "$D" . 2>/dev/null
fixture "GNU tar gnu" $G --format=gnu -cf "$T/gnu.tar" -C "$D" . 2>/dev/null
fixture "GNU tar sparse" $G --sparse --format=posix -cf "$T/sparse.tar" -C "$D" ./var 2>/dev/null
for z in gz xz zst; do
	case $z in gz) c="gzip -n" ;; xz) c="xz -T1" ;; zst) c="zstd -q" ;; esac
	# Buildroot's way: tar to a pipe through the compressor
	fixture "tar.$z" sh -c "$G --xattrs --xattrs-include='*' --format=posix -cf - -C '$D' . 2>/dev/null | $c >'$T/in.tar.$z'"
done
run_ei 0 -- info --files "$T/gnu-pax.tar"
check "GNU pax tar: info --files is the source's listing" diff <(echo "$OUT") "$T/want"
run_ei 0 -- info --files "$T/gnu.tar"
check "GNU gnu-format tar: listing without xattrs" diff <(echo "$OUT") <(nox <"$T/want")
for z in gz xz zst; do
	run_ei 0 -- info --files "$T/in.tar.$z"
	check ".tar.$z: info --files is the source's listing" diff <(echo "$OUT") "$T/want"
done
run_ei 0 -- info --files "$T/sparse.tar"
check "GNU sparse member: read through its map" diff <(echo "$OUT") <(grep -E ' /var(/|$)' "$T/want")
# bsdtar stores xattrs on hard-link members too and orders as readdir does
fixture "bsdtar" bsdtar --xattrs --numeric-owner -cf "$T/bsd.tar" -C "$D" . 2>/dev/null
run_ei 0 -- info --files "$T/bsd.tar"
check "bsdtar tar: the same entries" diff <(sed 's/ => .*//' <<<"$OUT" | sort) <(sed 's/ => .*//' "$T/want" | sort)

# --- edgeimg's tar: read by GNU tar and bsdtar, extracted, compared
rm -f "$T/out.tar"
run_ei 0 -- convert --files -O tar "$D" "$T/out.tar"
has "a socket is left out with a warning" "warning: /?dev/sock: socket not kept" "$ERR"
# a name that is not UTF-8 is written with hdrcharset=BINARY (POSIX), which GNU tar notes
check "GNU tar lists edgeimg's tar" sh -c "tar -tvf '$T/out.tar' >/dev/null 2>'$T/gerr'"
check "GNU tar's only note: hdrcharset of the non-UTF-8 name" sh -c "! grep -v \"keyword 'hdrcharset'\" '$T/gerr'"
check "bsdtar lists edgeimg's tar" sh -c "bsdtar -tvf '$T/out.tar' >/dev/null"
check "names are ./PATH" sh -c "tar -tf '$T/out.tar' 2>/dev/null | head -n 2 | tr '\n' ' ' | grep -qx './ ./bin/ '"
mkdir -p "$T/x1" "$T/x2"
check "GNU tar extracts it" sh -c "tar --xattrs --xattrs-include='*' --numeric-owner -xpf '$T/out.tar' -C '$T/x1' 2>/dev/null"
check "GNU tar's extraction is the source" diff <($LIST "$T/x1") "$T/want"
check "bsdtar extracts it" bsdtar --xattrs --numeric-owner -xpf "$T/out.tar" -C "$T/x2"
# bsdtar leaves the time of the directory it extracts into
check "bsdtar's extraction is the source" diff <($LIST "$T/x2" | sed 1d) <(sed 1d "$T/want")
run_ei 0 -- info --files "$T/out.tar"
check "edgeimg reads its own tar back" diff <(echo "$OUT") "$T/want"
check "hard links are hard-link members" sh -c "tar -tvf '$T/out.tar' 2>/dev/null | grep -q '^hrwsr-xr-x .* ./bin/ls link to ./bin/busybox'"

# --- determinism: tar -> tar, -j, a compressed input, to standard output
for src in "$T/out.tar" "$T/in.tar.zst" "$T/gnu-pax.tar"; do
	rm -f "$T/rt.tar"
	run_ei 0 -- convert --files -O tar -j 2 "$src" "$T/rt.tar"
	check "$(basename "$src") -> tar: the same bytes as dir -> tar" cmp "$T/out.tar" "$T/rt.tar"
done
rm -f "$T/rt.tar"
run_ei 0 -- convert --files -O tar -j 1 "$D" "$T/rt.tar"
check "dir -> tar twice: the same bytes" cmp "$T/out.tar" "$T/rt.tar"
ei convert --files -O tar "$D" - 2>/dev/null >"$T/stdout.tar"
check "to standard output: the same bytes" cmp "$T/out.tar" "$T/stdout.tar"
rm -f "$T/sde.tar"
SOURCE_DATE_EPOCH=1700000000 run_ei 0 -- convert --files -O tar "$D" "$T/sde.tar"
check "SOURCE_DATE_EPOCH: every mtime" sh -c "TZ=UTC tar --full-time -tvf '$T/sde.tar' 2>/dev/null | awk '{print \$4 \" \" \$5}' | sort -u | grep -qx '$(date -u -d @1700000000 '+%F %T')'"
check "SOURCE_DATE_EPOCH: nothing else changes" diff <(tar -tvf "$T/sde.tar" 2>/dev/null | awk '{$4=$5=""; print}') <(tar -tvf "$T/out.tar" 2>/dev/null | awk '{$4=$5=""; print}')
rm -f "$T/o.tar"
run_ei 2 -- convert --files -O tar -o level=3 "$D" "$T/o.tar"
check "-O tar takes no options: no output" test ! -e "$T/o.tar"

# --- ACLs: not kept, said by path
if has_oracle setfacl && setfacl -m u:1234:r "$D/etc/passwd" 2>/dev/null; then
	fixture "GNU tar --acls" $G --acls --format=posix -cf "$T/acl.tar" -C "$D" ./etc/passwd
	run_ei 0 -- info --files "$T/acl.tar"
	has "a POSIX ACL is warned of by path" "warning: etc/passwd: POSIX ACL not kept" "$ERR"
	setfacl -b "$D/etc/passwd"
fi

# --- not tars: never taken for one, whatever the name
head -c 20480 /dev/zero >"$T/zeros.tar"
fixture "sample disk" mkdisk "$T/disk.raw" 16 >/dev/null &&
	fixture "zstd disk" zstd -q "$T/disk.raw" -o "$T/disk.raw.zst" &&
	fixture "ext4" mkfs.ext4 -q "$T/ext4.tar" 4M >/dev/null
for f in zeros.tar disk.raw disk.raw.zst ext4.tar; do
	[ -e "$T/$f" ] || continue
	ei info --files "$T/$f" >/dev/null 2>"$T/.e"
	check "$f is not taken for a tar" sh -c "! grep -qE 'info: tar:|member' '$T/.e'"
done

# --- hostile tars (HOSTILE-INPUTS.md TR1-TR5)
mkdir -p "$T/h"
python3 - "$T/h" <<'PY'
import io, os, sys, tarfile
d = sys.argv[1]

def ti(name, type=tarfile.REGTYPE, size=0, **kw):
    t = tarfile.TarInfo(name)
    t.type, t.size, t.mode, t.mtime = type, size, 0o644, 1500000000
    for k, v in kw.items():
        setattr(t, k, v)
    return t

def mk(out, members, fmt=tarfile.PAX_FORMAT):
    with tarfile.open(os.path.join(d, out), 'w', format=fmt) as tf:
        for t in members:
            tf.addfile(t, io.BytesIO(b'x' * t.size) if t.type == tarfile.REGTYPE else None)

DIR = tarfile.DIRTYPE
mk('abs.tar', [ti('/etc/passwd', size=1)])
mk('dotdot.tar', [ti('./etc', DIR), ti('etc/../../x', size=1)])
mk('empty-comp.tar', [ti('etc//passwd', size=1)])
mk('link-ahead.tar', [ti('bin/sh', tarfile.LNKTYPE, linkname='bin/busybox'), ti('bin/busybox', size=1)])
mk('link-out.tar', [ti('x', size=1), ti('y', tarfile.LNKTYPE, linkname='../../etc/shadow')])
mk('link-abs.tar', [ti('y', tarfile.LNKTYPE, linkname='/etc/shadow')])
mk('link-dir.tar', [ti('d', DIR), ti('y', tarfile.LNKTYPE, linkname='d')])
mk('through-symlink.tar', [ti('a', tarfile.SYMTYPE, linkname='/etc'), ti('a/passwd', size=1)])
mk('through-file.tar', [ti('a', size=1), ti('a/b', size=1)])
mk('dup.tar', [ti('x', size=1), ti('x', size=1)])
mk('dir-then-file.tar', [ti('d', DIR), ti('d/f', size=1), ti('d', size=1)])
mk('implied-then-file.tar', [ti('d/f', size=1), ti('d', size=1)])
mk('root-file.tar', [ti('.', size=1)])
mk('long-name.tar', [ti('a/' * 2100 + 'f', size=1)])
mk('long-comp.tar', [ti('n' * 300, size=1)])
mk('xattr-count.tar', [ti('f', size=1, pax_headers={'SCHILY.xattr.user.%d' % i: 'v' for i in range(1100)})])
mk('xattr-size.tar', [ti('f', size=1, pax_headers={'SCHILY.xattr.user.big': 'v' * 70000})])
mk('pax-bomb.tar', [ti('f', size=1, pax_headers={'comment': 'c' * (2 << 20)})])
mk('gnu-longname.tar', [ti('x' * (1 << 20) + 'y', size=1)], fmt=tarfile.GNU_FORMAT)
mk('xattr-ns.tar', [ti('f', size=1, pax_headers={'SCHILY.xattr.lustre.lov': 'v', 'SCHILY.xattr.user.k': 'v'})])
mk('pax-size.tar', [ti('f', size=1, pax_headers={'size': str(1 << 41)})])
mk('escape.tar', [ti('/\x1b[2J\x07x', size=1)])
mk('neg-uid.tar', [ti('f', size=1, pax_headers={'uid': '-5'})])
mk('deep.tar', [ti('d/' * 300 + 'f', size=1)])
mk('empty-target.tar', [ti('l', tarfile.SYMTYPE, linkname='')])
# a valid base to poke
mk('base.tar', [ti('etc', DIR), ti('etc/data', size=5000)], fmt=tarfile.USTAR_FORMAT)
b = bytearray(open(os.path.join(d, 'base.tar'), 'rb').read())

def fix(b, off):   # the header checksum of the header at @off
    b[off + 148:off + 156] = b' ' * 8
    b[off + 148:off + 156] = b'%06o\0 ' % sum(b[off:off + 512])

def poke(out, off, data):
    c = bytearray(b)
    c[off:off + len(data)] = data
    fix(c, off - off % 512)
    open(os.path.join(d, out), 'wb').write(bytes(c))

poke('size-octal.tar', 512 + 124, b'77777777777\0')          # 8 GiB claimed
poke('size-256.tar', 512 + 124, b'\x80' + b'\0' * 4 + b'\x7f' + b'\xff' * 6)  # base-256, 2^55
poke('size-neg.tar', 512 + 124, b'\xff' * 12)               # base-256, negative
open(os.path.join(d, 'truncated.tar'), 'wb').write(bytes(b[:512 * 2 + 1000]))
# a pax record whose length lies
mk('pax-len.tar', [ti('f', size=1, pax_headers={'comment': 'abc'})])
c = bytearray(open(os.path.join(d, 'pax-len.tar'), 'rb').read())
i = c.index(b' comment=abc')
c[i - 2:i] = b'99'
open(os.path.join(d, 'pax-len.tar'), 'wb').write(bytes(c))
PY
run_ei 0 -- info --files "$T/h/xattr-ns.tar"
has "an xattr outside user., trusted., security.: a warning" "warning: f: extended attribute lustre.lov not kept" "$ERR"
has "... and the others kept" "^  xattr user.k=76$" "$OUT"
hostile() {
	local f=$1 want=$2
	rm -f "$T/h.out"
	run_ei 1 -- convert --files -O tar "$T/h/$f" "$T/h.out"
	has "$f: refused, naming the cause" "$want" "$ERR"
	check "$f: no output left" test ! -e "$T/h.out"
}
hostile abs.tar "member 1 '/etc/passwd': absolute name"
hostile dotdot.tar "'etc/\.\./\.\./x': '\.\.' in the name"
hostile empty-comp.tar "'etc//passwd': empty component"
hostile link-ahead.tar "'bin/sh': hard link to 'bin/busybox', not an earlier member"
hostile link-out.tar "'y': '\.\.' in the hard link target"
hostile link-abs.tar "'y': absolute hard link target"
hostile link-dir.tar "'y': hard link to a directory"
hostile through-symlink.tar "'a/passwd': below 'a', a symlink"
hostile through-file.tar "'a/b': below 'a', a file"
hostile dup.tar "member 2 'x': a file where an earlier member made a file"
hostile dir-then-file.tar "member 3 'd': a file where an earlier member made a directory"
hostile implied-then-file.tar "'d': a file where an earlier member made a directory"
hostile root-file.tar "the root is a file"
hostile long-name.tar "name of 4201 bytes \(at most 4095\)"
hostile long-comp.tar "a component of 300 bytes"
hostile xattr-count.tar "'f': 1100 xattrs \(at most 1024\)"
hostile xattr-size.tar "'f': xattr user.big of 70000 bytes \(at most 65536\)"
hostile pax-bomb.tar "member 1: .*(too large|Special header)"
hostile gnu-longname.tar "member 1: .*(too long|too large)"
hostile pax-size.tar "'f': size 2199023255552 \(at most 1099511627776\)"
hostile escape.tar "absolute name"
check "escape.tar: no control bytes in the message" sh -c "! printf '%s' \"\$1\" | grep -q \"\$(printf '[\\033\\007]')\"" - "$ERR"
hostile neg-uid.tar "uid -5 .*out of range"
hostile deep.tar "301 directories deep \(at most 256\)"
hostile empty-target.tar "'l': symlink target of 0 bytes"
hostile size-octal.tar "'etc/data': .*(Truncated|truncated)"
hostile size-256.tar "'etc/data': size [0-9]+ \(at most 1099511627776\)"
hostile size-neg.tar "negative size"
hostile truncated.tar "'etc/data': .*(Truncated|truncated)"
hostile pax-len.tar "member 1: .*(pax|Pax|malformed)"
# a tar.zst inflating over 10000:1 is streamed (TR5): memory stays small
fixture "zst bomb" sh -c "truncate -s 256M '$T/zero' && tar -cf - -C '$T' zero | zstd -q >'$T/bomb.tar.zst' && rm '$T/zero'"
if has_oracle /usr/bin/time; then
	/usr/bin/time -f %M -o "$T/rss" $EDGEIMG info --files "$T/bomb.tar.zst" >"$T/.out" 2>/dev/null
	check "zst bomb: listed" grep -q "^f 0644 0 0 [0-9]* 268435456 " "$T/.out"
	[ -n "${SAN:-}" ] || check "zst bomb: under 48 MiB of memory ($(cat "$T/rss") KiB)" test "$(cat "$T/rss")" -lt 49152
fi
done_tests
