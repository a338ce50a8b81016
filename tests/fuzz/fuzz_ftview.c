// SPDX-License-Identifier: MIT
/*
 * libFuzzer entry point for the file-tree view's parser (src/files/ftview.c,
 * ftv_source()), what apply's squashfs writer reads NEW from: the input is
 * a view, walked as a source by the squashfs root-filesystem writer into
 * memory (bounded), every file's data and holes read on the way.  Seeds:
 * seed-ftview.sh (views written by its own Python, from the spec).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/format.h"
#include "core/io.h"
#include "core/kconfig.h"
#include "core/vdisk.h"
#include "files/ftree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
#if IS_ENABLED(CONFIG_FILES) && IS_ENABLED(CONFIG_OUTPUT_SQUASHFS)
	struct open_opts o = { .format = "raw" };
	struct write_opts wo = { .threads = 1, .mem_cap = 16u << 20 };
	struct ft_source *src;
	struct err e = { 0 };
	struct vdisk *vd;
	struct io *io, *out;

	if (io_mem_new(data, size, 0, &io, &e) < 0)
		return 0;
	if (vdisk_open_io(io, ".", &o, &vd, &e) < 0)
		return 0;
	if (ftv_source(vd, &src, &e) == 0) {
		if (io_mem_new(NULL, 0, 64u << 20, &out, &e) == 0) {
			ft_write_squashfs(src, out, &wo, &e);
			io_close(out);
		}
		ft_close(src);
	}
	vdisk_close(vd);
#else
	(void)data;
	(void)size;
#endif
	return 0;
}
