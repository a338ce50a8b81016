/* SPDX-License-Identifier: MIT */
/* What the verbs share: the verb table, output files, progress, messages. */
#ifndef EDGEIMG_CLI_H
#define EDGEIMG_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "core/err.h"
#include "core/io.h"

/* Exit codes (compare uses 0/1/2 as qemu-img compare does). */
#define EXIT_ERROR 1
#define EXIT_USAGE 2

struct cmd {
	const char *name;
	const char *summary;    /* one line for "edgeimg help" */
	const char *usage;      /* the synopsis, without "usage: edgeimg " */
	const char *help;       /* options and behaviour */
	int (*run)(int argc, char **argv);
};

extern const struct cmd cmd_info, cmd_convert, cmd_compare;
extern const struct cmd cmd_delta, cmd_apply;

/* patch_info() - "info" of a delta patch: an exit code, or -1 if @path is none. */
int patch_info(const char *path, int json);
extern const struct cmd cmd_check;

/* cli_error() - print "edgeimg VERB: message" for @e on stderr. */
void cli_error(const char *verb, const struct err *e);

/* cli_usage() - print @c's usage line and return EXIT_USAGE. */
int cli_usage(const struct cmd *c, const char *why);

/* cli_help() - print @c's full help on stdout. */
void cli_help(const struct cmd *c);

/* size_human() - "1 GiB", "1.5 MiB", as qemu-img prints sizes. */
const char *size_human(uint64_t v, char *buf, size_t len);

/*
 * An output file that appears whole or not at all: a regular file is
 * written under a temporary name in the same directory and renamed on
 * commit; a block device is written in place.
 */
struct outfile {
	struct io *io;
	char path[4096];
	char tmp[4096];         /* "" for a block device */
};

/*
 * outfile_create() - refuse an existing regular @path unless @force, else
 * create the temporary.  Signals and errors remove it (outfile_abort()).
 */
int outfile_create(struct outfile *of, const char *path, int force,
		   struct err *e);

/* outfile_commit() - sync, rename into place, sync the directory. */
int outfile_commit(struct outfile *of, struct err *e);

/* outfile_abort() - close and remove whatever was written. */
void outfile_abort(struct outfile *of);

/* A progress indicator on stderr, only when stderr is a terminal. */
struct progress {
	int on;
	int last;               /* last hundredth of a percent printed */
};

void progress_init(struct progress *p, int wanted);
void progress_cb(void *arg, uint64_t done, uint64_t total);
void progress_done(struct progress *p);

/* threads_resolve() - 0 means one per core; 1 when built without threads. */
unsigned threads_resolve(unsigned n);

/* parse_threads() - "-j N": 1..256, or 0 for one per core. */
int parse_threads(const char *s, unsigned *out);

/* The long options of every verb that opens images, for its option table. */
#define CLI_IMAGE_OPTIONS                                        \
	{ "allow-refs", no_argument, NULL, 'R' },                \
	{ "ova-disk", required_argument, NULL, 'D' }

struct open_opts;

/*
 * cli_image_opt() - apply option @c of CLI_IMAGE_OPTIONS (argument @arg)
 * to @oo; 0 when @c is not one of them.
 */
int cli_image_opt(int c, const char *arg, struct open_opts *oo);

#endif
