// SPDX-License-Identifier: MIT
/* Opening an image as a virtual disk: probe, open, bounds-checked access. */
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "core/format.h"
#include "core/limits.h"
#include "core/vdisk.h"

static void vdisk_set_dir(struct vdisk *vd, const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(vd->dir, sizeof(vd->dir), ".");
	else if (slash == path)
		snprintf(vd->dir, sizeof(vd->dir), "/");
	else
		snprintf(vd->dir, sizeof(vd->dir), "%.*s", (int)(slash - path), path);
}

static int vdisk_pick(struct io *io, const struct open_opts *o,
		      const struct img_format **fmt, struct err *e)
{
	uint8_t head[PROBE_HEAD], tail[PROBE_TAIL];
	size_t hl, tl = 0;
	int r;

	if (o->format) {
		*fmt = format_find(o->format);
		if (!*fmt)
			return err_set(e, EI_EUSAGE, "unknown format '%s'", o->format);
		if (!(*fmt)->open)
			return err_set(e, EI_EUNSUP, "%s: cannot be read", o->format);
		return 0;
	}
	if (io->flags & IO_STREAM)
		return err_set(e, EI_EUNSUP,
			       "%s: not a seekable file; give a file name", io->name);
	hl = (size_t)min_u64(sizeof(head), io->size);
	r = io_read(io, head, hl, 0, "probe", e);
	if (r < 0)
		return r;
	if (io->size > hl) {
		tl = (size_t)min_u64(sizeof(tail), io->size - hl);
		r = io_read(io, tail, tl, io->size - tl, "probe", e);
		if (r < 0)
			return r;
	}
	r = format_probe(head, hl, tail, tl, io->size, fmt, e);
	if (r < 0)
		err_prefix(e, "%s", io->name);
	return r;
}

int vdisk_open_io(struct io *io, const char *dir, const struct open_opts *opts,
		  struct vdisk **out, struct err *e)
{
	struct vdisk *vd = calloc(1, sizeof(*vd));
	const struct img_format *fmt;
	int r;

	if (!vd) {
		io_close(io);
		return err_set(e, -ENOMEM, "out of memory");
	}
	vd->io = io;
	if (opts)
		vd->opts = *opts;
	if (!vd->opts.max_chain)
		vd->opts.max_chain = EI_MAX_CHAIN;
	if (!vd->opts.max_table)
		vd->opts.max_table = EI_MAX_TABLE;
	if (!vd->opts.max_size)
		vd->opts.max_size = EI_MAX_VIRTUAL_SIZE;
	snprintf(vd->dir, sizeof(vd->dir), "%s", dir ? dir : ".");
	r = vdisk_pick(io, &vd->opts, &fmt, e);
	if (r < 0)
		goto fail;
	vd->fmt = fmt;
	r = fmt->open(vd, e);
	if (r < 0) {
		vd->fmt = NULL;         /* open cleaned up after itself */
		goto fail;
	}
	if (vd->size > vd->opts.max_size) {
		r = err_set(e, EI_ELIMIT,
			    "%s: virtual size %llu exceeds the limit of %llu",
			    fmt->name, (unsigned long long)vd->size,
			    (unsigned long long)vd->opts.max_size);
		goto fail;
	}
	*out = vd;
	return 0;
fail:
	vdisk_close(vd);
	return r;
}

int vdisk_open(const char *path, const struct open_opts *opts,
	       struct vdisk **out, struct err *e)
{
	char dir[256];
	struct vdisk tmp;
	struct io *io;
	int r;

	r = io_open_file(path, 0, &io, e);
	if (r < 0)
		return r;
	vdisk_set_dir(&tmp, path);
	memcpy(dir, tmp.dir, sizeof(dir));
	return vdisk_open_io(io, dir, opts, out, e);
}

int vdisk_read(struct vdisk *vd, void *buf, size_t len, uint64_t off,
	       struct err *e)
{
	if (!range_ok(off, len, vd->size))
		return err_set(e, -EINVAL, "read at %llu+%zu past the disk end %llu",
			       (unsigned long long)off, len,
			       (unsigned long long)vd->size);
	if (!len)
		return 0;
	return vd->fmt->read(vd, buf, len, off, e);
}

int vdisk_extent(struct vdisk *vd, uint64_t off, uint64_t len,
		 struct extent *ext, struct err *e)
{
	int r;

	if (!len || !range_ok(off, len, vd->size))
		return err_set(e, -EINVAL, "extent at %llu+%llu past the disk end %llu",
			       (unsigned long long)off, (unsigned long long)len,
			       (unsigned long long)vd->size);
	if (!vd->fmt->extent) {
		ext->type = EXT_DATA;
		ext->len = len;
		return 0;
	}
	r = vd->fmt->extent(vd, off, len, ext, e);
	if (r < 0)
		return r;
	if (!ext->len || ext->len > len)
		return err_set(e, -EIO, "%s: extent of %llu bytes at %llu out of range",
			       vd->fmt->name, (unsigned long long)ext->len,
			       (unsigned long long)off);
	return 0;
}

void vdisk_close(struct vdisk *vd)
{
	if (!vd)
		return;
	if (vd->fmt && vd->fmt->close)
		vd->fmt->close(vd);
	io_close(vd->io);
	free(vd);
}

int vdisk_open_ref(struct vdisk *vd, const char *name, size_t name_len,
		   const char *format, const char *what, struct vdisk **out,
		   struct io **io_out, struct err *e)
{
	struct open_opts o = vd->opts;
	char path[sizeof(vd->dir) + 260];
	struct io *io;
	int r;

	if (!vd->opts.allow_refs)
		return err_set(e, EI_EREF,
			       "%s '%.*s' refused: references to other files need --allow-refs",
			       what, (int)min_u64(name_len, 255), name);
	if (!name_len || name_len > 255 || memchr(name, '/', name_len) ||
	    memchr(name, 0, name_len) || !strncmp(name, "json:", 5) ||
	    (name_len == 2 && !memcmp(name, "..", 2)) ||
	    (name_len == 1 && name[0] == '.'))
		return err_set(e, EI_EREF,
			       "%s '%.*s' refused: only a plain file name in the image's directory is allowed",
			       what, (int)min_u64(name_len, 255), name);
	if (vd->opts.max_chain <= 1)
		return err_set(e, EI_ELIMIT, "%s '%.*s': chain deeper than %u images",
			       what, (int)name_len, name, EI_MAX_CHAIN);
	snprintf(path, sizeof(path), "%s/%.*s", vd->dir, (int)name_len, name);
	r = io_open_file(path, 0, &io, e);
	if (r < 0) {
		err_prefix(e, "%s", what);
		return r;
	}
	if (io_out) {
		*io_out = io;
		return 0;
	}
	o.format = format;
	o.max_chain = vd->opts.max_chain - 1;
	r = vdisk_open_io(io, vd->dir, &o, out, e);
	if (r < 0)
		err_prefix(e, "%s '%.*s'", what, (int)name_len, name);
	return r;
}
