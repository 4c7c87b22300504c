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

static void on_signal(int sig)
{
	if (engine)
		tb_engine_stop(engine);
}

static const char *const backends[] = { "sim", "xen", NULL };
static const char *const modes[] = { "auto", "evtchn", "xenstore", "pause",
				     NULL };
static const char *const policies[] = { "release", "hold", "fence", NULL };
static const char *const engine_modes[] = { "staged", "send-while-paused",
					    NULL };
static const char *const overflows[] = { "drop", "pause", NULL };
static const char *const tristate[] = { "auto", "no", "yes", NULL };
static const char *const levels[] = { "err", "warn", "info", "debug", NULL };

int main(int argc, char **argv)
{
	struct tb_engine_cfg cfg;
	int backend = 0, smode = 0, policy = TB_LOSS_FENCE, emode = 0;
	int scancel = 0;
	int overflow = 0;
	uint64_t out_limit = 8ull << 20;
	int level = TB_LOG_INFO, static_port = -1, rc;
	const char *guest = NULL, *backup = NULL, *control = NULL;
	const char *kernel = NULL, *dirty_mech = "auto";
	const char *fence_cmd = NULL, *control_group = NULL;
	const char *metrics_listen = NULL;
	struct tb_metrics *metrics = NULL;
	int64_t fence_timeout = 30 * TB_NSEC_PER_SEC;
	uint32_t domid = 0, copy_threads = 2, max_inflight = 2;
	uint32_t precopy = 3, accel = 1;
	bool compress = true, xor_delta = true, zerocopy = false;
	bool gate = true, slow = false;
	double link_gbit = 0;
	uint64_t epochs = 0;
	char defctl[256];
	struct tb_tls_cfg tls = { 0 };
	struct tb_tls_ctx *tlsx = NULL;
	bool insecure = false;
	struct tb_opts o;

	tb_engine_cfg_defaults(&cfg);
	const struct tb_opt table[] = {
		{ .key = "backend",
		  .type = TB_OPT_CHOICE,
		  .dst = &backend,
		  .help = "hypervisor backend",
		  .choices = backends },
		{ .key = "domain",
		  .type = TB_OPT_U32,
		  .dst = &domid,
		  .help = "xen: domain id to protect" },
		{ .key = "guest",
		  .type = TB_OPT_STR,
		  .dst = &guest,
		  .help = "sim: the simguest's control socket" },
		{ .key = "backup",
		  .type = TB_OPT_STR,
		  .dst = &backup,
		  .help = "replicator address HOST:PORT, [V6]:PORT or unix:/path" },
		{ .key = "rate",
		  .type = TB_OPT_DOUBLE,
		  .dst = &cfg.rate_hz,
		  .help = "checkpoints per second (default 50)",
		  .min = 0.1,
		  .max = 10000 },
		{ .key = "trace",
		  .type = TB_OPT_STR,
		  .dst = &cfg.trace_path,
		  .help = "write one JSON object per epoch to this file" },
		{ .key = "epochs",
		  .type = TB_OPT_U64,
		  .dst = &epochs,
		  .help = "stop after this many epochs (default: run until stopped)" },
		{ .key = "suspend_mode",
		  .type = TB_OPT_CHOICE,
		  .dst = &smode,
		  .help = "how to ask the guest to suspend",
		  .choices = modes },
		{ .key = "static_port",
		  .type = TB_OPT_INT,
		  .dst = &static_port,
		  .help = "dom0less: the guest's static suspend event channel port" },
		{ .key = "suspend_timeout",
		  .type = TB_OPT_DURATION,
		  .dst = &cfg.suspend_timeout_ns,
		  .help = "give up an epoch if the guest has not suspended by then (default 200ms)",
		  .min = 0.01,
		  .max = 60000 },
		{ .key = "suspend_cancel",
		  .type = TB_OPT_CHOICE,
		  .dst = &scancel,
		  .help = "xen: guest supports SUSPEND_CANCEL (auto: kernel ELF note)",
		  .choices = tristate },
		{ .key = "kernel",
		  .type = TB_OPT_STR,
		  .dst = &kernel,
		  .help = "xen: the guest's kernel image (for its ELF notes)" },
		{ .key = "allow_slow_resume",
		  .type = TB_OPT_BOOL,
		  .dst = &slow,
		  .help = "protect a guest without SUSPEND_CANCEL with slow resume" },
		{ .key = "dirty_mech",
		  .type = TB_OPT_STR,
		  .dst = &dirty_mech,
		  .help = "sim: dirty tracking: auto, uffd or bitmap" },
		{ .key = "copy_threads",
		  .type = TB_OPT_U32,
		  .dst = &copy_threads,
		  .help = "threads copying pages in the pause (default 2)",
		  .min = 1,
		  .max = 16 },
		{ .key = "output_limit",
		  .type = TB_OPT_SIZE,
		  .dst = &out_limit,
		  .help = "xen: bytes of guest output held at most (default 8M)",
		  .min = 64 * 1024,
		  .max = 2147483647.0 },
		{ .key = "disk_image",
		  .type = TB_OPT_STR,
		  .dst = &cfg.dom.disk_image,
		  .help = "xen: the guest's disk image that nbdkit-tiber-filter serves (replicated with the checkpoints)" },
		{ .key = "disk_journal",
		  .type = TB_OPT_STR,
		  .dst = &cfg.dom.disk_journal,
		  .help = "xen: the filter's journal= file for that disk" },
		{ .key = "output_overflow",
		  .type = TB_OPT_CHOICE,
		  .dst = &overflow,
		  .help = "xen: at the limit, drop (default) or pause the guest",
		  .choices = overflows },
		{ .key = "heartbeat_interval",
		  .type = TB_OPT_DURATION,
		  .dst = &cfg.hb_interval_ns,
		  .help = "heartbeat period (default 100ms)",
		  .min = 1,
		  .max = 60000 },
		{ .key = "heartbeat_timeout",
		  .type = TB_OPT_DURATION,
		  .dst = &cfg.hb_timeout_ns,
		  .help = "backup silent this long: lost (default 1s)",
		  .min = 1,
		  .max = 600000 },
		{ .key = "lag_limit",
		  .type = TB_OPT_DURATION,
		  .dst = &cfg.lag_limit_ns,
		  .help = "epoch unacked this long: backup lost (default 3s)",
		  .min = 1,
		  .max = 600000 },
		{ .key = "reconnect_interval",
		  .type = TB_OPT_DURATION,
		  .dst = &cfg.reconnect_interval_ns,
		  .help = "retry period for a lost backup (default 1s)",
		  .min = 1,
		  .max = 600000 },
		{ .key = "max_inflight",
		  .type = TB_OPT_U32,
		  .dst = &max_inflight,
		  .help = "epochs staged but not acked before ticks are skipped (default 2)",
		  .min = 1,
		  .max = 8 },
		{ .key = "precopy_rounds",
		  .type = TB_OPT_U32,
		  .dst = &precopy,
		  .help = "first sync rounds while the guest runs (default 3)",
		  .min = 1,
		  .max = 100 },
		{ .key = "on_backup_loss",
		  .type = TB_OPT_CHOICE,
		  .dst = &policy,
		  .help = "fence (default): guest runs, output held until the backup is back, fenced or released by tiberctl; hold: also keep the guest suspended; release: release at once (unsafe unless the backup's failover is off)",
		  .choices = policies },
		{ .key = "mode",
		  .type = TB_OPT_CHOICE,
		  .dst = &emode,
		  .help = "staged (tiber) or send-while-paused (xl remus baseline)",
		  .choices = engine_modes },
		{ .key = "output_gating",
		  .type = TB_OPT_BOOL,
		  .dst = &gate,
		  .help = "hold guest output until the backup acks (default yes)" },
		{ .key = "compress",
		  .type = TB_OPT_BOOL,
		  .dst = &compress,
		  .help = "lz4 (default yes)" },
		{ .key = "xor_delta",
		  .type = TB_OPT_BOOL,
		  .dst = &xor_delta,
		  .help = "XOR against the backup's copy before lz4 (default yes)" },
		{ .key = "lz4_accel",
		  .type = TB_OPT_U32,
		  .dst = &accel,
		  .help = "lz4 acceleration (default 1)",
		  .min = 1,
		  .max = 65537 },
		{ .key = "zerocopy",
		  .type = TB_OPT_BOOL,
		  .dst = &zerocopy,
		  .help = "use IORING_OP_SEND_ZC where the kernel has it" },
		{ .key = "link_gbit",
		  .type = TB_OPT_DOUBLE,
		  .dst = &link_gbit,
		  .help = "pace sends to this link speed (emulation; 0 = off)",
		  .min = 0,
		  .max = 1000 },
		{ .key = "control",
		  .type = TB_OPT_STR,
		  .dst = &control,
		  .help = "control socket for tiberctl (default /run/tiber/tiberd-ID.sock)" },
		{ .key = "metrics_listen",
		  .type = TB_OPT_STR,
		  .dst = &metrics_listen,
		  .help = "serve Prometheus metrics on HOST:PORT (numeric; default off)" },
		{ .key = "fence_cmd",
		  .type = TB_OPT_STR,
		  .dst = &fence_cmd,
		  .help = "command that fences the backup host (run with GUEST BACKUP as arguments; exit 0 = fenced) so held output may be released" },
		{ .key = "fence_timeout",
		  .type = TB_OPT_DURATION,
		  .dst = &fence_timeout,
		  .help = "fence_cmd is killed (and fencing failed) after this long (default 30s)",
		  .min = 1,
		  .max = 3600000 },
		{ .key = "control_group",
		  .type = TB_OPT_STR,
		  .dst = &control_group,
		  .help = "group of the control socket (mode 0660; default: the daemon's)" },
		{ .key = "log_level",
		  .type = TB_OPT_CHOICE,
		  .dst = &level,
		  .help = "log level",
		  .choices = levels },
		TB_TLS_OPTS(tls, insecure),
	};

	tb_log_init("tiberd", TB_LOG_INFO);
	tb_opts_init(&o, table, TB_ARRAY_SIZE(table));
	rc = tb_opts_parse_cli(
		&o, argc, argv,
		"usage: tiberd --backend sim|xen --domain ID|--guest SOCKET --backup HOST:PORT --rate HZ [--config FILE] [--trace FILE]\n\n"
		"Protect one domain: checkpoint it RATE times a second and ship every\n"
		"epoch to tiber-replicator.  Flags and config keys (KEY = VALUE):\n");
	if (rc == 1) {
		tb_opts_free(&o);
		return 0;
	}
	if (!rc && !backup) {
		snprintf(o.err, sizeof(o.err),
			 "key 'backup': missing (the replicator's HOST:PORT)");
		rc = -EINVAL;
	}
	if (!rc && tb_addr_check(backup)) {
		snprintf(
			o.err, sizeof(o.err),
			"key 'backup': '%s' is not HOST:PORT, [IPV6]:PORT or unix:PATH",
			backup);
		rc = -EINVAL;
	}
	if (!rc && backend == 0 && !guest) {
		snprintf(
			o.err, sizeof(o.err),
			"key 'guest': missing (sim backend: the simguest's control socket)");
		rc = -EINVAL;
	}
	if (!rc && backend == 1 && !domid) {
		snprintf(
			o.err, sizeof(o.err),
			"key 'domain': missing or 0 (xen backend: the domain id to protect)");
		rc = -EINVAL;
	}
	if (!rc)
		rc = tb_tls_setup(&tlsx, &tls, insecure, false, o.err,
				  sizeof(o.err));
	if (rc) {
		fprintf(stderr, "tiberd: %s\n", o.err);
		tb_opts_free(&o);
		return 2;
	}
	tb_log_level = level;
	if (insecure)
		tb_warn("insecure = yes: the link to the backup is plaintext and unauthenticated: guest memory crosses the network in the clear and anyone who can reach the backup's port can impersonate this primary");
	cfg.tls = tlsx;
	cfg.ops = tb_backend_find(backends[backend]);
	cfg.backup = backup;
	cfg.max_epochs = epochs;
	cfg.dom.guest = guest;
	cfg.dom.domid = domid;
	cfg.dom.suspend_mode = (enum tb_suspend_mode)smode;
	cfg.dom.static_port = static_port;
	cfg.dom.allow_slow_resume = slow;
	cfg.dom.kernel_path = kernel;
	cfg.dom.suspend_cancel = scancel == 0 ? -1 : scancel == 2;
	cfg.dom.dirty_mech = dirty_mech;
	cfg.dom.copy_threads = copy_threads;
	cfg.dom.output_limit = out_limit;
	cfg.dom.output_overflow = (enum tb_output_overflow)overflow;
	cfg.max_inflight = max_inflight;
	cfg.precopy_rounds = precopy;
	cfg.loss_policy = (enum tb_loss_policy)policy;
	cfg.mode = (enum tb_engine_mode)emode;
	cfg.gate_output = gate;
	cfg.codec.compress = compress;
	cfg.codec.xor_delta = xor_delta;
	cfg.codec.accel = (int)accel;
	cfg.conn.zerocopy = zerocopy;
	cfg.conn.rate_bps = (uint64_t)(link_gbit * 1e9);
	if (!control) {
		mkdir("/run/tiber", 0755);
		if (backend == 0) {
			char tmp[200];

			snprintf(tmp, sizeof(tmp), "%s", guest);
			snprintf(defctl, sizeof(defctl),
				 "/run/tiber/tiberd-%s.sock", basename(tmp));
		} else {
			snprintf(defctl, sizeof(defctl),
				 "/run/tiber/tiberd-%u.sock", domid);
		}
		control = defctl;
	}
	cfg.control_path = control;
	cfg.control_group = control_group;
	cfg.fence_cmd = fence_cmd && *fence_cmd ? fence_cmd : NULL;
	cfg.fence_timeout_ns = fence_timeout;
	if (cfg.loss_policy == TB_LOSS_RELEASE)
		tb_warn("on_backup_loss = release: output is released as soon as the backup is lost; if the backup fails over, clients lose what they saw (use only with failover = off on the backup)");

	signal(SIGPIPE, SIG_IGN);
	rc = tb_engine_create(&engine, &cfg);
	if (rc) {
		tb_tls_ctx_free(tlsx);
		tb_opts_free(&o);
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	tb_info("protecting backend=%s guest=%s domain=%u rate=%.1fHz backup=%s link=%s mode=%s control=%s",
		backends[backend], guest ? guest : "-", domid, cfg.rate_hz,
		backup, tlsx ? tb_tls_ctx_mode(tlsx) : "INSECURE",
		engine_modes[emode], control);
	if (metrics_listen && tb_metrics_start(&metrics, metrics_listen,
					       tiberd_metrics, engine)) {
		tb_engine_destroy(engine);
		tb_tls_ctx_free(tlsx);
		tb_opts_free(&o);
		return 1;
	}
	tb_sd_start(engine);
	rc = tb_engine_run(engine);
	tb_sd_stop();
	tb_metrics_stop(metrics);
	{
		char st[4096];

		if (!tb_engine_status_json(engine, st, sizeof(st)))
			tb_info("final status %s", st);
	}
	tb_engine_destroy(engine);
	engine = NULL;
	tb_tls_ctx_free(tlsx);
	tb_opts_free(&o);
	if (rc) {
		tb_err_rc(rc, "stopped on error");
		return 1;
	}
	return 0;
}
