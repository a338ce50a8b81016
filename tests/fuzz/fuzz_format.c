// SPDX-License-Identifier: MIT
/*
 * libFuzzer entry point for one reader, over the in-memory I/O back-end:
 * open the input as FUZZ_FORMAT (or probe, for "probe"), ask for its
 * info, walk every extent and read all data.  Built once per format by
 * "make fuzz" with -DFUZZ_FORMAT='"qcow2"'.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/format.h"

/* Keep one input's work bounded: a hostile header may claim a huge disk. */
#define FUZZ_MAX_READ (64u << 20)
#define FUZZ_BUF (64u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[FUZZ_BUF];
	static struct info in;
	struct open_opts o = {
		.format = strcmp(FUZZ_FORMAT, "probe") ? FUZZ_FORMAT : NULL,
		.max_table = 4u << 20,
	};
	struct err e = { 0 };
	struct vdisk *vd;
	struct io *io;
	uint64_t off = 0, done = 0;

	if (io_mem_new(data, size, 0, &io, &e) < 0)
		return 0;
	/* The format's metadata check, if it has one, on the same bytes. */
	if (o.format && format_find(o.format) && format_find(o.format)->check) {
		struct check_result cr = { 0 };

		format_find(o.format)->check(io, &cr, &e);
	}
	if (vdisk_open_io(io, ".", &o, &vd, &e) < 0)
		return 0;
	if (vd->fmt->info) {
		memset(&in, 0, sizeof(in));
		vd->fmt->info(vd, &in, &e);
	}
	while (off < vd->size && done < FUZZ_MAX_READ) {
		struct extent ext;
		uint64_t n = vd->size - off < FUZZ_BUF ? vd->size - off : FUZZ_BUF;

		if (vdisk_extent(vd, off, n, &ext, &e) < 0)
			break;
		if (ext.type == EXT_DATA &&
		    vdisk_read(vd, buf, (size_t)ext.len, off, &e) < 0)
			break;
		off += ext.len;
		done += ext.len;
	}
	vdisk_close(vd);
	return 0;
}
