/* SPDX-License-Identifier: MIT */
/*
 * Plain-socket plumbing of the transport, before io_uring takes over:
 * buffer and Nagle tuning, blocking mode, poll() and connect() under an
 * absolute CLOCK_MONOTONIC deadline (< 0: none).  Internal to lib/.
 */
#ifndef TIBER_SOCK_H
#define TIBER_SOCK_H

#include <stdbool.h>
#include <stdint.h>

#include <sys/un.h>

#include "addr.h"

/* Large socket buffers and TCP_NODELAY; best effort, never fails. */
void tb_sock_tune(int fd, int family);
/* Set or clear O_NONBLOCK.  0 or -errno. */
int tb_sock_set_nonblock(int fd, bool on);
/* poll() one fd until absolute @deadline_ns. 0, -ETIMEDOUT or -errno. */
int tb_sock_poll_until(int fd, short events, int64_t deadline_ns);
/*
 * Connect a new non-blocking, tuned stream socket to @a by @deadline_ns.
 * 0 and *@out_fd (the caller owns it), or -errno (-ETIMEDOUT).
 */
int tb_sock_connect(const struct tb_addr *a, int64_t deadline_ns, int *out_fd);
/*
 * A unix socket is bound at @tmp, a temporary name beside @sun's path
 * ("<dir>/.tb<pid>.<n>"), and renamed over the path once it listens: a
 * client never finds a path that refuses it.  false if that name does
 * not fit (then bind at the path itself).
 */
bool tb_sock_tmp_name(const struct sockaddr_un *sun, struct sockaddr_un *tmp);

#endif
