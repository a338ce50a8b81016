// SPDX-License-Identifier: MIT
/*
 * Unit test of the block map, on which vdisk_read() and vdisk_extent() are
 * built for every reader: the images qemu-img makes of one raw disk (data,
 * written zeros, holes) read back its bytes in runs of any size and order;
 * extents say zero only where the disk is zero; where an extent gives a
 * host offset, the image file holds the extent's bytes there (and only
 * formats that store data as is give one); a qcow2 over a backing file
 * made by qemu-img and written by qemu-io reads through it.  Every reader
 * in the registry has a map and neither read nor extent.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/bytes.h"
#include "core/format.h"
#include "t.h"

#define N (8u << 20)
#define MIB (1u << 20)

static uint8_t disk[N], buf[MIB], host[MIB];
static char dir[] = "/tmp/edgeimg-map-XXXXXX";

/*
 * Walk the extents of @vd (asking 1 MiB at a time) and read them; every
 * byte must be @want's (zeros past @n).  Returns the number of extents
 * that gave a host offset, or -1.
 */
static long walk(struct vdisk *vd, const uint8_t *want, uint64_t n,
		 const char *path, const char *what)
{
	struct err e = { 0 };
	uint64_t off = 0;
	long hosts = 0;
	int fd = open(path, O_RDONLY);

	while (off < vd->size) {
		struct extent x;
		uint64_t len = min_u64(MIB, vd->size - off);
		size_t have = (size_t)(off < n ? min_u64(n - off, len) : 0);

		if (vdisk_extent(vd, off, len, &x, &e) < 0 ||
		    vdisk_read(vd, buf, (size_t)x.len, off, &e) < 0) {
			CHECK(0, "%s: at %llu: %s", what, (unsigned long long)off, e.msg);
			close(fd);
			return -1;
		}
		have = (size_t)min_u64(have, x.len);
		if (memcmp(buf, want + off, have) ||
		    !buf_is_zero(buf + have, (size_t)x.len - have)) {
			CHECK(0, "%s: the %llu bytes at %llu differ from the raw disk",
			      what, (unsigned long long)x.len, (unsigned long long)off);
			close(fd);
			return -1;
		}
		if (x.type != EXT_DATA && !buf_is_zero(buf, (size_t)x.len)) {
			CHECK(0, "%s: a zero extent at %llu holds data", what,
			      (unsigned long long)off);
			close(fd);
			return -1;
		}
		if (x.host != EXT_HOST_NONE) {
			hosts++;
			if (x.type != EXT_DATA ||
			    pread(fd, host, (size_t)x.len, (off_t)x.host) != (ssize_t)x.len ||
			    memcmp(host, buf, (size_t)x.len)) {
				CHECK(0, "%s: extent at %llu+%llu: host offset %llu does not hold it",
				      what, (unsigned long long)off,
				      (unsigned long long)x.len,
				      (unsigned long long)x.host);
				close(fd);
				return -1;
			}
		}
		off += x.len;
	}
	close(fd);
	return hosts;
}

/* Reads of random places and lengths, some crossing runs, match @want. */
static void random_reads(struct vdisk *vd, const uint8_t *want, const char *what)
{
	struct err e = { 0 };
	uint32_t x = 7;
	int bad = 0;

	for (int i = 0; i < 300 && !bad; i++) {
		uint64_t off, len;

		x = x * 1103515245 + 12345;
		off = (x >> 8) % N;
		x = x * 1103515245 + 12345;
		len = min_u64((x >> 8) % (i % 3 ? 70000 : MIB) + 1, N - off);
		if (vdisk_read(vd, buf, (size_t)len, off, &e) < 0 ||
		    memcmp(buf, want + off, (size_t)len))
			bad = 1;
	}
	CHECK(!bad, "%s: random reads match the raw disk: %s", what, e.msg);
}

static struct vdisk *open_image(const char *path, int refs, const char *what)
{
	struct open_opts o = { .allow_refs = refs };
	struct err e = { 0 };
	struct vdisk *vd = NULL;

	CHECK(vdisk_open(path, &o, &vd, &e) == 0, "%s: open: %s", what, e.msg);
	return e.code ? NULL : vd;
}

static void test_image(const char *raw, const char *fmt, const char *opts,
		       int stored_as_is, int refs)
{
	static int count;
	char path[128], what[128];
	struct vdisk *vd;
	long hosts;

	snprintf(path, sizeof(path), "%s/img%d.%s", dir, ++count, fmt);
	snprintf(what, sizeof(what), "%s %s", fmt, opts);
	{
		char cmd[512];

		snprintf(cmd, sizeof(cmd), "qemu-img convert -q -f raw -O %s %s %s %s",
			 fmt, opts, raw, path);
		if (system(cmd)) {
			CHECK(0, "setup: %s failed", cmd);
			return;
		}
	}
	vd = open_image(path, refs, what);
	if (!vd)
		return;
	CHECK(vd->size >= N, "%s: size %llu", what, (unsigned long long)vd->size);
	hosts = walk(vd, disk, N, path, what);
	CHECK(stored_as_is ? hosts > 0 : hosts == 0,
	      "%s: %ld extents with a host offset in the image file", what, hosts);
	random_reads(vd, disk, what);
	vdisk_close(vd);
}

/* A qcow2 over a backing file: its own clusters, zeros, the rest the base's. */
static void test_backing(void)
{
	static uint8_t want[N];
	char base[128], over[128], cmd[1024];
	struct vdisk *vd;
	long hosts;

	snprintf(base, sizeof(base), "%s/base.qcow2", dir);
	snprintf(over, sizeof(over), "%s/over.qcow2", dir);
	snprintf(cmd, sizeof(cmd),
		 "qemu-img convert -q -f raw -O qcow2 %s/disk.raw %s && "
		 "qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 %s && "
		 "qemu-io -c 'write -P 0x5a 1048576 65536' -c 'write -z 3211264 65536' "
		 "-c 'write -P 0xa5 7340032 4096' %s >/dev/null", dir, base, over, over);
	if (system(cmd)) {
		CHECK(0, "setup: %s failed", cmd);
		return;
	}
	memcpy(want, disk, N);
	memset(want + 1048576, 0x5a, 65536);
	memset(want + 3211264, 0, 65536);
	memset(want + 7340032, 0xa5, 4096);
	{
		struct err e = { 0 };

		CHECK(vdisk_open(over, NULL, &vd, &e) == EI_EREF,
		      "a backing file needs allow_refs: %s", e.msg);
	}
	vd = open_image(over, 1, "qcow2 over a backing file");
	if (!vd)
		return;
	hosts = walk(vd, want, N, over, "qcow2 over a backing file");
	CHECK(hosts > 0, "qcow2 over a backing file: %ld of its own extents", hosts);
	random_reads(vd, want, "qcow2 over a backing file");
	vdisk_close(vd);
}

/* img2simg's sparse image: RAW chunks as is, FILL chunks decoded. */
static void test_simg(const char *raw)
{
	char path[128], cmd[512];
	struct vdisk *vd;
	long hosts;

	snprintf(path, sizeof(path), "%s/img.simg", dir);
	snprintf(cmd, sizeof(cmd), "img2simg %s %s >/dev/null 2>&1", raw, path);
	if (system(cmd)) {
		CHECK(0, "setup: %s failed", cmd);
		return;
	}
	vd = open_image(path, 0, "simg");
	if (!vd)
		return;
	CHECK(vd->size == N, "simg: size %llu", (unsigned long long)vd->size);
	hosts = walk(vd, disk, N, path, "simg");
	CHECK(hosts > 0, "simg: %ld extents with a host offset in the image file", hosts);
	random_reads(vd, disk, "simg");
	vdisk_close(vd);
}

static void test_registry(void)
{
	for (const struct img_format *const *f = img_formats; *f; f++)
		CHECK((*f)->map && (*f)->open,
		      "%s: a reader gives one block map", (*f)->name);
}

/* Whether this build has the reader named @name. */
static int built(const char *name)
{
	for (const struct img_format *const *f = img_formats; *f; f++)
		if (!strcmp((*f)->name, name))
			return 1;
	return 0;
}

/*
 * qemu-img's output formats, with edgeimg's reader of each; as_is: data
 * stored as is in the image file.
 */
static const struct {
	const char *fmt, *reader, *opts;
	int as_is, refs;
} images[] = {
	{ "raw", "raw", "", 1, 0 },
	{ "qcow2", "qcow2", "", 1, 0 },
	{ "qcow2", "qcow2", "-c", 0, 0 },
	{ "qcow2", "qcow2", "-o cluster_size=16384,extended_l2=on", 1, 0 },
	{ "vmdk", "vmdk", "", 1, 0 },
	{ "vmdk", "vmdk", "-o subformat=streamOptimized", 0, 0 },
	/* flat: the data is in another file, so no host offset */
	{ "vmdk", "vmdk", "-o subformat=monolithicFlat", 0, 1 },
	{ "vpc", "vhd", "", 1, 0 },
	{ "vpc", "vhd", "-o subformat=fixed", 1, 0 },
	{ "vhdx", "vhdx", "", 1, 0 },
	{ "vdi", "vdi", "", 1, 0 },
	{ "vdi", "vdi", "-o static=on", 1, 0 },
};

int main(void)
{
	char raw[128];
	uint32_t x = 1;
	int fd;

	test_registry();
	if (!mkdtemp(dir) || system("command -v qemu-img >/dev/null && command -v qemu-io >/dev/null")) {
		CHECK(0, "setup: no scratch directory, qemu-img or qemu-io");
		return t_done("test_map");
	}
	/*
	 * 8 MiB: data, written zeros, a hole, data with zero 64 KiB pieces,
	 * a hole, data with a run of 0x5a.
	 */
	for (size_t i = 0; i < N; i++) {
		x = x * 1103515245 + 12345;
		disk[i] = i % 3 ? (uint8_t)(x >> 16) : (uint8_t)(i >> 9);
	}
	memset(disk + 1 * MIB, 0, 2 * MIB);
	for (size_t i = 3 * MIB; i < 5 * MIB; i += 3 * 65536)
		memset(disk + i, 0, 65536);
	memset(disk + 5 * MIB, 0, MIB);
	/* a run of one byte value, off the 4 KiB grid (simg: FILL chunks) */
	memset(disk + 6 * MIB + 65536 + 100, 0x5a, 3 * 65536);
	snprintf(raw, sizeof(raw), "%s/disk.raw", dir);
	fd = open(raw, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	CHECK(fd >= 0 && pwrite(fd, disk, 2 * MIB, 0) == 2 * MIB &&
	      pwrite(fd, disk + 3 * MIB, 2 * MIB, 3 * MIB) == 2 * MIB &&
	      pwrite(fd, disk + 6 * MIB, 2 * MIB, 6 * MIB) == 2 * MIB,
	      "setup: write %s", raw);
	close(fd);

	for (size_t i = 0; i < sizeof(images) / sizeof(images[0]); i++)
		if (built(images[i].reader))
			test_image(raw, images[i].fmt, images[i].opts, images[i].as_is,
				   images[i].refs);
	if (built("qcow2"))
		test_backing();
	if (built("simg"))
		test_simg(raw);
	snprintf(raw, sizeof(raw), "rm -rf %s", dir);
	CHECK(!system(raw), "clean up %s", dir);
	return t_done("test_map");
}
