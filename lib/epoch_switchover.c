// SPDX-License-Identifier: MIT
/*
 * The epoch engine's planned switchover (tiberctl switchover): the guest
 * moves to the backup on purpose, and this side stops.
 *
 * Invariants:
 * - No output is lost: the last epoch is taken with the guest left
 *   suspended, and the goodbye SWITCHOVER is sent only once every epoch,
 *   that one included, was acked (its output released, as always).
 * - None is duplicated: our guest never runs past the epoch the backup
 *   starts from; it is destroyed once its released output has left.
 * - A failure before the last epoch is acked aborts the switchover with
 *   the guest running here, protected as before.
 */
#include <errno.h>
#include <inttypes.h>

#include "tiber/log.h"
#include "epoch_priv.h"

/* Released output still on its way out (the sim guest's gate thread,
 * a vif's queue) must leave before the guest is destroyed. */
static void drain_output(struct tb_engine *e, int64_t ns)
{
	int64_t end = tb_now_ns() + ns;
	struct tb_dom_stats st;

	for (;;) {
		e->cfg.ops->get_stats(e->dom, &st);
		if (!st.output_held_bytes)
			return;
		if (tb_now_ns() >= end)
			break;
		tb_sleep_until(tb_now_ns() + TB_NSEC_PER_MSEC);
	}
	tb_warn("dom=%u %" PRIu64
		" bytes of released output did not leave in %" PRId64
		" ms; they are lost with the guest",
		e->info.domid, st.output_held_bytes, ns / TB_NSEC_PER_MSEC);
}

/*
 * Planned switchover (tiberctl switchover): a last epoch taken with the
 * guest left suspended; once the backup acked it (its output released,
 * as always), the goodbye SWITCHOVER tells the backup to start the guest
 * from exactly that epoch, and ours is destroyed.  No output is lost (all
 * of it was acked) and none is duplicated (our guest never runs past the
 * epoch the backup starts from).  1 when done; 0 if aborted (the guest
 * runs on here, protected as before).
 */
int tb_eng_switchover(struct tb_engine *e, int64_t t_tick)
{
	struct job *j;
	uint64_t epoch;
	int rc;

	tb_info("dom=%u SWITCHOVER to backup=%s: last epoch", e->info.domid,
		e->cfg.backup);
	j = tb_eng_all_acked(e, e->cfg.lag_limit_ns) ? tb_eng_free_slot(e) :
						       NULL;
	if (!j) {
		tb_err("dom=%u switchover aborted: earlier epochs not acked",
		       e->info.domid);
		return 0;
	}
	tb_eng_slot_reset(e, j, false, t_tick);
	epoch = j->epoch;
	e->keep_suspended = true;
	rc = tb_eng_checkpoint(e, j, false);
	e->keep_suspended = false;
	if (rc) {
		tb_eng_slot_unreserve(e, j);
		tb_err("dom=%u switchover aborted: last epoch failed",
		       e->info.domid);
		return 0; /* checkpoint() resumed the guest */
	}
	if (!tb_eng_all_acked(e, e->cfg.lag_limit_ns)) {
		tb_err("dom=%u switchover aborted: epoch %" PRIu64
		       " not acked; guest resumed here",
		       e->info.domid, epoch);
		tb_eng_resume_guest(e);
		return 0;
	}
	e->bye_code = TB_ERROR_SWITCHOVER;
	tb_eng_stop_link(e, true);
	drain_output(e, 2 * TB_NSEC_PER_SEC);
	rc = e->cfg.ops->destroy(e->dom);
	if (rc)
		tb_err_rc(rc,
			  "dom=%u switchover: destroying the guest here: %s",
			  e->info.domid, tb_backend_reason());
	tb_eng_set_state(e, TB_ENG_SWITCHED);
	tb_info("dom=%u SWITCHOVER DONE at epoch %" PRIu64
		": the guest continues on backup=%s; stopped here",
		e->info.domid, epoch, e->cfg.backup);
	return 1;
}
