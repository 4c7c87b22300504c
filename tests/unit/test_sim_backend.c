// SPDX-License-Identifier: MIT
/*
 * The sim backend against a real tiber-simguest child process
 * (TIBER_SIMGUEST or build/bin/tiber-simguest, run from the repo root).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "check_main.h"
#include "tiber/backend.h"
#include "tiber/bitmap.h"
#include "tiber/simproto.h"
#include "../../lib/backend/copy_pool.h"

static const struct tb_backend_ops *ops = &tb_backend_sim_ops;
static char sock_path[108];

static const char *guest_bin(void)
{
	const char *e = getenv("TIBER_SIMGUEST");

	if (e && *e)
		return e;
	return "build/bin/tiber-simguest";
}

/* Start a guest with @extra args (NULL-terminated); returns its pid once
 * it is running. */
static pid_t spawn_guest(const char *const *extra)
{
	const char *argv[48];
	char rfd[16];
	int ready[2], argc = 0, i;
	char c;
	pid_t pid;

	ck_assert_msg(
		access(guest_bin(), X_OK) == 0,
		"tiber-simguest not found at %s: run `make all` first or set TIBER_SIMGUEST",
		guest_bin());
	snprintf(sock_path, sizeof(sock_path), "%s/tb-simtest-%d.sock",
		 tb_test_tmp(), (int)getpid());
	ck_assert_int_eq(pipe(ready), 0);
	snprintf(rfd, sizeof(rfd), "%d", ready[1]);
	argv[argc++] = guest_bin();
	argv[argc++] = "--socket";
	argv[argc++] = sock_path;
	argv[argc++] = "--ready-fd";
	argv[argc++] = rfd;
	argv[argc++] = "--stats-interval";
	argv[argc++] = "0";
	for (i = 0; extra && extra[i]; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(ready[0]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(ready[1]);
	ck_assert_msg(read(ready[0], &c, 1) == 1, "guest did not start");
	close(ready[0]);
	return pid;
}

static int stop_guest(pid_t pid)
{
	int st = 0, i;

	kill(pid, SIGCONT);
	kill(pid, SIGTERM);
	for (i = 0; i < 500; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return st;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return st;
}

static struct tb_dom_cfg base_cfg(void)
{
	struct tb_dom_cfg cfg = { 0 };

	cfg.guest = sock_path;
	cfg.static_port = -1;
	cfg.dirty_mech = "auto";
	cfg.copy_threads = 2;
	return cfg;
}

static struct tb_dom *attach_ok(const struct tb_dom_cfg *cfg)
{
	struct tb_dom *d = NULL;
	int rc = ops->attach(&d, cfg);

	ck_assert_msg(rc == 0, "attach: %s (%s)", strerror(-rc),
		      tb_backend_reason());
	return d;
}

static void cycle(struct tb_dom *d, bool fast)
{
	int rc;

	ck_assert_int_eq(ops->request_suspend(d), 0);
	rc = ops->await_suspended(d, tb_now_ns() + 5 * TB_NSEC_PER_SEC);
	ck_assert_msg(rc == 0, "await: %s (%s)", strerror(-rc),
		      tb_backend_reason());
	ck_assert_int_eq(ops->resume(d, fast), 0);
}

static uint64_t ctr(struct tb_dom *d, uint64_t *p)
{
	(void)d;
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

/* Wait until the guest made @n more writes: attach starts with every
 * page clean, so a test expecting dirty pages must let it write first
 * (on a loaded machine it may not have yet). */
static void wait_progress(struct tb_dom *d, uint64_t n)
{
	uint64_t p0 = __atomic_load_n(&tb_sim_dom_ctrl(d)->progress,
				      __ATOMIC_SEQ_CST);

	while (__atomic_load_n(&tb_sim_dom_ctrl(d)->progress,
			       __ATOMIC_SEQ_CST) < p0 + n)
		usleep(1000);
}

START_TEST(every_op_on_a_running_guest)
{
	const char *args[] = { "--ram", "64M", "--dirty-rate", "20000", NULL };
	pid_t pid = spawn_guest(args);
	struct tb_dom_cfg cfg = base_cfg();
	struct tb_dom *d = attach_ok(&cfg);
	struct tb_dom_info info;
	struct tb_dom_stats st;
	struct tb_bitmap bm;
	struct tb_buf cpu = { 0 }, dev = { 0 };
	struct tb_sim_vcpu v[TB_SIM_MAX_VCPUS];
	struct tb_sim_dev_state ds;
	uint64_t pfns[300], *buf;
	uint32_t nr;
	size_t used, i;

	ops->get_info(d, &info);
	ck_assert_str_eq(info.kind, "sim");
	ck_assert_int_eq(info.suspend_mode, TB_SUSPEND_EVTCHN);
	ck_assert(info.suspend_cancel);
	ck_assert_uint_eq(info.nr_pages, (64u << 20) / 4096);
	ck_assert_str_eq(info.dirty_mech, "uffd-wp+pagemap");
	ck_assert_int_eq(ops->check_health(d), 0);
	ck_assert_int_eq(ops->resume(d, true), -EINVAL); /* not suspended */
	ck_assert_int_eq(ops->save_cpu_state(d, &cpu), -EINVAL);

	wait_progress(d, 10);
	ck_assert_int_eq(ops->request_suspend(d), 0);
	ck_assert_int_eq(
		ops->await_suspended(d, tb_now_ns() + 5 * TB_NSEC_PER_SEC), 0);
	ck_assert_int_eq(tb_sim_dom_ctrl(d)->state, TB_SIM_SUSPENDED);
	ck_assert_int_eq(tb_bitmap_init(&bm, info.nr_pages), 0);
	ck_assert_int_eq(ops->harvest_dirty(d, &bm), 0);
	ck_assert_uint_gt(tb_bitmap_count(&bm), 0);
	for (i = 0; i < 300; i++)
		pfns[i] = i * 3;
	buf = malloc(300 * 4096);
	ck_assert_int_eq(ops->copy_pages(d, pfns, 300, buf), 0);
	/* page 0 is the RAM header: its magic came through */
	ck_assert_uint_eq(buf[0], TB_SIM_RAM_MAGIC);
	pfns[5] = pfns[4]; /* not ascending */
	ck_assert_int_eq(ops->copy_pages(d, pfns, 300, buf), -EINVAL);
	ck_assert_int_eq(ops->save_cpu_state(d, &cpu), 0);
	ck_assert_int_eq(tb_sim_blob_get_cpu(cpu.data, cpu.len, v, &nr, &used),
			 0);
	ck_assert_uint_eq(nr, 1);
	ck_assert_uint_gt(v[0].ops, 0);
	ck_assert_int_eq(ops->save_device_state(d, &dev), 0);
	ck_assert_int_eq(tb_sim_blob_get_dev(dev.data, dev.len, &ds, &used), 0);
	ck_assert_uint_eq(ds.suspends, 1);
	ck_assert_int_eq(ops->output_boundary(d, 7), 0);
	ck_assert_int_eq(ops->resume(d, true), 0);
	ck_assert_int_eq(ops->output_boundary(d, 8), -EINVAL);
	ck_assert_int_eq(ops->output_set_gated(d, true), 0);
	ck_assert_int_eq(ops->output_release(d, 7), 0);
	ck_assert_uint_eq(tb_sim_dom_ctrl(d)->gate.released_epoch, 7);
	cycle(d, true);
	ops->get_stats(d, &st);
	ck_assert_uint_eq(st.suspends, 2);
	ck_assert_uint_eq(st.fast_resumes, 2);
	ck_assert_uint_eq(st.dirty_harvests, 1);
	ck_assert_uint_eq(st.pages_copied, 300);
	ck_assert_int_gt(st.t_wake_ns, st.t_notify_ns);
	/* a second daemon is refused while we are attached */
	{
		struct tb_dom *d2 = NULL;

		ck_assert_int_eq(ops->attach(&d2, &cfg), -EBUSY);
	}
	/* detach while suspended: the guest is resumed */
	ck_assert_int_eq(ops->request_suspend(d), 0);
	ck_assert_int_eq(
		ops->await_suspended(d, tb_now_ns() + 5 * TB_NSEC_PER_SEC), 0);
	ops->detach(d);
	d = attach_ok(&cfg); /* re-attach after detach works */
	ck_assert_int_eq(tb_sim_dom_ctrl(d)->state, TB_SIM_RUNNING);
	ck_assert_uint_eq(tb_sim_dom_ctrl(d)->gate.mode, TB_SIM_GATE_OPEN);
	ck_assert_uint_eq(tb_sim_dom_ctrl(d)->suspend_cancels, 3);
	ops->detach(d);
	tb_bitmap_free(&bm);
	tb_buf_free(&cpu);
	tb_buf_free(&dev);
	free(buf);
	ck_assert_int_eq(stop_guest(pid), 0);
}
END_TEST

/* The guest's suspend_cancels (THAW count) must equal the cycles: every
 * request was seen, every resume woke the guest. */
static void run_cycles(const char *const *args, enum tb_suspend_mode mode,
		       int static_port, unsigned n)
{
	pid_t pid = spawn_guest(args);
	struct tb_dom_cfg cfg = base_cfg();
	struct tb_dom *d;
	struct tb_dom_info info;
	unsigned i;

	cfg.suspend_mode = mode;
	cfg.static_port = static_port;
	d = attach_ok(&cfg);
	ops->get_info(d, &info);
	if (mode != TB_SUSPEND_AUTO)
		ck_assert_int_eq(info.suspend_mode, mode);
	for (i = 0; i < n; i++)
		cycle(d, true);
	/* one more suspend: the last THAW hooks have run by then */
	ck_assert_int_eq(ops->request_suspend(d), 0);
	ck_assert_int_eq(
		ops->await_suspended(d, tb_now_ns() + 5 * TB_NSEC_PER_SEC), 0);
	if (mode != TB_SUSPEND_PAUSE) {
		ck_assert_uint_eq(ctr(d, &tb_sim_dom_ctrl(d)->suspend_cancels),
				  n);
		ck_assert_uint_eq(ctr(d, &tb_sim_dom_ctrl(d)->suspends), n + 1);
	}
	ck_assert_int_eq(ops->resume(d, true), 0);
	ops->detach(d);
	ck_assert_int_eq(stop_guest(pid), 0);
}

START_TEST(ten_thousand_cycles_no_lost_wakeup)
{
	const char *args[] = { "--ram", "64M", "--dirty-rate", "100000", NULL };

	run_cycles(args, TB_SUSPEND_EVTCHN, -1, tb_check_scale(10000, 2000));
}
END_TEST

START_TEST(suspend_while_busy)
{
	const char *args[] = { "--ram",	    "128M",   "--threads", "2",
			       "--content", "random", NULL };

	run_cycles(args, TB_SUSPEND_AUTO, -1, tb_check_scale(500, 100));
}
END_TEST

START_TEST(xenstore_fallback)
{
	const char *args[] = { "--ram", "64M", "--dirty-rate", "50000", NULL };

	run_cycles(args, TB_SUSPEND_XENSTORE, -1, tb_check_scale(500, 100));
}
END_TEST

START_TEST(static_port_dom0less)
{
	const char *args[] = { "--ram", "64M", "--static-port", "11", NULL };
	pid_t pid = spawn_guest(args);
	struct tb_dom_cfg cfg = base_cfg();
	struct tb_dom *d;
	struct tb_dom_info info;
	char v[64];
	unsigned i;

	/* nothing published: AUTO would pick xenstore without the config */
	cfg.static_port = 11;
	d = attach_ok(&cfg);
	ck_assert_int_ne(tb_sim_store_read(&tb_sim_dom_ctrl(d)->store,
					   TB_SIM_KEY_SUSPEND_PORT, v,
					   sizeof(v)) == 0 &&
				 v[0],
			 1);
	ops->get_info(d, &info);
	ck_assert_int_eq(info.suspend_mode, TB_SUSPEND_EVTCHN);
	for (i = 0; i < 200; i++)
		cycle(d, true);
	ck_assert_uint_eq(tb_sim_dom_ctrl(d)->subscribed_port, 11);
	ops->detach(d);
	/* a wrong static port is refused */
	cfg.static_port = 12;
	d = NULL;
	ck_assert_int_eq(ops->attach(&d, &cfg), -EINVAL);
	ck_assert_int_eq(stop_guest(pid), 0);
}
END_TEST

START_TEST(pause_mode_stops_the_guest)
{
	const char *args[] = { "--ram", "64M", NULL };
	pid_t pid = spawn_guest(args);
	struct tb_dom_cfg cfg = base_cfg();
	struct tb_dom *d;
	struct tb_dom_info info;
	uint64_t p1, p2;
	unsigned i;

	cfg.suspend_mode = TB_SUSPEND_PAUSE;
	d = attach_ok(&cfg);
	ops->get_info(d, &info);
	ck_assert(!info.suspend_cancel); /* no suspend-cancel when paused */
	for (i = 0; i < 100; i++) {
		ck_assert_int_eq(ops->request_suspend(d), 0);
		ck_assert_int_eq(ops->await_suspended(
					 d, tb_now_ns() + 5 * TB_NSEC_PER_SEC),
				 0);
		if (i % 25 == 0) {
			p1 = ctr(d, &tb_sim_dom_ctrl(d)->progress);
			usleep(20000);
			p2 = ctr(d, &tb_sim_dom_ctrl(d)->progress);
			ck_assert_uint_eq(p1, p2); /* really stopped */
		}
		ck_assert_int_eq(ops->resume(d, true), 0);
	}
	p1 = ctr(d, &tb_sim_dom_ctrl(d)->progress);
	usleep(20000);
	ck_assert_uint_gt(ctr(d, &tb_sim_dom_ctrl(d)->progress), p1);
	ops->detach(d);
	ck_assert_int_eq(stop_guest(pid), 0);
}
END_TEST

START_TEST(unanswered_request_times_out_guest_running)
{
	const char *args[] = { "--ram", "64M", "--ignore-suspend", NULL };
	pid_t pid = spawn_guest(args);
	struct tb_dom_cfg cfg = base_cfg();
	struct tb_dom *d = attach_ok(&cfg);
	struct tb_dom_stats st;
	int64_t t0, dl;
	uint64_t p1;
	int mode;

	for (mode = 0; mode < 2; mode++) {
		if (mode == 1) {
			ops->detach(d);
			cfg.suspend_mode = TB_SUSPEND_XENSTORE;
			d = attach_ok(&cfg);
		}
		ck_assert_int_eq(ops->request_suspend(d), 0);
		t0 = tb_now_ns();
		dl = t0 + 200 * TB_NSEC_PER_MSEC;
		ck_assert_int_eq(ops->await_suspended(d, dl), -ETIMEDOUT);
		ck_assert_int_ge(tb_now_ns(), dl);
		ck_assert_int_eq(tb_sim_dom_ctrl(d)->state, TB_SIM_RUNNING);
		ck_assert_uint_eq(tb_sim_dom_ctrl(d)->suspend_req,
				  TB_SIM_REQ_NONE);
		ck_assert_int_eq(ops->resume(d, true), -EINVAL);
		/* running: it makes progress (within 10 s on a busy host) */
		p1 = ctr(d, &tb_sim_dom_ctrl(d)->progress);
		for (t0 = tb_now_ns();
		     ctr(d, &tb_sim_dom_ctrl(d)->progress) == p1 &&
		     tb_now_ns() < t0 + 10 * TB_NSEC_PER_SEC;)
			usleep(1000);
		ck_assert_uint_gt(ctr(d, &tb_sim_dom_ctrl(d)->progress), p1);
		ck_assert_uint_ge(tb_sim_dom_ctrl(d)->ignored_requests, 1);
		ops->get_stats(d, &st);
		ck_assert_uint_eq(st.suspend_timeouts, 1);
	}
	{
		char v[64];

		ck_assert(tb_sim_store_read(&tb_sim_dom_ctrl(d)->store,
					    TB_SIM_KEY_SHUTDOWN, v,
					    sizeof(v)) ||
			  strcmp(v, "suspend"));
	}
	ops->detach(d);
	ck_assert_int_eq(stop_guest(pid), 0);
}
END_TEST

START_TEST(no_suspend_cancel_refused_or_slow)
{
	const char *args[] = { "--ram", "64M", "--no-suspend-cancel", NULL };
	pid_t pid = spawn_guest(args);
	struct tb_dom_cfg cfg = base_cfg();
	struct tb_dom *d = NULL;
	struct tb_dom_info info;
	struct tb_dom_stats st;

	ck_assert_int_eq(ops->attach(&d, &cfg), -ENOTSUP);
	ck_assert_ptr_nonnull(strstr(tb_backend_reason(), "SUSPEND_CANCEL"));
	cfg.allow_slow_resume = true;
	d = attach_ok(&cfg);
	ops->get_info(d, &info);
	ck_assert(!info.suspend_cancel);
	cycle(d, true); /* downgraded to slow: the guest sees 0 */
	cycle(d, true); /* the guest re-published its port; we rebound */
	ck_assert_int_eq(ops->request_suspend(d), 0);
	ck_assert_int_eq(
		ops->await_suspended(d, tb_now_ns() + 5 * TB_NSEC_PER_SEC), 0);
	ck_assert_uint_eq(tb_sim_dom_ctrl(d)->restores, 2);
	ck_assert_uint_eq(tb_sim_dom_ctrl(d)->suspend_cancels, 0);
	ck_assert_uint_eq(tb_sim_dom_ctrl(d)->last_verify_ok, 1);
	ck_assert_int_eq(ops->resume(d, false), 0);
	ops->get_stats(d, &st);
	ck_assert_uint_eq(st.slow_resumes, 3);
	ck_assert_uint_eq(st.fast_resumes, 0);
	ops->detach(d);
	ck_assert_int_eq(stop_guest(pid), 0);
}
END_TEST

/* Suspend @d and harvest both trackers: uffd-wp into @got, the guest's
 * own bitmap (the oracle) into @oracle. */
static void suspend_harvest(struct tb_dom *d, struct tb_bitmap *got,
			    struct tb_bitmap *oracle)
{
	ck_assert_int_eq(ops->request_suspend(d), 0);
	ck_assert_int_eq(
		ops->await_suspended(d, tb_now_ns() + 5 * TB_NSEC_PER_SEC), 0);
	tb_bitmap_clear_all(got);
	tb_bitmap_clear_all(oracle);
	ck_assert_int_eq(ops->harvest_dirty(d, got), 0);
	ck_assert_int_eq(tb_sim_dom_harvest_oracle(d, oracle), 0);
}

/* uffd-wp harvest vs the guest's own bitmap (the oracle): no false
 * negatives ever; false positives counted and reported.
 *
 * attach clears both trackers while the guest runs: a write made before
 * its scan but marked after its bitmap harvest (the writer preempted
 * between the two) is in the oracle only.  So both are first aligned at
 * a suspend, where no write is in flight; every round after it counts. */
static void dirty_exactness(const char *const *args, unsigned rounds)
{
	pid_t pid = spawn_guest(args);
	struct tb_dom_cfg cfg = base_cfg();
	struct tb_dom *d;
	struct tb_dom_info info;
	struct tb_bitmap got, oracle;
	uint64_t i, fp = 0, total = 0, nw;
	unsigned r;

	cfg.dirty_mech = "uffd";
	d = attach_ok(&cfg);
	ops->get_info(d, &info);
	ck_assert_int_eq(tb_bitmap_init(&got, info.nr_pages), 0);
	ck_assert_int_eq(tb_bitmap_init(&oracle, info.nr_pages), 0);
	nw = tb_bitmap_nwords(&got);
	suspend_harvest(d, &got, &oracle);
	ck_assert_int_eq(ops->resume(d, true), 0);
	for (r = 0; r < rounds; r++) {
		usleep(2000);
		suspend_harvest(d, &got, &oracle);
		for (i = 0; i < nw; i++) {
			uint64_t miss = oracle.words[i] & ~got.words[i];

			ck_assert_msg(
				!miss,
				"round %u: page %llu written but not reported",
				r,
				(unsigned long long)(i * 64 +
						     __builtin_ctzll(miss)));
			fp += (uint64_t)__builtin_popcountll(got.words[i] &
							     ~oracle.words[i]);
		}
		total += tb_bitmap_count(&got);
		ck_assert_int_eq(ops->resume(d, true), 0);
	}
	fprintf(stderr,
		"dirty exactness: %u rounds, %llu pages reported, %llu false positives (%.3f%%), 0 false negatives\n",
		rounds, (unsigned long long)total, (unsigned long long)fp,
		total ? 100.0 * (double)fp / (double)total : 0.0);
	ck_assert_uint_gt(total, rounds);
	tb_bitmap_free(&got);
	tb_bitmap_free(&oracle);
	ops->detach(d);
	ck_assert_int_eq(stop_guest(pid), 0);
}

START_TEST(dirty_tracking_exact_4k)
{
	const char *args[] = { "--ram",	    "256M",	    "--threads",
			       "2",	    "--dirty-rate", "500000",
			       "--pattern", "hotset",	    NULL };

	dirty_exactness(args, tb_check_scale(200, 50));
}
END_TEST

static bool hugetlb_works(void)
{
	int fd = memfd_create("probe", MFD_HUGETLB | MFD_CLOEXEC);
	void *p;

	if (fd < 0)
		return false;
	if (ftruncate(fd, 4 << 20)) {
		close(fd);
		return false;
	}
	p = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_POPULATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return false;
	munmap(p, 4 << 20);
	return true;
}

START_TEST(dirty_tracking_exact_hugepages)
{
	const char *args[] = { "--ram",	       "64M",	 "--hugepages",
			       "--dirty-rate", "100000", NULL };

	if (!hugetlb_works()) {
		tb_skip("dirty_tracking_exact_hugepages",
			"no MFD_HUGETLB pages here: vm.nr_hugepages=0");
		return;
	}
	dirty_exactness(args, 50);
}
END_TEST

START_TEST(bitmap_fallback_forced)
{
	const char *args[] = { "--ram",	 "64M",		 "--dirty-mech",
			       "bitmap", "--dirty-rate", "100000",
			       NULL };
	pid_t pid = spawn_guest(args);
	struct tb_dom_cfg cfg = base_cfg();
	struct tb_dom *d = NULL;
	struct tb_dom_info info;
	struct tb_bitmap bm;

	cfg.dirty_mech = "uffd"; /* guest did not register: refused */
	ck_assert_int_eq(ops->attach(&d, &cfg), -ENOTSUP);
	cfg.dirty_mech = "auto";
	d = attach_ok(&cfg);
	ops->get_info(d, &info);
	ck_assert_str_eq(info.dirty_mech, "bitmap(cooperative)");
	ck_assert_int_eq(tb_bitmap_init(&bm, info.nr_pages), 0);
	wait_progress(d, 10);
	ck_assert_int_eq(ops->request_suspend(d), 0);
	ck_assert_int_eq(
		ops->await_suspended(d, tb_now_ns() + 5 * TB_NSEC_PER_SEC), 0);
	ck_assert_int_eq(ops->harvest_dirty(d, &bm), 0);
	ck_assert_uint_gt(tb_bitmap_count(&bm), 0);
	tb_bitmap_clear_all(&bm);
	ck_assert_int_eq(ops->harvest_dirty(d, &bm), 0);
	ck_assert_uint_eq(tb_bitmap_count(&bm), 0); /* suspended: nothing */
	ck_assert_int_eq(ops->resume(d, true), 0);
	ops->detach(d);
	tb_bitmap_free(&bm);
	ck_assert_int_eq(stop_guest(pid), 0);
}
END_TEST

/*
 * Suspend @d, harvest into @got (OR-ed: bits already there stay), copy
 * all of RAM into @now and count the pages that differ from @before
 * (NULL: the first round, nothing to compare); every one of them must
 * be in @got.  The guest stays suspended.
 */
static uint64_t suspend_check_content(struct tb_dom *d, uint64_t nr,
				      const uint64_t *all,
				      struct tb_bitmap *got,
				      const uint8_t *before, uint8_t *now,
				      const char *what, unsigned r)
{
	uint64_t i, changed = 0;

	ck_assert_int_eq(ops->request_suspend(d), 0);
	ck_assert_int_eq(
		ops->await_suspended(d, tb_now_ns() + 5 * TB_NSEC_PER_SEC), 0);
	ck_assert_int_eq(ops->harvest_dirty(d, got), 0);
	ck_assert_int_eq(ops->copy_pages(d, all, nr, now), 0);
	for (i = 0; before && i < nr; i++) {
		if (!memcmp(before + i * TB_PAGE_SIZE, now + i * TB_PAGE_SIZE,
			    TB_PAGE_SIZE))
			continue;
		changed++;
		ck_assert_msg(tb_bitmap_test(got, i),
			      "%s round %u: page %llu changed but not reported",
			      what, r, (unsigned long long)i);
	}
	return changed;
}

/* Every page whose content changed between two pauses must be in the
 * harvest: an oracle that does not share the tracker's code. */
static void dirty_vs_content(const char *const *args, const char *mech,
			     unsigned rounds)
{
	pid_t pid = spawn_guest(args);
	struct tb_dom_cfg cfg = base_cfg();
	struct tb_dom_info info;
	struct tb_bitmap got;
	struct tb_dom *d;
	uint64_t *pfns, i, changed = 0;
	uint8_t *a, *b, *t;
	unsigned r;

	cfg.dirty_mech = mech;
	d = attach_ok(&cfg);
	ops->get_info(d, &info);
	ck_assert_int_eq(tb_bitmap_init(&got, info.nr_pages), 0);
	pfns = malloc(info.nr_pages * sizeof(*pfns));
	a = malloc(info.nr_pages * TB_PAGE_SIZE);
	b = malloc(info.nr_pages * TB_PAGE_SIZE);
	ck_assert(pfns && a && b);
	for (i = 0; i < info.nr_pages; i++)
		pfns[i] = i;
	for (r = 0; r <= rounds; r++) {
		tb_bitmap_clear_all(&got);
		changed += suspend_check_content(d, info.nr_pages, pfns, &got,
						 r ? a : NULL, b, mech, r);
		t = a, a = b, b = t;
		ck_assert_int_eq(ops->resume(d, true), 0);
		usleep(20000);
	}
	fprintf(stderr,
		"dirty vs content (%s): %u rounds, %llu changed pages, all reported\n",
		mech, rounds, (unsigned long long)changed);
	ck_assert_uint_gt(changed, rounds);
	free(pfns);
	free(a);
	free(b);
	tb_bitmap_free(&got);
	ops->detach(d);
	ck_assert_int_eq(stop_guest(pid), 0);
}

START_TEST(dirty_bitmap_matches_content)
{
	const char *args[] = { "--ram",	    "64M",	    "--dirty-mech",
			       "bitmap",    "--dirty-rate", "200000",
			       "--pattern", "uniform",	    NULL };

	dirty_vs_content(args, "auto", 20);
}
END_TEST

START_TEST(dirty_uffd_matches_content)
{
	const char *args[] = { "--ram",	 "64M",	      "--dirty-rate",
			       "200000", "--pattern", "uniform",
			       NULL };

	dirty_vs_content(args, "uffd", 20);
}
END_TEST

START_TEST(dirty_uffd_sync_matches_content)
{
	const char *args[] = { "--ram",	    "64M",	    "--dirty-mech",
			       "uffd-sync", "--dirty-rate", "200000",
			       "--pattern", "uniform",	    NULL };

	dirty_vs_content(args, "uffd-sync", 20);
}
END_TEST

/*
 * Copy-on-write against a copy made while suspended: each round takes a
 * running harvest (as the engine does before it asks the guest to
 * suspend), suspends, harvests, copies all RAM as the reference, arms
 * the dirty pages, resumes and lets the flat-out writers at them (2 ms,
 * every other round none) before cow_finish.  Every other round marks
 * the running harvest's pages while the guest runs (cow_prepare, as the
 * engine does) and arms them with the pages dirtied since after them;
 * a list whose rest repeats a page of the head is refused.  The armed
 * staging must equal the reference page for page; every page whose
 * content changed since the last round must have been harvested; and
 * guest writes must have hit pages not yet copied (the copy-before-write
 * path ran).
 */
START_TEST(cow_image_is_the_suspended_image)
{
	const char *args[] = { "--ram",	    "64M",	 "--dirty-mech",
			       "uffd-sync", "--threads", "2",
			       "--wss",	    "4M",	 "--dirty-rate",
			       "0",	    NULL };
	pid_t pid = spawn_guest(args);
	struct tb_dom_cfg cfg = base_cfg();
	unsigned r, rounds = tb_check_scale(40, 15);
	struct tb_dom_info info;
	struct tb_dom_stats st;
	struct tb_bitmap got, head;
	struct tb_dom *d;
	uint64_t *all, *pfns, i, n, prep, changed = 0, armed = 0, tails = 0;
	uint8_t *a, *b, *stage, *t;

	cfg.dirty_mech = "uffd-sync";
	d = attach_ok(&cfg);
	ops->get_info(d, &info);
	ck_assert_str_eq(info.dirty_mech, "uffd-wp-sync");
	ck_assert(info.can_cow);
	ck_assert_int_eq(tb_bitmap_init(&got, info.nr_pages), 0);
	ck_assert_int_eq(tb_bitmap_init(&head, info.nr_pages), 0);
	all = malloc(info.nr_pages * sizeof(*all));
	pfns = malloc(info.nr_pages * sizeof(*pfns));
	a = malloc(info.nr_pages * TB_PAGE_SIZE);
	b = malloc(info.nr_pages * TB_PAGE_SIZE);
	stage = malloc(info.nr_pages * TB_PAGE_SIZE);
	ck_assert(all && pfns && a && b && stage);
	for (i = 0; i < info.nr_pages; i++)
		all[i] = i;
	/* cow_arm only while suspended */
	ck_assert_int_eq(ops->cow_arm(d, all, 1, stage), -EINVAL);
	for (r = 0; r <= rounds; r++) {
		wait_progress(d, 200);
		ck_assert_int_eq(ops->harvest_dirty(d, &got), 0);
		prep = 0;
		tb_bitmap_clear_all(&head);
		if (r % 2 == 0) {
			prep = tb_bitmap_to_list(&got, pfns, info.nr_pages);
			ck_assert_int_eq(ops->cow_prepare(d, pfns, prep, stage),
					 0);
			tb_bitmap_or(&head, &got);
		}
		changed += suspend_check_content(d, info.nr_pages, all, &got,
						 r ? a : NULL, b, "cow", r);
		if (prep && r == 2) {
			/* the rest repeats the head's first page: refused
			 * (and the prepare dropped: made again) */
			pfns[prep] = pfns[0];
			ck_assert_int_eq(ops->cow_arm(d, pfns, prep + 1, stage),
					 -EINVAL);
			ck_assert_int_eq(ops->cow_prepare(d, pfns, prep, stage),
					 0);
		}
		/* the pages dirtied since the head, after it */
		n = prep + tb_bitmap_take_new(&head, &got, pfns + prep,
					      info.nr_pages - prep);
		tails += n - prep;
		memset(stage, 0xa5, n * TB_PAGE_SIZE);
		ck_assert_int_eq(ops->cow_arm(d, pfns, n, stage), 0);
		ck_assert_int_eq(ops->resume(d, true), 0);
		if (r % 2)
			usleep(2000);
		ck_assert_int_eq(ops->cow_finish(d), 0);
		for (i = 0; i < n; i++)
			ck_assert_msg(
				!memcmp(stage + i * TB_PAGE_SIZE,
					b + pfns[i] * TB_PAGE_SIZE,
					TB_PAGE_SIZE),
				"round %u: page %llu of the copy is not the suspended image",
				r, (unsigned long long)pfns[i]);
		armed += n;
		tb_bitmap_clear_all(&got);
		t = a, a = b, b = t;
	}
	ops->get_stats(d, &st);
	fprintf(stderr,
		"cow: %u rounds, %llu pages armed (%llu after a prepared head), %llu changed, %llu guest writes served, %llu copied before the write\n",
		rounds, (unsigned long long)armed, (unsigned long long)tails,
		(unsigned long long)changed, (unsigned long long)st.wp_faults,
		(unsigned long long)st.cow_fault_copies);
	ck_assert_uint_gt(changed, rounds);
	ck_assert_uint_gt(st.cow_fault_copies, 0);
	ck_assert_uint_gt(tails, 0);
	ck_assert_int_eq(ops->cow_finish(d), -EINVAL); /* not armed */
	free(all);
	free(pfns);
	free(a);
	free(b);
	free(stage);
	tb_bitmap_free(&got);
	tb_bitmap_free(&head);
	ops->detach(d);
	ck_assert_int_eq(stop_guest(pid), 0);
}
END_TEST

START_TEST(cow_refused_without_sync_tracking)
{
	const char *args[] = { "--ram", "64M", NULL };
	pid_t pid = spawn_guest(args);
	struct tb_dom_cfg cfg = base_cfg();
	struct tb_dom_info info;
	struct tb_dom *d = NULL;
	uint64_t pfn = 0;
	uint8_t page[TB_PAGE_SIZE];

	cfg.dirty_mech = "uffd-sync"; /* the guest offers async only */
	ck_assert_int_eq(ops->attach(&d, &cfg), -ENOTSUP);
	ck_assert_msg(strstr(tb_backend_reason(), "uffd-sync"), "%s",
		      tb_backend_reason());
	d = attach_ok(&(struct tb_dom_cfg){ .guest = sock_path,
					    .static_port = -1,
					    .dirty_mech = "auto",
					    .copy_threads = 2 });
	ops->get_info(d, &info);
	ck_assert(!info.can_cow);
	ck_assert_int_eq(ops->request_suspend(d), 0);
	ck_assert_int_eq(
		ops->await_suspended(d, tb_now_ns() + 5 * TB_NSEC_PER_SEC), 0);
	ck_assert_int_eq(ops->cow_arm(d, &pfn, 1, page), -ENOTSUP);
	ck_assert_int_eq(ops->cow_prepare(d, &pfn, 1, page), -ENOTSUP);
	ck_assert_int_eq(ops->resume(d, true), 0);
	ops->detach(d);
	ck_assert_int_eq(stop_guest(pid), 0);
}
END_TEST

START_TEST(restore_from_copied_image)
{
	const char *args[] = { "--ram",	    "64M",  "--threads",    "2",
			       "--content", "text", "--dirty-rate", "200000",
			       NULL };
	pid_t pid = spawn_guest(args), rpid;
	struct tb_dom_cfg cfg = base_cfg();
	struct tb_dom *d = attach_ok(&cfg), *rd;
	struct tb_dom_info info, rinfo;
	struct tb_buf cpu = { 0 }, dev = { 0 };
	struct tb_restore_req req = { 0 };
	struct tb_restore_res res;
	struct tb_sim_verify_report rep;
	uint64_t *pfns, i;
	void *img;
	int memfd, rc;

	usleep(100000);
	ops->get_info(d, &info);
	ck_assert_int_eq(ops->request_suspend(d), 0);
	ck_assert_int_eq(
		ops->await_suspended(d, tb_now_ns() + 5 * TB_NSEC_PER_SEC), 0);
	memfd = memfd_create("replica", MFD_CLOEXEC);
	ck_assert_int_ge(memfd, 0);
	ck_assert_int_eq(ftruncate(memfd, (off_t)(info.nr_pages * 4096)), 0);
	img = mmap(NULL, info.nr_pages * 4096, PROT_READ | PROT_WRITE,
		   MAP_SHARED, memfd, 0);
	ck_assert_ptr_ne(img, MAP_FAILED);
	pfns = malloc(info.nr_pages * sizeof(*pfns));
	for (i = 0; i < info.nr_pages; i++)
		pfns[i] = i;
	ck_assert_int_eq(ops->copy_pages(d, pfns, info.nr_pages, img), 0);
	ck_assert_int_eq(ops->save_cpu_state(d, &cpu), 0);
	ck_assert_int_eq(ops->save_device_state(d, &dev), 0);
	ck_assert_int_eq(ops->resume(d, true), 0);
	ck_assert_int_eq(tb_sim_verify(img, info.nr_pages * 4096, &rep), 0);
	ck_assert_msg(rep.ok, "image: %s", rep.msg);
	ck_assert_uint_gt(rep.total_writes, 0);
	ops->detach(d);
	/* the UUID made at the first protection is the guest's from then */
	ck_assert(!tb_uuid_nil(info.uuid));
	d = attach_ok(&cfg);
	ops->get_info(d, &rinfo);
	ck_assert_mem_eq(rinfo.uuid, info.uuid, sizeof(info.uuid));
	ops->detach(d);
	ck_assert_int_eq(stop_guest(pid), 0);

	req.name = "restored";
	memcpy(req.uuid, info.uuid, sizeof(req.uuid));
	req.nr_pages = info.nr_pages;
	req.mem_fd = memfd;
	req.cpu_state = cpu.data;
	req.cpu_state_len = cpu.len;
	req.dev_state = dev.data;
	req.dev_state_len = dev.len;
	req.state_tag = info.state_tag;
	req.args = "--stats-interval 0";
	setenv("TIBER_SIMGUEST", guest_bin(), 1);
	rc = ops->restore(&req, &res);
	ck_assert_msg(rc == 0, "restore: %s (%s)", strerror(-rc),
		      tb_backend_reason());
	rpid = res.pid;
	cfg.guest = res.where;
	rd = attach_ok(&cfg);
	/* its suspend hypercall returned 0: RESTORE hooks, verifier ok */
	ck_assert_uint_eq(tb_sim_dom_ctrl(rd)->restores, 1);
	ck_assert_uint_eq(tb_sim_dom_ctrl(rd)->last_verify_ok, 1);
	/* the restored guest is the same guest: same UUID */
	ops->get_info(rd, &rinfo);
	ck_assert_mem_eq(rinfo.uuid, info.uuid, sizeof(info.uuid));
	cycle(rd, true); /* and it can be protected again */
	ck_assert_uint_gt(tb_sim_dom_ctrl(rd)->progress, 0);
	ops->detach(rd);
	ck_assert_int_eq(stop_guest(rpid), 0);
	unlink(res.where);
	munmap(img, info.nr_pages * 4096);
	close(memfd);
	free(pfns);
	tb_buf_free(&cpu);
	tb_buf_free(&dev);
}
END_TEST

START_TEST(dead_guest_is_esrch)
{
	const char *args[] = { "--ram", "64M", "--ignore-suspend", NULL };
	pid_t pid = spawn_guest(args);
	struct tb_dom_cfg cfg = base_cfg();
	struct tb_dom *d = attach_ok(&cfg);
	int st;

	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	ck_assert_int_eq(ops->check_health(d), -ESRCH);
	ck_assert_int_eq(ops->request_suspend(d), -ESRCH);
	ops->detach(d);
	unlink(sock_path);
}
END_TEST

/* The copy pool both backends use: a flat source (sim) and a paged one
 * with holes that read as zeros (Xen's chunked mapping), with helpers and
 * without, lists above and below the fan-out threshold. */
#define POOL_PAGES 1500u

static uint8_t *pool_src;

static const uint8_t *pool_page(void *ctx, uint64_t pfn)
{
	ck_assert_ptr_eq(ctx, &pool_src);
	return pfn % 7 == 3 ? NULL : pool_src + pfn * TB_PAGE_SIZE;
}

START_TEST(copy_pool_flat_and_paged)
{
	uint8_t *dst = malloc((size_t)POOL_PAGES * TB_PAGE_SIZE);
	uint64_t *pfns = malloc(POOL_PAGES * sizeof(*pfns));
	static const size_t lens[] = { 1, 100, POOL_PAGES };
	unsigned helpers, paged, i, k;

	pool_src = malloc((size_t)POOL_PAGES * TB_PAGE_SIZE);
	ck_assert(dst && pfns && pool_src);
	for (i = 0; i < POOL_PAGES * TB_PAGE_SIZE; i++)
		pool_src[i] = (uint8_t)(i * 2654435761u >> 13);
	for (i = 0; i < POOL_PAGES; i++) /* a permutation: every page */
		pfns[i] = (i * 7919u) % POOL_PAGES;
	for (paged = 0; paged < 2; paged++) {
		for (helpers = 0; helpers < 4; helpers += 3) {
			struct tb_copy_pool p = { 0 };

			ck_assert_int_eq(paged ? tb_copy_pool_start_paged(
							 &p, helpers, pool_page,
							 &pool_src) :
						 tb_copy_pool_start(&p, helpers,
								    pool_src),
					 0);
			for (k = 0; k < TB_ARRAY_SIZE(lens); k++) {
				memset(dst, 0xa5, lens[k] * TB_PAGE_SIZE);
				if (k) /* helpers woken early, job later */
					tb_copy_pool_prewake(&p);
				tb_copy_pool_copy(&p, pfns, lens[k], dst);
				for (i = 0; i < lens[k]; i++) {
					uint8_t *got = dst + i * TB_PAGE_SIZE;
					uint8_t *want = pool_src +
							pfns[i] * TB_PAGE_SIZE;

					if (paged && pfns[i] % 7 == 3)
						ck_assert(!got[0] &&
							  !memcmp(got, got + 1,
								  TB_PAGE_SIZE -
									  1));
					else
						ck_assert_msg(
							!memcmp(got, want,
								TB_PAGE_SIZE),
							"page %u (pfn %llu)", i,
							(unsigned long long)
								pfns[i]);
				}
			}
			tb_copy_pool_stop(&p);
		}
	}
	free(pool_src);
	free(pfns);
	free(dst);
}
END_TEST

static Suite *sim_backend_suite(void)
{
	Suite *s = suite_create("sim_backend");
	TCase *tc = tcase_create("ops");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, every_op_on_a_running_guest);
	tcase_add_test(tc, ten_thousand_cycles_no_lost_wakeup);
	tcase_add_test(tc, suspend_while_busy);
	tcase_add_test(tc, xenstore_fallback);
	tcase_add_test(tc, static_port_dom0less);
	tcase_add_test(tc, pause_mode_stops_the_guest);
	tcase_add_test(tc, unanswered_request_times_out_guest_running);
	tcase_add_test(tc, no_suspend_cancel_refused_or_slow);
	tcase_add_test(tc, dirty_tracking_exact_4k);
	tcase_add_test(tc, dirty_tracking_exact_hugepages);
	tcase_add_test(tc, bitmap_fallback_forced);
	tcase_add_test(tc, dirty_bitmap_matches_content);
	tcase_add_test(tc, dirty_uffd_matches_content);
	tcase_add_test(tc, dirty_uffd_sync_matches_content);
	tcase_add_test(tc, cow_image_is_the_suspended_image);
	tcase_add_test(tc, cow_refused_without_sync_tracking);
	tcase_add_test(tc, restore_from_copied_image);
	tcase_add_test(tc, dead_guest_is_esrch);
	tcase_add_test(tc, copy_pool_flat_and_paged);
	suite_add_tcase(s, tc);
	return s;
}

TB_CHECK_MAIN(sim_backend_suite)
