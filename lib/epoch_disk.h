/* SPDX-License-Identifier: MIT */
/*
 * The epoch engine's disk mirroring (lib/epoch_disk.c), used by
 * lib/epoch.c: DISK_INFO / DISK_WRITE records from the backend's disk
 * hooks.  Not installed.
 */
#ifndef TIBER_EPOCH_DISK_H
#define TIBER_EPOCH_DISK_H

#include <stdbool.h>
#include <stdint.h>

#include "tiber/backend.h"
#include "tiber/stream.h"

struct tb_edisk {
	const struct tb_backend_ops *ops;
	struct tb_dom *dom;
	uint32_t nr_disks;
	uint64_t size[TB_DISKS_MAX];
	uint8_t *scratch; /* TB_DISK_LZ4_MAX */
};

/* From @info; no memory unless the guest has disks.  0 or -errno. */
int tb_edisk_init(struct tb_edisk *k, const struct tb_backend_ops *ops,
		  struct tb_dom *dom, const struct tb_dom_info *info);
void tb_edisk_free(struct tb_edisk *k);
/* FULL epoch: one DISK_INFO per disk (digested). */
int tb_edisk_infos(struct tb_edisk *k, struct tb_buf *out,
		   struct tb_digest *dg);
/* @len bytes of disk @disk at @off as DISK_WRITEs (digested); in a FULL
 * epoch (@skip_zero) all-zero pieces are not sent.  *@bytes += decoded
 * bytes sent. */
int tb_edisk_encode(struct tb_edisk *k, struct tb_buf *out,
		    struct tb_digest *dg, unsigned disk, uint64_t off,
		    const uint8_t *data, uint64_t len, bool skip_zero,
		    uint64_t *bytes);
/* Every journaled write of an epoch <= @epoch, in order, as DISK_WRITEs
 * (digested); @flush(@ctx) whenever @out grows past 4 MiB.  *@writes and
 * *@bytes += what was sent. */
int tb_edisk_drain(struct tb_edisk *k, struct tb_buf *out, struct tb_digest *dg,
		   uint64_t epoch, int (*flush)(void *ctx), void *ctx,
		   uint64_t *writes, uint64_t *bytes);

#endif
