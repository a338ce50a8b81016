/* SPDX-License-Identifier: MIT */
/*
 * What the verbs share: the verb table, messages, exit codes, progress and
 * the options of every verb that reads images.  The command line is a user
 * of the public API (src/edgeimg.h) and of nothing else.
 */
#ifndef EDGEIMG_CLI_H
#define EDGEIMG_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "edgeimg.h"

/* Exit codes: 0 success, 1 failure, 2 a usage error (as qemu-img). */
#define EXIT_ERROR 1
#define EXIT_USAGE 2

struct cmd {
	const char *name;
	const char *summary;    /* one line for "edgeimg help" */
	const char *usage;      /* the synopsis, without "usage: edgeimg " */
	const char *help;       /* options and behaviour */
	int (*run)(int argc, char **argv);
	int needs;              /* 1: needs delta patches in the build */
};

extern const struct cmd cmd_info, cmd_convert, cmd_compare, cmd_check;
extern const struct cmd cmd_delta, cmd_apply;

/*
 * cli_error() - print "edgeimg VERB: message" for @e; returns the exit
 * code: EXIT_USAGE for a usage error, else EXIT_ERROR.
 */
int cli_error(const char *verb, const struct ei_err *e);

/* cli_error_in() - the same, saying which input it is about ("OLD"). */
int cli_error_in(const char *verb, const char *which, const struct ei_err *e);

/* cli_usage() - print @why (may be NULL) and @c's usage; EXIT_USAGE. */
int cli_usage(const struct cmd *c, const char *why);

/* cli_help() - print @c's full help on stdout. */
void cli_help(const struct cmd *c);

/* cli_note() - an ei_*_opts note callback: "edgeimg VERB: note: MSG". */
void cli_note(void *verb, const char *msg);

/* cli_warn() - a warning callback: "edgeimg VERB: warning: MSG". */
void cli_warn(void *verb, const char *msg);

/* cli_now() - a monotonic clock in seconds. */
double cli_now(void);

/*
 * Progress (-p): on a terminal, a percentage redrawn in place; elsewhere
 * (a CI log) a line every few seconds.  Never anything without -p.
 */
struct progress {
	int on, tty;
	const char *verb;
	int last;               /* last hundredth of a percent drawn */
	double t0, next;        /* start, and when the next line is due */
};

void progress_init(struct progress *p, const char *verb, int wanted);
void progress_cb(void *arg, uint64_t done, uint64_t total);
void progress_done(struct progress *p);

/*
 * The long options of every verb that reads images, for its table; a verb
 * that takes --force or --json lists { "force", ..., 'W' } and { "json",
 * ..., 'J' } too, which cli_opt() then takes.
 */
#define CLI_IMAGE_OPTIONS                                        \
	{ "allow-refs", no_argument, NULL, 'R' },                \
	{ "ova-disk", required_argument, NULL, 'D' },             \
	{ "partition", required_argument, NULL, 'P' }

/*
 * What the verbs share on their command lines: -f for the (first) input,
 * -F for the second, --allow-refs, --ova-disk and --partition for both,
 * -j N, -p, -v, --force, --json.
 */
struct cli_args {
	struct ei_open_opts a, b;
	unsigned threads;       /* -j: 0 is one per core */
	int progress, verbose, force, json;
};

/*
 * cli_opt() - take option @c (argument @arg) of @cmd's command line into
 * @ca: 1 when it is one of the shared ones, 0 when not, or EXIT_USAGE
 * (after the usage message) when its argument is invalid.  Options a verb
 * does not take never reach here: its getopt string leaves them out.
 */
int cli_opt(const struct cmd *cmd, int c, const char *arg, struct cli_args *ca);

/* parse_u64() - a decimal number, 0..2^64-1. */
int parse_u64(const char *s, uint64_t *v);

#endif
