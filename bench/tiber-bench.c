// SPDX-License-Identifier: MIT
/*
 * tiber-bench: pause latency of the real programs, with the physical
 * bound and the xl-remus-style baseline measured in the same run.
 *
 * Each run starts tiber-replicator, a tiber-simguest and tiberd
 * --backend sim, parses tiberd's per-epoch trace (steady state only: the
 * full sync and WARM_EPOCHS after it are skipped), then measures in this
 * process the copy bound for the run's median dirty set, and, where
 * asked, the same guest unprotected for its ops ratio.
 *
 * Sweeps are one-dimensional around a base point (1 GiB guest, 40 Hz,
 * 1k dirty pages per epoch, delta content, loopback TCP, lz4 on, uffd);
 * the full cross product would take hours on 2 cores.  Every figure is
 * a measurement of this invocation; the headline figures are ratios of
 * runs made minutes apart on the same box.
 *
 * Usage: tiber-bench [--quick] [--json FILE] [--plot DIR]
 *                    [--markdown FILE] [--only SWEEP,...] [--secs S]
 *                    [--bin DIR] [--keep] [-v]   (tiber-bench --help)
 */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/utsname.h>

#include "tiber/common.h"
#include "tiber/config.h"
#include "bench.h"

#define MAX_RUNS 64

static struct bench_env env;
static struct bench_cfg plan[MAX_RUNS];
static struct bench_res res[MAX_RUNS];
static unsigned nr_plan;
static bool keep_tmp;

/* bench_kill_all() is async-signal-safe: kill(2) on procs[] only, in
 * another file, where bugprone-signal-handler does not look */
static void on_signal(int sig)
{
	bench_interrupted = 1;
	bench_kill_all(); // NOLINT(bugprone-signal-handler)
}

static void on_exit_cleanup(void)
{
	bench_kill_all();
	if (keep_tmp) {
		fprintf(stderr, "tiber-bench: kept %s\n", env.tmp);
		env.tmp[0] = 0;
	}
	bench_env_cleanup(&env);
}

/* ---------------------------------------------------------------- plan */

static struct bench_cfg base(bool quick)
{
	struct bench_cfg c = {
		.sweep = "base",
		.mode = BENCH_STAGED,
		.rate_hz = 40,
		.dirty_target = 1000,
		.content = "delta",
		.guest_mib = quick ? 256 : 1024,
		.link = BENCH_LINK_TCP,
		.compress = true,
		.mech = "uffd",
		.secs = quick ? 1.5 : 5,
		/* --quick must stay under a minute on a loaded box: a run
		 * that overruns is cut and measured on what it has */
		.deadline_s = quick ? 9 : 0,
	};
	return c;
}

static const char *plan_only;

static bool want(const char *only, const char *sweep);

static void add(struct bench_cfg c)
{
	if (nr_plan < MAX_RUNS && want(plan_only, c.sweep))
		plan[nr_plan++] = c;
}

static bool want(const char *only, const char *sweep)
{
	char buf[256], *tok, *save = NULL;

	if (!only)
		return true;
	snprintf(buf, sizeof(buf), "%s", only);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save))
		if (!strcmp(tok, sweep))
			return true;
	return false;
}

/* @n (10k or more) dirty pages per epoch.  Bitmap tracking: with uffd-wp
 * a guest write fault costs 13-18 us on hosts with slow page-table ops,
 * and a rate-limited writer does not reach 10k pages per epoch there
 * (such a run is flagged, bench_reached(), either way). */
static void many_pages(struct bench_cfg *c, uint64_t n)
{
	c->dirty_target = n;
	c->mech = "bitmap";
}

/* The same 10k-page flat-out writer, plaintext then TLS: what
 * encryption costs the pipeline.  Bitmap tracking: with uffd-wp the
 * writer does not reach 10k pages on hosts with slow page-table ops. */
static void add_tls(struct bench_cfg c)
{
	c.sweep = "tls";
	many_pages(&c, 10000);
	c.flatout = true;
	c.tls = false;
	add(c);
	c.tls = true;
	add(c);
}

/* Saturation: a flat-out writer over 10k pages at 200 Hz, more than the
 * pipeline can take on 2 cores, so the achieved rate x pages is what
 * it sustains (ticks past capacity wait for an ACK: deferred_ticks). */
static void add_saturation(struct bench_cfg c)
{
	c.sweep = "saturation";
	many_pages(&c, 10000);
	c.flatout = true;
	c.rate_hz = 200;
	add(c);
}

/* Disk writes next to the base guest: the pause without and with a
 * disk writer (disk data never moves in the pause), and the writer's
 * throughput protected / unprotected, at 50 MB/s and flat out. */
static void add_disk(struct bench_cfg c)
{
	c.sweep = "disk";
	add(c);
	c.ops = true;
	c.disk_writes = 12800; /* 50 MB/s of 4 KiB writes */
	add(c);
	c.disk_writes = UINT64_MAX;
	add(c);
}

/*
 * Copy-on-write against staged, the same guest and tracking (uffd-wp
 * sync: both see the same dirty sets), flat-out writers over exactly n
 * pages (all of them dirty every epoch).  Each first write after a
 * re-protect is a fault served by tiberd (a round trip of 20-45 us on
 * an idle host here, cross-CPU wakeups included), so four writer
 * threads keep faults in flight and the larger sets run at lower
 * rates: 1k at 20 Hz, 10k at 4 Hz, 100k at 0.4 Hz.
 */
static void add_cow(struct bench_cfg c)
{
	static const uint64_t n[] = { 1000, 10000, 100000 };
	static const double hz[] = { 20, 4, 0.4 };
	unsigned i, m;

	c.sweep = "cow";
	c.mech = "uffd-sync";
	c.flatout = true;
	c.threads = 4;
	c.guest_mib = 1024;
	c.deadline_s = 0;
	for (i = 0; i < TB_ARRAY_SIZE(n); i++) {
		for (m = 0; m < 2; m++) {
			c.dirty_target = n[i];
			c.rate_hz = hz[i];
			c.secs = TB_MAX(c.secs, 12 / hz[i]);
			c.mode = m ? BENCH_COW : BENCH_STAGED;
			add(c);
		}
	}
}

static void make_plan(bool quick, const char *only, double secs)
{
	static const uint64_t dirty[] = { 0, 100, 1000, 10000, 100000 };
	static const double rates[] = { 10, 20, 100, 200 };
	static const char *const contents[] = { "zero", "text", "random" };
	static const uint64_t rams[] = { 256, 2048, 4096 };
	static const double gbits[] = { 1, 10, 25 };
	struct bench_cfg b = base(quick), c;
	unsigned i, m;

	plan_only = only;
	if (secs > 0)
		b.secs = secs;
	if (quick) {
		/* the three of the issue, on a 10 Gbit/s emulated link */
		c = b;
		c.sweep = "quick";
		c.link = BENCH_LINK_EMU;
		c.link_gbit = 10;
		c.ops = true;
		add(c);
		c.ops = false;
		many_pages(&c, 10000);
		add(c);
		c.mode = BENCH_SWP;
		add(c);
		c = b;
		c.sweep = "ops";
		c.flatout = true;
		c.ops = true;
		add(c);
		c = b;
		c.sweep = "rate";
		c.rate_hz = 100;
		add(c);
		c.rate_hz = 200;
		add(c);
		add_tls(b);
		add_saturation(b);
		add_disk(b);
		return;
	}
	if (want(only, "dirty")) {
		for (i = 0; i < TB_ARRAY_SIZE(dirty); i++) {
			c = b;
			c.sweep = "dirty";
			c.dirty_target = dirty[i];
			if (dirty[i] >= 10000)
				many_pages(&c, dirty[i]);
			c.ops = dirty[i] == 1000;
			/* 100k pages cost ~30 ms to copy: 40 Hz cannot hold */
			if (dirty[i] >= 100000)
				c.rate_hz = 10;
			add(c);
		}
		for (i = 1; i < 4; i++) {
			c = b;
			c.sweep = "dirty";
			c.mode = BENCH_SWP;
			c.dirty_target = dirty[i];
			if (dirty[i] >= 10000)
				many_pages(&c, dirty[i]);
			add(c);
		}
	}
	if (want(only, "rate"))
		for (i = 0; i < TB_ARRAY_SIZE(rates); i++) {
			c = b;
			c.sweep = "rate";
			c.rate_hz = rates[i];
			c.ops = true;
			add(c);
		}
	if (want(only, "ops")) {
		c = b;
		c.sweep = "ops";
		c.flatout = true;
		c.ops = true;
		add(c);
	}
	if (want(only, "content"))
		for (i = 0; i < TB_ARRAY_SIZE(contents); i++) {
			c = b;
			c.sweep = "content";
			c.content = contents[i];
			add(c);
		}
	if (want(only, "ram"))
		for (i = 0; i < TB_ARRAY_SIZE(rams); i++) {
			c = b;
			c.sweep = "ram";
			c.guest_mib = rams[i];
			add(c);
		}
	if (want(only, "link")) {
		c = b;
		c.sweep = "link";
		many_pages(&c, 10000);
		c.link = BENCH_LINK_UNIX;
		add(c);
		for (i = 0; i < TB_ARRAY_SIZE(gbits); i++)
			for (m = 0; m < 2; m++) {
				c = b;
				c.sweep = "link";
				many_pages(&c, 10000);
				c.link = BENCH_LINK_EMU;
				c.link_gbit = gbits[i];
				c.mode = m ? BENCH_SWP : BENCH_STAGED;
				add(c);
			}
	}
	if (want(only, "equal"))
		for (m = 0; m < 2; m++) {
			/*
			 * A flat-out writer over exactly 10k pages dirties all
			 * of them every epoch, however long the pause: both
			 * modes then copy (and ship) the same dirty set.
			 */
			c = b;
			c.sweep = "equal";
			many_pages(&c, 10000);
			c.flatout = true;
			c.link = BENCH_LINK_EMU;
			c.link_gbit = 10;
			c.mode = m ? BENCH_SWP : BENCH_STAGED;
			add(c);
		}
	add_disk(b);
	if (want(only, "compress")) {
		c = b;
		c.sweep = "compress";
		c.compress = false;
		add(c);
	}
	if (want(only, "mech")) {
		c = b;
		c.sweep = "mech";
		c.mech = "bitmap";
		add(c);
	}
	add_tls(b);
	add_saturation(b);
	add_cow(b);
}

/* ---------------------------------------------------------------- text */

const char *bench_mode_name(enum bench_mode m, bool shrt)
{
	switch (m) {
	case BENCH_SWP:
		return shrt ? "swp" : "send-while-paused";
	case BENCH_COW:
		return "cow";
	default:
		return shrt ? "stg" : "staged";
	}
}

static const char *mode_name(enum bench_mode m)
{
	return bench_mode_name(m, false);
}

static void link_name(const struct bench_res *r, char *buf, size_t len)
{
	const struct bench_cfg *c = &r->cfg;

	if (c->link == BENCH_LINK_UNIX)
		snprintf(buf, len, "unix");
	else if (c->link == BENCH_LINK_TCP)
		snprintf(buf, len, "tcp");
	else
		snprintf(buf, len, "%gG-%s", c->link_gbit, r->link_emulation);
}

static void describe(const struct bench_cfg *c, char *buf, size_t len)
{
	char l[32];

	if (c->link == BENCH_LINK_EMU)
		snprintf(l, sizeof(l), "%g Gbit/s", c->link_gbit);
	else
		snprintf(l, sizeof(l), "%s",
			 c->link == BENCH_LINK_UNIX ? "unix" : "tcp");
	snprintf(buf, len,
		 "%s: %s %" PRIu64 "%s pages/epoch @%g Hz, %s, %" PRIu64
		 " MiB, %s, lz4 %s, %s",
		 c->sweep, mode_name(c->mode), c->dirty_target,
		 c->flatout ? " (flat out)" : "", c->rate_hz, c->content,
		 c->guest_mib, l, c->compress ? "on" : "off", c->mech);
}

static double ratio(double a, double b)
{
	return b > 0 ? a / b : NAN;
}

/* "%.2f" or "-" for NaN / not measured */
static const char *fmt(char *buf, size_t len, int prec, double v)
{
	if (isnan(v) || v < 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.*f", prec, v);
	return buf;
}

#define US(x) ((x) / 1e3)

static void print_table(FILE *f, bool md)
{
	const char *sep = md ? " | " : " ";
	unsigned i;

	if (md)
		fprintf(f,
			"| sweep | mode | Hz | dirty target | dirty p50 | content | MiB | link | lz4 | mech | epochs | pause p50 µs | p99 µs | max µs | handshake p50 µs | harvest p50 µs | copy p50 µs | scattered bound µs | memcpy bound µs | p99/bound | jitter p99 µs | missed | achieved Hz | raw MB | wire MB | ops ratio |\n|%s\n",
			"---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
	else
		fprintf(f,
			"%-8s %-5s %4s %7s %7s %-6s %5s %-9s %-3s %-6s %5s %8s %8s %8s %7s %7s %7s %8s %8s %6s %8s %5s %6s %8s %8s %5s\n",
			"sweep", "mode", "Hz", "target", "dirty", "content",
			"MiB", "link", "lz4", "mech", "epoch", "p50us", "p99us",
			"maxus", "hs_us", "harv_us", "copy_us", "bound_us",
			"memcpyus", "p99/bd", "jit99us", "miss", "ach_Hz",
			"rawMB", "wireMB", "ops");
	for (i = 0; i < nr_plan; i++) {
		struct bench_res *r = &res[i];
		const struct bench_cfg *c = &r->cfg;
		char l[32], b1[32], b2[32];

		link_name(r, l, sizeof(l));
		if (!r->ok) {
			if (md)
				fprintf(f,
					"| %s | %s | %g | %" PRIu64
					" | FAILED: %s |\n",
					c->sweep, mode_name(c->mode),
					c->rate_hz, c->dirty_target, r->err);
			else
				fprintf(f,
					"%-8s %-5s %4g %7" PRIu64
					" FAILED: %s\n",
					c->sweep,
					bench_mode_name(c->mode, true),
					c->rate_hz, c->dirty_target, r->err);
			continue;
		}
		if (md)
			fprintf(f, "| ");
		fprintf(f,
			md ? "%s | %s | %g | %" PRIu64
			     "%s | %.0f%s | %s | %" PRIu64
			     " | %s | %s | %s | %" PRIu64
			     " | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %s | %.0f | %" PRIu64
			     " | %.1f | %.1f | %.1f | %s |\n" :
			     "%-8s %-5s %4g %7" PRIu64
			     "%s %7.0f%s%-6s %5" PRIu64
			     " %-9s %-3s %-6s %5" PRIu64
			     " %8.0f %8.0f %8.0f %7.0f %7.0f %7.0f %8.0f %8.0f %6s %8.0f %5" PRIu64
			     " %6.1f %8.1f %8.1f %5s\n",
			c->sweep,
			md ? mode_name(c->mode) :
			     (bench_mode_name(c->mode, true)),
			c->rate_hz, c->dirty_target,
			c->flatout ? (md ? " (flat out)" : "*") :
				     (md ? "" : " "),
			r->ph[PH_DIRTY].p50,
			bench_reached(r) ? (md ? "" : " ") :
					   (md ? " (MISSED)" : "!"),
			c->content, c->guest_mib, l,
			c->compress && c->mode == BENCH_STAGED ? "on" : "off",
			c->mech, r->epochs, US(r->ph[PH_PAUSE].p50),
			US(r->ph[PH_PAUSE].p99), US(r->ph[PH_PAUSE].max),
			US(r->ph[PH_HANDSHAKE].p50), US(r->ph[PH_HARVEST].p50),
			US(r->ph[PH_COPY].p50), US(r->copy_scattered_ns),
			US(r->copy_memcpy_ns),
			fmt(b1, sizeof(b1), 2,
			    ratio(r->ph[PH_PAUSE].p99, r->copy_scattered_ns)),
			US(r->ph[PH_JITTER].p99), r->missed_ticks,
			r->achieved_hz, (double)r->bytes_raw / 1e6,
			(double)r->bytes_wire / 1e6,
			fmt(b2, sizeof(b2), 3, r->guest_ops_ratio));
	}
	fprintf(f,
		"%s%s: the run's dirty pages per epoch (p50) stayed under %.0f%% of its target; it is left out of every headline\n",
		md ? "\n" : "", md ? "(MISSED)" : "!", BENCH_REACHED * 100);
	(void)sep;
}

static void print_phases(FILE *f, bool md)
{
	static const int ph[] = { PH_HANDSHAKE, PH_HARVEST, PH_COPY,
				  PH_RESUME,	PH_PAUSE,   PH_PERIOD,
				  PH_SEND,	PH_ACK,	    PH_RELEASE };
	unsigned i, k;

	if (md) {
		fprintf(f, "| sweep | mode | Hz | dirty | MiB | link |");
		for (k = 0; k < TB_ARRAY_SIZE(ph); k++)
			fprintf(f, " %s p50 / p99 µs |",
				bench_phase_names[ph[k]]);
		fprintf(f, "\n|---|---|---|---|---|---|");
		for (k = 0; k < TB_ARRAY_SIZE(ph); k++)
			fprintf(f, "---|");
		fprintf(f, "\n");
	} else {
		fprintf(f, "%-8s %-5s %4s %7s %5s %-9s", "sweep", "mode", "Hz",
			"dirty", "MiB", "link");
		for (k = 0; k < TB_ARRAY_SIZE(ph); k++)
			fprintf(f, " %15s", bench_phase_names[ph[k]]);
		fprintf(f, "   (p50/p99 us)\n");
	}
	for (i = 0; i < nr_plan; i++) {
		struct bench_res *r = &res[i];
		char l[32], cell[40];

		if (!r->ok)
			continue;
		link_name(r, l, sizeof(l));
		fprintf(f,
			md ? "| %s | %s | %g | %" PRIu64 " | %" PRIu64
			     " | %s |" :
			     "%-8s %-5s %4g %7" PRIu64 " %5" PRIu64 " %-9s",
			r->cfg.sweep,
			md ? mode_name(r->cfg.mode) :
			     bench_mode_name(r->cfg.mode, true),
			r->cfg.rate_hz, r->cfg.dirty_target, r->cfg.guest_mib,
			l);
		for (k = 0; k < TB_ARRAY_SIZE(ph); k++) {
			struct bench_stat *s = &r->ph[ph[k]];

			snprintf(cell, sizeof(cell), "%.0f/%.0f", US(s->p50),
				 US(s->p99));
			fprintf(f, md ? " %s |" : " %15s", cell);
		}
		fprintf(f, "\n");
	}
}

/* ---------------------------------------------------------------- headlines */

struct headlines {
	double bound_1k, bound_10k;	  /* staged p99 / scattered bound */
	double bound_1k_mc, bound_10k_mc; /* staged p99 / memcpy bound */
	double swp_10g;			  /* staged p99 / swp p99, 10 Gbit/s */
	double swp_eq;			  /* same, flat-out 10k-page writer */
	double max_rate;		  /* 1k pages, jitter p99 < 1 ms */
	double ops_flat, ops_base;	  /* guest ops ratio at 40 Hz */
	double sat_pages_s; /* flat-out 10k writer at 200 Hz: pages/s */
	const struct bench_res *sat;
	/* sweep "disk": the base guest without / with a disk writer */
	const struct bench_res *dnone, *d50, *dmax;
	const struct bench_res *tls_off, *tls_on; /* sweep "tls" */
	/* sweep "cow": [0..2] = 1k, 10k, 100k pages; staged and cow */
	const struct bench_res *cstg[3], *ccow[3];
	const struct bench_res *r1k, *r10k, *s10g, *w10g, *rflat, *rbase;
	const struct bench_res *seq, *weq;
};

static bool is_basic(const struct bench_res *r)
{
	const struct bench_cfg *c = &r->cfg;

	return bench_reached(r) && c->compress &&
	       strcmp(c->sweep, "mech") != 0 && !strcmp(c->content, "delta") &&
	       !c->flatout && !c->disk_writes;
}

/* The first run matching, links in order of preference. */
static const struct bench_res *find(enum bench_mode mode, uint64_t dirty,
				    double rate, double gbit)
{
	static const enum bench_link pref[] = { BENCH_LINK_TCP,
						BENCH_LINK_EMU };
	unsigned i, p;

	for (p = 0; p < TB_ARRAY_SIZE(pref); p++)
		for (i = 0; i < nr_plan; i++) {
			const struct bench_res *r = &res[i];

			if (!is_basic(r) || r->cfg.mode != mode ||
			    r->cfg.dirty_target != dirty ||
			    r->cfg.rate_hz != rate)
				continue;
			if (gbit > 0 ? (r->cfg.link == BENCH_LINK_EMU &&
					r->cfg.link_gbit == gbit) :
				       r->cfg.link == pref[p])
				return r;
		}
	return NULL;
}

static void compute_headlines(struct headlines *h)
{
	unsigned i;

	memset(h, 0, sizeof(*h));
	h->r1k = find(BENCH_STAGED, 1000, 40, 0);
	h->r10k = find(BENCH_STAGED, 10000, 40, 0);
	h->s10g = find(BENCH_STAGED, 10000, 40, 10);
	h->w10g = find(BENCH_SWP, 10000, 40, 10);
	h->bound_1k = h->r1k ? ratio(h->r1k->ph[PH_PAUSE].p99,
				     h->r1k->copy_scattered_ns) :
			       NAN;
	h->bound_10k = h->r10k ? ratio(h->r10k->ph[PH_PAUSE].p99,
				       h->r10k->copy_scattered_ns) :
				 NAN;
	h->bound_1k_mc = h->r1k ? ratio(h->r1k->ph[PH_PAUSE].p99,
					h->r1k->copy_memcpy_ns) :
				  NAN;
	h->bound_10k_mc = h->r10k ? ratio(h->r10k->ph[PH_PAUSE].p99,
					  h->r10k->copy_memcpy_ns) :
				    NAN;
	h->swp_10g = h->s10g && h->w10g ? ratio(h->s10g->ph[PH_PAUSE].p99,
						h->w10g->ph[PH_PAUSE].p99) :
					  NAN;
	h->max_rate = NAN;
	h->ops_flat = h->ops_base = h->swp_eq = NAN;
	for (i = 0; i < nr_plan; i++) {
		const struct bench_res *r = &res[i];

		if (r->ok && !strcmp(r->cfg.sweep, "saturation"))
			h->sat =
				r; /* flat out: pages/s count, reached or not */
		if (bench_reached(r) && !strcmp(r->cfg.sweep, "tls")) {
			if (r->cfg.tls)
				h->tls_on = r;
			else
				h->tls_off = r;
		}
		if (bench_reached(r) && !strcmp(r->cfg.sweep, "disk")) {
			if (!r->cfg.disk_writes)
				h->dnone = r;
			else if (r->cfg.disk_writes == UINT64_MAX)
				h->dmax = r;
			else
				h->d50 = r;
		}
		if (r->ok && !strcmp(r->cfg.sweep, "cow")) {
			unsigned k = r->cfg.dirty_target >= 100000 ? 2 :
				     r->cfg.dirty_target >= 10000  ? 1 :
								     0;

			if (r->cfg.mode == BENCH_COW)
				h->ccow[k] = r;
			else
				h->cstg[k] = r;
		}
		if (bench_reached(r) && !strcmp(r->cfg.sweep, "equal")) {
			if (r->cfg.mode == BENCH_SWP)
				h->weq = r;
			else
				h->seq = r;
		}

		if (bench_reached(r) && r->cfg.flatout &&
		    r->cfg.rate_hz == 40 && r->guest_ops_ratio >= 0) {
			h->rflat = r;
			h->ops_flat = r->guest_ops_ratio;
		}
		if (!is_basic(r) || r->cfg.mode != BENCH_STAGED ||
		    r->cfg.dirty_target != 1000)
			continue;
		if (r->cfg.rate_hz == 40 && r->guest_ops_ratio >= 0 &&
		    !h->rbase) {
			h->rbase = r;
			h->ops_base = r->guest_ops_ratio;
		}
		/* sustained: jitter p99 < 1 ms and >= 95 % of the rate */
		if (r->ph[PH_JITTER].p99 < 1e6 &&
		    r->achieved_hz >= 0.95 * r->cfg.rate_hz &&
		    (isnan(h->max_rate) || r->cfg.rate_hz > h->max_rate))
			h->max_rate = r->cfg.rate_hz;
	}
	if (h->seq && h->weq)
		h->swp_eq = ratio(h->seq->ph[PH_PAUSE].p99,
				  h->weq->ph[PH_PAUSE].p99);
	h->sat_pages_s =
		h->sat ? h->sat->achieved_hz * h->sat->ph[PH_DIRTY].p50 : NAN;
}

static double disk_mbps(const struct bench_res *r, bool prot)
{
	double v = r ? (prot ? r->ops_protected : r->ops_unprotected) : NAN;

	return v >= 0 ? v / 1e6 : NAN;
}

static void print_disk(FILE *f, const struct headlines *h, const char *li)
{
	char a[32], b[32], c[32], d[32], e[32], g[32];

	fprintf(f,
		"%sdisk writes at 40 Hz, protected / unprotected guest write throughput: 50 MB/s writer %s (%s / %s MB/s), flat-out writer %s (%s / %s MB/s)\n",
		li,
		fmt(a, sizeof(a), 3, h->d50 ? h->d50->guest_ops_ratio : NAN),
		fmt(b, sizeof(b), 1, disk_mbps(h->d50, true)),
		fmt(c, sizeof(c), 1, disk_mbps(h->d50, false)),
		fmt(d, sizeof(d), 3, h->dmax ? h->dmax->guest_ops_ratio : NAN),
		fmt(e, sizeof(e), 1, disk_mbps(h->dmax, true)),
		fmt(g, sizeof(g), 1, disk_mbps(h->dmax, false)));
	fprintf(f,
		"%spause p99 with / without the 50 MB/s disk writer: %s (%s us / %s us); flat-out writer %s\n",
		li,
		fmt(a, sizeof(a), 3,
		    h->d50 && h->dnone ? ratio(h->d50->ph[PH_PAUSE].p99,
					       h->dnone->ph[PH_PAUSE].p99) :
					 NAN),
		fmt(b, sizeof(b), 0,
		    h->d50 ? US(h->d50->ph[PH_PAUSE].p99) : NAN),
		fmt(c, sizeof(c), 0,
		    h->dnone ? US(h->dnone->ph[PH_PAUSE].p99) : NAN),
		fmt(d, sizeof(d), 3,
		    h->dmax && h->dnone ? ratio(h->dmax->ph[PH_PAUSE].p99,
						h->dnone->ph[PH_PAUSE].p99) :
					  NAN));
}

/* Copy-on-write against staged (sweep "cow"): a missed dirty target is
 * said, and such a pair is not a headline figure. */
static void print_cow(FILE *f, const struct headlines *h, const char *li)
{
	static const char *const nm[] = { "1k", "10k", "100k" };
	double lo = NAN, hi = NAN, p;
	char a[32], b[32];
	unsigned k;

	for (k = 0; k < 3; k++) {
		const struct bench_res *c = h->ccow[k], *s = h->cstg[k];

		if (!c || !s)
			continue;
		fprintf(f,
			"%scow / staged pause p99 at %s pages (%g Hz, uffd-wp sync): %s (%.0f us / %.0f us; p50 %s: %.0f us / %.0f us; dirty p50 %.0f / %.0f; achieved %.1f / %.1f Hz)%s\n",
			li, nm[k], c->cfg.rate_hz,
			fmt(a, sizeof(a), 3,
			    ratio(c->ph[PH_PAUSE].p99, s->ph[PH_PAUSE].p99)),
			US(c->ph[PH_PAUSE].p99), US(s->ph[PH_PAUSE].p99),
			fmt(b, sizeof(b), 3,
			    ratio(c->ph[PH_PAUSE].p50, s->ph[PH_PAUSE].p50)),
			US(c->ph[PH_PAUSE].p50), US(s->ph[PH_PAUSE].p50),
			c->ph[PH_DIRTY].p50, s->ph[PH_DIRTY].p50,
			c->achieved_hz, s->achieved_hz,
			bench_reached(c) && bench_reached(s) ?
				"" :
				" (MISSED its dirty target: not a headline)");
		if (!bench_reached(c))
			continue;
		p = c->ph[PH_PAUSE].p99;
		lo = isnan(lo) || p < lo ? p : lo;
		hi = isnan(hi) || p > hi ? p : hi;
	}
	if (!isnan(lo))
		fprintf(f,
			"%scow pause p99, largest / smallest over the dirty sets reached: %s (%s us / %.0f us)\n",
			li, fmt(a, sizeof(a), 2, ratio(hi, lo)),
			fmt(b, sizeof(b), 0, US(hi)), US(lo));
}

static void print_headlines(FILE *f, const struct headlines *h, bool md)
{
	char a[32], b[32], c[32], d[32];
	const char *li = md ? "* " : "  ";

	fprintf(f,
		"%sstaged pause p99 / scattered-copy bound: 1k pages %s, 10k pages %s",
		li, fmt(a, sizeof(a), 2, h->bound_1k),
		fmt(b, sizeof(b), 2, h->bound_10k));
	fprintf(f, " (vs memcpy bound: %s, %s)\n",
		fmt(a, sizeof(a), 2, h->bound_1k_mc),
		fmt(b, sizeof(b), 2, h->bound_10k_mc));
	fprintf(f,
		"%sachieved rate at 40 Hz: 1k pages %s Hz, 10k pages %s Hz (%s mech)\n",
		li, fmt(a, sizeof(a), 1, h->r1k ? h->r1k->achieved_hz : NAN),
		fmt(b, sizeof(b), 1, h->r10k ? h->r10k->achieved_hz : NAN),
		h->r10k ? h->r10k->cfg.mech : "-");
	fprintf(f,
		"%spages/s at saturation (flat-out writer over 10k pages, 200 Hz asked): %s (%s Hz achieved, dirty p50 %s)\n",
		li, fmt(a, sizeof(a), 0, h->sat_pages_s),
		fmt(b, sizeof(b), 1, h->sat ? h->sat->achieved_hz : NAN),
		fmt(c, sizeof(c), 0, h->sat ? h->sat->ph[PH_DIRTY].p50 : NAN));
	if (h->s10g && h->w10g)
		fprintf(f,
			"%sstaged / send-while-paused pause p99 at 10k pages, 10 Gbit/s (%s): %s (%.0f us / %.0f us; dirty p50 %.0f / %.0f pages; per dirty page %s)\n",
			li, h->s10g->link_emulation,
			fmt(a, sizeof(a), 3, h->swp_10g),
			US(h->s10g->ph[PH_PAUSE].p99),
			US(h->w10g->ph[PH_PAUSE].p99),
			h->s10g->ph[PH_DIRTY].p50, h->w10g->ph[PH_DIRTY].p50,
			fmt(b, sizeof(b), 3,
			    ratio(ratio(h->s10g->ph[PH_PAUSE].p99,
					h->s10g->ph[PH_DIRTY].p50),
				  ratio(h->w10g->ph[PH_PAUSE].p99,
					h->w10g->ph[PH_DIRTY].p50))));
	else
		fprintf(f,
			"%sstaged / send-while-paused at 10 Gbit/s: not measured\n",
			li);
	if (h->seq && h->weq)
		fprintf(f,
			"%sthe same with a flat-out writer over 10k pages (10 Gbit/s %s): %s (%.0f us / %.0f us; dirty p50 %.0f / %.0f pages; equal only if the guest can touch all 10k each epoch)\n",
			li, h->seq->link_emulation,
			fmt(a, sizeof(a), 3, h->swp_eq),
			US(h->seq->ph[PH_PAUSE].p99),
			US(h->weq->ph[PH_PAUSE].p99), h->seq->ph[PH_DIRTY].p50,
			h->weq->ph[PH_DIRTY].p50);
	if (h->tls_on && h->tls_off) {
		double on = h->tls_on->achieved_hz *
			    h->tls_on->ph[PH_DIRTY].p50,
		       off = h->tls_off->achieved_hz *
			     h->tls_off->ph[PH_DIRTY].p50;

		fprintf(f,
			"%sTLS / plaintext, flat-out writer over 10k pages: pages/s %s (%.0f / %.0f), pause p99 %s (%.0f us / %.0f us)\n",
			li, fmt(a, sizeof(a), 2, ratio(on, off)), on, off,
			fmt(b, sizeof(b), 2,
			    ratio(h->tls_on->ph[PH_PAUSE].p99,
				  h->tls_off->ph[PH_PAUSE].p99)),
			US(h->tls_on->ph[PH_PAUSE].p99),
			US(h->tls_off->ph[PH_PAUSE].p99));
	}
	fprintf(f,
		"%shighest rate tried with 1k pages, jitter p99 < 1 ms and >= 95%% of the rate achieved: %s Hz\n",
		li, fmt(a, sizeof(a), 0, h->max_rate));
	fprintf(f,
		"%sguest ops ratio at 40 Hz (protected / unprotected): flat-out writer over 1k pages %s (%s / %s ops/s); rate-limited 1k-page guest %s\n",
		li, fmt(a, sizeof(a), 3, h->ops_flat),
		fmt(b, sizeof(b), 0, h->rflat ? h->rflat->ops_protected : NAN),
		fmt(c, sizeof(c), 0,
		    h->rflat ? h->rflat->ops_unprotected : NAN),
		fmt(d, sizeof(d), 3, h->ops_base));
	print_disk(f, h, li);
	print_cow(f, h, li);
}

/* ---------------------------------------------------------------- machine */

struct machine {
	char cpu[128], kernel[160], date[64];
	long nproc;
	uint64_t mem_kib;
	double load;
};

static void get_machine(struct machine *m)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];
	struct utsname u;
	time_t now = time(NULL);

	memset(m, 0, sizeof(*m));
	snprintf(m->cpu, sizeof(m->cpu), "unknown");
	while (f && fgets(line, sizeof(line), f)) {
		char *p = strchr(line, ':');

		if (!strncmp(line, "model name", 10) && p) {
			snprintf(m->cpu, sizeof(m->cpu), "%s", p + 2);
			m->cpu[strcspn(m->cpu, "\n\"\\")] = 0;
			break;
		}
	}
	if (f)
		fclose(f);
	f = fopen("/proc/meminfo", "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %" SCNu64, &m->mem_kib) == 1)
			break;
	if (f)
		fclose(f);
	if (!uname(&u))
		snprintf(m->kernel, sizeof(m->kernel), "%s %s", u.sysname,
			 u.release);
	m->nproc = sysconf(_SC_NPROCESSORS_ONLN);
	strftime(m->date, sizeof(m->date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	f = fopen("/proc/loadavg", "r");
	if (f) {
		if (fscanf(f, "%lf", &m->load) != 1)
			m->load = -1;
		fclose(f);
	}
}

/* ---------------------------------------------------------------- json */

static void json_stat(FILE *f, const char *name, const struct bench_stat *s)
{
	fprintf(f,
		"\"%s\": {\"p50\": %.0f, \"p90\": %.0f, \"p99\": %.0f, \"p999\": %.0f, \"max\": %.0f, \"mean\": %.0f, \"count\": %" PRIu64
		"}",
		name, s->p50, s->p90, s->p99, s->p999, s->max, s->mean,
		s->count);
}

static void json_num(FILE *f, double v, int prec)
{
	if (isnan(v) || v < 0)
		fprintf(f, "null");
	else
		fprintf(f, "%.*f", prec, v);
}

static int write_json(const char *path, const struct machine *m,
		      const struct headlines *h, bool quick, double wall)
{
	FILE *f = fopen(path, "w");
	unsigned i;
	int p;

	if (!f)
		return -errno;
	fprintf(f,
		"{\"machine\": {\"cpu\": \"%s\", \"nproc\": %ld, \"mem_mib\": %" PRIu64
		", \"kernel\": \"%s\", \"date\": \"%s\", \"loadavg_start\": %.2f, \"quick\": %s, \"wall_s\": %.1f, \"link_emulation_note\": \"%s\"},\n",
		m->cpu, m->nproc, m->mem_kib / 1024, m->kernel, m->date,
		m->load, quick ? "true" : "false", wall,
		env.netns_ok ? "tbf in network namespaces" : env.netns_err);
	fprintf(f, " \"headlines\": {\"pause_p99_over_scattered_bound_1k\": ");
	json_num(f, h->bound_1k, 3);
	fprintf(f, ", \"pause_p99_over_scattered_bound_10k\": ");
	json_num(f, h->bound_10k, 3);
	fprintf(f, ", \"pause_p99_over_memcpy_bound_1k\": ");
	json_num(f, h->bound_1k_mc, 3);
	fprintf(f, ", \"pause_p99_over_memcpy_bound_10k\": ");
	json_num(f, h->bound_10k_mc, 3);
	fprintf(f, ", \"staged_over_swp_pause_p99_10k_10gbit\": ");
	json_num(f, h->swp_10g, 4);
	fprintf(f, ", \"staged_over_swp_pause_p99_10k_10gbit_equal_dirty\": ");
	json_num(f, h->swp_eq, 4);
	fprintf(f, ", \"achieved_hz_10k_40hz\": ");
	json_num(f, h->r10k ? h->r10k->achieved_hz : NAN, 2);
	fprintf(f, ", \"pages_per_s_at_saturation\": ");
	json_num(f, h->sat_pages_s, 0);
	fprintf(f, ", \"max_rate_hz_1k_jitter_p99_under_1ms\": ");
	json_num(f, h->max_rate, 0);
	fprintf(f, ", \"guest_ops_ratio_40hz_flatout\": ");
	json_num(f, h->ops_flat, 4);
	fprintf(f, ", \"guest_ops_ratio_40hz_1k\": ");
	json_num(f, h->ops_base, 4);
	fprintf(f, ", \"disk_write_ratio_40hz_50mbs\": ");
	json_num(f, h->d50 ? h->d50->guest_ops_ratio : NAN, 4);
	fprintf(f, ", \"disk_write_ratio_40hz_flatout\": ");
	json_num(f, h->dmax ? h->dmax->guest_ops_ratio : NAN, 4);
	fprintf(f, ", \"pause_p99_with_over_without_disk_writes\": ");
	json_num(f,
		 h->d50 && h->dnone ? ratio(h->d50->ph[PH_PAUSE].p99,
					    h->dnone->ph[PH_PAUSE].p99) :
				      NAN,
		 3);
	fprintf(f, "},\n \"runs\": [");
	for (i = 0; i < nr_plan; i++) {
		const struct bench_res *r = &res[i];
		const struct bench_cfg *c = &r->cfg;

		fprintf(f,
			"%s\n  {\"backend\": \"sim\", \"mode\": \"%s\", \"sweep\": \"%s\", \"ok\": %s, \"error\": \"%s\", \"rate_hz\": %g, \"dirty_pages\": %" PRIu64
			", \"dirty_target\": %" PRIu64
			", \"dirty_reached\": %s, ",
			i ? "," : "", mode_name(c->mode), c->sweep,
			r->ok ? "true" : "false", r->err, c->rate_hz,
			c->dirty_target, c->dirty_target,
			bench_reached(r) ? "true" : "false");
		json_stat(f, "dirty_measured", &r->ph[PH_DIRTY]);
		fprintf(f,
			", \"flatout\": %s, \"content\": \"%s\", \"guest_mib\": %" PRIu64
			", \"link\": \"%s\", \"link_gbit\": %g, \"link_emulation\": \"%s\", \"compression\": %s, \"dirty_mech\": \"%s\", \"epochs\": %" PRIu64
			", \"missed_ticks\": %" PRIu64
			", \"tiberd_status\": {\"skipped_ticks\": %" PRIu64
			", \"missed_ticks\": %" PRIu64
			"}, \"unacked\": %" PRIu64
			", \"achieved_hz\": %.2f, \"sync_s\": %.2f, \"tls\": %s, ",
			c->flatout ? "true" : "false", c->content, c->guest_mib,
			c->link == BENCH_LINK_UNIX ? "unix" :
			c->link == BENCH_LINK_TCP  ? "tcp" :
						     "emulated",
			c->link == BENCH_LINK_EMU ? c->link_gbit : 0,
			r->link_emulation,
			c->compress && c->mode == BENCH_STAGED ? "true" :
								 "false",
			c->mech, r->epochs, r->missed_ticks,
			r->status_skipped_ticks, r->status_missed_ticks,
			r->unacked, r->achieved_hz, r->sync_s,
			c->tls ? "true" : "false");
		for (p = 0; p < PH_NR; p++) {
			char name[40];

			if (p == PH_DIRTY || p == PH_JITTER)
				continue;
			snprintf(name, sizeof(name), "%s_ns",
				 bench_phase_names[p]);
			json_stat(f, name, &r->ph[p]);
			fprintf(f, ", ");
		}
		fprintf(f,
			"\"period_jitter_ns\": {\"p99\": %.0f, \"p50\": %.0f, \"max\": %.0f}, ",
			r->ph[PH_JITTER].p99, r->ph[PH_JITTER].p50,
			r->ph[PH_JITTER].max);
		fprintf(f,
			"\"copy_bound_ns\": {\"memcpy\": %.0f, \"scattered\": %.0f, \"scattered_1thread\": %.0f, \"scattered_2threads\": %.0f, \"pages\": %" PRIu64
			"}, \"pause_p99_over_scattered_bound\": ",
			r->copy_memcpy_ns, r->copy_scattered_ns,
			r->copy_scattered_1t_ns, r->copy_scattered_2t_ns,
			r->copy_pages);
		json_num(f, ratio(r->ph[PH_PAUSE].p99, r->copy_scattered_ns),
			 3);
		fprintf(f, ", \"pause_p50_over_scattered_bound\": ");
		json_num(f, ratio(r->ph[PH_PAUSE].p50, r->copy_scattered_ns),
			 3);
		fprintf(f,
			", \"bytes\": {\"raw\": %" PRIu64 ", \"wire\": %" PRIu64
			"}, \"pages_enc\": {\"zero\": %" PRIu64
			", \"xor_lz4\": %" PRIu64 ", \"lz4\": %" PRIu64
			", \"raw\": %" PRIu64 ", \"xor_rle\": %" PRIu64
			", \"xor_mask\": %" PRIu64 "}, \"guest_ops_ratio\": ",
			r->bytes_raw, r->bytes_wire, r->pages_zero,
			r->pages_xor_lz4, r->pages_lz4, r->pages_raw,
			r->pages_xor_rle, r->pages_xor_mask);
		json_num(f, r->guest_ops_ratio, 4);
		fprintf(f, ", \"guest_ops_per_s\": {\"protected\": ");
		json_num(f, r->ops_protected, 0);
		fprintf(f, ", \"unprotected\": ");
		json_num(f, r->ops_unprotected, 0);
		fprintf(f,
			"}, \"disk_writes_per_s\": %" PRId64
			", \"loadavg\": [%.2f, %.2f], \"others_cores\": %.2f, \"wall_s\": %.1f}",
			c->disk_writes == UINT64_MAX ? -1 :
						       (int64_t)c->disk_writes,
			r->load_start, r->load_end, r->others_cores, r->wall_s);
	}
	fprintf(f, "\n ]}\n");
	return fclose(f) ? -errno : 0;
}

static int write_markdown(const char *path, const struct machine *m,
			  const struct headlines *h, bool quick, double wall)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fprintf(f,
		"<!-- SPDX-License-Identifier: MIT -->\n<!-- generated by tiber-bench%s; do not edit -->\n# tiber-bench results (%s)\n\n",
		quick ? " --quick" : "", m->date);
	fprintf(f,
		"Machine: %s, %ld CPUs, %" PRIu64
		" MiB RAM, %s; load average %.2f at start; %.0f s wall.  Link emulation: %s.\n\n",
		m->cpu, m->nproc, m->mem_kib / 1024, m->kernel, m->load, wall,
		env.netns_ok ?
			"tbf on a veth pair between two network namespaces" :
			env.netns_err);
	fprintf(f, "## Headline ratios\n\n");
	print_headlines(f, h, true);
	fprintf(f,
		"\n## Runs\n\nTimes in µs; bounds measured right after each run for the run's p50 dirty set; `p99/bound` = pause p99 / scattered-copy bound.\n\n");
	print_table(f, true);
	fprintf(f, "\n## Phases (p50 / p99 µs)\n\n");
	print_phases(f, true);
	return fclose(f) ? -errno : 0;
}

/* ---------------------------------------------------------------- main */

static const char usage[] =
	"usage: tiber-bench [--quick] [--json FILE] [--plot DIR] [--markdown FILE]\n"
	"                   [--only SWEEP,...] [--secs S] [--bin DIR] [--keep] [-v]\n"
	"Pause latency of tiberd over the simulated backend, against the copy\n"
	"bound and the send-while-paused baseline measured in the same run.\n"
	"Flags (or KEY = VALUE lines of a --config file):\n";

static const char *const sweeps[] = { "quick",	    "dirty", "rate", "ops",
				      "content",    "ram",   "link", "equal",
				      "compress",   "mech",  "tls",  "disk",
				      "saturation", "cow",   NULL };

/* --only: every name a sweep's */
static const char *check_only(const void *value)
{
	const char *p = *(const char *const *)value, *e;
	size_t i;

	for (; *p; p = *e ? e + 1 : e) {
		e = strchrnul(p, ',');
		for (i = 0; sweeps[i]; i++)
			if (strlen(sweeps[i]) == (size_t)(e - p) &&
			    !strncmp(sweeps[i], p, (size_t)(e - p)))
				break;
		if (!sweeps[i])
			return "not a list of sweeps (quick,dirty,rate,ops,"
			       "content,ram,link,equal,compress,mech,tls,disk)";
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const char *json = NULL, *plot = NULL, *md = NULL, *only = NULL;
	const char *bindir = NULL;
	char bin[512] = "", self[512];
	bool quick = false, verbose = false;
	double secs = 0, wall;
	struct headlines h;
	struct machine m;
	int64_t t0 = tb_now_ns();
	unsigned i, nok = 0;
	struct tb_opts o;
	int rc = 0;
	ssize_t n;
	const struct tb_opt table[] = {
		{ .key = "quick",
		  .type = TB_OPT_BOOL,
		  .dst = &quick,
		  .arg = "",
		  .help = "the < 60 s sweep on a 256 MiB guest" },
		{ .key = "json",
		  .type = TB_OPT_STR,
		  .dst = &json,
		  .arg = "FILE",
		  .help = "write machine, headlines and runs as JSON here" },
		{ .key = "plot",
		  .type = TB_OPT_STR,
		  .dst = &plot,
		  .arg = "DIR",
		  .help = "write gnuplot PNGs (and their .dat files) here" },
		{ .key = "markdown",
		  .type = TB_OPT_STR,
		  .dst = &md,
		  .arg = "FILE",
		  .help = "write the tables as markdown here" },
		{ .key = "only",
		  .type = TB_OPT_STR,
		  .dst = &only,
		  .arg = "SWEEP,...",
		  .help = "run only these sweeps: quick, dirty, rate, ops, content, ram, link, equal, compress, mech, tls, disk, saturation, cow",
		  .check = check_only },
		{ .key = "secs",
		  .type = TB_OPT_DOUBLE,
		  .dst = &secs,
		  .arg = "S",
		  .help = "seconds per run (default 5, --quick 1.5)",
		  .min = 0,
		  .max = 86400 },
		{ .key = "bin",
		  .type = TB_OPT_STR,
		  .dst = &bindir,
		  .arg = "DIR",
		  .help = "where tiberd, tiber-replicator and tiber-simguest are (default: this program's directory)" },
		{ .key = "keep",
		  .type = TB_OPT_BOOL,
		  .dst = &keep_tmp,
		  .arg = "",
		  .help = "keep the runs' temporary directory" },
		{ .key = "verbose",
		  .type = TB_OPT_BOOL,
		  .dst = &verbose,
		  .arg = "",
		  .help = "verbose (accepted; prints nothing more at present)",
		  .short_flag = 'v' },
	};

	tb_opts_init(&o, table, TB_ARRAY_SIZE(table));
	rc = tb_opts_parse_cli(&o, argc, argv, usage);
	if (rc) {
		if (rc < 0)
			fprintf(stderr, "tiber-bench: %s\n", o.err);
		tb_opts_free(&o);
		return rc < 0 ? 2 : 0;
	}
	if (bindir)
		snprintf(bin, sizeof(bin), "%s", bindir);
	if (!bin[0]) {
		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n <= 0) {
			perror("tiber-bench: /proc/self/exe");
			tb_opts_free(&o);
			return 1;
		}
		self[n] = 0;
		snprintf(bin, sizeof(bin), "%s", dirname(self));
	}
	make_plan(quick, only, secs);
	if (!nr_plan) {
		fprintf(stderr, "tiber-bench: nothing to run (--only %s)\n",
			only ? only : "");
		tb_opts_free(&o);
		return 2;
	}
	get_machine(&m);
	if (bench_env_init(&env, bin)) {
		perror("tiber-bench: temp dir");
		tb_opts_free(&o);
		return 1;
	}
	env.verbose = verbose;
	atexit(on_exit_cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, SIG_IGN);

	printf("tiber-bench: %u runs%s on %s, %ld CPUs, %" PRIu64
	       " MiB, %s (load %.2f)\n",
	       nr_plan, quick ? " (quick)" : "", m.cpu, m.nproc,
	       m.mem_kib / 1024, m.kernel, m.load);
	fflush(stdout);
	for (i = 0; i < nr_plan && !bench_interrupted; i++) {
		char d[256];
		double el = (double)(tb_now_ns() - t0) / 1e9;

		describe(&plan[i], d, sizeof(d));
		fprintf(stderr, "[%2u/%u %5.0fs] %s ...", i + 1, nr_plan, el,
			d);
		fflush(stderr);
		bench_run(&env, &plan[i], &res[i]);
		if (res[i].ok) {
			nok++;
			fprintf(stderr,
				" pause p50 %.0f us p99 %.0f us, dirty p50 %.0f, %.1fs, others %.2f cores\n",
				US(res[i].ph[PH_PAUSE].p50),
				US(res[i].ph[PH_PAUSE].p99),
				res[i].ph[PH_DIRTY].p50, res[i].wall_s,
				res[i].others_cores);
		} else {
			fprintf(stderr, " FAILED: %s\n", res[i].err);
		}
	}
	if (bench_interrupted) {
		fprintf(stderr, "tiber-bench: interrupted\n");
		nr_plan = i;
		rc = 130;
	}
	bench_copy_free();
	wall = (double)(tb_now_ns() - t0) / 1e9;
	compute_headlines(&h);
	printf("\nRuns (times in us; bound = scattered copy of the p50 dirty set, cache-cold, best of 1 and 2 threads; * = flat-out writer)\n");
	print_table(stdout, false);
	printf("\nPhases\n");
	print_phases(stdout, false);
	printf("\nHeadline ratios (same run, %.0f s wall, load %.2f at start)\n",
	       wall, m.load);
	print_headlines(stdout, &h, false);
	if (!env.netns_ok)
		printf("  link emulation: %s -> tiberd --link-gbit pacing\n",
		       env.netns_err);
	if (json && write_json(json, &m, &h, quick, wall)) {
		perror("tiber-bench: json");
		rc = rc ?: 1;
	}
	if (md && write_markdown(md, &m, &h, quick, wall)) {
		perror("tiber-bench: markdown");
		rc = rc ?: 1;
	}
	if (plot && bench_plot(plot, res, nr_plan)) {
		fprintf(stderr, "tiber-bench: plots failed\n");
		rc = rc ?: 1;
	}
	for (i = 0; i < nr_plan; i++)
		free(res[i].pause_ns);
	if (!rc && nok < nr_plan)
		rc = 1;
	tb_opts_free(&o);
	return rc;
}
