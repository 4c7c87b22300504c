/* SPDX-License-Identifier: MIT */
/*
 * io_uring plumbing of the transport: ring set-up, waits under a
 * deadline, SQE allocation and submission, the cancel and the eventfd
 * wake-up poll.  Internal to lib/ (not a public contract).
 *
 * Deadlines are absolute CLOCK_MONOTONIC ns; a negative one means none.
 */
#ifndef TIBER_RING_H
#define TIBER_RING_H

#include <stdint.h>

#include <liburing.h>

/* user_data of a connection's requests: one namespace for both rings */
enum {
	TB_UD_WAKE = 1,
	TB_UD_CANCEL = 2,
	TB_UD_RECV = 3,
	TB_UD_PROBE = 4,
	TB_UD_SEND = 16, /* + slot index */
};

/* io_uring_queue_init_params with COOP_TASKRUN if the kernel has it. */
int tb_ring_init(struct io_uring *r, unsigned depth);
/*
 * Wait for one CQE until absolute @deadline_ns (< 0: forever).
 * 0 with *@cqe set, -ETIMEDOUT, or -errno from the kernel.
 */
int tb_ring_wait(struct io_uring *r, struct io_uring_cqe **cqe,
		 int64_t deadline_ns);
/* A free SQE, submitting what is queued if the SQ is full; NULL if none. */
struct io_uring_sqe *tb_ring_get_sqe(struct io_uring *r);
/* io_uring_submit, retried on -EINTR/-EAGAIN.  0 or -errno. */
int tb_ring_submit(struct io_uring *r);
/* Queue and submit a cancel of every request of this ring on @fd
 * (user_data TB_UD_CANCEL).  0 or -errno. */
int tb_ring_cancel_fd(struct io_uring *r, int fd);
/* Arm a POLL_ADD on the eventfd @efd (user_data TB_UD_WAKE).  0 or -errno. */
int tb_ring_arm_wake(struct io_uring *r, int efd);

#endif
