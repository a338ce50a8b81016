// SPDX-License-Identifier: MIT
/* edgeimg delta: the patch that turns OLD's disk into NEW's (src/delta-format.md). */
#include <fcntl.h>
#include <getopt.h>
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
#include "core/limits.h"

static double delta_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* SHA-256 and size of the whole of @io, read from the start. */
static int hash_io(struct io *io, uint8_t out[SHA256_LEN], uint64_t *size,
		   struct err *e)
{
	struct sha256 c;
	uint8_t *buf = malloc(1u << 20);
	uint64_t off = 0;
	int r = 0;

	if (!buf)
		return err_set(e, -ENOMEM, "out of memory");
	sha256_init(&c);
	while (off < io->size) {
		size_t n = (size_t)min_u64(1u << 20, io->size - off);

		r = io_read(io, buf, n, off, "container", e);
		if (r < 0)
			break;
		sha256_update(&c, buf, n);
		off += n;
	}
	free(buf);
	if (r < 0)
		return r;
	sha256_final(&c, out);
	*size = off;
	return 0;
}

/*
 * Re-encode @new (through the canonical view apply uses) with @fmt and
 * @opts into an unlinked temporary beside @patch; return its SHA-256 and
 * size, and the recipe the result carries in @recipe.
 */
static int delta_target(struct vdisk *new, const struct img_format *fmt,
			const char *opts, const char *patch, unsigned threads,
			struct progress *pg, char *recipe, size_t rlen,
			uint8_t sha[SHA256_LEN], uint64_t *size, struct err *e)
{
	const char *slash = strrchr(patch, '/');
	char tmp[4096];
	struct write_opts wo = { 0 };
	struct vdisk *canon = NULL, *back = NULL;
	struct open_opts oo = { .format = fmt->name };
	struct io *io = NULL, *io2 = NULL;
	int fd, fd2, r;

	snprintf(tmp, sizeof(tmp), "%.*s.edgeimg-target-XXXXXX",
		 slash ? (int)(slash - patch + 1) : 0, patch);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return err_errno(e, errno, "%s: cannot create a temporary", tmp);
	unlink(tmp);            /* anonymous: nothing to clean up on a crash */
	fd2 = dup(fd);
	r = io_open_fd(fd, "re-encoded NEW", 1, &io, e);
	if (r < 0) {
		if (fd2 >= 0)
			close(fd2);
		return r;
	}
	r = delta_canon_open(new, &canon, e);
	if (r < 0)
		goto out;
	wo.options = opts && opts[0] ? opts : NULL;
	wo.threads = threads;
	wo.mem_cap = EI_MEM_CAP;
	wo.progress = progress_cb;
	wo.progress_arg = pg;
	r = fmt->write(canon, io, &wo, e);
	if (r < 0) {
		err_prefix(e, "re-encoding NEW as %s", fmt->name);
		goto out;
	}
	r = io_sync(io, e);
	if (r < 0 || (r = hash_io(io, sha, size, e)) < 0)
		goto out;
	/* the recipe, as the format's reader sees it in the result */
	recipe[0] = 0;
	if (fd2 >= 0 && fmt->recipe && io_open_fd(fd2, "re-encoded NEW", 0, &io2, e) == 0) {
		fd2 = -1;
		r = vdisk_open_io(io2, ".", &oo, &back, e);
		io2 = NULL;
		if (r < 0)
			goto out;
		r = fmt->recipe(back, recipe, rlen, e);
		if (r < 0)
			goto out;
	}
	if (!recipe[0])
		snprintf(recipe, rlen, "format=%s,writer=%s%s%s", fmt->name,
			 EDGEIMG_VERSION, wo.options ? "," : "",
			 wo.options ? wo.options : "");
	r = 0;
out:
	if (fd2 >= 0)
		close(fd2);
	vdisk_close(back);
	vdisk_close(canon);
	io_close(io);
	return r;
}

static int delta_run(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "force", no_argument, NULL, 'F' },
		CLI_IMAGE_OPTIONS,
		{ "level", required_argument, NULL, 'L' },
		{ "chunk", required_argument, NULL, 'C' },
		{ "sign", required_argument, NULL, 'S' },
		{ "patch-version", required_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct delta_key key;
	const char *key_path = NULL;
	struct open_opts oo = { 0 };
	struct delta_enc_opts eo = { 0 };
	struct delta_enc_stats st = { 0 };
	const struct img_format *ofmt = NULL;
	struct vdisk *old = NULL, *new = NULL, *old2 = NULL, *new2 = NULL;
	struct outfile of = { 0 };
	struct progress pg;
	struct err e = { 0 };
	const char *ostr = NULL;
	char recipe[DELTA_RECIPE_MAX + 1] = "", rfmt[64], rver[64], ropts[DELTA_RECIPE_MAX + 1];
	uint8_t tsha[SHA256_LEN];
	uint64_t tsize = 0;
	unsigned threads = threads_resolve(EI_DEFAULT_THREADS);
	int force = 0, progress = 0, verbose = 0, c, r;
	double t0 = delta_now();
	char *end;

	while ((c = getopt_long(argc, argv, "O:o:j:pv", lo, NULL)) != -1) {
		switch (c) {
		case 'O':
			ofmt = format_find(optarg);
			if (!ofmt || !ofmt->write) {
				err_set(&e, EI_EUSAGE, "cannot write format '%s'", optarg);
				cli_error("delta", &e);
				return EXIT_USAGE;
			}
			break;
		case 'o':
			ostr = optarg;
			break;
		case 'j':
			if (parse_threads(optarg, &threads) < 0)
				return cli_usage(&cmd_delta, "-j takes 0..256");
			break;
		case 'p':
			progress = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'F':
			force = 1;
			break;
		case 'L':
			eo.level = (int)strtol(optarg, &end, 10);
			if (*end || eo.level < 1 || eo.level > 22)
				return cli_usage(&cmd_delta, "--level takes 1..22");
			break;
		case 'C':
			if (parse_size(optarg, &eo.chunk_new) < 0 || !eo.chunk_new)
				return cli_usage(&cmd_delta, "--chunk takes a size (4k..256M)");
			break;
		case 'S':
			key_path = optarg;
			break;
		case 'V':
			errno = 0;
			eo.patch_version = strtoull(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-')
				return cli_usage(&cmd_delta, "--patch-version takes 0..2^64-1");
			break;
		default:
			if (!cli_image_opt(c, optarg, &oo))
				return cli_usage(&cmd_delta, NULL);
		}
	}
	if (optind != argc - 3)
		return cli_usage(&cmd_delta, "expected OLD, NEW and PATCH");
	if (ostr && !ofmt)
		return cli_usage(&cmd_delta, "-o needs -O (the target container)");
	if (key_path) {         /* a bad key fails before any work */
		r = delta_key_load(key_path, 1, &key, &e);
		if (r < 0)
			goto fail;
		eo.sign = delta_sign_header;
		eo.sign_arg = &key;
	}
	r = vdisk_open(argv[optind], &oo, &old, &e);
	if (r < 0) {
		err_prefix(&e, "OLD");
		goto fail;
	}
	r = vdisk_open(argv[optind + 1], &oo, &new, &e);
	if (r < 0) {
		err_prefix(&e, "NEW");
		goto fail;
	}
	/* the target container: -O, else NEW's own recipe, else raw */
	if (!ofmt && new->fmt->recipe) {
		r = new->fmt->recipe(new, recipe, sizeof(recipe), &e);
		if (r < 0)
			goto fail;
		if (r > 0) {
			r = delta_recipe_split(recipe, rfmt, sizeof(rfmt), rver,
					       sizeof(rver), ropts, sizeof(ropts), &e);
			if (r < 0)
				goto fail;
			ofmt = format_find(rfmt);
			if (!ofmt || !ofmt->write) {
				r = err_set(&e, EI_EUNSUP,
					    "NEW was written as '%s', which this edgeimg cannot write; use -O",
					    rfmt);
				goto fail;
			}
			ostr = ropts;
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
	if (ofmt && (r = format_write_check(ofmt->name, ostr, 0, &e)) < 0)
		goto fail;
	r = outfile_create(&of, argv[optind + 2], force, &e);
	if (r < 0)
		goto fail;
	progress_init(&pg, progress);
	if (ofmt) {
		r = delta_target(new, ofmt, ostr, argv[optind + 2], threads, &pg,
				 recipe, sizeof(recipe), tsha, &tsize, &e);
		if (r < 0) {
			outfile_abort(&of);
			goto fail;
		}
		if (new->fmt == ofmt) {
			uint8_t nsha[SHA256_LEN];
			uint64_t nsize;

			r = hash_io(new->io, nsha, &nsize, &e);
			if (r < 0) {
				outfile_abort(&of);
				goto fail;
			}
			if (nsize != tsize || memcmp(nsha, tsha, SHA256_LEN)) {
				char h[2 * SHA256_LEN + 1];

				progress_done(&pg);
				fprintf(stderr,
					"edgeimg delta: note: %s is not what this edgeimg writes from its disk with '%s'; apply will produce the re-encoded container (SHA-256 %s), with the same disk content\n",
					argv[optind + 1], recipe, sha_hex(tsha, SHA256_LEN, h));
			}
		}
		eo.recipe = recipe;
		eo.target_sha = tsha;
		eo.target_size = tsize;
	}
	eo.threads = threads;
	/* second handles: OLD's and NEW's hashes are computed in threads */
	if (threads > 1 && vdisk_open(argv[optind], &oo, &old2, &e) == 0 &&
	    vdisk_open(argv[optind + 1], &oo, &new2, &e) == 0) {
		eo.hash_old = old2;
		eo.hash_new = new2;
	}
	eo.progress = progress_cb;
	eo.progress_arg = &pg;
	r = delta_encode(old, new, of.io, &eo, &st, &e);
	memset(&key, 0, sizeof(key));
	progress_done(&pg);
	if (r < 0) {
		outfile_abort(&of);
		goto fail;
	}
	r = outfile_commit(&of, &e);
	if (r < 0)
		goto fail;
	if (verbose) {
		char h1[32], h2[32], h3[32], h4[32], h5[32], h6[32];

		fprintf(stderr,
			"%s: %s (%llu bytes) in %llu chunks for %s of NEW: %s copied from OLD, %s zero, %s new data (%s of OLD as references); target %s; %.2f s\n",
			argv[optind + 2], size_human(st.patch_size, h1, sizeof(h1)),
			(unsigned long long)st.patch_size, (unsigned long long)st.chunks,
			size_human(new->size, h2, sizeof(h2)),
			size_human(st.copy, h3, sizeof(h3)),
			size_human(st.zero, h4, sizeof(h4)),
			size_human(st.data, h5, sizeof(h5)),
			size_human(st.ref, h6, sizeof(h6)),
			ofmt ? recipe : "raw", delta_now() - t0);
	}
	vdisk_close(old);
	vdisk_close(new);
	vdisk_close(old2);
	vdisk_close(new2);
	return 0;
fail:
	vdisk_close(old);
	vdisk_close(new);
	vdisk_close(old2);
	vdisk_close(new2);
	cli_error("delta", &e);
	return EXIT_ERROR;
}

const struct cmd cmd_delta = {
	.name = "delta",
	.summary = "make a patch that turns OLD's disk into NEW's",
	.usage = "delta [-j N] [-p] [-v] [-O FMT [-o OPTS]] [--level N] [--chunk SIZE] [--force] [--allow-refs]\n"
		 "                     [--ova-disk N|NAME] [--sign KEY.pem] [--patch-version N] OLD NEW PATCH",
	.help =
	"  -O FMT       the container apply builds: FMT written with -o OPTS.\n"
	"               Default: NEW's own when an edgeimg writer made NEW (its\n"
	"               recipe: format, codec, level, block size, version), else raw\n"
	"  -o OPTS      options of the -O writer, key=value,...\n"
	"  -j N         worker threads (0: one per core, the default)\n"
	"  -p           show progress on a terminal\n"
	"  -v           print a summary: patch size, chunks, copied/zero/new bytes\n"
	"  --level N    zstd level of the patch data, 1..22 (default 19)\n"
	"  --chunk SIZE NEW bytes one chunk describes at most (default 64M): the\n"
	"               unit of apply's checkpoints\n"
	"  --force      replace PATCH if it exists\n"
	"  --allow-refs follow references of OLD and NEW to other files\n"
	"  --ova-disk N|NAME  the disk of an OVA OLD or NEW to read (see help info)\n"
	"  --sign KEY.pem  sign the patch's header with this Ed25519 private key\n"
	"               (openssl genpkey -algorithm ed25519 -out KEY.pem); apply\n"
	"               --verify PUB.pem then accepts only patches that key signed\n"
	"  --patch-version N  a number recorded in the (signed) header, for apply\n"
	"               --min-version to refuse older patches (default 0)\n"
	"\nOLD and NEW may be in any format edgeimg reads.  The patch describes\n"
	"NEW's disk content in terms of OLD's: blocks found in OLD are copied,\n"
	"zero blocks cost nothing, the rest is compressed by zstd against the OLD\n"
	"blocks most like it.  It records the SHA-256 of both contents and, for a\n"
	"container target, the recipe and the SHA-256 of the container file that\n"
	"apply must produce (NEW is re-encoded once here to learn it).  Memory\n"
	"stays under 512 MiB for disks up to a few TiB.  The format is documented\n"
	"in src/delta-format.md; 'edgeimg info PATCH' shows a patch's header.\n",
	.run = delta_run,
};
