// SPDX-License-Identifier: MIT
/*
 * libFuzzer entry point for the partition-table parser (src/core/part.c):
 * GPT headers and entry arrays, MBRs and EBR chains, the filesystem probes,
 * the listing and a partition opened as a disk, over the in-memory I/O.
 * The first input byte picks the mode: bit 0 set makes the CRC32s of a GPT
 * at 512- or 4096-byte sectors right before parsing (the fuzzer mutates the
 * fields behind them).  The rest is the disk.  Seeds: seed-part.sh.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/bytes.h"
#include "core/format.h"
#include "core/part.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fix the CRC32s of the GPT header at LBA 1 with @ss-byte sectors. */
static void gpt_fix(uint8_t *d, size_t size, unsigned ss)
{
	uint8_t *h = d + ss;
	uint64_t lba, len;
	uint32_t hs;

	if (size < 2 * (size_t)ss || memcmp(h, "EFI PART", 8))
		return;
	lba = get_le64(h + 72);
	len = (uint64_t)get_le32(h + 80) * get_le32(h + 84);
	if (lba < size / ss && len <= size - lba * ss)
		put_le32(h + 88, (uint32_t)crc32(0, d + lba * ss, (uInt)len));
	hs = get_le32(h + 12);
	if (hs >= 92 && hs <= ss) {
		put_le32(h + 16, 0);
		put_le32(h + 16, (uint32_t)crc32(0, h, hs));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct part_table t;
	struct open_opts o = { .format = "raw" };
	struct err e = { 0 };
	struct vdisk *vd, *pd;
	struct io *io;
	uint8_t *d;
	FILE *f;

	if (size < 1)
		return 0;
	d = malloc(size);
	if (!d)
		return 0;
	memcpy(d, data + 1, size - 1);
	if (data[0] & 1) {
		gpt_fix(d, size - 1, 512);
		gpt_fix(d, size - 1, 4096);
	}
	/* the io reads @d in place: freed when the disk is closed */
	if (io_mem_new(d, size - 1, 0, &io, &e) < 0 ||
	    vdisk_open_io(io, ".", &o, &vd, &e) < 0) {
		free(d);
		return 0;
	}
	if (part_read(vd, &t, &e) == 0) {
		f = fopen("/dev/null", "w");
		if (f) {
			part_text(&t, f);
			part_json(&t, f, 0);
			fclose(f);
		}
		for (unsigned i = 0; i < t.n; i++) {
			const struct part *p;
			char num[16];

			snprintf(num, sizeof(num), "%u", t.p[i].num);
			part_find(&t, num, &p, &e);
			part_find(&t, t.p[i].name, &p, &e);
		}
	}
	/* the first partition as a disk: its first 256 KiB read */
	if (part_open(vd, "1", &pd, &e) == 0) {
		static uint8_t buf[65536];

		for (uint64_t off = 0; off < pd->size && off < (256u << 10);) {
			struct extent ext;
			uint64_t n = min_u64(pd->size - off, sizeof(buf));

			if (vdisk_extent(pd, off, n, &ext, &e) < 0 ||
			    vdisk_read(pd, buf, (size_t)ext.len, off, &e) < 0)
				break;
			off += ext.len;
		}
		vdisk_close(pd);
	}
	/* part_open() closed @vd, or @pd did */
	free(d);
	return 0;
}
