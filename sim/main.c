// SPDX-License-Identifier: MIT
/* tiber-simguest: command line.  See docs/sim-backend.md. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "tiber/config.h"
#include "guest.h"
#include "kv.h"

static int verify_fd(int fd, const char *what)
{
	struct tb_sim_verify_report rep;
	struct stat st;
	void *p;
	int rc;

	if (fstat(fd, &st)) {
		perror(what);
		return 2;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror(what);
		return 2;
	}
	rc = tb_sim_verify(p, (uint64_t)st.st_size, &rep);
	munmap(p, (size_t)st.st_size);
	printf("verify %s: %s pages=%" PRIu64 " writes=%" PRIu64
	       " bad_pages=%" PRIu64 " bad_lanes=%" PRIu64 "%s%s\n",
	       what, (!rc && rep.ok) ? "OK" : "INCONSISTENT", rep.pages_checked,
	       rep.total_writes, rep.bad_pages, rep.bad_lanes,
	       rep.msg[0] ? ": " : "", rep.msg);
	return (!rc && rep.ok) ? 0 : 1;
}

static const char usage[] =
	"usage: tiber-simguest [options]             run a simulated guest\n"
	"       tiber-simguest --restore --ram-fd N (--state FILE|--state-fd N) [options]\n"
	"       tiber-simguest --verify-image FILE | --verify-fd N\n"
	"       tiber-simguest --kv-client ADDR [--clients N] [--ops M] [--keys K] [--log FILE]\n"
	"       tiber-simguest --check-replies LOG --disk IMAGE\n"
	"       tiber-simguest --selftest-bench [--cycles N]\n"
	"restore: the workload parameters come from the RAM image's header;\n"
	"  --kv-listen must be given again for a kv guest.\n"
	"Flags (or KEY = VALUE lines of a --config file):\n";

static const char *const mechs[] = { "auto", "uffd", "uffd-sync", "bitmap",
				     NULL };
/* indexed by enum tb_guest_workload, tb_guest_pattern, TB_SIM_CONTENT_* */
static const char *const workloads[] = {
	[TB_GUEST_IDLE] = "idle",
	[TB_GUEST_SYNTHETIC] = "synthetic",
	[TB_GUEST_KV] = "kv",
	[TB_GUEST_MIXED] = "mixed",
	NULL,
};
static const char *const patterns[] = {
	[TB_GUEST_UNIFORM] = "uniform",
	[TB_GUEST_HOTSET] = "hotset",
	[TB_GUEST_SEQUENTIAL] = "sequential",
	NULL,
};
static const char *const contents[] = {
	[TB_SIM_CONTENT_ZERO] = "zero",
	[TB_SIM_CONTENT_TEXT] = "text",
	[TB_SIM_CONTENT_RANDOM] = "random",
	[TB_SIM_CONTENT_DELTA] = "delta",
	NULL,
};
static const char *check_uuid(const void *value)
{
	uint8_t u[16];

	return tb_uuid_parse(*(const char *const *)value, u) ?
		       "not a UUID (8-4-4-4-12 hex digits)" :
		       NULL;
}

static const struct tb_opt_word flat_out[] = { { "max", UINT64_MAX },
					       { NULL, 0 } };

static const char *whole_pages(const void *value)
{
	uint64_t u = *(const uint64_t *)value;

	return u && !(u % TB_PAGE_SIZE) ? NULL :
					  "not a non-zero multiple of 4K";
}

/* What to do besides running a guest. */
struct modes {
	const char *verify_file, *kv_addr, *log, *check_replies;
	uint64_t clients, ops, keys;
	int64_t retry_ns;
	int vfd;
	uint32_t cycles;
	bool bench;
};

static int run(const struct tb_guest_cfg *cfg, const struct modes *m)
{
	if (m->bench)
		return tb_simbench_main(m->cycles);
	if (m->verify_file) {
		int fd = open(m->verify_file, O_RDONLY | O_CLOEXEC), rc;

		if (fd < 0) {
			perror(m->verify_file);
			return 2;
		}
		rc = verify_fd(fd, m->verify_file);
		close(fd);
		return rc;
	}
	if (m->vfd >= 0)
		return verify_fd(m->vfd, "fd");
	if (m->check_replies) {
		if (!cfg->disk) {
			fprintf(stderr,
				"tiber-simguest: --check-replies needs --disk IMAGE\n");
			return 2;
		}
		return tb_kvcheck_main(m->check_replies, cfg->disk);
	}
	if (m->kv_addr)
		return tb_kvclient_main(m->kv_addr, (unsigned)m->clients,
					m->ops, m->log, m->keys, m->retry_ns);
	if (cfg->restore &&
	    (cfg->ram_fd < 0 || (cfg->state_fd < 0 && !cfg->state_file))) {
		fprintf(stderr,
			"tiber-simguest: --restore needs --ram-fd and --state or --state-fd\n");
		return 2;
	}
	if (cfg->disk_writes && !cfg->disk) {
		fprintf(stderr,
			"tiber-simguest: --disk-writes needs --disk FILE\n");
		return 2;
	}
	if ((cfg->workload == TB_GUEST_KV || cfg->workload == TB_GUEST_MIXED) &&
	    !cfg->kv_listen) {
		fprintf(stderr,
			"tiber-simguest: --workload kv needs --kv-listen\n");
		return 2;
	}
	return tb_guest_main(cfg);
}

/* The key table's targets: the command line and config file, parsed. */
static struct sim_args {
	struct tb_guest_cfg cfg;
	struct modes m;
	int mech, workload, pattern, content; /* indexes of the choices */
} args = {
	.cfg = {
		.ram_size = 256ull << 20,
		.dirty_mech = "auto",
		.workload = TB_GUEST_SYNTHETIC,
		.threads = 1,
		.content = TB_SIM_CONTENT_DELTA,
		.gate_ring = 1 << 20,
		.disk_ring = 8 << 20,
		.stats_interval_s = 5,
		.ram_fd = -1,
		.state_fd = -1,
		.ready_fd = -1,
	},
	.m = {
		.clients = 4,
		.ops = 1000,
		.keys = 16,
		.retry_ns = 2 * TB_NSEC_PER_SEC,
		.vfd = -1,
		.cycles = 2000,
	},
	.workload = TB_GUEST_SYNTHETIC,
	.pattern = TB_GUEST_UNIFORM,
	.content = TB_SIM_CONTENT_DELTA,
};

static const struct tb_opt table[] = {
	{ .key = "ram",
	  .type = TB_OPT_SIZE,
	  .dst = &args.cfg.ram_size,
	  .help = "guest RAM (64M..4G+, default 256M)" },
	{ .key = "hugepages",
	  .type = TB_OPT_BOOL,
	  .dst = &args.cfg.hugepages,
	  .arg = "",
	  .help = "back RAM with MFD_HUGETLB" },
	{ .key = "socket",
	  .type = TB_OPT_STR,
	  .dst = &args.cfg.socket,
	  .arg = "PATH",
	  .help = "control socket the daemon attaches to" },
	{ .key = "name",
	  .type = TB_OPT_STR,
	  .dst = &args.cfg.name,
	  .arg = "NAME",
	  .help = "store entry: the guest's name" },
	{ .key = "uuid",
	  .type = TB_OPT_STR,
	  .dst = &args.cfg.uuid,
	  .arg = "UUID",
	  .check = check_uuid,
	  .help = "store entry: the guest's UUID (default: made by the first tiberd that protects it)" },
	{ .key = "domid",
	  .type = TB_OPT_U32,
	  .dst = &args.cfg.domid,
	  .help = "store entry: the guest's domain id" },
	{ .key = "static_port",
	  .type = TB_OPT_INT,
	  .dst = &args.cfg.static_port,
	  .help = "dom0less: fixed suspend port, nothing in the store",
	  .min = 5,
	  .max = TB_SIM_NR_PORTS - 1 },
	{ .key = "no_suspend_cancel",
	  .type = TB_OPT_BOOL,
	  .dst = &args.cfg.no_suspend_cancel,
	  .arg = "",
	  .help = "do not advertise SUSPEND_CANCEL" },
	{ .key = "ignore_suspend",
	  .type = TB_OPT_BOOL,
	  .dst = &args.cfg.ignore_suspend,
	  .arg = "",
	  .help = "(test) never answer suspend requests" },
	{ .key = "dirty_mech",
	  .type = TB_OPT_CHOICE,
	  .dst = &args.mech,
	  .help = "dirty tracking: auto, uffd (async), uffd-sync (for "
		  "tiberd --mode cow), bitmap (default auto)",
	  .choices = mechs },
	{ .key = "workload",
	  .type = TB_OPT_CHOICE,
	  .dst = &args.workload,
	  .help = "what the guest runs (default synthetic)",
	  .choices = workloads },
	{ .key = "dirty_rate",
	  .type = TB_OPT_U64,
	  .dst = &args.cfg.dirty_rate,
	  .arg = "PAGES/S",
	  .help = "synthetic write rate, 0 = flat out (default 0)" },
	{ .key = "wss",
	  .type = TB_OPT_SIZE,
	  .dst = &args.cfg.wss,
	  .help = "synthetic working set (default all RAM)" },
	{ .key = "pattern",
	  .type = TB_OPT_CHOICE,
	  .dst = &args.pattern,
	  .help = "synthetic write pattern (default uniform)",
	  .choices = patterns },
	{ .key = "content",
	  .type = TB_OPT_CHOICE,
	  .dst = &args.content,
	  .help = "what synthetic writes write (default delta)",
	  .choices = contents },
	{ .key = "threads",
	  .type = TB_OPT_U32,
	  .dst = &args.cfg.threads,
	  .help = "synthetic writer threads (default 1)",
	  .min = 1,
	  .max = TB_SIM_MAX_VCPUS - 1 },
	{ .key = "kv_listen",
	  .type = TB_OPT_STR,
	  .dst = &args.cfg.kv_listen,
	  .arg = "ADDR",
	  .help = "kv workload: listen on unix:/path or 127.0.0.1:port" },
	{ .key = "gate_ring",
	  .type = TB_OPT_SIZE,
	  .dst = &args.cfg.gate_ring,
	  .help = "output gate ring, a power of two (default 1M)",
	  .check = tb_opt_check_pow2,
	  .min = 4096,
	  .max = (double)UINT64_MAX },
	{ .key = "disk",
	  .type = TB_OPT_STR,
	  .dst = &args.cfg.disk,
	  .arg = "FILE",
	  .help = "block device: an image file (a kv workload logs every change to it before replying)" },
	{ .key = "disk_size",
	  .type = TB_OPT_SIZE,
	  .dst = &args.cfg.disk_size,
	  .help = "create or extend the image to SIZE (a multiple of 4K)",
	  .check = whole_pages },
	{ .key = "disk_ring",
	  .type = TB_OPT_SIZE,
	  .dst = &args.cfg.disk_ring,
	  .help = "disk journal ring, a power of two (default 8M)",
	  .check = tb_opt_check_pow2,
	  .min = 65536,
	  .max = (double)UINT64_MAX },
	{ .key = "disk_writes",
	  .type = TB_OPT_U64,
	  .dst = &args.cfg.disk_writes,
	  .arg = "N|max",
	  .help = "a disk writer vCPU: N random 4K writes/s, or flat out",
	  .words = flat_out,
	  .min = 1,
	  .max = (double)UINT64_MAX },
	{ .key = "stats_file",
	  .type = TB_OPT_STR,
	  .dst = &args.cfg.stats_file,
	  .arg = "FILE",
	  .help = "JSON counters at exit" },
	{ .key = "stats_interval",
	  .type = TB_OPT_U32,
	  .dst = &args.cfg.stats_interval_s,
	  .arg = "S",
	  .help = "stderr counters every S seconds (0 off, default 5)",
	  .min = 0,
	  .max = 3600 },
	{ .key = "pause_spin_us",
	  .type = TB_OPT_U32,
	  .dst = &args.cfg.pause_spin_us,
	  .arg = "US",
	  .help = "spin US microseconds when parked or awaiting the resume before sleeping (default 0: a suspended guest uses no CPU, as in Xen)",
	  .min = 0,
	  .max = 100000 },
	{ .key = "ready_fd",
	  .type = TB_OPT_INT,
	  .dst = &args.cfg.ready_fd,
	  .help = "write one byte to fd N once running",
	  .min = 0,
	  .max = 65535 },
	{ .key = "restore",
	  .type = TB_OPT_BOOL,
	  .dst = &args.cfg.restore,
	  .arg = "",
	  .help = "restore a guest from --ram-fd and --state/--state-fd" },
	{ .key = "ram_fd",
	  .type = TB_OPT_INT,
	  .dst = &args.cfg.ram_fd,
	  .help = "restore: the RAM image (memfd)",
	  .min = 0,
	  .max = 65535 },
	{ .key = "state",
	  .type = TB_OPT_STR,
	  .dst = &args.cfg.state_file,
	  .arg = "FILE",
	  .help = "restore: the device state" },
	{ .key = "state_fd",
	  .type = TB_OPT_INT,
	  .dst = &args.cfg.state_fd,
	  .help = "restore: the device state from this fd",
	  .min = 0,
	  .max = 65535 },
	{ .key = "verify_image",
	  .type = TB_OPT_STR,
	  .dst = &args.m.verify_file,
	  .arg = "FILE",
	  .help = "check a RAM image's consistency and exit (0 OK, 1 not)" },
	{ .key = "verify_fd",
	  .type = TB_OPT_INT,
	  .dst = &args.m.vfd,
	  .help = "the same for the RAM image open on fd N",
	  .min = 0,
	  .max = 65535 },
	{ .key = "kv_client",
	  .type = TB_OPT_STR,
	  .dst = &args.m.kv_addr,
	  .arg = "ADDR",
	  .help = "run KV clients against a kv guest and exit" },
	{ .key = "clients",
	  .type = TB_OPT_U64,
	  .dst = &args.m.clients,
	  .help = "kv client: connections (default 4)",
	  .min = 1,
	  .max = 256 },
	{ .key = "ops",
	  .type = TB_OPT_U64,
	  .dst = &args.m.ops,
	  .help = "kv client: operations per connection (default 1000)" },
	{ .key = "keys",
	  .type = TB_OPT_U64,
	  .dst = &args.m.keys,
	  .help = "kv client: keys per connection (default 16)",
	  .min = 1,
	  .max = (double)UINT64_MAX },
	{ .key = "log",
	  .type = TB_OPT_STR,
	  .dst = &args.m.log,
	  .arg = "FILE",
	  .help = "kv client: log every acknowledged write here" },
	{ .key = "retry",
	  .type = TB_OPT_DURATION,
	  .dst = &args.m.retry_ns,
	  .help = "kv client: keep reconnecting this long (default 2s)" },
	{ .key = "check_replies",
	  .type = TB_OPT_STR,
	  .dst = &args.m.check_replies,
	  .arg = "LOG",
	  .help = "check a kv client's LOG against the --disk image and exit" },
	{ .key = "selftest_bench",
	  .type = TB_OPT_BOOL,
	  .dst = &args.m.bench,
	  .arg = "",
	  .help = "measure the sim backend's primitives and exit" },
	{ .key = "cycles",
	  .type = TB_OPT_U32,
	  .dst = &args.m.cycles,
	  .help = "selftest-bench: suspend cycles (default 2000)",
	  .min = 10,
	  .max = UINT32_MAX },
};

int main(int argc, char **argv)
{
	struct tb_opts o;
	int rc;

	tb_opts_init(&o, table, TB_ARRAY_SIZE(table));
	rc = tb_opts_parse_cli(&o, argc, argv, usage);
	if (rc) {
		if (rc < 0)
			fprintf(stderr, "tiber-simguest: %s\n", o.err);
		tb_opts_free(&o);
		return rc < 0 ? 2 : 0;
	}
	args.cfg.dirty_mech = mechs[args.mech];
	args.cfg.workload = (unsigned)args.workload;
	args.cfg.pattern = (unsigned)args.pattern;
	args.cfg.content = (unsigned)args.content;
	rc = run(&args.cfg, &args.m);
	tb_opts_free(&o);
	return rc;
}
