// SPDX-License-Identifier: MIT
/*
 * Unit test of the compressed-raw reader's random access: reads and
 * extents in any order (backwards starts the stream over) match the
 * bytes gzip, xz and zstd were given.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/bytes.h"
#include "core/format.h"
#include "core/kconfig.h"
#include "t.h"

#define N (5u << 20)

static uint8_t disk[N], buf[1u << 20];

static void test_one(const char *tool, const char *ext)
{
	char raw[] = "/tmp/edgeimg-craw-XXXXXX", cmd[256], path[64];
	static const uint64_t offs[] = { 4u << 20, 0, 3u << 20, 12345, (1u << 20) - 7,
					 N - 100, 0, 2u << 20 };
	struct err e = { 0 };
	struct vdisk *vd;
	int fd = mkstemp(raw), r;

	if (fd < 0 || write(fd, disk, N) != (ssize_t)N) {
		CHECK(0, "cannot write %s", raw);
		return;
	}
	close(fd);
	snprintf(path, sizeof(path), "%s.%s", raw, ext);
	snprintf(cmd, sizeof(cmd), "%s <%s >%s", tool, raw, path);
	r = system(cmd);
	unlink(raw);
	if (r) {
		CHECK(0, "%s failed", cmd);
		unlink(path);
		return;
	}
	CHECK(vdisk_open(path, NULL, &vd, &e) == 0, "open %s: %s", path, e.msg);
	unlink(path);
	if (e.code)
		return;
	CHECK(!strcmp(vd->fmt->name, "craw") && vd->size == N, "%s: %s of %llu bytes",
	      ext, vd->fmt->name, (unsigned long long)vd->size);
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		size_t len = (size_t)(N - offs[i] < sizeof(buf) ? N - offs[i] : sizeof(buf));
		struct extent x;

		CHECK(vdisk_read(vd, buf, len, offs[i], &e) == 0 &&
		      !memcmp(buf, disk + offs[i], len),
		      "%s: read of %zu bytes at %llu: %s", ext, len,
		      (unsigned long long)offs[i], e.msg);
		CHECK(vdisk_extent(vd, offs[i], len, &x, &e) == 0 &&
		      (x.type == EXT_DATA || x.type == EXT_ZERO), "%s: extent: %s", ext, e.msg);
		/* An extent says zero only where the bytes are zero. */
		if (x.type == EXT_ZERO)
			CHECK(buf_is_zero(disk + offs[i], (size_t)x.len),
			      "%s: zero extent of %llu at %llu", ext,
			      (unsigned long long)x.len, (unsigned long long)offs[i]);
	}
	CHECK(vdisk_read(vd, buf, 1, N, &e) < 0, "%s: read past the end fails", ext);
	vdisk_close(vd);
}

int main(void)
{
	uint32_t x = 1;

	if (!format_find("craw")) {
		printf("test_craw: craw is not built in\n");
		return t_done("test_craw");
	}
	/* Data, then zeros, then data: some of it compressible. */
	for (size_t i = 0; i < N; i++) {
		x = x * 1103515245 + 12345;
		disk[i] = (i >> 20) == 1 ? 0 : (i >> 12) % 3 ? (uint8_t)(x >> 16) : (uint8_t)i;
	}
	test_one("gzip -c", "gz");
	if (IS_ENABLED(CONFIG_CODEC_XZ))
		test_one("xz -c -T1", "xz");
	if (IS_ENABLED(CONFIG_CODEC_ZSTD))
		test_one("zstd -q -c", "zst");
	return t_done("test_craw");
}
