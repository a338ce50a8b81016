/* SPDX-License-Identifier: MIT */
/*
 * Delta patches: the encoder and decoder of the patch format described in
 * src/delta-format.md.  A patch describes the NEW virtual disk's content in
 * terms of the OLD one; it knows nothing of containers except the recipe
 * string and the SHA-256 of the container file it carries for the CLI.
 * No printing, no exit: errors are values.
 */
#ifndef EDGEIMG_DELTA_H
#define EDGEIMG_DELTA_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/err.h"
#include "core/io.h"
#include "core/kconfig.h"
#include "crypto/chash.h"
#include "crypto/sha.h"
#include "core/vdisk.h"

/* --- the format (see src/delta-format.md) ------------------------------- */

#define DELTA_MAGIC "EIDELTA\x1a"       /* 8 bytes */
#define DELTA_MAGIC_LEN 8
#define DELTA_VERSION 2                 /* 1: edgeimg 0.1 (refused) */
#define DELTA_HDR_FIXED 256             /* header bytes before the recipe */
#define DELTA_RECIPE_MAX 1024
#define DELTA_HDR_MAX (DELTA_HDR_FIXED + DELTA_RECIPE_MAX + SHA256_LEN)
#define DELTA_CHUNK_MAGIC "EICH"
#define DELTA_CHUNK_HDR 88              /* bytes of a chunk header */

/* Incompatible features: a decoder refuses a patch with a bit it lacks. */
#define DELTA_INCOMPAT_REF (1ULL << 0)     /* data frames use OLD references */
#define DELTA_INCOMPAT_RECIPE (1ULL << 1)  /* the target is a container */
#define DELTA_INCOMPAT_SIGNED (1ULL << 2)  /* a signature section follows the header */
#define DELTA_INCOMPAT_LZMA (1ULL << 3)    /* chunks may have LZMA2 data frames */
#define DELTA_INCOMPAT_KNOWN (DELTA_INCOMPAT_REF | DELTA_INCOMPAT_RECIPE | \
			      DELTA_INCOMPAT_SIGNED | DELTA_INCOMPAT_LZMA)

/* A chunk's flags: its data frame is raw LZMA2, after a BCJ filter. */
#define DELTA_CHUNK_LZMA 0x1u
#define DELTA_CHUNK_BCJ_SHIFT 4
#define DELTA_CHUNK_BCJ_MASK 0xf0u
#define DELTA_CHUNK_KNOWN (DELTA_CHUNK_LZMA | DELTA_CHUNK_BCJ_MASK)
#define DELTA_BCJ_NONE 0
#define DELTA_BCJ_X86 1
#define DELTA_BCJ_ARM64 2
#define DELTA_MAX_LZMA_DATA (8u << 20)  /* data_len of an LZMA2 data frame */

/* The LZMA2 dictionary of a data frame of @len bytes: 4 KiB at least. */
static inline uint32_t delta_lzma_dict(uint64_t len)
{
	return len < 4096 ? 4096 : (uint32_t)((len + 4095) & ~4095ULL);
}

/* The signature section of a SIGNED patch, right after the header. */
#define DELTA_SIG_MAGIC "EISG"
#define DELTA_SIG_SIZE 128              /* bytes of the section */
#define DELTA_SIG_ED25519 1             /* the one algorithm: pure Ed25519 */
#define DELTA_SIG_LEN 64                /* an Ed25519 signature */
#define DELTA_KEY_LEN 32                /* an Ed25519 public key or seed */
#define DELTA_HDR_SIG_MAX (DELTA_HDR_MAX + DELTA_SIG_SIZE)

/* Operation types, in the low 2 bits of an op's first varint. */
enum delta_op { DELTA_OP_ZERO = 0, DELTA_OP_COPY = 1, DELTA_OP_DATA = 2 };

/*
 * Limits every decoder enforces; they bound apply memory (about 51 MiB in
 * the worst case, see the spec) whatever the patch claims.
 */
#define DELTA_BLOCK 4096                   /* the encoder's matching unit */
#define DELTA_MAX_CHUNK_NEW (256ULL << 20) /* NEW bytes one chunk describes */
#define DELTA_MAX_OPS_LEN (1u << 20)       /* decompressed op stream */
#define DELTA_MAX_OPS 65536                /* operations in one chunk */
#define DELTA_MAX_REFS 65536               /* OLD ranges in one reference */
#define DELTA_MAX_REF (16u << 20)          /* bytes of one reference */
#define DELTA_MAX_DATA (16u << 20)         /* decompressed data of a chunk */
#define DELTA_MAX_WINDOW_LOG 25            /* zstd window a frame may ask */
#define DELTA_MAX_CHUNKS (1u << 24)

struct delta_header {
	uint32_t version;
	uint32_t header_size;   /* bytes, checksum included */
	uint64_t incompat, compat;
	uint64_t old_size, new_size;
	uint64_t patch_size;    /* bytes of the whole patch */
	uint32_t chunk_count;
	uint32_t block_size;    /* informational: the encoder's unit */
	uint32_t max_data, max_ref;     /* the largest data and reference of any chunk */
	uint8_t old_sha[SHA256_LEN];    /* SHA-256 of OLD's content */
	uint8_t new_sha[SHA256_LEN];    /* SHA-256 of NEW's content */
	uint64_t target_size;           /* size of the target file */
	uint8_t target_sha[SHA256_LEN]; /* SHA-256 of the target file */
	char recipe[DELTA_RECIPE_MAX + 1]; /* "" for a raw target */
	uint8_t id[SHA256_LEN];         /* the header checksum: the patch's identity */
	uint64_t patch_version;         /* for downgrade checks (apply --min-version) */
	uint8_t chunk0_sha[SHA256_LEN]; /* SHA-256 of chunk 0 (each chunk holds the next one's) */
	uint64_t chunks_off;            /* chunk 0: header_size (+ DELTA_SIG_SIZE when SIGNED) */
};

/* A signature section, decoded (the layout is in src/delta-format.md). */
struct delta_sig {
	uint32_t alg;                   /* DELTA_SIG_ED25519 */
	uint8_t key_id[SHA256_LEN];     /* SHA-256 of the signer's public key */
	uint8_t sig[DELTA_SIG_LEN];     /* over header bytes 0 .. header_size */
};

/* delta_is_patch() - 1 when @head (@len bytes) starts with the magic. */
static inline int delta_is_patch(const uint8_t *head, size_t len)
{
	return len >= DELTA_MAGIC_LEN && !memcmp(head, DELTA_MAGIC, DELTA_MAGIC_LEN);
}

/*
 * delta_header_parse() - decode and check a header from @buf.  Returns
 * the header's size when @len holds all of it (filling @h), EI_ETRUNC when
 * @len is too short (after at least DELTA_HDR_FIXED bytes, the message
 * then says how many are needed: call again with more), or an error.
 * With @no_sum set the header checksum is not checked (fuzzing only).
 */
int delta_header_parse(const uint8_t *buf, size_t len, struct delta_header *h,
		       int no_sum, struct err *e);

/*
 * delta_header_read() - read and parse the header at the start of @io (a
 * file or a stream) and, for a SIGNED patch, the form of the signature
 * section after it.  Returns h->chunks_off, the bytes read; they go to
 * @raw (DELTA_HDR_SIG_MAX bytes) when it is not NULL.
 */
int delta_header_read(struct io *io, struct delta_header *h, uint8_t *raw,
		      struct err *e);

/*
 * delta_sig_parse() - decode and check the DELTA_SIG_SIZE bytes of a
 * signature section at @buf (magic, algorithm, reserved bytes zero).  It
 * checks the form only: delta_sig_verify() checks the signature.
 */
int delta_sig_parse(const uint8_t *buf, struct delta_sig *s, struct err *e);

/* --- signing keys and signatures (CONFIG_DELTA_SIGN, src/delta/delta-sign.c) --- */

struct delta_key {
	int priv;                       /* @seed is set */
	uint8_t seed[DELTA_KEY_LEN];    /* the Ed25519 private key */
	uint8_t pub[DELTA_KEY_LEN];
	uint8_t id[SHA256_LEN];         /* SHA-256 of @pub */
};

#if IS_ENABLED(CONFIG_DELTA_SIGN)
/*
 * delta_key_load() - read the Ed25519 key in the PEM file @path: with
 * @priv, a PKCS#8 private key ("BEGIN PRIVATE KEY", as "openssl genpkey
 * -algorithm ed25519" writes it), else a SubjectPublicKeyInfo public key
 * ("BEGIN PUBLIC KEY", as "openssl pkey -pubout" writes it).  Strict:
 * one PEM block, exact base64, the exact DER of an Ed25519 key.
 */
int delta_key_load(const char *path, int priv, struct delta_key *k,
		   struct err *e);

/* delta_key_parse() - the same from @len bytes of PEM text; @name for messages. */
int delta_key_parse(const char *text, size_t len, int priv, const char *name,
		    struct delta_key *k, struct err *e);

/*
 * delta_sign_header() - a delta_enc_opts.sign callback: @arg is a private
 * struct delta_key; fills the signature section @sect over @hdr.
 */
int delta_sign_header(void *arg, const uint8_t *hdr, size_t len,
		      uint8_t sect[DELTA_SIG_SIZE], struct err *e);

/*
 * delta_sig_verify() - check a patch's signature: @raw holds the header
 * (h->header_size bytes) and its signature section after it.  In order:
 * the SIGNED bit ("not signed"), the section's form, the key id against
 * @pub's (both named), the Ed25519 signature over the header.  EI_ESIG
 * for a refusal, EI_ECORRUPT for a malformed section.
 */
int delta_sig_verify(const struct delta_header *h, const uint8_t *raw,
		     const struct delta_key *pub, struct err *e);

#else
/* Without DELTA_SIGN: keys cannot be loaded, so nothing signs or verifies. */
static inline int delta_key_load(const char *path, int priv, struct delta_key *k,
				 struct err *e)
{
	return err_set(e, EI_EUNSUP,
		       "%s: this edgeimg is built without DELTA_SIGN (signed patches)", path);
}

static inline int delta_sign_header(void *arg, const uint8_t *hdr, size_t len,
				    uint8_t sect[DELTA_SIG_SIZE], struct err *e)
{
	return err_set(e, EI_EUNSUP, "built without DELTA_SIGN");
}

static inline int delta_sig_verify(const struct delta_header *h, const uint8_t *raw,
				   const struct delta_key *pub, struct err *e)
{
	return err_set(e, EI_EUNSUP, "built without DELTA_SIGN");
}
#endif

/* --- targets: what apply builds (src/delta/delta-target.c) -------------- */

/*
 * delta_canon_open() - a view of @inner (borrowed, kept open by the caller)
 * whose extents come from its content alone: every all-zero DELTA_BLOCK
 * block (aligned to the disk) is a hole, everything else data.  Writers
 * re-encoding a container see the same extents whether NEW came from an
 * image or from a patch, so a deterministic writer gives the same bytes.
 * Not thread-safe (one 1 MiB cache).  Close with vdisk_close().
 */
int delta_canon_open(struct vdisk *inner, struct vdisk **out, struct err *e);

/*
 * delta_recipe_split() - the format name and the writer options of
 * @recipe ("format=FMT,writer=VER,k=v,..."): @fmt gets FMT, @ver VER (""
 * when absent), @opts the rest.  EI_ECORRUPT when it is malformed.
 */
int delta_recipe_split(const char *recipe, char *fmt, size_t fmt_len,
		       char *ver, size_t ver_len, char *opts, size_t opts_len,
		       struct err *e);

/*
 * delta_recipe_check() - 0 when this build's writer can follow @recipe
 * ("" for a raw target), else the writer's refusal (another codec
 * library or version, an unknown option or format), found without I/O:
 * apply calls it before it writes anything.
 */
int delta_recipe_check(const char *recipe, struct err *e);

/*
 * delta_target_build() - write the container @recipe describes from @new's
 * disk (seen through the canonical view) into @out (empty, or a block
 * device), sync it and read it back: *@size and @sha get the container's
 * size and content hash as read from the media.  @threads and @progress
 * go to the writer; @reuse (or NULL) too: blocks it copies from another
 * container (delta_target_reuse()).
 */
struct block_reuse;
int delta_target_build(struct vdisk *new, const char *recipe, struct io *out,
		       unsigned threads,
		       void (*progress)(void *arg, uint64_t done, uint64_t total),
		       void *arg, const struct block_reuse *reuse, uint64_t *size,
		       uint8_t sha[CHASH_LEN], struct err *e);

/*
 * delta_target_reuse() - the compressed blocks of the container at @path
 * (OLD, opened with @oo) that the writer of @recipe may copy instead of
 * compressing them again: *@out NULL when there are none to take (another
 * format, other compression options, a writer without the feature).
 */
struct open_opts;
int delta_target_reuse(const char *recipe, const char *path, const struct open_opts *oo,
		       struct block_reuse **out, struct err *e);

/* --- containers rebuilt exactly (src/delta/delta-pack.c) ---------------- */

struct pack_stats {
	uint64_t blocks;        /* compressed blocks the container's tables name */
	uint64_t rebuilt;       /* ... in the view decompressed (exact: they
				   reproduce, so the device compresses them) */
	uint64_t stored;        /* ... that decode but do not reproduce */
	unsigned methods;       /* bit per PACK_* method of the view's blocks */
	uint64_t container_size;
};

/*
 * pack_open() - the packed view of the container file at @path (opened
 * with @oo, its whole file): with @exact (NEW), only blocks that compress
 * again to the same bytes are decompressed and the view is read to build;
 * without (OLD), every block the tables name, read when the view is.
 * @threads workers compress NEW's blocks again; the view is the same for any.
 * @st (or NULL) gets the counts.
 */
int pack_open(const char *path, const struct open_opts *oo, int exact, unsigned threads,
	      struct vdisk **out, struct pack_stats *st, struct err *e);

/*
 * pack_has_blocks() - 1 when the file at @path is a container whose
 * tables name a compressed block its packed view knows (qcow2 with
 * compressed clusters, squashfs), 0 when not, or a negative error.
 */
int pack_has_blocks(const char *path, const struct open_opts *oo, struct err *e);

/* pack_container() - the container file of a packed view, else NULL. */
struct io *pack_container(struct vdisk *vd);

/* pack_recipe() - the target recipe of a view with @st's methods; snprintf's return. */
size_t pack_recipe(const struct pack_stats *st, char *buf, size_t len);

/* pack_recipe_check() - the recipe's options (zlib=, zstd=) against this build. */
int pack_recipe_check(const char *opts, struct err *e);

/*
 * pack_write() - the container of the packed view @src into @out, checked
 * as hostile; blocks compressed by @threads workers in units that fit
 * @mem_cap, copying OLD's stream of a block from @reuse (NULL: none) where
 * pack_reuse_open() finds it.  The same bytes for any thread count.
 */
int pack_write(struct vdisk *src, struct io *out, unsigned threads, uint64_t mem_cap,
	       const struct block_reuse *reuse, struct err *e);

/*
 * pack_reuse_open() - for pack_write(): the compressed blocks of OLD's
 * file at @path (its packed view's, decoded once and hashed; at most
 * 16 MiB of index), copied where NEW's block has the same content,
 * method and level; counts in ->copied and ->asked.
 */
int pack_reuse_open(const char *path, const struct open_opts *oo, struct block_reuse **out,
		    struct err *e);

/* --- encoder ------------------------------------------------------------ */

struct delta_enc_opts {
	int level;              /* zstd level of the data, 1..22 (0: 19) */
	unsigned threads;       /* compression workers, >= 1 */
	uint64_t mem_cap;       /* bytes of the pipeline's units (0: what fits) */
	uint64_t chunk_new;     /* NEW bytes per chunk at most (0: 1/16 of NEW,
				   rounded to 64 KiB, in 64 KiB..64 MiB) */
	const char *recipe;     /* the target container's recipe, NULL: raw */
	const uint8_t *target_sha;      /* with a recipe: the container's SHA-256 */
	uint64_t target_size;
	uint64_t patch_version;         /* recorded in the header */
	int lzma;               /* try LZMA2 data frames (built with xz) */
	/*
	 * Sign the patch: NULL for an unsigned one; else the patch is SIGNED
	 * and @sign fills its signature section from the finished header
	 * (delta_sign_header() with a struct delta_key as @sign_arg).
	 */
	int (*sign)(void *arg, const uint8_t *hdr, size_t len,
		    uint8_t sect[DELTA_SIG_SIZE], struct err *e);
	void *sign_arg;
	void (*progress)(void *arg, uint64_t done, uint64_t total);
	void *progress_arg;
	/*
	 * Optional second handles of the same OLD and NEW, opened apart: with
	 * threads > 1 their SHA-256 is computed in two more threads.
	 */
	struct vdisk *hash_old, *hash_new;
};

struct delta_enc_stats {
	uint64_t zero, copy, data;      /* NEW bytes by operation */
	uint64_t ref;                   /* OLD bytes used as references */
	uint64_t chunks, patch_size;
	uint8_t old_sha[SHA256_LEN], new_sha[SHA256_LEN];   /* content hashes */
	unsigned threads;               /* compression workers used */
	uint64_t mem_estimate;          /* bytes of the index, units and contexts */
	uint64_t lzma_chunks, lzma_saved;       /* chunks with LZMA2 data, bytes saved */
};

/*
 * delta_encode() - write to @out (an empty, seekable file) the patch that
 * turns @old into @new.  Memory: an index of OLD (about 20 MiB per GiB of
 * OLD data, capped at 192 MiB) plus the pipeline (mem_cap).  Output is the
 * same bytes for any thread count.  @st may be NULL.
 */
int delta_encode(struct vdisk *old, struct vdisk *new, struct io *out,
		 const struct delta_enc_opts *o, struct delta_enc_stats *st,
		 struct err *e);

/* --- decoder (src/delta/delta-dec.c) ------------------------------------ */

/*
 * Where the NEW disk goes: @write receives NEW in order, each byte once;
 * @buf NULL means @len zero bytes.
 */
struct delta_sink {
	int (*write)(void *arg, const void *buf, size_t len, uint64_t off,
		     struct err *e);
	void *arg;
};

/* A position between chunks: what a checkpoint records. */
struct delta_pos {
	uint32_t chunk;         /* the next chunk to decode */
	uint64_t patch_off;     /* its offset in the patch */
	uint64_t new_done;      /* NEW bytes produced before it */
	uint8_t next_sha[SHA256_LEN];   /* its SHA-256, as the previous chunk
					   (or the header) commits to */
};

#define DELTA_DEC_NO_SUMS 1u    /* ignore chunk CRCs and hashes (fuzzing only) */

struct delta_dec;

/*
 * delta_dec_new() - a decoder of the patch whose header is @h, reading OLD
 * from @old, whose size must be h->old_size (its content hash is the
 * caller's to check first).  Chunks come either from @patch (the patch
 * from byte @base on: 0 for a whole patch, a checkpoint's patch offset for
 * a resumed stream), read by delta_dec_next(), or, with @patch NULL, from
 * the caller through delta_dec_chunk_size() and delta_dec_chunk().  Starts
 * at @pos, or at the first chunk when NULL.  Borrows all of them.
 */
int delta_dec_new(const struct delta_header *h, struct vdisk *old,
		  struct io *patch, uint64_t base, const struct delta_pos *pos,
		  unsigned flags, struct delta_dec **out, struct err *e);

/*
 * delta_dec_chunk_size() - check the DELTA_CHUNK_HDR bytes at @hdr as the
 * header of the next chunk (magic, index, offsets, every length and
 * count against the limits) and give in *@size the bytes of the whole
 * chunk, header included.
 */
int delta_dec_chunk_size(const struct delta_dec *d, const uint8_t *hdr,
			 size_t *size, struct err *e);

/*
 * delta_dec_chunk() - decode the next chunk, whole at @chunk (@len bytes,
 * as delta_dec_chunk_size() said), into @s.  Before its first byte is
 * passed on the chunk is proven to be the patch's own (its SHA-256 is the
 * one the header or the previous chunk commits to), its CRC checked and
 * every operation checked.  1 on success; EI_EMISMATCH when the chunk is
 * not the patch's own, EI_ECORRUPT/EI_ECODEC when it is invalid.
 */
int delta_dec_chunk(struct delta_dec *d, const uint8_t *chunk, size_t len,
		    const struct delta_sink *s, struct err *e);

/*
 * delta_dec_done() - 1 while chunks are left, 0 once the last one is
 * decoded and the chunks account for NEW's size and the patch's.
 */
int delta_dec_done(const struct delta_dec *d, struct err *e);

/*
 * delta_dec_next() - with a @patch io: read and decode the next chunk into
 * @s.  Returns 1 after a chunk, 0 at the end once the chunk count, the
 * patch size and the absence of trailing bytes are checked, or an error:
 * EI_ETRUNC when the patch ends early (the caller may resume later), or
 * delta_dec_chunk()'s.  NEW's content hash is the caller's to check, on
 * what it wrote.
 */
int delta_dec_next(struct delta_dec *d, const struct delta_sink *s,
		   struct err *e);

/* delta_dec_pos() - the position after the last decoded chunk. */
void delta_dec_pos(const struct delta_dec *d, struct delta_pos *pos);

void delta_dec_free(struct delta_dec *d);

/* --- the apply transaction (src/delta/delta-apply.c) --------------------- */

struct delta_apply_opts {
	const char *old_path;           /* OLD: a file or a block device */
	struct open_opts old_open;      /* how to open it (-f, --allow-refs, ...) */
	const char *patch_name;         /* PATCH for messages ("<stdin>" for -) */
	const char *patch_path;         /* PATCH's path when it is a file, else NULL */
	const char *out_path;           /* OUT: a file (renamed into place) or a
					   block device (written in place) */
	const char *state;              /* PREFIX of the state files, NULL: default */
	int resume;                     /* continue from a checkpoint */
	int force;                      /* replace an existing regular OUT */
	const struct delta_key *verify; /* require a patch signed by this key */
	uint64_t min_version;           /* refuse a lower patch_version */
	unsigned threads;               /* a container writer's workers */
	void (*progress)(void *arg, uint64_t done, uint64_t total);
	void *progress_arg;
	/* things worth saying that are not errors (may be NULL) */
	void (*note)(void *arg, const char *msg);
	void *note_arg;
};

struct delta_apply_result {
	uint64_t new_size;              /* NEW's disk */
	uint64_t target_size;           /* what OUT holds: NEW or its container */
	uint64_t written;               /* bytes written to OUT or its partial file */
	uint64_t old_used;              /* bytes of OLD the patch uses */
	uint32_t from_chunk, chunks;    /* chunks applied by this run, of all */
	uint8_t new_sha[CHASH_LEN];     /* NEW's content hash, read back */
	uint8_t target_sha[CHASH_LEN];  /* OUT's, read back */
	char target[DELTA_RECIPE_MAX + 1];      /* the recipe, "" for raw */
	int old_is_new;                 /* OLD already held NEW */
	int out_is_device;
	/* a container: its compressed blocks copied from OLD's, of those built */
	uint64_t blocks_copied, blocks;
};

struct delta_apply;

/*
 * delta_apply_begin() - start applying a patch to o->old_path into
 * o->out_path: check the command line's paths (OUT is neither OLD nor the
 * patch, nor an existing patch; a regular OUT exists only with @force),
 * take the lock (one apply per state PREFIX; a block device OUT opened
 * exclusively and locked itself) and, with @resume, load the checkpoint.
 * Nothing is read from the patch and nothing is written.  On success
 * *@out is the caller's to delta_apply_free().
 */
int delta_apply_begin(const struct delta_apply_opts *o, struct delta_apply **out,
		      struct err *e);

/*
 * delta_apply_feed() - the next @len bytes of the patch stream: the whole
 * patch from its first byte, or with a checkpoint the patch from the byte
 * it needs (delta_apply_resume_offset()).  Once the header is in, the
 * signature, the version, the recipe and OLD's content hash are checked,
 * before anything is written; then every chunk is proven, checked, written
 * and checkpointed.  Bytes are buffered up to one chunk.  After an error
 * the transaction is over: call delta_apply_free().
 */
int delta_apply_feed(struct delta_apply *a, const void *buf, size_t len,
		     struct err *e);

/*
 * delta_apply_patch_size() - the patch is a file of @size bytes: a header
 * that says otherwise is refused before anything is written.
 */
void delta_apply_patch_size(struct delta_apply *a, uint64_t size);

/* delta_apply_needs_patch() - 0 when a checkpoint left nothing to decode. */
int delta_apply_needs_patch(const struct delta_apply *a);

/*
 * delta_apply_finish() - the patch has ended: check that every chunk came,
 * sync, read NEW back from the media and check its content hash, build a
 * container target (read back and checked too), then commit OUT (rename
 * a file into place) and remove the state.  Only then is it success.
 */
int delta_apply_finish(struct delta_apply *a, struct delta_apply_result *res,
		       struct err *e);

/*
 * delta_apply_free() - end the transaction.  After a failure the state is
 * kept when it is worth resuming (a cut stream, an I/O error, a bad chunk:
 * every chunk before it was proven) and removed when not (a refused patch
 * or source, a result that did not verify); *@kept says which (may be
 * NULL).  Releases the locks.
 */
void delta_apply_free(struct delta_apply *a, int *kept);

/*
 * delta_apply_state_paths() - where the checkpoint and the partial NEW of
 * an apply to @out with @state (NULL: default) live, for messages.
 */
void delta_apply_state_paths(const char *out, const char *state, char *ckpt,
			     size_t ckpt_len, char *part, size_t part_len);

/*
 * delta_apply_resume_offset() - the patch byte a resumed apply to @out
 * needs the patch from: 0 without a checkpoint.
 */
int delta_apply_resume_offset(const char *out, const char *state, uint64_t *off,
			      struct err *e);

/*
 * delta_apply_pull() - after delta_apply_begin(): the rest of the
 * transaction, with the patch pulled through @read (up to @len bytes into
 * @buf, *@got = 0 at the end of the patch), then delta_apply_finish().
 */
int delta_apply_pull(struct delta_apply *a,
		     int (*read)(void *arg, void *buf, size_t len, size_t *got,
				 struct err *e),
		     void *arg, struct delta_apply_result *res, struct err *e);

#endif
