// SPDX-License-Identifier: MIT
/*
 * The sim backend's restore hook: failover starts a new tiber-simguest
 * from a committed replica (docs/sim-backend.md, "Restore").
 *
 *   tiber-simguest --restore --ram-fd <req->mem_fd> --state-fd <memfd>
 *                  --ready-fd <pipe> [--disk <req->disk_path[0]>]
 *                  [req->args] [--socket <generated path>]
 *
 * Invariants:
 *  - the restored guest is reported only once it wrote its ready byte,
 *    i.e. its RESTORE hooks ran; one that does not start within 30 s is
 *    killed and reaped: -ECHILD, no process is left behind;
 *  - between fork() and exec() the child makes only async-signal-safe
 *    calls (the daemon has other threads);
 *  - every fd this hook opens is closed on every path; req->mem_fd
 *    stays the caller's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "sim_priv.h"

static int find_simguest(char *out, size_t len)
{
	const char *env = getenv("TIBER_SIMGUEST");
	char self[PATH_MAX];
	ssize_t n;
	char *slash;

	if (env && *env) {
		snprintf(out, len, "%s", env);
		return 0;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = 0;
		slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			if ((size_t)snprintf(out, len, "%s/tiber-simguest",
					     self) < len &&
			    !access(out, X_OK))
				return 0;
		}
	}
	snprintf(out, len, "tiber-simguest"); /* PATH */
	return 0;
}

#define RESTORE_MAX_ARGS 48

int tb_sim_restore(const struct tb_restore_req *req, struct tb_restore_res *res)
{
	static unsigned counter;
	char prog[PATH_MAX], ramfd_s[16], statefd_s[16], readyfd_s[16];
	char uuid_s[TB_UUID_TEXT];
	char sock[108] = "", *argbuf = NULL, *save = NULL, *tok;
	const char *argv[RESTORE_MAX_ARGS + 16];
	const char *tmp = getenv("TMPDIR");
	int state_fd = -1, ready[2] = { -1, -1 }, rc, argc = 0, status;
	bool have_socket = false;
	struct pollfd pfd;
	char c;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	if (req->state_tag != TB_SIM_STATE_TAG || req->mem_fd < 0) {
		tb_backend_set_reason("sim: restore: not a sim image");
		return -EINVAL;
	}
	find_simguest(prog, sizeof(prog));
	state_fd = memfd_create("tiber-restore-state", MFD_CLOEXEC);
	if (state_fd < 0)
		return -errno;
	rc = tb_write_all(state_fd, req->cpu_state, req->cpu_state_len);
	if (!rc)
		rc = tb_write_all(state_fd, req->dev_state, req->dev_state_len);
	if (rc)
		goto out;
	if (pipe2(ready, O_CLOEXEC)) {
		rc = -errno;
		goto out;
	}
	snprintf(ramfd_s, sizeof(ramfd_s), "%d", req->mem_fd);
	snprintf(statefd_s, sizeof(statefd_s), "%d", state_fd);
	snprintf(readyfd_s, sizeof(readyfd_s), "%d", ready[1]);
	argv[argc++] = prog;
	argv[argc++] = "--restore";
	argv[argc++] = "--ram-fd";
	argv[argc++] = ramfd_s;
	argv[argc++] = "--state-fd";
	argv[argc++] = statefd_s;
	argv[argc++] = "--ready-fd";
	argv[argc++] = readyfd_s;
	if (req->nr_disks > 1) {
		tb_backend_set_reason("sim: a simulated guest has one disk");
		rc = -EINVAL;
		goto out;
	}
	if (!tb_uuid_nil(req->uuid)) { /* the guest keeps its identity */
		tb_uuid_fmt(req->uuid, uuid_s);
		argv[argc++] = "--uuid";
		argv[argc++] = uuid_s;
	}
	if (req->nr_disks) { /* the backup's committed copy is its disk now */
		argv[argc++] = "--disk";
		argv[argc++] = req->disk_path[0];
	}
	if (req->args && *req->args) {
		argbuf = strdup(req->args);
		if (!argbuf) {
			rc = -ENOMEM;
			goto out;
		}
		for (tok = strtok_r(argbuf, " \t", &save); tok;
		     tok = strtok_r(NULL, " \t", &save)) {
			if (argc >= RESTORE_MAX_ARGS) {
				rc = -E2BIG;
				goto out;
			}
			if (!strcmp(tok, "--socket"))
				have_socket = true;
			if (have_socket && argv[argc - 1] &&
			    !strcmp(argv[argc - 1], "--socket"))
				snprintf(sock, sizeof(sock), "%s", tok);
			argv[argc++] = tok;
		}
	}
	if (!have_socket) {
		snprintf(sock, sizeof(sock), "%s/tiber-restored-%d-%u.sock",
			 tmp && *tmp ? tmp : "/tmp", (int)getpid(),
			 __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
		argv[argc++] = "--socket";
		argv[argc++] = sock;
	}
	argv[argc] = NULL;

	pid = fork();
	if (pid < 0) {
		rc = -errno;
		goto out;
	}
	if (pid == 0) {
		/* only async-signal-safe calls from here */
		fcntl(req->mem_fd, F_SETFD, 0);
		fcntl(state_fd, F_SETFD, 0);
		fcntl(ready[1], F_SETFD, 0);
		if (strchr(prog, '/'))
			execv(prog, (char *const *)argv);
		else
			execvp(prog, (char *const *)argv);
		_exit(127);
	}
	close(ready[1]);
	ready[1] = -1;
	/* the guest writes one byte once it runs (RESTORE hooks done) */
	pfd.fd = ready[0];
	pfd.events = POLLIN;
	rc = poll(&pfd, 1, 30000);
	if (rc <= 0 || read(ready[0], &c, 1) != 1) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		tb_backend_set_reason("sim: restored guest %s did not start",
				      prog);
		rc = -ECHILD;
		goto out;
	}
	rc = 0;
	res->pid = pid;
	res->domid = req->domid;
	snprintf(res->where, sizeof(res->where), "%s", sock);
out:
	free(argbuf);
	if (ready[0] >= 0)
		close(ready[0]);
	if (ready[1] >= 0)
		close(ready[1]);
	if (state_fd >= 0)
		close(state_fd);
	return rc;
}
