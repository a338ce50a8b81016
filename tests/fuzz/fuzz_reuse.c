// SPDX-License-Identifier: MIT
/*
 * libFuzzer entry point for the reuse indexes ("convert --reuse OLD" and
 * apply's container copies): the input is OLD, a qcow2 or squashfs that
 * names its own recipe; each writer's reuse_open() indexes its blocks
 * (every descriptor and length checked), then every block of its disk is
 * looked up, which copies the stored bytes of each hit.  Seeds:
 * seed-reuse.sh, containers the edgeimg binary wrote.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/format.h"

#define FUZZ_MAX_READ (16u << 20)
#define FUZZ_BLOCK_MAX (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Look up each @bs-byte block of @vd's disk in @r. */
static void fuzz_lookups(struct vdisk *vd, const struct block_reuse *r, size_t bs)
{
	static uint8_t in[FUZZ_BLOCK_MAX], out[FUZZ_BLOCK_MAX];
	struct err e = { 0 };

	for (uint64_t off = 0; off + bs <= vd->size && off < FUZZ_MAX_READ; off += bs) {
		size_t n;
		int raw;

		if (vdisk_read(vd, in, bs, off, &e) < 0)
			return;
		r->lookup(r, in, bs, out, bs - 1, &n, &raw, &e);
	}
}

static void fuzz_reuse(const char *path, const char *fmt, const char *recipe)
{
	const struct img_format *f = format_find(fmt);
	struct open_opts oo = { .max_table = 4u << 20 };
	struct block_reuse *r = NULL;
	struct vdisk *vd = NULL;
	struct err e = { 0 };
	size_t bs;

	if (!f || !f->reuse_open)
		return;
	if (f->reuse_open(path, &oo, recipe, &r, &e) < 0 || !r)
		return;
	/* the block size the recipe names, as the writer would look up */
	bs = strstr(recipe, "cluster_size=") ? strtoul(strstr(recipe, "cluster_size=") + 13, NULL, 10) :
	     strstr(recipe, "block_size=") ? strtoul(strstr(recipe, "block_size=") + 11, NULL, 10) : 0;
	oo.format = fmt;
	if (bs >= 512 && bs <= FUZZ_BLOCK_MAX && vdisk_open(path, &oo, &vd, &e) >= 0) {
		fuzz_lookups(vd, r, bs);
		vdisk_close(vd);
	}
	r->free(r);
}

/* A root filesystem is no disk: its recipe is the tagged line in its bytes. */
static int fuzz_tree_recipe(const uint8_t *data, size_t size, char *buf, size_t len)
{
	static const char tag[] = "edgeimg-recipe:";
	const uint8_t *p = memmem(data, size, tag, sizeof(tag) - 1), *end;

	if (!p)
		return 0;
	p += sizeof(tag) - 1;
	end = memchr(p, '\n', size - (size_t)(p - data));
	if (!end || (size_t)(end - p) >= len)
		return 0;
	memcpy(buf, p, (size_t)(end - p));
	buf[end - p] = 0;
	return (int)(end - p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const fmts[] = { "qcow2", "squashfs" };
	char path[64], recipe[2048];
	int fd = memfd_create("fuzz-reuse", 0);

	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		struct open_opts oo = { .format = fmts[i], .max_table = 4u << 20 };
		struct vdisk *vd;
		struct err e = { 0 };
		int n = -1;

		if (!format_find(fmts[i]))
			continue;
		/* the container's own recipe: what makes it an OLD to take from */
		if (vdisk_open(path, &oo, &vd, &e) >= 0) {
			if (vd->fmt->recipe)
				n = vd->fmt->recipe(vd, recipe, sizeof(recipe), &e);
			vdisk_close(vd);
		} else if (!strcmp(fmts[i], "squashfs")) {
			n = fuzz_tree_recipe(data, size, recipe, sizeof(recipe));
		}
		if (n > 0)
			fuzz_reuse(path, fmts[i], recipe);
	}
	close(fd);
	return 0;
}
