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

/*
 * The replica's disks (lib/replica_disk.c): each committed image is a
 * file <dir>/<guest>.disk<N>.img.  A FULL epoch builds new images
 * (<...>.img.new, renamed at commit); an incremental epoch's writes go
 * to an unnamed spool file, applied in order at commit.  Memory is
 * bounded by the spool index, never by the disk size.
 */
struct tb_rdisk_ent {
	uint32_t disk;
	uint32_t len;
	uint64_t offset;
	uint64_t spool_off; /* UINT64_MAX: zeroes */
};
struct tb_rdisks {
	char dir[200];		     /* "" : disks not accepted */
	char base[48];		     /* file name prefix, from the guest name */
	uint64_t size[TB_DISKS_MAX]; /* committed; 0: no disk */
	int fd[TB_DISKS_MAX];
	uint64_t gen[TB_DISKS_MAX];	/* committed copy's generation */
	uint64_t st_size[TB_DISKS_MAX]; /* FULL epoch: DISK_INFO */
	uint64_t st_gen[TB_DISKS_MAX];
	bool st_keep[TB_DISKS_MAX]; /* FULL epoch: re-sync of the copy */
	int st_fd[TB_DISKS_MAX];    /* FULL epoch: the new image */
	bool full;
	int spool_fd;
	uint64_t spool_len, spool_max;
	uint64_t max_size; /* a disk larger than this is refused; 0: any */
	struct tb_rdisk_ent *ents;
	size_t n, cap;
	uint8_t *buf;		/* TB_DISK_WRITE_MAX: one decoded write */
	bool broken;		/* a commit failed half way: images unusable */
	uint64_t writes, bytes; /* staged in the open epoch */
	char err[200];
};

/* @dir: NULL or "" for no disks.  0 or -errno with s->err. */
int tb_rdisks_init(struct tb_rdisks *s, const char *dir, const char *guest,
		   uint64_t spool_max);
void tb_rdisks_free(struct tb_rdisks *s);
/* Staging, called by lib/replica.c: 0 or a stream error code (TB_SERR_*)
 * with the reason in s->err; commit: 0 or -errno (s->broken if the
 * committed images were touched). */
int tb_rdisks_begin(struct tb_rdisks *s, bool full);
int tb_rdisks_info(struct tb_rdisks *s, const struct tb_disk_info *i,
		   uint64_t committed_epoch, struct tb_digest *dg);
int tb_rdisks_write(struct tb_rdisks *s, const struct tb_disk_write *w,
		    struct tb_digest *dg);
int tb_rdisks_commit(struct tb_rdisks *s);
void tb_rdisks_abort(struct tb_rdisks *s);
/* Path of committed disk @disk into @buf. */
void tb_rdisks_path(const struct tb_rdisks *s, unsigned disk, char *buf,
		    size_t len);

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
	/* incremental: pages decoded in place in @mem (XOR encodings, which
	 * XORing again undoes), with a copy of their payloads, so an epoch
	 * that fails is taken back out without a copy of every page in and
	 * out of staging on the way to a commit */
	struct tb_undo {
		uint64_t pfn;
		uint32_t off, len; /* payload in un_payload */
		uint8_t enc;
	} * un;
	uint64_t un_n;
	struct tb_buf un_payload;
	struct tb_bitmap st_seen;
	struct tb_buf st_cpu, st_dev;
	bool st_have_cpu, st_have_dev;
	uint64_t st_pages_count, st_bytes;
	struct tb_digest digest;
	uint64_t discarded; /* epochs thrown away */
	struct tb_rdisks disks;

	char err[256];
};

/* Set up for the primary's @hello (nr_pages, page size checked).
 * 0 or -errno with r->err. */
int tb_replica_init(struct tb_replica *r, const struct tb_hello *hello);
/* The features agreed with this connection's primary (its HELLO's, as
 * far as we know them): how its epochs' digests are computed.  Called
 * by tb_replica_init with @hello's; again for each new connection. */
void tb_replica_set_features(struct tb_replica *r, uint64_t features);
/* Accept disks: images in @dir (after tb_replica_init). */
int tb_replica_disks(struct tb_replica *r, const char *dir, uint64_t spool_max);
/*
 * Take one order-checked record of the primary's stream.
 * 0: staged (or ignored: HEARTBEAT); 1: the epoch in r->committed_epoch
 * was verified and applied (send ACK); <0: -errno with a stream error
 * code in *@serr and r->err: the staged epoch was discarded, the
 * committed replica is as it was.  Between two calls of an epoch @mem
 * holds the committed image plus the epoch's XOR pages: only the
 * thread that feeds the records may look at it until the epoch commits
 * or tb_replica_abort() takes them out again.
 */
int tb_replica_rec(struct tb_replica *r, const struct tb_rec *rec, int *serr);
/* Drop a partial epoch (primary gone mid-epoch): @mem is the last
 * committed image again. */
void tb_replica_abort(struct tb_replica *r);
void tb_replica_free(struct tb_replica *r);

#endif
