// SPDX-License-Identifier: MIT
/*
 * tiberctl: talk to running tiberd daemons over their control sockets.
 *   tiberctl [--socket PATH] status     one JSON line per daemon
 *   tiberctl recover [--slow] [--no-unpause] DOMID
 *                                       xen: undo what a killed tiberd left
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <stdbool.h>

#include "tiber/common.h"
#include "tiber/xen.h"

#define RUN_DIR "/run/tiber"

/* How long to wait for an answer (a promote restores a guest first). */
static int answer_ms = 2000;

static int query(const char *path, const char *cmd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct pollfd p;
	char buf[8192];
	ssize_t n, got = 0;
	int fd, rc = 0;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "tiberctl: socket path too long: %s\n", path);
		return 2;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "tiberctl: %s: %s (is tiberd running?)\n", path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	if (write(fd, cmd, strlen(cmd)) < 0) {
		rc = 1;
		goto out;
	}
	p.fd = fd;
	p.events = POLLIN;
	while (got < (ssize_t)sizeof(buf) - 1 && poll(&p, 1, answer_ms) == 1) {
		n = read(fd, buf + got, sizeof(buf) - 1 - (size_t)got);
		if (n <= 0)
			break;
		got += n;
	}
	if (!got) {
		fprintf(stderr, "tiberctl: %s: no answer within %d s\n", path,
			answer_ms / 1000);
		rc = 1;
		goto out;
	}
	buf[got] = 0;
	if (!strncmp(buf, "{\"error\"", strlen("{\"error\""))) {
		fputs(buf, stderr);
		rc = 1;
	} else {
		fputs(buf, stdout);
	}
out:
	close(fd);
	return rc;
}

static int status_all(void)
{
	struct dirent *de;
	char path[512];
	int n = 0, rc = 0;
	DIR *d = opendir(RUN_DIR);

	if (!d) {
		fprintf(stderr, "tiberctl: %s: %s (no tiberd running?)\n",
			RUN_DIR, strerror(errno));
		return 1;
	}
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (len < 6 || strcmp(de->d_name + len - 5, ".sock") ||
		    strncmp(de->d_name, "tiberd-", 7))
			continue;
		snprintf(path, sizeof(path), RUN_DIR "/%s", de->d_name);
		rc |= query(path, "status\n");
		n++;
	}
	closedir(d);
	if (!n) {
		fprintf(stderr, "tiberctl: no tiberd control socket in %s\n",
			RUN_DIR);
		return 1;
	}
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tiberctl [--socket PATH] status\n"
		"       tiberctl --socket PATH release|switchover|promote GUEST\n"
		"       tiberctl recover [--slow] [--no-unpause] DOMID\n\n"
		"status   state, rate, last epoch, pause p50/p99 and backup lag of\n"
		"         every tiberd (or the daemon at PATH: a tiberd, or a\n"
		"         tiber-replicator: its guests, committed epochs, ages,\n"
		"         states), one JSON line each\n"
		"release  tiberd: the backup is lost and cannot take the guest over\n"
		"         (you checked): release the held output, run unprotected\n"
		"switchover  tiberd: planned hand-over: a last epoch with the guest\n"
		"         left suspended, then the backup runs it from that epoch\n"
		"         and it is stopped here (no output lost or repeated)\n"
		"promote  tiber-replicator: start GUEST here from its committed epoch\n"
		"         (only once you know its old primary is stopped)\n"
		"recover  xen: resume a domain a killed tiberd left suspended or\n"
		"         paused, switch log-dirty off, release its event channel\n"
		"         (--slow: the guest lacks SUSPEND_CANCEL; --no-unpause: leave\n"
		"         a paused domain paused)\n");
}

int main(int argc, char **argv)
{
	const char *sock = NULL;
	bool fast = true, unpause = true;
	char report[1024] = "";
	uint64_t domid;
	int i = 1, rc;

	if (argc > 1 &&
	    (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	if (argc > 2 && !strcmp(argv[1], "--socket")) {
		sock = argv[2];
		i = 3;
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[i], "status") && i + 1 == argc)
		return sock ? query(sock, "status\n") : status_all();
	if (sock && !strcmp(argv[i], "release") && i + 1 == argc)
		return query(sock, "release\n");
	if (sock && !strcmp(argv[i], "switchover") && i + 1 == argc)
		return query(sock, "switchover\n");
	if (sock && !strcmp(argv[i], "promote") && i + 2 == argc) {
		char cmd[128];

		if (strlen(argv[i + 1]) > 32 || strpbrk(argv[i + 1], " \n")) {
			fprintf(stderr, "tiberctl: promote: bad guest name '%s'\n",
				argv[i + 1]);
			return 2;
		}
		snprintf(cmd, sizeof(cmd), "promote %s\n", argv[i + 1]);
		answer_ms = 120000;
		return query(sock, cmd);
	}
	if (!strcmp(argv[i], "recover")) {
		for (i++; i < argc && !strncmp(argv[i], "--", 2); i++) {
			if (!strcmp(argv[i], "--slow")) {
				fast = false;
			} else if (!strcmp(argv[i], "--no-unpause")) {
				unpause = false;
			} else {
				fprintf(stderr,
					"tiberctl: recover: unknown flag '%s'\n",
					argv[i]);
				return 2;
			}
		}
		if (i + 1 != argc) {
			usage(stderr);
			return 2;
		}
		i--;
		if (tb_parse_u64(argv[i + 1], &domid) || !domid ||
		    domid >= 0x7ff0) {
			fprintf(stderr,
				"tiberctl: recover: bad domain id '%s'\n",
				argv[i + 1]);
			return 2;
		}
		rc = tb_xen_recover((uint32_t)domid, fast, unpause, report,
				    sizeof(report));
		if (rc) {
			fprintf(stderr, "tiberctl: recover domain %s: %s%s%s\n",
				argv[i + 1], strerror(-rc), *report ? ": " : "",
				report);
			return 1;
		}
		printf("domain %s: %s\n", argv[i + 1],
		       *report ? report : "nothing to recover");
		return 0;
	}
	fprintf(stderr, "tiberctl: unknown command '%s'\n", argv[i]);
	usage(stderr);
	return 2;
}
