// SPDX-License-Identifier: MIT
/* edgeimg: the command line, one verb per file, over the public API. */
#include <signal.h>
#include <string.h>

#include "cli/cli.h"

static const struct cmd *const cmds[] = {
	&cmd_info,
	&cmd_convert,
	&cmd_compare,
	&cmd_delta,
	&cmd_apply,
	&cmd_check,
	NULL,
};

static int cmd_built(const struct cmd *c)
{
	return !c->needs || ei_has_feature("CODEC_ZSTD");
}

static void main_usage(FILE *f)
{
	fprintf(f, "usage: edgeimg [--version] VERB [OPTIONS] ARGS\n\n");
	for (const struct cmd *const *c = cmds; *c; c++)
		if (cmd_built(*c))
			fprintf(f, "  %-10s %s\n", (*c)->name, (*c)->summary);
	fprintf(f, "\n'edgeimg help VERB' describes a verb.\n");
}

/*
 * The verb called @name, or NULL after saying why there is none: no such
 * verb, or one this build was configured without.
 */
static const struct cmd *cmd_find(const char *name)
{
	for (const struct cmd *const *c = cmds; *c; c++) {
		if (strcmp((*c)->name, name))
			continue;
		if (cmd_built(*c))
			return *c;
		fprintf(stderr, "edgeimg: '%s' is not in this build: it needs CONFIG_CODEC_ZSTD (see 'edgeimg --version')\n",
			name);
		return NULL;
	}
	fprintf(stderr, "edgeimg: no verb '%s'\n", name);
	return NULL;
}

int main(int argc, char **argv)
{
	const struct cmd *c;

	/* a file size limit is an error (EFBIG) to report, not a signal */
	signal(SIGXFSZ, SIG_IGN);
	if (argc < 2) {
		main_usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("edgeimg %s\nfeatures: %s\n", ei_version(), ei_features());
		return 0;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		if (argc > 2) {
			c = cmd_find(argv[2]);
			if (!c)
				return EXIT_USAGE;
			cli_help(c);
			return 0;
		}
		main_usage(stdout);
		return 0;
	}
	c = cmd_find(argv[1]);
	if (!c) {
		main_usage(stderr);
		return EXIT_USAGE;
	}
	for (int i = 2; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			cli_help(c);
			return 0;
		}
	}
	return c->run(argc - 1, argv + 1);
}
