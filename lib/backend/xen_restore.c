// SPDX-License-Identifier: MIT
/*
 * Failover of the Xen backend: the committed replica (memory and the
 * Xen state blobs) becomes an xl save file (migration stream v2,
 * xen_stream.c) in a memfd, and `xl restore` starts the guest from it.
 * Runs on the backup, without a tb_dom: nothing here touches the
 * primary's domain.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "xen_priv.h"
#include "xen_stream.h"

/*
 * Run `xl ARGS...` with @fd as its fd 3; its stdout+stderr go to @out.
 * Returns 0 if it exited 0, -EIO (reason: its output) otherwise.
 */
static int run_xl(const char *const *argv, int fd, char *out, size_t outlen)
{
	int pfd[2], status, rc = 0;
	size_t got = 0;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return rc;
	}
	if (pid == 0) {
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		if (fd >= 0)
			dup2(fd, 3); /* dup2 clears close-on-exec */
		execvp("xl", (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		ssize_t n = read(pfd[0], out + got, outlen - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == outlen - 1) { /* keep the tail */
			memmove(out, out + outlen / 2, got - outlen / 2);
			got -= outlen / 2;
		}
	}
	out[got] = '\0';
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		rc = -EIO;
	return rc;
}

static char *read_text(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, n;

	*len = 0;
	if (!f)
		return NULL;
	do {
		char *nb = realloc(buf, cap + 4096 + 1);

		if (!nb) {
			free(buf);
			fclose(f);
			return NULL;
		}
		buf = nb;
		n = fread(buf + cap, 1, 4096, f);
		cap += n;
	} while (n == 4096);
	buf[cap] = '\0';
	*len = cap;
	fclose(f);
	return buf;
}

/*
 * Failover: write the committed replica as an xl save file (migration
 * stream v2, xen_stream.c) into a memfd and `xl restore CONFIG
 * /proc/self/fd/3`.  The guest's suspend hypercall returns 0 (RESTORE).
 * @req->args: the domain's xl config file.  PV replicas carry pfn-form
 * page tables and vCPU frames, the page types and the p2m frame list
 * (the device blob's PV records); HVM/PVH ones the unpopulated ranges.
 */
int tb_xen_restore(const struct tb_restore_req *req, struct tb_restore_res *res)
{
	struct tb_xs_blobs *ps = NULL;
	struct tb_xs_image img;
	struct tb_xs_stats st;
	char out[1024], name[40];
	const char *argv[8];
	char *cfg = NULL;
	size_t cfg_len = 0;
	int64_t t0, t1, t2;
	int fd = -1, rc;
	char *end;
	unsigned long domid;

	memset(res, 0, sizeof(*res));
	if (!req->args || !*req->args) {
		tb_backend_set_reason(
			"xen restore needs the domain's xl config file (--restore-args FILE)");
		return -EINVAL;
	}
	for (const char *c = req->name; *c; c++)
		if (!(isalnum((unsigned char)*c) || strchr("-_.", *c))) {
			tb_backend_set_reason(
				"guest name '%s' has characters xl would not take",
				req->name);
			return -EINVAL;
		}
	t0 = tb_now_ns();
	cfg = read_text(req->args, &cfg_len);
	if (!cfg) {
		rc = -errno;
		tb_backend_set_reason("%s: %s", req->args, strerror(-rc));
		return rc;
	}
	ps = calloc(1, sizeof(*ps));
	if (!ps) {
		rc = -ENOMEM;
		goto out;
	}
	rc = tb_xs_from_blobs(req->cpu_state, req->cpu_state_len,
			      req->dev_state, req->dev_state_len, req->nr_pages,
			      ps, &img);
	if (rc) {
		tb_backend_set_reason("xen restore: %s", ps->reason);
		goto out_free;
	}
	img.mem_fd = req->mem_fd;
	fd = memfd_create("tiber-xl-stream", MFD_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto out_blobs;
	}
	rc = tb_xs_write_xl(fd, cfg, cfg_len, &img, &st);
	if (rc) {
		tb_backend_set_reason("xen restore: writing the stream: %s",
				      strerror(-rc));
		goto out_fd;
	}
	t1 = tb_now_ns();
	argv[0] = "xl";
	argv[1] = "restore";
	argv[2] = req->args;
	argv[3] = "/proc/self/fd/3";
	argv[4] = NULL;
	rc = run_xl(argv, fd, out, sizeof(out));
	t2 = tb_now_ns();
	if (rc) {
		tb_backend_set_reason("xl restore (stream %" PRIu64
				      " MiB, %" PRIu64 " pages): %s",
				      st.bytes >> 20, st.pages, out);
		goto out_fd;
	}
	snprintf(name, sizeof(name), "%s", req->name);
	argv[1] = "domid";
	argv[2] = name;
	argv[3] = NULL;
	rc = run_xl(argv, -1, out, sizeof(out));
	domid = strtoul(out, &end, 10);
	if (rc || end == out) {
		tb_backend_set_reason("restored, but `xl domid %s` failed: %s",
				      name, out);
		rc = rc ? rc : -EIO;
		goto out_fd;
	}
	res->domid = (uint32_t)domid;
	snprintf(res->where, sizeof(res->where),
		 "%s stream_ms=%.1f xl_restore_ms=%.1f stream_mib=%" PRIu64
		 " data_pages=%" PRIu64 " zero_pages=%" PRIu64,
		 name, (double)(t1 - t0) / 1e6, (double)(t2 - t1) / 1e6,
		 st.bytes >> 20, st.pages, st.pages_zero);
	rc = 0;
out_fd:
	close(fd);
out_blobs:
	tb_xs_blobs_free(ps);
out_free:
	free(ps);
out:
	free(cfg);
	return rc;
}
