// SPDX-License-Identifier: MIT
/*
 * The epoch engine against the in-process fake backend and a minimal
 * in-process backup (tb_replica over a unix socket).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "tiber/epoch.h"
#include "tiber/fake.h"
#include "tiber/replica.h"
#include "tiber/transport.h"

#define NPAGES 2048u

static struct tb_fake *fake;
static struct tb_replica rep;
static struct tb_listener *lis;
static pthread_t backup_thr, writer_thr;
static atomic_bool writer_stop, backup_stop;
static atomic_bool ack_hold; /* the backup holds its next ACK */
static atomic_uint_fast64_t acks;
static bool backup_running, writer_running;
static char addr[128];

/* A minimal backup: HELLO, then stage/commit/ACK until the link ends. */
static void *backup_main(void *arg)
{
	struct tb_buf out = { 0 };
	struct tb_conn *c;
	struct tb_rec rec;
	struct tb_hello h;
	int rc, serr;

	while (!atomic_load(&backup_stop)) {
		rc = tb_listener_accept(lis, &c, NULL,
					tb_now_ns() + 50 * TB_NSEC_PER_MSEC);
		if (rc)
			continue;
		rc = tb_conn_recv_rec(c, &rec, tb_now_ns() + TB_NSEC_PER_SEC);
		if (rc != 1 || rec.type != TB_REC_HELLO) {
			tb_conn_close(c);
			continue;
		}
		h = rec.u.hello;
		if (!rep.mem)
			ck_assert_int_eq(tb_replica_init(&rep, &h), 0);
		h.role = TB_ROLE_BACKUP;
		tb_enc_hello(&out, &h);
		tb_conn_send(c, out.data, out.len,
			     tb_now_ns() + TB_NSEC_PER_SEC);
		tb_buf_reset(&out);
		while (!atomic_load(&backup_stop)) {
			rc = tb_conn_recv_rec(
				c, &rec, tb_now_ns() + 50 * TB_NSEC_PER_MSEC);
			if (rc == -ETIMEDOUT)
				continue;
			if (rc <= 0)
				break;
			/* output of an epoch leaves only after its ACK */
			ck_assert_uint_le(__atomic_load_n(&fake->released_epoch,
							  __ATOMIC_ACQUIRE),
					  rep.committed_epoch);
			rc = tb_replica_rec(&rep, &rec, &serr);
			ck_assert_msg(rc >= 0, "replica: %s", rep.err);
			if (rc == 1) {
				struct tb_ack a = {
					.epoch = rep.committed_epoch
				};

				while (atomic_load(&ack_hold) &&
				       !atomic_load(&backup_stop))
					usleep(1000);
				tb_enc_ack(&out, &a);
				tb_conn_send(c, out.data, out.len,
					     tb_now_ns() + TB_NSEC_PER_SEC);
				tb_buf_reset(&out);
				atomic_fetch_add(&acks, 1);
			}
		}
		tb_replica_abort(&rep);
		tb_conn_close(c);
	}
	tb_buf_free(&out);
	return NULL;
}

static unsigned writer_pages = NPAGES; /* it writes pages below this */

static void *writer_main(void *arg)
{
	unsigned seed = 42;

	while (!atomic_load(&writer_stop)) {
		uint64_t pfn = (uint64_t)rand_r(&seed) % writer_pages;

		/* hot set: half the writes go to 64 pages */
		if (rand_r(&seed) & 1)
			pfn %= 64;
		tb_fake_write(fake, pfn, (uint32_t)rand_r(&seed) % TB_PAGE_SIZE,
			      (uint8_t)rand_r(&seed));
		if (!(fake->writes % 64))
			usleep(50);
	}
	return NULL;
}

static void start_backup(void)
{
	snprintf(addr, sizeof(addr), "unix:%s/tiber-test-epoch-%d.sock",
		 tb_test_tmp(), (int)getpid());
	ck_assert_int_eq(tb_listener_open(&lis, addr), 0);
	atomic_store(&backup_stop, false);
	ck_assert_int_eq(pthread_create(&backup_thr, NULL, backup_main, NULL),
			 0);
	backup_running = true;
}

static void stop_backup(void)
{
	if (!backup_running)
		return;
	atomic_store(&backup_stop, true);
	pthread_join(backup_thr, NULL);
	tb_listener_close(lis);
	backup_running = false;
}

static void setup(void)
{
	memset(&rep, 0, sizeof(rep));
	atomic_store(&acks, 0);
	atomic_store(&ack_hold, false);
	ck_assert_int_eq(tb_fake_create(&fake, NPAGES), 0);
	snprintf(addr, sizeof(addr), "unix:%s/tiber-test-epoch-none-%d.sock",
		 tb_test_tmp(), (int)getpid());
}

static void teardown(void)
{
	if (writer_running) {
		atomic_store(&writer_stop, true);
		pthread_join(writer_thr, NULL);
		writer_running = false;
	}
	stop_backup();
	if (rep.mem)
		tb_replica_free(&rep);
	tb_fake_destroy(fake);
}

static void base_cfg(struct tb_engine_cfg *cfg, double hz, uint64_t epochs)
{
	tb_engine_cfg_defaults(cfg);
	cfg->ops = &tb_backend_fake_ops;
	cfg->backup = addr;
	cfg->rate_hz = hz;
	cfg->max_epochs = epochs;
	cfg->suspend_timeout_ns = 20 * TB_NSEC_PER_MSEC;
	cfg->reconnect_interval_ns = 50 * TB_NSEC_PER_MSEC;
}

struct run_ctx {
	struct tb_engine *e;
	int rc;
};

static void *run_main(void *arg)
{
	struct run_ctx *r = arg;

	r->rc = tb_engine_run(r->e);
	return NULL;
}

static void compare(void *arg)
{
	unsigned i;

	for (i = 0; i < NPAGES; i++)
		ck_assert_msg(!memcmp(rep.mem + (size_t)i * TB_PAGE_SIZE,
				      fake->ram + (size_t)i * TB_PAGE_SIZE,
				      TB_PAGE_SIZE),
			      "replica page %u differs from the guest", i);
}

static void replica_equals_guest(enum tb_engine_mode mode)
{
	struct tb_engine_cfg cfg;
	struct tb_engine_status st;
	struct run_ctx r = { 0 };
	pthread_t t;

	start_backup();
	ck_assert_int_eq(pthread_create(&writer_thr, NULL, writer_main, NULL),
			 0);
	writer_running = true;
	base_cfg(&cfg, 200, 80);
	cfg.mode = mode;
	ck_assert_int_eq(tb_engine_create(&r.e, &cfg), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, run_main, &r), 0);
	/* Let the guest write for most epochs, then stop it so the last
	 * epochs carry the final image. */
	while (atomic_load(&acks) < 60)
		usleep(1000);
	atomic_store(&writer_stop, true);
	pthread_join(writer_thr, NULL);
	writer_running = false;
	pthread_join(t, NULL);
	ck_assert_int_eq(r.rc, 0);
	tb_engine_get_status(r.e, &st);
	ck_assert_uint_eq(st.epochs_acked, 80);
	ck_assert_uint_eq(rep.committed_epoch, 80);
	ck_assert_uint_eq(fake->released_epoch, 80);
	ck_assert_uint_eq(fake->fast_resumes, fake->suspends);
	ck_assert(!fake->suspended);
	tb_fake_quiesce(fake, compare, NULL);
	tb_engine_destroy(r.e);
	ck_assert(!fake->attached);
}

START_TEST(replica_equals_guest_after_quiesced_epochs)
{
	replica_equals_guest(TB_MODE_STAGED);
}
END_TEST

/* the guest writes while its epochs are still being copied */
START_TEST(cow_replica_equals_guest_after_quiesced_epochs)
{
	replica_equals_guest(TB_MODE_COW);
}
END_TEST

/* mode cow: pages written after the running harvest (and the marks made
 * while the guest ran), just before the suspend, are in the epoch too;
 * each of them is written once, so one left out stays wrong */
START_TEST(cow_takes_pages_written_after_the_running_harvest)
{
	writer_pages = NPAGES / 2;
	fake->late_write_pages = NPAGES / 2;
	replica_equals_guest(TB_MODE_COW);
	ck_assert_uint_ge(fake->writes, 80); /* the late ones at least */
	writer_pages = NPAGES;
}
END_TEST

/*
 * A first sync over a link slower than lag_limit allows (sends paced to
 * 107 Mbit/s: each 4 MiB record of the random copy takes ~0.3 s, the
 * two queued ahead of the closing epoch ~0.6 s; lag_limit 450 ms) is not
 * a lost backup: the closing epoch's clock, and those of the epochs
 * behind it, start once it is all sent, and each send still completes
 * within lag_limit.
 */
START_TEST(slow_first_sync_is_not_a_lost_backup)
{
	struct tb_engine_cfg cfg;
	struct tb_engine_status st;
	struct run_ctx r = { 0 };
	pthread_t t;

	unsigned seed = 3;

	for (size_t i = 0; i < (size_t)NPAGES * TB_PAGE_SIZE; i++)
		fake->ram[i] = (uint8_t)rand_r(&seed); /* incompressible */
	start_backup();
	base_cfg(&cfg, 50, 20);
	cfg.conn.rate_bps = 107000000;
	cfg.lag_limit_ns = 450 * TB_NSEC_PER_MSEC;
	cfg.hb_timeout_ns = 30 * TB_NSEC_PER_SEC;
	ck_assert_int_eq(tb_engine_create(&r.e, &cfg), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, run_main, &r), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(r.rc, 0);
	tb_engine_get_status(r.e, &st);
	ck_assert_uint_eq(st.backup_losses, 0);
	ck_assert_uint_eq(st.epochs_acked, 20);
	ck_assert_uint_eq(rep.committed_epoch, 20);
	tb_engine_destroy(r.e);
}
END_TEST

/*
 * A tick that finds every slot busy is deferred, and its checkpoint is
 * taken when the ACK frees a slot, not a whole period later at the next
 * tick (which would halve the rate of a pipeline just past capacity).
 * 1 Hz, one slot: the backup holds an ACK across a tick, then lets it go.
 */
START_TEST(ack_that_frees_a_slot_takes_the_deferred_checkpoint)
{
	struct tb_engine_cfg cfg;
	struct tb_engine_status st;
	struct run_ctx r = { 0 };
	uint64_t started;
	int64_t t_release, t_next = 0;
	pthread_t t;

	start_backup();
	base_cfg(&cfg, 1, 0);
	cfg.max_inflight = 1;
	cfg.hb_timeout_ns = cfg.lag_limit_ns = 30 * TB_NSEC_PER_SEC;
	ck_assert_int_eq(tb_engine_create(&r.e, &cfg), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, run_main, &r), 0);
	while (atomic_load(&acks) < 2) /* the full sync, one epoch */
		usleep(1000);
	atomic_store(&ack_hold, true); /* the next epoch's ACK waits */
	do {
		usleep(1000);
		tb_engine_get_status(r.e, &st);
	} while (st.deferred_ticks == 0);
	started = st.epochs_started;
	ck_assert_uint_eq(st.inflight, 1);
	t_release = tb_now_ns();
	atomic_store(&ack_hold, false);
	while (tb_now_ns() - t_release < 3 * TB_NSEC_PER_SEC) {
		tb_engine_get_status(r.e, &st);
		if (st.epochs_started > started) {
			t_next = tb_now_ns();
			break;
		}
		usleep(1000);
	}
	tb_engine_stop(r.e);
	pthread_join(t, NULL);
	ck_assert_int_eq(r.rc, 0);
	ck_assert_msg(t_next, "no epoch after the ACK");
	/* the next tick is ~1 s after the deferred one: 0.5 s is ample */
	ck_assert_msg(t_next - t_release < TB_NSEC_PER_SEC / 2,
		      "the deferred epoch came %.0f ms after the ACK",
		      (double)(t_next - t_release) / 1e6);
	ck_assert_uint_eq(st.deferred_ticks, 1);
	ck_assert_uint_eq(st.skipped_ticks, 0);
	tb_engine_destroy(r.e);
}
END_TEST

/*
 * A failure at each step of the paused path, in steady state: the guest
 * is resumed at once, the pages dirty in the failed epoch reach the
 * backup in a later one, and the replica ends equal to the guest.  The
 * markers are written after the fault is armed and the fault fires in the
 * first pause after the last of them: that pause holds at least the last
 * marker, which no later write covers.
 */
static const char *const phase_names[] = {
	[TB_FAKE_HARVEST] = "harvest",
	[TB_FAKE_COPY] = "copy",
	[TB_FAKE_CPU] = "cpu state",
	[TB_FAKE_DEV] = "device state",
	[TB_FAKE_BOUNDARY] = "output boundary",
	[TB_FAKE_RESUME] = "resume",
	[TB_FAKE_COW_FINISH] = "copy after the resume",
};

static void paused_path_failure(enum tb_engine_mode mode,
				enum tb_fake_phase phase)
{
	struct tb_engine_cfg cfg;
	struct run_ctx r = { 0 };
	uint64_t before;
	pthread_t t;
	unsigned i;

	start_backup();
	base_cfg(&cfg, 200, 0);
	cfg.mode = mode;
	ck_assert_int_eq(tb_engine_create(&r.e, &cfg), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, run_main, &r), 0);
	while (atomic_load(&acks) < 5) /* steady state */
		usleep(1000);
	tb_fake_fail_at(fake, phase, -EIO, fake->writes + 64);
	for (i = 0; i < 64; i++) {
		tb_fake_write(fake, 1000 + i * 13, 7, (uint8_t)(i + 1));
		if (i % 16 == 15)
			usleep(2000); /* the markers span several epochs */
	}
	while (!__atomic_load_n(&fake->faults, __ATOMIC_ACQUIRE))
		usleep(1000);
	before = atomic_load(&acks);
	while (atomic_load(&acks) < before + 3)
		usleep(1000);
	tb_engine_stop(r.e);
	pthread_join(t, NULL);
	ck_assert_msg(r.rc == 0, "%s failure: engine rc=%d", phase_names[phase],
		      r.rc);
	ck_assert_msg(!fake->suspended, "%s failure left the guest suspended",
		      phase_names[phase]);
	ck_assert_uint_eq(fake->suspends,
			  fake->fast_resumes + fake->slow_resumes);
	/* only a failed fast resume makes the engine use the slow one */
	ck_assert_uint_eq(fake->slow_resumes, phase == TB_FAKE_RESUME);
	ck_assert_uint_eq(fake->faults, 1);
	tb_fake_quiesce(fake, compare, NULL);
	tb_engine_destroy(r.e);
}

START_TEST(paused_path_failure_resumes_guest_and_keeps_dirty_pages)
{
	paused_path_failure(TB_MODE_STAGED, (enum tb_fake_phase)(_i + 1));
}
END_TEST

/* the same in mode cow, and a failure of the copy after the resume */
START_TEST(cow_failure_resumes_guest_and_keeps_dirty_pages)
{
	paused_path_failure(TB_MODE_COW, (enum tb_fake_phase)(_i + 1));
}
END_TEST

START_TEST(guest_that_never_suspends_is_left_running)
{
	struct tb_engine_cfg cfg;
	struct tb_engine_status st;
	struct run_ctx r = { 0 };

	start_backup();
	base_cfg(&cfg, 50, 0);
	ck_assert_int_eq(tb_engine_create(&r.e, &cfg), 0);
	fake->ignore_suspend = true;
	/* The full sync's paused round never happens: stop after a few
	 * ticks from another thread. */
	pthread_t t;

	ck_assert_int_eq(pthread_create(&t, NULL, run_main, &r), 0);
	while (fake->timeouts < 3)
		usleep(1000);
	tb_engine_stop(r.e);
	pthread_join(t, NULL);
	tb_engine_get_status(r.e, &st);
	ck_assert_uint_ge(st.suspend_timeouts, 3);
	ck_assert_uint_eq(fake->suspends, 0);
	ck_assert(!fake->suspended);
	tb_engine_destroy(r.e);
}
END_TEST

START_TEST(no_backup_means_unprotected_and_output_open)
{
	struct tb_engine_cfg cfg;
	struct tb_engine_status st;
	struct run_ctx r = { 0 };
	pthread_t t;

	base_cfg(&cfg, 100, 0);
	ck_assert_int_eq(tb_engine_create(&r.e, &cfg), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, run_main, &r), 0);
	usleep(150 * 1000);
	tb_engine_get_status(r.e, &st);
	ck_assert_uint_eq(st.epochs_acked, 0);
	ck_assert(!fake->gated);
	ck_assert_uint_eq(fake->suspends, 0);
	/* Now the backup appears: protection starts with a full sync. */
	start_backup();
	while (atomic_load(&acks) < 3)
		usleep(1000);
	ck_assert(fake->gated);
	tb_engine_stop(r.e);
	pthread_join(t, NULL);
	ck_assert_int_eq(r.rc, 0);
	tb_engine_destroy(r.e);
	ck_assert(!fake->gated);
}
END_TEST

/* Wait until the engine reaches @want; fail on a state other than
 * protected, syncing or @passing. */
static void await_state(struct tb_engine *e, enum tb_engine_state want,
			enum tb_engine_state passing)
{
	struct tb_engine_status st;

	for (;;) {
		tb_engine_get_status(e, &st);
		if (st.state == want)
			return;
		ck_assert_msg(st.state == TB_ENG_PROTECTED ||
				      st.state == TB_ENG_SYNCING ||
				      st.state == passing,
			      "engine state %s, waiting for %s",
			      tb_engine_state_name(st.state),
			      tb_engine_state_name(want));
		usleep(5000);
	}
}

/* Run protected, lose the backup, check the state it settles in and the
 * output gate, then bring a backup back and check it re-syncs. */
static void lose_backup(enum tb_loss_policy policy, const char *fence_cmd,
			bool operator_release)
{
	struct tb_engine_cfg cfg;
	struct tb_engine_status st;
	struct run_ctx r = { 0 };
	char reply[512];
	pthread_t t;

	start_backup();
	base_cfg(&cfg, 100, 0);
	cfg.hb_timeout_ns = 200 * TB_NSEC_PER_MSEC;
	cfg.loss_policy = policy;
	cfg.fence_cmd = fence_cmd;
	cfg.fence_timeout_ns = 5 * TB_NSEC_PER_SEC;
	ck_assert_int_eq(tb_engine_create(&r.e, &cfg), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, run_main, &r), 0);
	while (atomic_load(&acks) < 5)
		usleep(1000);
	stop_backup();
	if (policy == TB_LOSS_FENCE && !fence_cmd) {
		/* Nobody proved the backup dead: output stays held. */
		await_state(r.e, TB_ENG_ISOLATED, TB_ENG_ISOLATED);
		ck_assert(fake->gated);
		ck_assert(!fake->suspended);
		usleep(300 * 1000);
		tb_engine_get_status(r.e, &st);
		ck_assert_int_eq(st.state, TB_ENG_ISOLATED);
		ck_assert(fake->gated);
		if (operator_release) {
			tb_engine_control(r.e, "release", reply, sizeof(reply));
			ck_assert_msg(!strstr(reply, "error"), "%s", reply);
		}
	}
	if (policy != TB_LOSS_FENCE || fence_cmd || operator_release) {
		await_state(r.e, TB_ENG_UNPROTECTED,
			    policy == TB_LOSS_FENCE ? TB_ENG_ISOLATED :
						      TB_ENG_UNPROTECTED);
		ck_assert(!fake->gated);
		ck_assert(!fake->suspended);
	}
	atomic_store(&acks, 0);
	start_backup();
	while (atomic_load(&acks) < 3)
		usleep(1000);
	tb_engine_get_status(r.e, &st);
	ck_assert_int_eq(st.state, TB_ENG_PROTECTED);
	ck_assert_uint_ge(st.backup_losses, 1);
	ck_assert_uint_ge(st.resyncs, 2);
	ck_assert(fake->gated);
	tb_engine_stop(r.e);
	pthread_join(t, NULL);
	tb_engine_destroy(r.e);
}

START_TEST(lost_backup_releases_output_then_resyncs)
{
	lose_backup(TB_LOSS_RELEASE, NULL, false);
}
END_TEST

/* The default: output held until an operator says the backup is dead. */
START_TEST(lost_backup_holds_output_until_operator_release)
{
	lose_backup(TB_LOSS_FENCE, NULL, true);
}
END_TEST

/* Output held while isolated; the backup coming back ends it as well. */
START_TEST(lost_backup_isolated_until_backup_returns)
{
	lose_backup(TB_LOSS_FENCE, NULL, false);
}
END_TEST

/* fence_cmd succeeding proves the backup dead: output released. */
START_TEST(lost_backup_fenced_by_command_releases_output)
{
	lose_backup(TB_LOSS_FENCE, "true", false);
}
END_TEST

START_TEST(guest_without_suspend_cancel_is_refused_or_slow)
{
	struct tb_engine_cfg cfg;
	struct tb_engine *e;

	start_backup();
	fake->no_suspend_cancel = true;
	base_cfg(&cfg, 100, 3);
	ck_assert_int_eq(tb_engine_create(&e, &cfg), -EPERM);
	cfg.dom.allow_slow_resume = true;
	ck_assert_int_eq(tb_engine_create(&e, &cfg), 0);
	ck_assert_int_eq(tb_engine_run(e), 0);
	ck_assert_uint_eq(fake->fast_resumes, 0);
	ck_assert_uint_eq(fake->slow_resumes, fake->suspends);
	ck_assert_uint_ge(fake->suspends, 3);
	tb_engine_destroy(e);
}
END_TEST

START_TEST(dead_guest_stops_the_engine)
{
	struct tb_engine_cfg cfg;
	struct tb_engine *e;

	start_backup();
	base_cfg(&cfg, 100, 0);
	ck_assert_int_eq(tb_engine_create(&e, &cfg), 0);
	fake->dead = true;
	ck_assert_int_eq(tb_engine_run(e), -ESRCH);
	tb_engine_destroy(e);
}
END_TEST

static Suite *epoch_suite(void)
{
	Suite *s = suite_create("epoch");
	TCase *tc = tcase_create("engine");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, replica_equals_guest_after_quiesced_epochs);
	tcase_add_test(tc, cow_replica_equals_guest_after_quiesced_epochs);
	tcase_add_test(tc, cow_takes_pages_written_after_the_running_harvest);
	tcase_add_test(tc, slow_first_sync_is_not_a_lost_backup);
	tcase_add_loop_test(
		tc, paused_path_failure_resumes_guest_and_keeps_dirty_pages, 0,
		TB_FAKE_COW_FINISH - 1);
	tcase_add_loop_test(tc, cow_failure_resumes_guest_and_keeps_dirty_pages,
			    0, TB_FAKE_NR_PHASES - 1);
	tcase_add_test(tc, ack_that_frees_a_slot_takes_the_deferred_checkpoint);
	tcase_add_test(tc, guest_that_never_suspends_is_left_running);
	tcase_add_test(tc, no_backup_means_unprotected_and_output_open);
	tcase_add_test(tc, lost_backup_releases_output_then_resyncs);
	tcase_add_test(tc, lost_backup_holds_output_until_operator_release);
	tcase_add_test(tc, lost_backup_isolated_until_backup_returns);
	tcase_add_test(tc, lost_backup_fenced_by_command_releases_output);
	tcase_add_test(tc, guest_without_suspend_cancel_is_refused_or_slow);
	tcase_add_test(tc, dead_guest_stops_the_engine);
	suite_add_tcase(s, tc);
	return s;
}

TB_CHECK_MAIN(epoch_suite)
