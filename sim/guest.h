/* SPDX-License-Identifier: MIT */
/* tiber-simguest internals: the simulated guest process (sim/). */
#ifndef TIBER_SIM_GUEST_H
#define TIBER_SIM_GUEST_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "tiber/simproto.h"

enum tb_guest_workload {
	TB_GUEST_IDLE = 0,
	TB_GUEST_SYNTHETIC = 1,
	TB_GUEST_KV = 2,
	TB_GUEST_MIXED = 3, /* kv + synthetic threads */
	TB_GUEST_DISKW = 4, /* vCPU kind only: the disk writer */
};

enum tb_guest_pattern {
	TB_GUEST_UNIFORM = 0,
	TB_GUEST_HOTSET = 1,
	TB_GUEST_SEQUENTIAL = 2,
};

struct tb_guest_cfg {
	uint64_t ram_size;
	bool hugepages;
	const char *socket;
	int static_port; /* > 0: dom0less port */
	bool no_suspend_cancel;
	bool ignore_suspend;	/* test: never answer suspend requests */
	const char *dirty_mech; /* auto | uffd | uffd-sync | bitmap */
	unsigned workload;
	uint64_t dirty_rate; /* pages/s over all threads; 0 = flat out */
	uint64_t wss;	     /* bytes; 0 = all data pages */
	unsigned pattern;
	unsigned content;
	unsigned threads;
	const char *kv_listen;
	uint64_t gate_ring;
	const char *disk;     /* image file, or NULL: no block device */
	uint64_t disk_size;   /* create/extend the image to this (0: as is) */
	uint64_t disk_ring;   /* journal ring bytes */
	uint64_t disk_writes; /* a disk writer vCPU: 4 KiB writes/s
				 (UINT64_MAX: flat out; 0: none) */
	const char *stats_file;
	unsigned stats_interval_s;
	/* parked vCPUs and the suspend path spin this long before they
	 * sleep (0: a suspended guest uses no CPU, as a Xen domain) */
	uint32_t pause_spin_us;
	const char *name;
	const char *uuid; /* NULL: none until a tiberd protects it */
	uint32_t domid;
	/* restore */
	bool restore;
	int ram_fd;
	int state_fd;
	const char *state_file;
	int ready_fd; /* write one byte here once running */
};

struct tb_guest;

/* Boot (or restore) and run until SIGTERM/SIGINT.  Returns the exit
 * status. */
int tb_guest_main(const struct tb_guest_cfg *cfg);

/* Services of the guest (its KV service gets them as struct tb_kv_host). */
void *tb_guest_ram(struct tb_guest *g);
void tb_guest_mark(uint64_t pfn, void *g);
/* Queue output through the gate (blocks for room; parks at a safepoint
 * while it waits if a suspend is requested). */
int tb_guest_send(struct tb_guest *g, uint32_t conn, const void *p,
		  uint32_t len);
/* The block device (sim/disk.c).  write: @len bytes (whole 512-byte
 * sectors) at @off reach the image, then the journal; returns once the
 * write is complete (0) or -errno.  vCPU @t parks there if a suspend is
 * requested while it waits for journal room (nothing written yet). */
bool tb_guest_has_disk(struct tb_guest *g);
uint64_t tb_guest_disk_size(struct tb_guest *g);
int tb_guest_disk_write(struct tb_guest *g, unsigned t, uint64_t off,
			const void *p, uint32_t len);
int tb_guest_disk_read(struct tb_guest *g, uint64_t off, void *p, uint32_t len);
/* Writes and bytes written so far (0 without a disk). */
void tb_guest_disk_stats(struct tb_guest *g, uint64_t *writes, uint64_t *bytes);
/* The vCPU index of the KV service thread. */
unsigned tb_guest_kv_vcpu(struct tb_guest *g);
/* Safepoint check for a workload thread (vcpu index @t). */
void tb_guest_safepoint(struct tb_guest *g, unsigned t);
bool tb_guest_exiting(struct tb_guest *g);

/* The self-bench (sim/simbench.c). */
int tb_simbench_main(unsigned cycles);

#endif
