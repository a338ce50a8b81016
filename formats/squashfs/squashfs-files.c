// SPDX-License-Identifier: MIT
/* a squashfs root filesystem as a file-view source (placeholder: being written). */
#include "files/ftree.h"

int ft_open_squashfs(struct vdisk *vd, const char *what, struct ft_source **out, struct err *e)
{
	return err_set(e, EI_EFORMAT, "%s: not a squashfs (not built yet)", what);
}
