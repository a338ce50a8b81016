// SPDX-License-Identifier: MIT
/*
 * squashfs writer: the virtual disk as one regular file (disk.img) in a
 * squashfs 4.0 filesystem that the kernel, unsquashfs and squashfs-tools-ng
 * read.  Layout, as mksquashfs lays it out:
 *
 *   superblock | compressor options (lz4 always; gzip, zstd when the level
 *   is not mksquashfs's default) | disk.img's blocks (zero blocks are sparse,
 *   incompressible ones stored plain, the last one short) | copies of
 *   unaligned partitions | the manifest | fragments | inode table |
 *   directory table | fragment table | id table | recipe | zero padding to 4 KiB
 *
 * With partitions=on each GPT/MBR partition is *also* a file pN.img, plus a
 * text manifest partitions.txt.  A partition that starts on a block
 * boundary shares disk.img's blocks (its block list is a slice of disk.img's,
 * as mksquashfs shares the blocks of duplicate files), so it costs only its
 * inode and a fragment for a tail that does not fill a block; a partition
 * that does not start on a block boundary is stored a second time.
 *
 * Blocks are compressed in the pipeline (src/codec/pipeline.h); the output is the
 * same bytes for any -j.  Memory: the pipeline's units plus disk.img's block
 * list, 4 bytes a block (32 KiB per GiB at 128 KiB blocks), which must go in
 * the inode table after the data; it is counted against the memory cap, so
 * the cap bounds the disk size per block size (64 MiB: 1 TiB at 128 KiB).
 */
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "codec/codec.h"
#include "generated/features.h"
#include "core/limits.h"
#include "codec/pipeline.h"
#include "crypto/sha.h"
#include "squashfs.h"

#define SQW_ZERO SQFS_UNIT_ZERO /* unit: out_len sparse blocks, no data */
#define SQW_RAW SQFS_UNIT_RAW   /* unit: incompressible, store in[] */
#define SQW_MAX_RUN 65536       /* sparse blocks in one unit */
#define SQW_MANIFEST "partitions.txt"
#define SQW_FILE_MODE 0644
#define SQW_DIR_MODE 0755
#define SQW_MAX_FILES (SQFS_MAX_PARTS + 2)

struct sqfs_writer_file {
	char name[72];
	uint64_t size;
	uint64_t start;         /* first data block */
	const uint32_t *words;  /* nblocks size words (own, or disk.img's) */
	uint32_t *own;
	uint64_t nblocks;
	uint64_t sparse;        /* bytes in sparse blocks */
	uint32_t frag, frag_off;
	uint64_t tail_src;      /* where the fragment tail is on the disk */
	uint32_t tail_len;
	const char *mem;        /* the content, when not from the disk */
	uint32_t number;
	uint64_t ref;           /* inode: block << 16 | offset */
};

struct sqfs_writer {
	struct vdisk *src;
	struct squashfs_sink sink;
	const struct write_opts *wopts;
	struct squashfs_wopts opt;
	uint64_t done, total;   /* progress */
	uint8_t *buf;           /* bs: compressed output in this thread */
	uint8_t *fbuf;          /* bs: the fragment being filled */
	uint32_t fused;
	uint64_t *frag_start;
	uint32_t *frag_word, nfrag, frag_cap;
	/* the stream being written through the pipeline */
	uint32_t *words;
	uint64_t nwords, sparse, slen;
	uint64_t pl_cap;        /* the pipeline's share of the memory cap */
	struct sqfs_writer_file file[SQW_MAX_FILES];
	unsigned nfiles;
	int shared;
	char *manifest;
};

int squashfs_sink_write(struct squashfs_sink *s, const void *p, size_t len, struct err *e)
{
	int r = io_write(s->io, p, len, s->pos, e);

	if (r < 0)
		return r;
	s->pos += len;
	if (s->pos > s->high)
		s->high = s->pos;
	return 0;
}

static int sqfs_writer_write(struct sqfs_writer *w, const void *p, size_t len, struct err *e)
{
	return squashfs_sink_write(&w->sink, p, len, e);
}

static void sqfs_writer_progress(struct sqfs_writer *w, uint64_t n)
{
	w->done += n;
	if (w->wopts->progress)
		w->wopts->progress(w->wopts->progress_arg, w->done, w->total);
}

/* Compress @len bytes of @in into w->buf; 1 when stored plain. */
static int sqfs_writer_pack(struct sqfs_writer *w, const uint8_t *in, size_t len,
		    size_t *out_len, struct err *e)
{
	size_t n = len - 1;
	int r;

	if (len < 2)
		return 1;
	r = squashfs_compress(w->opt.comp, &w->sink.ctx, in, len, w->buf, &n,
			      w->opt.level, w->opt.bs,
			      w->opt.skip_random ? SQFS_SKIP_RANDOM : 0, e);
	if (r == -ENOSPC)
		return 1;
	if (r < 0)
		return r;
	*out_len = n;
	return 0;
}

/* --- metadata: 8 KiB blocks, compressed when that is smaller ----------- */

/*
 * @len (1..SQFS_META_SIZE) bytes at @in as one stored metadata block: its
 * 2-byte header, then the bytes compressed when that is smaller, else plain,
 * into @out (SQFS_META_MAX_DISK bytes); *@out_len its length.
 */
static int squashfs_meta_encode(const struct squashfs_comp *c, void **ctx, int level,
				uint32_t block_size, const uint8_t *in, size_t len,
				uint8_t *out, size_t *out_len, struct err *e)
{
	size_t n = len - 1;
	int r = len < 2 ? -ENOSPC : squashfs_compress(c, ctx, in, len, out + 2, &n, level,
						      block_size, 0, e);

	if (r == -ENOSPC) {
		put_le16(out, (uint16_t)(len | SQFS_META_UNCOMPRESSED));
		memcpy(out + 2, in, len);
		*out_len = len + 2;
		return 0;
	}
	if (r < 0)
		return r;
	put_le16(out, (uint16_t)n);
	*out_len = n + 2;
	return 0;
}

int squashfs_meta_flush(struct squashfs_sink *s, struct squashfs_meta *m, struct err *e)
{
	uint8_t out[SQFS_META_MAX_DISK];
	size_t n = 0;
	int r;

	if (!m->used)
		return 0;
	r = squashfs_meta_encode(s->comp, &s->ctx, s->level, s->bs, m->buf, m->used, out, &n, e);
	if (r < 0)
		return r;
	if (m->to_mem) {
		if (m->written + n > m->mem_cap) {
			size_t cap = m->mem_cap ? 2 * m->mem_cap : 4 * SQFS_META_MAX_DISK;
			uint8_t *p = realloc(m->mem, cap);

			if (!p)
				return err_set(e, -ENOMEM, "squashfs: out of memory");
			m->mem = p;
			m->mem_cap = cap;
		}
		memcpy(m->mem + m->written, out, n);
	} else if ((r = squashfs_sink_write(s, out, n, e)) < 0) {
		return r;
	}
	m->written += n;
	m->used = 0;
	return 0;
}

int squashfs_meta_add(struct squashfs_sink *s, struct squashfs_meta *m, const void *p,
		      size_t len, struct err *e)
{
	const uint8_t *b = p;

	while (len) {
		size_t n = min_u64(len, SQFS_META_SIZE - m->used);
		int r;

		memcpy(m->buf + m->used, b, n);
		m->used += n;
		b += n;
		len -= n;
		if (m->used == SQFS_META_SIZE && (r = squashfs_meta_flush(s, m, e)) < 0)
			return r;
	}
	return 0;
}

uint64_t squashfs_meta_ref(const struct squashfs_meta *m)
{
	return m->written << 16 | m->used;
}

int squashfs_table(struct squashfs_sink *s, const uint8_t *data, size_t len,
		   const uint8_t *hdr, size_t hdr_len, uint64_t *at, struct err *e)
{
	size_t nb = (len + SQFS_META_SIZE - 1) / SQFS_META_SIZE;
	uint64_t *blk = malloc((nb ? nb : 1) * sizeof(*blk));
	uint8_t out[SQFS_META_MAX_DISK], p[8];
	int r = blk ? 0 : err_set(e, -ENOMEM, "squashfs: out of memory");

	for (size_t i = 0; r >= 0 && i < nb; i++) {
		size_t n = 0, l = min_u64(SQFS_META_SIZE, len - i * SQFS_META_SIZE);

		blk[i] = s->pos;
		r = squashfs_meta_encode(s->comp, &s->ctx, s->level, s->bs,
					 data + i * SQFS_META_SIZE, l, out, &n, e);
		if (r >= 0)
			r = squashfs_sink_write(s, out, n, e);
	}
	*at = s->pos;
	if (r >= 0 && hdr_len)
		r = squashfs_sink_write(s, hdr, hdr_len, e);
	for (size_t i = 0; r >= 0 && i < nb; i++) {
		put_le64(p, blk[i]);
		r = squashfs_sink_write(s, p, 8, e);
	}
	free(blk);
	return r;
}

int squashfs_frag_table(struct squashfs_sink *s, const uint64_t *start, const uint32_t *word,
			uint32_t n, uint8_t *sb, struct err *e)
{
	uint64_t at = s->pos;
	uint8_t *t;
	int r;

	put_le32(sb + SB_FRAGMENTS, n);
	put_le64(sb + SB_FRAG_TABLE, at);
	if (!n)
		return 0;
	t = malloc((size_t)n * 16);
	if (!t)
		return err_set(e, -ENOMEM, "squashfs: out of memory");
	for (uint32_t i = 0; i < n; i++) {
		put_le64(t + 16 * i, start[i]);
		put_le32(t + 16 * i + 8, word[i]);
		put_le32(t + 16 * i + 12, 0);
	}
	r = squashfs_table(s, t, (size_t)n * 16, NULL, 0, &at, e);
	free(t);
	put_le64(sb + SB_FRAG_TABLE, at);
	return r;
}

/* --- data blocks, through the pipeline ----------------------------------- */

int squashfs_unit_work(const struct squashfs_wopts *o, void **ctx, struct pl_unit *u,
		       int sparse_ok, struct err *e)
{
	size_t n = u->in_len - 1, hit = 0;
	uint8_t hsha[SHA256_LEN];
	int r, proving = 0;

	if (u->flags & SQFS_UNIT_ZERO)
		return 0;
	if (sparse_ok && buf_is_zero(u->in, u->in_len)) {
		u->flags |= SQFS_UNIT_ZERO;
		u->out_len = 1;
		return 0;
	}
	if (u->in_len < 2) {
		u->flags |= SQFS_UNIT_RAW;
		return 0;
	}
	if (o->reuse && !reuse_refused(o->reuse)) {
		int raw = 0;

		r = o->reuse->lookup(o->reuse, u->in, u->in_len, u->out, n, &n, &raw, e);
		if (r < 0)
			return r;
		if (r && !reuse_trusted(o->reuse)) {
			/* compressed below, and compared with the hit (0: raw) */
			proving = 1;
			hit = raw ? 0 : n;
			if (!raw)
				sha256(u->out, n, hsha);
		} else if (r) {
			if (raw)
				u->flags |= SQFS_UNIT_RAW;
			else
				u->out_len = n;
			return 0;
		}
		n = u->in_len - 1;
	}
	r = squashfs_compress(o->comp, ctx, u->in, u->in_len, u->out, &n, o->level, o->bs,
			      o->skip_random ? SQFS_SKIP_RANDOM : 0, e);
	if (r == -ENOSPC) {
		u->flags |= SQFS_UNIT_RAW;
		n = 0;
		r = 0;
	}
	if (r < 0)
		return r;
	if (proving) {
		uint8_t sha[SHA256_LEN];

		if (n)
			sha256(u->out, n, sha);
		reuse_proof(o->reuse, n == hit && (!n || !memcmp(sha, hsha, SHA256_LEN)));
	}
	if (n)
		u->out_len = n;
	return 0;
}

static int sqfs_writer_work(void *arg, void **ctx, struct pl_unit *u, struct err *e)
{
	struct sqfs_writer *w = arg;

	return squashfs_unit_work(&w->opt, ctx, u, 1, e);
}

static int sqfs_writer_emit(void *arg, struct pl_unit *u, struct err *e)
{
	struct sqfs_writer *w = arg;
	int r;

	if (u->flags & SQW_ZERO) {
		uint64_t bytes = 0;

		for (size_t i = 0; i < u->out_len; i++, w->nwords++) {
			uint64_t len = min_u64(w->opt.bs, w->slen - (w->nwords << w->opt.log));

			w->words[w->nwords] = 0;
			bytes += len;
		}
		w->sparse += bytes;
		sqfs_writer_progress(w, bytes);
		return 0;
	}
	if (u->flags & SQW_RAW) {
		r = sqfs_writer_write(w, u->in, u->in_len, e);
		w->words[w->nwords++] = (uint32_t)u->in_len | SQFS_BLOCK_UNCOMPRESSED;
	} else {
		r = sqfs_writer_write(w, u->out, u->out_len, e);
		w->words[w->nwords++] = (uint32_t)u->out_len;
	}
	sqfs_writer_progress(w, u->in_len);
	return r;
}

static void sqfs_writer_ctx_free(void *arg, void *ctx)
{
	struct sqfs_writer *w = arg;

	squashfs_ctx_free(w->opt.comp, ctx);
}

static const struct pl_ops sqfs_writer_pl_ops = {
	.work = sqfs_writer_work,
	.emit = sqfs_writer_emit,
	.ctx_free = sqfs_writer_ctx_free,
};

/*
 * Where the disk reads as zero or as data, to skip zeros without reading
 * them and to read data without asking again.
 */
struct sqfs_writer_map {
	uint64_t zero_until, data_until;
};

static int sqfs_writer_map_at(struct sqfs_writer *w, struct sqfs_writer_map *m, uint64_t off,
		      uint64_t end, struct err *e)
{
	struct extent ext;
	int r;

	if (off < m->zero_until || off < m->data_until)
		return 0;
	r = vdisk_extent(w->src, off, end - off, &ext, e);
	if (r < 0)
		return r;
	if (ext.type == EXT_DATA)
		m->data_until = off + ext.len;
	else
		m->zero_until = off + ext.len;
	return 0;
}

/* Fill @buf with the @len disk bytes at @off. */
static int sqfs_writer_fill(struct sqfs_writer *w, struct sqfs_writer_map *m, uint8_t *buf,
		    uint64_t off, size_t len, uint64_t end, struct err *e)
{
	uint64_t pos = off;

	while (pos < off + len) {
		uint64_t stop = off + len, n;
		int r = sqfs_writer_map_at(w, m, pos, end, e);

		if (r < 0)
			return r;
		if (pos < m->data_until) {
			n = min_u64(stop, m->data_until) - pos;
			r = vdisk_read(w->src, buf + (pos - off), n, pos, e);
			if (r < 0)
				return r;
		} else {
			n = min_u64(stop, m->zero_until) - pos;
			memset(buf + (pos - off), 0, n);
		}
		pos += n;
	}
	return 0;
}

/*
 * Write the @len disk bytes at @off as the blocks of one file (the last
 * one short), filling @words; *@sparse gets the bytes of sparse blocks.
 */
static int sqfs_writer_stream(struct sqfs_writer *w, uint64_t off, uint64_t len,
		      uint32_t *words, uint64_t *sparse, struct err *e)
{
	uint64_t nb = (len + w->opt.bs - 1) >> w->opt.log, k = 0, end = off + len;
	struct sqfs_writer_map map = { 0, 0 };
	struct pipeline *p = NULL;
	int r;

	r = pipeline_new(&sqfs_writer_pl_ops, w, w->wopts->threads, w->opt.bs, w->opt.bs,
			 w->pl_cap, &p, e);
	if (r < 0)
		return r;
	w->words = words;
	w->nwords = 0;
	w->sparse = 0;
	w->slen = len;
	while (r >= 0 && k < nb) {
		uint64_t boff = off + (k << w->opt.log);
		size_t blen = (size_t)min_u64(w->opt.bs, end - boff);
		struct pl_unit *u;

		r = sqfs_writer_map_at(w, &map, boff, end, e);
		if (r < 0)
			break;
		u = pipeline_get(p, e);
		if (!u) {
			r = e->code ? e->code : -EIO;
			break;
		}
		u->off = boff;
		if (boff + blen <= map.zero_until) {
			size_t count = 0;

			while (k < nb && count < SQW_MAX_RUN &&
			       min_u64(off + ((k + 1) << w->opt.log), end) <= map.zero_until) {
				k++;
				count++;
			}
			u->flags = SQW_ZERO;
			u->out_len = count;
		} else {
			r = sqfs_writer_fill(w, &map, u->in, boff, blen, end, e);
			u->in_len = blen;
			k++;
		}
		if (r >= 0)
			r = pipeline_submit(p, u, e);
	}
	if (r >= 0)
		r = pipeline_finish(p, e);
	pipeline_free(p);
	if (r >= 0 && w->nwords != nb)
		r = err_set(e, -EIO, "squashfs: %llu of %llu blocks written",
			    (unsigned long long)w->nwords, (unsigned long long)nb);
	*sparse = w->sparse;
	return r;
}

/* --- fragments: the tails of files that do not fill a block ------------- */

static int sqfs_writer_frag_flush(struct sqfs_writer *w, struct err *e)
{
	size_t n = 0;
	int r;

	if (!w->fused)
		return 0;
	if (w->nfrag == w->frag_cap) {
		uint32_t cap = w->frag_cap ? 2 * w->frag_cap : 16;
		uint64_t *s = realloc(w->frag_start, cap * sizeof(*s));
		uint32_t *v;

		if (s)
			w->frag_start = s;
		v = s ? realloc(w->frag_word, cap * sizeof(*v)) : NULL;
		if (!v)
			return err_set(e, -ENOMEM, "squashfs: out of memory");
		w->frag_word = v;
		w->frag_cap = cap;
	}
	w->frag_start[w->nfrag] = w->sink.pos;
	r = sqfs_writer_pack(w, w->fbuf, w->fused, &n, e);
	if (r < 0)
		return r;
	if (r) {
		w->frag_word[w->nfrag] = w->fused | SQFS_BLOCK_UNCOMPRESSED;
		r = sqfs_writer_write(w, w->fbuf, w->fused, e);
	} else {
		w->frag_word[w->nfrag] = (uint32_t)n;
		r = sqfs_writer_write(w, w->buf, n, e);
	}
	w->nfrag++;
	w->fused = 0;
	return r;
}

static int sqfs_writer_frag_add(struct sqfs_writer *w, struct sqfs_writer_file *f, struct err *e)
{
	int r;

	if (!f->tail_len)
		return 0;
	if (w->fused + f->tail_len > w->opt.bs && (r = sqfs_writer_frag_flush(w, e)) < 0)
		return r;
	f->frag = w->nfrag;
	f->frag_off = w->fused;
	if (f->mem)
		memcpy(w->fbuf + w->fused, f->mem + (f->size - f->tail_len),
		       f->tail_len);
	else if ((r = vdisk_read(w->src, w->fbuf + w->fused, f->tail_len,
				 f->tail_src, e)) < 0)
		return r;
	w->fused += f->tail_len;
	return 0;
}

/* --- the files ----------------------------------------------------------- */

static struct sqfs_writer_file *sqfs_writer_file_new(struct sqfs_writer *w, const char *name,
				     uint64_t size)
{
	struct sqfs_writer_file *f = &w->file[w->nfiles++];

	memset(f, 0, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->size = size;
	f->frag = SQFS_INVALID_FRAG;
	return f;
}

/* A file whose content is in memory: blocks here, the tail in a fragment. */
static int sqfs_writer_mem_file(struct sqfs_writer *w, struct sqfs_writer_file *f, struct err *e)
{
	f->nblocks = f->size >> w->opt.log;
	f->tail_len = (uint32_t)(f->size & (w->opt.bs - 1));
	f->own = calloc(f->nblocks ? f->nblocks : 1, sizeof(*f->own));
	if (!f->own)
		return err_set(e, -ENOMEM, "squashfs: out of memory");
	f->words = f->own;
	f->start = w->sink.pos;
	for (uint64_t i = 0; i < f->nblocks; i++) {
		const uint8_t *b = (const uint8_t *)f->mem + (i << w->opt.log);
		size_t n = 0;
		int r = sqfs_writer_pack(w, b, w->opt.bs, &n, e);

		if (r < 0)
			return r;
		f->own[i] = r ? w->opt.bs | SQFS_BLOCK_UNCOMPRESSED : (uint32_t)n;
		r = sqfs_writer_write(w, r ? b : w->buf, r ? w->opt.bs : n, e);
		if (r < 0)
			return r;
	}
	return 0;
}

static int sqfs_writer_manifest(struct sqfs_writer *w, const struct squashfs_ptable *pt,
			struct err *e)
{
	size_t cap = 256 + (size_t)pt->n * 320, len;
	char *s = malloc(cap);

	if (!s)
		return err_set(e, -ENOMEM, "squashfs: out of memory");
	len = (size_t)snprintf(s, cap,
			       "# edgeimg partitions of %s: %s, %u partitions, %llu bytes\n"
			       "# index file start size type uuid name (start and size in bytes)\n",
			       w->opt.name, pt->kind, pt->n,
			       (unsigned long long)w->src->size);
	for (unsigned i = 0; i < pt->n; i++) {
		const struct squashfs_part *p = &pt->part[i];

		len += (size_t)snprintf(s + len, cap - len,
					"%u p%u.img %llu %llu %s %s \"%s\"\n",
					p->index, p->index,
					(unsigned long long)p->start,
					(unsigned long long)p->size, p->type,
					p->uuid, p->name);
	}
	w->manifest = s;
	sqfs_writer_file_new(w, SQW_MANIFEST, len)->mem = s;
	return 0;
}

/* The files of partitions=on, after disk.img (file[0]) is written. */
static int sqfs_writer_partitions(struct sqfs_writer *w, const struct squashfs_ptable *pt,
			  struct err *e)
{
	const struct sqfs_writer_file *disk = &w->file[0];
	int r;

	for (unsigned i = 0; i < pt->n; i++) {
		const struct squashfs_part *p = &pt->part[i];
		char name[32];
		struct sqfs_writer_file *f;

		snprintf(name, sizeof(name), "p%u.img", p->index);
		f = sqfs_writer_file_new(w, name, p->size);
		if (p->start & (w->opt.bs - 1)) {
			/* Not on a block boundary: a copy of its own. */
			f->nblocks = (p->size + w->opt.bs - 1) >> w->opt.log;
			f->own = malloc(f->nblocks ? f->nblocks * 4 : 1);
			if (!f->own)
				return err_set(e, -ENOMEM, "squashfs: out of memory");
			f->words = f->own;
			f->start = w->sink.pos;
			r = sqfs_writer_stream(w, p->start, p->size, f->own, &f->sparse, e);
			if (r < 0)
				return r;
			continue;
		}
		/* On a block boundary: a slice of disk.img's blocks. */
		f->nblocks = p->size >> w->opt.log;
		f->words = disk->words + (p->start >> w->opt.log);
		f->start = disk->start;
		for (uint64_t b = 0; b < (p->start >> w->opt.log); b++)
			f->start += disk->words[b] & SQFS_BLOCK_SIZE_MASK;
		for (uint64_t b = 0; b < f->nblocks; b++)
			if (!f->words[b])
				f->sparse += w->opt.bs;
		f->tail_len = (uint32_t)(p->size & (w->opt.bs - 1));
		f->tail_src = p->start + (f->nblocks << w->opt.log);
		w->shared |= f->nblocks > 0;
	}
	return sqfs_writer_manifest(w, pt, e);
}

/* --- inode and directory tables ------------------------------------------ */

static void sqfs_writer_inode_hdr(uint8_t *b, unsigned type, unsigned mode,
			  uint32_t mtime, uint32_t number)
{
	put_le16(b, (uint16_t)type);
	put_le16(b + 2, (uint16_t)mode);
	put_le16(b + 4, 0);     /* uid: id 0 (root) */
	put_le16(b + 6, 0);     /* gid */
	put_le32(b + 8, mtime);
	put_le32(b + 12, number);
}

static int sqfs_writer_file_inode(struct sqfs_writer *w, struct squashfs_meta *m,
			  struct sqfs_writer_file *f, struct err *e)
{
	uint8_t b[SQFS_INODE_HDR + SQFS_LREG_SIZE], words[4096];
	int ext = f->sparse || f->size >> 32 || f->start >> 32;
	size_t n = 0;
	int r;

	f->ref = squashfs_meta_ref(m);
	sqfs_writer_inode_hdr(b, ext ? SQFS_LREG : SQFS_REG, SQW_FILE_MODE, w->opt.mtime,
		      f->number);
	if (ext) {
		put_le64(b + 16, f->start);
		put_le64(b + 24, f->size);
		put_le64(b + 32, f->sparse);
		put_le32(b + 40, 1);
		put_le32(b + 44, f->frag);
		put_le32(b + 48, f->frag == SQFS_INVALID_FRAG ? 0 : f->frag_off);
		put_le32(b + 52, SQFS_INVALID_XATTR);
		n = SQFS_INODE_HDR + SQFS_LREG_SIZE;
	} else {
		put_le32(b + 16, (uint32_t)f->start);
		put_le32(b + 20, f->frag);
		put_le32(b + 24, f->frag == SQFS_INVALID_FRAG ? 0 : f->frag_off);
		put_le32(b + 28, (uint32_t)f->size);
		n = SQFS_INODE_HDR + SQFS_REG_SIZE;
	}
	r = squashfs_meta_add(&w->sink, m, b, n, e);
	for (uint64_t i = 0; r >= 0 && i < f->nblocks; i += sizeof(words) / 4) {
		uint64_t c = min_u64(sizeof(words) / 4, f->nblocks - i);

		for (uint64_t j = 0; j < c; j++)
			put_le32(words + 4 * j, f->words[i + j]);
		r = squashfs_meta_add(&w->sink, m, words, c * 4, e);
	}
	return r;
}

static int sqfs_writer_by_name(const void *a, const void *b)
{
	return strcmp(((const struct sqfs_writer_file *)a)->name,
		      ((const struct sqfs_writer_file *)b)->name);
}

/* The root directory's listing, in name order; returns its length. */
static size_t sqfs_writer_listing(struct sqfs_writer *w, uint8_t *d)
{
	size_t len = 0, hdr = 0;
	uint32_t count = 0, blk = 0, base = 0;

	for (unsigned i = 0; i < w->nfiles; i++) {
		const struct sqfs_writer_file *f = &w->file[i];
		size_t nl = strlen(f->name);

		if (!count || f->ref >> 16 != blk || count == SQFS_DIR_MAX_COUNT) {
			hdr = len;
			blk = (uint32_t)(f->ref >> 16);
			base = f->number;
			count = 0;
			put_le32(d + len + 4, blk);
			put_le32(d + len + 8, base);
			len += SQFS_DIR_HDR;
		}
		put_le32(d + hdr, count++);     /* entries - 1 after this one */
		put_le16(d + len, (uint16_t)(f->ref & 0xffff));
		put_le16(d + len + 2, (uint16_t)(f->number - base));
		put_le16(d + len + 4, SQFS_REG);
		put_le16(d + len + 6, (uint16_t)(nl - 1));
		memcpy(d + len + SQFS_DIR_ENTRY, f->name, nl);
		len += SQFS_DIR_ENTRY + nl;
	}
	return len;
}

static int sqfs_writer_tables(struct sqfs_writer *w, uint8_t *sb, struct err *e)
{
	struct squashfs_meta *m = calloc(1, sizeof(*m));
	uint8_t *listing = NULL, b[SQFS_INODE_HDR + SQFS_DIR_SIZE];
	uint64_t root, at;
	size_t len;
	int r = 0;

	listing = malloc(w->nfiles * (SQFS_DIR_HDR + SQFS_DIR_ENTRY + 72));
	if (!m || !listing) {
		r = err_set(e, -ENOMEM, "squashfs: out of memory");
		goto out;
	}
	/* Inode table: the files in name order (numbers 1..n), then the root. */
	put_le64(sb + SB_INODE_TABLE, w->sink.pos);
	for (unsigned i = 0; r >= 0 && i < w->nfiles; i++) {
		w->file[i].number = i + 1;
		r = sqfs_writer_file_inode(w, m, &w->file[i], e);
	}
	if (r < 0)
		goto out;
	len = sqfs_writer_listing(w, listing);
	root = squashfs_meta_ref(m);
	sqfs_writer_inode_hdr(b, SQFS_DIR, SQW_DIR_MODE, w->opt.mtime, w->nfiles + 1);
	put_le32(b + 16, 0);                    /* listing at the table's start */
	put_le32(b + 20, 2);                    /* nlink */
	put_le16(b + 24, (uint16_t)(len + 3));
	put_le16(b + 26, 0);
	put_le32(b + 28, w->nfiles + 2);        /* parent of the root: inodes + 1 */
	r = squashfs_meta_add(&w->sink, m, b, sizeof(b), e);
	if (r >= 0)
		r = squashfs_meta_flush(&w->sink, m, e);
	if (r < 0)
		goto out;
	put_le64(sb + SB_ROOT_INODE, root);
	put_le32(sb + SB_INODES, w->nfiles + 1);
	/* Directory table: the root's listing. */
	put_le64(sb + SB_DIR_TABLE, w->sink.pos);
	memset(m, 0, sizeof(*m));
	r = squashfs_meta_add(&w->sink, m, listing, len, e);
	if (r >= 0)
		r = squashfs_meta_flush(&w->sink, m, e);
	if (r < 0)
		goto out;
	r = squashfs_frag_table(&w->sink, w->frag_start, w->frag_word, w->nfrag, sb, e);
	if (r < 0)
		goto out;
	put_le64(sb + SB_EXPORT_TABLE, SQFS_INVALID_BLK);
	/* Id table: one id, 0 (root). */
	memset(b, 0, 4);
	r = squashfs_table(&w->sink, b, 4, NULL, 0, &at, e);
	put_le64(sb + SB_ID_TABLE, at);
	put_le16(sb + SB_NO_IDS, 1);
	put_le64(sb + SB_XATTR_TABLE, SQFS_INVALID_BLK);
out:
	free(listing);
	free(m);
	return r;
}

/* --- options -------------------------------------------------------------- */

static int sqfs_writer_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 64 || !strcmp(s, ".") || !strcmp(s, ".."))
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("._+-", *s)))
			return 0;
	return 1;
}

enum { SQO_COMPRESSION, SQO_LEVEL, SQO_BLOCK_SIZE, SQO_NAME, SQO_PARTITIONS, SQO_MTIME,
       SQO_FILES, SQO_SKIP_RANDOM, SQO_GROUP };

/* The compressors this build has, in the order errors and help name them. */
#define SQW_COMPS "gzip" SQW_COMP_ZSTD SQW_COMP_XZ SQW_COMP_LZ4
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
#define SQW_COMP_ZSTD "|zstd"
#else
#define SQW_COMP_ZSTD ""
#endif
#if IS_ENABLED(CONFIG_CODEC_XZ)
#define SQW_COMP_XZ "|xz"
#else
#define SQW_COMP_XZ ""
#endif
#if IS_ENABLED(CONFIG_CODEC_LZ4)
#define SQW_COMP_LZ4 "|lz4"
#else
#define SQW_COMP_LZ4 ""
#endif
#if IS_ENABLED(CONFIG_DEFAULT_CODEC_ZSTD)
#define SQW_DEFAULT_COMP "zstd"
#else
#define SQW_DEFAULT_COMP "gzip"
#endif
#define SQW_STR(x) SQW_STR2(x)
#define SQW_STR2(x) #x

/* level: the range and default of each compressor built in. */
static void sqfs_writer_level_describe(const struct opt_desc *d, char *buf, size_t len)
{
	size_t at = 0;

	(void)d;
	for (unsigned id = 1; id <= SQFS_COMP_ZSTD; id++) {
		const struct squashfs_comp *c = squashfs_comp_by_id(id);

		if (c && squashfs_comp_built(c) == 0)
			at = text_addf(buf, len, at, "%s%s %d..%d (default %d)",
				       at ? ", " : "", c->name, c->level_min,
				       c->level_max, c->level_default);
	}
}

const struct opt_desc squashfs_write_options[] = {
	[SQO_COMPRESSION] = { "compression", SQW_COMPS, SQW_DEFAULT_COMP,
		"the compressor of blocks and metadata (zlib is gzip)" },
	[SQO_LEVEL] = { "level", NULL, NULL, "compression level",
		.describe = sqfs_writer_level_describe },
	[SQO_BLOCK_SIZE] = { "block_size", "a power of two from 4096 to 1048576",
		SQW_STR(EI_DEFAULT_BLOCK), "bytes per block (64k, 1M, ...): larger ones compress better",
		1u << SQFS_MIN_LOG, 1u << SQFS_MAX_LOG, 1 },
	[SQO_NAME] = { "name", "1..64 of A-Z a-z 0-9 . _ + -", SQFS_DEFAULT_NAME,
		"the disk's file name in the filesystem" },
	[SQO_PARTITIONS] = { "partitions", "on|off", "off",
		"also each GPT/MBR partition as pN.img, and partitions.txt" },
	[SQO_MTIME] = { "mtime", "0..4294967295 (seconds since 1970)",
		"SOURCE_DATE_EPOCH, else 0", "the filesystem's and the files' time",
		0, UINT32_MAX, 0 },
	[SQO_FILES] = { "files", "on|off", "off",
		"a root filesystem from a file-tree view (the recipe of convert --files; delta and apply set it)" },
	[SQO_SKIP_RANDOM] = { "skip_random", "on|off", "on",
		"zstd: store blocks of random-looking bytes (compressed files) without trying the level" },
	[SQO_GROUP] = { "group_fragments", "on|off", "on",
		"root filesystems: pack the tails of files of the same name into the same fragment blocks (off: in walk order, as mksquashfs)" },
	CODEC_LIBRARY_OPTION("deflate"),
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
	CODEC_LIBRARY_OPTION("zstd"),
#endif
#if IS_ENABLED(CONFIG_CODEC_XZ)
	CODEC_LIBRARY_OPTION("xz"),
#endif
#if IS_ENABLED(CONFIG_CODEC_LZ4)
	CODEC_LIBRARY_OPTION("lz4"),
#endif
	{ NULL },
};

int squashfs_opts_parse(struct opts *o, const struct write_opts *wopts,
			void *parsed, struct err *e)
{
	const struct opt_desc *d = squashfs_write_options;
	struct squashfs_wopts w = { 0 };
	const char *s, *level;
	uint64_t v = 0;
	int r;

	_Static_assert(sizeof(w) <= WRITE_PARSED_MAX, "struct squashfs_wopts is too large");
	(void)wopts;               /* -c is welcome: squashfs always compresses */
	s = opts_get(o, "compression");
	if (s && !strcmp(s, "zlib"))
		s = "gzip";
	if ((r = opt_choice(&d[SQO_COMPRESSION], s, "squashfs", e)) < 0)
		return r;
	w.comp = squashfs_comp_by_name(s ? s : d[SQO_COMPRESSION].def);
	w.level = w.comp->level_default;
	level = opts_get(o, "level");
	if (level) {
		if (parse_size(level, &v) < 0 || v < (uint64_t)w.comp->level_min ||
		    v > (uint64_t)w.comp->level_max)
			return err_set(e, EI_EUSAGE,
				       "squashfs: level=%s is not %d..%d for %s",
				       level, w.comp->level_min, w.comp->level_max,
				       w.comp->name);
		w.level = (int)v;
	}
	r = opt_number(&d[SQO_BLOCK_SIZE], opts_get(o, "block_size"), &v, "squashfs", e);
	if (r < 0)
		return r;
	w.bs = (uint32_t)v;
	for (w.log = 0; (1u << w.log) < w.bs; w.log++)
		;
	s = opts_get(o, "name");
	snprintf(w.name, sizeof(w.name), "%s", s ? s : d[SQO_NAME].def);
	if (s)
		w.given |= SQFS_GIVEN_NAME;
	if (!sqfs_writer_name_ok(w.name))
		return opt_bad(&d[SQO_NAME], s, "squashfs", e);
	s = opts_get(o, "partitions");
	if ((r = opt_choice(&d[SQO_PARTITIONS], s, "squashfs", e)) < 0)
		return r;
	if (s)
		w.given |= SQFS_GIVEN_PARTITIONS;
	w.partitions = r == 0;
	if (w.partitions && (!strcmp(w.name, SQW_MANIFEST) ||
			     (w.name[0] == 'p' && strspn(w.name + 1, "0123456789") &&
			      !strcmp(w.name + 1 + strspn(w.name + 1, "0123456789"), ".img"))))
		return err_set(e, EI_EUSAGE,
			       "squashfs: name=%s clashes with the files of partitions=on",
			       w.name);
	s = opts_get(o, "files");
	if ((r = opt_choice(&d[SQO_FILES], s, "squashfs", e)) < 0)
		return r;
	w.files = r == 0;
	r = opt_number(&d[SQO_MTIME], opts_get(o, "mtime"), &v, "squashfs", e);
	if (r < 0)
		return r;
	/* a recipe's rebuild follows the recipe, not the device's environment */
	if (!r && w.files) {
		v = 0;
	} else if (!r) {
		const char *env = getenv("SOURCE_DATE_EPOCH");

		v = 0;
		if (env && *env && (parse_size(env, &v) < 0 || v > UINT32_MAX))
			return err_set(e, EI_EUSAGE,
				       "squashfs: SOURCE_DATE_EPOCH=%s is not a number in %s",
				       env, d[SQO_MTIME].values);
		if (env && *env)
			w.given |= SQFS_GIVEN_MTIME;
	} else {
		w.given |= SQFS_GIVEN_MTIME;
	}
	w.mtime = (uint32_t)v;
	s = opts_get(o, "skip_random");
	if ((r = opt_choice(&d[SQO_SKIP_RANDOM], s, "squashfs", e)) < 0)
		return r;
	w.skip_random = r == 0 && w.comp->id == SQFS_COMP_ZSTD;
	s = opts_get(o, "group_fragments");
	if ((r = opt_choice(&d[SQO_GROUP], s, "squashfs", e)) < 0)
		return r;
	if (s)
		w.given |= SQFS_GIVEN_GROUP;
	w.group = r == 0;
	/* Compressed bytes differ between libraries: the recipe names it. */
	r = codec_library_opts(o, codec_find(w.comp->codec), "squashfs", e);
	if (r < 0)
		return r;
	memcpy(parsed, &w, sizeof(w));
	return 0;
}

size_t squashfs_comp_opts(const struct squashfs_comp *c, int level,
			  uint8_t b[SQFS_COMP_OPTS_MAX])
{
	size_t n;

	switch (c->id) {
	case SQFS_COMP_GZIP:
		if (level == 9)
			return 0;
		put_le32(b + 2, (uint32_t)level);
		put_le16(b + 6, 15);    /* window_size */
		put_le16(b + 8, 0);     /* strategies: default */
		n = 8;
		break;
	case SQFS_COMP_ZSTD:
		if (level == 15)
			return 0;
		put_le32(b + 2, (uint32_t)level);
		n = 4;
		break;
	case SQFS_COMP_LZ4:
		put_le32(b + 2, SQFS_LZ4_LEGACY);
		put_le32(b + 6, SQFS_LZ4_HC);
		n = 8;
		break;
	default:
		return 0;
	}
	put_le16(b, (uint16_t)(n | SQFS_META_UNCOMPRESSED));
	return n + 2;
}

static int sqfs_writer_comp_opts(struct sqfs_writer *w, uint8_t *sb, struct err *e)
{
	uint8_t b[SQFS_COMP_OPTS_MAX];
	size_t n = squashfs_comp_opts(w->opt.comp, w->opt.level, b);

	if (!n)
		return 0;
	put_le16(sb + SB_FLAGS, get_le16(sb + SB_FLAGS) | SQFS_FLAG_COMP_OPT);
	return sqfs_writer_write(w, b, n, e);
}

/* The recipe of the image @o writes (a root filesystem when @tree). */
static int sqfs_recipe_print(const struct squashfs_wopts *o, int tree, char *buf, size_t len)
{
	char lib[64], mtime[24] = "";
	const char *key = codec_library(codec_find(o->comp->codec), lib, sizeof(lib));
	/* named only when on: a recipe without it is one from before it */
	const char *skip = o->skip_random ? ",skip_random=on" : "";
	const char *group = o->group ? ",group_fragments=on" : "";

	if (!tree || (o->given & SQFS_GIVEN_MTIME))
		snprintf(mtime, sizeof(mtime), ",mtime=%u", o->mtime);
	if (tree)
		return snprintf(buf, len,
				"format=squashfs,writer=%s,compression=%s,level=%d,"
				"%s=%s%s,block_size=%u,files=on%s%s",
				EDGEIMG_VERSION, o->comp->name, o->level, key, lib, skip, o->bs,
				group, mtime);
	return snprintf(buf, len,
			"format=squashfs,writer=%s,compression=%s,level=%d,"
			"%s=%s%s,block_size=%u,name=%s,partitions=%s%s",
			EDGEIMG_VERSION, o->comp->name, o->level, key, lib, skip, o->bs,
			o->name, o->partitions ? "on" : "off", mtime);
}

void squashfs_write_recipe(const struct write_parsed *parsed, int tree, char *buf, size_t len)
{
	struct squashfs_wopts o;

	memcpy(&o, parsed->priv.bytes, sizeof(o));
	sqfs_recipe_print(&o, tree || o.files, buf, len);
}

int squashfs_trailer_write(struct squashfs_sink *s, const struct squashfs_wopts *o, int tree,
			   struct err *e)
{
	char t[SQFS_RECIPE_MAX + 64];
	uint8_t zero[SQFS_DEVBLK] = { 0 };
	uint64_t end;
	int n, k, r;

	memcpy(t, SQFS_RECIPE_TAG, strlen(SQFS_RECIPE_TAG));
	n = (int)strlen(SQFS_RECIPE_TAG);
	k = sqfs_recipe_print(o, tree, t + n, sizeof(t) - (size_t)n - 1);
	if (k < 0 || (size_t)k >= sizeof(t) - (size_t)n - 1)
		return err_set(e, EI_ELIMIT, "squashfs: the recipe takes more than %zu bytes",
			       sizeof(t) - (size_t)n - 2);
	n += k;
	t[n++] = '\n';
	r = squashfs_sink_write(s, t, (size_t)n, e);
	end = (s->pos + SQFS_DEVBLK - 1) / SQFS_DEVBLK * SQFS_DEVBLK;
	if (r >= 0 && end > s->pos)
		r = squashfs_sink_write(s, zero, end - s->pos, e);
	return r;
}

static void sqfs_writer_free(struct sqfs_writer *w)
{
	for (unsigned i = 0; i < w->nfiles; i++)
		free(w->file[i].own);
	if (w->opt.comp)
		squashfs_ctx_free(w->opt.comp, w->sink.ctx);
	free(w->buf);
	free(w->fbuf);
	free(w->frag_start);
	free(w->frag_word);
	free(w->manifest);
	free(w);
}

int squashfs_write(struct vdisk *src, struct io *out,
		   const struct write_opts *wopts, struct err *e)
{
	struct squashfs_ptable *pt = NULL;
	struct write_parsed tmp;
	const struct write_parsed *parsed;
	struct sqfs_writer *w = calloc(1, sizeof(*w));
	uint8_t sb[SQFS_SUPER_SIZE];
	uint64_t list;
	struct sqfs_writer_file *disk;
	int r;

	if (!w)
		return err_set(e, -ENOMEM, "squashfs: out of memory");
	w->src = src;
	w->sink.io = out;
	w->wopts = wopts;
	r = format_write_opts(&fmt_squashfs, wopts, &tmp, &parsed, e);
	if (r < 0)
		goto out;
	memcpy(&w->opt, parsed->priv.bytes, sizeof(w->opt));
	w->opt.reuse = wopts->reuse;
	if (!w->opt.files && (w->opt.given & SQFS_GIVEN_GROUP)) {
		r = err_set(e, EI_EUSAGE,
			    "squashfs: -o group_fragments= is for a root filesystem (--files), not for a disk in a squashfs");
		goto out;
	}
	if (w->opt.files) {
		/* a root filesystem: @src is the file-tree view of its files */
		sqfs_writer_free(w);
#if IS_ENABLED(CONFIG_FILES)
		return squashfs_write_view(src, out, wopts, e);
#else
		return err_set(e, EI_EUNSUP,
			       "squashfs: files=on: this edgeimg is built without the file view (CONFIG_FILES)");
#endif
	}
	w->sink.comp = w->opt.comp;
	w->sink.level = w->opt.level;
	w->sink.bs = w->opt.bs;
	w->total = src->size;
	list = ((src->size + w->opt.bs - 1) >> w->opt.log) * 4;
	if (w->opt.partitions) {
		pt = malloc(sizeof(*pt));
		if (!pt) {
			r = err_set(e, -ENOMEM, "squashfs: out of memory");
			goto out;
		}
		r = squashfs_parts_read(src, pt, e);
		if (r < 0)
			goto out;
		for (unsigned i = 0; i < pt->n; i++) {
			if (pt->part[i].start & (w->opt.bs - 1)) {
				w->total += pt->part[i].size;
				list += ((pt->part[i].size + w->opt.bs - 1) >> w->opt.log) * 4;
			}
		}
	}
	/*
	 * The block lists stay in memory until the inode table: at most half
	 * the cap; the pipeline gets the rest but for this thread's buffers.
	 */
	if (list > wopts->mem_cap / 2 || (uint64_t)8 * w->opt.bs > wopts->mem_cap / 2) {
		r = err_set(e, EI_ELIMIT,
			    "squashfs: a disk of %llu bytes needs %llu bytes of block lists, more than half the memory cap of %llu; use a larger block_size",
			    (unsigned long long)src->size, (unsigned long long)list,
			    (unsigned long long)wopts->mem_cap);
		goto out;
	}
	w->pl_cap = wopts->mem_cap - list - (uint64_t)4 * w->opt.bs;
	w->buf = malloc(w->opt.bs);
	w->fbuf = malloc(w->opt.bs);
	if (!w->buf || !w->fbuf) {
		r = err_set(e, -ENOMEM, "squashfs: out of memory");
		goto out;
	}
	memset(sb, 0, sizeof(sb));
	put_le32(sb, SQFS_MAGIC);
	put_le32(sb + SB_BLOCK_SIZE, w->opt.bs);
	put_le16(sb + SB_COMPRESSION, w->opt.comp->id);
	put_le16(sb + SB_BLOCK_LOG, (uint16_t)w->opt.log);
	put_le16(sb + SB_MAJOR, 4);
	put_le16(sb + SB_MINOR, 0);
	put_le32(sb + SB_MKFS_TIME, w->opt.mtime);
	w->sink.pos = SQFS_SUPER_SIZE;
	r = sqfs_writer_comp_opts(w, sb, e);
	if (r < 0)
		goto out;

	disk = sqfs_writer_file_new(w, w->opt.name, src->size);
	disk->nblocks = (src->size + w->opt.bs - 1) >> w->opt.log;
	disk->own = malloc(disk->nblocks ? disk->nblocks * 4 : 1);
	if (!disk->own) {
		r = err_set(e, -ENOMEM, "squashfs: out of memory");
		goto out;
	}
	disk->words = disk->own;
	disk->start = w->sink.pos;
	r = sqfs_writer_stream(w, 0, src->size, disk->own, &disk->sparse, e);
	if (r < 0)
		goto out;
	if (w->opt.partitions) {
		r = sqfs_writer_partitions(w, pt, e);
		if (r < 0)
			goto out;
		for (unsigned i = 0; r >= 0 && i < w->nfiles; i++)
			if (w->file[i].mem)
				r = sqfs_writer_mem_file(w, &w->file[i], e);
		for (unsigned i = 0; r >= 0 && i < w->nfiles; i++)
			r = sqfs_writer_frag_add(w, &w->file[i], e);
		if (r >= 0)
			r = sqfs_writer_frag_flush(w, e);
		if (r < 0)
			goto out;
	}
	if (w->shared)
		put_le16(sb + SB_FLAGS, get_le16(sb + SB_FLAGS) | SQFS_FLAG_DUPLICATES);
	qsort(w->file, w->nfiles, sizeof(w->file[0]), sqfs_writer_by_name);
	r = sqfs_writer_tables(w, sb, e);
	if (r < 0)
		goto out;
	put_le64(sb + SB_BYTES_USED, w->sink.pos);
	r = squashfs_trailer_write(&w->sink, &w->opt, 0, e);
	if (r >= 0)
		r = io_write(out, sb, sizeof(sb), 0, e);
out:
	free(pt);
	sqfs_writer_free(w);
	return r;
}
