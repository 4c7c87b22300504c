/* SPDX-License-Identifier: MIT */
/*
 * The sim backend's private header: the domain handle (struct tb_dom)
 * that lib/backend/sim*.c share, and the functions by which those files
 * call each other.  Internal to lib/backend/ (not a public contract);
 * only lib/backend/sim*.c include it.
 *
 *   sim.c          attach/hello, info, device state, output gate, health,
 *                  stats, destroy/detach, the ops table
 *   sim_suspend.c  suspend mode and port, request/await, resume
 *   sim_dirty.c    dirty tracking: uffd-wp + PAGEMAP_SCAN, or the
 *                  guest's cooperative bitmap
 *   sim_cow.c      uffd-wp sync tracking (our fault thread) and on it
 *                  copy-on-write checkpoints
 *   sim_restore.c  failover: spawn a restored tiber-simguest
 *   sim_disk.c     the daemon's side of the guest's disk (sim_disk.h)
 *
 * Unless said otherwise, a function here is called from the epoch
 * thread and returns 0 or -errno.
 */
#ifndef TIBER_SIM_PRIV_H
#define TIBER_SIM_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

#include "tiber/backend.h"
#include "tiber/simproto.h"
#include "copy_pool.h"

struct page_region;
struct tb_sim_ddisk;
struct tb_sim_sync;

struct tb_dom {
	struct tb_dom_cfg cfg;
	char path[108];
	int sock, pidfd, pagemap_fd, uffd;
	int ram_fd, ctrl_fd, ring_fd;
	int evtfds[TB_SIM_NR_EVTFDS];
	pid_t pid;
	uint8_t uuid[16];
	const uint8_t *ram;
	uint64_t ram_size, nr_pages, ram_gva;
	struct tb_sim_ctrl *ctrl;
	size_t ctrl_size;
	uint8_t *ring;
	uint64_t ring_size;
	enum tb_suspend_mode mode;
	bool use_uffd, suspend_cancel;
	unsigned port;	   /* bound suspend port (evtchn), 0 = none */
	bool req_by_store; /* the outstanding request went via the store */
	bool suspended;	   /* suspended (or paused) by us */
	bool need_rebind;  /* slow resume: the guest re-publishes its port */
	struct page_region *vec;
	size_t vec_len;
	struct tb_copy_pool pool;
	struct tb_sim_sync *sync;  /* uffd-wp sync tracking, or NULL */
	struct tb_sim_ddisk *disk; /* NULL: the guest has no disk */
	int disk_fds[2];	   /* from the hello, until opened */
	pthread_mutex_t st_lock;
	struct tb_dom_stats st;
	char mech[32];
};

static inline void stat_inc(struct tb_dom *d, uint64_t *ctr, uint64_t n)
{
	pthread_mutex_lock(&d->st_lock);
	*ctr += n;
	pthread_mutex_unlock(&d->st_lock);
}

static inline void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* sim.c: the guest process has exited (or is exiting). */
bool tb_sim_guest_gone(struct tb_dom *d);

/* sim_suspend.c: pick the suspend mode (cfg->suspend_mode, the static or
 * published port) and subscribe to the port; at attach, after the
 * control page is mapped.  -EINVAL with a reason. */
int tb_sim_suspend_attach(struct tb_dom *d, const struct tb_dom_cfg *cfg);
/* The request_suspend, await_suspended and resume hooks (backend.h). */
int tb_sim_request_suspend(struct tb_dom *d);
int tb_sim_await_suspended(struct tb_dom *d, int64_t deadline_ns);
int tb_sim_resume(struct tb_dom *d, bool fast);

/* sim_dirty.c: pick the mechanism (@want: auto, uffd or bitmap; NULL or
 * "" = auto), start clean.  Sets d->mech; -EINVAL (unknown @want) or
 * -ENOTSUP (not available), with a reason. */
int tb_sim_dirty_setup(struct tb_dom *d, const char *want);
/* The harvest_dirty hook (backend.h). */
int tb_sim_harvest_dirty(struct tb_dom *d, struct tb_bitmap *out);

/* sim_cow.c: start the fault thread and protect RAM (d->uffd is a sync
 * uffd); 0 or -errno, d->sync to be freed by tb_sim_sync_free either way. */
int tb_sim_sync_setup(struct tb_dom *d);
void tb_sim_sync_free(struct tb_dom *d);
int tb_sim_sync_harvest(struct tb_dom *d, struct tb_bitmap *out);
/* fills the stats' wp_faults and cow_fault_copies (any thread) */
void tb_sim_sync_stats(struct tb_dom *d, struct tb_dom_stats *st);
/* The cow_prepare, cow_arm and cow_finish hooks (backend.h). */
int tb_sim_cow_prepare(struct tb_dom *d, const uint64_t *pfns, size_t n,
		       void *dst);
int tb_sim_cow_arm(struct tb_dom *d, const uint64_t *pfns, size_t n, void *dst);
int tb_sim_cow_finish(struct tb_dom *d);

/* sim_restore.c: the restore hook (no handle; see backend.h). */
int tb_sim_restore(const struct tb_restore_req *req,
		   struct tb_restore_res *res);

#endif
