// SPDX-License-Identifier: MIT
/* Raw disk images: the bytes are the disk.  Holes in the file read as zero. */
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "core/format.h"
#include "core/limits.h"

/* Zero blocks of this size in data are skipped (left as holes) on write. */
#define RAW_ZERO_BLOCK 4096

static int raw_probe(const uint8_t *head, size_t head_len, const uint8_t *tail,
		     size_t tail_len, uint64_t file_size)
{
	(void)head;
	(void)head_len;
	(void)tail;
	(void)tail_len;
	(void)file_size;
	return PROBE_FALLBACK;
}

static int raw_open(struct vdisk *vd, struct err *e)
{
	if (vd->io->flags & IO_STREAM)
		return err_set(e, EI_EUNSUP, "raw: %s is not seekable", vd->io->name);
	vd->size = vd->io->size;
	return 0;
}

/* The bytes are the disk; holes of the file are unallocated. */
static int raw_map(struct vdisk *vd, uint64_t off, uint64_t len,
		   struct map_run *run, struct err *e)
{
	(void)e;
	run->src = MAP_IO;
	run->io = vd->io;
	run->host = off;
	run->len = len;
	run->holes = EXT_HOLE;
	return 0;
}

int raw_write_sparse(struct io *out, const uint8_t *buf, size_t len,
		     uint64_t off, struct err *e)
{
	size_t i = 0;

	if (out->flags & IO_BLOCKDEV)
		return io_write(out, buf, len, off, e);
	while (i < len) {
		size_t start, n;
		int r;

		while (i < len && buf_is_zero(buf + i, min_u64(RAW_ZERO_BLOCK, len - i)))
			i += (size_t)min_u64(RAW_ZERO_BLOCK, len - i);
		start = i;
		while (i < len && !buf_is_zero(buf + i, min_u64(RAW_ZERO_BLOCK, len - i)))
			i += (size_t)min_u64(RAW_ZERO_BLOCK, len - i);
		n = i - start;
		if (n && (r = io_write(out, buf + start, n, off + start, e)) < 0)
			return r;
	}
	return 0;
}

/* Raw takes no options: one given is a mistake, never ignored. */
static const struct opt_desc raw_wopts[] = { { NULL } };

static int raw_write_parse(struct opts *o, const struct write_opts *wopts,
			   void *parsed, struct err *e)
{
	(void)o;
	(void)parsed;
	if (wopts->compress)
		return err_set(e, EI_EUSAGE,
			       "raw: -c (compression) does not apply to raw output");
	return 0;
}

extern const struct img_format fmt_raw;

static int raw_write(struct vdisk *src, struct io *out,
		     const struct write_opts *wopts, struct err *e)
{
	struct write_parsed tmp;
	const struct write_parsed *parsed;
	uint8_t *buf;
	uint64_t off = 0;
	int r;

	r = format_write_opts(&fmt_raw, wopts, &tmp, &parsed, e);
	if (r < 0)
		return r;
	if ((out->flags & IO_BLOCKDEV) && out->size < src->size)
		return err_set(e, -ENOSPC,
			       "raw: %s holds %llu bytes, the disk needs %llu",
			       out->name, (unsigned long long)out->size,
			       (unsigned long long)src->size);
	buf = malloc(EI_IO_CHUNK);
	if (!buf)
		return err_set(e, -ENOMEM, "raw: out of memory");
	while (off < src->size) {
		struct extent ext;

		r = vdisk_extent(src, off, min_u64(EI_IO_CHUNK, src->size - off),
				 &ext, e);
		if (r < 0)
			break;
		if (ext.type == EXT_DATA) {
			r = vdisk_read(src, buf, (size_t)ext.len, off, e);
			if (r >= 0 && wopts->data)
				r = wopts->data(wopts->data_arg, buf,
						(size_t)ext.len, off, e);
			if (r < 0)
				break;
			/*
			 * With a block map the data is written whole: its
			 * zero blocks are mapped, and "bmaptool create" of
			 * OUT must map them too.
			 */
			if (wopts->data)
				r = io_write(out, buf, (size_t)ext.len, off, e);
			else
				r = raw_write_sparse(out, buf, (size_t)ext.len, off, e);
		} else if (out->flags & IO_BLOCKDEV) {
			/* A device keeps old bytes where a file would have a hole. */
			memset(buf, 0, (size_t)ext.len);
			r = io_write(out, buf, (size_t)ext.len, off, e);
		}
		if (r < 0)
			break;
		off += ext.len;
		if (wopts->progress)
			wopts->progress(wopts->progress_arg, off, src->size);
	}
	free(buf);
	if (r < 0)
		return r;
	return io_truncate(out, src->size, e);
}

const struct img_format fmt_raw = {
	.name = "raw",
	.desc = "raw disk image",
	.probe = raw_probe,
	.open = raw_open,
	.map = raw_map,
	.write = raw_write,
	.write_parse = raw_write_parse,
	.wopts = raw_wopts,
	.feeds_data = 1,
};
