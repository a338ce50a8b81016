// SPDX-License-Identifier: MIT
/*
 * bmaptool's block map, format 2.0 (bmap-tools' BmapCreate.py is the
 * reference reader and writer): an XML file of the image size, the block
 * size, the block counts, the checksum type, the file's own SHA-256 (taken
 * with 64 ASCII zeros in its place) and the mapped ranges "<Range
 * chksum="SHA-256 of the range's bytes"> FIRST-LAST </Range>".  The counts
 * come first in the file but are known last: like BmapCreate, a field of
 * spaces wide enough is written and filled in at the end.
 *
 * Memory is one block, one output buffer and, with threads, four 256 KiB
 * buffers queued to the thread that hashes them (so that the SHA-256 of
 * the data runs beside the writer's own work, not after it), whatever the
 * disk and however many ranges it has.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bmap.h"
#include "core/bytes.h"
#include "core/kconfig.h"
#include "crypto/sha.h"

#if IS_ENABLED(CONFIG_THREADS)
#include <pthread.h>
#endif

#define BMAP_OUTBUF 65536
#define BMAP_SLOTS 4
#define BMAP_SLOT (256u << 10)

struct bmap {
	struct io *out;
	uint64_t size;          /* the disk's bytes */
	uint64_t blocks;        /* its blocks, the last one maybe partial */
	uint64_t cur;           /* disk bytes accounted for */
	uint8_t blk[BMAP_BLOCK];        /* the block holding cur, its head */
	int blk_data;           /* data reached that block */
	int in_range;           /* a range is open: [first, last] */
	uint64_t first, last;
	struct sha256 sha;      /* of the open range's bytes so far */
	uint64_t mapped;        /* blocks mapped */
	uint64_t woff;          /* bytes of the file written */
	uint64_t count_at;      /* where MappedBlocksCount's field is */
	unsigned count_width;
	uint64_t sum_at;        /* where BmapFileChecksum's zeros are */
	char *obuf;
	size_t olen;
	uint64_t fed;           /* the end of the data given so far */
#if IS_ENABLED(CONFIG_THREADS)
	/* the data queued to the hashing thread: slots [head, head + count) */
	pthread_t tid;
	int started;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	uint8_t *slot[BMAP_SLOTS];
	size_t slot_len[BMAP_SLOTS];
	uint64_t slot_off[BMAP_SLOTS];
	unsigned head, count;
	int stop;               /* no more data comes */
	int failed;             /* the thread's error is in werr */
	struct err werr;
#endif
};

static int bmap_flush(struct bmap *b, struct err *e)
{
	int r;

	if (!b->olen)
		return 0;
	r = io_write(b->out, b->obuf, b->olen, b->woff, e);
	if (r < 0)
		return r;
	b->woff += b->olen;
	b->olen = 0;
	return 0;
}

static int bmap_put(struct bmap *b, struct err *e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bmap_put(struct bmap *b, struct err *e, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b->obuf + b->olen, BMAP_OUTBUF - b->olen, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= BMAP_OUTBUF - b->olen) {
		int r = bmap_flush(b, e);

		if (r < 0)
			return r;
		va_start(ap, fmt);
		n = vsnprintf(b->obuf, BMAP_OUTBUF, fmt, ap);
		va_end(ap);
		if (n < 0 || n >= BMAP_OUTBUF)
			return err_set(e, EI_ELIMIT, "bmap: a line longer than %d bytes",
				       BMAP_OUTBUF);
	}
	b->olen += (size_t)n;
	return 0;
}

/* The file offset of the next byte bmap_put() writes. */
static uint64_t bmap_at(const struct bmap *b)
{
	return b->woff + b->olen;
}

static int bmap_close_range(struct bmap *b, struct err *e)
{
	uint8_t d[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];

	if (!b->in_range)
		return 0;
	b->in_range = 0;
	sha256_final(&b->sha, d);
	sha_hex(d, sizeof(d), hex);
	if (b->first == b->last)
		return bmap_put(b, e, "        <Range chksum=\"%s\"> %" PRIu64 " </Range>\n",
				hex, b->first);
	return bmap_put(b, e, "        <Range chksum=\"%s\"> %" PRIu64 "-%" PRIu64 " </Range>\n",
			hex, b->first, b->last);
}

/* Block @i, whole (its @len bytes at @p): mapped when data reached it. */
static int bmap_block(struct bmap *b, uint64_t i, const uint8_t *p, size_t len,
		      int data, struct err *e)
{
	int r;

	if (!data)
		return bmap_close_range(b, e);
	if (b->in_range && i != b->last + 1 && (r = bmap_close_range(b, e)) < 0)
		return r;
	if (!b->in_range) {
		b->in_range = 1;
		b->first = i;
		sha256_init(&b->sha);
	}
	b->last = i;
	b->mapped++;
	sha256_update(&b->sha, p, len);
	return 0;
}

/* The bytes of the block holding @off: 0 when @off is past the disk. */
static size_t bmap_block_len(const struct bmap *b, uint64_t off)
{
	uint64_t start = off - off % BMAP_BLOCK;

	return start >= b->size ? 0 : (size_t)min_u64(BMAP_BLOCK, b->size - start);
}

/*
 * Bytes @p (NULL: zeros) for [cur, cur + len), len never past the block
 * holding cur: into the block buffer, which is mapped when full.
 */
static int bmap_fill(struct bmap *b, const uint8_t *p, size_t len, struct err *e)
{
	size_t at = (size_t)(b->cur % BMAP_BLOCK);
	size_t blen = bmap_block_len(b, b->cur);
	int r;

	if (p)
		memcpy(b->blk + at, p, len);
	else
		memset(b->blk + at, 0, len);
	b->blk_data |= p != NULL;
	b->cur += len;
	if (at + len < blen)
		return 0;
	r = bmap_block(b, (b->cur - 1) / BMAP_BLOCK, b->blk, blen, b->blk_data, e);
	b->blk_data = 0;
	return r;
}

/* Zeros up to @to: a partial block is completed, whole blocks skipped. */
static int bmap_zeros(struct bmap *b, uint64_t to, struct err *e)
{
	int r;

	if (to <= b->cur)
		return 0;
	if (b->cur % BMAP_BLOCK) {
		size_t n = (size_t)min_u64(to - b->cur,
					   bmap_block_len(b, b->cur) - b->cur % BMAP_BLOCK);

		if ((r = bmap_fill(b, NULL, n, e)) < 0)
			return r;
	}
	if (to - b->cur >= BMAP_BLOCK || (to == b->size && to > b->cur)) {
		/* whole zero blocks: not mapped */
		if ((r = bmap_close_range(b, e)) < 0)
			return r;
		b->cur = to - (to == b->size ? 0 : to % BMAP_BLOCK);
	}
	if (to > b->cur)
		return bmap_fill(b, NULL, (size_t)(to - b->cur), e);
	return 0;
}

/* Map the @len bytes at @off (after the last ones taken). */
static int bmap_take(struct bmap *b, const uint8_t *buf, size_t len, uint64_t off,
		     struct err *e)
{
	int r;

	if ((r = bmap_zeros(b, off, e)) < 0)
		return r;
	while (len) {
		size_t n;

		if (b->cur % BMAP_BLOCK == 0 && len >= BMAP_BLOCK) {
			/* whole blocks straight from @buf */
			r = bmap_block(b, b->cur / BMAP_BLOCK, buf, BMAP_BLOCK, 1, e);
			n = BMAP_BLOCK;
			b->cur += n;
		} else {
			n = (size_t)min_u64(len, bmap_block_len(b, b->cur) -
						 b->cur % BMAP_BLOCK);
			r = bmap_fill(b, buf, n, e);
		}
		if (r < 0)
			return r;
		buf += n;
		len -= n;
	}
	return 0;
}

#if IS_ENABLED(CONFIG_THREADS)
static void *bmap_worker(void *arg)
{
	struct bmap *b = arg;
	struct err e = { 0 };

	pthread_mutex_lock(&b->lock);
	for (;;) {
		unsigned i = b->head;
		int r = 0;

		while (!b->count && !b->stop)
			pthread_cond_wait(&b->cv, &b->lock);
		if (!b->count)
			break;
		pthread_mutex_unlock(&b->lock);
		if (!b->failed)
			r = bmap_take(b, b->slot[i], b->slot_len[i], b->slot_off[i], &e);
		pthread_mutex_lock(&b->lock);
		if (r < 0 && !b->failed) {
			b->werr = e;
			b->failed = 1;
		}
		b->head = (b->head + 1) % BMAP_SLOTS;
		b->count--;
		pthread_cond_broadcast(&b->cv);
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

/* Queue @len (<= BMAP_SLOT) bytes at @off for the thread; its error, if any. */
static int bmap_queue(struct bmap *b, const uint8_t *buf, size_t len, uint64_t off,
		      struct err *e)
{
	unsigned i;

	pthread_mutex_lock(&b->lock);
	while (b->count == BMAP_SLOTS && !b->failed)
		pthread_cond_wait(&b->cv, &b->lock);
	if (b->failed) {
		pthread_mutex_unlock(&b->lock);
		return err_set(e, b->werr.code, "%s", b->werr.msg);
	}
	i = (b->head + b->count) % BMAP_SLOTS;
	pthread_mutex_unlock(&b->lock);
	/* slot i is the producer's until it is counted */
	memcpy(b->slot[i], buf, len);
	b->slot_len[i] = len;
	b->slot_off[i] = off;
	pthread_mutex_lock(&b->lock);
	b->count++;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->lock);
	return 0;
}

/* Wait for the thread to take what is queued and end; its error, if any. */
static int bmap_stop(struct bmap *b, struct err *e)
{
	if (!b->started)
		return 0;
	pthread_mutex_lock(&b->lock);
	b->stop = 1;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->lock);
	pthread_join(b->tid, NULL);
	b->started = 0;
	if (b->failed)
		return err_set(e, b->werr.code, "%s", b->werr.msg);
	return 0;
}

/* Start the hashing thread; without one, bmap_data() maps inline. */
static void bmap_start(struct bmap *b)
{
	unsigned i;

	for (i = 0; i < BMAP_SLOTS; i++)
		if (!(b->slot[i] = malloc(BMAP_SLOT)))
			return;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cv, NULL);
	b->started = !pthread_create(&b->tid, NULL, bmap_worker, b);
}
#else
static int bmap_stop(struct bmap *b, struct err *e)
{
	(void)b;
	(void)e;
	return 0;
}
#endif

uint64_t bmap_memory(void)
{
	return sizeof(struct bmap) + BMAP_OUTBUF +
	       (IS_ENABLED(CONFIG_THREADS) ? (uint64_t)BMAP_SLOTS * BMAP_SLOT : 0);
}

int bmap_data(void *arg, const uint8_t *buf, size_t len, uint64_t off,
	      struct err *e)
{
	struct bmap *b = arg;

	if (off < b->fed || !range_ok(off, len, b->size))
		return err_set(e, EI_EUSAGE,
			       "bmap: data at %" PRIu64 " (%zu bytes) out of order: %" PRIu64
			       " bytes of %" PRIu64 " given", off, len, b->fed, b->size);
	b->fed = off + len;
#if IS_ENABLED(CONFIG_THREADS)
	if (b->started) {
		while (len) {
			size_t n = len < BMAP_SLOT ? len : BMAP_SLOT;
			int r = bmap_queue(b, buf, n, off, e);

			if (r < 0)
				return r;
			buf += n;
			off += n;
			len -= n;
		}
		return 0;
	}
#endif
	return bmap_take(b, buf, len, off, e);
}

int bmap_new(struct io *out, uint64_t size, struct bmap **bp, struct err *e)
{
	struct bmap *b = calloc(1, sizeof(*b));
	char n[24];
	int r;

	if (!b || !(b->obuf = malloc(BMAP_OUTBUF))) {
		free(b);
		return err_set(e, -ENOMEM, "bmap: out of memory");
	}
	b->out = out;
	b->size = size;
	b->blocks = size / BMAP_BLOCK + (size % BMAP_BLOCK != 0);
	b->count_width = (unsigned)snprintf(n, sizeof(n), "%" PRIu64, b->blocks);
	r = bmap_put(b, e,
		     "<?xml version=\"1.0\" ?>\n"
		     "<!-- The block map of an image file, made by edgeimg: the blocks that\n"
		     "     hold data, with the SHA-256 of each range, for \"bmaptool copy\".\n"
		     "     The other blocks are holes or zero ranges of the image. -->\n\n"
		     "<bmap version=\"2.0\">\n"
		     "    <!-- Image size in bytes -->\n"
		     "    <ImageSize> %" PRIu64 " </ImageSize>\n\n"
		     "    <!-- Size of a block in bytes -->\n"
		     "    <BlockSize> %u </BlockSize>\n\n"
		     "    <!-- Count of blocks in the image file -->\n"
		     "    <BlocksCount> %" PRIu64 " </BlocksCount>\n\n"
		     "    <!-- Count of mapped blocks -->\n"
		     "    <MappedBlocksCount> ",
		     size, BMAP_BLOCK, b->blocks);
	if (r >= 0) {
		b->count_at = bmap_at(b);
		r = bmap_put(b, e, "%*s </MappedBlocksCount>\n\n"
			     "    <!-- Type of checksum used in this file -->\n"
			     "    <ChecksumType> sha256 </ChecksumType>\n\n"
			     "    <!-- The checksum of this bmap file. When it is calculated, the value of\n"
			     "         the checksum has be zero (all ASCII \"0\" symbols).  -->\n"
			     "    <BmapFileChecksum> ", (int)b->count_width, "");
	}
	if (r >= 0) {
		b->sum_at = bmap_at(b);
		r = bmap_put(b, e, "%0*d </BmapFileChecksum>\n\n"
			     "    <!-- The block map: ranges of blocks or single blocks, each with\n"
			     "         the checksum of its bytes -->\n"
			     "    <BlockMap>\n", 2 * SHA256_LEN, 0);
	}
	if (r < 0) {
		bmap_free(b);
		return r;
	}
#if IS_ENABLED(CONFIG_THREADS)
	bmap_start(b);
#endif
	*bp = b;
	return 0;
}

int bmap_finish(struct bmap *b, struct err *e)
{
	uint8_t d[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1], n[24];
	struct sha256 c;
	uint64_t off;
	int r;

	if ((r = bmap_stop(b, e)) < 0 ||
	    (r = bmap_zeros(b, b->size, e)) < 0 ||
	    (r = bmap_close_range(b, e)) < 0 ||
	    (r = bmap_put(b, e, "    </BlockMap>\n</bmap>\n")) < 0 ||
	    (r = bmap_flush(b, e)) < 0)
		return r;
	snprintf(n, sizeof(n), "%*" PRIu64, (int)b->count_width, b->mapped);
	if ((r = io_write(b->out, n, b->count_width, b->count_at, e)) < 0)
		return r;
	/* the file's checksum: what was written, read back */
	sha256_init(&c);
	for (off = 0; off < b->woff; ) {
		size_t len = (size_t)min_u64(BMAP_OUTBUF, b->woff - off);

		if ((r = io_read(b->out, b->obuf, len, off, "bmap", e)) < 0)
			return r;
		sha256_update(&c, b->obuf, len);
		off += len;
	}
	sha256_final(&c, d);
	sha_hex(d, sizeof(d), hex);
	return io_write(b->out, hex, 2 * SHA256_LEN, b->sum_at, e);
}

uint64_t bmap_mapped(const struct bmap *b)
{
	return b->mapped;
}

void bmap_free(struct bmap *b)
{
	if (!b)
		return;
	bmap_stop(b, NULL);
#if IS_ENABLED(CONFIG_THREADS)
	for (unsigned i = 0; i < BMAP_SLOTS; i++)
		free(b->slot[i]);
#endif
	free(b->obuf);
	free(b);
}
