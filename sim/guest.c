// SPDX-License-Identifier: MIT
/*
 * tiber-simguest: the simulated guest's boot (or restore) and its main
 * thread.  boot() builds guest RAM, the control page, the gate ring and
 * the event channels' eventfds, formats RAM (or checks a restored
 * image), registers uffd-wp and publishes the suspend port;
 * tb_guest_main() starts the threads and waits for signals.
 *
 * Threads:
 *   kernel     (suspend.c) waits on the suspend port and the store watch;
 *              freezes the workload at a safepoint, makes the simulated
 *              SCHEDOP_shutdown(SHUTDOWN_suspend), runs THAW (hypercall
 *              returned 1) or RESTORE (0) hooks, thaws the workload
 *   toolstack  (toolstack.c) the unix control socket: hello + fds to one
 *              daemon; EOF = detach: resume if left suspended, open the
 *              output gate
 *   netback    (netback.c) host side of the output gate: transmits queued
 *              output when the gate is open or its epoch is released
 *   vcpuN      (workload.c) workload threads (synthetic writers, the KV
 *              service, the disk writer)
 *   main       signals (SIGTERM/SIGINT exit, SIGUSR1 stats, SIGUSR2
 *              quiesce: the workload stops writing, for tests)
 *
 * Invariants:
 *   - a restored guest takes its workload config from its RAM image and
 *     refuses an image or state blob that does not match it;
 *   - on exit the kernel thread is joined before the vCPUs are unparked:
 *     a suspend in progress finishes (its RESTORE hooks verify RAM) with
 *     the workload still parked.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "tiber/sim_uapi.h"
#include "guest_priv.h"

static struct tb_guest *crash_guest;

void *tb_guest_ram(struct tb_guest *g)
{
	return g->ram;
}

unsigned tb_guest_kv_vcpu(struct tb_guest *g)
{
	return g->nr_vcpus - 1; /* the KV thread is the last vCPU */
}

bool tb_guest_exiting(struct tb_guest *g)
{
	return TB_LD(&g->exiting) != 0;
}

void tb_guest_print_stats(struct tb_guest *g, FILE *f, bool json)
{
	struct tb_sim_ctrl *c = g->ctrl;
	struct tb_sim_gate *gt = &c->gate;
	uint64_t dw, db;

	tb_guest_disk_stats(g, &dw, &db);
	fprintf(f,
		json ? "{\"pid\": %d, \"suspends\": %" PRIu64
		       ", \"suspend_cancels\": %" PRIu64
		       ", \"restores\": %" PRIu64
		       ", \"ignored_requests\": %" PRIu64
		       ", \"progress\": %" PRIu64
		       ", \"output_held_bytes\": %" PRIu64
		       ", \"output_released_bytes\": %" PRIu64
		       ", \"output_dropped_bytes\": %" PRIu64
		       ", \"output_backpressure\": %" PRIu64
		       ", \"restore_verify\": %" PRIu64
		       ", \"disk_writes\": %" PRIu64
		       ", \"disk_bytes\": %" PRIu64 "}\n" :
		       "tiber-simguest: pid=%d suspends=%" PRIu64
		       " suspend_cancels=%" PRIu64 " restores=%" PRIu64
		       " ignored=%" PRIu64 " progress=%" PRIu64
		       " out_held=%" PRIu64 " out_released=%" PRIu64
		       " out_dropped=%" PRIu64 " backpressure=%" PRIu64
		       " restore_verify=%" PRIu64 " disk_writes=%" PRIu64
		       " disk_bytes=%" PRIu64 "\n",
		(int)getpid(), TB_LD(&c->suspends), TB_LD(&c->suspend_cancels),
		TB_LD(&c->restores), TB_LD(&c->ignored_requests),
		TB_LD(&c->progress), TB_LD(&gt->held_bytes),
		TB_LD(&gt->released_bytes), TB_LD(&gt->dropped_bytes),
		TB_LD(&gt->backpressure), TB_LD(&c->last_verify_ok), dw, db);
}

/* ------------------------------------------------------------ boot */

static void crash_handler(int sig)
{
	if (crash_guest && crash_guest->ctrl)
		crash_guest->ctrl->state = TB_SIM_CRASHED;
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * A userfaultfd registered for write-protect over RAM.  Async (@sync
 * false): the kernel resolves each fault and marks the page written for
 * PAGEMAP_SCAN; all RAM is protected here, once (~17 ms per GiB).  Sync:
 * each fault waits for the daemon, which holds the only reference and
 * protects RAM itself; kernel-mode faults (a syscall writing RAM) must
 * reach it too, so no UFFD_USER_MODE_ONLY.  The fd, or -errno.
 */
static int uffd_open(struct tb_guest *g, bool sync)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg;
	struct uffdio_writeprotect wp;
	int flags = O_CLOEXEC | O_NONBLOCK;
	int fd, rc;

	if (!sync && geteuid() != 0)
		flags |= UFFD_USER_MODE_ONLY;
	fd = (int)syscall(SYS_userfaultfd, flags);
	if (!sync && fd < 0 && errno == EPERM && !(flags & UFFD_USER_MODE_ONLY))
		fd = (int)syscall(SYS_userfaultfd, flags | UFFD_USER_MODE_ONLY);
	if (fd < 0)
		return -errno;
	api.features =
		sync ? 0 : UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
	if (g->cfg.hugepages)
		api.features |= UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
	if (ioctl(fd, UFFDIO_API, &api)) {
		rc = -errno;
		goto out_close;
	}
	if (!sync && !(api.features & UFFD_FEATURE_WP_ASYNC)) {
		rc = -ENOTSUP;
		goto out_close;
	}
	reg.range.start = (uint64_t)(uintptr_t)g->ram;
	reg.range.len = g->ram_size;
	reg.mode = UFFDIO_REGISTER_MODE_WP;
	if (ioctl(fd, UFFDIO_REGISTER, &reg)) {
		rc = -errno;
		goto out_close;
	}
	if (sync)
		return fd;
	/* once, at setup: later re-arming is PAGEMAP_SCAN */
	wp.range = reg.range;
	wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
	if (ioctl(fd, UFFDIO_WRITEPROTECT, &wp)) {
		rc = -errno;
		goto out_close;
	}
	return fd;
out_close:
	close(fd);
	return rc;
}

int tb_guest_uffd_sync_open(struct tb_guest *g)
{
	return uffd_open(g, true);
}

static int load_state(struct tb_guest *g, struct tb_sim_dev_state *dev,
		      uint32_t *nr)
{
	struct tb_buf b = { 0 };
	size_t used, used2;
	int rc;

	if (g->cfg.state_file) {
		rc = tb_read_file(g->cfg.state_file, &b);
	} else {
		/* the restorer wrote this memfd: its offset is at the end */
		lseek(g->cfg.state_fd, 0, SEEK_SET);
		rc = tb_read_fd(g->cfg.state_fd, &b);
	}
	if (rc)
		goto out;
	rc = tb_sim_blob_get_cpu(b.data, b.len, g->vcpu, nr, &used);
	if (!rc)
		rc = tb_sim_blob_get_dev(b.data + used, b.len - used, dev,
					 &used2);
out:
	tb_buf_free(&b);
	return rc;
}

/* Guest RAM: a new memfd, or a restore's RAM fd and state blob
 * (@dev, @nr_saved vCPUs); mapped and pre-faulted. */
static int map_ram(struct tb_guest *g, struct tb_sim_dev_state *dev,
		   uint32_t *nr_saved)
{
	const struct tb_guest_cfg *cfg = &g->cfg;
	unsigned mflags = MFD_CLOEXEC;
	uint64_t o;
	int rc;

	g->ram_size = cfg->ram_size;
	if (cfg->restore) {
		struct stat st;

		g->ram_fd = cfg->ram_fd;
		if (fstat(g->ram_fd, &st))
			return -errno;
		g->ram_size = (uint64_t)st.st_size;
		rc = load_state(g, dev, nr_saved);
		if (rc) {
			fprintf(stderr, "tiber-simguest: bad state blob: %s\n",
				strerror(-rc));
			return rc;
		}
	} else {
		if (cfg->hugepages)
			mflags |= MFD_HUGETLB;
		g->ram_fd = memfd_create("tiber-guest-ram", mflags);
		if (g->ram_fd < 0)
			return -errno;
		if (ftruncate(g->ram_fd, (off_t)g->ram_size))
			return -errno;
	}
	if (g->ram_size < (uint64_t)64 * TB_PAGE_SIZE ||
	    g->ram_size % TB_PAGE_SIZE)
		return -EINVAL;
	g->nr_pages = g->ram_size / TB_PAGE_SIZE;
	g->ram = mmap(NULL, g->ram_size, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_POPULATE, g->ram_fd, 0);
	if (g->ram == MAP_FAILED) {
		g->ram = NULL;
		return -errno;
	}
	/* pre-fault writable PTEs before uffd-wp (facts 1a: 2.5x cheaper) */
	for (o = 0; o < g->ram_size; o += TB_PAGE_SIZE) {
		volatile uint8_t *p = g->ram + o;

		/* cppcheck-suppress selfAssignment ; a write through volatile */
		*p = *p;
	}
	return 0;
}

/* The control page, the gate ring and the event channels' eventfds. */
static int map_shared(struct tb_guest *g)
{
	const struct tb_guest_cfg *cfg = &g->cfg;
	unsigned i;

	g->ctrl_size = tb_sim_ctrl_size(g->ram_size);
	g->ctrl_fd = memfd_create("tiber-guest-ctrl", MFD_CLOEXEC);
	if (g->ctrl_fd < 0 || ftruncate(g->ctrl_fd, (off_t)g->ctrl_size))
		return -errno;
	g->ctrl = mmap(NULL, g->ctrl_size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, g->ctrl_fd, 0);
	if (g->ctrl == MAP_FAILED) {
		g->ctrl = NULL;
		return -errno;
	}
	crash_guest = g;
	g->ring_fd = memfd_create("tiber-guest-gate", MFD_CLOEXEC);
	if (g->ring_fd < 0 || ftruncate(g->ring_fd, (off_t)cfg->gate_ring))
		return -errno;
	g->ring = mmap(NULL, cfg->gate_ring, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, g->ring_fd, 0);
	if (g->ring == MAP_FAILED) {
		g->ring = NULL;
		return -errno;
	}
	for (i = 0; i < TB_SIM_NR_EVTFDS; i++) {
		g->evtfds[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (g->evtfds[i] < 0)
			return -errno;
	}
	return 0;
}

/* A fresh boot: format RAM for @lanes writers, record the workload
 * config in it, seed the vCPUs, name the domain in the store. */
static int format_ram(struct tb_guest *g, unsigned lanes)
{
	const struct tb_guest_cfg *cfg = &g->cfg;
	struct tb_sim_ram_hdr *wh = (void *)g->ram;
	struct tb_sim_ctrl *c = g->ctrl;
	unsigned i;
	char v[32];
	int rc;

	rc = tb_sim_ram_format(g->ram, g->nr_pages, cfg->content, lanes,
			       (cfg->workload == TB_GUEST_KV ||
				cfg->workload == TB_GUEST_MIXED) ?
				       (uint64_t)64 :
				       0);
	if (rc)
		return rc;
	/* the guest kernel's own config lives in its memory */
	if (getrandom(&wh->boot_id, sizeof(wh->boot_id), 0) !=
	    sizeof(wh->boot_id))
		wh->boot_id = (uint64_t)tb_now_ns() ^ (uint64_t)getpid() << 32;
	wh->workload = cfg->workload;
	wh->pattern = cfg->pattern;
	wh->wss_pages = cfg->wss / TB_PAGE_SIZE;
	wh->dirty_rate = cfg->dirty_rate;
	wh->nr_threads = cfg->threads;
	wh->disk_writes = g->disk ? cfg->disk_writes : 0;
	for (i = 0; i < g->nr_vcpus; i++) {
		g->vcpu[i].id = i;
		g->vcpu[i].kind = g->vcpu_kind[i];
		g->vcpu[i].rng = 0x9e3779b97f4a7c15ull * (i + 1) ^
				 (uint64_t)getpid();
	}
	tb_sim_store_write(&c->store, TB_SIM_KEY_NAME,
			   cfg->name ? cfg->name : "simguest");
	snprintf(v, sizeof(v), "%u", cfg->domid);
	tb_sim_store_write(&c->store, TB_SIM_KEY_DOMID, v);
	return 0;
}

/* The control page's header, the gate, the block device and the
 * reserved ports. */
static int init_ctrl(struct tb_guest *g)
{
	struct tb_sim_ctrl *c = g->ctrl;
	unsigned i;
	int rc;

	c->magic = TB_SIM_MAGIC;
	c->version = TB_SIM_VERSION;
	c->guest_pid = (int32_t)getpid();
	c->page_size = TB_PAGE_SIZE;
	c->ram_size = g->ram_size;
	c->ram_gva = (uint64_t)(uintptr_t)g->ram;
	c->state = TB_SIM_BOOTING;
	c->shutdown_reason = TB_SIM_SHUTDOWN_NONE;
	c->bitmap_off = TB_SIM_CTRL_FIXED;
	c->bitmap_len = g->ctrl_size - TB_SIM_CTRL_FIXED;
	c->gate.ring_size = g->cfg.gate_ring;
	rc = tb_guest_disk_open(g);
	if (rc)
		return rc;
	c->gate.mode = TB_SIM_GATE_OPEN;
	for (i = 1; i < TB_SIM_PORT_FIRST_DYN; i++)
		c->port[i].state = TB_SIM_PORT_RESERVED;
	g->bitmap = tb_sim_ctrl_bitmap(c);
	return 0;
}

/* Restore: the workload config, from the restored RAM's header. */
static int restore_config(struct tb_guest *g)
{
	const struct tb_sim_ram_hdr *rh = (void *)g->ram;

	if (rh->magic != TB_SIM_RAM_MAGIC || rh->nr_pages != g->nr_pages ||
	    rh->workload > TB_GUEST_MIXED || rh->nr_threads == 0 ||
	    rh->nr_threads >= TB_SIM_MAX_VCPUS) {
		fprintf(stderr,
			"tiber-simguest: restore: RAM is not a tiber-simguest image\n");
		return -EINVAL;
	}
	/* the guest kernel's own config lives in its memory */
	g->cfg.workload = rh->workload;
	g->cfg.pattern = rh->pattern;
	g->cfg.wss = rh->wss_pages * TB_PAGE_SIZE;
	g->cfg.dirty_rate = rh->dirty_rate;
	g->cfg.threads = rh->nr_threads;
	g->cfg.content = rh->content;
	g->cfg.disk_writes = rh->disk_writes;
	return 0;
}

/* The workload's threads = vCPUs (vcpu_kind[]).  Returns the number
 * of writer lanes RAM is formatted for. */
static unsigned plan_vcpus(struct tb_guest *g)
{
	const struct tb_guest_cfg *cfg = &g->cfg;
	unsigned i, lanes;

	g->nr_vcpus = 0;
	if (cfg->workload == TB_GUEST_SYNTHETIC ||
	    cfg->workload == TB_GUEST_MIXED)
		for (i = 0; i < cfg->threads; i++)
			g->vcpu_kind[g->nr_vcpus++] = TB_GUEST_SYNTHETIC;
	lanes = TB_MAX(g->nr_vcpus, 1u);
	if (cfg->disk_writes && g->disk)
		g->vcpu_kind[g->nr_vcpus++] = TB_GUEST_DISKW;
	if (cfg->workload == TB_GUEST_KV || cfg->workload == TB_GUEST_MIXED)
		g->vcpu_kind[g->nr_vcpus++] = TB_GUEST_KV;
	if (!g->nr_vcpus)
		g->vcpu_kind[g->nr_vcpus++] = TB_GUEST_IDLE;
	return lanes;
}

/* Restore: RAM (@lanes) and the state blob (@nr_saved vCPUs) must
 * match the workload; the device state @dev goes back in place. */
static int restore_dev(struct tb_guest *g, const struct tb_sim_dev_state *dev,
		       uint32_t nr_saved, unsigned lanes)
{
	const struct tb_sim_ram_hdr *h = (void *)g->ram;
	struct tb_sim_ctrl *c = g->ctrl;
	unsigned i;

	if (h->magic != TB_SIM_RAM_MAGIC || h->nr_lanes != lanes ||
	    nr_saved != g->nr_vcpus) {
		fprintf(stderr,
			"tiber-simguest: restore: RAM/state do not match the workload flags (lanes %u vs %u, vcpus %u vs %u)\n",
			h->nr_lanes, lanes, nr_saved, g->nr_vcpus);
		return -EINVAL;
	}
	for (i = 0; i < TB_SIM_STORE_SLOTS; i++)
		c->store.slot[i] = dev->slot[i];
	c->suspends = dev->suspends;
	c->suspend_cancels = dev->suspend_cancels;
	c->restores = dev->restores;
	c->gate.cur_epoch = dev->gate_cur_epoch;
	c->gate.released_epoch = dev->gate_cur_epoch;
	return 0;
}

/* Dirty tracking (uffd-wp: asked for, or auto and available) and the
 * features the guest advertises. */
static int setup_dirty(struct tb_guest *g)
{
	const struct tb_guest_cfg *cfg = &g->cfg;
	struct tb_sim_ctrl *c = g->ctrl;
	int rc;

	c->features = TB_SIM_FEAT_DIRTY_BITMAP;
	if (!strcmp(cfg->dirty_mech, "uffd") ||
	    !strcmp(cfg->dirty_mech, "auto")) {
		rc = uffd_open(g, false);
		if (rc < 0 && !strcmp(cfg->dirty_mech, "uffd")) {
			fprintf(stderr, "tiber-simguest: uffd-wp async: %s\n",
				strerror(-rc));
			return rc;
		}
		g->uffd = rc < 0 ? -1 : rc;
	} else if (!strcmp(cfg->dirty_mech, "uffd-sync")) {
		/* a probe: each attach gets its own (toolstack.c) */
		rc = uffd_open(g, true);
		if (rc < 0) {
			fprintf(stderr, "tiber-simguest: uffd-wp sync: %s%s\n",
				strerror(-rc),
				rc == -EPERM ?
					" (kernel-mode faults must reach the daemon: run as root or set vm.unprivileged_userfaultfd=1)" :
					"");
			return rc;
		}
		close(rc);
		c->features |= TB_SIM_FEAT_UFFD_SYNC;
	}
	if (!cfg->no_suspend_cancel)
		c->features |= TB_SIM_FEAT_SUSPEND_CANCEL;
	if (g->uffd >= 0)
		c->features |= TB_SIM_FEAT_UFFD_WP;
	return 0;
}

static int boot(struct tb_guest *g)
{
	const struct tb_guest_cfg *cfg = &g->cfg;
	struct tb_sim_dev_state dev;
	uint32_t nr_saved = 0;
	unsigned i, lanes;
	int rc;

	rc = map_ram(g, &dev, &nr_saved);
	if (rc)
		return rc;
	rc = map_shared(g);
	if (rc)
		return rc;
	rc = init_ctrl(g);
	if (rc)
		return rc;
	if (cfg->uuid)
		tb_sim_store_write(&g->ctrl->store, TB_SIM_KEY_UUID, cfg->uuid);
	if (cfg->restore) {
		rc = restore_config(g);
		if (rc)
			return rc;
	}
	lanes = plan_vcpus(g);
	if (cfg->restore)
		rc = restore_dev(g, &dev, nr_saved, lanes);
	else
		rc = format_ram(g, lanes);
	if (rc)
		return rc;
	rc = setup_dirty(g);
	if (rc)
		return rc;
	/* the suspend hypercall "returns 0": RESTORE hooks */
	if (cfg->restore)
		TB_INC(&g->ctrl->restores);
	rc = tb_guest_publish_port(g);
	if (rc)
		return rc;
	if (cfg->restore) {
		tb_guest_verify_self(g);
		for (i = 0; i < g->nr_vcpus; i++)
			g->vcpu[i].kind = g->vcpu_kind[i];
	}
	tb_sim_store_write(&g->ctrl->store, TB_SIM_KEY_SHUTDOWN, "");
	return 0;
}

static int write_stats_file(struct tb_guest *g)
{
	FILE *f = fopen(g->cfg.stats_file, "w");

	if (!f)
		return -errno;
	tb_guest_print_stats(g, f, true);
	return fclose(f) ? -errno : 0;
}

/* Undo boot() and the threads' set-up, in reverse; frees @g. */
static void guest_free(struct tb_guest *g)
{
	unsigned i;

	if (g->kv)
		tb_guest_kv_close(g->kv);
	if (g->wd_sock >= 0)
		close(g->wd_sock); /* watchdog sees EOF and exits */
	if (g->wd_pid > 0) {
		kill(g->wd_pid, SIGKILL);
		waitpid(g->wd_pid, NULL, 0);
	}
	if (g->listen_fd >= 0) {
		close(g->listen_fd);
		unlink(g->cfg.socket);
	}
	if (g->uffd >= 0)
		close(g->uffd);
	tb_guest_disk_close(g);
	for (i = 0; i < TB_SIM_NR_EVTFDS; i++)
		if (g->evtfds[i] >= 0)
			close(g->evtfds[i]);
	if (g->ring)
		munmap(g->ring, g->cfg.gate_ring);
	if (g->ctrl)
		munmap(g->ctrl, g->ctrl_size);
	if (g->ram)
		munmap(g->ram, g->ram_size);
	if (g->ram_fd >= 0)
		close(g->ram_fd);
	if (g->ctrl_fd >= 0)
		close(g->ctrl_fd);
	if (g->ring_fd >= 0)
		close(g->ring_fd);
	crash_guest = NULL;
	free(g);
}

/* A guest with nothing open yet, or NULL. */
static struct tb_guest *guest_new(const struct tb_guest_cfg *cfg)
{
	struct tb_guest *g = calloc(1, sizeof(*g));
	unsigned i;

	if (!g)
		return NULL;
	g->cfg = *cfg;
	g->uffd = -1;
	g->ram_fd = g->ctrl_fd = g->ring_fd = -1;
	g->listen_fd = g->wd_sock = -1;
	for (i = 0; i < TB_SIM_NR_EVTFDS; i++)
		g->evtfds[i] = -1;
	pthread_mutex_init(&g->gate_lock, NULL);
	pthread_cond_init(&g->gate_room, NULL);
	g->t_boot = tb_now_ns();
	return g;
}

/* A crash marks the guest CRASHED; the signals of @set are blocked
 * (in every thread started later) for the main thread to wait for. */
static void setup_signals(sigset_t *set)
{
	signal(SIGSEGV, crash_handler);
	signal(SIGBUS, crash_handler);
	signal(SIGABRT, crash_handler);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGUSR2);
	sigaddset(set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, set, NULL);
}

/* What the KV service needs of its guest (kv.h). */
static int kv_send(void *g, uint32_t conn, const void *p, uint32_t len)
{
	return tb_guest_send(g, conn, p, len);
}

static int kv_disk_write(void *g, uint64_t off, const void *p, uint32_t len)
{
	return tb_guest_disk_write(g, tb_guest_kv_vcpu(g), off, p, len);
}

static bool kv_exiting(void *g)
{
	return tb_guest_exiting(g);
}

/* The KV service and the control socket (and its pause watchdog), if
 * configured.  0 or -errno (printed). */
static int open_services(struct tb_guest *g)
{
	const struct tb_guest_cfg *cfg = &g->cfg;
	struct tb_kv_host host = {
		.ram = tb_guest_ram(g),
		.mark = tb_guest_mark,
		.send = kv_send,
		.disk_write = tb_guest_has_disk(g) ? kv_disk_write : NULL,
		.disk_size = tb_guest_has_disk(g) ? tb_guest_disk_size(g) : 0,
		.exiting = kv_exiting,
		.ctx = g,
	};
	int rc;

	if (cfg->workload == TB_GUEST_KV || cfg->workload == TB_GUEST_MIXED) {
		rc = tb_guest_kv_open(&host, cfg->kv_listen, &g->kv);
		if (rc) {
			fprintf(stderr, "tiber-simguest: kv listen %s: %s\n",
				cfg->kv_listen ? cfg->kv_listen : "(none)",
				strerror(-rc));
			return rc;
		}
	}
	if (cfg->socket) {
		g->listen_fd = tb_guest_make_listener(cfg->socket);
		if (g->listen_fd < 0) {
			rc = g->listen_fd;
			fprintf(stderr, "tiber-simguest: socket %s: %s\n",
				cfg->socket, strerror(-rc));
			return rc;
		}
		return tb_guest_start_watchdog(g);
	}
	return 0;
}

/* Until SIGTERM, SIGINT or SIGHUP (of @set): SIGUSR1 asks the kernel
 * thread for the stats, SIGUSR2 quiesces the workload. */
static void wait_for_exit(struct tb_guest *g, const sigset_t *set)
{
	siginfo_t si;

	for (;;) {
		if (sigwaitinfo(set, &si) < 0)
			continue;
		if (si.si_signo == SIGUSR1) {
			g->want_stats = 1;
			continue;
		}
		if (si.si_signo == SIGUSR2) {
			/* Tests: freeze RAM contents (the workload threads
			 * idle from their next safepoint) so a replica can
			 * be compared bit for bit. */
			TB_ST(&g->quiesced, 1);
			fprintf(stderr, "tiber-simguest: workload quiesced\n");
			continue;
		}
		break;
	}
}

int tb_guest_main(const struct tb_guest_cfg *cfg)
{
	struct tb_guest *g = guest_new(cfg);
	sigset_t set;
	unsigned i, started = 0;
	int rc, status = 1;

	if (!g)
		return 1;
	setup_signals(&set);
	rc = boot(g);
	cfg = &g->cfg; /* a restore takes the workload from the image */
	if (rc) {
		fprintf(stderr, "tiber-simguest: boot failed: %s\n",
			strerror(-rc));
		goto out;
	}
	rc = open_services(g);
	if (rc)
		goto out;
	TB_ST(&g->ctrl->state, TB_SIM_RUNNING);
	if (tb_guest_vcpus_start(g, &started))
		goto out_threads;
	if (pthread_create(&g->kernel_thr, NULL, tb_guest_kernel_main, g))
		goto out_threads;
	pthread_create(&g->netback_thr, NULL, tb_guest_netback_main, g);
	if (g->listen_fd >= 0)
		pthread_create(&g->tool_thr, NULL, tb_guest_tool_main, g);
	if (cfg->ready_fd >= 0) {
		(void)!write(cfg->ready_fd, "1", 1);
		close(cfg->ready_fd);
	}
	fprintf(stderr,
		"tiber-simguest: pid=%d ram=%" PRIu64
		"MiB suspend_port=%d%s features=%#x dirty=%s %s ready\n",
		(int)getpid(), g->ram_size >> 20, g->suspend_port,
		cfg->static_port > 0 ? "(static)" : "", g->ctrl->features,
		g->uffd >= 0				    ? "uffd-wp" :
		(g->ctrl->features & TB_SIM_FEAT_UFFD_SYNC) ? "uffd-wp-sync" :
							      "bitmap",
		cfg->restore ? "restored" : "booted");
	status = 0;
	wait_for_exit(g, &set);
	/* The kernel thread sees exiting within 100 ms (and finishes a
	 * suspend in progress: its RESTORE hooks verify RAM, so the
	 * workload must stay parked until it is done); then unpark. */
	TB_ST(&g->exiting, 1);
	pthread_join(g->kernel_thr, NULL);
	pthread_join(g->netback_thr, NULL);
	if (g->listen_fd >= 0)
		pthread_join(g->tool_thr, NULL);
out_threads:
	TB_ST(&g->exiting, 1);
	tb_guest_thaw(g);
	for (i = 0; i < started; i++)
		pthread_join(g->vcpu_thr[i], NULL);
	if (g->ctrl)
		tb_guest_print_stats(g, stderr, false);
	if (cfg->stats_file && g->ctrl)
		write_stats_file(g);
	if (g->ctrl)
		TB_ST(&g->ctrl->state, TB_SIM_DEAD);
out:
	guest_free(g);
	return rc ? 1 : status;
}
