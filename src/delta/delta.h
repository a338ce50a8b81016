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

#include "core/err.h"
#include "core/io.h"
#include "core/kconfig.h"
#include "crypto/sha.h"
#include "core/vdisk.h"

/* --- the format (see src/delta-format.md) ------------------------------- */

#define DELTA_MAGIC "EIDELTA\x1a"       /* 8 bytes */
#define DELTA_MAGIC_LEN 8
#define DELTA_VERSION 1
#define DELTA_HDR_FIXED 256             /* header bytes before the recipe */
#define DELTA_RECIPE_MAX 1024
#define DELTA_HDR_MAX (DELTA_HDR_FIXED + DELTA_RECIPE_MAX + SHA256_LEN)
#define DELTA_CHUNK_MAGIC "EICH"
#define DELTA_CHUNK_HDR 56              /* bytes of a chunk header */

/* Incompatible features: a decoder refuses a patch with a bit it lacks. */
#define DELTA_INCOMPAT_REF (1ULL << 0)     /* data frames use OLD references */
#define DELTA_INCOMPAT_RECIPE (1ULL << 1)  /* the target is a container */
#define DELTA_INCOMPAT_SIGNED (1ULL << 2)  /* a signature section follows the header */
#define DELTA_INCOMPAT_KNOWN (DELTA_INCOMPAT_REF | DELTA_INCOMPAT_RECIPE | \
			      DELTA_INCOMPAT_SIGNED)

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
 * Limits every decoder enforces; they bound apply memory (about 36 MiB in
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
	uint64_t chunks_off;            /* chunk 0: header_size (+ DELTA_SIG_SIZE when SIGNED) */
};

/* A signature section, decoded (the layout is in src/delta-format.md). */
struct delta_sig {
	uint32_t alg;                   /* DELTA_SIG_ED25519 */
	uint8_t key_id[SHA256_LEN];     /* SHA-256 of the signer's public key */
	uint8_t sig[DELTA_SIG_LEN];     /* over header bytes 0 .. header_size */
};

/* delta_is_patch() - 1 when @head (at least 8 bytes) starts with the magic. */
int delta_is_patch(const uint8_t *head, size_t len);

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

/* --- helpers shared by the verbs ---------------------------------------- */


/*
 * delta_hash_disk() - SHA-256 of @vd's whole content (holes read as
 * zero), with @progress called as it goes (may be NULL).
 */
int delta_hash_disk(struct vdisk *vd, uint8_t out[SHA256_LEN],
		    void (*progress)(void *arg, uint64_t done, uint64_t total),
		    void *arg, struct err *e);

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

/* --- encoder ------------------------------------------------------------ */

struct delta_enc_opts {
	int level;              /* zstd level of the data, 1..22 (0: 19) */
	unsigned threads;       /* compression workers, >= 1 */
	uint64_t mem_cap;       /* bytes of the pipeline's units (0: 128 MiB) */
	uint64_t chunk_new;     /* NEW bytes per chunk at most (0: 64 MiB) */
	const char *recipe;     /* the target container's recipe, NULL: raw */
	const uint8_t *target_sha;      /* with a recipe: the container's SHA-256 */
	uint64_t target_size;
	uint64_t patch_version;         /* recorded in the header */
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
	uint8_t old_sha[SHA256_LEN], new_sha[SHA256_LEN];
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

/* --- decoder ------------------------------------------------------------ */

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
	struct sha256 sha;      /* SHA-256 state over those bytes */
};

#define DELTA_DEC_NO_SUMS 1u    /* ignore chunk CRCs (fuzzing only) */

struct delta_dec;

/*
 * delta_dec_new() - a decoder of the patch whose header is @h, reading
 * chunks from @patch (the patch from byte @base on: 0 for a whole patch, a
 * checkpoint's patch offset for a resumed stream) and OLD from @old, whose
 * size must be h->old_size (its content hash is the caller's to check
 * first).  Starts at @pos, or at the first chunk when NULL.  Borrows all
 * of them.
 */
int delta_dec_new(const struct delta_header *h, struct vdisk *old,
		  struct io *patch, uint64_t base, const struct delta_pos *pos,
		  unsigned flags, struct delta_dec **out, struct err *e);

/*
 * delta_dec_next() - decode the next chunk into @s: the whole chunk is
 * read and checked before its first byte is passed on.  Returns 1 after a
 * chunk, 0 at the end once everything is verified (chunk count, patch
 * size, no trailing bytes, NEW's SHA-256), or an error: EI_ETRUNC when the
 * patch ends early (the caller may resume later), EI_ECORRUPT/EI_ECODEC
 * for an invalid patch, EI_EMISMATCH when NEW's hash differs.
 */
int delta_dec_next(struct delta_dec *d, const struct delta_sink *s,
		   struct err *e);

/* delta_dec_pos() - the position after the last decoded chunk. */
void delta_dec_pos(const struct delta_dec *d, struct delta_pos *pos);

void delta_dec_free(struct delta_dec *d);

#endif
