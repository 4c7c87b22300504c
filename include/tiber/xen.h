/* SPDX-License-Identifier: MIT */
/*
 * Xen-only entry points beside the ops table (tb_backend_xen_ops).
 * No Xen header is needed to include this file.
 */
#ifndef TIBER_XEN_H
#define TIBER_XEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * `tiberctl recover DOMID`: undo whatever a tiberd that died (SIGKILL,
 * crash) may have left on domain @domid, from a fresh process:
 *   - a pending `control/shutdown = suspend` request is cleared;
 *   - a domain shut down for suspend is resumed (fast, i.e. suspend-cancel,
 *     when @fast; a guest that does not advertise SUSPEND_CANCEL needs
 *     @fast = false: it then redoes its restore path);
 *   - a paused domain is unpaused (tiberd's pause mode leaves it paused
 *     only while an epoch is in its pause; say @unpause = false if the
 *     domain may be paused by somebody else on purpose);
 *   - log-dirty tracking is switched off;
 *   - the XEN_DOMCTL_subscribe of the suspend event channel is returned
 *     to Xen's default (VIRQ_DOM_EXC, i.e. xenstored and xl see suspends
 *     again), and tiber's stale suspend lock file is removed.
 * Each step that did something is described in @report ("; "-separated,
 * NUL-terminated, may be NULL).  Safe to run on a healthy, unprotected
 * domain (nothing to do).  Do not run it while a tiberd protects @domid.
 * @return 0, -ESRCH if there is no such domain, or the -errno of the first
 * step that failed (the others are still tried).
 */
int tb_xen_recover(uint32_t domid, bool fast, bool unpause, char *report,
		   size_t report_len);

/*
 * Does the kernel image at @path advertise XEN_ELFNOTE_SUSPEND_CANCEL?
 * Plain ELF (vmlinux), gzip-wrapped and bzImage (any compression that
 * libxenguest decompresses: gzip, bzip2, xz, lzma, lzo, lz4, zstd).
 * @return 0 with *@yes set; -ENOENT/-EACCES (file), -ENOEXEC (not a kernel
 * we can read) with tb_backend_reason() set.
 */
int tb_xen_kernel_suspend_cancel(const char *path, bool *yes);

#endif
