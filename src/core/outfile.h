/* SPDX-License-Identifier: MIT */
/*
 * Outputs that are never what they seem: a regular file appears whole or
 * not at all (written under a temporary, synced, renamed, the directory
 * synced), a block device is written in place, "-" is standard output;
 * nothing else is ever written.  And the one durable-replace helper.
 */
#ifndef EDGEIMG_OUTFILE_H
#define EDGEIMG_OUTFILE_H

#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"
#include "core/io.h"

enum out_kind {
	OUT_FILE,               /* a regular file, renamed into place */
	OUT_BLOCKDEV,           /* a block device, written in place */
	OUT_STDOUT,             /* standard output ("-") */
};

/* outfile_open() flags */
#define OUTFILE_FORCE 1u        /* an existing regular file may be replaced */
#define OUTFILE_STREAM 2u       /* the writer can write a stream: "-" allowed */
#define OUTFILE_PATCH 4u        /* OUT is a patch: it may replace a patch */

struct outfile {
	struct io *io;
	enum out_kind kind;
	int dirfd;              /* OUT's directory (OUT_FILE), -1 otherwise */
	char path[4096];        /* as given */
	char name[256];         /* OUT's name in dirfd */
	char tmp[300];          /* a named temporary in dirfd, "" with O_TMPFILE */
};

/*
 * outfile_open() - open @path for a writer.  "-" is standard output, when
 * @flags has OUTFILE_STREAM (and not a terminal); a block device, or a
 * symbolic link to one, is opened in place and exclusively (O_EXCL: not
 * while mounted); a regular file is written under a temporary in its
 * directory (O_TMPFILE, else a hidden name) and replaces an existing one
 * only with OUTFILE_FORCE.  Refused, naming what it is: a directory, a
 * FIFO, a socket, a character device, a symbolic link to anything but a
 * block device, an existing delta patch (unless OUTFILE_PATCH), and any
 * of the NULL-terminated @inputs (the same file, whatever its name).
 */
int outfile_open(struct outfile *of, const char *path, unsigned flags,
		 const char *const *inputs, struct err *e);

/* outfile_commit() - sync and put the output in place (see file_commit()). */
int outfile_commit(struct outfile *of, struct err *e);

/* outfile_abort() - close and remove whatever was written. */
void outfile_abort(struct outfile *of);

/*
 * file_commit() - the durable replace: fsync @fd, give it @mode less the
 * umask, rename the temporary @tmp (or link the unnamed O_TMPFILE @fd when
 * @tmp is NULL) to @name, both in the directory @dirfd, and fsync the
 * directory; every result is checked.  @path names OUT in messages.  When
 * the directory's fsync fails, the rename is taken back (@name leaves, @tmp
 * holds the file again; a replaced @name is not restored) and the error
 * returned: an output is never left in place after a failed commit.
 */
int file_commit(int dirfd, int fd, const char *tmp, const char *name,
		mode_t mode, const char *path, struct err *e);

/*
 * dir_open() - the directory holding @path (its parent, "." without a
 * slash) as a descriptor; *@name points into @path at the last component.
 */
int dir_open(const char *path, const char **name, struct err *e);

/* fsync_dir() - fsync the directory @dirfd, its result checked. */
int fsync_dir(int dirfd, const char *path, struct err *e);

/*
 * same_file() - 1 when @a and @b name the same file (same inode, or the
 * same block device), 0 when not or when either does not exist.
 */
int same_file(const char *a, const char *b);

#endif
