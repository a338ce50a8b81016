// SPDX-License-Identifier: MIT
/*
 * libFuzzer entry point for the tar source (src/files/tar-read.c) and,
 * behind it, the tar consumer (src/files/tar-write.c): the input, as a
 * plain or compressed tar over the in-memory I/O, is walked by
 * ft_write_tar(), which reads every member's data (and holes) and writes
 * a pax archive to an output that keeps nothing, capped.  Seeds: seed-tar.sh.
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/format.h"
#include "core/io.h"
#include "files/ftree.h"
#include "files/tar.h"

/* Keep one input's work bounded: a member may claim a huge size or hole. */
#define FUZZ_OUT_CAP (64u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An output that keeps nothing, refusing writes past FUZZ_OUT_CAP. */
static int null_pwrite(struct io *io, const void *buf, size_t len, uint64_t off,
		       struct err *e)
{
	(void)buf;
	if (off > FUZZ_OUT_CAP || len > FUZZ_OUT_CAP - off)
		return err_set(e, EI_ELIMIT, "fuzz: output past %u bytes", FUZZ_OUT_CAP);
	if (off + len > io->size)
		io->size = off + len;
	return 0;
}

static void null_close(struct io *io)
{
	(void)io;
}

static const struct io_ops null_ops = { .pwrite = null_pwrite, .close = null_close };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct write_opts wo = { .threads = 1 };
	struct err e = { 0 };
	struct ft_source *s;
	struct io *in, out = { .ops = &null_ops, .flags = IO_WRITABLE, .name = "null" };

	if (io_mem_new(data, size, 0, &in, &e) < 0)
		return 0;
	if (tar_open_io(in, "fuzz", &s, &e) < 0)
		return 0;
	ft_write_tar(s, &out, &wo, &e);
	ft_close(s);
	return 0;
}
