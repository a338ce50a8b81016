// SPDX-License-Identifier: MIT
/*
 * Android sparse images ("simg"), read and written: a 28-byte header, then
 * chunks of 4-byte-aligned blocks: RAW (the blocks' bytes follow), FILL (a
 * 32-bit value repeated), DONT_CARE (nothing stored: zeros for simg2img,
 * left as they are by fastboot) and CRC32 (the CRC-32 of every block
 * before it).  Spec: AOSP system/core/libsparse/sparse_format.h, with the
 * checks of its sparse_read.cpp; all fields little-endian.  Own code: no
 * library reads these with hostile-input care or writes them in a stream.
 */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "core/bytes.h"
#include "core/format.h"
#include "core/limits.h"

#define SIMG_MAGIC 0xed26ff3au
#define SIMG_MAJOR 1
#define SIMG_HEADER_LEN 28
#define SIMG_CHUNK_LEN 12
#define SIMG_RAW 0xcac1
#define SIMG_FILL 0xcac2
#define SIMG_DONT_CARE 0xcac3
#define SIMG_CRC32 0xcac4
/* The largest block size read: libsparse takes any multiple of 4. */
#define SIMG_BLOCK_MAX (64u << 20)
/* The writer's block size, as img2simg's. */
#define SIMG_WBLOCK 4096u
/* The writer's largest RAW chunk: its total_sz is a 32-bit byte count. */
#define SIMG_RAW_MAX_BLOCKS ((UINT32_MAX - SIMG_CHUNK_LEN) / SIMG_WBLOCK)
/* Bytes the writer classifies at a time (a multiple of the block). */
#define SIMG_WINDOW EI_IO_CHUNK

/* One chunk, as indexed at open. */
struct simg_chunk {
	uint64_t data;          /* RAW: the file offset of its bytes; FILL:
				   the 32-bit value (as stored, little-endian
				   bytes); CRC32: the CRC */
	uint32_t block;         /* its first block; it ends where the next
				   chunk starts (CRC32 chunks cover none) */
	uint16_t type;
};

struct simg {
	struct simg_chunk *c;   /* every chunk, in file order */
	uint32_t n;             /* total_chunks */
	uint32_t blk_sz;
	uint32_t total_blks;
	uint32_t checksum;      /* image_checksum of the header */
	uint16_t minor, hdr_sz, chunk_hdr_sz;
	uint32_t count[4];      /* chunks of each type, RAW first */
};

static const char *const simg_type_names[] = {
	"RAW", "FILL", "DONT_CARE", "CRC32",
};

/* --- CRC-32, chained as libsparse's sparse_crc32() (zlib's crc32) ------- */

/* The zlib operators that append 4 << k bytes, for repeated patterns. */
struct simg_crc {
	uLong op[58];           /* 4 << 57 bytes is past any sparse image */
};

static void simg_crc_init(struct simg_crc *c)
{
	_Static_assert(sizeof(z_off_t) == 8, "zlib's z_off_t must be 64-bit");
	for (unsigned k = 0; k < sizeof(c->op) / sizeof(c->op[0]); k++)
		c->op[k] = crc32_combine_gen((z_off_t)(4ULL << k));
}

/*
 * @crc extended by the 4 bytes at @pat repeated @units times, in
 * O(log units) steps: a DONT_CARE or FILL chunk of any length.
 */
static uint32_t simg_crc_repeat(const struct simg_crc *c, uint32_t crc,
				const uint8_t pat[4], uint64_t units)
{
	uLong piece = crc32(0, pat, 4), out = crc;

	for (unsigned k = 0; units; k++, units >>= 1) {
		if (units & 1)
			out = crc32_combine_op(out, piece, c->op[k]);
		if (units > 1)
			piece = crc32_combine_op(piece, piece, c->op[k]);
	}
	return (uint32_t)out;
}

/* --- reader -------------------------------------------------------------- */

static int simg_probe(const uint8_t *head, size_t head_len, const uint8_t *tail,
		      size_t tail_len, uint64_t file_size)
{
	(void)tail;
	(void)tail_len;
	(void)file_size;
	return head_len >= 4 && get_le32(head) == SIMG_MAGIC ? PROBE_CERTAIN : 0;
}

/* Validate the header @h of a file of @fsize bytes into @s. */
static int simg_header_parse(const uint8_t *h, uint64_t fsize,
			     const struct open_opts *o, struct simg *s,
			     struct err *e)
{
	uint32_t magic = get_le32(h);
	uint16_t major = get_le16(h + 4), minor = get_le16(h + 6);
	uint16_t hdr_sz = get_le16(h + 8), chunk_hdr_sz = get_le16(h + 10);
	uint32_t blk_sz = get_le32(h + 12), total_blks = get_le32(h + 16);
	uint32_t total_chunks = get_le32(h + 20);
	uint64_t size = (uint64_t)total_blks * blk_sz, most;

	if (magic != SIMG_MAGIC)
		return err_set(e, EI_EFORMAT, "simg: magic 0x%08x is not 0x%08x",
			       magic, SIMG_MAGIC);
	if (major != SIMG_MAJOR)
		return err_set(e, EI_EUNSUP, "simg: major_version %u is not 1",
			       major);
	if (hdr_sz < SIMG_HEADER_LEN)
		return err_set(e, EI_ECORRUPT,
			       "simg: file_hdr_sz %u is smaller than %u", hdr_sz,
			       SIMG_HEADER_LEN);
	if (hdr_sz > fsize)
		return err_set(e, EI_ETRUNC,
			       "simg: file_hdr_sz %u is past the end of the file (%llu bytes)",
			       hdr_sz, (unsigned long long)fsize);
	if (chunk_hdr_sz < SIMG_CHUNK_LEN)
		return err_set(e, EI_ECORRUPT,
			       "simg: chunk_hdr_sz %u is smaller than %u",
			       chunk_hdr_sz, SIMG_CHUNK_LEN);
	if (!blk_sz || blk_sz % 4 || blk_sz > SIMG_BLOCK_MAX)
		return err_set(e, EI_ECORRUPT,
			       "simg: blk_sz %u is not a multiple of 4 from 4 to %u",
			       blk_sz, SIMG_BLOCK_MAX);
	if (size > o->max_size)
		return err_set(e, EI_ELIMIT,
			       "simg: total_blks %u of %u bytes make %llu bytes, past the limit of %llu",
			       total_blks, blk_sz, (unsigned long long)size,
			       (unsigned long long)o->max_size);
	/* Every chunk takes a chunk header: the file bounds their number. */
	most = (fsize - hdr_sz) / chunk_hdr_sz;
	if (total_chunks > most)
		return err_set(e, EI_ETRUNC,
			       "simg: total_chunks %u: the file (%llu bytes) holds at most %llu chunk headers of %u bytes",
			       total_chunks, (unsigned long long)fsize,
			       (unsigned long long)most, chunk_hdr_sz);
	if ((uint64_t)total_chunks * sizeof(struct simg_chunk) > o->max_table)
		return err_set(e, EI_ELIMIT,
			       "simg: total_chunks %u: an index of %llu bytes exceeds the table limit of %llu",
			       total_chunks,
			       (unsigned long long)total_chunks * sizeof(struct simg_chunk),
			       (unsigned long long)o->max_table);
	s->n = total_chunks;
	s->blk_sz = blk_sz;
	s->total_blks = total_blks;
	s->checksum = get_le32(h + 24);
	s->minor = minor;
	s->hdr_sz = hdr_sz;
	s->chunk_hdr_sz = chunk_hdr_sz;
	return 0;
}

/*
 * Index the chunks: each header read once, its sizes checked against its
 * type, the file and total_blks.  Returns 1 when a CRC32 chunk was seen.
 */
static int simg_index(struct io *io, struct simg *s, struct err *e)
{
	uint64_t pos = s->hdr_sz, block = 0, fsize = io->size;
	int crc = 0;

	for (uint32_t i = 0; i < s->n; i++) {
		struct simg_chunk *c = &s->c[i];
		uint8_t h[SIMG_CHUNK_LEN];
		uint16_t type;
		uint32_t chunk_sz, total_sz;
		uint64_t data_len, want;
		int r, t;

		if (!range_ok(pos, s->chunk_hdr_sz, fsize))
			return err_set(e, EI_ETRUNC,
				       "simg: chunk %u: its header at %llu is past the end of the file (%llu bytes)",
				       i, (unsigned long long)pos,
				       (unsigned long long)fsize);
		r = io_read(io, h, sizeof(h), pos, "simg: chunk header", e);
		if (r < 0)
			return r;
		type = get_le16(h);
		chunk_sz = get_le32(h + 4);
		total_sz = get_le32(h + 8);
		if (type < SIMG_RAW || type > SIMG_CRC32)
			return err_set(e, EI_ECORRUPT,
				       "simg: chunk %u at %llu: chunk_type 0x%04x is not RAW, FILL, DONT_CARE or CRC32 (0xcac1..0xcac4)",
				       i, (unsigned long long)pos, type);
		t = type - SIMG_RAW;
		if (total_sz < s->chunk_hdr_sz)
			return err_set(e, EI_ECORRUPT,
				       "simg: chunk %u (%s): total_sz %u is smaller than chunk_hdr_sz %u",
				       i, simg_type_names[t], total_sz, s->chunk_hdr_sz);
		data_len = total_sz - s->chunk_hdr_sz;
		want = type == SIMG_RAW ? (uint64_t)chunk_sz * s->blk_sz :
		       type == SIMG_DONT_CARE ? 0 : 4;
		if (data_len != want)
			return err_set(e, EI_ECORRUPT,
				       "simg: chunk %u (%s): total_sz %u holds %llu bytes after its header, not %llu%s",
				       i, simg_type_names[t], total_sz,
				       (unsigned long long)data_len,
				       (unsigned long long)want,
				       type == SIMG_RAW ? " (chunk_sz blocks of blk_sz)" : "");
		if (type == SIMG_CRC32 && chunk_sz)
			return err_set(e, EI_ECORRUPT,
				       "simg: chunk %u (CRC32): chunk_sz %u is not 0",
				       i, chunk_sz);
		if (!range_ok(pos, total_sz, fsize))
			return err_set(e, EI_ETRUNC,
				       "simg: chunk %u (%s) at %llu+%u is past the end of the file (%llu bytes)",
				       i, simg_type_names[t], (unsigned long long)pos,
				       total_sz, (unsigned long long)fsize);
		if (chunk_sz > s->total_blks - block)
			return err_set(e, EI_ECORRUPT,
				       "simg: chunk %u (%s): chunk_sz %u at block %llu goes past total_blks %u",
				       i, simg_type_names[t], chunk_sz,
				       (unsigned long long)block, s->total_blks);
		c->type = type;
		c->block = (uint32_t)block;
		c->data = 0;
		if (type == SIMG_RAW) {
			c->data = pos + s->chunk_hdr_sz;
		} else if (type != SIMG_DONT_CARE) {
			r = io_read(io, h, 4, pos + s->chunk_hdr_sz,
				    "simg: chunk data", e);
			if (r < 0)
				return r;
			c->data = get_le32(h);
			crc |= type == SIMG_CRC32;
		}
		s->count[t]++;
		block += chunk_sz;
		pos += total_sz;
	}
	if (block != s->total_blks)
		return err_set(e, EI_ECORRUPT,
			       "simg: the %u chunks cover %llu blocks, total_blks is %u",
			       s->n, (unsigned long long)block, s->total_blks);
	return crc;
}

/* The blocks of chunk @i. */
static uint64_t simg_blocks(const struct simg *s, uint32_t i)
{
	return (i + 1 < s->n ? s->c[i + 1].block : s->total_blks) - s->c[i].block;
}

/*
 * Check the CRC32 chunks (each against the CRC-32 of the blocks before
 * it) and a non-zero image_checksum (against that of the whole image):
 * RAW chunks are read once, FILL and DONT_CARE chunks computed.
 */
static int simg_verify(struct io *io, const struct simg *s, struct err *e)
{
	struct simg_crc op;
	uint8_t *buf;
	uint32_t crc = 0;
	int r = 0;

	simg_crc_init(&op);
	buf = malloc(EI_IO_CHUNK);
	if (!buf)
		return err_set(e, -ENOMEM, "simg: out of memory");
	for (uint32_t i = 0; i < s->n && r >= 0; i++) {
		const struct simg_chunk *c = &s->c[i];
		uint64_t len = simg_blocks(s, i) * s->blk_sz;
		uint8_t pat[4];

		switch (c->type) {
		case SIMG_RAW:
			for (uint64_t done = 0; done < len && r >= 0;) {
				size_t n = (size_t)min_u64(EI_IO_CHUNK, len - done);

				r = io_read(io, buf, n, c->data + done, "simg: RAW chunk", e);
				crc = (uint32_t)crc32(crc, buf, (uInt)n);
				done += n;
			}
			break;
		case SIMG_FILL:
		case SIMG_DONT_CARE:
			put_le32(pat, c->type == SIMG_FILL ? (uint32_t)c->data : 0);
			crc = simg_crc_repeat(&op, crc, pat, len / 4);
			break;
		case SIMG_CRC32:
			if (c->data != crc)
				r = err_set(e, EI_EMISMATCH,
					    "simg: chunk %u (CRC32): 0x%08x is not 0x%08x, the CRC32 of the %llu blocks before it",
					    i, (uint32_t)c->data, crc,
					    (unsigned long long)c->block);
			break;
		}
	}
	free(buf);
	if (r >= 0 && s->checksum && s->checksum != crc)
		r = err_set(e, EI_EMISMATCH,
			    "simg: image_checksum 0x%08x is not 0x%08x, the CRC32 of the image",
			    s->checksum, crc);
	return r;
}

static int simg_open(struct vdisk *vd, struct err *e)
{
	uint8_t h[SIMG_HEADER_LEN];
	struct simg tmp = { 0 }, *s;
	int r;

	if (vd->io->flags & IO_STREAM)
		return err_set(e, EI_EUNSUP, "simg: %s is not seekable",
			       vd->io->name);
	if (vd->io->size < SIMG_HEADER_LEN)
		return err_set(e, vd->io->size >= 4 ? EI_ETRUNC : EI_EFORMAT,
			       "simg: file of %llu bytes is shorter than the 28-byte header",
			       (unsigned long long)vd->io->size);
	r = io_read(vd->io, h, sizeof(h), 0, "simg: header", e);
	if (r < 0)
		return r;
	r = simg_header_parse(h, vd->io->size, &vd->opts, &tmp, e);
	if (r < 0)
		return r;
	s = calloc(1, sizeof(*s));
	tmp.c = malloc((size_t)tmp.n * sizeof(*tmp.c) + 1);
	if (!s || !tmp.c) {
		r = err_set(e, -ENOMEM, "simg: out of memory");
		goto fail;
	}
	r = simg_index(vd->io, &tmp, e);
	/* libsparse writes image_checksum 0: then there is nothing to check. */
	if (r > 0 || (r == 0 && tmp.checksum))
		r = simg_verify(vd->io, &tmp, e);
	if (r < 0)
		goto fail;
	*s = tmp;
	vd->priv = s;
	vd->size = (uint64_t)tmp.total_blks * tmp.blk_sz;
	return 0;
fail:
	free(tmp.c);
	free(s);
	return r;
}

/* The chunk holding block @b (< total_blks): the last that starts at or before it. */
static uint32_t simg_find(const struct simg *s, uint64_t b)
{
	uint32_t lo = 0, hi = s->n;     /* c[lo].block <= b < c[hi].block */

	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (s->c[mid].block <= b)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static int simg_piece(struct vdisk *vd, uint64_t off, uint64_t len,
		      struct map_run *run, struct err *e)
{
	struct simg *s = vd->priv;
	uint32_t i = simg_find(s, off / s->blk_sz);
	const struct simg_chunk *c = &s->c[i];
	uint64_t start = (uint64_t)c->block * s->blk_sz;
	uint64_t end = start + simg_blocks(s, i) * s->blk_sz;

	if (off < start || off >= end)
		return err_set(e, EI_ECORRUPT, "simg: no chunk holds offset %llu",
			       (unsigned long long)off);
	run->len = min_u64(len, end - off);
	switch (c->type) {
	case SIMG_RAW:
		run->src = MAP_IO;
		run->io = vd->io;
		run->host = c->data + (off - start);
		run->what = "simg: RAW chunk";
		run->holes = EXT_DATA;
		break;
	case SIMG_FILL:
		if (c->data) {
			run->type = EXT_DATA;
			run->src = MAP_DECODE;
		} else {
			run->type = EXT_ZERO;
		}
		break;
	default:
		run->type = EXT_HOLE;
		break;
	}
	return 0;
}

static int simg_map(struct vdisk *vd, uint64_t off, uint64_t len,
		    struct map_run *run, struct err *e)
{
	return map_pieces(vd, off, len, run, simg_piece, e);
}

/* FILL chunks: their value repeated (chunks start at multiples of 4). */
static int simg_decode(struct vdisk *vd, void *buf, size_t len, uint64_t off,
		       struct err *e)
{
	struct simg *s = vd->priv;
	uint8_t *p = buf;

	while (len) {
		uint32_t i = simg_find(s, off / s->blk_sz);
		const struct simg_chunk *c = &s->c[i];
		uint64_t end = ((uint64_t)c->block + simg_blocks(s, i)) * s->blk_sz;
		size_t n = (size_t)min_u64(len, end - off);
		uint8_t pat[4];

		if (c->type != SIMG_FILL)
			return err_set(e, EI_ECORRUPT,
				       "simg: decode at %llu: chunk %u is not FILL",
				       (unsigned long long)off, i);
		put_le32(pat, (uint32_t)c->data);
		for (size_t k = 0; k < n; k++)
			p[k] = pat[(off + k) % 4];
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static void simg_close(struct vdisk *vd)
{
	struct simg *s = vd->priv;

	if (s)
		free(s->c);
	free(s);
	vd->priv = NULL;
}

static int simg_info(struct vdisk *vd, struct info *out, struct err *e)
{
	struct simg *s = vd->priv;

	(void)e;
	out->cluster_size = s->blk_sz;
	info_str(out, "version", "1.%u", s->minor);
	info_u64(out, "block-size", s->blk_sz);
	info_u64(out, "total-blocks", s->total_blks);
	info_u64(out, "chunks", s->n);
	info_u64(out, "raw-chunks", s->count[0]);
	info_u64(out, "fill-chunks", s->count[1]);
	info_u64(out, "dont-care-chunks", s->count[2]);
	info_u64(out, "crc32-chunks", s->count[3]);
	info_str(out, "image-checksum", "0x%08x", s->checksum);
	return 0;
}

/* --- writer -------------------------------------------------------------- */

struct simg_wopts {
	int crc;
};

enum { SIMG_O_CRC };

static const struct opt_desc simg_write_options[] = {
	[SIMG_O_CRC] = { "crc", "on|off", "off",
		"end with a CRC32 chunk of the whole image (also in the header's image_checksum)" },
	{ NULL },
};

static int simg_write_parse(struct opts *o, const struct write_opts *wopts,
			    void *parsed, struct err *e)
{
	struct simg_wopts w = { 0 };
	int r;

	_Static_assert(sizeof(w) <= WRITE_PARSED_MAX, "struct simg_wopts is too large");
	if (wopts->compress)
		return err_set(e, EI_EUSAGE,
			       "simg: -c (compression) does not apply to Android sparse output");
	r = opt_choice(&simg_write_options[SIMG_O_CRC], opts_get(o, "crc"), "simg", e);
	if (r < 0)
		return r;
	w.crc = r == 0;
	memcpy(parsed, &w, sizeof(w));
	return 0;
}

/* The output: chunks are written after the header, which comes last. */
struct simg_writer {
	struct io *out;
	uint64_t pos;           /* the end of the output so far */
	uint32_t chunks;        /* closed chunks */
	/* the open chunk: @run blocks of @type (0: none) */
	uint16_t type;
	uint32_t fill;
	uint64_t run;
};

static void simg_chunk_header(uint8_t *h, uint16_t type, uint32_t blocks,
			      uint32_t total_sz)
{
	put_le16(h, type);
	put_le16(h + 2, 0);
	put_le32(h + 4, blocks);
	put_le32(h + 8, total_sz);
}

/* Write the open chunk's header (a RAW chunk's bytes are out already). */
static int simg_writer_close(struct simg_writer *w, struct err *e)
{
	uint8_t h[SIMG_CHUNK_LEN + 4];
	int r;

	/*
	 * (No chunk count check here: every chunk holds a block, and the
	 * blocks are at most UINT32_MAX; only the CRC32 chunk can pass it.)
	 */
	if (!w->run)
		return 0;
	if (w->type == SIMG_RAW) {
		/* its header goes before its bytes, which end at pos */
		simg_chunk_header(h, SIMG_RAW, (uint32_t)w->run,
				  (uint32_t)(SIMG_CHUNK_LEN + w->run * SIMG_WBLOCK));
		r = io_write(w->out, h, SIMG_CHUNK_LEN,
			     w->pos - w->run * SIMG_WBLOCK - SIMG_CHUNK_LEN, e);
	} else if (w->type == SIMG_FILL) {
		simg_chunk_header(h, SIMG_FILL, (uint32_t)w->run, SIMG_CHUNK_LEN + 4);
		put_le32(h + SIMG_CHUNK_LEN, w->fill);
		r = io_write(w->out, h, SIMG_CHUNK_LEN + 4, w->pos, e);
		w->pos += SIMG_CHUNK_LEN + 4;
	} else {
		simg_chunk_header(h, SIMG_DONT_CARE, (uint32_t)w->run, SIMG_CHUNK_LEN);
		r = io_write(w->out, h, SIMG_CHUNK_LEN, w->pos, e);
		w->pos += SIMG_CHUNK_LEN;
	}
	w->chunks++;
	w->run = 0;
	w->type = 0;
	return r;
}

/*
 * Append @n blocks of @type (@fill: a FILL's value; @data: a RAW run's
 * bytes), joined to the open chunk when they continue it.
 */
static int simg_writer_add(struct simg_writer *w, uint16_t type, uint32_t fill,
			   const uint8_t *data, uint64_t n, struct err *e)
{
	uint64_t cap = type == SIMG_RAW ? SIMG_RAW_MAX_BLOCKS : UINT32_MAX;
	int r;

	while (n) {
		uint64_t k;

		if (w->run && (w->type != type || w->run == cap ||
			       (type == SIMG_FILL && w->fill != fill))) {
			r = simg_writer_close(w, e);
			if (r < 0)
				return r;
		}
		if (!w->run) {
			w->type = type;
			w->fill = fill;
			if (type == SIMG_RAW)
				w->pos += SIMG_CHUNK_LEN;
		}
		k = min_u64(n, cap - w->run);
		if (type == SIMG_RAW) {
			r = io_write(w->out, data, (size_t)(k * SIMG_WBLOCK), w->pos, e);
			if (r < 0)
				return r;
			w->pos += k * SIMG_WBLOCK;
			data += k * SIMG_WBLOCK;
		}
		w->run += k;
		n -= k;
	}
	return 0;
}

/*
 * A data block's chunk type: FILL for one repeated 32-bit value, zeros
 * included (as img2simg writes them: zeros IN holds as data are written
 * by a flasher, never left as the device's old bytes), else RAW.
 */
static uint16_t simg_block_type(const uint8_t *b, uint32_t *fill)
{
	*fill = 0;
	if (!memcmp(b, b + 4, SIMG_WBLOCK - 4)) {
		*fill = get_le32(b);
		return SIMG_FILL;
	}
	return SIMG_RAW;
}

/*
 * One window of the disk at @w, @n bytes (whole blocks; the disk's last
 * block is padded with zeros): its data extents read (and given to
 * wopts->data), each block classified, the runs appended.  *@any is set
 * when the window held data, whose bytes are then in @buf.
 */
static int simg_writer_window(struct simg_writer *w, struct vdisk *src,
			      const struct write_opts *wopts, uint8_t *buf,
			      uint64_t at, size_t n, int *any, struct err *e)
{
	uint8_t mark[SIMG_WINDOW / SIMG_WBLOCK];
	uint16_t type[SIMG_WINDOW / SIMG_WBLOCK];
	uint32_t fill[SIMG_WINDOW / SIMG_WBLOCK];
	uint64_t end = min_u64(at + n, src->size);
	size_t nb = n / SIMG_WBLOCK, i, j;
	int r;

	*any = 0;
	for (uint64_t off = at; off < end;) {
		struct extent ext;

		r = vdisk_extent(src, off, end - off, &ext, e);
		if (r < 0)
			return r;
		if (ext.type == EXT_DATA) {
			size_t in = (size_t)(off - at);

			if (!*any) {
				memset(buf, 0, n);
				memset(mark, 0, nb);
				*any = 1;
			}
			r = vdisk_read(src, buf + in, (size_t)ext.len, off, e);
			if (r >= 0 && wopts->data)
				r = wopts->data(wopts->data_arg, buf + in,
						(size_t)ext.len, off, e);
			if (r < 0)
				return r;
			memset(mark + in / SIMG_WBLOCK, 1,
			       (in + (size_t)ext.len - 1) / SIMG_WBLOCK - in / SIMG_WBLOCK + 1);
		}
		off += ext.len;
	}
	if (!*any)
		return simg_writer_add(w, SIMG_DONT_CARE, 0, NULL, nb, e);
	/* blocks no data extent reaches (holes, zero clusters): DONT_CARE */
	for (i = 0; i < nb; i++) {
		fill[i] = 0;
		type[i] = mark[i] ? simg_block_type(buf + i * SIMG_WBLOCK, &fill[i]) :
			  SIMG_DONT_CARE;
	}
	for (i = 0; i < nb; i = j) {
		for (j = i + 1; j < nb && type[j] == type[i] &&
			    (type[i] != SIMG_FILL || fill[j] == fill[i]); j++)
			;
		r = simg_writer_add(w, type[i], fill[i], buf + i * SIMG_WBLOCK,
				    j - i, e);
		if (r < 0)
			return r;
	}
	return 0;
}

extern const struct img_format fmt_simg;

static int simg_write(struct vdisk *src, struct io *out,
		      const struct write_opts *wopts, struct err *e)
{
	struct simg_writer w = { .out = out, .pos = SIMG_HEADER_LEN };
	struct write_parsed tmp;
	const struct write_parsed *parsed;
	struct simg_wopts opt;
	struct simg_crc op;
	uint8_t h[SIMG_HEADER_LEN], *buf;
	/* the last block padded with zeros, as img2simg pads it */
	uint64_t blocks = src->size / SIMG_WBLOCK + (src->size % SIMG_WBLOCK != 0);
	uint64_t psize = blocks * SIMG_WBLOCK;
	uint32_t crc = 0;
	int r = 0;

	r = format_write_opts(&fmt_simg, wopts, &tmp, &parsed, e);
	if (r < 0)
		return r;
	memcpy(&opt, parsed->priv.bytes, sizeof(opt));
	if (blocks > UINT32_MAX)
		return err_set(e, EI_ELIMIT,
			       "simg: a disk of %llu bytes needs more than %u blocks of %u bytes",
			       (unsigned long long)src->size, UINT32_MAX, SIMG_WBLOCK);
	/* chunk headers are written behind their bytes, the header last */
	if (out->flags & IO_STREAM)
		return err_set(e, EI_EUSAGE,
			       "simg: an Android sparse image is not written front to back: not to a stream");
	/*
	 * A device keeps its old first bytes until the header is written, at
	 * the end: an earlier sparse image's header there would make a cut
	 * write look like an image.  Zeros first.
	 */
	if ((out->flags & IO_BLOCKDEV) &&
	    (r = io_write(out, (const uint8_t[SIMG_HEADER_LEN]){ 0 }, SIMG_HEADER_LEN, 0, e)) < 0)
		return r;
	if (opt.crc)
		simg_crc_init(&op);
	buf = malloc(SIMG_WINDOW);
	if (!buf)
		return err_set(e, -ENOMEM, "simg: out of memory");
	for (uint64_t at = 0; at < psize;) {
		size_t n = (size_t)min_u64(SIMG_WINDOW, psize - at);
		int any;

		r = simg_writer_window(&w, src, wopts, buf, at, n, &any, e);
		if (r < 0)
			break;
		if (opt.crc && any)
			crc = (uint32_t)crc32(crc, buf, (uInt)n);
		else if (opt.crc)
			crc = simg_crc_repeat(&op, crc, (const uint8_t[4]){ 0 }, n / 4);
		at += n;
		if (wopts->progress)
			wopts->progress(wopts->progress_arg, min_u64(at, src->size),
					src->size);
	}
	free(buf);
	if (r >= 0)
		r = simg_writer_close(&w, e);
	if (r >= 0 && opt.crc && w.chunks == UINT32_MAX)
		r = err_set(e, EI_ELIMIT, "simg: more than %u chunks", UINT32_MAX);
	if (r >= 0 && opt.crc) {
		uint8_t c[SIMG_CHUNK_LEN + 4];

		simg_chunk_header(c, SIMG_CRC32, 0, SIMG_CHUNK_LEN + 4);
		put_le32(c + SIMG_CHUNK_LEN, crc);
		r = io_write(out, c, sizeof(c), w.pos, e);
		w.pos += sizeof(c);
		w.chunks++;
	}
	if (r < 0)
		return r;
	put_le32(h, SIMG_MAGIC);
	put_le16(h + 4, SIMG_MAJOR);
	put_le16(h + 6, 0);
	put_le16(h + 8, SIMG_HEADER_LEN);
	put_le16(h + 10, SIMG_CHUNK_LEN);
	put_le32(h + 12, SIMG_WBLOCK);
	put_le32(h + 16, (uint32_t)blocks);
	put_le32(h + 20, w.chunks);
	put_le32(h + 24, crc);
	return io_write(out, h, sizeof(h), 0, e);
}

const struct img_format fmt_simg = {
	.name = "simg",
	.desc = "Android sparse image",
	.probe = simg_probe,
	.open = simg_open,
	.map = simg_map,
	.decode = simg_decode,
	.close = simg_close,
	.info = simg_info,
	.write = simg_write,
	.write_parse = simg_write_parse,
	.wopts = simg_write_options,
	.feeds_data = 1,
};
