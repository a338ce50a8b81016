// SPDX-License-Identifier: MIT
/* a file tree as a POSIX pax archive through libarchive (placeholder: being written). */
#include "files/ftree.h"

int ft_write_tar(struct ft_source *src, struct io *out, const struct write_opts *wo,
		 struct err *e)
{
	return err_set(e, EI_EUNSUP, "tar: not built yet");
}
