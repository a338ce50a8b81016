// SPDX-License-Identifier: MIT
/*
 * Unit tests of the pipeline: units come out in submission order, the
 * output is identical for any thread count and memory cap, and errors
 * from work() or emit() stop it cleanly.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/kconfig.h"
#include "codec/pipeline.h"
#include "t.h"

#define UNIT 4096
#define UNITS 3000

struct sink {
	uint64_t next_seq;
	int order_ok;
	uint64_t hash;
	uint64_t fail_work_at, fail_emit_at;
	uint64_t emitted;
};

static int work(void *arg, void **ctx, struct pl_unit *u, struct err *e)
{
	struct sink *s = arg;
	uint64_t h = 1469598103934665603ULL;
	struct timespec ts = { 0, (long)((u->seq * 7919) % 50) * 1000 };

	if (!*ctx)
		*ctx = malloc(16);      /* per-thread state, freed by ctx_free */
	if (u->seq == s->fail_work_at)
		return err_set(e, EI_ECODEC, "work failed at %llu",
			       (unsigned long long)u->seq);
	nanosleep(&ts, NULL);   /* uneven work: finishes out of order */
	for (size_t i = 0; i < u->in_len; i++) {
		h = (h ^ u->in[i]) * 1099511628211ULL;
		u->out[i] = (uint8_t)h;
	}
	u->out_len = u->in_len;
	return 0;
}

static int emit(void *arg, struct pl_unit *u, struct err *e)
{
	struct sink *s = arg;

	if (u->seq != s->next_seq)
		s->order_ok = 0;
	s->next_seq++;
	if (u->seq == s->fail_emit_at)
		return err_set(e, -EIO, "emit failed at %llu",
			       (unsigned long long)u->seq);
	for (size_t i = 0; i < u->out_len; i++)
		s->hash = (s->hash ^ u->out[i]) * 1099511628211ULL + u->off;
	s->emitted++;
	return 0;
}

static void ctx_free(void *arg, void *ctx)
{
	free(ctx);
}

static const struct pl_ops ops = { .work = work, .emit = emit, .ctx_free = ctx_free };

/* Run UNITS units through a pipeline; returns the finish result. */
static int run(unsigned threads, uint64_t cap, struct sink *s)
{
	struct pipeline *p;
	struct err e = { 0 };
	int r;

	s->next_seq = 0;
	s->order_ok = 1;
	s->hash = 0;
	s->emitted = 0;
	r = pipeline_new(&ops, s, threads, UNIT, UNIT, cap, &p, &e);
	if (r < 0)
		return r;
	for (uint64_t i = 0; i < UNITS; i++) {
		struct pl_unit *u = pipeline_get(p, &e);

		if (!u) {
			r = e.code;
			break;
		}
		u->off = i * UNIT;
		u->in_len = UNIT - (size_t)(i % 97);
		for (size_t k = 0; k < u->in_len; k++)
			u->in[k] = (uint8_t)(i * 31 + k * 7);
		r = pipeline_submit(p, u, &e);
		if (r < 0)
			break;
	}
	if (r >= 0)
		r = pipeline_finish(p, &e);
	pipeline_free(p);
	return r;
}

int main(void)
{
	struct sink s = { .fail_work_at = UINT64_MAX, .fail_emit_at = UINT64_MAX };
	struct pipeline *p;
	struct err e = { 0 };
	uint64_t want;
	unsigned threads[] = { 2, 3, 8 };

	CHECK(run(1, 1 << 20, &s) == 0 && s.order_ok && s.emitted == UNITS,
	      "inline run");
	want = s.hash;
	for (unsigned i = 0; i < sizeof(threads) / sizeof(threads[0]); i++) {
		CHECK(run(threads[i], 1 << 20, &s) == 0, "%u threads", threads[i]);
		CHECK(s.order_ok && s.emitted == UNITS, "%u threads: in order", threads[i]);
		CHECK(s.hash == want, "%u threads: same output", threads[i]);
	}
	/* A cap of three units limits the ring; still correct. */
	CHECK(run(8, 3 * 2 * UNIT, &s) == 0 && s.hash == want && s.order_ok,
	      "three units of memory");
	CHECK(pipeline_new(&ops, &s, 2, UNIT, UNIT, UNIT, &p, &e) == EI_ELIMIT,
	      "a unit larger than the cap is refused");
	s.fail_work_at = 1234;
	CHECK(run(4, 1 << 20, &s) == EI_ECODEC && s.emitted == 1234,
	      "work error stops at its unit (emitted %llu)", (unsigned long long)s.emitted);
	s.fail_work_at = UINT64_MAX;
	s.fail_emit_at = 77;
	CHECK(run(4, 1 << 20, &s) == -EIO && s.emitted == 77, "emit error stops");
	s.fail_emit_at = 5;
	CHECK(run(1, 1 << 20, &s) == -EIO && s.emitted == 5, "emit error inline");
	return t_done("test_pipeline");
}
