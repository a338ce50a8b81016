// SPDX-License-Identifier: MIT
/* The content hash: SHA-256 of the leaf hashes of 1 MiB leaves, then the length. */
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "core/io.h"
#include "core/vdisk.h"
#include "crypto/chash.h"

/* head -c 1048576 /dev/zero | sha256sum (tests/unit/test_sha.c checks it) */
const uint8_t chash_zero_leaf[CHASH_LEN] = {
	0x30, 0xe1, 0x49, 0x55, 0xeb, 0xf1, 0x35, 0x22, 0x66, 0xdc, 0x2f, 0xf8,
	0x06, 0x7e, 0x68, 0x10, 0x46, 0x07, 0xe7, 0x50, 0xab, 0xb9, 0xd3, 0xb3,
	0x65, 0x82, 0xb8, 0xaf, 0x90, 0x9f, 0xcb, 0x58,
};

void chash_init(struct chash *c)
{
	sha256_init(&c->root);
	c->len = 0;
}

static void chash_leaf_done(struct chash *c)
{
	uint8_t h[CHASH_LEN];

	sha256_final(&c->leaf, h);
	sha256_update(&c->root, h, sizeof(h));
}

void chash_add_leaf(struct chash *c, const uint8_t hash[CHASH_LEN],
		    size_t leaf_len)
{
	sha256_update(&c->root, hash, CHASH_LEN);
	c->len += leaf_len;
}

void chash_update(struct chash *c, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len) {
		size_t fill = (size_t)(c->len % CHASH_LEAF), n;

		if (!fill && len >= CHASH_LEAF) {        /* a whole leaf in place */
			uint8_t h[CHASH_LEN];

			if (buf_is_zero(p, CHASH_LEAF)) {
				chash_add_leaf(c, chash_zero_leaf, CHASH_LEAF);
			} else {
				sha256(p, CHASH_LEAF, h);
				chash_add_leaf(c, h, CHASH_LEAF);
			}
			p += CHASH_LEAF;
			len -= CHASH_LEAF;
			continue;
		}
		if (!fill)
			sha256_init(&c->leaf);
		n = len < CHASH_LEAF - fill ? len : CHASH_LEAF - fill;
		sha256_update(&c->leaf, p, n);
		c->len += n;
		p += n;
		len -= n;
		if (!(c->len % CHASH_LEAF))
			chash_leaf_done(c);
	}
}

void chash_zeros(struct chash *c, uint64_t n)
{
	size_t fill = (size_t)(c->len % CHASH_LEAF);

	if (fill) {                     /* finish the leaf being filled */
		uint64_t k = min_u64(n, CHASH_LEAF - fill);

		sha256_zeros(&c->leaf, k);
		c->len += k;
		n -= k;
		if (!(c->len % CHASH_LEAF))
			chash_leaf_done(c);
	}
	for (; n >= CHASH_LEAF; n -= CHASH_LEAF)
		chash_add_leaf(c, chash_zero_leaf, CHASH_LEAF);
	if (n) {
		sha256_init(&c->leaf);
		sha256_zeros(&c->leaf, n);
		c->len += n;
	}
}

void chash_final(struct chash *c, uint8_t out[CHASH_LEN])
{
	uint8_t len[8];

	if (c->len % CHASH_LEAF)
		chash_leaf_done(c);
	put_le64(len, c->len);
	sha256_update(&c->root, len, sizeof(len));
	sha256_final(&c->root, out);
}

void chash(const void *data, size_t len, uint8_t out[CHASH_LEN])
{
	struct chash c;

	chash_init(&c);
	chash_update(&c, data, len);
	chash_final(&c, out);
}

int chash_io(struct io *io, uint64_t len, int drop_cache,
	     uint8_t out[CHASH_LEN], struct err *e)
{
	uint8_t *buf;
	struct chash c;
	uint64_t off = 0;
	int r = 0;

	if (!(io->flags & IO_STREAM) && len > io->size)
		return err_set(e, EI_ETRUNC, "%s: %llu bytes, %llu expected",
			       io->name, (unsigned long long)io->size,
			       (unsigned long long)len);
	if (drop_cache && (r = io_drop_cache(io, e)) < 0)
		return r;
	buf = malloc(CHASH_LEAF);
	if (!buf)
		return err_set(e, -ENOMEM, "out of memory");
	chash_init(&c);
	while (off < len) {
		uint64_t run;

		r = io_probe_data(io, off, len - off, &run, e);
		if (r < 0)
			break;
		if (!r) {
			chash_zeros(&c, run);
		} else {
			/* up to the next leaf boundary: whole zero leaves are free */
			run = min_u64(run, CHASH_LEAF - off % CHASH_LEAF);
			r = io_read(io, buf, (size_t)run, off, "read-back", e);
			if (r < 0)
				break;
			chash_update(&c, buf, (size_t)run);
		}
		off += run;
		r = 0;
	}
	free(buf);
	if (r < 0)
		return r;
	chash_final(&c, out);
	return 0;
}

int chash_vdisk(struct vdisk *vd, uint8_t out[CHASH_LEN],
		void (*progress)(void *arg, uint64_t done, uint64_t total),
		void *arg, struct err *e)
{
	uint8_t *buf = malloc(CHASH_LEAF);
	struct chash c;
	uint64_t off = 0;
	int r = 0;

	if (!buf)
		return err_set(e, -ENOMEM, "out of memory");
	chash_init(&c);
	while (off < vd->size) {
		struct extent ext;

		r = vdisk_extent(vd, off, vd->size - off, &ext, e);
		if (r < 0)
			break;
		if (ext.type == EXT_DATA) {
			/* up to the next leaf boundary: whole zero leaves are free */
			ext.len = min_u64(ext.len, CHASH_LEAF - off % CHASH_LEAF);
			r = vdisk_read(vd, buf, (size_t)ext.len, off, e);
			if (r < 0)
				break;
			chash_update(&c, buf, (size_t)ext.len);
		} else {
			chash_zeros(&c, ext.len);
		}
		off += ext.len;
		if (progress)
			progress(arg, off, vd->size);
	}
	free(buf);
	if (r < 0)
		return r;
	chash_final(&c, out);
	return 0;
}
