// SPDX-License-Identifier: MIT
/*
 * libFuzzer entry point for the squashfs file view (formats/squashfs/
 * squashfs-files.c): the input is a squashfs image, opened as a --files
 * source over the in-memory I/O and walked, every regular file's data read
 * (holes asked for first, a bounded amount per input); then the same image
 * as its file-tree view (src/files/ftview.c, what apply reads OLD as), read
 * backwards, files reopened after the walk.  Seeds: seed-sqfsfiles.sh.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/kconfig.h"
#include "core/vdisk.h"
#include "files/ftree.h"

#define FUZZ_MAX_READ (16u << 20)
#define FUZZ_BUF (64u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t fuzz_done;

static int fuzz_visit(void *arg, const struct ft_entry *ent, struct ft_file *f, struct err *e)
{
	static uint8_t buf[FUZZ_BUF];
	uint64_t off = 0;

	(void)arg;
	if (!ft_path_ok(ent->path))
		__builtin_trap();       /* a source gives only valid paths */
	for (unsigned i = 0; i < ent->n_xattrs; i++)
		if (ent->xattrs[i].size)
			buf[0] = ent->xattrs[i].value[ent->xattrs[i].size - 1];
	if (ent->type == FT_SYMLINK && !ent->target[0])
		__builtin_trap();
	while (f && off < ent->size && fuzz_done < FUZZ_MAX_READ) {
		uint64_t n = ent->size - off < FUZZ_BUF ? ent->size - off : FUZZ_BUF, hole = 0;

		if (f->hole && f->hole(f, off, &hole, e) < 0)
			return -1;
		if (hole > ent->size - off)
			__builtin_trap();
		if (hole) {
			off += hole;
			continue;
		}
		if (f->read(f, off, buf, (size_t)n, e) < 0)
			return -1;
		off += n;
		fuzz_done += n;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct open_opts o = { .format = "raw", .max_table = 4u << 20 };
	struct ft_source *src;
	struct err e = { 0 };
	struct vdisk *vd;
	struct io *io;

	if (!IS_ENABLED(CONFIG_FILES) || !IS_ENABLED(CONFIG_FORMAT_SQUASHFS))
		return 0;
	if (io_mem_new(data, size, 0, &io, &e) < 0)
		return 0;
	if (vdisk_open_io(io, ".", &o, &vd, &e) < 0)
		return 0;
	fuzz_done = 0;
	if (ft_open_squashfs(vd, "fuzz", &src, &e) == 0) {
		ft_walk(src, fuzz_visit, NULL, &e);
		ft_close(src);
	}
	if (ft_open_squashfs(vd, "fuzz", &src, &e) == 0) {
		struct vdisk *view;
		static uint8_t buf[FUZZ_BUF];

		if (ftv_open(src, "", &view, &e) == 0) {
			uint64_t off = view->size, left = FUZZ_MAX_READ;

			while (off && left) {
				size_t n = (size_t)(off < FUZZ_BUF ? off : FUZZ_BUF);

				off -= n;
				left -= n < left ? n : left;
				if (vdisk_read(view, buf, n, off, &e) < 0)
					break;
			}
			vdisk_close(view);
		}
	}
	vdisk_close(vd);
	return 0;
}
