// SPDX-License-Identifier: MIT
/*
 * VHDX (Hyper-V) disk images, read side: fixed and dynamic disks with
 * 512- or 4096-byte logical sectors; a dirty metadata log is replayed
 * into memory, never into the file.
 *
 * Spec: Microsoft "VHDX Format Specification v1.00" (MS-VHDX), with
 * QEMU's block/vhdx.c and block/vhdx-log.c as the reference reader.
 * Differencing disks (has_parent) are read over their parent with
 * --allow-refs: the parent is the relative_path of the VHDX parent
 * locator, a plain file name in the child's directory, and must be a VHDX
 * whose DataWriteGuid is the child's parent_linkage (or parent_linkage2).
 */
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "core/format.h"
#include "core/limits.h"

#define VHDX_KIB 1024ULL
#define VHDX_MIB (1024ULL * 1024)

/* The fixed layout of the first MiB ("header section"). */
#define VHDX_HEADER1_OFF (64 * VHDX_KIB)
#define VHDX_HEADER2_OFF (128 * VHDX_KIB)
#define VHDX_HEADER_SIZE 4096
#define VHDX_HEADER_CMP 80              /* the defined part of a header */
#define VHDX_REGION1_OFF (192 * VHDX_KIB)
#define VHDX_REGION2_OFF (256 * VHDX_KIB)
#define VHDX_REGION_SIZE (64 * VHDX_KIB)
#define VHDX_HEADERS_END (320 * VHDX_KIB) /* what the section holds */
#define VHDX_REGION_MAX_ENTRIES 2047
#define VHDX_REGION_REQUIRED 1u

#define VHDX_METADATA_TABLE_SIZE (64 * VHDX_KIB)
#define VHDX_METADATA_REQUIRED (1u << 2)

#define VHDX_PARAM_LEAVE_ALLOCATED 1u   /* a fixed disk */
#define VHDX_PARAM_HAS_PARENT 2u        /* a differencing disk */

#define VHDX_BLOCK_MIN VHDX_MIB
#define VHDX_BLOCK_MAX (256 * VHDX_MIB)
#define VHDX_MAX_SECTORS_PER_BLOCK (1ULL << 23)
#define VHDX_MAX_DISK_SIZE (64ULL << 40)

#define VHDX_SB_BLOCK_SIZE VHDX_MIB   /* a sector bitmap block */
#define VHDX_SB_PRESENT 6u

/* The parent locator item of a differencing disk. */
#define VHDX_LOCATOR_HDR 20             /* LocatorType, Reserved, KeyValueCount */
#define VHDX_LOCATOR_ENTRY 12           /* KeyOffset, ValueOffset, lengths */
#define VHDX_LOCATOR_MAX (64 * VHDX_KIB)
#define VHDX_PATH_MAX 512               /* relative_path as UTF-8, with NUL */

#define VHDX_BAT_STATE_MASK 7u
#define VHDX_BAT_OFF_MASK 0xfffffffffff00000ULL

enum vhdx_block_state {
	VHDX_BLOCK_NOT_PRESENT = 0,
	VHDX_BLOCK_UNDEFINED = 1,
	VHDX_BLOCK_ZERO = 2,
	VHDX_BLOCK_UNMAPPED = 3,
	VHDX_BLOCK_UNMAPPED_V095 = 5,   /* pre-1.0 writers; QEMU reads it */
	VHDX_BLOCK_FULLY_PRESENT = 6,
	VHDX_BLOCK_PARTIALLY_PRESENT = 7,
};

/* The log: 4 KiB sectors in a circular buffer. */
#define VHDX_LOG_SECTOR 4096u
#define VHDX_LOG_HDR_SIZE 64u
#define VHDX_LOG_DESC_SIZE 32u
#define VHDX_LOG_DATA_BYTES 4084u
/* Descriptors (zero or data writes) replayed from one log, at most. */
#define VHDX_LOG_MAX_WRITES 65536u
/* Bytes checksummed while searching the log for its active sequence. */
#define VHDX_LOG_SCAN_MAX (256 * VHDX_MIB)

/* GUIDs as stored: the first three fields little-endian. */
static const uint8_t vhdx_guid_bat[16] = {
	0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42,
	0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08 };
static const uint8_t vhdx_guid_metadata[16] = {
	0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47, 0x9a, 0x4b,
	0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e };
/* LocatorType of a VHDX parent: B04AEFB7-D19E-4A81-B789-25B8E9445913 */
static const uint8_t vhdx_guid_locator[16] = {
	0xb7, 0xef, 0x4a, 0xb0, 0x9e, 0xd1, 0x81, 0x4a,
	0xb7, 0x89, 0x25, 0xb8, 0xe9, 0x44, 0x59, 0x13 };

enum vhdx_item {
	VHDX_ITEM_FILE_PARAMS,
	VHDX_ITEM_DISK_SIZE,
	VHDX_ITEM_PAGE83,
	VHDX_ITEM_LOGICAL_SECTOR,
	VHDX_ITEM_PHYSICAL_SECTOR,
	VHDX_ITEM_PARENT_LOCATOR,
	VHDX_ITEMS
};

static const struct vhdx_item_def {
	uint8_t guid[16];
	const char *name;
	uint32_t len;                   /* bytes this reader needs */
} vhdx_items[VHDX_ITEMS] = {
	[VHDX_ITEM_FILE_PARAMS] = { { 0x37, 0x67, 0xa1, 0xca, 0x36, 0xfa, 0x43, 0x4d,
		0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b }, "file parameters", 8 },
	[VHDX_ITEM_DISK_SIZE] = { { 0x24, 0x42, 0xa5, 0x2f, 0x1b, 0xcd, 0x76, 0x48,
		0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8 }, "virtual disk size", 8 },
	[VHDX_ITEM_PAGE83] = { { 0xab, 0x12, 0xca, 0xbe, 0xe6, 0xb2, 0x23, 0x45,
		0x93, 0xef, 0xc3, 0x09, 0xe0, 0x00, 0xc7, 0x46 }, "page 83 data", 16 },
	[VHDX_ITEM_LOGICAL_SECTOR] = { { 0x1d, 0xbf, 0x41, 0x81, 0x6f, 0xa9, 0x09, 0x47,
		0xba, 0x47, 0xf2, 0x33, 0xa8, 0xfa, 0xab, 0x5f }, "logical sector size", 4 },
	[VHDX_ITEM_PHYSICAL_SECTOR] = { { 0xc7, 0x48, 0xa3, 0xcd, 0x5d, 0x44, 0x71, 0x44,
		0x9c, 0xc9, 0xe9, 0x88, 0x52, 0x51, 0xc5, 0x56 }, "physical sector size", 4 },
	[VHDX_ITEM_PARENT_LOCATOR] = { { 0x2d, 0x5f, 0xd3, 0xa8, 0x0b, 0xb3, 0x4d, 0x45,
		0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c }, "parent locator",
		VHDX_LOCATOR_HDR },
};

/* A range of the file that payload blocks must not overlap. */
struct vhdx_region {
	uint64_t start, end;
	const char *what;
	unsigned idx;                   /* region table entry, for messages */
};

/* One write replayed from the log: 4 KiB of data, or a run of zeros. */
struct vhdx_write {
	uint64_t off, len;
	uint64_t src;                   /* the data sector in the file; 0: zeros */
	uint8_t lead[8], trail[4];      /* bytes kept in the descriptor */
};

struct vhdx {
	uint64_t *bat;                  /* payload entries only, one per block */
	uint64_t nblocks;
	uint32_t block_size, block_bits;
	uint32_t lss, pss, chunk_ratio;
	uint32_t params;
	uint64_t file_size;             /* the file as the replayed log left it */
	struct vhdx_write *wr;          /* replayed writes, in order */
	size_t nwr, wr_cap;
	uint64_t wr_start, wr_end;      /* the span they cover */
	uint32_t log_entries;           /* log entries replayed */
	struct vhdx_region *reg;        /* sorted, while opening */
	unsigned nreg;
	uint32_t crc[8][256];           /* CRC-32C (Castagnoli), sliced by 8 */
	uint8_t data_guid[16];          /* DataWriteGuid of the header used */

	/* A differencing disk: what is not in this file is in the parent. */
	struct vdisk *parent;
	uint64_t *sb;                   /* sector bitmap BAT entries, one a chunk */
	uint64_t nchunks;
	uint8_t *bm;                    /* the sector bitmap bits of block bm_blk */
	uint64_t bm_blk;
	uint8_t linkage[2][16];         /* parent_linkage, parent_linkage2 */
	unsigned nlinkage;
	char parent_path[VHDX_PATH_MAX]; /* relative_path as stored, UTF-8 */
	const char *parent_name;        /* its file name part, in parent_path */
};

static int vhdx_probe(const uint8_t *head, size_t head_len, const uint8_t *tail,
		      size_t tail_len, uint64_t file_size)
{
	(void)tail;
	(void)tail_len;
	(void)file_size;
	if (head_len >= 8 && !memcmp(head, "vhdxfile", 8))
		return PROBE_CERTAIN;
	return 0;
}

/* --- CRC-32C ------------------------------------------------------------- */

static void vhdx_crc_init(uint32_t t[8][256])
{
	for (unsigned i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		t[0][i] = c;
	}
	for (unsigned i = 0; i < 256; i++)
		for (int k = 1; k < 8; k++)
			t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
}

/* Feed @len bytes to the running (not inverted) CRC state @c. */
static uint32_t vhdx_crc_update(const uint32_t t[8][256], uint32_t c,
				const uint8_t *p, size_t len)
{
	while (len >= 8) {
		uint32_t lo = get_le32(p) ^ c, hi = get_le32(p + 4);

		c = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^
		    t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
		    t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^
		    t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		c = t[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	return c;
}

/*
 * The running CRC of a structure whose own checksum field, at offset 4,
 * counts as zero.  Start from 0xffffffff; the checksum is the state
 * inverted at the end.
 */
static uint32_t vhdx_crc_struct(const uint32_t t[8][256], uint32_t c,
				const uint8_t *p, size_t len)
{
	static const uint8_t zero[4];

	c = vhdx_crc_update(t, c, p, 4);
	c = vhdx_crc_update(t, c, zero, 4);
	return vhdx_crc_update(t, c, p + 8, len - 8);
}

/* --- reading the file, through the replayed log -------------------------- */

static bool vhdx_wr_hits(const struct vhdx *s, uint64_t off, uint64_t len)
{
	return s->nwr && off < s->wr_end && off + len > s->wr_start;
}

/*
 * Read file bytes as the replayed log leaves them: the file, then zeros
 * past its end (the log may grow it), then every log write in order.
 */
static int vhdx_pread(struct vdisk *vd, void *buf, size_t len, uint64_t off,
		      const char *what, struct err *e)
{
	struct vhdx *s = vd->priv;
	uint64_t real = vd->io->size;
	uint8_t *b = buf;
	int r;

	if (s->file_size == real && !vhdx_wr_hits(s, off, len))
		return io_read(vd->io, buf, len, off, what, e);
	if (!range_ok(off, len, s->file_size))
		return err_set(e, EI_ETRUNC,
			       "%s at %llu+%zu lies past the end of the file after log replay (%llu bytes)",
			       what, (unsigned long long)off, len,
			       (unsigned long long)s->file_size);
	if (off < real) {
		size_t n = (size_t)min_u64(len, real - off);

		r = io_read(vd->io, b, n, off, what, e);
		if (r < 0)
			return r;
		if (n < len)
			memset(b + n, 0, len - n);
	} else {
		memset(b, 0, len);
	}
	if (!vhdx_wr_hits(s, off, len))
		return 0;
	for (size_t i = 0; i < s->nwr; i++) {
		const struct vhdx_write *w = &s->wr[i];
		uint64_t a, z;

		if (w->off >= off + len || w->off + w->len <= off)
			continue;
		a = w->off > off ? w->off : off;
		z = min_u64(w->off + w->len, off + len);
		if (!w->src) {
			memset(b + (a - off), 0, (size_t)(z - a));
		} else {
			uint8_t sec[VHDX_LOG_SECTOR];

			memcpy(sec, w->lead, 8);
			r = io_read(vd->io, sec + 8, VHDX_LOG_DATA_BYTES, w->src + 8,
				    "vhdx: log data sector", e);
			if (r < 0)
				return r;
			memcpy(sec + 8 + VHDX_LOG_DATA_BYTES, w->trail, 4);
			memcpy(b + (a - off), sec + (a - w->off), (size_t)(z - a));
		}
	}
	return 0;
}

/* --- regions: ranges that must not overlap -------------------------------- */

/* The region overlapping [start, start + len), or NULL; regions are sorted. */
static const struct vhdx_region *vhdx_region_find(const struct vhdx *s,
						  uint64_t start, uint64_t len)
{
	unsigned lo = 0, hi = s->nreg;

	/* The first region that ends after start; sorted and disjoint. */
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (s->reg[mid].end <= start)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < s->nreg && s->reg[lo].start < start + len)
		return &s->reg[lo];
	return NULL;
}

static int vhdx_region_add(struct vhdx *s, uint64_t start, uint64_t len,
			   const char *what, unsigned idx, struct err *e)
{
	const struct vhdx_region *o;
	unsigned i;

	if (!len)
		return 0;
	if (start + len < start)
		return err_set(e, EI_ECORRUPT, "vhdx: %s at %llu+%llu wraps around",
			       what, (unsigned long long)start,
			       (unsigned long long)len);
	o = vhdx_region_find(s, start, len);
	if (o)
		return err_set(e, EI_ECORRUPT,
			       "vhdx: %s at %llu+%llu overlaps the %s at %llu+%llu",
			       what, (unsigned long long)start,
			       (unsigned long long)len, o->what,
			       (unsigned long long)o->start,
			       (unsigned long long)(o->end - o->start));
	for (i = s->nreg; i > 0 && s->reg[i - 1].start > start; i--)
		s->reg[i] = s->reg[i - 1];
	s->reg[i] = (struct vhdx_region){ start, start + len, what, idx };
	s->nreg++;
	return 0;
}

/* --- headers ------------------------------------------------------------- */

struct vhdx_header {
	uint64_t seq;
	uint8_t log_guid[16];
	uint16_t log_version;
	uint32_t log_length;
	uint64_t log_offset;
	uint8_t raw[VHDX_HEADER_CMP];
};

/* 1 and *@h filled when the header at @off is valid, 0 with @why if not. */
static int vhdx_header_load(struct vdisk *vd, uint64_t off,
			    struct vhdx_header *h, char *why, size_t why_len)
{
	struct vhdx *s = vd->priv;
	uint8_t b[VHDX_HEADER_SIZE];
	uint32_t want, got;
	struct err tmp = { 0 };

	if (io_read(vd->io, b, sizeof(b), off, "vhdx: header", &tmp) < 0) {
		snprintf(why, why_len, "is past the end of the file");
		return 0;
	}
	if (memcmp(b, "head", 4)) {
		snprintf(why, why_len, "has no 'head' signature");
		return 0;
	}
	want = get_le32(b + 4);
	got = ~vhdx_crc_struct(s->crc, 0xffffffffu, b, sizeof(b));
	if (want != got) {
		snprintf(why, why_len, "has CRC-32C 0x%08x, its bytes give 0x%08x",
			 want, got);
		return 0;
	}
	if (get_le16(b + 66) != 1) {
		snprintf(why, why_len, "has version %u, not 1", get_le16(b + 66));
		return 0;
	}
	h->seq = get_le64(b + 8);
	memcpy(h->log_guid, b + 48, 16);
	h->log_version = get_le16(b + 64);
	h->log_length = get_le32(b + 68);
	h->log_offset = get_le64(b + 72);
	memcpy(h->raw, b, sizeof(h->raw));
	return 1;
}

static int vhdx_header_pick(struct vdisk *vd, struct vhdx_header *out,
			    struct err *e)
{
	struct vhdx_header h[2];
	char why[2][96];
	int v[2];

	v[0] = vhdx_header_load(vd, VHDX_HEADER1_OFF, &h[0], why[0], sizeof(why[0]));
	v[1] = vhdx_header_load(vd, VHDX_HEADER2_OFF, &h[1], why[1], sizeof(why[1]));
	if (!v[0] && !v[1])
		return err_set(e, EI_ECORRUPT,
			       "vhdx: no valid VHDX header found: header 1 %s; header 2 %s",
			       why[0], why[1]);
	if (v[0] && v[1] && h[0].seq == h[1].seq &&
	    memcmp(h[0].raw, h[1].raw, sizeof(h[0].raw)))
		return err_set(e, EI_ECORRUPT,
			       "vhdx: no valid VHDX header found: both headers have sequence number %llu but differ",
			       (unsigned long long)h[0].seq);
	/* The higher sequence number wins; Disk2VHD writes two equal ones. */
	*out = (v[0] && (!v[1] || h[0].seq >= h[1].seq)) ? h[0] : h[1];
	return 0;
}

/* --- log replay ------------------------------------------------------------ */

struct vhdx_log {
	const uint8_t *buf;             /* the whole log, in memory */
	uint64_t off;                   /* its place in the file */
	uint32_t nsec;                  /* its length in 4 KiB sectors */
	const uint8_t *guid;
	uint64_t budget;                /* bytes left to checksum */
};

struct vhdx_log_entry {
	uint64_t seq;
	uint32_t nsec;                  /* sectors of the entry */
	uint32_t ndesc, desc_sec;       /* descriptors, sectors they take */
	uint64_t flushed, last;         /* FlushedFileOffset, LastFileOffset */
};

static const uint8_t *vhdx_log_sector(const struct vhdx_log *l, uint32_t pos,
				      uint32_t k)
{
	return l->buf + (size_t)((pos + (uint64_t)k) % l->nsec) * VHDX_LOG_SECTOR;
}

static const uint8_t *vhdx_log_desc(const struct vhdx_log *l, uint32_t pos,
				    uint32_t i)
{
	uint64_t at = VHDX_LOG_HDR_SIZE + (uint64_t)i * VHDX_LOG_DESC_SIZE;

	/* 4096 is a multiple of 32: a descriptor never straddles sectors. */
	return vhdx_log_sector(l, pos, (uint32_t)(at / VHDX_LOG_SECTOR)) +
	       at % VHDX_LOG_SECTOR;
}

/*
 * Is there a valid log entry at sector @pos?  1 with *@le filled, 0 if not
 * (a torn or stale entry, which ends a sequence), or an error for an entry
 * whose checksum holds but whose descriptors are corrupt.
 */
static int vhdx_log_entry(struct vdisk *vd, struct vhdx_log *l, uint32_t pos,
			  struct vhdx_log_entry *le, struct err *e)
{
	struct vhdx *s = vd->priv;
	const uint8_t *h = vhdx_log_sector(l, pos, 0);
	uint32_t len = get_le32(h + 8), c, ndata = 0;
	uint64_t seq = get_le64(h + 16);

	if (memcmp(h, "loge", 4) || !len || len % VHDX_LOG_SECTOR ||
	    len / VHDX_LOG_SECTOR > l->nsec || !seq || memcmp(h + 32, l->guid, 16))
		return 0;
	le->seq = seq;
	le->nsec = len / VHDX_LOG_SECTOR;
	le->ndesc = get_le32(h + 24);
	if ((uint64_t)le->ndesc * VHDX_LOG_DESC_SIZE > len)
		return 0;
	le->desc_sec = (uint32_t)(((uint64_t)le->ndesc + 2 + 127) / 128);
	if (le->desc_sec > le->nsec)
		return 0;
	le->flushed = get_le64(h + 48);
	le->last = get_le64(h + 56);
	if (len > l->budget)
		return err_set(e, EI_ELIMIT,
			       "vhdx: log: searching it would checksum more than %llu bytes",
			       (unsigned long long)VHDX_LOG_SCAN_MAX);
	l->budget -= len;
	c = vhdx_crc_struct(s->crc, 0xffffffffu, h, VHDX_LOG_SECTOR);
	for (uint32_t k = 1; k < le->nsec; k++)
		c = vhdx_crc_update(s->crc, c, vhdx_log_sector(l, pos, k),
				    VHDX_LOG_SECTOR);
	if (~c != get_le32(h + 4))
		return 0;

	for (uint32_t i = 0; i < le->ndesc; i++) {
		const uint8_t *d = vhdx_log_desc(l, pos, i);
		uint64_t foff = get_le64(d + 16);

		if (get_le64(d + 24) != seq)
			return err_set(e, EI_ECORRUPT,
				       "vhdx: log entry %llu: descriptor %u has sequence number %llu",
				       (unsigned long long)seq, i,
				       (unsigned long long)get_le64(d + 24));
		if (foff % VHDX_LOG_SECTOR)
			return err_set(e, EI_ECORRUPT,
				       "vhdx: log entry %llu: descriptor %u file offset %llu is not a multiple of 4096",
				       (unsigned long long)seq, i,
				       (unsigned long long)foff);
		if (!memcmp(d, "desc", 4)) {
			ndata++;
		} else if (!memcmp(d, "zero", 4)) {
			if (get_le64(d + 8) % VHDX_LOG_SECTOR)
				return err_set(e, EI_ECORRUPT,
					       "vhdx: log entry %llu: zero descriptor %u length %llu is not a multiple of 4096",
					       (unsigned long long)seq, i,
					       (unsigned long long)get_le64(d + 8));
		} else {
			return err_set(e, EI_ECORRUPT,
				       "vhdx: log entry %llu: descriptor %u has no 'desc' or 'zero' signature",
				       (unsigned long long)seq, i);
		}
	}
	if ((uint64_t)le->desc_sec + ndata > le->nsec)
		return err_set(e, EI_ECORRUPT,
			       "vhdx: log entry %llu: %u data descriptors do not fit its %u sectors",
			       (unsigned long long)seq, ndata, le->nsec);
	for (uint32_t k = 0; k < ndata; k++) {
		const uint8_t *d = vhdx_log_sector(l, pos, le->desc_sec + k);
		uint64_t dseq = (uint64_t)get_le32(d + 4) << 32 | get_le32(d + 4092);

		if (memcmp(d, "data", 4) || dseq != seq)
			return err_set(e, EI_ECORRUPT,
				       "vhdx: log entry %llu: data sector %u has no 'data' signature or sequence number %llu",
				       (unsigned long long)seq, k,
				       (unsigned long long)dseq);
	}
	return 1;
}

/* Append the writes of the valid entry at @pos to the replay list. */
static int vhdx_log_apply(struct vdisk *vd, struct vhdx_log *l, uint32_t pos,
			  const struct vhdx_log_entry *le, struct err *e)
{
	struct vhdx *s = vd->priv;
	uint32_t data = 0;

	if (le->flushed > s->file_size)
		return err_set(e, EI_ECORRUPT,
			       "vhdx: log entry %llu: FlushedFileOffset %llu is past the end of the file (%llu bytes): the file was truncated",
			       (unsigned long long)le->seq,
			       (unsigned long long)le->flushed,
			       (unsigned long long)s->file_size);
	for (uint32_t i = 0; i < le->ndesc; i++) {
		const uint8_t *d = vhdx_log_desc(l, pos, i);
		struct vhdx_write w = { .off = get_le64(d + 16) };

		if (!memcmp(d, "desc", 4)) {
			uint32_t k = le->desc_sec + data++;

			w.len = VHDX_LOG_SECTOR;
			w.src = l->off + (uint64_t)((pos + (uint64_t)k) % l->nsec) *
					 VHDX_LOG_SECTOR;
			memcpy(w.trail, d + 4, 4);
			memcpy(w.lead, d + 8, 8);
		} else {
			w.len = get_le64(d + 8);
			if (!w.len)
				continue;
		}
		if (w.off + w.len < w.off || w.off + w.len > (uint64_t)INT64_MAX)
			return err_set(e, EI_ECORRUPT,
				       "vhdx: log entry %llu: descriptor %u writes %llu+%llu, past the largest file",
				       (unsigned long long)le->seq, i,
				       (unsigned long long)w.off,
				       (unsigned long long)w.len);
		if (s->nwr >= s->wr_cap)
			return err_set(e, EI_ECORRUPT, "vhdx: log: more writes than counted");
		if (!s->nwr || w.off < s->wr_start)
			s->wr_start = w.off;
		if (w.off + w.len > s->wr_end)
			s->wr_end = w.off + w.len;
		if (w.off + w.len > s->file_size)
			s->file_size = w.off + w.len;
		s->wr[s->nwr++] = w;
	}
	/* As QEMU's replay does: the file grows to LastFileOffset, in MiB. */
	if (le->last > s->file_size && le->last <= (uint64_t)INT64_MAX - VHDX_MIB)
		s->file_size = (le->last + VHDX_MIB - 1) & ~(VHDX_MIB - 1);
	s->log_entries++;
	return 0;
}

/*
 * Find the active sequence of the log (consecutive valid entries with
 * consecutive sequence numbers, the one with the highest) and replay it
 * into memory.  A log with no valid entry needs no replay.
 */
static int vhdx_log_replay(struct vdisk *vd, const struct vhdx_header *hd,
			   struct err *e)
{
	struct vhdx *s = vd->priv;
	struct vhdx_log l = {
		.off = hd->log_offset,
		.nsec = hd->log_length / VHDX_LOG_SECTOR,
		.guid = hd->log_guid,
		.budget = VHDX_LOG_SCAN_MAX,
	};
	uint32_t pos = 0, best_pos = 0, best_n = 0;
	uint64_t best_seq = 0;
	uint8_t *buf;
	int r = 0;

	if (hd->log_length > vd->opts.max_table)
		return err_set(e, EI_ELIMIT,
			       "vhdx: log of %u bytes is larger than the table limit of %llu bytes",
			       hd->log_length,
			       (unsigned long long)vd->opts.max_table);
	buf = malloc(hd->log_length);
	if (!buf)
		return err_set(e, -ENOMEM, "vhdx: out of memory for the log");
	r = io_read(vd->io, buf, hd->log_length, hd->log_offset, "vhdx: log", e);
	if (r < 0)
		goto out;
	l.buf = buf;

	while (pos < l.nsec) {
		struct vhdx_log_entry le;
		uint32_t first = pos, n = 0, used = 0;
		uint64_t seq = 0;

		r = vhdx_log_entry(vd, &l, pos, &le, e);
		if (r < 0)
			goto out;
		if (!r) {
			pos++;
			continue;
		}
		do {
			seq = le.seq;
			used += le.nsec;
			n++;
			if (used >= l.nsec)
				break;
			r = vhdx_log_entry(vd, &l, (first + used) % l.nsec, &le, e);
			if (r < 0)
				goto out;
		} while (r && le.seq == seq + 1 && used + le.nsec <= l.nsec);
		if (!best_n || seq > best_seq) {
			best_pos = first;
			best_n = n;
			best_seq = seq;
		}
		if ((uint64_t)first + used >= l.nsec)
			break;          /* the sequence wrapped around the end */
		pos = first + used;
	}
	r = 0;
	if (!best_n)
		goto out;

	/* Count the writes first: the list is sized by them, within a cap. */
	for (int pass = 0; pass < 2; pass++) {
		pos = best_pos;
		for (uint32_t i = 0; i < best_n; i++) {
			struct vhdx_log_entry le;

			r = vhdx_log_entry(vd, &l, pos, &le, e);
			if (r <= 0) {
				if (!r)
					r = err_set(e, EI_ECORRUPT,
						    "vhdx: log entry at sector %u changed", pos);
				goto out;
			}
			if (pass)
				r = vhdx_log_apply(vd, &l, pos, &le, e);
			else if ((s->wr_cap += le.ndesc) > VHDX_LOG_MAX_WRITES)
				r = err_set(e, EI_ELIMIT,
					    "vhdx: log: more than %u writes to replay",
					    VHDX_LOG_MAX_WRITES);
			if (r < 0)
				goto out;
			pos = (pos + le.nsec) % l.nsec;
		}
		if (!pass && s->wr_cap) {
			s->wr = calloc(s->wr_cap, sizeof(*s->wr));
			if (!s->wr) {
				r = err_set(e, -ENOMEM, "vhdx: out of memory for the log");
				goto out;
			}
		}
	}
	r = 0;
out:
	free(buf);
	return r;
}

/* --- region table and metadata ------------------------------------------- */

struct vhdx_layout {
	uint64_t bat_off, bat_len;
	uint64_t md_off, md_len;
};

/* Parse the region table copy at @off; *@why says why it is not valid. */
static int vhdx_region_table(struct vdisk *vd, uint64_t off, uint8_t *b,
			     char *why, size_t why_len, struct err *e)
{
	struct vhdx *s = vd->priv;
	uint32_t want, got;
	int r;

	r = vhdx_pread(vd, b, VHDX_REGION_SIZE, off, "vhdx: region table", e);
	if (r < 0)
		return r;
	if (memcmp(b, "regi", 4)) {
		snprintf(why, why_len, "has no 'regi' signature");
		return 0;
	}
	want = get_le32(b + 4);
	got = ~vhdx_crc_struct(s->crc, 0xffffffffu, b, VHDX_REGION_SIZE);
	if (want != got) {
		snprintf(why, why_len, "has CRC-32C 0x%08x, its bytes give 0x%08x",
			 want, got);
		return 0;
	}
	return 1;
}

static int vhdx_regions(struct vdisk *vd, struct vhdx_layout *lay, struct err *e)
{
	struct vhdx *s = vd->priv;
	char why[2][96];
	uint32_t count;
	bool bat = false, md = false;
	uint8_t *b;
	int r;

	b = malloc(VHDX_REGION_SIZE);
	if (!b)
		return err_set(e, -ENOMEM, "vhdx: out of memory");
	/* QEMU reads the first copy only; the second is a spare of it. */
	r = vhdx_region_table(vd, VHDX_REGION1_OFF, b, why[0], sizeof(why[0]), e);
	if (r == 0)
		r = vhdx_region_table(vd, VHDX_REGION2_OFF, b, why[1], sizeof(why[1]), e);
	if (r < 0)
		goto out;
	if (r == 0) {
		r = err_set(e, EI_ECORRUPT,
			    "vhdx: no valid region table: copy 1 %s; copy 2 %s",
			    why[0], why[1]);
		goto out;
	}
	count = get_le32(b + 8);
	if (count > VHDX_REGION_MAX_ENTRIES) {
		r = err_set(e, EI_ECORRUPT,
			    "vhdx: region table entry_count %u is more than %u",
			    count, VHDX_REGION_MAX_ENTRIES);
		goto out;
	}
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *re = b + 16 + 32 * (size_t)i;
		uint64_t off = get_le64(re + 16);
		uint32_t len = get_le32(re + 24);
		bool is_bat = !memcmp(re, vhdx_guid_bat, 16);
		bool is_md = !memcmp(re, vhdx_guid_metadata, 16);
		const char *what = is_bat ? "BAT region" : is_md ? "metadata region" :
				   "region";

		if ((is_bat && bat) || (is_md && md)) {
			r = err_set(e, EI_ECORRUPT,
				    "vhdx: region table entry %u is a second %s", i, what);
			goto out;
		}
		if (!is_bat && !is_md && (get_le32(re + 28) & VHDX_REGION_REQUIRED)) {
			r = err_set(e, EI_EUNSUP,
				    "vhdx: region table entry %u has an unknown GUID marked required",
				    i);
			goto out;
		}
		/*
		 * The spec wants whole MiBs; QEMU only checks for overlaps,
		 * and so do we, beyond the sizes we read.
		 */
		if ((is_bat && !len) || (is_md && len < VHDX_METADATA_TABLE_SIZE)) {
			r = err_set(e, EI_ECORRUPT,
				    "vhdx: %s at %llu has length %u, less than %llu",
				    what, (unsigned long long)off, len,
				    is_md ? VHDX_METADATA_TABLE_SIZE : 1);
			goto out;
		}
		r = vhdx_region_add(s, off, len, what, i, e);
		if (r < 0)
			goto out;
		if (is_bat) {
			bat = true;
			lay->bat_off = off;
			lay->bat_len = len;
		} else if (is_md) {
			md = true;
			lay->md_off = off;
			lay->md_len = len;
		}
	}
	if (!bat || !md)
		r = err_set(e, EI_ECORRUPT, "vhdx: region table has no %s region",
			    bat ? "metadata" : "BAT");
out:
	free(b);
	return r < 0 ? r : 0;
}

struct vhdx_meta {
	uint64_t disk_size;
	uint32_t block_size, params, lss, pss;
	uint8_t page83[16];
	uint32_t loc_off, loc_len;      /* the parent locator item, if any */
};

static int vhdx_metadata(struct vdisk *vd, const struct vhdx_layout *lay,
			 struct vhdx_meta *m, struct err *e)
{
	uint32_t off[VHDX_ITEMS] = { 0 }, len[VHDX_ITEMS] = { 0 }, count;
	uint8_t item[16];
	bool have[VHDX_ITEMS] = { false };
	uint8_t *b;
	int r;

	b = malloc(VHDX_METADATA_TABLE_SIZE);
	if (!b)
		return err_set(e, -ENOMEM, "vhdx: out of memory");
	r = vhdx_pread(vd, b, VHDX_METADATA_TABLE_SIZE, lay->md_off,
		       "vhdx: metadata table", e);
	if (r < 0)
		goto out;
	if (memcmp(b, "metadata", 8)) {
		r = err_set(e, EI_ECORRUPT,
			    "vhdx: metadata table at %llu has no 'metadata' signature",
			    (unsigned long long)lay->md_off);
		goto out;
	}
	count = get_le16(b + 10);
	if ((uint64_t)count * 32 > VHDX_METADATA_TABLE_SIZE - 32) {
		r = err_set(e, EI_ECORRUPT,
			    "vhdx: metadata table entry_count %u is more than %llu",
			    count, (VHDX_METADATA_TABLE_SIZE - 32) / 32);
		goto out;
	}
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *me = b + 32 + 32 * (size_t)i;
		uint32_t ioff = get_le32(me + 16), ilen = get_le32(me + 20);
		int k;

		for (k = 0; k < VHDX_ITEMS; k++)
			if (!memcmp(me, vhdx_items[k].guid, 16))
				break;
		if (k == VHDX_ITEMS) {
			if (get_le32(me + 24) & VHDX_METADATA_REQUIRED) {
				r = err_set(e, EI_EUNSUP,
					    "vhdx: metadata entry %u has an unknown GUID marked required",
					    i);
				goto out;
			}
			continue;
		}
		if (have[k]) {
			r = err_set(e, EI_ECORRUPT,
				    "vhdx: metadata entry %u is a second '%s' item",
				    i, vhdx_items[k].name);
			goto out;
		}
		if (ilen < vhdx_items[k].len || (uint64_t)ioff + ilen > lay->md_len ||
		    (ilen && ioff < 32 + 32 * (uint64_t)count)) {
			r = err_set(e, EI_ECORRUPT,
				    "vhdx: metadata item '%s' at %u+%u does not fit the metadata region of %llu bytes (needs %u bytes after the table)",
				    vhdx_items[k].name, ioff, ilen,
				    (unsigned long long)lay->md_len,
				    vhdx_items[k].len);
			goto out;
		}
		have[k] = true;
		off[k] = ioff;
		len[k] = ilen;
	}
	for (int k = 0; k < VHDX_ITEMS; k++) {
		if (k == VHDX_ITEM_PARENT_LOCATOR)
			continue;
		if (!have[k]) {
			r = err_set(e, EI_ECORRUPT,
				    "vhdx: metadata lacks the required '%s' item",
				    vhdx_items[k].name);
			goto out;
		}
		r = vhdx_pread(vd, item, vhdx_items[k].len, lay->md_off + off[k],
			       "vhdx: metadata item", e);
		if (r < 0)
			goto out;
		switch (k) {
		case VHDX_ITEM_FILE_PARAMS:
			m->block_size = get_le32(item);
			m->params = get_le32(item + 4);
			break;
		case VHDX_ITEM_DISK_SIZE:
			m->disk_size = get_le64(item);
			break;
		case VHDX_ITEM_PAGE83:
			memcpy(m->page83, item, 16);
			break;
		case VHDX_ITEM_LOGICAL_SECTOR:
			m->lss = get_le32(item);
			break;
		case VHDX_ITEM_PHYSICAL_SECTOR:
			m->pss = get_le32(item);
			break;
		}
	}
	if ((m->params & VHDX_PARAM_HAS_PARENT) && !have[VHDX_ITEM_PARENT_LOCATOR]) {
		r = err_set(e, EI_ECORRUPT,
			    "vhdx: file parameters has_parent is set but there is no parent locator");
		goto out;
	}
	m->loc_off = off[VHDX_ITEM_PARENT_LOCATOR];
	m->loc_len = len[VHDX_ITEM_PARENT_LOCATOR];
	if (m->block_size < VHDX_BLOCK_MIN || m->block_size > VHDX_BLOCK_MAX ||
	    !is_pow2(m->block_size)) {
		r = err_set(e, EI_ECORRUPT,
			    "vhdx: block_size %u is not a power of two between 1 MiB and 256 MiB",
			    m->block_size);
		goto out;
	}
	if (m->lss != 512 && m->lss != 4096) {
		r = err_set(e, EI_ECORRUPT,
			    "vhdx: logical_sector_size %u is not 512 or 4096", m->lss);
		goto out;
	}
	if (m->disk_size > VHDX_MAX_DISK_SIZE || m->disk_size % m->lss) {
		r = err_set(e, EI_ECORRUPT,
			    "vhdx: virtual disk size %llu is not a multiple of the %u-byte logical sector up to 64 TiB",
			    (unsigned long long)m->disk_size, m->lss);
		goto out;
	}
	r = 0;
out:
	free(b);
	return r;
}

/* --- the parent locator of a differencing disk ---------------------------- */

/*
 * Decode @len bytes of UTF-16LE at @p into NUL-terminated UTF-8 in @out
 * (@cap bytes).  NULL when done, else why not.
 */
static const char *vhdx_utf16(const uint8_t *p, size_t len, char *out,
			      size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i += 2) {
		uint32_t c = get_le16(p + i);

		if (c >= 0xdc00 && c < 0xe000)
			return "has a lone UTF-16 low surrogate";
		if (c >= 0xd800 && c < 0xdc00) {
			uint32_t lo = i + 4 <= len ? get_le16(p + i + 2) : 0;

			if (lo < 0xdc00 || lo >= 0xe000)
				return "has a lone UTF-16 high surrogate";
			c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
			i += 2;
		}
		if (!c)
			return "holds a NUL character";
		if (o + 5 > cap)
			return "is too long";
		o += utf8_put(out + o, c);
	}
	out[o] = 0;
	return NULL;
}

static int vhdx_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * "{B04AEFB7-D19E-4A81-B789-25B8E9445913}" (braces optional) into the 16
 * bytes of a GUID as VHDX stores it: the first three fields little-endian.
 * 0 on success, -1 if @s is not a GUID.
 */
static int vhdx_guid_parse(const char *s, uint8_t g[16])
{
	static const uint8_t order[16] = { 3, 2, 1, 0, 5, 4, 7, 6,
					   8, 9, 10, 11, 12, 13, 14, 15 };
	uint8_t b[16];
	size_t n = strlen(s), k = 0;

	if (n == 38 && s[0] == '{' && s[37] == '}') {
		s++;
		n = 36;
	}
	if (n != 36)
		return -1;
	for (size_t i = 0; i < 36;) {
		int hi, lo;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i++] != '-')
				return -1;
			continue;
		}
		hi = vhdx_hexval(s[i]);
		lo = vhdx_hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		b[k++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	for (k = 0; k < 16; k++)
		g[order[k]] = b[k];
	return 0;
}

/*
 * Parse the parent locator item (MS-VHDX 2.6.2.6): a VHDX LocatorType,
 * then KeyValueCount entries of UTF-16LE keys and values inside the item.
 * Keeps parent_linkage(2) and relative_path; other keys are checked for
 * bounds and ignored.
 */
static int vhdx_locator(struct vdisk *vd, const struct vhdx_layout *lay,
			const struct vhdx_meta *m, struct err *e)
{
	static const char *const keys[] = { "parent_linkage", "parent_linkage2",
					    "relative_path" };
	struct vhdx *s = vd->priv;
	bool seen[3] = { false };
	char val[VHDX_PATH_MAX], key[32];
	uint32_t count, len = m->loc_len;
	const char *why;
	uint8_t *b;
	int r = 0;

	if (len > VHDX_LOCATOR_MAX)
		return err_set(e, EI_ELIMIT,
			       "vhdx: parent locator of %u bytes is larger than %llu",
			       len, VHDX_LOCATOR_MAX);
	b = malloc(len);
	if (!b)
		return err_set(e, -ENOMEM, "vhdx: out of memory");
	r = vhdx_pread(vd, b, len, lay->md_off + m->loc_off,
		       "vhdx: parent locator", e);
	if (r < 0)
		goto out;
	if (memcmp(b, vhdx_guid_locator, 16)) {
		r = err_set(e, EI_EUNSUP,
			    "vhdx: parent locator LocatorType is not the VHDX type {B04AEFB7-D19E-4A81-B789-25B8E9445913}");
		goto out;
	}
	count = get_le16(b + 18);
	if (VHDX_LOCATOR_HDR + (uint64_t)count * VHDX_LOCATOR_ENTRY > len) {
		r = err_set(e, EI_ECORRUPT,
			    "vhdx: parent locator KeyValueCount %u does not fit its %u bytes",
			    count, len);
		goto out;
	}
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *en = b + VHDX_LOCATOR_HDR + VHDX_LOCATOR_ENTRY * (size_t)i;
		uint32_t ko = get_le32(en), vo = get_le32(en + 4);
		uint32_t kl = get_le16(en + 8), vl = get_le16(en + 10);
		int k;

		if (!kl || !vl || (uint64_t)ko + kl > len || (uint64_t)vo + vl > len) {
			r = err_set(e, EI_ECORRUPT,
				    "vhdx: parent locator entry %u: key at %u+%u or value at %u+%u is empty or outside the %u-byte locator",
				    i, ko, kl, vo, vl, len);
			goto out;
		}
		if (kl % 2 || vl % 2) {
			r = err_set(e, EI_ECORRUPT,
				    "vhdx: parent locator entry %u: key length %u or value length %u is odd (not UTF-16)",
				    i, kl, vl);
			goto out;
		}
		if (kl / 2 >= sizeof(key))
			continue;       /* longer than any key we know */
		why = vhdx_utf16(b + ko, kl, key, sizeof(key));
		if (why) {
			r = err_set(e, EI_ECORRUPT,
				    "vhdx: parent locator entry %u: key %s", i, why);
			goto out;
		}
		for (k = 0; k < 3; k++)
			if (!strcmp(key, keys[k]))
				break;
		if (k == 3)
			continue;
		why = vhdx_utf16(b + vo, vl, val, sizeof(val));
		if (why) {
			r = err_set(e, EI_ECORRUPT,
				    "vhdx: parent locator %s (entry %u): value of %u bytes %s",
				    key, i, vl, why);
			goto out;
		}
		if (seen[k]) {
			r = err_set(e, EI_ECORRUPT,
				    "vhdx: parent locator has a second '%s' key (entry %u)",
				    key, i);
			goto out;
		}
		seen[k] = true;
		if (k < 2) {
			if (vhdx_guid_parse(val, s->linkage[k])) {
				r = err_set(e, EI_ECORRUPT,
					    "vhdx: parent locator %s '%.64s' is not a GUID",
					    key, val);
				goto out;
			}
		} else {
			memcpy(s->parent_path, val, sizeof(val));
		}
	}
	if (!seen[0]) {
		r = err_set(e, EI_ECORRUPT,
			    "vhdx: parent locator lacks the required parent_linkage key");
		goto out;
	}
	s->nlinkage = seen[1] ? 2 : 1;
	if (!seen[1])
		memcpy(s->linkage[1], s->linkage[0], 16);
	if (!seen[2]) {
		r = err_set(e, EI_EUNSUP,
			    "vhdx: parent locator has no relative_path: the parent is looked up only by a file name in the image's directory");
		goto out;
	}
	/* ".\parent.vhdx" names parent.vhdx beside the child. */
	s->parent_name = s->parent_path;
	if (!strncmp(s->parent_name, ".\\", 2))
		s->parent_name += 2;
	r = 0;
out:
	free(b);
	return r;
}

/* Open the parent and check that it is the disk the child was made over. */
static int vhdx_open_parent(struct vdisk *vd, struct err *e)
{
	struct vhdx *s = vd->priv;
	const char *name = s->parent_name;
	const struct vhdx *ps;
	int r;

	if (vd->opts.allow_refs && strpbrk(name, "\\:"))
		return err_set(e, EI_EREF,
			       "vhdx: parent relative_path '%s' refused: only a plain file name in the image's directory is allowed ('.\\' may lead it)",
			       s->parent_path);
	r = vdisk_open_ref(vd, name, strlen(name), "vhdx", "vhdx: parent",
			   &s->parent, NULL, e);
	if (r < 0)
		return r;
	ps = s->parent->priv;
	if (memcmp(ps->data_guid, s->linkage[0], 16) &&
	    memcmp(ps->data_guid, s->linkage[1], 16))
		return err_set(e, EI_EMISMATCH,
			       "vhdx: parent '%s' is not the disk of parent_linkage: its DataWriteGuid differs (it changed after the child was made, or is another disk)",
			       name);
	if (s->parent->size != vd->size || ps->lss != s->lss)
		return err_set(e, EI_EMISMATCH,
			       "vhdx: parent '%s' has virtual size %llu and %u-byte logical sectors, the child %llu and %u",
			       name, (unsigned long long)s->parent->size, ps->lss,
			       (unsigned long long)vd->size, s->lss);
	return 0;
}

/* --- the block allocation table ------------------------------------------ */

/*
 * The bytes at @off+@len that BAT entry @idx (for @what @n) points at:
 * inside the file and clear of the headers, log, BAT and metadata.
 */
static int vhdx_host_check(struct vdisk *vd, uint64_t off, uint64_t len,
			   uint64_t idx, const char *what, uint64_t n,
			   struct err *e)
{
	struct vhdx *s = vd->priv;
	const struct vhdx_region *o;

	if (!range_ok(off, len, s->file_size))
		return err_set(e, EI_ECORRUPT,
			       "vhdx: BAT entry %llu (%s %llu) at %llu+%llu lies past the end of the file (%llu bytes)",
			       (unsigned long long)idx, what, (unsigned long long)n,
			       (unsigned long long)off, (unsigned long long)len,
			       (unsigned long long)s->file_size);
	o = vhdx_region_find(s, off, len);
	if (o)
		return err_set(e, EI_ECORRUPT,
			       "vhdx: BAT entry %llu (%s %llu) at %llu+%llu overlaps the %s at %llu+%llu",
			       (unsigned long long)idx, what, (unsigned long long)n,
			       (unsigned long long)off, (unsigned long long)len,
			       o->what, (unsigned long long)o->start,
			       (unsigned long long)(o->end - o->start));
	return 0;
}

static int vhdx_bat_check(struct vdisk *vd, uint64_t blk, uint64_t idx,
			  struct err *e)
{
	struct vhdx *s = vd->priv;
	uint64_t ent = s->bat[blk], off = ent & VHDX_BAT_OFF_MASK, len;

	switch (ent & VHDX_BAT_STATE_MASK) {
	case VHDX_BLOCK_NOT_PRESENT:
	case VHDX_BLOCK_UNDEFINED:
	case VHDX_BLOCK_ZERO:
	case VHDX_BLOCK_UNMAPPED:
	case VHDX_BLOCK_UNMAPPED_V095:
		return 0;
	case VHDX_BLOCK_FULLY_PRESENT:
		break;
	case VHDX_BLOCK_PARTIALLY_PRESENT:
		if (s->params & VHDX_PARAM_HAS_PARENT)
			break;
		return err_set(e, EI_EUNSUP,
			       "vhdx: BAT entry %llu (block %llu) is PARTIALLY_PRESENT, which only a differencing disk may use",
			       (unsigned long long)idx, (unsigned long long)blk);
	default:
		return err_set(e, EI_ECORRUPT,
			       "vhdx: BAT entry %llu (block %llu) has the unknown state %u",
			       (unsigned long long)idx, (unsigned long long)blk,
			       (unsigned)(ent & VHDX_BAT_STATE_MASK));
	}
	/* The last block may be cut short at the end of the disk. */
	len = min_u64(s->block_size, vd->size - (blk << s->block_bits));
	return vhdx_host_check(vd, off, len, idx, "block", blk, e);
}

/* The sector bitmap entry of chunk @c (BAT entry @idx) of a differencing disk. */
static int vhdx_sb_check(struct vdisk *vd, uint64_t c, uint64_t idx,
			 struct err *e)
{
	struct vhdx *s = vd->priv;
	uint64_t ent = s->sb[c], off = ent & VHDX_BAT_OFF_MASK;

	if ((ent & VHDX_BAT_STATE_MASK) == 0)
		return 0;
	if ((ent & VHDX_BAT_STATE_MASK) != VHDX_SB_PRESENT)
		return err_set(e, EI_ECORRUPT,
			       "vhdx: BAT entry %llu (sector bitmap of chunk %llu) has the unknown state %u",
			       (unsigned long long)idx, (unsigned long long)c,
			       (unsigned)(ent & VHDX_BAT_STATE_MASK));
	return vhdx_host_check(vd, off, VHDX_SB_BLOCK_SIZE, idx,
			       "sector bitmap of chunk", c, e);
}

/* Every PARTIALLY_PRESENT block needs its chunk's sector bitmap block. */
static int vhdx_sb_needed(struct vdisk *vd, struct err *e)
{
	struct vhdx *s = vd->priv;

	for (uint64_t blk = 0; blk < s->nblocks; blk++) {
		uint64_t c = blk / s->chunk_ratio;

		if ((s->bat[blk] & VHDX_BAT_STATE_MASK) != VHDX_BLOCK_PARTIALLY_PRESENT ||
		    (s->sb[c] & VHDX_BAT_STATE_MASK) == VHDX_SB_PRESENT)
			continue;
		return err_set(e, EI_ECORRUPT,
			       "vhdx: BAT entry %llu (block %llu) is PARTIALLY_PRESENT but the sector bitmap block of its chunk %llu (BAT entry %llu) is not present",
			       (unsigned long long)(blk + c), (unsigned long long)blk,
			       (unsigned long long)c,
			       (unsigned long long)((c + 1) * (s->chunk_ratio + 1ULL) - 1));
	}
	return 0;
}

static int vhdx_bat_load(struct vdisk *vd, const struct vhdx_layout *lay,
			 struct err *e)
{
	struct vhdx *s = vd->priv;
	uint64_t total, bytes, done = 0, blk = 0;
	uint8_t *b;
	int r = 0;

	s->nblocks = (vd->size + s->block_size - 1) >> s->block_bits;
	/*
	 * A sector bitmap entry follows every chunk_ratio payload entries;
	 * a differencing disk has the last chunk's too.
	 */
	total = s->nblocks ? s->nblocks + (s->nblocks - 1) / s->chunk_ratio : 0;
	if (s->params & VHDX_PARAM_HAS_PARENT) {
		s->nchunks = (s->nblocks + s->chunk_ratio - 1) / s->chunk_ratio;
		total = s->nchunks * (s->chunk_ratio + 1ULL);
	}
	bytes = total * 8;
	if (bytes > lay->bat_len)
		return err_set(e, EI_ECORRUPT,
			       "vhdx: the BAT needs %llu entries (%llu bytes) but its region holds %llu bytes",
			       (unsigned long long)total, (unsigned long long)bytes,
			       (unsigned long long)lay->bat_len);
	if (s->nblocks * 8 > vd->opts.max_table)
		return err_set(e, EI_ELIMIT,
			       "vhdx: BAT of %llu entries is larger than the table limit of %llu bytes",
			       (unsigned long long)s->nblocks,
			       (unsigned long long)vd->opts.max_table);
	if (!s->nblocks)
		return 0;
	s->bat = malloc(s->nblocks * 8);
	b = malloc(EI_IO_CHUNK);
	if (s->nchunks)
		s->sb = calloc(s->nchunks, 8);
	if (!s->bat || !b || (s->nchunks && !s->sb)) {
		free(b);
		return err_set(e, -ENOMEM, "vhdx: out of memory for the BAT");
	}
	while (done < total) {
		size_t n = (size_t)min_u64(EI_IO_CHUNK / 8, total - done);

		r = vhdx_pread(vd, b, n * 8, lay->bat_off + done * 8, "vhdx: BAT", e);
		if (r < 0)
			break;
		for (size_t i = 0; i < n; i++) {
			uint64_t idx = done + i;

			if ((idx + 1) % ((uint64_t)s->chunk_ratio + 1) == 0) {
				uint64_t c = idx / (s->chunk_ratio + 1ULL);

				if (!s->sb)
					continue;  /* used by differencing disks only */
				s->sb[c] = get_le64(b + 8 * i);
				r = vhdx_sb_check(vd, c, idx, e);
				if (r < 0)
					goto out;
				continue;
			}
			if (blk == s->nblocks)
				continue;       /* past the disk, in the last chunk */
			s->bat[blk] = get_le64(b + 8 * i);
			r = vhdx_bat_check(vd, blk, idx, e);
			if (r < 0)
				goto out;
			blk++;
		}
		done += n;
	}
	if (s->sb)
		r = vhdx_sb_needed(vd, e);
out:
	free(b);
	return r;
}

/* --- open / map ------------------------------------------------------------ */

static void vhdx_close(struct vdisk *vd)
{
	struct vhdx *s = vd->priv;

	if (!s)
		return;
	vdisk_close(s->parent);
	free(s->bat);
	free(s->sb);
	free(s->bm);
	free(s->wr);
	free(s->reg);
	free(s);
	vd->priv = NULL;
}

static int vhdx_open(struct vdisk *vd, struct err *e)
{
	static const uint8_t zero_guid[16];
	struct vhdx_layout lay = { 0 };
	struct vhdx_meta m = { 0 };
	struct vhdx_header hd;
	struct vhdx *s;
	uint8_t sig[8];
	int r;

	if (vd->io->flags & IO_STREAM)
		return err_set(e, EI_EUNSUP, "vhdx: %s is not seekable", vd->io->name);
	if (vd->io->size < 8)
		return err_set(e, EI_EFORMAT,
			       "vhdx: %llu-byte file has no 'vhdxfile' signature",
			       (unsigned long long)vd->io->size);
	r = io_read(vd->io, sig, 8, 0, "vhdx: file identifier", e);
	if (r < 0)
		return r;
	if (memcmp(sig, "vhdxfile", 8))
		return err_set(e, EI_EFORMAT, "vhdx: no 'vhdxfile' signature at offset 0");
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, -ENOMEM, "vhdx: out of memory");
	vd->priv = s;
	vhdx_crc_init(s->crc);
	s->file_size = vd->io->size;
	s->reg = calloc(VHDX_REGION_MAX_ENTRIES + 2, sizeof(*s->reg));
	if (!s->reg) {
		r = err_set(e, -ENOMEM, "vhdx: out of memory");
		goto fail;
	}

	r = vhdx_header_pick(vd, &hd, e);
	if (r < 0)
		goto fail;
	memcpy(s->data_guid, hd.raw + 32, 16);
	if (hd.log_version != 0) {
		r = err_set(e, EI_EUNSUP, "vhdx: header log_version %u is not 0",
			    hd.log_version);
		goto fail;
	}
	if (hd.log_offset < VHDX_MIB || hd.log_offset % VHDX_MIB) {
		r = err_set(e, EI_ECORRUPT,
			    "vhdx: header log_offset %llu is not a whole MiB after the first",
			    (unsigned long long)hd.log_offset);
		goto fail;
	}
	r = vhdx_region_add(s, 0, VHDX_HEADERS_END, "headers", 0, e);
	if (r < 0 || (r = vhdx_region_add(s, hd.log_offset, hd.log_length, "log",
					  0, e)) < 0)
		goto fail;
	if (memcmp(hd.log_guid, zero_guid, 16) && hd.log_length) {
		if (hd.log_length % VHDX_MIB) {
			r = err_set(e, EI_ECORRUPT,
				    "vhdx: header log_length %u is not a multiple of 1 MiB",
				    hd.log_length);
			goto fail;
		}
		r = vhdx_log_replay(vd, &hd, e);
		if (r < 0)
			goto fail;
	}

	r = vhdx_regions(vd, &lay, e);
	if (r < 0)
		goto fail;
	r = vhdx_metadata(vd, &lay, &m, e);
	if (r < 0)
		goto fail;
	if ((m.params & VHDX_PARAM_HAS_PARENT) &&
	    (r = vhdx_locator(vd, &lay, &m, e)) < 0)
		goto fail;
	if (m.disk_size > vd->opts.max_size) {
		r = err_set(e, EI_ELIMIT,
			    "vhdx: virtual size %llu exceeds the limit of %llu",
			    (unsigned long long)m.disk_size,
			    (unsigned long long)vd->opts.max_size);
		goto fail;
	}
	vd->size = m.disk_size;
	s->block_size = m.block_size;
	s->block_bits = (uint32_t)__builtin_ctz(m.block_size);
	s->lss = m.lss;
	s->pss = m.pss;
	s->params = m.params;
	s->chunk_ratio = (uint32_t)(VHDX_MAX_SECTORS_PER_BLOCK * m.lss / m.block_size);
	r = vhdx_bat_load(vd, &lay, e);
	if (r < 0)
		goto fail;
	if (s->params & VHDX_PARAM_HAS_PARENT) {
		s->bm_blk = UINT64_MAX;
		s->bm = malloc(s->block_size / s->lss / 8);
		if (!s->bm) {
			r = err_set(e, -ENOMEM, "vhdx: out of memory");
			goto fail;
		}
		r = vhdx_open_parent(vd, e);
		if (r < 0)
			goto fail;
	}
	free(s->reg);
	s->reg = NULL;
	s->nreg = 0;
	return 0;
fail:
	vhdx_close(vd);
	return r;
}

/*
 * In a PARTIALLY_PRESENT block @blk, the run of sectors at @in (bytes into
 * the block): 1 if in this file, 0 if in the parent; *@n is its length in
 * bytes from @in, at most to the block's end.  Bit 0 of byte 0 of the
 * chunk's sector bitmap is its first sector.
 */
static int vhdx_bm_run(struct vdisk *vd, uint64_t blk, uint64_t in,
		       uint64_t *n, struct err *e)
{
	struct vhdx *s = vd->priv;
	uint32_t nsec = s->block_size / s->lss, sec = (uint32_t)(in / s->lss);
	const uint8_t *bm = s->bm;
	int bit, r;

	if (s->bm_blk != blk) {
		uint64_t c = blk / s->chunk_ratio;
		uint64_t at = (s->sb[c] & VHDX_BAT_OFF_MASK) +
			      (blk % s->chunk_ratio) * (nsec / 8);

		s->bm_blk = UINT64_MAX;
		r = vhdx_pread(vd, s->bm, nsec / 8, at, "vhdx: sector bitmap", e);
		if (r < 0)
			return r;
		s->bm_blk = blk;
	}
	bit = bm[sec / 8] >> (sec % 8) & 1;
	sec++;
	while (sec < nsec) {
		if (!(sec % 8) && bm[sec / 8] == (bit ? 0xff : 0x00)) {
			sec += 8;
			continue;
		}
		if ((bm[sec / 8] >> (sec % 8) & 1) != bit)
			break;
		sec++;
	}
	*n = (uint64_t)sec * s->lss - in;
	return bit;
}

/*
 * Where the bytes at @in of block @blk come from: *@src is 1 for this
 * file, 0 for zeros, -1 for the parent; *@n is cut to the run's end.  A
 * differencing disk reads NOT_PRESENT from its parent as the spec says,
 * and UNDEFINED and UNMAPPED ("arbitrary data" or the contents before)
 * from it too, as libvhdi does; ZERO is zeros.
 */
static int vhdx_source(struct vdisk *vd, uint64_t blk, uint64_t in,
		       uint64_t *n, int *src, struct err *e)
{
	struct vhdx *s = vd->priv;
	uint64_t run;
	int r;

	switch (s->bat[blk] & VHDX_BAT_STATE_MASK) {
	case VHDX_BLOCK_FULLY_PRESENT:
		*src = 1;
		return 0;
	case VHDX_BLOCK_PARTIALLY_PRESENT:
		r = vhdx_bm_run(vd, blk, in, &run, e);
		if (r < 0)
			return r;
		*n = min_u64(*n, run);
		*src = r ? 1 : -1;
		return 0;
	case VHDX_BLOCK_ZERO:
		*src = 0;
		return 0;
	default:
		*src = s->parent ? -1 : 0;
		return 0;
	}
}

/*
 * One piece, inside one block.  Data the replayed log patches, or that
 * lies past the end of the file the log grew, goes through vhdx_pread()
 * (vhdx_decode()); elsewhere a hole of the file in an allocated block
 * reads as zero.
 */
static int vhdx_piece(struct vdisk *vd, uint64_t off, uint64_t len,
		      struct map_run *run, struct err *e)
{
	struct vhdx *s = vd->priv;
	uint64_t blk = off >> s->block_bits;
	uint64_t in = off & (s->block_size - 1);
	uint64_t ent = s->bat[blk], host;
	int r, src;

	run->len = min_u64(len, s->block_size - in);
	r = vhdx_source(vd, blk, in, &run->len, &src, e);
	if (r < 0)
		return r;
	if (src < 0) {
		map_backing(s->parent, off, run->len, run);
		return 0;
	}
	if (!src) {
		run->type = (ent & VHDX_BAT_STATE_MASK) == VHDX_BLOCK_ZERO ?
			    EXT_ZERO : EXT_HOLE;
		return 0;
	}
	host = (ent & VHDX_BAT_OFF_MASK) + in;
	if (vhdx_wr_hits(s, host, run->len) || host + run->len > vd->io->size) {
		run->src = MAP_DECODE;
		return 0;
	}
	run->src = MAP_IO;
	run->io = vd->io;
	run->host = host;
	run->what = "vhdx: data block";
	run->holes = EXT_ZERO;
	return 0;
}

static int vhdx_map(struct vdisk *vd, uint64_t off, uint64_t len,
		    struct map_run *run, struct err *e)
{
	return map_pieces(vd, off, len, run, vhdx_piece, e);
}

/* Data as the replayed log leaves it, one piece at a time. */
static int vhdx_decode(struct vdisk *vd, void *buf, size_t len, uint64_t off,
		       struct err *e)
{
	struct vhdx *s = vd->priv;
	uint8_t *b = buf;

	while (len) {
		uint64_t blk = off >> s->block_bits;
		uint64_t in = off & (s->block_size - 1);
		uint64_t n = min_u64(len, s->block_size - in);
		int src, r = vhdx_source(vd, blk, in, &n, &src, e);

		if (r >= 0 && src <= 0)
			r = err_set(e, -EIO, "vhdx: offset %llu is not data of this file",
				    (unsigned long long)off);
		if (r >= 0)
			r = vhdx_pread(vd, b, (size_t)n,
				       (s->bat[blk] & VHDX_BAT_OFF_MASK) + in,
				       "vhdx: data block", e);
		if (r < 0)
			return r;
		b += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

static int vhdx_info(struct vdisk *vd, struct info *out, struct err *e)
{
	struct vhdx *s = vd->priv;

	(void)e;
	out->cluster_size = s->block_size;
	info_u64(out, "block-size", s->block_size);
	info_u64(out, "logical-sector-size", s->lss);
	info_u64(out, "physical-sector-size", s->pss);
	info_str(out, "subformat", "%s",
		 s->parent ? "differencing" :
		 s->params & VHDX_PARAM_LEAVE_ALLOCATED ? "fixed" : "dynamic");
	info_bool(out, "log-replayed", s->log_entries > 0);
	if (s->parent) {
		info_str(out, "parent", "%s", s->parent_path);
		info_str(out, "parent-file", "%s/%s", vd->dir, s->parent_name);
	}
	return 0;
}

const struct img_format fmt_vhdx = {
	.name = "vhdx",
	.desc = "Hyper-V VHDX (fixed, dynamic, differencing)",
	.probe = vhdx_probe,
	.open = vhdx_open,
	.map = vhdx_map,
	.decode = vhdx_decode,
	.close = vhdx_close,
	.info = vhdx_info,
};
