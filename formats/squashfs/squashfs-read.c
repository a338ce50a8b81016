// SPDX-License-Identifier: MIT
/*
 * squashfs reader: the disk is one regular file in the root directory:
 * disk.img, or the file an edgeimg recipe or the partitions=on layout
 * names (see sqfs_reader_pick()); any other squashfs is a root filesystem and is
 * refused, never read as the disk of its only file.  Every table is
 * checked the way the kernel's squashfs_fill_super() and the hardening of
 * squashfs-tools-ng do (../shared/HOSTILE-INPUTS.md, rows S1-S13); the
 * file's block list is held in memory (4 bytes a block, refused above
 * max_table), metadata through a small cache.
 */
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "core/info.h"
#include "squashfs.h"

#define SQR_CUM_STEP 64         /* a running offset every this many blocks */
#define SQR_MAX_LISTING (1u << 20)      /* the root directory's listing */

struct sqfs_reader_entry {
	const uint8_t *name;    /* into the listing, not NUL-terminated */
	unsigned name_len;
	unsigned type;
	uint32_t number;
	uint64_t ref;           /* inode: block << 16 | offset */
	uint64_t size;          /* regular files, for info */
};

struct sqfs_reader {
	struct squashfs_fs fs;  /* the superblock, tables and metadata cache */

	uint8_t *listing;       /* the root directory */
	struct sqfs_reader_entry *ent;
	size_t nent, file;

	uint64_t fsize, start, nblocks, sparse;
	uint32_t *words;        /* size words, 0 for sparse */
	uint64_t *cum;          /* offset from start of block k * SQR_CUM_STEP */
	uint32_t frag, frag_off, tail_len;
	uint8_t *tail;          /* the fragment tail, once read */

	uint8_t *dbuf;          /* bs: the last decompressed block */
	uint64_t dblock;        /* its index, or UINT64_MAX */
	char recipe[SQFS_RECIPE_MAX];
};

static const char *const sqfs_reader_type_names[] = {
	"?", "directory", "regular file", "symlink", "block device",
	"character device", "fifo", "socket",
};

static const char *sqfs_reader_type_name(unsigned t)
{
	if (t >= 8 && t <= 14)
		t -= 7;
	return t < 8 ? sqfs_reader_type_names[t] : "?";
}

/* Load the metadata block at @pos, which must lie inside [lo, hi). */
static int squashfs_meta_load(struct squashfs_fs *fs, uint64_t pos, uint64_t lo,
			 uint64_t hi, const char *what,
			 struct squashfs_mblock **out, struct err *e)
{
	struct squashfs_mblock *m = &fs->mc[(pos ^ (pos >> 13)) % SQFS_MCACHE];
	uint8_t hdr[2];
	unsigned size, raw;
	size_t len = SQFS_META_SIZE;
	int r;

	if (m->pos == pos) {
		*out = m;
		return 0;
	}
	if (pos < lo || !range_ok(pos, 2, hi))
		return err_set(e, EI_ECORRUPT,
			       "squashfs: %s: metadata block at %llu is outside %llu..%llu",
			       what, (unsigned long long)pos,
			       (unsigned long long)lo, (unsigned long long)hi);
	r = io_read(fs->io, hdr, 2, pos, "squashfs: metadata", e);
	if (r < 0)
		return r;
	size = get_le16(hdr) & ~SQFS_META_UNCOMPRESSED;
	raw = get_le16(hdr) & SQFS_META_UNCOMPRESSED;
	if (!size || size > SQFS_META_SIZE)
		return err_set(e, EI_ECORRUPT,
			       "squashfs: %s: metadata block at %llu has size %u, allowed 1..8192",
			       what, (unsigned long long)pos, size);
	if (!range_ok(pos + 2, size, hi))
		return err_set(e, EI_ECORRUPT,
			       "squashfs: %s: metadata block at %llu of %u bytes runs past %llu",
			       what, (unsigned long long)pos, size,
			       (unsigned long long)hi);
	m->pos = UINT64_MAX;
	if (raw) {
		r = io_read(fs->io, m->data, size, pos + 2, "squashfs: metadata", e);
		len = size;
	} else {
		r = io_read(fs->io, fs->cbuf, size, pos + 2, "squashfs: metadata", e);
		if (r >= 0)
			r = squashfs_decompress(fs->comp, &fs->ctx, fs->cbuf, size,
						m->data, &len, fs->bs, e);
		if (r < 0)
			err_prefix(e, "squashfs: %s: metadata block at %llu", what,
				   (unsigned long long)pos);
	}
	if (r < 0)
		return r;
	if (!len)
		return err_set(e, EI_ECORRUPT,
			       "squashfs: %s: metadata block at %llu is empty", what,
			       (unsigned long long)pos);
	m->pos = pos;
	m->next = pos + 2 + size;
	m->len = (uint32_t)len;
	*out = m;
	return 0;
}

/*
 * Copy @len bytes of metadata starting at block *@blk, offset *@off (both
 * advanced), into @dst (NULL skips them), following blocks inside [lo, hi).
 */
int squashfs_meta_read(struct squashfs_fs *fs, uint64_t *blk, uint32_t *off,
			 void *dst, size_t len, uint64_t lo, uint64_t hi,
			 const char *what, struct err *e)
{
	uint8_t *d = dst;

	while (len) {
		struct squashfs_mblock *m = NULL;
		size_t n;
		int r = squashfs_meta_load(fs, *blk, lo, hi, what, &m, e);

		if (r < 0)
			return r;
		if (*off > m->len)
			return err_set(e, EI_ECORRUPT,
				       "squashfs: %s: offset %u past the %u bytes of the block at %llu",
				       what, *off, m->len, (unsigned long long)*blk);
		if (*off == m->len) {
			*blk = m->next;
			*off = 0;
			continue;
		}
		n = min_u64(len, m->len - *off);
		if (d) {
			memcpy(d, m->data + *off, n);
			d += n;
		}
		*off += (uint32_t)n;
		len -= n;
	}
	return 0;
}

/*
 * An index table at @start: the positions of the metadata blocks holding
 * @entries entries of @esize bytes, which end at @meta_end.  The index must
 * end by *@next; on success *@next is the first block (where the table
 * before it must end).  The positions go to *@keep when it is non-NULL.
 */
static int squashfs_index(struct squashfs_fs *fs, const char *what, uint64_t start,
		     uint64_t entries, unsigned esize, uint64_t meta_end,
		     uint64_t *next, uint64_t **keep, struct err *e)
{
	uint64_t nblk = (entries * esize + SQFS_META_SIZE - 1) / SQFS_META_SIZE;
	uint64_t len = nblk * 8, *v;
	int r = 0;

	if (start < SQFS_SUPER_SIZE || !range_ok(start, len, *next))
		return err_set(e, EI_ECORRUPT,
			       "squashfs: %s of %llu entries needs %llu bytes of index at %llu, which does not fit below %llu",
			       what, (unsigned long long)entries,
			       (unsigned long long)len, (unsigned long long)start,
			       (unsigned long long)*next);
	if (len > fs->max_table)
		return err_set(e, EI_ELIMIT,
			       "squashfs: %s index of %llu bytes exceeds the limit of %llu",
			       what, (unsigned long long)len,
			       (unsigned long long)fs->max_table);
	v = malloc(len ? len : 1);
	if (!v)
		return err_set(e, -ENOMEM, "squashfs: out of memory");
	r = io_read(fs->io, v, len, start, "squashfs: index", e);
	if (r < 0)
		goto out;
	for (uint64_t i = 0; i < nblk; i++)     /* in place, 8 bytes each */
		v[i] = get_le64((const uint8_t *)v + 8 * i);
	for (uint64_t i = 0; i < nblk; i++) {
		uint64_t end = i + 1 < nblk ? v[i + 1] : meta_end;

		if (v[i] < SQFS_SUPER_SIZE || v[i] >= end ||
		    end - v[i] > SQFS_META_MAX_DISK) {
			r = err_set(e, EI_ECORRUPT,
				    "squashfs: %s: index entry %llu points at %llu, not a metadata block before %llu",
				    what, (unsigned long long)i,
				    (unsigned long long)v[i], (unsigned long long)end);
			goto out;
		}
	}
	*next = v[0];
	if (keep) {
		*keep = v;
		v = NULL;
	}
out:
	free(v);
	return r;
}

/* The table chain, last to first, as the kernel's squashfs_fill_super(). */
static int squashfs_tables(struct squashfs_fs *fs, const uint8_t *sb, struct err *e)
{
	uint64_t next = fs->bytes_used;
	uint64_t xattr = get_le64(sb + SB_XATTR_TABLE);
	uint64_t id = get_le64(sb + SB_ID_TABLE);
	uint64_t lookup = get_le64(sb + SB_EXPORT_TABLE);
	int r;

	if (xattr != SQFS_INVALID_BLK) {
		uint8_t h[16];
		uint64_t kv, len;

		if (xattr < SQFS_SUPER_SIZE || !range_ok(xattr, 16, fs->bytes_used))
			return err_set(e, EI_ECORRUPT,
				       "squashfs: xattr_id_table_start %llu is outside the image (bytes_used %llu)",
				       (unsigned long long)xattr,
				       (unsigned long long)fs->bytes_used);
		r = io_read(fs->io, h, 16, xattr, "squashfs: xattr id table", e);
		if (r < 0)
			return r;
		kv = get_le64(h);
		fs->xattr_ids = get_le32(h + 8);
		if (!fs->xattr_ids || fs->xattr_ids >= 1u << 31)
			return err_set(e, EI_ECORRUPT,
				       "squashfs: xattr_ids %u is not in 1..2147483647",
				       fs->xattr_ids);
		len = ((uint64_t)fs->xattr_ids * 16 + SQFS_META_SIZE - 1) /
		      SQFS_META_SIZE * 8;
		if (len != fs->bytes_used - xattr - 16)
			return err_set(e, EI_ECORRUPT,
				       "squashfs: xattr id table of %u entries needs %llu bytes of index, the image has %llu",
				       fs->xattr_ids, (unsigned long long)len,
				       (unsigned long long)(fs->bytes_used - xattr - 16));
		next = fs->bytes_used;
		r = squashfs_index(fs, "xattr id table", xattr + 16, fs->xattr_ids,
			      16, xattr, &next, &fs->xattr_ptr, e);
		if (r < 0)
			return r;
		if (kv > next)
			return err_set(e, EI_ECORRUPT,
				       "squashfs: xattr_table_start %llu is after its id table at %llu",
				       (unsigned long long)kv, (unsigned long long)next);
		next = kv;
		fs->xattr_kv = kv;
		fs->xattr_table = xattr;
	}
	if (!fs->no_ids)
		return err_set(e, EI_ECORRUPT, "squashfs: no_ids is 0, at least 1 is needed");
	fs->id_table = id;
	r = squashfs_index(fs, "id table", id, fs->no_ids, 4, id, &next, &fs->id_ptr, e);
	if (r < 0)
		return r;
	if (lookup != SQFS_INVALID_BLK) {
		r = squashfs_index(fs, "export table", lookup, fs->inodes, 8, lookup,
			      &next, NULL, e);
		if (r < 0)
			return r;
	}
	if (fs->fragments) {
		r = squashfs_index(fs, "fragment table", fs->frag_table, fs->fragments,
			      16, fs->frag_table, &next, &fs->frag_ptr, e);
		if (r < 0)
			return r;
	}
	if (fs->dir_table > next)
		return err_set(e, EI_ECORRUPT,
			       "squashfs: directory_table_start %llu is after the next table at %llu",
			       (unsigned long long)fs->dir_table,
			       (unsigned long long)next);
	if (fs->inode_table < SQFS_SUPER_SIZE || fs->inode_table >= fs->dir_table)
		return err_set(e, EI_ECORRUPT,
			       "squashfs: inode_table_start %llu is not between 96 and directory_table_start %llu",
			       (unsigned long long)fs->inode_table,
			       (unsigned long long)fs->dir_table);
	fs->dir_end = next;
	return 0;
}

/* The compressor options block, when the flags say there is one. */
static int squashfs_read_comp_opts(struct squashfs_fs *fs, struct err *e)
{
	uint64_t blk = SQFS_SUPER_SIZE;
	uint32_t off = 0;
	uint8_t o[8];
	size_t need = fs->comp->id == SQFS_COMP_ZSTD ? 4 : 8;
	int r;

	if (!(fs->flags & SQFS_FLAG_COMP_OPT))
		return 0;
	r = squashfs_meta_read(fs, &blk, &off, o, need, SQFS_SUPER_SIZE,
			  fs->inode_table, "compressor options", e);
	if (r < 0)
		return r;
	switch (fs->comp->id) {
	case SQFS_COMP_GZIP:
		fs->opt_level = (int)get_le32(o);
		if (fs->opt_level < 1 || fs->opt_level > 9)
			return err_set(e, EI_ECORRUPT,
				       "squashfs: gzip compression_level %d is not 1..9",
				       fs->opt_level);
		fs->opt_gzip_window = get_le16(o + 4);
		fs->opt_gzip_strategies = get_le16(o + 6);
		if (fs->opt_gzip_window < 8 || fs->opt_gzip_window > 15 ||
		    fs->opt_gzip_strategies >= 1u << 5)
			return err_set(e, EI_ECORRUPT,
				       "squashfs: gzip window_size %d (not 8..15) or strategy 0x%x (not below 0x20)",
				       fs->opt_gzip_window, fs->opt_gzip_strategies);
		break;
	case SQFS_COMP_LZ4:
		if (get_le32(o) != SQFS_LZ4_LEGACY)
			return err_set(e, EI_EUNSUP,
				       "squashfs: lz4 version %u is not 1 (legacy)",
				       get_le32(o));
		fs->opt_lz4_hc = !!(get_le32(o + 4) & SQFS_LZ4_HC);
		break;
	case SQFS_COMP_ZSTD:
		fs->opt_level = (int)get_le32(o);
		break;
	}
	return 0;
}

/* Read the inode at @ref: its header into @hdr, then @len more into @body. */
int squashfs_inode_read(struct squashfs_fs *fs, uint64_t ref, uint8_t *hdr,
		     uint8_t *body, size_t len, uint64_t *blk, uint32_t *off,
		     struct err *e)
{
	int r;

	*blk = fs->inode_table + (ref >> 16);
	*off = ref & 0xffff;
	if (ref >> 48 || *off >= SQFS_META_SIZE)
		return err_set(e, EI_ECORRUPT,
			       "squashfs: inode reference 0x%llx has an offset past 8191",
			       (unsigned long long)ref);
	r = squashfs_meta_read(fs, blk, off, hdr, SQFS_INODE_HDR, fs->inode_table,
			  fs->dir_table, "inode table", e);
	if (r < 0)
		return r;
	if (!get_le32(hdr + 12))
		return err_set(e, EI_ECORRUPT,
			       "squashfs: inode at 0x%llx has inode_number 0",
			       (unsigned long long)ref);
	if (get_le16(hdr + 4) >= fs->no_ids || get_le16(hdr + 6) >= fs->no_ids)
		return err_set(e, EI_ECORRUPT,
			       "squashfs: inode at 0x%llx has uid/gid index %u/%u, no_ids is %u",
			       (unsigned long long)ref, get_le16(hdr + 4),
			       get_le16(hdr + 6), fs->no_ids);
	return squashfs_meta_read(fs, blk, off, body, len, fs->inode_table,
			     fs->dir_table, "inode table", e);
}

static int squashfs_dent_cmp(const void *a, const void *b)
{
	const struct squashfs_dent *x = a, *y = b;
	int c = memcmp(x->name, y->name, min_u64(x->name_len, y->name_len));

	return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

/* A directory entry's name for a message: NUL as '?', then text_safe(). */
static const char *squashfs_dent_name(const uint8_t *p, unsigned len, char *buf, size_t size)
{
	char nm[SQFS_NAME_MAX + 1];

	for (unsigned i = 0; i < len; i++)
		nm[i] = p[i] ? (char)p[i] : '?';
	nm[len] = 0;
	return text_safe(nm, buf, size);
}

int squashfs_listing(const uint8_t *p, size_t len, struct squashfs_dent **out,
		     size_t *nout, struct err *e)
{
	const uint8_t *end = p + len;
	size_t cap = len / (SQFS_DIR_ENTRY + 1) + 1, n = 0;
	struct squashfs_dent *d = malloc(cap * sizeof(*d));
	char nb[80];
	int r = 0;

	*out = NULL;
	*nout = 0;
	if (!d)
		return err_set(e, -ENOMEM, "squashfs: out of memory");
	while (p < end) {
		uint32_t count, blk, base;

		if (end - p < SQFS_DIR_HDR) {
			r = err_set(e, EI_ECORRUPT,
				    "squashfs: directory listing ends inside a header");
			goto fail;
		}
		count = get_le32(p) + 1;
		blk = get_le32(p + 4);
		base = get_le32(p + 8);
		p += SQFS_DIR_HDR;
		if (!count || count > SQFS_DIR_MAX_COUNT) {
			r = err_set(e, EI_ECORRUPT,
				    "squashfs: directory header count %u is not 1..256",
				    get_le32(p - SQFS_DIR_HDR) + 1);
			goto fail;
		}
		for (uint32_t i = 0; i < count; i++) {
			unsigned off, type, nlen;
			int64_t num;

			if (end - p < SQFS_DIR_ENTRY) {
				r = err_set(e, EI_ECORRUPT,
					    "squashfs: directory listing ends inside an entry");
				goto fail;
			}
			off = get_le16(p);
			num = (int64_t)base + (int16_t)get_le16(p + 2);
			type = get_le16(p + 4);
			nlen = get_le16(p + 6) + 1u;
			p += SQFS_DIR_ENTRY;
			if (nlen > SQFS_NAME_MAX) {
				r = err_set(e, EI_ECORRUPT,
					    "squashfs: directory entry name size %u exceeds 256",
					    nlen);
				goto fail;
			}
			if ((size_t)(end - p) < nlen) {
				r = err_set(e, EI_ECORRUPT,
					    "squashfs: directory listing ends inside a name");
				goto fail;
			}
			squashfs_dent_name(p, nlen, nb, sizeof(nb));
			if ((nlen == 1 && p[0] == '.') ||
			    (nlen == 2 && p[0] == '.' && p[1] == '.') ||
			    memchr(p, '/', nlen) || memchr(p, 0, nlen)) {
				r = err_set(e, EI_ECORRUPT,
					    "squashfs: directory entry name '%s' is not a plain name",
					    nb);
				goto fail;
			}
			if (off >= SQFS_META_SIZE || type < SQFS_DIR || type > SQFS_SOCKET) {
				r = err_set(e, EI_ECORRUPT,
					    "squashfs: directory entry '%s' has offset %u, type %u",
					    nb, off, type);
				goto fail;
			}
			if (num <= 0 || num > UINT32_MAX) {
				r = err_set(e, EI_ECORRUPT,
					    "squashfs: directory entry '%s' has inode number %lld",
					    nb, (long long)num);
				goto fail;
			}
			if (n == cap) {
				r = err_set(e, EI_ECORRUPT,
					    "squashfs: directory listing has too many entries");
				goto fail;
			}
			d[n].name = p;
			d[n].name_len = nlen;
			d[n].type = type;
			d[n].number = (uint32_t)num;
			d[n].ref = (uint64_t)blk << 16 | off;
			n++;
			p += nlen;
		}
	}
	/* mksquashfs and squashfs-tools-ng sort: checked, sorted if not */
	for (size_t i = 1; i < n; i++) {
		if (squashfs_dent_cmp(&d[i - 1], &d[i]) > 0) {
			qsort(d, n, sizeof(*d), squashfs_dent_cmp);
			break;
		}
	}
	for (size_t i = 1; i < n; i++) {
		if (!squashfs_dent_cmp(&d[i - 1], &d[i])) {
			r = err_set(e, EI_ECORRUPT, "squashfs: directory entry '%s' appears twice",
				    squashfs_dent_name(d[i].name, d[i].name_len, nb, sizeof(nb)));
			goto fail;
		}
	}
	*out = d;
	*nout = n;
	return 0;
fail:
	free(d);
	return r;
}

/* Parse the root directory's listing into s->ent. */
static int sqfs_reader_listing(struct vdisk *vd, size_t len, uint32_t root_number,
		       struct err *e)
{
	struct sqfs_reader *s = vd->priv;
	struct squashfs_dent *dl;
	size_t n;
	int r = squashfs_listing(s->listing, len, &dl, &n, e);

	if (r < 0)
		return r;
	s->ent = calloc(n ? n : 1, sizeof(*s->ent));
	if (!s->ent) {
		free(dl);
		return err_set(e, -ENOMEM, "squashfs: out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		struct sqfs_reader_entry *d = &s->ent[s->nent++];

		d->name = dl[i].name;
		d->name_len = dl[i].name_len;
		d->type = dl[i].type;
		d->number = dl[i].number;
		d->ref = dl[i].ref;
		if (d->type == SQFS_DIR &&
		    (d->number == root_number || d->ref == s->fs.root_ref)) {
			char nb[80];

			r = err_set(e, EI_ECORRUPT,
				    "squashfs: directory entry '%s' refers to its own directory (a loop)",
				    squashfs_dent_name(d->name, d->name_len, nb, sizeof(nb)));
			break;
		}
	}
	free(dl);
	return r;
}

/* Check each entry's inode: its type matches, a symlink's target is sane. */
static int sqfs_reader_check_entries(struct vdisk *vd, struct err *e)
{
	struct sqfs_reader *s = vd->priv;

	for (size_t i = 0; i < s->nent; i++) {
		struct sqfs_reader_entry *d = &s->ent[i];
		uint8_t hdr[SQFS_INODE_HDR], b[SQFS_LREG_SIZE];
		unsigned t;
		uint64_t blk;
		uint32_t off;
		size_t need = d->type == SQFS_SYMLINK ? 8 : 0;
		int r = squashfs_inode_read(&s->fs, d->ref, hdr, NULL, 0, &blk, &off, e);

		if (r < 0)
			return r;
		t = get_le16(hdr);
		if (t != d->type && t != d->type + 7)
			return err_set(e, EI_ECORRUPT,
				       "squashfs: directory entry '%.*s' is a %s, its inode a %s (type %u)",
				       (int)d->name_len, (const char *)d->name,
				       sqfs_reader_type_name(d->type), sqfs_reader_type_name(t), t);
		if (t == SQFS_REG)
			need = SQFS_REG_SIZE;
		else if (t == SQFS_LREG)
			need = SQFS_LREG_SIZE;
		r = squashfs_meta_read(&s->fs, &blk, &off, b, need, s->fs.inode_table,
				  s->fs.dir_table, "inode table", e);
		if (r < 0)
			return r;
		if (t == SQFS_REG)
			d->size = get_le32(b + 12);
		else if (t == SQFS_LREG)
			d->size = get_le64(b + 8);
		else if (d->type == SQFS_SYMLINK && get_le32(b + 4) > SQFS_SYMLINK_MAX)
			return err_set(e, EI_ECORRUPT,
				       "squashfs: symlink '%.*s' target of %u bytes exceeds %u",
				       (int)d->name_len, (const char *)d->name,
				       get_le32(b + 4), SQFS_SYMLINK_MAX);
	}
	return 0;
}

static int sqfs_reader_root(struct vdisk *vd, struct err *e)
{
	struct sqfs_reader *s = vd->priv;
	uint8_t hdr[SQFS_INODE_HDR], b[SQFS_LDIR_SIZE];
	uint64_t blk, size, dblk;
	uint32_t off, doff, start;
	unsigned type;
	int r;

	if ((s->fs.root_ref & 0xffff) >= SQFS_META_SIZE || s->fs.root_ref >> 48)
		return err_set(e, EI_ECORRUPT,
			       "squashfs: root_inode offset %llu is not below 8192",
			       (unsigned long long)(s->fs.root_ref & 0xffff));
	r = squashfs_inode_read(&s->fs, s->fs.root_ref, hdr, NULL, 0, &blk, &off, e);
	if (r < 0)
		return r;
	type = get_le16(hdr);
	if (type != SQFS_DIR && type != SQFS_LDIR)
		return err_set(e, EI_ECORRUPT,
			       "squashfs: root inode is a %s (type %u), not a directory",
			       sqfs_reader_type_name(type), type);
	r = squashfs_meta_read(&s->fs, &blk, &off, b, type == SQFS_DIR ? SQFS_DIR_SIZE :
			  SQFS_LDIR_SIZE, s->fs.inode_table, s->fs.dir_table,
			  "inode table", e);
	if (r < 0)
		return r;
	if (type == SQFS_DIR) {
		start = get_le32(b);
		size = get_le16(b + 8);
		doff = get_le16(b + 10);
	} else {
		size = get_le32(b + 4);
		start = get_le32(b + 8);
		doff = get_le16(b + 18);
	}
	if (size < 3 || doff >= SQFS_META_SIZE)
		return err_set(e, EI_ECORRUPT,
			       "squashfs: root directory has file_size %llu, offset %u",
			       (unsigned long long)size, doff);
	size -= 3;
	if (size > min_u64(vd->opts.max_table, SQR_MAX_LISTING))
		return err_set(e, EI_ELIMIT,
			       "squashfs: root directory listing of %llu bytes exceeds the limit of %llu",
			       (unsigned long long)size,
			       (unsigned long long)min_u64(vd->opts.max_table,
							   SQR_MAX_LISTING));
	s->listing = malloc(size ? size : 1);
	if (!s->listing)
		return err_set(e, -ENOMEM, "squashfs: out of memory");
	dblk = s->fs.dir_table + start;
	r = squashfs_meta_read(&s->fs, &dblk, &doff, s->listing, size, s->fs.dir_table,
			  s->fs.dir_end, "directory table", e);
	if (r < 0)
		return r;
	r = sqfs_reader_listing(vd, size, get_le32(hdr + 12), e);
	if (r < 0)
		return r;
	return sqfs_reader_check_entries(vd, e);
}

static int sqfs_reader_is_name(const struct sqfs_reader_entry *d, const char *name, size_t len)
{
	return d->name_len == len && !memcmp(d->name, name, len);
}

/* "pN.img" (N decimal, no leading zero): a file of partitions=on. */
static int sqfs_reader_is_part(const struct sqfs_reader_entry *d)
{
	const uint8_t *n = d->name;
	size_t digits = d->name_len > 5 ? d->name_len - 5 : 0;

	if (!digits || n[0] != 'p' || n[1] == '0' ||
	    memcmp(n + 1 + digits, ".img", 4))
		return 0;
	for (size_t i = 1; i <= digits; i++)
		if (n[i] < '0' || n[i] > '9')
			return 0;
	return 1;
}

/* The entry called @name (@len bytes): its index, or -1. */
static long sqfs_reader_find(const struct sqfs_reader *s, const char *name, size_t len)
{
	for (size_t i = 0; i < s->nent; i++)
		if (sqfs_reader_is_name(&s->ent[i], name, len))
			return (long)i;
	return -1;
}

/*
 * partitions=on without disk.img (the writer's name=): partitions.txt, one
 * pN.img or more and exactly one other file, all regular.  Returns that
 * file's index, or -1 when the root is not laid out so.
 */
static long sqfs_reader_parts_layout(const struct sqfs_reader *s)
{
	size_t nparts = 0;
	long disk = -1;

	if (sqfs_reader_find(s, SQFS_PARTS_MANIFEST, strlen(SQFS_PARTS_MANIFEST)) < 0)
		return -1;
	for (size_t i = 0; i < s->nent; i++) {
		const struct sqfs_reader_entry *d = &s->ent[i];

		if (d->type != SQFS_REG)
			return -1;
		if (sqfs_reader_is_part(d))
			nparts++;
		else if (!sqfs_reader_is_name(d, SQFS_PARTS_MANIFEST, strlen(SQFS_PARTS_MANIFEST))) {
			if (disk >= 0)
				return -1;
			disk = (long)i;
		}
	}
	return nparts ? disk : -1;
}

/*
 * Pick the disk.  A squashfs is a disk image only when it says so: its
 * root holds disk.img, or it carries an edgeimg recipe (whose name= is the
 * disk), or its root is the layout of partitions=on.  Any other squashfs
 * is a root filesystem, whose files are never taken for a disk.
 */
static int sqfs_reader_pick(struct vdisk *vd, struct err *e)
{
	struct sqfs_reader *s = vd->priv;
	const char *name = SQFS_DEFAULT_NAME, *why = "";
	size_t len = strlen(name);
	long i = sqfs_reader_find(s, name, len);

	if (i < 0 && s->recipe[0] && !squashfs_recipe_is_tree(s->recipe)) {
		const char *p = strstr(s->recipe, ",name=");

		if (!p)
			return err_set(e, EI_ECORRUPT,
				       "squashfs: %s: the edgeimg recipe names no disk file (no name=)",
				       vd->io->name);
		name = p + 6;
		len = strcspn(name, ",");
		i = sqfs_reader_find(s, name, len);
		why = " (the recipe's name=)";
		if (i < 0)
			return err_set(e, EI_ECORRUPT,
				       "squashfs: %s: the recipe names the disk '%.*s', which is not in the root directory",
				       vd->io->name, (int)min_u64(len, 72), name);
	}
	if (i < 0) {
		i = sqfs_reader_parts_layout(s);
		if (i >= 0) {
			s->file = (size_t)i;
			return 0;
		}
		return err_set(e, EI_EFORMAT,
			       "squashfs: %s is a squashfs root filesystem (%zu entr%s in /, no %s): not a disk image; read its bytes with -f raw",
			       vd->io->name, s->nent, s->nent == 1 ? "y" : "ies",
			       SQFS_DEFAULT_NAME);
	}
	if (s->ent[i].type != SQFS_REG)
		return err_set(e, EI_EUNSUP,
			       "squashfs: %.*s%s is a %s, not a regular file (links are never followed)",
			       (int)len, name, why, sqfs_reader_type_name(s->ent[i].type));
	s->file = (size_t)i;
	return 0;
}

static uint32_t sqfs_reader_blen(const struct sqfs_reader *s, uint64_t i)
{
	return (uint32_t)min_u64(s->fs.bs, s->fsize - i * s->fs.bs);
}

/* Read and check the block list of the file inode at @blk/@off. */
static int sqfs_reader_blocks(struct vdisk *vd, uint64_t blk, uint32_t off,
		      struct err *e)
{
	struct sqfs_reader *s = vd->priv;
	uint64_t pos = 0, ncum = s->nblocks / SQR_CUM_STEP + 1;
	uint8_t chunk[4096];

	if (s->nblocks * 4 > vd->opts.max_table)
		return err_set(e, EI_ELIMIT,
			       "squashfs: block list of %llu blocks exceeds the limit of %llu bytes",
			       (unsigned long long)s->nblocks,
			       (unsigned long long)vd->opts.max_table);
	s->words = malloc(s->nblocks ? s->nblocks * 4 : 1);
	s->cum = malloc(ncum * sizeof(*s->cum));
	if (!s->words || !s->cum)
		return err_set(e, -ENOMEM, "squashfs: out of memory");
	for (uint64_t i = 0; i < s->nblocks; i++) {
		uint32_t w, size;

		if (!(i % (sizeof(chunk) / 4))) {
			size_t n = min_u64(sizeof(chunk) / 4, s->nblocks - i) * 4;
			int r = squashfs_meta_read(&s->fs, &blk, &off, chunk, n,
					      s->fs.inode_table, s->fs.dir_table,
					      "block list", e);

			if (r < 0)
				return r;
		}
		if (!(i % SQR_CUM_STEP))
			s->cum[i / SQR_CUM_STEP] = pos;
		w = get_le32(chunk + 4 * (i % (sizeof(chunk) / 4)));
		size = w & SQFS_BLOCK_SIZE_MASK;
		if (w >> 25)
			return err_set(e, EI_ECORRUPT,
				       "squashfs: block %llu has size word 0x%08x with unknown bits",
				       (unsigned long long)i, w);
		if (!size) {
			s->words[i] = 0;
			s->sparse += sqfs_reader_blen(s, i);
			continue;
		}
		if (size > s->fs.bs)
			return err_set(e, EI_ECORRUPT,
				       "squashfs: block %llu size %u exceeds block_size %u",
				       (unsigned long long)i, size, s->fs.bs);
		if ((w & SQFS_BLOCK_UNCOMPRESSED) && size != sqfs_reader_blen(s, i))
			return err_set(e, EI_ECORRUPT,
				       "squashfs: uncompressed block %llu is %u bytes, expected %u",
				       (unsigned long long)i, size, sqfs_reader_blen(s, i));
		s->words[i] = w;
		pos += size;
	}
	if (pos && (!range_ok(s->start, pos, s->fs.bytes_used) ||
		    s->start < SQFS_SUPER_SIZE))
		return err_set(e, EI_ECORRUPT,
			       "squashfs: data of %llu bytes at %llu is outside the image (bytes_used %llu)",
			       (unsigned long long)pos, (unsigned long long)s->start,
			       (unsigned long long)s->fs.bytes_used);
	return 0;
}

static int sqfs_reader_file(struct vdisk *vd, struct err *e)
{
	struct sqfs_reader *s = vd->priv;
	struct sqfs_reader_entry *d = &s->ent[s->file];
	uint8_t hdr[SQFS_INODE_HDR], b[SQFS_LREG_SIZE];
	uint64_t blk;
	uint32_t off, xattr = SQFS_INVALID_XATTR;
	unsigned type;
	int r;

	r = squashfs_inode_read(&s->fs, d->ref, hdr, NULL, 0, &blk, &off, e);
	if (r < 0)
		return r;
	type = get_le16(hdr);
	r = squashfs_meta_read(&s->fs, &blk, &off, b, type == SQFS_REG ? SQFS_REG_SIZE :
			  SQFS_LREG_SIZE, s->fs.inode_table, s->fs.dir_table,
			  "inode table", e);
	if (r < 0)
		return r;
	if (type == SQFS_REG) {
		s->start = get_le32(b);
		s->frag = get_le32(b + 4);
		s->frag_off = get_le32(b + 8);
		s->fsize = get_le32(b + 12);
	} else {
		s->start = get_le64(b);
		s->fsize = get_le64(b + 8);
		s->frag = get_le32(b + 28);
		s->frag_off = get_le32(b + 32);
		xattr = get_le32(b + 36);
	}
	if (xattr != SQFS_INVALID_XATTR && xattr >= s->fs.xattr_ids)
		return err_set(e, EI_ECORRUPT,
			       "squashfs: %.*s has xattr index %u, xattr_ids is %u",
			       (int)d->name_len, (const char *)d->name, xattr,
			       s->fs.xattr_ids);
	if (s->fsize > vd->opts.max_size)
		return err_set(e, EI_ELIMIT,
			       "squashfs: %.*s of %llu bytes exceeds the limit of %llu",
			       (int)d->name_len, (const char *)d->name,
			       (unsigned long long)s->fsize,
			       (unsigned long long)vd->opts.max_size);
	if (s->frag != SQFS_INVALID_FRAG) {
		s->nblocks = s->fsize >> s->fs.log;
		s->tail_len = (uint32_t)(s->fsize & (s->fs.bs - 1));
		if (!s->tail_len)
			return err_set(e, EI_ECORRUPT,
				       "squashfs: %.*s has a fragment but its size %llu is a multiple of the block size",
				       (int)d->name_len, (const char *)d->name,
				       (unsigned long long)s->fsize);
		if (s->frag >= s->fs.fragments)
			return err_set(e, EI_ECORRUPT,
				       "squashfs: fragment index %u is not below the %u fragments",
				       s->frag, s->fs.fragments);
		if ((uint64_t)s->frag_off + s->tail_len > s->fs.bs)
			return err_set(e, EI_ECORRUPT,
				       "squashfs: fragment offset %u + tail %u exceeds block_size %u",
				       s->frag_off, s->tail_len, s->fs.bs);
	} else {
		s->nblocks = (s->fsize + s->fs.bs - 1) >> s->fs.log;
	}
	return sqfs_reader_blocks(vd, blk, off, e);
}

int squashfs_frag_entry(struct squashfs_fs *fs, uint32_t idx, uint64_t *start,
			uint32_t *w, struct err *e)
{
	uint64_t blk = fs->frag_ptr[idx / (SQFS_META_SIZE / 16)];
	uint32_t off = (idx % (SQFS_META_SIZE / 16)) * 16, size;
	uint8_t ent[16];
	int r;

	r = squashfs_meta_read(fs, &blk, &off, ent, 16, fs->frag_ptr[0], fs->frag_table,
			       "fragment table", e);
	if (r < 0)
		return r;
	*start = get_le64(ent);
	*w = get_le32(ent + 8);
	size = *w & SQFS_BLOCK_SIZE_MASK;
	if (*w >> 25 || !size || size > fs->bs)
		return err_set(e, EI_ECORRUPT,
			       "squashfs: fragment %u has size word 0x%08x, allowed 1..%u",
			       idx, *w, fs->bs);
	if (*start < SQFS_SUPER_SIZE || !range_ok(*start, size, fs->bytes_used))
		return err_set(e, EI_ECORRUPT,
			       "squashfs: fragment %u at %llu+%u is outside the image",
			       idx, (unsigned long long)*start, size);
	return 0;
}

/* Read the fragment holding the file's tail into s->tail. */
static int sqfs_reader_tail(struct vdisk *vd, struct err *e)
{
	struct sqfs_reader *s = vd->priv;
	uint64_t fstart;
	uint32_t w, size;
	size_t len = s->fs.bs;
	int r;

	r = squashfs_frag_entry(&s->fs, s->frag, &fstart, &w, e);
	if (r < 0)
		return r;
	size = w & SQFS_BLOCK_SIZE_MASK;
	if (w & SQFS_BLOCK_UNCOMPRESSED) {
		r = io_read(vd->io, s->dbuf, size, fstart, "squashfs: fragment", e);
		len = size;
	} else {
		r = io_read(vd->io, s->fs.cbuf, size, fstart, "squashfs: fragment", e);
		if (r >= 0)
			r = squashfs_decompress(s->fs.comp, &s->fs.ctx, s->fs.cbuf, size,
						s->dbuf, &len, s->fs.bs, e);
		if (r < 0)
			err_prefix(e, "squashfs: fragment %u", s->frag);
	}
	s->dblock = UINT64_MAX;
	if (r < 0)
		return r;
	if ((uint64_t)s->frag_off + s->tail_len > len)
		return err_set(e, EI_ECORRUPT,
			       "squashfs: fragment %u holds %zu bytes, the tail needs %u at %u",
			       s->frag, len, s->tail_len, s->frag_off);
	s->tail = malloc(s->tail_len);
	if (!s->tail)
		return err_set(e, -ENOMEM, "squashfs: out of memory");
	memcpy(s->tail, s->dbuf + s->frag_off, s->tail_len);
	return 0;
}

int squashfs_recipe_is_tree(const char *recipe)
{
	return strstr(recipe, ",files=on") || !strstr(recipe, ",name=");
}

int squashfs_recipe_read(struct io *io, uint64_t bytes_used, char *out, size_t out_len,
			struct err *e)
{
	size_t tl = strlen(SQFS_RECIPE_TAG), len, i;
	char buf[SQFS_RECIPE_MAX + 32];
	int r;

	out[0] = 0;
	if (io->size <= bytes_used)
		return 0;
	len = min_u64(sizeof(buf), io->size - bytes_used);
	if (len <= tl)
		return 0;
	r = io_read(io, buf, len, bytes_used, "squashfs: recipe", e);
	if (r < 0)
		return r;
	if (memcmp(buf, SQFS_RECIPE_TAG, tl))
		return 0;
	for (i = tl; i < len && buf[i] != '\n'; i++)
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			return 0;
	if (i == len || i - tl >= out_len)
		return 0;
	memcpy(out, buf + tl, i - tl);
	out[i - tl] = 0;
	return 0;
}

/* The recipe an edgeimg writer left after bytes_used, if any. */
static int sqfs_reader_read_recipe(struct vdisk *vd, struct err *e)
{
	struct sqfs_reader *s = vd->priv;

	return squashfs_recipe_read(vd->io, s->fs.bytes_used, s->recipe, sizeof(s->recipe), e);
}

int squashfs_fs_open(struct squashfs_fs *fs, struct io *io, uint64_t max_table,
		     struct err *e)
{
	uint8_t sb[SQFS_SUPER_SIZE];
	unsigned comp_id, major, minor;
	int r;

	memset(fs, 0, sizeof(*fs));
	fs->io = io;
	fs->max_table = max_table;
	fs->opt_level = -1;
	fs->xattr_table = SQFS_INVALID_BLK;
	if (io->size < SQFS_SUPER_SIZE)
		return err_set(e, EI_ETRUNC,
			       "squashfs: file of %llu bytes is shorter than the 96-byte superblock",
			       (unsigned long long)io->size);
	r = io_read(io, sb, sizeof(sb), 0, "squashfs: superblock", e);
	if (r < 0)
		return r;
	if (get_le32(sb) != SQFS_MAGIC)
		return err_set(e, EI_EFORMAT, "squashfs: no 'hsqs' magic");
	major = get_le16(sb + SB_MAJOR);
	minor = get_le16(sb + SB_MINOR);
	if (major != 4 || minor != 0)
		return err_set(e, EI_EUNSUP,
			       "squashfs: version %u.%u is not supported (4.0 is)",
			       major, minor);
	comp_id = get_le16(sb + SB_COMPRESSION);
	fs->comp = squashfs_comp_by_id(comp_id);
	if (!fs->comp)
		return err_set(e, EI_EUNSUP, "squashfs: compression id %u is unknown",
			       comp_id);
	if (squashfs_comp_built(fs->comp) < 0)
		return err_set(e, EI_EUNSUP,
			       "squashfs: %s compression is not supported by this build",
			       fs->comp->name);
	fs->bs = get_le32(sb + SB_BLOCK_SIZE);
	fs->log = get_le16(sb + SB_BLOCK_LOG);
	if (!is_pow2(fs->bs) || fs->bs < (1u << SQFS_MIN_LOG) ||
	    fs->bs > (1u << SQFS_MAX_LOG))
		return err_set(e, EI_ECORRUPT,
			       "squashfs: block_size %u is not a power of two between 4096 and 1048576",
			       fs->bs);
	if (fs->log < SQFS_MIN_LOG || fs->log > SQFS_MAX_LOG || fs->bs != 1u << fs->log)
		return err_set(e, EI_ECORRUPT,
			       "squashfs: block_log %u does not match block_size %u",
			       fs->log, fs->bs);
	fs->flags = get_le16(sb + SB_FLAGS);
	if (fs->flags & ~SQFS_FLAGS_KNOWN)
		return err_set(e, EI_EUNSUP, "squashfs: unknown flags 0x%04x",
			       fs->flags & ~SQFS_FLAGS_KNOWN);
	fs->bytes_used = get_le64(sb + SB_BYTES_USED);
	if (fs->bytes_used > io->size || fs->bytes_used < SQFS_SUPER_SIZE)
		return err_set(e, EI_ETRUNC,
			       "squashfs: bytes_used %llu is not between 96 and the file size %llu",
			       (unsigned long long)fs->bytes_used,
			       (unsigned long long)io->size);
	fs->inodes = get_le32(sb + SB_INODES);
	fs->mkfs_time = get_le32(sb + SB_MKFS_TIME);
	fs->fragments = get_le32(sb + SB_FRAGMENTS);
	fs->no_ids = get_le16(sb + SB_NO_IDS);
	fs->root_ref = get_le64(sb + SB_ROOT_INODE);
	fs->inode_table = get_le64(sb + SB_INODE_TABLE);
	fs->dir_table = get_le64(sb + SB_DIR_TABLE);
	fs->frag_table = get_le64(sb + SB_FRAG_TABLE);
	if ((fs->root_ref & 0xffff) >= SQFS_META_SIZE || fs->root_ref >> 48)
		return err_set(e, EI_ECORRUPT,
			       "squashfs: root_inode offset %llu is not below 8192",
			       (unsigned long long)(fs->root_ref & 0xffff));
	if (!fs->inodes)
		return err_set(e, EI_ECORRUPT, "squashfs: inodes is 0");
	fs->cbuf = malloc(fs->bs > SQFS_META_SIZE ? fs->bs : SQFS_META_SIZE);
	fs->mc = malloc(SQFS_MCACHE * sizeof(*fs->mc));
	if (!fs->cbuf || !fs->mc)
		return err_set(e, -ENOMEM, "squashfs: out of memory");
	for (unsigned i = 0; i < SQFS_MCACHE; i++)
		fs->mc[i].pos = UINT64_MAX;
	r = squashfs_tables(fs, sb, e);
	if (r < 0)
		return r;
	return squashfs_read_comp_opts(fs, e);
}

void squashfs_fs_close(struct squashfs_fs *fs)
{
	if (fs->comp)
		squashfs_ctx_free(fs->comp, fs->ctx);
	free(fs->frag_ptr);
	free(fs->id_ptr);
	free(fs->xattr_ptr);
	free(fs->cbuf);
	free(fs->mc);
	memset(fs, 0, sizeof(*fs));
}

int squashfs_open(struct vdisk *vd, struct err *e)
{
	struct sqfs_reader *s;
	int r;

	if (vd->io->flags & IO_STREAM)
		return err_set(e, EI_EUNSUP, "squashfs: %s is not seekable", vd->io->name);
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, -ENOMEM, "squashfs: out of memory");
	vd->priv = s;
	s->dblock = UINT64_MAX;
	s->frag = SQFS_INVALID_FRAG;
	r = squashfs_fs_open(&s->fs, vd->io, vd->opts.max_table, e);
	if (r < 0)
		goto fail;
	s->dbuf = malloc(s->fs.bs);
	if (!s->dbuf) {
		r = err_set(e, -ENOMEM, "squashfs: out of memory");
		goto fail;
	}
	r = sqfs_reader_root(vd, e);
	if (r < 0)
		goto fail;
	r = sqfs_reader_read_recipe(vd, e);
	if (r < 0)
		goto fail;
	r = sqfs_reader_pick(vd, e);
	if (r < 0)
		goto fail;
	r = sqfs_reader_file(vd, e);
	if (r < 0)
		goto fail;
	if (s->frag != SQFS_INVALID_FRAG && (r = sqfs_reader_tail(vd, e)) < 0)
		goto fail;
	vd->size = s->fsize;
	return 0;
fail:
	squashfs_close(vd);
	return r;
}

void squashfs_close(struct vdisk *vd)
{
	struct sqfs_reader *s = vd->priv;

	if (!s)
		return;
	squashfs_fs_close(&s->fs);
	free(s->listing);
	free(s->ent);
	free(s->words);
	free(s->cum);
	free(s->tail);
	free(s->dbuf);
	free(s);
	vd->priv = NULL;
}

/* The on-disk position of block @i. */
static uint64_t sqfs_reader_block_pos(const struct sqfs_reader *s, uint64_t i)
{
	uint64_t pos = s->start + s->cum[i / SQR_CUM_STEP];

	for (uint64_t j = i - i % SQR_CUM_STEP; j < i; j++)
		pos += s->words[j] & SQFS_BLOCK_SIZE_MASK;
	return pos;
}

/* Decompress block @i into @dst (sqfs_reader_blen() bytes). */
static int sqfs_reader_block(struct vdisk *vd, uint64_t i, uint8_t *dst, struct err *e)
{
	struct sqfs_reader *s = vd->priv;
	uint32_t w = s->words[i], size = w & SQFS_BLOCK_SIZE_MASK;
	uint64_t pos = sqfs_reader_block_pos(s, i);
	size_t len = sqfs_reader_blen(s, i);
	int r;

	if (w & SQFS_BLOCK_UNCOMPRESSED)
		return io_read(vd->io, dst, size, pos, "squashfs: data block", e);
	r = io_read(vd->io, s->fs.cbuf, size, pos, "squashfs: data block", e);
	if (r >= 0)
		r = squashfs_decompress(s->fs.comp, &s->fs.ctx, s->fs.cbuf, size, dst,
					&len, s->fs.bs, e);
	if (r < 0) {
		err_prefix(e, "squashfs: block %llu", (unsigned long long)i);
		return r;
	}
	if (len != sqfs_reader_blen(s, i))
		return err_set(e, EI_ECORRUPT,
			       "squashfs: block %llu decompressed to %zu bytes, expected %u",
			       (unsigned long long)i, len, sqfs_reader_blen(s, i));
	return 0;
}

/*
 * One piece: a block (sparse ones are holes, uncompressed ones stored as
 * is), or the tail, held in memory since open.
 */
static int sqfs_reader_piece(struct vdisk *vd, uint64_t off, uint64_t len,
		     struct map_run *run, struct err *e)
{
	struct sqfs_reader *s = vd->priv;
	uint64_t i = off >> s->fs.log;
	uint32_t in = (uint32_t)(off & (s->fs.bs - 1));

	(void)e;
	if (i >= s->nblocks) {
		run->src = MAP_DECODE;
		run->len = len;
		return 0;
	}
	run->len = min_u64(len, sqfs_reader_blen(s, i) - in);
	if (!s->words[i]) {
		run->type = EXT_HOLE;
	} else if (s->words[i] & SQFS_BLOCK_UNCOMPRESSED) {
		run->src = MAP_IO;
		run->io = vd->io;
		run->host = sqfs_reader_block_pos(s, i) + in;
		run->what = "squashfs: data block";
	} else {
		run->src = MAP_DECODE;
	}
	return 0;
}

int squashfs_map(struct vdisk *vd, uint64_t off, uint64_t len,
		 struct map_run *run, struct err *e)
{
	return map_pieces(vd, off, len, run, sqfs_reader_piece, e);
}

/* Compressed blocks and the tail. */
int squashfs_decode(struct vdisk *vd, void *buf, size_t len, uint64_t off,
		    struct err *e)
{
	struct sqfs_reader *s = vd->priv;
	uint8_t *d = buf;
	uint64_t tail_at = s->nblocks << s->fs.log;

	while (len) {
		uint64_t i = off >> s->fs.log;
		uint32_t in = (uint32_t)(off & (s->fs.bs - 1));
		size_t n;
		int r;

		if (off >= tail_at) {
			memcpy(d, s->tail + (off - tail_at), len);
			return 0;
		}
		n = (size_t)min_u64(len, sqfs_reader_blen(s, i) - in);
		if (!s->words[i] || (s->words[i] & SQFS_BLOCK_UNCOMPRESSED))
			return err_set(e, -EIO, "squashfs: block %llu is not compressed",
				       (unsigned long long)i);
		if (!in && n == sqfs_reader_blen(s, i)) {
			r = sqfs_reader_block(vd, i, d, e);
			if (r < 0)
				return r;
		} else {
			if (s->dblock != i) {
				s->dblock = UINT64_MAX;
				r = sqfs_reader_block(vd, i, s->dbuf, e);
				if (r < 0)
					return r;
				s->dblock = i;
			}
			memcpy(d, s->dbuf + in, n);
		}
		d += n;
		off += n;
		len -= n;
	}
	return 0;
}

int squashfs_info(struct vdisk *vd, struct info *out, struct err *e)
{
	struct sqfs_reader *s = vd->priv;
	struct sqfs_reader_entry *d = &s->ent[s->file];

	(void)e;
	info_str(out, "compression", "%s", s->fs.comp->name);
	if (s->fs.opt_level >= 0)
		info_u64(out, "compression-level", (uint64_t)s->fs.opt_level);
	info_u64(out, "block-size", s->fs.bs);
	info_u64(out, "bytes-used", s->fs.bytes_used);
	info_u64(out, "inodes", s->fs.inodes);
	info_u64(out, "fragments", s->fs.fragments);
	info_u64(out, "mkfs-time", s->fs.mkfs_time);
	info_str(out, "flags", "0x%04x", s->fs.flags);
	info_str(out, "disk-file", "%.*s", (int)d->name_len, (const char *)d->name);
	info_u64(out, "sparse-bytes", s->sparse);
	info_u64(out, "root-entries", s->nent);
	info_list(out, "files");         /* the first 40: 5 info nodes each */
	for (size_t i = 0; i < s->nent && i < 40; i++) {
		d = &s->ent[i];
		info_begin(out, NULL);
		info_str(out, "name", "%.*s", (int)d->name_len, (const char *)d->name);
		info_str(out, "type", "%s", sqfs_reader_type_name(d->type));
		if (d->type == SQFS_REG)
			info_u64(out, "size", d->size);
		info_end(out);
	}
	info_list_end(out);
	/* The recipe is info's own line (squashfs_recipe()), as for qcow2. */
	return 0;
}

int squashfs_recipe(struct vdisk *vd, char *buf, size_t len, struct err *e)
{
	struct sqfs_reader *s = vd->priv;
	size_t n = strlen(s->recipe);

	if (!n)
		return 0;
	if (n + 1 > len)
		return err_set(e, -ENOSPC, "squashfs: recipe of %zu bytes does not fit", n);
	memcpy(buf, s->recipe, n + 1);
	return (int)n;
}
