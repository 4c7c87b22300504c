// SPDX-License-Identifier: MIT
/*
 * The copy-thread pool (copy_pool.h): helpers wait on a futex for a job
 * generation, each copies its chunk of the page list, and the caller
 * copies chunk 0 itself, then waits for the helpers.
 *
 * Invariants:
 *  - the job (pfns, npages, dst) is written before gen is bumped, and the
 *    caller does not return before done == n: a helper never sees a
 *    half-written job nor outlives the buffers;
 *  - the chunks of one job partition the list: every page is copied once.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/futex.h>

#include "tiber/common.h"
#include "copy_pool.h"

#define LD(p)	 __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define ST(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define INC(p)	 __atomic_add_fetch((p), 1, __ATOMIC_SEQ_CST)

#define COPY_MT_MIN 256

static void spin_wait_ne(int *w, int old)
{
	int64_t until = tb_now_ns() + 20 * TB_NSEC_PER_USEC;

	while (LD(w) == old && tb_now_ns() < until)
		__builtin_ia32_pause();
	while (LD(w) == old)
		tb_futex(w, FUTEX_WAIT_PRIVATE, old, NULL);
}

static void copy_range(const struct tb_copy_pool *p, const uint64_t *pfns,
		       size_t n, uint8_t *dst)
{
	const uint8_t *src;
	size_t i;

	for (i = 0; i < n; i++) {
		src = p->page ? p->page(p->ctx, pfns[i]) :
				p->src + pfns[i] * TB_PAGE_SIZE;
		if (src)
			memcpy(dst + i * TB_PAGE_SIZE, src, TB_PAGE_SIZE);
		else
			memset(dst + i * TB_PAGE_SIZE, 0, TB_PAGE_SIZE);
	}
}

static void chunk(size_t n, unsigned parts, unsigned k, size_t *first,
		  size_t *cnt)
{
	size_t per = n / parts, rem = n % parts;

	*first = k * per + TB_MIN((size_t)k, rem);
	*cnt = per + (k < rem ? 1 : 0);
}

struct worker_arg {
	struct tb_copy_pool *p;
	unsigned k;
};

static void *copy_worker(void *arg)
{
	struct worker_arg *a = arg;
	struct tb_copy_pool *p = a->p;
	unsigned k = a->k;
	int gen = 0;
	size_t first, cnt;

	free(a);
	for (;;) {
		spin_wait_ne(&p->gen, gen);
		gen = LD(&p->gen);
		if (LD(&p->stop))
			break;
		chunk(p->npages, p->n + 1, k, &first, &cnt);
		copy_range(p, p->pfns + first, cnt,
			   p->dst + first * TB_PAGE_SIZE);
		if ((unsigned)INC(&p->done) == p->n)
			tb_futex(&p->done, FUTEX_WAKE_PRIVATE, 1, NULL);
	}
	return NULL;
}

static int start(struct tb_copy_pool *p, unsigned helpers)
{
	unsigned i;

	p->n = 0;
	for (i = 0; i < helpers && i < TB_COPY_POOL_MAX_HELPERS; i++) {
		struct worker_arg *a = malloc(sizeof(*a));

		if (!a)
			return -ENOMEM;
		a->p = p;
		a->k = i + 1;
		if (pthread_create(&p->thr[i], NULL, copy_worker, a)) {
			free(a);
			return -EAGAIN;
		}
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

void tb_copy_pool_stop(struct tb_copy_pool *p)
{
	unsigned i;

	if (!p->n)
		return;
	ST(&p->stop, 1);
	INC(&p->gen);
	tb_futex(&p->gen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
	for (i = 0; i < p->n; i++)
		pthread_join(p->thr[i], NULL);
	p->n = 0;
}

static void fan_out(struct tb_copy_pool *p, const uint64_t *pfns, size_t n,
		    uint8_t *dst)
{
	size_t first, cnt;
	int d;

	p->pfns = pfns;
	p->npages = n;
	p->dst = dst;
	ST(&p->done, 0);
	INC(&p->gen);
	tb_futex(&p->gen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
	chunk(n, p->n + 1, 0, &first, &cnt);
	copy_range(p, pfns + first, cnt, dst + first * TB_PAGE_SIZE);
	while ((unsigned)(d = LD(&p->done)) < p->n) {
		int64_t until = tb_now_ns() + 20 * TB_NSEC_PER_USEC;

		while (LD(&p->done) == d && tb_now_ns() < until)
			__builtin_ia32_pause();
		if (LD(&p->done) == d)
			tb_futex(&p->done, FUTEX_WAIT_PRIVATE, d, NULL);
	}
}

void tb_copy_pool_copy(struct tb_copy_pool *p, const uint64_t *pfns, size_t n,
		       uint8_t *dst)
{
	if (n >= COPY_MT_MIN && p->n)
		fan_out(p, pfns, n, dst);
	else
		copy_range(p, pfns, n, dst);
}
