/* SPDX-License-Identifier: MIT */
/*
 * The file view: a filesystem or an archive as a walk over its entries.
 *
 * A source (ext2/3/4 through libext2fs, a tar through libarchive, a squashfs
 * root filesystem, a host directory) calls a visitor once per entry, and
 * while that call lasts the entry's data can be read.  A consumer (the
 * squashfs root-filesystem writer, the tar writer, the listing of info
 * --files) keeps what it needs of each entry; nothing here holds a tree.
 *
 * Order: sources that can choose (a filesystem, a directory) visit in
 * pre-order, a directory before its entries, entries of a directory sorted
 * by name (memcmp of the bytes, shorter first on a tie), so outputs are the
 * same whatever the on-disk order.  A tar is visited in archive order (it is
 * read once, as a stream); a consumer that needs the tree sorted sorts it.
 *
 * Every path is relative to the root, checked by ft_path_ok() before it is
 * given: no leading '/', no empty, "." or ".." component, no NUL, at most
 * FT_PATH_MAX bytes; the root itself is "" (a source visits it first, or,
 * a tar that has no "./" entry, not at all: the consumer makes a default
 * one).  A directory may be reached by a visitor before its parent only
 * from a tar (consumers create missing parents, mode 0755, root-owned).
 */
#ifndef EDGEIMG_FTREE_H
#define EDGEIMG_FTREE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct vdisk;

#define FT_PATH_MAX 4095        /* bytes of a path, without the NUL */
#define FT_NAME_MAX 255         /* bytes of one component */
#define FT_XATTR_MAX 65536      /* bytes of one xattr value */
#define FT_XATTRS_MAX 1024      /* xattrs of one entry */
#define FT_DEPTH_MAX 256        /* directory depth */

enum ft_type {
	FT_REG = 1,
	FT_DIR,
	FT_SYMLINK,
	FT_BLK,
	FT_CHR,
	FT_FIFO,
	FT_SOCK,
};

struct ft_xattr {
	const char *name;       /* full name: "security.selinux", "user.x" */
	const uint8_t *value;
	uint32_t size;
};

struct ft_entry {
	const char *path;       /* "" for the root, else "etc/passwd" */
	enum ft_type type;
	uint32_t mode;          /* permission bits and suid/sgid/sticky: 07777 */
	uint32_t uid, gid;
	int64_t mtime;          /* seconds since the epoch */
	uint64_t size;          /* FT_REG: bytes of data; else 0 */
	const char *target;     /* FT_SYMLINK: what it points at (any bytes but NUL) */
	uint32_t rdev_major, rdev_minor;        /* FT_BLK, FT_CHR */
	/*
	 * Hard links: entries of one inode share @ino (a source's identity,
	 * non-zero, unique within the walk) when nlink > 1.  The first one
	 * visited carries the data; a later one has @link_to, the path of
	 * that first one, and its data is not read again.  A tar cannot
	 * tell ahead: its first entry of a non-directory has nlink 0
	 * (unknown: a later member may be a hard link to it), its later hard
	 * links nlink 2, 3, ... (those seen so far).
	 */
	uint64_t ino;
	uint32_t nlink;
	const char *link_to;
	/* extended attributes, sorted by name (strcmp), names unique */
	const struct ft_xattr *xattrs;
	unsigned n_xattrs;
	/*
	 * FT_REG: the source records the file as sparse (squashfs: its
	 * inode counts bytes saved by holes), which a rebuild must repeat.
	 */
	int sparse;
	/* FT_REG with data: the source's handle for open_file() after the walk, 0: none */
	uint64_t ref;
};

/*
 * A regular file's data, readable during the visit of its entry (and not
 * after it returns).  read() is called with increasing offsets; a stream
 * source (tar) supports only that.
 */
struct ft_file {
	/*
	 * read() - exactly @len bytes at @off (a short file is an error: the
	 * source names it).  @off + @len <= the entry's size.
	 */
	int (*read)(struct ft_file *f, uint64_t off, void *buf, size_t len, struct err *e);
	/*
	 * hole() - or NULL.  *@len set to the bytes from @off that are sure to
	 * read as zeros (a hole of a sparse file: 0 when @off is data), so a
	 * consumer need not read them.  Never more than size - off.
	 */
	int (*hole)(struct ft_file *f, uint64_t off, uint64_t *len, struct err *e);
	void *priv;             /* the source's */
};

/*
 * The visitor: called once per entry; @f is non-NULL for an FT_REG entry
 * whose data is to be read here (not for a later hard link).  A negative
 * return (an error set in @e) stops the walk, which returns it.
 */
typedef int (*ft_visit_fn)(void *arg, const struct ft_entry *ent, struct ft_file *f,
			   struct err *e);

/*
 * Warnings the consumer should print, not fail on (a POSIX ACL a squashfs
 * cannot hold, a file type a tar cannot hold): "path: what".  NULL: none.
 */
typedef void (*ft_warn_fn)(void *arg, const char *msg);

struct ft_source;

struct ft_source_ops {
	const char *name;       /* "ext4", "tar", "squashfs", "directory" */
	int (*walk)(struct ft_source *s, ft_visit_fn visit, void *arg, struct err *e);
	void (*close)(struct ft_source *s);
	/*
	 * open_file() - or NULL: a regular file's data after the walk, by
	 * the @ref and @size its entry carried; read() then takes any
	 * offset.  close_file() frees it.  One file at a time.
	 */
	int (*open_file)(struct ft_source *s, uint64_t ref, uint64_t size, struct ft_file *f,
			 struct err *e);
	void (*close_file)(struct ft_source *s, struct ft_file *f);
};

struct ft_source {
	const struct ft_source_ops *ops;
	const char *what;       /* for messages: "ext4 (partition 2 'root')" */
	ft_warn_fn warn;
	void *warn_arg;
	int64_t mkfs_time;      /* the filesystem's own time (ext4 s_mkfs_time,
				   squashfs mkfs_time), or -1 */
	void *priv;
	/*
	 * ft_open()'s: the disk a source reads (never closed by the source,
	 * whose close() leaves it alone), closed by ft_close() after it.
	 */
	struct vdisk *vd;
	char *what_own;         /* ft_open()'s: the text @what points at */
	/*
	 * The consumer's: warnings are errors (-o acls=error): ft_warnf()
	 * keeps the first in @fatal, and ft_walk() stops at the next entry
	 * (or at its end) with it.
	 */
	int warn_fatal;
	char fatal[ERR_MSG_MAX];
};

/* ft_walk() - run @s's walk once (a source is walked at most once). */
int ft_walk(struct ft_source *s, ft_visit_fn visit, void *arg, struct err *e);

/* ft_close() - free @s (NULL is fine). */
void ft_close(struct ft_source *s);

/* ft_path_ok() - 1 when @path is a valid path as described above. */
int ft_path_ok(const char *path);

/* ft_type_name() - "file", "directory", "symlink", ... */
const char *ft_type_name(enum ft_type t);

/* ft_warnf() - format a warning and hand it to @s->warn (if any). */
void ft_warnf(struct ft_source *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * The sources.  Each returns EI_EFORMAT "not an X" (with nothing opened)
 * when the input is not theirs, so ft_open() can try the next one.  A
 * source reading a @vd does not own it: it stays open until after the
 * source's close(), and ft_close() closes it.
 */
int ft_open_ext(struct vdisk *vd, const char *what, struct ft_source **out, struct err *e);
int ft_open_squashfs(struct vdisk *vd, const char *what, struct ft_source **out, struct err *e);
int ft_open_tar(const char *path, struct ft_source **out, struct err *e);
int ft_open_dir(const char *path, struct ft_source **out, struct err *e);

/*
 * ft_open() - the file view of @path: a directory; a tar (plain, .gz, .xz,
 * .zst: ft_open_tar() tries first); else a disk image opened with @oo
 * (oo->partition chooses a partition), holding one filesystem ext2/3/4 or
 * squashfs (several: an error listing them, EI_EUSAGE).
 */
struct open_opts;
int ft_open(const char *path, const struct open_opts *oo, struct ft_source **out,
	    struct err *e);

/*
 * The consumers.  Options: @wo as for the format's writer (squashfs:
 * compression, level, block_size; name= and partitions= are refused).
 * Warnings go to @src's warn.
 */
struct io;
struct write_opts;
int ft_write_squashfs(struct ft_source *src, struct io *out, const struct write_opts *wo,
		      struct err *e);
int ft_write_tar(struct ft_source *src, struct io *out, const struct write_opts *wo,
		 struct err *e);

/* ft_squashfs_recipe() - a squashfs source's edgeimg recipe, "" if none. */
int ft_squashfs_recipe(struct ft_source *src, char *buf, size_t len, struct err *e);

/*
 * The file-tree view (src/delta/delta-format.md, "The file-tree view"): a
 * tree as one deterministic byte array, what delta and apply compare
 * when OLD and NEW are root filesystems, and what the squashfs writer's
 * files=on rebuilds a root filesystem from.
 *
 * ftv_open() - the view of @src as a vdisk (read at random; @src must
 * have open_file()), which takes @src.  @recipe: what the vdisk's recipe()
 * reports ("" none).  Memory: a record per entry (its name, link target,
 * xattrs) and 40 bytes of index.
 *
 * ftv_open_path() - the view of the squashfs root filesystem at @path
 * (a file, or a block device holding one); EI_EFORMAT when it is none.
 *
 * ftv_source() - a source walking the view in @vd (checked as hostile
 * input), which leaves @vd open.
 *
 * ftv_container() - for a view of ftv_open_path(): the root filesystem's
 * bytes; else NULL.
 */
int ftv_open(struct ft_source *src, const char *recipe, struct vdisk **out,
	     struct err *e);
int ftv_open_path(const char *path, const struct open_opts *oo, struct vdisk **out,
		  struct err *e);
int ftv_source(struct vdisk *vd, struct ft_source **out, struct err *e);
struct io *ftv_container(struct vdisk *vd);

#endif
