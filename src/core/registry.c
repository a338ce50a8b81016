// SPDX-License-Identifier: MIT
/* The one list of formats, gated by Kconfig; raw last. */
#include <stdio.h>
#include <string.h>

#include "core/bytes.h"
#include "core/format.h"
#include "core/io.h"
#include "generated/features.h"
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
#if IS_ENABLED(CONFIG_FORMAT_SIMG)
	&fmt_simg,
#endif
	&fmt_raw,
	NULL,
};

const struct img_format *const img_refused[] = {
#if IS_ENABLED(CONFIG_FORMAT_OVA)
	&fmt_tar,
#endif
#if !IS_ENABLED(CONFIG_FORMAT_SIMG)
	&fmt_simg,
#endif
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

/* The formats this build reads, or (@for_write) writes. */
static int format_usable(const struct img_format *f, int for_write)
{
	return for_write ? f->write != NULL : f->open != NULL;
}

size_t format_suggest(const char *name, int for_write, char *buf, size_t len)
{
	struct str_near near = { .typo = name };
	size_t at = 0;
	int n = 0;

	if (len)
		buf[0] = 0;
	for (const struct img_format *const *f = img_formats; *f; f++) {
		if (!format_usable(*f, for_write))
			continue;
		str_near_add(&near, (*f)->name);
		if ((*f)->alias)
			str_near_add(&near, (*f)->alias);
	}
	if (near.best)
		at = text_addf(buf, len, at, "did you mean '%s'? ", near.best);
	at = text_addf(buf, len, at, "valid:");
	for (const struct img_format *const *f = img_formats; *f; f++)
		if (format_usable(*f, for_write))
			at = text_addf(buf, len, at, "%s %s", n++ ? "," : "", (*f)->name);
	return at;
}

int format_lookup(const char *name, int for_write,
		  const struct img_format **out, struct err *e)
{
	const struct img_format *f = format_find(name);
	char hint[256];

	if (f && format_usable(f, for_write)) {
		*out = f;
		return 0;
	}
	format_suggest(name, for_write, hint, sizeof(hint));
	if (f || for_write)
		return err_set(e, EI_EUSAGE, "cannot %s format '%s'; %s",
			       for_write ? "write" : "read", name, hint);
	return err_set(e, EI_EUSAGE, "unknown format '%s'; %s", name, hint);
}

/* A writer= of a recipe: "0.1.0", "1.2", "0.2.0-rc1", "1.0.0+git.abc". */
static int writer_version_ok(const char *s)
{
	size_t n = strlen(s), i = 0;
	unsigned parts = 0;

	if (!n || n >= WRITE_VERSION_MAX)
		return 0;
	for (;;) {
		size_t d = strspn(s + i, "0123456789");

		if (!d || d > 9)
			return 0;
		i += d;
		parts++;
		if (s[i] != '.' || parts == 4)
			break;
		i++;
	}
	if (s[i] == '-' || s[i] == '+') {
		size_t t = strspn(s + i + 1, "abcdefghijklmnopqrstuvwxyz"
				  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+-");

		if (!t)
			return 0;
		i += 1 + t;
	}
	return s[i] == 0;
}

/* The error for a format this build does not write, naming those it does. */
static int format_cannot_write(const char *name, struct err *e)
{
	char hint[256];

	format_suggest(name, 1, hint, sizeof(hint));
	return err_set(e, EI_EUNSUP, "this edgeimg cannot write format '%s'; %s",
		       name, hint);
}

int format_write_parse(const struct img_format *f, const struct write_opts *wopts,
		       struct write_parsed *p, struct err *e)
{
	const char *fmt, *ver;
	struct opts o;
	int r;

	memset(p, 0, sizeof(*p));
	if (!f->write)
		return format_cannot_write(f->name, e);
	r = opts_parse(wopts->options, &o, e);
	if (r < 0)
		return r;
	/* A recipe given back: "format=FMT,writer=VERSION,..." */
	fmt = opts_get(&o, "format");
	if (fmt && strcmp(fmt, f->name))
		return err_set(e, EI_EUSAGE,
			       "%s: format=%s is not %s: the recipe is for -O %s",
			       f->name, fmt, f->name, fmt);
	ver = opts_get(&o, "writer");
	if (ver) {
		if (!writer_version_ok(ver))
			return err_set(e, EI_EUSAGE,
				       "%s: writer=%s is not an edgeimg version such as %s",
				       f->name, ver, EDGEIMG_VERSION);
		snprintf(p->writer, sizeof(p->writer), "%s", ver);
		p->writer_differs = strcmp(ver, EDGEIMG_VERSION) != 0;
	}
	if (f->write_parse && (r = f->write_parse(&o, wopts, p->priv.bytes, e)) < 0)
		return r;
	r = opts_unknown(&o, f->name, f->wopts, e);
	if (r < 0)
		return r;
	/* Whole: format_write_opts() may take it for these options. */
	p->fmt = f;
	p->options = wopts->options;
	p->compress = wopts->compress;
	return 0;
}

int format_write_opts(const struct img_format *f, const struct write_opts *wopts,
		      struct write_parsed *tmp, const struct write_parsed **out,
		      struct err *e)
{
	const struct write_parsed *p = wopts->parsed;

	if (p && p->fmt == f && p->options == wopts->options &&
	    p->compress == wopts->compress) {
		*out = p;
		return 0;
	}
	*out = tmp;
	return format_write_parse(f, wopts, tmp, e);
}

int format_write_check(const char *name, const char *options, int compress,
		       struct err *e)
{
	const struct img_format *f = format_find(name);
	struct write_opts wopts = { .options = options, .compress = compress };
	struct write_parsed p;

	if (!f)
		return format_cannot_write(name, e);
	return format_write_parse(f, &wopts, &p, e);
}

size_t format_options_help(char *buf, size_t len)
{
	size_t at = 0;

	if (len)
		buf[0] = 0;
	for (const struct img_format *const *f = img_formats; *f; f++) {
		if (!(*f)->write)
			continue;
		if (!(*f)->wopts || !(*f)->wopts[0].key) {
			at = text_addf(buf, len, at, "%s: no options\n", (*f)->name);
			continue;
		}
		at = text_addf(buf, len, at, "%s:\n", (*f)->name);
		at = opts_help((*f)->wopts, buf, len, at);
	}
	at = text_addf(buf, len, at,
		       "Every writer also takes the recipe an image it made carries (as\n"
		       "\"edgeimg info\" shows it) verbatim: its format= must name the\n"
		       "writer, its writer= is the edgeimg version that made it (another\n"
		       "version is accepted; its bytes may differ).\n");
	return at;
}

int format_pick(struct io *io, const char *name,
		const struct img_format **out, struct err *e)
{
	uint8_t head[PROBE_HEAD], tail[PROBE_TAIL];
	size_t hl, tl = 0;
	int r;

	if (name) {
		*out = format_find(name);
		if (!*out)
			return err_set(e, EI_EUSAGE, "unknown format '%s'", name);
		return 0;
	}
	if (io->flags & IO_STREAM)
		return err_set(e, EI_EUNSUP,
			       "%s: not a seekable file; give a file name", io->name);
	hl = (size_t)min_u64(sizeof(head), io->size);
	r = io_read(io, head, hl, 0, "probe", e);
	if (r < 0)
		return r;
	if (io->size > hl) {
		tl = (size_t)min_u64(sizeof(tail), io->size - hl);
		r = io_read(io, tail, tl, io->size - tl, "probe", e);
		if (r < 0)
			return r;
	}
	r = format_probe(head, hl, tail, tl, io->size, out, e);
	if (r < 0)
		err_prefix(e, "%s", io->name);
	return r;
}
