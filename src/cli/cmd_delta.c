// SPDX-License-Identifier: MIT
/* edgeimg delta: the patch that turns OLD's disk into NEW's (src/delta/delta-format.md). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static int delta_run(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "force", no_argument, NULL, 'W' },
		{ "json", no_argument, NULL, 'J' },
		CLI_IMAGE_OPTIONS,
		{ "level", required_argument, NULL, 'L' },
		{ "chunk", required_argument, NULL, 'C' },
		{ "sign", required_argument, NULL, 'S' },
		{ "patch-version", required_argument, NULL, 'V' },
		{ "old-size", required_argument, NULL, 'A' },
		{ "new-size", required_argument, NULL, 'B' },
		{ "no-lzma", no_argument, NULL, 'Z' },
		{ "exact", no_argument, NULL, 'X' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli_args ca = { 0 };
	struct ei_delta_opts o = { 0 };
	struct ei_delta_result res;
	struct ei_image *old = NULL, *new = NULL;
	struct progress pg;
	struct ei_err e = { 0 };
	const char *patch;
	int c, r;
	double t0 = cli_now();
	uint64_t v;
	char h[6][32], x1[2 * EI_HASH_LEN + 1], x2[2 * EI_HASH_LEN + 1];

	while ((c = getopt_long(argc, argv, "f:F:O:o:j:pv", lo, NULL)) != -1) {
		switch (c) {
		case 'O':
			o.target_format = optarg;
			break;
		case 'o':
			o.target_options = optarg;
			break;
		case 'L':
			if (parse_u64(optarg, &v) < 0 || v < 1 || v > 22)
				return cli_usage(&cmd_delta, "--level takes 1..22");
			o.level = (int)v;
			break;
		case 'C':
			if (ei_parse_size(optarg, &o.chunk) < 0 || !o.chunk)
				return cli_usage(&cmd_delta, "--chunk takes a size (4k..256M)");
			break;
		case 'S':
			o.sign_key = optarg;
			break;
		case 'V':
			if (parse_u64(optarg, &o.patch_version) < 0)
				return cli_usage(&cmd_delta, "--patch-version takes 0..2^64-1");
			break;
		case 'Z':
			o.no_lzma = 1;
			break;
		case 'X':
			o.exact = 1;
			break;
		case 'A':
		case 'B':
			if (ei_parse_size(optarg, c == 'A' ? &ca.a.size : &ca.b.size) < 0 ||
			    !(c == 'A' ? ca.a.size : ca.b.size))
				return cli_usage(&cmd_delta, "--old-size and --new-size take a size");
			break;
		default:
			r = cli_opt(&cmd_delta, c, optarg, &ca);
			if (r != 1)
				return r ? r : cli_usage(&cmd_delta, NULL);
		}
	}
	o.threads = ca.threads;
	o.force = ca.force;
	if (optind != argc - 3)
		return cli_usage(&cmd_delta, "expected OLD, NEW and PATCH");
	patch = argv[optind + 2];
	if (ca.json && !strcmp(patch, "-"))
		return cli_usage(&cmd_delta, "--json prints on standard output, which PATCH - takes");
	if (o.target_options && !o.target_format)
		return cli_usage(&cmd_delta, "-o needs -O (the target container)");
	if (o.target_format && ei_format_check(o.target_format, 1, &e) < 0)
		return cli_error("delta", &e);
	/* two root filesystems: their files, not their compressed bytes */
	ca.a.files_view = ca.b.files_view = 1;
	r = ei_image_open(argv[optind], &ca.a, &old, &e);
	if (r < 0)
		return cli_error_in("delta", "OLD", &e);
	r = ei_image_open(argv[optind + 1], &ca.b, &new, &e);
	if (r < 0) {
		ei_image_close(old);
		return cli_error_in("delta", "NEW", &e);
	}
	progress_init(&pg, "delta", ca.progress);
	o.progress.fn = progress_cb;
	o.progress.arg = &pg;
	r = ei_delta(old, new, patch, &o, &res, &e);
	progress_done(&pg);
	ei_image_close(old);
	ei_image_close(new);
	if (r < 0)
		return cli_error("delta", &e);
	if (res.target_differs)
		fprintf(stderr,
			"edgeimg delta: note: %s is not what this edgeimg writes from its disk with '%s'; apply will produce the re-encoded container, with the same disk content\n",
			argv[optind + 1], res.target);
	if (ca.verbose)
		fprintf(stderr,
			"%s: %s (%llu bytes) in %llu chunks for %s of NEW: %s copied from OLD, %s zero, %s new data (%s of OLD as references); target %s; %u threads; %.2f s\n",
			patch, ei_size_str(res.patch_size, h[0], 32),
			(unsigned long long)res.patch_size, (unsigned long long)res.chunks,
			ei_size_str(res.zero + res.copy + res.data, h[1], 32),
			ei_size_str(res.copy, h[2], 32), ei_size_str(res.zero, h[3], 32),
			ei_size_str(res.data, h[4], 32), ei_size_str(res.ref, h[5], 32),
			res.target[0] ? res.target : "raw", res.threads, cli_now() - t0);
	if (ca.verbose && res.exact_recipe)
		fprintf(stderr, "%s: NEW is edgeimg's own container: its recipe rebuilds it byte for byte\n",
			patch);
	else if (ca.verbose && res.exact_views)
		fprintf(stderr, "%s: %llu of NEW's %llu compressed blocks are compressed again on the device, %llu shipped as they are (they do not reproduce)\n",
			patch, (unsigned long long)res.exact_rebuilt,
			(unsigned long long)res.exact_blocks, (unsigned long long)res.exact_stored);
	if (ca.verbose && !res.lzma_tried)
		fprintf(stderr, "%s: LZMA2 data frames: not tried (%s)\n", patch,
			o.no_lzma ? "--no-lzma" : "this edgeimg is built without xz, CODEC_XZ");
	else if (ca.verbose)
		fprintf(stderr, "%s: LZMA2 data frames (BCJ for code): %llu of %llu chunks, %s (%llu bytes) smaller than zstd's\n",
			patch, (unsigned long long)res.lzma_chunks,
			(unsigned long long)res.chunks, ei_size_str(res.lzma_saved, h[0], 32),
			(unsigned long long)res.lzma_saved);
	if (ca.json) {
		printf("{\n    \"patch\": ");
		ei_json_string(stdout, patch);
		printf(",\n    \"patch-size\": %llu,\n    \"chunks\": %llu,\n"
		       "    \"new-size\": %llu,\n    \"copied\": %llu,\n    \"zero\": %llu,\n"
		       "    \"data\": %llu,\n    \"reference\": %llu,\n",
		       (unsigned long long)res.patch_size, (unsigned long long)res.chunks,
		       (unsigned long long)(res.zero + res.copy + res.data),
		       (unsigned long long)res.copy, (unsigned long long)res.zero,
		       (unsigned long long)res.data, (unsigned long long)res.ref);
		printf("    \"old-hash\": \"%s\",\n    \"new-hash\": \"%s\",\n    \"target\": ",
		       ei_hex(res.old_hash, EI_HASH_LEN, x1), ei_hex(res.new_hash, EI_HASH_LEN, x2));
		ei_json_string(stdout, res.target[0] ? res.target : "raw");
		printf(",\n    \"lzma-chunks\": %llu,\n    \"lzma-saved\": %llu",
		       (unsigned long long)res.lzma_chunks, (unsigned long long)res.lzma_saved);
		if (o.exact || res.exact_views)
			printf(",\n    \"exact-recipe\": %s,\n    \"exact-blocks\": %llu,\n    \"exact-rebuilt\": %llu,\n    \"exact-stored\": %llu",
			       res.exact_recipe ? "true" : "false",
			       (unsigned long long)res.exact_blocks,
			       (unsigned long long)res.exact_rebuilt,
			       (unsigned long long)res.exact_stored);
		printf(",\n    \"threads\": %u,\n    \"seconds\": %.3f\n}\n", res.threads,
		       cli_now() - t0);
	}
	return 0;
}

const struct cmd cmd_delta = {
	.name = "delta",
	.summary = "make a patch that turns OLD's disk into NEW's",
	.needs = 1,
	.usage = "delta [-f FMT] [-F FMT] [-O FMT [-o OPTS]] [-j N] [-p] [-v] [--json] [--level N] [--chunk SIZE]\n"
		 "              [--old-size SIZE] [--new-size SIZE] [--force] [--allow-refs] [--ova-disk N|NAME] [--partition P]\n"
		 "              [--sign KEY.pem] [--patch-version N] [--no-lzma] [--exact] OLD NEW PATCH|-",
	.help =
	"  -f FMT       read OLD as FMT    -F FMT   read NEW as FMT (a squashfs\n"
	"               root filesystem, say, with -f raw -F raw: its bytes)\n"
	"  -O FMT       the container apply builds: FMT written with -o OPTS.\n"
	"               Default: NEW's own when an edgeimg writer made NEW (its\n"
	"               recipe: format, codec, level, block size, version), else raw\n"
	"  -o OPTS      options of the -O writer, key=value,...\n"
	"  -j N         worker threads (0: one per core, the default; fewer when\n"
	"               their memory would pass 512 MiB)\n"
	"  -p           show progress: in place on a terminal, else a line every\n"
	"               few seconds\n"
	"  -v           print a summary: patch size, chunks, copied/zero/new bytes\n"
	"  --json       print that summary as one JSON object on standard output\n"
	"  --level N    zstd level of the patch data, 1..22 (default 19)\n"
	"  --chunk SIZE NEW bytes one chunk describes at most: the unit of apply's\n"
	"               checkpoints (default 1/16 of NEW, 64 KiB to 64 MiB)\n"
	"  --old-size SIZE, --new-size SIZE  only the first SIZE bytes of OLD or\n"
	"               NEW are the image (a slot bigger than the image it holds)\n"
	"  --force      replace PATCH if it exists\n"
	"  --allow-refs follow references of OLD and NEW to other files\n"
	"  --ova-disk N|NAME  the disk of an OVA OLD or NEW to read (see help info)\n"
	"  --partition P  the patch turns partition P of OLD into partition P of\n"
	"               NEW (a number from 1, a GPT name or a filesystem label:\n"
	"               see help info); apply it with apply --partition P OLD,\n"
	"               which builds the NEW partition alone\n"
	"  --sign KEY.pem  sign the patch with this Ed25519 private key (openssl\n"
	"               genpkey -algorithm ed25519 -out KEY.pem); apply --verify\n"
	"               PUB.pem then accepts only patches that key signed\n"
	"  --patch-version N  a number recorded in the (signed) header, for apply\n"
	"               --min-version to refuse older patches (default 0)\n"
	"  --no-lzma    zstd only: no chunk's data as LZMA2 (after a BCJ filter\n"
	"               for x86-64 or arm64 code), which a chunk otherwise gets\n"
	"               where that is smaller; for devices whose edgeimg predates\n"
	"               them (it refuses such a patch: unknown incompatible\n"
	"               features 0x8)\n"
	"  --exact      the target is NEW's own file, byte for byte, though\n"
	"               another tool made it: a qcow2 of qemu-img convert -c\n"
	"               (zlib or zstd), a squashfs of mksquashfs (gzip, zstd, xz,\n"
	"               lz4).  NEW's compressed blocks that compress again to\n"
	"               the same bytes travel decompressed (patched against\n"
	"               OLD's, decompressed too) and apply compresses them; the\n"
	"               others, and the rest of the file, travel as they are.\n"
	"               NEW that edgeimg wrote takes its recipe, as without it.\n"
	"               Without -O, a compressed container NEW no edgeimg wrote\n"
	"               is its own file's target as if --exact were given\n"
	"\nOLD and NEW may be in any format edgeimg reads; a block device is read\n"
	"as raw unless -f/-F say otherwise.  The patch describes NEW's disk\n"
	"content in terms of OLD's: blocks found in OLD are copied, zero blocks\n"
	"cost nothing, the rest is compressed by zstd against the OLD blocks\n"
	"most like it.  It records the content hashes of both and, for a\n"
	"container target, the recipe and the hash of the container file apply\n"
	"must produce (NEW is re-encoded once here to learn it); the header\n"
	"commits to every chunk, so a signed header covers the whole patch.\n"
	"PATCH - writes the patch to standard output.  Memory stays under 512\n"
	"MiB.  The format is documented in src/delta/delta-format.md; 'edgeimg\n"
	"info PATCH' shows a patch's header.\n",
	.run = delta_run,
};
