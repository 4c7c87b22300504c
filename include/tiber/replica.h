/* SPDX-License-Identifier: MIT */
/*
 * The backup's replica of one protected domain: guest memory in a memfd
 * plus the latest CPU/device state, always exactly the last committed
 * (acked) epoch.  Records of an epoch are staged and applied only when
 * EPOCH_END arrives and verifies (page count, byte count, digest); any
 * error discards the staged epoch whole.  Input is hostile.
 */
#ifndef TIBER_REPLICA_H
#define TIBER_REPLICA_H

#include <stdbool.h>
#include <stdint.h>

#include "tiber/bitmap.h"
#include "tiber/common.h"
#include "tiber/stream.h"

struct tb_replica {
	struct tb_hello hello; /* the primary's */
	uint64_t nr_pages;
	int mem_fd; /* committed memory */
	uint8_t *mem;
	bool have_commit;
	uint64_t committed_epoch;
	uint64_t commits;
	struct tb_buf cpu_state, dev_state;
	uint32_t state_tag;

	/* staging of the epoch in progress */
	bool in_epoch;
	uint64_t epoch;
	bool full;
	int full_fd; /* FULL epoch: a fresh memory image */
	uint8_t *full_mem;
	uint64_t *st_pfns; /* incremental: staged pages */
	uint8_t *st_pages;
	uint64_t st_n;
	struct tb_bitmap st_seen;
	struct tb_buf st_cpu, st_dev;
	bool st_have_cpu, st_have_dev;
	uint64_t st_pages_count, st_bytes;
	struct tb_digest digest;
	uint64_t discarded; /* epochs thrown away */

	char err[256];
};

/* Set up for the primary's @hello (nr_pages, page size checked).
 * 0 or -errno with r->err. */
int tb_replica_init(struct tb_replica *r, const struct tb_hello *hello);
/*
 * Take one order-checked record of the primary's stream.
 * 0: staged (or ignored: HEARTBEAT); 1: the epoch in r->committed_epoch
 * was verified and applied (send ACK); <0: -errno with a stream error
 * code in *@serr and r->err: the staged epoch was discarded, the
 * committed replica is untouched.
 */
int tb_replica_rec(struct tb_replica *r, const struct tb_rec *rec, int *serr);
/* Drop a partial epoch (primary gone mid-epoch). */
void tb_replica_abort(struct tb_replica *r);
void tb_replica_free(struct tb_replica *r);

#endif
