// SPDX-License-Identifier: MIT
/* Unit tests of bytes.h, err, opts and info. */
#include <string.h>

#include "core/bytes.h"
#include "core/err.h"
#include "core/info.h"
#include "core/opts.h"
#include "t.h"

static void test_bytes(void)
{
	uint8_t b[8];
	uint64_t r;

	put_be64(b, 0x0102030405060708ULL);
	CHECK(b[0] == 1 && b[7] == 8, "be64 order");
	CHECK(get_be64(b) == 0x0102030405060708ULL, "be64 round trip");
	CHECK(get_le64(b) == 0x0807060504030201ULL, "le64 of be bytes");
	put_le32(b + 1, 0xdeadbeef);            /* unaligned on purpose */
	CHECK(get_le32(b + 1) == 0xdeadbeef, "unaligned le32");
	CHECK(get_be16(b + 1) == 0xefbe, "be16");
	CHECK(range_ok(0, 0, 0), "empty range in empty file");
	CHECK(range_ok(10, 6, 16), "range ending at the end");
	CHECK(!range_ok(10, 7, 16), "range one past the end");
	CHECK(!range_ok(UINT64_MAX, 2, UINT64_MAX), "range whose end wraps");
	CHECK(!range_ok(17, 0, 16), "offset past the end");
	CHECK(add_overflow_u64(UINT64_MAX, 1, &r), "add overflow");
	CHECK(!add_overflow_u64(1, 2, &r) && r == 3, "add");
	CHECK(mul_overflow_u64(1ULL << 32, 1ULL << 32, &r), "mul overflow");
	CHECK(is_pow2(65536) && !is_pow2(0) && !is_pow2(65537), "is_pow2");
	memset(b, 0, sizeof(b));
	CHECK(buf_is_zero(b, 8), "zero buffer");
	b[7] = 1;
	CHECK(!buf_is_zero(b, 8), "last byte set");
	{
		static uint8_t big[100000];

		CHECK(buf_is_zero(big, sizeof(big)), "big zero buffer");
		big[99999] = 1;
		CHECK(!buf_is_zero(big, sizeof(big)), "big buffer, last byte set");
		big[99999] = 0;
		big[17] = 1;
		CHECK(!buf_is_zero(big, sizeof(big)), "big buffer, byte 17 set");
	}
}

static void test_err(void)
{
	struct err e = { 0 };
	char longs[600];

	CHECK(err_set(&e, EI_ECORRUPT, "vdi: block size %u is not %u", 7u, 8u) ==
	      EI_ECORRUPT, "err_set returns the code");
	CHECK(!strcmp(e.msg, "vdi: block size 7 is not 8"), "message: %s", e.msg);
	err_prefix(&e, "%s", "disk.vdi");
	CHECK(!strcmp(e.msg, "disk.vdi: vdi: block size 7 is not 8"), "prefix: %s", e.msg);
	memset(longs, 'x', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = 0;
	err_set(&e, -EIO, "%s", longs);
	err_prefix(&e, "file");
	CHECK(strlen(e.msg) == ERR_MSG_MAX - 1 && !strncmp(e.msg, "file: xxx", 9),
	      "prefix of a full message is truncated, not overflowed");
	CHECK(err_errno(&e, ENOENT, "a.img") == -ENOENT, "err_errno code");
	CHECK(strstr(e.msg, "a.img: ") == e.msg && strstr(e.msg, "No such file"),
	      "errno text: %s", e.msg);
	CHECK(!strcmp(err_name(EI_EMULTI), "input matches more than one format"),
	      "project code name");
	CHECK(err_set(NULL, -EINVAL, "x") == -EINVAL, "NULL err is allowed");
}

static void test_opts(void)
{
	struct err e = { 0 };
	struct opts o;
	uint64_t v = 0;

	CHECK(parse_size("65536", &v) == 0 && v == 65536, "plain size");
	CHECK(parse_size("64k", &v) == 0 && v == 65536, "64k");
	CHECK(parse_size("2M", &v) == 0 && v == 2 << 20, "2M");
	CHECK(parse_size("1G", &v) == 0 && v == 1 << 30, "1G");
	CHECK(parse_size("", &v) < 0 && parse_size("k", &v) < 0, "empty sizes");
	CHECK(parse_size("12q", &v) < 0, "bad suffix");
	CHECK(parse_size("-1", &v) < 0, "negative");
	CHECK(parse_size("99999999999999999999", &v) < 0, "overflow");
	CHECK(parse_size("17179869184G", &v) < 0, "shift overflow");
	CHECK(opts_parse("a=1,b=2", &o, &e) == 0 && o.n == 2, "two options");
	CHECK(!strcmp(opts_get(&o, "b"), "2"), "get b");
	CHECK(opts_unused(&o, "t", &e) == EI_EUSAGE && strstr(e.msg, "'a'"),
	      "unused a: %s", e.msg);
	CHECK(opts_parse("a", &o, &e) == EI_EUSAGE, "no =");
	CHECK(opts_parse("=1", &o, &e) == EI_EUSAGE, "no key");
	CHECK(opts_parse("a=1,a=2", &o, &e) == EI_EUSAGE, "twice");
	CHECK(opts_parse(NULL, &o, &e) == 0 && o.n == 0, "NULL is empty");
	CHECK(opts_parse("cluster_size=x", &o, &e) == 0 &&
	      opts_get_u64(&o, "cluster_size", &v, "qcow2", &e) == EI_EUSAGE,
	      "bad size value");
}

static void test_info(void)
{
	static struct info in;
	char buf[1024];
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	info_str(&in, "compat", "%s", "1.1");
	info_begin(&in, "nested");
	info_u64(&in, "n", 7);
	info_bool(&in, "b", true);
	info_end(&in);
	info_str(&in, "quote", "a\"b\\c\n");
	info_json(&in, f, 1, true);
	fclose(f);
	CHECK(!strcmp(buf, "\n    \"compat\": \"1.1\",\n    \"nested\": {\n"
		      "        \"n\": 7,\n        \"b\": true\n    },\n"
		      "    \"quote\": \"a\\\"b\\\\c\\u000a\""), "json: %s", buf);
	{
		static struct info l;
		char lb[512];
		FILE *lf = fmemopen(lb, sizeof(lb), "w");

		info_list(&l, "extents");
		info_begin(&l, NULL);
		info_u64(&l, "size", 1);
		info_end(&l);
		info_begin(&l, NULL);
		info_u64(&l, "size", 2);
		info_end(&l);
		info_list_end(&l);
		info_json(&l, lf, 0, true);
		fclose(lf);
		CHECK(!strcmp(lb, "\n\"extents\": [\n    {\n        \"size\": 1\n    },\n"
			      "    {\n        \"size\": 2\n    }\n]"), "json list: %s", lb);
		lf = fmemopen(lb, sizeof(lb), "w");
		info_text(&l, lf, 0);
		fclose(lf);
		CHECK(!strcmp(lb, "extents:\n    [0]:\n        size: 1\n    [1]:\n"
			      "        size: 2\n"), "text list: %s", lb);
	}
	for (int i = 0; i < INFO_MAX_NODES + 5; i++)
		info_u64(&in, "x", 1);
	CHECK(in.overflow && in.n == INFO_MAX_NODES, "overflow is bounded");
}

int main(void)
{
	test_bytes();
	test_err();
	test_opts();
	test_info();
	return t_done("test_core");
}
