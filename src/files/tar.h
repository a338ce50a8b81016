/* SPDX-License-Identifier: MIT */
/* The tar source over an io, for the fuzzer (ft_open_tar() opens a path). */
#ifndef EDGEIMG_FILES_TAR_H
#define EDGEIMG_FILES_TAR_H

#include "core/io.h"
#include "files/ftree.h"

/*
 * tar_open_io() - ft_open_tar() over @io, which the source then owns (closed
 * on failure too); @what names it in messages.
 */
int tar_open_io(struct io *io, const char *what, struct ft_source **out, struct err *e);

#endif
