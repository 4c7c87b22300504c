// SPDX-License-Identifier: MIT
/*
 * Plain-socket plumbing of the transport (see sock.h): tuning, blocking
 * mode, and the poll() and connect() that dialing and accepting use
 * before a socket is handed to io_uring.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tiber/common.h"
#include "sock.h"

#define TB_SOCK_BUF (4 << 20)

void tb_sock_tune(int fd, int family)
{
	int one = 1, sz = TB_SOCK_BUF;

	/* Best effort: the kernel clamps to [rw]mem_max. */
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (family == AF_INET || family == AF_INET6)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int tb_sock_set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
	if (fcntl(fd, F_SETFL, fl) < 0)
		return -errno;
	return 0;
}

int tb_sock_poll_until(int fd, short events, int64_t deadline_ns)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	struct timespec ts, *tsp = NULL;
	int64_t left;
	int rc;

	for (;;) {
		if (deadline_ns >= 0) {
			left = deadline_ns - tb_now_ns();
			if (left < 0)
				left = 0;
			ts.tv_sec = left / TB_NSEC_PER_SEC;
			ts.tv_nsec = left % TB_NSEC_PER_SEC;
			tsp = &ts;
		}
		rc = ppoll(&pfd, 1, tsp, NULL);
		if (rc > 0)
			return 0;
		if (rc == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

int tb_sock_connect(const struct tb_addr *a, int64_t deadline_ns, int *out_fd)
{
	int fd, rc, err = 0;
	socklen_t el = sizeof(err);

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return -errno;
	tb_sock_tune(fd, a->ss.ss_family);
	while (connect(fd, (const void *)&a->ss, a->len) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN && a->ss.ss_family == AF_UNIX) {
			/* backlog full: nothing started, try again shortly */
			if (deadline_ns >= 0 && tb_now_ns() >= deadline_ns) {
				rc = -ETIMEDOUT;
				goto out_close;
			}
			tb_sleep_until(tb_now_ns() + TB_NSEC_PER_MSEC);
			continue;
		}
		if (errno != EINPROGRESS) {
			rc = -errno;
			goto out_close;
		}
		rc = tb_sock_poll_until(fd, POLLOUT, deadline_ns);
		if (rc)
			goto out_close;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0) {
			rc = -errno;
			goto out_close;
		}
		if (err) {
			rc = -err;
			goto out_close;
		}
		break;
	}
	*out_fd = fd;
	return 0;
out_close:
	close(fd);
	return rc;
}

bool tb_sock_tmp_name(const struct sockaddr_un *sun, struct sockaddr_un *tmp)
{
	static unsigned seq;
	const char *slash = strrchr(sun->sun_path, '/');
	size_t dir = slash ? (size_t)(slash - sun->sun_path) + 1 : 0;
	int n;

	*tmp = *sun;
	n = snprintf(tmp->sun_path + dir, sizeof(tmp->sun_path) - dir,
		     ".tb%d.%u", (int)getpid(),
		     __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED));
	return n > 0 && (size_t)n < sizeof(tmp->sun_path) - dir;
}
