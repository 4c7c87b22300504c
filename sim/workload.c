// SPDX-License-Identifier: MIT
/*
 * tiber-simguest's workloads: one thread per vCPU, each running one loop
 * (vcpu_kind): the synthetic page writer (uniform, hot set or sequential,
 * rate-limited or flat out), the KV service (sim/kv.c), the disk writer,
 * or idle.  A loop that ends (quiesce, a failed disk write) idles.
 *
 * Invariants:
 *   - workload threads only stop at safepoints, between transactions, so
 *     a suspended guest's RAM is one consistent state (tb_sim_verify);
 *   - a write is marked in the cooperative bitmap after it is made (a
 *     harvest racing with it reports it now or next time, never loses it);
 *   - a rate-limited loop waits on stop_req, so a freeze wakes it at
 *     once instead of after its period.
 */
#include <errno.h>
#include <stdlib.h>

#include "guest_priv.h"

void tb_guest_mark(uint64_t pfn, void *arg)
{
	struct tb_guest *g = arg;
	uint64_t *w = &g->bitmap[pfn >> 6];
	uint64_t bit = 1ull << (pfn & 63);

	/* test-then-set: hot pages cost nothing (sim-host-facts 1d) */
	if (!(__atomic_load_n(w, __ATOMIC_RELAXED) & bit))
		__atomic_fetch_or(w, bit, __ATOMIC_RELEASE);
}

static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

struct vcpu_arg {
	struct tb_guest *g;
	unsigned t;
};

static void rate_wait(struct tb_guest *g, int64_t t_next)
{
	int64_t d = t_next - tb_now_ns();
	struct timespec ts;

	if (d <= 0)
		return;
	if (d > 10 * TB_NSEC_PER_MSEC)
		d = 10 * TB_NSEC_PER_MSEC;
	ts.tv_sec = d / TB_NSEC_PER_SEC;
	ts.tv_nsec = d % TB_NSEC_PER_SEC;
	/* idle until the next write, or until a freeze wakes us */
	tb_futex(&g->stop_req, FUTEX_WAIT_PRIVATE, 0, &ts);
}

/* Rate limit of a writer with @period ns between writes (0: none):
 * true when the next write may go now; false after waiting (a freeze
 * wakes it), so the caller checks its safepoint again. */
static bool paced(struct tb_guest *g, int64_t period, int64_t *t_next)
{
	if (!period)
		return true;
	if (tb_now_ns() < *t_next) {
		rate_wait(g, *t_next);
		return false;
	}
	*t_next += period;
	if (*t_next < tb_now_ns() - TB_NSEC_PER_SEC)
		*t_next = tb_now_ns();
	return true;
}

static void synthetic_loop(struct tb_guest *g, unsigned t, unsigned lanes)
{
	struct tb_sim_ram_hdr *h = (struct tb_sim_ram_hdr *)g->ram;
	struct tb_sim_vcpu *v = &g->vcpu[t];
	uint64_t wss = g->cfg.wss ? g->cfg.wss / TB_PAGE_SIZE : h->nr_data;
	uint64_t n, j, rate;
	int64_t period = 0, t_next;

	if (wss > h->nr_data)
		wss = h->nr_data;
	n = wss > t ? (wss - t + lanes - 1) / lanes : 0;
	if (!n)
		return;
	rate = g->cfg.dirty_rate;
	if (rate)
		period = (int64_t)(TB_NSEC_PER_SEC * lanes / rate);
	t_next = tb_now_ns();
	while (!tb_guest_exiting(g) && !TB_LD(&g->quiesced)) {
		tb_guest_safepoint(g, t);
		if (!paced(g, period, &t_next))
			continue;
		switch (g->cfg.pattern) {
		case TB_GUEST_HOTSET:
			if (rng_next(&v->rng) % 10)
				j = rng_next(&v->rng) % TB_MAX(n / 10, 1);
			else
				j = rng_next(&v->rng) % n;
			break;
		case TB_GUEST_SEQUENTIAL:
			j = v->pos++ % n;
			break;
		default:
			j = rng_next(&v->rng) % n;
			break;
		}
		tb_sim_page_write(g->ram, h->data_first + j * lanes + t, t,
				  tb_guest_mark, g);
		v->ops++;
		__atomic_add_fetch(&g->ctrl->progress, 1, __ATOMIC_RELAXED);
	}
}

static void kv_loop(struct tb_guest *g, unsigned t)
{
	while (!tb_guest_exiting(g) && !TB_LD(&g->quiesced)) {
		tb_guest_safepoint(g, t);
		if (g->kv_relisten) {
			g->kv_relisten = false;
			tb_guest_kv_relisten(g->kv);
		}
		if (tb_guest_kv_step(g->kv, 5) == 0)
			g->vcpu[t].ops++;
	}
}

/*
 * The disk writer: random 4 KiB writes of random data (a database's
 * worst case: nothing compresses) over the upper half of the disk (the
 * durable KV log grows from the start), at cfg.disk_writes per second
 * or flat out.
 */
static void diskw_loop(struct tb_guest *g, unsigned t)
{
	struct tb_sim_vcpu *v = &g->vcpu[t];
	uint64_t half = tb_guest_disk_size(g) / 2 / TB_PAGE_SIZE, blk[512];
	uint64_t rate = g->cfg.disk_writes;
	int64_t period = rate && rate != UINT64_MAX ?
				 (int64_t)(TB_NSEC_PER_SEC / rate) :
				 0,
		t_next = tb_now_ns();
	unsigned i;

	if (!half)
		return;
	while (!tb_guest_exiting(g) && !TB_LD(&g->quiesced)) {
		tb_guest_safepoint(g, t);
		if (!paced(g, period, &t_next))
			continue;
		for (i = 0; i < TB_ARRAY_SIZE(blk); i++)
			blk[i] = rng_next(&v->rng);
		if (tb_guest_disk_write(g, t,
					(half + blk[0] % half) * TB_PAGE_SIZE,
					blk, sizeof(blk)))
			break;
		v->ops++;
	}
}

static void idle_loop(struct tb_guest *g, unsigned t)
{
	while (!tb_guest_exiting(g)) {
		tb_guest_safepoint(g, t);
		rate_wait(g, tb_now_ns() + 10 * TB_NSEC_PER_MSEC);
	}
}

static void *vcpu_main(void *arg)
{
	struct vcpu_arg *a = arg;
	struct tb_guest *g = a->g;
	unsigned t = a->t;
	struct tb_sim_ram_hdr *h = (struct tb_sim_ram_hdr *)g->ram;

	free(a);
	switch (g->vcpu_kind[t]) {
	case TB_GUEST_SYNTHETIC:
		synthetic_loop(g, t, h->nr_lanes);
		break;
	case TB_GUEST_KV:
		kv_loop(g, t);
		break;
	case TB_GUEST_DISKW:
		diskw_loop(g, t);
		break;
	default:
		break;
	}
	idle_loop(g, t);
	return NULL;
}

int tb_guest_vcpus_start(struct tb_guest *g, unsigned *started)
{
	unsigned i;

	for (i = 0; i < g->nr_vcpus; i++) {
		struct vcpu_arg *a = malloc(sizeof(*a));

		if (!a)
			return -ENOMEM;
		a->g = g;
		a->t = i;
		if (pthread_create(&g->vcpu_thr[i], NULL, vcpu_main, a)) {
			free(a);
			return -EAGAIN;
		}
		(*started)++;
	}
	return 0;
}
