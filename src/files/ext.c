// SPDX-License-Identifier: MIT
/* ext2/3/4 through libext2fs as a file-view source (placeholder: being written). */
#include "files/ftree.h"

int ft_open_ext(struct vdisk *vd, const char *what, struct ft_source **out, struct err *e)
{
	return err_set(e, EI_EFORMAT, "%s: not an ext2/3/4 filesystem (not built yet)", what);
}
