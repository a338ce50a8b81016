// SPDX-License-Identifier: MIT
/*
 * libfault.so: an LD_PRELOAD interposer that makes the file system fail,
 * for tests (tests/cli/fault.sh).  Faults are inputs too: every call that
 * touches a watched file can be made to fail, to come back short, or to be
 * the moment the power goes.  A static binary cannot be interposed, so the
 * fault tests run on the host (dynamically linked) build.
 *
 * Which calls.  A call is "watched" when the file it works on matches
 * FAULT_MATCH: the path of a descriptor (readlink of /proc/self/fd/N, so an
 * unnamed O_TMPFILE reads "DIR/#INODE (deleted)"), or a path argument made
 * absolute against its directory descriptor or the working directory (not
 * otherwise normalised).  The calls, by kind:
 *
 *   open    open, open64, openat, openat64, their __*_2 forms, mkostemp(64)
 *           (O_TMPFILE opens the directory: match "DIR" or "DIR/.")
 *   read    read, pread, pread64
 *   write   write, pwrite, pwrite64
 *   sync    fsync, fdatasync (of a file or of a directory)
 *   rename  rename, renameat, renameat2 (either name watched)
 *   link    link, linkat (the new name watched)
 *   unlink  unlink, unlinkat
 *   trunc   ftruncate, ftruncate64
 *   alloc   fallocate, fallocate64
 *   sfr     sync_file_range
 *   ioctl   ioctl (e.g. BLKZEROOUT on a device)
 *   chmod   fchmod
 *
 * The environment:
 *
 *   FAULT_MATCH=PAT[:PAT...]  fnmatch(3) patterns, flags 0 ('*' crosses
 *                          '/'); nothing is watched without it.
 *   FAULT_OPS=KIND,...     the kinds that are numbered, failed or cut at
 *                          (default all; "mut" is every kind that changes
 *                          the disk: open write sync rename link unlink
 *                          trunc alloc ioctl chmod).
 *   FAULT_COUNT=FILE       counting mode: at exit, append "KIND N" for every
 *                          kind with watched calls, then "points N", the
 *                          watched calls of the FAULT_OPS kinds (the points
 *                          a sweep visits: 1..N).
 *   FAULT_AT=N             the Nth watched call of the FAULT_OPS kinds fails
 *                          (from 1), and only that one, as FAULT_ERR says:
 *   FAULT_ERR=EIO|ENOSPC|short  EIO (default) or ENOSPC: the call is not
 *                          made, returns -1 with that errno (a read: EIO,
 *                          read(2) has no ENOSPC).  short: only
 *                          write calls are numbered; the Nth writes half of
 *                          its bytes (at least 1) and returns that count.
 *   FAULT_CUT=N            the power-cut model: at the Nth watched call of
 *                          the FAULT_OPS kinds, before it is made, every
 *                          watched file loses what was written to it since
 *                          its last fsync/fdatasync (its synced content and
 *                          size come back), every create, rename, link and
 *                          unlink since its directory's last fsync is undone
 *                          (a name replaced by a rename comes back), and the
 *                          process is killed with SIGKILL.
 *   FAULT_TORN=1           with FAULT_CUT: the last write before the cut,
 *                          if not synced, is torn instead of lost: its first
 *                          half (in 512-byte sectors) reaches the disk.
 *   FAULT_LOG=FILE         append a line per injected fault or cut:
 *                          "fault|short|cut N KIND FUNC ERRNO|- PATH" (and
 *                          "torn BYTES of LEN bytes at OFF" after a cut
 *                          that tore the last write), or "nocut N" when a
 *                          FAULT_CUT run ended after N calls, before the cut.
 *   FAULT_NOSYNC=1         watched fsync, fdatasync and sync_file_range
 *                          succeed at once without syncing anything (with
 *                          FAULT_CUT the model, not the disk, decides what
 *                          a sync made durable): sweeps run at memory speed.
 *   FAULT_UNDO_MAX=BYTES   the cap of the bytes kept to undo unsynced
 *                          writes (default 256 MiB); past it the process
 *                          aborts, saying so: keep the inputs small.
 *
 * The bookkeeping of FAULT_CUT: before a watched write (or truncate, hole
 * punch, BLKZEROOUT, O_TRUNC open) the bytes it replaces and the file's
 * size are saved, per inode, through a descriptor of our own; fsync or
 * fdatasync of the file drops them.  Before a watched rename over an
 * existing name or an unlink, the old file is kept by a hard link
 * ".fault-bak-PID-N" beside it, removed when the directory is fsynced or
 * at exit.  Watched calls are numbered under one lock (so a multi-threaded
 * program gets each number once); those the power-cut model records run
 * under it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

enum kind {
	K_OPEN, K_READ, K_WRITE, K_SYNC, K_RENAME, K_LINK, K_UNLINK, K_TRUNC,
	K_ALLOC, K_SFR, K_IOCTL, K_CHMOD, K_NR
};

static const char *const kind_name[K_NR] = {
	"open", "read", "write", "sync", "rename", "link", "unlink", "trunc",
	"alloc", "sfr", "ioctl", "chmod",
};

#define MUT_KINDS (1u << K_OPEN | 1u << K_WRITE | 1u << K_SYNC | 1u << K_RENAME | \
		   1u << K_LINK | 1u << K_UNLINK | 1u << K_TRUNC | 1u << K_ALLOC | \
		   1u << K_IOCTL | 1u << K_CHMOD)

enum mode { M_NONE, M_FAIL, M_SHORT, M_CUT };

static struct {
	pthread_once_t once;
	pthread_mutex_t lock;
	char *match;                    /* the patterns, ':' turned into NULs */
	unsigned ops;                   /* bit per kind */
	enum mode mode;
	long at;                        /* FAULT_AT or FAULT_CUT */
	int err;                        /* errno of M_FAIL */
	int torn, nosync;
	const char *count_path, *log_path;
	uint64_t undo_max, undo_bytes;
	long n;                         /* numbered calls so far */
	long count[K_NR];
	int cut_done;
	unsigned bak_seq;
} g = { .once = PTHREAD_ONCE_INIT, .lock = PTHREAD_MUTEX_INITIALIZER };

/* --- the real functions ------------------------------------------------- */

#define REAL(ret, name, ...)                                            \
	static ret (*real_##name)(__VA_ARGS__);                         \
	static ret (*get_##name(void))(__VA_ARGS__)                     \
	{                                                               \
		if (!real_##name)                                       \
			real_##name = dlsym(RTLD_NEXT, #name);          \
		return real_##name;                                     \
	}

REAL(int, open, const char *, int, ...)
REAL(int, open64, const char *, int, ...)
REAL(int, openat, int, const char *, int, ...)
REAL(int, openat64, int, const char *, int, ...)
REAL(int, mkostemp, char *, int)
REAL(int, mkostemp64, char *, int)
REAL(ssize_t, read, int, void *, size_t)
REAL(ssize_t, pread, int, void *, size_t, off_t)
REAL(ssize_t, pread64, int, void *, size_t, off64_t)
REAL(ssize_t, write, int, const void *, size_t)
REAL(ssize_t, pwrite, int, const void *, size_t, off_t)
REAL(ssize_t, pwrite64, int, const void *, size_t, off64_t)
REAL(int, fsync, int)
REAL(int, fdatasync, int)
REAL(int, rename, const char *, const char *)
REAL(int, renameat2, int, const char *, int, const char *, unsigned)
REAL(int, link, const char *, const char *)
REAL(int, linkat, int, const char *, int, const char *, int)
REAL(int, unlink, const char *)
REAL(int, unlinkat, int, const char *, int)
REAL(int, ftruncate64, int, off64_t)
REAL(int, fallocate64, int, int, off64_t, off64_t)
REAL(int, sync_file_range, int, off64_t, off64_t, unsigned)
REAL(int, ioctl, int, unsigned long, ...)
REAL(int, fchmod, int, mode_t)

/* --- set-up, logs, counts ----------------------------------------------- */

static void say(const char *path, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Append a line to @path (stderr when NULL), with the real calls. */
static void say(const char *path, const char *fmt, ...)
{
	char line[8192];
	va_list ap;
	int fd, n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n >= (int)sizeof(line))
		n = sizeof(line) - 1;
	fd = path ? get_open()(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : 2;
	if (fd < 0)
		return;
	if (get_write()(fd, line, (size_t)n) < 0) {
		/* nothing to do: a log is best effort */
	}
	if (path)
		close(fd);
}

static void die(const char *fmt, const char *arg)
{
	say(NULL, "libfault: ");
	say(NULL, fmt, arg);
	say(NULL, "\n");
	abort();
}

static unsigned parse_ops(const char *s)
{
	unsigned ops = 0;
	char buf[256], *tok, *save;

	if (!s || !s[0] || !strcmp(s, "all"))
		return (1u << K_NR) - 1;
	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int k;

		if (!strcmp(tok, "mut")) {
			ops |= MUT_KINDS;
			continue;
		}
		for (k = 0; k < K_NR && strcmp(tok, kind_name[k]); k++)
			;
		if (k == K_NR)
			die("FAULT_OPS: no kind '%s'", tok);
		ops |= 1u << k;
	}
	return ops;
}

static void setup(void)
{
	const char *m = getenv("FAULT_MATCH"), *e = getenv("FAULT_ERR");
	const char *at = getenv("FAULT_AT"), *cut = getenv("FAULT_CUT");
	const char *um = getenv("FAULT_UNDO_MAX");

	if (m && m[0]) {
		size_t len = strlen(m);

		g.match = malloc(len + 2);
		if (!g.match)
			die("%s", "out of memory");
		memcpy(g.match, m, len + 1);
		g.match[len + 1] = 0;
		for (char *p = g.match; *p; p++)
			if (*p == ':')
				*p = 0;
	}
	g.ops = parse_ops(getenv("FAULT_OPS"));
	g.count_path = getenv("FAULT_COUNT");
	g.log_path = getenv("FAULT_LOG");
	g.torn = getenv("FAULT_TORN") && !strcmp(getenv("FAULT_TORN"), "1");
	g.nosync = getenv("FAULT_NOSYNC") && !strcmp(getenv("FAULT_NOSYNC"), "1");
	g.undo_max = um ? strtoull(um, NULL, 10) : 256ull << 20;
	if (cut && at)
		die("%s", "FAULT_AT and FAULT_CUT together");
	if (cut) {
		g.mode = M_CUT;
		g.at = atol(cut);
	} else if (at) {
		g.at = atol(at);
		g.mode = M_FAIL;
		g.err = EIO;
		if (e && !strcmp(e, "ENOSPC"))
			g.err = ENOSPC;
		else if (e && !strcmp(e, "short"))
			g.mode = M_SHORT;
		else if (e && e[0] && strcmp(e, "EIO"))
			die("FAULT_ERR: '%s' is not EIO, ENOSPC or short", e);
	}
	if (g.mode != M_NONE && g.at < 1)
		die("%s", "FAULT_AT/FAULT_CUT count from 1");
}

static void init(void)
{
	pthread_once(&g.once, setup);
}

/* @p made absolute against @dirfd (or the working directory) in @out. */
static int abs_path(int dirfd, const char *p, char *out, size_t len)
{
	char base[PATH_MAX], proc[64];
	ssize_t n;

	if (!p)
		return -1;
	if (p[0] == '/') {
		snprintf(out, len, "%s", p);
		return 0;
	}
	if (dirfd == AT_FDCWD) {
		if (!getcwd(base, sizeof(base)))
			return -1;
	} else {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dirfd);
		n = readlink(proc, base, sizeof(base) - 1);
		if (n < 0)
			return -1;
		base[n] = 0;
	}
	return snprintf(out, len, "%s/%s", base, p) < (int)len ? 0 : -1;
}

static int fd_path(int fd, char *out, size_t len)
{
	char proc[64];
	ssize_t n;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, out, len - 1);
	if (n < 0)
		return -1;
	out[n] = 0;
	return 0;
}

static int matches(const char *path)
{
	if (!g.match)
		return 0;
	for (const char *p = g.match; *p; p += strlen(p) + 1)
		if (fnmatch(p, path, 0) == 0)
			return 1;
	return 0;
}

static void cut_now(long n, enum kind k, const char *fn, const char *path);

/*
 * A watched call of kind @k is about to be made, under g.lock: count it.
 * 1 when it must fail (errno set), 2 when it must be short, 0 to go on.
 */
static int step(enum kind k, const char *fn, const char *path)
{
	long n;

	g.count[k]++;
	if (!(g.ops & (1u << k)))
		return 0;
	if (g.mode == M_SHORT && k != K_WRITE)
		return 0;
	n = ++g.n;
	if (g.mode == M_NONE || n != g.at)
		return 0;
	if (g.mode == M_CUT)
		cut_now(n, k, fn, path);        /* does not return */
	if (g.mode == M_SHORT) {
		say(g.log_path, "short %ld %s %s - %s\n", n, kind_name[k], fn, path);
		return 2;
	}
	/* read(2) has no ENOSPC: a read fails with EIO */
	errno = k == K_READ ? EIO : g.err;
	say(g.log_path, "fault %ld %s %s %s %s\n", n, kind_name[k], fn,
	    errno == EIO ? "EIO" : "ENOSPC", path);
	return 1;
}

static void write_counts(void)
{
	char buf[1024];
	size_t o = 0;

	for (int k = 0; k < K_NR; k++)
		if (g.count[k])
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s %ld\n",
					      kind_name[k], g.count[k]);
	snprintf(buf + o, sizeof(buf) - o, "points %ld\n", g.n);
	say(g.count_path, "%s", buf);
}

/* --- the power-cut bookkeeping ------------------------------------------ */

/* What one write replaced: [off, off + len) held old[] up to old_size. */
struct undo {
	uint64_t off, len, old_size;
	uint8_t *old;                   /* min(len, old_size - off) bytes */
	struct undo *prev;
};

struct tracked {
	dev_t dev;
	ino_t ino;
	int fd;                         /* our own O_RDWR descriptor */
	int blk;                        /* a block device: no size to restore */
	struct undo *log;               /* newest first */
	struct tracked *next;
};

/* A directory operation not yet made durable by an fsync of its directory. */
enum dop { D_CREATE, D_RENAME, D_LINK, D_UNLINK };
struct dirop {
	enum dop op;
	dev_t dev[2];                   /* the directories involved */
	ino_t ino[2];
	int pending[2];                 /* not yet fsynced */
	char a[PATH_MAX], b[PATH_MAX];  /* CREATE/LINK/UNLINK: a; RENAME: a -> b */
	char bak[PATH_MAX];             /* the file a name held before, or "" */
	struct dirop *prev;
};

static struct tracked *files;
static struct dirop *dirops;            /* newest first */
static struct {                         /* the last unsynced write, for FAULT_TORN */
	struct tracked *t;
	uint64_t off;
	size_t len;
	uint8_t *data;
} last;

static void forget_last(struct tracked *t)
{
	if (!t || last.t == t) {
		free(last.data);
		memset(&last, 0, sizeof(last));
	}
}

static struct tracked *tracked_find(const struct stat *st)
{
	for (struct tracked *t = files; t; t = t->next)
		if (t->dev == st->st_dev && t->ino == st->st_ino)
			return t;
	return NULL;
}

/* The record of the file open as @fd (or at @path), made on first use. */
static struct tracked *tracked_get(int fd, const char *path)
{
	struct stat st;
	struct tracked *t;
	char proc[64];
	int own;

	if ((fd >= 0 ? fstat(fd, &st) : stat(path, &st)) < 0)
		return NULL;
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return NULL;
	t = tracked_find(&st);
	if (t)
		return t;
	if (fd >= 0) {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		path = proc;
	}
	own = get_open()(path, O_RDWR | O_CLOEXEC);
	if (own < 0)
		die("cannot reopen %s to keep its synced content", path);
	/* out of the way of the program's own descriptors */
	fd = fcntl(own, F_DUPFD_CLOEXEC, 900);
	if (fd >= 0) {
		close(own);
		own = fd;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		die("%s", "out of memory");
	t->dev = st.st_dev;
	t->ino = st.st_ino;
	t->fd = own;
	t->blk = S_ISBLK(st.st_mode);
	t->next = files;
	files = t;
	return t;
}

static uint64_t file_size(struct tracked *t)
{
	struct stat st;
	uint64_t sz = 0;

	if (t->blk)
		return get_ioctl()(t->fd, BLKGETSIZE64, &sz) < 0 ? 0 : sz;
	return fstat(t->fd, &st) < 0 ? 0 : (uint64_t)st.st_size;
}

/* Before [off, off + len) of @t changes: keep what it holds and the size. */
static struct undo *undo_save(struct tracked *t, uint64_t off, uint64_t len)
{
	struct undo *u = calloc(1, sizeof(*u));
	uint64_t keep;

	if (!u)
		die("%s", "out of memory");
	u->off = off;
	u->len = len;
	u->old_size = file_size(t);
	keep = off < u->old_size ? u->old_size - off : 0;
	if (keep > len)
		keep = len;
	if (keep) {
		if (g.undo_bytes + keep > g.undo_max)
			die("%s", "FAULT_UNDO_MAX reached: the unsynced writes are too many to keep; use smaller inputs");
		u->old = malloc(keep);
		if (!u->old || get_pread64()(t->fd, u->old, keep, (off64_t)off) != (ssize_t)keep)
			die("%s", "cannot save the bytes a write replaces");
		g.undo_bytes += keep;
	}
	u->prev = t->log;
	t->log = u;
	return u;
}

/* The change of @u did not happen after all. */
static void undo_drop(struct tracked *t, struct undo *u)
{
	uint64_t keep = u->off < u->old_size ? u->old_size - u->off : 0;

	t->log = u->prev;
	g.undo_bytes -= keep > u->len ? u->len : keep;
	free(u->old);
	free(u);
}

static void synced(struct tracked *t)
{
	while (t->log)
		undo_drop(t, t->log);
	forget_last(t);
}

/* Before a watched write of @len bytes at @off (-1: the file position). */
static struct undo *cut_write(int fd, int64_t off, const void *buf, size_t len,
			      struct tracked **tp)
{
	struct tracked *t;
	struct undo *u;

	if (g.mode != M_CUT || !(t = tracked_get(fd, NULL)))
		return NULL;
	if (off < 0) {
		int fl = fcntl(fd, F_GETFL);

		off = (fl >= 0 && (fl & O_APPEND)) ? (int64_t)file_size(t) :
		      (int64_t)lseek(fd, 0, SEEK_CUR);
		if (off < 0)
			return NULL;
	}
	u = undo_save(t, (uint64_t)off, len);
	if (buf) {
		forget_last(NULL);
		last.data = malloc(len ? len : 1);
		if (!last.data)
			die("%s", "out of memory");
		memcpy(last.data, buf, len);
		last.t = t;
		last.off = (uint64_t)off;
		last.len = len;
	}
	*tp = t;
	return u;
}

/* After it: @done bytes changed (< 0: none). */
static void cut_wrote(struct tracked *t, struct undo *u, ssize_t done)
{
	if (!u)
		return;
	if (done < 0) {
		if (last.t == t && last.off == u->off)
			forget_last(NULL);
		undo_drop(t, u);
	} else if (last.t == t && last.off == u->off && (size_t)done < last.len) {
		last.len = (size_t)done;
	}
}

static void dir_of(const char *path, dev_t *dev, ino_t *ino)
{
	char d[PATH_MAX], *s;
	struct stat st;

	snprintf(d, sizeof(d), "%s", path);
	s = strrchr(d, '/');
	if (s == d)
		s[1] = 0;
	else if (s)
		*s = 0;
	if (stat(s ? d : ".", &st) < 0)
		memset(&st, 0, sizeof(st));
	*dev = st.st_dev;
	*ino = st.st_ino;
}

static struct dirop *dirop_new(enum dop op, const char *a, const char *b)
{
	struct dirop *d = calloc(1, sizeof(*d));

	if (!d)
		die("%s", "out of memory");
	d->op = op;
	snprintf(d->a, sizeof(d->a), "%s", a);
	if (b)
		snprintf(d->b, sizeof(d->b), "%s", b);
	dir_of(a, &d->dev[0], &d->ino[0]);
	d->pending[0] = 1;
	if (b) {
		dir_of(b, &d->dev[1], &d->ino[1]);
		d->pending[1] = 1;
	}
	d->prev = dirops;
	dirops = d;
	return d;
}

static void dirop_unlink(struct dirop *d)
{
	struct dirop **pp;

	for (pp = &dirops; *pp && *pp != d; pp = &(*pp)->prev)
		;
	if (*pp)
		*pp = d->prev;
	free(d);
}

/* Keep the file at @path under a hard link beside it, in d->bak. */
static void dirop_backup(struct dirop *d, const char *path)
{
	char *s;

	snprintf(d->bak, sizeof(d->bak), "%s", path);
	s = strrchr(d->bak, '/');
	snprintf(s ? s + 1 : d->bak, sizeof(d->bak) - (size_t)(s ? s + 1 - d->bak : 0),
		 ".fault-bak-%d-%u", (int)getpid(), ++g.bak_seq);
	if (get_link()(path, d->bak) < 0)
		die("cannot keep %s before it is replaced", path);
}

/* The directory open as @fd was fsynced: what happened in it is durable. */
static void dir_synced(int fd)
{
	struct stat st;
	struct dirop *d, *prev;

	if (fstat(fd, &st) < 0)
		return;
	for (d = dirops; d; d = prev) {
		prev = d->prev;
		for (int i = 0; i < 2; i++)
			if (d->pending[i] && d->dev[i] == st.st_dev && d->ino[i] == st.st_ino)
				d->pending[i] = 0;
		if (!d->pending[0] && !d->pending[1]) {
			if (d->bak[0])
				get_unlink()(d->bak);
			dirop_unlink(d);
		}
	}
}

static void cut_now(long n, enum kind k, const char *fn, const char *path)
{
	g.cut_done = 1;
	say(g.log_path, "cut %ld %s %s - %s\n", n, kind_name[k], fn, path);
	/* the files: back to their synced content and size */
	for (struct tracked *t = files; t; t = t->next) {
		for (struct undo *u = t->log; u; u = u->prev) {
			uint64_t keep = u->off < u->old_size ? u->old_size - u->off : 0;

			if (keep > u->len)
				keep = u->len;
			if (keep && get_pwrite64()(t->fd, u->old, keep, (off64_t)u->off) != (ssize_t)keep)
				die("%s", "cannot restore the synced content");
			if (!t->blk && get_ftruncate64()(t->fd, (off64_t)u->old_size) < 0)
				die("%s", "cannot restore the synced size");
		}
	}
	/* the last write, torn: its first sectors made it */
	if (g.torn && last.t && last.len >= 1024) {
		size_t part = (last.len / 2) & ~(size_t)511;

		if (get_pwrite64()(last.t->fd, last.data, part, (off64_t)last.off) != (ssize_t)part)
			die("%s", "cannot tear the last write");
		say(g.log_path, "torn %zu of %zu bytes at %llu\n", part, last.len,
		    (unsigned long long)last.off);
	}
	/* the names: newest first */
	for (struct dirop *d = dirops; d; d = d->prev) {
		switch (d->op) {
		case D_CREATE:
		case D_LINK:
			get_unlink()(d->a);
			break;
		case D_RENAME:
			get_rename()(d->b, d->a);
			if (d->bak[0])
				get_rename()(d->bak, d->b);
			break;
		case D_UNLINK:
			get_rename()(d->bak, d->a);
			break;
		}
	}
	kill(getpid(), SIGKILL);
	for (;;)
		pause();
}

__attribute__((destructor)) static void fini(void)
{
	long seen = 0;

	init();
	pthread_mutex_lock(&g.lock);
	for (int k = 0; k < K_NR; k++)
		seen += g.count[k];
	/* a process that touched no watched file (a wrapper script) says nothing */
	if (g.count_path && seen)
		write_counts();
	if (g.mode == M_CUT && !g.cut_done && seen)
		say(g.log_path, "nocut %ld\n", g.n);
	/* a run that ends: what it did stays, the backups go */
	for (struct dirop *d = dirops; d; d = d->prev)
		if (d->bak[0])
			get_unlink()(d->bak);
	pthread_mutex_unlock(&g.lock);
}

/* --- the interposed calls ----------------------------------------------- */

#define LOCK() pthread_mutex_lock(&g.lock)
#define UNLOCK() pthread_mutex_unlock(&g.lock)

/*
 * A watched call of kind @k begins: lock and count it.  -1 when it fails
 * (unlocked, errno set); else locked, 2 when a write must be short.
 */
static int enter(enum kind k, const char *fn, const char *path)
{
	int s;

	LOCK();
	s = step(k, fn, path);
	if (s == 1) {
		UNLOCK();
		return -1;
	}
	return s;
}

/* A descriptor call: watched?  The path goes to @path. */
static int fd_watched(int fd, char *path, size_t len)
{
	init();
	return g.match && fd >= 0 && fd_path(fd, path, len) == 0 && matches(path);
}

/* The real open of the name @fn. */
static int call_open(int dirfd, const char *p, int flags, mode_t mode, const char *fn)
{
	if (!strcmp(fn, "open"))
		return get_open()(p, flags, mode);
	if (!strcmp(fn, "open64"))
		return get_open64()(p, flags, mode);
	if (!strcmp(fn, "openat"))
		return get_openat()(dirfd, p, flags, mode);
	if (!strcmp(fn, "__open_2") || !strcmp(fn, "__open64_2"))
		return get_open64()(p, flags);
	return get_openat64()(dirfd, p, flags, mode);
}

static int do_open(int dirfd, const char *p, int flags, mode_t mode, const char *fn)
{
	char path[PATH_MAX];
	struct stat st;
	struct undo *u = NULL;
	struct tracked *t = NULL;
	int fd, existed, s;

	init();
	if (!g.match || abs_path(dirfd, p, path, sizeof(path)) < 0 || !matches(path))
		return call_open(dirfd, p, flags, mode, fn);
	s = enter(K_OPEN, fn, path);
	if (s < 0)
		return -1;
	existed = fstatat(dirfd, p, &st, 0) == 0;
	if (g.mode == M_CUT && (flags & O_TRUNC) && existed && S_ISREG(st.st_mode) &&
	    (t = tracked_get(-1, path)))
		u = undo_save(t, 0, (uint64_t)st.st_size);
	fd = call_open(dirfd, p, flags, mode, fn);
	if (fd < 0 && u)
		undo_drop(t, u);
	if (fd >= 0 && g.mode == M_CUT && (flags & O_CREAT) && !existed &&
	    (flags & O_TMPFILE) != O_TMPFILE)
		dirop_new(D_CREATE, path, NULL);
	UNLOCK();
	return fd;
}

static mode_t open_mode(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ?
	       (mode_t)va_arg(ap, int) : 0;
}

/* The variadic opens, relative to the working directory or to a dirfd. */
#define OPEN_PARAMS_cwd const char *p, int flags, ...
#define OPEN_PARAMS_at int dirfd, const char *p, int flags, ...
#define OPEN_DIRFD_cwd AT_FDCWD
#define OPEN_DIRFD_at dirfd
#define OPEN_VARIADIC(fn, at)                                           \
	int fn(OPEN_PARAMS_##at)                                        \
	{                                                               \
		va_list ap;                                             \
		mode_t m;                                               \
									\
		va_start(ap, flags);                                    \
		m = open_mode(flags, ap);                               \
		va_end(ap);                                             \
		return do_open(OPEN_DIRFD_##at, p, flags, m, #fn);      \
	}

OPEN_VARIADIC(open, cwd)
OPEN_VARIADIC(open64, cwd)
OPEN_VARIADIC(openat, at)
OPEN_VARIADIC(openat64, at)

int __open_2(const char *p, int flags)
{
	return do_open(AT_FDCWD, p, flags, 0, "__open_2");
}

int __open64_2(const char *p, int flags)
{
	return do_open(AT_FDCWD, p, flags, 0, "__open64_2");
}

int __openat_2(int dirfd, const char *p, int flags)
{
	return do_open(dirfd, p, flags, 0, "__openat_2");
}

int __openat64_2(int dirfd, const char *p, int flags)
{
	return do_open(dirfd, p, flags, 0, "__openat64_2");
}

static int do_mkostemp(char *tmpl, int flags, int (*call)(char *, int), const char *fn)
{
	char path[PATH_MAX];
	int fd, s;

	init();
	if (!g.match || abs_path(AT_FDCWD, tmpl, path, sizeof(path)) < 0 || !matches(path))
		return call(tmpl, flags);
	s = enter(K_OPEN, fn, path);
	if (s < 0)
		return -1;
	fd = call(tmpl, flags);
	if (fd >= 0 && g.mode == M_CUT && abs_path(AT_FDCWD, tmpl, path, sizeof(path)) == 0)
		dirop_new(D_CREATE, path, NULL);
	UNLOCK();
	return fd;
}

int mkostemp(char *tmpl, int flags)
{
	return do_mkostemp(tmpl, flags, get_mkostemp(), "mkostemp");
}

int mkostemp64(char *tmpl, int flags)
{
	return do_mkostemp(tmpl, flags, get_mkostemp64(), "mkostemp64");
}

/* read, pread: @off < 0 for read. */
static ssize_t do_read(int fd, void *buf, size_t len, int64_t off, const char *fn)
{
	char path[PATH_MAX];

	if (!fd_watched(fd, path, sizeof(path)))
		goto call;
	if (enter(K_READ, fn, path) < 0)
		return -1;
	UNLOCK();
call:
	if (!strcmp(fn, "read"))
		return get_read()(fd, buf, len);
	if (!strcmp(fn, "pread"))
		return get_pread()(fd, buf, len, (off_t)off);
	return get_pread64()(fd, buf, len, (off64_t)off);
}

ssize_t read(int fd, void *buf, size_t len)
{
	return do_read(fd, buf, len, -1, "read");
}

ssize_t pread(int fd, void *buf, size_t len, off_t off)
{
	return do_read(fd, buf, len, off, "pread");
}

ssize_t pread64(int fd, void *buf, size_t len, off64_t off)
{
	return do_read(fd, buf, len, off, "pread64");
}

/* The real write of the name @fn (@off < 0 for write). */
static ssize_t call_write(int fd, const void *buf, size_t len, int64_t off,
			  const char *fn)
{
	if (!strcmp(fn, "write"))
		return get_write()(fd, buf, len);
	if (!strcmp(fn, "pwrite"))
		return get_pwrite()(fd, buf, len, (off_t)off);
	return get_pwrite64()(fd, buf, len, (off64_t)off);
}

static ssize_t do_write(int fd, const void *buf, size_t len, int64_t off,
			const char *fn)
{
	char path[PATH_MAX];
	struct tracked *t = NULL;
	struct undo *u;
	ssize_t r;
	int s;

	if (!fd_watched(fd, path, sizeof(path)))
		return call_write(fd, buf, len, off, fn);
	s = enter(K_WRITE, fn, path);
	if (s < 0)
		return -1;
	if (s == 2 && len > 1)
		len /= 2;
	u = cut_write(fd, off, buf, len, &t);
	r = call_write(fd, buf, len, off, fn);
	cut_wrote(t, u, r);
	UNLOCK();
	return r;
}

ssize_t write(int fd, const void *buf, size_t len)
{
	return do_write(fd, buf, len, -1, "write");
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	return do_write(fd, buf, len, off, "pwrite");
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off64_t off)
{
	return do_write(fd, buf, len, off, "pwrite64");
}

static int do_sync(int fd, int (*call)(int), const char *fn)
{
	char path[PATH_MAX];
	struct stat st;
	struct tracked *t;
	int r;

	if (!fd_watched(fd, path, sizeof(path)))
		return call(fd);
	if (enter(K_SYNC, fn, path) < 0)
		return -1;
	r = g.nosync ? 0 : call(fd);
	if (r == 0 && g.mode == M_CUT && fstat(fd, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			dir_synced(fd);
		else if ((t = tracked_find(&st)))
			synced(t);
	}
	UNLOCK();
	return r;
}

int fsync(int fd)
{
	return do_sync(fd, get_fsync(), "fsync");
}

int fdatasync(int fd)
{
	return do_sync(fd, get_fdatasync(), "fdatasync");
}

/* rename and renameat2 with no flags; a flag is passed through unwatched. */
static int do_rename(int od, const char *op, int nd, const char *np, unsigned fl,
		     const char *fn)
{
	char a[PATH_MAX], b[PATH_MAX];
	struct dirop *d = NULL;
	struct stat st;
	int r;

	init();
	if (!g.match || fl || abs_path(od, op, a, sizeof(a)) < 0 ||
	    abs_path(nd, np, b, sizeof(b)) < 0 || !(matches(a) || matches(b)))
		return get_renameat2()(od, op, nd, np, fl);
	if (enter(K_RENAME, fn, b) < 0)
		return -1;
	if (g.mode == M_CUT) {
		d = dirop_new(D_RENAME, a, b);
		if (lstat(b, &st) == 0)
			dirop_backup(d, b);
	}
	r = get_renameat2()(od, op, nd, np, 0);
	if (r < 0 && d) {
		if (d->bak[0])
			get_unlink()(d->bak);
		dirop_unlink(d);
	}
	UNLOCK();
	return r;
}

int rename(const char *op, const char *np)
{
	return do_rename(AT_FDCWD, op, AT_FDCWD, np, 0, "rename");
}

int renameat(int od, const char *op, int nd, const char *np)
{
	return do_rename(od, op, nd, np, 0, "renameat");
}

int renameat2(int od, const char *op, int nd, const char *np, unsigned fl)
{
	return do_rename(od, op, nd, np, fl, "renameat2");
}

static int do_link(int od, const char *op, int nd, const char *np, int fl,
		   const char *fn)
{
	char b[PATH_MAX];
	int r;

	init();
	if (!g.match || abs_path(nd, np, b, sizeof(b)) < 0 || !matches(b))
		return get_linkat()(od, op, nd, np, fl);
	if (enter(K_LINK, fn, b) < 0)
		return -1;
	r = get_linkat()(od, op, nd, np, fl);
	if (r == 0 && g.mode == M_CUT)
		dirop_new(D_LINK, b, NULL);
	UNLOCK();
	return r;
}

int link(const char *op, const char *np)
{
	return do_link(AT_FDCWD, op, AT_FDCWD, np, 0, "link");
}

int linkat(int od, const char *op, int nd, const char *np, int fl)
{
	return do_link(od, op, nd, np, fl, "linkat");
}

static int do_unlink(int dirfd, const char *p, int fl, const char *fn)
{
	char a[PATH_MAX];
	struct dirop *d = NULL;
	struct stat st;
	int r;

	init();
	if (!g.match || (fl & AT_REMOVEDIR) || abs_path(dirfd, p, a, sizeof(a)) < 0 ||
	    !matches(a))
		return get_unlinkat()(dirfd, p, fl);
	if (enter(K_UNLINK, fn, a) < 0)
		return -1;
	if (g.mode == M_CUT && lstat(a, &st) == 0) {
		d = dirop_new(D_UNLINK, a, NULL);
		dirop_backup(d, a);
	}
	r = get_unlinkat()(dirfd, p, fl);
	if (r < 0 && d) {
		get_unlink()(d->bak);
		dirop_unlink(d);
	}
	UNLOCK();
	return r;
}

int unlink(const char *p)
{
	return do_unlink(AT_FDCWD, p, 0, "unlink");
}

int unlinkat(int dirfd, const char *p, int fl)
{
	return do_unlink(dirfd, p, fl, "unlinkat");
}

static int do_truncate(int fd, int64_t len, const char *fn)
{
	char path[PATH_MAX];
	struct tracked *t = NULL;
	struct undo *u = NULL;
	uint64_t size;
	int r;

	if (!fd_watched(fd, path, sizeof(path)))
		goto call;
	if (enter(K_TRUNC, fn, path) < 0)
		return -1;
	if (g.mode == M_CUT && (t = tracked_get(fd, NULL))) {
		size = file_size(t);
		u = undo_save(t, (uint64_t)len < size ? (uint64_t)len : size,
			      (uint64_t)len < size ? size - (uint64_t)len : 0);
	}
	r = get_ftruncate64()(fd, (off64_t)len);
	cut_wrote(t, u, r < 0 ? -1 : 0);
	UNLOCK();
	return r;
call:
	return get_ftruncate64()(fd, (off64_t)len);
}

int ftruncate(int fd, off_t len)
{
	return do_truncate(fd, len, "ftruncate");
}

int ftruncate64(int fd, off64_t len)
{
	return do_truncate(fd, len, "ftruncate64");
}

static int do_fallocate(int fd, int mode, int64_t off, int64_t len, const char *fn)
{
	char path[PATH_MAX];
	struct tracked *t = NULL;
	struct undo *u = NULL;
	int r;

	if (!fd_watched(fd, path, sizeof(path)))
		goto call;
	if (enter(K_ALLOC, fn, path) < 0)
		return -1;
	if (g.mode == M_CUT && (t = tracked_get(fd, NULL)))
		u = undo_save(t, (uint64_t)off, (uint64_t)len);
	r = get_fallocate64()(fd, mode, (off64_t)off, (off64_t)len);
	cut_wrote(t, u, r < 0 ? -1 : 0);
	UNLOCK();
	return r;
call:
	return get_fallocate64()(fd, mode, (off64_t)off, (off64_t)len);
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
	return do_fallocate(fd, mode, off, len, "fallocate");
}

int fallocate64(int fd, int mode, off64_t off, off64_t len)
{
	return do_fallocate(fd, mode, off, len, "fallocate64");
}

int sync_file_range(int fd, off64_t off, off64_t len, unsigned fl)
{
	char path[PATH_MAX];

	if (fd_watched(fd, path, sizeof(path))) {
		if (enter(K_SFR, "sync_file_range", path) < 0)
			return -1;
		UNLOCK();
		if (g.nosync)
			return 0;
	}
	return get_sync_file_range()(fd, off, len, fl);
}

int ioctl(int fd, unsigned long req, ...)
{
	char path[PATH_MAX];
	struct tracked *t = NULL;
	struct undo *u = NULL;
	va_list ap;
	void *arg;
	int r;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (!fd_watched(fd, path, sizeof(path)))
		return get_ioctl()(fd, req, arg);
	if (enter(K_IOCTL, "ioctl", path) < 0)
		return -1;
	if (g.mode == M_CUT && req == BLKZEROOUT && (t = tracked_get(fd, NULL))) {
		const uint64_t *range = arg;

		u = undo_save(t, range[0], range[1]);
	}
	r = get_ioctl()(fd, req, arg);
	cut_wrote(t, u, r < 0 ? -1 : 0);
	UNLOCK();
	return r;
}

int fchmod(int fd, mode_t mode)
{
	char path[PATH_MAX];

	if (fd_watched(fd, path, sizeof(path))) {
		if (enter(K_CHMOD, "fchmod", path) < 0)
			return -1;
		UNLOCK();
	}
	return get_fchmod()(fd, mode);
}
