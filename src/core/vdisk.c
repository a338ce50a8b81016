// SPDX-License-Identifier: MIT
/* Opening an image as a virtual disk: probe, open, bounds-checked access. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/bytes.h"
#include "core/format.h"
#include "core/limits.h"
#include "core/part.h"
#include "core/vdisk.h"

/* The reader for @io: the one -f names, or the one the probes pick. */
static int vdisk_pick(struct io *io, const struct open_opts *o,
		      const struct img_format **fmt, struct err *e)
{
	int r = format_pick(io, o->format, fmt, e);

	if (r >= 0 && o->format && !(*fmt)->open)
		return err_set(e, EI_EUNSUP, "%s: cannot be read", o->format);
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
	vd->dirfd = -1;
	if (strlen(dir ? dir : ".") >= sizeof(vd->dir)) {
		r = err_set(e, -ENAMETOOLONG, "%s: the image's directory name is too long",
			    io->name);
		goto fail;
	}
	snprintf(vd->dir, sizeof(vd->dir), "%s", dir ? dir : ".");
	/* references are opened in this directory, not by a path built again */
	vd->dirfd = open(vd->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
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
	const char *slash = strrchr(path, '/');
	char dir[sizeof(((struct vdisk *)0)->dir)];
	struct open_opts o = { 0 };
	struct vdisk *vd;
	struct io *io;
	int r;

	if (opts)
		o = *opts;
	o.partition = NULL;     /* the image's references are whole disks */
	if (slash && (size_t)(slash - path) >= sizeof(dir))
		return err_set(e, -ENAMETOOLONG, "%s: the directory name is too long", path);
	r = io_open_file(path, 0, &io, e);
	if (r < 0)
		return r;
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	r = vdisk_open_io(io, dir, &o, &vd, e);
	if (r >= 0 && opts && opts->partition)
		r = part_open(vd, opts->partition, &vd, e);
	if (r >= 0)
		*out = vd;
	return r;
}

/* The format's run at @off, at most @len bytes, checked. */
static int vdisk_map(struct vdisk *vd, uint64_t off, uint64_t len,
		     struct map_run *run, struct err *e)
{
	int r;

	memset(run, 0, sizeof(*run));
	r = vd->fmt->map(vd, off, len, run, e);
	if (r < 0)
		return r;
	if (!run->len || run->len > len ||
	    (run->src == MAP_NONE && run->type == EXT_DATA) ||
	    (run->src == MAP_VDISK && !range_ok(run->at, run->len, run->vd->size)) ||
	    (run->src == MAP_DECODE && !vd->fmt->decode))
		return err_set(e, -EIO, "%s: run of %llu bytes at %llu out of range",
			       vd->fmt->name, (unsigned long long)run->len,
			       (unsigned long long)off);
	return 0;
}

int vdisk_read(struct vdisk *vd, void *buf, size_t len, uint64_t off,
	       struct err *e)
{
	uint8_t *p = buf;

	if (!range_ok(off, len, vd->size))
		return err_set(e, -EINVAL, "read at %llu+%zu past the disk end %llu",
			       (unsigned long long)off, len,
			       (unsigned long long)vd->size);
	while (len) {
		struct map_run run;
		char what[32];
		size_t n;
		int r = vdisk_map(vd, off, len, &run, e);

		if (r < 0)
			return r;
		n = (size_t)run.len;
		switch (run.src) {
		case MAP_IO:
			if (!run.what) {
				snprintf(what, sizeof(what), "%s: data", vd->fmt->name);
				run.what = what;
			}
			r = io_read(run.io, p, n, run.host, run.what, e);
			break;
		case MAP_DECODE:
			r = vd->fmt->decode(vd, p, n, off, e);
			break;
		case MAP_VDISK:
			r = vdisk_read(run.vd, p, n, run.at, e);
			break;
		default:
			memset(p, 0, n);
			break;
		}
		if (r < 0)
			return r;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* The extent of one run of the map at @off, at most @len bytes. */
static int vdisk_extent_run(struct vdisk *vd, uint64_t off, uint64_t len,
			    struct extent *ext, int *last, struct err *e)
{
	struct map_run run;
	uint64_t n;
	int r = vdisk_map(vd, off, len, &run, e);

	if (r < 0)
		return r;
	*last = run.last;
	if (run.src == MAP_VDISK) {
		r = vdisk_extent(run.vd, run.at, run.len, ext, e);
		ext->host = EXT_HOST_NONE;      /* in another file */
		/* The other disk looked as far as it would. */
		if (r >= 0 && ext->len < run.len)
			*last = 1;
		return r;
	}
	ext->type = run.src == MAP_IO || run.src == MAP_DECODE ? EXT_DATA :
		    run.type;
	ext->len = run.len;
	ext->host = run.src == MAP_IO && run.io == vd->io ? run.host :
		    EXT_HOST_NONE;
	if (run.src != MAP_IO || run.holes == EXT_DATA)
		return 0;
	/* Holes of the file read as zeros: they are what the format says. */
	if (run.host >= run.io->size)
		r = 0, n = run.len;
	else
		r = io_probe_data(run.io, run.host,
				  min_u64(run.len, run.io->size - run.host), &n, e);
	if (r < 0)
		return r;
	ext->len = n;
	if (!r) {
		ext->type = run.holes;
		ext->host = EXT_HOST_NONE;
	}
	return 0;
}

/* Whether extent @b, which follows @a, continues it. */
static bool extent_joins(const struct extent *a, const struct extent *b)
{
	if (a->type != b->type)
		return false;
	if (a->type != EXT_DATA || (a->host == EXT_HOST_NONE && b->host == EXT_HOST_NONE))
		return true;
	return a->host != EXT_HOST_NONE && b->host == a->host + a->len;
}

int vdisk_extent(struct vdisk *vd, uint64_t off, uint64_t len,
		 struct extent *ext, struct err *e)
{
	int r, last = 0;

	if (!len || !range_ok(off, len, vd->size))
		return err_set(e, -EINVAL, "extent at %llu+%llu past the disk end %llu",
			       (unsigned long long)off, (unsigned long long)len,
			       (unsigned long long)vd->size);
	ext->host = EXT_HOST_NONE;
	r = vdisk_extent_run(vd, off, len, ext, &last, e);
	while (r >= 0 && !last && ext->len < len) {
		struct extent next;

		r = vdisk_extent_run(vd, off + ext->len, len - ext->len,
				     &next, &last, e);
		if (r < 0 || !extent_joins(ext, &next))
			break;
		ext->len += next.len;
	}
	if (r < 0)
		return r;
	if (!ext->len || ext->len > len)
		return err_set(e, -EIO, "%s: extent of %llu bytes at %llu out of range",
			       vd->fmt->name, (unsigned long long)ext->len,
			       (unsigned long long)off);
	return 0;
}

/* Whether piece @b, which follows run @a, continues it. */
static bool map_joins(const struct map_run *a, const struct map_run *b)
{
	if (a->src != b->src || a->type != b->type)
		return false;
	switch (a->src) {
	case MAP_IO:
		return a->io == b->io && a->holes == b->holes &&
		       b->host == a->host + a->len;
	case MAP_VDISK:
		return a->vd == b->vd && b->at == a->at + a->len;
	default:
		return true;
	}
}

int map_pieces(struct vdisk *vd, uint64_t off, uint64_t len,
	       struct map_run *run,
	       int (*piece)(struct vdisk *vd, uint64_t off, uint64_t len,
			    struct map_run *run, struct err *e),
	       struct err *e)
{
	int r = piece(vd, off, len, run, e);

	if (r < 0)
		return r;
	while (run->len && run->len < len) {
		struct map_run next = { 0 };
		struct err e2 = { 0 };

		/* A piece that fails is left for the call that maps it. */
		if (piece(vd, off + run->len, len - run->len, &next, &e2) < 0 ||
		    !next.len || !map_joins(run, &next))
			break;
		run->len += next.len;
	}
	return 0;
}

int map_decode_all(struct vdisk *vd, uint64_t off, uint64_t len, struct map_run *run,
		   struct err *e)
{
	(void)e;
	(void)off;
	(void)vd;
	memset(run, 0, sizeof(*run));
	run->len = len;
	run->type = EXT_DATA;
	run->src = MAP_DECODE;
	return 0;
}

void map_backing(struct vdisk *parent, uint64_t off, uint64_t len,
		 struct map_run *run)
{
	if (parent && off < parent->size) {
		run->src = MAP_VDISK;
		run->type = EXT_HOLE;
		run->vd = parent;
		run->at = off;
		run->len = min_u64(len, parent->size - off);
	} else {
		run->src = MAP_NONE;
		run->type = EXT_HOLE;
		run->len = len;
	}
}

void vdisk_close(struct vdisk *vd)
{
	if (!vd)
		return;
	if (vd->fmt && vd->fmt->close)
		vd->fmt->close(vd);
	io_close(vd->io);
	if (vd->dirfd >= 0)
		close(vd->dirfd);
	free(vd);
}

int vdisk_open_ref(struct vdisk *vd, const char *name, size_t name_len,
		   const char *format, const char *what, struct vdisk **out,
		   struct io **io_out, struct err *e)
{
	struct open_opts o = vd->opts;
	char nm[256];
	struct io *io;
	int fd, r;

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
	if (vd->dirfd < 0)
		return err_set(e, EI_EREF, "%s '%.*s': the image's directory %s cannot be opened",
			       what, (int)name_len, name, vd->dir);
	snprintf(nm, sizeof(nm), "%.*s", (int)name_len, name);
	/* in the image's directory, never through a symbolic link */
	fd = openat(vd->dirfd, nm, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return err_errno(e, errno, "%s: %s/%s", what, vd->dir, nm);
	r = io_open_fd(fd, nm, 0, &io, e);
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
