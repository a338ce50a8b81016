// SPDX-License-Identifier: MIT
/*
 * ext2/ext3/ext4 as a file-view source, through libext2fs (e2fsprogs):
 * the superblock, group descriptors, inodes, directories, extent trees and
 * extended attributes are libext2fs's; file data is read here, through the
 * block map, straight from the disk.
 *
 * libext2fs is written for filesystems e2fsck may repair, not for hostile
 * input, so edgeimg bounds it: the superblock is checked here field by field
 * before ext2fs_open2() sees it; every read libext2fs makes goes through an
 * io_manager over the vdisk that refuses what is past the disk and every
 * write; the group descriptors go through ext2fs_check_desc(); every block
 * of a file, directory or symlink is mapped here first (extent order, no
 * overlap, no block outside the filesystem), and the blocks mapped over the
 * whole walk are bounded by the filesystem's size (ext4 shares no block
 * between files), so a tree of extents that points many times at one node
 * costs no more than the filesystem's size; directory loops, hard-link
 * counts, names, depth, path length, xattr counts and sizes are checked
 * as they are met.
 */
#include <errno.h>
#include <inttypes.h>
#include <search.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>

#include "core/bytes.h"
#include "core/vdisk.h"
#include "files/ftree.h"

/* The most entries one walk visits. */
#define EXT_ENTRIES_MAX (1u << 24)
/* The largest group descriptor table read into memory. */
#define EXT_DESC_MAX (64u << 20)
/* The deepest extent tree (the kernel's is 5 levels). */
#define EXT_EXTENT_DEPTH_MAX 5

struct ext_src;

/* Where one file's logical blocks are: a cursor over its block map. */
struct ext_map {
	struct ext_src *x;
	uint32_t ino;
	const char *path;
	int extents;                    /* extent tree, else block map */
	ext2_extent_handle_t h;         /* extents */
	int started, done;
	struct ext2fs_extent cur;       /* the current leaf extent */
	uint64_t end;                   /* where the current leaf ends */
	uint64_t prev_end;              /* where the one before ended */
	uint32_t iblock[EXT2_N_BLOCKS]; /* block map */
	uint32_t *ind[3];               /* an indirect block per level */
	uint64_t ind_blk[3];
	uint64_t charged;               /* logical blocks charged up to */
};

/* A run from a logical block: @len blocks at @pblk, or a hole (pblk 0). */
struct ext_run {
	uint64_t pblk, len;
};

struct ext_file {
	struct ext_map m;
	uint64_t size;
	const uint8_t *inl;             /* inline data, or NULL */
};

struct ext_link {
	uint32_t ino;
	uint32_t seen;                  /* entries met */
	char *path;
};

struct ext_dent {
	uint32_t ino;
	uint8_t len;
	char name[];
};

struct ext_src {
	struct ft_source s;
	struct vdisk *vd;
	ext2_filsys fs;
	const char *kind;               /* "ext2", "ext3", "ext4" */
	char what[512];
	struct err ioerr;               /* the io_manager's first error */
	unsigned bs;
	uint64_t blocks;
	uint32_t first_block, inodes;
	uint64_t budget;                /* blocks left to map in this walk */
	uint64_t entries;
	uint8_t *seen;                  /* a bit per inode: visited */
	void *links;                    /* tsearch tree of struct ext_link */
	char *path;                     /* FT_PATH_MAX + 1 */
	struct ft_xattr *xattrs;
	unsigned n_xattrs;
	int walked;
	/* a directory being listed */
	struct ext_dent **dl;
	size_t dl_n, dl_cap;
	int dl_err;
	struct err *dl_e;
	uint32_t dl_ino;
};

static const char *ppath(const char *p)
{
	return *p ? p : "/";
}

/* ------------------------------------------------------------------ */
/* An io_manager over the vdisk: read-only, bounded to the disk.       */

static struct struct_io_manager ext_io_manager;

static errcode_t ext_io_open(const char *name, int flags, io_channel *out)
{
	struct ext_src *x = NULL;
	io_channel ch;
	errcode_t r;

	if (flags & IO_FLAG_RW)
		return EXT2_ET_RO_FILSYS;
	if (!name || sscanf(name, "edgeimg:%p", (void **)&x) != 1 || !x)
		return EXT2_ET_BAD_DEVICE_NAME;
	r = ext2fs_get_memzero(sizeof(*ch), &ch);
	if (r)
		return r;
	r = ext2fs_get_mem(strlen(name) + 1, &ch->name);
	if (r) {
		ext2fs_free_mem(&ch);
		return r;
	}
	strcpy(ch->name, name);
	ch->magic = EXT2_ET_MAGIC_IO_CHANNEL;
	ch->manager = &ext_io_manager;
	ch->block_size = 1024;
	ch->refcount = 1;
	ch->private_data = x;
	*out = ch;
	return 0;
}

static errcode_t ext_io_close(io_channel ch)
{
	if (--ch->refcount > 0)
		return 0;
	ext2fs_free_mem(&ch->name);
	ext2fs_free_mem(&ch);
	return 0;
}

static errcode_t ext_io_set_blksize(io_channel ch, int blksize)
{
	if (blksize < 1024 || blksize > EXT2_MAX_BLOCK_SIZE)
		return EXT2_ET_INVALID_ARGUMENT;
	ch->block_size = blksize;
	return 0;
}

static errcode_t ext_io_read64(io_channel ch, unsigned long long block, int count, void *data)
{
	struct ext_src *x = ch->private_data;
	uint64_t len = count < 0 ? (uint64_t)-(int64_t)count : (uint64_t)count * (unsigned)ch->block_size;
	uint64_t off;

	if (block > UINT64_MAX / (unsigned)ch->block_size ||
	    (off = block * (unsigned)ch->block_size) > x->vd->size ||
	    len > x->vd->size - off || len > (64u << 20)) {
		if (!x->ioerr.code)
			err_set(&x->ioerr, EI_ECORRUPT, "%s: %s: block %llu (%d x %d bytes) is past the disk's %" PRIu64 " bytes",
				x->what, x->kind, block, count, ch->block_size, x->vd->size);
		return EXT2_ET_SHORT_READ;
	}
	if (vdisk_read(x->vd, data, (size_t)len, off, x->ioerr.code ? NULL : &x->ioerr) < 0)
		return EXT2_ET_SHORT_READ;
	return 0;
}

static errcode_t ext_io_read(io_channel ch, unsigned long block, int count, void *data)
{
	return ext_io_read64(ch, block, count, data);
}

static errcode_t ext_io_write(io_channel ch, unsigned long block, int count, const void *data)
{
	return EXT2_ET_RO_FILSYS;
}

static errcode_t ext_io_write64(io_channel ch, unsigned long long block, int count,
				const void *data)
{
	return EXT2_ET_RO_FILSYS;
}

static errcode_t ext_io_write_byte(io_channel ch, unsigned long off, int count, const void *data)
{
	return EXT2_ET_RO_FILSYS;
}

static errcode_t ext_io_flush(io_channel ch)
{
	return 0;
}

static errcode_t ext_io_set_option(io_channel ch, const char *opt, const char *arg)
{
	return EXT2_ET_INVALID_ARGUMENT;
}

static struct struct_io_manager ext_io_manager = {
	.magic = EXT2_ET_MAGIC_IO_MANAGER,
	.name = "edgeimg vdisk",
	.open = ext_io_open,
	.close = ext_io_close,
	.set_blksize = ext_io_set_blksize,
	.read_blk = ext_io_read,
	.write_blk = ext_io_write,
	.flush = ext_io_flush,
	.write_byte = ext_io_write_byte,
	.set_option = ext_io_set_option,
	.read_blk64 = ext_io_read64,
	.write_blk64 = ext_io_write64,
};

/* A libext2fs error as a message: the io_manager's own when it has one. */
static int ext_lib_err(struct ext_src *x, struct err *e, errcode_t code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int ext_lib_err(struct ext_src *x, struct err *e, errcode_t code, const char *fmt, ...)
{
	char ctx[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	if (x->ioerr.code) {
		int c = x->ioerr.code;

		if (e) {
			*e = x->ioerr;
			err_prefix(e, "%s", ctx);
		}
		return c;
	}
	if (code == EXT2_ET_NO_MEMORY || code == ENOMEM)
		return err_set(e, -ENOMEM, "%s: %s: %s: out of memory", x->what, x->kind, ctx);
	return err_set(e, EI_ECORRUPT, "%s: %s: %s: %s", x->what, x->kind, ctx, error_message(code));
}

/* ------------------------------------------------------------------ */
/* The superblock, checked before libext2fs reads anything else.        */

struct ext_feature {
	uint32_t bit;
	const char *name;
};

static const struct ext_feature ext_incompat[] = {
	{ EXT2_FEATURE_INCOMPAT_COMPRESSION, "compression" },
	{ EXT2_FEATURE_INCOMPAT_FILETYPE, "filetype" },
	{ EXT3_FEATURE_INCOMPAT_RECOVER, "needs_recovery" },
	{ EXT3_FEATURE_INCOMPAT_JOURNAL_DEV, "journal_dev" },
	{ EXT2_FEATURE_INCOMPAT_META_BG, "meta_bg" },
	{ EXT3_FEATURE_INCOMPAT_EXTENTS, "extent" },
	{ EXT4_FEATURE_INCOMPAT_64BIT, "64bit" },
	{ EXT4_FEATURE_INCOMPAT_MMP, "mmp" },
	{ EXT4_FEATURE_INCOMPAT_FLEX_BG, "flex_bg" },
	{ EXT4_FEATURE_INCOMPAT_EA_INODE, "ea_inode" },
	{ EXT4_FEATURE_INCOMPAT_DIRDATA, "dirdata" },
	{ EXT4_FEATURE_INCOMPAT_CSUM_SEED, "metadata_csum_seed" },
	{ EXT4_FEATURE_INCOMPAT_LARGEDIR, "large_dir" },
	{ EXT4_FEATURE_INCOMPAT_INLINE_DATA, "inline_data" },
	{ EXT4_FEATURE_INCOMPAT_ENCRYPT, "encrypt" },
	{ EXT4_FEATURE_INCOMPAT_CASEFOLD, "casefold" },
};

/* What the file view reads. */
#define EXT_INCOMPAT_OK (EXT2_FEATURE_INCOMPAT_FILETYPE | EXT2_FEATURE_INCOMPAT_META_BG | \
			 EXT3_FEATURE_INCOMPAT_EXTENTS | EXT4_FEATURE_INCOMPAT_64BIT | \
			 EXT4_FEATURE_INCOMPAT_MMP | EXT4_FEATURE_INCOMPAT_FLEX_BG | \
			 EXT4_FEATURE_INCOMPAT_CSUM_SEED | EXT4_FEATURE_INCOMPAT_LARGEDIR | \
			 EXT4_FEATURE_INCOMPAT_INLINE_DATA | EXT4_FEATURE_INCOMPAT_CASEFOLD)

/* Names of the bits of @bits in @t (unknown ones in hex) into @buf. */
static const char *ext_feature_names(uint32_t bits, const struct ext_feature *t, size_t n,
				     char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = 0;
	for (size_t i = 0; i < n; i++) {
		if (!(bits & t[i].bit))
			continue;
		used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "", t[i].name);
		bits &= ~t[i].bit;
		if (used >= len)
			return buf;
	}
	if (bits)
		snprintf(buf + used, len - used, "%s0x%x", used ? ", " : "", bits);
	return buf;
}

static int ext_super_check(struct ext_src *x, const uint8_t *sb, struct err *e)
{
	uint32_t inodes = get_le32(sb + 0), first = get_le32(sb + 20);
	uint32_t log_bs = get_le32(sb + 24), log_cs = get_le32(sb + 28);
	uint32_t bpg = get_le32(sb + 32), cpg = get_le32(sb + 36), ipg = get_le32(sb + 40);
	uint32_t rev = get_le32(sb + 76), first_ino = get_le32(sb + 84);
	uint32_t compat = get_le32(sb + 92), incompat = get_le32(sb + 96);
	uint32_t ro = get_le32(sb + 100);
	unsigned isz = rev ? get_le16(sb + 88) : 128, dsz = 32;
	uint64_t blocks = get_le32(sb + 4), groups, bs;
	char names[256];
	const char *w = x->what, *k;

	(void)compat;
	k = x->kind = (incompat & (EXT3_FEATURE_INCOMPAT_EXTENTS | EXT4_FEATURE_INCOMPAT_64BIT |
				   EXT4_FEATURE_INCOMPAT_FLEX_BG | EXT4_FEATURE_INCOMPAT_INLINE_DATA)) ||
		       (ro & (EXT4_FEATURE_RO_COMPAT_HUGE_FILE | EXT4_FEATURE_RO_COMPAT_GDT_CSUM |
			      EXT4_FEATURE_RO_COMPAT_DIR_NLINK | EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE |
			      EXT4_FEATURE_RO_COMPAT_METADATA_CSUM)) ? "ext4"
		      : compat & EXT3_FEATURE_COMPAT_HAS_JOURNAL ? "ext3" : "ext2";
	if (incompat & EXT3_FEATURE_INCOMPAT_RECOVER)
		return err_set(e, EI_EUNSUP, "%s: %s: the journal needs recovery (needs_recovery is set): "
			       "mount the filesystem once or run e2fsck on a copy; edgeimg never writes its input", w, k);
	if (incompat & EXT3_FEATURE_INCOMPAT_JOURNAL_DEV)
		return err_set(e, EI_EUNSUP, "%s: %s: an external journal device (journal_dev), not a filesystem", w, k);
	if (incompat & ~(uint32_t)EXT_INCOMPAT_OK)
		return err_set(e, EI_EUNSUP, "%s: %s: incompatible features not supported: %s", w, k,
			       ext_feature_names(incompat & ~(uint32_t)EXT_INCOMPAT_OK, ext_incompat,
						 sizeof(ext_incompat) / sizeof(ext_incompat[0]), names, sizeof(names)));
	if (ro & ~(uint32_t)EXT2_LIB_FEATURE_RO_COMPAT_SUPP)
		return err_set(e, EI_EUNSUP, "%s: %s: read-only-compatible features not supported: 0x%x", w, k,
			       ro & ~(uint32_t)EXT2_LIB_FEATURE_RO_COMPAT_SUPP);
	if (log_bs > EXT2_MAX_BLOCK_LOG_SIZE - EXT2_MIN_BLOCK_LOG_SIZE)
		return err_set(e, EI_ECORRUPT, "%s: %s: s_log_block_size %u is not in 0..%d", w, k,
			       log_bs, EXT2_MAX_BLOCK_LOG_SIZE - EXT2_MIN_BLOCK_LOG_SIZE);
	bs = 1024u << log_bs;
	if (ro & EXT4_FEATURE_RO_COMPAT_BIGALLOC ? log_cs < log_bs || log_cs > log_bs + 16 : log_cs != log_bs)
		return err_set(e, EI_ECORRUPT, "%s: %s: s_log_cluster_size %u does not fit s_log_block_size %u",
			       w, k, log_cs, log_bs);
	if (incompat & EXT4_FEATURE_INCOMPAT_64BIT) {
		blocks |= (uint64_t)get_le32(sb + 0x150) << 32;
		dsz = get_le16(sb + 0xfe);
		if (dsz < EXT2_MIN_DESC_SIZE_64BIT || dsz > bs || (dsz & (dsz - 1)))
			return err_set(e, EI_ECORRUPT, "%s: %s: s_desc_size %u is not a power of two in %d..%" PRIu64,
				       w, k, dsz, EXT2_MIN_DESC_SIZE_64BIT, bs);
	}
	if (blocks == 0 || blocks > x->vd->size / bs)
		return err_set(e, EI_ECORRUPT, "%s: %s: s_blocks_count %" PRIu64 " (of %" PRIu64 " bytes) "
			       "is not in 1..%" PRIu64 " (the disk's %" PRIu64 " bytes)",
			       w, k, blocks, bs, x->vd->size / bs, x->vd->size);
	if (first > 1 || first >= blocks || (bs > 1024 && first != 0))
		return err_set(e, EI_ECORRUPT, "%s: %s: s_first_data_block %u is not %d", w, k, first,
			       bs == 1024 && !(ro & EXT4_FEATURE_RO_COMPAT_BIGALLOC));
	if (rev > EXT2_DYNAMIC_REV)
		return err_set(e, EI_ECORRUPT, "%s: %s: s_rev_level %u is not 0 or 1", w, k, rev);
	if (isz < EXT2_GOOD_OLD_INODE_SIZE || isz > bs || (isz & (isz - 1)))
		return err_set(e, EI_ECORRUPT, "%s: %s: s_inode_size %u is not a power of two in 128..%" PRIu64,
			       w, k, isz, bs);
	if (bpg < 8 || (!(ro & EXT4_FEATURE_RO_COMPAT_BIGALLOC) && (bpg > 8 * bs || bpg != cpg)) ||
	    cpg == 0 || cpg > 8 * bs)
		return err_set(e, EI_ECORRUPT, "%s: %s: s_blocks_per_group %u (s_clusters_per_group %u) "
			       "is not in 8..%" PRIu64, w, k, bpg, cpg, 8 * bs);
	if (ipg == 0 || ipg > 8 * bs || (uint64_t)ipg * isz > (uint64_t)bpg * bs)
		return err_set(e, EI_ECORRUPT, "%s: %s: s_inodes_per_group %u is not in 1..%" PRIu64,
			       w, k, ipg, min_u64(8 * bs, (uint64_t)bpg * bs / isz));
	groups = (blocks - first + bpg - 1) / bpg;
	if (inodes == 0 || inodes != groups * ipg)
		return err_set(e, EI_ECORRUPT, "%s: %s: s_inodes_count %u is not %" PRIu64 " groups x %u",
			       w, k, inodes, groups, ipg);
	if (groups * dsz > EXT_DESC_MAX)
		return err_set(e, EI_ELIMIT, "%s: %s: %" PRIu64 " group descriptors of %u bytes are more than %u MiB",
			       w, k, groups, dsz, EXT_DESC_MAX >> 20);
	if (rev && (first_ino < EXT2_GOOD_OLD_FIRST_INO || first_ino > inodes))
		return err_set(e, EI_ECORRUPT, "%s: %s: s_first_ino %u is not in %d..%u", w, k,
			       first_ino, EXT2_GOOD_OLD_FIRST_INO, inodes);
	if (inodes < EXT2_ROOT_INO)
		return err_set(e, EI_ECORRUPT, "%s: %s: s_inodes_count %u has no root inode", w, k, inodes);
	x->bs = (unsigned)bs;
	x->blocks = blocks;
	x->first_block = first;
	x->inodes = inodes;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Block maps: extents or direct/indirect blocks, checked and bounded.  */

/* A physical run must lie inside the filesystem; @len blocks are charged. */
static int ext_run_ok(struct ext_map *m, uint64_t lblk, uint64_t pblk, uint64_t len, struct err *e)
{
	struct ext_src *x = m->x;

	if (pblk < x->first_block || pblk >= x->blocks || len > x->blocks - pblk)
		return err_set(e, EI_ECORRUPT, "%s: %s: inode %u (%s): block %" PRIu64 " (%" PRIu64
			       " blocks at file block %" PRIu64 ") is outside the filesystem's %" PRIu64 " blocks",
			       x->what, x->kind, m->ino, ppath(m->path), pblk, len, lblk, x->blocks);
	return 0;
}

static int ext_charge(struct ext_map *m, uint64_t n, struct err *e)
{
	struct ext_src *x = m->x;

	if (n > x->budget)
		return err_set(e, EI_ECORRUPT, "%s: %s: inode %u (%s): the files map more blocks than the "
			       "filesystem's %" PRIu64 " (blocks mapped twice?)", x->what, x->kind, m->ino,
			       ppath(m->path), x->blocks);
	x->budget -= n;
	return 0;
}

static void ext_map_free(struct ext_map *m)
{
	if (m->h)
		ext2fs_extent_free(m->h);
	m->h = NULL;
	for (int i = 0; i < 3; i++) {
		free(m->ind[i]);
		m->ind[i] = NULL;
	}
}

static int ext_map_init(struct ext_map *m, struct ext_src *x, uint32_t ino, const char *path,
			struct ext2_inode_large *in, struct err *e)
{
	memset(m, 0, sizeof(*m));
	m->x = x;
	m->ino = ino;
	m->path = path;
	if (in->i_flags & EXT4_EXTENTS_FL) {
		const uint8_t *hdr = (const uint8_t *)in->i_block;
		errcode_t r;

		if (get_le16(hdr) == EXT3_EXT_MAGIC && get_le16(hdr + 6) > EXT_EXTENT_DEPTH_MAX)
			return err_set(e, EI_ECORRUPT, "%s: %s: inode %u (%s): extent tree depth %u is more than %d",
				       x->what, x->kind, ino, ppath(path), get_le16(hdr + 6), EXT_EXTENT_DEPTH_MAX);
		m->extents = 1;
		r = ext2fs_extent_open2(x->fs, ino, (struct ext2_inode *)in, &m->h);
		if (r)
			return ext_lib_err(x, e, r, "inode %u (%s): extent tree", ino, ppath(path));
	} else {
		memcpy(m->iblock, in->i_block, sizeof(m->iblock));
	}
	return 0;
}

/* The next leaf extent, in order, inside the filesystem; done at the end. */
static int ext_map_next_leaf(struct ext_map *m, struct err *e)
{
	struct ext_src *x = m->x;
	struct ext2fs_extent ex;
	errcode_t r;

	for (;;) {
		r = ext2fs_extent_get(m->h, m->started ? EXT2_EXTENT_NEXT : EXT2_EXTENT_ROOT, &ex);
		m->started = 1;
		if (r == EXT2_ET_EXTENT_NO_NEXT) {
			m->done = 1;
			return 0;
		}
		if (r)
			return ext_lib_err(x, e, r, "inode %u (%s): extent tree", m->ino, ppath(m->path));
		if (!(ex.e_flags & EXT2_EXTENT_FLAGS_LEAF)) {
			/* an index entry, met twice (down and up): its block */
			if (ext_charge(m, 1, e) < 0)
				return -1;
			if (!(ex.e_flags & EXT2_EXTENT_FLAGS_SECOND_VISIT) &&
			    ext_run_ok(m, ex.e_lblk, ex.e_pblk, 1, e) < 0)
				return -1;
			continue;
		}
		if (ex.e_len == 0)
			continue;
		if (ex.e_lblk < m->end)
			return err_set(e, EI_ECORRUPT, "%s: %s: inode %u (%s): extent at file block %" PRIu64
				       " overlaps or precedes the previous one (ending at %" PRIu64 ")",
				       x->what, x->kind, m->ino, ppath(m->path), (uint64_t)ex.e_lblk, m->end);
		if (ext_run_ok(m, ex.e_lblk, ex.e_pblk, ex.e_len, e) < 0)
			return -1;
		m->cur = ex;
		m->prev_end = m->end;
		m->end = ex.e_lblk + ex.e_len;
		return 0;
	}
}

/* Load the indirect block @blk for @level (0: single) unless it is there. */
static int ext_map_ind(struct ext_map *m, int level, uint64_t lblk, uint64_t blk, struct err *e)
{
	struct ext_src *x = m->x;

	if (m->ind[level] && m->ind_blk[level] == blk)
		return 0;
	if (ext_run_ok(m, lblk, blk, 1, e) < 0 || ext_charge(m, 1, e) < 0)
		return -1;
	if (!m->ind[level]) {
		m->ind[level] = malloc(x->bs);
		if (!m->ind[level])
			return err_set(e, -ENOMEM, "out of memory");
	}
	m->ind_blk[level] = 0;
	if (vdisk_read(x->vd, m->ind[level], x->bs, blk * x->bs, e) < 0)
		return -1;
	m->ind_blk[level] = blk;
	return 0;
}

/* The run at @lblk of a direct/indirect block map. */
static int ext_map_blockmap(struct ext_map *m, uint64_t lblk, struct ext_run *run, struct err *e)
{
	uint64_t apb = m->x->bs / 4, span = 1, l = lblk, ptr;
	const uint32_t *tab;
	unsigned n, i;
	int levels;

	if (l < EXT2_NDIR_BLOCKS) {
		tab = m->iblock;
		n = EXT2_NDIR_BLOCKS;
		i = (unsigned)l;
	} else {
		l -= EXT2_NDIR_BLOCKS;
		for (levels = 1; levels <= 3; levels++) {
			span *= apb;
			if (l < span)
				break;
			l -= span;
		}
		if (levels > 3) {
			run->pblk = 0;
			run->len = UINT64_MAX - lblk;
			return 0;
		}
		ptr = m->iblock[EXT2_IND_BLOCK + levels - 1];
		for (int lv = 0; lv < levels; lv++) {
			uint64_t sub = span / apb;      /* blocks under one entry below */

			if (ptr == 0) {
				run->pblk = 0;
				run->len = span - l;
				return 0;
			}
			if (ext_map_ind(m, levels - 1 - lv, lblk, ptr, e) < 0)
				return -1;
			i = (unsigned)(l / sub);
			if (lv + 1 < levels) {
				ptr = get_le32(&m->ind[levels - 1 - lv][i]);
				l %= sub;
				span = sub;
			}
		}
		tab = m->ind[0];
		n = (unsigned)apb;
		i = (unsigned)l;
	}
	ptr = get_le32(&tab[i]);
	run->pblk = ptr;
	run->len = 1;
	while (i + run->len < n) {
		uint32_t next = get_le32(&tab[i + run->len]);

		if (ptr ? next != ptr + run->len : next != 0)
			break;
		run->len++;
	}
	if (ptr && ext_run_ok(m, lblk, ptr, run->len, e) < 0)
		return -1;
	return 0;
}

/* The run at @lblk: mapped blocks (uninitialized ones as a hole) or a hole. */
static int ext_map_get(struct ext_map *m, uint64_t lblk, struct ext_run *run, struct err *e)
{
	int written = 1;

	if (m->extents) {
		/* a request behind the current leaf starts over from the root */
		if (m->started && lblk < m->prev_end) {
			m->started = m->done = 0;
			m->end = m->prev_end = 0;
		}
		while (!m->done && (!m->started || m->end <= lblk)) {
			if (ext_map_next_leaf(m, e) < 0)
				return -1;
		}
		if (m->done && (!m->end || lblk >= m->end)) {
			run->pblk = 0;
			run->len = UINT64_MAX - lblk;
			return 0;
		}
		if (lblk < m->cur.e_lblk) {
			run->pblk = 0;
			run->len = m->cur.e_lblk - lblk;
			return 0;
		}
		run->pblk = m->cur.e_pblk + (lblk - m->cur.e_lblk);
		run->len = m->end - lblk;
		written = !(m->cur.e_flags & EXT2_EXTENT_FLAGS_UNINIT);
		if (m->end > m->charged) {
			if (ext_charge(m, m->end - (m->charged > m->cur.e_lblk ? m->charged : m->cur.e_lblk), e) < 0)
				return -1;
			m->charged = m->end;
		}
	} else {
		if (ext_map_blockmap(m, lblk, run, e) < 0)
			return -1;
		if (run->pblk && lblk + run->len > m->charged) {
			uint64_t from = m->charged > lblk ? m->charged : lblk;

			if (ext_charge(m, lblk + run->len - from, e) < 0)
				return -1;
			m->charged = lblk + run->len;
		}
	}
	if (!written)
		run->pblk = 0;
	return 0;
}

/* Map every block of a file (a directory before libext2fs lists it). */
static int ext_map_all(struct ext_map *m, struct err *e)
{
	struct ext_run run;
	uint64_t lblk = 0;

	while (lblk < (1ull << 32)) {
		if (ext_map_get(m, lblk, &run, e) < 0)
			return -1;
		if (run.len > (1ull << 32) - lblk)
			break;
		lblk += run.len;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Regular files' data.                                                 */

static int ext_file_read(struct ft_file *f, uint64_t off, void *buf, size_t len, struct err *e)
{
	struct ext_file *xf = f->priv;
	struct ext_src *x = xf->m.x;
	uint8_t *p = buf;

	if (off > xf->size || len > xf->size - off)
		return err_set(e, EI_EUSAGE, "%s: %s: %s: read of %zu bytes at %" PRIu64 " past the size %" PRIu64,
			       x->what, x->kind, xf->m.path, len, off, xf->size);
	if (xf->inl) {
		memcpy(buf, xf->inl + off, len);
		return 0;
	}
	while (len) {
		uint64_t lblk = off / x->bs, in = off % x->bs, n;
		struct ext_run run;

		if (ext_map_get(&xf->m, lblk, &run, e) < 0)
			return -1;
		n = run.len > (UINT64_MAX - in) / x->bs ? UINT64_MAX : run.len * x->bs - in;
		if (n > len)
			n = len;
		if (!run.pblk)
			memset(p, 0, (size_t)n);
		else if (vdisk_read(x->vd, p, (size_t)n, run.pblk * x->bs + in, e) < 0)
			return -1;
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

static int ext_file_hole(struct ft_file *f, uint64_t off, uint64_t *len, struct err *e)
{
	struct ext_file *xf = f->priv;
	struct ext_src *x = xf->m.x;
	uint64_t in = off % x->bs, n;
	struct ext_run run;

	*len = 0;
	if (xf->inl || off >= xf->size)
		return 0;
	if (ext_map_get(&xf->m, off / x->bs, &run, e) < 0)
		return -1;
	if (run.pblk)
		return 0;
	n = run.len > (UINT64_MAX - in) / x->bs ? UINT64_MAX : run.len * x->bs - in;
	*len = min_u64(n, xf->size - off);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Inodes.                                                              */

static int ext_inode_read(struct ext_src *x, uint32_t ino, const char *path,
			  struct ext2_inode_large *in, struct err *e)
{
	unsigned isz = EXT2_INODE_SIZE(x->fs->super);
	errcode_t r;

	memset(in, 0, sizeof(*in));
	r = ext2fs_read_inode_full(x->fs, ino, (struct ext2_inode *)in, sizeof(*in));
	if (r)
		return ext_lib_err(x, e, r, "inode %u (%s)", ino, ppath(path));
	if (isz > EXT2_GOOD_OLD_INODE_SIZE &&
	    (in->i_extra_isize > isz - EXT2_GOOD_OLD_INODE_SIZE || (in->i_extra_isize & 3)))
		return err_set(e, EI_ECORRUPT, "%s: %s: inode %u (%s): i_extra_isize %u is not a multiple "
			       "of 4 in 0..%u", x->what, x->kind, ino, ppath(path), in->i_extra_isize,
			       isz - EXT2_GOOD_OLD_INODE_SIZE);
	if (in->i_links_count == 0)
		return err_set(e, EI_ECORRUPT, "%s: %s: inode %u (%s) is linked but its i_links_count is 0",
			       x->what, x->kind, ino, ppath(path));
	return 0;
}

/* The data of an inline-data inode: at least @size bytes, malloc'd. */
static int ext_inline(struct ext_src *x, uint32_t ino, const char *path, struct ext2_inode_large *in,
		      uint64_t size, uint8_t **out, struct err *e)
{
	size_t n = 0;
	uint8_t *buf;
	errcode_t r;

	r = ext2fs_inline_data_size(x->fs, ino, &n);
	if (r)
		return ext_lib_err(x, e, r, "inode %u (%s): inline data", ino, ppath(path));
	if (size > n)
		return err_set(e, EI_ECORRUPT, "%s: %s: inode %u (%s): size %" PRIu64 " is past its %zu bytes "
			       "of inline data", x->what, x->kind, ino, ppath(path), size, n);
	buf = malloc(n + 1);
	if (!buf)
		return err_set(e, -ENOMEM, "out of memory");
	r = ext2fs_inline_data_get(x->fs, ino, (struct ext2_inode *)in, buf, &n);
	if (r || size > n) {
		free(buf);
		return r ? ext_lib_err(x, e, r, "inode %u (%s): inline data", ino, ppath(path))
			 : err_set(e, EI_ECORRUPT, "%s: %s: inode %u (%s): inline data changed size",
				   x->what, x->kind, ino, ppath(path));
	}
	*out = buf;
	return 0;
}

/* A symlink's target into @buf (FT_PATH_MAX + 1). */
static int ext_symlink(struct ext_src *x, uint32_t ino, const char *path, struct ext2_inode_large *in,
		       char *buf, struct err *e)
{
	uint64_t size = EXT2_I_SIZE(in), blocks = in->i_blocks;
	uint64_t ea = ext2fs_file_acl_block(x->fs, (struct ext2_inode *)in) ?
		      (uint64_t)(x->bs << (x->fs->super->s_log_cluster_size - x->fs->super->s_log_block_size)) >> 9 : 0;

	if (ext2fs_has_feature_huge_file(x->fs->super))
		blocks |= (uint64_t)in->osd2.linux2.l_i_blocks_hi << 32;
	if (size == 0 || size > FT_PATH_MAX)
		return err_set(e, EI_ECORRUPT, "%s: %s: inode %u (%s): symlink length %" PRIu64
			       " is not in 1..%d", x->what, x->kind, ino, ppath(path), size, FT_PATH_MAX);
	if (in->i_flags & EXT4_INLINE_DATA_FL) {
		uint8_t *d;

		if (ext_inline(x, ino, path, in, size, &d, e) < 0)
			return -1;
		memcpy(buf, d, (size_t)size);
		free(d);
	} else if (blocks == ea && !(in->i_flags & EXT4_EXTENTS_FL)) {
		if (size >= sizeof(in->i_block))
			return err_set(e, EI_ECORRUPT, "%s: %s: inode %u (%s): fast symlink length %" PRIu64
				       " is not below %zu", x->what, x->kind, ino, ppath(path), size,
				       sizeof(in->i_block));
		memcpy(buf, in->i_block, (size_t)size);
	} else {
		struct ext_file f = { .size = size };
		struct ft_file ff = { .priv = &f };
		int r;

		if (size >= x->bs)
			return err_set(e, EI_ECORRUPT, "%s: %s: inode %u (%s): symlink length %" PRIu64
				       " is not below the block size %u", x->what, x->kind, ino, ppath(path),
				       size, x->bs);
		if (ext_map_init(&f.m, x, ino, path, in, e) < 0)
			return -1;
		r = ext_file_read(&ff, 0, buf, (size_t)size, e);
		ext_map_free(&f.m);
		if (r < 0)
			return -1;
	}
	buf[size] = 0;
	if (strlen(buf) != size)
		return err_set(e, EI_ECORRUPT, "%s: %s: inode %u (%s): symlink target holds a NUL byte",
			       x->what, x->kind, ino, ppath(path));
	return 0;
}

static int ext_xattr_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ft_xattr *)a)->name, ((const struct ft_xattr *)b)->name);
}

struct ext_xa {
	struct ext_src *x;
	const char *path;
	uint32_t ino;
	struct err *e;
	int err, acl;
};

static int ext_xattr_one(char *name, char *value, size_t len, void *arg)
{
	struct ext_xa *a = arg;
	struct ext_src *x = a->x;

	if (!strcmp(name, "system.data"))
		return 0;       /* inline data */
	if (!strncmp(name, "system.posix_acl_", 17)) {
		a->acl = 1;
		return 0;
	}
	if (!strncmp(name, "system.", 7)) {
		ft_warnf(&x->s, "%s: extended attribute %s not kept", ppath(a->path), name);
		return 0;
	}
	if ((strncmp(name, "user.", 5) || !name[5]) && (strncmp(name, "trusted.", 8) || !name[8]) &&
	    (strncmp(name, "security.", 9) || !name[9])) {
		a->err = err_set(a->e, EI_ECORRUPT, "%s: %s: inode %u (%s): extended attribute '%.64s' "
				 "has an unknown name index or an empty name", x->what, x->kind,
				 a->ino, ppath(a->path), name);
		return XATTR_ABORT;
	}
	if (len > FT_XATTR_MAX || x->n_xattrs == FT_XATTRS_MAX) {
		a->err = err_set(a->e, EI_ELIMIT, "%s: %s: inode %u (%s): extended attribute %s: %zu bytes, "
				 "attribute %u (at most %d bytes, %d attributes)", x->what, x->kind, a->ino,
				 ppath(a->path), name, len, x->n_xattrs + 1, FT_XATTR_MAX, FT_XATTRS_MAX);
		return XATTR_ABORT;
	}
	x->xattrs[x->n_xattrs].name = name;
	x->xattrs[x->n_xattrs].value = (const uint8_t *)value;
	x->xattrs[x->n_xattrs].size = (uint32_t)len;
	x->n_xattrs++;
	return 0;
}

/* The entry's xattrs, sorted; *@hp is to be closed after the visit. */
static int ext_xattrs(struct ext_src *x, uint32_t ino, const char *path, struct ext2_inode_large *in,
		      struct ext2_xattr_handle **hp, struct err *e)
{
	struct ext_xa a = { .x = x, .path = path, .ino = ino, .e = e };
	blk64_t blk = ext2fs_file_acl_block(x->fs, (struct ext2_inode *)in);
	struct ext2_xattr_handle *h;
	unsigned int flags = XATTR_HANDLE_FLAG_RAW;
	errcode_t r;

	x->n_xattrs = 0;
	*hp = NULL;
	if (!ext2fs_has_feature_xattr(x->fs->super) && !ext2fs_has_feature_inline_data(x->fs->super))
		return 0;
	if (blk) {
		uint8_t hdr[32];

		if (blk < x->first_block || blk >= x->blocks)
			return err_set(e, EI_ECORRUPT, "%s: %s: inode %u (%s): xattr block %" PRIu64
				       " is outside the filesystem's %" PRIu64 " blocks", x->what, x->kind,
				       ino, ppath(path), (uint64_t)blk, x->blocks);
		if (vdisk_read(x->vd, hdr, sizeof(hdr), blk * x->bs, e) < 0)
			return -1;
		if (get_le32(hdr + 4) == 0 || get_le32(hdr + 8) != 1)
			return err_set(e, EI_ECORRUPT, "%s: %s: inode %u (%s): xattr block %" PRIu64
				       " has refcount %u and %u blocks (1 wanted)", x->what, x->kind,
				       ino, ppath(path), (uint64_t)blk, get_le32(hdr + 4), get_le32(hdr + 8));
	}
	r = ext2fs_xattrs_open(x->fs, ino, &h);
	if (r)
		return ext_lib_err(x, e, r, "inode %u (%s): extended attributes", ino, ppath(path));
	r = ext2fs_xattrs_flags(h, &flags, NULL);
	/* not ext2fs_xattrs_read_inode(): it reads the in-inode attributes
	   past a struct ext2_inode_large, from an inode of s_inode_size */
	if (!r)
		r = ext2fs_xattrs_read(h);
	if (r) {
		ext2fs_xattrs_close(&h);
		return ext_lib_err(x, e, r, "inode %u (%s): extended attributes", ino, ppath(path));
	}
	r = ext2fs_xattrs_iterate(h, ext_xattr_one, &a);
	if (a.err || r) {
		ext2fs_xattrs_close(&h);
		return a.err ? a.err : ext_lib_err(x, e, r, "inode %u (%s): extended attributes", ino, ppath(path));
	}
	if (a.acl)
		ft_warnf(&x->s, "%s: POSIX ACL not kept", ppath(path));
	qsort(x->xattrs, x->n_xattrs, sizeof(x->xattrs[0]), ext_xattr_cmp);
	for (unsigned i = 1; i < x->n_xattrs; i++) {
		if (!strcmp(x->xattrs[i - 1].name, x->xattrs[i].name)) {
			int c = err_set(e, EI_ECORRUPT, "%s: %s: inode %u (%s): extended attribute %s twice",
					x->what, x->kind, ino, ppath(path), x->xattrs[i].name);

			ext2fs_xattrs_close(&h);
			return c;
		}
	}
	*hp = h;
	return 0;
}

/* ------------------------------------------------------------------ */
/* The walk.                                                            */

static int ext_link_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct ext_link *)a)->ino, y = ((const struct ext_link *)b)->ino;

	return x < y ? -1 : x > y;
}

static int ext_dent_cmp(const void *a, const void *b)
{
	const struct ext_dent *x = *(struct ext_dent *const *)a, *y = *(struct ext_dent *const *)b;
	int c = memcmp(x->name, y->name, x->len < y->len ? x->len : y->len);

	return c ? c : (int)x->len - (int)y->len;
}

static int ext_dir_one(ext2_ino_t dir, int entry, struct ext2_dir_entry *d, int offset, int blocksize,
		       char *buf, void *arg)
{
	struct ext_src *x = arg;
	int len = ext2fs_dirent_name_len(d);
	struct ext_dent *de;

	if (len == 0 || (len == 1 && d->name[0] == '.') ||
	    (len == 2 && d->name[0] == '.' && d->name[1] == '.'))
		return 0;
	if (memchr(d->name, '/', (size_t)len) || memchr(d->name, 0, (size_t)len)) {
		x->dl_err = err_set(x->dl_e, EI_ECORRUPT, "%s: %s: directory inode %u (%s): a name holds "
				    "'/' or NUL", x->what, x->kind, x->dl_ino, ppath(x->path));
		return DIRENT_ABORT;
	}
	if (d->inode < EXT2_ROOT_INO || d->inode > x->inodes ||
	    (d->inode < EXT2_FIRST_INODE(x->fs->super) && d->inode != EXT2_ROOT_INO)) {
		x->dl_err = err_set(x->dl_e, EI_ECORRUPT, "%s: %s: directory inode %u (%s): entry '%.*s' "
				    "has inode %u (not in %u..%u)", x->what, x->kind, x->dl_ino, ppath(x->path),
				    len, d->name, d->inode, EXT2_FIRST_INODE(x->fs->super), x->inodes);
		return DIRENT_ABORT;
	}
	if (x->entries + x->dl_n >= EXT_ENTRIES_MAX) {
		x->dl_err = err_set(x->dl_e, EI_ELIMIT, "%s: %s: more than %u entries", x->what, x->kind,
				    EXT_ENTRIES_MAX);
		return DIRENT_ABORT;
	}
	if (x->dl_n == x->dl_cap) {
		size_t cap = x->dl_cap ? 2 * x->dl_cap : 64;
		struct ext_dent **n = realloc(x->dl, cap * sizeof(*n));

		if (!n) {
			x->dl_err = err_set(x->dl_e, -ENOMEM, "out of memory");
			return DIRENT_ABORT;
		}
		x->dl = n;
		x->dl_cap = cap;
	}
	de = malloc(sizeof(*de) + (size_t)len + 1);
	if (!de) {
		x->dl_err = err_set(x->dl_e, -ENOMEM, "out of memory");
		return DIRENT_ABORT;
	}
	de->ino = d->inode;
	de->len = (uint8_t)len;
	memcpy(de->name, d->name, (size_t)len);
	de->name[len] = 0;
	x->dl[x->dl_n++] = de;
	return 0;
}

static void ext_dents_free(struct ext_dent **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* The entries of directory @ino (at x->path), sorted: *@out, *@n. */
static int ext_dir_list(struct ext_src *x, uint32_t ino, struct ext2_inode_large *in,
			struct ext_dent ***out, size_t *n, struct err *e)
{
	errcode_t r;

	if (!(in->i_flags & EXT4_INLINE_DATA_FL)) {
		struct ext_map m;
		int c;

		/* every block mapped and charged before libext2fs walks them */
		if (ext_map_init(&m, x, ino, x->path, in, e) < 0)
			return -1;
		c = ext_map_all(&m, e);
		ext_map_free(&m);
		if (c < 0)
			return -1;
	}
	x->dl = NULL;
	x->dl_n = x->dl_cap = 0;
	x->dl_err = 0;
	x->dl_e = e;
	x->dl_ino = ino;
	r = ext2fs_dir_iterate2(x->fs, ino, 0, NULL, ext_dir_one, x);
	if (x->dl_err || r) {
		ext_dents_free(x->dl, x->dl_n);
		x->dl = NULL;
		return x->dl_err ? x->dl_err
				 : ext_lib_err(x, e, r, "directory inode %u (%s)", ino, ppath(x->path));
	}
	if (x->dl_n)
		qsort(x->dl, x->dl_n, sizeof(*x->dl), ext_dent_cmp);
	for (size_t i = 1; i < x->dl_n; i++) {
		if (!ext_dent_cmp(&x->dl[i - 1], &x->dl[i])) {
			int c = err_set(e, EI_ECORRUPT, "%s: %s: directory inode %u (%s): two entries named '%.255s'",
					x->what, x->kind, ino, ppath(x->path), x->dl[i]->name);

			ext_dents_free(x->dl, x->dl_n);
			x->dl = NULL;
			return c;
		}
	}
	*out = x->dl;
	*n = x->dl_n;
	x->dl = NULL;
	return 0;
}

static int ext_visit(struct ext_src *x, uint32_t ino, size_t plen, unsigned depth,
		     ft_visit_fn visit, void *arg, struct err *e);

static int ext_visit_dir(struct ext_src *x, uint32_t ino, struct ext2_inode_large *in, size_t plen,
			 unsigned depth, ft_visit_fn visit, void *arg, struct err *e)
{
	struct ext_dent **v = NULL;
	size_t n = 0;
	int r = 0;

	if (ext_dir_list(x, ino, in, &v, &n, e) < 0)
		return -1;
	if (n && depth >= FT_DEPTH_MAX) {
		ext_dents_free(v, n);
		return err_set(e, EI_ELIMIT, "%s: %s: %s: directories deeper than %d", x->what, x->kind,
			       ppath(x->path), FT_DEPTH_MAX);
	}
	for (size_t i = 0; i < n && r >= 0; i++) {
		size_t l = plen + (plen ? 1 : 0) + v[i]->len;

		if (l > FT_PATH_MAX) {
			x->path[plen] = 0;
			r = err_set(e, EI_ELIMIT, "%s: %s: %s: a path longer than %d bytes", x->what, x->kind,
				    ppath(x->path), FT_PATH_MAX);
			break;
		}
		if (plen)
			x->path[plen] = '/';
		memcpy(x->path + l - v[i]->len, v[i]->name, v[i]->len);
		x->path[l] = 0;
		r = ext_visit(x, v[i]->ino, l, depth + 1, visit, arg, e);
	}
	x->path[plen] = 0;
	ext_dents_free(v, n);
	return r < 0 ? -1 : 0;
}

/* Visit inode @ino at x->path (@plen bytes) and, for a directory, below. */
static int ext_visit(struct ext_src *x, uint32_t ino, size_t plen, unsigned depth,
		     ft_visit_fn visit, void *arg, struct err *e)
{
	struct ext2_inode_large in;
	struct ext2_xattr_handle *xh = NULL;
	struct ft_entry ent = { .path = x->path, .ino = ino };
	struct ext_link *lk = NULL;
	struct ext_file xf;
	struct ft_file ff = { .read = ext_file_read, .hole = ext_file_hole, .priv = &xf };
	uint8_t *inl = NULL;
	char *target = NULL;
	int r = 0, isdir, withdata = 0;
	unsigned isz;

	if (++x->entries > EXT_ENTRIES_MAX)
		return err_set(e, EI_ELIMIT, "%s: %s: more than %u entries", x->what, x->kind, EXT_ENTRIES_MAX);
	if (ext_inode_read(x, ino, x->path, &in, e) < 0)
		return -1;
	isdir = LINUX_S_ISDIR(in.i_mode);
	ent.mode = in.i_mode & 07777;
	ent.uid = inode_uid(in);
	ent.gid = inode_gid(in);
	ent.nlink = in.i_links_count;
	ent.mtime = (int32_t)in.i_mtime;
	isz = EXT2_INODE_SIZE(x->fs->super);
	if (isz > EXT2_GOOD_OLD_INODE_SIZE &&
	    in.i_extra_isize >= offsetof(struct ext2_inode_large, i_mtime_extra) + 4 - EXT2_GOOD_OLD_INODE_SIZE)
		ent.mtime += (int64_t)(in.i_mtime_extra & EXT4_EPOCH_MASK) << 32;
	switch (in.i_mode & 0170000) {
	case LINUX_S_IFREG: ent.type = FT_REG; break;
	case LINUX_S_IFDIR: ent.type = FT_DIR; break;
	case LINUX_S_IFLNK: ent.type = FT_SYMLINK; break;
	case LINUX_S_IFBLK: ent.type = FT_BLK; break;
	case LINUX_S_IFCHR: ent.type = FT_CHR; break;
	case LINUX_S_IFIFO: ent.type = FT_FIFO; break;
	case LINUX_S_IFSOCK: ent.type = FT_SOCK; break;
	default:
		return err_set(e, EI_ECORRUPT, "%s: %s: inode %u (%s): i_mode 0%o is no file type",
			       x->what, x->kind, ino, ppath(x->path), in.i_mode);
	}
	if (plen == 0 && !isdir)
		return err_set(e, EI_ECORRUPT, "%s: %s: the root inode is not a directory (i_mode 0%o)",
			       x->what, x->kind, in.i_mode);
	/* loops and hard links */
	if (isdir || in.i_links_count == 1) {
		if (x->seen[ino / 8] & (1u << (ino % 8)))
			return err_set(e, EI_ECORRUPT, isdir ? "%s: %s: %s: directory inode %u is reached twice (a loop)"
				       : "%s: %s: %s: inode %u is reached twice but its i_links_count is 1",
				       x->what, x->kind, ppath(x->path), ino);
		x->seen[ino / 8] |= (uint8_t)(1u << (ino % 8));
	} else {
		struct ext_link key = { .ino = ino }, **p = tfind(&key, &x->links, ext_link_cmp);

		if (p) {
			lk = *p;
			if (++lk->seen > in.i_links_count)
				return err_set(e, EI_ECORRUPT, "%s: %s: %s: inode %u is reached more often than its "
					       "i_links_count %u", x->what, x->kind, ppath(x->path), ino,
					       in.i_links_count);
			ent.link_to = lk->path;
		} else {
			lk = calloc(1, sizeof(*lk));
			if (!lk || !(lk->path = strdup(x->path))) {
				free(lk);
				return err_set(e, -ENOMEM, "out of memory");
			}
			lk->ino = ino;
			lk->seen = 1;
			if (!tsearch(lk, &x->links, ext_link_cmp)) {
				free(lk->path);
				free(lk);
				return err_set(e, -ENOMEM, "out of memory");
			}
		}
	}
	if (ext_xattrs(x, ino, x->path, &in, &xh, e) < 0)
		return -1;
	ent.xattrs = x->xattrs;
	ent.n_xattrs = x->n_xattrs;
	switch (ent.type) {
	case FT_REG:
		ent.size = EXT2_I_SIZE(&in);
		if (ent.link_to)
			break;
		memset(&xf, 0, sizeof(xf));
		xf.size = ent.size;
		if (in.i_flags & EXT4_INLINE_DATA_FL) {
			r = ext_inline(x, ino, x->path, &in, ent.size, &inl, e);
			xf.m.x = x;
			xf.m.ino = ino;
			xf.m.path = x->path;
			xf.inl = inl;
		} else {
			uint64_t maxb = in.i_flags & EXT4_EXTENTS_FL ? 1ull << 32
				: EXT2_NDIR_BLOCKS + (x->bs / 4) + (uint64_t)(x->bs / 4) * (x->bs / 4) +
				  (uint64_t)(x->bs / 4) * (x->bs / 4) * (x->bs / 4);

			if (ent.size > maxb * x->bs)
				r = err_set(e, EI_ECORRUPT, "%s: %s: inode %u (%s): size %" PRIu64 " is past the "
					    "largest file its block map holds (%" PRIu64 " bytes)", x->what,
					    x->kind, ino, ppath(x->path), ent.size, maxb * x->bs);
			else
				r = ext_map_init(&xf.m, x, ino, x->path, &in, e);
		}
		withdata = r >= 0;
		break;
	case FT_SYMLINK:
		target = malloc(FT_PATH_MAX + 1);
		if (!target)
			r = err_set(e, -ENOMEM, "out of memory");
		else
			r = ext_symlink(x, ino, x->path, &in, target, e);
		ent.target = target;
		break;
	case FT_BLK:
	case FT_CHR: {
		uint32_t d0 = get_le32(&in.i_block[0]), d1 = get_le32(&in.i_block[1]);

		if (d0) {
			ent.rdev_major = (d0 >> 8) & 0xff;
			ent.rdev_minor = d0 & 0xff;
		} else {
			ent.rdev_major = (d1 & 0xfff00) >> 8;
			ent.rdev_minor = (d1 & 0xff) | ((d1 >> 12) & 0xfff00);
		}
		break;
	}
	default:
		break;
	}
	if (r >= 0)
		r = visit(arg, &ent, withdata && !ent.link_to ? &ff : NULL, e);
	if (withdata)
		ext_map_free(&xf.m);
	free(inl);
	free(target);
	if (xh)
		ext2fs_xattrs_close(&xh);
	if (r < 0)
		return -1;
	if (isdir)
		return ext_visit_dir(x, ino, &in, plen, depth, visit, arg, e);
	return 0;
}

static int ext_walk(struct ft_source *s, ft_visit_fn visit, void *arg, struct err *e)
{
	struct ext_src *x = (struct ext_src *)s;

	if (x->walked)
		return err_set(e, EI_EUSAGE, "%s: walked twice", x->what);
	x->walked = 1;
	x->seen = calloc((size_t)x->inodes / 8 + 1, 1);
	if (!x->seen)
		return err_set(e, -ENOMEM, "out of memory");
	/* ext4 maps no block to two files: the extent and block-map nodes
	   met twice on the way, plus every data block, fit twice the size */
	x->budget = 2 * x->blocks + 1024;
	x->path[0] = 0;
	return ext_visit(x, EXT2_ROOT_INO, 0, 0, visit, arg, e) < 0 ? -1 : 0;
}

static void ext_link_free(void *p)
{
	struct ext_link *l = p;

	free(l->path);
	free(l);
}

static void ext_close(struct ft_source *s)
{
	struct ext_src *x = (struct ext_src *)s;

	if (x->fs)
		ext2fs_close_free(&x->fs);
	tdestroy(x->links, ext_link_free);
	free(x->seen);
	free(x->path);
	free(x->xattrs);
	free(x);
}

static const struct ft_source_ops ext_ops = {
	.name = "ext4",
	.walk = ext_walk,
	.close = ext_close,
};

int ft_open_ext(struct vdisk *vd, const char *what, struct ft_source **out, struct err *e)
{
	uint8_t sb[SUPERBLOCK_SIZE];
	struct ext_src *x;
	char name[64];
	errcode_t r;
	int c;

	*out = NULL;
	initialize_ext2_error_table();  /* libext2fs's messages (registered once) */
	if (vd->size < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE)
		return err_set(e, EI_EFORMAT, "%s: not an ext2/3/4 filesystem", what);
	if (vdisk_read(vd, sb, sizeof(sb), SUPERBLOCK_OFFSET, e) < 0)
		return -1;
	if (get_le16(sb + 56) != EXT2_SUPER_MAGIC)
		return err_set(e, EI_EFORMAT, "%s: not an ext2/3/4 filesystem", what);
	x = calloc(1, sizeof(*x));
	if (!x)
		return err_set(e, -ENOMEM, "out of memory");
	x->vd = vd;
	snprintf(x->what, sizeof(x->what), "%s", what);
	c = ext_super_check(x, sb, e);
	if (c < 0) {
		free(x);
		return c;
	}
	x->path = malloc(FT_PATH_MAX + 1);
	x->xattrs = malloc(FT_XATTRS_MAX * sizeof(*x->xattrs));
	if (!x->path || !x->xattrs) {
		ext_close(&x->s);
		return err_set(e, -ENOMEM, "out of memory");
	}
	snprintf(name, sizeof(name), "edgeimg:%p", (void *)x);
	r = ext2fs_open2(name, NULL, EXT2_FLAG_64BITS | EXT2_FLAG_SKIP_MMP, 0, 0, &ext_io_manager, &x->fs);
	if (!r && x->fs->blocksize != x->bs)
		r = EXT2_ET_CORRUPT_SUPERBLOCK;
	if (!r)
		r = ext2fs_check_desc(x->fs);
	for (dgrp_t g = 0; !r && ext2fs_has_group_desc_csum(x->fs) && g < x->fs->group_desc_count; g++) {
		if (!ext2fs_group_desc_csum_verify(x->fs, g)) {
			c = err_set(e, EI_ECORRUPT, "%s: %s: group descriptor %u: checksum 0x%04x is wrong",
				    x->what, x->kind, g, ext2fs_bg_checksum(x->fs, g));
			ext_close(&x->s);
			return c;
		}
	}
	if (r) {
		c = ext_lib_err(x, e, r, "superblock and group descriptors");
		ext_close(&x->s);
		return c;
	}
	x->s.ops = &ext_ops;
	x->s.what = x->what;
	x->s.priv = x;
	x->s.mkfs_time = x->fs->super->s_mkfs_time || x->fs->super->s_mkfs_time_hi ?
		(int64_t)((uint64_t)x->fs->super->s_mkfs_time | (uint64_t)x->fs->super->s_mkfs_time_hi << 32) : -1;
	*out = &x->s;
	return 0;
}
