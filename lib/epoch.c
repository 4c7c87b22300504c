// SPDX-License-Identifier: MIT
/*
 * The epoch engine (primary side of one protected domain): its tick loop,
 * the checkpoint (one paused round), the staging slots and jobs, and the
 * engine's set-up and teardown.  Beside it, each with its own invariants:
 *   epoch_sync.c        the first sync (a FULL epoch) on every new link
 *   epoch_send.c        the sender thread: encoding and sending jobs
 *   epoch_link.c        connecting, the receiver thread, ACKs, goodbye
 *   epoch_policy.c      lag, the backup-loss policy, reconnecting
 *   epoch_switchover.c  the planned switchover
 *   epoch_status.c      state, status, trace records, control commands
 *   epoch_disk.c        the disks' records
 * and epoch_priv.h, the state they share.
 *
 * Invariants:
 * - The guest is never left suspended: every path that suspended it
 *   resumes it before returning, even on error (a stuck guest is worse
 *   than a lost epoch).
 * - Nothing goes over the network while the guest is paused (except in
 *   the xl-remus-style baseline mode, which exists to be measured).
 * - Dirty bits are never lost: a harvest ORs into e->dirty, which is only
 *   cleared once those pages are staged.  A failed epoch leaves them for
 *   the next one; a lost backup means a full re-sync anyway.
 * - At most max_inflight epochs are staged but not acked.  A tick that
 *   finds no free slot is deferred: its checkpoint is taken when an ACK
 *   frees a slot (counted in deferred_ticks); ticks that pass while one
 *   is deferred are skipped and counted, never queued.
 *
 * Threads: the caller of tb_engine_run (ticks, checkpoints, control
 * socket, reconnects); a sender (encode + send + heartbeats, the disks'
 * journal); a receiver (ACKs, heartbeats, loss detection); the backend's
 * copy threads inside copy_pages.  Backend hooks are called from the
 * tick thread, except output_release (receiver, at an ACK), get_stats
 * (any thread: status, metrics, systemd notify) and the disk hooks
 * include/tiber/backend.h marks as the sender's.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "tiber/ctlsock.h"
#include "tiber/epoch.h"
#include "tiber/log.h"
#include "epoch_priv.h"

void tb_engine_cfg_defaults(struct tb_engine_cfg *cfg)
{
	struct tb_codec_opts codec = TB_CODEC_OPTS_DEFAULT;

	memset(cfg, 0, sizeof(*cfg));
	cfg->dom.static_port = -1;
	cfg->dom.suspend_cancel = -1;
	cfg->dom.dirty_mech = "auto";
	cfg->dom.copy_threads = 2;
	cfg->rate_hz = 50;
	cfg->suspend_timeout_ns = 200 * TB_NSEC_PER_MSEC;
	cfg->hb_interval_ns = 100 * TB_NSEC_PER_MSEC;
	cfg->hb_timeout_ns = 1000 * TB_NSEC_PER_MSEC;
	cfg->lag_limit_ns = 3000 * TB_NSEC_PER_MSEC;
	cfg->reconnect_interval_ns = 1000 * TB_NSEC_PER_MSEC;
	cfg->max_inflight = 2;
	cfg->precopy_rounds = 3;
	cfg->gate_output = true;
	cfg->loss_policy = TB_LOSS_FENCE;
	cfg->fence_timeout_ns = 30 * TB_NSEC_PER_SEC;
	cfg->codec = codec;
}

/* ---------------------------------------------------------------- jobs */

static int job_alloc(struct job *j, size_t cap)
{
	size_t bytes = cap * TB_PAGE_SIZE;

	memset(j, 0, sizeof(*j));
	j->cap = cap;
	j->pfns = calloc(cap ? cap : 1, sizeof(*j->pfns));
	/* Reserved, touched lazily outside the pause (prefault_job). */
	j->pages = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (j->pages == MAP_FAILED)
		j->pages = NULL;
	return j->pfns && j->pages ? 0 : -ENOMEM;
}

static void job_free(struct job *j)
{
	free(j->pfns);
	if (j->pages)
		munmap(j->pages, j->cap * TB_PAGE_SIZE);
	tb_buf_free(&j->cpu);
	tb_buf_free(&j->dev);
	tb_buf_free(&j->dext);
	j->pfns = NULL;
	j->pages = NULL;
}

/* Touch staging pages up to @want so the copy in the pause does not fault
 * (a fresh page costs ~1.5 us, notes §3).  Runs with the guest running. */
static void prefault_job(struct job *j, size_t want)
{
	size_t i;

	want = TB_MIN(want, j->cap);
	for (i = j->prefaulted; i < want; i++)
		j->pages[i * TB_PAGE_SIZE] = 0;
	if (want > j->prefaulted)
		j->prefaulted = want;
}

void tb_eng_queue_push(struct tb_engine *e, struct job *j)
{
	pthread_mutex_lock(&e->lock);
	j->next = NULL;
	j->sent = false;
	j->busy = true;
	if (e->q_tail)
		e->q_tail->next = j;
	else
		e->q_head = j;
	e->q_tail = j;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
}

/* ---------------------------------------------------------- checkpoint */

/* mode cow: the running harvests before a suspend (see checkpoint) */
#define COW_PREARM_PASSES 3
#define COW_PREARM_NS	  (500 * TB_NSEC_PER_USEC)

/*
 * Resume with the engine's resume kind; log if it fails.
 * A guest must never be left suspended: if the fast (cooperative) resume
 * fails, try the slow one, in which the guest sees a restore (seed 004)
 * and re-initialises its devices.  An error here is fatal to the engine.
 */
int tb_eng_resume_guest(struct tb_engine *e)
{
	int rc = e->cfg.ops->resume(e->dom, e->fast_resume);

	if (rc && e->fast_resume) {
		tb_warn_rc(rc, "dom=%u fast resume failed (%s); slow resume",
			   e->info.domid, tb_backend_reason());
		rc = e->cfg.ops->resume(e->dom, false);
	}
	if (rc)
		tb_err_rc(rc, "dom=%u resume: %s", e->info.domid,
			  tb_backend_reason());
	return rc;
}

int tb_eng_suspend_guest(struct tb_engine *e, struct tb_epoch_rec *rec)
{
	const struct tb_backend_ops *ops = e->cfg.ops;
	int rc;

	rec->t_request = tb_now_ns();
	rc = ops->request_suspend(e->dom);
	if (!rc)
		rc = ops->await_suspended(
			e->dom, rec->t_request + e->cfg.suspend_timeout_ns);
	rec->t_suspended = tb_now_ns();
	if (rc == -ETIMEDOUT) {
		pthread_mutex_lock(&e->lock);
		e->timeouts++;
		pthread_mutex_unlock(&e->lock);
		tb_warn("dom=%u epoch=%" PRIu64
			" guest did not suspend within %" PRId64
			" ms; request cancelled, guest running",
			e->info.domid, rec->epoch,
			e->cfg.suspend_timeout_ns / TB_NSEC_PER_MSEC);
	} else if (rc) {
		tb_err_rc(rc, "dom=%u epoch=%" PRIu64 " suspend: %s",
			  e->info.domid, rec->epoch, tb_backend_reason());
	}
	return rc;
}

/* Take the dirty bits into @into; log if that fails. */
static int harvest(struct tb_engine *e, uint64_t epoch, struct tb_bitmap *into)
{
	int rc = e->cfg.ops->harvest_dirty(e->dom, into);

	if (rc)
		tb_err_rc(rc, "dom=%u epoch=%" PRIu64 " dirty harvest: %s",
			  e->info.domid, epoch, tb_backend_reason());
	return rc;
}

static void end_pausing(struct tb_engine *e)
{
	if (!atomic_load(&e->pausing))
		return;
	pthread_mutex_lock(&e->lock);
	atomic_store(&e->pausing, false);
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
}

/*
 * One paused round into @j: harvest, copy, state, boundary, resume.  In
 * copy-on-write mode: harvest (running), suspend, harvest, arm, state,
 * boundary, resume, then copy.
 * @already_suspended: the guest is held suspended (policy hold).
 */
int tb_eng_checkpoint(struct tb_engine *e, struct job *j,
		      bool already_suspended)
{
	const struct tb_backend_ops *ops = e->cfg.ops;
	struct tb_epoch_rec *rec = &j->rec;
	bool cow = e->cfg.mode == TB_MODE_COW, armed = false;
	struct tb_dom_stats st;
	size_t n, prepared = 0;
	int rc, rc2;

	if (e->cfg.mode != TB_MODE_SEND_WHILE_PAUSED)
		atomic_store(&e->pausing, true);
	if (cow && !already_suspended) {
		/* Re-protect what was written so far while the guest runs:
		 * the paused harvest then only has the pages written since
		 * (copy-on-write needs every dirty page protected).  A pass
		 * that took long let the guest dirty more meanwhile: up to
		 * COW_PREARM_PASSES, until one takes under COW_PREARM_NS. */
		int64_t t = rec->t_prearm = tb_now_ns(), t2;
		unsigned pass = 0;

		do {
			rc = harvest(e, j->epoch, &e->dirty);
			t2 = tb_now_ns();
			if (t2 - t < COW_PREARM_NS)
				break;
			t = t2;
		} while (!rc && ++pass < COW_PREARM_PASSES);
		if (!rc && ops->cow_prepare) {
			/* the pages so far, marked while the guest runs: the
			 * pause arms them and marks only what comes after */
			prepared =
				tb_bitmap_to_list(&e->dirty, j->pfns, j->cap);
			rc = ops->cow_prepare(e->dom, j->pfns, prepared,
					      j->pages);
			if (rc)
				tb_err_rc(rc,
					  "dom=%u epoch=%" PRIu64
					  " cow_prepare: %s",
					  e->info.domid, j->epoch,
					  tb_backend_reason());
			tb_bitmap_clear_all(&e->scratch);
		}
		if (rc) {
			end_pausing(e);
			return rc;
		}
	}
	if (!already_suspended) {
		rc = tb_eng_suspend_guest(e, rec);
		if (rc) {
			end_pausing(e);
			return rc;
		}
	} else {
		rec->t_request = rec->t_suspended = tb_now_ns();
	}
	/* Paused from here: only harvest, copy, state, then resume. */
	if (prepared) {
		/* the pages dirtied since the prepare go after its list */
		rc = harvest(e, j->epoch, &e->scratch);
		n = prepared + tb_bitmap_take_new(&e->dirty, &e->scratch,
						  j->pfns + prepared,
						  j->cap - prepared);
	} else {
		rc = harvest(e, j->epoch, &e->dirty);
		n = rc ? 0 : tb_bitmap_to_list(&e->dirty, j->pfns, j->cap);
	}
	rec->t_harvested = tb_now_ns();
	if (rc)
		goto out_resume;
	j->n = n;
	rec->dirty_pages = n;
	if (cow) {
		rc = ops->cow_arm(e->dom, j->pfns, n, j->pages);
		armed = !rc;
	} else {
		rc = ops->copy_pages(e->dom, j->pfns, n, j->pages);
	}
	if (!rc) {
		tb_buf_reset(&j->cpu);
		tb_buf_reset(&j->dev);
		rc = ops->save_cpu_state(e->dom, &j->cpu);
	}
	if (!rc)
		rc = ops->save_device_state(e->dom, &j->dev);
	if (!rc && e->cfg.gate_output)
		rc = ops->output_boundary(e->dom, j->epoch);
	if (!rc && e->edisk.nr_disks)
		rc = ops->disk_boundary(e->dom, j->epoch);
	rec->t_staged = tb_now_ns();
	if (rc) {
		tb_err_rc(rc, "dom=%u epoch=%" PRIu64 " staging: %s",
			  e->info.domid, j->epoch, tb_backend_reason());
		goto out_resume;
	}
	if (e->cfg.mode == TB_MODE_SEND_WHILE_PAUSED) {
		/* Baseline: ship while the guest stays suspended. */
		tb_eng_queue_push(e, j);
		pthread_mutex_lock(&e->lock);
		e->inflight++;
		while (!j->sent && !e->link_lost)
			pthread_cond_wait(&e->cond, &e->lock);
		pthread_mutex_unlock(&e->lock);
	}
out_resume:
	/* Resume even on error: a stuck guest is worse than a lost epoch.
	 * A switchover's last epoch leaves it suspended (if staged). */
	rc2 = rc || !e->keep_suspended ? tb_eng_resume_guest(e) : 0;
	e->resume_failed = rc2 != 0;
	rec->t_resumed = tb_now_ns();
	if (armed) {
		/* the pages nobody wrote since: copied now, guest running */
		int rc3 = ops->cow_finish(e->dom);

		rec->t_copied = tb_now_ns();
		if (rc3 && !rc) {
			tb_err_rc(rc3, "dom=%u epoch=%" PRIu64 " copy: %s",
				  e->info.domid, j->epoch, tb_backend_reason());
			rc = rc3;
		}
	}
	end_pausing(e);
	/* Bookkeeping only once the guest runs again. */
	ops->get_stats(e->dom, &st);
	rec->t_notified = st.t_notify_ns;
	if (rc)
		return rc;
	if (rc2)
		return rc2;
	tb_bitmap_clear_all(&e->dirty);
	if (e->cfg.mode != TB_MODE_SEND_WHILE_PAUSED) {
		pthread_mutex_lock(&e->lock);
		e->inflight++;
		pthread_mutex_unlock(&e->lock);
		tb_eng_queue_push(e, j);
	}
	return 0;
}

void tb_eng_slot_unreserve(struct tb_engine *e, struct job *j)
{
	pthread_mutex_lock(&e->lock);
	j->busy = false;
	pthread_mutex_unlock(&e->lock);
}

static struct job *free_slot_locked(struct tb_engine *e)
{
	unsigned i;

	for (i = 0; i < e->cfg.max_inflight; i++)
		if (!e->slots[i].busy)
			return &e->slots[i];
	return NULL;
}

struct job *tb_eng_free_slot(struct tb_engine *e)
{
	struct job *j;

	pthread_mutex_lock(&e->lock);
	j = free_slot_locked(e);
	pthread_mutex_unlock(&e->lock);
	return j;
}

void tb_eng_slot_reset(struct tb_engine *e, struct job *j, bool full,
		       int64_t t_tick)
{
	memset(&j->rec, 0, sizeof(j->rec));
	j->type = JOB_CHECKPOINT;
	j->full = full;
	j->n = 0;
	pthread_mutex_lock(&e->lock);
	j->busy = true; /* reserved until acked, or until the epoch fails */
	j->epoch = e->next_epoch++;
	e->epochs_started++;
	j->rec.skipped_ticks = e->skipped_since;
	e->skipped_since = 0;
	pthread_mutex_unlock(&e->lock);
	j->rec.epoch = j->epoch;
	j->rec.full = full;
	j->rec.t_tick = t_tick;
	tb_buf_reset(&j->dext);
}

/* ---------------------------------------------------------------- loop */

/* Wait up to @ns for every staged epoch to be acked.  true if done. */
bool tb_eng_all_acked(struct tb_engine *e, int64_t ns)
{
	int64_t end = tb_now_ns() + ns;
	struct timespec ts = { .tv_sec = end / TB_NSEC_PER_SEC,
			       .tv_nsec = end % TB_NSEC_PER_SEC };
	bool done;

	pthread_mutex_lock(&e->lock);
	while (e->inflight && !e->link_lost &&
	       pthread_cond_timedwait(&e->cond, &e->lock, &ts) != ETIMEDOUT)
		;
	done = !e->inflight && !e->link_lost;
	pthread_mutex_unlock(&e->lock);
	return done;
}

static int tick(struct tb_engine *e, int64_t t_tick)
{
	enum tb_engine_state st;
	struct job *j;
	bool lost;
	int rc;

	pthread_mutex_lock(&e->lock);
	lost = e->link_lost && e->link_up;
	pthread_mutex_unlock(&e->lock);
	if (lost || (e->link_up && tb_eng_backup_lagging(e, t_tick))) {
		if (!lost)
			tb_err("backup=%s no ACK for %" PRId64
			       " ms: declaring it lost",
			       e->cfg.backup,
			       e->cfg.lag_limit_ns / TB_NSEC_PER_MSEC);
		tb_eng_lost_backup(e);
		e->last_loss_log_ns = 0;
		return 0;
	}
	st = tb_eng_get_state(e);
	if (st == TB_ENG_FENCED)
		return 0; /* the guest is gone; wait to be stopped */
	if (atomic_exchange(&e->switchover_req, false) &&
	    st == TB_ENG_PROTECTED && e->link_up && !e->full_pending)
		return tb_eng_switchover(e, t_tick);
	if (!e->link_up) {
		if ((st == TB_ENG_ISOLATED || st == TB_ENG_HELD) &&
		    tb_eng_end_hold(e, t_tick))
			return 0;
		if (tb_eng_try_reconnect(e, t_tick))
			return 0;
		rc = tb_eng_first_sync(e, t_tick);
		e->rearm = true;
		if (!rc || rc == -ETIMEDOUT || atomic_load(&e->stopping))
			return 0;
		goto check_guest;
	}
	if (e->full_pending) {
		e->full_pending->rec.t_tick = t_tick;
		rc = tb_eng_finish_full(e);
		if (!rc || rc == -ETIMEDOUT)
			return 0;
		goto check_guest;
	}
	/* under the lock of the ACK that frees a slot: a deferral is
	 * never missed by it */
	pthread_mutex_lock(&e->lock);
	j = free_slot_locked(e);
	if (!j && !e->deferred) {
		e->deferred = true;
		e->deferred_tick = t_tick;
		e->deferred_ticks++;
	} else if (!j) {
		e->skipped++;
		e->skipped_since++;
	} else {
		e->deferred = false; /* this checkpoint is the deferred one */
	}
	pthread_mutex_unlock(&e->lock);
	if (!j)
		return 0;
	tb_eng_slot_reset(e, j, false, t_tick);
	rc = tb_eng_checkpoint(e, j, false);
	if (rc)
		tb_eng_slot_unreserve(e, j);
	if (rc == -ETIMEDOUT)
		return 0; /* guest running; counted; next tick retries */
	if (!rc) {
		/* Grow staging outside the pause for the next epochs. */
		prefault_job(j, TB_MAX(j->n * 2, (size_t)4096));
		return 0;
	}
check_guest:
	if (e->resume_failed) {
		tb_err("dom=%u left suspended: stopping (tiberctl recover "
		       "resumes it)",
		       e->info.domid);
		return -EIO;
	}
	rc = e->cfg.ops->check_health(e->dom);
	if (rc) {
		tb_err_rc(rc, "dom=%u guest is gone or crashed: %s",
			  e->info.domid, tb_backend_reason());
		return rc;
	}
	return 0;
}

/* Arm the tick timer: first tick one period from now, then every period
 * at absolute times (so the period never drifts by the checkpoint cost). */
static int arm_ticks(struct tb_engine *e, int64_t period, int64_t *t0)
{
	struct itimerspec its = { 0 };

	*t0 = tb_now_ns() + period;
	its.it_value.tv_sec = *t0 / TB_NSEC_PER_SEC;
	its.it_value.tv_nsec = *t0 % TB_NSEC_PER_SEC;
	its.it_interval.tv_sec = period / TB_NSEC_PER_SEC;
	its.it_interval.tv_nsec = period % TB_NSEC_PER_SEC;
	return timerfd_settime(e->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) ?
		       -errno :
		       0;
}

int tb_engine_run(struct tb_engine *e)
{
	int64_t period = (int64_t)(1e9 / e->cfg.rate_hz), t0, t_tick;
	struct pollfd pfd[3];
	uint64_t expirations, ticks = 0;
	bool deferred;
	int rc = 0, hrc;

	rc = arm_ticks(e, period, &t0);
	if (rc)
		return rc;
	while (!atomic_load(&e->stopping)) {
		pfd[0] = (struct pollfd){ .fd = e->timer_fd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = e->stop_fd, .events = POLLIN };
		pfd[2] = (struct pollfd){ .fd = e->slot_fd, .events = POLLIN };
		if (poll(pfd, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		if ((pfd[2].revents & POLLIN) &&
		    read(e->slot_fd, &expirations, sizeof(expirations)) ==
			    sizeof(expirations)) {
			/* an ACK freed a slot: the deferred tick's checkpoint
			 * now (unless a tick took it meanwhile) */
			pthread_mutex_lock(&e->lock);
			deferred = e->deferred;
			t_tick = e->deferred_tick;
			pthread_mutex_unlock(&e->lock);
			rc = deferred ? tick(e, t_tick) : 0;
			if (rc)
				goto out_loop;
		}
		if (!(pfd[0].revents & POLLIN))
			continue;
		if (read(e->timer_fd, &expirations, sizeof(expirations)) !=
		    sizeof(expirations))
			continue;
		if (expirations > 1) {
			pthread_mutex_lock(&e->lock);
			e->missed += expirations - 1;
			e->skipped_since += expirations - 1;
			pthread_mutex_unlock(&e->lock);
		}
		ticks += expirations;
		t_tick = t0 + (int64_t)(ticks - 1) * period;
		rc = tick(e, t_tick);
		atomic_fetch_add(&e->loop_ticks, 1);
		if (rc)
			goto out_loop;
		if (e->rearm) {
			/* A first sync is not periodic: restart the fixed-rate
			 * schedule after it instead of counting the ticks it
			 * spanned as missed. */
			e->rearm = false;
			rc = arm_ticks(e, period, &t0);
			if (rc)
				break;
			ticks = 0;
			pthread_mutex_lock(&e->lock);
			e->skipped_since = 0;
			pthread_mutex_unlock(&e->lock);
		}
		if (e->cfg.max_epochs && e->epochs_started >= e->cfg.max_epochs)
			break;
	}
out_loop:
	if (rc > 0)
		rc = 0; /* switched over: done */
	/* Wait (bounded) for the last epochs' ACKs before we stop. */
	if (!rc && e->link_up)
		tb_eng_all_acked(e, e->cfg.lag_limit_ns);
	switch (tb_eng_get_state(e)) {
	case TB_ENG_FENCED:
	case TB_ENG_SWITCHED:
		return rc; /* the guest is gone, on purpose */
	case TB_ENG_ISOLATED:
	case TB_ENG_HELD:
		tb_err("dom=%u stopping while the backup is lost: the output held since its last ACK is released now; the backup must not take this guest over",
		       e->info.domid);
		break;
	default:
		break;
	}
	if (e->held_suspended) {
		tb_eng_resume_guest(e);
		e->held_suspended = false;
	}
	tb_eng_stop_link(e, true);
	hrc = e->cfg.ops->check_health(e->dom);
	if (!rc && hrc)
		rc = hrc;
	tb_eng_set_state(e, TB_ENG_STOPPED);
	return rc;
}

void tb_engine_stop(struct tb_engine *e)
{
	uint64_t one = 1;

	atomic_store(&e->stopping, true);
	if (write(e->stop_fd, &one, sizeof(one)) < 0)
		return;
}

/* ---------------------------------------------------------------- setup */

int tb_engine_create(struct tb_engine **out, const struct tb_engine_cfg *cfg)
{
	pthread_condattr_t ca;
	struct tb_engine *e;
	size_t nr;
	unsigned i;
	int rc;

	if (!cfg->ops || !cfg->backup || cfg->rate_hz <= 0 ||
	    cfg->rate_hz > 10000 || cfg->max_inflight < 1 ||
	    cfg->max_inflight > 8)
		return -EINVAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->cfg = *cfg;
	e->stop_fd = e->timer_fd = e->slot_fd = -1;
	pthread_mutex_init(&e->lock, NULL);
	pthread_mutex_init(&e->send_lock, NULL);
	/* Every timed wait here takes CLOCK_MONOTONIC deadlines. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&e->trace_lock, NULL);
	e->next_epoch = 1;

	rc = cfg->ops->attach(&e->dom, &cfg->dom);
	if (rc) {
		tb_err_rc(rc, "attach %s: %s",
			  cfg->dom.guest ? cfg->dom.guest : "domain",
			  tb_backend_reason());
		e->dom = NULL;
		goto fail;
	}
	cfg->ops->get_info(e->dom, &e->info);
	if (cfg->mode == TB_MODE_COW &&
	    (!cfg->ops->cow_arm || !e->info.can_cow)) {
		tb_err("dom=%u mode cow: the %s backend cannot copy on write with dirty tracking %s%s",
		       e->info.domid, cfg->ops->name, e->info.dirty_mech,
		       cfg->ops->cow_arm ?
			       " (it needs uffd-wp-sync: dirty_mech = uffd-sync, tiber-simguest --dirty-mech uffd-sync)" :
			       "");
		rc = -ENOTSUP;
		goto fail;
	}
	e->fast_resume = e->info.suspend_cancel &&
			 e->info.suspend_mode != TB_SUSPEND_PAUSE;
	if (!e->info.suspend_cancel && e->info.suspend_mode != TB_SUSPEND_PAUSE)
		tb_warn("dom=%u guest does not advertise SUSPEND_CANCEL: slow resume every epoch (it sees a restore)",
			e->info.domid);
	if (e->info.suspend_mode == TB_SUSPEND_PAUSE)
		tb_warn("dom=%u suspend mode pause: no guest cooperation, no suspend-cancel",
			e->info.domid);
	rc = tb_edisk_init(&e->edisk, cfg->ops, e->dom, &e->info);
	if (rc) {
		tb_err_rc(rc,
			  "dom=%u disks: the %s backend cannot replicate them",
			  e->info.domid, cfg->ops->name);
		goto fail;
	}
	if (e->edisk.nr_disks)
		tb_info("dom=%u %u disk(s) replicated, disk 0: %" PRIu64 " MiB",
			e->info.domid, e->edisk.nr_disks,
			e->edisk.size[0] >> 20);
	nr = (size_t)e->info.nr_pages;
	rc = -ENOMEM;
	if (tb_bitmap_init(&e->dirty, nr) || tb_bitmap_init(&e->scratch, nr) ||
	    tb_epoch_enc_init(&e->penc, nr, CHUNK_PAGES,
			      cfg->codec.compress && cfg->codec.xor_delta))
		goto fail;
	e->pfn_list = calloc(nr ? nr : 1, sizeof(uint64_t));
	e->slots = calloc(cfg->max_inflight, sizeof(*e->slots));
	if (!e->pfn_list || !e->slots)
		goto fail;
	for (i = 0; i < cfg->max_inflight; i++) {
		rc = job_alloc(&e->slots[i], nr);
		if (rc)
			goto fail;
		prefault_job(&e->slots[i], TB_MIN(nr, (size_t)16384));
	}
	for (i = 0; i < NR_CHUNKS; i++) {
		rc = job_alloc(&e->chunks[i], CHUNK_PAGES);
		if (rc)
			goto fail;
		prefault_job(&e->chunks[i], CHUNK_PAGES);
	}
	rc = tb_digest_init(&e->digest);
	if (rc)
		goto fail;
	e->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	e->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	e->slot_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (e->stop_fd < 0 || e->timer_fd < 0 || e->slot_fd < 0) {
		rc = -errno;
		goto fail;
	}
	if (cfg->control_path && *cfg->control_path) {
		rc = tb_ctl_open(&e->ctl, cfg->control_path, cfg->control_group,
				 tb_eng_control_cb, e);
		if (rc) {
			tb_err_rc(rc, "control socket %s", cfg->control_path);
			goto fail;
		}
	}
	if (cfg->trace_path) {
		e->trace = fopen(cfg->trace_path, "w");
		if (!e->trace) {
			rc = -errno;
			tb_err_rc(rc, "trace file %s", cfg->trace_path);
			goto fail;
		}
	}
	/* Output is gated from the first connection on
	 * (tb_eng_try_reconnect). */
	e->state = TB_ENG_STARTING;
	*out = e;
	return 0;
fail:
	tb_engine_destroy(e);
	return rc;
}

void tb_engine_destroy(struct tb_engine *e)
{
	unsigned i;

	if (!e)
		return;
	tb_ctl_close(e->ctl); /* first: its thread reads the engine */
	if (e->threads_running)
		tb_eng_stop_link(e, false);
	tb_conn_close(e->old_conn);
	if (e->dom)
		e->cfg.ops->detach(e->dom); /* resumes, opens the gate */
	if (e->slots)
		for (i = 0; i < e->cfg.max_inflight; i++)
			job_free(&e->slots[i]);
	free(e->slots);
	for (i = 0; i < NR_CHUNKS; i++)
		job_free(&e->chunks[i]);
	tb_bitmap_free(&e->dirty);
	tb_bitmap_free(&e->scratch);
	tb_epoch_enc_free(&e->penc);
	free(e->pfn_list);
	tb_edisk_free(&e->edisk);
	tb_buf_free(&e->sendbuf);
	if (e->digest.state)
		tb_digest_free(&e->digest);
	if (e->trace)
		fclose(e->trace);
	if (e->stop_fd >= 0)
		close(e->stop_fd);
	if (e->timer_fd >= 0)
		close(e->timer_fd);
	if (e->slot_fd >= 0)
		close(e->slot_fd);
	pthread_mutex_destroy(&e->lock);
	pthread_mutex_destroy(&e->send_lock);
	pthread_cond_destroy(&e->cond);
	pthread_mutex_destroy(&e->trace_lock);
	free(e);
}
