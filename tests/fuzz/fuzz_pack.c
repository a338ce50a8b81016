// SPDX-License-Identifier: MIT
/*
 * libFuzzer entry point for the packed views of delta --exact
 * (src/delta/delta-pack.c).  The input is read two ways:
 *  - as a container (a qcow2 with compressed clusters, say): its view for
 *    NEW (blocks compressed again and compared) and for OLD (blocks named
 *    by the tables, decompressed as read) are read whole, and NEW's view
 *    given to the writer must give back the input byte for byte (abort
 *    otherwise: the round trip is the view's promise);
 *  - as a packed view, from a hostile patch: the writer must refuse it
 *    cleanly or write a container.
 * Seeds: seed-pack.sh, containers qemu-img and edgeimg made.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/bytes.h"
#include "core/format.h"
#include "delta/delta.h"

#define FUZZ_MAX_VIEW (64u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every byte of @vd into @io (NULL: nowhere); 0, or the read's error. */
static int fuzz_read_all(struct vdisk *vd, struct io *io)
{
	static uint8_t buf[1u << 20];
	struct err e = { 0 };
	int r = 0;

	for (uint64_t off = 0; off < vd->size && r >= 0;) {
		size_t n = (size_t)min_u64(sizeof(buf), vd->size - off);

		r = vdisk_read(vd, buf, n, off, &e);
		if (r >= 0 && io)
			r = io_write(io, buf, n, off, &e);
		off += n;
	}
	return r;
}

static int fuzz_io(const char *name, struct io **io)
{
	struct err e = { 0 };
	int fd = memfd_create(name, 0);

	if (fd < 0)
		return -1;
	return io_open_fd(fd, name, IO_OPEN_RW, io, &e);
}

/* @path as a container: both views, and NEW's back to the input. */
static void fuzz_container(const char *path, const uint8_t *data, size_t size)
{
	struct open_opts oo = { .max_table = 4u << 20 };
	struct open_opts raw = { .format = "raw" };
	struct pack_stats st;
	struct vdisk *vd = NULL, *back = NULL;
	struct io *vio = NULL, *out = NULL;
	struct err e = { 0 };
	static uint8_t cmp[1u << 20];
	int r;

	if (pack_open(path, &oo, 0, 1, &vd, NULL, &e) >= 0) {
		if (vd->size <= FUZZ_MAX_VIEW)
			fuzz_read_all(vd, NULL);
		vdisk_close(vd);
		vd = NULL;
	}
	if (pack_open(path, &oo, 1, 2, &vd, &st, &e) < 0)
		return;
	if (vd->size > FUZZ_MAX_VIEW || fuzz_io("view", &vio) < 0 || fuzz_read_all(vd, vio) < 0)
		goto out;
	r = vdisk_open_io(vio, ".", &raw, &back, &e);   /* it takes vio */
	vio = NULL;
	if (r < 0)
		goto out;
	if (fuzz_io("container", &out) < 0)
		goto out;
	if (pack_write(back, out, 2, 16u << 20, NULL, &e) < 0 || out->end != size) {
		fprintf(stderr, "packed view round trip: %s\n", e.msg);
		abort();
	}
	for (uint64_t off = 0; off < size;) {
		size_t n = (size_t)min_u64(sizeof(cmp), size - off);

		if (io_read(out, cmp, n, off, "container", &e) < 0 || memcmp(cmp, data + off, n))
			abort();
		off += n;
	}
out:
	io_close(vio);
	io_close(out);
	vdisk_close(back);
	vdisk_close(vd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct open_opts raw = { .format = "raw" };
	struct vdisk *vd = NULL;
	struct io *out = NULL;
	struct err e = { 0 };
	char path[64];
	int fd = memfd_create("fuzz-pack", 0);

	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	fuzz_container(path, data, size);
	/* the input as a view a patch brought */
	if (vdisk_open(path, &raw, &vd, &e) >= 0 && fuzz_io("out", &out) >= 0)
		pack_write(vd, out, 1, 16u << 20, NULL, &e);
	io_close(out);
	vdisk_close(vd);
	close(fd);
	return 0;
}
