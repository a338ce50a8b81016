// SPDX-License-Identifier: MIT
/*
 * libFuzzer entry point for the ext2/3/4 file-view source (src/files/ext.c,
 * libext2fs underneath): the input is the disk; the filesystem on it is
 * opened, walked, and every regular file's data read (holes skipped as a
 * consumer skips them), bounded per input.  Seeds: seed-ext.sh.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/format.h"
#include "core/kconfig.h"
#include "files/ftree.h"

#define FUZZ_MAX_READ (16u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#if IS_ENABLED(CONFIG_FILES_EXT)
struct fuzz_walk {
	uint64_t read;
	uint8_t buf[65536];
};

static int fuzz_visit(void *arg, const struct ft_entry *ent, struct ft_file *f, struct err *e)
{
	struct fuzz_walk *w = arg;
	uint64_t off = 0;

	if (!ft_path_ok(ent->path) || (ent->type == FT_SYMLINK && !ent->target))
		abort();        /* a source must never give these */
	for (unsigned i = 1; i < ent->n_xattrs; i++)
		if (strcmp(ent->xattrs[i - 1].name, ent->xattrs[i].name) >= 0)
			abort();
	while (f && off < ent->size && w->read < FUZZ_MAX_READ) {
		uint64_t hole = 0, n;

		if (f->hole && f->hole(f, off, &hole, e) < 0)
			return -1;
		if (hole > ent->size - off)
			abort();
		if (hole) {
			off += hole;
			continue;
		}
		n = ent->size - off < sizeof(w->buf) ? ent->size - off : sizeof(w->buf);
		if (f->read(f, off, w->buf, (size_t)n, e) < 0)
			return -1;
		off += n;
		w->read += n;
	}
	return 0;
}

static void fuzz_warn(void *arg, const char *msg)
{
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
#if IS_ENABLED(CONFIG_FILES_EXT)
	static struct fuzz_walk w;
	struct open_opts o = { .format = "raw" };
	struct err e = { 0 };
	struct ft_source *s;
	struct vdisk *vd;
	struct io *io;

	if (io_mem_new(data, size, 0, &io, &e) < 0)
		return 0;
	if (vdisk_open_io(io, ".", &o, &vd, &e) < 0)
		return 0;
	if (ft_open_ext(vd, "fuzz", &s, &e) == 0) {
		s->warn = fuzz_warn;
		w.read = 0;
		ft_walk(s, fuzz_visit, &w, &e);
		ft_close(s);
	}
	vdisk_close(vd);
#else
	(void)data;
	(void)size;
#endif
	return 0;
}
