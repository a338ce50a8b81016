// SPDX-License-Identifier: MIT
/*
 * The delta patch decoder (src/delta/delta-format.md): the header, then
 * chunks proven to be the patch's own and checked whole before use, NEW
 * streamed to a sink in constant memory.  Chunks come from an io (pull)
 * or from the caller (push: the apply transaction's feed).
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include "core/kconfig.h"
#if IS_ENABLED(CONFIG_CODEC_XZ)
#include <lzma.h>
#endif

#include "core/bytes.h"
#include "delta/delta.h"
#include "core/format.h"
#include "core/limits.h"

/* --- header ------------------------------------------------------------- */

static int delta_recipe_ok(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return 0;
	return 1;
}

int delta_header_parse(const uint8_t *buf, size_t len, struct delta_header *out,
		       int no_sum, struct err *e)
{
	struct delta_header h;
	uint32_t rl, need;
	uint8_t sum[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];

	if (len < DELTA_MAGIC_LEN || !delta_is_patch(buf, len))
		return err_set(e, EI_EFORMAT, "patch: no patch magic (EIDELTA)");
	if (len < DELTA_HDR_FIXED)
		return err_set(e, EI_ETRUNC, "patch: header truncated at %zu of %u bytes",
			       len, DELTA_HDR_FIXED);
	memset(&h, 0, sizeof(h));
	h.version = get_le32(buf + 8);
	if (h.version == 1)
		return err_set(e, EI_EUNSUP,
			       "patch: version 1 (edgeimg 0.1, chunks not authenticated): this edgeimg reads version %u only; make the patch again with it",
			       DELTA_VERSION);
	if (h.version != DELTA_VERSION)
		return err_set(e, EI_EUNSUP,
			       "patch: version %u, this edgeimg reads version %u",
			       h.version, DELTA_VERSION);
	h.header_size = get_le32(buf + 12);
	h.incompat = get_le64(buf + 16);
	h.compat = get_le64(buf + 24);
	h.old_size = get_le64(buf + 32);
	h.new_size = get_le64(buf + 40);
	h.patch_size = get_le64(buf + 48);
	h.chunk_count = get_le32(buf + 56);
	h.block_size = get_le32(buf + 60);
	h.max_data = get_le32(buf + 64);
	h.max_ref = get_le32(buf + 68);
	rl = get_le32(buf + 72);
	memcpy(h.old_sha, buf + 80, SHA256_LEN);
	memcpy(h.new_sha, buf + 112, SHA256_LEN);
	h.target_size = get_le64(buf + 144);
	memcpy(h.target_sha, buf + 152, SHA256_LEN);
	h.patch_version = get_le64(buf + 184);
	memcpy(h.chunk0_sha, buf + 192, SHA256_LEN);

	if (rl > DELTA_RECIPE_MAX)
		return err_set(e, EI_ECORRUPT,
			       "patch: recipe_len %u exceeds the limit of %u", rl,
			       DELTA_RECIPE_MAX);
	need = DELTA_HDR_FIXED + rl + SHA256_LEN;
	if (h.header_size != need)
		return err_set(e, EI_ECORRUPT,
			       "patch: header_size %u is not %u (256 + recipe_len %u + 32)",
			       h.header_size, need, rl);
	if (len < need)
		return err_set(e, EI_ETRUNC, "patch: header truncated at %zu of %u bytes",
			       len, need);
	sha256(buf, DELTA_HDR_FIXED + rl, sum);
	if (!no_sum && memcmp(sum, buf + DELTA_HDR_FIXED + rl, SHA256_LEN))
		return err_set(e, EI_EMISMATCH,
			       "patch: header checksum mismatch (computed %s): the header is corrupt",
			       sha_hex(sum, SHA256_LEN, hex));
	memcpy(h.id, sum, SHA256_LEN);
	if (h.incompat & ~DELTA_INCOMPAT_KNOWN)
		return err_set(e, EI_EUNSUP,
			       "patch: unknown incompatible features 0x%llx (known: 0x%llx); a newer edgeimg is needed",
			       (unsigned long long)(h.incompat & ~DELTA_INCOMPAT_KNOWN),
			       (unsigned long long)DELTA_INCOMPAT_KNOWN);
	if (h.old_size > EI_MAX_VIRTUAL_SIZE || h.new_size > EI_MAX_VIRTUAL_SIZE)
		return err_set(e, EI_ELIMIT,
			       "patch: old_size %llu or new_size %llu exceeds the limit of %llu",
			       (unsigned long long)h.old_size,
			       (unsigned long long)h.new_size,
			       (unsigned long long)EI_MAX_VIRTUAL_SIZE);
	if (h.chunk_count > DELTA_MAX_CHUNKS || h.chunk_count > h.new_size ||
	    (uint64_t)h.chunk_count * DELTA_MAX_CHUNK_NEW < h.new_size)
		return err_set(e, EI_ECORRUPT,
			       "patch: chunk_count %u does not fit new_size %llu (1 to %llu bytes a chunk, at most %u chunks)",
			       h.chunk_count, (unsigned long long)h.new_size,
			       (unsigned long long)DELTA_MAX_CHUNK_NEW, DELTA_MAX_CHUNKS);
	h.chunks_off = need + (h.incompat & DELTA_INCOMPAT_SIGNED ? DELTA_SIG_SIZE : 0);
	if (h.patch_size < h.chunks_off + (uint64_t)h.chunk_count * DELTA_CHUNK_HDR)
		return err_set(e, EI_ECORRUPT,
			       "patch: patch_size %llu is less than the header%s and %u chunk headers",
			       (unsigned long long)h.patch_size,
			       h.incompat & DELTA_INCOMPAT_SIGNED ? ", the signature" : "",
			       h.chunk_count);
	if (!is_pow2(h.block_size) || h.block_size < 512 || h.block_size > (1u << 20))
		return err_set(e, EI_ECORRUPT,
			       "patch: block_size %u is not a power of two in 512..1048576",
			       h.block_size);
	if (h.max_data > DELTA_MAX_DATA || h.max_ref > DELTA_MAX_REF)
		return err_set(e, EI_ELIMIT,
			       "patch: max_data %u or max_ref %u exceeds the limits %u and %u",
			       h.max_data, h.max_ref, DELTA_MAX_DATA, DELTA_MAX_REF);
	if ((h.incompat & DELTA_INCOMPAT_LZMA) && !IS_ENABLED(CONFIG_CODEC_XZ))
		return err_set(e, EI_EUNSUP,
			       "patch: its chunks have LZMA2 data frames (feature LZMA): this edgeimg is built without the xz codec");
	if (h.max_ref && !(h.incompat & DELTA_INCOMPAT_REF))
		return err_set(e, EI_ECORRUPT,
			       "patch: max_ref %u without the REF feature", h.max_ref);
	if (!!rl != !!(h.incompat & DELTA_INCOMPAT_RECIPE))
		return err_set(e, EI_ECORRUPT,
			       "patch: recipe_len %u disagrees with the RECIPE feature bit",
			       rl);
	if (!delta_recipe_ok((const char *)buf + DELTA_HDR_FIXED, rl))
		return err_set(e, EI_ECORRUPT,
			       "patch: the recipe holds a byte that is not printable ASCII");
	memcpy(h.recipe, buf + DELTA_HDR_FIXED, rl);
	h.recipe[rl] = 0;
	if (!rl && (h.target_size != h.new_size ||
		    memcmp(h.target_sha, h.new_sha, SHA256_LEN)))
		return err_set(e, EI_ECORRUPT,
			       "patch: a raw target must have target_size and target_sha equal to NEW's");
	*out = h;
	return (int)need;
}

int delta_sig_parse(const uint8_t *buf, struct delta_sig *s, struct err *e)
{
	if (memcmp(buf, DELTA_SIG_MAGIC, 4))
		return err_set(e, EI_ECORRUPT,
			       "patch: signature section: magic %02x%02x%02x%02x is not EISG",
			       buf[0], buf[1], buf[2], buf[3]);
	s->alg = get_le32(buf + 4);
	if (s->alg != DELTA_SIG_ED25519)
		return err_set(e, EI_EUNSUP,
			       "patch: signature section: algorithm %u is not %u (Ed25519)",
			       s->alg, DELTA_SIG_ED25519);
	if (!buf_is_zero(buf + 8 + SHA256_LEN + DELTA_SIG_LEN,
			 DELTA_SIG_SIZE - 8 - SHA256_LEN - DELTA_SIG_LEN))
		return err_set(e, EI_ECORRUPT,
			       "patch: signature section: reserved bytes %u..%u are not zero",
			       8 + SHA256_LEN + DELTA_SIG_LEN, DELTA_SIG_SIZE - 1);
	memcpy(s->key_id, buf + 8, SHA256_LEN);
	memcpy(s->sig, buf + 8 + SHA256_LEN, DELTA_SIG_LEN);
	return 0;
}

int delta_header_read(struct io *io, struct delta_header *h, uint8_t *raw,
		      struct err *e)
{
	uint8_t buf[DELTA_HDR_SIG_MAX];
	struct delta_sig sg;
	uint32_t rl;
	size_t need;
	int r;

	r = io_read(io, buf, DELTA_HDR_FIXED, 0, "patch: header", e);
	if (r < 0)
		return r;
	if (!delta_is_patch(buf, DELTA_HDR_FIXED))
		return err_set(e, EI_EFORMAT, "%s: not an edgeimg patch (no EIDELTA magic)",
			       io->name);
	rl = get_le32(buf + 72);
	need = DELTA_HDR_FIXED + (size_t)min_u64(rl, DELTA_RECIPE_MAX) + SHA256_LEN;
	r = io_read(io, buf + DELTA_HDR_FIXED, need - DELTA_HDR_FIXED,
		    DELTA_HDR_FIXED, "patch: header", e);
	if (r < 0)
		return r;
	r = delta_header_parse(buf, need, h, 0, e);
	if (r < 0)
		return r;
	if (h->incompat & DELTA_INCOMPAT_SIGNED) {
		r = io_read(io, buf + need, DELTA_SIG_SIZE, need, "patch: signature section", e);
		if (r < 0 || (r = delta_sig_parse(buf + need, &sg, e)) < 0)
			return r;
	}
	if (raw)
		memcpy(raw, buf, (size_t)h->chunks_off);
	return (int)h->chunks_off;
}

/* --- decoder ------------------------------------------------------------ */

struct delta_dec {
	struct delta_header h;
	struct vdisk *old;
	struct io *patch;
	uint64_t base;
	unsigned flags;
	struct delta_pos pos;
	uint8_t *body, *ops, *ref, *data, *buf;
	const uint8_t *zbody;   /* the body of the chunk being decoded */
	size_t body_cap, ops_cap, ref_cap, data_cap;
	ZSTD_DCtx *dctx;
#if IS_ENABLED(CONFIG_CODEC_XZ)
	lzma_stream lz;         /* LZMA2 data frames: a decoder kept */
#endif
};

int delta_dec_new(const struct delta_header *h, struct vdisk *old,
		  struct io *patch, uint64_t base, const struct delta_pos *pos,
		  unsigned flags, struct delta_dec **out, struct err *e)
{
	struct delta_dec *d;

	if (old->size != h->old_size)
		return err_set(e, EI_EMISMATCH,
			       "patch: OLD has %llu bytes, the patch was made for %llu",
			       (unsigned long long)old->size,
			       (unsigned long long)h->old_size);
	d = calloc(1, sizeof(*d));
	if (!d)
		return err_set(e, -ENOMEM, "out of memory");
	d->h = *h;
	d->old = old;
	d->patch = patch;
	d->base = base;
	d->flags = flags;
	if (pos) {
		d->pos = *pos;
	} else {
		d->pos.patch_off = h->chunks_off;
		memcpy(d->pos.next_sha, h->chunk0_sha, SHA256_LEN);
	}
#if IS_ENABLED(CONFIG_CODEC_XZ)
	d->lz = (lzma_stream)LZMA_STREAM_INIT;
#endif
	d->buf = malloc(EI_IO_CHUNK);
	d->dctx = ZSTD_createDCtx();
	if (!d->buf || !d->dctx) {
		delta_dec_free(d);
		return err_set(e, -ENOMEM, "out of memory");
	}
	*out = d;
	return 0;
}

void delta_dec_free(struct delta_dec *d)
{
	if (!d)
		return;
	free(d->body);
	free(d->ops);
	free(d->ref);
	free(d->data);
	free(d->buf);
	ZSTD_freeDCtx(d->dctx);
#if IS_ENABLED(CONFIG_CODEC_XZ)
	lzma_end(&d->lz);
#endif
	free(d);
}

void delta_dec_pos(const struct delta_dec *d, struct delta_pos *pos)
{
	*pos = d->pos;
}

static int dec_grow(uint8_t **p, size_t *cap, size_t need, struct err *e)
{
	uint8_t *n;

	if (need <= *cap)
		return 0;
	n = realloc(*p, need);
	if (!n)
		return err_set(e, -ENOMEM, "patch: out of memory for %zu bytes", need);
	*p = n;
	*cap = need;
	return 0;
}

/* Read @len patch bytes at the logical offset @off. */
static int dec_patch_read(struct delta_dec *d, void *buf, size_t len,
			  uint64_t off, const char *what, struct err *e)
{
	int r;

	if (off < d->base)
		return err_set(e, -EINVAL, "patch: offset %llu before the stream start %llu",
			       (unsigned long long)off, (unsigned long long)d->base);
	r = io_read(d->patch, buf, len, off - d->base, what, e);
	if (r == EI_ETRUNC)
		err_set(e, EI_ETRUNC,
			"patch: truncated: %s at byte %llu (+%zu) is missing; the header says the patch has %llu bytes",
			what, (unsigned long long)off, len,
			(unsigned long long)d->h.patch_size);
	return r;
}

/* LEB128, at most 64 bits. */
static int get_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *v)
{
	uint64_t x = 0;

	for (unsigned s = 0; s < 64; s += 7) {
		uint8_t b;

		if (*pos >= len)
			return -1;
		b = p[(*pos)++];
		if (s == 63 && b > 1)
			return -1;
		x |= (uint64_t)(b & 0x7f) << s;
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

/*
 * Check a zstd frame's header before decoding it: one frame of exactly
 * @zlen bytes, content size @want, window at most 2^DELTA_MAX_WINDOW_LOG.
 */
static int dec_frame_check(const uint8_t *z, size_t zlen, size_t want,
			   unsigned chunk, const char *what, struct err *e)
{
	unsigned long long cs;
	size_t fl;
	uint8_t fhd;

	if (zlen < 6 || get_le32(z) != 0xFD2FB528u)
		return err_set(e, EI_ECODEC, "patch: chunk %u: %s is not a zstd frame",
			       chunk, what);
	fhd = z[4];
	if (!(fhd & 0x20)) {    /* not single-segment: a window descriptor */
		unsigned wlog = 10 + (z[5] >> 3);

		if (wlog > DELTA_MAX_WINDOW_LOG)
			return err_set(e, EI_ELIMIT,
				       "patch: chunk %u: %s declares a zstd window of 2^%u bytes, the limit is 2^%u",
				       chunk, what, wlog, DELTA_MAX_WINDOW_LOG);
	}
	if (fhd & 0x03)
		return err_set(e, EI_ECODEC, "patch: chunk %u: %s asks for a zstd dictionary",
			       chunk, what);
	cs = ZSTD_getFrameContentSize(z, zlen);
	if (cs != want)
		return err_set(e, EI_ECODEC,
			       "patch: chunk %u: %s declares %s%llu bytes, the chunk header says %zu",
			       chunk, what,
			       cs == ZSTD_CONTENTSIZE_UNKNOWN ? "an unknown size, not " : "",
			       cs >= ZSTD_CONTENTSIZE_ERROR ? 0ULL : cs, want);
	fl = ZSTD_findFrameCompressedSize(z, zlen);
	if (ZSTD_isError(fl) || fl != zlen)
		return err_set(e, EI_ECODEC,
			       "patch: chunk %u: %s is not one whole zstd frame of %zu bytes (%s)",
			       chunk, what, zlen,
			       ZSTD_isError(fl) ? ZSTD_getErrorName(fl) : "trailing bytes");
	return 0;
}

static int dec_unzstd(struct delta_dec *d, void *out, size_t want,
		      const uint8_t *z, size_t zlen, const void *ref,
		      size_t ref_len, const char *what, struct err *e)
{
	size_t r;
	int rc = dec_frame_check(z, zlen, want, d->pos.chunk, what, e);

	if (rc < 0)
		return rc;
	ZSTD_DCtx_reset(d->dctx, ZSTD_reset_session_and_parameters);
	ZSTD_DCtx_setParameter(d->dctx, ZSTD_d_windowLogMax, DELTA_MAX_WINDOW_LOG);
	if (ref_len) {
		r = ZSTD_DCtx_refPrefix(d->dctx, ref, ref_len);
		if (ZSTD_isError(r))
			return err_set(e, EI_ECODEC, "patch: chunk %u: %s: %s",
				       d->pos.chunk, what, ZSTD_getErrorName(r));
	}
	r = ZSTD_decompressDCtx(d->dctx, out, want, z, zlen);
	if (ZSTD_isError(r))
		return err_set(e, EI_ECODEC, "patch: chunk %u: %s: zstd: %s",
			       d->pos.chunk, what, ZSTD_getErrorName(r));
	if (r != want)
		return err_set(e, EI_ECODEC, "patch: chunk %u: %s gave %zu bytes, expected %zu",
			       d->pos.chunk, what, r, want);
	return 0;
}

#if IS_ENABLED(CONFIG_CODEC_XZ)
/*
 * A raw LZMA2 stream (after BCJ filter @bcj) of exactly @zlen bytes
 * giving exactly @want: the dictionary is the data's size, so memory is
 * bounded by the header's max_data.
 */
static int dec_unlzma(struct delta_dec *d, void *out, size_t want, const uint8_t *z,
		      size_t zlen, unsigned bcj, struct err *e)
{
	lzma_options_lzma lo = { .dict_size = delta_lzma_dict(want) };
	lzma_filter f[3];
	unsigned n = 0;
	lzma_ret r;

	if (bcj != DELTA_BCJ_NONE)
		f[n++] = (lzma_filter){ .id = bcj == DELTA_BCJ_X86 ? LZMA_FILTER_X86 :
					LZMA_FILTER_ARM64 };
	f[n++] = (lzma_filter){ .id = LZMA_FILTER_LZMA2, .options = &lo };
	f[n] = (lzma_filter){ .id = LZMA_VLI_UNKNOWN };
	r = lzma_raw_decoder(&d->lz, f);
	if (r != LZMA_OK)
		return err_set(e, r == LZMA_MEM_ERROR ? -ENOMEM : EI_ECODEC,
			       "patch: chunk %u: data: liblzma cannot start a decoder (error %d)",
			       d->pos.chunk, (int)r);
	d->lz.next_in = z;
	d->lz.avail_in = zlen;
	d->lz.next_out = out;
	d->lz.avail_out = want;
	/* the end marker may follow the last byte: a call more, not a loop */
	r = lzma_code(&d->lz, LZMA_FINISH);
	if (r == LZMA_OK)
		r = lzma_code(&d->lz, LZMA_FINISH);
	if (r == LZMA_OK || r == LZMA_BUF_ERROR)
		return err_set(e, EI_ECODEC,
			       "patch: chunk %u: data: the LZMA2 frame of %zu bytes %s",
			       d->pos.chunk, zlen,
			       d->lz.avail_out ? "ends before its data" :
			       "holds more than the chunk header's data_len");
	if (r != LZMA_STREAM_END)
		return err_set(e, EI_ECODEC,
			       "patch: chunk %u: data: the LZMA2 frame of %zu bytes is corrupt (liblzma error %d)",
			       d->pos.chunk, zlen, (int)r);
	if (d->lz.avail_in || d->lz.avail_out)
		return err_set(e, EI_ECODEC,
			       "patch: chunk %u: data: the LZMA2 frame used %zu of %zu bytes and gave %zu of %zu",
			       d->pos.chunk, zlen - d->lz.avail_in, zlen,
			       want - d->lz.avail_out, want);
	return 0;
}
#endif

struct chunk_hdr {
	uint32_t index, new_len, op_count, ops_len, ops_zlen, ref_count,
		 ref_len, data_len, data_zlen, flags, crc;
	uint64_t new_off;
	uint8_t next_sha[SHA256_LEN];
};

static int dec_chunk_hdr(const struct delta_dec *d, const uint8_t *b,
			 struct chunk_hdr *c, struct err *e)
{
	unsigned k = d->pos.chunk;

	if (memcmp(b, DELTA_CHUNK_MAGIC, 4))
		return err_set(e, EI_ECORRUPT,
			       "patch: chunk %u at byte %llu: no chunk magic (EICH)", k,
			       (unsigned long long)d->pos.patch_off);
	c->index = get_le32(b + 4);
	c->new_off = get_le64(b + 8);
	c->new_len = get_le32(b + 16);
	c->op_count = get_le32(b + 20);
	c->ops_len = get_le32(b + 24);
	c->ops_zlen = get_le32(b + 28);
	c->ref_count = get_le32(b + 32);
	c->ref_len = get_le32(b + 36);
	c->data_len = get_le32(b + 40);
	c->data_zlen = get_le32(b + 44);
	c->flags = get_le32(b + 48);
	memcpy(c->next_sha, b + 52, SHA256_LEN);
	c->crc = get_le32(b + 84);
	if (c->index != k)
		return err_set(e, EI_ECORRUPT,
			       "patch: chunk %u at byte %llu says it is chunk %u: chunks are missing or out of order",
			       k, (unsigned long long)d->pos.patch_off, c->index);
	if (c->new_off != d->pos.new_done)
		return err_set(e, EI_ECORRUPT,
			       "patch: chunk %u: new_off %llu, expected %llu: chunks are missing or out of order",
			       k, (unsigned long long)c->new_off,
			       (unsigned long long)d->pos.new_done);
	if (!c->new_len || c->new_len > DELTA_MAX_CHUNK_NEW ||
	    !range_ok(c->new_off, c->new_len, d->h.new_size))
		return err_set(e, EI_ECORRUPT,
			       "patch: chunk %u: new_len %u at %llu is not 1..%llu inside NEW's %llu bytes",
			       k, c->new_len, (unsigned long long)c->new_off,
			       (unsigned long long)DELTA_MAX_CHUNK_NEW,
			       (unsigned long long)d->h.new_size);
	if (!c->op_count || c->op_count > DELTA_MAX_OPS || c->op_count > c->ops_len)
		return err_set(e, EI_ECORRUPT,
			       "patch: chunk %u: op_count %u is not 1..%u (and at most ops_len %u)",
			       k, c->op_count, DELTA_MAX_OPS, c->ops_len);
	if (c->ops_len > DELTA_MAX_OPS_LEN || !c->ops_zlen ||
	    c->ops_zlen > ZSTD_compressBound(c->ops_len))
		return err_set(e, EI_ECORRUPT,
			       "patch: chunk %u: ops_len %u / ops_zlen %u out of range (ops_len at most %u)",
			       k, c->ops_len, c->ops_zlen, DELTA_MAX_OPS_LEN);
	if (c->ref_count > DELTA_MAX_REFS || c->ref_len > d->h.max_ref ||
	    !c->ref_count != !c->ref_len || c->ref_count > c->ref_len)
		return err_set(e, EI_ECORRUPT,
			       "patch: chunk %u: ref_count %u / ref_len %u out of range (at most %u ranges, %u bytes)",
			       k, c->ref_count, c->ref_len, DELTA_MAX_REFS, d->h.max_ref);
	if (c->data_len > d->h.max_data || c->data_len > c->new_len ||
	    !c->data_len != !c->data_zlen ||
	    c->data_zlen > ZSTD_compressBound(c->data_len))
		return err_set(e, EI_ECORRUPT,
			       "patch: chunk %u: data_len %u / data_zlen %u out of range (data at most %u bytes)",
			       k, c->data_len, c->data_zlen, d->h.max_data);
	if (c->ref_len && !c->data_len)
		return err_set(e, EI_ECORRUPT,
			       "patch: chunk %u: a reference of %u bytes but no data", k,
			       c->ref_len);
	if (c->flags & ~DELTA_CHUNK_KNOWN)
		return err_set(e, EI_EUNSUP, "patch: chunk %u: unknown flags 0x%x", k,
			       c->flags);
	if (c->flags && (!(c->flags & DELTA_CHUNK_LZMA) || !c->data_len ||
			 !(d->h.incompat & DELTA_INCOMPAT_LZMA)))
		return err_set(e, EI_ECORRUPT,
			       "patch: chunk %u: flags 0x%x need an LZMA2 data frame and the patch's LZMA feature",
			       k, c->flags);
	if ((c->flags & DELTA_CHUNK_LZMA) && c->ref_count)
		return err_set(e, EI_ECORRUPT,
			       "patch: chunk %u: an LZMA2 data frame with %u references (it takes none)",
			       k, c->ref_count);
	if ((c->flags & DELTA_CHUNK_LZMA) && c->data_len > DELTA_MAX_LZMA_DATA)
		return err_set(e, EI_ELIMIT,
			       "patch: chunk %u: an LZMA2 data frame of data_len %u, the limit is %u",
			       k, c->data_len, DELTA_MAX_LZMA_DATA);
	if ((c->flags & DELTA_CHUNK_BCJ_MASK) >> DELTA_CHUNK_BCJ_SHIFT > DELTA_BCJ_ARM64)
		return err_set(e, EI_EUNSUP, "patch: chunk %u: unknown BCJ filter %u", k,
			       (c->flags & DELTA_CHUNK_BCJ_MASK) >> DELTA_CHUNK_BCJ_SHIFT);
	if ((k + 1 == d->h.chunk_count) != buf_is_zero(c->next_sha, SHA256_LEN))
		return err_set(e, EI_ECORRUPT,
			       "patch: chunk %u: the next chunk's hash is %s, but this chunk is %s the last",
			       k, k + 1 == d->h.chunk_count ? "set" : "zero",
			       k + 1 == d->h.chunk_count ? "" : "not");
	return 0;
}

/*
 * Walk the op stream: the reference ranges, then the ops.  With @exec
 * clear only check (every length, offset and sum); with it set, also
 * produce NEW into @s.
 */
static int dec_ops(struct delta_dec *d, const struct chunk_hdr *c, int exec,
		   const struct delta_sink *s, struct err *e)
{
	const uint8_t *p = d->ops;
	size_t pos = 0, data_pos = 0;
	uint64_t end = 0, sum = 0, copy_end = 0, out = c->new_off;
	unsigned k = d->pos.chunk;
	int r;

	for (uint32_t i = 0; i < c->ref_count; i++) {
		uint64_t gap, len, off;

		if (get_varint(p, c->ops_len, &pos, &gap) ||
		    get_varint(p, c->ops_len, &pos, &len))
			return err_set(e, EI_ECORRUPT, "patch: chunk %u: reference %u: bad varint",
				       k, i);
		if (add_overflow_u64(end, gap, &off) || !len ||
		    !range_ok(off, len, d->h.old_size) || len > c->ref_len - sum)
			return err_set(e, EI_ECORRUPT,
				       "patch: chunk %u: reference %u (gap %llu, len %llu) lies outside OLD (%llu bytes) or past ref_len %u",
				       k, i, (unsigned long long)gap,
				       (unsigned long long)len,
				       (unsigned long long)d->h.old_size, c->ref_len);
		if (exec) {
			r = vdisk_read(d->old, d->ref + sum, (size_t)len, off, e);
			if (r < 0)
				return r;
		}
		sum += len;
		end = off + len;
	}
	if (sum != c->ref_len)
		return err_set(e, EI_ECORRUPT,
			       "patch: chunk %u: references add up to %llu bytes, ref_len says %u",
			       k, (unsigned long long)sum, c->ref_len);
	if (exec && c->data_len) {
#if IS_ENABLED(CONFIG_CODEC_XZ)
		if (c->flags & DELTA_CHUNK_LZMA)
			r = dec_unlzma(d, d->data, c->data_len, d->zbody + c->ops_zlen,
				       c->data_zlen,
				       (c->flags & DELTA_CHUNK_BCJ_MASK) >> DELTA_CHUNK_BCJ_SHIFT,
				       e);
		else
#endif
			r = dec_unzstd(d, d->data, c->data_len, d->zbody + c->ops_zlen,
				       c->data_zlen, d->ref, c->ref_len, "data", e);
		if (r < 0)
			return r;
	}
	sum = 0;
	for (uint32_t i = 0; i < c->op_count; i++) {
		uint64_t v, len, delta, old;
		unsigned type;

		if (get_varint(p, c->ops_len, &pos, &v))
			return err_set(e, EI_ECORRUPT, "patch: chunk %u: op %u: bad varint", k, i);
		type = (unsigned)(v & 3);
		len = v >> 2;
		if (!len || len > c->new_len - sum)
			return err_set(e, EI_ECORRUPT,
				       "patch: chunk %u: op %u: length %llu is 0 or runs past new_len %u",
				       k, i, (unsigned long long)len, c->new_len);
		switch (type) {
		case DELTA_OP_ZERO:
			if (exec && (r = s->write(s->arg, NULL, (size_t)len, out, e)) < 0)
				return r;
			break;
		case DELTA_OP_COPY:
			if (get_varint(p, c->ops_len, &pos, &delta))
				return err_set(e, EI_ECORRUPT, "patch: chunk %u: op %u: bad varint",
					       k, i);
			/* zigzag: the offset relative to the previous copy's end */
			old = copy_end + ((delta & 1) ? ~(delta >> 1) : delta >> 1);
			if (!range_ok(old, len, d->h.old_size))
				return err_set(e, EI_ECORRUPT,
					       "patch: chunk %u: op %u: copy of %llu bytes from %lld lies outside OLD (%llu bytes)",
					       k, i, (unsigned long long)len, (long long)old,
					       (unsigned long long)d->h.old_size);
			copy_end = old + len;
			for (uint64_t done = 0; exec && done < len;) {
				size_t n = (size_t)min_u64(EI_IO_CHUNK, len - done);

				r = vdisk_read(d->old, d->buf, n, old + done, e);
				if (r < 0 || (r = s->write(s->arg, d->buf, n, out + done, e)) < 0)
					return r;
				done += n;
			}
			break;
		case DELTA_OP_DATA:
			if (len > c->data_len - data_pos)
				return err_set(e, EI_ECORRUPT,
					       "patch: chunk %u: op %u: %llu data bytes, only %zu of data_len %u left",
					       k, i, (unsigned long long)len,
					       c->data_len - data_pos, c->data_len);
			if (exec) {
				r = s->write(s->arg, d->data + data_pos, (size_t)len, out, e);
				if (r < 0)
					return r;
			}
			data_pos += (size_t)len;
			break;
		default:
			return err_set(e, EI_ECORRUPT, "patch: chunk %u: op %u: unknown type %u",
				       k, i, type);
		}
		sum += len;
		out += len;
	}
	if (sum != c->new_len || data_pos != c->data_len || pos != c->ops_len)
		return err_set(e, EI_ECORRUPT,
			       "patch: chunk %u: ops cover %llu of new_len %u bytes, use %zu of data_len %u, %zu of ops_len %u",
			       k, (unsigned long long)sum, c->new_len, data_pos,
			       c->data_len, pos, c->ops_len);
	return 0;
}

int delta_dec_done(const struct delta_dec *d, struct err *e)
{
	if (d->pos.chunk < d->h.chunk_count)
		return 1;
	if (d->pos.new_done != d->h.new_size)
		return err_set(e, EI_ECORRUPT,
			       "patch: the chunks describe %llu bytes, NEW has %llu",
			       (unsigned long long)d->pos.new_done,
			       (unsigned long long)d->h.new_size);
	if (d->pos.patch_off != d->h.patch_size)
		return err_set(e, EI_ECORRUPT,
			       "patch: the chunks end at byte %llu, the header says %llu",
			       (unsigned long long)d->pos.patch_off,
			       (unsigned long long)d->h.patch_size);
	return 0;
}

int delta_dec_chunk_size(const struct delta_dec *d, const uint8_t *hdr,
			 size_t *size, struct err *e)
{
	struct chunk_hdr c;
	size_t body;
	int r;

	if (d->pos.chunk >= d->h.chunk_count)
		return err_set(e, EI_ECORRUPT,
			       "patch: bytes after the last chunk (at byte %llu)",
			       (unsigned long long)d->pos.patch_off);
	r = dec_chunk_hdr(d, hdr, &c, e);
	if (r < 0)
		return r;
	body = (size_t)c.ops_zlen + c.data_zlen;
	if (!range_ok(d->pos.patch_off + DELTA_CHUNK_HDR, body, d->h.patch_size))
		return err_set(e, EI_ECORRUPT,
			       "patch: chunk %u: %zu body bytes run past patch_size %llu",
			       d->pos.chunk, body, (unsigned long long)d->h.patch_size);
	*size = DELTA_CHUNK_HDR + body;
	return 0;
}

int delta_dec_chunk(struct delta_dec *d, const uint8_t *chunk, size_t len,
		    const struct delta_sink *s, struct err *e)
{
	uint8_t sum[SHA256_LEN];
	char h1[2 * SHA256_LEN + 1], h2[2 * SHA256_LEN + 1];
	const uint8_t *body = chunk + DELTA_CHUNK_HDR;
	struct chunk_hdr c;
	size_t need;
	uLong crc;
	int r;

	r = delta_dec_chunk_size(d, chunk, &need, e);
	if (r < 0)
		return r;
	if (len != need)
		return err_set(e, -EINVAL, "patch: chunk %u: %zu bytes given, %zu needed",
			       d->pos.chunk, len, need);
	dec_chunk_hdr(d, chunk, &c, e);
	/* the chunk the header (or the previous chunk) commits to, or nothing */
	sha256(chunk, len, sum);
	if (!(d->flags & DELTA_DEC_NO_SUMS) && memcmp(sum, d->pos.next_sha, SHA256_LEN))
		return err_set(e, EI_EMISMATCH,
			       "patch: chunk %u at byte %llu does not belong to this patch: its SHA-256 is %s, the patch commits to %s",
			       d->pos.chunk, (unsigned long long)d->pos.patch_off,
			       sha_hex(sum, SHA256_LEN, h1),
			       sha_hex(d->pos.next_sha, SHA256_LEN, h2));
	crc = crc32(0, chunk, DELTA_CHUNK_HDR - 4);
	crc = crc32(crc, body, (uInt)(len - DELTA_CHUNK_HDR));
	if (!(d->flags & DELTA_DEC_NO_SUMS) && crc != c.crc)
		return err_set(e, EI_EMISMATCH,
			       "patch: chunk %u at byte %llu: CRC-32 0x%08lx, the chunk says 0x%08x: the patch is corrupt",
			       d->pos.chunk, (unsigned long long)d->pos.patch_off,
			       (unsigned long)crc, c.crc);
	/*
	 * A chunk holds a reference or an LZMA2 dictionary, never both: the
	 * other is let go, so that memory stays what the limits say.
	 */
	if (c.flags & DELTA_CHUNK_LZMA) {
		free(d->ref);
		d->ref = NULL;
		d->ref_cap = 0;
	} else {
#if IS_ENABLED(CONFIG_CODEC_XZ)
		lzma_end(&d->lz);
#endif
	}
	if ((r = dec_grow(&d->ops, &d->ops_cap, c.ops_len, e)) < 0 ||
	    (r = dec_grow(&d->ref, &d->ref_cap, c.ref_len, e)) < 0 ||
	    (r = dec_grow(&d->data, &d->data_cap, c.data_len, e)) < 0)
		return r;
	d->zbody = body;
	r = dec_unzstd(d, d->ops, c.ops_len, body, c.ops_zlen, NULL, 0, "op stream", e);
	if (r < 0)
		return r;
	r = dec_ops(d, &c, 0, s, e);     /* check everything first */
	if (r < 0)
		return r;
	r = dec_ops(d, &c, 1, s, e);
	if (r < 0)
		return r;
	d->pos.chunk++;
	d->pos.patch_off += len;
	d->pos.new_done += c.new_len;
	memcpy(d->pos.next_sha, c.next_sha, SHA256_LEN);
	return 1;
}

int delta_dec_next(struct delta_dec *d, const struct delta_sink *s,
		   struct err *e)
{
	uint8_t b;
	size_t len;
	int r = delta_dec_done(d, e);

	if (r < 0)
		return r;
	if (!r) {               /* the end: nothing may follow */
		struct err e2 = { 0 };

		if (!(d->patch->flags & IO_STREAM)) {
			if (d->patch->size + d->base != d->h.patch_size)
				return err_set(e, EI_ECORRUPT,
					       "patch: %llu trailing bytes after the last chunk",
					       (unsigned long long)(d->patch->size + d->base -
								    d->h.patch_size));
			return 0;
		}
		r = io_read(d->patch, &b, 1, d->pos.patch_off - d->base, "patch", &e2);
		if (r == 0)
			return err_set(e, EI_ECORRUPT,
				       "patch: trailing bytes after the last chunk (at byte %llu)",
				       (unsigned long long)d->pos.patch_off);
		if (r != EI_ETRUNC) {
			*e = e2;
			return r;
		}
		return 0;
	}
	if ((r = dec_grow(&d->body, &d->body_cap, DELTA_CHUNK_HDR, e)) < 0)
		return r;
	r = dec_patch_read(d, d->body, DELTA_CHUNK_HDR, d->pos.patch_off,
			   "a chunk header", e);
	if (r < 0 || (r = delta_dec_chunk_size(d, d->body, &len, e)) < 0)
		return r;
	if ((r = dec_grow(&d->body, &d->body_cap, len, e)) < 0)
		return r;
	r = dec_patch_read(d, d->body + DELTA_CHUNK_HDR, len - DELTA_CHUNK_HDR,
			   d->pos.patch_off + DELTA_CHUNK_HDR, "a chunk body", e);
	if (r < 0)
		return r;
	return delta_dec_chunk(d, d->body, len, s, e);
}
