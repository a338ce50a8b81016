/* SPDX-License-Identifier: MIT */
/* A disk image format: one const table of callbacks per format. */
#ifndef EDGEIMG_FORMAT_H
#define EDGEIMG_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "core/check.h"
#include "core/err.h"
#include "core/info.h"
#include "core/io.h"
#include "core/opts.h"
#include "core/vdisk.h"

/* How many bytes of the head and the tail of a file a probe is given. */
#define PROBE_HEAD 4096
#define PROBE_TAIL 1536

/*
 * Probe scores: 0 is "not this format"; two scores >= PROBE_SURE conflict.
 * PROBE_REFUSED is a file recognised but not read as a disk (a tar that is
 * not an OVA, an Android sparse image): above the raw fallback, below every
 * reader; its open() refuses the file by name.
 */
#define PROBE_FALLBACK 1
#define PROBE_REFUSED 2
#define PROBE_SURE 50
#define PROBE_CERTAIN 100

struct write_parsed;

/* Where a run of a disk reads from (struct map_run). */
enum map_src {
	MAP_NONE,       /* nothing: reads as zeros (EXT_ZERO or EXT_HOLE) */
	MAP_IO,         /* stored as is: @io at @host */
	MAP_DECODE,     /* made by the format's decode() (EXT_DATA) */
	MAP_VDISK,      /* another disk's bytes: @vd at @at (a backing file, a
			   parent); its extents are this run's */
};

/* One run of a disk as a reader's map() gives it. */
struct map_run {
	uint64_t len;           /* bytes, 1..the length asked */
	enum extent_type type;  /* MAP_NONE, MAP_IO, MAP_DECODE: what it is */
	enum map_src src;
	struct io *io;          /* MAP_IO: the file holding it (vd->io, an
				   extent file, a spool) */
	uint64_t host;          /* MAP_IO: the run's offset in @io */
	const char *what;       /* MAP_IO: names the data in errors ("vdi:
				   data"); NULL: "FMT: data" */
	enum extent_type holes; /* MAP_IO: the type of holes of @io inside
				   the run (EXT_HOLE, EXT_ZERO; they read as
				   zeros), or EXT_DATA: not looked for */
	struct vdisk *vd;       /* MAP_VDISK */
	uint64_t at;            /* MAP_VDISK: the run's offset in @vd */
	int last;               /* vdisk_extent() maps nothing after this run
				   (mapping on would move a stream ahead of
				   the reads of this run) */
};

struct write_opts {
	const char *options;    /* -o key=val,... as given, or NULL */
	int compress;           /* -c: compressed output (qcow2) */
	unsigned threads;       /* worker threads, >= 1 */
	uint64_t mem_cap;       /* bytes the writer may hold in buffers */
	void (*progress)(void *arg, uint64_t done, uint64_t total);
	void *progress_arg;
	/*
	 * Optional, for writers with img_format.feeds_data: called from one
	 * thread at a time (the writer's, or the worker whose output is next)
	 * with the disk's data as the writer reads it, in increasing order of
	 * offset, each byte at most once; what it
	 * is never given reads as zeros (holes, zero extents).  "convert
	 * --bmap" hashes the mapped ranges so, without a second pass.  A
	 * negative return stops the write with that error.
	 */
	int (*data)(void *arg, const uint8_t *buf, size_t len, uint64_t off,
		    struct err *e);
	void *data_arg;
	/*
	 * Optional: @options and @compress as format_write_parse() parsed
	 * them for this writer, which write() then uses instead of parsing
	 * them again.  NULL: write() parses them itself.
	 */
	const struct write_parsed *parsed;
	/*
	 * Optional: compressed blocks another container already holds (apply:
	 * OLD's, when it was written with the same options), which the
	 * writer copies instead of compressing the same content again.
	 */
	const struct block_reuse *reuse;
};

/*
 * Blocks of an existing container, by content.  lookup() is given a
 * block's uncompressed bytes; when the container holds that content
 * compressed as this writer would compress it, it returns 1 with the
 * stored bytes in @out (*@out_len of them, at most @cap) and *@raw set
 * when they are stored uncompressed; else 0.  Called from worker threads
 * (it must be safe so); @copied counts the hits, @asked the calls.
 */
struct block_reuse {
	int (*lookup)(const struct block_reuse *r, const uint8_t *in, size_t len,
		      uint8_t *out, size_t cap, size_t *out_len, int *raw, struct err *e);
	void (*free)(struct block_reuse *r);
	void *priv;
	uint64_t copied, asked;         /* updated atomically */
	/*
	 * Set by the opener when nothing checks the writer's output against
	 * a known hash (convert --reuse; apply checks): then a hit is copied
	 * only once REUSE_PROOFS hits, compressed again, gave the bytes
	 * looked up, and never after one did not (@refused), so that a
	 * container whose recipe lies about its compression gets the bytes
	 * of a full build.
	 */
	int prove;
	uint64_t proven;                /* updated atomically */
	int refused;                    /* set atomically */
};

#define REUSE_PROOFS 8

/* reuse_refused() - a hit did not compress again to its bytes: look no more. */
static inline int reuse_refused(const struct block_reuse *r)
{
	return __atomic_load_n(&r->refused, __ATOMIC_ACQUIRE);
}

/* reuse_trusted() - a hit of @r may be copied without compressing it again. */
static inline int reuse_trusted(const struct block_reuse *r)
{
	return !r->prove || (!reuse_refused(r) &&
			     __atomic_load_n(&r->proven, __ATOMIC_ACQUIRE) >= REUSE_PROOFS);
}

/* reuse_proof() - a hit not trusted was compressed again: @same said whether
   to the bytes looked up.  It counts as compressed, not copied. */
static inline void reuse_proof(const struct block_reuse *r, int same)
{
	struct block_reuse *w = (struct block_reuse *)r;

	__atomic_fetch_sub(&w->copied, 1, __ATOMIC_RELAXED);
	if (same)
		__atomic_fetch_add(&w->proven, 1, __ATOMIC_RELEASE);
	else
		__atomic_store_n(&w->refused, 1, __ATOMIC_RELEASE);
}

/* The most bytes a writer's parsed options (its struct <fmt>_wopts) take. */
#define WRITE_PARSED_MAX 256
#define WRITE_VERSION_MAX 32

/*
 * A writer's -o options and -c, parsed and checked once, before OUT
 * exists, by format_write_parse(), for write() (write_opts.parsed).
 */
struct write_parsed {
	const struct img_format *fmt;   /* the writer they were parsed for */
	const char *options;            /* from these write_opts */
	int compress;
	/* A recipe's writer=: the edgeimg version that made it, or "". */
	char writer[WRITE_VERSION_MAX];
	/* writer= names another version than this edgeimg's: the bytes may differ. */
	int writer_differs;
	union {
		uint64_t align_u64;
		void *align_ptr;
		unsigned char bytes[WRITE_PARSED_MAX];
	} priv;                         /* the writer's own struct, copied in */
};

/* How a packed view's block is compressed (its record's method byte). */
enum pack_method {
	PACK_RAW = 0,           /* not a block: the container's bytes */
	PACK_QEMU_DEFLATE = 1,  /* QEMU's qcow2 zlib cluster: raw deflate, level 6,
				   window 2^12, memLevel 9 (zlib) */
	PACK_QEMU_ZSTD = 2,     /* QEMU's qcow2 zstd cluster: one frame, libzstd's
				   default parameters */
	PACK_SQFS_GZIP = 3,     /* mksquashfs's gzip block: a zlib stream, the
				   level, window and strategy given, memLevel 8 */
	PACK_SQFS_ZSTD = 4,     /* mksquashfs's zstd block: one frame of
				   ZSTD_compressCCtx() at the level given */
	PACK_SQFS_XZ = 5,       /* mksquashfs's xz block: one .xz stream, CRC32,
				   LZMA2 preset 6 after an optional BCJ filter
				   (its filter and dictionary from the stream) */
	PACK_SQFS_LZ4 = 6,      /* mksquashfs's lz4 block: LZ4_compress_default(),
				   or LZ4_compress_HC() at level 12 (-Xhc) */
};

struct img_format {
	const char *name;       /* as given to -f and -O: "qcow2" */
	const char *alias;      /* another name -f accepts (qemu's "vpc"), or NULL */
	const char *desc;

	/*
	 * Pure: no I/O, no allocation.  @head holds the first @head_len
	 * bytes of the file, @tail the last @tail_len; @file_size is the
	 * whole size (UINT64_MAX for a stream).  Returns a PROBE_* score.
	 */
	int (*probe)(const uint8_t *head, size_t head_len,
		     const uint8_t *tail, size_t tail_len, uint64_t file_size);

	/* Read side: @vd->io and @vd->opts are set; fill size and priv. */
	int (*open)(struct vdisk *vd, struct err *e);
	/*
	 * The block map, a reader's one account of its disk: the run of
	 * the disk starting at @off, at least 1 byte and at most @len (> 0,
	 * inside the disk), in *@run (zeroed by the caller).  vdisk_read()
	 * and vdisk_extent() are built on it for every reader.  Runs stored
	 * one after the other in the same file come back as one run
	 * (map_pieces() joins a format's pieces).
	 */
	int (*map)(struct vdisk *vd, uint64_t off, uint64_t len,
		   struct map_run *run, struct err *e);
	/*
	 * With map, when it returns MAP_DECODE runs: make the @len bytes of
	 * the disk at @off, which lie in one MAP_DECODE run (compressed
	 * clusters, grains or blocks; a log-patched range; a stream).
	 */
	int (*decode)(struct vdisk *vd, void *buf, size_t len, uint64_t off,
		      struct err *e);
	void (*close)(struct vdisk *vd);
	/* Optional: format-specific details for "info". */
	int (*info)(struct vdisk *vd, struct info *out, struct err *e);

	/*
	 * Optional: the recipe an edgeimg writer stored in the image, as
	 * "format=FMT,writer=VERSION,KEY=VALUE,...": every -o option the
	 * writer used, defaults spelled out, in the writer's canonical order,
	 * so that "convert -O FMT -o KEY=VALUE,..." of the same disk gives the
	 * same bytes.  Stored where the format allows and other readers
	 * ignore it.  Returns the length written to @buf (NUL-terminated),
	 * 0 when the image carries none, or a negative error.
	 */
	int (*recipe)(struct vdisk *vd, char *buf, size_t len, struct err *e);
	/*
	 * Optional, with write: the compressed blocks of the container at
	 * @path (opened with @oo) that this writer, given @options, may copy
	 * (write_opts.reuse): *@out NULL when the container was not written
	 * with the same compression (nothing to reuse); free with ->free().
	 */
	int (*reuse_open)(const char *path, const struct open_opts *oo, const char *options,
			  struct block_reuse **out, struct err *e);
	/*
	 * With reuse_open: the recipe write() records for @parsed (a root
	 * filesystem's when @tree), NUL-terminated in @buf; what reuse_open()
	 * is given when no recipe is at hand ("convert --reuse").
	 */
	void (*write_recipe)(const struct write_parsed *parsed, int tree, char *buf, size_t len);
	/*
	 * Optional: the compressed blocks of the container file at @path
	 * (opened with @oo; EI_EFORMAT: not this format), for its packed
	 * view (src/delta/delta-pack.c): @add(@arg, file offset, bytes its
	 * stream may span, bytes it decodes to, PACK_* method | level << 8)
	 * for each, in any order; blocks named twice or overlapping are left
	 * as they are.  @add's error ends the walk.
	 */
	int (*pack_blocks)(const char *path, const struct open_opts *oo,
			   int (*add)(void *arg, uint64_t off, uint64_t span, uint32_t ulen,
				      unsigned method, struct err *e),
			   void *arg, struct err *e);

	/*
	 * Write side, optional: stream the whole of @src into @out, which
	 * is empty (or a block device).  Output must be deterministic.
	 */
	int (*write)(struct vdisk *src, struct io *out,
		     const struct write_opts *wopts, struct err *e);

	/*
	 * With write, optional: interpret @o, the -o options split by
	 * format_write_parse() (which took a recipe's format= and writer=),
	 * and @wopts->compress, taking each key it knows with opts_get(), into
	 * the writer's own struct at @parsed (at most WRITE_PARSED_MAX bytes,
	 * copied in whole).  No I/O; the errors write() would give.
	 */
	int (*write_parse)(struct opts *o, const struct write_opts *wopts,
			   void *parsed, struct err *e);
	/*
	 * With write: the -o options it takes, ended by a NULL key (one
	 * entry with a NULL key for none): the source of its unknown-key
	 * errors and of format_options_help().
	 */
	const struct opt_desc *wopts;
	/*
	 * With write: the output holds the disk's bytes as a flasher writes
	 * them (raw, compressed raw), and write() passes them to
	 * write_opts.data: "convert --bmap" is offered.
	 */
	int feeds_data;

	/*
	 * Optional: verify the metadata of the image in @io as "qemu-img
	 * check" does, counting problems in @res (see check.h).  Negative
	 * only when the check could not run.
	 */
	int (*check)(struct io *io, struct check_result *res, struct err *e);
};

/*
 * format_write_parse() - parse and check, once and without I/O, the -o
 * options and -c of @wopts for @f's writer into @p: 0, or the error its
 * write() would give (EI_EUNSUP when @f cannot write).  The options may
 * be a recipe as the writer stored it and "info" prints it, verbatim: its
 * format= must be @f's name, its writer= a version (any: p->writer_differs
 * tells when it is not this edgeimg's, so that a caller can say the bytes
 * may differ).  Set wopts->parsed = @p for the write() that follows; @p
 * refers to wopts->options, which must stay unchanged.
 */
int format_write_parse(const struct img_format *f, const struct write_opts *wopts,
		       struct write_parsed *p, struct err *e);

/*
 * format_write_opts() - for @f's write(): *@out is wopts->parsed when that
 * holds @f's parse of @wopts's options, else @wopts parsed into @tmp.  0, or the
 * error of format_write_parse().  The writer's own struct is at ->priv.
 */
int format_write_opts(const struct img_format *f, const struct write_opts *wopts,
		      struct write_parsed *tmp, const struct write_parsed **out,
		      struct err *e);

/*
 * format_write_check() - whether format @name can write with the -o
 * @options (may be NULL) and -c @compress: 0, or the error its writer
 * would give for them (EI_EUNSUP for a format this build cannot write,
 * naming those it can), without I/O.  format_write_parse() without its
 * result, for a caller that checks before it has a format.
 */
int format_write_check(const char *name, const char *options, int compress,
		       struct err *e);

/*
 * format_options_help() - the help of every writer's -o options and their
 * defaults, as "edgeimg help convert" prints it, into @buf (capacity
 * @len, truncated, NUL-terminated when @len > 0).  Returns the length the
 * whole text needs (without the NUL), so that @len > that means complete.
 */
size_t format_options_help(char *buf, size_t len);

/*
 * map_pieces() - a map() from the pieces of a format's own units: @piece
 * gives the run at an offset cut at a block, grain or bitmap run (at most
 * the length asked); the pieces from @off on that join the first (same
 * type and source; for MAP_IO the same file, each right after the last;
 * for MAP_VDISK the same disk, likewise; MAP_DECODE pieces always join,
 * decode() takes them apart) are one run, at most @len bytes.
 */
int map_pieces(struct vdisk *vd, uint64_t off, uint64_t len,
	       struct map_run *run,
	       int (*piece)(struct vdisk *vd, uint64_t off, uint64_t len,
			    struct map_run *run, struct err *e),
	       struct err *e);

/*
 * map_decode_all() - a map() for a disk made wholly by its format's
 * decode() (a view delta builds): one data run of all @len bytes.
 */
int map_decode_all(struct vdisk *vd, uint64_t off, uint64_t len, struct map_run *run,
		   struct err *e);

/*
 * map_backing() - the run at @off of at most @len bytes that reads from
 * @parent (a backing file or parent disk, or NULL): its bytes where it has
 * them (MAP_VDISK), a hole past its end or without one.
 */
void map_backing(struct vdisk *parent, uint64_t off, uint64_t len,
		 struct map_run *run);

/*
 * raw_write_sparse() - write the @len bytes of @buf at @off into @out,
 * leaving its 4 KiB blocks of zeros (counted from @buf) as holes in a file;
 * a block device gets every byte.
 */
int raw_write_sparse(struct io *out, const uint8_t *buf, size_t len,
		     uint64_t off, struct err *e);

/* The registry, in probe order, raw last; NULL-terminated. */
extern const struct img_format *const img_formats[];

/*
 * Files recognised and refused (PROBE_REFUSED); NULL-terminated.  Probing
 * sees them, format_find() does not: "-f" names only the readers.
 */
extern const struct img_format *const img_refused[];

/* format_find() - the format called @name (or its alias), or NULL. */
const struct img_format *format_find(const char *name);

/*
 * format_suggest() - for an unknown format @name: "did you mean 'qcow2'? "
 * when a format's name (or alias) is near it, then "valid: " and the
 * names of the formats this build reads (@for_write: writes), into @buf
 * (capacity @len, truncated, NUL-terminated when @len > 0).  Returns the
 * length the whole text needs.
 */
size_t format_suggest(const char *name, int for_write, char *buf, size_t len);

/*
 * format_lookup() - the format called @name that this build reads (or,
 * @for_write, writes), or EI_EUSAGE: "unknown format 'qcw2'; did you mean
 * 'qcow2'? valid: ..." ("cannot write format 'vmdk'; valid: ..." for
 * one it only reads).  For -f and -O.
 */
int format_lookup(const char *name, int for_write,
		  const struct img_format **out, struct err *e);

/*
 * format_probe() - the format the probes pick for @head/@tail, or an
 * error: EI_EMULTI naming both when two are sure, EI_EFORMAT for none.
 */
int format_probe(const uint8_t *head, size_t head_len, const uint8_t *tail,
		 size_t tail_len, uint64_t file_size,
		 const struct img_format **out, struct err *e);

struct io;
/*
 * format_pick() - the format called @name (EI_EUSAGE when there is none),
 * or with @name NULL the one the probes pick for @io's first and last
 * bytes; a stream cannot be probed (EI_EUNSUP).
 */
int format_pick(struct io *io, const char *name,
		const struct img_format **out, struct err *e);

#endif
