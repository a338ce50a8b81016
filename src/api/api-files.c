// SPDX-License-Identifier: MIT
/* The public API: file trees (--files): convert to squashfs or tar, list. */
#include <errno.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/api.h"
#include "core/format.h"
#include "core/kconfig.h"
#include "core/limits.h"
#include "core/outfile.h"
#include "crypto/sha.h"
#include "files/ftree.h"

#if IS_ENABLED(CONFIG_FILES)

int ei_files_supported(struct ei_err *pub)
{
	return 0;
}

/* ei_open_opts as ft_open() takes them: -f checked */
static int files_open(const char *in, const struct ei_open_opts *oo, struct ft_source **src,
		      void (*warn)(void *arg, const char *msg), void *warn_arg, struct err *e)
{
	struct open_opts o = { 0 };
	int r;

	if (!strcmp(in, "-"))
		return err_set(e, EI_EUSAGE, "-: give IN as a file or directory name");
	if (oo) {
		if (oo->ova_disk || oo->size)
			return err_set(e, EI_EUSAGE,
				       "--files reads a filesystem: --ova-disk and a size do not apply");
		o.format = oo->format;
		o.allow_refs = oo->allow_refs;
		o.partition = oo->partition;
	}
	if (o.format && (r = api_format_check(o.format, 0, e)) < 0)
		return r;
	r = ft_open(in, &o, src, e);
	if (r < 0) {
		if (!strstr(e->msg, in))
			err_prefix(e, "%s", in);
		return r;
	}
	(*src)->warn = warn;
	(*src)->warn_arg = warn_arg;
	return 0;
}

/*
 * -o acls=warn|error: a POSIX ACL neither output holds is a warning, or an
 * error; @rest gets the other options, for the writer.
 */
static int files_acls(const char *options, int *error, char *rest, size_t len,
		      struct err *e)
{
	struct opts kv;
	size_t n = 0;
	int r = opts_parse(options, &kv, e);

	*error = 0;
	rest[0] = 0;
	for (unsigned i = 0; r >= 0 && i < kv.n; i++) {
		if (!strcmp(kv.kv[i].key, "acls")) {
			if (strcmp(kv.kv[i].val, "warn") && strcmp(kv.kv[i].val, "error"))
				return err_set(e, EI_EUSAGE, "acls=%s is not warn or error",
					       kv.kv[i].val);
			*error = !strcmp(kv.kv[i].val, "error");
			continue;
		}
		n += (size_t)snprintf(rest + n, len - n, "%s%s=%s", n ? "," : "",
				      kv.kv[i].key, kv.kv[i].val);
		if (n >= len)
			return err_set(e, EI_EUSAGE, "-o: too long");
	}
	return r;
}

int ei_convert_files(const char *in, const struct ei_open_opts *oo, const char *out,
		     const struct ei_convert_opts *o, struct ei_convert_result *res,
		     struct ei_err *pub)
{
	const char *const inputs[] = { in, o->reuse, NULL };
	struct block_reuse *reuse = NULL;
	struct write_opts wopts = { 0 };
	struct write_parsed parsed;
	struct ft_source *src = NULL;
	struct outfile of;
	struct err e = { 0 };
	struct stat st;
	char rest[OPTS_MAX * 260];
	int tar, r, acl_error = 0;

	memset(res, 0, sizeof(*res));
	if (!o->format)
		return api_err(pub, &e, err_set(&e, EI_EUSAGE,
						"name the output format (-O): squashfs or tar"));
	tar = !strcmp(o->format, "tar");
	if (!tar && strcmp(o->format, "squashfs"))
		return api_err(pub, &e, err_set(&e, EI_EUSAGE,
						"--files writes squashfs or tar, not %s", o->format));
	if (o->bmap)
		return api_err(pub, &e, err_set(&e, EI_EUSAGE,
						"a block map (--bmap) describes a disk, not a file tree"));
	if (tar && !IS_ENABLED(CONFIG_FILES_TAR))
		return api_err(pub, &e, err_set(&e, EI_EUNSUP,
						"tar output is not in this build (FILES_TAR)"));
	if (!tar && !IS_ENABLED(CONFIG_OUTPUT_SQUASHFS))
		return api_err(pub, &e, err_set(&e, EI_EUNSUP,
						"squashfs output is not in this build (OUTPUT_SQUASHFS)"));
	/* acls=warn|error is the tree's, the rest the writer's */
	r = files_acls(o->options, &acl_error, rest, sizeof(rest), &e);
	if (r < 0)
		return api_err(pub, &e, r);
	wopts.options = rest[0] ? rest : NULL;
	wopts.compress = o->compress;
	if (tar) {
		if (rest[0])
			return api_err(pub, &e, err_set(&e, EI_EUSAGE,
							"tar: takes no -o options but acls= (%s)", rest));
		if (o->compress)
			return api_err(pub, &e, err_set(&e, EI_EUSAGE,
							"tar: -c does not apply; compress the stream (zstd, xz)"));
		if (o->reuse)
			return api_err(pub, &e, err_set(&e, EI_EUSAGE,
							"--reuse: a tar output copies no blocks from another (squashfs does)"));
	} else {
		const struct img_format *f = format_find("squashfs");
		struct opts kv;

		/* the disk-backed image's file names: no meaning for a tree */
		r = opts_parse(wopts.options, &kv, &e);
		for (unsigned i = 0; r >= 0 && i < kv.n; i++)
			if (!strcmp(kv.kv[i].key, "name") || !strcmp(kv.kv[i].key, "partitions"))
				r = err_set(&e, EI_EUSAGE,
					    "squashfs: %s= names the files of a disk-backed image; a root filesystem (--files) has its own",
					    kv.kv[i].key);
		if (r < 0)
			return api_err(pub, &e, r);
		r = format_write_parse(f, &wopts, &parsed, &e);
		if (r < 0)
			return api_err(pub, &e, r);
		wopts.parsed = &parsed;
	}
	/* OLD's blocks are indexed before OUT exists: its errors leave none */
	if (o->reuse) {
		r = api_reuse_open(format_find("squashfs"), &parsed, 1, o->reuse, &reuse, &e);
		if (r < 0)
			return api_err(pub, &e, r);
	}
	r = files_open(in, oo, &src, o->warn, o->warn_arg, &e);
	if (r < 0) {
		api_reuse_done(reuse, res);
		return api_err(pub, &e, r);
	}
	src->warn_fatal = acl_error;
	r = outfile_open(&of, out, (o->force ? OUTFILE_FORCE : 0) | (tar ? OUTFILE_STREAM : 0),
			 inputs, &e);
	if (r < 0) {
		ft_close(src);
		api_reuse_done(reuse, res);
		return api_err(pub, &e, r);
	}
	wopts.threads = api_threads(o->threads);
	wopts.mem_cap = EI_MEM_CAP;
	wopts.progress = o->progress.fn;
	wopts.progress_arg = o->progress.arg;
	wopts.reuse = reuse;
#if IS_ENABLED(CONFIG_FILES_TAR)
	if (tar)
		r = ft_write_tar(src, of.io, &wopts, &e);
#endif
#if IS_ENABLED(CONFIG_OUTPUT_SQUASHFS)
	if (!tar)
		r = ft_write_squashfs(src, of.io, &wopts, &e);
#endif
	ft_close(src);
	api_reuse_done(reuse, res);
	if (r < 0) {
		outfile_abort(&of);
		return api_err(pub, &e, r);
	}
	res->out_size = of.io->end;
	res->out_kind = of.kind == OUT_FILE ? EI_OUT_FILE :
			of.kind == OUT_BLOCKDEV ? EI_OUT_BLOCKDEV : EI_OUT_STDOUT;
	if (!tar)
		res->writer_differs = parsed.writer_differs;
	r = outfile_commit(&of, &e);
	if (r < 0)
		return api_err(pub, &e, r);
	if (res->out_kind == EI_OUT_FILE && stat(out, &st) == 0) {
		res->out_size = (uint64_t)st.st_size;
		res->out_alloc = (uint64_t)st.st_blocks * 512;
	}
	return 0;
}

/* --- the listing ----------------------------------------------------------- */

struct files_hash {
	uint64_t ino;
	char hex[2 * SHA256_LEN + 1];
};

struct files_list {
	int (*line)(void *arg, const char *text, struct ei_err *e);
	void *arg;
	struct ei_err *pub;
	void *hashes;           /* tsearch() tree of struct files_hash */
	uint8_t *buf;
	char *text;             /* a line */
	size_t cap;
};

static int files_hash_cmp(const void *a, const void *b)
{
	const struct files_hash *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* @s escaped: bytes outside 0x21..0x7e and backslash as \ooo */
static size_t files_escape(char *out, const char *s)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x21 || *p > 0x7e || *p == '\\')
			n += (size_t)sprintf(out + n, "\\%03o", *p);
		else
			out[n++] = (char)*p;
	}
	out[n] = 0;
	return n;
}

static int files_emit(struct files_list *l, struct err *e)
{
	struct ei_err pe = { 0 };
	int r = l->line(l->arg, l->text, &pe);

	if (r < 0)
		return err_set(e, r, "%s", pe.msg[0] ? pe.msg : "listing stopped");
	return 0;
}

static int files_visit(void *arg, const struct ft_entry *ent, struct ft_file *f, struct err *e)
{
	static const char tc[] = "?fdlbcps";
	struct files_list *l = arg;
	char hex[2 * SHA256_LEN + 1] = "-", size[48];
	size_t n;
	int r;

	if (ent->type == FT_REG) {
		struct files_hash key = { .ino = ent->ino }, **found = NULL;

		if (ent->link_to && ent->ino)
			found = tfind(&key, &l->hashes, files_hash_cmp);
		if (found) {
			memcpy(hex, (*found)->hex, sizeof(hex));
		} else if (ent->link_to) {
			return err_set(e, EI_ECORRUPT, "%s: a hard link to %s, not seen before",
				       ent->path, ent->link_to);
		} else {
			struct sha256 c;
			uint8_t d[SHA256_LEN];
			uint64_t off = 0;

			sha256_init(&c);
			while (off < ent->size) {
				uint64_t hole = 0;
				size_t len = ent->size - off > 1 << 20 ? 1 << 20
								       : (size_t)(ent->size - off);

				if (f->hole && (r = f->hole(f, off, &hole, e)) < 0)
					return r;
				if (hole) {
					if (hole > ent->size - off)
						hole = ent->size - off;
					sha256_zeros(&c, hole);
					off += hole;
					continue;
				}
				r = f->read(f, off, l->buf, len, e);
				if (r < 0)
					return r;
				sha256_update(&c, l->buf, len);
				off += len;
			}
			sha256_final(&c, d);
			for (unsigned i = 0; i < SHA256_LEN; i++)
				sprintf(hex + 2 * i, "%02x", d[i]);
			if (ent->ino && ent->nlink != 1) {       /* 0: a tar's, unknown */
				struct files_hash *h = malloc(sizeof(*h));

				if (!h)
					return err_set(e, -ENOMEM, "out of memory");
				h->ino = ent->ino;
				memcpy(h->hex, hex, sizeof(hex));
				if (!tsearch(h, &l->hashes, files_hash_cmp)) {
					free(h);
					return err_set(e, -ENOMEM, "out of memory");
				}
			}
		}
	}
	if (ent->type == FT_BLK || ent->type == FT_CHR)
		snprintf(size, sizeof(size), "%u,%u", ent->rdev_major, ent->rdev_minor);
	else if (ent->type == FT_SYMLINK)
		snprintf(size, sizeof(size), "%zu", strlen(ent->target));
	else
		snprintf(size, sizeof(size), "%llu", (unsigned long long)ent->size);
	n = (size_t)sprintf(l->text, "%c %04o %u %u %lld %s %s /", tc[ent->type <= FT_SOCK ? ent->type : 0],
			    (unsigned)(ent->mode & 07777), ent->uid, ent->gid,
			    (long long)ent->mtime, size, hex);
	n += files_escape(l->text + n, ent->path);
	if (ent->type == FT_SYMLINK) {
		n += (size_t)sprintf(l->text + n, " -> ");
		n += files_escape(l->text + n, ent->target);
	}
	if (ent->link_to) {
		n += (size_t)sprintf(l->text + n, " => /");
		n += files_escape(l->text + n, ent->link_to);
	}
	r = files_emit(l, e);
	for (unsigned i = 0; r >= 0 && i < ent->n_xattrs; i++) {
		const struct ft_xattr *x = &ent->xattrs[i];

		n = (size_t)sprintf(l->text, "  xattr ");
		n += files_escape(l->text + n, x->name);
		l->text[n++] = '=';
		for (uint32_t k = 0; k < x->size; k++)
			n += (size_t)sprintf(l->text + n, "%02x", x->value[k]);
		l->text[n] = 0;
		r = files_emit(l, e);
	}
	return r;
}

int ei_files_list(const char *in, const struct ei_open_opts *oo,
		  int (*line)(void *arg, const char *text, struct ei_err *e), void *arg,
		  void (*warn)(void *arg, const char *msg), void *warn_arg,
		  struct ei_err *pub)
{
	struct files_list l = { .line = line, .arg = arg, .pub = pub };
	struct ft_source *src = NULL;
	struct err e = { 0 };
	int r;

	/* a path escaped 4x, two of them, numbers; an xattr value in hex */
	l.cap = 10 * (FT_PATH_MAX + 1) + 2 * FT_XATTR_MAX + 4096;
	l.buf = malloc(1 << 20);
	l.text = malloc(l.cap);
	if (!l.buf || !l.text) {
		r = err_set(&e, -ENOMEM, "out of memory");
		goto out;
	}
	r = files_open(in, oo, &src, warn, warn_arg, &e);
	if (r >= 0)
		r = ft_walk(src, files_visit, &l, &e);
	ft_close(src);
out:
	tdestroy(l.hashes, free);
	free(l.buf);
	free(l.text);
	return api_err(pub, &e, r);
}

#else

int ei_files_supported(struct ei_err *pub)
{
	struct err e = { 0 };

	return api_err(pub, &e, err_set(&e, EI_EUNSUP,
					"file trees (--files) are not in this build (FILES)"));
}

int ei_convert_files(const char *in, const struct ei_open_opts *oo, const char *out,
		     const struct ei_convert_opts *o, struct ei_convert_result *res,
		     struct ei_err *pub)
{
	return ei_files_supported(pub);
}

int ei_files_list(const char *in, const struct ei_open_opts *oo,
		  int (*line)(void *arg, const char *text, struct ei_err *e), void *arg,
		  void (*warn)(void *arg, const char *msg), void *warn_arg,
		  struct ei_err *pub)
{
	return ei_files_supported(pub);
}

#endif
