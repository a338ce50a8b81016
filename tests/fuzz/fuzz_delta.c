// SPDX-License-Identifier: MIT
/*
 * libFuzzer entry point for the delta patch decoder (src/delta/delta-format.md):
 * header, chunk headers, op streams, references, zstd and LZMA2 (BCJ) data
 * frames, over the in-memory I/O.  The first input byte picks the mode: bit 0 set skips the
 * checksums (header SHA-256, chunk CRC-32) so that mutations reach the
 * parsers behind them.  OLD is a synthetic disk of the size the header
 * asks for (up to 64 MiB), filled with a pattern; NEW goes to a sink that
 * checks it arrives in order.  A SIGNED patch's signature section is
 * parsed and verified against the key of seed-delta.sh (32 bytes 0x42),
 * and its key_id bytes are also tried as a public key, so that hostile
 * point encodings and scalars reach Ed25519.  Seeds: real patches
 * (seed-delta.sh), one of them signed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "delta/delta.h"
#include "core/format.h"
#include "core/kconfig.h"
#if IS_ENABLED(CONFIG_DELTA_SIGN)
#include <sodium.h>
#endif

#define FUZZ_MAX_OLD (64u << 20)
#define FUZZ_MAX_NEW (256ULL << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#if IS_ENABLED(CONFIG_CODEC_ZSTD)
static int old_read(struct vdisk *vd, void *buf, size_t len, uint64_t off,
		    struct err *e)
{
	uint8_t *b = buf;

	(void)vd;
	(void)e;
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)((off + i) * 131 >> 3);
	return 0;
}

static int old_map(struct vdisk *vd, uint64_t off, uint64_t len,
		   struct map_run *run, struct err *e)
{
	(void)vd;
	(void)off;
	(void)e;
	memset(run, 0, sizeof(*run));
	run->len = len;
	run->type = EXT_DATA;
	run->src = MAP_DECODE;
	return 0;
}

static const struct img_format old_fmt = {
	.name = "fuzz-old", .map = old_map, .decode = old_read,
};

/* The signature section: its form, then the signature, as apply --verify. */
static void fuzz_sig(const uint8_t *data, size_t size, const struct delta_header *h)
{
	struct delta_sig sg;
	struct err e = { 0 };

	if (!(h->incompat & DELTA_INCOMPAT_SIGNED) || size < h->chunks_off ||
	    delta_sig_parse(data + h->header_size, &sg, &e) < 0)
		return;
#if IS_ENABLED(CONFIG_DELTA_SIGN)
	{
		static struct delta_key key;
		static int have_key;

		if (!have_key) {
			uint8_t sk[crypto_sign_ed25519_SECRETKEYBYTES];

			if (sodium_init() < 0)
				return;
			have_key = 1;
			memset(key.seed, 0x42, sizeof(key.seed));
			crypto_sign_ed25519_seed_keypair(key.pub, sk, key.seed);
			sha256(key.pub, sizeof(key.pub), key.id);
		}
		delta_sig_verify(h, data, &key, &e);
		if (crypto_sign_ed25519_verify_detached(sg.sig, data, h->header_size,
							sg.key_id) == 0)
			return;         /* verified: nothing follows either way */
	}
#endif
}

struct order {
	uint64_t next;
	int bad;
};

static int sink(void *arg, const void *buf, size_t len, uint64_t off,
		struct err *e)
{
	struct order *o = arg;

	(void)buf;
	(void)e;
	if (off != o->next)
		o->bad = 1;
	o->next = off + len;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct delta_header h;
	struct err e = { 0 };
	struct vdisk old = { 0 };
	struct delta_dec *d = NULL;
	struct io *pio = NULL;
	struct order o = { 0 };
	struct delta_sink s = { sink, &o };
	unsigned flags;
	int r;

	if (size < 1)
		return 0;
	flags = data[0] & 1 ? DELTA_DEC_NO_SUMS : 0;
	data++;
	size--;
	if (delta_header_parse(data, size, &h, flags != 0, &e) < 0)
		return 0;
	fuzz_sig(data, size, &h);
	if (h.old_size > FUZZ_MAX_OLD)
		return 0;
	old.fmt = &old_fmt;
	old.size = h.old_size;
	if (io_mem_new(data, size, 0, &pio, &e) < 0)
		return 0;
	if (delta_dec_new(&h, &old, pio, 0, NULL, flags, &d, &e) == 0) {
		while ((r = delta_dec_next(d, &s, &e)) == 1 && o.next < FUZZ_MAX_NEW)
			;
		if (o.bad)
			abort();        /* the decoder must produce NEW in order */
	}
	delta_dec_free(d);
	io_close(pio);
	return 0;
}
#else
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	(void)data;
	(void)size;
	return 0;
}
#endif
