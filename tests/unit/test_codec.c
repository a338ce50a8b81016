// SPDX-License-Identifier: MIT
/*
 * Unit tests of the codec tables.  Round trips prove little on their own,
 * so every compressed stream is also decoded by the reference tool (zstd,
 * xz, lz4, python's zlib) and compared with the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/codec.h"
#include "core/kconfig.h"
#include "t.h"

#define N (256 * 1024)

static uint8_t in[N], comp[2 * N], out[N];

static void fill(void)
{
	uint32_t x = 12345;

	for (size_t i = 0; i < N; i++) {
		x = x * 1103515245 + 12345;
		/* Text-like with runs: compressible, but not trivially. */
		in[i] = (i / 4096) % 3 == 0 ? (uint8_t)('a' + (x >> 16) % 16) :
			(i / 4096) % 3 == 1 ? (uint8_t)(i % 251) : 0;
	}
}

/* Decode @len bytes of @buf with a shell command reading stdin; cmp with in. */
static int oracle(const char *cmd, const uint8_t *buf, size_t len)
{
	char line[1024], in_p[64], out_p[64], want_p[64];
	FILE *f;
	int r;

	/* Names of this process's own: concurrent test runs must not clash. */
	snprintf(in_p, sizeof(in_p), "/tmp/edgeimg-codec-%d.in", (int)getpid());
	snprintf(out_p, sizeof(out_p), "/tmp/edgeimg-codec-%d.out", (int)getpid());
	snprintf(want_p, sizeof(want_p), "/tmp/edgeimg-codec-%d.want", (int)getpid());
	f = fopen(in_p, "wb");
	if (!f)
		return -1;
	fwrite(buf, 1, len, f);
	fclose(f);
	f = fopen(want_p, "wb");
	if (!f)
		return -1;
	fwrite(in, 1, N, f);
	fclose(f);
	snprintf(line, sizeof(line), "%s <%s >%s && cmp -s %s %s", cmd, in_p,
		 out_p, out_p, want_p);
	r = system(line);
	unlink(in_p);
	unlink(out_p);
	unlink(want_p);
	return r;
}

static void test_one(const char *name, const char *oracle_cmd)
{
	const struct codec *c = codec_find(name);
	struct err e = { 0 };
	void *ctx = NULL;
	size_t clen = sizeof(comp), olen = sizeof(out);

	CHECK(c != NULL, "codec %s is built in", name);
	if (!c)
		return;
	CHECK(c->compress(&ctx, in, N, comp, &clen, c->level_default, &e) == 0,
	      "%s compress: %s", name, e.msg);
	CHECK(clen < N / 2, "%s compresses (%zu of %d)", name, clen, N);
	CHECK(c->decompress(&ctx, comp, clen, out, &olen, &e) == 0 && olen == N &&
	      !memcmp(in, out, N), "%s round trip: %s", name, e.msg);
	if (oracle_cmd) {
		if (!strcmp(name, "lz4")) {
			/* Wrap the raw block in lz4's legacy frame for lz4 -d. */
			static uint8_t framed[2 * N + 8];

			memcpy(framed, "\x02\x21\x4c\x18", 4);
			framed[4] = (uint8_t)clen;
			framed[5] = (uint8_t)(clen >> 8);
			framed[6] = (uint8_t)(clen >> 16);
			framed[7] = (uint8_t)(clen >> 24);
			memcpy(framed + 8, comp, clen);
			CHECK(oracle(oracle_cmd, framed, clen + 8) == 0,
			      "%s decoded by '%s'", name, oracle_cmd);
		} else {
			CHECK(oracle(oracle_cmd, comp, clen) == 0,
			      "%s decoded by '%s'", name, oracle_cmd);
		}
	}
	/* Output larger than the caller's buffer is an error, not an overflow. */
	olen = N / 2;
	CHECK(c->decompress(&ctx, comp, clen, out, &olen, &e) == EI_ECODEC,
	      "%s: output over capacity refused", name);
	/* Corrupt and truncated input. */
	olen = N;
	CHECK(c->decompress(&ctx, comp, clen / 2, out, &olen, &e) < 0,
	      "%s: truncated input refused", name);
	comp[clen / 3] ^= 0xff;
	comp[clen / 3 + 1] ^= 0x55;
	olen = N;
	{
		int r = c->decompress(&ctx, comp, clen, out, &olen, &e);

		CHECK(r < 0 || memcmp(in, out, N), "%s: corruption noticed", name);
	}
	/* Incompressible input that does not fit reports -ENOSPC. */
	clen = 100;
	CHECK(c->compress(&ctx, in, N, comp, &clen, c->level_min, &e) == -ENOSPC,
	      "%s: -ENOSPC when it does not fit", name);
	codec_ctx_free(c, ctx);
}

int main(void)
{
	fill();
	test_one("deflate",
		 "python3 -c 'import sys,zlib; sys.stdout.buffer.write(zlib.decompress(sys.stdin.buffer.read(), -15))'");
	test_one("zlib",
		 "python3 -c 'import sys,zlib; sys.stdout.buffer.write(zlib.decompress(sys.stdin.buffer.read()))'");
	if (IS_ENABLED(CONFIG_CODEC_ZSTD))
		test_one("zstd", "zstd -q -d -c");
	if (IS_ENABLED(CONFIG_CODEC_XZ))
		test_one("xz", "xz -d -c");
	if (IS_ENABLED(CONFIG_CODEC_LZ4))
		test_one("lz4", "lz4 -q -d -c");
	CHECK(codec_find("brotli") == NULL, "unknown codec");
	return t_done("test_codec");
}
