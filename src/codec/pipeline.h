/* SPDX-License-Identifier: MIT */
/*
 * The compression pipeline: the caller fills units in order, worker
 * threads transform them (compress), and the caller's thread emits them
 * strictly in submission order, so output is the same for any thread count.
 * Memory is the units alone: their number is bounded by a byte cap.
 */
#ifndef EDGEIMG_PIPELINE_H
#define EDGEIMG_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct pl_unit {
	uint64_t seq;           /* submission order, from 0 */
	uint64_t off;           /* the producer's: e.g. the virtual offset */
	uint8_t *in;            /* in_cap bytes for the producer to fill */
	size_t in_len;
	uint8_t *out;           /* out_cap bytes for work() to fill */
	size_t out_len;
	unsigned flags;         /* the producer's and work()'s to share */
};

struct pl_ops {
	/*
	 * Worker thread: transform @u (typically u->in -> u->out).  @ctx is
	 * this thread's state, NULL at first, freed with ctx_free().  Must
	 * depend on @u only, never on timing, for deterministic output.
	 */
	int (*work)(void *arg, void **ctx, struct pl_unit *u, struct err *e);
	/* Caller's thread, in seq order: consume @u (write it out). */
	int (*emit)(void *arg, struct pl_unit *u, struct err *e);
	void (*ctx_free)(void *arg, void *ctx);
};

struct pipeline;

/*
 * pipeline_new() - @threads workers (1: work runs inline, no threads),
 * units of @in_cap input and @out_cap output bytes: as many as fit in
 * @mem_cap, at most four per thread; fewer units than threads reduce the
 * threads.  Returns -ENOMEM, or EI_ELIMIT when one unit exceeds the cap.
 * Use: u = pipeline_get(), fill u->in, pipeline_submit(u), repeat; one
 * unit at a time is between get and submit.
 */
int pipeline_new(const struct pl_ops *ops, void *arg, unsigned threads,
		 size_t in_cap, size_t out_cap, uint64_t mem_cap,
		 struct pipeline **out, struct err *e);

/*
 * pipeline_get() - a free unit to fill; emits finished units while it
 * waits.  Returns NULL with @e set when work or emit failed.
 */
struct pl_unit *pipeline_get(struct pipeline *p, struct err *e);

/* pipeline_submit() - hand a filled unit (from pipeline_get()) to the workers. */
int pipeline_submit(struct pipeline *p, struct pl_unit *u, struct err *e);

/* pipeline_finish() - wait for all submitted units and emit them. */
int pipeline_finish(struct pipeline *p, struct err *e);

/* pipeline_free() - stop the workers and free everything (any state). */
void pipeline_free(struct pipeline *p);

#endif
