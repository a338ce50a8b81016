// SPDX-License-Identifier: MIT
/*
 * A squashfs 4.0 root filesystem as a file-view source (files/ftree.h),
 * read from the bytes of a vdisk (the squashfs file itself, or a
 * partition holding one) through the metadata reader squashfs-read.c
 * shares (kernel Documentation/filesystems/squashfs.rst, squashfs-tools'
 * squashfs_fs.h).  Own code rather than squashfs-tools-ng's library: the
 * image is hostile and read through edgeimg's vdisk, and every field is
 * checked before use (../shared/HOSTILE-INPUTS.md, rows S1-S13).
 *
 * The walk is pre-order from the root, each directory's listing parsed
 * into memory, sorted by name (duplicates refused) while its entries are
 * visited; what grows with the tree: one record per directory and per
 * hard-linked inode (its first path), for loops and links.  A regular
 * file's block list is read as the file is read, a few hundred words at a
 * time; the last data block and the last fragment block are cached.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "core/info.h"
#include "core/limits.h"
#include "core/vdisk.h"
#include "crypto/sha.h"
#include "files/ftree.h"
#include "squashfs.h"

#define SQF_HELD_MAX (64u << 20)        /* listing bytes held on the path */
#define SQF_ENTRIES_MAX (1u << 26)      /* entries in one walk */
#define SQF_XATTR_BYTES_MAX (4u << 20)  /* names and values of one inode */
#define SQF_XATTR_NAME_MAX 255          /* as XATTR_NAME_MAX */
#define SQF_WORDS 512                   /* block list words read at once */
#define SQF_LISTING_KEY (1ull << 63)    /* seen-set keys of listings */

/* Inodes seen: directories, listings and hard-linked inodes. */
struct sqf_seen {
	uint64_t key;           /* inode number, or SQF_LISTING_KEY | listing */
	uint64_t ref;
	char *path;             /* a hard link's first path; NULL for a directory */
	int used;
};

/* An inode, decoded. */
struct sqf_inode {
	unsigned type;          /* basic type, 1..7 */
	unsigned raw_type;
	uint32_t mode, uid, gid, mtime, number, nlink, xattr;
	uint32_t dir_start, dir_off;
	uint64_t dir_size;      /* the listing's bytes (file_size - 3) */
	uint64_t start, size;   /* regular files */
	uint64_t sparse;        /* extended regular files: bytes saved by holes */
	uint32_t frag, frag_off;
	uint64_t bl_blk;        /* the block list in the inode table */
	uint32_t bl_off;
	uint32_t rdev;
};

struct sqf_src {
	struct ft_source src;
	struct squashfs_fs fs;
	struct io io;           /* the vdisk's bytes, for fs */
	struct vdisk *vd;
	char *what;
	uint32_t *ids;
	int walked;

	/* the walk */
	ft_visit_fn visit;
	void *arg;
	char path[FT_PATH_MAX + 1];
	uint64_t held, entries;
	struct sqf_seen *seen;
	size_t nseen, cap;

	/* an entry's symlink target and xattrs */
	char target[SQFS_SYMLINK_MAX + 1];
	struct ft_xattr *xa;
	uint8_t *xbuf;
	size_t xbuf_cap;

	/* data: the last block decompressed, the last fragment */
	uint8_t *dbuf, *fbuf;
	uint64_t dfile, dblock; /* dfile: the file's serial */
	uint32_t fidx, flen;    /* fidx SQFS_INVALID_FRAG: none */
	uint64_t serial;
};

/* A regular file being visited. */
struct sqf_file {
	struct sqf_src *q;
	const char *path;
	uint64_t serial;
	uint64_t size, start, nblocks;
	uint32_t frag, frag_off, tail_len;
	uint64_t bl_blk;
	uint32_t bl_off;
	/* the block list cursor: words [wbase, wbase + wn) in w */
	uint64_t wbase, wn, wpos; /* wpos: data position of block wbase */
	uint64_t nblk;          /* metadata position after word wbase + wn */
	uint32_t noff;
	uint32_t w[SQF_WORDS];
	uint64_t pos[SQF_WORDS];
};

static const char *sqf_p(const struct sqf_src *q, char *buf, size_t len)
{
	char tmp[FT_PATH_MAX + 2];

	tmp[0] = '/';
	memcpy(tmp + 1, q->path, strlen(q->path) + 1);
	return text_safe(tmp, buf, len);
}

/* An EI_ECORRUPT error about the entry at q->path. */
__attribute__((format(printf, 3, 4)))
static int sqf_bad(const struct sqf_src *q, struct err *e, const char *fmt, ...)
{
	char msg[ERR_MSG_MAX], p[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_set(e, EI_ECORRUPT, "squashfs: %s: %s", sqf_p(q, p, sizeof(p)), msg);
}

/*
 * An error of the shared reader ("squashfs: inode table: ...") made to
 * name the entry: "squashfs: /etc/passwd: inode table: ...".
 */
static int sqf_name(const struct sqf_src *q, struct err *e, int r)
{
	char msg[ERR_MSG_MAX], p[256];
	const char *m = e->msg;

	if (!strncmp(m, "squashfs: ", 10))
		m += 10;
	snprintf(msg, sizeof(msg), "%s", m);
	err_set(e, r, "squashfs: %s: %s", sqf_p(q, p, sizeof(p)), msg);
	return r;
}

/* squashfs_meta_read(), its errors naming the entry. */
static int sqf_meta(struct sqf_src *q, uint64_t *blk, uint32_t *off, void *dst, size_t len,
		    uint64_t lo, uint64_t hi, const char *what, struct err *e)
{
	int r = squashfs_meta_read(&q->fs, blk, off, dst, len, lo, hi, what, e);

	return r < 0 ? sqf_name(q, e, r) : r;
}

static int sqf_io_pread(struct io *io, void *buf, size_t len, uint64_t off,
			struct err *e)
{
	struct sqf_src *q = (struct sqf_src *)((char *)io - offsetof(struct sqf_src, io));

	return vdisk_read(q->vd, buf, len, off, e);
}

static void sqf_io_close(struct io *io)
{
	(void)io;
}

static const struct io_ops sqf_io_ops = {
	.pread = sqf_io_pread,
	.close = sqf_io_close,
};

/* The seen set: open addressing on the key. */
static struct sqf_seen *sqf_seen_find(struct sqf_src *q, uint64_t key)
{
	size_t i;

	if (!q->cap)
		return NULL;
	for (i = (key * 0x9e3779b97f4a7c15ull) >> 20 & (q->cap - 1); q->seen[i].used;
	     i = (i + 1) & (q->cap - 1))
		if (q->seen[i].key == key)
			return &q->seen[i];
	return &q->seen[i];
}

static int sqf_seen_add(struct sqf_src *q, uint64_t key, uint64_t ref,
			const char *path, struct err *e)
{
	struct sqf_seen *s;

	if ((q->nseen + 1) * 2 > q->cap) {
		size_t ncap = q->cap ? q->cap * 2 : 1024;
		struct sqf_seen *old = q->seen, *n = calloc(ncap, sizeof(*n));
		size_t ocap = q->cap;

		if (!n)
			return err_set(e, -ENOMEM, "squashfs: out of memory");
		q->seen = n;
		q->cap = ncap;
		for (size_t i = 0; i < ocap; i++)
			if (old[i].used)
				*sqf_seen_find(q, old[i].key) = old[i];
		free(old);
	}
	s = sqf_seen_find(q, key);
	s->key = key;
	s->ref = ref;
	s->path = NULL;
	if (path && !(s->path = strdup(path)))
		return err_set(e, -ENOMEM, "squashfs: out of memory");
	s->used = 1;
	q->nseen++;
	return 0;
}

/* The id table's entry @i (checked below no_ids by squashfs_inode_read()). */
static int sqf_load_ids(struct sqf_src *q, struct err *e)
{
	struct squashfs_fs *fs = &q->fs;
	uint64_t blk = fs->id_ptr[0];
	uint32_t off = 0;
	uint8_t *raw;
	int r;

	q->ids = malloc((size_t)fs->no_ids * 4);
	raw = malloc((size_t)fs->no_ids * 4);
	if (!q->ids || !raw) {
		free(raw);
		return err_set(e, -ENOMEM, "squashfs: out of memory");
	}
	r = squashfs_meta_read(fs, &blk, &off, raw, (size_t)fs->no_ids * 4, fs->id_ptr[0],
			       fs->id_table, "id table", e);
	for (unsigned i = 0; r >= 0 && i < fs->no_ids; i++)
		q->ids[i] = get_le32(raw + 4 * i);
	free(raw);
	return r;
}

static int sqf_xattr_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ft_xattr *)a)->name, ((const struct ft_xattr *)b)->name);
}

/* Room for @n more bytes in q->xbuf, at *@at. */
static int sqf_xbuf(struct sqf_src *q, size_t used, size_t n, struct err *e)
{
	if (used + n > SQF_XATTR_BYTES_MAX)
		return err_set(e, EI_ELIMIT,
			       "squashfs: xattrs of more than %u bytes on one inode",
			       SQF_XATTR_BYTES_MAX);
	if (used + n > q->xbuf_cap) {
		size_t cap = q->xbuf_cap ? q->xbuf_cap : 4096;
		uint8_t *nb;

		while (cap < used + n)
			cap *= 2;
		nb = realloc(q->xbuf, cap);
		if (!nb)
			return err_set(e, -ENOMEM, "squashfs: out of memory");
		q->xbuf = nb;
		q->xbuf_cap = cap;
	}
	return 0;
}

/* The xattrs of id @id into q->xa (pointing into q->xbuf), sorted. */
static int sqf_xattrs(struct sqf_src *q, uint32_t id, unsigned *count, struct err *e)
{
	static const char *const prefix[] = { "user.", "trusted.", "security." };
	struct squashfs_fs *fs = &q->fs;
	uint64_t blk, ref, klo = fs->xattr_kv, khi;
	uint32_t off, n;
	uint8_t ent[16];
	size_t used = 0;
	size_t *name_at, *val_at;
	int r;

	*count = 0;
	if (id == SQFS_INVALID_XATTR)
		return 0;
	if (fs->xattr_table == SQFS_INVALID_BLK || id >= fs->xattr_ids)
		return sqf_bad(q, e, "xattr index %u, xattr_ids is %u", id,
			       fs->xattr_table == SQFS_INVALID_BLK ? 0 : fs->xattr_ids);
	khi = fs->xattr_ptr[0];
	blk = fs->xattr_ptr[id / (SQFS_META_SIZE / 16)];
	off = id % (SQFS_META_SIZE / 16) * 16;
	r = sqf_meta(q, &blk, &off, ent, 16, fs->xattr_ptr[0], fs->xattr_table,
			       "xattr id table", e);
	if (r < 0)
		return r;
	ref = get_le64(ent);
	n = get_le32(ent + 8);
	if (!n || n > FT_XATTRS_MAX)
		return sqf_bad(q, e, "xattr id %u has count %u, allowed 1..%u", id, n,
			       FT_XATTRS_MAX);
	if ((ref & 0xffff) >= SQFS_META_SIZE || ref >> 48)
		return sqf_bad(q, e, "xattr id %u has reference 0x%llx", id,
			       (unsigned long long)ref);
	name_at = malloc(n * sizeof(*name_at) * 2);
	if (!name_at)
		return err_set(e, -ENOMEM, "squashfs: out of memory");
	val_at = name_at + n;
	blk = klo + (ref >> 16);
	off = ref & 0xffff;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t kh[4], vh[8];
		unsigned type, nlen, plen;
		uint32_t vsize;
		uint64_t vblk;
		uint32_t voff;
		const char *pre;

		r = sqf_meta(q, &blk, &off, kh, 4, klo, khi, "xattr table", e);
		if (r < 0)
			goto out;
		type = get_le16(kh);
		nlen = get_le16(kh + 2);
		if ((type & 0xff) > 2 || (type & ~0x1ffu)) {
			r = sqf_bad(q, e, "xattr type 0x%04x is not user, trusted or security",
				    type);
			goto out;
		}
		pre = prefix[type & 0xff];
		plen = (unsigned)strlen(pre);
		if (!nlen || nlen + plen > SQF_XATTR_NAME_MAX) {
			r = sqf_bad(q, e, "xattr name_size %u, allowed 1..%u", nlen,
				    SQF_XATTR_NAME_MAX - plen);
			goto out;
		}
		r = sqf_xbuf(q, used, plen + nlen + 1, e);
		if (r < 0)
			goto out;
		name_at[i] = used;
		memcpy(q->xbuf + used, pre, plen);
		r = sqf_meta(q, &blk, &off, q->xbuf + used + plen, nlen, klo,
				       khi, "xattr table", e);
		if (r < 0)
			goto out;
		if (memchr(q->xbuf + used + plen, 0, nlen)) {
			r = sqf_bad(q, e, "xattr name holds a NUL byte");
			goto out;
		}
		q->xbuf[used + plen + nlen] = 0;
		used += plen + nlen + 1;
		r = sqf_meta(q, &blk, &off, vh, 4, klo, khi, "xattr table", e);
		if (r < 0)
			goto out;
		vsize = get_le32(vh);
		vblk = blk;
		voff = off;
		if (type & 0x100) {     /* out of line: a reference to the value */
			uint64_t vref;

			if (vsize != 8) {
				r = sqf_bad(q, e, "out-of-line xattr %s has size %u, not 8",
					    (const char *)q->xbuf + name_at[i], vsize);
				goto out;
			}
			r = sqf_meta(q, &blk, &off, vh, 8, klo, khi,
					       "xattr table", e);
			if (r < 0)
				goto out;
			vref = get_le64(vh);
			if ((vref & 0xffff) >= SQFS_META_SIZE || vref >> 48) {
				r = sqf_bad(q, e, "xattr %s has value reference 0x%llx",
					    (const char *)q->xbuf + name_at[i],
					    (unsigned long long)vref);
				goto out;
			}
			vblk = klo + (vref >> 16);
			voff = vref & 0xffff;
			r = sqf_meta(q, &vblk, &voff, vh, 4, klo, khi,
					       "xattr table", e);
			if (r < 0)
				goto out;
			vsize = get_le32(vh);
		}
		if (vsize > FT_XATTR_MAX) {
			r = sqf_bad(q, e, "xattr %s has a value of %u bytes, allowed %u",
				    (const char *)q->xbuf + name_at[i], vsize, FT_XATTR_MAX);
			goto out;
		}
		r = sqf_xbuf(q, used, vsize, e);
		if (r < 0)
			goto out;
		r = sqf_meta(q, &vblk, &voff, q->xbuf + used, vsize, klo, khi,
				       "xattr table", e);
		if (r < 0)
			goto out;
		if (!(type & 0x100)) {
			blk = vblk;
			off = voff;
		}
		val_at[i] = used;
		q->xa[i].size = vsize;
		used += vsize;
	}
	/* q->xbuf no longer moves: the pointers */
	for (uint32_t i = 0; i < n; i++) {
		q->xa[i].name = (const char *)q->xbuf + name_at[i];
		q->xa[i].value = q->xbuf + val_at[i];
	}
	qsort(q->xa, n, sizeof(*q->xa), sqf_xattr_cmp);
	for (uint32_t i = 1; i < n; i++)
		if (!strcmp(q->xa[i - 1].name, q->xa[i].name)) {
			r = sqf_bad(q, e, "xattr %s appears twice", q->xa[i].name);
			goto out;
		}
	*count = n;
out:
	free(name_at);
	return r;
}

/* Read and check the inode at @ref, @dtype the directory entry's type. */
static int sqf_inode(struct sqf_src *q, uint64_t ref, unsigned dtype, struct sqf_inode *ino,
		     struct err *e)
{
	struct squashfs_fs *fs = &q->fs;
	uint8_t hdr[SQFS_INODE_HDR], b[SQFS_LREG_SIZE];
	uint64_t blk;
	uint32_t off;
	unsigned t;
	size_t need;
	int r;

	memset(ino, 0, sizeof(*ino));
	ino->xattr = SQFS_INVALID_XATTR;
	ino->frag = SQFS_INVALID_FRAG;
	r = squashfs_inode_read(fs, ref, hdr, NULL, 0, &blk, &off, e);
	if (r < 0)
		return sqf_name(q, e, r);
	t = get_le16(hdr);
	ino->raw_type = t;
	ino->type = t > SQFS_SOCKET ? t - 7 : t;
	if (t < SQFS_DIR || t > SQFS_LSOCKET || ino->type != dtype)
		return sqf_bad(q, e, "inode type %u, its directory entry says %u", t, dtype);
	ino->mode = get_le16(hdr + 2) & 07777;
	ino->uid = q->ids[get_le16(hdr + 4)];
	ino->gid = q->ids[get_le16(hdr + 6)];
	ino->mtime = get_le32(hdr + 8);
	ino->number = get_le32(hdr + 12);
	ino->nlink = 1;
	switch (t) {
	case SQFS_DIR: need = SQFS_DIR_SIZE; break;
	case SQFS_LDIR: need = SQFS_LDIR_SIZE; break;
	case SQFS_REG: need = SQFS_REG_SIZE; break;
	case SQFS_LREG: need = SQFS_LREG_SIZE; break;
	case SQFS_SYMLINK: case SQFS_LSYMLINK: need = 8; break;
	case SQFS_BLKDEV: case SQFS_CHRDEV: need = 8; break;
	case SQFS_BLKDEV + 7: case SQFS_CHRDEV + 7: need = 12; break;
	case SQFS_FIFO: case SQFS_SOCKET: need = 4; break;
	default: need = 8; break;       /* extended fifo, socket */
	}
	r = sqf_meta(q, &blk, &off, b, need, fs->inode_table, fs->dir_table,
			       "inode table", e);
	if (r < 0)
		return r;
	switch (t) {
	case SQFS_DIR:
		ino->dir_start = get_le32(b);
		ino->nlink = get_le32(b + 4);
		ino->dir_size = get_le16(b + 8);
		ino->dir_off = get_le16(b + 10);
		break;
	case SQFS_LDIR:
		ino->nlink = get_le32(b);
		ino->dir_size = get_le32(b + 4);
		ino->dir_start = get_le32(b + 8);
		ino->dir_off = get_le16(b + 18);
		ino->xattr = get_le32(b + 20);
		break;
	case SQFS_REG:
		ino->start = get_le32(b);
		ino->frag = get_le32(b + 4);
		ino->frag_off = get_le32(b + 8);
		ino->size = get_le32(b + 12);
		break;
	case SQFS_LREG:
		ino->start = get_le64(b);
		ino->size = get_le64(b + 8);
		ino->sparse = get_le64(b + 16);
		ino->nlink = get_le32(b + 24);
		ino->frag = get_le32(b + 28);
		ino->frag_off = get_le32(b + 32);
		ino->xattr = get_le32(b + 36);
		break;
	case SQFS_SYMLINK:
	case SQFS_LSYMLINK: {
		uint32_t len = get_le32(b + 4);

		ino->nlink = get_le32(b);
		if (!len || len > SQFS_SYMLINK_MAX)
			return sqf_bad(q, e, "symlink_size %u, allowed 1..%u", len,
				       SQFS_SYMLINK_MAX);
		r = sqf_meta(q, &blk, &off, q->target, len, fs->inode_table,
				       fs->dir_table, "inode table", e);
		if (r < 0)
			return r;
		if (memchr(q->target, 0, len))
			return sqf_bad(q, e, "symlink target holds a NUL byte");
		q->target[len] = 0;
		ino->size = len;
		if (t == SQFS_LSYMLINK) {
			r = sqf_meta(q, &blk, &off, b, 4, fs->inode_table,
					       fs->dir_table, "inode table", e);
			if (r < 0)
				return r;
			ino->xattr = get_le32(b);
		}
		break;
	}
	default:
		ino->nlink = get_le32(b);
		if (ino->type == SQFS_BLKDEV || ino->type == SQFS_CHRDEV) {
			ino->rdev = get_le32(b + 4);
			if (t > SQFS_SOCKET)
				ino->xattr = get_le32(b + 8);
		} else if (t > SQFS_SOCKET) {
			ino->xattr = get_le32(b + 4);
		}
		break;
	}
	if (ino->type == SQFS_DIR) {
		if (ino->dir_size < 3 || ino->dir_off >= SQFS_META_SIZE)
			return sqf_bad(q, e, "directory file_size %llu, offset %u",
				       (unsigned long long)ino->dir_size, ino->dir_off);
		ino->dir_size -= 3;
	}
	if (ino->type == SQFS_REG) {
		uint64_t nb, tail = ino->size & (fs->bs - 1);
		/* a block list never holds more words than the inode table could */
		uint64_t most = (fs->dir_table - fs->inode_table) / 3 * (SQFS_META_SIZE / 4);

		if (ino->frag != SQFS_INVALID_FRAG) {
			if (!tail)
				return sqf_bad(q, e,
					       "fragment %u for a size %llu that is a multiple of block_size",
					       ino->frag, (unsigned long long)ino->size);
			if (ino->frag >= fs->fragments)
				return sqf_bad(q, e, "fragment index %u, fragments is %u",
					       ino->frag, fs->fragments);
			if ((uint64_t)ino->frag_off + tail > fs->bs)
				return sqf_bad(q, e,
					       "fragment offset %u + tail %llu exceeds block_size %u",
					       ino->frag_off, (unsigned long long)tail, fs->bs);
			nb = ino->size >> fs->log;
		} else {
			nb = (ino->size >> fs->log) + (tail != 0);
		}
		if (nb > most)
			return sqf_bad(q, e,
				       "file_size %llu needs %llu block sizes, more than the inode table holds",
				       (unsigned long long)ino->size, (unsigned long long)nb);
		ino->bl_blk = blk;
		ino->bl_off = off;
	}
	return 0;
}

/* --- file data --- */

static uint32_t sqf_blen(const struct sqf_file *f, uint64_t i)
{
	return (uint32_t)min_u64(f->q->fs.bs, f->size - (i << f->q->fs.log));
}

/* The size word of block @i (< nblocks) into *@w, its data position *@pos. */
static int sqf_word(struct sqf_file *f, uint64_t i, uint32_t *w, uint64_t *pos, struct err *e)
{
	struct sqf_src *q = f->q;
	struct squashfs_fs *fs = &q->fs;

	if (i < f->wbase) {     /* backwards: from the start again */
		f->wbase = f->wn = 0;
		f->wpos = f->start;
		f->nblk = f->bl_blk;
		f->noff = f->bl_off;
	}
	while (i >= f->wbase + f->wn) {
		uint64_t p = f->wn ? f->pos[f->wn - 1] + (f->w[f->wn - 1] & SQFS_BLOCK_SIZE_MASK)
				   : f->wpos;
		uint8_t raw[4 * SQF_WORDS];
		size_t n;
		int r;

		f->wbase += f->wn;
		f->wn = 0;
		f->wpos = p;
		n = (size_t)min_u64(SQF_WORDS, f->nblocks - f->wbase);
		r = sqf_meta(q, &f->nblk, &f->noff, raw, n * 4, fs->inode_table,
				       fs->dir_table, "block list", e);
		if (r < 0)
			return r;
		for (size_t k = 0; k < n; k++) {
			uint32_t v = get_le32(raw + 4 * k), size = v & SQFS_BLOCK_SIZE_MASK;
			uint64_t idx = f->wbase + k;

			if (v >> 25)
				return sqf_bad(q, e, "block %llu size word 0x%08x has unknown bits",
					       (unsigned long long)idx, v);
			if (size > fs->bs)
				return sqf_bad(q, e, "block %llu size %u exceeds block_size %u",
					       (unsigned long long)idx, size, fs->bs);
			if (size && (v & SQFS_BLOCK_UNCOMPRESSED) && size != sqf_blen(f, idx))
				return sqf_bad(q, e,
					       "uncompressed block %llu is %u bytes, expected %u",
					       (unsigned long long)idx, size, sqf_blen(f, idx));
			if (size && (p < SQFS_SUPER_SIZE || !range_ok(p, size, fs->bytes_used)))
				return sqf_bad(q, e,
					       "block %llu at %llu+%u is outside the image (bytes_used %llu)",
					       (unsigned long long)idx, (unsigned long long)p,
					       size, (unsigned long long)fs->bytes_used);
			f->w[k] = v;
			f->pos[k] = p;
			p += size;
		}
		f->wn = n;
	}
	*w = f->w[i - f->wbase];
	*pos = f->pos[i - f->wbase];
	return 0;
}

/* Decompress (or read) the block of size word @w at @pos into @dst: *@len bytes. */
static int sqf_unpack(struct sqf_src *q, uint32_t w, uint64_t pos, uint8_t *dst,
		      size_t *len, const char *what, uint64_t idx, struct err *e)
{
	struct squashfs_fs *fs = &q->fs;
	uint32_t size = w & SQFS_BLOCK_SIZE_MASK;
	int r;

	*len = fs->bs;
	if (w & SQFS_BLOCK_UNCOMPRESSED) {
		r = io_read(fs->io, dst, size, pos, "squashfs: data", e);
		*len = size;
	} else {
		r = io_read(fs->io, fs->cbuf, size, pos, "squashfs: data", e);
		if (r >= 0)
			r = squashfs_decompress(fs->comp, &fs->ctx, fs->cbuf, size, dst, len,
						fs->bs, e);
	}
	if (r < 0) {
		char p[256];

		err_prefix(e, "squashfs: %s: %s %llu", sqf_p(q, p, sizeof(p)), what,
			   (unsigned long long)idx);
	}
	return r;
}

/* The fragment block of @f into q->fbuf (q->flen bytes). */
static int sqf_fragment(struct sqf_file *f, struct err *e)
{
	struct sqf_src *q = f->q;
	uint64_t start;
	uint32_t w;
	size_t len;
	int r;

	if (q->fidx == f->frag)
		return 0;
	r = squashfs_frag_entry(&q->fs, f->frag, &start, &w, e);
	if (r < 0)
		return sqf_name(q, e, r);
	q->fidx = SQFS_INVALID_FRAG;
	r = sqf_unpack(q, w, start, q->fbuf, &len, "fragment", f->frag, e);
	if (r < 0)
		return r;
	q->fidx = f->frag;
	q->flen = (uint32_t)len;
	return 0;
}

static int sqf_read(struct ft_file *ff, uint64_t off, void *buf, size_t len, struct err *e)
{
	struct sqf_file *f = ff->priv;
	struct sqf_src *q = f->q;
	struct squashfs_fs *fs = &q->fs;
	uint64_t tail_at = f->nblocks << fs->log;
	uint8_t *d = buf;

	if (!range_ok(off, len, f->size))
		return err_set(e, -EINVAL, "squashfs: read at %llu+%zu past the %llu bytes of a file",
			       (unsigned long long)off, len, (unsigned long long)f->size);
	while (len) {
		uint64_t i = off >> fs->log;
		uint32_t in = (uint32_t)(off & (fs->bs - 1)), w;
		uint64_t pos;
		size_t n;
		int r;

		if (off >= tail_at) {
			r = sqf_fragment(f, e);
			if (r < 0)
				return r;
			if ((uint64_t)f->frag_off + f->tail_len > q->flen)
				return sqf_bad(q, e,
					       "fragment %u holds %u bytes, the tail needs %u at %u",
					       f->frag, q->flen, f->tail_len, f->frag_off);
			memcpy(d, q->fbuf + f->frag_off + (off - tail_at), len);
			return 0;
		}
		n = (size_t)min_u64(len, sqf_blen(f, i) - in);
		r = sqf_word(f, i, &w, &pos, e);
		if (r < 0)
			return r;
		if (!(w & SQFS_BLOCK_SIZE_MASK)) {
			memset(d, 0, n);
		} else {
			if (q->dfile != f->serial || q->dblock != i) {
				size_t got;

				q->dfile = 0;
				r = sqf_unpack(q, w, pos, q->dbuf, &got, "block", i, e);
				if (r < 0)
					return r;
				if (got != sqf_blen(f, i))
					return sqf_bad(q, e,
						       "block %llu decompressed to %zu bytes, expected %u",
						       (unsigned long long)i, got, sqf_blen(f, i));
				q->dfile = f->serial;
				q->dblock = i;
			}
			memcpy(d, q->dbuf + in, n);
		}
		d += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int sqf_hole(struct ft_file *ff, uint64_t off, uint64_t *len, struct err *e)
{
	struct sqf_file *f = ff->priv;
	uint32_t log = f->q->fs.log;
	uint64_t i = off >> log, n = 0, pos;
	uint32_t w;

	*len = 0;
	while (i < f->nblocks) {
		int r = sqf_word(f, i, &w, &pos, e);

		if (r < 0)
			return r;
		if (w & SQFS_BLOCK_SIZE_MASK)
			break;
		n = ((i + 1) << log) - off;
		i++;
	}
	*len = min_u64(n, off < f->size ? f->size - off : 0);
	return 0;
}

/* --- the walk --- */

/* The listing @p (@len bytes) parsed, sorted and checked into *@out. */
static int sqf_listing(struct sqf_src *q, const uint8_t *p, size_t len,
		       struct squashfs_dent **out, size_t *nout, struct err *e)
{
	int r = squashfs_listing(p, len, out, nout, e);

	if (r < 0)
		return sqf_name(q, e, r);
	for (size_t i = 0; i < *nout; i++)
		if ((*out)[i].name_len > FT_NAME_MAX)
			return sqf_bad(q, e, "directory entry name size %u, allowed 1..%u",
				       (*out)[i].name_len, FT_NAME_MAX);
	return 0;
}

static int sqf_visit(struct sqf_src *q, uint64_t ref, unsigned dtype, uint32_t dnum,
		     unsigned depth, struct err *e);

/* The entries of directory @ino (at q->path), visited in order. */
static int sqf_dir(struct sqf_src *q, const struct sqf_inode *ino, unsigned depth,
		   struct err *e)
{
	struct squashfs_fs *fs = &q->fs;
	size_t plen = strlen(q->path), n = 0;
	struct squashfs_dent *d = NULL;
	uint8_t *listing;
	uint64_t blk;
	uint32_t off;
	int r;

	if (!ino->dir_size)
		return 0;
	if (ino->dir_size > SQF_HELD_MAX - q->held ||
	    ino->dir_size > fs->max_table)
		return err_set(e, EI_ELIMIT,
			       "squashfs: directory listings of %llu bytes exceed the limit of %llu",
			       (unsigned long long)(q->held + ino->dir_size),
			       (unsigned long long)min_u64(SQF_HELD_MAX, fs->max_table));
	{
		uint64_t key = SQF_LISTING_KEY | (uint64_t)ino->dir_start << 13 | ino->dir_off;
		struct sqf_seen *s = sqf_seen_find(q, key);

		if (s && s->used)
			return sqf_bad(q, e,
				       "directory listing at %u:%u is also another directory's (a loop)",
				       ino->dir_start, ino->dir_off);
		r = sqf_seen_add(q, key, 0, NULL, e);
		if (r < 0)
			return r;
	}
	listing = malloc(ino->dir_size);
	if (!listing)
		return err_set(e, -ENOMEM, "squashfs: out of memory");
	q->held += ino->dir_size;
	blk = fs->dir_table + ino->dir_start;
	off = ino->dir_off;
	r = sqf_meta(q, &blk, &off, listing, ino->dir_size, fs->dir_table,
			       fs->dir_end, "directory table", e);
	if (r < 0)
		goto out;
	r = sqf_listing(q, listing, ino->dir_size, &d, &n, e);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		size_t add = (plen ? 1 : 0) + d[i].name_len;

		if (plen + add > FT_PATH_MAX) {
			r = sqf_bad(q, e, "a path under it is longer than %u bytes", FT_PATH_MAX);
			break;
		}
		if (plen)
			q->path[plen] = '/';
		memcpy(q->path + plen + (plen ? 1 : 0), d[i].name, d[i].name_len);
		q->path[plen + add] = 0;
		r = sqf_visit(q, d[i].ref, d[i].type, d[i].number, depth + 1, e);
		q->path[plen] = 0;
	}
out:
	q->held -= ino->dir_size;
	free(d);
	free(listing);
	return r;
}

/* Visit the entry at q->path: inode @ref, its directory entry's type and number. */
/* A regular file's reader (ff->priv: the sqf_file, the caller's to free). */
static int sqf_file_new(struct sqf_src *q, const struct sqf_inode *ino, struct ft_file *ff,
			struct err *e)
{
	struct squashfs_fs *fs = &q->fs;
	struct sqf_file *f = calloc(1, sizeof(*f));

	if (!f)
		return err_set(e, -ENOMEM, "squashfs: out of memory");
	f->q = q;
	f->serial = ++q->serial;
	f->size = ino->size;
	f->start = f->wpos = ino->start;
	f->frag = ino->frag;
	f->frag_off = ino->frag_off;
	f->bl_blk = f->nblk = ino->bl_blk;
	f->bl_off = f->noff = ino->bl_off;
	if (ino->frag != SQFS_INVALID_FRAG) {
		f->nblocks = ino->size >> fs->log;
		f->tail_len = (uint32_t)(ino->size & (fs->bs - 1));
	} else {
		f->nblocks = (ino->size + fs->bs - 1) >> fs->log;
	}
	ff->read = sqf_read;
	ff->hole = sqf_hole;
	ff->priv = f;
	return 0;
}

static int sqf_visit(struct sqf_src *q, uint64_t ref, unsigned dtype, uint32_t dnum,
		     unsigned depth, struct err *e)
{
	struct squashfs_fs *fs = &q->fs;
	struct ft_entry ent = { 0 };
	struct sqf_inode ino;
	struct sqf_file *f = NULL;
	struct ft_file ff = { 0 };
	struct sqf_seen *s;
	int r;

	if (depth > FT_DEPTH_MAX)
		return sqf_bad(q, e, "directories nested deeper than %u", FT_DEPTH_MAX);
	if (++q->entries > SQF_ENTRIES_MAX)
		return err_set(e, EI_ELIMIT, "squashfs: more than %u entries",
			       SQF_ENTRIES_MAX);
	r = sqf_inode(q, ref, dtype, &ino, e);
	if (r < 0)
		return r;
	if (ino.number > fs->inodes)
		return sqf_bad(q, e, "inode_number %u exceeds the superblock's inodes %u",
			       ino.number, fs->inodes);
	ent.path = q->path;
	ent.mode = ino.mode;
	ent.uid = ino.uid;
	ent.gid = ino.gid;
	ent.mtime = ino.mtime;
	ent.ino = ino.number;
	ent.nlink = ino.nlink;
	s = sqf_seen_find(q, ino.number);
	if (s && s->used) {
		char p[256];

		if (!s->path || ino.type == SQFS_DIR)
			return sqf_bad(q, e, "inode %u is a directory seen before (a loop)",
				       ino.number);
		if (s->ref != ref) {
			text_safe(s->path, p, sizeof(p));
			return sqf_bad(q, e, "inode_number %u is also another inode's (/%s)",
				       ino.number, p);
		}
		ent.link_to = s->path;
	}
	if (dnum && dnum != ino.number)
		return sqf_bad(q, e, "directory entry inode number %u, the inode's %u", dnum,
			       ino.number);
	switch (ino.type) {
	case SQFS_DIR: ent.type = FT_DIR; break;
	case SQFS_REG: ent.type = FT_REG; ent.size = ino.size; break;
	case SQFS_SYMLINK: ent.type = FT_SYMLINK; ent.target = q->target; break;
	case SQFS_BLKDEV: ent.type = FT_BLK; break;
	case SQFS_CHRDEV: ent.type = FT_CHR; break;
	case SQFS_FIFO: ent.type = FT_FIFO; break;
	default: ent.type = FT_SOCK; break;
	}
	if (ent.type == FT_BLK || ent.type == FT_CHR) {
		/* the kernel's new_decode_dev() */
		ent.rdev_major = (ino.rdev & 0xfff00) >> 8;
		ent.rdev_minor = (ino.rdev & 0xff) | ((ino.rdev >> 12) & 0xfff00);
	}
	r = sqf_xattrs(q, ino.xattr, &ent.n_xattrs, e);
	if (r < 0)
		return r;
	ent.xattrs = q->xa;
	if (ino.type == SQFS_DIR) {
		r = sqf_seen_add(q, ino.number, ref, NULL, e);
	} else if (ino.nlink > 1 && !ent.link_to) {
		r = sqf_seen_add(q, ino.number, ref, q->path, e);
	}
	if (r < 0)
		return r;
	if (ent.type == FT_REG && !ent.link_to) {
		ent.sparse = ino.sparse != 0;
		ent.ref = ref + 1;      /* 0 is "none" */
		r = sqf_file_new(q, &ino, &ff, e);
		if (r < 0)
			return r;
		f = ff.priv;
	}
	r = q->visit(q->arg, &ent, f ? &ff : NULL, e);
	free(f);
	if (r < 0 || ino.type != SQFS_DIR)
		return r;
	return sqf_dir(q, &ino, depth, e);
}

static int sqf_walk(struct ft_source *src, ft_visit_fn visit, void *arg, struct err *e)
{
	struct sqf_src *q = src->priv;

	if (q->walked)
		return err_set(e, -EINVAL, "squashfs: %s was walked already", q->what);
	q->walked = 1;
	q->visit = visit;
	q->arg = arg;
	q->path[0] = 0;
	return sqf_visit(q, q->fs.root_ref, SQFS_DIR, 0, 0, e);
}

static void sqf_close(struct ft_source *src)
{
	struct sqf_src *q = src->priv;

	for (size_t i = 0; i < q->cap; i++)
		free(q->seen[i].path);
	free(q->seen);
	squashfs_fs_close(&q->fs);
	free(q->ids);
	free(q->xa);
	free(q->xbuf);
	free(q->dbuf);
	free(q->fbuf);
	free(q->what);
	free(q);
}

/* A regular file after the walk, by the ref its entry carried. */
static int sqf_open_file(struct ft_source *src, uint64_t ref, uint64_t size,
			 struct ft_file *ff, struct err *e)
{
	struct sqf_src *q = src->priv;
	struct sqf_inode ino;
	int r;

	q->path[0] = 0;
	r = sqf_inode(q, ref - 1, SQFS_REG, &ino, e);
	if (r < 0)
		return r;
	if (ino.size != size)
		return sqf_bad(q, e, "inode at %llu has %llu bytes, its walk said %llu",
			       (unsigned long long)ref, (unsigned long long)ino.size,
			       (unsigned long long)size);
	return sqf_file_new(q, &ino, ff, e);
}

static void sqf_close_file(struct ft_source *src, struct ft_file *ff)
{
	(void)src;
	free(ff->priv);
	ff->priv = NULL;
}

static const struct ft_source_ops sqf_ops = {
	.name = "squashfs",
	.walk = sqf_walk,
	.close = sqf_close,
	.open_file = sqf_open_file,
	.close_file = sqf_close_file,
};

int ft_squashfs_recipe(struct ft_source *src, char *buf, size_t len, struct err *e)
{
	struct sqf_src *q = src->priv;

	buf[0] = 0;
	if (src->ops != &sqf_ops)
		return 0;
	return squashfs_recipe_read(&q->io, q->fs.bytes_used, buf, len, e);
}

int ft_open_squashfs(struct vdisk *vd, const char *what, struct ft_source **out, struct err *e)
{
	struct sqf_src *q = calloc(1, sizeof(*q));
	uint8_t magic[4];
	int r;

	*out = NULL;
	if (!q)
		return err_set(e, -ENOMEM, "squashfs: out of memory");
	q->vd = vd;
	q->io.ops = &sqf_io_ops;
	q->io.size = vd->size;
	snprintf(q->io.name, sizeof(q->io.name), "%s", what);
	q->src.ops = &sqf_ops;
	q->src.priv = q;
	q->src.mkfs_time = -1;
	q->fidx = SQFS_INVALID_FRAG;
	q->what = strdup(what);
	q->src.what = q->what;
	if (!q->what) {
		r = err_set(e, -ENOMEM, "squashfs: out of memory");
		goto fail;
	}
	/* not a squashfs: EI_EFORMAT, before anything is checked */
	if (vd->size >= SQFS_SUPER_SIZE) {
		r = vdisk_read(vd, magic, 4, 0, e);
		if (r < 0)
			goto fail;
	}
	if (vd->size < SQFS_SUPER_SIZE || get_le32(magic) != SQFS_MAGIC) {
		r = err_set(e, EI_EFORMAT, "%s: not a squashfs", what);
		goto fail;
	}
	r = squashfs_fs_open(&q->fs, &q->io, vd->opts.max_table ? vd->opts.max_table :
			     EI_MAX_TABLE, e);
	if (r < 0)
		goto fail;
	q->dbuf = malloc(q->fs.bs);
	q->fbuf = malloc(q->fs.bs);
	q->xa = malloc(FT_XATTRS_MAX * sizeof(*q->xa));
	if (!q->dbuf || !q->fbuf || !q->xa) {
		r = err_set(e, -ENOMEM, "squashfs: out of memory");
		goto fail;
	}
	r = sqf_load_ids(q, e);
	if (r < 0)
		goto fail;
	q->src.mkfs_time = q->fs.mkfs_time;
	*out = &q->src;
	return 0;
fail:
	sqf_close(&q->src);
	return r;
}

/* --- the blocks of an existing squashfs, by content (block reuse) --- */

struct sqr_blk {
	uint8_t sha[SHA256_LEN];
	uint64_t pos;
	uint32_t word, len;     /* the size word, the uncompressed length */
};

struct sqr_index {
	struct block_reuse r;
	struct vdisk *raw;      /* the container's bytes */
	struct sqr_blk *b;
	size_t n, cap;
	uint32_t bs;
};

static int sqr_add(struct sqr_index *x, uint64_t pos, uint32_t w, const uint8_t *data,
		   size_t len, struct err *e)
{
	if (x->n == x->cap) {
		size_t cap = x->cap ? 2 * x->cap : 1024;
		struct sqr_blk *p;

		if (cap > (EI_MAX_TABLE / sizeof(*p)))
			return err_set(e, EI_ELIMIT, "squashfs: more blocks than a reuse index holds");
		p = realloc(x->b, cap * sizeof(*p));
		if (!p)
			return err_set(e, -ENOMEM, "squashfs: out of memory");
		x->b = p;
		x->cap = cap;
	}
	sha256(data, len, x->b[x->n].sha);
	x->b[x->n].pos = pos;
	x->b[x->n].word = w;
	x->b[x->n].len = (uint32_t)len;
	x->n++;
	return 0;
}

/* Every data block of every file (hard links and duplicates: once each). */
static int sqr_visit(void *arg, const struct ft_entry *ent, struct ft_file *ff, struct err *e)
{
	struct sqr_index *x = arg;
	struct sqf_file *f;
	struct sqf_src *q;

	(void)ent;
	if (!ff)
		return 0;
	f = ff->priv;
	q = f->q;
	for (uint64_t i = 0; i < f->nblocks; i++) {
		uint64_t pos;
		uint32_t w;
		size_t got;
		int r = sqf_word(f, i, &w, &pos, e);

		if (r < 0)
			return r;
		if (!(w & SQFS_BLOCK_SIZE_MASK))
			continue;
		r = sqf_unpack(q, w, pos, q->dbuf, &got, "block", i, e);
		if (r < 0)
			return r;
		if (got != sqf_blen(f, i))
			return sqf_bad(q, e, "block %llu decompressed to %zu bytes, expected %u",
				       (unsigned long long)i, got, sqf_blen(f, i));
		r = sqr_add(x, pos, w, q->dbuf, got, e);
		if (r < 0)
			return r;
	}
	return 0;
}

static int sqr_cmp(const void *a, const void *b)
{
	return memcmp(a, b, SHA256_LEN);
}

static int sqr_lookup(const struct block_reuse *r, const uint8_t *in, size_t len,
		      uint8_t *out, size_t cap, size_t *out_len, int *raw, struct err *e)
{
	struct block_reuse *rw = (struct block_reuse *)r;
	const struct sqr_index *x = r->priv;
	struct sqr_blk key;
	const struct sqr_blk *hit;
	uint32_t size;
	int rc;

	(void)e;
	__atomic_fetch_add(&rw->asked, 1, __ATOMIC_RELAXED);
	sha256(in, len, key.sha);
	hit = x->n ? bsearch(&key, x->b, x->n, sizeof(*x->b), sqr_cmp) : NULL;
	if (!hit || hit->len != len)
		return 0;
	size = hit->word & SQFS_BLOCK_SIZE_MASK;
	*raw = !!(hit->word & SQFS_BLOCK_UNCOMPRESSED);
	if (*raw) {
		if (size != len)
			return 0;
	} else {
		if (size > cap)
			return 0;
		/*
		 * OLD cannot be read here: compress the block instead (NEW's
		 * content is in hand, and the read-back judges the container),
		 * so that a bad sector of OLD never stops an apply.
		 */
		struct err ignored = { 0 };

		rc = io_read(x->raw->io, out, size, hit->pos, "squashfs: a block to reuse", &ignored);
		if (rc < 0)
			return 0;
		*out_len = size;
	}
	__atomic_fetch_add(&rw->copied, 1, __ATOMIC_RELAXED);
	return 1;
}

static void sqr_free(struct block_reuse *r)
{
	struct sqr_index *x;

	if (!r)
		return;
	x = r->priv;
	vdisk_close(x->raw);
	free(x->b);
	free(x);
}

int squashfs_reuse_open(const char *path, const struct open_opts *oo, const char *options,
			struct block_reuse **out, struct err *e)
{
	static const char *const keys[] = { "compression", "level", "block_size", "deflate",
					    "zstd", "xz", "lz4", "skip_random=off" };
	struct open_opts o = *oo;
	struct ft_source *src = NULL;
	struct sqr_index *x;
	char recipe[SQFS_RECIPE_MAX + 1];
	int r;

	*out = NULL;
	x = calloc(1, sizeof(*x));
	if (!x)
		return err_set(e, -ENOMEM, "squashfs: out of memory");
	o.format = "raw";
	r = vdisk_open(path, &o, &x->raw, e);
	if (r >= 0) {
		r = ft_open_squashfs(x->raw, path, &src, e);
		if (r == EI_EFORMAT)
			r = 1;          /* OLD is no squashfs: nothing to take */
	}
	if (r == 0)
		r = ft_squashfs_recipe(src, recipe, sizeof(recipe), e);
	/* only what this writer would have compressed the same way */
	if (r == 0 && !opts_same(recipe, options, keys, sizeof(keys) / sizeof(keys[0]), 3))
		r = 1;
	if (r == 0)
		r = ft_walk(src, sqr_visit, x, e);
	if (r == 0) {
		struct sqf_src *q = src->priv;

		for (uint32_t i = 0; r >= 0 && i < q->fs.fragments; i++) {
			uint64_t start;
			uint32_t w;
			size_t got;

			r = squashfs_frag_entry(&q->fs, i, &start, &w, e);
			if (r >= 0 && (w & SQFS_BLOCK_SIZE_MASK))
				r = sqf_unpack(q, w, start, q->fbuf, &got, "fragment", i, e);
			if (r >= 0 && (w & SQFS_BLOCK_SIZE_MASK))
				r = sqr_add(x, start, w, q->fbuf, got, e);
		}
		q->fidx = SQFS_INVALID_FRAG;
	}
	ft_close(src);
	if (r != 0) {
		vdisk_close(x->raw);
		free(x->b);
		free(x);
		return r < 0 ? r : 0;
	}
	qsort(x->b, x->n, sizeof(*x->b), sqr_cmp);
	x->r.lookup = sqr_lookup;
	x->r.free = sqr_free;
	x->r.priv = x;
	*out = &x->r;
	return 0;
}

/* --- the compressed blocks of a squashfs (packed views, delta --exact) --- */

struct sqp_walk {
	int (*add)(void *arg, uint64_t off, uint64_t span, uint32_t ulen, unsigned method,
		   struct err *e);
	void *arg;
	unsigned method;        /* data blocks: PACK_SQFS_* | level << 8 | ... */
	unsigned meta;          /* metadata blocks: the same */
};

/* Every compressed data block of every file (ulen from the file's size). */
static int sqp_visit(void *arg, const struct ft_entry *ent, struct ft_file *ff, struct err *e)
{
	struct sqp_walk *w = arg;
	struct sqf_file *f;

	(void)ent;
	if (!ff)
		return 0;
	f = ff->priv;
	for (uint64_t i = 0; i < f->nblocks; i++) {
		uint64_t pos;
		uint32_t word;
		int r = sqf_word(f, i, &word, &pos, e);

		if (r >= 0 && (word & SQFS_BLOCK_SIZE_MASK) && !(word & SQFS_BLOCK_UNCOMPRESSED))
			r = w->add(w->arg, pos, word & SQFS_BLOCK_SIZE_MASK, sqf_blen(f, i),
				   w->method, e);
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * The compressed metadata blocks from @lo on, one after the other, up to
 * @hi or the first that does not decompress (at most @max blocks).
 */
static int sqp_meta(struct sqf_src *q, struct sqp_walk *w, uint64_t lo, uint64_t hi,
		    uint64_t max, struct err *e)
{
	struct squashfs_fs *fs = &q->fs;
	uint8_t hdr[2], out[SQFS_META_SIZE];
	struct err ignored = { 0 };
	uint64_t pos = lo;
	int r = 0;

	for (uint64_t k = 0; r >= 0 && k < max && pos + 2 <= hi && pos + 2 <= fs->bytes_used; k++) {
		uint32_t size;
		size_t olen = sizeof(out);

		r = io_read(&q->io, hdr, 2, pos, "squashfs: a metadata block", e);
		if (r < 0)
			break;
		size = get_le16(hdr) & ~SQFS_META_UNCOMPRESSED;
		if (!size || size > SQFS_META_SIZE || pos + 2 + size > hi ||
		    pos + 2 + size > fs->bytes_used)
			break;
		if (!(get_le16(hdr) & SQFS_META_UNCOMPRESSED)) {
			r = io_read(&q->io, fs->cbuf, size, pos + 2, "squashfs: a metadata block", e);
			if (r < 0)
				break;
			if (squashfs_decompress(fs->comp, &fs->ctx, fs->cbuf, size, out, &olen,
						fs->bs, &ignored) < 0)
				break;
			r = w->add(w->arg, pos + 2, size, (uint32_t)olen, w->meta, e);
		}
		pos += 2 + size;
	}
	return r;
}

int squashfs_pack_blocks(const char *path, const struct open_opts *oo,
			 int (*add)(void *arg, uint64_t off, uint64_t span, uint32_t ulen,
				    unsigned method, struct err *e),
			 void *arg, struct err *e)
{
	struct open_opts o = *oo;
	struct ft_source *src = NULL;
	struct sqp_walk w = { add, arg, 0, 0 };
	struct vdisk *raw = NULL;
	struct sqf_src *q;
	struct squashfs_fs *fs;
	int r;

	o.format = "raw";
	o.partition = NULL;
	r = vdisk_open(path, &o, &raw, e);
	if (r < 0)
		return r;
	r = ft_open_squashfs(raw, path, &src, e);
	if (r < 0)
		goto out;
	q = src->priv;
	fs = &q->fs;
	/*
	 * mksquashfs's own codecs and defaults (gzip 9, zstd 15), or its
	 * options; xz's filter and dictionary are in each block's stream.
	 * gzip: the window as 15 - bits << 16; the strategies it may have
	 * tried for a data block (bit i: zlib's strategy i) << 24.
	 */
	if (fs->comp->id == SQFS_COMP_GZIP)
		w.meta = PACK_SQFS_GZIP | (unsigned)(fs->opt_level > 0 ? fs->opt_level : 9) << 8 |
			 (unsigned)(fs->opt_gzip_window ? 15 - fs->opt_gzip_window : 0) << 16;
	else if (fs->comp->id == SQFS_COMP_ZSTD)
		w.meta = PACK_SQFS_ZSTD | (unsigned)(fs->opt_level > 0 ? fs->opt_level : 15) << 8;
	else if (fs->comp->id == SQFS_COMP_XZ)
		w.meta = PACK_SQFS_XZ;
	else if (fs->comp->id == SQFS_COMP_LZ4)
		w.meta = PACK_SQFS_LZ4 | (fs->opt_lz4_hc ? 12u : 0u) << 8;
	/* data blocks only: gzip's other strategies (metadata: the default) */
	w.method = w.meta | (fs->comp->id == SQFS_COMP_GZIP ? fs->opt_gzip_strategies << 24 : 0);
	if (!w.method)
		goto out;       /* its blocks stay as they are */
	r = ft_walk(src, sqp_visit, &w, e);
	for (uint32_t i = 0; r >= 0 && i < fs->fragments; i++) {
		uint64_t start;
		uint32_t word;
		size_t got;

		r = squashfs_frag_entry(fs, i, &start, &word, e);
		if (r < 0 || !(word & SQFS_BLOCK_SIZE_MASK) || (word & SQFS_BLOCK_UNCOMPRESSED))
			continue;
		r = sqf_unpack(q, word, start, q->fbuf, &got, "fragment", i, e);
		if (r >= 0 && got)
			r = add(arg, start, word & SQFS_BLOCK_SIZE_MASK, (uint32_t)got, w.method, e);
	}
	q->fidx = SQFS_INVALID_FRAG;
	/* the tables: inodes, directories, then each index's blocks */
	if (r >= 0)
		r = sqp_meta(q, &w, fs->inode_table, fs->dir_table, UINT64_MAX, e);
	if (r >= 0)
		r = sqp_meta(q, &w, fs->dir_table, fs->dir_end, UINT64_MAX, e);
	for (uint64_t i = 0; r >= 0 && fs->frag_ptr && i < (fs->fragments * 16ull + 8191) / 8192; i++)
		r = sqp_meta(q, &w, fs->frag_ptr[i], fs->bytes_used, 1, e);
	for (uint64_t i = 0; r >= 0 && fs->id_ptr && i < (fs->no_ids * 4ull + 8191) / 8192; i++)
		r = sqp_meta(q, &w, fs->id_ptr[i], fs->bytes_used, 1, e);
	if (r >= 0 && fs->xattr_ptr && fs->xattr_ids)
		r = sqp_meta(q, &w, fs->xattr_kv, fs->xattr_ptr[0], UINT64_MAX, e);
	for (uint64_t i = 0; r >= 0 && fs->xattr_ptr && i < (fs->xattr_ids * 16ull + 8191) / 8192; i++)
		r = sqp_meta(q, &w, fs->xattr_ptr[i], fs->bytes_used, 1, e);
out:
	ft_close(src);
	vdisk_close(raw);
	return r;
}
