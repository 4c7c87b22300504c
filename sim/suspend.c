// SPDX-License-Identifier: MIT
/*
 * tiber-simguest's suspend protocol, the guest kernel's side: the kernel
 * thread waits on the suspend port and the store watch (control/shutdown),
 * claims the request, freezes the workload at a safepoint, makes the
 * simulated SCHEDOP_shutdown(SHUTDOWN_suspend), runs the THAW (hypercall
 * returned 1: suspend cancelled, a checkpoint) or RESTORE (0: a slow
 * resume or a new host) hooks, and thaws the workload.
 *
 * Invariants:
 *   - a request is claimed by one CAS (PENDING -> TAKEN); one the daemon
 *     cancelled first is ignored, so a timed-out request never suspends
 *     the guest;
 *   - the guest suspends only once every vCPU is parked at a safepoint
 *     (its registers saved in the control page), unless it is exiting;
 *   - THAW leaves the suspend port bound and armed (see thaw_hooks);
 *     RESTORE publishes a new port and verifies RAM.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "guest_priv.h"

void tb_guest_park(struct tb_guest *g, unsigned t)
{
	int gen = TB_LD(&g->run_gen);
	int64_t until;

	/* the vCPU's registers: what save_cpu_state hands out */
	g->vcpu[t].lane_seq = ((struct tb_sim_ram_hdr *)g->ram)
				      ->lane[t % TB_SIM_MAX_LANES]
				      .seq;
	g->ctrl->vcpu[t] = g->vcpu[t];
	if ((unsigned)TB_INC(&g->parked) == g->nr_vcpus)
		tb_futex(&g->parked, FUTEX_WAKE_PRIVATE, 1, NULL);
	until = tb_now_ns() + PAUSE_SPIN_NS(g);
	while (TB_LD(&g->run_gen) == gen && tb_now_ns() < until)
		__builtin_ia32_pause();
	while (TB_LD(&g->run_gen) == gen)
		tb_futex(&g->run_gen, FUTEX_WAIT_PRIVATE, gen, NULL);
}

void tb_guest_safepoint(struct tb_guest *g, unsigned t)
{
	if (__builtin_expect(TB_LD(&g->stop_req) != 0, 0))
		tb_guest_park(g, t);
}

static void freeze(struct tb_guest *g)
{
	int64_t until;
	int p;

	TB_ST(&g->stop_req, 1);
	tb_futex(&g->stop_req, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
	tb_guest_disk_wake(g);
	pthread_mutex_lock(&g->gate_lock);
	pthread_cond_broadcast(&g->gate_room);
	pthread_mutex_unlock(&g->gate_lock);
	until = tb_now_ns() + 50 * TB_NSEC_PER_USEC;
	while ((unsigned)TB_LD(&g->parked) < g->nr_vcpus && tb_now_ns() < until)
		__builtin_ia32_pause();
	while ((unsigned)(p = TB_LD(&g->parked)) < g->nr_vcpus &&
	       !tb_guest_exiting(g)) {
		struct timespec ts = { 0, 100 * TB_NSEC_PER_MSEC };

		tb_futex(&g->parked, FUTEX_WAIT_PRIVATE, p, &ts);
	}
	g->ctrl->nr_vcpus = g->nr_vcpus;
}

void tb_guest_thaw(struct tb_guest *g)
{
	TB_ST(&g->parked, 0);
	TB_ST(&g->stop_req, 0);
	TB_INC(&g->run_gen);
	tb_futex(&g->run_gen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
}

/* ------------------------------------------------------------ ports */

int tb_guest_publish_port(struct tb_guest *g)
{
	char v[16];
	int p;

	if (g->cfg.static_port > 0) {
		/* dom0less: the port is static config, nothing in the store */
		p = tb_sim_evtchn_alloc(g->ctrl, g->cfg.static_port);
		if (p < 0)
			return p;
		g->ctrl->static_port = (uint32_t)p;
		g->suspend_port = p;
		return 0;
	}
	p = tb_sim_evtchn_alloc(g->ctrl, 0);
	if (p < 0)
		return p;
	g->suspend_port = p;
	snprintf(v, sizeof(v), "%d", p);
	return tb_sim_store_write(&g->ctrl->store, TB_SIM_KEY_SUSPEND_PORT, v);
}

static void unpublish_port(struct tb_guest *g)
{
	if (g->suspend_port > 0)
		tb_sim_evtchn_free(g->ctrl, (unsigned)g->suspend_port);
	if (g->cfg.static_port <= 0)
		tb_sim_store_write(&g->ctrl->store, TB_SIM_KEY_SUSPEND_PORT,
				   "");
	g->suspend_port = 0;
}

/* ------------------------------------------------------------ hooks */

void tb_guest_verify_self(struct tb_guest *g)
{
	struct tb_sim_verify_report rep, drep;
	int rc = tb_sim_verify(g->ram, g->ram_size, &rep);

	/* a durable KV guest: its disk must agree with its memory */
	if (!rc && rep.ok && tb_guest_has_disk(g) &&
	    (g->cfg.workload == TB_GUEST_KV ||
	     g->cfg.workload == TB_GUEST_MIXED)) {
		rc = tb_guest_disk_verify(g, &drep);
		if (rc || !drep.ok)
			rep = drep;
		fprintf(stderr,
			"tiber-simguest: restore disk verify=%s log=%" PRIu64
			" %s\n",
			(!rc && drep.ok) ? "ok" : "FAILED", drep.total_writes,
			drep.msg);
	}
	TB_ST(&g->ctrl->last_verify_ok, (!rc && rep.ok) ? 1 : 2);
	fprintf(stderr,
		"tiber-simguest: restore verify=%s pages=%" PRIu64
		" writes=%" PRIu64 " bad_pages=%" PRIu64 " %s\n",
		(!rc && rep.ok) ? "ok" : "FAILED", rep.pages_checked,
		rep.total_writes, rep.bad_pages, rep.msg);
}

/* PMSG_RESTORE: the domain was restored (slow resume or a new host). */
static void restore_hooks(struct tb_guest *g)
{
	TB_INC(&g->ctrl->restores);
	TB_ST(&g->ctrl->subscribed_port, 0);
	unpublish_port(g);
	if (tb_guest_publish_port(g))
		fprintf(stderr, "tiber-simguest: restore: no suspend port\n");
	g->kv_relisten = true;
	tb_guest_verify_self(g);
}

/*
 * PMSG_THAW: suspend cancelled (checkpoint); continue in place.  The port
 * stays bound and armed: its pending bit is NOT cleared here, since the
 * daemon may already have asked for the next checkpoint (clearing it
 * lost that request).  A stale notification is harmless: the request
 * word decides (handle_request).
 */
static void thaw_hooks(struct tb_guest *g)
{
	TB_INC(&g->ctrl->suspend_cancels);
}

/* The simulated SCHEDOP_shutdown(SHUTDOWN_suspend).  Returns what the
 * hypervisor put in the return register. */
static int hypercall_suspend(struct tb_guest *g)
{
	struct tb_sim_ctrl *c = g->ctrl;
	struct tb_sim_waitset ws = { .n = 1,
				     .port = { TB_SIM_PORT_RESUME },
				     .end = { TB_SIM_END_GUEST },
				     .extra_fd = -1 };
	unsigned sub;

	TB_INC(&c->suspends);
	TB_ST(&c->shutdown_reason, TB_SIM_SHUTDOWN_SUSPEND);
	TB_ST(&c->state, TB_SIM_SUSPENDED);
	sub = TB_LD(&c->subscribed_port);
	if (sub && (int)sub == g->suspend_port)
		tb_sim_evtchn_notify(c, g->evtfds, sub, TB_SIM_END_TOOL);
	else
		tb_sim_evtchn_notify(c, g->evtfds, TB_SIM_PORT_DOM_EXC,
				     TB_SIM_END_TOOL);
	/* no spin by default: the pause's copy threads have the CPUs, as
	 * a suspended domain's vCPUs leave them to dom0 */
	for (;;) {
		int r = tb_sim_evtchn_wait(c, g->evtfds, &ws, PAUSE_SPIN_NS(g),
					   tb_now_ns() +
						   100 * TB_NSEC_PER_MSEC);

		if (TB_LD(&c->state) == TB_SIM_RUNNING && r == 0)
			break;
		if (tb_guest_exiting(g))
			return 1;
	}
	TB_ST(&c->shutdown_reason, TB_SIM_SHUTDOWN_NONE);
	return TB_LD(&c->hypercall_ret);
}

static void do_suspend(struct tb_guest *g)
{
	int ret;

	freeze(g);
	ret = hypercall_suspend(g);
	if (ret == 1)
		thaw_hooks(g);
	else
		restore_hooks(g);
	tb_guest_thaw(g);
}

static void handle_request(struct tb_guest *g)
{
	uint32_t expect = TB_SIM_REQ_PENDING;

	if (g->cfg.ignore_suspend) {
		TB_INC(&g->ctrl->ignored_requests);
		return;
	}
	/* claim; a cancelled request (daemon's CAS won) is ignored */
	if (!__atomic_compare_exchange_n(&g->ctrl->suspend_req, &expect,
					 TB_SIM_REQ_TAKEN, false,
					 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		return;
	do_suspend(g);
}

void *tb_guest_kernel_main(void *arg)
{
	struct tb_guest *g = arg;
	struct tb_sim_ctrl *c = g->ctrl;
	char v[TB_SIM_VAL_MAX];
	int64_t next_stats = tb_now_ns() +
			     (int64_t)g->cfg.stats_interval_s * TB_NSEC_PER_SEC;
	int r;

	while (!tb_guest_exiting(g)) {
		struct tb_sim_waitset ws = { .n = 0, .extra_fd = -1 };
		int64_t dl = tb_now_ns() + 100 * TB_NSEC_PER_MSEC;

		ws.port[ws.n] = TB_SIM_PORT_STORE;
		ws.end[ws.n++] = TB_SIM_END_GUEST;
		if (g->suspend_port > 0) {
			ws.port[ws.n] = (unsigned)g->suspend_port;
			ws.end[ws.n++] = TB_SIM_END_GUEST;
		}
		r = tb_sim_evtchn_wait(c, g->evtfds, &ws, 0, dl);
		if (r == 0) {
			/* xenstore watch: control/shutdown */
			if (!tb_sim_store_read(&c->store, TB_SIM_KEY_SHUTDOWN,
					       v, sizeof(v)) &&
			    !strcmp(v, "suspend")) {
				if (g->cfg.ignore_suspend) {
					TB_INC(&c->ignored_requests);
				} else if (!tb_sim_store_cmpxchg(
						   &c->store,
						   TB_SIM_KEY_SHUTDOWN,
						   "suspend", "")) {
					/* acked by clearing, as Linux does */
					handle_request(g);
				}
			}
		} else if (r == 1) {
			handle_request(g);
		}
		if (g->want_stats ||
		    (g->cfg.stats_interval_s && tb_now_ns() >= next_stats)) {
			g->want_stats = 0;
			tb_guest_print_stats(g, stderr, false);
			next_stats =
				tb_now_ns() + (int64_t)g->cfg.stats_interval_s *
						      TB_NSEC_PER_SEC;
		}
	}
	return NULL;
}
