// SPDX-License-Identifier: MIT
/*
 * The apply transaction (src/delta/delta-format.md, "Applying" and
 * "Checkpoints"): OLD + a patch fed front to back -> NEW, written to a
 * partial file (or an inactive slot), checkpointed after every chunk,
 * read back from the media and checked, and only then committed.  A
 * library call: the apply verb and an update agent both drive it.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/bytes.h"
#include "core/format.h"
#include "core/outfile.h"
#include "core/kconfig.h"
#include "delta/delta.h"
#include "files/ftree.h"

#define CKPT_MAGIC "EIAPPLY\x1a"
#define CKPT_VERSION 2
#define CKPT_FIXED 104
#define CKPT_MAX (CKPT_FIXED + DELTA_HDR_SIG_MAX + SHA256_LEN)
#define APPLY_PATH 4200

enum { PHASE_DECODING = 0, PHASE_DECODED = 1 };

/* What a checkpoint holds (the byte layout is in delta-format.md). */
struct ckpt {
	uint32_t phase;
	struct delta_pos pos;
	uint8_t old_sha[CHASH_LEN];
	uint32_t hlen;                  /* the header and its signature section */
	uint8_t hdr[DELTA_HDR_SIG_MAX];
};

/* Where the transaction is in the patch stream. */
enum feed_state {
	FEED_START,             /* nothing yet: a header or, resuming, a chunk */
	FEED_HEADER,            /* collecting the header */
	FEED_CHUNKS,            /* chunk after chunk */
	FEED_FAILED,
};

struct delta_apply {
	struct delta_apply_opts o;
	char ckpt_path[APPLY_PATH], lock_path[APPLY_PATH];
	char part_path[APPLY_PATH];     /* partial NEW ("" when OUT is it) */
	char out_tmp[APPLY_PATH];       /* a container before its rename */
	int dev;                        /* OUT is a block device */
	struct io *dev_io;              /* ... opened exclusively */
	int lock_fd;
	int keep;                       /* after a failure: keep the state */
	int written;                    /* something was written */
	int discard;                    /* a checkpoint to drop before writing */
	int out_exists;                 /* OUT is a regular file already */
	int committed;                  /* OUT is the patch's result already */

	struct delta_header h;
	uint8_t raw[DELTA_HDR_SIG_MAX]; /* the header and signature section */
	struct ckpt ckpt;
	int have_ck;

	struct vdisk *old;
	struct io *part;                /* partial NEW: a file, or the device */
	struct delta_dec *dec;
	uint32_t from_chunk;
	uint64_t written_bytes;
	uint64_t ckpt_written;          /* written_bytes at the last checkpoint */
	int old_is_new;

	/* the stream */
	enum feed_state fs;
	uint64_t in_off;                /* patch offset of the next fed byte */
	uint64_t skip_to;               /* resuming a whole stream: drop up to */
	int whole_stream;               /* the stream starts with the header */
	uint64_t patch_file_size;       /* the patch is a file of this size, 0: a stream */
	uint8_t *buf;                   /* bytes of the step in progress */
	size_t blen, bcap;
};

static void apply_note(struct delta_apply *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void apply_note(struct delta_apply *a, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!a->o.note)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	a->o.note(a->o.note_arg, msg);
}

/* --- state files -------------------------------------------------------- */

/*
 * PREFIX is --state, else OUT, else ./NAME for a block device /dev/NAME.
 * The partial NEW disk lives next to OUT (so that the final rename never
 * crosses file systems); for a block device OUT, the device itself holds
 * a raw NEW and PREFIX.edgeimg-part a container's disk.
 */
static void apply_paths(struct delta_apply *a, const char *out,
			const char *state, int dev)
{
	const char *base = strrchr(out, '/');

	if (!state)
		state = dev ? (base ? base + 1 : out) : out;
	snprintf(a->ckpt_path, sizeof(a->ckpt_path), "%s.edgeimg-apply", state);
	snprintf(a->lock_path, sizeof(a->lock_path), "%s.edgeimg-lock", state);
	snprintf(a->part_path, sizeof(a->part_path), "%s.edgeimg-part",
		 dev ? state : out);
	snprintf(a->out_tmp, sizeof(a->out_tmp), "%s.edgeimg-out", out);
}

void delta_apply_state_paths(const char *out, const char *state, char *ckpt,
			     size_t ckpt_len, char *part, size_t part_len)
{
	struct delta_apply a;
	struct stat st;

	apply_paths(&a, out, state, stat(out, &st) == 0 && S_ISBLK(st.st_mode));
	snprintf(ckpt, ckpt_len, "%s", a.ckpt_path);
	snprintf(part, part_len, "%s", a.part_path);
}

/* Write the checkpoint durably: a temporary, fsync, rename, fsync the directory. */
static int ckpt_write(struct delta_apply *a, struct err *e)
{
	const struct ckpt *ckpt = &a->ckpt;
	uint8_t b[CKPT_MAX];
	size_t n = CKPT_FIXED + ckpt->hlen, done = 0;
	ssize_t w = 0;
	char tmp[APPLY_PATH + 8];
	const char *name, *tname;
	int fd, dirfd, r;

	memset(b, 0, sizeof(b));
	memcpy(b, CKPT_MAGIC, 8);
	put_le32(b + 8, CKPT_VERSION);
	put_le32(b + 12, ckpt->phase);
	put_le32(b + 16, ckpt->pos.chunk);
	put_le32(b + 20, ckpt->hlen);
	put_le64(b + 24, ckpt->pos.patch_off);
	put_le64(b + 32, ckpt->pos.new_done);
	memcpy(b + 40, ckpt->pos.next_sha, SHA256_LEN);
	memcpy(b + 72, ckpt->old_sha, CHASH_LEN);
	memcpy(b + CKPT_FIXED, ckpt->hdr, ckpt->hlen);
	sha256(b, n, b + n);
	n += SHA256_LEN;
	snprintf(tmp, sizeof(tmp), "%s.tmp", a->ckpt_path);
	dirfd = dir_open(a->ckpt_path, &name, e);
	if (dirfd < 0)
		return dirfd;
	tname = strrchr(tmp, '/') ? strrchr(tmp, '/') + 1 : tmp;
	fd = openat(dirfd, tname, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = err_errno(e, errno, "%s: cannot write the checkpoint", tmp);
		close(dirfd);
		return r;
	}
	/* a short write is finished, not reported with a stale errno */
	while (done < n && ((w = write(fd, b + done, n - done)) > 0 || (w < 0 && errno == EINTR)))
		done += w > 0 ? (size_t)w : 0;
	if (done < n) {
		r = err_errno(e, w < 0 ? errno : ENOSPC, "%s: cannot write the checkpoint", tmp);
		unlinkat(dirfd, tname, 0);
	} else {
		r = file_commit(dirfd, fd, tname, name, 0600, a->ckpt_path, e);
		if (r < 0)
			unlinkat(dirfd, tname, 0);
	}
	close(fd);
	close(dirfd);
	return r;
}

/* 1 with a->ckpt and a->h filled, 0 when there is none, or an error. */
static int ckpt_load(const char *path, struct ckpt *ckpt, struct delta_header *h,
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
	if (n < 0)              /* an I/O error, not a checkpoint to remove */
		r = err_errno(e, errno, "%s: read", path);
	close(fd);
	if (n < 0)
		return r;
	memset(ckpt, 0, sizeof(*ckpt));
	if (n < CKPT_FIXED + SHA256_LEN || memcmp(b, CKPT_MAGIC, 8) ||
	    get_le32(b + 8) != CKPT_VERSION)
		return err_set(e, EI_ECORRUPT,
			       "%s: not an edgeimg checkpoint of version %u; remove it to start over",
			       path, CKPT_VERSION);
	ckpt->phase = get_le32(b + 12);
	ckpt->pos.chunk = get_le32(b + 16);
	ckpt->hlen = get_le32(b + 20);
	if (ckpt->hlen > DELTA_HDR_SIG_MAX || (size_t)n != CKPT_FIXED + ckpt->hlen + SHA256_LEN)
		return err_set(e, EI_ECORRUPT, "%s: bad length; remove it to start over", path);
	sha256(b, CKPT_FIXED + ckpt->hlen, sum);
	if (memcmp(sum, b + CKPT_FIXED + ckpt->hlen, SHA256_LEN))
		return err_set(e, EI_EMISMATCH,
			       "%s: checksum mismatch; remove it to start over", path);
	ckpt->pos.patch_off = get_le64(b + 24);
	ckpt->pos.new_done = get_le64(b + 32);
	memcpy(ckpt->pos.next_sha, b + 40, SHA256_LEN);
	memcpy(ckpt->old_sha, b + 72, CHASH_LEN);
	memcpy(ckpt->hdr, b + CKPT_FIXED, ckpt->hlen);
	r = delta_header_parse(ckpt->hdr, ckpt->hlen, h, 0, e);
	if (r < 0) {
		err_prefix(e, "%s", path);
		return r;
	}
	if (ckpt->hlen != h->chunks_off)
		return err_set(e, EI_ECORRUPT, "%s: %u header bytes, the patch has %llu; remove it to start over",
			       path, ckpt->hlen, (unsigned long long)h->chunks_off);
	if (ckpt->phase > PHASE_DECODED || ckpt->pos.chunk > h->chunk_count ||
	    ckpt->pos.new_done > h->new_size || ckpt->pos.patch_off > h->patch_size ||
	    ckpt->pos.patch_off < h->chunks_off ||
	    (ckpt->phase == PHASE_DECODED && ckpt->pos.chunk != h->chunk_count))
		return err_set(e, EI_ECORRUPT,
			       "%s: inconsistent position; remove it to start over", path);
	return 1;
}

int delta_apply_resume_offset(const char *out, const char *state, uint64_t *off,
			      struct err *e)
{
	struct delta_apply *a = calloc(1, sizeof(*a));
	struct delta_header h;
	struct stat st;
	int r;

	if (!a)
		return err_set(e, -ENOMEM, "out of memory");
	apply_paths(a, out, state, stat(out, &st) == 0 && S_ISBLK(st.st_mode));
	r = ckpt_load(a->ckpt_path, &a->ckpt, &h, e);
	*off = r > 0 ? a->ckpt.pos.patch_off : 0;
	free(a);
	return r < 0 ? r : 0;
}

/*
 * One apply at a time on a state PREFIX: an exclusive flock on
 * PREFIX.edgeimg-lock, taken before anything else is read or written and
 * removed (still held) at the end.  A lock file removed between our open
 * and our flock is not ours to hold: open it again.
 */
static int apply_lock(struct delta_apply *a, struct err *e)
{
	struct stat s1, s2;

	for (int tries = 0; tries < 100; tries++) {
		int fd = open(a->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

		if (fd < 0)
			return err_errno(e, errno, "%s: cannot create the lock",
					 a->lock_path);
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			int r = errno == EWOULDBLOCK ?
				err_set(e, -EBUSY,
					"another apply is running on %s (it holds %s); nothing done",
					a->o.out_path, a->lock_path) :
				err_errno(e, errno, "%s: cannot lock", a->lock_path);

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
	return err_set(e, -EBUSY, "%s: the lock keeps changing", a->lock_path);
}

/* Remove a file of the state: one that stays is named, not left unsaid. */
static void apply_unlink(struct delta_apply *a, const char *path)
{
	if (unlink(path) < 0 && errno != ENOENT)
		apply_note(a, "cannot remove %s: %s", path, strerror(errno));
}

static void apply_forget(struct delta_apply *a)
{
	apply_unlink(a, a->ckpt_path);
	if (!(a->dev && !a->h.recipe[0]))
		apply_unlink(a, a->part_path);
	apply_unlink(a, a->out_tmp);
}

/* --- begin: the command line's paths, the lock, the checkpoint ---------- */

/* 1 when the file at @path starts with the patch magic. */
static int path_is_patch(const char *path)
{
	uint8_t head[DELTA_MAGIC_LEN];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK), ok;
	struct stat st;

	if (fd < 0)
		return 0;
	ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	     read(fd, head, sizeof(head)) == (ssize_t)sizeof(head) &&
	     delta_is_patch(head, sizeof(head));
	close(fd);
	return ok;
}

static int apply_exists(const struct delta_apply_opts *o, struct err *e)
{
	return err_set(e, -EEXIST, "OUT %s already exists; use --force to replace it",
		       o->out_path);
}

static int apply_check_paths(struct delta_apply *a, struct err *e)
{
	const struct delta_apply_opts *o = &a->o;
	struct stat st, tgt;

	if (path_is_patch(o->old_path))
		return err_set(e, EI_EUSAGE,
			       "OLD %s is a delta patch: the arguments are OLD PATCH OUT (did you swap OLD and PATCH?)",
			       o->old_path);
	if (same_file(o->old_path, o->out_path))
		return err_set(e, EI_EUSAGE,
			       "OUT is OLD (%s): apply writes a new disk, never in place",
			       o->out_path);
	if (o->patch_path && same_file(o->patch_path, o->out_path))
		return err_set(e, EI_EUSAGE, "OUT %s is the patch", o->out_path);
	if (lstat(o->out_path, &st) < 0) {
		if (errno != ENOENT)
			return err_errno(e, errno, "%s", o->out_path);
		return 0;
	}
	if (S_ISLNK(st.st_mode) && stat(o->out_path, &tgt) == 0 && S_ISBLK(tgt.st_mode))
		st = tgt;
	if (S_ISBLK(st.st_mode)) {
		a->dev = 1;
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return err_set(e, EI_EUSAGE,
			       "OUT %s is %s: apply writes a regular file or a block device",
			       o->out_path, S_ISLNK(st.st_mode) ? "a symbolic link" :
			       S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
	if (path_is_patch(o->out_path))
		return err_set(e, EI_EUSAGE,
			       "OUT %s is a delta patch: the arguments are OLD PATCH OUT (did you swap PATCH and OUT?)",
			       o->out_path);
	a->out_exists = 1;
	/* --resume looks first: a commit cut after its rename left OUT */
	if (!o->force && !o->resume)
		return apply_exists(o, e);
	return 0;
}

/*
 * A checkpoint beside an OUT that already holds what the patch promises:
 * the commit renamed OUT into place and was cut before it removed the
 * state. Read OUT back; only its content hash says the work is done.
 */
static int apply_check_committed(struct delta_apply *a, struct err *e)
{
	const uint8_t *want = a->h.recipe[0] ? a->h.target_sha : a->h.new_sha;
	uint64_t size = a->h.recipe[0] ? a->h.target_size : a->h.new_size;
	uint8_t sha[CHASH_LEN];
	struct io *io;
	int r;

	if (a->o.patch_path) {
		/* a patch file must be the checkpoint's (a stream from a
		   chunk on is trusted through the checkpoint, as a resume is) */
		uint8_t *head = malloc(a->ckpt.hlen);
		int fd = open(a->o.patch_path, O_RDONLY | O_CLOEXEC), same;

		same = head && fd >= 0 &&
		       read(fd, head, a->ckpt.hlen) == (ssize_t)a->ckpt.hlen &&
		       !memcmp(head, a->ckpt.hdr, a->ckpt.hlen);
		if (fd >= 0)
			close(fd);
		free(head);
		if (!same)
			return 0;
	}
	r = io_open_file(a->o.out_path, 0, &io, e);
	if (r < 0)
		return r;
	r = 0;
	if (io->size == size) {
		r = chash_io(io, size, 1, sha, e);
		if (r >= 0)
			r = !memcmp(sha, want, CHASH_LEN);
	}
	io_close(io);
	return r;
}

int delta_apply_begin(const struct delta_apply_opts *o, struct delta_apply **out,
		      struct err *e)
{
	struct delta_apply *a = calloc(1, sizeof(*a));
	int r;

	if (!a)
		return err_set(e, -ENOMEM, "out of memory");
	a->o = *o;
	a->lock_fd = -1;
	*out = a;
	r = apply_check_paths(a, e);
	if (r < 0)
		return r;
	apply_paths(a, o->out_path, o->state, a->dev);
	r = apply_lock(a, e);
	if (r < 0)
		return r;
	if (a->dev) {
		/* the slot itself: exclusively (not while mounted), and locked,
		   whatever --state another apply was given */
		r = io_open_file(o->out_path, IO_OPEN_RW | IO_OPEN_EXCL, &a->dev_io, e);
		if (r < 0)
			return r;
		if (flock(io_fd(a->dev_io), LOCK_EX | LOCK_NB) < 0)
			return err_set(e, -EBUSY, "another apply is writing %s; nothing done",
				       o->out_path);
	}
	r = ckpt_load(a->ckpt_path, &a->ckpt, &a->h, e);
	if (r < 0 && !o->resume) {      /* a broken checkpoint we would drop anyway */
		r = 1;
		a->ckpt.pos.chunk = 0;
		a->h.chunk_count = 0;
	}
	if (r < 0)
		return r;
	if (r && !o->resume) {
		apply_note(a, "discarding the checkpoint of an interrupted apply (%u of %u chunks done) in %s: without --resume apply starts over",
			   a->ckpt.pos.chunk, a->h.chunk_count, a->ckpt_path);
		a->discard = 1;
		memset(&a->h, 0, sizeof(a->h));
		r = 0;
	}
	a->have_ck = r;
	if (a->have_ck)
		memcpy(a->raw, a->ckpt.hdr, a->ckpt.hlen);
	if (a->have_ck && a->out_exists) {
		r = apply_check_committed(a, e);
		if (r < 0)
			return r;
		if (r) {
			apply_note(a, "%s already holds the patch's result (an apply cut after its commit): removing the state left behind",
				   o->out_path);
			a->committed = 1;
			return 0;
		}
	}
	if (a->out_exists && !o->force)
		return apply_exists(o, e);
	return 0;
}

/* --- the header: trust, recipe, OLD, then the partial NEW --------------- */

static int apply_trust(struct delta_apply *a, struct err *e)
{
	int r;

	if (a->o.verify) {
		r = delta_sig_verify(&a->h, a->raw, a->o.verify, e);
		if (r < 0) {
			err_prefix(e, "%s", a->o.patch_name);
			return r;
		}
	}
	if (a->h.patch_version < a->o.min_version)
		return err_set(e, EI_ESIG,
			       "%s: patch_version %llu is below --min-version %llu: refusing a downgrade; nothing written",
			       a->o.patch_name, (unsigned long long)a->h.patch_version,
			       (unsigned long long)a->o.min_version);
	return delta_recipe_check(a->h.recipe, e);
}

/* Open OLD and check its content hash: before anything is written. */
static int apply_old(struct delta_apply *a, struct err *e)
{
	uint8_t sha[CHASH_LEN];
	char h1[2 * CHASH_LEN + 1] = "", h2[2 * CHASH_LEN + 1];
	int r;

	/* a root filesystem's patch: OLD is one too, read as its file-tree view */
#if IS_ENABLED(CONFIG_FILES)
	if (strstr(a->h.recipe, ",files=on"))
		r = ftv_open_path(a->o.old_path, &a->o.old_open, &a->old, e);
	else
#endif
	/* a container rebuilt exactly: OLD is read as its packed view */
	if (!strncmp(a->h.recipe, "format=repack,", 14))
		r = pack_open(a->o.old_path, &a->o.old_open, 0, 1, &a->old, NULL, e);
	else
		r = vdisk_open(a->o.old_path, &a->o.old_open, &a->old, e);
	if (r < 0) {
		err_prefix(e, "OLD");
		return r;
	}
	if (a->old->size > a->h.old_size && (a->old->io->flags & IO_BLOCKDEV) &&
	    !strcmp(a->old->fmt->name, "raw")) {
		/* a slot bigger than the image it holds: its first bytes */
		apply_note(a, "OLD %s has %llu bytes; the patch uses its first %llu",
			   a->o.old_path, (unsigned long long)a->old->size,
			   (unsigned long long)a->h.old_size);
		a->old->size = a->h.old_size;
	}
	if (a->old->size != a->h.old_size)
		return err_set(e, EI_EMISMATCH,
			       "OLD %s has %llu bytes; the patch was made for a disk of %llu bytes: nothing written",
			       a->o.old_path, (unsigned long long)a->old->size,
			       (unsigned long long)a->h.old_size);
	r = chash_vdisk(a->old, sha, a->o.progress, a->o.progress_arg, e);
	if (r < 0)
		return r;
	if (memcmp(sha, a->h.old_sha, CHASH_LEN))
		return err_set(e, EI_EMISMATCH,
			       "OLD %s is not the patch's source: its content hash is %s, the patch was made for %s: nothing written",
			       a->o.old_path, sha_hex(sha, CHASH_LEN, h1),
			       sha_hex(a->h.old_sha, CHASH_LEN, h2));
	if (a->have_ck && memcmp(sha, a->ckpt.old_sha, CHASH_LEN))
		return err_set(e, EI_EMISMATCH, "OLD %s is not the one of the checkpoint",
			       a->o.old_path);
	memcpy(a->ckpt.old_sha, sha, CHASH_LEN);
	if (a->h.old_size == a->h.new_size && !memcmp(sha, a->h.new_sha, CHASH_LEN)) {
		a->old_is_new = 1;
		apply_note(a, "OLD %s already holds NEW (content hash %s)",
			   a->o.old_path, h1[0] ? h1 : sha_hex(sha, CHASH_LEN, h1));
	}
	return 0;
}

/* Open or create the partial NEW disk; with a checkpoint, cut it back to it. */
static int apply_part(struct delta_apply *a, struct err *e)
{
	int container = a->h.recipe[0] != 0, fd, r;
	struct stat st;

	if (a->have_ck && !(a->dev && !container) &&
	    (stat(a->part_path, &st) < 0 || (uint64_t)st.st_size < a->ckpt.pos.new_done)) {
		if (!a->whole_stream)
			return err_set(e, EI_ETRUNC,
				       "%s is missing or short: the work is lost; feed the whole patch, not the part from byte %llu",
				       a->part_path, (unsigned long long)a->ckpt.pos.patch_off);
		apply_note(a, "%s is missing or short: starting over", a->part_path);
		a->have_ck = 0;
		a->skip_to = 0;
	}
	if (!a->have_ck) {
		memset(&a->ckpt.pos, 0, sizeof(a->ckpt.pos));
		a->ckpt.phase = PHASE_DECODING;
		a->ckpt.pos.patch_off = a->h.chunks_off;
		memcpy(a->ckpt.pos.next_sha, a->h.chunk0_sha, SHA256_LEN);
		a->ckpt.hlen = (uint32_t)a->h.chunks_off;
		memcpy(a->ckpt.hdr, a->raw, a->ckpt.hlen);
	}
	if (a->dev && !container) {
		a->part = a->dev_io;
		if (a->part->size < a->h.new_size)
			return err_set(e, -ENOSPC, "%s holds %llu bytes, NEW needs %llu",
				       a->o.out_path, (unsigned long long)a->part->size,
				       (unsigned long long)a->h.new_size);
		return 0;
	}
	fd = open(a->part_path, O_RDWR | O_CREAT | O_CLOEXEC | (a->have_ck ? 0 : O_TRUNC),
		  0644);
	if (fd < 0)
		return err_errno(e, errno, "%s", a->part_path);
	r = io_open_fd(fd, a->part_path, IO_OPEN_RW, &a->part, e);
	if (r < 0)
		return r;
	/* bytes past the checkpoint were never recorded: drop them */
	if (a->ckpt.phase == PHASE_DECODING)
		r = io_truncate(a->part, a->ckpt.pos.new_done, e);
	if (r >= 0)
		r = io_sync(a->part, e);
	return r;
}

/* Everything between a complete header and the first chunk. */
static int apply_start(struct delta_apply *a, struct err *e)
{
	int r;

	r = apply_trust(a, e);
	if (r < 0)
		return r;
	r = apply_old(a, e);
	if (r < 0)
		return r;
	/* OLD is the patch's source: from here on things get written. */
	if (a->discard)
		apply_forget(a);
	a->written = 1;
	a->keep = 1;
	if (a->ckpt.phase == PHASE_DECODED)
		return 0;
	r = apply_part(a, e);
	if (r < 0)
		return r;
	a->from_chunk = a->ckpt.pos.chunk;
	r = ckpt_write(a, e);
	if (r < 0)
		return r;
	return delta_dec_new(&a->h, a->old, NULL, 0, &a->ckpt.pos, 0, &a->dec, e);
}

/* --- chunks ------------------------------------------------------------- */

static int apply_sink(void *arg, const void *buf, size_t len, uint64_t off,
		      struct err *e)
{
	struct delta_apply *a = arg;
	int r = 0;

	if (buf) {
		r = io_write(a->part, buf, len, off, e);
		a->written_bytes += len;
	} else if (a->part->flags & IO_BLOCKDEV) {
		/* a slot: zeroed where the device can, never left stale */
		r = io_zero(a->part, off, len, e);
		a->written_bytes += len;
	}       /* a fresh partial file: zeros are a hole */
	if (a->o.progress)
		a->o.progress(a->o.progress_arg, a->h.old_size + off + len,
			      a->h.old_size + a->h.new_size);
	return r;
}

static int apply_chunk(struct delta_apply *a, const uint8_t *chunk, size_t len,
		       struct err *e)
{
	int r = delta_dec_chunk(a->dec, chunk, len,
				&(struct delta_sink){ apply_sink, a }, e);

	if (r < 0)
		return r;
	delta_dec_pos(a->dec, &a->ckpt.pos);
	/*
	 * A chunk that wrote nothing (zeros into a fresh file) costs nothing
	 * to redo: the next chunk that writes, or the end, checkpoints it.
	 * So a sparse disk is not thousands of fsyncs.
	 */
	if (a->written_bytes == a->ckpt_written && a->ckpt.pos.chunk < a->h.chunk_count)
		return 0;
	a->ckpt_written = a->written_bytes;
	/* trailing zeros are a hole: give the file its length */
	if (!(a->part->flags & IO_BLOCKDEV) && a->part->size < a->ckpt.pos.new_done &&
	    (r = io_truncate(a->part, a->ckpt.pos.new_done, e)) < 0)
		return r;
	r = io_sync(a->part, e);
	if (r < 0)
		return r;
	return ckpt_write(a, e);
}

/* Make room for @need bytes in the step buffer (at most one chunk). */
static int apply_buf(struct delta_apply *a, size_t need, struct err *e)
{
	uint8_t *n;

	if (need <= a->bcap)
		return 0;
	n = realloc(a->buf, need);
	if (!n)
		return err_set(e, -ENOMEM, "out of memory for %zu bytes of patch", need);
	a->buf = n;
	a->bcap = need;
	return 0;
}

/* The first bytes of a stream with a checkpoint: a header or its chunk? */
static int apply_first(struct delta_apply *a, struct err *e)
{
	const uint8_t *b = a->buf;

	if (delta_is_patch(b, a->blen)) {
		a->fs = FEED_HEADER;
		a->whole_stream = 1;
		return 0;
	}
	if (!a->have_ck)
		return err_set(e, EI_EFORMAT,
			       "%s: not an edgeimg patch (no EIDELTA magic at byte 0)",
			       a->o.patch_name);
	if (!memcmp(b, DELTA_CHUNK_MAGIC, 4)) {
		uint32_t idx = get_le32(b + 4);

		if (idx != a->ckpt.pos.chunk)
			return err_set(e, EI_EUSAGE,
				       "the stream starts with chunk %u; the checkpoint needs chunk %u, at byte %llu of the patch (edgeimg apply --resume-offset %s)",
				       idx, a->ckpt.pos.chunk,
				       (unsigned long long)a->ckpt.pos.patch_off, a->o.out_path);
		a->in_off = a->ckpt.pos.patch_off;
		return 1;               /* with the checkpoint's header */
	}
	return err_set(e, EI_EUSAGE,
		       "the stream starts with neither the patch header nor chunk %u: with this checkpoint, feed the whole patch or the patch from byte %llu (edgeimg apply --resume-offset %s)",
		       a->ckpt.pos.chunk, (unsigned long long)a->ckpt.pos.patch_off,
		       a->o.out_path);
}

/* A whole header is in a->buf: check it, then start. */
static int apply_header(struct delta_apply *a, struct err *e)
{
	struct delta_header fh;
	struct delta_sig sg;
	int r = delta_header_parse(a->buf, a->blen, &fh, 0, e);

	if (r < 0)
		return r;
	if ((fh.incompat & DELTA_INCOMPAT_SIGNED) &&
	    (r = delta_sig_parse(a->buf + fh.header_size, &sg, e)) < 0)
		return r;
	if (a->patch_file_size && a->patch_file_size != fh.patch_size)
		return err_set(e, a->patch_file_size < fh.patch_size ? EI_ETRUNC : EI_ECORRUPT,
			       "%s: %llu bytes, the patch header says %llu: nothing written",
			       a->o.patch_name, (unsigned long long)a->patch_file_size,
			       (unsigned long long)fh.patch_size);
	if (a->have_ck) {
		if (memcmp(fh.id, a->h.id, SHA256_LEN))
			return err_set(e, EI_EMISMATCH,
				       "%s belongs to another patch; refusing to resume (remove %s and %s to start over)",
				       a->ckpt_path, a->ckpt_path, a->part_path);
		a->skip_to = a->ckpt.pos.patch_off;
	} else {
		a->h = fh;
	}
	memcpy(a->raw, a->buf, (size_t)fh.chunks_off);
	return apply_start(a, e);
}

/* How many bytes the step in progress needs in a->buf. */
static int apply_need(struct delta_apply *a, size_t *need, struct err *e)
{
	switch (a->fs) {
	case FEED_START:
		*need = 8;
		return 0;
	case FEED_HEADER:
		if (a->blen < DELTA_HDR_FIXED) {
			*need = DELTA_HDR_FIXED;
			return 0;
		}
		*need = DELTA_HDR_FIXED + (size_t)min_u64(get_le32(a->buf + 72),
							  DELTA_RECIPE_MAX) + SHA256_LEN +
			(get_le64(a->buf + 16) & DELTA_INCOMPAT_SIGNED ? DELTA_SIG_SIZE : 0);
		return 0;
	case FEED_CHUNKS:
		if (a->blen < DELTA_CHUNK_HDR) {
			*need = DELTA_CHUNK_HDR;
			return 0;
		}
		return delta_dec_chunk_size(a->dec, a->buf, need, e);
	default:
		return err_set(e, -EINVAL, "apply: the transaction has failed already");
	}
}

static int apply_step(struct delta_apply *a, struct err *e)
{
	int r;

	switch (a->fs) {
	case FEED_START:
		r = apply_first(a, e);
		if (r < 0)
			return r;
		if (r == 1) {   /* a resumed stream: chunks, with the checkpoint's header */
			r = apply_start(a, e);
			a->fs = FEED_CHUNKS;
			a->in_off = a->ckpt.pos.patch_off;
		}
		return r;       /* the bytes stay for the next step */
	case FEED_HEADER:
		r = apply_header(a, e);
		a->in_off = a->h.chunks_off;
		a->blen = 0;
		a->fs = FEED_CHUNKS;
		return r;
	default:
		r = apply_chunk(a, a->buf, a->blen, e);
		a->in_off += a->blen;
		a->blen = 0;
		return r;
	}
}

void delta_apply_patch_size(struct delta_apply *a, uint64_t size)
{
	a->patch_file_size = size;
}

int delta_apply_needs_patch(const struct delta_apply *a)
{
	if (a->committed)
		return 0;
	return !(a->have_ck && a->ckpt.phase == PHASE_DECODED);
}

int delta_apply_feed(struct delta_apply *a, const void *data, size_t len,
		     struct err *e)
{
	const uint8_t *p = data;
	int r = 0;

	if (a->fs == FEED_FAILED)
		return err_set(e, -EINVAL, "apply: the transaction has failed already");
	if (!delta_apply_needs_patch(a))
		return 0;       /* NEW is complete: only the container is left */
	while (len) {
		size_t need, n;

		/* a whole stream while resuming: the chunks done are skipped */
		if (a->fs == FEED_CHUNKS && a->in_off < a->skip_to) {
			n = (size_t)min_u64(len, a->skip_to - a->in_off);
			a->in_off += n;
			p += n;
			len -= n;
			continue;
		}
		if (a->fs == FEED_CHUNKS && delta_dec_done(a->dec, e) == 0) {
			r = err_set(e, EI_ECORRUPT,
				    "%s: trailing bytes after the last chunk (at byte %llu)",
				    a->o.patch_name, (unsigned long long)a->in_off);
			break;
		}
		r = apply_need(a, &need, e);
		if (r < 0 || (r = apply_buf(a, need, e)) < 0)
			break;
		n = need > a->blen ? (size_t)min_u64(len, need - a->blen) : 0;
		memcpy(a->buf + a->blen, p, n);
		a->blen += n;
		p += n;
		len -= n;
		if (a->blen < need)
			break;
		/*
		 * a header's size may grow once its fixed part is in, a
		 * chunk's once its header is
		 */
		if (a->fs == FEED_HEADER || a->fs == FEED_CHUNKS) {
			size_t need2;

			if ((r = apply_need(a, &need2, e)) < 0)
				break;
			if (need2 > a->blen)
				continue;
		}
		r = apply_step(a, e);
		if (r < 0)
			break;
	}
	if (r < 0)
		a->fs = FEED_FAILED;
	return r < 0 ? r : 0;
}

/* --- finish: verify by reading back, build a container, commit ---------- */

static int apply_readback(struct delta_apply *a, struct io *io, uint64_t len,
			  const uint8_t want[CHASH_LEN], uint8_t got[CHASH_LEN],
			  const char *what, struct err *e)
{
	char h1[2 * CHASH_LEN + 1], h2[2 * CHASH_LEN + 1];
	int r = chash_io(io, len, 1, got, e);

	if (r < 0)
		return r;
	if (memcmp(got, want, CHASH_LEN)) {
		a->keep = 0;    /* what was written is wrong: start over */
		return err_set(e, EI_EMISMATCH,
			       "%s read back from %s has content hash %s, the patch promises %s: OUT not committed",
			       what, io->name, sha_hex(got, CHASH_LEN, h1),
			       sha_hex(want, CHASH_LEN, h2));
	}
	return 0;
}

/* Re-encode the decoded NEW disk as the recipe says, check, put in place. */
static int apply_container(struct delta_apply *a, struct delta_apply_result *res,
			   struct err *e)
{
	struct open_opts raw_open = { .format = "raw" };
	struct block_reuse *reuse = NULL;
	struct vdisk *raw = NULL;
	struct io *out = NULL;
	char h1[2 * CHASH_LEN + 1], h2[2 * CHASH_LEN + 1];
	const char *name;
	uint64_t size = 0;
	int fd, r, dirfd;

	r = vdisk_open(a->part_path, &raw_open, &raw, e);
	if (r < 0)
		return r;
	if (a->dev) {
		out = a->dev_io;
		if (out->size < a->h.target_size)
			r = err_set(e, -ENOSPC, "%s holds %llu bytes, the container needs %llu",
				    a->o.out_path, (unsigned long long)out->size,
				    (unsigned long long)a->h.target_size);
	} else {
		fd = open(a->out_tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		r = fd < 0 ? err_errno(e, errno, "%s", a->out_tmp) :
			     io_open_fd(fd, a->out_tmp, IO_OPEN_RW, &out, e);
	}
	/*
	 * Blocks OLD's container already holds, compressed as the recipe
	 * compresses them, are copied, not compressed again.  The read-back
	 * judges the result: should it differ, the container is built again
	 * from NEW alone.
	 */
	if (r >= 0) {
		struct err e2 = { 0 };

		if (delta_target_reuse(a->h.recipe, a->o.old_path, &a->o.old_open, &reuse,
				       &e2) < 0)
			apply_note(a, "OLD's blocks cannot be reused (%s): all of NEW's are compressed",
				   e2.msg);
		r = delta_target_build(raw, a->h.recipe, out, a->o.threads, NULL, NULL, reuse,
				       &size, res->target_sha, e);
		if (r >= 0 && reuse && (size != a->h.target_size ||
					memcmp(res->target_sha, a->h.target_sha, CHASH_LEN))) {
			apply_note(a, "the container with %llu blocks copied from OLD is not the patch's: building it again without them",
				   (unsigned long long)reuse->copied);
			reuse->free(reuse);
			reuse = NULL;
			if (a->dev)
				out->end = 0;
			else
				r = io_truncate(out, 0, e);
			if (r >= 0)
				r = delta_target_build(raw, a->h.recipe, out, a->o.threads, NULL,
						       NULL, NULL, &size, res->target_sha, e);
		}
		if (reuse) {
			res->blocks_copied = reuse->copied;
			res->blocks = reuse->asked;
			reuse->free(reuse);
		}
	}
	vdisk_close(raw);
	if (r >= 0 && (size != a->h.target_size ||
		       memcmp(res->target_sha, a->h.target_sha, CHASH_LEN))) {
		a->keep = 0;
		r = err_set(e, EI_EMISMATCH,
			    "the %s container built from NEW has %llu bytes and content hash %s; the patch promises %llu bytes and %s: OUT not committed",
			    a->h.recipe, (unsigned long long)size,
			    sha_hex(res->target_sha, CHASH_LEN, h1),
			    (unsigned long long)a->h.target_size,
			    sha_hex(a->h.target_sha, CHASH_LEN, h2));
	}
	if (r >= 0 && !a->dev) {
		dirfd = dir_open(a->out_tmp, &name, e);
		r = dirfd;
		if (dirfd >= 0) {
			const char *oname = strrchr(a->o.out_path, '/');

			r = file_commit(dirfd, io_fd(out), name,
					oname ? oname + 1 : a->o.out_path, 0666,
					a->o.out_path, e);
			close(dirfd);
		}
	}
	res->target_size = size;
	if (out != a->dev_io)
		io_close(out);
	/* a resume builds the container again: no half-built one is kept */
	if (r < 0 && !a->dev)
		apply_unlink(a, a->out_tmp);
	return r;
}

int delta_apply_finish(struct delta_apply *a, struct delta_apply_result *res,
		       struct err *e)
{
	const char *name;
	int r, dirfd;

	memset(res, 0, sizeof(*res));
	if (a->fs == FEED_FAILED)
		return err_set(e, -EINVAL, "apply: the transaction has failed already");
	if (a->committed) {
		res->new_size = a->h.new_size;
		res->chunks = a->h.chunk_count;
		res->from_chunk = a->h.chunk_count;
		memcpy(res->new_sha, a->h.new_sha, CHASH_LEN);
		res->target_size = a->h.recipe[0] ? a->h.target_size : a->h.new_size;
		memcpy(res->target_sha, a->h.recipe[0] ? a->h.target_sha : a->h.new_sha,
		       CHASH_LEN);
		snprintf(res->target, sizeof(res->target), "%s", a->h.recipe);
		apply_forget(a);
		return 0;
	}
	if (!a->written) {
		/* no chunk came: only a checkpoint may say nothing is left */
		if (!a->have_ck || (a->ckpt.phase != PHASE_DECODED &&
				    a->ckpt.pos.chunk != a->h.chunk_count)) {
			a->fs = FEED_FAILED;
			return err_set(e, EI_ETRUNC, "%s: truncated: %s",
				       a->o.patch_name, a->blen || a->in_off ?
				       "the patch ends within its header" : "the patch is empty");
		}
		r = apply_start(a, e);
		if (r < 0)
			goto fail;
	}
	if (a->dec && (r = delta_dec_done(a->dec, e)) != 0) {
		if (r > 0)
			r = err_set(e, EI_ETRUNC,
				    "%s: truncated: the patch ends at byte %llu, %u of %u chunks applied; run again with --resume to continue%s",
				    a->o.patch_name, (unsigned long long)(a->in_off + a->blen),
				    a->ckpt.pos.chunk, a->h.chunk_count,
				    a->o.patch_path ? "" : " (the patch from byte 'edgeimg apply --resume-offset OUT' on, or all of it)");
		goto fail;
	}
	res->new_size = a->h.new_size;
	res->chunks = a->h.chunk_count;
	res->from_chunk = a->from_chunk;
	res->old_used = a->h.old_size;
	res->old_is_new = a->old_is_new;
	res->out_is_device = a->dev;
	snprintf(res->target, sizeof(res->target), "%s", a->h.recipe);
	if (a->ckpt.phase == PHASE_DECODING) {
		if (!(a->part->flags & IO_BLOCKDEV) &&
		    (r = io_truncate(a->part, a->h.new_size, e)) < 0)
			goto fail;
		r = io_sync(a->part, e);
		if (r < 0)
			goto fail;
		/* the media, not what we meant to write, against the patch */
		r = apply_readback(a, a->part, a->h.new_size, a->h.new_sha, res->new_sha,
				   "NEW", e);
		if (r < 0)
			goto fail;
		if (a->h.recipe[0]) {
			a->ckpt.phase = PHASE_DECODED;
			r = ckpt_write(a, e);
			if (r < 0)
				goto fail;
		}
	} else {
		memcpy(res->new_sha, a->h.new_sha, CHASH_LEN);
	}
	if (a->h.recipe[0]) {
		r = apply_container(a, res, e);
		if (r < 0)
			goto fail;
	} else {
		memcpy(res->target_sha, res->new_sha, CHASH_LEN);
		res->target_size = a->h.new_size;
		if (!a->dev) {
			dirfd = dir_open(a->part_path, &name, e);
			r = dirfd;
			if (dirfd >= 0) {
				const char *oname = strrchr(a->o.out_path, '/');

				r = file_commit(dirfd, io_fd(a->part), name,
						oname ? oname + 1 : a->o.out_path, 0666,
						a->o.out_path, e);
				close(dirfd);
			}
			if (r < 0)
				goto fail;
		}
	}
	res->written = a->written_bytes;
	apply_forget(a);
	a->keep = 0;
	a->written = 0;         /* committed: nothing to clean up */
	return 0;
fail:
	a->fs = FEED_FAILED;
	return r;
}

void delta_apply_free(struct delta_apply *a, int *kept)
{
	if (kept)
		*kept = 0;
	if (!a)
		return;
	if (a->fs == FEED_FAILED && a->written) {
		if (a->keep) {
			if (kept)
				*kept = 1;
			/* bytes past the checkpoint are not kept: give their
			   space back (a full disk stays full otherwise) */
			if (a->part && !(a->part->flags & IO_BLOCKDEV) &&
			    a->ckpt.phase == PHASE_DECODING)
				io_truncate(a->part, a->ckpt.pos.new_done, NULL);
		} else {
			apply_forget(a);
		}
	}
	delta_dec_free(a->dec);
	if (a->part != a->dev_io)
		io_close(a->part);
	io_close(a->dev_io);
	vdisk_close(a->old);
	free(a->buf);
	if (a->lock_fd >= 0) {
		apply_unlink(a, a->lock_path);
		close(a->lock_fd);
	}
	explicit_bzero(a, sizeof(*a));
	free(a);
}

int delta_apply_pull(struct delta_apply *a,
		     int (*read)(void *arg, void *buf, size_t len, size_t *got,
				 struct err *e),
		     void *arg, struct delta_apply_result *res, struct err *e)
{
	uint8_t *buf = malloc(1u << 20);
	int r = 0;

	if (!buf)
		r = err_set(e, -ENOMEM, "out of memory");
	while (r >= 0 && delta_apply_needs_patch(a)) {
		size_t got = 0;

		r = read(arg, buf, 1u << 20, &got, e);
		if (r < 0 || !got)
			break;
		r = delta_apply_feed(a, buf, got, e);
	}
	free(buf);
	if (r >= 0)
		return delta_apply_finish(a, res, e);
	if (a->fs != FEED_FAILED)       /* a read error: the work done stays */
		a->fs = FEED_FAILED;
	return r;
}
