// SPDX-License-Identifier: MIT
/* Option strings and sizes. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/bytes.h"
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

/* The allowed values of @d as a sentence: "a or b", "one of a, b, c". */
static void opt_values_text(const struct opt_desc *d, char *buf, size_t len)
{
	const char *v = d->values, *bar;
	unsigned n = 1;
	size_t at = 0;

	if (!v) {
		buf[0] = 0;
		if (d->describe)
			d->describe(d, buf, len);
		return;
	}
	for (const char *p = v; (p = strchr(p, '|')); p++)
		n++;
	if (n == 1) {
		snprintf(buf, len, "%s", v);
		return;
	}
	if (n > 2)
		at = text_addf(buf, len, at, "one of ");
	for (unsigned i = 0; i < n; i++, v = bar + 1) {
		bar = strchr(v, '|');
		if (!bar)
			bar = v + strlen(v);
		at = text_addf(buf, len, at, "%s%.*s",
			       !i ? "" : n == 2 ? " or " : ", ", (int)(bar - v), v);
	}
}

int opt_bad(const struct opt_desc *d, const char *val, const char *fmt_name,
	    struct err *e)
{
	char allowed[256];

	opt_values_text(d, allowed, sizeof(allowed));
	return err_set(e, EI_EUSAGE, "%s: %s=%s is not %s", fmt_name, d->key, val,
		       allowed[0] ? allowed : "a number");
}

int opt_choice(const struct opt_desc *d, const char *val, const char *fmt_name,
	       struct err *e)
{
	const char *v = d->values;
	size_t n;
	int i = 0;

	if (!val)
		val = d->def;
	n = strlen(val);
	for (;; i++) {
		const char *bar = strchr(v, '|');
		size_t len = bar ? (size_t)(bar - v) : strlen(v);

		if (len == n && !strncmp(v, val, n))
			return i;
		if (!bar)
			return opt_bad(d, val, fmt_name, e);
		v = bar + 1;
	}
}

int opt_number(const struct opt_desc *d, const char *val, uint64_t *v,
	       const char *fmt_name, struct err *e)
{
	char num[24];
	uint64_t n;

	if (!val) {
		if (d->def && parse_size(d->def, &n) == 0)
			*v = n;
		return 0;
	}
	if (parse_size(val, &n) < 0)
		return opt_bad(d, val, fmt_name, e);
	if ((d->max && (n < d->min || n > d->max)) || (d->pow2 && !is_pow2(n))) {
		snprintf(num, sizeof(num), "%llu", (unsigned long long)n);
		return opt_bad(d, num, fmt_name, e);
	}
	*v = n;
	return 1;
}

int opts_unknown(struct opts *o, const char *fmt_name,
		 const struct opt_desc *table, struct err *e)
{
	for (unsigned i = 0; i < o->n; i++) {
		struct str_near near = { .typo = o->kv[i].key };
		char valid[320];
		size_t at = 0;

		if (o->kv[i].used)
			continue;
		valid[0] = 0;
		for (const struct opt_desc *d = table; d && d->key; d++) {
			str_near_add(&near, d->key);
			at = text_addf(valid, sizeof(valid), at, "%s%s",
				       at ? ", " : "", d->key);
		}
		if (!at)
			return err_set(e, EI_EUSAGE,
				       "%s: unknown option '%s'; %s takes no options",
				       fmt_name, o->kv[i].key, fmt_name);
		return err_set(e, EI_EUSAGE, "%s: unknown option '%s'; %s%s%svalid: %s",
			       fmt_name, o->kv[i].key,
			       near.best ? "did you mean '" : "",
			       near.best ? near.best : "", near.best ? "'? " : "",
			       valid);
	}
	return 0;
}

size_t opts_help(const struct opt_desc *table, char *buf, size_t len, size_t at)
{
	for (const struct opt_desc *d = table; d && d->key; d++) {
		char allowed[256];

		if (d->describe)
			d->describe(d, allowed, sizeof(allowed));
		else
			opt_values_text(d, allowed, sizeof(allowed));
		at = text_addf(buf, len, at, "  %s: %s", d->key, allowed);
		if (!d->describe && d->def)
			at = text_addf(buf, len, at, "; default %s", d->def);
		at = text_addf(buf, len, at, "\n      %s\n", d->help);
	}
	return at;
}

size_t text_addf(char *buf, size_t len, size_t at, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(at < len ? buf + at : NULL, at < len ? len - at : 0, fmt, ap);
	va_end(ap);
	return n > 0 ? at + (size_t)n : at;
}

static unsigned min3(unsigned a, unsigned b, unsigned c)
{
	return a < b ? (a < c ? a : c) : (b < c ? b : c);
}

unsigned str_distance(const char *a, const char *b)
{
	/* Rows i-2, i-1 and i of the optimal-string-alignment table. */
	unsigned row[3][STR_DISTANCE_MAX + 1];
	size_t la = strlen(a), lb = strlen(b);

	if (la > STR_DISTANCE_MAX || lb > STR_DISTANCE_MAX)
		return STR_DISTANCE_FAR;
	for (size_t j = 0; j <= lb; j++)
		row[0][j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		unsigned *cur = row[i % 3], *prev = row[(i - 1) % 3];
		const unsigned *pprev = row[(i + 1) % 3];
		int ca = tolower((unsigned char)a[i - 1]);

		cur[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			int cb = tolower((unsigned char)b[j - 1]);

			cur[j] = min3(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb));
			if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
			    cb == tolower((unsigned char)a[i - 2]) && pprev[j - 2] + 1 < cur[j])
				cur[j] = pprev[j - 2] + 1;
		}
	}
	return row[la % 3][lb];
}

void str_near_add(struct str_near *n, const char *name)
{
	size_t tl = strlen(n->typo), limit = tl / 3;
	unsigned d = str_distance(n->typo, name);

	/* A name cut short ("compression" for compression_type) is near too. */
	if (tl >= 5 && d > 1 && !strncasecmp(name, n->typo, tl))
		d = 1;
	limit = limit < 1 ? 1 : limit > 3 ? 3 : limit;
	if (d <= limit && (!n->best || d < n->dist)) {
		n->best = name;
		n->dist = d;
	}
}

void opts_str_value(const char *opts, const char *key, char *buf, size_t len)
{
	size_t kl = strlen(key);

	buf[0] = 0;
	for (const char *p = opts; p && *p;) {
		const char *c = strchr(p, ',');
		size_t n = c ? (size_t)(c - p) : strlen(p);

		if (n > kl && p[kl] == '=' && !memcmp(p, key, kl)) {
			snprintf(buf, len, "%.*s", (int)(n - kl - 1), p + kl + 1);
			return;
		}
		p = c ? c + 1 : NULL;
	}
}

int opts_same(const char *a, const char *b, const char *const *keys, size_t n,
	      size_t required)
{
	char va[80], vb[80], key[64];

	for (size_t i = 0; i < n; i++) {
		const char *def = strchr(keys[i], '=');

		snprintf(key, sizeof(key), "%.*s",
			 (int)(def ? (size_t)(def - keys[i]) : strlen(keys[i])), keys[i]);
		opts_str_value(a, key, va, sizeof(va));
		opts_str_value(b, key, vb, sizeof(vb));
		if (def && !va[0])
			snprintf(va, sizeof(va), "%s", def + 1);
		if (def && !vb[0])
			snprintf(vb, sizeof(vb), "%s", def + 1);
		if (strcmp(va, vb) || (i < required && !va[0]))
			return 0;
	}
	return 1;
}
