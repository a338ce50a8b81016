// SPDX-License-Identifier: MIT
/* Shared CLI helpers: messages, sizes, output files, progress. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/vdisk.h"
#include "core/kconfig.h"

void cli_error(const char *verb, const struct err *e)
{
	fprintf(stderr, "edgeimg %s: %s\n", verb,
		e->msg[0] ? e->msg : err_name(e->code));
}

int cli_usage(const struct cmd *c, const char *why)
{
	if (why)
		fprintf(stderr, "edgeimg %s: %s\n", c->name, why);
	fprintf(stderr, "usage: edgeimg %s\nTry 'edgeimg help %s'.\n", c->usage,
		c->name);
	return EXIT_USAGE;
}

void cli_help(const struct cmd *c)
{
	printf("usage: edgeimg %s\n\n%s\n\n%s", c->usage, c->summary, c->help);
}

const char *size_human(uint64_t v, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB",
					    "PiB", "EiB" };
	double d = (double)v;
	unsigned i = 0;

	while (d >= 1024 && i < 6) {
		d /= 1024;
		i++;
	}
	snprintf(buf, len, "%0.3g %s", d, unit[i]);
	return buf;
}

/* The temporary file a signal must remove: one output per process. */
static char outfile_pending[4096];

static void outfile_signal(int sig)
{
	if (outfile_pending[0])
		unlink(outfile_pending);
	signal(sig, SIG_DFL);
	raise(sig);
}

int outfile_create(struct outfile *of, const char *path, int force,
		   struct err *e)
{
	const char *slash = strrchr(path, '/');
	sigset_t block, old;
	struct stat st;
	int fd, r;

	memset(of, 0, sizeof(*of));
	if (strlen(path) + 32 > sizeof(of->tmp))
		return err_set(e, -ENAMETOOLONG, "%s: name too long", path);
	snprintf(of->path, sizeof(of->path), "%s", path);
	if (stat(path, &st) == 0) {
		if (S_ISBLK(st.st_mode))
			return io_open_file(path, 1, &of->io, e);
		if (S_ISDIR(st.st_mode))
			return err_set(e, -EISDIR, "%s: is a directory", path);
		if (!force)
			return err_set(e, -EEXIST,
				       "%s: already exists; use --force to replace it",
				       path);
	}
	if (slash)
		snprintf(of->tmp, sizeof(of->tmp), "%.*s/.%s.edgeimg-XXXXXX",
			 (int)(slash - path), path, slash + 1);
	else
		snprintf(of->tmp, sizeof(of->tmp), ".%s.edgeimg-XXXXXX", path);
	signal(SIGINT, outfile_signal);
	signal(SIGTERM, outfile_signal);
	signal(SIGHUP, outfile_signal);
	signal(SIGPIPE, outfile_signal);
	signal(SIGXFSZ, SIG_IGN);    /* a size limit becomes EFBIG */
	/* No signal between creating the file and the handler knowing its name. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGPIPE);
	sigprocmask(SIG_BLOCK, &block, &old);
	fd = mkostemp(of->tmp, O_CLOEXEC);
	if (fd >= 0)
		memcpy(outfile_pending, of->tmp, sizeof(outfile_pending));
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (fd < 0)
		return err_errno(e, errno, "%s: cannot create a temporary file", path);
	r = io_open_fd(fd, path, 1, &of->io, e);
	if (r == 0)
		of->io->flags |= IO_WRITEBEHIND;
	if (r < 0) {
		unlink(of->tmp);
		outfile_pending[0] = 0;
	}
	return r;
}

int outfile_commit(struct outfile *of, struct err *e)
{
	mode_t mask = umask(0);
	int r, dfd;
	char dir[4096];
	const char *slash = strrchr(of->path, '/');

	umask(mask);
	r = io_sync(of->io, e);
	if (r < 0) {
		outfile_abort(of);
		return r;
	}
	if (!of->tmp[0]) {
		io_close(of->io);
		of->io = NULL;
		return 0;
	}
	if (chmod(of->tmp, 0666 & ~mask) < 0 || rename(of->tmp, of->path) < 0) {
		r = err_errno(e, errno, "%s: cannot put the output in place", of->path);
		outfile_abort(of);
		return r;
	}
	outfile_pending[0] = 0;
	io_close(of->io);
	of->io = NULL;
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - of->path) : 1,
		 slash ? of->path : ".");
	if (!dir[0])
		snprintf(dir, sizeof(dir), "/");
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

void outfile_abort(struct outfile *of)
{
	io_close(of->io);
	of->io = NULL;
	if (of->tmp[0])
		unlink(of->tmp);
	outfile_pending[0] = 0;
}

void progress_init(struct progress *p, int wanted)
{
	p->on = wanted && isatty(STDERR_FILENO);
	p->last = -1;
	if (p->on)
		progress_cb(p, 0, 1);
}

void progress_cb(void *arg, uint64_t done, uint64_t total)
{
	struct progress *p = arg;
	int now;

	if (!p->on || !total)
		return;
	now = (int)((double)done * 10000.0 / (double)total);
	if (now == p->last)
		return;
	p->last = now;
	fprintf(stderr, "\r    (%d.%02d/100%%)", now / 100, now % 100);
}

void progress_done(struct progress *p)
{
	if (p->on)
		fputc('\n', stderr);
}

unsigned threads_resolve(unsigned n)
{
	if (!IS_ENABLED(CONFIG_THREADS))
		return 1;
	if (n == 0) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);

		n = c > 0 ? (c > 256 ? 256 : (unsigned)c) : 1;
	}
	return n;
}

int cli_image_opt(int c, const char *arg, struct open_opts *oo)
{
	if (c == 'R')
		oo->allow_refs = 1;
	else if (c == 'D')
		oo->ova_disk = arg;
	else
		return 0;
	return 1;
}

int parse_threads(const char *s, unsigned *out)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(s, &end, 10);
	if (errno || *end || end == s || n < 0 || n > 256)
		return -EINVAL;
	*out = threads_resolve((unsigned)n);
	return 0;
}
