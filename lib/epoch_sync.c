// SPDX-License-Identifier: MIT
/*
 * The epoch engine's first sync, on every (re)connection: one FULL epoch
 * made of an EPOCH_BEGIN (with the disks' DISK_INFO), a full copy of
 * memory while the guest runs, a few rounds of what it dirtied
 * meanwhile, the disks' contents (all of them, or after a lost link only
 * the blocks the backup may lack), and one paused round that closes it.
 *
 * Invariants:
 * - Dirty tracking restarts before the full copy, so a page written
 *   after it was copied goes again, in a later round or the paused one.
 * - The disks' writes are journaled from the start of the FULL epoch,
 *   before their contents are read, and the sender does the reads: every
 *   write made after a read is sent after it.
 * - The FULL epoch stays open on the wire until its paused round succeeds
 *   (later ticks retry it) or the link is lost; a failed sync marks the
 *   link lost, which ends the open epoch.
 * - The pre-copy waits for a free chunk buffer with the guest running.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "tiber/log.h"
#include "epoch_priv.h"

/* Wait for a free chunk buffer while the guest runs. */
static struct job *get_chunk(struct tb_engine *e)
{
	struct job *j = NULL;
	unsigned i;

	pthread_mutex_lock(&e->lock);
	while (!e->link_lost && !atomic_load(&e->stopping)) {
		for (i = 0; i < NR_CHUNKS && !j; i++)
			if (!e->chunks[i].busy)
				j = &e->chunks[i];
		if (j)
			break;
		pthread_cond_wait(&e->cond, &e->lock);
	}
	pthread_mutex_unlock(&e->lock);
	return j;
}

/* Pre-copy @k more pages: progress for status, a log line every 5 s. */
static void sync_progress(struct tb_engine *e, uint64_t k)
{
	int64_t now = tb_now_ns();
	uint64_t done, total;
	double secs;

	pthread_mutex_lock(&e->lock);
	e->sync_done += k;
	done = e->sync_done;
	total = e->sync_total;
	pthread_mutex_unlock(&e->lock);
	if (now - e->sync_t_log < 5 * TB_NSEC_PER_SEC)
		return;
	e->sync_t_log = now;
	secs = (double)(now - e->sync_t0) / 1e9;
	tb_info("dom=%u first sync: %" PRIu64 "/%" PRIu64
		" pages (%.0f%%, %.0f MB), %.1f MB/s, ETA %.0f s",
		e->info.domid, done, total,
		100.0 * (double)done / (double)total,
		(double)done * TB_PAGE_SIZE / 1e6,
		(double)done * TB_PAGE_SIZE / 1e6 / secs,
		tb_eng_sync_eta(secs, done, total));
}

/* Send @n pfns of @list as pre-copy chunks (guest running). */
static int precopy_pages(struct tb_engine *e, uint64_t epoch,
			 const uint64_t *list, size_t n)
{
	size_t done, k;
	struct job *c;
	int rc;

	for (done = 0; done < n; done += k) {
		c = get_chunk(e);
		if (!c)
			return -ECONNRESET;
		k = TB_MIN((size_t)CHUNK_PAGES, n - done);
		memcpy(c->pfns, list + done, k * sizeof(*list));
		c->n = k;
		c->type = JOB_CHUNK;
		c->epoch = epoch;
		c->full = true;
		memset(&c->rec, 0, sizeof(c->rec));
		rc = e->cfg.ops->copy_pages(e->dom, c->pfns, k, c->pages);
		if (rc) {
			tb_err_rc(rc, "dom=%u pre-copy: %s", e->info.domid,
				  tb_backend_reason());
			return rc;
		}
		tb_eng_queue_push(e, c);
		sync_progress(e, k);
	}
	return 0;
}

int tb_eng_finish_full(struct tb_engine *e)
{
	int rc = tb_eng_checkpoint(e, e->full_pending, e->held_suspended);

	if (!rc) {
		e->full_pending = NULL;
		e->held_suspended = false;
	}
	return rc;
}

/* Log what the disks' sync sends; count it in the sync's total. */
static void disk_sync_plan(struct tb_engine *e)
{
	uint64_t blocks = 0;
	unsigned d;

	for (d = 0; d < e->edisk.nr_disks; d++)
		blocks += e->edisk.keep ? tb_bitmap_count(&e->edisk.resync[d]) :
					  e->edisk.size[d] / TB_PAGE_SIZE;
	if (e->edisk.keep)
		tb_info("dom=%u disks: re-sync of %" PRIu64
			" blocks changed since epoch %" PRIu64,
			e->info.domid, blocks, e->edisk.base);
	else
		tb_info("dom=%u disks: full copy (%" PRIu64 " MiB)",
			e->info.domid, blocks * TB_PAGE_SIZE >> 20);
	e->disk_sync_pages = blocks;
}

/*
 * First sync of the disks: one JOB_DISK per chunk that may hold data
 * (holes read as zero, and a FULL image is zero where nothing was sent).
 * The sender reads them.
 */
static int precopy_disks(struct tb_engine *e, uint64_t epoch)
{
	const uint64_t step = (uint64_t)CHUNK_PAGES * TB_PAGE_SIZE;
	uint64_t off, len = 0, prev;
	struct job *c;
	unsigned d;
	int rc;

	for (d = 0; d < e->edisk.nr_disks; d++) {
		for (off = prev = 0;; prev = off += len) {
			rc = tb_edisk_next_run(&e->edisk, d, &off, &len, step);
			if (rc < 0) {
				tb_err_rc(rc, "dom=%u first sync: disk %u",
					  e->info.domid, d);
				return rc;
			}
			if (!rc)
				break;
			if (!e->edisk.keep) /* holes count as done */
				sync_progress(e, (off - prev) / TB_PAGE_SIZE);
			c = get_chunk(e);
			if (!c)
				return -ECONNRESET;
			memset(&c->rec, 0, sizeof(c->rec));
			c->type = JOB_DISK;
			c->epoch = epoch;
			c->full = true;
			c->disk = d;
			c->doff = off;
			c->n = (size_t)len;
			tb_eng_queue_push(e, c);
			sync_progress(e, len / TB_PAGE_SIZE);
		}
	}
	return 0;
}

/*
 * First sync: a full copy while the guest runs, a few rounds of what it
 * dirtied meanwhile, then one paused round that closes the FULL epoch.
 * Disks: from now on every write is journaled (and sent in this epoch),
 * then their contents are read.
 */
int tb_eng_first_sync(struct tb_engine *e, int64_t t_tick)
{
	const struct tb_backend_ops *ops = e->cfg.ops;
	struct job *begin, *final;
	uint64_t epoch, i, n;
	unsigned round;
	int rc;

	pthread_mutex_lock(&e->lock);
	e->state = TB_ENG_SYNCING;
	pthread_mutex_unlock(&e->lock);
	e->full_pages_sent = e->full_bytes_sent = 0;
	final = tb_eng_free_slot(e);
	if (!final)
		return -EBUSY;
	tb_eng_slot_reset(e, final, true, t_tick);
	epoch = final->epoch;
	begin = get_chunk(e);
	if (!begin) {
		tb_eng_slot_unreserve(e, final);
		return -ECONNRESET;
	}
	memset(&begin->rec, 0, sizeof(begin->rec));
	begin->type = JOB_BEGIN_FULL;
	begin->epoch = epoch;
	begin->full = true;
	begin->n = 0;
	if (e->edisk.nr_disks) {
		rc = tb_edisk_start(&e->edisk, epoch);
		if (rc) {
			tb_err_rc(rc, "dom=%u disk journal: %s", e->info.domid,
				  tb_backend_reason());
			tb_eng_slot_unreserve(e, final);
			return rc;
		}
		disk_sync_plan(e);
	}
	tb_eng_queue_push(e, begin);

	/* Round 0: every page; tracking restarts now. */
	tb_bitmap_clear_all(&e->scratch);
	rc = ops->harvest_dirty(e->dom, &e->scratch);
	if (rc)
		return rc;
	tb_bitmap_clear_all(&e->dirty);
	for (i = 0; i < e->info.nr_pages; i++)
		e->pfn_list[i] = i;
	pthread_mutex_lock(&e->lock);
	e->sync_done = 0;
	e->sync_total = e->info.nr_pages;
	e->sync_total += e->disk_sync_pages;
	pthread_mutex_unlock(&e->lock);
	e->sync_t0 = e->sync_t_log = tb_now_ns();
	rc = precopy_pages(e, epoch, e->pfn_list, e->info.nr_pages);
	if (!rc)
		rc = precopy_disks(e, epoch);
	for (round = 1;
	     !rc && round < e->cfg.precopy_rounds && !e->held_suspended;
	     round++) {
		rc = ops->harvest_dirty(e->dom, &e->dirty);
		if (rc)
			break;
		n = tb_bitmap_to_list(&e->dirty, e->pfn_list, e->info.nr_pages);
		if (n < CHUNK_PAGES / 4)
			break; /* little left: the paused round takes it */
		tb_bitmap_clear_all(&e->dirty);
		pthread_mutex_lock(&e->lock);
		e->sync_total += n; /* what the guest dirtied meanwhile */
		pthread_mutex_unlock(&e->lock);
		rc = precopy_pages(e, epoch, e->pfn_list, n);
	}
	if (rc) {
		tb_err_rc(rc, "dom=%u first sync", e->info.domid);
		tb_eng_slot_unreserve(e, final);
		/* the open FULL epoch dies with the link */
		tb_eng_mark_lost(e);
		return rc;
	}
	/* The paused round that closes the epoch runs now and, if the
	 * guest does not suspend in time, on later ticks: the epoch stays
	 * open on the wire until it succeeds or the link is lost. */
	e->full_pending = final;
	return tb_eng_finish_full(e);
}
