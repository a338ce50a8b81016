/* SPDX-License-Identifier: MIT */
/*
 * A block map in bmaptool's format 2.0 ("bmaptool copy IMAGE BMAP DEV"),
 * made from the data a writer passes to write_opts.data, in one pass: the
 * 4 KiB blocks of the disk that data reaches (the source's data extents,
 * whatever they hold, as "bmaptool create" maps a file's allocated
 * blocks) are mapped, each run of them a range with its SHA-256; the
 * others are holes or zero ranges of the disk, which a flasher skips.
 */
#ifndef EDGEIMG_BMAP_H
#define EDGEIMG_BMAP_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/io.h"

#define BMAP_BLOCK 4096

struct bmap;

/* bmap_new() - a map of a disk of @size bytes, written to @out (empty). */
int bmap_new(struct io *out, uint64_t size, struct bmap **bp, struct err *e);

/*
 * bmap_data() - write_opts.data: the @len bytes of the disk at @off, in
 * increasing order of offset; what lies between them reads as zeros.
 */
int bmap_data(void *arg, const uint8_t *buf, size_t len, uint64_t off,
	      struct err *e);

/*
 * bmap_finish() - the rest of the disk is zeros: write the last ranges,
 * the mapped count and the file's own checksum (over the file as written,
 * read back, with zeros in its place).
 */
int bmap_finish(struct bmap *b, struct err *e);

/* bmap_memory() - the bytes a map holds while it is made (its hashing queue), for a writer's cap. */
uint64_t bmap_memory(void);

/* bmap_mapped() - the blocks mapped so far. */
uint64_t bmap_mapped(const struct bmap *b);

void bmap_free(struct bmap *b);

#endif
