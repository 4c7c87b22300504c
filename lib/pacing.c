// SPDX-License-Identifier: MIT
/*
 * Send pacing (see pacing.h): a schedule of when the emulated link is
 * free, and a sleep until then that shutdown can interrupt.  Waiting on
 * the connection's eventfd keeps a paced sender wakeable.
 */
#include <errno.h>
#include <poll.h>

#include "tiber/common.h"
#include "pacing.h"
#include "sock.h"

#define TB_PACE_CHUNK_MAX (64u << 10)
#define TB_PACE_CHUNK_MIN (4u << 10)

void tb_pacer_init(struct tb_pacer *p, uint64_t rate_bps)
{
	p->rate_bps = rate_bps;
	p->next_ns = 0;
}

uint32_t tb_pacer_chunk(const struct tb_pacer *p)
{
	uint64_t ms = p->rate_bps / 8 / 1000; /* bytes per ms */

	return (uint32_t)TB_MAX(TB_PACE_CHUNK_MIN,
				TB_MIN(ms, TB_PACE_CHUNK_MAX));
}

int tb_pacer_wait(struct tb_pacer *p, uint32_t len, int wake_fd,
		  const int *shut, int64_t deadline_ns, int64_t *waited_ns)
{
	uint64_t cost =
		(uint64_t)(((unsigned __int128)len * 8 * TB_NSEC_PER_SEC) /
			   p->rate_bps);
	int64_t now = tb_now_ns(), start, until;
	int rc = 0;

	*waited_ns = 0;
	if (p->next_ns < now)
		p->next_ns = now; /* an idle link does not bank credit */
	until = p->next_ns;
	if (until <= now)
		goto out_charge;
	start = now;
	if (deadline_ns >= 0 && until > deadline_ns) {
		until = deadline_ns;
		rc = -ETIMEDOUT;
	}
	while (now < until) {
		int prc = tb_sock_poll_until(wake_fd, POLLIN, until);

		if (!prc || __atomic_load_n(shut, __ATOMIC_ACQUIRE) != 0) {
			rc = -ECANCELED;
			break;
		}
		if (prc != -ETIMEDOUT) {
			rc = prc;
			break;
		}
		now = tb_now_ns();
	}
	*waited_ns = tb_now_ns() - start;
	if (rc)
		return rc;
out_charge:
	p->next_ns += (int64_t)cost;
	return 0;
}
