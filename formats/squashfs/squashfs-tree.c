// SPDX-License-Identifier: MIT
/* a file tree as a squashfs root filesystem (placeholder: being written). */
#include "files/ftree.h"

int ft_write_squashfs(struct ft_source *src, struct io *out, const struct write_opts *wo,
		      struct err *e)
{
	return err_set(e, EI_EUNSUP, "squashfs: root filesystems not built yet");
}
