// SPDX-License-Identifier: MIT
/*
 * The file-tree view (src/delta/delta-format.md, "The file-tree view"): a
 * tree as one byte array that depends on the tree only, so that delta and
 * apply can treat two root filesystems as two disks, and so that the
 * squashfs writer (files=on) can rebuild a root filesystem from the view
 * apply decoded.
 *
 *   header (4096 bytes) | record [| zeros to 4 KiB | data] | record ... | end
 *
 * Each entry is a record (type, mode, ids, time, size, path, link target,
 * xattrs); a regular file's data follows at the next 4 KiB boundary, so
 * that a file unchanged between two trees is made of the same aligned
 * blocks in both views (what the delta encoder copies).  Entries come in
 * the sorted pre-order of files/ftree.h, strictly increasing.
 *
 * The view of a source is virtual: ftv_open() walks the source once,
 * keeping each record and where it lies, and reads file data through the
 * source's open_file() when the view is read.  ftv_source() parses a view
 * (apply's decoded NEW, which a patch could have made anything) and checks
 * every field before use.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/bytes.h"
#include "core/format.h"
#include "core/io.h"
#include "core/kconfig.h"
#include "core/limits.h"
#include "core/vdisk.h"
#include "files/ftree.h"

#define FTV_MAGIC "EIFTREE\x1a"
#define FTV_VERSION 1
#define FTV_HDR 4096u                   /* the header's bytes, zero padded */
#define FTV_HDR_USED 40                 /* ... of which meaningful */
#define FTV_ALIGN 4096u                 /* data starts at a multiple */
#define FTV_REC_MAGIC "EIFE"
#define FTV_REC_FIXED 56                /* a record before its strings */
#define FTV_END_LEN 16                  /* the end record */
#define FTV_STR_MAX 4095                /* a path, link or symlink target */
#define FTV_XATTR_BYTES_MAX (4u << 20)  /* names and values of one record */
#define FTV_REC_MAX (FTV_REC_FIXED + 3 * FTV_STR_MAX + FTV_XATTR_BYTES_MAX + \
		     FT_XATTRS_MAX * 5u)
#define FTV_ENTRIES_MAX (1u << 24)
#define FTV_RECORDS_MAX (256u << 20)    /* records and index a view holds, at most */
#define FTV_SIZE_MAX (1ull << 46)
#define FTV_F_SPARSE 1u                 /* record flags */

static uint64_t ftv_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/*
 * Sorted pre-order: component by component, each compared by its bytes,
 * the shorter first on a tie; a directory before what is inside it.
 */
static int ftv_path_cmp(const char *a, const char *b)
{
	for (;;) {
		size_t la = strcspn(a, "/"), lb = strcspn(b, "/");
		int c = memcmp(a, b, la < lb ? la : lb);

		if (!*a || !*b)
			return !*a ? (!*b ? 0 : -1) : 1;
		if (c)
			return c;
		if (la != lb)
			return la < lb ? -1 : 1;
		a += la;
		b += lb;
		if (*a)
			a++;
		if (*b)
			b++;
		if (!*a || !*b)
			return !*a ? (!*b ? 0 : -1) : 1;
	}
}

/* --- the view of a source ---------------------------------------------- */

/* One region of the view: a record and, for a file, its data. */
struct ftv_ent {
	uint64_t voff;          /* the record's offset in the view */
	uint64_t doff;          /* its data's (0: none) */
	uint64_t size;          /* bytes of data */
	uint64_t ref;           /* the source's handle of the file */
	uint32_t roff, rlen;    /* the record in rec[] */
};

struct ftv {
	struct ft_source *src;
	struct ftv_ent *ent;
	size_t n, cap;
	uint8_t *rec;
	size_t rlen, rcap;
	uint64_t held_max;      /* rec[] and ent[] together, at most */
	uint64_t pos;           /* the walk: the view's next byte */
	char prev[FTV_STR_MAX + 1];     /* the walk: the last path */
	int have_prev;
	char recipe[1024];
	uint8_t hdr[FTV_HDR_USED];
	/* the file being read */
	size_t cur;             /* index in ent[], or SIZE_MAX */
	struct ft_file file;
	size_t last;            /* the entry found last */
};

static int ftv_nomem(struct err *e)
{
	return err_set(e, -ENOMEM, "file-tree view: out of memory");
}

/*
 * What a view holds grows with the tree's entries (its records and 40 bytes
 * of index each), not with its data: capped, with the index, at the
 * source's max_table (EI_MAX_TABLE, "the largest metadata table held in
 * memory", at most FTV_RECORDS_MAX), which keeps apply's view of a hostile
 * or corrupt OLD within its memory before OLD's hash can be checked.
 */
static int ftv_held_err(struct ftv *v, struct err *e)
{
	return err_set(e, EI_ELIMIT,
		       "file-tree view: %s: the records and index of its first %zu entries pass %llu MiB, the limit of metadata held in memory (names, link targets, xattrs; CONFIG_MAX_TABLE_256M raises it)",
		       v->src->what, v->n > 0 ? v->n - 1 : 0,
		       (unsigned long long)(v->held_max >> 20));
}

static int ftv_rec_grow(struct ftv *v, size_t need, struct err *e)
{
	uint64_t room = v->held_max - (uint64_t)v->cap * sizeof(*v->ent);
	size_t cap = v->rcap ? v->rcap : 1u << 16;
	uint8_t *p;

	if (need <= v->rcap)
		return 0;
	if (need > room)
		return ftv_held_err(v, e);
	/* doubling, then by quarters past 4 MiB, so the index keeps its room */
	while (cap < need)
		cap += cap < (4u << 20) ? cap : ((cap / 4 + (1u << 20) - 1) & ~(size_t)((1u << 20) - 1));
	if (cap > room)
		cap = (size_t)room;
	p = realloc(v->rec, cap);
	if (!p)
		return ftv_nomem(e);
	v->rec = p;
	v->rcap = cap;
	return 0;
}

static int ftv_ent_add(struct ftv *v, struct err *e)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? 2 * v->cap : 1024;
		uint64_t room = v->held_max - v->rcap;
		struct ftv_ent *p;

		if (v->n >= FTV_ENTRIES_MAX + 2)
			return err_set(e, EI_ELIMIT, "file-tree view: more than %u entries",
				       FTV_ENTRIES_MAX);
		if ((uint64_t)cap * sizeof(*p) > room)
			cap = (size_t)(room / sizeof(*p));
		if (cap <= v->n)
			return ftv_held_err(v, e);
		p = realloc(v->ent, cap * sizeof(*p));
		if (!p)
			return ftv_nomem(e);
		v->ent = p;
		v->cap = cap;
	}
	memset(&v->ent[v->n], 0, sizeof(v->ent[0]));
	return 0;
}

static void ftv_put_str(uint8_t *b, size_t *at, const char *s, size_t n)
{
	memcpy(b + *at, s, n);
	*at += n;
}

static int ftv_visit(void *arg, const struct ft_entry *ent, struct ft_file *f,
		     struct err *e)
{
	struct ftv *v = arg;
	size_t plen = strlen(ent->path), tlen = ent->target ? strlen(ent->target) : 0;
	size_t llen = ent->link_to ? strlen(ent->link_to) : 0, xb = 0, len, at;
	struct ftv_ent *x;
	uint8_t *b;
	int r, data;

	(void)f;
	if (plen > FTV_STR_MAX || tlen > FTV_STR_MAX || llen > FTV_STR_MAX)
		return err_set(e, EI_ELIMIT, "file-tree view: /%.200s: a name or link of more than %u bytes",
			       ent->path, FTV_STR_MAX);
	if (ent->n_xattrs > FT_XATTRS_MAX)
		return err_set(e, EI_ELIMIT, "file-tree view: /%.200s: more than %u xattrs",
			       ent->path, FT_XATTRS_MAX);
	for (unsigned i = 0; i < ent->n_xattrs; i++) {
		size_t nl = strlen(ent->xattrs[i].name);

		if (!nl || nl > FT_NAME_MAX || ent->xattrs[i].size > FT_XATTR_MAX)
			return err_set(e, EI_ELIMIT, "file-tree view: /%.200s: an xattr name or value out of bounds",
				       ent->path);
		xb += 5 + nl + ent->xattrs[i].size;
	}
	if (xb > FTV_XATTR_BYTES_MAX)
		return err_set(e, EI_ELIMIT, "file-tree view: /%.200s: xattrs of more than %u bytes",
			       ent->path, FTV_XATTR_BYTES_MAX);
	/* strictly increasing: the view is the same whatever made the tree */
	if (v->have_prev ? ftv_path_cmp(v->prev, ent->path) >= 0 : plen != 0)
		return err_set(e, EI_EUNSUP,
			       "file-tree view: %s does not walk its tree in sorted order (/%.200s)",
			       v->src->what, ent->path);
	data = ent->type == FT_REG && !ent->link_to && ent->size;
	if (data && !ent->ref)
		return err_set(e, EI_EUNSUP, "file-tree view: %s cannot read /%.200s after its walk",
			       v->src->what, ent->path);
	len = FTV_REC_FIXED + plen + tlen + llen + xb;
	if ((r = ftv_rec_grow(v, v->rlen + len, e)) < 0 ||
	    (r = ftv_ent_add(v, e)) < 0)
		return r;
	x = &v->ent[v->n++];
	x->voff = v->pos;
	x->roff = (uint32_t)v->rlen;
	x->rlen = (uint32_t)len;
	b = v->rec + v->rlen;
	memset(b, 0, FTV_REC_FIXED);
	memcpy(b, FTV_REC_MAGIC, 4);
	put_le32(b + 4, (uint32_t)len);
	b[8] = (uint8_t)ent->type;
	b[9] = ent->type == FT_REG && ent->sparse ? FTV_F_SPARSE : 0;
	put_le16(b + 10, (uint16_t)ent->n_xattrs);
	put_le32(b + 12, ent->mode & 07777);
	put_le32(b + 16, ent->uid);
	put_le32(b + 20, ent->gid);
	put_le64(b + 24, (uint64_t)ent->mtime);
	put_le64(b + 32, ent->type == FT_REG && !ent->link_to ? ent->size : 0);
	put_le32(b + 40, ent->rdev_major);
	put_le32(b + 44, ent->rdev_minor);
	put_le16(b + 48, (uint16_t)plen);
	put_le16(b + 50, (uint16_t)tlen);
	put_le16(b + 52, (uint16_t)llen);
	at = FTV_REC_FIXED;
	ftv_put_str(b, &at, ent->path, plen);
	ftv_put_str(b, &at, ent->target ? ent->target : "", tlen);
	ftv_put_str(b, &at, ent->link_to ? ent->link_to : "", llen);
	for (unsigned i = 0; i < ent->n_xattrs; i++) {
		size_t nl = strlen(ent->xattrs[i].name);

		b[at] = (uint8_t)nl;
		put_le32(b + at + 1, ent->xattrs[i].size);
		at += 5;
		ftv_put_str(b, &at, ent->xattrs[i].name, nl);
		memcpy(b + at, ent->xattrs[i].value, ent->xattrs[i].size);
		at += ent->xattrs[i].size;
	}
	v->rlen += len;
	memcpy(v->prev, ent->path, plen + 1);
	v->have_prev = 1;
	v->pos += len;
	if (data) {
		x->doff = ftv_up(v->pos, FTV_ALIGN);
		x->size = ent->size;
		x->ref = ent->ref;
		v->pos = x->doff + ent->size;
	}
	v->pos = ftv_up(v->pos, 8);
	if (v->pos > FTV_SIZE_MAX)
		return err_set(e, EI_ELIMIT, "file-tree view: the tree passes %llu bytes",
			       (unsigned long long)FTV_SIZE_MAX);
	return 0;
}

static void ftv_free(struct ftv *v)
{
	if (!v)
		return;
	if (v->cur != SIZE_MAX && v->src->ops->close_file)
		v->src->ops->close_file(v->src, &v->file);
	ft_close(v->src);
	free(v->ent);
	free(v->rec);
	free(v);
}

/* The entry whose region holds @off (regions tile the view). */
static size_t ftv_find(struct ftv *v, uint64_t off)
{
	size_t lo = 0, hi = v->n;

	if (v->last < v->n && v->ent[v->last].voff <= off &&
	    (v->last + 1 == v->n || v->ent[v->last + 1].voff > off))
		return v->last;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (v->ent[mid].voff <= off)
			lo = mid;
		else
			hi = mid;
	}
	v->last = lo;
	return lo;
}

static int ftv_data(struct ftv *v, size_t i, void *buf, size_t len, uint64_t off,
		    struct err *e)
{
	const struct ftv_ent *x = &v->ent[i];
	int r;

	if (v->cur != i) {
		if (v->cur != SIZE_MAX)
			v->src->ops->close_file(v->src, &v->file);
		v->cur = SIZE_MAX;
		memset(&v->file, 0, sizeof(v->file));
		r = v->src->ops->open_file(v->src, x->ref, x->size, &v->file, e);
		if (r < 0)
			return r;
		v->cur = i;
	}
	return v->file.read(&v->file, off, buf, len, e);
}

static int ftv_decode(struct vdisk *vd, void *buf, size_t len, uint64_t off,
		      struct err *e)
{
	struct ftv *v = vd->priv;
	uint8_t *d = buf;

	while (len) {
		size_t i = ftv_find(v, off), n;
		const struct ftv_ent *x = &v->ent[i];
		uint64_t end = i + 1 < v->n ? v->ent[i + 1].voff : vd->size;
		uint64_t rel = off - x->voff;
		int r;

		n = (size_t)min_u64(len, end - off);
		if (rel < x->rlen) {
			n = (size_t)min_u64(n, x->rlen - rel);
			memcpy(d, v->rec + x->roff + rel, n);
		} else if (x->size && off >= x->doff && off - x->doff < x->size) {
			n = (size_t)min_u64(n, x->doff + x->size - off);
			r = ftv_data(v, i, d, n, off - x->doff, e);
			if (r < 0)
				return r;
		} else {
			if (x->size && off < x->doff)
				n = (size_t)min_u64(n, x->doff - off);
			memset(d, 0, n);
		}
		d += n;
		off += n;
		len -= n;
	}
	return 0;
}

static void ftv_close(struct vdisk *vd)
{
	ftv_free(vd->priv);
	vd->priv = NULL;
}

static int ftv_recipe(struct vdisk *vd, char *buf, size_t len, struct err *e)
{
	struct ftv *v = vd->priv;
	size_t n = strlen(v->recipe);

	if (!n)
		return 0;
	if (n >= len)
		return err_set(e, -ENOSPC, "file-tree view: recipe of %zu bytes does not fit", n);
	memcpy(buf, v->recipe, n + 1);
	return (int)n;
}

static const struct img_format ftv_fmt = {
	.name = "file-tree",
	.desc = "the file-tree view of a root filesystem (delta and apply)",
	.map = map_decode_all,
	.decode = ftv_decode,
	.close = ftv_close,
	.recipe = ftv_recipe,
};

int ftv_open(struct ft_source *src, const char *recipe, struct vdisk **out,
	     struct err *e)
{
	struct ftv *v = calloc(1, sizeof(*v));
	struct vdisk *vd = calloc(1, sizeof(*vd));
	struct io *io = io_null(src->what, 0);
	struct ftv_ent *x;
	uint8_t *b;
	int r;

	*out = NULL;
	if (!v || !vd || !io) {
		free(vd);
		io_close(io);
		free(v);
		ft_close(src);
		return ftv_nomem(e);
	}
	v->src = src;
	v->cur = SIZE_MAX;
	v->held_max = src->vd && src->vd->opts.max_table ? src->vd->opts.max_table : EI_MAX_TABLE;
	if (v->held_max > FTV_RECORDS_MAX)      /* record offsets are 32 bits */
		v->held_max = FTV_RECORDS_MAX;
	snprintf(v->recipe, sizeof(v->recipe), "%s", recipe ? recipe : "");
	r = src->ops->open_file ? 0 :
	    err_set(e, EI_EUNSUP, "file-tree view: %s cannot be read at random",
		    src->what);
	/* the header's region: its bytes in rec[], filled in below */
	if (r >= 0 && (r = ftv_rec_grow(v, FTV_HDR_USED, e)) >= 0 &&
	    (r = ftv_ent_add(v, e)) >= 0) {
		v->n = 1;
		v->ent[0].rlen = FTV_HDR_USED;
		v->rlen = FTV_HDR_USED;
		v->pos = FTV_HDR;
		r = ft_walk(src, ftv_visit, v, e);
	}
	if (r >= 0 && v->n < 2)
		r = err_set(e, EI_ECORRUPT, "file-tree view: %s has no root", src->what);
	/* the end record */
	if (r >= 0 && (r = ftv_rec_grow(v, v->rlen + FTV_END_LEN, e)) >= 0 &&
	    (r = ftv_ent_add(v, e)) >= 0) {
		x = &v->ent[v->n++];
		x->voff = v->pos;
		x->roff = (uint32_t)v->rlen;
		x->rlen = FTV_END_LEN;
		b = v->rec + v->rlen;
		memset(b, 0, FTV_END_LEN);
		memcpy(b, FTV_REC_MAGIC, 4);
		put_le32(b + 4, FTV_END_LEN);
		v->rlen += FTV_END_LEN;
		v->pos = ftv_up(v->pos + FTV_END_LEN, FTV_ALIGN);
	}
	if (r < 0) {
		ftv_free(v);
		free(vd);
		io_close(io);
		return r;
	}
	b = v->rec;
	memcpy(b, FTV_MAGIC, 8);
	put_le32(b + 8, FTV_VERSION);
	put_le32(b + 12, FTV_HDR);
	put_le64(b + 16, (uint64_t)src->mkfs_time);
	put_le64(b + 24, v->n - 2);
	put_le64(b + 32, v->pos);
	io->size = v->pos;
	vd->fmt = &ftv_fmt;
	vd->io = io;
	vd->size = v->pos;
	vd->priv = v;
	vd->dirfd = -1;
	*out = vd;
	return 0;
}

struct io *ftv_container(struct vdisk *vd)
{
	struct ftv *v;

	if (!vd || vd->fmt != &ftv_fmt)
		return NULL;
	v = vd->priv;
	return v->src->vd ? v->src->vd->io : NULL;
}

int ftv_open_path(const char *path, const struct open_opts *oo, struct vdisk **out,
		  struct err *e)
{
#if IS_ENABLED(CONFIG_FORMAT_SQUASHFS)
	struct open_opts o = *oo;
	struct ft_source *src = NULL;
	struct vdisk *raw = NULL;
	char recipe[1024];
	int r;

	*out = NULL;
	o.format = "raw";
	r = vdisk_open(path, &o, &raw, e);
	if (r < 0)
		return r;
	r = ft_open_squashfs(raw, path, &src, e);
	if (r < 0) {
		vdisk_close(raw);
		return r == EI_EFORMAT ?
		       err_set(e, EI_EFORMAT, "%s: not a squashfs root filesystem", path) : r;
	}
	src->vd = raw;
	r = ft_squashfs_recipe(src, recipe, sizeof(recipe), e);
	if (r < 0) {
		ft_close(src);
		return r;
	}
	/* a disk's recipe is not a root filesystem's; one of before files=on is */
	if (strstr(recipe, ",name="))
		recipe[0] = 0;
	else if (recipe[0] && !strstr(recipe, ",files=on") &&
		 strlen(recipe) + 10 < sizeof(recipe))
		strcat(recipe, ",files=on");
	return ftv_open(src, recipe, out, e);
#else
	(void)oo;
	*out = NULL;
	return err_set(e, EI_EFORMAT, "%s: this edgeimg reads no squashfs", path);
#endif
}

/* --- a view as a source ------------------------------------------------- */

struct ftv_src {
	struct ft_source src;
	struct vdisk *vd;
	uint64_t entries;
	uint8_t *rec;
	size_t rcap;
	char *path, *prev, *target, *link;
	struct ft_xattr *xa;
	char **xname;
	int walked;
};

struct ftv_file {
	struct ftv_src *q;
	uint64_t doff, size;
};

static int ftv_bad(struct ftv_src *q, uint64_t at, struct err *e, const char *what)
{
	return err_set(e, EI_ECORRUPT, "file-tree view: %s: %s at byte %llu", q->src.what,
		       what, (unsigned long long)at);
}

static int ftv_file_read(struct ft_file *f, uint64_t off, void *buf, size_t len,
			 struct err *e)
{
	struct ftv_file *x = f->priv;

	if (off > x->size || len > x->size - off)
		return err_set(e, -EINVAL, "file-tree view: a read past a file's %llu bytes",
			       (unsigned long long)x->size);
	return vdisk_read(x->q->vd, buf, len, x->doff + off, e);
}

/* A sparse file's holes: the 4 KiB blocks of zeros from @off on. */
static int ftv_file_hole(struct ft_file *f, uint64_t off, uint64_t *len, struct err *e)
{
	struct ftv_file *x = f->priv;
	uint8_t blk[FTV_ALIGN];
	uint64_t p = off;
	int r;

	*len = 0;
	while (p < x->size && p - off < (64u << 20)) {
		size_t n = (size_t)min_u64(FTV_ALIGN - (p & (FTV_ALIGN - 1)), x->size - p);

		r = vdisk_read(x->q->vd, blk, n, x->doff + p, e);
		if (r < 0)
			return r;
		if (!buf_is_zero(blk, n))
			break;
		p += n;
	}
	*len = p - off;
	return 0;
}

static int ftv_walk(struct ft_source *s, ft_visit_fn visit, void *arg, struct err *e)
{
	struct ftv_src *q = s->priv;
	struct vdisk *vd = q->vd;
	uint64_t pos = FTV_HDR, n = 0;
	int r;

	if (q->walked)
		return err_set(e, -EINVAL, "file-tree view: walked already");
	q->walked = 1;
	for (;;) {
		struct ft_entry ent = { 0 };
		struct ftv_file xf = { q, 0, 0 };
		struct ft_file ff = { 0 };
		uint8_t *b = q->rec;
		uint32_t len, nx;
		size_t plen, tlen, llen, at;

		if (pos > vd->size || vd->size - pos < FTV_END_LEN)
			return ftv_bad(q, pos, e, "no end record");
		r = vdisk_read(vd, b, FTV_END_LEN, pos, e);
		if (r < 0)
			return r;
		len = get_le32(b + 4);
		if (memcmp(b, FTV_REC_MAGIC, 4))
			return ftv_bad(q, pos, e, "no record magic");
		if (!b[8]) {    /* the end */
			if (len != FTV_END_LEN || n != q->entries ||
			    ftv_up(pos + FTV_END_LEN, FTV_ALIGN) != vd->size)
				return ftv_bad(q, pos, e, "an end record that does not end the view");
			return 0;
		}
		if (n == q->entries)
			return ftv_bad(q, pos, e, "more entries than the header's count");
		if (len < FTV_REC_FIXED || len > FTV_REC_MAX || len > vd->size - pos)
			return ftv_bad(q, pos, e, "a record length out of bounds");
		r = vdisk_read(vd, b + FTV_END_LEN, len - FTV_END_LEN, pos + FTV_END_LEN, e);
		if (r < 0)
			return r;
		if (b[8] < FT_REG || b[8] > FT_SOCK || (b[9] & ~FTV_F_SPARSE) ||
		    get_le16(b + 54) || get_le32(b + 12) > 07777)
			return ftv_bad(q, pos, e, "a bad type, flag or mode");
		ent.type = b[8];
		nx = get_le16(b + 10);
		ent.mode = get_le32(b + 12);
		ent.uid = get_le32(b + 16);
		ent.gid = get_le32(b + 20);
		ent.mtime = (int64_t)get_le64(b + 24);
		ent.size = get_le64(b + 32);
		ent.rdev_major = get_le32(b + 40);
		ent.rdev_minor = get_le32(b + 44);
		plen = get_le16(b + 48);
		tlen = get_le16(b + 50);
		llen = get_le16(b + 52);
		if (plen > FTV_STR_MAX || tlen > FTV_STR_MAX || llen > FTV_STR_MAX ||
		    nx > FT_XATTRS_MAX || FTV_REC_FIXED + plen + tlen + llen > len)
			return ftv_bad(q, pos, e, "string lengths out of bounds");
		at = FTV_REC_FIXED;
		memcpy(q->path, b + at, plen);
		q->path[plen] = 0;
		at += plen;
		memcpy(q->target, b + at, tlen);
		q->target[tlen] = 0;
		at += tlen;
		memcpy(q->link, b + at, llen);
		q->link[llen] = 0;
		at += llen;
		if (strlen(q->path) != plen || strlen(q->target) != tlen ||
		    strlen(q->link) != llen || !ft_path_ok(q->path) ||
		    (llen && !ft_path_ok(q->link)))
			return ftv_bad(q, pos, e, "a path, link or target with a NUL or a bad component");
		if (n ? ftv_path_cmp(q->prev, q->path) >= 0 : plen != 0 || ent.type != FT_DIR)
			return ftv_bad(q, pos, e, n ? "entries out of order" : "a first entry that is not the root");
		if ((ent.type == FT_SYMLINK) != (tlen != 0) ||
		    (llen && (ent.type == FT_DIR || ftv_path_cmp(q->link, q->path) >= 0)) ||
		    (ent.type != FT_REG && ent.size) ||
		    (ent.type != FT_REG && b[9]))
			return ftv_bad(q, pos, e, "fields that do not fit the entry's type");
		for (uint32_t i = 0; i < nx; i++) {
			size_t nl;
			uint32_t vl;

			if (len - at < 5)
				return ftv_bad(q, pos, e, "an xattr past its record");
			nl = b[at];
			vl = get_le32(b + at + 1);
			at += 5;
			if (!nl || vl > FT_XATTR_MAX || len - at < nl || len - at - nl < vl)
				return ftv_bad(q, pos, e, "an xattr out of bounds");
			memcpy(q->xname[i], b + at, nl);
			q->xname[i][nl] = 0;
			if (strlen(q->xname[i]) != nl ||
			    (i && strcmp(q->xname[i - 1], q->xname[i]) >= 0))
				return ftv_bad(q, pos, e, "xattr names with a NUL, unsorted or twice");
			q->xa[i].name = q->xname[i];
			q->xa[i].value = b + at + nl;
			q->xa[i].size = vl;
			at += nl + vl;
		}
		if (at != len)
			return ftv_bad(q, pos, e, "bytes after the record's fields");
		ent.path = q->path;
		ent.target = tlen ? q->target : NULL;
		ent.link_to = llen ? q->link : NULL;
		ent.nlink = llen ? 2 : 0;
		ent.ino = n + 1;
		ent.xattrs = q->xa;
		ent.n_xattrs = nx;
		ent.sparse = b[9] & FTV_F_SPARSE;
		pos += len;
		if (ent.type == FT_REG && !llen && ent.size) {
			xf.doff = ftv_up(pos, FTV_ALIGN);
			xf.size = ent.size;
			if (xf.doff > vd->size || ent.size > vd->size - xf.doff)
				return ftv_bad(q, pos, e, "a file's data past the view's end");
			ff.read = ftv_file_read;
			ff.hole = ent.sparse ? ftv_file_hole : NULL;
			ff.priv = &xf;
			pos = xf.doff + ent.size;
		} else if (ent.size && llen) {
			return ftv_bad(q, pos, e, "a hard link with data");
		}
		pos = ftv_up(pos, 8);
		r = visit(arg, &ent, ent.type == FT_REG && !llen ? &ff : NULL, e);
		if (r < 0)
			return r;
		memcpy(q->prev, q->path, plen + 1);
		n++;
	}
}

static void ftv_src_close(struct ft_source *s)
{
	struct ftv_src *q = s->priv;

	if (q->xname)
		for (unsigned i = 0; i < FT_XATTRS_MAX; i++)
			free(q->xname[i]);
	free(q->xname);
	free(q->xa);
	free(q->rec);
	free(q->path);
	free(q->prev);
	free(q->target);
	free(q->link);
	free(q);
}

static const struct ft_source_ops ftv_src_ops = {
	.name = "file-tree view",
	.walk = ftv_walk,
	.close = ftv_src_close,
};

int ftv_source(struct vdisk *vd, struct ft_source **out, struct err *e)
{
	struct ftv_src *q = calloc(1, sizeof(*q));
	uint8_t h[FTV_HDR_USED];
	int r;

	*out = NULL;
	if (!q)
		return ftv_nomem(e);
	q->src.ops = &ftv_src_ops;
	q->src.priv = q;
	q->src.what = "the file-tree view";
	q->vd = vd;
	q->rec = malloc(FTV_REC_MAX);
	q->path = malloc(FTV_STR_MAX + 1);
	q->prev = malloc(FTV_STR_MAX + 1);
	q->target = malloc(FTV_STR_MAX + 1);
	q->link = malloc(FTV_STR_MAX + 1);
	q->xa = calloc(FT_XATTRS_MAX, sizeof(*q->xa));
	q->xname = calloc(FT_XATTRS_MAX, sizeof(*q->xname));
	if (!q->rec || !q->path || !q->prev || !q->target || !q->link || !q->xa || !q->xname) {
		r = ftv_nomem(e);
		goto fail;
	}
	for (unsigned i = 0; i < FT_XATTRS_MAX; i++)
		if (!(q->xname[i] = malloc(FT_NAME_MAX + 1))) {
			r = ftv_nomem(e);
			goto fail;
		}
	if (vd->size < FTV_HDR + FTV_END_LEN) {
		r = err_set(e, EI_EFORMAT, "file-tree view: %llu bytes are too few for a view",
			    (unsigned long long)vd->size);
		goto fail;
	}
	r = vdisk_read(vd, h, sizeof(h), 0, e);
	if (r < 0)
		goto fail;
	if (memcmp(h, FTV_MAGIC, 8)) {
		r = err_set(e, EI_EFORMAT, "file-tree view: no magic at byte 0");
		goto fail;
	}
	if (get_le32(h + 8) != FTV_VERSION || get_le32(h + 12) != FTV_HDR ||
	    get_le64(h + 32) != vd->size || get_le64(h + 24) > FTV_ENTRIES_MAX ||
	    vd->size > FTV_SIZE_MAX) {
		r = err_set(e, EI_ECORRUPT,
			    "file-tree view: header version %u, size %u, entries %llu, view bytes %llu (of %llu)",
			    get_le32(h + 8), get_le32(h + 12), (unsigned long long)get_le64(h + 24),
			    (unsigned long long)get_le64(h + 32), (unsigned long long)vd->size);
		goto fail;
	}
	q->entries = get_le64(h + 24);
	q->src.mkfs_time = (int64_t)get_le64(h + 16);
	if (q->src.mkfs_time < -1 || q->src.mkfs_time > (int64_t)UINT32_MAX) {
		r = err_set(e, EI_ECORRUPT, "file-tree view: mkfs_time %lld out of bounds",
			    (long long)q->src.mkfs_time);
		goto fail;
	}
	*out = &q->src;
	return 0;
fail:
	ftv_src_close(&q->src);
	return r;
}
