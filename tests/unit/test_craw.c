// SPDX-License-Identifier: MIT
/*
 * Unit test of the compressed-raw reader's random access: reads and
 * extents in any order match the bytes gzip, xz and zstd were given, and
 * the disk read backwards block by block matches what gzip -d, xz -d and
 * zstd -d make of the stream, decompressing it a bounded number of times
 * (counted as compressed bytes read), not once per backward read.  The
 * writer's seekable .zst and multi-block .xz are read backwards decoding
 * each frame or block about once, and a range after a corrupt frame reads.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/bytes.h"
#include "core/format.h"
#include "core/kconfig.h"
#include "t.h"

#define N (5u << 20)
#define NB (16u << 20)          /* the disk read backwards */

static uint8_t disk[N], buf[1u << 20], big[NB], ref[NB];

/* An io that counts the bytes read through it from another io. */
struct count_io {
	struct io io;
	struct io *in;
	uint64_t bytes;
};

static int count_pread(struct io *io, void *buf, size_t len, uint64_t off,
		       struct err *e)
{
	struct count_io *c = (struct count_io *)io;

	c->bytes += len;
	return io_read(c->in, buf, len, off, "count", e);
}

static void count_close(struct io *io)
{
	io_close(((struct count_io *)io)->in);
}

static const struct io_ops count_ops = {
	.pread = count_pread,
	.close = count_close,
};

/*
 * Read the disk in @path backwards in blocks of @bs bytes, each block
 * against @ref (the tool's decompression of it): 0 if all match, with
 * *@passes the compressed bytes read over the file size.
 */
static int read_backwards(const char *path, const uint8_t *ref, size_t bs,
			  double *passes)
{
	static struct count_io c = { .io.ops = &count_ops };
	struct err e = { 0 };
	struct vdisk *vd;
	uint64_t off = NB;
	int bad = 0;

	if (io_open_file(path, 0, &c.in, &e) < 0) {
		CHECK(0, "open %s: %s", path, e.msg);
		return -1;
	}
	c.bytes = 0;
	c.io.size = c.in->size;
	c.io.flags = c.in->flags;
	snprintf(c.io.name, sizeof(c.io.name), "%s", path);
	if (vdisk_open_io(&c.io, "/tmp", NULL, &vd, &e) < 0) {
		CHECK(0, "open %s as a disk: %s", path, e.msg);
		return -1;
	}
	while (off && !bad) {
		size_t n = (size_t)(off % bs ? off % bs : bs);
		struct extent x;

		off -= n;
		if (vdisk_read(vd, buf, n, off, &e) < 0 || memcmp(buf, ref + off, n))
			bad = printf("backwards: block at %llu: %s\n",
				     (unsigned long long)off, e.msg);
		else if (vdisk_extent(vd, off, n, &x, &e) < 0 ||
			 (x.type == EXT_ZERO && !buf_is_zero(buf, (size_t)x.len)))
			bad = printf("backwards: extent at %llu: %s\n",
				     (unsigned long long)off, e.msg);
	}
	*passes = (double)c.bytes / (double)c.in->size;
	vdisk_close(vd);
	return bad ? -1 : 0;
}

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

/*
 * A 16 MiB disk backwards, 256 KiB at a time (64 reads, 15 of them before
 * the reader's 1 MiB window): the bytes the tool decompresses, and at most
 * 3 passes over the stream (counting the size at open, reading forward to
 * the end, the one restart that fills the spool; plus the probe's and the
 * xz index's reads), not one per backward read (about 9.5).  With no spool possible ($TMPDIR missing) the reads
 * still match.
 */
static void test_backwards(const char *tool, const char *dtool, const char *ext)
{
	char raw[] = "/tmp/edgeimg-craw-XXXXXX", cmd[512], path[64], back[64];
	const char *tmpdir = getenv("TMPDIR");
	double passes = 0;
	FILE *f;
	int fd = mkstemp(raw), r;

	if (fd < 0 || write(fd, big, NB) != (ssize_t)NB) {
		CHECK(0, "cannot write %s", raw);
		return;
	}
	close(fd);
	snprintf(path, sizeof(path), "%s.%s", raw, ext);
	snprintf(back, sizeof(back), "%s.back", raw);
	snprintf(cmd, sizeof(cmd), "%s <%s >%s && %s <%s >%s", tool, raw, path,
		 dtool, path, back);
	r = system(cmd);
	unlink(raw);
	f = fopen(back, "rb");
	CHECK(!r && f && fread(ref, 1, NB, f) == NB && fgetc(f) == EOF &&
	      !memcmp(ref, big, NB),
	      "setup: %s gave %s of another size", cmd, back);
	if (f)
		fclose(f);
	unlink(back);
	if (!r) {
		CHECK(read_backwards(path, ref, 256u << 10, &passes) == 0,
		      "%s: backwards reads match %s", ext, dtool);
		CHECK(passes < 3.5, "%s: %.2f passes over the stream for 64 backward reads",
		      ext, passes);
		printf("test_craw: %s read backwards in 64 blocks: %.2f passes over the stream\n",
		       ext, passes);
		setenv("TMPDIR", "/nonexistent/edgeimg", 1);
		CHECK(read_backwards(path, ref, 1u << 20, &passes) == 0,
		      "%s: backwards reads without a spool match %s", ext, dtool);
		if (tmpdir)
			setenv("TMPDIR", tmpdir, 1);
		else
			unsetenv("TMPDIR");
	}
	unlink(path);
}

/*
 * @opts: edgeimg's writer makes @disk into a seekable .zst or a multi-block
 * .xz of 1 MiB frames; read backwards in 256 KiB blocks it decodes about one
 * pass; with frame 2 corrupt, the disk still opens, reads of frames 0..1
 * and 3..4 match, a read in frame 2 fails naming it.
 */
static void test_indexed(const char *opts, const char *what)
{
	char raw[] = "/tmp/edgeimg-craw-XXXXXX", path[64];
	const struct img_format *f = format_find("craw");
	struct write_opts wo = { .options = opts, .threads = 2, .mem_cap = 64u << 20 };
	struct vdisk *src = NULL, *vd = NULL;
	struct io *out = NULL;
	struct err e = { 0 };
	double passes = 0;
	uint8_t b[64];
	int fd = mkstemp(raw), r;

	if (fd < 0 || write(fd, disk, N) != (ssize_t)N) {
		CHECK(0, "cannot write %s", raw);
		return;
	}
	close(fd);
	snprintf(path, sizeof(path), "%s.%s", raw, what);
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	if (fd >= 0)
		close(fd);
	r = vdisk_open(raw, NULL, &src, &e);
	if (!r)
		r = io_open_file(path, IO_OPEN_RW, &out, &e);
	if (!r)
		r = f->write(src, out, &wo, &e);
	CHECK(r == 0, "%s: write: %s", what, e.msg);
	io_close(out);
	vdisk_close(src);
	unlink(raw);
	if (r) {
		unlink(path);
		return;
	}
	{
		/* read_backwards() reads NB bytes: only N here, so read by hand. */
		struct count_io c = { .io.ops = &count_ops };

		CHECK(io_open_file(path, 0, &c.in, &e) == 0, "%s: open: %s", what, e.msg);
		c.io.size = c.in->size;
		c.io.flags = c.in->flags;
		snprintf(c.io.name, sizeof(c.io.name), "%s", path);
		CHECK(vdisk_open_io(&c.io, "/tmp", NULL, &vd, &e) == 0, "%s: open: %s", what, e.msg);
		for (uint64_t off = N; vd && off;) {
			size_t n = (size_t)(off % (256u << 10) ? off % (256u << 10) : 256u << 10);

			off -= n;
			if (vdisk_read(vd, buf, n, off, &e) < 0 || memcmp(buf, disk + off, n)) {
				CHECK(0, "%s: backwards read at %llu: %s", what,
				      (unsigned long long)off, e.msg);
				break;
			}
		}
		passes = (double)c.bytes / (double)c.in->size;
		CHECK(passes < 1.5, "%s: %.2f passes over the file read backwards", what, passes);
		printf("test_craw: %s read backwards in 256 KiB blocks: %.2f passes\n", what, passes);
		vdisk_close(vd);
		vd = NULL;
	}
	/* zstd: corrupt the middle of frame 2 (disk bytes 2..3 MiB), found in the seek table. */
	if (!strcmp(what, "zst")) {
		FILE *fp = fopen(path, "r+b");
		long end = fp && !fseek(fp, 0, SEEK_END) ? ftell(fp) : -1;
		uint8_t t[9 + 8 * 5];
		uint64_t off;

		CHECK(end > (long)sizeof(t) && !fseek(fp, end - 9 - 8 * 5, SEEK_SET) &&
		      fread(t, 1, sizeof(t), fp) == sizeof(t) && get_le32(t + 8 * 5) == 5,
		      "%s: a seek table of 5 entries at the end", what);
		off = (uint64_t)get_le32(t) + get_le32(t + 8) + get_le32(t + 16) / 2;
		memset(b, 0xa5, sizeof(b));
		CHECK(!fseek(fp, (long)off, SEEK_SET) && fwrite(b, 1, sizeof(b), fp) == sizeof(b),
		      "%s: corrupt frame 2", what);
		if (fp)
			fclose(fp);
		CHECK(vdisk_open(path, NULL, &vd, &e) == 0, "%s: a corrupt frame 2: open: %s",
		      what, e.msg);
		if (vd) {
			static const uint64_t ok[] = { 4u << 20, 0, (3u << 20) + 5, N - 10 };

			for (size_t k = 0; k < sizeof(ok) / sizeof(ok[0]); k++)
				CHECK(vdisk_read(vd, buf, 10, ok[k], &e) == 0 &&
				      !memcmp(buf, disk + ok[k], 10),
				      "%s: read at %llu, off the corrupt frame: %s", what,
				      (unsigned long long)ok[k], e.msg);
			e.msg[0] = 0;
			CHECK(vdisk_read(vd, buf, 10, (2u << 20) + 100, &e) < 0 &&
			      strstr(e.msg, "entry 2"),
			      "%s: read in the corrupt frame fails naming entry 2: %s", what, e.msg);
			vdisk_close(vd);
		}
	}
	unlink(path);
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
	for (size_t i = 0; i < NB; i++) {
		x = x * 1103515245 + 12345;
		big[i] = (i >> 20) % 5 == 1 ? 0 : i % 61 ? (uint8_t)((i >> 12) + i % 7) :
			 (uint8_t)(x >> 16);
	}
	test_one("gzip -c", "gz");
	test_backwards("gzip -c", "gzip -dc", "gz");
	if (IS_ENABLED(CONFIG_CODEC_XZ)) {
		test_one("xz -c -T1", "xz");
		test_backwards("xz -c -0 -T1", "xz -dc", "xz");
	}
	if (IS_ENABLED(CONFIG_CODEC_ZSTD)) {
		test_one("zstd -q -c", "zst");
		test_backwards("zstd -q -c", "zstd -dcq", "zst");
		test_indexed("compression=zstd,level=1,block_size=1M", "zst");
	}
	if (IS_ENABLED(CONFIG_CODEC_XZ))
		test_indexed("compression=xz,level=1,block_size=1M", "xz");
	return t_done("test_craw");
}
