// SPDX-License-Identifier: MIT
/* edgeimg info: what an image is, in qemu-img's words and JSON keys. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/format.h"
#include "core/kconfig.h"

static int info_run(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'J' },
		{ "output", required_argument, NULL, 'o' },
		CLI_IMAGE_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct open_opts oo = { 0 };
	struct info *fi = NULL;
	struct vdisk *vd = NULL;
	struct err e = { 0 };
	uint64_t actual = 0;
	struct stat st;
	char h1[32], h2[32], recipe[1024] = "";
	int json = 0, c, r;

	while ((c = getopt_long(argc, argv, "f:", lo, NULL)) != -1) {
		switch (c) {
		case 'f':
			oo.format = optarg;
			break;
		case 'J':
			json = 1;
			break;
		case 'o':
			if (strcmp(optarg, "json") && strcmp(optarg, "human"))
				return cli_usage(&cmd_info, "--output takes json or human");
			json = !strcmp(optarg, "json");
			break;
		default:
			if (!cli_image_opt(c, optarg, &oo))
				return cli_usage(&cmd_info, NULL);
		}
	}
	if (optind != argc - 1)
		return cli_usage(&cmd_info, "expected one IMAGE");
#if IS_ENABLED(CONFIG_CODEC_ZSTD)
	r = patch_info(argv[optind], json);     /* a delta patch: its header */
	if (r >= 0)
		return r;
#endif
	r = vdisk_open(argv[optind], &oo, &vd, &e);
	if (r < 0)
		goto fail;
	if (stat(argv[optind], &st) == 0)
		actual = S_ISBLK(st.st_mode) ? vd->io->size :
			 (uint64_t)st.st_blocks * 512;
	if (vd->fmt->info) {
		fi = calloc(1, sizeof(*fi));
		if (!fi) {
			r = err_set(&e, -ENOMEM, "out of memory");
			goto fail;
		}
		r = vd->fmt->info(vd, fi, &e);
		if (r < 0)
			goto fail;
	}
	/* The recipe an edgeimg writer stored, if any: a bad one is not shown. */
	if (vd->fmt->recipe &&
	    vd->fmt->recipe(vd, recipe, sizeof(recipe), &e) <= 0)
		recipe[0] = 0;
	if (json) {
		printf("{\n    \"virtual-size\": %llu,\n    \"filename\": ",
		       (unsigned long long)vd->size);
		json_string(stdout, argv[optind]);
		printf(",\n    \"format\": ");
		json_string(stdout, vd->fmt->name);
		printf(",\n    \"actual-size\": %llu", (unsigned long long)actual);
		if (fi && fi->n) {
			printf(",\n    \"format-specific\": {\n        \"type\": ");
			json_string(stdout, vd->fmt->name);
			printf(",\n        \"data\": {");
			info_json(fi, stdout, 3, true);
			printf("\n        }\n    }");
		}
		if (recipe[0]) {
			printf(",\n    \"recipe\": ");
			json_string(stdout, recipe);
		}
		printf(",\n    \"dirty-flag\": %s\n}\n",
		       vd->dirty ? "true" : "false");
	} else {
		printf("image: %s\nfile format: %s\n", argv[optind], vd->fmt->name);
		printf("virtual size: %s (%llu bytes)\ndisk size: %s\n",
		       size_human(vd->size, h1, sizeof(h1)),
		       (unsigned long long)vd->size,
		       size_human(actual, h2, sizeof(h2)));
		if (recipe[0])
			printf("recipe: %s\n", recipe);
		if (fi && fi->n) {
			printf("Format specific information:\n");
			info_text(fi, stdout, 1);
		}
	}
	free(fi);
	vdisk_close(vd);
	return 0;
fail:
	free(fi);
	vdisk_close(vd);
	cli_error("info", &e);
	return EXIT_ERROR;
}

const struct cmd cmd_info = {
	.name = "info",
	.summary = "show an image's format, sizes and format details",
	.usage = "info [-f FMT] [--json] [--allow-refs] [--ova-disk N|NAME] IMAGE",
	.help =
	"  -f FMT         read IMAGE as FMT instead of probing its format\n"
	"  --json         print JSON with qemu-img's keys: format, virtual-size,\n"
	"                 actual-size, filename, format-specific, dirty-flag;\n"
	"                 and \"recipe\" for an image an edgeimg writer made\n"
	"  --output=json  the same, as qemu-img spells it\n"
	"  --allow-refs   follow references to other files (backing files,\n"
	"                 parents, extents): plain names in the image's own\n"
	"                 directory only, 8 levels at most; refused without it\n"
	"  --ova-disk N|NAME  an OVA's disk to read: the Nth <Disk> of its .ovf\n"
	"                 (from 1) or the one whose file is NAME; the first\n"
	"                 without it.  info of an OVA lists every disk\n",
	.run = info_run,
};
