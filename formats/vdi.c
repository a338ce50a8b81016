// SPDX-License-Identifier: MIT
/*
 * VirtualBox VDI images, read side: static and dynamic images of header
 * version 1.1 with 1 MiB blocks, the subset qemu's block/vdi.c reads.
 * Spec: VirtualBox's VDICore.h (VDIHEADER1) as summarised in qemu's vdi.c;
 * all fields little-endian.
 */
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "core/format.h"

#define VDI_SIGNATURE 0xbeda107fu
#define VDI_VERSION_1_1 0x00010001u
#define VDI_TYPE_DYNAMIC 1
#define VDI_TYPE_STATIC 2
#define VDI_HEADER_LEN 512
#define VDI_SECTOR 512u
#define VDI_BLOCK_SIZE (1u << 20)       /* the only size qemu supports */
#define VDI_UNALLOCATED 0xffffffffu     /* never written: reads as zero */
#define VDI_DISCARDED 0xfffffffeu       /* discarded: reads as zero */
/*
 * qemu's VDI_BLOCKS_IN_IMAGE_MAX: the block map (4 bytes an entry, rounded
 * up to a sector) must fit in INT_MAX bytes.  The largest disk is then
 * 512 TiB - 128 MiB.
 */
#define VDI_BLOCKS_MAX ((0x80000000u - VDI_SECTOR) / 4)
#define VDI_DISK_MAX ((uint64_t)VDI_BLOCKS_MAX * VDI_BLOCK_SIZE)

/* Header field offsets (the 0x40-byte text comes first). */
enum {
	VDI_OFF_SIGNATURE = 0x40,
	VDI_OFF_VERSION = 0x44,
	VDI_OFF_HEADER_SIZE = 0x48,
	VDI_OFF_IMAGE_TYPE = 0x4c,
	VDI_OFF_OFFSET_BMAP = 0x154,
	VDI_OFF_OFFSET_DATA = 0x158,
	VDI_OFF_SECTOR_SIZE = 0x168,
	VDI_OFF_DISK_SIZE = 0x170,
	VDI_OFF_BLOCK_SIZE = 0x178,
	VDI_OFF_BLOCK_EXTRA = 0x17c,
	VDI_OFF_BLOCKS_IN_IMAGE = 0x180,
	VDI_OFF_BLOCKS_ALLOCATED = 0x184,
	VDI_OFF_UUID_LINK = 0x1a8,
	VDI_OFF_UUID_PARENT = 0x1b8,
};

struct vdi {
	uint32_t *bmap;         /* host-endian, blocks_in_image entries */
	uint32_t blocks;
	uint32_t allocated;     /* blocks_allocated from the header */
	uint32_t type;
	uint64_t offset_data;
};

static int vdi_probe(const uint8_t *head, size_t head_len, const uint8_t *tail,
		     size_t tail_len, uint64_t file_size)
{
	(void)tail;
	(void)tail_len;
	(void)file_size;
	if (head_len < VDI_OFF_SIGNATURE + 4)
		return 0;
	return get_le32(head + VDI_OFF_SIGNATURE) == VDI_SIGNATURE ?
	       PROBE_CERTAIN : 0;
}

static bool vdi_uuid_null(const uint8_t *p)
{
	return buf_is_zero(p, 16);
}

/* Validate the header in @h into @s and the disk size into *@size. */
static int vdi_header_parse(const uint8_t *h, uint64_t file_size,
			    const struct open_opts *o, struct vdi *s,
			    uint64_t *size, uint64_t *bmap_off, struct err *e)
{
	uint32_t sig = get_le32(h + VDI_OFF_SIGNATURE);
	uint32_t version = get_le32(h + VDI_OFF_VERSION);
	uint32_t type = get_le32(h + VDI_OFF_IMAGE_TYPE);
	uint32_t off_bmap = get_le32(h + VDI_OFF_OFFSET_BMAP);
	uint32_t off_data = get_le32(h + VDI_OFF_OFFSET_DATA);
	uint32_t sector = get_le32(h + VDI_OFF_SECTOR_SIZE);
	uint64_t disk = get_le64(h + VDI_OFF_DISK_SIZE);
	uint32_t bsize = get_le32(h + VDI_OFF_BLOCK_SIZE);
	uint32_t extra = get_le32(h + VDI_OFF_BLOCK_EXTRA);
	uint32_t blocks = get_le32(h + VDI_OFF_BLOCKS_IN_IMAGE);
	uint32_t alloc = get_le32(h + VDI_OFF_BLOCKS_ALLOCATED);
	uint64_t bmap_len, bmap_end;

	if (sig != VDI_SIGNATURE)
		return err_set(e, EI_EFORMAT,
			       "vdi: signature 0x%08x is not 0x%08x", sig,
			       VDI_SIGNATURE);
	if (version != VDI_VERSION_1_1)
		return err_set(e, EI_EUNSUP, "vdi: version %u.%u is not 1.1",
			       version >> 16, version & 0xffff);
	if (type != VDI_TYPE_DYNAMIC && type != VDI_TYPE_STATIC)
		return err_set(e, EI_EUNSUP,
			       "vdi: image_type %u is not 1 (dynamic) or 2 (static)",
			       type);
	if (!vdi_uuid_null(h + VDI_OFF_UUID_LINK) ||
	    !vdi_uuid_null(h + VDI_OFF_UUID_PARENT))
		return err_set(e, EI_EUNSUP,
			       "vdi: uuid_link/uuid_parent set: differencing images are not supported");
	if (sector != VDI_SECTOR)
		return err_set(e, EI_EUNSUP, "vdi: sector_size %u is not 512",
			       sector);
	if (bsize != VDI_BLOCK_SIZE)
		return err_set(e, EI_EUNSUP, "vdi: block_size %u is not %u",
			       bsize, VDI_BLOCK_SIZE);
	if (extra)
		return err_set(e, EI_EUNSUP, "vdi: block_extra %u is not 0",
			       extra);
	if (disk > VDI_DISK_MAX)
		return err_set(e, EI_EUNSUP,
			       "vdi: disk_size %llu exceeds the largest VDI disk of %llu bytes",
			       (unsigned long long)disk,
			       (unsigned long long)VDI_DISK_MAX);
	if (blocks > VDI_BLOCKS_MAX)
		return err_set(e, EI_EUNSUP,
			       "vdi: blocks_in_image %u exceeds the maximum of %u",
			       blocks, VDI_BLOCKS_MAX);
	/* VBoxManage convertfromraw makes odd sizes; qemu rounds them up. */
	disk = (disk + VDI_SECTOR - 1) & ~(uint64_t)(VDI_SECTOR - 1);
	if (disk > (uint64_t)blocks * VDI_BLOCK_SIZE)
		return err_set(e, EI_ECORRUPT,
			       "vdi: disk_size %llu needs more than blocks_in_image %u blocks of 1 MiB",
			       (unsigned long long)disk, blocks);
	if (disk > o->max_size)
		return err_set(e, EI_ELIMIT,
			       "vdi: disk_size %llu exceeds the limit of %llu",
			       (unsigned long long)disk,
			       (unsigned long long)o->max_size);
	if (alloc > blocks)
		return err_set(e, EI_ECORRUPT,
			       "vdi: blocks_allocated %u exceeds blocks_in_image %u",
			       alloc, blocks);
	if (off_bmap % VDI_SECTOR || off_bmap < VDI_HEADER_LEN)
		return err_set(e, EI_ECORRUPT,
			       "vdi: offset_bmap 0x%x is not a multiple of 512 at or after 0x200",
			       off_bmap);
	if (off_data % VDI_SECTOR)
		return err_set(e, EI_ECORRUPT,
			       "vdi: offset_data 0x%x is not a multiple of 512",
			       off_data);
	bmap_len = (uint64_t)blocks * 4;
	if (bmap_len > o->max_table)
		return err_set(e, EI_ELIMIT,
			       "vdi: block map of %llu bytes (blocks_in_image %u) exceeds the table limit of %llu",
			       (unsigned long long)bmap_len, blocks,
			       (unsigned long long)o->max_table);
	bmap_end = off_bmap + bmap_len;
	if (bmap_end > file_size)
		return err_set(e, EI_ETRUNC,
			       "vdi: block map at %u+%llu is past the end of the file (%llu bytes)",
			       off_bmap, (unsigned long long)bmap_len,
			       (unsigned long long)file_size);
	if (off_data < bmap_end)
		return err_set(e, EI_ECORRUPT,
			       "vdi: offset_data 0x%x overlaps the block map ending at 0x%llx",
			       off_data, (unsigned long long)bmap_end);
	s->blocks = blocks;
	s->allocated = alloc;
	s->type = type;
	s->offset_data = off_data;
	*size = disk;
	*bmap_off = off_bmap;
	return 0;
}

/*
 * Check every entry of the disk's blocks: below blocks_allocated, inside
 * the file, and no physical block used twice.
 */
static int vdi_bmap_check(struct vdi *s, uint64_t size, uint64_t file_size,
			  struct err *e)
{
	uint64_t nblocks = (size + VDI_BLOCK_SIZE - 1) / VDI_BLOCK_SIZE;
	uint8_t *seen;
	int r = 0;

	seen = calloc((s->allocated + 7) / 8 + 1, 1);
	if (!seen)
		return err_set(e, -ENOMEM, "vdi: out of memory");
	for (uint64_t i = 0; i < s->blocks; i++) {
		uint32_t v = s->bmap[i];
		uint64_t host, need;

		if (v >= VDI_DISCARDED)
			continue;
		if (i >= nblocks) {
			/* Past the disk end: never read, only counted. */
			continue;
		}
		if (v >= s->allocated) {
			r = err_set(e, EI_ECORRUPT,
				    "vdi: block map entry %llu is %u, not below blocks_allocated %u",
				    (unsigned long long)i, v, s->allocated);
			break;
		}
		if (seen[v / 8] & (1u << (v % 8))) {
			r = err_set(e, EI_ECORRUPT,
				    "vdi: block map entry %llu uses physical block %u a second time",
				    (unsigned long long)i, v);
			break;
		}
		seen[v / 8] |= (uint8_t)(1u << (v % 8));
		host = s->offset_data + (uint64_t)v * VDI_BLOCK_SIZE;
		need = min_u64(VDI_BLOCK_SIZE, size - i * VDI_BLOCK_SIZE);
		if (!range_ok(host, need, file_size)) {
			r = err_set(e, EI_ETRUNC,
				    "vdi: block map entry %llu: data at %llu+%llu is past the end of the file (%llu bytes)",
				    (unsigned long long)i,
				    (unsigned long long)host,
				    (unsigned long long)need,
				    (unsigned long long)file_size);
			break;
		}
	}
	free(seen);
	return r;
}

static int vdi_open(struct vdisk *vd, struct err *e)
{
	uint8_t h[VDI_HEADER_LEN];
	struct vdi tmp = { 0 }, *s;
	uint64_t size = 0, bmap_off = 0;
	uint8_t *raw;
	int r;

	if (vd->io->flags & IO_STREAM)
		return err_set(e, EI_EUNSUP, "vdi: %s is not seekable",
			       vd->io->name);
	if (vd->io->size < VDI_HEADER_LEN)
		return err_set(e, vd->io->size > VDI_OFF_SIGNATURE + 3 ?
				  EI_ETRUNC : EI_EFORMAT,
			       "vdi: file of %llu bytes is shorter than the 512-byte header",
			       (unsigned long long)vd->io->size);
	r = io_read(vd->io, h, sizeof(h), 0, "vdi: header", e);
	if (r < 0)
		return r;
	r = vdi_header_parse(h, vd->io->size, &vd->opts, &tmp, &size,
			     &bmap_off, e);
	if (r < 0)
		return r;
	s = calloc(1, sizeof(*s));
	tmp.bmap = malloc((size_t)tmp.blocks * 4 + 1);
	if (!s || !tmp.bmap) {
		free(s);
		free(tmp.bmap);
		return err_set(e, -ENOMEM, "vdi: out of memory");
	}
	raw = (uint8_t *)tmp.bmap;
	r = io_read(vd->io, raw, (size_t)tmp.blocks * 4, bmap_off,
		    "vdi: block map", e);
	if (r < 0)
		goto fail;
	for (uint32_t i = 0; i < tmp.blocks; i++)
		tmp.bmap[i] = get_le32(raw + (size_t)i * 4);
	r = vdi_bmap_check(&tmp, size, vd->io->size, e);
	if (r < 0)
		goto fail;
	*s = tmp;
	vd->priv = s;
	vd->size = size;
	return 0;
fail:
	free(tmp.bmap);
	free(s);
	return r;
}

/* One block's piece: unallocated or discarded blocks read as zeros. */
static int vdi_piece(struct vdisk *vd, uint64_t off, uint64_t len,
		     struct map_run *run, struct err *e)
{
	struct vdi *s = vd->priv;
	uint32_t v = s->bmap[off / VDI_BLOCK_SIZE];
	uint64_t in = off % VDI_BLOCK_SIZE;

	(void)e;
	run->len = min_u64(len, VDI_BLOCK_SIZE - in);
	if (v == VDI_UNALLOCATED) {
		run->type = EXT_HOLE;
	} else if (v == VDI_DISCARDED) {
		run->type = EXT_ZERO;
	} else {
		run->src = MAP_IO;
		run->io = vd->io;
		run->host = s->offset_data + (uint64_t)v * VDI_BLOCK_SIZE + in;
		run->what = "vdi: data";
		/* A static image's blocks may be holes in the file, as in qemu. */
		run->holes = s->type == VDI_TYPE_STATIC ? EXT_HOLE : EXT_DATA;
	}
	return 0;
}

static int vdi_map(struct vdisk *vd, uint64_t off, uint64_t len,
		   struct map_run *run, struct err *e)
{
	return map_pieces(vd, off, len, run, vdi_piece, e);
}

static void vdi_close(struct vdisk *vd)
{
	struct vdi *s = vd->priv;

	if (s)
		free(s->bmap);
	free(s);
	vd->priv = NULL;
}

static int vdi_info(struct vdisk *vd, struct info *out, struct err *e)
{
	struct vdi *s = vd->priv;

	(void)e;
	out->cluster_size = VDI_BLOCK_SIZE;
	info_str(out, "image-type", "%s",
		 s->type == VDI_TYPE_STATIC ? "static" : "dynamic");
	info_u64(out, "block-size", VDI_BLOCK_SIZE);
	info_u64(out, "blocks-in-image", s->blocks);
	info_u64(out, "blocks-allocated", s->allocated);
	return 0;
}

const struct img_format fmt_vdi = {
	.name = "vdi",
	.desc = "VirtualBox VDI image",
	.probe = vdi_probe,
	.open = vdi_open,
	.map = vdi_map,
	.close = vdi_close,
	.info = vdi_info,
};
