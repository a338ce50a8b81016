// SPDX-License-Identifier: MIT
/* The public API: convert an image to another format (src/edgeimg.h). */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "core/bmap.h"
#include "core/format.h"
#include "core/kconfig.h"
#include "core/limits.h"
#include "core/outfile.h"

/* threads: 0 is one per core, and 1 when built without threads */
unsigned api_threads(unsigned n)
{
	if (!IS_ENABLED(CONFIG_THREADS))
		return 1;
	if (n == 0) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);

		n = c > 0 ? (c > 256 ? 256 : (unsigned)c) : 1;
	}
	return n;
}

int api_reuse_open(const struct img_format *f, const struct write_parsed *parsed, int tree,
		   const char *path, struct block_reuse **out, struct err *e)
{
	struct open_opts oo = { 0 };    /* the container is the whole file */
	char recipe[2048];
	int r;

	*out = NULL;
	if (!f->reuse_open || !f->write_recipe)
		return err_set(e, EI_EUSAGE,
			       "--reuse: a %s output copies no blocks from another (squashfs and compressed qcow2 do, when built in)",
			       f->name);
	if (!*path || !strcmp(path, "-"))
		return err_set(e, EI_EUSAGE, "--reuse names a file, not '%s'", path);
	f->write_recipe(parsed, tree, recipe, sizeof(recipe));
	r = f->reuse_open(path, &oo, recipe, out, e);
	if (r >= 0 && *out)
		(*out)->prove = 1;      /* nothing checks OUT's hash after */
	if (r < 0 && !strstr(e->msg, path))
		err_prefix(e, "--reuse %s", path);
	else if (r < 0)
		err_prefix(e, "--reuse");
	return r;
}

void api_reuse_done(struct block_reuse *r, struct ei_convert_result *res)
{
	if (!r)
		return;
	res->reuse_taken = 1;
	res->reuse_refused = reuse_refused(r);
	res->reuse_copied = __atomic_load_n(&r->copied, __ATOMIC_RELAXED);
	res->reuse_blocks = __atomic_load_n(&r->asked, __ATOMIC_RELAXED);
	r->free(r);
}

/* --bmap: a map of the disk's bytes, beside an output that holds them as they are */
static int convert_bmap_check(const struct ei_convert_opts *o, struct err *e)
{
	const struct img_format *f = format_find(o->format);

	if (!o->bmap)
		return 0;
	if (!f || !f->feeds_data)
		return err_set(e, EI_EUSAGE,
			       "a block map (--bmap) describes a raw or compressed raw output, not %s",
			       o->format);
	if (!*o->bmap || !strcmp(o->bmap, "-"))
		return err_set(e, EI_EUSAGE, "--bmap names a file, not '%s'", o->bmap);
	return 0;
}

int ei_convert_check(const struct ei_convert_opts *o, struct ei_err *pub)
{
	struct err e = { 0 };
	int r;

	if (!o->format)
		return api_err(pub, &e, err_set(&e, EI_EUSAGE,
						"name the output format (-O); raw is never assumed"));
	r = api_format_check(o->format, 1, &e);
	if (r >= 0)
		r = format_write_check(o->format, o->options, o->compress, &e);
	if (r >= 0)
		r = convert_bmap_check(o, &e);
	return api_err(pub, &e, r);
}

int ei_convert(struct ei_image *in, const char *out,
	       const struct ei_convert_opts *o, struct ei_convert_result *res,
	       struct ei_err *pub)
{
	const char *const inputs[] = { in->path, o->reuse, NULL };
	const char *const bmap_inputs[] = { in->path, out, NULL };
	const struct img_format *f;
	struct block_reuse *reuse = NULL;
	struct outfile bof = { .io = NULL };
	struct bmap *bmap = NULL;
	struct write_opts wopts = { 0 };
	struct write_parsed parsed;
	struct outfile of;
	struct err e = { 0 };
	struct stat st;
	unsigned flags = o->force ? OUTFILE_FORCE : 0;
	int r;

	memset(res, 0, sizeof(*res));
	if (!o->format)
		return api_err(pub, &e, err_set(&e, EI_EUSAGE,
						"name the output format (-O); raw is never assumed"));
	r = api_format_check(o->format, 1, &e);
	if (r < 0)
		return api_err(pub, &e, r);
	f = format_find(o->format);
	/* options the output cannot take are refused before OUT exists */
	wopts.options = o->options;
	wopts.compress = o->compress;
	r = format_write_parse(f, &wopts, &parsed, &e);
	if (r < 0)
		return api_err(pub, &e, r);
	wopts.parsed = &parsed;
	r = convert_bmap_check(o, &e);
	if (r >= 0 && o->bmap && !strcmp(o->bmap, out))
		r = err_set(&e, EI_EUSAGE, "--bmap %s is OUT", o->bmap);
	/* OLD's blocks are indexed before OUT exists: its errors leave none */
	if (r >= 0 && o->reuse)
		r = api_reuse_open(f, &parsed, 0, o->reuse, &reuse, &e);
	if (r < 0)
		return api_err(pub, &e, r);
	if (api_format_streams(f))
		flags |= OUTFILE_STREAM;
	r = outfile_open(&of, out, flags, inputs, &e);
	if (r < 0) {
		api_reuse_done(reuse, res);
		return api_err(pub, &e, r);
	}
	if (o->bmap) {
		r = outfile_open(&bof, o->bmap, flags & OUTFILE_FORCE, bmap_inputs, &e);
		if (r >= 0 && bof.kind != OUT_FILE)
			r = err_set(&e, EI_EUSAGE, "--bmap %s is not a regular file", o->bmap);
		if (r >= 0)
			r = bmap_new(bof.io, in->vd->size, &bmap, &e);
		if (r < 0) {
			if (bof.io)
				outfile_abort(&bof);
			outfile_abort(&of);
			api_reuse_done(reuse, res);
			return api_err(pub, &e, r);
		}
		wopts.data = bmap_data;
		wopts.data_arg = bmap;
	}
	wopts.threads = api_threads(o->threads);
	/* the map's hashing queue is within the cap too */
	wopts.mem_cap = EI_MEM_CAP - (bmap ? bmap_memory() : 0);
	wopts.progress = o->progress.fn;
	wopts.progress_arg = o->progress.arg;
	wopts.reuse = reuse;
	r = f->write(in->vd, of.io, &wopts, &e);
	api_reuse_done(reuse, res);
	if (r >= 0 && bmap) {
		r = bmap_finish(bmap, &e);
		res->bmap_mapped = bmap_mapped(bmap);
	}
	bmap_free(bmap);
	if (r < 0) {
		/* reads name IN and writes OUT (io names): nothing to add */
		if (o->bmap)
			outfile_abort(&bof);
		outfile_abort(&of);
		return api_err(pub, &e, r);
	}
	res->in_size = in->vd->size;
	res->out_size = of.io->end;
	res->writer_differs = parsed.writer_differs;
	res->out_kind = of.kind == OUT_FILE ? EI_OUT_FILE :
			of.kind == OUT_BLOCKDEV ? EI_OUT_BLOCKDEV : EI_OUT_STDOUT;
	/*
	 * A map replaced (--force) goes first: an old map beside the new OUT
	 * would have bmaptool skip blocks the new disk has data in.  OUT
	 * without a map, when the map then fails, is only incomplete.
	 */
	if (o->bmap && unlink(o->bmap) < 0 && errno != ENOENT)
		r = err_set(&e, -errno, "%s: cannot remove the old block map", o->bmap);
	if (r >= 0)
		r = outfile_commit(&of, &e);
	else
		outfile_abort(&of);
	if (r < 0) {
		if (o->bmap)
			outfile_abort(&bof);
		return api_err(pub, &e, r);
	}
	if (o->bmap && (r = outfile_commit(&bof, &e)) < 0)
		return api_err(pub, &e, r);
	if (res->out_kind == EI_OUT_FILE && stat(out, &st) == 0) {
		res->out_size = (uint64_t)st.st_size;
		res->out_alloc = (uint64_t)st.st_blocks * 512;
	}
	return 0;
}
