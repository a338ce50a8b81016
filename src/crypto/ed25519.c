// SPDX-License-Identifier: MIT
/*
 * Ed25519 (RFC 8032 section 5.1) in portable C: the field GF(2^255 - 19)
 * in five 51-bit limbs with 128-bit products, the twisted Edwards curve
 * -x^2 + y^2 = 1 + d x^2 y^2 in extended coordinates (one complete
 * addition formula, used for doubling too), scalars modulo the group
 * order L by shift-and-subtract.  Written for clarity rather than speed:
 * a patch carries one signature.  Secret-dependent work (the scalar
 * multiplication of signing) runs without secret-dependent branches or
 * memory indices.
 */
#include <string.h>

#include "core/bytes.h"
#include "crypto/ed25519.h"
#include "crypto/sha.h"

#define M51 ((1ULL << 51) - 1)

typedef unsigned __int128 u128;

/* An element of GF(p), p = 2^255 - 19: sum of v[i] 2^(51 i). */
struct fe {
	uint64_t v[5];
};

/* A point (X : Y : Z : T) with x = X/Z, y = Y/Z, x y = T/Z (RFC 8032 5.1.4). */
struct ge {
	struct fe x, y, z, t;
};

/* What the formulas need: d, 2d, sqrt(-1) and the base point B. */
struct ed_consts {
	struct fe d, d2, sqrtm1;
	struct ge b;
};

/* --- the field -------------------------------------------------------- */

static void fe_small(struct fe *r, uint64_t x)
{
	memset(r, 0, sizeof(*r));
	r->v[0] = x;
}

/* One carry pass: limbs 1..4 below 2^51 after it, limb 0 nearly so. */
static void fe_carry(struct fe *r)
{
	uint64_t c;

	for (int i = 0; i < 4; i++) {
		c = r->v[i] >> 51;
		r->v[i] &= M51;
		r->v[i + 1] += c;
	}
	c = r->v[4] >> 51;
	r->v[4] &= M51;
	r->v[0] += 19 * c;
}

static void fe_add(struct fe *r, const struct fe *a, const struct fe *b)
{
	for (int i = 0; i < 5; i++)
		r->v[i] = a->v[i] + b->v[i];
	fe_carry(r);
}

/* a - b computed as a + 2p - b: every limb of b is below 2^52 - 38. */
static void fe_sub(struct fe *r, const struct fe *a, const struct fe *b)
{
	r->v[0] = a->v[0] + 0xfffffffffffdaULL - b->v[0];
	for (int i = 1; i < 5; i++)
		r->v[i] = a->v[i] + 0xffffffffffffeULL - b->v[i];
	fe_carry(r);
}

static void fe_neg(struct fe *r, const struct fe *a)
{
	struct fe z;

	fe_small(&z, 0);
	fe_sub(r, &z, a);
}

static void fe_mul(struct fe *r, const struct fe *a, const struct fe *b)
{
	const uint64_t *x = a->v, *y = b->v;
	uint64_t y1 = 19 * y[1], y2 = 19 * y[2], y3 = 19 * y[3], y4 = 19 * y[4];
	u128 t0, t1, t2, t3, t4, c;

	/* 2^255 = 19 (mod p): products past limb 4 come back times 19 */
	t0 = (u128)x[0] * y[0] + (u128)x[1] * y4 + (u128)x[2] * y3 +
	     (u128)x[3] * y2 + (u128)x[4] * y1;
	t1 = (u128)x[0] * y[1] + (u128)x[1] * y[0] + (u128)x[2] * y4 +
	     (u128)x[3] * y3 + (u128)x[4] * y2;
	t2 = (u128)x[0] * y[2] + (u128)x[1] * y[1] + (u128)x[2] * y[0] +
	     (u128)x[3] * y4 + (u128)x[4] * y3;
	t3 = (u128)x[0] * y[3] + (u128)x[1] * y[2] + (u128)x[2] * y[1] +
	     (u128)x[3] * y[0] + (u128)x[4] * y4;
	t4 = (u128)x[0] * y[4] + (u128)x[1] * y[3] + (u128)x[2] * y[2] +
	     (u128)x[3] * y[1] + (u128)x[4] * y[0];
	t1 += t0 >> 51;
	t2 += t1 >> 51;
	t3 += t2 >> 51;
	t4 += t3 >> 51;
	c = (t0 & M51) + (t4 >> 51) * 19;
	r->v[0] = (uint64_t)c & M51;
	r->v[1] = ((uint64_t)t1 & M51) + (uint64_t)(c >> 51);
	r->v[2] = (uint64_t)t2 & M51;
	r->v[3] = (uint64_t)t3 & M51;
	r->v[4] = (uint64_t)t4 & M51;
}

static void fe_sq(struct fe *r, const struct fe *a)
{
	fe_mul(r, a, a);
}

/* a^e, e a 256-bit little-endian exponent (public: no secret is raised). */
static void fe_pow(struct fe *r, const struct fe *a, const uint8_t e[32])
{
	struct fe acc;

	fe_small(&acc, 1);
	for (int i = 255; i >= 0; i--) {
		fe_sq(&acc, &acc);
		if (e[i / 8] >> (i % 8) & 1)
			fe_mul(&acc, &acc, a);
	}
	*r = acc;
}

/* The exponents used here: 0xff bytes between the two ends given. */
static void fe_exp(uint8_t e[32], uint8_t lo, uint8_t hi)
{
	memset(e, 0xff, 32);
	e[0] = lo;
	e[31] = hi;
}

static void fe_invert(struct fe *r, const struct fe *a)
{
	uint8_t e[32];

	fe_exp(e, 0xeb, 0x7f);  /* p - 2 = 2^255 - 21 */
	fe_pow(r, a, e);
}

/* The canonical 32-byte little-endian encoding (bit 255 clear). */
static void fe_tobytes(uint8_t s[32], const struct fe *a)
{
	struct fe h = *a;
	uint64_t q;

	for (int i = 0; i < 3; i++)     /* every limb below 2^51: h < 2^255 */
		fe_carry(&h);
	/* q = 1 when h >= p, i.e. when h + 19 reaches 2^255 */
	q = (h.v[0] + 19) >> 51;
	for (int i = 1; i < 5; i++)
		q = (h.v[i] + q) >> 51;
	h.v[0] += 19 * q;
	for (int i = 0; i < 4; i++) {
		h.v[i + 1] += h.v[i] >> 51;
		h.v[i] &= M51;
	}
	h.v[4] &= M51;
	put_le64(s, h.v[0] | h.v[1] << 51);
	put_le64(s + 8, h.v[1] >> 13 | h.v[2] << 38);
	put_le64(s + 16, h.v[2] >> 26 | h.v[3] << 25);
	put_le64(s + 24, h.v[3] >> 39 | h.v[4] << 12);
}

/* Bits 0..254 of @s; bit 255 is ignored (the caller's sign bit). */
static void fe_frombytes(struct fe *r, const uint8_t s[32])
{
	r->v[0] = get_le64(s) & M51;
	r->v[1] = get_le64(s + 6) >> 3 & M51;
	r->v[2] = get_le64(s + 12) >> 6 & M51;
	r->v[3] = get_le64(s + 19) >> 1 & M51;
	r->v[4] = get_le64(s + 24) >> 12 & M51;
}

static int fe_eq(const struct fe *a, const struct fe *b)
{
	uint8_t x[32], y[32];

	fe_tobytes(x, a);
	fe_tobytes(y, b);
	return !memcmp(x, y, 32);
}

static int fe_is_odd(const struct fe *a)
{
	uint8_t x[32];

	fe_tobytes(x, a);
	return x[0] & 1;
}

/* r = b ? a : r, without a branch on b (0 or 1). */
static void fe_cmov(struct fe *r, const struct fe *a, uint64_t b)
{
	uint64_t m = 0 - b;

	for (int i = 0; i < 5; i++)
		r->v[i] ^= m & (r->v[i] ^ a->v[i]);
}

/* --- the group ---------------------------------------------------------- */

static void ge_identity(struct ge *p)
{
	fe_small(&p->x, 0);
	fe_small(&p->y, 1);
	fe_small(&p->z, 1);
	fe_small(&p->t, 0);
}

/* r = p + q: "add-2008-hwcd-3", complete for a = -1 and non-square d. */
static void ge_add(struct ge *r, const struct ge *p, const struct ge *q,
		   const struct ed_consts *k)
{
	struct fe a, b, c, d, e, f, g, h, t;

	fe_sub(&a, &p->y, &p->x);
	fe_sub(&t, &q->y, &q->x);
	fe_mul(&a, &a, &t);
	fe_add(&b, &p->y, &p->x);
	fe_add(&t, &q->y, &q->x);
	fe_mul(&b, &b, &t);
	fe_mul(&c, &p->t, &k->d2);
	fe_mul(&c, &c, &q->t);
	fe_mul(&d, &p->z, &q->z);
	fe_add(&d, &d, &d);
	fe_sub(&e, &b, &a);
	fe_sub(&f, &d, &c);
	fe_add(&g, &d, &c);
	fe_add(&h, &b, &a);
	fe_mul(&r->x, &e, &f);
	fe_mul(&r->y, &g, &h);
	fe_mul(&r->t, &e, &h);
	fe_mul(&r->z, &f, &g);
}

/* r = [s]p, s a 256-bit little-endian scalar; no branch on its bits. */
static void ge_scalarmult(struct ge *r, const uint8_t s[32], const struct ge *p,
			  const struct ed_consts *k)
{
	struct ge q, t;

	ge_identity(&q);
	for (int i = 255; i >= 0; i--) {
		uint64_t bit = s[i / 8] >> (i % 8) & 1;

		ge_add(&q, &q, &q, k);
		ge_add(&t, &q, p, k);
		fe_cmov(&q.x, &t.x, bit);
		fe_cmov(&q.y, &t.y, bit);
		fe_cmov(&q.z, &t.z, bit);
		fe_cmov(&q.t, &t.t, bit);
	}
	*r = q;
}

/* The encoding of 5.1.2: y, with x's low bit in bit 255. */
static void ge_tobytes(uint8_t s[32], const struct ge *p)
{
	struct fe zi, x, y;

	fe_invert(&zi, &p->z);
	fe_mul(&x, &p->x, &zi);
	fe_mul(&y, &p->y, &zi);
	fe_tobytes(s, &y);
	s[31] |= (uint8_t)(fe_is_odd(&x) << 7);
}

/* Decoding (5.1.3): 0, or -1 for a non-canonical y or a y off the curve. */
static int ge_frombytes(struct ge *p, const uint8_t s[32],
			const struct ed_consts *k)
{
	struct fe y, u, v, v3, x, t, one;
	uint8_t c[32], e[32];
	int sign = s[31] >> 7;

	fe_frombytes(&y, s);
	fe_tobytes(c, &y);
	c[31] |= (uint8_t)(sign << 7);
	if (memcmp(c, s, 32))
		return -1;      /* y >= p */
	fe_small(&one, 1);
	fe_sq(&u, &y);
	fe_mul(&v, &u, &k->d);
	fe_sub(&u, &u, &one);   /* u = y^2 - 1 */
	fe_add(&v, &v, &one);   /* v = d y^2 + 1 */
	/* x = u v^3 (u v^7)^((p - 5) / 8) */
	fe_sq(&v3, &v);
	fe_mul(&v3, &v3, &v);
	fe_sq(&t, &v3);
	fe_mul(&t, &t, &v);
	fe_mul(&t, &t, &u);
	fe_exp(e, 0xfd, 0x0f);  /* (p - 5) / 8 = 2^252 - 3 */
	fe_pow(&t, &t, e);
	fe_mul(&x, &u, &v3);
	fe_mul(&x, &x, &t);
	/* v x^2 is u (x is a root), -u (x sqrt(-1) is) or neither */
	fe_sq(&t, &x);
	fe_mul(&t, &t, &v);
	if (!fe_eq(&t, &u)) {
		fe_neg(&u, &u);
		if (!fe_eq(&t, &u))
			return -1;
		fe_mul(&x, &x, &k->sqrtm1);
	}
	fe_small(&t, 0);
	if (sign && fe_eq(&x, &t))
		return -1;
	if (fe_is_odd(&x) != sign)
		fe_neg(&x, &x);
	p->x = x;
	p->y = y;
	fe_small(&p->z, 1);
	fe_mul(&p->t, &x, &y);
	return 0;
}

static void ed_consts_init(struct ed_consts *k)
{
	struct fe t;
	uint8_t e[32], b[32];

	fe_small(&t, 121666);   /* d = -121665 / 121666 */
	fe_invert(&t, &t);
	fe_small(&k->d, 121665);
	fe_neg(&k->d, &k->d);
	fe_mul(&k->d, &k->d, &t);
	fe_add(&k->d2, &k->d, &k->d);
	fe_small(&t, 2);        /* sqrt(-1) = 2^((p - 1) / 4) */
	fe_exp(e, 0xfb, 0x1f);
	fe_pow(&k->sqrtm1, &t, e);
	memset(b, 0x66, 32);    /* B: y = 4/5, x even */
	b[0] = 0x58;
	ge_frombytes(&k->b, b, k);
}

/* --- scalars modulo L = 2^252 + 27742317777372353535851937790883648493 --- */

static const uint32_t sc_l[8] = {
	0x5cf5d3ed, 0x5812631a, 0xa2f79cd6, 0x14def9de,
	0x00000000, 0x00000000, 0x00000000, 0x10000000,
};

/* r -= L when r >= L, without a branch. */
static void sc_sub_l(uint32_t r[8])
{
	uint32_t t[8];
	uint64_t borrow = 0, m;

	for (int i = 0; i < 8; i++) {
		uint64_t d = (uint64_t)r[i] - sc_l[i] - borrow;

		t[i] = (uint32_t)d;
		borrow = d >> 63;
	}
	m = borrow - 1;         /* all ones when there was no borrow */
	for (int i = 0; i < 8; i++)
		r[i] ^= (uint32_t)m & (r[i] ^ t[i]);
}

/* out = the @len-byte little-endian number @in modulo L, bit by bit. */
static void sc_reduce(uint8_t out[32], const uint8_t *in, size_t len)
{
	uint32_t r[8] = { 0 };

	for (size_t i = len * 8; i-- > 0;) {
		uint32_t c = in[i / 8] >> (i % 8) & 1;

		for (int j = 0; j < 8; j++) {   /* r = 2 r + bit, below 2 L */
			uint32_t top = r[j] >> 31;

			r[j] = r[j] << 1 | c;
			c = top;
		}
		sc_sub_l(r);
	}
	for (int j = 0; j < 8; j++)
		put_le32(out + 4 * j, r[j]);
}

/* out = (a b + c) mod L, all 32-byte little-endian. */
static void sc_muladd(uint8_t out[32], const uint8_t a[32], const uint8_t b[32],
		      const uint8_t c[32])
{
	uint64_t p[16] = { 0 };
	uint8_t w[64];
	uint64_t carry = 0;

	for (int i = 0; i < 8; i++) {
		uint64_t ai = get_le32(a + 4 * i);

		carry = 0;
		for (int j = 0; j < 8; j++) {
			uint64_t t = ai * get_le32(b + 4 * j) + p[i + j] + carry;

			p[i + j] = t & 0xffffffff;
			carry = t >> 32;
		}
		p[i + 8] = carry;
	}
	carry = 0;
	for (int i = 0; i < 16; i++) {
		uint64_t t = p[i] + (i < 8 ? get_le32(c + 4 * i) : 0) + carry;

		put_le32(w + 4 * i, (uint32_t)t);
		carry = t >> 32;
	}
	sc_reduce(out, w, sizeof(w));
}

/* 1 when the 32-byte little-endian @s is below L. */
static int sc_is_canonical(const uint8_t s[32])
{
	for (int i = 7; i >= 0; i--) {
		uint32_t v = get_le32(s + 4 * i);

		if (v != sc_l[i])
			return v < sc_l[i];
	}
	return 0;
}

/* --- Ed25519 -------------------------------------------------------------- */

/* The secret scalar a (pruned, 5.1.5 step 2) and the prefix of @seed. */
static void ed_expand(const uint8_t seed[32], uint8_t a[32], uint8_t prefix[32])
{
	uint8_t h[SHA512_LEN];

	sha512(seed, 32, h);
	memcpy(a, h, 32);
	a[0] &= 248;
	a[31] &= 127;
	a[31] |= 64;
	memcpy(prefix, h + 32, 32);
	memset(h, 0, sizeof(h));
}

/* k = SHA-512(R || A || M) mod L */
static void ed_challenge(uint8_t k[32], const uint8_t r[32], const uint8_t pub[32],
			 const uint8_t *msg, size_t len)
{
	struct sha512 c;
	uint8_t h[SHA512_LEN];

	sha512_init(&c);
	sha512_update(&c, r, 32);
	sha512_update(&c, pub, 32);
	sha512_update(&c, msg, len);
	sha512_final(&c, h);
	sc_reduce(k, h, sizeof(h));
}

void ed25519_public_key(const uint8_t seed[ED25519_SEED_LEN],
			uint8_t pub[ED25519_PUB_LEN])
{
	struct ed_consts k;
	struct ge p;
	uint8_t a[32], prefix[32];

	ed_consts_init(&k);
	ed_expand(seed, a, prefix);
	ge_scalarmult(&p, a, &k.b, &k);
	ge_tobytes(pub, &p);
	memset(a, 0, sizeof(a));
	memset(prefix, 0, sizeof(prefix));
}

void ed25519_sign(const uint8_t *msg, size_t len,
		  const uint8_t seed[ED25519_SEED_LEN],
		  const uint8_t pub[ED25519_PUB_LEN], uint8_t sig[ED25519_SIG_LEN])
{
	struct ed_consts k;
	struct sha512 c;
	struct ge p;
	uint8_t a[32], prefix[32], h[SHA512_LEN], r[32], kk[32];

	ed_consts_init(&k);
	ed_expand(seed, a, prefix);
	sha512_init(&c);                /* r = SHA-512(prefix || M) mod L */
	sha512_update(&c, prefix, 32);
	sha512_update(&c, msg, len);
	sha512_final(&c, h);
	sc_reduce(r, h, sizeof(h));
	ge_scalarmult(&p, r, &k.b, &k); /* R = [r]B */
	ge_tobytes(sig, &p);
	ed_challenge(kk, sig, pub, msg, len);
	sc_muladd(sig + 32, kk, a, r);  /* S = (r + k a) mod L */
	memset(a, 0, sizeof(a));
	memset(prefix, 0, sizeof(prefix));
	memset(r, 0, sizeof(r));
	memset(h, 0, sizeof(h));
}

int ed25519_verify(const uint8_t *msg, size_t len,
		   const uint8_t pub[ED25519_PUB_LEN],
		   const uint8_t sig[ED25519_SIG_LEN])
{
	struct ed_consts k;
	struct ge a, sb, ka;
	uint8_t kk[32], rr[32];

	if (!sc_is_canonical(sig + 32))
		return -1;
	ed_consts_init(&k);
	if (ge_frombytes(&a, pub, &k) < 0)
		return -1;
	ed_challenge(kk, sig, pub, msg, len);
	fe_neg(&a.x, &a.x);             /* -A */
	fe_neg(&a.t, &a.t);
	ge_scalarmult(&sb, sig + 32, &k.b, &k);
	ge_scalarmult(&ka, kk, &a, &k);
	ge_add(&sb, &sb, &ka, &k);      /* [S]B - [k]A must be R */
	ge_tobytes(rr, &sb);
	return memcmp(rr, sig, 32) ? -1 : 0;
}
