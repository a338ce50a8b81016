// SPDX-License-Identifier: MIT
/*
 * VHD images (Virtual PC, Hyper-V, Disk2VHD, XenServer; qemu's "vpc"),
 * read side: fixed, dynamic and (with --allow-refs) differencing disks.
 * Spec: Microsoft's "Virtual Hard Disk Image Format Specification" 1.0
 * (big-endian footer, dynamic disk header, BAT, per-block sector bitmaps),
 * with qemu's block/vpc.c rules for the virtual size.
 */
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "core/format.h"

#define VHD_FOOTER_LEN 512
#define VHD_DYN_LEN 1024
#define VHD_SECTOR 512u
#define VHD_TYPE_FIXED 2
#define VHD_TYPE_DYNAMIC 3
#define VHD_TYPE_DIFF 4
#define VHD_BAT_UNUSED 0xffffffffu
/* qemu's limits: 2040 GiB, and the largest CHS geometry 65535/16/255. */
#define VHD_MAX_SECTORS 0xff000000ull
#define VHD_MAX_GEOMETRY (65535ull * 16 * 255)
#define VHD_BLOCK_MIN VHD_SECTOR
#define VHD_BLOCK_MAX (256u << 20)
/* Cached sector bitmaps; a bitmap is at most 64 KiB (256 MiB blocks). */
#define VHD_BITMAP_SLOTS 16

/* Footer field offsets. */
enum {
	VHD_F_COOKIE = 0,
	VHD_F_VERSION = 12,
	VHD_F_DATA_OFFSET = 16,
	VHD_F_CREATOR_APP = 28,
	VHD_F_CREATOR_VER = 32,
	VHD_F_CREATOR_OS = 36,
	VHD_F_CURRENT_SIZE = 48,
	VHD_F_CYLS = 56,
	VHD_F_HEADS = 58,
	VHD_F_SECS = 59,
	VHD_F_TYPE = 60,
	VHD_F_CHECKSUM = 64,
	VHD_F_UUID = 68,
};

/* Dynamic disk header field offsets. */
enum {
	VHD_D_COOKIE = 0,
	VHD_D_TABLE_OFFSET = 16,
	VHD_D_VERSION = 24,
	VHD_D_MAX_ENTRIES = 28,
	VHD_D_BLOCK_SIZE = 32,
	VHD_D_CHECKSUM = 36,
	VHD_D_PARENT_UUID = 40,
	VHD_D_PARENT_NAME = 64,
};

/* The parent's name: 256 UTF-16 units, as UTF-8. */
#define VHD_NAME_MAX (256 * 3)

struct vhd_bitmap {
	uint64_t block;         /* UINT64_MAX when empty */
	uint8_t *bits;
};

struct vhd {
	uint32_t type;
	char creator[5];
	uint32_t creator_ver;
	uint64_t current_size;
	unsigned cyls, heads, secs;
	int use_chs;            /* the size came from the geometry */
	uint8_t uuid[16];
	/* Differencing disks: sectors not in this file come from the parent. */
	struct vdisk *parent;
	uint8_t parent_uuid[16];
	char parent_name[VHD_NAME_MAX + 1];
	/* Dynamic disks. */
	uint32_t block_size, bitmap_size;
	unsigned block_shift;
	uint32_t max_entries;
	uint64_t nblocks;
	uint32_t *bat;          /* host-endian, nblocks entries */
	struct vhd_bitmap bm[VHD_BITMAP_SLOTS];
	uint8_t *bm_mem;
};

/* One's complement of the byte sum, the checksum field read as zero. */
static uint32_t vhd_checksum(const uint8_t *p, size_t len, size_t field)
{
	uint32_t sum = 0;

	for (size_t i = 0; i < len; i++)
		if (i < field || i >= field + 4)
			sum += p[i];
	return ~sum;
}

static int vhd_probe(const uint8_t *head, size_t head_len, const uint8_t *tail,
		     size_t tail_len, uint64_t file_size)
{
	(void)file_size;
	if (head_len >= 8 && !memcmp(head, "conectix", 8))
		return PROBE_CERTAIN;
	/*
	 * A fixed disk has its footer only in the last 512 bytes.  The
	 * checksum is left to open, so that a damaged footer is reported
	 * instead of the file being read as raw, footer and all.
	 */
	if (tail_len >= VHD_FOOTER_LEN) {
		const uint8_t *f = tail + tail_len - VHD_FOOTER_LEN;

		if (!memcmp(f + VHD_F_COOKIE, "conectix", 8) &&
		    get_be32(f + VHD_F_TYPE) == VHD_TYPE_FIXED)
			return PROBE_SURE;
	}
	return 0;
}

/*
 * The virtual size, by qemu's deterministic rule (block/vpc.c, vpc_open
 * and vpc_ignore_current_size): Virtual PC reads the disk as cylinders x
 * heads x sectors per track, while Hyper-V and others use the footer's
 * current_size.  So the size is current_size / 512 sectors when the
 * creator application is one of
 *   "win " (Hyper-V), "qem2" (qemu-img with force_size=on),
 *   "d2v " (Disk2VHD), "CTXS" (XenConverter), "tap\0" (XenServer),
 * or when the geometry is the largest one (65535/16/255, which caps disks
 * above about 127 GiB); otherwise (notably "vpc " and "qemu") it is
 * C*H*S sectors.  More than 0xff000000 sectors (2040 GiB) is refused.
 * qemu's force_size_calc runtime option has no equivalent here.
 */
static bool vhd_use_chs(const uint8_t *app, uint64_t chs)
{
	static const char *const by_size[] = { "win ", "qem2", "d2v ", "CTXS" };

	if (chs == VHD_MAX_GEOMETRY)
		return false;
	for (size_t i = 0; i < sizeof(by_size) / sizeof(by_size[0]); i++)
		if (!memcmp(app, by_size[i], 4))
			return false;
	return memcmp(app, "tap\0", 4) != 0;
}

static int vhd_footer_parse(const uint8_t *f, struct vhd *s, uint64_t *size,
			    struct err *e)
{
	uint32_t sum = get_be32(f + VHD_F_CHECKSUM);
	uint32_t want = vhd_checksum(f, VHD_FOOTER_LEN, VHD_F_CHECKSUM);
	uint32_t version = get_be32(f + VHD_F_VERSION);
	uint64_t chs, sectors;

	if (sum != want)
		return err_set(e, EI_EMISMATCH,
			       "vhd: footer checksum 0x%08x is wrong, the footer sums to 0x%08x",
			       sum, want);
	if (version >> 16 != 1)
		return err_set(e, EI_EUNSUP,
			       "vhd: footer file_format_version 0x%08x is not 1.x",
			       version);
	s->type = get_be32(f + VHD_F_TYPE);
	memcpy(s->creator, f + VHD_F_CREATOR_APP, 4);
	s->creator[4] = 0;
	s->creator_ver = get_be32(f + VHD_F_CREATOR_VER);
	s->current_size = get_be64(f + VHD_F_CURRENT_SIZE);
	s->cyls = get_be16(f + VHD_F_CYLS);
	s->heads = f[VHD_F_HEADS];
	s->secs = f[VHD_F_SECS];
	memcpy(s->uuid, f + VHD_F_UUID, 16);
	chs = (uint64_t)s->cyls * s->heads * s->secs;
	s->use_chs = vhd_use_chs(f + VHD_F_CREATOR_APP, chs);
	sectors = s->use_chs ? chs : s->current_size / VHD_SECTOR;
	if (sectors > VHD_MAX_SECTORS)
		return err_set(e, EI_EUNSUP,
			       "vhd: %s of %llu sectors exceeds the VHD maximum of %llu (2040 GiB)",
			       s->use_chs ? "geometry" : "current_size",
			       (unsigned long long)sectors, VHD_MAX_SECTORS);
	*size = sectors * VHD_SECTOR;
	return 0;
}

/*
 * Decode the 512-byte UTF-16BE parent name at @p into UTF-8 at @out
 * (VHD_NAME_MAX + 1 bytes); unpaired surrogates become U+FFFD.
 */
static void vhd_name_utf8(const uint8_t *p, char *out)
{
	size_t n = 0;

	for (size_t i = 0; i < 256; i++) {
		uint32_t c = get_be16(p + 2 * i);

		if (!c)
			break;
		if (c >= 0xd800 && c < 0xdc00 && i + 1 < 256 &&
		    get_be16(p + 2 * i + 2) >= 0xdc00 &&
		    get_be16(p + 2 * i + 2) < 0xe000) {
			c = 0x10000 + ((c - 0xd800) << 10) +
			    (get_be16(p + 2 * i + 2) - 0xdc00);
			i++;
		} else if (c >= 0xd800 && c < 0xe000) {
			c = 0xfffd;
		}
		n += utf8_put(out + n, c);
	}
	out[n] = 0;
}

/* The dynamic disk header at @hoff: block size, BAT, checks. */
static int vhd_dyn_parse(struct vdisk *vd, struct vhd *s, uint64_t hoff,
			 uint64_t size, uint64_t *bat_off, struct err *e)
{
	uint64_t fsize = vd->io->size, end = fsize - VHD_FOOTER_LEN;
	uint8_t d[VHD_DYN_LEN];
	uint32_t sum, want, bs, version;
	uint64_t toff, tlen;
	int r;

	if (hoff < VHD_FOOTER_LEN || !range_ok(hoff, VHD_DYN_LEN, end))
		return err_set(e, EI_ECORRUPT,
			       "vhd: footer data_offset %llu puts the dynamic header outside [512, %llu)",
			       (unsigned long long)hoff, (unsigned long long)end);
	r = io_read(vd->io, d, sizeof(d), hoff, "vhd: dynamic header", e);
	if (r < 0)
		return r;
	if (memcmp(d + VHD_D_COOKIE, "cxsparse", 8))
		return err_set(e, EI_ECORRUPT,
			       "vhd: dynamic header cookie is not \"cxsparse\"");
	sum = get_be32(d + VHD_D_CHECKSUM);
	want = vhd_checksum(d, VHD_DYN_LEN, VHD_D_CHECKSUM);
	if (sum != want)
		return err_set(e, EI_EMISMATCH,
			       "vhd: dynamic header checksum 0x%08x is wrong, the header sums to 0x%08x",
			       sum, want);
	version = get_be32(d + VHD_D_VERSION);
	if (version >> 16 != 1)
		return err_set(e, EI_EUNSUP,
			       "vhd: dynamic header version 0x%08x is not 1.x",
			       version);
	bs = get_be32(d + VHD_D_BLOCK_SIZE);
	if (!is_pow2(bs) || bs < VHD_BLOCK_MIN || bs > VHD_BLOCK_MAX)
		return err_set(e, EI_ECORRUPT,
			       "vhd: block_size %u is not a power of two between 512 and 256 MiB",
			       bs);
	s->block_size = bs;
	s->block_shift = (unsigned)__builtin_ctz(bs);
	/*
	 * One bit a sector, padded to whole sectors.  (qemu computes
	 * bs / 4096 rounded up to 512, the same for blocks of 4 KiB and
	 * more but 0 below; the spec's size is used here.)
	 */
	s->bitmap_size = ((bs / VHD_SECTOR + 7) / 8 + VHD_SECTOR - 1) &
			 ~(VHD_SECTOR - 1);
	s->max_entries = get_be32(d + VHD_D_MAX_ENTRIES);
	s->nblocks = (size + bs - 1) >> s->block_shift;
	if (s->max_entries < s->nblocks)
		return err_set(e, EI_ECORRUPT,
			       "vhd: max_table_entries %u is too small for %llu blocks of %u bytes",
			       s->max_entries, (unsigned long long)s->nblocks, bs);
	toff = get_be64(d + VHD_D_TABLE_OFFSET);
	tlen = (uint64_t)s->max_entries * 4;
	if (tlen > vd->opts.max_table)
		return err_set(e, EI_ELIMIT,
			       "vhd: BAT of %llu bytes (max_table_entries %u) exceeds the table limit of %llu",
			       (unsigned long long)tlen, s->max_entries,
			       (unsigned long long)vd->opts.max_table);
	if (toff < VHD_FOOTER_LEN || !range_ok(toff, tlen, end))
		return err_set(e, EI_ECORRUPT,
			       "vhd: BAT at %llu+%llu (table_offset, max_table_entries %u) is outside [512, %llu) before the footer",
			       (unsigned long long)toff, (unsigned long long)tlen,
			       s->max_entries, (unsigned long long)end);
	if (toff < hoff + VHD_DYN_LEN && hoff < toff + tlen)
		return err_set(e, EI_ECORRUPT,
			       "vhd: BAT at %llu+%llu overlaps the dynamic header at %llu",
			       (unsigned long long)toff, (unsigned long long)tlen,
			       (unsigned long long)hoff);
	memcpy(s->parent_uuid, d + VHD_D_PARENT_UUID, 16);
	vhd_name_utf8(d + VHD_D_PARENT_NAME, s->parent_name);
	*bat_off = toff;
	return 0;
}

/* Load the disk's part of the BAT and check every allocated block. */
static int vhd_bat_load(struct vdisk *vd, struct vhd *s, uint64_t toff,
			uint64_t size, struct err *e)
{
	uint64_t end = vd->io->size - VHD_FOOTER_LEN;
	uint8_t *raw;
	int r;

	s->bat = malloc((size_t)s->nblocks * 4 + 1);
	if (!s->bat)
		return err_set(e, -ENOMEM, "vhd: out of memory");
	raw = (uint8_t *)s->bat;
	r = io_read(vd->io, raw, (size_t)s->nblocks * 4, toff, "vhd: BAT", e);
	if (r < 0)
		return r;
	for (uint64_t i = 0; i < s->nblocks; i++) {
		uint32_t v = get_be32(raw + i * 4);
		uint64_t host = (uint64_t)v * VHD_SECTOR;
		uint64_t need = s->bitmap_size +
			min_u64(s->block_size, size - (i << s->block_shift));

		s->bat[i] = v;
		if (v == VHD_BAT_UNUSED)
			continue;
		if (host < VHD_FOOTER_LEN || !range_ok(host, need, end))
			return err_set(e, EI_ECORRUPT,
				       "vhd: BAT entry %llu: block at %llu+%llu is outside [512, %llu) before the footer",
				       (unsigned long long)i,
				       (unsigned long long)host,
				       (unsigned long long)need,
				       (unsigned long long)end);
	}
	s->bm_mem = malloc((size_t)s->bitmap_size * VHD_BITMAP_SLOTS);
	if (!s->bm_mem)
		return err_set(e, -ENOMEM, "vhd: out of memory");
	for (unsigned i = 0; i < VHD_BITMAP_SLOTS; i++) {
		s->bm[i].block = UINT64_MAX;
		s->bm[i].bits = s->bm_mem + (size_t)i * s->bitmap_size;
	}
	return 0;
}

static void vhd_free(struct vhd *s)
{
	if (!s)
		return;
	vdisk_close(s->parent);
	free(s->bat);
	free(s->bm_mem);
	free(s);
}

/*
 * A differencing disk's parent, by the name in its dynamic header (the
 * parent locators, which hold Windows paths, are not used), through the
 * reference policy; it must be a VHD whose unique id is parent_uuid.
 */
static int vhd_open_parent(struct vdisk *vd, struct vhd *s, struct err *e)
{
	const struct vhd *ps;
	int r;

	r = vdisk_open_ref(vd, s->parent_name, strlen(s->parent_name), "vhd",
			   "vhd: parent", &s->parent, NULL, e);
	if (r < 0)
		return r;
	ps = s->parent->priv;
	if (strcmp(s->parent->fmt->name, "vhd") || !ps ||
	    memcmp(ps->uuid, s->parent_uuid, 16))
		return err_set(e, EI_EMISMATCH,
			       "vhd: parent '%s' is not the disk of parent_uuid (its unique id differs)",
			       s->parent_name);
	return 0;
}

static int vhd_open(struct vdisk *vd, struct err *e)
{
	uint64_t fsize = vd->io->size, size = 0, bat_off = 0, hoff;
	uint8_t f[VHD_FOOTER_LEN], t[VHD_FOOTER_LEN];
	struct vhd *s;
	int at0 = 1, r;

	if (vd->io->flags & IO_STREAM)
		return err_set(e, EI_EUNSUP, "vhd: %s is not seekable",
			       vd->io->name);
	if (fsize < VHD_FOOTER_LEN)
		return err_set(e, fsize >= 8 ? EI_ETRUNC : EI_EFORMAT,
			       "vhd: file of %llu bytes is shorter than the 512-byte footer",
			       (unsigned long long)fsize);
	r = io_read(vd->io, t, sizeof(t), fsize - VHD_FOOTER_LEN, "vhd: footer", e);
	if (r < 0)
		return r;
	r = io_read(vd->io, f, sizeof(f), 0, "vhd: footer copy", e);
	if (r < 0)
		return r;
	if (memcmp(f, "conectix", 8)) {
		/* No copy at offset 0: a fixed disk, footer at the end only. */
		if (memcmp(t, "conectix", 8))
			return err_set(e, EI_EFORMAT,
				       "vhd: no \"conectix\" footer at offset 0 or in the last 512 bytes");
		memcpy(f, t, sizeof(f));
		at0 = 0;
	} else if (fsize < 2 * VHD_FOOTER_LEN || memcmp(f, t, sizeof(f))) {
		return err_set(e, EI_ECORRUPT,
			       "vhd: the footer at the end of the file differs from its copy at offset 0");
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, -ENOMEM, "vhd: out of memory");
	r = vhd_footer_parse(f, s, &size, e);
	if (r < 0)
		goto fail;
	hoff = get_be64(f + VHD_F_DATA_OFFSET);
	switch (s->type) {
	case VHD_TYPE_FIXED:
		if (at0) {
			r = err_set(e, EI_ECORRUPT,
				    "vhd: disk_type 2 (fixed) with a footer copy at offset 0");
			goto fail;
		}
		if (size > fsize - VHD_FOOTER_LEN) {
			r = err_set(e, EI_ETRUNC,
				    "vhd: fixed disk of %llu bytes does not fit the %llu bytes before the footer",
				    (unsigned long long)size,
				    (unsigned long long)(fsize - VHD_FOOTER_LEN));
			goto fail;
		}
		break;
	case VHD_TYPE_DYNAMIC:
	case VHD_TYPE_DIFF:
		if (!at0) {
			r = err_set(e, EI_ECORRUPT,
				    "vhd: disk_type %u without the footer copy at offset 0",
				    s->type);
			goto fail;
		}
		r = vhd_dyn_parse(vd, s, hoff, size, &bat_off, e);
		if (r < 0)
			goto fail;
		if (s->type == VHD_TYPE_DIFF &&
		    (r = vhd_open_parent(vd, s, e)) < 0)
			goto fail;
		r = vhd_bat_load(vd, s, bat_off, size, e);
		if (r < 0)
			goto fail;
		break;
	default:
		r = err_set(e, EI_EUNSUP,
			    "vhd: disk_type %u is not 2 (fixed), 3 (dynamic) or 4 (differencing)",
			    s->type);
		goto fail;
	}
	vd->priv = s;
	vd->size = size;
	return 0;
fail:
	vhd_free(s);
	return r;
}

/* The sector bitmap of allocated block @blk, read once into a small cache. */
static int vhd_bitmap(struct vdisk *vd, uint64_t blk, const uint8_t **out,
		      struct err *e)
{
	struct vhd *s = vd->priv;
	struct vhd_bitmap *b = &s->bm[blk % VHD_BITMAP_SLOTS];
	int r;

	if (b->block != blk) {
		b->block = UINT64_MAX;
		r = io_read(vd->io, b->bits, s->bitmap_size,
			    (uint64_t)s->bat[blk] * VHD_SECTOR,
			    "vhd: sector bitmap", e);
		if (r < 0)
			return r;
		b->block = blk;
	}
	*out = b->bits;
	return 0;
}

/*
 * The state of the run starting at @off inside its block: 1 for data, 0
 * for unallocated; *@n is its length, at most to the block's end.  The
 * bitmap has one bit a sector, the most significant bit of byte 0 first.
 */
static int vhd_run(struct vdisk *vd, uint64_t off, uint64_t *n,
		   struct err *e)
{
	struct vhd *s = vd->priv;
	uint64_t blk = off >> s->block_shift;
	uint32_t in = (uint32_t)(off & (s->block_size - 1));
	uint32_t sec = in / VHD_SECTOR, nsec = s->block_size / VHD_SECTOR;
	const uint8_t *bm;
	int bit, r;

	if (s->bat[blk] == VHD_BAT_UNUSED) {
		*n = s->block_size - in;
		return 0;
	}
	r = vhd_bitmap(vd, blk, &bm, e);
	if (r < 0)
		return r;
	bit = bm[sec / 8] >> (7 - sec % 8) & 1;
	sec++;
	while (sec < nsec) {
		uint8_t byte = bm[sec / 8];

		if (!(sec % 8) && byte == (bit ? 0xff : 0x00)) {
			sec += 8;
			continue;
		}
		if ((byte >> (7 - sec % 8) & 1) != bit)
			break;
		sec++;
	}
	*n = (uint64_t)sec * VHD_SECTOR - in;
	return bit;
}

/* One piece: a run of a block's bitmap; unallocated ones are the parent's. */
static int vhd_piece(struct vdisk *vd, uint64_t off, uint64_t len,
		     struct map_run *run, struct err *e)
{
	struct vhd *s = vd->priv;
	uint64_t n;
	int r = vhd_run(vd, off, &n, e);

	if (r < 0)
		return r;
	n = min_u64(n, len);
	if (!r) {
		map_backing(s->parent, off, n, run);
		return 0;
	}
	run->src = MAP_IO;
	run->io = vd->io;
	run->host = (uint64_t)s->bat[off >> s->block_shift] * VHD_SECTOR +
		    s->bitmap_size + (off & (s->block_size - 1));
	run->len = n;
	run->what = "vhd: data";
	return 0;
}

static int vhd_map(struct vdisk *vd, uint64_t off, uint64_t len,
		   struct map_run *run, struct err *e)
{
	struct vhd *s = vd->priv;

	if (s->type != VHD_TYPE_FIXED)
		return map_pieces(vd, off, len, run, vhd_piece, e);
	/* Fixed: the disk, then the footer; holes of the file are unallocated. */
	run->src = MAP_IO;
	run->io = vd->io;
	run->host = off;
	run->len = len;
	run->what = "vhd: data";
	run->holes = EXT_HOLE;
	return 0;
}

static void vhd_close(struct vdisk *vd)
{
	vhd_free(vd->priv);
	vd->priv = NULL;
}

static int vhd_info(struct vdisk *vd, struct info *out, struct err *e)
{
	struct vhd *s = vd->priv;
	char app[5];

	(void)e;
	for (int i = 0; i < 4; i++)
		app[i] = s->creator[i] >= 0x20 && s->creator[i] < 0x7f ?
			 s->creator[i] : ' ';
	app[4] = 0;
	info_str(out, "subformat", "%s",
		 s->type == VHD_TYPE_FIXED ? "fixed" :
		 s->type == VHD_TYPE_DIFF ? "differencing" : "dynamic");
	info_str(out, "creator", "%s", app);
	info_str(out, "creator-version", "%u.%u", s->creator_ver >> 16,
		 s->creator_ver & 0xffff);
	info_str(out, "size-from", "%s", s->use_chs ? "chs" : "current_size");
	info_u64(out, "current-size", s->current_size);
	info_str(out, "geometry", "%u/%u/%u", s->cyls, s->heads, s->secs);
	if (s->type != VHD_TYPE_FIXED) {
		out->cluster_size = s->block_size;
		info_u64(out, "block-size", s->block_size);
	}
	if (s->parent)
		info_str(out, "parent", "%s", s->parent_name);
	return 0;
}

const struct img_format fmt_vhd = {
	.name = "vhd",
	.alias = "vpc",
	.desc = "VHD image (Virtual PC, Hyper-V; qemu's vpc)",
	.probe = vhd_probe,
	.open = vhd_open,
	.map = vhd_map,
	.close = vhd_close,
	.info = vhd_info,
};
