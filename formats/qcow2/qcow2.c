// SPDX-License-Identifier: MIT
/*
 * qcow2 reader: versions 2 and 3, zero, compressed (zlib, zstd) and
 * extended-L2 clusters, internal snapshots listed, backing files through
 * the reference policy.  Spec: QEMU docs/interop/qcow2.txt; what QEMU's
 * block/qcow2.c accepts is the model for what is accepted here.
 */
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "codec/codec.h"
#include "core/format.h"
#include "core/kconfig.h"
#include "core/limits.h"
#include "core/opts.h"
#include "core/vdisk.h"
#include "crypto/sha.h"
#include "qcow2.h"

#if IS_ENABLED(CONFIG_CODEC_ZSTD)
#include <zstd.h>
#endif

/* L2 tables are cached in slices of at most this size, LRU. */
#define QCOW2_SLICE_MAX (16u << 10)
#define QCOW2_L2_SLOTS 32
/* Snapshots listed by info (all of them are counted); text kept of each. */
#define QCOW2_INFO_SNAPSHOTS 16
#define QCOW2_SN_TEXT 64

/* What a run of the guest disk is. */
enum qcow2_kind {
	Q2_DATA,        /* stored plain at host */
	Q2_COMP,        /* one compressed cluster; host holds its L2 entry */
	Q2_ZERO,        /* reads as zero */
	Q2_UNALLOC,     /* from the backing file, else zero */
};

struct qcow2_run {
	enum qcow2_kind kind;
	uint64_t host;
	uint64_t len;
};

struct qcow2_slot {
	uint64_t key;           /* host offset of the cached slice, 0: empty */
	uint64_t used;          /* LRU stamp */
	uint8_t *data;
};

struct qcow2_snap {
	char id[QCOW2_SN_TEXT];
	char name[QCOW2_SN_TEXT];
	uint64_t vm_state_size;
	uint64_t vm_clock_nsec;
	uint64_t icount;
	uint32_t date_sec, date_nsec;
	bool has_icount;
};

struct qcow2 {
	struct qcow2_header h;
	unsigned cluster_bits;
	unsigned l2_bits;       /* log2 of entries per L2 table */
	unsigned sc_bits;       /* log2 of the subcluster size */
	unsigned entry_len;     /* 8, or 16 with extended L2 entries */
	uint64_t cluster_size;
	bool extl2;

	uint64_t *l1;           /* the active L1 entries the disk needs */
	uint64_t l1_n;

	uint32_t slice_len, slice_entries;
	struct qcow2_slot slot[QCOW2_L2_SLOTS];
	struct qcow2_slot *last;
	uint64_t clock;
	uint8_t *slab;

	const struct codec *codec;
	void *codec_ctx;
	uint8_t *cbuf;          /* compressed bytes, 2 clusters */
	uint8_t *dbuf;          /* the last cluster decompressed */
	uint64_t dbuf_key;      /* its L2 entry, 0: none */

	struct vdisk *backing;
	char backing_name[QCOW2_MAX_BACKING_NAME + 1];
	char backing_fmt[QCOW2_MAX_BACKING_FORMAT + 1];

	unsigned nsnap;         /* snapshots kept for info */
	struct qcow2_snap snap[QCOW2_INFO_SNAPSHOTS];
};

static int qcow2_probe(const uint8_t *head, size_t head_len,
		       const uint8_t *tail, size_t tail_len, uint64_t file_size)
{
	uint32_t v;

	(void)tail;
	(void)tail_len;
	(void)file_size;
	if (head_len < 4 || get_be32(head) != QCOW2_MAGIC)
		return 0;
	if (head_len < 8)
		return PROBE_SURE;
	v = get_be32(head + QCOW2_OFF_VERSION);
	if (v == 2 || v == 3)
		return PROBE_CERTAIN;
	/* Version 1 is qcow, a different format: let its reader win. */
	return v == 1 ? PROBE_SURE - 1 : PROBE_SURE;
}

static void qcow2_free(struct qcow2 *q)
{
	if (!q)
		return;
	vdisk_close(q->backing);
	if (q->codec)
		codec_ctx_free(q->codec, q->codec_ctx);
	free(q->l1);
	free(q->slab);
	free(q->cbuf);
	free(q->dbuf);
	free(q);
}

/*
 * QEMU's table check: at most @max_bytes of @entries of @entry_len bytes,
 * cluster aligned, ending below 2^63.
 */
static int qcow2_check_table(struct qcow2 *q, uint64_t off, uint64_t entries,
			     uint64_t entry_len, uint64_t max_bytes,
			     const char *count_field, const char *off_field,
			     struct err *e)
{
	if (entries > max_bytes / entry_len)
		return err_set(e, EI_ELIMIT,
			       "qcow2: %s %llu is too large: the table may hold %llu bytes",
			       count_field, (unsigned long long)entries,
			       (unsigned long long)max_bytes);
	if ((uint64_t)INT64_MAX - entries * entry_len < off ||
	    (off & (q->cluster_size - 1)))
		return err_set(e, EI_ECORRUPT,
			       "qcow2: %s 0x%llx is invalid: it must be cluster aligned (%llu) and the table must end below 2^63",
			       off_field, (unsigned long long)off,
			       (unsigned long long)q->cluster_size);
	return 0;
}

/* Read and check the fixed header into q->h and the derived geometry. */
static int qcow2_read_header(struct vdisk *vd, struct qcow2 *q, struct err *e)
{
	uint8_t b[QCOW2_HEADER_V3_LEN];
	struct qcow2_header h;
	uint64_t fsize = vd->io->size;
	unsigned n;
	int r;

	if (fsize < 4)
		return err_set(e, EI_EFORMAT,
			       "qcow2: %s is %llu bytes, too small for a qcow2 header",
			       vd->io->name, (unsigned long long)fsize);
	r = io_read(vd->io, b, 4, 0, "qcow2: header", e);
	if (r < 0)
		return r;
	if (get_be32(b) != QCOW2_MAGIC)
		return err_set(e, EI_EFORMAT,
			       "qcow2: magic 0x%08x is not 0x%08x: not a qcow2 image",
			       get_be32(b), QCOW2_MAGIC);
	if (fsize < QCOW2_HEADER_V2_LEN)
		return err_set(e, EI_ETRUNC,
			       "qcow2: header truncated: the file has %llu bytes, a header %u",
			       (unsigned long long)fsize, QCOW2_HEADER_V2_LEN);
	r = io_read(vd->io, b, QCOW2_HEADER_V2_LEN, 0, "qcow2: header", e);
	if (r < 0)
		return r;
	n = QCOW2_HEADER_V2_LEN;
	h.version = get_be32(b + QCOW2_OFF_VERSION);
	if (h.version != 2 && h.version != 3)
		return err_set(e, EI_EUNSUP, "qcow2: version %u is not 2 or 3",
			       h.version);
	if (h.version == 3) {
		uint32_t hl;

		if (fsize < QCOW2_HEADER_V3_MIN_LEN)
			return err_set(e, EI_ETRUNC,
				       "qcow2: header truncated: the file has %llu bytes, a version 3 header %u",
				       (unsigned long long)fsize,
				       QCOW2_HEADER_V3_MIN_LEN);
		r = io_read(vd->io, b + n, QCOW2_HEADER_V3_MIN_LEN - n, n,
			    "qcow2: header", e);
		if (r < 0)
			return r;
		n = QCOW2_HEADER_V3_MIN_LEN;
		hl = get_be32(b + QCOW2_OFF_HEADER_LENGTH);
		if (hl < QCOW2_HEADER_V3_MIN_LEN)
			return err_set(e, EI_ECORRUPT,
				       "qcow2: header_length %u is less than %u",
				       hl, QCOW2_HEADER_V3_MIN_LEN);
		if (hl > QCOW2_OFF_COMPRESSION_TYPE) {
			r = io_read(vd->io, b + n, 1, n, "qcow2: header", e);
			if (r < 0)
				return r;
			n++;
		}
	}
	qcow2_header_decode(b, n, &h);

	if (h.cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
	    h.cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		return err_set(e, EI_ECORRUPT,
			       "qcow2: cluster_bits %u is not in %u..%u",
			       h.cluster_bits, QCOW2_MIN_CLUSTER_BITS,
			       QCOW2_MAX_CLUSTER_BITS);
	q->cluster_bits = h.cluster_bits;
	q->cluster_size = 1ULL << h.cluster_bits;
	if (h.header_length > q->cluster_size)
		return err_set(e, EI_ECORRUPT,
			       "qcow2: header_length %u exceeds the cluster size %llu",
			       h.header_length, (unsigned long long)q->cluster_size);
	if (h.backing_file_offset > q->cluster_size)
		return err_set(e, EI_ECORRUPT,
			       "qcow2: backing_file_offset %llu is invalid: past the first cluster (%llu bytes)",
			       (unsigned long long)h.backing_file_offset,
			       (unsigned long long)q->cluster_size);
	if (h.compression_type != QCOW2_COMPRESSION_ZLIB &&
	    h.compression_type != QCOW2_COMPRESSION_ZSTD)
		return err_set(e, EI_EUNSUP,
			       "qcow2: compression_type %u is not 0 (zlib) or 1 (zstd)",
			       h.compression_type);
	if ((h.compression_type != QCOW2_COMPRESSION_ZLIB) !=
	    !!(h.incompatible_features & QCOW2_INCOMPAT_COMPRESSION))
		return err_set(e, EI_ECORRUPT,
			       "qcow2: compression_type %u needs incompatible feature bit 3 %s",
			       h.compression_type,
			       h.compression_type ? "set" : "clear");
	if (h.refcount_order > QCOW2_MAX_REFCOUNT_ORDER)
		return err_set(e, EI_ECORRUPT,
			       "qcow2: refcount_order %u is more than %u (64-bit refcounts)",
			       h.refcount_order, QCOW2_MAX_REFCOUNT_ORDER);
	if (h.crypt_method == QCOW2_CRYPT_AES || h.crypt_method == QCOW2_CRYPT_LUKS)
		return err_set(e, EI_EUNSUP,
			       "qcow2: crypt_method %u: encrypted images (%s) are not supported",
			       h.crypt_method,
			       h.crypt_method == QCOW2_CRYPT_AES ? "AES" : "LUKS");
	if (h.crypt_method != QCOW2_CRYPT_NONE)
		return err_set(e, EI_ECORRUPT,
			       "qcow2: crypt_method %u is not 0, 1 (AES) or 2 (LUKS)",
			       h.crypt_method);
	q->h = h;
	return 0;
}

/* Describe the unknown incompatible bits, with names from the feature table. */
static int qcow2_unknown_features(const struct qcow2 *q, const uint8_t *ftab,
				  uint32_t ftab_len, struct err *e)
{
	uint64_t bits = q->h.incompatible_features & ~QCOW2_INCOMPAT_KNOWN;
	char list[300];
	size_t at = 0;

	list[0] = 0;
	for (unsigned bit = 0; bit < 64 && at < sizeof(list) - 1; bit++) {
		const char *name = "";
		int nl = 0, w;

		if (!(bits >> bit & 1))
			continue;
		for (uint32_t i = 0; ftab && i + QCOW2_FEATURE_ENTRY_LEN <= ftab_len;
		     i += QCOW2_FEATURE_ENTRY_LEN) {
			const uint8_t *f = ftab + i;

			if (f[0] == QCOW2_FEATURE_INCOMPAT && f[1] == bit) {
				name = (const char *)f + 2;
				nl = (int)strnlen(name, QCOW2_FEATURE_NAME_LEN);
				break;
			}
		}
		w = snprintf(list + at, sizeof(list) - at, "%sbit %u%s%.*s%s",
			     at ? ", " : "", bit, nl ? " (" : "", nl, name,
			     nl ? ")" : "");
		if (w < 0)
			break;
		at = min_u64(at + (size_t)w, sizeof(list) - 1);
	}
	return err_set(e, EI_EUNSUP,
		       "qcow2: incompatible_features 0x%llx: unknown feature %s",
		       (unsigned long long)q->h.incompatible_features, list);
}

/*
 * Walk the header extensions from header_length to @end (the backing file
 * name or the end of the first cluster), then check the feature bits.
 */
static int qcow2_read_extensions(struct vdisk *vd, struct qcow2 *q,
				 uint64_t end, struct err *e)
{
	uint64_t start = q->h.header_length, avail, off = 0, area;
	const uint8_t *ftab = NULL;
	uint32_t ftab_len = 0;
	uint8_t *buf = NULL;
	int r = 0;

	if (end < start)
		return err_set(e, EI_ECORRUPT,
			       "qcow2: backing_file_offset %llu lies inside the header (header_length %llu)",
			       (unsigned long long)end, (unsigned long long)start);
	area = end - start;     /* at most one cluster */
	avail = vd->io->size > start ? min_u64(area, vd->io->size - start) : 0;
	if (area) {
		buf = malloc(area);
		if (!buf)
			return err_set(e, -ENOMEM, "qcow2: out of memory");
		if (avail)
			r = io_read(vd->io, buf, avail, start,
				    "qcow2: header extensions", e);
	}
	while (!r && off < area) {
		uint32_t type, len;

		if (area - off < QCOW2_EXT_HEADER_LEN) {
			r = err_set(e, EI_ECORRUPT,
				    "qcow2: header extension at %llu: its header overruns the extension area ending at %llu",
				    (unsigned long long)(start + off),
				    (unsigned long long)end);
			break;
		}
		if (avail - min_u64(avail, off) < QCOW2_EXT_HEADER_LEN) {
			r = err_set(e, EI_ETRUNC,
				    "qcow2: header extension at %llu lies past the end of the file (%llu bytes)",
				    (unsigned long long)(start + off),
				    (unsigned long long)vd->io->size);
			break;
		}
		type = get_be32(buf + off);
		len = get_be32(buf + off + 4);
		off += QCOW2_EXT_HEADER_LEN;
		if (len > area - off) {
			r = err_set(e, EI_ECORRUPT,
				    "qcow2: header extension 0x%08x at %llu: length %u is too large (the extension area ends at %llu)",
				    type, (unsigned long long)(start + off - 8),
				    len, (unsigned long long)end);
			break;
		}
		if (type == QCOW2_EXT_END)
			break;
		if (len > avail - min_u64(avail, off)) {
			r = err_set(e, EI_ETRUNC,
				    "qcow2: header extension 0x%08x at %llu lies past the end of the file (%llu bytes)",
				    type, (unsigned long long)(start + off - 8),
				    (unsigned long long)vd->io->size);
			break;
		}
		if (type == QCOW2_EXT_BACKING_FORMAT) {
			if (len > QCOW2_MAX_BACKING_FORMAT) {
				r = err_set(e, EI_ECORRUPT,
					    "qcow2: backing format extension length %u exceeds %u",
					    len, QCOW2_MAX_BACKING_FORMAT);
				break;
			}
			memcpy(q->backing_fmt, buf + off, len);
			q->backing_fmt[len] = 0;
		} else if (type == QCOW2_EXT_FEATURE_TABLE) {
			ftab = buf + off;
			ftab_len = len;
		}
		off += ((uint64_t)len + 7) & ~7ULL;
	}
	if (!r && (q->h.incompatible_features & ~QCOW2_INCOMPAT_KNOWN))
		r = qcow2_unknown_features(q, ftab, ftab_len, e);
	free(buf);
	return r;
}

/* Feature bits, and the geometry they imply. */
static int qcow2_check_features(struct qcow2 *q, struct err *e)
{
	uint64_t f = q->h.incompatible_features;

	if (f & QCOW2_INCOMPAT_DATA_FILE)
		return err_set(e, EI_EUNSUP,
			       "qcow2: incompatible feature bit 2 (external data file) is not supported: the data lives in another file");
	q->extl2 = f & QCOW2_INCOMPAT_EXTL2;
	q->entry_len = q->extl2 ? QCOW2_EXTL2_ENTRY_LEN : QCOW2_L2_ENTRY_LEN;
	q->l2_bits = q->cluster_bits - (q->extl2 ? 4 : 3);
	q->sc_bits = q->cluster_bits - (q->extl2 ? 5 : 0);
	if (q->sc_bits < QCOW2_MIN_CLUSTER_BITS)
		return err_set(e, EI_ECORRUPT,
			       "qcow2: extended L2 entries (incompatible bit 4) with cluster_bits %u: subclusters of %u bytes, below 512",
			       q->cluster_bits, 1u << q->sc_bits);
	return 0;
}

/* Refcount table and snapshot table placement, as QEMU checks them. */
static int qcow2_check_tables(struct vdisk *vd, struct qcow2 *q, struct err *e)
{
	const struct qcow2_header *h = &q->h;
	uint64_t rt_len;
	int r;

	if (!h->refcount_table_clusters)
		return err_set(e, EI_ECORRUPT,
			       "qcow2: refcount_table_clusters is 0: the image has no reference count table");
	r = qcow2_check_table(q, h->refcount_table_offset,
			      h->refcount_table_clusters, q->cluster_size,
			      QCOW2_MAX_REFTABLE_BYTES, "refcount_table_clusters",
			      "refcount_table_offset", e);
	if (r < 0)
		return r;
	rt_len = (uint64_t)h->refcount_table_clusters << q->cluster_bits;
	if (!range_ok(h->refcount_table_offset, rt_len, vd->io->size))
		return err_set(e, EI_ETRUNC,
			       "qcow2: refcount table at %llu+%llu lies past the end of the file (%llu bytes)",
			       (unsigned long long)h->refcount_table_offset,
			       (unsigned long long)rt_len,
			       (unsigned long long)vd->io->size);
	if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
		return err_set(e, EI_ELIMIT,
			       "qcow2: nb_snapshots %u is more than %u",
			       h->nb_snapshots, QCOW2_MAX_SNAPSHOTS);
	return qcow2_check_table(q, h->snapshots_offset, h->nb_snapshots,
				 QCOW2_SN_HEADER_LEN,
				 (uint64_t)QCOW2_SN_HEADER_LEN * QCOW2_MAX_SNAPSHOTS,
				 "nb_snapshots", "snapshots_offset", e);
}

/* Check the virtual size and load the active L1 entries it needs. */
static int qcow2_read_l1(struct vdisk *vd, struct qcow2 *q, struct err *e)
{
	const struct qcow2_header *h = &q->h;
	unsigned shift = q->cluster_bits + q->l2_bits;
	uint64_t need, bytes;
	int r;

	if (h->size > vd->opts.max_size)
		return err_set(e, EI_ELIMIT,
			       "qcow2: size %llu exceeds the limit of %llu bytes",
			       (unsigned long long)h->size,
			       (unsigned long long)vd->opts.max_size);
	r = qcow2_check_table(q, h->l1_table_offset, h->l1_size, 8,
			      QCOW2_MAX_L1_BYTES, "l1_size", "l1_table_offset", e);
	if (r < 0)
		return r;
	need = (h->size >> shift) + !!(h->size & ((1ULL << shift) - 1));
	if (h->l1_size < need)
		return err_set(e, EI_ECORRUPT,
			       "qcow2: l1_size %u is too small: size %llu needs %llu L1 entries",
			       h->l1_size, (unsigned long long)h->size,
			       (unsigned long long)need);
	bytes = need * 8;
	if (bytes > vd->opts.max_table)
		return err_set(e, EI_ELIMIT,
			       "qcow2: L1 table of %llu bytes exceeds the table limit of %llu",
			       (unsigned long long)bytes,
			       (unsigned long long)vd->opts.max_table);
	q->l1_n = need;
	if (!need)
		return 0;
	q->l1 = malloc(bytes);
	if (!q->l1)
		return err_set(e, -ENOMEM, "qcow2: out of memory for the L1 table");
	r = io_read(vd->io, q->l1, bytes, h->l1_table_offset,
		    "qcow2: L1 table", e);
	if (r < 0)
		return r;
	for (uint64_t i = 0; i < need; i++)
		q->l1[i] = get_be64(&q->l1[i]);
	return 0;
}

/* Copy @len bytes of a snapshot's id or name at @off for display. */
static int qcow2_snap_text(struct vdisk *vd, char *dst, uint64_t len,
			   uint64_t off, struct err *e)
{
	size_t n = (size_t)min_u64(len, QCOW2_SN_TEXT - 1);
	int r = io_read(vd->io, dst, n, off, "qcow2: snapshot table", e);

	dst[r < 0 ? 0 : n] = 0;
	for (size_t i = 0; i < n && r >= 0; i++)
		if (!dst[i])
			dst[i] = '?';
	return r;
}

/* Walk the snapshot table: validate it, keep the first few for info. */
static int qcow2_read_snapshots(struct vdisk *vd, struct qcow2 *q,
				struct err *e)
{
	uint64_t start = q->h.snapshots_offset, off = start;
	uint64_t fsize = vd->io->size;
	int r;

	for (uint32_t i = 0; i < q->h.nb_snapshots; i++) {
		uint8_t hb[QCOW2_SN_HEADER_LEN], xb[QCOW2_SNX_LEN];
		uint32_t extra, xl;
		uint16_t id_len, name_len;
		struct qcow2_snap *s = i < QCOW2_INFO_SNAPSHOTS ? &q->snap[i] : NULL;

		off = (off + 7) & ~7ULL;
		r = io_read(vd->io, hb, sizeof(hb), off, "qcow2: snapshot table", e);
		if (r < 0)
			return r;
		off += sizeof(hb);
		id_len = get_be16(hb + QCOW2_SN_ID_SIZE);
		name_len = get_be16(hb + QCOW2_SN_NAME_SIZE);
		extra = get_be32(hb + QCOW2_SN_EXTRA_SIZE);
		if (extra > QCOW2_MAX_SNAPSHOT_EXTRA)
			return err_set(e, EI_ECORRUPT,
				       "qcow2: snapshot %u: extra_data_size %u is more than %u",
				       i, extra, QCOW2_MAX_SNAPSHOT_EXTRA);
		xl = extra < sizeof(xb) ? extra : sizeof(xb);
		memset(xb, 0, sizeof(xb));
		if (xl && (r = io_read(vd->io, xb, xl, off, "qcow2: snapshot table", e)) < 0)
			return r;
		off += extra;
		if (!range_ok(off, (uint64_t)id_len + name_len, fsize))
			return err_set(e, EI_ETRUNC,
				       "qcow2: snapshot %u: id and name at %llu lie past the end of the file (%llu bytes)",
				       i, (unsigned long long)off,
				       (unsigned long long)fsize);
		if (s) {
			s->vm_state_size = get_be32(hb + QCOW2_SN_VM_STATE_SIZE);
			if (xl >= QCOW2_SNX_VM_STATE_SIZE + 8)
				s->vm_state_size = get_be64(xb + QCOW2_SNX_VM_STATE_SIZE);
			s->has_icount = xl >= QCOW2_SNX_ICOUNT + 8 &&
					get_be64(xb + QCOW2_SNX_ICOUNT) != UINT64_MAX;
			s->icount = s->has_icount ? get_be64(xb + QCOW2_SNX_ICOUNT) : 0;
			s->date_sec = get_be32(hb + QCOW2_SN_DATE_SEC);
			s->date_nsec = get_be32(hb + QCOW2_SN_DATE_NSEC);
			s->vm_clock_nsec = get_be64(hb + QCOW2_SN_VM_CLOCK_NSEC);
			r = qcow2_snap_text(vd, s->id, id_len, off, e);
			if (r >= 0)
				r = qcow2_snap_text(vd, s->name, name_len, off + id_len, e);
			if (r < 0)
				return r;
			q->nsnap = i + 1;
		}
		off += (uint64_t)id_len + name_len;
		if (off - start > QCOW2_MAX_SNAPSHOTS_BYTES)
			return err_set(e, EI_ELIMIT,
				       "qcow2: snapshot table is more than %llu bytes",
				       (unsigned long long)QCOW2_MAX_SNAPSHOTS_BYTES);
	}
	return 0;
}

/* The backing file name; the file itself is opened through the policy. */
static int qcow2_open_backing(struct vdisk *vd, struct qcow2 *q, struct err *e)
{
	uint64_t off = q->h.backing_file_offset;
	uint32_t len = q->h.backing_file_size;
	uint64_t max;
	int r;

	if (!off)
		return 0;
	max = min_u64(QCOW2_MAX_BACKING_NAME, q->cluster_size - off);
	if (len > max)
		return err_set(e, EI_ECORRUPT,
			       "qcow2: backing_file_size %u is too large: the name may have %llu bytes",
			       len, (unsigned long long)max);
	if (!len)
		return 0;
	r = io_read(vd->io, q->backing_name, len, off, "qcow2: backing file name", e);
	if (r < 0)
		return r;
	q->backing_name[len] = 0;
	return vdisk_open_ref(vd, q->backing_name, len,
			      q->backing_fmt[0] ? q->backing_fmt : NULL,
			      "qcow2: backing file", &q->backing, NULL, e);
}

static int qcow2_open(struct vdisk *vd, struct err *e)
{
	struct qcow2 *q;
	int r;

	if (vd->io->flags & IO_STREAM)
		return err_set(e, EI_EUNSUP,
			       "qcow2: %s is not seekable; give a file name",
			       vd->io->name);
	q = calloc(1, sizeof(*q));
	if (!q)
		return err_set(e, -ENOMEM, "qcow2: out of memory");
	r = qcow2_read_header(vd, q, e);
	if (r >= 0)
		r = qcow2_read_extensions(vd, q, q->h.backing_file_offset ?
					  q->h.backing_file_offset : q->cluster_size, e);
	if (r >= 0)
		r = qcow2_check_features(q, e);
	if (r >= 0)
		r = qcow2_check_tables(vd, q, e);
	if (r >= 0)
		r = qcow2_read_l1(vd, q, e);
	if (r >= 0)
		r = qcow2_read_snapshots(vd, q, e);
	if (r >= 0) {
		q->slice_len = (uint32_t)min_u64(q->cluster_size, QCOW2_SLICE_MAX);
		q->slice_entries = q->slice_len / q->entry_len;
		q->slab = malloc((size_t)q->slice_len * QCOW2_L2_SLOTS);
		if (!q->slab)
			r = err_set(e, -ENOMEM, "qcow2: out of memory for the L2 cache");
		for (unsigned i = 0; q->slab && i < QCOW2_L2_SLOTS; i++)
			q->slot[i].data = q->slab + (size_t)i * q->slice_len;
	}
	if (r >= 0) {
		q->codec = codec_find(q->h.compression_type == QCOW2_COMPRESSION_ZSTD ?
				      "zstd" : "deflate");
		r = qcow2_open_backing(vd, q, e);
	}
	if (r < 0) {
		qcow2_free(q);
		return r;
	}
	/* As QEMU, the disk is the header's size in whole sectors. */
	vd->size = q->h.size & ~511ULL;
	vd->dirty = !!(q->h.incompatible_features & QCOW2_INCOMPAT_DIRTY);
	vd->priv = q;
	return 0;
}

static void qcow2_close(struct vdisk *vd)
{
	qcow2_free(vd->priv);
	vd->priv = NULL;
}

/* Entry @idx (and its bitmap) of the L2 table at @l2off, through the cache. */
static int qcow2_l2_get(struct vdisk *vd, uint64_t l2off, uint64_t idx,
			uint64_t *ent, uint64_t *bmp, struct err *e)
{
	struct qcow2 *q = vd->priv;
	uint64_t key = l2off + idx / q->slice_entries * q->slice_len;
	struct qcow2_slot *s = q->last;
	const uint8_t *p;

	if (!s || s->key != key) {
		struct qcow2_slot *victim = &q->slot[0];

		s = NULL;
		for (unsigned i = 0; i < QCOW2_L2_SLOTS; i++) {
			if (q->slot[i].key == key) {
				s = &q->slot[i];
				break;
			}
			if (q->slot[i].used < victim->used)
				victim = &q->slot[i];
		}
		if (!s) {
			int r;

			s = victim;
			s->key = 0;
			r = io_read(vd->io, s->data, q->slice_len, key,
				    "qcow2: L2 table", e);
			if (r < 0)
				return r;
			s->key = key;
		}
		q->last = s;
	}
	s->used = ++q->clock;
	p = s->data + idx % q->slice_entries * q->entry_len;
	*ent = get_be64(p);
	*bmp = q->extl2 ? get_be64(p + 8) : 0;
	return 0;
}

/* The kind of subcluster @sc of a standard extended-L2 cluster. */
static enum qcow2_kind qcow2_sc_kind(uint64_t hoff, uint64_t bmp, unsigned sc)
{
	if (bmp & QCOW2_SC_ZERO(sc))
		return Q2_ZERO;
	if (hoff && (bmp & QCOW2_SC_ALLOC(sc)))
		return Q2_DATA;
	return Q2_UNALLOC;
}

/*
 * Classify the guest bytes at @pos, inside the cluster of L2 entry @ent
 * (index @l2i of the table at @l2off): *@kind, *@host and in *@piece the
 * bytes from @pos to the end of the run of that kind inside the cluster.
 */
static int qcow2_classify(struct qcow2 *q, uint64_t ent, uint64_t bmp,
			  uint64_t pos, uint64_t l2off, uint64_t l2i,
			  enum qcow2_kind *kind, uint64_t *host,
			  uint64_t *piece, struct err *e)
{
	uint64_t in = pos & (q->cluster_size - 1);
	uint64_t hoff = ent & QCOW2_L2E_OFFSET_MASK;
	unsigned sc, end;

	*piece = q->cluster_size - in;
	*host = 0;
	if (ent & QCOW2_L2E_COMPRESSED) {
		*kind = Q2_COMP;
		*host = ent;
		return 0;
	}
	if (hoff & (q->cluster_size - 1))
		return err_set(e, EI_ECORRUPT,
			       "qcow2: L2 entry %llu of the table at 0x%llx: host offset 0x%llx is not cluster aligned",
			       (unsigned long long)l2i, (unsigned long long)l2off,
			       (unsigned long long)hoff);
	if (!hoff && (ent & QCOW2_L2E_COPIED) &&
	    (q->extl2 || !(ent & QCOW2_L2E_ZERO)))
		return err_set(e, EI_ECORRUPT,
			       "qcow2: L2 entry %llu of the table at 0x%llx: host offset 0 with the copied flag set",
			       (unsigned long long)l2i, (unsigned long long)l2off);
	if (!q->extl2) {
		if (ent & QCOW2_L2E_ZERO) {
			if (q->h.version < 3)
				return err_set(e, EI_ECORRUPT,
					       "qcow2: L2 entry %llu of the table at 0x%llx: zero flag in a version 2 image",
					       (unsigned long long)l2i,
					       (unsigned long long)l2off);
			*kind = Q2_ZERO;
		} else if (!hoff) {
			*kind = Q2_UNALLOC;
		} else {
			*kind = Q2_DATA;
			*host = hoff + in;
		}
		return 0;
	}
	if (hoff ? ((bmp >> 32) & bmp & QCOW2_SC_ALLOC_ALL) != 0 :
		   (bmp & QCOW2_SC_ALLOC_ALL) != 0)
		return err_set(e, EI_ECORRUPT,
			       "qcow2: L2 entry %llu of the table at 0x%llx: invalid subcluster bitmap 0x%016llx for host offset 0x%llx",
			       (unsigned long long)l2i, (unsigned long long)l2off,
			       (unsigned long long)bmp, (unsigned long long)hoff);
	sc = (unsigned)(in >> q->sc_bits);
	*kind = qcow2_sc_kind(hoff, bmp, sc);
	for (end = sc + 1; end < QCOW2_SUBCLUSTERS; end++)
		if (qcow2_sc_kind(hoff, bmp, end) != *kind)
			break;
	*piece = ((uint64_t)end << q->sc_bits) - in;
	if (*kind == Q2_DATA)
		*host = hoff + in;
	return 0;
}

/*
 * The run starting at guest @off, at most @max bytes (inside the disk):
 * one kind, host-contiguous for data, a single cluster when compressed.
 */
static int qcow2_find(struct vdisk *vd, uint64_t off, uint64_t max,
		      struct qcow2_run *run, struct err *e)
{
	struct qcow2 *q = vd->priv;
	uint64_t pos = off, end = off + max;

	run->len = 0;
	while (pos < end) {
		uint64_t ci = pos >> q->cluster_bits;
		uint64_t l1i = ci >> q->l2_bits;
		uint64_t l2i = ci & ((1ULL << q->l2_bits) - 1);
		uint64_t l2off = l1i < q->l1_n ? q->l1[l1i] & QCOW2_L1E_OFFSET_MASK : 0;
		uint64_t host = 0, piece;
		enum qcow2_kind kind = Q2_UNALLOC;
		int r;

		if (!l2off) {
			uint64_t span = (l1i + 1) << (q->l2_bits + q->cluster_bits);

			kind = Q2_UNALLOC;
			piece = min_u64(span, end) - pos;
		} else {
			uint64_t ent, bmp;

			if (l2off & (q->cluster_size - 1))
				return err_set(e, EI_ECORRUPT,
					       "qcow2: L1 entry %llu: L2 table offset 0x%llx is not cluster aligned",
					       (unsigned long long)l1i,
					       (unsigned long long)l2off);
			r = qcow2_l2_get(vd, l2off, l2i, &ent, &bmp, e);
			if (r < 0)
				return r;
			r = qcow2_classify(q, ent, bmp, pos, l2off, l2i, &kind,
					   &host, &piece, e);
			if (r < 0)
				return r;
		}
		piece = min_u64(piece, end - pos);
		if (!run->len) {
			run->kind = kind;
			run->host = host;
		} else if (kind != run->kind || kind == Q2_COMP ||
			   (kind == Q2_DATA && host != run->host + run->len)) {
			break;
		}
		run->len += piece;
		pos += piece;
		if (kind == Q2_COMP)
			break;
	}
	return 0;
}

/*
 * Decompress @in_len bytes into q->dbuf.  The descriptor counts whole
 * sectors, so the stream may be followed by unrelated bytes: deflate
 * stops at its end, and for zstd the frame is measured first.
 */
static int qcow2_decompress(struct qcow2 *q, size_t in_len, size_t *out_len,
			    struct err *e)
{
	if (!q->codec)
		return err_set(e, EI_EUNSUP,
			       "qcow2: compression_type zstd: this edgeimg is built without the zstd codec");
	if (q->h.compression_type == QCOW2_COMPRESSION_ZSTD) {
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
		size_t fl = ZSTD_findFrameCompressedSize(q->cbuf, in_len);

		if (ZSTD_isError(fl))
			return err_set(e, EI_ECODEC, "zstd: %s",
				       ZSTD_getErrorName(fl));
		in_len = fl;
#endif
	}
	return q->codec->decompress(&q->codec_ctx, q->cbuf, in_len, q->dbuf,
				    out_len, e);
}

/* Make q->dbuf hold the compressed cluster of L2 entry @l2e. */
/* The compressed stream of cluster @l2e, checked, into q->cbuf (*@csize bytes). */
static int qcow2_comp_read(struct vdisk *vd, uint64_t l2e, uint64_t *csize, struct err *e)
{
	struct qcow2 *q = vd->priv;
	uint64_t hoff = qcow2_comp_offset(l2e, q->cluster_bits);
	uint64_t want = qcow2_comp_size(l2e, q->cluster_bits);
	uint64_t fsize = vd->io->size;

	if (hoff >= fsize || want - min_u64(want, fsize - hoff) >= QCOW2_COMPRESSED_SECTOR)
		return err_set(e, EI_ECORRUPT,
			       "qcow2: compressed cluster at 0x%llx+%llu lies past the end of the file (%llu bytes)",
			       (unsigned long long)hoff, (unsigned long long)want,
			       (unsigned long long)fsize);
	/* The last sector of the file may be cut short. */
	*csize = min_u64(want, fsize - hoff);
	if (!q->cbuf) {
		q->cbuf = malloc((size_t)q->cluster_size * 2);
		q->dbuf = malloc((size_t)q->cluster_size);
		if (!q->cbuf || !q->dbuf) {
			free(q->cbuf);
			free(q->dbuf);
			q->cbuf = q->dbuf = NULL;
			return err_set(e, -ENOMEM, "qcow2: out of memory");
		}
	}
	q->dbuf_key = 0;
	return io_read(vd->io, q->cbuf, (size_t)*csize, hoff, "qcow2: compressed cluster", e);
}

static int qcow2_comp_load(struct vdisk *vd, uint64_t l2e, struct err *e)
{
	struct qcow2 *q = vd->priv;
	uint64_t hoff = qcow2_comp_offset(l2e, q->cluster_bits);
	uint64_t want = qcow2_comp_size(l2e, q->cluster_bits), csize;
	size_t out_len = (size_t)q->cluster_size;
	int r;

	if (q->dbuf_key == l2e)
		return 0;
	r = qcow2_comp_read(vd, l2e, &csize, e);
	if (r < 0)
		return r;
	r = qcow2_decompress(q, (size_t)csize, &out_len, e);
	if (r < 0) {
		err_prefix(e, "qcow2: compressed cluster at 0x%llx+%llu",
			   (unsigned long long)hoff, (unsigned long long)want);
		return r;
	}
	if (out_len != q->cluster_size)
		return err_set(e, EI_ECODEC,
			       "qcow2: compressed cluster at 0x%llx+%llu holds %zu bytes, not a cluster of %llu",
			       (unsigned long long)hoff, (unsigned long long)want,
			       out_len, (unsigned long long)q->cluster_size);
	q->dbuf_key = l2e;
	return 0;
}

static int qcow2_map(struct vdisk *vd, uint64_t off, uint64_t len,
		     struct map_run *m, struct err *e)
{
	struct qcow2 *q = vd->priv;
	struct qcow2_run run;
	int r = qcow2_find(vd, off, len, &run, e);

	if (r < 0)
		return r;
	m->len = run.len;
	switch (run.kind) {
	case Q2_DATA:
		if (!range_ok(run.host, run.len, vd->io->size))
			return err_set(e, EI_ECORRUPT,
				       "qcow2: L2 entry for guest offset %llu points at host offset 0x%llx+%llu, past the end of the file (%llu bytes)",
				       (unsigned long long)off,
				       (unsigned long long)run.host,
				       (unsigned long long)run.len,
				       (unsigned long long)vd->io->size);
		m->src = MAP_IO;
		m->io = vd->io;
		m->host = run.host;
		m->what = "qcow2: data cluster";
		break;
	case Q2_COMP:
		m->src = MAP_DECODE;
		break;
	case Q2_ZERO:
		m->type = EXT_ZERO;
		break;
	case Q2_UNALLOC:
		/* The backing file's bytes where it has them, else zeros. */
		map_backing(q->backing, off, run.len, m);
		break;
	}
	return 0;
}

/* Compressed clusters: each is inflated whole, the last one kept. */
static int qcow2_decode(struct vdisk *vd, void *buf, size_t len, uint64_t off,
			struct err *e)
{
	struct qcow2 *q = vd->priv;
	uint8_t *p = buf;

	while (len) {
		struct qcow2_run run;
		int r = qcow2_find(vd, off, len, &run, e);

		if (r >= 0 && run.kind != Q2_COMP)
			r = err_set(e, -EIO, "qcow2: guest offset %llu is not compressed",
				    (unsigned long long)off);
		if (r >= 0)
			r = qcow2_comp_load(vd, run.host, e);
		if (r < 0)
			return r;
		memcpy(p, q->dbuf + (off & (q->cluster_size - 1)), (size_t)run.len);
		p += run.len;
		off += run.len;
		len -= (size_t)run.len;
	}
	return 0;
}

static int qcow2_info(struct vdisk *vd, struct info *in, struct err *e)
{
	struct qcow2 *q = vd->priv;
	const struct qcow2_header *h = &q->h;

	(void)e;
	in->cluster_size = q->cluster_size;
	info_str(in, "compat", h->version == 3 ? "1.1" : "0.10");
	info_str(in, "compression-type",
		 h->compression_type == QCOW2_COMPRESSION_ZSTD ? "zstd" : "zlib");
	if (h->version == 3) {
		info_bool(in, "lazy-refcounts",
			  h->compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS);
		info_bool(in, "corrupt",
			  h->incompatible_features & QCOW2_INCOMPAT_CORRUPT);
		info_bool(in, "extended-l2", q->extl2);
	}
	info_u64(in, "refcount-bits", 1ULL << h->refcount_order);
	info_u64(in, "cluster-size", q->cluster_size);
	info_bool(in, "dirty-flag", h->incompatible_features & QCOW2_INCOMPAT_DIRTY);
	if (q->backing) {
		info_str(in, "backing-filename", "%s", q->backing_name);
		if (q->backing_fmt[0])
			info_str(in, "backing-filename-format", "%s", q->backing_fmt);
	}
	info_u64(in, "snapshot-count", h->nb_snapshots);
	if (!q->nsnap)
		return 0;
	info_list(in, "snapshots");
	for (unsigned i = 0; i < q->nsnap; i++) {
		const struct qcow2_snap *s = &q->snap[i];

		info_begin(in, NULL);
		info_str(in, "id", "%s", s->id);
		info_str(in, "name", "%s", s->name);
		info_u64(in, "vm-state-size", s->vm_state_size);
		info_u64(in, "date-sec", s->date_sec);
		info_u64(in, "date-nsec", s->date_nsec);
		info_u64(in, "vm-clock-sec", s->vm_clock_nsec / 1000000000u);
		info_u64(in, "vm-clock-nsec", s->vm_clock_nsec % 1000000000u);
		if (s->has_icount)
			info_u64(in, "icount", s->icount);
		info_end(in);
	}
	info_list_end(in);
	return 0;
}

#include "qcow2-write.h"         /* the writer, check and recipe */

/* --- the compressed clusters of an existing qcow2, by content (reuse) --- */

struct qcow2_reuse_clu {
	uint8_t sha[SHA256_LEN];
	uint64_t host;          /* where its compressed stream starts */
	uint32_t len;           /* the stream's exact length; 0: stored plain */
};

/* At most 16 MiB of index (a disk of 22 GiB in compressed 64 KiB clusters). */
#define QCOW2_REUSE_MAX ((16u << 20) / sizeof(struct qcow2_reuse_clu))

struct qcow2_reuse {
	struct block_reuse r;
	struct vdisk *vd;
	struct qcow2_reuse_clu *c;
	size_t n, cap;
	uint8_t *buf;           /* a plain cluster being indexed */
};

static int qcow2_reuse_cmp(const void *a, const void *b)
{
	return memcmp(a, b, SHA256_LEN);
}

static int qcow2_reuse_lookup(const struct block_reuse *r, const uint8_t *in, size_t len,
			      uint8_t *out, size_t cap, size_t *out_len, int *raw,
			      struct err *e)
{
	struct block_reuse *rw = (struct block_reuse *)r;
	const struct qcow2_reuse *x = r->priv;
	const struct qcow2 *q = x->vd->priv;
	struct qcow2_reuse_clu key;
	const struct qcow2_reuse_clu *hit;
	struct err ignored = { 0 };

	(void)e;
	__atomic_fetch_add(&rw->asked, 1, __ATOMIC_RELAXED);
	if (len != q->cluster_size || !x->n)
		return 0;
	sha256(in, len, key.sha);
	hit = bsearch(&key, x->c, x->n, sizeof(*x->c), qcow2_reuse_cmp);
	if (!hit || hit->len > cap)
		return 0;
	*raw = !hit->len;
	if (*raw)
		goto copied;    /* it did not compress: the content is in hand */
	/* OLD unreadable here: the cluster is compressed instead */
	if (io_read(x->vd->io, out, hit->len, hit->host, "qcow2: a cluster to reuse",
		    &ignored) < 0)
		return 0;
	*out_len = hit->len;
copied:
	__atomic_fetch_add(&rw->copied, 1, __ATOMIC_RELAXED);
	return 1;
}

static void qcow2_reuse_free(struct block_reuse *r)
{
	struct qcow2_reuse *x;

	if (!r)
		return;
	x = r->priv;
	vdisk_close(x->vd);
	free(x->c);
	free(x->buf);
	free(x);
}

/* A new entry of the index, for content @p of a cluster. */
static int qcow2_reuse_entry(struct qcow2_reuse *x, const uint8_t *p, uint64_t host,
			     uint32_t len, struct err *e)
{
	const struct qcow2 *q = x->vd->priv;
	struct qcow2_reuse_clu *c;

	if (x->n == x->cap) {
		size_t cap = x->cap ? 2 * x->cap : 1024;

		c = realloc(x->c, cap * sizeof(*c));
		if (!c)
			return err_set(e, -ENOMEM, "qcow2: out of memory");
		x->c = c;
		x->cap = cap;
	}
	c = &x->c[x->n++];
	sha256(p, (size_t)q->cluster_size, c->sha);
	c->host = host;
	c->len = len;
	return 0;
}

/* Index the plain clusters of a data run at guest @off (whole ones only). */
static int qcow2_reuse_plain(struct qcow2_reuse *x, uint64_t off, const struct qcow2_run *run,
			     struct err *e)
{
	struct vdisk *vd = x->vd;
	struct qcow2 *q = vd->priv;
	uint64_t skip = (q->cluster_size - (off & (q->cluster_size - 1))) & (q->cluster_size - 1);
	int r = 0;

	if (!range_ok(run->host, run->len, vd->io->size))
		return err_set(e, EI_ECORRUPT,
			       "qcow2: L2 entry for guest offset %llu points at host offset 0x%llx+%llu, past the end of the file (%llu bytes)",
			       (unsigned long long)off, (unsigned long long)run->host,
			       (unsigned long long)run->len, (unsigned long long)vd->io->size);
	if (!x->buf && !(x->buf = malloc((size_t)q->cluster_size)))
		return err_set(e, -ENOMEM, "qcow2: out of memory");
	for (uint64_t k = skip; r >= 0 && run->len >= q->cluster_size &&
	     k <= run->len - q->cluster_size && x->n < QCOW2_REUSE_MAX; k += q->cluster_size) {
		r = io_read(vd->io, x->buf, (size_t)q->cluster_size, run->host + k,
			    "qcow2: data cluster", e);
		if (r >= 0)
			r = qcow2_reuse_entry(x, x->buf, run->host + k, 0, e);
	}
	return r;
}

/* Index compressed cluster @l2e of the disk (content in q->dbuf after it). */
static int qcow2_reuse_add(struct qcow2_reuse *x, uint64_t l2e, struct err *e)
{
	struct vdisk *vd = x->vd;
	struct qcow2 *q = vd->priv;
	uint64_t hoff = qcow2_comp_offset(l2e, q->cluster_bits), csize;
	size_t out_len = (size_t)q->cluster_size, used = 0;
	int r;

	/* the reader's checks of the descriptor, and its buffers */
	r = qcow2_comp_read(vd, l2e, &csize, e);
	if (r < 0)
		return r;
	/* the stream's exact length: the sectors may hold the next one's start */
	r = q->codec->decompress_prefix(&q->codec_ctx, q->cbuf, (size_t)csize,
					q->dbuf, &out_len, &used, e);
	if (r < 0)
		return r;
	if (out_len != q->cluster_size || !used || used >= q->cluster_size)
		return 0;       /* not what a writer that compresses stores */
	return qcow2_reuse_entry(x, q->dbuf, hoff, (uint32_t)used, e);
}

int qcow2_reuse_open(const char *path, const struct open_opts *oo, const char *options,
		     struct block_reuse **out, struct err *e)
{
	static const char *const keys[] = { "compress", "compression_type", "cluster_size",
					    "level", "deflate", "zstd" };
	struct open_opts o = *oo;
	struct qcow2_reuse *x;
	const struct qcow2 *q;
	char recipe[QCOW2_RECIPE_MAX + 1];
	int r;

	*out = NULL;
	x = calloc(1, sizeof(*x));
	if (!x)
		return err_set(e, -ENOMEM, "qcow2: out of memory");
	x->r.priv = x;
	o.format = "qcow2";
	o.partition = NULL;     /* the container is the whole file */
	r = vdisk_open(path, &o, &x->vd, e);
	if (r == EI_EFORMAT)
		r = 1;                  /* OLD is no qcow2: nothing to take */
	if (r == 0) {
		q = x->vd->priv;
		r = qcow2_recipe(x->vd, recipe, sizeof(recipe), e);
		/* only what this writer would have compressed the same way */
		if (r == 0 || (r > 0 && (!q->codec || !q->codec->decompress_prefix ||
					 q->backing || !opts_same(recipe, options, keys,
								  sizeof(keys) / sizeof(keys[0]), 4))))
			r = 1;
		else if (r > 0)
			r = 0;
	}
	for (uint64_t off = 0; r == 0 && off < x->vd->size && x->n < QCOW2_REUSE_MAX;) {
		struct qcow2_run run;

		r = qcow2_find(x->vd, off, x->vd->size - off, &run, e);
		if (r == 0 && run.kind == Q2_COMP)
			r = qcow2_reuse_add(x, run.host, e);
		else if (r == 0 && run.kind == Q2_DATA)
			r = qcow2_reuse_plain(x, off, &run, e);
		off += run.len;
	}
	if (r != 0) {
		qcow2_reuse_free(&x->r);
		return r < 0 ? r : 0;
	}
	free(x->buf);
	x->buf = NULL;
	qsort(x->c, x->n, sizeof(*x->c), qcow2_reuse_cmp);
	x->r.lookup = qcow2_reuse_lookup;
	x->r.free = qcow2_reuse_free;
	*out = &x->r;
	return 0;
}

/*
 * The compressed clusters of the active L1 table, for the packed view of
 * delta --exact (snapshots' clusters stay as they are in it).
 */
static int qcow2_pack_blocks(const char *path, const struct open_opts *oo,
			     int (*add)(void *arg, uint64_t off, uint64_t span, uint32_t ulen,
					unsigned method, struct err *e),
			     void *arg, struct err *e)
{
	struct open_opts o = *oo;
	struct vdisk *vd;
	struct qcow2 *q;
	unsigned method = PACK_QEMU_DEFLATE;
	int r;

	o.format = "qcow2";
	r = vdisk_open(path, &o, &vd, e);
	if (r < 0)
		return r;
	q = vd->priv;
	if (q->h.compression_type == QCOW2_COMPRESSION_ZSTD)
		method = PACK_QEMU_ZSTD;
	for (uint64_t off = 0; r >= 0 && off < vd->size;) {
		struct qcow2_run run;

		r = qcow2_find(vd, off, vd->size - off, &run, e);
		if (r >= 0 && run.kind == Q2_COMP)
			r = add(arg, qcow2_comp_offset(run.host, q->cluster_bits),
				qcow2_comp_size(run.host, q->cluster_bits),
				(uint32_t)q->cluster_size, method, e);
		off += run.len;
	}
	vdisk_close(vd);
	return r;
}

const struct img_format fmt_qcow2 = {
	.name = "qcow2",
	.desc = "QEMU copy-on-write disk image, versions 2 and 3",
	.probe = qcow2_probe,
	.open = qcow2_open,
	.map = qcow2_map,
	.decode = qcow2_decode,
	.close = qcow2_close,
	.info = qcow2_info,
	.recipe = qcow2_recipe,
	.check = qcow2_check,
	.write = IS_ENABLED(CONFIG_OUTPUT_QCOW2) ? qcow2_write : NULL,
	.write_parse = IS_ENABLED(CONFIG_OUTPUT_QCOW2) ? qcow2_opts_parse : NULL,
	.wopts = IS_ENABLED(CONFIG_OUTPUT_QCOW2) ? qcow2_write_options : NULL,
	.reuse_open = IS_ENABLED(CONFIG_OUTPUT_QCOW2) ? qcow2_reuse_open : NULL,
	.write_recipe = IS_ENABLED(CONFIG_OUTPUT_QCOW2) ? qcow2_write_recipe : NULL,
	.pack_blocks = qcow2_pack_blocks,
};
