// SPDX-License-Identifier: MIT
/*
 * tiber-simguest --selftest-bench: measures the sim backend against real
 * tiber-simguest children (not a test: prints numbers).
 *   request -> suspended p50/p99 (evtchn, xenstore, pause)
 *   harvest cost vs dirty pages (1 GiB guest)
 *   copy ns/page, 1 and 2 threads, vs one contiguous memcpy
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "tiber/backend.h"
#include "tiber/bitmap.h"
#include "guest.h"

static const struct tb_backend_ops *ops = &tb_backend_sim_ops;

static pid_t spawn(const char *self, const char *sock, const char **extra)
{
	const char *argv[40];
	char rfd[16], c;
	int ready[2], n = 0, i;
	pid_t pid;

	if (pipe(ready))
		return -1;
	snprintf(rfd, sizeof(rfd), "%d", ready[1]);
	argv[n++] = self;
	argv[n++] = "--socket";
	argv[n++] = sock;
	argv[n++] = "--ready-fd";
	argv[n++] = rfd;
	argv[n++] = "--stats-interval";
	argv[n++] = "0";
	for (i = 0; extra[i]; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	pid = fork();
	if (pid == 0) {
		close(ready[0]);
		execv(self, (char *const *)argv);
		_exit(127);
	}
	close(ready[1]);
	if (pid < 0 || read(ready[0], &c, 1) != 1) {
		close(ready[0]);
		return -1;
	}
	close(ready[0]);
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGCONT);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int64_t pct(int64_t *v, size_t n, double q)
{
	qsort(v, n, sizeof(*v), cmp_i64);
	return v[(size_t)(q * (double)(n - 1) + 0.5)];
}

static struct tb_dom *attach(const char *sock, enum tb_suspend_mode m,
			     unsigned threads)
{
	struct tb_dom_cfg cfg = { .guest = sock,
				  .static_port = -1,
				  .suspend_mode = m,
				  .dirty_mech = "auto",
				  .copy_threads = threads };
	struct tb_dom *d = NULL;
	int rc = ops->attach(&d, &cfg);

	if (rc)
		fprintf(stderr, "attach: %s (%s)\n", strerror(-rc),
			tb_backend_reason());
	return d;
}

static void bench_suspend(const char *self, const char *sock, unsigned n)
{
	static const char *const names[] = { "evtchn", "xenstore", "pause" };
	enum tb_suspend_mode modes[] = { TB_SUSPEND_EVTCHN, TB_SUSPEND_XENSTORE,
					 TB_SUSPEND_PAUSE };
	const char *args[] = { "--ram", "256M", "--dirty-rate", "100000",
			       NULL };
	int64_t *lat = calloc(n, sizeof(*lat)), *res = calloc(n, sizeof(*res));
	unsigned m, i;

	printf("# request -> suspended (t_wake - t_notify) and resume() call, "
	       "%u cycles, 256 MiB guest writing 100k pages/s\n",
	       n);
	printf("%-9s %10s %10s %10s %12s\n", "mode", "p50_us", "p99_us",
	       "max_us", "resume_p50");
	for (m = 0; m < 3; m++) {
		pid_t pid = spawn(self, sock, args);
		struct tb_dom *d = pid > 0 ? attach(sock, modes[m], 2) : NULL;
		struct tb_dom_stats st;

		if (!d) {
			if (pid > 0)
				reap(pid);
			continue;
		}
		for (i = 0; i < n; i++) {
			int64_t t;

			ops->request_suspend(d);
			if (ops->await_suspended(d,
						 tb_now_ns() + TB_NSEC_PER_SEC))
				break;
			ops->get_stats(d, &st);
			lat[i] = st.t_wake_ns - st.t_notify_ns;
			/* hold ~100 us like a small checkpoint */
			t = tb_now_ns() + 100 * TB_NSEC_PER_USEC;
			while (tb_now_ns() < t)
				;
			t = tb_now_ns();
			ops->resume(d, true);
			res[i] = tb_now_ns() - t;
			t = tb_now_ns() + 200 * TB_NSEC_PER_USEC;
			tb_sleep_until(t);
		}
		if (i == n)
			printf("%-9s %10.1f %10.1f %10.1f %12.2f\n", names[m],
			       (double)pct(lat, n, .5) / 1e3,
			       (double)pct(lat, n, .99) / 1e3,
			       (double)pct(lat, n, 1) / 1e3,
			       (double)pct(res, n, .5) / 1e3);
		ops->detach(d);
		reap(pid);
	}
	free(lat);
	free(res);
}

static void bench_harvest(const char *self, const char *sock)
{
	uint64_t ns[] = { 0, 1000, 10000, 100000 };
	char wss[32];
	unsigned k, r;

	printf("# harvest_dirty (PAGEMAP_SCAN + re-protect), 1 GiB guest = 262144 pages, min/median of 5\n");
	printf("%-8s %10s %10s %10s\n", "dirty", "reported", "min_us",
	       "med_us");
	for (k = 0; k < TB_ARRAY_SIZE(ns); k++) {
		const char *args[] = {
			"--ram",      "1G",
			"--workload", ns[k] ? "synthetic" : "idle",
			"--pattern",  "sequential",
			"--wss",      wss,
			NULL
		};
		struct tb_bitmap bm;
		int64_t t[5];
		uint64_t got = 0;
		struct tb_dom *d;
		pid_t pid;

		snprintf(wss, sizeof(wss), "%" PRIu64,
			 (ns[k] ? ns[k] : 1) * TB_PAGE_SIZE);
		pid = spawn(self, sock, args);
		d = pid > 0 ? attach(sock, TB_SUSPEND_EVTCHN, 2) : NULL;
		if (!d) {
			if (pid > 0)
				reap(pid);
			continue;
		}
		tb_bitmap_init(&bm, 262144);
		for (r = 0; r < 5; r++) {
			uint64_t p0 =
				__atomic_load_n(&tb_sim_dom_ctrl(d)->progress,
						__ATOMIC_SEQ_CST);
			int64_t t0;

			/* sequential over the wss: one pass dirties it all */
			while (ns[k] &&
			       __atomic_load_n(&tb_sim_dom_ctrl(d)->progress,
					       __ATOMIC_SEQ_CST) < p0 + ns[k])
				usleep(1000);
			ops->request_suspend(d);
			ops->await_suspended(d, tb_now_ns() + TB_NSEC_PER_SEC);
			tb_bitmap_clear_all(&bm);
			t0 = tb_now_ns();
			ops->harvest_dirty(d, &bm);
			t[r] = tb_now_ns() - t0;
			got = tb_bitmap_count(&bm);
			ops->resume(d, true);
		}
		printf("%-8" PRIu64 " %10" PRIu64 " %10.1f %10.1f\n", ns[k],
		       got, (double)pct(t, 5, 0) / 1e3,
		       (double)pct(t, 5, .5) / 1e3);
		tb_bitmap_free(&bm);
		ops->detach(d);
		reap(pid);
	}
}

static void evict(uint8_t *sweep, size_t len)
{
	size_t i;

	for (i = 0; i < len; i += 64)
		sweep[i]++;
}

static void bench_copy(const char *self, const char *sock)
{
	const char *args[] = { "--ram",	    "1G",     "--workload", "idle",
			       "--content", "random", NULL };
	uint64_t nsz[] = { 1000, 10000, 100000 };
	size_t sweep_len = 96u << 20;
	uint8_t *sweep = malloc(sweep_len), *dst = malloc(100000ull * 4096);
	uint64_t *pfns = malloc(100000 * sizeof(*pfns)), s = 12345, i;
	unsigned th, k, r;
	pid_t pid;

	printf("# copy_pages ns/page, 1 GiB guest, random sorted pfns, caches evicted, min of 5\n");
	printf("%-8s %12s %12s %14s\n", "pages", "1_thread", "2_threads",
	       "memcpy_contig");
	memset(dst, 1, 100000ull * 4096);
	memset(sweep, 0, sweep_len);
	pid = spawn(self, sock, args);
	if (pid < 0)
		goto out;
	for (k = 0; k < TB_ARRAY_SIZE(nsz); k++) {
		double best[3] = { 1e18, 1e18, 1e18 };
		uint64_t n = nsz[k], step = 262144 / n;

		for (i = 0; i < n; i++) {
			s = s * 6364136223846793005ull + 1;
			pfns[i] = i * step + (s >> 33) % step;
		}
		for (th = 1; th <= 2; th++) {
			struct tb_dom *d = attach(sock, TB_SUSPEND_EVTCHN, th);

			if (!d)
				continue;
			ops->request_suspend(d);
			ops->await_suspended(d, tb_now_ns() + TB_NSEC_PER_SEC);
			for (r = 0; r < 5; r++) {
				int64_t t0;

				evict(sweep, sweep_len);
				t0 = tb_now_ns();
				ops->copy_pages(d, pfns, n, dst);
				best[th - 1] = TB_MIN(
					best[th - 1],
					(double)(tb_now_ns() - t0) / (double)n);
			}
			ops->resume(d, true);
			ops->detach(d);
		}
		for (r = 0; r < 5; r++) {
			int64_t t0;

			evict(sweep, sweep_len);
			t0 = tb_now_ns();
			memcpy(dst, sweep + 4096,
			       n * 4096 > sweep_len - 4096 ? sweep_len - 4096 :
							     n * 4096);
			best[2] = TB_MIN(
				best[2],
				(double)(tb_now_ns() - t0) /
					(double)TB_MIN(n, (sweep_len - 4096) /
								  4096));
		}
		printf("%-8" PRIu64 " %12.0f %12.0f %14.0f\n", n, best[0],
		       best[1], best[2]);
	}
	reap(pid);
out:
	free(sweep);
	free(dst);
	free(pfns);
}

int tb_simbench_main(unsigned cycles)
{
	char self[4096], sock[108];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0) {
		perror("tiber-simguest: /proc/self/exe");
		return 2;
	}
	self[n] = 0;
	snprintf(sock, sizeof(sock), "/tmp/tiber-simbench-%d.sock",
		 (int)getpid());
	bench_suspend(self, sock, cycles);
	bench_harvest(self, sock);
	bench_copy(self, sock);
	unlink(sock);
	return 0;
}
