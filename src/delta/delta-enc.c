// SPDX-License-Identifier: MIT
/*
 * The delta patch encoder (src/delta-format.md).  OLD is indexed by 4 KiB
 * block (a 64-bit hash per non-zero block) and by content-defined anchors
 * (a gear hash sampled about every 128 bytes).  Each NEW block becomes a
 * ZERO, a COPY of a byte-identical OLD block (runs coalesced), or DATA;
 * the DATA of a chunk is compressed by zstd with, as a prefix, the OLD
 * blocks its anchors point at and the OLD blocks at the same offsets, so
 * that edited and moved content costs only its differences.  Chunks are
 * compressed in parallel by the pipeline and written in order.
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#define ZSTD_STATIC_LINKING_ONLY      /* ZSTD_estimateCCtxSize_usingCParams */
#include <zstd.h>

#include "core/bytes.h"
#include "delta/delta.h"
#include "core/kconfig.h"
#include "codec/pipeline.h"

#if IS_ENABLED(CONFIG_CODEC_XZ)
#include <lzma.h>
#endif

#if IS_ENABLED(CONFIG_THREADS)
#include <pthread.h>
#endif

#define ENC_IO (1u << 20)
#define ENC_DATA_MAX (8u << 20)         /* DATA bytes per chunk */
#define ENC_REF_MAX (16u << 20)         /* reference bytes per chunk */
#define ENC_REF_OPS_MAX (64u << 10)     /* op-stream bytes of the references */
#define ENC_OPS_MAX (DELTA_MAX_OPS_LEN - ENC_REF_OPS_MAX - 64)
#define ENC_CHUNK_NEW (64ULL << 20)     /* the largest default chunk */
#define ENC_CHUNK_MIN (64u << 10)       /* the smallest default chunk */
#define ENC_TOTAL_CAP (500ULL << 20)    /* index, units and zstd contexts */
#define ENC_DUPS 8                      /* identical OLD blocks indexed */
#define ENC_BLOCK_TABLE_MAX (1u << 24)  /* entries: 128 MiB */
#define ENC_ANCHOR_TABLE_MAX (1u << 23) /* entries: 64 MiB */
#define ENC_ANCHOR_SHIFT 57             /* 1 anchor in 128 positions */
#define ENC_ANCHOR_GAP 32               /* bytes between anchors at least */
#define ENC_VOTES 6                     /* voted OLD starts per NEW block */
#define ENC_VOTE_MIN 1                  /* anchors that make a vote count */

/* --- hashing ------------------------------------------------------------ */

static const uint64_t P1 = 0x9E3779B185EBCA87ULL, P2 = 0xC2B2AE3D27D4EB4FULL;

static inline uint64_t rotl64(uint64_t x, unsigned n)
{
	return x << n | x >> (64 - n);
}

/* A 64-bit hash of a 4 KiB block (xxh64-like rounds, two lanes). */
static uint64_t blk_hash(const uint8_t *p)
{
	uint64_t a = P1, b = P2;

	for (size_t i = 0; i < DELTA_BLOCK; i += 16) {
		a = rotl64(a + get_le64(p + i) * P2, 31) * P1;
		b = rotl64(b + get_le64(p + i + 8) * P2, 31) * P1;
	}
	a ^= rotl64(b, 27) * P1;
	a ^= a >> 33;
	a *= P2;
	a ^= a >> 29;
	return a;
}

/* The gear table: 256 fixed pseudo-random words (splitmix64 from 0). */
static uint64_t gear[256];

static void gear_init(void)
{
	uint64_t s = 0;

	for (int i = 0; i < 256; i++) {
		uint64_t z = (s += 0x9E3779B97F4A7C15ULL);

		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
		z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
		gear[i] = z ^ (z >> 31);
	}
}

/* --- the OLD index ------------------------------------------------------ */

struct slot {
	uint32_t tag;
	uint32_t blk;           /* OLD block number + 1; 0: empty */
};

struct enc {
	struct vdisk *old, *new;
	struct io *out;
	const struct delta_enc_opts *o;
	struct delta_enc_stats st;
	uint64_t old_blocks;

	struct slot *bt;        /* blocks: open addressing */
	uint64_t bt_mask, bt_used;
	int bt_full;
	struct slot *at;        /* anchors: direct-mapped */
	unsigned at_bits;

	uint8_t *buf, *vbuf;    /* NEW I/O buffer, a verify block */
	uint64_t done;          /* progress */

	/* the chunk being built */
	uint64_t c_off, c_len;
	uint64_t c_nonzero;     /* NEW bytes of the chunk that are not ZERO ops */
	uint8_t *c_ops;         /* op varints (refs are prepended at close) */
	size_t c_ops_len;
	uint32_t c_nops;
	uint8_t *c_data;
	size_t c_data_len;
	uint64_t *c_runs;       /* NEW offset, length pairs of DATA runs */
	size_t c_nruns, c_runs_cap;     /* pairs; room for uint64_t's */
	int p_type;             /* the pending op, -1: none */
	uint64_t p_len, p_old;
	uint64_t copy_end;      /* end of the previous COPY in this chunk */
	uint64_t last_old;      /* OLD block after the last COPY block + 1, 0: none */
	uint32_t chunk;

	/* reference selection scratch */
	uint64_t *cand;         /* (score << 40 | block) */
	size_t ncand, cand_cap;

	int hashers;            /* OLD and NEW are hashed by threads */
	uint64_t wpos;          /* where the next chunk goes in the patch */
	uint64_t *chunk_off;    /* where each chunk starts */
	size_t nchunk_off;      /* room in chunk_off */
	uint8_t chunk0_sha[SHA256_LEN];
	uint32_t max_data, max_ref;
	struct pipeline *pl;
};

static int enc_tables(struct enc *enc, struct err *e)
{
	uint64_t n = 1024, a = 1u << 16;

	while (n < 2 * enc->old_blocks && n < ENC_BLOCK_TABLE_MAX)
		n <<= 1;
	while (a < enc->old->size / 256 && a < ENC_ANCHOR_TABLE_MAX)
		a <<= 1;
	enc->bt = calloc(n, sizeof(*enc->bt));
	enc->bt_mask = n - 1;
	enc->at_bits = (unsigned)__builtin_ctzll(a);
	enc->at = calloc(a, sizeof(*enc->at));
	if (!enc->bt || !enc->at)
		return err_set(e, -ENOMEM, "delta: out of memory for the OLD index");
	return 0;
}

static void bt_insert(struct enc *enc, uint64_t h, uint64_t blk)
{
	uint64_t i = h & enc->bt_mask;
	uint32_t tag = (uint32_t)(h >> 32);
	unsigned same = 0;

	if (enc->bt_full || blk >= UINT32_MAX)
		return;
	while (enc->bt[i].blk) {
		if (enc->bt[i].tag == tag && ++same >= ENC_DUPS)
			return;
		i = (i + 1) & enc->bt_mask;
	}
	enc->bt[i].tag = tag;
	enc->bt[i].blk = (uint32_t)(blk + 1);
	if (++enc->bt_used * 4 >= (enc->bt_mask + 1) * 3)
		enc->bt_full = 1;     /* stop at 3/4: later blocks go unindexed */
}

/* Anchor positions of @p[0..len): call @fn for each with its gear value. */
#define FOR_ANCHORS(p, len, g, i, body)                                     \
	do {                                                                \
		uint64_t g = 0;                                             \
		size_t next_ = 0;                                           \
		for (size_t i = 0; i < (len); i++) {                        \
			g = (g << 1) + gear[(p)[i]];                        \
			if (i >= 63 && i >= next_ &&                        \
			    !(g >> ENC_ANCHOR_SHIFT)) {                     \
				next_ = i + ENC_ANCHOR_GAP;                 \
				body                                        \
			}                                                   \
		}                                                           \
	} while (0)

/*
 * An anchor slot: the tag is 20 bits of the gear hash and, above them, the
 * anchor's offset in its OLD block (12 bits); blk is the OLD block + 1.
 */
#define AT_TAG_MASK 0xfffffu

static inline uint64_t at_index(const struct enc *enc, uint64_t g, uint32_t *tag)
{
	uint64_t k = g * P1;

	*tag = (uint32_t)k & AT_TAG_MASK;
	return k >> (64 - enc->at_bits);
}

static void index_block(struct enc *enc, const uint8_t *p, uint64_t blk)
{
	bt_insert(enc, blk_hash(p), blk);
	if (blk >= UINT32_MAX)
		return;
	FOR_ANCHORS(p, DELTA_BLOCK, g, i, {
		uint32_t tag;
		uint64_t k = at_index(enc, g, &tag);

		if (!enc->at[k].blk) {
			enc->at[k].tag = tag | (uint32_t)i << 20;
			enc->at[k].blk = (uint32_t)(blk + 1);
		}
	});
}

static void enc_progress(struct enc *enc, uint64_t n)
{
	enc->done += n;
	if (enc->o->progress)
		enc->o->progress(enc->o->progress_arg, enc->done,
			       enc->old->size + enc->new->size);
}

/*
 * The content hashes, in threads of their own over second handles of the
 * disks (a vdisk is not thread-safe): with 2 cores or more they cost no
 * wall time.
 */
struct hasher {
	struct vdisk *vd;
	uint8_t sha[SHA256_LEN];
	int r;
	struct err e;
#if IS_ENABLED(CONFIG_THREADS)
	pthread_t tid;
#endif
};

static void *hasher_run(void *arg)
{
	struct hasher *h = arg;

	h->r = chash_vdisk(h->vd, h->sha, NULL, NULL, &h->e);
	return NULL;
}

/*
 * The extent of @vd at @off (at most ENC_IO bytes), read into enc->buf when it
 * holds data, and fed to @c unless threads of their own hash the disks.
 */
static int enc_next(struct enc *enc, struct vdisk *vd, struct chash *c,
		    uint64_t off, struct extent *ext, struct err *e)
{
	int r = vdisk_extent(vd, off, min_u64(ENC_IO, vd->size - off), ext, e);

	if (r < 0)
		return r;
	if (ext->type != EXT_DATA) {
		if (!enc->hashers)
			chash_zeros(c, ext->len);
		return 0;
	}
	r = vdisk_read(vd, enc->buf, (size_t)ext->len, off, e);
	if (r < 0)
		return r;
	if (!enc->hashers)
		chash_update(c, enc->buf, (size_t)ext->len);
	return 0;
}

/*
 * One pass over @vd: every extent, its data read into enc->buf, goes to
 * @each; the disk's content hash goes to @sha unless threads of their own
 * hash the disks.
 */
static int enc_pass(struct enc *enc, struct vdisk *vd, uint8_t *sha,
		    int (*each)(struct enc *, uint64_t, const struct extent *,
				struct err *),
		    struct err *e)
{
	struct chash c;
	uint64_t off = 0;
	int r;

	chash_init(&c);
	while (off < vd->size) {
		struct extent ext;

		r = enc_next(enc, vd, &c, off, &ext, e);
		if (r >= 0)
			r = each(enc, off, &ext, e);
		if (r < 0)
			return r;
		off += ext.len;
		enc_progress(enc, ext.len);
	}
	if (!enc->hashers)
		chash_final(&c, sha);
	return 0;
}

/* Pass 1, per extent of OLD: index its non-zero blocks. */
static int enc_index_extent(struct enc *enc, uint64_t off,
			    const struct extent *ext, struct err *e)
{
	(void)e;
	if (ext->type != EXT_DATA)
		return 0;
	/* whole blocks aligned to the disk only */
	for (uint64_t b = (off + DELTA_BLOCK - 1) / DELTA_BLOCK;
	     (b + 1) * DELTA_BLOCK <= off + ext->len; b++) {
		const uint8_t *p = enc->buf + (b * DELTA_BLOCK - off);

		if (!buf_is_zero(p, DELTA_BLOCK))
			index_block(enc, p, b);
	}
	return 0;
}

/* Pass 1: hash OLD, index its non-zero blocks. */
static int enc_index_old(struct enc *enc, struct err *e)
{
	return enc_pass(enc, enc->old, enc->st.old_sha, enc_index_extent, e);
}

/* --- building chunks ---------------------------------------------------- */

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static void op_flush(struct enc *enc)
{
	if (enc->p_type < 0)
		return;
	enc->c_ops_len += put_varint(enc->c_ops + enc->c_ops_len,
				   enc->p_len << 2 | (unsigned)enc->p_type);
	if (enc->p_type == DELTA_OP_COPY) {
		int64_t d = (int64_t)(enc->p_old - enc->copy_end);

		enc->c_ops_len += put_varint(enc->c_ops + enc->c_ops_len,
					   d < 0 ? ((uint64_t)~d << 1) | 1 :
						   (uint64_t)d << 1);
		enc->copy_end = enc->p_old + enc->p_len;
	}
	enc->c_nops++;
	enc->p_type = -1;
}

/* Append @len NEW bytes of @type (COPY from @old) to the pending op. */
static void op_add(struct enc *enc, int type, uint64_t len, uint64_t old)
{
	if (enc->p_type == type &&
	    (type != DELTA_OP_COPY || enc->p_old + enc->p_len == old)) {
		enc->p_len += len;
	} else {
		op_flush(enc);
		enc->p_type = type;
		enc->p_len = len;
		enc->p_old = old;
	}
	enc->c_len += len;
	if (type != DELTA_OP_ZERO)
		enc->c_nonzero += len;
	if (type == DELTA_OP_ZERO)
		enc->st.zero += len;
	else if (type == DELTA_OP_COPY)
		enc->st.copy += len;
	else
		enc->st.data += len;
}

static int run_add(struct enc *enc, uint64_t off, uint64_t len, struct err *e)
{
	if (enc->c_nruns && enc->c_runs[2 * enc->c_nruns - 2] +
			  enc->c_runs[2 * enc->c_nruns - 1] == off) {
		enc->c_runs[2 * enc->c_nruns - 1] += len;
		return 0;
	}
	if (u64_room(&enc->c_runs, &enc->c_runs_cap, 2 * enc->c_nruns + 2, 512))
		return err_set(e, -ENOMEM, "delta: out of memory");
	enc->c_runs[2 * enc->c_nruns] = off;
	enc->c_runs[2 * enc->c_nruns + 1] = len;
	enc->c_nruns++;
	return 0;
}

static int cand_add(struct enc *enc, uint64_t blk, uint64_t score, struct err *e)
{
	if (u64_room(&enc->cand, &enc->cand_cap, enc->ncand + 1, 1024))
		return err_set(e, -ENOMEM, "delta: out of memory");
	enc->cand[enc->ncand++] = score << 40 | blk;
	return 0;
}

static int cmp_u64_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

static int cmp_u64(const void *a, const void *b)
{
	return -cmp_u64_desc(a, b);
}

/* Candidates are score << 40 | OLD block. */
#define CAND_BLK(c) ((c) & ((1ULL << 40) - 1))

/* By block, the best score first. */
static int cmp_blk_score(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	if (CAND_BLK(x) != CAND_BLK(y))
		return CAND_BLK(x) < CAND_BLK(y) ? -1 : 1;
	return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * Is the OLD block at the same offset as the NEW block @p alike enough to
 * help as a reference (an edited metadata block, say)?  At least one byte
 * in 32 equal at the same position; unrelated data has one in 256.
 */
static int same_offset_alike(struct enc *enc, const uint8_t *p, uint64_t blk,
			     struct err *e)
{
	unsigned same = 0;
	int r = vdisk_read(enc->old, enc->vbuf, DELTA_BLOCK, blk * DELTA_BLOCK, e);

	if (r < 0)
		return r;
	for (size_t i = 0; i < DELTA_BLOCK; i++)
		same += p[i] == enc->vbuf[i];
	return same >= DELTA_BLOCK / 32 && !buf_is_zero(enc->vbuf, DELTA_BLOCK);
}

/*
 * The reference of the chunk's DATA: for each DATA block, the OLD ranges
 * its anchors point at (the anchor's OLD offset minus its offset in the
 * block gives where the block would start in OLD; the ENC_VOTES starts
 * with most anchors, at least ENC_VOTE_MIN, each 1 or 2 OLD blocks) and the
 * OLD block at the same offset; best first up to the cap, then in OLD
 * order.
 */
static int enc_pick_refs(struct enc *enc, uint64_t cap, struct err *e)
{
	const uint8_t *data = enc->c_data;
	size_t dpos = 0;
	int r;

	enc->ncand = 0;
	for (size_t i = 0; i < enc->c_nruns; i++) {
		uint64_t off = enc->c_runs[2 * i], len = enc->c_runs[2 * i + 1];

		for (uint64_t o = 0; o < len; o += DELTA_BLOCK) {
			size_t n = (size_t)min_u64(DELTA_BLOCK, len - o);
			uint64_t blk = (off + o) / DELTA_BLOCK;
			uint64_t vs[64];
			unsigned vc[64], nv = 0;

			FOR_ANCHORS(data + dpos, n, g, j, {
				uint32_t tag;
				uint64_t k = at_index(enc, g, &tag);
				unsigned m;

				if (enc->at[k].blk && (enc->at[k].tag & AT_TAG_MASK) == tag &&
				    nv < 64) {
					/* where this block would start in OLD, + 4096 */
					uint64_t st = (uint64_t)(enc->at[k].blk - 1) * DELTA_BLOCK +
						      (enc->at[k].tag >> 20) + DELTA_BLOCK - j;

					for (m = 0; m < nv && vs[m] != st; m++)
						;
					if (m == nv) {
						vs[nv] = st;
						vc[nv++] = 0;
					}
					vc[m]++;
				}
			});
			for (unsigned t = 0; t < ENC_VOTES; t++) {
				unsigned best = 0, bi = 0;
				uint64_t st;

				for (unsigned m = 0; m < nv; m++)
					if (vc[m] > best) {
						best = vc[m];
						bi = m;
					}
				if (best < ENC_VOTE_MIN)
					break;
				vc[bi] = 0;
				if (vs[bi] < DELTA_BLOCK)
					continue;
				st = vs[bi] - DELTA_BLOCK;
				if (st / DELTA_BLOCK < enc->old_blocks &&
				    (r = cand_add(enc, st / DELTA_BLOCK, 2 + best, e)) < 0)
					return r;
				if (st % DELTA_BLOCK && st / DELTA_BLOCK + 1 < enc->old_blocks &&
				    (r = cand_add(enc, st / DELTA_BLOCK + 1, 2 + best, e)) < 0)
					return r;
			}
			if (blk < enc->old_blocks && n == DELTA_BLOCK) {
				r = same_offset_alike(enc, data + dpos, blk, e);
				if (r > 0)
					r = cand_add(enc, blk, 1, e);
				if (r < 0)
					return r;
			}
			dpos += n;
		}
	}
	if (!enc->ncand)
		return 0;
	/* one entry per block with its best score; best first up to the cap */
	qsort(enc->cand, enc->ncand, sizeof(*enc->cand), cmp_blk_score);
	{
		size_t keep = 0;

		for (size_t i = 0; i < enc->ncand; i++)
			if (!keep || CAND_BLK(enc->cand[i]) != CAND_BLK(enc->cand[keep - 1]))
				enc->cand[keep++] = enc->cand[i];
		enc->ncand = keep;
	}
	qsort(enc->cand, enc->ncand, sizeof(*enc->cand), cmp_u64_desc);
	if (enc->ncand > cap / DELTA_BLOCK)
		enc->ncand = (size_t)(cap / DELTA_BLOCK);
	for (size_t i = 0; i < enc->ncand; i++)
		enc->cand[i] = CAND_BLK(enc->cand[i]);
	qsort(enc->cand, enc->ncand, sizeof(*enc->cand), cmp_u64);
	return 0;
}

/*
 * The unit's input: a struct unit_meta, the op stream (references then
 * ops), the reference bytes, the DATA bytes.
 */
struct unit_meta {
	uint32_t chunk, op_count, ops_len, ref_count, ref_len, data_len;
	uint32_t ref_ops;       /* bytes of the op stream that are references */
	uint32_t lzma_saved;    /* work(): bytes an LZMA2 data frame saved */
	uint64_t new_off, new_len;
};

#define UNIT_IN_CAP (sizeof(struct unit_meta) + DELTA_MAX_OPS_LEN + \
		     ENC_REF_MAX + ENC_DATA_MAX)

static int enc_close_chunk(struct enc *enc, struct err *e)
{
	struct unit_meta m = { 0 };
	struct pl_unit *u;
	uint8_t *ops, *ref;
	uint64_t prev_end = 0;
	size_t i, ref_ops = 0;
	int r;

	op_flush(enc);
	if (!enc->c_len)
		return 0;
	u = pipeline_get(enc->pl, e);
	if (!u)
		return e->code ? e->code : -EIO;
	ops = u->in + sizeof(m);
	if (enc->c_data_len) {
		r = enc_pick_refs(enc, min_u64(ENC_REF_MAX, 2 * (uint64_t)enc->c_data_len +
					     256 * 1024), e);
		if (r < 0)
			return r;
	} else {
		enc->ncand = 0;
	}
	/* references: coalesced OLD block ranges, read into the unit */
	ref = ops + DELTA_MAX_OPS_LEN;
	for (i = 0; i < enc->ncand && ref_ops < ENC_REF_OPS_MAX;) {
		uint64_t b = enc->cand[i], n = 1, off, len;
		size_t j;

		while (i + n < enc->ncand && enc->cand[i + n] == b + n)
			n++;
		off = b * DELTA_BLOCK;
		len = min_u64(n * DELTA_BLOCK, enc->old->size - off);
		r = vdisk_read(enc->old, ref + m.ref_len, (size_t)len, off, e);
		if (r < 0)
			return r;
		/* a reference of zeros only is no use */
		if (buf_is_zero(ref + m.ref_len, (size_t)len)) {
			i += n;
			continue;
		}
		j = put_varint(ops + ref_ops, off - prev_end);
		j += put_varint(ops + ref_ops + j, len);
		ref_ops += j;
		prev_end = off + len;
		m.ref_len += (uint32_t)len;
		m.ref_count++;
		i += n;
	}
	memcpy(ops + ref_ops, enc->c_ops, enc->c_ops_len);
	m.ref_ops = (uint32_t)ref_ops;
	m.chunk = enc->chunk++;
	m.op_count = enc->c_nops;
	m.ops_len = (uint32_t)(ref_ops + enc->c_ops_len);
	m.data_len = (uint32_t)enc->c_data_len;
	m.new_off = enc->c_off;
	m.new_len = enc->c_len;
	/* move the data after the reference */
	memcpy(ref + m.ref_len, enc->c_data, enc->c_data_len);
	memcpy(u->in, &m, sizeof(m));
	u->in_len = sizeof(m) + DELTA_MAX_OPS_LEN + m.ref_len + m.data_len;
	r = pipeline_submit(enc->pl, u, e);
	if (r < 0)
		return r;
	enc->c_off += enc->c_len;
	enc->c_len = 0;
	enc->c_nonzero = 0;
	enc->c_ops_len = 0;
	enc->c_nops = 0;
	enc->c_data_len = 0;
	enc->c_nruns = 0;
	enc->copy_end = 0;
	enc->last_old = 0;
	return 0;
}

/* Close the chunk first when @len more NEW bytes (@data of them) do not fit. */
/*
 * The NEW bytes the current chunk may describe: chunk_new, but up to the
 * format's 256 MiB while it holds zeros only (a chunk of zeros costs
 * nothing to apply, and a sparse 2 TiB disk then takes 8192 chunks, not
 * 32768).
 */
static uint64_t enc_chunk_limit(const struct enc *enc, int zero)
{
	return zero && !enc->c_nonzero ? DELTA_MAX_CHUNK_NEW : enc->o->chunk_new;
}

static int enc_room(struct enc *enc, uint64_t len, uint64_t data, struct err *e)
{
	if (enc->c_len + len > enc_chunk_limit(enc, 0) ||
	    enc->c_data_len + data > ENC_DATA_MAX ||
	    enc->c_ops_len + 32 > ENC_OPS_MAX || enc->c_nops + 2 >= DELTA_MAX_OPS)
		return enc_close_chunk(enc, e);
	return 0;
}

static int enc_zero(struct enc *enc, uint64_t len, struct err *e)
{
	while (len) {
		uint64_t lim = enc_chunk_limit(enc, 1), n;
		int r;

		n = enc->c_len < lim ? min_u64(len, lim - enc->c_len) : 0;
		if (!n) {
			if ((r = enc_close_chunk(enc, e)) < 0)
				return r;
			continue;
		}
		if (enc->c_ops_len + 32 > ENC_OPS_MAX || enc->c_nops + 2 >= DELTA_MAX_OPS) {
			if ((r = enc_close_chunk(enc, e)) < 0)
				return r;
			continue;
		}
		op_add(enc, DELTA_OP_ZERO, n, 0);
		len -= n;
	}
	return 0;
}

/* Find a byte-identical OLD block for @p (a whole block at NEW block @nb). */
static int enc_match(struct enc *enc, const uint8_t *p, uint64_t nb,
		     uint64_t *out, struct err *e)
{
	uint64_t h = blk_hash(p), i = h & enc->bt_mask, cand[ENC_DUPS + 1];
	uint32_t tag = (uint32_t)(h >> 32);
	unsigned n = 0, probes = 0;
	int r;

	while (enc->bt[i].blk && probes++ < 64) {
		if (enc->bt[i].tag == tag && n < ENC_DUPS)
			cand[n++] = enc->bt[i].blk - 1;
		i = (i + 1) & enc->bt_mask;
	}
	if (!n)
		return 0;
	/* try the continuation of the last copy first, then the same offset */
	for (int t = 1; t >= 0; t--) {
		uint64_t want = t ? nb : enc->last_old ? enc->last_old : UINT64_MAX;

		for (unsigned k = 0; k < n; k++) {
			if (cand[k] == want) {
				cand[k] = cand[0];
				cand[0] = want;
				break;
			}
		}
	}
	for (unsigned k = 0; k < n; k++) {
		r = vdisk_read(enc->old, enc->vbuf, DELTA_BLOCK, cand[k] * DELTA_BLOCK, e);
		if (r < 0)
			return r;
		if (!memcmp(enc->vbuf, p, DELTA_BLOCK)) {
			*out = cand[k];
			return 1;
		}
	}
	return 0;
}

/* One NEW block (or the short last one) of data at @off. */
static int enc_block(struct enc *enc, const uint8_t *p, size_t n, uint64_t off,
		     struct err *e)
{
	uint64_t ob;
	int r;

	if (buf_is_zero(p, n)) {
		enc->last_old = 0;
		return enc_zero(enc, n, e);
	}
	if (n == DELTA_BLOCK && !(off % DELTA_BLOCK)) {
		r = enc_match(enc, p, off / DELTA_BLOCK, &ob, e);
		if (r < 0)
			return r;
		if (r) {
			if ((r = enc_room(enc, n, 0, e)) < 0)
				return r;
			op_add(enc, DELTA_OP_COPY, n, ob * DELTA_BLOCK);
			enc->last_old = ob + 1;
			return 0;
		}
	}
	enc->last_old = 0;
	if ((r = enc_room(enc, n, n, e)) < 0)
		return r;
	op_add(enc, DELTA_OP_DATA, n, 0);
	memcpy(enc->c_data + enc->c_data_len, p, n);
	enc->c_data_len += n;
	return run_add(enc, off, n, e);
}

/* Pass 2, per extent of NEW: its zeros or its blocks into chunks. */
static int enc_new_extent(struct enc *enc, uint64_t off,
			  const struct extent *ext, struct err *e)
{
	int r = 0;

	if (ext->type != EXT_DATA) {
		enc->last_old = 0;
		return enc_zero(enc, ext->len, e);
	}
	for (uint64_t p = 0; p < ext->len && r >= 0;) {
		/* blocks aligned to the disk */
		uint64_t n = min_u64(DELTA_BLOCK - (off + p) % DELTA_BLOCK,
				     ext->len - p);

		r = enc_block(enc, enc->buf + p, (size_t)n, off + p, e);
		p += n;
	}
	return r;
}

/* Pass 2: walk NEW, build and submit chunks. */
static int enc_walk_new(struct enc *enc, struct err *e)
{
	int r = enc_pass(enc, enc->new, enc->st.new_sha, enc_new_extent, e);

	return r < 0 ? r : enc_close_chunk(enc, e);
}

/* --- compression (worker threads) and output (in order) ----------------- */

/* A worker's state: its zstd context and, with LZMA2, a second output. */
struct enc_ctx {
	ZSTD_CCtx *c;
	uint8_t *lz;            /* an LZMA2 data frame being tried */
};

/* zstd at the patch's level, a frame with its size and nothing else. */
static void enc_zstd_reset(ZSTD_CCtx *c, int level)
{
	ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
	ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
	ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1);
	ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0);
	ZSTD_CCtx_setParameter(c, ZSTD_c_dictIDFlag, 0);
}

static int enc_zstd(ZSTD_CCtx *c, int level, const uint8_t *in, size_t len, uint8_t *out,
		    size_t cap, size_t *zlen, struct err *e)
{
	enc_zstd_reset(c, level);
	*zlen = ZSTD_compress2(c, out, cap, in, len);
	if (ZSTD_isError(*zlen))
		return err_set(e, EI_ECODEC, "delta: zstd: %s", ZSTD_getErrorName(*zlen));
	return 0;
}

#if IS_ENABLED(CONFIG_CODEC_XZ)
/*
 * The executable code the DATA holds, by the ELF headers that start its
 * 4 KiB blocks (files start at block boundaries): the BCJ filter of the
 * machine most headers name, or none.
 */
static unsigned enc_bcj_pick(const uint8_t *data, size_t len)
{
	static const uint8_t elf[6] = { 0x7f, 'E', 'L', 'F', 2, 1 };
	size_t x86 = 0, arm64 = 0;

	for (size_t i = 0; i + 64 <= len; i += DELTA_BLOCK) {
		if (memcmp(data + i, elf, sizeof(elf)))
			continue;
		switch (get_le16(data + i + 18)) {
		case 62:        /* EM_X86_64 */
			x86++;
			break;
		case 183:       /* EM_AARCH64 */
			arm64++;
			break;
		}
	}
	if (!x86 && !arm64)
		return DELTA_BCJ_NONE;
	return x86 >= arm64 ? DELTA_BCJ_X86 : DELTA_BCJ_ARM64;
}

/*
 * The data as a raw LZMA2 stream (delta-format.md, "LZMA2 data frames"):
 * preset 6, a dictionary of the data's size, the BCJ filter @bcj first.
 * *@zlen 0: it did not fit @cap.
 */
static int enc_lzma(const uint8_t *data, size_t len, unsigned bcj, uint8_t *out, size_t cap,
		    size_t *zlen, struct err *e)
{
	lzma_options_lzma lo;
	lzma_filter f[3];
	unsigned n = 0;
	lzma_ret r;

	*zlen = 0;
	if (lzma_lzma_preset(&lo, 6))
		return err_set(e, EI_ECODEC, "delta: liblzma has no preset 6");
	lo.dict_size = delta_lzma_dict(len);
	if (bcj != DELTA_BCJ_NONE)
		f[n++] = (lzma_filter){ .id = bcj == DELTA_BCJ_X86 ? LZMA_FILTER_X86 :
					LZMA_FILTER_ARM64 };
	f[n++] = (lzma_filter){ .id = LZMA_FILTER_LZMA2, .options = &lo };
	f[n] = (lzma_filter){ .id = LZMA_VLI_UNKNOWN };
	r = lzma_raw_buffer_encode(f, NULL, data, len, out, zlen, cap);
	if (r == LZMA_BUF_ERROR) {
		*zlen = 0;
		return 0;
	}
	if (r != LZMA_OK)
		return err_set(e, r == LZMA_MEM_ERROR ? -ENOMEM : EI_ECODEC,
			       "delta: liblzma: error %d", (int)r);
	return 0;
}

/*
 * Data zstd left at more than 31/32 of its size, even with a reference to
 * match against, is compressed already (packages, archives): LZMA2 gains
 * nothing there, and trying it is most of delta's time.
 */
static int enc_incompressible(size_t data_len, size_t zstd_len)
{
	return (uint64_t)zstd_len * 32 > (uint64_t)data_len * 31;
}

/* The bytes enc_lzma() takes at most (its encoder, preset 6, the largest data). */
static uint64_t enc_lzma_mem(void)
{
	lzma_options_lzma lo;
	lzma_filter f[3];

	if (lzma_lzma_preset(&lo, 6))
		return 0;
	lo.dict_size = delta_lzma_dict(ENC_DATA_MAX);
	f[0] = (lzma_filter){ .id = LZMA_FILTER_X86 };
	f[1] = (lzma_filter){ .id = LZMA_FILTER_LZMA2, .options = &lo };
	f[2] = (lzma_filter){ .id = LZMA_VLI_UNKNOWN };
	return lzma_raw_encoder_memusage(f) + ZSTD_compressBound(ENC_DATA_MAX);
}
#endif

static int enc_work(void *arg, void **ctx, struct pl_unit *u, struct err *e)
{
	const struct enc *enc = arg;
	struct enc_ctx *x = *ctx;
	struct unit_meta m;
	const uint8_t *ops, *ref, *data;
	uint8_t *h = u->out, *z = u->out + DELTA_CHUNK_HDR;
	size_t cap = (size_t)(ZSTD_compressBound(DELTA_MAX_OPS_LEN) +
			      ZSTD_compressBound(ENC_DATA_MAX)), ozl, dzl = 0;
	uint32_t flags = 0;
	uLong crc;
	int r;

	if (!x && (x = *ctx = calloc(1, sizeof(*x))) == NULL)
		return err_set(e, -ENOMEM, "delta: out of memory");
	if (!x->c && !(x->c = ZSTD_createCCtx()))
		return err_set(e, -ENOMEM, "delta: out of memory for zstd");
	memcpy(&m, u->in, sizeof(m));
	ops = u->in + sizeof(m);
	ref = ops + DELTA_MAX_OPS_LEN;
	data = ref + m.ref_len;

	r = enc_zstd(x->c, enc->o->level, ops, m.ops_len, z, cap, &ozl, e);
	if (r < 0)
		return r;
	if (m.data_len) {
		unsigned wlog = 10;

		enc_zstd_reset(x->c, enc->o->level);
		/* a window over the whole reference and data */
		while (wlog < DELTA_MAX_WINDOW_LOG &&
		       (1ULL << wlog) < (uint64_t)m.ref_len + m.data_len)
			wlog++;
		ZSTD_CCtx_setParameter(x->c, ZSTD_c_windowLog, (int)wlog);
		if (m.ref_len)
			ZSTD_CCtx_refPrefix(x->c, ref, m.ref_len);
		dzl = ZSTD_compress2(x->c, z + ozl, cap - ozl, data, m.data_len);
		if (ZSTD_isError(dzl))
			return err_set(e, EI_ECODEC, "delta: zstd: %s",
				       ZSTD_getErrorName(dzl));
	}
#if IS_ENABLED(CONFIG_CODEC_XZ)
	/*
	 * The data as LZMA2 (after a BCJ filter for the code it holds), with
	 * no reference: kept when it and the op stream without references
	 * are smaller than the zstd frames.  The zstd context is let go
	 * first, so that a worker holds one of the two encoders at a time.
	 */
	if (m.data_len && m.data_len <= DELTA_MAX_LZMA_DATA && enc->o->lzma &&
	    !enc_incompressible(m.data_len, dzl)) {
		unsigned bcj = enc_bcj_pick(data, m.data_len);
		size_t lzl, ozl2;

		if (!x->lz && !(x->lz = malloc(cap)))
			return err_set(e, -ENOMEM, "delta: out of memory");
		r = enc_zstd(x->c, enc->o->level, ops + m.ref_ops, m.ops_len - m.ref_ops,
			     x->lz, cap, &ozl2, e);
		if (r < 0)
			return r;
		ZSTD_freeCCtx(x->c);
		x->c = NULL;
		lzl = 0;
		if (ozl2 + 1 < ozl + dzl) {
			r = enc_lzma(data, m.data_len, bcj, x->lz + ozl2, ozl + dzl - ozl2 - 1,
				     &lzl, e);
			if (r < 0)
				return r;
		}
		if (lzl) {
			m.lzma_saved = (uint32_t)(ozl + dzl - ozl2 - lzl);
			memcpy(z, x->lz, ozl2 + lzl);
			ozl = ozl2;
			dzl = lzl;
			m.ops_len -= m.ref_ops;
			m.ref_count = 0;
			m.ref_len = 0;
			flags = DELTA_CHUNK_LZMA | bcj << DELTA_CHUNK_BCJ_SHIFT;
			memcpy(u->in, &m, sizeof(m));
		}
	}
#endif
	memcpy(h, DELTA_CHUNK_MAGIC, 4);
	put_le32(h + 4, m.chunk);
	put_le64(h + 8, m.new_off);
	put_le32(h + 16, (uint32_t)m.new_len);
	put_le32(h + 20, m.op_count);
	put_le32(h + 24, m.ops_len);
	put_le32(h + 28, (uint32_t)ozl);
	put_le32(h + 32, m.ref_count);
	put_le32(h + 36, m.ref_len);
	put_le32(h + 40, m.data_len);
	put_le32(h + 44, (uint32_t)dzl);
	put_le32(h + 48, flags);
	memset(h + 52, 0, SHA256_LEN);  /* the next chunk's hash: enc_chain() */
	crc = crc32(0, h, DELTA_CHUNK_HDR - 4);
	crc = crc32(crc, z, (uInt)(ozl + dzl));
	put_le32(h + 84, (uint32_t)crc);
	u->out_len = DELTA_CHUNK_HDR + ozl + dzl;
	return 0;
}

static void enc_ctx_free(void *arg, void *ctx)
{
	struct enc_ctx *x = ctx;

	(void)arg;
	if (!x)
		return;
	ZSTD_freeCCtx(x->c);
	free(x->lz);
	free(x);
}

static int enc_emit(void *arg, struct pl_unit *u, struct err *e)
{
	struct enc *enc = arg;
	struct unit_meta m;
	int r;

	/* what the chunk became: work() may have dropped its references */
	memcpy(&m, u->in, sizeof(m));
	enc->st.ref += m.ref_len;
	if (m.ref_len > enc->max_ref)
		enc->max_ref = m.ref_len;
	if (m.data_len > enc->max_data)
		enc->max_data = m.data_len;
	if (get_le32(u->out + 48) & DELTA_CHUNK_LZMA) {
		enc->st.lzma_chunks++;
		enc->st.lzma_saved += m.lzma_saved;
	}
	/* the decoder refuses more; stop before the patch is useless */
	if (enc->st.chunks >= DELTA_MAX_CHUNKS)
		return err_set(e, EI_ELIMIT,
			       "delta: more than %u chunks; use a larger --chunk",
			       DELTA_MAX_CHUNKS);
	r = io_write(enc->out, u->out, u->out_len, enc->wpos, e);
	if (r < 0)
		return r;
	if (u64_room(&enc->chunk_off, &enc->nchunk_off, enc->st.chunks + 1, 64))
		return err_set(e, -ENOMEM, "delta: out of memory");
	enc->chunk_off[enc->st.chunks] = enc->wpos;
	enc->wpos += u->out_len;
	enc->st.chunks++;
	return 0;
}

/*
 * Chain the chunks, last to first: each chunk's header gets the SHA-256 of
 * the chunk after it (and its CRC again), so that the header, which holds
 * chunk 0's hash, commits to every chunk and a decoder can prove each one
 * before using it.  Reads the patch back: a chunk at a time.
 */
static int enc_chain(struct enc *enc, uint8_t first[SHA256_LEN], struct err *e)
{
	uint8_t next[SHA256_LEN] = { 0 }, *b = NULL;
	size_t cap = 0;
	int r = 0;

	for (uint64_t i = enc->st.chunks; i-- > 0;) {
		uint64_t off = enc->chunk_off[i];
		size_t len = (size_t)((i + 1 < enc->st.chunks ? enc->chunk_off[i + 1] :
				       enc->wpos) - off);
		uLong crc;

		if (len > cap) {
			uint8_t *nb = realloc(b, len);

			if (!nb) {
				r = err_set(e, -ENOMEM, "delta: out of memory");
				break;
			}
			b = nb;
			cap = len;
		}
		r = io_read(enc->out, b, len, off, "the patch", e);
		if (r < 0)
			break;
		memcpy(b + 52, next, SHA256_LEN);
		crc = crc32(0, b, DELTA_CHUNK_HDR - 4);
		crc = crc32(crc, b + DELTA_CHUNK_HDR, (uInt)(len - DELTA_CHUNK_HDR));
		put_le32(b + 84, (uint32_t)crc);
		r = io_write(enc->out, b, DELTA_CHUNK_HDR, off, e);
		if (r < 0)
			break;
		sha256(b, len, next);
	}
	free(b);
	memcpy(first, next, SHA256_LEN);
	return r;
}

static const struct pl_ops enc_pl_ops = {
	.work = enc_work,
	.emit = enc_emit,
	.ctx_free = enc_ctx_free,
};

/*
 * Fit the workers in ENC_TOTAL_CAP: the index, a unit per worker and one
 * queued, and each worker's zstd context (about 90 MiB at level 19 with
 * the window the chunks need) all count; threads are reduced to fit.
 */
static void enc_budget(struct enc *enc, struct delta_enc_opts *o)
{
	ZSTD_compressionParameters cp = ZSTD_getCParams(o->level,
							ENC_REF_MAX + ENC_DATA_MAX, 0);
	uint64_t unit = UNIT_IN_CAP + DELTA_CHUNK_HDR +
			ZSTD_compressBound(DELTA_MAX_OPS_LEN) +
			ZSTD_compressBound(ENC_DATA_MAX);
	uint64_t index = (enc->bt_mask + 1 + (1ULL << enc->at_bits)) * sizeof(struct slot);
	uint64_t cctx, fixed;

	cp.windowLog = DELTA_MAX_WINDOW_LOG;
	cctx = ZSTD_estimateCCtxSize_usingCParams(cp);
#if IS_ENABLED(CONFIG_CODEC_XZ)
	/* a worker holds its zstd or its LZMA2 encoder, and a second output */
	if (o->lzma)
		cctx = cctx > enc_lzma_mem() ? cctx : enc_lzma_mem();
#endif
	fixed = index + unit + ENC_IO + DELTA_MAX_OPS_LEN + ENC_DATA_MAX;
	while (o->threads > 1 &&
	       fixed + (uint64_t)o->threads * (unit + cctx) > ENC_TOTAL_CAP)
		o->threads--;
	if (!o->mem_cap)        /* a unit per worker and one queued */
		o->mem_cap = (uint64_t)(o->threads + 1) * unit;
	enc->st.threads = o->threads;
	enc->st.mem_estimate = fixed + (uint64_t)o->threads * (unit + cctx);
}

static int enc_header(struct enc *enc, struct err *e)
{
	const struct delta_enc_opts *o = enc->o;
	size_t rl = o->recipe ? strlen(o->recipe) : 0;
	size_t hlen = DELTA_HDR_FIXED + rl + SHA256_LEN;
	uint8_t h[DELTA_HDR_SIG_MAX];
	uint64_t incompat = 0;
	int r;

	memset(h, 0, sizeof(h));
	if (enc->max_ref)
		incompat |= DELTA_INCOMPAT_REF;
	if (rl)
		incompat |= DELTA_INCOMPAT_RECIPE;
	if (o->sign)
		incompat |= DELTA_INCOMPAT_SIGNED;
	if (enc->st.lzma_chunks)
		incompat |= DELTA_INCOMPAT_LZMA;
	memcpy(h, DELTA_MAGIC, DELTA_MAGIC_LEN);
	put_le32(h + 8, DELTA_VERSION);
	put_le32(h + 12, (uint32_t)(DELTA_HDR_FIXED + rl + SHA256_LEN));
	put_le64(h + 16, incompat);
	put_le64(h + 24, 0);
	put_le64(h + 32, enc->old->size);
	put_le64(h + 40, enc->new->size);
	put_le64(h + 48, enc->wpos);
	put_le32(h + 56, (uint32_t)enc->st.chunks);
	put_le32(h + 60, DELTA_BLOCK);
	put_le32(h + 64, enc->max_data);
	put_le32(h + 68, enc->max_ref);
	put_le32(h + 72, (uint32_t)rl);
	memcpy(h + 80, enc->st.old_sha, SHA256_LEN);
	memcpy(h + 112, enc->st.new_sha, SHA256_LEN);
	put_le64(h + 144, rl ? o->target_size : enc->new->size);
	memcpy(h + 152, rl ? o->target_sha : enc->st.new_sha, SHA256_LEN);
	put_le64(h + 184, o->patch_version);
	memcpy(h + 192, enc->chunk0_sha, SHA256_LEN);
	if (rl)
		memcpy(h + DELTA_HDR_FIXED, o->recipe, rl);
	sha256(h, DELTA_HDR_FIXED + rl, h + DELTA_HDR_FIXED + rl);
	if (o->sign) {          /* over the finished header, checksum included */
		r = o->sign(o->sign_arg, h, hlen, h + hlen, e);
		if (r < 0)
			return r;
		hlen += DELTA_SIG_SIZE;
	}
	return io_write(enc->out, h, hlen, 0, e);
}

int delta_encode(struct vdisk *old, struct vdisk *new, struct io *out,
		 const struct delta_enc_opts *opts, struct delta_enc_stats *st,
		 struct err *e)
{
	struct delta_enc_opts o = *opts;
	struct enc enc;
	struct hasher hashers[2];
	int nhashers = 0;
	size_t rl = o.recipe ? strlen(o.recipe) : 0;
	int r;

	if (!o.level)
		o.level = 19;
	if (o.level < 1 || o.level > ZSTD_maxCLevel())
		return err_set(e, EI_EUSAGE, "delta: level %d is not 1..%d", o.level,
			       ZSTD_maxCLevel());
	if (!o.chunk_new) {     /* a checkpoint every 1/16 of NEW at least */
		o.chunk_new = (new->size / 16 + ENC_CHUNK_MIN - 1) /
			      ENC_CHUNK_MIN * ENC_CHUNK_MIN;
		o.chunk_new = o.chunk_new < ENC_CHUNK_MIN ? ENC_CHUNK_MIN :
			      min_u64(o.chunk_new, ENC_CHUNK_NEW);
	}
	if (o.chunk_new < DELTA_BLOCK || o.chunk_new > DELTA_MAX_CHUNK_NEW ||
	    o.chunk_new % DELTA_BLOCK)
		return err_set(e, EI_EUSAGE,
			       "delta: chunk size %llu is not a multiple of 4 KiB up to 256 MiB",
			       (unsigned long long)o.chunk_new);
	if (rl > DELTA_RECIPE_MAX || (rl && !o.target_sha))
		return err_set(e, EI_EUSAGE, "delta: recipe of %zu bytes (at most %u, with a target hash)",
			       rl, DELTA_RECIPE_MAX);
	for (size_t i = 0; i < rl; i++)
		if (o.recipe[i] < 0x21 || o.recipe[i] > 0x7e)
			return err_set(e, EI_EUSAGE, "delta: the recipe must be printable ASCII without spaces");
	if (!gear[0])
		gear_init();

	memset(&enc, 0, sizeof(enc));
	memset(hashers, 0, sizeof(hashers));
	enc.old = old;
	enc.new = new;
	enc.out = out;
	enc.o = &o;
	enc.p_type = -1;
	enc.old_blocks = old->size / DELTA_BLOCK;
	enc.wpos = DELTA_HDR_FIXED + rl + SHA256_LEN + (o.sign ? DELTA_SIG_SIZE : 0);
	enc.buf = malloc(ENC_IO);
	enc.vbuf = malloc(DELTA_BLOCK);
	enc.c_ops = malloc(DELTA_MAX_OPS_LEN);
	enc.c_data = malloc(ENC_DATA_MAX);
	if (!enc.buf || !enc.vbuf || !enc.c_ops || !enc.c_data) {
		r = err_set(e, -ENOMEM, "delta: out of memory");
		goto out;
	}
	r = enc_tables(&enc, e);
	if (r < 0)
		goto out;
	enc_budget(&enc, &o);
	r = pipeline_new(&enc_pl_ops, &enc, o.threads, UNIT_IN_CAP,
			 DELTA_CHUNK_HDR + ZSTD_compressBound(DELTA_MAX_OPS_LEN) +
			 ZSTD_compressBound(ENC_DATA_MAX), o.mem_cap, &enc.pl, e);
	if (r < 0)
		goto out;
	/* the header's place, written last */
	{
		uint8_t z[DELTA_HDR_SIG_MAX] = { 0 };

		r = io_write(out, z, (size_t)enc.wpos, 0, e);
		if (r < 0)
			goto out;
	}
#if IS_ENABLED(CONFIG_THREADS)
	if (o.hash_old && o.hash_new && opts->threads > 1 &&
	    o.hash_old->size == old->size && o.hash_new->size == new->size) {
		hashers[0].vd = o.hash_old;
		hashers[1].vd = o.hash_new;
		for (nhashers = 0; nhashers < 2; nhashers++)
			if (pthread_create(&hashers[nhashers].tid, NULL, hasher_run, &hashers[nhashers]))
				break;
		enc.hashers = nhashers == 2;
	}
#endif
	r = enc_index_old(&enc, e);
	if (r < 0)
		goto out;
	r = enc_walk_new(&enc, e);
	if (r < 0)
		goto out;
	r = pipeline_finish(enc.pl, e);
	if (r < 0)
		goto out;
#if IS_ENABLED(CONFIG_THREADS)
	for (; nhashers > 0; nhashers--)
		pthread_join(hashers[nhashers - 1].tid, NULL);
#endif
	if (enc.hashers) {
		for (int i = 0; i < 2; i++) {
			if (hashers[i].r < 0) {
				*e = hashers[i].e;
				r = hashers[i].r;
				goto out;
			}
		}
		memcpy(enc.st.old_sha, hashers[0].sha, SHA256_LEN);
		memcpy(enc.st.new_sha, hashers[1].sha, SHA256_LEN);
	}
	r = enc_chain(&enc, enc.chunk0_sha, e);
	if (r < 0)
		goto out;
	r = enc_header(&enc, e);
	if (r < 0)
		goto out;
	enc.st.patch_size = enc.wpos;
	if (st)
		*st = enc.st;
out:
#if IS_ENABLED(CONFIG_THREADS)
	for (; nhashers > 0; nhashers--)         /* after an error: let them end */
		pthread_join(hashers[nhashers - 1].tid, NULL);
#endif
	pipeline_free(enc.pl);
	free(enc.bt);
	free(enc.at);
	free(enc.buf);
	free(enc.vbuf);
	free(enc.c_ops);
	free(enc.c_data);
	free(enc.c_runs);
	free(enc.cand);
	free(enc.chunk_off);
	return r;
}
