/* SPDX-License-Identifier: MIT */
/*
 * squashfs 4.0, private to formats/squashfs/: on-disk constants (from the
 * kernel's Documentation/filesystems/squashfs.rst and squashfs-tools'
 * squashfs_fs.h, all little-endian), the compressor table, and the entry
 * points the table in squashfs.c points at.
 */
#ifndef EDGEIMG_SQUASHFS_H
#define EDGEIMG_SQUASHFS_H

#include <stddef.h>
#include <stdint.h>

#include "core/format.h"

#define SQFS_MAGIC 0x73717368u          /* "hsqs" */
#define SQFS_SUPER_SIZE 96
#define SQFS_META_SIZE 8192             /* uncompressed metadata block */
#define SQFS_META_MAX_DISK (SQFS_META_SIZE + 2)
#define SQFS_META_UNCOMPRESSED 0x8000u  /* in a metadata block's header */
#define SQFS_BLOCK_UNCOMPRESSED (1u << 24)      /* in a block size word */
#define SQFS_BLOCK_SIZE_MASK 0xffffffu
#define SQFS_INVALID_BLK 0xffffffffffffffffull
#define SQFS_INVALID_FRAG 0xffffffffu
#define SQFS_INVALID_XATTR 0xffffffffu
#define SQFS_MIN_LOG 12                 /* 4 KiB blocks */
#define SQFS_MAX_LOG 20                 /* 1 MiB blocks */
#define SQFS_DEVBLK 4096                /* images are padded to this */

/* Superblock fields, by byte offset. */
#define SB_INODES 4
#define SB_MKFS_TIME 8
#define SB_BLOCK_SIZE 12
#define SB_FRAGMENTS 16
#define SB_COMPRESSION 20
#define SB_BLOCK_LOG 22
#define SB_FLAGS 24
#define SB_NO_IDS 26
#define SB_MAJOR 28
#define SB_MINOR 30
#define SB_ROOT_INODE 32
#define SB_BYTES_USED 40
#define SB_ID_TABLE 48
#define SB_XATTR_TABLE 56
#define SB_INODE_TABLE 64
#define SB_DIR_TABLE 72
#define SB_FRAG_TABLE 80
#define SB_EXPORT_TABLE 88

/* Superblock flags. */
#define SQFS_FLAG_NOI 0x0001            /* inodes uncompressed */
#define SQFS_FLAG_NOD 0x0002            /* data uncompressed */
#define SQFS_FLAG_NOF 0x0008            /* fragments uncompressed */
#define SQFS_FLAG_NO_FRAG 0x0010
#define SQFS_FLAG_ALWAYS_FRAG 0x0020
#define SQFS_FLAG_DUPLICATES 0x0040
#define SQFS_FLAG_EXPORT 0x0080
#define SQFS_FLAG_NOX 0x0100
#define SQFS_FLAG_NO_XATTR 0x0200
#define SQFS_FLAG_COMP_OPT 0x0400
#define SQFS_FLAG_NOID 0x0800
#define SQFS_FLAGS_KNOWN 0x0fff

/* Compressor ids. */
#define SQFS_COMP_GZIP 1
#define SQFS_COMP_LZMA 2
#define SQFS_COMP_LZO 3
#define SQFS_COMP_XZ 4
#define SQFS_COMP_LZ4 5
#define SQFS_COMP_ZSTD 6

/* lz4 compressor options: the kernel needs them and version 1. */
#define SQFS_LZ4_LEGACY 1
#define SQFS_LZ4_HC 1

/* Inode types; directory entries carry the basic ones (1..7). */
#define SQFS_DIR 1
#define SQFS_REG 2
#define SQFS_SYMLINK 3
#define SQFS_BLKDEV 4
#define SQFS_CHRDEV 5
#define SQFS_FIFO 6
#define SQFS_SOCKET 7
#define SQFS_LDIR 8
#define SQFS_LREG 9
#define SQFS_LSYMLINK 10
#define SQFS_LSOCKET 14

#define SQFS_INODE_HDR 16               /* type, mode, uid, gid, mtime, number */
#define SQFS_REG_SIZE 16                /* after the header, before the list */
#define SQFS_LREG_SIZE 40
#define SQFS_DIR_SIZE 16
#define SQFS_LDIR_SIZE 24
#define SQFS_DIR_HDR 12                 /* count - 1, start block, inode base */
#define SQFS_DIR_ENTRY 8                /* offset, delta, type, name size - 1 */
#define SQFS_DIR_MAX_COUNT 256
#define SQFS_NAME_MAX 256
#define SQFS_SYMLINK_MAX 4096

/*
 * The recipe: written right after bytes_used, in the padding every reader
 * (kernel, unsquashfs, squashfs-tools-ng) ignores, as
 * "edgeimg-recipe:" RECIPE "\n".
 */
#define SQFS_RECIPE_TAG "edgeimg-recipe:"
#define SQFS_RECIPE_MAX 512

/* The disk's file, unless the recipe's name= says otherwise. */
#define SQFS_DEFAULT_NAME "disk.img"
/* partitions=on: this manifest and pN.img beside the disk. */
#define SQFS_PARTS_MANIFEST "partitions.txt"

struct squashfs_comp {
	const char *name;       /* -o compression= and mksquashfs -comp */
	uint16_t id;
	const char *codec;      /* the src/codec/codec.c table it uses, or NULL */
	int level_min, level_max, level_default;
};

/* squashfs_comp_by_id(), _by_name() - the table entry, or NULL. */
const struct squashfs_comp *squashfs_comp_by_id(unsigned id);
const struct squashfs_comp *squashfs_comp_by_name(const char *name);

/* squashfs_comp_built() - 0 when this build can (de)compress @c. */
int squashfs_comp_built(const struct squashfs_comp *c);

/*
 * squashfs_compress() - compress @in into @out (capacity *@out_len),
 * blocks of a filesystem with @block_size; -ENOSPC when the result would
 * not be smaller than the input (store it uncompressed).  *@ctx is the
 * thread's state, NULL at first; squashfs_ctx_free().  @flags:
 * SQFS_SKIP_RANDOM gives -ENOSPC without running zstd's level on a block
 * whose bytes look random and which zstd's fastest level does not fit in
 * *@out_len (writer option skip_random; other compressors ignore it).
 */
#define SQFS_SKIP_RANDOM 1u
int squashfs_compress(const struct squashfs_comp *c, void **ctx,
		      const void *in, size_t in_len, void *out,
		      size_t *out_len, int level, uint32_t block_size,
		      unsigned flags, struct err *e);

/*
 * squashfs_decompress() - decompress @in into @out, capacity *@out_len,
 * setting *@out_len; output beyond the capacity or a bad stream is
 * EI_ECODEC.  Memory is bounded by @block_size (xz dictionaries).
 */
int squashfs_decompress(const struct squashfs_comp *c, void **ctx,
			const void *in, size_t in_len, void *out,
			size_t *out_len, uint32_t block_size, struct err *e);

void squashfs_ctx_free(const struct squashfs_comp *c, void *ctx);

/*
 * squashfs-read.c: the filesystem under both readers, the disk's (the
 * registry's squashfs format) and the file view's (squashfs-files.c):
 * the superblock and the table chain checked as the kernel's
 * squashfs_fill_super() does, and metadata read through a small cache.
 */
#define SQFS_MCACHE 8           /* decompressed metadata blocks kept */

struct squashfs_mblock {
	uint64_t pos;           /* the block's header; UINT64_MAX: empty */
	uint64_t next;          /* the block after it */
	uint32_t len;           /* uncompressed bytes */
	uint8_t data[SQFS_META_SIZE];
};

struct squashfs_fs {
	struct io *io;          /* the image's bytes, not owned */
	uint64_t max_table;     /* the largest index held in memory */
	const struct squashfs_comp *comp;
	void *ctx;
	uint32_t bs, log, inodes, fragments, mkfs_time;
	unsigned flags, no_ids;
	uint64_t bytes_used, inode_table, dir_table, dir_end, root_ref;
	uint64_t frag_table;    /* fragment_table_start: the index */
	uint64_t *frag_ptr;     /* the index: metadata block positions */
	uint64_t id_table;      /* id_table_start: the index */
	uint64_t *id_ptr;       /* its metadata block positions */
	uint64_t xattr_table;   /* xattr_id_table_start, or SQFS_INVALID_BLK */
	uint64_t xattr_kv;      /* xattr_table_start: the key/value blocks */
	uint64_t *xattr_ptr;    /* the xattr id table's metadata blocks */
	uint32_t xattr_ids;
	int opt_level;          /* from compressor options, or -1 */
	int opt_lz4_hc;         /* lz4: the options' high-compression flag */
	int opt_gzip_window;    /* gzip: the options' window bits (8..15), or 0 */
	unsigned opt_gzip_strategies; /* gzip: the options' strategy bits (0: default) */
	uint8_t *cbuf;          /* max(bs, 8 KiB): compressed input */
	struct squashfs_mblock *mc;
};

/*
 * squashfs_fs_open() - read and check the superblock of the squashfs in
 * @io, its tables' indexes and compressor options (EI_EFORMAT: no magic).
 * @fs is zeroed first; squashfs_fs_close() it even after an error.
 */
int squashfs_fs_open(struct squashfs_fs *fs, struct io *io, uint64_t max_table,
		     struct err *e);
void squashfs_fs_close(struct squashfs_fs *fs);

/*
 * squashfs_meta_read() - copy @len bytes of metadata starting at block
 * *@blk, offset *@off (both advanced), into @dst (NULL skips them),
 * following blocks inside [lo, hi); @what names the table in errors.
 */
int squashfs_meta_read(struct squashfs_fs *fs, uint64_t *blk, uint32_t *off,
		       void *dst, size_t len, uint64_t lo, uint64_t hi,
		       const char *what, struct err *e);

/*
 * squashfs_inode_read() - the 16-byte header of the inode at @ref into @hdr
 * (inode_number non-zero, uid and gid indexes below no_ids checked), then
 * @len more bytes into @body; *@blk and *@off are left after them.
 */
int squashfs_inode_read(struct squashfs_fs *fs, uint64_t ref, uint8_t *hdr,
			uint8_t *body, size_t len, uint64_t *blk, uint32_t *off,
			struct err *e);

/* An entry of a directory listing, pointing into the listing. */
struct squashfs_dent {
	const uint8_t *name;    /* not NUL-terminated */
	unsigned name_len;      /* 1..256 */
	unsigned type;          /* basic type, 1..7 */
	uint32_t number;
	uint64_t ref;           /* its inode: block << 16 | offset */
};

/*
 * squashfs_listing() - parse the directory listing @p (@len bytes, what
 * a directory inode's file_size - 3 says) into *@out (malloc'ed, *@nout
 * entries), sorted by name (memcmp, shorter first): headers and entries
 * checked, names plain (no '/', NUL, "." or ".."), no name twice (S7, S8).
 */
int squashfs_listing(const uint8_t *p, size_t len, struct squashfs_dent **out,
		     size_t *nout, struct err *e);

/*
 * squashfs_frag_entry() - fragment @idx (< fragments, the caller's check):
 * where its block starts and its size word, both checked against the image.
 */
int squashfs_frag_entry(struct squashfs_fs *fs, uint32_t idx, uint64_t *start,
			uint32_t *w, struct err *e);

/* squashfs-read.c: the disk reader */
int squashfs_open(struct vdisk *vd, struct err *e);
int squashfs_map(struct vdisk *vd, uint64_t off, uint64_t len,
		 struct map_run *run, struct err *e);
int squashfs_decode(struct vdisk *vd, void *buf, size_t len, uint64_t off,
		    struct err *e);
void squashfs_close(struct vdisk *vd);
int squashfs_info(struct vdisk *vd, struct info *out, struct err *e);
int squashfs_recipe(struct vdisk *vd, char *buf, size_t len, struct err *e);

/*
 * squashfs_recipe_read() - the recipe an edgeimg writer left at
 * @bytes_used of @io into @out ("" when none, or when it does not fit).
 */
int squashfs_recipe_read(struct io *io, uint64_t bytes_used, char *out, size_t out_len,
			struct err *e);

/*
 * squashfs_write_view() - the root filesystem of the file-tree view in
 * @view (files/ftree.h), as ft_write_squashfs() writes it (files=on).
 */
struct write_opts;
int squashfs_write_view(struct vdisk *view, struct io *out, const struct write_opts *wo,
			struct err *e);

/* squashfs_recipe_is_tree() - 1 when @recipe is a root filesystem's (files=on). */
int squashfs_recipe_is_tree(const char *recipe);

extern const struct img_format fmt_squashfs;

/* squashfs-write.c: the writer's -o options, as squashfs_opts_parse() reads them */
struct squashfs_wopts {
	const struct squashfs_comp *comp;
	int level, partitions, files, skip_random;
	int group;              /* group_fragments: tails packed by file name */
	uint32_t bs, log, mtime;
	char name[72];
	/* which of name=, partitions=, mtime= (or SOURCE_DATE_EPOCH) and
	 * group_fragments= were given */
	unsigned given;
	const struct block_reuse *reuse;        /* write_opts.reuse */
};

#define SQFS_GIVEN_NAME 1u
#define SQFS_GIVEN_PARTITIONS 2u
#define SQFS_GIVEN_MTIME 4u
#define SQFS_GIVEN_GROUP 8u

/*
 * Where a writer's bytes go: the output, the next byte, the furthest
 * written (a writer may move back), and how its metadata is compressed
 * (@ctx: the writing thread's compressor state, squashfs_ctx_free()).
 */
struct io;
struct squashfs_sink {
	struct io *io;
	uint64_t pos, high;
	const struct squashfs_comp *comp;
	int level;
	uint32_t bs;
	void *ctx;
};

/* squashfs_sink_write() - @len bytes at s->pos, moving it. */
int squashfs_sink_write(struct squashfs_sink *s, const void *p, size_t len, struct err *e);

/*
 * A metadata table (inodes, directories, xattr pairs) being built in
 * 8 KiB blocks, each stored compressed when that is smaller: written to
 * the sink as they fill, or, with @to_mem, kept stored in @mem (@written
 * bytes) for the writer to write later.  Zeroed to start; free(mem).
 */
struct squashfs_meta {
	uint8_t buf[SQFS_META_SIZE];
	size_t used;
	uint64_t written;       /* stored bytes of the table so far */
	int to_mem;
	uint8_t *mem;
	size_t mem_cap;
};

int squashfs_meta_add(struct squashfs_sink *s, struct squashfs_meta *m, const void *p,
		      size_t len, struct err *e);
/* squashfs_meta_flush() - store the block being filled (if any). */
int squashfs_meta_flush(struct squashfs_sink *s, struct squashfs_meta *m, struct err *e);
/* squashfs_meta_ref() - where the next byte goes: stored block << 16 | offset. */
uint64_t squashfs_meta_ref(const struct squashfs_meta *m);

/*
 * squashfs_table() - @len bytes of @data (an id, fragment or xattr id table)
 * as metadata blocks, then @hdr_len bytes of @hdr (the xattr id table's
 * header), then the blocks' positions; *@at gets where @hdr, or the
 * positions, start.
 */
int squashfs_table(struct squashfs_sink *s, const uint8_t *data, size_t len,
		   const uint8_t *hdr, size_t hdr_len, uint64_t *at, struct err *e);

/*
 * squashfs_frag_table() - the fragment table of @n fragment blocks (each
 * at @start, with its size word), filling the superblock @sb's fragment
 * count and table position.
 */
int squashfs_frag_table(struct squashfs_sink *s, const uint64_t *start, const uint32_t *word,
			uint32_t n, uint8_t *sb, struct err *e);

/*
 * Data blocks through the pipeline: squashfs_unit_work() is the work() of
 * both writers: a unit of SQFS_UNIT_ZERO stays as it is (its out_len
 * sparse blocks); with @sparse_ok a block of zeros becomes one; else
 * u->in is compressed into u->out, or marked SQFS_UNIT_RAW when that is
 * not smaller.  Other flag bits are the writer's.
 */
#define SQFS_UNIT_ZERO 1u
#define SQFS_UNIT_RAW 2u
struct pl_unit;
int squashfs_unit_work(const struct squashfs_wopts *o, void **ctx, struct pl_unit *u,
		       int sparse_ok, struct err *e);

/*
 * squashfs_reuse_open() - img_format.reuse_open: the data and fragment
 * blocks of the squashfs at @path, indexed by the SHA-256 of their
 * content, when its recipe names the compression, level, library and
 * block size @options name (squashfs-files.c).
 */
struct block_reuse;
/*
 * squashfs_pack_blocks() - img_format.pack_blocks: the compressed data
 * blocks, fragments and metadata blocks of the squashfs at @path, for
 * mksquashfs's gzip and zstd (other codecs: none, its bytes stay as they are).
 */
int squashfs_pack_blocks(const char *path, const struct open_opts *oo,
			 int (*add)(void *arg, uint64_t off, uint64_t span, uint32_t ulen,
				    unsigned method, struct err *e),
			 void *arg, struct err *e);
int squashfs_reuse_open(const char *path, const struct open_opts *oo, const char *options,
			struct block_reuse **out, struct err *e);

/*
 * squashfs_comp_opts() - the compressor options mksquashfs writes after the
 * superblock for @c at @level (lz4 always; gzip and zstd off mksquashfs's
 * default level), as stored (a metadata header, then the options) in @out:
 * its length, 0 for none.
 */
#define SQFS_COMP_OPTS_MAX 10
size_t squashfs_comp_opts(const struct squashfs_comp *c, int level,
			  uint8_t out[SQFS_COMP_OPTS_MAX]);

/*
 * squashfs_write_recipe() - img_format.write_recipe: the recipe
 * squashfs_write() (ft_write_squashfs() when @tree) records for @parsed.
 */
struct write_parsed;
void squashfs_write_recipe(const struct write_parsed *parsed, int tree, char *buf, size_t len);

/*
 * squashfs_trailer_write() - the recipe of @o at s->pos (bytes_used), then
 * zeros to the next 4 KiB; @tree: a root filesystem's recipe (no name= nor
 * partitions=, mtime= only when given).
 */
int squashfs_trailer_write(struct squashfs_sink *s, const struct squashfs_wopts *o, int tree,
			   struct err *e);

/* The options squashfs_opts_parse() takes, for the format's table. */
extern const struct opt_desc squashfs_write_options[];

/*
 * squashfs_opts_parse() - the format's write_parse(): compression, level,
 * block_size, name, partitions, mtime and the codec library's key of @o
 * into the struct squashfs_wopts at @parsed; -c is welcome.
 */
int squashfs_opts_parse(struct opts *o, const struct write_opts *wopts,
			void *parsed, struct err *e);
int squashfs_write(struct vdisk *src, struct io *out,
		   const struct write_opts *wopts, struct err *e);

/* squashfs-parts.c: the partition table of a disk, for partitions=on. */
#define SQFS_MAX_PARTS 128

struct squashfs_part {
	unsigned index;         /* Linux numbering: GPT slot + 1; MBR 1-4, 5+ */
	uint64_t start, size;   /* bytes */
	char type[40];          /* GPT type GUID, or "0x83" */
	char uuid[40];          /* GPT partition GUID, or "-" */
	char name[112];         /* GPT name as UTF-8, or "" */
};

struct squashfs_ptable {
	const char *kind;       /* "gpt" or "mbr" */
	unsigned n;
	struct squashfs_part part[SQFS_MAX_PARTS];
};

/*
 * squashfs_parts_read() - the GPT (primary header, CRCs checked) or MBR
 * (with logical partitions) of @src; EI_EUSAGE when it has none.
 */
int squashfs_parts_read(struct vdisk *src, struct squashfs_ptable *pt,
			struct err *e);

#endif
