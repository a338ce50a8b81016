// SPDX-License-Identifier: MIT
/*
 * edgeimg apply: OLD + PATCH -> NEW, verified, resumable (src/delta-format.md
 * "Applying" and "Checkpoints"); and the patch header for "edgeimg info".
 */
#include <fcntl.h>
#include <getopt.h>
#include <sys/file.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/bytes.h"
#include "cli/cli.h"
#include "delta/delta.h"
#include "core/format.h"
#include "generated/features.h"
#include "core/info.h"
#include "core/limits.h"

#define CKPT_MAGIC "EIAPPLY\x1a"
#define CKPT_VERSION 1
#define CKPT_FIXED 176
#define CKPT_MAX (CKPT_FIXED + DELTA_HDR_SIG_MAX + SHA256_LEN)

enum { PHASE_DECODING = 0, PHASE_DECODED = 1 };

/* What a checkpoint holds (the byte layout is in src/delta-format.md). */
struct ckpt {
	uint32_t phase;
	struct delta_pos pos;
	uint8_t old_sha[SHA256_LEN];
	uint32_t hlen;                  /* the header and its signature section */
	uint8_t hdr[DELTA_HDR_SIG_MAX];
};

static double apply_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fsync_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];
	int fd;

	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) : 1,
		 slash ? path : ".");
	if (!dir[0])
		snprintf(dir, sizeof(dir), "/");
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

static int ckpt_write(const char *path, const struct ckpt *ck, struct err *e)
{
	uint8_t b[CKPT_MAX];
	size_t n = CKPT_FIXED + ck->hlen;
	char tmp[4200];
	int fd;

	memset(b, 0, sizeof(b));
	memcpy(b, CKPT_MAGIC, 8);
	put_le32(b + 8, CKPT_VERSION);
	put_le32(b + 12, ck->phase);
	put_le32(b + 16, ck->pos.chunk);
	put_le32(b + 20, ck->hlen);
	put_le64(b + 24, ck->pos.patch_off);
	put_le64(b + 32, ck->pos.new_done);
	for (int i = 0; i < 8; i++)
		put_le32(b + 40 + 4 * i, ck->pos.sha.h[i]);
	put_le64(b + 72, ck->pos.sha.len);
	memcpy(b + 80, ck->pos.sha.buf, 64);
	memcpy(b + 144, ck->old_sha, SHA256_LEN);
	memcpy(b + CKPT_FIXED, ck->hdr, ck->hlen);
	sha256(b, n, b + n);
	n += SHA256_LEN;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_errno(e, errno, "%s: cannot write the checkpoint", tmp);
	if (write(fd, b, n) != (ssize_t)n || fsync(fd) < 0) {
		int r = err_errno(e, errno, "%s: cannot write the checkpoint", tmp);

		close(fd);
		unlink(tmp);
		return r;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		int r = err_errno(e, errno, "%s: cannot put the checkpoint in place", path);

		unlink(tmp);
		return r;
	}
	return 0;
}

/* 1 with *@ck filled, 0 when there is none, or an error. */
static int ckpt_load(const char *path, struct ckpt *ck, struct delta_header *h,
		     struct err *e)
{
	uint8_t b[CKPT_MAX + 1], sum[SHA256_LEN];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0)
		return err_errno(e, errno, "%s", path);
	n = read(fd, b, sizeof(b));
	close(fd);
	memset(ck, 0, sizeof(*ck));
	if (n < CKPT_FIXED + SHA256_LEN || memcmp(b, CKPT_MAGIC, 8) ||
	    get_le32(b + 8) != CKPT_VERSION)
		return err_set(e, EI_ECORRUPT,
			       "%s: not an edgeimg checkpoint of version %u; remove it to start over",
			       path, CKPT_VERSION);
	ck->phase = get_le32(b + 12);
	ck->pos.chunk = get_le32(b + 16);
	ck->hlen = get_le32(b + 20);
	if (ck->hlen > DELTA_HDR_SIG_MAX || (size_t)n != CKPT_FIXED + ck->hlen + SHA256_LEN)
		return err_set(e, EI_ECORRUPT, "%s: bad length; remove it to start over", path);
	sha256(b, CKPT_FIXED + ck->hlen, sum);
	if (memcmp(sum, b + CKPT_FIXED + ck->hlen, SHA256_LEN))
		return err_set(e, EI_EMISMATCH,
			       "%s: checksum mismatch; remove it to start over", path);
	ck->pos.patch_off = get_le64(b + 24);
	ck->pos.new_done = get_le64(b + 32);
	for (int i = 0; i < 8; i++)
		ck->pos.sha.h[i] = get_le32(b + 40 + 4 * i);
	ck->pos.sha.len = get_le64(b + 72);
	memcpy(ck->pos.sha.buf, b + 80, 64);
	memcpy(ck->old_sha, b + 144, SHA256_LEN);
	memcpy(ck->hdr, b + CKPT_FIXED, ck->hlen);
	r = delta_header_parse(ck->hdr, ck->hlen, h, 0, e);
	if (r < 0) {
		err_prefix(e, "%s", path);
		return r;
	}
	if (ck->hlen != h->chunks_off)
		return err_set(e, EI_ECORRUPT, "%s: %u header bytes, the patch has %llu; remove it to start over",
			       path, ck->hlen, (unsigned long long)h->chunks_off);
	if (ck->phase > PHASE_DECODED || ck->pos.chunk > h->chunk_count ||
	    ck->pos.new_done > h->new_size || ck->pos.patch_off > h->patch_size ||
	    ck->pos.patch_off < h->chunks_off || ck->pos.sha.len != ck->pos.new_done ||
	    (ck->phase == PHASE_DECODED && ck->pos.chunk != h->chunk_count))
		return err_set(e, EI_ECORRUPT,
			       "%s: inconsistent position; remove it to start over", path);
	return 1;
}

/* A stream with its first bytes already read (to tell a header from a chunk). */
struct io_peek {
	struct io io;
	struct io *in;
	uint8_t head[8];
	size_t n;
};

static int peek_pread(struct io *io, void *buf, size_t len, uint64_t off,
		      struct err *e)
{
	struct io_peek *p = (struct io_peek *)io;
	uint8_t *b = buf;

	if (off < p->n) {
		size_t k = (size_t)min_u64(len, p->n - off);

		memcpy(b, p->head + off, k);
		b += k;
		len -= k;
		off += k;
	}
	return len ? p->in->ops->pread(p->in, b, len, off, e) : 0;
}

static void peek_close(struct io *io)
{
	struct io_peek *p = (struct io_peek *)io;

	io_close(p->in);
	free(p);
}

static const struct io_ops peek_ops = { .pread = peek_pread, .close = peek_close };

/*
 * Open PATCH ("-": standard input).  A stream (a pipe, a FIFO) is wrapped
 * so that its first 8 bytes, read now to tell a header from a chunk, can
 * be read again; *@got says how many there are (8 unless it is shorter).
 */
static int patch_open(const char *path, struct io **out, size_t *got,
		      struct err *e)
{
	struct io_peek *p;
	struct io *in;
	int r;

	*got = 8;
	if (strcmp(path, "-")) {
		r = io_open_file(path, 0, &in, e);
	} else {
		int fd = dup(STDIN_FILENO);

		if (fd < 0)
			return err_errno(e, errno, "<stdin>");
		r = io_open_fd(fd, "<stdin>", 0, &in, e);
	}
	if (r < 0)
		return r;
	if (!(in->flags & IO_STREAM)) {
		*out = in;
		return 0;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		io_close(in);
		return err_set(e, -ENOMEM, "out of memory");
	}
	p->in = in;
	p->io.ops = &peek_ops;
	p->io.flags = in->flags;
	p->io.size = in->size;
	snprintf(p->io.name, sizeof(p->io.name), "%s", in->name);
	while (p->n < sizeof(p->head)) {
		struct err e2 = { 0 };

		r = in->ops->pread(in, p->head + p->n, 1, p->n, &e2);
		if (r == EI_ETRUNC)
			break;
		if (r < 0) {
			*e = e2;
			io_close(&p->io);
			return r;
		}
		p->n++;
	}
	*got = p->n;
	*out = &p->io;
	return 0;
}

struct sink {
	struct io *io;
	int dev;                /* write zeros too (a block device) */
	uint8_t *zero;
	struct progress *pg;
	uint64_t base, total;
};

static int sink_write(void *arg, const void *buf, size_t len, uint64_t off,
		      struct err *e)
{
	struct sink *s = arg;
	int r = 0;

	if (buf) {
		r = io_write(s->io, buf, len, off, e);
	} else if (s->dev) {
		for (size_t done = 0; done < len && r >= 0;) {
			size_t n = (size_t)min_u64(1u << 20, len - done);

			r = io_write(s->io, s->zero, n, off + done, e);
			done += n;
		}
	}
	progress_cb(s->pg, s->base + off + len, s->total);
	return r;
}

/* Errors after which a partial result is worth keeping for --resume. */
static int resumable(int code)
{
	return code == EI_ETRUNC || (code < 0 && code > -1000 && code != -ENOMEM);
}

struct apply {
	const char *old_path, *patch_path, *out_path;
	char ckpt_path[4200], part_path[4200], out_tmp[4200], lock_path[4200];
	int dev, force, resume, verbose, lock_fd;
	struct delta_key key;   /* --verify: the trusted public key */
	int verify;
	uint64_t min_version;
	uint8_t raw[DELTA_HDR_SIG_MAX]; /* the header and signature to verify */
	unsigned threads;
	struct open_opts oo;
	struct delta_header h;
	struct ckpt ck;
	int have_ck;
	struct io *patch;
	uint64_t base;
	struct vdisk *old;
	struct progress pg;
	struct err e;
};

/* The state files: PREFIX.edgeimg-apply (checkpoint), PREFIX.edgeimg-part. */
static void apply_paths(struct apply *a, const char *state)
{
	const char *out = a->out_path, *base = strrchr(out, '/');

	if (!state)
		state = a->dev ? (base ? base + 1 : out) : out;
	snprintf(a->ckpt_path, sizeof(a->ckpt_path), "%s.edgeimg-apply", state);
	snprintf(a->part_path, sizeof(a->part_path), "%s.edgeimg-part", state);
	snprintf(a->out_tmp, sizeof(a->out_tmp), "%s.edgeimg-out", state);
	snprintf(a->lock_path, sizeof(a->lock_path), "%s.edgeimg-lock", state);
}

/*
 * One apply at a time on a state PREFIX: an exclusive flock on
 * PREFIX.edgeimg-lock, taken before anything else is read or written and
 * removed (still held) at the end.  A lock file removed between our
 * open and our flock is not ours to hold: open it again.
 */
static int apply_lock(struct apply *a)
{
	struct stat s1, s2;

	for (int tries = 0; tries < 100; tries++) {
		int fd = open(a->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

		if (fd < 0)
			return err_errno(&a->e, errno, "%s: cannot create the lock",
					 a->lock_path);
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			int r = errno == EWOULDBLOCK ?
				err_set(&a->e, -EBUSY,
					"another apply is running on %s (it holds %s); nothing done",
					a->out_path, a->lock_path) :
				err_errno(&a->e, errno, "%s: cannot lock", a->lock_path);

			close(fd);
			return r;
		}
		if (fstat(fd, &s1) == 0 && stat(a->lock_path, &s2) == 0 &&
		    s1.st_dev == s2.st_dev && s1.st_ino == s2.st_ino) {
			a->lock_fd = fd;
			return 0;
		}
		close(fd);
	}
	return err_set(&a->e, -EBUSY, "%s: the lock keeps changing", a->lock_path);
}

static void apply_unlock(struct apply *a)
{
	if (a->lock_fd < 0)
		return;
	unlink(a->lock_path);
	close(a->lock_fd);
	a->lock_fd = -1;
}

static void apply_forget(struct apply *a)
{
	unlink(a->ckpt_path);
	unlink(a->part_path);
	unlink(a->out_tmp);
}

/* Open PATCH and find the header: from the file, the stream or the checkpoint. */
static int apply_patch(struct apply *a)
{
	struct err *e = &a->e;
	struct delta_header fh;
	uint8_t *raw = a->raw;
	size_t got = 0;
	int r;

	if (a->have_ck)         /* what to verify unless the patch brings its own */
		memcpy(raw, a->ck.hdr, a->ck.hlen);
	if (a->have_ck && a->ck.phase == PHASE_DECODED)
		return 0;       /* the patch is no longer needed */
	r = patch_open(a->patch_path, &a->patch, &got, e);
	if (r < 0)
		return r;
	if (!(a->patch->flags & IO_STREAM)) {
		r = delta_header_read(a->patch, &fh, raw, e);
		if (r < 0)
			return r;
		if (fh.patch_size != a->patch->size)
			return err_set(e, fh.patch_size > a->patch->size ? EI_ETRUNC :
				       EI_ECORRUPT,
				       "%s: %llu bytes, the patch header says %llu",
				       a->patch_path, (unsigned long long)a->patch->size,
				       (unsigned long long)fh.patch_size);
		goto have_header;
	}
	if (a->have_ck && got >= 8 && !memcmp(((struct io_peek *)a->patch)->head,
					      DELTA_CHUNK_MAGIC, 4)) {
		uint32_t idx = get_le32(((struct io_peek *)a->patch)->head + 4);

		if (idx != a->ck.pos.chunk)
			return err_set(e, EI_EUSAGE,
				       "the stream starts with chunk %u; the checkpoint needs chunk %u, at byte %llu of the patch (edgeimg apply --resume-offset %s)",
				       idx, a->ck.pos.chunk,
				       (unsigned long long)a->ck.pos.patch_off, a->out_path);
		a->base = a->ck.pos.patch_off;
		return 0;
	}
	if (a->have_ck && !got && a->ck.pos.chunk == a->h.chunk_count) {
		a->base = a->ck.pos.patch_off;  /* every chunk is done */
		return 0;
	}
	if (!got)
		return err_set(e, EI_ETRUNC, "the patch stream is empty");
	r = delta_header_read(a->patch, &fh, raw, e);
	if (r < 0)
		return r;
have_header:
	if (a->have_ck) {
		if (memcmp(fh.id, a->h.id, SHA256_LEN))
			return err_set(e, EI_EMISMATCH,
				       "%s belongs to another patch; refusing to resume (remove %s and %s to start over)",
				       a->ckpt_path, a->ckpt_path, a->part_path);
	} else {
		a->h = fh;
		a->ck.hlen = (uint32_t)fh.chunks_off;
		memcpy(a->ck.hdr, raw, (size_t)fh.chunks_off);
	}
	return 0;
}

/*
 * --verify and --min-version: the patch's signature by the trusted key,
 * then its version (trusted only once signed); before anything is written.
 */
static int apply_trust(struct apply *a)
{
	int r;

	if (a->verify) {
		r = delta_sig_verify(&a->h, a->raw, &a->key, &a->e);
		if (r < 0) {
			err_prefix(&a->e, "%s", a->patch_path);
			return r;
		}
	}
	if (a->h.patch_version < a->min_version)
		return err_set(&a->e, EI_ESIG,
			       "%s: patch_version %llu is below --min-version %llu: refusing a downgrade; nothing written",
			       a->patch_path, (unsigned long long)a->h.patch_version,
			       (unsigned long long)a->min_version);
	return 0;
}

/* Open OLD and check its content hash: before anything is written. */
static int apply_old(struct apply *a)
{
	struct err *e = &a->e;
	uint8_t sha[SHA256_LEN];
	char h1[2 * SHA256_LEN + 1], h2[2 * SHA256_LEN + 1];
	struct stat so, sd;
	int r;

	r = vdisk_open(a->old_path, &a->oo, &a->old, e);
	if (r < 0) {
		err_prefix(e, "OLD");
		return r;
	}
	if (stat(a->old_path, &so) == 0 && stat(a->out_path, &sd) == 0 &&
	    ((so.st_dev == sd.st_dev && so.st_ino == sd.st_ino) ||
	     (S_ISBLK(so.st_mode) && S_ISBLK(sd.st_mode) && so.st_rdev == sd.st_rdev)))
		return err_set(e, EI_EUSAGE, "OUT is OLD: apply writes a new disk, never in place");
	if (a->old->size != a->h.old_size)
		return err_set(e, EI_EMISMATCH,
			       "OLD %s has %llu bytes; the patch was made for a disk of %llu bytes: nothing written",
			       a->old_path, (unsigned long long)a->old->size,
			       (unsigned long long)a->h.old_size);
	r = delta_hash_disk(a->old, sha, progress_cb, &a->pg, e);
	if (r < 0)
		return r;
	if (memcmp(sha, a->h.old_sha, SHA256_LEN))
		return err_set(e, EI_EMISMATCH,
			       "OLD %s is not the patch's source: its SHA-256 is %s, the patch was made for %s: nothing written",
			       a->old_path, sha_hex(sha, SHA256_LEN, h1),
			       sha_hex(a->h.old_sha, SHA256_LEN, h2));
	memcpy(a->ck.old_sha, sha, SHA256_LEN);
	return 0;
}

/* Open or create the partial NEW disk; with a checkpoint, cut it back to it. */
static int apply_part(struct apply *a, struct io **out)
{
	struct err *e = &a->e;
	int container = a->h.recipe[0] != 0, fd, r;

	if (!a->have_ck) {
		memset(&a->ck.pos, 0, sizeof(a->ck.pos));
		a->ck.phase = PHASE_DECODING;
		a->ck.pos.patch_off = a->h.chunks_off;
		sha256_init(&a->ck.pos.sha);
	}
	if (a->dev && !container) {
		r = io_open_file(a->out_path, 1, out, e);
		if (r < 0)
			return r;
		if ((*out)->size < a->h.new_size)
			return err_set(e, -ENOSPC, "%s holds %llu bytes, NEW needs %llu",
				       a->out_path, (unsigned long long)(*out)->size,
				       (unsigned long long)a->h.new_size);
		return 0;
	}
	if (a->have_ck) {
		struct stat st;

		if (stat(a->part_path, &st) < 0 || (uint64_t)st.st_size < a->ck.pos.new_done) {
			if (a->base)
				return err_set(e, EI_ETRUNC,
					       "%s is missing or short: the work is lost; feed the whole patch, not the part from byte %llu",
					       a->part_path, (unsigned long long)a->base);
			fprintf(stderr, "edgeimg apply: %s is missing or short: starting over\n",
				a->part_path);
			a->have_ck = 0;
		}
	}
	if (!a->have_ck) {
		memset(&a->ck.pos, 0, sizeof(a->ck.pos));
		a->ck.phase = PHASE_DECODING;
		a->ck.pos.patch_off = a->h.chunks_off;
		sha256_init(&a->ck.pos.sha);
		fd = open(a->part_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	} else {
		fd = open(a->part_path, O_RDWR | O_CLOEXEC);
	}
	if (fd < 0)
		return err_errno(e, errno, "%s", a->part_path);
	r = io_open_fd(fd, a->part_path, 1, out, e);
	if (r < 0)
		return r;
	if (a->ck.phase == PHASE_DECODING)
		r = io_truncate(*out, a->ck.pos.new_done, e);
	if (r >= 0)
		r = io_sync(*out, e);
	fsync_dir_of(a->part_path);
	return r;
}

/*
 * Re-encode the decoded NEW disk as the recipe says into PREFIX.edgeimg-out
 * (a block device: in place), check its size and SHA-256, then rename it
 * to OUT.  A fixed name, not a random one: after a kill, the next run
 * replaces it instead of leaving it behind.
 */
static int apply_container(struct apply *a)
{
	struct err *e = &a->e;
	char fmt[64], ver[64], opts[DELTA_RECIPE_MAX + 1];
	char h1[2 * SHA256_LEN + 1], h2[2 * SHA256_LEN + 1];
	const struct img_format *f;
	struct open_opts oo = { .format = "raw" };
	struct vdisk *raw = NULL, *canon = NULL;
	struct write_opts wo = { 0 };
	struct io *out = NULL;
	struct sha256 c;
	uint8_t sha[SHA256_LEN], *buf = NULL;
	uint64_t off = 0, len;
	int r, fd;

	r = delta_recipe_split(a->h.recipe, fmt, sizeof(fmt), ver, sizeof(ver),
			       opts, sizeof(opts), e);
	if (r < 0)
		return r;
	f = format_find(fmt);
	if (!f || !f->write)
		return err_set(e, EI_EUNSUP,
			       "the patch builds a %s container, which this edgeimg cannot write",
			       fmt);
	r = vdisk_open(a->part_path, &oo, &raw, e);
	if (r < 0)
		return r;
	r = delta_canon_open(raw, &canon, e);
	if (r < 0)
		goto out;
	if (a->dev) {
		r = io_open_file(a->out_path, 1, &out, e);
		if (r == 0 && out->size < a->h.target_size)
			r = err_set(e, -ENOSPC, "%s holds %llu bytes, the container needs %llu",
				    a->out_path, (unsigned long long)out->size,
				    (unsigned long long)a->h.target_size);
	} else {
		fd = open(a->out_tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		r = fd < 0 ? err_errno(e, errno, "%s", a->out_tmp) :
			     io_open_fd(fd, a->out_tmp, 1, &out, e);
	}
	if (r < 0)
		goto out;
	wo.options = opts[0] ? opts : NULL;
	wo.threads = a->threads;
	wo.mem_cap = EI_MEM_CAP;
	wo.progress = progress_cb;
	wo.progress_arg = &a->pg;
	r = f->write(canon, out, &wo, e);
	if (r < 0) {
		err_prefix(e, "building the %s container", fmt);
		goto out;
	}
	r = io_sync(out, e);
	if (r < 0)
		goto out;
	buf = malloc(1u << 20);
	if (!buf) {
		r = err_set(e, -ENOMEM, "out of memory");
		goto out;
	}
	/* a device holds more than the container: hash what the patch says */
	len = a->dev ? a->h.target_size : out->size;
	sha256_init(&c);
	while (off < len) {
		size_t n = (size_t)min_u64(1u << 20, len - off);

		r = io_read(out, buf, n, off, "container", e);
		if (r < 0)
			goto out;
		sha256_update(&c, buf, n);
		off += n;
	}
	sha256_final(&c, sha);
	if (len != a->h.target_size || memcmp(sha, a->h.target_sha, SHA256_LEN)) {
		r = err_set(e, EI_EMISMATCH,
			    "the %s container built from NEW has %llu bytes and SHA-256 %s; the patch promises %llu bytes and %s%s%s%s: OUT not written",
			    fmt, (unsigned long long)len, sha_hex(sha, SHA256_LEN, h1),
			    (unsigned long long)a->h.target_size,
			    sha_hex(a->h.target_sha, SHA256_LEN, h2),
			    strcmp(ver, EDGEIMG_VERSION) ? " (the patch was made with the writer of edgeimg " : "",
			    strcmp(ver, EDGEIMG_VERSION) ? ver : "",
			    strcmp(ver, EDGEIMG_VERSION) ? ", this is " EDGEIMG_VERSION ")" : "");
		goto out;
	}
	if (!a->dev) {
		mode_t mask = umask(0);

		umask(mask);
		if (chmod(a->out_tmp, 0666 & ~mask) < 0 ||
		    rename(a->out_tmp, a->out_path) < 0) {
			r = err_errno(e, errno, "%s: cannot put the output in place",
				      a->out_path);
			goto out;
		}
		fsync_dir_of(a->out_path);
	}
	r = 0;
out:
	io_close(out);
	if (r < 0 && !a->dev)
		unlink(a->out_tmp);
	free(buf);
	vdisk_close(canon);
	vdisk_close(raw);
	return r;
}

static int apply_resume_offset(struct apply *a)
{
	struct delta_header h;
	int r = ckpt_load(a->ckpt_path, &a->ck, &h, &a->e);

	if (r < 0) {
		cli_error("apply", &a->e);
		return EXIT_ERROR;
	}
	printf("%llu\n", r ? (unsigned long long)a->ck.pos.patch_off : 0ULL);
	return 0;
}

static int apply_run(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "force", no_argument, NULL, 'F' },
		CLI_IMAGE_OPTIONS,
		{ "resume", no_argument, NULL, 'r' },
		{ "resume-offset", no_argument, NULL, 'o' },
		{ "state", required_argument, NULL, 's' },
		{ "verify", required_argument, NULL, 'K' },
		{ "min-version", required_argument, NULL, 'M' },
		{ NULL, 0, NULL, 0 },
	};
	struct apply *a = calloc(1, sizeof(*a));
	const char *key_path = NULL;
	struct delta_dec *dec = NULL;
	struct io *part = NULL;
	struct sink sk = { 0 };
	const char *state = NULL;
	struct stat st;
	int progress = 0, roff = 0, c, r, rc = EXIT_ERROR, keep = 0;
	uint32_t from_chunk = 0;
	double t0 = apply_now();
	char h1[32], hx[2 * SHA256_LEN + 1], *end;

	if (!a) {
		fprintf(stderr, "edgeimg apply: out of memory\n");
		return EXIT_ERROR;
	}
	a->lock_fd = -1;
	a->threads = threads_resolve(EI_DEFAULT_THREADS);
	while ((c = getopt_long(argc, argv, "j:pv", lo, NULL)) != -1) {
		switch (c) {
		case 'j':
			if (parse_threads(optarg, &a->threads) < 0) {
				free(a);
				return cli_usage(&cmd_apply, "-j takes 0..256");
			}
			break;
		case 'p':
			progress = 1;
			break;
		case 'v':
			a->verbose = 1;
			break;
		case 'F':
			a->force = 1;
			break;
		case 'r':
			a->resume = 1;
			break;
		case 'o':
			roff = 1;
			break;
		case 's':
			state = optarg;
			break;
		case 'K':
			key_path = optarg;
			break;
		case 'M':
			errno = 0;
			a->min_version = strtoull(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-') {
				free(a);
				return cli_usage(&cmd_apply, "--min-version takes 0..2^64-1");
			}
			break;
		default:
			if (cli_image_opt(c, optarg, &a->oo))
				break;
			free(a);
			return cli_usage(&cmd_apply, NULL);
		}
	}
	if (roff) {
		if (optind != argc - 1) {
			free(a);
			return cli_usage(&cmd_apply, "--resume-offset takes OUT alone");
		}
		a->out_path = argv[optind];
		a->dev = stat(a->out_path, &st) == 0 && S_ISBLK(st.st_mode);
		apply_paths(a, state);
		rc = apply_resume_offset(a);
		free(a);
		return rc;
	}
	if (optind != argc - 3) {
		free(a);
		return cli_usage(&cmd_apply, "expected OLD, PATCH (or -) and OUT");
	}
	a->old_path = argv[optind];
	a->patch_path = argv[optind + 1];
	a->out_path = argv[optind + 2];
	if (key_path) {
		if (delta_key_load(key_path, 0, &a->key, &a->e) < 0)
			goto fail;
		a->verify = 1;
	}
	if (stat(a->out_path, &st) == 0) {
		if (S_ISBLK(st.st_mode)) {
			a->dev = 1;
		} else if (S_ISDIR(st.st_mode)) {
			err_set(&a->e, -EISDIR, "%s: is a directory", a->out_path);
			goto fail;
		} else if (!a->force) {
			err_set(&a->e, -EEXIST, "%s: already exists; use --force to replace it",
				a->out_path);
			goto fail;
		}
	}
	apply_paths(a, state);
	progress_init(&a->pg, progress);
	r = apply_lock(a);
	if (r < 0)
		goto fail;
	if (a->resume) {
		r = ckpt_load(a->ckpt_path, &a->ck, &a->h, &a->e);
		if (r < 0)
			goto fail;
		a->have_ck = r;
	}
	r = apply_patch(a);
	if (r < 0)
		goto fail;
	r = apply_trust(a);
	if (r < 0)
		goto fail;
	r = delta_recipe_check(a->h.recipe, &a->e);
	if (r < 0)
		goto fail;
	r = apply_old(a);
	if (r < 0)
		goto fail;
	/* OLD is the patch's source: from here on things get written. */
	if (!a->have_ck)
		apply_forget(a);
	if (!a->have_ck || a->ck.phase == PHASE_DECODING) {
		r = apply_part(a, &part);
		if (r < 0)
			goto fail_written;
		if (!a->have_ck && a->base) {
			r = err_set(&a->e, EI_EUSAGE, "no checkpoint to resume from");
			goto fail_written;
		}
		from_chunk = a->ck.pos.chunk;
		r = ckpt_write(a->ckpt_path, &a->ck, &a->e);
		if (r < 0)
			goto fail_written;
		r = delta_dec_new(&a->h, a->old, a->patch, a->base,
				  &a->ck.pos, 0, &dec, &a->e);
		if (r < 0)
			goto fail_written;
		sk.io = part;
		sk.dev = a->dev && !a->h.recipe[0];
		sk.zero = sk.dev ? calloc(1, 1u << 20) : NULL;
		sk.pg = &a->pg;
		sk.base = a->h.old_size;
		sk.total = a->h.old_size + a->h.new_size;
		if (sk.dev && !sk.zero) {
			r = err_set(&a->e, -ENOMEM, "out of memory");
			goto fail_written;
		}
		while ((r = delta_dec_next(dec, &(struct delta_sink){ sink_write, &sk },
					   &a->e)) == 1) {
			delta_dec_pos(dec, &a->ck.pos);
			/* trailing zeros are a hole: give the file its length */
			if (!sk.dev && part->size < a->ck.pos.new_done &&
			    (r = io_truncate(part, a->ck.pos.new_done, &a->e)) < 0)
				break;
			r = io_sync(part, &a->e);
			if (r < 0)
				break;
			r = ckpt_write(a->ckpt_path, &a->ck, &a->e);
			if (r < 0)
				break;
		}
		if (r < 0) {
			keep = resumable(a->e.code) && a->e.code != EI_EMISMATCH;
			goto fail_written;
		}
		if (!sk.dev && (r = io_truncate(part, a->h.new_size, &a->e)) < 0)
			goto fail_written;
		r = io_sync(part, &a->e);
		if (r < 0)
			goto fail_written;
		io_close(part);
		part = NULL;
		if (!a->h.recipe[0]) {
			if (!a->dev) {
				mode_t mask = umask(0);

				umask(mask);
				if (chmod(a->part_path, 0666 & ~mask) < 0 ||
				    rename(a->part_path, a->out_path) < 0) {
					r = err_errno(&a->e, errno, "%s: cannot put the output in place",
						      a->out_path);
					keep = 1;
					goto fail_written;
				}
				fsync_dir_of(a->out_path);
			}
			unlink(a->ckpt_path);
			goto done;
		}
		a->ck.phase = PHASE_DECODED;
		r = ckpt_write(a->ckpt_path, &a->ck, &a->e);
		if (r < 0)
			goto fail_written;
	}
	r = apply_container(a);
	if (r < 0) {
		keep = resumable(a->e.code) && a->e.code != EI_EMISMATCH;
		goto fail_written;
	}
	apply_forget(a);
done:
	progress_done(&a->pg);
	if (a->verbose)
		fprintf(stderr, "%s: NEW %s verified (SHA-256 %s)%s%s, chunks %u..%u of %u applied, %.2f s\n",
			a->out_path, size_human(a->h.new_size, h1, sizeof(h1)),
			sha_hex(a->h.new_sha, SHA256_LEN, hx),
			a->h.recipe[0] ? ", container " : "", a->h.recipe,
			from_chunk, a->h.chunk_count, a->h.chunk_count, apply_now() - t0);
	rc = 0;
	goto out;
fail_written:
	progress_done(&a->pg);
	if (keep) {
		cli_error("apply", &a->e);
		fprintf(stderr,
			"edgeimg apply: the work done is kept in %s%s%s; run the same command with --resume to continue%s\n",
			a->dev && !a->h.recipe[0] ? "" : a->part_path,
			a->dev && !a->h.recipe[0] ? "" : " and ", a->ckpt_path,
			!strcmp(a->patch_path, "-") ?
			" (feed the patch from byte 'edgeimg apply --resume-offset OUT')" : "");
		goto out;
	}
	apply_forget(a);
	goto print;
fail:
	progress_done(&a->pg);
print:
	cli_error("apply", &a->e);
out:
	free(sk.zero);
	delta_dec_free(dec);
	io_close(part);
	vdisk_close(a->old);
	io_close(a->patch);
	apply_unlock(a);
	memset(&a->key, 0, sizeof(a->key));
	free(a);
	return rc;
}

/* "edgeimg info PATCH": the header, or -1 when @path is not a patch. */
int patch_info(const char *path, int json)
{
	static const char *const feat[] = { "ref", "recipe", "signed" };
	struct delta_header h;
	struct delta_sig sg;
	uint8_t raw[DELTA_HDR_SIG_MAX];
	struct err e = { 0 };
	struct io *io = NULL;
	uint8_t head[DELTA_MAGIC_LEN];
	char s1[32], x1[2 * SHA256_LEN + 1], x2[2 * SHA256_LEN + 1],
	     x3[2 * SHA256_LEN + 1], x4[2 * SHA256_LEN + 1], x5[2 * SHA256_LEN + 1];
	int r;

	if (io_open_file(path, 0, &io, &e) < 0)
		return -1;
	if ((io->flags & IO_STREAM) || io->size < DELTA_MAGIC_LEN ||
	    io_read(io, head, sizeof(head), 0, "patch", &e) < 0 ||
	    !delta_is_patch(head, sizeof(head))) {
		io_close(io);
		return -1;
	}
	r = delta_header_read(io, &h, raw, &e);
	io_close(io);
	if (r < 0) {
		cli_error("info", &e);
		return EXIT_ERROR;
	}
	strcpy(x5, "");
	if ((h.incompat & DELTA_INCOMPAT_SIGNED) &&
	    delta_sig_parse(raw + h.header_size, &sg, &e) == 0)
		sha_hex(sg.key_id, SHA256_LEN, x5);
	sha_hex(h.old_sha, SHA256_LEN, x1);
	sha_hex(h.new_sha, SHA256_LEN, x2);
	sha_hex(h.target_sha, SHA256_LEN, x3);
	sha_hex(h.id, SHA256_LEN, x4);
	if (json) {
		printf("{\n    \"filename\": ");
		json_string(stdout, path);
		printf(",\n    \"format\": \"edgeimg-patch\",\n    \"version\": %u,\n", h.version);
		printf("    \"incompatible-features\": [");
		for (unsigned i = 0, n = 0; i < 3; i++)
			if (h.incompat & (1ULL << i))
				printf("%s\"%s\"", n++ ? ", " : "", feat[i]);
		printf("],\n    \"compatible-features\": %llu,\n",
		       (unsigned long long)h.compat);
		printf("    \"old-size\": %llu,\n    \"old-sha256\": \"%s\",\n",
		       (unsigned long long)h.old_size, x1);
		printf("    \"new-size\": %llu,\n    \"new-sha256\": \"%s\",\n",
		       (unsigned long long)h.new_size, x2);
		printf("    \"target\": ");
		json_string(stdout, h.recipe[0] ? h.recipe : "raw");
		printf(",\n    \"target-size\": %llu,\n    \"target-sha256\": \"%s\",\n",
		       (unsigned long long)h.target_size, x3);
		printf("    \"chunks\": %u,\n    \"patch-size\": %llu,\n", h.chunk_count,
		       (unsigned long long)h.patch_size);
		printf("    \"max-data\": %u,\n    \"max-ref\": %u,\n    \"id\": \"%s\",\n",
		       h.max_data, h.max_ref, x4);
		printf("    \"patch-version\": %llu,\n    \"signed\": %s",
		       (unsigned long long)h.patch_version, x5[0] ? "true" : "false");
		if (x5[0])
			printf(",\n    \"key-id\": \"%s\"", x5);
		printf("\n}\n");
		return 0;
	}
	printf("patch: %s\nfile format: edgeimg delta patch, version %u\n", path, h.version);
	printf("features:");
	for (unsigned i = 0; i < 3; i++)
		if (h.incompat & (1ULL << i))
			printf(" %s", feat[i]);
	printf("%s\n", h.incompat ? "" : " none");
	printf("old size: %s (%llu bytes)\nold sha256: %s\n",
	       size_human(h.old_size, s1, sizeof(s1)), (unsigned long long)h.old_size, x1);
	printf("new size: %s (%llu bytes)\nnew sha256: %s\n",
	       size_human(h.new_size, s1, sizeof(s1)), (unsigned long long)h.new_size, x2);
	printf("target: %s\ntarget size: %llu bytes\ntarget sha256: %s\n",
	       h.recipe[0] ? h.recipe : "raw", (unsigned long long)h.target_size, x3);
	printf("chunks: %u\npatch size: %s (%llu bytes)\n", h.chunk_count,
	       size_human(h.patch_size, s1, sizeof(s1)), (unsigned long long)h.patch_size);
	printf("largest chunk data: %u bytes, reference: %u bytes\npatch id: %s\n",
	       h.max_data, h.max_ref, x4);
	printf("patch version: %llu\nsigned: %s%s\n", (unsigned long long)h.patch_version,
	       x5[0] ? "yes, Ed25519, key id " : "no", x5);
	return 0;
}

const struct cmd cmd_apply = {
	.name = "apply",
	.summary = "apply a delta patch: OLD + PATCH -> NEW, verified",
	.usage = "apply [--resume] [-p] [-v] [-j N] [--force] [--state PREFIX] [--allow-refs]\n"
		 "       [--ova-disk N|NAME] [--verify PUB.pem] [--min-version N] OLD PATCH|- OUT\n"
		 "       edgeimg apply --resume-offset [--state PREFIX] OUT",
	.help =
	"  --resume       continue an apply that was interrupted (killed, power\n"
	"                 lost, download cut), reusing the work done; refuses a\n"
	"                 different patch or source.  Without a checkpoint it\n"
	"                 starts from the beginning\n"
	"  --resume-offset  print the patch byte from which a resumed apply needs\n"
	"                 the patch (0 without a checkpoint), for a ranged download:\n"
	"                   curl -r \"$(edgeimg apply --resume-offset new.img)-\" URL |\n"
	"                     edgeimg apply --resume old.img - new.img\n"
	"                 (a stream of the whole patch works too: the part already\n"
	"                 applied is skipped)\n"
	"  --state PREFIX keep the state in PREFIX.edgeimg-apply (the checkpoint)\n"
	"                 and PREFIX.edgeimg-part (the partial NEW disk); default\n"
	"                 OUT, or ./NAME for a block device /dev/NAME.  One apply\n"
	"                 at a time: a second one on the same PREFIX is refused\n"
	"                 (PREFIX.edgeimg-lock is held)\n"
	"  --verify PUB.pem  require a patch signed by this Ed25519 public key\n"
	"                 (openssl pkey -in key.pem -pubout -out PUB.pem): an\n"
	"                 unsigned patch, another key's or a bad signature is\n"
	"                 refused before anything is written\n"
	"  --min-version N  refuse a patch whose patch version (delta\n"
	"                 --patch-version) is below N: no downgrade.  Trust it\n"
	"                 together with --verify, which covers the version\n"
	"  -p             show progress on a terminal\n"
	"  -v             print a summary line\n"
	"  -j N           worker threads of a container writer\n"
	"  --force        replace OUT if it exists\n"
	"  --allow-refs   follow OLD's references to other files\n"
	"  --ova-disk N|NAME  the disk of an OVA OLD to read (see help info)\n"
	"\nPATCH is read once, front to back ('-': standard input, so\n"
	"'curl -s URL | edgeimg apply old.img - new.img' works); OLD is read at\n"
	"random.  OLD's SHA-256 is checked before anything is written: a patch for\n"
	"another source is refused and nothing is written.  NEW is written\n"
	"sequentially to PREFIX.edgeimg-part, synced and checkpointed after every\n"
	"chunk; NEW's SHA-256 (and, for a container target, the container's,\n"
	"rebuilt with the recipe's writer) is checked before OUT is renamed into\n"
	"place.  A mismatch or an invalid patch leaves no OUT and no state; a cut\n"
	"stream or a write error keeps the state for --resume.  OUT may be a block\n"
	"device (an inactive A/B slot): it is written in place and success is\n"
	"reported only after the check.  Memory stays under 64 MiB.  Without\n"
	"--verify a signed patch applies like any other: its hashes still\n"
	"protect the result's integrity, but not its origin.\n",
	.run = apply_run,
};
