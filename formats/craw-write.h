/* SPDX-License-Identifier: MIT */
/*
 * The compressed raw writer's two halves: craw-write.c (options, the
 * recipe, gzip through the pipeline, the stream's head and tail) and
 * craw-frames.c (zstd frames and xz blocks, streamed by their workers).
 */
#ifndef EDGEIMG_CRAW_WRITE_H
#define EDGEIMG_CRAW_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "core/kconfig.h"
#include "craw.h"
#include "generated/features.h"

#if IS_ENABLED(CONFIG_CODEC_ZSTD)
#define ZSTD_STATIC_LINKING_ONLY        /* ZSTD_getCParams, ZSTD_estimateCStreamSize_usingCParams */
#include <zstd.h>
#endif
#if IS_ENABLED(CONFIG_CODEC_XZ)
#include <lzma.h>
#endif

enum craww_kind { CRAWW_GZIP, CRAWW_XZ, CRAWW_ZSTD };

/*
 * Memory besides the workers: the program (6 MiB of RSS for the host build
 * with its shared libraries, less for the static ones), the reader, the
 * zero unit's bytes, and 1 MiB the sums do not see (thread stacks, the
 * allocator's own).
 */
#define CRAWW_BASELINE (7u << 20)
/*
 * A unit's output: CRAWW_AUX bytes for the index (xz: the block's unpadded
 * size, LE64; gzip: the CRC-32 of its input, LE32), then the compressed bytes.
 */
#define CRAWW_AUX 16

struct craw_wopts {
	enum craww_kind kind;
	int level;
	uint32_t block_size;
};

struct craw_writer {
	struct craw_wopts o;
	struct io *out;
	uint64_t cur;                   /* bytes written */
	uint64_t size;                  /* the disk's */
	char recipe[CRAW_RECIPE_MAX];
	size_t out_cap;                 /* gzip: a unit's output, CRAWW_AUX bytes and the bound */
	/* The zero unit, compressed once (a whole unit of block_size). */
	uint8_t *zero;          /* CRAWW_AUX bytes, then zero_len bytes */
	size_t zero_len;
	/* zstd: the seek table's entries, 8 bytes each. */
	uint8_t *seek;
	uint64_t frames, seek_cap;
	/* gzip: the CRC-32 of the disk so far. */
	uint32_t crc;
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
	ZSTD_compressionParameters cp;
#endif
#if IS_ENABLED(CONFIG_CODEC_XZ)
	lzma_options_lzma lz;
	lzma_index *idx;
#endif
};

extern const char *const craww_names[];

/*
 * craww_fixed() - the writer's memory besides its workers (the index of
 * @units, the program's baseline when the cap leaves room); refused when
 * one worker of @per bytes would not fit the cap.
 */
int craww_fixed(const struct craw_writer *w, const struct write_opts *wopts, uint64_t units,
		uint64_t per, uint64_t *fixed, struct err *e);
/* Append @len bytes to the stream. */
int craww_put(struct craw_writer *w, const void *p, size_t len, struct err *e);
/* Index the unit just written: @in_len disk bytes, @out_len compressed, @aux its CRAWW_AUX bytes. */
int craww_index(struct craw_writer *w, uint64_t in_len, const uint8_t *aux, uint64_t out_len,
		struct err *e);
/*
 * craww_frames() - the disk as zstd frames or xz blocks of block_size,
 * between the stream's head and tail; workers as many as @wopts->threads
 * and the memory cap allow.
 */
int craww_frames(struct craw_writer *w, struct vdisk *src, const struct write_opts *wopts,
		 uint64_t units, struct err *e);

#endif
