// SPDX-License-Identifier: MIT
/* edgeimg convert: any readable image to any writable format. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"
#include "core/format.h"
#include "core/limits.h"

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int convert_run(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "force", no_argument, NULL, 'F' },
		CLI_IMAGE_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct open_opts oo = { 0 };
	struct write_opts wo = { 0 };
	const struct img_format *ofmt = NULL;
	struct vdisk *src = NULL;
	struct outfile of = { 0 };
	struct progress pg;
	struct err e = { 0 };
	int force = 0, progress = 0, verbose = 0, c, r;
	double t0 = now_sec();

	wo.threads = threads_resolve(EI_DEFAULT_THREADS);
	while ((c = getopt_long(argc, argv, "f:O:o:cj:pv", lo, NULL)) != -1) {
		switch (c) {
		case 'f':
			oo.format = optarg;
			break;
		case 'O':
			ofmt = format_find(optarg);
			if (!ofmt || !ofmt->write) {
				err_set(&e, EI_EUSAGE, "cannot write format '%s'", optarg);
				cli_error("convert", &e);
				return EXIT_USAGE;
			}
			break;
		case 'o':
			wo.options = optarg;
			break;
		case 'c':
			wo.compress = 1;
			break;
		case 'j':
			if (parse_threads(optarg, &wo.threads) < 0)
				return cli_usage(&cmd_convert, "-j takes 0..256");
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
		default:
			if (!cli_image_opt(c, optarg, &oo))
				return cli_usage(&cmd_convert, NULL);
		}
	}
	if (optind != argc - 2)
		return cli_usage(&cmd_convert, "expected IN and OUT");
	if (!ofmt)
		return cli_usage(&cmd_convert, "name the output format with -O");
	wo.mem_cap = EI_MEM_CAP;
	/* Options the output cannot take are refused before anything else. */
	r = format_write_check(ofmt->name, wo.options, wo.compress, &e);
	if (r < 0)
		goto fail;
	r = vdisk_open(argv[optind], &oo, &src, &e);
	if (r < 0)
		goto fail;
	r = outfile_create(&of, argv[optind + 1], force, &e);
	if (r < 0)
		goto fail;
	progress_init(&pg, progress);
	wo.progress = progress_cb;
	wo.progress_arg = &pg;
	r = ofmt->write(src, of.io, &wo, &e);
	progress_done(&pg);
	if (r < 0) {
		outfile_abort(&of);
		goto fail;
	}
	r = outfile_commit(&of, &e);
	if (r < 0)
		goto fail;
	if (verbose) {
		struct stat st;
		uint64_t out = 0, alloc = 0;
		char h1[32], h2[32], h3[32];

		if (stat(argv[optind + 1], &st) == 0) {
			out = S_ISBLK(st.st_mode) ? src->size : (uint64_t)st.st_size;
			alloc = (uint64_t)st.st_blocks * 512;
		}
		fprintf(stderr, "%s: %s in, %s out, %s allocated (%.3f of the virtual size), %.2f s\n",
			argv[optind + 1], size_human(src->size, h1, sizeof(h1)),
			size_human(out, h2, sizeof(h2)),
			size_human(alloc, h3, sizeof(h3)),
			src->size ? (double)alloc / (double)src->size : 0.0,
			now_sec() - t0);
	}
	vdisk_close(src);
	return 0;
fail:
	vdisk_close(src);
	cli_error("convert", &e);
	return EXIT_ERROR;
}

const struct cmd cmd_convert = {
	.name = "convert",
	.summary = "convert an image to another format",
	.usage = "convert [-f FMT] -O FMT [-o OPTS] [-c] [-j N] [-p] [-v] [--force] [--allow-refs] [--ova-disk N|NAME] IN OUT",
	.help =
	"  -f FMT     read IN as FMT instead of probing its format\n"
	"  -O FMT     write OUT as FMT (required; raw is never assumed)\n"
	"  -o OPTS    options of the output format, key=value,...\n"
	"  -c         compress the output (qcow2: -o compress=on; squashfs\n"
	"             always compresses; refused for raw)\n"
	"  -j N       worker threads (0: one per core, the default)\n"
	"  -p         show progress on a terminal\n"
	"  -v         print a summary line: sizes, ratio, time\n"
	"  --force    replace OUT if it exists\n"
	"  --allow-refs  follow IN's references to other files (see help info)\n"
	"  --ova-disk N|NAME  IN is an OVA: read its Nth disk (from 1, in .ovf\n"
	"             order) or the one whose file is NAME (see help info)\n"
	"\nOUT appears only when it is complete: it is written under a temporary\n"
	"name and renamed at the end.  A block device is written in place.\n"
	"Zero and unallocated ranges of IN become holes in a raw OUT.\n",
	.run = convert_run,
};
