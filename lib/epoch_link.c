// SPDX-License-Identifier: MIT
/*
 * The epoch engine's link to its backup: connecting (HELLO, TLS, the
 * features both sides take), the receiver thread (ACKs and the output
 * they release, the backup's errors, heartbeats), the goodbye, and
 * stopping the link (in-flight epochs dropped, what the backup's disks
 * may lack marked for the next session).
 *
 * Invariants:
 * - Epoch N's output leaves only after the backup acked N (output_release
 *   from the receiver thread).
 * - An ACK frees its slot only once the sender is done with it.
 * - Records that waited longer than the heartbeat timeout release
 *   nothing: the link is treated as lost, since the backup may have
 *   promoted the guest meanwhile.
 * - The link threads only mark the link lost (and the receiver says
 *   RECONNECTING when it gives up); the tick thread stops the link and
 *   applies the loss policy.
 * - The codec uses only what the backup's HELLO accepted; a new link
 *   starts with an empty queue, a fresh digest and no valid shadow.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>

#include "tiber/log.h"
#include "tiber/stream.h"
#include "tiber/transport.h"
#include "epoch_priv.h"

/* Caller holds lock. */
static void mark_lost_locked(struct tb_engine *e)
{
	if (!e->link_lost) {
		e->link_lost = true;
		if (e->conn)
			tb_conn_shutdown(e->conn);
	}
	pthread_cond_broadcast(&e->cond);
}

void tb_eng_mark_lost(struct tb_engine *e)
{
	pthread_mutex_lock(&e->lock);
	mark_lost_locked(e);
	pthread_mutex_unlock(&e->lock);
}

/* ---------------------------------------------------------------- receiver */

static int handle_ack(struct tb_engine *e, const struct tb_ack *ack)
{
	struct job *j = NULL;
	unsigned i;
	int rc;

	pthread_mutex_lock(&e->lock);
	for (i = 0; i < e->cfg.max_inflight; i++)
		if (e->slots[i].busy && e->slots[i].epoch == ack->epoch)
			j = &e->slots[i];
	pthread_mutex_unlock(&e->lock);
	if (!j) {
		tb_err("backup=%s ack for epoch=%" PRIu64
		       " that is not in flight",
		       e->cfg.backup, ack->epoch);
		return -EPROTO;
	}
	if (ack->status) {
		tb_err("backup=%s rejected epoch=%" PRIu64 ": %s",
		       e->cfg.backup, ack->epoch,
		       tb_stream_strerr((int)ack->status));
		return -EPROTO;
	}
	/* The ACK may overtake the sender's bookkeeping of this job: wait
	 * for it, so the slot is never freed under the sender. */
	pthread_mutex_lock(&e->lock);
	while (!j->sent && !e->link_lost)
		pthread_cond_wait(&e->cond, &e->lock);
	pthread_mutex_unlock(&e->lock);
	if (!j->sent)
		return -ECANCELED;
	j->rec.t_acked = tb_now_ns();
	if (e->cfg.gate_output) {
		rc = e->cfg.ops->output_release(e->dom, ack->epoch);
		if (rc)
			tb_warn_rc(rc, "epoch=%" PRIu64 " output release: %s",
				   ack->epoch, tb_backend_reason());
	}
	j->rec.t_released = tb_now_ns();
	j->rec.acked = true;
	tb_eng_emit_epoch(e, &j->rec);
	pthread_mutex_lock(&e->lock);
	e->last_acked = ack->epoch;
	e->epochs_acked++;
	e->inflight--;
	tb_eng_record_pause(e, &j->rec);
	if (j->full && e->state == TB_ENG_SYNCING)
		e->state = TB_ENG_PROTECTED;
	if (j->full)
		e->disk_synced = true;
	j->busy = false;
	if (e->deferred && eventfd_write(e->slot_fd, 1))
		tb_warn_rc(-errno, "slot wake-up");
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
	return 0;
}

static void *receiver_main(void *arg)
{
	struct tb_engine *e = arg;
	struct tb_sess sess;
	struct tb_rec rec;
	int64_t now;
	int rc;

	tb_sess_init(&sess, TB_ROLE_BACKUP);
	sess.state = TB_SESS_IDLE; /* HELLO was taken by connect_backup */
	for (;;) {
		rc = tb_conn_recv_rec(e->conn, &rec,
				      deadline_in(e->cfg.hb_timeout_ns));
		if (rc <= 0 && e->sender_quit)
			break; /* orderly stop: the backup closes, fine */
		if (rc == 0) {
			tb_err("backup=%s closed the connection",
			       e->cfg.backup);
			break;
		}
		if (rc < 0) {
			if (rc != -ECANCELED)
				tb_err_rc(rc, "backup=%s receive%s%s",
					  e->cfg.backup,
					  rc == -ETIMEDOUT ? " (no heartbeat)" :
							     "",
					  "");
			break;
		}
		/*
		 * Records that waited longer than the heartbeat timeout (this
		 * process was stopped or starved): the backup has probably
		 * declared us lost and may have promoted the guest.  Release
		 * nothing more on this link; the reconnect tells (PROMOTED:
		 * self-fence, else re-sync and release).
		 */
		now = tb_now_ns();
		if (now - e->last_rx_ns > e->cfg.hb_timeout_ns) {
			tb_err("backup=%s: nothing received for %" PRId64
			       " ms (was this process stalled?): treating the link as lost, nothing more released on it",
			       e->cfg.backup,
			       (now - e->last_rx_ns) / TB_NSEC_PER_MSEC);
			break;
		}
		e->last_rx_ns = now;
		rc = tb_sess_check(&sess, &rec, NULL);
		if (rc) {
			tb_err("backup=%s record type=%u out of order",
			       e->cfg.backup, rec.type);
			break;
		}
		if (rec.type == TB_REC_ACK) {
			if (handle_ack(e, &rec.u.ack))
				break;
		} else if (rec.type == TB_REC_ERROR) {
			tb_err("backup=%s error code=%u: %.*s", e->cfg.backup,
			       rec.u.error.code, (int)rec.u.error.text_len,
			       rec.u.error.text);
			break;
		}
	}
	/* We give up on the backup (not an orderly stop): say we live. */
	if (!e->sender_quit && !atomic_load(&e->stopping))
		tb_eng_say_goodbye(
			e, TB_ERROR_RECONNECTING,
			"primary alive, lost the backup; reconnecting");
	tb_eng_mark_lost(e);
	return NULL;
}

/* ---------------------------------------------------------------- link */

static int connect_backup(struct tb_engine *e)
{
	struct tb_hello h = { .magic = TB_STREAM_MAGIC,
			      .version = TB_STREAM_VERSION,
			      .role = TB_ROLE_PRIMARY,
			      .domid = e->info.domid,
			      .page_size = TB_PAGE_SIZE,
			      .nr_pages = e->info.nr_pages,
			      .features = TB_FEAT_ALL };
	struct tb_rec rec;
	int rc;

	if (!e->edisk.nr_disks)
		h.features &= ~TB_FEAT_DISK;
	memcpy(h.name, e->info.name, sizeof(h.name));
	memcpy(h.uuid, e->info.uuid, sizeof(h.uuid));
	e->link_why[0] = 0;
	rc = tb_conn_connect(&e->conn, e->cfg.backup, &e->cfg.conn,
			     deadline_in(e->cfg.hb_timeout_ns));
	if (rc)
		return rc;
	if (e->cfg.tls) {
		rc = tb_conn_start_tls(e->conn, e->cfg.tls,
				       deadline_in(e->cfg.hb_timeout_ns),
				       e->link_why, sizeof(e->link_why));
		if (rc)
			goto fail;
		tb_info("backup=%s %s, peer %s", e->cfg.backup,
			tb_conn_tls_desc(e->conn), tb_conn_peer_id(e->conn));
	}
	tb_buf_reset(&e->sendbuf);
	rc = tb_enc_hello(&e->sendbuf, &h);
	if (!rc)
		rc = tb_eng_flush_send(e, NULL);
	if (rc)
		goto fail;
	rc = tb_conn_recv_rec(e->conn, &rec, deadline_in(e->cfg.hb_timeout_ns));
	if (rc == 0)
		rc = -ECONNRESET;
	if (rc < 0)
		goto fail;
	if (rec.type == TB_REC_ERROR) {
		tb_err("backup=%s refused: %.*s", e->cfg.backup,
		       (int)rec.u.error.text_len, rec.u.error.text);
		/* -EOWNERDEAD: the guest runs on the backup now. */
		rc = rec.u.error.code == TB_ERROR_PROMOTED ? -EOWNERDEAD :
							     -ECONNREFUSED;
		goto fail;
	}
	if (rec.type != TB_REC_HELLO || rec.u.hello.role != TB_ROLE_BACKUP ||
	    rec.u.hello.nr_pages != e->info.nr_pages ||
	    memcmp(rec.u.hello.uuid, e->info.uuid, sizeof(h.uuid)) != 0) {
		tb_err("backup=%s answered with a bad HELLO", e->cfg.backup);
		rc = -EPROTO;
		goto fail;
	}
	if (e->edisk.nr_disks && !(rec.u.hello.features & TB_FEAT_DISK)) {
		tb_err("backup=%s does not replicate disks (set disk_dir on the replicator): dom=%u has %u",
		       e->cfg.backup, e->info.domid, e->edisk.nr_disks);
		rc = -EPROTONOSUPPORT;
		goto fail;
	}
	/* The codec may only use what the backup accepted. */
	if (!(rec.u.hello.features & TB_FEAT_XOR_LZ4))
		e->cfg.codec.xor_delta = false;
	if (!(rec.u.hello.features & TB_FEAT_LZ4))
		e->cfg.codec.compress = false;
	if (!(rec.u.hello.features & TB_FEAT_XOR_RLE))
		e->cfg.codec.rle = false;
	if (!(rec.u.hello.features & TB_FEAT_XOR_MASK))
		e->cfg.codec.mask = false;
	e->digest.page_crc = (rec.u.hello.features & TB_FEAT_PAGE_CRC) != 0;
	return 0;
fail:
	tb_conn_close(e->conn);
	e->conn = NULL;
	return rc;
}

int tb_eng_start_link(struct tb_engine *e)
{
	int rc = connect_backup(e);

	if (rc)
		return rc;
	pthread_mutex_lock(&e->lock);
	e->link_lost = false;
	e->sender_quit = false;
	e->link_up = true;
	e->q_head = e->q_tail = NULL;
	pthread_mutex_unlock(&e->lock);
	e->last_rx_ns = tb_now_ns();
	/* Drop a digest a broken link left half done. */
	tb_digest_final(&e->digest);
	/* A new backup holds nothing: no XOR deltas until pages are sent. */
	tb_epoch_enc_forget(&e->penc);
	if (pthread_create(&e->sender, NULL, tb_eng_sender_main, e))
		goto fail;
	if (pthread_create(&e->receiver, NULL, receiver_main, e)) {
		tb_eng_mark_lost(e);
		pthread_join(e->sender, NULL);
		goto fail;
	}
	e->threads_running = true;
	return 0;
fail:
	tb_conn_close(e->conn);
	e->conn = NULL;
	e->link_up = false;
	return -EAGAIN;
}

/*
 * Best effort, short deadline: tell the backup why we close.  Only if no
 * send is under way (a blocked send means we are inside a record: then
 * nothing more can be said).  Before the connection is shut down.
 */
void tb_eng_say_goodbye(struct tb_engine *e, uint32_t code, const char *why)
{
	struct tb_buf b = { 0 };
	int rc = -EBUSY;

	if (!e->conn || pthread_mutex_trylock(&e->send_lock))
		goto out;
	rc = tb_enc_error(&b, code, why);
	if (!rc)
		rc = tb_conn_send(e->conn, b.data, b.len,
				  deadline_in(100 * TB_NSEC_PER_MSEC));
	pthread_mutex_unlock(&e->send_lock);
out:
	if (rc)
		tb_dbg("backup=%s goodbye (%s) not sent: %s", e->cfg.backup,
		       why, strerror(-rc));
	tb_buf_free(&b);
}

/* Without a backup, the disks' writes are only marked: what the backup
 * may lack (unacked epochs' writes, the journal, later writes) is what
 * the next session re-sends. */
static void lost_disks(struct tb_engine *e)
{
	struct tb_buf ext = { 0 };
	unsigned i;
	int rc = 0;

	for (i = 0; !rc && i < e->cfg.max_inflight; i++)
		if (e->slots[i].busy)
			rc = tb_buf_append(&ext, e->slots[i].dext.data,
					   e->slots[i].dext.len);
	if (!rc)
		rc = tb_edisk_lost(&e->edisk, (const void *)ext.data,
				   ext.len / sizeof(struct tb_edisk_ext),
				   e->disk_synced, e->last_acked);
	if (rc) {
		tb_warn_rc(rc, "dom=%u disks: the next sync copies them whole",
			   e->info.domid);
		e->edisk.gen = 0;
	}
	e->disk_synced = false;
	tb_buf_free(&ext);
}

/* Join the link threads, drop in-flight epochs (reported as not acked).
 * @orderly: let queued epochs go out, then say goodbye (ERROR code 0) so
 * the backup does not fail over.  Otherwise (the backup is lost) say
 * RECONNECTING if the connection still takes it: a backup that was only
 * stalled then knows this primary is alive. */
void tb_eng_stop_link(struct tb_engine *e, bool orderly)
{
	unsigned i;

	if (orderly && e->conn && e->threads_running) {
		pthread_mutex_lock(&e->lock);
		e->sender_quit = true;
		pthread_cond_broadcast(&e->cond);
		pthread_mutex_unlock(&e->lock);
		pthread_join(e->sender, NULL);
		pthread_mutex_lock(&e->lock);
		orderly = !e->link_lost;
		pthread_mutex_unlock(&e->lock);
		if (orderly)
			tb_eng_say_goodbye(
				e, e->bye_code,
				e->bye_code ?
					"switchover: the guest continues on the backup from the last acked epoch" :
					"primary shutting down");
		tb_eng_mark_lost(e);
		pthread_join(e->receiver, NULL);
		e->threads_running = false;
	}
	tb_eng_mark_lost(e);
	if (e->threads_running) {
		pthread_join(e->sender, NULL);
		pthread_join(e->receiver, NULL);
		e->threads_running = false;
		if (e->conn && !atomic_load(&e->stopping)) {
			tb_conn_shutdown(e->conn);
			tb_conn_close(e->old_conn);
			e->old_conn = e->conn;
			e->conn = NULL;
		}
	}
	tb_buf_reset(&e->sendbuf);
	if (e->conn) {
		tb_conn_close(e->conn);
		e->conn = NULL;
	}
	if (e->edisk.nr_disks && !e->resume_failed)
		lost_disks(e);
	pthread_mutex_lock(&e->lock);
	for (i = 0; i < e->cfg.max_inflight; i++) {
		struct job *j = &e->slots[i];

		if (j->busy) {
			j->rec.acked = false;
			tb_eng_emit_epoch(e, &j->rec);
			j->busy = false;
		}
	}
	for (i = 0; i < NR_CHUNKS; i++)
		e->chunks[i].busy = false;
	e->q_head = e->q_tail = NULL;
	e->inflight = 0;
	e->link_up = false;
	e->full_pending = NULL;
	pthread_mutex_unlock(&e->lock);
}
