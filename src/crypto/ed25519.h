/* SPDX-License-Identifier: MIT */
/*
 * Ed25519 signatures (RFC 8032 section 5.1, pure Ed25519: no prehash, no
 * context): key pairs from a 32-byte secret seed, signing and verifying.
 * No allocation, no failure except a signature that does not verify.
 */
#ifndef EDGEIMG_ED25519_H
#define EDGEIMG_ED25519_H

#include <stddef.h>
#include <stdint.h>

#define ED25519_SEED_LEN 32     /* the private key as RFC 8032 defines it */
#define ED25519_PUB_LEN 32
#define ED25519_SIG_LEN 64

/* ed25519_public_key() - the public key of the secret @seed (5.1.5). */
void ed25519_public_key(const uint8_t seed[ED25519_SEED_LEN],
			uint8_t pub[ED25519_PUB_LEN]);

/*
 * ed25519_sign() - sign @len bytes of @msg with @seed, whose public key is
 * @pub (5.1.6); writes ED25519_SIG_LEN bytes (R, then S) to @sig.
 * Deterministic: the same inputs give the same signature.
 */
void ed25519_sign(const uint8_t *msg, size_t len,
		  const uint8_t seed[ED25519_SEED_LEN],
		  const uint8_t pub[ED25519_PUB_LEN], uint8_t sig[ED25519_SIG_LEN]);

/*
 * ed25519_verify() - 0 when @sig is a valid signature of @msg by @pub
 * (5.1.7, the cofactorless equation [S]B = R + [k]A checked on encodings,
 * as OpenSSL does), -1 otherwise: an S not below the group order L, a
 * public key that is not a canonical point encoding, or a mismatch.
 */
int ed25519_verify(const uint8_t *msg, size_t len,
		   const uint8_t pub[ED25519_PUB_LEN],
		   const uint8_t sig[ED25519_SIG_LEN]);

#endif
