// SPDX-License-Identifier: MIT
/*
 * A file tree as a POSIX pax archive (pax restricted: ustar headers, a pax
 * extended header only where ustar cannot say it), written through
 * libarchive onto an io at increasing offsets, so standard output works.
 * Names are "./PATH" (the root "./"), as tar -C DIR . writes them; xattrs
 * as SCHILY.xattr records; later hard links as hard-link members; devices
 * and fifos as such; sockets, which a tar cannot hold, are left out with a
 * warning.  Deterministic: no atime or ctime, no user or group names (ids
 * only), libarchive's extended headers named "DIR/PaxHeader/NAME" with no
 * pid or time in them; every mtime is SOURCE_DATE_EPOCH when it is set.
 * Sparse files are written whole (their holes as zeros).
 */
#include <locale.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>

#include "core/io.h"
#include "core/format.h"
#include "core/info.h"
#include "core/opts.h"
#include "files/ftree.h"

#define TAR_WBUF (256u << 10)

struct tar_w {
	struct archive *a;
	struct archive_entry *ae;
	struct ft_source *src;
	struct io *out;
	uint64_t pos;
	struct err ioerr;
	int io_failed;
	int64_t epoch;          /* SOURCE_DATE_EPOCH, or -1 */
	locale_t utf8;          /* C.UTF-8 for libarchive's name conversions, or 0 */
	uint8_t *buf;
	char name[FT_PATH_MAX + 3], link[FT_PATH_MAX + 3];
};

static la_ssize_t tar_write_cb(struct archive *a, void *arg, const void *buf, size_t len)
{
	struct tar_w *w = arg;

	if (io_write(w->out, buf, len, w->pos, &w->ioerr) < 0) {
		w->io_failed = 1;
		archive_set_error(a, EIO, "%s", w->ioerr.msg);
		return -1;
	}
	w->pos += len;
	return (la_ssize_t)len;
}

/* The libarchive failure of @w as @e, the io's error when it was one. */
static int tar_write_fail(struct tar_w *w, const char *path, struct err *e)
{
	if (w->io_failed) {
		*e = w->ioerr;
		return e->code;
	}
	return err_set(e, EI_EUNSUP, "tar: /%s: %s", text_safe(path, w->link, sizeof(w->link)),
		       archive_error_string(w->a));
}

/* SOURCE_DATE_EPOCH as seconds in *@out, -1 when unset. */
static int tar_epoch(int64_t *out, struct err *e)
{
	const char *s = getenv("SOURCE_DATE_EPOCH");
	char *end;
	long long v;

	*out = -1;
	if (!s || !*s)
		return 0;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < 0 || s[0] < '0' || s[0] > '9')
		return err_set(e, EI_EUSAGE, "tar: SOURCE_DATE_EPOCH=%.40s is not seconds since 1970", s);
	*out = v;
	return 0;
}

static int tar_write_data(struct tar_w *w, const struct ft_entry *ent, struct ft_file *f,
			  struct err *e)
{
	uint64_t off = 0;

	while (off < ent->size) {
		uint64_t n = ent->size - off < TAR_WBUF ? ent->size - off : TAR_WBUF, hole = 0;

		if (f->hole && f->hole(f, off, &hole, e) < 0)
			return e->code;
		if (hole) {
			n = hole < n ? hole : n;
			memset(w->buf, 0, (size_t)n);
		} else if (f->read(f, off, w->buf, (size_t)n, e) < 0) {
			return e->code;
		}
		if (archive_write_data(w->a, w->buf, (size_t)n) != (la_ssize_t)n)
			return tar_write_fail(w, ent->path, e);
		off += n;
	}
	return 0;
}

static int tar_visit(void *arg, const struct ft_entry *ent, struct ft_file *f, struct err *e)
{
	struct tar_w *w = arg;
	struct archive_entry *ae = w->ae;
	locale_t old = (locale_t)0;
	unsigned type;
	int rc;

	switch (ent->type) {
	case FT_REG: type = AE_IFREG; break;
	case FT_DIR: type = AE_IFDIR; break;
	case FT_SYMLINK: type = AE_IFLNK; break;
	case FT_BLK: type = AE_IFBLK; break;
	case FT_CHR: type = AE_IFCHR; break;
	case FT_FIFO: type = AE_IFIFO; break;
	default:
		ft_warnf(w->src, "/%s: %s not kept (a tar cannot hold one)",
			 text_safe(ent->path, w->link, sizeof(w->link)), ft_type_name(ent->type));
		return 0;
	}
	archive_entry_clear(ae);
	snprintf(w->name, sizeof(w->name), ent->path[0] ? "./%s" : ".", ent->path);
	archive_entry_copy_pathname(ae, w->name);
	archive_entry_set_filetype(ae, type);
	archive_entry_set_perm(ae, ent->mode & 07777);
	archive_entry_set_uid(ae, ent->uid);
	archive_entry_set_gid(ae, ent->gid);
	archive_entry_set_mtime(ae, w->epoch >= 0 ? w->epoch : ent->mtime, 0);
	if (ent->link_to) {
		snprintf(w->link, sizeof(w->link), "./%s", ent->link_to);
		archive_entry_copy_hardlink(ae, w->link);
		archive_entry_set_size(ae, 0);
	} else if (ent->type == FT_REG) {
		archive_entry_set_size(ae, (la_int64_t)ent->size);
	}
	if (ent->type == FT_SYMLINK)
		archive_entry_copy_symlink(ae, ent->target);
	if (ent->type == FT_BLK || ent->type == FT_CHR) {
		archive_entry_set_rdevmajor(ae, ent->rdev_major);
		archive_entry_set_rdevminor(ae, ent->rdev_minor);
	}
	for (unsigned i = 0; i < ent->n_xattrs; i++)
		archive_entry_xattr_add_entry(ae, ent->xattrs[i].name, ent->xattrs[i].value,
					      ent->xattrs[i].size);
	/*
	 * pax names are UTF-8, and libarchive converts from the locale's
	 * charset: in the C locale every non-ASCII name would be written
	 * with hdrcharset=BINARY, which GNU tar warns about.  So headers are
	 * written in a UTF-8 locale of this thread only (when the C library
	 * has one); a name that is not UTF-8 still goes out as its bytes
	 * with hdrcharset=BINARY, after a warning from libarchive.
	 */
	if (w->utf8)
		old = uselocale(w->utf8);
	rc = archive_write_header(w->a, ae);
	if (w->utf8)
		uselocale(old);
	if (rc != ARCHIVE_OK && !(rc == ARCHIVE_WARN && !w->io_failed &&
				  strstr(archive_error_string(w->a), "Can't translate")))
		return tar_write_fail(w, ent->path, e);
	if (ent->type == FT_REG && !ent->link_to && ent->size) {
		if (!f)
			return err_set(e, EI_EUSAGE, "tar: /%s: no data given", ent->path);
		return tar_write_data(w, ent, f, e);
	}
	return 0;
}

int ft_write_tar(struct ft_source *src, struct io *out, const struct write_opts *wo,
		 struct err *e)
{
	struct tar_w w = { .src = src, .out = out };
	struct opts o;
	int rc;

	if ((rc = opts_parse(wo ? wo->options : NULL, &o, e)) < 0 ||
	    (rc = opts_unknown(&o, "tar", NULL, e)) < 0 || (rc = tar_epoch(&w.epoch, e)) < 0)
		return rc;
	w.a = archive_write_new();
	w.ae = archive_entry_new();
	w.buf = malloc(TAR_WBUF);
	if (!w.a || !w.ae || !w.buf) {
		rc = err_set(e, -ENOMEM, "tar: out of memory");
		goto out;
	}
	if (archive_write_set_format_pax_restricted(w.a) != ARCHIVE_OK ||
	    archive_write_set_options(w.a, "xattrheader=SCHILY") != ARCHIVE_OK ||
	    archive_write_add_filter_none(w.a) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(w.a, 10240) != ARCHIVE_OK ||
	    archive_write_open(w.a, &w, NULL, tar_write_cb, NULL) != ARCHIVE_OK) {
		rc = tar_write_fail(&w, "", e);
		goto out;
	}
	w.utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	rc = ft_walk(src, tar_visit, &w, e);
	if (rc == 0 && archive_write_close(w.a) != ARCHIVE_OK)
		rc = tar_write_fail(&w, "", e);
out:
	if (w.a)
		archive_write_free(w.a);
	archive_entry_free(w.ae);
	if (w.utf8)
		freelocale(w.utf8);
	free(w.buf);
	return rc;
}
