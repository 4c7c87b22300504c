/* SPDX-License-Identifier: MIT */
/*
 * tiber-simguest's process state, shared by the files of sim/ that run
 * inside the guest, and the functions by which they call each other:
 *
 *   guest.c      boot (or restore), the main thread, stats
 *   suspend.c    the kernel thread: suspend requests, freeze/thaw, the
 *                simulated hypercall, THAW/RESTORE hooks
 *   toolstack.c  the control socket thread, hello, the pause watchdog
 *   netback.c    the output gate: tb_guest_send and the netback thread
 *   workload.c   the vCPU threads and their loops
 *   disk.c       the block device
 *
 * kv.c and the client use only guest.h.
 */
#ifndef TIBER_SIM_GUEST_PRIV_H
#define TIBER_SIM_GUEST_PRIV_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>

#include "guest.h"
#include "kv.h"

/* how long a parked vCPU or the suspend path spins before it sleeps */
#define PAUSE_SPIN_NS(g) ((int64_t)(g)->cfg.pause_spin_us * TB_NSEC_PER_USEC)

struct tb_guest_disk;

struct tb_guest {
	struct tb_guest_cfg cfg;
	int ram_fd, ctrl_fd, ring_fd, uffd;
	int evtfds[TB_SIM_NR_EVTFDS];
	uint8_t *ram;
	uint64_t ram_size, nr_pages;
	struct tb_sim_ctrl *ctrl;
	size_t ctrl_size;
	uint8_t *ring;
	uint64_t *bitmap;
	int suspend_port;
	int listen_fd;
	int wd_sock; /* to the pause watchdog */
	pid_t wd_pid;

	/* freeze/thaw */
	unsigned nr_vcpus;
	int stop_req; /* futex */
	int parked;   /* futex */
	int run_gen;  /* futex */
	int exiting;
	bool kv_relisten;
	pthread_t vcpu_thr[TB_SIM_MAX_VCPUS];
	unsigned vcpu_kind[TB_SIM_MAX_VCPUS];
	struct tb_sim_vcpu vcpu[TB_SIM_MAX_VCPUS]; /* live registers */

	pthread_mutex_t gate_lock;
	pthread_cond_t gate_room;
	struct tb_guest_kv *kv;
	struct tb_guest_disk *disk; /* NULL: no --disk */

	pthread_t kernel_thr, tool_thr, netback_thr;
	volatile sig_atomic_t want_stats;
	int quiesced; /* SIGUSR2: the workload stops writing for good */
	int64_t t_boot;
};

/* sim/workload.c: start one thread per vCPU (vcpu_kind[]); *@started
 * counts the threads running, to be joined even on error.  0 or -errno. */
int tb_guest_vcpus_start(struct tb_guest *g, unsigned *started);

/* sim/netback.c: the netback thread (pthread start routine, @arg = g):
 * transmits released output until the guest exits. */
void *tb_guest_netback_main(void *arg);

/* sim/toolstack.c: bind and listen on the control socket @path (an old
 * socket file is replaced): the fd, or -errno. */
int tb_guest_make_listener(const char *path);
/* Fork the pause watchdog (g->wd_sock, g->wd_pid).  0 or -errno. */
int tb_guest_start_watchdog(struct tb_guest *g);
/* The toolstack thread (pthread start routine, @arg = g): serves
 * g->listen_fd until the guest exits. */
void *tb_guest_tool_main(void *arg);
/* guest.c: a fresh uffd registered for sync write-protect, or -errno. */
int tb_guest_uffd_sync_open(struct tb_guest *g);

/* sim/suspend.c: park vCPU @t (a suspend was requested) until thawed. */
void tb_guest_park(struct tb_guest *g, unsigned t);
/* Release the parked vCPUs (end of a suspend, or exit). */
void tb_guest_thaw(struct tb_guest *g);
/* Allocate the suspend port and publish it (store, or static port).
 * 0 or -errno. */
int tb_guest_publish_port(struct tb_guest *g);
/* RESTORE: verify RAM (and a durable KV guest's disk); prints the result
 * and sets ctrl->last_verify_ok. */
void tb_guest_verify_self(struct tb_guest *g);
/* The kernel thread (pthread start routine, @arg = g): answers suspend
 * requests, prints stats, until the guest exits. */
void *tb_guest_kernel_main(void *arg);

/* sim/guest.c: the counters, one line (or JSON for --stats-file). */
void tb_guest_print_stats(struct tb_guest *g, FILE *f, bool json);

/* sim/disk.c: the block device (--disk).  open: 0 or -errno (message
 * printed); the others are no-ops without a disk. */
int tb_guest_disk_open(struct tb_guest *g);
void tb_guest_disk_close(struct tb_guest *g);
/* The daemon hung up: stop mirroring, wake a writer waiting for room. */
void tb_guest_disk_detached(struct tb_guest *g);
/* A suspend is requested: wake a writer waiting for room so it parks. */
void tb_guest_disk_wake(struct tb_guest *g);
/* Check the durable KV log on the disk against RAM. */
int tb_guest_disk_verify(struct tb_guest *g, struct tb_sim_verify_report *rep);
/* hello: the fds to pass (journal memfd, image) and sizes. */
int tb_guest_disk_fds(struct tb_guest *g, int *fds, uint64_t *size,
		      uint64_t *ring_size);

#endif
