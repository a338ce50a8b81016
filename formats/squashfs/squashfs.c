// SPDX-License-Identifier: MIT
/*
 * squashfs-backed images: a squashfs 4.0 filesystem holding the virtual
 * disk as a regular file (disk.img), read and written by edgeimg.
 * Spec: the kernel's Documentation/filesystems/squashfs.rst and
 * squashfs-tools' squashfs_fs.h; the kernel's fs/squashfs is the reader
 * the writer must satisfy.  This file holds the table, the probe and the
 * compressors; squashfs-read.c, squashfs-write.c and squashfs-parts.c the rest.
 */
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "codec/codec.h"
#include "core/kconfig.h"
#include "squashfs.h"

#if IS_ENABLED(CONFIG_CODEC_XZ)
#include <lzma.h>
#endif
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
#include <zstd.h>
#include <zstd_errors.h>
#endif

static const struct squashfs_comp squashfs_comps[] = {
	{ "gzip", SQFS_COMP_GZIP, "zlib", 1, 9, 9 },
	{ "lzma", SQFS_COMP_LZMA, NULL, 0, 0, 0 },
	{ "lzo", SQFS_COMP_LZO, NULL, 0, 0, 0 },
	{ "xz", SQFS_COMP_XZ, "xz", 0, 9, 6 },
	{ "lz4", SQFS_COMP_LZ4, "lz4", 1, 12, 9 },
	{ "zstd", SQFS_COMP_ZSTD, "zstd", 1, 22, 15 },
};

const struct squashfs_comp *squashfs_comp_by_id(unsigned id)
{
	for (size_t i = 0; i < sizeof(squashfs_comps) / sizeof(squashfs_comps[0]); i++)
		if (squashfs_comps[i].id == id)
			return &squashfs_comps[i];
	return NULL;
}

const struct squashfs_comp *squashfs_comp_by_name(const char *name)
{
	for (size_t i = 0; i < sizeof(squashfs_comps) / sizeof(squashfs_comps[0]); i++)
		if (!strcmp(squashfs_comps[i].name, name))
			return &squashfs_comps[i];
	return NULL;
}

int squashfs_comp_built(const struct squashfs_comp *c)
{
	return c->codec && codec_find(c->codec) ? 0 : -1;
}

#if IS_ENABLED(CONFIG_CODEC_XZ)
/*
 * squashfs xz with the default options (no compressor options block):
 * one LZMA2 filter whose dictionary is the block size, CRC32 check.  The
 * kernel allocates that dictionary and refuses a stream that asks for more,
 * so the generic xz codec (8 MiB dictionary at -6) would not do.
 */
static int squashfs_xz_compress(const void *in, size_t in_len, void *out,
				size_t *out_len, int level, uint32_t block_size,
				struct err *e)
{
	lzma_options_lzma opt;
	lzma_filter f[2];
	size_t pos = 0;
	lzma_ret r;

	if (lzma_lzma_preset(&opt, (uint32_t)level))
		return err_set(e, EI_EUSAGE, "squashfs: xz level %d is not 0..9", level);
	opt.dict_size = block_size;
	f[0].id = LZMA_FILTER_LZMA2;
	f[0].options = &opt;
	f[1].id = LZMA_VLI_UNKNOWN;
	f[1].options = NULL;
	r = lzma_stream_buffer_encode(f, LZMA_CHECK_CRC32, NULL, in, in_len,
				      out, &pos, *out_len);
	if (r == LZMA_BUF_ERROR)
		return -ENOSPC;
	if (r != LZMA_OK)
		return err_set(e, EI_ECODEC, "squashfs: xz encoder error %d", (int)r);
	*out_len = pos;
	return 0;
}

static int squashfs_xz_decompress(const void *in, size_t in_len, void *out,
				  size_t *out_len, uint32_t block_size,
				  struct err *e)
{
	/* A dictionary never needs to exceed the block size. */
	uint64_t memlimit = (uint64_t)block_size + (1u << 20);
	size_t ipos = 0, opos = 0;
	lzma_ret r;

	r = lzma_stream_buffer_decode(&memlimit, 0, NULL, in, &ipos, in_len,
				      out, &opos, *out_len);
	if (r == LZMA_MEMLIMIT_ERROR)
		return err_set(e, EI_ECODEC,
			       "squashfs: xz stream needs more than %llu bytes of memory",
			       (unsigned long long)memlimit);
	if (r != LZMA_OK || ipos != in_len)
		return err_set(e, EI_ECODEC, "squashfs: invalid xz stream (%s %d)",
			       r == LZMA_BUF_ERROR ? "output too large or truncated" :
			       "decoder error", (int)r);
	*out_len = opos;
	return 0;
}
#endif

#if IS_ENABLED(CONFIG_CODEC_ZSTD)
/*
 * zstd frames without the content size field (3 bytes a block; squashfs
 * knows each block's size): the same compressed blocks as mksquashfs's
 * ZSTD_compressCCtx() otherwise, since ZSTD_compress2() also tunes the
 * parameters to the block size.  Decoders (kernel, unsquashfs) accept both.
 */
struct squashfs_zstd {
	ZSTD_CCtx *c;
	ZSTD_DCtx *d;
};

static struct squashfs_zstd *squashfs_zstd_ctx(void **ctx)
{
	if (!*ctx)
		*ctx = calloc(1, sizeof(struct squashfs_zstd));
	return *ctx;
}

/*
 * 256 times the sum of the squared byte counts of @n bytes at @p, against
 * n^2 times (1 + 1/@slack): at most that when the bytes are spread as
 * evenly as random ones (the order-2 Renyi entropy, which is at most the
 * Shannon entropy, above 8 - log2(1 + 1/@slack) bits a byte).  Integers
 * only, so every architecture gives the same answer.
 */
static int sqfs_flat(const uint8_t *p, size_t n, uint64_t slack)
{
	uint32_t c[4][256] = { { 0 } };
	uint64_t q = 0;
	size_t i = 0;

	for (; i + 4 <= n; i += 4) {
		c[0][p[i]]++;
		c[1][p[i + 1]]++;
		c[2][p[i + 2]]++;
		c[3][p[i + 3]]++;
	}
	for (; i < n; i++)
		c[0][p[i]]++;
	for (unsigned b = 0; b < 256; b++) {
		uint64_t t = (uint64_t)c[0][b] + c[1][b] + c[2][b] + c[3][b];

		q += t * t;
	}
	return 256 * q <= (uint64_t)n * n + (uint64_t)n * n / slack;
}

/*
 * Whether a block of @n bytes (64 KiB or more) is not worth a slow level:
 * its first 4 KiB and then all of it look random (above 7.99 bits a byte;
 * random bytes give about 8 - 370/n), and zstd's fastest level finds no
 * repeat that fits it into @cap bytes.  Such blocks are what compressed
 * files hold; at level 15 each costs as much as a text block, and level 15
 * keeps a block only when it takes out 1/64 of it (zstd's minimum gain).
 */
static int sqfs_random(ZSTD_CCtx *z, const uint8_t *in, size_t n, void *out, size_t cap)
{
	if (n < 65536 || !sqfs_flat(in, 4096, 4) || !sqfs_flat(in, n, 144))
		return 0;
	return ZSTD_isError(ZSTD_compressCCtx(z, out, cap, in, n, 1));
}

static int squashfs_zstd_compress(void **ctx, const void *in, size_t in_len,
				  void *out, size_t *out_len, int level,
				  unsigned flags, struct err *e)
{
	struct squashfs_zstd *c = squashfs_zstd_ctx(ctx);
	ZSTD_CCtx *z;
	size_t r;

	if (!c || (!c->c && !(c->c = ZSTD_createCCtx())))
		return err_set(e, -ENOMEM, "squashfs: zstd: out of memory");
	z = c->c;
	if ((flags & SQFS_SKIP_RANDOM) && sqfs_random(z, in, in_len, out, *out_len))
		return -ENOSPC;
	ZSTD_CCtx_reset(z, ZSTD_reset_session_and_parameters);
	if (ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_contentSizeFlag, 0)))
		return err_set(e, EI_ECODEC, "squashfs: zstd: level %d refused", level);
	r = ZSTD_compress2(z, out, *out_len, in, in_len);
	if (ZSTD_isError(r))
		return ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall ? -ENOSPC :
		       err_set(e, EI_ECODEC, "squashfs: zstd: %s", ZSTD_getErrorName(r));
	*out_len = r;
	return 0;
}

static int squashfs_zstd_decompress(void **ctx, const void *in, size_t in_len,
				    void *out, size_t *out_len, struct err *e)
{
	struct squashfs_zstd *c = squashfs_zstd_ctx(ctx);
	size_t r;

	if (!c || (!c->d && !(c->d = ZSTD_createDCtx())))
		return err_set(e, -ENOMEM, "squashfs: zstd: out of memory");
	/* No block needs a window beyond the largest block size. */
	ZSTD_DCtx_setParameter(c->d, ZSTD_d_windowLogMax, SQFS_MAX_LOG);
	r = ZSTD_decompressDCtx(c->d, out, *out_len, in, in_len);
	if (ZSTD_isError(r))
		return err_set(e, EI_ECODEC, "zstd: %s", ZSTD_getErrorName(r));
	*out_len = r;
	return 0;
}
#endif

int squashfs_compress(const struct squashfs_comp *c, void **ctx,
		      const void *in, size_t in_len, void *out,
		      size_t *out_len, int level, uint32_t block_size,
		      unsigned flags, struct err *e)
{
	const struct codec *k;

#if IS_ENABLED(CONFIG_CODEC_XZ)
	if (c->id == SQFS_COMP_XZ)
		return squashfs_xz_compress(in, in_len, out, out_len, level,
					    block_size, e);
#endif
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
	if (c->id == SQFS_COMP_ZSTD)
		return squashfs_zstd_compress(ctx, in, in_len, out, out_len,
					      level, flags, e);
#endif
	(void)flags;
	k = c->codec ? codec_find(c->codec) : NULL;
	if (!k)
		return err_set(e, EI_EUNSUP, "squashfs: %s is not built in", c->name);
	return k->compress(ctx, in, in_len, out, out_len, level, e);
}

int squashfs_decompress(const struct squashfs_comp *c, void **ctx,
			const void *in, size_t in_len, void *out,
			size_t *out_len, uint32_t block_size, struct err *e)
{
	const struct codec *k;

#if IS_ENABLED(CONFIG_CODEC_XZ)
	if (c->id == SQFS_COMP_XZ)
		return squashfs_xz_decompress(in, in_len, out, out_len,
					      block_size, e);
#endif
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
	if (c->id == SQFS_COMP_ZSTD)
		return squashfs_zstd_decompress(ctx, in, in_len, out, out_len, e);
#endif
	k = c->codec ? codec_find(c->codec) : NULL;
	if (!k)
		return err_set(e, EI_EUNSUP, "squashfs: %s is not built in", c->name);
	return k->decompress(ctx, in, in_len, out, out_len, e);
}

void squashfs_ctx_free(const struct squashfs_comp *c, void *ctx)
{
	const struct codec *k = c->codec ? codec_find(c->codec) : NULL;

	if (!ctx)
		return;
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
	if (c->id == SQFS_COMP_ZSTD) {
		struct squashfs_zstd *z = ctx;

		ZSTD_freeCCtx(z->c);
		ZSTD_freeDCtx(z->d);
		free(z);
		return;
	}
#endif
	if (k)
		codec_ctx_free(k, ctx);
	else
		free(ctx);
}

static int squashfs_probe(const uint8_t *head, size_t head_len,
			  const uint8_t *tail, size_t tail_len,
			  uint64_t file_size)
{
	(void)tail;
	(void)tail_len;
	(void)file_size;
	if (head_len < 4 || get_le32(head) != SQFS_MAGIC)
		return 0;
	if (head_len >= SQFS_SUPER_SIZE && get_le16(head + SB_MAJOR) == 4 &&
	    get_le16(head + SB_MINOR) == 0)
		return PROBE_CERTAIN;
	/* The magic alone: open() says what is wrong with it. */
	return PROBE_SURE;
}

const struct img_format fmt_squashfs = {
	.name = "squashfs",
	.desc = "squashfs 4.0 holding the disk as a file (disk.img)",
	.probe = squashfs_probe,
	.open = squashfs_open,
	.map = squashfs_map,
	.decode = squashfs_decode,
	.close = squashfs_close,
	.info = squashfs_info,
	.recipe = squashfs_recipe,
#if IS_ENABLED(CONFIG_FILES) && IS_ENABLED(CONFIG_OUTPUT_SQUASHFS)
	.reuse_open = squashfs_reuse_open,
	.pack_blocks = squashfs_pack_blocks,
	.write_recipe = squashfs_write_recipe,
#endif
	.write = IS_ENABLED(CONFIG_OUTPUT_SQUASHFS) ? squashfs_write : NULL,
	.write_parse = IS_ENABLED(CONFIG_OUTPUT_SQUASHFS) ? squashfs_opts_parse : NULL,
	.wopts = IS_ENABLED(CONFIG_OUTPUT_SQUASHFS) ? squashfs_write_options : NULL,
};
