// SPDX-License-Identifier: MIT
/* What the verbs share: messages, exit codes, progress, option parsing. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

int cli_error(const char *verb, const struct ei_err *e)
{
	fprintf(stderr, "edgeimg %s: %s\n", verb,
		e->msg[0] ? e->msg : ei_strerror(e->code));
	return e->code == EI_EUSAGE ? EXIT_USAGE : EXIT_ERROR;
}

int cli_error_in(const char *verb, const char *which, const struct ei_err *e)
{
	fprintf(stderr, "edgeimg %s: %s: %s\n", verb, which,
		e->msg[0] ? e->msg : ei_strerror(e->code));
	return e->code == EI_EUSAGE ? EXIT_USAGE : EXIT_ERROR;
}

int cli_usage(const struct cmd *c, const char *why)
{
	if (why)
		fprintf(stderr, "edgeimg %s: %s\n", c->name, why);
	fprintf(stderr, "usage: edgeimg %s\nTry 'edgeimg help %s'.\n", c->usage,
		c->name);
	return EXIT_USAGE;
}

void cli_help(const struct cmd *c)
{
	printf("usage: edgeimg %s\n\n%s\n\n%s", c->usage, c->summary, c->help);
	if (c == &cmd_convert) {
		char *o = ei_writer_options();

		if (o && o[0])
			printf("\nThe -o options of each output format, with their defaults:\n%s%s",
			       o, o[strlen(o) - 1] == '\n' ? "" : "\n");
		free(o);
	}
}

void cli_note(void *verb, const char *msg)
{
	fprintf(stderr, "edgeimg %s: note: %s\n", (const char *)verb, msg);
}

void cli_warn(void *verb, const char *msg)
{
	fprintf(stderr, "edgeimg %s: warning: %s\n", (const char *)verb, msg);
}

double cli_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- progress ------------------------------------------------------------ */

#define PROGRESS_EVERY 5.0      /* seconds between lines when not a terminal */

void progress_init(struct progress *p, const char *verb, int wanted)
{
	memset(p, 0, sizeof(*p));
	p->on = wanted;
	p->tty = isatty(STDERR_FILENO);
	p->verb = verb;
	p->last = -1;
	p->t0 = cli_now();
	p->next = p->t0 + PROGRESS_EVERY;
	if (p->on && p->tty)
		progress_cb(p, 0, 1);
}

void progress_cb(void *arg, uint64_t done, uint64_t total)
{
	struct progress *p = arg;
	char s1[32], s2[32];
	double now;
	int pct;

	if (!p->on || !total)
		return;
	pct = (int)((double)done * 10000.0 / (double)total);
	if (pct == p->last)
		return;
	p->last = pct;
	if (p->tty) {
		fprintf(stderr, "\r    (%d.%02d/100%%)", pct / 100, pct % 100);
		return;
	}
	now = cli_now();
	if (now < p->next && done < total)
		return;
	p->next = now + PROGRESS_EVERY;
	fprintf(stderr, "edgeimg %s: %d.%02d%% (%s of %s), %.1f s\n", p->verb,
		pct / 100, pct % 100, ei_size_str(done, s1, sizeof(s1)),
		ei_size_str(total, s2, sizeof(s2)), now - p->t0);
}

void progress_done(struct progress *p)
{
	if (p->on && p->tty)
		fputc('\n', stderr);
}

/* --- options ------------------------------------------------------------- */

int cli_opt(const struct cmd *cmd, int c, const char *arg, struct cli_args *ca)
{
	uint64_t n;

	switch (c) {
	case 'f':
		ca->a.format = arg;
		break;
	case 'F':
		ca->b.format = arg;
		break;
	case 'R':
		ca->a.allow_refs = ca->b.allow_refs = 1;
		break;
	case 'D':
		ca->a.ova_disk = ca->b.ova_disk = arg;
		break;
	case 'P':
		if (!arg[0])
			return cli_usage(cmd, "--partition takes a number from 1, a GPT partition name or a filesystem label");
		ca->a.partition = ca->b.partition = arg;
		break;
	case 'j':
		if (parse_u64(arg, &n) < 0 || n > 256)
			return cli_usage(cmd, "-j takes 0..256");
		ca->threads = (unsigned)n;
		break;
	case 'p':
		ca->progress = 1;
		break;
	case 'v':
		ca->verbose = 1;
		break;
	case 'W':
		ca->force = 1;
		break;
	case 'J':
		ca->json = 1;
		break;
	default:
		return 0;
	}
	return 1;
}

int parse_u64(const char *s, uint64_t *v)
{
	unsigned long long n;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*v = n;
	return 0;
}

