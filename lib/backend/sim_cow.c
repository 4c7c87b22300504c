// SPDX-License-Identifier: MIT
/*
 * The sim backend's synchronous write-protect: dirty tracking by
 * userfaultfd write faults that this daemon serves (dirty_mech
 * "uffd-wp-sync", sim-host-facts 1e), and on it copy-on-write
 * checkpoints (cow_arm / cow_finish, backend.h).
 *
 * The guest hands over a uffd registered for WP (not WP_ASYNC) and keeps
 * no reference.  Setup protects all of RAM.  A guest write to a
 * protected page blocks in the kernel and becomes a message to the
 * fault thread here, which (armed, page still to copy) copies the page
 * into the epoch's staging first, then un-protects it (waking the
 * writer) and marks it dirty.  A harvest takes the dirty bits and
 * re-protects those pages.
 *
 * Invariants:
 *  - the fault thread sets a page's dirty bit after un-protecting it,
 *    and a harvest takes a bit before re-protecting the page: a page is
 *    either protected or has its bit set (or a fault on it is being
 *    served).  A harvest while the guest is suspended first waits for
 *    the fault thread to finish the faults it took (busy == 0): no
 *    writer is blocked then, so every unprotected page has its bit.
 *  - cow[pfn] is (generation << 32 | slot + 1) or (generation << 32 |
 *    COW_BUSY), or 0.  An entry counts only if its generation is the
 *    armed one (armed_gen, 0 when none): cow_prepare marks the head of
 *    the next epoch's list under a new generation while the guest runs,
 *    cow_arm (suspended) marks the rest and arms the generation with one
 *    store, so the pause does not grow with the pages prepared.  Whoever
 *    moves an armed entry from slot + 1 to COW_BUSY (the fault thread or
 *    a copy thread, one compare-and-swap) copies the page, and the fault
 *    thread un-protects a page only when it has no armed entry to copy:
 *    the guest never writes a page before its copy is made.
 *  - A prepared page the guest writes before the suspend is un-protected
 *    without a copy (its generation is not armed) and marked dirty, so
 *    the paused harvest takes it again and re-protects it before the arm.
 *  - cow_finish returns only when cow_left is 0: no copy into the
 *    staging buffer is under way after it.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "sim_priv.h"

#define COW_BUSY  UINT32_MAX
#define MSG_BATCH 64

struct tb_sim_sync {
	pthread_t thr;
	bool thr_started;
	int stop_fd;
	uint64_t *dirty;      /* a bit per page: written since the harvest */
	uint64_t *cow;	      /* per page: see the invariants */
	const uint64_t *pfns; /* the armed (or prepared) epoch's pages */
	size_t n, prepared;   /* ... how many, of them prepared */
	uint8_t *dst;	      /* and its staging */
	uint32_t gen;	      /* of the last cow_prepare / cow_arm, >= 1 */
	uint32_t armed_gen;   /* 0: not armed */
	int busy, cow_left, err;
	uint64_t faults, fault_copies;
};

static int wp(struct tb_dom *d, uint64_t pfn, uint64_t n, bool protect)
{
	struct uffdio_writeprotect w = {
		.range = { .start = d->ram_gva + pfn * TB_PAGE_SIZE,
			   .len = n * TB_PAGE_SIZE },
		.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	while (ioctl(d->uffd, UFFDIO_WRITEPROTECT, &w))
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
	return 0;
}

static void copy_to_slot(struct tb_dom *d, uint64_t pfn, uint32_t slot)
{
	memcpy(d->sync->dst + (size_t)slot * TB_PAGE_SIZE,
	       d->ram + pfn * TB_PAGE_SIZE, TB_PAGE_SIZE);
}

/* The slot + 1 (or COW_BUSY) of @v if it belongs to @gen, else 0. */
static uint32_t cow_slot(uint64_t v, uint32_t gen)
{
	return gen && v >> 32 == gen ? (uint32_t)v : 0;
}

/* A new generation; at the wrap (after 2^32 epochs) no old mark may be
 * mistaken for one of it. */
static void cow_next_gen(struct tb_dom *d)
{
	struct tb_sim_sync *s = d->sync;

	if (++s->gen == 0) {
		memset(s->cow, 0, d->nr_pages * sizeof(*s->cow));
		s->gen = 1;
	}
}

/* A guest write to @pfn is waiting: copy first if armed, then let it go. */
static void serve_fault(struct tb_dom *d, uint64_t pfn)
{
	struct tb_sim_sync *s = d->sync;
	uint32_t gen = TB_LD(&s->armed_gen);
	uint64_t v = TB_LD(&s->cow[pfn]);
	uint32_t slot;
	int rc;

	while ((slot = cow_slot(v, gen)) != 0) {
		if (slot != COW_BUSY &&
		    __atomic_compare_exchange_n(
			    &s->cow[pfn], &v, (uint64_t)gen << 32 | COW_BUSY,
			    false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
			copy_to_slot(d, pfn, slot - 1);
			TB_ST(&s->cow[pfn], 0);
			__atomic_sub_fetch(&s->cow_left, 1, __ATOMIC_SEQ_CST);
			__atomic_add_fetch(&s->fault_copies, 1,
					   __ATOMIC_RELAXED);
			break;
		}
		if (slot == COW_BUSY) /* a copy thread has it: a page's worth */
			sched_yield();
		v = TB_LD(&s->cow[pfn]);
	}
	rc = wp(d, pfn, 1, false);
	if (rc)
		TB_ST(&s->err, rc);
	__atomic_or_fetch(&s->dirty[pfn / 64], 1ull << (pfn % 64),
			  __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&s->faults, 1, __ATOMIC_RELAXED);
}

static void *fault_main(void *arg)
{
	struct tb_dom *d = arg;
	struct tb_sim_sync *s = d->sync;
	struct uffd_msg m[MSG_BATCH];
	ssize_t n, i;

	for (;;) {
		struct pollfd p[2] = { { d->uffd, POLLIN, 0 },
				       { s->stop_fd, POLLIN, 0 } };

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			return NULL; /* stopped */
		if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL))
			break;
		TB_INC(&s->busy);
		n = read(d->uffd, m, sizeof(m));
		for (i = 0; n > 0 && i < n / (ssize_t)sizeof(m[0]); i++) {
			uint64_t a = m[i].arg.pagefault.address;

			if (m[i].event != UFFD_EVENT_PAGEFAULT ||
			    !(m[i].arg.pagefault.flags &
			      UFFD_PAGEFAULT_FLAG_WP) ||
			    a < d->ram_gva || a >= d->ram_gva + d->ram_size) {
				TB_ST(&s->err, -EPROTO);
				continue;
			}
			serve_fault(d, (a - d->ram_gva) / TB_PAGE_SIZE);
		}
		__atomic_sub_fetch(&s->busy, 1, __ATOMIC_SEQ_CST);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			break;
	}
	/* nobody serves the guest's writes now: every harvest fails */
	TB_ST(&s->err, -EIO);
	return NULL;
}

int tb_sim_sync_setup(struct tb_dom *d)
{
	struct tb_sim_sync *s = calloc(1, sizeof(*s));
	size_t words = (size_t)((d->nr_pages + 63) / 64);
	int rc;

	if (!s)
		return -ENOMEM;
	d->sync = s;
	s->stop_fd = eventfd(0, EFD_CLOEXEC);
	s->dirty = calloc(words, sizeof(*s->dirty));
	s->cow = calloc(d->nr_pages, sizeof(*s->cow));
	if (s->stop_fd < 0 || !s->dirty || !s->cow)
		return -ENOMEM;
	rc = -pthread_create(&s->thr, NULL, fault_main, d);
	if (rc)
		return rc;
	s->thr_started = true;
	/* from here every write is seen: all pages start clean */
	return wp(d, 0, d->nr_pages, true);
}

void tb_sim_sync_free(struct tb_dom *d)
{
	struct tb_sim_sync *s = d->sync;
	uint64_t one = 1;

	if (!s)
		return;
	if (s->thr_started) {
		if (write(s->stop_fd, &one, sizeof(one)) != sizeof(one))
			abort(); /* an eventfd write of 1 cannot fail */
		pthread_join(s->thr, NULL);
	}
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	free(s->dirty);
	free(s->cow);
	free(s);
	d->sync = NULL;
}

int tb_sim_sync_harvest(struct tb_dom *d, struct tb_bitmap *out)
{
	struct tb_sim_sync *s = d->sync;
	size_t w, words = (size_t)((d->nr_pages + 63) / 64);
	uint64_t v, run = 0, len = 0, pfn;
	int rc = 0, b;

	if (d->suspended)
		while (TB_LD(&s->busy))
			sched_yield();
	for (w = 0; w < words && !rc; w++) {
		if (!TB_LD(&s->dirty[w]))
			continue;
		v = __atomic_exchange_n(&s->dirty[w], 0, __ATOMIC_SEQ_CST);
		if (out)
			out->words[w] |= v;
		while (v && !rc) {
			b = __builtin_ctzll(v);
			v &= v - 1;
			pfn = (uint64_t)w * 64 + (unsigned)b;
			if (len && run + len == pfn) {
				len++;
				continue;
			}
			if (len)
				rc = wp(d, run, len, true);
			run = pfn;
			len = 1;
		}
	}
	if (!rc && len)
		rc = wp(d, run, len, true);
	if (!rc)
		rc = TB_LD(&s->err);
	if (rc)
		tb_backend_set_reason("sim: uffd-wp sync: %s", strerror(-rc));
	return rc;
}

static bool cow_claim(void *ctx, size_t i, uint64_t pfn)
{
	struct tb_sim_sync *s = ((struct tb_dom *)ctx)->sync;
	uint64_t gen = s->armed_gen, v = gen << 32 | ((uint32_t)i + 1);

	return __atomic_compare_exchange_n(&s->cow[pfn], &v,
					   gen << 32 | COW_BUSY, false,
					   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

static void cow_done(void *ctx, size_t i, uint64_t pfn)
{
	struct tb_sim_sync *s = ((struct tb_dom *)ctx)->sync;

	(void)i;
	TB_ST(&s->cow[pfn], 0);
	__atomic_sub_fetch(&s->cow_left, 1, __ATOMIC_SEQ_CST);
}

void tb_sim_sync_stats(struct tb_dom *d, struct tb_dom_stats *st)
{
	if (!d->sync)
		return;
	st->wp_faults = __atomic_load_n(&d->sync->faults, __ATOMIC_RELAXED);
	st->cow_fault_copies =
		__atomic_load_n(&d->sync->fault_copies, __ATOMIC_RELAXED);
}

/* Mark @pfns[@from..@n) (ascending, < nr_pages, none marked in @gen
 * yet) with their slots in @gen.  -EINVAL at the first bad one: the marks
 * made are harmless, @gen is never armed. */
static int cow_mark(struct tb_dom *d, const uint64_t *pfns, size_t from,
		    size_t n, uint32_t gen)
{
	struct tb_sim_sync *s = d->sync;
	size_t i;

	for (i = from; i < n; i++) {
		if (pfns[i] >= d->nr_pages ||
		    (i > from && pfns[i] <= pfns[i - 1]) ||
		    cow_slot(s->cow[pfns[i]], gen)) {
			tb_backend_set_reason(
				"sim: cow: bad pfn list at %zu (pfn %" PRIu64
				")",
				i, pfns[i]);
			return -EINVAL;
		}
		/* release, not seq_cst: an x86 xchg per page cost ~0.5 ms
		 * of the pause at 100k pages; the seq_cst store of
		 * armed_gen orders them for the fault thread */
		__atomic_store_n(&s->cow[pfns[i]],
				 (uint64_t)gen << 32 | ((uint32_t)i + 1),
				 __ATOMIC_RELEASE);
	}
	return 0;
}

static int cow_check(struct tb_dom *d, const char *op, size_t n)
{
	struct tb_sim_sync *s = d->sync;

	if (!s) {
		tb_backend_set_reason(
			"sim: copy-on-write needs uffd-wp sync tracking (tiber-simguest --dirty-mech uffd-sync)");
		return -ENOTSUP;
	}
	if (TB_LD(&s->armed_gen) || n >= COW_BUSY) {
		tb_backend_set_reason("sim: %s: %s", op,
				      n >= COW_BUSY ? "too many pages" :
						      "already armed");
		return -EINVAL;
	}
	return 0;
}

int tb_sim_cow_prepare(struct tb_dom *d, const uint64_t *pfns, size_t n,
		       void *dst)
{
	struct tb_sim_sync *s = d->sync;
	int rc = cow_check(d, "cow_prepare", n);

	if (rc)
		return rc;
	s->prepared = 0;
	cow_next_gen(d);
	rc = cow_mark(d, pfns, 0, n, s->gen);
	if (rc)
		return rc;
	s->pfns = pfns;
	s->dst = dst;
	s->prepared = n;
	return 0;
}

int tb_sim_cow_arm(struct tb_dom *d, const uint64_t *pfns, size_t n, void *dst)
{
	struct tb_sim_sync *s = d->sync;
	size_t head = 0;
	int rc = cow_check(d, "cow_arm", n);

	if (rc)
		return rc;
	if (!d->suspended) {
		tb_backend_set_reason("sim: cow_arm: guest not suspended");
		return -EINVAL;
	}
	/* the prepared head of this list keeps its marks; else start over */
	if (s->prepared && pfns == s->pfns && dst == s->dst && n >= s->prepared)
		head = s->prepared;
	else
		cow_next_gen(d);
	s->prepared = 0;
	rc = cow_mark(d, pfns, head, n, s->gen);
	if (rc)
		return rc;
	/* the job before the arm: a fault still queued from before a
	 * pause-mode stop may be served while we arm */
	s->pfns = pfns;
	s->n = n;
	s->dst = dst;
	TB_ST(&s->cow_left, (int)n);
	TB_ST(&s->armed_gen, s->gen);
	/* woken at the suspend for a copy that now comes after the resume:
	 * spinning, they would compete with it */
	tb_copy_pool_rest(&d->pool);
	return 0;
}

int tb_sim_cow_finish(struct tb_dom *d)
{
	struct tb_sim_sync *s = d->sync;
	const struct tb_copy_claim cl = { cow_claim, cow_done, d };

	if (!s || !TB_LD(&s->armed_gen)) {
		tb_backend_set_reason("sim: cow_finish: not armed");
		return -EINVAL;
	}
	tb_copy_pool_copy_claimed(&d->pool, s->pfns, s->n, s->dst, &cl);
	while (TB_LD(&s->cow_left))
		sched_yield(); /* the fault thread's copies under way */
	TB_ST(&s->armed_gen, 0);
	stat_inc(d, &d->st.pages_copied, s->n);
	return 0;
}
