/* SPDX-License-Identifier: MIT */
/*
 * Fencing: run the operator's fence command, which must make a peer
 * provably stopped (power it off, destroy its domain, kill its
 * processes) and exit 0 only when it did (the contract of DRBD's
 * fence-peer handlers and Pacemaker's fence agents).
 */
#ifndef TIBER_FENCE_H
#define TIBER_FENCE_H

#include <stdint.h>

/*
 * Run @cmd (a /bin/sh command line) with @guest and @peer appended as
 * its arguments ($1, $2; also TIBER_GUEST and TIBER_PEER in its
 * environment).  Every line it prints is logged (prefixed by @what); it
 * is killed (its whole process group) after @timeout_ns.
 * 0: it exited 0.  -ETIMEDOUT: killed at the deadline.  -EIO: it exited
 * non-zero or died of a signal (logged with the status).  Other -errno:
 * it could not be started.
 */
int tb_fence_run(const char *what, const char *cmd, const char *guest,
		 const char *peer, int64_t timeout_ns);

#endif
