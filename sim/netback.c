// SPDX-License-Identifier: MIT
/*
 * tiber-simguest's output gate (include/tiber/simproto.h, "gate"): the
 * guest's side queues output into the gate ring (tb_guest_send, called
 * by the KV service); the netback thread, the host side, transmits a
 * record once the gate is open or the epoch it was queued in is
 * released.
 *
 * Invariants:
 *   - a writer waiting for ring room is a safepoint: when a suspend is
 *     requested it parks there, its command applied and its reply not
 *     yet queued (the reply goes out after the resume);
 *   - gate_lock orders appends against pops; every pop and every freeze
 *     broadcasts gate_room under it, so a waiting writer sees new room or
 *     a suspend request at once (its 10 ms timeout is only a backstop).
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "guest_priv.h"

int tb_guest_send(struct tb_guest *g, uint32_t conn, const void *p,
		  uint32_t len)
{
	struct tb_sim_gate *gt = &g->ctrl->gate;
	bool waited = false;
	int rc;

	pthread_mutex_lock(&g->gate_lock);
	for (;;) {
		rc = tb_sim_gate_append(gt, g->ring, conn, p, len);
		if (rc != -EAGAIN || tb_guest_exiting(g))
			break;
		if (!waited) {
			TB_INC(&gt->backpressure);
			waited = true;
		}
		if (TB_LD(&g->stop_req)) {
			/* a safepoint: the command is applied, its reply
			 * not yet queued; it goes out after the resume */
			pthread_mutex_unlock(&g->gate_lock);
			tb_guest_park(g, tb_guest_kv_vcpu(g));
			pthread_mutex_lock(&g->gate_lock);
			continue;
		}
		{
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 10 * TB_NSEC_PER_MSEC;
			if (ts.tv_nsec >= TB_NSEC_PER_SEC) {
				ts.tv_sec++;
				ts.tv_nsec -= TB_NSEC_PER_SEC;
			}
			pthread_cond_timedwait(&g->gate_room, &g->gate_lock,
					       &ts);
		}
	}
	pthread_mutex_unlock(&g->gate_lock);
	if (!rc)
		tb_sim_evtchn_notify(g->ctrl, g->evtfds, TB_SIM_PORT_GATE,
				     TB_SIM_END_GUEST);
	return rc;
}

void *tb_guest_netback_main(void *arg)
{
	struct tb_guest *g = arg;
	struct tb_sim_gate *gt = &g->ctrl->gate;
	struct tb_sim_waitset ws = { .n = 1,
				     .port = { TB_SIM_PORT_GATE },
				     .end = { TB_SIM_END_GUEST },
				     .extra_fd = -1 };
	struct tb_sim_gate_rec rec;
	uint8_t *buf = malloc(gt->ring_size);
	bool sent;
	int r;

	if (!buf)
		return NULL;
	while (!tb_guest_exiting(g)) {
		r = tb_sim_gate_peek(gt, g->ring, &rec, buf, gt->ring_size);
		if (r == 1) {
			sent = g->kv && tb_guest_kv_transmit(g->kv, rec.conn,
							     buf, rec.len);
			pthread_mutex_lock(&g->gate_lock);
			tb_sim_gate_pop(gt, &rec, sent);
			pthread_cond_broadcast(&g->gate_room);
			pthread_mutex_unlock(&g->gate_lock);
			continue;
		}
		tb_sim_evtchn_wait(g->ctrl, g->evtfds, &ws, 0,
				   tb_now_ns() + 100 * TB_NSEC_PER_MSEC);
	}
	free(buf);
	return NULL;
}
