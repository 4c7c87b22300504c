// SPDX-License-Identifier: MIT
/*
 * What the epoch engine reports, and what it is told: its state, the
 * status struct and its JSON (tiberctl status, the daemon's metrics and
 * sd_notify), one trace record per finished epoch, the pause ring and
 * phase histograms of acked epochs, and the control socket's commands
 * (status, release, switchover).
 *
 * Invariants:
 * - Status is read under e->lock and copied out; the backend's
 *   get_stats is called after the lock is dropped.
 * - Only acked epochs enter the pause ring and the phase histograms
 *   (tb_eng_record_pause, from the ACK).
 * - A control command acts on nothing itself: switchover and release
 *   set a request that the tick thread takes at its next tick.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tiber/epoch.h"
#include "epoch_priv.h"

/* ---------------------------------------------------------------- state */

static const char *const state_names[] = {
	"starting", "syncing",	"protected", "unprotected",   "held",
	"stopped",  "isolated", "fenced",    "switched_over",
};

const char *tb_engine_state_name(enum tb_engine_state s)
{
	return (unsigned)s < TB_ARRAY_SIZE(state_names) ? state_names[s] : "?";
}

void tb_eng_set_state(struct tb_engine *e, enum tb_engine_state st)
{
	pthread_mutex_lock(&e->lock);
	e->state = st;
	pthread_mutex_unlock(&e->lock);
}

enum tb_engine_state tb_eng_get_state(struct tb_engine *e)
{
	enum tb_engine_state st;

	pthread_mutex_lock(&e->lock);
	st = e->state;
	pthread_mutex_unlock(&e->lock);
	return st;
}

/* ---------------------------------------------------------------- JSON */

const char *tb_engine_mode_name(enum tb_engine_mode m)
{
	switch (m) {
	case TB_MODE_STAGED:
		return "staged";
	case TB_MODE_SEND_WHILE_PAUSED:
		return "send-while-paused";
	case TB_MODE_COW:
		return "cow";
	}
	return "?";
}

int tb_epoch_rec_json(const struct tb_epoch_rec *r, char *buf, size_t len)
{
	int n = snprintf(
		buf, len,
		"{\"epoch\":%" PRIu64 ",\"full\":%s,\"acked\":%s,"
		"\"t_tick\":%" PRId64 ",\"t_request\":%" PRId64
		",\"t_notified\":%" PRId64 ",\"t_suspended\":%" PRId64
		",\"t_harvested\":%" PRId64 ",\"t_staged\":%" PRId64
		",\"t_resumed\":%" PRId64 ",\"t_encoded\":%" PRId64
		",\"t_sent\":%" PRId64 ",\"t_acked\":%" PRId64
		",\"t_released\":%" PRId64 ",\"pause_ns\":%" PRId64
		",\"dirty_pages\":%" PRIu64 ",\"raw_bytes\":%" PRIu64
		",\"wire_bytes\":%" PRIu64 ",\"pages_raw\":%" PRIu64
		",\"pages_zero\":%" PRIu64 ",\"pages_xor_lz4\":%" PRIu64
		",\"pages_lz4\":%" PRIu64 ",\"skipped_ticks\":%" PRIu64
		",\"disk_writes\":%" PRIu64 ",\"disk_bytes\":%" PRIu64
		",\"pages_xor_rle\":%" PRIu64 ",\"t_prearm\":%" PRId64
		",\"t_copied\":%" PRId64 ",\"pages_xor_mask\":%" PRIu64 "}",
		r->epoch, r->full ? "true" : "false",
		r->acked ? "true" : "false", r->t_tick, r->t_request,
		r->t_notified, r->t_suspended, r->t_harvested, r->t_staged,
		r->t_resumed, r->t_encoded, r->t_sent, r->t_acked,
		r->t_released,
		r->t_resumed && r->t_suspended ? r->t_resumed - r->t_suspended :
						 0,
		r->dirty_pages, r->raw_bytes, r->wire_bytes,
		r->enc_pages[TB_ENC_RAW], r->enc_pages[TB_ENC_ZERO],
		r->enc_pages[TB_ENC_XOR_LZ4], r->enc_pages[TB_ENC_LZ4],
		r->skipped_ticks, r->disk_writes, r->disk_bytes,
		r->enc_pages[TB_ENC_XOR_RLE], r->t_prearm, r->t_copied,
		r->enc_pages[TB_ENC_XOR_MASK]);

	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

void tb_eng_emit_epoch(struct tb_engine *e, const struct tb_epoch_rec *r)
{
	char line[1024];

	if (e->trace && !tb_epoch_rec_json(r, line, sizeof(line))) {
		pthread_mutex_lock(&e->trace_lock);
		fprintf(e->trace, "%s\n", line);
		fflush(e->trace);
		pthread_mutex_unlock(&e->trace_lock);
	}
	if (e->cfg.on_epoch)
		e->cfg.on_epoch(e->cfg.on_epoch_arg, r);
}

/* ---------------------------------------------------------- histograms */

const double tb_phase_le[TB_PHASE_BUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
	0.01,	0.025,	 0.05,	 0.1,	1,	INFINITY,
};

const char *tb_phase_name(enum tb_phase p)
{
	static const char *const names[TB_PH_MAX] = { "pause",	 "handshake",
						      "harvest", "copy",
						      "resume",	 "commit" };

	return p < TB_PH_MAX ? names[p] : "?";
}

static void phase_add(struct tb_phase_hist *h, int64_t from, int64_t to)
{
	double s;
	unsigned i;

	if (!from || !to || to < from)
		return;
	s = (double)(to - from) / 1e9;
	for (i = 0; i + 1 < TB_PHASE_BUCKETS && s > tb_phase_le[i]; i++)
		;
	h->bucket[i]++;
	h->count++;
	h->sum_s += s;
}

/* An acked epoch: its pause into the ring, its phases into the
 * histograms (under e->lock). */
void tb_eng_record_pause(struct tb_engine *e, const struct tb_epoch_rec *r)
{
	if (!r->t_resumed || !r->t_suspended)
		return;
	e->pause_ring[e->pause_count % PAUSE_RING] =
		r->t_resumed - r->t_suspended;
	e->pause_count++;
	phase_add(&e->phase[TB_PH_PAUSE], r->t_suspended, r->t_resumed);
	phase_add(&e->phase[TB_PH_HANDSHAKE], r->t_request, r->t_suspended);
	phase_add(&e->phase[TB_PH_HARVEST], r->t_suspended, r->t_harvested);
	phase_add(&e->phase[TB_PH_COPY], r->t_harvested, r->t_staged);
	phase_add(&e->phase[TB_PH_RESUME], r->t_staged, r->t_resumed);
	phase_add(&e->phase[TB_PH_COMMIT], r->t_resumed, r->t_acked);
}

/* Seconds left in a first sync that copied @done of @total pages in
 * @secs, at the rate so far. */
double tb_eng_sync_eta(double secs, uint64_t done, uint64_t total)
{
	return done ? secs * (double)(total - TB_MIN(done, total)) /
			       (double)done :
		      0.0;
}

/* ---------------------------------------------------------------- status */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

void tb_engine_get_status(struct tb_engine *e, struct tb_engine_status *st)
{
	int64_t sorted[PAUSE_RING], now = tb_now_ns();
	size_t n;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&e->lock);
	st->state = e->state;
	st->info = e->info;
	st->rate_hz = e->cfg.rate_hz;
	st->epochs_started = e->epochs_started;
	st->epochs_acked = e->epochs_acked;
	st->last_acked_epoch = e->last_acked;
	st->inflight = e->inflight;
	st->skipped_ticks = e->skipped;
	st->deferred_ticks = e->deferred_ticks;
	st->loop_ticks = atomic_load(&e->loop_ticks);
	st->sync_done_pages = e->sync_done;
	st->sync_total_pages = e->sync_total;
	if (e->state == TB_ENG_SYNCING && e->sync_t0)
		st->sync_eta_s =
			tb_eng_sync_eta((double)(now - e->sync_t0) / 1e9,
					e->sync_done, e->sync_total);
	memcpy(st->phase, e->phase, sizeof(st->phase));
	st->missed_ticks = e->missed;
	st->suspend_timeouts = e->timeouts;
	st->backup_losses = e->losses;
	st->resyncs = e->resyncs;
	st->bytes_raw = e->bytes_raw;
	st->bytes_wire = e->bytes_wire;
	snprintf(st->link_error, sizeof(st->link_error), "%.*s",
		 (int)sizeof(st->link_error) - 1, e->link_text);
	n = TB_MIN(e->pause_count, (uint64_t)PAUSE_RING);
	memcpy(sorted, e->pause_ring, n * sizeof(int64_t));
	if (e->pause_count)
		st->last_pause_ns =
			e->pause_ring[(e->pause_count - 1) % PAUSE_RING];
	st->backup_lag_ns = tb_eng_oldest_unacked_age_locked(e, now);
	pthread_mutex_unlock(&e->lock);
	if (n) {
		qsort(sorted, n, sizeof(int64_t), cmp_i64);
		st->pause_p50_ns = sorted[(n - 1) / 2];
		st->pause_p99_ns = sorted[(n * 99 - 1) / 100];
	}
	e->cfg.ops->get_stats(e->dom, &st->dom);
}

int tb_engine_status_json(struct tb_engine *e, char *buf, size_t len)
{
	struct tb_engine_status st;
	/* the backend's names: a guest may choose its own (sim: xenstore) */
	char name[6 * sizeof(st.info.name) + 1];
	char mech[6 * sizeof(st.info.dirty_mech) + 1];
	char uuid[TB_UUID_TEXT];
	int n;

	tb_engine_get_status(e, &st);
	tb_uuid_fmt(st.info.uuid, uuid);
	n = snprintf(
		buf, len,
		"{\"domid\":%u,\"name\":\"%s\",\"backend\":\"%s\","
		"\"state\":\"%s\",\"rate_hz\":%.1f,\"suspend_mode\":\"%s\","
		"\"dirty_mech\":\"%s\",\"epochs\":%" PRIu64
		",\"last_epoch\":%" PRIu64 ",\"inflight\":%" PRIu64
		",\"last_pause_us\":%.1f,\"pause_p50_us\":%.1f,"
		"\"pause_p99_us\":%.1f,\"backup_lag_ms\":%.2f,"
		"\"skipped_ticks\":%" PRIu64 ",\"deferred_ticks\":%" PRIu64
		",\"missed_ticks\":%" PRIu64 ",\"suspend_timeouts\":%" PRIu64
		",\"backup_losses\":%" PRIu64 ",\"resyncs\":%" PRIu64
		",\"mb_raw\":%.2f,\"mb_shipped\":%.2f,"
		"\"output_held_bytes\":%" PRIu64
		",\"output_released_bytes\":%" PRIu64
		",\"output_dropped_bytes\":%" PRIu64
		",\"output_dropped_packets\":%" PRIu64
		",\"output_overflow_pauses\":%" PRIu64
		",\"output_overflow_paused_ms\":%.1f,\"link_error\":\"%s\","
		"\"sync_done_pages\":%" PRIu64 ",\"sync_total_pages\":%" PRIu64
		",\"sync_eta_s\":%.1f,\"uuid\":\"%s\",\"mode\":\"%s\","
		"\"wp_faults\":%" PRIu64 ",\"cow_fault_copies\":%" PRIu64 "}",
		st.info.domid, tb_json_esc(name, sizeof(name), st.info.name),
		e->cfg.ops->name, tb_engine_state_name(st.state), st.rate_hz,
		tb_suspend_mode_name(st.info.suspend_mode),
		tb_json_esc(mech, sizeof(mech), st.info.dirty_mech),
		st.epochs_acked, st.last_acked_epoch, st.inflight,
		st.last_pause_ns / 1e3, st.pause_p50_ns / 1e3,
		st.pause_p99_ns / 1e3, st.backup_lag_ns / 1e6, st.skipped_ticks,
		st.deferred_ticks, st.missed_ticks, st.suspend_timeouts,
		st.backup_losses, st.resyncs, st.bytes_raw / 1e6,
		st.bytes_wire / 1e6, st.dom.output_held_bytes,
		st.dom.output_released_bytes, st.dom.output_dropped_bytes,
		st.dom.output_dropped_packets, st.dom.output_overflow_pauses,
		st.dom.output_overflow_pause_ns / 1e6, st.link_error,
		st.sync_done_pages, st.sync_total_pages, st.sync_eta_s, uuid,
		tb_engine_mode_name(e->cfg.mode), st.dom.wp_faults,
		st.dom.cow_fault_copies);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

/* ---------------------------------------------------------------- control */

void tb_engine_control(struct tb_engine *e, const char *cmd, char *buf,
		       size_t len)
{
	if (!strcmp(cmd, "status")) {
		if (tb_engine_status_json(e, buf, len))
			snprintf(buf, len, "{\"error\":\"status too long\"}");
	} else if (!strcmp(cmd, "switchover")) {
		if (tb_eng_get_state(e) != TB_ENG_PROTECTED) {
			snprintf(
				buf, len,
				"{\"error\":\"switchover needs state protected, not %s\"}",
				tb_engine_state_name(tb_eng_get_state(e)));
			return;
		}
		atomic_store(&e->switchover_req, true);
		snprintf(
			buf, len,
			"{\"ok\":true,\"note\":\"switchover at the next tick: state switched_over when the backup runs the guest\"}");
	} else if (!strcmp(cmd, "release")) {
		/* The operator vouches that the backup cannot take over. */
		atomic_store(&e->release_req, true);
		snprintf(
			buf, len,
			"{\"ok\":true,\"note\":\"held output is released at the next tick if the backup is lost\"}");
	} else {
		snprintf(
			buf, len,
			"{\"error\":\"unknown command (status, release, switchover)\"}");
	}
}

void tb_eng_control_cb(void *arg, const char *cmd, char *buf, size_t len)
{
	tb_engine_control(arg, cmd, buf, len);
}
