// SPDX-License-Identifier: MIT
/*
 * The control socket server shared by tiberd and tiber-replicator (see
 * include/tiber/ctlsock.h for the contract).  One thread: poll on the
 * listener and a stop eventfd; each client has TB_CTL_DEADLINE_MS to
 * send its command line; the reply is written with the same deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "tiber/common.h"
#include "tiber/ctlsock.h"
#include "tiber/log.h"
#include "sock.h"

#define TB_CTL_DEADLINE_MS 1000

struct tb_ctl {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char lock_path[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
	int fd, lock_fd, stop_fd;
	pthread_t thread;
	tb_ctl_fn fn;
	void *arg;
	char *resp;
};

/* Read one line (up to '\n' or EOF) within the deadline, NUL-terminated.
 * Length or -errno (-ETIMEDOUT for a silent client). */
static int read_cmd(int fd, char *buf, size_t cap, int64_t deadline)
{
	size_t got = 0;
	ssize_t n;

	while (got < cap - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - tb_now_ns();

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&p, 1, (int)(left / TB_NSEC_PER_MSEC) + 1) <= 0)
			continue;
		n = read(fd, buf + got, cap - 1 - got);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
		if (memchr(buf, '\n', got))
			break;
	}
	buf[got] = 0;
	return (int)got;
}

size_t tb_ctl_reply(tb_ctl_fn fn, void *arg, const char *req, size_t len,
		    char *resp)
{
	char cmd[TB_CTL_REQ_MAX];
	size_t n;

	len = TB_MIN(len, sizeof(cmd) - 1);
	memcpy(cmd, req, len);
	cmd[len] = 0;
	cmd[strcspn(cmd, "\r\n")] = 0;
	resp[0] = 0;
	fn(arg, cmd, resp, TB_CTL_RESP_MAX - 1);
	resp[TB_CTL_RESP_MAX - 2] = 0;
	n = strlen(resp);
	resp[n] = '\n';
	resp[n + 1] = 0;
	return n + 1;
}

static void write_resp(int fd, const char *s, int64_t deadline)
{
	size_t len = strlen(s), off = 0;
	ssize_t n;

	while (off < len) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int64_t left = deadline - tb_now_ns();

		if (left <= 0)
			return;
		if (poll(&p, 1, (int)(left / TB_NSEC_PER_MSEC) + 1) <= 0)
			continue;
		n = send(fd, s + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			return;
		off += (size_t)n;
	}
}

static void serve_one(struct tb_ctl *c, int fd)
{
	char req[TB_CTL_REQ_MAX];
	int rc;

	rc = read_cmd(fd, req, sizeof(req),
		      tb_now_ns() + TB_CTL_DEADLINE_MS * TB_NSEC_PER_MSEC);
	if (rc <= 0) {
		tb_dbg("control client: %s",
		       rc ? strerror(-rc) : "closed without a command");
		return;
	}
	tb_ctl_reply(c->fn, c->arg, req, (size_t)rc, c->resp);
	write_resp(fd, c->resp,
		   tb_now_ns() + TB_CTL_DEADLINE_MS * TB_NSEC_PER_MSEC);
}

static void *ctl_main(void *arg)
{
	struct tb_ctl *c = arg;

	for (;;) {
		struct pollfd p[2] = { { .fd = c->fd, .events = POLLIN },
				       { .fd = c->stop_fd, .events = POLLIN } };
		int fd;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			continue;
		serve_one(c, fd);
		close(fd);
	}
	return NULL;
}

static int bind_socket(struct tb_ctl *c, const char *group)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX }, at;
	gid_t gid = (gid_t)-1;
	int rc;

	if (group && *group) {
		struct group *gr = getgrnam(group);

		if (!gr) {
			tb_err("control socket %s: unknown group '%s'", c->path,
			       group);
			return -ENOENT;
		}
		gid = gr->gr_gid;
	}
	memcpy(sa.sun_path, c->path, sizeof(c->path));
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->fd < 0)
		return -errno;
	/* We hold the lock: a socket file left here is a dead daemon's,
	 * replaced at once by the rename (tb_sock_tmp_name) */
	if (!tb_sock_tmp_name(&sa, &at)) {
		at = sa;
		if (unlink(c->path) && errno != ENOENT)
			return -errno;
	}
	if (bind(c->fd, (struct sockaddr *)&at, sizeof(at)))
		return -errno;
	rc = chmod(at.sun_path, 0660) ? -errno : 0;
	if (!rc && gid != (gid_t)-1 && chown(at.sun_path, (uid_t)-1, gid))
		rc = -errno;
	if (!rc && listen(c->fd, 16))
		rc = -errno;
	if (!rc && strcmp(at.sun_path, c->path) != 0 &&
	    rename(at.sun_path, c->path))
		rc = -errno;
	if (rc)
		unlink(at.sun_path);
	return rc;
}

int tb_ctl_open(struct tb_ctl **out, const char *path, const char *group,
		tb_ctl_fn fn, void *arg)
{
	struct tb_ctl *c;
	int rc;

	*out = NULL;
	if (strlen(path) >= sizeof(c->path))
		return -ENAMETOOLONG;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = c->lock_fd = c->stop_fd = -1;
	c->fn = fn;
	c->arg = arg;
	memcpy(c->path, path, strlen(path) + 1);
	snprintf(c->lock_path, sizeof(c->lock_path), "%s.lock", path);
	c->resp = malloc(TB_CTL_RESP_MAX);
	if (!c->resp) {
		rc = -ENOMEM;
		goto out_free;
	}
	c->lock_fd = open(c->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (c->lock_fd < 0) {
		rc = -errno;
		goto out_free;
	}
	if (flock(c->lock_fd, LOCK_EX | LOCK_NB)) {
		rc = errno == EWOULDBLOCK ? -EADDRINUSE : -errno;
		if (rc == -EADDRINUSE)
			tb_err("control socket %s is in use by another live daemon (lock %s held)",
			       path, c->lock_path);
		close(c->lock_fd);
		c->lock_fd = -1;
		goto out_free;
	}
	rc = bind_socket(c, group);
	if (rc)
		goto out_unlink;
	c->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (c->stop_fd < 0) {
		rc = -errno;
		goto out_unlink;
	}
	rc = -pthread_create(&c->thread, NULL, ctl_main, c);
	if (rc)
		goto out_unlink;
	*out = c;
	return 0;
out_unlink:
	unlink(c->path);
	unlink(c->lock_path);
out_free:
	if (c->fd >= 0)
		close(c->fd);
	if (c->stop_fd >= 0)
		close(c->stop_fd);
	if (c->lock_fd >= 0)
		close(c->lock_fd);
	free(c->resp);
	free(c);
	return rc;
}

void tb_ctl_close(struct tb_ctl *c)
{
	uint64_t one = 1;

	if (!c)
		return;
	/* An eventfd write of 1 cannot fail short of overflow. */
	if (write(c->stop_fd, &one, sizeof(one)) != sizeof(one))
		tb_warn("control socket %s: stop: %s", c->path,
			strerror(errno));
	pthread_join(c->thread, NULL);
	unlink(c->path);
	unlink(c->lock_path);
	close(c->fd);
	close(c->stop_fd);
	close(c->lock_fd);
	free(c->resp);
	free(c);
}
