#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# seed-tar.sh DIR: small tars for the tar source's fuzzer, made by python3's
# tarfile (pax with xattrs, GNU with long names, ustar; every member type,
# hard links) and by GNU tar (a GNU sparse member), plain and gzip, xz
# and zstd compressed.
set -eu
dir=$1
python3 - "$dir" <<'PY'
import io, os, sys, tarfile
d = sys.argv[1]

def ti(name, type=tarfile.REGTYPE, size=0, **kw):
    t = tarfile.TarInfo(name)
    t.type, t.size, t.mode, t.mtime, t.uid, t.gid = type, size, 0o755, 1500000000, 1000, 100
    for k, v in kw.items():
        setattr(t, k, v)
    return t

members = [ti('./', tarfile.DIRTYPE), ti('./etc', tarfile.DIRTYPE),
           ti('./etc/passwd', size=40, pax_headers={'SCHILY.xattr.user.a': 'b',
                                                    'SCHILY.xattr.security.selinux': 'x_t'}),
           ti('./etc/sh', tarfile.LNKTYPE, linkname='./etc/passwd'),
           ti('./etc/l', tarfile.SYMTYPE, linkname='../x'),
           ti('./dev/null', tarfile.CHRTYPE, devmajor=1, devminor=3),
           ti('./dev/sda', tarfile.BLKTYPE, devmajor=8, devminor=0),
           ti('./dev/p', tarfile.FIFOTYPE),
           ti('./' + 'n' * 120 + '/f', size=3)]
for fmt, name in ((tarfile.PAX_FORMAT, 'pax'), (tarfile.GNU_FORMAT, 'gnu'), (tarfile.USTAR_FORMAT, 'ustar')):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=fmt) as tf:
        for t in members:
            if fmt == tarfile.USTAR_FORMAT and len(t.name) > 100:
                continue
            tf.addfile(t, io.BytesIO(b'y' * t.size) if t.type == tarfile.REGTYPE else None)
    open(os.path.join(d, name + '.tar'), 'wb').write(buf.getvalue())
PY
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
mkdir "$t/s"
truncate -s 1M "$t/s/sparse"
echo end >>"$t/s/sparse"
tar --sparse --format=posix -cf "$dir/sparse-pax.tar" -C "$t/s" .
tar --sparse --format=gnu -cf "$dir/sparse-gnu.tar" -C "$t/s" .
gzip -n <"$dir/pax.tar" >"$dir/pax.tar.gz"
xz <"$dir/gnu.tar" >"$dir/gnu.tar.xz"
zstd -q <"$dir/pax.tar" >"$dir/pax.tar.zst"
