// SPDX-License-Identifier: MIT
/*
 * One benchmark run over the real programs: tiber-replicator, a
 * tiber-simguest and tiberd --backend sim, then the trace.
 *
 * Invariants:
 * - Every child runs in its own process group with PR_SET_PDEATHSIG, and
 *   is in procs[] until reaped: bench_kill_all() (exit and signal paths)
 *   kills every group, so nothing outlives the bench.
 * - Emulated links use two network namespaces this process creates
 *   (tiberd in one, the replicator in the other, a veth pair between
 *   them with tbf on tiberd's side) and deletes again; no interface of
 *   the host's own namespace is touched.
 * - Guest progress is sampled by SIGUSR1: the guest prints its counter
 *   on stderr right after reading it; the sample time is when the line
 *   appears in its log (polled every 1 ms).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "tiber/common.h"
#include "bench.h"

#define MAX_PROCS   16
#define WARM_EPOCHS 2 /* non-full epochs skipped after the full sync */

const char *const bench_phase_names[PH_NR] = {
	"handshake", "harvest", "copy",	   "resume", "pause", "period",
	"send",	     "ack",	"release", "jitter", "dirty",
};

volatile int bench_interrupted;
static volatile pid_t procs[MAX_PROCS];
static char ns_a[32], ns_b[32], veth_a[16], veth_b[16];
static double ns_gbit = -1;

void bench_kill_all(void)
{
	int i;

	for (i = 0; i < MAX_PROCS; i++)
		if (procs[i] > 0)
			kill(-procs[i], SIGKILL);
}

static void track(pid_t pid)
{
	int i;

	for (i = 0; i < MAX_PROCS; i++)
		if (procs[i] <= 0) {
			procs[i] = pid;
			return;
		}
}

static void untrack(pid_t pid)
{
	int i;

	for (i = 0; i < MAX_PROCS; i++)
		if (procs[i] == pid)
			procs[i] = 0;
}

/* Wait up to @timeout_ms for @pid; 0 and *status, or -ETIMEDOUT. */
static int reap(pid_t pid, int timeout_ms, int *status)
{
	int64_t end = tb_now_ns() + (int64_t)timeout_ms * TB_NSEC_PER_MSEC;
	int st = 0;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid || (r < 0 && errno == ECHILD)) {
			untrack(pid);
			if (status)
				*status = st;
			return 0;
		}
		if (tb_now_ns() >= end)
			return -ETIMEDOUT;
		usleep(2000);
	}
}

/* TERM the group, then KILL it if it lingers; reaps. */
static void stop_proc(pid_t pid, int grace_ms)
{
	if (pid <= 0)
		return;
	kill(-pid, SIGTERM);
	if (reap(pid, grace_ms, NULL)) {
		kill(-pid, SIGKILL);
		reap(pid, 2000, NULL);
	}
	/* the group's other members (the guest's watchdog) */
	kill(-pid, SIGKILL);
}

/*
 * Start argv[0] with stdout+stderr to @log, in its own process group, in
 * netns @ns if set; @ready_fd (if >= 0) becomes fd 3 in the child.
 */
static int spawn(char *const argv[], const char *log, const char *ns,
		 int ready_fd, pid_t *out)
{
	pid_t pid;

	/* the parent polls @log: never let it see a previous run's lines */
	unlink(log);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int fd;

		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (ns) {
			char p[96];

			snprintf(p, sizeof(p), "/run/netns/%s", ns);
			fd = open(p, O_RDONLY | O_CLOEXEC);
			if (fd < 0 || setns(fd, CLONE_NEWNET))
				_exit(126);
		}
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
		if (fd < 0)
			_exit(126);
		dup2(fd, 1);
		dup2(fd, 2);
		if (ready_fd >= 0) {
			dup2(ready_fd, 3);
		}
		fd = open("/dev/null", O_RDONLY);
		if (fd >= 0)
			dup2(fd, 0);
		execv(argv[0], argv);
		_exit(127);
	}
	setpgid(pid, pid);
	track(pid);
	*out = pid;
	return 0;
}

static int run_cmd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run_cmd(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	return rc == 0 ? 0 : -EIO;
}

static void netns_teardown(void)
{
	if (ns_a[0]) {
		run_cmd("ip netns del %s >/dev/null 2>&1", ns_a);
		run_cmd("ip netns del %s >/dev/null 2>&1", ns_b);
	}
	ns_a[0] = 0;
	ns_gbit = -1;
}

/* Two namespaces, a veth between, tbf at @gbit on tiberd's egress. */
static int netns_setup(struct bench_env *env, double gbit)
{
	uint64_t bps = (uint64_t)(gbit * 1e9);
	uint64_t burst = TB_MAX(bps / 8 / 1000, 256ull << 10); /* 1 ms */
	int rc;

	if (ns_a[0] && ns_gbit == gbit)
		return 0;
	if (!ns_a[0]) {
		snprintf(ns_a, sizeof(ns_a), "tbbench-a%d", (int)getpid());
		snprintf(ns_b, sizeof(ns_b), "tbbench-b%d", (int)getpid());
		snprintf(veth_a, sizeof(veth_a), "tbba%d",
			 (int)getpid() % 100000);
		snprintf(veth_b, sizeof(veth_b), "tbbb%d",
			 (int)getpid() % 100000);
		rc = run_cmd("ip netns add %s 2>>%s/netns.err", ns_a, env->tmp);
		rc = rc	   ?:
			     run_cmd("ip netns add %s 2>>%s/netns.err", ns_b,
				     env->tmp);
		rc = rc ?:
			     run_cmd("ip -n %s link add %s type veth peer name %s netns %s 2>>%s/netns.err",
				     ns_a, veth_a, veth_b, ns_b, env->tmp);
		rc = rc	   ?:
			     run_cmd("ip -n %s addr add 10.213.0.1/24 dev %s && ip -n %s link set %s up && ip -n %s link set lo up 2>>%s/netns.err",
				     ns_a, veth_a, ns_a, veth_a, ns_a,
				     env->tmp);
		rc = rc	   ?:
			     run_cmd("ip -n %s addr add 10.213.0.2/24 dev %s && ip -n %s link set %s up && ip -n %s link set lo up 2>>%s/netns.err",
				     ns_b, veth_b, ns_b, veth_b, ns_b,
				     env->tmp);
		if (rc) {
			snprintf(
				env->netns_err, sizeof(env->netns_err),
				"ip netns/veth setup failed (see %s/netns.err)",
				env->tmp);
			netns_teardown();
			return rc;
		}
	}
	run_cmd("tc -n %s qdisc del dev %s root >/dev/null 2>&1", ns_a, veth_a);
	rc = run_cmd("tc -n %s qdisc add dev %s root tbf rate %" PRIu64
		     "bit burst %" PRIu64 " latency 200ms 2>>%s/netns.err",
		     ns_a, veth_a, bps, burst, env->tmp);
	if (rc) {
		snprintf(env->netns_err, sizeof(env->netns_err),
			 "tc qdisc add tbf failed (see %s/netns.err)",
			 env->tmp);
		netns_teardown();
		return rc;
	}
	ns_gbit = gbit;
	return 0;
}

int bench_env_init(struct bench_env *env, const char *bin)
{
	env->bin = bin;
	snprintf(env->tmp, sizeof(env->tmp), "/tmp/tiber-bench.XXXXXX");
	if (!mkdtemp(env->tmp))
		return -errno;
	env->netns_ok = true;
	if (geteuid() != 0) {
		env->netns_ok = false;
		snprintf(env->netns_err, sizeof(env->netns_err),
			 "not root: no network namespaces");
	}
	return 0;
}

void bench_env_cleanup(struct bench_env *env)
{
	char cmd[300];

	bench_kill_all();
	netns_teardown();
	if (env->tmp[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", env->tmp);
		if (system(cmd))
			fprintf(stderr, "tiber-bench: cannot remove %s\n",
				env->tmp);
		env->tmp[0] = 0;
	}
}

/* ---------------------------------------------------------------- logs */

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0, n = 0, r;

	if (!f)
		return NULL;
	do {
		if (cap - n < 65536) {
			char *nb = realloc(buf, cap + (1 << 20));

			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap += 1 << 20;
		}
		r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
	} while (r > 0);
	fclose(f);
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

/* Wait for @needle in @path; copy the rest of its line into @out. */
static int wait_log(const char *path, const char *needle, char *out,
		    size_t outlen, int timeout_ms, pid_t pid)
{
	int64_t end = tb_now_ns() + (int64_t)timeout_ms * TB_NSEC_PER_MSEC;

	while (tb_now_ns() < end && !bench_interrupted) {
		char *s = slurp(path, NULL), *p;

		if (s && (p = strstr(s, needle))) {
			size_t i = 0;

			p += strlen(needle);
			while (p[i] && p[i] != '\n' && i + 1 < outlen) {
				out[i] = p[i];
				i++;
			}
			out[i] = 0;
			free(s);
			return 0;
		}
		free(s);
		if (pid > 0 && waitpid(pid, NULL, WNOHANG) == pid) {
			untrack(pid);
			return -ECHILD;
		}
		usleep(5000);
	}
	return -ETIMEDOUT;
}

static int count_lines(const char *path, const char *needle)
{
	char *s = slurp(path, NULL), *p;
	int n = 0;

	if (!s)
		return 0;
	for (p = s; (p = strstr(p, needle)); p++)
		n++;
	free(s);
	return n;
}

/* SIGUSR1 the guest; wait for its new progress line.  0 or -errno. */
static int sample_progress(pid_t guest, const char *log, const char *key,
			   uint64_t *ops, int64_t *t)
{
	int before = count_lines(log, key), n;
	size_t klen = strlen(key);
	int64_t end = tb_now_ns() + 2 * TB_NSEC_PER_SEC;

	kill(guest, SIGUSR1);
	while (tb_now_ns() < end) {
		usleep(1000);
		n = count_lines(log, key);
		if (n > before) {
			char *s = slurp(log, NULL), *p, *last = NULL;

			*t = tb_now_ns();
			for (p = s; p && (p = strstr(p, key)); p++)
				last = p;
			if (!last) {
				free(s);
				return -EIO;
			}
			*ops = strtoull(last + klen, NULL, 10);
			free(s);
			return 0;
		}
	}
	return -ETIMEDOUT;
}

/* Busy jiffies of the whole machine (all CPUs). */
static uint64_t machine_busy(void)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "r");
	uint64_t busy = 0;

	if (!f)
		return 0;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
		   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8)
		busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
	fclose(f);
	return busy;
}

/* CPU seconds of this process and its reaped children. */
static double own_cpu_s(void)
{
	struct rusage a, b;

	getrusage(RUSAGE_SELF, &a);
	getrusage(RUSAGE_CHILDREN, &b);
	return (double)(a.ru_utime.tv_sec + a.ru_stime.tv_sec +
			b.ru_utime.tv_sec + b.ru_stime.tv_sec) +
	       (double)(a.ru_utime.tv_usec + a.ru_stime.tv_usec +
			b.ru_utime.tv_usec + b.ru_stime.tv_usec) /
		       1e6;
}

static double loadavg1(void)
{
	FILE *f = fopen("/proc/loadavg", "r");
	double l = -1;

	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = -1;
		fclose(f);
	}
	return l;
}

/* ---------------------------------------------------------------- guest */

struct guest {
	pid_t pid;
	char sock[300], log[300], stats[300], disk[300];
};

static int start_guest(struct bench_env *env, const struct bench_cfg *c,
		       struct guest *g, const char *tag)
{
	char ram[32], rate[32], wss[32], dw[32], thr[16], *argv[40];
	uint64_t ram_pages = c->guest_mib << 8, wss_pages, dirty_rate;
	int pfd[2], argc = 0, rc;
	struct pollfd p;
	char b;

	snprintf(g->sock, sizeof(g->sock), "%s/%s-g.sock", env->tmp, tag);
	snprintf(g->log, sizeof(g->log), "%s/%s-g.log", env->tmp, tag);
	snprintf(g->stats, sizeof(g->stats), "%s/%s-g.json", env->tmp, tag);
	unlink(g->sock);
	/*
	 * Rate-limited uniform writes over a working set of 4x the target
	 * (capped at 7/8 of RAM): the measured dirty set per epoch is
	 * somewhat below the target (repeat hits), and is reported.
	 */
	if (c->flatout) {
		wss_pages = TB_MAX(c->dirty_target, 1);
		dirty_rate = 0;
	} else {
		wss_pages = TB_MIN(4 * c->dirty_target, ram_pages / 8 * 7);
		wss_pages = TB_MAX(wss_pages, 64);
		dirty_rate = (uint64_t)((double)c->dirty_target * c->rate_hz);
	}
	snprintf(ram, sizeof(ram), "%" PRIu64 "M", c->guest_mib);
	snprintf(rate, sizeof(rate), "%" PRIu64, dirty_rate);
	snprintf(wss, sizeof(wss), "%" PRIu64 "K", wss_pages * 4);
	argv[argc++] = NULL; /* filled below */
	argv[argc++] = "--socket";
	argv[argc++] = g->sock;
	argv[argc++] = "--ram";
	argv[argc++] = ram;
	argv[argc++] = "--workload";
	argv[argc++] = c->dirty_target || c->flatout ? "synthetic" : "idle";
	argv[argc++] = "--dirty-rate";
	argv[argc++] = rate;
	argv[argc++] = "--wss";
	argv[argc++] = wss;
	argv[argc++] = "--pattern";
	argv[argc++] = "uniform";
	argv[argc++] = "--content";
	argv[argc++] = (char *)c->content;
	argv[argc++] = "--dirty-mech";
	argv[argc++] = (char *)c->mech;
	if (c->threads) {
		snprintf(thr, sizeof(thr), "%u", c->threads);
		argv[argc++] = "--threads";
		argv[argc++] = thr;
	}
	argv[argc++] = "--stats-interval";
	argv[argc++] = "0";
	argv[argc++] = "--stats-file";
	argv[argc++] = g->stats;
	argv[argc++] = "--ready-fd";
	argv[argc++] = "3";
	if (c->disk_writes) {
		snprintf(g->disk, sizeof(g->disk), "%s/%s-disk.img", env->tmp,
			 tag);
		unlink(g->disk);
		if (c->disk_writes == UINT64_MAX)
			snprintf(dw, sizeof(dw), "max");
		else
			snprintf(dw, sizeof(dw), "%" PRIu64, c->disk_writes);
		argv[argc++] = "--disk";
		argv[argc++] = g->disk;
		argv[argc++] = "--disk-size";
		argv[argc++] = "256M";
		argv[argc++] = "--disk-writes";
		argv[argc++] = dw;
	}
	argv[argc] = NULL;
	{
		static char path[300];

		snprintf(path, sizeof(path), "%s/tiber-simguest", env->bin);
		argv[0] = path;
	}
	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	rc = spawn(argv, g->log, NULL, pfd[1], &g->pid);
	close(pfd[1]);
	if (rc) {
		close(pfd[0]);
		return rc;
	}
	/* RAM pre-fault takes ~0.5 s per GiB; be generous on a busy box */
	p.fd = pfd[0];
	p.events = POLLIN;
	rc = poll(&p, 1, 60000);
	if (rc == 1 && read(pfd[0], &b, 1) == 1)
		rc = 0;
	else
		rc = -ETIMEDOUT;
	close(pfd[0]);
	return rc;
}

/* ---------------------------------------------------------------- trace */

static int64_t jnum(const char *line, const char *key)
{
	char k[48];
	const char *p;

	snprintf(k, sizeof(k), "\"%s\":", key);
	p = strstr(line, k);
	if (!p)
		return 0;
	p += strlen(k);
	if (!strncmp(p, "true", 4))
		return 1;
	if (!strncmp(p, "false", 5))
		return 0;
	return strtoll(p, NULL, 10);
}

struct trec {
	int64_t t_tick, t_request, t_suspended, t_harvested, t_staged,
		t_resumed, t_encoded, t_sent, t_acked, t_released;
	int64_t dirty, raw, wire, skipped, pz, px, pl, pr, pxr, pxm;
	bool full, acked;
};

static int parse_trace(const char *path, struct trec **out, uint64_t *nr)
{
	char *s = slurp(path, NULL), *line, *save = NULL;
	struct trec *v = NULL;
	uint64_t n = 0, cap = 0;

	if (!s)
		return -ENOENT;
	for (line = strtok_r(s, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		struct trec *r;

		if (line[0] != '{')
			continue;
		if (n == cap) {
			struct trec *nv;

			cap = cap ? 2 * cap : 256;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				free(v);
				free(s);
				return -ENOMEM;
			}
			v = nv;
		}
		r = &v[n++];
		r->full = jnum(line, "full");
		r->acked = jnum(line, "acked");
		r->t_tick = jnum(line, "t_tick");
		r->t_request = jnum(line, "t_request");
		r->t_suspended = jnum(line, "t_suspended");
		r->t_harvested = jnum(line, "t_harvested");
		r->t_staged = jnum(line, "t_staged");
		r->t_resumed = jnum(line, "t_resumed");
		r->t_encoded = jnum(line, "t_encoded");
		r->t_sent = jnum(line, "t_sent");
		r->t_acked = jnum(line, "t_acked");
		r->t_released = jnum(line, "t_released");
		r->dirty = jnum(line, "dirty_pages");
		r->raw = jnum(line, "raw_bytes");
		r->wire = jnum(line, "wire_bytes");
		r->skipped = jnum(line, "skipped_ticks");
		r->pz = jnum(line, "pages_zero");
		r->px = jnum(line, "pages_xor_lz4");
		r->pxr = jnum(line, "pages_xor_rle");
		r->pxm = jnum(line, "pages_xor_mask");
		r->pl = jnum(line, "pages_lz4");
		r->pr = jnum(line, "pages_raw");
	}
	free(s);
	*out = v;
	*nr = n;
	return 0;
}

static void push(double *v, uint64_t *n, int64_t a, int64_t b)
{
	if (a > 0 && b > 0 && b >= a)
		v[(*n)++] = (double)(b - a);
}

static int analyse(struct bench_res *res, struct trec *t, uint64_t nr)
{
	double *v[PH_NR];
	uint64_t n[PH_NR] = { 0 }, first, i, k;
	int64_t period = (int64_t)(TB_NSEC_PER_SEC / res->cfg.rate_hz);
	int64_t t0;
	bool swp = res->cfg.mode == BENCH_SWP;
	int p;

	for (first = 0; first < nr && t[first].full; first++)
		;
	if (first + 1 < nr && first > 0)
		res->sync_s = (double)(t[first].t_request - t[0].t_tick) / 1e9;
	first += WARM_EPOCHS;
	if (first + 2 > nr) {
		snprintf(res->err, sizeof(res->err),
			 "only %" PRIu64 " epochs traced", nr);
		return -ENODATA;
	}
	for (p = 0; p < PH_NR; p++) {
		v[p] = calloc(nr, sizeof(double));
		if (!v[p])
			return -ENOMEM;
	}
	t0 = t[first].t_tick;
	for (i = first; i < nr; i++) {
		struct trec *r = &t[i];
		int64_t sched;

		push(v[PH_HANDSHAKE], &n[PH_HANDSHAKE], r->t_request,
		     r->t_suspended);
		push(v[PH_HARVEST], &n[PH_HARVEST], r->t_suspended,
		     r->t_harvested);
		push(v[PH_COPY], &n[PH_COPY], r->t_harvested, r->t_staged);
		push(v[PH_RESUME], &n[PH_RESUME], swp ? r->t_sent : r->t_staged,
		     r->t_resumed);
		push(v[PH_PAUSE], &n[PH_PAUSE], r->t_suspended, r->t_resumed);
		if (i > first)
			push(v[PH_PERIOD], &n[PH_PERIOD], t[i - 1].t_request,
			     r->t_request);
		push(v[PH_SEND], &n[PH_SEND], swp ? r->t_staged : r->t_resumed,
		     r->t_sent);
		if (r->acked) {
			push(v[PH_ACK], &n[PH_ACK], r->t_sent, r->t_acked);
			push(v[PH_RELEASE], &n[PH_RELEASE], r->t_acked,
			     r->t_released);
		} else {
			res->unacked++;
		}
		/* scheduled = first tick + k * period */
		k = (uint64_t)llround((double)(r->t_tick - t0) /
				      (double)period);
		sched = t0 + (int64_t)k * period;
		v[PH_JITTER][n[PH_JITTER]++] =
			(double)llabs(r->t_request - sched);
		v[PH_DIRTY][n[PH_DIRTY]++] = (double)r->dirty;
		res->missed_ticks += (uint64_t)r->skipped;
		res->bytes_raw += (uint64_t)r->raw;
		res->bytes_wire += (uint64_t)r->wire;
		res->pages_zero += (uint64_t)r->pz;
		res->pages_xor_lz4 += (uint64_t)r->px;
		res->pages_xor_rle += (uint64_t)r->pxr;
		res->pages_xor_mask += (uint64_t)r->pxm;
		res->pages_lz4 += (uint64_t)r->pl;
		res->pages_raw += (uint64_t)r->pr;
	}
	res->epochs = nr - first;
	if (t[nr - 1].t_request > t[first].t_request)
		res->achieved_hz =
			(double)(nr - 1 - first) * 1e9 /
			(double)(t[nr - 1].t_request - t[first].t_request);
	res->nr_pause = n[PH_PAUSE];
	res->pause_ns = malloc((n[PH_PAUSE] + 1) * sizeof(double));
	if (res->pause_ns)
		memcpy(res->pause_ns, v[PH_PAUSE],
		       n[PH_PAUSE] * sizeof(double));
	for (p = 0; p < PH_NR; p++) {
		bench_stat_compute(&res->ph[p], v[p], n[p]);
		free(v[p]);
	}
	return 0;
}

/* ---------------------------------------------------------------- run */

/* A fresh pre-shared key for both daemons (psktool's format). */
static int write_psk(const struct bench_env *env, char *path, size_t len)
{
	uint8_t key[32];
	FILE *f;
	int fd;

	snprintf(path, len, "%s/link.psk", env->tmp);
	if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key))
		return -EIO;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	fprintf(f, "tiber-bench:");
	for (size_t i = 0; i < sizeof(key); i++)
		fprintf(f, "%02x", key[i]);
	fprintf(f, "\n");
	return fclose(f) ? -EIO : 0;
}

/* The link's arguments: TLS with @psk, or plaintext. */
static int link_args(char **argv, int argc, const char *psk)
{
	argv[argc++] = psk ? "--tls-psk-file" : "--insecure";
	argv[argc++] = psk ? (char *)psk : "yes";
	return argc;
}

static int start_replicator(struct bench_env *env, const char *ns,
			    const char *listen, const char *psk, char *addr,
			    size_t alen, pid_t *pid)
{
	char path[300], log[300], line[256], *argv[12];
	int rc;

	snprintf(path, sizeof(path), "%s/tiber-replicator", env->bin);
	snprintf(log, sizeof(log), "%s/r.log", env->tmp);
	argv[0] = path;
	argv[1] = "--listen";
	argv[2] = (char *)listen;
	argv[3] = "--failover";
	argv[4] = "no";
	link_args(argv, 5, psk);
	argv[7] = "--disk-dir";
	argv[8] = env->tmp;
	argv[9] = NULL;
	rc = spawn(argv, log, ns, -1, pid);
	if (rc)
		return rc;
	rc = wait_log(log, "listening on ", line, sizeof(line), 10000, *pid);
	if (rc)
		return rc;
	line[strcspn(line, " ")] = 0;
	snprintf(addr, alen, "%s", line);
	return 0;
}

int bench_run(struct bench_env *env, const struct bench_cfg *c,
	      struct bench_res *res)
{
	char addr[300], path[300], trace[300], dlog[300], ctl[300];
	char rate[32], epochs[32], gbit[32], line[4096], *argv[48], psk[300];
	const char *ns_tiberd = NULL, *ns_repl = NULL, *listen;
	struct guest g = { .pid = -1 }, ug = { .pid = -1 };
	pid_t repl = -1, tiberd = -1;
	uint64_t nep, ops_a = 0, ops_b = 0, nr = 0;
	/* the guest's progress: its ops, or its disk bytes */
	const char *key = c->disk_writes ? "disk_bytes=" : "progress=";
	int64_t t_a = 0, t_b = 0, t_start = tb_now_ns(), deadline;
	bool sampled_a = false, sampled_b = false;
	struct trec *t = NULL;
	int argc = 0, rc, st = 0;

	uint64_t busy0 = machine_busy();
	double own0 = own_cpu_s();

	memset(res, 0, sizeof(*res));
	res->cfg = *c;
	res->guest_ops_ratio = res->ops_protected = res->ops_unprotected = -1;
	res->link_emulation = "none";
	res->load_start = loadavg1();
	snprintf(trace, sizeof(trace), "%s/t.jsonl", env->tmp);
	snprintf(dlog, sizeof(dlog), "%s/d.log", env->tmp);
	snprintf(ctl, sizeof(ctl), "%s/d.ctl", env->tmp);
	unlink(trace);

	/* the link */
	if (c->link == BENCH_LINK_EMU && env->netns_ok) {
		if (netns_setup(env, c->link_gbit)) {
			env->netns_ok = false;
			fprintf(stderr,
				"tiber-bench: link emulation with tbf unavailable (%s); using tiberd --link-gbit pacing\n",
				env->netns_err);
		} else {
			ns_tiberd = ns_a;
			ns_repl = ns_b;
			res->link_emulation = "tbf";
		}
	}
	if (c->link == BENCH_LINK_EMU && !ns_tiberd)
		res->link_emulation = "pacing";
	if (c->link == BENCH_LINK_UNIX) {
		snprintf(path, sizeof(path), "unix:%s/r.sock", env->tmp);
		listen = path;
	} else if (ns_repl) {
		listen = "10.213.0.2:0";
	} else {
		listen = "127.0.0.1:0";
	}
	if (c->tls && write_psk(env, psk, sizeof(psk))) {
		snprintf(res->err, sizeof(res->err), "cannot write a PSK");
		goto out;
	}
	rc = start_replicator(env, ns_repl, listen, c->tls ? psk : NULL, addr,
			      sizeof(addr), &repl);
	if (rc) {
		snprintf(res->err, sizeof(res->err), "replicator: %s",
			 strerror(-rc));
		goto out;
	}
	rc = start_guest(env, c, &g, "p");
	if (rc) {
		snprintf(res->err, sizeof(res->err), "simguest: %s",
			 strerror(-rc));
		goto out;
	}

	nep = (uint64_t)ceil(c->rate_hz * c->secs);
	nep = TB_MAX(nep, 20) + 1 + WARM_EPOCHS;
	snprintf(path, sizeof(path), "%s/tiberd", env->bin);
	snprintf(rate, sizeof(rate), "%g", c->rate_hz);
	snprintf(epochs, sizeof(epochs), "%" PRIu64, nep);
	argv[argc++] = path;
	argv[argc++] = "--backend";
	argv[argc++] = "sim";
	argv[argc++] = "--guest";
	argv[argc++] = g.sock;
	argv[argc++] = "--backup";
	argv[argc++] = addr;
	argc = link_args(argv, argc, c->tls ? psk : NULL);
	argv[argc++] = "--rate";
	argv[argc++] = rate;
	argv[argc++] = "--epochs";
	argv[argc++] = epochs;
	argv[argc++] = "--trace";
	argv[argc++] = trace;
	argv[argc++] = "--control";
	argv[argc++] = ctl;
	argv[argc++] = "--mode";
	argv[argc++] = (char *)bench_mode_name(c->mode, false);
	argv[argc++] = "--dirty-mech";
	argv[argc++] = (char *)c->mech;
	/* the steady state does not depend on how the first sync went */
	argv[argc++] = "--precopy-rounds";
	argv[argc++] = "1";
	/* a slow emulated link must not count as a lost backup */
	argv[argc++] = "--lag-limit";
	argv[argc++] = "30s";
	argv[argc++] = "--heartbeat-timeout";
	argv[argc++] = "10s";
	if (!c->compress || c->mode == BENCH_SWP) {
		/* xl remus ships raw pages: the baseline never compresses */
		argv[argc++] = "--compress";
		argv[argc++] = "no";
		argv[argc++] = "--xor-delta";
		argv[argc++] = "no";
	}
	if (c->link == BENCH_LINK_EMU && !ns_tiberd) {
		snprintf(gbit, sizeof(gbit), "%g", c->link_gbit);
		argv[argc++] = "--link-gbit";
		argv[argc++] = gbit;
	}
	argv[argc] = NULL;
	rc = spawn(argv, dlog, ns_tiberd, -1, &tiberd);
	if (rc) {
		snprintf(res->err, sizeof(res->err), "tiberd: %s",
			 strerror(-rc));
		goto out;
	}
	/* generous: a GiB syncs in a few s; slow links stretch epochs */
	deadline =
		t_start +
		(int64_t)((c->deadline_s > 0 ?
				   c->deadline_s :
				   20.0 + 10.0 * (double)c->guest_mib / 1024 +
					   3 * c->secs) *
			  1e9);
	for (;;) {
		int lines;

		if (waitpid(tiberd, &st, WNOHANG) == tiberd) {
			untrack(tiberd);
			tiberd = -1;
			break;
		}
		if (bench_interrupted) {
			snprintf(res->err, sizeof(res->err), "interrupted");
			goto out;
		}
		lines = count_lines(trace, "\n");
		if (c->ops && !sampled_a && lines >= 2 + WARM_EPOCHS) {
			sampled_a = !sample_progress(g.pid, g.log, key, &ops_a,
						     &t_a);
		}
		if (c->ops && sampled_a && !sampled_b &&
		    ((uint64_t)lines >= nep - 1 || tb_now_ns() >= deadline)) {
			sampled_b = !sample_progress(g.pid, g.log, key, &ops_b,
						     &t_b);
		}
		if (tb_now_ns() >= deadline) {
			kill(tiberd, SIGTERM);
			if (reap(tiberd, 10000, &st)) {
				kill(-tiberd, SIGKILL);
				reap(tiberd, 2000, &st);
			}
			tiberd = -1;
			snprintf(res->err, sizeof(res->err),
				 "deadline: tiberd stopped early");
			break;
		}
		usleep(10000);
	}
	if (!wait_log(dlog, "final status ", line, sizeof(line), 100, -1)) {
		res->status_skipped_ticks =
			(uint64_t)jnum(line, "skipped_ticks");
		res->status_missed_ticks = (uint64_t)jnum(line, "missed_ticks");
	}
	stop_proc(g.pid, 3000);
	g.pid = -1;
	stop_proc(repl, 3000);
	repl = -1;
	if (WIFEXITED(st) && WEXITSTATUS(st) != 0 && !res->err[0])
		snprintf(res->err, sizeof(res->err), "tiberd exit %d",
			 WEXITSTATUS(st));

	rc = parse_trace(trace, &t, &nr);
	if (!rc)
		rc = analyse(res, t, nr);
	free(t);
	if (rc) {
		if (!res->err[0])
			snprintf(res->err, sizeof(res->err), "trace: %s",
				 strerror(-rc));
		goto out;
	}

	/* the same guest, unprotected, over the same window */
	if (sampled_a && sampled_b && t_b > t_a) {
		int64_t win = t_b - t_a, lag = 0;
		uint64_t ua = 0, ub = 0;
		int64_t ta = 0, tb = 0;

		res->ops_protected =
			(double)(ops_b - ops_a) * 1e9 / (double)win;
		rc = start_guest(env, c, &ug, "u");
		if (!rc) {
			/* the protected guest ran through a sync first */
			lag = (int64_t)(res->sync_s * 1e9);
			usleep((useconds_t)(TB_MIN(lag, 3 * TB_NSEC_PER_SEC) /
					    1000));
			rc = sample_progress(ug.pid, ug.log, key, &ua, &ta);
		}
		if (!rc) {
			usleep((useconds_t)(win / 1000));
			rc = sample_progress(ug.pid, ug.log, key, &ub, &tb);
		}
		stop_proc(ug.pid, 3000);
		ug.pid = -1;
		if (!rc && tb > ta) {
			res->ops_unprotected =
				(double)(ub - ua) * 1e9 / (double)(tb - ta);
			if (res->ops_unprotected > 0)
				res->guest_ops_ratio = res->ops_protected /
						       res->ops_unprotected;
		}
	}

	/* the bound, right after the run, in this process */
	res->copy_pages = (uint64_t)res->ph[PH_DIRTY].p50;
	rc = bench_copy_bound(c->guest_mib << 20, res->copy_pages, res);
	if (rc) {
		snprintf(res->err, sizeof(res->err), "copy bound: %s",
			 strerror(-rc));
		goto out;
	}
	res->ok = true;
out:
	if (tiberd > 0)
		stop_proc(tiberd, 5000);
	if (g.pid > 0)
		stop_proc(g.pid, 3000);
	if (ug.pid > 0)
		stop_proc(ug.pid, 3000);
	if (repl > 0)
		stop_proc(repl, 3000);
	res->load_end = loadavg1();
	res->wall_s = (double)(tb_now_ns() - t_start) / 1e9;
	/* cores other processes kept busy during the run (noise) */
	res->others_cores = ((double)(machine_busy() - busy0) /
				     (double)sysconf(_SC_CLK_TCK) -
			     (own_cpu_s() - own0)) /
			    res->wall_s;
	if (env->verbose || !res->ok) {
		/* keep the evidence of a failed run */
		if (!res->ok)
			fprintf(stderr,
				"tiber-bench: run failed: %s (logs: %s)\n",
				res->err, env->tmp);
	}
	return res->ok ? 0 : -EIO;
}
