/* SPDX-License-Identifier: MIT */
/*
 * The content hash of a disk or a file (src/delta/delta-format.md, "Content
 * hash"): SHA-256 over the SHA-256 of every 1 MiB leaf, then the length.
 * All-zero leaves cost nothing (their hash is a constant) and leaves can be
 * hashed apart, so a 2 TiB sparse disk hashes in the time of its data.
 */
#ifndef EDGEIMG_CHASH_H
#define EDGEIMG_CHASH_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "crypto/sha.h"

#define CHASH_LEAF (1u << 20)
#define CHASH_LEN SHA256_LEN

struct chash {
	struct sha256 root;     /* over the leaf hashes */
	struct sha256 leaf;     /* the leaf being filled, when len % CHASH_LEAF */
	uint64_t len;           /* bytes hashed so far */
};

/* The SHA-256 of CHASH_LEAF zero bytes. */
extern const uint8_t chash_zero_leaf[CHASH_LEN];

void chash_init(struct chash *c);

/* chash_update() - hash @len more bytes; whole zero leaves are recognised. */
void chash_update(struct chash *c, const void *data, size_t len);

/* chash_zeros() - hash @n more zero bytes, whole leaves in constant time. */
void chash_zeros(struct chash *c, uint64_t n);

/*
 * chash_add_leaf() - add a leaf of @leaf_len bytes whose SHA-256 was
 * computed elsewhere (another thread); only at a leaf boundary, and only
 * the last leaf may be shorter than CHASH_LEAF.
 */
void chash_add_leaf(struct chash *c, const uint8_t hash[CHASH_LEN],
		    size_t leaf_len);

/* chash_final() - the content hash of everything hashed. */
void chash_final(struct chash *c, uint8_t out[CHASH_LEN]);

/* chash() - the content hash of @len bytes at @data, in one call. */
void chash(const void *data, size_t len, uint8_t out[CHASH_LEN]);

struct io;
struct vdisk;

/*
 * chash_io() - the content hash of the first @len bytes of @io, read back
 * from the media: with @drop_cache the io's cached pages are written and
 * dropped first where the kernel allows, so that what is hashed is what
 * the device holds.  Holes of a sparse file are zero leaves, not read.
 */
int chash_io(struct io *io, uint64_t len, int drop_cache,
	     uint8_t out[CHASH_LEN], struct err *e);

/*
 * chash_vdisk() - the content hash of @vd's whole disk (zero and
 * unallocated extents not read), calling @progress as it goes (may be
 * NULL).
 */
int chash_vdisk(struct vdisk *vd, uint8_t out[CHASH_LEN],
		void (*progress)(void *arg, uint64_t done, uint64_t total),
		void *arg, struct err *e);

#endif
