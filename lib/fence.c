// SPDX-License-Identifier: MIT
/*
 * Running fence commands (include/tiber/fence.h): fork + exec of
 * /bin/sh in its own process group, its output logged line by line,
 * a hard deadline, and the exit status as the only verdict.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tiber/common.h"
#include "tiber/fence.h"
#include "tiber/log.h"

extern char **environ;

/* environ plus TIBER_GUEST and TIBER_PEER (built before fork: the child
 * may only make async-signal-safe calls). */
static char **fence_env(const char *guest, const char *peer, char **g, char **p)
{
	size_t n = 0, i, j = 0;
	char **env;

	while (environ[n])
		n++;
	env = calloc(n + 3, sizeof(*env));
	if (!env || asprintf(g, "TIBER_GUEST=%s", guest) < 0) {
		free(env);
		return NULL;
	}
	if (asprintf(p, "TIBER_PEER=%s", peer) < 0) {
		free(*g);
		free(env);
		return NULL;
	}
	for (i = 0; i < n; i++)
		if (strncmp(environ[i], "TIBER_GUEST=", 12) != 0 &&
		    strncmp(environ[i], "TIBER_PEER=", 11) != 0)
			env[j++] = environ[i];
	env[j++] = *g;
	env[j++] = *p;
	return env;
}

/* Log complete lines of @buf; keep a partial last line.  Returns the
 * bytes kept. */
static size_t log_lines(const char *what, char *buf, size_t len, bool all)
{
	char *s = buf, *nl;

	while ((nl = memchr(s, '\n', len - (size_t)(s - buf)))) {
		*nl = 0;
		tb_warn("%s: %s", what, s);
		s = nl + 1;
	}
	len -= (size_t)(s - buf);
	if (all && len) {
		tb_warn("%s: %.*s", what, (int)len, s);
		return 0;
	}
	memmove(buf, s, len);
	return len;
}

int tb_fence_run(const char *what, const char *cmd, const char *guest,
		 const char *peer, int64_t timeout_ns)
{
	int64_t deadline = tb_now_ns() + timeout_ns;
	char *script = NULL, *g = NULL, *p = NULL, **env;
	char buf[1024];
	size_t have = 0;
	int pfd[2], status = 0, rc = 0;
	bool killed = false;
	pid_t pid;

	if (asprintf(&script, "%s \"$@\"", cmd) < 0)
		return -ENOMEM;
	env = fence_env(guest, peer, &g, &p);
	if (!env) {
		free(script);
		return -ENOMEM;
	}
	if (pipe2(pfd, O_CLOEXEC)) {
		rc = -errno;
		goto out;
	}
	tb_warn("%s: running: %s %s %s", what, cmd, guest, peer);
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		close(pfd[0]);
		close(pfd[1]);
		goto out;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		setpgid(0, 0);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		execle("/bin/sh", "sh", "-c", script, "tiber-fence", guest,
		       peer, (char *)NULL, env);
		_exit(127);
	}
	setpgid(pid, pid); /* no race with the child's own call */
	close(pfd[1]);
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	/*
	 * Log its output until it exits.  Its exit, not the end of its
	 * output, decides: something it left in the background (xl leaves
	 * helpers) may hold the pipe open long after it is done.
	 */
	for (;;) {
		struct pollfd pl = { .fd = pfd[0], .events = POLLIN };
		int64_t left = deadline - tb_now_ns();
		bool exited = waitpid(pid, &status, WNOHANG) == pid;
		ssize_t n;

		while ((n = read(pfd[0], buf + have, sizeof(buf) - 1 - have)) >
		       0) {
			have += (size_t)n;
			have = log_lines(what, buf, have,
					 have == sizeof(buf) - 1);
		}
		if (exited)
			break;
		if (left <= 0) {
			kill(-pid, SIGKILL);
			killed = true;
			waitpid(pid, &status, 0);
			break;
		}
		if (n == 0) /* EOF: no more output, just wait for the exit */
			tb_sleep_until(tb_now_ns() +
				       TB_MIN(left, 20 * TB_NSEC_PER_MSEC));
		else
			poll(&pl, 1,
			     (int)TB_MIN(left / TB_NSEC_PER_MSEC + 1, 50));
	}
	log_lines(what, buf, have, true);
	close(pfd[0]);
	if (killed) {
		tb_err("%s: timed out after %.1f s: killed; NOT fenced", what,
		       timeout_ns / 1e9);
		rc = -ETIMEDOUT;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		tb_warn("%s: succeeded (exit 0)", what);
	} else {
		if (WIFEXITED(status))
			tb_err("%s: failed (exit %d); NOT fenced", what,
			       WEXITSTATUS(status));
		else
			tb_err("%s: died of signal %d; NOT fenced", what,
			       WTERMSIG(status));
		rc = -EIO;
	}
out:
	free(script);
	free(g);
	free(p);
	free(env);
	return rc;
}
