/* SPDX-License-Identifier: MIT */
/*
 * libedgeimg: the public API of edgeimg, the one header a program that
 * links libedgeimg.a includes (an update agent, a SWUpdate handler, a CI
 * tool; the edgeimg command line is one such program).
 *
 * Conventions: functions return 0 (or a documented positive value) on
 * success and a negative code on failure, with a message in the caller's
 * struct ei_err that names the file, the format, the field and the value.
 * Nothing prints, nothing exits, there is no global state: two threads may
 * use two images or two transactions at once.  Objects returned through an
 * out-parameter belong to the caller, who frees them with the matching
 * *_close() or *_free().  Sizes and offsets are bytes.
 */
#ifndef EDGEIMG_H
#define EDGEIMG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* --- errors -------------------------------------------------------------- */

/*
 * Error codes beyond errno, one list; a negative -errno is returned for
 * system errors (-ENOENT, -ENOSPC, -EIO, ...).
 */
#define EI_ERRORS(X)                                                       \
	X(EI_EFORMAT, 1001, "not an image of this format")                  \
	X(EI_ECORRUPT, 1002, "corrupt image")                               \
	X(EI_EUNSUP, 1003, "unsupported feature")                           \
	X(EI_ELIMIT, 1004, "a configured limit is exceeded")               \
	X(EI_EMULTI, 1005, "input matches more than one format")           \
	X(EI_EREF, 1006, "reference to another file refused")              \
	X(EI_EMISMATCH, 1007, "checksum mismatch")                          \
	X(EI_EUSAGE, 1008, "bad usage")                                     \
	X(EI_ETRUNC, 1009, "file is truncated")                             \
	X(EI_ECODEC, 1010, "compressed data is invalid")                    \
	X(EI_ESIG, 1011, "signature or version refused")

enum ei_error {
#define EI_ERR_ENUM(name, num, text) name = -(num),
	EI_ERRORS(EI_ERR_ENUM)
#undef EI_ERR_ENUM
};

#define EI_ERR_MSG_MAX 512

struct ei_err {
	int code;                       /* 0, -errno or an enum ei_error value */
	char msg[EI_ERR_MSG_MAX];       /* "disk.vdi: vdi: block size 1048577 is not 1048576" */
};

/* ei_strerror() - a short static text for any code. */
const char *ei_strerror(int code);

/* ei_size_str() - @v as qemu-img prints sizes ("1 GiB", "1.5 MiB") in @buf. */
const char *ei_size_str(uint64_t v, char *buf, size_t len);

/* ei_parse_size() - "4096", "64k", "1M", "2G", "3T" -> bytes; -EINVAL if not. */
int ei_parse_size(const char *s, uint64_t *v);

/* ei_hex() - @len bytes as lower-case hex in @out (2 * @len + 1 bytes). */
char *ei_hex(const uint8_t *p, size_t len, char *out);

/*
 * ei_json_string() - write @s to @f as a JSON string: escaped, invalid
 * UTF-8 as U+FFFD, so that what a program prints is always valid JSON.
 */
void ei_json_string(FILE *f, const char *s);

/* ei_version() - "0.2.0"; ei_features() - the enabled Kconfig features. */
const char *ei_version(void);
const char *ei_features(void);

/* ei_has_feature() - 1 when the build has Kconfig feature @name ("DELTA"). */
int ei_has_feature(const char *name);

/* A progress callback: @done of @total units (bytes) so far. */
struct ei_progress {
	void (*fn)(void *arg, uint64_t done, uint64_t total);
	void *arg;
};

/* --- formats ------------------------------------------------------------- */

struct ei_format_info {
	const char *name;               /* as -f and -O take it: "qcow2" */
	const char *alias;              /* another name -f takes, or NULL */
	const char *desc;
	int can_read, can_write;
	int can_stream;                 /* the writer can write to a pipe */
};

/* ei_format() - the @i-th format of the build (from 0): 0, or -1 past the end. */
int ei_format(unsigned i, struct ei_format_info *fi);

/*
 * ei_format_check() - 0 when @name is a format this build reads (or, with
 * @for_write, writes), else EI_EUSAGE with a message that lists the valid
 * names and suggests the nearest.
 */
int ei_format_check(const char *name, int for_write, struct ei_err *e);

/*
 * ei_writer_options() - the help text of every writer's -o options and
 * their defaults, NUL-terminated and malloc'd (the caller frees it), or
 * NULL when out of memory.
 */
char *ei_writer_options(void);

/* --- images -------------------------------------------------------------- */

struct ei_open_opts {
	const char *format;     /* read as this format (-f); NULL probes.  A block
				   device is read as raw unless it says otherwise */
	int allow_refs;         /* follow backing files, parents, extents in other
				   files: plain names in the image's directory only */
	const char *ova_disk;   /* an OVA's disk: "N" (from 1) or its file name */
	uint64_t size;          /* read only the first SIZE bytes of the disk (an
				   image in a bigger slot); 0: all of it */
	const char *partition;  /* the disk is this partition of the image (GPT
				   or MBR): a number from 1, a GPT partition
				   name or a filesystem label; NULL: the whole
				   disk.  None or several matching: EI_EUSAGE
				   listing the partitions */
	int files_view;         /* a squashfs root filesystem is read as its
				   file-tree view (delta: two root filesystems,
				   src/delta/delta-format.md) */
};

struct ei_image;

/* ei_image_open() - open @path ("-" is not allowed: images are read at random). */
int ei_image_open(const char *path, const struct ei_open_opts *o,
		  struct ei_image **out, struct ei_err *e);
void ei_image_close(struct ei_image *im);

uint64_t ei_image_size(const struct ei_image *im);
const char *ei_image_format(const struct ei_image *im);

/* ei_image_read() - @len bytes of the disk at @off, which must lie inside. */
int ei_image_read(struct ei_image *im, void *buf, size_t len, uint64_t off,
		  struct ei_err *e);

enum ei_extent_type {
	EI_EXTENT_DATA,         /* stored data (it may still be zero) */
	EI_EXTENT_ZERO,         /* allocated, reads as zero */
	EI_EXTENT_HOLE,         /* unallocated, reads as zero */
};

struct ei_extent {
	uint64_t len;
	enum ei_extent_type type;
};

/*
 * ei_image_extent() - the run of one type starting at @off: at least one
 * byte, at most @len (which must be > 0 and inside the disk).
 */
int ei_image_extent(struct ei_image *im, uint64_t off, uint64_t len,
		    struct ei_extent *x, struct ei_err *e);

/*
 * ei_image_describe() - what "edgeimg info" prints about the image: text,
 * or JSON with qemu-img's keys where the meaning is the same.  *@text is
 * malloc'd, NUL-terminated, the caller's to free.
 */
int ei_image_describe(struct ei_image *im, int json, char **text,
		      struct ei_err *e);

/* --- convert ------------------------------------------------------------- */

enum ei_out_kind {
	EI_OUT_FILE,            /* a regular file, put in place when complete */
	EI_OUT_BLOCKDEV,        /* a block device, written in place */
	EI_OUT_STDOUT,          /* "-": standard output */
};

struct ei_convert_opts {
	const char *format;     /* the output format (-O), required */
	const char *options;    /* its -o options, "key=value,...", or NULL */
	int compress;           /* -c */
	unsigned threads;       /* workers; 0: one per core */
	int force;              /* an existing regular OUT may be replaced */
	/*
	 * Or NULL: also write a block map of OUT's disk to this file, in
	 * bmaptool's format 2.0 (raw and compressed raw outputs only), made
	 * in the same pass; it appears after OUT, like OUT.
	 */
	const char *bmap;
	/*
	 * Or NULL: an earlier build, a container of o->format that edgeimg
	 * wrote with the same options (squashfs; qcow2 with -c).  Where a
	 * block of OUT holds content one of its blocks holds, its compressed
	 * bytes are copied instead of compressing the block again: the bytes
	 * of a full build, in less time.  It need not be such a container
	 * (res->reuse_taken says whether it was).
	 */
	const char *reuse;
	struct ei_progress progress;
	/* ei_convert_files(): warnings ("PATH: POSIX ACL not kept"), or NULL */
	void (*warn)(void *arg, const char *msg);
	void *warn_arg;
};

struct ei_convert_result {
	uint64_t in_size;       /* the virtual disk */
	uint64_t out_size;      /* bytes of OUT (a device: bytes written) */
	uint64_t out_alloc;     /* bytes OUT occupies (a file: its blocks) */
	enum ei_out_kind out_kind;
	int writer_differs;     /* -o named another edgeimg version (writer=) */
	uint64_t bmap_mapped;   /* with bmap: the 4 KiB blocks it maps */
	int reuse_taken;        /* with reuse: its recipe compresses as OUT does */
	int reuse_refused;      /* ... but a block of it compressed again did
				   not give its bytes: no more were copied */
	uint64_t reuse_copied;  /* ... and this many of OUT's blocks were */
	uint64_t reuse_blocks;  /*     copied from it, of this many compressed */
};

/*
 * ei_convert_check() - the checks ei_convert() makes of @o before anything
 * is opened: the format writes, its options and -c are valid (EI_EUSAGE
 * with what is valid when not).  For a caller that opens IN after it.
 */
int ei_convert_check(const struct ei_convert_opts *o, struct ei_err *e);

/*
 * ei_convert() - write @in's disk to @out as o->format.  @out is "-"
 * (standard output, for a format written front to back), a block device
 * (in place, not while mounted), or a regular file that appears only when
 * complete (written under a temporary, synced, renamed, its directory
 * synced).  Links, FIFOs, sockets, character devices and directories are
 * refused.  Options are checked before OUT exists.
 */
int ei_convert(struct ei_image *in, const char *out,
	       const struct ei_convert_opts *o, struct ei_convert_result *res,
	       struct ei_err *e);

/* --- file trees (--files) ------------------------------------------------ */

/*
 * ei_files_supported() - 0 when this build reads file trees (FILES), else
 * EI_EUNSUP saying so.
 */
int ei_files_supported(struct ei_err *e);

/*
 * ei_convert_files() - write the file tree of @in to @out as o->format:
 * "squashfs" (a root filesystem; the squashfs writer's -o options but
 * name= and partitions=) or "tar" (POSIX pax).  @in is a directory, a
 * tarball (.tar, .tar.gz, .tar.xz, .tar.zst), a squashfs root filesystem,
 * or a disk image holding one ext2/3/4 or squashfs filesystem (@oo's
 * partition picks one; without it, the only partition holding one).
 * res->in_size is 0 (a tree has no virtual size).  @out as ei_convert().
 */
int ei_convert_files(const char *in, const struct ei_open_opts *oo, const char *out,
		     const struct ei_convert_opts *o, struct ei_convert_result *res,
		     struct ei_err *e);

/*
 * ei_files_list() - the tree of @in (as ei_convert_files() takes it) as
 * text, one call of @line per line: "TYPE MODE UID GID MTIME SIZE SHA256
 * PATH[ -> TARGET][ => FIRST]" then "  xattr NAME=HEX" lines (see "help
 * info").  A negative return of @line stops the listing with it.
 */
int ei_files_list(const char *in, const struct ei_open_opts *oo,
		  int (*line)(void *arg, const char *text, struct ei_err *e), void *arg,
		  void (*warn)(void *arg, const char *msg), void *warn_arg,
		  struct ei_err *e);

/* --- compare and check ---------------------------------------------------- */

/*
 * ei_compare() - 0 when @a and @b hold the same disk, 1 when not (*@diff:
 * the first differing offset), or an error.  Without @strict, the part of
 * the larger disk past the smaller one must read as zero; with it, any
 * size difference is a mismatch (*@diff is then the smaller size).
 */
int ei_compare(struct ei_image *a, struct ei_image *b, int strict,
	       const struct ei_progress *p, uint64_t *diff, struct ei_err *e);

struct ei_check_result {
	uint64_t corruptions, leaks, check_errors;
	uint64_t image_end_offset, total_clusters, allocated_clusters;
	uint64_t fragmented_clusters, compressed_clusters;
	const char *format;     /* the format checked */
};

/*
 * ei_check() - verify an image's metadata as "qemu-img check" does,
 * @report called once per problem (may be NULL).  0 when checked (@res
 * says what was found), EI_CHECK_NONE when the format has no check (@e
 * says so), or an error.
 */
#define EI_CHECK_NONE 1
int ei_check(const char *path, const char *format,
	     void (*report)(void *arg, const char *line), void *arg,
	     struct ei_check_result *res, struct ei_err *e);

/* --- delta patches ------------------------------------------------------- */

#define EI_HASH_LEN 32          /* a content hash (src/delta/delta-format.md) */

struct ei_delta_opts {
	int level;              /* zstd level of the data, 1..22; 0: 19 */
	unsigned threads;       /* 0: one per core (fewer if memory says so) */
	uint64_t chunk;         /* NEW bytes per chunk at most; 0: 1/16 of NEW */
	const char *target_format;      /* the container apply builds (-O); NULL:
					   NEW's own recipe, else raw */
	const char *target_options;     /* its -o options */
	const char *sign_key;   /* PEM file of an Ed25519 private key, or NULL */
	uint64_t patch_version; /* recorded in the (signed) header */
	int force;              /* an existing patch may be replaced */
	struct ei_progress progress;
	int no_lzma;            /* zstd data frames only: for devices whose
				   edgeimg predates LZMA2 data frames */
	int exact;              /* the target is NEW's file byte for byte, a
				   container another tool made (qemu-img -c):
				   OLD and NEW are read as their packed views */
};

struct ei_delta_result {
	uint64_t patch_size, chunks;
	uint64_t zero, copy, data;      /* NEW bytes by operation */
	uint64_t ref;                   /* OLD bytes used as references */
	unsigned threads;               /* workers used */
	char target[1100];              /* the recipe, "" for raw */
	int target_differs;     /* NEW is not what this edgeimg writes from its
				   disk with its recipe: apply makes the re-encoded
				   container */
	uint8_t old_hash[EI_HASH_LEN], new_hash[EI_HASH_LEN];
	uint64_t lzma_chunks;   /* chunks whose data is LZMA2 (BCJ-filtered code) */
	uint64_t lzma_saved;    /* patch bytes that saved against zstd */
	int lzma_tried;         /* 0: --no-lzma, or a build without xz */
	/* exact: NEW's compressed blocks, those the device compresses again
	   (they reproduce), those shipped as they are */
	uint64_t exact_blocks, exact_rebuilt, exact_stored;
	int exact_recipe;       /* exact: NEW is edgeimg's own container, which
				   its recipe rebuilds byte for byte (the
				   fast path: no packed views) */
	int exact_views;        /* the target is NEW's own file through the
				   packed views: --exact, or NEW a compressed
				   container no edgeimg wrote, with no -O */
};

/*
 * ei_delta() - write to @patch ("-": standard output) the patch that turns
 * @old's disk into @new's.  Memory stays under 512 MiB.
 */
int ei_delta(struct ei_image *old, struct ei_image *new, const char *patch,
	     const struct ei_delta_opts *o, struct ei_delta_result *res,
	     struct ei_err *e);

/*
 * ei_patch_describe() - a patch's header as text or JSON (*@text malloc'd,
 * the caller frees it); EI_EFORMAT when @path is not a patch.
 */
int ei_patch_describe(const char *path, int json, char **text, struct ei_err *e);

/*
 * ei_key_describe() - an Ed25519 key in a PEM file as openssl writes it:
 * its kind and key id (the SHA-256 of the public key, as a signed patch
 * names its signer), text or JSON, malloc'd.  EI_EFORMAT when @path is
 * not such a key.
 */
int ei_key_describe(const char *path, int json, char **text, struct ei_err *e);

/* --- applying a patch: a resumable transaction ---------------------------- */

struct ei_apply_opts {
	const char *old;                /* OLD: a file or a block device */
	struct ei_open_opts old_open;   /* a block device bigger than the
					   patch's OLD is read for its first
					   bytes, as the patch says */
	const char *out;                /* OUT: a regular file (put in place when
					   verified) or a block device */
	const char *state;              /* PREFIX of the state files; NULL: OUT,
					   or ./NAME for a device /dev/NAME */
	const char *patch_name;         /* the patch, for messages */
	int resume;                     /* continue from a checkpoint; without
					   it a checkpoint is discarded */
	int force;                      /* replace an existing regular OUT */
	const char *verify_key;         /* PEM file of the trusted Ed25519 public
					   key: only patches it signed apply */
	uint64_t min_version;           /* refuse a lower patch version */
	unsigned threads;               /* a container writer's workers */
	struct ei_progress progress;
	void (*note)(void *arg, const char *msg);       /* may be NULL */
	void *note_arg;
};

struct ei_apply_result {
	uint64_t new_size, target_size, written, old_used;
	uint32_t from_chunk, chunks;    /* the chunks this run applied: from .. chunks */
	uint8_t new_hash[EI_HASH_LEN];  /* read back from the media */
	uint8_t target_hash[EI_HASH_LEN];
	char target[1100];              /* the recipe, "" for raw */
	int old_is_new;                 /* OLD already held NEW */
	int out_is_device;
	int state_kept;                 /* after a failure: the checkpoint is
					   kept, run again with resume */
	/* a container target: blocks copied from OLD's container (compressed
	   as the recipe compresses them), of the blocks built */
	uint64_t blocks_copied, blocks;
};

struct ei_apply;

/*
 * ei_apply_begin() - check the paths, take the locks and, with o->resume,
 * load the checkpoint.  Nothing is read from the patch or written.
 */
int ei_apply_begin(const struct ei_apply_opts *o, struct ei_apply **out,
		   struct ei_err *e);

/*
 * ei_apply_feed() - the next @len bytes of the patch, from its first byte
 * or, resuming, from the byte ei_apply_resume_offset() gives.  OLD is
 * checked once the header is in, before anything is written; each chunk
 * is proven to belong to the (signed) patch before its first byte is
 * written.  Memory: at most one chunk is buffered (<= 17.3 MiB).
 */
int ei_apply_feed(struct ei_apply *a, const void *buf, size_t len,
		  struct ei_err *e);

/*
 * ei_apply_finish() - the patch has ended: check every chunk came, read
 * NEW back from the media and check it, build a container target, commit
 * OUT.  0 only when OUT is in place and verified.
 */
int ei_apply_finish(struct ei_apply *a, struct ei_apply_result *res,
		    struct ei_err *e);

/*
 * ei_apply_free() - end the transaction: after a failure the state is kept
 * when resuming makes sense (returns 1) and removed when not (returns 0).
 */
int ei_apply_free(struct ei_apply *a);

/*
 * ei_apply() - the whole transaction in one call, the patch read from
 * @patch (a file, or "-" for standard input) or, when @patch is NULL,
 * through @read (up to @len bytes; *@got = 0 at the end).
 */
int ei_apply(const struct ei_apply_opts *o, const char *patch,
	     int (*read)(void *arg, void *buf, size_t len, size_t *got,
			 struct ei_err *e),
	     void *read_arg, struct ei_apply_result *res, struct ei_err *e);

/* ei_apply_resume_offset() - the patch byte a resumed apply needs first (0: none). */
int ei_apply_resume_offset(const char *out, const char *state, uint64_t *off,
			   struct ei_err *e);

/* ei_apply_state_paths() - the checkpoint's and the partial NEW's paths. */
void ei_apply_state_paths(const char *out, const char *state, char *ckpt,
			  size_t ckpt_len, char *part, size_t part_len);

#ifdef __cplusplus
}
#endif

#endif
