/* SPDX-License-Identifier: MIT */
/* SHA-1 and SHA-256 (FIPS 180-4), incremental and one-shot. */
#ifndef EDGEIMG_SHA_H
#define EDGEIMG_SHA_H

#include <stddef.h>
#include <stdint.h>

#define SHA1_LEN 20
#define SHA256_LEN 32

struct sha1 {
	uint32_t h[5];
	uint64_t len;           /* bytes hashed so far */
	uint8_t buf[64];        /* a partial block, len % 64 bytes of it used */
};

struct sha256 {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
};

/*
 * sha1_init() / sha1_update() / sha1_final() - hash a message given in any
 * number of pieces; final writes SHA1_LEN bytes to @out and leaves the
 * context to be re-initialised before reuse.  No allocation, no failure.
 */
void sha1_init(struct sha1 *c);
void sha1_update(struct sha1 *c, const void *data, size_t len);
void sha1_final(struct sha1 *c, uint8_t out[SHA1_LEN]);
void sha1(const void *data, size_t len, uint8_t out[SHA1_LEN]);

/*
 * The same for SHA-256, with SHA256_LEN bytes of output.  Whole blocks go
 * through the CPU's SHA instructions when it has them (x86-64 SHA-NI,
 * ARMv8 SHA2), else through portable C: see sha256_pick().
 */
void sha256_init(struct sha256 *c);
void sha256_update(struct sha256 *c, const void *data, size_t len);
/*
 * sha256_zeros() - feed @n zero bytes to @c without a buffer of them
 * (disks are mostly zero): whole zero blocks go straight into the
 * state with a message schedule computed once, where sha256_update()
 * hashes a zero block like any other.
 */
void sha256_zeros(struct sha256 *c, uint64_t n);
void sha256_final(struct sha256 *c, uint8_t out[SHA256_LEN]);
void sha256(const void *data, size_t len, uint8_t out[SHA256_LEN]);

/*
 * sha256_pick() - choose how SHA-256 hashes blocks, for the whole process:
 * the CPU's SHA instructions when it has them (cpuid on x86-64,
 * AT_HWCAP's HWCAP_SHA2 on aarch64), portable C otherwise or when the
 * environment variable EDGEIMG_SHA is "portable" (tests run both paths
 * that way).  The first block hashed makes this choice; call it again
 * after changing EDGEIMG_SHA.  Returns the name of the path chosen:
 * "x86-64 SHA-NI", "ARMv8 SHA2" or "portable".
 */
const char *sha256_pick(void);

/*
 * sha_hex() - write @len bytes of @digest as lower-case hex and a NUL into
 * @out, which holds at least 2 * @len + 1 bytes; returns @out.
 */
char *sha_hex(const uint8_t *digest, size_t len, char *out);

#endif
