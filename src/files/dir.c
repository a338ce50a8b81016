// SPDX-License-Identifier: MIT
/* A host directory as a file-view source (placeholder: being written). */
#include "files/ftree.h"

int ft_open_dir(const char *path, struct ft_source **out, struct err *e)
{
	return err_set(e, EI_EFORMAT, "%s: not a directory (not built yet)", path);
}
