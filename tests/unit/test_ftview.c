// SPDX-License-Identifier: MIT
/*
 * Unit tests of the file-tree view (src/delta/delta-format.md, "Root
 * filesystems: the file-tree view"): a root filesystem written from a
 * directory, its view read back, and the root filesystem rebuilt from the
 * view (the bytes apply makes) equal to the first; the view's layout
 * checked against the spec by walking it here; then views poked one field
 * at a time, each refused by ftv_source() with its error code and a
 * message naming the rule.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/bytes.h"
#include "core/format.h"
#include "core/io.h"
#include "core/kconfig.h"
#include "core/limits.h"
#include "core/vdisk.h"
#include "files/ftree.h"
#include "t.h"

#if IS_ENABLED(CONFIG_FILES) && IS_ENABLED(CONFIG_OUTPUT_SQUASHFS) && \
	IS_ENABLED(CONFIG_FORMAT_SQUASHFS)

static char dir[64];

static void put(const char *rel, const void *data, size_t len)
{
	char p[256];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		printf("setup: %s: %s\n", p, strerror(errno));
	close(fd);
}

static uint8_t *slurp(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *b;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st) < 0)
		return NULL;
	b = malloc((size_t)st.st_size + 1);
	if (b && read(fd, b, (size_t)st.st_size) != st.st_size) {
		free(b);
		b = NULL;
	}
	close(fd);
	*len = (size_t)st.st_size;
	return b;
}

static int spill(const char *path, const uint8_t *b, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644), ok;

	if (fd < 0)
		return -1;
	ok = write(fd, b, len) == (ssize_t)len;
	close(fd);
	return ok ? 0 : -1;
}

/* ft_write_squashfs() of @src into @path (default options, 1 thread). */
static int write_sqfs(struct ft_source *src, const char *path, struct err *e)
{
	struct write_opts wo = { 0 };
	struct io *io;
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), r;

	if (fd < 0)
		return err_errno(e, errno, "%s", path);
	r = io_open_fd(fd, path, IO_OPEN_RW, &io, e);
	if (r < 0)
		return r;
	wo.threads = 1;
	wo.mem_cap = EI_MEM_CAP;
	r = ft_write_squashfs(src, io, &wo, e);
	io_close(io);
	return r;
}

/* The root filesystem rebuilt from the view in @view_path into @out. */
static int rebuild(const char *view_path, const char *out, struct err *e)
{
	struct open_opts oo = { .format = "raw" };
	struct ft_source *src;
	struct vdisk *vd;
	int r = vdisk_open(view_path, &oo, &vd, e);

	if (r < 0)
		return r;
	r = ftv_source(vd, &src, e);
	if (r >= 0) {
		r = write_sqfs(src, out, e);
		ft_close(src);
	}
	vdisk_close(vd);
	return r;
}

/* The offsets of the records of the view @v (@n bytes), by the spec. */
static size_t records(const uint8_t *v, size_t n, size_t *at, size_t max)
{
	size_t pos = 4096, k = 0;

	while (k < max && pos + 16 <= n && !memcmp(v + pos, "EIFE", 4)) {
		uint32_t len = get_le32(v + pos + 4);

		at[k++] = pos;
		if (!v[pos + 8])
			break;
		pos += len;
		if (v[pos - len + 8] == 1 && !get_le16(v + pos - len + 52) &&
		    get_le64(v + pos - len + 32))
			pos = ((pos + 4095) & ~(size_t)4095) + get_le64(v + pos - len + 32);
		pos = (pos + 7) & ~(size_t)7;
	}
	return k;
}

struct poke {
	const char *what;
	int code;
	const char *msg;
};

static void refused(const uint8_t *view, size_t n, size_t off, const uint8_t *bytes,
		    size_t blen, size_t trunc, const struct poke *p)
{
	uint8_t *c = malloc(n);
	char vpath[96], opath[96];
	struct err e = { 0 };
	int r;

	memcpy(c, view, n);
	memcpy(c + off, bytes, blen);
	snprintf(vpath, sizeof(vpath), "%s.poked", dir);
	snprintf(opath, sizeof(opath), "%s.poked.sqfs", dir);
	spill(vpath, c, trunc ? trunc : n);
	r = rebuild(vpath, opath, &e);
	CHECK(r == p->code && strstr(e.msg, p->msg), "%s: %d '%s'", p->what, r, e.msg);
	unlink(vpath);
	unlink(opath);
	free(c);
}

int main(void)
{
	char a[96], v[96], b[96], p[128];
	struct open_opts oo = { 0 };
	struct ft_source *src;
	struct vdisk *vd;
	struct err e = { 0 };
	uint8_t *va, *x, *y, big[300000];
	size_t nv, nx, ny, at[64], k;
	int r;

	snprintf(dir, sizeof(dir), "/tmp/test_ftview.XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(p, sizeof(p), "%s/etc", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/usr", dir);
	mkdir(p, 0700);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + i / 1000);
	put("usr/big", big, sizeof(big));
	put("etc/passwd", "root:x:0:0\n", 11);
	put("etc/empty", "", 0);
	snprintf(p, sizeof(p), "%s/usr/big", dir);
	snprintf(a, sizeof(a), "%s/usr/big2", dir);
	CHECK(link(p, a) == 0, "link");
	snprintf(p, sizeof(p), "%s/etc/ln", dir);
	CHECK(symlink("../usr/big", p) == 0, "symlink");
	snprintf(p, sizeof(p), "%s/sparse", dir);
	r = open(p, O_WRONLY | O_CREAT, 0600);
	CHECK(r >= 0 && ftruncate(r, 1 << 20) == 0 && pwrite(r, "x", 1, 600000) == 1,
	      "sparse file");
	close(r);

	/* a root filesystem from the directory, its view, the rebuild */
	snprintf(a, sizeof(a), "%s.a.sqfs", dir);
	snprintf(v, sizeof(v), "%s.view", dir);
	snprintf(b, sizeof(b), "%s.b.sqfs", dir);
	r = ft_open_dir(dir, &src, &e);
	if (r >= 0) {
		r = write_sqfs(src, a, &e);
		ft_close(src);
	}
	CHECK(r >= 0, "root filesystem from the directory: %s", e.msg);
	r = ftv_open_path(a, &oo, &vd, &e);
	CHECK(r >= 0, "the view of it: %s", e.msg);
	if (r < 0)
		return t_done("test_ftview");
	va = malloc(vd->size);
	nv = (size_t)vd->size;
	r = vdisk_read(vd, va, nv, 0, &e);
	CHECK(r >= 0, "the view read: %s", e.msg);
	/* read again at odd offsets, backwards: the same bytes */
	x = malloc(nv);
	for (size_t off = nv; off > 0;) {
		size_t len = off < 777 ? off : 777;

		off -= len;
		if (vdisk_read(vd, x + off, len, off, &e) < 0)
			break;
	}
	CHECK(!memcmp(x, va, nv), "the view read backwards in 777-byte pieces is the same");
	free(x);
	vdisk_close(vd);
	CHECK(spill(v, va, nv) == 0, "spill");
	r = rebuild(v, b, &e);
	CHECK(r >= 0, "rebuilt from the view: %s", e.msg);
	x = slurp(a, &nx);
	y = slurp(b, &ny);
	CHECK(x && y && nx == ny && !memcmp(x, y, nx),
	      "the rebuild is the root filesystem byte for byte (%zu, %zu bytes)", nx, ny);
	free(x);
	free(y);

	/* the layout, by the spec */
	CHECK(!memcmp(va, "EIFTREE\x1a", 8) && get_le32(va + 8) == 1 &&
	      get_le32(va + 12) == 4096 && get_le64(va + 32) == nv && nv % 4096 == 0,
	      "header");
	k = records(va, nv, at, 64);
	/* "", etc, etc/empty, etc/ln, etc/passwd, sparse, usr, usr/big, usr/big2, end */
	CHECK(k == 10 && get_le64(va + 24) == 9, "%zu records, header says %llu", k,
	      (unsigned long long)get_le64(va + 24));
	if (k != 10)
		return t_done("test_ftview");
	CHECK(va[at[0] + 8] == 2 && get_le16(va + at[0] + 48) == 0, "the root first");
	CHECK(va[at[3] + 8] == 3 && !memcmp(va + at[3] + 56 + 6, "../usr/big", 10),
	      "etc/ln: a symlink and its target");
	CHECK(va[at[5] + 8] == 1 && va[at[5] + 9] == 1, "sparse: flagged sparse");
	CHECK(va[at[7] + 8] == 1 && get_le64(va + at[7] + 32) == sizeof(big), "usr/big");
	{
		size_t d = ((at[7] + get_le32(va + at[7] + 4) + 4095) & ~(size_t)4095);

		CHECK(!memcmp(va + d, big, sizeof(big)), "usr/big's data at the next 4 KiB");
	}
	CHECK(get_le16(va + at[8] + 52) == 7 && get_le64(va + at[8] + 32) == 0 &&
	      !memcmp(va + at[8] + 56 + 8, "usr/big", 7),
	      "usr/big2: a hard link to usr/big, no data");
	CHECK(va[at[9] + 8] == 0 && get_le32(va + at[9] + 4) == 16, "the end record");

	/* poked views */
	{
		uint8_t z[8] = { 0 }, ff[8] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
		uint8_t nine = 9, one = 1, nul = 0, ctl = 0x01, two[2] = { 2, 0 };
		uint8_t long_link[2] = { 12, 0 }, mode[4] = { 0, 0x10, 0, 0 };
		uint8_t eight[8];
		const struct poke pk[] = {
			{ "magic", EI_EFORMAT, "no magic" },
			{ "version", EI_ECORRUPT, "header version" },
			{ "entries", EI_ECORRUPT, "does not end the view" },
			{ "record length", EI_ECORRUPT, "a record length out of bounds" },
			{ "type", EI_ECORRUPT, "a bad type, flag or mode" },
			{ "NUL in a path", EI_ECORRUPT, "a path, link or target with a NUL" },
			{ "order", EI_ECORRUPT, "entries out of order" },
			{ "size past the end", EI_ECORRUPT, "a file's data past the view's end" },
			{ "mode", EI_ECORRUPT, "a bad type, flag or mode" },
			{ "a file with a symlink target", EI_ECORRUPT, "fields that do not fit" },
			{ "record magic", EI_ECORRUPT, "no record magic" },
			{ "truncated", EI_ECORRUPT, "view bytes" },
			{ "a link length past the record", EI_ECORRUPT, "string lengths out of bounds" },
			{ "mkfs_time", EI_ECORRUPT, "mkfs_time" },
			{ "the root not first", EI_ECORRUPT, "a first entry that is not the root" },
			{ "the sparse flag on a directory", EI_ECORRUPT, "fields that do not fit" },
		};

		refused(va, nv, 0, z, 1, 0, &pk[0]);
		refused(va, nv, 8, two, 1, 0, &pk[1]);
		put_le64(eight, get_le64(va + 24) + 1);
		refused(va, nv, 24, eight, 8, 0, &pk[2]);
		refused(va, nv, at[1] + 4, ff, 4, 0, &pk[3]);
		refused(va, nv, at[1] + 8, &nine, 1, 0, &pk[4]);
		refused(va, nv, at[4] + 56 + 1, &nul, 1, 0, &pk[5]);
		refused(va, nv, at[4] + 56, &ctl, 1, 0, &pk[6]);
		put_le64(eight, (uint64_t)nv);
		refused(va, nv, at[7] + 32, eight, 8, 0, &pk[7]);
		refused(va, nv, at[1] + 12, mode, 4, 0, &pk[8]);
		refused(va, nv, at[3] + 8, &one, 1, 0, &pk[9]);
		refused(va, nv, at[6], z, 4, 0, &pk[10]);
		refused(va, nv, 0, z, 0, nv - 4096, &pk[11]);
		refused(va, nv, at[4] + 52, long_link, 2, 0, &pk[12]);
		put_le64(eight, (uint64_t)1 << 40);
		refused(va, nv, 16, eight, 8, 0, &pk[13]);
		refused(va, nv, at[0] + 8, &one, 1, 0, &pk[14]);
		refused(va, nv, at[1] + 9, &one, 1, 0, &pk[15]);
	}
	free(va);
	unlink(a);
	unlink(b);
	unlink(v);
	snprintf(p, sizeof(p), "rm -rf '%s'", dir);
	if (system(p) != 0)
		printf("cleanup failed\n");
	return t_done("test_ftview");
}

#else
int main(void)
{
	return t_done("test_ftview");
}
#endif
