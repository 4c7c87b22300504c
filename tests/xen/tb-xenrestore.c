// SPDX-License-Identifier: MIT
/*
 * tb-xenrestore DOMID CONFIG KERNEL: the failover path without the
 * network.  Suspend the domain through the Xen backend, snapshot it as
 * the replicator would hold it (RAM by pfn in a memfd, CPU and device
 * blobs), `xl destroy` it, then tb_backend_xen_ops.restore() (stream v2 +
 * xl restore).  Prints RESULT with the times.  Runs in dom0.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tiber/backend.h"
#include "tiber/common.h"

#define BATCH 1024

static bool zero_page(const uint8_t *p)
{
	for (size_t i = 0; i < TB_PAGE_SIZE; i++)
		if (p[i])
			return false;
	return true;
}

int main(int argc, char **argv)
{
	const struct tb_backend_ops *ops = tb_backend_find("xen");
	struct tb_dom_cfg cfg = { .suspend_mode = TB_SUSPEND_AUTO,
				  .static_port = -1,
				  .suspend_cancel = -1 };
	struct tb_buf cpu = { 0 }, dev = { 0 };
	struct tb_restore_req req = { 0 };
	struct tb_restore_res res;
	struct tb_dom_info info;
	struct tb_dom *d = NULL;
	uint64_t pfns[BATCH], nonzero = 0;
	uint8_t *buf = malloc((size_t)BATCH * TB_PAGE_SIZE);
	char cmd[128];
	int64_t t0, t1, t2, t3;
	int fd, rc;

	if (argc < 4 || !ops || !buf) {
		fprintf(stderr, "usage: tb-xenrestore DOMID CONFIG KERNEL\n");
		return 2;
	}
	cfg.domid = (uint32_t)strtoul(argv[1], NULL, 10);
	cfg.kernel_path = argv[3];
	rc = ops->attach(&d, &cfg);
	if (rc) {
		printf("RESULT attach failed: %s: %s\n", strerror(-rc),
		       tb_backend_reason());
		return 1;
	}
	ops->get_info(d, &info);
	fd = memfd_create("replica", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)(info.nr_pages * TB_PAGE_SIZE)))
		return 1;
	t0 = tb_now_ns();
	rc = ops->request_suspend(d);
	if (!rc)
		rc = ops->await_suspended(d,
					  tb_now_ns() + 30 * TB_NSEC_PER_SEC);
	for (uint64_t p = 0; !rc && p < info.nr_pages; p += BATCH) {
		size_t n = info.nr_pages - p < BATCH ? info.nr_pages - p :
						       BATCH;

		for (size_t i = 0; i < n; i++)
			pfns[i] = p + i;
		rc = ops->copy_pages(d, pfns, n, buf);
		for (size_t i = 0; !rc && i < n; i++) {
			if (zero_page(buf + i * TB_PAGE_SIZE))
				continue;
			nonzero++;
			if (pwrite(fd, buf + i * TB_PAGE_SIZE, TB_PAGE_SIZE,
				   (off_t)((p + i) * TB_PAGE_SIZE)) !=
			    (ssize_t)TB_PAGE_SIZE)
				rc = -EIO;
		}
	}
	if (!rc)
		rc = ops->save_cpu_state(d, &cpu);
	if (!rc)
		rc = ops->save_device_state(d, &dev);
	t1 = tb_now_ns();
	if (rc) {
		printf("RESULT snapshot failed: %s: %s\n", strerror(-rc),
		       tb_backend_reason());
		ops->detach(d);
		return 1;
	}
	printf("INFO snapshot of %s (%s): %" PRIu64 " pfns, %" PRIu64
	       " non-zero pages, cpu %zu B, dev %zu B, %.1f ms\n",
	       info.name, info.kind, info.nr_pages, nonzero, cpu.len, dev.len,
	       (t1 - t0) / 1e6);
	/*
	 * The primary runs on past the snapshot and then dies.  Detach
	 * first: no domctl may reach a dying domain (a detach after
	 * `xl destroy`, with our foreign mappings keeping the domain a
	 * zombie, panicked Xen 4.17.5 in hvmemul_cancel under QEMU).
	 */
	ops->detach(d);
	snprintf(cmd, sizeof(cmd), "xl destroy %u", cfg.domid);
	rc = system(cmd);
	t2 = tb_now_ns();
	req.name = info.name;
	req.domid = info.domid;
	req.nr_pages = info.nr_pages;
	req.mem_fd = fd;
	req.cpu_state = cpu.data;
	req.cpu_state_len = cpu.len;
	req.dev_state = dev.data;
	req.dev_state_len = dev.len;
	req.state_tag = info.state_tag;
	req.args = argv[2];
	rc = ops->restore(&req, &res);
	t3 = tb_now_ns();
	if (rc)
		printf("RESULT restore failed: %s: %s\n", strerror(-rc),
		       tb_backend_reason());
	else
		printf("RESULT restored domid=%u in %.1f ms (%s)\n", res.domid,
		       (t3 - t2) / 1e6, res.where);
	tb_buf_free(&cpu);
	tb_buf_free(&dev);
	free(buf);
	close(fd);
	return rc ? 1 : 0;
}
