// SPDX-License-Identifier: MIT
/*
 * OVA appliances: the first disk of an uncompressed tar holding an .ovf
 * descriptor (first), disk files and an optional .mf manifest.  Follows
 * DMTF DSP0243 (OVF 2.1) section 5 for the package and POSIX.1-2017 pax
 * (ustar headers, pax 'x' records) plus GNU 'L' long names for the tar.
 *
 * The tar is walked by a small parser of its own rather than libarchive:
 * the disk is read in place at random through an io_slice, which needs
 * each member's exact data offset, and several hostile cases must be
 * refused that libarchive accepts (a pax size that disagrees with the
 * ustar size, a lone zero block, link members, sparse members).  Only
 * regular files, directories and their extended headers are accepted.
 *
 * Before the disk is used, the manifest's SHA-1 or SHA-256 digests of the
 * .ovf and of the disk are checked by streaming both members (bounded
 * memory).  The disk is the file of the first <Disk ovf:fileRef> of the
 * .ovf, or the one opts.ova_disk picks (--ova-disk N, 1-based in .ovf
 * order, or the disk's file name).  The disk member is then
 * opened, with probing, as an image of its own (streamOptimized VMDK,
 * qcow2, raw, ...) and every call is forwarded to it.  A compressed OVA
 * (.ova.gz) is refused with a message saying to decompress it first.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/bytes.h"
#include "core/format.h"
#include "core/limits.h"
#include "core/tarhdr.h"
#include "crypto/sha.h"

#define OVA_BLOCK TAR_HDR_SIZE
#define OVA_MAX_MEMBERS 1024    /* members of the tar */
#define OVA_MAX_NAME 1024       /* bytes of a member name */
#define OVA_MAX_EXT (1u << 20)  /* bytes of one pax or GNU long-name header */
#define OVA_MAX_OVF (4u << 20)  /* bytes of the .ovf descriptor */
#define OVA_MAX_MF (1u << 20)   /* bytes of the .mf manifest */
#define OVA_MAX_REFS 256        /* File and Disk elements of the .ovf */
#define OVA_LIST_MEMBERS 16     /* members listed by "info" */
#define OVA_USTAR_MAX 077777777777ULL   /* largest size 11 octal digits hold */

struct ova_member {
	char *name;
	uint64_t hdr;           /* offset of its (first) header */
	uint64_t off;           /* offset of its data */
	uint64_t size;
};

/* A <Disk> of the .ovf: its <File>. */
struct ova_disk {
	char *href;
	int member;             /* index into m[], -1 if not in the archive */
	bool compressed, chunked;
	bool has_size;          /* the <File> has an ovf:size ... */
	uint64_t size;          /* ... of this many bytes */
};

struct ova {
	struct ova_member *m;
	unsigned n;
	unsigned ovf, disk;     /* indexes into m[] */
	struct ova_disk *disks; /* every <Disk>, in .ovf order */
	unsigned ndisks, pick;  /* disks[pick] is read */
	int mf;                 /* index of the manifest, -1 if none */
	int cert;               /* a .cert member is present (not verified) */
	const char *alg;        /* digest of the manifest: "SHA256", ... */
	int ovf_unlisted;       /* the manifest has no digest of the .ovf */
	struct vdisk *inner;
};

/* --- tar headers --------------------------------------------------------- */

static bool ova_zero_block(const uint8_t *b)
{
	return buf_is_zero(b, OVA_BLOCK);
}


/* The ustar name: prefix "/" name for POSIX ustar, else name alone. */
static size_t ova_ustar_name(const uint8_t *h, char *out)
{
	size_t nl = strnlen((const char *)h, 100), pl = 0;

	if (tar_posix_magic(h))
		pl = strnlen((const char *)h + 345, 155);
	if (pl) {
		memcpy(out, h + 345, pl);
		out[pl++] = '/';
	}
	memcpy(out + pl, h, nl);
	out[pl + nl] = 0;
	return pl + nl;
}

static bool ova_ends_ovf(const char *s, size_t n)
{
	return n > 4 && !strncasecmp(s + n - 4, ".ovf", 4);
}

/* Find the "path" record of pax data, for the probe; NULL if none. */
static const char *ova_pax_path(const uint8_t *d, size_t n, size_t *plen)
{
	size_t i = 0;

	while (i < n) {
		size_t len = 0, j = i;

		while (j < n && d[j] >= '0' && d[j] <= '9' && len < n)
			len = len * 10 + (size_t)(d[j++] - '0');
		if (j == i || j >= n || d[j] != ' ' || len <= j - i + 1 ||
		    len > n - i)
			return NULL;
		if (len - (j + 1 - i) > 5 && !memcmp(d + j + 1, "path=", 5)) {
			*plen = len - (j + 1 - i) - 6;
			return (const char *)d + j + 6;
		}
		i += len;
	}
	return NULL;
}

/*
 * Pure: 1 when @head starts with a tar header (ustar or GNU magic, right
 * checksum), else 0.  *@name (@buf or a place in @head) and *@name_len get
 * the name of the first member after extended headers (a pax path record
 * or GNU long name when the head holds it, else the ustar name of the last
 * header read), *@type its type flag (0 when the head ends before it).
 */
static int ova_first_member(const uint8_t *head, size_t head_len, char *buf,
			    const char **name, size_t *name_len, int *type)
{
	const char *ext = NULL;
	size_t ext_len = 0, off = 0;
	int tar = 0;

	*name = buf;
	*name_len = 0;
	*type = 0;
	for (int hdrs = 0; hdrs < 4 && head_len - off >= OVA_BLOCK; hdrs++) {
		const uint8_t *h = head + off;
		uint64_t size;

		if (!(tar_posix_magic(h) || tar_gnu_magic(h)) || !tar_sum_ok(h) ||
		    tar_num(h + 124, 12, &size) < 0)
			return tar;
		tar = 1;
		*name = buf;
		*name_len = ova_ustar_name(h, buf);
		switch (h[156]) {
		case 'x':
		case 'L':
		case 'g':
			/* The data is beyond the head: judge by the header's name. */
			if (size > head_len - off - OVA_BLOCK)
				return tar;
			if (h[156] == 'x') {
				ext = ova_pax_path(h + OVA_BLOCK, (size_t)size, &ext_len);
			} else if (h[156] == 'L') {
				ext = (const char *)h + OVA_BLOCK;
				ext_len = strnlen(ext, (size_t)size);
			}
			break;
		default:
			if (ext) {
				*name = ext;
				*name_len = ext_len;
			}
			*type = h[156] ? h[156] : '0';
			return tar;
		}
		off += OVA_BLOCK + (size_t)((size + OVA_BLOCK - 1) / OVA_BLOCK * OVA_BLOCK);
		if (off > head_len)
			return tar;
	}
	return tar;
}

/*
 * Pure: PROBE_SURE for an OVA (a tar whose first member is a regular file
 * named *.ovf), PROBE_REFUSED for any other tar, else 0.
 */
static int ova_tar_score(const uint8_t *head, size_t head_len)
{
	char buf[OVA_MAX_NAME];
	const char *name;
	size_t n;
	int type;

	if (!ova_first_member(head, head_len, buf, &name, &n, &type))
		return 0;
	return (type == '0' || !type) && ova_ends_ovf(name, n) ? PROBE_SURE :
	       PROBE_REFUSED;
}

static int ova_probe(const uint8_t *head, size_t head_len, const uint8_t *tail,
		     size_t tail_len, uint64_t file_size)
{
	(void)tail;
	(void)tail_len;
	(void)file_size;
	return ova_tar_score(head, head_len) == PROBE_SURE ? PROBE_SURE : 0;
}

/*
 * Any other tar: recognised and refused by name (fmt_tar, in the registry's
 * list of refused files), never read as a raw disk.
 */
static int tar_probe(const uint8_t *head, size_t head_len, const uint8_t *tail,
		     size_t tail_len, uint64_t file_size)
{
	(void)tail;
	(void)tail_len;
	(void)file_size;
	return ova_tar_score(head, head_len) == PROBE_REFUSED ? PROBE_REFUSED : 0;
}

static int tar_refuse(struct vdisk *vd, struct err *e)
{
	uint8_t head[PROBE_HEAD];
	size_t hl = (size_t)min_u64(sizeof(head), vd->io->size), n;
	char buf[OVA_MAX_NAME];
	const char *name;
	int type, r;

	r = io_read(vd->io, head, hl, 0, "tar: header", e);
	if (r < 0)
		return r;
	if (!ova_first_member(head, hl, buf, &name, &n, &type))
		return err_set(e, EI_EFORMAT, "tar: %s is not a tar archive",
			       vd->io->name);
	return err_set(e, EI_EUNSUP,
		       "%s is a tar archive, not an OVA (first member '%.*s' is not an .ovf): not a disk image; read its bytes with -f raw",
		       vd->io->name, (int)min_u64(n, 200), name);
}

/* --- walking the archive ------------------------------------------------- */

struct ova_ext {                /* what extended headers said of the next member */
	char *path;
	uint64_t size;
	bool has_size;
	uint64_t hdr;           /* offset of the first extended header */
	int count;
};

static void ova_ext_clear(struct ova_ext *x)
{
	free(x->path);
	memset(x, 0, sizeof(*x));
}

static int ova_set_path(struct ova_ext *x, const char *s, size_t n, uint64_t at,
			struct err *e)
{
	if (!n || n > OVA_MAX_NAME)
		return err_set(e, EI_ELIMIT,
			       "ova: member name at %llu is %zu bytes, allowed 1..%u",
			       (unsigned long long)at, n, OVA_MAX_NAME);
	if (memchr(s, 0, n))
		return err_set(e, EI_ECORRUPT, "ova: member name at %llu holds a NUL byte",
			       (unsigned long long)at);
	free(x->path);
	x->path = strndup(s, n);
	if (!x->path)
		return err_set(e, -ENOMEM, "ova: out of memory");
	return 0;
}

/*
 * Parse pax records "LEN KEY=VALUE\n" of the header at @at.  @global:
 * a 'g' header, whose records may not name a path or a size.
 */
static int ova_pax(const uint8_t *d, size_t n, uint64_t at, bool global,
		   struct ova_ext *x, struct err *e)
{
	size_t i = 0;

	while (i < n) {
		size_t len = 0, j = i, k, vlen;
		const char *key, *val;

		while (j < n && d[j] >= '0' && d[j] <= '9') {
			len = len > n ? n + 1 : len * 10 + (size_t)(d[j] - '0');
			j++;
		}
		if (j == i || j >= n || d[j] != ' ')
			return err_set(e, EI_ECORRUPT,
				       "ova: pax record at %llu+%zu has no decimal length",
				       (unsigned long long)at, i);
		if (!len || len > n - i)
			return err_set(e, EI_ECORRUPT,
				       "ova: pax record at %llu+%zu has length %zu, allowed 1..%zu",
				       (unsigned long long)at, i, len, n - i);
		if (d[i + len - 1] != '\n')
			return err_set(e, EI_ECORRUPT,
				       "ova: pax record at %llu+%zu does not end in a newline",
				       (unsigned long long)at, i);
		key = (const char *)d + j + 1;
		if (j + 1 >= i + len - 1 ||
		    !(val = memchr(key, '=', i + len - 1 - (j + 1))) || val == key)
			return err_set(e, EI_ECORRUPT,
				       "ova: pax record at %llu+%zu is not 'KEY=VALUE'",
				       (unsigned long long)at, i);
		k = (size_t)(val - key);
		val++;
		vlen = (size_t)((const char *)d + i + len - 1 - val);
		if (k >= 11 && !memcmp(key, "GNU.sparse.", 11))
			return err_set(e, EI_EUNSUP,
				       "ova: sparse member at %llu refused: OVA members are plain files",
				       (unsigned long long)at);
		if ((k == 4 && !memcmp(key, "path", 4)) ||
		    (k == 4 && !memcmp(key, "size", 4))) {
			if (global)
				return err_set(e, EI_EUNSUP,
					       "ova: pax global header at %llu sets '%.4s' for every member",
					       (unsigned long long)at, key);
		}
		if (k == 4 && !memcmp(key, "path", 4)) {
			int r = ova_set_path(x, val, vlen, at, e);

			if (r < 0)
				return r;
		} else if (k == 4 && !memcmp(key, "size", 4)) {
			uint64_t v = 0;

			if (!vlen || vlen > 19)
				goto bad_size;
			for (size_t q = 0; q < vlen; q++) {
				if (val[q] < '0' || val[q] > '9')
					goto bad_size;
				v = v * 10 + (uint64_t)(val[q] - '0');
			}
			x->size = v;
			x->has_size = true;
		}
		i += len;
	}
	return 0;
bad_size:
	return err_set(e, EI_ECORRUPT,
		       "ova: pax 'size' at %llu is not a decimal number below 10^19",
		       (unsigned long long)at);
}

/*
 * A member name must be relative and stay inside the archive (T1): no
 * leading '/', no ".." component.  Leading "./" is dropped; empty and "."
 * components are refused.
 */
static int ova_check_name(char *name, uint64_t at, struct err *e)
{
	char *p = name, *s;

	while (p[0] == '.' && p[1] == '/')
		p += 2;
	if (p != name)
		memmove(name, p, strlen(p) + 1);
	if (!name[0] || name[0] == '/')
		return err_set(e, EI_ECORRUPT,
			       "ova: member name '%.200s' at %llu is %s; only relative names are allowed",
			       name, (unsigned long long)at, name[0] ? "absolute" : "empty");
	for (s = name;;) {
		char *slash = strchr(s, '/');
		size_t n = slash ? (size_t)(slash - s) : strlen(s);

		if ((n == 2 && !memcmp(s, "..", 2)) || (n == 1 && s[0] == '.') ||
		    (!n && slash))
			return err_set(e, EI_ECORRUPT,
				       "ova: member name '%.200s' at %llu has a '%.*s' component; names must stay inside the archive",
				       name, (unsigned long long)at, (int)n, s);
		if (!slash)
			break;
		s = slash + 1;
	}
	return 0;
}

/* Append a member; it takes @name, which is freed on failure too. */
static int ova_add(struct ova *o, char *name, uint64_t hdr, uint64_t off,
		   uint64_t size, struct err *e)
{
	struct ova_member *nm;
	int r = 0;

	for (unsigned i = 0; i < o->n && !r; i++)
		if (!strcmp(o->m[i].name, name))
			r = err_set(e, EI_ECORRUPT,
				    "ova: two members are named '%.200s' (at %llu and %llu)",
				    name, (unsigned long long)o->m[i].hdr,
				    (unsigned long long)hdr);
	if (!r && o->n >= OVA_MAX_MEMBERS)
		r = err_set(e, EI_ELIMIT, "ova: more than %u members",
			    OVA_MAX_MEMBERS);
	nm = r ? NULL : realloc(o->m, (o->n + 1) * sizeof(*nm));
	if (!r && !nm)
		r = err_set(e, -ENOMEM, "ova: out of memory");
	if (r) {
		free(name);
		return r;
	}
	o->m = nm;
	nm[o->n++] = (struct ova_member){ name, hdr, off, size };
	return 0;
}

/* Read an extended header's data (at most OVA_MAX_EXT bytes) into memory. */
static int ova_read_ext(struct vdisk *vd, uint64_t off, uint64_t size,
			uint64_t at, char type, uint8_t **out, struct err *e)
{
	uint8_t *d;
	int r;

	if (size > OVA_MAX_EXT)
		return err_set(e, EI_ELIMIT,
			       "ova: '%c' extended header at %llu is %llu bytes, more than the %u allowed",
			       type, (unsigned long long)at,
			       (unsigned long long)size, OVA_MAX_EXT);
	d = malloc((size_t)size + 1);
	if (!d)
		return err_set(e, -ENOMEM, "ova: out of memory");
	r = io_read(vd->io, d, (size_t)size, off, "ova: extended header", e);
	if (r < 0) {
		free(d);
		return r;
	}
	d[size] = 0;
	*out = d;
	return 0;
}

static int ova_walk(struct vdisk *vd, struct ova *o, struct err *e)
{
	struct ova_ext x = { 0 };
	uint8_t h[OVA_BLOCK];
	uint64_t off = 0, fsize = vd->io->size;
	int r = 0;

	for (;;) {
		uint64_t size, data, padded, end, hdr;
		uint8_t *d = NULL;
		char type, *name;

		if (fsize - off < OVA_BLOCK) {
			r = err_set(e, EI_ETRUNC,
				    "ova: the archive ends at %llu without its end-of-archive marker (two zero blocks): truncated?",
				    (unsigned long long)fsize);
			break;
		}
		r = io_read(vd->io, h, OVA_BLOCK, off, "ova: tar header", e);
		if (r < 0)
			break;
		if (ova_zero_block(h)) {
			if (fsize - off < 2 * OVA_BLOCK) {
				r = err_set(e, EI_ETRUNC,
					    "ova: the archive ends at %llu after a single zero block: truncated?",
					    (unsigned long long)fsize);
				break;
			}
			r = io_read(vd->io, h, OVA_BLOCK, off + OVA_BLOCK,
				    "ova: tar header", e);
			if (r < 0)
				break;
			if (!ova_zero_block(h)) {
				r = err_set(e, EI_ECORRUPT,
					    "ova: a zero block at %llu in the middle of the archive (an end-of-archive marker is two)",
					    (unsigned long long)off);
				break;
			}
			if (x.count)
				r = err_set(e, EI_ECORRUPT,
					    "ova: the archive ends after an extended header at %llu with no member",
					    (unsigned long long)x.hdr);
			break;
		}
		if (!tar_posix_magic(h) && !tar_gnu_magic(h)) {
			r = err_set(e, off ? EI_ECORRUPT : EI_EFORMAT,
				    "ova: %s at %llu is not a ustar or pax tar header (magic '%.6s' at 257)",
				    off ? "block" : vd->io->name, (unsigned long long)off,
				    (const char *)h + 257);
			break;
		}
		if (!tar_sum_ok(h)) {
			r = err_set(e, EI_ECORRUPT,
				    "ova: tar header at %llu has a wrong checksum",
				    (unsigned long long)off);
			break;
		}
		type = (char)h[156];
		if (tar_num(h + 124, 12, &size) < 0) {
			r = err_set(e, EI_ECORRUPT,
				    "ova: tar header at %llu has an invalid size field (negative, not octal, unterminated or >= 2^63)",
				    (unsigned long long)off);
			break;
		}
		data = off + OVA_BLOCK;
		if (!range_ok(data, size, fsize) ||
		    add_overflow_u64(size, OVA_BLOCK - 1, &padded)) {
			r = err_set(e, EI_ETRUNC,
				    "ova: member at %llu declares %llu bytes, past the end of the archive (%llu bytes)",
				    (unsigned long long)off, (unsigned long long)size,
				    (unsigned long long)fsize);
			break;
		}
		padded &= ~(uint64_t)(OVA_BLOCK - 1);
		end = data + min_u64(padded, fsize - data);

		if (type == 'x' || type == 'g' || type == 'L') {
			if (!x.count)
				x.hdr = off;
			if (type != 'g' && ++x.count > 4) {
				r = err_set(e, EI_ECORRUPT,
					    "ova: more than 4 extended headers in a row at %llu",
					    (unsigned long long)off);
				break;
			}
			r = ova_read_ext(vd, data, size, off, type, &d, e);
			if (r < 0)
				break;
			if (type == 'L')
				r = ova_set_path(&x, (char *)d, strnlen((char *)d, (size_t)size),
						 off, e);
			else
				r = ova_pax(d, (size_t)size, off, type == 'g', &x, e);
			free(d);
			if (r < 0)
				break;
			off = end;
			continue;
		}
		if (type == '1' || type == '2' || type == 'K') {
			r = err_set(e, EI_EUNSUP,
				    "ova: %s member at %llu (size %llu) refused: an OVA holds only plain files",
				    type == '2' ? "symbolic link" : type == '1' ?
				    "hard link" : "GNU long link name",
				    (unsigned long long)off, (unsigned long long)size);
			break;
		}
		if (type != '0' && type != 0 && type != '5') {
			r = err_set(e, EI_EUNSUP,
				    "ova: member of type '%c' (0x%02x) at %llu refused: an OVA holds only plain files",
				    type >= 0x20 && type < 0x7f ? type : '?',
				    (unsigned char)type, (unsigned long long)off);
			break;
		}
		if (x.has_size && x.size != size) {
			/* Only a size the ustar field cannot hold may differ. */
			if (x.size <= OVA_USTAR_MAX || size) {
				r = err_set(e, EI_ECORRUPT,
					    "ova: member at %llu: pax size %llu and ustar size %llu disagree",
					    (unsigned long long)off,
					    (unsigned long long)x.size,
					    (unsigned long long)size);
				break;
			}
			size = x.size;
			if (!range_ok(data, size, fsize)) {
				r = err_set(e, EI_ETRUNC,
					    "ova: member at %llu declares %llu bytes, past the end of the archive (%llu bytes)",
					    (unsigned long long)off,
					    (unsigned long long)size,
					    (unsigned long long)fsize);
				break;
			}
			padded = (size + OVA_BLOCK - 1) & ~(uint64_t)(OVA_BLOCK - 1);
			end = data + min_u64(padded, fsize - data);
		}
		hdr = x.count ? x.hdr : off;
		if (x.path) {
			name = x.path;
			x.path = NULL;
		} else {
			char buf[OVA_BLOCK];

			ova_ustar_name(h, buf);
			name = strdup(buf);
			if (!name) {
				r = err_set(e, -ENOMEM, "ova: out of memory");
				break;
			}
		}
		ova_ext_clear(&x);
		if (type == '5') {
			size_t nl = strlen(name);

			while (nl > 1 && name[nl - 1] == '/')
				name[--nl] = 0;
		}
		r = ova_check_name(name, off, e);
		if (r >= 0 && type == '5' && size)
			r = err_set(e, EI_ECORRUPT,
				    "ova: directory '%.200s' at %llu has %llu bytes of data",
				    name, (unsigned long long)off,
				    (unsigned long long)size);
		if (r >= 0 && type != '5')
			r = ova_add(o, name, hdr, data, size, e);
		else
			free(name);
		if (r < 0)
			break;
		off = end;
	}
	ova_ext_clear(&x);
	return r;
}

/* --- the .ovf descriptor ------------------------------------------------- */

/* ova_verify(): the manifest lists no digest of the member (not an ei code). */
#define OVA_UNLISTED 1

/* A decimal attribute value: true with *@v set, false when it is not one. */
static bool ova_xml_u64(const char *s, size_t n, uint64_t *v)
{
	uint64_t x = 0;

	if (!n || n > 19)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	*v = x;
	return true;
}

struct ova_ref {
	char id[128];
	char href[OVA_MAX_NAME + 1];
	bool compressed, chunked, is_file;
	bool has_size;
	uint64_t size;          /* ovf:size, when has_size */
};

/* Decode an attribute value's entity references into @out (NUL-ended). */
static int ova_xml_value(const char *s, size_t n, char *out, size_t cap,
			 struct err *e)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '&') {
			const char *semi = memchr(s + i, ';', n - i);
			size_t k = semi ? (size_t)(semi - (s + i)) : 0;
			const char *ent = s + i + 1;

			if (k == 4 && !memcmp(ent, "amp", 3))
				c = '&';
			else if (k == 3 && !memcmp(ent, "lt", 2))
				c = '<';
			else if (k == 3 && !memcmp(ent, "gt", 2))
				c = '>';
			else if (k == 5 && !memcmp(ent, "quot", 4))
				c = '"';
			else if (k == 5 && !memcmp(ent, "apos", 4))
				c = '\'';
			else if (k >= 3 && k <= 8 && ent[0] == '#') {
				char num[8];
				unsigned long v;
				char *endp;

				memcpy(num, ent + 1, k - 2);
				num[k - 2] = 0;
				v = num[0] == 'x' ? strtoul(num + 1, &endp, 16) :
				    strtoul(num, &endp, 10);
				if (*endp || v < 0x20 || v > 0x7e)
					goto bad;
				c = (char)v;
			} else {
				goto bad;
			}
			i += k;
		} else if (c == '<' || !c) {
			goto bad;
		}
		if (o + 1 >= cap)
			return err_set(e, EI_ELIMIT,
				       "ova: .ovf attribute value longer than %zu bytes",
				       cap - 1);
		out[o++] = c;
	}
	out[o] = 0;
	return 0;
bad:
	return err_set(e, EI_EUNSUP,
		       "ova: .ovf attribute value '%.*s' has an entity or character that is not allowed (only &amp; &lt; &gt; &quot; &apos; and printable &#N;)",
		       (int)min_u64(n, 100), s);
}

/* The local part of an XML name ("ovf:href" -> "href"). */
static bool ova_xml_is(const char *name, size_t n, const char *local)
{
	const char *colon = memchr(name, ':', n);
	size_t ll = strlen(local);

	if (colon) {
		n -= (size_t)(colon + 1 - name);
		name = colon + 1;
	}
	return n == ll && !memcmp(name, local, ll);
}

/*
 * A minimal scan of the .ovf for <File ovf:id ovf:href> and <Disk
 * ovf:fileRef> elements; comments, processing instructions and CDATA are
 * skipped.  No entity is ever expanded: any <!DOCTYPE> or <!ENTITY> is
 * refused (T14).  Fills @refs with the Files, then the Disks'
 * fileRefs (is_file false, id = fileRef), in document order.
 */
static int ova_ovf_scan(const char *t, size_t n, struct ova_ref *refs,
			unsigned *nref, struct err *e)
{
	size_t i = 0;

	*nref = 0;
	while (i < n) {
		const char *lt = memchr(t + i, '<', n - i), *end;
		size_t nm, j;
		bool file, disk;

		if (!lt)
			break;
		i = (size_t)(lt - t);
		if (n - i >= 4 && !memcmp(t + i, "<!--", 4)) {
			end = memmem(t + i + 4, n - i - 4, "-->", 3);
			if (!end)
				goto unterminated;
			i = (size_t)(end - t) + 3;
			continue;
		}
		if (n - i >= 9 && !memcmp(t + i, "<![CDATA[", 9)) {
			end = memmem(t + i + 9, n - i - 9, "]]>", 3);
			if (!end)
				goto unterminated;
			i = (size_t)(end - t) + 3;
			continue;
		}
		if (n - i >= 2 && t[i + 1] == '!')
			return err_set(e, EI_EUNSUP,
				       "ova: the .ovf has a '<!%.10s' declaration at byte %zu; DTDs and entities are refused",
				       t + i + 2, i);
		if (n - i >= 2 && t[i + 1] == '?') {
			end = memmem(t + i + 2, n - i - 2, "?>", 2);
			if (!end)
				goto unterminated;
			i = (size_t)(end - t) + 2;
			continue;
		}
		if (n - i >= 2 && t[i + 1] == '/') {
			end = memchr(t + i, '>', n - i);
			if (!end)
				goto unterminated;
			i = (size_t)(end - t) + 1;
			continue;
		}
		/* A start tag: its name, then attributes until '>' or "/>". */
		j = ++i;
		while (j < n && !strchr(" \t\r\n/>", t[j]))
			j++;
		nm = j - i;
		file = ova_xml_is(t + i, nm, "File");
		disk = ova_xml_is(t + i, nm, "Disk");
		if ((file || disk) && *nref >= OVA_MAX_REFS)
			return err_set(e, EI_ELIMIT,
				       "ova: the .ovf has more than %u File and Disk elements",
				       OVA_MAX_REFS);
		if (file || disk)
			memset(&refs[*nref], 0, sizeof(refs[*nref]));
		for (;;) {
			size_t an, as;
			char q;
			const char *a;
			int r;

			while (j < n && strchr(" \t\r\n", t[j]))
				j++;
			if (j >= n)
				goto unterminated;
			if (t[j] == '>' || (t[j] == '/' && j + 1 < n && t[j + 1] == '>'))
				break;
			a = t + j;
			while (j < n && !strchr(" \t\r\n=/>", t[j]))
				j++;
			an = (size_t)(t + j - a);
			while (j < n && strchr(" \t\r\n", t[j]))
				j++;
			if (!an || j >= n || t[j] != '=')
				goto malformed;
			j++;
			while (j < n && strchr(" \t\r\n", t[j]))
				j++;
			if (j >= n || (t[j] != '"' && t[j] != '\''))
				goto malformed;
			q = t[j++];
			as = j;
			while (j < n && t[j] != q)
				j++;
			if (j >= n)
				goto unterminated;
			j++;
			if (!file && !disk)
				continue;
			r = 0;
			if ((file && ova_xml_is(a, an, "id")) ||
			    (disk && ova_xml_is(a, an, "fileRef")))
				r = ova_xml_value(t + as, j - 1 - as, refs[*nref].id,
						  sizeof(refs[*nref].id), e);
			else if (file && ova_xml_is(a, an, "href"))
				r = ova_xml_value(t + as, j - 1 - as, refs[*nref].href,
						  sizeof(refs[*nref].href), e);
			else if (file && ova_xml_is(a, an, "compression"))
				refs[*nref].compressed = !(j - 1 - as == 8 &&
							   !memcmp(t + as, "identity", 8));
			else if (file && ova_xml_is(a, an, "chunkSize"))
				refs[*nref].chunked = true;
			else if (file && ova_xml_is(a, an, "size"))
				refs[*nref].has_size = ova_xml_u64(t + as, j - 1 - as,
								   &refs[*nref].size);
			if (r < 0)
				return r;
		}
		if (file || disk) {
			refs[*nref].is_file = file;
			if (file && (!refs[*nref].id[0] || !refs[*nref].href[0]))
				return err_set(e, EI_ECORRUPT,
					       "ova: a <File> element at byte %zu lacks ovf:id or ovf:href",
					       i - 1);
			if (refs[*nref].id[0])
				(*nref)++;
		}
		i = j;
	}
	return 0;
unterminated:
	return err_set(e, EI_ECORRUPT, "ova: the .ovf ends inside markup begun near byte %zu",
		       i);
malformed:
	return err_set(e, EI_ECORRUPT, "ova: the .ovf has a malformed attribute near byte %zu",
		       i);
}

static int ova_find(const struct ova *o, const char *name)
{
	for (unsigned i = 0; i < o->n; i++)
		if (!strcmp(o->m[i].name, name))
			return (int)i;
	return -1;
}

/* Read a small member whole, NUL-terminated. */
static int ova_slurp(struct vdisk *vd, const struct ova_member *m, uint64_t cap,
		     const char *what, char **out, struct err *e)
{
	char *b;
	int r;

	if (m->size > cap)
		return err_set(e, EI_ELIMIT, "ova: %s '%.200s' is %llu bytes, more than the %llu allowed",
			       what, m->name, (unsigned long long)m->size,
			       (unsigned long long)cap);
	b = malloc((size_t)m->size + 1);
	if (!b)
		return err_set(e, -ENOMEM, "ova: out of memory");
	r = io_read(vd->io, b, (size_t)m->size, m->off, what, e);
	if (r < 0) {
		free(b);
		return r;
	}
	b[m->size] = 0;
	*out = b;
	return 0;
}

/*
 * Which disk opts.ova_disk names: "N" (1-based) or a disk's file name;
 * the first when it is NULL.
 */
static int ova_choose(const struct vdisk *vd, struct ova *o, struct err *e)
{
	const char *want = vd->opts.ova_disk;
	char list[256] = "";
	size_t l = 0;

	o->pick = 0;
	if (!want)
		return 0;
	if (want[0] >= '0' && want[0] <= '9') {
		char *end;
		unsigned long n = strtoul(want, &end, 10);

		if (*end || !n || n > o->ndisks)
			return err_set(e, EI_EUSAGE,
				       "ova: --ova-disk %.40s: the .ovf has %u disk%s; give 1 to %u or a disk's file name",
				       want, o->ndisks, o->ndisks == 1 ? "" : "s",
				       o->ndisks);
		o->pick = (unsigned)n - 1;
		return 0;
	}
	for (unsigned i = 0; i < o->ndisks; i++) {
		if (!strcmp(o->disks[i].href, want)) {
			o->pick = i;
			return 0;
		}
		if (l < sizeof(list) - 1)
			l += (size_t)snprintf(list + l, sizeof(list) - l, "%s%u '%s'",
					      i ? ", " : "", i + 1, o->disks[i].href);
	}
	return err_set(e, EI_EUSAGE,
		       "ova: --ova-disk '%.100s': no <Disk> of the .ovf has that file; its %u disk%s: %s",
		       want, o->ndisks, o->ndisks == 1 ? "" : "s", list);
}

/*
 * The disks: the File of every Disk, in .ovf order; check every File is
 * there; pick the one to read.
 */
static int ova_pick_disk(struct vdisk *vd, struct ova *o, struct err *e)
{
	struct ova_ref *refs = NULL;
	const struct ova_disk *disk;
	unsigned nref = 0;
	char *ovf = NULL;
	int r, idx;

	r = ova_slurp(vd, &o->m[o->ovf], OVA_MAX_OVF, "descriptor", &ovf, e);
	if (r < 0)
		return r;
	if (memchr(ovf, 0, (size_t)o->m[o->ovf].size)) {
		r = err_set(e, EI_ECORRUPT, "ova: the .ovf holds a NUL byte (UTF-16 is not read)");
		goto out;
	}
	refs = calloc(OVA_MAX_REFS, sizeof(*refs));
	o->disks = calloc(OVA_MAX_REFS, sizeof(*o->disks));
	if (!refs || !o->disks) {
		r = err_set(e, -ENOMEM, "ova: out of memory");
		goto out;
	}
	r = ova_ovf_scan(ovf, (size_t)o->m[o->ovf].size, refs, &nref, e);
	if (r < 0)
		goto out;
	for (unsigned i = 0; i < nref; i++) {
		if (!refs[i].is_file)
			continue;
		if (strstr(refs[i].href, "://") || refs[i].href[0] == '/') {
			r = err_set(e, EI_EREF,
				    "ova: the .ovf refers to '%.200s' outside the archive; refused",
				    refs[i].href);
			goto out;
		}
		if (ova_find(o, refs[i].href) < 0 && !refs[i].chunked) {
			r = err_set(e, EI_ECORRUPT,
				    "ova: the .ovf refers to '%.200s', which is not in the archive",
				    refs[i].href);
			goto out;
		}
	}
	for (unsigned i = 0; i < nref; i++) {
		const struct ova_ref *f = NULL;
		struct ova_disk *d = &o->disks[o->ndisks];

		if (refs[i].is_file)
			continue;
		for (unsigned k = 0; k < nref && !f; k++)
			if (refs[k].is_file && !strcmp(refs[k].id, refs[i].id))
				f = &refs[k];
		if (!f) {
			r = err_set(e, EI_ECORRUPT,
				    "ova: <Disk ovf:fileRef='%.100s'> names no <File> of the .ovf",
				    refs[i].id);
			goto out;
		}
		d->href = strdup(f->href);
		if (!d->href) {
			r = err_set(e, -ENOMEM, "ova: out of memory");
			goto out;
		}
		d->member = ova_find(o, f->href);
		d->compressed = f->compressed;
		d->chunked = f->chunked;
		d->has_size = f->has_size;
		d->size = f->size;
		o->ndisks++;
	}
	if (!o->ndisks) {
		r = err_set(e, EI_ECORRUPT,
			    "ova: the .ovf has no <Disk> with an ovf:fileRef (no disk to read)");
		goto out;
	}
	r = ova_choose(vd, o, e);
	if (r < 0)
		goto out;
	disk = &o->disks[o->pick];
	if (disk->compressed || disk->chunked) {
		r = err_set(e, EI_EUNSUP,
			    "ova: disk file '%.200s' is stored %s in the OVA; not supported",
			    disk->href, disk->compressed ? "compressed (ovf:compression)" :
			    "in chunks (ovf:chunkSize)");
		goto out;
	}
	idx = disk->member;
	if (idx < 0 || (unsigned)idx == o->ovf) {
		r = err_set(e, EI_ECORRUPT, "ova: disk file '%.200s' is not a disk member",
			    disk->href);
		goto out;
	}
	o->disk = (unsigned)idx;
out:
	free(refs);
	free(ovf);
	return r;
}

/* --- the manifest -------------------------------------------------------- */

static int ova_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Stream member @m through SHA-1 or SHA-256 into @out. */
static int ova_digest(struct vdisk *vd, const struct ova_member *m, bool is256,
		      uint8_t *out, struct err *e)
{
	uint8_t *buf = malloc(EI_IO_CHUNK);
	struct sha256 c2;
	struct sha1 c1;
	uint64_t off = 0;
	int r = 0;

	if (!buf)
		return err_set(e, -ENOMEM, "ova: out of memory");
	sha1_init(&c1);
	sha256_init(&c2);
	while (off < m->size) {
		size_t n = (size_t)min_u64(EI_IO_CHUNK, m->size - off);

		r = io_read(vd->io, buf, n, m->off + off, "ova: member data", e);
		if (r < 0)
			break;
		if (is256)
			sha256_update(&c2, buf, n);
		else
			sha1_update(&c1, buf, n);
		off += n;
	}
	free(buf);
	if (r < 0)
		return r;
	if (is256)
		sha256_final(&c2, out);
	else
		sha1_final(&c1, out);
	return 0;
}

/*
 * Check the manifest's digest of member @mi: lines "SHA256(NAME)= HEX" or
 * "SHA1(NAME)= HEX" (the hex in either case).  A member the manifest does
 * not list, a malformed line and a mismatch are errors (T11).
 */
static int ova_verify(struct vdisk *vd, struct ova *o, const char *mf,
		      size_t mfl, unsigned mi, struct err *e)
{
	const struct ova_member *m = &o->m[mi];
	size_t i = 0, line = 0;

	while (i < mfl) {
		const char *s = mf + i, *nl = memchr(s, '\n', mfl - i), *open, *close;
		size_t n = nl ? (size_t)(nl - s) : mfl - i, al, hl, dl;
		uint8_t want[SHA256_LEN], got[SHA256_LEN];
		const char *hex;
		bool is256;
		int r;

		i += n + 1;
		line++;
		if (n && s[n - 1] == '\r')
			n--;
		if (!n)
			continue;
		open = memchr(s, '(', n);
		close = NULL;
		for (const char *p = s + n - 1; p > s; p--)
			if (*p == '=' && p[-1] == ')') {
				close = p - 1;
				break;
			}
		if (!open || !close || close <= open)
			return err_set(e, EI_ECORRUPT,
				       "ova: manifest line %zu is not 'ALGORITHM(NAME)= HEX'",
				       line);
		al = (size_t)(open - s);
		if ((size_t)(close - open - 1) != strlen(m->name) ||
		    memcmp(open + 1, m->name, strlen(m->name)))
			continue;
		if (al == 6 && !memcmp(s, "SHA256", 6)) {
			is256 = true;
			dl = SHA256_LEN;
		} else if (al == 4 && !memcmp(s, "SHA1", 4)) {
			is256 = false;
			dl = SHA1_LEN;
		} else {
			return err_set(e, EI_EUNSUP,
				       "ova: manifest line %zu uses digest '%.*s'; only SHA1 and SHA256 are checked",
				       line, (int)min_u64(al, 16), s);
		}
		hex = close + 2;
		while (hex < s + n && *hex == ' ')
			hex++;
		hl = (size_t)(s + n - hex);
		if (hl != 2 * dl)
			goto badhex;
		for (size_t k = 0; k < dl; k++) {
			int a = ova_hexval(hex[2 * k]), b = ova_hexval(hex[2 * k + 1]);

			if (a < 0 || b < 0)
				goto badhex;
			want[k] = (uint8_t)(a << 4 | b);
		}
		r = ova_digest(vd, m, is256, got, e);
		if (r < 0)
			return r;
		if (memcmp(want, got, dl)) {
			char h[2 * SHA256_LEN + 1];

			return err_set(e, EI_EMISMATCH,
				       "ova: %s digest of '%.200s' is %s, the manifest says %.*s",
				       is256 ? "SHA256" : "SHA1", m->name,
				       sha_hex(got, dl, h), (int)hl, hex);
		}
		o->alg = is256 ? "SHA256" : "SHA1";
		return 0;
badhex:
		return err_set(e, EI_ECORRUPT,
			       "ova: manifest line %zu: the digest is not %zu hex digits",
			       line, 2 * dl);
	}
	return OVA_UNLISTED;
}

/* --- the vdisk ----------------------------------------------------------- */

static void ova_free(struct ova *o)
{
	if (!o)
		return;
	vdisk_close(o->inner);
	for (unsigned i = 0; i < o->ndisks; i++)
		free(o->disks[i].href);
	free(o->disks);
	for (unsigned i = 0; i < o->n; i++)
		free(o->m[i].name);
	free(o->m);
	free(o);
}

static void ova_close(struct vdisk *vd)
{
	ova_free(vd->priv);
	vd->priv = NULL;
}

static bool ova_ends(const char *s, const char *ext)
{
	size_t n = strlen(s), k = strlen(ext);

	return n > k && !strcasecmp(s + n - k, ext);
}

/* Member @idx as a disk in its own format, read in place; no references out. */
static int ova_open_member(struct vdisk *vd, const struct ova *o, unsigned idx,
			   struct vdisk **out, struct err *e)
{
	struct open_opts io_opts = vd->opts;
	char name[sizeof(vd->io->name)];
	struct io *slice;
	int r;

	if (vd->opts.max_chain <= 1)
		return err_set(e, EI_ELIMIT, "ova: disk inside an image nested too deep");
	snprintf(name, sizeof(name), "%.120s:%.120s", vd->io->name, o->m[idx].name);
	r = io_slice_new(vd->io, o->m[idx].off, o->m[idx].size, name, &slice, e);
	if (r < 0)
		return r;
	io_opts.format = NULL;
	io_opts.allow_refs = 0;
	io_opts.ova_disk = NULL;
	io_opts.max_chain = vd->opts.max_chain - 1;
	r = vdisk_open_io(slice, vd->dir, &io_opts, out, e);
	if (r < 0) {
		err_prefix(e, "ova: disk '%.200s'", o->m[idx].name);
		return r;
	}
	if (!strcmp((*out)->fmt->name, "ova")) {
		vdisk_close(*out);
		*out = NULL;
		return err_set(e, EI_EUNSUP, "ova: disk '%.200s' is itself an OVA; refused",
			       o->m[idx].name);
	}
	return 0;
}

static int ova_open(struct vdisk *vd, struct err *e)
{
	uint8_t magic[6] = { 0 };
	struct ova *o;
	int r;

	if (vd->io->flags & IO_STREAM)
		return err_set(e, EI_EUNSUP, "ova: %s is not seekable", vd->io->name);
	if (vd->io->size < OVA_BLOCK)
		return err_set(e, EI_EFORMAT,
			       "ova: %s is %llu bytes, too small for a tar header",
			       vd->io->name, (unsigned long long)vd->io->size);
	r = io_read(vd->io, magic, sizeof(magic), 0, "ova: magic", e);
	if (r < 0)
		return r;
	if ((magic[0] == 0x1f && magic[1] == 0x8b) ||
	    !memcmp(magic, "\xfd" "7zXZ\0", 6) || get_le32(magic) == 0xfd2fb528)
		return err_set(e, EI_EUNSUP,
			       "ova: %s is compressed (%s); a compressed OVA is not read (VirtualBox refuses it too): decompress it and open the .ova",
			       vd->io->name, magic[0] == 0x1f ? "gzip" :
			       magic[0] == 0xfd ? "xz" : "zstd");
	o = calloc(1, sizeof(*o));
	if (!o)
		return err_set(e, -ENOMEM, "ova: out of memory");
	o->mf = -1;
	r = ova_walk(vd, o, e);
	if (r < 0)
		goto fail;
	if (!o->n || !ova_ends(o->m[0].name, ".ovf")) {
		r = err_set(e, o->n ? EI_ECORRUPT : EI_EFORMAT,
			    "ova: the first member is %s%.200s%s, not an .ovf descriptor",
			    o->n ? "'" : "", o->n ? o->m[0].name : "missing",
			    o->n ? "'" : "");
		goto fail;
	}
	o->ovf = 0;
	for (unsigned i = 1; i < o->n; i++) {
		if (ova_ends(o->m[i].name, ".ovf")) {
			r = err_set(e, EI_ECORRUPT,
				    "ova: a second descriptor '%.200s'; an OVA holds one",
				    o->m[i].name);
			goto fail;
		}
		if (ova_ends(o->m[i].name, ".mf")) {
			if (o->mf >= 0) {
				r = err_set(e, EI_ECORRUPT,
					    "ova: two manifests, '%.200s' and '%.200s'",
					    o->m[o->mf].name, o->m[i].name);
				goto fail;
			}
			o->mf = (int)i;
		}
		if (ova_ends(o->m[i].name, ".cert"))
			o->cert = 1;
	}
	r = ova_pick_disk(vd, o, e);
	if (r < 0)
		goto fail;
	if (o->mf >= 0) {
		char *mf;

		r = ova_slurp(vd, &o->m[o->mf], OVA_MAX_MF, "manifest", &mf, e);
		if (r < 0)
			goto fail;
		/*
		 * DSP0243 asks the manifest for the files the descriptor
		 * references: the .ovf itself may be missing (info says so);
		 * the disk may not.
		 */
		r = ova_verify(vd, o, mf, (size_t)o->m[o->mf].size, o->ovf, e);
		if (r == OVA_UNLISTED) {
			o->ovf_unlisted = 1;
			r = 0;
		}
		if (r >= 0)
			r = ova_verify(vd, o, mf, (size_t)o->m[o->mf].size, o->disk, e);
		if (r == OVA_UNLISTED)
			r = err_set(e, EI_EMISMATCH,
				    "ova: the manifest '%.200s' has no digest of '%.200s'",
				    o->m[o->mf].name, o->m[o->disk].name);
		free(mf);
		if (r < 0)
			goto fail;
	}

	r = ova_open_member(vd, o, o->disk, &o->inner, e);
	if (r < 0)
		goto fail;
	vd->size = o->inner->size;
	vd->priv = o;
	return 0;
fail:
	ova_free(o);
	return r;
}

/* Every byte is the disk member's, read in place. */
static int ova_map(struct vdisk *vd, uint64_t off, uint64_t len,
		   struct map_run *run, struct err *e)
{
	struct ova *o = vd->priv;

	(void)e;
	run->src = MAP_VDISK;
	run->vd = o->inner;
	run->at = off;
	run->len = len;
	return 0;
}

static int ova_info(struct vdisk *vd, struct info *in, struct err *e)
{
	struct ova *o = vd->priv;
	int r = 0;

	info_str(in, "descriptor", "%s", o->m[o->ovf].name);
	info_str(in, "disk", "%s", o->m[o->disk].name);
	info_u64(in, "disk-number", o->pick + 1);
	info_u64(in, "disks", o->ndisks);
	info_list(in, "disk-list");
	for (unsigned i = 0; i < o->ndisks && i < OVA_LIST_MEMBERS; i++) {
		const struct ova_disk *d = &o->disks[i];
		struct vdisk *dv = i == o->pick ? o->inner : NULL;
		struct err de = { 0 };

		info_begin(in, NULL);
		info_u64(in, "number", i + 1);
		info_str(in, "file", "%s", d->href);
		if (d->member >= 0)
			info_u64(in, "file-size", o->m[d->member].size);
		/* the .ovf's ovf:size is advice: a disagreement is said, not fatal */
		if (d->has_size && d->member >= 0 && d->size != o->m[d->member].size)
			info_str(in, "size-mismatch",
				 "the .ovf says ovf:size %llu, the archive member has %llu bytes",
				 (unsigned long long)d->size,
				 (unsigned long long)o->m[d->member].size);
		/* Only for the listing: the others are not checked against the .mf. */
		if (!dv && d->member >= 0 && (unsigned)d->member != o->ovf &&
		    !d->compressed && !d->chunked &&
		    ova_open_member(vd, o, (unsigned)d->member, &dv, &de) < 0)
			info_str(in, "format", "unreadable: %.180s", de.msg);
		else if (!dv)
			info_str(in, "format", "not read: %s", d->compressed ?
				 "compressed" : d->chunked ? "chunked" : "not a disk member");
		if (dv) {
			info_str(in, "format", "%s", dv->fmt->name);
			info_u64(in, "virtual-size", dv->size);
		}
		info_bool(in, "read", i == o->pick);
		if (dv != o->inner)
			vdisk_close(dv);
		info_end(in);
	}
	info_list_end(in);
	info_str(in, "disk-format", "%s", o->inner->fmt->name);
	info_u64(in, "disk-offset", o->m[o->disk].off);
	info_u64(in, "disk-size", o->m[o->disk].size);
	if (o->mf >= 0)
		info_str(in, "manifest", "%s verified%s", o->alg, o->ovf_unlisted ?
			 "; it has no digest of the .ovf (DSP0243 does not ask for one)" : "");
	else
		info_str(in, "manifest", "absent");
	info_bool(in, "certificate", o->cert);
	info_u64(in, "members", o->n);
	info_list(in, "member-list");
	for (unsigned i = 0; i < o->n && i < OVA_LIST_MEMBERS; i++) {
		info_begin(in, NULL);
		info_str(in, "name", "%s", o->m[i].name);
		info_u64(in, "offset", o->m[i].off);
		info_u64(in, "size", o->m[i].size);
		info_end(in);
	}
	info_list_end(in);
	if (o->inner->fmt->info) {
		info_begin(in, "disk-info");
		r = o->inner->fmt->info(o->inner, in, e);
		info_end(in);
	}
	return r;
}

const struct img_format fmt_ova = {
	.name = "ova",
	.desc = "OVA appliance (tar of .ovf, disks, .mf)",
	.probe = ova_probe,
	.open = ova_open,
	.map = ova_map,
	.close = ova_close,
	.info = ova_info,
};

const struct img_format fmt_tar = {
	.name = "tar",
	.desc = "tar archive, not an OVA",
	.probe = tar_probe,
	.open = tar_refuse,
};
