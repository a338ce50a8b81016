// SPDX-License-Identifier: MIT
/*
 * Signed patches (src/delta-format.md "Signature"): Ed25519 keys read
 * from the PEM files openssl writes (PKCS#8, RFC 5208 and RFC 8410;
 * SubjectPublicKeyInfo, RFC 5280; PEM, RFC 7468), the signature section
 * the encoder appends to a header, and its verification.  The Ed25519
 * arithmetic is libsodium's (crypto_sign_ed25519_*: RFC 8032 signatures,
 * verification refusing non-canonical S and keys and small-order points);
 * the key files are parsed here, strictly.  Key bytes are wiped with
 * explicit_bzero(), which the compiler may not drop as it may a memset().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "core/bytes.h"
#include "delta/delta.h"

#define KEY_FILE_MAX 16384

/*
 * The DER of an Ed25519 key without its 32 key bytes: the only encodings
 * accepted (RFC 8410 sections 4 and 7, id-Ed25519 = 1.3.101.112).
 */
static const uint8_t der_priv[16] = {   /* PrivateKeyInfo, version 0 */
	0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70,
	0x04, 0x22, 0x04, 0x20,
};
static const uint8_t der_pub[12] = {    /* SubjectPublicKeyInfo */
	0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
};

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* The next line of @t (without its "\n" or "\r\n"); 0 at the end. */
static int next_line(const char **t, const char *end, const char **line,
		     size_t *len)
{
	const char *p = *t, *nl;

	if (p >= end)
		return 0;
	nl = memchr(p, '\n', (size_t)(end - p));
	*line = p;
	*len = (size_t)((nl ? nl : end) - p);
	if (*len && p[*len - 1] == '\r')
		(*len)--;
	*t = nl ? nl + 1 : end;
	return 1;
}

/* libsodium wants sodium_init() before use; later calls return at once. */
static int sodium_ready(struct err *e)
{
	if (sodium_init() < 0)
		return err_set(e, -EIO, "libsodium: sodium_init() failed");
	return 0;
}

static int line_is(const char *line, size_t len, const char *s)
{
	return len == strlen(s) && !memcmp(line, s, len);
}

/*
 * Decode the base64 body of one PEM block (RFC 7468 strict: lines of
 * base64, padding only at the very end, unused bits zero) into @der.
 */
static int pem_body(const char **t, const char *end, const char *endline,
		    const char *name, uint8_t *der, size_t cap, size_t *out,
		    struct err *e)
{
	const char *line;
	size_t len, n = 0, lineno = 1, chars = 0;
	uint32_t acc = 0;
	unsigned bits = 0, pad = 0;

	while (next_line(t, end, &line, &len)) {
		lineno++;
		if (line_is(line, len, endline)) {
			if (!chars || chars % 4)
				return err_set(e, EI_ECORRUPT,
					       "%s: base64: %zu characters, not a whole number of 4-character groups",
					       name, chars);
			if (acc)        /* the bits a padded group leaves over */
				return err_set(e, EI_ECORRUPT,
					       "%s: base64: non-zero bits before the '=' padding",
					       name);
			*out = n;
			return 0;
		}
		for (size_t i = 0; i < len; i++, chars++) {
			int v = b64_value(line[i]);

			if (line[i] == '=') {
				if (++pad > 2)
					return err_set(e, EI_ECORRUPT,
						       "%s: line %zu: more than two '=' of padding",
						       name, lineno);
				continue;
			}
			if (v < 0)
				return err_set(e, EI_ECORRUPT,
					       "%s: line %zu: byte 0x%02x is not base64",
					       name, lineno, (unsigned char)line[i]);
			if (pad)
				return err_set(e, EI_ECORRUPT,
					       "%s: line %zu: base64 data after '=' padding",
					       name, lineno);
			acc = acc << 6 | (uint32_t)v;
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				if (n == cap)
					return err_set(e, EI_ECORRUPT,
						       "%s: more than %zu bytes of key data: not an Ed25519 key",
						       name, cap);
				der[n++] = (uint8_t)(acc >> bits);
				acc &= (1u << bits) - 1;
			}
		}
	}
	return err_set(e, EI_ECORRUPT, "%s: no '%s' line", name, endline);
}

int delta_key_parse(const char *text, size_t tlen, int priv, const char *name,
		    struct delta_key *k, struct err *e)
{
	const char *t = text, *end = text + tlen, *line;
	const char *label = priv ? "PRIVATE KEY" : "PUBLIC KEY";
	const uint8_t *prefix = priv ? der_priv : der_pub;
	size_t plen = priv ? sizeof(der_priv) : sizeof(der_pub), len, n = 0;
	char begin[64], endline[64];
	uint8_t der[512];         /* an Ed25519 key needs 48; others get named */
	int r;

	memset(k, 0, sizeof(*k));
	snprintf(begin, sizeof(begin), "-----BEGIN %s-----", label);
	snprintf(endline, sizeof(endline), "-----END %s-----", label);
	if (!next_line(&t, end, &line, &len) || len < 11 ||
	    memcmp(line, "-----BEGIN ", 11))
		return err_set(e, EI_EFORMAT,
			       "%s: not a PEM key file (its first line is not '-----BEGIN ...-----')",
			       name);
	if (!line_is(line, len, begin)) {
		int other = line_is(line, len, priv ? "-----BEGIN PUBLIC KEY-----" :
					     "-----BEGIN PRIVATE KEY-----");

		return err_set(e, EI_EFORMAT, "%s: '%.*s': %s", name,
			       (int)(len < 60 ? len : 60), line,
			       other ? (priv ? "a public key; signing needs the private key (openssl genpkey -algorithm ed25519)" :
				       "a private key; verifying takes the public key (openssl pkey -in KEY -pubout)") :
				       (priv ? "not an unencrypted PKCS#8 private key (openssl genpkey -algorithm ed25519)" :
					       "not a public key (openssl pkey -in KEY -pubout)"));
	}
	r = sodium_ready(e);
	if (r < 0)
		return r;
	r = pem_body(&t, end, endline, name, der, sizeof(der), &n, e);
	if (r < 0)
		goto out;
	while (t < end) {
		if (*t != '\n' && *t != '\r' && *t != ' ' && *t != '\t') {
			r = err_set(e, EI_ECORRUPT, "%s: data after '%s'", name, endline);
			goto out;
		}
		t++;
	}
	/* AlgorithmIdentifier: the OID alone, no parameters (RFC 8410 3) */
	if (n < plen || memcmp(der + (priv ? 5 : 2), der_pub + 2, 7)) {
		r = err_set(e, EI_EUNSUP,
			    "%s: not an Ed25519 key (no id-Ed25519 OID 1.3.101.112 where RFC 8410 puts it)",
			    name);
		goto out;
	}
	if (n != plen + DELTA_KEY_LEN || memcmp(der, prefix, plen)) {
		r = err_set(e, EI_ECORRUPT,
			    "%s: %zu bytes of DER that are not the %zu of an Ed25519 %s (RFC 8410)",
			    name, n, plen + DELTA_KEY_LEN,
			    priv ? "PKCS#8 private key (version 0, no public key)" :
				   "SubjectPublicKeyInfo");
		goto out;
	}
	if (priv) {
		uint8_t secret[crypto_sign_ed25519_SECRETKEYBYTES];

		k->priv = 1;
		memcpy(k->seed, der + plen, DELTA_KEY_LEN);
		crypto_sign_ed25519_seed_keypair(k->pub, secret, k->seed);
		explicit_bzero(secret, sizeof(secret));
	} else {
		memcpy(k->pub, der + plen, DELTA_KEY_LEN);
	}
	sha256(k->pub, DELTA_KEY_LEN, k->id);
out:
	explicit_bzero(der, sizeof(der));
	return r;
}

int delta_key_load(const char *path, int priv, struct delta_key *k,
		   struct err *e)
{
	char buf[KEY_FILE_MAX + 1];
	size_t n = 0;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return err_errno(e, errno, "%s", path);
	while (n < sizeof(buf) && (r = read(fd, buf + n, sizeof(buf) - n)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			r = err_errno(e, errno, "%s", path);
			close(fd);
			return (int)r;
		}
		n += (size_t)r;
	}
	close(fd);
	if (n > KEY_FILE_MAX)
		return err_set(e, EI_ELIMIT, "%s: larger than %d bytes: not a key file",
			       path, KEY_FILE_MAX);
	r = delta_key_parse(buf, n, priv, path, k, e);
	explicit_bzero(buf, sizeof(buf));
	return (int)r;
}

int delta_sign_header(void *arg, const uint8_t *hdr, size_t len,
		      uint8_t sect[DELTA_SIG_SIZE], struct err *e)
{
	const struct delta_key *k = arg;
	uint8_t *sig = sect + 8 + SHA256_LEN;
	uint8_t pk[crypto_sign_ed25519_PUBLICKEYBYTES];
	uint8_t secret[crypto_sign_ed25519_SECRETKEYBYTES];     /* seed, then public key */
	int r;

	if (!k->priv)
		return err_set(e, EI_EUSAGE, "delta: signing needs a private key");
	r = sodium_ready(e);
	if (r < 0)
		return r;
	memset(sect, 0, DELTA_SIG_SIZE);
	memcpy(sect, DELTA_SIG_MAGIC, 4);
	put_le32(sect + 4, DELTA_SIG_ED25519);
	memcpy(sect + 8, k->id, SHA256_LEN);
	crypto_sign_ed25519_seed_keypair(pk, secret, k->seed);
	r = memcmp(pk, k->pub, sizeof(pk)) ? -1 :
	    crypto_sign_ed25519_detached(sig, NULL, hdr, len, secret);
	explicit_bzero(secret, sizeof(secret));
	/* a fault, never a key: the signature just made must verify */
	if (r < 0 || crypto_sign_ed25519_verify_detached(sig, hdr, len, k->pub) < 0)
		return err_set(e, EI_ESIG, "delta: the signature just made does not verify");
	return 0;
}

int delta_sig_verify(const struct delta_header *h, const uint8_t *raw,
		     const struct delta_key *pub, struct err *e)
{
	struct delta_sig s;
	char x1[2 * SHA256_LEN + 1], x2[2 * SHA256_LEN + 1];
	int r;

	r = sodium_ready(e);
	if (r < 0)
		return r;
	if (!(h->incompat & DELTA_INCOMPAT_SIGNED))
		return err_set(e, EI_ESIG,
			       "patch: not signed (no SIGNED feature), and a signature by key %s is required",
			       sha_hex(pub->id, SHA256_LEN, x1));
	r = delta_sig_parse(raw + h->header_size, &s, e);
	if (r < 0)
		return r;
	if (memcmp(s.key_id, pub->id, SHA256_LEN))
		return err_set(e, EI_ESIG,
			       "patch: signed by key %s, not by the trusted key %s",
			       sha_hex(s.key_id, SHA256_LEN, x1),
			       sha_hex(pub->id, SHA256_LEN, x2));
	if (crypto_sign_ed25519_verify_detached(s.sig, raw, h->header_size, pub->pub) < 0)
		return err_set(e, EI_ESIG,
			       "patch: bad signature: key %s did not sign this header (changed, or the signature of another patch)",
			       sha_hex(pub->id, SHA256_LEN, x1));
	return 0;
}
