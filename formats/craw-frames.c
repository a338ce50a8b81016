// SPDX-License-Identifier: MIT
/*
 * zstd frames and xz blocks of the compressed raw writer, streamed.  Frame
 * k (block_size bytes of disk) is compressed by worker k mod T, which
 * reads the disk itself, CRAWW_PIECE bytes at a time under the reader's
 * lock, into a streaming compressor: a frame never sits in memory whole,
 * so frames of 16 MiB (zstd) and 8 MiB (xz) fit the 64 MiB cap with two
 * workers, where a pipeline of whole units fitted 8 and 2.
 *
 * The worker whose frame is next in the file (the head) writes its
 * output as it comes and hands the data it reads to write_opts.data
 * (--bmap), which takes it in disk order.  The others hold both, in
 * order, in an arena of f->hold_cap bytes; one whose arena has no room
 * for its output waits to be the head.  Data is held only while it leaves
 * the arena f->out_room for output: the rest of a frame's data ranges are
 * read again, once, when the frame becomes the head (from the page cache
 * as a rule) rather than have the worker wait.  The bytes depend on the
 * disk and the options alone, never on T or timing.
 *
 * xz: a block's branch-call filter is chosen from its data before it is
 * compressed, by a first read of it: x86 when E8 calls with a near target
 * are denser than any data but x86 code has them, ARM64 when BL
 * instructions are (craww_bcj()).  Holes and zero ranges are never read;
 * a frame without data takes the zero unit's bytes.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/bytes.h"
#include "craw-write.h"

#if IS_ENABLED(CONFIG_THREADS)
#include <pthread.h>
#endif

#define CRAWW_PIECE (512u << 10)        /* disk bytes read and fed at once */
#define CRAWW_TMP (128u << 10)          /* a compressor's output at once */
/*
 * A frame that just became the head gives its arena back at its next
 * piece; the worker of the frame after it may have begun an arena by then.
 */
#define CRAWW_OVERLAP (2 * CRAWW_PIECE)
#define CRAWW_RANGES 64                 /* data ranges of a piece read before they are fed */
/* The hold arena: entries of a 16-byte header (disk offset or CRAWW_HELD_OUT, length), then the bytes. */
#define CRAWW_HELD_HDR 16
#define CRAWW_HELD_OUT UINT64_MAX
#define CRAWW_NOT_HEAD UINT64_MAX       /* the frame number of the zero unit: never the head */
#define CRAWW_NONE UINT64_MAX
#define CRAWW_REREAD (1u << 20)         /* data bytes read again at once */

enum { CRAWW_BCJ_NONE, CRAWW_BCJ_X86, CRAWW_BCJ_ARM64 };

struct craww_frames;

struct craww_job {
	struct craww_frames *f;
	unsigned id;
	uint64_t frame;                 /* the frame compressed now */
	int head;                       /* it is the next in the file */
	uint64_t out_len;               /* its compressed bytes so far */
	uint8_t *piece, *tmp;
	uint8_t *hold;                  /* mapped while bytes are held */
	size_t hold_len;
	uint64_t reread;                /* data from here on is read again when head (or CRAWW_NONE) */
	uint64_t data_end;              /* the end of the frame's data passed so far */
	uint8_t *sink;                  /* the zero unit's output, instead of the file */
	size_t sink_len, sink_cap;
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
	ZSTD_CCtx *zc;
#endif
#if IS_ENABLED(CONFIG_CODEC_XZ)
	lzma_stream xs;
	lzma_options_lzma lz;
	lzma_filter filt[3];
	lzma_block blk;
#endif
#if IS_ENABLED(CONFIG_THREADS)
	pthread_t tid;
	int started;
#endif
	struct err err;
};

struct craww_frames {
	struct craw_writer *w;
	struct vdisk *src;
	const struct write_opts *wopts;
	uint64_t nframes;
	uint64_t head;                  /* frames before it are written */
	unsigned threads;
	size_t hold_cap;
	size_t out_room;                /* of an arena, kept from data for output */
	int failed;
	struct err err;                 /* the first failure */
#if IS_ENABLED(CONFIG_THREADS)
	pthread_mutex_t rd;             /* the source's reads */
	pthread_mutex_t lock;           /* head, failed, err */
	pthread_cond_t cond;
#endif
	struct craww_job *jobs;
};

#if IS_ENABLED(CONFIG_THREADS)
#define craww_lock(m) pthread_mutex_lock(m)
#define craww_unlock(m) pthread_mutex_unlock(m)
#else
#define craww_lock(m) ((void)0)
#define craww_unlock(m) ((void)0)
#endif

/* --- failure and the head ---------------------------------------------- */

static void craww_fail(struct craww_frames *f, const struct err *e)
{
	craww_lock(&f->lock);
	if (!f->failed) {
		f->failed = 1;
		f->err = *e;
	}
#if IS_ENABLED(CONFIG_THREADS)
	pthread_cond_broadcast(&f->cond);
#endif
	craww_unlock(&f->lock);
}

static int craww_cancelled(struct err *e)
{
	return err_set(e, -ECANCELED, "craw: another worker failed");
}

/* The job's arena, mapped when first used. */
static int craww_arena(struct craww_job *j, struct err *e)
{
	void *m;

	if (j->hold)
		return 0;
	m = mmap(NULL, j->f->hold_cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return err_set(e, -ENOMEM, "craw: out of memory");
	j->hold = m;
	return 0;
}

static int craww_read(struct craww_job *j, uint8_t *buf, uint64_t off, size_t len, int feed,
		      struct err *e);

/*
 * The frame's data ranges in [j->reread, j->data_end), not held, read
 * again into the arena (its held bytes gone) and fed as the head's are.
 */
static int craww_reread(struct craww_job *j, struct err *e)
{
	uint64_t pos = j->reread, end = j->data_end;
	size_t cap = (size_t)min_u64(j->f->hold_cap, CRAWW_REREAD);
	int r = craww_arena(j, e);

	j->reread = CRAWW_NONE;
	while (r >= 0 && pos < end) {
		size_t n = (size_t)min_u64(cap, end - pos);

		r = craww_read(j, j->hold, pos, n, 1, e);
		pos += n;
	}
	return r;
}

/* Give the held bytes their way, in the order they came: data to wopts->data, output to the file. */
static int craww_release(struct craww_job *j, struct err *e)
{
	const struct write_opts *wo = j->f->wopts;
	size_t at = 0;
	int r = 0;

	while (r >= 0 && at < j->hold_len) {
		uint64_t off = get_le64(j->hold + at);
		size_t n = (size_t)get_le64(j->hold + at + 8);
		const uint8_t *p = j->hold + at + CRAWW_HELD_HDR;

		r = off == CRAWW_HELD_OUT ? craww_put(j->f->w, p, n, e) :
		    wo->data(wo->data_arg, p, n, off, e);
		at += CRAWW_HELD_HDR + n;
	}
	if (r >= 0 && j->reread != CRAWW_NONE)
		r = craww_reread(j, e);
	if (j->hold)
		munmap(j->hold, j->f->hold_cap);
	j->hold = NULL;
	j->hold_len = 0;
	return r;
}

/*
 * Is the frame the head (next in the file)?  With @wait, wait until it
 * is.  When it just became the head, the held bytes go.  Returns 1 when
 * it is, 0 when not yet, or an error.
 */
static int craww_head(struct craww_job *j, int wait, struct err *e)
{
	struct craww_frames *f = j->f;
	int failed, r;

	if (j->head)
		return 1;
	craww_lock(&f->lock);
#if IS_ENABLED(CONFIG_THREADS)
	while (wait && f->head != j->frame && !f->failed)
		pthread_cond_wait(&f->cond, &f->lock);
#endif
	j->head = f->head == j->frame;
	failed = f->failed;
	craww_unlock(&f->lock);
	if (failed)
		return craww_cancelled(e);
	if (!j->head)
		return wait ? err_set(e, -EDEADLK, "craw: frame %llu waits for itself",
				      (unsigned long long)j->frame) : 0;
	r = craww_release(j, e);
	return r < 0 ? r : 1;
}

/*
 * Bytes of the frame's: compressed output (@off CRAWW_HELD_OUT) or data
 * read at disk offset @off.  The head passes them on; another frame holds
 * them while its arena has room, else waits to be the head.
 */
static int craww_pass(struct craww_job *j, uint64_t off, const uint8_t *p, size_t n,
		      struct err *e)
{
	const struct write_opts *wo = j->f->wopts;
	int r;

	if (off == CRAWW_HELD_OUT)
		j->out_len += n;
	if (j->sink) {
		if (n > j->sink_cap - j->sink_len)
			return err_set(e, EI_ELIMIT, "craw: the zero unit passes its bound of %zu bytes",
				       j->sink_cap);
		memcpy(j->sink + j->sink_len, p, n);
		j->sink_len += n;
		return 0;
	}
	r = craww_head(j, 0, e);
	if (r < 0)
		return r;
	if (!r && off != CRAWW_HELD_OUT) {
		/* Data: held while output keeps its room, else read again when head. */
		j->data_end = off + n;
		if (j->reread != CRAWW_NONE ||
		    CRAWW_HELD_HDR + n + j->f->out_room > j->f->hold_cap - j->hold_len) {
			if (j->reread == CRAWW_NONE)
				j->reread = off;
			return 0;
		}
	}
	if (!r && CRAWW_HELD_HDR + n <= j->f->hold_cap - j->hold_len) {
		r = craww_arena(j, e);
		if (r < 0)
			return r;
		put_le64(j->hold + j->hold_len, off);
		put_le64(j->hold + j->hold_len + 8, n);
		memcpy(j->hold + j->hold_len + CRAWW_HELD_HDR, p, n);
		j->hold_len += CRAWW_HELD_HDR + n;
		return 0;
	}
	if (!r && (r = craww_head(j, 1, e)) < 0)
		return r;
	return off == CRAWW_HELD_OUT ? craww_put(j->f->w, p, n, e) :
	       wo->data(wo->data_arg, p, n, off, e);
}

/* --- reading ----------------------------------------------------------- */

/* Does [off, off + len) hold data extents?  (Their bytes may still be zeros.) */
static int craww_any(struct craww_frames *f, uint64_t off, uint64_t len, struct err *e)
{
	uint64_t pos = off, end = off + len;
	int r = 0;

	craww_lock(&f->rd);
	while (pos < end) {
		struct extent ext;

		r = vdisk_extent(f->src, pos, end - pos, &ext, e);
		if (r < 0 || ext.type == EXT_DATA)
			break;
		pos += min_u64(ext.len, end - pos);
	}
	craww_unlock(&f->rd);
	return r < 0 ? r : pos < end;
}

/*
 * Fill @buf with [off, off + len): data extents read, the rest zeros.
 * With @feed, the data ranges are passed on (craww_pass()), outside the
 * reader's lock, which a waiting worker must not hold.
 */
static int craww_read(struct craww_job *j, uint8_t *buf, uint64_t off, size_t len, int feed,
		      struct err *e)
{
	struct craww_frames *f = j->f;
	uint64_t pos = off, end = off + len;
	struct { uint64_t off; size_t len; } rng[CRAWW_RANGES];
	int r;

	feed = feed && f->wopts->data;
	while (pos < end) {
		unsigned nr = 0;

		r = 0;
		craww_lock(&f->rd);
		while (pos < end && nr < CRAWW_RANGES) {
			struct extent ext;
			size_t n;

			r = vdisk_extent(f->src, pos, end - pos, &ext, e);
			if (r < 0)
				break;
			n = (size_t)min_u64(ext.len, end - pos);
			if (ext.type == EXT_DATA) {
				r = vdisk_read(f->src, buf + (pos - off), n, pos, e);
				if (r < 0)
					break;
				if (feed && nr && rng[nr - 1].off + rng[nr - 1].len == pos) {
					rng[nr - 1].len += n;
				} else if (feed) {
					rng[nr].off = pos;
					rng[nr++].len = n;
				}
			} else {
				memset(buf + (pos - off), 0, n);
			}
			pos += n;
		}
		craww_unlock(&f->rd);
		if (r < 0)
			return r;
		for (unsigned i = 0; i < nr; i++) {
			r = craww_pass(j, rng[i].off, buf + (rng[i].off - off), rng[i].len, e);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* --- the codecs, streaming --------------------------------------------- */

#if IS_ENABLED(CONFIG_CODEC_XZ)
/*
 * The branch-call filter for a block, from its bytes: in x86 code about
 * one byte in 100 to 350 starts a call (E8) whose 32-bit displacement is
 * near (its high byte 00 or FF), in other data one in 30,000 or fewer;
 * in ARM64 code 2.5 to 5% of the words are BL, in random data 1.6%, in
 * x86 code and text well under 1%.  The thresholds sit between.
 */
static int craww_bcj(struct craww_job *j, uint64_t off, size_t len, int *bcj, struct err *e)
{
	uint64_t e8 = 0, bl = 0, pos = off, end = off + len;
	int r;

	while (pos < end) {
		size_t n = (size_t)min_u64(CRAWW_PIECE, end - pos);
		const uint8_t *b = j->piece;

		r = craww_read(j, j->piece, pos, n, 0, e);
		if (r < 0)
			return r;
		for (size_t i = 0; i + 4 < n; i++)
			e8 += b[i] == 0xe8 && (b[i + 4] == 0 || b[i + 4] == 0xff);
		for (size_t i = 0; i + 4 <= n; i += 4)
			bl += (b[i + 3] & 0xfc) == 0x94;
		pos += n;
	}
	*bcj = CRAWW_BCJ_NONE;
	if (e8 * 1024 > len)
		*bcj = CRAWW_BCJ_X86;
#ifdef LZMA_FILTER_ARM64
	else if (bl * 50 > len / 4)
		*bcj = CRAWW_BCJ_ARM64;
#endif
	return 0;
}

static int craww_xz_begin(struct craww_job *j, size_t len, int bcj, struct err *e)
{
	uint8_t h[LZMA_BLOCK_HEADER_SIZE_MAX];
	unsigned i = 0;
	lzma_ret xr;

	j->lz = j->f->w->lz;
	if (bcj == CRAWW_BCJ_X86)
		j->filt[i++] = (lzma_filter){ LZMA_FILTER_X86, NULL };
#ifdef LZMA_FILTER_ARM64
	if (bcj == CRAWW_BCJ_ARM64)
		j->filt[i++] = (lzma_filter){ LZMA_FILTER_ARM64, NULL };
#endif
	j->filt[i++] = (lzma_filter){ LZMA_FILTER_LZMA2, &j->lz };
	j->filt[i] = (lzma_filter){ LZMA_VLI_UNKNOWN, NULL };
	memset(&j->blk, 0, sizeof(j->blk));
	j->blk.version = 0;
	j->blk.check = LZMA_CHECK_CRC64;
	j->blk.filters = j->filt;
	j->blk.compressed_size = LZMA_VLI_UNKNOWN;
	j->blk.uncompressed_size = len;
	if (lzma_block_header_size(&j->blk) != LZMA_OK ||
	    lzma_block_header_encode(&j->blk, h) != LZMA_OK)
		return err_set(e, EI_ECODEC, "craw: xz: cannot encode a block header");
	xr = lzma_block_encoder(&j->xs, &j->blk);
	if (xr == LZMA_MEM_ERROR)
		return err_set(e, -ENOMEM, "craw: xz: out of memory");
	if (xr != LZMA_OK)
		return err_set(e, EI_ECODEC, "craw: xz: block encoder error %d", (int)xr);
	return craww_pass(j, CRAWW_HELD_OUT, h, j->blk.header_size, e);
}

static int craww_xz_feed(struct craww_job *j, const uint8_t *p, size_t n, int last,
			 struct err *e)
{
	lzma_stream *s = &j->xs;
	lzma_ret xr;
	int r;

	s->next_in = p;
	s->avail_in = n;
	do {
		s->next_out = j->tmp;
		s->avail_out = CRAWW_TMP;
		xr = lzma_code(s, last ? LZMA_FINISH : LZMA_RUN);
		if (xr != LZMA_OK && xr != LZMA_STREAM_END)
			return err_set(e, xr == LZMA_MEM_ERROR ? -ENOMEM : EI_ECODEC,
				       "craw: xz: block encoder error %d", (int)xr);
		if (CRAWW_TMP - s->avail_out &&
		    (r = craww_pass(j, CRAWW_HELD_OUT, j->tmp, CRAWW_TMP - s->avail_out, e)) < 0)
			return r;
	} while (last ? xr != LZMA_STREAM_END : s->avail_in > 0);
	return 0;
}
#endif

#if IS_ENABLED(CONFIG_CODEC_ZSTD)
static int craww_zstd_feed(struct craww_job *j, const uint8_t *p, size_t n, int last,
			   struct err *e)
{
	ZSTD_inBuffer in = { p, n, 0 };
	size_t rem;
	int r;

	do {
		ZSTD_outBuffer o = { j->tmp, CRAWW_TMP, 0 };

		rem = ZSTD_compressStream2(j->zc, &o, &in, last ? ZSTD_e_end : ZSTD_e_continue);
		if (ZSTD_isError(rem))
			return err_set(e, EI_ECODEC, "craw: zstd: %s", ZSTD_getErrorName(rem));
		if (o.pos && (r = craww_pass(j, CRAWW_HELD_OUT, j->tmp, o.pos, e)) < 0)
			return r;
	} while (last ? rem != 0 : in.pos < in.size);
	return 0;
}
#endif

static int craww_feed(struct craww_job *j, const uint8_t *p, size_t n, int last, struct err *e)
{
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
	if (j->f->w->o.kind == CRAWW_ZSTD)
		return craww_zstd_feed(j, p, n, last, e);
#endif
#if IS_ENABLED(CONFIG_CODEC_XZ)
	if (j->f->w->o.kind == CRAWW_XZ)
		return craww_xz_feed(j, p, n, last, e);
#endif
	return err_set(e, EI_EUNSUP, "craw: %s is not built in", craww_names[j->f->w->o.kind]);
}

/*
 * Compress [off, off + len) of the disk as one frame or block, its data
 * read when @any, else zeros; @aux gets its CRAWW_AUX bytes.
 */
static int craww_compress(struct craww_job *j, uint64_t off, size_t len, int any,
			  uint8_t *aux, struct err *e)
{
	struct craw_writer *w = j->f->w;
	uint64_t pos = off, end = off + len;
	int r;

	memset(aux, 0, CRAWW_AUX);
	j->out_len = 0;
#if IS_ENABLED(CONFIG_CODEC_XZ)
	if (w->o.kind == CRAWW_XZ) {
		int bcj = CRAWW_BCJ_NONE;

		if ((any && (r = craww_bcj(j, off, len, &bcj, e)) < 0) ||
		    (r = craww_xz_begin(j, len, bcj, e)) < 0)
			return r;
	}
#endif
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
	if (w->o.kind == CRAWW_ZSTD &&
	    (ZSTD_isError(ZSTD_CCtx_reset(j->zc, ZSTD_reset_session_only)) ||
	     ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(j->zc, len))))
		return err_set(e, EI_ECODEC, "craw: zstd: cannot start a frame");
#endif
	/* At least one feed: an empty disk is one empty frame or block. */
	do {
		size_t n = (size_t)min_u64(CRAWW_PIECE, end - pos);

		if (any)
			r = craww_read(j, j->piece, pos, n, 1, e);
		else
			memset(j->piece, 0, n), r = 0;
		if (r < 0 || (r = craww_feed(j, j->piece, n, pos + n == end, e)) < 0)
			return r;
		pos += n;
	} while (pos < end);
#if IS_ENABLED(CONFIG_CODEC_XZ)
	if (w->o.kind == CRAWW_XZ) {
		if (lzma_block_total_size(&j->blk) != j->out_len)
			return err_set(e, EI_ECODEC, "craw: xz: the block is %llu bytes, its sizes say %llu",
				       (unsigned long long)j->out_len,
				       (unsigned long long)lzma_block_total_size(&j->blk));
		put_le64(aux, lzma_block_unpadded_size(&j->blk));
	}
#endif
	return 0;
}

/* --- frames ------------------------------------------------------------ */

static int craww_frame(struct craww_job *j, uint64_t k, struct err *e)
{
	struct craww_frames *f = j->f;
	struct craw_writer *w = f->w;
	uint64_t off = k * w->o.block_size;
	size_t len = (size_t)min_u64(w->o.block_size, w->size - off);
	uint8_t aux[CRAWW_AUX];
	int any, r;

	j->frame = k;
	j->head = 0;
	j->reread = CRAWW_NONE;
	j->data_end = 0;
	any = craww_any(f, off, len, e);
	if (any < 0)
		return any;
	if (!any && len == w->o.block_size) {
		memcpy(aux, w->zero, CRAWW_AUX);
		j->out_len = 0;
		r = craww_pass(j, CRAWW_HELD_OUT, w->zero + CRAWW_AUX, w->zero_len, e);
	} else {
		r = craww_compress(j, off, len, any, aux, e);
	}
	if (r < 0 || (r = craww_head(j, 1, e)) < 0 ||
	    (r = craww_index(w, len, aux, j->out_len, e)) < 0)
		return r;
	if (f->wopts->progress)
		f->wopts->progress(f->wopts->progress_arg, off + len, w->size);
	craww_lock(&f->lock);
	f->head++;
#if IS_ENABLED(CONFIG_THREADS)
	pthread_cond_broadcast(&f->cond);
#endif
	craww_unlock(&f->lock);
	j->head = 0;
	return 0;
}

static void *craww_worker(void *arg)
{
	struct craww_job *j = arg;
	struct craww_frames *f = j->f;

	for (uint64_t k = j->id; k < f->nframes; k += f->threads) {
		if (craww_frame(j, k, &j->err) < 0) {
			craww_fail(f, &j->err);
			break;
		}
	}
	return NULL;
}

/* --- setup ------------------------------------------------------------- */

/* A worker's codec state, once. */
static int craww_job_init(struct craww_job *j, struct err *e)
{
	struct craw_writer *w = j->f->w;

	j->reread = CRAWW_NONE;
	j->piece = malloc(CRAWW_PIECE);
	j->tmp = malloc(CRAWW_TMP);
	if (!j->piece || !j->tmp)
		return err_set(e, -ENOMEM, "craw: out of memory");
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
	if (w->o.kind == CRAWW_ZSTD) {
		const ZSTD_compressionParameters *p = &w->cp;
		ZSTD_CCtx *c = j->zc = ZSTD_createCCtx();

		if (!c)
			return err_set(e, -ENOMEM, "craw: out of memory");
		if (ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, w->o.level)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, (int)p->windowLog)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_chainLog, (int)p->chainLog)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_hashLog, (int)p->hashLog)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_searchLog, (int)p->searchLog)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_minMatch, (int)p->minMatch)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_targetLength, (int)p->targetLength)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_strategy, (int)p->strategy)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1)))
			return err_set(e, -EINVAL, "craw: zstd refuses the parameters of level %d",
				       w->o.level);
	}
#endif
#if IS_ENABLED(CONFIG_CODEC_XZ)
	j->xs = (lzma_stream)LZMA_STREAM_INIT;
#endif
	(void)w;
	return 0;
}

static void craww_job_free(struct craww_job *j)
{
	free(j->piece);
	free(j->tmp);
	if (j->hold)
		munmap(j->hold, j->f->hold_cap);
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
	ZSTD_freeCCtx(j->zc);
#endif
#if IS_ENABLED(CONFIG_CODEC_XZ)
	lzma_end(&j->xs);
#endif
}

/*
 * zstd: level's parameters for a frame, the match finder's tables at most
 * 2^CRAWW_ZSTD_TABLE_LOG entries.  Level 19 takes 2^24 and 2^22 (81 MiB a
 * thread); capped, 17.5 MiB with the window a stream keeps, for a result
 * about 0.3% larger on the corpus disk.  The parameters depend on the
 * level and block_size only, never on the threads or the cap.
 *
 * xz: the level's preset with its dictionary at most CRAWW_XZ_DICT (and
 * never above block_size): 2 MiB of dictionary is 24 MiB of encoder.
 */
#define CRAWW_ZSTD_TABLE_LOG 20
#define CRAWW_XZ_DICT (2u << 20)

/* A worker's codec state and the bound of a frame's compressed bytes. */
static int craww_sizes(struct craw_writer *w, uint64_t *ctx, size_t *bound, struct err *e)
{
	size_t bs = w->o.block_size;

	switch (w->o.kind) {
	case CRAWW_XZ:
#if IS_ENABLED(CONFIG_CODEC_XZ)
	{
		lzma_filter f[3] = { { LZMA_FILTER_X86, NULL }, { LZMA_FILTER_LZMA2, &w->lz },
				     { LZMA_VLI_UNKNOWN, NULL } };
		uint64_t m;

		if (lzma_lzma_preset(&w->lz, (uint32_t)w->o.level))
			return err_set(e, -EINVAL, "craw: xz: no preset %d", w->o.level);
		if (w->lz.dict_size > CRAWW_XZ_DICT)
			w->lz.dict_size = CRAWW_XZ_DICT;
		if (w->lz.dict_size > bs)
			w->lz.dict_size = (uint32_t)bs;
		m = lzma_raw_encoder_memusage(f);
		if (m == UINT64_MAX)
			return err_set(e, -EINVAL, "craw: xz: bad filter options");
		*ctx = m;
		*bound = lzma_block_buffer_bound(bs);
		return 0;
	}
#else
		break;
#endif
	case CRAWW_ZSTD:
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
		w->cp = ZSTD_getCParams(w->o.level, bs, 0);
		if (w->cp.chainLog > CRAWW_ZSTD_TABLE_LOG)
			w->cp.chainLog = CRAWW_ZSTD_TABLE_LOG;
		if (w->cp.hashLog > CRAWW_ZSTD_TABLE_LOG)
			w->cp.hashLog = CRAWW_ZSTD_TABLE_LOG;
		*ctx = ZSTD_estimateCStreamSize_usingCParams(w->cp);
		*bound = ZSTD_compressBound(bs);
		return 0;
#else
		break;
#endif
	default:
		break;
	}
	return err_set(e, EI_EUNSUP, "craw: compression %s is not built in", craww_names[w->o.kind]);
}

/* The zero unit: a whole frame of zeros, compressed once, on this thread. */
static int craww_zero_unit(struct craww_job *j, size_t bound, struct err *e)
{
	struct craw_writer *w = j->f->w;
	int r;

	j->frame = CRAWW_NOT_HEAD;
	j->sink_cap = bound;
	j->sink = w->zero = malloc(CRAWW_AUX + bound);
	if (!w->zero)
		return err_set(e, -ENOMEM, "craw: out of memory");
	j->sink += CRAWW_AUX;
	r = craww_compress(j, 0, w->o.block_size, 0, w->zero, e);
	w->zero_len = j->sink_len;
	j->sink = NULL;
	if (r >= 0) {
		/* A few hundred bytes: the rest of the bound is given back. */
		uint8_t *z = realloc(w->zero, CRAWW_AUX + w->zero_len);

		if (z)
			w->zero = z;
	}
	return r;
}

int craww_frames(struct craw_writer *w, struct vdisk *src, const struct write_opts *wopts,
		 uint64_t units, struct err *e)
{
	struct craww_frames f = { .w = w, .src = src, .wopts = wopts };
	uint64_t ctx = 0, per, fixed, held;
	size_t bound = 0;
	unsigned t;
	int r;

	r = craww_sizes(w, &ctx, &bound, e);
	if (r < 0)
		return r;
	/*
	 * Memory: the index; a worker's codec state, piece and output chunk;
	 * the hold arenas of all workers but the head's; the program when the
	 * cap leaves room.  Workers are as many as leave each arena room for
	 * half a frame's output at worst: it then holds a frame's output
	 * (and with --bmap its data) mostly without waiting.
	 */
	f.nframes = w->size ? (w->size - 1) / w->o.block_size + 1 : 1;
	per = ctx + CRAWW_PIECE + CRAWW_TMP;
	r = craww_fixed(w, wopts, units, per, &fixed, e);
	if (r < 0)
		return r;
	held = bound + CRAWW_HELD_HDR * (bound / CRAWW_TMP + 2);
	f.threads = IS_ENABLED(CONFIG_THREADS) && wopts->threads ? wopts->threads : 1;
	if (f.threads > f.nframes)
		f.threads = (unsigned)f.nframes;
	if (f.threads > 1)
		fixed += CRAWW_OVERLAP;
	while (f.threads > 1 && fixed + f.threads * per + (f.threads - 1) * (held / 2) > wopts->mem_cap)
		f.threads--;
	if (f.threads > 1) {
		/* Room for a frame's output and its data, at most; half a frame's output kept from data. */
		uint64_t room = (wopts->mem_cap - fixed - f.threads * per) / (f.threads - 1);

		f.hold_cap = (size_t)min_u64(room, held + 2ull * w->o.block_size);
		f.out_room = (size_t)min_u64(held / 2, f.hold_cap);
	}
	f.jobs = calloc(f.threads, sizeof(*f.jobs));
	if (!f.jobs)
		return err_set(e, -ENOMEM, "craw: out of memory");
#if IS_ENABLED(CONFIG_THREADS)
	pthread_mutex_init(&f.rd, NULL);
	pthread_mutex_init(&f.lock, NULL);
	pthread_cond_init(&f.cond, NULL);
#endif
	for (t = 0; t < f.threads; t++) {
		f.jobs[t].f = &f;
		f.jobs[t].id = t;
		r = craww_job_init(&f.jobs[t], e);
		if (r < 0)
			goto out;
	}
	r = craww_zero_unit(&f.jobs[0], bound, e);
	if (r < 0)
		goto out;
	if (f.threads == 1) {
		craww_worker(&f.jobs[0]);
	} else {
#if IS_ENABLED(CONFIG_THREADS)
		for (t = 0; t < f.threads; t++) {
			if (pthread_create(&f.jobs[t].tid, NULL, craww_worker, &f.jobs[t])) {
				err_set(&f.jobs[t].err, -EAGAIN, "craw: cannot start a thread");
				craww_fail(&f, &f.jobs[t].err);
				break;
			}
			f.jobs[t].started = 1;
		}
		for (t = 0; t < f.threads; t++)
			if (f.jobs[t].started)
				pthread_join(f.jobs[t].tid, NULL);
#endif
	}
	r = 0;
	if (f.failed) {
		*e = f.err;
		r = e->code ? e->code : -EIO;
	}
out:
	for (t = 0; t < f.threads; t++)
		craww_job_free(&f.jobs[t]);
	free(f.jobs);
#if IS_ENABLED(CONFIG_THREADS)
	pthread_mutex_destroy(&f.rd);
	pthread_mutex_destroy(&f.lock);
	pthread_cond_destroy(&f.cond);
#endif
	return r;
}
