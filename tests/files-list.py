#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The kernel's view of a directory tree, in the listing format of
# "edgeimg info --files" (see "edgeimg help info"), for tests to diff:
#   files-list.py DIR
# Pre-order walk, names sorted as bytes, symbolic links not followed,
# hard links after the first named "=> FIRST"; xattrs user., trusted. and
# security. (what squashfs and tar keep), sorted by name.
import hashlib
import os
import stat
import sys

TYPES = {stat.S_IFREG: 'f', stat.S_IFDIR: 'd', stat.S_IFLNK: 'l', stat.S_IFBLK: 'b',
         stat.S_IFCHR: 'c', stat.S_IFIFO: 'p', stat.S_IFSOCK: 's'}
KEPT = (b'user.', b'trusted.', b'security.')


def esc(b):
    return ''.join(chr(c) if 0x21 <= c <= 0x7e and c != 0x5c else '\\%03o' % c for c in b)


def main():
    root = os.fsencode(sys.argv[1].rstrip('/') or '/')
    first = {}
    out = sys.stdout

    def visit(rel):
        full = root + (b'/' + rel if rel else b'')
        st = os.lstat(full)
        t = TYPES[stat.S_IFMT(st.st_mode)]
        size, digest, tail = str(st.st_size if t == 'f' else 0), '-', ''
        if t in 'bc':
            size = '%d,%d' % (os.major(st.st_rdev), os.minor(st.st_rdev))
        if t == 'l':
            target = os.readlink(full)
            size = str(len(target))
            tail = ' -> ' + esc(target)
        key = (st.st_dev, st.st_ino)
        if t == 'f':
            if st.st_nlink > 1 and key in first:
                digest = first[key][1]
                tail = ' => /' + esc(first[key][0])
            else:
                h = hashlib.sha256()
                with open(full, 'rb') as f:
                    for chunk in iter(lambda: f.read(1 << 20), b''):
                        h.update(chunk)
                digest = h.hexdigest()
                if st.st_nlink > 1:
                    first[key] = (rel, digest)
        elif t != 'd' and st.st_nlink > 1:
            if key in first:
                tail += ' => /' + esc(first[key][0])
            else:
                first[key] = (rel, '-')
        out.write('%s %04o %d %d %d %s %s /%s%s\n' % (
            t, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime), size,
            digest, esc(rel), tail))
        try:
            names = sorted(n for n in os.listxattr(full, follow_symlinks=False)
                           if os.fsencode(n).startswith(KEPT))
        except OSError:
            names = []
        for n in names:
            v = os.getxattr(full, n, follow_symlinks=False)
            out.write('  xattr %s=%s\n' % (esc(os.fsencode(n)), v.hex()))
        if t == 'd':
            for name in sorted(os.listdir(full)):
                visit(rel + b'/' + name if rel else name)

    visit(b'')


main()
