/* SPDX-License-Identifier: MIT */
/*
 * A pool of copy threads: copy a list of pages out of the guest's memory
 * into a destination buffer, shared by the helpers and the calling
 * thread in chunks of TB_COPY_CHUNK pages, each taking the next chunk
 * when done with one (a helper that wakes late takes fewer, or none,
 * and the copy never waits for it).  Hypervisor-agnostic: the source is
 * one flat mapping (page @pfn at @src + pfn * TB_PAGE_SIZE: the simulated
 * backend) or a function that finds each page (the Xen backend's chunked
 * foreign mapping).
 *
 * One caller at a time (the epoch thread); a pool that is all zeroes
 * (no helpers) is valid and copies on the calling thread alone.
 */
#ifndef TIBER_COPY_POOL_H
#define TIBER_COPY_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tiber/common.h"

#define TB_COPY_POOL_MAX_HELPERS 8
#define TB_COPY_CHUNK		 64 /* pages taken at a time */

/*
 * Page @pfn's address, or NULL for a page that reads as zeros.  Called
 * from several threads at once: it must only read.
 */
typedef const uint8_t *(*tb_copy_page_fn)(void *ctx, uint64_t pfn);

/*
 * Copy-on-write jobs: @claim says whether list entry @i (page @pfn) is
 * still to be copied by this thread (false: someone else copies it, or
 * did); @done is called once it is.  From several threads at once.
 */
struct tb_copy_claim {
	bool (*claim)(void *ctx, size_t i, uint64_t pfn);
	void (*done)(void *ctx, size_t i, uint64_t pfn);
	void *ctx;
};

struct tb_copy_pool {
	unsigned n; /* helper threads (the caller is one more) */
	pthread_t thr[TB_COPY_POOL_MAX_HELPERS];
	int gen;  /* futex: bumped per job */
	int left; /* futex: chunks of the job not yet copied */
	/* the job's generation (high 32 bits) and its next chunk: a claim
	 * is a compare-and-swap, so one for an older job fails */
	uint64_t next;
	int stop;
	int64_t warm_until; /* helpers spin for a job until then (ns) */
	bool spin_ok;	    /* more than one CPU: a spinning helper does
			       not take the CPU the caller needs */
	const uint64_t *pfns;
	size_t npages;
	uint8_t *dst;
	const uint8_t *src;
	tb_copy_page_fn page; /* if set, instead of src */
	void *ctx;
	const struct tb_copy_claim *cl; /* the job's, or NULL */
};

/*
 * Start up to @helpers threads (at most TB_COPY_POOL_MAX_HELPERS) that
 * copy out of @src.  0, or -ENOMEM/-EAGAIN with the threads started so
 * far still running: tb_copy_pool_stop() them.
 */
int tb_copy_pool_start(struct tb_copy_pool *p, unsigned helpers,
		       const uint8_t *src);
/* The same, for a source that @page finds page by page. */
int tb_copy_pool_start_paged(struct tb_copy_pool *p, unsigned helpers,
			     tb_copy_page_fn page, void *ctx);
/*
 * A copy is coming (the guest just suspended; the harvest runs first):
 * wake the helpers now and let them spin for the job up to
 * TB_COPY_WARM_NS, so the copy does not wait for a cross-CPU wakeup.
 * A no-op on a host with one CPU (a dom0 with one vCPU), where a spinning
 * helper would only delay the harvest.
 */
#define TB_COPY_WARM_NS (2 * TB_NSEC_PER_MSEC)
void tb_copy_pool_prewake(struct tb_copy_pool *p);
/* No copy before the guest runs again after all (copy-on-write): the
 * helpers stop spinning (they would take a CPU from the resume). */
void tb_copy_pool_rest(struct tb_copy_pool *p);
/* Stop and join the helpers; a no-op on a pool without any. */
void tb_copy_pool_stop(struct tb_copy_pool *p);
/*
 * Copy the @n pages @pfns (checked by the caller: in range) into @dst,
 * page i at @dst + i * TB_PAGE_SIZE; returns once all are copied.  Small
 * lists are copied by the calling thread alone.
 */
void tb_copy_pool_copy(struct tb_copy_pool *p, const uint64_t *pfns, size_t n,
		       uint8_t *dst);
/* The same, copying only the pages @cl claims. */
void tb_copy_pool_copy_claimed(struct tb_copy_pool *p, const uint64_t *pfns,
			       size_t n, uint8_t *dst,
			       const struct tb_copy_claim *cl);

#endif
