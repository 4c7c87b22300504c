/* SPDX-License-Identifier: MIT */
/*
 * tiber-bench internals: one run = one tiber-replicator + one
 * tiber-simguest + one tiberd, all real programs, the trace parsed after.
 */
#ifndef TIBER_BENCH_H
#define TIBER_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum bench_link {
	BENCH_LINK_TCP = 0,  /* loopback TCP, unlimited */
	BENCH_LINK_UNIX = 1, /* AF_UNIX socket, unlimited */
	BENCH_LINK_EMU = 2,  /* link_gbit: tbf in netns, else pacing */
};

enum bench_mode {
	BENCH_STAGED = 0,
	BENCH_SWP = 1, /* send-while-paused, the xl remus baseline */
	BENCH_COW = 2, /* copy-on-write: resume before the copy */
};
/* "staged", "send-while-paused", "cow"; short: "stg", "swp", "cow" */
const char *bench_mode_name(enum bench_mode m, bool shrt);

/* What one run asks for. */
struct bench_cfg {
	const char *sweep; /* label: which sweep the run belongs to */
	enum bench_mode mode;
	double rate_hz;
	uint64_t dirty_target; /* pages per epoch (0: idle guest) */
	bool flatout;	     /* guest writes flat out over dirty_target pages */
	const char *content; /* zero|text|random|delta */
	uint64_t guest_mib;
	enum bench_link link;
	double link_gbit; /* BENCH_LINK_EMU only */
	bool compress;
	const char *mech;     /* uffd|uffd-sync|bitmap */
	unsigned threads;     /* guest vCPU threads (0: the guest's 1) */
	double secs;	      /* steady-state seconds */
	double deadline_s;    /* stop tiberd then (0: from RAM and secs) */
	bool ops;	      /* also run the guest unprotected: ops ratio */
	bool tls;	      /* TLS (a PSK) on the link; else plaintext */
	uint64_t disk_writes; /* a disk writer vCPU, 4 KiB writes/s
				 (UINT64_MAX: flat out; 0: no disk); with
				 ops, the ratio is of disk bytes/s */
};

struct bench_stat {
	uint64_t count;
	double p50, p90, p99, p999, max, mean;
};

enum bench_phase {
	PH_HANDSHAKE, /* request -> suspended */
	PH_HARVEST,   /* suspended -> harvested */
	PH_COPY,      /* harvested -> staged (copy + state) */
	PH_RESUME,    /* staged -> resumed */
	PH_PAUSE,     /* suspended -> resumed */
	PH_PERIOD,    /* request -> next request */
	PH_SEND,      /* resumed -> sent (swp: staged -> sent) */
	PH_ACK,	      /* sent -> acked */
	PH_RELEASE,   /* acked -> released */
	PH_JITTER,    /* |request - scheduled tick| */
	PH_DIRTY,     /* dirty pages per epoch */
	PH_NR,
};

extern const char *const bench_phase_names[PH_NR];

struct bench_res {
	struct bench_cfg cfg;
	bool ok;
	char err[160];
	const char *link_emulation;    /* tbf|pacing|none */
	uint64_t epochs;	       /* steady-state epochs measured */
	uint64_t missed_ticks;	       /* skipped ticks in steady state */
	uint64_t status_skipped_ticks; /* tiberd final status, whole run */
	uint64_t status_missed_ticks;
	uint64_t unacked;
	double achieved_hz;
	double sync_s; /* full sync: first tick -> 2nd request */
	struct bench_stat ph[PH_NR];
	uint64_t bytes_raw, bytes_wire; /* steady-state sums */
	uint64_t pages_zero, pages_xor_lz4, pages_lz4, pages_raw, pages_xor_rle,
		pages_xor_mask;
	double copy_memcpy_ns, copy_scattered_ns; /* min(1t, 2t) */
	double copy_scattered_1t_ns, copy_scattered_2t_ns;
	uint64_t copy_pages; /* pages the bound copied (p50 dirty) */
	double ops_protected, ops_unprotected; /* ops/s; <0: not measured */
	double guest_ops_ratio;		       /* <0: not measured */
	double load_start, load_end;	       /* /proc/loadavg 1 min */
	double others_cores;		       /* CPU used by other processes */
	double wall_s;
	double *pause_ns; /* steady-state samples, for plots */
	uint64_t nr_pause;
};

struct bench_env {
	const char *bin; /* directory of the tiber programs */
	char tmp[256];	 /* per-invocation temp directory */
	bool netns_ok;	 /* tbf link emulation available */
	char netns_err[320];
	bool verbose;
};

/* bench_run.c */
int bench_env_init(struct bench_env *env, const char *bin);
void bench_env_cleanup(struct bench_env *env);
int bench_run(struct bench_env *env, const struct bench_cfg *cfg,
	      struct bench_res *res);
void bench_kill_all(void);
extern volatile int bench_interrupted;

/* bench_copy.c: the physical bound, measured in this process */
int bench_copy_bound(uint64_t ram_bytes, uint64_t nr_pages,
		     struct bench_res *res);
void bench_copy_free(void);

/* bench_stats.c */
void bench_stat_compute(struct bench_stat *st, double *v, uint64_t n);
/* The run measured what it was meant to: its dirty pages per epoch (p50)
 * reached BENCH_REACHED of its target.  A run that missed is flagged in
 * the tables and plots and left out of every headline. */
#define BENCH_REACHED 0.8
bool bench_reached(const struct bench_res *r);

/* bench_plot.c */
int bench_plot(const char *dir, struct bench_res *runs, unsigned nr);

#endif
