// SPDX-License-Identifier: MIT
/*
 * io_uring plumbing of the transport (see ring.h): ring set-up, waits
 * under a deadline, SQE allocation and submission, cancel and wake-up.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>

#include <liburing.h>

#include "tiber/common.h"
#include "ring.h"

static struct __kernel_timespec tb_ts_from_ns(int64_t ns)
{
	struct __kernel_timespec ts;

	if (ns < 0)
		ns = 0;
	ts.tv_sec = ns / TB_NSEC_PER_SEC;
	ts.tv_nsec = ns % TB_NSEC_PER_SEC;
	return ts;
}

int tb_ring_wait(struct io_uring *r, struct io_uring_cqe **cqe,
		 int64_t deadline_ns)
{
	struct __kernel_timespec ts;
	int64_t left;
	int rc;

	for (;;) {
		if (deadline_ns < 0) {
			rc = io_uring_wait_cqe(r, cqe);
		} else {
			left = deadline_ns - tb_now_ns();
			if (left <= 0) {
				rc = io_uring_peek_cqe(r, cqe);
				return rc == -EAGAIN ? -ETIMEDOUT : rc;
			}
			ts = tb_ts_from_ns(left);
			rc = io_uring_wait_cqe_timeout(r, cqe, &ts);
			if (rc == -ETIME)
				continue; /* re-check against the clock */
		}
		if (rc != -EINTR)
			return rc;
	}
}

struct io_uring_sqe *tb_ring_get_sqe(struct io_uring *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(r);

	if (!sqe) {
		/* SQ full: flush what is queued, then there is room */
		io_uring_submit(r);
		sqe = io_uring_get_sqe(r);
	}
	return sqe;
}

int tb_ring_submit(struct io_uring *r)
{
	int rc;

	do {
		rc = io_uring_submit(r);
	} while (rc == -EINTR || rc == -EAGAIN);
	return rc < 0 ? rc : 0;
}

int tb_ring_cancel_fd(struct io_uring *r, int fd)
{
	struct io_uring_sqe *sqe = tb_ring_get_sqe(r);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, TB_UD_CANCEL);
	return tb_ring_submit(r);
}

int tb_ring_arm_wake(struct io_uring *r, int efd)
{
	struct io_uring_sqe *sqe = tb_ring_get_sqe(r);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_add(sqe, efd, POLLIN);
	io_uring_sqe_set_data64(sqe, TB_UD_WAKE);
	return tb_ring_submit(r);
}

int tb_ring_init(struct io_uring *r, unsigned depth)
{
	struct io_uring_params p;
	int rc;

	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_COOP_TASKRUN;
	rc = io_uring_queue_init_params(depth, r, &p);
	if (rc == -EINVAL) {
		memset(&p, 0, sizeof(p));
		rc = io_uring_queue_init_params(depth, r, &p);
	}
	return rc;
}
