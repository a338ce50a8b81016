#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Partition tables and --partition: GPT disks made by sgdisk and MBR disks
# with logical partitions made by sfdisk, filesystems made by mkfs.ext2/3/4,
# mkfs.vfat, mkswap, mksquashfs and mkfs.erofs written into them; the table
# judged by sfdisk --json, each filesystem by blkid -p on the partition's
# bytes, --partition's disk by cmp and qemu-img compare against dd of the
# range; delta/apply of one partition; every hostile row PT1-PT6.
. "$(dirname "$0")/../lib.sh"
need sgdisk sfdisk mkfs.ext4 mkfs.ext3 mkfs.ext2 mkfs.vfat mkswap mksquashfs \
	mkfs.erofs blkid qemu-img python3 cmp

# --- fixtures ---------------------------------------------------------------
mkdir -p "$T/tree" "$T/o"
cp -r "$TOP/src/core" "$T/tree/"
head -c 300000 /dev/urandom >"$T/tree/random.bin"

# put DISK FILE START_SECTOR: FILE's bytes into DISK at sector START.
put() { dd if="$2" of="$1" bs=512 seek="$3" conv=notrunc status=none; }
# range DISK START SIZE OUT (bytes): what dd says the partition holds.
range() { dd if="$1" of="$4" bs=512 skip=$(($2 / 512)) count=$(($3 / 512)) status=none; }

# GPT: 1 esp (vfat EFI), 2 root (ext4 rootfs), 3 swap (swap, label sw),
# 4 ro (squashfs), 5 ero (erofs), 6 data (nothing).
d=$T/d.raw
truncate -s 96M "$d"
fixture "sgdisk GPT" sgdisk -n1:2048:+8M -t1:ef00 -c1:esp -n2:0:+24M -t2:8304 -c2:root \
	-n3:0:+4M -t3:8200 -c3:swap -n4:0:+8M -t4:8300 -c4:ro -n5:0:+8M -t5:8300 -c5:ero \
	-n6:0:+4M -t6:8e00 -c6:data "$d" >/dev/null
fixture "mkfs.vfat" mkfs.vfat -n EFI -i 12ab34cd -C "$T/p1" 8192 >/dev/null
fixture "mkfs.ext4" mkfs.ext4 -q -F -L rootfs -d "$T/tree" "$T/p2" 24M >/dev/null
truncate -s 4M "$T/p3"
fixture "mkswap" mkswap -L sw "$T/p3" >/dev/null
fixture "mksquashfs" mksquashfs "$T/tree" "$T/p4" -noappend -quiet >/dev/null
fixture "mkfs.erofs" mkfs.erofs -Uc1d2e3f4-0000-4000-8000-00000000abcd "$T/p5" "$T/tree" >/dev/null
sfdisk --json "$d" >"$T/sf.json"
starts=($(python3 -c 'import json,sys; print(*[p["start"] for p in json.load(open(sys.argv[1]))["partitiontable"]["partitions"]])' "$T/sf.json"))
for i in 1 2 3 4 5; do put "$d" "$T/p$i" "${starts[$((i - 1))]}"; done
# the disk in a container: qcow2 when the build reads it (raw otherwise)
ifmt=raw
has_feature FORMAT_QCOW2 && ifmt=qcow2
fixture "qemu-img convert to $ifmt" qemu-img convert -f raw -O $ifmt "$d" "$T/d.img"

# --- info against sfdisk --json and blkid -p ---------------------------------
# cmp_table INFO_JSON SFDISK_JSON DISK: every partition's start, size,
# type, name, uuid as sfdisk says; its filesystem, label, uuid as blkid -p
# says of dd's copy of its bytes.
cmp_table() {
	python3 - "$@" <<'PY'
import json, re, subprocess, sys
ei = json.load(open(sys.argv[1]))["partition-table"]
sf = json.load(open(sys.argv[2]))["partitiontable"]
disk, tmp = sys.argv[3], sys.argv[4]
ss = sf.get("sectorsize", 512)
bad = []
want = {"gpt": "gpt", "dos": "dos"}[sf["label"]]
if ei["type"] != want: bad.append("table %s != %s" % (ei["type"], want))
if ei["sector-size"] != ss: bad.append("sector size %s != %s" % (ei["sector-size"], ss))
if want == "gpt" and ei["disk-guid"].upper() != sf["id"].upper(): bad.append("disk guid")
sfp = [p for p in sf["partitions"]]
eip = {p["number"]: p for p in ei["partitions"]}
if len(sfp) != len(eip): bad.append("%d partitions, sfdisk %d" % (len(eip), len(sfp)))
for p in sfp:
    n = int(re.search(r"(\d+)$", p["node"]).group(1))
    e = eip.get(n)
    if not e: bad.append("no partition %d" % n); continue
    if e["start"] != p["start"] * ss or e["size"] != p["size"] * ss:
        bad.append("partition %d at %d+%d, sfdisk %d+%d" % (n, e["start"], e["size"], p["start"] * ss, p["size"] * ss))
    t = p["type"].upper() if want == "gpt" else "0X%02X" % int(p["type"], 16)
    if e["type"].upper() != t: bad.append("partition %d type %s, sfdisk %s" % (n, e["type"], t))
    if want == "gpt":
        if e["uuid"].upper() != p["uuid"].upper(): bad.append("partition %d uuid" % n)
        if e["name"] != p.get("name", ""): bad.append("partition %d name %r, sfdisk %r" % (n, e["name"], p.get("name")))
    if "filesystem" not in e: continue
    with open(disk, "rb") as f, open(tmp, "wb") as o:
        f.seek(e["start"]); o.write(f.read(e["size"]))
    out = subprocess.run(["blkid", "-p", "-o", "export", tmp], capture_output=True, text=True).stdout
    kv = dict(l.split("=", 1) for l in out.splitlines() if "=" in l)
    if e["filesystem"] != kv.get("TYPE", "unknown"):
        bad.append("partition %d filesystem %s, blkid %s" % (n, e["filesystem"], kv.get("TYPE")))
    if e.get("label", "") != kv.get("LABEL", ""): bad.append("partition %d label %r, blkid %r" % (n, e.get("label"), kv.get("LABEL")))
    if e.get("fs-uuid", "").lower() != kv.get("UUID", "").lower(): bad.append("partition %d fs uuid %r, blkid %r" % (n, e.get("fs-uuid"), kv.get("UUID")))
if bad: print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
}

run_ei 0 -- info --json "$d"
printf '%s\n' "$OUT" >"$T/i.json"
check "info --json of a GPT disk is valid JSON" python3 -m json.tool "$T/i.json" >/dev/null
check "GPT table and filesystems agree with sfdisk --json and blkid -p" cmp_table "$T/i.json" "$T/sf.json" "$d" "$T/blk"
run_ei 0 -- info --json "$T/d.img"
printf '%s\n' "$OUT" >"$T/q.json"
check "the $ifmt of the disk lists the same table" cmp_table "$T/q.json" "$T/sf.json" "$d" "$T/blk"
run_ei 0 -- info "$d"
has "info text names the table" '^partition table: gpt, 512-byte sectors' "$OUT"
has "info text: partition 2" 'partition 2: start [0-9]+, size 25165824 \(24 MiB\), type 4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709 \(Linux root \(x86-64\)\), name "root".*filesystem ext4, label "rootfs"' "$OUT"
has "info text: partition 1 is vfat with FAT's volume id" 'partition 1: .*\(EFI System\).*filesystem vfat, label "EFI", fs uuid 12AB-34CD' "$OUT"
has "info text: squashfs" 'partition 4: .*filesystem squashfs' "$OUT"
has "info text: erofs" 'partition 5: .*filesystem erofs.*fs uuid c1d2e3f4-0000-4000-8000-00000000abcd' "$OUT"
has "info text: swap" 'partition 3: .*\(Linux swap\).*filesystem swap, label "sw"' "$OUT"
has "info text: LVM, nothing in it" 'partition 6: .*\(Linux LVM\).*filesystem unknown' "$OUT"

# --- --partition: the partition is the disk ----------------------------------
read -r s2 z2 < <(python3 -c 'import json,sys; p=[p for p in json.load(open(sys.argv[1]))["partitiontable"]["partitions"] if p["node"].endswith("raw2")][0]; print(p["start"]*512, p["size"]*512)' "$T/sf.json")
range "$d" "$s2" "$z2" "$T/p2.dd"
run_ei 0 -- convert --partition 2 -O raw "$T/d.img" "$T/p2.out"
check "convert --partition 2 of the $ifmt is dd's copy of the range (cmp)" cmp "$T/p2.out" "$T/p2.dd"
check "... and qemu-img compare agrees" qemu-img compare -q -f raw -F raw "$T/p2.out" "$T/p2.dd"
run_ei 0 -- convert --partition root -O raw "$d" "$T/p2.name"
check "--partition root (the GPT name) is partition 2" cmp "$T/p2.name" "$T/p2.dd"
if has_feature OUTPUT_QCOW2; then
	run_ei 0 -- convert --partition rootfs -O qcow2 "$T/d.img" "$T/p2.label.qcow2"
	check "--partition rootfs (the ext4 label) as qcow2 holds partition 2 (qemu-img compare)" \
		qemu-img compare -q -f qcow2 -F raw "$T/p2.label.qcow2" "$T/p2.dd"
	check "the partition's holes stay holes: the qcow2 is smaller than the partition" \
		test "$(stat -c %s "$T/p2.label.qcow2")" -lt $((z2 / 2))
fi
run_ei 0 -- info --partition root --json "$T/d.img"
printf '%s\n' "$OUT" >"$T/ip.json"
check "info --partition: the disk is the partition, its filesystem as blkid says" python3 - "$T/ip.json" "$T/p2.dd" "$ifmt" <<'PY'
import json, subprocess, sys
j = json.load(open(sys.argv[1]))
kv = dict(l.split("=", 1) for l in subprocess.run(["blkid", "-p", "-o", "export", sys.argv[2]], capture_output=True, text=True).stdout.splitlines())
import os
assert j["virtual-size"] == os.path.getsize(sys.argv[2]), j
assert j["format"] == sys.argv[3] and j["partition"]["number"] == 2 and j["partition"]["name"] == "root", j
assert j["filesystem"]["type"] == kv["TYPE"] and j["filesystem"]["label"] == kv["LABEL"] and j["filesystem"]["uuid"] == kv["UUID"], (j, kv)
PY
run_ei 0 -- compare --partition 2 "$d" "$T/d.img"
check "compare --partition 2 of the raw and the $ifmt: same" test "$RC" = 0

# errors: ambiguous, missing; no output
run_ei 2 -- convert --partition 9 -O raw "$d" "$T/o/x.raw"
has "--partition 9: no such number, the partitions listed" "no partition has that number; partitions: 1 name 'esp' vfat label 'EFI'; 2 name 'root' ext4 label 'rootfs'" "$ERR"
run_ei 2 -- convert --partition nosuch -O raw "$d" "$T/o/x.raw"
has "--partition nosuch: no such name or label" "nosuch: no partition has that name or filesystem label; partitions: 1 " "$ERR"
check "no output after a bad --partition" test -z "$(listing)"
run_ei 2 -- info --partition "" "$d"

# the same label on two partitions is ambiguous
cp "$d" "$T/dup.raw"
fixture "mkswap -L EFI" mkswap -L EFI "$T/p3" >/dev/null
put "$T/dup.raw" "$T/p3" "${starts[2]}"
run_ei 2 -- convert --partition EFI -O raw "$T/dup.raw" "$T/o/x.raw"
has "an ambiguous label is an error listing the partitions" "EFI: more than one partition has that name or label; partitions: 1 name 'esp' vfat label 'EFI'; 2 .*; 3 name 'swap' swap label 'EFI'" "$ERR"
check "no output after an ambiguous --partition" test -z "$(listing)"
run_ei 0 -- convert --partition 3 -O raw "$T/dup.raw" "$T/p3.out"
check "a partition by number whatever its label" cmp "$T/p3.out" "$T/p3"

# --- delta and apply of one partition ----------------------------------------
cp "$d" "$T/d2.raw"
echo "a change in the root filesystem" >"$T/tree/changed.txt"
head -c 100000 /dev/urandom >"$T/tree/random2.bin"
fixture "mkfs.ext4 of NEW's root" mkfs.ext4 -q -F -L rootfs -d "$T/tree" "$T/p2new" 24M >/dev/null
put "$T/d2.raw" "$T/p2new" "${starts[1]}"
fixture "qemu-img convert NEW" qemu-img convert -f raw -O $ifmt "$T/d2.raw" "$T/d2.img"
run_ei 1 -- compare --partition root "$d" "$T/d2.img"
has "compare --partition root: the root partitions differ" "differ|mismatch|offset" "$OUT$ERR"
run_ei 0 -- compare --partition esp "$d" "$T/d2.img"
if has_feature CODEC_ZSTD; then
	run_ei 0 -- delta --partition root "$d" "$T/d2.img" "$T/p.patch"
	run_ei 0 -- apply --partition 2 "$d" "$T/p.patch" "$T/new.p2"
	check "apply --partition 2 gives NEW's partition 2 (cmp)" cmp "$T/new.p2" "$T/p2new"
	range "$T/d2.raw" "$s2" "$z2" "$T/p2new.dd"
	check "... which is dd's copy of NEW's range" cmp "$T/new.p2" "$T/p2new.dd"
	run_ei 1 -- apply "$d" "$T/p.patch" "$T/o/whole"
	has "the patch of a partition refuses the whole disk as OLD" "nothing written" "$ERR"
	check "no output after the refused apply" test -z "$(listing)"
fi

# --- MBR: primary, extended, logical ------------------------------------------
m=$T/m.raw
truncate -s 64M "$m"
fixture "sfdisk MBR" sfdisk -q "$m" <<'EOF'
label: dos
start=2048, size=16384, type=83
start=18432, size=16384, type=c
start=34816, type=5
start=36864, size=8192, type=82
start=47104, size=16384, type=83
start=65536, size=8192, type=83
EOF
fixture "mkfs.ext3" mkfs.ext3 -q -F -L three "$T/m1" 8M >/dev/null
fixture "mkfs.vfat" mkfs.vfat -n MFAT -C "$T/m2" 8192 >/dev/null
truncate -s 4M "$T/m5"
fixture "mkswap" mkswap -L mswap "$T/m5" >/dev/null
fixture "mkfs.ext2" mkfs.ext2 -q -F -L two "$T/m6" 8M >/dev/null
put "$m" "$T/m1" 2048
put "$m" "$T/m2" 18432
put "$m" "$T/m5" 36864
put "$m" "$T/m6" 47104
sfdisk --json "$m" >"$T/msf.json"
run_ei 0 -- info --json "$m"
printf '%s\n' "$OUT" >"$T/mi.json"
check "MBR with logical partitions agrees with sfdisk --json and blkid -p" cmp_table "$T/mi.json" "$T/msf.json" "$m" "$T/blk"
run_ei 0 -- info "$m"
has "info text: logical 6 is ext2" 'partition 6: start 24117248, size 8388608 \(8 MiB\), type 0x83 \(Linux\), logical, filesystem ext2, label "two"' "$OUT"
has "info text: the extended partition" 'partition 3: .*type 0x05 \(Extended\)$' "$OUT"
run_ei 0 -- convert --partition 6 -O raw "$m" "$T/m6.out"
check "convert --partition 6 (a logical one) is the ext2 written there" cmp "$T/m6.out" "$T/m6"
run_ei 0 -- convert --partition two -O raw "$m" "$T/m6.label"
check "--partition by ext2 label" cmp "$T/m6.label" "$T/m6"
run_ei 2 -- convert --partition 3 -O raw "$m" "$T/o/x.raw"
has "an extended partition is not a disk" "no partition has that number" "$ERR"

# --- 4096-byte sectors (a loop device with 4 KiB logical blocks) ------------
truncate -s 32M "$T/s4.raw"
if L=$(losetup -b 4096 -f --show "$T/s4.raw" 2>/dev/null); then
	printf 'label: gpt\nstart=256, size=2048, type=L, name=four\n' | sfdisk -q "$L" 2>/dev/null
	sfdisk --json "$L" >"$T/s4.json"
	losetup -d "$L"
	run_ei 0 -- info --json "$T/s4.raw"
	printf '%s\n' "$OUT" >"$T/s4i.json"
	check "GPT with 4096-byte sectors agrees with sfdisk" cmp_table "$T/s4i.json" "$T/s4.json" "$T/s4.raw" "$T/blk"
elif [ -n "${CI:-}" ]; then
	bad "no loop device for 4096-byte sectors under CI (needs root and /dev/loop*)"
else
	echo "SKIP $NAME: no loop device for 4096-byte sectors"
	t_skip=$((t_skip + 1))
fi

# --- hostile tables (PT1-PT6) ------------------------------------------------
# gpt.py FILE CMD...: edit the GPT of FILE and fix every CRC edited over
#   hdr FIELD VALUE [primary|backup]  a header field (entries, entry_size,
#                                     array_lba, first, last), CRC redone
#   ent IDX first|last VALUE          an entry's LBA in both arrays
#   name IDX HEX                      an entry's name bytes (UTF-16LE)
#   crc primary|backup                break a header's CRC (not redone)
#   acrc                              break both entry arrays' CRCs
#   noprimary                         wipe the primary header
#   nogpt                             wipe both headers
#   hybrid START                      MBR entry 2: type 0x0c at START, 2048 sectors
gpt() {
	python3 - "$@" <<'PY'
import mmap, struct, sys, zlib
path, cmd = sys.argv[1], sys.argv[2:]
f = open(path, "r+b")
b = mmap.mmap(f.fileno(), 0)
ss = 512
last = len(b) // ss - 1
def hdr(lba): return lba * ss
F = {"first": (40, "<Q"), "last": (48, "<Q"), "array_lba": (72, "<Q"), "entries": (80, "<I"), "entry_size": (84, "<I")}
def fix_hdr(o):
    hs = struct.unpack_from("<I", b, o + 12)[0]
    struct.pack_into("<I", b, o + 16, 0)
    struct.pack_into("<I", b, o + 16, zlib.crc32(bytes(b[o:o + hs])))
def fix_arr(o):
    lba, n, sz = struct.unpack_from("<QII", b, o + 72)
    a = lba * ss
    struct.pack_into("<I", b, o + 88, zlib.crc32(bytes(b[a:a + n * sz])))
    fix_hdr(o)
heads = [hdr(1), hdr(last)]
op = cmd[0]
if op == "hdr":
    off, f = F[cmd[1]]
    for o in heads if len(cmd) < 4 else [heads[cmd[3] == "backup"]]:
        struct.pack_into(f, b, o + off, int(cmd[2], 0)); fix_hdr(o)
elif op in ("ent", "name"):
    i = int(cmd[1])
    for o in heads:
        lba, n, sz = struct.unpack_from("<QII", b, o + 72)
        e = lba * ss + i * sz
        if op == "ent":
            struct.pack_into("<Q", b, e + (32 if cmd[2] == "first" else 40), int(cmd[3], 0))
        else:
            nm = bytes.fromhex(cmd[2]).ljust(72, b"\0")
            b[e + 56:e + 128] = nm
        fix_arr(o)
elif op == "crc":
    o = heads[cmd[1] == "backup"]
    b[o + 16] ^= 0xff
elif op == "acrc":
    for o in heads:
        lba = struct.unpack_from("<Q", b, o + 72)[0]
        b[lba * ss + 60] ^= 0x55
elif op == "noprimary":
    b[heads[0]:heads[0] + 8] = bytes(8)
elif op == "nogpt":
    for o in heads: b[o:o + 8] = bytes(8)
elif op == "hybrid":
    struct.pack_into("<B3sB3sII", b, 446 + 16, 0, b"\0\0\0", 0x0c, b"\0\0\0", int(cmd[1]), 2048)
b.flush()
PY
}

# bad_gpt DESC PATTERN EDIT...: on a copy of the GPT disk edited by each
# EDIT ("crc primary", a gpt command and its arguments in one word), info
# names PATTERN in the table's place (the image is still described), info
# --json under "partition-table-error", and convert --partition 1 fails
# naming it and leaves no output.
bad_gpt() {
	local desc=$1 pat=$2
	shift 2
	cp "$d" "$T/h.raw"
	for ed in "$@"; do
		gpt "$T/h.raw" $ed
	done
	run_ei 0 -- info "$T/h.raw"
	has "$desc: info" "^partition table: corrupt: $pat" "$OUT"
	run_ei 0 -- info --json "$T/h.raw"
	check "$desc: info --json names it" python3 -c '
import json, re, sys
j = json.loads(sys.argv[1])
assert re.search(sys.argv[2], j["partition-table-error"]), j' "$OUT" "$pat"
	run_ei 1 -- convert --partition 1 -O raw "$T/h.raw" "$T/o/x.raw"
	has "$desc: convert" "$pat" "$ERR"
	check "$desc: no output" test -z "$(listing)"
}

# PT1: CRCs; the backup used only when valid, and info says so
cp "$d" "$T/h.raw"
gpt "$T/h.raw" crc primary
run_ei 0 -- info --json "$T/h.raw"
printf '%s\n' "$OUT" >"$T/h.json"
check "PT1: a bad primary CRC with a valid backup: the same table, from the backup" cmp_table "$T/h.json" "$T/sf.json" "$d" "$T/blk"
has "PT1: info --json says the backup is used" '"backup-header-used": true' "$OUT"
run_ei 0 -- info "$T/h.raw"
has "PT1: info says why" 'partition table note: the backup GPT header \(LBA 196607\) is used: gpt: primary header CRC32 0x[0-9a-f]{8} does not match its bytes' "$OUT"
run_ei 0 -- convert --partition root -O raw "$T/h.raw" "$T/h2.out"
check "PT1: --partition through the backup header" cmp "$T/h2.out" "$T/p2.dd"
cp "$d" "$T/h.raw"
gpt "$T/h.raw" noprimary
run_ei 0 -- info --json "$T/h.raw"
printf '%s\n' "$OUT" >"$T/h.json"
check "PT1: no primary header, a protective MBR: the backup's table" cmp_table "$T/h.json" "$T/sf.json" "$d" "$T/blk"
has "PT1: info --json says why the backup is used" '"note": "the backup GPT header \(LBA 196607\) is used: gpt: no primary header signature at LBA 1"' "$OUT"
bad_gpt "PT1 both header CRCs bad" 'gpt: primary header CRC32 0x[0-9a-f]{8} does not match its bytes' "crc primary" "crc backup"
bad_gpt "PT1 entry array CRCs bad" 'gpt: primary entry array CRC32 0x[0-9a-f]{8} does not match its bytes' acrc

# PT2: absurd arrays
bad_gpt "PT2 2^32-1 entries" 'gpt: primary header.s number of entries 4294967295 is not 1..16384' "hdr entries 0xffffffff"
bad_gpt "PT2 entry size 0" 'gpt: primary header.s entry size 0 is not a multiple of 128' "hdr entry_size 0"
bad_gpt "PT2 entry size 200" 'gpt: primary header.s entry size 200 is not a multiple of 128' "hdr entry_size 200"
bad_gpt "PT2 an array of 64 MiB" 'gpt: primary header.s entry array of 16384 x 4096 bytes exceeds the limit of 4194304' \
	"hdr entry_size 4096" "hdr entries 16384"
bad_gpt "PT2 array past the disk" 'gpt: primary header.s entry array at LBA 196600 \(32 sectors\) is past the disk' "hdr array_lba 196600"

# PT3: partitions reversed, past the disk, overlapping another, the GPT
bad_gpt "PT3 last before first" 'gpt: partition 2: last LBA 18000 is before first LBA 18432' "ent 1 last 18000"
bad_gpt "PT3 past the disk" 'gpt: partition 6: LBAs [0-9]+..300000 end past the disk.s 196608 sectors' "ent 5 last 300000"
bad_gpt "PT3 overlapping" 'gpt: partition 1 \(LBAs 2048..20000\) overlaps partition 2 \(LBAs 18432..[0-9]+\)' "ent 0 last 20000"
bad_gpt "PT3 over the GPT" 'gpt: partition 1 \(LBAs 1..18431\) overlaps the GPT itself \(usable LBAs 34..' "ent 0 first 1"

# PT5: protective MBR without a GPT; a hybrid MBR that disagrees
cp "$d" "$T/h.raw"
gpt "$T/h.raw" nogpt
run_ei 0 -- info "$T/h.raw"
has "PT5 protective MBR, no GPT" '^partition table: corrupt: mbr: partition 1 is a protective GPT entry \(0xee\) but there is no valid GPT' "$OUT"
run_ei 1 -- convert --partition 1 -O raw "$T/h.raw" "$T/o/x.raw"
has "PT5 protective MBR, no GPT: --partition refused" 'mbr: partition 1 is a protective GPT entry' "$ERR"
cp "$d" "$T/h.raw"
gpt "$T/h.raw" hybrid 4096
run_ei 0 -- info --json "$T/h.raw"
printf '%s\n' "$OUT" >"$T/h.json"
check "PT5 hybrid MBR: the GPT wins" cmp_table "$T/h.json" "$T/sf.json" "$d" "$T/blk"
has "PT5 hybrid MBR: the disagreement is reported" 'hybrid MBR entry 2 \(type 0x0c, LBAs 4096..6143\) matches no GPT partition; the GPT is used' "$OUT"

# PT6: names: control characters, an unpaired surrogate, 36 characters
cp "$d" "$T/h.raw"
gpt "$T/h.raw" name 1 "72006f0001006f007400"
run_ei 0 -- info "$T/h.raw"
has "PT6 a control character in a name is printed escaped" 'partition 2: .*name "ro\\x01ot"' "$OUT"
run_ei 2 -- convert --partition "$(printf 'ro\001ot')" -O raw "$T/h.raw" "$T/o/x.raw"
check "PT6 an invalid name is never matched; no output" test -z "$(listing)"
has "PT6 the error lists the name, control characters as ?, marked invalid" "2 name 'ro\\?ot' \\(invalid\\)" "$ERR"
gpt "$T/h.raw" name 1 "720000d86f00"
run_ei 0 -- info --json "$T/h.raw"
has "PT6 an unpaired surrogate is shown as \\uD800" '"name": "r\\\\uD800o"' "$OUT"
python3 -c 'import json,sys; json.loads(sys.stdin.read())' <<<"$OUT" && ok || bad "PT6 info --json with a bad name is valid JSON"
gpt "$T/h.raw" name 1 "$(python3 -c 'print(("x" * 36).encode("utf-16-le").hex())')"
run_ei 0 -- convert --partition "$(printf 'x%.0s' {1..36})" -O raw "$T/h.raw" "$T/h36.out"
check "PT6 a name of 36 characters without a terminator matches" cmp "$T/h36.out" "$T/p2.dd"
# 36 unpaired surrogates: 6 bytes each as \uDC00, the longest a name shows
gpt "$T/h.raw" name 1 "$(python3 -c 'print("00dc" * 36)')"
run_ei 0 -- info "$T/h.raw"
has "PT6 36 unpaired surrogates are shown, the rest of the entry intact" \
	"partition 2: .*name \"(\\\\uDC00){36}\".*filesystem ext4, label \"rootfs\"" "$OUT"

# PT4: EBR chains: a loop, 10,000 logical partitions, an EBR outside
ebr() {
	python3 - "$@" <<'PY'
import mmap, struct, sys
path, op = sys.argv[1], sys.argv[2]
f = open(path, "r+b")
b = mmap.mmap(f.fileno(), 0)
def ent(sec, i, typ, lba, n):
    struct.pack_into("<B3sB3sII", b, sec * 512 + 446 + 16 * i, 0, b"\0\0\0", typ, b"\0\0\0", lba, n)
ext = 34816
if op == "loop":          # the second EBR points back to the first
    ent(45056, 1, 0x05, 0, 2048)
elif op == "outside":     # the first EBR's next is past the extended partition
    ent(ext, 1, 0x05, 200000, 2048)
elif op == "many":        # 10,000 EBRs, each with a 1-sector logical partition
    ent(0, 2, 0x05, ext, 30000)
    for k in range(10000):
        s = ext + 2 * k
        ent(s, 0, 0x83, 1, 1)
        ent(s, 1, 0x05, 2 * (k + 1), 2)
        b[s * 512 + 510:s * 512 + 512] = b"\x55\xaa"
    ent(0, 3, 0, 0, 0)
b.flush()
PY
}
for c in loop outside many; do
	cp "$m" "$T/h.raw"
	ebr "$T/h.raw" $c
	case $c in
	loop) pat='mbr: the EBR chain of extended partition 3 loops back to LBA 34816' ;;
	outside) pat='mbr: EBR at LBA 234816 is outside extended partition 3 \(LBAs 34816..' ;;
	many) pat='mbr: more than 252 logical partitions in extended partition 3' ;;
	esac
	run_ei 0 -- info "$T/h.raw"
	has "PT4 $c: info names it" "^partition table: corrupt: $pat" "$OUT"
	run_ei 1 -- convert --partition 1 -O raw "$T/h.raw" "$T/o/x.raw"
	has "PT4 $c: --partition refused" "$pat" "$ERR"
	check "PT4 $c: no output" test -z "$(listing)"
done

done_tests
