#!/usr/bin/env bash
# requires: CODEC_ZSTD FORMAT_QCOW2 OUTPUT_QCOW2
# SPDX-License-Identifier: MIT
# What a user meets first: OUT is only ever a regular file (put in place
# whole), a block device or standard output; links, FIFOs, sockets,
# character devices and directories are refused whatever --force says;
# swapped arguments, mistyped formats and options are answered with what
# to do; one exit code (2) for usage errors; --json summaries, -p in a CI
# log.  Judged by cmp, qemu-img and Python's json.
. "$(dirname "$0")/../lib.sh"
need qemu-img python3 cmp timeout mkfifo

mkdir -p "$T/o"
mkdisk "$T/d.raw" 8
fixture "qemu-img convert to qcow2" qemu-img convert -f raw -O qcow2 "$T/d.raw" "$T/d.qcow2"
json_ok() { python3 -c 'import json, sys; json.loads(sys.stdin.read())' <<<"$1"; }

# --- standard output ---------------------------------------------------------
ei convert -O raw "$T/d.qcow2" - >"$T/s.raw" 2>"$T/.err"
check "convert -O raw IN - writes the disk to standard output" cmp -s "$T/d.raw" "$T/s.raw"
check "through a pipe: every byte ($(ei convert -O raw "$T/d.qcow2" - | wc -c))" \
	test "$(ei convert -O raw "$T/d.qcow2" - | wc -c)" = "$(stat -c %s "$T/d.raw")"
run_ei 2 -- convert -O qcow2 "$T/d.raw" -
has "a format not written front to back refuses -" 'cannot go to standard output' "$ERR"
check "and no file named -" test ! -e ./- -a ! -e "$T/-"
ei convert --force -O raw "$T/d.qcow2" /dev/stdout 2>"$T/.err" | cat >/dev/null
has "/dev/stdout is refused: a link to a pipe" 'is a symbolic link \(to a FIFO\)' "$(cat "$T/.err")"
check "/dev/stdout is still a link" test -L /dev/stdout
run_ei 0 -- delta "$T/d.raw" "$T/d.raw" -
check "delta OLD NEW - writes the patch to standard output" test "$(head -c 7 <<<"$OUT")" = EIDELTA
ei delta "$T/d.raw" "$T/d.raw" - 2>/dev/null | ei apply "$T/d.raw" - "$T/o/same.raw" 2>"$T/.err"
check "and apply reads it from a pipe" cmp -s "$T/d.raw" "$T/o/same.raw"
has "apply notices OLD already holds NEW" 'already holds NEW' "$(cat "$T/.err")"
rm -f "$T/o/same.raw"

# --- what OUT may not be, --force or not -------------------------------------
echo precious >"$T/target.txt"
ln -s "$T/target.txt" "$T/link"
for f in "" --force; do
	run_ei 2 -- convert $f -O raw "$T/d.qcow2" "$T/link"
	has "a symbolic link to a file ($f)" 'is a symbolic link \(to a regular file\).*never replaces a link' "$ERR"
	check "the link stays a link ($f)" test -L "$T/link"
	check "its target is untouched ($f)" test "$(cat "$T/target.txt")" = precious
	mkfifo "$T/fifo"
	timeout 20 $EDGEIMG convert $f -O raw "$T/d.qcow2" "$T/fifo" >/dev/null 2>"$T/.err"
	check "a FIFO: refused at once, not hung ($f, exit $?)" test $? -eq 2
	has "a FIFO is named ($f)" 'is a FIFO' "$(cat "$T/.err")"
	check "the FIFO stays a FIFO ($f)" test -p "$T/fifo"
	rm -f "$T/fifo"
	run_ei 2 -- convert $f -O raw "$T/d.qcow2" /dev/null
	has "a character device ($f)" 'is a character device' "$ERR"
	run_ei 2 -- convert $f -O raw "$T/d.qcow2" "$T/o"
	has "a directory ($f)" 'is a directory' "$ERR"
	run_ei 2 -- convert $f -O qcow2 "$T/d.qcow2" "$T/d.qcow2"
	has "OUT is IN ($f)" 'is also an input of this command' "$ERR"
done
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/sock"
run_ei 2 -- convert --force -O raw "$T/d.qcow2" "$T/sock"
has "a socket" 'is a socket' "$ERR"
check "the socket stays" test -S "$T/sock"
check "IN untouched" qemu-img compare -q "$T/d.raw" "$T/d.qcow2"
run_ei 0 -- delta "$T/d.raw" "$T/d.qcow2" "$T/p"
run_ei 2 -- convert --force -O raw "$T/d.qcow2" "$T/p"
has "an existing patch is never replaced by convert, and --force is not offered" \
	'is a delta patch: refusing to replace it' "$ERR"
check "the patch is still a patch" test "$(head -c 7 "$T/p")" = EIDELTA
echo old >"$T/o/exists.raw"
run_ei 1 -- convert -O raw "$T/d.qcow2" "$T/o/exists.raw"
has "an existing file needs --force" 'already exists; use --force to replace it' "$ERR"
run_ei 0 -- convert --force -O raw "$T/d.qcow2" "$T/o/exists.raw"
check "--force replaces a regular file" cmp -s "$T/d.raw" "$T/o/exists.raw"
check "no temporary left in OUT's directory" test "$(ls -A "$T/o")" = exists.raw
rm -f "$T/o/exists.raw"

# --- swapped arguments ----------------------------------------------------------
cp "$T/p" "$T/p.keep"
run_ei 2 -- apply "$T/d.raw" "$T/o/out.raw" "$T/p"
has "apply OLD OUT PATCH: the patch as OUT is named" 'OUT .*/p is a delta patch: the arguments are OLD PATCH OUT \(did you swap PATCH and OUT\?\)' "$ERR"
run_ei 2 -- apply --force "$T/d.raw" "$T/o/out.raw" "$T/p"
has "even with --force" 'did you swap PATCH and OUT' "$ERR"
check "the patch is untouched" cmp -s "$T/p" "$T/p.keep"
run_ei 2 -- apply "$T/p" "$T/d.raw" "$T/o/out.raw"
has "apply PATCH OLD OUT: the patch as OLD is named" 'OLD .*/p is a delta patch: the arguments are OLD PATCH OUT' "$ERR"
check "nothing written" test -z "$(ls -A "$T/o")"

# --- mistakes answered with what to do; one exit code for usage --------------
run_ei 2 -- convert -O qcwo2 "$T/d.raw" "$T/o/x"
has "a mistyped output format: did you mean, and the valid ones" "cannot write format 'qcwo2'; did you mean 'qcow2'\? valid: .*qcow2.*raw" "$ERR"
run_ei 2 -- convert -f vmdkk -O raw "$T/d.raw" "$T/o/x"
has "a mistyped input format" "unknown format 'vmdkk'; did you mean 'vmdk'\? valid:" "$ERR"
run_ei 2 -- info -f qcw2 "$T/d.raw"
has "info -f too" "did you mean 'qcow2'" "$ERR"
run_ei 2 -- convert -O qcow2 -o cluster_sise=64k "$T/d.raw" "$T/o/x"
has "a mistyped -o key" "unknown option 'cluster_sise'; did you mean 'cluster_size'\? valid: " "$ERR"
run_ei 2 -- convert -O raw --no-such-flag "$T/d.raw" "$T/o/x"
run_ei 0 -- help convert
has "help convert lists every writer's -o keys" '^  cluster_size: ' "$OUT"
has "with defaults" 'default 65536' "$OUT"
check "usage errors leave nothing" test -z "$(ls -A "$T/o")"
printf 'QFI\373garbage' >"$T/bad.qcow2"
run_ei 1 -- info -f qcow2 "$T/bad.qcow2"
has "an error names the file" "bad.qcow2" "$ERR"
run_ei 1 -- convert -f qcow2 -O raw "$T/d.raw" "$T/o/x"
has "a wrong -f names the file" "d.raw.*qcow2" "$ERR"

# --- scripts and CI logs --------------------------------------------------------
run_ei 0 -- convert --json -O qcow2 -c "$T/d.raw" "$T/o/c.qcow2"
check "convert --json is one JSON object" json_ok "$OUT"
has "with the output's sizes" '"output-allocated": [1-9]' "$OUT"
run_ei 0 -- delta --json "$T/d.raw" "$T/o/c.qcow2" "$T/o/p2"
check "delta --json" json_ok "$OUT"
has "delta --json: hashes" "\"new-hash\": \"$(chash "$T/d.raw")\"" "$OUT"
run_ei 0 -- apply --json "$T/d.raw" "$T/o/p2" "$T/o/a.raw"
check "apply --json" json_ok "$OUT"
has "apply --json: the read-back hash" "\"new-hash\": \"$(chash "$T/d.raw")\"" "$OUT"
run_ei 0 -- check --json "$T/o/c.qcow2"
check "check --json" json_ok "$OUT"
run_ei 0 -- info --json "$T/d.qcow2"
check "info --json" json_ok "$OUT"
has "qemu-img's top-level cluster-size" '^    "cluster-size": 65536' "$OUT"
for f in qcow2 vmdk vhdx vdi vpc "vpc -o subformat=fixed" "vmdk -o subformat=streamOptimized" raw; do
	fixture "qemu-img convert -O $f" qemu-img convert -f raw -O $f "$T/d.raw" "$T/cs.img" || continue
	q=$(qemu-img info --output=json "$T/cs.img" | python3 -c 'import json, sys; print(json.load(sys.stdin).get("cluster-size"))')
	w=$(ei info --json "$T/cs.img" | python3 -c 'import json, sys; print(json.load(sys.stdin).get("cluster-size"))')
	check "info --json cluster-size of $f: $w, qemu-img's $q" test "$w" = "$q"
	rm -f "$T/cs.img"
done
rm -f "$T"/o/*
run_ei 0 -- convert -p -O raw "$T/d.qcow2" "$T/o/p.raw"
has "-p without a terminal: lines, not a bar" '^edgeimg convert: 100\.00% \(8 MiB of 8 MiB\)' "$ERR"
check "and no carriage return" sh -c "! grep -q \$'\\r' '$T/.err'"
rm -f "$T"/o/*

# --- a checkpoint met without --resume: said and discarded ------------------
cp "$T/d.raw" "$T/d2.raw"
head -c 3000000 /dev/urandom | dd of="$T/d2.raw" bs=1M seek=2 conv=notrunc status=none
run_ei 0 -- delta --chunk 1M "$T/d.raw" "$T/d2.raw" "$T/o/p3"
head -c 2000000 "$T/o/p3" | ei apply "$T/d.raw" - "$T/o/n.raw" 2>/dev/null
check "a cut stream left a checkpoint" test -e "$T/o/n.raw.edgeimg-apply"
run_ei 0 -- apply "$T/d.raw" "$T/o/p3" "$T/o/n.raw"
has "without --resume a checkpoint is discarded, with a note" 'note: discarding the checkpoint of an interrupted apply \([1-9] of [0-9]+ chunks done\)' "$ERR"
check "and the apply starts over to the end" cmp -s "$T/d2.raw" "$T/o/n.raw"

# --- info of a hostile image: no escape sequence reaches the terminal ------
python3 - "$T" <<'PY'
import io, os, sys, tarfile
t = sys.argv[1]
name = "disk\x1b[31mred\x1b]0;title\x07.vmdk"
ovf = ('<?xml version="1.0"?><Envelope><References><File ovf:id="f1" ovf:href="%s"/>'
       '</References><DiskSection><Disk ovf:fileRef="f1"/></DiskSection></Envelope>' % name).encode()
with tarfile.open(os.path.join(t, "esc.ova"), "w", format=tarfile.USTAR_FORMAT) as z:
    for n, d in (("x.ovf", ovf), (name, open(os.path.join(t, "d.raw"), "rb").read())):
        i = tarfile.TarInfo(n); i.size = len(d); z.addfile(i, io.BytesIO(d))
PY
ei info "$T/esc.ova" >"$T/info.txt" 2>&1
check "info never prints an escape byte of an image" sh -c "! grep -q \$'\\x1b' '$T/info.txt'"
run_ei 0 -- info --json "$T/esc.ova"
check "its JSON stays valid" json_ok "$OUT"

done_tests
