// SPDX-License-Identifier: MIT
/*
 * The public API of delta patches in a build without them (delta patches
 * need zstd, CONFIG_CODEC_ZSTD): every call says so.
 */
#include <stdio.h>

#include "api/api.h"

static int nodelta(struct ei_err *pub)
{
	struct err e = { 0 };

	return api_err(pub, &e, err_set(&e, EI_EUNSUP,
					"this edgeimg is built without delta patches (they need CODEC_ZSTD)"));
}

int ei_delta(struct ei_image *old, struct ei_image *new, const char *patch,
	     const struct ei_delta_opts *o, struct ei_delta_result *res,
	     struct ei_err *e)
{
	return nodelta(e);
}

int ei_patch_describe(const char *path, int json, char **text, struct ei_err *e)
{
	return nodelta(e);
}

int ei_key_describe(const char *path, int json, char **text, struct ei_err *e)
{
	return nodelta(e);
}

int ei_apply_begin(const struct ei_apply_opts *o, struct ei_apply **out,
		   struct ei_err *e)
{
	*out = NULL;
	return nodelta(e);
}

int ei_apply_feed(struct ei_apply *a, const void *buf, size_t len,
		  struct ei_err *e)
{
	return nodelta(e);
}

int ei_apply_finish(struct ei_apply *a, struct ei_apply_result *res,
		    struct ei_err *e)
{
	return nodelta(e);
}

int ei_apply_free(struct ei_apply *a)
{
	return 0;
}

int ei_apply(const struct ei_apply_opts *o, const char *patch,
	     int (*read)(void *arg, void *buf, size_t len, size_t *got,
			 struct ei_err *e),
	     void *read_arg, struct ei_apply_result *res, struct ei_err *e)
{
	return nodelta(e);
}

int ei_apply_resume_offset(const char *out, const char *state, uint64_t *off,
			   struct ei_err *e)
{
	return nodelta(e);
}

void ei_apply_state_paths(const char *out, const char *state, char *ckpt,
			  size_t ckpt_len, char *part, size_t part_len)
{
	snprintf(ckpt, ckpt_len, "%s", "");
	snprintf(part, part_len, "%s", "");
}
