/* SPDX-License-Identifier: MIT */
/* The sim backend's side of a guest's disk (lib/backend/sim_disk.c). */
#ifndef TIBER_SIM_DISK_H
#define TIBER_SIM_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tiber/backend.h"
#include "tiber/simproto.h"

struct tb_sim_ddisk;

/* Take @ring_fd and @img_fd (closed on error too); check them against
 * the hello's sizes.  0 or -errno with a reason set. */
int tb_sim_ddisk_open(struct tb_sim_ddisk **out, int ring_fd, int img_fd,
		      uint64_t size, uint64_t ring_size, struct tb_sim_ctrl *c,
		      const int *evtfds);
void tb_sim_ddisk_close(struct tb_sim_ddisk *k);
uint64_t tb_sim_ddisk_size(const struct tb_sim_ddisk *k);
int tb_sim_ddisk_mirror(struct tb_sim_ddisk *k, bool on, uint64_t epoch);
int tb_sim_ddisk_boundary(struct tb_sim_ddisk *k, uint64_t epoch);
int tb_sim_ddisk_peek(struct tb_sim_ddisk *k, uint64_t upto,
		      struct tb_disk_jrec *w);
void tb_sim_ddisk_pop(struct tb_sim_ddisk *k, const struct tb_disk_jrec *w);
int tb_sim_ddisk_harvest(struct tb_sim_ddisk *k, struct tb_bitmap *out);
int tb_sim_ddisk_read(struct tb_sim_ddisk *k, uint64_t off, void *buf,
		      size_t len);
int tb_sim_ddisk_next_data(struct tb_sim_ddisk *k, uint64_t off,
			   uint64_t *data);

#endif
