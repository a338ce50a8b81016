// SPDX-License-Identifier: MIT
/*
 * The compressed raw writer: a disk as one gzip, xz or zstd stream that
 * the codecs' own tools decompress, made in parallel and readable at
 * random.  The disk is cut into units of block_size bytes, each compressed
 * alone by a pipeline worker, so the bytes are the same for any -j:
 *
 *   zstd  one frame per unit, then edgeimg's recipe in a skippable frame
 *         and the seek table of the zstd seekable format (facebook/zstd
 *         contrib/seekable_format/zstd_seekable_compression_format.md);
 *   xz    one block per unit (lzma_block_buffer_encode), then the index
 *         and the stream footer (the .xz file format 1.1.0), as xz -T makes;
 *   gzip  one member (RFC 1952) whose deflate data is one raw-deflate
 *         piece per unit, each ended on a byte boundary by a sync flush,
 *         the last one final, their CRC-32s combined, as pigz makes it.
 *
 * A unit of zeros (holes and zero extents, never read, or data that reads
 * as zeros) is compressed once, up front, and its bytes reused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "core/bytes.h"
#include "codec/codec.h"
#include "codec/pipeline.h"
#include "core/kconfig.h"
#include "craw.h"
#include "generated/features.h"

#if IS_ENABLED(CONFIG_CODEC_ZSTD)
#define ZSTD_STATIC_LINKING_ONLY        /* ZSTD_getCParams, ZSTD_estimateCCtxSize_usingCParams */
#include <zstd.h>
#endif
#if IS_ENABLED(CONFIG_CODEC_XZ)
#include <lzma.h>
#endif

extern const struct img_format fmt_craw;

enum craww_kind { CRAWW_GZIP, CRAWW_XZ, CRAWW_ZSTD };

#define CRAWW_BLOCK_MIN (64u << 10)
#define CRAWW_BLOCK_MAX (64u << 20)
/* Memory besides the pipeline: the program, the reader, the zero unit's bytes. */
#define CRAWW_BASELINE (4u << 20)
/* A gzip context: deflate's window and hash (windowBits 15, memLevel 8) and some. */
#define CRAWW_GZIP_CTX (320u << 10)
#define CRAWW_GZIP_HEADER 10
/* Unit flags. */
#define CRAWW_ZEROS 1u          /* the unit is zeros: its bytes are the zero unit's */
#define CRAWW_LAST 2u           /* gzip: the last unit, its deflate block final */
/*
 * A unit's output: CRAWW_AUX bytes for emit (xz: the block's unpadded size,
 * LE64; gzip: the CRC-32 of its input, LE32), then the compressed bytes.
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
	size_t out_cap;
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

static const char *const craww_names[] = { "gzip", "xz", "zstd" };

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
		"zstd 8M, xz 2M, gzip 1M",
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
 * block_size: zstd 8 MiB and xz 2 MiB are the largest at which two threads
 * of level 19 or 6 fit in the 64 MiB default cap (xz's dictionary is
 * block_size at most: 24 MiB of encoder at 2 MiB); gzip's window is 32 KiB.
 */
static const uint32_t craww_block_def[] = { 1u << 20, 2u << 20, 8u << 20 };

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

/* --- one unit, in a worker --------------------------------------------- */

#if IS_ENABLED(CONFIG_CODEC_ZSTD)
/*
 * Parameters sized for a unit: a level's own for a source of that size,
 * its match finder's tables at most 2^CRAWW_ZSTD_TABLE_LOG entries.  Level
 * 19 for 8 MiB takes 2^24 and 2^22 (81 MiB a thread); capped, 9 MiB,
 * which lets two threads work within the 64 MiB default cap, for a result
 * about 3% larger.  The parameters depend on the level and block_size
 * only, never on the threads or the cap: the bytes are the recipe's.
 */
#define CRAWW_ZSTD_TABLE_LOG 20

static ZSTD_compressionParameters craww_zstd_params(int level, size_t unit)
{
	ZSTD_compressionParameters cp = ZSTD_getCParams(level, unit, 0);

	if (cp.chainLog > CRAWW_ZSTD_TABLE_LOG)
		cp.chainLog = CRAWW_ZSTD_TABLE_LOG;
	if (cp.hashLog > CRAWW_ZSTD_TABLE_LOG)
		cp.hashLog = CRAWW_ZSTD_TABLE_LOG;
	return cp;
}

static int craww_zstd(const struct craw_writer *w, void **ctx, const uint8_t *in,
		      size_t len, uint8_t *out, size_t *out_len, struct err *e)
{
	ZSTD_CCtx *c = *ctx;
	size_t r;

	if (!c) {
		const ZSTD_compressionParameters *p = &w->cp;

		c = ZSTD_createCCtx();
		if (!c)
			return err_set(e, -ENOMEM, "craw: out of memory");
		*ctx = c;
		if (ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, w->o.level)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, (int)p->windowLog)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_chainLog, (int)p->chainLog)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_hashLog, (int)p->hashLog)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_searchLog, (int)p->searchLog)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_minMatch, (int)p->minMatch)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_targetLength, (int)p->targetLength)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_strategy, (int)p->strategy)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1)))
			return err_set(e, -EINVAL, "craw: zstd refuses the parameters of level %d",
				       w->o.level);
	}
	r = ZSTD_compress2(c, out, *out_len, in, len);
	if (ZSTD_isError(r))
		return err_set(e, EI_ECODEC, "craw: zstd: %s", ZSTD_getErrorName(r));
	*out_len = r;
	return 0;
}
#endif

#if IS_ENABLED(CONFIG_CODEC_XZ)
static int craww_xz(const struct craw_writer *w, const uint8_t *in, size_t len,
		    uint8_t *aux, uint8_t *out, size_t *out_len, struct err *e)
{
	lzma_options_lzma lz = w->lz;
	lzma_filter f[2] = { { LZMA_FILTER_LZMA2, &lz }, { LZMA_VLI_UNKNOWN, NULL } };
	lzma_block b = { .version = 0, .check = LZMA_CHECK_CRC64, .filters = f };
	size_t pos = 0;
	lzma_ret xr = lzma_block_buffer_encode(&b, NULL, in, len, out, &pos, *out_len);

	if (xr == LZMA_MEM_ERROR)
		return err_set(e, -ENOMEM, "craw: xz: out of memory");
	if (xr != LZMA_OK)
		return err_set(e, EI_ECODEC, "craw: xz: block encoder error %d", (int)xr);
	*out_len = pos;
	put_le64(aux, lzma_block_unpadded_size(&b));
	return 0;
}
#endif

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
	uint8_t *aux = out;

	memset(aux, 0, CRAWW_AUX);
	out += CRAWW_AUX;
	*out_len = w->out_cap - CRAWW_AUX;
	switch (w->o.kind) {
	case CRAWW_GZIP:
		return craww_gzip(w, ctx, in, len, last, aux, out, out_len, e);
	case CRAWW_XZ:
#if IS_ENABLED(CONFIG_CODEC_XZ)
		return craww_xz(w, in, len, aux, out, out_len, e);
#else
		break;
#endif
	case CRAWW_ZSTD:
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
		return craww_zstd(w, ctx, in, len, out, out_len, e);
#else
		break;
#endif
	}
	return err_set(e, EI_EUNSUP, "craw: compression %d is not built in", (int)w->o.kind);
}

static void craww_ctx_free(void *arg, void *ctx)
{
	const struct craw_writer *w = arg;

	if (!ctx)
		return;
	if (w->o.kind == CRAWW_GZIP) {
		deflateEnd(ctx);
		free(ctx);
	}
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
	if (w->o.kind == CRAWW_ZSTD)
		ZSTD_freeCCtx(ctx);
#endif
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

static int craww_put(struct craw_writer *w, const void *p, size_t len, struct err *e)
{
	int r = io_write(w->out, p, len, w->cur, e);

	if (r < 0)
		return r;
	w->cur += len;
	return 0;
}

/* Caller's thread, in disk order: append the unit and index it. */
static int craww_emit(void *arg, struct pl_unit *u, struct err *e)
{
	struct craw_writer *w = arg;
	const uint8_t *aux = u->out;
	size_t len = u->out_len;

	if (u->flags & CRAWW_ZEROS) {
		aux = w->zero;
		len = w->zero_len;
	}
	if (w->o.kind == CRAWW_ZSTD) {
		if (len > UINT32_MAX)
			return err_set(e, EI_ELIMIT, "craw: zstd frame of %zu bytes", len);
		if (w->frames == w->seek_cap) {
			uint64_t cap = w->seek_cap ? 2 * w->seek_cap : 1024;
			uint8_t *s = realloc(w->seek, (size_t)cap * 8);

			if (!s)
				return err_set(e, -ENOMEM, "craw: out of memory");
			w->seek = s;
			w->seek_cap = cap;
		}
		put_le32(w->seek + w->frames * 8, (uint32_t)len);
		put_le32(w->seek + w->frames * 8 + 4, (uint32_t)u->in_len);
		w->frames++;
	}
#if IS_ENABLED(CONFIG_CODEC_XZ)
	if (w->o.kind == CRAWW_XZ &&
	    lzma_index_append(w->idx, NULL, get_le64(aux), u->in_len) != LZMA_OK)
		return err_set(e, -ENOMEM, "craw: xz: cannot index block %llu",
			       (unsigned long long)(u->off / w->o.block_size));
#endif
	if (w->o.kind == CRAWW_GZIP)
		w->crc = (uint32_t)crc32_combine(w->crc, get_le32(aux), (z_off_t)u->in_len);
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

/*
 * The codec's state per thread and the bound of a unit's compressed bytes,
 * for block_size bytes at the level chosen.
 */
static int craww_sizes(struct craw_writer *w, uint64_t *ctx, size_t *bound, struct err *e)
{
	size_t bs = w->o.block_size;

	switch (w->o.kind) {
	case CRAWW_GZIP:
		*ctx = CRAWW_GZIP_CTX;
		/* compressBound() is for Z_FINISH; a sync flush adds an empty block. */
		*bound = (size_t)compressBound((uLong)bs) + 16;
		return 0;
	case CRAWW_XZ:
#if IS_ENABLED(CONFIG_CODEC_XZ)
	{
		lzma_filter f[2] = { { LZMA_FILTER_LZMA2, &w->lz }, { LZMA_VLI_UNKNOWN, NULL } };
		uint64_t m;

		if (lzma_lzma_preset(&w->lz, (uint32_t)w->o.level))
			return err_set(e, -EINVAL, "craw: xz: no preset %d", w->o.level);
		/* A dictionary larger than a block is never used: sized for it. */
		if (w->lz.dict_size > bs)
			w->lz.dict_size = (uint32_t)bs;
		m = lzma_raw_encoder_memusage(f);
		if (m == UINT64_MAX)
			return err_set(e, -EINVAL, "craw: xz: bad filter options");
		*ctx = m;
		*bound = lzma_block_buffer_bound(bs);
		return 0;
	}
#else
		break;
#endif
	case CRAWW_ZSTD:
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
		w->cp = craww_zstd_params(w->o.level, bs);
		*ctx = ZSTD_estimateCCtxSize_usingCParams(w->cp);
		*bound = ZSTD_compressBound(bs);
		return 0;
#else
		break;
#endif
	}
	return err_set(e, EI_EUNSUP, "craw: compression %d is not built in", (int)w->o.kind);
}

/* The zero unit's bytes, made once on this thread. */
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

int craw_write(struct vdisk *src, struct io *out, const struct write_opts *wopts,
	       struct err *e)
{
	struct craw_writer w = { .out = out, .size = src->size };
	struct write_parsed tmp;
	const struct write_parsed *parsed;
	struct pipeline *p = NULL;
	uint64_t ctx = 0, fixed, units, need;
	size_t bound = 0;
	unsigned threads;
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
	r = craww_sizes(&w, &ctx, &bound, e);
	if (r < 0)
		return r;
	w.out_cap = CRAWW_AUX + bound;
	/*
	 * Besides the pipeline: the zero unit (and a codec state and a unit
	 * of zeros while it is made), the seek table or index; per thread a
	 * codec state; the program when the cap leaves room for it.  Fewer
	 * threads when one unit each would not fit.
	 */
	fixed = units * CRAW_INDEX_ENTRY + (64u << 10);
	need = fixed + ctx + w.o.block_size + w.out_cap;
	if (wopts->mem_cap < need)
		return err_set(e, EI_ELIMIT,
			       "craw: the memory cap of %llu bytes is below the %llu the writer needs for %s level %d with block_size=%lu; a smaller block_size needs less",
			       (unsigned long long)wopts->mem_cap, (unsigned long long)need,
			       craww_names[w.o.kind], w.o.level, (unsigned long)w.o.block_size);
	if (wopts->mem_cap >= need + CRAWW_BASELINE)
		fixed += CRAWW_BASELINE;
	threads = wopts->threads ? wopts->threads : 1;
	while (threads > 1 && fixed + threads * (ctx + w.o.block_size + w.out_cap) > wopts->mem_cap)
		threads--;
#if IS_ENABLED(CONFIG_CODEC_XZ)
	if (w.o.kind == CRAWW_XZ && !(w.idx = lzma_index_init(NULL))) {
		r = err_set(e, -ENOMEM, "craw: out of memory");
		goto out;
	}
#endif
	r = craww_zero_unit(&w, e);
	if (r < 0)
		goto out;
	r = pipeline_new(&craww_ops, &w, threads, w.o.block_size, w.out_cap,
			 wopts->mem_cap - fixed - threads * ctx, &p, e);
	if (r < 0)
		goto out;
	if ((r = craww_head(&w, e)) < 0 ||
	    (r = craww_stream(&w, src, p, wopts, e)) < 0)
		goto out;
	r = craww_tail(&w, e);
out:
	pipeline_free(p);
	free(w.zero);
	free(w.seek);
#if IS_ENABLED(CONFIG_CODEC_XZ)
	if (w.idx)
		lzma_index_end(w.idx, NULL);
#endif
	return r;
}
