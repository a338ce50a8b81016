// SPDX-License-Identifier: MIT
/*
 * Unit tests of SHA-1 and SHA-256: the FIPS 180-4 examples and NIST CAVP
 * vectors (SHA256ShortMsg, SHA256LongMsg), every length from 0 to 200
 * bytes whole, in pieces and split at every point around the block
 * boundaries, random buffers of odd lengths in random pieces, and runs of
 * zeros by sha256_zeros(), all judged by sha1sum and sha256sum.  SHA-256
 * runs twice: on the path sha256_pick() takes here (the CPU's SHA
 * instructions when it has them), then forced to portable C with
 * EDGEIMG_SHA=portable.  Each path's speed is printed, never judged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto/chash.h"
#include "crypto/sha.h"
#include "core/bytes.h"
#include "t.h"

#define HEX_MAX (SHA256_LEN * 2 + 1)

static const char *path;        /* the SHA-256 path under test, for messages */

static const char *hex1(const void *p, size_t n)
{
	static char s[SHA1_LEN * 2 + 1];
	uint8_t d[SHA1_LEN];

	sha1(p, n, d);
	return sha_hex(d, SHA1_LEN, s);
}

static const char *hex256(const void *p, size_t n)
{
	static char s[HEX_MAX];
	uint8_t d[SHA256_LEN];

	sha256(p, n, d);
	return sha_hex(d, SHA256_LEN, s);
}

/* SHA-256 of @len bytes of @p fed in pieces of 1 + rand % @max bytes. */
static const char *hex256_pieces(const uint8_t *p, size_t len, size_t max, uint32_t *rnd)
{
	static char s[HEX_MAX];
	uint8_t d[SHA256_LEN];
	struct sha256 c;

	sha256_init(&c);
	for (size_t o = 0, n; o < len; o += n) {
		*rnd ^= *rnd << 13, *rnd ^= *rnd >> 17, *rnd ^= *rnd << 5;
		n = 1 + *rnd % max;
		if (n > len - o)
			n = len - o;
		sha256_update(&c, p + o, n);
	}
	sha256_final(&c, d);
	return sha_hex(d, SHA256_LEN, s);
}

static void unhex(const char *s, uint8_t *out)
{
	for (size_t i = 0; s[2 * i]; i++) {
		unsigned v;

		sscanf(s + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}

/*
 * The digests @tool (sha1sum, sha256sum) prints for @n buffers, in one
 * run over @n files: 0, or -1 when it did not run or said something else.
 */
static int oracle(const char *tool, const uint8_t *const *bufs, const size_t *lens,
		  size_t n, char (*out)[HEX_MAX])
{
	char dir[] = "/tmp/edgeimg-sha-XXXXXX", name[64], line[256];
	FILE *p = NULL;
	size_t i, got = 0;
	int ok = mkdtemp(dir) != NULL;

	for (i = 0; ok && i < n; i++) {
		FILE *f;

		snprintf(name, sizeof(name), "%s/%05zu", dir, i);
		f = fopen(name, "wb");
		ok = f && fwrite(bufs[i], 1, lens[i], f) == lens[i];
		if (f && fclose(f))
			ok = 0;
	}
	if (ok) {
		snprintf(line, sizeof(line), "cd %s && %s -- *", dir, tool);
		p = popen(line, "r");
	}
	/* lines "DIGEST  NAME" (text mode) or "DIGEST *NAME" (binary) */
	while (p && got < n && fgets(line, sizeof(line), p)) {
		size_t len = strcspn(line, " ");

		snprintf(name, sizeof(name), "%05zu\n", got);
		if (len < 40 || len >= HEX_MAX || line[len] != ' ' ||
		    (line[len + 1] != ' ' && line[len + 1] != '*') || strcmp(line + len + 2, name))
			break;
		snprintf(out[got++], HEX_MAX, "%.*s", (int)len, line);
	}
	if (p && pclose(p))
		ok = 0;
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s/%05zu", dir, i);
		unlink(name);
	}
	rmdir(dir);
	return ok && got == n ? 0 : -1;
}

static void test_sha1(void)
{
	char m448[57];
	static const char m896[] =
		"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
		"ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
	uint8_t d[SHA1_LEN];
	char s[SHA1_LEN * 2 + 1], a[1000];
	struct sha1 c1;

	/* "abcdbcde...nopq": 14 groups of 4 consecutive letters. */
	for (int i = 0; i < 14; i++)
		for (int j = 0; j < 4; j++)
			m448[4 * i + j] = (char)('a' + i + j);
	m448[56] = 0;
	CHECK(!strcmp(hex1("abc", 3), "a9993e364706816aba3e25717850c26c9cd0d89d"),
	      "sha1(abc) = %s", hex1("abc", 3));
	CHECK(!strcmp(hex1("", 0), "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
	      "sha1('') = %s", hex1("", 0));
	CHECK(!strcmp(hex1(m448, 56), "84983e441c3bd26ebaae4aa1f95129e5e54670f1"),
	      "sha1(448 bits) = %s", hex1(m448, 56));
	CHECK(!strcmp(hex1(m896, 112), "a49b2446a02c645bf419f995b67091253a04a259"),
	      "sha1(896 bits) = %s", hex1(m896, 112));
	memset(a, 'a', sizeof(a));
	sha1_init(&c1);
	for (int i = 0; i < 1000; i++)
		sha1_update(&c1, a, sizeof(a));
	sha1_final(&c1, d);
	CHECK(!strcmp(sha_hex(d, SHA1_LEN, s), "34aa973cd4c4daa4f61eeb2bdbad27316534016f"),
	      "sha1(10^6 a) = %s", s);
}

/* FIPS 180-4 examples and NIST CAVP vectors (Len in bits, Msg, MD). */
static void test_vectors(void)
{
	static const struct {
		const char *msg, *md;
	} cavp[] = {
		/* SHA256ShortMsg.rsp: Len = 0, 8, 16, 24, 448, 504, 512 */
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "d3", "28969cdfa74a12c82f3bad960b0b000aca2ac329deea5c2328ebc6f2ba9802c1" },
		{ "11af", "5ca7133fa735326081558ac312c620eeca9970d1e70a4b95533d956f072d1f98" },
		{ "b4190e", "dff2e73091f6c05e528896c4c831b9448653dc2ff043528f6769437bc7b975c2" },
		{ "2d52447d1244d2ebc28650e7b05654bad35b3a68eedc7f8515306b496d75f3e7"
		  "3385dd1b002625024b81a02f2fd6dffb6e6d561cb7d0bd7a",
		  "cfb88d6faf2de3a69d36195acec2e255e2af2b7d933997f348e09f6ce5758360" },
		{ "e2f76e97606a872e317439f1a03fcd92e632e5bd4e7cbc4e97f1afc19a16fde9"
		  "2d77cbe546416b51640cddb92af996534dfd81edb17c4424cf1ac4d75aceeb",
		  "18041bd4665083001fba8c5411d2d748e8abbfdcdfd9218cb02b68a78e7d4c23" },
		{ "5a86b737eaea8ee976a0a24da63e7ed7eefad18a101c1211e2b3650c5187c2a8"
		  "a650547208251f6d4237e661c7bf4c77f335390394c37fa1a9f9be836ac28509",
		  "42e61e174fbb3897d6dd6cef3dd2802fe67b331953b06114a65c772859dfc1aa" },
		/* SHA256LongMsg.rsp: Len = 1304 */
		{ "451101250ec6f26652249d59dc974b7361d571a8101cdfd36aba3b5854d3ae08"
		  "6b5fdd4597721b66e3c0dc5d8c606d9657d0e323283a5217d1f53f2f284f57b8"
		  "5c8a61ac8924711f895c5ed90ef17745ed2d728abd22a5f7a13479a462d71b56"
		  "c19a74a40b655c58edfe0a188ad2cf46cbf30524f65d423c837dd1ff2bf462ac"
		  "4198007345bb44dbb7b1c861298cdf61982a833afc728fae1eda2f87aa2c9480"
		  "858bec",
		  "3c593aa539fdcdae516cdf2f15000f6634185c88f505b39775fb9ab137a10aa2" },
	};
	char m448[57];
	static const char m896[] =
		"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
		"ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
	struct sha256 c2;
	uint8_t d[SHA256_LEN], msg[256];
	char s[HEX_MAX], a[1000];

	for (int i = 0; i < 14; i++)
		for (int j = 0; j < 4; j++)
			m448[4 * i + j] = (char)('a' + i + j);
	m448[56] = 0;
	CHECK(!strcmp(hex256("abc", 3),
		      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
	      "%s: sha256(abc) = %s", path, hex256("abc", 3));
	CHECK(!strcmp(hex256("", 0),
		      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
	      "%s: sha256('') = %s", path, hex256("", 0));
	CHECK(!strcmp(hex256(m448, 56),
		      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
	      "%s: sha256(448 bits) = %s", path, hex256(m448, 56));
	CHECK(!strcmp(hex256(m896, 112),
		      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
	      "%s: sha256(896 bits) = %s", path, hex256(m896, 112));
	for (size_t i = 0; i < sizeof(cavp) / sizeof(cavp[0]); i++) {
		size_t n = strlen(cavp[i].msg) / 2;

		unhex(cavp[i].msg, msg);
		CHECK(!strcmp(hex256(msg, n), cavp[i].md), "%s: CAVP Len = %zu: %s, want %s",
		      path, 8 * n, hex256(msg, n), cavp[i].md);
	}

	/* One million 'a', fed 1000 at a time. */
	memset(a, 'a', sizeof(a));
	sha256_init(&c2);
	for (int i = 0; i < 1000; i++)
		sha256_update(&c2, a, sizeof(a));
	sha256_final(&c2, d);
	CHECK(!strcmp(sha_hex(d, SHA256_LEN, s),
		      "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
	      "%s: sha256(10^6 a) = %s", path, s);
}

/*
 * Every length from 0 to 200 bytes: whole, in pieces, and for the lengths
 * around the block boundaries split in two at every point.
 */
static void test_lengths(void)
{
	static char want[201][HEX_MAX];
	const uint8_t *bufs[201];
	size_t lens[201];
	uint8_t buf[200];
	uint32_t rnd = 0x9e3779b9;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 151 + 7);
	for (size_t i = 0; i <= 200; i++)
		bufs[i] = buf, lens[i] = i;
	if (oracle("sha256sum", bufs, lens, 201, want) < 0) {
		CHECK(0, "sha256sum did not run");
		return;
	}
	for (size_t len = 0; len <= 200; len++) {
		size_t bad = 0;

		CHECK(!strcmp(hex256(buf, len), want[len]), "%s: %zu bytes: %s, sha256sum %s",
		      path, len, hex256(buf, len), want[len]);
		CHECK(!strcmp(hex256_pieces(buf, len, 1 + len % 67, &rnd), want[len]),
		      "%s: %zu bytes in pieces of up to %zu", path, len, 1 + len % 67);
		if (len % 64 > 2 && len % 64 < 54)
			continue;
		for (size_t k = 0; k <= len; k++) {
			struct sha256 c;
			uint8_t d[SHA256_LEN];
			char s[HEX_MAX];

			sha256_init(&c);
			sha256_update(&c, buf, k);
			sha256_update(&c, buf + k, len - k);
			sha256_final(&c, d);
			bad += !!strcmp(sha_hex(d, SHA256_LEN, s), want[len]);
		}
		CHECK(!bad, "%s: %zu bytes split in two: %zu of %zu split points wrong",
		      path, len, bad, len + 1);
	}
}

/*
 * Buffers of awkward lengths, and random buffers of random odd lengths, in
 * one piece and in pieces of every size class: sha1sum and sha256sum judge.
 */
static void test_oracle(uint32_t seed)
{
	enum { N = 16, R = 12, MAX = 1048589 };
	static const size_t lens[N] = { 0, 1, 55, 56, 57, 63, 64, 65, 119, 120,
					127, 128, 1000, 4096, 65537, MAX };
	static const size_t steps[] = { 1, 3, 63, 64, 65, 1000, 1 << 20 };
	static char want1[N][HEX_MAX], want2[N + R][HEX_MAX];
	const uint8_t *bufs[N + R];
	size_t blens[N + R];
	uint8_t *buf = malloc(MAX), *rbuf = malloc(R << 21);
	uint32_t x = 2463534242u, rnd = seed;

	if (!buf || !rbuf) {
		CHECK(0, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < MAX; i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		buf[i] = (i / 5000) % 2 ? (uint8_t)x : (uint8_t)(i & 7);
	}
	for (size_t i = 0; i < N; i++)
		bufs[i] = buf, blens[i] = lens[i];
	for (size_t i = 0; i < R; i++) {
		uint8_t *p = rbuf + (i << 21);

		for (size_t k = 0; k < (size_t)1 << 21; k++) {
			rnd ^= rnd << 13, rnd ^= rnd >> 17, rnd ^= rnd << 5;
			p[k] = (uint8_t)(rnd >> 11);
		}
		bufs[N + i] = p;
		/* odd lengths: 1 to 2 MiB - 1, a few of them under a block */
		blens[N + i] = (i < 3 ? rnd % 64 : rnd % (1u << 21)) | 1;
	}
	if (oracle("sha1sum", bufs, blens, N, want1) < 0 ||
	    oracle("sha256sum", bufs, blens, N + R, want2) < 0) {
		CHECK(0, "sha1sum/sha256sum did not run");
		goto out;
	}
	for (size_t i = 0; i < N; i++) {
		size_t len = lens[i], step = steps[i % (sizeof(steps) / sizeof(steps[0]))];
		char s1[SHA1_LEN * 2 + 1], s2[HEX_MAX];
		uint8_t d[SHA256_LEN];
		struct sha256 c2;
		struct sha1 c1;

		CHECK(!strcmp(hex1(buf, len), want1[i]), "sha1 of %zu bytes: %s, sha1sum %s",
		      len, hex1(buf, len), want1[i]);
		CHECK(!strcmp(hex256(buf, len), want2[i]), "%s: sha256 of %zu bytes: %s, sha256sum %s",
		      path, len, hex256(buf, len), want2[i]);
		/* The same in pieces of @step bytes. */
		sha1_init(&c1);
		sha256_init(&c2);
		for (size_t o = 0; o < len; o += step) {
			size_t n = len - o < step ? len - o : step;

			sha1_update(&c1, buf + o, n);
			sha256_update(&c2, buf + o, n);
		}
		sha1_final(&c1, d);
		CHECK(!strcmp(sha_hex(d, SHA1_LEN, s1), want1[i]),
		      "sha1 of %zu bytes in pieces of %zu", len, step);
		sha256_final(&c2, d);
		CHECK(!strcmp(sha_hex(d, SHA256_LEN, s2), want2[i]),
		      "%s: sha256 of %zu bytes in pieces of %zu", path, len, step);
	}
	for (size_t i = N; i < N + R; i++) {
		/* pieces of up to 7 bytes, 200 bytes (a few blocks), 64 KiB */
		size_t max = (size_t[]){ 7, 200, 65536 }[i % 3];

		CHECK(!strcmp(hex256(bufs[i], blens[i]), want2[i]),
		      "%s: sha256 of %zu random bytes (seed %u): %s, sha256sum %s",
		      path, blens[i], seed, hex256(bufs[i], blens[i]), want2[i]);
		CHECK(!strcmp(hex256_pieces(bufs[i], blens[i], max, &rnd), want2[i]),
		      "%s: sha256 of %zu random bytes (seed %u) in random pieces of up to %zu",
		      path, blens[i], seed, max);
	}
out:
	free(buf);
	free(rbuf);
}

/* sha256_zeros() between other data gives what sha256sum says. */
static void test_zeros(void)
{
	enum { Z = 8 };
	static const size_t pre[Z] = { 0, 1, 63, 64, 100, 0, 7, 5 };
	static const size_t zeros[Z] = { 0, 1, 63, 64, 65, 4096 + 7, 1 << 20,
					 (1 << 20) + 64 * 7 + 3 };
	static char want[Z][HEX_MAX];
	const uint8_t *bufs[Z];
	size_t lens[Z];
	uint8_t *buf = calloc(Z, (1 << 20) + 1024);

	if (!buf) {
		CHECK(0, "out of memory");
		return;
	}
	for (size_t i = 0; i < Z; i++) {
		uint8_t *b = buf + i * ((1 << 20) + 1024);
		size_t post = 1 + i * 9;

		for (size_t k = 0; k < pre[i]; k++)
			b[k] = (uint8_t)(k * 31 + 1);
		for (size_t k = 0; k < post; k++)
			b[pre[i] + zeros[i] + k] = (uint8_t)(k * 17 + 3);
		bufs[i] = b;
		lens[i] = pre[i] + zeros[i] + post;
	}
	if (oracle("sha256sum", bufs, lens, Z, want) < 0) {
		CHECK(0, "sha256sum did not run");
		free(buf);
		return;
	}
	for (size_t i = 0; i < Z; i++) {
		size_t p = pre[i], z = zeros[i], post = lens[i] - p - z;
		char got[HEX_MAX];
		uint8_t d[SHA256_LEN];
		struct sha256 c;

		sha256_init(&c);
		sha256_update(&c, bufs[i], p);
		sha256_zeros(&c, z);
		sha256_update(&c, bufs[i] + p + z, post);
		sha256_final(&c, d);
		CHECK(!strcmp(sha_hex(d, SHA256_LEN, got), want[i]),
		      "%s: %zu bytes, %zu zeros by sha256_zeros, %zu bytes: %s, sha256sum %s",
		      path, p, z, post, got, want[i]);
	}
	free(buf);
}

/* CPU time: what a loaded machine's other work does not inflate */
static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * MB per CPU second of hashing 16 KiB pieces (@what 0), zeros (1) or
 * SHA-1 (2) for a quarter of a CPU second.
 */
static double bench(int what)
{
	static uint8_t buf[16384];
	double t0 = cpu_now(), t;
	uint64_t bytes = 0;
	struct sha256 c;
	struct sha1 c1;
	uint8_t d[SHA256_LEN];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 13 + (i >> 7));
	sha256_init(&c);
	sha1_init(&c1);
	do {
		for (int i = 0; i < 16; i++) {
			if (what == 0)
				sha256_update(&c, buf, sizeof(buf));
			else if (what == 1)
				sha256_zeros(&c, sizeof(buf));
			else
				sha1_update(&c1, buf, sizeof(buf));
		}
		bytes += 16 * sizeof(buf);
		t = cpu_now() - t0;
	} while (t < 0.25);
	sha256_final(&c, d);
	sha1_final(&c1, d);
	return (double)bytes / 1e6 / t;
}

/*
 * The CPU's own word on its SHA instructions (/proc/cpuinfo: x86 "flags"
 * with sha_ni, arm64 "Features" with sha2): 1 it has them, 0 it has not,
 * -1 it does not say (qemu-user shows the host's file).
 */
static int cpuinfo_sha(void)
{
#if defined(__x86_64__) || defined(__aarch64__)
#if defined(__x86_64__)
	const char *key = "flags", *flag = " sha_ni";
#else
	const char *key = "Features", *flag = " sha2";
#endif
	char line[4096];
	FILE *f = fopen("/proc/cpuinfo", "r");
	int r = -1;

	while (f && r < 0 && fgets(line, sizeof(line), f)) {
		char *v = strchr(line, ':');

		if (strncmp(line, key, strlen(key)) || !v)
			continue;
		v[strcspn(v, "\n")] = ' ';
		r = 0;
		for (char *s = strstr(v, flag); s && !r; s = strstr(s + 1, flag))
			r = s[strlen(flag)] == ' ';
	}
	if (f)
		fclose(f);
	return r;
#else
	return -1;
#endif
}

/*
 * The content hash (src/crypto/chash.c): the zero-leaf constant is SHA-256
 * of 1 MiB of zeros; the root is SHA-256 of the leaf hashes and the length
 * (built here from sha256() alone); pieces, zero runs and leaves hashed
 * apart give the same hash as one call.
 */
static uint32_t xorshift(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

static void test_chash(uint32_t seed)
{
	size_t n = 3 * CHASH_LEAF + 12345;
	uint8_t *b = calloc(1, n), zl[CHASH_LEN], want[CHASH_LEN], got[CHASH_LEN];
	uint8_t *leaves = malloc(4 * CHASH_LEN + 8);
	struct chash c;

	uint8_t *zero = calloc(1, CHASH_LEAF);
	sha256(zero, CHASH_LEAF, zl);
	CHECK(!memcmp(zl, chash_zero_leaf, CHASH_LEN), "the zero-leaf constant");
	free(zero);
	for (size_t i = 0; i < 2 * CHASH_LEAF; i++)     /* leaf 2 and the tail stay zero */
		b[i] = (uint8_t)(xorshift(&seed) >> 24);
	for (size_t k = 0; k < 4; k++) {
		size_t off = k * CHASH_LEAF, len = k < 3 ? CHASH_LEAF : n - off;

		sha256(b + off, len, leaves + k * CHASH_LEN);
	}
	put_le64(leaves + 4 * CHASH_LEN, n);
	sha256(leaves, 4 * CHASH_LEN + 8, want);
	chash(b, n, got);
	CHECK(!memcmp(got, want, CHASH_LEN), "chash() is SHA-256 of the leaf hashes and the length");
	chash_init(&c);
	for (size_t off = 0; off < 2 * CHASH_LEAF;) {   /* odd pieces */
		size_t k = 1 + xorshift(&seed) % 300000;

		k = off + k > 2 * CHASH_LEAF ? 2 * CHASH_LEAF - off : k;
		chash_update(&c, b + off, k);
		off += k;
	}
	chash_zeros(&c, n - 2 * CHASH_LEAF);
	chash_final(&c, got);
	CHECK(!memcmp(got, want, CHASH_LEN), "pieces and a zero run give the same hash");
	chash_init(&c);
	chash_add_leaf(&c, leaves, CHASH_LEAF);
	chash_update(&c, b + CHASH_LEAF, n - CHASH_LEAF);
	chash_final(&c, got);
	CHECK(!memcmp(got, want, CHASH_LEN), "a leaf hashed apart");
	chash(b, 0, got);
	put_le64(leaves, 0);
	sha256(leaves, 8, want);
	CHECK(!memcmp(got, want, CHASH_LEN), "the empty content");
	free(leaves);
	free(b);
}

static void run(uint32_t seed)
{
	test_vectors();
	test_lengths();
	test_oracle(seed);
	test_zeros();
	test_chash(seed);
	printf("bench: sha256 %s: %.0f MB/s in 16 KiB pieces, %.0f MB/s of zeros (sha256_zeros), per CPU second\n",
	       path, bench(0), bench(1));
}

int main(void)
{
	const char *env = getenv("EDGEIMG_SHA");
	uint32_t seed = (uint32_t)time(NULL) ^ (uint32_t)getpid() << 16;
	int cpu = cpuinfo_sha();

	if (getenv("EDGEIMG_TEST_SEED"))
		seed = (uint32_t)strtoul(getenv("EDGEIMG_TEST_SEED"), NULL, 0);
	seed |= 1;              /* xorshift needs a non-zero state */
	printf("random buffers: seed %u (EDGEIMG_TEST_SEED=%u repeats them)\n", seed, seed);
	test_sha1();
	printf("bench: sha1 portable: %.0f MB/s in 16 KiB pieces, per CPU second\n", bench(2));

	path = sha256_pick();
	printf("sha256: %s path (EDGEIMG_SHA %s%s; /proc/cpuinfo %s)\n", path,
	       env ? "= " : "unset", env ? env : "",
	       cpu < 0 ? "says nothing" : cpu ? "lists the SHA instructions" : "lists no SHA instructions");
	if (!env || strcmp(env, "portable"))
		CHECK(cpu < 0 || !strcmp(path, "portable") == !cpu,
		      "the %s path where /proc/cpuinfo %s the SHA instructions", path,
		      cpu ? "lists" : "does not list");
	run(seed);
	if (strcmp(path, "portable")) {
		setenv("EDGEIMG_SHA", "portable", 1);
		path = sha256_pick();
		CHECK(!strcmp(path, "portable"), "EDGEIMG_SHA=portable gives the %s path", path);
		run(seed);
	} else {
		printf("sha256: no SHA instructions here (or EDGEIMG_SHA=portable): one path tested\n");
	}
	return t_done("test_sha");
}
