// SPDX-License-Identifier: MIT
/*
 * tiber-replicator: the backup.  Accepts one primary per protected
 * domain, keeps a replica of the guest that always equals the last
 * acked epoch, answers heartbeats, and fails over when the primary is
 * lost.  This file: options, the listener and its accept loop (one
 * thread per connection, session.c), shutdown.
 *
 * Invariants (the details live in session.c and failover.c):
 * - Failover happens when the primary is lost (silent past the heartbeat
 *   timeout, or its connection broke); never after an orderly goodbye
 *   (ERROR code 0), never while another live primary holds the domain,
 *   never twice, and never without a committed epoch.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "tiber/backend.h"
#include "tiber/config.h"
#include "tiber/log.h"
#include "tiber/metrics.h"
#include "tiber/replica.h"
#include "tiber/tls.h"
#include "tiber/transport.h"
#include "tiber/ctlsock.h"
#include "replicator.h"

struct repl_opts opt = {
	.hb_interval_ns = 100 * TB_NSEC_PER_MSEC,
	.hb_timeout_ns = 1000 * TB_NSEC_PER_MSEC,
	.failover = FAILOVER_AUTO,
	.fence_timeout_ns = 30 * TB_NSEC_PER_SEC,
	.fence_retry_ns = 5 * TB_NSEC_PER_SEC,
	.reconnect_grace_ns = 10 * TB_NSEC_PER_SEC,
	.handshake_timeout_ns = 3 * TB_NSEC_PER_SEC,
	.max_handshakes = 16,
	.max_guests = 64,
};

pthread_mutex_t doms_lock = PTHREAD_MUTEX_INITIALIZER;
struct rdom doms[MAX_DOMS];
atomic_bool stopping;
atomic_int failovers;
static int stop_pipe[2] = { -1, -1 };

static void on_signal(int sig)
{
	char c = 1;

	atomic_store(&stopping, true);
	if (write(stop_pipe[1], &c, 1) < 0)
		return;
}

void repl_stop(void)
{
	on_signal(0);
}

static void reap(struct conn_ctx **list, bool all)
{
	struct conn_ctx **pp = list, *cx;

	/* cppcheck-suppress uninitvar ; *pp is the list head or a next */
	while ((cx = *pp)) {
		if (all && !atomic_load(&cx->done))
			tb_conn_shutdown(cx->conn);
		if (all || atomic_load(&cx->done)) {
			pthread_join(cx->thread, NULL);
			*pp = cx->next;
			free(cx);
		} else {
			pp = &cx->next;
		}
	}
}

static const char *const backends[] = { "sim", "xen", NULL };
/* yes/no: the boolean of earlier versions (yes = auto, no = off). */
static const char *const failover_modes[] = { "auto", "manual", "off",
					      "yes",  "no",	"unsafe-auto",
					      NULL };
static const enum failover_mode failover_of[] = {
	FAILOVER_AUTO, FAILOVER_MANUAL, FAILOVER_OFF,
	FAILOVER_AUTO, FAILOVER_OFF,	FAILOVER_UNSAFE_AUTO,
};
static const char *const levels[] = { "err", "warn", "info", "debug", NULL };

/* The key table's targets besides opt: the command line and config
 * file, parsed. */
static struct repl_args {
	const char *listen_addr, *control, *control_group;
	const char *authorize_file, *metrics_listen;
	int backend, level, fmode; /* indexes of the choices */
	struct tb_tls_cfg tls;
	bool insecure;
} args = { .level = TB_LOG_INFO };

static const struct tb_opt table[] = {
	{ .key = "listen",
	  .type = TB_OPT_STR,
	  .dst = &args.listen_addr,
	  .help = "address to listen on: HOST:PORT, [V6]:PORT or unix:/path" },
	{ .key = "backend",
	  .type = TB_OPT_CHOICE,
	  .dst = &args.backend,
	  .help = "backend used to restore guests on failover",
	  .choices = backends },
	{ .key = "heartbeat_interval",
	  .type = TB_OPT_DURATION,
	  .dst = &opt.hb_interval_ns,
	  .help = "heartbeat period (default 100ms)",
	  .min = 1,
	  .max = 60000 },
	{ .key = "heartbeat_timeout",
	  .type = TB_OPT_DURATION,
	  .dst = &opt.hb_timeout_ns,
	  .help = "primary silent this long: lost (default 1s)",
	  .min = 1,
	  .max = 600000 },
	{ .key = "failover",
	  .type = TB_OPT_CHOICE,
	  .dst = &args.fmode,
	  .help = "auto (default): restore a guest whose primary is lost once fence_cmd stopped it (without fence_cmd: as manual); manual: wait for tiberctl promote; off: never; unsafe-auto: restore without fencing (tests only: split brain)",
	  .choices = failover_modes },
	{ .key = "fence_cmd",
	  .type = TB_OPT_STR,
	  .dst = &opt.fence_cmd,
	  .help = "command that fences a lost primary (run with GUEST PEER as arguments; exit 0 = stopped)" },
	{ .key = "fence_timeout",
	  .type = TB_OPT_DURATION,
	  .dst = &opt.fence_timeout_ns,
	  .help = "fence_cmd is killed (fencing failed) after this long (default 30s)",
	  .min = 1,
	  .max = 3600000 },
	{ .key = "fence_delay",
	  .type = TB_OPT_DURATION,
	  .dst = &opt.fence_delay_ns,
	  .help = "wait this long after a primary is lost before fencing it, so a live primary that fences us wins the race (default 0)",
	  .min = 0,
	  .max = 3600000 },
	{ .key = "fence_retry",
	  .type = TB_OPT_DURATION,
	  .dst = &opt.fence_retry_ns,
	  .help = "after a failed fence_cmd, try again after this long (default 5s)",
	  .min = 1,
	  .max = 3600000 },
	{ .key = "reconnect_grace",
	  .type = TB_OPT_DURATION,
	  .dst = &opt.reconnect_grace_ns,
	  .help = "a primary that lost us and said it will reconnect is lost if not back by then (default 10s)",
	  .min = 1,
	  .max = 3600000 },
	{ .key = "control",
	  .type = TB_OPT_STR,
	  .dst = &args.control,
	  .help = "control socket for tiberctl (status, promote)" },
	{ .key = "control_group",
	  .type = TB_OPT_STR,
	  .dst = &args.control_group,
	  .help = "group of the control socket (mode 0660; default: the daemon's)" },
	{ .key = "restore_args",
	  .type = TB_OPT_STR,
	  .dst = &opt.restore_args,
	  .help = "backend-specific arguments for the restored guest" },
	{ .key = "status_file",
	  .type = TB_OPT_STR,
	  .dst = &opt.status_file,
	  .help = "append a JSON line per failover to this file" },
	{ .key = "dump_dir",
	  .type = TB_OPT_STR,
	  .dst = &opt.dump_dir,
	  .help = "write the committed image here when a primary detaches" },
	{ .key = "exit_after_failover",
	  .type = TB_OPT_BOOL,
	  .dst = &opt.exit_after_failover,
	  .help = "exit once a guest has been failed over" },
	{ .key = "log_level",
	  .type = TB_OPT_CHOICE,
	  .dst = &args.level,
	  .help = "log level",
	  .choices = levels },
	TB_TLS_OPTS(args.tls, args.insecure),
	{ .key = "authorize_file",
	  .type = TB_OPT_STR,
	  .dst = &args.authorize_file,
	  .help = "which primary (TLS identity) may protect which guest: lines 'IDENTITY GUEST|* ...' (default: every authenticated primary, any guest)" },
	{ .key = "handshake_timeout",
	  .type = TB_OPT_DURATION,
	  .dst = &opt.handshake_timeout_ns,
	  .help = "a connecting peer must finish the TLS handshake within this (default 3s)",
	  .min = 1,
	  .max = 60000 },
	{ .key = "metrics_listen",
	  .type = TB_OPT_STR,
	  .dst = &args.metrics_listen,
	  .help = "serve Prometheus metrics on HOST:PORT (numeric; default off)" },
	{ .key = "max_guest_mem",
	  .type = TB_OPT_SIZE,
	  .dst = &opt.max_guest_mem,
	  .help = "largest guest this backup holds a replica of, whatever a HELLO declares (default: this host's RAM); a grant's MAXMEM in authorize_file can only lower it" },
	{ .key = "max_guests",
	  .type = TB_OPT_U32,
	  .dst = &opt.max_guests,
	  .help = "guests with a replica here at once (default 64); a session that ends before its first commit frees its slot",
	  .min = 1,
	  .max = MAX_DOMS },
	{ .key = "disk_dir",
	  .type = TB_OPT_STR,
	  .dst = &opt.disk_dir,
	  .help = "directory for the replicas of guests' disks (GUEST.diskN.img); without it a primary whose guest has a disk is refused" },
	{ .key = "max_disk_size",
	  .type = TB_OPT_SIZE,
	  .dst = &opt.max_disk_size,
	  .help = "largest guest disk this backup keeps a copy of (default: no limit but disk_dir's free space; copies are sparse)" },
	{ .key = "disk_spool_max",
	  .type = TB_OPT_SIZE,
	  .dst = &opt.disk_spool_max,
	  .help = "most disk-write bytes one epoch may carry (spooled in disk_dir until the epoch commits; default 1G)" },
	{ .key = "max_handshakes",
	  .type = TB_OPT_U32,
	  .dst = &opt.max_handshakes,
	  .help = "connections not yet authenticated at once; more are closed at once (default 16)",
	  .min = 1,
	  .max = 4096 },
};

/*
 * Parse the command line and config file into args and opt, check
 * what the table cannot, and load the TLS credentials and the
 * authorize_file.  0: go on; 1: help was printed; -errno: o->err says
 * why.
 */
static int parse_cmdline(struct tb_opts *o, int argc, char **argv)
{
	struct stat dst;
	int rc;

	tb_opts_init(o, table, TB_ARRAY_SIZE(table));
	rc = tb_opts_parse_cli(
		o, argc, argv,
		"usage: tiber-replicator --listen HOST:PORT [--config FILE]\n\n"
		"Backup side: keep a replica of every protected guest and fail\n"
		"over when its primary is lost.  Flags and config keys:\n");
	if (rc)
		return rc;
	if (!args.listen_addr) {
		snprintf(o->err, sizeof(o->err),
			 "key 'listen': missing (HOST:PORT to listen on)");
		return -EINVAL;
	}
	if (args.insecure && args.authorize_file) {
		snprintf(
			o->err, sizeof(o->err),
			"authorize_file needs TLS (peers have no identity with insecure = yes)");
		return -EINVAL;
	}
	if (opt.disk_dir && *opt.disk_dir &&
	    (stat(opt.disk_dir, &dst) || !S_ISDIR(dst.st_mode) ||
	     access(opt.disk_dir, W_OK))) {
		snprintf(o->err, sizeof(o->err),
			 "key 'disk_dir': %s is not a writable directory",
			 opt.disk_dir);
		return -EINVAL;
	}
	rc = tb_tls_setup(&opt.tls, &args.tls, args.insecure, true, o->err,
			  sizeof(o->err));
	if (!rc && args.authorize_file)
		rc = repl_authz_load(args.authorize_file, o->err,
				     sizeof(o->err));
	return rc;
}

/* The rest of opt, from args. */
static void apply_args(void)
{
	if (!opt.max_guest_mem)
		opt.max_guest_mem = (uint64_t)sysconf(_SC_PHYS_PAGES) *
				    (uint64_t)sysconf(_SC_PAGESIZE);
	opt.failover = failover_of[args.fmode];
	if (opt.fence_cmd && !*opt.fence_cmd)
		opt.fence_cmd = NULL;
	opt.backend_name = backends[args.backend];
	opt.ops = tb_backend_find(backends[args.backend]);
}

/* Accept primaries until stopped, one thread each (repl_conn_main);
 * @conns: the threads, finished ones reaped as it goes. */
static void accept_loop(struct tb_listener *l, struct conn_ctx **conns)
{
	struct conn_ctx *cx;
	int rc;

	while (!atomic_load(&stopping)) {
		struct tb_conn *c;

		/* the accept loop turns every 200 ms: systemd's watchdog */
		sd_notify(0, "WATCHDOG=1");
		rc = tb_listener_accept(l, &c, NULL,
					tb_now_ns() + 200 * TB_NSEC_PER_MSEC);
		reap(conns, false);
		if (rc == -ETIMEDOUT || rc == -EINTR || rc == -ECANCELED)
			continue;
		if (rc) {
			tb_warn_rc(rc, "accept");
			continue;
		}
		cx = calloc(1, sizeof(*cx));
		if (!cx) {
			tb_conn_close(c);
			continue;
		}
		cx->conn = c;
		if (pthread_create(&cx->thread, NULL, repl_conn_main, cx)) {
			tb_conn_close(c);
			free(cx);
			continue;
		}
		cx->next = *conns;
		*conns = cx;
	}
}

/*
 * The steps above, and the log lines that are not a loop's: they stay
 * here, as they carry the name of the function that logs them.
 */
int main(int argc, char **argv)
{
	struct conn_ctx *conns = NULL;
	struct tb_metrics *metrics = NULL;
	struct tb_ctl *ctl = NULL;
	struct tb_listener *l;
	struct tb_opts o;
	int rc, i;

	tb_log_init("tiber-replicator", TB_LOG_INFO);
	rc = parse_cmdline(&o, argc, argv);
	if (rc) {
		if (rc < 0) {
			fprintf(stderr, "tiber-replicator: %s\n", o.err);
			tb_tls_ctx_free(opt.tls);
		}
		tb_opts_free(&o);
		return rc < 0 ? 2 : 0;
	}
	tb_log_level = args.level;
	if (args.insecure)
		tb_warn("insecure = yes: replication links are plaintext and unauthenticated: anyone who reaches this port can read guest memory, replace or roll back a replica and make this host restore it");
	else if (!args.authorize_file)
		tb_warn("no authorize_file: every authenticated primary may protect (and replace the replica of) any guest");
	apply_args();
	if (pipe(stop_pipe)) {
		tb_err_rc(-errno, "pipe");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	rc = tb_listener_open(&l, args.listen_addr);
	if (rc) {
		tb_err_rc(rc, "listen %s", args.listen_addr);
		goto out_opts;
	}
	if (args.control) {
		rc = tb_ctl_open(&ctl, args.control, args.control_group,
				 repl_control, NULL);
		if (rc) {
			tb_err_rc(rc, "control socket %s", args.control);
			goto out_listener;
		}
	}
	tb_info("listening on %s link=%s backend=%s heartbeat=%" PRId64
		"ms timeout=%" PRId64
		"ms failover=%s%s max_guests=%u max_guest_mem=%" PRIu64 "M",
		tb_listener_addr(l),
		opt.tls ? tb_tls_ctx_mode(opt.tls) : "INSECURE",
		backends[args.backend], opt.hb_interval_ns / TB_NSEC_PER_MSEC,
		opt.hb_timeout_ns / TB_NSEC_PER_MSEC,
		failover_modes[args.fmode], opt.fence_cmd ? " fencing=yes" : "",
		opt.max_guests, opt.max_guest_mem >> 20);
	if (opt.failover == FAILOVER_AUTO && !opt.fence_cmd)
		tb_warn("failover = auto without fence_cmd: a lost primary is NOT failed over automatically (no fencing, no failover); `tiberctl promote GUEST` does it once the old primary is known stopped");
	if (opt.failover == FAILOVER_UNSAFE_AUTO)
		tb_err("failover = unsafe-auto: guests are restored WITHOUT fencing their primary; two live copies (split brain) are possible; for tests only");
	if (args.metrics_listen &&
	    tb_metrics_start(&metrics, args.metrics_listen, repl_metrics, NULL))
		goto out_ctl;
	sd_notify(0, "READY=1\nSTATUS=listening on the replication port");
	accept_loop(l, &conns);
	sd_notify(0, "STOPPING=1");
	tb_metrics_stop(metrics);
	tb_ctl_close(ctl);
	reap(&conns, true);
	tb_listener_close(l);
	for (i = 0; i < MAX_DOMS; i++)
		if (doms[i].have_rep)
			tb_replica_free(&doms[i].rep);
	tb_info("stopped; failovers=%d", atomic_load(&failovers));
	tb_tls_ctx_free(opt.tls);
	repl_authz_free();
	tb_opts_free(&o);
	return 0;
out_ctl:
	tb_ctl_close(ctl);
out_listener:
	tb_listener_close(l);
out_opts:
	tb_opts_free(&o);
	return 1;
}
