// SPDX-License-Identifier: MIT
/*
 * The public API (src/edgeimg.h): images, their description, compare and
 * check.  A thin layer: the work is in src/core, src/delta and formats/;
 * here the internal errors become the caller's struct ei_err.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/api.h"
#include "core/bytes.h"
#include "core/format.h"
#include "core/kconfig.h"
#include "core/limits.h"
#include "core/opts.h"
#include "core/part.h"
#include "crypto/sha.h"
#include "files/ftree.h"
#include "generated/features.h"

int api_err(struct ei_err *pub, const struct err *in, int r)
{
	if (pub && r < 0) {
		pub->code = in->code ? in->code : r;
		snprintf(pub->msg, sizeof(pub->msg), "%s",
			 in->msg[0] ? in->msg : err_name(r));
	}
	return r;
}

int api_text(FILE *f, char **buf, char **text, struct err *e)
{
	if (!f)
		return err_set(e, -ENOMEM, "out of memory");
	/* the stream sets *@buf when it is closed */
	if (fclose(f) != 0) {
		free(*buf);
		return err_set(e, -ENOMEM, "out of memory");
	}
	*text = *buf;
	return 0;
}

const char *ei_size_str(uint64_t v, char *buf, size_t len)
{
	return size_human(v, buf, len);
}

int ei_parse_size(const char *s, uint64_t *v)
{
	return parse_size(s, v);
}

char *ei_writer_options(void)
{
	size_t n = format_options_help(NULL, 0);
	char *buf = malloc(n + 1);

	if (buf)
		format_options_help(buf, n + 1);
	return buf;
}

char *ei_hex(const uint8_t *p, size_t len, char *out)
{
	return sha_hex(p, len, out);
}

void ei_json_string(FILE *f, const char *s)
{
	json_string(f, s);
}

const char *ei_strerror(int code)
{
	return err_name(code);
}

const char *ei_version(void)
{
	return EDGEIMG_VERSION;
}

const char *ei_features(void)
{
	return EDGEIMG_FEATURES;
}

int ei_has_feature(const char *name)
{
	static const char features[] = EDGEIMG_FEATURES;
	const char *p = features;
	size_t n = strlen(name);

	while (n && (p = strstr(p, name))) {
		if ((p == features || p[-1] == ' ') && (!p[n] || p[n] == ' '))
			return 1;
		p += n;
	}
	return 0;
}

/* --- formats ------------------------------------------------------------- */

int ei_format(unsigned i, struct ei_format_info *fi)
{
	const struct img_format *f;

	for (unsigned k = 0; k <= i; k++)
		if (!img_formats[k])
			return -1;
	f = img_formats[i];
	memset(fi, 0, sizeof(*fi));
	fi->name = f->name;
	fi->alias = f->alias;
	fi->desc = f->desc;
	fi->can_read = f->open != NULL;
	fi->can_write = f->write != NULL;
	fi->can_stream = api_format_streams(f);
	return 0;
}

int api_format_streams(const struct img_format *f)
{
	/* written front to back (raw: holes as zeros; craw: its seek table
	 * or index last): a pipe will do */
	return f->write && (!strcmp(f->name, "raw") || !strcmp(f->name, "craw"));
}

int api_format_check(const char *name, int for_write, struct err *e)
{
	const struct img_format *f;

	return format_lookup(name, for_write, &f, e);
}

int ei_format_check(const char *name, int for_write, struct ei_err *pub)
{
	struct err e = { 0 };

	return api_err(pub, &e, api_format_check(name, for_write, &e));
}

/* --- images -------------------------------------------------------------- */

int api_open(const char *path, const struct ei_open_opts *o, struct vdisk **out,
	     struct err *e)
{
	struct open_opts opts = { 0 };
	struct stat st;
	int r;

	if (!strcmp(path, "-"))
		return err_set(e, EI_EUSAGE,
			       "-: images are read at random, not from a pipe; give a file name");
	if (o) {
		opts.format = o->format;
		opts.allow_refs = o->allow_refs;
		opts.ova_disk = o->ova_disk;
		opts.partition = o->partition;
	}
	if (opts.format && (r = api_format_check(opts.format, 0, e)) < 0)
		return r;
	/* a device's first bytes say nothing of what it is: raw unless -f */
	if (!opts.format && stat(path, &st) == 0 && S_ISBLK(st.st_mode))
		opts.format = "raw";
	r = vdisk_open(path, &opts, out, e);
#if IS_ENABLED(CONFIG_FILES) && IS_ENABLED(CONFIG_FORMAT_SQUASHFS)
	/*
	 * A squashfs that holds no disk (a root filesystem): its files, where
	 * the caller asks.  Anything else that is no disk keeps its message.
	 */
	if (r == EI_EFORMAT && o && o->files_view && (!o->format || !strcmp(o->format, "squashfs"))) {
		struct err e2 = { 0 };
		int r2 = ftv_open_path(path, &opts, out, &e2);

		if (r2 != EI_EFORMAT) {
			r = r2;
			if (r < 0)
				*e = e2;
		}
	}
#endif
	if (r < 0) {
		if (!strstr(e->msg, path))
			err_prefix(e, "%s", path);
		return r;
	}
	if (o && o->size) {
		if (o->size > (*out)->size) {
			r = err_set(e, EI_EUSAGE,
				    "%s: asked for its first %llu bytes, it has %llu",
				    path, (unsigned long long)o->size,
				    (unsigned long long)(*out)->size);
			vdisk_close(*out);
			*out = NULL;
			return r;
		}
		(*out)->size = o->size;
	}
	return 0;
}

int ei_image_open(const char *path, const struct ei_open_opts *o,
		  struct ei_image **out, struct ei_err *pub)
{
	struct ei_image *im = calloc(1, sizeof(*im));
	struct err e = { 0 };
	int r;

	if (!im)
		return api_err(pub, &e, err_set(&e, -ENOMEM, "out of memory"));
	if (strlen(path) >= sizeof(im->path)) {
		free(im);
		return api_err(pub, &e, err_set(&e, -ENAMETOOLONG, "%s: name too long", path));
	}
	r = api_open(path, o, &im->vd, &e);
	if (r < 0) {
		free(im);
		return api_err(pub, &e, r);
	}
	snprintf(im->path, sizeof(im->path), "%s", path);
	if (o)
		im->opts = *o;
	*out = im;
	return 0;
}

void ei_image_close(struct ei_image *im)
{
	if (!im)
		return;
	vdisk_close(im->vd);
	free(im);
}

uint64_t ei_image_size(const struct ei_image *im)
{
	return im->vd->size;
}

const char *ei_image_format(const struct ei_image *im)
{
	return im->vd->fmt->name;
}

int ei_image_read(struct ei_image *im, void *buf, size_t len, uint64_t off,
		  struct ei_err *pub)
{
	struct err e = { 0 };

	return api_err(pub, &e, vdisk_read(im->vd, buf, len, off, &e));
}

int ei_image_extent(struct ei_image *im, uint64_t off, uint64_t len,
		    struct ei_extent *x, struct ei_err *pub)
{
	struct err e = { 0 };
	struct extent ext;
	int r = vdisk_extent(im->vd, off, len, &ext, &e);

	if (r < 0)
		return api_err(pub, &e, r);
	x->len = ext.len;
	x->type = ext.type == EXT_DATA ? EI_EXTENT_DATA :
		  ext.type == EXT_ZERO ? EI_EXTENT_ZERO : EI_EXTENT_HOLE;
	return 0;
}

/* The recipe as a JSON object: "format=qcow2,writer=0.2.0,k=v" -> {...}. */
static void recipe_json(FILE *f, const char *recipe)
{
	const char *p = recipe;
	int first = 1;

	fputc('{', f);
	while (*p) {
		const char *comma = strchr(p, ','), *eq;
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char key[64], val[256];

		eq = memchr(p, '=', n);
		if (eq && (size_t)(eq - p) < sizeof(key) && n - (size_t)(eq - p) - 1 < sizeof(val)) {
			snprintf(key, sizeof(key), "%.*s", (int)(eq - p), p);
			snprintf(val, sizeof(val), "%.*s", (int)(n - (size_t)(eq - p) - 1), eq + 1);
			fprintf(f, "%s\n        ", first ? "" : ",");
			json_string(f, key);
			fputs(": ", f);
			json_string(f, val);
			first = 0;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	fputs("\n    }", f);
}

/* A filesystem found over a whole disk, as "info" shows it. */
static void describe_fs(const struct part_fs *fs, int json, FILE *f)
{
	if (json) {
		fprintf(f, ",\n    \"filesystem\": {\n        \"type\": ");
		json_string(f, fs->type);
		fprintf(f, ",\n        \"label\": ");
		json_string(f, fs->label);
		fprintf(f, ",\n        \"uuid\": ");
		json_string(f, fs->uuid);
		fprintf(f, "\n    }");
		return;
	}
	fprintf(f, "filesystem: %s", fs->type);
	part_quoted(f, "label", fs->label);
	if (fs->uuid[0])
		fprintf(f, ", uuid %s", fs->uuid);
	fputc('\n', f);
}

/* The partition a --partition disk is, as "info" shows it. */
static void describe_part(const struct part *p, int json, FILE *f)
{
	if (json) {
		fprintf(f, ",\n    \"partition\": {\n        \"number\": %u,\n"
			"        \"start\": %llu,\n        \"size\": %llu,\n        \"type\": ",
			p->num, (unsigned long long)p->start, (unsigned long long)p->size);
		json_string(f, p->type);
		fprintf(f, ",\n        \"name\": ");
		json_string(f, p->name);
		fprintf(f, "\n    }");
		return;
	}
	fprintf(f, "partition: %u, start %llu, size %llu, type %s", p->num,
		(unsigned long long)p->start, (unsigned long long)p->size, p->type);
	part_quoted(f, "name", p->name);
	fputc('\n', f);
}

/* What "info" says after the format's own: the partition table or filesystem. */
static int describe_table(struct vdisk *vd, int json, FILE *f, struct err *e)
{
	struct part_table *t = malloc(sizeof(*t));
	struct part_fs fs;
	int r;

	if (!t)
		return err_set(e, -ENOMEM, "out of memory");
	r = part_read(vd, t, e);
	if (r < 0 && r != -ENOMEM) {
		/*
		 * The disk's data cannot be read (a corrupt container), or its
		 * table is corrupt (a truncated image, a hostile table): info
		 * is about the image and says so; --partition is refused.
		 */
		if (json) {
			fprintf(f, ",\n    \"partition-table-error\": ");
			json_string(f, e->msg);
		} else {
			fputs(t->read_error ? "partition table: not read: " :
			      "partition table: corrupt: ", f);
			text_string(f, e->msg);
			fputc('\n', f);
		}
		r = 0;
	} else if (r >= 0 && t->kind != PART_NONE) {
		if (json) {
			fprintf(f, ",\n    \"partition-table\": ");
			part_json(t, f, 1);
		} else {
			part_text(t, f);
		}
	} else if (r >= 0 && (r = part_probe_fs(vd, 0, vd->size, &fs, e)) >= 0 && fs.type) {
		describe_fs(&fs, json, f);
	}
	free(t);
	return r;
}

static int describe(struct ei_image *im, int json, FILE *f, struct err *e)
{
	struct vdisk *vd = im->vd;
	/* a partition (--partition) is described with its image's format */
	struct vdisk *base = part_parent(vd) ? part_parent(vd) : vd;
	const struct part *part = part_of(vd);
	struct info *fi = NULL;
	uint64_t actual = 0;
	struct stat st;
	char recipe[1100] = "";
	int r;

	if (stat(im->path, &st) == 0)
		actual = S_ISBLK(st.st_mode) ? base->io->size : (uint64_t)st.st_blocks * 512;
	if (base->fmt->info) {
		fi = calloc(1, sizeof(*fi));
		if (!fi)
			return err_set(e, -ENOMEM, "out of memory");
		r = base->fmt->info(base, fi, e);
		if (r < 0) {
			free(fi);
			return r;
		}
	}
	/* The recipe an edgeimg writer stored, if any: a bad one is not shown. */
	if (!part && base->fmt->recipe && base->fmt->recipe(base, recipe, sizeof(recipe), e) <= 0)
		recipe[0] = 0;
	if (json) {
		fprintf(f, "{\n    \"virtual-size\": %llu,\n    \"filename\": ",
			(unsigned long long)vd->size);
		json_string(f, im->path);
		fprintf(f, ",\n    \"format\": ");
		json_string(f, base->fmt->name);
		fprintf(f, ",\n    \"actual-size\": %llu", (unsigned long long)actual);
		if (fi && fi->cluster_size)
			fprintf(f, ",\n    \"cluster-size\": %llu",
				(unsigned long long)fi->cluster_size);
		if (fi && fi->n) {
			fprintf(f, ",\n    \"format-specific\": {\n        \"type\": ");
			json_string(f, base->fmt->name);
			fprintf(f, ",\n        \"data\": {");
			info_json(fi, f, 3, true);
			fprintf(f, "\n        }\n    }");
		}
		if (recipe[0]) {
			fprintf(f, ",\n    \"recipe\": ");
			json_string(f, recipe);
			fprintf(f, ",\n    \"recipe-options\": ");
			recipe_json(f, recipe);
		}
		if (part)
			describe_part(part, json, f);
		r = describe_table(vd, json, f, e);
		/* last, as qemu-img prints it */
		fprintf(f, ",\n    \"dirty-flag\": %s\n}\n", base->dirty ? "true" : "false");
	} else {
		fputs("image: ", f);
		text_string(f, im->path);
		fprintf(f, "\nfile format: %s\n", base->fmt->name);
		fprintf(f, "virtual size: %s (%llu bytes)\ndisk size: %s\n",
			size_human(vd->size, (char[32]){ 0 }, 32),
			(unsigned long long)vd->size, size_human(actual, (char[32]){ 0 }, 32));
		if (fi && fi->cluster_size)
			fprintf(f, "cluster_size: %llu\n", (unsigned long long)fi->cluster_size);
		if (recipe[0])
			fprintf(f, "recipe: %s\n", recipe);
		if (fi && fi->n) {
			fprintf(f, "Format specific information:\n");
			info_text(fi, f, 1);
		}
		if (part)
			describe_part(part, json, f);
		r = describe_table(vd, json, f, e);
	}
	free(fi);
	return r < 0 ? r : 0;
}

int ei_image_describe(struct ei_image *im, int json, char **text,
		      struct ei_err *pub)
{
	struct err e = { 0 };
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int r;

	if (!f)
		return api_err(pub, &e, err_set(&e, -ENOMEM, "out of memory"));
	r = describe(im, json, f, &e);
	if (r < 0) {
		fclose(f);
		free(buf);
		return api_err(pub, &e, r);
	}
	return api_err(pub, &e, api_text(f, &buf, text, &e));
}

/* --- compare ------------------------------------------------------------- */

/* Read [off, off+len) of @vd into @buf, zero-filling non-data extents. */
static int compare_fill(struct vdisk *vd, uint8_t *buf, size_t len,
			uint64_t off, int *all_zero, struct err *e)
{
	size_t done = 0;

	*all_zero = 1;
	while (done < len) {
		struct extent ext;
		int r = vdisk_extent(vd, off + done, len - done, &ext, e);

		if (r < 0)
			return r;
		if (ext.type == EXT_DATA) {
			r = vdisk_read(vd, buf + done, (size_t)ext.len, off + done, e);
			if (r < 0)
				return r;
			*all_zero = 0;
		} else {
			memset(buf + done, 0, (size_t)ext.len);
		}
		done += (size_t)ext.len;
	}
	return 0;
}

/*
 * 0 when [from, end) of @a and @b hold the same bytes, 1 when not (*@diff
 * set); with @b NULL, when @a reads as zero there.
 */
static int compare_range(struct vdisk *a, struct vdisk *b, uint64_t from,
			 uint64_t end, uint8_t *ba, uint8_t *bb,
			 const struct ei_progress *p, uint64_t *diff, struct err *e)
{
	for (uint64_t off = from; off < end;) {
		size_t n = (size_t)min_u64(EI_IO_CHUNK, end - off), i = 0;
		int za, zb = 1, r;

		r = compare_fill(a, ba, n, off, &za, e);
		if (r < 0)
			return r;
		if (b && (r = compare_fill(b, bb, n, off, &zb, e)) < 0)
			return r;
		if (!b && !za && !buf_is_zero(ba, n)) {
			while (!ba[i])
				i++;
			*diff = off + i;
			return 1;
		}
		if (b && !(za && zb) && memcmp(ba, bb, n)) {
			while (ba[i] == bb[i])
				i++;
			*diff = off + i;
			return 1;
		}
		off += n;
		if (p && p->fn)
			p->fn(p->arg, off, end);
	}
	return 0;
}

int ei_compare(struct ei_image *ia, struct ei_image *ib, int strict,
	       const struct ei_progress *p, uint64_t *diff, struct ei_err *pub)
{
	struct vdisk *a = ia->vd, *b = ib->vd;
	uint8_t *ba = malloc(EI_IO_CHUNK), *bb = malloc(EI_IO_CHUNK);
	uint64_t common = min_u64(a->size, b->size);
	struct err e = { 0 };
	int r;

	*diff = 0;
	if (!ba || !bb) {
		r = err_set(&e, -ENOMEM, "out of memory");
		goto out;
	}
	if (a->size != b->size && strict) {
		*diff = common;
		r = 1;
		goto out;
	}
	r = compare_range(a, b, 0, common, ba, bb, p, diff, &e);
	if (r == 0 && a->size != b->size)
		r = compare_range(a->size > b->size ? a : b, NULL, common,
				  a->size > b->size ? a->size : b->size, ba, NULL,
				  NULL, diff, &e);
out:
	free(ba);
	free(bb);
	return api_err(pub, &e, r);
}

/* --- check --------------------------------------------------------------- */

int ei_check(const char *path, const char *format,
	     void (*report)(void *arg, const char *line), void *arg,
	     struct ei_check_result *res, struct ei_err *pub)
{
	struct check_result cr = { .report = report, .report_arg = arg };
	const struct img_format *fmt = NULL;
	struct io *io = NULL;
	struct err e = { 0 };
	int r;

	memset(res, 0, sizeof(*res));
	if (format && (r = api_format_check(format, 0, &e)) < 0)
		return api_err(pub, &e, r);
	r = io_open_file(path, 0, &io, &e);
	if (r >= 0)
		r = format_pick(io, format, &fmt, &e);
	if (r >= 0 && !fmt->check) {
		io_close(io);
		err_set(&e, EI_EUNSUP, "%s: format '%s' does not support checks", path,
			fmt->name);
		api_err(pub, &e, EI_EUNSUP);
		return EI_CHECK_NONE;
	}
	if (r >= 0)
		r = fmt->check(io, &cr, &e);
	io_close(io);
	if (r < 0)
		return api_err(pub, &e, r);
	res->corruptions = cr.corruptions;
	res->leaks = cr.leaks;
	res->check_errors = cr.check_errors;
	res->image_end_offset = cr.image_end_offset;
	res->total_clusters = cr.total_clusters;
	res->allocated_clusters = cr.allocated_clusters;
	res->fragmented_clusters = cr.fragmented_clusters;
	res->compressed_clusters = cr.compressed_clusters;
	res->format = fmt->name;
	return 0;
}
