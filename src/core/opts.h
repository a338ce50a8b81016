/* SPDX-License-Identifier: MIT */
/* "-o key=value,key=value" option strings, as qemu-img takes them. */
#ifndef EDGEIMG_OPTS_H
#define EDGEIMG_OPTS_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define OPTS_MAX 16

struct opt_kv {
	char key[32];
	char val[224];
	int used;
};

struct opts {
	struct opt_kv kv[OPTS_MAX];
	unsigned n;
};

/* opts_parse() - split @s (may be NULL) into @o; rejects malformed input. */
int opts_parse(const char *s, struct opts *o, struct err *e);

/* opts_get() - the value of @key, marking it used, or NULL. */
const char *opts_get(struct opts *o, const char *key);

/*
 * opts_same() - whether the comma-separated KEY=VALUE strings @a (what a
 * container's recipe says) and @b (what a writer is asked) give each of
 * @keys the same value, and @a gives the first @required of them one.
 * A writer's blocks can be copied from a container only when it would
 * compress them the same way.  A key given as "KEY=DEF" reads as DEF
 * where a string lacks it.
 */
int opts_same(const char *a, const char *b, const char *const *keys, size_t n,
	      size_t required);

/* opts_str_value() - @key's value in the comma-separated KEY=VALUE string
 * @opts, into @buf ("" when absent). */
void opts_str_value(const char *opts, const char *key, char *buf, size_t len);

/*
 * One -o option a writer takes, in its format's table (img_format.wopts,
 * ended by a NULL key): the one place its key, allowed values, default
 * and help are written, from which its parser checks values, an unknown
 * key is answered ("did you mean", the valid keys) and "edgeimg help
 * convert" describes the writers.
 */
struct opt_desc {
	const char *key;
	/*
	 * What is allowed, as errors and help say it: "0.10|1.1" (choices,
	 * opt_choice(): "0.10 or 1.1") or words ("a power of two from 4 KiB
	 * to 2 MiB").  May be NULL with describe.
	 */
	const char *values;
	const char *def;        /* the default as a recipe spells it, or words */
	const char *help;       /* one line */
	uint64_t min, max;      /* opt_number(): the range, when max > 0 */
	int pow2;               /* opt_number(): powers of two only */
	/*
	 * Optional: writes the values and the default of @d into @buf, for
	 * help in place of values and def, when they depend on the build or
	 * on another option (a codec's levels, the library linked).
	 */
	void (*describe)(const struct opt_desc *d, char *buf, size_t len);
};

/*
 * opt_choice() - the index of @val among @d's "|"-separated values (of
 * d->def when @val is NULL), or EI_EUSAGE naming them: "FMT: KEY=VAL is
 * not a or b", "... is not one of a, b, c".
 */
int opt_choice(const struct opt_desc *d, const char *val, const char *fmt_name,
	       struct err *e);

/*
 * opt_number() - @val as a number or size ("64k", "1M") into *@v: 1 when
 * @val is given, 0 when it is NULL (then *@v is d->def when that is a
 * number, else untouched).  Outside d->min..d->max (when d->max > 0), not
 * a power of two when d->pow2, or not a number: EI_EUSAGE naming d->values.
 */
int opt_number(const struct opt_desc *d, const char *val, uint64_t *v,
	       const char *fmt_name, struct err *e);

/* opt_bad() - EI_EUSAGE "FMT: KEY=VAL is not VALUES", as @d says them. */
int opt_bad(const struct opt_desc *d, const char *val, const char *fmt_name,
	    struct err *e);

/*
 * opts_unknown() - EI_EUSAGE for the first key of @o no opts_get() asked
 * for: its name, the nearest key of @table when one is near ("did you
 * mean 'cluster_size'?") and @table's keys ("valid: compat, ..."), or
 * that FMT takes none; 0 when every key was asked for.
 */
int opts_unknown(struct opts *o, const char *fmt_name,
		 const struct opt_desc *table, struct err *e);

/*
 * opts_help() - append the help of @table's options to @buf at @at, as
 * text_addf() does: a "  KEY: VALUES; default DEF" line (or describe's
 * text) and an indented line of help each.
 */
size_t opts_help(const struct opt_desc *table, char *buf, size_t len, size_t at);

/* parse_size() - "4096", "64k", "1M", "2G" -> bytes; -EINVAL if not. */
int parse_size(const char *s, uint64_t *v);

/*
 * text_addf() - printf at @buf + @at (capacity @len), truncating, always
 * NUL-terminated when @len > 0; returns @at plus what the text needs, so
 * that a caller can chain calls and learn the size a full text takes.
 */
size_t text_addf(char *buf, size_t len, size_t at, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * str_distance() - how many edits (insert, delete or change a character,
 * swap two neighbours) turn @a into @b, ignoring case; strings longer
 * than STR_DISTANCE_MAX are STR_DISTANCE_FAR from anything.
 */
#define STR_DISTANCE_MAX 64
#define STR_DISTANCE_FAR 1000u
unsigned str_distance(const char *a, const char *b);

/* The nearest of several names to a mistyped one: str_near_add() each. */
struct str_near {
	const char *typo;
	const char *best;       /* NULL: none near enough */
	unsigned dist;
};

/*
 * str_near_add() - consider @name for @n->typo: kept when nearer than the
 * best so far and near enough to be what was meant: at most a third of
 * the typo's length in edits (at least 1, at most 3), or @name begins
 * with a typo of 5 characters or more (counted as 1 edit).
 */
void str_near_add(struct str_near *n, const char *name);

#endif
