// SPDX-License-Identifier: MIT
/* Output files: regular files replaced durably, block devices in place, stdout. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/outfile.h"
#include "delta/delta.h"

int same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	if (stat(a, &sa) < 0 || stat(b, &sb) < 0)
		return 0;
	if (S_ISBLK(sa.st_mode) && S_ISBLK(sb.st_mode))
		return sa.st_rdev == sb.st_rdev;
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int dir_open(const char *path, const char **name, struct err *e)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];
	int fd;

	if (slash && !slash[1])
		return err_set(e, -EISDIR, "%s: names a directory", path);
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else if ((size_t)(slash - path) >= sizeof(dir))
		return err_set(e, -ENAMETOOLONG, "%s: name too long", path);
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	*name = slash ? slash + 1 : path;
	if (strlen(*name) > 255)
		return err_set(e, -ENAMETOOLONG, "%s: name too long", path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(e, errno, "%s: its directory %s", path, dir);
	return fd;
}

int fsync_dir(int dirfd, const char *path, struct err *e)
{
	if (fsync(dirfd) < 0 && errno != EINVAL && errno != EROFS)
		return err_errno(e, errno, "%s: fsync of its directory", path);
	return 0;
}

/* A fresh name ".@base.edgeimg-XXXXXX" in @buf (no file is made). */
static void tmp_name(char *buf, size_t len, const char *base)
{
	struct timespec ts;
	unsigned long x;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	x = (unsigned long)ts.tv_nsec ^ ((unsigned long)getpid() << 12) ^
	    ((unsigned long)rand() << 20);
	if (strlen(base) > 200)
		base = "";
	snprintf(buf, len, ".%s.edgeimg-%06lx", base, x & 0xffffff);
}

/*
 * The process's umask, read from /proc/self/status (Linux 4.7) without
 * changing it: umask() can only be read by setting it, which would let
 * another thread of a program linking the library create files with
 * umask 0.  Without /proc, that is the fallback.
 */
static mode_t process_umask(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[128];
	unsigned m;
	mode_t mask;

	if (f) {
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "Umask: %o", &m) == 1) {
				fclose(f);
				return (mode_t)(m & 0777);
			}
		fclose(f);
	}
	mask = umask(0);
	umask(mask);
	return mask;
}

int file_commit(int dirfd, int fd, const char *tmp, const char *name,
		mode_t mode, const char *path, struct err *e)
{
	char lnk[300], proc[64];
	mode_t mask = process_umask();
	int r, tries;

	if (fsync(fd) < 0)
		return err_errno(e, errno, "%s: fsync", path);
	if (fchmod(fd, mode & ~mask) < 0)
		return err_errno(e, errno, "%s: chmod", path);
	if (!tmp) {
		/* an unnamed O_TMPFILE: link it under a temporary name first */
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		for (tries = 0; tries < 100; tries++) {
			tmp_name(lnk, sizeof(lnk), name);
			r = linkat(AT_FDCWD, proc, dirfd, lnk, AT_SYMLINK_FOLLOW);
			if (r < 0 && errno == ENOENT)   /* no /proc: privileged way */
				r = linkat(fd, "", dirfd, lnk, AT_EMPTY_PATH);
			if (r == 0 || errno != EEXIST)
				break;
		}
		if (r < 0)
			return err_errno(e, errno, "%s: cannot link the finished output", path);
		tmp = lnk;
	}
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		r = err_errno(e, errno, "%s: cannot put the output in place", path);
		if (tmp == lnk)
			unlinkat(dirfd, lnk, 0);
		return r;
	}
	r = fsync_dir(dirfd, path, e);
	if (r < 0) {
		/* the rename is not durable, so not a commit: take it back */
		renameat(dirfd, name, dirfd, tmp);
		if (tmp == lnk)
			unlinkat(dirfd, lnk, 0);
	}
	return r;
}

static const char *mode_name(mode_t m)
{
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	if (S_ISREG(m))
		return "a regular file";
	if (S_ISLNK(m))
		return "a symbolic link";
	return "not a file";
}

/* 1 when the regular file @path starts with the delta patch magic. */
static int is_patch(const char *path)
{
	uint8_t head[DELTA_MAGIC_LEN];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK), ok;

	if (fd < 0)
		return 0;
	ok = read(fd, head, sizeof(head)) == (ssize_t)sizeof(head) &&
	     delta_is_patch(head, sizeof(head));
	close(fd);
	return ok;
}

static int outfile_stdout(struct outfile *of, unsigned flags, struct err *e)
{
	int fd;

	if (!(flags & OUTFILE_STREAM))
		return err_set(e, EI_EUSAGE,
			       "-: this output format cannot go to standard output (it is not written front to back); name a file");
	if (isatty(STDOUT_FILENO))
		return err_set(e, EI_EUSAGE,
			       "-: standard output is a terminal; redirect it to a file or a pipe");
	fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return err_errno(e, errno, "<stdout>");
	of->kind = OUT_STDOUT;
	return io_open_fd(fd, "<stdout>", IO_OPEN_RW, &of->io, e);
}

static int outfile_temp(struct outfile *of, struct err *e)
{
	const char *name;
	int fd, r, tries;

	of->dirfd = dir_open(of->path, &name, e);
	if (of->dirfd < 0)
		return of->dirfd;
	snprintf(of->name, sizeof(of->name), "%s", name);
	fd = openat(of->dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	for (tries = 0; fd < 0 && tries < 100; tries++) {
		/* a file system without O_TMPFILE: a hidden name */
		tmp_name(of->tmp, sizeof(of->tmp), of->name);
		fd = openat(of->dirfd, of->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		of->tmp[0] = 0;
		return err_errno(e, errno, "%s: cannot create a temporary file", of->path);
	}
	of->kind = OUT_FILE;
	r = io_open_fd(fd, of->path, IO_OPEN_RW, &of->io, e);
	if (r < 0)
		return r;
	of->io->flags |= IO_WRITEBEHIND;
	return 0;
}

int outfile_open(struct outfile *of, const char *path, unsigned flags,
		 const char *const *inputs, struct err *e)
{
	struct stat st, tgt;
	int r;

	memset(of, 0, sizeof(*of));
	of->dirfd = -1;
	if (strlen(path) >= sizeof(of->path))
		return err_set(e, -ENAMETOOLONG, "%s: name too long", path);
	snprintf(of->path, sizeof(of->path), "%s", path);
	if (!strcmp(path, "-"))
		return outfile_stdout(of, flags, e);
	for (; inputs && *inputs; inputs++)
		if (same_file(path, *inputs))
			return err_set(e, EI_EUSAGE,
				       "%s is also an input of this command (%s): refusing to write over it",
				       path, *inputs);
	if (lstat(path, &st) < 0) {
		if (errno != ENOENT)
			return err_errno(e, errno, "%s", path);
		r = outfile_temp(of, e);
		goto out;
	}
	if (S_ISLNK(st.st_mode)) {
		if (stat(path, &tgt) == 0 && S_ISBLK(tgt.st_mode))
			goto device;
		return err_set(e, EI_EUSAGE,
			       "%s is a symbolic link (to %s): edgeimg writes regular files, block devices and - (standard output), and never replaces a link; name the target or remove the link",
			       path, stat(path, &tgt) == 0 ? mode_name(tgt.st_mode) : "nothing");
	}
	if (S_ISBLK(st.st_mode))
		goto device;
	if (!S_ISREG(st.st_mode))
		return err_set(e, EI_EUSAGE,
			       "%s is %s: edgeimg writes regular files, block devices and - (standard output)%s",
			       path, mode_name(st.st_mode),
			       S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) ?
			       "; use - to write to standard output" : "");
	if (!(flags & OUTFILE_PATCH) && is_patch(path))
		return err_set(e, EI_EUSAGE,
			       "%s is a delta patch: refusing to replace it with an image (are the arguments in the right order?)",
			       path);
	if (!(flags & OUTFILE_FORCE))
		return err_set(e, -EEXIST, "%s: already exists; use --force to replace it",
			       path);
	r = outfile_temp(of, e);
	goto out;
device:
	of->kind = OUT_BLOCKDEV;
	r = io_open_file(path, IO_OPEN_RW | IO_OPEN_EXCL, &of->io, e);
out:
	if (r < 0)
		outfile_abort(of);
	return r;
}

int outfile_commit(struct outfile *of, struct err *e)
{
	int r;

	if (of->kind == OUT_FILE)
		r = file_commit(of->dirfd, io_fd(of->io), of->tmp[0] ? of->tmp : NULL,
				of->name, 0666, of->path, e);
	else
		r = io_sync(of->io, e);
	if (r < 0) {
		outfile_abort(of);
		return r;
	}
	of->tmp[0] = 0;         /* it is OUT now */
	io_close(of->io);
	of->io = NULL;
	if (of->dirfd >= 0)
		close(of->dirfd);
	of->dirfd = -1;
	return 0;
}

void outfile_abort(struct outfile *of)
{
	io_close(of->io);
	of->io = NULL;
	if (of->dirfd >= 0) {
		if (of->tmp[0])
			unlinkat(of->dirfd, of->tmp, 0);
		close(of->dirfd);
	}
	of->dirfd = -1;
	of->tmp[0] = 0;
}
