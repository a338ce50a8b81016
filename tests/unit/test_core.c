// SPDX-License-Identifier: MIT
/*
 * Unit tests of bytes.h, err, opts (writers' option tables, edit
 * distance), the registry's names and writer options, and info.
 */
#include <string.h>

#include "core/bytes.h"
#include "core/err.h"
#include "core/format.h"
#include "core/info.h"
#include "core/opts.h"
#include "generated/features.h"
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
	CHECK(opts_unknown(&o, "t", NULL, &e) == EI_EUSAGE &&
	      !strcmp(e.msg, "t: unknown option 'a'; t takes no options"),
	      "unused a: %s", e.msg);
	CHECK(opts_parse("a", &o, &e) == EI_EUSAGE, "no =");
	CHECK(opts_parse("=1", &o, &e) == EI_EUSAGE, "no key");
	CHECK(opts_parse("a=1,a=2", &o, &e) == EI_EUSAGE, "twice");
	CHECK(opts_parse(NULL, &o, &e) == 0 && o.n == 0, "NULL is empty");
}

/* A writer's table, as a format has one. */
static void describe_level(const struct opt_desc *d, char *buf, size_t len)
{
	snprintf(buf, len, "1..9 (default 6) for %s", d->key);
}

static const struct opt_desc table[] = {
	{ .key = "compat", .values = "0.10|1.1", .def = "1.1", .help = "the version" },
	{ .key = "cluster_size", .values = "a power of two from 4 KiB to 2 MiB",
	  .def = "65536", .help = "bytes", .min = 4096, .max = 2 << 20, .pow2 = 1 },
	{ .key = "compress", .values = "on|off|auto", .def = "off", .help = "whether" },
	{ .key = "level", .help = "how hard", .describe = describe_level },
	{ .key = NULL },
};

static void test_opt_table(void)
{
	struct err e = { 0 };
	struct opts o;
	uint64_t v = 7;
	char buf[1024];
	size_t n;

	CHECK(opt_choice(&table[0], "1.1", "q", &e) == 1, "choice 1.1");
	CHECK(opt_choice(&table[0], NULL, "q", &e) == 1, "choice: the default");
	CHECK(opt_choice(&table[0], "1.", "q", &e) == EI_EUSAGE &&
	      !strcmp(e.msg, "q: compat=1. is not 0.10 or 1.1"), "two choices: %s", e.msg);
	CHECK(opt_choice(&table[2], "maybe", "q", &e) == EI_EUSAGE &&
	      !strcmp(e.msg, "q: compress=maybe is not one of on, off, auto"),
	      "three choices: %s", e.msg);
	CHECK(opt_number(&table[1], NULL, &v, "q", &e) == 0 && v == 65536,
	      "number: the default, %llu", (unsigned long long)v);
	CHECK(opt_number(&table[1], "1M", &v, "q", &e) == 1 && v == 1 << 20, "number 1M");
	CHECK(opt_number(&table[1], "2k", &v, "q", &e) == EI_EUSAGE &&
	      !strcmp(e.msg, "q: cluster_size=2048 is not a power of two from 4 KiB to 2 MiB"),
	      "below the range: %s", e.msg);
	CHECK(opt_number(&table[1], "12288", &v, "q", &e) == EI_EUSAGE, "not a power of two");
	CHECK(opt_number(&table[1], "4M", &v, "q", &e) == EI_EUSAGE, "above the range");
	CHECK(opt_number(&table[1], "big", &v, "q", &e) == EI_EUSAGE &&
	      strstr(e.msg, "cluster_size=big is not a power of two"), "not a number: %s", e.msg);
	CHECK(v == 1 << 20, "a refused number leaves the value");
	CHECK(opt_bad(&table[3], "x", "q", &e) == EI_EUSAGE &&
	      !strcmp(e.msg, "q: level=x is not 1..9 (default 6) for level"),
	      "values from describe: %s", e.msg);

	CHECK(opts_parse("compat=1.1,cluster_sise=64k", &o, &e) == 0, "parse");
	opts_get(&o, "compat");
	CHECK(opts_unknown(&o, "q", table, &e) == EI_EUSAGE &&
	      !strcmp(e.msg, "q: unknown option 'cluster_sise'; did you mean 'cluster_size'? "
		      "valid: compat, cluster_size, compress, level"), "did you mean: %s", e.msg);
	CHECK(opts_parse("frobnicate=1", &o, &e) == 0 &&
	      opts_unknown(&o, "q", table, &e) == EI_EUSAGE &&
	      !strcmp(e.msg, "q: unknown option 'frobnicate'; valid: compat, cluster_size, compress, level"),
	      "nothing near: %s", e.msg);
	CHECK(opts_parse("compat=1", &o, &e) == 0 && opts_get(&o, "compat") &&
	      opts_unknown(&o, "q", table, &e) == 0, "every key asked for");

	n = opts_help(table, buf, sizeof(buf), 0);
	CHECK(n == strlen(buf) && !strncmp(buf, "  compat: 0.10 or 1.1; default 1.1\n      the version\n"
					   "  cluster_size: a power of two from 4 KiB to 2 MiB; default 65536\n", 113),
	      "help: %s", buf);
	CHECK(strstr(buf, "  level: 1..9 (default 6) for level\n      how hard\n"), "help of describe: %s", buf);
	CHECK(opts_help(table, buf, 10, 0) == n && strlen(buf) == 9, "help truncated, full length told");
	CHECK(text_addf(buf, sizeof(buf), text_addf(buf, sizeof(buf), 0, "%d", 12), "-%s", "ab") == 5 &&
	      !strcmp(buf, "12-ab"), "text_addf chains: %s", buf);
	CHECK(text_addf(buf, 3, 0, "abcdef") == 6 && !strcmp(buf, "ab"), "text_addf truncates");
	CHECK(text_addf(NULL, 0, 4, "abc") == 7, "text_addf counts without a buffer");
}

static void test_distance(void)
{
	char longs[STR_DISTANCE_MAX + 2];
	struct str_near n = { .typo = "cluster_sise" };

	CHECK(str_distance("", "") == 0 && str_distance("abc", "abc") == 0, "same");
	CHECK(str_distance("", "abc") == 3 && str_distance("abc", "") == 3, "empty");
	CHECK(str_distance("kitten", "sitting") == 3, "kitten sitting");
	CHECK(str_distance("qcw2", "qcow2") == 1, "an insertion");
	CHECK(str_distance("qcow2", "qcwo2") == 1, "a swap of neighbours is one edit");
	CHECK(str_distance("ca", "abc") == 3, "no swap across an insertion (OSA)");
	CHECK(str_distance("QCOW2", "qcow2") == 0, "case is ignored");
	memset(longs, 'a', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = 0;
	CHECK(str_distance(longs, "a") == STR_DISTANCE_FAR, "too long: far");
	longs[STR_DISTANCE_MAX] = 0;
	CHECK(str_distance(longs, "") == STR_DISTANCE_MAX, "the longest measured");

	str_near_add(&n, "compat");
	str_near_add(&n, "cluster_size");
	str_near_add(&n, "cluster_bits");
	CHECK(n.best && !strcmp(n.best, "cluster_size") && n.dist == 1, "nearest: %s", n.best);
	n = (struct str_near){ .typo = "lvl" };
	str_near_add(&n, "level");
	CHECK(!n.best, "two edits in three letters is not near");
	n = (struct str_near){ .typo = "raww" };
	str_near_add(&n, "raw");
	str_near_add(&n, "vdi");
	CHECK(n.best && !strcmp(n.best, "raw"), "raww: raw");
	n = (struct str_near){ .typo = "compression" };
	str_near_add(&n, "compress");
	str_near_add(&n, "compression_type");
	CHECK(n.best && !strcmp(n.best, "compression_type"), "a name cut short: %s", n.best);
}

static void test_formats(void)
{
	const struct img_format *f = NULL;
	struct write_opts wo = { 0 };
	struct write_parsed p, *pp = &p;
	const struct write_parsed *got;
	struct err e = { 0 };
	char buf[8192];
	size_t n;

	n = format_suggest("rw", 0, buf, sizeof(buf));
	CHECK(n == strlen(buf) && strstr(buf, "did you mean 'raw'? valid: ") == buf &&
	      !strcmp(buf + n - 4, " raw"), "suggest: %s", buf);
	CHECK(format_suggest("rw", 0, buf, 8) == n && strlen(buf) == 7, "suggest truncated");
	if (format_find("qcow2")) {
		n = format_suggest("QCW2", 0, buf, sizeof(buf));
		CHECK(strstr(buf, "did you mean 'qcow2'? valid: ") == buf && strstr(buf, " qcow2,") &&
		      !strcmp(buf + n - 5, ", raw"), "suggest qcow2: %s", buf);
	}
	if (format_find("vhd"))
		CHECK(format_suggest("vpcc", 0, buf, sizeof(buf)) &&
		      strstr(buf, "did you mean 'vpc'? "), "an alias is near too: %s", buf);
	format_suggest("zzzzzzz", 1, buf, sizeof(buf));
	CHECK(!strncmp(buf, "valid: ", 7) && strstr(buf, "raw") && !strstr(buf, "vdi"),
	      "nothing near, the writers: %s", buf);
	CHECK(format_lookup("raw", 1, &f, &e) == 0 && f && !strcmp(f->name, "raw"), "lookup raw");
	CHECK(format_lookup("rwa", 0, &f, &e) == EI_EUSAGE &&
	      strstr(e.msg, "unknown format 'rwa'; did you mean 'raw'? valid: "), "lookup: %s", e.msg);
	if (format_find("vmdk") && !format_find("vmdk")->write)
		CHECK(format_lookup("vmdk", 1, &f, &e) == EI_EUSAGE &&
		      strstr(e.msg, "cannot write format 'vmdk'; valid: ") == e.msg,
		      "a format read only: %s", e.msg);
	CHECK(format_write_check("rwa", NULL, 0, &e) == EI_EUNSUP &&
	      strstr(e.msg, "this edgeimg cannot write format 'rwa'; did you mean 'raw'?"),
	      "write check, unknown: %s", e.msg);

	/* raw: a recipe's format= and writer= only */
	f = format_find("raw");
	wo.options = "format=raw,writer=0.0.1";
	CHECK(format_write_parse(f, &wo, &p, &e) == 0 && p.writer_differs &&
	      !strcmp(p.writer, "0.0.1"), "raw: a recipe from another version: %s", e.msg);
	wo.options = "format=raw,writer=" EDGEIMG_VERSION;
	CHECK(format_write_parse(f, &wo, &p, &e) == 0 && !p.writer_differs,
	      "raw: a recipe of this version");
	wo.options = "format=qcow2";
	CHECK(format_write_parse(f, &wo, &p, &e) == EI_EUSAGE &&
	      !strcmp(e.msg, "raw: format=qcow2 is not raw: the recipe is for -O qcow2"),
	      "another format: %s", e.msg);
	for (const char *const *bad = (const char *const[]){ "writer=", "writer=1.", "writer=.1",
			"writer=1..2", "writer=v1", "writer=1.2.3.4.5", "writer=1-", "writer=1 2",
			"writer=1234567890.1", "writer=1.0.0-rc1/x", NULL }; *bad; bad++) {
		wo.options = *bad;
		CHECK(format_write_parse(f, &wo, &p, &e) == EI_EUSAGE &&
		      strstr(e.msg, "is not an edgeimg version such as " EDGEIMG_VERSION),
		      "%s: %s", *bad, e.msg);
	}
	for (const char *const *ok = (const char *const[]){ "writer=1", "writer=0.1.0",
			"writer=1.2.3.4", "writer=0.2.0-rc1", "writer=1.0+git.abc-1", NULL };
	     *ok; ok++) {
		wo.options = *ok;
		CHECK(format_write_parse(f, &wo, &p, &e) == 0, "%s: %s", *ok, e.msg);
	}
	wo.options = "cluster_size=64k";
	CHECK(format_write_parse(f, &wo, &p, &e) == EI_EUSAGE &&
	      !strcmp(e.msg, "raw: unknown option 'cluster_size'; raw takes no options"),
	      "raw takes no options: %s", e.msg);
	wo.options = NULL;
	wo.compress = 1;
	CHECK(format_write_parse(f, &wo, &p, &e) == EI_EUSAGE && strstr(e.msg, "-c"),
	      "raw refuses -c: %s", e.msg);

	/* parsed once: write() gets the parse back, or parses anew */
	wo.compress = 0;
	CHECK(format_write_parse(f, &wo, &p, &e) == 0, "parse");
	wo.parsed = pp;
	CHECK(format_write_opts(f, &wo, NULL, &got, &e) == 0 && got == pp,
	      "the parse is used as it is, not made again");
	{
		struct write_parsed tmp;

		wo.options = "format=raw";
		CHECK(format_write_opts(f, &wo, &tmp, &got, &e) == 0 && got == &tmp,
		      "other options: parsed anew");
		wo.options = "x=1";
		CHECK(format_write_opts(f, &wo, &tmp, &got, &e) == EI_EUSAGE,
		      "and checked: %s", e.msg);
	}

	n = format_options_help(buf, sizeof(buf));
	CHECK(n == strlen(buf) && n < sizeof(buf), "help fits: %zu", n);
	CHECK(strstr(buf, "raw: no options\n") && strstr(buf, "writer="), "help: %s", buf);
	if (format_find("qcow2") && format_find("qcow2")->write)
		CHECK(strstr(buf, "qcow2:\n  compat: 0.10 or 1.1; default 1.1\n") &&
		      strstr(buf, "  level: zlib 1..9 (default 6)"), "qcow2's help: %s", buf);
	if (format_find("squashfs") && format_find("squashfs")->write)
		CHECK(strstr(buf, "squashfs:\n  compression: ") &&
		      strstr(buf, "  block_size: a power of two from 4096 to 1048576; default ") &&
		      strstr(buf, "gzip 1..9 (default 9)"), "squashfs's help: %s", buf);
	CHECK(format_options_help(buf, 16) == n && strlen(buf) == 15, "help truncated");
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
	test_opt_table();
	test_distance();
	test_formats();
	test_info();
	return t_done("test_core");
}
