// SPDX-License-Identifier: MIT
/* root-filesystem tarballs through libarchive as a file-view source (placeholder: being written). */
#include "files/ftree.h"

int ft_open_tar(const char *path, struct ft_source **out, struct err *e)
{
	return err_set(e, EI_EFORMAT, "%s: not a tar (not built yet)", path);
}
