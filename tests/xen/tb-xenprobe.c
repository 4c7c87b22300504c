// SPDX-License-Identifier: MIT
/*
 * tb-xenprobe: drive tb_backend_xen_ops in the epoch order against a live
 * domain, without a backup (the pages are copied into a staging buffer
 * and dropped).  It exercises the backend alone; the harness runs the
 * real tiberd + tiber-replicator pair when they are built.
 *
 * usage: tb-xenprobe DOMID EPOCHS HZ [mode=auto|evtchn|xenstore|pause]
 *                    [kernel=PATH] [cancel=-1|0|1] [trace=FILE]
 *        tb-xenprobe DOMID timeout [kernel=PATH]
 *                                    request with a 1 ms deadline: the
 *                                    guest must be running afterwards
 *        tb-xenprobe DOMID die-suspended [kernel=PATH]
 *                                    suspend the guest, then SIGKILL
 *                                    ourselves (what recover must undo)
 *        tb-xenprobe DOMID recover   tb_xen_recover(DOMID, fast, unpause)
 *        tb-xenprobe kernel PATH     SUSPEND_CANCEL note of a kernel image
 * Per epoch one JSON line in the trace (tiberd's field names); prints
 * INFO / RESULT / SUMMARY lines.  Exit 0 when every epoch completed and
 * the guest is healthy at the end.
 */
#include <errno.h>
#include <execinfo.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tiber/backend.h"
#include "tiber/bitmap.h"
#include "tiber/common.h"
#include "tiber/xen.h"

/* libtiber's registry also names the sim backend; this driver needs only
 * xen, so it links whether or not sim.c is in the library. */
__attribute__((weak)) const struct tb_backend_ops tb_backend_sim_ops = {
	.name = "sim-absent",
};

/* A crash prints its stack (addresses: addr2line -e tb-xenprobe). */
static void on_fatal(int sig)
{
	void *bt[32];
	int n = backtrace(bt, 32);

	backtrace_symbols_fd(bt, n, 2);
	signal(sig, SIG_DFL);
	raise(sig);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void summary(const char *name, int64_t *v, size_t n)
{
	if (!n)
		return;
	qsort(v, n, sizeof(*v), cmp_i64);
	printf("SUMMARY %-20s n=%zu p50=%.2f p90=%.2f p99=%.2f max=%.2f ms\n",
	       name, n, v[n / 2] / 1e6, v[n * 9 / 10] / 1e6,
	       v[TB_MIN(n * 99 / 100, n - 1)] / 1e6, v[n - 1] / 1e6);
}

static const char *arg(int argc, char **argv, const char *key)
{
	size_t k = strlen(key);
	int i;

	for (i = 3; i < argc; i++)
		if (!strncmp(argv[i], key, k) && argv[i][k] == '=')
			return argv[i] + k + 1;
	return NULL;
}

static void print_info(const struct tb_dom_info *in)
{
	printf("INFO dom=%u name=%s kind=%s nr_pages=%" PRIu64
	       " vcpus=%u suspend_mode=%s suspend_cancel=%d dirty=%s output_gating=none\n",
	       in->domid, in->name, in->kind, in->nr_pages, in->nr_vcpus,
	       tb_suspend_mode_name(in->suspend_mode), in->suspend_cancel,
	       in->dirty_mech);
}

static int run_timeout(const struct tb_backend_ops *ops, struct tb_dom *d)
{
	int rc = ops->request_suspend(d), rc2;

	if (rc)
		return rc;
	rc = ops->await_suspended(d, tb_now_ns() + TB_NSEC_PER_MSEC);
	if (!rc)
		rc2 = ops->resume(d, true); /* it was quicker than 1 ms */
	else
		rc2 = ops->check_health(d);
	printf("RESULT timeout await=%d (%s) health_after=%d\n", rc,
	       rc ? strerror(-rc) : "suspended in time", rc2);
	return (rc == -ETIMEDOUT || !rc) && !rc2 ? 0 : 1;
}

int main(int argc, char **argv)
{
	const struct tb_backend_ops *ops = &tb_backend_xen_ops;
	struct tb_dom_cfg cfg = { .suspend_mode = TB_SUSPEND_AUTO,
				  .static_port = -1,
				  .suspend_cancel = -1 };
	struct tb_dom_info info;
	struct tb_dom_stats st;
	struct tb_dom *d;
	struct tb_bitmap bm;
	struct tb_buf cpu = { 0 }, dev = { 0 };
	uint64_t *pfns = NULL, e, nepochs, failed = 0;
	uint8_t *stage = NULL;
	size_t stage_cap = 0;
	int64_t *t_wait, *t_pause, *t_period, next, prev_req = 0;
	size_t nok = 0, nper = 0;
	double hz;
	const char *s;
	FILE *trace = NULL;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0); /* the harness tails our log */
	signal(SIGSEGV, on_fatal);
	signal(SIGBUS, on_fatal);
	if (argc >= 3 && !strcmp(argv[1], "kernel")) {
		bool yes;

		rc = tb_xen_kernel_suspend_cancel(argv[2], &yes);
		printf("RESULT kernel %s suspend_cancel=%s rc=%d %s\n", argv[2],
		       rc  ? "?" :
		       yes ? "yes" :
			     "no",
		       rc, tb_backend_reason());
		return rc ? 1 : 0;
	}
	if (argc < 3) {
		fprintf(stderr,
			"usage: %s DOMID EPOCHS HZ [mode=..] [kernel=..] [cancel=..] [trace=..]\n",
			argv[0]);
		return 2;
	}
	cfg.domid = (uint32_t)strtoul(argv[1], NULL, 10);
	if (!strcmp(argv[2], "recover")) {
		char rep[256];

		rc = tb_xen_recover(cfg.domid, true, true, rep, sizeof(rep));
		printf("RESULT recover rc=%d did: %s %s\n", rc,
		       *rep ? rep : "nothing", rc ? tb_backend_reason() : "");
		return rc ? 1 : 0;
	}
	if (!strcmp(argv[2], "die-suspended")) {
		cfg.kernel_path = arg(argc, argv, "kernel");
		rc = ops->attach(&d, &cfg);
		if (!rc)
			rc = ops->request_suspend(d);
		if (!rc)
			rc = ops->await_suspended(
				d, tb_now_ns() + 5 * TB_NSEC_PER_SEC);
		printf("RESULT die-suspended: suspend rc=%d %s; now SIGKILL\n",
		       rc, rc ? tb_backend_reason() : "");
		fflush(stdout);
		raise(SIGKILL);
	}
	if (!strcmp(argv[2], "timeout")) {
		cfg.kernel_path = arg(argc, argv, "kernel");
		rc = ops->attach(&d, &cfg);
		if (rc) {
			printf("RESULT attach failed: %s: %s\n", strerror(-rc),
			       tb_backend_reason());
			return 1;
		}
		rc = run_timeout(ops, d);
		ops->detach(d);
		return rc;
	}
	if (argc < 4) {
		fprintf(stderr, "usage: %s DOMID EPOCHS HZ ...\n", argv[0]);
		return 2;
	}
	nepochs = strtoull(argv[2], NULL, 10);
	hz = atof(argv[3]);
	if ((s = arg(argc, argv, "mode")) &&
	    tb_suspend_mode_parse(s, &cfg.suspend_mode)) {
		fprintf(stderr, "bad mode %s\n", s);
		return 2;
	}
	cfg.kernel_path = arg(argc, argv, "kernel");
	if ((s = arg(argc, argv, "cancel")))
		cfg.suspend_cancel = atoi(s);
	if ((s = arg(argc, argv, "trace")) && !(trace = fopen(s, "w"))) {
		perror(s);
		return 2;
	}

	int64_t t0 = tb_now_ns();

	rc = ops->attach(&d, &cfg);
	if (rc) {
		printf("RESULT attach failed: %s: %s\n", strerror(-rc),
		       tb_backend_reason());
		return 1;
	}
	ops->get_info(d, &info);
	print_info(&info);
	printf("INFO attach took %.1f ms\n", (tb_now_ns() - t0) / 1e6);
	if (tb_bitmap_init(&bm, info.nr_pages))
		return 1;
	pfns = malloc(info.nr_pages * sizeof(*pfns));
	t_wait = calloc(nepochs + 1, sizeof(int64_t));
	t_pause = calloc(nepochs + 1, sizeof(int64_t));
	t_period = calloc(nepochs + 1, sizeof(int64_t));
	if (!pfns || !t_wait || !t_pause || !t_period)
		return 1;

	next = tb_now_ns();
	for (e = 1; e <= nepochs; e++) {
		int64_t t_req, t_susp, t_harv, t_staged, t_res;
		size_t n;

		tb_sleep_until(next);
		next += (int64_t)(TB_NSEC_PER_SEC / hz);
		t_req = tb_now_ns();
		if (prev_req)
			t_period[nper++] = t_req - prev_req;
		prev_req = t_req;
		rc = ops->request_suspend(d);
		if (!rc)
			rc = ops->await_suspended(d,
						  t_req + 2 * TB_NSEC_PER_SEC);
		if (rc) {
			printf("EPOCH %" PRIu64 " suspend failed: %s %s\n", e,
			       strerror(-rc), tb_backend_reason());
			failed++;
			if (rc != -ETIMEDOUT)
				break;
			continue;
		}
		t_susp = tb_now_ns();
		tb_bitmap_clear_all(&bm);
		rc = ops->harvest_dirty(d, &bm);
		t_harv = tb_now_ns();
		n = rc ? 0 : tb_bitmap_to_list(&bm, pfns, info.nr_pages);
		if (!rc && n * TB_PAGE_SIZE > stage_cap) {
			free(stage);
			stage_cap = n * TB_PAGE_SIZE;
			stage = malloc(stage_cap);
			if (!stage)
				rc = -ENOMEM;
		}
		if (!rc)
			rc = ops->copy_pages(d, pfns, n, stage);
		tb_buf_reset(&cpu);
		tb_buf_reset(&dev);
		if (!rc)
			rc = ops->save_cpu_state(d, &cpu);
		if (!rc)
			rc = ops->save_device_state(d, &dev);
		if (!rc)
			rc = ops->output_boundary(d, e);
		t_staged = tb_now_ns();
		if (rc)
			printf("EPOCH %" PRIu64 " staging failed: %s %s\n", e,
			       strerror(-rc), tb_backend_reason());
		/* Resume even on error: a stuck guest is worse than a lost
		 * epoch. */
		int rrc = ops->resume(d, true);

		t_res = tb_now_ns();
		if (rrc) {
			printf("EPOCH %" PRIu64 " resume failed: %s %s\n", e,
			       strerror(-rrc), tb_backend_reason());
			failed++;
			break;
		}
		if (rc) {
			failed++;
			continue;
		}
		t_wait[nok] = t_susp - t_req;
		t_pause[nok] = t_res - t_susp;
		nok++;
		if (trace)
			fprintf(trace,
				"{\"epoch\":%" PRIu64 ",\"t_request\":%" PRId64
				",\"t_suspended\":%" PRId64
				",\"t_harvested\":%" PRId64
				",\"t_staged\":%" PRId64
				",\"t_resumed\":%" PRId64
				",\"dirty_pages\":%zu,\"cpu_bytes\":%zu"
				",\"dev_bytes\":%zu}\n",
				e, t_req, t_susp, t_harv, t_staged, t_res, n,
				cpu.len, dev.len);
		if (e <= 3 || e % 50 == 0)
			printf("EPOCH %" PRIu64
			       " req->susp=%.2f harvest=%.2f stage=%.2f resume=%.2f ms dirty=%zu cpu=%zuB dev=%zuB\n",
			       e, (t_susp - t_req) / 1e6,
			       (t_harv - t_susp) / 1e6,
			       (t_staged - t_harv) / 1e6,
			       (t_res - t_staged) / 1e6, n, cpu.len, dev.len);
	}
	rc = ops->check_health(d);
	ops->get_stats(d, &st);
	printf("RESULT epochs_ok=%zu failed=%" PRIu64 " of %" PRIu64
	       " health=%d %s suspends=%" PRIu64 " timeouts=%" PRIu64
	       " fast=%" PRIu64 " slow=%" PRIu64 " pages=%" PRIu64 "\n",
	       nok, failed, nepochs, rc, rc ? tb_backend_reason() : "ok",
	       st.suspends, st.suspend_timeouts, st.fast_resumes,
	       st.slow_resumes, st.pages_copied);
	summary("request->suspended", t_wait, nok);
	summary("pause", t_pause, nok);
	summary("period", t_period, nper);
	ops->detach(d);
	if (trace)
		fclose(trace);
	tb_bitmap_free(&bm);
	tb_buf_free(&cpu);
	tb_buf_free(&dev);
	free(stage);
	free(pfns);
	return nok == nepochs && !failed && !rc ? 0 : 1;
}
