// SPDX-License-Identifier: MIT
/*
 * The public API of delta patches (src/edgeimg.h): making one, describing
 * one, signing keys, and the apply transaction of src/delta/delta-apply.c.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "core/format.h"
#include "core/info.h"
#include "core/kconfig.h"
#include "core/outfile.h"
#include "delta/delta.h"
#include "files/ftree.h"
#include "generated/features.h"


/*
 * An unnamed temporary file in the directory of @near ("-": $TMPDIR or
 * /tmp): nothing to clean up after a crash.
 */
static int api_tmpfile(const char *near, struct io **out, struct err *e)
{
	char dir[4096], tmp[4200];
	const char *slash = strrchr(near, '/'), *td = getenv("TMPDIR");
	int fd;

	if (!strcmp(near, "-"))
		snprintf(dir, sizeof(dir), "%s", td && td[0] ? td : "/tmp");
	else if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", slash == near ? 1 : (int)(slash - near), near);
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(tmp, sizeof(tmp), "%s/.edgeimg-tmp-XXXXXX", dir);
		fd = mkostemp(tmp, O_CLOEXEC);
		if (fd >= 0)
			unlink(tmp);
	}
	if (fd < 0)
		return err_errno(e, errno, "%s: cannot create a temporary file", dir);
	return io_open_fd(fd, "temporary file", IO_OPEN_RW, out, e);
}

/*
 * The container apply will build: re-encode NEW with @recipe (through the
 * canonical view apply uses) into a temporary, learn its size and content
 * hash, and the recipe the result carries.
 */
static int delta_target(struct vdisk *new, const struct img_format *fmt,
			const char *patch, unsigned threads, char *recipe,
			size_t rlen, uint8_t sha[CHASH_LEN], uint64_t *size,
			struct err *e)
{
	struct open_opts back_open = { .format = fmt->name };
	struct vdisk *back = NULL;
	struct io *io = NULL, *io2 = NULL;
	int r, fd2;

	r = api_tmpfile(patch, &io, e);
	if (r < 0)
		return r;
	r = delta_target_build(new, recipe, io, threads, NULL, NULL, NULL, size, sha, e);
	if (r < 0) {
		err_prefix(e, "re-encoding NEW as %s", fmt->name);
		goto out;
	}
	/* the recipe, as the format's reader sees it in the result (a root
	   filesystem's reader reads files, not recipes: the one given stays) */
	if (fmt->recipe && !strstr(recipe, ",files=on")) {
		fd2 = dup(io_fd(io));
		r = fd2 < 0 ? err_errno(e, errno, "dup") :
			      io_open_fd(fd2, "re-encoded NEW", 0, &io2, e);
		if (r >= 0)
			r = vdisk_open_io(io2, ".", &back_open, &back, e);
		if (r >= 0 && (r = fmt->recipe(back, recipe, rlen, e)) > 0)
			r = 0;
	}
out:
	vdisk_close(back);
	io_close(io);
	return r;
}

/* Copy all of @from (read from the start) to @to. */
static int io_copy(struct io *from, struct io *to, struct err *e)
{
	uint8_t *buf = malloc(1u << 20);
	int r = 0;

	if (!buf)
		return err_set(e, -ENOMEM, "out of memory");
	for (uint64_t off = 0; off < from->size && r >= 0;) {
		size_t n = (size_t)(from->size - off < (1u << 20) ? from->size - off : 1u << 20);

		r = io_read(from, buf, n, off, "patch", e);
		if (r >= 0)
			r = io_write(to, buf, n, off, e);
		off += n;
	}
	free(buf);
	return r;
}

/*
 * NEW's recipe, when an edgeimg writer made it, into @target; its format
 * (*@ofmt, one this build writes) and options split out.  Returns 1, 0
 * when NEW carries none, or a negative error.
 */
static int delta_new_recipe(const struct ei_image *new, char *target, size_t tlen,
			    char *rfmt, size_t flen, char *ropts, size_t olen,
			    const struct img_format **ofmt, struct err *e)
{
	char rver[64];
	int r;

	*ofmt = NULL;
	if (!new->vd->fmt->recipe)
		return 0;
	r = new->vd->fmt->recipe(new->vd, target, tlen, e);
	if (r <= 0)
		return r;
	r = delta_recipe_split(target, rfmt, flen, rver, sizeof(rver), ropts, olen, e);
	if (r < 0)
		return r;
	*ofmt = format_find(rfmt);
	if (!*ofmt || !(*ofmt)->write) {
		*ofmt = NULL;
		return err_set(e, EI_EUNSUP,
			       "NEW was written as '%s', which this edgeimg cannot write; name a target with -O",
			       rfmt);
	}
	return 1;
}

/* delta --exact: what it refuses, before PATCH exists. */
static int delta_exact_check(const struct ei_image *old, const struct ei_image *new,
			     const struct ei_delta_opts *o, struct err *e)
{
	if (o->target_format || o->target_options)
		return err_set(e, EI_EUSAGE,
			       "--exact: the target is NEW's own file; -O and -o name another");
	if (new->opts.partition || old->opts.partition || new->opts.size || old->opts.size)
		return err_set(e, EI_EUSAGE,
			       "--exact: the target is NEW's whole file; --partition and --old-size/--new-size cut a disk out of it");
	return 0;
}

/* delta --exact: OLD's and NEW's packed views (their files, whole). */
static int delta_exact_views(const struct ei_image *old, const struct ei_image *new,
			     unsigned threads, struct vdisk **oldv, struct vdisk **newv,
			     struct pack_stats *st, struct err *e)
{
	struct open_opts oo = { .format = old->opts.format, .allow_refs = old->opts.allow_refs };
	struct open_opts no = { .format = new->opts.format, .allow_refs = new->opts.allow_refs };
	int r = pack_open(old->path, &oo, 0, 1, oldv, NULL, e);

	if (r < 0) {
		err_prefix(e, "OLD %s", old->path);
		return r;
	}
	r = pack_open(new->path, &no, 1, threads, newv, st, e);
	if (r < 0)
		err_prefix(e, "NEW %s", new->path);
	return r;
}

int ei_delta(struct ei_image *old, struct ei_image *new, const char *patch,
	     const struct ei_delta_opts *o, struct ei_delta_result *res,
	     struct ei_err *pub)
{
	const char *const inputs[] = { old->path, new->path, NULL };
	struct delta_enc_opts enc_opts = { 0 };
	struct delta_enc_stats st = { 0 };
	struct delta_key key;
	const struct img_format *ofmt = NULL;
	struct vdisk *old2 = NULL, *new2 = NULL, *oldv = NULL, *newv = NULL;
	struct vdisk *enc_old = old->vd, *enc_new = new->vd;
	struct pack_stats pst = { 0 };
	struct io *tmp = NULL, *enc_out;
	struct outfile of = { 0 };
	struct err e = { 0 };
	char rfmt[64], ropts[DELTA_RECIPE_MAX + 1];
	const char *ostr = o->target_options;
	char tree_opts[DELTA_RECIPE_MAX + 1];
	struct write_opts two = { 0 };  /* -o of the target, parsed once */
	struct write_parsed tparsed;
	int new_tree = !strcmp(new->vd->fmt->name, "file-tree");
	int views = 0;          /* exact: OLD and NEW as their packed views */
	int old_tree = !strcmp(old->vd->fmt->name, "file-tree");
	uint8_t tsha[CHASH_LEN];
	uint64_t tsize = 0;
	unsigned threads = api_threads(o->threads);
	int r;

	memset(res, 0, sizeof(*res));
	memset(&key, 0, sizeof(key));
	of.dirfd = -1;
	if (o->exact) {
		struct err ignored = { 0 };

		r = delta_exact_check(old, new, o, &e);
		if (r < 0)
			goto fail;
		/*
		 * NEW that an edgeimg wrote, with a recipe this build writes:
		 * the recipe is the fast path (the container rebuilt from
		 * NEW's content), kept below only if it gives NEW's file.
		 */
		if (new_tree == old_tree &&
		    delta_new_recipe(new, res->target, sizeof(res->target), rfmt, sizeof(rfmt),
				     ropts, sizeof(ropts), &ofmt, &ignored) > 0 &&
		    format_write_check(ofmt->name, ropts, 0, &ignored) >= 0) {
			ostr = ropts;
			res->exact_recipe = 1;
		} else {
			ofmt = NULL;
			res->target[0] = 0;
			views = 1;
			new_tree = old_tree = 0;        /* their files are not the point */
		}
	} else if (o->target_format) {
		r = api_format_check(o->target_format, 1, &e);
		if (r < 0)
			goto fail;
		ofmt = format_find(o->target_format);
	} else if (ostr) {
		r = err_set(&e, EI_EUSAGE, "target options need a target format (-O)");
		goto fail;
	} else {
		/* the target: NEW's own container when an edgeimg writer made it */
		r = delta_new_recipe(new, res->target, sizeof(res->target), rfmt, sizeof(rfmt),
				     ropts, sizeof(ropts), &ofmt, &e);
		if (r < 0)
			goto fail;
		if (r > 0)
			ostr = ropts;
	}
	/*
	 * NEW a compressed container that no edgeimg wrote (qemu-img -c,
	 * mksquashfs), no target named, no disk cut out of it: the target
	 * is its file, as --exact makes it (-O raw: its disk).
	 */
	if (!o->exact && !ofmt && !o->target_format && !ostr && !new->opts.partition &&
	    !old->opts.partition && !new->opts.size && !old->opts.size) {
		struct open_opts no = { .format = new->opts.format,
					.allow_refs = new->opts.allow_refs };
		struct err ignored = { 0 };

		if (pack_has_blocks(new->path, &no, &ignored) > 0) {
			views = 1;
			new_tree = old_tree = 0;
		}
	}
	if (new_tree != old_tree) {
		r = err_set(&e, EI_EUSAGE,
			    "%s is a squashfs root filesystem and %s is not: a root filesystem's patch is made from another root filesystem (its files), a disk's from another disk",
			    new_tree ? "NEW" : "OLD", new_tree ? "OLD" : "NEW");
		goto fail;
	}
	if (new_tree) {
		/* its files are the content; the target is a root filesystem */
		if (o->target_format && strcmp(o->target_format, "squashfs")) {
			r = err_set(&e, EI_EUSAGE,
				    "NEW is a squashfs root filesystem: its target is -O squashfs, not %s",
				    o->target_format);
			goto fail;
		}
		if (!ofmt) {
			r = err_set(&e, EI_EUNSUP,
				    "NEW %s is a squashfs root filesystem that no edgeimg wrote (no recipe): its bytes cannot be rebuilt on the device; name the target with -O squashfs (apply then writes edgeimg's root filesystem of the same files)",
				    new->path);
			goto fail;
		}
		if (o->target_format) {
			size_t n = ostr ? strlen(ostr) : 0;

			if (n + 10 > sizeof(tree_opts)) {
				r = err_set(&e, EI_EUSAGE, "-o: options too long");
				goto fail;
			}
			memcpy(tree_opts, ostr ? ostr : "", n);
			memcpy(tree_opts + n, n ? ",files=on" : "files=on", n ? 10 : 9);
			ostr = tree_opts;
		}
	}
	if (ofmt && !strcmp(ofmt->name, "raw")) {
		if (ostr && ostr[0]) {
			r = err_set(&e, EI_EUSAGE, "raw takes no -o options");
			goto fail;
		}
		ofmt = NULL;
	}
	/* the writer's options, checked before PATCH exists or any work */
	two.options = ostr;
	if (ofmt && (r = format_write_parse(ofmt, &two, &tparsed, &e)) < 0)
		goto fail;
	if (o->sign_key) {      /* a bad key fails before any work */
		r = delta_key_load(o->sign_key, 1, &key, &e);
		if (r < 0)
			goto fail;
		enc_opts.sign = delta_sign_header;
		enc_opts.sign_arg = &key;
	}
	r = outfile_open(&of, patch, OUTFILE_PATCH | OUTFILE_STREAM |
			 (o->force ? OUTFILE_FORCE : 0), inputs, &e);
	if (r < 0)
		goto fail;
	enc_out = of.io;
	if (of.kind == OUT_STDOUT) {    /* the header is written last: seek */
		r = api_tmpfile("-", &tmp, &e);
		if (r < 0)
			goto fail_out;
		enc_out = tmp;
	}
	if (ofmt) {
		if (ofmt->write_recipe) {
			/* the writer's own recipe of -o, defaults named, as convert's */
			ofmt->write_recipe(&tparsed, 0, res->target, sizeof(res->target));
		} else {
			snprintf(res->target, sizeof(res->target), "format=%s,writer=%s%s%s",
				 ofmt->name, EDGEIMG_VERSION, ostr && ostr[0] ? "," : "",
				 ostr ? ostr : "");
		}
		r = delta_target(new->vd, ofmt, patch, threads, res->target,
				 sizeof(res->target), tsha, &tsize, &e);
		if (r < 0)
			goto fail_out;
		if (new->vd->fmt == ofmt || new_tree) {
			struct io *box = new->vd->io;
			uint8_t nsha[CHASH_LEN];

#if IS_ENABLED(CONFIG_FILES)
			if (new_tree)
				box = ftv_container(new->vd);
#endif
			r = chash_io(box, box->size, 0, nsha, &e);
			if (r < 0)
				goto fail_out;
			res->target_differs = box->size != tsize ||
					      memcmp(nsha, tsha, CHASH_LEN);
		}
		enc_opts.recipe = res->target;
		enc_opts.target_sha = tsha;
		enc_opts.target_size = tsize;
		if (res->exact_recipe && res->target_differs) {
			/* the recipe does not give NEW's file: the views do */
			res->exact_recipe = res->target_differs = 0;
			views = 1;
		}
	}
	if (views) {
		r = delta_exact_views(old, new, threads, &oldv, &newv, &pst, &e);
		if (r < 0)
			goto fail_out;
		enc_old = oldv;
		enc_new = newv;
		pack_recipe(&pst, res->target, sizeof(res->target));
		tsize = pst.container_size;
		r = chash_io(pack_container(newv), tsize, 0, tsha, &e);
		if (r < 0)
			goto fail_out;
		enc_opts.recipe = res->target;
		enc_opts.target_sha = tsha;
		enc_opts.target_size = tsize;
		res->exact_blocks = pst.blocks;
		res->exact_rebuilt = pst.rebuilt;
		res->exact_stored = pst.stored;
		res->exact_views = 1;
	}
	enc_opts.level = o->level;
	enc_opts.threads = threads;
	enc_opts.chunk_new = o->chunk;
	enc_opts.patch_version = o->patch_version;
	enc_opts.lzma = IS_ENABLED(CONFIG_CODEC_XZ) && !o->no_lzma;
	enc_opts.progress = o->progress.fn;
	enc_opts.progress_arg = o->progress.arg;
	/* second handles: OLD's and NEW's hashes are computed in threads */
	if (threads > 1 && !views && api_open(old->path, &old->opts, &old2, &e) == 0 &&
	    api_open(new->path, &new->opts, &new2, &e) == 0) {
		enc_opts.hash_old = old2;
		enc_opts.hash_new = new2;
	}
	r = delta_encode(enc_old, enc_new, enc_out, &enc_opts, &st, &e);
	if (r < 0)
		goto fail_out;
	if (tmp && (r = io_copy(tmp, of.io, &e)) < 0)
		goto fail_out;
	r = outfile_commit(&of, &e);
	if (r < 0)
		goto fail;
	res->patch_size = st.patch_size;
	res->chunks = st.chunks;
	res->zero = st.zero;
	res->copy = st.copy;
	res->data = st.data;
	res->ref = st.ref;
	res->threads = st.threads;
	res->lzma_chunks = st.lzma_chunks;
	res->lzma_saved = st.lzma_saved;
	res->lzma_tried = enc_opts.lzma;
	memcpy(res->old_hash, st.old_sha, CHASH_LEN);
	memcpy(res->new_hash, st.new_sha, CHASH_LEN);
	if (!ofmt && !views)
		res->target[0] = 0;
	goto out;
fail_out:
	outfile_abort(&of);
fail:
	if (!strstr(e.msg, patch) && strcmp(patch, "-"))
		err_prefix(&e, "%s", patch);
out:
	explicit_bzero(&key, sizeof(key));
	io_close(tmp);
	vdisk_close(old2);
	vdisk_close(new2);
	vdisk_close(oldv);
	vdisk_close(newv);
	return api_err(pub, &e, r);
}

/* --- describing patches and keys ----------------------------------------- */

static const char *const patch_features[] = { "ref", "recipe", "signed", "lzma" };

static void patch_print(FILE *f, const char *path, const struct delta_header *h,
			const char *key_id, int json)
{
	char s1[32], x1[2 * SHA256_LEN + 1], x2[2 * SHA256_LEN + 1],
	     x3[2 * SHA256_LEN + 1], x4[2 * SHA256_LEN + 1];

	sha_hex(h->old_sha, SHA256_LEN, x1);
	sha_hex(h->new_sha, SHA256_LEN, x2);
	sha_hex(h->target_sha, SHA256_LEN, x3);
	sha_hex(h->id, SHA256_LEN, x4);
	if (json) {
		fprintf(f, "{\n    \"filename\": ");
		json_string(f, path);
		fprintf(f, ",\n    \"format\": \"edgeimg-patch\",\n    \"version\": %u,\n", h->version);
		fprintf(f, "    \"incompatible-features\": [");
		for (unsigned i = 0, n = 0; i < sizeof(patch_features) / sizeof(*patch_features); i++)
			if (h->incompat & (1ULL << i))
				fprintf(f, "%s\"%s\"", n++ ? ", " : "", patch_features[i]);
		fprintf(f, "],\n    \"compatible-features\": %llu,\n",
			(unsigned long long)h->compat);
		fprintf(f, "    \"old-size\": %llu,\n    \"old-hash\": \"%s\",\n",
			(unsigned long long)h->old_size, x1);
		fprintf(f, "    \"new-size\": %llu,\n    \"new-hash\": \"%s\",\n",
			(unsigned long long)h->new_size, x2);
		fprintf(f, "    \"target\": ");
		json_string(f, h->recipe[0] ? h->recipe : "raw");
		fprintf(f, ",\n    \"target-size\": %llu,\n    \"target-hash\": \"%s\",\n",
			(unsigned long long)h->target_size, x3);
		fprintf(f, "    \"chunks\": %u,\n    \"patch-size\": %llu,\n", h->chunk_count,
			(unsigned long long)h->patch_size);
		fprintf(f, "    \"max-data\": %u,\n    \"max-ref\": %u,\n    \"id\": \"%s\",\n",
			h->max_data, h->max_ref, x4);
		fprintf(f, "    \"patch-version\": %llu,\n    \"signed\": %s",
			(unsigned long long)h->patch_version, key_id[0] ? "true" : "false");
		if (key_id[0])
			fprintf(f, ",\n    \"key-id\": \"%s\"", key_id);
		fprintf(f, "\n}\n");
		return;
	}
	fputs("patch: ", f);
	text_string(f, path);
	fprintf(f, "\nfile format: edgeimg delta patch, version %u\n", h->version);
	fprintf(f, "features:");
	for (unsigned i = 0; i < sizeof(patch_features) / sizeof(*patch_features); i++)
		if (h->incompat & (1ULL << i))
			fprintf(f, " %s", patch_features[i]);
	fprintf(f, "%s\n", h->incompat ? "" : " none");
	fprintf(f, "old size: %s (%llu bytes)\nold content hash: %s\n",
		size_human(h->old_size, s1, sizeof(s1)), (unsigned long long)h->old_size, x1);
	fprintf(f, "new size: %s (%llu bytes)\nnew content hash: %s\n",
		size_human(h->new_size, s1, sizeof(s1)), (unsigned long long)h->new_size, x2);
	fprintf(f, "target: %s\ntarget size: %llu bytes\ntarget content hash: %s\n",
		h->recipe[0] ? h->recipe : "raw", (unsigned long long)h->target_size, x3);
	fprintf(f, "chunks: %u\npatch size: %s (%llu bytes)\n", h->chunk_count,
		size_human(h->patch_size, s1, sizeof(s1)), (unsigned long long)h->patch_size);
	fprintf(f, "largest chunk data: %u bytes, reference: %u bytes\npatch id: %s\n",
		h->max_data, h->max_ref, x4);
	fprintf(f, "patch version: %llu\nsigned: %s%s\n", (unsigned long long)h->patch_version,
		key_id[0] ? "yes, Ed25519, key id " : "no", key_id);
}

int ei_patch_describe(const char *path, int json, char **text, struct ei_err *pub)
{
	struct delta_header h;
	struct delta_sig sg;
	uint8_t raw[DELTA_HDR_SIG_MAX], head[DELTA_MAGIC_LEN];
	char key_id[2 * SHA256_LEN + 1] = "", *buf = NULL;
	struct err e = { 0 };
	struct io *io = NULL;
	size_t len = 0;
	FILE *f;
	int r;

	r = io_open_file(path, 0, &io, &e);
	if (r < 0)
		return api_err(pub, &e, r);
	if ((io->flags & IO_STREAM) || io->size < DELTA_MAGIC_LEN ||
	    io_read(io, head, sizeof(head), 0, "patch", &e) < 0 ||
	    !delta_is_patch(head, sizeof(head))) {
		io_close(io);
		return api_err(pub, &e, err_set(&e, EI_EFORMAT, "%s: not a delta patch", path));
	}
	r = delta_header_read(io, &h, raw, &e);
	io_close(io);
	if (r < 0) {
		err_prefix(&e, "%s", path);
		return api_err(pub, &e, r);
	}
	if ((h.incompat & DELTA_INCOMPAT_SIGNED) &&
	    delta_sig_parse(raw + h.header_size, &sg, &e) == 0)
		sha_hex(sg.key_id, SHA256_LEN, key_id);
	f = open_memstream(&buf, &len);
	if (f)
		patch_print(f, path, &h, key_id, json);
	return api_err(pub, &e, api_text(f, &buf, text, &e));
}

int ei_key_describe(const char *path, int json, char **text, struct ei_err *pub)
{
	struct delta_key k;
	struct err e = { 0 };
	char id[2 * SHA256_LEN + 1], *buf = NULL;
	size_t len = 0;
	int priv = 1, r;
	FILE *f;

	r = delta_key_load(path, 1, &k, &e);
	if (r < 0) {
		priv = 0;
		r = delta_key_load(path, 0, &k, &e);
	}
	if (r < 0)
		return api_err(pub, &e, err_set(&e, EI_EFORMAT,
						"%s: not an Ed25519 key in PEM", path));
	sha_hex(k.id, SHA256_LEN, id);
	explicit_bzero(&k, sizeof(k));
	f = open_memstream(&buf, &len);
	if (f && json) {
		fprintf(f, "{\n    \"filename\": ");
		json_string(f, path);
		fprintf(f, ",\n    \"format\": \"ed25519-%s-key\",\n    \"key-id\": \"%s\"\n}\n",
			priv ? "private" : "public", id);
	} else if (f) {
		fputs("key: ", f);
		text_string(f, path);
		fprintf(f, "\nfile format: Ed25519 %s key (PEM)\nkey id: %s\n",
			priv ? "private" : "public", id);
	}
	return api_err(pub, &e, api_text(f, &buf, text, &e));
}

/* --- the apply transaction ------------------------------------------------ */

struct ei_apply {
	struct delta_apply *a;
	struct delta_key key;
};

static void apply_opts(const struct ei_apply_opts *o, const struct delta_key *key,
		       const char *patch_path, struct delta_apply_opts *d)
{
	struct stat st;

	memset(d, 0, sizeof(*d));
	d->old_path = o->old;
	d->old_open.format = o->old_open.format;
	/* a device's first bytes say nothing of what it is: raw unless -f */
	if (!d->old_open.format && stat(o->old, &st) == 0 && S_ISBLK(st.st_mode))
		d->old_open.format = "raw";
	d->old_open.allow_refs = o->old_open.allow_refs;
	d->old_open.ova_disk = o->old_open.ova_disk;
	d->old_open.partition = o->old_open.partition;
	d->patch_name = o->patch_name ? o->patch_name : "the patch";
	d->patch_path = patch_path;
	d->out_path = o->out;
	d->state = o->state;
	d->resume = o->resume;
	d->force = o->force;
	d->verify = key;
	d->min_version = o->min_version;
	d->threads = api_threads(o->threads);
	d->progress = o->progress.fn;
	d->progress_arg = o->progress.arg;
	d->note = o->note;
	d->note_arg = o->note_arg;
}

/* The verify key, then the transaction: a bad key fails before anything. */
static int apply_begin(const struct ei_apply_opts *o, const char *patch_path,
		       struct ei_apply **out, struct err *e)
{
	struct ei_apply *x = calloc(1, sizeof(*x));
	struct delta_apply_opts d;
	int r = 0;

	*out = x;
	if (!x)
		return err_set(e, -ENOMEM, "out of memory");
	if (o->verify_key && (r = delta_key_load(o->verify_key, 0, &x->key, e)) < 0)
		return r;
	if (o->old_open.format && (r = api_format_check(o->old_open.format, 0, e)) < 0)
		return r;
	apply_opts(o, o->verify_key ? &x->key : NULL, patch_path, &d);
	return delta_apply_begin(&d, &x->a, e);
}

static int apply_end(struct ei_apply *x)
{
	int kept = 0;

	if (x) {
		delta_apply_free(x->a, &kept);
		explicit_bzero(&x->key, sizeof(x->key));
		free(x);
	}
	return kept;
}

int ei_apply_begin(const struct ei_apply_opts *o, struct ei_apply **out,
		   struct ei_err *pub)
{
	struct err e = { 0 };
	int r = apply_begin(o, NULL, out, &e);

	if (r < 0) {
		apply_end(*out);
		*out = NULL;
	}
	return api_err(pub, &e, r);
}

int ei_apply_feed(struct ei_apply *x, const void *buf, size_t len,
		  struct ei_err *pub)
{
	struct err e = { 0 };

	return api_err(pub, &e, delta_apply_feed(x->a, buf, len, &e));
}

static void apply_result(const struct delta_apply_result *d, struct ei_apply_result *res)
{
	memset(res, 0, sizeof(*res));
	res->new_size = d->new_size;
	res->target_size = d->target_size;
	res->written = d->written;
	res->old_used = d->old_used;
	res->from_chunk = d->from_chunk;
	res->chunks = d->chunks;
	memcpy(res->new_hash, d->new_sha, CHASH_LEN);
	memcpy(res->target_hash, d->target_sha, CHASH_LEN);
	snprintf(res->target, sizeof(res->target), "%s", d->target);
	res->old_is_new = d->old_is_new;
	res->out_is_device = d->out_is_device;
	res->blocks_copied = d->blocks_copied;
	res->blocks = d->blocks;
}

int ei_apply_finish(struct ei_apply *x, struct ei_apply_result *res,
		    struct ei_err *pub)
{
	struct delta_apply_result d;
	struct err e = { 0 };
	int r = delta_apply_finish(x->a, &d, &e);

	if (r == 0)
		apply_result(&d, res);
	return api_err(pub, &e, r);
}

int ei_apply_free(struct ei_apply *x)
{
	return apply_end(x);
}

struct fd_reader {
	int fd;
	const char *name;
};

static int fd_read(void *arg, void *buf, size_t len, size_t *got, struct err *e)
{
	struct fd_reader *fr = arg;

	/* what a pipe has now: a stream is applied as it comes */
	for (;;) {
		ssize_t k = read(fr->fd, buf, len);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return err_errno(e, errno, "%s: read", fr->name);
		*got = (size_t)k;
		return 0;
	}
}

struct cb_reader {
	int (*read)(void *arg, void *buf, size_t len, size_t *got, struct ei_err *e);
	void *arg;
};

static int cb_read(void *arg, void *buf, size_t len, size_t *got, struct err *e)
{
	struct cb_reader *cr = arg;
	struct ei_err pe = { 0 };
	int r = cr->read(cr->arg, buf, len, got, &pe);

	if (r < 0)
		return err_set(e, pe.code ? pe.code : r, "%s", pe.msg);
	return 0;
}

int ei_apply(const struct ei_apply_opts *o, const char *patch,
	     int (*read)(void *arg, void *buf, size_t len, size_t *got,
			 struct ei_err *e),
	     void *read_arg, struct ei_apply_result *res, struct ei_err *pub)
{
	struct ei_apply_opts po = *o;
	struct fd_reader fr = { -1, patch };
	struct cb_reader cr = { read, read_arg };
	struct ei_apply *x = NULL;
	struct delta_apply_result d;
	struct err e = { 0 };
	struct stat st;
	int r;

	memset(res, 0, sizeof(*res));
	if (patch && !strcmp(patch, "-"))
		fr.name = "<stdin>";
	if (!po.patch_name)
		po.patch_name = fr.name ? fr.name : "the patch";
	/* the command line's mistakes first (a patch named as OUT, say) */
	r = apply_begin(&po, patch && strcmp(patch, "-") ? patch : NULL, &x, &e);
	if (r >= 0 && patch) {
		fr.fd = strcmp(patch, "-") ? open(patch, O_RDONLY | O_CLOEXEC) :
					     dup(STDIN_FILENO);
		if (fr.fd < 0)
			r = err_errno(&e, errno, "%s", patch);
		else if (fstat(fr.fd, &st) == 0 && S_ISREG(st.st_mode))
			delta_apply_patch_size(x->a, (uint64_t)st.st_size);
	}
	if (r >= 0) {
		r = delta_apply_pull(x->a, patch ? fd_read : cb_read,
					  patch ? (void *)&fr : (void *)&cr, &d, &e);
		if (r == 0)
			apply_result(&d, res);
	}
	res->state_kept = apply_end(x);
	if (fr.fd >= 0)
		close(fr.fd);
	return api_err(pub, &e, r);
}

int ei_apply_resume_offset(const char *out, const char *state, uint64_t *off,
			   struct ei_err *pub)
{
	struct err e = { 0 };

	return api_err(pub, &e, delta_apply_resume_offset(out, state, off, &e));
}

void ei_apply_state_paths(const char *out, const char *state, char *ckpt,
			  size_t ckpt_len, char *part, size_t part_len)
{
	delta_apply_state_paths(out, state, ckpt, ckpt_len, part, part_len);
}
