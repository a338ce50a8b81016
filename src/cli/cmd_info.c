// SPDX-License-Identifier: MIT
/* edgeimg info: what an image, a patch or a key is, in qemu-img's words and JSON keys. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static int info_line(void *arg, const char *text, struct ei_err *e)
{
	if (puts(text) < 0)
		return -EIO;
	return 0;
}

static int info_run(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'J' },
		{ "output", required_argument, NULL, 'o' },
		{ "files", no_argument, NULL, 'T' },
		CLI_IMAGE_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct cli_args ca = { 0 };
	struct ei_image *img = NULL;
	struct ei_err e = { 0 };
	char *text = NULL;
	int c, r, files = 0;

	while ((c = getopt_long(argc, argv, "f:", lo, NULL)) != -1) {
		switch (c) {
		case 'T':
			files = 1;
			break;
		case 'o':
			if (strcmp(optarg, "json") && strcmp(optarg, "human"))
				return cli_usage(&cmd_info, "--output takes json or human");
			ca.json = !strcmp(optarg, "json");
			break;
		default:
			r = cli_opt(&cmd_info, c, optarg, &ca);
			if (r != 1)
				return r ? r : cli_usage(&cmd_info, NULL);
		}
	}
	if (optind != argc - 1)
		return cli_usage(&cmd_info, "expected one IMAGE");
	if (files) {
		if (ca.json)
			return cli_usage(&cmd_info, "--files lists as text, not JSON");
		r = ei_files_list(argv[optind], &ca.a, info_line, NULL, cli_warn, (void *)"info", &e);
		return r < 0 ? cli_error("info", &e) : 0;
	}
	if (!ca.a.format) {
		/* a delta patch (its header) or a signing key (its key id) */
		r = ei_patch_describe(argv[optind], ca.json, &text, &e);
		if (r == EI_EFORMAT)
			r = ei_key_describe(argv[optind], ca.json, &text, &e);
		if (r < 0 && r != EI_EFORMAT && r != EI_EUNSUP)
			return cli_error("info", &e);
	}
	if (!text) {
		r = ei_image_open(argv[optind], &ca.a, &img, &e);
		if (r < 0)
			return cli_error("info", &e);
		r = ei_image_describe(img, ca.json, &text, &e);
		ei_image_close(img);
		if (r < 0)
			return cli_error("info", &e);
	}
	fputs(text, stdout);
	free(text);
	return 0;
}

const struct cmd cmd_info = {
	.name = "info",
	.summary = "show what an image, a patch or a key is",
	.usage = "info [-f FMT] [--json] [--files] [--allow-refs] [--ova-disk N|NAME] [--partition P] IMAGE|PATCH|KEY",
	.help =
	"  -f FMT         read IMAGE as FMT instead of probing its format\n"
	"  --json         print JSON with qemu-img's keys: format, virtual-size,\n"
	"                 actual-size, filename, cluster-size, format-specific,\n"
	"                 dirty-flag; and recipe (a string) and recipe-options (an\n"
	"                 object) for an image an edgeimg writer made\n"
	"  --output=json  the same, as qemu-img spells it\n"
	"  --files        list the files of IMAGE (a directory, a tarball, a\n"
	"                 squashfs root filesystem, or an image holding an\n"
	"                 ext2/3/4 or squashfs filesystem: see help convert),\n"
	"                 one line each, in walk order: TYPE MODE UID GID MTIME\n"
	"                 SIZE SHA256 PATH, TYPE one of f d l b c p s, MODE in\n"
	"                 octal, SIZE of a device MAJOR,MINOR, SHA256 of a file's\n"
	"                 data (else -), \" -> TARGET\" after a symlink,\n"
	"                 \" => FIRST\" after a hard link's later paths; then\n"
	"                 \"  xattr NAME=HEX\" lines.  Bytes of names outside\n"
	"                 0x21..0x7e and backslash print as \\ooo\n"
	"  --allow-refs   follow references to other files (backing files,\n"
	"                 parents, extents): plain names in the image's own\n"
	"                 directory only, 8 levels at most; refused without it\n"
	"  --ova-disk N|NAME  an OVA's disk to read: the Nth <Disk> of its .ovf\n"
	"                 (from 1) or the one whose file is NAME; the first\n"
	"                 without it.  info of an OVA lists every disk\n"
	"  --partition P  describe partition P of IMAGE as the disk: P is a\n"
	"                 number from 1 (as info lists them), a GPT partition\n"
	"                 name or a filesystem label; none or several matching\n"
	"                 is an error that lists the partitions.  The same\n"
	"                 option of convert, compare, delta and apply\n"
	"\nA delta patch shows its header (sizes, content hashes, target, chunks,\n"
	"signature and key id); an Ed25519 key in PEM (openssl's) its key id, the\n"
	"one a patch signed with it names.  A block device is read as raw\n"
	"unless -f says otherwise.\n"
	"\nAfter the image, info lists its partition table (GPT, with the backup\n"
	"header when the primary is bad, or MBR with extended and logical\n"
	"partitions numbered from 5): number, start and size in bytes, type (GUID\n"
	"or MBR id, and its name), GPT name and unique GUID, and the filesystem\n"
	"found at the partition's start (ext2, ext3, ext4, vfat, squashfs,\n"
	"erofs, swap or unknown) with its label and UUID; --json under\n"
	"\"partition-table\".  A disk without a table shows the filesystem over\n"
	"it, if any.  A corrupt table (bad CRCs and no valid backup, partitions\n"
	"overlapping or past the disk, loops in an EBR chain) is named in its\n"
	"place (\"partition table: corrupt: ...\", \"partition-table-error\" in\n"
	"JSON); --partition on such a disk is an error.\n",
	.run = info_run,
};
