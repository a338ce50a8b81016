/* SPDX-License-Identifier: MIT */
/* Compressed raw disks: what the reader (craw.c) and the writer (craw-write.c) share. */
#ifndef EDGEIMG_CRAW_H
#define EDGEIMG_CRAW_H

#include "core/format.h"
#include "core/limits.h"

/*
 * The zstd seekable format (facebook/zstd contrib/seekable_format/
 * zstd_seekable_compression_format.md): independent frames, then a
 * skippable frame holding one entry per frame (compressed and
 * decompressed size, 4 bytes each, and a 4-byte checksum when the
 * descriptor's bit 7 is set) and a 9-byte footer: number of frames,
 * descriptor, CRAW_SEEK_FOOTER_MAGIC.
 */
#define CRAW_SKIPPABLE_MAGIC 0x184D2A50u        /* low 4 bits free */
#define CRAW_SKIPPABLE_MASK 0xFFFFFFF0u
#define CRAW_SEEK_TABLE_MAGIC 0x184D2A5Eu
#define CRAW_SEEK_FOOTER_MAGIC 0x8F92EAB1u
#define CRAW_SEEK_FOOTER_LEN 9
#define CRAW_SEEK_CHECKSUM_FLAG 0x80
#define CRAW_SEEK_RESERVED_BITS 0x7c
/* edgeimg's recipe: a skippable frame of its own between the last data frame and the seek table. */
#define CRAW_RECIPE_MAGIC 0x184D2A5Du
#define CRAW_RECIPE_MAX 512

/*
 * The most frames (zstd) or blocks (xz) indexed for random access: 16
 * bytes each in memory, so at most EI_MAX_TABLE of index.  The writer
 * refuses a disk that would need more (a larger block_size does).
 */
#define CRAW_INDEX_ENTRY 16
#define CRAW_INDEX_MAX (EI_MAX_TABLE / CRAW_INDEX_ENTRY)
/* The largest frame or block decoded whole for a random read: larger ones are read as a stream. */
#define CRAW_FRAME_MAX (64u << 20)

int craw_write(struct vdisk *src, struct io *out, const struct write_opts *wopts,
	       struct err *e);
int craw_write_parse(struct opts *o, const struct write_opts *wopts, void *parsed,
		     struct err *e);
extern const struct opt_desc craw_write_options[];

#endif
