// SPDX-License-Identifier: MIT
/*
 * SHA-1 and SHA-256 in portable C, written from FIPS 180-4 (sections 4.1,
 * 4.2, 5.1, 5.3, 6.1 and 6.2): big-endian words and unrolled rounds;
 * SHA-256 blocks also in the x86-64 SHA extensions and the ARMv8 SHA2
 * instructions, picked at run time.
 */
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "crypto/sha.h"

static inline uint32_t rol32(uint32_t x, unsigned n)
{
	return x << n | x >> (32 - n);
}

static inline uint32_t ror32(uint32_t x, unsigned n)
{
	return x >> n | x << (32 - n);
}

/* --- SHA-1 ------------------------------------------------------------- */

/* W[t] for t >= 16, kept in a 16-entry ring (FIPS 180-4 6.1.3 step 1). */
#define S1_W(t) (w[(t) & 15] = rol32(w[((t) + 13) & 15] ^ w[((t) + 8) & 15] ^ \
				     w[((t) + 2) & 15] ^ w[(t) & 15], 1))
#define S1_CH(x, y, z) (((x) & ((y) ^ (z))) ^ (z))
#define S1_PAR(x, y, z) ((x) ^ (y) ^ (z))
#define S1_MAJ(x, y, z) (((x) & (y)) | ((z) & ((x) | (y))))
#define S1_ROUND(a, b, c, d, e, f, k, wt)                                \
	do {                                                             \
		e += rol32(a, 5) + f(b, c, d) + (k) + (wt);              \
		b = rol32(b, 30);                                        \
	} while (0)
/* Five rounds with the variables renamed instead of shifted. */
#define S1_5(t, f, k, W)                                                 \
	do {                                                             \
		S1_ROUND(a, b, c, d, e, f, k, W(t));                     \
		S1_ROUND(e, a, b, c, d, f, k, W((t) + 1));               \
		S1_ROUND(d, e, a, b, c, f, k, W((t) + 2));               \
		S1_ROUND(c, d, e, a, b, f, k, W((t) + 3));               \
		S1_ROUND(b, c, d, e, a, f, k, W((t) + 4));               \
	} while (0)
#define S1_W0(t) (w[t])

static void sha1_blocks(uint32_t h[5], const uint8_t *p, size_t n)
{
	while (n--) {
		uint32_t w[16], a, b, c, d, e;
		int i;

		for (i = 0; i < 16; i++)
			w[i] = get_be32(p + 4 * i);
		a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
		S1_5(0, S1_CH, 0x5a827999, S1_W0);
		S1_5(5, S1_CH, 0x5a827999, S1_W0);
		S1_5(10, S1_CH, 0x5a827999, S1_W0);
		S1_ROUND(a, b, c, d, e, S1_CH, 0x5a827999, w[15]);
		S1_ROUND(e, a, b, c, d, S1_CH, 0x5a827999, S1_W(16));
		S1_ROUND(d, e, a, b, c, S1_CH, 0x5a827999, S1_W(17));
		S1_ROUND(c, d, e, a, b, S1_CH, 0x5a827999, S1_W(18));
		S1_ROUND(b, c, d, e, a, S1_CH, 0x5a827999, S1_W(19));
		S1_5(20, S1_PAR, 0x6ed9eba1, S1_W);
		S1_5(25, S1_PAR, 0x6ed9eba1, S1_W);
		S1_5(30, S1_PAR, 0x6ed9eba1, S1_W);
		S1_5(35, S1_PAR, 0x6ed9eba1, S1_W);
		S1_5(40, S1_MAJ, 0x8f1bbcdc, S1_W);
		S1_5(45, S1_MAJ, 0x8f1bbcdc, S1_W);
		S1_5(50, S1_MAJ, 0x8f1bbcdc, S1_W);
		S1_5(55, S1_MAJ, 0x8f1bbcdc, S1_W);
		S1_5(60, S1_PAR, 0xca62c1d6, S1_W);
		S1_5(65, S1_PAR, 0xca62c1d6, S1_W);
		S1_5(70, S1_PAR, 0xca62c1d6, S1_W);
		S1_5(75, S1_PAR, 0xca62c1d6, S1_W);
		h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
		p += 64;
	}
}

void sha1_init(struct sha1 *c)
{
	static const uint32_t iv[5] = {
		0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0,
	};

	memcpy(c->h, iv, sizeof(iv));
	c->len = 0;
}

/* Shared buffering of SHA-1 and SHA-256: both use 64-byte blocks. */
static void sha_update(uint32_t *h, uint64_t *total, uint8_t buf[64],
		       const uint8_t *p, size_t len,
		       void (*blocks)(uint32_t *, const uint8_t *, size_t))
{
	size_t used = (size_t)(*total & 63);

	*total += len;
	if (used) {
		size_t n = 64 - used < len ? 64 - used : len;

		memcpy(buf + used, p, n);
		p += n;
		len -= n;
		if (used + n < 64)
			return;
		blocks(h, buf, 1);
	}
	if (len >= 64) {
		blocks(h, p, len / 64);
		p += len & ~(size_t)63;
		len &= 63;
	}
	if (len)
		memcpy(buf, p, len);
}

/* Padding (FIPS 180-4 5.1.1): 0x80, zeros, the bit length big-endian. */
static void sha_pad(uint32_t *h, uint64_t total, uint8_t buf[64],
		    void (*blocks)(uint32_t *, const uint8_t *, size_t))
{
	size_t used = (size_t)(total & 63);

	buf[used++] = 0x80;
	if (used > 56) {
		memset(buf + used, 0, 64 - used);
		blocks(h, buf, 1);
		used = 0;
	}
	memset(buf + used, 0, 56 - used);
	put_be64(buf + 56, total << 3);
	blocks(h, buf, 1);
}

static void sha1_blocks_cb(uint32_t *h, const uint8_t *p, size_t n)
{
	sha1_blocks(h, p, n);
}

void sha1_update(struct sha1 *c, const void *data, size_t len)
{
	sha_update(c->h, &c->len, c->buf, data, len, sha1_blocks_cb);
}

void sha1_final(struct sha1 *c, uint8_t out[SHA1_LEN])
{
	sha_pad(c->h, c->len, c->buf, sha1_blocks_cb);
	for (int i = 0; i < 5; i++)
		put_be32(out + 4 * i, c->h[i]);
	memset(c, 0, sizeof(*c));
}

void sha1(const void *data, size_t len, uint8_t out[SHA1_LEN])
{
	struct sha1 c;

	sha1_init(&c);
	sha1_update(&c, data, len);
	sha1_final(&c, out);
}

/* --- SHA-256 ----------------------------------------------------------- */

static const uint32_t sha256_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define S2_BSIG0(x) (ror32(x, 2) ^ ror32(x, 13) ^ ror32(x, 22))
#define S2_BSIG1(x) (ror32(x, 6) ^ ror32(x, 11) ^ ror32(x, 25))
#define S2_SSIG0(x) (ror32(x, 7) ^ ror32(x, 18) ^ ((x) >> 3))
#define S2_SSIG1(x) (ror32(x, 17) ^ ror32(x, 19) ^ ((x) >> 10))
#define S2_CH(x, y, z) (((x) & ((y) ^ (z))) ^ (z))
#define S2_MAJ(x, y, z) (((x) & (y)) | ((z) & ((x) | (y))))
#define S2_ROUND(a, b, c, d, e, f, g, h, t)                              \
	do {                                                             \
		uint32_t t1 = h + S2_BSIG1(e) + S2_CH(e, f, g) +         \
			      sha256_k[t] + w[t];                        \
		d += t1;                                                 \
		h = t1 + S2_BSIG0(a) + S2_MAJ(a, b, c);                  \
	} while (0)
/* Eight rounds with the variables renamed instead of shifted. */
#define S2_8(t)                                                          \
	do {                                                             \
		S2_ROUND(a, b, c, d, e, f, g, h, (t));                   \
		S2_ROUND(h, a, b, c, d, e, f, g, (t) + 1);               \
		S2_ROUND(g, h, a, b, c, d, e, f, (t) + 2);               \
		S2_ROUND(f, g, h, a, b, c, d, e, (t) + 3);               \
		S2_ROUND(e, f, g, h, a, b, c, d, (t) + 4);               \
		S2_ROUND(d, e, f, g, h, a, b, c, (t) + 5);               \
		S2_ROUND(c, d, e, f, g, h, a, b, (t) + 6);               \
		S2_ROUND(b, c, d, e, f, g, h, a, (t) + 7);               \
	} while (0)

static void sha256_blocks(uint32_t *st, const uint8_t *p, size_t n)
{
	while (n--) {
		uint32_t w[64], a, b, c, d, e, f, g, h;
		int i;

		for (i = 0; i < 16; i++)
			w[i] = get_be32(p + 4 * i);
		/* The message schedule, FIPS 180-4 6.2.2 step 1. */
		for (i = 16; i < 64; i++)
			w[i] = S2_SSIG1(w[i - 2]) + w[i - 7] +
			       S2_SSIG0(w[i - 15]) + w[i - 16];
		a = st[0], b = st[1], c = st[2], d = st[3];
		e = st[4], f = st[5], g = st[6], h = st[7];
		for (i = 0; i < 64; i += 8)
			S2_8(i);
		st[0] += a, st[1] += b, st[2] += c, st[3] += d;
		st[4] += e, st[5] += f, st[6] += g, st[7] += h;
		p += 64;
	}
}

/* --- SHA-256 in the CPU's SHA instructions -------------------------------- */

/*
 * Both run the same rounds as sha256_blocks() on the same state words,
 * with the message schedule and two rounds per instruction in hardware.
 * They are compiled for their instructions alone (a target attribute), so
 * the rest of the build keeps its flags, and are only called when the
 * CPU says it has them (sha256_pick()).
 */
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

/* Intel SHA extensions (SHA-NI): the state as ABEF and CDGH halves. */
__attribute__((target("sha,sse4.1")))
static void sha256_blocks_shani(uint32_t *st, const uint8_t *p, size_t n)
{
	const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL,
					     0x0405060700010203ULL);
	__m128i abef, cdgh, t;

	t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)st), 0xb1);
	cdgh = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(st + 4)), 0x1b);
	abef = _mm_alignr_epi8(t, cdgh, 8);
	cdgh = _mm_blend_epi16(cdgh, t, 0xf0);
	while (n--) {
		__m128i abef0 = abef, cdgh0 = cdgh, w[4], wk;

		/* w[i & 3]: schedule words 4i..4i+3, replacing those of i - 4 */
#pragma GCC unroll 16
		for (int i = 0; i < 16; i++) {
			if (i < 4)
				w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)),
							bswap);
			else
				w[i & 3] = _mm_sha256msg2_epu32(
					_mm_add_epi32(_mm_sha256msg1_epu32(w[i & 3], w[(i + 1) & 3]),
						      _mm_alignr_epi8(w[(i + 3) & 3], w[(i + 2) & 3], 4)),
					w[(i + 3) & 3]);
			wk = _mm_add_epi32(w[i & 3],
					   _mm_loadu_si128((const __m128i *)(sha256_k + 4 * i)));
			cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);
			abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(wk, 0x0e));
		}
		abef = _mm_add_epi32(abef, abef0);
		cdgh = _mm_add_epi32(cdgh, cdgh0);
		p += 64;
	}
	t = _mm_shuffle_epi32(abef, 0x1b);
	cdgh = _mm_shuffle_epi32(cdgh, 0xb1);
	_mm_storeu_si128((__m128i *)st, _mm_blend_epi16(t, cdgh, 0xf0));
	_mm_storeu_si128((__m128i *)(st + 4), _mm_alignr_epi8(cdgh, t, 8));
}

/* SHA-NI needs SSSE3 and SSE4.1 too (byte shuffle, blend). */
static int sha256_hw_present(void)
{
	unsigned a, b, c, d;

	return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSSE3) && (c & bit_SSE4_1) &&
	       __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_SHA);
}
#define sha256_blocks_hw sha256_blocks_shani
#define SHA256_HW_NAME "x86-64 SHA-NI"

#elif defined(__aarch64__)
#include <arm_neon.h>
#include <sys/auxv.h>

#ifndef HWCAP_SHA2
#define HWCAP_SHA2 (1 << 6)     /* the Linux arm64 hwcap bit */
#endif

/* ARMv8 Cryptographic Extension, SHA2 instructions. */
__attribute__((target("+crypto")))
static void sha256_blocks_armv8(uint32_t *st, const uint8_t *p, size_t n)
{
	uint32x4_t abcd = vld1q_u32(st), efgh = vld1q_u32(st + 4);

	while (n--) {
		uint32x4_t abcd0 = abcd, efgh0 = efgh, w[4], wk, t;

		/* w[i & 3]: schedule words 4i..4i+3, replacing those of i - 4 */
#pragma GCC unroll 16
		for (int i = 0; i < 16; i++) {
			if (i < 4)
				w[i] = vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(p + 16 * i)));
			else
				w[i & 3] = vsha256su1q_u32(vsha256su0q_u32(w[i & 3], w[(i + 1) & 3]),
							   w[(i + 2) & 3], w[(i + 3) & 3]);
			wk = vaddq_u32(w[i & 3], vld1q_u32(sha256_k + 4 * i));
			t = abcd;
			abcd = vsha256hq_u32(abcd, efgh, wk);
			efgh = vsha256h2q_u32(efgh, t, wk);
		}
		abcd = vaddq_u32(abcd, abcd0);
		efgh = vaddq_u32(efgh, efgh0);
		p += 64;
	}
	vst1q_u32(st, abcd);
	vst1q_u32(st + 4, efgh);
}

static int sha256_hw_present(void)
{
	return !!(getauxval(AT_HWCAP) & HWCAP_SHA2);
}
#define sha256_blocks_hw sha256_blocks_armv8
#define SHA256_HW_NAME "ARMv8 SHA2"
#endif

/* --- SHA-256: picking the block function ------------------------------ */

struct sha256_impl {
	const char *name;
	void (*blocks)(uint32_t *st, const uint8_t *p, size_t n);
};

static const struct sha256_impl sha256_portable = { "portable", sha256_blocks };
#ifdef SHA256_HW_NAME
static const struct sha256_impl sha256_hw = { SHA256_HW_NAME, sha256_blocks_hw };
#endif

/*
 * The one process-wide choice, a cache of what the CPU says.  Threads that
 * race to set it store the same value, and both functions compute the same
 * state, so a context may even see it change between two blocks.
 */
static const struct sha256_impl *sha256_cur;

const char *sha256_pick(void)
{
	const struct sha256_impl *im = &sha256_portable;
	const char *env = getenv("EDGEIMG_SHA");

#ifdef SHA256_HW_NAME
	if ((!env || strcmp(env, "portable")) && sha256_hw_present())
		im = &sha256_hw;
#endif
	__atomic_store_n(&sha256_cur, im, __ATOMIC_RELAXED);
	return im->name;
}

static const struct sha256_impl *sha256_impl(void)
{
	const struct sha256_impl *im = __atomic_load_n(&sha256_cur, __ATOMIC_RELAXED);

	if (!im) {
		sha256_pick();
		im = __atomic_load_n(&sha256_cur, __ATOMIC_RELAXED);
	}
	return im;
}

void sha256_init(struct sha256 *c)
{
	static const uint32_t iv[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};

	memcpy(c->h, iv, sizeof(iv));
	c->len = 0;
}

void sha256_update(struct sha256 *c, const void *data, size_t len)
{
	sha_update(c->h, &c->len, c->buf, data, len, sha256_impl()->blocks);
}

/*
 * Whole zero blocks: every word of a zero block's message schedule is zero
 * (sigma0(0) = sigma1(0) = 0, FIPS 180-4 6.2.2), so the portable rounds
 * run on the constants alone: no schedule to load or expand.  The CPU's
 * instructions get the blocks from a buffer of zeros.
 */
static const uint8_t sha256_zero_buf[1024];

static void sha256_zero_blocks(uint32_t *st, uint64_t n)
{
	static const uint32_t w[64];
	const struct sha256_impl *im = sha256_impl();
	const size_t most = sizeof(sha256_zero_buf) / 64;

	if (im != &sha256_portable) {
		for (; n > most; n -= most)
			im->blocks(st, sha256_zero_buf, most);
		im->blocks(st, sha256_zero_buf, (size_t)n);
		return;
	}
	while (n--) {
		uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
		uint32_t e = st[4], f = st[5], g = st[6], h = st[7];

		for (int i = 0; i < 64; i += 8)
			S2_8(i);
		st[0] += a, st[1] += b, st[2] += c, st[3] += d;
		st[4] += e, st[5] += f, st[6] += g, st[7] += h;
	}
}

void sha256_zeros(struct sha256 *c, uint64_t n)
{
	size_t used = (size_t)(c->len % 64);

	if (used) {             /* complete the partial block first */
		size_t k = (size_t)(n < 64 - used ? n : 64 - used);

		sha256_update(c, sha256_zero_buf, k);
		n -= k;
	}
	if (n >= 64) {          /* whole blocks, straight into the state */
		sha256_zero_blocks(c->h, n / 64);
		c->len += n & ~(uint64_t)63;
		n &= 63;
	}
	if (n)
		sha256_update(c, sha256_zero_buf, (size_t)n);
}

void sha256_final(struct sha256 *c, uint8_t out[SHA256_LEN])
{
	sha_pad(c->h, c->len, c->buf, sha256_impl()->blocks);
	for (int i = 0; i < 8; i++)
		put_be32(out + 4 * i, c->h[i]);
	memset(c, 0, sizeof(*c));
}

void sha256(const void *data, size_t len, uint8_t out[SHA256_LEN])
{
	struct sha256 c;

	sha256_init(&c);
	sha256_update(&c, data, len);
	sha256_final(&c, out);
}

char *sha_hex(const uint8_t *digest, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hex[digest[i] >> 4];
		out[2 * i + 1] = hex[digest[i] & 15];
	}
	out[2 * len] = 0;
	return out;
}
