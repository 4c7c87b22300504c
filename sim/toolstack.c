// SPDX-License-Identifier: MIT
/*
 * tiber-simguest's toolstack side: the unix control socket (one daemon
 * at a time gets the hello and the fds; another gets -EBUSY), detach
 * (EOF) and the pause watchdog.
 *
 * Invariants:
 *   - the guest never stays suspended without a daemon attached.
 *     On EOF, self_resume cancels an outstanding request, opens the
 *     output gate, stops disk mirroring and resumes a guest left
 *     suspended (a paused one is marked running).  A SIGSTOPped guest
 *     cannot notice its daemon dying: the watchdog, a child process,
 *     sends it SIGCONT.
 *   - a new daemon is attached only once the previous one's detach is
 *     finished.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "guest_priv.h"

static void self_resume(struct tb_guest *g)
{
	struct tb_sim_ctrl *c = g->ctrl;
	uint32_t expect = TB_SIM_REQ_PENDING;

	TB_ST(&c->attached, 0);
	TB_ST(&c->subscribed_port, 0);
	__atomic_compare_exchange_n(&c->suspend_req, &expect, TB_SIM_REQ_NONE,
				    false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	TB_ST(&c->gate.mode, TB_SIM_GATE_OPEN);
	tb_sim_evtchn_notify(c, g->evtfds, TB_SIM_PORT_GATE, TB_SIM_END_GUEST);
	tb_guest_disk_detached(g);
	if (TB_LD(&c->state) == TB_SIM_PAUSED)
		TB_ST(&c->state, TB_SIM_RUNNING);
	if (TB_LD(&c->state) == TB_SIM_SUSPENDED) {
		/* the daemon left us suspended: cancel the suspend */
		TB_ST(&c->suspend_req, TB_SIM_REQ_NONE);
		TB_ST(&c->hypercall_ret, 1);
		TB_INC(&c->resume_gen);
		TB_ST(&c->state, TB_SIM_RUNNING);
		tb_sim_evtchn_notify(c, g->evtfds, TB_SIM_PORT_RESUME,
				     TB_SIM_END_GUEST);
	}
}

static int send_hello(struct tb_guest *g, int s, int status)
{
	struct tb_sim_hello h = { 0 };
	int fds[TB_SIM_MAX_FDS];
	unsigned n = 0, i, uffd_at = 0;
	int k, rc, sync_fd;

	h.magic = TB_SIM_HELLO_MAGIC;
	h.version = TB_SIM_VERSION;
	h.status = status;
	h.pid = (int32_t)getpid();
	h.ram_size = g->ram_size;
	h.ram_gva = (uint64_t)(uintptr_t)g->ram;
	h.ctrl_size = g->ctrl_size;
	h.ring_size = g->ctrl->gate.ring_size;
	h.page_size = TB_PAGE_SIZE;
	h.features = g->ctrl->features;
	h.hugepages = g->cfg.hugepages;
	if (status == 0) {
		fds[n++] = g->ram_fd;
		fds[n++] = g->ctrl_fd;
		fds[n++] = g->ring_fd;
		sync_fd = (g->ctrl->features & TB_SIM_FEAT_UFFD_SYNC) ?
				  tb_guest_uffd_sync_open(g) :
				  -1;
		if (g->uffd >= 0 || sync_fd >= 0) {
			uffd_at = n;
			fds[n++] = g->uffd >= 0 ? g->uffd : sync_fd;
			h.has_uffd = 1;
		}
		for (i = 0; i < TB_SIM_NR_EVTFDS; i++)
			fds[n++] = g->evtfds[i];
		k = tb_guest_disk_fds(g, fds + n, &h.disk_size,
				      &h.disk_ring_size);
		h.has_disk = k > 0;
		n += (unsigned)k;
	}
	h.nr_fds = n;
	rc = tb_sim_send_fds(s, &h, sizeof(h), fds, n);
	/* the daemon holds the only reference: if it goes, the range is
	 * unregistered and no write waits for it */
	if (h.has_uffd && g->uffd < 0)
		close(fds[uffd_at]);
	return rc;
}

void *tb_guest_tool_main(void *arg)
{
	struct tb_guest *g = arg;
	int conn = -1, s;
	char b[64];

	while (!tb_guest_exiting(g)) {
		struct pollfd pfd[2] = { { g->listen_fd, POLLIN, 0 },
					 { conn, POLLIN, 0 } };

		if (poll(pfd, conn >= 0 ? 2 : 1, 100) <= 0)
			continue;
		if (pfd[0].revents & POLLIN) {
			s = accept4(g->listen_fd, NULL, NULL, SOCK_CLOEXEC);
			if (s >= 0 && conn >= 0 &&
			    recv(conn, b, 1, MSG_PEEK | MSG_DONTWAIT) == 0) {
				/* the old daemon hung up before this one
				 * connected: finish its detach first */
				close(conn);
				conn = -1;
				self_resume(g);
			}
			if (s >= 0) {
				if (conn >= 0) {
					send_hello(g, s, -EBUSY);
					close(s);
				} else if (send_hello(g, s, 0)) {
					close(s);
				} else {
					conn = s;
					TB_ST(&g->ctrl->attached, 1);
					if (g->wd_sock >= 0)
						tb_sim_send_fds(g->wd_sock, "c",
								1, &conn, 1);
				}
			}
		}
		if (conn >= 0 && pfd[1].revents) {
			ssize_t n = read(conn, b, sizeof(b));

			if (n == 0 ||
			    (n < 0 && errno != EINTR && errno != EAGAIN)) {
				close(conn);
				conn = -1;
				self_resume(g);
			}
		}
	}
	if (conn >= 0)
		close(conn);
	return NULL;
}

/*
 * Pause watchdog: a SIGSTOPped guest cannot notice its daemon dying, so a
 * small child process (not stopped by a SIGSTOP to the guest) holds the
 * connection too and sends SIGCONT when it hangs up.
 */
static void watchdog_main(int sock, pid_t guest)
{
	int conn = -1;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != guest)
		_exit(0);
	for (;;) {
		struct pollfd pfd[2] = { { sock, POLLIN, 0 },
					 { conn, POLLRDHUP, 0 } };
		int n = poll(pfd, conn >= 0 ? 2 : 1, -1);

		if (n < 0 && errno != EINTR)
			_exit(1);
		if (pfd[0].revents) {
			char c = 0;
			int fd;
			unsigned nf = 1;

			if (tb_sim_recv_fds(sock, &c, 1, &fd, &nf))
				_exit(0); /* guest gone */
			if (nf == 1) {
				if (conn >= 0)
					close(conn);
				conn = fd;
			}
		}
		if (conn >= 0 && (pfd[1].revents & (POLLRDHUP | POLLHUP))) {
			kill(guest, SIGCONT);
			close(conn);
			conn = -1;
		}
	}
}

int tb_guest_start_watchdog(struct tb_guest *g)
{
	int sv[2];
	pid_t me = getpid(), pid;

	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv))
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return -errno;
	}
	if (pid == 0) {
		close(sv[0]);
		watchdog_main(sv[1], me);
		_exit(0);
	}
	close(sv[1]);
	g->wd_sock = sv[0];
	g->wd_pid = pid;
	return 0;
}

/* Listening before the path appears (bound under a temporary name, then
 * renamed): a client that sees the socket can connect to it. */
int tb_guest_make_listener(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s, n;

	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s.%d~", path,
		     (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	unlink(sa.sun_path);
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) || listen(s, 4) ||
	    rename(sa.sun_path, path)) {
		int e = -errno;

		unlink(sa.sun_path);
		close(s);
		return e;
	}
	return s;
}
