// SPDX-License-Identifier: MIT
/*
 * tiberd: the primary daemon.  Protects one domain: checkpoints it at a
 * fixed rate and ships every epoch to a tiber-replicator.  SIGTERM/SIGINT
 * stop it cleanly: the guest is resumed, its output released, the backup
 * told (so it does not fail over).
 */
#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tiber/config.h"
#include "tiber/epoch.h"
#include "tiber/log.h"
#include "tiber/tls.h"
#include "tiber/transport.h"
#include "tiber/metrics.h"
#include "metrics.h"
#include "sdnotify.h"

static struct tb_engine *engine;

/* tb_engine_stop() is async-signal-safe: an atomic store and a write(2),
 * in another file, where bugprone-signal-handler does not look */
static void on_signal(int sig)
{
	if (engine)
		tb_engine_stop(engine); // NOLINT(bugprone-signal-handler)
}

static const char *const backends[] = { "sim", "xen", NULL };
static const char *const modes[] = { "auto", "evtchn", "xenstore", "pause",
				     NULL };
static const char *const policies[] = { "release", "hold", "fence", NULL };
static const char *const engine_modes[] = { "staged", "send-while-paused",
					    "cow", NULL };
static const char *const overflows[] = { "drop", "pause", NULL };
static const char *const tristate[] = { "auto", "no", "yes", NULL };
static const char *const levels[] = { "err", "warn", "info", "debug", NULL };

/* The key table's targets: the command line and config file, parsed. */
struct tiberd_args {
	struct tb_engine_cfg cfg; /* keys that set the engine's own fields */
	int backend, smode, policy, emode, scancel, overflow;
	int level, static_port;
	uint64_t out_limit, epochs;
	const char *guest, *backup, *control, *kernel, *dirty_mech;
	const char *fence_cmd, *control_group, *metrics_listen;
	int64_t fence_timeout;
	uint32_t domid, copy_threads, max_inflight, precopy, accel;
	bool compress, xor_delta, zerocopy, gate, slow, insecure;
	double link_gbit;
	struct tb_tls_cfg tls;
	char defctl[256]; /* the default control socket's path */
};

/* the defaults that are not the engine's (cfg: tb_engine_cfg_defaults) */
static struct tiberd_args args = {
	.policy = TB_LOSS_FENCE,
	.level = TB_LOG_INFO,
	.static_port = -1,
	.out_limit = 8ull << 20,
	.dirty_mech = "auto",
	.fence_timeout = 30 * TB_NSEC_PER_SEC,
	.copy_threads = 2,
	.max_inflight = 2,
	.precopy = 3,
	.accel = 1,
	.compress = true,
	.xor_delta = true,
	.gate = true,
};

static const struct tb_opt table[] = {
	{ .key = "backend",
	  .type = TB_OPT_CHOICE,
	  .dst = &args.backend,
	  .help = "hypervisor backend",
	  .choices = backends },
	{ .key = "domain",
	  .type = TB_OPT_U32,
	  .dst = &args.domid,
	  .help = "xen: domain id to protect" },
	{ .key = "guest",
	  .type = TB_OPT_STR,
	  .dst = &args.guest,
	  .help = "sim: the simguest's control socket" },
	{ .key = "backup",
	  .type = TB_OPT_STR,
	  .dst = &args.backup,
	  .help = "replicator address HOST:PORT, [V6]:PORT or unix:/path" },
	{ .key = "rate",
	  .type = TB_OPT_DOUBLE,
	  .dst = &args.cfg.rate_hz,
	  .help = "checkpoints per second (default 50)",
	  .min = 0.1,
	  .max = 10000 },
	{ .key = "trace",
	  .type = TB_OPT_STR,
	  .dst = &args.cfg.trace_path,
	  .help = "write one JSON object per epoch to this file" },
	{ .key = "epochs",
	  .type = TB_OPT_U64,
	  .dst = &args.epochs,
	  .help = "stop after this many epochs (default: run until stopped)" },
	{ .key = "suspend_mode",
	  .type = TB_OPT_CHOICE,
	  .dst = &args.smode,
	  .help = "how to ask the guest to suspend",
	  .choices = modes },
	{ .key = "static_port",
	  .type = TB_OPT_INT,
	  .dst = &args.static_port,
	  .help = "dom0less: the guest's static suspend event channel port" },
	{ .key = "suspend_timeout",
	  .type = TB_OPT_DURATION,
	  .dst = &args.cfg.suspend_timeout_ns,
	  .help = "give up an epoch if the guest has not suspended by then (default 200ms)",
	  .min = 0.01,
	  .max = 60000 },
	{ .key = "suspend_cancel",
	  .type = TB_OPT_CHOICE,
	  .dst = &args.scancel,
	  .help = "xen: guest supports SUSPEND_CANCEL (auto: kernel ELF note)",
	  .choices = tristate },
	{ .key = "kernel",
	  .type = TB_OPT_STR,
	  .dst = &args.kernel,
	  .help = "xen: the guest's kernel image (for its ELF notes)" },
	{ .key = "allow_slow_resume",
	  .type = TB_OPT_BOOL,
	  .dst = &args.slow,
	  .help = "protect a guest without SUSPEND_CANCEL with slow resume" },
	{ .key = "dirty_mech",
	  .type = TB_OPT_STR,
	  .dst = &args.dirty_mech,
	  .help = "sim: dirty tracking: auto, uffd, uffd-sync (mode cow) "
		  "or bitmap" },
	{ .key = "copy_threads",
	  .type = TB_OPT_U32,
	  .dst = &args.copy_threads,
	  .help = "threads copying pages in the pause (default 2)",
	  .min = 1,
	  .max = 16 },
	{ .key = "output_limit",
	  .type = TB_OPT_SIZE,
	  .dst = &args.out_limit,
	  .help = "xen: bytes of guest output held at most (default 8M)",
	  .min = 64 * 1024,
	  .max = 2147483647.0 },
	{ .key = "disk_image",
	  .type = TB_OPT_STR,
	  .dst = &args.cfg.dom.disk_image,
	  .help = "xen: the guest's disk image that nbdkit-tiber-filter serves (replicated with the checkpoints)" },
	{ .key = "disk_journal",
	  .type = TB_OPT_STR,
	  .dst = &args.cfg.dom.disk_journal,
	  .help = "xen: the filter's journal= file for that disk" },
	{ .key = "output_overflow",
	  .type = TB_OPT_CHOICE,
	  .dst = &args.overflow,
	  .help = "xen: at the limit, drop (default) or pause the guest",
	  .choices = overflows },
	{ .key = "heartbeat_interval",
	  .type = TB_OPT_DURATION,
	  .dst = &args.cfg.hb_interval_ns,
	  .help = "heartbeat period (default 100ms)",
	  .min = 1,
	  .max = 60000 },
	{ .key = "heartbeat_timeout",
	  .type = TB_OPT_DURATION,
	  .dst = &args.cfg.hb_timeout_ns,
	  .help = "backup silent this long: lost (default 1s)",
	  .min = 1,
	  .max = 600000 },
	{ .key = "lag_limit",
	  .type = TB_OPT_DURATION,
	  .dst = &args.cfg.lag_limit_ns,
	  .help = "epoch unacked this long: backup lost (default 3s)",
	  .min = 1,
	  .max = 600000 },
	{ .key = "reconnect_interval",
	  .type = TB_OPT_DURATION,
	  .dst = &args.cfg.reconnect_interval_ns,
	  .help = "retry period for a lost backup (default 1s)",
	  .min = 1,
	  .max = 600000 },
	{ .key = "max_inflight",
	  .type = TB_OPT_U32,
	  .dst = &args.max_inflight,
	  .help = "epochs staged but not acked before ticks are skipped (default 2)",
	  .min = 1,
	  .max = 8 },
	{ .key = "precopy_rounds",
	  .type = TB_OPT_U32,
	  .dst = &args.precopy,
	  .help = "first sync rounds while the guest runs (default 3)",
	  .min = 1,
	  .max = 100 },
	{ .key = "on_backup_loss",
	  .type = TB_OPT_CHOICE,
	  .dst = &args.policy,
	  .help = "fence (default): guest runs, output held until the backup is back, fenced or released by tiberctl; hold: also keep the guest suspended; release: release at once (unsafe unless the backup's failover is off)",
	  .choices = policies },
	{ .key = "mode",
	  .type = TB_OPT_CHOICE,
	  .dst = &args.emode,
	  .help = "staged (tiber), cow (resume before the copy; sim with "
		  "uffd-sync) or send-while-paused (xl remus baseline)",
	  .choices = engine_modes },
	{ .key = "output_gating",
	  .type = TB_OPT_BOOL,
	  .dst = &args.gate,
	  .help = "hold guest output until the backup acks (default yes)" },
	{ .key = "compress",
	  .type = TB_OPT_BOOL,
	  .dst = &args.compress,
	  .help = "lz4 (default yes)" },
	{ .key = "xor_delta",
	  .type = TB_OPT_BOOL,
	  .dst = &args.xor_delta,
	  .help = "XOR against the backup's copy before lz4 (default yes)" },
	{ .key = "lz4_accel",
	  .type = TB_OPT_U32,
	  .dst = &args.accel,
	  .help = "lz4 acceleration (default 1)",
	  .min = 1,
	  .max = 65537 },
	{ .key = "zerocopy",
	  .type = TB_OPT_BOOL,
	  .dst = &args.zerocopy,
	  .help = "use IORING_OP_SEND_ZC where the kernel has it" },
	{ .key = "link_gbit",
	  .type = TB_OPT_DOUBLE,
	  .dst = &args.link_gbit,
	  .help = "pace sends to this link speed (emulation; 0 = off)",
	  .min = 0,
	  .max = 1000 },
	{ .key = "control",
	  .type = TB_OPT_STR,
	  .dst = &args.control,
	  .help = "control socket for tiberctl (default /run/tiber/tiberd-ID.sock)" },
	{ .key = "metrics_listen",
	  .type = TB_OPT_STR,
	  .dst = &args.metrics_listen,
	  .help = "serve Prometheus metrics on HOST:PORT (numeric; default off)" },
	{ .key = "fence_cmd",
	  .type = TB_OPT_STR,
	  .dst = &args.fence_cmd,
	  .help = "command that fences the backup host (run with GUEST BACKUP as arguments; exit 0 = fenced) so held output may be released" },
	{ .key = "fence_timeout",
	  .type = TB_OPT_DURATION,
	  .dst = &args.fence_timeout,
	  .help = "fence_cmd is killed (and fencing failed) after this long (default 30s)",
	  .min = 1,
	  .max = 3600000 },
	{ .key = "control_group",
	  .type = TB_OPT_STR,
	  .dst = &args.control_group,
	  .help = "group of the control socket (mode 0660; default: the daemon's)" },
	{ .key = "log_level",
	  .type = TB_OPT_CHOICE,
	  .dst = &args.level,
	  .help = "log level",
	  .choices = levels },
	TB_TLS_OPTS(args.tls, args.insecure),
};

/* The command line (and --config) into args: 0, 1 (--help printed) or
 * -EINVAL with o->err set. */
static int parse_cmdline(struct tb_opts *o, int argc, char **argv)
{
	tb_opts_init(o, table, TB_ARRAY_SIZE(table));
	return tb_opts_parse_cli(
		o, argc, argv,
		"usage: tiberd --backend sim|xen --domain ID|--guest SOCKET --backup HOST:PORT --rate HZ [--config FILE] [--trace FILE]\n\n"
		"Protect one domain: checkpoint it RATE times a second and ship every\n"
		"epoch to tiber-replicator.  Flags and config keys (KEY = VALUE):\n");
}

/* What the key table cannot check alone: 0 or -EINVAL with o->err set. */
static int check_args(struct tb_opts *o)
{
	if (!args.backup) {
		snprintf(o->err, sizeof(o->err),
			 "key 'backup': missing (the replicator's HOST:PORT)");
		return -EINVAL;
	}
	if (tb_addr_check(args.backup)) {
		snprintf(
			o->err, sizeof(o->err),
			"key 'backup': '%s' is not HOST:PORT, [IPV6]:PORT or unix:PATH",
			args.backup);
		return -EINVAL;
	}
	if (args.backend == 0 && !args.guest) {
		snprintf(
			o->err, sizeof(o->err),
			"key 'guest': missing (sim backend: the simguest's control socket)");
		return -EINVAL;
	}
	if (args.backend == 1 && !args.domid) {
		snprintf(
			o->err, sizeof(o->err),
			"key 'domain': missing or 0 (xen backend: the domain id to protect)");
		return -EINVAL;
	}
	return 0;
}

/* The rest of the engine's configuration, from args. */
static void engine_config(struct tb_engine_cfg *cfg, struct tb_tls_ctx *tlsx)
{
	cfg->tls = tlsx;
	cfg->ops = tb_backend_find(backends[args.backend]);
	cfg->backup = args.backup;
	cfg->max_epochs = args.epochs;
	cfg->dom.guest = args.guest;
	cfg->dom.domid = args.domid;
	cfg->dom.suspend_mode = (enum tb_suspend_mode)args.smode;
	cfg->dom.static_port = args.static_port;
	cfg->dom.allow_slow_resume = args.slow;
	cfg->dom.kernel_path = args.kernel;
	cfg->dom.suspend_cancel = args.scancel == 0 ? -1 : args.scancel == 2;
	cfg->dom.dirty_mech = args.dirty_mech;
	cfg->dom.copy_threads = args.copy_threads;
	cfg->dom.output_limit = args.out_limit;
	cfg->dom.output_overflow = (enum tb_output_overflow)args.overflow;
	cfg->max_inflight = args.max_inflight;
	cfg->precopy_rounds = args.precopy;
	cfg->loss_policy = (enum tb_loss_policy)args.policy;
	cfg->mode = (enum tb_engine_mode)args.emode;
	cfg->gate_output = args.gate;
	cfg->codec.compress = args.compress;
	cfg->codec.xor_delta = args.xor_delta;
	cfg->codec.accel = (int)args.accel;
	cfg->conn.zerocopy = args.zerocopy;
	cfg->conn.rate_bps = (uint64_t)(args.link_gbit * 1e9);
	if (!args.control) {
		mkdir("/run/tiber", 0755);
		if (args.backend == 0) {
			char tmp[200];

			snprintf(tmp, sizeof(tmp), "%s", args.guest);
			snprintf(args.defctl, sizeof(args.defctl),
				 "/run/tiber/tiberd-%s.sock", basename(tmp));
		} else {
			snprintf(args.defctl, sizeof(args.defctl),
				 "/run/tiber/tiberd-%u.sock", args.domid);
		}
		args.control = args.defctl;
	}
	cfg->control_path = args.control;
	cfg->control_group = args.control_group;
	cfg->fence_cmd = args.fence_cmd && *args.fence_cmd ? args.fence_cmd :
							     NULL;
	cfg->fence_timeout_ns = args.fence_timeout;
}

/* Run the checkpoint loop until stopped, with systemd and metrics
 * told; the engine's result. */
static int run(struct tb_metrics *metrics)
{
	int rc;

	tb_sd_start(engine);
	rc = tb_engine_run(engine);
	tb_sd_stop();
	tb_metrics_stop(metrics);
	return rc;
}

/*
 * The steps above, and the log lines: they stay here, as they carry
 * the name of the function that logs them.
 */
int main(int argc, char **argv)
{
	struct tb_metrics *metrics = NULL;
	struct tb_tls_ctx *tlsx = NULL;
	struct tb_opts o;
	char st[4096];
	int rc, status = 1;

	tb_engine_cfg_defaults(&args.cfg);
	tb_log_init("tiberd", TB_LOG_INFO);
	rc = parse_cmdline(&o, argc, argv);
	if (rc == 1) {
		tb_opts_free(&o);
		return 0;
	}
	if (!rc)
		rc = check_args(&o);
	if (!rc)
		rc = tb_tls_setup(&tlsx, &args.tls, args.insecure, false, o.err,
				  sizeof(o.err));
	if (rc) {
		fprintf(stderr, "tiberd: %s\n", o.err);
		tb_opts_free(&o);
		return 2;
	}
	tb_log_level = args.level;
	if (args.insecure)
		tb_warn("insecure = yes: the link to the backup is plaintext and unauthenticated: guest memory crosses the network in the clear and anyone who can reach the backup's port can impersonate this primary");
	engine_config(&args.cfg, tlsx);
	if (args.cfg.loss_policy == TB_LOSS_RELEASE)
		tb_warn("on_backup_loss = release: output is released as soon as the backup is lost; if the backup fails over, clients lose what they saw (use only with failover = off on the backup)");

	signal(SIGPIPE, SIG_IGN);
	if (tb_engine_create(&engine, &args.cfg))
		goto out_tls;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	tb_info("protecting backend=%s guest=%s domain=%u rate=%.1fHz backup=%s link=%s mode=%s control=%s",
		backends[args.backend], args.guest ? args.guest : "-",
		args.domid, args.cfg.rate_hz, args.backup,
		tlsx ? tb_tls_ctx_mode(tlsx) : "INSECURE",
		engine_modes[args.emode], args.control);
	if (args.metrics_listen &&
	    tb_metrics_start(&metrics, args.metrics_listen, tiberd_metrics,
			     engine))
		goto out_engine;
	rc = run(metrics);
	if (!tb_engine_status_json(engine, st, sizeof(st)))
		tb_info("final status %s", st);
	status = rc ? 1 : 0;
out_engine:
	tb_engine_destroy(engine);
	engine = NULL;
out_tls:
	tb_tls_ctx_free(tlsx);
	tb_opts_free(&o);
	if (rc)
		tb_err_rc(rc, "stopped on error");
	return status;
}
