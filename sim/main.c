// SPDX-License-Identifier: MIT
/* tiber-simguest: command line.  See docs/sim-backend.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "guest.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tiber-simguest [options]             run a simulated guest\n"
		"       tiber-simguest --restore --ram-fd N (--state FILE|--state-fd N) [options]\n"
		"       tiber-simguest --verify-image FILE | --verify-fd N\n"
		"       tiber-simguest --kv-client ADDR [--clients N] [--ops M] [--keys K] [--log FILE]\n"
		"       tiber-simguest --check-replies LOG --disk IMAGE\n"
		"       tiber-simguest --selftest-bench [--ram SIZE] [--cycles N]\n"
		"options:\n"
		"  --ram SIZE               guest RAM (64M..4G+, default 256M)\n"
		"  --hugepages              back RAM with MFD_HUGETLB\n"
		"  --socket PATH            control socket the daemon attaches to\n"
		"  --name NAME --domid N    store entries\n"
		"  --static-port N          dom0less: fixed suspend port, nothing in the store\n"
		"  --no-suspend-cancel      do not advertise SUSPEND_CANCEL\n"
		"  --ignore-suspend         (test) never answer suspend requests\n"
		"  --dirty-mech auto|uffd|bitmap\n"
		"  --workload idle|synthetic|kv|mixed\n"
		"  --dirty-rate PAGES/S     synthetic write rate, 0 = flat out (default 0)\n"
		"  --wss SIZE               synthetic working set (default all RAM)\n"
		"  --pattern uniform|hotset|sequential\n"
		"  --content zero|text|random|delta\n"
		"  --threads N              synthetic writer threads (default 1)\n"
		"  --kv-listen ADDR         unix:/path or 127.0.0.1:port\n"
		"  --gate-ring SIZE         output gate ring (default 1M)\n"
		"  --disk FILE              block device: an image file (a kv workload logs\n"
		"                           every change to it before replying)\n"
		"  --disk-size SIZE         create or extend the image to SIZE\n"
		"  --disk-ring SIZE         disk journal ring (default 8M)\n"
		"  --disk-writes N|max      a disk writer vCPU: N random 4K writes/s, or flat out\n"
		"  --stats-file FILE        JSON counters at exit\n"
		"  --stats-interval S       stderr counters every S seconds (0 off, default 5)\n"
		"  --ready-fd N             write one byte to fd N once running\n"
		"restore: the workload parameters come from the RAM image's header;\n"
		"  --kv-listen must be given again for a kv guest.\n");
}

enum {
	O_RAM = 256,
	O_HUGE,
	O_SOCKET,
	O_NAME,
	O_DOMID,
	O_STATIC,
	O_NOSC,
	O_IGNORE,
	O_MECH,
	O_WORKLOAD,
	O_RATE,
	O_WSS,
	O_PATTERN,
	O_CONTENT,
	O_THREADS,
	O_KVLISTEN,
	O_RING,
	O_STATSF,
	O_STATSI,
	O_RESTORE,
	O_RAMFD,
	O_STATE,
	O_STATEFD,
	O_VERIFY,
	O_VERIFYFD,
	O_KVCLIENT,
	O_CLIENTS,
	O_OPS,
	O_KEYS,
	O_LOG,
	O_BENCH,
	O_HELP,
	O_RETRY,
	O_READY,
	O_DISK,
	O_DISKSIZE,
	O_DISKRING,
	O_CHECKREPLIES,
	O_DISKWRITES,
};

static const struct option opts[] = {
	{ "ram", 1, 0, O_RAM },
	{ "hugepages", 0, 0, O_HUGE },
	{ "socket", 1, 0, O_SOCKET },
	{ "name", 1, 0, O_NAME },
	{ "domid", 1, 0, O_DOMID },
	{ "static-port", 1, 0, O_STATIC },
	{ "no-suspend-cancel", 0, 0, O_NOSC },
	{ "ignore-suspend", 0, 0, O_IGNORE },
	{ "dirty-mech", 1, 0, O_MECH },
	{ "workload", 1, 0, O_WORKLOAD },
	{ "dirty-rate", 1, 0, O_RATE },
	{ "wss", 1, 0, O_WSS },
	{ "pattern", 1, 0, O_PATTERN },
	{ "content", 1, 0, O_CONTENT },
	{ "threads", 1, 0, O_THREADS },
	{ "kv-listen", 1, 0, O_KVLISTEN },
	{ "gate-ring", 1, 0, O_RING },
	{ "stats-file", 1, 0, O_STATSF },
	{ "stats-interval", 1, 0, O_STATSI },
	{ "restore", 0, 0, O_RESTORE },
	{ "ram-fd", 1, 0, O_RAMFD },
	{ "state", 1, 0, O_STATE },
	{ "state-fd", 1, 0, O_STATEFD },
	{ "verify-image", 1, 0, O_VERIFY },
	{ "verify-fd", 1, 0, O_VERIFYFD },
	{ "kv-client", 1, 0, O_KVCLIENT },
	{ "clients", 1, 0, O_CLIENTS },
	{ "ops", 1, 0, O_OPS },
	{ "keys", 1, 0, O_KEYS },
	{ "log", 1, 0, O_LOG },
	{ "retry", 1, 0, O_RETRY },
	{ "selftest-bench", 0, 0, O_BENCH },
	{ "ready-fd", 1, 0, O_READY },
	{ "disk", 1, 0, O_DISK },
	{ "disk-size", 1, 0, O_DISKSIZE },
	{ "disk-ring", 1, 0, O_DISKRING },
	{ "check-replies", 1, 0, O_CHECKREPLIES },
	{ "disk-writes", 1, 0, O_DISKWRITES },
	{ "help", 0, 0, O_HELP },
	{ 0, 0, 0, 0 },
};

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

static int bad(const char *opt, const char *v)
{
	fprintf(stderr, "tiber-simguest: bad value for --%s: %s\n", opt, v);
	return 2;
}

int main(int argc, char **argv)
{
	struct tb_guest_cfg cfg = {
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
	};
	const char *verify_file = NULL, *kv_addr = NULL, *log = NULL;
	const char *check_replies = NULL;
	uint64_t u, clients = 4, ops = 1000, keys = 16;
	int64_t retry_ns = 2 * TB_NSEC_PER_SEC;
	int c, vfd = -1;
	bool bench = false;

	for (c = 1; c < argc; c++)
		if (!strcmp(argv[c], "--selftest-bench"))
			return tb_simbench_main(argc, argv);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		const char *name =
			c >= O_RAM && c <= O_RETRY ? opts[c - O_RAM].name : "?";

		switch (c) {
		case O_RAM:
			if (tb_parse_size(optarg, &cfg.ram_size))
				return bad(name, optarg);
			break;
		case O_HUGE:
			cfg.hugepages = true;
			break;
		case O_SOCKET:
			cfg.socket = optarg;
			break;
		case O_NAME:
			cfg.name = optarg;
			break;
		case O_DOMID:
			if (tb_parse_u64(optarg, &u) || u > UINT32_MAX)
				return bad(name, optarg);
			cfg.domid = (uint32_t)u;
			break;
		case O_STATIC:
			if (tb_parse_u64(optarg, &u) || u < 1 ||
			    u >= TB_SIM_NR_PORTS || (u > 0 && u < 5))
				return bad(name, optarg);
			cfg.static_port = (int)u;
			break;
		case O_NOSC:
			cfg.no_suspend_cancel = true;
			break;
		case O_IGNORE:
			cfg.ignore_suspend = true;
			break;
		case O_MECH:
			if (strcmp(optarg, "auto") && strcmp(optarg, "uffd") &&
			    strcmp(optarg, "bitmap"))
				return bad(name, optarg);
			cfg.dirty_mech = optarg;
			break;
		case O_WORKLOAD:
			if (!strcmp(optarg, "idle"))
				cfg.workload = TB_GUEST_IDLE;
			else if (!strcmp(optarg, "synthetic"))
				cfg.workload = TB_GUEST_SYNTHETIC;
			else if (!strcmp(optarg, "kv"))
				cfg.workload = TB_GUEST_KV;
			else if (!strcmp(optarg, "mixed"))
				cfg.workload = TB_GUEST_MIXED;
			else
				return bad(name, optarg);
			break;
		case O_RATE:
			if (tb_parse_u64(optarg, &cfg.dirty_rate))
				return bad(name, optarg);
			break;
		case O_WSS:
			if (tb_parse_size(optarg, &cfg.wss))
				return bad(name, optarg);
			break;
		case O_PATTERN:
			if (!strcmp(optarg, "uniform"))
				cfg.pattern = TB_GUEST_UNIFORM;
			else if (!strcmp(optarg, "hotset"))
				cfg.pattern = TB_GUEST_HOTSET;
			else if (!strcmp(optarg, "sequential"))
				cfg.pattern = TB_GUEST_SEQUENTIAL;
			else
				return bad(name, optarg);
			break;
		case O_CONTENT:
			if (tb_sim_content_parse(optarg, &cfg.content))
				return bad(name, optarg);
			break;
		case O_THREADS:
			if (tb_parse_u64(optarg, &u) || u < 1 ||
			    u > TB_SIM_MAX_VCPUS - 1)
				return bad(name, optarg);
			cfg.threads = (unsigned)u;
			break;
		case O_KVLISTEN:
			cfg.kv_listen = optarg;
			break;
		case O_RING:
			if (tb_parse_size(optarg, &u) || u < 4096 ||
			    (u & (u - 1)))
				return bad(name, optarg);
			cfg.gate_ring = u;
			break;
		case O_STATSF:
			cfg.stats_file = optarg;
			break;
		case O_STATSI:
			if (tb_parse_u64(optarg, &u) || u > 3600)
				return bad(name, optarg);
			cfg.stats_interval_s = (unsigned)u;
			break;
		case O_RESTORE:
			cfg.restore = true;
			break;
		case O_RAMFD:
			if (tb_parse_u64(optarg, &u) || u > 65535)
				return bad(name, optarg);
			cfg.ram_fd = (int)u;
			break;
		case O_STATE:
			cfg.state_file = optarg;
			break;
		case O_STATEFD:
			if (tb_parse_u64(optarg, &u) || u > 65535)
				return bad(name, optarg);
			cfg.state_fd = (int)u;
			break;
		case O_VERIFY:
			verify_file = optarg;
			break;
		case O_VERIFYFD:
			if (tb_parse_u64(optarg, &u) || u > 65535)
				return bad(name, optarg);
			vfd = (int)u;
			break;
		case O_KVCLIENT:
			kv_addr = optarg;
			break;
		case O_CLIENTS:
			if (tb_parse_u64(optarg, &clients) || !clients ||
			    clients > 256)
				return bad(name, optarg);
			break;
		case O_OPS:
			if (tb_parse_u64(optarg, &ops))
				return bad(name, optarg);
			break;
		case O_KEYS:
			if (tb_parse_u64(optarg, &keys) || !keys)
				return bad(name, optarg);
			break;
		case O_LOG:
			log = optarg;
			break;
		case O_RETRY:
			if (tb_parse_duration(optarg, &retry_ns))
				return bad(name, optarg);
			break;
		case O_READY:
			if (tb_parse_u64(optarg, &u) || u > 65535)
				return bad("ready-fd", optarg);
			cfg.ready_fd = (int)u;
			break;
		case O_BENCH:
			bench = true;
			break;
		case O_DISK:
			cfg.disk = optarg;
			break;
		case O_DISKSIZE:
			if (tb_parse_size(optarg, &cfg.disk_size) ||
			    !cfg.disk_size || cfg.disk_size % TB_PAGE_SIZE)
				return bad("disk-size", optarg);
			break;
		case O_DISKRING:
			if (tb_parse_size(optarg, &u) || u < 65536 ||
			    (u & (u - 1)))
				return bad("disk-ring", optarg);
			cfg.disk_ring = u;
			break;
		case O_CHECKREPLIES:
			check_replies = optarg;
			break;
		case O_DISKWRITES:
			if (!strcmp(optarg, "max"))
				cfg.disk_writes = UINT64_MAX;
			else if (tb_parse_u64(optarg, &cfg.disk_writes) ||
				 !cfg.disk_writes)
				return bad("disk-writes", optarg);
			break;
		case O_HELP:
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	(void)bench;
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (verify_file) {
		int fd = open(verify_file, O_RDONLY | O_CLOEXEC), rc;

		if (fd < 0) {
			perror(verify_file);
			return 2;
		}
		rc = verify_fd(fd, verify_file);
		close(fd);
		return rc;
	}
	if (vfd >= 0)
		return verify_fd(vfd, "fd");
	if (check_replies) {
		if (!cfg.disk) {
			fprintf(stderr,
				"tiber-simguest: --check-replies needs --disk IMAGE\n");
			return 2;
		}
		return tb_kvcheck_main(check_replies, cfg.disk);
	}
	if (kv_addr)
		return tb_kvclient_main(kv_addr, (unsigned)clients, ops, log,
					keys, retry_ns);
	if (cfg.restore &&
	    (cfg.ram_fd < 0 || (cfg.state_fd < 0 && !cfg.state_file))) {
		fprintf(stderr,
			"tiber-simguest: --restore needs --ram-fd and --state or --state-fd\n");
		return 2;
	}
	if (cfg.disk_writes && !cfg.disk) {
		fprintf(stderr,
			"tiber-simguest: --disk-writes needs --disk FILE\n");
		return 2;
	}
	if ((cfg.workload == TB_GUEST_KV || cfg.workload == TB_GUEST_MIXED) &&
	    !cfg.kv_listen) {
		fprintf(stderr,
			"tiber-simguest: --workload kv needs --kv-listen\n");
		return 2;
	}
	return tb_guest_main(&cfg);
}
