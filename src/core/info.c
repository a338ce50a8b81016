// SPDX-License-Identifier: MIT
/* The info tree and its two renderings. */
#include <stdarg.h>
#include <string.h>

#include "core/info.h"

static struct info_node *info_add(struct info *in, enum info_type t,
				  const char *key)
{
	struct info_node *n;

	if (in->n == INFO_MAX_NODES) {
		in->overflow = 1;
		return NULL;
	}
	n = &in->node[in->n++];
	memset(n, 0, sizeof(*n));
	n->type = t;
	if (key)
		snprintf(n->key, sizeof(n->key), "%s", key);
	return n;
}

void info_str(struct info *in, const char *key, const char *fmt, ...)
{
	struct info_node *n = info_add(in, INFO_STR, key);
	va_list ap;

	if (!n)
		return;
	va_start(ap, fmt);
	vsnprintf(n->str, sizeof(n->str), fmt, ap);
	va_end(ap);
}

void info_u64(struct info *in, const char *key, uint64_t v)
{
	struct info_node *n = info_add(in, INFO_U64, key);

	if (n)
		n->u64 = v;
}

void info_bool(struct info *in, const char *key, bool v)
{
	struct info_node *n = info_add(in, INFO_BOOL, key);

	if (n)
		n->u64 = v;
}

void info_begin(struct info *in, const char *key)
{
	info_add(in, INFO_BEGIN, key);
}

void info_end(struct info *in)
{
	info_add(in, INFO_END, NULL);
}

void info_list(struct info *in, const char *key)
{
	info_add(in, INFO_LIST, key);
}

void info_list_end(struct info *in)
{
	info_add(in, INFO_LIST_END, NULL);
}

/* The length of the valid UTF-8 sequence at @s, or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n;
	uint32_t c;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, c = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, c = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, c = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	/* no overlong forms, no surrogates, nothing past U+10FFFF */
	if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	return n;
}

void json_string(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	fputc('"', f);
	while (*s) {
		size_t n = utf8_len(s);

		if (!n) {
			fputs("\\ufffd", f);
			s++;
		} else if (*s == '"' || *s == '\\') {
			fprintf(f, "\\%c", *s++);
		} else if (*s < 0x20 || *s == 0x7f) {
			fprintf(f, "\\u%04x", *s++);
		} else {
			fwrite(s, 1, n, f);
			s += n;
		}
	}
	fputc('"', f);
}

void text_string(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	while (*s) {
		size_t n = utf8_len(s);

		/* C1 controls (U+0080..U+009F) start escape sequences too */
		if (!n || *s < 0x20 || *s == 0x7f || (n == 2 && s[0] == 0xc2 && s[1] < 0xa0)) {
			fprintf(f, "\\x%02x", *s++);
		} else {
			fwrite(s, 1, n, f);
			s += n;
		}
	}
}

const char *text_safe(const char *str, char *buf, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t k = 0;

	while (*s && k + 1 < len) {
		size_t n = utf8_len(s);

		/* what text_string() escapes, as one '?' a byte */
		if (!n || *s < 0x20 || *s == 0x7f || (n == 2 && s[0] == 0xc2 && s[1] < 0xa0)) {
			buf[k++] = '?';
			s++;
		} else if (k + n < len) {
			memcpy(buf + k, s, n);
			k += n;
			s += n;
		} else {
			break;
		}
	}
	buf[k] = 0;
	return buf;
}

const char *size_human(uint64_t v, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB",
					    "PiB", "EiB" };
	double d = (double)v;
	unsigned i = 0;

	while (d >= 1024 && i < 6) {
		d /= 1024;
		i++;
	}
	snprintf(buf, len, "%0.3g %s", d, unit[i]);
	return buf;
}

#define INFO_DEPTH 16

void info_json(const struct info *in, FILE *f, int indent, bool first)
{
	bool in_list[INFO_DEPTH] = { false };
	int depth = 0;

	for (unsigned i = 0; i < in->n; i++) {
		const struct info_node *n = &in->node[i];

		if (n->type == INFO_END || n->type == INFO_LIST_END) {
			if (depth > 0)
				depth--;
			indent--;
			fprintf(f, "\n%*s%c", indent * 4, "",
				n->type == INFO_END ? '}' : ']');
			first = false;
			continue;
		}
		fprintf(f, "%s%*s", first ? "\n" : ",\n", indent * 4, "");
		first = false;
		if (!in_list[depth]) {
			json_string(f, n->key);
			fputs(": ", f);
		}
		switch (n->type) {
		case INFO_STR:
			json_string(f, n->str);
			break;
		case INFO_U64:
			fprintf(f, "%llu", (unsigned long long)n->u64);
			break;
		case INFO_BOOL:
			fputs(n->u64 ? "true" : "false", f);
			break;
		case INFO_BEGIN:
		case INFO_LIST:
			fputc(n->type == INFO_BEGIN ? '{' : '[', f);
			indent++;
			first = true;
			if (depth < INFO_DEPTH - 1)
				in_list[++depth] = n->type == INFO_LIST;
			break;
		default:
			break;
		}
	}
}

void info_text(const struct info *in, FILE *f, int indent)
{
	unsigned idx[INFO_DEPTH] = { 0 };
	bool in_list[INFO_DEPTH] = { false };
	int depth = 0;

	for (unsigned i = 0; i < in->n; i++) {
		const struct info_node *n = &in->node[i];
		char key[64];

		if (in_list[depth])
			snprintf(key, sizeof(key), "[%u]", idx[depth]++);
		else
			snprintf(key, sizeof(key), "%s", n->key);
		switch (n->type) {
		case INFO_STR:
			fprintf(f, "%*s%s: ", indent * 4, "", key);
			text_string(f, n->str);
			fputc('\n', f);
			break;
		case INFO_U64:
			fprintf(f, "%*s%s: %llu\n", indent * 4, "", key,
				(unsigned long long)n->u64);
			break;
		case INFO_BOOL:
			fprintf(f, "%*s%s: %s\n", indent * 4, "", key,
				n->u64 ? "true" : "false");
			break;
		case INFO_BEGIN:
		case INFO_LIST:
			fprintf(f, "%*s%s:\n", indent * 4, "", key);
			indent++;
			if (depth < INFO_DEPTH - 1) {
				in_list[++depth] = n->type == INFO_LIST;
				idx[depth] = 0;
			}
			break;
		case INFO_END:
		case INFO_LIST_END:
			indent--;
			if (depth > 0)
				depth--;
			break;
		}
	}
}
