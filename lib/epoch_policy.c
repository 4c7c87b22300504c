// SPDX-License-Identifier: MIT
/*
 * The epoch engine's backup-loss policy: when the backup counts as lost
 * (the link threads marked the link lost, or no ACK within lag_limit),
 * what the guest and its output do then (loss_policy release: run
 * unprotected; hold: keep the guest suspended; fence, or a failed hold:
 * isolated, running with its output held), how a hold ends (fence_cmd
 * fenced the backup, or `tiberctl release`), reconnecting, and
 * self-fencing when the backup has taken the guest over.
 *
 * Invariants:
 * - If the backup is lost, policy decides: release everything and run
 *   unprotected, or hold output (and with policy hold keep the guest
 *   suspended) until the backup is back.
 * - Held output is released only once the backup cannot take the guest
 *   over (it was fenced, or an operator vouched for it), under policy
 *   release, or when the engine stops (tb_engine_run says so, loudly).
 * - A backup that runs the guest (PROMOTED at reconnect) gets it: ours is
 *   destroyed and its held output never released.
 * - A reconnection starts a full sync with output gated again.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "tiber/fence.h"
#include "tiber/log.h"
#include "epoch_priv.h"

#define LINK_WARN_EVERY_NS (30 * TB_NSEC_PER_SEC)

/* Run unprotected: resume a held guest, let all held output go. */
static void unprotect(struct tb_engine *e, const char *why)
{
	if (e->held_suspended) {
		tb_eng_resume_guest(e);
		e->held_suspended = false;
	}
	if (e->cfg.gate_output)
		e->cfg.ops->output_set_gated(e->dom, false);
	tb_eng_set_state(e, TB_ENG_UNPROTECTED);
	tb_err("dom=%u %s: guest runs UNPROTECTED, output released; reconnecting every %" PRId64
	       " ms",
	       e->info.domid, why,
	       e->cfg.reconnect_interval_ns / TB_NSEC_PER_MSEC);
}

void tb_eng_lost_backup(struct tb_engine *e)
{
	struct tb_epoch_rec r = { 0 };
	const char *until;
	int rc;

	/* Lag limit: the link threads still run; goodbye first. */
	tb_eng_say_goodbye(e, TB_ERROR_RECONNECTING,
			   "primary alive, backup too slow; reconnecting");
	tb_eng_stop_link(e, false);
	pthread_mutex_lock(&e->lock);
	e->losses++;
	pthread_mutex_unlock(&e->lock);
	e->next_fence_ns = 0;
	if (e->cfg.loss_policy == TB_LOSS_RELEASE) {
		unprotect(e, "BACKUP LOST (policy release)");
		return;
	}
	until = e->cfg.fence_cmd ?
			"until the backup is back or fenced (fence_cmd)" :
			"until the backup is back or an operator runs `tiberctl release` (no fence_cmd)";
	if (e->cfg.loss_policy == TB_LOSS_HOLD) {
		rc = tb_eng_suspend_guest(e, &r);
		if (!rc) {
			e->held_suspended = true;
			tb_eng_set_state(e, TB_ENG_HELD);
			tb_err("dom=%u BACKUP LOST: guest held suspended and output held %s",
			       e->info.domid, until);
			return;
		}
		tb_err_rc(
			rc,
			"dom=%u BACKUP LOST: cannot hold the guest suspended; it runs with its output held",
			e->info.domid);
	}
	/* The backup may take the guest over: nothing produced after its
	 * last ACK may leave before we know it cannot. */
	tb_eng_set_state(e, TB_ENG_ISOLATED);
	tb_err("dom=%u BACKUP LOST: guest runs, its output held %s",
	       e->info.domid, until);
}

/* The backup took the guest over: stop ours, never release its output. */
static void self_fence(struct tb_engine *e)
{
	int rc;

	tb_err("dom=%u SELF-FENCING: backup=%s has taken this guest over (it runs there now); stopping it here, its held output is discarded",
	       e->info.domid, e->cfg.backup);
	rc = e->cfg.ops->destroy(e->dom);
	if (rc)
		tb_err_rc(rc, "dom=%u self-fencing: %s", e->info.domid,
			  tb_backend_reason());
	e->held_suspended = false;
	tb_eng_set_state(e, TB_ENG_FENCED);
}

/* Still holding after a backup loss: fence the backup if we can, or
 * take an operator's release.  Returns true if output was released. */
bool tb_eng_end_hold(struct tb_engine *e, int64_t now)
{
	int rc;

	if (atomic_exchange(&e->release_req, false)) {
		unprotect(e, "operator release (tiberctl release)");
		return true;
	}
	if (!e->cfg.fence_cmd || now < e->next_fence_ns)
		return false;
	rc = tb_fence_run("fence backup", e->cfg.fence_cmd, e->info.name,
			  e->cfg.backup, e->cfg.fence_timeout_ns);
	if (rc) {
		e->next_fence_ns = tb_now_ns() + e->cfg.reconnect_interval_ns;
		return false;
	}
	unprotect(e, "backup FENCED");
	return true;
}

int tb_eng_try_reconnect(struct tb_engine *e, int64_t now)
{
	char why[sizeof(e->link_text)];
	int rc;

	if (now - e->last_loss_log_ns < e->cfg.reconnect_interval_ns)
		return -EAGAIN;
	e->last_loss_log_ns = now;
	rc = tb_eng_start_link(e);
	if (rc == -EOWNERDEAD) {
		self_fence(e);
		return rc;
	}
	snprintf(why, sizeof(why), "%s",
		 !rc		? "" :
		 e->link_why[0] ? e->link_why :
				  tb_strerror(rc));
	for (char *q = why; *q; q++)
		if (*q == '"' || *q == '\\' || (unsigned char)*q < 0x20)
			*q = '\''; /* it goes into the status JSON */
	pthread_mutex_lock(&e->lock);
	/* loud, but once per reason (and again every 30 s) */
	if (rc && (strcmp(why, e->link_text) != 0 ||
		   now - e->link_warn_ns >= LINK_WARN_EVERY_NS)) {
		tb_warn("backup=%s unreachable, retrying every %" PRId64
			" ms: %s",
			e->cfg.backup,
			e->cfg.reconnect_interval_ns / TB_NSEC_PER_MSEC, why);
		e->link_warn_ns = now;
	}
	memcpy(e->link_text, why, sizeof(why));
	pthread_mutex_unlock(&e->lock);
	if (rc)
		return rc;
	tb_info("dom=%u backup=%s connected; full sync", e->info.domid,
		e->cfg.backup);
	if (e->cfg.gate_output)
		e->cfg.ops->output_set_gated(e->dom, true);
	pthread_mutex_lock(&e->lock);
	e->resyncs++;
	pthread_mutex_unlock(&e->lock);
	return 0;
}

/*
 * Age of the oldest staged-but-unacked epoch (0: none).  Caller holds
 * the lock.  A first sync's closing epoch waits behind the whole copy
 * on the wire (minutes over a slow link), and the epochs after it wait
 * behind it: while it is being sent no clock runs (a send that makes no
 * progress for lag_limit fails on its own deadline), and from when it is
 * all sent the clocks start no earlier than that.
 */
int64_t tb_eng_oldest_unacked_age_locked(struct tb_engine *e, int64_t now)
{
	int64_t age = 0, floor = 0;
	unsigned i;

	for (i = 0; i < e->cfg.max_inflight; i++) {
		struct job *j = &e->slots[i];

		if (j->busy && j->full && j->rec.t_resumed) {
			if (!j->sent)
				return 0;
			floor = j->rec.t_sent;
		}
	}
	for (i = 0; i < e->cfg.max_inflight; i++) {
		struct job *j = &e->slots[i];
		int64_t t0 = TB_MAX(j->rec.t_resumed, floor);

		if (j->busy && j->rec.t_resumed && now - t0 > age)
			age = now - t0;
	}
	return age;
}

bool tb_eng_backup_lagging(struct tb_engine *e, int64_t now)
{
	int64_t age;

	pthread_mutex_lock(&e->lock);
	age = tb_eng_oldest_unacked_age_locked(e, now);
	pthread_mutex_unlock(&e->lock);
	return age > e->cfg.lag_limit_ns;
}
