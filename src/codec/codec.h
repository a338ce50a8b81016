/* SPDX-License-Identifier: MIT */
/* Compressors, one table each, shared by qcow2, squashfs and patches. */
#ifndef EDGEIMG_CODEC_H
#define EDGEIMG_CODEC_H

#include <stddef.h>

#include "core/err.h"
#include "core/opts.h"

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

	/*
	 * Optional (deflate, zstd): as decompress(), for one stream at the
	 * start of @in that unrelated bytes may follow (qcow2 packs its
	 * compressed clusters back to back); *@in_used is set to the
	 * stream's length.
	 */
	int (*decompress_prefix)(void **ctx, const void *in, size_t in_len, void *out,
				 size_t *out_len, size_t *in_used, struct err *e);
	void (*ctx_free)(void *ctx);
};

/* The codecs built in, NULL-terminated. */
extern const struct codec *const codecs[];

/* codec_find() - the codec called @name, or NULL. */
const struct codec *codec_find(const char *name);

void codec_ctx_free(const struct codec *c, void *ctx);

/*
 * codec_library() - the library, and its version, that makes @c's
 * compressed bytes, as a writer's recipe names it: returns the recipe key
 * ("deflate" for the deflate and zlib codecs, else the codec's name) and
 * writes the value into @buf: "libdeflate-1.14" or "zlib-1.2.13" for
 * deflate, the version alone for the others ("1.5.4").  The version is
 * the linked library's, asked at run time where the library can tell.
 */
const char *codec_library(const struct codec *c, char *buf, size_t len);

/*
 * codec_library_opts() - check the library keys (deflate=, zstd=, xz=,
 * lz4=) among a writer's options @o against @c, the codec the writer
 * uses (NULL: it compresses nothing), marking them used.  A key of
 * another codec is EI_EUSAGE; a value naming another library or version
 * than this build's is EI_EUNSUP naming both ("squashfs: recipe needs
 * zstd 1.5.5, this build has 1.5.4").  A bare "libdeflate" or "zlib"
 * (recipes from before versions were recorded) names the library only.
 */
int codec_library_opts(struct opts *o, const struct codec *c,
		       const char *fmt_name, struct err *e);

/*
 * codec_library_describe() - for a writer's table entry of a library key
 * (opt_desc.describe): this build's library and version for @d->key.
 */
void codec_library_describe(const struct opt_desc *d, char *buf, size_t len);

/* The table entry (struct opt_desc) of the library key @name ("zstd"). */
#define CODEC_LIBRARY_OPTION(name)                                         \
	{ .key = name, .help = "the " name " library and version a recipe names", \
	  .describe = codec_library_describe }

#endif
