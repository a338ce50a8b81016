// SPDX-License-Identifier: MIT
/*
 * Root-filesystem tarballs (.tar, .tar.gz, .tar.xz, .tar.zst, as Buildroot
 * and Yocto make them) as a file-view source, read once as a stream through
 * libarchive with only its tar reader (ustar, pax, GNU) and its gzip, xz and
 * zstd filters enabled.  libarchive parses the headers; what makes a member
 * fit a tree is checked here, since a tar may say anything: names are
 * normalised ("./etc" is "etc", "./" the root) and refused when absolute,
 * with "..", "." or empty components, too long or too deep; a member below
 * a symlink or a file, a duplicate, a hard link to a member not seen before
 * (or to a directory), absurd sizes and ids, too many members, xattrs over
 * the file view's limits are refused naming the member.  libarchive caps
 * pax and GNU long-name headers at 1 MiB and chains of them at 32.
 *
 * The tree so far (every path seen, with what a later hard link to it needs)
 * is held in memory: it grows with the number of members and the bytes of
 * their names, capped by TAR_ENTRIES_MAX and TAR_NAMES_MAX; file data is
 * streamed (GNU sparse members too: their holes are reported by hole()).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <archive.h>
#include <archive_entry.h>

#include "core/info.h"
#include "core/io.h"
#include "core/tarhdr.h"
#include "files/ftree.h"
#include "files/tar.h"

#define TAR_ENTRIES_MAX (4u << 20)      /* members and implied directories */
#define TAR_NAMES_MAX (256u << 20)      /* bytes of paths and symlink targets held */
#define TAR_FILE_MAX (1ULL << 40)       /* bytes of one member's data */
#define TAR_BLOCK (64u << 10)           /* bytes read from the file at a time */

struct tar_node {
	uint64_t ino;
	uint64_t size;          /* FT_REG: bytes; FT_BLK, FT_CHR: major << 32 | minor */
	uint32_t path, len;     /* the path in names[] */
	uint32_t target;        /* FT_SYMLINK: its target in names[] */
	uint32_t nlink;         /* entries of the inode visited so far */
	uint32_t xattrs;        /* its xattrs in names[] (tar_keep_xattrs()) */
	uint16_t n_xattrs;
	uint8_t type;           /* enum ft_type; 0: a directory only implied by paths */
};

struct tar_src {
	struct ft_source src;
	struct io *io;
	struct archive *a;
	uint64_t pos;           /* bytes of the file handed to libarchive */
	uint8_t *buf;
	struct err ioerr;       /* the io's error behind a libarchive failure */
	int io_failed, walked;
	char what[300];
	/* every path seen: nodes, an open-addressing table of their indexes + 1 */
	struct tar_node *nodes;
	size_t n_nodes, cap_nodes;
	uint32_t *slots;
	size_t n_slots;         /* a power of two, at least twice n_nodes */
	char *names;
	size_t names_len, names_cap;
	uint64_t seed;          /* of the path hash, random: no crafted collisions */
	uint64_t member;        /* members read, for messages */
	char path[FT_PATH_MAX + 1], link[FT_PATH_MAX + 1], prev[64];
	struct ft_xattr xattrs[FT_XATTRS_MAX];
	/* the data of the regular file being visited */
	const char *cur;
	uint64_t size, dpos;    /* its size; the next offset read() may take */
	const uint8_t *blk;     /* the block libarchive gave, at blk_off */
	size_t blk_len;
	uint64_t blk_off;
	int data_eof;
};

/* ---- reading the file for libarchive ---- */

static la_ssize_t tar_read_cb(struct archive *a, void *arg, const void **buf)
{
	struct tar_src *t = arg;
	size_t n;

	(void)a;
	if (t->pos >= t->io->size)
		return 0;
	n = t->io->size - t->pos < TAR_BLOCK ? (size_t)(t->io->size - t->pos) : TAR_BLOCK;
	if (io_read(t->io, t->buf, n, t->pos, "tar", &t->ioerr) < 0) {
		t->io_failed = 1;
		archive_set_error(a, EIO, "%s", t->ioerr.msg);
		return -1;
	}
	t->pos += n;
	*buf = t->buf;
	return (la_ssize_t)n;
}

/* A reader of the file through @t's io, with the filters edgeimg allows. */
static int tar_archive_open(struct tar_src *t, int raw, struct archive **out, struct err *e)
{
	struct archive *a = archive_read_new();

	if (!a)
		return err_set(e, -ENOMEM, "tar: out of memory");
	/*
	 * WARN means libarchive lacks the library and would run an external
	 * program instead: never that on hostile input.
	 */
	if (archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
	    archive_read_support_filter_xz(a) != ARCHIVE_OK ||
	    archive_read_support_filter_zstd(a) != ARCHIVE_OK) {
		archive_read_free(a);
		return err_set(e, EI_EUNSUP, "tar: libarchive is built without zlib, liblzma or libzstd");
	}
	if ((raw ? archive_read_support_format_raw(a) : archive_read_support_format_tar(a)) !=
	    ARCHIVE_OK) {
		err_set(e, EI_EUNSUP, "tar: libarchive: %s", archive_error_string(a));
		archive_read_free(a);
		return e ? e->code : EI_EUNSUP;
	}
	t->pos = 0;
	t->io_failed = 0;
	if (archive_read_open(a, t, NULL, tar_read_cb, NULL) != ARCHIVE_OK) {
		if (t->io_failed)
			*e = t->ioerr;
		else
			err_set(e, EI_ECORRUPT, "tar: %s", archive_error_string(a));
		archive_read_free(a);
		return e ? e->code : EI_ECORRUPT;
	}
	*out = a;
	return 0;
}


/*
 * 1 when the first 512 bytes of the (decompressed) stream are a ustar or
 * GNU tar header with a right checksum: a disk image, a qcow2, a squashfs,
 * a compressed disk or zeros never are.
 */
static int tar_is_tar(struct tar_src *t, struct err *e)
{
	struct archive_entry *ae;
	struct archive *a;
	uint8_t h[512];
	size_t got = 0;
	int rc;

	rc = tar_archive_open(t, 1, &a, e);
	if (rc < 0)
		return rc == EI_ECORRUPT ? 0 : rc;
	if (archive_read_next_header(a, &ae) == ARCHIVE_OK) {
		while (got < sizeof(h)) {
			la_ssize_t n = archive_read_data(a, h + got, sizeof(h) - got);

			if (n <= 0)
				break;
			got += (size_t)n;
		}
	}
	archive_read_free(a);
	if (t->io_failed) {
		*e = t->ioerr;
		return e->code;
	}
	if (got < sizeof(h) || !(tar_posix_magic(h) || tar_gnu_magic(h)))
		return 0;
	return h[0] && tar_sum_ok(h);
}

/* ---- the paths seen ---- */

static uint64_t tar_hash(const struct tar_src *t, const char *p, size_t n)
{
	uint64_t h = t->seed ^ 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

/* The node of path @p (@n bytes), or NULL; *@slot: where it is or would go. */
static struct tar_node *tar_find(struct tar_src *t, const char *p, size_t n, size_t *slot)
{
	size_t mask = t->n_slots - 1, i = (size_t)tar_hash(t, p, n) & mask;

	for (;; i = (i + 1) & mask) {
		struct tar_node *nd;

		if (!t->slots[i]) {
			*slot = i;
			return NULL;
		}
		nd = &t->nodes[t->slots[i] - 1];
		if (nd->len == n && !memcmp(t->names + nd->path, p, n)) {
			*slot = i;
			return nd;
		}
	}
}

static int tar_grow(void **p, size_t *cap, size_t need, size_t size, struct err *e)
{
	size_t c = *cap ? *cap : 64;
	void *q;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	q = realloc(*p, c * size);
	if (!q)
		return err_set(e, -ENOMEM, "tar: out of memory for %zu paths", need);
	*p = q;
	*cap = c;
	return 0;
}

/* Copy @n bytes of @s (NULL: room for them) into names[]; *@at: where (NUL-terminated). */
static int tar_keep(struct tar_src *t, const char *s, size_t n, uint32_t *at, struct err *e)
{
	if (t->names_len + n + 1 > TAR_NAMES_MAX)
		return err_set(e, EI_ELIMIT, "tar: %s: more than %u MiB of names", t->what,
			       TAR_NAMES_MAX >> 20);
	if (tar_grow((void **)&t->names, &t->names_cap, t->names_len + n + 1, 1, e) < 0)
		return -ENOMEM;
	if (s)
		memcpy(t->names + t->names_len, s, n);
	t->names[t->names_len + n] = 0;
	*at = (uint32_t)t->names_len;
	t->names_len += n + 1;
	return 0;
}

/* A new node for path @p (@n bytes), not in the table; its slot was @slot. */
static struct tar_node *tar_add(struct tar_src *t, const char *p, size_t n, size_t slot,
				struct err *e)
{
	struct tar_node *nd;
	uint32_t at;

	if (t->n_nodes >= TAR_ENTRIES_MAX) {
		err_set(e, EI_ELIMIT, "tar: %s: more than %u members and directories", t->what,
			TAR_ENTRIES_MAX);
		return NULL;
	}
	if (tar_keep(t, p, n, &at, e) < 0 ||
	    tar_grow((void **)&t->nodes, &t->cap_nodes, t->n_nodes + 1, sizeof(*nd), e) < 0)
		return NULL;
	if ((t->n_nodes + 1) * 2 > t->n_slots) {
		size_t ns = t->n_slots * 2;
		uint32_t *s = calloc(ns, sizeof(*s));

		if (!s) {
			err_set(e, -ENOMEM, "tar: out of memory for %zu paths", t->n_nodes + 1);
			return NULL;
		}
		for (size_t i = 0; i < t->n_slots; i++) {
			const struct tar_node *o;
			size_t j;

			if (!t->slots[i])
				continue;
			o = &t->nodes[t->slots[i] - 1];
			j = (size_t)tar_hash(t, t->names + o->path, o->len) & (ns - 1);
			while (s[j])
				j = (j + 1) & (ns - 1);
			s[j] = t->slots[i];
		}
		free(t->slots);
		t->slots = s;
		t->n_slots = ns;
		tar_find(t, p, n, &slot);
	}
	nd = &t->nodes[t->n_nodes++];
	memset(nd, 0, sizeof(*nd));
	nd->path = at;
	nd->len = (uint32_t)n;
	t->slots[slot] = (uint32_t)t->n_nodes;
	return nd;
}

/* ---- members ---- */

/* "tar: FILE: member 'NAME'" (the name as given, made safe) into @buf. */
static const char *tar_member(struct tar_src *t, const char *raw, char *buf, size_t len)
{
	char safe[160];

	snprintf(buf, len, "tar: %s: member %llu '%s'", t->what, (unsigned long long)t->member,
		 text_safe(raw ? raw : "", safe, sizeof(safe)));
	return buf;
}

/*
 * @raw normalised into @out: leading "./" dropped ("./" and "." are the
 * root, ""), one trailing '/' dropped; then ft_path_ok().  @what: "name",
 * "hard link target".
 */
static int tar_norm(struct tar_src *t, const char *raw, char *out, const char *what,
		    const char *m, struct err *e)
{
	size_t n = strlen(raw);

	(void)t;
	if (raw[0] == '/')
		return err_set(e, EI_ECORRUPT, "%s: absolute %s refused", m, what);
	while (raw[0] == '.' && raw[1] == '/') {
		raw += 2;
		n -= 2;
		while (raw[0] == '/') {
			raw++;
			n--;
		}
	}
	if (n == 1 && raw[0] == '.')
		n = 0;
	if (n && raw[n - 1] == '/')
		n--;
	if (n > FT_PATH_MAX)
		return err_set(e, EI_ECORRUPT, "%s: %s of %zu bytes (at most %d)", m, what, n,
			       FT_PATH_MAX);
	memcpy(out, raw, n);
	out[n] = 0;
	if (!ft_path_ok(out)) {
		const char *p = out;

		for (const char *c = out;; c++) {
			if (*c && *c != '/')
				continue;
			if (c - p == 2 && p[0] == '.' && p[1] == '.')
				return err_set(e, EI_ECORRUPT, "%s: '..' in the %s refused", m, what);
			if (c == p)
				return err_set(e, EI_ECORRUPT, "%s: empty component in the %s", m, what);
			if (c - p == 1 && p[0] == '.')
				return err_set(e, EI_ECORRUPT, "%s: '.' component in the %s", m, what);
			if (c - p > FT_NAME_MAX)
				return err_set(e, EI_ECORRUPT, "%s: a component of %zu bytes in the %s (at most %d)",
					       m, (size_t)(c - p), what, FT_NAME_MAX);
			if (!*c)
				break;
			p = c + 1;
		}
		return err_set(e, EI_ECORRUPT, "%s: %s refused", m, what);
	}
	if (n) {
		unsigned depth = 1;

		for (size_t i = 0; i < n; i++)
			depth += out[i] == '/';
		if (depth > FT_DEPTH_MAX)
			return err_set(e, EI_ECORRUPT, "%s: %s %u directories deep (at most %d)", m,
				       what, depth, FT_DEPTH_MAX);
	}
	return 0;
}

/*
 * Make sure every directory above @p exists as a directory: a member
 * below a symlink or a file would be written through it on extraction.
 */
static int tar_parents(struct tar_src *t, const char *p, size_t n, const char *m, struct err *e)
{
	size_t slot, end = n;

	while (end > 0) {
		struct tar_node *nd;

		while (end > 0 && p[end - 1] != '/')
			end--;
		if (end == 0)
			return 0;       /* the root */
		end--;
		nd = tar_find(t, p, end, &slot);
		if (nd) {
			if (nd->type && nd->type != FT_DIR)
			{
				char up[160], safe[160];

				snprintf(up, sizeof(up), "%.*s", (int)(end < sizeof(up) ? end : sizeof(up) - 1), p);
				return err_set(e, EI_ECORRUPT, "%s: below '%s', a %s in the archive", m,
					       text_safe(up, safe, sizeof(safe)), ft_type_name(nd->type));
			}
			/* its own parents were checked when it came */
			return 0;
		}
		if (!tar_add(t, p, end, slot, e))
			return e ? e->code : -ENOMEM;
	}
	return 0;
}

static int tar_xattr_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ft_xattr *)a)->name, ((const struct ft_xattr *)b)->name);
}

/* @ae's xattrs sorted into ent (they point into @ae); POSIX ACLs warned about. */
static int tar_xattrs(struct tar_src *t, struct archive_entry *ae, struct ft_entry *ent,
		      const char *m, struct err *e)
{
	const char *name;
	const void *val;
	size_t size;
	unsigned n = 0, acl = 0;
	char sn[160], sp[160];

	if (archive_entry_xattr_count(ae) > FT_XATTRS_MAX)
		return err_set(e, EI_ECORRUPT, "%s: %d xattrs (at most %d)", m,
			       archive_entry_xattr_count(ae), FT_XATTRS_MAX);
	archive_entry_xattr_reset(ae);
	while (archive_entry_xattr_next(ae, &name, &val, &size) == ARCHIVE_OK) {
		if (!name || !name[0] || strlen(name) > FT_NAME_MAX)
			return err_set(e, EI_ECORRUPT, "%s: an xattr name of %zu bytes", m,
				       name ? strlen(name) : 0);
		if (size > FT_XATTR_MAX)
			return err_set(e, EI_ECORRUPT, "%s: xattr %s of %zu bytes (at most %d)", m,
				       text_safe(name, sn, sizeof(sn)), size, FT_XATTR_MAX);
		if (!strncmp(name, "system.posix_acl_", 17)) {
			acl = 1;
			continue;
		}
		/* what a directory source keeps, and squashfs can hold */
		if (strncmp(name, "user.", 5) && strncmp(name, "trusted.", 8) &&
		    strncmp(name, "security.", 9)) {
			ft_warnf(&t->src, "%s: extended attribute %s not kept",
				 text_safe(ent->path[0] ? ent->path : "/", sp, sizeof(sp)),
				 text_safe(name, sn, sizeof(sn)));
			continue;
		}
		t->xattrs[n].name = name;
		t->xattrs[n].value = size ? val : (const uint8_t *)"";
		t->xattrs[n].size = (uint32_t)size;
		n++;
	}
	qsort(t->xattrs, n, sizeof(t->xattrs[0]), tar_xattr_cmp);
	for (unsigned i = 1; i < n; i++) {
		struct ft_xattr *a = &t->xattrs[i - 1], *b = &t->xattrs[i];

		if (strcmp(a->name, b->name))
			continue;
		/* SCHILY.xattr and RHT.security.selinux may both say it */
		if (a->size != b->size || memcmp(a->value, b->value, a->size))
			return err_set(e, EI_ECORRUPT, "%s: xattr %s given twice with different values",
				       m, text_safe(a->name, sn, sizeof(sn)));
		memmove(a, b, (n - i) * sizeof(*a));
		n--;
		i--;
	}
	ent->xattrs = t->xattrs;
	ent->n_xattrs = n;
	if (acl || archive_entry_acl_count(ae, ARCHIVE_ENTRY_ACL_TYPE_ACCESS |
					   ARCHIVE_ENTRY_ACL_TYPE_DEFAULT |
					   ARCHIVE_ENTRY_ACL_TYPE_NFS4) > 0)
		ft_warnf(&t->src, "%s: POSIX ACL not kept",
			 text_safe(ent->path[0] ? ent->path : "/", sp, sizeof(sp)));
	return 0;
}

/* ---- data ---- */

static int tar_data_fail(struct tar_src *t, struct err *e)
{
	char m[400];

	if (t->io_failed) {
		*e = t->ioerr;
		return e->code;
	}
	return err_set(e, EI_ECORRUPT, "%s: %s", tar_member(t, t->cur, m, sizeof(m)),
		       archive_error_string(t->a));
}

/* The next block of data past dpos, or data_eof. */
static int tar_next_block(struct tar_src *t, struct err *e)
{
	const void *b;
	size_t len;
	la_int64_t off;
	char m[400];
	int r = archive_read_data_block(t->a, &b, &len, &off);

	if (r == ARCHIVE_EOF) {
		t->data_eof = 1;
		t->blk_len = 0;
		return 0;
	}
	if (r != ARCHIVE_OK)
		return tar_data_fail(t, e);
	if (off < 0 || (uint64_t)off < t->blk_off + t->blk_len || (uint64_t)off > t->size ||
	    len > t->size - (uint64_t)off)
		return err_set(e, EI_ECORRUPT,
			       "%s: data at %lld+%zu outside the file (%llu bytes) or out of order",
			       tar_member(t, t->cur, m, sizeof(m)), (long long)off, len,
			       (unsigned long long)t->size);
	t->blk = b;
	t->blk_len = len;
	t->blk_off = (uint64_t)off;
	return 0;
}

static int tar_file_read(struct ft_file *f, uint64_t off, void *buf, size_t len, struct err *e)
{
	struct tar_src *t = f->priv;
	uint8_t *p = buf;
	char m[400];

	if (off < t->dpos || off > t->size || len > t->size - off)
		return err_set(e, EI_EUSAGE, "%s: read at %llu+%zu (a stream: from %llu on, in %llu bytes)",
			       tar_member(t, t->cur, m, sizeof(m)), (unsigned long long)off, len,
			       (unsigned long long)t->dpos,
			       (unsigned long long)t->size);
	while (len) {
		uint64_t end = t->blk_off + t->blk_len;
		size_t n;

		if (off >= end && !t->data_eof) {
			if (tar_next_block(t, e) < 0)
				return e->code;
			continue;
		}
		if (t->data_eof || off < t->blk_off) {
			/* a hole: up to the next block, or to the end */
			uint64_t h = t->data_eof ? len : t->blk_off - off;

			n = h < len ? (size_t)h : len;
			memset(p, 0, n);
		} else {
			n = end - off < len ? (size_t)(end - off) : len;
			memcpy(p, t->blk + (off - t->blk_off), n);
		}
		p += n;
		off += n;
		len -= n;
	}
	t->dpos = off;
	return 0;
}

static int tar_file_hole(struct ft_file *f, uint64_t off, uint64_t *len, struct err *e)
{
	struct tar_src *t = f->priv;
	char m[400];

	*len = 0;
	if (off < t->dpos || off > t->size)
		return err_set(e, EI_EUSAGE, "%s: hole at %llu (a stream: from %llu on)",
			       tar_member(t, t->cur, m, sizeof(m)), (unsigned long long)off,
			       (unsigned long long)t->dpos);
	while (off >= t->blk_off + t->blk_len && !t->data_eof)
		if (tar_next_block(t, e) < 0)
			return e->code;
	if (t->data_eof)
		*len = t->size - off;
	else if (off < t->blk_off)
		*len = t->blk_off - off;
	return 0;
}

/* ---- the walk ---- */

/*
 * Keep @ent's xattrs in names[] for a later hard link (an inode has one
 * set; GNU tar writes none on a hard-link member): each as its name, NUL,
 * its size (4 bytes, little-endian) and its value.
 */
static int tar_keep_xattrs(struct tar_src *t, const struct ft_entry *ent, struct tar_node *nd,
			   struct err *e)
{
	size_t n = 0, at;

	nd->xattrs = UINT32_MAX;
	nd->n_xattrs = (uint16_t)ent->n_xattrs;
	if (!ent->n_xattrs)
		return 0;
	for (unsigned i = 0; i < ent->n_xattrs; i++)
		n += strlen(ent->xattrs[i].name) + 5 + ent->xattrs[i].size;
	if (tar_keep(t, NULL, n, &nd->xattrs, e) < 0)
		return e->code;
	at = nd->xattrs;
	for (unsigned i = 0; i < ent->n_xattrs; i++) {
		const struct ft_xattr *x = &ent->xattrs[i];
		size_t ln = strlen(x->name) + 1;

		memcpy(t->names + at, x->name, ln);
		at += ln;
		for (unsigned k = 0; k < 4; k++)
			t->names[at++] = (char)(x->size >> (8 * k));
		memcpy(t->names + at, x->value, x->size);
		at += x->size;
	}
	return 0;
}

/* The xattrs tar_keep_xattrs() kept for @nd, into @ent. */
static void tar_node_xattrs(struct tar_src *t, const struct tar_node *nd, struct ft_entry *ent)
{
	size_t at = nd->xattrs;

	ent->xattrs = t->xattrs;
	ent->n_xattrs = nd->n_xattrs;
	for (unsigned i = 0; i < nd->n_xattrs; i++) {
		struct ft_xattr *x = &t->xattrs[i];
		const uint8_t *p;

		x->name = t->names + at;
		at += strlen(x->name) + 1;
		p = (const uint8_t *)t->names + at;
		x->size = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			  (uint32_t)p[3] << 24;
		x->value = p + 4;
		at += 4 + x->size;
	}
}

static int tar_entry(struct tar_src *t, struct archive_entry *ae, ft_visit_fn visit, void *arg,
		     struct err *e)
{
	const char *raw = archive_entry_pathname(ae), *hl = archive_entry_hardlink(ae);
	struct ft_entry ent = { 0 };
	struct ft_file file, *fp = NULL;
	struct tar_node *nd;
	char m[400], safe[160];
	size_t n, slot, to = SIZE_MAX;
	la_int64_t uid = archive_entry_uid(ae), gid = archive_entry_gid(ae);
	int rc;

	tar_member(t, raw, m, sizeof(m));
	if (!raw)
		return err_set(e, EI_ECORRUPT, "%s: no name", m);
	if ((rc = tar_norm(t, raw, t->path, "name", m, e)) < 0)
		return rc;
	n = strlen(t->path);
	ent.path = t->path;
	switch (archive_entry_filetype(ae)) {
	case AE_IFREG: ent.type = FT_REG; break;
	case AE_IFDIR: ent.type = FT_DIR; break;
	case AE_IFLNK: ent.type = FT_SYMLINK; break;
	case AE_IFBLK: ent.type = FT_BLK; break;
	case AE_IFCHR: ent.type = FT_CHR; break;
	case AE_IFIFO: ent.type = FT_FIFO; break;
	default:
		if (!hl)
			return err_set(e, EI_ECORRUPT, "%s: file type 0%o", m,
				       (unsigned)archive_entry_filetype(ae));
	}
	if (uid < 0 || uid > UINT32_MAX || gid < 0 || gid > UINT32_MAX)
		return err_set(e, EI_ECORRUPT, "%s: uid %lld or gid %lld out of range", m,
			       (long long)uid, (long long)gid);
	ent.uid = (uint32_t)uid;
	ent.gid = (uint32_t)gid;
	ent.mode = archive_entry_mode(ae) & 07777;
	ent.mtime = archive_entry_mtime(ae);
	ent.nlink = 0;          /* unknown until the end: see ftree.h */
	if (hl) {
		const struct tar_node *tn;

		if ((rc = tar_norm(t, hl, t->link, "hard link target", m, e)) < 0)
			return rc;
		tn = tar_find(t, t->link, strlen(t->link), &slot);
		if (!tn || !tn->type)
			return err_set(e, EI_ECORRUPT, "%s: hard link to '%s', not an earlier member", m,
				       text_safe(t->link, safe, sizeof(safe)));
		if (tn->type == FT_DIR)
			return err_set(e, EI_ECORRUPT, "%s: hard link to a directory", m);
		to = (size_t)(tn - t->nodes);
		ent.type = tn->type;
	} else {
		switch (ent.type) {
		case FT_REG:
			if (!archive_entry_size_is_set(ae) || archive_entry_size(ae) < 0 ||
			    (uint64_t)archive_entry_size(ae) > TAR_FILE_MAX)
				return err_set(e, EI_ECORRUPT, "%s: size %lld (at most %llu)", m,
					       (long long)archive_entry_size(ae), TAR_FILE_MAX);
			ent.size = (uint64_t)archive_entry_size(ae);
			break;
		case FT_SYMLINK:
			ent.target = archive_entry_symlink(ae);
			if (!ent.target || !ent.target[0] || strlen(ent.target) > FT_PATH_MAX)
				return err_set(e, EI_ECORRUPT, "%s: symlink target of %zu bytes (1 to %d)",
					       m, ent.target ? strlen(ent.target) : 0, FT_PATH_MAX);
			break;
		case FT_BLK:
		case FT_CHR:
			ent.rdev_major = (uint32_t)archive_entry_rdevmajor(ae);
			ent.rdev_minor = (uint32_t)archive_entry_rdevminor(ae);
			break;
		case FT_DIR:
			ent.nlink = 1;
			break;
		default:
			break;
		}
	}
	if (!n && ent.type != FT_DIR)
		return err_set(e, EI_ECORRUPT, "%s: the root is a %s", m, ft_type_name(ent.type));
	if (!n && t->n_nodes)
		return err_set(e, EI_ECORRUPT, "%s: the root after other members", m);
	if ((rc = tar_parents(t, t->path, n, m, e)) < 0)
		return rc;
	nd = tar_find(t, t->path, n, &slot);
	if (nd && (nd->type || ent.type != FT_DIR))
		return err_set(e, EI_ECORRUPT,
			       "%s: a %s where an earlier member made a %s (tar would replace it; a tree holds one)",
			       m, ft_type_name(ent.type), ft_type_name(nd->type ? nd->type : FT_DIR));
	if (!nd && !(nd = tar_add(t, t->path, n, slot, e)))
		return e ? e->code : -ENOMEM;
	nd->type = (uint8_t)ent.type;
	if (to == SIZE_MAX) {
		if ((rc = tar_xattrs(t, ae, &ent, m, e)) < 0)
			return rc;
		nd->ino = (uint64_t)(nd - t->nodes) + 1;
		nd->nlink = 1;
		ent.ino = nd->ino;
		if (ent.type == FT_REG)
			nd->size = ent.size;
		if (ent.type == FT_BLK || ent.type == FT_CHR)
			nd->size = (uint64_t)ent.rdev_major << 32 | ent.rdev_minor;
		if (ent.type == FT_SYMLINK &&
		    tar_keep(t, ent.target, strlen(ent.target), &nd->target, e) < 0)
			return e->code;
		if (ent.type != FT_DIR && (rc = tar_keep_xattrs(t, &ent, nd, e)) < 0)
			return rc;
	} else {
		/* an inode's: what its first member said; names[] is final now */
		struct tar_node *tn = &t->nodes[to];

		if (archive_entry_acl_count(ae, ARCHIVE_ENTRY_ACL_TYPE_ACCESS |
					    ARCHIVE_ENTRY_ACL_TYPE_DEFAULT |
					    ARCHIVE_ENTRY_ACL_TYPE_NFS4) > 0)
			ft_warnf(&t->src, "%s: POSIX ACL not kept", text_safe(ent.path, safe, sizeof(safe)));
		nd->ino = tn->ino;
		ent.ino = tn->ino;
		ent.nlink = ++tn->nlink;
		ent.link_to = t->names + tn->path;
		if (tn->type == FT_REG)
			ent.size = tn->size;
		if (tn->type == FT_BLK || tn->type == FT_CHR) {
			ent.rdev_major = (uint32_t)(tn->size >> 32);
			ent.rdev_minor = (uint32_t)tn->size;
		}
		if (tn->type == FT_SYMLINK)
			ent.target = t->names + tn->target;
		tar_node_xattrs(t, tn, &ent);
	}
	if (ent.type == FT_REG && to == SIZE_MAX) {
		file.read = tar_file_read;
		file.hole = tar_file_hole;
		file.priv = t;
		fp = &file;
		t->cur = t->path;
		t->size = ent.size;
		t->dpos = 0;
		t->blk = NULL;
		t->blk_len = 0;
		t->blk_off = 0;
		t->data_eof = 0;
	}
	return visit(arg, &ent, fp, e);
}

static int tar_walk(struct ft_source *s, ft_visit_fn visit, void *arg, struct err *e)
{
	struct tar_src *t = s->priv;
	struct archive_entry *ae;

	if (t->walked++)
		return err_set(e, EI_EUSAGE, "tar: %s: a stream is walked once", t->what);
	for (;;) {
		int r = archive_read_next_header(t->a, &ae), rc;

		if (r == ARCHIVE_EOF)
			return 0;
		t->member++;
		/*
		 * edgeimg runs in the C locale, where libarchive cannot convert
		 * a pax name's UTF-8: it warns and keeps the bytes as they
		 * are, which is what a tree holds.  Other warnings (a malformed
		 * pax record libarchive skipped) refuse the archive.
		 */
		if (r == ARCHIVE_WARN && strstr(archive_error_string(t->a), "can't be converted"))
			r = ARCHIVE_OK;
		if (r != ARCHIVE_OK) {
			char m[400];

			if (t->io_failed) {
				*e = t->ioerr;
				return e->code;
			}
			/* libarchive names no member: say the one before */
			if (t->member == 1)
				return err_set(e, EI_ECORRUPT, "tar: %s: member 1: %s", t->what,
					       archive_error_string(t->a));
			tar_member(t, t->prev, m, sizeof(m));
			return err_set(e, EI_ECORRUPT, "%s (the next one): %s", m,
				       archive_error_string(t->a));
		}
		snprintf(t->prev, sizeof(t->prev), "%s", archive_entry_pathname(ae) ?
			 archive_entry_pathname(ae) : "");
		rc = tar_entry(t, ae, visit, arg, e);
		t->cur = NULL;
		if (rc < 0)
			return rc;
	}
}

static void tar_close(struct ft_source *s)
{
	struct tar_src *t = s->priv;

	if (t->a)
		archive_read_free(t->a);
	io_close(t->io);
	free(t->buf);
	free(t->nodes);
	free(t->slots);
	free(t->names);
	free(t);
}

static const struct ft_source_ops tar_ops = {
	.name = "tar",
	.walk = tar_walk,
	.close = tar_close,
};

int tar_open_io(struct io *io, const char *what, struct ft_source **out, struct err *e)
{
	struct tar_src *t = calloc(1, sizeof(*t));
	int rc;

	if (!t || !(t->buf = malloc(TAR_BLOCK)) || !(t->slots = calloc(64, sizeof(*t->slots)))) {
		if (t)
			free(t->buf);
		free(t);
		io_close(io);
		return err_set(e, -ENOMEM, "tar: out of memory");
	}
	t->io = io;
	t->n_slots = 64;
	snprintf(t->what, sizeof(t->what), "%s", what);
	rc = tar_is_tar(t, e);
	if (rc == 0)
		rc = err_set(e, EI_EFORMAT, "%s: not a tar (no ustar, pax or GNU tar header first)",
			     what);
	if (rc < 0 || (rc = tar_archive_open(t, 0, &t->a, e)) < 0) {
		t->src.priv = t;
		tar_close(&t->src);
		return rc;
	}
	if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != sizeof(t->seed))
		t->seed = (uint64_t)(uintptr_t)t;
	t->src.ops = &tar_ops;
	t->src.what = t->what;
	t->src.mkfs_time = -1;
	t->src.priv = t;
	*out = &t->src;
	return 0;
}

int ft_open_tar(const char *path, struct ft_source **out, struct err *e)
{
	struct io *io;
	int rc = io_open_file(path, 0, &io, e);

	if (rc < 0)
		return rc;
	return tar_open_io(io, path, out, e);
}
