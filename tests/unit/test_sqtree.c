// SPDX-License-Identifier: MIT
/*
 * Unit tests of ft_write_squashfs() on a source built in memory, visiting
 * as a tar does (archive order, parents missing or given after their
 * entries, an entry given twice): unsquashfs extracts the result and the
 * extracted tree is checked by stat(); the same bytes for any thread count;
 * each refused tree with its error code and message, and a source's error
 * passed through.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/kconfig.h"
#include "core/format.h"
#include "core/io.h"
#include "core/limits.h"
#include "files/ftree.h"
#include "t.h"

#if IS_ENABLED(CONFIG_FILES) && IS_ENABLED(CONFIG_OUTPUT_SQUASHFS)

#define BS 4096

struct ment {
	struct ft_entry ent;
	const char *pattern;    /* data: this string repeated, or zeros */
	uint64_t hole_from, hole_to;    /* reported by hole() and read as zeros */
	int read_err;
};

struct mfile {
	const struct ment *m;
	uint64_t last;
	int backwards;
};

static uint8_t mbyte(const struct ment *m, uint64_t p)
{
	if ((p >= m->hole_from && p < m->hole_to) || !m->pattern)
		return 0;
	return (uint8_t)m->pattern[p % strlen(m->pattern)];
}

static int mread(struct ft_file *f, uint64_t off, void *buf, size_t len, struct err *e)
{
	struct mfile *mf = f->priv;

	if (off < mf->last)
		mf->backwards = 1;
	mf->last = off + len;
	if (mf->m->read_err)
		return err_set(e, -EIO, "mem: %s: read error", mf->m->ent.path);
	for (size_t i = 0; i < len; i++)
		((uint8_t *)buf)[i] = mbyte(mf->m, off + i);
	return 0;
}

static int mhole(struct ft_file *f, uint64_t off, uint64_t *len, struct err *e)
{
	struct mfile *mf = f->priv;
	uint64_t end = mf->m->hole_to < mf->m->ent.size ? mf->m->hole_to : mf->m->ent.size;

	(void)e;
	*len = off >= mf->m->hole_from && off < end ? end - off : 0;
	return 0;
}

struct msrc {
	const struct ment *m;
	size_t n;
	int backwards;
};

static int mwalk(struct ft_source *s, ft_visit_fn visit, void *arg, struct err *e)
{
	struct msrc *ms = s->priv;

	for (size_t i = 0; i < ms->n; i++) {
		const struct ment *m = &ms->m[i];
		struct mfile mf = { m, 0, 0 };
		struct ft_file f = { mread, m->hole_to ? mhole : NULL, &mf };
		int r = visit(arg, &m->ent, m->ent.type == FT_REG && !m->ent.link_to ? &f : NULL, e);

		ms->backwards |= mf.backwards;
		if (r < 0)
			return r;
	}
	return 0;
}

static void mclose(struct ft_source *s)
{
	(void)s;
}

static const struct ft_source_ops mops = { .name = "memory", .walk = mwalk, .close = mclose };

/* Write @m as a squashfs into memory; the error code, @e holding its message. */
static int mwrite(const struct ment *m, size_t n, unsigned threads, const char *options,
		  struct io **out, struct err *e)
{
	struct msrc ms = { m, n, 0 };
	struct ft_source src = { .ops = &mops, .what = "memory", .mkfs_time = -1, .priv = &ms };
	struct write_opts wo = { .options = options, .threads = threads, .mem_cap = EI_MEM_CAP };
	int r;

	memset(e, 0, sizeof(*e));
	r = io_mem_new(NULL, 0, 64u << 20, out, e);
	if (r < 0)
		return r;
	r = ft_write_squashfs(&src, *out, &wo, e);
	CHECK(!ms.backwards, "reads at increasing offsets");
	return r;
}

#define REG(p, md, sz, pat) { .ent = { .path = p, .type = FT_REG, .mode = md, .size = sz, \
				       .mtime = 1000 }, .pattern = pat }

static void test_tar_order(void)
{
	static const struct ment m[] = {
		{ .ent = { .path = "b/c/file", .type = FT_REG, .mode = 0640, .uid = 1, .gid = 2,
			   .mtime = 1000, .size = 5, .ino = 9, .nlink = 2 }, .pattern = "hello" },
		{ .ent = { .path = "a", .type = FT_DIR, .mode = 0711, .mtime = 2000 } },
		{ .ent = { .path = "b", .type = FT_DIR, .mode = 0700, .mtime = 3000 } },
		{ .ent = { .path = "b/c/hl", .type = FT_REG, .mode = 0640, .ino = 9, .nlink = 2,
			   .link_to = "b/c/file" } },
		{ .ent = { .path = "z", .type = FT_SYMLINK, .mode = 0777, .mtime = 4000,
			   .target = "b/c/file" } },
		{ .ent = { .path = "sparse", .type = FT_REG, .mode = 0644, .mtime = 1000,
			   .size = 5 * BS + 100 }, .pattern = "abc", .hole_from = BS,
		  .hole_to = 3 * BS + 50 },
		{ .ent = { .path = "dup", .type = FT_REG, .mode = 0644, .mtime = 1000,
			   .size = 5 * BS + 100 }, .pattern = "abc", .hole_from = BS,
		  .hole_to = 3 * BS + 50 },
		{ .ent = { .path = "a", .type = FT_DIR, .mode = 0755, .mtime = 2500 } },
		{ .ent = { .path = "a/fifo", .type = FT_FIFO, .mode = 0600, .mtime = 100 } },
	};
	char dir[] = "/tmp/edgeimg-sqtree-XXXXXX", path[256], cmd[512];
	struct err e;
	struct io *io = NULL, *io3 = NULL;
	struct stat st, st2;
	FILE *f;
	int r;

	r = mwrite(m, sizeof(m) / sizeof(m[0]), 1, "block_size=4096", &io, &e);
	CHECK(r == 0, "write: %s", e.msg);
	r = mwrite(m, sizeof(m) / sizeof(m[0]), 3, "block_size=4096", &io3, &e);
	CHECK(r == 0, "write -j3: %s", e.msg);
	if (!io || !io3 || !mkdtemp(dir))
		goto out;
	CHECK(io->end == io3->end && !memcmp(io_mem_data(io), io_mem_data(io3), io->end),
	      "1 and 3 threads: the same bytes");
	snprintf(path, sizeof(path), "%s/t.sqfs", dir);
	f = fopen(path, "wb");
	if (!f || fwrite(io_mem_data(io), 1, io->end, f) != io->end) {
		CHECK(0, "cannot write %s", path);
		if (f)
			fclose(f);
		goto out;
	}
	fclose(f);
	snprintf(cmd, sizeof(cmd), "unsquashfs -q -n -d %s/x %s >/dev/null", dir, path);
	r = system(cmd);
	CHECK(r == 0, "%s", cmd);
	if (r)
		goto out;
#define ST(p) (snprintf(path, sizeof(path), "%s/x/%s", dir, p), lstat(path, &st) == 0)
	CHECK(ST("") && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0755 && st.st_mtime == 4000,
	      "the root made: 0755, the newest time (mode %o, mtime %lld)", st.st_mode,
	      (long long)st.st_mtime);
	CHECK(ST("a") && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0755 && st.st_mtime == 2500,
	      "a given twice: the later one (mode %o, mtime %lld)", st.st_mode,
	      (long long)st.st_mtime);
	CHECK(ST("b") && (st.st_mode & 07777) == 0700 && st.st_mtime == 3000,
	      "b given after its entries (mode %o)", st.st_mode);
	CHECK(ST("b/c") && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0755,
	      "b/c made as a parent (mode %o)", st.st_mode);
	CHECK(ST("b/c/file") && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0640 &&
	      st.st_size == 5 && st.st_mtime == 1000 && st.st_nlink == 2,
	      "b/c/file (mode %o, size %lld, nlink %u)", st.st_mode, (long long)st.st_size,
	      (unsigned)st.st_nlink);
	if (getuid() == 0)
		CHECK(st.st_uid == 1 && st.st_gid == 2, "owner 1:2 (%u:%u)", st.st_uid, st.st_gid);
	st2 = st;
	CHECK(ST("b/c/hl") && st.st_ino == st2.st_ino, "b/c/hl: the same inode");
	CHECK(ST("z") && S_ISLNK(st.st_mode) && st.st_size == 8, "z: a symlink");
	CHECK(ST("a/fifo") && S_ISFIFO(st.st_mode), "a/fifo");
	for (int i = 5; i <= 6; i++) {
		uint8_t buf[5 * BS + 100];
		int ok;

		f = ST(m[i].ent.path) ? fopen(path, "rb") : NULL;
		ok = f && fread(buf, 1, sizeof(buf), f) == sizeof(buf) && fgetc(f) == EOF;
		for (size_t p = 0; ok && p < sizeof(buf); p++)
			ok = buf[p] == mbyte(&m[i], p);
		CHECK(ok, "%s: the data, with its hole", m[i].ent.path);
		if (f)
			fclose(f);
	}
#undef ST
out:
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		CHECK(0, "%s", cmd);
	io_close(io);
	io_close(io3);
}

static void refused(const char *what, const struct ment *m, size_t n, const char *options,
		    int code, const char *msg)
{
	struct io *io = NULL;
	struct err e;
	int r = mwrite(m, n, 2, options, &io, &e);

	CHECK(r == code && strstr(e.msg, msg), "%s: %d (%s), expected %d (%s)", what, r, e.msg,
	      code, msg);
	io_close(io);
}

static void test_refused(void)
{
	static char longname[300], longpath[FT_PATH_MAX + 2], longtarget[4200];
	struct ment m[2];

	memset(longname, 'n', 256);
	memset(longpath, 'p', sizeof(longpath) - 1);
	for (size_t i = 100; i < sizeof(longpath) - 1; i += 101)
		longpath[i] = '/';
	memset(longtarget, 't', 4096);

	memset(m, 0, sizeof(m));
	m[0] = (struct ment)REG("x/../y", 0644, 0, NULL);
	refused("a .. component", m, 1, NULL, EI_EUSAGE, "\"..\"");
	m[0] = (struct ment)REG(longname, 0644, 0, NULL);
	refused("a name of 256 bytes", m, 1, NULL, EI_ELIMIT, "a name of 256 bytes");
	m[0] = (struct ment)REG(longpath, 0644, 0, NULL);
	refused("a path of 4096 bytes", m, 1, NULL, EI_ELIMIT, "a path of 4096 bytes");
	m[0] = (struct ment){ .ent = { .path = "dev", .type = FT_CHR, .rdev_major = 5000,
				       .rdev_minor = 1 } };
	refused("major 5000", m, 1, NULL, EI_ELIMIT, "dev: device 5000,1");
	m[0] = (struct ment){ .ent = { .path = "l", .type = FT_SYMLINK, .target = longtarget } };
	refused("a symlink of 4096 bytes", m, 1, NULL, EI_ELIMIT, "symlink target of 4096 bytes");
	m[0] = (struct ment){ .ent = { .path = "h", .type = FT_REG, .link_to = "nope" } };
	refused("a hard link to nothing", m, 1, NULL, EI_EUSAGE, "h: a hard link to nope");
	m[0] = (struct ment)REG("f", 0644, 3, "abc");
	m[1] = (struct ment)REG("f/x", 0644, 0, NULL);
	refused("an entry under a file", m, 2, NULL, EI_EUSAGE, "f/x: f is a file, not a directory");
	m[0] = (struct ment)REG("", 0644, 0, NULL);
	refused("the root as a file", m, 1, NULL, EI_EUSAGE, "the root is a file");
	m[0] = (struct ment)REG("huge", 0644, 1ull << 62, NULL);
	refused("a file of 2^62 bytes", m, 1, NULL, EI_ELIMIT, "huge: 4611686018427387904 bytes need a block list");
	m[0] = (struct ment)REG("f", 0644, 3 * BS, "abc");
	m[0].read_err = 1;
	refused("a source's error", m, 1, NULL, -EIO, "mem: f: read error");
	m[0] = (struct ment)REG("f", 0644, 3, "abc");
	refused("name=", m, 1, "name=x.img", EI_EUSAGE, "name=");
	refused("partitions=", m, 1, "partitions=off", EI_EUSAGE, "partitions=");
}

int main(void)
{
	if (system("command -v unsquashfs >/dev/null 2>&1") == 0)
		test_tar_order();
	else if (getenv("CI"))
		CHECK(0, "oracle unsquashfs is missing (CI must install it)");
	else
		printf("SKIP test_sqtree: unsquashfs is missing\n");
	test_refused();
	return t_done("test_sqtree");
}

#else

int main(void)
{
	return t_done("test_sqtree");
}

#endif
