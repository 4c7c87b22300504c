/* SPDX-License-Identifier: MIT */
/*
 * Send pacing: emulate a link of a given rate (bits/s) by charging each
 * chunk's transmission time to a schedule and sleeping until the link is
 * free.  An idle link does not bank credit.  Internal to lib/; one
 * pacer belongs to one sending thread.
 */
#ifndef TIBER_PACING_H
#define TIBER_PACING_H

#include <stdint.h>

struct tb_pacer {
	uint64_t rate_bps; /* > 0 */
	int64_t next_ns;   /* CLOCK_MONOTONIC ns the link is free from */
};

/* A pacer for a link of @rate_bps (> 0) bits/s, free now. */
void tb_pacer_init(struct tb_pacer *p, uint64_t rate_bps);
/* Bytes per send on this link: about a millisecond's worth, 4-64 KiB. */
uint32_t tb_pacer_chunk(const struct tb_pacer *p);
/*
 * Sleep until the emulated link is free for @len more bytes, then charge
 * them.  0, or -ETIMEDOUT (the link is not free by absolute @deadline_ns,
 * < 0: none), -ECANCELED (@wake_fd became readable or *@shut is set:
 * shutdown) or poll's -errno; nothing is charged then.  *@waited_ns gets
 * the time slept.
 */
int tb_pacer_wait(struct tb_pacer *p, uint32_t len, int wake_fd,
		  const int *shut, int64_t deadline_ns, int64_t *waited_ns);

#endif
