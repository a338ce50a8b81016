// SPDX-License-Identifier: MIT
/* A read-only window over part of another io (a tar member, an extent). */
#include <stdio.h>
#include <stdlib.h>

#include "core/bytes.h"
#include "core/io.h"

struct io_slice {
	struct io io;
	struct io *parent;      /* borrowed */
	uint64_t off;
};

static int slice_pread(struct io *io, void *buf, size_t len, uint64_t off,
		       struct err *e)
{
	struct io_slice *s = (struct io_slice *)io;

	if (!range_ok(off, len, io->size))
		return err_set(e, EI_ETRUNC, "%s: read at %llu+%zu past its end %llu",
			       io->name, (unsigned long long)off, len,
			       (unsigned long long)io->size);
	return s->parent->ops->pread(s->parent, buf, len, s->off + off, e);
}

static int slice_pwrite(struct io *io, const void *buf, size_t len,
			uint64_t off, struct err *e)
{
	(void)buf;
	(void)len;
	(void)off;
	return err_set(e, -EROFS, "%s: read-only", io->name);
}

static int slice_probe_data(struct io *io, uint64_t off, uint64_t len,
			    uint64_t *run, struct err *e)
{
	struct io_slice *s = (struct io_slice *)io;
	int r;

	if (!range_ok(off, len, io->size)) {
		*run = len;
		return 1;
	}
	r = io_probe_data(s->parent, s->off + off, len, run, e);
	if (r >= 0 && (!*run || *run > len)) {
		*run = len;             /* a confused back-end: call it data */
		return 1;
	}
	return r;
}

static int slice_truncate(struct io *io, uint64_t size, struct err *e)
{
	(void)size;
	return err_set(e, -EROFS, "%s: read-only", io->name);
}

static int slice_sync(struct io *io, struct err *e)
{
	(void)io;
	(void)e;
	return 0;
}

static void slice_close(struct io *io)
{
	free(io);
}

static const struct io_ops slice_ops = {
	.pread = slice_pread,
	.pwrite = slice_pwrite,
	.probe_data = slice_probe_data,
	.truncate = slice_truncate,
	.sync = slice_sync,
	.close = slice_close,
};

int io_slice_new(struct io *parent, uint64_t off, uint64_t len,
		 const char *name, struct io **out, struct err *e)
{
	struct io_slice *s;

	if (!range_ok(off, len, parent->size))
		return err_set(e, EI_ETRUNC,
			       "%s: %llu bytes at %llu lie past the end of %s (%llu bytes)",
			       name, (unsigned long long)len,
			       (unsigned long long)off, parent->name,
			       (unsigned long long)parent->size);
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, -ENOMEM, "%s: out of memory", name);
	s->parent = parent;
	s->off = off;
	s->io.ops = &slice_ops;
	s->io.size = len;
	s->io.flags = parent->flags & IO_STREAM;
	snprintf(s->io.name, sizeof(s->io.name), "%s", name);
	*out = &s->io;
	return 0;
}
