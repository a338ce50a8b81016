/* SPDX-License-Identifier: MIT */
/*
 * ustar/GNU tar header fields, for the readers that check headers
 * themselves: the OVA reader (formats/ova.c) and the tar source's probe
 * (src/files/tar-read.c).
 */
#ifndef EDGEIMG_TARHDR_H
#define EDGEIMG_TARHDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TAR_HDR_SIZE 512

static inline bool tar_posix_magic(const uint8_t *h)
{
	return !memcmp(h + 257, "ustar\0" "00", 8);
}

static inline bool tar_gnu_magic(const uint8_t *h)
{
	return !memcmp(h + 257, "ustar  \0", 8);
}

/*
 * A numeric field: octal digits after optional leading spaces, ended by a
 * NUL or a space inside the field, or base-256 (first byte 0x80, the rest
 * big-endian).  Negative base-256 (0xff), a missing terminator, non-octal
 * bytes and values >= 2^63 are refused.  Returns 0 or -1.
 */
static inline int tar_num(const uint8_t *f, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;

	if (f[0] & 0x80) {
		if (f[0] != 0x80)
			return -1;      /* negative or an unknown encoding */
		for (i = 1; i < len; i++) {
			if (v >> 55)
				return -1;
			v = v << 8 | f[i];
		}
		if (v >> 63)
			return -1;
		*out = v;
		return 0;
	}
	while (i < len && f[i] == ' ')
		i++;
	if (i == len)
		return -1;
	for (; i < len && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v >> 60)
			return -1;
		v = v << 3 | (uint64_t)(f[i] - '0');
	}
	if (i == len || (f[i] != 0 && f[i] != ' '))
		return -1;
	*out = v;
	return 0;
}

/* The header checksum: bytes summed with the field itself as spaces. */
static inline bool tar_sum_ok(const uint8_t *h)
{
	uint64_t want;
	uint32_t u = 0;
	int32_t s = 0;

	if (tar_num(h + 148, 8, &want) < 0)
		return false;
	for (int i = 0; i < TAR_HDR_SIZE; i++) {
		uint8_t b = (i >= 148 && i < 156) ? ' ' : h[i];

		u += b;
		s += (int8_t)b;
	}
	/* Some old tars summed signed chars; both are accepted, as GNU tar does. */
	return want == u || want == (uint64_t)(uint32_t)s;
}

#endif
