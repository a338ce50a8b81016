// SPDX-License-Identifier: MIT
/* edgeimg convert: any readable image to any writable format. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char *const out_kind_name[] = { "file", "block-device", "stdout" };

static int convert_run(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "force", no_argument, NULL, 'W' },
		{ "json", no_argument, NULL, 'J' },
		{ "bmap", required_argument, NULL, 'B' },
		{ "files", no_argument, NULL, 'T' },
		{ "reuse", required_argument, NULL, 'U' },
		CLI_IMAGE_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct cli_args ca = { 0 };
	struct ei_convert_opts co = { 0 };
	struct ei_convert_result res;
	struct ei_image *in = NULL;
	struct progress pg;
	struct ei_err e = { 0 };
	const char *out;
	int c, r, files = 0;
	double t0 = cli_now();
	char h1[32], h2[32], h3[32], msg[8400];

	while ((c = getopt_long(argc, argv, "f:O:o:cj:pv", lo, NULL)) != -1) {
		switch (c) {
		case 'O':
			co.format = optarg;
			break;
		case 'o':
			co.options = optarg;
			break;
		case 'c':
			co.compress = 1;
			break;
		case 'B':
			co.bmap = optarg;
			break;
		case 'T':
			files = 1;
			break;
		case 'U':
			co.reuse = optarg;
			break;
		default:
			r = cli_opt(&cmd_convert, c, optarg, &ca);
			if (r != 1)
				return r ? r : cli_usage(&cmd_convert, NULL);
		}
	}
	co.threads = ca.threads;
	co.force = ca.force;
	if (optind != argc - 2)
		return cli_usage(&cmd_convert, "expected IN and OUT");
	if (!co.format)
		return cli_usage(&cmd_convert, "name the output format with -O (raw is never assumed)");
	out = argv[optind + 1];
	if (ca.json && !strcmp(out, "-"))
		return cli_usage(&cmd_convert, "--json prints on standard output, which OUT - takes");
	progress_init(&pg, "convert", ca.progress);
	co.progress.fn = progress_cb;
	co.progress.arg = &pg;
	if (files) {
		co.warn = cli_warn;
		co.warn_arg = (void *)"convert";
		r = ei_convert_files(argv[optind], &ca.a, out, &co, &res, &e);
		progress_done(&pg);
	} else {
		/* a mistyped format or option is a usage error, before anything is opened */
		if (ei_convert_check(&co, &e) < 0)
			return cli_error("convert", &e);
		r = ei_image_open(argv[optind], &ca.a, &in, &e);
		if (r < 0)
			return cli_error("convert", &e);
		r = ei_convert(in, out, &co, &res, &e);
		progress_done(&pg);
		ei_image_close(in);
	}
	if (r < 0)
		return cli_error("convert", &e);
	if (res.writer_differs)
		cli_note("convert", "the options name another edgeimg version (writer=): the bytes may differ from that version's");
	if (co.reuse && !res.reuse_taken) {
		snprintf(msg, sizeof(msg),
			 "--reuse %s: not a %s that edgeimg wrote with these options (see its recipe, edgeimg info): every block was compressed",
			 co.reuse, co.format);
		cli_warn((void *)"convert", msg);
	}
	if (ca.verbose && files) {
		fprintf(stderr, "%s: %s out, %.2f s\n", out,
			ei_size_str(res.out_size, h2, sizeof(h2)), cli_now() - t0);
	} else if (ca.verbose) {
		if (res.out_kind == EI_OUT_FILE)
			fprintf(stderr, "%s: %s in, %s out, %s allocated (%.3f of the virtual size), %.2f s\n",
				out, ei_size_str(res.in_size, h1, sizeof(h1)),
				ei_size_str(res.out_size, h2, sizeof(h2)),
				ei_size_str(res.out_alloc, h3, sizeof(h3)),
				res.in_size ? (double)res.out_alloc / (double)res.in_size : 0.0,
				cli_now() - t0);
		else
			fprintf(stderr, "%s: %s in, %s written to the %s, %.2f s\n",
				out, ei_size_str(res.in_size, h1, sizeof(h1)),
				ei_size_str(res.out_size, h2, sizeof(h2)),
				res.out_kind == EI_OUT_BLOCKDEV ? "block device" : "standard output",
				cli_now() - t0);
		if (co.bmap)
			fprintf(stderr, "%s: %llu of %llu blocks of 4 KiB mapped\n", co.bmap,
				(unsigned long long)res.bmap_mapped,
				(unsigned long long)((res.in_size + 4095) / 4096));
	}
	if (co.reuse && res.reuse_refused) {
		snprintf(msg, sizeof(msg),
			 "--reuse %s: its blocks are not what its recipe gives (compressed again, they differ): the rest were compressed",
			 co.reuse);
		cli_warn((void *)"convert", msg);
	}
	if (co.reuse && res.reuse_taken && ca.verbose)
		fprintf(stderr, "%s: %llu of %llu compressed blocks copied from %s\n", out,
			(unsigned long long)res.reuse_copied,
			(unsigned long long)res.reuse_blocks, co.reuse);
	if (ca.json) {
		printf("{\n    \"filename\": ");
		ei_json_string(stdout, argv[optind]);
		printf(",\n    \"output\": ");
		ei_json_string(stdout, out);
		printf(",\n    \"output-format\": ");
		ei_json_string(stdout, co.format);
		if (co.bmap) {
			printf(",\n    \"bmap\": ");
			ei_json_string(stdout, co.bmap);
			printf(",\n    \"bmap-mapped-blocks\": %llu",
			       (unsigned long long)res.bmap_mapped);
		}
		if (co.reuse) {
			printf(",\n    \"reuse\": ");
			ei_json_string(stdout, co.reuse);
			printf(",\n    \"reuse-taken\": %s,\n    \"reuse-refused\": %s,\n"
			       "    \"reused-blocks\": %llu,\n    \"compressed-blocks\": %llu",
			       res.reuse_taken ? "true" : "false", res.reuse_refused ? "true" : "false",
			       (unsigned long long)res.reuse_copied,
			       (unsigned long long)res.reuse_blocks);
		}
		printf(",\n    \"output-kind\": \"%s\",\n    \"virtual-size\": %llu,\n"
		       "    \"output-size\": %llu,\n    \"output-allocated\": %llu,\n"
		       "    \"seconds\": %.3f\n}\n",
		       out_kind_name[res.out_kind], (unsigned long long)res.in_size,
		       (unsigned long long)res.out_size, (unsigned long long)res.out_alloc,
		       cli_now() - t0);
	}
	return 0;
}

const struct cmd cmd_convert = {
	.name = "convert",
	.summary = "convert an image to another format",
	.usage = "convert [-f FMT] -O FMT [-o OPTS] [-c] [-j N] [-p] [-v] [--json] [--force] [--bmap FILE] [--files] [--reuse OLD] [--allow-refs] [--ova-disk N|NAME] [--partition P] IN OUT|-",
	.help =
	"  -f FMT     read IN as FMT instead of probing its format (a block device\n"
	"             is read as raw unless -f says otherwise)\n"
	"  -O FMT     write OUT as FMT (required; raw is never assumed)\n"
	"  -o OPTS    options of the output format, key=value,... (below); the\n"
	"             recipe 'edgeimg info' shows is taken as it is\n"
	"  -c         compress the output (qcow2: compress=on; squashfs always\n"
	"             compresses; refused for raw and simg)\n"
	"  -j N       worker threads (0: one per core, the default)\n"
	"  -p         show progress: in place on a terminal, else a line every\n"
	"             few seconds\n"
	"  -v         print a summary line: sizes, ratio, time\n"
	"  --json     print a summary as one JSON object on standard output\n"
	"  --force    replace OUT if it is an existing regular file\n"
	"  --bmap FILE  also write a block map of OUT's disk for 'bmaptool copy'\n"
	"             (format 2.0: the 4 KiB blocks holding data and the SHA-256\n"
	"             of each range), in the same pass; raw and compressed raw\n"
	"             outputs.  It is put in place after OUT.\n"
	"  --files    write the files of IN, not its disk: -O squashfs (a root\n"
	"             filesystem) or -O tar (POSIX pax).  IN is a directory, a\n"
	"             tarball (.tar, .tar.gz, .tar.xz, .tar.zst), a squashfs root\n"
	"             filesystem, or an image holding an ext2/3/4 or squashfs\n"
	"             filesystem (--partition P, or the only partition holding\n"
	"             one); info --files lists what it reads\n"
	"  --reuse OLD  OLD is an earlier build of OUT (-O squashfs, or qcow2 with\n"
	"             -c) that edgeimg wrote with the same options: a block whose\n"
	"             content one of OLD's blocks holds is copied from it instead\n"
	"             of being compressed again.  OUT is what a build without\n"
	"             --reuse writes, byte for byte, in less time where the two\n"
	"             share blocks; -v says how many were copied.  An OLD that\n"
	"             was written otherwise gets a warning: every block is then\n"
	"             compressed\n"
	"  --allow-refs  follow IN's references to other files (see help info)\n"
	"  --ova-disk N|NAME  IN is an OVA: read its Nth disk (from 1, in .ovf\n"
	"             order) or the one whose file is NAME (see help info)\n"
	"  --partition P  convert partition P of IN alone: a number from 1, a GPT\n"
	"             partition name or a filesystem label (see help info); its\n"
	"             holes and zero ranges stay holes\n"
	"\nOUT is a regular file, a block device or - (standard output, for a\n"
	"format written front to back: raw, craw).  A regular file appears only when\n"
	"complete: it is written under a temporary name, synced and renamed.  A\n"
	"block device is written in place, never while mounted.  A symbolic link\n"
	"(but to a block device), a FIFO, a socket, a character device or a\n"
	"directory is refused, whatever --force says, and so is OUT when it is\n"
	"IN or an existing delta patch.  Zero and unallocated ranges of IN\n"
	"become holes in a raw OUT.\n",
	.run = convert_run,
};
