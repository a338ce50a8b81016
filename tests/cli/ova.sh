#!/usr/bin/env bash
# requires: FORMAT_OVA
# SPDX-License-Identifier: MIT
# OVA reader: OVAs made by GNU tar (ustar, pax, gnu) and python's tarfile
# around streamOptimized VMDK, qcow2 and raw disks, judged by qemu-img on
# the extracted disk and by tarfile's member offsets; then every hostile
# row T1-T14, G1, G2 on tars built byte by byte.
. "$(dirname "$0")/../lib.sh"
need qemu-img sfdisk mkfs.ext4 python3 cmp tar sha256sum sha1sum gzip /usr/bin/time

mkdir -p "$T/o" "$T/w"
mkdisk "$T/disk.raw" 24

# The descriptor: File ids and hrefs, and the Disk's fileRef.
ovf() {         # ovf HREF [EXTRA_FILE_HREF_FIRST]
	local first=""
	[ -n "${2:-}" ] && first="<File ovf:href=\"$2\" ovf:id=\"iso\" ovf:size=\"1\"/>"
	cat <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- made by edgeimg's tests; <File ovf:href="not-this"> is in a comment -->
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References>
    $first
    <File ovf:href="$1" ovf:id="file1"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="24" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk1" ovf:fileRef="file1"/>
  </DiskSection>
  <VirtualSystem ovf:id="vm"><Info>A virtual machine</Info><Name>t</Name></VirtualSystem>
</Envelope>
EOF
}

# mkova OUT TARFORMAT ALG DISKFILE [EXTRA...]: an OVA from the files in $T/w.
mkova() {
	local out=$1 fmt=$2 alg=$3 disk=$4
	shift 4
	ovf "$disk" >"$T/w/app.ovf"
	(cd "$T/w" && ${alg}sum app.ovf "$disk" "$@" | awk -v a="$(tr a-z A-Z <<<"$alg")" \
		'{ print a "(" $2 ")= " $1 }' >app.mf)
	tar -C "$T/w" --format="$fmt" -cf "$out" app.ovf app.mf "$disk" "$@"
}

# judge OVA DISK DESC: edgeimg reads the OVA as qemu-img reads the disk.
judge() {
	local ova=$1 disk=$2 d=$3
	rm -f "$T/q.raw" "$T/e.raw"
	tar -xOf "$ova" "$disk" >"$T/x.disk"
	qemu-img convert -O raw "$T/x.disk" "$T/q.raw"
	run_ei 0 -- convert -O raw "$ova" "$T/e.raw"
	check "$d: convert matches qemu-img convert of the extracted disk" cmp -s "$T/q.raw" "$T/e.raw"
	check "$d: qemu-img compare agrees" qemu-img compare -q -f raw -F raw "$T/q.raw" "$T/e.raw"
	check "$d: output keeps holes" test "$(stat -c %b "$T/e.raw")" -le $(($(stat -c %b "$T/q.raw") + 64))
	run_ei 0 -- compare "$ova" "$T/q.raw"
	has "$d: compare says identical" '^Images are identical\.$' "$OUT"
	qemu-img info --output=json "$T/x.disk" >"$T/q.json"
	run_ei 0 -- info --json "$ova"
	echo "$OUT" >"$T/e.json"
	check "$d: info has the disk's virtual size, format and tarfile's offsets" \
		python3 - "$T/e.json" "$T/q.json" "$ova" "$disk" <<'PY'
import json, sys, tarfile
a, q = (json.load(open(p)) for p in sys.argv[1:3])
assert a['format'] == 'ova', a['format']
assert a['virtual-size'] == q['virtual-size'], (a['virtual-size'], q['virtual-size'])
d = a['format-specific']['data']
assert d['disk'] == sys.argv[4] and d['disk-format'] == q['format'], (d, q['format'])
members = [m for m in tarfile.open(sys.argv[3]).getmembers() if m.isfile()]
assert d['members'] == len(members), (d['members'], len(members))
for m, e in zip(members, d['member-list']):
    assert (m.name, m.offset_data, m.size) == (e['name'], e['offset'], e['size']), (m.name, m.offset_data, e)
assert 'verified' in d['manifest'] or d['manifest'] == 'absent'
PY
}

# --- correct: every tar flavour, every disk format --------------------------
disks="img"
qemu-img convert -O raw "$T/disk.raw" "$T/w/disk.img"
if has_feature FORMAT_QCOW2; then
	qemu-img convert -O qcow2 "$T/disk.raw" "$T/w/disk.qcow2"
	disks="$disks qcow2"
fi
if has_feature FORMAT_VMDK; then
	qemu-img convert -O vmdk -o subformat=streamOptimized "$T/disk.raw" "$T/w/disk.vmdk"
	disks="$disks vmdk"
fi
for fmt in ustar pax gnu; do
	for x in $disks; do
		mkova "$T/a.ova" $fmt sha256 disk.$x
		judge "$T/a.ova" disk.$x "$fmt tar, $x disk"
	done
done
run_ei 0 -- info --json "$T/a.ova"
has "manifest checked" '"manifest": "SHA256 verified"' "$OUT"

# SHA-1 manifest, upper-case hex, no manifest, CRLF lines
mkova "$T/b.ova" ustar sha1 disk.img
run_ei 0 -- info --json "$T/b.ova"
has "SHA1 manifest" '"manifest": "SHA1 verified"' "$OUT"
(cd "$T/w" && sha256sum app.ovf disk.img | awk '{ print "SHA256(" $2 ")= " toupper($1) "\r" }' >app.mf)
tar -C "$T/w" --format=ustar -cf "$T/b.ova" app.ovf app.mf disk.img
run_ei 0 -- info --json "$T/b.ova"
has "upper-case hex and CRLF accepted" '"manifest": "SHA256 verified"' "$OUT"
tar -C "$T/w" --format=ustar -cf "$T/b.ova" app.ovf disk.img
run_ei 0 -- info --json "$T/b.ova"
has "no manifest" '"manifest": "absent"' "$OUT"
# a manifest without the .ovf's digest (DSP0243 asks only for the files the
# .ovf references): read, the disk still verified, the gap reported
(cd "$T/w" && sha256sum disk.img | awk '{ print "SHA256(" $2 ")= " $1 }' >app.mf)
tar -C "$T/w" --format=ustar -cf "$T/b.ova" app.ovf app.mf disk.img
run_ei 0 -- info --json "$T/b.ova"
has "a manifest without the .ovf: read, the gap reported" '"manifest": "SHA256 verified; it has no digest of the .ovf' "$OUT"
judge "$T/b.ova" disk.img "a manifest without the .ovf"
(cd "$T/w" && sha256sum app.ovf | awk '{ print "SHA256(" $2 ")= " $1 }' >app.mf)
tar -C "$T/w" --format=ustar -cf "$T/b.ova" app.ovf app.mf disk.img
run_ei 1 -- info "$T/b.ova"
has "a manifest without the disk: refused" "has no digest of 'disk.img'" "$ERR"
# an ovf:size that disagrees with the tar member: reported, not fatal
sed 's|<File ovf:href="disk.img" ovf:id="file1"/>|<File ovf:href="disk.img" ovf:id="file1" ovf:size="12345"/>|' \
	"$T/w/app.ovf" >"$T/w/sz.ovf"
check "the .ovf got an ovf:size" grep -q 'ovf:size="12345"' "$T/w/sz.ovf"
tar -C "$T/w" --format=ustar -cf "$T/b.ova" sz.ovf disk.img
run_ei 0 -- info --json "$T/b.ova"
has "an ovf:size mismatch is reported" '"size-mismatch": "the .ovf says ovf:size 12345, the archive member has [0-9]+ bytes"' "$OUT"
judge "$T/b.ova" disk.img "an ovf:size that disagrees"
# the disk is the Disk's File, not the first File (an ISO listed first)
head -c 2048 /dev/urandom >"$T/w/tools.iso"
ovf disk.img tools.iso >"$T/w/app.ovf"
tar -C "$T/w" --format=ustar -cf "$T/b.ova" app.ovf tools.iso disk.img
run_ei 0 -- info --json "$T/b.ova"
has "the Disk's file is picked" '"disk": "disk.img"' "$OUT"
judge "$T/b.ova" disk.img "disk after an ISO"
# long member names: pax records and GNU 'L' headers; a subdirectory
long=$(printf 'd%.0s' $(seq 150)).img
cp "$T/w/disk.img" "$T/w/$long"
for fmt in pax gnu; do
	mkova "$T/c.ova" $fmt sha256 "$long"
	judge "$T/c.ova" "$long" "$fmt tar, 154-byte name"
done
# python's tarfile pax (././@PaxHeader, pax records for every member)
ovf disk.img >"$T/w/app.ovf"
python3 - "$T/w" "$T/py.ova" <<'PY'
import sys, tarfile
w, out = sys.argv[1:3]
with tarfile.open(out, 'w', format=tarfile.PAX_FORMAT) as t:
    for n in ('app.ovf', 'disk.img'):
        ti = t.gettarinfo(f'{w}/{n}', n)
        ti.pax_headers = {'comment': 'é' * 40}
        t.addfile(ti, open(f'{w}/{n}', 'rb'))
PY
judge "$T/py.ova" disk.img "python tarfile pax"

# --- two disks: --ova-disk picks one, by number in .ovf order or by file ---
# Disk 1 is the streamOptimized VMDK, disk 2 the qcow2 (listed first among
# the Files: the <Disk> order counts); each judged by qemu-img convert of
# that disk file.
mkdir -p "$T/w2"
qemu-img convert -O vmdk -o subformat=streamOptimized "$T/disk.raw" "$T/w2/sys.vmdk"
head -c 3000000 /dev/urandom >"$T/data.raw"
qemu-img convert -f raw -O qcow2 "$T/data.raw" "$T/w2/data.qcow2"
cat >"$T/w2/two.ovf" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References>
    <File ovf:href="data.qcow2" ovf:id="f-data"/>
    <File ovf:href="sys.vmdk" ovf:id="f-sys"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="24" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="sys" ovf:fileRef="f-sys"/>
    <Disk ovf:capacity="3000000" ovf:diskId="data" ovf:fileRef="f-data"/>
  </DiskSection>
  <VirtualSystem ovf:id="vm"><Info>A virtual machine</Info><Name>t</Name></VirtualSystem>
</Envelope>
XML
(cd "$T/w2" && sha256sum two.ovf sys.vmdk data.qcow2 |
	awk '{ print "SHA256(" $2 ")= " $1 }' >two.mf)
tar -C "$T/w2" --format=ustar -cf "$T/two.ova" two.ovf two.mf sys.vmdk data.qcow2
n=0
for f in sys.vmdk data.qcow2; do
	n=$((n + 1))
	rm -f "$T/q.raw"
	qemu-img convert -O raw "$T/w2/$f" "$T/q.raw"
	for pick in $n $f; do
		run_ei 0 -- convert --ova-disk "$pick" -O raw "$T/two.ova" "$T/o/e.raw"
		check "two disks, --ova-disk $pick: convert matches qemu-img convert of $f" \
			cmp "$T/q.raw" "$T/o/e.raw"
		rm -f "$T/o/e.raw"
	done
	run_ei 0 -- compare --ova-disk $n "$T/two.ova" "$T/q.raw"
	has "two disks, compare --ova-disk $n" '^Images are identical\.$' "$OUT"
	qemu-img info --output=json "$T/w2/$f" >"$T/q.json"
	run_ei 0 -- info --json --ova-disk $f "$T/two.ova"
	echo "$OUT" >"$T/e.json"
	check "two disks, info --ova-disk $f: disk $n read, both listed" \
		python3 - "$T/e.json" "$T/q.json" "$n" "$f" <<'PY'
import json, sys
a, q = (json.load(open(p)) for p in sys.argv[1:3])
n, f = int(sys.argv[3]), sys.argv[4]
d = a['format-specific']['data']
assert a['virtual-size'] == q['virtual-size'], (a['virtual-size'], q['virtual-size'])
assert d['disk'] == f and d['disk-number'] == n and d['disks'] == 2, d
assert [x['file'] for x in d['disk-list']] == ['sys.vmdk', 'data.qcow2'], d['disk-list']
assert [x['read'] for x in d['disk-list']] == [n == 1, n == 2], d['disk-list']
assert [x['format'] for x in d['disk-list']] == ['vmdk', 'qcow2'], d['disk-list']
assert d['disk-list'][n - 1]['virtual-size'] == q['virtual-size']
PY
done
# without the option: the first <Disk>
rm -f "$T/q.raw"
qemu-img convert -O raw "$T/w2/sys.vmdk" "$T/q.raw"
run_ei 0 -- convert -O raw "$T/two.ova" "$T/o/e.raw"
check "two disks: the first <Disk> by default" cmp "$T/q.raw" "$T/o/e.raw"
rm -f "$T/o/e.raw"
run_ei 0 -- info "$T/two.ova"
has "info lists disk 2" 'file: data\.qcow2' "$OUT"
has "info says which disk is read" 'disk-number: 1' "$OUT"
# delta and apply take it too (OLD is disk 2 of the OVA)
if has_feature CODEC_ZSTD; then
	run_ei 0 -- delta --ova-disk 2 "$T/two.ova" "$T/disk.raw" "$T/o/p"
	run_ei 0 -- apply --ova-disk 2 "$T/two.ova" "$T/o/p" "$T/o/new.raw"
	check "delta/apply --ova-disk 2: NEW rebuilt" cmp "$T/disk.raw" "$T/o/new.raw"
	rm -f "$T/o/p" "$T/o/new.raw"
fi
# out of range, or a name that no <Disk> has: named, with the count
for bad in 3 0 nope.vmdk two.mf; do
	run_ei 2 -- convert --ova-disk $bad -O raw "$T/two.ova" "$T/o/e.raw"
	case $bad in
	[0-9]*) has "--ova-disk $bad" "ova: --ova-disk $bad: the .ovf has 2 disks; give 1 to 2 or a disk's file name" "$ERR" ;;
	*) has "--ova-disk $bad" "ova: --ova-disk '$bad': no <Disk> of the .ovf has that file; its 2 disks: 1 'sys\.vmdk', 2 'data\.qcow2'" "$ERR" ;;
	esac
done
run_ei 2 -- info --ova-disk 9 "$T/two.ova"
has "info --ova-disk 9" 'the .ovf has 2 disks' "$ERR"
check "--ova-disk errors: no output left" test -z "$(listing)"

# --- hostile: tars built byte by byte -------------------------------------
cat >"$T/mk.py" <<'PY'
import hashlib, os, sys
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
disk = bytes((i * 7) & 0xff for i in range(65536))
def ovfx(href='disk.img', extra='', attrs=''):
    return (f'<?xml version="1.0"?>\n{extra}<Envelope xmlns:ovf="x"><References>'
            f'<File ovf:href="{href}" ovf:id="f1"{attrs}/></References><DiskSection>'
            f'<Disk ovf:diskId="d1" ovf:fileRef="f1"/></DiskSection></Envelope>\n').encode()
OVF = ovfx()
def hdr(name, size, type=b'0', size_field=None, magic=b'ustar\x0000', chk=None,
        link=b''):
    h = bytearray(512)
    h[0:len(name[:100])] = name[:100]
    h[100:108] = b'0000644\0'
    h[108:116] = h[116:124] = b'0000000\0'
    h[124:136] = size_field if size_field is not None else b'%011o\0' % size
    h[136:148] = b'00000000000\0'
    h[156:157] = type
    h[157:157 + len(link)] = link
    h[257:265] = magic
    h[148:156] = b' ' * 8
    h[148:156] = b'%06o\0 ' % (sum(h) if chk is None else chk)
    return bytes(h)
def pad(b):
    return b + b'\0' * (-len(b) % 512)
def mem(name, data, **kw):
    return hdr(name, len(data), **kw) + pad(data)
def rec(k, v):
    body = b' ' + k + b'=' + v + b'\n'
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n += 1
    return str(n).encode() + body
def pax(data, **kw):
    return mem(b'PaxHeader/x', data, type=b'x', **kw)
def mf(files, alg='sha256', upper=False):
    lines = []
    for n, d in files:
        h = getattr(hashlib, alg)(d).hexdigest()
        lines.append(f'{alg.upper()}({n})= {h.upper() if upper else h}\n')
    return ''.join(lines).encode()
END = b'\0' * 1024
GOODMF = mf([('app.ovf', OVF), ('disk.img', disk)])
def ova(*parts):
    return b''.join(parts) + END
cases = {}
def case(name, data, want):
    open(f'{out}/{name}', 'wb').write(data)
    cases[name] = want
# sanity: the builder makes a valid OVA
case('ok', ova(mem(b'app.ovf', OVF), mem(b'app.mf', GOODMF), mem(b'disk.img', disk)), '')
case('ok-pax', ova(pax(rec(b'path', b'app.ovf')), mem(b'x', OVF),
                   pax(rec(b'size', b'65536') + rec(b'mtime', b'1.5')), mem(b'disk.img', disk)), '')
# T1 names that leave the archive
for i, n in enumerate([b'../../etc/cron.d/x', b'/etc/x', b'a/../../b']):
    case(f't1-{i}', ova(mem(b'app.ovf', OVF), mem(n, b'x'), mem(b'disk.img', disk)),
         "ova: member name .* (absolute|'\\.\\.' component)")
case('t1-pax', ova(mem(b'app.ovf', OVF), pax(rec(b'path', b'../x')), mem(b'x', b'x'),
                   mem(b'disk.img', disk)), "ova: member name '\\.\\./x'")
# T2 symlinks, T3 hard links (with data)
case('t2', ova(mem(b'app.ovf', OVF), hdr(b'disk.img', 0, type=b'2', link=b'/etc/shadow')),
     'ova: symbolic link member .* refused')
case('t3', ova(mem(b'app.ovf', OVF), mem(b'disk.img', disk[:512], type=b'1', link=b'app.ovf')),
     'ova: hard link member .*size 512.* refused')
# T4 pax size vs ustar size
case('t4-zero', ova(mem(b'app.ovf', OVF), pax(rec(b'size', b'2048')),
                    hdr(b'disk.img', 0) + disk[:2048]), 'ova: member at .*: pax size 2048 and ustar size 0 disagree')
case('t4-less', ova(mem(b'app.ovf', OVF), pax(rec(b'size', b'1000')), mem(b'disk.img', disk[:2048])),
     'pax size 1000 and ustar size 2048 disagree')
# T5 malformed pax records
for i, r in enumerate([b'0 path=x\n', b'999 path=x\n', b'12 path=abcd', b'9 pathxx\n', b'x path=y\n']):
    case(f't5-{i}', ova(mem(b'app.ovf', OVF), pax(r), mem(b'disk.img', disk)), 'ova: pax record at')
# T6 a 1 GiB pax header and a 1 GiB GNU long name (sparse files: the data is there)
for t in (b'x', b'L'):
    big = 1 << 30
    case(f't6-{t.decode()}', mem(b'app.ovf', OVF) + hdr(b'././@LongLink', big, type=t)
         + b'\0' * 512, '')
    with open(f'{out}/t6-{t.decode()}', 'r+b') as f:
        f.truncate(len(mem(b'app.ovf', OVF)) + 512 + big + 4096)
    cases[f't6-{t.decode()}'] = f"ova: '{t.decode()}' extended header at .* is 1073741824 bytes, more than the 1048576 allowed"
# T7 a GNU long link name cut by the end of the file
case('t7', mem(b'app.ovf', OVF) + hdr(b'././@LongLink', 1000, type=b'K') + b'disk', 'ova: ')
# T8 size fields
for i, f in enumerate([b'\xff' * 12, b'-2\0' + b'\0' * 9, b'0000000001x\0', b'000000000010',
                       b'\x80' + b'\xff' * 11]):
    case(f't8-{i}', ova(mem(b'app.ovf', OVF), hdr(b'disk.img', 0, size_field=f) + pad(disk)),
         'ova: tar header at 1024 has an invalid size field')
# T9 checksum, a zero block in the middle
case('t9-sum', ova(mem(b'app.ovf', OVF), hdr(b'disk.img', len(disk), chk=1234) + disk),
     'ova: tar header at 1024 has a wrong checksum')
case('t9-zero', ova(mem(b'app.ovf', OVF), b'\0' * 512, mem(b'disk.img', disk)),
     'ova: a zero block at 1024 in the middle of the archive')
case('t9-noend', mem(b'app.ovf', OVF) + mem(b'disk.img', disk), 'without its end-of-archive marker')
# T10 a member claiming 7 GiB in a small file
case('t10', ova(mem(b'app.ovf', OVF), hdr(b'disk.img', 7 << 30) + disk),
     'ova: member at 1024 declares 7516192768 bytes, past the end of the archive')
# T11 manifests
case('t11-bad', ova(mem(b'app.ovf', OVF), mem(b'app.mf', mf([('app.ovf', OVF), ('disk.img', disk[:-1])])),
                    mem(b'disk.img', disk)), "ova: SHA256 digest of 'disk.img' is [0-9a-f]{64}, the manifest says")
# DSP0243: the manifest lists the files the .ovf references; one without the
# .ovf's own digest is read (info says so, below)
case('t11-noovf', ova(mem(b'app.ovf', OVF), mem(b'app.mf', mf([('disk.img', disk)])), mem(b'disk.img', disk)), '')
case('t11-nodisk', ova(mem(b'app.ovf', OVF), mem(b'app.mf', mf([('app.ovf', OVF)])), mem(b'disk.img', disk)),
     "ova: the manifest 'app.mf' has no digest of 'disk.img'")
case('t11-upper', ova(mem(b'app.ovf', OVF), mem(b'app.mf', mf([('app.ovf', OVF), ('disk.img', disk)], upper=True)),
                      mem(b'disk.img', disk)), '')
case('t11-sha1', ova(mem(b'app.ovf', OVF), mem(b'app.mf', mf([('app.ovf', OVF), ('disk.img', disk)], 'sha1')),
                     mem(b'disk.img', disk)), '')
case('t11-sha512', ova(mem(b'app.ovf', OVF), mem(b'app.mf', mf([('app.ovf', OVF), ('disk.img', disk)], 'sha512')),
                       mem(b'disk.img', disk)), "ova: manifest line 1 uses digest 'SHA512'")
case('t11-sha1-bad', ova(mem(b'app.ovf', OVF), mem(b'app.mf', mf([('app.ovf', OVF + b' '), ('disk.img', disk)], 'sha1')),
                         mem(b'disk.img', disk)), "ova: SHA1 digest of 'app.ovf'")
case('t11-junk', ova(mem(b'app.ovf', OVF), mem(b'app.mf', b'hello world\n'), mem(b'disk.img', disk)),
     "ova: manifest line 1 is not")
# T12 order, references, duplicates
case('t12-order', ova(mem(b'app.mf', GOODMF), mem(b'app.ovf', OVF), mem(b'disk.img', disk)),
     "ova: the first member is 'app.mf', not an .ovf descriptor")
case('t12-missing', ova(mem(b'app.ovf', ovfx('nothere.img')), mem(b'disk.img', disk)),
     "ova: the .ovf refers to 'nothere.img', which is not in the archive")
case('t12-dup', ova(mem(b'app.ovf', OVF), mem(b'disk.img', disk), mem(b'disk.img', disk)),
     "ova: two members are named 'disk.img'")
case('t12-url', ova(mem(b'app.ovf', ovfx('http://example.com/d.img')), mem(b'disk.img', disk)),
     "outside the archive; refused")
# T14 a DTD with entities (billion laughs)
lol = '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>\n'
case('t14', ova(mem(b'app.ovf', ovfx(extra=lol)), mem(b'disk.img', disk)),
     "ova: the .ovf has a '<!DOCTYPE.*DTDs and entities are refused")
case('t14-ent', ova(mem(b'app.ovf', ovfx(href='&lol;')), mem(b'disk.img', disk)),
     "has an entity or character that is not allowed")
case('ent-ok', ova(mem(b'app.ovf', ovfx(href='d&amp;&#105;.img')), mem(b'd&i.img', disk)), '')
# the .ovf asks for what is not read
case('gzfile', ova(mem(b'app.ovf', ovfx(attrs=' ovf:compression="gzip"')), mem(b'disk.img', disk)),
     "ova: disk file 'disk.img' is stored compressed")
case('nodisk', ova(mem(b'app.ovf', OVF.replace(b'<Disk ', b'<Disq ')), mem(b'disk.img', disk)),
     'ova: the .ovf has no <Disk> with an ovf:fileRef')
case('utf16', ova(mem(b'app.ovf', OVF.decode().encode('utf-16')), mem(b'disk.img', disk)),
     'ova: the .ovf holds a NUL byte')
case('type', ova(mem(b'app.ovf', OVF), mem(b'fifo', b'', type=b'6'), mem(b'disk.img', disk)),
     "ova: member of type '6'")
case('sparse', ova(mem(b'app.ovf', OVF), pax(rec(b'GNU.sparse.major', b'1')), mem(b'disk.img', disk)),
     'ova: sparse member')
case('nested', ova(mem(b'app.ovf', OVF), mem(b'disk.img', ova(mem(b'app.ovf', OVF), mem(b'disk.img', disk)))),
     "ova: disk 'disk.img' is itself an OVA")
case('v7', ova(mem(b'app.ovf', OVF, magic=b'\0' * 8), mem(b'disk.img', disk)),
     'is not a ustar or pax tar header')
# G1
case('g1-empty', b'', 'too small for a tar header')
case('g1-magic', hdr(b'', 0)[:512], "ova: member name '' at 0 is empty")
case('g1-zero', b'\0' * 65536, 'the first member is missing')
case('g1-ff', b'\xff' * 65536, 'is not a ustar or pax tar header')
with open(f'{out}/cases', 'w') as f:
    for k, v in cases.items():
        f.write(f'{k}|{v}\n')
PY
python3 "$T/mk.py" "$T/h"
while IFS='|' read -r c want; do
	if [ -z "$want" ]; then
		run_ei 0 -- convert -f ova -O raw "$T/h/$c" "$T/o/$c.raw"
		check "$c: the disk member's bytes" \
			python3 -c "import sys; d=open('$T/o/$c.raw','rb').read(); sys.exit(d != bytes((i*7)&0xff for i in range(65536)))"
		rm -f "$T/o/$c.raw"
		continue
	fi
	run_ei 1 -- info -f ova "$T/h/$c"
	has "$c: info names the field" "$want" "$ERR"
	run_ei 1 -- convert -O raw -f ova "$T/h/$c" "$T/o/x"
	has "$c: convert names the field" "$want" "$ERR"
	check "$c: no output left behind" test -z "$(listing)"
done <"$T/h/cases"
# T6: refused without reading 1 GiB into memory
if [ -z "${SAN:-}" ]; then
	/usr/bin/time -f %M -o "$T/rss" $EDGEIMG info -f ova "$T/h/t6-x" >/dev/null 2>&1
	rss=$(tail -n 1 "$T/rss")
	check "T6: peak RSS $rss KiB < 64 MiB" test "$rss" -lt 65536
fi
# G1 with probing: an empty or zero file is a raw disk, not an OVA
run_ei 0 -- info "$T/h/g1-zero"
has "G1: zeros probe as raw" '^file format: raw$' "$OUT"

# T13: a gzip-wrapped OVA (VirtualBox refuses it): refused, saying why
gzip -c "$T/a.ova" >"$T/a.ova.gz"
run_ei 1 -- info -f ova "$T/a.ova.gz"
has "T13 with -f ova" 'ova: .* is compressed \(gzip\); a compressed OVA is not read' "$ERR"
if has_feature FORMAT_CRAW; then
	run_ei 1 -- convert -O raw "$T/a.ova.gz" "$T/o/x"
	has "T13 probed" 'craw: the gzip stream holds a tar archive \(a compressed OVA\?\)' "$ERR"
	check "T13: no output" test -z "$(listing)"
fi

# References out of the disk are refused inside an OVA, even with --allow-refs
if has_feature FORMAT_QCOW2; then
	qemu-img create -q -f qcow2 -b disk.img -F raw "$T/w/child.qcow2"
	mkova "$T/r.ova" ustar sha256 child.qcow2
	run_ei 1 -- info --allow-refs "$T/r.ova"
	has "backing file inside an OVA refused" "ova: disk 'child.qcow2'.*refused" "$ERR"
fi

# --- truncation sweep: every 512 bytes of the headers, then into the disk ---
mkova "$T/a.ova" ustar sha256 disk.img
size=$(stat -c %s "$T/a.ova")
fails=0 runs=0
for cut in $(seq 0 512 8192) 100000 1000000 $((size - 1024)) $((size - 512)) $((size - 1)); do
	head -c "$cut" "$T/a.ova" >"$T/cut.ova"
	$EDGEIMG convert -f ova -O raw "$T/cut.ova" "$T/o/x" >/dev/null 2>"$T/cut.err"
	rc=$?
	runs=$((runs + 1))
	if [ $rc -ne 1 ] || ! file_matches '^edgeimg convert: ([^ ]*cut.ova: )?ova: ' "$T/cut.err" || [ -n "$(listing)" ]; then
		fails=$((fails + 1))
		echo "cut at $cut: exit $rc: $(cat "$T/cut.err")"
		rm -f "$T/o/"*
	fi
done
check "truncation sweep: $runs cuts, each a clean ova: error with no output ($fails bad)" test $fails -eq 0

# --- G2: the OVA given as every other format, and others as ova -------------
for f in craw qcow2 vmdk vhd vhdx vdi; do
	grep -qw "FORMAT_$(tr a-z A-Z <<<"$f")" <<<"${FEATURES:-}" || continue
	run_ei 1 -- info -f $f "$T/a.ova"
	has "G2: OVA as $f" "^edgeimg info: ([^ ]*a.ova: )?($f|$f[^ ]*):" "$ERR"
done
run_ei 1 -- info -f ova "$T/disk.raw"
has "G2: raw as ova" 'ova: .* is not a ustar or pax tar header' "$ERR"
if has_feature FORMAT_QCOW2; then
	run_ei 1 -- info -f ova "$T/w/disk.qcow2"
	has "G2: qcow2 as ova" 'ova: .* is not a ustar or pax tar header' "$ERR"
fi

done_tests
