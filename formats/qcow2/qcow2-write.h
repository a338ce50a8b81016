/* SPDX-License-Identifier: MIT */
/* The qcow2 writer and checker, as the format table (qcow2.c) sees them. */
#ifndef EDGEIMG_FORMATS_QCOW2_WRITE_H
#define EDGEIMG_FORMATS_QCOW2_WRITE_H

#include <stddef.h>

#include "core/check.h"
#include "core/format.h"

/*
 * The header extension holding an edgeimg writer's recipe ("EDGI"): the
 * recipe string, not NUL-terminated.  QEMU keeps unknown extensions
 * without a word and drops nothing it needs.
 */
#define QCOW2_EXT_RECIPE 0x45444749u
#define QCOW2_RECIPE_MAX 256

/* The writer's -o options and -c, as qcow2_opts_parse() reads them. */
struct qcow2_wopts {
	unsigned version;               /* 3, or 2 for compat=0.10 */
	unsigned cluster_bits;
	unsigned compression_type;      /* QCOW2_COMPRESSION_* */
	const struct codec *codec;      /* NULL: clusters are stored plain */
	int level;
};

/* The options qcow2_opts_parse() takes, for the format's table. */
extern const struct opt_desc qcow2_write_options[];

/*
 * qcow2_opts_parse() - the format's write_parse(): compat, cluster_size,
 * compression_type, compress (or -c), level and the codec library's key
 * (deflate= or zstd=, see codec_library_opts()) of @o into the struct
 * qcow2_wopts at @parsed.
 */
int qcow2_opts_parse(struct opts *o, const struct write_opts *wopts, void *parsed,
		     struct err *e);

/*
 * qcow2_write() - stream @src into @out as qcow2 (version 3, or 2 with
 * compat=0.10), plain or compressed clusters, as qcow2_opts_parse() reads
 * the options.  The output is the same bytes for any thread count.
 */
int qcow2_write(struct vdisk *src, struct io *out, const struct write_opts *wopts,
		struct err *e);

/*
 * qcow2_recipe() - the recipe in @vd's header extensions, if any: its
 * length (copied NUL-terminated into @buf), 0 when there is none.
 */
int qcow2_recipe(struct vdisk *vd, char *buf, size_t len, struct err *e);

/*
 * qcow2_write_recipe() - img_format.write_recipe: the recipe qcow2_write()
 * records for @parsed (@tree has no meaning for a disk).
 */
void qcow2_write_recipe(const struct write_parsed *parsed, int tree, char *buf, size_t len);

/*
 * qcow2_reuse_open() - img_format.reuse_open: the compressed clusters of
 * the qcow2 at @path by content, when its recipe compresses as @options
 * (the writer's recipe options) do; at most 16 MiB of index.
 */
int qcow2_reuse_open(const char *path, const struct open_opts *oo, const char *options,
		     struct block_reuse **out, struct err *e);

/*
 * qcow2_check() - recompute every cluster's references from the header,
 * the L1/L2 tables (active and snapshots), the refcount structures, the
 * snapshot table, the crypto header and bitmaps, and compare them with
 * the stored refcounts, as "qemu-img check" does.  Problems are counted
 * in @res and described through res->report; the return is negative only
 * when the check could not run (an unreadable or invalid header).
 */
int qcow2_check(struct io *io, struct check_result *res, struct err *e);

#endif
