// SPDX-License-Identifier: MIT
/*
 * The epoch engine's disk records (sender side): a FULL epoch's DISK_INFO
 * and the disks' contents read while the guest runs (all of them, or
 * after a lost link only the blocks the backup may lack), then every
 * epoch's journaled writes, in the order the guest made them.
 *
 * Invariants: writes are sent in journal order and popped only once
 * encoded into the send buffer; a write is in the epoch its backend
 * tagged it with, or the first later one sent.  Every write the backup
 * may lack is, at any time, in the journal, in an unacked epoch's
 * extents, or in a resync bitmap (the engine's or the backend's).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>

#include "epoch_disk.h"

#define FLUSH_AT (4u << 20)
#define BLK	 TB_PAGE_SIZE

int tb_edisk_init(struct tb_edisk *k, const struct tb_backend_ops *ops,
		  struct tb_dom *dom, const struct tb_dom_info *info)
{
	unsigned i;
	int rc;

	memset(k, 0, sizeof(*k));
	k->ops = ops;
	k->dom = dom;
	k->nr_disks = TB_MIN(info->nr_disks, TB_DISKS_MAX);
	for (i = 0; i < k->nr_disks; i++)
		k->size[i] = info->disk_size[i];
	if (!k->nr_disks)
		return 0;
	if (!ops->disk_mirror || !ops->disk_boundary || !ops->disk_peek ||
	    !ops->disk_pop || !ops->disk_read || !ops->disk_next_data ||
	    !ops->disk_harvest)
		return -ENOTSUP;
	for (i = 0; i < k->nr_disks; i++) {
		rc = tb_bitmap_init(&k->resync[i],
				    (k->size[i] + BLK - 1) / BLK);
		if (rc)
			return rc;
	}
	k->scratch = malloc(TB_DISK_LZ4_MAX);
	return k->scratch ? 0 : -ENOMEM;
}

void tb_edisk_free(struct tb_edisk *k)
{
	unsigned i;

	for (i = 0; i < TB_DISKS_MAX; i++)
		tb_bitmap_free(&k->resync[i]);
	free(k->scratch);
	k->scratch = NULL;
}

static void mark(struct tb_edisk *k, uint32_t disk, uint64_t off, uint64_t len)
{
	if (disk < k->nr_disks && len)
		tb_bitmap_set_range(&k->resync[disk], off / BLK,
				    (off + len - 1) / BLK - off / BLK + 1);
}

static uint64_t new_gen(void)
{
	uint64_t g = 0;

	while (!g)
		if (getrandom(&g, sizeof(g), 0) != sizeof(g))
			g = (uint64_t)tb_now_ns() ^ ((uint64_t)getpid() << 40);
	return g;
}

int tb_edisk_start(struct tb_edisk *k, uint64_t epoch)
{
	unsigned i;
	int rc;

	if (!k->nr_disks)
		return 0;
	k->keep = k->gen && k->base;
	/* journal first, then what was written before (the bitmap): a
	 * write is in one or the other, never in neither */
	rc = k->ops->disk_mirror(k->dom, true, epoch);
	for (i = 0; !rc && i < k->nr_disks; i++)
		rc = k->ops->disk_harvest(k->dom, i, &k->resync[i]);
	if (rc)
		return rc;
	if (!k->keep) {
		k->gen = new_gen();
		for (i = 0; i < k->nr_disks; i++)
			tb_bitmap_clear_all(&k->resync[i]);
	}
	return 0;
}

int tb_edisk_next_run(struct tb_edisk *k, unsigned disk, uint64_t *off,
		      uint64_t *len, uint64_t max)
{
	struct tb_bitmap *bm = &k->resync[disk];
	uint64_t b, e, data;
	int rc;

	if (*off >= k->size[disk])
		return 0;
	if (!k->keep) {
		rc = k->ops->disk_next_data(k->dom, disk, *off, &data);
		if (rc == -ENXIO)
			return 0;
		if (rc)
			return rc;
		*off = data - data % max;
		*len = TB_MIN(max, k->size[disk] - *off);
		return 1;
	}
	/* the bits are cleared as they are handed out: a session that
	 * dies before its FULL epoch is acked copies everything next */
	b = tb_bitmap_next(bm, *off / BLK);
	if (b >= bm->nbits)
		return 0;
	for (e = b;
	     e < bm->nbits && (e - b) * BLK < max && tb_bitmap_test(bm, e); e++)
		tb_bitmap_clear(bm, e);
	*off = b * BLK;
	*len = TB_MIN((e - b) * BLK, k->size[disk] - *off);
	return 1;
}

int tb_edisk_lost(struct tb_edisk *k, const struct tb_edisk_ext *ext,
		  size_t next, bool synced, uint64_t acked)
{
	struct tb_disk_jrec w;
	size_t i;
	int rc;

	if (!k->nr_disks)
		return 0;
	rc = k->ops->disk_mirror(k->dom, false, 0);
	for (i = 0; i < next; i++)
		mark(k, ext[i].disk, ext[i].offset, ext[i].len);
	while (!rc && (rc = k->ops->disk_peek(k->dom, UINT64_MAX, &w)) == 1) {
		mark(k, w.disk, w.offset, w.len);
		k->ops->disk_pop(k->dom, &w);
		rc = 0;
	}
	if (!synced || rc < 0)
		k->gen = 0; /* no usable copy: the next sync copies it all */
	k->base = acked;
	return rc < 0 ? rc : 0;
}

int tb_edisk_infos(struct tb_edisk *k, struct tb_buf *out, struct tb_digest *dg)
{
	unsigned i;
	int rc;

	for (i = 0; i < k->nr_disks; i++) {
		struct tb_disk_info di = { .disk = i,
					   .flags = k->keep ? TB_DISK_KEEP : 0,
					   .size = k->size[i],
					   .gen = k->gen,
					   .base_epoch = k->keep ? k->base :
								   0 };

		rc = tb_enc_disk_info(out, &di);
		if (rc)
			return rc;
		tb_digest_disk_info(dg, &di);
	}
	return 0;
}

static bool zero(const uint8_t *p, size_t n)
{
	return !n || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}

/* One write of @len bytes (all zero: a ZERO write), digested. */
static int put(struct tb_edisk *k, struct tb_buf *out, struct tb_digest *dg,
	       unsigned disk, uint64_t off, const uint8_t *data, uint32_t len,
	       uint64_t *bytes)
{
	const uint8_t *p = !data || zero(data, len) ? NULL : data;
	int rc = tb_enc_disk_write(out, disk, off, p, len, k->scratch);

	if (!rc) {
		tb_digest_disk_write(dg, disk, off, p, len);
		*bytes += len;
	}
	return rc;
}

int tb_edisk_encode(struct tb_edisk *k, struct tb_buf *out,
		    struct tb_digest *dg, unsigned disk, uint64_t off,
		    const uint8_t *data, uint64_t len, bool skip_zero,
		    uint64_t *bytes)
{
	uint64_t done, run, blk;
	uint32_t n;
	int rc;

	if (!skip_zero) {
		for (done = 0; done < len; done += n) {
			n = (uint32_t)TB_MIN(len - done,
					     (uint64_t)TB_DISK_WRITE_MAX);
			rc = put(k, out, dg, disk, off + done,
				 data ? data + done : NULL, n, bytes);
			if (rc)
				return rc;
		}
		return 0;
	}
	/* A FULL epoch's image is zero where nothing is sent: send only
	 * runs of non-zero 4 KiB blocks (a sparse disk stays sparse). */
	for (done = 0; done < len; done = run) {
		blk = TB_MIN(len - done, (uint64_t)TB_PAGE_SIZE);
		if (zero(data + done, blk)) {
			run = done + blk;
			continue;
		}
		for (run = done + blk;
		     run < len && run - done < TB_DISK_WRITE_MAX; run += blk) {
			blk = TB_MIN(len - run, (uint64_t)TB_PAGE_SIZE);
			if (zero(data + run, blk))
				break;
		}
		rc = put(k, out, dg, disk, off + done, data + done,
			 (uint32_t)(run - done), bytes);
		if (rc)
			return rc;
	}
	return 0;
}

int tb_edisk_drain(struct tb_edisk *k, struct tb_buf *out, struct tb_digest *dg,
		   uint64_t epoch, int (*flush)(void *ctx), void *ctx,
		   uint64_t *writes, uint64_t *bytes, struct tb_buf *ext)
{
	struct tb_edisk_ext x;
	struct tb_disk_jrec w;
	int rc;

	if (!k->nr_disks)
		return 0;
	for (;;) {
		rc = k->ops->disk_peek(k->dom, epoch, &w);
		if (rc <= 0)
			return rc;
		if (w.disk >= k->nr_disks)
			return -EPROTO;
		rc = tb_edisk_encode(k, out, dg, w.disk, w.offset, w.data,
				     w.len, false, bytes);
		if (!rc && ext) {
			x.disk = w.disk;
			x.len = w.len;
			x.offset = w.offset;
			rc = tb_buf_append(ext, &x, sizeof(x));
		}
		if (rc)
			return rc;
		k->ops->disk_pop(k->dom, &w);
		(*writes)++;
		if (out->len >= FLUSH_AT) {
			rc = flush(ctx);
			if (rc)
				return rc;
		}
	}
}
