// SPDX-License-Identifier: MIT
/*
 * qcow2 metadata beyond the disk's content: the consistency check of
 * "qemu-img check" and the recipe an edgeimg writer left in the header.
 * Spec: QEMU docs/interop/qcow2.txt and docs/interop/bitmaps; the check
 * counts what QEMU's qcow2_check_refcounts() counts (block/qcow2-refcount.c):
 * every reference from the header, the L1/L2 tables of the active state
 * and of each snapshot, the snapshot table, the refcount table and blocks,
 * the crypto header and persistent bitmaps, against the stored refcounts.
 *
 * Memory: one counter per cluster of the file (2 bytes, 4 for refcounts
 * wider than 16 bits), refused above EI_MAX_TABLE; the refcount table
 * (at most 8 MiB, as QEMU); one L2 table; four refcount blocks; a chunk of
 * an L1 table.  Reads past the end of the file see zeros, as in QEMU.
 * Time: tables are read where they lie inside the file, at most
 * Q2C_SCAN_FACTOR times the file size plus Q2C_SCAN_EXTRA bytes in all
 * (L1 tables shared by thousands of snapshots, or one L2 table referenced
 * a million times, would otherwise keep the check busy for hours).
 */
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "core/limits.h"
#include "qcow2.h"
#include "qcow2-write.h"

#define Q2C_L1_CHUNK 4096               /* L1 entries read at once */
#define Q2C_RB_CACHE 4                  /* refcount blocks cached */
#define Q2C_SCAN_FACTOR 8
#define Q2C_SCAN_EXTRA (256ULL << 20)

/* Reserved bits, as QEMU defines them. */
#define Q2C_L1E_RESERVED 0x7f000000000001ffULL
#define Q2C_L2E_STD_RESERVED 0x3f000000000001feULL
#define Q2C_REFT_RESERVED 0x1ffULL
#define Q2C_BME_RESERVED 0xff000000000001feULL
#define Q2C_BME_OFFSET_MASK 0x00fffffffffffe00ULL

/* Bitmaps: directory entry fields and QEMU's limits (block/qcow2-bitmap.c). */
#define Q2C_BM_TABLE_OFFSET 0           /* u64 */
#define Q2C_BM_TABLE_SIZE 8             /* u32 */
#define Q2C_BM_NAME_SIZE 18             /* u16 */
#define Q2C_BM_EXTRA_SIZE 20            /* u32 */
#define Q2C_BM_ENTRY_LEN 24
#define Q2C_BM_MAX_DIR (64ULL << 20)
#define Q2C_BM_MAX_TABLE (0x8000000u)   /* entries of one bitmap table */
#define Q2C_BM_MAX_COUNT 65535u

enum q2c_type { Q2C_UNALLOCATED, Q2C_ZERO_PLAIN, Q2C_ZERO_ALLOC, Q2C_NORMAL,
		Q2C_COMPRESSED };

struct q2c {
	struct io *io;
	struct check_result *res;
	struct qcow2_header h;
	unsigned cb;
	uint64_t cs;
	uint64_t file_size;
	int extl2, data_file;
	unsigned l2_entry_len;
	uint64_t l2_size;               /* entries per L2 table */
	uint64_t refcount_max;
	unsigned rb_bits;               /* log2 of refcounts per block */

	/* References counted, one per cluster of the file (and one past). */
	void *ref;
	int wide;                       /* uint32_t counters, else uint16_t */
	uint64_t nref, ref_cap;

	uint64_t *rt;                   /* the stored refcount table */
	uint64_t rt_size;

	uint8_t *l2;                    /* one L2 table */
	uint8_t *l1;                    /* Q2C_L1_CHUNK entries */
	uint8_t *rb[Q2C_RB_CACHE];      /* cached refcount blocks */
	uint64_t rb_off[Q2C_RB_CACHE];  /* their offsets, 0: none */

	uint64_t crypto_off, crypto_len;
	uint32_t nb_bitmaps;
	uint64_t bm_dir_off, bm_dir_size;
	uint64_t snapshots_size;
	uint64_t scan_left;             /* bytes of tables still to be read */
	int scan_over;                  /* ... and none were left */
};

static int q2c_scan_err(const struct q2c *q, struct err *e)
{
	return err_set(e, EI_ELIMIT,
		       "qcow2: the tables reference more than %llu times the file's %llu bytes; not checked",
		       (unsigned long long)Q2C_SCAN_FACTOR,
		       (unsigned long long)q->file_size);
}

/* Charge @len bytes of table reading at @off; past the end of the file is free. */
static int q2c_scan(struct q2c *q, uint64_t off, uint64_t len, struct err *e)
{
	if (off >= q->file_size)
		return 0;
	if (q->scan_over || len > q->scan_left) {
		q->scan_over = 1;
		return q2c_scan_err(q, e);
	}
	q->scan_left -= len;
	return 0;
}

/* Read @len bytes at @off; what lies past the end of the file reads as zeros. */
static int q2c_pread(struct q2c *q, void *buf, size_t len, uint64_t off,
		     const char *what, struct err *e)
{
	size_t in = 0;

	if (off < q->file_size)
		in = (size_t)min_u64(len, q->file_size - off);
	if (len > in)
		memset((uint8_t *)buf + in, 0, len - in);
	return in ? io_read(q->io, buf, in, off, what, e) : 0;
}

/* --- counted references ------------------------------------------------ */

static uint64_t q2c_ref_get(const struct q2c *q, uint64_t k)
{
	return q->wide ? ((uint32_t *)q->ref)[k] : ((uint16_t *)q->ref)[k];
}

static void q2c_ref_set(struct q2c *q, uint64_t k, uint64_t v)
{
	if (q->wide)
		((uint32_t *)q->ref)[k] = (uint32_t)v;
	else
		((uint16_t *)q->ref)[k] = (uint16_t)v;
}

/* QEMU's qcow2_inc_refcounts_imrt(): one more reference to each cluster. */
static void q2c_inc(struct q2c *q, uint64_t offset, uint64_t size)
{
	uint64_t start, last;

	if (!size)
		return;
	/* The last cluster may be partly allocated, never a whole one past EOF. */
	if (offset >= UINT64_MAX / 2 || size >= UINT64_MAX / 2 ||
	    (offset + size > q->file_size &&
	     offset + size - q->file_size >= q->cs)) {
		check_report(q->res,
			     "ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0x%llx size 0x%llx",
			     (unsigned long long)offset, (unsigned long long)size);
		q->res->corruptions++;
		return;
	}
	start = offset >> q->cb;
	last = (offset + size - 1) >> q->cb;
	for (uint64_t k = start; k <= last; k++) {
		uint64_t v;

		/* ref_cap covers the file plus one cluster: never exceeded. */
		if (k >= q->nref)
			q->nref = k + 1;
		v = q2c_ref_get(q, k);
		if (v == q->refcount_max) {
			check_report(q->res, "ERROR: overflow cluster offset=0x%llx",
				     (unsigned long long)(k << q->cb));
			q->res->corruptions++;
			continue;
		}
		q2c_ref_set(q, k, v + 1);
	}
}

/* --- stored refcounts -------------------------------------------------- */

static uint64_t q2c_rb_entry(const struct q2c *q, const uint8_t *b, uint64_t i)
{
	switch (q->h.refcount_order) {
	case 0: return (b[i / 8] >> (i % 8)) & 1;
	case 1: return (b[i / 4] >> (2 * (i % 4))) & 3;
	case 2: return (b[i / 2] >> (4 * (i % 2))) & 15;
	case 3: return b[i];
	case 4: return get_be16(b + 2 * i);
	case 5: return get_be32(b + 4 * i);
	default: return get_be64(b + 8 * i);
	}
}

/* QEMU's qcow2_get_refcount(): the stored refcount of cluster @k. */
static int q2c_stored(struct q2c *q, uint64_t k, uint64_t *v, struct err *e)
{
	uint64_t idx = k >> q->rb_bits, off;
	unsigned slot;
	int r;

	*v = 0;
	if (idx >= q->rt_size)
		return 0;
	off = q->rt[idx] & QCOW2_REFT_OFFSET_MASK;
	if (!off)
		return 0;
	if (off & (q->cs - 1))
		return err_set(e, -EIO,
			       "refblock offset 0x%llx unaligned (reftable index: 0x%llx)",
			       (unsigned long long)off, (unsigned long long)idx);
	/* A block past the end of the file reads as zeros. */
	if (off >= q->file_size)
		return 0;
	slot = (unsigned)(idx % Q2C_RB_CACHE);
	if (q->rb_off[slot] != off) {
		q->rb_off[slot] = 0;
		if ((r = q2c_scan(q, off, q->cs, e)) < 0)
			return r;
		r = q2c_pread(q, q->rb[slot], (size_t)q->cs, off,
			      "qcow2: refcount block", e);
		if (r < 0)
			return r;
		q->rb_off[slot] = off;
	}
	*v = q2c_rb_entry(q, q->rb[slot], k & ((1ULL << q->rb_bits) - 1));
	return 0;
}

/* --- L1 and L2 tables -------------------------------------------------- */

static enum q2c_type q2c_type(const struct q2c *q, uint64_t l2e)
{
	if (l2e & QCOW2_L2E_COMPRESSED)
		return Q2C_COMPRESSED;
	if ((l2e & QCOW2_L2E_ZERO) && !q->extl2)
		return (l2e & QCOW2_L2E_OFFSET_MASK) ? Q2C_ZERO_ALLOC : Q2C_ZERO_PLAIN;
	if (!(l2e & QCOW2_L2E_OFFSET_MASK))
		return q->data_file && (l2e & QCOW2_L2E_COPIED) ? Q2C_NORMAL :
		       Q2C_UNALLOCATED;
	return Q2C_NORMAL;
}

static void q2c_l2_get(const struct q2c *q, uint64_t i, uint64_t *l2e,
		       uint64_t *bitmap)
{
	*l2e = get_be64(q->l2 + i * q->l2_entry_len);
	*bitmap = q->extl2 ? get_be64(q->l2 + i * q->l2_entry_len + 8) : 0;
}

/* QEMU's check_refcounts_l2(). */
static int q2c_l2(struct q2c *q, uint64_t l2_off, int frag, struct err *e)
{
	struct check_result *res = q->res;
	uint64_t next_contiguous = 0;
	int r;

	/* A table wholly past the end reads as zeros: it maps nothing. */
	if (l2_off >= q->file_size)
		return 0;
	if ((r = q2c_scan(q, l2_off, q->cs, e)) < 0)
		return r;
	r = q2c_pread(q, q->l2, (size_t)(q->l2_size * q->l2_entry_len), l2_off,
		      "qcow2: L2 table", e);
	if (r < 0) {
		check_report(res, "ERROR: I/O error in check_refcounts_l2");
		res->check_errors++;
		return r;
	}
	for (uint64_t i = 0; i < q->l2_size; i++) {
		uint64_t l2e, bitmap, off;
		enum q2c_type type;

		q2c_l2_get(q, i, &l2e, &bitmap);
		type = q2c_type(q, l2e);
		if (type != Q2C_COMPRESSED && (l2e & Q2C_L2E_STD_RESERVED)) {
			check_report(res, "ERROR found l2 entry with reserved bits set: %llx",
				     (unsigned long long)l2e);
			res->corruptions++;
		}
		switch (type) {
		case Q2C_COMPRESSED:
			if (l2e & QCOW2_L2E_COPIED) {
				check_report(res,
					     "ERROR: coffset=0x%llx: copied flag must never be set for compressed clusters",
					     (unsigned long long)qcow2_comp_offset(l2e, q->cb));
				l2e &= ~QCOW2_L2E_COPIED;
				res->corruptions++;
			}
			if (q->data_file) {
				check_report(res, "ERROR compressed cluster %llu with data file, entry=0x%llx",
					     (unsigned long long)i, (unsigned long long)l2e);
				res->corruptions++;
				break;
			}
			if (bitmap) {
				check_report(res,
					     "ERROR compressed cluster %llu with non-zero subcluster allocation bitmap, entry=0x%llx",
					     (unsigned long long)i, (unsigned long long)l2e);
				res->corruptions++;
				break;
			}
			q2c_inc(q, qcow2_comp_offset(l2e, q->cb), qcow2_comp_size(l2e, q->cb));
			if (frag) {
				res->allocated_clusters++;
				res->compressed_clusters++;
				res->fragmented_clusters++;
			}
			break;
		case Q2C_ZERO_ALLOC:
		case Q2C_NORMAL:
			off = l2e & QCOW2_L2E_OFFSET_MASK;
			if ((bitmap >> 32) & bitmap) {
				res->corruptions++;
				check_report(res,
					     "ERROR offset=%llx: Allocated cluster has corrupted subcluster allocation bitmap",
					     (unsigned long long)off);
			}
			if (off & (q->cs - 1)) {
				int data = q->extl2 ? !!(bitmap & QCOW2_SC_ALLOC_ALL) :
					   !(l2e & QCOW2_L2E_ZERO);

				res->corruptions++;
				check_report(res, data ?
					     "ERROR offset=%llx: Data cluster is not properly aligned; L2 entry corrupted." :
					     "ERROR offset=%llx: Preallocated cluster is not properly aligned; L2 entry corrupted.",
					     (unsigned long long)off);
			}
			if (frag) {
				res->allocated_clusters++;
				if (next_contiguous && off != next_contiguous)
					res->fragmented_clusters++;
				next_contiguous = off + q->cs;
			}
			if (!q->data_file)
				q2c_inc(q, off, q->cs);
			break;
		case Q2C_ZERO_PLAIN:
			break;
		case Q2C_UNALLOCATED:
			if (bitmap & QCOW2_SC_ALLOC_ALL) {
				res->corruptions++;
				check_report(res,
					     "ERROR: Unallocated cluster has non-zero subcluster allocation map");
			}
			break;
		}
	}
	return 0;
}

/* QEMU's check_refcounts_l1(), reading the table a chunk at a time. */
static int q2c_l1(struct q2c *q, uint64_t l1_off, uint64_t l1_size, int frag,
		  struct err *e)
{
	struct check_result *res = q->res;
	int r;

	if (!l1_size)
		return 0;
	q2c_inc(q, l1_off, l1_size * 8);
	for (uint64_t base = 0; base < l1_size; base += Q2C_L1_CHUNK) {
		uint64_t n = min_u64(Q2C_L1_CHUNK, l1_size - base);

		/* Entries past the end of the file are zeros: nothing more. */
		if (l1_off + base * 8 >= q->file_size)
			break;
		if ((r = q2c_scan(q, l1_off + base * 8, n * 8, e)) < 0)
			return r;
		r = q2c_pread(q, q->l1, (size_t)(n * 8), l1_off + base * 8,
			      "qcow2: L1 table", e);
		if (r < 0) {
			check_report(res, "ERROR: I/O error in check_refcounts_l1");
			res->check_errors++;
			return r;
		}
		for (uint64_t i = 0; i < n; i++) {
			uint64_t l1e = get_be64(q->l1 + 8 * i), l2_off;

			if (!l1e)
				continue;
			if (l1e & Q2C_L1E_RESERVED) {
				check_report(res, "ERROR found L1 entry with reserved bits set: %llx",
					     (unsigned long long)l1e);
				res->corruptions++;
			}
			l2_off = l1e & QCOW2_L1E_OFFSET_MASK;
			q2c_inc(q, l2_off, q->cs);
			if (l2_off & (q->cs - 1)) {
				check_report(res,
					     "ERROR l2_offset=%llx: Table is not cluster aligned; L1 entry corrupted",
					     (unsigned long long)l2_off);
				res->corruptions++;
			}
			r = q2c_l2(q, l2_off, frag, e);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* --- snapshots and bitmaps --------------------------------------------- */

/* Each snapshot's L1 table, then the snapshot table itself. */
static int q2c_snapshots(struct q2c *q, struct err *e)
{
	uint64_t pos = q->h.snapshots_offset;
	uint8_t sn[QCOW2_SN_HEADER_LEN];
	int r;

	for (uint32_t i = 0; i < q->h.nb_snapshots; i++) {
		uint64_t l1_off, len;
		uint32_t l1_size, extra;
		uint16_t id_size, name_size;

		r = io_read(q->io, sn, sizeof(sn), pos, "qcow2: snapshot table", e);
		if (r < 0)
			return r;
		l1_off = get_be64(sn + QCOW2_SN_L1_OFFSET);
		l1_size = get_be32(sn + QCOW2_SN_L1_SIZE);
		id_size = get_be16(sn + QCOW2_SN_ID_SIZE);
		name_size = get_be16(sn + QCOW2_SN_NAME_SIZE);
		extra = get_be32(sn + QCOW2_SN_EXTRA_SIZE);
		if (extra > QCOW2_MAX_SNAPSHOT_EXTRA)
			return err_set(e, EI_ECORRUPT,
				       "qcow2: snapshot %u: extra data of %u bytes, above %u",
				       i, extra, QCOW2_MAX_SNAPSHOT_EXTRA);
		len = (QCOW2_SN_HEADER_LEN + (uint64_t)extra + id_size + name_size + 7) & ~7ULL;
		pos += len;
		q->snapshots_size += len;
		if (q->snapshots_size > QCOW2_MAX_SNAPSHOTS_BYTES)
			return err_set(e, EI_ECORRUPT,
				       "qcow2: snapshot table exceeds %llu bytes",
				       (unsigned long long)QCOW2_MAX_SNAPSHOTS_BYTES);
		if (l1_off & (q->cs - 1)) {
			check_report(q->res,
				     "ERROR snapshot %u l1_offset=%#llx: L1 table is not cluster aligned; snapshot table entry corrupted",
				     i, (unsigned long long)l1_off);
			q->res->corruptions++;
			continue;
		}
		if (l1_size > QCOW2_MAX_L1_BYTES / 8) {
			check_report(q->res,
				     "ERROR snapshot %u l1_size=%#x: L1 table is too large; snapshot table entry corrupted",
				     i, l1_size);
			q->res->corruptions++;
			continue;
		}
		r = q2c_l1(q, l1_off, l1_size, 0, e);
		if (r < 0)
			return r;
	}
	q2c_inc(q, q->h.snapshots_offset, q->snapshots_size);
	return 0;
}

/* QEMU's qcow2_check_bitmaps_refcounts(). */
static int q2c_bitmaps(struct q2c *q, struct err *e)
{
	uint64_t pos = q->bm_dir_off, end = q->bm_dir_off + q->bm_dir_size;
	uint8_t ent[Q2C_BM_ENTRY_LEN], tb[8 * 512];
	int r;

	if (!q->nb_bitmaps)
		return 0;
	q2c_inc(q, q->bm_dir_off, q->bm_dir_size);
	for (uint32_t i = 0; i < q->nb_bitmaps; i++) {
		uint64_t toff;
		uint32_t tsize;

		if (pos + Q2C_BM_ENTRY_LEN > end) {
			q->res->corruptions++;
			return err_set(e, EI_ECORRUPT,
				       "qcow2: bitmap directory of %llu bytes holds fewer than %u bitmaps",
				       (unsigned long long)q->bm_dir_size, q->nb_bitmaps);
		}
		r = io_read(q->io, ent, sizeof(ent), pos, "qcow2: bitmap directory", e);
		if (r < 0) {
			q->res->corruptions++;
			return r;
		}
		toff = get_be64(ent + Q2C_BM_TABLE_OFFSET);
		tsize = get_be32(ent + Q2C_BM_TABLE_SIZE);
		pos += (Q2C_BM_ENTRY_LEN + (uint64_t)get_be32(ent + Q2C_BM_EXTRA_SIZE) +
			get_be16(ent + Q2C_BM_NAME_SIZE) + 7) & ~7ULL;
		if (tsize > Q2C_BM_MAX_TABLE || (toff & (q->cs - 1))) {
			q->res->corruptions++;
			return err_set(e, EI_ECORRUPT,
				       "qcow2: bitmap %u: table of %u entries at 0x%llx is invalid",
				       i, tsize, (unsigned long long)toff);
		}
		q2c_inc(q, toff, (uint64_t)tsize * 8);
		if ((r = q2c_scan(q, toff, (uint64_t)tsize * 8, e)) < 0)
			return r;
		for (uint64_t j = 0; j < tsize; j++) {
			uint64_t be, boff;

			if (j % 512 == 0) {
				r = io_read(q->io, tb, (size_t)(8 * min_u64(512, tsize - j)),
					    toff + 8 * j, "qcow2: bitmap table", e);
				if (r < 0) {
					q->res->corruptions++;
					return r;
				}
			}
			be = get_be64(tb + 8 * (j % 512));
			boff = be & Q2C_BME_OFFSET_MASK;
			if ((be & Q2C_BME_RESERVED) ||
			    (boff && ((be & 1) || (boff & (q->cs - 1))))) {
				q->res->corruptions++;
				continue;
			}
			if (boff)
				q2c_inc(q, boff, q->cs);
		}
	}
	return 0;
}

/* --- refcount structures ----------------------------------------------- */

/* QEMU's check_refblocks(). */
static void q2c_refblocks(struct q2c *q)
{
	for (uint64_t i = 0; i < q->rt_size; i++) {
		uint64_t off = q->rt[i] & QCOW2_REFT_OFFSET_MASK, k = off >> q->cb;

		if (q->rt[i] & Q2C_REFT_RESERVED) {
			check_report(q->res, "ERROR refcount table entry %llu has reserved bits set",
				     (unsigned long long)i);
			q->res->corruptions++;
			continue;
		}
		if (off & (q->cs - 1)) {
			check_report(q->res,
				     "ERROR refcount block %llu is not cluster aligned; refcount table entry corrupted",
				     (unsigned long long)i);
			q->res->corruptions++;
			continue;
		}
		if (k >= q->nref) {
			check_report(q->res, "ERROR refcount block %llu is outside image",
				     (unsigned long long)i);
			q->res->corruptions++;
			continue;
		}
		if (!off)
			continue;
		q2c_inc(q, off, q->cs);
		if (q2c_ref_get(q, k) != 1) {
			check_report(q->res, "ERROR refcount block %llu refcount=%llu",
				     (unsigned long long)i,
				     (unsigned long long)q2c_ref_get(q, k));
			q->res->corruptions++;
		}
	}
}

/* QEMU's compare_refcounts(): returns the highest cluster in use. */
static uint64_t q2c_compare(struct q2c *q)
{
	uint64_t highest = 0;

	for (uint64_t k = 0; k < q->nref; k++) {
		uint64_t stored, counted = q2c_ref_get(q, k);
		struct err e2 = { 0 };

		if (q2c_stored(q, k, &stored, &e2) < 0) {
			check_report(q->res, "Can't get refcount for cluster %llu: %s",
				     (unsigned long long)k, e2.msg);
			q->res->check_errors++;
			continue;
		}
		if (stored || counted)
			highest = k;
		if (stored == counted)
			continue;
		check_report(q->res, "%s cluster %llu refcount=%llu reference=%llu",
			     stored < counted ? "ERROR" : "Leaked",
			     (unsigned long long)k, (unsigned long long)stored,
			     (unsigned long long)counted);
		if (stored < counted)
			q->res->corruptions++;
		else
			q->res->leaks++;
	}
	return highest;
}

/* QEMU's check_oflag_copied(): COPIED set exactly where the refcount is 1. */
static int q2c_copied(struct q2c *q, struct err *e)
{
	struct check_result *res = q->res;
	int r;

	for (uint64_t base = 0; base < q->h.l1_size; base += Q2C_L1_CHUNK) {
		uint64_t n = min_u64(Q2C_L1_CHUNK, q->h.l1_size - base);

		if (q->h.l1_table_offset + base * 8 >= q->file_size)
			break;
		if ((r = q2c_scan(q, q->h.l1_table_offset + base * 8, n * 8, e)) < 0)
			return r;
		r = q2c_pread(q, q->l1, (size_t)(n * 8), q->h.l1_table_offset + base * 8,
			      "qcow2: L1 table", e);
		if (r < 0)
			return r;
		for (uint64_t i = 0; i < n; i++) {
			uint64_t l1e = get_be64(q->l1 + 8 * i);
			uint64_t l2_off = l1e & QCOW2_L1E_OFFSET_MASK, rc;
			struct err e2 = { 0 };

			if (!l2_off || q2c_stored(q, l2_off >> q->cb, &rc, &e2) < 0)
				continue;
			if ((rc == 1) != !!(l1e & QCOW2_L2E_COPIED)) {
				res->corruptions++;
				check_report(res,
					     "ERROR OFLAG_COPIED L2 cluster: l1_index=%llu l1_entry=%llx refcount=%llu",
					     (unsigned long long)(base + i),
					     (unsigned long long)l1e, (unsigned long long)rc);
			}
			/* Wholly past the end: QEMU reads zeros, no entry to check. */
			if (l2_off >= q->file_size)
				continue;
			if ((r = q2c_scan(q, l2_off, q->cs, e)) < 0)
				return r;
			r = q2c_pread(q, q->l2, (size_t)(q->l2_size * q->l2_entry_len),
				      l2_off, "qcow2: L2 table", e);
			if (r < 0) {
				check_report(res, "ERROR: Could not read L2 table: %s", e->msg);
				res->check_errors++;
				return r;
			}
			for (uint64_t j = 0; j < q->l2_size; j++) {
				uint64_t l2e, bitmap;
				enum q2c_type t;

				q2c_l2_get(q, j, &l2e, &bitmap);
				t = q2c_type(q, l2e);
				if (t != Q2C_NORMAL && t != Q2C_ZERO_ALLOC)
					continue;
				rc = 1;
				if (!q->data_file &&
				    q2c_stored(q, (l2e & QCOW2_L2E_OFFSET_MASK) >> q->cb,
					       &rc, &e2) < 0)
					continue;
				if ((rc == 1) != !!(l2e & QCOW2_L2E_COPIED)) {
					res->corruptions++;
					check_report(res,
						     "ERROR OFLAG_COPIED data cluster: l2_entry=%llx refcount=%llu",
						     (unsigned long long)l2e, (unsigned long long)rc);
				}
			}
		}
	}
	return 0;
}

/* --- the header ---------------------------------------------------------- */

static int q2c_table_ok(const struct q2c *q, uint64_t off, uint64_t entries,
			uint64_t entry_len, uint64_t max_bytes, const char *what,
			struct err *e)
{
	if (entries > max_bytes / entry_len)
		return err_set(e, EI_ECORRUPT, "qcow2: %s of %llu entries exceeds %llu bytes",
			       what, (unsigned long long)entries,
			       (unsigned long long)max_bytes);
	if (off & (q->cs - 1) || off > (UINT64_MAX >> 2))
		return err_set(e, EI_ECORRUPT, "qcow2: %s offset 0x%llx is invalid",
			       what, (unsigned long long)off);
	return 0;
}

/* The header extensions the check needs: crypto header, bitmaps. */
static int q2c_extensions(struct q2c *q, struct err *e)
{
	uint64_t pos = q->h.version >= 3 ? q->h.header_length : QCOW2_HEADER_V2_LEN;
	uint64_t end = q->h.backing_file_offset ? q->h.backing_file_offset : q->cs;
	uint8_t b[24];
	int r;

	end = min_u64(end, q->cs);
	while (pos + QCOW2_EXT_HEADER_LEN <= end) {
		uint32_t type, len;

		r = io_read(q->io, b, QCOW2_EXT_HEADER_LEN, pos, "qcow2: header extension", e);
		if (r < 0)
			return r;
		type = get_be32(b);
		len = get_be32(b + 4);
		pos += QCOW2_EXT_HEADER_LEN;
		if (type == QCOW2_EXT_END)
			break;
		if (len > end - pos)
			return err_set(e, EI_ECORRUPT,
				       "qcow2: header extension 0x%08x of %u bytes exceeds the header cluster",
				       type, len);
		if (type == QCOW2_EXT_CRYPTO_HEADER && len >= 16) {
			if ((r = io_read(q->io, b, 16, pos, "qcow2: crypto header extension", e)) < 0)
				return r;
			q->crypto_off = get_be64(b);
			q->crypto_len = get_be64(b + 8);
		} else if (type == QCOW2_EXT_BITMAPS && len >= 24 &&
			   (q->h.autoclear_features & QCOW2_AUTOCLEAR_BITMAPS)) {
			if ((r = io_read(q->io, b, 24, pos, "qcow2: bitmaps extension", e)) < 0)
				return r;
			q->nb_bitmaps = get_be32(b);
			q->bm_dir_size = get_be64(b + 8);
			q->bm_dir_off = get_be64(b + 16);
			if (q->nb_bitmaps > Q2C_BM_MAX_COUNT || q->bm_dir_size > Q2C_BM_MAX_DIR ||
			    (q->bm_dir_off & (q->cs - 1)))
				return err_set(e, EI_ECORRUPT,
					       "qcow2: bitmaps extension: %u bitmaps, directory of %llu bytes at 0x%llx",
					       q->nb_bitmaps, (unsigned long long)q->bm_dir_size,
					       (unsigned long long)q->bm_dir_off);
		}
		pos += (len + 7ULL) & ~7ULL;
	}
	return 0;
}

/* Decode and validate what QEMU validates before it will check an image. */
static int q2c_header(struct q2c *q, struct err *e)
{
	struct qcow2_header *h = &q->h;
	uint8_t b[QCOW2_HEADER_V3_LEN] = { 0 };
	uint64_t l2_span, need;
	unsigned hlen;
	int r;

	q->file_size = q->io->size;
	if (q->file_size < QCOW2_HEADER_V2_LEN)
		return err_set(e, EI_EFORMAT, "qcow2: file of %llu bytes has no header",
			       (unsigned long long)q->file_size);
	hlen = (unsigned)min_u64(sizeof(b), q->file_size);
	r = io_read(q->io, b, hlen, 0, "qcow2: header", e);
	if (r < 0)
		return r;
	if (get_be32(b) != QCOW2_MAGIC)
		return err_set(e, EI_EFORMAT, "qcow2: bad magic 0x%08x", get_be32(b));
	if (get_be32(b + QCOW2_OFF_VERSION) == 2)
		hlen = QCOW2_HEADER_V2_LEN;
	else if (get_be32(b + QCOW2_OFF_VERSION) == 3 &&
		 get_be32(b + QCOW2_OFF_HEADER_LENGTH) <= QCOW2_OFF_COMPRESSION_TYPE)
		hlen = QCOW2_HEADER_V3_MIN_LEN;
	qcow2_header_decode(b, hlen, h);
	if (h->version != 2 && h->version != 3)
		return err_set(e, EI_EUNSUP, "qcow2: version %u is not 2 or 3", h->version);
	if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS || h->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		return err_set(e, EI_ECORRUPT, "qcow2: cluster_bits %u is not in 9..21",
			       h->cluster_bits);
	q->cb = h->cluster_bits;
	q->cs = 1ULL << q->cb;
	if (h->version == 3 && (h->header_length < QCOW2_HEADER_V3_MIN_LEN ||
				h->header_length > q->cs || h->header_length % 8))
		return err_set(e, EI_ECORRUPT,
			       "qcow2: header_length %u is not a multiple of 8 from 104 to the cluster size",
			       h->header_length);
	if (h->incompatible_features & ~QCOW2_INCOMPAT_KNOWN)
		return err_set(e, EI_EUNSUP, "qcow2: unknown incompatible features 0x%llx",
			       (unsigned long long)(h->incompatible_features & ~QCOW2_INCOMPAT_KNOWN));
	if (h->refcount_order > QCOW2_MAX_REFCOUNT_ORDER)
		return err_set(e, EI_ECORRUPT, "qcow2: refcount_order %u is above 6",
			       h->refcount_order);
	if (h->crypt_method > QCOW2_CRYPT_LUKS)
		return err_set(e, EI_EUNSUP, "qcow2: crypt_method %u is unknown", h->crypt_method);
	if (h->backing_file_offset > q->cs)
		return err_set(e, EI_ECORRUPT, "qcow2: backing_file_offset %llu is past the header cluster",
			       (unsigned long long)h->backing_file_offset);
	if (h->compression_type > QCOW2_COMPRESSION_ZSTD ||
	    (h->compression_type != QCOW2_COMPRESSION_ZLIB) !=
	    !!(h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION))
		return err_set(e, EI_ECORRUPT,
			       "qcow2: compression_type %u does not match the compression feature bit",
			       h->compression_type);
	q->extl2 = !!(h->incompatible_features & QCOW2_INCOMPAT_EXTL2);
	q->data_file = !!(h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE);
	if (q->extl2 && q->cb < 14)
		return err_set(e, EI_ECORRUPT,
			       "qcow2: extended L2 entries need 16 KiB clusters, not %llu bytes",
			       (unsigned long long)q->cs);
	q->l2_entry_len = q->extl2 ? QCOW2_EXTL2_ENTRY_LEN : QCOW2_L2_ENTRY_LEN;
	q->l2_size = q->cs / q->l2_entry_len;
	q->refcount_max = h->refcount_order >= 5 ? UINT32_MAX :
			  (1ULL << (1u << h->refcount_order)) - 1;
	q->rb_bits = q->cb + 3 - h->refcount_order;
	/* The L1 table must cover the disk. */
	l2_span = q->l2_size << q->cb;
	need = h->size / l2_span + (h->size % l2_span != 0);
	if ((r = q2c_table_ok(q, h->l1_table_offset, h->l1_size, 8, QCOW2_MAX_L1_BYTES,
			      "L1 table", e)) < 0)
		return r;
	if (h->l1_size < need)
		return err_set(e, EI_ECORRUPT, "qcow2: L1 table of %u entries is too small for %llu bytes",
			       h->l1_size, (unsigned long long)h->size);
	if ((r = q2c_table_ok(q, h->refcount_table_offset,
			      (uint64_t)h->refcount_table_clusters << q->cb, 1,
			      QCOW2_MAX_REFTABLE_BYTES, "refcount table", e)) < 0)
		return r;
	if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
		return err_set(e, EI_ECORRUPT, "qcow2: %u snapshots, above %u",
			       h->nb_snapshots, QCOW2_MAX_SNAPSHOTS);
	if (h->nb_snapshots &&
	    (r = q2c_table_ok(q, h->snapshots_offset, h->nb_snapshots, 1,
			      QCOW2_MAX_SNAPSHOTS_BYTES, "snapshot table", e)) < 0)
		return r;
	return q2c_extensions(q, e);
}

static void q2c_free(struct q2c *q)
{
	free(q->ref);
	free(q->rt);
	free(q->l2);
	free(q->l1);
	for (unsigned i = 0; i < Q2C_RB_CACHE; i++)
		free(q->rb[i]);
}

int qcow2_check(struct io *io, struct check_result *res, struct err *e)
{
	struct q2c q = { .io = io, .res = res };
	uint64_t highest, width, rt_bytes;
	int r;

	r = q2c_header(&q, e);
	if (r < 0)
		return r;
	res->total_clusters = (q.h.size + q.cs - 1) >> q.cb;
	q.scan_left = Q2C_SCAN_EXTRA + Q2C_SCAN_FACTOR * q.file_size;

	/* One counter per cluster of the file, plus the one it may end in. */
	q.nref = (q.file_size + q.cs - 1) >> q.cb;
	q.ref_cap = q.nref + 1;
	q.wide = q.h.refcount_order > 4;
	width = q.wide ? 4 : 2;
	if (q.ref_cap > EI_MAX_TABLE / width)
		return err_set(e, EI_ELIMIT,
			       "qcow2: checking %llu clusters needs %llu bytes of counters, above the limit of %llu",
			       (unsigned long long)q.ref_cap,
			       (unsigned long long)(q.ref_cap * width),
			       (unsigned long long)EI_MAX_TABLE);
	rt_bytes = (uint64_t)q.h.refcount_table_clusters << q.cb;
	q.rt_size = rt_bytes / 8;
	q.ref = calloc((size_t)q.ref_cap, (size_t)width);
	q.rt = malloc(rt_bytes ? (size_t)rt_bytes : 1);
	q.l2 = malloc((size_t)q.cs);
	q.l1 = malloc(Q2C_L1_CHUNK * 8);
	for (unsigned i = 0; i < Q2C_RB_CACHE; i++)
		q.rb[i] = malloc((size_t)q.cs);
	if (!q.ref || !q.rt || !q.l2 || !q.l1 || !q.rb[0] || !q.rb[1] || !q.rb[2] ||
	    !q.rb[3]) {
		res->check_errors++;
		r = err_set(e, -ENOMEM, "qcow2: out of memory");
		goto out;
	}
	r = q2c_pread(&q, q.rt, (size_t)rt_bytes, q.h.refcount_table_offset,
		      "qcow2: refcount table", e);
	if (r < 0)
		goto out;
	for (uint64_t i = 0; i < q.rt_size; i++)
		q.rt[i] = get_be64(&q.rt[i]);

	/* What QEMU's calculate_refcounts() counts, in its order. */
	q2c_inc(&q, 0, q.cs);
	if ((r = q2c_l1(&q, q.h.l1_table_offset, q.h.l1_size, 1, e)) < 0)
		goto out;
	if (q.data_file && q.h.nb_snapshots) {
		check_report(res, "ERROR %u snapshots in image with data file",
			     q.h.nb_snapshots);
		res->corruptions++;
	}
	if ((r = q2c_snapshots(&q, e)) < 0)
		goto out;
	q2c_inc(&q, q.h.refcount_table_offset, q.rt_size * 8);
	q2c_inc(&q, q.crypto_off, q.crypto_len);
	if ((r = q2c_bitmaps(&q, e)) < 0)
		goto out;
	q2c_refblocks(&q);

	highest = q2c_compare(&q);
	if ((r = q2c_copied(&q, e)) < 0)
		goto out;
	res->image_end_offset = (highest + 1) << q.cb;
	if (q.scan_over)
		r = q2c_scan_err(&q, e);
out:
	q2c_free(&q);
	return r;
}

/* --- the recipe -------------------------------------------------------- */

int qcow2_recipe(struct vdisk *vd, char *buf, size_t len, struct err *e)
{
	uint8_t hb[QCOW2_HEADER_V3_LEN] = { 0 }, eh[QCOW2_EXT_HEADER_LEN];
	unsigned hl = (unsigned)min_u64(sizeof(hb), vd->io->size);
	struct qcow2_header h;
	uint64_t pos, end;
	int r;

	r = io_read(vd->io, hb, hl, 0, "qcow2: header", e);
	if (r < 0)
		return r;
	qcow2_header_decode(hb, hl, &h);
	if (h.cluster_bits < QCOW2_MIN_CLUSTER_BITS || h.cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		return 0;
	/* Extensions run from the header to the backing file name or cluster end. */
	pos = h.version >= 3 ? h.header_length : QCOW2_HEADER_V2_LEN;
	end = 1ULL << h.cluster_bits;
	if (h.backing_file_offset && h.backing_file_offset < end)
		end = h.backing_file_offset;
	end = min_u64(end, vd->io->size);
	while (pos + QCOW2_EXT_HEADER_LEN <= end) {
		uint32_t type, elen;

		r = io_read(vd->io, eh, sizeof(eh), pos, "qcow2: header extension", e);
		if (r < 0)
			return r;
		type = get_be32(eh);
		elen = get_be32(eh + 4);
		pos += QCOW2_EXT_HEADER_LEN;
		if (type == QCOW2_EXT_END || elen > end - pos)
			return 0;
		if (type == QCOW2_EXT_RECIPE) {
			if (elen >= len || elen >= QCOW2_RECIPE_MAX)
				return err_set(e, EI_ELIMIT, "qcow2: recipe of %u bytes is too long",
					       elen);
			r = io_read(vd->io, buf, elen, pos, "qcow2: recipe", e);
			if (r < 0)
				return r;
			buf[elen] = 0;
			for (uint32_t i = 0; i < elen; i++)
				if (buf[i] < 0x20 || buf[i] > 0x7e)
					return err_set(e, EI_ECORRUPT,
						       "qcow2: recipe byte %u is 0x%02x, not printable",
						       i, (unsigned)(uint8_t)buf[i]);
			return (int)elen;
		}
		pos += (elen + 7ULL) & ~7ULL;
	}
	return 0;
}
