/* SPDX-License-Identifier: MIT */
/*
 * The epoch engine's private state and the functions its files call in
 * one another.  lib/epoch.c (tick loop, checkpoints, set-up) lists the
 * files and states the engine's threads; each file states its own
 * invariants.  Internal to lib/; not installed.
 *
 * Locking: the fields marked "protected by lock" (the pipeline, the
 * status counters) are accessed under e->lock, and every wait for the
 * pipeline waits on e->cond; send_lock is held around every send on
 * the link.
 */
#ifndef TIBER_EPOCH_PRIV_H
#define TIBER_EPOCH_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "tiber/ctlsock.h"
#include "tiber/epoch.h"
#include "tiber/stream.h"
#include "epoch_disk.h"
#include "epoch_enc.h"

#define CHUNK_PAGES 1024u /* pre-copy chunk: one PAGE_DATA record */
#define NR_CHUNKS   4u
#define PAUSE_RING  1024u

enum job_type {
	JOB_BEGIN_FULL, /* EPOCH_BEGIN of a first sync */
	JOB_CHUNK,	/* pre-copy pages of the first sync */
	JOB_CHECKPOINT, /* a paused round: pages + state + END */
	JOB_DISK,	/* first sync: disk contents, read by the sender */
};

struct job {
	enum job_type type;
	uint64_t epoch;
	bool full; /* part of a first sync */
	uint64_t *pfns;
	uint8_t *pages;
	size_t n;
	unsigned disk; /* JOB_DISK: n bytes of this disk at doff */
	uint64_t doff;
	struct tb_buf dext; /* checkpoint: extents of its disk writes */
	size_t cap;	    /* pages the buffers can hold */
	size_t prefaulted;  /* pages of @pages already touched */
	struct tb_buf cpu, dev;
	struct tb_epoch_rec rec;
	bool busy; /* owned by the pipeline */
	bool sent;
	int send_rc;
	struct job *next;
};

struct tb_engine {
	struct tb_engine_cfg cfg;
	atomic_uint_fast64_t loop_ticks; /* the tick loop's progress */
	struct tb_dom *dom;
	struct tb_dom_info info;
	bool fast_resume;
	struct tb_edisk edisk;	  /* the guest's disks (none: nr_disks 0) */
	bool disk_synced;	  /* this session's FULL epoch was acked */
	uint64_t disk_sync_pages; /* what the disks' sync sends */

	struct tb_bitmap dirty;
	struct tb_bitmap scratch;
	uint64_t *pfn_list;

	struct job *slots; /* max_inflight checkpoint slots */
	struct job chunks[NR_CHUNKS];

	/* pipeline: protected by lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *q_head, *q_tail;
	bool link_up;
	bool link_lost;	  /* set by sender/receiver, seen by ticks */
	bool sender_quit; /* orderly stop: sender exits, link stays up */
	uint64_t inflight;
	uint64_t next_epoch;
	uint64_t last_acked;
	/* first sync progress (tick thread writes, status reads; lock) */
	uint64_t sync_done, sync_total; /* pre-copy pages copied / to copy */
	int64_t sync_t0, sync_t_log;
	uint64_t full_pages_sent; /* sender: pre-copy pages of FULL epoch */
	uint64_t full_bytes_sent;
	struct job *full_pending; /* FULL epoch sent up to its paused round */
	bool rearm; /* restart the tick schedule (after a first sync) */
	atomic_bool pausing; /* a checkpoint is suspending the guest */

	struct tb_conn *conn;
	/* The link we left with a RECONNECTING goodbye, shut down but not
	 * closed: closing with the backup's unread ACKs pending would send
	 * a RST, and a RST makes the backup's kernel drop the goodbye
	 * before a stalled backup reads it.  Closed at the next loss. */
	struct tb_conn *old_conn;
	pthread_t sender, receiver;
	/* Held around every send, so a goodbye is written only between
	 * whole records (never inside a send that is blocked). */
	pthread_mutex_t send_lock;
	bool threads_running;
	struct tb_epoch_enc penc; /* shadow, codec, PAGE_DATA */
	struct tb_digest digest;
	struct tb_buf sendbuf;
	uint64_t hb_seq;
	int64_t last_rx_ns;

	int stop_fd; /* eventfd */
	int timer_fd;
	/* eventfd: an ACK freed the slot a deferred tick waits for */
	int slot_fd;
	struct tb_ctl *ctl; /* control socket, or NULL */
	atomic_bool stopping;
	atomic_bool release_req; /* tiberctl release: end a hold */
	int64_t next_fence_ns;	 /* next fence_cmd attempt (0: now) */

	FILE *trace;
	pthread_mutex_t trace_lock;

	/* status, protected by lock */
	enum tb_engine_state state;
	uint64_t epochs_started, epochs_acked, skipped, missed, timeouts;
	uint64_t losses, resyncs, bytes_raw, bytes_wire;
	uint64_t skipped_since;
	/* A tick found every slot busy: its checkpoint is taken as soon as
	 * an ACK frees one (slot_fd), not at the next tick, so a pipeline
	 * past capacity runs back to back instead of losing whole periods.
	 * deferred_tick: when that tick was due. */
	bool deferred;
	int64_t deferred_tick;
	uint64_t deferred_ticks; /* ticks whose checkpoint waited for an ACK */
	int64_t pause_ring[PAUSE_RING];
	uint64_t pause_count;
	struct tb_phase_hist phase[TB_PH_MAX];
	bool held_suspended;
	bool resume_failed; /* the guest could not be resumed: stop */
	int64_t last_loss_log_ns;
	char link_why[256];	    /* connect_backup: why TLS failed, or "" */
	char link_text[256];	    /* under lock: why the last connection
				   attempt failed, or "" (status, log) */
	int64_t link_warn_ns;	    /* when that failure was last logged */
	atomic_bool switchover_req; /* tiberctl switchover */
	bool keep_suspended;	    /* checkpoint(): the switchover's last */
	uint32_t bye_code;	    /* the orderly goodbye (0 or SWITCHOVER) */
};

/* The tb_now_ns() clock @ns from now: the link's deadlines. */
static inline int64_t deadline_in(int64_t ns)
{
	return tb_now_ns() + ns;
}

/* epoch.c: jobs, slots, checkpoints */
void tb_eng_queue_push(struct tb_engine *e, struct job *j);
/* One paused round into @j (see the definition); the guest runs again
 * when it returns, unless a switchover keeps it suspended or the resume
 * failed (e->resume_failed).  0 or -errno (-ETIMEDOUT: the guest did
 * not suspend and still runs). */
int tb_eng_checkpoint(struct tb_engine *e, struct job *j,
		      bool already_suspended);
/* A free checkpoint slot, or NULL. */
struct job *tb_eng_free_slot(struct tb_engine *e);
/* Reserve @j for the next epoch (a FULL one if @full). */
void tb_eng_slot_reset(struct tb_engine *e, struct job *j, bool full,
		       int64_t t_tick);
/* Give back the slot of an epoch that failed. */
void tb_eng_slot_unreserve(struct tb_engine *e, struct job *j);
/* Wait up to @ns for every staged epoch to be acked.  true if done. */
bool tb_eng_all_acked(struct tb_engine *e, int64_t ns);
/* Resume with the engine's resume kind (slow if fast fails); logs. */
int tb_eng_resume_guest(struct tb_engine *e);
/* Suspend the guest, timed into @rec; logs.  -ETIMEDOUT: it runs. */
int tb_eng_suspend_guest(struct tb_engine *e, struct tb_epoch_rec *rec);

/* epoch_sync.c: the first sync */
/* A FULL epoch on a new link: pre-copy, then its paused round. */
int tb_eng_first_sync(struct tb_engine *e, int64_t t_tick);
/* The paused round that closes the pending FULL epoch (tick retries). */
int tb_eng_finish_full(struct tb_engine *e);

/* epoch_policy.c: lag, loss policy, fencing, reconnecting */
/* The backup is lost or too slow: stop the link, apply the policy. */
void tb_eng_lost_backup(struct tb_engine *e);
/* While held or isolated: true if output was released (fenced, or
 * `tiberctl release`). */
bool tb_eng_end_hold(struct tb_engine *e, int64_t now);
/* Reconnect (at most every reconnect_interval, else -EAGAIN): 0 when
 * connected; -EOWNERDEAD: self-fenced; else -errno. */
int tb_eng_try_reconnect(struct tb_engine *e, int64_t now);
/* The oldest unacked epoch is older than the lag limit. */
bool tb_eng_backup_lagging(struct tb_engine *e, int64_t now);
/* Age of the oldest staged-but-unacked epoch (0: none); under e->lock. */
int64_t tb_eng_oldest_unacked_age_locked(struct tb_engine *e, int64_t now);

/* epoch_switchover.c: the planned switchover */
/* tiberctl switchover: 1 when the guest runs on the backup and ours is
 * destroyed; 0 if aborted (the guest runs on here, protected). */
int tb_eng_switchover(struct tb_engine *e, int64_t t_tick);

/* epoch_link.c: connect, receiver, ACKs, goodbye, stop */
/* Connect (HELLO), start the sender and receiver.  -EOWNERDEAD: the
 * backup runs the guest now; -EAGAIN: no threads; else -errno. */
int tb_eng_start_link(struct tb_engine *e);
/* Join the link threads, drop in-flight epochs (see the definition). */
void tb_eng_stop_link(struct tb_engine *e, bool orderly);
/* The link is lost: set link_lost, shut the connection, wake waiters. */
void tb_eng_mark_lost(struct tb_engine *e);
/* Best effort: an ERROR record @code to the backup, saying @why. */
void tb_eng_say_goodbye(struct tb_engine *e, uint32_t code, const char *why);

/* epoch_send.c: the sender thread and the encoding of jobs */
void *tb_eng_sender_main(void *arg);
/* Send what e->sendbuf holds (under send_lock); its wire bytes count
 * in @rec if not NULL.  0 or -errno. */
int tb_eng_flush_send(struct tb_engine *e, struct tb_epoch_rec *rec);

/* epoch_status.c: state, trace records, histograms, status, control */
void tb_eng_set_state(struct tb_engine *e, enum tb_engine_state st);
enum tb_engine_state tb_eng_get_state(struct tb_engine *e);
/* A finished epoch (acked or not): to the trace file and on_epoch. */
void tb_eng_emit_epoch(struct tb_engine *e, const struct tb_epoch_rec *r);
/* An acked epoch's pause and phases (caller holds e->lock). */
void tb_eng_record_pause(struct tb_engine *e, const struct tb_epoch_rec *r);
double tb_eng_sync_eta(double secs, uint64_t done, uint64_t total);
/* The control socket's callback: @arg is the engine. */
void tb_eng_control_cb(void *arg, const char *cmd, char *buf, size_t len);

#endif
