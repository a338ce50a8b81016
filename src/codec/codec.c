// SPDX-License-Identifier: MIT
/* Codec tables over zlib, zstd, liblzma and liblz4. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "codec/codec.h"
#include "core/kconfig.h"

#if IS_ENABLED(CONFIG_DEFLATE_LIBDEFLATE)
#include <libdeflate.h>
#endif
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
#include <zstd.h>
#include <zstd_errors.h>
#endif
#if IS_ENABLED(CONFIG_CODEC_XZ)
#include <lzma.h>
#endif
#if IS_ENABLED(CONFIG_CODEC_LZ4)
#include <lz4.h>
#include <lz4hc.h>
#endif

/*
 * zlib: "deflate" is the raw stream qcow2 stores; "zlib" has the zlib
 * header and checksum that squashfs calls gzip.
 */
#if !IS_ENABLED(CONFIG_DEFLATE_LIBDEFLATE)
static int zlib_compress(int wbits, const void *in, size_t in_len, void *out,
			 size_t *out_len, int level, struct err *e)
{
	z_stream zs;
	int r;

	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, level, Z_DEFLATED, wbits, 9,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return err_set(e, -ENOMEM, "zlib: deflateInit2 failed");
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)in_len;
	zs.next_out = out;
	zs.avail_out = (uInt)*out_len;
	r = deflate(&zs, Z_FINISH);
	*out_len = zs.total_out;
	deflateEnd(&zs);
	if (r != Z_STREAM_END)
		return -ENOSPC;
	return 0;
}

static int zlib_decompress(int wbits, const void *in, size_t in_len,
			   void *out, size_t *out_len, size_t *in_used, struct err *e)
{
	z_stream zs;
	int r;

	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, wbits) != Z_OK)
		return err_set(e, -ENOMEM, "zlib: inflateInit2 failed");
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)in_len;
	zs.next_out = out;
	zs.avail_out = (uInt)*out_len;
	r = inflate(&zs, Z_FINISH);
	*out_len = zs.total_out;
	if (in_used)
		*in_used = zs.total_in;
	inflateEnd(&zs);
	if (r == Z_STREAM_END)
		return 0;
	if (r == Z_BUF_ERROR && !zs.avail_out)
		return err_set(e, EI_ECODEC, "zlib: output exceeds %zu bytes",
			       (size_t)zs.total_out);
	return err_set(e, EI_ECODEC, "zlib: invalid stream (%s)",
		       zs.msg ? zs.msg : zError(r));
}

static int deflate_c(void **ctx, const void *in, size_t in_len, void *out,
		     size_t *out_len, int level, struct err *e)
{
	(void)ctx;
	return zlib_compress(-15, in, in_len, out, out_len, level, e);
}

static int deflate_d(void **ctx, const void *in, size_t in_len, void *out,
		     size_t *out_len, struct err *e)
{
	(void)ctx;
	return zlib_decompress(-15, in, in_len, out, out_len, NULL, e);
}

static int deflate_dp(void **ctx, const void *in, size_t in_len, void *out,
		      size_t *out_len, size_t *in_used, struct err *e)
{
	(void)ctx;
	return zlib_decompress(-15, in, in_len, out, out_len, in_used, e);
}

static int zlib_c(void **ctx, const void *in, size_t in_len, void *out,
		  size_t *out_len, int level, struct err *e)
{
	(void)ctx;
	return zlib_compress(15, in, in_len, out, out_len, level, e);
}

static int zlib_d(void **ctx, const void *in, size_t in_len, void *out,
		  size_t *out_len, struct err *e)
{
	(void)ctx;
	return zlib_decompress(15, in, in_len, out, out_len, NULL, e);
}

#else
/*
 * The same two stream formats from libdeflate (make bench's qcow2 zlib row
 * measures what it gives).
 * The thread's ctx keeps a compressor (for one level) and a decompressor;
 * bytes after the end of a stream are ignored, as zlib's inflate does.
 */
struct ldf_ctx {
	struct libdeflate_compressor *c;
	struct libdeflate_decompressor *d;
	int level;
};

static void ldf_free(void *ctx)
{
	struct ldf_ctx *z = ctx;

	if (!z)
		return;
	libdeflate_free_compressor(z->c);
	libdeflate_free_decompressor(z->d);
	free(z);
}

static int ldf_compress(void **ctx, int wbits, const void *in, size_t in_len,
			void *out, size_t *out_len, int level, struct err *e)
{
	struct ldf_ctx *z = *ctx ? *ctx : (*ctx = calloc(1, sizeof(*z)));
	size_t n;

	if (z && z->c && z->level != level) {
		libdeflate_free_compressor(z->c);
		z->c = NULL;
	}
	if (!z || (!z->c && !(z->c = libdeflate_alloc_compressor(level))))
		return err_set(e, -ENOMEM, "zlib: libdeflate: out of memory");
	z->level = level;
	n = wbits < 0 ? libdeflate_deflate_compress(z->c, in, in_len, out, *out_len) :
	    libdeflate_zlib_compress(z->c, in, in_len, out, *out_len);
	if (!n)
		return -ENOSPC;
	*out_len = n;
	return 0;
}

static int ldf_decompress(void **ctx, int wbits, const void *in,
			  size_t in_len, void *out, size_t *out_len,
			  size_t *in_used, struct err *e)
{
	struct ldf_ctx *z = *ctx ? *ctx : (*ctx = calloc(1, sizeof(*z)));
	enum libdeflate_result r;
	size_t used, n;

	if (!z || (!z->d && !(z->d = libdeflate_alloc_decompressor())))
		return err_set(e, -ENOMEM, "zlib: libdeflate: out of memory");
	r = wbits < 0 ?
	    libdeflate_deflate_decompress_ex(z->d, in, in_len, out, *out_len,
					     &used, &n) :
	    libdeflate_zlib_decompress_ex(z->d, in, in_len, out, *out_len,
					  &used, &n);
	if (r == LIBDEFLATE_INSUFFICIENT_SPACE)
		return err_set(e, EI_ECODEC, "zlib: output exceeds %zu bytes",
			       *out_len);
	if (r != LIBDEFLATE_SUCCESS)
		return err_set(e, EI_ECODEC, "zlib: invalid stream (libdeflate %d)",
			       (int)r);
	*out_len = n;
	if (in_used)
		*in_used = used;
	return 0;
}

static int deflate_c(void **ctx, const void *in, size_t in_len, void *out,
		     size_t *out_len, int level, struct err *e)
{
	return ldf_compress(ctx, -15, in, in_len, out, out_len, level, e);
}

static int deflate_d(void **ctx, const void *in, size_t in_len, void *out,
		     size_t *out_len, struct err *e)
{
	return ldf_decompress(ctx, -15, in, in_len, out, out_len, NULL, e);
}

static int deflate_dp(void **ctx, const void *in, size_t in_len, void *out,
		      size_t *out_len, size_t *in_used, struct err *e)
{
	return ldf_decompress(ctx, -15, in, in_len, out, out_len, in_used, e);
}

static int zlib_c(void **ctx, const void *in, size_t in_len, void *out,
		  size_t *out_len, int level, struct err *e)
{
	return ldf_compress(ctx, 15, in, in_len, out, out_len, level, e);
}

static int zlib_d(void **ctx, const void *in, size_t in_len, void *out,
		  size_t *out_len, struct err *e)
{
	return ldf_decompress(ctx, 15, in, in_len, out, out_len, NULL, e);
}
#endif

static const struct codec codec_deflate = {
	.name = "deflate", .level_min = 1, .level_max = 9, .level_default = 6,
	.compress = deflate_c, .decompress = deflate_d, .decompress_prefix = deflate_dp,
#if IS_ENABLED(CONFIG_DEFLATE_LIBDEFLATE)
	.ctx_free = ldf_free,
#endif
};

static const struct codec codec_zlib = {
	.name = "zlib", .level_min = 1, .level_max = 9, .level_default = 9,
	.compress = zlib_c, .decompress = zlib_d,
#if IS_ENABLED(CONFIG_DEFLATE_LIBDEFLATE)
	.ctx_free = ldf_free,
#endif
};

#if IS_ENABLED(CONFIG_CODEC_ZSTD)
struct zstd_ctx {
	ZSTD_CCtx *c;
	ZSTD_DCtx *d;
};

static struct zstd_ctx *zstd_ctx(void **ctx)
{
	if (!*ctx)
		*ctx = calloc(1, sizeof(struct zstd_ctx));
	return *ctx;
}

static int zstd_c(void **ctx, const void *in, size_t in_len, void *out,
		  size_t *out_len, int level, struct err *e)
{
	struct zstd_ctx *z = zstd_ctx(ctx);
	size_t r;

	if (!z || (!z->c && !(z->c = ZSTD_createCCtx())))
		return err_set(e, -ENOMEM, "zstd: out of memory");
	r = ZSTD_compressCCtx(z->c, out, *out_len, in, in_len, level);
	if (ZSTD_isError(r))
		return ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall ?
		       -ENOSPC :
		       err_set(e, EI_ECODEC, "zstd: %s", ZSTD_getErrorName(r));
	*out_len = r;
	return 0;
}

static int zstd_d(void **ctx, const void *in, size_t in_len, void *out,
		  size_t *out_len, struct err *e)
{
	struct zstd_ctx *z = zstd_ctx(ctx);
	size_t r;

	if (!z || (!z->d && !(z->d = ZSTD_createDCtx())))
		return err_set(e, -ENOMEM, "zstd: out of memory");
	/* A hostile frame may ask for a huge window: refuse above 8 MiB. */
	ZSTD_DCtx_setParameter(z->d, ZSTD_d_windowLogMax, 23);
	r = ZSTD_decompressDCtx(z->d, out, *out_len, in, in_len);
	if (ZSTD_isError(r))
		return err_set(e, EI_ECODEC, "zstd: %s", ZSTD_getErrorName(r));
	*out_len = r;
	return 0;
}

/* One frame, measured first: the bytes after it are not its concern. */
static int zstd_dp(void **ctx, const void *in, size_t in_len, void *out,
		   size_t *out_len, size_t *in_used, struct err *e)
{
	size_t fl = ZSTD_findFrameCompressedSize(in, in_len);

	if (ZSTD_isError(fl))
		return err_set(e, EI_ECODEC, "zstd: %s", ZSTD_getErrorName(fl));
	*in_used = fl;
	return zstd_d(ctx, in, fl, out, out_len, e);
}

static void zstd_free(void *ctx)
{
	struct zstd_ctx *z = ctx;

	if (!z)
		return;
	ZSTD_freeCCtx(z->c);
	ZSTD_freeDCtx(z->d);
	free(z);
}

static const struct codec codec_zstd = {
	.name = "zstd", .level_min = 1, .level_max = 22, .level_default = 3,
	.compress = zstd_c, .decompress = zstd_d, .decompress_prefix = zstd_dp,
	.ctx_free = zstd_free,
};
#endif

#if IS_ENABLED(CONFIG_CODEC_XZ)
static int xz_c(void **ctx, const void *in, size_t in_len, void *out,
		size_t *out_len, int level, struct err *e)
{
	size_t pos = 0;
	lzma_ret r;

	(void)ctx;
	r = lzma_easy_buffer_encode((uint32_t)level, LZMA_CHECK_CRC32, NULL,
				    in, in_len, out, &pos, *out_len);
	if (r == LZMA_BUF_ERROR)
		return -ENOSPC;
	if (r != LZMA_OK)
		return err_set(e, EI_ECODEC, "xz: encoder error %d", (int)r);
	*out_len = pos;
	return 0;
}

static int xz_d(void **ctx, const void *in, size_t in_len, void *out,
		size_t *out_len, struct err *e)
{
	uint64_t memlimit = 64ULL << 20;
	size_t ipos = 0, opos = 0;
	lzma_ret r;

	(void)ctx;
	r = lzma_stream_buffer_decode(&memlimit, 0, NULL, in, &ipos, in_len,
				      out, &opos, *out_len);
	if (r != LZMA_OK || ipos != in_len)
		return err_set(e, EI_ECODEC, "xz: invalid stream (%s %d)",
			       r == LZMA_BUF_ERROR ? "output too large or truncated" :
			       "decoder error", (int)r);
	*out_len = opos;
	return 0;
}

static const struct codec codec_xz = {
	.name = "xz", .level_min = 0, .level_max = 9, .level_default = 6,
	.compress = xz_c, .decompress = xz_d,
};
#endif

#if IS_ENABLED(CONFIG_CODEC_LZ4)
/* Raw LZ4 blocks (no frame), as squashfs stores them. */
static int lz4_c(void **ctx, const void *in, size_t in_len, void *out,
		 size_t *out_len, int level, struct err *e)
{
	int r;

	(void)ctx;
	if (in_len > LZ4_MAX_INPUT_SIZE || *out_len > INT32_MAX)
		return err_set(e, EI_ELIMIT, "lz4: block of %zu bytes too large", in_len);
	r = LZ4_compress_HC(in, out, (int)in_len, (int)*out_len, level);
	if (r <= 0)
		return -ENOSPC;
	*out_len = (size_t)r;
	return 0;
}

static int lz4_d(void **ctx, const void *in, size_t in_len, void *out,
		 size_t *out_len, struct err *e)
{
	int r;

	(void)ctx;
	if (in_len > INT32_MAX || *out_len > INT32_MAX)
		return err_set(e, EI_ELIMIT, "lz4: block of %zu bytes too large", in_len);
	r = LZ4_decompress_safe(in, out, (int)in_len, (int)*out_len);
	if (r < 0)
		return err_set(e, EI_ECODEC, "lz4: invalid block (error %d)", r);
	*out_len = (size_t)r;
	return 0;
}

static const struct codec codec_lz4 = {
	.name = "lz4", .level_min = 1, .level_max = 12, .level_default = 9,
	.compress = lz4_c, .decompress = lz4_d,
};
#endif

const struct codec *const codecs[] = {
	&codec_deflate,
	&codec_zlib,
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
	&codec_zstd,
#endif
#if IS_ENABLED(CONFIG_CODEC_XZ)
	&codec_xz,
#endif
#if IS_ENABLED(CONFIG_CODEC_LZ4)
	&codec_lz4,
#endif
	NULL,
};

const struct codec *codec_find(const char *name)
{
	for (const struct codec *const *c = codecs; *c; c++)
		if (!strcmp((*c)->name, name))
			return *c;
	return NULL;
}

void codec_ctx_free(const struct codec *c, void *ctx)
{
	if (c->ctx_free)
		c->ctx_free(ctx);
	else
		free(ctx);
}

/* The recipe keys, one per library family. */
static const char *const codec_library_keys[] = { "deflate", "zstd", "xz", "lz4" };

const char *codec_library(const struct codec *c, char *buf, size_t len)
{
	const char *v = "unknown";

	if (!strcmp(c->name, "deflate") || !strcmp(c->name, "zlib")) {
#if IS_ENABLED(CONFIG_DEFLATE_LIBDEFLATE)
		snprintf(buf, len, "libdeflate-%s", LIBDEFLATE_VERSION_STRING);
#else
		snprintf(buf, len, "zlib-%s", zlibVersion());
#endif
		return "deflate";
	}
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
	if (!strcmp(c->name, "zstd"))
		v = ZSTD_versionString();
#endif
#if IS_ENABLED(CONFIG_CODEC_XZ)
	if (!strcmp(c->name, "xz"))
		v = lzma_version_string();
#endif
#if IS_ENABLED(CONFIG_CODEC_LZ4)
	if (!strcmp(c->name, "lz4"))
		v = LZ4_versionString();
#endif
	snprintf(buf, len, "%s", v);
	return c->name;
}

int codec_library_opts(struct opts *o, const struct codec *c,
		       const char *fmt_name, struct err *e)
{
	char have[64];
	const char *key = c ? codec_library(c, have, sizeof(have)) : NULL;

	for (size_t i = 0; i < sizeof(codec_library_keys) / sizeof(codec_library_keys[0]); i++) {
		const char *k = codec_library_keys[i], *want = opts_get(o, k);
		size_t n;

		if (!want)
			continue;
		if (!key)
			return err_set(e, EI_EUSAGE,
				       "%s: %s=%s applies to compressed output only",
				       fmt_name, k, want);
		if (strcmp(k, key))
			return err_set(e, EI_EUSAGE,
				       "%s: %s=%s does not apply to %s compression",
				       fmt_name, k, want, key);
		n = strcspn(have, "-");
		if (strcmp(want, have) &&
		    !(have[n] && strlen(want) == n && !strncmp(want, have, n)))
			return err_set(e, EI_EUNSUP,
				       "%s: recipe needs %s %s, this build has %s",
				       fmt_name, k, want, have);
	}
	return 0;
}

void codec_library_describe(const struct opt_desc *d, char *buf, size_t len)
{
	const struct codec *c = codec_find(d->key);
	char lib[64];

	if (!c) {
		snprintf(buf, len, "none in this build");
		return;
	}
	codec_library(c, lib, sizeof(lib));
	snprintf(buf, len, "%s, this build's; a recipe naming another is refused", lib);
}
