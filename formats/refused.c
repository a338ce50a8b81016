// SPDX-License-Identifier: MIT
/*
 * Files edgeimg recognises but does not read as disks in this build,
 * refused by name so that the raw fallback never takes their bytes for a
 * disk: Android sparse images when CONFIG_FORMAT_SIMG is off (simg.c reads
 * them otherwise; AOSP system/core/libsparse/sparse_format.h: magic
 * 0xed26ff3a, little-endian, at 0).  Tar archives that are not OVAs are
 * refused by ova.c, which parses tar headers.  -f raw still reads any of
 * them as bytes.
 */
#include <stddef.h>

#include "core/bytes.h"
#include "core/format.h"

#define SIMG_MAGIC 0xed26ff3au

static int simg_probe(const uint8_t *head, size_t head_len,
		      const uint8_t *tail, size_t tail_len, uint64_t file_size)
{
	(void)tail;
	(void)tail_len;
	(void)file_size;
	return head_len >= 4 && get_le32(head) == SIMG_MAGIC ? PROBE_REFUSED : 0;
}

static int simg_refuse(struct vdisk *vd, struct err *e)
{
	return err_set(e, EI_EUNSUP,
		       "%s is an Android sparse image: not supported by this build (CONFIG_FORMAT_SIMG); expand it with simg2img, or read its bytes with -f raw",
		       vd->io->name);
}

const struct img_format fmt_simg = {
	.name = "simg",
	.desc = "Android sparse image",
	.probe = simg_probe,
	.open = simg_refuse,
};
