// SPDX-License-Identifier: MIT
/* I/O back-ends: files, block devices, pipes and memory. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/bytes.h"
#include "core/io.h"

/* Not in every libc's headers (musl's): the kernel's values. */
#ifndef BLKZEROOUT
#define BLKZEROOUT _IO(0x12, 127)
#endif
#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE 0x02
#endif

bool buf_is_zero(const void *p, size_t len)
{
	const uint8_t *b = p;
	size_t i;

	/* Check the head bytewise, then let memcmp compare the buffer with itself. */
	for (i = 0; i < len && i < 16; i++)
		if (b[i])
			return false;
	return len <= 16 || !memcmp(b, b + 16, len - 16);
}

struct io_fd {
	struct io io;
	int fd;
	uint64_t pos;           /* IO_STREAM: bytes consumed so far */
	uint64_t wb_start;      /* IO_WRITEBEHIND: start of the unflushed window */
	uint64_t wb_end;        /* and its end */
};

/*
 * Write-behind: once 8 MiB of a sequential output are written, start their
 * writeback so that the final fsync before the rename finds little to do.
 */
#define IO_WB_WINDOW (8u << 20)

static void fd_writebehind(struct io_fd *f, uint64_t off, size_t len)
{
	if (off < f->wb_start || off > f->wb_end + IO_WB_WINDOW) {
		f->wb_start = f->wb_end = off;      /* not sequential: restart */
	}
	if (off + len > f->wb_end)
		f->wb_end = off + len;
	if (f->wb_end - f->wb_start >= IO_WB_WINDOW) {
		sync_file_range(f->fd, (off_t)f->wb_start,
				(off_t)(f->wb_end - f->wb_start), SYNC_FILE_RANGE_WRITE);
		f->wb_start = f->wb_end;
	}
}

static int fd_pread(struct io *io, void *buf, size_t len, uint64_t off,
		    struct err *e)
{
	struct io_fd *f = (struct io_fd *)io;
	uint8_t *p = buf;

	if (io->flags & IO_STREAM) {
		uint8_t skip[4096];

		if (off < f->pos)
			return err_set(e, -ESPIPE,
				       "%s: cannot read backwards in a stream (offset %llu, at %llu)",
				       io->name, (unsigned long long)off,
				       (unsigned long long)f->pos);
		while (f->pos < off) {
			size_t n = (size_t)min_u64(sizeof(skip), off - f->pos);
			ssize_t r = read(f->fd, skip, n);

			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return err_errno(e, errno, "%s: read", io->name);
			if (r == 0)
				return err_set(e, EI_ETRUNC, "%s: stream ends at %llu",
					       io->name, (unsigned long long)f->pos);
			f->pos += (uint64_t)r;
		}
	}
	while (len) {
		ssize_t r = (io->flags & IO_STREAM) ? read(f->fd, p, len) :
			    pread(f->fd, p, len, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return err_errno(e, errno, "%s: read at %llu", io->name,
					 (unsigned long long)off);
		if (r == 0)
			return err_set(e, EI_ETRUNC, "%s: file ends at %llu",
				       io->name, (unsigned long long)off);
		p += r;
		len -= (size_t)r;
		off += (uint64_t)r;
		if (io->flags & IO_STREAM)
			f->pos += (uint64_t)r;
	}
	return 0;
}

static int fd_pwrite(struct io *io, const void *buf, size_t len, uint64_t off,
		     struct err *e);

/* A stream moves forward only: a gap before @off is written as zeros. */
static int fd_stream_seek(struct io_fd *f, uint64_t off, struct err *e)
{
	static const uint8_t zero[4096];

	if (off < f->pos)
		return err_set(e, -ESPIPE,
			       "%s: cannot write backwards in a stream (offset %llu, at %llu)",
			       f->io.name, (unsigned long long)off,
			       (unsigned long long)f->pos);
	while (f->pos < off) {
		size_t n = (size_t)min_u64(sizeof(zero), off - f->pos);
		int r = fd_pwrite(&f->io, zero, n, f->pos, e);

		if (r < 0)
			return r;
	}
	return 0;
}

static int fd_pwrite(struct io *io, const void *buf, size_t len, uint64_t off,
		     struct err *e)
{
	struct io_fd *f = (struct io_fd *)io;
	const uint8_t *p = buf;

	if ((io->flags & IO_STREAM) && off != f->pos) {
		int r = fd_stream_seek(f, off, e);

		if (r < 0)
			return r;
	}
	while (len) {
		ssize_t r = (io->flags & IO_STREAM) ? write(f->fd, p, len) :
			    pwrite(f->fd, p, len, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return err_errno(e, errno, "%s: write at %llu", io->name,
					 (unsigned long long)off);
		p += r;
		len -= (size_t)r;
		off += (uint64_t)r;
		if (io->flags & IO_STREAM)
			f->pos += (uint64_t)r;
	}
	if (!(io->flags & IO_STREAM) && off > io->size)
		io->size = off;
	if (io->flags & IO_WRITEBEHIND)
		fd_writebehind(f, off - (uint64_t)(p - (const uint8_t *)buf),
			       (size_t)(p - (const uint8_t *)buf));
	return 0;
}

static int fd_probe_data(struct io *io, uint64_t off, uint64_t len,
			 uint64_t *run, struct err *e)
{
	struct io_fd *f = (struct io_fd *)io;
	off_t d, h;

	(void)e;
	if (io->flags & (IO_STREAM | IO_BLOCKDEV))
		goto all_data;
	d = lseek(f->fd, (off_t)off, SEEK_DATA);
	if (d < 0 && errno == ENXIO) {   /* only a hole until EOF */
		*run = len;
		return 0;
	}
	if (d < 0)
		goto all_data;          /* no SEEK_DATA on this file system */
	if ((uint64_t)d > off) {
		*run = min_u64(len, (uint64_t)d - off);
		return 0;
	}
	h = lseek(f->fd, (off_t)off, SEEK_HOLE);
	if (h < 0 || (uint64_t)h <= off)
		goto all_data;
	*run = min_u64(len, (uint64_t)h - off);
	return 1;
all_data:
	*run = len;
	return 1;
}

static int fd_truncate(struct io *io, uint64_t size, struct err *e)
{
	struct io_fd *f = (struct io_fd *)io;

	if (io->flags & IO_BLOCKDEV)
		return 0;
	if (io->flags & IO_STREAM)      /* the length of a stream: zeros up to it */
		return fd_stream_seek(f, size, e);
	if (ftruncate(f->fd, (off_t)size) < 0)
		return err_errno(e, errno, "%s: truncate to %llu", io->name,
				 (unsigned long long)size);
	io->size = size;
	return 0;
}

static int fd_sync(struct io *io, struct err *e)
{
	struct io_fd *f = (struct io_fd *)io;

	if (fsync(f->fd) < 0 && errno != EINVAL && errno != EROFS)
		return err_errno(e, errno, "%s: fsync", io->name);
	return 0;
}

static int fd_zero(struct io *io, uint64_t off, uint64_t len, struct err *e)
{
	struct io_fd *f = (struct io_fd *)io;

	if (io->flags & IO_STREAM)
		return -EOPNOTSUPP;
	if (io->flags & IO_BLOCKDEV) {
		uint64_t range[2] = { off, len };

		/* sector-aligned only; the kernel writes zeros where it must */
		if (off % 512 || len % 512 || ioctl(f->fd, BLKZEROOUT, range) < 0)
			return -EOPNOTSUPP;
		return 0;
	}
	if (off + len > io->size) {
		int r = fd_truncate(io, off + len, e);

		if (r < 0)
			return r;
	}
	if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) < 0)
		return -EOPNOTSUPP;
	return 0;
}

static int fd_drop_cache(struct io *io, struct err *e)
{
	struct io_fd *f = (struct io_fd *)io;

	if (io->flags & IO_STREAM)
		return 0;
	if ((io->flags & IO_WRITABLE) && fdatasync(f->fd) < 0 && errno != EINVAL)
		return err_errno(e, errno, "%s: fdatasync", io->name);
	/* advice, not a promise: the kernel may keep pages it cannot drop */
	posix_fadvise(f->fd, 0, 0, POSIX_FADV_DONTNEED);
	return 0;
}

static void fd_close(struct io *io)
{
	struct io_fd *f = (struct io_fd *)io;

	close(f->fd);
	free(f);
}

static const struct io_ops fd_ops = {
	.pread = fd_pread,
	.pwrite = fd_pwrite,
	.probe_data = fd_probe_data,
	.truncate = fd_truncate,
	.sync = fd_sync,
	.close = fd_close,
	.zero = fd_zero,
	.drop_cache = fd_drop_cache,
};

int io_open_fd(int fd, const char *name, int writable, struct io **out,
	       struct err *e)
{
	struct io_fd *f;
	struct stat st;

	if (fstat(fd, &st) < 0) {
		int r = err_errno(e, errno, "%s", name);

		close(fd);
		return r;
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		return err_set(e, -EISDIR, "%s: is a directory", name);
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		close(fd);
		return err_set(e, -ENOMEM, "%s: out of memory", name);
	}
	f->fd = fd;
	f->io.ops = &fd_ops;
	snprintf(f->io.name, sizeof(f->io.name), "%s", name);
	if (writable & IO_OPEN_RW)
		f->io.flags |= IO_WRITABLE;
	if (S_ISBLK(st.st_mode)) {
		uint64_t sz = 0;

		if (ioctl(fd, BLKGETSIZE64, &sz) < 0) {
			int r = err_errno(e, errno, "%s: BLKGETSIZE64", name);

			fd_close(&f->io);
			return r;
		}
		f->io.size = sz;
		f->io.flags |= IO_BLOCKDEV;
	} else if (S_ISREG(st.st_mode)) {
		f->io.size = (uint64_t)st.st_size;
	} else {
		f->io.flags |= IO_STREAM;
		f->io.size = UINT64_MAX;        /* unknown until the end */
	}
	*out = &f->io;
	return 0;
}

int io_open_file(const char *path, int mode, struct io **out,
		 struct err *e)
{
	struct stat st;
	int fl = (mode & IO_OPEN_RW ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NONBLOCK;
	int fd;

	/* O_EXCL on a block device: not while mounted or opened so elsewhere */
	if ((mode & IO_OPEN_EXCL) && stat(path, &st) == 0 && S_ISBLK(st.st_mode))
		fl |= O_EXCL;
	/* O_NONBLOCK: opening a FIFO must not wait for a writer. */
	fd = open(path, fl);
	if (fd < 0 && errno == EBUSY && (fl & O_EXCL))
		return err_set(e, -EBUSY,
			       "%s: the device is in use (mounted, or opened exclusively by another program)",
			       path);
	if (fd < 0)
		return err_errno(e, errno, "%s", path);
	fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	return io_open_fd(fd, path, mode & IO_OPEN_RW, out, e);
}

struct io_mem {
	struct io io;
	const uint8_t *rbuf;
	uint8_t *wbuf;
	size_t cap;
};

static int mem_pread(struct io *io, void *buf, size_t len, uint64_t off,
		     struct err *e)
{
	struct io_mem *m = (struct io_mem *)io;

	if (!range_ok(off, len, io->size))
		return err_set(e, EI_ETRUNC, "%s: file ends at %llu", io->name,
			       (unsigned long long)io->size);
	memcpy(buf, (m->wbuf ? m->wbuf : m->rbuf) + off, len);
	return 0;
}

static int mem_grow(struct io_mem *m, uint64_t size, struct err *e)
{
	uint8_t *nb;
	size_t ncap;

	if (size > m->cap)
		return err_set(e, EI_ELIMIT, "%s: %llu bytes exceed the cap of %zu",
			       m->io.name, (unsigned long long)size, m->cap);
	ncap = (size_t)size;
	nb = realloc(m->wbuf, ncap ? ncap : 1);
	if (!nb)
		return err_set(e, -ENOMEM, "%s: out of memory", m->io.name);
	if (ncap > m->io.size)
		memset(nb + m->io.size, 0, ncap - (size_t)m->io.size);
	m->wbuf = nb;
	m->io.size = ncap;
	return 0;
}

static int mem_pwrite(struct io *io, const void *buf, size_t len, uint64_t off,
		      struct err *e)
{
	struct io_mem *m = (struct io_mem *)io;
	uint64_t end;
	int r;

	if (!(io->flags & IO_WRITABLE))
		return err_set(e, -EROFS, "%s: read-only", io->name);
	if (add_overflow_u64(off, len, &end))
		return err_set(e, -EFBIG, "%s: offset overflow", io->name);
	if (end > io->size && (r = mem_grow(m, end, e)) < 0)
		return r;
	memcpy(m->wbuf + off, buf, len);
	return 0;
}

static int mem_truncate(struct io *io, uint64_t size, struct err *e)
{
	struct io_mem *m = (struct io_mem *)io;

	if (!(io->flags & IO_WRITABLE))
		return err_set(e, -EROFS, "%s: read-only", io->name);
	if (size > io->size)
		return mem_grow(m, size, e);
	io->size = size;
	return 0;
}

static int mem_sync(struct io *io, struct err *e)
{
	(void)io;
	(void)e;
	return 0;
}

static void mem_close(struct io *io)
{
	struct io_mem *m = (struct io_mem *)io;

	free(m->wbuf);
	free(m);
}

static const struct io_ops mem_ops = {
	.pread = mem_pread,
	.pwrite = mem_pwrite,
	.truncate = mem_truncate,
	.sync = mem_sync,
	.close = mem_close,
};

int io_mem_new(const void *buf, size_t len, size_t cap, struct io **out,
	       struct err *e)
{
	struct io_mem *m = calloc(1, sizeof(*m));

	if (!m)
		return err_set(e, -ENOMEM, "<memory>: out of memory");
	m->io.ops = &mem_ops;
	snprintf(m->io.name, sizeof(m->io.name), "<memory>");
	if (buf) {
		m->rbuf = buf;
		m->io.size = len;
	} else {
		m->cap = cap;
		m->io.flags = IO_WRITABLE;
	}
	*out = &m->io;
	return 0;
}

const uint8_t *io_mem_data(struct io *io)
{
	struct io_mem *m = (struct io_mem *)io;

	return m->wbuf ? m->wbuf : m->rbuf;
}

int io_read(struct io *io, void *buf, size_t len, uint64_t off,
	    const char *what, struct err *e)
{
	if (!(io->flags & IO_STREAM) && !range_ok(off, len, io->size))
		return err_set(e, EI_ETRUNC,
			       "%s at %llu+%zu lies past the end of %s (%llu bytes)",
			       what, (unsigned long long)off, len, io->name,
			       (unsigned long long)io->size);
	return io->ops->pread(io, buf, len, off, e);
}

int io_write(struct io *io, const void *buf, size_t len, uint64_t off,
	     struct err *e)
{
	int r = io->ops->pwrite(io, buf, len, off, e);

	if (r == 0 && off + len > io->end)
		io->end = off + len;
	return r;
}

int io_zero(struct io *io, uint64_t off, uint64_t len, struct err *e)
{
	static const uint8_t zero[64 << 10];
	int r = io->ops->zero ? io->ops->zero(io, off, len, e) : -EOPNOTSUPP;

	if (r == 0 && off + len > io->end)
		io->end = off + len;
	if (r != -EOPNOTSUPP)
		return r;
	for (uint64_t done = 0; done < len;) {
		size_t n = (size_t)min_u64(sizeof(zero), len - done);

		r = io_write(io, zero, n, off + done, e);
		if (r < 0)
			return r;
		done += n;
	}
	return 0;
}

int io_drop_cache(struct io *io, struct err *e)
{
	return io->ops->drop_cache ? io->ops->drop_cache(io, e) : 0;
}

int io_fd(const struct io *io)
{
	return io->ops == &fd_ops ? ((const struct io_fd *)io)->fd : -1;
}

int io_truncate(struct io *io, uint64_t size, struct err *e)
{
	int r = io->ops->truncate(io, size, e);

	if (r == 0)
		io->end = size;
	return r;
}

int io_sync(struct io *io, struct err *e)
{
	return io->ops->sync(io, e);
}

void io_close(struct io *io)
{
	if (io)
		io->ops->close(io);
}

int io_probe_data(struct io *io, uint64_t off, uint64_t len, uint64_t *run,
		  struct err *e)
{
	if (!io->ops->probe_data) {
		*run = len;
		return 1;
	}
	return io->ops->probe_data(io, off, len, run, e);
}

/* --- an io that holds no bytes -------------------------------------------- */

static void null_close(struct io *io)
{
	free(io);
}

static const struct io_ops null_ops = { .close = null_close };

struct io *io_null(const char *name, uint64_t size)
{
	struct io *io = calloc(1, sizeof(*io));

	if (!io)
		return NULL;
	io->ops = &null_ops;
	io->size = size;
	snprintf(io->name, sizeof(io->name), "%s", name);
	return io;
}
