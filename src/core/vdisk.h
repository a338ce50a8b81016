/* SPDX-License-Identifier: MIT */
/* The virtual disk: what every reader produces and every writer consumes. */
#ifndef EDGEIMG_VDISK_H
#define EDGEIMG_VDISK_H

#include <stdint.h>

#include "core/err.h"
#include "core/io.h"

struct img_format;

enum extent_type {
	EXT_DATA,       /* stored data (may still happen to be zero) */
	EXT_ZERO,       /* allocated, reads as zero */
	EXT_HOLE,       /* not allocated, reads as zero */
};

/* extent.host when the run is not stored as is in the image's own file. */
#define EXT_HOST_NONE UINT64_MAX

struct extent {
	uint64_t len;
	enum extent_type type;
	uint64_t host;          /* EXT_DATA stored as is in the image's own
				   file (vd->io), contiguously: the offset
				   there of the extent's first byte; else
				   EXT_HOST_NONE (compressed, another file,
				   zeros) */
};

/* What a caller allows a reader to do; zeroed fields take the defaults. */
struct open_opts {
	const char *format;     /* force a format by name, or NULL to probe */
	int allow_refs;         /* follow backing files, parents, extents */
	unsigned max_chain;     /* depth of a chain of references */
	uint64_t max_table;     /* largest metadata table held in memory */
	uint64_t max_size;      /* largest virtual size accepted */
	const char *ova_disk;   /* an OVA's disk to read: "N" (1-based, in .ovf
				   order) or its file name; NULL: the first */
	const char *partition;  /* vdisk_open(): the disk is this partition of
				   the image (part_find()), or NULL */
};

struct vdisk {
	const struct img_format *fmt;
	struct io *io;          /* owned by the vdisk */
	uint64_t size;          /* virtual size in bytes */
	void *priv;             /* the format's state */
	struct open_opts opts;
	char dir[4096];         /* the image's directory, for messages */
	int dirfd;              /* ... opened: references are looked up in it
				   (O_NOFOLLOW), -1 when it cannot be opened */
	int dirty;              /* the format's dirty flag, as qemu-img info
				   reports it (qcow2's DIRTY bit); 0 elsewhere */
};

/*
 * vdisk_open() - open @path (a file, a block device, or "-" for stdin),
 * forcing @opts->format or probing every registered reader; with
 * @opts->partition the disk is that partition of the image (part_open()).
 * On success *@out is the caller's to vdisk_close().
 */
int vdisk_open(const char *path, const struct open_opts *opts,
	       struct vdisk **out, struct err *e);

/* vdisk_open_io() - the same over an already open io, which it takes. */
int vdisk_open_io(struct io *io, const char *dir, const struct open_opts *opts,
		  struct vdisk **out, struct err *e);

/* vdisk_read() - read @len bytes at @off; [off, off+len) must be inside. */
int vdisk_read(struct vdisk *vd, void *buf, size_t len, uint64_t off,
	       struct err *e);

/*
 * vdisk_extent() - the type of the run starting at @off and its length,
 * at least 1 and at most @len (which must be > 0 and inside the disk),
 * and where it lies in the image's own file when it is stored there as is.
 * Runs of one type are one extent, except that data stored as is ends
 * where its host offsets stop following each other.
 */
int vdisk_extent(struct vdisk *vd, uint64_t off, uint64_t len,
		 struct extent *ext, struct err *e);

void vdisk_close(struct vdisk *vd);

/*
 * vdisk_open_ref() - open a file that @vd refers to (a backing file, a
 * parent, an extent), with the reference policy: refused unless
 * opts.allow_refs ("--allow-refs" on the command line); only a plain file
 * name in @vd's directory (no '/', no "..", no "json:", 1..255 bytes);
 * at most opts.max_chain levels deep.  @format forces the child's format
 * (NULL probes); with @raw_io set, *@io_out receives the child opened as a
 * plain io instead (for flat extents) and *@out is untouched.  @what names
 * the reference in messages ("qcow2: backing file").
 */
int vdisk_open_ref(struct vdisk *vd, const char *name, size_t name_len,
		   const char *format, const char *what, struct vdisk **out,
		   struct io **io_out, struct err *e);

#endif
