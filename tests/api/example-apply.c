// SPDX-License-Identifier: MIT
/*
 * An update agent in 70 lines: apply a delta patch through libedgeimg's
 * public API alone (src/edgeimg.h), feeding the patch as it arrives, the
 * way a SWUpdate handler or an updater daemon receives it.  Built against
 * libedgeimg.a and run by "make check" (tests/cli/api.sh).
 *
 *   example-apply [--resume] [--verify PUB.pem] OLD PATCH|- OUT
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "edgeimg.h"

static void note(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "example-apply: note: %s\n", msg);
}

int main(int argc, char **argv)
{
	struct ei_apply_opts o = { 0 };
	struct ei_apply_result res;
	struct ei_apply *a = NULL;
	struct ei_err e = { 0 };
	char buf[64 * 1024], hex[2 * EI_HASH_LEN + 1];
	int i = 1, fd, r = 0;
	ssize_t n;

	for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		if (!strcmp(argv[i], "--resume"))
			o.resume = 1;
		else if (!strcmp(argv[i], "--verify") && i + 1 < argc)
			o.verify_key = argv[++i];
		else
			break;
	}
	if (argc - i != 3) {
		fprintf(stderr, "usage: example-apply [--resume] [--verify PUB.pem] OLD PATCH|- OUT\n");
		return 2;
	}
	o.old = argv[i];
	o.out = argv[i + 2];
	o.patch_name = argv[i + 1];
	o.note = note;
	fd = strcmp(argv[i + 1], "-") ? open(argv[i + 1], O_RDONLY) : STDIN_FILENO;
	if (fd < 0) {
		perror(argv[i + 1]);
		return 1;
	}
	/* begin: paths checked, locks taken, nothing written yet */
	if (ei_apply_begin(&o, &a, &e) < 0)
		goto fail;
	/* feed the patch as it comes, in whatever pieces */
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if ((r = ei_apply_feed(a, buf, (size_t)n, &e)) < 0)
			goto fail;
	if (n < 0) {
		perror(argv[i + 1]);
		ei_apply_free(a);
		return 1;
	}
	/* finish: NEW read back and verified, then OUT committed */
	if (ei_apply_finish(a, &res, &e) < 0)
		goto fail;
	ei_apply_free(a);
	printf("%s: %llu bytes, content hash %s, chunks %u..%u\n", o.out,
	       (unsigned long long)res.new_size,
	       ei_hex(res.new_hash, EI_HASH_LEN, hex), res.from_chunk, res.chunks);
	return 0;
fail:
	fprintf(stderr, "example-apply: %s (%s)\n", e.msg, ei_strerror(e.code));
	if (ei_apply_free(a))
		fprintf(stderr, "example-apply: the work done is kept: run again with --resume\n");
	return 1;
}
