// SPDX-License-Identifier: MIT
/*
 * The sim backend's suspend and resume: the suspend mode and port picked
 * at attach, the request (event channel, store watch, or SIGSTOP in
 * pause mode), waiting for the guest to be suspended, and the fast
 * (cancelled suspend) or slow (restore path) resume.
 *
 * Invariants:
 *  - suspend_req is the one truth about a request: the guest claims it
 *    (PENDING -> TAKEN) or the daemon cancels it at the deadline (PENDING
 *    -> NONE); exactly one CAS wins, so a timed-out request can never
 *    suspend the guest behind our back.  If the guest won, we wait for
 *    it to suspend and resume it at once: -ETIMEDOUT leaves it running.
 *  - Every resume writes the return value before the state and the state
 *    before the notify, so a woken guest reads the right value.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "sim_priv.h"

#define AWAIT_SPIN_NS (50 * TB_NSEC_PER_USEC)
#define RACE_GRACE_NS (2 * TB_NSEC_PER_SEC)

static int store_port(struct tb_dom *d)
{
	char v[TB_SIM_VAL_MAX];
	uint64_t p;

	if (tb_sim_store_read(&d->ctrl->store, TB_SIM_KEY_SUSPEND_PORT, v,
			      sizeof(v)) ||
	    !*v || tb_parse_u64(v, &p) || p < TB_SIM_PORT_FIRST_DYN ||
	    p >= TB_SIM_NR_PORTS)
		return -ENOENT;
	return (int)p;
}

int tb_sim_suspend_attach(struct tb_dom *d, const struct tb_dom_cfg *cfg)
{
	int p;

	d->mode = cfg->suspend_mode;
	if (cfg->static_port >= 0) {
		if (cfg->static_port < TB_SIM_PORT_FIRST_DYN ||
		    cfg->static_port >= TB_SIM_NR_PORTS ||
		    TB_LD(&d->ctrl->port[cfg->static_port].state) !=
			    TB_SIM_PORT_UNBOUND) {
			tb_backend_set_reason(
				"sim: static port %d is not an allocated guest port",
				cfg->static_port);
			return -EINVAL;
		}
		p = cfg->static_port;
	} else {
		p = store_port(d);
	}
	if (d->mode == TB_SUSPEND_AUTO)
		d->mode = p > 0 ? TB_SUSPEND_EVTCHN : TB_SUSPEND_XENSTORE;
	if (d->mode == TB_SUSPEND_EVTCHN) {
		if (p <= 0) {
			tb_backend_set_reason(
				"sim: evtchn mode but the guest published no %s",
				TB_SIM_KEY_SUSPEND_PORT);
			return -EINVAL;
		}
		d->port = (unsigned)p;
		/* XEN_DOMCTL_subscribe */
		TB_ST(&d->ctrl->subscribed_port, d->port);
	}
	if (d->mode == TB_SUSPEND_PAUSE)
		d->suspend_cancel = false;
	return 0;
}

int tb_sim_request_suspend(struct tb_dom *d)
{
	struct tb_sim_ctrl *c = d->ctrl;
	int p, rc = 0;

	if (d->suspended)
		return -EINVAL;
	if (tb_sim_guest_gone(d))
		return -ESRCH;
	d->req_by_store = false;
	if (d->mode == TB_SUSPEND_PAUSE) {
		d->st.t_notify_ns = tb_now_ns();
		if (syscall(SYS_pidfd_send_signal, d->pidfd, SIGSTOP, NULL, 0))
			return errno == ESRCH ? -ESRCH : -errno;
		return 0;
	}
	if (d->mode == TB_SUSPEND_EVTCHN && d->need_rebind &&
	    d->cfg.static_port < 0) {
		/* after a slow resume the guest publishes a new port */
		p = store_port(d);
		if (p > 0) {
			d->port = (unsigned)p;
			TB_ST(&c->subscribed_port, d->port);
			d->need_rebind = false;
		}
	}
	TB_ST(&c->suspend_req, TB_SIM_REQ_PENDING);
	d->st.t_notify_ns = tb_now_ns();
	if (d->mode == TB_SUSPEND_EVTCHN && !d->need_rebind) {
		tb_sim_evtchn_notify(c, d->evtfds, d->port, TB_SIM_END_GUEST);
	} else {
		d->req_by_store = true;
		rc = tb_sim_store_write(&c->store, TB_SIM_KEY_SHUTDOWN,
					"suspend");
		if (!rc)
			tb_sim_evtchn_notify(c, d->evtfds, TB_SIM_PORT_STORE,
					     TB_SIM_END_GUEST);
	}
	return rc;
}

/* All threads of the guest stopped ('T'/'t' in /proc/<pid>/task/.../stat)? */
static int all_stopped(pid_t pid)
{
	char path[320], buf[512], *rp;
	struct dirent *de;
	DIR *dir;
	int fd, stopped = 1;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -ESRCH;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", (int)pid,
			 de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = 0;
		rp = strrchr(buf, ')');
		if (!rp || !rp[1] || !rp[2])
			continue;
		if (rp[2] == 'Z' || rp[2] == 'X') {
			stopped = -ESRCH;
			break;
		}
		if (rp[2] != 'T' && rp[2] != 't') {
			stopped = 0;
			break;
		}
	}
	closedir(dir);
	return stopped;
}

static int await_paused(struct tb_dom *d, int64_t deadline_ns)
{
	int r, n = 0;

	/* The guest need not be our child, so waitid() is not available;
	 * poll its threads' state (sim-host-facts 2: ~23 us). */
	for (;;) {
		r = all_stopped(d->pid);
		if (r < 0 || tb_sim_guest_gone(d))
			return -ESRCH;
		if (r == 1)
			break;
		if (tb_now_ns() >= deadline_ns) {
			syscall(SYS_pidfd_send_signal, d->pidfd, SIGCONT, NULL,
				0);
			stat_inc(d, &d->st.suspend_timeouts, 1);
			tb_backend_set_reason(
				"sim: SIGSTOP not confirmed by the deadline");
			return -ETIMEDOUT;
		}
		if (++n < 50)
			sched_yield();
		else
			tb_sleep_until(tb_now_ns() + 20 * TB_NSEC_PER_USEC);
	}
	d->st.t_wake_ns = tb_now_ns();
	TB_ST(&d->ctrl->state, TB_SIM_PAUSED);
	d->suspended = true;
	tb_copy_pool_prewake(&d->pool);
	stat_inc(d, &d->st.suspends, 1);
	return 0;
}

static bool is_suspended(struct tb_dom *d)
{
	return TB_LD(&d->ctrl->state) == TB_SIM_SUSPENDED &&
	       TB_LD(&d->ctrl->shutdown_reason) == TB_SIM_SHUTDOWN_SUSPEND;
}

static int wait_suspended(struct tb_dom *d, int64_t deadline_ns)
{
	struct tb_sim_waitset ws = { .n = 1,
				     .port = { TB_SIM_PORT_DOM_EXC },
				     .end = { TB_SIM_END_TOOL },
				     .extra_fd = d->pidfd };
	uint32_t st;
	int r;

	if (d->port) {
		ws.port[1] = d->port;
		ws.end[1] = TB_SIM_END_TOOL;
		ws.n = 2;
	}
	for (;;) {
		if (is_suspended(d))
			return 0;
		st = TB_LD(&d->ctrl->state);
		if (st == TB_SIM_CRASHED || st == TB_SIM_DEAD)
			return -ESRCH;
		r = tb_sim_evtchn_wait(d->ctrl, d->evtfds, &ws, AWAIT_SPIN_NS,
				       deadline_ns);
		if (r == (int)ws.n && tb_sim_guest_gone(d))
			return -ESRCH;
		if (r == -ETIMEDOUT)
			return is_suspended(d) ? 0 : -ETIMEDOUT;
		if (r < 0 && r != -ETIMEDOUT)
			return r;
	}
}

int tb_sim_await_suspended(struct tb_dom *d, int64_t deadline_ns)
{
	struct tb_sim_ctrl *c = d->ctrl;
	uint32_t expect = TB_SIM_REQ_PENDING;
	int rc;

	if (d->suspended)
		return 0;
	if (d->mode == TB_SUSPEND_PAUSE)
		return await_paused(d, deadline_ns);
	rc = wait_suspended(d, deadline_ns);
	if (rc == 0) {
		d->st.t_wake_ns = tb_now_ns();
		d->suspended = true;
		tb_copy_pool_prewake(&d->pool); /* the copy comes next */
		stat_inc(d, &d->st.suspends, 1);
		return 0;
	}
	if (rc != -ETIMEDOUT) {
		if (rc == -ESRCH)
			tb_backend_set_reason("sim: guest pid %d is gone",
					      (int)d->pid);
		return rc;
	}
	/* deadline: cancel, unless the guest already claimed the request */
	if (__atomic_compare_exchange_n(&c->suspend_req, &expect,
					TB_SIM_REQ_NONE, false,
					__ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
		if (d->req_by_store)
			tb_sim_store_cmpxchg(&c->store, TB_SIM_KEY_SHUTDOWN,
					     "suspend", "");
		else
			tb_sim_evtchn_retract(c, d->port, TB_SIM_END_GUEST);
		stat_inc(d, &d->st.suspend_timeouts, 1);
		tb_backend_set_reason(
			"sim: guest did not suspend by the deadline; request cancelled");
		return -ETIMEDOUT;
	}
	/* it claimed the request in the race: let it finish, resume it */
	rc = wait_suspended(d, tb_now_ns() + RACE_GRACE_NS);
	if (rc == -ESRCH)
		return rc;
	stat_inc(d, &d->st.suspend_timeouts, 1);
	if (rc == 0) {
		d->suspended = true;
		tb_sim_resume(d, true);
		tb_backend_set_reason(
			"sim: guest suspended after the deadline; resumed");
		return -ETIMEDOUT;
	}
	tb_backend_set_reason(
		"sim: guest took the request but did not suspend");
	return -ETIMEDOUT;
}

int tb_sim_resume(struct tb_dom *d, bool fast)
{
	struct tb_sim_ctrl *c = d->ctrl;

	if (!d->suspended)
		return -EINVAL;
	if (d->mode == TB_SUSPEND_PAUSE) {
		TB_ST(&c->state, TB_SIM_RUNNING);
		if (syscall(SYS_pidfd_send_signal, d->pidfd, SIGCONT, NULL, 0))
			return -errno;
		d->suspended = false;
		stat_inc(d, &d->st.fast_resumes, 1);
		return 0;
	}
	/* without SUSPEND_CANCEL (allow_slow_resume) every resume is slow */
	fast = fast && d->suspend_cancel;
	if (!fast && d->mode == TB_SUSPEND_EVTCHN && d->cfg.static_port < 0) {
		/* the toolstack re-creates the node empty; the guest's
		 * RESTORE path publishes its new port there */
		tb_sim_store_write(&c->store, TB_SIM_KEY_SUSPEND_PORT, "");
		d->need_rebind = true;
	}
	TB_ST(&c->suspend_req, TB_SIM_REQ_NONE);
	TB_ST(&c->hypercall_ret, fast ? 1 : 0);
	TB_INC(&c->resume_gen);
	TB_ST(&c->state, TB_SIM_RUNNING);
	tb_sim_evtchn_notify(c, d->evtfds, TB_SIM_PORT_RESUME,
			     TB_SIM_END_GUEST);
	d->suspended = false;
	if (fast) {
		stat_inc(d, &d->st.fast_resumes, 1);
	} else {
		stat_inc(d, &d->st.slow_resumes, 1);
	}
	return 0;
}
