/* SPDX-License-Identifier: MIT */
/*
 * qcow2 on-disk layout, shared by the reader and the writer.
 * Spec: QEMU docs/interop/qcow2.txt (versions 2 and 3, extended L2 entries).
 * Every multi-byte field is big-endian.
 */
#ifndef EDGEIMG_FORMATS_QCOW2_H
#define EDGEIMG_FORMATS_QCOW2_H

#include <stdint.h>

#include "core/bytes.h"

#define QCOW2_MAGIC 0x514649fbu         /* "QFI\xfb" */

/* Header fields: byte offsets. */
#define QCOW2_OFF_MAGIC 0               /* u32 */
#define QCOW2_OFF_VERSION 4             /* u32: 2 or 3 */
#define QCOW2_OFF_BACKING_OFFSET 8      /* u64 */
#define QCOW2_OFF_BACKING_SIZE 16       /* u32 */
#define QCOW2_OFF_CLUSTER_BITS 20       /* u32 */
#define QCOW2_OFF_SIZE 24               /* u64: virtual size in bytes */
#define QCOW2_OFF_CRYPT_METHOD 32       /* u32: 0 none, 1 AES, 2 LUKS */
#define QCOW2_OFF_L1_SIZE 36            /* u32: entries */
#define QCOW2_OFF_L1_OFFSET 40          /* u64 */
#define QCOW2_OFF_REFTABLE_OFFSET 48    /* u64 */
#define QCOW2_OFF_REFTABLE_CLUSTERS 56  /* u32 */
#define QCOW2_OFF_NB_SNAPSHOTS 60       /* u32 */
#define QCOW2_OFF_SNAPSHOTS_OFFSET 64   /* u64 */
/* Version 3 only. */
#define QCOW2_OFF_INCOMPAT 72           /* u64 */
#define QCOW2_OFF_COMPAT 80             /* u64 */
#define QCOW2_OFF_AUTOCLEAR 88          /* u64 */
#define QCOW2_OFF_REFCOUNT_ORDER 96     /* u32: refcount_bits = 1 << order */
#define QCOW2_OFF_HEADER_LENGTH 100     /* u32 */
#define QCOW2_OFF_COMPRESSION_TYPE 104  /* u8, when header_length > 104 */

#define QCOW2_HEADER_V2_LEN 72
#define QCOW2_HEADER_V3_MIN_LEN 104
#define QCOW2_HEADER_V3_LEN 112         /* with compression_type, padded */

#define QCOW2_CRYPT_NONE 0
#define QCOW2_CRYPT_AES 1
#define QCOW2_CRYPT_LUKS 2

/* incompatible_features */
#define QCOW2_INCOMPAT_DIRTY (1ULL << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ULL << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ULL << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ULL << 3)
#define QCOW2_INCOMPAT_EXTL2 (1ULL << 4)
#define QCOW2_INCOMPAT_KNOWN 0x1fULL
/* compatible_features */
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ULL << 0)
/* autoclear_features */
#define QCOW2_AUTOCLEAR_BITMAPS (1ULL << 0)
#define QCOW2_AUTOCLEAR_DATA_FILE_RAW (1ULL << 1)

#define QCOW2_COMPRESSION_ZLIB 0        /* raw deflate, no zlib header */
#define QCOW2_COMPRESSION_ZSTD 1        /* one zstd frame per cluster */

/* Header extensions: u32 type, u32 length, data padded to 8 bytes. */
#define QCOW2_EXT_END 0x00000000u
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE 0x6803f857u
#define QCOW2_EXT_CRYPTO_HEADER 0x0537be77u
#define QCOW2_EXT_BITMAPS 0x23852875u
#define QCOW2_EXT_DATA_FILE 0x44415441u
#define QCOW2_EXT_HEADER_LEN 8
#define QCOW2_FEATURE_ENTRY_LEN 48      /* u8 type, u8 bit, char name[46] */
#define QCOW2_FEATURE_NAME_LEN 46
#define QCOW2_FEATURE_INCOMPAT 0
#define QCOW2_FEATURE_COMPAT 1
#define QCOW2_FEATURE_AUTOCLEAR 2

/* Limits, as QEMU enforces them. */
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_MAX_REFCOUNT_ORDER 6
#define QCOW2_MAX_L1_BYTES (32u << 20)
#define QCOW2_MAX_REFTABLE_BYTES (8u << 20)
#define QCOW2_MAX_SNAPSHOTS 65536u
#define QCOW2_MAX_SNAPSHOTS_BYTES (1024ULL * QCOW2_MAX_SNAPSHOTS)
#define QCOW2_MAX_SNAPSHOT_EXTRA 1024u
#define QCOW2_MAX_BACKING_NAME 1023u
#define QCOW2_MAX_BACKING_FORMAT 15u    /* QEMU keeps it in char[16] */

/* L1 and refcount table entries. */
#define QCOW2_L1E_OFFSET_MASK 0x00fffffffffffe00ULL
#define QCOW2_REFT_OFFSET_MASK 0xfffffffffffffe00ULL

/* L2 entries (the first 64 bits of an extended entry). */
#define QCOW2_L2E_COPIED (1ULL << 63)
#define QCOW2_L2E_COMPRESSED (1ULL << 62)
#define QCOW2_L2E_ZERO (1ULL << 0)      /* v3 without extended L2 only */
#define QCOW2_L2E_OFFSET_MASK 0x00fffffffffffe00ULL

/* Extended L2: 32 subclusters, second word = zero bits << 32 | alloc bits. */
#define QCOW2_SUBCLUSTERS 32
#define QCOW2_EXTL2_ENTRY_LEN 16
#define QCOW2_L2_ENTRY_LEN 8
#define QCOW2_SC_ALLOC(sc) (1ULL << (sc))
#define QCOW2_SC_ZERO(sc) (1ULL << (32 + (sc)))
#define QCOW2_SC_ALLOC_ALL 0x00000000ffffffffULL

/*
 * Compressed cluster descriptor (x = 62 - (cluster_bits - 8)): bits 0..x-1
 * the host byte offset, bits x..61 the number of 512-byte sectors after
 * the one holding that offset.
 */
#define QCOW2_COMPRESSED_SECTOR 512u

static inline unsigned qcow2_csize_shift(unsigned cluster_bits)
{
	return 62 - (cluster_bits - 8);
}

static inline uint64_t qcow2_comp_offset(uint64_t l2e, unsigned cluster_bits)
{
	return l2e & ((1ULL << qcow2_csize_shift(cluster_bits)) - 1);
}

/* The bytes the descriptor covers from its offset: it may overshoot. */
static inline uint64_t qcow2_comp_size(uint64_t l2e, unsigned cluster_bits)
{
	uint64_t mask = (1ULL << (cluster_bits - 8)) - 1;
	uint64_t nsec = ((l2e >> qcow2_csize_shift(cluster_bits)) & mask) + 1;

	return nsec * QCOW2_COMPRESSED_SECTOR -
	       (qcow2_comp_offset(l2e, cluster_bits) & (QCOW2_COMPRESSED_SECTOR - 1));
}

/* Snapshot table entry: a fixed part, extra data, id, name, padding to 8. */
#define QCOW2_SN_L1_OFFSET 0            /* u64 */
#define QCOW2_SN_L1_SIZE 8              /* u32 */
#define QCOW2_SN_ID_SIZE 12             /* u16 */
#define QCOW2_SN_NAME_SIZE 14           /* u16 */
#define QCOW2_SN_DATE_SEC 16            /* u32 */
#define QCOW2_SN_DATE_NSEC 20           /* u32 */
#define QCOW2_SN_VM_CLOCK_NSEC 24       /* u64 */
#define QCOW2_SN_VM_STATE_SIZE 32       /* u32 */
#define QCOW2_SN_EXTRA_SIZE 36          /* u32 */
#define QCOW2_SN_HEADER_LEN 40
/* Extra data, relative to its start. */
#define QCOW2_SNX_VM_STATE_SIZE 0       /* u64 */
#define QCOW2_SNX_DISK_SIZE 8           /* u64 */
#define QCOW2_SNX_ICOUNT 16             /* u64, -1 when unknown */
#define QCOW2_SNX_LEN 24

/* The fixed header fields, decoded. */
struct qcow2_header {
	uint32_t magic;
	uint32_t version;
	uint64_t backing_file_offset;
	uint32_t backing_file_size;
	uint32_t cluster_bits;
	uint64_t size;
	uint32_t crypt_method;
	uint32_t l1_size;
	uint64_t l1_table_offset;
	uint64_t refcount_table_offset;
	uint32_t refcount_table_clusters;
	uint32_t nb_snapshots;
	uint64_t snapshots_offset;
	uint64_t incompatible_features;
	uint64_t compatible_features;
	uint64_t autoclear_features;
	uint32_t refcount_order;
	uint32_t header_length;
	uint8_t compression_type;
};

/*
 * qcow2_header_decode() - decode the first @len bytes of a header (at
 * least QCOW2_HEADER_V2_LEN).  Version-3 fields absent from @len take the
 * version-2 defaults; nothing is validated.
 */
static inline void qcow2_header_decode(const uint8_t *p, unsigned len,
				       struct qcow2_header *h)
{
	h->magic = get_be32(p + QCOW2_OFF_MAGIC);
	h->version = get_be32(p + QCOW2_OFF_VERSION);
	h->backing_file_offset = get_be64(p + QCOW2_OFF_BACKING_OFFSET);
	h->backing_file_size = get_be32(p + QCOW2_OFF_BACKING_SIZE);
	h->cluster_bits = get_be32(p + QCOW2_OFF_CLUSTER_BITS);
	h->size = get_be64(p + QCOW2_OFF_SIZE);
	h->crypt_method = get_be32(p + QCOW2_OFF_CRYPT_METHOD);
	h->l1_size = get_be32(p + QCOW2_OFF_L1_SIZE);
	h->l1_table_offset = get_be64(p + QCOW2_OFF_L1_OFFSET);
	h->refcount_table_offset = get_be64(p + QCOW2_OFF_REFTABLE_OFFSET);
	h->refcount_table_clusters = get_be32(p + QCOW2_OFF_REFTABLE_CLUSTERS);
	h->nb_snapshots = get_be32(p + QCOW2_OFF_NB_SNAPSHOTS);
	h->snapshots_offset = get_be64(p + QCOW2_OFF_SNAPSHOTS_OFFSET);
	h->incompatible_features = 0;
	h->compatible_features = 0;
	h->autoclear_features = 0;
	h->refcount_order = 4;
	h->header_length = QCOW2_HEADER_V2_LEN;
	h->compression_type = QCOW2_COMPRESSION_ZLIB;
	if (len >= QCOW2_HEADER_V3_MIN_LEN) {
		h->incompatible_features = get_be64(p + QCOW2_OFF_INCOMPAT);
		h->compatible_features = get_be64(p + QCOW2_OFF_COMPAT);
		h->autoclear_features = get_be64(p + QCOW2_OFF_AUTOCLEAR);
		h->refcount_order = get_be32(p + QCOW2_OFF_REFCOUNT_ORDER);
		h->header_length = get_be32(p + QCOW2_OFF_HEADER_LENGTH);
	}
	if (len > QCOW2_OFF_COMPRESSION_TYPE)
		h->compression_type = p[QCOW2_OFF_COMPRESSION_TYPE];
}

/*
 * qcow2_header_encode() - write @h into @p: QCOW2_HEADER_V2_LEN bytes for
 * version 2, QCOW2_HEADER_V3_LEN for version 3 (the caller sets
 * header_length accordingly).
 */
static inline void qcow2_header_encode(const struct qcow2_header *h, uint8_t *p)
{
	put_be32(p + QCOW2_OFF_MAGIC, h->magic);
	put_be32(p + QCOW2_OFF_VERSION, h->version);
	put_be64(p + QCOW2_OFF_BACKING_OFFSET, h->backing_file_offset);
	put_be32(p + QCOW2_OFF_BACKING_SIZE, h->backing_file_size);
	put_be32(p + QCOW2_OFF_CLUSTER_BITS, h->cluster_bits);
	put_be64(p + QCOW2_OFF_SIZE, h->size);
	put_be32(p + QCOW2_OFF_CRYPT_METHOD, h->crypt_method);
	put_be32(p + QCOW2_OFF_L1_SIZE, h->l1_size);
	put_be64(p + QCOW2_OFF_L1_OFFSET, h->l1_table_offset);
	put_be64(p + QCOW2_OFF_REFTABLE_OFFSET, h->refcount_table_offset);
	put_be32(p + QCOW2_OFF_REFTABLE_CLUSTERS, h->refcount_table_clusters);
	put_be32(p + QCOW2_OFF_NB_SNAPSHOTS, h->nb_snapshots);
	put_be64(p + QCOW2_OFF_SNAPSHOTS_OFFSET, h->snapshots_offset);
	if (h->version < 3)
		return;
	put_be64(p + QCOW2_OFF_INCOMPAT, h->incompatible_features);
	put_be64(p + QCOW2_OFF_COMPAT, h->compatible_features);
	put_be64(p + QCOW2_OFF_AUTOCLEAR, h->autoclear_features);
	put_be32(p + QCOW2_OFF_REFCOUNT_ORDER, h->refcount_order);
	put_be32(p + QCOW2_OFF_HEADER_LENGTH, h->header_length);
	p[QCOW2_OFF_COMPRESSION_TYPE] = h->compression_type;
	for (unsigned i = QCOW2_OFF_COMPRESSION_TYPE + 1; i < QCOW2_HEADER_V3_LEN; i++)
		p[i] = 0;
}

#endif
