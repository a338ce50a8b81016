// SPDX-License-Identifier: MIT
/*
 * edgeimg apply: OLD + PATCH -> NEW, read back and verified, resumable.  The
 * transaction is the library's (src/delta/delta-apply.c); this parses the
 * command line and prints.
 */
#include <getopt.h>
#include <string.h>

#include "cli/cli.h"

static int apply_resume_offset(const char *out, const char *state)
{
	struct ei_err e = { 0 };
	uint64_t off;

	if (ei_apply_resume_offset(out, state, &off, &e) < 0)
		return cli_error("apply", &e);
	printf("%llu\n", (unsigned long long)off);
	return 0;
}

static void apply_print(const char *out, const struct ei_apply_result *res,
			int verbose, int json, double secs)
{
	char h1[32], h2[32], x1[2 * EI_HASH_LEN + 1], x2[2 * EI_HASH_LEN + 1];

	ei_hex(res->new_hash, EI_HASH_LEN, x1);
	ei_hex(res->target_hash, EI_HASH_LEN, x2);
	if (verbose)
		fprintf(stderr, "%s: NEW %s read back and verified (content hash %s)%s%s, chunks %u..%u of %u applied, %s written%s, %.2f s\n",
			out, ei_size_str(res->new_size, h1, sizeof(h1)), x1,
			res->target[0] ? ", container " : "", res->target,
			res->from_chunk, res->chunks, res->chunks,
			ei_size_str(res->written, h2, sizeof(h2)),
			res->out_is_device ? " to the device" : "", secs);
	if (verbose && res->blocks)
		fprintf(stderr, "%s: %llu of %llu compressed blocks copied from OLD's container\n",
			out, (unsigned long long)res->blocks_copied,
			(unsigned long long)res->blocks);
	if (!json)
		return;
	printf("{\n    \"output\": ");
	ei_json_string(stdout, out);
	printf(",\n    \"new-size\": %llu,\n    \"new-hash\": \"%s\",\n    \"target\": ",
	       (unsigned long long)res->new_size, x1);
	ei_json_string(stdout, res->target[0] ? res->target : "raw");
	printf(",\n    \"target-size\": %llu,\n    \"target-hash\": \"%s\",\n"
	       "    \"written\": %llu,\n    \"chunks\": %u,\n    \"first-chunk\": %u,\n"
	       "    \"old-is-new\": %s,\n    \"output-kind\": \"%s\",\n    \"seconds\": %.3f\n}\n",
	       (unsigned long long)res->target_size, x2, (unsigned long long)res->written,
	       res->chunks, res->from_chunk, res->old_is_new ? "true" : "false",
	       res->out_is_device ? "block-device" : "file", secs);
}

static int apply_run(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "force", no_argument, NULL, 'W' },
		{ "json", no_argument, NULL, 'J' },
		CLI_IMAGE_OPTIONS,
		{ "resume", no_argument, NULL, 'r' },
		{ "resume-offset", no_argument, NULL, 'o' },
		{ "state", required_argument, NULL, 's' },
		{ "verify", required_argument, NULL, 'K' },
		{ "min-version", required_argument, NULL, 'M' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli_args ca = { 0 };
	struct ei_apply_opts o = { 0 };
	struct ei_apply_result res;
	struct ei_err e = { 0 };
	struct progress pg;
	const char *state = NULL, *patch;
	int roff = 0, c, r;
	double t0 = cli_now();
	char ckpt[4300], part[4300];

	while ((c = getopt_long(argc, argv, "f:j:pv", lo, NULL)) != -1) {
		switch (c) {
		case 'r':
			o.resume = 1;
			break;
		case 'o':
			roff = 1;
			break;
		case 's':
			state = optarg;
			break;
		case 'K':
			o.verify_key = optarg;
			break;
		case 'M':
			if (parse_u64(optarg, &o.min_version) < 0)
				return cli_usage(&cmd_apply, "--min-version takes 0..2^64-1");
			break;
		default:
			r = cli_opt(&cmd_apply, c, optarg, &ca);
			if (r != 1)
				return r ? r : cli_usage(&cmd_apply, NULL);
		}
	}
	o.threads = ca.threads;
	o.force = ca.force;
	if (roff) {
		if (optind != argc - 1)
			return cli_usage(&cmd_apply, "--resume-offset takes OUT alone");
		return apply_resume_offset(argv[optind], state);
	}
	if (optind != argc - 3)
		return cli_usage(&cmd_apply, "expected OLD, PATCH (or -) and OUT");
	patch = argv[optind + 1];
	o.old = argv[optind];
	o.old_open = ca.a;
	o.out = argv[optind + 2];
	o.state = state;
	o.patch_name = strcmp(patch, "-") ? patch : "<stdin>";
	o.note = cli_note;
	o.note_arg = (void *)"apply";
	progress_init(&pg, "apply", ca.progress);
	o.progress.fn = progress_cb;
	o.progress.arg = &pg;
	r = ei_apply(&o, patch, NULL, NULL, &res, &e);
	progress_done(&pg);
	if (r < 0) {
		r = cli_error("apply", &e);
		if (res.state_kept) {
			ei_apply_state_paths(o.out, state, ckpt, sizeof(ckpt), part, sizeof(part));
			fprintf(stderr,
				"edgeimg apply: the work done is kept in %s (and %s); run the same command with --resume to continue%s\n",
				ckpt, part, !strcmp(patch, "-") ?
				" (feed the patch from byte 'edgeimg apply --resume-offset OUT' on, or all of it)" : "");
		}
		return r;
	}
	apply_print(o.out, &res, ca.verbose, ca.json, cli_now() - t0);
	return 0;
}

const struct cmd cmd_apply = {
	.name = "apply",
	.summary = "apply a delta patch: OLD + PATCH -> NEW, read back and verified",
	.needs = 1,
	.usage = "apply [-f FMT] [--resume] [--state PREFIX] [--verify PUB.pem] [--min-version N] [-j N] [-p] [-v] [--json]\n"
		 "              [--force] [--allow-refs] [--ova-disk N|NAME] [--partition P] OLD PATCH|- OUT\n"
		 "       edgeimg apply --resume-offset [--state PREFIX] OUT",
	.help =
	"  -f FMT         read OLD as FMT (a block device is read as raw unless\n"
	"                 -f says otherwise)\n"
	"  --resume       continue an apply that was interrupted (killed, power\n"
	"                 lost, download cut) from its checkpoint; refuses a\n"
	"                 different patch or source.  Without --resume a\n"
	"                 checkpoint is discarded (with a note) and apply starts\n"
	"                 over; with it and no checkpoint, apply starts over too\n"
	"  --resume-offset  print the patch byte from which a resumed apply needs\n"
	"                 the patch (0 without a checkpoint), for a ranged download:\n"
	"                   curl -r \"$(edgeimg apply --resume-offset new.img)-\" URL |\n"
	"                     edgeimg apply --resume old.img - new.img\n"
	"                 (a stream of the whole patch works too: the chunks\n"
	"                 already applied are skipped)\n"
	"  --state PREFIX keep the checkpoint in PREFIX.edgeimg-apply (and the lock\n"
	"                 in PREFIX.edgeimg-lock); default OUT, or ./NAME for a\n"
	"                 block device /dev/NAME.  The partial NEW disk is\n"
	"                 OUT.edgeimg-part beside a file OUT (so that the final\n"
	"                 rename stays on one file system), the device itself for\n"
	"                 a raw target on a device, else PREFIX.edgeimg-part\n"
	"  --verify PUB.pem  require a patch signed by this Ed25519 public key\n"
	"                 (openssl pkey -in key.pem -pubout -out PUB.pem): an\n"
	"                 unsigned patch, another key's or a bad signature is\n"
	"                 refused before anything is written, and a chunk that is\n"
	"                 not the signed patch's own before its first byte is\n"
	"  --min-version N  refuse a patch whose patch version (delta\n"
	"                 --patch-version) is below N: no downgrade.  Trust it\n"
	"                 together with --verify, which covers the version\n"
	"  -j N           worker threads of a container writer\n"
	"  -p             show progress: in place on a terminal, else a line every\n"
	"                 few seconds\n"
	"  -v             print a summary line\n"
	"  --json         print a summary as one JSON object on standard output\n"
	"  --force        replace OUT if it is an existing regular file\n"
	"  --allow-refs   follow OLD's references to other files\n"
	"  --ova-disk N|NAME  the disk of an OVA OLD to read (see help info)\n"
	"  --partition P  OLD is partition P of the image or device OLD (a\n"
	"                 number from 1, a GPT name or a filesystem label: see\n"
	"                 help info), for a patch delta --partition P made; OUT\n"
	"                 is the NEW partition alone (a file, or the slot's own\n"
	"                 device)\n"
	"\nPATCH is read once, front to back ('-': standard input, so\n"
	"'curl -s URL | edgeimg apply old.img - new.img' works); OLD is read at\n"
	"random.  OLD's content hash is checked before anything is written: a\n"
	"patch for another source is refused and nothing is written.  A block\n"
	"device OLD bigger than the patch's OLD (a slot holding a smaller image)\n"
	"is read for the first bytes the patch names.  Every chunk is proven to\n"
	"belong to the patch, then written, synced and checkpointed.  At the end\n"
	"NEW is synced, read back from the media and its content hash checked\n"
	"(and a container target, rebuilt with the recipe's writer, likewise)\n"
	"before OUT is renamed into place.  OUT may be a block device (an\n"
	"inactive A/B slot, opened exclusively: never while mounted, never by\n"
	"two applies): it is written in place, past the image nothing is\n"
	"touched, and success is reported only after the check.  A mismatch or\n"
	"an invalid patch leaves no OUT and no state; a cut stream, an I/O\n"
	"error or a bad chunk keeps the state for --resume.  OUT is refused when\n"
	"it is OLD, the patch, or an existing patch (arguments in the wrong\n"
	"order).  Memory stays under 64 MiB.\n",
	.run = apply_run,
};
