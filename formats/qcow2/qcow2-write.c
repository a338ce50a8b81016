// SPDX-License-Identifier: MIT
/*
 * The qcow2 writer: a disk streamed into a qcow2 image, plain or with
 * compressed clusters, in one pass and bounded memory.
 * Spec: QEMU docs/interop/qcow2.txt (version 3, and version 2 for
 * compat=0.10); compressed clusters as QEMU's qcow2_alloc_bytes() packs them.
 *
 * Layout, all decided while streaming (the number of data clusters is not
 * known up front):
 *
 *   cluster 0          header, header extensions (recipe); written last
 *   clusters 1..L1     the L1 table, zero until patched window by window
 *   ...                data clusters in disk order: plain ones cluster
 *                      aligned, compressed ones packed back to back at byte
 *                      granularity; each L2 table right after the data of
 *                      its range; each refcount block right after the data
 *                      crosses the end of the clusters it counts
 *                      (the tail of a cluster skipped to align one of these
 *                      is a hole that later compressed streams fill, best
 *                      fit first, as QEMU fills its last compressed cluster)
 *   end                the last refcount block(s), the refcount table
 *
 * Zero and unallocated clusters of the disk are not stored (no L2 entry),
 * as "qemu-img convert" leaves them in a new image.  A compressed stream
 * counts once on every cluster it touches (qemu-img check does the same),
 * so refcounts of packed clusters are usually above 1.  Refcounts are
 * final once the write position has passed a cluster, so a window of two
 * refcount blocks is all that is held; the L1 table is held one cluster
 * at a time, the refcount table at 8 bytes per refcount block.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "codec/codec.h"
#include "generated/features.h"
#include "core/kconfig.h"
#include "core/limits.h"
#include "codec/pipeline.h"
#include "crypto/sha.h"
#include "qcow2.h"
#include "qcow2-write.h"

extern const struct img_format fmt_qcow2;

#define QCOW2W_MIN_CLUSTER_BITS 12      /* 4 KiB */
#define QCOW2W_MAX_CLUSTER_BITS 21      /* 2 MiB */
#define QCOW2W_REFCOUNT_ORDER 4         /* 16-bit refcounts, as QEMU */
#define QCOW2W_REFCOUNT_MAX 0xffffu
#define QCOW2W_WBUF (1u << 20)          /* output is written in these */
#define QCOW2W_HOLES 16                 /* gaps remembered for packing */
#define QCOW2W_UNIT EI_IO_CHUNK         /* disk bytes per pipeline unit */
/* Memory besides buffers: the program itself, and a codec's state per thread. */
#define QCOW2W_BASELINE (4u << 20)
#define QCOW2W_CTX(cs) ((cs) / 2 + (512u << 10))

/* A cluster's fate, as work() decides it: a compressed length in between. */
#define QCOW2W_ZERO 0u
#define QCOW2W_PLAIN 0xffffffffu
#define QCOW2W_RESULT_LEN 4
#define QCOW2W_RESULTS_ALIGN 64

struct qcow2_writer {
	struct io *out;
	const struct codec *codec;      /* NULL: clusters are stored plain */
	int level;
	unsigned cluster_bits;
	uint64_t cs;                    /* cluster size */
	uint64_t size;                  /* virtual size, sectors: >= src_size */
	uint64_t src_size;              /* the disk's bytes */
	unsigned version;
	unsigned compression_type;
	const struct block_reuse *reuse;        /* compressed clusters to copy */
	uint32_t l1_size;               /* entries */
	uint64_t l1_clusters;
	uint64_t l2_entries;            /* per L2 table: cs / 8 */
	unsigned unit_clusters;         /* clusters per pipeline unit */
	size_t results_len;             /* bytes of results before the outputs */
	char recipe[QCOW2_RECIPE_MAX];

	/* The output stream: bytes [woff, woff + wlen) wait in wbuf. */
	uint64_t cur;                   /* next byte of the stream */
	uint8_t *wbuf;
	size_t wlen;
	uint64_t woff;
	/* Free bytes [off, end) before cur, each in one cluster; end 0: none. */
	struct qcow2_writer_hole {
		uint64_t off, end;
	} hole[QCOW2W_HOLES];

	/* The L2 table being filled (big-endian entries). */
	uint8_t *l2;
	uint64_t l2_index;              /* which table, UINT64_MAX: none */
	int l2_used;

	/* Cluster l1w_index of the L1 table (big-endian entries). */
	uint8_t *l1w;
	uint64_t l1w_index;             /* which L1 cluster */
	int l1w_used;

	/* Refcounts of clusters [rc_base, rc_base + 2 * rb_entries). */
	uint16_t *rc;
	uint64_t rc_base;
	uint64_t rb_entries;            /* refcounts per block: cs / 2 */
	uint8_t *rbbuf;                 /* a block being encoded */
	uint64_t *rt;                   /* offsets of the blocks written */
	size_t rt_n, rt_cap;
};

/* --- the output stream ----------------------------------------------- */

static int qcow2_writer_flush(struct qcow2_writer *q, struct err *e)
{
	int r;

	if (!q->wlen)
		return 0;
	r = io_write(q->out, q->wbuf, q->wlen, q->woff, e);
	if (r < 0)
		return r;
	q->woff += q->wlen;
	q->wlen = 0;
	return 0;
}

/* Append @len bytes of @p (zeros when @p is NULL) at q->cur. */
static int qcow2_writer_put(struct qcow2_writer *q, const void *p, size_t len, struct err *e)
{
	const uint8_t *b = p;
	int r;

	if (b && len >= QCOW2W_WBUF) {
		/* A 1 or 2 MiB cluster: no point copying it. */
		if ((r = qcow2_writer_flush(q, e)) < 0 ||
		    (r = io_write(q->out, b, len, q->woff, e)) < 0)
			return r;
		q->woff += len;
		q->cur += len;
		return 0;
	}
	while (len) {
		size_t n;

		if (q->wlen == QCOW2W_WBUF && (r = qcow2_writer_flush(q, e)) < 0)
			return r;
		n = (size_t)min_u64(len, QCOW2W_WBUF - q->wlen);
		if (b) {
			memcpy(q->wbuf + q->wlen, b, n);
			b += n;
		} else {
			memset(q->wbuf + q->wlen, 0, n);
		}
		q->wlen += n;
		q->cur += n;
		len -= n;
	}
	return 0;
}

/* Zeros up to the next cluster boundary, remembered as a hole. */
static int qcow2_writer_pad(struct qcow2_writer *q, struct err *e)
{
	uint64_t rem = q->cur & (q->cs - 1);
	struct qcow2_writer_hole *h = &q->hole[0];

	if (!rem)
		return 0;
	/* An empty slot, else the smallest hole if this one is larger. */
	for (unsigned i = 1; i < QCOW2W_HOLES && h->end; i++)
		if (!q->hole[i].end || q->hole[i].end - q->hole[i].off < h->end - h->off)
			h = &q->hole[i];
	if (!h->end || h->end - h->off < q->cs - rem) {
		h->off = q->cur;
		h->end = q->cur + q->cs - rem;
	}
	return qcow2_writer_put(q, NULL, (size_t)(q->cs - rem), e);
}

/* The smallest hole @len bytes fit in (the first of equals), or NULL. */
static struct qcow2_writer_hole *qcow2_writer_hole_fit(struct qcow2_writer *q, uint64_t len)
{
	struct qcow2_writer_hole *best = NULL;

	for (unsigned i = 0; i < QCOW2W_HOLES; i++) {
		struct qcow2_writer_hole *h = &q->hole[i];

		if (!h->end || h->end - h->off < len ||
		    q->rc[(h->off >> q->cluster_bits) - q->rc_base] == QCOW2W_REFCOUNT_MAX)
			continue;
		if (!best || h->end - h->off < best->end - best->off ||
		    (h->end - h->off == best->end - best->off && h->off < best->off))
			best = h;
	}
	return best;
}

/* Overwrite [off, off + len), which lies before q->cur. */
static int qcow2_writer_put_at(struct qcow2_writer *q, const uint8_t *p, size_t len, uint64_t off,
		      struct err *e)
{
	if (off < q->woff) {
		size_t n = (size_t)min_u64(len, q->woff - off);
		int r = io_write(q->out, p, n, off, e);

		if (r < 0)
			return r;
		p += n;
		len -= n;
		off += n;
	}
	memcpy(q->wbuf + (off - q->woff), p, len);
	return 0;
}

/* Write @len bytes at @off, before the stream position, through wbuf. */
static int qcow2_writer_patch(struct qcow2_writer *q, const void *p, size_t len, uint64_t off,
		     struct err *e)
{
	int r = qcow2_writer_flush(q, e);

	return r < 0 ? r : io_write(q->out, p, len, off, e);
}

/* --- refcounts --------------------------------------------------------- */

/* Count one more reference to every cluster of [off, off + len). */
static int qcow2_writer_ref(struct qcow2_writer *q, uint64_t off, uint64_t len, struct err *e)
{
	uint64_t c = off >> q->cluster_bits;
	uint64_t last = (off + len - 1) >> q->cluster_bits;

	for (; c <= last; c++) {
		uint16_t *rc;

		if (c < q->rc_base || c - q->rc_base >= 2 * q->rb_entries)
			return err_set(e, -EFAULT,
				       "qcow2: cluster %llu is outside the refcount window at %llu",
				       (unsigned long long)c,
				       (unsigned long long)q->rc_base);
		rc = &q->rc[c - q->rc_base];
		if (*rc == QCOW2W_REFCOUNT_MAX)
			return err_set(e, -EFAULT, "qcow2: refcount of cluster %llu overflows",
				       (unsigned long long)c);
		(*rc)++;
	}
	return 0;
}

static int qcow2_writer_rt_add(struct qcow2_writer *q, uint64_t off, struct err *e)
{
	if (u64_room(&q->rt, &q->rt_cap, q->rt_n + 1, 64))
		return err_set(e, -ENOMEM, "qcow2: out of memory");
	q->rt[q->rt_n++] = off;
	return 0;
}

/* Append refcount block @half (0 or 1) of the window. */
static int qcow2_writer_put_refblock(struct qcow2_writer *q, unsigned half, struct err *e)
{
	const uint16_t *rc = q->rc + half * q->rb_entries;
	int r;

	for (uint64_t i = 0; i < q->rb_entries; i++)
		put_be16(q->rbbuf + 2 * i, rc[i]);
	r = qcow2_writer_rt_add(q, q->cur, e);
	return r < 0 ? r : qcow2_writer_put(q, q->rbbuf, (size_t)q->cs, e);
}

/*
 * Once the stream has passed the clusters of the window's first block,
 * their refcounts are final: write that block at the stream position
 * and slide the window.  Every placement spans at most two clusters and a
 * block counts at least 2048, so the window always holds what is counted.
 */
static int qcow2_writer_settle(struct qcow2_writer *q, struct err *e)
{
	int r;

	while ((q->cur >> q->cluster_bits) >= q->rc_base + q->rb_entries) {
		uint64_t off;

		if ((r = qcow2_writer_pad(q, e)) < 0)
			return r;
		/* Counts of the block's clusters are about to be final. */
		for (unsigned i = 0; i < QCOW2W_HOLES; i++)
			if ((q->hole[i].off >> q->cluster_bits) < q->rc_base + q->rb_entries)
				q->hole[i].off = q->hole[i].end = 0;
		off = q->cur;
		if ((r = qcow2_writer_put_refblock(q, 0, e)) < 0)
			return r;
		memmove(q->rc, q->rc + q->rb_entries, q->rb_entries * sizeof(*q->rc));
		memset(q->rc + q->rb_entries, 0, q->rb_entries * sizeof(*q->rc));
		q->rc_base += q->rb_entries;
		if ((r = qcow2_writer_ref(q, off, q->cs, e)) < 0)
			return r;
	}
	return 0;
}

/* Append a whole cluster-aligned structure (plain data, L2 table). */
static int qcow2_writer_put_cluster(struct qcow2_writer *q, const void *p, uint64_t *off,
			   struct err *e)
{
	int r;

	if ((r = qcow2_writer_pad(q, e)) < 0)
		return r;
	*off = q->cur;
	if ((r = qcow2_writer_put(q, p, (size_t)q->cs, e)) < 0 ||
	    (r = qcow2_writer_ref(q, *off, q->cs, e)) < 0)
		return r;
	return qcow2_writer_settle(q, e);
}

/* --- L1 and L2 tables -------------------------------------------------- */

static int qcow2_writer_l1_flush(struct qcow2_writer *q, struct err *e)
{
	int r;

	if (!q->l1w_used)
		return 0;
	r = qcow2_writer_patch(q, q->l1w, (size_t)q->cs, q->cs * (1 + q->l1w_index), e);
	if (r < 0)
		return r;
	memset(q->l1w, 0, (size_t)q->cs);
	q->l1w_used = 0;
	return 0;
}

static int qcow2_writer_l1_set(struct qcow2_writer *q, uint64_t index, uint64_t entry,
		      struct err *e)
{
	uint64_t per = q->cs / 8;
	int r;

	if (index / per != q->l1w_index) {
		if ((r = qcow2_writer_l1_flush(q, e)) < 0)
			return r;
		q->l1w_index = index / per;
	}
	put_be64(q->l1w + 8 * (index % per), entry);
	q->l1w_used = 1;
	return 0;
}

/* Write the L2 table being filled, if it maps anything. */
static int qcow2_writer_l2_finish(struct qcow2_writer *q, struct err *e)
{
	uint64_t off;
	int r;

	if (q->l2_index == UINT64_MAX || !q->l2_used)
		return 0;
	if ((r = qcow2_writer_put_cluster(q, q->l2, &off, e)) < 0)
		return r;
	r = qcow2_writer_l1_set(q, q->l2_index, off | QCOW2_L2E_COPIED, e);
	memset(q->l2, 0, (size_t)q->cs);
	q->l2_used = 0;
	return r;
}

/* Store disk cluster @vc: @res is QCOW2W_PLAIN or a compressed length. */
static int qcow2_writer_cluster(struct qcow2_writer *q, uint64_t vc, uint32_t res,
		       const uint8_t *data, struct err *e)
{
	uint64_t l2i = vc / q->l2_entries, off, entry;
	int r;

	if (l2i != q->l2_index) {
		if ((r = qcow2_writer_l2_finish(q, e)) < 0)
			return r;
		q->l2_index = l2i;
	}
	if (res == QCOW2W_PLAIN) {
		if ((r = qcow2_writer_put_cluster(q, data, &off, e)) < 0)
			return r;
		entry = off | QCOW2_L2E_COPIED;
	} else {
		unsigned shift = qcow2_csize_shift(q->cluster_bits);
		uint64_t nsec;

		struct qcow2_writer_hole *h = qcow2_writer_hole_fit(q, res);

		if (h) {
			/* It fits in a hole: no new space. */
			off = h->off;
			h->off += res;
			if (h->off == h->end)
				h->off = h->end = 0;
			if ((r = qcow2_writer_put_at(q, data, res, off, e)) < 0 ||
			    (r = qcow2_writer_ref(q, off, res, e)) < 0)
				return r;
		} else {
			/* A cluster shared by too many streams: start a fresh one. */
			if ((q->cur & (q->cs - 1)) &&
			    q->rc[(q->cur >> q->cluster_bits) - q->rc_base] ==
			    QCOW2W_REFCOUNT_MAX && (r = qcow2_writer_pad(q, e)) < 0)
				return r;
			off = q->cur;
			if (off >> shift)
				return err_set(e, EI_ELIMIT,
					       "qcow2: offset %llu does not fit a compressed cluster descriptor",
					       (unsigned long long)off);
			if ((r = qcow2_writer_put(q, data, res, e)) < 0 ||
			    (r = qcow2_writer_ref(q, off, res, e)) < 0 ||
			    (r = qcow2_writer_settle(q, e)) < 0)
				return r;
		}
		nsec = ((off + res - 1) >> 9) - (off >> 9);
		entry = QCOW2_L2E_COMPRESSED | nsec << shift | off;
	}
	put_be64(q->l2 + 8 * (vc % q->l2_entries), entry);
	q->l2_used = 1;
	return 0;
}

/* --- the pipeline ------------------------------------------------------ */

/* Worker: decide each cluster's fate and compress it. */
static int qcow2_writer_work(void *arg, void **ctx, struct pl_unit *u, struct err *e)
{
	const struct qcow2_writer *q = arg;
	size_t n = u->in_len >> q->cluster_bits, cs = (size_t)q->cs;

	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = u->in + i * cs;
		uint8_t *c = u->out + q->results_len + i * cs;
		uint32_t res = QCOW2W_PLAIN, hit = 0;
		uint8_t hsha[SHA256_LEN];
		size_t olen = cs - 1;
		int r = 0, raw = 0, proving = 0;

		if (buf_is_zero(p, cs)) {
			res = QCOW2W_ZERO;
			r = 1;
		} else if (q->codec && q->reuse && !reuse_refused(q->reuse)) {
			/* a cluster OLD holds, compressed as this writer would */
			r = q->reuse->lookup(q->reuse, p, cs, c, cs - 1, &olen, &raw, e);
			if (r > 0)
				res = raw ? QCOW2W_PLAIN : (uint32_t)olen;
			if (r > 0 && !reuse_trusted(q->reuse)) {
				/* compressed below, and compared with the hit */
				proving = 1;
				hit = res;
				if (!raw)
					sha256(c, olen, hsha);
				res = QCOW2W_PLAIN;
				r = 0;
			}
		}
		if (r == 0 && q->codec) {
			/* Stored compressed only when smaller than a cluster. */
			olen = cs - 1;
			r = q->codec->compress(ctx, p, cs, c, &olen, q->level, e);
			if (r == 0 && olen > 0)
				res = (uint32_t)olen;
			r = r == -ENOSPC ? 0 : r;
		}
		if (r < 0)
			return r;
		if (proving) {
			uint8_t sha[SHA256_LEN];

			if (res != QCOW2W_PLAIN)
				sha256(c, res, sha);
			reuse_proof(q->reuse, res == hit && (res == QCOW2W_PLAIN ||
							     !memcmp(sha, hsha, SHA256_LEN)));
		}
		put_le32(u->out + QCOW2W_RESULT_LEN * i, res);
	}
	return 0;
}

/* Caller's thread, in disk order: store the unit's clusters. */
static int qcow2_writer_emit(void *arg, struct pl_unit *u, struct err *e)
{
	struct qcow2_writer *q = arg;
	size_t n = u->in_len >> q->cluster_bits, cs = (size_t)q->cs;

	for (size_t i = 0; i < n; i++) {
		uint32_t res = get_le32(u->out + QCOW2W_RESULT_LEN * i);
		const uint8_t *p;
		int r;

		if (res == QCOW2W_ZERO)
			continue;
		p = res == QCOW2W_PLAIN ? u->in + i * cs :
		    u->out + q->results_len + i * cs;
		r = qcow2_writer_cluster(q, (u->off >> q->cluster_bits) + i, res, p, e);
		if (r < 0)
			return r;
	}
	return 0;
}

static void qcow2_writer_ctx_free(void *arg, void *ctx)
{
	const struct qcow2_writer *q = arg;

	if (q->codec)
		codec_ctx_free(q->codec, ctx);
	else
		free(ctx);
}

static const struct pl_ops qcow2_writer_ops = {
	.work = qcow2_writer_work,
	.emit = qcow2_writer_emit,
	.ctx_free = qcow2_writer_ctx_free,
};

/* Fill @u with the clusters [off, off + n * cs) of @src; @first is known. */
static int qcow2_writer_fill(struct qcow2_writer *q, struct vdisk *src, struct pl_unit *u,
		    uint64_t off, unsigned n, const struct extent *first,
		    struct err *e)
{
	uint64_t end = min_u64(off + ((uint64_t)n << q->cluster_bits), q->src_size);
	uint64_t pos = off;
	struct extent ext = *first;
	int r;

	while (pos < end) {
		size_t len;

		if (pos != off && (r = vdisk_extent(src, pos, end - pos, &ext, e)) < 0)
			return r;
		len = (size_t)min_u64(ext.len, end - pos);
		if (ext.type == EXT_DATA) {
			r = vdisk_read(src, u->in + (pos - off), len, pos, e);
			if (r < 0)
				return r;
		} else {
			memset(u->in + (pos - off), 0, len);
		}
		pos += len;
	}
	/* The disk's last cluster, when partial, is padded with zeros. */
	memset(u->in + (end - off), 0, (size_t)(((uint64_t)n << q->cluster_bits) - (end - off)));
	u->off = off;
	u->in_len = (size_t)n << q->cluster_bits;
	return 0;
}

static int qcow2_writer_stream(struct qcow2_writer *q, struct vdisk *src, struct pipeline *p,
		      const struct write_opts *wopts, struct err *e)
{
	uint64_t off = 0;
	int r;

	while (off < q->src_size) {
		struct extent ext;
		struct pl_unit *u;
		uint64_t left = ((q->src_size - off) + q->cs - 1) >> q->cluster_bits;
		unsigned n = (unsigned)min_u64(q->unit_clusters, left);

		r = vdisk_extent(src, off, q->src_size - off, &ext, e);
		if (r < 0)
			return r;
		if (ext.type != EXT_DATA && ext.len >= q->cs) {
			/* Whole clusters that read as zero: nothing to store. */
			off += ext.len & ~(q->cs - 1);
			continue;
		}
		u = pipeline_get(p, e);
		if (!u)
			return e->code ? e->code : -EIO;
		r = qcow2_writer_fill(q, src, u, off, n, &ext, e);
		if (r < 0)
			return r;
		r = pipeline_submit(p, u, e);
		if (r < 0)
			return r;
		off += u->in_len;
		if (wopts->progress)
			wopts->progress(wopts->progress_arg, min_u64(off, q->src_size), q->src_size);
	}
	r = pipeline_finish(p, e);
	if (r < 0)
		return r;
	if (wopts->progress)
		wopts->progress(wopts->progress_arg, q->src_size, q->src_size);
	return 0;
}

/* --- the end: refcount blocks, refcount table, header ------------------ */

static int qcow2_writer_tail(struct qcow2_writer *q, uint64_t *rt_off, uint64_t *rt_clusters,
		    struct err *e)
{
	uint64_t k = q->rc_base / q->rb_entries, c0, m, rtc, end, off;
	int r;

	if ((r = qcow2_writer_pad(q, e)) < 0)
		return r;
	c0 = q->cur >> q->cluster_bits;
	/* The smallest number of blocks that also counts the blocks and table. */
	for (m = k;; m++) {
		rtc = ((m + 1) * 8 + q->cs - 1) >> q->cluster_bits;
		end = c0 + (m - k + 1) + rtc;
		if (end <= (m + 1) * q->rb_entries)
			break;
	}
	if (m > k + 1)
		return err_set(e, -EFAULT, "qcow2: the refcount tail needs %llu blocks",
			       (unsigned long long)(m - k + 1));
	if ((r = qcow2_writer_ref(q, c0 << q->cluster_bits,
			 (end - c0) << q->cluster_bits, e)) < 0)
		return r;
	for (uint64_t j = k; j <= m; j++)
		if ((r = qcow2_writer_put_refblock(q, (unsigned)(j - k), e)) < 0)
			return r;
	*rt_off = q->cur;
	*rt_clusters = rtc;
	for (uint64_t i = 0; i < q->rt_n; i++) {
		uint8_t b[8];

		put_be64(b, q->rt[i]);
		if ((r = qcow2_writer_put(q, b, 8, e)) < 0)
			return r;
	}
	if ((r = qcow2_writer_pad(q, e)) < 0)
		return r;
	off = q->cur;
	if (off != end << q->cluster_bits)
		return err_set(e, -EFAULT, "qcow2: image ends at %llu, not %llu",
			       (unsigned long long)off,
			       (unsigned long long)(end << q->cluster_bits));
	return qcow2_writer_flush(q, e);
}

static int qcow2_writer_header(struct qcow2_writer *q, uint64_t rt_off, uint64_t rt_clusters,
		      struct err *e)
{
	struct qcow2_header h = {
		.magic = QCOW2_MAGIC,
		.version = q->version,
		.cluster_bits = q->cluster_bits,
		.size = q->size,
		.l1_size = q->l1_size,
		.l1_table_offset = q->l1_size ? q->cs : 0,
		.refcount_table_offset = rt_off,
		.refcount_table_clusters = (uint32_t)rt_clusters,
		.refcount_order = QCOW2W_REFCOUNT_ORDER,
		.compression_type = (uint8_t)q->compression_type,
	};
	uint8_t buf[QCOW2_HEADER_V3_LEN + 2 * QCOW2_EXT_HEADER_LEN + QCOW2_RECIPE_MAX + 8];
	size_t len = q->version == 3 ? QCOW2_HEADER_V3_LEN : QCOW2_HEADER_V2_LEN;
	size_t rlen = strlen(q->recipe);

	memset(buf, 0, sizeof(buf));
	if (q->version == 3) {
		h.header_length = QCOW2_HEADER_V3_LEN;
		if (q->compression_type != QCOW2_COMPRESSION_ZLIB)
			h.incompatible_features = QCOW2_INCOMPAT_COMPRESSION;
	}
	qcow2_header_encode(&h, buf);
	put_be32(buf + len, QCOW2_EXT_RECIPE);
	put_be32(buf + len + 4, (uint32_t)rlen);
	memcpy(buf + len + QCOW2_EXT_HEADER_LEN, q->recipe, rlen);
	len += QCOW2_EXT_HEADER_LEN + ((rlen + 7) & ~(size_t)7);
	len += QCOW2_EXT_HEADER_LEN;    /* the end-of-extensions mark, zeros */
	return io_write(q->out, buf, len, 0, e);
}

/* --- options ----------------------------------------------------------- */

enum { Q2O_COMPAT, Q2O_CLUSTER_SIZE, Q2O_COMPRESSION_TYPE, Q2O_COMPRESS, Q2O_LEVEL };

/* level: the range and default of each codec. */
static void qcow2_writer_level_describe(const struct opt_desc *d, char *buf, size_t len)
{
	const struct codec *z = codec_find("deflate"), *s = codec_find("zstd");
	size_t at = 0;

	(void)d;
	if (z)
		at = text_addf(buf, len, at, "zlib %d..%d (default %d)",
			       z->level_min, z->level_max, z->level_default);
	if (s)
		text_addf(buf, len, at, "%szstd %d..%d (default %d)", at ? ", " : "",
			  s->level_min, s->level_max, s->level_default);
}

const struct opt_desc qcow2_write_options[] = {
	[Q2O_COMPAT] = { "compat", "0.10|1.1", "1.1",
		"qcow2 version: 1.1 (or v3) is version 3, 0.10 (or v2) version 2 for old QEMU" },
	[Q2O_CLUSTER_SIZE] = { "cluster_size", "a power of two from 4 KiB to 2 MiB", "65536",
		"bytes per cluster (64k, 1M, ...): larger ones compress better",
		1u << QCOW2W_MIN_CLUSTER_BITS, 1u << QCOW2W_MAX_CLUSTER_BITS, 1 },
	[Q2O_COMPRESSION_TYPE] = { "compression_type",
		IS_ENABLED(CONFIG_CODEC_ZSTD) ? "zlib|zstd" : "zlib", EI_DEFAULT_CODEC,
		"codec of compressed clusters; zstd needs compat=1.1" },
	[Q2O_COMPRESS] = { "compress", "on|off", "off",
		"store clusters compressed where that is smaller (what -c does)" },
	[Q2O_LEVEL] = { "level", NULL, NULL,
		"compression level, with -c or compress=on",
		.describe = qcow2_writer_level_describe },
	CODEC_LIBRARY_OPTION("deflate"),
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
	CODEC_LIBRARY_OPTION("zstd"),
#endif
	{ NULL },
};

static const char *qcow2_writer_ctype_name(unsigned type)
{
	return type == QCOW2_COMPRESSION_ZLIB ? "zlib" : "zstd";
}

int qcow2_opts_parse(struct opts *o, const struct write_opts *wopts, void *parsed,
		     struct err *e)
{
	const struct opt_desc *d = qcow2_write_options;
	const char *compat = opts_get(o, "compat"), *compress, *level;
	struct qcow2_wopts q = { 0 };
	uint64_t cs = 0, lv;
	int on, r;

	_Static_assert(sizeof(q) <= WRITE_PARSED_MAX, "struct qcow2_wopts is too large");
	/* QEMU's other names for the versions. */
	if (compat && !strcmp(compat, "v3"))
		compat = "1.1";
	else if (compat && !strcmp(compat, "v2"))
		compat = "0.10";
	if ((r = opt_choice(&d[Q2O_COMPAT], compat, "qcow2", e)) < 0)
		return r;
	q.version = r == 0 ? 2 : 3;
	r = opt_number(&d[Q2O_CLUSTER_SIZE], opts_get(o, "cluster_size"), &cs, "qcow2", e);
	if (r < 0)
		return r;
	q.cluster_bits = (unsigned)__builtin_ctzll(cs);
	r = opt_choice(&d[Q2O_COMPRESSION_TYPE], opts_get(o, "compression_type"), "qcow2", e);
	if (r < 0)
		return r;
	q.compression_type = r == 0 ? QCOW2_COMPRESSION_ZLIB : QCOW2_COMPRESSION_ZSTD;
	if (q.version == 2 && q.compression_type != QCOW2_COMPRESSION_ZLIB)
		return err_set(e, EI_EUSAGE, "qcow2: compression_type=%s needs compat=1.1",
			       qcow2_writer_ctype_name(q.compression_type));
	compress = opts_get(o, "compress");
	if ((r = opt_choice(&d[Q2O_COMPRESS], compress, "qcow2", e)) < 0)
		return r;
	if (wopts->compress && compress && r == 1)
		return err_set(e, EI_EUSAGE, "qcow2: -c contradicts compress=off");
	on = wopts->compress || r == 0;
	level = opts_get(o, "level");
	if (on) {
		q.codec = codec_find(q.compression_type == QCOW2_COMPRESSION_ZLIB ?
				     "deflate" : "zstd");
		if (!q.codec)
			return err_set(e, EI_EUNSUP, "qcow2: no codec for %s",
				       qcow2_writer_ctype_name(q.compression_type));
		q.level = q.codec->level_default;
		if (level) {
			if (parse_size(level, &lv) < 0 || lv < (uint64_t)q.codec->level_min ||
			    lv > (uint64_t)q.codec->level_max)
				return err_set(e, EI_EUSAGE, "qcow2: level=%s is not in %d..%d for %s",
					       level, q.codec->level_min, q.codec->level_max,
					       qcow2_writer_ctype_name(q.compression_type));
			q.level = (int)lv;
		}
	} else if (level) {
		return err_set(e, EI_EUSAGE, "qcow2: level needs compression (-c)");
	}
	/* Compressed bytes differ between libraries: the recipe names it. */
	r = codec_library_opts(o, q.codec, "qcow2", e);
	if (r < 0)
		return r;
	memcpy(parsed, &q, sizeof(q));
	return 0;
}

/* The recipe: every option, defaults spelled out, in this order. */
static void qcow2_writer_recipe(struct qcow2_writer *q)
{
	int n = snprintf(q->recipe, sizeof(q->recipe),
			 "format=qcow2,writer=%s,compat=%s,cluster_size=%llu,compression_type=%s,compress=%s",
			 EDGEIMG_VERSION, q->version == 3 ? "1.1" : "0.10",
			 (unsigned long long)q->cs, qcow2_writer_ctype_name(q->compression_type),
			 q->codec ? "on" : "off");

	if (q->codec && n > 0 && (size_t)n < sizeof(q->recipe)) {
		char lib[64];
		const char *key = codec_library(q->codec, lib, sizeof(lib));

		snprintf(q->recipe + n, sizeof(q->recipe) - (size_t)n, ",level=%d,%s=%s",
			 q->level, key, lib);
	}
}

/* --- the writer -------------------------------------------------------- */

static void qcow2_writer_free(struct qcow2_writer *q)
{
	free(q->wbuf);
	free(q->l2);
	free(q->l1w);
	free(q->rc);
	free(q->rbbuf);
	free(q->rt);
}

/* The writer's compression, from its parsed options. */
static void qcow2_writer_setup(struct qcow2_writer *q, const struct write_parsed *parsed)
{
	struct qcow2_wopts opt;

	memcpy(&opt, parsed->priv.bytes, sizeof(opt));
	q->version = opt.version;
	q->cluster_bits = opt.cluster_bits;
	q->cs = 1ULL << opt.cluster_bits;
	q->compression_type = opt.compression_type;
	q->codec = opt.codec;
	q->level = opt.level;
	qcow2_writer_recipe(q);
}

void qcow2_write_recipe(const struct write_parsed *parsed, int tree, char *buf, size_t len)
{
	struct qcow2_writer q = { .l2_index = UINT64_MAX };

	(void)tree;
	qcow2_writer_setup(&q, parsed);
	snprintf(buf, len, "%s", q.recipe);
}

int qcow2_write(struct vdisk *src, struct io *out, const struct write_opts *wopts,
		struct err *e)
{
	struct qcow2_writer q = { .out = out, .l2_index = UINT64_MAX };
	struct write_parsed tmp;
	const struct write_parsed *parsed;
	struct pipeline *p = NULL;
	uint64_t l2_span, l1_size, fixed, ctx, rt_off = 0, rt_clusters = 0;
	size_t in_cap, out_cap;
	unsigned threads;
	int r;

	r = format_write_opts(&fmt_qcow2, wopts, &tmp, &parsed, e);
	if (r < 0)
		return r;
	qcow2_writer_setup(&q, parsed);
	q.reuse = wopts->reuse;
	/* QEMU counts a disk in 512-byte sectors: a partial one is padded. */
	if (src->size > UINT64_MAX - 511)
		return err_set(e, EI_ELIMIT, "qcow2: disk of %llu bytes is too large",
			       (unsigned long long)src->size);
	q.size = (src->size + 511) & ~511ULL;
	q.src_size = src->size;
	q.l2_entries = q.cs / 8;
	q.rb_entries = q.cs / 2;
	/* The L1 table: QEMU opens none above 32 MiB. */
	l2_span = q.l2_entries << q.cluster_bits;
	l1_size = q.size / l2_span + (q.size % l2_span != 0);
	if (l1_size * 8 > QCOW2_MAX_L1_BYTES)
		return err_set(e, EI_ELIMIT,
			       "qcow2: a %llu-byte disk needs an L1 table of %llu bytes, above QEMU's %u; use a larger cluster_size",
			       (unsigned long long)q.size,
			       (unsigned long long)(l1_size * 8), QCOW2_MAX_L1_BYTES);
	q.l1_size = (uint32_t)l1_size;
	q.l1_clusters = (l1_size * 8 + q.cs - 1) >> q.cluster_bits;
	/* Header and L1 are counted by the first refcount block (4 KiB: 2 TiB). */
	if (1 + q.l1_clusters > q.rb_entries)
		return err_set(e, EI_ELIMIT,
			       "qcow2: a %llu-byte disk needs %llu L1 clusters, more than one refcount block counts; use a larger cluster_size",
			       (unsigned long long)q.size,
			       (unsigned long long)q.l1_clusters);

	q.unit_clusters = (unsigned)(q.cs >= QCOW2W_UNIT ? 1 : QCOW2W_UNIT / q.cs);
	q.results_len = (QCOW2W_RESULT_LEN * q.unit_clusters + QCOW2W_RESULTS_ALIGN - 1) &
			~(size_t)(QCOW2W_RESULTS_ALIGN - 1);
	in_cap = (size_t)q.unit_clusters << q.cluster_bits;
	out_cap = q.results_len + (q.codec ? in_cap : 0);
	/*
	 * Besides the pipeline: wbuf, L2, L1 window, 2 + 1 refcount blocks;
	 * per thread a codec state; the program itself when the cap leaves
	 * room for it.  Fewer threads when one unit each would not fit.
	 */
	fixed = QCOW2W_WBUF + 5 * q.cs;
	ctx = q.codec ? QCOW2W_CTX(q.cs) : 0;
	if (wopts->mem_cap < fixed + ctx + in_cap + out_cap)
		return err_set(e, EI_ELIMIT,
			       "qcow2: the memory cap of %llu bytes is below the %llu the writer needs",
			       (unsigned long long)wopts->mem_cap,
			       (unsigned long long)(fixed + ctx + in_cap + out_cap));
	if (wopts->mem_cap >= fixed + QCOW2W_BASELINE + ctx + in_cap + out_cap)
		fixed += QCOW2W_BASELINE;
	threads = wopts->threads ? wopts->threads : 1;
	while (threads > 1 && fixed + threads * (ctx + in_cap + out_cap) > wopts->mem_cap)
		threads--;
	q.wbuf = malloc(QCOW2W_WBUF);
	q.l2 = calloc(1, (size_t)q.cs);
	q.l1w = calloc(1, (size_t)q.cs);
	q.rc = calloc(2 * q.rb_entries, sizeof(*q.rc));
	q.rbbuf = malloc((size_t)q.cs);
	if (!q.wbuf || !q.l2 || !q.l1w || !q.rc || !q.rbbuf) {
		r = err_set(e, -ENOMEM, "qcow2: out of memory");
		goto out;
	}
	r = pipeline_new(&qcow2_writer_ops, &q, threads, in_cap, out_cap,
			 wopts->mem_cap - fixed - threads * ctx, &p, e);
	if (r < 0)
		goto out;

	/* Header and L1 clusters: zeros in the stream, patched later. */
	if ((r = qcow2_writer_put(&q, NULL, (size_t)((1 + q.l1_clusters) << q.cluster_bits), e)) < 0 ||
	    (r = qcow2_writer_ref(&q, 0, (1 + q.l1_clusters) << q.cluster_bits, e)) < 0 ||
	    (r = qcow2_writer_settle(&q, e)) < 0)
		goto out;
	q.l1w_index = 0;
	r = qcow2_writer_stream(&q, src, p, wopts, e);
	if (r < 0)
		goto out;
	if ((r = qcow2_writer_l2_finish(&q, e)) < 0 ||
	    (r = qcow2_writer_l1_flush(&q, e)) < 0 ||
	    (r = qcow2_writer_tail(&q, &rt_off, &rt_clusters, e)) < 0)
		goto out;
	r = qcow2_writer_header(&q, rt_off, rt_clusters, e);
out:
	pipeline_free(p);
	qcow2_writer_free(&q);
	return r;
}
