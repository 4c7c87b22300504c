/* SPDX-License-Identifier: MIT */
/*
 * The epoch engine: the primary side of one protected domain.
 *
 * Each tick (absolute timerfd deadlines, so the period never drifts):
 *   request_suspend -> await_suspended -> harvest_dirty -> copy_pages +
 *   state into a staging slot -> output_boundary -> resume
 * and then, with the guest running, a sender thread encodes (zero / XOR
 * delta + lz4) and ships the epoch; a receiver thread takes the backup's
 * ACK and releases that epoch's output.  See lib/epoch.c for the
 * invariants.
 */
#ifndef TIBER_EPOCH_H
#define TIBER_EPOCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "tiber/backend.h"
#include "tiber/codec.h"
#include "tiber/transport.h"

struct tb_epoch_rec;

enum tb_engine_mode {
	TB_MODE_STAGED = 0,	       /* resume first, then send (tiber) */
	TB_MODE_SEND_WHILE_PAUSED = 1, /* xl-remus style baseline */
	TB_MODE_COW = 2, /* resume before the copy: copy-on-write */
};
/* "staged", "send-while-paused", "cow" (the config's words) */
const char *tb_engine_mode_name(enum tb_engine_mode m);

/*
 * What the primary does when it loses its backup.  The backup may take
 * the guest over (after fencing this host), so output produced after the
 * last ACK may only leave once that is impossible: the backup was fenced
 * (fence_cmd), it came back and re-synced, or an operator said so
 * (tiberctl release).
 */
enum tb_loss_policy {
	TB_LOSS_RELEASE = 0, /* release at once, run unprotected (unsafe
				unless the backup never fails over) */
	TB_LOSS_HOLD = 1,    /* hold output and keep the guest suspended */
	TB_LOSS_FENCE = 2,   /* hold output, guest runs; fence the backup
				(fence_cmd) or wait for it or an operator */
};

struct tb_engine_cfg {
	const struct tb_backend_ops *ops;
	struct tb_dom_cfg dom;
	const char *backup;	/* replicator address */
	struct tb_tls_ctx *tls; /* TLS credentials, or NULL: plaintext */
	double rate_hz;
	uint64_t max_epochs;	    /* stop after this many; 0 = run on */
	int64_t suspend_timeout_ns; /* await_suspended deadline */
	int64_t hb_interval_ns;
	int64_t hb_timeout_ns; /* nothing from the backup: lost */
	int64_t lag_limit_ns;  /* oldest unacked epoch older: lost */
	int64_t reconnect_interval_ns;
	unsigned max_inflight;	 /* staged-but-unacked epochs (>= 1) */
	unsigned precopy_rounds; /* first sync rounds while running */
	enum tb_loss_policy loss_policy;
	enum tb_engine_mode mode;
	bool gate_output; /* hold output until the backup acks */
	struct tb_codec_opts codec;
	struct tb_conn_opts conn;
	const char *trace_path;	   /* JSON Lines, one object per epoch */
	const char *control_path;  /* unix socket for tiberctl, or NULL */
	const char *control_group; /* its group (mode 0660), NULL: ours */
	const char *fence_cmd;	   /* fences the backup host, or NULL */
	int64_t fence_timeout_ns;
	/* Called from the receiver thread for every finished epoch. */
	void (*on_epoch)(void *arg, const struct tb_epoch_rec *rec);
	void *on_epoch_arg;
};

void tb_engine_cfg_defaults(struct tb_engine_cfg *cfg);

/* Everything known about one epoch: the trace line and the bench input. */
struct tb_epoch_rec {
	uint64_t epoch;
	bool full;	  /* first sync */
	bool acked;	  /* false: lost with the backup */
	int64_t t_tick;	  /* scheduled tick time */
	int64_t t_prearm; /* cow: the running harvest began (else 0) */
	int64_t t_request;
	int64_t t_notified; /* backend signalled the guest */
	int64_t t_suspended;
	int64_t t_harvested;
	int64_t t_staged;
	int64_t t_resumed;
	int64_t t_copied; /* cow: the copy after the resume done (else 0) */
	int64_t t_encoded;
	int64_t t_sent;
	int64_t t_acked;
	int64_t t_released;
	uint64_t dirty_pages;
	uint64_t raw_bytes;  /* page + state bytes before encoding */
	uint64_t wire_bytes; /* record bytes on the wire */
	uint64_t enc_pages[TB_ENC_MAX + 1];
	uint64_t skipped_ticks; /* ticks skipped since the previous epoch */
	uint64_t disk_writes;	/* journaled guest disk writes sent */
	uint64_t disk_bytes;	/* their bytes (and a first sync's disk) */
};

enum tb_engine_state {
	TB_ENG_STARTING = 0,
	TB_ENG_SYNCING = 1,
	TB_ENG_PROTECTED = 2,
	TB_ENG_UNPROTECTED = 3, /* backup lost, guest running */
	TB_ENG_HELD = 4,	/* backup lost, guest held (policy hold) */
	TB_ENG_STOPPED = 5,
	TB_ENG_ISOLATED = 6, /* backup lost, guest running, output held */
	TB_ENG_FENCED = 7,   /* the backup took over: guest stopped here */
	TB_ENG_SWITCHED = 8, /* planned switchover done: the guest runs on
				the backup from our last epoch, stopped here */
};
const char *tb_engine_state_name(enum tb_engine_state s);

/* Histograms of the checkpoint phases (metrics): per phase, counts of
 * epochs by upper bound tb_phase_le[] (seconds; the last is +Inf). */
enum tb_phase {
	TB_PH_PAUSE,	 /* suspended -> resumed */
	TB_PH_HANDSHAKE, /* request -> suspended */
	TB_PH_HARVEST,	 /* suspended -> dirty bitmap harvested */
	TB_PH_COPY,	 /* harvested -> staged */
	TB_PH_RESUME,	 /* staged -> resumed */
	TB_PH_COMMIT,	 /* resumed -> acked by the backup */
	TB_PH_MAX
};
#define TB_PHASE_BUCKETS 12
extern const double tb_phase_le[TB_PHASE_BUCKETS];
const char *tb_phase_name(enum tb_phase p);
struct tb_phase_hist {
	uint64_t bucket[TB_PHASE_BUCKETS]; /* not cumulative */
	uint64_t count;
	double sum_s;
};

struct tb_engine_status {
	enum tb_engine_state state;
	struct tb_dom_info info;
	double rate_hz;
	uint64_t epochs_started;
	uint64_t last_acked_epoch;
	uint64_t epochs_acked;
	uint64_t inflight;
	int64_t last_pause_ns;
	int64_t pause_p50_ns, pause_p99_ns; /* over the last 1024 epochs */
	int64_t backup_lag_ns; /* age of the oldest unacked epoch */
	uint64_t skipped_ticks;
	uint64_t deferred_ticks; /* checkpoints taken when an ACK freed a slot */
	uint64_t missed_ticks;	 /* timer overruns */
	uint64_t loop_ticks;	 /* ticks the epoch loop has handled */
	/* the last first sync: pre-copy pages copied, to copy (it grows by
	 * what the guest dirties meanwhile), seconds left (while syncing) */
	uint64_t sync_done_pages, sync_total_pages;
	double sync_eta_s;
	struct tb_phase_hist phase[TB_PH_MAX];
	uint64_t suspend_timeouts;
	uint64_t backup_losses;
	uint64_t resyncs;
	uint64_t bytes_raw, bytes_wire;
	char link_error[192]; /* why the last connection attempt failed, or "" */
	struct tb_dom_stats dom;
};

struct tb_engine;

/* Attach to the domain (cfg->ops->attach).  0 or -errno (logged). */
int tb_engine_create(struct tb_engine **out, const struct tb_engine_cfg *cfg);
/* Run until stopped, max_epochs reached, or a fatal error (-errno). */
int tb_engine_run(struct tb_engine *e);
/* Async-signal-safe: ask tb_engine_run to finish. */
void tb_engine_stop(struct tb_engine *e);
void tb_engine_get_status(struct tb_engine *e, struct tb_engine_status *st);
/* Answer one tiberctl command line (status, release, switchover ADDR)
 * into @buf as one JSON object.  Thread-safe (the control thread). */
void tb_engine_control(struct tb_engine *e, const char *cmd, char *buf,
		       size_t len);
/* Status as one JSON object (no newline) into @buf. */
int tb_engine_status_json(struct tb_engine *e, char *buf, size_t len);
/* Detach (the guest is left running, output released) and free. */
void tb_engine_destroy(struct tb_engine *e);

/* One JSON Lines object for @rec (no newline) into @buf. */
int tb_epoch_rec_json(const struct tb_epoch_rec *rec, char *buf, size_t len);

#endif
