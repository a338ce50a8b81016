// SPDX-License-Identifier: MIT
/*
 * Compressed raw disks: a raw image in one gzip (RFC 1952, members may be
 * concatenated), xz (the .xz file format 1.1.0, streams may be
 * concatenated) or zstd (RFC 8878, frames may be concatenated) stream.
 *
 * The codecs' own streaming APIs (zlib, liblzma, libzstd) decode the
 * stream, not libarchive: they let this reader cap the decoder's memory
 * (zstd windowLogMax, the xz memlimit), tell truncation from corruption,
 * refuse trailing garbage, and decode straight into the reader's window.
 *
 * A zstd file that ends with a seek table (the zstd seekable format,
 * facebook/zstd contrib/seekable_format, as craw-write.c makes it) and an
 * xz file of several blocks are read at random: the seek table (checked
 * entry by entry, SP2) or the xz index gives the size and where each
 * frame or block lies, and a read decodes only those it needs, the last
 * one kept.  The index costs CRAW_INDEX_ENTRY bytes a frame, at most
 * CRAW_INDEX_MAX frames; frames or blocks over CRAW_FRAME_MAX decoded are
 * read as a stream.
 *
 * Other streams can only be read forward.  The virtual size is counted by
 * decompressing the whole stream once at open (stopping at the size
 * limit), except for xz, whose mandatory index holds it.  Reads are then
 * served from a window of CRAW_WIN bytes that moves forward.  Runs of
 * zeros in the window are reported as EXT_ZERO, in 4 KiB blocks.
 *
 * Random reads (delta and apply read OLD so) must not start the stream
 * over at every backward read, which made them quadratic in the disk
 * size.  The first backward read starts it over once and from then on
 * every window decoded is also written to a spool: an unlinked temporary
 * file (O_TMPFILE in $TMPDIR, else /tmp) holding the disk decoded so far,
 * its zero blocks left as holes, so that it costs the disk's data and
 * memory stays a window.  Reads before the window come from the spool;
 * the stream is never started over again.  When no spool can be made or
 * written (no such directory, no space), reads start the stream over as
 * before: slower, never wrong.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "core/bytes.h"
#include "core/format.h"
#include "core/kconfig.h"
#include "core/limits.h"
#include "craw.h"

#if IS_ENABLED(CONFIG_CODEC_ZSTD)
#include <zstd.h>
#include <zstd_errors.h>
#endif
#if IS_ENABLED(CONFIG_CODEC_XZ)
#include <lzma.h>
#endif

#define CRAW_IN (256u << 10)    /* compressed bytes read at a time */
#define CRAW_WIN (1u << 20)     /* decompressed window; convert's unit */
#define CRAW_ZBLOCK 4096        /* granularity of zero runs */
/* Decoder memory: the defaults of the zstd and xz tools (128 MiB window). */
#define CRAW_ZSTD_WINDOW_LOG 27
#define CRAW_XZ_MEMLIMIT (128ULL << 20)

enum craw_kind { CRAW_GZIP, CRAW_XZ, CRAW_ZSTD };

static const char *const craw_names[] = { "gzip", "xz", "zstd" };

struct craw {
	enum craw_kind kind;
	z_stream zs;
	int zs_init;
	int gz_between;         /* gzip: a member ended, another may follow */
#if IS_ENABLED(CONFIG_CODEC_XZ)
	lzma_stream xs;
	int xs_init;
#endif
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
	ZSTD_DCtx *zd;
	size_t zret;            /* last ZSTD_decompressStream() hint; 0: frame done */
#endif
	uint8_t *in;            /* compressed bytes [in_pos, in_len) pending */
	size_t in_len, in_pos;
	uint64_t in_off;        /* file offset of the byte after in[in_len-1] */
	int ended;              /* the stream's end was seen */
	uint64_t pos;           /* decompressed bytes produced so far */
	uint8_t *win;           /* decompressed [win_off, win_off + win_len) */
	uint64_t win_off;
	size_t win_len;
	unsigned restarts;      /* times a backward read started over */
	struct io *spool;       /* the disk decoded since the restart, or NULL */
	uint64_t spooled;       /* the spool holds [0, spooled) */
	int spool_failed;       /* no spool: every backward read starts over */
	int size_from_index;    /* xz: the size is the index's, not counted */
	/*
	 * Random access: a zstd seek table or an xz index of several blocks
	 * (indexed); each read decodes only the frames or blocks it needs,
	 * the last one kept in fbuf.
	 */
	int indexed;
	uint64_t nframes;
	struct craw_frame {
		uint64_t coff, doff;    /* where it starts, compressed and decoded */
	} *frames;                      /* zstd: nframes + 1 (the ends) */
#if IS_ENABLED(CONFIG_CODEC_XZ)
	lzma_index *xidx;
#endif
	uint8_t *fbuf, *cbuf;   /* a decoded frame, its compressed bytes */
	size_t fbuf_cap, cbuf_cap;
	uint64_t fnum;          /* the frame in fbuf, UINT64_MAX: none */
	uint64_t fdoff;         /* and where it lies in the disk */
	size_t flen;
	char recipe[CRAW_RECIPE_MAX];   /* an edgeimg writer's, or "" */
	int size_known;         /* size is set: the stream must end there */
	uint64_t size;
};

static int craw_kind_of(const uint8_t *h, size_t n)
{
	if (n >= 3 && h[0] == 0x1f && h[1] == 0x8b && h[2] == 8)
		return CRAW_GZIP;
	if (n >= 6 && !memcmp(h, "\xfd" "7zXZ\0", 6))
		return CRAW_XZ;
	if (n >= 4 && get_le32(h) == 0xfd2fb528)
		return CRAW_ZSTD;
	return -1;
}

static int craw_probe(const uint8_t *head, size_t head_len, const uint8_t *tail,
		      size_t tail_len, uint64_t file_size)
{
	(void)tail;
	(void)tail_len;
	(void)file_size;
	return craw_kind_of(head, head_len) >= 0 ? PROBE_SURE : 0;
}

static void craw_codec_end(struct craw *c)
{
	if (c->zs_init)
		inflateEnd(&c->zs);
	c->zs_init = 0;
#if IS_ENABLED(CONFIG_CODEC_XZ)
	if (c->xs_init)
		lzma_end(&c->xs);
	c->xs_init = 0;
#endif
}

/* (Re)start decoding at the first byte of the file. */
static int craw_start(struct craw *c, struct err *e)
{
	craw_codec_end(c);
	c->in_len = c->in_pos = 0;
	c->in_off = 0;
	c->ended = 0;
	c->pos = 0;
	c->win_off = 0;
	c->win_len = 0;
	c->gz_between = 0;
	switch (c->kind) {
	case CRAW_GZIP:
		memset(&c->zs, 0, sizeof(c->zs));
		if (inflateInit2(&c->zs, 15 + 16) != Z_OK)
			return err_set(e, -ENOMEM, "craw: inflateInit2 failed");
		c->zs_init = 1;
		return 0;
	case CRAW_XZ:
#if IS_ENABLED(CONFIG_CODEC_XZ)
		memset(&c->xs, 0, sizeof(c->xs));
		if (lzma_stream_decoder(&c->xs, CRAW_XZ_MEMLIMIT,
					LZMA_CONCATENATED) != LZMA_OK)
			return err_set(e, -ENOMEM, "craw: lzma_stream_decoder failed");
		c->xs_init = 1;
		return 0;
#else
		return err_set(e, EI_EUNSUP,
			       "craw: xz streams are not built in (CODEC_XZ is off)");
#endif
	case CRAW_ZSTD:
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
		if (!c->zd) {
			c->zd = ZSTD_createDCtx();
			if (!c->zd)
				return err_set(e, -ENOMEM, "craw: out of memory");
		}
		ZSTD_DCtx_reset(c->zd, ZSTD_reset_session_and_parameters);
		if (ZSTD_isError(ZSTD_DCtx_setParameter(c->zd, ZSTD_d_windowLogMax,
							CRAW_ZSTD_WINDOW_LOG)))
			return err_set(e, -EINVAL, "craw: cannot limit the zstd window");
		c->zret = 1;
		return 0;
#else
		return err_set(e, EI_EUNSUP,
			       "craw: zstd streams are not built in (CODEC_ZSTD is off)");
#endif
	}
	return err_set(e, -EINVAL, "craw: unknown stream kind");
}

/* Refill the input buffer when it is empty; 0 at the end of the file. */
static int craw_fill_in(struct vdisk *vd, struct craw *c, struct err *e)
{
	size_t n;
	int r;

	if (c->in_pos < c->in_len)
		return 1;
	if (c->in_off >= vd->io->size)
		return 0;
	n = (size_t)min_u64(CRAW_IN, vd->io->size - c->in_off);
	r = io_read(vd->io, c->in, n, c->in_off, "craw: compressed data", e);
	if (r < 0)
		return r;
	c->in_off += n;
	c->in_len = n;
	c->in_pos = 0;
	return 1;
}

/* The file offset of the next compressed byte to decode. */
static uint64_t craw_in_at(const struct craw *c)
{
	return c->in_off - (c->in_len - c->in_pos);
}

static int craw_truncated(struct vdisk *vd, struct craw *c, struct err *e)
{
	return err_set(e, EI_ETRUNC,
		       "craw: %s stream is truncated: %s ends at %llu inside the stream, after %llu decompressed bytes",
		       craw_names[c->kind], vd->io->name,
		       (unsigned long long)vd->io->size,
		       (unsigned long long)c->pos);
}

/*
 * gzip: after a member, only another member or zero padding may follow
 * (gzip -d accepts both).  Returns 1 to go on with a new member, 0 at the
 * end of the stream.
 */
static int craw_gz_next(struct vdisk *vd, struct craw *c, struct err *e)
{
	for (;;) {
		int r = craw_fill_in(vd, c, e);

		if (r <= 0)
			return r;
		if (c->in[c->in_pos] == 0) {
			while (c->in_pos < c->in_len && !c->in[c->in_pos])
				c->in_pos++;
			continue;
		}
		break;
	}
	if (c->in[c->in_pos] != 0x1f)
		return err_set(e, EI_ECORRUPT,
			       "craw: trailing data after the gzip stream at offset %llu (byte 0x%02x, expected another gzip member or zero padding)",
			       (unsigned long long)craw_in_at(c), c->in[c->in_pos]);
	if (inflateReset(&c->zs) != Z_OK)
		return err_set(e, -EIO, "craw: inflateReset failed");
	c->gz_between = 0;
	return 1;
}

/*
 * Decode the next @cap bytes of the disk into @out; *@got is short only at
 * the end of the stream.
 */
static int craw_decode(struct vdisk *vd, struct craw *c, uint8_t *out,
		       size_t cap, size_t *got, struct err *e)
{
	size_t done = 0;
	int r;

	while (done < cap && !c->ended) {
		size_t before_in = c->in_pos, before_out = done;
		int eof;

		if (c->kind == CRAW_GZIP && c->gz_between) {
			r = craw_gz_next(vd, c, e);
			if (r < 0)
				return r;
			if (!r) {
				c->ended = 1;
				break;
			}
		}
		r = craw_fill_in(vd, c, e);
		if (r < 0)
			return r;
		eof = !r;
		if (c->kind == CRAW_GZIP) {
			int zr;

			c->zs.next_in = c->in + c->in_pos;
			c->zs.avail_in = (uInt)(c->in_len - c->in_pos);
			c->zs.next_out = out + done;
			c->zs.avail_out = (uInt)(cap - done);
			zr = inflate(&c->zs, Z_NO_FLUSH);
			c->in_pos = c->in_len - c->zs.avail_in;
			done = cap - c->zs.avail_out;
			if (zr == Z_STREAM_END) {
				c->gz_between = 1;
			} else if (zr == Z_DATA_ERROR || zr == Z_NEED_DICT) {
				return err_set(e, EI_ECODEC,
					       "craw: gzip data is corrupt near offset %llu: %s",
					       (unsigned long long)craw_in_at(c),
					       c->zs.msg ? c->zs.msg : "invalid stream");
			} else if (zr == Z_MEM_ERROR) {
				return err_set(e, -ENOMEM, "craw: gzip: out of memory");
			} else if (zr != Z_OK && zr != Z_BUF_ERROR) {
				return err_set(e, EI_ECODEC, "craw: gzip: inflate error %d", zr);
			}
		}
#if IS_ENABLED(CONFIG_CODEC_XZ)
		else if (c->kind == CRAW_XZ) {
			lzma_ret xr;

			c->xs.next_in = c->in + c->in_pos;
			c->xs.avail_in = c->in_len - c->in_pos;
			c->xs.next_out = out + done;
			c->xs.avail_out = cap - done;
			xr = lzma_code(&c->xs, eof ? LZMA_FINISH : LZMA_RUN);
			c->in_pos = c->in_len - c->xs.avail_in;
			done = cap - c->xs.avail_out;
			if (xr == LZMA_STREAM_END) {
				c->ended = 1;
			} else if (xr == LZMA_MEMLIMIT_ERROR) {
				return err_set(e, EI_ELIMIT,
					       "craw: xz stream needs %llu MiB of decoder memory, more than the %llu MiB allowed",
					       (unsigned long long)(lzma_memusage(&c->xs) >> 20),
					       (unsigned long long)(CRAW_XZ_MEMLIMIT >> 20));
			} else if (xr == LZMA_BUF_ERROR && eof) {
				return craw_truncated(vd, c, e);
			} else if (xr == LZMA_FORMAT_ERROR || xr == LZMA_DATA_ERROR ||
				   xr == LZMA_OPTIONS_ERROR) {
				return err_set(e, EI_ECODEC,
					       "craw: xz data is %s near offset %llu",
					       xr == LZMA_OPTIONS_ERROR ? "using unsupported options" :
					       xr == LZMA_FORMAT_ERROR ? "not in the xz format" : "corrupt",
					       (unsigned long long)craw_in_at(c));
			} else if (xr == LZMA_MEM_ERROR) {
				return err_set(e, -ENOMEM, "craw: xz: out of memory");
			} else if (xr != LZMA_OK && xr != LZMA_BUF_ERROR) {
				return err_set(e, EI_ECODEC, "craw: xz: decoder error %d", (int)xr);
			}
		}
#endif
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
		else if (c->kind == CRAW_ZSTD) {
			ZSTD_inBuffer ib = { c->in + c->in_pos, c->in_len - c->in_pos, 0 };
			ZSTD_outBuffer ob = { out + done, cap - done, 0 };
			size_t zr;

			/* No input left after a whole frame: the end. */
			if (eof && !c->zret) {
				c->ended = 1;
				break;
			}
			zr = ZSTD_decompressStream(c->zd, &ob, &ib);
			c->in_pos += ib.pos;
			done += ob.pos;
			if (ZSTD_isError(zr)) {
				if (ZSTD_getErrorCode(zr) == ZSTD_error_frameParameter_windowTooLarge)
					return err_set(e, EI_ELIMIT,
						       "craw: zstd frame near offset %llu needs a window larger than the %u MiB allowed (windowLogMax %d)",
						       (unsigned long long)craw_in_at(c),
						       1u << (CRAW_ZSTD_WINDOW_LOG - 20),
						       CRAW_ZSTD_WINDOW_LOG);
				return err_set(e, EI_ECODEC,
					       "craw: zstd data is corrupt near offset %llu: %s",
					       (unsigned long long)craw_in_at(c),
					       ZSTD_getErrorName(zr));
			}
			c->zret = zr;
		}
#endif
		c->pos += done - before_out;
		if (c->in_pos == before_in && done == before_out && eof &&
		    !c->ended) {
			if (c->kind == CRAW_GZIP && c->gz_between) {
				c->ended = 1;
				break;
			}
			return craw_truncated(vd, c, e);
		}
	}
	*got = done;
	return 0;
}

static void craw_spool_drop(struct craw *c)
{
	io_close(c->spool);
	c->spool = NULL;
	c->spooled = 0;
	c->spool_failed = 1;
}

/*
 * Make the spool: an unlinked file in $TMPDIR (or /tmp) as long as the
 * disk, all hole.  On any failure there is none (spool_failed).
 */
static void craw_spool_open(struct craw *c)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	struct err e2 = { 0 };
	int fd;

	if (!dir || !*dir)
		dir = "/tmp";
	c->spool_failed = 1;
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		/* No O_TMPFILE on this file system: a named file, unlinked. */
		if ((size_t)snprintf(path, sizeof(path), "%s/edgeimg-craw-XXXXXX",
				     dir) >= sizeof(path))
			return;
		fd = mkostemp(path, O_CLOEXEC);
		if (fd < 0)
			return;
		unlink(path);
	}
	if (io_open_fd(fd, "craw: spool", 1, &c->spool, &e2) < 0)
		return;
	if (io_truncate(c->spool, c->size, &e2) < 0) {
		craw_spool_drop(c);
		return;
	}
	c->spooled = 0;
	c->spool_failed = 0;
}

/*
 * Append the window to the spool, when it follows what the spool holds;
 * windows start on block boundaries, so its zero blocks stay holes.
 */
static void craw_spool_window(struct craw *c)
{
	struct err e2 = { 0 };

	if (!c->spool || c->win_off != c->spooled || !c->win_len)
		return;
	if (raw_write_sparse(c->spool, c->win, c->win_len, c->win_off, &e2) < 0) {
		craw_spool_drop(c);
		return;
	}
	c->spooled = c->win_off + c->win_len;
}

/* Decode the next window; 0 bytes only at the end of the stream. */
static int craw_next_window(struct vdisk *vd, struct craw *c, struct err *e)
{
	size_t got;
	int r;

	c->win_off = c->pos;
	c->win_len = 0;
	r = craw_decode(vd, c, c->win, CRAW_WIN, &got, e);
	if (r < 0)
		return r;
	c->win_len = got;
	craw_spool_window(c);
	/*
	 * At the end of the disk the stream must end too: decoding it to
	 * its end also checks the xz index, so a stream that holds more
	 * than the size found at open is an error, not a silent cut.
	 */
	if (c->size_known && c->pos >= c->size) {
		uint8_t extra;

		if (c->pos == c->size && !c->ended) {
			r = craw_decode(vd, c, &extra, 1, &got, e);
			if (r < 0)
				return r;
		}
		if (c->pos > c->size)
			return err_set(e, EI_ECORRUPT,
				       "craw: the %s stream holds more than the %llu bytes found at open%s",
				       craw_names[c->kind],
				       (unsigned long long)c->size,
				       c->size_from_index ? " (its index is wrong)" : "");
	}
	return 0;
}

/* Make the window hold @off, which lies inside the disk. */
static int craw_seek(struct vdisk *vd, struct craw *c, uint64_t off,
		     struct err *e)
{
	int r;

	if (off >= c->win_off && off - c->win_off < c->win_len)
		return 0;
	if (off < c->win_off) {
		/*
		 * Backwards, before what the spool holds: the stream can only
		 * start over.  The first time, a spool is made, so that it is
		 * the last time.
		 */
		if (!c->spool && !c->spool_failed)
			craw_spool_open(c);
		c->restarts++;
		r = craw_start(c, e);
		if (r < 0)
			return r;
	}
	for (;;) {
		r = craw_next_window(vd, c, e);
		if (r < 0)
			return r;
		if (!c->win_len)
			return err_set(e, EI_ETRUNC,
				       "craw: %s stream ended at %llu bytes, before offset %llu (the file changed since it was opened?)",
				       craw_names[c->kind], (unsigned long long)c->pos,
				       (unsigned long long)off);
		if (off - c->win_off < c->win_len)
			return 0;
	}
}

static void craw_free(struct craw *c)
{
	if (!c)
		return;
	craw_codec_end(c);
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
	ZSTD_freeDCtx(c->zd);
#endif
	io_close(c->spool);
#if IS_ENABLED(CONFIG_CODEC_XZ)
	if (c->xidx)
		lzma_index_end(c->xidx, NULL);
#endif
	free(c->frames);
	free(c->fbuf);
	free(c->cbuf);
	free(c->in);
	free(c->win);
	free(c);
}

static void craw_close(struct vdisk *vd)
{
	craw_free(vd->priv);
	vd->priv = NULL;
}

/* A tar (a compressed OVA, T13) is refused: the policy is "decompress first". */
static int craw_check_tar(struct craw *c, const uint8_t *head, size_t hl,
			  struct err *e)
{
	if (hl >= 263 && !memcmp(head + 257, "ustar", 5))
		return err_set(e, EI_EUNSUP,
			       "craw: the %s stream holds a tar archive (a compressed OVA?), not a raw disk; compressed archives are not read: decompress it and open the .ova or the disk inside",
			       craw_names[c->kind]);
	return 0;
}

#if IS_ENABLED(CONFIG_CODEC_XZ)
/*
 * An xz index serves random reads when it has several blocks, none
 * larger than CRAW_FRAME_MAX decoded, and no more than CRAW_INDEX_MAX.
 */
static bool craw_xz_indexable(const lzma_index *idx)
{
	lzma_index_iter it;
	lzma_vli n = lzma_index_block_count(idx);

	if (n < 2 || n > CRAW_INDEX_MAX)
		return false;
	lzma_index_iter_init(&it, idx);
	while (!lzma_index_iter_next(&it, LZMA_INDEX_ITER_BLOCK))
		if (it.block.uncompressed_size > CRAW_FRAME_MAX ||
		    it.block.total_size > CRAW_FRAME_MAX)
			return false;
	return true;
}

/*
 * xz: the size is in the index that ends every stream (mandatory in the
 * format); liblzma's file-info decoder reads the indexes of all streams
 * by seeking from the end.  The stream decoder checks every index against
 * the blocks it decodes, so a lying index fails the read that reaches it.
 * Returns 1 with *@size set, 0 when the indexes cannot be read (the size
 * is then counted), or a negative error.
 */
static int craw_xz_size(struct vdisk *vd, struct craw *c, uint64_t *size,
			struct err *e)
{
	lzma_stream xs = LZMA_STREAM_INIT;
	lzma_index *idx = NULL;
	uint64_t pos = 0;
	int r = 0;

	if (lzma_file_info_decoder(&xs, &idx, CRAW_XZ_MEMLIMIT, vd->io->size) != LZMA_OK)
		return err_set(e, -ENOMEM, "craw: lzma_file_info_decoder failed");
	for (int steps = 0; steps < 1 << 20; steps++) {
		lzma_ret xr;

		if (!xs.avail_in && pos < vd->io->size) {
			size_t n = (size_t)min_u64(CRAW_IN, vd->io->size - pos);

			r = io_read(vd->io, c->in, n, pos, "craw: xz index", e);
			if (r < 0)
				break;
			xs.next_in = c->in;
			xs.avail_in = n;
			pos += n;
		}
		xr = lzma_code(&xs, xs.avail_in || pos < vd->io->size ?
				    LZMA_RUN : LZMA_FINISH);
		if (xr == LZMA_SEEK_NEEDED) {
			if (xs.seek_pos > vd->io->size)
				break;
			pos = xs.seek_pos;
			xs.avail_in = 0;
			continue;
		}
		if (xr == LZMA_STREAM_END) {
			*size = lzma_index_uncompressed_size(idx);
			r = 1;
			if (craw_xz_indexable(idx)) {
				c->xidx = idx;
				c->nframes = lzma_index_block_count(idx);
				idx = NULL;
			}
			break;
		}
		if (xr != LZMA_OK)
			break;          /* unreadable: count instead */
	}
	lzma_end(&xs);
	if (idx)
		lzma_index_end(idx, NULL);
	return r;
}
#endif

/*
 * Refuse content that is not a raw disk: a tar (a compressed OVA, which
 * this tool does not read: T13) or an image another reader recognises.
 */
static int craw_check_content(struct craw *c, const uint8_t *head, size_t hl,
			      const uint8_t *tail, size_t tl, uint64_t size,
			      struct err *e)
{
	const struct img_format *f;
	struct err pe = { 0 };
	int r = craw_check_tar(c, head, hl, e);

	if (r < 0)
		return r;
	if (format_probe(head, hl, tail, tl, size, &f, &pe) < 0)
		return err_set(e, EI_EUNSUP,
			       "craw: the %s stream holds an image of several formats, not a raw disk: %s",
			       craw_names[c->kind], pe.msg);
	if (strcmp(f->name, "raw"))
		return err_set(e, EI_EUNSUP,
			       "craw: the %s stream holds a %s image (%s), not a raw disk; decompress it and open the result",
			       craw_names[c->kind], f->name, f->desc);
	return 0;
}

/* --- random access: zstd seek tables, xz indexes ---------------------- */

/* One frame (zstd) or block (xz) to decode. */
struct craw_piece {
	uint64_t num;           /* its number, from 0 */
	uint64_t doff, dlen;    /* its decoded bytes in the disk */
	uint64_t coff, clen;    /* its compressed bytes in the file */
};

#if IS_ENABLED(CONFIG_CODEC_ZSTD)
/*
 * The seek table of the zstd seekable format, when the file ends with one
 * (its footer's magic): every entry checked against the skippable frame
 * that holds it and against the file (SP2), the frames' offsets into
 * c->frames.  Then, between the last frame and the table, edgeimg's
 * recipe frame may lie.  Returns 1 when indexed, 0 when the file has no
 * seek table or frames too large to decode whole (read as a stream), or
 * an error naming the entry.  A lying decompressed size is found when
 * its frame is decoded (craw_piece_load()).
 */
static int craw_zstd_seek_table(struct vdisk *vd, struct craw *c, struct err *e)
{
	uint64_t fsize = vd->io->size, n, esz, tsize, tstart, coff = 0, doff = 0;
	uint8_t foot[CRAW_SEEK_FOOTER_LEN], sh[8];
	int r;

	if (fsize < 8 + CRAW_SEEK_FOOTER_LEN)
		return 0;
	r = io_read(vd->io, foot, sizeof(foot), fsize - sizeof(foot), "craw: zstd seek table footer", e);
	if (r < 0)
		return r;
	if (get_le32(foot + 5) != CRAW_SEEK_FOOTER_MAGIC)
		return 0;
	n = get_le32(foot);
	if (foot[4] & CRAW_SEEK_RESERVED_BITS)
		return err_set(e, EI_ECORRUPT,
			       "craw: zstd seek table descriptor 0x%02x has reserved bits set",
			       foot[4]);
	esz = foot[4] & CRAW_SEEK_CHECKSUM_FLAG ? 12 : 8;
	tsize = 8 + n * esz + CRAW_SEEK_FOOTER_LEN;
	if (tsize > fsize)
		return err_set(e, EI_ECORRUPT,
			       "craw: zstd seek table: %llu entries need %llu bytes, the file holds %llu",
			       (unsigned long long)n, (unsigned long long)tsize,
			       (unsigned long long)fsize);
	tstart = fsize - tsize;
	r = io_read(vd->io, sh, sizeof(sh), tstart, "craw: zstd seek table", e);
	if (r < 0)
		return r;
	if (get_le32(sh) != CRAW_SEEK_TABLE_MAGIC || get_le32(sh + 4) != tsize - 8)
		return err_set(e, EI_ECORRUPT,
			       "craw: zstd seek table: the entry count %llu does not fit its skippable frame (magic 0x%08x, %u bytes at offset %llu; expected 0x%08x, %llu bytes)",
			       (unsigned long long)n, get_le32(sh), get_le32(sh + 4),
			       (unsigned long long)tstart, CRAW_SEEK_TABLE_MAGIC,
			       (unsigned long long)(tsize - 8));
	if (!n)
		return err_set(e, EI_ECORRUPT, "craw: zstd seek table has no entries");
	if (n > CRAW_INDEX_MAX)
		return err_set(e, EI_ELIMIT,
			       "craw: zstd seek table of %llu entries, more than the %llu indexed",
			       (unsigned long long)n, (unsigned long long)CRAW_INDEX_MAX);
	c->frames = malloc((size_t)(n + 1) * sizeof(*c->frames));
	if (!c->frames)
		return err_set(e, -ENOMEM, "craw: out of memory");
	for (uint64_t i = 0, have = 0, at = 0; i < n; i++, at += esz) {
		const uint8_t *ent;
		uint64_t cl, dl;

		if (at + esz > have) {
			/* The entries, CRAW_IN bytes at a time. */
			uint64_t left = n * esz - i * esz;

			have = min_u64(CRAW_IN / esz * esz, left);
			r = io_read(vd->io, c->in, (size_t)have, tstart + 8 + i * esz,
				    "craw: zstd seek table", e);
			if (r < 0)
				return r;
			at = 0;
		}
		ent = c->in + at;
		cl = get_le32(ent);
		dl = get_le32(ent + 4);
		if (dl > CRAW_FRAME_MAX) {
			/* Too large to decode whole: read as a stream. */
			free(c->frames);
			c->frames = NULL;
			return 0;
		}
		if (!cl || cl > tstart - coff)
			return err_set(e, EI_ECORRUPT,
				       "craw: zstd seek table entry %llu: compressed size %llu at offset %llu goes past the %llu bytes of frames before the table",
				       (unsigned long long)i, (unsigned long long)cl,
				       (unsigned long long)coff, (unsigned long long)tstart);
		if (!dl && n > 1)
			return err_set(e, EI_ECORRUPT,
				       "craw: zstd seek table entry %llu: decompressed size 0",
				       (unsigned long long)i);
		if (dl > vd->opts.max_size - doff)
			return err_set(e, EI_ELIMIT,
				       "craw: zstd seek table entry %llu: the disk is larger than the limit of %llu bytes",
				       (unsigned long long)i, (unsigned long long)vd->opts.max_size);
		c->frames[i].coff = coff;
		c->frames[i].doff = doff;
		coff += cl;
		doff += dl;
	}
	c->frames[n].coff = coff;
	c->frames[n].doff = doff;
	if (coff != tstart) {
		/* Only edgeimg's recipe frame may lie in between. */
		uint64_t gap = tstart - coff, rl;

		r = gap >= 8 ? io_read(vd->io, sh, 8, coff, "craw: zstd recipe frame", e) : 0;
		if (r < 0)
			return r;
		rl = gap >= 8 ? get_le32(sh + 4) : 0;
		if (gap < 8 || get_le32(sh) != CRAW_RECIPE_MAGIC || rl != gap - 8 ||
		    rl >= CRAW_RECIPE_MAX)
			return err_set(e, EI_ECORRUPT,
				       "craw: zstd seek table: the compressed sizes of its %llu entries sum to %llu, not the %llu bytes of frames before the table",
				       (unsigned long long)n, (unsigned long long)coff,
				       (unsigned long long)tstart);
		r = io_read(vd->io, c->recipe, (size_t)rl, coff + 8, "craw: zstd recipe frame", e);
		if (r < 0)
			return r;
		c->recipe[rl] = 0;
		if (strlen(c->recipe) != rl || strncmp(c->recipe, "format=craw,", 12)) {
			c->recipe[0] = 0;
			return err_set(e, EI_ECORRUPT,
				       "craw: the recipe frame at offset %llu does not hold a craw recipe",
				       (unsigned long long)coff);
		}
	}
	c->nframes = n;
	return 1;
}
#endif

/* The frame or block holding @off, which lies inside the disk. */
static int craw_piece_find(struct craw *c, uint64_t off, struct craw_piece *p,
			   struct err *e)
{
#if IS_ENABLED(CONFIG_CODEC_XZ)
	if (c->xidx) {
		lzma_index_iter it;

		lzma_index_iter_init(&it, c->xidx);
		if (lzma_index_iter_locate(&it, off))
			return err_set(e, -EFAULT, "craw: xz index has no block at %llu",
				       (unsigned long long)off);
		p->num = it.block.number_in_file - 1;
		p->doff = it.block.uncompressed_file_offset;
		p->dlen = it.block.uncompressed_size;
		p->coff = it.block.compressed_file_offset;
		p->clen = it.block.total_size;
		return 0;
	}
#endif
	{
		uint64_t lo = 0, hi = c->nframes;

		/* The last frame starting at or before @off. */
		while (hi - lo > 1) {
			uint64_t mid = lo + (hi - lo) / 2;

			if (c->frames[mid].doff <= off)
				lo = mid;
			else
				hi = mid;
		}
		p->num = lo;
		p->doff = c->frames[lo].doff;
		p->dlen = c->frames[lo + 1].doff - p->doff;
		p->coff = c->frames[lo].coff;
		p->clen = c->frames[lo + 1].coff - p->coff;
		if (off - p->doff >= p->dlen)
			return err_set(e, -EFAULT, "craw: no frame at %llu",
				       (unsigned long long)off);
	}
	return 0;
}

static int craw_buf_grow(uint8_t **buf, size_t *cap, uint64_t need, struct err *e)
{
	uint8_t *b;

	if (need <= *cap)
		return 0;
	b = realloc(*buf, (size_t)need);
	if (!b)
		return err_set(e, -ENOMEM, "craw: out of memory");
	*buf = b;
	*cap = (size_t)need;
	return 0;
}

#if IS_ENABLED(CONFIG_CODEC_ZSTD)
static int craw_zstd_frame(struct craw *c, const struct craw_piece *p, struct err *e)
{
	size_t fl = ZSTD_findFrameCompressedSize(c->cbuf, (size_t)p->clen), got;

	if (ZSTD_isError(fl))
		return err_set(e, EI_ECODEC,
			       "craw: zstd seek table entry %llu: the frame at offset %llu is corrupt: %s",
			       (unsigned long long)p->num, (unsigned long long)p->coff,
			       ZSTD_getErrorName(fl));
	if (fl != p->clen)
		return err_set(e, EI_ECORRUPT,
			       "craw: zstd seek table entry %llu: compressed size %llu is not its frame's %zu at offset %llu",
			       (unsigned long long)p->num, (unsigned long long)p->clen, fl,
			       (unsigned long long)p->coff);
	/* One byte of room more: a frame holding more than said is caught. */
	got = ZSTD_decompressDCtx(c->zd, c->fbuf, (size_t)p->dlen + 1, c->cbuf, (size_t)p->clen);
	if (ZSTD_isError(got) && ZSTD_getErrorCode(got) == ZSTD_error_dstSize_tooSmall)
		got = (size_t)p->dlen + 1;
	else if (ZSTD_isError(got))
		return err_set(e, EI_ECODEC,
			       "craw: zstd seek table entry %llu: the frame at offset %llu is corrupt: %s",
			       (unsigned long long)p->num, (unsigned long long)p->coff,
			       ZSTD_getErrorName(got));
	if (got != p->dlen)
		return err_set(e, EI_ECORRUPT,
			       "craw: zstd seek table entry %llu says %llu decompressed bytes, its frame at offset %llu holds %s%zu",
			       (unsigned long long)p->num, (unsigned long long)p->dlen,
			       (unsigned long long)p->coff, got > p->dlen ? "more than " : "",
			       got > p->dlen ? (size_t)p->dlen : got);
	return 0;
}
#endif

#if IS_ENABLED(CONFIG_CODEC_XZ)
static int craw_xz_block(struct craw *c, const struct craw_piece *p, struct err *e)
{
	lzma_filter filters[LZMA_FILTERS_MAX + 1];
	lzma_block b = { 0 };
	lzma_index_iter it;
	size_t in_pos = 0, out_pos = 0;
	lzma_ret xr;
	uint64_t mem;

	lzma_index_iter_init(&it, c->xidx);
	lzma_index_iter_locate(&it, p->doff);
	b.version = 1;
	b.check = it.stream.flags->check;
	b.filters = filters;
	b.header_size = lzma_block_header_size_decode(c->cbuf[0]);
	if (b.header_size > p->clen ||
	    lzma_block_header_decode(&b, NULL, c->cbuf) != LZMA_OK)
		return err_set(e, EI_ECORRUPT, "craw: xz block %llu at offset %llu: bad block header",
			       (unsigned long long)p->num, (unsigned long long)p->coff);
	mem = lzma_raw_decoder_memusage(filters);
	if (mem > CRAW_XZ_MEMLIMIT)
		xr = LZMA_MEMLIMIT_ERROR;
	else if (lzma_block_compressed_size(&b, it.block.unpadded_size) != LZMA_OK)
		xr = LZMA_DATA_ERROR;
	else {
		b.uncompressed_size = p->dlen;
		in_pos = b.header_size;
		xr = lzma_block_buffer_decode(&b, NULL, c->cbuf, &in_pos, (size_t)p->clen,
					      c->fbuf, &out_pos, (size_t)p->dlen);
	}
	for (size_t i = 0; filters[i].id != LZMA_VLI_UNKNOWN; i++)
		free(filters[i].options);
	if (xr == LZMA_MEMLIMIT_ERROR)
		return err_set(e, EI_ELIMIT,
			       "craw: xz block %llu needs more than the %llu MiB of decoder memory allowed",
			       (unsigned long long)p->num, (unsigned long long)(CRAW_XZ_MEMLIMIT >> 20));
	if (xr != LZMA_OK || out_pos != p->dlen)
		return err_set(e, EI_ECODEC,
			       "craw: xz block %llu at offset %llu is corrupt or does not match the index (error %d, %zu of %llu bytes)",
			       (unsigned long long)p->num, (unsigned long long)p->coff,
			       (int)xr, out_pos, (unsigned long long)p->dlen);
	return 0;
}
#endif

/* Decode the frame or block holding @off into c->fbuf, unless it is there. */
static int craw_piece_load(struct vdisk *vd, struct craw *c, uint64_t off, struct err *e)
{
	struct craw_piece p;
	int r;

	if (c->fnum != UINT64_MAX && off >= c->fdoff && off - c->fdoff < c->flen)
		return 0;
	c->fnum = UINT64_MAX;
	r = craw_piece_find(c, off, &p, e);
	if (r < 0)
		return r;
	if (p.clen > vd->io->size || p.coff > vd->io->size - p.clen)
		return err_set(e, EI_ECORRUPT, "craw: %s %llu lies past the end of the file",
			       c->frames ? "zstd frame" : "xz block", (unsigned long long)p.num);
	if ((r = craw_buf_grow(&c->cbuf, &c->cbuf_cap, p.clen, e)) < 0 ||
	    (r = craw_buf_grow(&c->fbuf, &c->fbuf_cap, p.dlen + 1, e)) < 0)
		return r;
	r = io_read(vd->io, c->cbuf, (size_t)p.clen, p.coff, "craw: compressed data", e);
	if (r < 0)
		return r;
#if IS_ENABLED(CONFIG_CODEC_XZ)
	if (c->xidx)
		r = craw_xz_block(c, &p, e);
	else
#endif
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
		r = craw_zstd_frame(c, &p, e);
#else
		r = -EFAULT;
#endif
	if (r < 0)
		return r;
	c->fnum = p.num;
	c->fdoff = p.doff;
	c->flen = (size_t)p.dlen;
	return 0;
}

/* Open the random-access path: the size is the index's; the head is checked. */
static int craw_open_indexed(struct vdisk *vd, struct craw *c, struct err *e)
{
	uint64_t size;
	int r;

#if IS_ENABLED(CONFIG_CODEC_XZ)
	if (c->xidx)
		size = lzma_index_uncompressed_size(c->xidx);
	else
#endif
		size = c->frames[c->nframes].doff;
	if (size > vd->opts.max_size)
		return err_set(e, EI_ELIMIT,
			       "craw: the %s index says %llu bytes, more than the limit of %llu",
			       craw_names[c->kind], (unsigned long long)size,
			       (unsigned long long)vd->opts.max_size);
	c->indexed = 1;
	c->fnum = UINT64_MAX;
	c->size = size;
	c->size_known = 1;
	vd->size = size;
	if (!size)
		return 0;
	r = craw_piece_load(vd, c, 0, e);
	if (r < 0)
		return r;
	return craw_check_content(c, c->fbuf, (size_t)min_u64(PROBE_HEAD, c->flen), NULL, 0,
				  size, e);
}

/*
 * gzip: an edgeimg writer's recipe is the first member's comment (FCOMMENT,
 * after FEXTRA and FNAME when present); another comment is not a recipe.
 */
static int craw_gzip_recipe(struct vdisk *vd, struct craw *c, struct err *e)
{
	uint8_t h[1024];
	size_t n = (size_t)min_u64(sizeof(h), vd->io->size), at = 10, end;
	int r = io_read(vd->io, h, n, 0, "craw: gzip header", e);

	if (r < 0)
		return r;
	if (n < at || !(h[3] & 0x10))
		return 0;
	if (h[3] & 0x04) {              /* FEXTRA: 2 bytes of length, then it */
		if (n < at + 2)
			return 0;
		at += 2 + (size_t)(h[at] | h[at + 1] << 8);
	}
	if (h[3] & 0x08) {              /* FNAME, NUL-terminated */
		while (at < n && h[at])
			at++;
		at++;
	}
	if (at >= n)
		return 0;
	for (end = at; end < n && h[end]; end++)
		;
	if (end == n || end - at >= sizeof(c->recipe) || end - at < 12 ||
	    memcmp(h + at, "format=craw,", 12))
		return 0;
	memcpy(c->recipe, h + at, end - at);
	c->recipe[end - at] = 0;
	return 0;
}

static int craw_open(struct vdisk *vd, struct err *e)
{
	uint8_t magic[6], head[PROBE_HEAD], tail[PROBE_TAIL];
	size_t hl = 0, tl = 0, n;
	struct craw *c;
	int kind, r, indexed = 0;

	if (vd->io->flags & IO_STREAM)
		return err_set(e, EI_EUNSUP,
			       "craw: %s is not seekable; the stream is read twice (once to count its size)",
			       vd->io->name);
	n = (size_t)min_u64(sizeof(magic), vd->io->size);
	r = io_read(vd->io, magic, n, 0, "craw: magic", e);
	if (r < 0)
		return r;
	kind = craw_kind_of(magic, n);
	if (kind < 0)
		return err_set(e, EI_EFORMAT,
			       "craw: %s is not a gzip, xz or zstd stream (%zu bytes, magic %02x %02x %02x %02x)",
			       vd->io->name, n, n > 0 ? magic[0] : 0,
			       n > 1 ? magic[1] : 0, n > 2 ? magic[2] : 0,
			       n > 3 ? magic[3] : 0);
	c = calloc(1, sizeof(*c));
	if (!c)
		return err_set(e, -ENOMEM, "craw: out of memory");
	c->kind = (enum craw_kind)kind;
	c->in = malloc(CRAW_IN);
	c->win = malloc(CRAW_WIN);
	if (!c->in || !c->win) {
		r = err_set(e, -ENOMEM, "craw: out of memory");
		goto fail;
	}
	r = craw_start(c, e);
	if (r < 0)
		goto fail;
	if (c->kind == CRAW_GZIP && (r = craw_gzip_recipe(vd, c, e)) < 0)
		goto fail;
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
	if (c->kind == CRAW_ZSTD) {
		r = craw_zstd_seek_table(vd, c, e);
		if (r < 0)
			goto fail;
		indexed = r;
	}
#endif
#if IS_ENABLED(CONFIG_CODEC_XZ)
	if (c->kind == CRAW_XZ) {
		uint64_t size = 0;

		r = craw_xz_size(vd, c, &size, e);
		if (r < 0)
			goto fail;
		c->size_from_index = r;
		indexed = c->xidx != NULL;
		if (r && !indexed) {
			c->size = size;
			c->size_known = 1;
			/* Check the head only (no tail: that is at the end). */
			r = craw_next_window(vd, c, e);
			if (r < 0)
				goto fail;
			hl = (size_t)min_u64(sizeof(head), c->win_len);
			memcpy(head, c->win, hl);
			r = craw_check_content(c, head, hl, NULL, 0, size, e);
			if (r < 0)
				goto fail;
			vd->size = size;
			c->size_from_index = 1;
			vd->priv = c;
			return 0;
		}
	}
#endif

	if (indexed) {
		r = craw_open_indexed(vd, c, e);
		if (r < 0)
			goto fail;
		vd->priv = c;
		return 0;
	}
	c->size_from_index = 0;
	/* Count the size, keeping the head and tail for the content check. */
	for (;;) {
		r = craw_next_window(vd, c, e);
		if (r < 0)
			goto fail;
		if (!c->win_len)
			break;
		if (c->win_off == 0) {
			hl = (size_t)min_u64(sizeof(head), c->win_len);
			memcpy(head, c->win, hl);
			/* A tar is refused before counting it all. */
			r = craw_check_tar(c, head, hl, e);
			if (r < 0)
				goto fail;
		}
		if (c->win_len >= sizeof(tail)) {
			tl = sizeof(tail);
			memcpy(tail, c->win + c->win_len - tl, tl);
		} else {
			size_t keep = (size_t)min_u64(tl, sizeof(tail) - c->win_len);

			memmove(tail, tail + tl - keep, keep);
			memcpy(tail + keep, c->win, c->win_len);
			tl = keep + c->win_len;
		}
		if (c->pos > vd->opts.max_size) {
			r = err_set(e, EI_ELIMIT,
				    "craw: the %s stream decompresses to more than the limit of %llu bytes",
				    craw_names[c->kind],
				    (unsigned long long)vd->opts.max_size);
			goto fail;
		}
	}
	vd->size = c->pos;
	/* The tail the probes see excludes what the head already holds. */
	if (vd->size - hl < tl) {
		size_t ntl = (size_t)(vd->size - hl);

		memmove(tail, tail + tl - ntl, ntl);
		tl = ntl;
	}
	r = craw_check_content(c, head, hl, tail, tl, vd->size, e);
	if (r < 0)
		goto fail;
	c->size = vd->size;
	c->size_known = 1;
	r = craw_start(c, e);
	if (r < 0)
		goto fail;
	vd->priv = c;
	return 0;
fail:
	craw_free(c);
	return r;
}

/* @off is in the spool: before the window, inside what it holds. */
static bool craw_in_spool(const struct craw *c, uint64_t off)
{
	return c->spool && off < c->spooled && off < c->win_off;
}

/*
 * The spool holds what lies before the window (its holes are zero
 * blocks); else the window is moved to @off and its zero blocks are
 * zero runs, the rest data that craw_copy() takes from the window.
 */
static int craw_map(struct vdisk *vd, uint64_t off, uint64_t len,
		    struct map_run *run, struct err *e)
{
	struct craw *c = vd->priv;
	const uint8_t *win;
	size_t at, end, i, step;
	bool zero;
	int r;

	if (c->indexed) {
		r = craw_piece_load(vd, c, off, e);
		if (r < 0)
			return r;
		win = c->fbuf;
		at = (size_t)(off - c->fdoff);
		end = (size_t)min_u64(c->flen, at + len);
		goto scan;
	}
	if (craw_in_spool(c, off)) {
		run->src = MAP_IO;
		run->io = c->spool;
		run->host = off;
		run->len = min_u64(len, c->spooled - off);
		run->what = "craw: spool";
		run->holes = EXT_ZERO;
		return 0;
	}
	r = craw_seek(vd, c, off, e);
	if (r < 0)
		return r;
	win = c->win;
	at = (size_t)(off - c->win_off);
	end = (size_t)min_u64(c->win_len, at + len);
scan:
	/* Blocks aligned to CRAW_ZBLOCK in the disk. */
	step = (size_t)min_u64(CRAW_ZBLOCK - (off % CRAW_ZBLOCK), end - at);
	zero = buf_is_zero(win + at, step);
	for (i = at + step; i < end; i += step) {
		step = (size_t)min_u64(CRAW_ZBLOCK, end - i);
		if (buf_is_zero(win + i, step) != zero)
			break;
	}
	run->type = zero ? EXT_ZERO : EXT_DATA;
	run->src = zero ? MAP_NONE : MAP_DECODE;
	run->len = i - at;
	run->last = 1;          /* the next run may be in the next window */
	return 0;
}

/* Data craw_map() found in the window (or ahead of it). */
static int craw_copy(struct vdisk *vd, void *buf, size_t len, uint64_t off,
		     struct err *e)
{
	struct craw *c = vd->priv;
	uint8_t *p = buf;

	while (len) {
		size_t n, at;
		int r;

		if (c->indexed) {
			/* Only the frames or blocks the range lies in. */
			r = craw_piece_load(vd, c, off, e);
			if (r < 0)
				return r;
			at = (size_t)(off - c->fdoff);
			n = (size_t)min_u64(len, c->flen - at);
			memcpy(p, c->fbuf + at, n);
			p += n;
			off += n;
			len -= n;
			continue;
		}
		r = craw_seek(vd, c, off, e);
		if (r < 0)
			return r;
		at = (size_t)(off - c->win_off);
		n = (size_t)min_u64(len, c->win_len - at);
		memcpy(p, c->win + at, n);
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int craw_info(struct vdisk *vd, struct info *in, struct err *e)
{
	struct craw *c = vd->priv;

	(void)e;
	info_str(in, "compression", "%s", craw_names[c->kind]);
	info_u64(in, "compressed-size", vd->io->size);
	info_str(in, "virtual-size-source", c->size_from_index ? "xz index" :
		 c->frames ? "zstd seek table" : "counted by decompressing");
	if (c->indexed)
		info_u64(in, c->frames ? "frames" : "blocks", c->nframes);
	return 0;
}

static int craw_recipe(struct vdisk *vd, char *buf, size_t len, struct err *e)
{
	struct craw *c = vd->priv;
	size_t n = strlen(c->recipe);

	if (!n)
		return 0;
	if (n >= len)
		return err_set(e, EI_ELIMIT, "craw: recipe of %zu bytes is too long", n);
	memcpy(buf, c->recipe, n + 1);
	return (int)n;
}

const struct img_format fmt_craw = {
	.name = "craw",
	.desc = "compressed raw (.gz/.xz/.zst)",
	.probe = craw_probe,
	.open = craw_open,
	.map = craw_map,
	.decode = craw_copy,
	.close = craw_close,
	.info = craw_info,
	.recipe = craw_recipe,
	.write = craw_write,
	.write_parse = craw_write_parse,
	.wopts = craw_write_options,
	.feeds_data = 1,
};
