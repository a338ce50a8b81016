// SPDX-License-Identifier: MIT
/*
 * The compressed raw writer: a disk as one gzip, xz or zstd stream that
 * the codecs' own tools decompress, made in parallel and readable at
 * random.  The disk is cut into units of block_size bytes, each compressed
 * alone, so the bytes are the same for any -j:
 *
 *   zstd  one frame per unit, then edgeimg's recipe in a skippable frame
 *         and the seek table of the zstd seekable format (facebook/zstd
 *         contrib/seekable_format/zstd_seekable_compression_format.md);
 *   xz    one block per unit, then the index and the stream footer (the
 *         .xz file format 1.1.0), as xz -T makes;
 *   gzip  one member (RFC 1952) whose deflate data is one raw-deflate
 *         piece per unit, each ended on a byte boundary by a sync flush,
 *         the last one final, their CRC-32s combined, as pigz makes it.
 *
 * zstd and xz units are large and streamed by their workers (craw-frames.c);
 * gzip's go through the pipeline.  A unit of zeros (holes and zero
 * extents, never read) is compressed once, up front, and its bytes reused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "core/bytes.h"
#include "codec/codec.h"
#include "codec/pipeline.h"
#include "craw-write.h"

extern const struct img_format fmt_craw;

#define CRAWW_BLOCK_MIN (64u << 10)
#define CRAWW_BLOCK_MAX (64u << 20)
/* A gzip context: deflate's window and hash (windowBits 15, memLevel 8) and some. */
#define CRAWW_GZIP_CTX (320u << 10)
#define CRAWW_GZIP_HEADER 10
/* Unit flags. */
#define CRAWW_ZEROS 1u          /* the unit is zeros: its bytes are the zero unit's */
#define CRAWW_LAST 2u           /* gzip: the last unit, its deflate block final */

const char *const craww_names[] = { "gzip", "xz", "zstd" };

/* --- options ----------------------------------------------------------- */

enum { CRO_COMPRESSION, CRO_LEVEL, CRO_BLOCK_SIZE };

static void craww_level_describe(const struct opt_desc *d, char *buf, size_t len)
{
	size_t at;

	(void)d;
	at = text_addf(buf, len, 0, "gzip 1..9 (default 6)");
	if (IS_ENABLED(CONFIG_CODEC_XZ))
		at = text_addf(buf, len, at, ", xz 0..9 (default 6)");
	if (IS_ENABLED(CONFIG_CODEC_ZSTD))
		text_addf(buf, len, at, ", zstd 1..19 (default 3)");
}

/* gzip is made with zlib whatever the deflate codec is (libdeflate cannot sync-flush). */
static void craww_zlib_describe(const struct opt_desc *d, char *buf, size_t len)
{
	(void)d;
	snprintf(buf, len, "zlib-%s, this build's; a recipe naming another is refused",
		 zlibVersion());
}

const struct opt_desc craw_write_options[] = {
	[CRO_COMPRESSION] = { "compression", "zstd|xz|gzip",
		IS_ENABLED(CONFIG_CODEC_ZSTD) ? "zstd" : "gzip",
		"the stream: zstd (seekable format), xz (one block per unit) or gzip (pigz-style)" },
	[CRO_LEVEL] = { "level", NULL, NULL, "compression level",
		.describe = craww_level_describe },
	[CRO_BLOCK_SIZE] = { "block_size", "a power of two from 64 KiB to 64 MiB",
		"zstd 16M, xz 8M, gzip 1M",
		"disk bytes per independent frame or block: larger ones compress better, random reads decode one",
		CRAWW_BLOCK_MIN, CRAWW_BLOCK_MAX, 1 },
	{ .key = "deflate", .help = "the zlib library and version a gzip recipe names",
	  .describe = craww_zlib_describe },
#if IS_ENABLED(CONFIG_CODEC_XZ)
	CODEC_LIBRARY_OPTION("xz"),
#endif
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
	CODEC_LIBRARY_OPTION("zstd"),
#endif
	{ NULL },
};

static const int craww_level_min[] = { 1, 0, 1 };
static const int craww_level_max[] = { 9, 9, 19 };
static const int craww_level_def[] = { 6, 6, 3 };
/*
 * block_size: zstd 16 MiB and xz 8 MiB, which two workers of level 19 or 6
 * stream within the 64 MiB default cap (craw-frames.c); larger frames
 * compress better, each starting with an empty window.  gzip's window is
 * 32 KiB: 1 MiB loses little.
 */
static const uint32_t craww_block_def[] = { 1u << 20, 8u << 20, 16u << 20 };

/* The library key and version a recipe names for @kind. */
static const char *craww_library(enum craww_kind kind, char *buf, size_t len)
{
	const struct codec *c;

	if (kind == CRAWW_GZIP) {
		/* gzip is made with zlib, whatever the deflate codec is. */
		snprintf(buf, len, "zlib-%s", zlibVersion());
		return "deflate";
	}
	c = codec_find(craww_names[kind]);
	if (!c) {
		snprintf(buf, len, "none");
		return craww_names[kind];
	}
	return codec_library(c, buf, len);
}

int craw_write_parse(struct opts *o, const struct write_opts *wopts, void *parsed,
		     struct err *e)
{
	const struct opt_desc *d = craw_write_options;
	struct craw_wopts w = { 0 };
	const char *level, *lib;
	char have[64];
	uint64_t v = 0;
	int r;

	_Static_assert(sizeof(w) <= WRITE_PARSED_MAX, "struct craw_wopts is too large");
	(void)wopts;            /* -c: the output is compressed anyway */
	r = opt_choice(&d[CRO_COMPRESSION], opts_get(o, "compression"), "craw", e);
	if (r < 0)
		return r;
	w.kind = r == 0 ? CRAWW_ZSTD : r == 1 ? CRAWW_XZ : CRAWW_GZIP;
	if ((w.kind == CRAWW_ZSTD && !IS_ENABLED(CONFIG_CODEC_ZSTD)) ||
	    (w.kind == CRAWW_XZ && !IS_ENABLED(CONFIG_CODEC_XZ)))
		return err_set(e, EI_EUNSUP,
			       "craw: compression=%s is not built in (CODEC_%s is off)",
			       craww_names[w.kind], w.kind == CRAWW_ZSTD ? "ZSTD" : "XZ");
	w.level = craww_level_def[w.kind];
	level = opts_get(o, "level");
	if (level) {
		if (parse_size(level, &v) < 0 || v < (uint64_t)craww_level_min[w.kind] ||
		    v > (uint64_t)craww_level_max[w.kind])
			return err_set(e, EI_EUSAGE, "craw: level=%s is not in %d..%d for %s",
				       level, craww_level_min[w.kind],
				       craww_level_max[w.kind], craww_names[w.kind]);
		w.level = (int)v;
	}
	v = craww_block_def[w.kind];
	r = opt_number(&d[CRO_BLOCK_SIZE], opts_get(o, "block_size"), &v, "craw", e);
	if (r < 0)
		return r;
	w.block_size = (uint32_t)v;
	/* Compressed bytes differ between libraries: the recipe names it. */
	if (w.kind == CRAWW_GZIP) {
		lib = opts_get(o, "deflate");
		craww_library(w.kind, have, sizeof(have));
		if (lib && strcmp(lib, have) && strcmp(lib, "zlib"))
			return err_set(e, EI_EUNSUP, "craw: recipe needs deflate %s, this build has %s",
				       lib, have);
		r = codec_library_opts(o, NULL, "craw", e);
	} else {
		r = codec_library_opts(o, codec_find(craww_names[w.kind]), "craw", e);
	}
	if (r < 0)
		return r;
	memcpy(parsed, &w, sizeof(w));
	return 0;
}

/* The recipe: every option, defaults spelled out, in this order. */
static void craww_recipe(struct craw_writer *w)
{
	char lib[64];
	const char *key = craww_library(w->o.kind, lib, sizeof(lib));

	snprintf(w->recipe, sizeof(w->recipe),
		 "format=craw,writer=%s,compression=%s,level=%d,block_size=%lu,%s=%s",
		 EDGEIMG_VERSION, craww_names[w->o.kind], w->o.level,
		 (unsigned long)w->o.block_size, key, lib);
}

/* --- gzip: one unit, in a pipeline worker ---------------------------- */

/* gzip: raw deflate ended on a byte boundary (sync flush), or final. */
static int craww_gzip(const struct craw_writer *w, void **ctx, const uint8_t *in,
		      size_t len, int last, uint8_t *aux, uint8_t *out, size_t *out_len,
		      struct err *e)
{
	z_stream *z = *ctx;
	int zr;

	if (!z) {
		z = calloc(1, sizeof(*z));
		if (!z)
			return err_set(e, -ENOMEM, "craw: out of memory");
		if (deflateInit2(z, w->o.level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
			free(z);
			return err_set(e, -ENOMEM, "craw: deflateInit2 failed");
		}
		*ctx = z;
	} else if (deflateReset(z) != Z_OK) {
		return err_set(e, -EIO, "craw: deflateReset failed");
	}
	z->next_in = (Bytef *)(uintptr_t)in;
	z->avail_in = (uInt)len;
	z->next_out = out;
	z->avail_out = (uInt)*out_len;
	zr = deflate(z, last ? Z_FINISH : Z_SYNC_FLUSH);
	if ((last && zr != Z_STREAM_END) || (!last && (zr != Z_OK || z->avail_in)) ||
	    (!last && !z->avail_out))
		return err_set(e, EI_ECODEC, "craw: deflate error %d", zr);
	*out_len = *out_len - z->avail_out;
	put_le32(aux, (uint32_t)crc32(0, in, (uInt)len));
	return 0;
}

/*
 * Compress @len bytes of @in into @out: CRAWW_AUX bytes for emit, then
 * the compressed bytes, their number in *@out_len.
 */
static int craww_unit(const struct craw_writer *w, void **ctx, const uint8_t *in,
		      size_t len, int last, uint8_t *out, size_t *out_len, struct err *e)
{
	memset(out, 0, CRAWW_AUX);
	*out_len = w->out_cap - CRAWW_AUX;
	return craww_gzip(w, ctx, in, len, last, out, out + CRAWW_AUX, out_len, e);
}

static void craww_ctx_free(void *arg, void *ctx)
{
	const struct craw_writer *w = arg;

	(void)w;
	if (!ctx)
		return;
	deflateEnd(ctx);
	free(ctx);
}

/*
 * Worker: a whole unit of zeros (the producer found no data, or the data
 * read as zeros) takes the zero unit's bytes; else it is compressed.
 * gzip's last unit is final, so it is compressed even when zero.
 */
static int craww_work(void *arg, void **ctx, struct pl_unit *u, struct err *e)
{
	const struct craw_writer *w = arg;
	int whole = u->in_len == w->o.block_size && !(u->flags & CRAWW_LAST);

	if (whole && !(u->flags & CRAWW_ZEROS) && buf_is_zero(u->in, u->in_len))
		u->flags |= CRAWW_ZEROS;
	if (whole && (u->flags & CRAWW_ZEROS))
		return 0;
	if (u->flags & CRAWW_ZEROS)
		memset(u->in, 0, u->in_len);
	u->flags &= ~CRAWW_ZEROS;
	return craww_unit(w, ctx, u->in, u->in_len, !!(u->flags & CRAWW_LAST),
			  u->out, &u->out_len, e);
}

/* --- the output -------------------------------------------------------- */

int craww_put(struct craw_writer *w, const void *p, size_t len, struct err *e)
{
	int r = io_write(w->out, p, len, w->cur, e);

	if (r < 0)
		return r;
	w->cur += len;
	return 0;
}

int craww_index(struct craw_writer *w, uint64_t in_len, const uint8_t *aux, uint64_t out_len,
		struct err *e)
{
	if (w->o.kind == CRAWW_ZSTD) {
		if (out_len > UINT32_MAX)
			return err_set(e, EI_ELIMIT, "craw: zstd frame of %llu bytes",
				       (unsigned long long)out_len);
		if (w->frames == w->seek_cap) {
			uint64_t cap = w->seek_cap ? 2 * w->seek_cap : 1024;
			uint8_t *s = realloc(w->seek, (size_t)cap * 8);

			if (!s)
				return err_set(e, -ENOMEM, "craw: out of memory");
			w->seek = s;
			w->seek_cap = cap;
		}
		put_le32(w->seek + w->frames * 8, (uint32_t)out_len);
		put_le32(w->seek + w->frames * 8 + 4, (uint32_t)in_len);
		w->frames++;
	}
#if IS_ENABLED(CONFIG_CODEC_XZ)
	if (w->o.kind == CRAWW_XZ &&
	    lzma_index_append(w->idx, NULL, get_le64(aux), in_len) != LZMA_OK)
		return err_set(e, -ENOMEM, "craw: xz: cannot index block %llu",
			       (unsigned long long)lzma_index_block_count(w->idx));
#endif
	if (w->o.kind == CRAWW_GZIP)
		w->crc = (uint32_t)crc32_combine(w->crc, get_le32(aux), (z_off_t)in_len);
	return 0;
}

int craww_fixed(const struct craw_writer *w, const struct write_opts *wopts, uint64_t units,
		uint64_t per, uint64_t *fixed, struct err *e)
{
	uint64_t need;

	*fixed = units * CRAW_INDEX_ENTRY + (64u << 10);
	need = *fixed + per;
	if (wopts->mem_cap < need)
		return err_set(e, EI_ELIMIT,
			       "craw: the memory cap of %llu bytes is below the %llu the writer needs for %s level %d with block_size=%lu; a smaller block_size needs less",
			       (unsigned long long)wopts->mem_cap, (unsigned long long)need,
			       craww_names[w->o.kind], w->o.level, (unsigned long)w->o.block_size);
	if (wopts->mem_cap >= need + CRAWW_BASELINE)
		*fixed += CRAWW_BASELINE;
	return 0;
}

/* Caller's thread, in disk order: append the unit and index it. */
static int craww_emit(void *arg, struct pl_unit *u, struct err *e)
{
	struct craw_writer *w = arg;
	const uint8_t *aux = u->out;
	size_t len = u->out_len;
	int r;

	if (u->flags & CRAWW_ZEROS) {
		aux = w->zero;
		len = w->zero_len;
	}
	r = craww_index(w, u->in_len, aux, len, e);
	if (r < 0)
		return r;
	return craww_put(w, aux + CRAWW_AUX, len, e);
}

static const struct pl_ops craww_ops = {
	.work = craww_work,
	.emit = craww_emit,
	.ctx_free = craww_ctx_free,
};

/* --- the disk, unit by unit -------------------------------------------- */

/*
 * Fill @u with [off, off + len) of @src: data extents read (and given to
 * wopts->data), the rest zeros; a unit without data is not filled at all.
 */
static int craww_fill(struct vdisk *src, struct pl_unit *u, uint64_t off, size_t len,
		      const struct write_opts *wopts, struct err *e)
{
	uint64_t pos = off, end = off + len;
	int r, any = 0;

	u->flags = 0;
	while (pos < end) {
		struct extent ext;
		size_t n;

		r = vdisk_extent(src, pos, end - pos, &ext, e);
		if (r < 0)
			return r;
		n = (size_t)min_u64(ext.len, end - pos);
		if (ext.type == EXT_DATA) {
			if (!any && pos > off)
				memset(u->in, 0, (size_t)(pos - off));
			any = 1;
			r = vdisk_read(src, u->in + (pos - off), n, pos, e);
			if (r >= 0 && wopts->data)
				r = wopts->data(wopts->data_arg, u->in + (pos - off), n, pos, e);
			if (r < 0)
				return r;
		} else if (any) {
			memset(u->in + (pos - off), 0, n);
		}
		pos += n;
	}
	if (!any)
		u->flags |= CRAWW_ZEROS;
	u->off = off;
	u->in_len = len;
	return 0;
}

static int craww_stream(struct craw_writer *w, struct vdisk *src, struct pipeline *p,
			const struct write_opts *wopts, struct err *e)
{
	uint64_t off = 0;
	int r;

	/* At least one unit: an empty disk is one empty frame, block or piece. */
	do {
		size_t len = (size_t)min_u64(w->o.block_size, w->size - off);
		struct pl_unit *u = pipeline_get(p, e);

		if (!u)
			return e->code ? e->code : -EIO;
		r = craww_fill(src, u, off, len, wopts, e);
		if (r < 0)
			return r;
		if (off + len == w->size)
			u->flags |= CRAWW_LAST;
		r = pipeline_submit(p, u, e);
		if (r < 0)
			return r;
		off += len;
		if (wopts->progress)
			wopts->progress(wopts->progress_arg, off, w->size);
	} while (off < w->size);
	return pipeline_finish(p, e);
}

/* --- head and tail ----------------------------------------------------- */

/* gzip: the member's header, the recipe as its comment (FCOMMENT). */
static int craww_gzip_head(struct craw_writer *w, struct err *e)
{
	uint8_t h[CRAWW_GZIP_HEADER] = { 0x1f, 0x8b, 8, 0x10, 0, 0, 0, 0,
					 (uint8_t)(w->o.level == 9 ? 2 : w->o.level == 1 ? 4 : 0), 3 };
	int r = craww_put(w, h, sizeof(h), e);

	if (r < 0)
		return r;
	return craww_put(w, w->recipe, strlen(w->recipe) + 1, e);
}

static int craww_tail(struct craw_writer *w, struct err *e)
{
	uint8_t b[CRAW_SEEK_FOOTER_LEN + 8];
	int r;

	if (w->o.kind == CRAWW_GZIP) {
		put_le32(b, w->crc);
		put_le32(b + 4, (uint32_t)w->size);
		return craww_put(w, b, 8, e);
	}
	if (w->o.kind == CRAWW_ZSTD) {
		size_t rl = strlen(w->recipe);
		uint64_t tl = w->frames * 8 + CRAW_SEEK_FOOTER_LEN;

		put_le32(b, CRAW_RECIPE_MAGIC);
		put_le32(b + 4, (uint32_t)rl);
		if ((r = craww_put(w, b, 8, e)) < 0 ||
		    (r = craww_put(w, w->recipe, rl, e)) < 0)
			return r;
		if (tl > UINT32_MAX)
			return err_set(e, EI_ELIMIT, "craw: a seek table of %llu frames",
				       (unsigned long long)w->frames);
		put_le32(b, CRAW_SEEK_TABLE_MAGIC);
		put_le32(b + 4, (uint32_t)tl);
		if ((r = craww_put(w, b, 8, e)) < 0 ||
		    (r = craww_put(w, w->seek, (size_t)w->frames * 8, e)) < 0)
			return r;
		put_le32(b, (uint32_t)w->frames);
		b[4] = 0;       /* descriptor: no checksums (each frame has its own) */
		put_le32(b + 5, CRAW_SEEK_FOOTER_MAGIC);
		return craww_put(w, b, CRAW_SEEK_FOOTER_LEN, e);
	}
#if IS_ENABLED(CONFIG_CODEC_XZ)
	{
		lzma_stream_flags sf = { .version = 0, .check = LZMA_CHECK_CRC64 };
		size_t il = (size_t)lzma_index_size(w->idx), pos = 0;
		uint8_t *ib = malloc(il);

		if (!ib)
			return err_set(e, -ENOMEM, "craw: out of memory");
		if (lzma_index_buffer_encode(w->idx, ib, &pos, il) != LZMA_OK) {
			free(ib);
			return err_set(e, EI_ECODEC, "craw: xz: cannot encode the index");
		}
		r = craww_put(w, ib, il, e);
		free(ib);
		if (r < 0)
			return r;
		sf.backward_size = il;
		if (lzma_stream_footer_encode(&sf, b) != LZMA_OK)
			return err_set(e, EI_ECODEC, "craw: xz: cannot encode the stream footer");
		return craww_put(w, b, LZMA_STREAM_HEADER_SIZE, e);
	}
#else
	return err_set(e, EI_EUNSUP, "craw: xz is not built in");
#endif
}

static int craww_head(struct craw_writer *w, struct err *e)
{
	if (w->o.kind == CRAWW_GZIP)
		return craww_gzip_head(w, e);
#if IS_ENABLED(CONFIG_CODEC_XZ)
	if (w->o.kind == CRAWW_XZ) {
		lzma_stream_flags sf = { .version = 0, .check = LZMA_CHECK_CRC64 };
		uint8_t h[LZMA_STREAM_HEADER_SIZE];

		if (lzma_stream_header_encode(&sf, h) != LZMA_OK)
			return err_set(e, EI_ECODEC, "craw: xz: cannot encode the stream header");
		return craww_put(w, h, sizeof(h), e);
	}
#endif
	return 0;
}

/* gzip's zero unit: bytes made once on this thread. */
static int craww_zero_unit(struct craw_writer *w, struct err *e)
{
	void *ctx = NULL;
	uint8_t *in = calloc(1, w->o.block_size);
	int r;

	w->zero = malloc(w->out_cap);
	if (!in || !w->zero) {
		free(in);
		return err_set(e, -ENOMEM, "craw: out of memory");
	}
	r = craww_unit(w, &ctx, in, w->o.block_size, 0, w->zero, &w->zero_len, e);
	craww_ctx_free(w, ctx);
	free(in);
	if (r >= 0) {
		/* A few hundred bytes: the rest of the bound is given back. */
		uint8_t *z = realloc(w->zero, CRAWW_AUX + w->zero_len);

		if (z)
			w->zero = z;
	}
	return r;
}

/* gzip: units of the disk through the pipeline. */
static int craww_gzip_units(struct craw_writer *w, struct vdisk *src,
			    const struct write_opts *wopts, uint64_t units, struct err *e)
{
	struct pipeline *p = NULL;
	uint64_t ctx = CRAWW_GZIP_CTX, fixed;
	unsigned threads;
	int r;

	/* compressBound() is for Z_FINISH; a sync flush adds an empty block. */
	w->out_cap = CRAWW_AUX + (size_t)compressBound((uLong)w->o.block_size) + 16;
	/*
	 * Besides the pipeline: the zero unit (and a codec state and a unit
	 * of zeros while it is made), the CRC; per thread a codec state; the
	 * program when the cap leaves room for it.  Fewer threads when one
	 * unit each would not fit.
	 */
	r = craww_fixed(w, wopts, units, ctx + w->o.block_size + w->out_cap, &fixed, e);
	if (r < 0)
		return r;
	threads = wopts->threads ? wopts->threads : 1;
	while (threads > 1 && fixed + threads * (ctx + w->o.block_size + w->out_cap) > wopts->mem_cap)
		threads--;
	r = craww_zero_unit(w, e);
	if (r >= 0)
		r = pipeline_new(&craww_ops, w, threads, w->o.block_size, w->out_cap,
				 wopts->mem_cap - fixed - threads * ctx, &p, e);
	if (r >= 0)
		r = craww_stream(w, src, p, wopts, e);
	pipeline_free(p);
	return r;
}

int craw_write(struct vdisk *src, struct io *out, const struct write_opts *wopts,
	       struct err *e)
{
	struct craw_writer w = { .out = out, .size = src->size };
	struct write_parsed tmp;
	const struct write_parsed *parsed;
	uint64_t units;
	int r;

	r = format_write_opts(&fmt_craw, wopts, &tmp, &parsed, e);
	if (r < 0)
		return r;
	memcpy(&w.o, parsed->priv.bytes, sizeof(w.o));
	craww_recipe(&w);
	units = src->size / w.o.block_size + 1;
	if (units > CRAW_INDEX_MAX)
		return err_set(e, EI_ELIMIT,
			       "craw: a %llu-byte disk in units of %lu bytes makes %llu frames, more than the %llu a reader indexes; use a larger block_size",
			       (unsigned long long)src->size, (unsigned long)w.o.block_size,
			       (unsigned long long)units, (unsigned long long)CRAW_INDEX_MAX);
#if IS_ENABLED(CONFIG_CODEC_XZ)
	if (w.o.kind == CRAWW_XZ && !(w.idx = lzma_index_init(NULL)))
		return err_set(e, -ENOMEM, "craw: out of memory");
#endif
	r = craww_head(&w, e);
	if (r >= 0)
		r = w.o.kind == CRAWW_GZIP ? craww_gzip_units(&w, src, wopts, units, e) :
		    craww_frames(&w, src, wopts, units, e);
	if (r >= 0)
		r = craww_tail(&w, e);
	free(w.zero);
	free(w.seek);
#if IS_ENABLED(CONFIG_CODEC_XZ)
	if (w.idx)
		lzma_index_end(w.idx, NULL);
#endif
	return r;
}
