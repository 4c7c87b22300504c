/* SPDX-License-Identifier: MIT */
/*
 * Network output commit for a Xen guest (compare Remus' sch_plug use in
 * libxl_netbuffer.c), with libnl-route; no `tc` in the hot path.
 *
 *   guest --netfront--> vifN.M (dom0 ingress = guest egress)
 *       ingress qdisc + matchall (or u32 match-all) filter, protocol all
 *       -> mirred egress redirect -> ifb "tb-<vif>" -> root plug qdisc
 *       -> released packets re-enter the stack as if received on the vif
 *
 * An epoch boundary inserts a plug marker (TCQ_PLUG_BUFFER); the
 * backup's ACK releases one (TCQ_PLUG_RELEASE_ONE); ungated releases all
 * (TCQ_PLUG_RELEASE_INDEFINITE).  The kernel plug keeps ONE pending marker:
 * a boundary that comes while a marker is unacked is merged into the next
 * marker (its output waits for a later ACK: later, never early).
 *
 * Internal to lib/backend/.  Not thread-safe by itself: callers serialise
 * (the Xen backend holds a mutex; output_release runs on another thread).
 */
#ifndef TIBER_XEN_NETBUF_H
#define TIBER_XEN_NETBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tb_netbuf;

struct tb_netbuf_cfg {
	const char *vif;      /* e.g. "vif5.0" (or a veth in tests) */
	const char *ifb;      /* NULL: "tb-" + vif (truncated to 15) */
	uint32_t limit_bytes; /* plug qdisc limit (over it the kernel
				   drops, counted); 0: 8 MiB.  The Xen
				   backend's policy "pause" keeps the
				   backlog under its own lower limit. */
};

struct tb_netbuf_stats {
	uint64_t held_bytes; /* plug backlog now */
	uint64_t held_packets;
	uint64_t released_bytes; /* plug dequeued total */
	uint64_t released_packets;
	uint64_t dropped_packets; /* over the limit */
	uint64_t boundaries, merged, releases;
	const char *filter_kind; /* "matchall" or "u32" */
};

/*
 * Set up (idempotent: a previous setup of the same vif, e.g. by a killed
 * tiberd, is replaced).  Output starts held (gated) until
 * tb_netbuf_set_gated(false).  On failure everything done is undone, a
 * one-line reason naming the missing kernel module (sch_plug, ifb,
 * act_mirred, sch_ingress, cls_matchall/cls_u32) is left in @why, and
 * -errno is returned (-ENODEV: no such vif; -EPERM: not root).
 */
int tb_netbuf_setup(struct tb_netbuf **out, const struct tb_netbuf_cfg *cfg,
		    char *why, size_t why_len);
/* Epoch boundary: output so far belongs to @epoch (increasing). */
int tb_netbuf_boundary(struct tb_netbuf *nb, uint64_t epoch);
/* The backup acked @epoch: release the kernel's marker if it belongs to
 * @epoch or older (RELEASE_ONE); otherwise nothing to do. */
int tb_netbuf_release(struct tb_netbuf *nb, uint64_t epoch);
/* false: release everything and pass through; true: hold again. */
int tb_netbuf_set_gated(struct tb_netbuf *nb, bool gated);
/* Boundaries inserted and not yet released (0 or 1 in the kernel). */
unsigned tb_netbuf_pending(const struct tb_netbuf *nb);
int tb_netbuf_get_stats(struct tb_netbuf *nb, struct tb_netbuf_stats *st);
/* The plug's backlog in bytes, through a netlink socket of its own: one
 * thread (the Xen backend's overflow monitor) may call it without the
 * callers' lock.  Not with teardown. */
int tb_netbuf_backlog(struct tb_netbuf *nb, uint64_t *bytes);
/* Release everything, remove the redirect, the ifb and its qdisc. */
void tb_netbuf_teardown(struct tb_netbuf *nb);
/* Remove the buffering WITHOUT letting the held packets go: the ifb
 * and its plug qdisc are deleted with their queue (self-fencing, after
 * the domain was destroyed). */
void tb_netbuf_discard(struct tb_netbuf *nb);
/* Remove what a setup of @vif (ifb name as in cfg) may have left (a
 * killed tiberd: tiberctl recover).  true if its ifb was there. */
bool tb_netbuf_cleanup(const char *vif, const char *ifb);

#endif
