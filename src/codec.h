/* SPDX-License-Identifier: MIT */
/* Compressors, one table each, shared by qcow2, squashfs and patches. */
#ifndef EDGEIMG_CODEC_H
#define EDGEIMG_CODEC_H

#include <stddef.h>

#include "err.h"

struct codec {
	const char *name;       /* "deflate", "zlib", "zstd", "xz", "lz4" */
	int level_min, level_max, level_default;

	/*
	 * Compress @in into @out (capacity *@out_len), setting *@out_len to
	 * the bytes produced.  Returns -ENOSPC when the result does not fit
	 * (callers then store the data plain).  *@ctx is the codec's
	 * reusable state for one thread, NULL at first; codec_ctx_free().
	 */
	int (*compress)(void **ctx, const void *in, size_t in_len, void *out,
			size_t *out_len, int level, struct err *e);

	/*
	 * Decompress @in into @out, capacity *@out_len, setting *@out_len to
	 * the bytes produced.  Output that would exceed the capacity, and
	 * input that is not one whole valid stream, is EI_ECODEC.
	 */
	int (*decompress)(void **ctx, const void *in, size_t in_len, void *out,
			  size_t *out_len, struct err *e);

	void (*ctx_free)(void *ctx);
};

/* The codecs built in, NULL-terminated. */
extern const struct codec *const codecs[];

/* codec_find() - the codec called @name, or NULL. */
const struct codec *codec_find(const char *name);

void codec_ctx_free(const struct codec *c, void *ctx);

#endif
