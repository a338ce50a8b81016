// SPDX-License-Identifier: MIT
/* Unit tests of the I/O back-ends, the registry and the raw vdisk. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/format.h"
#include "core/io.h"
#include "t.h"

static void test_mem(void)
{
	static const uint8_t data[10] = "0123456789";
	struct err e = { 0 };
	struct io *io, *w;
	uint8_t b[16];

	CHECK(io_mem_new(data, sizeof(data), 0, &io, &e) == 0, "mem ro");
	CHECK(io_read(io, b, 4, 6, "test: table", &e) == 0 && !memcmp(b, "6789", 4),
	      "read at the end");
	CHECK(io_read(io, b, 5, 6, "test: table", &e) == EI_ETRUNC, "past the end");
	CHECK(strstr(e.msg, "test: table at 6+5 lies past the end of <memory> (10 bytes)"),
	      "message names what and where: %s", e.msg);
	CHECK(io_read(io, b, 1, UINT64_MAX, "x", &e) == EI_ETRUNC, "huge offset");
	CHECK(io_write(io, b, 1, 0, &e) == -EROFS, "read-only memory");
	io_close(io);

	CHECK(io_mem_new(NULL, 0, 100, &w, &e) == 0, "mem rw");
	CHECK(io_write(w, "abc", 3, 50, &e) == 0 && w->size == 53, "write grows");
	CHECK(io_mem_data(w)[0] == 0 && io_mem_data(w)[52] == 'c', "gap is zero");
	CHECK(io_write(w, "abc", 3, 98, &e) == EI_ELIMIT, "cap enforced");
	CHECK(io_write(w, "abc", 3, UINT64_MAX - 1, &e) < 0, "offset overflow");
	CHECK(io_truncate(w, 10, &e) == 0 && w->size == 10, "truncate");
	io_close(w);
}

static void test_file(void)
{
	char path[] = "/tmp/edgeimg-test-io-XXXXXX";
	struct err e = { 0 };
	struct io *io;
	uint8_t b[8];
	uint64_t run;
	int fd = mkstemp(path);

	CHECK(fd >= 0, "mkstemp");
	CHECK(pwrite(fd, "data", 4, 1 << 20) == 4, "pwrite");
	CHECK(ftruncate(fd, 4 << 20) == 0, "ftruncate");
	close(fd);
	CHECK(io_open_file(path, 0, &io, &e) == 0 && io->size == 4 << 20, "open");
	CHECK(io_read(io, b, 4, 1 << 20, "x", &e) == 0 && !memcmp(b, "data", 4), "read");
	CHECK(io->ops->pread(io, b, 8, (4 << 20) - 4, &e) == EI_ETRUNC,
	      "short read is an error");
	/* File systems without SEEK_HOLE report all data; both are right. */
	if (io_probe_data(io, 0, 4 << 20, &run, &e) == 0)
		CHECK(run > 0 && run <= 1 << 20, "leading hole of %llu", (unsigned long long)run);
	CHECK(io_probe_data(io, 1 << 20, 4096, &run, &e) == 1 && run > 0 && run <= 4096,
	      "data at 1 MiB");
	io_close(io);
	CHECK(io_open_file("/nonexistent/x", 0, &io, &e) == -ENOENT &&
	      strstr(e.msg, "/nonexistent/x: No such file"), "missing: %s", e.msg);
	CHECK(io_open_file("/tmp", 0, &io, &e) == -EISDIR, "directory");
	unlink(path);
}

static void test_registry(void)
{
	static const uint8_t zero[512];
	const struct img_format *f = NULL;
	struct open_opts oo = { .format = "nosuch" };
	struct vdisk *vd;
	struct err e = { 0 };
	struct extent ext;
	struct io *io;
	uint8_t b[4];

	CHECK(format_find("raw") && !format_find("nosuch"), "format_find");
	{
		const struct img_format *const *p = img_formats;

		while (p[1])
			p++;
		CHECK(!strcmp((*p)->name, "raw"), "raw is last");
	}
	CHECK(format_probe(zero, sizeof(zero), NULL, 0, 512, &f, &e) == 0 &&
	      !strcmp(f->name, "raw"), "zeros probe as raw");
	io_mem_new(zero, sizeof(zero), 0, &io, &e);
	CHECK(vdisk_open_io(io, ".", &oo, &vd, &e) == EI_EUSAGE, "unknown -f");
	io_mem_new(zero, sizeof(zero), 0, &io, &e);
	CHECK(vdisk_open_io(io, ".", NULL, &vd, &e) == 0 && vd->size == 512, "open raw");
	CHECK(vdisk_read(vd, b, 4, 510, &e) == -EINVAL, "read past the disk");
	CHECK(vdisk_extent(vd, 0, 512, &ext, &e) == 0 && ext.type == EXT_DATA &&
	      ext.len == 512, "memory is all data");
	CHECK(vdisk_extent(vd, 0, 0, &ext, &e) == -EINVAL, "empty extent query");
	vdisk_close(vd);
}

int main(void)
{
	test_mem();
	test_file();
	test_registry();
	return t_done("test_io");
}
