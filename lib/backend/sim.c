// SPDX-License-Identifier: MIT
/*
 * The simulated hypervisor backend: drives a tiber-simguest process
 * through its control socket and the shared control page
 * (include/tiber/simproto.h, docs/sim-backend.md).  This file: attach
 * (connect, hello, map the guest's memory), info, the state blobs, the
 * output gate hooks, health, stats, destroy/detach and the ops table;
 * the rest is in sim_suspend.c, sim_dirty.c, sim_restore.c, sim_disk.c
 * and copy_pool.c (sim_priv.h).
 *
 * Invariants:
 *  - The daemon only reads guest RAM (its mapping is PROT_READ): its own
 *    accesses are never tracked as dirty and never corrupt the guest.
 *  - output_release and get_stats may run on another thread: they touch
 *    only atomics and the stats lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include "tiber/backend.h"
#include "sim_disk.h"
#include "tiber/simproto.h"
#include "sim_priv.h"

/* ------------------------------------------------------------ helpers */

bool tb_sim_guest_gone(struct tb_dom *d)
{
	struct pollfd p = { d->pidfd, POLLIN, 0 };

	if (d->pidfd >= 0 && poll(&p, 1, 0) > 0)
		return true;
	return kill(d->pid, 0) && errno == ESRCH;
}

static void dom_free(struct tb_dom *d)
{
	unsigned i;

	tb_sim_sync_free(d); /* its thread uses the pool and RAM */
	tb_copy_pool_stop(&d->pool);
	if (d->ram)
		munmap((void *)d->ram, d->ram_size);
	if (d->ctrl)
		munmap(d->ctrl, d->ctrl_size);
	if (d->ring)
		munmap(d->ring, d->ring_size);
	close_fd(&d->sock);
	close_fd(&d->pidfd);
	close_fd(&d->pagemap_fd);
	close_fd(&d->uffd);
	close_fd(&d->ram_fd);
	close_fd(&d->ctrl_fd);
	close_fd(&d->ring_fd);
	tb_sim_ddisk_close(d->disk);
	close_fd(&d->disk_fds[0]);
	close_fd(&d->disk_fds[1]);
	for (i = 0; i < TB_SIM_NR_EVTFDS; i++)
		close_fd(&d->evtfds[i]);
	free(d->vec);
	pthread_mutex_destroy(&d->st_lock);
	free(d);
}

static int recv_hello(struct tb_dom *d, struct tb_sim_hello *h)
{
	int fds[TB_SIM_MAX_FDS];
	unsigned n = TB_SIM_MAX_FDS, i, k = 0, want;
	int rc;

	rc = tb_sim_recv_fds(d->sock, h, sizeof(*h), fds, &n);
	if (rc) {
		tb_backend_set_reason("sim: no hello from %s: %s", d->path,
				      strerror(-rc));
		return rc;
	}
	if (h->magic != TB_SIM_HELLO_MAGIC || h->version != TB_SIM_VERSION) {
		rc = -EPROTO;
		tb_backend_set_reason("sim: %s is not a tiber-simguest v%u",
				      d->path, TB_SIM_VERSION);
		goto out_close;
	}
	if (h->status) {
		rc = h->status < 0 ? h->status : -EPROTO;
		tb_backend_set_reason(
			"sim: guest %s refused: %s%s", d->path, strerror(-rc),
			rc == -EBUSY ? " (another daemon is attached)" : "");
		goto out_close;
	}
	want = 3 + (h->has_uffd ? 1 : 0) + TB_SIM_NR_EVTFDS +
	       (h->has_disk ? 2 : 0);
	if (n != want || h->nr_fds != want || h->page_size != TB_PAGE_SIZE ||
	    !h->ram_size || h->ram_size % TB_PAGE_SIZE ||
	    h->ctrl_size != tb_sim_ctrl_size(h->ram_size) || !h->ring_size) {
		rc = -EPROTO;
		tb_backend_set_reason("sim: malformed hello (%u fds)", n);
		goto out_close;
	}
	d->ram_fd = fds[k++];
	d->ctrl_fd = fds[k++];
	d->ring_fd = fds[k++];
	if (h->has_uffd)
		d->uffd = fds[k++];
	for (i = 0; i < TB_SIM_NR_EVTFDS; i++)
		d->evtfds[i] = fds[k++];
	if (h->has_disk) {
		d->disk_fds[0] = fds[k++];
		d->disk_fds[1] = fds[k++];
	}
	return 0;
out_close:
	for (i = 0; i < n; i++)
		close(fds[i]);
	return rc;
}

/* ------------------------------------------------------------ ops */

/* The guest's UUID from its store; a guest that has none gets one now,
 * at its first protection, and keeps it (like a Xen domain's handle). */
static int sim_uuid(struct tb_dom *d)
{
	char v[TB_SIM_VAL_MAX];
	int rc;

	if (!tb_sim_store_read(&d->ctrl->store, TB_SIM_KEY_UUID, v,
			       sizeof(v))) {
		if (!tb_uuid_parse(v, d->uuid))
			return 0;
		tb_backend_set_reason(
			"sim: guest pid %d: its %s '%s' is not a UUID",
			(int)d->pid, TB_SIM_KEY_UUID, v);
		return -EINVAL;
	}
	rc = tb_uuid_new(d->uuid);
	if (rc) {
		tb_backend_set_reason("sim: no random UUID: %s", strerror(-rc));
		return rc;
	}
	tb_uuid_fmt(d->uuid, v);
	return tb_sim_store_write(&d->ctrl->store, TB_SIM_KEY_UUID, v);
}

static int sim_attach(struct tb_dom **out, const struct tb_dom_cfg *cfg)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct tb_sim_hello h;
	struct tb_dom *d;
	unsigned i;
	int rc;

	if (!cfg->guest || strlen(cfg->guest) >= sizeof(sa.sun_path)) {
		tb_backend_set_reason(
			"sim: guest socket path missing or too long");
		return -EINVAL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->cfg = *cfg;
	snprintf(d->path, sizeof(d->path), "%s", cfg->guest);
	d->cfg.guest = d->path;
	d->sock = d->pidfd = d->pagemap_fd = d->uffd = -1;
	d->disk_fds[0] = d->disk_fds[1] = -1;
	d->ram_fd = d->ctrl_fd = d->ring_fd = -1;
	for (i = 0; i < TB_SIM_NR_EVTFDS; i++)
		d->evtfds[i] = -1;
	pthread_mutex_init(&d->st_lock, NULL);

	memcpy(sa.sun_path, cfg->guest, strlen(cfg->guest) + 1);
	d->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (d->sock < 0 ||
	    connect(d->sock, (struct sockaddr *)&sa, sizeof(sa))) {
		rc = -errno;
		tb_backend_set_reason("sim: connect %s: %s", d->path,
				      strerror(-rc));
		goto fail;
	}
	rc = recv_hello(d, &h);
	if (rc)
		goto fail;
	d->pid = h.pid;
	d->ram_size = h.ram_size;
	d->nr_pages = h.ram_size / TB_PAGE_SIZE;
	d->ram_gva = h.ram_gva;
	d->ctrl_size = h.ctrl_size;
	d->ring_size = h.ring_size;
	d->ctrl = mmap(NULL, d->ctrl_size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, d->ctrl_fd, 0);
	d->ring = mmap(NULL, d->ring_size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, d->ring_fd, 0);
	/* populated up front: a cold mapping costs 0.7-3 us a page in the
	 * pause (facts 3); read-only: the daemon never writes guest RAM */
	d->ram = mmap(NULL, d->ram_size, PROT_READ, MAP_SHARED | MAP_POPULATE,
		      d->ram_fd, 0);
	if (d->ctrl == MAP_FAILED || d->ring == MAP_FAILED ||
	    d->ram == MAP_FAILED) {
		rc = -errno;
		if (d->ctrl == MAP_FAILED)
			d->ctrl = NULL;
		if (d->ring == MAP_FAILED)
			d->ring = NULL;
		if (d->ram == MAP_FAILED)
			d->ram = NULL;
		tb_backend_set_reason("sim: mmap guest memory: %s",
				      strerror(-rc));
		goto fail;
	}
	if (d->ctrl->magic != TB_SIM_MAGIC || d->ctrl->guest_pid != d->pid ||
	    d->ctrl->ram_size != d->ram_size ||
	    d->ctrl->bitmap_off != TB_SIM_CTRL_FIXED ||
	    d->ctrl->gate.ring_size != d->ring_size) {
		rc = -EPROTO;
		tb_backend_set_reason("sim: control page does not match hello");
		goto fail;
	}
	d->pidfd = (int)syscall(SYS_pidfd_open, d->pid, 0);
	if (d->pidfd < 0) {
		rc = -errno;
		tb_backend_set_reason("sim: pidfd_open(%d): %s", (int)d->pid,
				      strerror(-rc));
		goto fail;
	}

	/* the ELF note */
	d->suspend_cancel = d->ctrl->features & TB_SIM_FEAT_SUSPEND_CANCEL;
	if (!d->suspend_cancel && !cfg->allow_slow_resume) {
		rc = -ENOTSUP;
		tb_backend_set_reason(
			"sim: guest pid %d does not advertise SUSPEND_CANCEL: every checkpoint would need a slow resume (set allow_slow_resume to accept)",
			(int)d->pid);
		goto fail;
	}

	rc = sim_uuid(d);
	if (rc)
		goto fail;
	rc = tb_sim_suspend_attach(d, cfg);
	if (rc)
		goto fail;
	rc = tb_sim_dirty_setup(d, cfg->dirty_mech);
	if (rc)
		goto fail;
	if (h.has_disk) {
		if (d->mode == TB_SUSPEND_PAUSE) {
			rc = -ENOTSUP;
			tb_backend_set_reason(
				"sim: guest pid %d has a disk: pause mode could stop a write between the disk and its journal (use evtchn or xenstore)",
				(int)d->pid);
			goto fail;
		}
		rc = tb_sim_ddisk_open(&d->disk, d->disk_fds[0], d->disk_fds[1],
				       h.disk_size, h.disk_ring_size, d->ctrl,
				       d->evtfds);
		d->disk_fds[0] = d->disk_fds[1] = -1;
		if (rc)
			goto fail;
	}
	/* Open, and the epoch tags restart with this daemon's epochs: a
	 * guest restored from a replica (or left by a killed tiberd) keeps
	 * the old daemon's count, and a released_epoch above our epoch
	 * numbers would let output out that no backup has acked. */
	TB_ST(&d->ctrl->gate.mode, TB_SIM_GATE_OPEN);
	TB_ST(&d->ctrl->gate.released_epoch, 0);
	TB_ST(&d->ctrl->gate.cur_epoch, 0);
	rc = tb_copy_pool_start(&d->pool,
				cfg->copy_threads ? cfg->copy_threads - 1 : 1,
				d->ram);
	if (rc) {
		tb_backend_set_reason("sim: copy threads: %s", strerror(-rc));
		goto fail;
	}
	*out = d;
	return 0;
fail:
	if (d->ctrl && d->port)
		TB_ST(&d->ctrl->subscribed_port, 0);
	dom_free(d);
	return rc;
}

static void sim_get_info(struct tb_dom *d, struct tb_dom_info *info)
{
	char v[TB_SIM_VAL_MAX];
	uint64_t id = 0;

	memset(info, 0, sizeof(*info));
	if (!tb_sim_store_read(&d->ctrl->store, TB_SIM_KEY_DOMID, v,
			       sizeof(v)) &&
	    !tb_parse_u64(v, &id) && id <= UINT32_MAX)
		info->domid = (uint32_t)id;
	if (tb_sim_store_read(&d->ctrl->store, TB_SIM_KEY_NAME, v, sizeof(v)))
		v[0] = 0;
	v[sizeof(info->name) - 1] = 0;
	memcpy(info->name, v, strlen(v) + 1);
	memcpy(info->uuid, d->uuid, sizeof(info->uuid));
	snprintf(info->kind, sizeof(info->kind), "sim");
	info->nr_pages = d->nr_pages;
	info->nr_vcpus = TB_MAX(TB_LD(&d->ctrl->nr_vcpus), 1u);
	info->state_tag = TB_SIM_STATE_TAG;
	info->suspend_mode = d->mode;
	info->suspend_cancel = d->suspend_cancel;
	snprintf(info->dirty_mech, sizeof(info->dirty_mech), "%s", d->mech);
	info->can_cow = d->sync != NULL;
	info->nr_disks = d->disk ? 1 : 0;
	info->disk_size[0] = d->disk ? tb_sim_ddisk_size(d->disk) : 0;
}

static int sim_copy_pages(struct tb_dom *d, const uint64_t *pfns, size_t n,
			  void *dst)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (pfns[i] >= d->nr_pages || (i && pfns[i] <= pfns[i - 1])) {
			tb_backend_set_reason(
				"sim: copy_pages: bad pfn list at %zu", i);
			return -EINVAL;
		}
	}
	tb_copy_pool_copy(&d->pool, pfns, n, dst);
	stat_inc(d, &d->st.pages_copied, n);
	return 0;
}

static int sim_save_cpu_state(struct tb_dom *d, struct tb_buf *out)
{
	uint32_t n = TB_LD(&d->ctrl->nr_vcpus);

	if (!d->suspended)
		return -EINVAL;
	if (n > TB_SIM_MAX_VCPUS)
		return -EPROTO;
	return tb_sim_blob_put_cpu(out, d->ctrl->vcpu, n);
}

static int sim_save_device_state(struct tb_dom *d, struct tb_buf *out)
{
	struct tb_sim_ctrl *c = d->ctrl;
	struct tb_sim_dev_state s;
	uint32_t seq;
	unsigned i;

	if (!d->suspended)
		return -EINVAL;
	memset(&s, 0, sizeof(s));
	do {
		seq = TB_LD(&c->store.seq);
		memcpy(s.slot, c->store.slot, sizeof(s.slot));
	} while ((seq & 1) || seq != TB_LD(&c->store.seq));
	for (i = 0; i < TB_SIM_STORE_SLOTS; i++) {
		s.slot[i].key[TB_SIM_KEY_MAX - 1] = 0;
		s.slot[i].val[TB_SIM_VAL_MAX - 1] = 0;
	}
	s.features = c->features;
	s.static_port = c->static_port < TB_SIM_NR_PORTS ? c->static_port : 0;
	s.gate_cur_epoch = TB_LD(&c->gate.cur_epoch);
	s.gate_released_epoch = TB_LD(&c->gate.released_epoch);
	s.gate_mode = TB_LD(&c->gate.mode) ? 1 : 0;
	s.suspends = TB_LD(&c->suspends);
	s.suspend_cancels = TB_LD(&c->suspend_cancels);
	s.restores = TB_LD(&c->restores);
	return tb_sim_blob_put_dev(out, &s);
}

static int sim_output_boundary(struct tb_dom *d, uint64_t epoch)
{
	if (!d->suspended)
		return -EINVAL;
	TB_ST(&d->ctrl->gate.cur_epoch, epoch);
	return 0;
}

static int sim_output_release(struct tb_dom *d, uint64_t epoch)
{
	uint64_t cur = TB_LD(&d->ctrl->gate.released_epoch);

	while (cur < epoch &&
	       !__atomic_compare_exchange_n(&d->ctrl->gate.released_epoch, &cur,
					    epoch, false, __ATOMIC_SEQ_CST,
					    __ATOMIC_SEQ_CST))
		;
	tb_sim_evtchn_notify(d->ctrl, d->evtfds, TB_SIM_PORT_GATE,
			     TB_SIM_END_GUEST);
	return 0;
}

static int sim_output_set_gated(struct tb_dom *d, bool gated)
{
	TB_ST(&d->ctrl->gate.mode,
	      gated ? TB_SIM_GATE_GATED : TB_SIM_GATE_OPEN);
	tb_sim_evtchn_notify(d->ctrl, d->evtfds, TB_SIM_PORT_GATE,
			     TB_SIM_END_GUEST);
	return 0;
}

static int sim_check_health(struct tb_dom *d)
{
	uint32_t st;

	if (tb_sim_guest_gone(d))
		return -ESRCH;
	st = TB_LD(&d->ctrl->state);
	if (st == TB_SIM_CRASHED)
		return -EFAULT;
	if (st == TB_SIM_DEAD)
		return -ESRCH;
	return 0;
}

static void sim_get_stats(struct tb_dom *d, struct tb_dom_stats *st)
{
	pthread_mutex_lock(&d->st_lock);
	*st = d->st;
	pthread_mutex_unlock(&d->st_lock);
	st->output_held_bytes = TB_LD(&d->ctrl->gate.held_bytes);
	st->output_released_bytes = TB_LD(&d->ctrl->gate.released_bytes);
	st->output_dropped_bytes = TB_LD(&d->ctrl->gate.dropped_bytes);
	tb_sim_sync_stats(d, st);
}

static int sim_destroy(struct tb_dom *d)
{
	struct pollfd p = { d->pidfd, POLLIN, 0 };

	/* SIGKILL: the gate ring dies with the process, nothing held
	 * leaves.  Wait until it is gone (the pidfd turns readable). */
	if (syscall(SYS_pidfd_send_signal, d->pidfd, SIGKILL, NULL, 0) &&
	    errno != ESRCH) {
		tb_backend_set_reason("sim: kill guest pid %d: %s", (int)d->pid,
				      strerror(errno));
		return -errno;
	}
	if (poll(&p, 1, 5000) != 1) {
		tb_backend_set_reason(
			"sim: guest pid %d still alive 5 s after SIGKILL",
			(int)d->pid);
		return -ETIMEDOUT;
	}
	d->suspended = false;
	return 0;
}

static void sim_detach(struct tb_dom *d)
{
	if (!d)
		return;
	if (d->suspended)
		tb_sim_resume(d, true);
	if (d->ctrl && !tb_sim_guest_gone(d)) {
		uint32_t expect = TB_SIM_REQ_PENDING;

		__atomic_compare_exchange_n(&d->ctrl->suspend_req, &expect,
					    TB_SIM_REQ_NONE, false,
					    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		TB_ST(&d->ctrl->subscribed_port, 0);
		sim_output_set_gated(d, false);
		if (d->disk)
			tb_sim_ddisk_mirror(d->disk, false, 0);
	}
	dom_free(d);
}

/* ------------------------------------------------------------ extras */

struct tb_sim_ctrl *tb_sim_dom_ctrl(struct tb_dom *d)
{
	return d->ctrl;
}

pid_t tb_sim_dom_pid(struct tb_dom *d)
{
	return d->pid;
}

/* ------------------------------------------------------------ disks */

static int sim_disk_mirror(struct tb_dom *d, bool on, uint64_t epoch)
{
	return d->disk ? tb_sim_ddisk_mirror(d->disk, on, epoch) : -ENODEV;
}

static int sim_disk_boundary(struct tb_dom *d, uint64_t epoch)
{
	return d->disk ? tb_sim_ddisk_boundary(d->disk, epoch) : -ENODEV;
}

static int sim_disk_peek(struct tb_dom *d, uint64_t upto,
			 struct tb_disk_jrec *w)
{
	return d->disk ? tb_sim_ddisk_peek(d->disk, upto, w) : -ENODEV;
}

static void sim_disk_pop(struct tb_dom *d, const struct tb_disk_jrec *w)
{
	if (d->disk)
		tb_sim_ddisk_pop(d->disk, w);
}

static int sim_disk_harvest(struct tb_dom *d, unsigned disk,
			    struct tb_bitmap *out)
{
	return d->disk && !disk ? tb_sim_ddisk_harvest(d->disk, out) : -ENODEV;
}

static int sim_disk_read(struct tb_dom *d, unsigned disk, uint64_t off,
			 void *buf, size_t len)
{
	return d->disk && !disk ? tb_sim_ddisk_read(d->disk, off, buf, len) :
				  -ENODEV;
}

static int sim_disk_next_data(struct tb_dom *d, unsigned disk, uint64_t off,
			      uint64_t *data)
{
	return d->disk && !disk ? tb_sim_ddisk_next_data(d->disk, off, data) :
				  -ENODEV;
}

const struct tb_backend_ops tb_backend_sim_ops = {
	.name = "sim",
	.attach = sim_attach,
	.get_info = sim_get_info,
	.request_suspend = tb_sim_request_suspend,
	.await_suspended = tb_sim_await_suspended,
	.harvest_dirty = tb_sim_harvest_dirty,
	.copy_pages = sim_copy_pages,
	.cow_prepare = tb_sim_cow_prepare,
	.cow_arm = tb_sim_cow_arm,
	.cow_finish = tb_sim_cow_finish,
	.save_cpu_state = sim_save_cpu_state,
	.save_device_state = sim_save_device_state,
	.output_boundary = sim_output_boundary,
	.output_release = sim_output_release,
	.output_set_gated = sim_output_set_gated,
	.resume = tb_sim_resume,
	.check_health = sim_check_health,
	.get_stats = sim_get_stats,
	.destroy = sim_destroy,
	.disk_mirror = sim_disk_mirror,
	.disk_boundary = sim_disk_boundary,
	.disk_peek = sim_disk_peek,
	.disk_pop = sim_disk_pop,
	.disk_harvest = sim_disk_harvest,
	.disk_read = sim_disk_read,
	.disk_next_data = sim_disk_next_data,
	.detach = sim_detach,
	.restore = tb_sim_restore,
};
