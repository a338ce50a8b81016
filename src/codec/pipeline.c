// SPDX-License-Identifier: MIT
/* Ordered parallel compression: a ring of units, workers, in-order emit. */
#include <stdlib.h>
#include <string.h>

#include "core/kconfig.h"
#include "codec/pipeline.h"

#if IS_ENABLED(CONFIG_THREADS)
#include <pthread.h>
#endif

enum pl_state { PL_FREE, PL_FILLING, PL_QUEUED, PL_WORKING, PL_DONE };

struct pl_slot {
	struct pl_unit u;
	enum pl_state state;
	int result;
	struct err err;
};

struct pipeline {
	const struct pl_ops *ops;
	void *arg;
	unsigned threads, nslots;
	struct pl_slot *slot;
	uint64_t next_seq;      /* seq of the next unit handed out */
	uint64_t emit_seq;      /* seq of the next unit to emit */
	uint64_t work_seq;      /* seq of the next unit a worker takes */
	int failed;             /* a work() or emit() failed: stop */
	struct err err;
	void *inline_ctx;       /* threads == 1 */
#if IS_ENABLED(CONFIG_THREADS)
	pthread_t *tid;
	unsigned started;
	int stop;
	pthread_mutex_t lock;
	pthread_cond_t work_cv;  /* a unit was queued, or stop */
	pthread_cond_t done_cv;  /* a unit is done */
#endif
};

static struct pl_slot *pl_slot(struct pipeline *p, uint64_t seq)
{
	return &p->slot[seq % p->nslots];
}

#if IS_ENABLED(CONFIG_THREADS)
static void *pl_worker(void *arg)
{
	struct pipeline *p = arg;
	void *ctx = NULL;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct pl_slot *s;

		while (!p->stop && (p->work_seq == p->next_seq ||
				    pl_slot(p, p->work_seq)->state != PL_QUEUED))
			pthread_cond_wait(&p->work_cv, &p->lock);
		if (p->stop)
			break;
		s = pl_slot(p, p->work_seq++);
		s->state = PL_WORKING;
		pthread_mutex_unlock(&p->lock);
		s->result = p->ops->work(p->arg, &ctx, &s->u, &s->err);
		pthread_mutex_lock(&p->lock);
		s->state = PL_DONE;
		pthread_cond_broadcast(&p->done_cv);
	}
	pthread_mutex_unlock(&p->lock);
	if (ctx && p->ops->ctx_free)
		p->ops->ctx_free(p->arg, ctx);
	return NULL;
}
#endif

int pipeline_new(const struct pl_ops *ops, void *arg, unsigned threads,
		 size_t in_cap, size_t out_cap, uint64_t mem_cap,
		 struct pipeline **out, struct err *e)
{
	struct pipeline *p;
	uint64_t per = (uint64_t)in_cap + out_cap, n;

	if (!IS_ENABLED(CONFIG_THREADS) || threads < 1)
		threads = 1;
	if (per > mem_cap)
		return err_set(e, EI_ELIMIT,
			       "pipeline: a unit of %llu bytes exceeds the memory cap of %llu",
			       (unsigned long long)per, (unsigned long long)mem_cap);
	n = mem_cap / per;
	if (n > 4ULL * threads)
		n = 4ULL * threads;
	if (threads > n)
		threads = (unsigned)n;
	p = calloc(1, sizeof(*p));
	if (!p)
		return err_set(e, -ENOMEM, "pipeline: out of memory");
	p->ops = ops;
	p->arg = arg;
	p->threads = threads;
	p->nslots = (unsigned)n;
	p->slot = calloc(n, sizeof(*p->slot));
	if (!p->slot)
		goto nomem;
	for (unsigned i = 0; i < p->nslots; i++) {
		p->slot[i].u.in = malloc(in_cap ? in_cap : 1);
		p->slot[i].u.out = malloc(out_cap ? out_cap : 1);
		if (!p->slot[i].u.in || !p->slot[i].u.out)
			goto nomem;
	}
#if IS_ENABLED(CONFIG_THREADS)
	if (threads > 1) {
		pthread_mutex_init(&p->lock, NULL);
		pthread_cond_init(&p->work_cv, NULL);
		pthread_cond_init(&p->done_cv, NULL);
		p->tid = calloc(threads, sizeof(*p->tid));
		if (!p->tid)
			goto nomem;
		for (; p->started < threads; p->started++) {
			if (pthread_create(&p->tid[p->started], NULL, pl_worker, p)) {
				pipeline_free(p);
				return err_set(e, -EAGAIN, "pipeline: cannot start a thread");
			}
		}
	}
#endif
	*out = p;
	return 0;
nomem:
	pipeline_free(p);
	return err_set(e, -ENOMEM, "pipeline: out of memory");
}

static void pl_lock(struct pipeline *p)
{
#if IS_ENABLED(CONFIG_THREADS)
	if (p->threads > 1)
		pthread_mutex_lock(&p->lock);
#endif
}

static void pl_unlock(struct pipeline *p)
{
#if IS_ENABLED(CONFIG_THREADS)
	if (p->threads > 1)
		pthread_mutex_unlock(&p->lock);
#endif
}

/* Emit the oldest unit, waiting for it to be done.  Called unlocked. */
static int pl_emit_one(struct pipeline *p, struct err *e)
{
	struct pl_slot *s = pl_slot(p, p->emit_seq);
	int r;

	pl_lock(p);
#if IS_ENABLED(CONFIG_THREADS)
	while (p->threads > 1 && s->state != PL_DONE)
		pthread_cond_wait(&p->done_cv, &p->lock);
#endif
	pl_unlock(p);
	r = s->result;
	if (r < 0) {
		*e = s->err;
	} else {
		r = p->ops->emit(p->arg, &s->u, e);
	}
	if (r < 0) {
		p->failed = 1;
		p->err = *e;
		return r;
	}
	pl_lock(p);
	s->state = PL_FREE;
	p->emit_seq++;
	pl_unlock(p);
	return 0;
}

struct pl_unit *pipeline_get(struct pipeline *p, struct err *e)
{
	struct pl_slot *s;

	if (p->failed) {
		*e = p->err;
		return NULL;
	}
	if (p->next_seq - p->emit_seq == p->nslots &&
	    pl_emit_one(p, e) < 0)
		return NULL;
	s = pl_slot(p, p->next_seq);
	s->state = PL_FILLING;
	s->u.seq = p->next_seq;
	s->u.in_len = s->u.out_len = 0;
	s->u.flags = 0;
	s->u.off = 0;
	s->result = 0;
	memset(&s->err, 0, sizeof(s->err));
	return &s->u;
}

int pipeline_submit(struct pipeline *p, struct pl_unit *u, struct err *e)
{
	struct pl_slot *s = pl_slot(p, u->seq);

	if (p->threads == 1) {
		s->result = p->ops->work(p->arg, &p->inline_ctx, u, &s->err);
		s->state = PL_DONE;
		p->next_seq++;
		return pl_emit_one(p, e);
	}
#if IS_ENABLED(CONFIG_THREADS)
	pthread_mutex_lock(&p->lock);
	s->state = PL_QUEUED;
	p->next_seq++;
	pthread_cond_broadcast(&p->work_cv);
	pthread_mutex_unlock(&p->lock);
#endif
	return 0;
}

int pipeline_finish(struct pipeline *p, struct err *e)
{
	if (p->failed) {
		*e = p->err;
		return e->code ? e->code : -EIO;
	}
	while (p->emit_seq < p->next_seq) {
		int r = pl_emit_one(p, e);

		if (r < 0)
			return r;
	}
	return 0;
}

void pipeline_free(struct pipeline *p)
{
	if (!p)
		return;
#if IS_ENABLED(CONFIG_THREADS)
	if (p->tid) {
		pthread_mutex_lock(&p->lock);
		p->stop = 1;
		pthread_cond_broadcast(&p->work_cv);
		pthread_mutex_unlock(&p->lock);
		for (unsigned i = 0; i < p->started; i++)
			pthread_join(p->tid[i], NULL);
		free(p->tid);
		pthread_mutex_destroy(&p->lock);
		pthread_cond_destroy(&p->work_cv);
		pthread_cond_destroy(&p->done_cv);
	}
#endif
	if (p->inline_ctx && p->ops->ctx_free)
		p->ops->ctx_free(p->arg, p->inline_ctx);
	for (unsigned i = 0; p->slot && i < p->nslots; i++) {
		free(p->slot[i].u.in);
		free(p->slot[i].u.out);
	}
	free(p->slot);
	free(p);
}
