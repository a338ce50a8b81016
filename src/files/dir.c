// SPDX-License-Identifier: MIT
/*
 * A host directory as a file-view source: what mksquashfs and tar read.
 * The walk stays below the directory (no symbolic link is followed, no
 * other filesystem is entered: a mount point is listed as an empty
 * directory, as mksquashfs -one-file-system does) and reads each file
 * once, at increasing offsets, skipping its holes (SEEK_DATA).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "files/ftree.h"

struct dir_link {
	dev_t dev;
	ino_t ino;
	char *path;
};

struct dir_src {
	struct ft_source s;
	char *root;
	dev_t dev;              /* the directory's filesystem */
	void *links;            /* tsearch() tree of struct dir_link */
	char *path;             /* FT_PATH_MAX + 1: the entry being visited */
	char *full;             /* root + "/" + path */
	uint8_t *xbuf;          /* xattr names, then values */
	struct ft_xattr *xattrs;
	uint64_t entries;
	int walked;
};

struct dir_file {
	struct ft_file f;
	int fd;
	const char *path;
};

static int dir_link_cmp(const void *a, const void *b)
{
	const struct dir_link *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static int dir_read(struct ft_file *f, uint64_t off, void *buf, size_t len, struct err *e)
{
	struct dir_file *d = (struct dir_file *)f;
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(d->fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_errno(e, errno, "%s", d->path);
		if (n == 0)
			return err_set(e, EI_ETRUNC, "%s: shrank while it was read", d->path);
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int dir_hole(struct ft_file *f, uint64_t off, uint64_t *len, struct err *e)
{
	struct dir_file *d = (struct dir_file *)f;
	off_t next = lseek(d->fd, (off_t)off, SEEK_DATA);

	*len = 0;
	if (next < 0 && errno == ENXIO) {
		struct stat st;

		/* no data after @off: the rest is a hole */
		if (fstat(d->fd, &st) == 0 && (uint64_t)st.st_size > off)
			*len = (uint64_t)st.st_size - off;
		return 0;
	}
	if (next > (off_t)off)
		*len = (uint64_t)next - off;
	return 0;
}

static int dir_xattr_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ft_xattr *)a)->name, ((const struct ft_xattr *)b)->name);
}

/* The entry's xattrs: user., trusted. and security. names; ACLs warned of. */
static int dir_xattrs(struct dir_src *d, struct ft_entry *ent, struct err *e)
{
	size_t cap = 65536 + (size_t)FT_XATTR_MAX * 16;
	ssize_t n = llistxattr(d->full, (char *)d->xbuf, 65536);
	size_t used, vpos;
	unsigned k = 0;

	ent->n_xattrs = 0;
	if (n < 0 && (errno == ENOTSUP || errno == ENODATA))
		return 0;
	if (n < 0)
		return err_errno(e, errno, "%s: list of extended attributes", ent->path);
	used = (size_t)n;
	vpos = 65536;
	for (size_t i = 0; i < used; i += strlen((char *)d->xbuf + i) + 1) {
		const char *name = (const char *)d->xbuf + i;
		ssize_t v;

		if (!strncmp(name, "system.posix_acl_", 17)) {
			ft_warnf(&d->s, "%s: POSIX ACL not kept (%s)", *ent->path ? ent->path : "/", name);
			continue;
		}
		if (strncmp(name, "user.", 5) && strncmp(name, "trusted.", 8) &&
		    strncmp(name, "security.", 9)) {
			ft_warnf(&d->s, "%s: extended attribute %s not kept", *ent->path ? ent->path : "/", name);
			continue;
		}
		if (k == FT_XATTRS_MAX)
			return err_set(e, EI_ELIMIT, "%s: more than %u extended attributes",
				       ent->path, FT_XATTRS_MAX);
		if (cap - vpos < FT_XATTR_MAX)
			return err_set(e, EI_ELIMIT, "%s: extended attributes of more than %zu bytes",
				       ent->path, cap - 65536);
		v = lgetxattr(d->full, name, d->xbuf + vpos, FT_XATTR_MAX);
		if (v < 0)
			return err_errno(e, errno, "%s: extended attribute %s", ent->path, name);
		d->xattrs[k].name = name;
		d->xattrs[k].value = d->xbuf + vpos;
		d->xattrs[k].size = (uint32_t)v;
		vpos += (size_t)v;
		k++;
	}
	qsort(d->xattrs, k, sizeof(d->xattrs[0]), dir_xattr_cmp);
	ent->xattrs = d->xattrs;
	ent->n_xattrs = k;
	return 0;
}

static int dir_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int dir_walk_at(struct dir_src *d, int dfd, size_t plen, unsigned depth,
		       ft_visit_fn visit, void *arg, struct err *e);

/* Visit the entry at d->path (plen bytes), whose status is @st. */
static int dir_visit(struct dir_src *d, int parent, const char *name, size_t plen,
		     unsigned depth, ft_visit_fn visit, void *arg, struct err *e)
{
	struct ft_entry ent = { .path = d->path };
	struct dir_file df = { .fd = -1 };
	char target[FT_PATH_MAX + 2];
	struct stat st;
	int r, fd = -1;

	if (++d->entries > 100000000)
		return err_set(e, EI_ELIMIT, "%s: more than 100000000 entries", d->root);
	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return err_errno(e, errno, "%s", d->full);
	ent.mode = st.st_mode & 07777;
	ent.uid = st.st_uid;
	ent.gid = st.st_gid;
	ent.mtime = st.st_mtim.tv_sec;
	ent.nlink = (uint32_t)st.st_nlink;
	switch (st.st_mode & S_IFMT) {
	case S_IFREG: ent.type = FT_REG; ent.size = (uint64_t)st.st_size; break;
	case S_IFDIR: ent.type = FT_DIR; break;
	case S_IFLNK: ent.type = FT_SYMLINK; break;
	case S_IFBLK: ent.type = FT_BLK; break;
	case S_IFCHR: ent.type = FT_CHR; break;
	case S_IFIFO: ent.type = FT_FIFO; break;
	case S_IFSOCK: ent.type = FT_SOCK; break;
	default:
		return err_set(e, EI_EUNSUP, "%s: a file of type 0%o", d->full,
			       (unsigned)(st.st_mode & S_IFMT));
	}
	if (ent.type == FT_BLK || ent.type == FT_CHR) {
		ent.rdev_major = major(st.st_rdev);
		ent.rdev_minor = minor(st.st_rdev);
	}
	if (ent.type == FT_SYMLINK) {
		ssize_t n = readlinkat(parent, name, target, sizeof(target));

		if (n < 0)
			return err_errno(e, errno, "%s", d->full);
		if ((size_t)n > FT_PATH_MAX)
			return err_set(e, EI_ELIMIT, "%s: a link target of more than %u bytes",
				       d->full, FT_PATH_MAX);
		target[n] = 0;
		ent.target = target;
	}
	if (ent.type != FT_DIR && st.st_nlink > 1) {
		struct dir_link key = { .dev = st.st_dev, .ino = st.st_ino }, **found, *l;

		ent.ino = ((uint64_t)st.st_dev << 40) ^ (uint64_t)st.st_ino;
		found = tfind(&key, &d->links, dir_link_cmp);
		if (found) {
			ent.link_to = (*found)->path;
		} else {
			l = malloc(sizeof(*l));
			if (!l || !(l->path = strdup(d->path))) {
				free(l);
				return err_set(e, -ENOMEM, "out of memory");
			}
			l->dev = key.dev;
			l->ino = key.ino;
			if (!tsearch(l, &d->links, dir_link_cmp)) {
				free(l->path);
				free(l);
				return err_set(e, -ENOMEM, "out of memory");
			}
		}
	}
	r = dir_xattrs(d, &ent, e);
	if (r < 0)
		return r;
	if (ent.type == FT_REG && !ent.link_to) {
		fd = openat(parent, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			return err_errno(e, errno, "%s", d->full);
		df.f.read = dir_read;
		df.f.hole = dir_hole;
		df.fd = fd;
		df.path = d->full;
	}
	r = visit(arg, &ent, fd >= 0 ? &df.f : NULL, e);
	if (fd >= 0)
		close(fd);
	if (r < 0 || ent.type != FT_DIR)
		return r;
	if (st.st_dev != d->dev)
		return 0;       /* another filesystem mounted here: not entered */
	if (depth >= FT_DEPTH_MAX)
		return err_set(e, EI_ELIMIT, "%s: deeper than %u directories", d->full,
			       FT_DEPTH_MAX);
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return err_errno(e, errno, "%s", d->full);
	r = dir_walk_at(d, fd, plen, depth + 1, visit, arg, e);
	close(fd);
	return r;
}

/* The entries of the directory @dfd (at d->path, @plen bytes), sorted. */
static int dir_walk_at(struct dir_src *d, int dfd, size_t plen, unsigned depth,
		       ft_visit_fn visit, void *arg, struct err *e)
{
	size_t rlen = strlen(d->root);
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int r = 0, fd2 = dup(dfd);
	DIR *dir;

	if (fd2 < 0 || !(dir = fdopendir(fd2))) {
		if (fd2 >= 0)
			close(fd2);
		return err_errno(e, errno, "%s", d->full);
	}
	while ((errno = 0, de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof(*names));

			if (!nn) {
				r = err_set(e, -ENOMEM, "out of memory");
				goto out;
			}
			names = nn;
		}
		if (!(names[n] = strdup(de->d_name))) {
			r = err_set(e, -ENOMEM, "out of memory");
			goto out;
		}
		n++;
	}
	if (errno) {
		r = err_errno(e, errno, "%s", d->full);
		goto out;
	}
	if (n)
		qsort(names, n, sizeof(*names), dir_name_cmp);
	for (size_t i = 0; i < n && r >= 0; i++) {
		size_t len = strlen(names[i]);
		size_t np = plen + (plen ? 1 : 0) + len;

		if (len > FT_NAME_MAX || np > FT_PATH_MAX) {
			r = err_set(e, EI_ELIMIT, "%s/%s: a path of more than %u bytes",
				    d->full, names[i], FT_PATH_MAX);
			break;
		}
		if (plen)
			d->path[plen] = '/';
		memcpy(d->path + np - len, names[i], len + 1);
		memcpy(d->full + rlen + 1, d->path, np + 1);
		r = dir_visit(d, dfd, names[i], np, depth, visit, arg, e);
		d->path[plen] = 0;
		d->full[rlen + 1 + plen] = 0;
	}
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(dir);
	return r;
}

static int dir_walk(struct ft_source *s, ft_visit_fn visit, void *arg, struct err *e)
{
	struct dir_src *d = (struct dir_src *)s;
	size_t rlen = strlen(d->root);
	int r, fd;

	if (d->walked)
		return err_set(e, EI_EUSAGE, "%s: walked twice", d->root);
	d->walked = 1;
	d->path[0] = 0;
	memcpy(d->full, d->root, rlen + 1);
	d->full[rlen] = '/';
	d->full[rlen + 1] = 0;
	fd = open(d->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(e, errno, "%s", d->root);
	/* the root: its own status, through "." */
	r = dir_visit(d, fd, ".", 0, 0, visit, arg, e);
	close(fd);
	return r;
}

static void dir_link_free(void *p)
{
	struct dir_link *l = p;

	free(l->path);
	free(l);
}

static void dir_close(struct ft_source *s)
{
	struct dir_src *d = (struct dir_src *)s;

	tdestroy(d->links, dir_link_free);
	free(d->root);
	free(d->path);
	free(d->full);
	free(d->xbuf);
	free(d->xattrs);
	free(d);
}

static const struct ft_source_ops dir_ops = {
	.name = "directory",
	.walk = dir_walk,
	.close = dir_close,
};

int ft_open_dir(const char *path, struct ft_source **out, struct err *e)
{
	struct dir_src *d = calloc(1, sizeof(*d));
	struct stat st;
	size_t len = strlen(path);

	if (!d)
		return err_set(e, -ENOMEM, "out of memory");
	while (len > 1 && path[len - 1] == '/')
		len--;
	d->root = strndup(path, len);
	d->path = malloc(FT_PATH_MAX + 1);
	d->full = malloc(len + FT_PATH_MAX + 3);
	d->xbuf = malloc(65536 + (size_t)FT_XATTR_MAX * 16);
	d->xattrs = malloc(FT_XATTRS_MAX * sizeof(*d->xattrs));
	if (!d->root || !d->path || !d->full || !d->xbuf || !d->xattrs) {
		dir_close(&d->s);
		return err_set(e, -ENOMEM, "out of memory");
	}
	errno = 0;
	if (stat(d->root, &st) < 0 || !S_ISDIR(st.st_mode)) {
		int r = errno ? err_errno(e, errno, "%s", path)
			      : err_set(e, EI_EFORMAT, "%s: not a directory", path);

		dir_close(&d->s);
		return r;
	}
	d->dev = st.st_dev;
	d->s.ops = &dir_ops;
	d->s.what = d->root;
	d->s.mkfs_time = -1;
	*out = &d->s;
	return 0;
}
