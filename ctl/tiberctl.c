// SPDX-License-Identifier: MIT
/*
 * tiberctl: talk to running tiberd daemons over their control sockets.
 *   tiberctl [--socket PATH] status [--json]   a table (or JSON)
 *   tiberctl --socket PATH release|switchover|promote GUEST
 *   tiberctl --socket PATH reprotect GUEST TIBERD-ARGS...
 *                                       protect a failed-over guest again
 *   tiberctl recover [--slow] [--no-unpause] DOMID
 *                                       xen: undo what a killed tiberd left
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
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

/* Send @cmd to the daemon at @path; its answer into @buf.  0, or 1 with
 * the reason printed (the daemon's {"error":...} answer included). */
static int ask(const char *path, const char *cmd, char *buf, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct pollfd p;
	ssize_t n, got = 0;
	int fd, rc = 0;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "tiberctl: socket path too long: %s\n", path);
		return 1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
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
	while (got < (ssize_t)len - 1 && poll(&p, 1, answer_ms) == 1) {
		n = read(fd, buf + got, len - 1 - (size_t)got);
		if (n <= 0)
			break;
		got += n;
	}
	buf[got] = 0;
	if (!got) {
		fprintf(stderr, "tiberctl: %s: no answer within %d s\n", path,
			answer_ms / 1000);
		rc = 1;
	} else if (!strncmp(buf, "{\"error\"", strlen("{\"error\""))) {
		fputs(buf, stderr);
		rc = 1;
	}
out:
	close(fd);
	return rc;
}

static int query(const char *path, const char *cmd)
{
	char buf[8192];
	int rc = ask(path, cmd, buf, sizeof(buf));

	if (!rc)
		fputs(buf, stdout);
	return rc;
}

/* The string value of "@key" in the one-level JSON object @json; "" and
 * false when it is missing or does not fit. */
static bool json_str(const char *json, const char *key, char *out, size_t len)
{
	char pat[64];
	const char *p, *e;

	out[0] = 0;
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	if (!p)
		return false;
	p += strlen(pat);
	if (*p == '"') {
		e = strchr(++p, '"');
	} else {
		e = p + strcspn(p, ",}");
	}
	if (!e || (size_t)(e - p) >= len)
		return false;
	memcpy(out, p, (size_t)(e - p));
	out[e - p] = 0;
	return true;
}

/* tiberctl --socket REPLICATOR reprotect GUEST TIBERD-ARGS...: protect
 * the guest that failed over to this host (a promote, a switchover or an
 * automatic failover) towards a new backup: ask the replicator where the
 * restored guest runs, then become the tiberd that protects it. */
static int reprotect(const char *sock, const char *guest, int argc, char **argv)
{
	char cmd[128], ans[1024], backend[16], where[160], domid[16];
	char self[PATH_MAX], tiberd[PATH_MAX + 8], *slash;
	char **av;
	ssize_t n;
	int i, k = 0;

	snprintf(cmd, sizeof(cmd), "reprotect %s\n", guest);
	if (ask(sock, cmd, ans, sizeof(ans)))
		return 1;
	if (!json_str(ans, "backend", backend, sizeof(backend)) ||
	    !json_str(ans, "guest", where, sizeof(where)) ||
	    !json_str(ans, "domid", domid, sizeof(domid))) {
		fprintf(stderr, "tiberctl: reprotect: unexpected answer: %s",
			ans);
		return 1;
	}
	/* the tiberd beside this tiberctl, else the one on PATH */
	snprintf(tiberd, sizeof(tiberd), "tiberd");
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = 0;
		slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			snprintf(tiberd, sizeof(tiberd), "%s/tiberd", self);
			if (access(tiberd, X_OK))
				snprintf(tiberd, sizeof(tiberd), "tiberd");
		}
	}
	av = calloc((size_t)argc + 6, sizeof(*av));
	if (!av)
		return 1;
	av[k++] = tiberd;
	av[k++] = "--backend";
	av[k++] = backend;
	av[k++] = strcmp(backend, "xen") ? "--guest" : "--domain";
	av[k++] = strcmp(backend, "xen") ? where : domid;
	for (i = 0; i < argc; i++)
		av[k++] = argv[i];
	fprintf(stderr, "tiberctl: re-protecting %s (%s guest %s) with %s\n",
		guest, backend, strcmp(backend, "xen") ? where : domid, tiberd);
	execvp(tiberd, av);
	fprintf(stderr, "tiberctl: reprotect: %s: %s\n", tiberd,
		strerror(errno));
	free(av);
	return 1;
}

/* A daemon's status JSON as rows of a compact table (one per guest);
 * @header: print the column names first. */
static void print_status(const char *json, bool header)
{
	char name[40], domid[12], state[24], a[32], b[32], c[32], d[32];
	char e[80], fo[32];
	const char *p;

	if (strstr(json, "\"daemon\":\"replicator\"")) {
		json_str(json, "link", a, sizeof(a));
		json_str(json, "failover", fo, sizeof(fo));
		json_str(json, "refused_handshakes", c, sizeof(c));
		json_str(json, "refused_unauthorized", d, sizeof(d));
		printf("replicator: link %s, failover %s, refused %s handshakes, %s unauthorized\n",
		       a, fo, c, d);
		printf("%-20s %6s %-13s %8s %9s %9s  %s\n", "GUEST", "DOMID",
		       "STATE", "EPOCH", "AGE", "MIB", "PRIMARY");
		for (p = strstr(json, "{\"name\":"); p;
		     p = strstr(p + 1, "{\"name\":")) {
			json_str(p, "name", name, sizeof(name));
			json_str(p, "domid", domid, sizeof(domid));
			json_str(p, "state", state, sizeof(state));
			/* lost, and only an operator's promote fails it over */
			if (!strcmp(state, "primary_lost") &&
			    strncmp(fo, "auto", 4) != 0)
				snprintf(state, sizeof(state), "wait_operator");
			json_str(p, "committed_epoch", a, sizeof(a));
			json_str(p, "commit_age_ms", b, sizeof(b));
			json_str(p, "pages", c, sizeof(c));
			json_str(p, "peer_id", d, sizeof(d));
			json_str(p, "peer", e, sizeof(e));
			printf("%-20s %6s %-13s %8s %8.1fs %9.0f  %s%s%s%s\n",
			       name, domid, state, a,
			       atof(b) < 0 ? 0 : atof(b) / 1e3,
			       atof(c) * 4096 / (1 << 20), e, *d ? " (" : "", d,
			       *d ? ")" : "");
		}
		return;
	}
	if (header)
		printf("%-20s %6s %-12s %6s %8s %8s %9s %9s  %s\n", "GUEST",
		       "DOMID", "STATE", "HZ", "EPOCHS", "SKIPPED", "PAUSE p99",
		       "LAG", "LINK");
	json_str(json, "name", name, sizeof(name));
	json_str(json, "domid", domid, sizeof(domid));
	json_str(json, "state", state, sizeof(state));
	json_str(json, "rate_hz", a, sizeof(a));
	json_str(json, "epochs", b, sizeof(b));
	json_str(json, "skipped_ticks", c, sizeof(c));
	json_str(json, "pause_p99_us", d, sizeof(d));
	json_str(json, "backup_lag_ms", e, sizeof(e));
	printf("%-20s %6s %-12s %6s %8s %8s %7.2fms %7.0fms", name, domid,
	       state, a, b, c, atof(d) / 1e3, atof(e));
	json_str(json, "link_error", e, sizeof(e));
	if (!strcmp(state, "syncing")) {
		json_str(json, "sync_done_pages", a, sizeof(a));
		json_str(json, "sync_total_pages", b, sizeof(b));
		json_str(json, "sync_eta_s", c, sizeof(c));
		printf("  first sync %.0f%% of %.0f MB, ETA %.0f s\n",
		       atof(b) > 0 ? 100 * atof(a) / atof(b) : 0.0,
		       atof(b) * 4096 / 1e6, atof(c));
	} else {
		printf("  %s\n", *e ? e : "ok");
	}
}

/* status of the daemon at @path: JSON (@json) or table rows. */
static int status_one(const char *path, bool json, bool header)
{
	char buf[8192];

	if (json)
		return query(path, "status\n");
	if (ask(path, "status\n", buf, sizeof(buf)))
		return 1;
	print_status(buf, header);
	return 0;
}

static int status_all(bool json)
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

		if (len < 6 || strcmp(de->d_name + len - 5, ".sock") != 0 ||
		    strncmp(de->d_name, "tiberd-", 7) != 0)
			continue;
		snprintf(path, sizeof(path), RUN_DIR "/%s", de->d_name);
		rc |= status_one(path, json, n == 0);
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
		"usage: tiberctl [--socket PATH] status [--json]\n"
		"       tiberctl --socket PATH release|switchover|promote GUEST\n"
		"       tiberctl --socket PATH reprotect GUEST --backup ADDR [TIBERD-ARGS...]\n"
		"       tiberctl recover [--slow] [--no-unpause] DOMID\n\n"
		"status   state, rate, acked epochs, pause p99 and backup lag of\n"
		"         every tiberd (or the daemon at PATH: a tiberd, or a\n"
		"         tiber-replicator: its guests, committed epochs, ages,\n"
		"         states) as a table; --json: the daemon's JSON object\n"
		"release  tiberd: the backup is lost and cannot take the guest over\n"
		"         (you checked): release the held output, run unprotected\n"
		"switchover  tiberd: planned hand-over: a last epoch with the guest\n"
		"         left suspended, then the backup runs it from that epoch\n"
		"         and it is stopped here (no output lost or repeated)\n"
		"promote  tiber-replicator: start GUEST here from its committed epoch\n"
		"         (only once you know its old primary is stopped)\n"
		"reprotect  tiber-replicator: GUEST failed over to this host; run\n"
		"         the tiberd that protects it towards a new backup (the\n"
		"         command becomes that tiberd: TIBERD-ARGS are its flags)\n"
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
	if (!strcmp(argv[i], "status") &&
	    (i + 1 == argc ||
	     (i + 2 == argc && !strcmp(argv[i + 1], "--json")))) {
		bool json = i + 2 == argc;

		return sock ? status_one(sock, json, true) : status_all(json);
	}
	if (sock && !strcmp(argv[i], "release") && i + 1 == argc)
		return query(sock, "release\n");
	if (sock && !strcmp(argv[i], "switchover") && i + 1 == argc)
		return query(sock, "switchover\n");
	if (sock && !strcmp(argv[i], "promote") && i + 2 == argc) {
		char cmd[128];

		if (strlen(argv[i + 1]) > 32 || strpbrk(argv[i + 1], " \n")) {
			fprintf(stderr,
				"tiberctl: promote: bad guest name '%s'\n",
				argv[i + 1]);
			return 2;
		}
		snprintf(cmd, sizeof(cmd), "promote %s\n", argv[i + 1]);
		answer_ms = 120000;
		return query(sock, cmd);
	}
	if (sock && !strcmp(argv[i], "reprotect") && i + 1 < argc) {
		if (strlen(argv[i + 1]) > 32 || strpbrk(argv[i + 1], " \n")) {
			fprintf(stderr,
				"tiberctl: reprotect: bad guest name '%s'\n",
				argv[i + 1]);
			return 2;
		}
		return reprotect(sock, argv[i + 1], argc - i - 2, argv + i + 2);
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
