/* SPDX-License-Identifier: MIT */
/* Format-specific details for "info": a small tree rendered as text or JSON. */
#ifndef EDGEIMG_INFO_H
#define EDGEIMG_INFO_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define INFO_MAX_NODES 256

enum info_type { INFO_STR, INFO_U64, INFO_BOOL, INFO_BEGIN, INFO_END,
		 INFO_LIST, INFO_LIST_END };

struct info_node {
	enum info_type type;
	char key[48];
	char str[208];
	uint64_t u64;
};

struct info {
	struct info_node node[INFO_MAX_NODES];
	unsigned n;
	int overflow;           /* nodes past INFO_MAX_NODES were dropped */
	uint64_t cluster_size;  /* qemu-img info's top-level cluster-size: the
				   format's allocation unit, 0 when none */
};

/* Keys follow qemu-img's names where the meaning is the same. */
void info_str(struct info *in, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void info_u64(struct info *in, const char *key, uint64_t v);
void info_bool(struct info *in, const char *key, bool v);
void info_begin(struct info *in, const char *key);     /* a nested object */
void info_end(struct info *in);
/*
 * A list: info_list(in, "extents"), then one info_begin(in, NULL) ...
 * info_end(in) object per element, then info_list_end(in).  Keys of
 * elements are ignored.
 */
void info_list(struct info *in, const char *key);
void info_list_end(struct info *in);

/*
 * info_json() - write the nodes as the members of a JSON object, at
 * @indent levels of four spaces, each member preceded by ",\n" except the
 * first when @first is set.
 */
void info_json(const struct info *in, FILE *f, int indent, bool first);

/* info_text() - write the nodes as "key: value" lines, nested by indent. */
void info_text(const struct info *in, FILE *f, int indent);

/*
 * json_string() - write @s as a quoted, escaped JSON string; bytes that
 * are not valid UTF-8 become U+FFFD, so the output is always valid JSON.
 */
void json_string(FILE *f, const char *s);

/*
 * text_string() - write @s for a terminal: control characters (escape
 * sequences of a hostile image) and invalid UTF-8 as \xNN.
 */
void text_string(FILE *f, const char *s);

/*
 * text_safe() - @s into @buf (@len bytes, truncated at a character) with
 * each byte text_string() would escape as '?': for a message.  Returns @buf.
 */
const char *text_safe(const char *s, char *buf, size_t len);

/* size_human() - "1 GiB", "1.5 MiB", as qemu-img prints sizes. */
const char *size_human(uint64_t v, char *buf, size_t len);

#endif
