// SPDX-License-Identifier: MIT
/* edgeimg check: an image's metadata checked as "qemu-img check" does. */
#include <getopt.h>
#include <string.h>

#include "core/bytes.h"
#include "cli/cli.h"
#include "core/format.h"

/* Exit codes of qemu-img check. */
#define EXIT_CHECK_CORRUPT 2
#define EXIT_CHECK_LEAKS 3
#define EXIT_CHECK_UNSUPPORTED 63

static void check_print_line(void *arg, const char *line)
{
	(void)arg;
	fprintf(stderr, "%s\n", line);
}

/* The format named by -f, or the one the probes pick. */
static int check_pick(struct io *io, const char *name,
		      const struct img_format **fmt, struct err *e)
{
	uint8_t head[PROBE_HEAD], tail[PROBE_TAIL];
	size_t hl, tl = 0;
	int r;

	if (name) {
		*fmt = format_find(name);
		return *fmt ? 0 : err_set(e, EI_EUSAGE, "unknown format '%s'", name);
	}
	hl = (size_t)min_u64(sizeof(head), io->size);
	if ((r = io_read(io, head, hl, 0, "probe", e)) < 0)
		return r;
	if (io->size > hl) {
		tl = (size_t)min_u64(sizeof(tail), io->size - hl);
		if ((r = io_read(io, tail, tl, io->size - tl, "probe", e)) < 0)
			return r;
	}
	r = format_probe(head, hl, tail, tl, io->size, fmt, e);
	if (r < 0)
		err_prefix(e, "%s", io->name);
	return r;
}

static void check_json_u64(const char *key, uint64_t v, int *first)
{
	printf("%s\n    \"%s\": %llu", *first ? "{" : ",", key, (unsigned long long)v);
	*first = 0;
}

static void check_print_json(const struct check_result *res, const char *path,
			     const char *fmt)
{
	int first = 1;

	/* qemu-img leaves out the counters that are 0, except check-errors. */
	if (res->image_end_offset)
		check_json_u64("image-end-offset", res->image_end_offset, &first);
	if (res->leaks)
		check_json_u64("leaks", res->leaks, &first);
	if (res->corruptions)
		check_json_u64("corruptions", res->corruptions, &first);
	if (res->compressed_clusters)
		check_json_u64("compressed-clusters", res->compressed_clusters, &first);
	if (res->total_clusters)
		check_json_u64("total-clusters", res->total_clusters, &first);
	check_json_u64("check-errors", res->check_errors, &first);
	if (res->allocated_clusters)
		check_json_u64("allocated-clusters", res->allocated_clusters, &first);
	printf(",\n    \"filename\": ");
	json_string(stdout, path);
	printf(",\n    \"format\": ");
	json_string(stdout, fmt);
	if (res->fragmented_clusters)
		check_json_u64("fragmented-clusters", res->fragmented_clusters, &first);
	printf("\n}\n");
}

static void check_print_human(const struct check_result *res)
{
	if (!res->corruptions && !res->leaks && !res->check_errors)
		printf("No errors were found on the image.\n");
	if (res->corruptions)
		printf("\n%llu errors were found on the image.\n"
		       "Data may be corrupted, or further writes to the image may corrupt it.\n",
		       (unsigned long long)res->corruptions);
	if (res->leaks)
		printf("\n%llu leaked clusters were found on the image.\n"
		       "This means waste of disk space, but no harm to data.\n",
		       (unsigned long long)res->leaks);
	if (res->check_errors)
		printf("\n%llu internal errors have occurred during the check.\n",
		       (unsigned long long)res->check_errors);
	if (res->total_clusters && res->allocated_clusters)
		printf("%llu/%llu = %0.2f%% allocated, %0.2f%% fragmented, %0.2f%% compressed clusters\n",
		       (unsigned long long)res->allocated_clusters,
		       (unsigned long long)res->total_clusters,
		       (double)res->allocated_clusters * 100.0 / (double)res->total_clusters,
		       (double)res->fragmented_clusters * 100.0 / (double)res->allocated_clusters,
		       (double)res->compressed_clusters * 100.0 / (double)res->allocated_clusters);
	if (res->image_end_offset)
		printf("Image end offset: %llu\n", (unsigned long long)res->image_end_offset);
}

static int check_run(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'J' },
		{ "output", required_argument, NULL, 'o' },
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	struct check_result res = { .report = check_print_line };
	const struct img_format *fmt = NULL;
	const char *fname = NULL;
	struct io *io = NULL;
	struct err e = { 0 };
	int json = 0, quiet = 0, c, r;

	while ((c = getopt_long(argc, argv, "f:q", lo, NULL)) != -1) {
		switch (c) {
		case 'f':
			fname = optarg;
			break;
		case 'J':
			json = 1;
			break;
		case 'o':
			if (strcmp(optarg, "json") && strcmp(optarg, "human"))
				return cli_usage(&cmd_check, "--output takes json or human");
			json = !strcmp(optarg, "json");
			break;
		case 'q':
			quiet = 1;
			break;
		default:
			return cli_usage(&cmd_check, NULL);
		}
	}
	if (optind != argc - 1)
		return cli_usage(&cmd_check, "expected one IMAGE");
	if (quiet)
		res.report = NULL;
	r = io_open_file(argv[optind], 0, &io, &e);
	if (r < 0 || (r = check_pick(io, fname, &fmt, &e)) < 0)
		goto fail;
	if (!fmt->check) {
		fprintf(stderr, "edgeimg check: %s: format '%s' does not support checks\n",
			argv[optind], fmt->name);
		io_close(io);
		return EXIT_CHECK_UNSUPPORTED;
	}
	r = fmt->check(io, &res, &e);
	if (r < 0)
		goto fail;
	io_close(io);
	if (!quiet && json)
		check_print_json(&res, argv[optind], fmt->name);
	else if (!quiet)
		check_print_human(&res);
	if (res.check_errors) {
		fprintf(stderr, "edgeimg check: Check failed\n");
		return EXIT_ERROR;
	}
	if (res.corruptions)
		return EXIT_CHECK_CORRUPT;
	return res.leaks ? EXIT_CHECK_LEAKS : 0;
fail:
	io_close(io);
	cli_error("check", &e);
	return EXIT_ERROR;
}

const struct cmd cmd_check = {
	.name = "check",
	.summary = "check an image's metadata for corruptions and leaks",
	.usage = "check [-f FMT] [--json] [-q] IMAGE",
	.help =
	"  -f FMT         read IMAGE as FMT instead of probing its format\n"
	"  --json         print JSON with qemu-img's keys: filename, format,\n"
	"                 check-errors, and when not 0: corruptions, leaks,\n"
	"                 image-end-offset, total-clusters, allocated-clusters,\n"
	"                 fragmented-clusters, compressed-clusters\n"
	"  --output=json  the same, as qemu-img spells it\n"
	"  -q             print nothing; the exit status tells\n"
	"\nWhat qemu-img check verifies for qcow2: every cluster's refcount\n"
	"against the references from the header, L1/L2 tables (active and\n"
	"snapshots), refcount structures, snapshot table, crypto header and\n"
	"bitmaps; entry alignment and reserved bits; the COPIED flags.  Each\n"
	"problem is a line on stderr.  Nothing is repaired.  Memory: 2 bytes per\n"
	"cluster of the file (4 with refcounts above 16 bits), refused above\n"
	"the metadata table limit (32 MiB by default: a 1 TiB file with 64 KiB\n"
	"clusters).\n"
	"\nExit status, as qemu-img check: 0 no problem, 1 the check could not\n"
	"complete, 2 corruptions, 3 leaked clusters only, 63 the format has no\n"
	"check.\n",
	.run = check_run,
};
