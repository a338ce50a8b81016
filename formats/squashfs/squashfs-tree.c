// SPDX-License-Identifier: MIT
/*
 * squashfs writer of a file tree: a source's walk (src/files/ftree.h) as a
 * squashfs 4.0 root filesystem (the kernel's
 * Documentation/filesystems/squashfs.rst), laid out as mksquashfs lays it:
 *
 *   superblock | compressor options | file data blocks and fragment blocks,
 *   in walk order | inode table | directory table | fragment table |
 *   id table | xattr pairs, xattr id table | recipe | zeros to 4 KiB
 *
 * The walk is read once.  Each regular file's full blocks go through the
 * compression pipeline (src/codec/pipeline.h) as they are read, so the
 * output is the same for any -j; zero blocks and the source's holes are
 * sparse (size word 0); the tail that does not fill a block goes into a
 * fragment block (always, as mksquashfs -always-use-fragments): with
 * group_fragments, the open block of the files of its name, else the one
 * in walk order (sqt_frag_add()).  A file of
 * the size and SHA-256 of an earlier one is stored once: its blocks, already
 * written by then, are dropped by moving the output position back (as
 * mksquashfs does), and its inode points at the earlier file's blocks and
 * fragment.
 *
 * What stays in memory until the tables are written after the walk, per
 * entry: a node (the name, the inode's fields), a slot in the name hash,
 * per regular file its record (size, SHA-256, where its data is) and 4
 * bytes per data block; per unique xattr set its pairs, compressed.  The
 * directory table is built in memory (compressed) while the inode table is
 * written.  File data never is held but for the pipeline's units (the memory
 * cap) and the open fragment blocks (one, and with group_fragments up to 32
 * more, 4 MiB at most).
 *
 * After the walk, entries are sorted by name bytes in each directory;
 * inodes are written children before their directory (the root last) and
 * numbered as mksquashfs numbers them (pre-order, the root last), so the
 * bytes depend on the tree only, not on the order a source visits it in.
 * Inode types (basic or extended), directory headers and index entries are
 * chosen by mksquashfs's rules, so sqfsdiff finds no difference with
 * mksquashfs's image of the same tree.
 */
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "core/io.h"
#include "codec/pipeline.h"
#include "crypto/sha.h"
#include "files/ftree.h"
#include "squashfs.h"

#define SQT_MAX_ENTRIES (1u << 24)      /* entries of one tree */
#define SQT_MAX_IDS 65535               /* distinct uids and gids: no_ids is 16 bits */
#define SQT_NONE 0xffffffffu
#define SQT_MAX_RUN 65536               /* sparse blocks in one unit */
#define SQT_GROUPS 32                   /* group_fragments: open name blocks, at most */
#define SQT_GROUP_BYTES (4u << 20)      /* ... and their bytes, at most */

/* pipeline units */
#define SQT_ZERO SQFS_UNIT_ZERO /* out_len sparse blocks, no data */
#define SQT_RAW SQFS_UNIT_RAW   /* incompressible: store in[] */
#define SQT_FRAG 4u             /* a fragment block; off is its index */
#define SQT_DROP 8u             /* file off was a duplicate: drop its blocks */

/* node flags */
#define SQT_IMPLICIT 1u         /* a parent the walk did not visit */
#define SQT_HASKIDS 2u
#define SQT_NUMBERED 4u
#define SQT_WRITTEN 8u
#define SQT_LINKED 16u          /* hard links point at it */

struct sqt_node {
	uint64_t name;          /* offset of the name in the arena */
	uint64_t aux;           /* file: its record; symlink: the target's offset */
	uint64_t ref;           /* inode: table block << 16 | offset, once written */
	uint32_t parent;
	uint32_t link;          /* the node holding the inode: itself unless a hard link */
	uint32_t kids, nkids;   /* a directory's entries: a range of the sorted order */
	uint32_t number, nlink, xattr, uid, gid, mtime;
	uint32_t rdev;          /* device: the kernel's encoding; symlink: target length */
	uint16_t mode, name_len;
	uint8_t type, flags;
};

struct sqt_file {
	uint64_t size, start, sparse, nblocks, emitted;
	uint32_t *words;        /* nblocks size words */
	uint32_t frag, frag_off;
	uint32_t next;          /* the next file of its open fragment block */
	uint32_t dup;           /* the earlier file whose data this one is, or SQT_NONE */
	uint8_t started;
	uint8_t holes;          /* the source said it has holes */
	uint8_t sha[SHA256_LEN];
};

/*
 * An open fragment block: its bytes and its files (a list through
 * sqt_file.next, in the order they were added), whose fragment index is set
 * when the block is submitted.  A name block holds the tails of files of
 * one name (the last path component).
 */
struct sqt_fblock {
	uint8_t *buf;
	uint32_t used, head, last;
	uint64_t tick;          /* last use: the least recent is given up */
	uint16_t name_len;
	char name[FT_NAME_MAX + 1];
};

struct sqt_xset {
	uint64_t ref;           /* in the pairs: block << 16 | offset */
	uint32_t count, size;
	uint8_t sha[SHA256_LEN];
};

/* Open addressing: slot = index + 1, 0 empty. */
struct sqt_hash {
	uint32_t *slot;
	size_t cap, n;
};

struct sqt {
	struct ft_source *src;
	struct squashfs_sink sink;      /* the output; high: beyond dropped duplicates */
	const struct write_opts *wo;
	struct squashfs_wopts opt;
	struct pipeline *pl;
	/* the tree */
	struct sqt_node *node;
	uint32_t nnodes, node_cap;
	uint32_t *order;        /* non-root nodes by (parent, name) */
	char *arena;
	uint64_t arena_len, arena_cap;
	struct sqt_hash names;
	int64_t newest;         /* newest mtime the walk gave, or -1 */
	/* regular files */
	struct sqt_file *file;
	uint32_t nfiles, file_cap;
	struct sqt_hash dups;
	uint8_t *tail;          /* bs: a file's tail */
	/* fragments: open blocks, [0] in walk order, the others by name */
	struct sqt_fblock *fb;
	uint32_t nfb;
	uint64_t tick;
	uint64_t *frag_start;
	uint32_t *frag_word, nfrag, frag_cap;
	/* xattrs */
	struct sqt_xset *xset;
	uint32_t nxsets, xset_cap;
	struct sqt_hash xhash;
	struct squashfs_meta *xkv;
	/* ids */
	uint32_t *id, nids, id_cap;
	struct sqt_hash idhash;
	/* tables */
	struct squashfs_meta *itab, *dtab;
	uint8_t *ibuf;          /* a directory's index entries */
	size_t ibuf_len, ibuf_cap;
	uint32_t nidx;
	uint32_t ninodes;
};

static void *sqt_grow(void *p, uint32_t *cap, uint32_t need, size_t size)
{
	uint32_t c = *cap ? *cap : 16;
	void *q;

	if (need < *cap)
		return p;
	while (c <= need) {
		if (c > UINT32_MAX / 2)
			return NULL;
		c *= 2;
	}
	q = realloc(p, (size_t)c * size);
	if (q)
		*cap = c;
	return q;
}

static int sqt_nomem(struct err *e)
{
	return err_set(e, -ENOMEM, "squashfs: out of memory");
}

/* --- hash tables ------------------------------------------------------------ */

static uint64_t sqt_fnv(uint64_t h, const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

typedef uint64_t (*sqt_hash_fn)(const struct sqt *w, uint32_t idx);

/* Make room for one more entry. */
static int sqt_hash_reserve(struct sqt *w, struct sqt_hash *h, sqt_hash_fn fn, struct err *e)
{
	size_t cap = h->cap ? h->cap * 2 : 64;
	uint32_t *s;

	if ((h->n + 1) * 2 <= h->cap)
		return 0;
	s = calloc(cap, sizeof(*s));
	if (!s)
		return sqt_nomem(e);
	for (size_t i = 0; i < h->cap; i++) {
		size_t j;

		if (!h->slot[i])
			continue;
		for (j = fn(w, h->slot[i] - 1) & (cap - 1); s[j]; j = (j + 1) & (cap - 1))
			;
		s[j] = h->slot[i];
	}
	free(h->slot);
	h->slot = s;
	h->cap = cap;
	return 0;
}

static uint64_t sqt_name_hash(const struct sqt *w, uint32_t parent, const char *name, size_t len)
{
	(void)w;
	return sqt_fnv(sqt_fnv(0xcbf29ce484222325ull, &parent, sizeof(parent)), name, len);
}

static uint64_t sqt_node_hash(const struct sqt *w, uint32_t idx)
{
	const struct sqt_node *n = &w->node[idx];

	return sqt_name_hash(w, n->parent, w->arena + n->name, n->name_len);
}

static uint64_t sqt_file_hash(const struct sqt *w, uint32_t idx)
{
	return get_le64(w->file[idx].sha);
}

static uint64_t sqt_xset_hash(const struct sqt *w, uint32_t idx)
{
	return get_le64(w->xset[idx].sha);
}

static uint64_t sqt_id_hash(const struct sqt *w, uint32_t idx)
{
	return (uint64_t)w->id[idx] * 0x9e3779b97f4a7c15ull >> 13;
}

/* The slot of the entry of @parent named @name, or of where it would go. */
static size_t sqt_name_slot(const struct sqt *w, uint32_t parent, const char *name, size_t len)
{
	size_t mask = w->names.cap - 1, i;

	for (i = sqt_name_hash(w, parent, name, len) & mask; w->names.slot[i];
	     i = (i + 1) & mask) {
		const struct sqt_node *n = &w->node[w->names.slot[i] - 1];

		if (n->parent == parent && n->name_len == len &&
		    !memcmp(w->arena + n->name, name, len))
			break;
	}
	return i;
}

/* --- data blocks and fragments, through the pipeline -------------------------- */

static int sqt_work(void *arg, void **ctx, struct pl_unit *u, struct err *e)
{
	struct sqt *w = arg;

	if (u->flags & SQT_DROP)
		return 0;
	/* a fragment block is never sparse */
	return squashfs_unit_work(&w->opt, ctx, u, !(u->flags & SQT_FRAG), e);
}

static int sqt_emit(void *arg, struct pl_unit *u, struct err *e)
{
	struct sqt *w = arg;
	struct sqt_file *f;
	uint32_t word;
	int r;

	if (u->flags & SQT_FRAG) {
		w->frag_start[u->off] = w->sink.pos;
		if (u->flags & SQT_RAW) {
			w->frag_word[u->off] = (uint32_t)u->in_len | SQFS_BLOCK_UNCOMPRESSED;
			return squashfs_sink_write(&w->sink, u->in, u->in_len, e);
		}
		w->frag_word[u->off] = (uint32_t)u->out_len;
		return squashfs_sink_write(&w->sink, u->out, u->out_len, e);
	}
	f = &w->file[u->off];
	if (!f->started) {
		f->started = 1;
		f->start = w->sink.pos;
	}
	if (u->flags & SQT_DROP) {
		/* a duplicate: what it wrote is overwritten by what follows */
		w->sink.pos = f->start;
		free(f->words);
		f->words = NULL;
		return 0;
	}
	if (u->flags & SQT_ZERO) {
		for (size_t i = 0; i < u->out_len; i++)
			f->words[f->emitted++] = 0;
		f->sparse += (uint64_t)u->out_len * w->opt.bs;
		return 0;
	}
	if (u->flags & SQT_RAW) {
		word = (uint32_t)u->in_len | SQFS_BLOCK_UNCOMPRESSED;
		r = squashfs_sink_write(&w->sink, u->in, u->in_len, e);
	} else {
		word = (uint32_t)u->out_len;
		r = squashfs_sink_write(&w->sink, u->out, u->out_len, e);
	}
	f->words[f->emitted++] = word;
	return r;
}

static void sqt_ctx_free(void *arg, void *ctx)
{
	struct sqt *w = arg;

	squashfs_ctx_free(w->opt.comp, ctx);
}

static const struct pl_ops sqt_pl_ops = { sqt_work, sqt_emit, sqt_ctx_free };

static struct pl_unit *sqt_unit(struct sqt *w, struct err *e)
{
	struct pl_unit *u = pipeline_get(w->pl, e);

	if (u) {
		u->flags = 0;
		u->in_len = 0;
		u->out_len = 0;
	} else if (!e->code) {
		err_set(e, -EIO, "squashfs: the compression pipeline failed");
	}
	return u;
}

/* Submit open block @b as the next fragment block; its files point at it. */
static int sqt_frag_flush(struct sqt *w, struct sqt_fblock *b, struct err *e)
{
	struct pl_unit *u;
	uint64_t *s;
	uint32_t *v, cap = w->frag_cap;

	if (!b->used)
		return 0;
	if (w->nfrag == UINT32_MAX - 1)
		return err_set(e, EI_ELIMIT, "squashfs: more than %u fragment blocks", w->nfrag);
	s = sqt_grow(w->frag_start, &cap, w->nfrag, sizeof(*s));
	if (!s)
		return sqt_nomem(e);
	w->frag_start = s;
	cap = w->frag_cap;
	v = sqt_grow(w->frag_word, &cap, w->nfrag, sizeof(*v));
	if (!v)
		return sqt_nomem(e);
	w->frag_word = v;
	w->frag_cap = cap;
	u = sqt_unit(w, e);
	if (!u)
		return e->code;
	memcpy(u->in, b->buf, b->used);
	u->in_len = b->used;
	u->flags = SQT_FRAG;
	u->off = w->nfrag;
	for (uint32_t i = b->head; i != SQT_NONE; i = w->file[i].next)
		w->file[i].frag = w->nfrag;
	w->nfrag++;
	b->used = 0;
	b->head = b->last = SQT_NONE;
	return pipeline_submit(w->pl, u, e);
}

/* Append file @idx's tail @data, @len bytes, to open block @b. */
static int sqt_frag_put(struct sqt *w, struct sqt_fblock *b, uint32_t idx, const uint8_t *data,
			uint32_t len, struct err *e)
{
	struct sqt_file *f = &w->file[idx];
	int r;

	if (b->used + len > w->opt.bs && (r = sqt_frag_flush(w, b, e)) < 0)
		return r;
	f->frag_off = b->used;
	f->next = SQT_NONE;
	if (b->last == SQT_NONE)
		b->head = idx;
	else
		w->file[b->last].next = idx;
	b->last = idx;
	memcpy(b->buf + b->used, data, len);
	b->used += len;
	return 0;
}

/* Move the files of name block @b, in their order, to the walk-order block. */
static int sqt_frag_spill(struct sqt *w, struct sqt_fblock *b, struct err *e)
{
	uint32_t i = b->head, next;
	int r;

	b->head = b->last = SQT_NONE;
	for (; i != SQT_NONE; i = next) {
		struct sqt_file *f = &w->file[i];

		next = f->next;
		r = sqt_frag_put(w, &w->fb[0], i, b->buf + f->frag_off,
				 (uint32_t)(f->size & (w->opt.bs - 1)), e);
		if (r < 0)
			return r;
	}
	b->used = 0;
	return 0;
}

/*
 * File @idx's tail into a fragment block.  With group_fragments, tails of
 * files of the same name (copyright, Makefile, __init__.py) go into that
 * name's open block, where they compress against each other; when every
 * name block is taken, the least recently used one gives its files to the
 * walk-order block, as do all of them at the end.  The choice depends on
 * the walk only, so the bytes are the same for any -j.
 */
static int sqt_frag_add(struct sqt *w, uint32_t idx, const struct sqt_node *nd,
			const uint8_t *data, uint32_t len, struct err *e)
{
	const char *name = w->arena + nd->name;        /* checked: 1..FT_NAME_MAX bytes */
	uint16_t n = nd->name_len;
	struct sqt_fblock *b, *lru = NULL;
	int r;

	if (w->nfb == 1)
		return sqt_frag_put(w, &w->fb[0], idx, data, len, e);
	for (uint32_t i = 1; i < w->nfb; i++) {
		b = &w->fb[i];
		if (b->head != SQT_NONE && b->name_len == n && !memcmp(b->name, name, n)) {
			b->tick = ++w->tick;
			return sqt_frag_put(w, b, idx, data, len, e);
		}
		if (!lru || b->tick < lru->tick)
			lru = b;
	}
	if (lru->head != SQT_NONE && (r = sqt_frag_spill(w, lru, e)) < 0)
		return r;
	memcpy(lru->name, name, n);
	lru->name_len = n;
	lru->tick = ++w->tick;
	return sqt_frag_put(w, lru, idx, data, len, e);
}

/* After the walk: the name blocks' files into the walk-order block, in turn. */
static int sqt_frag_finish(struct sqt *w, struct err *e)
{
	int r;

	for (uint32_t i = 1; i < w->nfb; i++)
		if ((r = sqt_frag_spill(w, &w->fb[i], e)) < 0)
			return r;
	return sqt_frag_flush(w, &w->fb[0], e);
}

/* *@hole_end: where the hole known at @off ends (@off itself when data). */
static int sqt_hole(struct ft_file *f, uint64_t off, uint64_t *hole_end, struct err *e)
{
	uint64_t len = 0;
	int r;

	if (!f->hole || off < *hole_end)
		return 0;
	r = f->hole(f, off, &len, e);
	if (r < 0)
		return r;
	*hole_end = off + len;
	return 0;
}

/* A regular file's data: its blocks, its tail, or an earlier file's. */
static int sqt_file_data(struct sqt *w, struct sqt_node *nd, const struct ft_entry *ent,
			 struct ft_file *ff, struct err *e)
{
	uint32_t idx = w->nfiles, cap = w->file_cap, tail;
	uint64_t hole_end = 0, k = 0, hv;
	int seen_hole = 0;
	struct sqt_file *f, *p;
	struct sha256 sh;
	size_t slot, mask;
	int r;

	p = sqt_grow(w->file, &cap, idx, sizeof(*p));
	if (!p)
		return sqt_nomem(e);
	w->file = p;
	w->file_cap = cap;
	f = &w->file[idx];
	memset(f, 0, sizeof(*f));
	f->size = ent->size;
	f->nblocks = ent->size >> w->opt.log;
	f->frag = SQT_NONE;
	f->dup = SQT_NONE;
	if (f->nblocks > w->wo->mem_cap / 4)
		return err_set(e, EI_ELIMIT,
			       "squashfs: %s: %llu bytes need a block list of more than the memory cap (%llu bytes); use a larger block_size",
			       ent->path, (unsigned long long)ent->size,
			       (unsigned long long)w->wo->mem_cap);
	f->words = f->nblocks ? malloc(f->nblocks * 4) : NULL;
	if (f->nblocks && !f->words)
		return sqt_nomem(e);
	w->nfiles++;
	nd->aux = idx;
	if (!ff) {
		if (ent->size)
			return err_set(e, -EIO, "squashfs: %s: the source gave no data", ent->path);
		return 0;
	}
	tail = (uint32_t)(ent->size & (w->opt.bs - 1));
	sha256_init(&sh);
	while (k < f->nblocks) {
		uint64_t off = k << w->opt.log;
		struct pl_unit *u;

		if ((r = sqt_hole(ff, off, &hole_end, e)) < 0)
			return r;
		seen_hole |= hole_end > off;
		u = sqt_unit(w, e);
		if (!u)
			return e->code;
		u->off = idx;
		if (off + w->opt.bs <= hole_end) {
			size_t count = 0;

			while (k < f->nblocks && count < SQT_MAX_RUN &&
			       (k + 1) << w->opt.log <= hole_end) {
				k++;
				count++;
			}
			u->flags = SQT_ZERO;
			u->out_len = count;
			sha256_zeros(&sh, (uint64_t)count << w->opt.log);
		} else {
			r = ff->read(ff, off, u->in, w->opt.bs, e);
			if (r < 0)
				return r;       /* pipeline_free() takes the unit back */
			u->in_len = w->opt.bs;
			sha256_update(&sh, u->in, w->opt.bs);
			k++;
		}
		if ((r = pipeline_submit(w->pl, u, e)) < 0)
			return r;
	}
	if (tail) {
		uint64_t off = f->nblocks << w->opt.log;

		if ((r = sqt_hole(ff, off, &hole_end, e)) < 0)
			return r;
		seen_hole |= hole_end > off;
		if (off + tail <= hole_end)
			memset(w->tail, 0, tail);
		else if ((r = ff->read(ff, off, w->tail, tail, e)) < 0)
			return r;
		sha256_update(&sh, w->tail, tail);
	}
	sha256_final(&sh, f->sha);
	f->holes = (uint8_t)seen_hole;
	if (!f->size)
		return 0;
	/* The same size and SHA-256 as an earlier file: its data. */
	if ((r = sqt_hash_reserve(w, &w->dups, sqt_file_hash, e)) < 0)
		return r;
	mask = w->dups.cap - 1;
	hv = get_le64(f->sha);
	for (slot = hv & mask; w->dups.slot[slot]; slot = (slot + 1) & mask) {
		const struct sqt_file *o = &w->file[w->dups.slot[slot] - 1];

		if (o->size == f->size && !memcmp(o->sha, f->sha, SHA256_LEN))
			break;
	}
	if (w->dups.slot[slot]) {
		f->dup = w->dups.slot[slot] - 1;
		if (!f->nblocks)
			return 0;
		{
			struct pl_unit *u = sqt_unit(w, e);

			if (!u)
				return e->code;
			u->flags = SQT_DROP;
			u->off = idx;
			return pipeline_submit(w->pl, u, e);
		}
	}
	w->dups.slot[slot] = idx + 1;
	w->dups.n++;
	return tail ? sqt_frag_add(w, idx, nd, w->tail, tail, e) : 0;
}

/* --- extended attributes ---------------------------------------------------- */

static int sqt_xattr_prefix(const char *name, size_t *skip)
{
	static const char *const pfx[] = { "user.", "trusted.", "security." };

	for (int i = 0; i < 3; i++) {
		size_t n = strlen(pfx[i]);

		if (!strncmp(name, pfx[i], n) && name[n]) {
			*skip = n;
			return i;
		}
	}
	return -1;
}

/* The xattr set of @ent: *@out its index, or SQT_NONE. */
static int sqt_xattrs(struct sqt *w, const struct ft_entry *ent, uint32_t *out, struct err *e)
{
	uint32_t count = 0, size = 0, cap = w->xset_cap;
	struct sha256 sh;
	struct sqt_xset *x;
	uint8_t sha[SHA256_LEN], b[8];
	size_t slot, mask;
	int r;

	*out = SQT_NONE;
	sha256_init(&sh);
	for (unsigned i = 0; i < ent->n_xattrs; i++) {
		const struct ft_xattr *a = &ent->xattrs[i];
		size_t skip, nl = strlen(a->name);
		int t = sqt_xattr_prefix(a->name, &skip);

		if (t < 0) {
			ft_warnf(w->src, "%s: xattr %s left out: squashfs holds only user., trusted. and security. ones",
				 *ent->path ? ent->path : "/", a->name);
			continue;
		}
		if (nl > FT_NAME_MAX || a->size > FT_XATTR_MAX)
			return err_set(e, EI_ELIMIT,
				       "squashfs: %s: xattr %.64s: a name of %zu bytes or a value of %u bytes, more than %d or %d",
				       ent->path, a->name, nl, a->size, FT_NAME_MAX, FT_XATTR_MAX);
		put_le16(b, (uint16_t)t);
		put_le16(b + 2, (uint16_t)(nl - skip));
		put_le32(b + 4, a->size);
		sha256_update(&sh, b, 8);
		sha256_update(&sh, a->name + skip, nl - skip);
		sha256_update(&sh, a->value, a->size);
		count++;
		size += (uint32_t)(nl + 1 + a->size);  /* as mksquashfs: listxattr()'s bytes and the values */
	}
	if (!count)
		return 0;
	sha256_final(&sh, sha);
	if ((r = sqt_hash_reserve(w, &w->xhash, sqt_xset_hash, e)) < 0)
		return r;
	mask = w->xhash.cap - 1;
	for (slot = get_le64(sha) & mask; w->xhash.slot[slot]; slot = (slot + 1) & mask)
		if (!memcmp(w->xset[w->xhash.slot[slot] - 1].sha, sha, SHA256_LEN)) {
			*out = w->xhash.slot[slot] - 1;
			return 0;
		}
	x = sqt_grow(w->xset, &cap, w->nxsets, sizeof(*x));
	if (!x)
		return sqt_nomem(e);
	w->xset = x;
	w->xset_cap = cap;
	x = &w->xset[w->nxsets];
	x->ref = squashfs_meta_ref(w->xkv);
	x->count = count;
	x->size = size;
	memcpy(x->sha, sha, SHA256_LEN);
	for (unsigned i = 0; i < ent->n_xattrs; i++) {
		const struct ft_xattr *a = &ent->xattrs[i];
		size_t skip, nl = strlen(a->name);
		int t = sqt_xattr_prefix(a->name, &skip);

		if (t < 0)
			continue;
		put_le16(b, (uint16_t)t);
		put_le16(b + 2, (uint16_t)(nl - skip));
		put_le32(b + 4, a->size);
		if ((r = squashfs_meta_add(&w->sink, w->xkv, b, 4, e)) < 0 ||
		    (r = squashfs_meta_add(&w->sink, w->xkv, a->name + skip, nl - skip, e)) < 0 ||
		    (r = squashfs_meta_add(&w->sink, w->xkv, b + 4, 4, e)) < 0 ||
		    (r = squashfs_meta_add(&w->sink, w->xkv, a->value, a->size, e)) < 0)
			return r;
	}
	w->xhash.slot[slot] = w->nxsets + 1;
	w->xhash.n++;
	*out = w->nxsets++;
	return 0;
}

/* --- the walk: the tree in memory --------------------------------------------- */

static int sqt_arena_add(struct sqt *w, const char *s, size_t len, uint64_t *off, struct err *e)
{
	if (w->arena_len + len > w->arena_cap) {
		uint64_t cap = w->arena_cap ? w->arena_cap : 65536;
		char *p;

		while (cap < w->arena_len + len)
			cap *= 2;
		p = realloc(w->arena, cap);
		if (!p)
			return sqt_nomem(e);
		w->arena = p;
		w->arena_cap = cap;
	}
	memcpy(w->arena + w->arena_len, s, len);
	*off = w->arena_len;
	w->arena_len += len;
	return 0;
}

/* A new entry @name in directory @parent: *@idx. */
static int sqt_node_new(struct sqt *w, uint32_t parent, const char *name, size_t len,
			size_t slot, uint32_t *idx, struct err *e)
{
	uint32_t cap = w->node_cap;
	struct sqt_node *n;
	int r;

	if (w->nnodes >= SQT_MAX_ENTRIES)
		return err_set(e, EI_ELIMIT, "squashfs: more than %u entries in the tree",
			       SQT_MAX_ENTRIES);
	n = sqt_grow(w->node, &cap, w->nnodes, sizeof(*n));
	if (!n)
		return sqt_nomem(e);
	w->node = n;
	w->node_cap = cap;
	n = &w->node[w->nnodes];
	memset(n, 0, sizeof(*n));
	if ((r = sqt_arena_add(w, name, len, &n->name, e)) < 0)
		return r;
	n->name_len = (uint16_t)len;
	n->parent = parent;
	n->link = w->nnodes;
	n->xattr = SQT_NONE;
	n->type = FT_DIR;
	n->mode = 0755;
	n->flags = SQT_IMPLICIT;
	w->node[parent].flags |= SQT_HASKIDS;
	w->names.slot[slot] = w->nnodes + 1;
	w->names.n++;
	*idx = w->nnodes++;
	return 0;
}

/*
 * The node of @path (checked: components of 1..FT_NAME_MAX bytes, not "."
 * nor ".."), creating missing parents, and the last component too when
 * @create; else *@idx is SQT_NONE when it is not in the tree.
 */
static int sqt_lookup(struct sqt *w, const char *path, int create, uint32_t *idx,
		      struct err *e)
{
	uint32_t cur = 0;
	const char *p = path;

	while (*p) {
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p), slot;
		int r;

		if (len > FT_NAME_MAX)
			return err_set(e, EI_ELIMIT, "squashfs: %.64s...: a name of %zu bytes, more than %d",
				       path, len, FT_NAME_MAX);
		if (!len || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
			return err_set(e, EI_EUSAGE, "squashfs: %s: an empty, \".\" or \"..\" name",
				       path);
		if (w->node[cur].type != FT_DIR)
			return err_set(e, EI_EUSAGE, "squashfs: %s: %.*s is a %s, not a directory",
				       path, (int)(p - 1 - path), path,
				       ft_type_name(w->node[cur].type));
		if ((r = sqt_hash_reserve(w, &w->names, sqt_node_hash, e)) < 0)
			return r;
		slot = sqt_name_slot(w, cur, p, len);
		if (w->names.slot[slot]) {
			cur = w->names.slot[slot] - 1;
		} else if (create) {
			if ((r = sqt_node_new(w, cur, p, len, slot, &cur, e)) < 0)
				return r;
		} else {
			*idx = SQT_NONE;
			return 0;
		}
		p += len + (end ? 1 : 0);
		if (end && !*p)
			return err_set(e, EI_EUSAGE, "squashfs: %s: a path ending in /", path);
	}
	*idx = cur;
	return 0;
}

static uint32_t sqt_time(int64_t t)
{
	return t < 0 ? 0 : t > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

static int sqt_visit(void *arg, const struct ft_entry *ent, struct ft_file *f, struct err *e)
{
	struct sqt *w = arg;
	size_t plen = strlen(ent->path);
	struct sqt_node *n;
	uint32_t idx, xattr;
	int r;

	if (plen > FT_PATH_MAX)
		return err_set(e, EI_ELIMIT, "squashfs: a path of %zu bytes, more than %d: %.64s...",
			       plen, FT_PATH_MAX, ent->path);
	if (ent->path[0] == '/')
		return err_set(e, EI_EUSAGE, "squashfs: %s: an absolute path", ent->path);
	if (ent->type < FT_REG || ent->type > FT_SOCK)
		return err_set(e, EI_EUSAGE, "squashfs: %s: unknown type %d", ent->path, ent->type);
	if ((r = sqt_lookup(w, ent->path, 1, &idx, e)) < 0)
		return r;
	n = &w->node[idx];
	if (!idx && ent->type != FT_DIR)
		return err_set(e, EI_EUSAGE, "squashfs: the root is a %s, not a directory",
			       ft_type_name(ent->type));
	if (n->type == FT_DIR && ent->type != FT_DIR && (n->flags & SQT_HASKIDS))
		return err_set(e, EI_EUSAGE, "squashfs: %s: a directory with entries, and a %s",
			       ent->path, ft_type_name(ent->type));
	if ((n->flags & SQT_LINKED) && (ent->type == FT_DIR || ent->link_to))
		return err_set(e, EI_EUSAGE, "squashfs: %s: hard links point at it, and it is given again as a %s",
			       ent->path, ent->link_to ? "hard link" : "directory");
	/* An entry given twice (a tar may): the later one. */
	n->flags &= ~SQT_IMPLICIT;
	n->link = idx;
	if (ent->link_to) {
		uint32_t t;

		if (ent->type == FT_DIR)
			return err_set(e, EI_EUSAGE, "squashfs: %s: a hard link to a directory",
				       ent->path);
		if ((r = sqt_lookup(w, ent->link_to, 0, &t, e)) < 0)
			return r;
		if (t == SQT_NONE || t == idx)
			return err_set(e, EI_EUSAGE,
				       "squashfs: %s: a hard link to %s, which is not in the tree before it",
				       ent->path, ent->link_to);
		t = w->node[t].link;
		n = &w->node[idx];
		if (w->node[t].type == FT_DIR)
			return err_set(e, EI_EUSAGE, "squashfs: %s: a hard link to the directory %s",
				       ent->path, ent->link_to);
		n->link = t;
		n->type = w->node[t].type;
		w->node[t].flags |= SQT_LINKED;
		return 0;
	}
	if ((r = sqt_xattrs(w, ent, &xattr, e)) < 0)
		return r;
	n = &w->node[idx];
	n->type = (uint8_t)ent->type;
	n->mode = (uint16_t)(ent->mode & 07777);
	n->uid = ent->uid;
	n->gid = ent->gid;
	n->mtime = sqt_time(ent->mtime);
	n->xattr = xattr;
	if (w->newest < (int64_t)n->mtime)
		w->newest = n->mtime;
	switch (ent->type) {
	case FT_REG:
		return sqt_file_data(w, n, ent, f, e);
	case FT_SYMLINK: {
		size_t tl = ent->target ? strlen(ent->target) : 0;

		if (tl >= SQFS_SYMLINK_MAX)
			return err_set(e, EI_ELIMIT,
				       "squashfs: %s: a symlink target of %zu bytes, more than %d",
				       ent->path, tl, SQFS_SYMLINK_MAX - 1);
		if ((r = sqt_arena_add(w, ent->target ? ent->target : "", tl, &n->aux, e)) < 0)
			return r;
		w->node[idx].rdev = (uint32_t)tl;
		return 0;
	}
	case FT_BLK:
	case FT_CHR:
		if (ent->rdev_major > 0xfff || ent->rdev_minor > 0xfffff)
			return err_set(e, EI_ELIMIT,
				       "squashfs: %s: device %u,%u: squashfs holds majors to 4095 and minors to 1048575",
				       ent->path, ent->rdev_major, ent->rdev_minor);
		/* the kernel's new_encode_dev() */
		n->rdev = (ent->rdev_minor & 0xff) | ent->rdev_major << 8 |
			  (ent->rdev_minor & ~0xffu) << 12;
		return 0;
	default:
		return 0;
	}
}

/* --- after the walk: the tables ------------------------------------------------- */

struct sqt_key {
	const char *name;
	uint32_t parent, idx;
	uint16_t len;
};

static int sqt_key_cmp(const void *a, const void *b)
{
	const struct sqt_key *x = a, *y = b;
	int c;

	if (x->parent != y->parent)
		return x->parent < y->parent ? -1 : 1;
	c = memcmp(x->name, y->name, x->len < y->len ? x->len : y->len);
	if (c)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

/* Children sorted by name bytes, link counts. */
static int sqt_sort(struct sqt *w, struct err *e)
{
	uint32_t n = w->nnodes - 1;
	struct sqt_key *k = malloc((n ? n : 1) * sizeof(*k));

	w->order = malloc((n ? n : 1) * sizeof(*w->order));
	if (!k || !w->order) {
		free(k);
		return sqt_nomem(e);
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct sqt_node *d = &w->node[i + 1];

		k[i] = (struct sqt_key){ w->arena + d->name, d->parent, i + 1, d->name_len };
	}
	qsort(k, n, sizeof(*k), sqt_key_cmp);
	for (uint32_t i = 0; i < w->nnodes; i++)
		w->node[i].nlink = w->node[i].type == FT_DIR ? 2 : 0;
	for (uint32_t i = 0; i < n; i++) {
		struct sqt_node *d = &w->node[k[i].idx], *p = &w->node[k[i].parent];

		w->order[i] = k[i].idx;
		if (!p->nkids)
			p->kids = i;
		p->nkids++;
		if (d->type == FT_DIR)
			p->nlink++;
		else
			w->node[d->link].nlink++;
	}
	free(k);
	return 0;
}

/*
 * Inode numbers as mksquashfs gives them: a directory's entries in name
 * order, each followed by its own subtree (pre-order), the root last.
 */
static void sqt_number_dir(struct sqt *w, uint32_t dir)
{
	const struct sqt_node *d = &w->node[dir];

	for (uint32_t i = 0; i < d->nkids; i++) {
		uint32_t k = w->order[d->kids + i];
		struct sqt_node *c = &w->node[w->node[k].link];

		if (!(c->flags & SQT_NUMBERED)) {
			c->flags |= SQT_NUMBERED;
			c->number = ++w->ninodes;
		}
		if (c->type == FT_DIR)
			sqt_number_dir(w, k);
	}
}

static void sqt_number(struct sqt *w)
{
	sqt_number_dir(w, 0);
	w->node[0].number = ++w->ninodes;
}

static int sqt_id(struct sqt *w, uint32_t id, uint16_t *out, struct err *e)
{
	size_t slot, mask;
	uint32_t cap, *p;
	int r;

	if ((r = sqt_hash_reserve(w, &w->idhash, sqt_id_hash, e)) < 0)
		return r;
	mask = w->idhash.cap - 1;
	for (slot = ((uint64_t)id * 0x9e3779b97f4a7c15ull >> 13) & mask; w->idhash.slot[slot];
	     slot = (slot + 1) & mask)
		if (w->id[w->idhash.slot[slot] - 1] == id) {
			*out = (uint16_t)(w->idhash.slot[slot] - 1);
			return 0;
		}
	if (w->nids == SQT_MAX_IDS)
		return err_set(e, EI_ELIMIT, "squashfs: more than %d distinct uids and gids",
			       SQT_MAX_IDS);
	cap = w->id_cap;
	p = sqt_grow(w->id, &cap, w->nids, sizeof(*p));
	if (!p)
		return sqt_nomem(e);
	w->id = p;
	w->id_cap = cap;
	w->id[w->nids] = id;
	w->idhash.slot[slot] = w->nids + 1;
	w->idhash.n++;
	*out = (uint16_t)w->nids++;
	return 0;
}

/* Basic inode types of directory entries; extended = basic + 7. */
static const uint8_t sqt_itype[] = {
	[FT_REG] = SQFS_REG, [FT_DIR] = SQFS_DIR, [FT_SYMLINK] = SQFS_SYMLINK,
	[FT_BLK] = SQFS_BLKDEV, [FT_CHR] = SQFS_CHRDEV, [FT_FIFO] = SQFS_FIFO,
	[FT_SOCK] = SQFS_SOCKET,
};

/* The inode of a non-directory. */
static int sqt_inode(struct sqt *w, struct sqt_node *n, struct err *e)
{
	uint8_t b[SQFS_INODE_HDR + SQFS_LREG_SIZE], words[4096];
	unsigned type = sqt_itype[n->type];
	int ext = n->xattr != SQT_NONE;
	const struct sqt_file *f = NULL;
	uint64_t sparse = 0;
	uint16_t uid, gid;
	size_t len = SQFS_INODE_HDR;
	int r;

	if (n->type == FT_REG) {
		const struct sqt_file *own = &w->file[n->aux];

		f = own->dup != SQT_NONE ? &w->file[own->dup] : own;
		/*
		 * As mksquashfs: zero blocks are stored sparse, but the inode says
		 * so (for stat's block count) only when the source had holes.
		 */
		sparse = own->holes ? min_u64(f->sparse, f->size - 1) : 0;
		ext |= n->nlink > 1 || sparse || f->size >> 32 || f->start >> 32;
	}
	if ((r = sqt_id(w, n->uid, &uid, e)) < 0 || (r = sqt_id(w, n->gid, &gid, e)) < 0)
		return r;
	n->ref = squashfs_meta_ref(w->itab);
	n->flags |= SQT_WRITTEN;
	put_le16(b, (uint16_t)(ext ? type + 7 : type));
	put_le16(b + 2, n->mode);     /* permissions only, as mksquashfs: the kernel adds the type */
	put_le16(b + 4, uid);
	put_le16(b + 6, gid);
	put_le32(b + 8, n->mtime);
	put_le32(b + 12, n->number);
	switch (n->type) {
	case FT_REG:
		if (ext) {
			put_le64(b + 16, f->start);
			put_le64(b + 24, f->size);
			put_le64(b + 32, sparse);
			put_le32(b + 40, n->nlink);
			put_le32(b + 44, f->frag);
			put_le32(b + 48, f->frag == SQT_NONE ? 0 : f->frag_off);
			put_le32(b + 52, n->xattr);
			len += SQFS_LREG_SIZE;
		} else {
			put_le32(b + 16, (uint32_t)f->start);
			put_le32(b + 20, f->frag);
			put_le32(b + 24, f->frag == SQT_NONE ? 0 : f->frag_off);
			put_le32(b + 28, (uint32_t)f->size);
			len += SQFS_REG_SIZE;
		}
		r = squashfs_meta_add(&w->sink, w->itab, b, len, e);
		for (uint64_t i = 0; r >= 0 && i < f->nblocks; i += sizeof(words) / 4) {
			uint64_t c = min_u64(sizeof(words) / 4, f->nblocks - i);

			for (uint64_t j = 0; j < c; j++)
				put_le32(words + 4 * j, f->words[i + j]);
			r = squashfs_meta_add(&w->sink, w->itab, words, c * 4, e);
		}
		return r;
	case FT_SYMLINK:
		put_le32(b + 16, n->nlink);
		put_le32(b + 20, n->rdev);
		if ((r = squashfs_meta_add(&w->sink, w->itab, b, 24, e)) < 0 ||
		    (r = squashfs_meta_add(&w->sink, w->itab, w->arena + n->aux, n->rdev, e)) < 0)
			return r;
		if (!ext)
			return 0;
		put_le32(b, n->xattr);
		return squashfs_meta_add(&w->sink, w->itab, b, 4, e);
	case FT_BLK:
	case FT_CHR:
		put_le32(b + 16, n->nlink);
		put_le32(b + 20, n->rdev);
		put_le32(b + 24, n->xattr);
		return squashfs_meta_add(&w->sink, w->itab, b, ext ? 28 : 24, e);
	default:
		put_le32(b + 16, n->nlink);
		put_le32(b + 20, n->xattr);
		return squashfs_meta_add(&w->sink, w->itab, b, ext ? 24 : 20, e);
	}
}

/* An index entry of a large directory: listing offset @at in dir-table block @blk. */
static int sqt_dir_index(struct sqt *w, uint64_t at, uint64_t blk, const struct sqt_node *n,
			 struct err *e)
{
	size_t need = w->ibuf_len + 12 + n->name_len;

	if (need > w->ibuf_cap) {
		size_t cap = w->ibuf_cap ? w->ibuf_cap : 4096;
		uint8_t *p;

		while (cap < need)
			cap *= 2;
		p = realloc(w->ibuf, cap);
		if (!p)
			return sqt_nomem(e);
		w->ibuf = p;
		w->ibuf_cap = cap;
	}
	put_le32(w->ibuf + w->ibuf_len, (uint32_t)at);
	put_le32(w->ibuf + w->ibuf_len + 4, (uint32_t)blk);
	put_le32(w->ibuf + w->ibuf_len + 8, n->name_len - 1u);
	memcpy(w->ibuf + w->ibuf_len + 12, w->arena + n->name, n->name_len);
	w->ibuf_len = need;
	w->nidx++;
	return 0;
}

/* A directory: its entries' inodes, its listing, its inode. */
static int sqt_dir(struct sqt *w, uint32_t dir, uint32_t parent_number, struct err *e)
{
	struct sqt_node *d = &w->node[dir];
	uint64_t at;
	uint64_t len = 0, index_at = 0, names = 0;
	uint32_t i, j, hdrs = 0;
	uint16_t uid, gid;
	uint8_t b[SQFS_INODE_HDR + SQFS_LDIR_SIZE];
	int r, ext;

	for (i = 0; i < d->nkids; i++) {
		uint32_t c = w->order[d->kids + i];
		struct sqt_node *n = &w->node[c];

		if (n->type == FT_DIR)
			r = sqt_dir(w, c, d->number, e);
		else if (!(w->node[n->link].flags & SQT_WRITTEN))
			r = sqt_inode(w, &w->node[n->link], e);
		else
			r = 0;
		if (r < 0)
			return r;
		d = &w->node[dir];
	}
	/*
	 * The listing, as mksquashfs makes it: a header before each run of up
	 * to 256 entries whose inodes are in one metadata block, numbers within
	 * 16 bits of its base; also where the entries since the last index point
	 * would pass 8 KiB, and there an index entry (for the kernel's lookup).
	 */
	at = squashfs_meta_ref(w->dtab);
	if ((at >> 16) >> 32)
		return err_set(e, EI_ELIMIT, "squashfs: the directory table exceeds 4 GiB");
	w->nidx = 0;
	w->ibuf_len = 0;
	for (i = 0; i < d->nkids; i = j) {
		const struct sqt_node *h = &w->node[w->node[w->order[d->kids + i]].link];
		uint64_t blk = h->ref >> 16;
		uint32_t base = h->number;
		uint8_t hdr[SQFS_DIR_HDR];

		if (i) {
			const struct sqt_node *n = &w->node[w->order[d->kids + i]];

			if (len + SQFS_DIR_ENTRY + n->name_len - index_at > SQFS_META_SIZE) {
				if ((r = sqt_dir_index(w, len, w->dtab->written, n, e)) < 0)
					return r;
				index_at = len;
			}
		}
		for (j = i; j < d->nkids && j - i < SQFS_DIR_MAX_COUNT; j++) {
			const struct sqt_node *n = &w->node[w->order[d->kids + j]];
			const struct sqt_node *c = &w->node[n->link];
			int64_t delta = (int64_t)c->number - base;
			uint64_t ends = len + SQFS_DIR_HDR + (j - i + 1) * (uint64_t)SQFS_DIR_ENTRY +
					names + n->name_len;

			if (c->ref >> 16 != blk || delta < -32768 || delta > 32767 ||
			    (j > i && ends - index_at > SQFS_META_SIZE))
				break;
			names += n->name_len;
		}
		names = 0;
		if (blk >> 32)
			return err_set(e, EI_ELIMIT, "squashfs: the inode table exceeds 4 GiB");
		put_le32(hdr, j - i - 1);
		put_le32(hdr + 4, (uint32_t)blk);
		put_le32(hdr + 8, base);
		if ((r = squashfs_meta_add(&w->sink, w->dtab, hdr, sizeof(hdr), e)) < 0)
			return r;
		len += SQFS_DIR_HDR;
		hdrs++;
		for (uint32_t k = i; k < j; k++) {
			const struct sqt_node *n = &w->node[w->order[d->kids + k]];
			const struct sqt_node *c = &w->node[n->link];
			uint8_t ent[SQFS_DIR_ENTRY];

			put_le16(ent, (uint16_t)(c->ref & 0xffff));
			put_le16(ent + 2, (uint16_t)(int16_t)((int64_t)c->number - base));
			put_le16(ent + 4, sqt_itype[c->type]);
			put_le16(ent + 6, (uint16_t)(n->name_len - 1));
			if ((r = squashfs_meta_add(&w->sink, w->dtab, ent, sizeof(ent), e)) < 0 ||
			    (r = squashfs_meta_add(&w->sink, w->dtab, w->arena + n->name, n->name_len, e)) < 0)
				return r;
			len += SQFS_DIR_ENTRY + n->name_len;
		}
	}
	len += 3;               /* file_size counts "." and ".." */
	if (len > UINT32_MAX)
		return err_set(e, EI_ELIMIT, "squashfs: a directory of %u entries lists more than 4 GiB",
			       d->nkids);
	/* extended as mksquashfs: xattrs, or more than 256 entries or 8 KiB of them */
	ext = d->xattr != SQT_NONE || d->nkids > 256 || len > 0xffff ||
	      len - 3 - (uint64_t)SQFS_DIR_HDR * hdrs >= SQFS_META_SIZE;
	if (w->nidx > 0xffff)
		return err_set(e, EI_ELIMIT, "squashfs: a directory of %u entries needs more than 65535 index entries",
			       d->nkids);
	if ((r = sqt_id(w, d->uid, &uid, e)) < 0 || (r = sqt_id(w, d->gid, &gid, e)) < 0)
		return r;
	d->ref = squashfs_meta_ref(w->itab);
	d->flags |= SQT_WRITTEN;
	put_le16(b, ext ? SQFS_LDIR : SQFS_DIR);
	put_le16(b + 2, d->mode);
	put_le16(b + 4, uid);
	put_le16(b + 6, gid);
	put_le32(b + 8, d->mtime);
	put_le32(b + 12, d->number);
	if (ext) {
		put_le32(b + 16, d->nlink);
		put_le32(b + 20, (uint32_t)len);
		put_le32(b + 24, (uint32_t)(at >> 16));
		put_le32(b + 28, parent_number);
		put_le16(b + 32, (uint16_t)w->nidx);
		put_le16(b + 34, (uint16_t)(at & 0xffff));
		put_le32(b + 36, d->xattr);
		if ((r = squashfs_meta_add(&w->sink, w->itab, b, SQFS_INODE_HDR + SQFS_LDIR_SIZE, e)) < 0)
			return r;
		return squashfs_meta_add(&w->sink, w->itab, w->ibuf, w->ibuf_len, e);
	}
	put_le32(b + 16, (uint32_t)(at >> 16));
	put_le32(b + 20, d->nlink);
	put_le16(b + 24, (uint16_t)len);
	put_le16(b + 26, (uint16_t)(at & 0xffff));
	put_le32(b + 28, parent_number);
	return squashfs_meta_add(&w->sink, w->itab, b, SQFS_INODE_HDR + SQFS_DIR_SIZE, e);
}

static struct squashfs_meta *sqt_meta_new(int to_mem)
{
	struct squashfs_meta *m = calloc(1, sizeof(*m));

	if (m)
		m->to_mem = to_mem;
	return m;
}

static void sqt_meta_free(struct squashfs_meta *m)
{
	if (m)
		free(m->mem);
	free(m);
}

static void sqt_free(struct sqt *w)
{
	pipeline_free(w->pl);
	for (uint32_t i = 0; i < w->nfiles; i++)
		free(w->file[i].words);
	if (w->opt.comp)
		squashfs_ctx_free(w->opt.comp, w->sink.ctx);
	free(w->node);
	free(w->order);
	free(w->arena);
	free(w->names.slot);
	free(w->file);
	free(w->dups.slot);
	free(w->tail);
	for (uint32_t i = 0; i < w->nfb; i++)
		free(w->fb[i].buf);
	free(w->fb);
	free(w->frag_start);
	free(w->frag_word);
	free(w->xset);
	free(w->xhash.slot);
	sqt_meta_free(w->xkv);
	free(w->id);
	free(w->idhash.slot);
	free(w->ibuf);
	sqt_meta_free(w->itab);
	sqt_meta_free(w->dtab);
	free(w);
}

/* The tables after the data, filling @sb. */
static int sqt_tables(struct sqt *w, uint8_t *sb, struct err *e)
{
	uint8_t *t, hdr[16];
	uint64_t at;
	int r;

	if ((r = sqt_sort(w, e)) < 0)
		return r;
	sqt_number(w);
	put_le32(sb + SB_INODES, w->ninodes);
	/* inode table, to the output; directory table, in memory meanwhile */
	put_le64(sb + SB_INODE_TABLE, w->sink.pos);
	if ((r = sqt_dir(w, 0, w->ninodes + 1, e)) < 0 ||
	    (r = squashfs_meta_flush(&w->sink, w->itab, e)) < 0 ||
	    (r = squashfs_meta_flush(&w->sink, w->dtab, e)) < 0)
		return r;
	put_le64(sb + SB_ROOT_INODE, w->node[0].ref);
	put_le64(sb + SB_DIR_TABLE, w->sink.pos);
	if (w->dtab->written && (r = squashfs_sink_write(&w->sink, w->dtab->mem, w->dtab->written, e)) < 0)
		return r;
	if ((r = squashfs_frag_table(&w->sink, w->frag_start, w->frag_word, w->nfrag, sb, e)) < 0)
		return r;
	put_le64(sb + SB_EXPORT_TABLE, SQFS_INVALID_BLK);
	/* id table */
	t = malloc((size_t)w->nids * 4 + 1);
	if (!t)
		return sqt_nomem(e);
	for (uint32_t i = 0; i < w->nids; i++)
		put_le32(t + 4 * i, w->id[i]);
	r = squashfs_table(&w->sink, t, (size_t)w->nids * 4, NULL, 0, &at, e);
	free(t);
	if (r < 0)
		return r;
	put_le64(sb + SB_ID_TABLE, at);
	put_le16(sb + SB_NO_IDS, (uint16_t)w->nids);
	/* xattrs: the pairs, the id table, its header, the index */
	put_le64(sb + SB_XATTR_TABLE, SQFS_INVALID_BLK);
	if (!w->nxsets)
		return 0;
	if ((r = squashfs_meta_flush(&w->sink, w->xkv, e)) < 0)
		return r;
	put_le64(hdr, w->sink.pos);
	put_le32(hdr + 8, w->nxsets);
	put_le32(hdr + 12, 0);
	if ((r = squashfs_sink_write(&w->sink, w->xkv->mem, w->xkv->written, e)) < 0)
		return r;
	t = malloc((size_t)w->nxsets * 16);
	if (!t)
		return sqt_nomem(e);
	for (uint32_t i = 0; i < w->nxsets; i++) {
		put_le64(t + 16 * i, w->xset[i].ref);
		put_le32(t + 16 * i + 8, w->xset[i].count);
		put_le32(t + 16 * i + 12, w->xset[i].size);
	}
	r = squashfs_table(&w->sink, t, (size_t)w->nxsets * 16, hdr, sizeof(hdr), &at, e);
	free(t);
	put_le64(sb + SB_XATTR_TABLE, at);
	return r;
}

int ft_write_squashfs(struct ft_source *src, struct io *out, const struct write_opts *wo,
		      struct err *e)
{
	struct write_parsed tmp;
	const struct write_parsed *parsed;
	struct sqt *w = calloc(1, sizeof(*w));
	uint8_t sb[SQFS_SUPER_SIZE], co[SQFS_COMP_OPTS_MAX];
	uint32_t mkfs, cap = 0, nfb;
	size_t n;
	int r;

	if (!w)
		return sqt_nomem(e);
	w->src = src;
	w->sink.io = out;
	w->wo = wo;
	w->newest = -1;
	r = format_write_opts(&fmt_squashfs, wo, &tmp, &parsed, e);
	if (r < 0)
		goto out;
	memcpy(&w->opt, parsed->priv.bytes, sizeof(w->opt));
	w->opt.reuse = wo->reuse;
	w->sink.comp = w->opt.comp;
	w->sink.level = w->opt.level;
	w->sink.bs = w->opt.bs;
	if (w->opt.given & (SQFS_GIVEN_NAME | SQFS_GIVEN_PARTITIONS)) {
		r = err_set(e, EI_EUSAGE,
			    "squashfs: -o %s= is for a disk in a squashfs, not for a root filesystem (--files)",
			    w->opt.given & SQFS_GIVEN_NAME ? "name" : "partitions");
		goto out;
	}
	/* the walk-order block, and with group_fragments 4 MiB of name blocks */
	nfb = 1 + (w->opt.group ? (uint32_t)min_u64(SQT_GROUPS, SQT_GROUP_BYTES >> w->opt.log) : 0);
	if ((uint64_t)(7 + nfb) * w->opt.bs > wo->mem_cap) {
		r = err_set(e, EI_ELIMIT,
			    "squashfs: block_size=%u needs more than the memory cap of %llu bytes%s",
			    w->opt.bs, (unsigned long long)wo->mem_cap,
			    nfb > 1 ? " (with group_fragments=on)" : "");
		goto out;
	}
	w->tail = malloc(w->opt.bs);
	w->fb = calloc(nfb, sizeof(*w->fb));
	w->itab = sqt_meta_new(0);
	w->dtab = sqt_meta_new(1);
	w->xkv = sqt_meta_new(1);
	w->node = sqt_grow(NULL, &cap, 0, sizeof(*w->node));
	w->node_cap = cap;
	if (!w->tail || !w->fb || !w->itab || !w->dtab || !w->xkv || !w->node) {
		r = sqt_nomem(e);
		goto out;
	}
	for (w->nfb = 0; w->nfb < nfb; w->nfb++) {
		w->fb[w->nfb].head = w->fb[w->nfb].last = SQT_NONE;
		w->fb[w->nfb].buf = malloc(w->opt.bs);
		if (!w->fb[w->nfb].buf) {
			r = sqt_nomem(e);
			goto out;
		}
	}
	/* the root, until the walk gives it */
	memset(&w->node[0], 0, sizeof(w->node[0]));
	w->node[0].type = FT_DIR;
	w->node[0].mode = 0755;
	w->node[0].xattr = SQT_NONE;
	w->node[0].flags = SQT_IMPLICIT;
	w->nnodes = 1;

	memset(sb, 0, sizeof(sb));
	put_le32(sb, SQFS_MAGIC);
	put_le32(sb + SB_BLOCK_SIZE, w->opt.bs);
	put_le16(sb + SB_COMPRESSION, w->opt.comp->id);
	put_le16(sb + SB_BLOCK_LOG, (uint16_t)w->opt.log);
	put_le16(sb + SB_MAJOR, 4);
	put_le16(sb + SB_MINOR, 0);
	/* as mksquashfs: duplicates looked for; here tails always in fragments */
	put_le16(sb + SB_FLAGS, SQFS_FLAG_DUPLICATES | SQFS_FLAG_ALWAYS_FRAG);
	w->sink.pos = w->sink.high = SQFS_SUPER_SIZE;
	n = squashfs_comp_opts(w->opt.comp, w->opt.level, co);
	if (n) {
		put_le16(sb + SB_FLAGS, get_le16(sb + SB_FLAGS) | SQFS_FLAG_COMP_OPT);
		if ((r = squashfs_sink_write(&w->sink, co, n, e)) < 0)
			goto out;
	}
	r = pipeline_new(&sqt_pl_ops, w, wo->threads, w->opt.bs, w->opt.bs,
			 wo->mem_cap - (uint64_t)(3 + nfb) * w->opt.bs, &w->pl, e);
	if (r < 0)
		goto out;
	r = ft_walk(src, sqt_visit, w, e);
	if (r >= 0)
		r = sqt_frag_finish(w, e);
	if (r >= 0)
		r = pipeline_finish(w->pl, e);
	pipeline_free(w->pl);
	w->pl = NULL;
	if (r < 0)
		goto out;

	/* times: SOURCE_DATE_EPOCH (or mtime=) for all, else the entries' own */
	if (w->opt.given & SQFS_GIVEN_MTIME) {
		mkfs = w->opt.mtime;
		for (uint32_t i = 0; i < w->nnodes; i++)
			w->node[i].mtime = mkfs;
	} else {
		mkfs = src->mkfs_time >= 0 ? sqt_time(src->mkfs_time) :
		       w->newest >= 0 ? (uint32_t)w->newest : 0;
		for (uint32_t i = 0; i < w->nnodes; i++)
			if (w->node[i].flags & SQT_IMPLICIT)
				w->node[i].mtime = mkfs;
	}
	put_le32(sb + SB_MKFS_TIME, mkfs);
	if ((r = sqt_tables(w, sb, e)) < 0)
		goto out;
	put_le64(sb + SB_BYTES_USED, w->sink.pos);
	r = squashfs_trailer_write(&w->sink, &w->opt, 1, e);
	/* duplicates dropped at the end left bytes past it */
	if (r >= 0 && w->sink.high > w->sink.pos && !(out->flags & IO_BLOCKDEV))
		r = io_truncate(out, w->sink.pos, e);
	if (r >= 0)
		r = io_write(out, sb, sizeof(sb), 0, e);
out:
	sqt_free(w);
	return r;
}

int squashfs_write_view(struct vdisk *view, struct io *out, const struct write_opts *wo,
			struct err *e)
{
	struct ft_source *src;
	int r = ftv_source(view, &src, e);

	if (r == EI_EFORMAT)
		err_prefix(e, "squashfs: files=on takes a file-tree view (apply's input), not a disk; a root filesystem from a disk is convert --files");
	if (r < 0)
		return r;
	r = ft_write_squashfs(src, out, wo, e);
	ft_close(src);
	return r;
}
