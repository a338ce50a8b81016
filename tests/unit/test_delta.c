// SPDX-License-Identifier: MIT
/*
 * Unit tests of the delta patch encoder and decoder over memory disks:
 * round trips of moved, edited, shifted and zeroed content, determinism
 * for any thread count, and hand-made hostile chunks (HOSTILE-INPUTS
 * P1, P2, P4, P8, P9, P10) that must fail with a specific error.
 */
#include <stdlib.h>
#include <string.h>

#include "core/kconfig.h"
#include "t.h"

#if IS_ENABLED(CONFIG_CODEC_ZSTD)
#include <zlib.h>
#include <zstd.h>

#include "core/bytes.h"
#include "delta/delta.h"
#include "core/format.h"

static uint64_t rng = 88172645463325252ULL;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static struct vdisk *mem_disk(const uint8_t *buf, size_t len)
{
	struct open_opts o = { .format = "raw" };
	struct vdisk *vd = NULL;
	struct err e = { 0 };
	struct io *io;

	if (io_mem_new(buf, len, 0, &io, &e) < 0 ||
	    vdisk_open_io(io, ".", &o, &vd, &e) < 0)
		return NULL;
	return vd;
}

struct outbuf {
	uint8_t *p;
	size_t len;
};

static int sink_mem(void *arg, const void *buf, size_t len, uint64_t off,
		    struct err *e)
{
	struct outbuf *o = arg;

	if (off + len > o->len)
		return err_set(e, -EIO, "sink: write past the end");
	if (buf)
		memcpy(o->p + off, buf, len);
	else
		memset(o->p + off, 0, len);
	return 0;
}

/* Decode @patch over @old into a fresh buffer; returns 0 or the error. */
static int decode(const uint8_t *patch, size_t plen, const uint8_t *old,
		  size_t old_len, uint8_t **out, size_t *out_len, unsigned flags,
		  struct err *e)
{
	struct delta_header h;
	struct delta_dec *d = NULL;
	struct vdisk *vd = mem_disk(old, old_len);
	struct io *pio;
	struct outbuf ob = { 0 };
	struct delta_sink s = { sink_mem, &ob };
	int r;

	*out = NULL;
	r = delta_header_parse(patch, plen, &h, flags & DELTA_DEC_NO_SUMS, e);
	if (r < 0)
		goto done;
	ob.len = (size_t)h.new_size;
	ob.p = calloc(1, ob.len + 1);
	io_mem_new(patch, plen, 0, &pio, e);
	r = delta_dec_new(&h, vd, pio, 0, NULL, flags, &d, e);
	if (r == 0)
		while ((r = delta_dec_next(d, &s, e)) == 1)
			;
	delta_dec_free(d);
	io_close(pio);
	*out = ob.p;
	*out_len = ob.len;
	/* what apply does after the last chunk: NEW against the header */
	if (r == 0) {
		uint8_t sum[CHASH_LEN];

		chash(ob.p, ob.len, sum);
		if (memcmp(sum, h.new_sha, CHASH_LEN))
			r = err_set(e, EI_EMISMATCH, "NEW's content hash differs from the patch's");
	}
done:
	vdisk_close(vd);
	return r;
}

/* What encode() adds to its options: signing and a patch version. */
static struct delta_enc_opts enc_extra;

/* Encode OLD -> NEW into a fresh buffer. */
static uint8_t *encode(const uint8_t *old, size_t ol, const uint8_t *new,
		       size_t nl, unsigned threads, uint64_t chunk, size_t *plen,
		       struct delta_enc_stats *st)
{
	struct delta_enc_opts o = { .level = 19, .threads = threads, .chunk_new = chunk };
	struct vdisk *a = mem_disk(old, ol), *b = mem_disk(new, nl);
	struct vdisk *a2 = NULL, *b2 = NULL;
	struct err e = { 0 };
	struct io *out;
	uint8_t *p = NULL;
	int r;

	o.sign = enc_extra.sign;
	o.sign_arg = enc_extra.sign_arg;
	o.patch_version = enc_extra.patch_version;
	if (threads == 3) {     /* the hashes in threads, over second handles */
		o.hash_old = a2 = mem_disk(old, ol);
		o.hash_new = b2 = mem_disk(new, nl);
	}
	io_mem_new(NULL, 0, 256u << 20, &out, &e);
	r = delta_encode(a, b, out, &o, st, &e);
	CHECK(r == 0, "encode: %s", e.msg);
	if (r == 0) {
		*plen = (size_t)out->size;
		p = malloc(*plen);
		memcpy(p, io_mem_data(out), *plen);
	}
	io_close(out);
	vdisk_close(a);
	vdisk_close(b);
	vdisk_close(a2);
	vdisk_close(b2);
	return p;
}

static void round_trip(const char *what, const uint8_t *old, size_t ol,
		       const uint8_t *new, size_t nl, size_t max_patch)
{
	struct delta_enc_stats st;
	struct err e = { 0 };
	size_t plen = 0, outl = 0;
	uint8_t *p = encode(old, ol, new, nl, 2, 0, &plen, &st), *out = NULL;
	int r;

	if (!p)
		return;
	r = decode(p, plen, old, ol, &out, &outl, 0, &e);
	CHECK(r == 0, "%s: decode: %s", what, e.msg);
	CHECK(r == 0 && outl == nl && !memcmp(out, new, nl), "%s: NEW differs", what);
	CHECK(plen <= max_patch, "%s: patch of %zu bytes, expected at most %zu", what,
	      plen, max_patch);
	free(p);
	free(out);
}

#define MIB (1u << 20)

static void test_round_trips(void)
{
	size_t n = 4 * MIB, i;
	uint8_t *old = calloc(1, n), *new = calloc(1, n + 12345);

	/* OLD: random blocks, text, zeros */
	for (i = 0; i < n; i += 8) {
		uint64_t v = rnd();

		memcpy(old + i, &v, 8);
	}
	for (i = MIB; i < 2 * MIB; i++)
		old[i] = (uint8_t)("the quick brown fox jumps\n"[i % 26]);
	memset(old + 3 * MIB, 0, MIB / 2);
	round_trip("identical", old, n, old, n, 2000);

	/* NEW: blocks moved around, some edited, zeros, new data, other size */
	for (i = 0; i + 4096 <= n; i += 4096)
		memcpy(new + i, old + ((i / 4096 * 7919) % (n / 4096)) * 4096, 4096);
	memset(new + 2 * MIB + 100000, 0, MIB / 4);
	for (i = 0; i < 200; i++)
		new[rnd() % n] ^= 0x5a;
	for (i = n; i < n + 12345; i++)
		new[i] = (uint8_t)rnd();
	round_trip("moved, edited, grown", old, n, new, n + 12345, 40000);
	/* the half MiB zeroed in NEW is new data when it is OLD */
	round_trip("shrunk", new, n + 12345, old, n - 3000, 300000);

	/* one byte changed in 100 blocks: the reference makes each cheap */
	memcpy(new, old, n);
	for (i = 0; i < 100; i++)
		new[(rnd() % (n / 4096)) * 4096 + 1000] ^= 1;
	round_trip("100 one-byte edits", old, n, new, n, 4000);    /* 16 chunks */

	/* everything shifted by 100 bytes: no block matches, anchors do */
	memcpy(new + 100, old, n - 100);
	memset(new, 7, 100);
	round_trip("shifted by 100 bytes", old, n, new, n, 3000);

	round_trip("empty NEW", old, n, new, 0, 400);
	round_trip("empty OLD", new, 0, old, 4096 * 3 + 5, 20000);
	free(old);
	free(new);
}

static void test_determinism(void)
{
	size_t n = 2 * MIB, l1 = 0, l2 = 0, l3 = 0;
	uint8_t *old = malloc(n), *new = malloc(n), *p1, *p2, *p3;
	struct delta_enc_stats st;

	for (size_t i = 0; i < n; i++)
		old[i] = (uint8_t)(rnd() % 7);
	memcpy(new, old + 1, n - 1);
	new[n - 1] = 1;
	for (size_t i = 0; i < 64; i++)
		memset(new + (rnd() % (n - 9000)), 0, 8192);
	p1 = encode(old, n, new, n, 1, 128 << 10, &l1, &st);
	p2 = encode(old, n, new, n, 3, 128 << 10, &l2, &st);
	p3 = encode(old, n, new, n, 8, 128 << 10, &l3, &st);
	CHECK(p1 && p2 && p3 && l1 == l2 && l2 == l3 && !memcmp(p1, p2, l1) &&
	      !memcmp(p1, p3, l1),
	      "patches differ between 1, 3 (hashes in threads) and 8 threads");
	CHECK(st.chunks == 16, "128 KiB chunks over 2 MiB: %llu chunks",
	      (unsigned long long)st.chunks);
	free(p1);
	free(p2);
	free(p3);
	free(old);
	free(new);
}

/* --- hand-made patches ---------------------------------------------------- */

#define OLD_SIZE 65536

struct hp {
	uint64_t new_size;
	const uint8_t *ops;
	size_t ops_len;
	uint32_t op_count, ref_count, ref_len;
	const uint8_t *data;    /* compressed by hp_build with @ref as prefix */
	uint32_t data_len;
	const uint8_t *ref;
	const uint8_t *dataz;   /* or this frame as is */
	size_t dataz_len;
};

static size_t hp_build(const struct hp *p, uint8_t *b, size_t cap)
{
	uint8_t *c = b + 288, *z = c + DELTA_CHUNK_HDR;
	size_t ozl, dzl = 0, total;
	uLong crc;

	memset(b, 0, 288);
	memcpy(b, DELTA_MAGIC, 8);
	put_le32(b + 8, DELTA_VERSION);
	put_le32(b + 12, 288);
	put_le64(b + 16, p->ref_len ? DELTA_INCOMPAT_REF : 0);
	put_le64(b + 32, OLD_SIZE);
	put_le64(b + 40, p->new_size);
	put_le32(b + 56, 1);
	put_le32(b + 60, 4096);
	put_le32(b + 64, p->data_len);
	put_le32(b + 68, p->ref_len);
	put_le64(b + 144, p->new_size);
	ozl = ZSTD_compress(z, cap - 400, p->ops, p->ops_len, 3);
	if (p->dataz) {
		memcpy(z + ozl, p->dataz, p->dataz_len);
		dzl = p->dataz_len;
	} else if (p->data_len) {
		ZSTD_CCtx *cc = ZSTD_createCCtx();

		if (p->ref)
			ZSTD_CCtx_refPrefix(cc, p->ref, p->ref_len);
		dzl = ZSTD_compress2(cc, z + ozl, cap - 400 - ozl, p->data, p->data_len);
		ZSTD_freeCCtx(cc);
	}
	memcpy(c, DELTA_CHUNK_MAGIC, 4);
	put_le64(c + 8, 0);
	put_le32(c + 16, (uint32_t)p->new_size);
	put_le32(c + 20, p->op_count);
	put_le32(c + 24, (uint32_t)p->ops_len);
	put_le32(c + 28, (uint32_t)ozl);
	put_le32(c + 32, p->ref_count);
	put_le32(c + 36, p->ref_len);
	put_le32(c + 40, p->data_len);
	put_le32(c + 44, (uint32_t)dzl);
	crc = crc32(0, c, DELTA_CHUNK_HDR - 4);      /* next_sha: 0, the last chunk */
	crc = crc32(crc, z, (uInt)(ozl + dzl));
	put_le32(c + DELTA_CHUNK_HDR - 4, (uint32_t)crc);
	total = 288 + DELTA_CHUNK_HDR + ozl + dzl;
	put_le64(b + 48, total);
	sha256(c, total - 288, b + 192);                /* the chain: chunk 0 */
	sha256(b, 256, b + 256);
	return total;
}

static size_t vput(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static uint8_t old_disk[OLD_SIZE];

/* Build @p, decode it; expect error @code with @msg in the message. */
static void expect(const char *what, const struct hp *p, int code, const char *msg)
{
	static uint8_t b[1 << 20];
	size_t n = hp_build(p, b, sizeof(b)), outl;
	uint8_t *out;
	struct err e = { 0 };
	int r = decode(b, n, old_disk, OLD_SIZE, &out, &outl, 0, &e);

	CHECK(r == code && strstr(e.msg, msg), "%s: got %d '%s', expected %d '%s'",
	      what, r, e.msg, code, msg);
	free(out);
}

static void test_hostile(void)
{
	uint8_t ops[256], data[4096];
	struct hp p;
	size_t n;

	for (size_t i = 0; i < OLD_SIZE; i++)
		old_disk[i] = (uint8_t)(i * 31 + 7);
	memset(data, 0xab, sizeof(data));

	/* a valid baseline: COPY 4096 from 8192, DATA 4096: decodes up to the hash */
	n = vput(ops, 4096 << 2 | DELTA_OP_COPY);
	n += vput(ops + n, 8192 << 1);
	n += vput(ops + n, 4096 << 2 | DELTA_OP_DATA);
	p = (struct hp){ .new_size = 8192, .ops = ops, .ops_len = n, .op_count = 2,
			 .data = data, .data_len = 4096 };
	expect("valid ops, wrong NEW hash", &p, EI_EMISMATCH, "NEW's content hash differs");

	/* P2: COPY past OLD's end; P1: a negative COPY offset */
	n = vput(ops, 4096 << 2 | DELTA_OP_COPY);
	n += vput(ops + n, (OLD_SIZE - 100) << 1);
	p = (struct hp){ .new_size = 4096, .ops = ops, .ops_len = n, .op_count = 1 };
	expect("P2 copy past OLD", &p, EI_ECORRUPT, "lies outside OLD");
	n = vput(ops, 4096 << 2 | DELTA_OP_COPY);
	n += vput(ops + n, (5 << 1) | 1);       /* -6 from 0 */
	p.ops_len = n;
	expect("P1 negative copy offset", &p, EI_ECORRUPT, "copy of 4096 bytes from -6");
	/* lengths: 0, too long, too short */
	n = vput(ops, 0 << 2 | DELTA_OP_ZERO);
	p = (struct hp){ .new_size = 4096, .ops = ops, .ops_len = n, .op_count = 1 };
	expect("op of length 0", &p, EI_ECORRUPT, "length 0 is 0 or runs past");
	n = vput(ops, 5000 << 2 | DELTA_OP_ZERO);
	p.ops_len = n;
	expect("op past new_len", &p, EI_ECORRUPT, "length 5000 is 0 or runs past new_len 4096");
	n = vput(ops, 4000 << 2 | DELTA_OP_ZERO);
	p.ops_len = n;
	expect("ops short of new_len", &p, EI_ECORRUPT, "ops cover 4000 of new_len 4096");
	/* DATA past the data; unknown type; bad varint; leftover bytes */
	n = vput(ops, 4096 << 2 | DELTA_OP_DATA);
	p = (struct hp){ .new_size = 4096, .ops = ops, .ops_len = n, .op_count = 1,
			 .data = data, .data_len = 100 };
	expect("DATA past data_len", &p, EI_ECORRUPT, "only 100 of data_len 100 left");
	n = vput(ops, 4096 << 2 | 3);
	p = (struct hp){ .new_size = 4096, .ops = ops, .ops_len = n, .op_count = 1 };
	expect("type 3", &p, EI_ECORRUPT, "unknown type 3");
	memset(ops, 0xff, 12);
	p.ops_len = 12;
	expect("11-byte varint", &p, EI_ECORRUPT, "bad varint");
	n = vput(ops, 4096 << 2 | DELTA_OP_ZERO);
	ops[n++] = 0;
	p.ops_len = n;
	expect("leftover op bytes", &p, EI_ECORRUPT, "3 of ops_len 4");
	p.op_count = 2;
	p.ops_len = n - 1;
	expect("P10 op_count above the ops present", &p, EI_ECORRUPT, "op 1: bad varint");
	p.op_count = 5;
	expect("P10 op_count above ops_len", &p, EI_ECORRUPT, "op_count 5 is not 1..65536 (and at most ops_len 3)");
	/* references: outside OLD, not adding up */
	n = vput(ops, OLD_SIZE - 10);
	n += vput(ops + n, 100);
	n += vput(ops + n, 4096 << 2 | DELTA_OP_DATA);
	p = (struct hp){ .new_size = 4096, .ops = ops, .ops_len = n, .op_count = 1,
			 .ref_count = 1, .ref_len = 100, .data = data, .data_len = 4096 };
	expect("reference outside OLD", &p, EI_ECORRUPT, "reference 0 (gap 65526, len 100) lies outside OLD");
	n = vput(ops, 0);
	n += vput(ops + n, 50);
	n += vput(ops + n, 4096 << 2 | DELTA_OP_DATA);
	p.ops_len = n;
	expect("references short of ref_len", &p, EI_ECORRUPT, "references add up to 50 bytes, ref_len says 100");
	/* a reference is used as the zstd prefix: the right one decodes */
	n = vput(ops, 4096);
	n += vput(ops + n, 4096);
	n += vput(ops + n, 4096 << 2 | DELTA_OP_DATA);
	p = (struct hp){ .new_size = 4096, .ops = ops, .ops_len = n, .op_count = 1,
			 .ref_count = 1, .ref_len = 4096, .ref = old_disk + 4096,
			 .data = old_disk + 4096, .data_len = 4096 };
	expect("data against its reference", &p, EI_EMISMATCH, "NEW's content hash");
	p.ref = old_disk + 8192;        /* compressed against another prefix */
	{
		static uint8_t b[1 << 16];
		size_t bl = hp_build(&p, b, sizeof(b)), outl;
		uint8_t *out;
		struct err e = { 0 };
		int r = decode(b, bl, old_disk, OLD_SIZE, &out, &outl, 0, &e);

		CHECK(r < 0, "a wrong reference must not decode silently");
		CHECK(r == EI_EMISMATCH || r == EI_ECODEC, "wrong reference: %d %s", r, e.msg);
		free(out);
	}

	/* zstd frames: P9 huge window, two frames, size lies, dictionary */
	{
		static const uint8_t huge[] = { 0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xa8,
						0x01, 0x00, 0x00 };
		uint8_t two[2 * 64], dict[64];
		size_t a = ZSTD_compress(two, 64, data, 100, 1), b2;

		n = vput(ops, 4096 << 2 | DELTA_OP_DATA);
		p = (struct hp){ .new_size = 4096, .ops = ops, .ops_len = n, .op_count = 1,
				 .data_len = 4096, .dataz = huge, .dataz_len = sizeof(huge) };
		expect("P9 window 2^31", &p, EI_ELIMIT, "declares a zstd window of 2^31 bytes, the limit is 2^25");
		b2 = ZSTD_compress(two + a, 64, data, 100, 1);
		p = (struct hp){ .new_size = 200, .ops = ops, .ops_len = vput(ops, 200 << 2 | DELTA_OP_DATA),
				 .op_count = 1, .data_len = 200, .dataz = two, .dataz_len = a + b2 };
		expect("P4 two frames", &p, EI_ECODEC, "declares 100 bytes");
		p.data_len = 100;
		p.new_size = 100;
		p.ops_len = vput(ops, 100 << 2 | DELTA_OP_DATA);
		expect("P4 trailing frame", &p, EI_ECODEC, "is not one whole zstd frame");
		p.dataz_len = a - 1;
		expect("P4 frame that does not end", &p, EI_ECODEC, "is not one whole zstd frame");
		memcpy(dict, two, a);
		dict[4] |= 0x01;        /* Dictionary_ID_flag */
		p.dataz = dict;
		p.dataz_len = a;
		expect("frame asking for a dictionary", &p, EI_ECODEC, "asks for a zstd dictionary");
		p.dataz = data;
		expect("not a zstd frame", &p, EI_ECODEC, "is not a zstd frame");
	}

	/* checksums are skipped only when asked (fuzzing) */
	{
		static uint8_t b[1 << 16];
		size_t bl, outl;
		uint8_t *out;
		struct err e = { 0 };
		int r;

		n = vput(ops, 4096 << 2 | DELTA_OP_ZERO);
		p = (struct hp){ .new_size = 4096, .ops = ops, .ops_len = n, .op_count = 1 };
		bl = hp_build(&p, b, sizeof(b));
		b[288 + DELTA_CHUNK_HDR - 4] ^= 1;
		r = decode(b, bl, old_disk, OLD_SIZE, &out, &outl, 0, &e);
		CHECK(r == EI_EMISMATCH && strstr(e.msg, "does not belong to this patch"),
		      "a changed chunk is not the one the header commits to: %s", e.msg);
		free(out);
		sha256(b + 288, bl - 288, b + 192);     /* the chain redone, not the CRC */
		sha256(b, 256, b + 256);
		r = decode(b, bl, old_disk, OLD_SIZE, &out, &outl, 0, &e);
		CHECK(r == EI_EMISMATCH && strstr(e.msg, "CRC-32"), "CRC: %s", e.msg);
		free(out);
		r = decode(b, bl, old_disk, OLD_SIZE, &out, &outl, DELTA_DEC_NO_SUMS, &e);
		CHECK(r == EI_EMISMATCH && strstr(e.msg, "NEW's content hash"), "NO_SUMS: %s", e.msg);
		free(out);
		r = decode(b, bl - 3, old_disk, OLD_SIZE, &out, &outl, 0, &e);
		CHECK(r == EI_ETRUNC && strstr(e.msg, "truncated"), "truncated: %s", e.msg);
		free(out);
	}
}

static void test_helpers(void)
{
	char f[64], v[64], o[256];
	struct err e = { 0 };

	/* a squashfs zstd recipe from before skip_random is built with it off */
	CHECK(delta_recipe_split("format=squashfs,writer=0.1.0,compression=zstd,level=15",
				 f, sizeof(f), v, sizeof(v), o, sizeof(o), &e) == 0 &&
	      !strcmp(f, "squashfs") && !strcmp(v, "0.1.0") &&
	      !strcmp(o, "compression=zstd,level=15,skip_random=off"), "recipe split: %s %s %s",
	      f, v, o);
	CHECK(delta_recipe_split("format=squashfs,writer=0.2.0,compression=zstd,skip_random=on,level=15",
				 f, sizeof(f), v, sizeof(v), o, sizeof(o), &e) == 0 &&
	      !strcmp(o, "compression=zstd,skip_random=on,level=15"), "recipe split, on: %s", o);
	CHECK(delta_recipe_split("format=squashfs,writer=0.1.0,compression=gzip,level=9",
				 f, sizeof(f), v, sizeof(v), o, sizeof(o), &e) == 0 &&
	      !strcmp(o, "compression=gzip,level=9"), "recipe split, gzip: %s", o);
	CHECK(delta_recipe_split("format=qcow2,writer=0.1.0,compression=zstd", f, sizeof(f), v,
				 sizeof(v), o, sizeof(o), &e) == 0 &&
	      !strcmp(o, "compression=zstd"), "recipe split, qcow2: %s", o);
	CHECK(delta_recipe_split("format=squashfs,writer=0.1.0,compression=zstd,level=15",
				 f, sizeof(f), v, sizeof(v), o, 40, &e) == EI_ECORRUPT,
	      "recipe split: no room for skip_random=off");
	/* a root filesystem's recipe from before group_fragments: built with it off */
	CHECK(delta_recipe_split("format=squashfs,writer=0.2.0,compression=gzip,level=9,files=on",
				 f, sizeof(f), v, sizeof(v), o, sizeof(o), &e) == 0 &&
	      !strcmp(o, "compression=gzip,level=9,files=on,group_fragments=off"),
	      "recipe split, files: %s", o);
	CHECK(delta_recipe_split("format=squashfs,writer=0.2.0,compression=zstd,level=15,files=on",
				 f, sizeof(f), v, sizeof(v), o, sizeof(o), &e) == 0 &&
	      !strcmp(o, "compression=zstd,level=15,files=on,skip_random=off,group_fragments=off"),
	      "recipe split, files, zstd: %s", o);
	CHECK(delta_recipe_split("format=squashfs,writer=0.2.0,compression=gzip,files=on,group_fragments=on",
				 f, sizeof(f), v, sizeof(v), o, sizeof(o), &e) == 0 &&
	      !strcmp(o, "compression=gzip,files=on,group_fragments=on"),
	      "recipe split, files, grouped: %s", o);
	CHECK(delta_recipe_split("format=squashfs,writer=0.2.0,compression=gzip,files=on",
				 f, sizeof(f), v, sizeof(v), o, 30, &e) == EI_ECORRUPT,
	      "recipe split: no room for group_fragments=off");
	CHECK(delta_recipe_split("writer=1,level=2", f, sizeof(f), v, sizeof(v), o,
				 sizeof(o), &e) == EI_ECORRUPT, "a recipe needs a format");
	CHECK(delta_recipe_split("format=x,junk", f, sizeof(f), v, sizeof(v), o,
				 sizeof(o), &e) == EI_ECORRUPT, "key=value only");
}

/* A stand-in signer: the section's form, a signature of the header's sum. */
static int fake_sign(void *arg, const uint8_t *hdr, size_t len,
		     uint8_t sect[DELTA_SIG_SIZE], struct err *e)
{
	memset(sect, 0, DELTA_SIG_SIZE);
	memcpy(sect, DELTA_SIG_MAGIC, 4);
	put_le32(sect + 4, DELTA_SIG_ED25519);
	memset(sect + 8, 0xab, SHA256_LEN);
	sha256(hdr, len, sect + 8 + SHA256_LEN);
	*(int *)arg += 1;
	return 0;
}

/* A SIGNED patch: the section after the header, chunks after it. */
static void test_signed(void)
{
	size_t n = 300000, plen = 0, olen = 0;
	uint8_t *old = malloc(n), *new = malloc(n), *p, *out = NULL;
	uint8_t raw[DELTA_HDR_SIG_MAX], sum[SHA256_LEN];
	struct delta_header h;
	struct err e = { 0 };
	struct io *io;
	int calls = 0, r;

	for (size_t i = 0; i < n; i++)
		old[i] = new[i] = (uint8_t)rnd();
	memset(new + 1000, 7, 5000);
	enc_extra.sign = fake_sign;
	enc_extra.sign_arg = &calls;
	enc_extra.patch_version = 77;
	p = encode(old, n, new, n, 2, 65536, &plen, NULL);
	memset(&enc_extra, 0, sizeof(enc_extra));
	if (!p)
		goto out;
	CHECK(calls == 1, "the signer is called once (%d)", calls);
	r = delta_header_parse(p, plen, &h, 0, &e);
	CHECK(r > 0 && (h.incompat & DELTA_INCOMPAT_SIGNED) && h.patch_version == 77 &&
	      h.chunks_off == h.header_size + DELTA_SIG_SIZE,
	      "signed header: %s", e.msg);
	sha256(p, h.header_size, sum);
	CHECK(!memcmp(p + h.header_size, DELTA_SIG_MAGIC, 4) &&
	      !memcmp(p + h.header_size + 40, sum, SHA256_LEN),
	      "the section follows the header and signs all of it");
	CHECK(!memcmp(p + h.chunks_off, DELTA_CHUNK_MAGIC, 4), "chunk 0 after the section");
	r = decode(p, plen, old, n, &out, &olen, 0, &e);
	CHECK(r == 0 && olen == n && !memcmp(out, new, n), "signed round trip: %s", e.msg);
	free(out);
	io_mem_new(p, plen, 0, &io, &e);
	r = delta_header_read(io, &h, raw, &e);
	io_close(io);
	CHECK(r == (int)h.chunks_off && !memcmp(raw, p, h.chunks_off),
	      "delta_header_read returns header and section: %d %s", r, e.msg);
	/* cut inside the section; a bad magic, algorithm, reserved byte */
	io_mem_new(p, h.header_size + 100, 0, &io, &e);
	r = delta_header_read(io, &h, raw, &e);
	io_close(io);
	CHECK(r == EI_ETRUNC, "a cut section is a truncation: %d %s", r, e.msg);
	for (int i = 0; i < 3; i++) {
		static const size_t at[3] = { 1, 5, 120 };
		static const int code[3] = { EI_ECORRUPT, EI_EUNSUP, EI_ECORRUPT };
		size_t k = h.header_size + at[i];

		p[k] ^= 1;
		io_mem_new(p, plen, 0, &io, &e);
		r = delta_header_read(io, &h, raw, &e);
		io_close(io);
		CHECK(r == code[i] && strstr(e.msg, "signature section"),
		      "section byte %zu changed: %d %s", at[i], r, e.msg);
		p[k] ^= 1;
	}
	free(p);
out:
	free(old);
	free(new);
}

int main(void)
{
	test_signed();
	test_round_trips();
	test_determinism();
	test_hostile();
	test_helpers();
	return t_done("test_delta");
}
#else
int main(void)
{
	return t_done("test_delta");
}
#endif
