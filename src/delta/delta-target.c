// SPDX-License-Identifier: MIT
/*
 * What apply builds when the target is a container (src/delta/delta-format.md,
 * "Target and recipe"): the canonical view of NEW a writer is given, the
 * recipe that names the writer and its options, and the build itself,
 * shared by delta (to learn the target's hash) and apply (to make it).
 */
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "core/format.h"
#include "core/limits.h"
#include "delta/delta.h"

/* The canonical view: extents from content, cached 1 MiB at a time. */
struct canon {
	struct vdisk *in;
	uint8_t *buf;
	uint64_t boff;
	size_t blen;
};

static int canon_fill(struct canon *c, uint64_t off, struct err *e)
{
	struct vdisk *in = c->in;
	size_t len = (size_t)min_u64(EI_IO_CHUNK, in->size - off), done = 0;

	c->blen = 0;
	while (done < len) {
		struct extent ext;
		int r = vdisk_extent(in, off + done, len - done, &ext, e);

		if (r < 0)
			return r;
		if (ext.type == EXT_DATA)
			r = vdisk_read(in, c->buf + done, (size_t)ext.len, off + done, e);
		else
			memset(c->buf + done, 0, (size_t)ext.len);
		if (r < 0)
			return r;
		done += (size_t)ext.len;
	}
	c->boff = off;
	c->blen = len;
	return 0;
}

static int canon_read(struct vdisk *vd, void *buf, size_t len, uint64_t off,
		      struct err *e)
{
	struct canon *c = vd->priv;

	if (c->blen && off >= c->boff && len <= c->blen &&
	    off - c->boff <= c->blen - len) {
		memcpy(buf, c->buf + (off - c->boff), len);
		return 0;
	}
	return vdisk_read(c->in, buf, len, off, e);
}

static int canon_extent(struct vdisk *vd, uint64_t off, uint64_t len,
			struct extent *ext, struct err *e)
{
	struct canon *c = vd->priv;
	uint64_t start = off & ~(uint64_t)(DELTA_BLOCK - 1), end = off + len, p;
	struct extent ie;
	int r, zero;

	/* Whole blocks the inner disk knows to be zero need no reading. */
	if (start == off) {
		r = vdisk_extent(c->in, off, len, &ie, e);
		if (r < 0)
			return r;
		if (ie.type != EXT_DATA &&
		    (ie.len >= DELTA_BLOCK || off + ie.len == vd->size)) {
			ext->type = EXT_HOLE;
			ext->len = off + ie.len == vd->size ? ie.len :
				   ie.len & ~(uint64_t)(DELTA_BLOCK - 1);
			return 0;
		}
	}
	if (!c->blen || start < c->boff || start >= c->boff + c->blen ||
	    min_u64(start + DELTA_BLOCK, vd->size) > c->boff + c->blen) {
		r = canon_fill(c, start, e);
		if (r < 0)
			return r;
	}
	p = start;
	zero = -1;
	while (p < end && p < c->boff + c->blen) {
		size_t n = (size_t)min_u64(DELTA_BLOCK, c->boff + c->blen - p);
		int z = buf_is_zero(c->buf + (p - c->boff), n);

		if (zero >= 0 && z != zero)
			break;
		zero = z;
		p += n;
	}
	ext->type = zero ? EXT_HOLE : EXT_DATA;
	ext->len = min_u64(p, end) - off;
	return 0;
}

static void canon_close(struct vdisk *vd)
{
	struct canon *c = vd->priv;

	if (c)
		free(c->buf);
	free(c);
	vd->priv = NULL;
}

/* The canonical view's map: its own extents, its data made by canon_read(). */
static int canon_map(struct vdisk *vd, uint64_t off, uint64_t len,
		     struct map_run *run, struct err *e)
{
	struct extent ext;
	int r = canon_extent(vd, off, len, &ext, e);

	if (r < 0)
		return r;
	memset(run, 0, sizeof(*run));
	run->len = ext.len;
	run->type = ext.type;
	run->src = ext.type == EXT_DATA ? MAP_DECODE : MAP_NONE;
	return 0;
}

static const struct img_format delta_canon_fmt = {
	.name = "canonical",
	.desc = "a disk with extents derived from its content",
	.map = canon_map,
	.decode = canon_read,
	.close = canon_close,
};

int delta_canon_open(struct vdisk *inner, struct vdisk **out, struct err *e)
{
	struct vdisk *vd = calloc(1, sizeof(*vd));
	struct canon *c = calloc(1, sizeof(*c));
	struct io *io = io_null(inner->io->name, inner->size);

	if (!vd || !c || !io || !(c->buf = malloc(EI_IO_CHUNK))) {
		free(vd);
		if (c)
			free(c->buf);
		free(c);
		io_close(io);
		return err_set(e, -ENOMEM, "out of memory");
	}
	c->in = inner;
	vd->fmt = &delta_canon_fmt;
	vd->io = io;
	vd->size = inner->size;
	vd->priv = c;
	vd->opts = inner->opts;
	memcpy(vd->dir, inner->dir, sizeof(vd->dir));
	vd->dirfd = -1;
	*out = vd;
	return 0;
}

/* Append @kv (",key=off") to the split options @opts, @*o bytes long. */
static int recipe_off(const char *recipe, char *opts, size_t *o, size_t opts_len,
		      const char *kv, struct err *e)
{
	size_t n = strlen(kv);

	if (*o + n + 1 > opts_len)
		return err_set(e, EI_ECORRUPT, "recipe '%s': options too long", recipe);
	memcpy(opts + *o, kv, n + 1);
	*o += n;
	return 0;
}

int delta_recipe_split(const char *recipe, char *fmt, size_t fmt_len,
		       char *ver, size_t ver_len, char *opts, size_t opts_len,
		       struct err *e)
{
	const char *p = recipe;
	char comp[8], skip[8], files[8];
	size_t o = 0;
	int r;

	fmt[0] = ver[0] = opts[0] = 0;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);

		if (!memchr(p, '=', n))
			return err_set(e, EI_ECORRUPT, "recipe '%s': '%.*s' is not key=value",
				       recipe, (int)n, p);
		if (n > 7 && !strncmp(p, "format=", 7)) {
			if (n - 7 >= fmt_len)
				return err_set(e, EI_ECORRUPT, "recipe '%s': format name too long",
					       recipe);
			memcpy(fmt, p + 7, n - 7);
			fmt[n - 7] = 0;
		} else if (n > 7 && !strncmp(p, "writer=", 7)) {
			if (n - 7 >= ver_len)
				return err_set(e, EI_ECORRUPT, "recipe '%s': writer version too long",
					       recipe);
			memcpy(ver, p + 7, n - 7);
			ver[n - 7] = 0;
		} else {
			if (o + n + 2 > opts_len)
				return err_set(e, EI_ECORRUPT, "recipe '%s': options too long",
					       recipe);
			if (o)
				opts[o++] = ',';
			memcpy(opts + o, p, n);
			o += n;
			opts[o] = 0;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	if (!fmt[0])
		return err_set(e, EI_ECORRUPT, "recipe '%s' names no format", recipe);
	/*
	 * A squashfs recipe from before skip_random (zstd) or group_fragments
	 * (root filesystems) was written without it (the writer names each
	 * only when on): build it so, whatever the writer's default now.
	 */
	if (strcmp(fmt, "squashfs"))
		return 0;
	opts_str_value(opts, "compression", comp, sizeof(comp));
	opts_str_value(opts, "skip_random", skip, sizeof(skip));
	if (!strcmp(comp, "zstd") && !skip[0] &&
	    (r = recipe_off(recipe, opts, &o, opts_len, ",skip_random=off", e)) < 0)
		return r;
	opts_str_value(opts, "files", files, sizeof(files));
	opts_str_value(opts, "group_fragments", skip, sizeof(skip));
	if (!strcmp(files, "on") && !skip[0] &&
	    (r = recipe_off(recipe, opts, &o, opts_len, ",group_fragments=off", e)) < 0)
		return r;
	return 0;
}

int delta_recipe_check(const char *recipe, struct err *e)
{
	char fmt[64], ver[64], opts[DELTA_RECIPE_MAX + 1];
	int r;

	if (!recipe[0])
		return 0;
	r = delta_recipe_split(recipe, fmt, sizeof(fmt), ver, sizeof(ver),
			       opts, sizeof(opts), e);
	if (r >= 0 && !strcmp(fmt, "repack"))
		r = pack_recipe_check(opts, e);
	else if (r >= 0)
		r = format_write_check(fmt, opts[0] ? opts : NULL, 0, e);
	if (r < 0) {
		/* the patch asks what this build cannot do: not a usage error */
		err_prefix(e, "refusing the patch before writing anything");
		e->code = r = EI_EUNSUP;
	}
	return r;
}


/* The writer of @recipe and its options (@opts, DELTA_RECIPE_MAX + 1 bytes). */
static int target_writer(const char *recipe, const struct img_format **f, char *opts,
			 struct err *e)
{
	char fmt[64], ver[64];
	int r = delta_recipe_split(recipe, fmt, sizeof(fmt), ver, sizeof(ver),
				   opts, DELTA_RECIPE_MAX + 1, e);

	if (r < 0)
		return r;
	*f = NULL;
	if (!strcmp(fmt, "repack"))     /* a container rebuilt from its packed view */
		return pack_recipe_check(opts, e);
	*f = format_find(fmt);
	if (!*f || !(*f)->write)
		return err_set(e, EI_EUNSUP,
			       "the target is a %s container, which this edgeimg cannot write",
			       fmt);
	return 0;
}

int delta_target_reuse(const char *recipe, const char *path, const struct open_opts *oo,
		       struct block_reuse **out, struct err *e)
{
	char opts[DELTA_RECIPE_MAX + 1];
	const struct img_format *f;
	int r = target_writer(recipe, &f, opts, e);

	*out = NULL;
	if (r < 0)
		return r;
	if (!f)         /* repack: the blocks of OLD's file, by content and method */
		return pack_reuse_open(path, oo, out, e);
	if (!f->reuse_open)
		return 0;
	return f->reuse_open(path, oo, opts, out, e);
}

int delta_target_build(struct vdisk *new, const char *recipe, struct io *out,
		       unsigned threads,
		       void (*progress)(void *arg, uint64_t done, uint64_t total),
		       void *arg, const struct block_reuse *reuse, uint64_t *size,
		       uint8_t sha[CHASH_LEN], struct err *e)
{
	char opts[DELTA_RECIPE_MAX + 1];
	const struct img_format *f;
	struct write_opts wopts = { 0 };
	struct vdisk *canon = NULL;
	int r = target_writer(recipe, &f, opts, e);

	if (r < 0)
		return r;
	if (!f) {
		r = pack_write(new, out, threads, EI_MEM_CAP / 2, reuse, e);
		if (r < 0) {
			err_prefix(e, "rebuilding the container");
			return r;
		}
		goto built;
	}
	r = delta_canon_open(new, &canon, e);
	if (r < 0)
		return r;
	wopts.options = opts[0] ? opts : NULL;
	wopts.threads = threads;
	wopts.mem_cap = EI_MEM_CAP;
	wopts.progress = progress;
	wopts.progress_arg = arg;
	wopts.reuse = reuse;
	r = f->write(canon, out, &wopts, e);
	vdisk_close(canon);
	if (r < 0) {
		err_prefix(e, "building the %s container", f->name);
		return r;
	}
built:
	/* what the writer wrote: a block device holds more than the container */
	*size = out->end;
	r = io_sync(out, e);
	if (r < 0)
		return r;
	return chash_io(out, *size, 1, sha, e);
}
