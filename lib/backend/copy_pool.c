// SPDX-License-Identifier: MIT
/*
 * The copy-thread pool (copy_pool.h): helpers wait on a futex for a job
 * generation (woken early by a prewake, which bumps the generation with
 * no job and makes them spin a while); the caller and the helpers that
 * are awake claim chunks of
 * TB_COPY_CHUNK pages one at a time until none is left, and the caller
 * returns once every chunk is copied.
 *
 * Invariants:
 *  - the job (pfns, npages, dst, next, left) is written before gen is
 *    bumped; a helper reads it only after it claimed a chunk of that
 *    job (a CAS on next, whose high half is the job's generation), and
 *    the caller does not return before left == 0, so the job cannot
 *    change under a claimed chunk and a helper never outlives the
 *    buffers of the job it works on;
 *  - every chunk is claimed once: every page is copied once.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>
#include <linux/futex.h>

#include "tiber/common.h"
#include "copy_pool.h"

#define COPY_MT_MIN 256

/* Wait for *@w to leave @old: spin 20 us, or until @warm_until. */
static void spin_wait_ne(int *w, int old, const int64_t *warm_until)
{
	int64_t until = tb_now_ns() + 20 * TB_NSEC_PER_USEC;

	if (warm_until && TB_LD(warm_until) > until)
		until = TB_LD(warm_until);

	while (TB_LD(w) == old && tb_now_ns() < until)
		__builtin_ia32_pause();
	while (TB_LD(w) == old)
		tb_futex(w, FUTEX_WAIT_PRIVATE, old, NULL);
}

/* Copy list entries [@first, @first + @n) of the job. */
static void copy_range(const struct tb_copy_pool *p, const uint64_t *pfns,
		       size_t first, size_t n, uint8_t *dst,
		       const struct tb_copy_claim *cl)
{
	const uint8_t *src;
	size_t i;

	for (i = first; i < first + n; i++) {
		if (cl && !cl->claim(cl->ctx, i, pfns[i]))
			continue;
		src = p->page ? p->page(p->ctx, pfns[i]) :
				p->src + pfns[i] * TB_PAGE_SIZE;
		if (src)
			memcpy(dst + i * TB_PAGE_SIZE, src, TB_PAGE_SIZE);
		else
			memset(dst + i * TB_PAGE_SIZE, 0, TB_PAGE_SIZE);
		if (cl)
			cl->done(cl->ctx, i, pfns[i]);
	}
}

/* Claim and copy chunks of job @gen until none is left. */
static void copy_chunks(struct tb_copy_pool *p, uint32_t gen)
{
	uint64_t v = TB_LD(&p->next), first;
	uint32_t c;

	for (;;) {
		c = (uint32_t)v;
		if ((uint32_t)(v >> 32) != gen ||
		    (uint64_t)c * TB_COPY_CHUNK >= TB_LD(&p->npages))
			return;
		if (!__atomic_compare_exchange_n(&p->next, &v, v + 1, false,
						 __ATOMIC_SEQ_CST,
						 __ATOMIC_SEQ_CST))
			continue; /* v is the value seen: try again */
		first = (uint64_t)c * TB_COPY_CHUNK;
		copy_range(p, p->pfns, first,
			   TB_MIN((size_t)TB_COPY_CHUNK, p->npages - first),
			   p->dst, p->cl);
		if (__atomic_sub_fetch(&p->left, 1, __ATOMIC_SEQ_CST) == 0)
			tb_futex(&p->left, FUTEX_WAKE_PRIVATE, 1, NULL);
		v = TB_LD(&p->next);
	}
}

static void *copy_worker(void *arg)
{
	struct tb_copy_pool *p = arg;
	int gen = 0;

	for (;;) {
		spin_wait_ne(&p->gen, gen, &p->warm_until);
		gen = TB_LD(&p->gen);
		if (TB_LD(&p->stop))
			break;
		copy_chunks(p, (uint32_t)gen);
	}
	return NULL;
}

static int start(struct tb_copy_pool *p, unsigned helpers)
{
	unsigned i;

	p->n = 0;
	p->spin_ok = sysconf(_SC_NPROCESSORS_ONLN) > 1;
	for (i = 0; i < helpers && i < TB_COPY_POOL_MAX_HELPERS; i++) {
		if (pthread_create(&p->thr[i], NULL, copy_worker, p))
			return -EAGAIN;
		p->n++;
	}
	return 0;
}

int tb_copy_pool_start(struct tb_copy_pool *p, unsigned helpers,
		       const uint8_t *src)
{
	p->src = src;
	p->page = NULL;
	return start(p, helpers);
}

int tb_copy_pool_start_paged(struct tb_copy_pool *p, unsigned helpers,
			     tb_copy_page_fn page, void *ctx)
{
	p->src = NULL;
	p->page = page;
	p->ctx = ctx;
	return start(p, helpers);
}

void tb_copy_pool_prewake(struct tb_copy_pool *p)
{
	if (!p->n || !p->spin_ok)
		return;
	TB_ST(&p->warm_until, tb_now_ns() + TB_COPY_WARM_NS);
	/* a generation without a job: woken helpers find nothing to claim
	 * (next still carries the last job's) and spin for the next one */
	TB_INC(&p->gen);
	tb_futex(&p->gen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
}

void tb_copy_pool_rest(struct tb_copy_pool *p)
{
	TB_ST(&p->warm_until, 0);
}

void tb_copy_pool_stop(struct tb_copy_pool *p)
{
	unsigned i;

	if (!p->n)
		return;
	TB_ST(&p->stop, 1);
	TB_INC(&p->gen);
	tb_futex(&p->gen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
	for (i = 0; i < p->n; i++)
		pthread_join(p->thr[i], NULL);
	p->n = 0;
}

static void fan_out(struct tb_copy_pool *p, const uint64_t *pfns, size_t n,
		    uint8_t *dst, const struct tb_copy_claim *cl)
{
	uint32_t gen = (uint32_t)TB_LD(&p->gen) + 1;
	int d;

	p->pfns = pfns;
	TB_ST(&p->npages, n);
	p->dst = dst;
	p->cl = cl;
	TB_ST(&p->left, (int)((n + TB_COPY_CHUNK - 1) / TB_COPY_CHUNK));
	TB_ST(&p->next, (uint64_t)gen << 32);
	TB_ST(&p->gen, (int)gen);
	tb_futex(&p->gen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
	copy_chunks(p, gen);
	/* the chunks helpers claimed: being copied */
	while ((d = TB_LD(&p->left)) > 0) {
		int64_t until = tb_now_ns() + 20 * TB_NSEC_PER_USEC;

		while (TB_LD(&p->left) == d && tb_now_ns() < until)
			__builtin_ia32_pause();
		if (TB_LD(&p->left) == d)
			tb_futex(&p->left, FUTEX_WAIT_PRIVATE, d, NULL);
	}
}

void tb_copy_pool_copy_claimed(struct tb_copy_pool *p, const uint64_t *pfns,
			       size_t n, uint8_t *dst,
			       const struct tb_copy_claim *cl)
{
	TB_ST(&p->warm_until, 0); /* after this job, helpers rest again */
	if (n >= COPY_MT_MIN && p->n)
		fan_out(p, pfns, n, dst, cl);
	else
		copy_range(p, pfns, 0, n, dst, cl);
}

void tb_copy_pool_copy(struct tb_copy_pool *p, const uint64_t *pfns, size_t n,
		       uint8_t *dst)
{
	tb_copy_pool_copy_claimed(p, pfns, n, dst, NULL);
}
