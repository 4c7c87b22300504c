// SPDX-License-Identifier: MIT
/*
 * The epoch engine's sender thread: it takes the jobs the tick thread
 * queues (a first sync's EPOCH_BEGIN, pre-copy chunks and disk chunks;
 * checkpoints), encodes them (PAGE_DATA through the codec, CPU and device
 * state, DISK_INFO and the journaled DISK_WRITEs, EPOCH_END with the
 * digest) and sends them; heartbeats when it has nothing else to send.
 *
 * Invariants:
 * - The sender encodes epochs in order and keeps a shadow of every page
 *   the backup holds, so XOR deltas match the backup's previous copy.
 * - Every page, state blob and disk write of an epoch goes into its
 *   digest in the order sent; its EPOCH_END carries the digest.
 * - Encoding waits while a checkpoint pauses the guest (yield_to_pause),
 *   except in send-while-paused mode, where the send is the pause.
 * - Every send holds send_lock, so a goodbye is written only between
 *   whole records.
 * - A failed send marks the link lost and ends the thread.  A job is
 *   handed back (sent, send_rc) under e->lock: chunk buffers at once,
 *   checkpoint slots only when acked or dropped.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "tiber/log.h"
#include "tiber/stream.h"
#include "epoch_priv.h"

int tb_eng_flush_send(struct tb_engine *e, struct tb_epoch_rec *rec)
{
	int rc;

	if (!e->sendbuf.len)
		return 0;
	pthread_mutex_lock(&e->send_lock);
	rc = tb_conn_send(e->conn, e->sendbuf.data, e->sendbuf.len,
			  deadline_in(e->cfg.lag_limit_ns));
	pthread_mutex_unlock(&e->send_lock);
	if (rec)
		rec->wire_bytes += e->sendbuf.len;
	tb_buf_reset(&e->sendbuf);
	return rc;
}

/*
 * The pause should have the CPUs to itself (it copies with 2 threads):
 * compression of an earlier epoch waits while a checkpoint suspends,
 * copies and resumes the guest.  (Not in send-while-paused mode, where
 * the send is part of the pause.)
 */
static void yield_to_pause(struct tb_engine *e)
{
	if (!atomic_load(&e->pausing))
		return;
	pthread_mutex_lock(&e->lock);
	while (atomic_load(&e->pausing) && !e->link_lost)
		pthread_cond_wait(&e->cond, &e->lock);
	pthread_mutex_unlock(&e->lock);
}

struct flush_ctx {
	struct tb_engine *e;
	struct tb_epoch_rec *rec;
};

static int flush_only(void *arg)
{
	struct flush_ctx *f = arg;

	return tb_eng_flush_send(f->e, f->rec);
}

static void yield_cb(void *arg)
{
	yield_to_pause(((struct flush_ctx *)arg)->e);
}

/* Encode pages of @j into PAGE_DATA records, sending each when full. */
static int send_pages(struct tb_engine *e, struct job *j,
		      struct tb_epoch_rec *rec, bool raw_only)
{
	struct tb_codec_opts raw = { .compress = false,
				     .xor_delta = false,
				     .accel = 1 };
	struct flush_ctx f = { e, rec };
	struct tb_epoch_enc_io io = { .out = &e->sendbuf,
				      .digest = &e->digest,
				      .flush = flush_only,
				      .yield = raw_only ? NULL : yield_cb,
				      .ctx = &f };
	struct tb_codec_stats st = { 0 };
	size_t i;
	int rc;

	if (!j->n)
		return 0;
	rc = tb_epoch_enc_run(&e->penc, raw_only ? &raw : &e->cfg.codec,
			      j->pfns, j->pages, j->n, &io, &st);
	for (i = 0; i <= TB_ENC_MAX; i++)
		rec->enc_pages[i] += st.pages[i];
	rec->raw_bytes += j->n * TB_PAGE_SIZE;
	return rc;
}

static int flush_cb(void *arg)
{
	struct flush_ctx *f = arg;

	yield_to_pause(f->e);
	return tb_eng_flush_send(f->e, f->rec);
}

/* The journaled disk writes of epochs <= @j's (sent in the open epoch;
 * a checkpoint keeps their extents until acked); *@bytes += their
 * decoded bytes. */
static int send_disk_writes(struct tb_engine *e, struct job *j,
			    struct tb_epoch_rec *rec, uint64_t *bytes)
{
	struct flush_ctx f = { e, rec };
	uint64_t b = 0;
	int rc = tb_edisk_drain(&e->edisk, &e->sendbuf, &e->digest, j->epoch,
				flush_cb, &f, &rec->disk_writes, &b,
				j->type == JOB_CHECKPOINT ? &j->dext : NULL);

	if (rc < 0)
		tb_err_rc(rc, "dom=%u epoch=%" PRIu64 " disk journal: %s",
			  e->info.domid, j->epoch, tb_backend_reason());
	rec->disk_bytes += b;
	*bytes += b;
	return rc < 0 ? rc : 0;
}

/* First sync: read @j->n bytes of a disk at @j->doff and send them (the
 * read happens here, in the sender, so that every journaled write made
 * after it is sent after it). */
static int send_disk_chunk(struct tb_engine *e, struct job *j)
{
	uint64_t bytes = 0;
	int rc;

	yield_to_pause(e);
	rc = e->cfg.ops->disk_read(e->dom, j->disk, j->doff, j->pages, j->n);
	if (rc) {
		tb_err_rc(rc, "dom=%u first sync: disk %u read at %" PRIu64,
			  e->info.domid, j->disk, j->doff);
		return rc;
	} /* a full copy skips zero blocks (the new image is zero); a
	 * re-sync sends what the blocks hold now, zeroes included */
	rc = tb_edisk_encode(&e->edisk, &e->sendbuf, &e->digest, j->disk,
			     j->doff, j->pages, j->n, !e->edisk.keep, &bytes);
	if (!rc)
		rc = tb_eng_flush_send(e, &j->rec);
	if (!rc)
		rc = send_disk_writes(e, j, &j->rec, &bytes);
	if (!rc)
		rc = tb_eng_flush_send(e, &j->rec);
	e->full_bytes_sent += bytes;
	return rc;
}

static int send_job(struct tb_engine *e, struct job *j)
{
	struct tb_epoch_rec *rec = &j->rec;
	struct tb_epoch_begin b = { 0 };
	struct tb_epoch_end end = { 0 };
	bool raw_only = e->cfg.mode == TB_MODE_SEND_WHILE_PAUSED;
	uint64_t disk_bytes = 0;
	int rc = 0;

	if (j->type == JOB_BEGIN_FULL ||
	    (j->type == JOB_CHECKPOINT && !j->full)) {
		b.epoch = j->epoch;
		b.flags = j->full ? TB_EPOCH_FULL : 0;
		b.t_request_ns = rec->t_request;
		b.t_suspended_ns = rec->t_suspended;
		b.t_resumed_ns = rec->t_resumed;
		rc = tb_enc_epoch_begin(&e->sendbuf, &b);
		if (rc)
			return rc;
		e->full_pages_sent = e->full_bytes_sent = 0;
		if (j->type == JOB_BEGIN_FULL) {
			rc = tb_edisk_infos(&e->edisk, &e->sendbuf, &e->digest);
			return rc ? rc : tb_eng_flush_send(e, NULL);
		}
	}
	if (j->type == JOB_DISK)
		return send_disk_chunk(e, j);
	rc = send_pages(e, j, rec, raw_only);
	if (!rc && j->type == JOB_CHUNK) { /* keep the journal moving */
		rc = send_disk_writes(e, j, rec, &disk_bytes);
		e->full_bytes_sent += disk_bytes;
		if (!rc)
			rc = tb_eng_flush_send(e, rec);
	}
	if (rc || j->type != JOB_CHECKPOINT)
		return rc;
	rc = tb_enc_state(&e->sendbuf, TB_REC_CPU_STATE, e->info.state_tag, 0,
			  j->cpu.data, (uint32_t)j->cpu.len);
	if (!rc)
		rc = tb_enc_state(&e->sendbuf, TB_REC_DEVICE_STATE,
				  e->info.state_tag, 0, j->dev.data,
				  (uint32_t)j->dev.len);
	if (rc)
		return rc;
	tb_digest_state(&e->digest, e->info.state_tag, 0, j->cpu.data,
			(uint32_t)j->cpu.len);
	tb_digest_state(&e->digest, e->info.state_tag, 0, j->dev.data,
			(uint32_t)j->dev.len);
	rec->raw_bytes += j->cpu.len + j->dev.len;
	rc = send_disk_writes(e, j, rec, &disk_bytes);
	if (rc)
		return rc;
	end.epoch = j->epoch;
	end.nr_pages = (j->full ? e->full_pages_sent : 0) + j->n;
	end.nr_bytes = (j->full ? e->full_bytes_sent : 0) +
		       j->n * TB_PAGE_SIZE + j->cpu.len + j->dev.len +
		       disk_bytes;
	end.digest = tb_digest_final(&e->digest);
	rec->t_encoded = tb_now_ns();
	rc = tb_enc_epoch_end(&e->sendbuf, &end);
	if (!rc)
		rc = tb_eng_flush_send(e, rec);
	return rc;
}

static int send_heartbeat(struct tb_engine *e)
{
	struct tb_heartbeat hb = { .seq = ++e->hb_seq,
				   .time_ns = tb_now_ns(),
				   .last_epoch = e->next_epoch - 1 };
	int rc = tb_enc_heartbeat(&e->sendbuf, &hb);

	return rc ? rc : tb_eng_flush_send(e, NULL);
}

void *tb_eng_sender_main(void *arg)
{
	struct tb_engine *e = arg;
	int64_t next_hb = tb_now_ns() + e->cfg.hb_interval_ns;
	struct timespec ts;
	struct job *j;
	int rc;

	for (;;) {
		pthread_mutex_lock(&e->lock);
		while (!e->q_head && !e->link_lost && !e->sender_quit &&
		       tb_now_ns() < next_hb) {
			ts.tv_sec = next_hb / TB_NSEC_PER_SEC;
			ts.tv_nsec = next_hb % TB_NSEC_PER_SEC;
			pthread_cond_timedwait(&e->cond, &e->lock, &ts);
		}
		if (e->link_lost || (e->sender_quit && !e->q_head)) {
			pthread_mutex_unlock(&e->lock);
			break;
		}
		j = e->q_head;
		if (j) {
			e->q_head = j->next;
			if (!e->q_head)
				e->q_tail = NULL;
		}
		pthread_mutex_unlock(&e->lock);

		if (!j) {
			rc = send_heartbeat(e);
			next_hb = tb_now_ns() + e->cfg.hb_interval_ns;
			if (rc) {
				tb_err_rc(rc, "backup=%s heartbeat send",
					  e->cfg.backup);
				tb_eng_mark_lost(e);
				break;
			}
			continue;
		}
		rc = send_job(e, j);
		if (!rc && j->full && j->type == JOB_CHUNK) {
			e->full_pages_sent += j->n;
			e->full_bytes_sent += j->n * TB_PAGE_SIZE;
		}
		pthread_mutex_lock(&e->lock);
		j->rec.t_sent = tb_now_ns();
		j->sent = true;
		j->send_rc = rc;
		e->bytes_wire += j->rec.wire_bytes;
		e->bytes_raw += j->rec.raw_bytes;
		if (j->type != JOB_CHECKPOINT)
			j->busy = false; /* chunk buffers go back at once */
		pthread_cond_broadcast(&e->cond);
		pthread_mutex_unlock(&e->lock);
		if (rc) {
			tb_err_rc(rc, "backup=%s epoch=%" PRIu64 " send",
				  e->cfg.backup, j->epoch);
			tb_eng_mark_lost(e);
			break;
		}
		next_hb = tb_now_ns() + e->cfg.hb_interval_ns;
	}
	return NULL;
}
