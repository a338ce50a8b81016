// SPDX-License-Identifier: MIT
/*
 * Unit tests of signed patches' Ed25519, libsodium's through
 * src/delta/delta-sign.c: RFC 8032 section 7.1 TEST 1, 2, 3 and the
 * 1023-byte TEST 1024, each key read from the PEM file openssl would
 * write, each signature made by delta_sign_header() and checked by
 * delta_sig_verify(); then tampered signatures, wrong keys, S + L and
 * non-canonical or small-order keys, which must all be refused; the
 * strict PEM reader of the key files openssl writes (seed 32 bytes 0x42:
 * openssl gives its public key as 2152f8d1...).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "delta/delta.h"
#include "core/kconfig.h"
#include "crypto/sha.h"
#include "t.h"

#if IS_ENABLED(CONFIG_DELTA_SIGN)
#include <sodium.h>

static void unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		sscanf(s + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}

/* RFC 8032 7.1 TEST 1024: the 1023-byte message. */
static const char msg1023[] =
	"08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98fa6e264bf09efe12ee50f8f54e9f77b1"
	"e355f6c50544e23fb1433ddf73be84d879de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d"
	"658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc1a858efcb8550ee3a5e1998bd177e93a"
	"7363c344fe6b199ee5d02e82d522c4feba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e"
	"06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbefefd75499da96bd68a8a97b928a8bbc10"
	"3b6621fcde2beca1231d206be6cd9ec7aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1"
	"85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2d17ba70eb6248e594e1a2297acbbb39d"
	"502f1a8c6eb6f1ce22b3de1a1f40cc24554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270"
	"88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc2732e69485bbc9c90bfbd62481d9089b"
	"eccf80cfe2df16a2cf65bd92dd597b0707e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba"
	"b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51addd3b75a2b1ae0784504df543af8969b"
	"e3ea7082ff7fc9888c144da2af58429ec96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7"
	"51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c42f58c30c04aafdb038dda0847dd988d"
	"cda6f3bfd15c4b4c4525004aa06eeff8ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df"
	"f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08d78ff4ef5d63653a65040cf9bfd4aca7"
	"984a74d37145986780fc0b16ac451649de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4"
	"88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a32ef5b52a1ecc820e308aa342721aac09"
	"43bf6686b64b2579376504ccc493d97e6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f"
	"b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b50d334ba77c225bc307ba537152f3f161"
	"0e4eafe595f6d9d90d11faa933a15ef1369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d"
	"b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c0618983f8741c5ef68d3a101e8a3b8ca"
	"c60c905c15fc910840b94c00a0b9d0";

static const struct {
	const char *name, *seed, *pub, *msg, *sig;
} vec[] = {
	{ "TEST 1",
	  "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
	  "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
	  "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b" },
	{ "TEST 2",
	  "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
	  "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
	  "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00" },
	{ "TEST 3",
	  "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
	  "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
	  "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a" },
	{ "TEST 1024",
	  "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
	  "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e", msg1023,
	  "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03" },
};

/* L, the group order, little-endian */
static const uint8_t order[32] = {
	0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2,
	0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
};

/* The PEM file "openssl genpkey -algorithm ed25519" writes for @seed. */
static void pem_of_seed(const uint8_t seed[32], char *out)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint8_t der[48] = { 0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b,
			    0x65, 0x70, 0x04, 0x22, 0x04, 0x20 };

	memcpy(der + 16, seed, 32);
	out += sprintf(out, "-----BEGIN PRIVATE KEY-----\n");
	for (int i = 0; i < 48; i += 3) {       /* 48 bytes: 64 characters, no padding */
		uint32_t v = (uint32_t)der[i] << 16 | der[i + 1] << 8 | der[i + 2];

		for (int k = 18; k >= 0; k -= 6)
			*out++ = b64[v >> k & 63];
	}
	sprintf(out, "\n-----END PRIVATE KEY-----\n");
}

/*
 * delta_sig_verify() of the signature section @sect over @msg, as a patch
 * holds them: the header, then the section.
 */
static int verify(const uint8_t *msg, size_t n, const uint8_t sect[DELTA_SIG_SIZE],
		  const struct delta_key *pub, struct err *e)
{
	struct delta_header h = { .incompat = DELTA_INCOMPAT_SIGNED,
				  .header_size = (uint32_t)n };
	uint8_t *raw = malloc(n + DELTA_SIG_SIZE);
	int r;

	if (!raw)
		return -1;
	memcpy(raw, msg, n);
	memcpy(raw + n, sect, DELTA_SIG_SIZE);
	r = delta_sig_verify(&h, raw, pub, e);
	free(raw);
	return r;
}

static void test_ed25519(void)
{
	for (size_t v = 0; v < sizeof(vec) / sizeof(vec[0]); v++) {
		uint8_t seed[32], pub[32], want_pub[32], want_sig[64], bad[64];
		uint8_t sect[DELTA_SIG_SIZE], tampered[DELTA_SIG_SIZE];
		uint8_t *sig = sect + 8 + SHA256_LEN;
		size_t n = strlen(vec[v].msg) / 2;
		uint8_t *msg = malloc(n + 1);
		struct delta_key k, kp;
		struct err e = { 0 };
		char text[256];
		unsigned carry = 0;
		int refused;

		if (!msg) {
			CHECK(0, "out of memory");
			return;
		}
		unhex(vec[v].seed, seed, 32);
		unhex(vec[v].pub, want_pub, 32);
		unhex(vec[v].msg, msg, n);
		unhex(vec[v].sig, want_sig, 64);
		pem_of_seed(seed, text);
		CHECK(delta_key_parse(text, strlen(text), 1, "rfc.pem", &k, &e) == 0,
		      "%s: private key: %s", vec[v].name, e.msg);
		CHECK(!memcmp(k.pub, want_pub, 32), "%s: public key", vec[v].name);
		CHECK(delta_sign_header(&k, msg, n, sect, &e) == 0, "%s: sign: %s",
		      vec[v].name, e.msg);
		CHECK(!memcmp(sig, want_sig, 64), "%s: signature", vec[v].name);
		memset(&kp, 0, sizeof(kp));
		memcpy(kp.pub, want_pub, 32);
		sha256(want_pub, 32, kp.id);
		CHECK(verify(msg, n, sect, &kp, &e) == 0, "%s: verifies: %s", vec[v].name, e.msg);
		/* a flipped bit anywhere in R or S, or in the message */
		refused = 0;
		for (int i = 0; i < 64; i += 9) {
			memcpy(tampered, sect, sizeof(sect));
			tampered[8 + SHA256_LEN + i] ^= (uint8_t)(1u << (i % 8));
			refused += verify(msg, n, tampered, &kp, &e) == EI_ESIG &&
				   strstr(e.msg, "bad signature");
		}
		CHECK(refused == 8, "%s: %d of 8 signatures with a flipped bit refused",
		      vec[v].name, refused);
		if (n) {
			msg[n / 2] ^= 0x10;
			CHECK(verify(msg, n, sect, &kp, &e) == EI_ESIG,
			      "%s: a changed message is refused", vec[v].name);
			msg[n / 2] ^= 0x10;
		}
		CHECK(crypto_sign_ed25519_verify_detached(want_sig, msg, n + 1, want_pub) < 0,
		      "%s: a longer message is refused", vec[v].name);
		/* another key: the next vector's */
		unhex(vec[(v + 1) % 4].pub, pub, 32);
		CHECK(crypto_sign_ed25519_verify_detached(want_sig, msg, n, pub) < 0,
		      "%s: another key is refused", vec[v].name);
		/* S + L: the same point equation, but S is not canonical */
		memcpy(bad, want_sig, 64);
		for (int i = 0; i < 32; i++) {
			carry += bad[32 + i] + order[i];
			bad[32 + i] = (uint8_t)carry;
			carry >>= 8;
		}
		CHECK(crypto_sign_ed25519_verify_detached(bad, msg, n, want_pub) < 0,
		      "%s: S + L is refused", vec[v].name);
		memcpy(sig, bad, 64);
		CHECK(verify(msg, n, sect, &kp, &e) == EI_ESIG, "%s: S + L is refused by apply",
		      vec[v].name);
		free(msg);
	}
}

static void test_bad_keys(void)
{
	uint8_t seed[32], pub[32], sk[64], sig[64], key[32];
	static const uint8_t msg[] = "header";

	memset(seed, 7, sizeof(seed));
	crypto_sign_ed25519_seed_keypair(pub, sk, seed);
	crypto_sign_ed25519_detached(sig, NULL, msg, sizeof(msg), sk);
	CHECK(crypto_sign_ed25519_verify_detached(sig, msg, sizeof(msg), pub) == 0,
	      "own signature verifies");
	/* y = p (not canonical), y = 2^255 - 1 and the all-zero key */
	memset(key, 0xff, 32);
	key[0] = 0xed;
	key[31] = 0x7f;
	CHECK(crypto_sign_ed25519_verify_detached(sig, msg, sizeof(msg), key) < 0,
	      "y = p is refused");
	key[0] = 0xff;
	CHECK(crypto_sign_ed25519_verify_detached(sig, msg, sizeof(msg), key) < 0,
	      "y = 2^255 - 1 is refused");
	memset(key, 0, 32);
	CHECK(crypto_sign_ed25519_verify_detached(sig, msg, sizeof(msg), key) < 0,
	      "a zero key is refused");
	/* x = 0 with the sign bit set (y = 1): no such point */
	key[0] = 1;
	key[31] = 0x80;
	CHECK(crypto_sign_ed25519_verify_detached(sig, msg, sizeof(msg), key) < 0,
	      "-0 is refused");
	/* the identity (y = 1), a point of small order: any S = 0 "signature" */
	key[31] = 0;
	memset(sig, 0, sizeof(sig));
	sig[0] = 1;
	CHECK(crypto_sign_ed25519_verify_detached(sig, msg, sizeof(msg), key) < 0,
	      "the identity as key and R, S = 0, is refused");
}

/* The PEM files of the seed 32 x 0x42, as openssl genpkey/pkey write them. */
#define PRIV_B64 "MC4CAQAwBQYDK2VwBCIEIEJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJC"
#define PUB_B64 "MCowBQYDK2VwAyEAIVL40Zt5HSRFMkLhXy6rbLfP+ntqXtMAl5YOBpiB2xI="
#define PRIV_PEM "-----BEGIN PRIVATE KEY-----\n" PRIV_B64 "\n-----END PRIVATE KEY-----\n"
#define PUB_PEM "-----BEGIN PUBLIC KEY-----\n" PUB_B64 "\n-----END PUBLIC KEY-----\n"

static int pem(const char *text, int priv, struct delta_key *k, struct err *e)
{
	return delta_key_parse(text, strlen(text), priv, "k.pem", k, e);
}

static void test_pem(void)
{
	static const struct {
		const char *text, *why;
		int priv;
	} bad[] = {
		{ PUB_PEM, "a public key where a private one is needed", 1 },
		{ PRIV_PEM, "a private key where a public one is needed", 0 },
		{ "", "empty", 0 },
		{ "MCowBQYDK2VwAyEAIVL40Zt5HSRFMkLhXy6rbLfP+ntqXtMAl5YOBpiB2xI=\n", "no BEGIN", 0 },
		{ "-----BEGIN PUBLIC KEY-----\n" PUB_B64 "\n", "no END", 0 },
		{ "-----BEGIN PUBLIC KEY-----\n" PUB_B64 "\n-----END PRIVATE KEY-----\n",
		  "END of another label", 0 },
		{ "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAIVL40Zt5HSRFMkLhXy6rbLfP+ntqXtMAl5YOBpiB2xI\n"
		  "-----END PUBLIC KEY-----\n", "padding missing", 0 },
		{ "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAIVL40Zt5HSRFMkLhXy6rbLfP+ntqXtMAl5YOBpiB2xJ=\n"
		  "-----END PUBLIC KEY-----\n", "non-zero bits before the padding", 0 },
		{ "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAIVL40Zt5HSRFMkLhXy6rbLfP+ntqXtMAl5YOBpiB2xI=AAAA\n"
		  "-----END PUBLIC KEY-----\n", "data after the padding", 0 },
		{ "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAIVL40Zt5HSRFMkLhXy6rbLfP+ntqXtMAl5YOBpiB2x!=\n"
		  "-----END PUBLIC KEY-----\n", "a byte outside base64", 0 },
		{ "-----BEGIN PUBLIC KEY-----\nMCswBQYDK2VwAyIAIVL40Zt5HSRFMkLhXy6rbLfP+ntqXtMAl5YOBpiB2xIA\n"
		  "-----END PUBLIC KEY-----\n", "a 33-byte key", 0 },
		{ "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VxAyEAIVL40Zt5HSRFMkLhXy6rbLfP+ntqXtMAl5YOBpiB2xI=\n"
		  "-----END PUBLIC KEY-----\n", "the Ed448 OID", 0 },
		{ PUB_PEM "x", "data after END", 0 },
		{ "-----BEGIN ENCRYPTED PRIVATE KEY-----\n" PRIV_B64 "\n-----END ENCRYPTED PRIVATE KEY-----\n",
		  "an encrypted key", 1 },
	};
	static const uint8_t want_pub[32] = {
		0x21, 0x52, 0xf8, 0xd1, 0x9b, 0x79, 0x1d, 0x24, 0x45, 0x32, 0x42,
		0xe1, 0x5f, 0x2e, 0xab, 0x6c, 0xb7, 0xcf, 0xfa, 0x7b, 0x6a, 0x5e,
		0xd3, 0x00, 0x97, 0x96, 0x0e, 0x06, 0x98, 0x81, 0xdb, 0x12,
	};
	struct delta_key k, kp;
	struct err e = { 0 };
	uint8_t id[SHA256_LEN];

	CHECK(pem(PRIV_PEM, 1, &k, &e) == 0, "private key: %s", e.msg);
	CHECK(k.priv && k.seed[0] == 0x42 && !memcmp(k.pub, want_pub, 32),
	      "private key: seed and public key as openssl has them");
	CHECK(pem(PUB_PEM, 0, &kp, &e) == 0, "public key: %s", e.msg);
	CHECK(!kp.priv && !memcmp(kp.pub, want_pub, 32), "public key bytes");
	sha256(want_pub, 32, id);
	CHECK(!memcmp(kp.id, id, SHA256_LEN) && !memcmp(k.id, id, SHA256_LEN),
	      "key id: SHA-256 of the public key");
	CHECK(pem("-----BEGIN PUBLIC KEY-----\r\n" PUB_B64 "\r\n-----END PUBLIC KEY-----\r\n\n",
		  0, &kp, &e) == 0, "CRLF lines: %s", e.msg);
	CHECK(pem("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAIVL40Zt5HSRF\nMkLhXy6rbLfP+ntqXtMA\n"
		  "l5YOBpiB2xI=\n-----END PUBLIC KEY-----", 0, &kp, &e) == 0 &&
	      !memcmp(kp.pub, want_pub, 32), "base64 over several lines: %s", e.msg);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e.msg[0] = 0;
		CHECK(pem(bad[i].text, bad[i].priv, &kp, &e) < 0 && !strncmp(e.msg, "k.pem: ", 7),
		      "%s is refused, naming the file (%s)", bad[i].why, e.msg);
	}
}

int main(void)
{
	test_pem();
	test_ed25519();
	test_bad_keys();
	return t_done("test_ed25519");
}
#else
int main(void)
{
	return t_done("test_ed25519");
}
#endif
