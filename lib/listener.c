// SPDX-License-Identifier: MIT
/*
 * The listening socket: bind to an address (replacing a stale unix
 * socket, never a regular file), accept under a deadline, and hand each
 * accepted socket to tb_conn_from_fd().  A unix socket appears at its
 * path already listening (bound under a temporary name in the same
 * directory, renamed into place after listen()), so a client never meets
 * a path that refuses it; the path is unlinked when the listener closes.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "tiber/transport.h"
#include "addr.h"
#include "sock.h"

#define TB_LISTEN_BACKLOG 128

struct tb_listener {
	int fd;
	bool unlink_path;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	char addr[TB_ADDR_TEXT_MAX];
};

int tb_listener_open(struct tb_listener **out, const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct tb_listener *l;
	struct sockaddr_un tmp;
	struct tb_addr a[1];
	const void *at;
	socklen_t atlen;
	struct stat st;
	int nr, rc, one = 1;

	if (!out)
		return -EINVAL;
	*out = NULL;
	rc = tb_addr_parse(addr, true, a, 1, &nr);
	if (rc)
		return rc;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->fd = socket(a[0].ss.ss_family,
		       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0) {
		rc = -errno;
		goto out_free;
	}
	at = &a[0].ss;
	atlen = a[0].len;
	if (a[0].ss.ss_family == AF_UNIX) {
		const struct sockaddr_un *sun = (const void *)&a[0].ss;

		if (sun->sun_path[0]) {
			/* replace a stale socket, never a regular file */
			if (lstat(sun->sun_path, &st) == 0 &&
			    !S_ISSOCK(st.st_mode)) {
				rc = -EEXIST;
				goto out_close;
			}
			snprintf(l->path, sizeof(l->path), "%s", sun->sun_path);
			if (tb_sock_tmp_name(sun, &tmp)) {
				at = &tmp;
				atlen = sizeof(tmp);
			} else {
				unlink(sun->sun_path);
			}
		}
	} else {
		setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	}
	/* accepted sockets inherit the buffer sizes (window scale at SYN) */
	tb_sock_tune(l->fd, a[0].ss.ss_family);
	if (bind(l->fd, at, atlen) < 0) {
		rc = -errno;
		goto out_close;
	}
	l->unlink_path = l->path[0] != 0;
	if (listen(l->fd, TB_LISTEN_BACKLOG) < 0) {
		rc = -errno;
		goto out_unlink;
	}
	memset(&ss, 0, sizeof(ss));
	if (getsockname(l->fd, (void *)&ss, &sl) < 0) {
		rc = -errno;
		goto out_unlink;
	}
	if (at == &tmp) {
		/* atomically over a stale socket: never a moment without one */
		if (rename(tmp.sun_path, l->path) < 0) {
			rc = -errno;
			goto out_unlink;
		}
		memcpy(&ss, &a[0].ss, a[0].len);
		sl = a[0].len;
	}
	tb_addr_fmt(&ss, sl, l->addr, sizeof(l->addr));
	*out = l;
	return 0;

out_unlink:
	if (l->unlink_path)
		unlink(at == &tmp ? tmp.sun_path : l->path);
out_close:
	close(l->fd);
out_free:
	free(l);
	return rc;
}

const char *tb_listener_addr(const struct tb_listener *l)
{
	return l->addr;
}

int tb_listener_fd(const struct tb_listener *l)
{
	return l->fd;
}

int tb_listener_accept(struct tb_listener *l, struct tb_conn **out,
		       const struct tb_conn_opts *opts, int64_t deadline_ns)
{
	int fd, rc;

	if (!l || !out)
		return -EINVAL;
	*out = NULL;
	for (;;) {
		fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			break;
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		rc = tb_sock_poll_until(l->fd, POLLIN, deadline_ns);
		if (rc)
			return rc;
	}
	return tb_conn_from_fd(out, fd, opts);
}

void tb_listener_close(struct tb_listener *l)
{
	if (!l)
		return;
	if (l->unlink_path)
		unlink(l->path);
	close(l->fd);
	free(l);
}
