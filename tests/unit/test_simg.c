// SPDX-License-Identifier: MIT
/*
 * Unit test of the Android sparse writer's feed (write_opts.data, which
 * "convert --bmap" hashes): a raw disk with data, zero blocks, holes and a
 * run of one value, written as simg into memory, gives the callback its
 * data extents in increasing order, each byte once and as the disk holds
 * it, and nothing of its holes; every byte it is not given is zero; the
 * image reads back as the disk (padded to 4096) and is the same for 1 and
 * 4 threads.  A build without the simg writer passes with nothing to test.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/bytes.h"
#include "core/format.h"
#include "t.h"

#define MIB (1u << 20)
#define N (3 * MIB + 1000)      /* not a multiple of 4096 */
#define PAD ((N + 4095) / 4096 * 4096)

static uint8_t disk[PAD], seen[PAD], back[PAD];

struct feed {
	uint64_t next;          /* the end of the last piece */
	int order, bytes;       /* pieces out of order, bytes not the disk's */
	uint64_t total;
};

static int feed(void *arg, const uint8_t *buf, size_t len, uint64_t off,
		struct err *e)
{
	struct feed *f = arg;

	(void)e;
	if (off < f->next || off + len > N)
		f->order++;
	else if (memcmp(buf, disk + off, len))
		f->bytes++;
	else
		memset(seen + off, 1, len);
	f->next = off + len;
	f->total += len;
	return 0;
}

/* Write @vd as simg into a memory io with @threads; NULL on failure. */
static struct io *write_simg(const struct img_format *f, struct vdisk *vd,
			     unsigned threads, struct feed *fd)
{
	struct write_opts w = { .threads = threads, .mem_cap = 64 * MIB,
				.data = feed, .data_arg = fd };
	struct err e = { 0 };
	struct io *out = NULL;

	CHECK(io_mem_new(NULL, 0, 2 * PAD, &out, &e) == 0, "memory io: %s", e.msg);
	if (!out)
		return NULL;
	if (f->write(vd, out, &w, &e) < 0) {
		CHECK(0, "simg write, %u threads: %s", threads, e.msg);
		io_close(out);
		return NULL;
	}
	return out;
}

int main(void)
{
	const struct img_format *f = format_find("simg");
	char path[] = "/tmp/edgeimg-simg-XXXXXX";
	struct feed f1 = { 0 }, f4 = { 0 };
	struct open_opts o = { .format = "raw" }, so = { .format = "simg" };
	struct vdisk *vd = NULL, *rd = NULL;
	struct io *out1, *out4, *in;
	struct err e = { 0 };
	uint32_t x = 7;
	int fd;

	if (!f || !f->write)
		return t_done("test_simg");
	for (size_t i = 0; i < N; i++) {
		x = x * 1103515245 + 12345;
		disk[i] = (uint8_t)(x >> 16);
	}
	memset(disk + 8192, 0, 3 * 4096);               /* written zeros */
	memset(disk + 65536 + 10, 0xa7, 5 * 4096);      /* one value */
	memset(disk + MIB, 0, MIB + 4096);              /* a hole */
	fd = mkstemp(path);
	CHECK(fd >= 0 && pwrite(fd, disk, MIB, 0) == MIB &&
	      pwrite(fd, disk + 2 * MIB + 4096, N - 2 * MIB - 4096, 2 * MIB + 4096) ==
	      (ssize_t)(N - 2 * MIB - 4096), "setup: write %s", path);
	close(fd);
	CHECK(vdisk_open(path, &o, &vd, &e) == 0, "open %s: %s", path, e.msg);
	if (!vd)
		goto out;
	out1 = write_simg(f, vd, 1, &f1);
	out4 = write_simg(f, vd, 4, &f4);
	if (!out1 || !out4)
		goto out;
	CHECK(!f1.order && !f1.bytes, "feed: %d pieces out of order, %d not the disk's",
	      f1.order, f1.bytes);
	CHECK(f1.total <= N - MIB - 4096 + 4096,
	      "feed: %llu bytes, the hole not among them", (unsigned long long)f1.total);
	{
		int unseen_data = 0;

		for (size_t i = 0; i < N; i++)
			unseen_data += !seen[i] && disk[i];
		CHECK(!unseen_data, "feed: %d bytes of data never given", unseen_data);
	}
	CHECK(out1->end == out4->end &&
	      !memcmp(io_mem_data(out1), io_mem_data(out4), (size_t)out1->end),
	      "1 and 4 threads: the same %llu bytes", (unsigned long long)out1->end);
	CHECK(out1->end < N - MIB, "sparse: %llu bytes", (unsigned long long)out1->end);
	CHECK(io_mem_new(io_mem_data(out1), (size_t)out1->end, 0, &in, &e) == 0,
	      "read io: %s", e.msg);
	if (vdisk_open_io(in, ".", &so, &rd, &e) < 0) {
		CHECK(0, "read back: %s", e.msg);
	} else {
		CHECK(rd->size == PAD, "read back: size %llu", (unsigned long long)rd->size);
		CHECK(vdisk_read(rd, back, PAD, 0, &e) == 0 && !memcmp(back, disk, PAD),
		      "read back: the disk, padded with zeros: %s", e.msg);
		vdisk_close(rd);
	}
	io_close(out1);
	io_close(out4);
out:
	if (vd)
		vdisk_close(vd);
	unlink(path);
	return t_done("test_simg");
}
