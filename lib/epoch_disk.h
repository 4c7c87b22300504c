/* SPDX-License-Identifier: MIT */
/*
 * The epoch engine's disk mirroring (lib/epoch_disk.c), used by
 * lib/epoch.c: DISK_INFO / DISK_WRITE records from the backend's disk
 * hooks, and what a re-sync after a lost link must send.  Not installed.
 */
#ifndef TIBER_EPOCH_DISK_H
#define TIBER_EPOCH_DISK_H

#include <stdbool.h>
#include <stdint.h>

#include "tiber/backend.h"
#include "tiber/bitmap.h"
#include "tiber/stream.h"

/*
 * The backup's copy of the disks, across sessions: a copy of generation
 * @gen committed at epoch @base or later, lacking at most the 4 KiB
 * blocks in @resync.  A new session re-sends only those (DISK_INFO
 * KEEP) if the last session's FULL epoch was acked (gen != 0), else it
 * copies the whole disks under a new generation.
 */
struct tb_edisk {
	const struct tb_backend_ops *ops;
	struct tb_dom *dom;
	uint32_t nr_disks;
	uint64_t size[TB_DISKS_MAX];
	uint8_t *scratch; /* TB_DISK_LZ4_MAX */
	struct tb_bitmap resync[TB_DISKS_MAX];
	uint64_t gen;  /* 0: no usable copy at the backup */
	uint64_t base; /* the epoch that copy is at (or later) */
	bool keep;     /* this session's sync sends resync blocks only */
};

/* An extent of a journaled write, kept per unacked epoch. */
struct tb_edisk_ext {
	uint32_t disk;
	uint32_t len;
	uint64_t offset;
};

/* From @info; no memory unless the guest has disks.  0 or -errno. */
int tb_edisk_init(struct tb_edisk *k, const struct tb_backend_ops *ops,
		  struct tb_dom *dom, const struct tb_dom_info *info);
void tb_edisk_free(struct tb_edisk *k);
/* A new session's FULL epoch @epoch: start journaling; keep (re-send
 * resync only) if the backup has a usable copy, else a new generation
 * and a full copy.  What to read and send: tb_edisk_next_run(). */
int tb_edisk_start(struct tb_edisk *k, uint64_t epoch);
/* The next run (at most @max bytes) of disk @disk at or after *@off to
 * read and send: 1 with *@off, *@len; 0 when done; -errno.  Full copy:
 * extents that may hold data; keep: the blocks in resync. */
int tb_edisk_next_run(struct tb_edisk *k, unsigned disk, uint64_t *off,
		      uint64_t *len, uint64_t max);
/* The link is lost: stop journaling; what the backup may lack goes to
 * resync: the writes of unacked epochs (@next extents at @ext), what the
 * journal still holds, and (the backend's bitmap) every later write.
 * @synced: this session's FULL epoch was acked (else no usable copy);
 * @acked: the last acked epoch. */
int tb_edisk_lost(struct tb_edisk *k, const struct tb_edisk_ext *ext,
		  size_t next, bool synced, uint64_t acked);
/* FULL epoch: one DISK_INFO per disk (digested). */
int tb_edisk_infos(struct tb_edisk *k, struct tb_buf *out,
		   struct tb_digest *dg);
/* @len bytes of disk @disk at @off as DISK_WRITEs (digested); a full
 * copy (@skip_zero) does not send all-zero blocks.  *@bytes += decoded
 * bytes sent. */
int tb_edisk_encode(struct tb_edisk *k, struct tb_buf *out,
		    struct tb_digest *dg, unsigned disk, uint64_t off,
		    const uint8_t *data, uint64_t len, bool skip_zero,
		    uint64_t *bytes);
/* Every journaled write of an epoch <= @epoch, in order, as DISK_WRITEs
 * (digested); @flush(@ctx) whenever @out grows past 4 MiB.  *@writes and
 * *@bytes += what was sent; each write's extent is appended to @ext
 * (may be NULL). */
int tb_edisk_drain(struct tb_edisk *k, struct tb_buf *out, struct tb_digest *dg,
		   uint64_t epoch, int (*flush)(void *ctx), void *ctx,
		   uint64_t *writes, uint64_t *bytes, struct tb_buf *ext);

#endif
