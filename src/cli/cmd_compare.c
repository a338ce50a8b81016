// SPDX-License-Identifier: MIT
/* edgeimg compare: do two images hold the same disk?  As qemu-img compare. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "cli/cli.h"
#include "core/format.h"
#include "core/limits.h"

/* Read [off, off+len) of @vd into @buf, zero-filling non-data extents. */
static int compare_fill(struct vdisk *vd, uint8_t *buf, size_t len,
			uint64_t off, int *all_zero, struct err *e)
{
	size_t done = 0;

	*all_zero = 1;
	while (done < len) {
		struct extent ext;
		int r = vdisk_extent(vd, off + done, len - done, &ext, e);

		if (r < 0)
			return r;
		if (ext.type == EXT_DATA) {
			r = vdisk_read(vd, buf + done, (size_t)ext.len, off + done, e);
			if (r < 0)
				return r;
			*all_zero = 0;
		} else {
			memset(buf + done, 0, (size_t)ext.len);
		}
		done += (size_t)ext.len;
	}
	return 0;
}

/* 0 identical, 1 different (*@diff set), or a negative error. */
static int compare_range(struct vdisk *a, struct vdisk *b, uint64_t end,
			 uint8_t *ba, uint8_t *bb, struct progress *pg,
			 uint64_t total, uint64_t *diff, struct err *e)
{
	for (uint64_t off = 0; off < end;) {
		size_t n = (size_t)min_u64(EI_IO_CHUNK, end - off);
		int za, zb, r;

		r = compare_fill(a, ba, n, off, &za, e);
		if (r < 0)
			return r;
		r = compare_fill(b, bb, n, off, &zb, e);
		if (r < 0)
			return r;
		if (!(za && zb) && memcmp(ba, bb, n)) {
			size_t i = 0;

			while (ba[i] == bb[i])
				i++;
			*diff = off + i;
			return 1;
		}
		off += n;
		progress_cb(pg, off, total);
	}
	return 0;
}

/* 0 when [from, size) of @vd reads as zero, else 1 with *@diff set. */
static int compare_zero_tail(struct vdisk *vd, uint64_t from, uint8_t *buf,
			     uint64_t *diff, struct err *e)
{
	for (uint64_t off = from; off < vd->size;) {
		size_t n = (size_t)min_u64(EI_IO_CHUNK, vd->size - off);
		int z, r = compare_fill(vd, buf, n, off, &z, e);

		if (r < 0)
			return r;
		if (!z && !buf_is_zero(buf, n)) {
			size_t i = 0;

			while (!buf[i])
				i++;
			*diff = off + i;
			return 1;
		}
		off += n;
	}
	return 0;
}

static int compare_run(int argc, char **argv)
{
	struct open_opts oa = { 0 }, ob = { 0 };
	struct vdisk *a = NULL, *b = NULL;
	uint8_t *ba = NULL, *bb = NULL;
	struct err e = { 0 };
	struct progress pg;
	int strict = 0, progress = 0, c, r;
	uint64_t diff = 0, common;

	static const struct option lo[] = {
		CLI_IMAGE_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};

	while ((c = getopt_long(argc, argv, "f:F:sp", lo, NULL)) != -1) {
		switch (c) {
		case 'f':
			oa.format = optarg;
			break;
		case 'F':
			ob.format = optarg;
			break;
		case 's':
			strict = 1;
			break;
		case 'p':
			progress = 1;
			break;
		default:       /* --allow-refs and --ova-disk apply to A and B */
			if (!cli_image_opt(c, optarg, &oa) ||
			    !cli_image_opt(c, optarg, &ob))
				return cli_usage(&cmd_compare, NULL);
		}
	}
	if (optind != argc - 2)
		return cli_usage(&cmd_compare, "expected two images");
	r = vdisk_open(argv[optind], &oa, &a, &e);
	if (r < 0)
		goto fail;
	r = vdisk_open(argv[optind + 1], &ob, &b, &e);
	if (r < 0)
		goto fail;
	ba = malloc(EI_IO_CHUNK);
	bb = malloc(EI_IO_CHUNK);
	if (!ba || !bb) {
		r = err_set(&e, -ENOMEM, "out of memory");
		goto fail;
	}
	if (a->size != b->size) {
		if (strict) {
			printf("Strict mode: Image size mismatch!\n");
			r = 1;
			goto out;
		}
		printf("Warning: Image size mismatch!\n");
	}
	common = min_u64(a->size, b->size);
	progress_init(&pg, progress);
	r = compare_range(a, b, common, ba, bb, &pg, common, &diff, &e);
	if (r == 0 && a->size != b->size)
		r = compare_zero_tail(a->size > b->size ? a : b, common, ba, &diff, &e);
	progress_done(&pg);
	if (r < 0)
		goto fail;
	if (r)
		printf("Content mismatch at offset %llu!\n", (unsigned long long)diff);
	else
		printf("Images are identical.\n");
out:
	free(ba);
	free(bb);
	vdisk_close(a);
	vdisk_close(b);
	return r;
fail:
	free(ba);
	free(bb);
	vdisk_close(a);
	vdisk_close(b);
	cli_error("compare", &e);
	return 2;
}

const struct cmd cmd_compare = {
	.name = "compare",
	.summary = "compare the disks two images hold",
	.usage = "compare [-f FMT] [-F FMT] [-s] [-p] [--allow-refs] [--ova-disk N|NAME] A B",
	.help =
	"  -f FMT   read A as FMT     -F FMT   read B as FMT\n"
	"  -s       strict: images of different sizes differ\n"
	"  -p       show progress on a terminal\n"
	"  --allow-refs  follow references to other files (see help info)\n"
	"  --ova-disk N|NAME  the disk of an OVA A or B to read (see help info)\n"
	"\nExit status: 0 when the disks have the same content, 1 when not (the\n"
	"first differing byte offset is printed), 2 on error.  Without -s, the\n"
	"part of the larger disk past the smaller one must read as zero.\n",
	.run = compare_run,
};
