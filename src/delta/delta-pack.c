// SPDX-License-Identifier: MIT
/*
 * Containers rebuilt exactly (src/delta/delta-format.md, "Containers
 * rebuilt exactly: the packed view"): the packed view of a container file,
 * whose compressed blocks are stored decompressed, and the writer that
 * turns a packed view back into the container, byte for byte.
 *
 * A view made for NEW (exact) holds a block decompressed only where
 * compressing it again, as the method names, gives the container's bytes;
 * every other byte of the container is in the view as it is.  A view made
 * for OLD is only a source of matches: every block the container's tables
 * name is decompressed, nothing is compressed again, and nothing is read
 * until the view is.
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#define ZSTD_STATIC_LINKING_ONLY        /* ZSTD_estimateCCtxSize_usingCParams */
#include <zstd.h>

#include "core/bytes.h"
#include "core/format.h"
#include "core/limits.h"
#include "codec/codec.h"
#include "codec/pipeline.h"
#include "delta/delta.h"
#include "generated/features.h"

#if IS_ENABLED(CONFIG_CODEC_XZ)
#include <lzma.h>
#endif
#if IS_ENABLED(CONFIG_CODEC_LZ4)
#include <lz4.h>
#include <lz4hc.h>
#endif

#define PK_MAGIC "EIPACKV\x1a"
#define PK_HDR 4096u
#define PK_ENT 16u
#define PK_ALIGN 4096u
/* At most 1 Mi records (16 MiB of table, 40 MiB of index in memory). */
#define PK_MAX_RECS (1u << 20)
/* A block decodes to at most 2 MiB (qcow2's largest cluster). */
#define PK_MAX_ULEN (2u << 20)

struct pk_rec {
	uint64_t coff;          /* in the container */
	uint64_t clen;          /* raw: bytes; block: its stream (or region) */
	uint64_t voff;          /* its payload in the view */
	uint32_t ulen;          /* block: bytes it decodes to; raw: 0 */
	uint8_t method;         /* PACK_RAW, PACK_QEMU_*, PACK_SQFS_* */
	uint8_t level;          /* PACK_SQFS_*: the compression level (xz: filter) */
	uint8_t param;          /* PACK_SQFS_XZ: the LZMA2 dictionary byte;
				   PACK_SQFS_GZIP: 15 - window bits | strategy << 4 */
};

/* One thread's compressors and buffers. */
struct pk_ctx {
	z_stream def, inf;
	int def_ok, inf_ok;     /* initialised, for this method | level << 8 */
	ZSTD_CCtx *zc;
	ZSTD_DCtx *zd;
};

struct pkview {
	struct vdisk *in;       /* the container file, read as raw */
	struct io *io;          /* its bytes */
	struct pk_rec *r;
	size_t n;
	uint64_t data_off, size;
	uint8_t hdr[PK_HDR];
	struct pk_ctx ctx;
	uint8_t *cbuf, *ubuf;   /* a block's stream, the block decoded */
	size_t cached;          /* the record in ubuf, SIZE_MAX: none */
};

static const char *const pk_names[] = { "raw", "qemu-deflate", "qemu-zstd", "squashfs-gzip",
					"squashfs-zstd", "squashfs-xz", "squashfs-lz4" };

/* The largest LZMA2 dictionary byte a view takes: 2^20 bytes (squashfs's largest block). */
#define PK_XZ_DICT_MAX 16u
#define PK_LZ4_HC 12u

/*
 * A method's level and parameter: zlib 1..9 and 15 - its window bits
 * (8..15) | its strategy (zlib's Z_DEFAULT_STRATEGY 0 .. Z_FIXED 4) << 4;
 * zstd 1..22; xz a BCJ filter (0 none, else its .xz filter ID, 4..9) and
 * its dictionary byte; lz4 0 or 12 (high compression); the others none.
 */
static int pk_level_ok(unsigned method, unsigned level, unsigned param)
{
	if (method == PACK_SQFS_XZ)
		return (level == 0 || (level >= 4 && level <= 9)) && param <= PK_XZ_DICT_MAX;
	if (method == PACK_SQFS_GZIP)
		return level >= 1 && level <= 9 && (param & 15) <= 7 && param >> 4 <= Z_FIXED;
	if (param)
		return 0;
	if (method == PACK_SQFS_ZSTD)
		return level >= 1 && level <= 22;
	if (method == PACK_SQFS_LZ4)
		return level == 0 || level == PK_LZ4_HC;
	return level == 0;
}

/* Whether this build has @method's codec (xz and lz4 are options). */
static int pk_built(unsigned method)
{
	if (method == PACK_SQFS_XZ)
		return IS_ENABLED(CONFIG_CODEC_XZ);
	if (method == PACK_SQFS_LZ4)
		return IS_ENABLED(CONFIG_CODEC_LZ4);
	return method <= PACK_SQFS_ZSTD;
}

/* Read a .xz variable-length integer at @p (@end bounds it); 0: malformed. */
static size_t pk_xz_vli(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (size_t i = 0; i < 9 && p + i < end; i++) {
		*v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80))
			return i + 1;
	}
	return 0;
}

/*
 * The filter and the LZMA2 dictionary byte of the .xz stream of @n bytes
 * at @in, as mksquashfs writes it: one block of [BCJ,] LZMA2, CRC32.  Only
 * parameters: whether they give the stream is what compressing tells.
 */
static int pk_xz_params(const uint8_t *in, size_t n, unsigned *filter, unsigned *dict)
{
	static const uint8_t magic[6] = { 0xfd, '7', 'z', 'X', 'Z', 0 };
	const uint8_t *p, *end;
	uint64_t id, psize, skip;
	unsigned nf;
	size_t k;

	if (n < 14 || memcmp(in, magic, 6) || in[6] || in[7] != 0x01 || !in[12])
		return -1;
	end = in + 12 + ((size_t)in[12] + 1) * 4;
	if (end > in + n || (in[13] & 0x3c))
		return -1;
	nf = (in[13] & 3u) + 1;
	p = in + 14;
	for (unsigned f = 0; f < 2; f++)        /* compressed, uncompressed size */
		if (in[13] & (0x40u << f)) {
			if (!(k = pk_xz_vli(p, end, &skip)))
				return -1;
			p += k;
		}
	*filter = 0;
	for (unsigned f = 0; f < nf; f++) {
		if (!(k = pk_xz_vli(p, end, &id)))
			return -1;
		p += k;
		if (!(k = pk_xz_vli(p, end, &psize)))
			return -1;
		p += k;
		if (psize > (uint64_t)(end - p))
			return -1;
		if (f + 1 < nf) {       /* a BCJ filter, without a start offset */
			if (nf != 2 || id < 4 || id > 9 || psize)
				return -1;
			*filter = (unsigned)id;
		} else {
			if (id != 0x21 || psize != 1 || p[0] > PK_XZ_DICT_MAX)
				return -1;
			*dict = p[0];
		}
		p += psize;
	}
	return 0;
}

static uint64_t pk_align(uint64_t v)
{
	return (v + PK_ALIGN - 1) & ~(uint64_t)(PK_ALIGN - 1);
}

static void pk_ctx_free(struct pk_ctx *c)
{
	if (c->def_ok)
		deflateEnd(&c->def);
	if (c->inf_ok)
		inflateEnd(&c->inf);
	ZSTD_freeCCtx(c->zc);
	ZSTD_freeDCtx(c->zd);
	memset(c, 0, sizeof(*c));
}

/* (Re)initialise the deflate stream for @key (method | level << 8 | param << 16). */
static int pk_deflate_init(struct pk_ctx *c, unsigned key, int level, int wbits, int mem,
			   int strategy, struct err *e)
{
	if (c->def_ok == (int)key)
		return deflateReset(&c->def) == Z_OK ? 0 :
		       err_set(e, EI_ECODEC, "zlib: deflateReset failed");
	if (c->def_ok)
		deflateEnd(&c->def);
	c->def_ok = 0;
	memset(&c->def, 0, sizeof(c->def));
	if (deflateInit2(&c->def, level, Z_DEFLATED, wbits, mem, strategy) != Z_OK)
		return err_set(e, -ENOMEM, "zlib: deflateInit2 failed");
	c->def_ok = (int)key;
	return 0;
}

static int pk_inflate_init(struct pk_ctx *c, int wbits, struct err *e)
{
	if (c->inf_ok == wbits)
		return inflateReset(&c->inf) == Z_OK ? 0 :
		       err_set(e, EI_ECODEC, "zlib: inflateReset failed");
	if (c->inf_ok)
		inflateEnd(&c->inf);
	c->inf_ok = 0;
	memset(&c->inf, 0, sizeof(c->inf));
	if (inflateInit2(&c->inf, wbits) != Z_OK)
		return err_set(e, -ENOMEM, "zlib: inflateInit2 failed");
	c->inf_ok = wbits;
	return 0;
}

/*
 * Compress @n bytes as @method does at @level: QEMU's qcow2 zlib clusters
 * (raw deflate, default level, 4 KiB window, memLevel 9) or zstd clusters
 * (one frame, default parameters); mksquashfs's gzip blocks (zlib
 * stream, window 2^15, memLevel 8) or zstd blocks (ZSTD_compressCCtx()).
 * *@olen: bytes made, at most @cap.
 */
static int pk_compress(struct pk_ctx *c, unsigned method, unsigned level, unsigned param,
		       const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *olen,
		       struct err *e)
{
	size_t z;
	int r;

#if IS_ENABLED(CONFIG_CODEC_XZ)
	if (method == PACK_SQFS_XZ) {
		lzma_options_lzma lz;
		lzma_filter f[3];
		unsigned k = 0;
		lzma_ret xr;

		if (lzma_lzma_preset(&lz, LZMA_PRESET_DEFAULT))
			return err_set(e, EI_ECODEC, "xz: preset 6 refused");
		lz.dict_size = (2u | (param & 1u)) << (param / 2 + 11);
		if (level)
			f[k++] = (lzma_filter){ .id = level, .options = NULL };
		f[k++] = (lzma_filter){ .id = LZMA_FILTER_LZMA2, .options = &lz };
		f[k] = (lzma_filter){ .id = LZMA_VLI_UNKNOWN, .options = NULL };
		*olen = 0;
		xr = lzma_stream_buffer_encode(f, LZMA_CHECK_CRC32, NULL, in, n, out, olen, cap);
		if (xr == LZMA_MEM_ERROR)
			return err_set(e, -ENOMEM, "xz: out of memory");
		return xr == LZMA_OK ? 0 : err_set(e, -ENOSPC, "xz: the stream does not fit (%d)",
						   (int)xr);
	}
#endif
#if IS_ENABLED(CONFIG_CODEC_LZ4)
	if (method == PACK_SQFS_LZ4) {
		int m = n > LZ4_MAX_INPUT_SIZE || cap > INT32_MAX ? 0 :
			level ? LZ4_compress_HC((const char *)in, (char *)out, (int)n, (int)cap,
						(int)level) :
			LZ4_compress_default((const char *)in, (char *)out, (int)n, (int)cap);

		if (m <= 0)
			return err_set(e, -ENOSPC, "lz4: the block does not fit");
		*olen = (size_t)m;
		return 0;
	}
#endif
	(void)param;

	if (method == PACK_QEMU_DEFLATE || method == PACK_SQFS_GZIP) {
		if (method == PACK_QEMU_DEFLATE)
			r = pk_deflate_init(c, method, Z_DEFAULT_COMPRESSION, -12, 9, 0, e);
		else
			r = pk_deflate_init(c, method | level << 8 | param << 16, (int)level,
					    15 - (int)(param & 15), 8, (int)(param >> 4), e);
		if (r < 0)
			return r;
		c->def.next_in = (uint8_t *)in;
		c->def.avail_in = (uInt)n;
		c->def.next_out = out;
		c->def.avail_out = (uInt)cap;
		if (deflate(&c->def, Z_FINISH) != Z_STREAM_END)
			return err_set(e, -ENOSPC, "zlib: the stream does not fit");
		*olen = cap - c->def.avail_out;
		return 0;
	}
	if (method == PACK_QEMU_ZSTD || method == PACK_SQFS_ZSTD) {
		if (!c->zc && !(c->zc = ZSTD_createCCtx()))
			return err_set(e, -ENOMEM, "zstd: out of memory");
		if (method == PACK_QEMU_ZSTD) {
			ZSTD_CCtx_reset(c->zc, ZSTD_reset_session_and_parameters);
			z = ZSTD_compress2(c->zc, out, cap, in, n);
		} else {
			z = ZSTD_compressCCtx(c->zc, out, cap, in, n, (int)level);
		}
		if (ZSTD_isError(z))
			return err_set(e, -ENOSPC, "zstd: %s", ZSTD_getErrorName(z));
		*olen = z;
		return 0;
	}
	return err_set(e, EI_ECORRUPT, "packed view: compression method %u is unknown", method);
}

/*
 * Decompress the stream at the start of @in (@n bytes, unrelated bytes
 * may follow) into exactly @ulen bytes; *@used: the stream's length.
 */
static int pk_decompress(struct pk_ctx *c, unsigned method, const uint8_t *in, size_t n,
			 uint8_t *out, size_t ulen, size_t *used, struct err *e)
{
	size_t z;
	int r;

	if (method == PACK_SQFS_XZ || method == PACK_SQFS_LZ4) {
		/* the codecs' own: a squashfs block is all of @in (its size word's) */
		const struct codec *k = codec_find(method == PACK_SQFS_XZ ? "xz" : "lz4");
		void *kctx = NULL;

		z = ulen;
		r = k ? k->decompress(&kctx, in, n, out, &z, e) :
			err_set(e, EI_EUNSUP, "packed view: %s is not built in", pk_names[method]);
		if (k)
			codec_ctx_free(k, kctx);
		if (r >= 0 && z != ulen)
			r = err_set(e, EI_ECODEC, "%s: not one block of %zu bytes", k->name, ulen);
		*used = n;
		return r;
	}

	if (method == PACK_QEMU_DEFLATE || method == PACK_SQFS_GZIP) {
		r = pk_inflate_init(c, method == PACK_QEMU_DEFLATE ? -15 : 15, e);
		if (r < 0)
			return r;
		c->inf.next_in = (uint8_t *)in;
		c->inf.avail_in = (uInt)n;
		c->inf.next_out = out;
		c->inf.avail_out = (uInt)ulen;
		if (inflate(&c->inf, Z_FINISH) != Z_STREAM_END || c->inf.avail_out)
			return err_set(e, EI_ECODEC, "deflate: not one stream of %zu bytes (%s)",
				       ulen, c->inf.msg ? c->inf.msg : "short");
		*used = n - c->inf.avail_in;
		return 0;
	}
	if (method == PACK_QEMU_ZSTD || method == PACK_SQFS_ZSTD) {
		if (!c->zd && !(c->zd = ZSTD_createDCtx()))
			return err_set(e, -ENOMEM, "zstd: out of memory");
		z = ZSTD_findFrameCompressedSize(in, n);
		if (ZSTD_isError(z))
			return err_set(e, EI_ECODEC, "zstd: %s", ZSTD_getErrorName(z));
		*used = z;
		z = ZSTD_decompressDCtx(c->zd, out, ulen, in, z);
		if (ZSTD_isError(z) || z != ulen)
			return err_set(e, EI_ECODEC, "zstd: not one frame of %zu bytes (%s)", ulen,
				       ZSTD_isError(z) ? ZSTD_getErrorName(z) : "short");
		return 0;
	}
	return err_set(e, EI_ECORRUPT, "packed view: compression method %u is unknown", method);
}

/* The largest stream a block of @ulen bytes may have (a view's bound). */
static uint64_t pk_clen_max(uint32_t ulen)
{
	return (uint64_t)ulen + ulen / 8 + 4096;
}

/* What a view's blocks need compressed: the methods, the largest parameters. */
struct pk_need {
	unsigned methods;       /* bit per PACK_* method */
	unsigned zstd_level;    /* PACK_SQFS_ZSTD's highest level */
	unsigned xz_dict;       /* PACK_SQFS_XZ's largest dictionary byte */
	uint32_t umax;          /* the largest block */
};

static void pk_need_add(struct pk_need *n, unsigned method, unsigned level, unsigned param,
			uint32_t ulen)
{
	n->methods |= 1u << method;
	if (method == PACK_SQFS_ZSTD && level > n->zstd_level)
		n->zstd_level = level;
	if (method == PACK_SQFS_XZ && param > n->xz_dict)
		n->xz_dict = param;
	if (ulen > n->umax)
		n->umax = ulen;
}

/*
 * A worker's compressor state for @n's blocks, as the libraries estimate
 * it (zlib's: its window and hash at memLevel 9, and a margin): what the
 * thread count must fit in the memory cap besides the units.
 */
static uint64_t pk_ctx_bytes(const struct pk_need *n)
{
	uint64_t m = 64u << 10;

	if (n->methods & (1u << PACK_QEMU_DEFLATE | 1u << PACK_SQFS_GZIP))
		m += 512u << 10;
	if (n->methods & 1u << PACK_QEMU_ZSTD)
		m += ZSTD_estimateCCtxSize_usingCParams(ZSTD_getCParams(ZSTD_CLEVEL_DEFAULT,
									n->umax, 0));
	if (n->methods & 1u << PACK_SQFS_ZSTD)
		m += ZSTD_estimateCCtxSize_usingCParams(ZSTD_getCParams((int)n->zstd_level,
									n->umax, 0));
#if IS_ENABLED(CONFIG_CODEC_XZ)
	if (n->methods & 1u << PACK_SQFS_XZ) {
		lzma_options_lzma lz;
		lzma_filter f[2] = { { LZMA_FILTER_LZMA2, &lz }, { LZMA_VLI_UNKNOWN, NULL } };
		uint64_t x;

		lzma_lzma_preset(&lz, LZMA_PRESET_DEFAULT);
		lz.dict_size = (2u | (n->xz_dict & 1u)) << (n->xz_dict / 2 + 11);
		x = lzma_raw_encoder_memusage(f);
		m += (x == UINT64_MAX ? 64u << 20 : x) + (256u << 10);
	}
#endif
#if IS_ENABLED(CONFIG_CODEC_LZ4)
	if (n->methods & 1u << PACK_SQFS_LZ4)
		m += (uint64_t)LZ4_sizeofStateHC();
#endif
	return m;
}

/* Threads (from @threads) whose state and @per bytes of units each fit @cap. */
static unsigned pk_threads(unsigned threads, uint64_t ctx, uint64_t per, uint64_t cap)
{
	threads = threads ? threads : 1;
	while (threads > 1 && threads * (ctx + per) > cap)
		threads--;
	return threads;
}

/* --- building the view -------------------------------------------------- */

struct pk_cand {
	uint64_t off, span;
	uint32_t ulen;
	uint8_t method, level, param;
	uint8_t tries;          /* gzip: the strategies a block may have (bit i: i) */
};

struct pk_build {
	struct pk_cand *c;
	size_t n, cap;
};

/* Whether pack_blocks() names a block this view knows (@method as it gives it). */
static int pk_known(uint64_t span, uint32_t ulen, unsigned method)
{
	unsigned m = method & 0xff;

	return ulen && ulen <= PK_MAX_ULEN && span && m >= PACK_QEMU_DEFLATE &&
	       m <= PACK_SQFS_LZ4 && pk_built(m) &&
	       pk_level_ok(m, method >> 8 & 0xff, method >> 16 & 0xff);
}

static int pk_add(void *arg, uint64_t off, uint64_t span, uint32_t ulen, unsigned method,
		  struct err *e)
{
	struct pk_build *b = arg;
	unsigned level = method >> 8 & 0xff, param = method >> 16 & 0xff, tries = method >> 24;

	if (b->n >= PK_MAX_RECS / 2)
		return err_set(e, EI_ELIMIT,
			       "packed view: more than %u compressed blocks", PK_MAX_RECS / 2);
	if (!pk_known(span, ulen, method))
		return 0;       /* not a block this view knows: its bytes stay as they are */
	method &= 0xff;
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 1024;
		struct pk_cand *c = realloc(b->c, cap * sizeof(*c));

		if (!c)
			return err_set(e, -ENOMEM, "packed view: out of memory");
		b->c = c;
		b->cap = cap;
	}
	b->c[b->n].off = off;
	b->c[b->n].span = span;
	b->c[b->n].ulen = ulen;
	b->c[b->n].method = (uint8_t)method;
	b->c[b->n].level = (uint8_t)level;
	tries = method == PACK_SQFS_GZIP ? tries & 0x1f : 0;
	if (tries && !(tries & (tries - 1)))
		param |= (unsigned)__builtin_ctz(tries) << 4;  /* one strategy: OLD's too */
	b->c[b->n].param = (uint8_t)param;
	b->c[b->n].tries = (uint8_t)tries;
	b->n++;
	return 0;
}

static int pk_cand_cmp(const void *a, const void *b)
{
	const struct pk_cand *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

static int pk_push(struct pkview *v, size_t *cap, uint64_t coff, uint64_t clen,
		   uint32_t ulen, unsigned method, unsigned level, unsigned param, struct err *e)
{
	if (v->n == *cap) {
		size_t nc = *cap ? 2 * *cap : 1024;
		struct pk_rec *r = realloc(v->r, nc * sizeof(*r));

		if (!r)
			return err_set(e, -ENOMEM, "packed view: out of memory");
		v->r = r;
		*cap = nc;
	}
	v->r[v->n].coff = coff;
	v->r[v->n].clen = clen;
	v->r[v->n].ulen = ulen;
	v->r[v->n].method = (uint8_t)method;
	v->r[v->n].level = (uint8_t)level;
	v->r[v->n].param = (uint8_t)param;
	v->n++;
	return 0;
}

/* A worker's compressor (pack_write) or its buffer too (pk_records). */
struct pk_tctx {
	struct pk_ctx c;
	uint8_t *ubuf;
};

static void pk_tctx_free(void *arg, void *ctx)
{
	struct pk_tctx *t = ctx;

	(void)arg;
	if (!t)
		return;
	pk_ctx_free(&t->c);
	free(t->ubuf);
	free(t);
}

static int pk_tctx_get(void **ctx, size_t ubuf, struct pk_tctx **out, struct err *e)
{
	struct pk_tctx *t = *ctx;

	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t || (ubuf && !(t->ubuf = malloc(ubuf)))) {
			free(t);
			return err_set(e, -ENOMEM, "repack: out of memory");
		}
		*ctx = t;
	}
	*out = t;
	return 0;
}

/* The exact view being built: what its pipeline's emit() needs. */
struct pk_exact {
	struct pkview *v;
	const struct pk_build *b;
	struct pack_stats *st;
	size_t cap;
	uint64_t pos;
};

enum { PKX_NODECODE, PKX_STORED, PKX_SAME };

/*
 * Worker: candidate u->off, its bytes in u->in: decompressed, compressed
 * again into u->out; u->flags says whether that gave them (u->out_len
 * then the stream's length), with the level and parameter used (bits
 * 8..15 and 16..23: xz's are the stream's own).
 */
static int pkx_work(void *arg, void **ctx, struct pl_unit *u, struct err *e)
{
	const struct pk_exact *x = arg;
	const struct pk_cand *c = &x->b->c[u->off];
	unsigned level = c->level, param = c->param;
	size_t used = 0, olen = 0;
	struct err ignored = { 0 };
	struct pk_tctx *t = NULL;
	int r = pk_tctx_get(ctx, PK_MAX_ULEN, &t, e);

	if (r < 0)
		return r;
	u->flags = PKX_NODECODE;
	u->out_len = 0;
	if (pk_decompress(&t->c, c->method, u->in, u->in_len, t->ubuf, c->ulen, &used,
			  &ignored) < 0)
		return 0;
	u->flags = PKX_STORED;
	if (c->method == PACK_SQFS_XZ && pk_xz_params(u->in, used, &level, &param) < 0)
		return 0;
	/* gzip: each strategy mksquashfs may have kept, in its order */
	for (unsigned s = 0, tries = c->tries ? c->tries : 1;; s++) {
		if (s > Z_FIXED)
			return 0;
		if (!(tries >> s & 1))
			continue;
		if (c->tries)
			param = (c->param & 15u) | s << 4;
		if (pk_compress(&t->c, c->method, level, param, t->ubuf, c->ulen, u->out,
				(size_t)pk_clen_max(c->ulen), &olen, &ignored) >= 0 &&
		    olen == used && !memcmp(u->out, u->in, used))
			break;
	}
	u->flags = PKX_SAME | level << 8 | param << 16;
	u->out_len = used;
	return 0;
}

/* In order: the blocks that reproduce become records, the bytes between RAW ones. */
static int pkx_emit(void *arg, struct pl_unit *u, struct err *e)
{
	struct pk_exact *x = arg;
	const struct pk_cand *c = &x->b->c[u->off];
	int r = 0;

	if (c->off < x->pos)
		return 0;       /* a block named twice, or overlapping */
	x->st->blocks++;
	if (u->flags == PKX_STORED)
		x->st->stored++;
	if ((u->flags & 0xff) != PKX_SAME)
		return 0;
	if (c->off > x->pos)
		r = pk_push(x->v, &x->cap, x->pos, c->off - x->pos, 0, PACK_RAW, 0, 0, e);
	if (r >= 0)
		r = pk_push(x->v, &x->cap, c->off, u->out_len, c->ulen, c->method,
			    u->flags >> 8 & 0xff, u->flags >> 16 & 0xff, e);
	x->pos = c->off + u->out_len;
	x->st->rebuilt++;
	x->st->methods |= 1u << c->method;
	return r;
}

static const struct pl_ops pkx_ops = {
	.work = pkx_work,
	.emit = pkx_emit,
	.ctx_free = pk_tctx_free,
};

/* NEW's records: every candidate tried by @threads workers, kept in order. */
static int pk_exact_records(struct pkview *v, const struct pk_build *b, unsigned threads,
			    struct pack_stats *st, size_t *cap, uint64_t *pos, struct err *e)
{
	struct pk_exact x = { v, b, st, 0, 0 };
	struct pk_need need = { 0, 0, PK_XZ_DICT_MAX, 1 };
	struct pipeline *p = NULL;
	uint64_t fsize = v->io->size, ctx;
	size_t unit;
	int r;

	/* xz's dictionaries are in the streams: counted at their largest */
	for (size_t i = 0; i < b->n; i++)
		pk_need_add(&need, b->c[i].method, b->c[i].level, b->c[i].param, b->c[i].ulen);
	unit = (size_t)pk_clen_max(need.umax);
	/* a worker: its compressor, its buffer for the decoded block, two units */
	ctx = pk_ctx_bytes(&need) + PK_MAX_ULEN;
	threads = pk_threads(threads, ctx, 4ull * unit, EI_MEM_CAP);
	r = pipeline_new(&pkx_ops, &x, threads, unit, unit,
			 EI_MEM_CAP > threads * ctx + 2 * unit ? EI_MEM_CAP - threads * ctx : 2 * unit,
			 &p, e);
	for (size_t i = 0; r >= 0 && i < b->n; i++) {
		const struct pk_cand *c = &b->c[i];
		struct pl_unit *u;

		if (c->off >= fsize)
			continue;
		u = pipeline_get(p, e);
		if (!u) {
			r = e->code ? e->code : -EIO;
			break;
		}
		u->in_len = (size_t)min_u64(min_u64(c->span, fsize - c->off), pk_clen_max(c->ulen));
		u->off = i;
		r = io_read(v->io, u->in, u->in_len, c->off, "packed view: a compressed block", e);
		if (r >= 0)
			r = pipeline_submit(p, u, e);
	}
	if (r >= 0)
		r = pipeline_finish(p, e);
	pipeline_free(p);
	*cap = x.cap;
	*pos = x.pos;
	return r;
}

static int pk_records(struct pkview *v, struct pk_build *b, int exact, unsigned threads,
		      struct pack_stats *st, struct err *e)
{
	uint64_t fsize = v->io->size, pos = 0, voff;
	size_t cap = 0;
	int r = 0;

	if (b->n)
		qsort(b->c, b->n, sizeof(*b->c), pk_cand_cmp);
	if (exact)
		r = pk_exact_records(v, b, threads, st, &cap, &pos, e);
	for (size_t i = 0; !exact && i < b->n && r >= 0; i++) {
		const struct pk_cand *c = &b->c[i];
		uint64_t clen, end;

		if (c->off < pos || c->off >= fsize)
			continue;       /* a block named twice, or overlapping */
		st->blocks++;
		end = min_u64(c->off + min_u64(c->span, pk_clen_max(c->ulen)), fsize);
		for (size_t k = i + 1; k < b->n; k++)
			if (b->c[k].off > c->off) {
				end = min_u64(end, b->c[k].off);
				break;
			}
		clen = end - c->off;
		if (c->off > pos)
			r = pk_push(v, &cap, pos, c->off - pos, 0, PACK_RAW, 0, 0, e);
		if (r >= 0)
			r = pk_push(v, &cap, c->off, clen, c->ulen, c->method, c->level, c->param, e);
		pos = c->off + clen;
		st->rebuilt++;
		st->methods |= 1u << c->method;
	}
	if (r >= 0 && pos < fsize)
		r = pk_push(v, &cap, pos, fsize - pos, 0, PACK_RAW, 0, 0, e);
	if (r < 0)
		return r;
	v->data_off = pk_align(PK_HDR + (uint64_t)PK_ENT * v->n);
	voff = v->data_off;
	for (size_t i = 0; i < v->n; i++) {
		v->r[i].voff = voff;
		voff = pk_align(voff + (v->r[i].method ? v->r[i].ulen : v->r[i].clen));
	}
	v->size = voff;
	memcpy(v->hdr, PK_MAGIC, 8);
	put_le32(v->hdr + 8, 1);
	put_le32(v->hdr + 12, PK_HDR);
	put_le64(v->hdr + 16, fsize);
	put_le64(v->hdr + 24, v->n);
	put_le64(v->hdr + 32, v->size);
	return 0;
}

/* --- reading the view --------------------------------------------------- */

static void pk_entry(const struct pk_rec *r, uint8_t out[PK_ENT])
{
	memset(out, 0, PK_ENT);
	put_le64(out, r->clen);
	put_le32(out + 8, r->ulen);
	out[12] = r->method;
	out[13] = r->level;
	out[14] = r->param;
}

/* The record whose payload (and the padding after it) holds view byte @off. */
static size_t pk_find(const struct pkview *v, uint64_t off)
{
	size_t lo = 0, hi = v->n;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (v->r[mid].voff <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static int pk_load(struct pkview *v, size_t i, struct err *e)
{
	const struct pk_rec *r = &v->r[i];
	size_t used;
	int rc;

	if (v->cached == i)
		return 0;
	v->cached = SIZE_MAX;
	rc = io_read(v->io, v->cbuf, (size_t)r->clen, r->coff, "packed view: a compressed block", e);
	if (rc >= 0)
		rc = pk_decompress(&v->ctx, r->method, v->cbuf, (size_t)r->clen, v->ubuf, r->ulen,
				   &used, e);
	if (rc < 0) {
		err_prefix(e, "%s: the %s block at byte %llu (%llu bytes)", v->io->name,
			   pk_names[r->method], (unsigned long long)r->coff,
			   (unsigned long long)r->clen);
		return rc;
	}
	v->cached = i;
	return 0;
}

static int pk_decode(struct vdisk *vd, void *buf, size_t len, uint64_t off, struct err *e)
{
	struct pkview *v = vd->priv;
	uint8_t *d = buf;

	while (len) {
		size_t n;

		if (off < PK_HDR) {
			n = (size_t)min_u64(len, PK_HDR - off);
			memcpy(d, v->hdr + off, n);
		} else if (off < v->data_off) {
			uint64_t t = off - PK_HDR, i = t / PK_ENT;
			uint8_t ent[PK_ENT];

			if (i < v->n) {
				pk_entry(&v->r[i], ent);
				n = (size_t)min_u64(len, PK_ENT - t % PK_ENT);
				memcpy(d, ent + t % PK_ENT, n);
			} else {
				n = (size_t)min_u64(len, v->data_off - off);
				memset(d, 0, n);
			}
		} else {
			size_t i = pk_find(v, off);
			const struct pk_rec *r = &v->r[i];
			uint64_t plen = r->method ? r->ulen : r->clen, k = off - r->voff;
			int rc;

			if (k >= plen) {
				n = (size_t)min_u64(len, pk_align(r->voff + plen) - off);
				memset(d, 0, n);
			} else {
				n = (size_t)min_u64(len, plen - k);
				if (r->method == PACK_RAW) {
					rc = io_read(v->io, d, n, r->coff + k, "packed view", e);
				} else {
					rc = pk_load(v, i, e);
					if (rc >= 0)
						memcpy(d, v->ubuf + k, n);
				}
				if (rc < 0)
					return rc;
			}
		}
		d += n;
		off += n;
		len -= n;
	}
	return 0;
}

static void pk_free(struct pkview *v)
{
	if (!v)
		return;
	pk_ctx_free(&v->ctx);
	vdisk_close(v->in);
	free(v->r);
	free(v->cbuf);
	free(v->ubuf);
	free(v);
}

static void pk_close(struct vdisk *vd)
{
	pk_free(vd->priv);
	vd->priv = NULL;
}

static const struct img_format pk_fmt = {
	.name = "packed-view",
	.desc = "a container with its compressed blocks decompressed (delta and apply)",
	.map = map_decode_all,
	.decode = pk_decode,
	.close = pk_close,
};

/*
 * The blocks of the first format whose tables the file at @path has
 * (*@fmt its name; NULL and 0: none), each to @add, as pack_blocks() does
 * (a format that answers EI_EFORMAT has named nothing).
 */
static int pk_blocks(const char *path, const struct open_opts *oo,
		     int (*add)(void *arg, uint64_t off, uint64_t span, uint32_t ulen,
				unsigned method, struct err *e),
		     void *arg, const char **fmt, struct err *e)
{
	for (size_t i = 0; img_formats[i]; i++) {
		const struct img_format *f = img_formats[i];
		int r;

		if (!f->pack_blocks || (oo->format && strcmp(oo->format, f->name)))
			continue;
		r = f->pack_blocks(path, oo, add, arg, e);
		if (r == EI_EFORMAT)
			continue;
		if (r >= 0)
			*fmt = f->name;
		return r;
	}
	return 0;
}

int pack_open(const char *path, const struct open_opts *oo, int exact, unsigned threads,
	      struct vdisk **out, struct pack_stats *st, struct err *e)
{
	struct open_opts o = *oo;
	struct pack_stats dummy;
	struct pk_build b = { 0 };
	const char *fmt = NULL; /* the format whose tables name the blocks */
	struct pkview *v = calloc(1, sizeof(*v));
	struct vdisk *vd = calloc(1, sizeof(*vd));
	int r;

	*out = NULL;
	if (!st)
		st = &dummy;
	memset(st, 0, sizeof(*st));
	if (!v || !vd) {
		free(v);
		free(vd);
		return err_set(e, -ENOMEM, "packed view: out of memory");
	}
	v->cached = SIZE_MAX;
	o.partition = NULL;     /* the container is the whole file */
	o.format = "raw";
	r = vdisk_open(path, &o, &v->in, e);
	if (r >= 0) {
		v->io = v->in->io;
		v->cbuf = malloc((size_t)pk_clen_max(PK_MAX_ULEN));
		v->ubuf = malloc(PK_MAX_ULEN);
		if (!v->cbuf || !v->ubuf)
			r = err_set(e, -ENOMEM, "packed view: out of memory");
	}
	if (r >= 0)
		r = pk_blocks(path, oo, pk_add, &b, &fmt, e);
	if (r >= 0 && !fmt && !exact)
		fmt = "raw";            /* OLD: a source of matches all the same */
	if (r >= 0 && !fmt)
		r = err_set(e, EI_EUNSUP,
			    "%s is no container an exact rebuild knows: %s (qcow2 with compressed clusters, squashfs)",
			    path, oo->format ? oo->format : "no such format found in it");
	if (r >= 0)
		r = pk_records(v, &b, exact, threads, st, e);
	free(b.c);
	if (r >= 0)
		vd->io = io_null(v->io->name, v->size);
	if (r >= 0 && !vd->io)
		r = err_set(e, -ENOMEM, "packed view: out of memory");
	if (r < 0) {
		pk_free(v);
		free(vd);
		return r;
	}
	st->container_size = v->io->size;
	vd->fmt = &pk_fmt;
	vd->size = v->size;
	vd->priv = v;
	vd->opts = o;
	vd->dirfd = -1;
	*out = vd;
	return 0;
}

/* pack_has_blocks(): the first block the view knows ends the walk. */
static int pk_found(void *arg, uint64_t off, uint64_t span, uint32_t ulen, unsigned method,
		    struct err *e)
{
	(void)off;
	(void)e;
	if (!pk_known(span, ulen, method))
		return 0;
	*(int *)arg = 1;
	return -ECANCELED;
}

int pack_has_blocks(const char *path, const struct open_opts *oo, struct err *e)
{
	struct open_opts o = *oo;
	const char *fmt = NULL;
	int found = 0, r;

	o.partition = NULL;
	r = pk_blocks(path, &o, pk_found, &found, &fmt, e);
	if (found) {
		memset(e, 0, sizeof(*e));
		return 1;
	}
	return r < 0 ? r : 0;
}

struct io *pack_container(struct vdisk *vd)
{
	return vd->fmt == &pk_fmt ? ((struct pkview *)vd->priv)->io : NULL;
}

/* --- the recipe and the writer ------------------------------------------ */

/* The recipe's library keys, in order, and the methods whose bytes each makes. */
static const struct {
	const char *key;
	unsigned methods;
} pk_libs[] = {
	{ "zlib", 1u << PACK_QEMU_DEFLATE | 1u << PACK_SQFS_GZIP },
	{ "zstd", 1u << PACK_QEMU_ZSTD | 1u << PACK_SQFS_ZSTD },
	{ "xz", 1u << PACK_SQFS_XZ },
	{ "lz4", 1u << PACK_SQFS_LZ4 },
};

/* This build's version of pk_libs[@i]'s library ("none": not built in). */
static const char *pk_lib_version(size_t i)
{
	switch (i) {
	case 0:
		return zlibVersion();
	case 1:
		return ZSTD_versionString();
#if IS_ENABLED(CONFIG_CODEC_XZ)
	case 2:
		return lzma_version_string();
#endif
#if IS_ENABLED(CONFIG_CODEC_LZ4)
	case 3:
		return LZ4_versionString();
#endif
	}
	return "none";
}

size_t pack_recipe(const struct pack_stats *st, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "format=repack,writer=%s", EDGEIMG_VERSION);

	for (size_t i = 0; i < sizeof(pk_libs) / sizeof(pk_libs[0]); i++)
		if (st->methods & pk_libs[i].methods)
			n += (size_t)snprintf(buf + min_u64(n, len), len - min_u64(n, len),
					      ",%s=%s", pk_libs[i].key, pk_lib_version(i));
	return n;
}

int pack_recipe_check(const char *opts, struct err *e)
{
	const char *p = opts ? opts : "";

	while (*p) {
		const char *comma = strchr(p, ','), *eq = strchr(p, '='), *have = NULL;
		size_t n = comma ? (size_t)(comma - p) : strlen(p), k;

		if (!eq || eq > p + n)
			return err_set(e, EI_ECORRUPT, "repack: '%.*s' is not key=value", (int)n, p);
		k = (size_t)(eq - p);
		for (size_t i = 0; i < sizeof(pk_libs) / sizeof(pk_libs[0]); i++)
			if (strlen(pk_libs[i].key) == k && !strncmp(p, pk_libs[i].key, k))
				have = pk_lib_version(i);
		if (!have)
			return err_set(e, EI_EUNSUP, "repack: unknown option '%.*s'", (int)k, p);
		if (strlen(have) != n - k - 1 || strncmp(eq + 1, have, n - k - 1))
			return err_set(e, EI_EUNSUP,
				       "repack: the container needs %.*s %.*s to be rebuilt, this build has %s",
				       (int)k, p, (int)(n - k - 1), eq + 1, have);
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

/* --- apply: the blocks OLD's file holds already ------------------------- */

struct pkr_ent {
	uint8_t sha[SHA256_LEN];        /* of the decoded block */
	uint8_t method, level, param;
	uint64_t coff, clen;            /* its stream in OLD (clen: the region) */
};

/* At most 16 MiB of index, as the other containers' reuse indexes. */
#define PKR_MAX ((16u << 20) / sizeof(struct pkr_ent))

struct pk_reuse {
	struct block_reuse r;
	struct vdisk *old;              /* OLD's packed view */
	struct pkr_ent *e;
	size_t n;
};

static int pkr_cmp(const void *a, const void *b)
{
	const struct pkr_ent *x = a, *y = b;
	int c = memcmp(x->sha, y->sha, SHA256_LEN);

	if (!c)
		c = x->method != y->method ? x->method - y->method :
		    x->level != y->level ? x->level - y->level : x->param - y->param;
	return c;
}

static void pkr_free(struct block_reuse *r)
{
	struct pk_reuse *x;

	if (!r)
		return;
	x = r->priv;
	vdisk_close(x->old);
	free(x->e);
	free(x);
}

int pack_reuse_open(const char *path, const struct open_opts *oo, struct block_reuse **out,
		    struct err *e)
{
	struct pk_reuse *x = calloc(1, sizeof(*x));
	struct pkview *v;
	size_t cap = 0;
	int r;

	*out = NULL;
	if (!x)
		return err_set(e, -ENOMEM, "repack: out of memory");
	x->r.priv = x;
	x->r.free = pkr_free;   /* no ->lookup: pack_write() asks by method too */
	r = pack_open(path, oo, 0, 1, &x->old, NULL, e);
	v = r < 0 ? NULL : x->old->priv;
	for (size_t i = 0; r >= 0 && i < v->n && x->n < PKR_MAX; i++) {
		unsigned level = v->r[i].level, param = v->r[i].param;
		struct pkr_ent *n;

		if (!v->r[i].method)
			continue;
		r = pk_load(v, i, e);
		if (r < 0)
			break;
		/* xz: the stream's own filter and dictionary (pk_load read it) */
		if (v->r[i].method == PACK_SQFS_XZ &&
		    pk_xz_params(v->cbuf, (size_t)v->r[i].clen, &level, &param) < 0)
			continue;
		if (x->n == cap) {
			cap = cap ? 2 * cap : 1024;
			n = realloc(x->e, cap * sizeof(*n));
			if (!n) {
				r = err_set(e, -ENOMEM, "repack: out of memory");
				break;
			}
			x->e = n;
		}
		n = &x->e[x->n++];
		sha256(v->ubuf, v->r[i].ulen, n->sha);
		n->method = v->r[i].method;
		n->level = (uint8_t)level;
		n->param = (uint8_t)param;
		n->coff = v->r[i].coff;
		n->clen = v->r[i].clen;
	}
	if (r < 0) {
		pkr_free(&x->r);
		return r;
	}
	if (x->n)
		qsort(x->e, x->n, sizeof(*x->e), pkr_cmp);
	*out = &x->r;
	return 0;
}

/*
 * A block of @len bytes at @in that OLD holds, compressed by @method at
 * @level: its first @want bytes (the stream NEW's record names) into @out.
 * The same content, method, level and library give the same stream; the
 * container's hash judges the result all the same.
 */
static int pkr_copy(const struct block_reuse *r, unsigned method, unsigned level,
		    unsigned param, const uint8_t *in, size_t len, uint8_t *out, size_t want)
{
	struct block_reuse *rw = (struct block_reuse *)r;
	const struct pk_reuse *x = r->priv;
	struct pkr_ent key = { .method = (uint8_t)method, .level = (uint8_t)level,
			       .param = (uint8_t)param };
	const struct pkr_ent *hit;
	struct err ignored = { 0 };

	__atomic_fetch_add(&rw->asked, 1, __ATOMIC_RELAXED);
	if (!x->n)
		return 0;
	sha256(in, len, key.sha);
	hit = bsearch(&key, x->e, x->n, sizeof(*x->e), pkr_cmp);
	if (!hit || hit->clen < want ||
	    io_read(((struct pkview *)x->old->priv)->io, out, want, hit->coff,
		    "repack: a block of OLD", &ignored) < 0)
		return 0;
	__atomic_fetch_add(&rw->copied, 1, __ATOMIC_RELAXED);
	return 1;
}

#define PK_BATCH 4096u

/*
 * A unit of pack_write(): RAW bytes (flags 0) in u->in, or a block's
 * decoded bytes to compress with method | level << 8 (flags) into exactly
 * the u->out_len bytes its record says.
 */
struct pkw {
	struct io *out;
	const struct block_reuse *reuse;        /* OLD's blocks, or NULL */
};

static int pkw_work(void *arg, void **ctx, struct pl_unit *u, struct err *e)
{
	const struct pkw *w = arg;
	unsigned method = u->flags & 0xff, level = u->flags >> 8 & 0xff, param = u->flags >> 16;
	size_t want = u->out_len, olen = 0;
	struct pk_tctx *t = NULL;
	int r;

	if (method == PACK_RAW)
		return 0;
	if (w->reuse && pkr_copy(w->reuse, method, level, param, u->in, u->in_len, u->out, want))
		return 0;       /* OLD's stream: u->out_len stays the record's */
	r = pk_tctx_get(ctx, 0, &t, e);
	if (r >= 0)
		r = pk_compress(&t->c, method, level, param, u->in, u->in_len, u->out,
				(size_t)pk_clen_max((uint32_t)u->in_len), &olen, e);
	if (r >= 0 && olen != want)
		r = err_set(e, EI_EMISMATCH,
			    "repack: the %s block at container byte %llu compressed to %zu bytes, the view says %zu",
			    pk_names[method], (unsigned long long)u->off, olen, want);
	u->out_len = olen;
	return r;
}

static int pkw_emit(void *arg, struct pl_unit *u, struct err *e)
{
	struct io *out = ((const struct pkw *)arg)->out;

	if (!(u->flags & 0xff))
		return io_write(out, u->in, u->in_len, u->off, e);
	return io_write(out, u->out, u->out_len, u->off, e);
}

static const struct pl_ops pkw_ops = {
	.work = pkw_work,
	.emit = pkw_emit,
	.ctx_free = pk_tctx_free,
};

/* The header's fields, checked against the view @src. */
static int pkw_header(struct vdisk *src, uint64_t *csize, uint64_t *n, struct err *e)
{
	uint8_t hdr[64];
	uint64_t vsize;
	int r;

	if (src->size < PK_HDR)
		return err_set(e, EI_ECORRUPT, "packed view: %llu bytes, shorter than its header",
			       (unsigned long long)src->size);
	r = vdisk_read(src, hdr, sizeof(hdr), 0, e);
	if (r < 0)
		return r;
	*csize = get_le64(hdr + 16);
	*n = get_le64(hdr + 24);
	vsize = get_le64(hdr + 32);
	if (memcmp(hdr, PK_MAGIC, 8) || get_le32(hdr + 8) != 1 || get_le32(hdr + 12) != PK_HDR ||
	    *n > PK_MAX_RECS || vsize != src->size || *csize > (1ULL << 46))
		return err_set(e, EI_ECORRUPT,
			       "packed view: bad header (version %u, %llu records, size %llu of a view of %llu bytes)",
			       get_le32(hdr + 8), (unsigned long long)*n, (unsigned long long)vsize,
			       (unsigned long long)src->size);
	return 0;
}

/*
 * Walk the table: with @p NULL, check it and learn the largest block
 * (*@umax); with @p, hand each record's bytes to the pipeline.
 */
static int pkw_walk(struct vdisk *src, uint8_t *tab, uint64_t csize, uint64_t n,
		    struct pipeline *p, size_t piece, struct pk_need *need, struct err *e)
{
	uint64_t coff = 0, voff = pk_align(PK_HDR + PK_ENT * n), vsize = src->size;
	int r = 0;

	for (uint64_t i = 0; i < n && r >= 0; i++) {
		const uint8_t *ent = tab + (i % PK_BATCH) * PK_ENT;
		uint64_t clen;
		uint32_t ulen;
		unsigned method, level, param;
		struct pl_unit *u;

		if (i % PK_BATCH == 0) {
			size_t m = (size_t)min_u64(PK_BATCH, n - i);

			r = vdisk_read(src, tab, m * PK_ENT, PK_HDR + i * PK_ENT, e);
			if (r < 0)
				break;
		}
		clen = get_le64(ent);
		ulen = get_le32(ent + 8);
		method = ent[12];
		level = ent[13];
		param = ent[14];
		if (method <= PACK_SQFS_LZ4 && !pk_built(method))
			return err_set(e, EI_EUNSUP,
				       "packed view: record %llu is a %s block, and this build has no %s",
				       (unsigned long long)i, pk_names[method],
				       method == PACK_SQFS_XZ ? "xz" : "lz4");
		if (!clen || clen > csize - coff || voff > vsize || ent[15] ||
		    method > PACK_SQFS_LZ4 || !pk_level_ok(method, level, param) ||
		    (method == PACK_RAW) != !ulen ||
		    ulen > PK_MAX_ULEN || (method && clen > pk_clen_max(ulen)) ||
		    (method ? ulen : clen) > vsize - voff)
			return err_set(e, EI_ECORRUPT,
				       "packed view: record %llu (method %u, %llu bytes into %u, at container byte %llu) does not fit the container (%llu bytes) or the view (%llu)",
				       (unsigned long long)i, method, (unsigned long long)clen, ulen,
				       (unsigned long long)coff, (unsigned long long)csize,
				       (unsigned long long)vsize);
		if (!p) {
			pk_need_add(need, method, level, param, ulen);
		} else if (method == PACK_RAW) {
			for (uint64_t k = 0; k < clen && r >= 0; k += piece) {
				size_t m = (size_t)min_u64(clen - k, piece);

				u = pipeline_get(p, e);
				if (!u)
					return e->code ? e->code : -EIO;
				r = vdisk_read(src, u->in, m, voff + k, e);
				u->in_len = m;
				u->off = coff + k;
				u->flags = 0;
				if (r >= 0)
					r = pipeline_submit(p, u, e);
			}
		} else {
			u = pipeline_get(p, e);
			if (!u)
				return e->code ? e->code : -EIO;
			r = vdisk_read(src, u->in, ulen, voff, e);
			u->in_len = ulen;
			u->out_len = (size_t)clen;
			u->off = coff;
			u->flags = method | level << 8 | param << 16;
			if (r >= 0)
				r = pipeline_submit(p, u, e);
		}
		voff = pk_align(voff + (method ? ulen : clen));
		coff += clen;
	}
	if (r >= 0 && (coff != csize || voff != vsize))
		r = err_set(e, EI_ECORRUPT,
			    "packed view: its records make %llu of the container's %llu bytes and %llu of the view's %llu",
			    (unsigned long long)coff, (unsigned long long)csize,
			    (unsigned long long)voff, (unsigned long long)vsize);
	return r;
}

int pack_write(struct vdisk *src, struct io *out, unsigned threads, uint64_t mem_cap,
	       const struct block_reuse *reuse, struct err *e)
{
	struct pkw w = { out, reuse };
	uint8_t *tab = malloc(PK_BATCH * PK_ENT);
	struct pipeline *p = NULL;
	uint64_t csize = 0, n = 0;
	struct pk_need need = { 0 };
	uint64_t ctx;
	size_t piece;
	int r;

	if (!tab)
		return err_set(e, -ENOMEM, "repack: out of memory");
	r = pkw_header(src, &csize, &n, e);
	if (r >= 0)     /* the whole table checked first: its largest block sizes the units */
		r = pkw_walk(src, tab, csize, n, NULL, 0, &need, e);
	piece = need.umax > (256u << 10) ? need.umax : 256u << 10;
	/* each worker's compressor and a unit of its own fit the cap */
	ctx = pk_ctx_bytes(&need);
	threads = pk_threads(threads, ctx, piece + pk_clen_max((uint32_t)piece), mem_cap);
	if (r >= 0 && ctx + piece + pk_clen_max((uint32_t)piece) > mem_cap)
		r = err_set(e, EI_ELIMIT,
			    "repack: a worker needs %llu bytes for its compressor and a %zu-byte block, more than the memory cap of %llu",
			    (unsigned long long)(ctx + piece + pk_clen_max((uint32_t)piece)), piece,
			    (unsigned long long)mem_cap);
	if (r >= 0)
		r = pipeline_new(&pkw_ops, &w, threads, piece,
				 (size_t)pk_clen_max((uint32_t)piece), mem_cap - threads * ctx, &p, e);
	if (r >= 0)
		r = pkw_walk(src, tab, csize, n, p, piece, NULL, e);
	if (r >= 0)
		r = pipeline_finish(p, e);
	pipeline_free(p);
	free(tab);
	return r;
}
