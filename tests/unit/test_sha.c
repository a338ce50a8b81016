// SPDX-License-Identifier: MIT
/*
 * Unit tests of SHA-1 and SHA-256: the FIPS 180-4 example vectors, then
 * generated buffers of awkward lengths hashed in odd pieces and judged by
 * sha1sum and sha256sum.  (Speed is for make bench, not for a test.)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/sha.h"
#include "t.h"

static const char *hex1(const void *p, size_t n)
{
	static char s[SHA1_LEN * 2 + 1];
	uint8_t d[SHA1_LEN];

	sha1(p, n, d);
	return sha_hex(d, SHA1_LEN, s);
}

static const char *hex256(const void *p, size_t n)
{
	static char s[SHA256_LEN * 2 + 1];
	uint8_t d[SHA256_LEN];

	sha256(p, n, d);
	return sha_hex(d, SHA256_LEN, s);
}

static void test_vectors(void)
{
	char m448[57];
	static const char m896[] =
		"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
		"ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
	struct sha256 c2;
	struct sha1 c1;
	uint8_t d[SHA256_LEN];
	char s[SHA256_LEN * 2 + 1];
	char a[1000];

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
	CHECK(!strcmp(hex256("abc", 3),
		      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
	      "sha256(abc) = %s", hex256("abc", 3));
	CHECK(!strcmp(hex256("", 0),
		      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
	      "sha256('') = %s", hex256("", 0));
	CHECK(!strcmp(hex256(m448, 56),
		      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
	      "sha256(448 bits) = %s", hex256(m448, 56));
	CHECK(!strcmp(hex256(m896, 112),
		      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
	      "sha256(896 bits) = %s", hex256(m896, 112));

	/* One million 'a', fed 1000 at a time. */
	memset(a, 'a', sizeof(a));
	sha1_init(&c1);
	sha256_init(&c2);
	for (int i = 0; i < 1000; i++) {
		sha1_update(&c1, a, sizeof(a));
		sha256_update(&c2, a, sizeof(a));
	}
	sha1_final(&c1, d);
	CHECK(!strcmp(sha_hex(d, SHA1_LEN, s), "34aa973cd4c4daa4f61eeb2bdbad27316534016f"),
	      "sha1(10^6 a) = %s", s);
	sha256_final(&c2, d);
	CHECK(!strcmp(sha_hex(d, SHA256_LEN, s),
		      "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
	      "sha256(10^6 a) = %s", s);
}

/* The digest the reference tool @tool prints for @buf. */
static int oracle(const char *tool, const uint8_t *buf, size_t len, char *out,
		  size_t out_len)
{
	char path[] = "/tmp/edgeimg-sha-XXXXXX", line[256];
	int fd = mkstemp(path);
	FILE *p;
	int ok;

	if (fd < 0)
		return -1;
	ok = write(fd, buf, len) == (ssize_t)len;
	close(fd);
	snprintf(line, sizeof(line), "%s %s", tool, path);
	p = ok ? popen(line, "r") : NULL;
	ok = p && fscanf(p, "%255s", line) == 1;
	if (p)
		pclose(p);
	unlink(path);
	if (!ok)
		return -1;
	snprintf(out, out_len, "%s", line);
	return 0;
}

static void test_oracle(void)
{
	static const size_t lens[] = { 0, 1, 55, 56, 57, 63, 64, 65, 119, 120,
				       127, 128, 1000, 4096, 65537, 1048589 };
	static const size_t steps[] = { 1, 3, 63, 64, 65, 1000, 1 << 20 };
	uint8_t *buf = malloc(1048589);
	uint32_t x = 2463534242u;

	if (!buf) {
		CHECK(0, "out of memory");
		return;
	}
	for (size_t i = 0; i < 1048589; i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		buf[i] = (i / 5000) % 2 ? (uint8_t)x : (uint8_t)(i & 7);
	}
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t len = lens[i], step = steps[i % (sizeof(steps) / sizeof(steps[0]))];
		char want1[256], want2[256], s1[SHA1_LEN * 2 + 1], s2[SHA256_LEN * 2 + 1];
		uint8_t d[SHA256_LEN];
		struct sha256 c2;
		struct sha1 c1;

		if (oracle("sha1sum", buf, len, want1, sizeof(want1)) < 0 ||
		    oracle("sha256sum", buf, len, want2, sizeof(want2)) < 0) {
			CHECK(0, "sha1sum/sha256sum did not run");
			break;
		}
		CHECK(!strcmp(hex1(buf, len), want1), "sha1 of %zu bytes: %s, sha1sum %s",
		      len, hex1(buf, len), want1);
		CHECK(!strcmp(hex256(buf, len), want2), "sha256 of %zu bytes: %s, sha256sum %s",
		      len, hex256(buf, len), want2);
		/* The same in pieces of @step bytes. */
		sha1_init(&c1);
		sha256_init(&c2);
		for (size_t o = 0; o < len; o += step) {
			size_t n = len - o < step ? len - o : step;

			sha1_update(&c1, buf + o, n);
			sha256_update(&c2, buf + o, n);
		}
		sha1_final(&c1, d);
		CHECK(!strcmp(sha_hex(d, SHA1_LEN, s1), want1),
		      "sha1 of %zu bytes in pieces of %zu", len, step);
		sha256_final(&c2, d);
		CHECK(!strcmp(sha_hex(d, SHA256_LEN, s2), want2),
		      "sha256 of %zu bytes in pieces of %zu", len, step);
	}
	free(buf);
}

/* sha256_zeros() between other data gives what sha256sum says. */
static void test_zeros(void)
{
	static const size_t pre[] = { 0, 1, 63, 64, 100, 0, 7 };
	static const size_t zeros[] = { 0, 1, 63, 64, 65, 4096 + 7, 1 << 20 };
	uint8_t *buf = calloc(1, (1 << 20) + 256);

	if (!buf) {
		CHECK(0, "out of memory");
		return;
	}
	for (size_t i = 0; i < sizeof(zeros) / sizeof(zeros[0]); i++) {
		size_t p = pre[i], z = zeros[i], post = 1 + i * 9, len = p + z + post;
		char want[256], got[SHA256_LEN * 2 + 1];
		uint8_t d[SHA256_LEN];
		struct sha256 c;

		memset(buf, 0, len);
		for (size_t k = 0; k < p; k++)
			buf[k] = (uint8_t)(k * 31 + 1);
		for (size_t k = 0; k < post; k++)
			buf[p + z + k] = (uint8_t)(k * 17 + 3);
		if (oracle("sha256sum", buf, len, want, sizeof(want)) < 0) {
			CHECK(0, "sha256sum did not run");
			break;
		}
		sha256_init(&c);
		sha256_update(&c, buf, p);
		sha256_zeros(&c, z);
		sha256_update(&c, buf + p + z, post);
		sha256_final(&c, d);
		CHECK(!strcmp(sha_hex(d, SHA256_LEN, got), want),
		      "%zu bytes, %zu zeros by sha256_zeros, %zu bytes: %s, sha256sum %s",
		      p, z, post, got, want);
	}
	free(buf);
}

int main(void)
{
	test_vectors();
	test_oracle();
	test_zeros();
	return t_done("test_sha");
}
