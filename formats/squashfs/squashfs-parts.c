// SPDX-License-Identifier: MIT
/*
 * The partition table of a source disk, for "-O squashfs -o partitions=on":
 * GPT (UEFI 2.x chapter 5: primary header at LBA 1, 512- or 4096-byte
 * sectors, header and entry CRC32s checked) or MBR (four primary entries,
 * logical partitions through the EBR chain, numbered 5 and up as Linux does).
 * The source is whatever disk the user converts: every field is checked.
 */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "core/bytes.h"
#include "squashfs.h"

#define GPT_MAX_ENTRY_BYTES (1u << 20)

static void parts_guid(const uint8_t *g, char *out, size_t len)
{
	snprintf(out, len,
		 "%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X",
		 get_le32(g), get_le16(g + 4), get_le16(g + 6), g[8], g[9],
		 g[10], g[11], g[12], g[13], g[14], g[15]);
}

/* A GPT name (UTF-16LE, 36 units) as UTF-8; anything odd becomes '?'. */
static void parts_name(const uint8_t *u, char *out, size_t len)
{
	size_t o = 0;

	for (unsigned i = 0; i < 36 && o + 4 < len; i++) {
		unsigned c = get_le16(u + 2 * i);

		if (!c)
			break;
		if (c < 0x20 || c == '"' || c == '\\' || c == 0x7f ||
		    (c >= 0xd800 && c <= 0xdfff)) {
			out[o++] = '?';
		} else if (c < 0x80) {
			out[o++] = (char)c;
		} else if (c < 0x800) {
			out[o++] = (char)(0xc0 | c >> 6);
			out[o++] = (char)(0x80 | (c & 0x3f));
		} else {
			out[o++] = (char)(0xe0 | c >> 12);
			out[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
			out[o++] = (char)(0x80 | (c & 0x3f));
		}
	}
	out[o] = 0;
}

static int parts_add(struct vdisk *src, struct squashfs_ptable *pt,
		     unsigned index, uint64_t start, uint64_t size,
		     struct squashfs_part **out, struct err *e)
{
	struct squashfs_part *p;

	if (!range_ok(start, size, src->size))
		return err_set(e, EI_ECORRUPT,
			       "squashfs: partitions=on: partition %u at %llu+%llu ends past the disk's %llu bytes",
			       index, (unsigned long long)start,
			       (unsigned long long)size,
			       (unsigned long long)src->size);
	if (pt->n == SQFS_MAX_PARTS)
		return err_set(e, EI_ELIMIT,
			       "squashfs: partitions=on: more than %u partitions",
			       SQFS_MAX_PARTS);
	p = &pt->part[pt->n++];
	memset(p, 0, sizeof(*p));
	p->index = index;
	p->start = start;
	p->size = size;
	snprintf(p->uuid, sizeof(p->uuid), "-");
	*out = p;
	return 0;
}

/* 1: a GPT at sector size @ss was parsed; 0: none there. */
static int parts_gpt(struct vdisk *src, unsigned ss, struct squashfs_ptable *pt,
		     struct err *e)
{
	uint8_t h[4096], *ents;
	uint32_t hsize, crc, n, esize;
	uint64_t elba, bytes;
	int r;

	if (src->size < 2ull * ss)
		return 0;
	r = vdisk_read(src, h, ss, ss, e);
	if (r < 0)
		return r;
	if (memcmp(h, "EFI PART", 8))
		return 0;
	hsize = get_le32(h + 12);
	if (hsize < 92 || hsize > ss)
		return err_set(e, EI_ECORRUPT,
			       "squashfs: partitions=on: GPT header size %u is not 92..%u",
			       hsize, ss);
	crc = get_le32(h + 16);
	memset(h + 16, 0, 4);
	if (crc32(0, h, hsize) != crc)
		return err_set(e, EI_EMISMATCH,
			       "squashfs: partitions=on: GPT header CRC32 mismatch");
	elba = get_le64(h + 72);
	n = get_le32(h + 80);
	esize = get_le32(h + 84);
	if (esize < 128 || esize % 8 || esize > 4096)
		return err_set(e, EI_ECORRUPT,
			       "squashfs: partitions=on: GPT entry size %u is not 128..4096",
			       esize);
	bytes = (uint64_t)n * esize;
	if (bytes > GPT_MAX_ENTRY_BYTES)
		return err_set(e, EI_ELIMIT,
			       "squashfs: partitions=on: GPT entry array of %llu bytes exceeds %u",
			       (unsigned long long)bytes, GPT_MAX_ENTRY_BYTES);
	if (elba > src->size / ss || !range_ok(elba * ss, bytes, src->size))
		return err_set(e, EI_ECORRUPT,
			       "squashfs: partitions=on: GPT entries at LBA %llu are outside the disk",
			       (unsigned long long)elba);
	ents = malloc(bytes ? bytes : 1);
	if (!ents)
		return err_set(e, -ENOMEM, "squashfs: out of memory");
	r = vdisk_read(src, ents, bytes, elba * ss, e);
	if (r >= 0 && crc32(0, ents, (uInt)bytes) != get_le32(h + 88))
		r = err_set(e, EI_EMISMATCH,
			    "squashfs: partitions=on: GPT entry array CRC32 mismatch");
	for (uint32_t i = 0; r >= 0 && i < n; i++) {
		const uint8_t *p = ents + (uint64_t)i * esize;
		static const uint8_t zero[16];
		struct squashfs_part *q;
		uint64_t first = get_le64(p + 32), last = get_le64(p + 40);

		if (!memcmp(p, zero, 16))
			continue;
		if (first > last || last >= src->size / ss) {
			r = err_set(e, EI_ECORRUPT,
				    "squashfs: partitions=on: GPT partition %u spans LBA %llu..%llu, outside the disk",
				    i + 1, (unsigned long long)first,
				    (unsigned long long)last);
			break;
		}
		r = parts_add(src, pt, i + 1, first * ss, (last - first + 1) * ss,
			      &q, e);
		if (r < 0)
			break;
		parts_guid(p, q->type, sizeof(q->type));
		parts_guid(p + 16, q->uuid, sizeof(q->uuid));
		parts_name(p + 56, q->name, sizeof(q->name));
	}
	free(ents);
	if (r < 0)
		return r;
	pt->kind = "gpt";
	return 1;
}

static int parts_is_ext(unsigned type)
{
	return type == 0x05 || type == 0x0f || type == 0x85;
}

/* The logical partitions in the extended partition at @base (sectors). */
static int parts_ebr(struct vdisk *src, uint64_t base, uint64_t ext_size,
		     struct squashfs_ptable *pt, struct err *e)
{
	uint64_t cur = base;
	unsigned index = 5;

	for (;;) {
		uint8_t s[512];
		struct squashfs_part *q;
		uint64_t start, count, next;
		int r;

		if (index > 4 + SQFS_MAX_PARTS)
			return err_set(e, EI_ELIMIT,
				       "squashfs: partitions=on: more than %u logical partitions",
				       SQFS_MAX_PARTS);
		if (!range_ok(cur * 512, 512, src->size))
			return err_set(e, EI_ECORRUPT,
				       "squashfs: partitions=on: EBR at sector %llu is outside the disk",
				       (unsigned long long)cur);
		r = vdisk_read(src, s, 512, cur * 512, e);
		if (r < 0)
			return r;
		if (s[510] != 0x55 || s[511] != 0xaa)
			return err_set(e, EI_ECORRUPT,
				       "squashfs: partitions=on: EBR at sector %llu has no 55AA signature",
				       (unsigned long long)cur);
		start = get_le32(s + 446 + 8);
		count = get_le32(s + 446 + 12);
		if (s[446 + 4] && count) {
			r = parts_add(src, pt, index, (cur + start) * 512,
				      count * 512, &q, e);
			if (r < 0)
				return r;
			snprintf(q->type, sizeof(q->type), "0x%02x", s[446 + 4]);
		}
		index++;
		if (!parts_is_ext(s[462 + 4]) || !get_le32(s + 462 + 12))
			return 0;
		next = base + get_le32(s + 462 + 8);
		if (next <= cur || next >= base + ext_size)
			return err_set(e, EI_ECORRUPT,
				       "squashfs: partitions=on: EBR chain goes from sector %llu to %llu",
				       (unsigned long long)cur, (unsigned long long)next);
		cur = next;
	}
}

static int parts_mbr(struct vdisk *src, struct squashfs_ptable *pt,
		     struct err *e)
{
	uint8_t s[512];
	int r;

	if (src->size < 512)
		return 0;
	r = vdisk_read(src, s, 512, 0, e);
	if (r < 0)
		return r;
	if (s[510] != 0x55 || s[511] != 0xaa)
		return 0;
	for (unsigned i = 0; i < 4; i++) {
		const uint8_t *p = s + 446 + 16 * i;

		if (p[0] & 0x7f)
			return 0;       /* a boot sector, not a partition table */
		if (p[4] == 0xee)
			return err_set(e, EI_ECORRUPT,
				       "squashfs: partitions=on: protective MBR but no valid GPT");
	}
	for (unsigned i = 0; i < 4; i++) {
		const uint8_t *p = s + 446 + 16 * i;
		uint64_t start = get_le32(p + 8), count = get_le32(p + 12);
		struct squashfs_part *q;

		if (!p[4] || !count)
			continue;
		if (parts_is_ext(p[4])) {
			r = parts_ebr(src, start, count, pt, e);
			if (r < 0)
				return r;
			continue;
		}
		r = parts_add(src, pt, i + 1, start * 512, count * 512, &q, e);
		if (r < 0)
			return r;
		snprintf(q->type, sizeof(q->type), "0x%02x", p[4]);
	}
	pt->kind = "mbr";
	return 1;
}

static int parts_by_index(const void *a, const void *b)
{
	const struct squashfs_part *x = a, *y = b;

	return x->index < y->index ? -1 : x->index > y->index;
}

int squashfs_parts_read(struct vdisk *src, struct squashfs_ptable *pt,
			struct err *e)
{
	int r;

	memset(pt, 0, sizeof(*pt));
	r = parts_gpt(src, 512, pt, e);
	if (!r)
		r = parts_gpt(src, 4096, pt, e);
	if (!r)
		r = parts_mbr(src, pt, e);
	if (r < 0)
		return r;
	if (!r || !pt->n)
		return err_set(e, EI_EUSAGE,
			       "squashfs: partitions=on, but the disk has no GPT or MBR partition");
	qsort(pt->part, pt->n, sizeof(pt->part[0]), parts_by_index);
	return 0;
}
