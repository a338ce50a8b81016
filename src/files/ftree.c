// SPDX-License-Identifier: MIT
/* The file view: what every source and consumer of a tree shares. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/info.h"
#include "core/kconfig.h"
#include "core/part.h"
#include "core/vdisk.h"
#include "files/ftree.h"

struct ft_guard {
	struct ft_source *s;
	ft_visit_fn visit;
	void *arg;
};

/* A warning made fatal stops the walk at the entry it is about. */
static int ft_guard_visit(void *arg, const struct ft_entry *ent, struct ft_file *f,
			  struct err *e)
{
	struct ft_guard *g = arg;

	if (g->s->fatal[0])
		return err_set(e, EI_EUNSUP, "%s", g->s->fatal);
	return g->visit(g->arg, ent, f, e);
}

int ft_walk(struct ft_source *s, ft_visit_fn visit, void *arg, struct err *e)
{
	struct ft_guard g = { .s = s, .visit = visit, .arg = arg };
	int r;

	if (!s->warn_fatal)
		return s->ops->walk(s, visit, arg, e);
	r = s->ops->walk(s, ft_guard_visit, &g, e);
	if (r >= 0 && s->fatal[0])
		r = err_set(e, EI_EUNSUP, "%s", s->fatal);
	return r;
}

void ft_close(struct ft_source *s)
{
	struct vdisk *vd;
	char *what;

	if (!s)
		return;
	vd = s->vd;
	what = s->what_own;
	s->ops->close(s);
	vdisk_close(vd);
	free(what);
}

int ft_path_ok(const char *path)
{
	size_t n = strlen(path), c = 0;

	if (n == 0)
		return 1;
	if (n > FT_PATH_MAX || path[0] == '/')
		return 0;
	for (const char *p = path;; p++) {
		if (*p == '/' || !*p) {
			const char *s = p - c;

			if (c == 0 || c > FT_NAME_MAX || (c == 1 && s[0] == '.') ||
			    (c == 2 && s[0] == '.' && s[1] == '.'))
				return 0;
			if (!*p)
				return 1;
			c = 0;
		} else {
			c++;
		}
	}
}

const char *ft_type_name(enum ft_type t)
{
	switch (t) {
	case FT_REG: return "file";
	case FT_DIR: return "directory";
	case FT_SYMLINK: return "symlink";
	case FT_BLK: return "block device";
	case FT_CHR: return "character device";
	case FT_FIFO: return "fifo";
	case FT_SOCK: return "socket";
	}
	return "unknown";
}

void ft_warnf(struct ft_source *s, const char *fmt, ...)
{
	char raw[ERR_MSG_MAX], msg[ERR_MSG_MAX];
	va_list ap;

	if (!s->warn && !s->warn_fatal)
		return;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* paths and names of a hostile image: no terminal control bytes */
	text_safe(raw, msg, sizeof(msg));
	if (s->warn_fatal) {
		if (!s->fatal[0])
			snprintf(s->fatal, sizeof(s->fatal), "%.480s (-o acls=error)", msg);
		return;
	}
	s->warn(s->warn_arg, msg);
}

/* The filesystem sources a disk may hold, tried in order. */
static int ft_open_fs(struct vdisk *vd, const char *what, struct ft_source **out,
		      struct err *e)
{
	int r;

#if IS_ENABLED(CONFIG_FILES_EXT)
	r = ft_open_ext(vd, what, out, e);
	if (r != EI_EFORMAT)
		return r;
#endif
#if IS_ENABLED(CONFIG_FORMAT_SQUASHFS)
	r = ft_open_squashfs(vd, what, out, e);
	if (r != EI_EFORMAT)
		return r;
#endif
	return err_set(e, EI_EFORMAT, "%s: no filesystem edgeimg reads files of (%s)", what,
		       IS_ENABLED(CONFIG_FILES_EXT) ? "ext2, ext3, ext4, squashfs" : "squashfs");
}

/* A filesystem type ft_open_fs() reads. */
static int ft_fs_known(const char *type)
{
	if (!type)
		return 0;
	if (IS_ENABLED(CONFIG_FILES_EXT) &&
	    (!strcmp(type, "ext2") || !strcmp(type, "ext3") || !strcmp(type, "ext4")))
		return 1;
	return IS_ENABLED(CONFIG_FORMAT_SQUASHFS) && !strcmp(type, "squashfs");
}

/*
 * A whole disk with a partition table and no --partition: the one
 * partition whose filesystem has files edgeimg reads; none or several are
 * a usage error listing the partitions.  *@pick is "" for no table.
 */
static int ft_pick_partition(struct vdisk *vd, const char *path, char *pick,
			     size_t len, struct err *e)
{
	struct part_table *t = malloc(sizeof(*t));
	char list[ERR_MSG_MAX / 2];
	size_t n = 0;
	unsigned found = 0, num = 0;
	int r;

	*pick = 0;
	if (!t)
		return err_set(e, -ENOMEM, "out of memory");
	r = part_read(vd, t, e);
	if (r < 0 || t->kind == PART_NONE)
		goto out;
	list[0] = 0;
	for (unsigned i = 0; i < t->n; i++) {
		const struct part *p = &t->p[i];

		if (p->extended)
			continue;
		if (n < sizeof(list))
			n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%u (%s)",
					      n ? ", " : "", p->num,
					      p->fs.type ? p->fs.type : "unknown");
		if (ft_fs_known(p->fs.type)) {
			found++;
			num = p->num;
		}
	}
	if (found == 1)
		snprintf(pick, len, "%u", num);
	else
		r = err_set(e, EI_EUSAGE,
			    "%s: %s; name one with --partition: %s", path,
			    found ? "several partitions hold filesystems"
				  : "no partition holds a filesystem edgeimg reads files of",
			    list);
out:
	free(t);
	return r;
}

int ft_open(const char *path, const struct open_opts *oo, struct ft_source **out,
	    struct err *e)
{
	struct open_opts o = *oo;
	struct vdisk *vd = NULL;
	char pick[16], *what;
	unsigned char magic[4] = { 0 };
	struct stat st;
	int fd, r;

	*out = NULL;
	if (stat(path, &st) < 0)
		return err_errno(e, errno, "%s", path);
	if (S_ISDIR(st.st_mode)) {
		if (o.partition || o.format)
			return err_set(e, EI_EUSAGE,
				       "%s: a directory has no partitions or format", path);
		return ft_open_dir(path, out, e);
	}
#if IS_ENABLED(CONFIG_FILES_TAR)
	if (!o.partition && !o.format && S_ISREG(st.st_mode)) {
		r = ft_open_tar(path, out, e);
		if (r != EI_EFORMAT)
			return r;
	}
#endif
	/* a squashfs file is a root filesystem here, not a disk inside one */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, magic, sizeof(magic)) < 0)
			magic[0] = 0;
		close(fd);
	}
	if (!o.format && (S_ISBLK(st.st_mode) || !memcmp(magic, "hsqs", 4)))
		o.format = "raw";
	r = vdisk_open(path, &o, &vd, e);
	if (r < 0)
		return r;
	if (!o.partition) {
		r = ft_pick_partition(vd, path, pick, sizeof(pick), e);
		if (r >= 0 && *pick)
			r = part_open(vd, pick, &vd, e);
		if (r < 0) {
			if (!*pick)
				vdisk_close(vd);
			return r;
		}
	}
	what = malloc(strlen(path) + 32);
	if (!what) {
		vdisk_close(vd);
		return err_set(e, -ENOMEM, "out of memory");
	}
	if (part_of(vd))
		sprintf(what, "%s: partition %u", path, part_of(vd)->num);
	else
		strcpy(what, path);
	r = ft_open_fs(vd, what, out, e);
	if (r < 0) {
		free(what);
		vdisk_close(vd);
		return r;
	}
	(*out)->vd = vd;
	(*out)->what_own = what;
	return 0;
}
