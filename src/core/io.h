/* SPDX-License-Identifier: MIT */
/* The small random-access I/O interface every format reads and writes through. */
#ifndef EDGEIMG_IO_H
#define EDGEIMG_IO_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct io;

enum io_flags {
	IO_WRITABLE = 1u << 0,
	IO_BLOCKDEV = 1u << 1,  /* a block device: no holes, no truncate */
	IO_STREAM = 1u << 2,    /* sequential only: reads must move forward */
	IO_WRITEBEHIND = 1u << 3, /* start writeback as sequential writes go */
};

struct io_ops {
	/* Read exactly @len bytes at @off; a short read is an error. */
	int (*pread)(struct io *io, void *buf, size_t len, uint64_t off,
		     struct err *e);
	/* Write exactly @len bytes at @off, growing the size if needed. */
	int (*pwrite)(struct io *io, const void *buf, size_t len, uint64_t off,
		      struct err *e);
	/*
	 * Optional.  Report in *@data_len the length of the run starting at
	 * @off that is data (return 1) or a hole (return 0), at most @len.
	 */
	int (*probe_data)(struct io *io, uint64_t off, uint64_t len,
			  uint64_t *run, struct err *e);
	int (*truncate)(struct io *io, uint64_t size, struct err *e);
	int (*sync)(struct io *io, struct err *e);
	void (*close)(struct io *io);
	/*
	 * Optional.  Make [off, off+len) read as zeros without writing
	 * buffers where the medium can (BLKZEROOUT on a block device, a
	 * punched hole in a file); io_zero() falls back to writing zeros.
	 */
	int (*zero)(struct io *io, uint64_t off, uint64_t len, struct err *e);
	/* Optional.  Write back and drop the cached pages, so reads hit the media. */
	int (*drop_cache)(struct io *io, struct err *e);
};

struct io {
	const struct io_ops *ops;
	uint64_t size;          /* current size in bytes */
	uint64_t end;           /* what was written: the end of the furthest
				   io_write() or the last io_truncate() */
	unsigned flags;         /* enum io_flags */
	char name[256];         /* for messages: the path, or "<memory>" */
};

/* Modes of io_open_file(), or-ed. */
#define IO_OPEN_RW 1            /* read-write, not read-only */
#define IO_OPEN_EXCL 2          /* a block device: O_EXCL, refused (EBUSY)
				   while mounted or opened so elsewhere */

/*
 * io_null() - an io of @size bytes named @name that holds none: the io of
 * a vdisk whose bytes come from elsewhere (a partition of another disk, a
 * view), which vdisk_close() closes.  NULL when out of memory.
 */
struct io *io_null(const char *name, uint64_t size);

/*
 * io_open_file() - open a regular file or block device; @mode is 0 (read)
 * or IO_OPEN_* flags.  On success *@out is owned by the caller (io_close()).
 */
int io_open_file(const char *path, int mode, struct io **out,
		 struct err *e);

/*
 * io_open_fd() - wrap an already open descriptor, which the io then owns.
 * A pipe or other non-seekable descriptor gives an IO_STREAM io.
 */
int io_open_fd(int fd, const char *name, int writable, struct io **out,
	       struct err *e);

/*
 * io_mem_new() - an io over memory.  With @buf non-NULL the io reads the
 * caller's @len bytes (not copied, must outlive the io) and is read-only;
 * with @buf NULL it is an empty writable buffer that grows up to @cap.
 */
int io_mem_new(const void *buf, size_t len, size_t cap, struct io **out,
	       struct err *e);

/* io_mem_data() - the bytes of a memory io (valid until the next write). */
const uint8_t *io_mem_data(struct io *io);

/*
 * io_read() - read @len bytes at @off after checking the range lies inside
 * the file; the error names @what ("qcow2: L1 table") and the range.
 */
int io_read(struct io *io, void *buf, size_t len, uint64_t off,
	    const char *what, struct err *e);

/*
 * io_write() - write @len bytes at @off.  A stream (standard output, a
 * pipe) only moves forward: a gap is written as zeros, a backward write
 * is an error.
 */
int io_write(struct io *io, const void *buf, size_t len, uint64_t off,
	     struct err *e);

/* io_zero() - make [off, off+len) read as zeros (see io_ops.zero). */
int io_zero(struct io *io, uint64_t off, uint64_t len, struct err *e);

/* io_drop_cache() - write back and drop cached pages (a no-op without). */
int io_drop_cache(struct io *io, struct err *e);

/* io_fd() - the descriptor of a file io, or -1 for another back-end. */
int io_fd(const struct io *io);
int io_truncate(struct io *io, uint64_t size, struct err *e);
int io_sync(struct io *io, struct err *e);
void io_close(struct io *io);

/*
 * io_probe_data() - 1 when the run of *@run bytes (at most @len) starting
 * at @off is data, 0 when it is a hole; back-ends without hole
 * information report everything as data.
 */
int io_probe_data(struct io *io, uint64_t off, uint64_t len, uint64_t *run,
		  struct err *e);

/*
 * io_slice_new() - a read-only io over the @len bytes of @parent starting
 * at @off (a tar member, say), named @name in messages.  [off, off+len)
 * must lie inside @parent, else EI_ETRUNC.  The slice borrows @parent: it
 * never closes it, and the caller keeps @parent open until the slice is
 * closed.  Reads are checked against @len and forwarded at @off + offset;
 * hole information is forwarded too.  A slice of an IO_STREAM parent is a
 * stream as well.  On success *@out is the caller's to io_close().
 */
int io_slice_new(struct io *parent, uint64_t off, uint64_t len,
		 const char *name, struct io **out, struct err *e);

#endif
