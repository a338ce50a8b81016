/* SPDX-License-Identifier: MIT */
/* "-o key=value,key=value" option strings, as qemu-img takes them. */
#ifndef EDGEIMG_OPTS_H
#define EDGEIMG_OPTS_H

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

/* opts_get_u64() - parse @key as a size ("64k", "1M"); 1 if set, 0 if not. */
int opts_get_u64(struct opts *o, const char *key, uint64_t *v,
		 const char *fmt_name, struct err *e);

/* opts_unused() - error naming the first key no opts_get() asked for. */
int opts_unused(struct opts *o, const char *fmt_name, struct err *e);

/* parse_size() - "4096", "64k", "1M", "2G" -> bytes; -EINVAL if not. */
int parse_size(const char *s, uint64_t *v);

#endif
