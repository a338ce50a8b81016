/* SPDX-License-Identifier: MIT */
/* What the files of the public API layer share; not installed. */
#ifndef EDGEIMG_API_H
#define EDGEIMG_API_H

#include <stdio.h>

#include "edgeimg.h"
#include "core/err.h"
#include "core/vdisk.h"

struct img_format;

/* What ei_image_open() returns: the disk, and how to open it again. */
struct ei_image {
	struct vdisk *vd;
	char path[4096];
	struct ei_open_opts opts;
};

/* api_err() - copy @in to the caller's @pub when @r is an error; returns @r. */
int api_err(struct ei_err *pub, const struct err *in, int r);

/* api_text() - close the memory stream @f over *@buf and hand it to *@text. */
int api_text(FILE *f, char **buf, char **text, struct err *e);

/* api_open() - vdisk_open() with the public options (-f checked, a block
   device raw unless -f, the first o->size bytes). */
int api_open(const char *path, const struct ei_open_opts *o, struct vdisk **out,
	     struct err *e);

/* api_format_check() - ei_format_check() with an internal error. */
int api_format_check(const char *name, int for_write, struct err *e);

/* api_format_streams() - the writer of @f can write a stream. */
int api_format_streams(const struct img_format *f);

/* api_threads() - worker threads for @n: 0 is one per core (1 without threads). */
unsigned api_threads(unsigned n);

struct write_parsed;
struct block_reuse;

/*
 * api_reuse_open() - "convert --reuse OLD": the compressed blocks of @path
 * that the writer of @f, given @parsed (a root filesystem when @tree),
 * may copy; *@out NULL when it holds none compressed so.  EI_EUSAGE when
 * the writer copies none from anywhere.
 */
int api_reuse_open(const struct img_format *f, const struct write_parsed *parsed, int tree,
		   const char *path, struct block_reuse **out, struct err *e);

/* api_reuse_done() - what @r did, into @res; frees it. */
void api_reuse_done(struct block_reuse *r, struct ei_convert_result *res);

#endif
