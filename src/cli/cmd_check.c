// SPDX-License-Identifier: MIT
/* edgeimg check: an image's metadata checked as "qemu-img check" does. */
#include <getopt.h>
#include <string.h>

#include "cli/cli.h"

/* Exit codes of qemu-img check. */
#define EXIT_CHECK_CORRUPT 2
#define EXIT_CHECK_LEAKS 3
#define EXIT_CHECK_UNSUPPORTED 63

static void check_print_line(void *arg, const char *line)
{
	(void)arg;
	fprintf(stderr, "%s\n", line);
}

static void check_json_u64(const char *key, uint64_t v, int *first)
{
	printf("%s\n    \"%s\": %llu", *first ? "{" : ",", key, (unsigned long long)v);
	*first = 0;
}

static void check_print_json(const struct ei_check_result *res, const char *path)
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
	ei_json_string(stdout, path);
	printf(",\n    \"format\": ");
	ei_json_string(stdout, res->format);
	if (res->fragmented_clusters)
		check_json_u64("fragmented-clusters", res->fragmented_clusters, &first);
	printf("\n}\n");
}

static void check_print_human(const struct ei_check_result *res)
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
	struct ei_check_result res;
	const char *fname = NULL;
	struct ei_err e = { 0 };
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
	r = ei_check(argv[optind], fname, quiet ? NULL : check_print_line, NULL,
		     &res, &e);
	if (r == EI_CHECK_NONE) {
		cli_error("check", &e);
		return EXIT_CHECK_UNSUPPORTED;
	}
	if (r < 0)
		return cli_error("check", &e);
	if (!quiet && json)
		check_print_json(&res, argv[optind]);
	else if (!quiet)
		check_print_human(&res);
	if (res.check_errors) {
		fprintf(stderr, "edgeimg check: Check failed\n");
		return EXIT_ERROR;
	}
	if (res.corruptions)
		return EXIT_CHECK_CORRUPT;
	return res.leaks ? EXIT_CHECK_LEAKS : 0;
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
