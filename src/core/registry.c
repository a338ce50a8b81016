// SPDX-License-Identifier: MIT
/* The one list of formats, gated by Kconfig; raw last. */
#include <string.h>

#include "core/format.h"
#include "core/kconfig.h"

extern const struct img_format fmt_raw;
extern const struct img_format fmt_squashfs;
extern const struct img_format fmt_vhdx;
extern const struct img_format fmt_qcow2;
extern const struct img_format fmt_vmdk;
extern const struct img_format fmt_ova;
extern const struct img_format fmt_craw;
extern const struct img_format fmt_vhd;
extern const struct img_format fmt_vdi;
extern const struct img_format fmt_tar;
extern const struct img_format fmt_simg;

const struct img_format *const img_formats[] = {
#if IS_ENABLED(CONFIG_FORMAT_VHD)
	&fmt_vhd,
#endif
#if IS_ENABLED(CONFIG_FORMAT_VDI)
	&fmt_vdi,
#endif
#if IS_ENABLED(CONFIG_FORMAT_OVA)
	&fmt_ova,
#endif
#if IS_ENABLED(CONFIG_FORMAT_CRAW)
	&fmt_craw,
#endif
#if IS_ENABLED(CONFIG_FORMAT_VMDK)
	&fmt_vmdk,
#endif
#if IS_ENABLED(CONFIG_FORMAT_QCOW2)
	&fmt_qcow2,
#endif
#if IS_ENABLED(CONFIG_FORMAT_VHDX)
	&fmt_vhdx,
#endif
#if IS_ENABLED(CONFIG_FORMAT_SQUASHFS)
	&fmt_squashfs,
#endif
	&fmt_raw,
	NULL,
};

const struct img_format *const img_refused[] = {
#if IS_ENABLED(CONFIG_FORMAT_OVA)
	&fmt_tar,
#endif
	&fmt_simg,
	NULL,
};

const struct img_format *format_find(const char *name)
{
	for (const struct img_format *const *f = img_formats; *f; f++)
		if (!strcmp((*f)->name, name) ||
		    ((*f)->alias && !strcmp((*f)->alias, name)))
			return *f;
	return NULL;
}

int format_probe(const uint8_t *head, size_t head_len, const uint8_t *tail,
		 size_t tail_len, uint64_t file_size,
		 const struct img_format **out, struct err *e)
{
	static const struct img_format *const *const lists[] = {
		img_formats, img_refused,
	};
	const struct img_format *best = NULL, *second = NULL;
	int best_score = 0, second_score = 0;

	for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++) {
		for (const struct img_format *const *f = lists[l]; *f; f++) {
			int s;

			if (!(*f)->probe || !(*f)->open)
				continue;
			s = (*f)->probe(head, head_len, tail, tail_len, file_size);
			if (s > best_score) {
				second = best;
				second_score = best_score;
				best = *f;
				best_score = s;
			} else if (s > second_score) {
				second = *f;
				second_score = s;
			}
		}
	}
	if (!best)
		return err_set(e, EI_EFORMAT, "no format recognises this file");
	if (second_score >= PROBE_SURE)
		return err_set(e, EI_EMULTI,
			       "looks like both %s and %s; name one with -f",
			       best->name, second->name);
	*out = best;
	return 0;
}

int format_write_check(const char *name, const char *options, int compress,
		       struct err *e)
{
	const struct img_format *f = format_find(name);
	struct write_opts wo = { .options = options, .compress = compress };

	if (!f || !f->write)
		return err_set(e, EI_EUNSUP, "this edgeimg cannot write format '%s'",
			       name);
	return f->write_check ? f->write_check(&wo, e) : 0;
}
