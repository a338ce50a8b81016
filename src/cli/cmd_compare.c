// SPDX-License-Identifier: MIT
/* edgeimg compare: do two images hold the same disk?  As qemu-img compare. */
#include <getopt.h>

#include "cli/cli.h"

static int compare_run(int argc, char **argv)
{
	static const struct option lo[] = {
		CLI_IMAGE_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct cli_args ca = { 0 };
	struct ei_image *a = NULL, *b = NULL;
	struct ei_err e = { 0 };
	struct progress pg;
	int strict = 0, size_differs = 0, c, r;
	uint64_t diff = 0;

	while ((c = getopt_long(argc, argv, "f:F:sp", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			strict = 1;
			break;
		default:       /* --allow-refs and --ova-disk apply to A and B */
			r = cli_opt(&cmd_compare, c, optarg, &ca);
			if (r != 1)
				return r ? r : cli_usage(&cmd_compare, NULL);
		}
	}
	if (optind != argc - 2)
		return cli_usage(&cmd_compare, "expected two images");
	r = ei_image_open(argv[optind], &ca.a, &a, &e);
	if (r >= 0)
		r = ei_image_open(argv[optind + 1], &ca.b, &b, &e);
	if (r >= 0) {
		size_differs = ei_image_size(a) != ei_image_size(b);
		if (size_differs)
			printf("%s: Image size mismatch!\n", strict ? "Strict mode" : "Warning");
		progress_init(&pg, "compare", ca.progress);
		r = ei_compare(a, b, strict, &(struct ei_progress){ progress_cb, &pg },
			       &diff, &e);
		progress_done(&pg);
	}
	ei_image_close(a);
	ei_image_close(b);
	if (r < 0) {
		cli_error("compare", &e);
		return 2;
	}
	if (r == 0)
		printf("Images are identical.\n");
	else if (!(strict && size_differs))
		printf("Content mismatch at offset %llu!\n", (unsigned long long)diff);
	return r;
}

const struct cmd cmd_compare = {
	.name = "compare",
	.summary = "compare the disks two images hold",
	.usage = "compare [-f FMT] [-F FMT] [-s] [-p] [--allow-refs] [--ova-disk N|NAME] [--partition P] A B",
	.help =
	"  -f FMT   read A as FMT     -F FMT   read B as FMT\n"
	"  -s       strict: images of different sizes differ\n"
	"  -p       show progress: in place on a terminal, else a line every few\n"
	"           seconds\n"
	"  --allow-refs  follow references to other files (see help info)\n"
	"  --ova-disk N|NAME  the disk of an OVA A or B to read (see help info)\n"
	"  --partition P  compare partition P of A with partition P of B (a\n"
	"           number from 1, a GPT name or a filesystem label; see help info)\n"
	"\nExit status: 0 when the disks have the same content, 1 when not (the\n"
	"first differing byte offset is printed), 2 on error.  Without -s, the\n"
	"part of the larger disk past the smaller one must read as zero.\n",
	.run = compare_run,
};
