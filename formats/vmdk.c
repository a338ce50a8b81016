// SPDX-License-Identifier: MIT
/*
 * VMDK reader: hosted sparse extents ("KDMV": monolithicSparse, and
 * streamOptimized with deflate grains, grain markers and a footer),
 * descriptor files whose FLAT or SPARSE extents live in other files
 * (monolithicFlat, twoGbMaxExtentFlat/Sparse, vmfs), and delta disks
 * over a parent.  Follows VMware's "Virtual Disk Format 5.0" (hosted
 * sparse extent header, grain directory and tables, stream-optimized
 * markers, descriptor file), read as QEMU's block/vmdk.c reads it.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "core/bytes.h"
#include "core/format.h"
#include "core/limits.h"
#include "codec/pipeline.h"

#define VMDK4_MAGIC 0x4b444d56u         /* "KDMV", read big-endian */
#define VMDK3_MAGIC 0x434f5744u         /* "COWD": ESX 2 sparse extents */
#define VMDK_SECTOR 512u
#define VMDK_HEADER_LEN 79u             /* magic .. compressAlgorithm */

#define VMDK_FLAG_NL_DETECT (1u << 0)
#define VMDK_FLAG_RGD (1u << 1)
#define VMDK_FLAG_ZERO_GRAIN (1u << 2)
#define VMDK_FLAG_COMPRESS (1u << 16)
#define VMDK_FLAG_MARKER (1u << 17)
/* Bits 16 and up change how grains are stored: unknown ones are refused. */
#define VMDK_FLAGS_DATA_MASK 0xffff0000u
#define VMDK_FLAGS_DATA_KNOWN (VMDK_FLAG_COMPRESS | VMDK_FLAG_MARKER)

#define VMDK_COMPRESS_NONE 0
#define VMDK_COMPRESS_DEFLATE 1
#define VMDK_GD_AT_END UINT64_MAX
#define VMDK_GTE_ZERO 1u

#define VMDK_MARKER_EOS 0u
#define VMDK_MARKER_FOOTER 3u
#define VMDK_MARKER_LEN 12u             /* lba (8) + size (4) */

/* Limits: QEMU's for the grain table and grain, and our own caps. */
#define VMDK_MAX_GTES 512u              /* numGTEsPerGT */
#define VMDK_MAX_GRAIN_SECTORS 0x200000u        /* 1 GiB grains */
#define VMDK_MAX_CGRAIN_SECTORS 2048u   /* 1 MiB compressed grains */
#define VMDK_DESC_MAX ((1u << 20) - 1)  /* descriptor text */
#define VMDK_DESC_MAX_SECTORS (VMDK_DESC_MAX / VMDK_SECTOR)
#define VMDK_MAX_EXTENTS 8192u
#define VMDK_TYPE_MAX 64u               /* createType characters */
#define VMDK_NAME_MAX 255u              /* extent and parent file names */
#define VMDK_OPEN_FILES 8u              /* extent files kept open */
#define VMDK_GT_SLOTS 64u               /* cached grain tables (128 KiB) */
#define VMDK_INFO_EXTENTS 24u           /* extents listed by info */
/* Compressed grains are inflated by up to 4 workers within 8 MiB. */
#define VMDK_PL_THREADS 4u
#define VMDK_PL_MEM (8u << 20)
#define VMDK_PL_MIN_GRAINS 4u           /* fewer in one read: inline */

enum vmdk_kind { VMDK_FLAT, VMDK_SPARSE };
enum vmdk_cls { VMDK_C_HOLE, VMDK_C_ZERO, VMDK_C_DATA };

struct vmdk_extent {
	uint64_t start, len;            /* bytes of the virtual disk */
	enum vmdk_kind kind;
	char type[12];                  /* "SPARSE", "FLAT", "VMFS"; "" inline */
	char *name;                     /* extent file; NULL: the image itself */
	struct io *io;                  /* open file or NULL; vd->io if inline */
	uint64_t used;                  /* LRU stamp of the open file */
	uint64_t flat_off;              /* FLAT: byte offset in the file */
	uint32_t *gd;                   /* SPARSE: grain table sectors */
	uint32_t gd_n, gt_n;
	uint64_t grain;                 /* grain bytes */
	bool compressed, marker, zero_grain;
};

struct vmdk_gt_slot {
	bool valid;
	uint32_t ext, gd_idx;
	uint32_t gte[VMDK_MAX_GTES];
};

struct vmdk {
	struct vmdk_extent *ext;
	unsigned n_ext, last;
	unsigned n_open;
	uint64_t clock;
	uint64_t gd_bytes;              /* all grain directories together */
	uint32_t cid, parent_cid;
	char create_type[VMDK_TYPE_MAX + 1];
	struct vdisk *parent;
	struct vmdk_gt_slot *gt;        /* VMDK_GT_SLOTS, allocated on use */
	/* The last inflated grain of a compressed extent. */
	uint8_t *cbuf, *gbuf;
	size_t cbuf_cap, gbuf_cap, g_have;
	bool g_valid;
	unsigned g_ext;
	uint64_t g_idx;
	z_stream zs;
	bool zs_init;
	/* Parallel inflation of the grains of one read, emitted into req_buf. */
	struct pipeline *pl;
	uint64_t pl_grain;              /* grain size the units hold */
	bool pl_off;                    /* one CPU, or no threads */
	uint8_t *req_buf;
	uint64_t req_off, req_len;
};

struct vmdk_header {
	uint32_t version, flags, gt_n;
	uint64_t capacity, granularity, desc_offset, desc_size;
	uint64_t rgd_offset, gd_offset, grain_offset;
	uint16_t compress;
	uint8_t nl[4];
};

/* One extent line of a descriptor. */
struct vmdk_desc_ext {
	uint64_t sectors, offset;
	char type[12];
	char name[VMDK_NAME_MAX + 1];
};

struct vmdk_desc {
	bool has_cid, has_pcid, has_type, has_version;
	uint32_t cid, pcid;
	char type[VMDK_TYPE_MAX + 1];
	size_t parent_len;              /* 0: no parentFileNameHint */
	char parent[VMDK_NAME_MAX + 1];
	struct vmdk_desc_ext *ext;
	unsigned n_ext;
};

/* --- probe -------------------------------------------------------------- */

/* QEMU's test for a descriptor file: comments and blank lines, then "version=N". */
static bool vmdk_probe_desc(const char *p, const char *end)
{
	static const char *const v[] = { "version=1", "version=2", "version=3" };

	while (p < end) {
		if (*p == '#') {
			while (p < end && *p != '\n')
				p++;
			p++;
			continue;
		}
		if (*p == ' ') {
			while (p < end && *p == ' ')
				p++;
			if (p < end && *p == '\r')
				p++;
			if (p == end || *p != '\n')
				return false;
			p++;
			continue;
		}
		for (unsigned i = 0; i < 3; i++) {
			size_t l = strlen(v[i]);

			if (end - p >= (ptrdiff_t)l + 1 && !memcmp(p, v[i], l) &&
			    p[l] == '\n')
				return true;
			if (end - p >= (ptrdiff_t)l + 2 && !memcmp(p, v[i], l) &&
			    p[l] == '\r' && p[l + 1] == '\n')
				return true;
		}
		return false;
	}
	return false;
}

static int vmdk_probe(const uint8_t *head, size_t head_len, const uint8_t *tail,
		      size_t tail_len, uint64_t file_size)
{
	static const char sig[] = "# Disk DescriptorFile";

	(void)tail;
	(void)tail_len;
	(void)file_size;
	if (head_len >= 4 && (get_be32(head) == VMDK4_MAGIC ||
			      get_be32(head) == VMDK3_MAGIC))
		return PROBE_CERTAIN;
	if (head_len >= sizeof(sig) - 1 && !memcmp(head, sig, sizeof(sig) - 1))
		return PROBE_CERTAIN;
	if (vmdk_probe_desc((const char *)head, (const char *)head + head_len))
		return PROBE_CERTAIN;
	return 0;
}

/* --- descriptor ------------------------------------------------------------ */

static bool vmdk_is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* Decimal digits into *@v; false on none, overflow or a stray character. */
static bool vmdk_parse_dec(const char **pp, const char *end, uint64_t *v)
{
	const char *p = *pp;
	uint64_t x = 0;

	if (p == end || *p < '0' || *p > '9')
		return false;
	while (p < end && *p >= '0' && *p <= '9') {
		if (mul_overflow_u64(x, 10, &x) ||
		    add_overflow_u64(x, (uint64_t)(*p - '0'), &x))
			return false;
		p++;
	}
	*pp = p;
	*v = x;
	return true;
}

/* A CID: 1..8 hex digits with an optional 0x, as QEMU's "%x". */
static bool vmdk_parse_hex32(const char *p, const char *end, uint32_t *v)
{
	uint32_t x = 0;
	unsigned n = 0;

	if (end - p > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		p += 2;
	for (; p < end; p++, n++) {
		int d;

		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			return false;
		if (n == 8)
			return false;
		x = x << 4 | (uint32_t)d;
	}
	if (!n)
		return false;
	*v = x;
	return true;
}

/* A value, quoted or not, into @out (capacity @cap including the NUL). */
static int vmdk_desc_value(const char *p, const char *end, const char *key,
			   char *out, size_t cap, size_t max, size_t *len,
			   struct err *e)
{
	size_t n;

	if (p < end && *p == '"') {
		p++;
		if (end == p || end[-1] != '"')
			return err_set(e, EI_ECORRUPT,
				       "vmdk: descriptor %s has no closing quote", key);
		end--;
	}
	n = (size_t)(end - p);
	if (n > max)
		return err_set(e, EI_ECORRUPT,
			       "vmdk: descriptor %s is %zu characters long, at most %zu are allowed",
			       key, n, max);
	if (n >= cap || memchr(p, '"', n))
		return err_set(e, EI_ECORRUPT, "vmdk: descriptor %s is malformed", key);
	memcpy(out, p, n);
	out[n] = 0;
	if (len)
		*len = n;
	return 0;
}

static bool vmdk_plain_name(const char *s, size_t n)
{
	return n && !memchr(s, '/', n) && !memchr(s, '\\', n) &&
	       !(n == 1 && s[0] == '.') && !(n == 2 && !memcmp(s, "..", 2)) &&
	       !(n >= 5 && !memcmp(s, "json:", 5));
}

static int vmdk_bad_line(const char *l, const char *end, struct err *e)
{
	return err_set(e, EI_ECORRUPT, "vmdk: invalid extent line '%.*s'",
		       (int)min_u64((uint64_t)(end - l), 120), l);
}

/*
 * "RW 204800 SPARSE "name.vmdk"" or "RW 204800 FLAT "name" 0": access,
 * size in sectors, type, file name and, for FLAT, a sector offset.
 */
static int vmdk_parse_extent_line(const char *l, const char *end,
				  struct vmdk_desc *d, struct err *e)
{
	const char *p = l, *q;
	struct vmdk_desc_ext x = { 0 };
	bool has_off = false;
	size_t n;

	while (p < end && !vmdk_is_space(*p))
		p++;
	if ((size_t)(p - l) == 8 && !memcmp(l, "NOACCESS", 8))
		return err_set(e, EI_EUNSUP,
			       "vmdk: NOACCESS extents are not supported");
	while (p < end && vmdk_is_space(*p))
		p++;
	if (!vmdk_parse_dec(&p, end, &x.sectors) || !x.sectors ||
	    p == end || !vmdk_is_space(*p))
		return vmdk_bad_line(l, end, e);
	while (p < end && vmdk_is_space(*p))
		p++;
	q = p;
	while (p < end && !vmdk_is_space(*p))
		p++;
	n = (size_t)(p - q);
	if (!n || n >= sizeof(x.type))
		return vmdk_bad_line(l, end, e);
	memcpy(x.type, q, n);
	while (p < end && vmdk_is_space(*p))
		p++;
	if (strcmp(x.type, "FLAT") && strcmp(x.type, "SPARSE") &&
	    strcmp(x.type, "VMFS"))
		return err_set(e, EI_EUNSUP,
			       "vmdk: extent type '%s' is not supported (FLAT, VMFS, SPARSE are)",
			       x.type);
	if (p == end || *p != '"')
		return vmdk_bad_line(l, end, e);
	q = ++p;
	while (p < end && *p != '"')
		p++;
	if (p == end)
		return vmdk_bad_line(l, end, e);
	n = (size_t)(p - q);
	if (!n || n > VMDK_NAME_MAX)
		return err_set(e, EI_ECORRUPT,
			       "vmdk: extent file name of %zu bytes (1..%u allowed)",
			       n, VMDK_NAME_MAX);
	memcpy(x.name, q, n);
	if (memchr(x.name, 0, n) || !vmdk_plain_name(x.name, n))
		return err_set(e, EI_EREF,
			       "vmdk: extent file '%.*s' refused: only a plain file name in the image's directory is allowed",
			       (int)n, q);
	p++;
	while (p < end && vmdk_is_space(*p))
		p++;
	if (p < end) {
		if (!vmdk_parse_dec(&p, end, &x.offset))
			return vmdk_bad_line(l, end, e);
		has_off = true;
		while (p < end && vmdk_is_space(*p))
			p++;
		if (p < end)
			return vmdk_bad_line(l, end, e);
	}
	if (!strcmp(x.type, "FLAT") ? !has_off : has_off)
		return vmdk_bad_line(l, end, e);
	if (d->n_ext == VMDK_MAX_EXTENTS)
		return err_set(e, EI_ELIMIT, "vmdk: more than %u extents",
			       VMDK_MAX_EXTENTS);
	if (!(d->n_ext & (d->n_ext - 1))) {
		unsigned cap = d->n_ext ? d->n_ext * 2 : 1;
		struct vmdk_desc_ext *a = realloc(d->ext, cap * sizeof(*a));

		if (!a)
			return err_set(e, -ENOMEM, "vmdk: out of memory");
		d->ext = a;
	}
	d->ext[d->n_ext++] = x;
	return 0;
}

static int vmdk_parse_kv(const char *k, const char *kend, const char *v,
			 const char *vend, struct vmdk_desc *d, struct err *e)
{
	size_t kl = (size_t)(kend - k);
	int r;

#define KEY(s) (kl == sizeof(s) - 1 && !memcmp(k, s, kl))
	if (KEY("version")) {
		if (d->has_version)
			return err_set(e, EI_ECORRUPT, "vmdk: descriptor names version twice");
		d->has_version = true;
		if (vend - v != 1 || *v < '1' || *v > '3')
			return err_set(e, EI_EUNSUP,
				       "vmdk: descriptor version '%.*s' is not 1, 2 or 3",
				       (int)min_u64((uint64_t)(vend - v), 16), v);
	} else if (KEY("CID") || KEY("parentCID")) {
		bool parent = KEY("parentCID");

		if (parent ? d->has_pcid : d->has_cid)
			return err_set(e, EI_ECORRUPT, "vmdk: descriptor names %s twice",
				       parent ? "parentCID" : "CID");
		if (!vmdk_parse_hex32(v, vend, parent ? &d->pcid : &d->cid))
			return err_set(e, EI_ECORRUPT,
				       "vmdk: descriptor %s '%.*s' is not a 32-bit hex number",
				       parent ? "parentCID" : "CID",
				       (int)min_u64((uint64_t)(vend - v), 16), v);
		if (parent)
			d->has_pcid = true;
		else
			d->has_cid = true;
	} else if (KEY("createType")) {
		if (d->has_type)
			return err_set(e, EI_ECORRUPT, "vmdk: descriptor names createType twice");
		d->has_type = true;
		return vmdk_desc_value(v, vend, "createType", d->type,
				       sizeof(d->type), VMDK_TYPE_MAX, NULL, e);
	} else if (KEY("parentFileNameHint")) {
		if (d->parent_len)
			return err_set(e, EI_ECORRUPT,
				       "vmdk: descriptor names parentFileNameHint twice");
		r = vmdk_desc_value(v, vend, "parentFileNameHint", d->parent,
				    sizeof(d->parent), VMDK_NAME_MAX,
				    &d->parent_len, e);
		if (r < 0)
			return r;
		if (!d->parent_len)
			return err_set(e, EI_ECORRUPT,
				       "vmdk: descriptor parentFileNameHint is empty");
	}
#undef KEY
	return 0;
}

/* Parse the descriptor text @t (@len bytes; stops at a NUL) into @d. */
static int vmdk_parse_desc(const char *t, size_t len, struct vmdk_desc *d,
			   struct err *e)
{
	const char *end = memchr(t, 0, len);
	const char *p = t;

	if (!end)
		end = t + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end, *ls = p, *eq;
		int r = 0;

		p = nl ? nl + 1 : end;
		while (le > ls && (le[-1] == '\r' || vmdk_is_space(le[-1])))
			le--;
		while (ls < le && vmdk_is_space(*ls))
			ls++;
		if (ls == le || *ls == '#')
			continue;
		if ((le - ls > 3 && !memcmp(ls, "RW", 2) && vmdk_is_space(ls[2])) ||
		    (le - ls > 7 && !memcmp(ls, "RDONLY", 6) && vmdk_is_space(ls[6])) ||
		    (le - ls > 9 && !memcmp(ls, "NOACCESS", 8) && vmdk_is_space(ls[8])))
			r = vmdk_parse_extent_line(ls, le, d, e);
		else if ((eq = memchr(ls, '=', (size_t)(le - ls)))) {
			const char *ke = eq, *vs = eq + 1;

			while (ke > ls && vmdk_is_space(ke[-1]))
				ke--;
			while (vs < le && vmdk_is_space(*vs))
				vs++;
			r = vmdk_parse_kv(ls, ke, vs, le, d, e);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

static void vmdk_desc_free(struct vmdk_desc *d)
{
	free(d->ext);
	d->ext = NULL;
}

/* --- extents ---------------------------------------------------------------- */

static void vmdk_extent_touch(struct vmdk *s, struct vmdk_extent *x)
{
	x->used = ++s->clock;
}

/* Keep at most VMDK_OPEN_FILES extent files open: close the oldest. */
static void vmdk_evict(struct vmdk *s)
{
	struct vmdk_extent *old = NULL;

	if (s->n_open < VMDK_OPEN_FILES)
		return;
	for (unsigned i = 0; i < s->n_ext; i++) {
		struct vmdk_extent *x = &s->ext[i];

		if (x->name && x->io && (!old || x->used < old->used))
			old = x;
	}
	if (old) {
		io_close(old->io);
		old->io = NULL;
		s->n_open--;
	}
}

static int vmdk_extent_io(struct vdisk *vd, struct vmdk_extent *x,
			  struct io **io, struct err *e)
{
	struct vmdk *s = vd->priv;
	int r;

	if (!x->io) {
		vmdk_evict(s);
		r = vdisk_open_ref(vd, x->name, strlen(x->name), NULL,
				   "vmdk: extent file", NULL, &x->io, e);
		if (r < 0)
			return r;
		s->n_open++;
	}
	vmdk_extent_touch(s, x);
	*io = x->io;
	return 0;
}

static void vmdk_header_decode(const uint8_t *p, struct vmdk_header *h)
{
	h->version = get_le32(p + 4);
	h->flags = get_le32(p + 8);
	h->capacity = get_le64(p + 12);
	h->granularity = get_le64(p + 20);
	h->desc_offset = get_le64(p + 28);
	h->desc_size = get_le64(p + 36);
	h->gt_n = get_le32(p + 44);
	h->rgd_offset = get_le64(p + 48);
	h->gd_offset = get_le64(p + 56);
	h->grain_offset = get_le64(p + 64);
	memcpy(h->nl, p + 73, 4);
	h->compress = get_le16(p + 77);
}

/*
 * The footer of a stream-optimized extent: a footer marker, a copy of the
 * header with the real gdOffset, and the end-of-stream marker, in the
 * last three sectors (QEMU reads them at the same place).
 */
static int vmdk_read_footer(struct io *io, struct vmdk_header *h,
			    struct err *e)
{
	uint8_t f[3 * VMDK_SECTOR];
	uint64_t end = io->size / VMDK_SECTOR * VMDK_SECTOR;
	int r;

	if (end < 4 * VMDK_SECTOR)
		return err_set(e, EI_ECORRUPT,
			       "vmdk: gdOffset says the grain directory is at the end, but the file of %llu bytes has no room for a footer",
			       (unsigned long long)io->size);
	r = io_read(io, f, sizeof(f), end - sizeof(f), "vmdk: footer", e);
	if (r < 0)
		return r;
	if (get_le32(f + 8) != 0 || get_le32(f + 12) != VMDK_MARKER_FOOTER ||
	    get_be32(f + 512) != VMDK4_MAGIC || get_le64(f + 1024) != 0 ||
	    get_le32(f + 1032) != 0 || get_le32(f + 1036) != VMDK_MARKER_EOS)
		return err_set(e, EI_ECORRUPT,
			       "vmdk: gdOffset says the grain directory is at the end, but there is no valid footer (footer marker, KDMV header, end-of-stream marker) at %llu",
			       (unsigned long long)(end - sizeof(f)));
	vmdk_header_decode(f + 512, h);
	if (h->gd_offset == VMDK_GD_AT_END)
		return err_set(e, EI_ECORRUPT,
			       "vmdk: footer gdOffset is 0xffffffffffffffff too; it must locate the grain directory");
	return 0;
}

/* Check a hosted sparse extent header field by field. */
static int vmdk_header_check(const struct vmdk_header *h, struct vdisk *vd,
			     uint64_t file_size, bool top, struct err *e)
{
	uint64_t sz;

	if (h->version < 1 || h->version > 3)
		return err_set(e, EI_EUNSUP, "vmdk: version %u is not 1, 2 or 3",
			       h->version);
	if ((h->flags & VMDK_FLAGS_DATA_MASK) & ~VMDK_FLAGS_DATA_KNOWN)
		return err_set(e, EI_EUNSUP,
			       "vmdk: flags 0x%08x has unknown grain format bits 0x%08x",
			       h->flags,
			       (h->flags & VMDK_FLAGS_DATA_MASK) & ~VMDK_FLAGS_DATA_KNOWN);
	if (h->compress != VMDK_COMPRESS_NONE && h->compress != VMDK_COMPRESS_DEFLATE)
		return err_set(e, EI_EUNSUP,
			       "vmdk: compressAlgorithm %u is not 0 (none) or 1 (deflate)",
			       h->compress);
	if ((h->flags & VMDK_FLAG_NL_DETECT) && memcmp(h->nl, "\n \r\n", 4))
		return err_set(e, EI_ECORRUPT,
			       "vmdk: newline check bytes %02x %02x %02x %02x are not 0a 20 0d 0a: the file was damaged by a text-mode transfer",
			       h->nl[0], h->nl[1], h->nl[2], h->nl[3]);
	if (!is_pow2(h->granularity) || h->granularity > VMDK_MAX_GRAIN_SECTORS)
		return err_set(e, EI_ECORRUPT,
			       "vmdk: Invalid granularity %llu: not a power of two of 1..%u sectors",
			       (unsigned long long)h->granularity, VMDK_MAX_GRAIN_SECTORS);
	if (h->compress == VMDK_COMPRESS_DEFLATE &&
	    h->granularity > VMDK_MAX_CGRAIN_SECTORS)
		return err_set(e, EI_ELIMIT,
			       "vmdk: granularity %llu of a compressed extent exceeds %u sectors",
			       (unsigned long long)h->granularity, VMDK_MAX_CGRAIN_SECTORS);
	if (!h->gt_n || h->gt_n > VMDK_MAX_GTES)
		return err_set(e, EI_ECORRUPT,
			       "vmdk: numGTEsPerGT %u is not in 1..%u (L2 table size too big)",
			       h->gt_n, VMDK_MAX_GTES);
	if (mul_overflow_u64(h->capacity, VMDK_SECTOR, &sz) || sz > vd->opts.max_size)
		return err_set(e, EI_ELIMIT,
			       "vmdk: capacity %llu sectors exceeds the limit of %llu bytes",
			       (unsigned long long)h->capacity,
			       (unsigned long long)vd->opts.max_size);
	if (h->gd_offset == 0 || h->gd_offset > UINT64_MAX / VMDK_SECTOR)
		return err_set(e, EI_ECORRUPT, "vmdk: gdOffset %llu is invalid",
			       (unsigned long long)h->gd_offset);
	if (h->grain_offset > UINT64_MAX / VMDK_SECTOR ||
	    h->grain_offset * VMDK_SECTOR > file_size)
		return err_set(e, EI_ETRUNC,
			       "vmdk: File truncated: grains start at sector %llu, the file has %llu bytes",
			       (unsigned long long)h->grain_offset,
			       (unsigned long long)file_size);
	if (top && (h->desc_offset != 1 || !h->desc_size ||
		    h->desc_size > VMDK_DESC_MAX_SECTORS))
		return err_set(e, EI_ECORRUPT,
			       "vmdk: descriptorOffset %llu / descriptorSize %llu: the descriptor must start at sector 1 and hold 1..%u sectors",
			       (unsigned long long)h->desc_offset,
			       (unsigned long long)h->desc_size, VMDK_DESC_MAX_SECTORS);
	/*
	 * numGTEsPerGT x granularity (QEMU's 32-bit l1_entry_sectors, which
	 * may wrap to 0) is at most 2^30 here and is computed in 64 bits.
	 */
	return 0;
}

/*
 * Set up the sparse extent @x from the header of @io.  With @top the file
 * is the image itself; returns 1 (and fills *@desc_off) when its header is
 * only a pointer to a descriptor (capacity 0), for the caller to parse.
 */
static int vmdk_sparse_open(struct vdisk *vd, struct vmdk_extent *x,
			    struct io *io, bool top, struct vmdk_header *hout,
			    struct err *e)
{
	struct vmdk *s = vd->priv;
	uint8_t buf[VMDK_SECTOR];
	struct vmdk_header h;
	uint64_t span, gd_n, gd_len;
	uint8_t *raw;
	int r;

	r = io_read(io, buf, min_u64(sizeof(buf), io->size), 0, "vmdk: header", e);
	if (r < 0)
		return r;
	if (io->size >= 4 && get_be32(buf) == VMDK4_MAGIC &&
	    io->size < VMDK_HEADER_LEN)
		return err_set(e, EI_ETRUNC,
			       "vmdk: %s: file of %llu bytes ends inside the %u-byte header",
			       io->name, (unsigned long long)io->size, VMDK_HEADER_LEN);
	if (io->size < 4 || get_be32(buf) != VMDK4_MAGIC) {
		if (io->size >= 4 && get_be32(buf) == VMDK3_MAGIC)
			return err_set(e, EI_EUNSUP,
				       "vmdk: %s: VMDK3 (COWD) sparse extents are not supported",
				       io->name);
		return err_set(e, top ? EI_EFORMAT : EI_ECORRUPT,
			       "vmdk: %s: sparse extent has no KDMV header", io->name);
	}
	vmdk_header_decode(buf, &h);
	if (top && h.capacity == 0 && h.desc_offset) {
		*hout = h;
		return 1;
	}
	if (h.gd_offset == VMDK_GD_AT_END) {
		r = vmdk_read_footer(io, &h, e);
		if (r < 0)
			return r;
	}
	r = vmdk_header_check(&h, vd, io->size, top, e);
	if (r < 0)
		return r;
	x->kind = VMDK_SPARSE;
	x->len = h.capacity * VMDK_SECTOR;
	x->grain = h.granularity * VMDK_SECTOR;
	x->gt_n = h.gt_n;
	x->compressed = h.compress == VMDK_COMPRESS_DEFLATE;
	x->marker = h.flags & VMDK_FLAG_MARKER;
	x->zero_grain = h.flags & VMDK_FLAG_ZERO_GRAIN;
	span = (uint64_t)h.gt_n * h.granularity;
	gd_n = h.capacity / span + (h.capacity % span != 0);
	gd_len = gd_n * 4;
	if (gd_len > vd->opts.max_table || s->gd_bytes + gd_len > vd->opts.max_table)
		return err_set(e, EI_ELIMIT,
			       "vmdk: L1 size too big: a grain directory of %llu entries (%llu bytes) exceeds the table limit of %llu bytes",
			       (unsigned long long)gd_n, (unsigned long long)gd_len,
			       (unsigned long long)vd->opts.max_table);
	if (gd_n && !range_ok(h.gd_offset * VMDK_SECTOR, gd_len, io->size))
		return err_set(e, EI_ETRUNC,
			       "vmdk: grain directory at sector %llu (%llu bytes) lies past the end of %s (%llu bytes)",
			       (unsigned long long)h.gd_offset,
			       (unsigned long long)gd_len, io->name,
			       (unsigned long long)io->size);
	x->gd_n = (uint32_t)gd_n;
	if (gd_n) {
		x->gd = malloc((size_t)gd_len);
		if (!x->gd)
			return err_set(e, -ENOMEM, "vmdk: out of memory");
		r = io_read(io, x->gd, (size_t)gd_len, h.gd_offset * VMDK_SECTOR,
			    "vmdk: grain directory", e);
		if (r < 0)
			return r;
		raw = (uint8_t *)x->gd;
		for (uint64_t i = 0; i < gd_n; i++)
			x->gd[i] = get_le32(raw + i * 4);
	}
	s->gd_bytes += gd_len;
	if (hout)
		*hout = h;
	return 0;
}

static int vmdk_add_extent(struct vmdk *s, struct err *e)
{
	struct vmdk_extent *a;

	if (s->n_ext == VMDK_MAX_EXTENTS)
		return err_set(e, EI_ELIMIT, "vmdk: more than %u extents",
			       VMDK_MAX_EXTENTS);
	a = realloc(s->ext, (s->n_ext + 1) * sizeof(*a));
	if (!a)
		return err_set(e, -ENOMEM, "vmdk: out of memory");
	s->ext = a;
	memset(&a[s->n_ext], 0, sizeof(*a));
	s->n_ext++;
	return 0;
}

static bool vmdk_type_is(const char *t, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(t, *list))
			return true;
	return false;
}

/* A descriptor file: every extent lives in another file. */
static int vmdk_open_descfile(struct vdisk *vd, struct vmdk_desc *d,
			      struct err *e)
{
	static const char *const flat[] = { "monolithicFlat", "twoGbMaxExtentFlat",
					    "vmfs", NULL };
	static const char *const sparse[] = { "twoGbMaxExtentSparse", NULL };
	static const char *const unsup[] = { "vmfsSparse", "seSparse",
					     "vmfsRaw", "vmfsRawDeviceMap",
					     "vmfsPassthroughRawDeviceMap",
					     "fullDevice", "partitionedDevice",
					     "vmfsPreallocated", "vmfsEagerZeroedThick",
					     "vmfsThin", "custom", NULL };
	struct vmdk *s = vd->priv;
	bool is_flat, single;
	uint64_t total = 0;
	int r;

	if (!d->has_type)
		return err_set(e, EI_EFORMAT,
			       "vmdk: no KDMV header and no createType in a descriptor: not a VMDK image");
	is_flat = vmdk_type_is(d->type, flat);
	if (!is_flat && !vmdk_type_is(d->type, sparse)) {
		if (!strcmp(d->type, "monolithicSparse") ||
		    !strcmp(d->type, "streamOptimized") ||
		    vmdk_type_is(d->type, unsup))
			return err_set(e, EI_EUNSUP,
				       "vmdk: createType '%s' is not supported in a descriptor file",
				       d->type);
		return err_set(e, EI_ECORRUPT, "vmdk: unknown createType '%s'",
			       d->type);
	}
	if (!d->has_cid || !d->has_pcid)
		return err_set(e, EI_ECORRUPT, "vmdk: descriptor has no %s line",
			       d->has_cid ? "parentCID" : "CID");
	single = !strcmp(d->type, "monolithicFlat") || !strcmp(d->type, "vmfs");
	if (!d->n_ext || (single && d->n_ext != 1))
		return err_set(e, EI_ECORRUPT,
			       "vmdk: createType '%s' with %u extents (%s expected)",
			       d->type, d->n_ext, single ? "1" : "1 or more");
	for (unsigned i = 0; i < d->n_ext; i++) {
		const struct vmdk_desc_ext *de = &d->ext[i];
		bool xflat = !strcmp(de->type, "FLAT") || !strcmp(de->type, "VMFS");
		uint64_t b;

		if (xflat != is_flat)
			return err_set(e, EI_ECORRUPT,
				       "vmdk: a %s extent in a '%s' disk", de->type,
				       d->type);
		if (mul_overflow_u64(de->sectors, VMDK_SECTOR, &b) ||
		    add_overflow_u64(total, b, &total) || total > vd->opts.max_size)
			return err_set(e, EI_ELIMIT,
				       "vmdk: extents of more than %llu bytes",
				       (unsigned long long)vd->opts.max_size);
		if (de->offset > UINT64_MAX / VMDK_SECTOR ||
		    add_overflow_u64(de->offset * VMDK_SECTOR, b, &b))
			return err_set(e, EI_ECORRUPT,
				       "vmdk: extent '%s' offset %llu is too large",
				       de->name, (unsigned long long)de->offset);
	}
	for (unsigned i = 0; i < d->n_ext; i++) {
		const struct vmdk_desc_ext *de = &d->ext[i];
		struct vmdk_extent *x;
		struct io *io;

		r = vmdk_add_extent(s, e);
		if (r < 0)
			return r;
		x = &s->ext[s->n_ext - 1];
		x->start = vd->size;
		snprintf(x->type, sizeof(x->type), "%s", de->type);
		x->name = strdup(de->name);
		if (!x->name)
			return err_set(e, -ENOMEM, "vmdk: out of memory");
		r = vmdk_extent_io(vd, x, &io, e);
		if (r < 0)
			return r;
		if (is_flat) {
			x->kind = VMDK_FLAT;
			x->len = de->sectors * VMDK_SECTOR;
			x->flat_off = de->offset * VMDK_SECTOR;
		} else {
			r = vmdk_sparse_open(vd, x, io, false, NULL, e);
			if (r < 0) {
				err_prefix(e, "extent '%s'", de->name);
				return r;
			}
			if (x->len != de->sectors * VMDK_SECTOR)
				return err_set(e, EI_ECORRUPT,
					       "vmdk: extent '%s' holds %llu sectors, the descriptor says %llu",
					       de->name,
					       (unsigned long long)(x->len / VMDK_SECTOR),
					       (unsigned long long)de->sectors);
		}
		vd->size += x->len;
	}
	snprintf(s->create_type, sizeof(s->create_type), "%s", d->type);
	return 0;
}

/* The descriptor embedded in a hosted sparse file: only checked and read for IDs. */
static int vmdk_check_embedded(const struct vmdk_desc *d, struct err *e)
{
	if (d->has_type && strcmp(d->type, "monolithicSparse") &&
	    strcmp(d->type, "streamOptimized"))
		return err_set(e, EI_ECORRUPT,
			       "vmdk: createType '%s' in a monolithic sparse file (monolithicSparse or streamOptimized expected)",
			       d->type);
	if (d->n_ext > 1)
		return err_set(e, EI_ECORRUPT,
			       "vmdk: %u extents in a monolithic sparse file's descriptor (1 expected)",
			       d->n_ext);
	if (d->n_ext && strcmp(d->ext[0].type, "SPARSE"))
		return err_set(e, EI_ECORRUPT,
			       "vmdk: a %s extent in a monolithic sparse file's descriptor (SPARSE expected)",
			       d->ext[0].type);
	if (!d->has_cid || !d->has_pcid)
		return err_set(e, EI_ECORRUPT, "vmdk: descriptor has no %s line",
			       d->has_cid ? "parentCID" : "CID");
	return 0;
}

static int vmdk_read_text(struct io *io, uint64_t off, uint64_t max,
			  char **out, size_t *len, struct err *e)
{
	size_t n;
	char *t;
	int r;

	if (off > io->size)
		return err_set(e, EI_ETRUNC, "vmdk: descriptor at %llu lies past the end of %s",
			       (unsigned long long)off, io->name);
	n = (size_t)min_u64(io->size - off, max);
	t = malloc(n + 1);
	if (!t)
		return err_set(e, -ENOMEM, "vmdk: out of memory");
	r = io_read(io, t, n, off, "vmdk: descriptor", e);
	if (r < 0) {
		free(t);
		return r;
	}
	t[n] = 0;
	*out = t;
	*len = n;
	return 0;
}

static int vmdk_open_parent(struct vdisk *vd, const struct vmdk_desc *d,
			    struct err *e)
{
	struct vmdk *s = vd->priv;
	struct vmdk *ps;
	int r;

	if (!d->parent_len) {
		if (d->pcid != UINT32_MAX)
			return err_set(e, EI_EUNSUP,
				       "vmdk: parentCID %08x makes this a delta disk, but no parentFileNameHint names its parent",
				       d->pcid);
		return 0;
	}
	r = vdisk_open_ref(vd, d->parent, d->parent_len, "vmdk",
			   "vmdk: parent (delta disk)", &s->parent, NULL, e);
	if (r < 0)
		return r;
	ps = s->parent->priv;
	if (ps->cid != d->pcid)
		return err_set(e, EI_ECORRUPT,
			       "vmdk: parent '%s' has CID %08x, this delta disk expects parentCID %08x",
			       d->parent, ps->cid, d->pcid);
	return 0;
}

static void vmdk_close(struct vdisk *vd)
{
	struct vmdk *s = vd->priv;

	if (!s)
		return;
	for (unsigned i = 0; i < s->n_ext; i++) {
		struct vmdk_extent *x = &s->ext[i];

		if (x->name)
			io_close(x->io);
		free(x->name);
		free(x->gd);
	}
	free(s->ext);
	free(s->gt);
	pipeline_free(s->pl);
	free(s->cbuf);
	free(s->gbuf);
	if (s->zs_init)
		inflateEnd(&s->zs);
	vdisk_close(s->parent);
	free(s);
	vd->priv = NULL;
}

static int vmdk_open(struct vdisk *vd, struct err *e)
{
	struct vmdk_desc d = { 0 };
	struct vmdk_header h;
	struct vmdk *s;
	uint8_t magic[4];
	char *text = NULL;
	size_t tlen;
	int r;

	if (vd->io->flags & IO_STREAM)
		return err_set(e, EI_EUNSUP, "vmdk: %s is not seekable", vd->io->name);
	if (vd->io->size < 4)
		return err_set(e, EI_EFORMAT,
			       "vmdk: a file of %llu bytes is too small to be a VMDK image",
			       (unsigned long long)vd->io->size);
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, -ENOMEM, "vmdk: out of memory");
	vd->priv = s;
	vd->size = 0;
	r = io_read(vd->io, magic, 4, 0, "vmdk: header", e);
	if (r < 0)
		goto fail;
	if (get_be32(magic) == VMDK4_MAGIC || get_be32(magic) == VMDK3_MAGIC) {
		struct vmdk_extent *x;

		r = vmdk_add_extent(s, e);
		if (r < 0)
			goto fail;
		x = &s->ext[0];
		x->io = vd->io;
		r = vmdk_sparse_open(vd, x, vd->io, true, &h, e);
		if (r < 0)
			goto fail;
		if (r == 1) {
			/* A KDMV header that only points at a descriptor. */
			s->n_ext = 0;
			if (h.desc_offset > UINT64_MAX / VMDK_SECTOR) {
				r = err_set(e, EI_ECORRUPT,
					    "vmdk: descriptorOffset %llu is invalid",
					    (unsigned long long)h.desc_offset);
				goto fail;
			}
			r = vmdk_read_text(vd->io, h.desc_offset * VMDK_SECTOR,
					   VMDK_DESC_MAX, &text, &tlen, e);
			if (r < 0 || (r = vmdk_parse_desc(text, tlen, &d, e)) < 0 ||
			    (r = vmdk_open_descfile(vd, &d, e)) < 0)
				goto fail;
		} else {
			vd->size = x->len;
			r = vmdk_read_text(vd->io, h.desc_offset * VMDK_SECTOR,
					   h.desc_size * VMDK_SECTOR, &text, &tlen, e);
			if (r < 0)
				goto fail;
			if (tlen < h.desc_size * VMDK_SECTOR) {
				r = err_set(e, EI_ETRUNC,
					    "vmdk: descriptor of %llu sectors lies past the end of %s",
					    (unsigned long long)h.desc_size, vd->io->name);
				goto fail;
			}
			r = vmdk_parse_desc(text, tlen, &d, e);
			if (r < 0 || (r = vmdk_check_embedded(&d, e)) < 0)
				goto fail;
			snprintf(s->create_type, sizeof(s->create_type), "%s",
				 x->compressed ? "streamOptimized" : "monolithicSparse");
		}
	} else {
		r = vmdk_read_text(vd->io, 0, VMDK_DESC_MAX, &text, &tlen, e);
		if (r < 0 || (r = vmdk_parse_desc(text, tlen, &d, e)) < 0 ||
		    (r = vmdk_open_descfile(vd, &d, e)) < 0)
			goto fail;
	}
	s->cid = d.cid;
	s->parent_cid = d.pcid;
	r = vmdk_open_parent(vd, &d, e);
	if (r < 0)
		goto fail;
	free(text);
	vmdk_desc_free(&d);
	return 0;
fail:
	free(text);
	vmdk_desc_free(&d);
	vmdk_close(vd);
	return r;
}

/* --- mapping -------------------------------------------------------------- */

static struct vmdk_extent *vmdk_find(struct vmdk *s, uint64_t off)
{
	unsigned lo = 0, hi = s->n_ext;
	struct vmdk_extent *x = &s->ext[s->last];

	if (off >= x->start && off - x->start < x->len)
		return x;
	while (lo + 1 < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (s->ext[mid].start <= off)
			lo = mid;
		else
			hi = mid;
	}
	s->last = lo;
	return &s->ext[lo];
}

/* The grain table entry of grain @g of extent @x (its index @xi). */
static int vmdk_gte(struct vdisk *vd, struct vmdk_extent *x, unsigned xi,
		    uint64_t g, uint32_t *gte, struct err *e)
{
	struct vmdk *s = vd->priv;
	uint64_t gi = g / x->gt_n;
	struct vmdk_gt_slot *sl;
	uint8_t raw[VMDK_MAX_GTES * 4];
	struct io *io;
	int r;

	if (gi >= x->gd_n)
		return err_set(e, -EIO, "vmdk: grain %llu beyond the grain directory",
			       (unsigned long long)g);
	if (!x->gd[gi]) {
		*gte = 0;
		return 0;
	}
	if (!s->gt) {
		s->gt = calloc(VMDK_GT_SLOTS, sizeof(*s->gt));
		if (!s->gt)
			return err_set(e, -ENOMEM, "vmdk: out of memory");
	}
	sl = &s->gt[(gi + (uint64_t)xi * 17) % VMDK_GT_SLOTS];
	if (!sl->valid || sl->ext != xi || sl->gd_idx != gi) {
		r = vmdk_extent_io(vd, x, &io, e);
		if (r < 0)
			return r;
		sl->valid = false;
		r = io_read(io, raw, x->gt_n * 4, (uint64_t)x->gd[gi] * VMDK_SECTOR,
			    "vmdk: grain table", e);
		if (r < 0)
			return r;
		for (uint32_t i = 0; i < x->gt_n; i++)
			sl->gte[i] = get_le32(raw + i * 4);
		sl->ext = xi;
		sl->gd_idx = (uint32_t)gi;
		sl->valid = true;
	}
	*gte = sl->gte[g % x->gt_n];
	return 0;
}

static enum vmdk_cls vmdk_classify(const struct vmdk_extent *x, uint32_t gte)
{
	if (!gte)
		return VMDK_C_HOLE;
	if (x->zero_grain && gte == VMDK_GTE_ZERO)
		return VMDK_C_ZERO;
	return VMDK_C_DATA;
}

/*
 * One piece: a grain, or a flat extent's run (zeros past the end of its
 * file, as QEMU reads them).  Holes of a delta disk are the parent's;
 * compressed grains are inflated by vmdk_decode().
 */
static int vmdk_piece(struct vdisk *vd, uint64_t off, uint64_t len,
		      struct map_run *run, struct err *e)
{
	struct vmdk *s = vd->priv;
	struct vmdk_extent *x = vmdk_find(s, off);
	unsigned xi = (unsigned)(x - s->ext);
	uint64_t rel = off - x->start, lim = min_u64(len, x->len - rel), g;
	struct io *io;
	uint32_t gte;
	int r;

	run->len = lim;
	if (x->kind == VMDK_FLAT) {
		uint64_t fo = x->flat_off + rel;

		r = vmdk_extent_io(vd, x, &io, e);
		if (r < 0)
			return r;
		if (fo >= io->size) {
			run->type = EXT_HOLE;
			return 0;
		}
		run->src = MAP_IO;
		run->io = io;
		run->host = fo;
		run->len = min_u64(lim, io->size - fo);
		run->what = "vmdk: flat extent";
		run->holes = EXT_HOLE;
		return 0;
	}
	g = rel / x->grain;
	run->len = min_u64(lim, x->grain - rel % x->grain);
	r = vmdk_gte(vd, x, xi, g, &gte, e);
	if (r < 0)
		return r;
	switch (vmdk_classify(x, gte)) {
	case VMDK_C_HOLE:
		map_backing(s->parent, off, run->len, run);
		break;
	case VMDK_C_ZERO:
		run->type = EXT_ZERO;
		break;
	case VMDK_C_DATA:
		if (x->compressed) {
			run->src = MAP_DECODE;
			break;
		}
		r = vmdk_extent_io(vd, x, &io, e);
		if (r < 0)
			return r;
		run->src = MAP_IO;
		run->io = io;
		run->host = (uint64_t)gte * VMDK_SECTOR + rel % x->grain;
		run->what = "vmdk: grain";
		break;
	}
	return 0;
}

static int vmdk_map(struct vdisk *vd, uint64_t off, uint64_t len,
		    struct map_run *run, struct err *e)
{
	return map_pieces(vd, off, len, run, vmdk_piece, e);
}

/*
 * Read the deflate stream of the grain stored at sector @gte of @x into
 * @buf (2 grains of room): after a grain marker when the extent has them,
 * else as much as QEMU would hand to uncompress().
 */
static int vmdk_grain_fetch(struct vdisk *vd, struct vmdk_extent *x,
			    uint32_t gte, uint8_t *buf, size_t *clen,
			    struct err *e)
{
	uint64_t host = (uint64_t)gte * VMDK_SECTOR, avail;
	size_t need = (size_t)x->grain * 2;
	struct io *io;
	int r;

	r = vmdk_extent_io(vd, x, &io, e);
	if (r < 0)
		return r;
	if (host >= io->size)
		return err_set(e, EI_ETRUNC,
			       "vmdk: compressed grain at %llu lies past the end of %s (%llu bytes)",
			       (unsigned long long)host, io->name,
			       (unsigned long long)io->size);
	avail = io->size - host;
	if (x->marker) {
		uint8_t m[VMDK_MARKER_LEN];
		uint32_t size;

		r = io_read(io, m, sizeof(m), host, "vmdk: grain marker", e);
		if (r < 0)
			return r;
		size = get_le32(m + 8);
		if (!size || size > need)
			return err_set(e, EI_ECORRUPT,
				       "vmdk: grain marker at %llu: compressed size %u is not in 1..%zu",
				       (unsigned long long)host, size, need);
		if (size > avail - VMDK_MARKER_LEN)
			return err_set(e, EI_ETRUNC,
				       "vmdk: grain marker at %llu: compressed size %u exceeds the %llu bytes left in the file",
				       (unsigned long long)host, size,
				       (unsigned long long)(avail - VMDK_MARKER_LEN));
		*clen = size;
		host += VMDK_MARKER_LEN;
	} else {
		*clen = (size_t)min_u64(need, avail);
	}
	return io_read(io, buf, *clen, host, "vmdk: compressed grain", e);
}

/*
 * Inflate the zlib stream @in into @out, at most @cap bytes (one grain);
 * *@have gets the length.  @zs is reset first.  @g names the grain.
 */
static int vmdk_inflate(z_stream *zs, const uint8_t *in, size_t in_len,
			uint8_t *out, size_t cap, size_t *have, uint64_t g,
			struct err *e)
{
	int zr;

	if (inflateReset(zs) != Z_OK)
		return err_set(e, -EIO, "vmdk: inflateReset failed");
	zs->next_in = (Bytef *)in;
	zs->avail_in = (uInt)in_len;
	zs->next_out = out;
	zs->avail_out = (uInt)cap;
	zr = inflate(zs, Z_FINISH);
	if (zr != Z_STREAM_END) {
		if (zr == Z_BUF_ERROR && !zs->avail_out)
			return err_set(e, EI_ECODEC,
				       "vmdk: grain %llu inflates to more than the grain size of %zu bytes",
				       (unsigned long long)g, cap);
		return err_set(e, EI_ECODEC, "vmdk: grain %llu: invalid zlib stream (%s)",
			       (unsigned long long)g,
			       zs->msg ? zs->msg : zError(zr));
	}
	*have = cap - zs->avail_out;
	return 0;
}

/* Inflate grain @g of the compressed extent @x into s->gbuf. */
static int vmdk_grain_load(struct vdisk *vd, struct vmdk_extent *x,
			   unsigned xi, uint64_t g, uint32_t gte, struct err *e)
{
	struct vmdk *s = vd->priv;
	size_t clen, need = (size_t)x->grain * 2;
	int r;

	if (s->g_valid && s->g_ext == xi && s->g_idx == g)
		return 0;
	s->g_valid = false;
	if (s->cbuf_cap < need) {
		free(s->cbuf);
		free(s->gbuf);
		s->gbuf = NULL;
		s->gbuf_cap = s->cbuf_cap = 0;
		s->cbuf = malloc(need);
		s->gbuf = malloc((size_t)x->grain);
		if (!s->cbuf || !s->gbuf)
			return err_set(e, -ENOMEM, "vmdk: out of memory");
		s->cbuf_cap = need;
		s->gbuf_cap = (size_t)x->grain;
	}
	r = vmdk_grain_fetch(vd, x, gte, s->cbuf, &clen, e);
	if (r < 0)
		return r;
	if (!s->zs_init) {
		memset(&s->zs, 0, sizeof(s->zs));
		if (inflateInit2(&s->zs, 15) != Z_OK)
			return err_set(e, -ENOMEM, "vmdk: inflateInit2 failed");
		s->zs_init = true;
	}
	r = vmdk_inflate(&s->zs, s->cbuf, clen, s->gbuf, (size_t)x->grain,
			 &s->g_have, g, e);
	if (r < 0)
		return r;
	s->g_ext = xi;
	s->g_idx = g;
	s->g_valid = true;
	return 0;
}

/* Worker: inflate a unit (u->flags: extent index, u->off: grain start). */
static int vmdk_pl_work(void *arg, void **ctx, struct pl_unit *u,
			struct err *e)
{
	const struct vmdk *s = arg;
	const struct vmdk_extent *x = &s->ext[u->flags];
	z_stream *zs = *ctx;

	if (!zs) {
		zs = calloc(1, sizeof(*zs));
		if (!zs || inflateInit2(zs, 15) != Z_OK) {
			free(zs);
			return err_set(e, -ENOMEM, "vmdk: out of memory");
		}
		*ctx = zs;
	}
	return vmdk_inflate(zs, u->in, u->in_len, u->out, (size_t)x->grain,
			    &u->out_len, (u->off - x->start) / x->grain, e);
}

static void vmdk_pl_ctx_free(void *arg, void *ctx)
{
	(void)arg;
	if (ctx)
		inflateEnd(ctx);
	free(ctx);
}

/* Caller's thread, in order: copy the part of the grain the read wants. */
static int vmdk_pl_emit(void *arg, struct pl_unit *u, struct err *e)
{
	struct vmdk *s = arg;
	const struct vmdk_extent *x = &s->ext[u->flags];
	uint64_t a = u->off > s->req_off ? u->off : s->req_off;
	uint64_t b = min_u64(min_u64(u->off + x->grain, x->start + x->len),
			     s->req_off + s->req_len);

	if (u->out_len < b - u->off)
		return err_set(e, EI_ECORRUPT,
			       "vmdk: grain %llu inflates to %zu bytes, the disk needs %llu",
			       (unsigned long long)((u->off - x->start) / x->grain),
			       u->out_len, (unsigned long long)(b - u->off));
	memcpy(s->req_buf + (a - s->req_off), u->out + (a - u->off), b - a);
	return 0;
}

static const struct pl_ops vmdk_pl_ops = {
	.work = vmdk_pl_work,
	.emit = vmdk_pl_emit,
	.ctx_free = vmdk_pl_ctx_free,
};

/* A pipeline for grains of @grain bytes, or false to inflate inline. */
static bool vmdk_pl_ready(struct vmdk *s, uint64_t grain)
{
	struct err e2 = { 0 };
	long cpus;

	if (!IS_ENABLED(CONFIG_THREADS) || s->pl_off)
		return false;
	if (s->pl && s->pl_grain >= grain)
		return true;
	pipeline_free(s->pl);
	s->pl = NULL;
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (cpus < 2 ||
	    pipeline_new(&vmdk_pl_ops, s, (unsigned)min_u64((uint64_t)cpus, VMDK_PL_THREADS),
			 (size_t)grain * 2, (size_t)grain, VMDK_PL_MEM, &s->pl, &e2) < 0) {
		s->pl_off = true;
		return false;
	}
	s->pl_grain = grain;
	return true;
}

/*
 * Read [@off, @off + @n) of the compressed extent @x, all of it grains
 * stored compressed, inflating them in the workers.
 */
static int vmdk_read_zrun(struct vdisk *vd, struct vmdk_extent *x,
			  unsigned xi, uint8_t *b, uint64_t off, size_t n,
			  struct err *e)
{
	struct vmdk *s = vd->priv;
	uint64_t pos = off, end = off + n;
	int r = 0;

	s->req_buf = b;
	s->req_off = off;
	s->req_len = n;
	while (pos < end) {
		uint64_t rel = pos - x->start, g = rel / x->grain;
		struct pl_unit *u;
		uint32_t gte;

		r = vmdk_gte(vd, x, xi, g, &gte, e);
		if (r >= 0 && vmdk_classify(x, gte) != VMDK_C_DATA)
			r = err_set(e, -EIO, "vmdk: grain %llu is not stored",
				    (unsigned long long)g);
		if (r < 0)
			break;
		u = pipeline_get(s->pl, e);
		if (!u) {
			r = e && e->code ? e->code : -EIO;
			break;
		}
		r = vmdk_grain_fetch(vd, x, gte, u->in, &u->in_len, e);
		if (r < 0)
			break;
		u->off = x->start + g * x->grain;
		u->flags = xi;
		r = pipeline_submit(s->pl, u, e);
		if (r < 0)
			break;
		pos += min_u64(x->grain - rel % x->grain, end - pos);
	}
	if (r >= 0)
		r = pipeline_finish(s->pl, e);
	if (r < 0) {
		/* Start over with a fresh pipeline at the next read. */
		pipeline_free(s->pl);
		s->pl = NULL;
	}
	return r;
}

/*
 * Compressed grains (a MAP_DECODE run): many at once are inflated in
 * parallel, a few inline, the last one kept.
 */
static int vmdk_decode(struct vdisk *vd, void *buf, size_t len, uint64_t off,
		       struct err *e)
{
	struct vmdk *s = vd->priv;
	uint8_t *b = buf;
	int r;

	while (len) {
		struct vmdk_extent *x = vmdk_find(s, off);
		unsigned xi = (unsigned)(x - s->ext);
		uint64_t rel = off - x->start, in = rel % x->grain, g = rel / x->grain;
		size_t n = (size_t)min_u64(len, x->len - rel);
		uint32_t gte;

		if (!x->compressed || x->kind != VMDK_SPARSE)
			return err_set(e, -EIO, "vmdk: offset %llu is not in a compressed extent",
				       (unsigned long long)off);
		if (n >= VMDK_PL_MIN_GRAINS * x->grain && vmdk_pl_ready(s, x->grain)) {
			r = vmdk_read_zrun(vd, x, xi, b, off, n, e);
			if (r < 0)
				return r;
		} else {
			n = (size_t)min_u64(n, x->grain - in);
			r = vmdk_gte(vd, x, xi, g, &gte, e);
			if (r >= 0 && vmdk_classify(x, gte) != VMDK_C_DATA)
				r = err_set(e, -EIO, "vmdk: grain %llu is not stored",
					    (unsigned long long)g);
			if (r >= 0)
				r = vmdk_grain_load(vd, x, xi, g, gte, e);
			if (r < 0)
				return r;
			if (in + n > s->g_have)
				return err_set(e, EI_ECORRUPT,
					       "vmdk: grain %llu inflates to %zu bytes, the disk needs %llu",
					       (unsigned long long)g, s->g_have,
					       (unsigned long long)(in + n));
			memcpy(b, s->gbuf + in, n);
		}
		b += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int vmdk_info(struct vdisk *vd, struct info *in, struct err *e)
{
	struct vmdk *s = vd->priv;
	const char *name = vd->io->name, *slash = strrchr(name, '/');
	int dl = slash ? (int)(slash - name + 1) : 0;

	(void)e;
	/* qemu-img: the grain of the first sparse extent */
	for (unsigned i = 0; i < s->n_ext && !in->cluster_size; i++)
		if (s->ext[i].kind == VMDK_SPARSE)
			in->cluster_size = s->ext[i].grain;
	info_u64(in, "cid", s->cid);
	info_u64(in, "parent-cid", s->parent_cid);
	info_str(in, "create-type", "%s", s->create_type);
	info_list(in, "extents");
	for (unsigned i = 0; i < s->n_ext && i < VMDK_INFO_EXTENTS; i++) {
		const struct vmdk_extent *x = &s->ext[i];

		info_begin(in, NULL);
		if (x->kind == VMDK_SPARSE && x->compressed)
			info_bool(in, "compressed", true);
		info_u64(in, "virtual-size", x->len);
		if (x->name)
			info_str(in, "filename", "%.*s%s", dl, name, x->name);
		else
			info_str(in, "filename", "%s", name);
		if (x->kind == VMDK_SPARSE)
			info_u64(in, "cluster-size", x->grain);
		info_str(in, "format", "%s", x->type);
		info_end(in);
	}
	info_list_end(in);
	return 0;
}

const struct img_format fmt_vmdk = {
	.name = "vmdk",
	.desc = "VMware virtual disk (sparse, stream-optimized, flat, split)",
	.probe = vmdk_probe,
	.open = vmdk_open,
	.map = vmdk_map,
	.decode = vmdk_decode,
	.close = vmdk_close,
	.info = vmdk_info,
};
