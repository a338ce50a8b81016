// SPDX-License-Identifier: MIT
/* Option strings and sizes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/opts.h"

int parse_size(const char *s, uint64_t *v)
{
	unsigned long long n;
	unsigned shift = 0;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end || (shift && n > (~0ULL >> shift)))
		return -EINVAL;
	*v = (uint64_t)n << shift;
	return 0;
}

int opts_parse(const char *s, struct opts *o, struct err *e)
{
	memset(o, 0, sizeof(*o));
	while (s && *s) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		const char *eq = memchr(s, '=', len);
		struct opt_kv *kv;
		size_t klen;

		if (!eq || eq == s)
			return err_set(e, EI_EUSAGE,
				       "option '%.*s' is not key=value", (int)len, s);
		if (o->n == OPTS_MAX)
			return err_set(e, EI_EUSAGE, "more than %d options", OPTS_MAX);
		klen = (size_t)(eq - s);
		kv = &o->kv[o->n];
		if (klen >= sizeof(kv->key) || len - klen - 1 >= sizeof(kv->val))
			return err_set(e, EI_EUSAGE, "option '%.*s' is too long",
				       (int)len, s);
		memcpy(kv->key, s, klen);
		memcpy(kv->val, eq + 1, len - klen - 1);
		for (unsigned i = 0; i < o->n; i++)
			if (!strcmp(o->kv[i].key, kv->key))
				return err_set(e, EI_EUSAGE, "option '%s' given twice",
					       kv->key);
		o->n++;
		s = comma ? comma + 1 : s + len;
	}
	return 0;
}

const char *opts_get(struct opts *o, const char *key)
{
	for (unsigned i = 0; i < o->n; i++) {
		if (!strcmp(o->kv[i].key, key)) {
			o->kv[i].used = 1;
			return o->kv[i].val;
		}
	}
	return NULL;
}

int opts_get_u64(struct opts *o, const char *key, uint64_t *v,
		 const char *fmt_name, struct err *e)
{
	const char *s = opts_get(o, key);

	if (!s)
		return 0;
	if (parse_size(s, v) < 0)
		return err_set(e, EI_EUSAGE, "%s: option %s=%s is not a size",
			       fmt_name, key, s);
	return 1;
}

int opts_unused(struct opts *o, const char *fmt_name, struct err *e)
{
	for (unsigned i = 0; i < o->n; i++)
		if (!o->kv[i].used)
			return err_set(e, EI_EUSAGE, "%s: unknown option '%s'",
				       fmt_name, o->kv[i].key);
	return 0;
}
